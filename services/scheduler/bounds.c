/* bounds: rayfleet's limits on a RayCluster spec (see bounds.h). */
#include "bounds.h"

#include "err.h"
#include "json.h"
#include "rcstatus.h"

#include <stdio.h>
#include <string.h>

static int s_int32(const json_t *groups, const char **reason, buf_t *msg)
{
    static const char *const fields[] = {"replicas", "minReplicas", "maxReplicas", "numOfHosts"};
    size_t i;
    json_t *wg;
    json_array_foreach(groups, i, wg)
    {
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
            const json_t *v = json_object_get(wg, fields[f]);
            if (!json_is_integer(v))
                continue;
            json_int_t n = json_integer_value(v);
            if (n >= INT32_MIN && n <= INT32_MAX)
                continue;
            *reason = BOUNDS_REASON_INT32;
            buf_printf(
                msg,
                "spec.workerGroupSpecs[%zu].%s: Invalid value: %" JSON_INTEGER_FORMAT
                ": must be a 32-bit integer (KubeRay's int32 field; -2147483648..2147483647)",
                i, fields[f], n);
            return 1;
        }
    }
    return 0;
}

static int s_pods(const json_t *rc, const json_t *groups, int64_t max_pods, const char **reason,
                  buf_t *msg)
{
    int64_t total = 1; /* the head */
    size_t i;
    json_t *wg;
    json_array_foreach(groups, i, wg)
    {
        int64_t want = rcstatus_group_wanted(rc, wg);
        if (want < 0)
            want = 0;
        total = want > INT64_MAX - total ? INT64_MAX : total + want;
        if (total <= max_pods)
            continue;
        *reason = BOUNDS_REASON_PODS;
        buf_printf(msg,
                   "spec.workerGroupSpecs[%zu].replicas: %lld replicas x %lld hosts bring the "
                   "cluster to %lld pods, over the per-cluster cap of %lld "
                   "(--max-pods-per-cluster)",
                   i, (long long)rcstatus_group_replicas(wg),
                   (long long)jx_int(wg, "numOfHosts", 1), (long long)total, (long long)max_pods);
        return 1;
    }
    return 0;
}

/* The largest rayStartParams value of `group` (its key in *key), or 0. */
static size_t s_largest_param(const json_t *group, const char **key)
{
    size_t best = 0;
    const char *k;
    json_t *v;
    *key = "";
    json_object_foreach((json_t *)json_object_get(group, "rayStartParams"), k, v)
    {
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        if (n > best) {
            best = n;
            *key = k;
        }
    }
    return best;
}

/* The user's text that goes into a group's pod commands (rayStartParams keys and values, every
 * container's command and args): when it is under half of podbuild's bound, no command of that
 * pod can pass the bound (rayfleet's own part is a few KB), so the pod need not be built to know.
 * This keeps the pod builds below off the path of every pass for every ordinary spec. */
static size_t s_user_text(const json_t *group)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(group, "rayStartParams"), k, v)
    {
        n += strlen(k) + (json_is_string(v) ? json_string_length(v) : 32) + 4;
    }
    static const char *const lists[] = {"command", "args"};
    size_t i, j;
    json_t *c, *a;
    json_array_foreach(jx_get(group, "template.spec.containers"), i, c)
    {
        for (size_t l = 0; l < 2; l++) {
            json_array_foreach(json_object_get(c, lists[l]), j, a)
            {
                n += (json_is_string(a) ? json_string_length(a) : 32) + 4;
            }
        }
    }
    return n;
}

static int s_size(const json_t *rc, const json_t *groups, const podbuild_opts_t *opts,
                  const char **reason, buf_t *msg)
{
    size_t ng = json_array_size(groups);
    for (size_t i = 0; i <= ng; i++) {
        bool head = i == ng;
        if (s_user_text(head ? jx_get(rc, "spec.headGroupSpec") : json_array_get(groups, i)) <
            PODBUILD_MAX_TEXT / 2)
            continue;
        json_t *pod = NULL;
        buf_t err;
        buf_init(&err, 4096);
        int rc2 = head ? podbuild_head(rc, opts, &pod, &err)
                       : podbuild_worker(rc, (int)i, opts, &pod, &err);
        json_decref(pod);
        buf_free(&err);
        if (rc2 == ERR_NOMEM)
            return ERR_NOMEM;
        if (rc2 != ERR_TOOBIG)
            continue; /* other failures are the creating stage's to report */
        const json_t *group = head ? jx_get(rc, "spec.headGroupSpec") : json_array_get(groups, i);
        const char *key;
        size_t n = s_largest_param(group, &key);
        char field[64];
        if (head)
            snprintf(field, sizeof(field), "spec.headGroupSpec");
        else
            snprintf(field, sizeof(field), "spec.workerGroupSpecs[%zu]", i);
        *reason = BOUNDS_REASON_SIZE;
        if (n)
            buf_printf(msg,
                       "%s.rayStartParams.%s: %zu bytes: the %s Pod's ray start command would "
                       "exceed %u bytes (rayfleet's bound on a container command)",
                       field, key, n, head ? "head" : "worker", PODBUILD_MAX_TEXT);
        else
            buf_printf(msg,
                       "%s.template: the %s Pod would hold a text over %u bytes (rayfleet's "
                       "bound on a container command)",
                       field, head ? "head" : "worker", PODBUILD_MAX_TEXT);
        return 1;
    }
    return 0;
}

