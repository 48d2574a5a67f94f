/*
 * scheduler2_it: the RayCluster reconciler's upgrade, fault-tolerance and multi-host behaviour end
 * to end, in-process on one loop, set up like tests/integration/scheduler: kubesim's API server
 * with simulate=true and rayfleet's CRDs, the watcher logic writing observed.db and publishing on
 * an inproc:// bus, the scheduler logic (bus subscriber -> work queue -> reconcile).
 *
 * Scenarios (each on its own RayCluster built from ray-cluster.sample.yaml):
 *   1. upgradeStrategy Recreate: the head pod carries the Recreate hash; changing the worker
 *      image replaces every pod (new names, new image, event DeletedPod); with None a further
 *      image change leaves the pods alone.
 *   2. GCS fault tolerance with Redis: the finalizer ray.io/gcs-ft-redis-cleanup-finalizer is
 *      added; on deletion the pods go, the Redis cleanup Job is created (event
 *      CreatedRedisCleanupJob) and runs to Complete, the finalizer is removed and the RayCluster
 *      is gone.
 *      With the Job's creation failing, ray.io/gcs-ft-deletion-timeout later the finalizer is
 *      force-removed with Warning ForceDeletedStuckCluster.
 *   3. multi-host (numOfHosts 2, replicas 2): 4 worker pods in 2 replicas with the replica-name,
 *      replica-index and host-index labels and the headless worker Service; scaling to 1 removes
 *      one whole replica.
 *   4. a user-named autoscaler ServiceAccount that does not exist: Warning
 *      AutoscalerServiceAccountNotFound and no pod until the user creates it; the Ingress is
 *      created, and updated (UpdatedIngress) when the RayCluster's annotations change.
 *
 * Usage: scheduler2_it [-v]. Exit 0 when every check passes.
 */
#include "harness.h"

#define IT_WAIT_MS 30000 /* longest wait for one step */
#define IT_QUIET_MS 4000 /* how long nothing may change */
#define IT_NS "default" /* namespace of the clusters */
#define IT_NEW_IMAGE "rayproject/ray:2.46.0-recreate" /* worker image after the change */
#define IT_NONE_IMAGE "rayproject/ray:2.46.0-none" /* worker image changed under None */

static harness_t g_h; /* kubesim, watcher, bus and reconciler on one loop */
static const char *g_rc = ""; /* the RayCluster of the current scenario */

/* ---------- kubesim access ---------- */

static json_t *s_get(const char *group, const char *resource, const char *name)
{
    return harness_get(&g_h, group, resource, IT_NS, name);
}

static const char *s_ann(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.annotations"), k));
}

/* The pods of g_rc with node type `type` (NULL: head and workers); terminating ones only when
 * `all`. A new array. */
static json_t *s_pods_ex(const char *type, bool all)
{
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS), *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *c = harness_label(p, "ray.io/cluster"),
                   *t = harness_label(p, "ray.io/node-type");
        if (!c || strcmp(c, g_rc) || !t || (!all && jx_get(p, "metadata.deletionTimestamp")))
            continue;
        if (type ? strcmp(t, type) != 0 : (strcmp(t, "head") && strcmp(t, "worker")))
            continue;
        json_array_append(out, p);
    }
    json_decref(pods);
    return out;
}

static json_t *s_pods(const char *type)
{
    return s_pods_ex(type, false);
}

static size_t s_count(const char *type, bool ready_only)
{
    json_t *a = s_pods(type);
    size_t n = harness_count_ready(a, ready_only);
    json_decref(a);
    return n;
}

static json_t *s_rc(void)
{
    return s_get("ray.io", "rayclusters", g_rc);
}

/* Changes the RayCluster's spec through an update of the main endpoint (generation bumps). */
static int s_rc_modify(void (*fn)(json_t *rc, void *arg), void *arg)
{
    return harness_rc_modify(&g_h, IT_NS, g_rc, fn, arg);
}

