/*
 * serveup_it: the RayService controller end to end, in-process on one loop: kubesim (simulated
 * kubelet and Ray heads with their Serve), rayfleet's CRDs, the watcher logic, the scheduler
 * (RayClusters) and serve-upgrade (RayServices), wired by an inproc:// bus (harness.h with
 * HARNESS_SERVEUP).
 *
 * Scenarios, each a RayService built from ../shared/kuberay/samples/ray-service.sample.yaml with
 * its name and fields changed: deploy      fresh deploy to Ready: one RayCluster (KubeRay's labels,
 * annotations, owner), the head and serve Services selecting it, the head pod labelled
 * ray.io/serve=true, numServeEndpoints 1, the finalizer, Events, audit rows of the pushes. config
 * a serveConfigV2-only change is pushed in place: no second RayCluster. restart     the Ray head
 * restarts (Serve state lost): the config is pushed again, no upgrade. append      a worker group
 * appended: the active RayCluster is updated in place. upgrade     an image change: a pending
 * RayCluster, the Services switched to it once its Serve applications run, the old RayCluster
 * deleted after rayClusterDeletionDelaySeconds (and not before). deployfail  an image change whose
 * new config fails to deploy: the pending cluster never gets the traffic, UpgradeInProgress stays
 * True. traffic     requests through the serve Service during an upgrade: 0 errors, the answering
 *               cluster changes exactly once.
 *   suspend     suspend: every RayCluster and Service deleted, Suspended; resume: Ready again.
 *   invalid     a too long name and a head Service name: KubeRay's messages as Warning Events and
 *               Ready=False/ValidationFailed, nothing created.
 *   delete      the RayService deleted: its RayClusters go, then the finalizer, then it.
 *   incremental NewClusterWithIncrementalUpgrade (../shared/kuberay/samples/ray-service.
 *               incremental-upgrade.yaml with 25% steps every second): the Gateway, HTTPRoute and
 *               per-cluster serve Service; an image change moves the route's weight in steps to
 *               the new cluster while requests through kubesim's Gateway see 0 errors and answers
 *               from both clusters; then promotion, capacities 100/100, the old cluster deleted.
 *   deadline    the controller restarted (nothing in memory) between the switch and the end of
 *               rayClusterDeletionDelaySeconds: the old cluster still goes at the first deadline
 *               (kept in leases.db), not a full delay after the restart.
 *   proxy       one pod's Serve proxy fails (kubesim's serve-proxy control): a worker goes
 *               NotReady (its /-/healthz readiness probe) and leaves the serve endpoints, then
 *               comes back; the head gets ray.io/serve=false from the controller's check, then
 *               true again; no upgrade.
 *   rollback    the same, the image reverted once a quarter of the traffic is on the new
 *               cluster: RollbackInProgress, the traffic back on the active cluster, then
 *               RollbackComplete, the pending cluster deleted, 0 errors, no new upgrade.
 *
 * Usage: serveup_it [-v] [scenario...]. Exit 0 when every check passes.
 */
#define HARNESS_SERVEUP
#include "harness.h"

#include "conds.h"
#include "rayhead.h"
#include "raysim.h"
#include "rayservice.h"
#include "rftime.h"
#include "rsstate.h"

#include <inttypes.h>

#define IT_WAIT_MS 60000 /* longest wait for one step */
#define IT_NS "default"

static harness_t g_h;

/* ---------- helpers ---------- */

/* A Service's selector value, "" when none. */
static const char *s_sel(const json_t *svc, const char *key)
{
    const char *v = json_string_value(json_object_get(jx_get(svc, "spec.selector"), key));
    return v ? v : "";
}

/* An annotation, "" when none. */
static const char *s_ann(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(jx_get(o, "metadata.annotations"), key));
    return v ? v : "";
}

/* The sample RayService renamed `name`, with a short deletion delay. */
static json_t *s_rayservice(const char *name)
{
    json_t *rs = harness_load_sample(&g_h, "ray-service.sample.yaml");
    if (!rs)
        return NULL;
    json_object_set_new(json_object_get(rs, "metadata"), "name", json_string(name));
    json_object_set_new(json_object_get(rs, "metadata"), "namespace", json_string(IT_NS));
    json_object_set_new(json_object_get(rs, "spec"), "rayClusterDeletionDelaySeconds",
                        json_integer(3));
    return rs;
}

static int s_create(const json_t *obj)
{
    char msg[HARNESS_MSG_MAX];
    k8s_res_t r = {
        .group = "ray.io", .version = "v1", .resource = "rayservices", .namespace_ = IT_NS};
    int rc = harness_create(&g_h, g_h.admin, &r, obj, msg, sizeof(msg));
    if (rc != 0)
        printf("  create: %s (%s)\n", err_str(rc), msg);
    return rc;
}

static json_t *s_rs(const char *name)
{
    return harness_get(&g_h, "ray.io", "rayservices", IT_NS, name);
}

/* Changes the RayService's spec with fn (read-modify-write on kubesim's store). */
typedef void (*s_mod_fn)(json_t *spec, void *arg);

typedef struct {
    bool done;
    int err;
} s_wait_t;

static void s_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    s_wait_t *w = arg;
    w->err = r->err;
    w->done = true;
}

static bool s_is_done(void *arg)
{
    return ((s_wait_t *)arg)->done;
}

static int s_modify(const char *name, s_mod_fn fn, void *arg)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        /* kubesim's stored object is shared: change a copy */
        json_t *got = s_rs(name);
        json_t *rs = got ? json_deep_copy(got) : NULL;
        json_decref(got);
        if (!rs)
            return ERR_NOTFOUND;
        fn(json_object_get(rs, "spec"), arg);
        json_object_del(rs, "status");
        s_wait_t w = {0};
        k8s_res_t r = {.group = "ray.io",
                       .version = "v1",
                       .resource = "rayservices",
                       .namespace_ = IT_NS,
                       .name = name};
        int64_t id = k8s_update(g_h.admin, &r, rs, NULL, s_done, &w);
        json_decref(rs);
        if (id < 0)
            return (int)id;
        harness_wait(&g_h, s_is_done, &w, IT_WAIT_MS);
        if (w.err != ERR_CONFLICT)
            return w.err;
    }
    return ERR_CONFLICT;
}

