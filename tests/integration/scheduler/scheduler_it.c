/*
 * scheduler_it: the RayCluster reconciler end to end, in-process on one loop: kubesim's API
 * server with simulate=true (scheduler and kubelet: pods go Running/Ready with IPs) and
 * rayfleet's CRDs from deploy/crds, the watcher logic writing observed.db and publishing on an
 * inproc:// bus, and the scheduler logic (bus subscriber -> work queue -> reconcile) writing
 * through the Kubernetes API and auditing into its own scheduler.db.
 *
 * Scenario: ray-cluster.sample.yaml is applied; the head pod, the worker pod and the head Service
 * appear with KubeRay's names and labels, the pods run, the status reaches state "ready" (never
 * before the head pod is ready) with HeadPodReady and RayClusterProvisioned True,
 * readyWorkerReplicas 1 and observedGeneration current. Then: scale up 1 -> 3; scale down with
 * enableInTreeAutoscaling honouring workersToDelete exactly (and nothing else deleted); a Failed
 * worker is replaced; a deleted head pod is recreated; suspend deletes every pod and sets
 * RayClusterSuspended, resume recreates them; under API latency and 30% injected create errors a
 * scale-up to 5 ends with exactly 5 workers and 1 head; every API write has an audit row with
 * its cause and correlation id; the deleted first head has exactly its create row (the first
 * CreatedHeadPod, two more after it) and no delete row; every container carries the env entry
 * DB_PASSWORD=hunter2, which every pod create's summary shows redacted and no summary shows in
 * clear.
 *
 * Usage: scheduler_it [-v]. Exit 0 when every check passes.
 */
#include "harness.h"
#include "redact.h"

#include <sqlite3.h>

#define IT_WAIT_MS 30000 /* longest wait for one step */
#define IT_NS "default" /* namespace of the cluster */
#define IT_RC "raycluster-kuberay" /* the sample's name */
#define IT_GROUP "workergroup" /* the sample's worker group */

static harness_t g_h; /* kubesim, watcher, bus and reconciler on one loop */
static int g_ready_early; /* times state was "ready" while the head pod was not ready */
static bool g_seen_ready; /* state "ready" observed once */

/* ---------- kubesim access ---------- */

static json_t *s_get(const char *group, const char *resource, const char *name)
{
    return harness_get(&g_h, group, resource, IT_NS, name);
}

/* The live (not terminating) pods of the cluster with node type `type` (NULL: all), as a new
 * array. */
static json_t *s_pods(const char *type)
{
    json_t *all = harness_list(&g_h, "", "pods", IT_NS), *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        const char *c = harness_label(p, "ray.io/cluster"),
                   *t = harness_label(p, "ray.io/node-type");
        if (!c || strcmp(c, IT_RC) || jx_get(p, "metadata.deletionTimestamp"))
            continue;
        if (type && (!t || strcmp(t, type)))
            continue;
        json_array_append(out, p);
    }
    json_decref(all);
    return out;
}

static size_t s_count(const char *type, bool ready_only)
{
    json_t *a = s_pods(type);
    size_t n = harness_count_ready(a, ready_only);
    json_decref(a);
    return n;
}

/* Every pod of the cluster, terminating ones included. */
static size_t s_count_all(void)
{
    json_t *all = harness_list(&g_h, "", "pods", IT_NS);
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        const char *c = harness_label(p, "ray.io/cluster");
        if (c && !strcmp(c, IT_RC))
            n++;
    }
    json_decref(all);
    return n;
}

static json_t *s_rc(void)
{
    return s_get("ray.io", "rayclusters", IT_RC);
}

static const char *s_cond(const json_t *rc, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(rc, "status.conditions"), i, c)
    {
        if (!strcmp(jx_str(c, "type", ""), type))
            return jx_str(c, "status", "");
    }
    return "";
}

/* Changes the RayCluster's spec through an update of the main endpoint (generation bumps). */
static int s_rc_modify(void (*fn)(json_t *rc, void *arg), void *arg)
{
    return harness_rc_modify(&g_h, IT_NS, IT_RC, fn, arg);
}

