/*
 * submitter_it: the RayJob controller end to end, in-process on one loop: kubesim (simulated
 * kubelet running the KubeRay submitter for real against the simulated Ray heads), rayfleet's
 * CRDs, the watcher logic, the scheduler (RayClusters) and the submitter (RayJobs), wired by an
 * inproc:// bus (harness.h with HARNESS_SUBMITTER).
 *
 * Scenarios, each a RayJob built from ../shared/kuberay/samples/ray-job.sample.yaml with its name,
 * mode and fields changed:
 *   k8sjob      K8sJobMode: New -> Initializing -> Running -> Complete/SUCCEEDED; the RayCluster
 *               (owned, KubeRay's labels), the submitter Job, the RayJob's head Service; one Ray
 *               job with the recorded submission id on the head; Events; audit rows.
 *   http        HTTPMode: the submitter submits through the dashboard; Complete.
 *   sidecar     SidecarMode: the head pod's ray-job-submitter container; Complete.
 *   retry       an entrypoint that exits 1 with backoffLimit 1: AppFailed, a second RayCluster
 *               with a new name, then Failed with failed=2.
 *   invalid     no rayClusterSpec nor clusterSelector: ValidationFailed, Warning InvalidRayJobSpec,
 *               nothing created.
 *   shutdown    shutdownAfterJobFinishes: the RayCluster is deleted after the job ends.
 *   deadline    activeDeadlineSeconds 2 on a long job: Failed/DeadlineExceeded.
 *   suspend     created suspended: Suspended, nothing created; resumed: Complete.
 *   selector    clusterSelector on an existing RayCluster (HTTPMode): Complete; the cluster stays.
 *   delete      a running RayJob deleted: the Ray job is stopped, the finalizer removed, gone.
 *   managedby   spec.managedBy kueue: left alone (no status).
 *   interactive InteractiveMode: Waiting; the user submits to the head and sets spec.jobId:
 *               Running, then Complete with that id.
 *   prerunning  preRunningDeadlineSeconds on a cluster that never gets ready:
 *               Failed/PreRunningDeadlineExceeded.
 *   deleteself  deletionRules DeleteSelf on SUCCEEDED: the RayJob is deleted (audited).
 *   builderr    a submitterPodTemplate without containers: Warning FailedToReconcileRayJob naming
 *               the rule, Initializing, no Job.
 *   invalid-more four more bad specs, each ValidationFailed with KubeRay's exact message, a
 *               Warning InvalidRayJobSpec and no cluster.
 *
 * Usage: submitter_it [-v] [scenario...]. Exit 0 when every check passes.
 */
#define HARNESS_SUBMITTER
#include "harness.h"

#include "rayjob.h"
#include "raysim.h"
#include "rftime.h"
#include "rjstate.h"

#include <inttypes.h>

#define IT_WAIT_MS 40000 /* longest wait for one step */
#define IT_NS "default"

static harness_t g_h;

/* ---------- helpers ---------- */

/* The sample RayJob renamed `name`, mode `mode`, entrypoint `ep` (NULL: the sample's). */
static json_t *s_rayjob(const char *name, const char *mode, const char *ep)
{
    json_t *rj = harness_load_sample(&g_h, "ray-job.sample.yaml");
    if (!rj)
        return NULL;
    json_object_set_new(json_object_get(rj, "metadata"), "name", json_string(name));
    json_object_set_new(json_object_get(rj, "metadata"), "namespace", json_string(IT_NS));
    json_t *spec = json_object_get(rj, "spec");
    if (mode)
        json_object_set_new(spec, "submissionMode", json_string(mode));
    if (ep)
        json_object_set_new(spec, "entrypoint", json_string(ep));
    /* the sample's pip packages would be "installed" by the simulated head; keep it short */
    json_object_del(spec, "runtimeEnvYAML");
    return rj;
}

static int s_create(const char *resource, const json_t *obj)
{
    char msg[HARNESS_MSG_MAX];
    const char *group = strcmp(resource, "configmaps") == 0 ? "" : "ray.io";
    k8s_res_t r = {.group = group, .version = "v1", .resource = resource, .namespace_ = IT_NS};
    int rc = harness_create(&g_h, g_h.admin, &r, obj, msg, sizeof(msg));
    if (rc != 0)
        printf("  create %s: %s (%s)\n", resource, err_str(rc), msg);
    return rc;
}