static int s_delete(const char *name)
{
    s_wait_t w = {0};
    k8s_res_t r = {.group = "ray.io",
                   .version = "v1",
                   .resource = "rayservices",
                   .namespace_ = IT_NS,
                   .name = name};
    int64_t id = k8s_delete(g_h.admin, &r, NULL, s_done, &w);
    if (id < 0)
        return (int)id;
    harness_wait(&g_h, s_is_done, &w, IT_WAIT_MS);
    return w.err;
}

typedef struct {
    const char *name;
    const char *field; /* status path */
    const char *value; /* wanted value; NULL: not empty */
} s_field_t;

static bool s_has_field(void *arg)
{
    s_field_t *f = arg;
    json_t *rs = s_rs(f->name);
    const char *v = jx_str(rs, f->field, "");
    bool ok = f->value ? strcmp(v, f->value) == 0 : *v != '\0';
    json_decref(rs);
    return ok;
}

static bool s_wait_field(const char *name, const char *field, const char *value, int64_t ms)
{
    s_field_t f = {name, field, value};
    return harness_wait(&g_h, s_has_field, &f, ms);
}

static bool s_ready(void *arg)
{
    json_t *rs = s_rs(arg);
    bool ok = conds_true(jx_get(rs, "status.conditions"), RS_COND_READY) &&
              !*jx_str(rs, "status.pendingServiceStatus.rayClusterName", "");
    json_decref(rs);
    return ok;
}

/* The RayClusters labelled as originated from RayService `name`. */
static json_t *s_clusters(const char *name)
{
    json_t *all = harness_list(&g_h, "ray.io", "rayclusters", IT_NS);
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c)
    {
        if (strcmp(harness_label(c, LABEL_ORIGINATED_FROM_CR_NAME), name) == 0 &&
            strcmp(harness_label(c, LABEL_ORIGINATED_FROM_CRD), "RayService") == 0)
            json_array_append(out, c);
    }
    json_decref(all);
    return out;
}

static size_t s_nclusters(const char *name)
{
    json_t *c = s_clusters(name);
    size_t n = json_array_size(c);
    json_decref(c);
    return n;
}

static const char *s_active(const json_t *rs)
{
    return jx_str(rs, "status.activeServiceStatus.rayClusterName", "");
}

/* Audit rows of serve-upgrade with this verb about RayCluster `cluster` (NULL: any). */
static int64_t s_audit(const char *verb, const char *cluster)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE verb = '%s'%s%s%s", verb,
             cluster ? " AND target_name = '" : "", cluster ? cluster : "", cluster ? "'" : "");
    store_flush(g_h.sudb);
    store_query_t *q = store_query_open(store_path(g_h.sudb), NULL, 0, NULL);
    int64_t n = -1;
    sqlite3_stmt *st = NULL;
    buf_t why;
    buf_init(&why, 256);
    if (q && store_query_prepare(q, sql, &st, &why) == 0 && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    store_query_close(&q);
    buf_free(&why);
    return n;
}

/* Deploys `name` (from s_rayservice, changed by fn when given) and waits until it is Ready. */
static int s_deploy(const char *name, s_mod_fn fn, void *arg)
{
    int failed = 0;
    json_t *rs = s_rayservice(name);
    CHECK(rs != NULL);
    if (!rs)
        return failed;
    if (fn)
        fn(json_object_get(rs, "spec"), arg);
    CHECK(s_create(rs) == 0);
    json_decref(rs);
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    return failed;
}

/* ---------- scenarios ---------- */

static int s_sc_deploy(void)
{
    int failed = 0;
    const char *name = "rs-deploy";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    const char *ac = s_active(rs);
    CHECK(*ac && strncmp(ac, "rs-deploy-", 10) == 0);
    CHECK(strcmp(jx_str(rs, "status.serviceStatus", ""), "Running") == 0);
    /* every ready pod of the cluster labelled ray.io/serve=true: the head and the worker */
    CHECK(jx_int(rs, "status.numServeEndpoints", 0) == 2);
    CHECK(jx_array_has_string(jx_get(rs, "metadata.finalizers"), RAYSERVICE_FINALIZER));
    CHECK(strcmp(jx_str(conds_find(jx_get(rs, "status.conditions"), RS_COND_UPGRADE, NULL),
                        "reason", ""),
                 RS_R_NO_PENDING) == 0);
    /* the application statuses, as KubeRay shows them */
    json_t *apps = jx_get(rs, "status.activeServiceStatus.applicationStatuses");
    CHECK(json_object_size(apps) == 2);
    const char *k;
    json_t *a;
    json_object_foreach(apps, k, a) CHECK(strcmp(jx_str(a, "status", ""), "RUNNING") == 0);
    /* the cluster: KubeRay's labels, annotations and owner */
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", IT_NS, ac);
    CHECK(rc != NULL);
    CHECK(strcmp(harness_label(rc, LABEL_ORIGINATED_FROM_CRD), "RayService") == 0);
    json_t *ann = jx_get(rc, "metadata.annotations");
    CHECK(json_string_value(json_object_get(ann, ANN_HASH_WITHOUT_REPLICAS)) != NULL);
    CHECK(strcmp(s_ann(rc, ANN_NUM_WORKER_GROUPS), "1") == 0);
    CHECK(*s_ann(rc, ANN_KUBERAY_VERSION));
    json_t *ref = json_array_get(jx_get(rc, "metadata.ownerReferences"), 0);
    CHECK(strcmp(jx_str(ref, "kind", ""), "RayService") == 0 && jx_bool(ref, "controller", false));
    /* the Services */
    json_t *hs = harness_get(&g_h, "", "services", IT_NS, "rs-deploy-head-svc");
    json_t *ss = harness_get(&g_h, "", "services", IT_NS, "rs-deploy-serve-svc");
    CHECK(hs && ss);
    CHECK(strcmp(s_sel(hs, LABEL_CLUSTER), ac) == 0);
    CHECK(strcmp(s_sel(ss, LABEL_CLUSTER), ac) == 0);
    CHECK(strcmp(s_sel(ss, LABEL_SERVE), "true") == 0);
    CHECK(strcmp(harness_label(ss, LABEL_ORIGINATED_FROM_CR_NAME), name) == 0);
    /* the head pod's serve label */
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    size_t i;
    json_t *p;
    int heads = 0;
    json_array_foreach(pods, i, p)
    {
        if (strcmp(harness_label(p, LABEL_CLUSTER), ac) == 0 &&
            strcmp(harness_label(p, LABEL_NODE_TYPE), "head") == 0) {
            heads++;
            CHECK(strcmp(harness_label(p, LABEL_SERVE), "true") == 0);
        }
    }
    CHECK(heads == 1);
    /* Events and audit */
    CHECK(harness_has_event(&g_h, IT_NS, name, "CreatedRayCluster", NULL));
    CHECK(harness_has_event(&g_h, IT_NS, name, "UpdatedServeApplications", NULL));
    CHECK(s_audit("serve-push", ac) >= 1);
    CHECK(s_nclusters(name) == 1);
    json_decref(pods);
    json_decref(hs);
    json_decref(ss);
    json_decref(rc);
    json_decref(rs);
    return failed;
}