/* Watches "ready only once the head is ready" on every loop turn of the waits. */
static void s_observe_ready(void)
{
    if (g_seen_ready)
        return;
    json_t *rc = s_rc();
    if (rc && !strcmp(jx_str(rc, "status.state", ""), "ready")) {
        g_seen_ready = true;
        json_t *h = s_pods("head");
        if (json_array_size(h) != 1 || !harness_pod_ready(json_array_get(h, 0)))
            g_ready_early++;
        json_decref(h);
    }
    json_decref(rc);
}

/* The cluster is ready: `workers` ready workers, 1 ready head, status state ready with the
 * counters and observedGeneration current. */
static bool s_cluster_ready(void *arg)
{
    int64_t workers = (int64_t)(intptr_t)arg;
    if (s_count("head", true) != 1 || s_count("head", false) != 1 ||
        (int64_t)s_count("worker", true) != workers || (int64_t)s_count("worker", false) != workers)
        return false;
    json_t *rc = s_rc();
    bool ok = rc && !strcmp(jx_str(rc, "status.state", ""), "ready") &&
              jx_int(rc, "status.readyWorkerReplicas", -1) == workers &&
              jx_int(rc, "status.observedGeneration", -1) == jx_int(rc, "metadata.generation", 0) &&
              !strcmp(s_cond(rc, "HeadPodReady"), "True") &&
              !strcmp(s_cond(rc, "RayClusterProvisioned"), "True");
    json_decref(rc);
    return ok;
}

static void s_dump(void)
{
    if (!g_h.verbose)
        return;
    json_t *rc = s_rc();
    char *st = rc ? json_dumps(jx_get(rc, "status"), JSON_COMPACT) : NULL;
    printf("  status: %s\n  generation %lld\n", st ? st : "(none)",
           (long long)jx_int(rc, "metadata.generation", 0));
    free(st);
    json_decref(rc);
    json_t *a = s_pods(NULL);
    size_t i;
    json_t *p;
    json_array_foreach(a, i, p)
    {
        char *ps = json_dumps(jx_get(p, "status"), JSON_COMPACT);
        printf("  pod %s %s ready=%d node=%s %.600s\n", jx_str(p, "metadata.name", ""),
               jx_str(p, "status.phase", ""), harness_pod_ready(p), jx_str(p, "spec.nodeName", ""),
               ps ? ps : "");
        free(ps);
    }
    json_decref(a);
    reconcile_stats_t rs;
    reconcile_stats(g_h.rec, &rs);
    printf("  reconcile: passes %llu creates %llu deletes %llu status %llu events %llu errors "
           "%llu write_errors %llu skipped %llu\n",
           (unsigned long long)rs.passes, (unsigned long long)rs.creates,
           (unsigned long long)rs.deletes, (unsigned long long)rs.status_writes,
           (unsigned long long)rs.events, (unsigned long long)rs.errors,
           (unsigned long long)rs.write_errors, (unsigned long long)rs.skipped_groups);
}

/* ---------- spec edits ---------- */

static void s_set_replicas(json_t *rc, void *arg)
{
    json_t *wg = json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
    json_object_set_new(wg, "replicas", json_integer((json_int_t)(intptr_t)arg));
}

/* replicas and maxReplicas both `arg` */
static void s_set_replicas_max(json_t *rc, void *arg)
{
    s_set_replicas(rc, arg);
    json_t *wg = json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
    json_object_set_new(wg, "maxReplicas", json_integer((json_int_t)(intptr_t)arg));
}

static void s_scale_down_named(json_t *rc, void *arg)
{
    json_object_set_new(json_object_get(rc, "spec"), "enableInTreeAutoscaling", json_true());
    json_t *wg = json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
    json_object_set_new(wg, "replicas", json_integer(2));
    json_object_set_new(wg, "scaleStrategy",
                        json_pack("{s:[s]}", "workersToDelete", (const char *)arg));
}

static void s_clear_wtd(json_t *rc, void *arg)
{
    json_t *wg = json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
    json_object_del(wg, "scaleStrategy");
}

static void s_set_suspend(json_t *rc, void *arg)
{
    json_object_set_new(json_object_get(rc, "spec"), "suspend", arg ? json_true() : json_false());
}

/* ---------- predicates ---------- */

