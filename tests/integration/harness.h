/*
 * harness: the in-process rig shared by the reconciler's integration tests (integration.scheduler,
 * scheduler2, fairness and conformance include this file; each is a single program, so the
 * helpers are file-static and a program has one harness_t).
 *
 * harness_init() ignores SIGPIPE, starts curl and the logger, makes the loop, a ZeroMQ context
 * and a temporary dir, and starts kubesim's API server on that loop with simulate=true (scheduler
 * and kubelet: pods go Running/Ready with IPs), writing <dir>/config, a kubeconfig for it.
 * harness_start() makes an admin client (the test's) and the reconciler's client, registers
 * rayfleet's CRDs from deploy/crds, opens <dir>/observed.db (written by the watcher logic, read by
 * the reconciler) and <dir>/scheduler.db (audit rows, desired state), wires an inproc:// bus
 * (watcher publisher -> subscriber of every shard -> reconcile_note_change -> work queue ->
 * reconcile_fn), starts the watcher and waits for it to be ready. harness_stop() tears that down;
 * harness_end() destroys the API server, the loop and then the stores attached to it, removes the
 * dir and stops curl.
 *
 * RBAC mode (issue 15): when $RF_HARNESS_RBAC names an RBAC manifest (the chart's, rendered by
 * tests/integration/rbac/rbac_run.sh), kubesim also listens with TLS and an admin token; after
 * the CRDs, the admin client (plain HTTP: system:masters) creates the namespace rayfleet-system,
 * the ServiceAccount rayfleet and every document of the manifest, asks the TokenRequest API for a
 * token of that ServiceAccount and writes <dir>/sa-config (https, the CA, the token). The watcher
 * and every controller client (the scheduler's, the submitter's and serve-upgrade's, through which
 * their dashboard calls go by the service proxy) use it, so kubesim's authorizer judges each of
 * their requests; the test's admin client and its /kubesim/... calls stay admin. harness_stop()
 * then checks kubesim counted 0 forbidden responses, printing the refused requests otherwise.
 *
 * Also: pumping the loop, waiting for a predicate, creating an object through a client and
 * waiting for the answer, loading YAML and the KubeRay samples, applying a YAML file as `kubectl
 * create -n NS -f FILE` does (namespaces created first), reading kubesim's store directly
 * (get, labels, pod readiness, Events) and changing a RayCluster's spec through the main endpoint.
 *
 * The setup functions count failed assertions like CHECK (common/selftest.h) and return the
 * count, which the test adds to its own.
 */
#ifndef RF_HARNESS_H
#define RF_HARNESS_H

#include "apiserver.h"
#include "actlog.h"
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
#include "tls.h"
#include "watcher.h"
#include "workq.h"
#include "yaml.h"
#ifdef HARNESS_SUBMITTER
#include "submitter.h" /* the RayJob controller runs beside the scheduler */
#endif
#ifdef HARNESS_SERVEUP
#include "serveup.h" /* the RayService controller runs beside the scheduler */
#endif

#include <curl/curl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define HARNESS_FN static __attribute__((unused)) /* helpers: each includer uses a subset */
#define HARNESS_SHARDS 256 /* bus shards (all subscribed) */
#define HARNESS_TURN_MS 10 /* loop wait of one turn while pumping or waiting */
#define HARNESS_SETTLE_MS 100 /* pump after registering the CRDs and after subscribing */
#define HARNESS_YAML_MAX (16u << 20) /* largest YAML file loaded */
#define HARNESS_ERR_MAX 4096 /* bytes of an error text */
#define HARNESS_MSG_MAX 512 /* bytes of an API answer's message kept by harness_create */
#define HARNESS_HWM 1000000 /* bus high-water mark */
#define HARNESS_BACKOFF_BASE_MS 20 /* watcher's retry backoff, first */
#define HARNESS_BACKOFF_MAX_MS 200 /* watcher's retry backoff, longest */
#define HARNESS_CREATE_MS 100 /* simulated kubelet: pod create delay */
#define HARNESS_READY_MS 300 /* simulated kubelet: pod ready delay */
#define HARNESS_TERMINATE_MS 200 /* simulated kubelet: pod terminate delay */
#define HARNESS_CLUSTER "c1" /* member cluster name of the watcher and the reconciler */
#define HARNESS_EP "inproc://harness-it" /* the bus endpoint */
#define HARNESS_RBAC_ENV "RF_HARNESS_RBAC" /* names the RBAC manifest of the RBAC mode */
#define HARNESS_SA_NS "rayfleet-system" /* the ServiceAccount's namespace (the chart's) */
#define HARNESS_SA_NAME "rayfleet" /* the ServiceAccount (the chart's) */
#define HARNESS_TOKEN_MAX 4096 /* bytes of a service-account token */

/* What differs between the tests using the harness. */
typedef struct {
    int nodes; /* kubesim nodes (and simulated kubelet nodes) */
    int64_t wait_ms; /* longest wait for a create's answer and for the watcher to be ready */
    int qps; /* the reconciler's and the watcher's client QPS and burst */
    int admin_qps; /* the admin client's QPS and burst; 0: the client defaults */
    int concurrency; /* reconcile passes in flight (work queue concurrency) */
    bool desired; /* the reconciler records desired state in scheduler.db */
    const validate_gates_t *gates; /* the reconciler's feature gates; NULL: KubeRay defaults */
} harness_opts_t;

