/*
 * samples_it (rayservice): every upstream RayService sample (../shared/kuberay/samples/
 * ray-service.*.yaml and vllm/ray-service.vllm-tpu-v6e-singlehost.yaml, read in place,
 * unchanged) applied to kubesim with the RayService controller, the scheduler and the watcher
 * logic in-process (harness.h with HARNESS_SERVEUP), each reaching the end KubeRay would reach
 * on that cluster.
 *
 * A sample is applied as `kubectl create -n <ns> -f <file>` (harness_apply_file), each in its own
 * namespace because several samples share the name rayservice-sample; all samples run at once.
 *
 * s_samples is the table of expected ends with a why per sample. A sample that reaches Ready is
 * checked for: Ready True/NonZeroServeEndpoints, serviceStatus Running, numServeEndpoints > 0, no
 * pending cluster; the active RayCluster (the only one) with labels ray.io/originated-from-cr-name
 * and ray.io/originated-from-crd=RayService, annotations ray.io/hash-without-replicas-and-workers-
 * to-delete (equal to the hash of the RayService's rayClusterConfig), ray.io/num-worker-groups
 * and ray.io/kuberay-version, a controller ownerReference to the RayService; `<rs>-head-svc` and
 * the serve Service (`<rs>-serve-svc` or spec.serveService.metadata.name) selecting it (the serve
 * one by ray.io/cluster + ray.io/serve=true); its head pod labelled ray.io/serve=true (false with
 * SX_HEAD_NO_PROXY: a serve port the simulated head does not listen on); every
 * application of serveConfigV2 RUNNING in status.activeServiceStatus.applicationStatuses; the
 * UpdatedServeApplications Event; numServeEndpoints equal to the ready pods of that cluster
 * labelled ray.io/serve=true. A sample whose workers no kubesim node can take (GPUs, which
 * kubesim's nodes do not have; GPU/TPU node selectors; more memory than a node has) also has those
 * workers Pending Unschedulable: the simulated Serve applications do not need them (sim/rayhead.c:
 * only `fake_missing*` modules fail), so on kubesim such a RayService is Ready with its head alone.
 * Every sample reaches Ready on kubesim; where that is not what a real cluster would do, its why
 * says so. Every check runs twice, the second time after a pause and with the same active cluster,
 * so that "stays" is asserted, not just "passed through".
 *
 * Usage: samples_it [-v] [file...] (file: a sample's path under samples/, e.g.
 * ray-service.sample.yaml). -v also prints each sample's why under its result line. Exit 0 when
 * every check passes.
 */
#define HARNESS_SERVEUP
#include "harness.h"

#include "conds.h"
#include "labels.h"
#include "rayservice.h"
#include "rsstate.h"

#include <inttypes.h>

#define IT_WAIT_MS 90000 /* longest wait for every sample to reach its end */
#define IT_STAY_MS 6000 /* pause before checking again that the ends hold (> 2 reconciles) */
#define IT_NS_MAX 64 /* bytes of a namespace name */
#define IT_NAME_MAX 256 /* bytes of an object name */

static harness_t g_h;

/* What to check besides Ready. */
enum {
    SX_WORKERS_PENDING = 1 << 0, /* every worker pod stays Pending Unschedulable */
    SX_HEAD_NO_PROXY = 1 << 1, /* the head's Serve proxy never answers on its serve port: head
                                  labelled ray.io/serve=false, the workers are the endpoints */
    SX_INCREMENTAL = 1 << 2, /* NewClusterWithIncrementalUpgrade: the serve Service is the cluster's
                                own <cluster>-serve-svc, plus the Gateway and the HTTPRoute */
};

/* One sample and the end it must reach. */
typedef struct {
    const char *file; /* under <shared>/kuberay/samples */
    unsigned flags; /* SX_* */
    const char *why; /* why that is the end */
} sample_t;