static void s_set_config(json_t *spec, void *arg)
{
    json_object_set_new(spec, "serveConfigV2", json_string(arg));
}

static const char *s_config2 = "applications:\n"
                               "  - name: math_app\n"
                               "    import_path: conditional_dag.serve_dag\n"
                               "    route_prefix: /calc\n"
                               "    runtime_env:\n"
                               "      working_dir: \"https://github.com/ray-project/test_dag/"
                               "archive/78b4a5da38796123d9f9ffff59bab2792a043e95.zip\"\n";

typedef struct {
    const char *cluster;
    int64_t min;
} s_audit_wait_t;

static bool s_pushed_more(void *arg)
{
    s_audit_wait_t *w = arg;
    return s_audit("serve-push", w->cluster) > w->min;
}

static int s_sc_config(void)
{
    int failed = 0;
    const char *name = "rs-config";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char ac[128];
    snprintf(ac, sizeof(ac), "%s", s_active(rs));
    json_decref(rs);
    int64_t pushes = s_audit("serve-push", ac);
    CHECK(s_modify(name, s_set_config, (void *)s_config2) == 0);
    s_audit_wait_t w = {ac, pushes};
    CHECK(harness_wait(&g_h, s_pushed_more, &w, IT_WAIT_MS));
    /* the new config runs on the same cluster: one application now */
    s_field_t f = {name, "status.activeServiceStatus.applicationStatuses.math_app.status",
                   "RUNNING"};
    CHECK(harness_wait(&g_h, s_has_field, &f, IT_WAIT_MS));
    harness_pump(&g_h, 1500);
    rs = s_rs(name);
    CHECK(strcmp(s_active(rs), ac) == 0);
    CHECK(!*jx_str(rs, "status.pendingServiceStatus.rayClusterName", ""));
    CHECK(s_nclusters(name) == 1);
    json_decref(rs);
    return failed;
}

static int s_sc_restart(void)
{
    int failed = 0;
    const char *name = "rs-restart";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char ac[128];
    snprintf(ac, sizeof(ac), "%s", s_active(rs));
    json_decref(rs);
    /* the head pod's Ray restarts: Serve forgets its applications */
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    const char *head = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        if (strcmp(harness_label(p, LABEL_CLUSTER), ac) == 0 &&
            strcmp(harness_label(p, LABEL_NODE_TYPE), "head") == 0)
            head = jx_str(p, "metadata.name", NULL);
    }
    rayhead_t *h = head ? raysim_head(apiserver_raysim(g_h.api), IT_NS, head) : NULL;
    CHECK(h != NULL);
    int64_t pushes = s_audit("serve-push", ac);
    if (h)
        rayhead_restart(h, rftime_now_ms());
    s_audit_wait_t w = {ac, pushes};
    CHECK(harness_wait(&g_h, s_pushed_more, &w, IT_WAIT_MS));
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    rs = s_rs(name);
    CHECK(strcmp(s_active(rs), ac) == 0);
    CHECK(s_nclusters(name) == 1);
    json_decref(rs);
    json_decref(pods);
    return failed;
}

static void s_append_group(json_t *spec, void *arg)
{
    (void)arg;
    json_t *wgs = jx_get(spec, "rayClusterConfig.workerGroupSpecs");
    json_t *g = json_deep_copy(json_array_get(wgs, 0));
    json_object_set_new(g, "groupName", json_string("extra"));
    json_object_set_new(g, "replicas", json_integer(1));
    json_object_set_new(g, "minReplicas", json_integer(1));
    json_array_append_new(wgs, g);
}

typedef struct {
    const char *cluster;
    size_t groups;
} s_groups_t;

static bool s_has_groups(void *arg)
{
    s_groups_t *g = arg;
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", IT_NS, g->cluster);
    bool ok = json_array_size(jx_get(rc, "spec.workerGroupSpecs")) == g->groups &&
              strcmp(s_ann(rc, ANN_NUM_WORKER_GROUPS), "2") == 0;
    json_decref(rc);
    return ok;
}

static int s_sc_append(void)
{
    int failed = 0;
    const char *name = "rs-append";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char ac[128];
    snprintf(ac, sizeof(ac), "%s", s_active(rs));
    json_decref(rs);
    CHECK(s_modify(name, s_append_group, NULL) == 0);
    s_groups_t g = {ac, 2};
    CHECK(harness_wait(&g_h, s_has_groups, &g, IT_WAIT_MS));
    harness_pump(&g_h, 1500);
    rs = s_rs(name);
    CHECK(strcmp(s_active(rs), ac) == 0);
    CHECK(!*jx_str(rs, "status.pendingServiceStatus.rayClusterName", ""));
    CHECK(s_nclusters(name) == 1);
    json_decref(rs);
    return failed;
}