/* 1 ready head and `arg` ready workers, nothing else, status state ready. */
static bool s_cluster_ready(void *arg)
{
    int64_t workers = (int64_t)(intptr_t)arg;
    if (s_count("head", true) != 1 || s_count("head", false) != 1 ||
        (int64_t)s_count("worker", true) != workers || (int64_t)s_count("worker", false) != workers)
        return false;
    json_t *rc = s_rc();
    bool ok = rc && !strcmp(jx_str(rc, "status.state", ""), "ready");
    json_decref(rc);
    return ok;
}

static void s_dump(void)
{
    if (!g_h.verbose)
        return;
    json_t *rc = s_rc();
    char *st = rc ? json_dumps(jx_get(rc, "status"), JSON_COMPACT) : NULL;
    char *md = rc ? json_dumps(jx_get(rc, "metadata"), JSON_COMPACT) : NULL;
    printf("  %s status: %s\n  metadata: %.800s\n", g_rc, st ? st : "(none)", md ? md : "");
    free(st);
    free(md);
    json_decref(rc);
    json_t *a = s_pods_ex(NULL, true);
    size_t i;
    json_t *p;
    json_array_foreach(a, i, p)
        printf("  pod %s %s ready=%d deleting=%d\n", jx_str(p, "metadata.name", ""),
               jx_str(p, "status.phase", ""), harness_pod_ready(p),
               jx_get(p, "metadata.deletionTimestamp") != NULL);
    json_decref(a);
    reconcile_stats_t rs;
    reconcile_stats(g_h.rec, &rs);
    printf("  reconcile: passes %llu creates %llu deletes %llu updates %llu errors %llu "
           "write_errors %llu\n",
           (unsigned long long)rs.passes, (unsigned long long)rs.creates,
           (unsigned long long)rs.deletes, (unsigned long long)rs.updates,
           (unsigned long long)rs.errors, (unsigned long long)rs.write_errors);
}

/* Kubernetes Events about g_rc with `reason` (and, when not NULL, a message containing `part`). */
static bool s_has_event(const char *reason, const char *part)
{
    return harness_has_event(&g_h, IT_NS, g_rc, reason, part);
}

static bool s_event_seen(void *arg)
{
    return s_has_event(arg, NULL);
}

/* ray-cluster.sample.yaml renamed to `name`. */
static json_t *s_sample(const char *name)
{
    json_t *rc = harness_load_sample(&g_h, "ray-cluster.sample.yaml");
    if (rc)
        jx_set_path(rc, "metadata.name", json_string(name));
    return rc;
}

/* ---------- spec edits ---------- */

static json_t *s_wg0(json_t *rc)
{
    return json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
}

static void s_set_worker_image(json_t *rc, void *arg)
{
    json_t *c = json_array_get(jx_get(s_wg0(rc), "template.spec.containers"), 0);
    json_object_set_new(c, "image", json_string(arg));
}

static void s_set_strategy(json_t *rc, void *arg)
{
    json_object_set_new(json_object_get(rc, "spec"), "upgradeStrategy",
                        json_pack("{s:s}", "type", (const char *)arg));
}

static void s_set_replicas(json_t *rc, void *arg)
{
    json_object_set_new(s_wg0(rc), "replicas", json_integer((json_int_t)(intptr_t)arg));
}

/* ---------- 1. Recreate ---------- */

static const char *s_worker_image(const json_t *pod)
{
    return jx_str(json_array_get(jx_get(pod, "spec.containers"), 0), "image", "");
}

