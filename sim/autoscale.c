/*
 * autoscale: one simulated Ray autoscaler iteration over a RayCluster. See
 * autoscale.h.
 */
#include "autoscale.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "labels.h"
#include "names.h"

#define PATH_MAX_LEN 128 /* room for "/spec/workerGroupSpecs/<i>/scaleStrategy" */

/* A scale-down candidate. */
typedef struct {
    const char *name; /* metadata.name */
    const char *created; /* metadata.creationTimestamp (RFC 3339 sorts as text),
                            "" if absent */
    bool pending; /* no container statuses yet */
} cand_t;

static const char *s_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *s_label(const json_t *pod, const char *key)
{
    return s_str(json_object_get(json_object_get(pod, "metadata"), "labels"), key);
}

/* A worker pod of `cluster` that is not being deleted. */
static bool s_live_worker(const json_t *pod, const char *cluster)
{
    const json_t *md = json_object_get(pod, "metadata");
    const char *c = s_label(pod, LABEL_CLUSTER);
    const char *t = s_label(pod, LABEL_NODE_TYPE);
    return json_is_object(pod) && s_str(md, "name") && c && strcmp(c, cluster) == 0 && t &&
           strcmp(t, NAMES_NODE_WORKER) == 0 && !json_object_get(md, "deletionTimestamp");
}

static bool s_busy(const json_t *pod)
{
    const char *v = s_str(json_object_get(json_object_get(pod, "metadata"), "annotations"),
                          AUTOSCALE_BUSY_ANNOTATION);
    return v && strcmp(v, "true") == 0;
}

