/* batchsched: KubeRay's batch-scheduler plugins (see batchsched.h). */
#include "batchsched.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "json.h"
#include "labels.h"
#include "objbuild.h"
#include "rcstatus.h"

#define S_QTY_MAX 64 /* longest formatted quantity */

static const struct {
    batchsched_t b;
    const char *flag;
    const char *sched;
} s_plugins[] = {
    {BATCHSCHED_VOLCANO, "volcano", "volcano"},
    {BATCHSCHED_YUNIKORN, "yunikorn", "yunikorn"},
    {BATCHSCHED_KAI, "kai-scheduler", "kai-scheduler"},
    {BATCHSCHED_SCHEDULER_PLUGINS, "scheduler-plugins", "scheduler-plugins-scheduler"}};
#define S_NPLUGINS (sizeof(s_plugins) / sizeof(s_plugins[0]))

int batchsched_parse(const char *name, batchsched_t *out)
{
    if (!name || !*name) {
        *out = BATCHSCHED_NONE;
        return 0;
    }
    for (size_t i = 0; i < S_NPLUGINS; i++) {
        if (strcmp(name, s_plugins[i].flag) == 0) {
            *out = s_plugins[i].b;
            return 0;
        }
    }
    return ERR_INVAL;
}

const char *batchsched_name(batchsched_t b)
{
    if (b == BATCHSCHED_KUBERNETES_WAS)
        return BATCHSCHED_WAS_NAME;
    for (size_t i = 0; i < S_NPLUGINS; i++)
        if (s_plugins[i].b == b)
            return s_plugins[i].flag;
    return "";
}

const char *batchsched_scheduler_name(batchsched_t b)
{
    if (b == BATCHSCHED_KUBERNETES_WAS)
        return BATCHSCHED_WAS_SCHEDULER;
    for (size_t i = 0; i < S_NPLUGINS; i++)
        if (s_plugins[i].b == b)
            return s_plugins[i].sched;
    return NULL;
}

/* ---- helpers ---- */

static const char *s_label(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.labels"), key));
}

static bool s_has_label(const json_t *o, const char *key)
{
    return json_object_get(jx_get(o, "metadata.labels"), key) != NULL;
}

static int s_set(json_t *obj, const char *key, const char *val)
{
    return obj && json_object_set_new(obj, key, json_string(val)) == 0 ? 0 : ERR_NOMEM;
}

/* populateLabelsFromObject: copies parent label `key` (when non-empty) to the child as `to`. */
static int s_copy_label(const json_t *parent, json_t *meta, const char *key, const char *to)
{
    const char *v = s_label(parent, key);
    if (!v || !*v)
        return 0;
    return s_set(jx_child_obj(meta, "labels"), to, v);
}

static bool s_from_rayjob(const json_t *o)
{
    const char *crd = s_label(o, LABEL_ORIGINATED_FROM_CRD);
    return crd && strcmp(crd, LABEL_CRD_RAYJOB) == 0;
}

/* The RayClusterSpec of a parent: spec (RayCluster) or spec.rayClusterSpec (RayJob). */
static const json_t *s_cluster_spec(const json_t *parent)
{
    const char *kind = jx_str(parent, "kind", "");
    if (strcmp(kind, "RayJob") == 0)
        return jx_get(parent, "spec.rayClusterSpec");
    return json_object_get(parent, "spec");
}

/* ---- resources ---- */

static const char *s_qty(const json_t *v, char num[S_QTY_MAX])
{
    const char *q = json_string_value(v);
    if (!q && json_is_integer(v)) {
        snprintf(num, S_QTY_MAX, "%lld", (long long)json_integer_value(v));
        q = num;
    } else if (!q && json_is_number(v)) {
        snprintf(num, S_QTY_MAX, "%g", json_number_value(v));
        q = num;
    }
    return q;
}

/* acc[name] += q × times, keeping the first non-zero summand's format (Quantity.Add). */
static int s_acc_add(json_t *acc, const char *name, const char *q, int64_t times, buf_t *err)
{
    int64_t m, am = 0;
    bool bin, abin = false;
    if (rcstatus_parse_quantity(q, &m, &bin) != 0) {
        if (err)
            buf_printf(err, "quantity %s of resource %s does not parse", q, name);
        return ERR_INVAL;
    }
    const char *have = json_string_value(json_object_get(acc, name));
    if (have && rcstatus_parse_quantity(have, &am, &abin) != 0)
        am = 0;
    if (!have || am == 0)
        abin = bin;
    char out[S_QTY_MAX];
    rcstatus_format_quantity(am + m * times, abin, out, sizeof(out));
    return s_set(acc, name, out);
}

/* One container's requests, a limit filling a missing request, added × times into acc. */
static int s_add_container(json_t *acc, const json_t *c, int64_t times, buf_t *err)
{
    const json_t *req = jx_get(c, "resources.requests");
    const json_t *lim = jx_get(c, "resources.limits");
    const char *k;
    json_t *v;
    int rc;
    char num[S_QTY_MAX];
    json_object_foreach((json_t *)req, k, v)
    {
        const char *q = s_qty(v, num);
        if (q && (rc = s_acc_add(acc, k, q, times, err)))
            return rc;
    }
    json_object_foreach((json_t *)lim, k, v)
    {
        const char *q = s_qty(v, num);
        if (q && !json_object_get(req, k) && (rc = s_acc_add(acc, k, q, times, err)))
            return rc;
    }
    return 0;
}

/* The quantity acc[name] in milli (0 when absent or unparsable). */
static int64_t s_acc_milli(const json_t *acc, const char *name, bool *bin)
{
    int64_t m = 0;
    const char *q = json_string_value(json_object_get(acc, name));
    if (!q || rcstatus_parse_quantity(q, &m, bin) != 0)
        return 0;
    return m;
}

