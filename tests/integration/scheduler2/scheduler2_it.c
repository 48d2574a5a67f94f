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
#include "apiserver.h"
#include "audit.h"
#include "bus.h"
#include "err.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "objstore.h"
#include "reconcile.h"
#include "selftest.h"
#include "store.h"
#include "watcher.h"
#include "workq.h"
#include "yaml.h"

#include <curl/curl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define IT_WAIT_MS 30000 /* longest wait for one step */
#define IT_QUIET_MS 4000 /* how long nothing may change */
#define IT_SHARDS 256 /* shards */
#define IT_NS "default" /* namespace of the clusters */
#define IT_NEW_IMAGE "rayproject/ray:2.46.0-recreate" /* worker image after the change */
#define IT_NONE_IMAGE "rayproject/ray:2.46.0-none" /* worker image changed under None */

static loop_t *g_loop;
static void *g_zctx;
static bool g_verbose;
static char g_dir[64];
static apiserver_t *g_api;
static reconciler_t *g_rec;
static workq_t *g_q;
static store_t *g_wdb, *g_sdb; /* destroyed after the loop */
static const char *g_rc = ""; /* the RayCluster of the current scenario */

static void s_pump(int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end)
        loop_run_once(g_loop, 10);
}

/* ---------- kubesim access ---------- */

static objstore_res_t *s_res(const char *group, const char *resource)
{
    return objstore_find(apiserver_store(g_api), group, resource);
}

static json_t *s_get(const char *group, const char *resource, const char *name)
{
    json_t *o = NULL;
    objstore_res_t *r = s_res(group, resource);
    if (!r || objstore_get(apiserver_store(g_api), r, IT_NS, name, &o, NULL) != 0)
        return NULL;
    return o;
}

static const char *s_label(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.labels"), k));
}

static const char *s_ann(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.annotations"), k));
}

static bool s_pod_ready(const json_t *p)
{
    if (strcmp(jx_str(p, "status.phase", ""), "Running") != 0)
        return false;
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(p, "status.conditions"), i, c)
    {
        if (!strcmp(jx_str(c, "type", ""), "Ready"))
            return !strcmp(jx_str(c, "status", ""), "True");
    }
    return false;
}

/* The pods of g_rc with node type `type` (NULL: head and workers); terminating ones only when
 * `all`. A new array. */
static json_t *s_pods_ex(const char *type, bool all)
{
    json_t *out = json_array();
    objstore_list_t l = {0};
    if (objstore_list(apiserver_store(g_api), s_res("", "pods"),
                      &(objstore_list_opts_t){.ns = IT_NS}, &l, NULL) != 0)
        return out;
    size_t i;
    json_t *p;
    json_array_foreach(l.items, i, p)
    {
        const char *c = s_label(p, "ray.io/cluster"), *t = s_label(p, "ray.io/node-type");
        if (!c || strcmp(c, g_rc) || !t || (!all && jx_get(p, "metadata.deletionTimestamp")))
            continue;
        if (type ? strcmp(t, type) != 0 : (strcmp(t, "head") && strcmp(t, "worker")))
            continue;
        json_array_append(out, p);
    }
    objstore_list_free(&l);
    return out;
}

static json_t *s_pods(const char *type)
{
    return s_pods_ex(type, false);
}

static size_t s_count(const char *type, bool ready_only)
{
    json_t *a = s_pods(type);
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(a, i, p) if (!ready_only || s_pod_ready(p)) n++;
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
    json_t *rc = s_rc();
    if (!rc)
        return ERR_NOTFOUND;
    json_t *n = json_deep_copy(rc);
    json_decref(rc);
    fn(n, arg);
    objstore_status_t st = {0};
    int r = objstore_update(apiserver_store(g_api), s_res("ray.io", "rayclusters"), IT_NS, g_rc, &n,
                            &(objstore_update_opts_t){.precond = OBJSTORE_PRECOND_NONE}, NULL, NULL,
                            &st);
    json_decref(n);
    if (r != 0 && g_verbose)
        printf("  update failed: %s\n", st.message);
    return r;
}

typedef bool (*pred_fn)(void *arg);

static bool s_wait(pred_fn fn, void *arg, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end) {
        loop_run_once(g_loop, 10);
        if (fn(arg))
            return true;
    }
    return false;
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
    if (!g_verbose)
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
               jx_str(p, "status.phase", ""), s_pod_ready(p),
               jx_get(p, "metadata.deletionTimestamp") != NULL);
    json_decref(a);
    reconcile_stats_t rs;
    reconcile_stats(g_rec, &rs);
    printf("  reconcile: passes %llu creates %llu deletes %llu updates %llu errors %llu "
           "write_errors %llu\n",
           (unsigned long long)rs.passes, (unsigned long long)rs.creates,
           (unsigned long long)rs.deletes, (unsigned long long)rs.updates,
           (unsigned long long)rs.errors, (unsigned long long)rs.write_errors);
}