static json_t *s_rj(const char *name)
{
    return harness_get(&g_h, "ray.io", "rayjobs", IT_NS, name);
}

typedef struct {
    const char *name;
    const char *ds; /* deployment status wanted */
} want_t;

static bool s_is_ds(void *arg)
{
    want_t *w = arg;
    json_t *rj = s_rj(w->name);
    bool ok = rj && strcmp(jx_str(rj, "status.jobDeploymentStatus", ""), w->ds) == 0;
    json_decref(rj);
    return ok;
}

/* Waits until RayJob `name` is in deployment status `ds`; prints where it is when not. */
static bool s_wait_ds(const char *name, const char *ds, int64_t ms)
{
    want_t w = {name, ds};
    bool ok = harness_wait(&g_h, s_is_ds, &w, ms);
    if (!ok) {
        json_t *rj = s_rj(name);
        printf("  %s: wanted %s, status is %s\n", name, ds,
               rj ? json_dumps(jx_get(rj, "status"), JSON_COMPACT) : "(gone)");
        json_decref(rj);
    }
    return ok;
}

static bool s_gone(void *arg)
{
    const char **nm = arg;
    json_t *o = harness_get(&g_h, nm[0], nm[1], IT_NS, nm[2]);
    json_decref(o);
    return o == NULL;
}

/* Waits until group/resource/name is gone. */
static bool s_wait_gone(const char *group, const char *resource, const char *name, int64_t ms)
{
    const char *nm[3] = {group, resource, name};
    return harness_wait(&g_h, s_gone, nm, ms);
}

typedef struct {
    const char *name, *reason;
} ev_t;

static bool s_has_ev(void *arg)
{
    ev_t *e = arg;
    return harness_has_event(&g_h, IT_NS, e->name, e->reason, NULL);
}

/* Waits for an Event with `reason` about `name`. */
static bool s_wait_event(const char *name, const char *reason)
{
    ev_t e = {name, reason};
    return harness_wait(&g_h, s_has_ev, &e, IT_WAIT_MS);
}

/* Jobs with submission id `sid` on the head of RayCluster `cluster` (-1: no head). */
static int s_head_jobs(const char *cluster, const char *sid)
{
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    int n = -1;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *c = harness_label(p, "ray.io/cluster"),
                   *t = harness_label(p, "ray.io/node-type");
        if (!c || strcmp(c, cluster) || !t || strcmp(t, "head"))
            continue;
        rayhead_t *hd =
            raysim_head(apiserver_raysim(g_h.api), IT_NS, jx_str(p, "metadata.name", ""));
        if (!hd)
            continue;
        rayhead_response_t resp;
        char path[256];
        snprintf(path, sizeof(path), "/api/jobs/%s", sid);
        n = 0;
        if (rayhead_handle(hd, rftime_now_ms(), RAYHEAD_PORT_DASHBOARD, "GET", path, NULL, 0,
                           &resp) == 0 &&
            resp.status == 200)
            n = 1;
        rayhead_response_free(&resp);
    }
    json_decref(pods);
    return n;
}

/* Submissions of `sid` the simulated heads accepted (every head, gone ones included). */
static int64_t s_accepted(const char *sid)
{
    rayhead_submit_count_t c = {0};
    if (raysim_submit_counts(apiserver_raysim(g_h.api), sid, &c) != 0)
        return -1;
    return (int64_t)c.accepted;
}