/* acc[name] = max(acc[name], other[name]) for every name of other. */
static int s_acc_max(json_t *acc, const json_t *other)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)other, k, v)
    {
        bool ob = false, ab = false;
        int64_t o = s_acc_milli(other, k, &ob);
        if (!json_object_get(acc, k) || o > s_acc_milli(acc, k, &ab)) {
            int rc = s_set(acc, k, json_string_value(v));
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Kubernetes' PodRequests (k8s.io/component-helpers resource.PodRequests): per resource the
 * larger of (regular containers + restartable init containers, i.e. native sidecars) and of the
 * largest (init container + the sidecars started before it), plus spec.overhead. */
static int s_add_pod_kube(json_t *acc, const json_t *podspec, int64_t times, buf_t *err)
{
    json_t *pod = json_object(), *sidecars = json_object(), *init_max = json_object();
    int rc = (pod && sidecars && init_max) ? 0 : ERR_NOMEM;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(podspec, "containers"), i, c)
    {
        if (rc == 0)
            rc = s_add_container(pod, c, 1, err);
    }
    json_array_foreach(json_object_get(podspec, "initContainers"), i, c)
    {
        if (rc != 0)
            break;
        if (strcmp(jx_str(c, "restartPolicy", ""), "Always") == 0) {
            rc = s_add_container(sidecars, c, 1, err);
            if (rc == 0)
                rc = s_add_container(pod, c, 1, err);
            continue;
        }
        json_t *one = json_deep_copy(sidecars);
        rc = one ? s_add_container(one, c, 1, err) : ERR_NOMEM;
        if (rc == 0)
            rc = s_acc_max(init_max, one);
        json_decref(one);
    }
    if (rc == 0)
        rc = s_acc_max(pod, init_max);
    const char *k;
    json_t *v;
    char num[S_QTY_MAX];
    json_object_foreach(json_object_get(podspec, "overhead"), k, v)
    {
        const char *q = s_qty(v, num);
        if (rc == 0 && q)
            rc = s_acc_add(pod, k, q, 1, err);
    }
    json_object_foreach(pod, k, v)
    {
        if (rc == 0)
            rc = s_acc_add(acc, k, json_string_value(v), times, err);
    }
    json_decref(pod);
    json_decref(sidecars);
    json_decref(init_max);
    return rc;
}

int batchsched_add_pod_resources(json_t *acc, const json_t *podspec, int64_t times, unsigned flags,
                                 buf_t *err)
{
    if (flags & BATCHSCHED_RES_KUBE)
        return s_add_pod_kube(acc, podspec, times, err);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(podspec, "containers"), i, c)
    {
        int rc = s_add_container(acc, c, times, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int batchsched_cluster_gang(const json_t *rcspec, int64_t *min_member, json_t **resources_out,
                            buf_t *err)
{
    *resources_out = NULL;
    json_t *acc = json_object();
    if (!acc)
        return ERR_NOMEM;
    bool autoscaling = jx_bool(rcspec, "enableInTreeAutoscaling", false);
    int64_t members = 1;
    int rc =
        batchsched_add_pod_resources(acc, jx_get(rcspec, "headGroupSpec.template.spec"), 1, 0, err);
    size_t i;
    json_t *wg;
    json_array_foreach(json_object_get(rcspec, "workerGroupSpecs"), i, wg)
    {
        if (rc)
            break;
        int64_t n;
        if (autoscaling)
            n = jx_bool(wg, "suspend", false)
                    ? 0
                    : jx_int(wg, "minReplicas", 0) * jx_int(wg, "numOfHosts", 1);
        else
            n = rcstatus_group_desired(wg);
        members += n;
        rc = batchsched_add_pod_resources(acc, jx_get(wg, "template.spec"), n, 0, err);
    }
    if (rc) {
        json_decref(acc);
        return rc;
    }
    *min_member = members;
    *resources_out = acc;
    return 0;
}

/* ---- metadata ---- */

int batchsched_volcano_pg_name(const json_t *obj, buf_t *out)
{
    const char *name = jx_str(obj, "metadata.name", "");
    const char *job = s_label(obj, LABEL_ORIGINATED_FROM_CR_NAME);
    if (s_from_rayjob(obj) && job && *job)
        name = job;
    return buf_printf(out, "ray-%s-pg", name);
}

/* A copy of object `o` with its keys in sorted order (as Go marshals a map). */
static json_t *s_sorted(const json_t *o)
{
    char *d = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_t *c = d ? json_loads(d, 0, NULL) : NULL;
    free(d);
    return c ? c : json_object();
}

/* YuniKorn task groups of a cluster spec: head (minMember 1) then each worker group (minMember
 * minReplicas × numOfHosts), as KubeRay marshals []TaskGroup. */
static int s_task_groups(const json_t *rcspec, buf_t *out, buf_t *err)
{
    json_t *arr = json_array();
    int rc = arr ? 0 : ERR_NOMEM;
    const json_t *head = json_object_get(rcspec, "headGroupSpec");
    size_t n = json_array_size(json_object_get(rcspec, "workerGroupSpecs"));
    for (size_t i = 0; rc == 0 && i <= n; i++) {
        const json_t *g = i == 0 ? head : json_array_get(jx_get(rcspec, "workerGroupSpecs"), i - 1);
        const json_t *ps = jx_get(g, "template.spec");
        json_t *res = json_object();
        json_t *tg = json_object();
        if (!res || !tg) {
            json_decref(res);
            json_decref(tg);
            rc = ERR_NOMEM;
            break;
        }
        rc = batchsched_add_pod_resources(res, ps, 1, 0, err);
        /* Go marshals map keys sorted */
        json_object_set_new(tg, "minResource", s_sorted(res));
        json_decref(res);
        const json_t *ns = json_object_get(ps, "nodeSelector");
        if (json_object_size(ns))
            json_object_set_new(tg, "nodeSelector", s_sorted(ns));
        if (json_object_get(ps, "affinity"))
            json_object_set(tg, "affinity", json_object_get(ps, "affinity"));
        json_object_set_new(tg, "name",
                            json_string(i == 0 ? LABEL_GROUP_HEAD : jx_str(g, "groupName", "")));
        if (json_array_size(json_object_get(ps, "tolerations")))
            json_object_set(tg, "tolerations", json_object_get(ps, "tolerations"));
        json_object_set_new(
            tg, "minMember",
            json_integer(i == 0 ? 1 : jx_int(g, "minReplicas", 0) * jx_int(g, "numOfHosts", 1)));
        if (json_array_append_new(arr, tg) != 0)
            rc = ERR_NOMEM;
    }
    if (rc == 0) {
        char *d = json_dumps(arr, JSON_PRESERVE_ORDER | JSON_COMPACT);
        rc = d ? buf_puts(out, d) : ERR_NOMEM;
        free(d);
    }
    json_decref(arr);
    return rc;
}

/* Kubernetes WAS's AddMetadataToChildResource: a RayCluster parent only, not skipped. */
static int s_was_metadata(const json_t *parent, json_t *child)
{
    if (strcmp(jx_str(parent, "kind", ""), "RayCluster") != 0 || batchsched_was_skip_reason(parent))
        return 0;
    buf_t pg;
    buf_init(&pg, 1024);
    json_t *spec = jx_child_obj(child, "spec");
    json_t *sg = spec ? jx_child_obj(spec, "schedulingGroup") : NULL;
    int rc =
        sg ? batchsched_was_podgroup_name(jx_str(parent, "metadata.name", ""), &pg) : ERR_NOMEM;
    if (rc == 0)
        rc = s_set(spec, "schedulerName", BATCHSCHED_WAS_SCHEDULER);
    if (rc == 0)
        rc = s_set(sg, "podGroupName", buf_str(&pg));
    buf_free(&pg);
    return rc;
}

int batchsched_add_metadata(batchsched_t b, const json_t *parent, json_t *child, const char *group)
{
    if (b == BATCHSCHED_NONE)
        return 0;
    if (b == BATCHSCHED_KUBERNETES_WAS)
        return s_was_metadata(parent, child);
    /* scheduler-plugins: AddMetadataToRayClusterFromRayJob / ...SubmitterPodTemplateFromRayJob
     * are no-ops */
    if (b == BATCHSCHED_SCHEDULER_PLUGINS && strcmp(jx_str(parent, "kind", ""), "RayJob") == 0)
        return 0;
    json_t *meta = jx_child_obj(child, "metadata");
    if (!meta)
        return ERR_NOMEM;
    int rc = 0;
    buf_t v;
    buf_init(&v, 1u << 20);
    switch (b) {
    case BATCHSCHED_VOLCANO:
        rc = s_copy_label(parent, meta, BATCHSCHED_VOLCANO_QUEUE_LABEL,
                          BATCHSCHED_VOLCANO_QUEUE_LABEL);
        if (rc == 0)
            rc = s_copy_label(parent, meta, LABEL_PRIORITY_CLASS_NAME, LABEL_PRIORITY_CLASS_NAME);
        if (rc == 0)
            rc = batchsched_volcano_pg_name(parent, &v);
        if (rc == 0)
            rc =
                s_set(jx_child_obj(meta, "annotations"), BATCHSCHED_VOLCANO_GROUP_ANN, buf_str(&v));
        if (rc == 0)
            rc = s_set(jx_child_obj(meta, "annotations"), BATCHSCHED_VOLCANO_TASK_SPEC_ANN, group);
        break;
    case BATCHSCHED_YUNIKORN:
        rc = s_copy_label(parent, meta, BATCHSCHED_YUNIKORN_APP_ID_LABEL,
                          BATCHSCHED_YUNIKORN_POD_APP_ID_LABEL);
        if (rc == 0)
            rc = s_copy_label(parent, meta, BATCHSCHED_YUNIKORN_QUEUE_LABEL,
                              BATCHSCHED_YUNIKORN_POD_QUEUE_LABEL);
        if (rc == 0 && s_has_label(parent, LABEL_GANG_SCHEDULING)) {
            rc = s_task_groups(s_cluster_spec(parent), &v, NULL);
            if (rc == 0)
                rc = s_set(jx_child_obj(meta, "annotations"), BATCHSCHED_YUNIKORN_TASK_GROUPS_ANN,
                           buf_str(&v));
            if (rc == 0)
                rc = s_set(jx_child_obj(meta, "annotations"),
                           BATCHSCHED_YUNIKORN_TASK_GROUP_NAME_ANN, group);
        }
        break;
    case BATCHSCHED_KAI:
        rc = s_copy_label(parent, meta, BATCHSCHED_KAI_QUEUE_LABEL, BATCHSCHED_KAI_QUEUE_LABEL);
        break;
    case BATCHSCHED_SCHEDULER_PLUGINS:
        if (s_has_label(parent, LABEL_GANG_SCHEDULING))
            rc = s_set(jx_child_obj(meta, "labels"), BATCHSCHED_SP_POD_GROUP_LABEL,
                       jx_str(parent, "metadata.name", ""));
        break;
    case BATCHSCHED_NONE:
    case BATCHSCHED_KUBERNETES_WAS:
        break;
    }
    buf_free(&v);
    if (rc == 0 && strcmp(jx_str(child, "kind", ""), "RayCluster") != 0)
        rc = s_set(jx_child_obj(child, "spec"), "schedulerName", batchsched_scheduler_name(b));
    return rc;
}

/* ---- PodGroups ---- */

static json_t *s_pg_skeleton(const char *api, const json_t *owner, const char *name, json_t *refs)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{}}", "apiVersion", api, "kind", "PodGroup",
                     "metadata", "name", name, "namespace", jx_str(owner, "metadata.namespace", ""),
                     "ownerReferences", refs, "spec");
}