static bool s_listed(const json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

/* Pending first, then newest first, then name descending: the order victims are
 * taken in. */
static int s_cand_cmp(const void *pa, const void *pb)
{
    const cand_t *a = pa;
    const cand_t *b = pb;
    if (a->pending != b->pending)
        return a->pending ? -1 : 1;
    int c = strcmp(b->created, a->created);
    if (c != 0)
        return c;
    return strcmp(b->name, a->name);
}

static long long s_int_field(const json_t *o, const char *k, long long dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

static int s_add_op(json_t *patch, size_t group, const char *field, json_t *value)
{
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof(path), "/spec/workerGroupSpecs/%zu/%s", group, field);
    json_t *op = json_pack("{s:s, s:s, s:o}", "op", "replace", "path", path, "value", value);
    if (!op || json_array_append_new(patch, op) != 0)
        return ERR_NOMEM;
    return 0;
}

/* Plans one group. Appends its ops to `patch`. `cands` is scratch space of
 * `cap` entries. */
static int s_plan_group(size_t gi, const json_t *g, const json_t *pods, const char *cluster,
                        const json_t *demand, cand_t *cands, size_t cap, json_t *patch)
{
    const char *gname = s_str(g, "groupName");
    const json_t *wtd = json_object_get(json_object_get(g, "scaleStrategy"), "workersToDelete");
    bool clear = json_array_size(wtd) > 0;
    if (!gname || json_is_true(json_object_get(g, "suspend")))
        return clear ? s_add_op(patch, gi, "scaleStrategy", json_pack("{s:[]}", "workersToDelete"))
                     : 0;
    long long replicas = s_int_field(g, "replicas", AUTOSCALE_DEFAULT_REPLICAS);
    long long min = s_int_field(g, "minReplicas", 0);
    long long max = s_int_field(g, "maxReplicas", AUTOSCALE_DEFAULT_MAX_REPLICAS);
    const json_t *want = json_object_get(demand, gname);
    long long target = want ? (long long)json_integer_value(want) : replicas;
    if (target > max)
        target = max;
    if (target < min)
        target = min;
    long long next = replicas;
    json_t *victims = NULL;
    if (target > replicas) {
        next = target;
    } else if (target < replicas) {
        // Gather this group's live pods.
        size_t n = 0;
        size_t idle = 0;
        size_t i;
        json_t *pod;
        json_array_foreach(pods, i, pod)
        {
            const char *grp = s_label(pod, LABEL_GROUP);
            if (!s_live_worker(pod, cluster) || !grp || strcmp(grp, gname) != 0)
                continue;
            n++;
            if (s_busy(pod) || idle >= cap)
                continue;
            const json_t *md = json_object_get(pod, "metadata");
            const char *created = s_str(md, "creationTimestamp");
            cands[idle].name = s_str(md, "name");
            cands[idle].created = created ? created : "";
            cands[idle].pending = json_array_size(json_object_get(json_object_get(pod, "status"),
                                                                  "containerStatuses")) == 0;
            idle++;
        }
        long long reduce = replicas - target;
        long long phantom = replicas - (long long)n;
        long long k = phantom > 0 ? (phantom < reduce ? phantom : reduce) : 0;
        long long remaining = reduce - k;
        size_t nv = remaining < (long long)idle ? (size_t)remaining : idle;
        next = replicas - k - (long long)nv;
        if (nv > 0) {
            qsort(cands, idle, sizeof(*cands), s_cand_cmp);
            victims = json_array();
            if (!victims)
                return ERR_NOMEM;
            for (size_t v = 0; v < nv; v++) {
                if (json_array_append_new(victims, json_string(cands[v].name)) != 0) {
                    json_decref(victims);
                    return ERR_NOMEM;
                }
            }
        }
    }
    int rc = 0;
    if (next != replicas)
        rc = s_add_op(patch, gi, "replicas", json_integer(next));
    if (rc == 0 && victims) {
        rc = s_add_op(patch, gi, "scaleStrategy", json_pack("{s:o}", "workersToDelete", victims));
        victims = NULL;
    } else if (rc == 0 && clear) {
        rc = s_add_op(patch, gi, "scaleStrategy", json_pack("{s:[]}", "workersToDelete"));
    }
    json_decref(victims);
    return rc;
}

int autoscale_compute(const json_t *raycluster, const json_t *pods, const json_t *demand,
                      json_t **patch_out)
{
    if (!patch_out)
        return ERR_INVAL;
    *patch_out = NULL;
    if (!raycluster || !pods || (demand && !json_is_object(demand)))
        return ERR_INVAL;
    const char *cluster = s_str(json_object_get(raycluster, "metadata"), "name");
    const json_t *spec = json_object_get(raycluster, "spec");
    if (!cluster || !json_is_object(spec))
        return ERR_INVAL;
    if (json_is_object(pods))
        pods = json_object_get(pods, "items");
    if (!json_is_array(pods))
        return ERR_INVAL;
    if (json_array_size(pods) > AUTOSCALE_MAX_PODS)
        return ERR_TOOBIG;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)demand, key, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return ERR_INVAL;
    }
    if (!json_is_true(json_object_get(spec, "enableInTreeAutoscaling")))
        return ERR_STATE;
    const json_t *groups = json_object_get(spec, "workerGroupSpecs");
    // safe_to_scale: any listed pod still alive blocks the whole iteration.
    size_t gi;
    json_t *g;
    json_array_foreach(groups, gi, g)
    {
        const json_t *wtd = json_object_get(json_object_get(g, "scaleStrategy"), "workersToDelete");
        size_t pi;
        json_t *pod;
        json_array_foreach(pods, pi, pod)
        {
            if (s_live_worker(pod, cluster) &&
                s_listed(wtd, s_str(json_object_get(pod, "metadata"), "name")))
                return 0;
        }
    }
    size_t cap = json_array_size(pods);
    cand_t *cands = calloc(cap ? cap : 1, sizeof(*cands));
    json_t *patch = json_array();
    int rc = 0;
    if (!cands || !patch) {
        rc = ERR_NOMEM;
        goto done;
    }
    json_array_foreach(groups, gi, g)
    {
        rc = s_plan_group(gi, g, pods, cluster, demand, cands, cap, patch);
        if (rc != 0)
            goto done;
    }
    if (json_array_size(patch) > 0) {
        *patch_out = patch;
        patch = NULL;
    }
done:
    json_decref(patch);
    free(cands);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 */
#ifdef RF_SELFTEST
#include "selftest.h"

/* Self-test */

static json_t *s_pod(const char *name, const char *group, const char *created, bool running,
                     bool busy, bool deleting)
{
    json_t *pod = json_pack("{s:{s:s, s:s, s:{s:s, s:s, s:s}, s:{}}, s:{}}", "metadata", "name",
                            name, "creationTimestamp", created, "labels", LABEL_CLUSTER, "rc",
                            LABEL_NODE_TYPE, "worker", LABEL_GROUP, group, "annotations", "status");
    if (!pod)
        return NULL;
    json_t *md = json_object_get(pod, "metadata");
    if (running)
        json_object_set_new(json_object_get(pod, "status"), "containerStatuses",
                            json_pack("[{s:{s:{}}}]", "state", "running"));
    if (busy)
        json_object_set_new(json_object_get(md, "annotations"), AUTOSCALE_BUSY_ANNOTATION,
                            json_string("true"));
    if (deleting)
        json_object_set_new(md, "deletionTimestamp", json_string("2024-01-01T00:10:00Z"));
    return pod;
}