/* The rig. Zero-initialise, then harness_init(). */
typedef struct {
    harness_opts_t o; /* options */
    bool verbose; /* -v: print progress and diagnostics */
    loop_t *loop; /* the one loop everything runs on */
    void *zctx; /* ZeroMQ context of the bus */
    char dir[64]; /* temporary dir (kubeconfig, databases) */
    char kcpath[128]; /* <dir>/config */
    apiserver_t *api; /* kubesim's API server */
    kubeconfig_t *kc; /* the kubeconfig loaded from kcpath */
    k8s_client_t *admin; /* the test's own client */
    k8s_client_t *client; /* the reconciler's client */
    const char *rbac; /* $RF_HARNESS_RBAC: the RBAC manifest (NULL: RBAC mode off) */
    char sakcpath[128]; /* RBAC mode: <dir>/sa-config (TLS, CA, the ServiceAccount's token) */
    kubeconfig_t *sakc; /* RBAC mode: loaded from sakcpath, the watcher's and controllers' */
    store_t *wdb; /* observed.db, the watcher's (destroyed by harness_end) */
    store_t *obs; /* observed.db read-only, the reconciler's */
    store_t *sdb; /* scheduler.db (attached to the loop; destroyed by harness_end) */
    store_query_t *sq; /* read-only query connection on sdb for harness_sql_int (lazily opened) */
    bus_pub_t *pub; /* the watcher's publisher */
    bus_sub_t *sub; /* the scheduler side's subscriber */
    watcher_t *w; /* the watcher logic */
    actlog_t *aud; /* the reconciler's auditor on sdb */
    reconciler_t *rec; /* the reconciler */
    workq_t *q; /* its work queue */
    bool started; /* harness_start() built everything (the watcher may still not be ready) */
#ifdef HARNESS_SUBMITTER
    store_t *subdb; /* submitter.db: the submitter's audit rows (destroyed by harness_end) */
    actlog_t *subaud; /* its auditor */
    k8s_client_t *subclient; /* its client */
    submitter_t *subm; /* the RayJob controller (dashboards through kubesim's service proxy) */
    workq_t *subq; /* its work queue */
    rj_settings_t subset; /* its settings (tests may change them before harness_start) */
#endif
#ifdef HARNESS_SERVEUP
    store_t *sudb; /* serve-upgrade.db: its audit rows (destroyed by harness_end) */
    store_t *sulease; /* leases.db: its deletion deadlines (destroyed by harness_end) */
    actlog_t *suaud; /* its auditor */
    k8s_client_t *suclient; /* its client */
    serveup_t *su; /* the RayService controller (dashboards through kubesim's proxy) */
    workq_t *suq; /* its work queue */
    rs_settings_t suset; /* its settings (tests may change them before harness_start) */
#endif
    void (*on_turn)(void); /* called after every loop turn of harness_wait (NULL: none) */
} harness_t;

/* A predicate of harness_wait. */
typedef bool (*harness_pred_fn)(void *arg);

/* Runs the loop for `ms` milliseconds. */
HARNESS_FN void harness_pump(harness_t *h, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end)
        loop_run_once(h->loop, HARNESS_TURN_MS);
}

/* Runs the loop until fn(arg) holds (checked after each turn, after h->on_turn) or `ms` pass.
 * Returns whether it held. */
HARNESS_FN bool harness_wait(harness_t *h, harness_pred_fn fn, void *arg, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end) {
        loop_run_once(h->loop, HARNESS_TURN_MS);
        if (h->on_turn)
            h->on_turn();
        if (fn(arg))
            return true;
    }
    return false;
}

/* $RF_SHARED_DIR when set and not empty, else the compile-time RF_SHARED_DIR. Borrowed. */
HARNESS_FN const char *harness_shared_dir(void)
{
    const char *shared = getenv("RF_SHARED_DIR");
    return shared && *shared ? shared : RF_SHARED_DIR;
}

/* The first document of the YAML file `path` (new reference), or NULL (the error is printed when
 * verbose). */
HARNESS_FN json_t *harness_load_yaml(harness_t *h, const char *path)
{
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, HARNESS_ERR_MAX);
    int rc = yaml_load_file(path, HARNESS_YAML_MAX, &docs, &err);
    if (rc != 0 && h->verbose)
        printf("  %s: %s\n", path, buf_str(&err));
    buf_free(&err);
    if (rc != 0)
        return NULL;
    json_t *d = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return d;
}

/* The first document of <shared>/kuberay/samples/<file> (new reference), or NULL. */
HARNESS_FN json_t *harness_load_sample(harness_t *h, const char *file)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/samples/%s", harness_shared_dir(), file);
    return harness_load_yaml(h, path);
}

typedef struct {
    int done, err; /* answered; its error (0: success) */
    char msg[HARNESS_MSG_MAX]; /* its message */
} harness_res_t;

HARNESS_FN void s_harness_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    harness_res_t *x = arg;
    x->done = 1;
    x->err = r->err;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message ? r->message : "");
}