/* Volcano createPodGroup for `owner` (RayCluster or RayJob) with the gang given. */
static int s_volcano_pg(const json_t *owner, const char *kind, int64_t members, json_t *res,
                        json_t **pg_out, buf_t *err)
{
    buf_t name;
    buf_init(&name, 1024);
    int rc = batchsched_volcano_pg_name(owner, &name);
    json_t *refs = objbuild_controller_refs(owner, kind);
    json_t *pg = rc == 0 && refs
                     ? s_pg_skeleton("scheduling.volcano.sh/v1beta1", owner, buf_str(&name), refs)
                     : NULL;
    if (!refs || !pg) {
        if (!pg)
            json_decref(refs);
        buf_free(&name);
        json_decref(res);
        return rc ? rc : ERR_NOMEM;
    }
    json_t *spec = json_object_get(pg, "spec");
    json_object_set_new(spec, "minMember", json_integer(members));
    json_object_set_new(spec, "minResources", res);
    const char *mode = s_label(owner, BATCHSCHED_VOLCANO_TOPOLOGY_MODE_LABEL);
    if (mode) {
        json_t *nt = json_pack("{s:s}", "mode", mode);
        const char *tier = s_label(owner, BATCHSCHED_VOLCANO_TOPOLOGY_TIER_LABEL);
        if (nt && tier) {
            char *end = NULL;
            errno = 0;
            long t = strtol(tier, &end, 10);
            if (!*tier || *end || errno || t > INT_MAX || t < INT_MIN) {
                if (err)
                    buf_printf(err,
                               "failed to convert %s label to int: strconv.Atoi: parsing \"%s\": "
                               "invalid syntax for podgroup %s in namespace %s",
                               BATCHSCHED_VOLCANO_TOPOLOGY_TIER_LABEL, tier, buf_str(&name),
                               jx_str(owner, "metadata.namespace", ""));
                rc = ERR_INVAL;
            } else {
                json_object_set_new(nt, "highestTierAllowed", json_integer(t));
            }
        }
        if (!nt || json_object_set_new(spec, "networkTopology", nt) != 0)
            rc = rc ? rc : ERR_NOMEM;
    }
    const char *queue = s_label(owner, BATCHSCHED_VOLCANO_QUEUE_LABEL);
    if (queue && *queue)
        json_object_set_new(spec, "queue", json_string(queue));
    const char *pc = s_label(owner, LABEL_PRIORITY_CLASS_NAME);
    if (pc && *pc)
        json_object_set_new(spec, "priorityClassName", json_string(pc));
    json_object_set_new(pg, "status", json_pack("{s:s}", "phase", "Pending"));
    buf_free(&name);
    if (rc) {
        json_decref(pg);
        return rc;
    }
    *pg_out = pg;
    return 0;
}

int batchsched_podgroup(batchsched_t b, const json_t *raycluster, json_t **pg_out, buf_t *err)
{
    *pg_out = NULL;
    if (b != BATCHSCHED_VOLCANO && b != BATCHSCHED_SCHEDULER_PLUGINS)
        return 0;
    if (b == BATCHSCHED_VOLCANO && s_from_rayjob(raycluster))
        return 0; /* the RayJob owns the PodGroup */
    if (b == BATCHSCHED_SCHEDULER_PLUGINS && !s_has_label(raycluster, LABEL_GANG_SCHEDULING))
        return 0;
    const json_t *spec = json_object_get(raycluster, "spec");
    int64_t members;
    json_t *res = NULL;
    int rc;
    if (b == BATCHSCHED_SCHEDULER_PLUGINS) {
        /* scheduler-plugins always uses the desired size (autoscaling not considered) */
        json_t *tmp = json_deep_copy(spec);
        if (!tmp)
            return ERR_NOMEM;
        json_object_del(tmp, "enableInTreeAutoscaling");
        rc = batchsched_cluster_gang(tmp, &members, &res, err);
        json_decref(tmp);
    } else {
        rc = batchsched_cluster_gang(spec, &members, &res, err);
    }
    if (rc)
        return rc;
    if (b == BATCHSCHED_VOLCANO)
        return s_volcano_pg(raycluster, "RayCluster", members, res, pg_out, err);
    json_t *refs = json_pack(
        "[{s:s, s:s, s:s, s:s}]", "apiVersion", jx_str(raycluster, "apiVersion", "ray.io/v1"),
        "kind", jx_str(raycluster, "kind", "RayCluster"), "name",
        jx_str(raycluster, "metadata.name", ""), "uid", jx_str(raycluster, "metadata.uid", ""));
    json_t *pg = refs ? s_pg_skeleton("scheduling.x-k8s.io/v1alpha1", raycluster,
                                      jx_str(raycluster, "metadata.name", ""), refs)
                      : NULL;
    if (!pg) {
        json_decref(res);
        return ERR_NOMEM;
    }
    json_t *ps = json_object_get(pg, "spec");
    json_object_set_new(ps, "minMember", json_integer(members));
    json_object_set_new(ps, "minResources", res);
    *pg_out = pg;
    return 0;
}

int batchsched_rayjob_podgroup(batchsched_t b, const json_t *rayjob,
                               const json_t *submitter_podspec, json_t **pg_out, buf_t *err)
{
    *pg_out = NULL;
    if (b != BATCHSCHED_VOLCANO)
        return 0;
    const json_t *rcspec = jx_get(rayjob, "spec.rayClusterSpec");
    if (!rcspec) {
        if (err)
            buf_printf(err,
                       "gang scheduling does not support RayJob %s/%s referencing an existing "
                       "RayCluster",
                       jx_str(rayjob, "metadata.namespace", ""),
                       jx_str(rayjob, "metadata.name", ""));
        return ERR_INVAL;
    }
    int64_t members;
    json_t *res = NULL;
    int rc = batchsched_cluster_gang(rcspec, &members, &res, err);
    if (rc == 0 && submitter_podspec)
        rc = batchsched_add_pod_resources(res, submitter_podspec, 1, 0, err);
    if (rc) {
        json_decref(res);
        return rc;
    }
    return s_volcano_pg(rayjob, "RayJob", members, res, pg_out, err);
}

int batchsched_rayjob_podgroup_final(batchsched_t b, const json_t *rayjob, const json_t *cluster,
                                     json_t **pg_out, buf_t *err)
{
    *pg_out = NULL;
    if (b != BATCHSCHED_VOLCANO || json_object_size(jx_get(rayjob, "spec.clusterSelector")) ||
        !*jx_str(rayjob, "status.rayClusterName", ""))
        return 0;
    int64_t members = 0;
    json_t *res = NULL;
    int rc = 0;
    if (cluster && !jx_get(cluster, "metadata.deletionTimestamp"))
        rc = batchsched_cluster_gang(json_object_get(cluster, "spec"), &members, &res, err);
    else
        res = json_object();
    if (rc)
        return rc;
    if (!res)
        return ERR_NOMEM;
    return s_volcano_pg(rayjob, "RayJob", members, res, pg_out, err);
}