static void s_set_image(json_t *spec, void *arg)
{
    json_t *cfg = json_object_get(spec, "rayClusterConfig");
    json_t *c = json_array_get(jx_get(cfg, "headGroupSpec.template.spec.containers"), 0);
    json_object_set_new(c, "image", json_string(arg));
}

typedef struct {
    const char *name;
    const char *from; /* the old active cluster */
} s_switch_t;

static bool s_switched(void *arg)
{
    s_switch_t *s = arg;
    json_t *rs = s_rs(s->name);
    const char *ac = s_active(rs);
    bool ok = *ac && strcmp(ac, s->from) != 0;
    json_decref(rs);
    return ok;
}

static bool s_gone(void *arg)
{
    json_t *rc = harness_get(&g_h, "ray.io", "rayclusters", IT_NS, arg);
    json_decref(rc);
    return rc == NULL;
}

static int s_sc_upgrade(void)
{
    int failed = 0;
    const char *name = "rs-upgrade";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char old[128];
    snprintf(old, sizeof(old), "%s", s_active(rs));
    json_decref(rs);
    CHECK(s_modify(name, s_set_image, "rayproject/ray:2.46.0-py311") == 0);
    CHECK(s_wait_field(name, "status.pendingServiceStatus.rayClusterName", NULL, IT_WAIT_MS));
    rs = s_rs(name);
    CHECK(conds_true(jx_get(rs, "status.conditions"), RS_COND_UPGRADE));
    json_decref(rs);
    s_switch_t sw = {name, old};
    CHECK(harness_wait(&g_h, s_switched, &sw, IT_WAIT_MS));
    int64_t switched_at = loop_clock_ms();
    rs = s_rs(name);
    char now[128];
    snprintf(now, sizeof(now), "%s", s_active(rs));
    json_decref(rs);
    json_t *ss = harness_get(&g_h, "", "services", IT_NS, "rs-upgrade-serve-svc");
    CHECK(strcmp(s_sel(ss, LABEL_CLUSTER), now) == 0);
    json_decref(ss);
    /* the old cluster lives for the delay (3 s), then goes */
    harness_pump(&g_h, 1000);
    CHECK(!s_gone(old));
    CHECK(harness_wait(&g_h, s_gone, old, IT_WAIT_MS));
    CHECK(loop_clock_ms() - switched_at >= 2500);
    CHECK(s_audit("schedule-delete", old) >= 1);
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    rs = s_rs(name);
    CHECK(!conds_true(jx_get(rs, "status.conditions"), RS_COND_UPGRADE));
    json_decref(rs);
    CHECK(s_nclusters(name) == 1);
    return failed;
}

static void s_fail_upgrade(json_t *spec, void *arg)
{
    (void)arg;
    s_set_image(spec, "rayproject/ray:2.46.0-py311");
    json_object_set_new(spec, "serveConfigV2",
                        json_string("applications:\n  - name: broken\n    import_path: "
                                    "fake_missing.app\n    route_prefix: /\n"));
}

static int s_sc_deployfail(void)
{
    int failed = 0;
    const char *name = "rs-deployfail";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char old[128];
    snprintf(old, sizeof(old), "%s", s_active(rs));
    json_decref(rs);
    CHECK(s_modify(name, s_fail_upgrade, NULL) == 0);
    s_field_t f = {name, "status.pendingServiceStatus.applicationStatuses.broken.status",
                   "DEPLOY_FAILED"};
    CHECK(harness_wait(&g_h, s_has_field, &f, IT_WAIT_MS));
    harness_pump(&g_h, 3000);
    rs = s_rs(name);
    CHECK(strcmp(s_active(rs), old) == 0);
    CHECK(conds_true(jx_get(rs, "status.conditions"), RS_COND_UPGRADE));
    CHECK(conds_true(jx_get(rs, "status.conditions"), RS_COND_READY));
    json_decref(rs);
    json_t *ss = harness_get(&g_h, "", "services", IT_NS, "rs-deployfail-serve-svc");
    CHECK(strcmp(s_sel(ss, LABEL_CLUSTER), old) == 0);
    json_decref(ss);
    return failed;
}

static void s_set_suspend(json_t *spec, void *arg)
{
    json_object_set_new(spec, "suspend", json_boolean(arg != NULL));
}

typedef struct {
    const char *name;
    const char *type;
} s_cond_t;

static bool s_cond_is_true(void *arg)
{
    s_cond_t *c = arg;
    json_t *rs = s_rs(c->name);
    bool ok = conds_true(jx_get(rs, "status.conditions"), c->type);
    json_decref(rs);
    return ok;
}

static bool s_scheduled(void *arg)
{
    return s_audit("schedule-delete", arg) >= 1;
}

/* Waits for the schedule-delete audit row of `cluster`. */
static bool s_wait_audit_schedule(const char *cluster)
{
    return harness_wait(&g_h, s_scheduled, (void *)cluster, IT_WAIT_MS);
}

static int s_sc_suspend(void)
{
    int failed = 0;
    const char *name = "rs-suspend";
    failed += s_deploy(name, NULL, NULL);
    CHECK(s_modify(name, s_set_suspend, (void *)1) == 0);
    s_cond_t c = {name, RS_COND_SUSPENDED};
    CHECK(harness_wait(&g_h, s_cond_is_true, &c, IT_WAIT_MS));
    CHECK(s_nclusters(name) == 0);
    json_t *ss = harness_get(&g_h, "", "services", IT_NS, "rs-suspend-serve-svc");
    CHECK(ss == NULL);
    json_decref(ss);
    CHECK(s_modify(name, s_set_suspend, NULL) == 0);
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    json_t *rs = s_rs(name);
    CHECK(strcmp(jx_str(conds_find(jx_get(rs, "status.conditions"), RS_COND_SUSPENDED, NULL),
                        "reason", ""),
                 RS_R_RESUMED) == 0);
    json_decref(rs);
    CHECK(s_nclusters(name) == 1);
    return failed;
}

typedef struct {
    const char *name, *reason, *part;
} s_event_t;

static bool s_has_ev(void *arg)
{
    s_event_t *e = arg;
    return harness_has_event(&g_h, IT_NS, e->name, e->reason, e->part);
}