/* Every pod is new (not in `arg`), ready, and the worker runs IT_NEW_IMAGE. */
static bool s_replaced(void *arg)
{
    const json_t *old = arg;
    if (!s_cluster_ready((void *)(intptr_t)1))
        return false;
    json_t *a = s_pods(NULL);
    bool ok = true;
    size_t i;
    json_t *p;
    json_array_foreach(a, i, p)
    {
        if (json_object_get(old, jx_str(p, "metadata.name", "")))
            ok = false;
        if (!strcmp(harness_label(p, "ray.io/node-type"), "worker") &&
            strcmp(s_worker_image(p), IT_NEW_IMAGE) != 0)
            ok = false;
    }
    json_decref(a);
    return ok;
}

static json_t *s_pod_names(void)
{
    json_t *names = json_object(), *a = s_pods(NULL);
    size_t i;
    json_t *p;
    json_array_foreach(a, i, p)
        json_object_set_new(names, jx_str(p, "metadata.name", ""), json_true());
    json_decref(a);
    return names;
}

static int s_recreate(k8s_client_t *admin, const k8s_res_t *rcres)
{
    int failed = 0;
    g_rc = "rc-recreate";
    json_t *rc = s_sample(g_rc);
    CHECK(rc != NULL);
    s_set_strategy(rc, "Recreate");
    CHECK(rc && harness_create(&g_h, admin, rcres, rc, NULL, 0) == 0);
    json_decref(rc);
    bool ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *heads = s_pods("head");
    const char *hash = s_ann(json_array_get(heads, 0), ANN_RECREATE_HASH);
    CHECK(hash && strlen(hash) == RECONCILE_HASH_LEN);
    char old_hash[RECONCILE_HASH_LEN + 1] = "";
    snprintf(old_hash, sizeof(old_hash), "%s", hash ? hash : "");
    json_decref(heads);
    /* a replica change alone recreates nothing */
    json_t *old = s_pod_names();
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)2) == 0);
    CHECK(harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS));
    json_t *now = s_pod_names();
    const char *k;
    json_t *v;
    json_object_foreach(old, k, v) CHECK(json_object_get(now, k) != NULL);
    json_decref(now);
    CHECK(!s_has_event("DeletedPod", NULL));
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)1) == 0);
    CHECK(harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS));
    json_decref(old);

    /* the worker image changes: every pod is replaced */
    old = s_pod_names();
    CHECK(json_object_size(old) == 2);
    int64_t t0 = loop_clock_ms();
    CHECK(s_rc_modify(s_set_worker_image, IT_NEW_IMAGE) == 0);
    ok = harness_wait(&g_h, s_replaced, old, 2 * IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_decref(old);
    CHECK(s_has_event("DeletedPod", "Recreate"));
    heads = s_pods("head");
    hash = s_ann(json_array_get(heads, 0), ANN_RECREATE_HASH);
    CHECK(hash && strcmp(hash, old_hash) != 0);
    json_decref(heads);
    if (g_h.verbose)
        printf("  Recreate: all pods replaced in %lld ms: %s\n", (long long)(loop_clock_ms() - t0),
               ok ? "ok" : "FAILED");

    /* None: a template change leaves the pods alone */
    CHECK(s_rc_modify(s_set_strategy, "None") == 0);
    harness_pump(&g_h, 1000);
    old = s_pod_names();
    CHECK(s_rc_modify(s_set_worker_image, IT_NONE_IMAGE) == 0);
    harness_pump(&g_h, IT_QUIET_MS);
    now = s_pod_names();
    CHECK(json_equal(old, now));
    json_t *w = s_pods("worker");
    CHECK(json_array_size(w) == 1 && !strcmp(s_worker_image(json_array_get(w, 0)), IT_NEW_IMAGE));
    json_decref(w);
    if (g_h.verbose)
        printf("  None: pods unchanged: %s\n", json_equal(old, now) ? "ok" : "FAILED");
    json_decref(old);
    json_decref(now);
    return failed;
}

/* ---------- 2. GCS FT with Redis ---------- */