static const sample_t s_samples[] = {
    {"ray-service.custom-serve-service.yaml", 0,
     "spec.serveService names the serve Service custom-ray-serve-service-name (LoadBalancer)"},
    {"ray-service.deepseek.yaml", SX_WORKERS_PENDING,
     "workers ask 500Gi and 8 GPUs each, more than any 128Gi kubesim node: Pending; the "
     "simulated llm_app needs no replica on them, so Ready with the head alone (real Ray: the "
     "vLLM replicas wait for GPUs, DEPLOYING)"},
    {"ray-service.different-port.yaml", SX_HEAD_NO_PROXY,
     "http_options.port 9000 and the head's serve port 9000: the simulated head's Serve proxy "
     "listens on 8000 only (sim/rayhead.c), so /-/healthz on 9000 is refused and the head stays "
     "ray.io/serve=false; the worker, labelled ray.io/serve=true at creation as KubeRay does, is "
     "the one serve endpoint (real Ray: the head serves too)"},
    {"ray-service.high-throughput-gemma4.yaml", SX_WORKERS_PENDING,
     "workers select gke-accelerator nvidia-b200 and ask 128 CPUs: Pending; the simulated "
     "llm_app is RUNNING on the head (the missing hf-secret is not checked by kubesim's kubelet; "
     "a real kubelet: CreateContainerConfigError, never Ready)"},
    {"ray-service.high-throughput-llm.yaml", SX_WORKERS_PENDING,
     "workers select gke-accelerator nvidia-l4: Pending; the simulated llm_app is RUNNING on the "
     "head (hf-secret missing: see gemma4)"},
    {"ray-service.incremental-upgrade.yaml", SX_INCREMENTAL,
     "NewClusterWithIncrementalUpgrade: the first cluster at targetCapacity 100 and all the "
     "route's "
     "traffic, served through its per-cluster <cluster>-serve-svc; Gateway <rs>-gateway (class "
     "istio: no such GatewayClass on kubesim, so not Programmed) and HTTPRoute <rs>-httproute "
     "with the cluster's Service at weight 100"},
    {"ray-service.llm-serve.yaml", SX_WORKERS_PENDING,
     "the hf-token Secret goes in beside it; the worker asks 4 nvidia.com/gpu, which no kubesim "
     "node has: Pending Insufficient nvidia.com/gpu; the simulated llms app needs none, so Ready "
     "with the head alone (real Ray: the vLLM replicas wait for GPUs)"},
    {"ray-service.mobilenet.yaml", 0, "real import path: the simulator's default"},
    {"ray-service.no-ray-serve-replica.yaml", 0,
     "head with num-cpus 0: no replica there, but its proxy answers, so it is a serve endpoint"},
    {"ray-service.sample.yaml", 0, "two applications, fruit_app and math_app"},
    {"ray-service.stable-diffusion.yaml", SX_WORKERS_PENDING,
     "the worker asks nvidia.com/gpu, which no kubesim node has: Pending; the simulated app is "
     "RUNNING on the head (real Ray: its GPU replica waits for the worker)"},
    {"ray-service.text-summarizer.yaml", SX_WORKERS_PENDING,
     "the worker asks nvidia.com/gpu, which no kubesim node has: Pending; the simulated app is "
     "RUNNING on the head (real Ray: its GPU replica waits for the worker)"},
    {"ray-service.tpu-single-host.yaml", SX_WORKERS_PENDING,
     "the worker selects a TPU v4 node and asks 100 CPUs: Pending; the simulated app is RUNNING "
     "on the head"},
    {"vllm/ray-service.vllm-tpu-v6e-singlehost.yaml", SX_WORKERS_PENDING,
     "the worker selects a TPU v6e node: Pending; the $KSA_NAME/$VLLM_IMAGE placeholders are not "
     "checked by kubesim (a real API server refuses the pods: no such ServiceAccount)"},
};

#define S_NSAMPLES (sizeof(s_samples) / sizeof(s_samples[0]))

/* A sample's run. */
typedef struct {
    bool run; /* selected on the command line */
    char ns[IT_NS_MAX]; /* its namespace */
    char active[IT_NAME_MAX]; /* the active cluster at the first check */
} run_t;

static run_t s_runs[S_NSAMPLES];