static int s_sc_invalid(void)
{
    int failed = 0;
    /* a name longer than 47 characters */
    const char *lname = "rs-invalid-a-name-that-is-longer-than-forty-seven";
    json_t *rs = s_rayservice(lname);
    CHECK(s_create(rs) == 0);
    json_decref(rs);
    CHECK(s_wait_field(lname, "status.lastUpdateTime", NULL, IT_WAIT_MS));
    rs = s_rs(lname);
    const json_t *ready = conds_find(jx_get(rs, "status.conditions"), RS_COND_READY, NULL);
    CHECK(strcmp(jx_str(ready, "reason", ""), RS_R_VALIDATION) == 0);
    CHECK(strstr(jx_str(ready, "message", ""), "47") != NULL);
    CHECK(harness_has_event(&g_h, IT_NS, lname, RAYSERVICE_EV_INVALID_METADATA, NULL));
    json_decref(rs);
    /* a head Service name */
    const char *name = "rs-invalid-svc";
    rs = s_rayservice(name);
    json_object_set_new(json_object_get(jx_get(rs, "spec.rayClusterConfig"), "headGroupSpec"),
                        "headService", json_pack("{s:{s:s}}", "metadata", "name", "my-head"));
    CHECK(s_create(rs) == 0);
    json_decref(rs);
    CHECK(s_wait_field(name, "status.lastUpdateTime", NULL, IT_WAIT_MS));
    rs = s_rs(name);
    ready = conds_find(jx_get(rs, "status.conditions"), RS_COND_READY, NULL);
    CHECK(strcmp(jx_str(ready, "reason", ""), RS_R_VALIDATION) == 0);
    CHECK(strstr(jx_str(ready, "message", ""), "headService") != NULL);
    CHECK(harness_has_event(&g_h, IT_NS, name, RAYSERVICE_EV_INVALID, NULL));
    json_decref(rs);
    harness_pump(&g_h, 1000);
    CHECK(s_nclusters(lname) == 0 && s_nclusters(name) == 0);
    /* a serveConfigV2 that is not YAML: the push is refused with a Warning naming the field,
     * the RayService stays not Ready (nothing is pushed) */
    const char *bname = "rs-invalid-config";
    rs = s_rayservice(bname);
    json_object_set_new(json_object_get(rs, "spec"), "serveConfigV2", json_string("a: [b\n"));
    CHECK(s_create(rs) == 0);
    json_decref(rs);
    s_event_t ev = {bname, "FailedToReconcileRayService",
                    "spec.serveConfigV2: error converting "
                    "YAML to JSON"};
    CHECK(harness_wait(&g_h, s_has_ev, &ev, IT_WAIT_MS));
    CHECK(!s_ready((void *)bname));
    return failed;
}

static bool s_rs_gone(void *arg)
{
    json_t *rs = s_rs(arg);
    json_decref(rs);
    return rs == NULL;
}

static int s_sc_delete(void)
{
    int failed = 0;
    const char *name = "rs-delete";
    failed += s_deploy(name, NULL, NULL);
    CHECK(s_delete(name) == 0);
    CHECK(harness_wait(&g_h, s_rs_gone, (void *)name, IT_WAIT_MS));
    CHECK(s_nclusters(name) == 0);
    return failed;
}

/* ---------- traffic ---------- */

typedef struct {
    int requests, errors, changes;
    char last[128];
    bool inflight;
    const char *svc;
} s_traffic_t;

static void s_traffic_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    s_traffic_t *t = arg;
    t->inflight = false;
    t->requests++;
    char who[128] = "";
    if (r->err == 0 && r->raw) {
        /* "... on cluster '<name>'" */
        const char *at = NULL;
        for (size_t i = 0; i + 12 < r->raw_len; i++) {
            if (memcmp(r->raw + i, "on cluster '", 12) == 0) {
                at = r->raw + i + 12;
                break;
            }
        }
        size_t n = 0;
        while (at && at + n < r->raw + r->raw_len && at[n] != '\'' && n + 1 < sizeof(who))
            n++;
        if (at)
            memcpy(who, at, n);
        who[n] = '\0';
    }
    if (r->err != 0 || !*who) {
        t->errors++;
        return;
    }
    if (t->last[0] && strcmp(t->last, who) != 0)
        t->changes++;
    snprintf(t->last, sizeof(t->last), "%s", who);
}

static s_traffic_t *g_traffic;

static void s_traffic_turn(void)
{
    s_traffic_t *t = g_traffic;
    if (!t || t->inflight)
        return;
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s:serve/proxy/fruit", IT_NS,
             t->svc);
    t->inflight = k8s_raw(g_h.admin, "GET", path, NULL, NULL, 0, NULL, s_traffic_done, t) > 0;
}

static bool s_never(void *arg)
{
    (void)arg;
    return false;
}

static int s_sc_traffic(void)
{
    int failed = 0;
    const char *name = "rs-traffic";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char old[128];
    snprintf(old, sizeof(old), "%s", s_active(rs));
    json_decref(rs);
    s_traffic_t t = {.svc = "rs-traffic-serve-svc"};
    g_traffic = &t;
    g_h.on_turn = s_traffic_turn;
    harness_wait(&g_h, s_never, NULL, 1000);
    CHECK(s_modify(name, s_set_image, "rayproject/ray:2.46.0-py311") == 0);
    s_switch_t sw = {name, old};
    CHECK(harness_wait(&g_h, s_switched, &sw, IT_WAIT_MS));
    CHECK(harness_wait(&g_h, s_gone, old, IT_WAIT_MS));
    harness_wait(&g_h, s_never, NULL, 1000);
    g_h.on_turn = NULL;
    while (t.inflight)
        harness_pump(&g_h, 50);
    g_traffic = NULL;
    if (g_h.verbose)
        printf("  traffic: %d requests, %d errors, %d changes of cluster (last %s)\n", t.requests,
               t.errors, t.changes, t.last);
    CHECK(t.requests > 20);
    CHECK(t.errors == 0);
    CHECK(t.changes == 1);
    CHECK(strcmp(t.last, old) != 0);
    return failed;
}