/* Kubernetes Events about g_rc with `reason` (and, when not NULL, a message containing `part`). */
static bool s_has_event(const char *reason, const char *part)
{
    objstore_list_t l = {0};
    bool found = false;
    if (objstore_list(apiserver_store(g_api), s_res("", "events"),
                      &(objstore_list_opts_t){.ns = IT_NS}, &l, NULL) != 0)
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(l.items, i, e)
    {
        if (!strcmp(jx_str(e, "reason", ""), reason) &&
            !strcmp(jx_str(e, "involvedObject.name", ""), g_rc) &&
            (!part || strstr(jx_str(e, "message", ""), part)))
            found = true;
    }
    objstore_list_free(&l);
    return found;
}

static bool s_event_seen(void *arg)
{
    return s_has_event(arg, NULL);
}

/* ---------- the scheduler side ---------- */

static int s_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    char key[RECONCILE_KEY_MAX];
    if (reconcile_note_change(g_rec, &msg->object_changed, key, sizeof(key)) == 0)
        workq_add(g_q, key);
    return 0;
}

typedef struct {
    int done, err;
} res_t;

static void s_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    res_t *x = arg;
    x->done = 1;
    x->err = r->err;
}

static int s_create(k8s_client_t *c, const k8s_res_t *res, const json_t *obj)
{
    res_t x = {0};
    int64_t id = k8s_create(c, res, obj, NULL, s_done, &x);
    if (id < 0)
        return (int)id;
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (!x.done && loop_clock_ms() < end)
        loop_run_once(g_loop, 10);
    return x.done ? x.err : ERR_TIMEOUT;
}

static json_t *s_load_yaml(const char *path)
{
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    int rc = yaml_load_file(path, 16u << 20, &docs, &err);
    if (rc != 0 && g_verbose)
        printf("  %s: %s\n", path, buf_str(&err));
    buf_free(&err);
    if (rc != 0)
        return NULL;
    json_t *d = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return d;
}