static json_t *s_cluster(bool enabled, int replicas, const char *wtd_name)
{
    json_t *c =
        json_pack("{s:{s:s}, s:{s:b, s:{}, s:[{s:s, s:i, s:i, s:i, s:{s:[]}},"
                  "{s:s, s:i, s:i, s:i}]}}",
                  "metadata", "name", "rc", "spec", "enableInTreeAutoscaling", enabled,
                  "headGroupSpec", "workerGroupSpecs", "groupName", "small", "replicas", replicas,
                  "minReplicas", 1, "maxReplicas", 5, "scaleStrategy", "workersToDelete",
                  "groupName", "big", "replicas", 2, "minReplicas", 2, "maxReplicas", 4);
    if (c && wtd_name) {
        json_t *g =
            json_array_get(json_object_get(json_object_get(c, "spec"), "workerGroupSpecs"), 0);
        json_array_append_new(
            json_object_get(json_object_get(g, "scaleStrategy"), "workersToDelete"),
            json_string(wtd_name));
    }
    return c;
}

/* The value of the op at `path` in `patch`, or NULL. */
static const json_t *s_op(const json_t *patch, const char *path)
{
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op)
    {
        const char *p = s_str(op, "path");
        if (p && strcmp(p, path) == 0 && strcmp(s_str(op, "op"), "replace") == 0)
            return json_object_get(op, "value");
    }
    return NULL;
}

