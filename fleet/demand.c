/*
 * demand: what a Ray object needs of a member. See demand.h.
 */
#include "demand.h"

#include "batchsched.h"
#include "err.h"
#include "json.h"
#include "rayjob.h"
#include "rcstatus.h"
#include "validate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FIELD_MAX 160 /* a field path in a message */
#define S_INT32_MAX 2147483647LL

static const char *const s_gpu_labels[] = FLEET_GPU_TYPE_LABELS;

void fleet_demand_free(fleet_demand_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->npods; i++) {
        json_decref(d->pods[i].node_selector);
        free(d->pods[i].gpu_type);
        free(d->pods[i].group);
    }
    free(d->pods);
    memset(d, 0, sizeof(*d));
}

void fleet_demand_group_label(const fleet_pod_t *p, char *out, size_t n)
{
    const char *g = p && p->group ? p->group : "";
    if (strcmp(g, "head") == 0 || strcmp(g, "submitter") == 0)
        snprintf(out, n, "%s", g);
    else
        snprintf(out, n, "worker group %s", g);
}

/* ---- one pod ---- */

/* The request of one pod of PodSpec `ps` as the kube-scheduler counts it
 * (batchsched_add_pod_resources' BATCHSCHED_RES_KUBE rule: containers, native sidecars, init
 * containers, overhead) into *out, one pod. */
static int s_pod_req(const json_t *ps, const char *field, fleet_res_t *out, buf_t *err)
{
    fleet_res_t r = {{0}};
    buf_t e;
    buf_init(&e, 512);
    json_t *acc = json_object();
    int rc = acc ? batchsched_add_pod_resources(acc, ps, 1, BATCHSCHED_RES_KUBE, &e) : ERR_NOMEM;
    if (rc == 0)
        rc = fleet_res_add_list(&r, acc, &e);
    json_decref(acc);
    if (rc && err)
        (void)buf_printf(err, "%s: %s", field, rc == ERR_NOMEM ? "out of memory" : buf_str(&e));
    buf_free(&e);
    r.v[FLEET_RES_PODS] = 1;
    *out = r;
    return rc;
}

/* The nodeSelector of `ps` (borrowed; NULL when none) and the accelerator type it names. */
static int s_selector(const json_t *ps, const char *field, const json_t **ns, const char **gpu,
                      buf_t *err)
{
    *ns = NULL;
    *gpu = NULL;
    const json_t *sel = json_object_get(ps, "nodeSelector");
    if (!sel || json_is_null(sel))
        return 0;
    const char *k;
    json_t *v;
    bool ok = json_is_object(sel);
    json_object_foreach((json_t *)sel, k, v)
    {
        if (!json_is_string(v))
            ok = false;
    }
    if (!ok) {
        if (err)
            (void)buf_printf(err, "%s.nodeSelector: must be a map of label names to strings",
                             field);
        return ERR_INVAL;
    }
    if (json_object_size(sel) == 0)
        return 0;
    *ns = sel;
    for (size_t i = 0; s_gpu_labels[i]; i++) {
        const char *t = json_string_value(json_object_get(sel, s_gpu_labels[i]));
        if (t) {
            *gpu = t;
            break;
        }
    }
    return 0;
}

/* ---- a cluster ---- */

/* One pod shape and how many of it. */
typedef struct {
    const json_t *ps; /* its PodSpec */
    const char *group; /* its group's name */
    int64_t count;
    char field[S_FIELD_MAX + 32]; /* the PodSpec's path, for messages */
} s_shape_t;

/* Checks the integer `key` of worker group `wg`: absent, or an integer in min..INT32_MAX. */
static int s_int_field(const json_t *wg, const char *key, int64_t min, const char *field,
                       buf_t *err)
{
    const json_t *v = json_object_get(wg, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= S_INT32_MAX)
        return 0;
    if (err) {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        (void)buf_printf(err, "%s.%s: Invalid value: %.40s: must be an integer in %lld..%lld",
                         field, key, t ? t : "?", (long long)min, S_INT32_MAX);
        free(t);
    }
    return ERR_INVAL;
}