static bool s_names_are(void *arg)
{
    /* the live workers are exactly the names in the array `arg` */
    json_t *want = arg;
    json_t *w = s_pods("worker");
    bool ok = json_array_size(w) == json_array_size(want);
    size_t i, k;
    json_t *p, *n;
    json_array_foreach(w, i, p)
    {
        bool found = false;
        json_array_foreach(want, k, n) if (!strcmp(json_string_value(n),
                                                   jx_str(p, "metadata.name", ""))) found = true;
        ok = ok && found;
    }
    json_decref(w);
    return ok;
}

static bool s_gone(void *arg)
{
    json_t *p = s_get("", "pods", arg);
    json_decref(p);
    return p == NULL;
}

static bool s_suspended(void *arg)
{
    json_t *rc = s_rc();
    bool ok = rc && s_count_all() == 0 && !strcmp(s_cond(rc, "RayClusterSuspended"), "True") &&
              !strcmp(jx_str(rc, "status.state", ""), "suspended");
    json_decref(rc);
    return ok;
}

/* ---------- audit checks ---------- */

/* The secret-looking env entry put into every container of the sample: its literal must never
 * reach an audit summary (common/redact), its name must (so the check above can fail). */
#define IT_SECRET_ENV "DB_PASSWORD"
#define IT_SECRET_VALUE "hunter2"

/* Adds the env entry IT_SECRET_ENV=IT_SECRET_VALUE first in the first container of the head
 * group and of every worker group of the RayCluster rc. */
static void s_add_secret_env(json_t *rc)
{
    json_t *groups = json_array();
    json_array_append(groups, jx_get(rc, "spec.headGroupSpec"));
    json_array_extend(groups, jx_get(rc, "spec.workerGroupSpecs"));
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        json_t *c = json_array_get(jx_get(g, "template.spec.containers"), 0);
        json_t *env = json_object_get(c, "env");
        if (!json_is_array(env)) {
            env = json_array();
            json_object_set_new(c, "env", env);
        }
        json_array_insert_new(
            env, 0, json_pack("{s:s, s:s}", "name", IT_SECRET_ENV, "value", IT_SECRET_VALUE));
    }
    json_decref(groups);
}

/* The audit rows about the head pod of the first start, `old_head`, which the test deleted: the
 * scheduler created it (the first head it created) and never deleted it; a head was created
 * again after it was gone. Returns the failed-check count. */
static int s_old_head_checks(store_t *db, const char *old_head)
{
    int failed = 0;
    store_audit_list_t l = {0};
    CHECK(*old_head &&
          store_audit_query_target(db, "c1", "Pod", IT_NS, old_head, 0, 0, 10, &l) == 0);
    size_t creates = 0, deletes = 0;
    int64_t create_id = 0;
    for (size_t k = 0; k < l.n; k++) {
        const store_audit_t *r = l.rows[k];
        if (!strcmp(r->verb, "create") && r->result_status == 201 && r->reason &&
            !strcmp(r->reason, "CreatedHeadPod") && r->cause_key &&
            !strcmp(r->cause_key, "c1/" IT_NS "/" IT_RC)) {
            creates++;
            create_id = r->id;
        }
        if (!strcmp(r->verb, "delete"))
            deletes++;
    }
    if (g_h.verbose)
        printf("  old head %s: %zu audit rows, %zu creates, %zu deletes\n", old_head, l.n, creates,
               deletes);
    CHECK(l.n == 1 && creates == 1 && deletes == 0);
    store_audit_list_free(&l);
    /* it was the first head pod created, and two were created after it (its replacement, and
     * the head after resume) */
    store_query_t *q = store_query_open(store_path(db), NULL, 0, NULL);
    CHECK(q != NULL);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(store_query_handle(q),
                             "SELECT min(id), sum(target_name != ?1) FROM audit WHERE "
                             "target_kind = 'Pod' AND verb = 'create' AND result_status = 201 AND "
                             "reason = 'CreatedHeadPod'",
                             -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, old_head, -1, SQLITE_STATIC);
    bool row = st && sqlite3_step(st) == SQLITE_ROW;
    CHECK(row);
    if (row) {
        CHECK(sqlite3_column_int64(st, 0) == create_id);
        CHECK(sqlite3_column_int64(st, 1) == 2);
    }
    sqlite3_finalize(st);
    store_query_close(&q);
    return failed;
}

