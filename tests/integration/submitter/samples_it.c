/*
 * samples_it: every upstream RayJob sample (../shared/kuberay/samples/ray-job.*.yaml and the six
 * RayJob files in its subdirectories, read in place, unchanged) applied to kubesim with the RayJob
 * controller, the scheduler and the watcher logic in-process (harness.h with HARNESS_SUBMITTER),
 * each reaching the end KubeRay would reach.
 *
 * Applying a sample is what `kubectl create -n <ns> -f <file>` does: every document in order,
 * its kind resolved through the API's discovery (kubesim's resource registry), created through
 * the admin client in the sample's own namespace (created first; a document naming another
 * namespace gets it created too). A kind the cluster does not serve (volcano's Queue: no volcano
 * installed) fails like kubectl's "no matches for kind" and the other documents still go in.
 * Each sample has its own namespace because several samples share object names (rayjob-sample,
 * ray-job-code-sample); all samples run at once. A sample with metadata.generateName is created
 * (POST) like the others, so it gets a generated name, as `kubectl create` gives it (`kubectl
 * apply` refuses generateName).
 *
 * kubesim's nodes (8 x 32 CPUs, 128Gi) have no extended resources: a pod asking nvidia.com/gpu
 * stays Pending Unschedulable "Insufficient nvidia.com/gpu", as kube-scheduler leaves it. What
 * kubesim does not model (a missing ServiceAccount refused by admission, a CSI driver that is not
 * installed) is named in the sample's why where a real cluster would differ.
 *
 * s_samples is the table of expected ends (jobDeploymentStatus, jobStatus, why). For a RayJob
 * that ends Complete: its RayCluster exists (or is deleted after ttlSecondsAfterFinished with
 * shutdownAfterJobFinishes) with an ownerReference to the RayJob and label
 * ray.io/originated-from-crd=RayJob; K8sJobMode has a batch Job named like the RayJob; the
 * simulated heads accepted exactly one submission of status.jobId; jobId, rayClusterName,
 * dashboardURL, startTime and endTime are set. A RayJob that stays Initializing has its owned
 * RayCluster with an Unschedulable Pending head pod and no submitter Job. Every expected end is
 * checked again after a further pause so that "stays" is asserted, not just "passed through".
 *
 * Usage: samples_it [-v] [file...] (file: a sample's path under samples/, e.g.
 * ray-job.sample.yaml). -v also prints each sample's why under its result line (the sample table,
 * scripts/sample-table.py, shows it).
 * Exit 0 when every check passes.
 */
#define HARNESS_SUBMITTER
#include "harness.h"

#include "raysim.h"
#include "rftime.h"
#include "rjstate.h"

#include <inttypes.h>

#define IT_WAIT_MS 90000 /* longest wait for every sample to reach its end */
#define IT_STAY_MS 4000 /* pause before checking again that the ends hold */
#define IT_GONE_MS 45000 /* longest wait for a RayCluster deleted after its TTL (30 s) */
#define IT_DEL_WORKERS_MS 45000 /* longest wait for a DeleteWorkers rule (ttlSeconds 30) */
#define IT_NS_MAX 64 /* bytes of a namespace name */

static harness_t g_h;

/* What to check besides the end state. */
enum {
    SX_PENDING = 1 << 0, /* the head pod cannot be scheduled: pods Pending, no submitter Job */
    SX_GONE = 1 << 1, /* shutdownAfterJobFinishes with a short TTL: the RayCluster gets deleted */
    SX_HEAD_PENDING = 1 << 2, /* with SX_PENDING: the head pod itself cannot be scheduled */
    SX_DEL_WORKERS = 1 << 3, /* deletionRules: DeleteWorkers 30 s after the end, cluster kept */
};

/* One sample and the end it must reach. */
typedef struct {
    const char *file; /* under <shared>/kuberay/samples */
    const char *ds; /* expected final status.jobDeploymentStatus */
    const char *js; /* expected final status.jobStatus ("" = unset) */
    unsigned flags; /* SX_* */
    const char *missing_kind; /* a document kind the cluster does not serve, or NULL */
    const char *why; /* why that is the end */
} sample_t;