int batchsched_podgroup_key(const json_t *pg, buf_t *out)
{
    char *r = json_dumps(jx_get(pg, "spec.minResources"), JSON_COMPACT | JSON_SORT_KEYS);
    int rc = buf_printf(out, "PodGroup/%s#%lld#%s", jx_str(pg, "metadata.name", ""),
                        (long long)jx_int(pg, "spec.minMember", 0), r ? r : "");
    free(r);
    return rc;
}

batchsched_sync_t batchsched_podgroup_sync(const json_t *live, const json_t *want, bool update,
                                           json_t **obj_out)
{
    *obj_out = NULL;
    if (!live)
        return BATCHSCHED_SYNC_CREATE;
    if (!update || !batchsched_podgroup_differs(live, want))
        return BATCHSCHED_SYNC_NONE;
    json_t *upd = json_deep_copy(live);
    json_t *spec = upd ? jx_child_obj(upd, "spec") : NULL;
    if (!spec || json_object_set(spec, "minMember", jx_get(want, "spec.minMember")) != 0 ||
        json_object_set(spec, "minResources", jx_get(want, "spec.minResources")) != 0) {
        json_decref(upd);
        return BATCHSCHED_SYNC_UPDATE;
    }
    *obj_out = upd;
    return BATCHSCHED_SYNC_UPDATE;
}

/* quotav1.Equals: the same names with the same values. */
static bool s_res_equal(const json_t *a, const json_t *b)
{
    if (json_object_size(a) != json_object_size(b))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v)
    {
        char n1[S_QTY_MAX], n2[S_QTY_MAX];
        const char *q1 = s_qty(v, n1), *q2 = s_qty(json_object_get(b, k), n2);
        int64_t m1, m2;
        if (!q1 || !q2 || rcstatus_parse_quantity(q1, &m1, NULL) != 0 ||
            rcstatus_parse_quantity(q2, &m2, NULL) != 0 || m1 != m2)
            return false;
    }
    return true;
}

bool batchsched_podgroup_differs(const json_t *live, const json_t *want)
{
    if (jx_int(live, "spec.minMember", 0) != jx_int(want, "spec.minMember", 0))
        return true;
    const json_t *lr = jx_get(live, "spec.minResources");
    return !lr || !s_res_equal(lr, jx_get(want, "spec.minResources"));
}

int batchsched_podgroup_api(const json_t *pg, char *group, size_t gsize, char *version,
                            size_t vsize)
{
    const char *api = jx_str(pg, "apiVersion", "");
    const char *slash = strchr(api, '/');
    if (!slash)
        return ERR_INVAL;
    snprintf(group, gsize, "%.*s", (int)(slash - api), api);
    snprintf(version, vsize, "%s", slash + 1);
    return 0;
}

int batchsched_check_rayjob(batchsched_t b, const json_t *rayjob, buf_t *err)
{
    if (b != BATCHSCHED_KAI)
        return 0;
    const char *mode = jx_str(rayjob, "spec.submissionMode", "K8sJobMode");
    if (strcmp(mode, "K8sJobMode") != 0 && *mode)
        return 0;
    if (err)
        buf_puts(err, BATCHSCHED_KAI_K8SJOB_MSG);
    return ERR_INVAL;
}

/* ---- Kubernetes WAS ---- */

static bool s_streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

const char *batchsched_was_skip_reason(const json_t *raycluster)
{
    const char *v = s_label(raycluster, LABEL_GANG_SCHEDULING);
    if (!v || strcasecmp(v, "false") == 0)
        return BATCHSCHED_WAS_SKIP_LABEL;
    if (jx_bool(raycluster, "spec.enableInTreeAutoscaling", false))
        return BATCHSCHED_WAS_SKIP_AUTOSCALING;
    return NULL;
}

int64_t batchsched_was_min_count(const json_t *raycluster)
{
    int64_t n = 1;
    size_t i;
    json_t *wg;
    json_array_foreach(jx_get(raycluster, "spec.workerGroupSpecs"), i, wg) n +=
        rcstatus_group_desired(wg);
    return n;
}

int batchsched_was_podgroup_name(const char *cluster, buf_t *out)
{
    return buf_printf(out, "%s-%s", cluster, BATCHSCHED_WAS_TEMPLATE);
}

/* {apiVersion, kind, metadata {name, namespace, labels {ray.io/cluster}, ownerReferences}, spec}
 * controlled by the RayCluster; NULL on out of memory. */
static json_t *s_was_skeleton(const json_t *rc, const char *kind, const char *name, json_t *spec)
{
    const char *cluster = jx_str(rc, "metadata.name", "");
    json_t *refs = objbuild_owner_refs(rc);
    if (!refs || !spec) {
        json_decref(refs);
        json_decref(spec);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:o}, s:o}", "apiVersion",
                     BATCHSCHED_WAS_API, "kind", kind, "metadata", "name", name, "namespace",
                     jx_str(rc, "metadata.namespace", ""), "labels", LABEL_CLUSTER, cluster,
                     "ownerReferences", refs, "spec", spec);
}

int batchsched_was_objects(const json_t *raycluster, json_t **workload_out, json_t **podgroup_out)
{
    *workload_out = *podgroup_out = NULL;
    const char *cluster = jx_str(raycluster, "metadata.name", "");
    int64_t min = batchsched_was_min_count(raycluster);
    buf_t pg;
    buf_init(&pg, 1024);
    if (batchsched_was_podgroup_name(cluster, &pg) != 0) {
        buf_free(&pg);
        return ERR_NOMEM;
    }
    json_t *w =
        s_was_skeleton(raycluster, "Workload", cluster,
                       json_pack("{s:{s:s, s:s, s:s}, s:[{s:s, s:{s:{s:I}}}]}", "controllerRef",
                                 "apiGroup", "ray.io", "kind", "RayCluster", "name", cluster,
                                 "podGroupTemplates", "name", BATCHSCHED_WAS_TEMPLATE,
                                 "schedulingPolicy", "gang", "minCount", (json_int_t)min));
    json_t *p = s_was_skeleton(raycluster, "PodGroup", buf_str(&pg),
                               json_pack("{s:{s:{s:s, s:s}}, s:{s:{s:I}}}", "podGroupTemplateRef",
                                         "workload", "workloadName", cluster,
                                         "podGroupTemplateName", BATCHSCHED_WAS_TEMPLATE,
                                         "schedulingPolicy", "gang", "minCount", (json_int_t)min));
    buf_free(&pg);
    if (!w || !p) {
        json_decref(w);
        json_decref(p);
        return ERR_NOMEM;
    }
    *workload_out = w;
    *podgroup_out = p;
    return 0;
}

/* gang.minCount of a scheduling policy, or -1 when there is no gang (or no integer minCount). */
static int64_t s_gang_min(const json_t *policy)
{
    const json_t *m = jx_get(policy, "gang.minCount");
    return json_is_integer(m) ? json_integer_value(m) : -1;
}

bool batchsched_was_workload_stale(const json_t *live, const json_t *want)
{
    const json_t *lt = jx_get(live, "spec.podGroupTemplates");
    if (json_array_size(lt) != 1)
        return true;
    const json_t *l = json_array_get(lt, 0);
    const json_t *w = json_array_get(jx_get(want, "spec.podGroupTemplates"), 0);
    int64_t lm = s_gang_min(json_object_get(l, "schedulingPolicy"));
    return strcmp(jx_str(l, "name", ""), jx_str(w, "name", "")) != 0 || lm < 0 ||
           lm != s_gang_min(json_object_get(w, "schedulingPolicy"));
}

bool batchsched_was_podgroup_stale(const json_t *live, const json_t *want)
{
    int64_t lm = s_gang_min(jx_get(live, "spec.schedulingPolicy"));
    return lm < 0 || lm != s_gang_min(jx_get(want, "spec.schedulingPolicy"));
}