/* Audit rows of the submitter with verb `verb` about kind/name. */
static int64_t s_audit_count(const char *verb, const char *kind, const char *name)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit WHERE verb='%s' AND target_kind='%s' AND "
             "target_name='%s'",
             verb, kind, name);
    sqlite3 *db = NULL;
    int64_t v = -1;
    char path[256];
    snprintf(path, sizeof(path), "%s/submitter.db", g_h.dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* ---------- scenarios ---------- */

static int s_k8sjob(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-k8s", NULL, "python x.py FAKE:sleep=1");
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-k8s", RJ_COMPLETE, IT_WAIT_MS));
    json_t *o = s_rj("rj-k8s");
    const char *cn = jx_str(o, "status.rayClusterName", "");
    const char *jid = jx_str(o, "status.jobId", "");
    CHECK(strcmp(jx_str(o, "status.jobStatus", ""), "SUCCEEDED") == 0);
    CHECK(strncmp(cn, "rj-k8s-", 7) == 0 && strncmp(jid, "rj-k8s-", 7) == 0);
    CHECK(jx_int(o, "status.succeeded", 0) == 1 && jx_int(o, "status.failed", -1) == 0);
    CHECK(jx_get(o, "status.startTime") && jx_get(o, "status.endTime") &&
          jx_get(o, "status.rayJobInfo.endTime"));
    char url[256];
    snprintf(url, sizeof(url), "%s-head-svc.default.svc.cluster.local:8265", cn);
    CHECK(strcmp(jx_str(o, "status.dashboardURL", ""), url) == 0);
    /* the finalizer */
    json_t *fins = jx_get(o, "metadata.finalizers");
    CHECK(json_array_size(fins) == 1 &&
          strcmp(json_string_value(json_array_get(fins, 0)), "ray.io/rayjob-finalizer") == 0);
    /* what it owns */
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", IT_NS, cn);
    CHECK(rc && strcmp(harness_label(rc, "ray.io/originated-from-crd") ?: "", "RayJob") == 0);
    CHECK(rc && strcmp(harness_label(rc, "ray.io/originated-from-cr-name") ?: "", "rj-k8s") == 0);
    CHECK(rc &&
          strcmp(jx_str(json_array_get(jx_get(rc, "metadata.ownerReferences"), 0), "kind", ""),
                 "RayJob") == 0);
    json_t *job = harness_get(&g_h, "batch", "jobs", IT_NS, "rj-k8s");
    CHECK(job != NULL);
    const char *args0 = json_string_value(json_array_get(
        jx_get(json_array_get(jx_get(job, "spec.template.spec.containers"), 0), "args"), 0));
    CHECK(args0 && strstr(args0, "ray job submit --address http://") && strstr(args0, jid) &&
          strstr(args0, "-- python x.py FAKE:sleep=1"));
    json_t *svc = harness_get(&g_h, "", "services", IT_NS, "rj-k8s-head-svc");
    CHECK(svc != NULL);
    /* exactly one Ray job with the recorded id on the head */
    CHECK(s_head_jobs(cn, jid) == 1 && s_accepted(jid) == 1);
    CHECK(s_wait_event("rj-k8s", "CreatedRayCluster"));
    CHECK(s_wait_event("rj-k8s", "CreatedRayJobSubmitter"));
    harness_pump(&g_h, 50);
    CHECK(s_audit_count("create", "RayCluster", cn) == 1);
    CHECK(s_audit_count("create", "Job", "rj-k8s") == 1);
    CHECK(s_audit_count("status", "RayJob", "rj-k8s") >= 3);
    json_decref(svc);
    json_decref(job);
    json_decref(rc);
    json_decref(o);
    return failed;
}

static int s_http(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-http", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=1");
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-http", RJ_COMPLETE, IT_WAIT_MS));
    json_t *o = s_rj("rj-http");
    CHECK(strcmp(jx_str(o, "status.jobStatus", ""), "SUCCEEDED") == 0);
    CHECK(s_head_jobs(jx_str(o, "status.rayClusterName", ""), jx_str(o, "status.jobId", "")) == 1);
    CHECK(s_accepted(jx_str(o, "status.jobId", "")) == 1);
    json_t *job = harness_get(&g_h, "batch", "jobs", IT_NS, "rj-http");
    CHECK(job == NULL); /* no submitter Job in HTTPMode */
    harness_pump(&g_h, 50);
    CHECK(s_audit_count("submit", "RayJob", "rj-http") == 1);
    json_decref(job);
    json_decref(o);
    return failed;
}

static int s_sidecar(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-side", RAYJOB_MODE_SIDECAR, "python x.py FAKE:sleep=1");
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-side", RJ_COMPLETE, IT_WAIT_MS));
    json_t *o = s_rj("rj-side");
    CHECK(strcmp(jx_str(o, "status.jobStatus", ""), "SUCCEEDED") == 0);
    json_t *rc =
        harness_get(&g_h, "ray.io", "rayclusters", IT_NS, jx_str(o, "status.rayClusterName", ""));
    json_t *ctrs = jx_get(rc, "spec.headGroupSpec.template.spec.containers");
    CHECK(json_array_size(ctrs) == 2 &&
          strcmp(jx_str(json_array_get(ctrs, 1), "name", ""), "ray-job-submitter") == 0);
    json_decref(rc);
    json_decref(o);
    return failed;
}