/* The namespace of sample `file`: [dir/]ray-service.<x>.yaml -> <x>. */
static void s_ns_of(const char *file, char *out, size_t n)
{
    const char *b = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    if (strncmp(b, "ray-service.", 12) == 0)
        b += 12;
    size_t len = strlen(b);
    if (len > 5 && strcmp(b + len - 5, ".yaml") == 0)
        len -= 5;
    snprintf(out, n, "%.*s", (int)len, b);
    for (char *p = out; *p; p++)
        if (*p == '.' || *p == '_')
            *p = '-';
}

/* ---------- reading back ---------- */

/* The one RayService of sample `i` (new reference), or NULL (none, or several). */
static json_t *s_rayservice(size_t i)
{
    json_t *l = harness_list(&g_h, "ray.io", "rayservices", s_runs[i].ns);
    json_t *o = json_array_size(l) == 1 ? json_incref(json_array_get(l, 0)) : NULL;
    json_decref(l);
    return o;
}

/* The string under key `k` of object `o` (keys such as ray.io/cluster hold dots, so no jx_ path),
 * or "". Borrowed. */
static const char *s_key(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* The condition `type` of `rs`'s status (borrowed), or NULL. */
static const json_t *s_cond(const json_t *rs, const char *type)
{
    return conds_find(jx_get(rs, "status.conditions"), type, NULL);
}

/* Condition `type` of rs has `status` and `reason`. */
static bool s_cond_is(const json_t *rs, const char *type, const char *status, const char *reason)
{
    const json_t *c = s_cond(rs, type);
    return c && strcmp(jx_str(c, "status", ""), status) == 0 &&
           strcmp(jx_str(c, "reason", ""), reason) == 0;
}

/* The application names of rs's serveConfigV2 (new array; "" named "default" as KubeRay shows
 * it), or NULL when it does not parse. */
static json_t *s_app_names(const json_t *rs)
{
    const char *cfg = jx_str(rs, "spec.serveConfigV2", "");
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, HARNESS_ERR_MAX);
    int rc = yaml_load_buf(cfg, strlen(cfg), "serveConfigV2", &docs, &err);
    if (rc != 0)
        printf("  serveConfigV2: %s\n", buf_str(&err));
    buf_free(&err);
    if (rc != 0)
        return NULL;
    json_t *out = json_array();
    size_t k;
    json_t *app;
    json_array_foreach(jx_get(json_array_get(docs, 0), "applications"), k, app)
    {
        const char *n = jx_str(app, "name", "");
        json_array_append_new(out, json_string(*n ? n : "default"));
    }
    json_decref(docs);
    return out;
}

/* Every application of rs's serveConfigV2 is RUNNING in its activeServiceStatus, and there are
 * no others. */
static bool s_apps_running(const json_t *rs)
{
    json_t *names = s_app_names(rs);
    const json_t *st = jx_get(rs, "status.activeServiceStatus.applicationStatuses");
    bool ok = names && json_array_size(names) > 0 && json_object_size(st) == json_array_size(names);
    size_t k;
    json_t *n;
    json_array_foreach(names, k, n)
    {
        const json_t *a = json_object_get(st, json_string_value(n));
        ok = ok && strcmp(jx_str(a, "status", ""), "RUNNING") == 0;
    }
    json_decref(names);
    return ok;
}

/* Pods of `ns` labelled ray.io/cluster=`cluster` and ray.io/node-type=`type` (new array). */
static json_t *s_pods(const char *ns, const char *cluster, const char *type)
{
    json_t *pods = harness_list(&g_h, "", "pods", ns), *out = json_array();
    size_t k;
    json_t *p;
    json_array_foreach(pods, k, p)
    {
        const char *c = harness_label(p, LABEL_CLUSTER), *t = harness_label(p, LABEL_NODE_TYPE);
        if (c && t && strcmp(c, cluster) == 0 && strcmp(t, type) == 0)
            json_array_append(out, p);
    }
    json_decref(pods);
    return out;
}