bool batchsched_was_controlled(const json_t *obj, const json_t *raycluster)
{
    const char *uid = jx_str(raycluster, "metadata.uid", "");
    size_t i;
    json_t *r;
    json_array_foreach(jx_get(obj, "metadata.ownerReferences"), i, r)
    {
        if (jx_bool(r, "controller", false))
            return uid[0] && strcmp(jx_str(r, "uid", ""), uid) == 0;
    }
    return false;
}

json_t *batchsched_was_unprotected(const json_t *podgroup, bool *nomem)
{
    *nomem = false;
    const json_t *fins = jx_get(podgroup, "metadata.finalizers");
    bool has = false;
    size_t i;
    json_t *f;
    json_array_foreach(fins, i, f) has |= s_streq(json_string_value(f), BATCHSCHED_WAS_FINALIZER);
    if (!has)
        return NULL;
    json_t *copy = json_deep_copy(podgroup);
    json_t *keep = json_array();
    json_t *meta = copy ? json_object_get(copy, "metadata") : NULL;
    if (!meta || !keep) {
        json_decref(copy);
        json_decref(keep);
        *nomem = true;
        return NULL;
    }
    json_array_foreach(fins, i, f)
    {
        if (!s_streq(json_string_value(f), BATCHSCHED_WAS_FINALIZER))
            json_array_append(keep, f);
    }
    json_object_set_new(meta, "finalizers", keep);
    return copy;
}

#ifdef RF_SELFTEST
#include "selftest.h"

static bool s_t_str(const json_t *o, const char *path, const char *want, bool verbose)
{
    const char *got = jx_str(o, path, NULL);
    bool ok = got && strcmp(got, want) == 0;
    if (!ok && verbose)
        fprintf(stderr, "  %s: got %s, want %s\n", path, got ? got : "(none)", want);
    return ok;
}

static const char *s_t_lbl(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.labels"), k));
}

static const char *s_t_ann(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.annotations"), k));
}

static bool s_t_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static const char *s_t_rc =
    "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\","
    "\"metadata\":{\"name\":\"c1\",\"namespace\":\"ns\",\"uid\":\"u1\","
    "\"labels\":{\"volcano.sh/queue-name\":\"kuberay-test-queue\","
    "\"ray.io/priority-class-name\":\"hi\",\"yunikorn.apache.org/app-id\":\"app1\","
    "\"yunikorn.apache.org/queue\":\"root.q\",\"kai.scheduler/queue\":\"team-a\"}},"
    "\"spec\":{\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\","
    "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},"
    "\"limits\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}}}]}}},"
    "\"workerGroupSpecs\":[{\"groupName\":\"wg\",\"replicas\":2,\"minReplicas\":1,"
    "\"maxReplicas\":5,\"template\":{\"spec\":{\"nodeSelector\":{\"z\":\"1\",\"a\":\"2\"},"
    "\"containers\":[{\"name\":\"w\",\"resources\":{\"requests\":{\"cpu\":\"500m\"},"
    "\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\",\"nvidia.com/gpu\":1}}}]}}},"
    "{\"groupName\":\"off\",\"replicas\":3,\"minReplicas\":1,\"suspend\":true,"
    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\",\"resources\":{\"requests\":"
    "{\"cpu\":\"4\"}}}]}}}]}}";

/* Kubernetes WAS (v1alpha2) on the test RayCluster `rc0` (2 wanted workers of group wg, the
 * suspended group's 3 not counted): the objects field by field, staleness, skip reasons, pod
 * metadata, the protection finalizer. */
static int s_t_was(const json_t *rc0, bool verbose)
{
    int failed = 0;
    json_t *rc = json_deep_copy(rc0);
    json_t *labels = jx_child_obj(json_object_get(rc, "metadata"), "labels");
    CHECK(s_t_eq(batchsched_name(BATCHSCHED_KUBERNETES_WAS), "kubernetes-was-v1alpha2"));
    CHECK(s_t_eq(batchsched_scheduler_name(BATCHSCHED_KUBERNETES_WAS), "default-scheduler"));
    batchsched_t b = BATCHSCHED_NONE;
    CHECK(batchsched_parse("kubernetes-was-v1alpha2", &b) == ERR_INVAL); /* the gate only */

    /* skip reasons: no label, "false" in any case; any other value enables; autoscaling */
    CHECK(s_t_eq(batchsched_was_skip_reason(rc), BATCHSCHED_WAS_SKIP_LABEL));
    json_object_set_new(labels, LABEL_GANG_SCHEDULING, json_string("FaLsE"));
    CHECK(s_t_eq(batchsched_was_skip_reason(rc), BATCHSCHED_WAS_SKIP_LABEL));
    json_object_set_new(labels, LABEL_GANG_SCHEDULING, json_string(""));
    CHECK(batchsched_was_skip_reason(rc) == NULL);
    json_object_set_new(labels, LABEL_GANG_SCHEDULING, json_string("true"));
    CHECK(batchsched_was_skip_reason(rc) == NULL);
    json_t *as = json_deep_copy(rc);
    json_object_set_new(json_object_get(as, "spec"), "enableInTreeAutoscaling", json_true());
    CHECK(s_t_eq(batchsched_was_skip_reason(as), BATCHSCHED_WAS_SKIP_AUTOSCALING));

    /* the Workload and the PodGroup */
    json_t *w = NULL, *pg = NULL;
    CHECK(batchsched_was_min_count(rc) == 3);
    CHECK(batchsched_was_objects(rc, &w, &pg) == 0 && w && pg);
    CHECK(s_t_str(w, "apiVersion", "scheduling.k8s.io/v1alpha2", verbose));
    CHECK(s_t_str(w, "kind", "Workload", verbose));
    CHECK(s_t_str(w, "metadata.name", "c1", verbose));
    CHECK(s_t_str(w, "metadata.namespace", "ns", verbose));
    CHECK(s_t_eq(s_t_lbl(w, "ray.io/cluster"), "c1") &&
          json_object_size(jx_get(w, "metadata.labels")) == 1);
    const json_t *ref = json_array_get(jx_get(w, "metadata.ownerReferences"), 0);
    CHECK(json_array_size(jx_get(w, "metadata.ownerReferences")) == 1);
    CHECK(s_t_str(ref, "apiVersion", "ray.io/v1", verbose) &&
          s_t_str(ref, "kind", "RayCluster", verbose) && s_t_str(ref, "name", "c1", verbose) &&
          s_t_str(ref, "uid", "u1", verbose) && jx_bool(ref, "controller", false) &&
          jx_bool(ref, "blockOwnerDeletion", false));
    CHECK(s_t_str(w, "spec.controllerRef.apiGroup", "ray.io", verbose));
    CHECK(s_t_str(w, "spec.controllerRef.kind", "RayCluster", verbose));
    CHECK(s_t_str(w, "spec.controllerRef.name", "c1", verbose));
    const json_t *tpl = json_array_get(jx_get(w, "spec.podGroupTemplates"), 0);
    CHECK(json_array_size(jx_get(w, "spec.podGroupTemplates")) == 1);
    CHECK(s_t_str(tpl, "name", "cluster", verbose));
    CHECK(jx_int(tpl, "schedulingPolicy.gang.minCount", 0) == 3);
    CHECK(s_t_str(pg, "apiVersion", "scheduling.k8s.io/v1alpha2", verbose));
    CHECK(s_t_str(pg, "kind", "PodGroup", verbose));
    CHECK(s_t_str(pg, "metadata.name", "c1-cluster", verbose));
    CHECK(s_t_eq(s_t_lbl(pg, "ray.io/cluster"), "c1"));
    CHECK(s_t_str(pg, "spec.podGroupTemplateRef.workload.workloadName", "c1", verbose));
    CHECK(
        s_t_str(pg, "spec.podGroupTemplateRef.workload.podGroupTemplateName", "cluster", verbose));
    CHECK(jx_int(pg, "spec.schedulingPolicy.gang.minCount", 0) == 3);
    CHECK(batchsched_was_controlled(w, rc) && batchsched_was_controlled(pg, rc));
    CHECK(!batchsched_was_workload_stale(w, w) && !batchsched_was_podgroup_stale(pg, pg));

    /* numOfHosts and a scale change: stale */
    json_t *big = json_deep_copy(rc), *w2 = NULL, *pg2 = NULL;
    json_t *wg = json_array_get(jx_get(big, "spec.workerGroupSpecs"), 0);
    json_object_set_new(wg, "replicas", json_integer(3));
    json_object_set_new(wg, "numOfHosts", json_integer(2));
    CHECK(batchsched_was_min_count(big) == 7);
    CHECK(batchsched_was_objects(big, &w2, &pg2) == 0);
    CHECK(batchsched_was_workload_stale(w, w2) && batchsched_was_podgroup_stale(pg, pg2));
    /* a live Workload with a renamed template, two templates, or no gang: stale */
    json_t *lw = json_deep_copy(w);
    json_t *lt = json_array_get(jx_get(lw, "spec.podGroupTemplates"), 0);
    json_object_set_new(lt, "name", json_string("other"));
    CHECK(batchsched_was_workload_stale(lw, w));
    json_object_set_new(lt, "name", json_string("cluster"));
    json_array_append(json_object_get(json_object_get(lw, "spec"), "podGroupTemplates"), lt);
    CHECK(batchsched_was_workload_stale(lw, w));
    json_array_remove(json_object_get(json_object_get(lw, "spec"), "podGroupTemplates"), 1);
    json_object_set_new(lt, "schedulingPolicy", json_object());
    CHECK(batchsched_was_workload_stale(lw, w));
    json_t *lp = json_deep_copy(pg);
    json_object_set_new(json_object_get(lp, "spec"), "schedulingPolicy", json_object());
    CHECK(batchsched_was_podgroup_stale(lp, pg));
    json_decref(lw);
    json_decref(lp);

    /* another controller (or none) */
    json_t *foreign = json_deep_copy(pg);
    json_object_set_new(json_array_get(jx_get(foreign, "metadata.ownerReferences"), 0), "uid",
                        json_string("u2"));
    CHECK(!batchsched_was_controlled(foreign, rc));
    json_object_del(json_object_get(foreign, "metadata"), "ownerReferences");
    CHECK(!batchsched_was_controlled(foreign, rc));
    json_decref(foreign);

    /* the protection finalizer: removed, others kept; none: NULL */
    bool nomem = true;
    CHECK(batchsched_was_unprotected(pg, &nomem) == NULL && !nomem);
    json_t *prot = json_deep_copy(pg);
    json_object_set_new(json_object_get(prot, "metadata"), "finalizers",
                        json_pack("[s,s]", "example.com/keep", BATCHSCHED_WAS_FINALIZER));
    json_t *un = batchsched_was_unprotected(prot, &nomem);
    CHECK(un && json_array_size(jx_get(un, "metadata.finalizers")) == 1 &&
          s_t_eq(json_string_value(json_array_get(jx_get(un, "metadata.finalizers"), 0)),
                 "example.com/keep"));
    CHECK(json_array_size(jx_get(prot, "metadata.finalizers")) == 2); /* input untouched */
    json_decref(un);
    json_decref(prot);

    /* pod metadata: schedulerName and schedulingGroup, nothing else */
    json_t *pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_KUBERNETES_WAS, rc, pod, "wg") == 0);
    CHECK(s_t_str(pod, "spec.schedulerName", "default-scheduler", verbose));
    CHECK(s_t_str(pod, "spec.schedulingGroup.podGroupName", "c1-cluster", verbose));
    CHECK(json_object_size(jx_get(pod, "metadata")) == 0);
    json_decref(pod);
    /* skipped (autoscaling, no label) or a RayJob parent: nothing */
    const json_t *parents[] = {as, rc0};
    for (size_t i = 0; i < 2; i++) {
        pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
        CHECK(batchsched_add_metadata(BATCHSCHED_KUBERNETES_WAS, parents[i], pod, "wg") == 0);
        CHECK(json_object_size(jx_get(pod, "spec")) == 0);
        json_decref(pod);
    }
    json_t *job = json_pack("{s:s, s:{s:s, s:{s:s}}}", "kind", "RayJob", "metadata", "name", "j",
                            "labels", LABEL_GANG_SCHEDULING, "true");
    pod = json_pack("{s:{}}", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_KUBERNETES_WAS, job, pod, "submittergroup") == 0);
    CHECK(json_object_size(jx_get(pod, "spec")) == 0);
    json_decref(pod);
    json_decref(job);
    /* no PodGroup of the other plugins' kind */
    json_t *none = NULL;
    CHECK(batchsched_podgroup(BATCHSCHED_KUBERNETES_WAS, rc, &none, NULL) == 0 && !none);

    json_decref(w);
    json_decref(pg);
    json_decref(w2);
    json_decref(pg2);
    json_decref(big);
    json_decref(as);
    json_decref(rc);
    if (verbose && !failed)
        printf("batchsched: Kubernetes WAS objects, staleness, skip, metadata checked\n");
    return failed;
}