/* Creates `obj` as `res` through client `c` and runs the loop until the answer (at most
 * o.wait_ms). Returns 0, the request's error, or ERR_TIMEOUT; the answer's message goes to `msg`
 * (`msize` bytes) when `msg` is not NULL. */
HARNESS_FN int harness_create(harness_t *h, k8s_client_t *c, const k8s_res_t *res,
                              const json_t *obj, char *msg, size_t msize)
{
    harness_res_t x = {0};
    int64_t id = k8s_create(c, res, obj, NULL, s_harness_done, &x);
    if (id < 0)
        return (int)id;
    int64_t end = loop_clock_ms() + h->o.wait_ms;
    while (!x.done && loop_clock_ms() < end)
        loop_run_once(h->loop, HARNESS_TURN_MS);
    if (msg)
        snprintf(msg, msize, "%s", x.msg);
    return x.done ? x.err : ERR_TIMEOUT;
}

/* Creates namespace `ns` through the admin client unless it exists. Returns 0 or the create's
 * error (printed). */
HARNESS_FN int harness_ensure_ns(harness_t *h, const char *ns)
{
    json_t *o = NULL;
    objstore_res_t *nsr = objstore_find(apiserver_store(h->api), "", "namespaces");
    if (nsr && objstore_get(apiserver_store(h->api), nsr, NULL, ns, &o, NULL) == 0) {
        json_decref(o);
        return 0;
    }
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", ns);
    k8s_res_t r = {.group = "", .version = "v1", .resource = "namespaces"};
    char msg[HARNESS_MSG_MAX];
    int rc = obj ? harness_create(h, h->admin, &r, obj, msg, sizeof(msg)) : ERR_NOMEM;
    json_decref(obj);
    if (rc == ERR_EXISTS)
        rc = 0;
    if (rc != 0)
        printf("  namespace %s: %s (%s)\n", ns, err_str(rc), rc == ERR_NOMEM ? "" : msg);
    return rc;
}

/* Applies the YAML file `path` as `kubectl create -n <ns> -f <path>` does: every document in
 * order (an empty one skipped), its kind resolved through kubesim's resource registry, created
 * through the admin client in `ns` (or the document's own namespace), each namespace created
 * first. A kind the cluster does not serve is refused like kubectl's "no matches for kind" and the
 * other documents still go in; its name is appended to `missing` (`msize` bytes, comma separated;
 * may be NULL). Returns the failed checks (a load or create error, printed). */
HARNESS_FN int harness_apply_file(harness_t *h, const char *path, const char *ns, char *missing,
                                  size_t msize)
{
    int failed = 0;
    if (missing && msize)
        missing[0] = '\0';
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, HARNESS_ERR_MAX);
    int rc = yaml_load_file(path, HARNESS_YAML_MAX, &docs, &err);
    if (rc != 0)
        printf("  %s: %s\n", path, buf_str(&err));
    buf_free(&err);
    CHECK(rc == 0);
    CHECK(harness_ensure_ns(h, ns) == 0);
    size_t k;
    json_t *doc;
    json_array_foreach(docs, k, doc)
    {
        if (!json_is_object(doc)) /* an empty document (trailing ---) */
            continue;
        const char *av = jx_str(doc, "apiVersion", ""), *kind = jx_str(doc, "kind", "");
        const char *slash = strchr(av, '/');
        char group[128];
        snprintf(group, sizeof(group), "%.*s", slash ? (int)(slash - av) : 0, av);
        objstore_res_t *res = objstore_find_kind(apiserver_store(h->api), group, kind);
        if (!res) { /* kubectl: no matches for kind "<kind>" in version "<apiVersion>" */
            if (missing && msize) {
                size_t len = strlen(missing);
                snprintf(missing + len, msize - len, "%s%s", len ? "," : "", kind);
            }
            continue;
        }
        const objstore_resdesc_t *d = objstore_res_desc(res);
        const char *dns = jx_str(doc, "metadata.namespace", ns);
        if (d->namespaced)
            CHECK(harness_ensure_ns(h, dns) == 0);
        k8s_res_t r = {.group = group,
                       .version = slash ? slash + 1 : av,
                       .resource = d->resource,
                       .namespace_ = d->namespaced ? dns : NULL};
        char msg[HARNESS_MSG_MAX];
        rc = harness_create(h, h->admin, &r, doc, msg, sizeof(msg));
        if (rc != 0)
            printf("  %s: create %s: %s (%s)\n", path, kind, err_str(rc), msg);
        CHECK(rc == 0);
    }
    json_decref(docs);
    return failed;
}

/* ---------- kubesim's store, read directly ---------- */

/* The store's resource group/resource (borrowed), or NULL. */
HARNESS_FN objstore_res_t *harness_res(harness_t *h, const char *group, const char *resource)
{
    return objstore_find(apiserver_store(h->api), group, resource);
}

/* The object ns/name of group/resource (new reference), or NULL. */
HARNESS_FN json_t *harness_get(harness_t *h, const char *group, const char *resource,
                               const char *ns, const char *name)
{
    json_t *o = NULL;
    objstore_res_t *r = harness_res(h, group, resource);
    if (!r || objstore_get(apiserver_store(h->api), r, ns, name, &o, NULL) != 0)
        return NULL;
    return o;
}