static const sample_t s_samples[] = {
    {"agent-sandbox/ray-cluster.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "a RayJob despite the file name; real Python (the sandbox SDK is the job's business): the "
     "simulated head's default outcome"},
    {"pytorch-mnist/ray-job.pytorch-mnist.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "CPU only (head 1 CPU, 2 workers of 3 CPUs): runs; shutdownAfterJobFinishes false keeps the "
     "cluster"},
    {"pytorch-resnet-image-classifier/ray-job.pytorch-image-classifier.yaml", RJ_INITIALIZING, "",
     SX_PENDING, NULL,
     "generateName; the 4 workers ask nvidia.com/gpu, which no kubesim node has: Pending "
     "Insufficient nvidia.com/gpu, the cluster never gets ready (the head runs on kubesim; a real "
     "API server refuses it, ServiceAccount pytorch-distributed-training missing: Initializing "
     "too)"},
    {"pytorch-text-classifier/ray-job.pytorch-distributed-training.yaml", RJ_INITIALIZING, "",
     SX_PENDING | SX_HEAD_PENDING, NULL,
     "generateName; the head asks nvidia.com/gpu, which no kubesim node has: Pending Insufficient "
     "nvidia.com/gpu, the cluster never gets ready"},
    {"ray-data-image-resize/ray-data-image-resize-gcsfusecsi-job.yaml", RJ_COMPLETE, "SUCCEEDED",
     SX_GONE, NULL,
     "CPU only; shutdownAfterJobFinishes, ttl 30 s: the cluster is deleted. kubesim does not model "
     "CSI drivers: on a real cluster without gcsfuse.csi.storage.gke.io the pods stay "
     "ContainerCreating (FailedMount) and the RayJob Initializing"},
    {"ray-data-image-resize/ray-job.image-resize.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "CPU only (head 2 CPUs, 4 workers of 2 CPUs): runs; the cluster is kept"},
    {"ray-job.batch-inference.yaml", RJ_INITIALIZING, "", SX_PENDING | SX_HEAD_PENDING, NULL,
     "head asks nvidia.com/gpu on nodeSelector gke-accelerator=nvidia-tesla-t4: no such node, the "
     "head stays Pending, the cluster never gets ready"},
    {"ray-job.custom-head-svc.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "real Python entrypoint: the simulated head's default outcome"},
    {"ray-job.deletion-rules.yaml", RJ_COMPLETE, "SUCCEEDED", SX_DEL_WORKERS, NULL,
     "real Python; deletionRules act 30/60/90 s after the end (workers, cluster, self)"},
    {"ray-job.interactive-mode.yaml", RJ_WAITING, "", 0, NULL,
     "InteractiveMode with spec.jobId empty: Waiting until the user sets it"},
    {"ray-job.kueue-toy-sample.yaml", RJ_COMPLETE, "SUCCEEDED", SX_GONE, NULL,
     "no kueue queue-name label, so KubeRay runs it; shutdownAfterJobFinishes ttl 10 s"},
    {"ray-job.light-weight-submitter.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "K8sJobMode with the lightweight /submitter image: it submits and follows like the CLI"},
    {"ray-job.platform-events.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "real Python; the ServiceAccount, Role and RoleBinding go in beside it"},
    {"ray-job.resources.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL, "real Python"},
    {"ray-job.sample.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL, "real Python"},
    {"ray-job.sandbox.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "real Python; shutdownAfterJobFinishes with ttl 600 s: the cluster is kept meanwhile"},
    {"ray-job.sidecar-mode.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "SidecarMode: the head's ray-job-submitter container submits"},
    {"ray-job.tpu-jax.yaml", RJ_INITIALIZING, "", SX_PENDING, NULL,
     "workers ask google.com/tpu on a TPU nodeSelector: no such node, workers Pending, the cluster "
     "never gets ready (the head, without TPUs, runs)"},
    {"ray-job.tpu-v6e-16-multihost.yaml", RJ_INITIALIZING, "", SX_PENDING, NULL,
     "workers ask google.com/tpu on a TPU nodeSelector: no such node, workers Pending, the cluster "
     "never gets ready (the head, without TPUs, runs)"},
    {"ray-job.tpu-v6e-256-multihost.yaml", RJ_INITIALIZING, "", SX_PENDING, NULL,
     "workers ask google.com/tpu on a TPU nodeSelector: no such node, workers Pending, the cluster "
     "never gets ready (the head, without TPUs, runs)"},
    {"ray-job.tpu-v6e-singlehost.yaml", RJ_INITIALIZING, "", SX_PENDING, NULL,
     "workers ask google.com/tpu on a TPU nodeSelector: no such node, workers Pending, the cluster "
     "never gets ready (the head, without TPUs, runs)"},
    {"ray-job.volcano-scheduler-queue.yaml", RJ_COMPLETE, "SUCCEEDED", 0, "Queue",
     "no volcano: the Queue is refused (no CRD), KubeRay without --batch-scheduler ignores the "
     "volcano labels and runs it"},
    {"ray-job.yunikorn-scheduler.yaml", RJ_COMPLETE, "SUCCEEDED", 0, NULL,
     "KubeRay without --batch-scheduler ignores the yunikorn labels and runs it"},
};

#define S_NSAMPLES (sizeof(s_samples) / sizeof(s_samples[0]))

/* A sample's run. */
typedef struct {
    bool run; /* selected on the command line */
    char ns[IT_NS_MAX]; /* its namespace */
} run_t;

static run_t s_runs[S_NSAMPLES];

/* ---------- applying a sample ---------- */

/* The namespace of sample `file`: [dir/]ray-job.<x>.yaml -> [dir-]<x>. */
static void s_ns_of(const char *file, char *out, size_t n)
{
    const char *slash = strrchr(file, '/');
    const char *b = slash ? slash + 1 : file;
    int dlen = slash ? (int)(slash - file) + 1 : 0; /* the directory and its '/' */
    b = strncmp(b, "ray-job.", 8) == 0 ? b + 8 : b;
    size_t len = strlen(b);
    if (len > 5 && strcmp(b + len - 5, ".yaml") == 0)
        len -= 5;
    snprintf(out, n, "%.*s%.*s", dlen, file, (int)len, b);
    for (char *p = out; *p; p++)
        if (*p == '.' || *p == '_' || *p == '/')
            *p = '-';
}

/* Applies sample `i` (harness_apply_file); the only kind refused is its missing_kind. Returns the
 * failed checks. */
static int s_apply(size_t i)
{
    int failed = 0;
    char path[1024], missing[256];
    snprintf(path, sizeof(path), "%s/kuberay/samples/%s", harness_shared_dir(), s_samples[i].file);
    failed += harness_apply_file(&g_h, path, s_runs[i].ns, missing, sizeof(missing));
    const char *want = s_samples[i].missing_kind ? s_samples[i].missing_kind : "";
    if (strcmp(missing, want) != 0)
        printf("  %s: no matches for kind %s\n", s_samples[i].file, missing);
    CHECK(strcmp(missing, want) == 0);
    return failed;
}

/* ---------- reading back ---------- */

/* The one RayJob of sample `i` (new reference), or NULL (none, or several). */
static json_t *s_rayjob(size_t i)
{
    json_t *l = harness_list(&g_h, "ray.io", "rayjobs", s_runs[i].ns);
    json_t *o = json_array_size(l) == 1 ? json_incref(json_array_get(l, 0)) : NULL;
    json_decref(l);
    return o;
}

/* Pods of sample `i` with label ray.io/node-type=head (new array). */
static json_t *s_heads(size_t i)
{
    json_t *pods = harness_list(&g_h, "", "pods", s_runs[i].ns), *out = json_array();
    size_t k;
    json_t *p;
    json_array_foreach(pods, k, p)
    {
        const char *t = harness_label(p, "ray.io/node-type");
        if (t && strcmp(t, "head") == 0)
            json_array_append(out, p);
    }
    json_decref(pods);
    return out;
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

/* Sample `i` is at its expected end (for SX_PENDING: with its head pod unschedulable). */
static bool s_at_end(size_t i)
{
    const sample_t *sm = &s_samples[i];
    json_t *rj = s_rayjob(i);
    bool ok = rj && strcmp(jx_str(rj, "status.jobDeploymentStatus", ""), sm->ds) == 0 &&
              strcmp(jx_str(rj, "status.jobStatus", ""), sm->js) == 0;
    json_decref(rj);
    if (ok && (sm->flags & SX_PENDING)) {
        json_t *pods = harness_list(&g_h, "", "pods", s_runs[i].ns);
        size_t k, n = 0;
        json_t *p;
        json_array_foreach(pods, k, p) n += s_unschedulable(p);
        ok = n > 0;
        json_decref(pods);
    }
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

/* The SX_GONE samples' RayClusters are gone and their DeletedRayCluster Events written (the
 * Event follows the deletion's reply, so it may come a moment after the cluster is gone). */
static bool s_all_gone(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < S_NSAMPLES; i++) {
        if (!s_runs[i].run || !(s_samples[i].flags & SX_GONE))
            continue;
        json_t *l = harness_list(&g_h, "ray.io", "rayclusters", s_runs[i].ns);
        size_t n = json_array_size(l);
        json_decref(l);
        if (n)
            return false;
        json_t *rj = s_rayjob(i);
        bool ev = rj && harness_has_event(&g_h, s_runs[i].ns, jx_str(rj, "metadata.name", ""),
                                          "DeletedRayCluster", NULL);
        json_decref(rj);
        if (!ev)
            return false;
    }
    return true;
}

/* The RayCluster of sample `i` has every worker group suspended and no worker pod left. */
static bool s_workers_deleted(size_t i)
{
    json_t *l = harness_list(&g_h, "ray.io", "rayclusters", s_runs[i].ns);
    json_t *rc = json_array_get(l, 0);
    size_t k, n = 0;
    json_t *g;
    bool ok = json_array_size(l) == 1 && json_array_size(jx_get(rc, "spec.workerGroupSpecs")) > 0;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), k, g) ok =
        ok && json_is_true(json_object_get(g, "suspend"));
    json_decref(l);
    json_t *pods = harness_list(&g_h, "", "pods", s_runs[i].ns);
    json_array_foreach(pods, k, g)
    {
        const char *t = harness_label(g, "ray.io/node-type");
        n += t && strcmp(t, "worker") == 0;
    }
    json_decref(pods);
    return ok && n == 0;
}

/* The SX_DEL_WORKERS samples' workers are deleted. */
static bool s_all_workers_deleted(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < S_NSAMPLES; i++)
        if (s_runs[i].run && (s_samples[i].flags & SX_DEL_WORKERS) && !s_workers_deleted(i))
            return false;
    return true;
}

/* Submissions of `sid` the simulated heads accepted (every head, gone ones included). */
static int64_t s_accepted(const char *sid)
{
    rayhead_submit_count_t c = {0};
    if (raysim_submit_counts(apiserver_raysim(g_h.api), sid, &c) != 0)
        return -1;
    return (int64_t)c.accepted;
}

/* ---------- checks ---------- */

/* The RayCluster `rc` belongs to RayJob `rj` as KubeRay makes it. Returns the failed checks. */
static int s_check_owned(const json_t *rj, const json_t *rc)
{
    int failed = 0;
    CHECK(strcmp(harness_label(rc, "ray.io/originated-from-crd") ?: "", "RayJob") == 0);
    CHECK(strcmp(harness_label(rc, "ray.io/originated-from-cr-name") ?: "",
                 jx_str(rj, "metadata.name", "?")) == 0);
    const json_t *ref = json_array_get(jx_get(rc, "metadata.ownerReferences"), 0);
    CHECK(strcmp(jx_str(ref, "kind", ""), "RayJob") == 0 &&
          strcmp(jx_str(ref, "uid", ""), jx_str(rj, "metadata.uid", "?")) == 0 &&
          json_is_true(json_object_get(ref, "controller")));
    return failed;
}

/* The checks of a RayJob that ended Complete. */
static int s_check_complete(size_t i, const json_t *rj)
{
    int failed = 0;
    const sample_t *sm = &s_samples[i];
    const char *ns = s_runs[i].ns, *name = jx_str(rj, "metadata.name", "");
    const char *cn = jx_str(rj, "status.rayClusterName", ""), *jid = jx_str(rj, "status.jobId", "");
    CHECK(*jid && *cn && *jx_str(rj, "status.dashboardURL", ""));
    CHECK(*jx_str(rj, "status.startTime", "") && *jx_str(rj, "status.endTime", ""));
    CHECK(jx_int(rj, "status.succeeded", 0) == 1);
    CHECK(s_accepted(jid) == 1);
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", ns, cn);
    bool shutdown = json_is_true(jx_get(rj, "spec.shutdownAfterJobFinishes"));
    if (sm->flags & SX_GONE) {
        CHECK(shutdown && rc == NULL);
        CHECK(harness_has_event(&g_h, ns, name, "DeletedRayCluster", NULL));
    } else {
        CHECK(rc != NULL);
        if (rc)
            failed += s_check_owned(rj, rc);
    }
    json_decref(rc);
    if (sm->flags & SX_DEL_WORKERS) /* and not yet DeleteCluster (60 s) nor DeleteSelf (90 s) */
        CHECK(s_workers_deleted(i));
    const char *mode = jx_str(rj, "spec.submissionMode", "K8sJobMode");
    json_t *job = harness_get(&g_h, "batch", "jobs", ns, name);
    if (strcmp(mode, "K8sJobMode") == 0) {
        CHECK(job != NULL);
        CHECK(strcmp(harness_label(job, "ray.io/originated-from-crd") ?: "", "RayJob") == 0);
    } else {
        CHECK(job == NULL);
    }
    json_decref(job);
    return failed;
}

/* The checks of a RayJob that stays Initializing for want of nodes. */
static int s_check_pending(size_t i, const json_t *rj)
{
    int failed = 0;
    const char *ns = s_runs[i].ns;
    const char *cn = jx_str(rj, "status.rayClusterName", "");
    CHECK(*cn && *jx_str(rj, "status.jobId", "") && *jx_str(rj, "status.startTime", ""));
    CHECK(!*jx_str(rj, "status.dashboardURL", "") && !jx_get(rj, "status.endTime"));
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", ns, cn);
    CHECK(rc != NULL);
    if (rc)
        failed += s_check_owned(rj, rc);
    CHECK(strcmp(jx_str(rc, "status.state", ""), "ready") != 0);
    json_decref(rc);
    json_t *job = harness_get(&g_h, "batch", "jobs", ns, jx_str(rj, "metadata.name", ""));
    CHECK(job == NULL); /* the submitter Job comes only once the dashboard is reachable */
    json_decref(job);
    json_t *pods = harness_list(&g_h, "", "pods", ns);
    CHECK(json_array_size(pods) > 0 &&
          harness_count_ready(pods, true) < harness_count_ready(pods, false));
    json_decref(pods);
    if (s_samples[i].flags & SX_HEAD_PENDING) {
        json_t *heads = s_heads(i);
        CHECK(json_array_size(heads) == 1 && s_unschedulable(json_array_get(heads, 0)));
        json_decref(heads);
    }
    return failed;
}

/* The checks of the InteractiveMode RayJob waiting for its jobId. */
static int s_check_waiting(size_t i, const json_t *rj)
{
    int failed = 0;
    CHECK(!*jx_str(rj, "status.jobId", "") && *jx_str(rj, "status.dashboardURL", ""));
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", s_runs[i].ns,
                             jx_str(rj, "status.rayClusterName", ""));
    CHECK(rc != NULL);
    if (rc)
        failed += s_check_owned(rj, rc);
    json_decref(rc);
    return failed;
}

/* Every check of sample `i` at its end. */
static int s_check(size_t i)
{
    int failed = 0;
    const sample_t *sm = &s_samples[i];
    json_t *rj = s_rayjob(i);
    CHECK(rj != NULL);
    if (!rj)
        return failed;
    bool at = s_at_end(i);
    if (!at)
        printf("  %s: wanted %s/%s (%s), status is %s\n", sm->file, sm->ds, *sm->js ? sm->js : "-",
               sm->why, json_dumps(jx_get(rj, "status"), JSON_COMPACT));
    CHECK(at);
    if (strcmp(sm->ds, RJ_COMPLETE) == 0)
        failed += s_check_complete(i, rj);
    else if (sm->flags & SX_PENDING)
        failed += s_check_pending(i, rj);
    else if (strcmp(sm->ds, RJ_WAITING) == 0)
        failed += s_check_waiting(i, rj);
    json_decref(rj);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int first = verbose ? 2 : 1;
    int failed = harness_init(
        &g_h, "samples_it", verbose,
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
            if (s_runs[i].run)
                failed += s_apply(i);
        }
        bool all = harness_wait(&g_h, s_all_at_end, NULL, IT_WAIT_MS);
        if (verbose)
            printf("every sample at its end: %s (%" PRId64 " ms)\n", all ? "yes" : "NO",
                   loop_clock_ms() - t0);
        for (size_t i = 0; i < S_NSAMPLES && !all; i++)
            if (s_runs[i].run && !s_at_end(i))
                printf("  not at its end after %d ms: %s\n", IT_WAIT_MS, s_samples[i].file);
        CHECK(all);
        harness_pump(&g_h, IT_STAY_MS);
        bool gone = harness_wait(&g_h, s_all_gone, NULL, IT_GONE_MS);
        CHECK(gone);
        bool dw = harness_wait(&g_h, s_all_workers_deleted, NULL, IT_DEL_WORKERS_MS);
        CHECK(dw);
        if (verbose)
            printf("TTL deletions done (%" PRId64 " ms)\n", loop_clock_ms() - t0);
        for (size_t i = 0; i < S_NSAMPLES; i++) {
            if (!s_runs[i].run)
                continue;
            int f = s_check(i);
            failed += f;
            printf("%s: %s (%s/%s)\n", s_samples[i].file, f ? "FAILED" : "ok", s_samples[i].ds,
                   *s_samples[i].js ? s_samples[i].js : "-");
            if (verbose)
                printf("  why: %s\n", s_samples[i].why);
        }
    }
    failed += harness_stop(&g_h);
    harness_end(&g_h);
    return SELFTEST_RESULT("samples_it", true);
}