static int s_retry(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-retry", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=0.5,exit=1");
    json_object_set_new(json_object_get(rj, "spec"), "backoffLimit", json_integer(1));
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-retry", RJ_RUNNING, IT_WAIT_MS));
    json_t *o = s_rj("rj-retry");
    char first[64];
    snprintf(first, sizeof(first), "%s", jx_str(o, "status.rayClusterName", ""));
    json_decref(o);
    CHECK(s_wait_ds("rj-retry", RJ_FAILED, 2 * IT_WAIT_MS));
    o = s_rj("rj-retry");
    CHECK(jx_int(o, "status.failed", 0) == 2);
    CHECK(strcmp(jx_str(o, "status.reason", ""), RJ_R_APP_FAILED) == 0);
    CHECK(strcmp(jx_str(o, "status.jobStatus", ""), "FAILED") == 0);
    CHECK(strcmp(jx_str(o, "status.rayClusterName", ""), first) != 0);
    json_decref(o);
    return failed;
}

static int s_invalid(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-bad", NULL, NULL);
    json_object_del(json_object_get(rj, "spec"), "rayClusterSpec");
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-bad", RJ_VALIDATION_FAILED, IT_WAIT_MS));
    json_t *o = s_rj("rj-bad");
    CHECK(strcmp(jx_str(o, "status.reason", ""), "ValidationFailed") == 0 &&
          *jx_str(o, "status.message", ""));
    CHECK(s_wait_event("rj-bad", RAYJOB_EV_INVALID_SPEC));
    CHECK(harness_has_event(&g_h, IT_NS, "rj-bad", RAYJOB_EV_INVALID_SPEC, "default/rj-bad: "));
    CHECK(!jx_get(o, "status.rayClusterName"));
    json_decref(o);
    return failed;
}

static int s_shutdown(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-shut", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=0.5");
    json_object_set_new(json_object_get(rj, "spec"), "shutdownAfterJobFinishes", json_true());
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-shut", RJ_COMPLETE, IT_WAIT_MS));
    json_t *o = s_rj("rj-shut");
    CHECK(
        s_wait_gone("ray.io", "rayclusters", jx_str(o, "status.rayClusterName", "?"), IT_WAIT_MS));
    CHECK(s_wait_event("rj-shut", "DeletedRayCluster"));
    json_decref(o);
    return failed;
}

static int s_deadline(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-dl", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=60");
    json_object_set_new(json_object_get(rj, "spec"), "activeDeadlineSeconds", json_integer(3));
    json_object_set_new(json_object_get(rj, "spec"), "backoffLimit", json_integer(2));
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-dl", RJ_FAILED, IT_WAIT_MS));
    json_t *o = s_rj("rj-dl");
    CHECK(strcmp(jx_str(o, "status.reason", ""), RJ_R_DEADLINE) == 0);
    CHECK(jx_int(o, "status.failed", 0) == 1); /* a deadline is never retried */
    json_decref(o);
    return failed;
}

static int s_suspend(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-susp", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=0.5");
    json_object_set_new(json_object_get(rj, "spec"), "suspend", json_true());
    json_object_set_new(json_object_get(rj, "spec"), "shutdownAfterJobFinishes", json_true());
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-susp", RJ_SUSPENDED, IT_WAIT_MS));
    json_t *rcs = harness_list(&g_h, "ray.io", "rayclusters", IT_NS);
    size_t i;
    json_t *c;
    json_array_foreach(rcs, i, c)
        CHECK(strcmp(harness_label(c, "ray.io/originated-from-cr-name") ?: "", "rj-susp") != 0);
    json_decref(rcs);
    /* resume, as kubectl patch does */
    json_t *patch = json_pack("{s:{s:b}}", "spec", "suspend", 0);
    harness_res_t x = {0};
    k8s_res_t res = {.group = "ray.io",
                     .version = "v1",
                     .resource = "rayjobs",
                     .namespace_ = IT_NS,
                     .name = "rj-susp"};
    CHECK(k8s_patch(g_h.admin, &res, K8S_PATCH_MERGE, patch, NULL, s_harness_done, &x) > 0);
    json_decref(patch);
    int64_t until = loop_clock_ms() + IT_WAIT_MS;
    while (!x.done && loop_clock_ms() < until)
        loop_run_once(g_h.loop, HARNESS_TURN_MS);
    CHECK(x.done && x.err == 0);
    CHECK(s_wait_ds("rj-susp", RJ_COMPLETE, IT_WAIT_MS));
    return failed;
}