/* Ready pods of cluster `cluster` in `ns` labelled ray.io/serve=true. */
static long s_serving_pods(const char *ns, const char *cluster)
{
    json_t *pods = harness_list(&g_h, "", "pods", ns);
    long n = 0;
    size_t k;
    json_t *p;
    json_array_foreach(pods, k, p)
    {
        const char *c = harness_label(p, LABEL_CLUSTER), *sv = harness_label(p, LABEL_SERVE);
        n += c && sv && strcmp(c, cluster) == 0 && strcmp(sv, "true") == 0 && harness_pod_ready(p);
    }
    json_decref(pods);
    return n;
}

/* Pod p is Pending with PodScheduled False, reason Unschedulable. */
static bool s_unschedulable(const json_t *p)
{
    if (strcmp(jx_str(p, "status.phase", ""), "Pending") != 0)
        return false;
    size_t k;
    json_t *c;
    json_array_foreach(jx_get(p, "status.conditions"), k, c)
    {
        if (strcmp(jx_str(c, "type", ""), "PodScheduled") == 0)
            return strcmp(jx_str(c, "status", ""), "False") == 0 &&
                   strcmp(jx_str(c, "reason", ""), "Unschedulable") == 0;
    }
    return false;
}

/* Cluster `cluster` of sample `i` has one head pod and its ray.io/serve label is `want`. */
static bool s_head_serve_label(size_t i, const char *cluster, const char *want)
{
    json_t *heads = s_pods(s_runs[i].ns, cluster, "head");
    bool ok = json_array_size(heads) == 1 &&
              strcmp(harness_label(json_array_get(heads, 0), LABEL_SERVE) ?: "", want) == 0;
    json_decref(heads);
    return ok;
}

/* Sample `i` is Ready with every application RUNNING. */
static bool s_at_end(size_t i)
{
    json_t *rs = s_rayservice(i);
    bool ok = rs && s_cond_is(rs, RS_COND_READY, "True", RS_R_NONZERO_ENDPOINTS) &&
              strcmp(jx_str(rs, "status.serviceStatus", ""), "Running") == 0 &&
              jx_int(rs, "status.numServeEndpoints", 0) > 0 && s_apps_running(rs);
    json_decref(rs);
    return ok;
}

static bool s_all_at_end(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < S_NSAMPLES; i++)
        if (s_runs[i].run && !s_at_end(i))
            return false;
    return true;
}

/* ---------- checks ---------- */

/* The RayCluster `rc` is the one KubeRay builds for `rs`. Returns the failed checks. */
static int s_check_cluster(const json_t *rs, const json_t *rc)
{
    int failed = 0;
    const char *name = jx_str(rs, "metadata.name", "?");
    CHECK(strcmp(harness_label(rc, LABEL_ORIGINATED_FROM_CR_NAME) ?: "", name) == 0);
    CHECK(strcmp(harness_label(rc, LABEL_ORIGINATED_FROM_CRD) ?: "", RAYSERVICE_CRD) == 0);
    const json_t *ann = jx_get(rc, "metadata.annotations");
    CHECK(*s_key(ann, RAYSERVICE_ANN_HASH));
    CHECK(rayservice_hash_equal(rs, rc, false));
    char groups[32];
    snprintf(groups, sizeof(groups), "%zu",
             json_array_size(jx_get(rs, "spec.rayClusterConfig.workerGroupSpecs")));
    CHECK(strcmp(s_key(ann, RAYSERVICE_ANN_NUM_GROUPS), groups) == 0);
    CHECK(strcmp(s_key(ann, RAYSERVICE_ANN_VERSION), g_h.suset.version) == 0);
    const json_t *refs = jx_get(rc, "metadata.ownerReferences");
    const json_t *ref = json_array_get(refs, 0);
    CHECK(json_array_size(refs) == 1 && strcmp(jx_str(ref, "kind", ""), "RayService") == 0 &&
          strcmp(jx_str(ref, "name", ""), name) == 0 &&
          strcmp(jx_str(ref, "uid", ""), jx_str(rs, "metadata.uid", "?")) == 0 &&
          json_is_true(json_object_get(ref, "controller")));
    return failed;
}