static bool s_has_finalizer(void *arg)
{
    json_t *rc = s_rc();
    bool ok = false;
    size_t i;
    json_t *f;
    json_array_foreach(jx_get(rc, "metadata.finalizers"), i, f)
    {
        if (!strcmp(json_string_value(f) ? json_string_value(f) : "",
                    FINALIZER_GCS_FT_REDIS_CLEANUP))
            ok = true;
    }
    json_decref(rc);
    return ok && s_cluster_ready((void *)(intptr_t)1);
}

typedef struct {
    bool job_seen; /* the cleanup Job existed */
    bool job_complete; /* it was seen Complete */
    bool job_before_heads_gone; /* it existed while a head pod was still listed */
    bool fin_while_running; /* the RayCluster was gone while the Job was not finished */
} ft_watch_t;

static bool s_rc_gone(void *arg)
{
    ft_watch_t *fw = arg;
    char jname[256];
    snprintf(jname, sizeof(jname), "%s-redis-cleanup", g_rc);
    json_t *job = s_get("batch", "jobs", jname);
    if (job) {
        fw->job_seen = true;
        size_t i;
        json_t *c;
        json_array_foreach(jx_get(job, "status.conditions"), i, c)
        {
            if (!strcmp(jx_str(c, "type", ""), "Complete") &&
                !strcmp(jx_str(c, "status", ""), "True"))
                fw->job_complete = true;
        }
        json_t *h = s_pods_ex("head", true);
        if (json_array_size(h) > 0)
            fw->job_before_heads_gone = true;
        json_decref(h);
    }
    json_decref(job);
    json_t *rc = s_rc();
    json_decref(rc);
    if (!rc && fw->job_seen && !fw->job_complete)
        fw->fin_while_running = true;
    return rc == NULL;
}