static int s_selector(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-sel", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=0.5");
    json_t *rc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:O}", "apiVersion", "ray.io/v1", "kind",
                           "RayCluster", "metadata", "name", "shared", "namespace", IT_NS, "spec",
                           jx_get(rj, "spec.rayClusterSpec"));
    CHECK(s_create("rayclusters", rc) == 0);
    json_decref(rc);
    json_object_del(json_object_get(rj, "spec"), "rayClusterSpec");
    json_object_set_new(json_object_get(rj, "spec"), "clusterSelector",
                        json_pack("{s:s}", "ray.io/cluster", "shared"));
    CHECK(s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-sel", RJ_COMPLETE, IT_WAIT_MS));
    json_t *o = s_rj("rj-sel");
    CHECK(strcmp(jx_str(o, "status.rayClusterName", ""), "shared") == 0);
    json_decref(o);
    harness_pump(&g_h, 500);
    rc = harness_get(&g_h, "ray.io", "rayclusters", IT_NS, "shared");
    CHECK(rc && !jx_get(rc, "metadata.deletionTimestamp"));
    json_decref(rc);
    return failed;
}

static int s_delete(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-del", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=60");
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-del", RJ_RUNNING, IT_WAIT_MS));
    harness_pump(&g_h, 1500);
    json_t *o = s_rj("rj-del");
    char cn[64], jid[64];
    snprintf(cn, sizeof(cn), "%s", jx_str(o, "status.rayClusterName", ""));
    snprintf(jid, sizeof(jid), "%s", jx_str(o, "status.jobId", ""));
    json_decref(o);
    objstore_status_t st = {0};
    CHECK(objstore_delete(apiserver_store(g_h.api), harness_res(&g_h, "ray.io", "rayjobs"), IT_NS,
                          "rj-del", NULL, NULL, NULL, &st) == 0);
    CHECK(s_wait_gone("ray.io", "rayjobs", "rj-del", IT_WAIT_MS));
    harness_pump(&g_h, 50);
    CHECK(s_audit_count("stop", "RayJob", "rj-del") == 1);
    return failed;
}

/* Merge-patches RayJob `name` through the admin client, as kubectl patch does. */
static int s_patch(const char *name, json_t *patch)
{
    harness_res_t x = {0};
    k8s_res_t res = {.group = "ray.io",
                     .version = "v1",
                     .resource = "rayjobs",
                     .namespace_ = IT_NS,
                     .name = name};
    int64_t id = k8s_patch(g_h.admin, &res, K8S_PATCH_MERGE, patch, NULL, s_harness_done, &x);
    json_decref(patch);
    int64_t until = loop_clock_ms() + IT_WAIT_MS;
    while (id > 0 && !x.done && loop_clock_ms() < until)
        loop_run_once(g_h.loop, HARNESS_TURN_MS);
    return id < 0 ? (int)id : x.done ? x.err : ERR_TIMEOUT;
}