/* ---------- incremental upgrade ---------- */

typedef struct {
    int requests, errors;
    int per[2]; /* answers from the old cluster, the new one */
    char old[128];
    bool inflight;
    const char *gw;
    const char *route; /* the HTTPRoute watched */
    int pending_weights[64]; /* distinct pending weights seen on the HTTPRoute, in order */
    int nweights;
} s_incr_t;

static s_incr_t *g_incr;

static void s_incr_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    s_incr_t *t = arg;
    t->inflight = false;
    t->requests++;
    const char *at = NULL;
    for (size_t i = 0; r->err == 0 && r->raw && i + 12 < r->raw_len; i++) {
        if (memcmp(r->raw + i, "on cluster '", 12) == 0) {
            at = r->raw + i + 12;
            break;
        }
    }
    if (!at) {
        t->errors++;
        if (g_h.verbose)
            printf("  gateway request %d: HTTP %ld %.*s\n", t->requests, r->status,
                   (int)(r->raw_len < 200 ? r->raw_len : 200), r->raw ? r->raw : "");
        return;
    }
    t->per[strncmp(at, t->old, strlen(t->old)) == 0 && at[strlen(t->old)] == '\'' ? 0 : 1]++;
}

/* Each turn: one request through the Gateway, and the HTTPRoute's pending weight noted. */
static void s_incr_turn(void)
{
    s_incr_t *t = g_incr;
    if (!t)
        return;
    char path[256];
    if (!t->inflight) {
        snprintf(path, sizeof(path), "/kubesim/gateways/%s/%s/proxy/fruit", IT_NS, t->gw);
        t->inflight = k8s_raw(g_h.admin, "GET", path, NULL, NULL, 0, NULL, s_incr_done, t) > 0;
    }
    json_t *rt = harness_get(&g_h, "gateway.networking.k8s.io", "httproutes", IT_NS, t->route);
    json_t *refs = jx_get(json_array_get(jx_get(rt, "spec.rules"), 0), "backendRefs");
    size_t n = json_array_size(refs);
    if (n >= 1) {
        /* the pending cluster's weight: the second backend, 0 when it is gone */
        int w = n == 2 ? (int)jx_int(json_array_get(refs, 1), "weight", -1) : 0;
        if (t->nweights < 64 && (t->nweights == 0 || t->pending_weights[t->nweights - 1] != w))
            t->pending_weights[t->nweights++] = w;
    }
    json_decref(rt);
}

static void s_incr_opts(json_t *spec, void *arg)
{
    (void)arg;
    json_t *o = jx_get(spec, "upgradeStrategy.clusterUpgradeOptions");
    json_object_set_new(o, "stepSizePercent", json_integer(25));
    json_object_set_new(o, "maxSurgePercent", json_integer(50));
    json_object_set_new(o, "intervalSeconds", json_integer(1));
    json_object_set_new(spec, "rayClusterDeletionDelaySeconds", json_integer(3));
}

/* The sample GatewayClass istio (../shared/kuberay/samples/gateway-api/istio-class.yaml), once. */
static int s_gateway_class(void)
{
    json_t *gc = harness_load_sample(&g_h, "gateway-api/istio-class.yaml");
    char msg[HARNESS_MSG_MAX];
    k8s_res_t r = {
        .group = "gateway.networking.k8s.io", .version = "v1", .resource = "gatewayclasses"};
    int rc = gc ? harness_create(&g_h, g_h.admin, &r, gc, msg, sizeof(msg)) : ERR_NOTFOUND;
    json_decref(gc);
    return rc == ERR_EXISTS ? 0 : rc;
}

/* Deploys ray-service.incremental-upgrade.yaml as `name` (25% steps every second) and waits
 * until it is Ready. Returns the failed checks. */
static int s_incr_deploy(const char *name)
{
    int failed = 0;
    CHECK(s_gateway_class() == 0);
    json_t *rs = harness_load_sample(&g_h, "ray-service.incremental-upgrade.yaml");
    CHECK(rs != NULL);
    if (!rs)
        return failed;
    json_object_set_new(json_object_get(rs, "metadata"), "name", json_string(name));
    json_object_set_new(json_object_get(rs, "metadata"), "namespace", json_string(IT_NS));
    s_incr_opts(json_object_get(rs, "spec"), NULL);
    CHECK(s_create(rs) == 0);
    json_decref(rs);
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    return failed;
}

static int s_sc_incremental(void)
{
    int failed = 0;
    const char *name = "rs-incr";
    failed += s_incr_deploy(name);
    json_t *rs = s_rs(name);
    char old[128];
    snprintf(old, sizeof(old), "%s", s_active(rs));
    CHECK(jx_int(rs, "status.activeServiceStatus.targetCapacity", -1) == 100);
    CHECK(jx_int(rs, "status.activeServiceStatus.trafficRoutedPercent", -1) == 100);
    json_decref(rs);
    /* KubeRay's objects: the Gateway, the route, the per-cluster serve Service */
    json_t *gw =
        harness_get(&g_h, "gateway.networking.k8s.io", "gateways", IT_NS, "rs-incr-gateway");
    CHECK(gw && strcmp(jx_str(gw, "spec.gatewayClassName", ""), "istio") == 0);
    json_decref(gw);
    char csvc[160];
    snprintf(csvc, sizeof(csvc), "%s-serve-svc", old);
    json_t *cs = harness_get(&g_h, "", "services", IT_NS, csvc);
    CHECK(cs && strcmp(s_sel(cs, LABEL_CLUSTER), old) == 0);
    json_decref(cs);
    /* the upgrade, with traffic through the Gateway */
    s_incr_t t = {.gw = "rs-incr-gateway", .route = "rs-incr-httproute"};
    snprintf(t.old, sizeof(t.old), "%s", old);
    g_incr = &t;
    g_h.on_turn = s_incr_turn;
    CHECK(s_modify(name, s_set_image, "rayproject/ray:2.52.0") == 0);
    s_switch_t sw = {name, old};
    CHECK(harness_wait(&g_h, s_switched, &sw, 2 * IT_WAIT_MS));
    CHECK(harness_wait(&g_h, s_gone, old, IT_WAIT_MS));
    g_h.on_turn = NULL;
    while (t.inflight)
        harness_pump(&g_h, 50);
    g_incr = NULL;
    if (g_h.verbose) {
        printf("  incremental: %d requests, %d errors, %d from the old cluster, %d from the new; "
               "pending weights:",
               t.requests, t.errors, t.per[0], t.per[1]);
        for (int i = 0; i < t.nweights; i++)
            printf(" %d", t.pending_weights[i]);
        printf("\n");
    }
    CHECK(t.errors == 0);
    CHECK(t.per[0] > 0 && t.per[1] > 0);
    /* the weight moved in steps of at most 25 (no jump from 0 to 100) */
    CHECK(t.nweights >= 3);
    bool steps = true; /* up to 100 (after the promotion the route has one backend: 0) */
    for (int i = 1; i < t.nweights && t.pending_weights[i - 1] < 100; i++)
        steps = steps && t.pending_weights[i] >= t.pending_weights[i - 1] &&
                t.pending_weights[i] - t.pending_weights[i - 1] <= 25;
    CHECK(steps);
    rs = s_rs(name);
    CHECK(jx_int(rs, "status.activeServiceStatus.trafficRoutedPercent", -1) == 100);
    CHECK(jx_int(rs, "status.activeServiceStatus.targetCapacity", -1) == 100);
    CHECK(!*jx_str(rs, "status.pendingServiceStatus.rayClusterName", ""));
    json_decref(rs);
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    return failed;
}