static int s_audit_checks(store_t *db, const json_t *deleted_names, const char *old_head)
{
    int failed = 0;
    store_query_t *q = store_query_open(store_path(db), NULL, 0, NULL);
    CHECK(q != NULL);
    sqlite3 *h = store_query_handle(q);
    sqlite3_stmt *st = NULL;
    /* every row carries its cause and a correlation id */
    CHECK(sqlite3_prepare_v2(h,
                             "SELECT count(*), sum(cause_key = 'c1/default/raycluster-kuberay'), "
                             "sum(length(correlation_id) = 32), sum(cause_generation > 0), "
                             "sum(cause_resource_version IS NOT NULL), "
                             "sum(actor_service = 'scheduler') FROM audit",
                             -1, &st, NULL) == SQLITE_OK);
    bool row = st && sqlite3_step(st) == SQLITE_ROW;
    CHECK(row);
    if (row) {
        int64_t n = sqlite3_column_int64(st, 0);
        if (g_h.verbose)
            printf("  audit rows: %lld\n", (long long)n);
        CHECK(n > 0);
        for (int c = 1; c <= 5; c++)
            CHECK(sqlite3_column_int64(st, c) == n);
    }
    sqlite3_finalize(st);
    /* every live pod was created by an audited write */
    json_t *pods = s_pods(NULL);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        store_audit_list_t l = {0};
        const char *name = jx_str(p, "metadata.name", "");
        CHECK(store_audit_query_target(db, "c1", "Pod", IT_NS, name, 0, 0, 10, &l) == 0);
        bool created = false;
        for (size_t k = 0; k < l.n; k++)
            if (!strcmp(l.rows[k]->verb, "create") && l.rows[k]->result_status == 201 &&
                l.rows[k]->reason &&
                (!strcmp(l.rows[k]->reason, "CreatedWorkerPod") ||
                 !strcmp(l.rows[k]->reason, "CreatedHeadPod")))
                created = true;
        if (!created && g_h.verbose)
            printf("  no create audit row for pod %s\n", name);
        CHECK(created);
        store_audit_list_free(&l);
    }
    json_decref(pods);
    /* deletions */
    json_t *n;
    json_array_foreach(deleted_names, i, n)
    {
        store_audit_list_t l = {0};
        CHECK(store_audit_query_target(db, "c1", "Pod", IT_NS, json_string_value(n), 0, 0, 10,
                                       &l) == 0);
        bool del = false;
        for (size_t k = 0; k < l.n; k++)
            if (!strcmp(l.rows[k]->verb, "delete"))
                del = true;
        if (!del && g_h.verbose)
            printf("  no delete audit row for pod %s\n", json_string_value(n));
        CHECK(del);
        store_audit_list_free(&l);
    }
    failed += s_old_head_checks(db, old_head);
    /* status writes, the head service and Events are audited too */
    store_audit_list_t l = {0};
    CHECK(store_audit_query_target(db, "c1", "RayCluster", IT_NS, IT_RC, 0, 0, 1000, &l) == 0);
    size_t status_rows = 0;
    for (size_t k = 0; k < l.n; k++)
        if (!strcmp(l.rows[k]->verb, "status"))
            status_rows++;
    CHECK(status_rows > 0);
    store_audit_list_free(&l);
    CHECK(store_audit_query_target(db, "c1", "Service", IT_NS, "raycluster-kuberay-head-svc", 0, 0,
                                   10, &l) == 0);
    CHECK(l.n >= 1 && !strcmp(l.rows[l.n - 1]->reason, "CreatedService"));
    store_audit_list_free(&l);
    CHECK(harness_sql_int(&g_h, "SELECT count(*) FROM audit WHERE target_kind = 'Event' AND "
                                "result_status = 201") > 0);
    /* no secret leaked into summaries: every pod's container has IT_SECRET_ENV=IT_SECRET_VALUE;
     * the pod creates' summaries show the entry, redacted, and never the value (a truncated
     * summary holds the JSON as an escaped string: backslashes are dropped before the match) */
    int64_t shown = harness_sql_int(
        &g_h, "SELECT count(*) FROM audit WHERE target_kind = 'Pod' AND verb = "
              "'create' AND replace(request_summary, '\\', '') LIKE '%\"" IT_SECRET_ENV
              "\",\"value\":\"" REDACT_MARK "\"%'");
    int64_t creates = harness_sql_int(
        &g_h, "SELECT count(*) FROM audit WHERE target_kind = 'Pod' AND verb = 'create'");
    if (g_h.verbose)
        printf("  pod creates: %lld, with the secret env redacted in the summary: %lld\n",
               (long long)creates, (long long)shown);
    CHECK(creates > 0 && shown == creates);
    CHECK(harness_sql_int(&g_h,
                          "SELECT count(*) FROM audit WHERE request_summary LIKE '%" IT_SECRET_VALUE
                          "%'") == 0);
    store_query_close(&q);
    return failed;
}