/* The pods of group `wg` (index i under `prefix`) into *sh; checks the bounds. */
static int s_group(const json_t *wg, size_t i, const char *prefix, bool autoscaling, int64_t *total,
                   s_shape_t *sh, buf_t *err)
{
    char field[S_FIELD_MAX];
    snprintf(field, sizeof(field), "%s.workerGroupSpecs[%zu]", prefix, i);
    if (!json_is_object(wg)) {
        if (err)
            (void)buf_printf(err, "%s: must be an object", field);
        return ERR_INVAL;
    }
    const char *name = json_string_value(json_object_get(wg, "groupName"));
    if (!name || !name[0]) {
        if (err)
            (void)buf_printf(err, "%s.groupName: required", field);
        return ERR_INVAL;
    }
    int rc = s_int_field(wg, "replicas", 0, field, err);
    if (rc == 0)
        rc = s_int_field(wg, "minReplicas", 0, field, err);
    if (rc == 0)
        rc = s_int_field(wg, "maxReplicas", 0, field, err);
    if (rc == 0)
        rc = s_int_field(wg, "numOfHosts", 1, field, err);
    if (rc)
        return rc;
    const json_t *ps = jx_get(wg, "template.spec");
    if (!json_is_object(ps)) {
        if (err)
            (void)buf_printf(err, "%s.template.spec: required", field);
        return ERR_INVAL;
    }
    /* batchsched_cluster_gang's rule: autoscaling the minimum, else the desired replicas */
    int64_t hosts = jx_int(wg, "numOfHosts", 1);
    int64_t n;
    const char *key = autoscaling ? "minReplicas" : "replicas";
    if (autoscaling)
        n = jx_bool(wg, "suspend", false) ? 0 : jx_int(wg, "minReplicas", 0) * hosts;
    else
        n = rcstatus_group_desired(wg);
    if (n > FLEET_DEMAND_MAX_PODS - *total) {
        if (err)
            (void)buf_printf(err,
                             "%s.%s: %lld replicas x %lld hosts bring the cluster to %lld pods, "
                             "over the per-cluster cap of %d",
                             field, key, (long long)(hosts ? n / hosts : n), (long long)hosts,
                             (long long)(*total + n), FLEET_DEMAND_MAX_PODS);
        return ERR_INVAL;
    }
    *total += n;
    sh->ps = ps;
    sh->group = name;
    sh->count = n;
    snprintf(sh->field, sizeof(sh->field), "%s.template.spec", field);
    return 0;
}

/* Appends `count` pods of shape `ps` to d (room reserved by the caller); `extra` (may be NULL) a
 * PodSpec whose containers join every pod of the shape (SidecarMode's submitter). */
static int s_add_pods(fleet_demand_t *d, const json_t *ps, const json_t *extra, const char *group,
                      int64_t count, const char *field, buf_t *err)
{
    const json_t *ns;
    const char *gpu;
    fleet_res_t req;
    int rc = s_selector(ps, field, &ns, &gpu, err);
    if (rc == 0)
        rc = s_pod_req(ps, field, &req, err);
    if (rc || count <= 0)
        return rc;
    if (extra) {
        fleet_res_t x;
        if ((rc = s_pod_req(extra, field, &x, err)) != 0)
            return rc;
        x.v[FLEET_RES_PODS] = 0;
        fleet_res_add(&req, &x);
    }
    if (req.v[FLEET_RES_GPU] == 0)
        gpu = NULL;
    for (int64_t k = 0; k < count; k++) {
        fleet_pod_t *p = &d->pods[d->npods];
        memset(p, 0, sizeof(*p));
        p->req = req;
        p->node_selector = ns ? json_incref((json_t *)ns) : NULL;
        p->group = strdup(group);
        p->gpu_type = gpu ? strdup(gpu) : NULL;
        d->npods++;
        if (!p->group || (gpu && !p->gpu_type)) {
            if (err)
                (void)buf_puts(err, "out of memory");
            return ERR_NOMEM;
        }
        fleet_res_add(&d->total, &req);
    }
    return 0;
}

/* The demand of RayClusterSpec `spec` found at `prefix`; `sidecar` a PodSpec joining the head pod,
 * `submitter` the submitter pod's PodSpec (each NULL when none). */