static int s_gcs_ft(k8s_client_t *admin, const k8s_res_t *rcres)
{
    int failed = 0;
    g_rc = "rc-ft";
    json_t *rc = s_sample(g_rc);
    CHECK(rc != NULL);
    jx_set_path(rc, "spec.gcsFaultToleranceOptions",
                json_pack("{s:s}", "redisAddress", "redis:6379"));
    CHECK(rc && harness_create(&g_h, admin, rcres, rc, NULL, 0) == 0);
    json_decref(rc);
    bool ok = harness_wait(&g_h, s_has_finalizer, NULL, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *heads = s_pods("head");
    CHECK(!strcmp(s_ann(json_array_get(heads, 0), "ray.io/ft-enabled") ?: "", "true"));
    json_decref(heads);
    if (g_h.verbose)
        printf("  GCS FT: finalizer added: %s\n", ok ? "ok" : "FAILED");

    /* delete: pods go, the cleanup Job runs, the finalizer goes, the RayCluster is gone */
    int64_t t0 = loop_clock_ms();
    CHECK(objstore_delete(apiserver_store(g_h.api), harness_res(&g_h, "ray.io", "rayclusters"),
                          IT_NS, g_rc, NULL, NULL, NULL, NULL) == 0);
    harness_pump(&g_h, 200);
    rc = s_rc();
    CHECK(rc && jx_get(rc, "metadata.deletionTimestamp") != NULL);
    json_decref(rc);
    ft_watch_t fw = {0};
    ok = harness_wait(&g_h, s_rc_gone, &fw, 2 * IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    CHECK(fw.job_seen && fw.job_complete);
    CHECK(!fw.job_before_heads_gone && !fw.fin_while_running);
    CHECK(s_has_event("CreatedRedisCleanupJob", "Created Redis cleanup Job " IT_NS "/rc-ft-"));
    CHECK(!s_has_event("ForceDeletedStuckCluster", NULL));
    json_t *all = s_pods_ex(NULL, true);
    CHECK(json_array_size(all) == 0);
    json_decref(all);
    if (g_h.verbose)
        printf("  GCS FT: deleted via the cleanup Job in %lld ms (job %s): %s\n",
               (long long)(loop_clock_ms() - t0), fw.job_complete ? "Complete" : "not complete",
               ok ? "ok" : "FAILED");
    return failed;
}

/* A Job that can never be created: after ray.io/gcs-ft-deletion-timeout the finalizer is
 * force-removed with ForceDeletedStuckCluster. */
static int s_gcs_ft_stuck(k8s_client_t *admin, const k8s_res_t *rcres)
{
    int failed = 0;
    g_rc = "rc-ft-stuck";
    json_t *rc = s_sample(g_rc);
    CHECK(rc != NULL);
    jx_set_path(rc, "spec.gcsFaultToleranceOptions",
                json_pack("{s:s, s:s}", "redisAddress", "redis:6379", "externalStorageNamespace",
                          "ns-stuck"));
    jx_set_path(rc, "metadata.annotations", json_pack("{s:s}", ANN_FT_DELETION_TIMEOUT, "2"));
    CHECK(rc && harness_create(&g_h, admin, rcres, rc, NULL, 0) == 0);
    json_decref(rc);
    bool ok = harness_wait(&g_h, s_has_finalizer, NULL, IT_WAIT_MS);
    CHECK(ok);
    CHECK(apiserver_add_fault_spec(g_h.api, "create:jobs:1.0:500") == 0);
    int64_t t0 = loop_clock_ms();
    CHECK(objstore_delete(apiserver_store(g_h.api), harness_res(&g_h, "ray.io", "rayclusters"),
                          IT_NS, g_rc, NULL, NULL, NULL, NULL) == 0);
    ft_watch_t fw = {0};
    ok = harness_wait(&g_h, s_rc_gone, &fw, 2 * IT_WAIT_MS);
    apiserver_clear_faults(g_h.api);
    CHECK(ok);
    if (!ok)
        s_dump();
    CHECK(!fw.job_seen);
    CHECK(s_has_event("FailedToCreateRedisCleanupJob", NULL));
    CHECK(harness_wait(&g_h, s_event_seen, "ForceDeletedStuckCluster", IT_WAIT_MS));
    CHECK(s_has_event("ForceDeletedStuckCluster",
                      "Force-removed GCS FT finalizer after 2s due to Redis cleanup timeout; Redis "
                      "storage namespace \"ns-stuck\" may need manual cleanup"));
    if (g_h.verbose)
        printf("  GCS FT: stuck cleanup force-removed after %lld ms: %s\n",
               (long long)(loop_clock_ms() - t0), ok ? "ok" : "FAILED");
    return failed;
}

/* ---------- 3. multi-host ---------- */

/* `arg` replicas of 2 hosts: labels consistent, replica indexes 0..n-1. */
static bool s_multihost_ok(void *arg)
{
    int64_t reps = (int64_t)(intptr_t)arg;
    json_t *all = s_pods_ex("worker", true), *w = s_pods("worker");
    bool ok =
        json_array_size(all) == (size_t)(2 * reps) && json_array_size(w) == (size_t)(2 * reps);
    json_t *by = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(w, i, p)
    {
        const char *rn = harness_label(p, "ray.io/worker-group-replica-name");
        const char *ri = harness_label(p, "ray.io/worker-group-replica-index");
        const char *hi = harness_label(p, "ray.io/replica-host-index");
        if (!rn || !ri || !hi || strncmp(rn, "workergroup-", 12) != 0 || strlen(rn) != 17) {
            ok = false;
            continue;
        }
        json_t *r = json_object_get(by, rn);
        if (!r) {
            r = json_object();
            json_object_set_new(by, rn, r);
            json_object_set_new(r, "index", json_string(ri));
        } else if (strcmp(jx_str(r, "index", ""), ri) != 0) {
            ok = false;
        }
        if (json_object_get(r, hi))
            ok = false;
        json_object_set_new(r, hi, json_true());
    }
    ok = ok && json_object_size(by) == (size_t)reps;
    const char *k;
    json_t *v;
    json_object_foreach(by, k, v) ok = ok && json_object_get(v, "0") && json_object_get(v, "1");
    json_decref(by);
    json_decref(all);
    json_decref(w);
    return ok && s_count("head", true) == 1;
}

static void s_multihost_spec(json_t *rc)
{
    json_object_set_new(s_wg0(rc), "numOfHosts", json_integer(2));
    json_object_set_new(s_wg0(rc), "replicas", json_integer(2));
    json_object_set_new(s_wg0(rc), "maxReplicas", json_integer(10));
}

static int s_multihost(k8s_client_t *admin, const k8s_res_t *rcres)
{
    int failed = 0;
    g_rc = "rc-mh";
    json_t *rc = s_sample(g_rc);
    CHECK(rc != NULL);
    if (rc)
        s_multihost_spec(rc);
    CHECK(rc && harness_create(&g_h, admin, rcres, rc, NULL, 0) == 0);
    json_decref(rc);
    bool ok = harness_wait(&g_h, s_multihost_ok, (void *)(intptr_t)2, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *svc = s_get("", "services", "rc-mh-headless");
    CHECK(
        svc && !strcmp(jx_str(svc, "spec.clusterIP", ""), "None") &&
        jx_bool(svc, "spec.publishNotReadyAddresses", false) &&
        !strcmp(harness_label(svc, "ray.io/headless-worker-svc") ?: "", "rc-mh") &&
        !strcmp(json_string_value(json_object_get(jx_get(svc, "spec.selector"), "ray.io/node-type"))
                    ?: "",
                "worker"));
    json_decref(svc);
    json_t *w = s_pods("worker");
    json_t *idx = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(w, i, p) json_object_set_new(
        idx, harness_label(p, "ray.io/worker-group-replica-index") ?: "?", json_true());
    CHECK(json_object_get(idx, "0") && json_object_get(idx, "1") && json_object_size(idx) == 2);
    json_decref(idx);
    json_decref(w);
    if (g_h.verbose)
        printf("  multi-host: 2 replicas x 2 hosts, headless service: %s\n", ok ? "ok" : "FAILED");

    /* scale down to 1 replica: one whole replica goes */
    w = s_pods("worker");
    json_t *before = json_object();
    json_array_foreach(w, i, p) json_object_set_new(
        before, jx_str(p, "metadata.name", ""),
        json_string(harness_label(p, "ray.io/worker-group-replica-name") ?: ""));
    json_decref(w);
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)1) == 0);
    ok = harness_wait(&g_h, s_multihost_ok, (void *)(intptr_t)1, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    w = s_pods("worker");
    json_array_foreach(w, i, p)
    {
        /* the survivors are an old replica, both hosts */
        json_t *was = json_object_get(before, jx_str(p, "metadata.name", ""));
        CHECK(was && !strcmp(json_string_value(was),
                             harness_label(p, "ray.io/worker-group-replica-name") ?: ""));
    }
    json_decref(w);
    json_decref(before);
    CHECK(harness_wait(&g_h, s_event_seen, "DeletedWorkerPod", IT_WAIT_MS));
    /* scale up again: a new replica with a fresh name and the free index */
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)3) == 0);
    ok = harness_wait(&g_h, s_multihost_ok, (void *)(intptr_t)3, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    if (g_h.verbose)
        printf("  multi-host: scale down removes a whole replica, scale up to 3: %s\n",
               ok ? "ok" : "FAILED");
    return failed;
}