int autoscale_test(bool verbose)
{
    int failed = 0;
    const char *R0 = "/spec/workerGroupSpecs/0/replicas";
    const char *S0 = "/spec/workerGroupSpecs/0/scaleStrategy";
    const char *R1 = "/spec/workerGroupSpecs/1/replicas";
    json_t *pods = json_array();
    json_array_append_new(pods,
                          s_pod("rc-small-a", "small", "2024-01-01T00:00:01Z", true, false, false));
    json_array_append_new(pods,
                          s_pod("rc-small-b", "small", "2024-01-01T00:00:02Z", true, false, false));
    json_array_append_new(pods,
                          s_pod("rc-big-a", "big", "2024-01-01T00:00:01Z", true, false, false));
    json_array_append_new(pods,
                          s_pod("other", "small", "2024-01-01T00:00:09Z", true, false, false));
    // "other" belongs to another cluster.
    json_object_set_new(
        json_object_get(json_object_get(json_array_get(pods, 3), "metadata"), "labels"),
        LABEL_CLUSTER, json_string("elsewhere"));
    json_t *rc2 = s_cluster(true, 2, NULL);
    json_t *patch = NULL;
    json_object_del(
        json_array_get(json_object_get(json_object_get(rc2, "spec"), "workerGroupSpecs"), 1),
        "replicas");

    // Scale up within max; "big" has no replicas field (1), below its min 2 ->
    // raised to 2.
    json_t *demand = json_pack("{s:i}", "small", 4);
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    CHECK(patch && json_integer_value(s_op(patch, R0)) == 4);
    CHECK(patch && json_integer_value(s_op(patch, R1)) == 2);
    CHECK(patch && s_op(patch, S0) == NULL);
    CHECK(patch && json_array_size(patch) == 2);
    json_decref(patch);
    json_decref(demand);

    // Capped at maxReplicas.
    demand = json_pack("{s:i, s:i}", "small", 50, "big", 2);
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    CHECK(patch && json_integer_value(s_op(patch, R0)) == 5);
    json_decref(patch);
    json_decref(demand);

    // At target: no patch (big wants 1 but min is 2 and the pod count is
    // irrelevant).
    json_object_set_new(
        json_array_get(json_object_get(json_object_get(rc2, "spec"), "workerGroupSpecs"), 1),
        "replicas", json_integer(2));
    demand = json_pack("{s:i, s:i}", "small", 2, "big", 1);
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    CHECK(patch == NULL);
    json_decref(demand);

    // Scale down to the min bound, naming the newest idle worker.
    demand = json_pack("{s:i}", "small", 0);
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    CHECK(patch && json_integer_value(s_op(patch, R0)) == 1);
    const json_t *w = json_object_get(s_op(patch, S0), "workersToDelete");
    CHECK(json_array_size(w) == 1 &&
          strcmp(json_string_value(json_array_get(w, 0)), "rc-small-b") == 0);
    CHECK(patch && json_array_size(patch) == 2);
    json_decref(patch);

    // A busy worker is never chosen; a pending one goes first.
    json_t *md_b = json_object_get(json_array_get(pods, 1), "metadata");
    json_object_set_new(json_object_get(md_b, "annotations"), AUTOSCALE_BUSY_ANNOTATION,
                        json_string("true"));
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    w = json_object_get(s_op(patch, S0), "workersToDelete");
    CHECK(json_array_size(w) == 1 &&
          strcmp(json_string_value(json_array_get(w, 0)), "rc-small-a") == 0);
    json_decref(patch);
    json_object_del(json_object_get(md_b, "annotations"), AUTOSCALE_BUSY_ANNOTATION);
    json_array_append_new(
        pods, s_pod("rc-small-p", "small", "2024-01-01T00:00:00Z", false, false, false));
    json_t *rc3 = s_cluster(true, 3, NULL);
    json_decref(demand);
    demand = json_pack("{s:i}", "small", 2);
    CHECK(autoscale_compute(rc3, pods, demand, &patch) == 0);
    w = json_object_get(s_op(patch, S0), "workersToDelete");
    CHECK(json_array_size(w) == 1 &&
          strcmp(json_string_value(json_array_get(w, 0)), "rc-small-p") == 0);
    CHECK(json_integer_value(s_op(patch, R0)) == 2);
    json_decref(patch);
    json_decref(rc3);
    json_array_remove(pods, 4);

    // All idle pods busy: nothing can go.
    json_object_set_new(
        json_object_get(json_object_get(json_array_get(pods, 0), "metadata"), "annotations"),
        AUTOSCALE_BUSY_ANNOTATION, json_string("true"));
    json_object_set_new(json_object_get(md_b, "annotations"), AUTOSCALE_BUSY_ANNOTATION,
                        json_string("true"));
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    CHECK(patch == NULL);
    json_decref(demand);
    demand = json_pack("{s:i}", "small", 1);
    CHECK(autoscale_compute(rc2, pods, demand, &patch) == 0);
    CHECK(patch == NULL);

    // Replicas without pods go first, naming nobody.
    json_t *rc4 = s_cluster(true, 4, NULL);
    CHECK(autoscale_compute(rc4, pods, demand, &patch) == 0);
    CHECK(patch && json_integer_value(s_op(patch, R0)) == 2);
    CHECK(patch && s_op(patch, S0) == NULL);
    json_decref(patch);
    json_decref(rc4);

    // A listed pod still alive blocks everything; once it is terminating the list
    // is cleared.
    json_t *rcw = s_cluster(true, 1, "rc-small-b");
    json_decref(demand);
    demand = json_pack("{s:i}", "small", 5);
    CHECK(autoscale_compute(rcw, pods, demand, &patch) == 0);
    CHECK(patch == NULL);
    json_object_set_new(md_b, "deletionTimestamp", json_string("2024-01-01T00:10:00Z"));
    CHECK(autoscale_compute(rcw, pods, demand, &patch) == 0);
    CHECK(patch && json_integer_value(s_op(patch, R0)) == 5);
    w = json_object_get(s_op(patch, S0), "workersToDelete");
    CHECK(json_is_array(w) && json_array_size(w) == 0);
    json_decref(patch);
    // Clearing alone, when already at target.
    json_decref(demand);
    demand = json_pack("{s:i}", "small", 1);
    CHECK(autoscale_compute(rcw, pods, demand, &patch) == 0);
    CHECK(patch && json_array_size(patch) == 1 && s_op(patch, S0) != NULL);
    json_decref(patch);
    // PodList form is accepted too.
    json_t *list = json_pack("{s:s, s:O}", "kind", "PodList", "items", pods);
    CHECK(autoscale_compute(rcw, list, demand, &patch) == 0);
    CHECK(patch && json_array_size(patch) == 1);
    json_decref(patch);
    json_decref(list);
    json_decref(rcw);

    // Errors.
    json_t *off = s_cluster(false, 1, NULL);
    CHECK(autoscale_compute(off, pods, demand, &patch) == ERR_STATE && patch == NULL);
    CHECK(autoscale_compute(NULL, pods, demand, &patch) == ERR_INVAL);
    CHECK(autoscale_compute(rc2, NULL, demand, &patch) == ERR_INVAL);
    CHECK(autoscale_compute(rc2, pods, demand, NULL) == ERR_INVAL);
    json_t *neg = json_pack("{s:i}", "small", -1);
    CHECK(autoscale_compute(rc2, pods, neg, &patch) == ERR_INVAL);
    json_t *arr = json_array();
    CHECK(autoscale_compute(rc2, pods, arr, &patch) == ERR_INVAL);
    json_t *noname = json_pack("{s:{s:b}}", "spec", "enableInTreeAutoscaling", 1);
    CHECK(autoscale_compute(noname, pods, demand, &patch) == ERR_INVAL);
    CHECK(autoscale_compute(rc2, pods, NULL, &patch) == 0);
    json_decref(patch);
    json_decref(noname);
    json_decref(arr);
    json_decref(neg);
    json_decref(off);
    json_decref(demand);
    json_decref(rc2);
    json_decref(pods);
    return SELFTEST_RESULT("autoscale", verbose);
}

#endif /* RF_SELFTEST */