/* InteractiveMode: Waiting until the user submits to the head and sets spec.jobId. */
static int s_interactive(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-int", RAYJOB_MODE_INTERACTIVE, "python x.py");
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-int", RJ_WAITING, IT_WAIT_MS));
    json_t *o = s_rj("rj-int");
    CHECK(!jx_get(o, "status.jobId") && *jx_str(o, "status.dashboardURL", ""));
    /* the user's own submission, straight to the head (as `ray job submit` would) */
    const char *cn = jx_str(o, "status.rayClusterName", "");
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    size_t i;
    json_t *pd;
    bool submitted = false;
    json_array_foreach(pods, i, pd)
    {
        const char *c = harness_label(pd, "ray.io/cluster"),
                   *t = harness_label(pd, "ray.io/node-type");
        rayhead_t *hd =
            c && t && !strcmp(c, cn) && !strcmp(t, "head")
                ? raysim_head(apiserver_raysim(g_h.api), IT_NS, jx_str(pd, "metadata.name", ""))
                : NULL;
        if (!hd)
            continue;
        const char *body = "{\"entrypoint\": \"python x.py FAKE:sleep=0.5\", "
                           "\"submission_id\": \"mine-1\"}";
        rayhead_response_t resp;
        submitted = rayhead_handle(hd, rftime_now_ms(), RAYHEAD_PORT_DASHBOARD, "POST",
                                   "/api/jobs/", body, strlen(body), &resp) == 0 &&
                    resp.status == 200;
        rayhead_response_free(&resp);
    }
    json_decref(pods);
    json_decref(o);
    CHECK(submitted);
    CHECK(s_patch("rj-int", json_pack("{s:{s:s}}", "spec", "jobId", "mine-1")) == 0);
    CHECK(s_wait_ds("rj-int", RJ_COMPLETE, IT_WAIT_MS));
    o = s_rj("rj-int");
    CHECK(strcmp(jx_str(o, "status.jobId", ""), "mine-1") == 0 &&
          strcmp(jx_str(o, "status.jobStatus", ""), "SUCCEEDED") == 0);
    json_decref(o);
    return failed;
}

/* preRunningDeadlineSeconds: a cluster that never gets ready (its head asks for a node
 * selector no node has) fails the RayJob with PreRunningDeadlineExceeded. */
static int s_prerunning(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-prd", RAYJOB_MODE_HTTP, "python x.py");
    json_object_set_new(json_object_get(rj, "spec"), "preRunningDeadlineSeconds", json_integer(2));
    jx_set_path(jx_get(rj, "spec.rayClusterSpec.headGroupSpec.template.spec"), "nodeSelector",
                json_pack("{s:s}", "example.com/none", "true"));
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-prd", RJ_FAILED, IT_WAIT_MS));
    json_t *o = s_rj("rj-prd");
    CHECK(strcmp(jx_str(o, "status.reason", ""), RJ_R_PRE_RUNNING_DEADLINE) == 0);
    json_decref(o);
    return failed;
}

/* deletionRules: DeleteSelf once the job SUCCEEDED (ttl 0): the RayJob and what it owns go. */
static int s_deleteself(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-self", RAYJOB_MODE_HTTP, "python x.py FAKE:sleep=0.5");
    json_object_set_new(json_object_get(rj, "spec"), "deletionStrategy",
                        json_pack("{s:[{s:s, s:{s:s, s:i}}]}", "deletionRules", "policy",
                                  "DeleteSelf", "condition", "jobStatus", "SUCCEEDED", "ttlSeconds",
                                  0));
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_ds("rj-self", RJ_COMPLETE, IT_WAIT_MS));
    CHECK(s_wait_gone("ray.io", "rayjobs", "rj-self", IT_WAIT_MS));
    harness_pump(&g_h, 50);
    CHECK(s_audit_count("delete", "RayJob", "rj-self") == 1);
    return failed;
}