/* ---------- 4. autoscaler ServiceAccount check, Ingress update ---------- */

static void s_add_rc_annotation(json_t *rc, void *arg)
{
    jx_set_path(rc, "metadata.annotations", json_pack("{s:s}", "example.com/team", "blue"));
}

static bool s_ingress_has_team(void *arg)
{
    json_t *ing = s_get("networking.k8s.io", "ingresses", arg);
    bool ok = ing && !strcmp(s_ann(ing, "example.com/team") ?: "", "blue");
    json_decref(ing);
    return ok;
}

static int s_sa_and_ingress(k8s_client_t *admin, const k8s_res_t *rcres)
{
    int failed = 0;
    g_rc = "rc-sa";
    json_t *rc = s_sample(g_rc);
    CHECK(rc != NULL);
    jx_set_path(rc, "spec.enableInTreeAutoscaling", json_true());
    jx_set_path(rc, "spec.headGroupSpec.template.spec.serviceAccountName", json_string("my-sa"));
    jx_set_path(rc, "spec.headGroupSpec.enableIngress", json_true());
    CHECK(rc && harness_create(&g_h, admin, rcres, rc, NULL, 0) == 0);
    json_decref(rc);
    harness_pump(&g_h, 2500);
    CHECK(s_has_event("AutoscalerServiceAccountNotFound",
                      "However, ServiceAccount my-sa is not found"));
    CHECK(s_count(NULL, false) == 0);
    /* the user creates it: the cluster comes up, the Ingress is created */
    json_t *sa = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ServiceAccount",
                           "metadata", "name", "my-sa", "namespace", IT_NS);
    k8s_res_t sares = {.version = "v1", .resource = "serviceaccounts", .namespace_ = IT_NS};
    CHECK(sa && harness_create(&g_h, admin, &sares, sa, NULL, 0) == 0);
    json_decref(sa);
    bool ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *own = s_get("", "serviceaccounts", "rc-sa");
    CHECK(own == NULL); /* never created by the operator */
    json_decref(own);
    const char *ing = "rc-sa-head-ingress";
    json_t *io = s_get("networking.k8s.io", "ingresses", ing);
    CHECK(io != NULL);
    json_decref(io);
    CHECK(s_has_event("CreatedIngress", NULL));
    if (g_h.verbose)
        printf("  AutoscalerServiceAccountNotFound, then ready once the SA exists: %s\n",
               ok ? "ok" : "FAILED");
    /* an annotation on the RayCluster reaches the owned Ingress through an update */
    CHECK(s_rc_modify(s_add_rc_annotation, NULL) == 0);
    ok = harness_wait(&g_h, s_ingress_has_team, (void *)ing, IT_WAIT_MS);
    CHECK(ok);
    CHECK(harness_wait(&g_h, s_event_seen, "UpdatedIngress", IT_WAIT_MS));
    if (g_h.verbose)
        printf("  Ingress updated from the RayCluster's annotations: %s\n", ok ? "ok" : "FAILED");
    return failed;
}