/* ray-cluster.sample.yaml renamed to `name`. */
static json_t *s_sample(const char *name)
{
    const char *shared = getenv("RF_SHARED_DIR");
    char spath[512];
    snprintf(spath, sizeof(spath), "%s/kuberay/samples/ray-cluster.sample.yaml",
             shared ? shared : RF_SHARED_DIR);
    json_t *rc = s_load_yaml(spath);
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
        if (!strcmp(s_label(p, "ray.io/node-type"), "worker") &&
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
    CHECK(rc && s_create(admin, rcres, rc) == 0);
    json_decref(rc);
    bool ok = s_wait(s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *heads = s_pods("head");
    const char *hash = s_ann(json_array_get(heads, 0), RECONCILE_ANN_RECREATE_HASH);
    CHECK(hash && strlen(hash) == RECONCILE_HASH_LEN);
    char old_hash[RECONCILE_HASH_LEN + 1] = "";
    snprintf(old_hash, sizeof(old_hash), "%s", hash ? hash : "");
    json_decref(heads);
    /* a replica change alone recreates nothing */
    json_t *old = s_pod_names();
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)2) == 0);
    CHECK(s_wait(s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS));
    json_t *now = s_pod_names();
    const char *k;
    json_t *v;
    json_object_foreach(old, k, v) CHECK(json_object_get(now, k) != NULL);
    json_decref(now);
    CHECK(!s_has_event("DeletedPod", NULL));
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)1) == 0);
    CHECK(s_wait(s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS));
    json_decref(old);

    /* the worker image changes: every pod is replaced */
    old = s_pod_names();
    CHECK(json_object_size(old) == 2);
    int64_t t0 = loop_clock_ms();
    CHECK(s_rc_modify(s_set_worker_image, IT_NEW_IMAGE) == 0);
    ok = s_wait(s_replaced, old, 2 * IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_decref(old);
    CHECK(s_has_event("DeletedPod", "Recreate"));
    heads = s_pods("head");
    hash = s_ann(json_array_get(heads, 0), RECONCILE_ANN_RECREATE_HASH);
    CHECK(hash && strcmp(hash, old_hash) != 0);
    json_decref(heads);
    if (g_verbose)
        printf("  Recreate: all pods replaced in %lld ms: %s\n", (long long)(loop_clock_ms() - t0),
               ok ? "ok" : "FAILED");

    /* None: a template change leaves the pods alone */
    CHECK(s_rc_modify(s_set_strategy, "None") == 0);
    s_pump(1000);
    old = s_pod_names();
    CHECK(s_rc_modify(s_set_worker_image, IT_NONE_IMAGE) == 0);
    s_pump(IT_QUIET_MS);
    now = s_pod_names();
    CHECK(json_equal(old, now));
    json_t *w = s_pods("worker");
    CHECK(json_array_size(w) == 1 && !strcmp(s_worker_image(json_array_get(w, 0)), IT_NEW_IMAGE));
    json_decref(w);
    if (g_verbose)
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
        if (!strcmp(json_string_value(f) ? json_string_value(f) : "", RECONCILE_FINALIZER_REDIS))
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
    CHECK(rc && s_create(admin, rcres, rc) == 0);
    json_decref(rc);
    bool ok = s_wait(s_has_finalizer, NULL, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *heads = s_pods("head");
    CHECK(!strcmp(s_ann(json_array_get(heads, 0), "ray.io/ft-enabled") ?: "", "true"));
    json_decref(heads);
    if (g_verbose)
        printf("  GCS FT: finalizer added: %s\n", ok ? "ok" : "FAILED");

    /* delete: pods go, the cleanup Job runs, the finalizer goes, the RayCluster is gone */
    int64_t t0 = loop_clock_ms();
    CHECK(objstore_delete(apiserver_store(g_api), s_res("ray.io", "rayclusters"), IT_NS, g_rc, NULL,
                          NULL, NULL, NULL) == 0);
    s_pump(200);
    rc = s_rc();
    CHECK(rc && jx_get(rc, "metadata.deletionTimestamp") != NULL);
    json_decref(rc);
    ft_watch_t fw = {0};
    ok = s_wait(s_rc_gone, &fw, 2 * IT_WAIT_MS);
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
    if (g_verbose)
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
    jx_set_path(rc, "metadata.annotations", json_pack("{s:s}", RECONCILE_ANN_FT_TIMEOUT, "2"));
    CHECK(rc && s_create(admin, rcres, rc) == 0);
    json_decref(rc);
    bool ok = s_wait(s_has_finalizer, NULL, IT_WAIT_MS);
    CHECK(ok);
    CHECK(apiserver_add_fault_spec(g_api, "create:jobs:1.0:500") == 0);
    int64_t t0 = loop_clock_ms();
    CHECK(objstore_delete(apiserver_store(g_api), s_res("ray.io", "rayclusters"), IT_NS, g_rc, NULL,
                          NULL, NULL, NULL) == 0);
    ft_watch_t fw = {0};
    ok = s_wait(s_rc_gone, &fw, 2 * IT_WAIT_MS);
    apiserver_clear_faults(g_api);
    CHECK(ok);
    if (!ok)
        s_dump();
    CHECK(!fw.job_seen);
    CHECK(s_has_event("FailedToCreateRedisCleanupJob", NULL));
    CHECK(s_wait(s_event_seen, "ForceDeletedStuckCluster", IT_WAIT_MS));
    CHECK(s_has_event("ForceDeletedStuckCluster",
                      "Force-removed GCS FT finalizer after 2s due to Redis cleanup timeout; Redis "
                      "storage namespace \"ns-stuck\" may need manual cleanup"));
    if (g_verbose)
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
        const char *rn = s_label(p, "ray.io/worker-group-replica-name");
        const char *ri = s_label(p, "ray.io/worker-group-replica-index");
        const char *hi = s_label(p, "ray.io/replica-host-index");
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
    CHECK(rc && s_create(admin, rcres, rc) == 0);
    json_decref(rc);
    bool ok = s_wait(s_multihost_ok, (void *)(intptr_t)2, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    json_t *svc = s_get("", "services", "rc-mh-headless");
    CHECK(
        svc && !strcmp(jx_str(svc, "spec.clusterIP", ""), "None") &&
        jx_bool(svc, "spec.publishNotReadyAddresses", false) &&
        !strcmp(s_label(svc, "ray.io/headless-worker-svc") ?: "", "rc-mh") &&
        !strcmp(json_string_value(json_object_get(jx_get(svc, "spec.selector"), "ray.io/node-type"))
                    ?: "",
                "worker"));
    json_decref(svc);
    json_t *w = s_pods("worker");
    json_t *idx = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(w, i, p) json_object_set_new(
        idx, s_label(p, "ray.io/worker-group-replica-index") ?: "?", json_true());
    CHECK(json_object_get(idx, "0") && json_object_get(idx, "1") && json_object_size(idx) == 2);
    json_decref(idx);
    json_decref(w);
    if (g_verbose)
        printf("  multi-host: 2 replicas x 2 hosts, headless service: %s\n", ok ? "ok" : "FAILED");

    /* scale down to 1 replica: one whole replica goes */
    w = s_pods("worker");
    json_t *before = json_object();
    json_array_foreach(w, i, p)
        json_object_set_new(before, jx_str(p, "metadata.name", ""),
                            json_string(s_label(p, "ray.io/worker-group-replica-name") ?: ""));
    json_decref(w);
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)1) == 0);
    ok = s_wait(s_multihost_ok, (void *)(intptr_t)1, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    w = s_pods("worker");
    json_array_foreach(w, i, p)
    {
        /* the survivors are an old replica, both hosts */
        json_t *was = json_object_get(before, jx_str(p, "metadata.name", ""));
        CHECK(was && !strcmp(json_string_value(was),
                             s_label(p, "ray.io/worker-group-replica-name") ?: ""));
    }
    json_decref(w);
    json_decref(before);
    CHECK(s_wait(s_event_seen, "DeletedWorkerPod", IT_WAIT_MS));
    /* scale up again: a new replica with a fresh name and the free index */
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)3) == 0);
    ok = s_wait(s_multihost_ok, (void *)(intptr_t)3, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    if (g_verbose)
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
    CHECK(rc && s_create(admin, rcres, rc) == 0);
    json_decref(rc);
    s_pump(2500);
    CHECK(s_has_event("AutoscalerServiceAccountNotFound",
                      "However, ServiceAccount my-sa is not found"));
    CHECK(s_count(NULL, false) == 0);
    /* the user creates it: the cluster comes up, the Ingress is created */
    json_t *sa = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ServiceAccount",
                           "metadata", "name", "my-sa", "namespace", IT_NS);
    k8s_res_t sares = {.version = "v1", .resource = "serviceaccounts", .namespace_ = IT_NS};
    CHECK(sa && s_create(admin, &sares, sa) == 0);
    json_decref(sa);
    bool ok = s_wait(s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS);
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
    if (g_verbose)
        printf("  AutoscalerServiceAccountNotFound, then ready once the SA exists: %s\n",
               ok ? "ok" : "FAILED");
    /* an annotation on the RayCluster reaches the owned Ingress through an update */
    CHECK(s_rc_modify(s_add_rc_annotation, NULL) == 0);
    ok = s_wait(s_ingress_has_team, (void *)ing, IT_WAIT_MS);
    CHECK(ok);
    CHECK(s_wait(s_event_seen, "UpdatedIngress", IT_WAIT_MS));
    if (g_verbose)
        printf("  Ingress updated from the RayCluster's annotations: %s\n", ok ? "ok" : "FAILED");
    return failed;
}