typedef struct {
    const char *route;
    int min;
} s_weight_t;

/* The HTTPRoute's second backend (the pending cluster) has at least `min` weight. */
static bool s_pending_weight(void *arg)
{
    s_weight_t *w = arg;
    json_t *rt = harness_get(&g_h, "gateway.networking.k8s.io", "httproutes", IT_NS, w->route);
    json_t *refs = jx_get(json_array_get(jx_get(rt, "spec.rules"), 0), "backendRefs");
    bool ok = json_array_size(refs) == 2 && jx_int(json_array_get(refs, 1), "weight", 0) >= w->min;
    json_decref(rt);
    return ok;
}

static bool s_rolled_back(void *arg)
{
    json_t *rs = s_rs(arg);
    const json_t *c = conds_find(jx_get(rs, "status.conditions"), RS_COND_ROLLBACK, NULL);
    bool ok = c && strcmp(jx_str(c, "reason", ""), RS_R_ROLLBACK_COMPLETE) == 0 &&
              !*jx_str(rs, "status.pendingServiceStatus.rayClusterName", "");
    json_decref(rs);
    return ok;
}

static int s_sc_rollback(void)
{
    int failed = 0;
    const char *name = "rs-rollback";
    failed += s_incr_deploy(name);
    json_t *rs = s_rs(name);
    char old[128], image[128];
    snprintf(old, sizeof(old), "%s", s_active(rs));
    snprintf(image, sizeof(image), "%s",
             jx_str(json_array_get(jx_get(rs, "spec.rayClusterConfig.headGroupSpec.template.spec."
                                              "containers"),
                                   0),
                    "image", ""));
    json_decref(rs);
    s_incr_t t = {.gw = "rs-rollback-gateway", .route = "rs-rollback-httproute"};
    snprintf(t.old, sizeof(t.old), "%s", old);
    g_incr = &t;
    g_h.on_turn = s_incr_turn;
    CHECK(s_modify(name, s_set_image, "rayproject/ray:2.52.0") == 0);
    s_weight_t w = {"rs-rollback-httproute", 25};
    CHECK(harness_wait(&g_h, s_pending_weight, &w, IT_WAIT_MS));
    rs = s_rs(name);
    char pend[128];
    snprintf(pend, sizeof(pend), "%s",
             jx_str(rs, "status.pendingServiceStatus.rayClusterName", ""));
    json_decref(rs);
    /* the spec goes back: a rollback to the same active cluster */
    CHECK(s_modify(name, s_set_image, image) == 0);
    s_cond_t c = {name, RS_COND_ROLLBACK};
    CHECK(harness_wait(&g_h, s_cond_is_true, &c, IT_WAIT_MS));
    CHECK(harness_wait(&g_h, s_rolled_back, (void *)name, IT_WAIT_MS));
    CHECK(*pend && harness_wait(&g_h, s_gone, pend, IT_WAIT_MS));
    g_h.on_turn = NULL;
    while (t.inflight)
        harness_pump(&g_h, 50);
    g_incr = NULL;
    if (g_h.verbose) {
        printf("  rollback: %d requests, %d errors, %d from the active cluster, %d from the "
               "pending one; pending weights:",
               t.requests, t.errors, t.per[0], t.per[1]);
        for (int i = 0; i < t.nweights; i++)
            printf(" %d", t.pending_weights[i]);
        printf("\n");
    }
    CHECK(t.errors == 0);
    CHECK(t.per[1] > 0); /* the pending cluster did get traffic before the revert */
    /* the weight rose, then went back down to 0 */
    int top = 0;
    for (int i = 0; i < t.nweights; i++)
        top = t.pending_weights[i] > top ? t.pending_weights[i] : top;
    CHECK(top >= 25 && t.nweights >= 3 && t.pending_weights[t.nweights - 1] == 0);
    rs = s_rs(name);
    CHECK(strcmp(s_active(rs), old) == 0);
    CHECK(jx_int(rs, "status.activeServiceStatus.trafficRoutedPercent", -1) == 100);
    CHECK(jx_int(rs, "status.activeServiceStatus.targetCapacity", -1) == 100);
    CHECK(!conds_true(jx_get(rs, "status.conditions"), RS_COND_UPGRADE));
    json_decref(rs);
    CHECK(harness_wait(&g_h, s_ready, (void *)name, IT_WAIT_MS));
    CHECK(s_nclusters(name) == 1);
    return failed;
}

static void s_delay6(json_t *spec, void *arg)
{
    s_set_image(spec, arg);
    json_object_set_new(spec, "rayClusterDeletionDelaySeconds", json_integer(6));
}