/* ---------- the scenario ---------- */

static int s_scenario(void)
{
    int failed = harness_start(&g_h);
    if (!g_h.started)
        goto out;

    k8s_res_t rcres = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = IT_NS};
    failed += s_recreate(g_h.admin, &rcres);
    failed += s_gcs_ft(g_h.admin, &rcres);
    failed += s_gcs_ft_stuck(g_h.admin, &rcres);
    failed += s_multihost(g_h.admin, &rcres);
    failed += s_sa_and_ingress(g_h.admin, &rcres);
    reconcile_stats_t rs;
    reconcile_stats(g_h.rec, &rs);
    if (g_h.verbose)
        printf("  reconcile: passes %llu creates %llu deletes %llu updates %llu events %llu\n",
               (unsigned long long)rs.passes, (unsigned long long)rs.creates,
               (unsigned long long)rs.deletes, (unsigned long long)rs.updates,
               (unsigned long long)rs.events);

out:
    failed += harness_stop(&g_h);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = harness_init(
        &g_h, "scheduler2_it", verbose, verbose ? LOG_WARN : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 4, .wait_ms = IT_WAIT_MS, .qps = 1000, .concurrency = 4, .desired = true});
    if (g_h.api)
        failed += s_scenario();
    harness_end(&g_h);
    return SELFTEST_RESULT("scheduler2_it", true);
}