static int s_cluster(const json_t *spec, const char *prefix, const json_t *sidecar,
                     const json_t *submitter, fleet_demand_t *out, buf_t *err)
{
    if (!json_is_object(spec)) {
        if (err)
            (void)buf_printf(err, "%s: required (a RayClusterSpec)", prefix);
        return ERR_INVAL;
    }
    const json_t *head = jx_get(spec, "headGroupSpec.template.spec");
    if (!json_is_object(head)) {
        if (err)
            (void)buf_printf(err, "%s.headGroupSpec.template.spec: required", prefix);
        return ERR_INVAL;
    }
    const json_t *wgs = json_object_get(spec, "workerGroupSpecs");
    if (wgs && !json_is_null(wgs) && !json_is_array(wgs)) {
        if (err)
            (void)buf_printf(err, "%s.workerGroupSpecs: must be a list", prefix);
        return ERR_INVAL;
    }
    bool autoscaling = jx_bool(spec, "enableInTreeAutoscaling", false);
    size_t ng = json_array_size(wgs);
    s_shape_t *shapes = ng ? calloc(ng, sizeof(*shapes)) : NULL;
    if (ng && !shapes)
        return ERR_NOMEM;
    int64_t total = 1 + (submitter ? 1 : 0);
    int rc = 0;
    for (size_t i = 0; i < ng && rc == 0; i++)
        rc = s_group(json_array_get(wgs, i), i, prefix, autoscaling, &total, &shapes[i], err);
    if (rc == 0) {
        out->pods = calloc((size_t)total, sizeof(*out->pods));
        rc = out->pods ? 0 : ERR_NOMEM;
    }
    char field[S_FIELD_MAX];
    if (rc == 0) {
        snprintf(field, sizeof(field), "%s.headGroupSpec.template.spec", prefix);
        rc = s_add_pods(out, head, sidecar, "head", 1, field, err);
    }
    for (size_t i = 0; i < ng && rc == 0; i++)
        rc = s_add_pods(out, shapes[i].ps, NULL, shapes[i].group, shapes[i].count, shapes[i].field,
                        err);
    if (rc == 0 && submitter)
        rc =
            s_add_pods(out, submitter, NULL, "submitter", 1, "spec.submitterPodTemplate.spec", err);
    free(shapes);
    if (rc)
        fleet_demand_free(out);
    return rc;
}

int fleet_demand_raycluster(const json_t *raycluster_spec, fleet_demand_t *out, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s_cluster(raycluster_spec, "spec", NULL, NULL, out, err);
}

int fleet_demand_rayservice(const json_t *rayservice, fleet_demand_t *out, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s_cluster(jx_get(rayservice, "spec.rayClusterConfig"), "spec.rayClusterConfig", NULL,
                     NULL, out, err);
}