/* The RayService's Services select cluster `cn`. Returns the failed checks. */
static int s_check_services(size_t i, const json_t *rs, const char *cn)
{
    int failed = 0;
    const char *ns = s_runs[i].ns;
    char head[IT_NAME_MAX];
    snprintf(head, sizeof(head), "%s-head-svc", jx_str(rs, "metadata.name", "?"));
    json_t *hs = harness_get(&g_h, "", "services", ns, head);
    CHECK(hs != NULL);
    CHECK(strcmp(s_key(jx_get(hs, "spec.selector"), LABEL_CLUSTER), cn) == 0);
    json_decref(hs);
    char *sname = rayservice_serve_service_name(rs);
    const char *custom = jx_str(rs, "spec.serveService.metadata.name", NULL);
    CHECK(sname && (custom ? strcmp(sname, custom) == 0 : strstr(sname, "-serve-svc") != NULL));
    if (s_samples[i].flags & SX_INCREMENTAL) {
        /* KubeRay's serve Service builder yields the cluster's own Service here */
        free(sname);
        size_t n = strlen(cn) + sizeof("-serve-svc");
        sname = malloc(n);
        if (sname)
            snprintf(sname, n, "%s-serve-svc", cn);
        json_t *gw = harness_get(&g_h, "gateway.networking.k8s.io", "gateways", ns,
                                 "rayservice-incremental-upgrade-gateway");
        CHECK(gw && strcmp(jx_str(gw, "spec.gatewayClassName", ""), "istio") == 0);
        json_decref(gw);
        json_t *rt = harness_get(&g_h, "gateway.networking.k8s.io", "httproutes", ns,
                                 "rayservice-incremental-upgrade-httproute");
        const json_t *refs = jx_get(json_array_get(jx_get(rt, "spec.rules"), 0), "backendRefs");
        CHECK(json_array_size(refs) == 1 &&
              strcmp(jx_str(json_array_get(refs, 0), "name", ""), sname ? sname : "?") == 0 &&
              jx_int(json_array_get(refs, 0), "weight", -1) == 100);
        json_decref(rt);
        CHECK(jx_int(rs, "status.activeServiceStatus.targetCapacity", -1) == 100);
        CHECK(jx_int(rs, "status.activeServiceStatus.trafficRoutedPercent", -1) == 100);
    }
    json_t *ss = sname ? harness_get(&g_h, "", "services", ns, sname) : NULL;
    if (!ss)
        printf("  %s: no serve Service %s\n", s_samples[i].file, sname ? sname : "?");
    CHECK(ss != NULL);
    const json_t *sel = jx_get(ss, "spec.selector");
    CHECK(json_object_size(sel) == 2 && strcmp(s_key(sel, LABEL_CLUSTER), cn) == 0 &&
          strcmp(s_key(sel, LABEL_SERVE), "true") == 0);
    const char *type = jx_str(rs, "spec.serveService.spec.type", NULL);
    if (type)
        CHECK(strcmp(jx_str(ss, "spec.type", ""), type) == 0);
    json_decref(ss);
    free(sname);
    return failed;
}