/* The objects of group/resource in `ns` (NULL: all namespaces), as a new array (empty when the
 * resource is unknown or the list fails). */
HARNESS_FN json_t *harness_list(harness_t *h, const char *group, const char *resource,
                                const char *ns)
{
    json_t *out = json_array();
    objstore_list_t l = {0};
    objstore_res_t *r = harness_res(h, group, resource);
    if (!r ||
        objstore_list(apiserver_store(h->api), r, &(objstore_list_opts_t){.ns = ns}, &l, NULL) != 0)
        return out;
    json_array_extend(out, l.items);
    objstore_list_free(&l);
    return out;
}

/* Label `k` of object `o` (borrowed), or NULL. */
HARNESS_FN const char *harness_label(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.labels"), k));
}

/* The pod is Running with condition Ready True. */
HARNESS_FN bool harness_pod_ready(const json_t *p)
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

/* How many pods of the array `pods` are ready (all of them when not `ready_only`). */
HARNESS_FN size_t harness_count_ready(const json_t *pods, bool ready_only)
{
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(pods, i, p) if (!ready_only || harness_pod_ready(p)) n++;
    return n;
}

/* An Event in `ns` about the object named `name` with `reason` exists (and, when `part` is not
 * NULL, its message contains `part`). */
HARNESS_FN bool harness_has_event(harness_t *h, const char *ns, const char *name,
                                  const char *reason, const char *part)
{
    json_t *all = harness_list(h, "", "events", ns);
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        if (!strcmp(jx_str(e, "reason", ""), reason) &&
            !strcmp(jx_str(e, "involvedObject.name", ""), name) &&
            (!part || strstr(jx_str(e, "message", ""), part)))
            found = true;
    }
    json_decref(all);
    return found;
}

/* The one integer `sql` yields on the scheduler's database (committed rows only); -1 when it
 * yields no row, a NULL, or fails, so that a check of the value cannot pass on a missing row. */
HARNESS_FN int64_t harness_sql_int(harness_t *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (!h->sq) /* one connection for every call: a poll loop calls this every 10 ms */
        h->sq = store_query_open(store_path(h->sdb), NULL, 0, NULL);
    if (h->sq && sqlite3_prepare_v2(store_query_handle(h->sq), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Changes RayCluster ns/name: fn(copy, arg) edits a copy, written through an update of the main
 * endpoint (the generation bumps). Returns 0, ERR_NOTFOUND or the update's error (its message is
 * printed when verbose). */
HARNESS_FN int harness_rc_modify(harness_t *h, const char *ns, const char *name,
                                 void (*fn)(json_t *rc, void *arg), void *arg)
{
    json_t *rc = harness_get(h, "ray.io", "rayclusters", ns, name);
    if (!rc)
        return ERR_NOTFOUND;
    json_t *n = json_deep_copy(rc);
    json_decref(rc);
    fn(n, arg);
    objstore_status_t st = {0};
    int r = objstore_update(apiserver_store(h->api), harness_res(h, "ray.io", "rayclusters"), ns,
                            name, &n, &(objstore_update_opts_t){.precond = OBJSTORE_PRECOND_NONE},
                            NULL, NULL, &st);
    json_decref(n);
    if (r != 0 && h->verbose)
        printf("  update failed: %s\n", st.message);
    return r;
}

/* ---------- setup and teardown ---------- */

/* Starts the process-wide pieces and kubesim (see the file comment) for program `name` with
 * options `o`, logging at `level`. Returns the failed checks; h->api is NULL when kubesim did not
 * start. */
HARNESS_FN int harness_init(harness_t *h, const char *name, bool verbose, log_level_t level,
                            const harness_opts_t *o)
{
    int failed = 0;
    h->o = *o;
    h->verbose = verbose;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup(name, level, STDERR_FILENO);
    h->loop = loop_new();
    h->zctx = zmq_ctx_new();
    snprintf(h->dir, sizeof(h->dir), "/tmp/rf-%.32s-XXXXXX", name);
    CHECK(h->loop && h->zctx && mkdtemp(h->dir) != NULL);
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = o->nodes;
    ko.create_ms = HARNESS_CREATE_MS;
    ko.ready_ms = HARNESS_READY_MS;
    ko.terminate_ms = HARNESS_TERMINATE_MS;
    const char *rbac = getenv(HARNESS_RBAC_ENV);
    h->rbac = rbac && *rbac ? rbac : NULL;
    char admin_token[65] = ""; /* RBAC mode: kubesim's admin token over TLS (random; unused by the
                                  test, whose admin client is on the plain port) */
    if (h->rbac) {
        unsigned char raw[32];
        FILE *ur = fopen("/dev/urandom", "rb");
        CHECK(ur && fread(raw, 1, sizeof(raw), ur) == sizeof(raw));
        if (ur)
            fclose(ur);
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(admin_token + 2 * i, 3, "%02x", raw[i]);
        printf("harness: RBAC mode, manifest %s (%s)\n", h->rbac, HARNESS_RBAC_ENV);
    }
    h->api =
        h->loop ? apiserver_new(h->loop, &(apiserver_opts_t){.simulate = true,
                                                             .nodes = o->nodes,
                                                             .kubelet = &ko,
                                                             .tls = h->rbac != NULL,
                                                             .token = h->rbac ? admin_token : NULL})
                : NULL;
    CHECK(h->api != NULL);
    if (!h->api)
        return failed;
    char text[1024];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
             "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
             "contexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
             "users: [{name: u, user: {}}]\n",
             apiserver_port(h->api));
    snprintf(h->kcpath, sizeof(h->kcpath), "%s/config", h->dir);
    FILE *f = fopen(h->kcpath, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return failed;
}

HARNESS_FN int s_harness_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    (void)sub;
    harness_t *h = arg;
    char key[RECONCILE_KEY_MAX];
    if (reconcile_note_change(h->rec, &msg->object_changed, key, sizeof(key)) == 0)
        workq_add(h->q, key);
#ifdef HARNESS_SUBMITTER
    if (h->subm)
        ctrl_queue_change(submitter_ctrl(h->subm), h->subq, &msg->object_changed);
#endif
#ifdef HARNESS_SERVEUP
    if (h->su)
        ctrl_queue_change(serveup_ctrl(h->su), h->suq, &msg->object_changed);
#endif
    return 0;
}

#ifdef HARNESS_SERVEUP
/* Builds the RayService controller and its work queue on the harness's client, stores and
 * settings (harness_start() calls it; a test calls it again after harness_serveup_stop() to
 * restart the controller as a new process would: nothing in memory carries over). Returns 0 or
 * ERR_NOMEM. */
HARNESS_FN int harness_serveup_start(harness_t *h)
{
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = h->o.concurrency;
    h->su = h->suclient && h->suaud && h->sulease
                ? serveup_new(h->loop, &(serveup_config_t){.base = {.cluster = HARNESS_CLUSTER,
                                                                    .observed = h->obs,
                                                                    .client = h->suclient,
                                                                    .audit = h->suaud,
                                                                    .events = true},
                                                           .deadlines = h->sulease,
                                                           .use_proxy = true,
                                                           .settings = &h->suset})
                : NULL;
    h->suq = h->su ? workq_new(h->loop, &qo, ctrl_fn, serveup_ctrl(h->su)) : NULL;
    return h->suq ? 0 : ERR_NOMEM;
}

/* Stops the RayService controller (its dashboard calls cancelled, its memory gone). */
HARNESS_FN void harness_serveup_stop(harness_t *h)
{
    workq_destroy(&h->suq);
    serveup_destroy(&h->su);
}
#endif

/* ---------- RBAC mode ---------- */

typedef struct {
    int done, err; /* answered; its error (0: success) */
    long status; /* its HTTP status */
    json_t *body; /* its decoded body (owned), or NULL */
} harness_call_t;

HARNESS_FN void s_harness_call_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    harness_call_t *x = arg;
    x->done = 1;
    x->err = r->err;
    x->status = r->status;
    x->body = json_incref(r->body);
}