int fleet_demand_rayjob(const json_t *rayjob, fleet_demand_t *out, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    const json_t *sel = jx_get(rayjob, "spec.clusterSelector");
    if (json_is_object(sel) && json_object_size(sel) > 0) {
        out->flags |= FLEET_DEMAND_EXISTING_CLUSTER;
        return 0;
    }
    const json_t *rcs = jx_get(rayjob, "spec.rayClusterSpec");
    if (!json_is_object(rcs))
        return s_cluster(rcs, "spec.rayClusterSpec", NULL, NULL, out, err);
    const char *mode = rayjob_mode(rayjob);
    json_t *job = NULL, *sidecar = NULL;
    const json_t *subps = NULL;
    buf_t e;
    buf_init(&e, 1024);
    int rc = 0;
    if (strcmp(mode, RAYJOB_MODE_K8SJOB) == 0) {
        /* the submitter Job KubeRay would create: its template, or the default submitter */
        json_t *rc_obj = json_pack("{s:{s:s},s:O}", "metadata", "name",
                                   jx_str(rayjob, "metadata.name", "rayjob"), "spec", rcs);
        job = rc_obj ? rayjob_submitter_job(rayjob, rc_obj, &e) : NULL;
        json_decref(rc_obj);
        subps = jx_get(job, "spec.template.spec");
        if (!json_is_object(subps)) {
            if (err)
                (void)buf_printf(err, "spec.submitterPodTemplate: %s",
                                 buf_str(&e)[0] ? buf_str(&e) : "out of memory");
            rc = ERR_INVAL;
        }
    } else if (strcmp(mode, RAYJOB_MODE_SIDECAR) == 0) {
        validate_gates_t g;
        validate_gates_default(&g);
        /* the container's resources do not depend on the job id it will carry */
        json_t *rj = json_copy((json_t *)rayjob);
        if (rj && !jx_get(rj, "status.jobId"))
            (void)json_object_set_new(rj, "status", json_pack("{s:s}", "jobId", "placement"));
        json_t *c = rj ? rayjob_sidecar_container(rj, &g, &e) : NULL;
        json_decref(rj);
        sidecar = c ? json_pack("{s:[o]}", "containers", c) : NULL;
        if (!sidecar) {
            if (err)
                (void)buf_printf(err, "spec.rayClusterSpec.headGroupSpec: submitter container: %s",
                                 buf_str(&e)[0] ? buf_str(&e) : "out of memory");
            rc = ERR_INVAL;
        }
    }
    if (rc == 0)
        rc = s_cluster(rcs, "spec.rayClusterSpec", sidecar, subps, out, err);
    json_decref(job);
    json_decref(sidecar);
    buf_free(&e);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

typedef struct {
    int kind; /* 0 RayCluster, 1 RayJob, 2 RayService */
    int docs; /* documents seen */
    int existing; /* RayJobs with a clusterSelector */
} s_walk_t;

static int s_t_sample(const char *file, json_t *doc, void *arg)
{
    s_walk_t *w = arg;
    int failed = 0;
    fleet_demand_t d;
    buf_t err;
    buf_init(&err, 4096);
    int rc = w->kind == 0   ? fleet_demand_raycluster(json_object_get(doc, "spec"), &d, &err)
             : w->kind == 1 ? fleet_demand_rayjob(doc, &d, &err)
                            : fleet_demand_rayservice(doc, &d, &err);
    if (rc != 0)
        printf("demand: %s: %s\n", file, buf_str(&err));
    CHECK(rc == 0);
    if (rc == 0 && (d.flags & FLEET_DEMAND_EXISTING_CLUSTER)) {
        w->existing++;
        CHECK(d.npods == 0);
    } else if (rc == 0) {
        /* the head first; every pod counted once in the total */
        CHECK(d.npods >= 1 && strcmp(d.pods[0].group, "head") == 0);
        CHECK(d.total.v[FLEET_RES_PODS] == (int64_t)d.npods);
        fleet_res_t sum = {{0}};
        for (size_t i = 0; i < d.npods; i++)
            fleet_res_add(&sum, &d.pods[i].req);
        CHECK(memcmp(&sum, &d.total, sizeof(sum)) == 0);
    }
    w->docs++;
    fleet_demand_free(&d);
    buf_free(&err);
    return failed;
}

/* The demand of the sample `file`'s first document of `kind`, into *d (0 or the error). */
static int s_t_file(const char *file, int kind, fleet_demand_t *d)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/samples/%s", selftest_shared_dir(), file);
    buf_t err;
    buf_init(&err, 4096);
    json_t *docs = NULL;
    int rc = yaml_load_file(path, 1 << 20, &docs, &err);
    const char *want = kind == 0 ? "RayCluster" : kind == 1 ? "RayJob" : "RayService";
    json_t *doc = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(docs, i, x)
    {
        if (!doc && strcmp(jx_str(x, "kind", ""), want) == 0)
            doc = x;
    }
    memset(d, 0, sizeof(*d));
    if (rc == 0 && !doc)
        rc = ERR_NOTFOUND;
    if (rc == 0)
        rc = kind == 0   ? fleet_demand_raycluster(json_object_get(doc, "spec"), d, &err)
             : kind == 1 ? fleet_demand_rayjob(doc, d, &err)
                         : fleet_demand_rayservice(doc, d, &err);
    if (rc)
        printf("demand: %s: %d %s\n", file, rc, buf_str(&err));
    json_decref(docs);
    buf_free(&err);
    return rc;
}