/* The deletion deadline of a dangling cluster survives a restart of the controller: the old
 * cluster goes about 6 s after the switch, not 6 s after the restart. */
static int s_sc_deadline(void)
{
    int failed = 0;
    const char *name = "rs-deadline";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char old[128];
    snprintf(old, sizeof(old), "%s", s_active(rs));
    json_decref(rs);
    CHECK(s_modify(name, s_delay6, "rayproject/ray:2.46.0-py311") == 0);
    s_switch_t sw = {name, old};
    CHECK(harness_wait(&g_h, s_switched, &sw, IT_WAIT_MS));
    int64_t switched = loop_clock_ms();
    CHECK(s_wait_audit_schedule(old));
    /* restart at +3 s: a new controller, nothing in memory */
    harness_pump(&g_h, 3000 - (loop_clock_ms() - switched));
    harness_serveup_stop(&g_h);
    CHECK(harness_serveup_start(&g_h) == 0);
    char key[256];
    snprintf(key, sizeof(key), "%s/%s/%s", HARNESS_CLUSTER, IT_NS, name);
    if (g_h.suq)
        workq_add(g_h.suq, key); /* the resync a started process does */
    CHECK(harness_wait(&g_h, s_gone, old, IT_WAIT_MS));
    int64_t gone = loop_clock_ms() - switched;
    if (g_h.verbose)
        printf("  the old cluster went %" PRId64 " ms after the switch (restart at 3000 ms)\n",
               gone);
    CHECK(gone >= 5000 && gone < 8500);
    return failed;
}

/* One pod's Serve proxy made unhealthy (kubesim's serve-proxy control). */
typedef struct {
    const char *rs; /* the RayService */
    const char *pod; /* the pod */
    const char *label; /* its wanted ray.io/serve label, NULL = any */
    const char *ready; /* its wanted Ready condition status */
    json_int_t endpoints; /* the RayService's wanted numServeEndpoints */
} s_proxy_t;

static bool s_proxy_state(void *arg)
{
    const s_proxy_t *w = arg;
    json_t *p = harness_get(&g_h, "", "pods", IT_NS, w->pod);
    json_t *rs = s_rs(w->rs);
    bool ready = false;
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(p, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), "Ready") == 0)
            ready = strcmp(jx_str(c, "status", ""), w->ready) == 0;
    }
    bool ok = p && rs && ready &&
              (!w->label || strcmp(harness_label(p, LABEL_SERVE), w->label) == 0) &&
              jx_int(rs, "status.numServeEndpoints", -1) == w->endpoints;
    json_decref(p);
    json_decref(rs);
    return ok;
}

static int s_sc_proxy(void)
{
    int failed = 0;
    const char *name = "rs-proxy";
    failed += s_deploy(name, NULL, NULL);
    json_t *rs = s_rs(name);
    char ac[128], head[256] = "", worker[256] = "";
    snprintf(ac, sizeof(ac), "%s", s_active(rs));
    json_decref(rs);
    json_t *pods = harness_list(&g_h, "", "pods", IT_NS);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        if (strcmp(harness_label(p, LABEL_CLUSTER), ac) != 0)
            continue;
        bool is_head = strcmp(harness_label(p, LABEL_NODE_TYPE), "head") == 0;
        snprintf(is_head ? head : worker, 256, "%s", jx_str(p, "metadata.name", ""));
    }
    json_decref(pods);
    CHECK(*head && *worker);
    raysim_t *r = apiserver_raysim(g_h.api);
    /* A worker's proxy fails: its /-/healthz readiness probe (KubeRay's, failureThreshold 1)
     * fails, the pod leaves the serve Service's endpoints; KubeRay leaves a worker's
     * ray.io/serve label alone (only the head's follows the proxy health). */
    s_proxy_t w = {name, worker, "true", "False", 1};
    CHECK(raysim_set_proxy_down(r, IT_NS, worker, true) == 0);
    CHECK(harness_wait(&g_h, s_proxy_state, &w, IT_WAIT_MS));
    w = (s_proxy_t){name, worker, "true", "True", 2};
    CHECK(raysim_set_proxy_down(r, IT_NS, worker, false) == 0);
    CHECK(harness_wait(&g_h, s_proxy_state, &w, IT_WAIT_MS));
    /* The head's proxy fails: the controller's /-/healthz check sets ray.io/serve=false on it
     * (the head stays Ready: its probes do not check the proxy), and back to true. */
    w = (s_proxy_t){name, head, "false", "True", 1};
    CHECK(raysim_set_proxy_down(r, IT_NS, head, true) == 0);
    CHECK(harness_wait(&g_h, s_proxy_state, &w, IT_WAIT_MS));
    CHECK(s_nclusters(name) == 1);
    w = (s_proxy_t){name, head, "true", "True", 2};
    CHECK(raysim_set_proxy_down(r, IT_NS, head, false) == 0);
    CHECK(harness_wait(&g_h, s_proxy_state, &w, IT_WAIT_MS));
    rs = s_rs(name);
    CHECK(strcmp(s_active(rs), ac) == 0 && s_nclusters(name) == 1);
    json_decref(rs);
    return failed;
}

typedef struct {
    const char *name;
    int (*fn)(void);
} scenario_t;

static const scenario_t s_scenarios[] = {
    {"deploy", s_sc_deploy},           {"config", s_sc_config},
    {"restart", s_sc_restart},         {"append", s_sc_append},
    {"upgrade", s_sc_upgrade},         {"deployfail", s_sc_deployfail},
    {"traffic", s_sc_traffic},         {"suspend", s_sc_suspend},
    {"invalid", s_sc_invalid},         {"delete", s_sc_delete},
    {"incremental", s_sc_incremental}, {"rollback", s_sc_rollback},
    {"deadline", s_sc_deadline},       {"proxy", s_sc_proxy},
};

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int first = verbose ? 2 : 1;
    int failed = harness_init(
        &g_h, "serveup_it", verbose,
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
    return SELFTEST_RESULT("serveup_it", true);
}