/* More bad specs: each gets ValidationFailed with KubeRay's message, a Warning, nothing else. */
static int s_invalid_more(void)
{
    int failed = 0;
    static const struct {
        const char *name, *field, *value, *msg;
        bool selector; /* also set a clusterSelector */
    } cases[] = {
        {"rj-bad-ttl", "spec.ttlSecondsAfterFinished", "10",
         "The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to false cannot "
         "have TTLSecondsAfterFinished",
         false},
        {"rj-bad-ads", "spec.activeDeadlineSeconds", "0",
         "The RayJob spec is invalid: activeDeadlineSeconds must be a positive integer", false},
        {"rj-bad-env", "spec.runtimeEnvYAML", "\"a: [1\"",
         "failed to unmarshal RuntimeEnvYAML: ", false},
        {"rj-bad-mode", "spec.submissionMode", "\"SidecarMode\"",
         "ClusterSelector is not supported in SidecarMode", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *rj = s_rayjob(cases[i].name, NULL, NULL);
        jx_set_path(rj, cases[i].field, json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
        if (cases[i].selector)
            json_object_set_new(json_object_get(rj, "spec"), "clusterSelector",
                                json_pack("{s:s}", "ray.io/cluster", "x"));
        CHECK(rj && s_create("rayjobs", rj) == 0);
        json_decref(rj);
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(s_wait_ds(cases[i].name, RJ_VALIDATION_FAILED, IT_WAIT_MS));
        CHECK(s_wait_event(cases[i].name, RAYJOB_EV_INVALID_SPEC));
        json_t *o = s_rj(cases[i].name);
        const char *m = jx_str(o, "status.message", "");
        if (g_h.verbose)
            printf("  %s: %s\n", cases[i].name, m);
        CHECK(strncmp(m, cases[i].msg, strlen(cases[i].msg)) == 0);
        CHECK(strcmp(jx_str(o, "status.reason", ""), "ValidationFailed") == 0);
        CHECK(!jx_get(o, "status.rayClusterName"));
        json_decref(o);
    }
    return failed;
}

/* A spec the validation lets through but the submitter Job cannot be built from: a Warning that
 * names the rule, the RayJob stays Initializing, nothing half-made. */
static int s_builderr(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-nosub", NULL, "python x.py");
    json_object_set_new(
        json_object_get(rj, "spec"), "submitterPodTemplate",
        json_pack("{s:{s:[], s:s}}", "spec", "containers", "restartPolicy", "Never"));
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    CHECK(s_wait_event("rj-nosub", "FailedToReconcileRayJob"));
    CHECK(harness_has_event(&g_h, IT_NS, "rj-nosub", "FailedToReconcileRayJob",
                            "submitterPodTemplate should have at least one container"));
    json_t *o = s_rj("rj-nosub");
    CHECK(strcmp(jx_str(o, "status.jobDeploymentStatus", ""), RJ_INITIALIZING) == 0);
    json_decref(o);
    json_t *job = harness_get(&g_h, "batch", "jobs", IT_NS, "rj-nosub");
    CHECK(job == NULL);
    json_decref(job);
    return failed;
}

static int s_managedby(void)
{
    int failed = 0;
    json_t *rj = s_rayjob("rj-kueue", NULL, NULL);
    json_object_set_new(json_object_get(rj, "spec"), "managedBy",
                        json_string("kueue.x-k8s.io/multikueue"));
    CHECK(rj && s_create("rayjobs", rj) == 0);
    json_decref(rj);
    harness_pump(&g_h, 2000);
    json_t *o = s_rj("rj-kueue");
    CHECK(o && !jx_get(o, "status"));
    json_decref(o);
    return failed;
}

typedef struct {
    const char *name;
    int (*fn)(void);
} scenario_t;

static const scenario_t s_scenarios[] = {
    {"k8sjob", s_k8sjob},
    {"http", s_http},
    {"sidecar", s_sidecar},
    {"retry", s_retry},
    {"invalid", s_invalid},
    {"shutdown", s_shutdown},
    {"deadline", s_deadline},
    {"suspend", s_suspend},
    {"selector", s_selector},
    {"delete", s_delete},
    {"managedby", s_managedby},
    {"interactive", s_interactive},
    {"prerunning", s_prerunning},
    {"deleteself", s_deleteself},
    {"invalid-more", s_invalid_more},
    {"builderr", s_builderr},
};

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int first = verbose ? 2 : 1;
    int failed = harness_init(
        &g_h, "submitter_it", verbose,
        getenv("IT_DEBUG") ? LOG_DEBUG
        : verbose          ? LOG_WARN
                           : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 8, .wait_ms = IT_WAIT_MS, .qps = 1000, .concurrency = 8, .desired = false});
    if (g_h.api)
        failed += harness_start(&g_h);
    if (g_h.started) {
        for (size_t i = 0; i < sizeof(s_scenarios) / sizeof(s_scenarios[0]); i++) {
            bool run = argc <= first;
            for (int a = first; a < argc; a++)
                run = run || strcmp(argv[a], s_scenarios[i].name) == 0;
            if (!run)
                continue;
            int64_t t0 = loop_clock_ms();
            int f = s_scenarios[i].fn();
            failed += f;
            printf("%s: %s (%" PRId64 " ms)\n", s_scenarios[i].name, f ? "FAILED" : "ok",
                   loop_clock_ms() - t0);
        }
    }
    failed += harness_stop(&g_h);
    harness_end(&g_h);
    return SELFTEST_RESULT("submitter_it", true);
}