static bool s_t_res(const fleet_res_t *r, int64_t cpu, int64_t mem, int64_t gpu, int64_t pods)
{
    bool ok = r->v[FLEET_RES_CPU] == cpu && r->v[FLEET_RES_MEMORY] == mem &&
              r->v[FLEET_RES_GPU] == gpu && r->v[FLEET_RES_PODS] == pods;
    if (!ok) {
        char s[128];
        fleet_res_format(r, s, sizeof(s));
        printf("demand: got %s\n", s);
    }
    return ok;
}

/* The demand of the inline RayCluster spec `spec` (JSON); 0 or the error, message in err. */
static int s_t_spec(const char *spec, fleet_demand_t *d, buf_t *err)
{
    json_t *s = json_loads(spec, 0, NULL);
    buf_reset(err);
    int rc = s ? fleet_demand_raycluster(s, d, err) : ERR_INVAL;
    json_decref(s);
    return rc;
}

#define S_T_HEAD                                                                                   \
    "\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\","           \
    "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}}"
#define S_T_WORKER(extra)                                                                          \
    "{\"groupName\":\"w\"," extra ",\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\","      \
    "\"resources\":{\"limits\":{\"cpu\":\"2\",\"nvidia.com/gpu\":1}}}]}}}"

int demand_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);
    fleet_demand_t d;

    /* every upstream sample of each kind gets a demand */
    const char *kinds[] = {"RayCluster", "RayJob", "RayService"};
    for (int k = 0; k < 3; k++) {
        s_walk_t w = {.kind = k};
        failed += selftest_samples(NULL, kinds[k], s_t_sample, &w, NULL);
        if (verbose)
            printf("demand: %d %s samples, %d on an existing cluster\n", w.docs, kinds[k],
                   w.existing);
        CHECK(!selftest_shared_dir() || w.docs >= 10);
    }

    if (selftest_shared_dir()) {
        /* hand-checked: head 1 CPU 5Gi + one worker 1 CPU 1Gi */
        CHECK(s_t_file("ray-cluster.sample.yaml", 0, &d) == 0);
        CHECK(s_t_res(&d.total, 2000, 6LL << 30, 0, 2));
        CHECK(d.npods == 2 && strcmp(d.pods[1].group, "workergroup") == 0);
        fleet_demand_free(&d);
        /* GPU: head 2 CPU 8Gi + one gpu-group worker requesting 3 CPU 12Gi 1 GPU (limits 4/16Gi) */
        CHECK(s_t_file("ray-service.stable-diffusion.yaml", 2, &d) == 0);
        CHECK(s_t_res(&d.total, 5000, 20LL << 30, 1, 2));
        CHECK(d.npods == 2 && d.pods[1].req.v[FLEET_RES_GPU] == 1 &&
              d.pods[1].req.v[FLEET_RES_CPU] == 3000);
        fleet_demand_free(&d);
        /* RayJob: head 1 CPU 2Gi, worker 200m, K8sJobMode default submitter 500m 200Mi */
        CHECK(s_t_file("ray-job.sample.yaml", 1, &d) == 0);
        CHECK(s_t_res(&d.total, 1700, (2LL << 30) + 200 * 1048576LL, 0, 3));
        CHECK(d.npods == 3 && strcmp(d.pods[2].group, "submitter") == 0 &&
              d.pods[2].req.v[FLEET_RES_CPU] == 500);
        fleet_demand_free(&d);
        /* TPU multi-host: 1 replica x 2 hosts of 4 TPUs each, selected by the TPU label */
        CHECK(s_t_file("ray-cluster.tpu-v4-multihost.yaml", 0, &d) == 0);
        CHECK(d.npods == 3 && d.total.v[FLEET_RES_GPU] == 8);
        /* the TPU type is matched by the nodeSelector (FLEET_GPU_TYPE_LABELS has no TPU label) */
        CHECK(d.npods == 3 && d.pods[2].node_selector &&
              strcmp(json_string_value(json_object_get(d.pods[2].node_selector,
                                                       "cloud.google.com/gke-tpu-accelerator")),
                     "tpu-v4-podslice") == 0);
        CHECK(d.npods == 3 && d.pods[0].gpu_type == NULL);
        fleet_demand_free(&d);
        /* SidecarMode: the submitter container joins the head pod, no submitter pod */
        CHECK(s_t_file("ray-job.sidecar-mode.yaml", 1, &d) == 0);
        CHECK(d.npods >= 1 && strcmp(d.pods[d.npods - 1].group, "submitter") != 0);
        fleet_demand_t plain;
        json_t *rj = NULL;
        {
            char path[1024];
            snprintf(path, sizeof(path), "%s/kuberay/samples/ray-job.sidecar-mode.yaml",
                     selftest_shared_dir());
            json_t *docs = NULL;
            CHECK(yaml_load_file(path, 1 << 20, &docs, &err) == 0);
            size_t i;
            json_t *x;
            json_array_foreach(docs, i, x)
            {
                if (!rj && strcmp(jx_str(x, "kind", ""), "RayJob") == 0)
                    rj = json_incref(x);
            }
            json_decref(docs);
        }
        CHECK(rj && fleet_demand_raycluster(jx_get(rj, "spec.rayClusterSpec"), &plain, &err) == 0);
        CHECK(rj && d.npods == plain.npods &&
              d.pods[0].req.v[FLEET_RES_CPU] == plain.pods[0].req.v[FLEET_RES_CPU] + 500);
        size_t plain_n = plain.npods;
        fleet_demand_free(&plain);
        fleet_demand_free(&d);
        /* HTTPMode: no submitter pod; a clusterSelector: nothing, flagged */
        CHECK(rj && json_object_set_new(json_object_get(rj, "spec"), "submissionMode",
                                        json_string("HTTPMode")) == 0);
        CHECK(rj && fleet_demand_rayjob(rj, &d, &err) == 0 && d.npods == plain_n && d.flags == 0);
        fleet_demand_free(&d);
        CHECK(rj && json_object_set_new(json_object_get(rj, "spec"), "clusterSelector",
                                        json_pack("{s:s}", "ray.io/cluster", "shared")) == 0);
        CHECK(rj && fleet_demand_rayjob(rj, &d, &err) == 0 && d.npods == 0 &&
              (d.flags & FLEET_DEMAND_EXISTING_CLUSTER));
        fleet_demand_free(&d);
        json_decref(rj);
    }

    /* autoscaling: minReplicas x numOfHosts; without: replicas clamped; suspended: none */
    CHECK(s_t_spec("{\"enableInTreeAutoscaling\":true," S_T_HEAD
                   ",\"workerGroupSpecs\":[" S_T_WORKER(
                       "\"replicas\":5,\"minReplicas\":2,\"maxReplicas\":9,\"numOfHosts\":3") "]}",
                   &d, &err) == 0);
    CHECK(s_t_res(&d.total, 1000 + 6 * 2000, 1LL << 30, 6, 7));
    CHECK(d.npods == 7 && d.pods[6].gpu_type == NULL && strcmp(d.pods[6].group, "w") == 0);
    fleet_demand_free(&d);
    CHECK(s_t_spec("{" S_T_HEAD ",\"workerGroupSpecs\":[" S_T_WORKER(
                       "\"replicas\":50,\"minReplicas\":2,\"maxReplicas\":4") "]}",
                   &d, &err) == 0);
    CHECK(d.npods == 5);
    fleet_demand_free(&d);
    CHECK(s_t_spec("{" S_T_HEAD
                   ",\"workerGroupSpecs\":[" S_T_WORKER("\"replicas\":3,\"suspend\":true") "]}",
                   &d, &err) == 0);
    CHECK(d.npods == 1);
    fleet_demand_free(&d);
    /* init containers: the larger of their largest and the containers' sum; overhead added; a
     * native sidecar summed; the nodeSelector's accelerator type on a GPU pod */
    CHECK(s_t_spec("{\"headGroupSpec\":{\"template\":{\"spec\":{\"overhead\":{\"cpu\":\"100m\"},"
                   "\"nodeSelector\":{\"nvidia.com/gpu.product\":\"A100\",\"zone\":\"a\"},"
                   "\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{\"cpu\":"
                   "\"4\",\"memory\":\"1Mi\"}}},{\"name\":\"s\",\"restartPolicy\":\"Always\","
                   "\"resources\":{\"requests\":{\"memory\":\"1Gi\"}}}],"
                   "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"1\","
                   "\"nvidia.com/gpu\":\"2\"}}},{\"name\":\"b\",\"resources\":{\"limits\":{"
                   "\"cpu\":\"500m\",\"memory\":\"2Gi\"}}}]}}}}",
                   &d, &err) == 0);
    CHECK(s_t_res(&d.total, 4100, 3LL << 30, 2, 1));
    CHECK(d.npods == 1 && d.pods[0].gpu_type && strcmp(d.pods[0].gpu_type, "A100") == 0);
    CHECK(d.npods == 1 && d.pods[0].node_selector &&
          json_object_size(d.pods[0].node_selector) == 2);
    fleet_demand_free(&d);

    /* bounds: a huge group is an error naming the field, nothing allocated */
    CHECK(s_t_spec("{" S_T_HEAD
                   ",\"workerGroupSpecs\":[" S_T_WORKER("\"replicas\":1") "," S_T_WORKER(
                       "\"replicas\":1000000000,\"maxReplicas\":2147483647") "]}",
                   &d, &err) == ERR_INVAL);
    CHECK(d.npods == 0 && d.pods == NULL);
    CHECK(strstr(buf_str(&err), "spec.workerGroupSpecs[1].replicas: 1000000000 replicas x 1 "
                                "hosts bring the cluster to 1000000002 pods, over the "
                                "per-cluster cap of 10000") != NULL);
    CHECK(s_t_spec("{" S_T_HEAD
                   ",\"workerGroupSpecs\":[" S_T_WORKER("\"replicas\":99999999999") "]}",
                   &d, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "spec.workerGroupSpecs[0].replicas: Invalid value: 99999999999") !=
          NULL);
    CHECK(s_t_spec("{" S_T_HEAD ",\"workerGroupSpecs\":[" S_T_WORKER("\"numOfHosts\":0") "]}", &d,
                   &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "numOfHosts") != NULL);
    CHECK(
        s_t_spec("{\"enableInTreeAutoscaling\":true," S_T_HEAD
                 ",\"workerGroupSpecs\":[" S_T_WORKER("\"minReplicas\":5000,\"numOfHosts\":2") "]}",
                 &d, &err) == ERR_INVAL);
    CHECK(strstr(buf_str(&err), "spec.workerGroupSpecs[0].minReplicas: 5000 replicas x 2 hosts") !=
          NULL);
    /* exactly at the cap is fine */
    CHECK(s_t_spec("{" S_T_HEAD ",\"workerGroupSpecs\":[" S_T_WORKER(
                       "\"replicas\":9999,\"maxReplicas\":10000") "]}",
                   &d, &err) == 0 &&
          d.npods == 10000);
    fleet_demand_free(&d);
    /* malformed input names the field */
    CHECK(s_t_spec("{\"workerGroupSpecs\":[]}", &d, &err) == ERR_INVAL &&
          strstr(buf_str(&err), "spec.headGroupSpec.template.spec: required"));
    CHECK(s_t_spec("{" S_T_HEAD ",\"workerGroupSpecs\":[{\"groupName\":\"x\",\"template\":{"
                   "\"spec\":{\"nodeSelector\":{\"a\":1},\"containers\":[]}}}]}",
                   &d, &err) == ERR_INVAL &&
          strstr(buf_str(&err), "spec.workerGroupSpecs[0].template.spec.nodeSelector"));
    CHECK(s_t_spec("{\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\","
                   "\"resources\":{\"requests\":{\"cpu\":\"lots\"}}}]}}}}",
                   &d, &err) == ERR_INVAL &&
          strstr(buf_str(&err), "spec.headGroupSpec.template.spec: ") &&
          strstr(buf_str(&err), "lots"));
    json_t *svc = json_loads("{\"spec\":{}}", 0, NULL);
    buf_reset(&err);
    CHECK(fleet_demand_rayservice(svc, &d, &err) == ERR_INVAL &&
          strstr(buf_str(&err), "spec.rayClusterConfig: required"));
    json_decref(svc);
    fleet_demand_free(NULL);
    buf_free(&err);
    return SELFTEST_RESULT("demand", verbose);
}
#endif