/* Runs the loop until request `id` of client `c` (a negative error when it did not start) is
 * answered, at most o.wait_ms, cancelling it then. Returns 0, its error or ERR_TIMEOUT; x->body is
 * the caller's to free. */
HARNESS_FN int harness_call_wait(harness_t *h, k8s_client_t *c, int64_t id, harness_call_t *x)
{
    if (id < 0)
        return (int)id;
    int64_t end = loop_clock_ms() + h->o.wait_ms;
    while (!x->done && loop_clock_ms() < end)
        loop_run_once(h->loop, HARNESS_TURN_MS);
    if (!x->done)
        k8s_cancel(c, id); /* its callback must not write to *x later */
    return x->done ? x->err : ERR_TIMEOUT;
}

/* Writes `len` bytes of `data` to `path` (mode 0600). Returns 0 or ERR_IO (printed). */
HARNESS_FN int harness_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    bool ok = f && fchmod(fileno(f), 0600) == 0 && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        printf("  write %s failed\n", path);
    return ok ? 0 : ERR_IO;
}

/* RBAC mode's setup (see the file comment): as the admin, the namespace, the ServiceAccount and
 * the manifest h->rbac; a TokenRequest for the ServiceAccount; <dir>/ca.crt and <dir>/sa-config;
 * h->sakc. Returns the failed checks. */