/* Every check of sample `i` at its end; `again`: the second round (same active cluster). */
static int s_check(size_t i, bool again)
{
    int failed = 0;
    const sample_t *sm = &s_samples[i];
    const char *ns = s_runs[i].ns;
    json_t *rs = s_rayservice(i);
    CHECK(rs != NULL);
    if (!rs)
        return failed;
    bool at = s_at_end(i);
    if (!at) {
        char *st = json_dumps(jx_get(rs, "status"), JSON_COMPACT);
        printf("  %s: not at its end (%s); status is %s\n", sm->file, sm->why, st ? st : "?");
        free(st);
    }
    CHECK(at);
    const char *cn = jx_str(rs, "status.activeServiceStatus.rayClusterName", "");
    CHECK(*cn);
    CHECK(!*jx_str(rs, "status.pendingServiceStatus.rayClusterName", ""));
    if (again)
        CHECK(strcmp(cn, s_runs[i].active) == 0);
    else
        snprintf(s_runs[i].active, sizeof(s_runs[i].active), "%s", cn);
    CHECK(s_cond_is(rs, RS_COND_UPGRADE, "False", RS_R_NO_PENDING));
    /* the one RayCluster, KubeRay's */
    json_t *l = harness_list(&g_h, "ray.io", "rayclusters", ns);
    CHECK(json_array_size(l) == 1);
    json_decref(l);
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", ns, cn);
    CHECK(rc != NULL);
    if (rc)
        failed += s_check_cluster(rs, rc);
    json_decref(rc);
    failed += s_check_services(i, rs, cn);
    CHECK(s_apps_running(rs));
    CHECK(harness_has_event(&g_h, ns, jx_str(rs, "metadata.name", ""), "UpdatedServeApplications",
                            NULL));
    /* the head serves when its proxy answers; the endpoints are the ready serving pods */
    CHECK(s_head_serve_label(i, cn, sm->flags & SX_HEAD_NO_PROXY ? "false" : "true"));
    long serving = s_serving_pods(ns, cn);
    if (jx_int(rs, "status.numServeEndpoints", -1) != serving)
        printf("  %s: numServeEndpoints %lld, ready serving pods %ld\n", sm->file,
               (long long)jx_int(rs, "status.numServeEndpoints", -1), serving);
    CHECK(serving > 0 && jx_int(rs, "status.numServeEndpoints", -1) == serving);
    if (sm->flags & SX_WORKERS_PENDING) {
        json_t *workers = s_pods(ns, cn, "worker");
        size_t k, n = 0;
        json_t *p;
        json_array_foreach(workers, k, p) n += s_unschedulable(p);
        CHECK(json_array_size(workers) > 0 && n == json_array_size(workers));
        json_decref(workers);
    }
    json_decref(rs);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int first = verbose ? 2 : 1;
    int failed = harness_init(
        &g_h, "rs_samples_it", verbose,
        getenv("IT_DEBUG") ? LOG_DEBUG
        : verbose          ? LOG_WARN
                           : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 8, .wait_ms = 20000, .qps = 1000, .concurrency = 8, .desired = false});
    if (g_h.api)
        failed += harness_start(&g_h);
    if (g_h.started) {
        int64_t t0 = loop_clock_ms();
        for (size_t i = 0; i < S_NSAMPLES; i++) {
            s_runs[i].run = argc <= first;
            for (int a = first; a < argc; a++)
                s_runs[i].run = s_runs[i].run || strcmp(argv[a], s_samples[i].file) == 0;
            s_ns_of(s_samples[i].file, s_runs[i].ns, sizeof(s_runs[i].ns));
            if (!s_runs[i].run)
                continue;
            char path[1024], missing[256];
            snprintf(path, sizeof(path), "%s/kuberay/samples/%s", harness_shared_dir(),
                     s_samples[i].file);
            failed += harness_apply_file(&g_h, path, s_runs[i].ns, missing, sizeof(missing));
            if (*missing)
                printf("  %s: no matches for kind %s\n", s_samples[i].file, missing);
            CHECK(!*missing); /* every kind of the RayService samples is served */
        }
        bool all = harness_wait(&g_h, s_all_at_end, NULL, IT_WAIT_MS);
        if (verbose)
            printf("every sample at its end: %s (%" PRId64 " ms)\n", all ? "yes" : "NO",
                   loop_clock_ms() - t0);
        CHECK(all);
        for (int round = 0; round < 2; round++) {
            if (round)
                harness_pump(&g_h, IT_STAY_MS);
            for (size_t i = 0; i < S_NSAMPLES; i++) {
                if (!s_runs[i].run)
                    continue;
                int f = s_check(i, round > 0);
                failed += f;
                if (round || f)
                    printf("%s: %s (Ready%s)\n", s_samples[i].file, f ? "FAILED" : "ok",
                           round ? ", held" : "");
                if (round && verbose)
                    printf("  why: %s\n", s_samples[i].why);
            }
        }
    }
    failed += harness_stop(&g_h);
    harness_end(&g_h);
    return SELFTEST_RESULT("rs_samples_it", true);
}