/* Kubernetes Events with KubeRay's reasons, from kubesim's store. */
/* Scales to `workers` under fault `spec`, then checks the pod counts and that every pod has a
 * create row naming it. Returns the number of failed checks. */
static int s_ambiguous_creates(const char *spec, size_t workers)
{
    int failed = 0;
    CHECK(apiserver_add_fault_spec(g_h.api, spec) == 0);
    CHECK(s_rc_modify(s_set_replicas_max, (void *)(intptr_t)workers) == 0);
    bool ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)workers, 2 * IT_WAIT_MS);
    CHECK(ok);
    apiserver_clear_faults(g_h.api);
    harness_pump(&g_h, 3000);
    size_t nw = s_count("worker", false), nh = s_count("head", false), all = s_count_all();
    if (g_h.verbose)
        printf("  %s: %zu workers, %zu head, %zu pods in all\n", spec, nw, nh, all);
    CHECK(nw == workers && nh == 1 && all == workers + 1);
    if (!ok || nw != workers)
        s_dump();
    store_flush(g_h.sdb);
    json_t *pods = s_pods(NULL);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        store_audit_list_t l = {0};
        const char *name = jx_str(p, "metadata.name", "");
        CHECK(store_audit_query_target(g_h.sdb, "c1", "Pod", IT_NS, name, 0, 0, 10, &l) == 0);
        size_t creates = 0;
        for (size_t k = 0; k < l.n; k++)
            if (!strcmp(l.rows[k]->verb, "create"))
                creates++;
        if (creates != 1 && g_h.verbose)
            printf("  pod %s: %zu create rows\n", name, creates);
        CHECK(creates == 1);
        store_audit_list_free(&l);
    }
    json_decref(pods);
    // no row is left pending once the scheduler has the answers
    CHECK(harness_sql_int(&g_h, "SELECT count(*) FROM audit WHERE result_error = 'pending'") == 0);
    if (g_h.verbose)
        printf("  creates answered 409 of our own pod (resent): %lld, without an answer: %lld\n",
               (long long)harness_sql_int(&g_h, "SELECT count(*) FROM audit WHERE verb = "
                                                "'create' AND message LIKE '%was resent%'"),
               (long long)harness_sql_int(&g_h, "SELECT count(*) FROM audit WHERE verb = "
                                                "'create' AND target_kind = 'Pod' AND "
                                                "result_status IN (0, 504)"));
    return failed;
}

static bool s_has_event(const char *reason)
{
    return harness_has_event(&g_h, IT_NS, IT_RC, reason, NULL);
}

/* ---------- the scenario ---------- */