/* ---------- the scenario ---------- */

static int s_scenario(const char *kcpath)
{
    int failed = 0;
    char dbpath[256], schedpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/observed.db", g_dir);
    snprintf(schedpath, sizeof(schedpath), "%s/scheduler.db", g_dir);
    buf_t err;
    buf_init(&err, 4096);
    kubeconfig_t *kc = NULL;
    CHECK(kubeconfig_load(kcpath, NULL, &kc, &err) == 0);
    k8s_client_t *admin = kc ? k8s_client_new(g_loop, kc, NULL) : NULL;
    k8s_client_t *client =
        kc ? k8s_client_new(g_loop, kc, &(k8s_config_t){.qps = 1000, .burst = 1000}) : NULL;
    CHECK(admin && client);
    if (!admin || !client)
        goto out0;
    const char *crds[] = {"ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml",
                          "ray.io_rayservices.yaml", "ray.io_raycronjobs.yaml"};
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/deploy/crds/%s", RF_SOURCE_DIR, crds[i]);
        json_t *crd = s_load_yaml(path);
        CHECK(crd != NULL);
        k8s_res_t r = {.group = "apiextensions.k8s.io",
                       .version = "v1",
                       .resource = "customresourcedefinitions"};
        CHECK(crd && s_create(admin, &r, crd) == 0);
        json_decref(crd);
    }
    s_pump(100);

    int e = 0;
    store_t *wdb = store_open(dbpath, STORE_READWRITE, &e);
    store_t *obs = store_open(dbpath, STORE_READONLY, &e);
    store_t *sdb = store_open(schedpath, STORE_READWRITE, &e);
    CHECK(wdb && obs && sdb);
    if (sdb)
        store_attach_loop(sdb, g_loop);
    bus_pub_t *pub =
        bus_pub_new(g_loop, g_zctx,
                    &(bus_options_t){
                        .source = "watcher/it", .endpoint = "@inproc://sched2-it", .hwm = 1000000});
    bus_sub_t *sub = bus_sub_new(g_loop, g_zctx,
                                 &(bus_options_t){.endpoint = "inproc://sched2-it", .hwm = 1000000},
                                 s_on_msg, NULL, NULL);
    CHECK(pub && sub);
    for (uint32_t s = 0; sub && s < IT_SHARDS; s++)
        bus_sub_subscribe(sub, s);
    s_pump(100);
    watcher_cluster_t cl = {.name = "c1", .kubeconfig = kcpath};
    watcher_config_t wc = {.clusters = &cl,
                           .nclusters = 1,
                           .shards = IT_SHARDS,
                           .store = wdb,
                           .pub = pub,
                           .backoff_base_ms = 20,
                           .backoff_max_ms = 200,
                           .qps = 1000,
                           .burst = 1000};
    watcher_t *w = wdb && pub ? watcher_new(g_loop, &wc, &err) : NULL;
    CHECK(w != NULL);
    audit_t *aud =
        sdb ? audit_new(sdb, &(audit_actor_t){.service = "scheduler", .replica = "scheduler/0"})
            : NULL;
    g_rec = obs && client ? reconcile_new(g_loop, &(reconcile_config_t){.cluster = "c1",
                                                                        .observed = obs,
                                                                        .client = client,
                                                                        .audit = aud,
                                                                        .desired = sdb,
                                                                        .events = true})
                          : NULL;
    CHECK(g_rec != NULL);
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = 4;
    g_q = g_rec ? workq_new(g_loop, &qo, reconcile_fn, g_rec) : NULL;
    CHECK(g_q != NULL);
    if (!w || !g_q || !aud)
        goto out;
    CHECK(watcher_start(w) == 0);
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (!watcher_ready(w) && loop_clock_ms() < end)
        loop_run_once(g_loop, 10);
    CHECK(watcher_ready(w));

    k8s_res_t rcres = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = IT_NS};
    failed += s_recreate(admin, &rcres);
    failed += s_gcs_ft(admin, &rcres);
    failed += s_gcs_ft_stuck(admin, &rcres);
    failed += s_multihost(admin, &rcres);
    failed += s_sa_and_ingress(admin, &rcres);
    reconcile_stats_t rs;
    reconcile_stats(g_rec, &rs);
    if (g_verbose)
        printf("  reconcile: passes %llu creates %llu deletes %llu updates %llu events %llu\n",
               (unsigned long long)rs.passes, (unsigned long long)rs.creates,
               (unsigned long long)rs.deletes, (unsigned long long)rs.updates,
               (unsigned long long)rs.events);