int batchsched_test(bool verbose)
{
    int failed = 0;
    batchsched_t b = BATCHSCHED_NONE;
    buf_t err;
    buf_init(&err, 4096);
    /* names */
    CHECK(batchsched_parse("volcano", &b) == 0 && b == BATCHSCHED_VOLCANO);
    CHECK(batchsched_parse("scheduler-plugins", &b) == 0 && b == BATCHSCHED_SCHEDULER_PLUGINS);
    CHECK(batchsched_parse("kai-scheduler", &b) == 0 && b == BATCHSCHED_KAI);
    CHECK(batchsched_parse("yunikorn", &b) == 0 && b == BATCHSCHED_YUNIKORN);
    CHECK(batchsched_parse("", &b) == 0 && b == BATCHSCHED_NONE);
    CHECK(batchsched_parse("slurm", &b) == ERR_INVAL && b == BATCHSCHED_NONE);
    CHECK(s_t_eq(batchsched_scheduler_name(BATCHSCHED_SCHEDULER_PLUGINS),
                 "scheduler-plugins-scheduler"));
    CHECK(s_t_eq(batchsched_name(BATCHSCHED_KAI), "kai-scheduler"));
    CHECK(batchsched_scheduler_name(BATCHSCHED_NONE) == NULL);

    json_t *rc = json_loads(s_t_rc, 0, NULL);
    CHECK(rc != NULL);

    /* resources: requests win, limits fill; the suspended group does not count */
    int64_t mm = 0;
    json_t *res = NULL;
    CHECK(batchsched_cluster_gang(json_object_get(rc, "spec"), &mm, &res, &err) == 0);
    CHECK(mm == 3);
    CHECK(s_t_str(res, "cpu", "2", verbose));
    CHECK(s_t_str(res, "memory", "4Gi", verbose));
    CHECK(s_t_eq(json_string_value(json_object_get(res, "nvidia.com/gpu")), "2"));
    CHECK(json_object_size(res) == 3);
    json_decref(res);
    /* autoscaling: minReplicas */
    json_t *as = json_deep_copy(rc);
    json_object_set_new(json_object_get(as, "spec"), "enableInTreeAutoscaling", json_true());
    CHECK(batchsched_cluster_gang(json_object_get(as, "spec"), &mm, &res, &err) == 0);
    CHECK(mm == 2);
    CHECK(s_t_str(res, "cpu", "1500m", verbose));
    CHECK(s_t_str(res, "memory", "3Gi", verbose));
    json_decref(res);

    /* Volcano PodGroup */
    json_t *pg = NULL;
    CHECK(batchsched_podgroup(BATCHSCHED_VOLCANO, rc, &pg, &err) == 0 && pg);
    CHECK(s_t_str(pg, "apiVersion", "scheduling.volcano.sh/v1beta1", verbose));
    CHECK(s_t_str(pg, "kind", "PodGroup", verbose));
    CHECK(s_t_str(pg, "metadata.name", "ray-c1-pg", verbose));
    CHECK(s_t_str(pg, "metadata.namespace", "ns", verbose));
    const json_t *ref = json_array_get(jx_get(pg, "metadata.ownerReferences"), 0);
    CHECK(s_t_str(ref, "kind", "RayCluster", verbose) && s_t_str(ref, "uid", "u1", verbose) &&
          jx_bool(ref, "controller", false));
    CHECK(jx_int(pg, "spec.minMember", 0) == 3);
    CHECK(s_t_str(pg, "spec.minResources.cpu", "2", verbose));
    CHECK(s_t_str(pg, "spec.queue", "kuberay-test-queue", verbose));
    CHECK(s_t_str(pg, "spec.priorityClassName", "hi", verbose));
    CHECK(!jx_get(pg, "spec.networkTopology"));
    CHECK(s_t_str(pg, "status.phase", "Pending", verbose));
    /* differs: same → no; minMember or a resource value → yes; "2000m" equals "2" */
    json_t *live = json_deep_copy(pg);
    CHECK(!batchsched_podgroup_differs(live, pg));
    json_object_set_new(json_object_get(jx_get(live, "spec"), "minResources"), "cpu",
                        json_string("2000m"));
    CHECK(!batchsched_podgroup_differs(live, pg));
    json_object_set_new(jx_get(live, "spec"), "minMember", json_integer(4));
    CHECK(batchsched_podgroup_differs(live, pg));
    json_decref(live);
    char g[64], v[64];
    CHECK(batchsched_podgroup_api(pg, g, sizeof(g), v, sizeof(v)) == 0 &&
          s_t_eq(g, "scheduling.volcano.sh") && s_t_eq(v, "v1beta1"));
    json_decref(pg);
    /* network topology */
    json_t *nt = json_deep_copy(rc);
    json_t *ntl = jx_get(nt, "metadata.labels");
    json_object_set_new(ntl, BATCHSCHED_VOLCANO_TOPOLOGY_MODE_LABEL, json_string("hard"));
    json_object_set_new(ntl, BATCHSCHED_VOLCANO_TOPOLOGY_TIER_LABEL, json_string("2"));
    CHECK(batchsched_podgroup(BATCHSCHED_VOLCANO, nt, &pg, &err) == 0 && pg);
    CHECK(s_t_str(pg, "spec.networkTopology.mode", "hard", verbose));
    CHECK(jx_int(pg, "spec.networkTopology.highestTierAllowed", 0) == 2);
    json_decref(pg);
    json_object_set_new(ntl, BATCHSCHED_VOLCANO_TOPOLOGY_TIER_LABEL, json_string("x"));
    buf_reset(&err);
    CHECK(batchsched_podgroup(BATCHSCHED_VOLCANO, nt, &pg, &err) == ERR_INVAL && !pg);
    CHECK(strstr(buf_str(&err), "failed to convert volcano.sh/network-topology-highest-tier") !=
          NULL);
    /* a RayJob-created cluster: no PodGroup of its own; pods point at ray-<job>-pg */
    json_object_set_new(ntl, LABEL_ORIGINATED_FROM_CRD, json_string("RayJob"));
    json_object_set_new(ntl, LABEL_ORIGINATED_FROM_CR_NAME, json_string("job1"));
    CHECK(batchsched_podgroup(BATCHSCHED_VOLCANO, nt, &pg, &err) == 0 && !pg);
    json_t *pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_VOLCANO, nt, pod, "wg") == 0);
    CHECK(s_t_eq(s_t_ann(pod, BATCHSCHED_VOLCANO_GROUP_ANN), "ray-job1-pg"));
    json_decref(pod);
    json_decref(nt);

    /* Volcano pod metadata */
    pod = json_pack("{s:s, s:{s:{s:s}}, s:{}}", "kind", "Pod", "metadata", "labels", "x", "y",
                    "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_VOLCANO, rc, pod, LABEL_GROUP_HEAD) == 0);
    CHECK(s_t_eq(s_t_ann(pod, BATCHSCHED_VOLCANO_GROUP_ANN), "ray-c1-pg"));
    CHECK(s_t_eq(s_t_ann(pod, BATCHSCHED_VOLCANO_TASK_SPEC_ANN), "headgroup"));
    CHECK(s_t_eq(s_t_lbl(pod, BATCHSCHED_VOLCANO_QUEUE_LABEL), "kuberay-test-queue"));
    CHECK(s_t_eq(s_t_lbl(pod, LABEL_PRIORITY_CLASS_NAME), "hi"));
    CHECK(s_t_eq(s_t_lbl(pod, "x"), "y"));
    CHECK(!s_t_lbl(pod, BATCHSCHED_KAI_QUEUE_LABEL));
    CHECK(s_t_str(pod, "spec.schedulerName", "volcano", verbose));
    json_decref(pod);
    /* a RayCluster child (RayJob K8sJobMode): labels and annotations, no schedulerName */
    json_t *job = json_pack("{s:s, s:{s:s, s:s, s:{s:s}}, s:{s:{}}}", "kind", "RayJob", "metadata",
                            "name", "job1", "namespace", "ns", "labels",
                            BATCHSCHED_VOLCANO_QUEUE_LABEL, "q2", "spec", "rayClusterSpec");
    json_object_set(json_object_get(job, "spec"), "rayClusterSpec", json_object_get(rc, "spec"));
    json_t *crc = json_pack("{s:s, s:{}, s:{}}", "kind", "RayCluster", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_VOLCANO, job, crc, LABEL_GROUP_HEAD) == 0);
    CHECK(s_t_eq(s_t_lbl(crc, BATCHSCHED_VOLCANO_QUEUE_LABEL), "q2"));
    CHECK(s_t_eq(s_t_ann(crc, BATCHSCHED_VOLCANO_GROUP_ANN), "ray-job1-pg"));
    CHECK(!jx_get(crc, "spec.schedulerName"));
    json_decref(crc);
    /* the submitter template */
    json_t *tmpl = json_pack("{s:{}}", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_VOLCANO, job, tmpl, BATCHSCHED_SUBMITTER_GROUP) == 0);
    CHECK(s_t_eq(s_t_ann(tmpl, BATCHSCHED_VOLCANO_TASK_SPEC_ANN), "submittergroup"));
    CHECK(s_t_str(tmpl, "spec.schedulerName", "volcano", verbose));
    json_decref(tmpl);
    /* RayJob PodGroup: submitter resources in minResources, not in minMember */
    json_t *sub = json_pack("{s:[{s:s, s:{s:{s:s, s:s}}}]}", "containers", "name", "s", "resources",
                            "requests", "cpu", "500m", "memory", "200Mi");
    CHECK(batchsched_rayjob_podgroup(BATCHSCHED_VOLCANO, job, sub, &pg, &err) == 0 && pg);
    CHECK(s_t_str(pg, "metadata.name", "ray-job1-pg", verbose));
    ref = json_array_get(jx_get(pg, "metadata.ownerReferences"), 0);
    CHECK(s_t_str(ref, "kind", "RayJob", verbose));
    CHECK(jx_int(pg, "spec.minMember", 0) == 3);
    CHECK(s_t_str(pg, "spec.minResources.cpu", "2500m", verbose));
    CHECK(s_t_str(pg, "spec.minResources.memory", "4296Mi", verbose));
    CHECK(s_t_str(pg, "spec.queue", "q2", verbose));
    /* the sync decision and the ensured key */
    json_t *upd = NULL;
    CHECK(batchsched_podgroup_sync(NULL, pg, true, &upd) == BATCHSCHED_SYNC_CREATE && !upd);
    CHECK(batchsched_podgroup_sync(pg, pg, true, &upd) == BATCHSCHED_SYNC_NONE && !upd);
    json_t *old = json_deep_copy(pg);
    json_object_set_new(json_object_get(old, "spec"), "minMember", json_integer(9));
    json_object_set_new(json_object_get(old, "metadata"), "resourceVersion", json_string("7"));
    CHECK(batchsched_podgroup_sync(old, pg, false, &upd) == BATCHSCHED_SYNC_NONE && !upd);
    CHECK(batchsched_podgroup_sync(old, pg, true, &upd) == BATCHSCHED_SYNC_UPDATE && upd);
    CHECK(jx_int(upd, "spec.minMember", 0) == 3 &&
          s_t_str(upd, "metadata.resourceVersion", "7", verbose));
    json_decref(upd);
    json_decref(old);
    buf_t key;
    buf_init(&key, 4096);
    CHECK(batchsched_podgroup_key(pg, &key) == 0 &&
          s_t_eq(buf_str(&key), "PodGroup/ray-job1-pg#3#{\"cpu\":\"2500m\",\"memory\":\"4296Mi\","
                                "\"nvidia.com/gpu\":\"2\"}"));
    if (verbose)
        fprintf(stderr, "  key: %s\n", buf_str(&key));
    buf_free(&key);
    json_decref(pg);
    json_decref(sub);
    /* CleanupOnCompletion: resized to the live cluster, or to nothing without one */
    CHECK(batchsched_rayjob_podgroup_final(BATCHSCHED_VOLCANO, job, rc, &pg, &err) == 0 && !pg);
    json_object_set_new(job, "status", json_pack("{s:s}", "rayClusterName", "c1"));
    CHECK(batchsched_rayjob_podgroup_final(BATCHSCHED_VOLCANO, job, rc, &pg, &err) == 0 && pg);
    CHECK(jx_int(pg, "spec.minMember", 0) == 3 &&
          s_t_str(pg, "spec.minResources.cpu", "2", verbose));
    CHECK(s_t_str(pg, "metadata.name", "ray-job1-pg", verbose));
    json_decref(pg);
    CHECK(batchsched_rayjob_podgroup_final(BATCHSCHED_VOLCANO, job, NULL, &pg, &err) == 0 && pg);
    CHECK(jx_int(pg, "spec.minMember", -1) == 0 &&
          json_object_size(jx_get(pg, "spec.minResources")) == 0);
    json_decref(pg);
    CHECK(batchsched_rayjob_podgroup_final(BATCHSCHED_KAI, job, NULL, &pg, &err) == 0 && !pg);
    CHECK(batchsched_rayjob_podgroup(BATCHSCHED_YUNIKORN, job, NULL, &pg, &err) == 0 && !pg);
    json_object_del(json_object_get(job, "spec"), "rayClusterSpec");
    buf_reset(&err);
    CHECK(batchsched_rayjob_podgroup(BATCHSCHED_VOLCANO, job, NULL, &pg, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "referencing an existing RayCluster") != NULL);
    /* KAI refuses K8sJobMode (the default), not HTTPMode */
    buf_reset(&err);
    CHECK(batchsched_check_rayjob(BATCHSCHED_KAI, job, &err) == ERR_INVAL);
    CHECK(s_t_eq(buf_str(&err), BATCHSCHED_KAI_K8SJOB_MSG));
    json_object_set_new(json_object_get(job, "spec"), "submissionMode", json_string("HTTPMode"));
    CHECK(batchsched_check_rayjob(BATCHSCHED_KAI, job, &err) == 0);
    json_object_set_new(json_object_get(job, "spec"), "submissionMode", json_string("K8sJobMode"));
    CHECK(batchsched_check_rayjob(BATCHSCHED_VOLCANO, job, &err) == 0);
    json_decref(job);

    /* KAI pod metadata */
    pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_KAI, rc, pod, "wg") == 0);
    CHECK(s_t_eq(s_t_lbl(pod, BATCHSCHED_KAI_QUEUE_LABEL), "team-a"));
    CHECK(!s_t_ann(pod, BATCHSCHED_VOLCANO_GROUP_ANN));
    CHECK(s_t_str(pod, "spec.schedulerName", "kai-scheduler", verbose));
    json_decref(pod);
    CHECK(batchsched_podgroup(BATCHSCHED_KAI, rc, &pg, &err) == 0 && !pg);

    /* YuniKorn: labels; task groups only with the gang label */
    pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_YUNIKORN, rc, pod, "wg") == 0);
    CHECK(s_t_eq(s_t_lbl(pod, "applicationId"), "app1"));
    CHECK(s_t_eq(s_t_lbl(pod, "queue"), "root.q"));
    CHECK(!s_t_ann(pod, BATCHSCHED_YUNIKORN_TASK_GROUPS_ANN));
    CHECK(s_t_str(pod, "spec.schedulerName", "yunikorn", verbose));
    json_decref(pod);
    json_t *gang = json_deep_copy(rc);
    json_object_set_new(jx_get(gang, "metadata.labels"), LABEL_GANG_SCHEDULING,
                        json_string("true"));
    pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_YUNIKORN, gang, pod, "wg") == 0);
    CHECK(s_t_eq(s_t_ann(pod, BATCHSCHED_YUNIKORN_TASK_GROUP_NAME_ANN), "wg"));
    const char *tg = s_t_ann(pod, BATCHSCHED_YUNIKORN_TASK_GROUPS_ANN);
    CHECK(s_t_eq(tg, "[{\"minResource\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},\"name\":"
                     "\"headgroup\",\"minMember\":1},{\"minResource\":{\"cpu\":\"500m\","
                     "\"memory\":\"1Gi\",\"nvidia.com/gpu\":\"1\"},\"nodeSelector\":{\"a\":\"2\","
                     "\"z\":\"1\"},\"name\":\"wg\",\"minMember\":1},{\"minResource\":{\"cpu\":"
                     "\"4\"},\"name\":\"off\",\"minMember\":1}]"));
    if (verbose && tg)
        fprintf(stderr, "  task groups: %s\n", tg);
    json_decref(pod);

    /* scheduler-plugins: PodGroup and label only with the gang label */
    CHECK(batchsched_podgroup(BATCHSCHED_SCHEDULER_PLUGINS, rc, &pg, &err) == 0 && !pg);
    pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_SCHEDULER_PLUGINS, rc, pod, "wg") == 0);
    CHECK(!s_t_lbl(pod, BATCHSCHED_SP_POD_GROUP_LABEL));
    CHECK(s_t_str(pod, "spec.schedulerName", "scheduler-plugins-scheduler", verbose));
    json_decref(pod);
    pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_SCHEDULER_PLUGINS, gang, pod, "wg") == 0);
    CHECK(s_t_eq(s_t_lbl(pod, BATCHSCHED_SP_POD_GROUP_LABEL), "c1"));
    json_decref(pod);
    json_object_set_new(json_object_get(gang, "spec"), "enableInTreeAutoscaling", json_true());
    CHECK(batchsched_podgroup(BATCHSCHED_SCHEDULER_PLUGINS, gang, &pg, &err) == 0 && pg);
    CHECK(s_t_str(pg, "apiVersion", "scheduling.x-k8s.io/v1alpha1", verbose));
    CHECK(s_t_str(pg, "metadata.name", "c1", verbose));
    ref = json_array_get(jx_get(pg, "metadata.ownerReferences"), 0);
    CHECK(s_t_str(ref, "kind", "RayCluster", verbose) && !json_object_get(ref, "controller"));
    CHECK(jx_int(pg, "spec.minMember", 0) == 3); /* desired, autoscaling or not */
    CHECK(s_t_str(pg, "spec.minResources.memory", "4Gi", verbose));
    CHECK(!jx_get(pg, "status"));
    json_decref(pg);
    json_decref(gang);

    /* scheduler-plugins: nothing on a RayJob's children */
    tmpl = json_pack("{s:{}}", "spec");
    job = json_pack("{s:s, s:{s:s, s:{s:s}}}", "kind", "RayJob", "metadata", "name", "j", "labels",
                    LABEL_GANG_SCHEDULING, "true");
    CHECK(batchsched_add_metadata(BATCHSCHED_SCHEDULER_PLUGINS, job, tmpl, "submittergroup") == 0);
    CHECK(!jx_get(tmpl, "spec.schedulerName") && !jx_get(tmpl, "metadata"));
    json_decref(tmpl);
    json_decref(job);

    /* NONE: nothing */
    pod = json_pack("{s:s, s:{}, s:{}}", "kind", "Pod", "metadata", "spec");
    CHECK(batchsched_add_metadata(BATCHSCHED_NONE, rc, pod, "wg") == 0);
    CHECK(json_object_size(jx_get(pod, "metadata")) == 0 && !jx_get(pod, "spec.schedulerName"));
    json_decref(pod);
    CHECK(batchsched_podgroup(BATCHSCHED_NONE, rc, &pg, &err) == 0 && !pg);

    failed += s_t_was(rc, verbose);
    json_decref(as);
    json_decref(rc);
    buf_free(&err);
    return failed;
}
#endif /* RF_SELFTEST */