int bounds_check(const json_t *rc, int64_t max_pods, const podbuild_opts_t *opts,
                 const char **reason, buf_t *msg)
{
    const json_t *groups = jx_get(rc, "spec.workerGroupSpecs");
    int r = s_int32(groups, reason, msg);
    if (r == 0)
        r = s_pods(rc, groups, max_pods > 0 ? max_pods : BOUNDS_MAX_PODS_DEFAULT, reason, msg);
    if (r == 0)
        r = s_size(rc, groups, opts, reason, msg);
    return r;
}

#ifdef RF_SELFTEST
#include "selftest.h"

static bool s_t(const char *spec, int64_t cap, const char *want_reason, const char *want_msg)
{
    char doc[4096];
    snprintf(doc, sizeof(doc),
             "{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns\",\"uid\":\"u\"},\"spec\":{"
             "\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{"
             "\"name\":\"ray-head\",\"image\":\"i\"}]}}},\"workerGroupSpecs\":[%s]}}",
             spec);
    json_t *rc = json_loads(doc, 0, NULL);
    buf_t m;
    buf_init(&m, 4096);
    const char *reason = NULL;
    int r = rc ? bounds_check(rc, cap, NULL, &reason, &m) : -1;
    bool ok = want_reason
                  ? r == 1 && strcmp(reason, want_reason) == 0 && strcmp(buf_str(&m), want_msg) == 0
                  : r == 0;
    if (!ok)
        printf("bounds: got %d %s [%s]\n", r, reason ? reason : "-", buf_str(&m));
    buf_free(&m);
    json_decref(rc);
    return ok;
}

#define WG(fields)                                                                                 \
    "{\"groupName\":\"w\"," fields ",\"rayStartParams\":{},\"template\":{\"spec\":{"               \
    "\"containers\":[{\"name\":\"ray-worker\",\"image\":\"i\"}]}}}"

int bounds_test(bool verbose)
{
    int failed = 0;
    CHECK(s_t(WG("\"replicas\":3,\"minReplicas\":0,\"maxReplicas\":5"), 10, NULL, NULL));
    CHECK(s_t(WG("\"replicas\":99999999999,\"maxReplicas\":5"), 10, BOUNDS_REASON_INT32,
              "spec.workerGroupSpecs[0].replicas: Invalid value: 99999999999: must be a 32-bit "
              "integer (KubeRay's int32 field; -2147483648..2147483647)"));
    CHECK(s_t(WG("\"replicas\":1,\"numOfHosts\":-2147483649"), 10, BOUNDS_REASON_INT32,
              "spec.workerGroupSpecs[0].numOfHosts: Invalid value: -2147483649: must be a 32-bit "
              "integer (KubeRay's int32 field; -2147483648..2147483647)"));
    /* clamping first: replicas 1000000 with maxReplicas 9 is 9 pods */
    CHECK(s_t(WG("\"replicas\":1000000,\"minReplicas\":0,\"maxReplicas\":9"), 10, NULL, NULL));
    CHECK(s_t(WG("\"replicas\":1000000,\"minReplicas\":0,\"maxReplicas\":1000000"), 10000,
              BOUNDS_REASON_PODS,
              "spec.workerGroupSpecs[0].replicas: 1000000 replicas x 1 hosts bring the cluster to "
              "1000001 pods, over the per-cluster cap of 10000 (--max-pods-per-cluster)"));
    CHECK(s_t(WG("\"replicas\":5,\"maxReplicas\":5,\"numOfHosts\":2") "," WG(
                  "\"replicas\":5,\"maxReplicas\":5"),
              15, BOUNDS_REASON_PODS,
              "spec.workerGroupSpecs[1].replicas: 5 replicas x 1 hosts bring the cluster to 16 "
              "pods, over the per-cluster cap of 15 (--max-pods-per-cluster)"));
    CHECK(s_t(WG("\"replicas\":1000000,\"maxReplicas\":1000000,\"suspend\":true"), 10, NULL, NULL));
    /* a rayStartParams value over the command bound */
    json_t *rc = json_loads("{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns\",\"uid\":\"u\"},"
                            "\"spec\":{\"headGroupSpec\":{\"rayStartParams\":{},\"template\":{"
                            "\"spec\":{\"containers\":[{\"name\":\"ray-head\",\"image\":\"i\"}]}}},"
                            "\"workerGroupSpecs\":[" WG("\"replicas\":1") "]}}",
                            0, NULL);
    size_t n = (size_t)PODBUILD_MAX_TEXT + 10;
    char *big = malloc(n + 1);
    if (rc && big) {
        memset(big, 'x', n);
        big[n] = '\0';
        json_object_set_new(json_object_get(json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0),
                                            "rayStartParams"),
                            "big", json_string(big));
        buf_t m;
        buf_init(&m, 4096);
        const char *reason = NULL;
        CHECK(bounds_check(rc, 10, NULL, &reason, &m) == 1 &&
              strcmp(reason, BOUNDS_REASON_SIZE) == 0 &&
              strcmp(buf_str(&m), "spec.workerGroupSpecs[0].rayStartParams.big: 262154 bytes: the "
                                  "worker Pod's ray start command would exceed 262144 bytes "
                                  "(rayfleet's bound on a container command)") == 0);
        buf_free(&m);
    }
    free(big);
    json_decref(rc);
    return SELFTEST_RESULT("bounds", verbose);
}
#endif