HARNESS_FN int harness_rbac_setup(harness_t *h)
{
    int failed = 0;
    CHECK(harness_ensure_ns(h, HARNESS_SA_NS) == 0);
    json_t *sa = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ServiceAccount",
                           "metadata", "name", HARNESS_SA_NAME, "namespace", HARNESS_SA_NS);
    k8s_res_t sares = {.version = "v1", .resource = "serviceaccounts", .namespace_ = HARNESS_SA_NS};
    char msg[HARNESS_MSG_MAX];
    int rc = sa ? harness_create(h, h->admin, &sares, sa, msg, sizeof(msg)) : ERR_NOMEM;
    json_decref(sa);
    if (rc != 0)
        printf("  ServiceAccount %s/%s: %s (%s)\n", HARNESS_SA_NS, HARNESS_SA_NAME, err_str(rc),
               msg);
    CHECK(rc == 0);
    char missing[512];
    failed += harness_apply_file(h, h->rbac, HARNESS_SA_NS, missing, sizeof(missing));
    if (missing[0])
        printf("  %s: kinds kubesim does not serve: %s\n", h->rbac, missing);
    CHECK(missing[0] == '\0');

    /* The token: POST .../serviceaccounts/rayfleet/token (authentication.k8s.io/v1 TokenRequest) */
    json_t *tr = json_pack("{s:s, s:s, s:{s:I}}", "apiVersion", "authentication.k8s.io/v1", "kind",
                           "TokenRequest", "spec", "expirationSeconds", (json_int_t)3600);
    sares.name = HARNESS_SA_NAME;
    sares.subresource = "token";
    harness_call_t x = {0};
    rc = tr ? harness_call_wait(h, h->admin,
                                k8s_create(h->admin, &sares, tr, NULL, s_harness_call_done, &x), &x)
            : ERR_NOMEM;
    json_decref(tr);
    const char *token = jx_str(x.body, "status.token", "");
    if (rc != 0 || !*token)
        printf("  TokenRequest for %s/%s: %s (HTTP %ld)\n", HARNESS_SA_NS, HARNESS_SA_NAME,
               err_str(rc), x.status);
    CHECK(rc == 0 && *token && strlen(token) < HARNESS_TOKEN_MAX);

    /* <dir>/ca.crt and <dir>/sa-config */
    char capath[128];
    snprintf(capath, sizeof(capath), "%s/ca.crt", h->dir);
    buf_t pem;
    buf_init(&pem, 1 << 20);
    CHECK(apiserver_tls_pem(h->api, TLS_PEM_CA, &pem) == 0);
    CHECK(harness_write_file(capath, buf_str(&pem), pem.len) == 0);
    buf_free(&pem);
    char text[HARNESS_TOKEN_MAX + 1024];
    int n = snprintf(text, sizeof(text),
                     "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
                     "clusters: [{name: sim, cluster: {server: 'https://127.0.0.1:%d', "
                     "certificate-authority: ca.crt}}]\n"
                     "contexts: [{name: sa, context: {cluster: sim, user: sa}}]\n"
                     "users: [{name: sa, user: {token: '%s'}}]\n",
                     apiserver_tls_port(h->api), token);
    json_decref(x.body);
    snprintf(h->sakcpath, sizeof(h->sakcpath), "%s/sa-config", h->dir);
    CHECK(n > 0 && (size_t)n < sizeof(text) &&
          harness_write_file(h->sakcpath, text, (size_t)n) == 0);
    explicit_bzero(text, sizeof(text));
    buf_t err;
    buf_init(&err, HARNESS_ERR_MAX);
    rc = kubeconfig_load(h->sakcpath, NULL, &h->sakc, &err);
    if (rc != 0)
        printf("  %s: %s\n", h->sakcpath, buf_str(&err));
    buf_free(&err);
    CHECK(rc == 0);
    /* the refusals of the setup (none expected: it ran as the admin) are not the cell's */
    x = (harness_call_t){0};
    rc = harness_call_wait(h, h->admin,
                           k8s_raw(h->admin, "DELETE", "/kubesim/forbidden", NULL, NULL, 0, NULL,
                                   s_harness_call_done, &x),
                           &x);
    json_decref(x.body);
    CHECK(rc == 0);
    return failed;
}

/* RBAC mode's verdict: GET /kubesim/forbidden as the admin; CHECKs the total is 0, printing the
 * refused requests otherwise, and prints how many requests the cell's clients made. Returns the
 * failed checks. */
HARNESS_FN int harness_rbac_verdict(harness_t *h)
{
    int failed = 0;
    harness_call_t x = {0};
    int rc = harness_call_wait(h, h->admin,
                               k8s_raw(h->admin, "GET", "/kubesim/forbidden", NULL, NULL, 0, NULL,
                                       s_harness_call_done, &x),
                               &x);
    CHECK(rc == 0);
    json_t *total = json_object_get(x.body, "total");
    uint64_t reqs = 0;
    k8s_client_t *clients[] = {
        h->client,
#ifdef HARNESS_SUBMITTER
        h->subclient,
#endif
#ifdef HARNESS_SERVEUP
        h->suclient,
#endif
    };
    for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
        k8s_stats_t st = {0};
        if (clients[i])
            k8s_client_stats(clients[i], &st);
        reqs += st.requests;
    }
    watcher_stats_t ws = {0};
    if (h->w)
        watcher_stats(h->w, &ws);
    printf("harness: RBAC mode (%s as system:serviceaccount:%s:%s): %" PRIu64
           " controller requests, %" PRIu64 " watcher events, %lld forbidden\n",
           h->rbac, HARNESS_SA_NS, HARNESS_SA_NAME, reqs, ws.events_in,
           json_is_integer(total) ? (long long)json_integer_value(total) : -1LL);
    if (!json_is_integer(total) || json_integer_value(total) != 0) {
        char *dump = x.body ? json_dumps(x.body, JSON_INDENT(2)) : NULL;
        printf("harness: forbidden responses (GET /kubesim/forbidden):\n%s\n",
               dump ? dump : "(no answer)");
        free(dump);
    }
    CHECK(json_is_integer(total) && json_integer_value(total) == 0);
    json_decref(x.body);
    return failed;
}