out:
    workq_destroy(&g_q);
    k8s_client_destroy(&client);
    reconcile_destroy(&g_rec);
    audit_destroy(&aud);
    watcher_destroy(&w);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    store_destroy(&obs);
    g_wdb = wdb;
    g_sdb = sdb;
out0:
    k8s_client_destroy(&admin);
    k8s_client_destroy(&client);
    kubeconfig_destroy(&kc);
    buf_free(&err);
    return failed;
}

int main(int argc, char **argv)
{
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = 0;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("scheduler2_it", g_verbose ? LOG_WARN : LOG_ERROR, 2);
    g_loop = loop_new();
    g_zctx = zmq_ctx_new();
    snprintf(g_dir, sizeof(g_dir), "/tmp/rf-sched2-it-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 4;
    ko.create_ms = 100;
    ko.ready_ms = 300;
    ko.terminate_ms = 200;
    g_api =
        apiserver_new(g_loop, &(apiserver_opts_t){.simulate = true, .nodes = 4, .kubelet = &ko});
    CHECK(g_api != NULL);
    if (g_api) {
        char text[1024], path[256];
        snprintf(text, sizeof(text),
                 "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
                 "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
                 "contexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
                 "users: [{name: u, user: {}}]\n",
                 apiserver_port(g_api));
        snprintf(path, sizeof(path), "%s/config", g_dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(text, f);
            fclose(f);
        }
        failed += s_scenario(path);
        apiserver_destroy(&g_api);
    }
    zmq_ctx_term(g_zctx);
    loop_destroy(&g_loop);
    store_destroy(&g_wdb);
    store_destroy(&g_sdb);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        printf("cleanup of %s failed\n", g_dir);
    curl_global_cleanup();
    return SELFTEST_RESULT("scheduler2_it", true);
}