static int s_scenario(void)
{
    int failed = harness_start(&g_h);
    if (!g_h.started)
        goto out;

    /* 1. the sample reaches ready */
    json_t *sample = harness_load_sample(&g_h, "ray-cluster.sample.yaml");
    CHECK(sample != NULL);
    if (sample)
        s_add_secret_env(sample);
    k8s_res_t rcres = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = IT_NS};
    int64_t t0 = loop_clock_ms();
    CHECK(sample && harness_create(&g_h, g_h.admin, &rcres, sample, NULL, 0) == 0);
    json_decref(sample);
    bool ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)1, IT_WAIT_MS);
    CHECK(ok);
    if (g_h.verbose)
        printf("  sample ready in %lld ms\n", (long long)(loop_clock_ms() - t0));
    if (!ok)
        s_dump();
    CHECK(g_seen_ready && g_ready_early == 0);
    json_t *heads = s_pods("head"), *workers = s_pods("worker");
    json_t *hp = json_array_get(heads, 0), *wp = json_array_get(workers, 0);
    CHECK(hp && !strncmp(jx_str(hp, "metadata.name", ""), IT_RC "-head-", strlen(IT_RC) + 6));
    CHECK(hp && !strcmp(jx_str(hp, "metadata.generateName", ""), IT_RC "-head-"));
    CHECK(wp && !strcmp(jx_str(wp, "metadata.generateName", ""), IT_RC "-" IT_GROUP "-worker-"));
    CHECK(hp && !strcmp(harness_label(hp, "ray.io/node-type"), "head"));
    CHECK(hp && !strcmp(harness_label(hp, "ray.io/identifier"), IT_RC "-head"));
    CHECK(wp && harness_label(wp, "ray.io/group") &&
          !strcmp(harness_label(wp, "ray.io/group"), IT_GROUP));
    CHECK(wp && !strcmp(harness_label(wp, "ray.io/node-type"), "worker"));
    CHECK(wp &&
          !strcmp(jx_str(json_array_get(jx_get(wp, "metadata.ownerReferences"), 0), "kind", ""),
                  "RayCluster"));
    char old_head[256];
    snprintf(old_head, sizeof(old_head), "%s", jx_str(hp, "metadata.name", ""));
    json_decref(heads);
    json_decref(workers);
    json_t *svc = s_get("", "services", IT_RC "-head-svc");
    CHECK(svc != NULL);
    CHECK(svc && !strcmp(harness_label(svc, "ray.io/node-type"), "head"));
    CHECK(svc && !strcmp(jx_str(svc, "spec.clusterIP", ""), "None"));
    json_decref(svc);
    json_t *rc = s_rc();
    CHECK(rc && !strcmp(jx_str(rc, "status.head.serviceName", ""), IT_RC "-head-svc"));
    CHECK(rc && jx_str(rc, "status.head.podIP", "")[0]);
    /* endpoints mirror the head service ports' targetPort (a real API server defaults it to the
     * port; kubesim leaves it unset, and then KubeRay has no endpoint either) */
    svc = s_get("", "services", IT_RC "-head-svc");
    size_t pi;
    json_t *sp;
    json_array_foreach(jx_get(svc, "spec.ports"), pi, sp)
    {
        json_t *tp = json_object_get(sp, "targetPort");
        const char *got = json_string_value(
            json_object_get(jx_get(rc, "status.endpoints"), jx_str(sp, "name", "")));
        char want[32] = "";
        if (json_is_integer(tp))
            snprintf(want, sizeof(want), "%lld", (long long)json_integer_value(tp));
        else if (json_is_string(tp))
            snprintf(want, sizeof(want), "%s", json_string_value(tp));
        CHECK(want[0] ? got && !strcmp(got, want) : got == NULL);
    }
    json_decref(svc);
    json_decref(rc);
    CHECK(s_has_event("CreatedHeadPod") && s_has_event("CreatedWorkerPod") &&
          s_has_event("CreatedService"));

    /* 2. scale up 1 -> 3 */
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)3) == 0);
    ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)3, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    if (g_h.verbose)
        printf("  scaled up to 3: %s\n", ok ? "ok" : "FAILED");

    /* 3. scale down with autoscaling: exactly the named pod goes */
    json_t *deleted = json_array();
    workers = s_pods("worker");
    char victim[256];
    snprintf(victim, sizeof(victim), "%s", jx_str(json_array_get(workers, 1), "metadata.name", ""));
    json_t *keep = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(workers, i, p) if (strcmp(jx_str(p, "metadata.name", ""), victim))
        json_array_append_new(keep, json_string(jx_str(p, "metadata.name", "")));
    json_decref(workers);
    json_array_append_new(deleted, json_string(victim));
    CHECK(s_rc_modify(s_scale_down_named, victim) == 0);
    ok = harness_wait(&g_h, s_gone, victim, IT_WAIT_MS);
    CHECK(ok);
    harness_pump(&g_h, 2500); /* nothing else may go, nothing may be added */
    CHECK(s_names_are(keep));
    CHECK(harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS));
    if (g_h.verbose)
        printf("  workersToDelete honoured: %s\n", s_names_are(keep) ? "ok" : "FAILED");
    json_decref(keep);
    /* with autoscaling, a surplus is not deleted by the operator */
    CHECK(s_rc_modify(s_clear_wtd, NULL) == 0);
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)1) == 0);
    harness_pump(&g_h, 2500);
    CHECK(s_count("worker", false) == 2);
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)2) == 0);
    CHECK(harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS));

    /* 4. a failed worker is replaced */
    workers = s_pods("worker");
    snprintf(victim, sizeof(victim), "%s", jx_str(json_array_get(workers, 0), "metadata.name", ""));
    json_t *fp = json_deep_copy(json_array_get(workers, 0));
    json_decref(workers);
    jx_set_path(fp, "status.phase", json_string("Failed"));
    CHECK(
        objstore_update(apiserver_store(g_h.api), harness_res(&g_h, "", "pods"), IT_NS, victim, &fp,
                        &(objstore_update_opts_t){.precond = OBJSTORE_PRECOND_NONE, .status = true},
                        NULL, NULL, NULL) == 0);
    json_array_append_new(deleted, json_string(victim));
    CHECK(harness_wait(&g_h, s_gone, victim, IT_WAIT_MS));
    ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    CHECK(s_has_event("DeletedWorkerPod"));
    if (g_h.verbose)
        printf("  failed worker replaced: %s\n", ok ? "ok" : "FAILED");

    /* 5. a deleted head pod is recreated */
    objstore_delete(apiserver_store(g_h.api), harness_res(&g_h, "", "pods"), IT_NS, old_head,
                    &(objstore_delete_opts_t){.grace_set = true, .grace_seconds = 0}, NULL, NULL,
                    NULL);
    CHECK(harness_wait(&g_h, s_gone, old_head, IT_WAIT_MS));
    ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS);
    CHECK(ok);
    heads = s_pods("head");
    CHECK(json_array_size(heads) == 1 &&
          strcmp(jx_str(json_array_get(heads, 0), "metadata.name", ""), old_head) != 0);
    json_decref(heads);
    if (g_h.verbose)
        printf("  head recreated: %s\n", ok ? "ok" : "FAILED");

    /* 6. suspend, resume */
    CHECK(s_rc_modify(s_set_suspend, (void *)1) == 0);
    ok = harness_wait(&g_h, s_suspended, NULL, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    CHECK(s_has_event("DeletedPod"));
    CHECK(s_rc_modify(s_set_suspend, NULL) == 0);
    ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)2, IT_WAIT_MS);
    CHECK(ok);
    if (!ok)
        s_dump();
    rc = s_rc();
    CHECK(rc && !strcmp(s_cond(rc, "RayClusterSuspended"), "False"));
    json_decref(rc);
    if (g_h.verbose)
        printf("  suspend and resume: %s\n", ok ? "ok" : "FAILED");

    /* 7. no duplicate pod under latency and API errors */
    apiserver_set_latency(g_h.api, 20, 80);
    CHECK(apiserver_add_fault_spec(g_h.api, "create:pods:0.3:500") == 0);
    CHECK(s_rc_modify(s_set_replicas, (void *)(intptr_t)5) == 0);
    ok = harness_wait(&g_h, s_cluster_ready, (void *)(intptr_t)5, 2 * IT_WAIT_MS);
    CHECK(ok);
    apiserver_clear_faults(g_h.api);
    harness_pump(&g_h, 3000);
    size_t nw = s_count("worker", false), nh = s_count("head", false);
    CHECK(nw == 5 && nh == 1);
    if (g_h.verbose)
        printf("  under faults: %zu workers, %zu head\n", nw, nh);
    if (!ok)
        s_dump();

    /* 8. audit */
    store_flush(g_h.sdb);
    failed += s_audit_checks(g_h.sdb, deleted, old_head);
    json_decref(deleted);

    /* 9. ambiguous creates (issue 17): the server applies the create, then drops the connection
     * (libcurl may resend the POST on a new one) or answers 504. The runtime names generateName
     * pods itself, so a resend meets 409 of its own pod: no duplicate, replica counts exact, and
     * every pod has its create row (the intent row, written before the request went out). */
    failed += s_ambiguous_creates("create:pods:0.3:drop", 8);
    failed += s_ambiguous_creates("create:pods:0.3:timeout", 16);
    s_dump();

out:
    failed += harness_stop(&g_h);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    g_h.on_turn = s_observe_ready;
    int failed = harness_init(
        &g_h, "scheduler_it", verbose, verbose ? LOG_WARN : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 4, .wait_ms = IT_WAIT_MS, .qps = 1000, .concurrency = 4, .desired = true});
    if (g_h.api)
        failed += s_scenario();
    harness_end(&g_h);
    return SELFTEST_RESULT("scheduler_it", true);
}