/* Builds the clients, CRDs, databases, bus, watcher and reconciler (see the file comment) and
 * waits up to o.wait_ms for the watcher to be ready. Returns the failed checks; h->started tells
 * whether everything was built. */
HARNESS_FN int harness_start(harness_t *h)
{
    int failed = 0;
    char dbpath[256], schedpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/observed.db", h->dir);
    snprintf(schedpath, sizeof(schedpath), "%s/scheduler.db", h->dir);
    buf_t err;
    buf_init(&err, HARNESS_ERR_MAX);
    CHECK(kubeconfig_load(h->kcpath, NULL, &h->kc, &err) == 0);
    k8s_config_t acfg = {.qps = h->o.admin_qps, .burst = h->o.admin_qps};
    h->admin = h->kc ? k8s_client_new(h->loop, h->kc, h->o.admin_qps ? &acfg : NULL) : NULL;
    CHECK(h->admin != NULL);
    if (!h->admin)
        goto out;
    /* rayfleet's CRDs */
    const char *crds[] = {"ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml",
                          "ray.io_rayservices.yaml", "ray.io_raycronjobs.yaml"};
    for (size_t i = 0; i < sizeof(crds) / sizeof(crds[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/deploy/crds/%s", RF_SOURCE_DIR, crds[i]);
        json_t *crd = harness_load_yaml(h, path);
        CHECK(crd != NULL);
        k8s_res_t r = {.group = "apiextensions.k8s.io",
                       .version = "v1",
                       .resource = "customresourcedefinitions"};
        CHECK(crd && harness_create(h, h->admin, &r, crd, NULL, 0) == 0);
        json_decref(crd);
    }
    harness_pump(h, HARNESS_SETTLE_MS);
    /* the controllers' kubeconfig: the admin's, or in RBAC mode the ServiceAccount's */
    if (h->rbac)
        failed += harness_rbac_setup(h);
    const kubeconfig_t *ckc = h->rbac ? h->sakc : h->kc;
    const char *ckcpath = h->rbac ? h->sakcpath : h->kcpath;
    h->client =
        ckc ? k8s_client_new(h->loop, ckc, &(k8s_config_t){.qps = h->o.qps, .burst = h->o.qps})
            : NULL;
    CHECK(h->client != NULL);
    if (!h->client)
        goto out;

    int e = 0;
    h->wdb = store_open(dbpath, STORE_READWRITE, &e);
    h->obs = store_open(dbpath, STORE_READONLY, &e);
    h->sdb = store_open(schedpath, STORE_READWRITE, &e);
    CHECK(h->wdb && h->obs && h->sdb);
    if (!h->wdb || !h->obs || !h->sdb)
        goto out;
    store_attach_loop(h->sdb, h->loop);
    h->pub = bus_pub_new(
        h->loop, h->zctx,
        &(bus_options_t){.source = "watcher/it", .endpoint = "@" HARNESS_EP, .hwm = HARNESS_HWM});
    h->sub =
        bus_sub_new(h->loop, h->zctx, &(bus_options_t){.endpoint = HARNESS_EP, .hwm = HARNESS_HWM},
                    s_harness_on_msg, NULL, h);
    CHECK(h->pub && h->sub);
    if (!h->pub || !h->sub)
        goto out;
    for (uint32_t s = 0; s < HARNESS_SHARDS; s++)
        bus_sub_subscribe(h->sub, s);
    harness_pump(h, HARNESS_SETTLE_MS);
    watcher_cluster_t cl = {.name = HARNESS_CLUSTER, .kubeconfig = ckcpath};
    watcher_config_t wc = {.clusters = &cl,
                           .nclusters = 1,
                           .shards = HARNESS_SHARDS,
                           .store = h->wdb,
                           .pub = h->pub,
                           .backoff_base_ms = HARNESS_BACKOFF_BASE_MS,
                           .backoff_max_ms = HARNESS_BACKOFF_MAX_MS,
                           .qps = h->o.qps,
                           .burst = h->o.qps};
    h->w = watcher_new(h->loop, &wc, &err);
    CHECK(h->w != NULL);
    h->aud =
        actlog_new(h->sdb, &(actlog_actor_t){.service = "scheduler", .replica = "scheduler/0"});
    CHECK(h->aud != NULL);
    h->rec = reconcile_new(h->loop, &(reconcile_config_t){.cluster = HARNESS_CLUSTER,
                                                          .observed = h->obs,
                                                          .client = h->client,
                                                          .audit = h->aud,
                                                          .desired = h->o.desired ? h->sdb : NULL,
                                                          .gates = h->o.gates,
                                                          .events = true});
    CHECK(h->rec != NULL);
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = h->o.concurrency;
    h->q = h->rec ? workq_new(h->loop, &qo, reconcile_fn, h->rec) : NULL;
    CHECK(h->q != NULL);
    if (!h->w || !h->q || !h->aud)
        goto out;
#ifdef HARNESS_SUBMITTER
    {
        char subpath[256];
        snprintf(subpath, sizeof(subpath), "%s/submitter.db", h->dir);
        h->subdb = store_open(subpath, STORE_READWRITE, &e);
        CHECK(h->subdb != NULL);
        if (h->subdb)
            store_attach_loop(h->subdb, h->loop);
        h->subaud = h->subdb ? actlog_new(h->subdb, &(actlog_actor_t){.service = "submitter",
                                                                      .replica = "submitter/0"})
                             : NULL;
        h->subclient =
            k8s_client_new(h->loop, ckc, &(k8s_config_t){.qps = h->o.qps, .burst = h->o.qps});
        if (h->subset.grace_s == 0)
            rjstate_settings_default(&h->subset);
        h->subm =
            h->subclient && h->subaud
                ? submitter_new(h->loop, &(submitter_config_t){.base = {.cluster = HARNESS_CLUSTER,
                                                                        .observed = h->obs,
                                                                        .client = h->subclient,
                                                                        .audit = h->subaud,
                                                                        .events = true},
                                                               .use_proxy = true,
                                                               .job_poll_ms = 200,
                                                               .settings = &h->subset})
                : NULL;
        CHECK(h->subm != NULL);
        h->subq = h->subm ? workq_new(h->loop, &qo, ctrl_fn, submitter_ctrl(h->subm)) : NULL;
        CHECK(h->subq != NULL);
        if (!h->subq)
            goto out;
    }
#endif
#ifdef HARNESS_SERVEUP
    {
        char supath[256];
        snprintf(supath, sizeof(supath), "%s/serve-upgrade.db", h->dir);
        h->sudb = store_open(supath, STORE_READWRITE, &e);
        CHECK(h->sudb != NULL);
        if (h->sudb)
            store_attach_loop(h->sudb, h->loop);
        snprintf(supath, sizeof(supath), "%s/leases.db", h->dir);
        h->sulease = store_open(supath, STORE_READWRITE | STORE_LEASES, &e);
        CHECK(h->sulease != NULL);
        h->suaud = h->sudb ? actlog_new(h->sudb, &(actlog_actor_t){.service = "serve-upgrade",
                                                                   .replica = "serve-upgrade/0"})
                           : NULL;
        h->suclient =
            k8s_client_new(h->loop, ckc, &(k8s_config_t){.qps = h->o.qps, .burst = h->o.qps});
        if (!h->suset.version)
            rsstate_settings_default(&h->suset);
        CHECK(harness_serveup_start(h) == 0);
        if (!h->suq)
            goto out;
    }
#endif
    h->started = true;
    CHECK(watcher_start(h->w) == 0);
    int64_t end = loop_clock_ms() + h->o.wait_ms;
    while (!watcher_ready(h->w) && loop_clock_ms() < end)
        loop_run_once(h->loop, HARNESS_TURN_MS);
    CHECK(watcher_ready(h->w));
out:
    buf_free(&err);
    return failed;
}

/* Destroys what harness_start() built except the two stores written on the loop (wdb, sdb),
 * which harness_end() destroys after the loop. In RBAC mode it first checks kubesim answered no
 * request with 403 (harness_rbac_verdict). Returns the failed checks. */
HARNESS_FN int harness_stop(harness_t *h)
{
    int failed = 0;
    if (h->rbac && h->admin && h->api)
        failed += harness_rbac_verdict(h);
#ifdef HARNESS_SERVEUP
    harness_serveup_stop(h); /* cancels its dashboard calls through its client */
    k8s_client_destroy(&h->suclient);
    actlog_destroy(&h->suaud);
#endif
#ifdef HARNESS_SUBMITTER
    workq_destroy(&h->subq);
    submitter_destroy(&h->subm); /* cancels its dashboard calls through its client */
    k8s_client_destroy(&h->subclient);
    actlog_destroy(&h->subaud);
#endif
    workq_destroy(&h->q);
    k8s_client_destroy(&h->client);
    reconcile_destroy(&h->rec);
    actlog_destroy(&h->aud);
    watcher_destroy(&h->w);
    bus_sub_destroy(&h->sub);
    bus_pub_destroy(&h->pub);
    store_destroy(&h->obs);
    k8s_client_destroy(&h->admin);
    kubeconfig_destroy(&h->kc);
    kubeconfig_destroy(&h->sakc);
    h->started = false;
    return failed;
}

/* Destroys kubesim, the ZeroMQ context, the loop and then the stores, removes the dir and stops
 * curl. Call harness_stop() first. */
HARNESS_FN void harness_end(harness_t *h)
{
    apiserver_destroy(&h->api);
    if (h->zctx)
        zmq_ctx_term(h->zctx);
    h->zctx = NULL;
    loop_destroy(&h->loop);
    store_query_close(&h->sq);
    store_destroy(&h->wdb);
    store_destroy(&h->sdb);
#ifdef HARNESS_SUBMITTER
    store_destroy(&h->subdb);
#endif
#ifdef HARNESS_SERVEUP
    store_destroy(&h->sudb);
    store_destroy(&h->sulease);
#endif
    if (h->dir[0] && strstr(h->dir, "XXXXXX") == NULL) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
        if (system(cmd) != 0)
            printf("cleanup of %s failed\n", h->dir);
    }
    curl_global_cleanup();
}

#endif
