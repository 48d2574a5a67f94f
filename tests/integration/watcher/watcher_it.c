/*
 * watcher_it: the watcher logic (services/watcher) against kubesim's API server in-process, with
 * a bus subscriber on the same loop collecting the ObjectChanged events.
 *
 * Checks: RayCluster, pod and service changes are reflected in SQLite and on the bus in order
 * (ADDED before MODIFIED before DELETED for one object, and every event's row already committed
 * when the event arrives, read through a second, read-only connection); a pod's event carries
 * its RayCluster's key, uid and shard; unlabelled pods are not watched; an EndpointSlice made by
 * kubesim's controller is published under the RayCluster of its Service; a RayJob's RayCluster
 * and that cluster's pod are published under their own owner's key and under the RayJob's (its
 * shard), an owner cycle under the own key only; Services labelled by origin without created-by
 * (a RayService's head and serve Services, a RayJob's head Service) and their EndpointSlices have
 * rows owned by the RayService / RayJob and events under its key (a slice change included), a
 * created-by Service with origin labels is seen once, a Service moved between the two selectors
 * keeps its row, and a restart deletes the stale rows of one selector only; /readyz is 503 until a
 * late-created CRD syncs, and /metrics (common/opsrv) shows rayfleet_watcher_ready 0 then 1 and
 * the published-events counter as watcher_stats() counts it; after a forced 410 with changes in the
 * gap, after dropped watches, under 30% injected errors with latency, and after a restart with
 * deletions while down, the observed table equals the server's objects exactly ((kind, ns, name,
 * uid, resourceVersion)). The basic sequence runs again over TLS with a bearer token and with a
 * client certificate.
 *
 * Usage: watcher_it [-v]. Exit 0 when every check passes.
 */
#include "apiserver.h"
#include "bus.h"
#include "controllers.h"
#include "err.h"
#include "json.h"
#include "jproj.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "metrics.h"
#include "objstore.h"
#include "opsrv.h"
#include "selftest.h"
#include "store.h"
#include "tls.h"
#include "watcher.h"
#include "yaml.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#define IT_WAIT_MS 60000 /* longest wait for one step: a ceiling (ASan and load) */
#define IT_SHARDS 256 /* shards used by the test */
#define IT_MAX_EVENTS 100000 /* events recorded */

static loop_t *g_loop;
static void *g_zctx;
static bool g_verbose;
static char g_dir[64];

/* One received event (copied). */
typedef struct {
    char kind[32], ns[64], name[128], uid[64], rv[32], ckind[32], cname[128], cuid[64];
    int type;
    uint32_t shard;
    uint64_t id;
    int64_t gen;
} rec_t;

typedef struct {
    store_t *ro; /* read-only connection to the watcher's database */
    apiserver_t *api; /* the server */
    const char *cluster; /* cluster name expected */
    rec_t *ev; /* events received */
    size_t n; /* how many */
    int missing_rows; /* events whose row was not committed when they arrived */
    int bad_shard; /* events whose shard disagrees with bus_shard_of */
    uint64_t last_id; /* last event id */
    int id_backwards; /* ids that did not increase */
} col_t;

static void s_cp(char *dst, size_t cap, envwire_str_t v)
{
    size_t n = v.n < cap - 1 ? v.n : cap - 1;
    if (n)
        memcpy(dst, v.p, n);
    dst[n] = '\0';
}

/* The server's current resourceVersion of the object (kind as in rows), 0 when absent. A row
 * missing when its event arrives is only legitimate when a later change in the same batch
 * deleted it, i.e. when the server no longer holds the object at the event's version. */
static long long s_server_rv(const col_t *c, const char *kind, const char *ns, const char *name)
{
    objstore_t *s = apiserver_store(c->api);
    objstore_res_t *r = objstore_find_kind(s,
                                           !strcmp(kind, "Pod") || !strcmp(kind, "Service") ? ""
                                           : !strcmp(kind, "Job")           ? "batch"
                                           : !strcmp(kind, "EndpointSlice") ? "discovery.k8s.io"
                                                                            : "ray.io",
                                           kind);
    json_t *o = NULL;
    if (!r || objstore_get(s, r, ns, name, &o, NULL) != 0)
        return 0;
    long long rv = atoll(jx_str(o, "metadata.resourceVersion", "0"));
    json_decref(o);
    return rv;
}

static int s_on_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    col_t *c = arg;
    if (c->n >= IT_MAX_EVENTS)
        return 0;
    rec_t *r = &c->ev[c->n++];
    const envwire_object_changed_t *oc = &msg->object_changed;
    s_cp(r->kind, sizeof(r->kind), oc->kind);
    s_cp(r->ns, sizeof(r->ns), oc->namespace_);
    s_cp(r->name, sizeof(r->name), oc->name);
    s_cp(r->uid, sizeof(r->uid), oc->uid);
    s_cp(r->rv, sizeof(r->rv), oc->resource_version);
    s_cp(r->ckind, sizeof(r->ckind), oc->child_kind);
    s_cp(r->cname, sizeof(r->cname), oc->child_name);
    s_cp(r->cuid, sizeof(r->cuid), oc->child_uid);
    char cl[64];
    s_cp(cl, sizeof(cl), oc->cluster);
    r->type = oc->type;
    r->shard = oc->shard;
    r->id = oc->event_id;
    r->gen = oc->generation;
    if (r->id <= c->last_id)
        c->id_backwards++;
    c->last_id = r->id;
    if (r->shard != bus_shard_of(cl, r->ns, r->name, IT_SHARDS))
        c->bad_shard++;
    /* the row of the changed object must be committed already */
    const char *kind = r->ckind[0] ? r->ckind : r->kind;
    const char *name = r->ckind[0] ? r->cname : r->name;
    store_observed_t *row = NULL;
    int rc = store_observed_get(c->ro, cl, kind, r->ns, name, &row);
    long long erv = atoll(r->rv);
    if (r->type == 3) {
        /* deleted: gone, or recreated / changed since (a newer RV); at the same RV only when it
         * left one selector of its kind for the other (the server holds it at that RV or later) */
        long long have = rc == 0 ? atoll(row->resource_version) : 0;
        if (rc == 0 && (have < erv || (have == erv && s_server_rv(c, kind, r->ns, name) < erv)))
            c->missing_rows++;
    } else if (rc == 0 ? atoll(row->resource_version) < erv
                       : s_server_rv(c, kind, r->ns, name) == erv) {
        c->missing_rows++;
        if (g_verbose)
            printf("  row missing for event %s %s/%s rv %s\n", kind, r->ns, name, r->rv);
    }
    store_observed_free(&row);
    return 0;
}

/* ---------- kubesim helpers ---------- */

static objstore_res_t *s_res(apiserver_t *api, const char *group, const char *resource)
{
    return objstore_find(apiserver_store(api), group, resource);
}

static json_t *s_put(apiserver_t *api, const char *group, const char *resource, const char *ns,
                     json_t *obj)
{
    objstore_t *s = apiserver_store(api);
    objstore_res_t *r = s_res(api, group, resource);
    const char *name = jx_str(obj, "metadata.name", "");
    json_t *cur = NULL, *out = NULL;
    if (!r) {
        json_decref(obj);
        return NULL;
    }
    if (objstore_get(s, r, ns, name, &cur, NULL) == 0) {
        json_t *n = json_deep_copy(cur);
        json_decref(cur);
        json_object_update(n, obj);
        json_t *meta = json_deep_copy(jx_get(obj, "metadata"));
        json_object_set_new(n, "metadata", meta);
        objstore_status_t st = {0};
        int rc = objstore_update(s, r, ns, name, &n,
                                 &(objstore_update_opts_t){.precond = OBJSTORE_PRECOND_NONE}, &out,
                                 NULL, &st);
        if (rc != 0 && g_verbose)
            printf("  update %s %s failed: %s\n", resource, name, st.message);
        json_decref(obj);
    } else {
        objstore_create(s, r, ns, &obj, &out, NULL);
    }
    return out;
}

static void s_del(apiserver_t *api, const char *group, const char *resource, const char *ns,
                  const char *name)
{
    objstore_delete(apiserver_store(api), s_res(api, group, resource), ns, name,
                    &(objstore_delete_opts_t){.grace_set = true, .grace_seconds = 0}, NULL, NULL,
                    NULL);
}

static json_t *s_raycluster(const char *name, const char *val)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:{s:{s:[{s:s, s:s}]}}}}}", "apiVersion",
                     "ray.io/v1", "kind", "RayCluster", "metadata", "name", name, "annotations",
                     "v", val, "spec", "headGroupSpec", "template", "spec", "containers", "name",
                     "ray-head", "image", "rayproject/ray");
}

/* A RayJob, owned (controller) by the Ray object okind/oname/ouid when okind is given. */
static json_t *s_rayjob(const char *name, const char *okind, const char *oname, const char *ouid)
{
    json_t *meta = json_pack("{s:s}", "name", name);
    if (okind)
        json_object_set_new(meta, "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "ray.io/v1",
                                      "kind", okind, "name", oname, "uid", ouid, "controller", 1));
    return json_pack("{s:s, s:s, s:o, s:{s:s}}", "apiVersion", "ray.io/v1", "kind", "RayJob",
                     "metadata", meta, "spec", "entrypoint", "python job.py");
}

/* s_raycluster() owned (controller) by the RayJob jname/juid. */
static json_t *s_raycluster_of(const char *name, const char *jname, const char *juid)
{
    json_t *rc = s_raycluster(name, "1");
    json_object_set_new(jx_get(rc, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "ray.io/v1", "kind",
                                  "RayJob", "name", jname, "uid", juid, "controller", 1));
    return rc;
}

static json_t *s_pod(const char *name, const char *cluster, const char *type, const char *owner_uid,
                     const char *val)
{
    json_t *labels = json_object();
    if (cluster)
        json_object_set_new(labels, "ray.io/cluster", json_string(cluster));
    if (type)
        json_object_set_new(labels, "ray.io/node-type", json_string(type));
    json_object_set_new(labels, "v", json_string(val));
    json_t *meta = json_pack("{s:s, s:o}", "name", name, "labels", labels);
    if (owner_uid && cluster)
        json_object_set_new(meta, "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "ray.io/v1",
                                      "kind", "RayCluster", "name", cluster, "uid", owner_uid,
                                      "controller", 1));
    return json_pack("{s:s, s:s, s:o, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1", "kind", "Pod",
                     "metadata", meta, "spec", "containers", "name", "c", "image", "busybox");
}

static json_t *s_service(const char *name, const char *cluster)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:{s:s}, s:[{s:s, s:i}]}}", "apiVersion",
                     "v1", "kind", "Service", "metadata", "name", name, "labels", "ray.io/cluster",
                     cluster, "app.kubernetes.io/created-by", "kuberay-operator", "spec",
                     "selector", "ray.io/cluster", cluster, "ports", "name", "dashboard", "port",
                     8265);
}

/* A RayService. */
static json_t *s_rayservice(const char *name)
{
    return json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:{s:{s:{s:{s:[{s:s, s:s}]}}}}}}", "apiVersion",
                     "ray.io/v1", "kind", "RayService", "metadata", "name", name, "spec",
                     "serveConfigV2", "applications: []", "rayClusterConfig", "headGroupSpec",
                     "template", "spec", "containers", "name", "ray-head", "image",
                     "rayproject/ray");
}

/* A Service KubeRay labels by origin, as a RayService's or a RayJob's: labels `labels` (stolen)
 * plus ray.io/originated-from-cr-name=<cr> and ray.io/originated-from-crd=<crd>, no created-by
 * unless `labels` has it; controller-owned by the <crd> named cr (uid ouid); selector `sel`
 * (stolen); one port "serve" 8000. */
static json_t *s_service_origin(const char *name, const char *crd, const char *cr, const char *ouid,
                                json_t *labels, json_t *sel)
{
    json_object_set_new(labels, "ray.io/originated-from-cr-name", json_string(cr));
    json_object_set_new(labels, "ray.io/originated-from-crd", json_string(crd));
    return json_pack("{s:s, s:s, s:{s:s, s:o, s:[{s:s, s:s, s:s, s:s, s:b}]}, s:{s:o, s:[{s:s, "
                     "s:i}]}}",
                     "apiVersion", "v1", "kind", "Service", "metadata", "name", name, "labels",
                     labels, "ownerReferences", "apiVersion", "ray.io/v1", "kind", crd, "name", cr,
                     "uid", ouid, "controller", 1, "spec", "selector", sel, "ports", "name",
                     "serve", "port", 8000);
}

/* The watched kinds and how the test filters the server's objects like the watcher does. */
typedef struct {
    const char *group, *resource, *kind;
    int filter; /* 0 none, 1 pod node-type, 2 created-by, 3 created-by or originated-from-crd */
} wk_t;

static const wk_t s_wk[] = {
    {"ray.io", "rayclusters", "RayCluster", 0},
    {"ray.io", "rayjobs", "RayJob", 0},
    {"ray.io", "rayservices", "RayService", 0},
    {"ray.io", "raycronjobs", "RayCronJob", 0},
    {"", "pods", "Pod", 1},
    {"", "services", "Service", 3},
    {"batch", "jobs", "Job", 2},
    {"discovery.k8s.io", "endpointslices", "EndpointSlice", 3},
};

static bool s_filter(const json_t *o, void *arg)
{
    int f = (int)(intptr_t)arg;
    json_t *l = jx_get(o, "metadata.labels");
    if (f == 1) {
        const char *t = json_string_value(json_object_get(l, "ray.io/node-type"));
        return t && (!strcmp(t, "head") || !strcmp(t, "worker") || !strcmp(t, "redis-cleanup"));
    }
    if (f == 2 || f == 3) {
        const char *t = json_string_value(json_object_get(l, "app.kubernetes.io/created-by"));
        return (t && !strcmp(t, "kuberay-operator")) ||
               (f == 3 && json_object_get(l, "ray.io/originated-from-crd"));
    }
    return true;
}

/* True when the observed rows of `cluster` equal the server's watched objects. */
static bool s_equal(apiserver_t *api, store_query_t *q, const char *cluster, bool verbose)
{
    json_t *want = json_object(), *have = json_object();
    for (size_t k = 0; k < sizeof(s_wk) / sizeof(s_wk[0]); k++) {
        objstore_res_t *r = s_res(api, s_wk[k].group, s_wk[k].resource);
        if (!r)
            continue;
        objstore_list_t l = {0};
        objstore_list_opts_t lo = {.filter = s_filter,
                                   .filter_arg = (void *)(intptr_t)s_wk[k].filter};
        if (objstore_list(apiserver_store(api), r, &lo, &l, NULL) != 0)
            continue;
        size_t i;
        json_t *it;
        json_array_foreach(l.items, i, it)
        {
            char key[512];
            snprintf(key, sizeof(key), "%s|%s|%s|%s|%s", s_wk[k].kind,
                     jx_str(it, "metadata.namespace", ""), jx_str(it, "metadata.name", ""),
                     jx_str(it, "metadata.uid", ""), jx_str(it, "metadata.resourceVersion", ""));
            json_object_set_new(want, key, json_true());
        }
        objstore_list_free(&l);
    }
    sqlite3_stmt *st = NULL;
    if (q && sqlite3_prepare_v2(store_query_handle(q),
                                "SELECT kind, namespace, name, uid, resource_version FROM "
                                "observed_objects WHERE cluster = ?1",
                                -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            char key[512];
            snprintf(key, sizeof(key), "%s|%s|%s|%s|%s", sqlite3_column_text(st, 0),
                     sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
                     sqlite3_column_text(st, 3), sqlite3_column_text(st, 4));
            json_object_set_new(have, key, json_true());
        }
    }
    sqlite3_finalize(st);
    bool eq = json_equal(want, have);
    if (!eq && verbose) {
        const char *key;
        json_t *v;
        printf("  server %zu objects, sqlite %zu rows\n", json_object_size(want),
               json_object_size(have));
        int shown = 0;
        json_object_foreach(want, key, v) if (!json_object_get(have, key) && shown++ < 5)
            printf("    missing in sqlite: %s\n", key);
        json_object_foreach(have, key, v) if (!json_object_get(want, key) && shown++ < 10)
            printf("    extra in sqlite:   %s\n", key);
    }
    json_decref(want);
    json_decref(have);
    return eq;
}

/* Waits until the watcher's rows (read through a query connection on ro's file) equal the
 * server's objects. */
static bool s_wait_equal(apiserver_t *api, store_t *ro, const char *cluster)
{
    store_query_t *q = store_query_open(store_path(ro), NULL, 0, NULL);
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    bool eq = false;
    while (!eq && loop_clock_ms() < end) {
        loop_run_once(g_loop, 20);
        eq = s_equal(api, q, cluster, false);
    }
    if (!eq)
        s_equal(api, q, cluster, true);
    store_query_close(&q);
    return eq;
}

static void s_pump(int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end)
        loop_run_once(g_loop, 10);
}

static bool s_wait_ready(watcher_t *w)
{
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (loop_clock_ms() < end && !watcher_ready(w))
        loop_run_once(g_loop, 20);
    return watcher_ready(w);
}

/* ---------- CRDs ---------- */

typedef struct {
    int done, err;
} res_t;

static void s_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    res_t *x = arg;
    x->done = 1;
    x->err = r->err;
}

/* Creates the CRD of `file` (in $RF_SHARED_DIR/kuberay/crd) through the API. */
static int s_create_crd(k8s_client_t *c, const char *file)
{
    const char *shared = getenv("RF_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/crd/%s", shared ? shared : RF_SHARED_DIR, file);
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    int rc = yaml_load_file(path, 16u << 20, &docs, &err);
    buf_free(&err);
    if (rc != 0)
        return rc;
    k8s_res_t crds = {
        .group = "apiextensions.k8s.io", .version = "v1", .resource = "customresourcedefinitions"};
    res_t x = {0};
    int64_t id = k8s_create(c, &crds, json_array_get(docs, 0), NULL, s_done, &x);
    json_decref(docs);
    if (id < 0)
        return (int)id;
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (!x.done && loop_clock_ms() < end)
        loop_run_once(g_loop, 20);
    return x.done ? x.err : ERR_TIMEOUT;
}

/* ---------- health ---------- */

/* GETs path from 127.0.0.1:port (blocking; test only). Returns the status or -1. */
static int s_http_get(int port, const char *path, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (send(fd, req, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    int64_t end = loop_clock_ms() + 5000;
    while (len < cap - 1 && loop_clock_ms() < end) {
        loop_run_once(g_loop, 5);
        ssize_t r = recv(fd, body + len, cap - 1 - len, MSG_DONTWAIT);
        if (r > 0)
            len += (size_t)r;
        else if (r == 0)
            break;
    }
    body[len] = '\0';
    close(fd);
    int status = -1;
    if (strncmp(body, "HTTP/1.1 ", 9) == 0)
        status = (int)strtol(body + 9, NULL, 10);
    return status;
}

/* ---------- scenario ---------- */

static const char *s_write_kubeconfig(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* Events recorded for (child or owner) name, as "A,M,D" letters. */
static void s_history(const col_t *c, const char *kind, const char *name, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->n && len + 2 < cap; i++) {
        const rec_t *r = &c->ev[i];
        const char *k = r->ckind[0] ? r->ckind : r->kind;
        const char *n = r->ckind[0] ? r->cname : r->name;
        if (strcmp(k, kind) || strcmp(n, name) || r->type == 4)
            continue;
        out[len++] = "?AMDR"[r->type < 5 ? r->type : 0];
        out[len] = '\0';
    }
}

static const rec_t *s_last(const col_t *c, const char *ckind, const char *cname)
{
    for (size_t i = c->n; i-- > 0;)
        if (!strcmp(c->ev[i].ckind, ckind) && !strcmp(c->ev[i].cname, cname))
            return &c->ev[i];
    return NULL;
}

/* Events published under the key kind/name about the object ckind/cname ("" ckind: the key's
 * object itself) of event type `type` (0: any but RESYNC). */
static int s_count(const col_t *c, const char *kind, const char *name, const char *ckind,
                   const char *cname, int type)
{
    int n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const rec_t *r = &c->ev[i];
        if (!strcmp(r->kind, kind) && !strcmp(r->name, name) && !strcmp(r->ckind, ckind) &&
            (!*ckind || !strcmp(r->cname, cname)) && (type ? r->type == type : r->type != 4))
            n++;
    }
    return n;
}

/* The last event under the key kind/name about ckind/cname, NULL when none. */
static const rec_t *s_last_under(const col_t *c, const char *kind, const char *name,
                                 const char *ckind, const char *cname)
{
    for (size_t i = c->n; i-- > 0;) {
        const rec_t *r = &c->ev[i];
        if (!strcmp(r->kind, kind) && !strcmp(r->name, name) && !strcmp(r->ckind, ckind) &&
            !strcmp(r->cname, cname))
            return r;
    }
    return NULL;
}

/* A RayJob's RayCluster and its pod are published under their owner and under the RayJob (the
 * top owner); an owner cycle publishes under the object's own key only. Returns the failed-check
 * count. */
static int s_top_owner_checks(apiserver_t *api, store_t *ro, watcher_t *w, const col_t *col)
{
    int failed = 0;
    json_t *rj = s_put(api, "ray.io", "rayjobs", "default", s_rayjob("rj1", NULL, NULL, NULL));
    CHECK(rj != NULL);
    char rjuid[64], rcuid[64];
    snprintf(rjuid, sizeof(rjuid), "%s", jx_str(rj, "metadata.uid", ""));
    json_decref(rj);
    CHECK(s_wait_equal(api, ro, "c1")); /* the RayJob is cached before its cluster arrives */
    json_t *rc =
        s_put(api, "ray.io", "rayclusters", "default", s_raycluster_of("rj1-rc", "rj1", rjuid));
    CHECK(rc != NULL);
    snprintf(rcuid, sizeof(rcuid), "%s", jx_str(rc, "metadata.uid", ""));
    json_decref(rc);
    CHECK(s_wait_equal(api, ro, "c1"));
    json_decref(
        s_put(api, "", "pods", "default", s_pod("rj1-rc-head", "rj1-rc", "head", rcuid, "1")));
    json_decref(
        s_put(api, "", "pods", "default", s_pod("rj1-rc-head", "rj1-rc", "head", rcuid, "2")));
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    uint32_t rj_shard = bus_shard_of("c1", "default", "rj1", IT_SHARDS);
    uint32_t rc_shard = bus_shard_of("c1", "default", "rj1-rc", IT_SHARDS);
    /* the RayCluster: under its own key, and under the RayJob's with the cluster as the child */
    CHECK(s_count(col, "RayCluster", "rj1-rc", "", "", 1) == 1);
    CHECK(s_count(col, "RayJob", "rj1", "RayCluster", "rj1-rc", 1) == 1);
    const rec_t *e = s_last_under(col, "RayJob", "rj1", "RayCluster", "rj1-rc");
    CHECK(e && !strcmp(e->uid, rjuid) && !strcmp(e->cuid, rcuid) && e->gen >= 1 &&
          e->shard == rj_shard);
    /* its pod: under the RayCluster and under the RayJob, added then modified on both keys */
    CHECK(s_count(col, "RayCluster", "rj1-rc", "Pod", "rj1-rc-head", 1) == 1);
    CHECK(s_count(col, "RayCluster", "rj1-rc", "Pod", "rj1-rc-head", 2) == 1);
    CHECK(s_count(col, "RayJob", "rj1", "Pod", "rj1-rc-head", 1) == 1);
    CHECK(s_count(col, "RayJob", "rj1", "Pod", "rj1-rc-head", 2) == 1);
    e = s_last_under(col, "RayCluster", "rj1-rc", "Pod", "rj1-rc-head");
    CHECK(e && !strcmp(e->uid, rcuid) && e->shard == rc_shard);
    e = s_last_under(col, "RayJob", "rj1", "Pod", "rj1-rc-head");
    CHECK(e && !strcmp(e->uid, rjuid) && e->gen >= 1 && e->shard == rj_shard && e->type == 2);
    /* a RayCluster without a Ray owner has no second key */
    CHECK(s_count(col, "RayJob", "rj1", "RayCluster", "rc1", 0) == 0);
    for (size_t i = 0; i < col->n; i++)
        CHECK(strcmp(col->ev[i].ckind, "Pod") || strncmp(col->ev[i].cname, "rc1-", 4) ||
              !strcmp(col->ev[i].kind, "RayCluster"));
    /* deleting the pod is published on both keys too */
    s_del(api, "", "pods", "default", "rj1-rc-head");
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    CHECK(s_count(col, "RayCluster", "rj1-rc", "Pod", "rj1-rc-head", 3) == 1);
    CHECK(s_count(col, "RayJob", "rj1", "Pod", "rj1-rc-head", 3) == 1);

    /* a cycle: RayJob cyc owned by RayCluster cyc-rc, itself owned by the RayJob */
    watcher_stats_t ws0, ws1;
    watcher_stats(w, &ws0);
    json_t *cj = s_put(api, "ray.io", "rayjobs", "default", s_rayjob("cyc", NULL, NULL, NULL));
    char cjuid[64], ccuid[64];
    snprintf(cjuid, sizeof(cjuid), "%s", jx_str(cj, "metadata.uid", ""));
    json_decref(cj);
    CHECK(s_wait_equal(api, ro, "c1"));
    json_t *cc =
        s_put(api, "ray.io", "rayclusters", "default", s_raycluster_of("cyc-rc", "cyc", cjuid));
    snprintf(ccuid, sizeof(ccuid), "%s", jx_str(cc, "metadata.uid", ""));
    json_decref(cc);
    CHECK(s_wait_equal(api, ro, "c1"));
    json_decref(
        s_put(api, "ray.io", "rayjobs", "default", s_rayjob("cyc", "RayCluster", "cyc-rc", ccuid)));
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    watcher_stats(w, &ws1);
    CHECK(ws1.owner_chains_cut >= ws0.owner_chains_cut + 1);
    CHECK(s_count(col, "RayJob", "cyc", "", "", 2) == 1); /* the update, under its own key */
    CHECK(s_count(col, "RayCluster", "cyc-rc", "RayJob", "cyc", 0) == 0);
    CHECK(s_count(col, "RayJob", "cyc", "RayCluster", "cyc-rc", 1) == 1); /* before the cycle */

    /* depth: a chain of WATCHER_OWNER_DEPTH references reaches its top; one more is cut */
    for (int chain = 0; chain < 2; chain++) {
        int len = WATCHER_OWNER_DEPTH + chain; /* references from <p>0 to its top */
        char puid[64] = "", prev[32] = "";
        for (int i = len; i >= 0; i--) { /* top first: each owner is cached before its child */
            char n[32];
            snprintf(n, sizeof(n), "%s%d", chain ? "deep" : "chain", i);
            json_t *o = s_put(api, "ray.io", "rayjobs", "default",
                              s_rayjob(n, *prev ? "RayJob" : NULL, prev, puid));
            CHECK(o != NULL);
            snprintf(puid, sizeof(puid), "%s", jx_str(o, "metadata.uid", ""));
            snprintf(prev, sizeof(prev), "%s", n);
            json_decref(o);
        }
    }
    watcher_stats(w, &ws0);
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    watcher_stats(w, &ws1);
    char top[32];
    snprintf(top, sizeof(top), "chain%d", WATCHER_OWNER_DEPTH);
    CHECK(s_count(col, "RayJob", top, "RayJob", "chain0", 1) == 1);
    CHECK(s_count(col, "RayJob", "chain0", "", "", 1) == 1);
    snprintf(top, sizeof(top), "deep%d", WATCHER_OWNER_DEPTH + 1);
    CHECK(s_count(col, "RayJob", top, "RayJob", "deep1", 1) == 1); /* 8 references: reached */
    CHECK(s_count(col, "RayJob", top, "RayJob", "deep0", 0) == 0); /* 9: cut */
    CHECK(s_count(col, "RayJob", "deep0", "", "", 1) == 1);
    CHECK(ws1.owner_chains_cut >= 1);
    if (g_verbose)
        printf("  top owner: RayJob rj1 shard %u, RayCluster rj1-rc shard %u, chains cut %llu\n",
               rj_shard, rc_shard, (unsigned long long)ws1.owner_chains_cut);
    return failed;
}

/* The first event under kind/name about a child of kind ckind whose name starts with prefix;
 * NULL when none. */
static const rec_t *s_first_prefix(const col_t *c, const char *kind, const char *name,
                                   const char *ckind, const char *prefix)
{
    for (size_t i = 0; i < c->n; i++) {
        const rec_t *r = &c->ev[i];
        if (!strcmp(r->kind, kind) && !strcmp(r->name, name) && !strcmp(r->ckind, ckind) &&
            !strncmp(r->cname, prefix, strlen(prefix)))
            return r;
    }
    return NULL;
}

/* True when the observed row kind/name is owned by okind/oname (uid ouid, "" any). */
static bool s_row_owner(store_t *ro, const char *kind, const char *name, const char *okind,
                        const char *oname, const char *ouid)
{
    store_observed_t *row = NULL;
    bool ok = store_observed_get(ro, "c1", kind, "default", name, &row) == 0 && row &&
              row->owner_kind && !strcmp(row->owner_kind, okind) && row->owner_name &&
              !strcmp(row->owner_name, oname) &&
              (!*ouid || (row->owner_uid && !strcmp(row->owner_uid, ouid)));
    if (!ok && g_verbose)
        printf("  row %s %s: owner %s/%s uid %s, want %s/%s %s\n", kind, name,
               row && row->owner_kind ? row->owner_kind : "-",
               row && row->owner_name ? row->owner_name : "-",
               row && row->owner_uid ? row->owner_uid : "-", okind, oname, ouid);
    store_observed_free(&row);
    return ok;
}

/* DELETED events about the child ckind/cname among the events from index `from`. */
static int s_deleted_since(const col_t *c, size_t from, const char *ckind, const char *cname)
{
    int n = 0;
    for (size_t i = from; i < c->n; i++)
        if (c->ev[i].type == 3 && !strcmp(c->ev[i].ckind, ckind) && !strcmp(c->ev[i].cname, cname))
            n++;
    return n;
}

/* Services KubeRay labels by origin and not created-by (a RayService's head and serve Services, a
 * RayJob's head Service) and their EndpointSlices: rows with their Ray owner, events under it, a
 * slice change under the RayService; a created-by Service with origin labels seen once; a Service
 * moved between the two selectors keeps its row; a restart deletes the stale rows of one selector
 * and not the other's. *wp is restarted (wc its config). Returns the failed-check count. */
static int s_origin_checks(apiserver_t *api, store_t *ro, watcher_t **wp,
                           const watcher_config_t *wc, const col_t *col)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);
    json_t *o = s_put(api, "ray.io", "rayservices", "default", s_rayservice("rs1"));
    CHECK(o != NULL);
    char rsuid[64], rjuid[64];
    snprintf(rsuid, sizeof(rsuid), "%s", jx_str(o, "metadata.uid", ""));
    json_decref(o);
    o = s_put(api, "ray.io", "rayjobs", "default", s_rayjob("rj2", NULL, NULL, NULL));
    CHECK(o != NULL);
    snprintf(rjuid, sizeof(rjuid), "%s", jx_str(o, "metadata.uid", ""));
    json_decref(o);
    CHECK(s_wait_equal(api, ro, "c1")); /* the owners are cached before their Services */
    json_decref(s_put(api, "", "services", "default",
                      s_service_origin("rs1-head-svc", "RayService", "rs1", rsuid,
                                       json_pack("{s:s, s:s}", "ray.io/node-type", "head",
                                                 "ray.io/identifier", "rs1-head"),
                                       json_pack("{s:s}", "ray.io/cluster", "rs1-rc"))));
    json_decref(s_put(api, "", "services", "default",
                      s_service_origin("rs1-serve-svc", "RayService", "rs1", rsuid,
                                       json_pack("{s:s}", "ray.io/serve", "rs1-serve"),
                                       json_pack("{s:s, s:s}", "ray.io/cluster", "rs1-rc",
                                                 "ray.io/serve", "true"))));
    json_decref(s_put(api, "", "services", "default",
                      s_service_origin("rj2-head-svc", "RayJob", "rj2", rjuid,
                                       json_pack("{s:s, s:s}", "ray.io/node-type", "head",
                                                 "ray.io/identifier", "rj2-head"),
                                       json_pack("{s:s}", "ray.io/cluster", "rj2-rc"))));
    /* created-by and origin labels: selected by the created-by reflector only */
    json_t *both = s_service("rj2-rc-head-svc", "rc1");
    json_object_set_new(jx_get(both, "metadata.labels"), "ray.io/originated-from-crd",
                        json_string("RayJob"));
    json_decref(s_put(api, "", "services", "default", both));
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    uint32_t rs_shard = bus_shard_of("c1", "default", "rs1", IT_SHARDS);
    /* rows with the Ray owner; events under it, once each */
    CHECK(s_row_owner(ro, "Service", "rs1-head-svc", "RayService", "rs1", rsuid));
    CHECK(s_row_owner(ro, "Service", "rs1-serve-svc", "RayService", "rs1", rsuid));
    CHECK(s_row_owner(ro, "Service", "rj2-head-svc", "RayJob", "rj2", rjuid));
    CHECK(s_row_owner(ro, "Service", "rj2-rc-head-svc", "RayCluster", "rc1", ""));
    CHECK(s_count(col, "RayService", "rs1", "Service", "rs1-head-svc", 1) == 1);
    CHECK(s_count(col, "RayService", "rs1", "Service", "rs1-serve-svc", 1) == 1);
    CHECK(s_count(col, "RayJob", "rj2", "Service", "rj2-head-svc", 1) == 1);
    CHECK(s_count(col, "RayCluster", "rc1", "Service", "rj2-rc-head-svc", 1) == 1);
    const rec_t *e = s_last_under(col, "RayService", "rs1", "Service", "rs1-serve-svc");
    CHECK(e && !strcmp(e->uid, rsuid) && e->shard == rs_shard && e->gen >= 1);
    /* their EndpointSlices (kubesim's controller copies the Service's labels): rows and events
     * under the RayService through the Service */
    const rec_t *hs = s_first_prefix(col, "RayService", "rs1", "EndpointSlice", "rs1-head-svc-");
    const rec_t *ss = s_first_prefix(col, "RayService", "rs1", "EndpointSlice", "rs1-serve-svc-");
    const rec_t *js = s_first_prefix(col, "RayJob", "rj2", "EndpointSlice", "rj2-head-svc-");
    CHECK(hs && ss && js);
    if (!hs || !ss || !js) {
        buf_free(&err);
        return failed;
    }
    char slice[128];
    snprintf(slice, sizeof(slice), "%s", ss->cname);
    CHECK(ss->type == 1 && !strcmp(ss->uid, rsuid) && ss->shard == rs_shard);
    CHECK(s_row_owner(ro, "EndpointSlice", hs->cname, "RayService", "rs1", rsuid));
    CHECK(s_row_owner(ro, "EndpointSlice", slice, "RayService", "rs1", rsuid));
    CHECK(s_row_owner(ro, "EndpointSlice", js->cname, "RayJob", "rj2", rjuid));
    CHECK(s_first_prefix(col, "RayCluster", "rc1", "EndpointSlice", "rj2-rc-head-svc-"));
    /* a ready serve pod: the slice changes, published under the RayService, its row holds it */
    json_t *pod = s_pod("rs1-rc-head", "rs1-rc", "head", NULL, "1");
    json_object_set_new(jx_get(pod, "metadata.labels"), "ray.io/serve", json_string("true"));
    pod = s_put(api, "", "pods", "default", pod); /* the status is not taken at creation */
    CHECK(pod != NULL);
    json_object_set_new(pod, "status",
                        json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "phase", "Running", "podIP",
                                  "10.9.8.7", "conditions", "type", "Ready", "status", "True"));
    CHECK(objstore_update(
              apiserver_store(api), s_res(api, "", "pods"), "default", "rs1-rc-head", &pod,
              &(objstore_update_opts_t){.status = true, .precond = OBJSTORE_PRECOND_NONE}, NULL,
              NULL, NULL) == 0);
    json_decref(pod);
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    CHECK(s_count(col, "RayService", "rs1", "EndpointSlice", slice, 2) >= 1);
    e = s_last_under(col, "RayService", "rs1", "EndpointSlice", slice);
    CHECK(e && e->type == 2 && !strcmp(e->uid, rsuid) && e->shard == rs_shard);
    store_observed_t *row = NULL;
    CHECK(store_observed_get(ro, "c1", "EndpointSlice", "default", slice, &row) == 0 && row &&
          row->json && strstr(row->json, "\"10.9.8.7\"") &&
          strstr(row->json, "\"kubernetes.io/service-name\":\"rs1-serve-svc\""));
    store_observed_free(&row);
    /* the serve Service gains created-by (its slice follows), then loses it: it moves to the other
     * reflector and back (the server sends DELETED to one watch and ADDED to the other, in either
     * order), and ends with its row, owned as before, its last event not a DELETED */
    size_t from = col->n;
    for (int round = 0; round < 2; round++) {
        json_t *l = json_pack("{s:s}", "ray.io/serve", "rs1-serve");
        if (round == 0)
            json_object_set_new(l, "app.kubernetes.io/created-by", json_string("kuberay-operator"));
        json_decref(s_put(api, "", "services", "default",
                          s_service_origin("rs1-serve-svc", "RayService", "rs1", rsuid, l,
                                           json_pack("{s:s, s:s}", "ray.io/cluster", "rs1-rc",
                                                     "ray.io/serve", "true"))));
        CHECK(s_wait_equal(api, ro, "c1"));
        s_pump(100);
        CHECK(s_row_owner(ro, "Service", "rs1-serve-svc", "RayService", "rs1", rsuid));
        CHECK(s_row_owner(ro, "EndpointSlice", slice, "RayService", "rs1", rsuid));
    }
    CHECK(s_deleted_since(col, from, "Service", "rs1-serve-svc") <= 2);
    CHECK(s_count(col, "RayService", "rs1", "Service", "rs1-serve-svc", 0) >= 3);
    e = s_last_under(col, "RayService", "rs1", "Service", "rs1-serve-svc");
    CHECK(e && e->type != 3);
    e = s_last_under(col, "RayService", "rs1", "EndpointSlice", slice);
    CHECK(e && e->type != 3);
    /* restart with an origin-labelled Service deleted while down: its rows go, and the rows of
     * both selectors' other Services stay (no DELETED: each twin waits for the other's list) */
    watcher_destroy(wp);
    s_del(api, "", "services", "default", "rs1-head-svc");
    s_pump(100);
    from = col->n;
    *wp = watcher_new(g_loop, wc, &err);
    CHECK(*wp && watcher_start(*wp) == 0);
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    CHECK(s_deleted_since(col, from, "Service", "rs1-head-svc") >= 1);
    CHECK(s_deleted_since(col, from, "EndpointSlice", hs->cname) >= 1);
    CHECK(s_count(col, "RayService", "rs1", "Service", "rs1-head-svc", 3) == 1);
    CHECK(s_deleted_since(col, from, "Service", "rs1-serve-svc") == 0);
    CHECK(s_deleted_since(col, from, "Service", "rj2-head-svc") == 0);
    CHECK(s_deleted_since(col, from, "Service", "rc1-head-svc") == 0);
    CHECK(s_deleted_since(col, from, "Service", "rj2-rc-head-svc") == 0);
    CHECK(s_deleted_since(col, from, "EndpointSlice", slice) == 0);
    if (g_verbose)
        printf("  origin-labelled Services: RayService rs1 shard %u, serve slice %s\n", rs_shard,
               slice);
    buf_free(&err);
    return failed;
}

/* Runs the scenario against `api` with the kubeconfig at kcpath. `full` adds the gap, chaos and
 * restart phases. Returns the failed-check count. */
static int s_scenario(apiserver_t *api, const char *kcpath, const char *tag, bool full)
{
    int failed = 0;
    char dbpath[256], ep[128];
    snprintf(dbpath, sizeof(dbpath), "%s/observed-%s.db", g_dir, tag);
    snprintf(ep, sizeof(ep), "inproc://watcher-it-%s", tag);
    controllers_t *ctl = controllers_new(g_loop, apiserver_store(api));
    kubeconfig_t *kc = NULL;
    buf_t err;
    buf_init(&err, 4096);
    CHECK(kubeconfig_load(kcpath, NULL, &kc, &err) == 0);
    k8s_client_t *admin = kc ? k8s_client_new(g_loop, kc, NULL) : NULL;
    CHECK(admin != NULL);
    if (!admin) {
        printf("  kubeconfig: %s\n", buf_str(&err));
        buf_free(&err);
        kubeconfig_destroy(&kc);
        controllers_destroy(&ctl);
        return failed;
    }
    CHECK(s_create_crd(admin, "ray.io_rayclusters.yaml") == 0);
    CHECK(s_create_crd(admin, "ray.io_rayjobs.yaml") == 0);
    CHECK(s_create_crd(admin, "ray.io_rayservices.yaml") == 0);

    int srv_err = 0;
    store_t *store = store_open(dbpath, STORE_READWRITE, &srv_err);
    store_t *ro = store_open(dbpath, STORE_READONLY, &srv_err);
    CHECK(store && ro);
    char bind_ep[140];
    snprintf(bind_ep, sizeof(bind_ep), "@%s", ep);
    bus_pub_t *pub =
        bus_pub_new(g_loop, g_zctx,
                    &(bus_options_t){.source = "watcher/it", .endpoint = bind_ep, .hwm = 1000000});
    col_t col = {.ro = ro, .api = api, .cluster = "c1", .ev = calloc(IT_MAX_EVENTS, sizeof(rec_t))};
    bus_sub_t *sub = bus_sub_new(g_loop, g_zctx, &(bus_options_t){.endpoint = ep, .hwm = 1000000},
                                 s_on_msg, NULL, &col);
    CHECK(pub && sub && col.ev);
    for (uint32_t s = 0; sub && s < IT_SHARDS; s++)
        bus_sub_subscribe(sub, s);
    s_pump(100); /* subscriptions reach the publisher */

    watcher_cluster_t cl = {.name = "c1", .kubeconfig = kcpath};
    watcher_config_t wc = {.clusters = &cl,
                           .nclusters = 1,
                           .shards = IT_SHARDS,
                           .store = store,
                           .pub = pub,
                           .backoff_base_ms = 20,
                           .backoff_max_ms = 200,
                           .qps = 1000,
                           .burst = 1000};
    watcher_t *w = store && pub ? watcher_new(g_loop, &wc, &err) : NULL;
    CHECK(w != NULL);
    if (!w)
        goto out;
    metrics_t *reg = metrics_new();
    CHECK(reg && watcher_metrics(w, reg) == 0);
    CHECK(watcher_metrics(w, reg) == ERR_EXISTS); /* the names are taken */
    opsrv_t *h = opsrv_new(
        g_loop, &(opsrv_config_t){.metrics = reg, .ready = watcher_readiness, .ready_arg = w});
    CHECK(h != NULL);
    CHECK(watcher_start(w) == 0);
    CHECK(watcher_start(w) == ERR_STATE);

    /* RayCronJob's CRD is missing: not ready, /readyz says which */
    char body[65536];
    s_pump(500);
    CHECK(!watcher_ready(w));
    CHECK(s_http_get(opsrv_port(h), "/healthz", body, sizeof(body)) == 200);
    CHECK(s_http_get(opsrv_port(h), "/readyz", body, sizeof(body)) == 503 &&
          strstr(body, "c1/ray.io/raycronjobs"));
    CHECK(s_http_get(opsrv_port(h), "/nope", body, sizeof(body)) == 404);
    CHECK(s_http_get(opsrv_port(h), "/metrics", body, sizeof(body)) == 200 &&
          strstr(body, "\r\nContent-Type: " METRICS_CONTENT_TYPE "\r\n") &&
          strstr(body, "\n# TYPE rayfleet_watcher_ready gauge\nrayfleet_watcher_ready 0\n"));
    CHECK(s_create_crd(admin, "ray.io_raycronjobs.yaml") == 0);
    CHECK(s_wait_ready(w));
    CHECK(s_http_get(opsrv_port(h), "/readyz", body, sizeof(body)) == 200);
    CHECK(s_http_get(opsrv_port(h), "/metrics", body, sizeof(body)) == 200 &&
          strstr(body, "\nrayfleet_watcher_ready 1\n") &&
          strstr(body, "\nrayfleet_watcher_events_dropped_total{reason=\"queue\"} 0\n") &&
          strstr(body, "\n# TYPE rayfleet_watcher_relists_total counter\n"));
    /* client-go's REST client metrics of the lists and watches; observed.db's commits */
    CHECK(strstr(body, "\nrest_client_requests_total{code=\"200\",host=\"127.0.0.1:") &&
          strstr(body, "\n# TYPE rest_client_request_duration_seconds histogram\n") &&
          strstr(body, "\nrest_client_rate_limiter_duration_seconds_count{host=\"127.0.0.1:") &&
          strstr(body, "\nrest_client_response_size_bytes_bucket{host=\"127.0.0.1:") &&
          strstr(body, "\nrayfleet_store_commit_duration_seconds_count{service=\"watcher\"} "));

    /* creates, updates, deletes */
    json_t *rc = s_put(api, "ray.io", "rayclusters", "default", s_raycluster("rc1", "1"));
    CHECK(rc != NULL);
    char rcuid[64];
    snprintf(rcuid, sizeof(rcuid), "%s", jx_str(rc, "metadata.uid", ""));
    json_decref(rc);
    s_pump(50);
    json_decref(s_put(api, "", "pods", "default", s_pod("rc1-head", "rc1", "head", rcuid, "1")));
    json_decref(s_put(api, "", "pods", "default", s_pod("rc1-w1", "rc1", "worker", NULL, "1")));
    json_decref(s_put(api, "", "pods", "default", s_pod("other", NULL, NULL, NULL, "1")));
    json_decref(s_put(api, "", "services", "default", s_service("rc1-head-svc", "rc1")));
    s_pump(50);
    json_decref(s_put(api, "ray.io", "rayclusters", "default", s_raycluster("rc1", "2")));
    json_decref(s_put(api, "", "pods", "default", s_pod("rc1-head", "rc1", "head", rcuid, "2")));
    json_decref(s_put(api, "", "pods", "default", s_pod("rc1-w1", "rc1", "worker", NULL, "2")));
    s_pump(50);
    s_del(api, "", "pods", "default", "rc1-w1");
    CHECK(s_wait_equal(api, ro, "c1"));
    s_pump(100);
    char hist[64];
    s_history(&col, "Pod", "rc1-w1", hist, sizeof(hist));
    CHECK(strcmp(hist, "AMD") == 0);
    if (g_verbose) {
        watcher_stats_t ws;
        watcher_stats(w, &ws);
        printf("  [%s] rc1-w1 events: %s (events in %llu, relists %llu, failures %llu)\n", tag,
               hist, (unsigned long long)ws.events_in, (unsigned long long)ws.relists,
               (unsigned long long)ws.list_failures);
    }
    s_history(&col, "RayCluster", "rc1", hist, sizeof(hist));
    CHECK(strcmp(hist, "AM") == 0);
    s_history(&col, "Pod", "other", hist, sizeof(hist));
    CHECK(hist[0] == '\0');
    const rec_t *ph = s_last(&col, "Pod", "rc1-head");
    CHECK(ph && !strcmp(ph->kind, "RayCluster") && !strcmp(ph->name, "rc1") &&
          !strcmp(ph->uid, rcuid) && ph->gen >= 1 &&
          ph->shard == bus_shard_of("c1", "default", "rc1", IT_SHARDS));
    const rec_t *pw = s_last(&col, "Pod", "rc1-w1"); /* owner from the label */
    CHECK(pw && !strcmp(pw->kind, "RayCluster") && !strcmp(pw->uid, rcuid) && pw->type == 3);
    const rec_t *sv = s_last(&col, "Service", "rc1-head-svc");
    CHECK(sv && !strcmp(sv->name, "rc1") && !strcmp(sv->uid, rcuid));
    const rec_t *es = NULL;
    for (size_t i = 0; i < col.n; i++)
        if (!strcmp(col.ev[i].ckind, "EndpointSlice"))
            es = &col.ev[i];
    CHECK(es && !strcmp(es->kind, "RayCluster") && !strcmp(es->name, "rc1") &&
          !strncmp(es->cname, "rc1-head-svc-", 13));
    store_observed_t *row = NULL;
    CHECK(store_observed_get(ro, "c1", "Pod", "default", "rc1-head", &row) == 0 && row &&
          !strcmp(row->owner_kind, "RayCluster") && !strcmp(row->owner_uid, rcuid) && row->json &&
          strstr(row->json, "\"rc1-head\""));
    store_observed_free(&row);
    CHECK(store_observed_get(ro, "c1", "RayCluster", "default", "rc1", &row) == 0 && row &&
          !strcmp(row->owner_name, "rc1"));
    store_observed_free(&row);
    /* an update of the status shows in phase and conditions */
    objstore_t *os = apiserver_store(api);
    json_t *cur = NULL;
    objstore_get(os, s_res(api, "ray.io", "rayclusters"), "default", "rc1", &cur, NULL);
    json_t *st = json_deep_copy(cur);
    json_decref(cur);
    json_object_set_new(st, "status",
                        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "state", "ready",
                                  "conditions", "type", "Ready", "status", "True", "type",
                                  "HeadPodReady", "status", "True"));
    objstore_update(os, s_res(api, "ray.io", "rayclusters"), "default", "rc1", &st,
                    &(objstore_update_opts_t){.status = true, .precond = OBJSTORE_PRECOND_NONE},
                    NULL, NULL, NULL);
    CHECK(s_wait_equal(api, ro, "c1"));
    CHECK(store_observed_get(ro, "c1", "RayCluster", "default", "rc1", &row) == 0 && row &&
          row->phase && !strcmp(row->phase, "ready") && row->conditions &&
          !strcmp(row->conditions, "Ready=True,HeadPodReady=True"));
    store_observed_free(&row);
    /* /metrics reads the watcher's own counters at scrape time */
    {
        watcher_stats_t ws;
        watcher_stats(w, &ws);
        CHECK(s_http_get(opsrv_port(h), "/metrics", body, sizeof(body)) == 200);
        const char *p = strstr(body, "\nrayfleet_watcher_events_published_total ");
        unsigned long long pub_n = p ? strtoull(strchr(p + 1, ' ') + 1, NULL, 10) : 0;
        CHECK(p && pub_n >= 1 && pub_n >= ws.events_published);
        p = strstr(body, "\nrayfleet_watcher_objects ");
        CHECK(p && strtoull(strchr(p + 1, ' ') + 1, NULL, 10) >= 2);
        watcher_stats(w, &ws);
        CHECK(pub_n <= ws.events_published);
    }

    if (full) {
        /* the gap: watches dropped, changes, history compacted (410 on re-watch) */
        watcher_stats_t ws0, ws1;
        watcher_stats(w, &ws0);
        apiserver_drop_watches(api);
        for (int i = 0; i < 20; i++) {
            char n[32];
            snprintf(n, sizeof(n), "gap-%02d", i);
            json_decref(s_put(api, "", "pods", "default", s_pod(n, "rc1", "worker", rcuid, "g")));
        }
        s_del(api, "", "pods", "default", "rc1-head");
        json_decref(s_put(api, "ray.io", "rayclusters", "default", s_raycluster("rc2", "1")));
        apiserver_compact(api);
        CHECK(s_wait_equal(api, ro, "c1"));
        watcher_stats(w, &ws1);
        CHECK(ws1.relists > ws0.relists);
        /* deleted during the gap: the relist's DELETED still names the owner (from the cache) */
        s_pump(100);
        const rec_t *hd = s_last(&col, "Pod", "rc1-head");
        CHECK(hd && hd->type == 3 && !strcmp(hd->kind, "RayCluster") && !strcmp(hd->name, "rc1") &&
              !strcmp(hd->uid, rcuid) && hd->gen >= 1);
        if (g_verbose)
            printf("  [%s] after 410 gap: equal, relists %llu\n", tag,
                   (unsigned long long)ws1.relists);

        /* dropped watches without compaction */
        apiserver_drop_watches(api);
        for (int i = 0; i < 10; i++) {
            char n[32];
            snprintf(n, sizeof(n), "gap-%02d", i);
            if (i % 2)
                s_del(api, "", "pods", "default", n);
            else
                json_decref(
                    s_put(api, "", "pods", "default", s_pod(n, "rc1", "worker", rcuid, "d")));
        }
        CHECK(s_wait_equal(api, ro, "c1"));

        /* chaos: 30% errors on lists and watches, latency, drops and compactions */
        CHECK(apiserver_add_fault_spec(api, "list:*:0.3:500") == 0);
        CHECK(apiserver_add_fault_spec(api, "watch:*:0.3:503") == 0);
        apiserver_set_latency(api, 2, 10);
        for (int round = 0; round < 12; round++) {
            for (int i = 0; i < 15; i++) {
                char n[32];
                snprintf(n, sizeof(n), "chaos-%02d", (round * 7 + i) % 40);
                if ((round + i) % 4 == 0)
                    s_del(api, "", "pods", "default", n);
                else
                    json_decref(s_put(api, "", "pods", "default",
                                      s_pod(n, "rc1", "worker", NULL, round % 2 ? "o" : "e")));
            }
            char rn[16];
            snprintf(rn, sizeof(rn), "%d", round);
            json_decref(s_put(api, "ray.io", "rayclusters", "default", s_raycluster("rc2", rn)));
            if (round % 3 == 0)
                apiserver_drop_watches(api);
            if (round % 4 == 1)
                apiserver_compact(api);
            s_pump(100);
        }
        CHECK(s_wait_equal(api, ro, "c1"));
        apiserver_clear_faults(api);
        watcher_stats(w, &ws1);
        CHECK(ws1.list_failures >= 1);
        if (g_verbose)
            printf("  [%s] chaos: equal; relists %llu failures %llu events in %llu published %llu"
                   " drops %llu\n",
                   tag, (unsigned long long)ws1.relists, (unsigned long long)ws1.list_failures,
                   (unsigned long long)ws1.events_in, (unsigned long long)ws1.events_published,
                   (unsigned long long)(ws1.drops_hwm + ws1.drops_queue));

        /* restart: deletions and creations while the watcher is down */
        opsrv_destroy(&h);
        CHECK(watcher_metrics(w, NULL) == 0); /* the store and clients stop recording into reg */
        metrics_destroy(&reg); /* its series read the watcher being destroyed */
        watcher_destroy(&w);
        uint64_t last_id = col.last_id;
        for (int i = 0; i < 10; i++) {
            char n[32];
            snprintf(n, sizeof(n), "chaos-%02d", i);
            s_del(api, "", "pods", "default", n);
        }
        s_del(api, "ray.io", "rayclusters", "default", "rc2");
        json_decref(s_put(api, "", "pods", "default", s_pod("late", "rc1", "head", rcuid, "1")));
        s_pump(100);
        w = watcher_new(g_loop, &wc, &err);
        CHECK(w && watcher_start(w) == 0);
        CHECK(s_wait_equal(api, ro, "c1"));
        s_pump(100);
        watcher_stats(w, &ws1);
        CHECK(ws1.stale_deleted >= 1);
        CHECK(col.last_id > last_id);
        s_history(&col, "RayCluster", "rc2", hist, sizeof(hist));
        CHECK(hist[strlen(hist) - 1] == 'D');
    }
    /* last: the gap, chaos and restart phases above run on the objects they always had */
    if (w)
        failed += s_top_owner_checks(api, ro, w, &col);
    opsrv_destroy(&h);
    if (w)
        CHECK(watcher_metrics(w, NULL) == 0);
    metrics_destroy(&reg); /* their series and readiness read the watcher restarted below */
    if (w)
        failed += s_origin_checks(api, ro, &w, &wc, &col);
    s_pump(100);
    CHECK(col.missing_rows == 0);
    CHECK(col.bad_shard == 0);
    CHECK(col.id_backwards == 0);
    if (g_verbose)
        printf("  [%s] %zu events received, rows missing %d, bad shards %d, ids backwards %d\n",
               tag, col.n, col.missing_rows, col.bad_shard, col.id_backwards);
out:
    watcher_destroy(&w);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    store_destroy(&ro);
    store_destroy(&store);
    free(col.ev);
    k8s_client_destroy(&admin);
    kubeconfig_destroy(&kc);
    controllers_destroy(&ctl);
    buf_free(&err);
    return failed;
}

/* ---------- PodUsage rows (--watch.nodes) ---------- */

/* The paths of a PodUsage row's projection (watcher.h, "Capacity"), as the PodUsage reflector
 * keeps them. */
static const char *const s_usage_keep[] = {"metadata.name",
                                           "metadata.namespace",
                                           "metadata.uid",
                                           "metadata.resourceVersion",
                                           "spec.nodeName",
                                           "spec.overhead",
                                           "spec.containers.resources",
                                           "spec.initContainers.resources",
                                           "spec.initContainers.restartPolicy",
                                           "status.phase",
                                           NULL};

/* A pod on node `node` with a container requesting `cpu`, an init container and overhead, of
 * node type `type` (NULL: no ray.io/node-type label). */
static json_t *s_usage_pod(const char *name, const char *type, const char *node, const char *cpu,
                           const char *val)
{
    json_t *p = s_pod(name, type ? "rcu" : NULL, type, NULL, val);
    json_t *spec = jx_get(p, "spec");
    json_object_set_new(spec, "nodeName", json_string(node));
    json_object_set_new(spec, "overhead", json_pack("{s:s}", "cpu", "10m"));
    json_object_set_new(json_array_get(json_object_get(spec, "containers"), 0), "resources",
                        json_pack("{s:{s:s, s:s}}", "requests", "cpu", cpu, "memory", "1Gi"));
    json_object_set_new(spec, "initContainers",
                        json_pack("[{s:s, s:s, s:s, s:{s:{s:s}}}]", "name", "init", "image", "b",
                                  "restartPolicy", "Always", "resources", "requests", "cpu",
                                  "100m"));
    json_object_set_new(p, "status", json_pack("{s:s}", "phase", "Running"));
    return p;
}

/* "ns/name" -> the PodUsage row a pod of the server must have (the projection of its text, the
 * row's columns), every pod of every namespace; resourceVersion left out (a row keeps that of
 * the last change that mattered). */
static json_t *s_usage_want(apiserver_t *api)
{
    json_t *want = json_object();
    jproj_t *jp = jproj_new(s_usage_keep, NULL);
    objstore_list_t l = {0};
    if (!want || !jp ||
        objstore_list(apiserver_store(api), s_res(api, "", "pods"), &(objstore_list_opts_t){0}, &l,
                      NULL) != 0) {
        jproj_destroy(&jp);
        return want;
    }
    size_t i;
    json_t *it;
    json_array_foreach(l.items, i, it)
    {
        char *text = json_dumps(it, JSON_COMPACT);
        jproj_result_t res = {0};
        if (text && jproj_parse(jp, text, strlen(text), "pod", &res, NULL) == 0 && res.value) {
            json_object_del(jx_get(res.value, "metadata"), "resourceVersion");
            char key[512];
            snprintf(key, sizeof(key), "%s/%s", jx_str(it, "metadata.namespace", ""),
                     jx_str(it, "metadata.name", ""));
            json_object_set_new(want, key,
                                json_pack("{s:s, s:s, s:s?, s:I, s:s, s:s, s:O}", "api_group", "",
                                          "uid", jx_str(it, "metadata.uid", ""), "phase",
                                          jx_str(it, "status.phase", NULL), "generation",
                                          (json_int_t)0, "owner_kind", "", "owner_name", "", "json",
                                          res.value));
        }
        jproj_result_free(&res);
        free(text);
    }
    objstore_list_free(&l);
    jproj_destroy(&jp);
    return want;
}

/* The PodUsage rows of cluster "u1" as s_usage_want() gives them; rvs (may be NULL) gets
 * "ns/name" -> the row's resourceVersion. */
static json_t *s_usage_have(store_query_t *q, json_t *rvs)
{
    json_t *have = json_object();
    sqlite3_stmt *st = NULL;
    if (!q || sqlite3_prepare_v2(store_query_handle(q),
                                 "SELECT namespace, name, api_group, uid, phase, generation, "
                                 "owner_kind, owner_name, json, resource_version FROM "
                                 "observed_objects WHERE cluster = 'u1' AND kind = 'PodUsage'",
                                 -1, &st, NULL) != SQLITE_OK)
        return have;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
        json_t *js = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
        json_object_del(jx_get(js, "metadata"), "resourceVersion");
        /* the transport's: a watch event's object carries them, a list's items do not */
        json_object_del(js, "apiVersion");
        json_object_del(js, "kind");
        json_object_set_new(
            have, key,
            json_pack("{s:s, s:s, s:s?, s:I, s:s, s:s, s:o?}", "api_group",
                      (const char *)sqlite3_column_text(st, 2), "uid",
                      sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "",
                      "phase", (const char *)sqlite3_column_text(st, 4), "generation",
                      (json_int_t)sqlite3_column_int64(st, 5), "owner_kind",
                      (const char *)sqlite3_column_text(st, 6), "owner_name",
                      (const char *)sqlite3_column_text(st, 7), "json", js));
        if (rvs)
            json_object_set_new(rvs, key, json_string((const char *)sqlite3_column_text(st, 9)));
    }
    sqlite3_finalize(st);
    return have;
}

/* Waits until the PodUsage rows equal s_usage_want(). */
static bool s_usage_wait(apiserver_t *api, store_t *ro)
{
    store_query_t *q = store_query_open(store_path(ro), NULL, 0, NULL);
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    bool eq = false;
    json_t *want = NULL, *have = NULL;
    while (!eq && loop_clock_ms() < end) {
        loop_run_once(g_loop, 20);
        json_decref(want);
        json_decref(have);
        want = s_usage_want(api);
        have = s_usage_have(q, NULL);
        eq = json_equal(want, have);
    }
    if (!eq) {
        char *a = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
        char *b = json_dumps(have, JSON_SORT_KEYS | JSON_COMPACT);
        printf("  PodUsage rows differ:\n    want %s\n    have %s\n", a ? a : "?", b ? b : "?");
        free(a);
        free(b);
    }
    json_decref(want);
    json_decref(have);
    store_query_close(&q);
    return eq;
}

/* The resourceVersion of the PodUsage row of ns/name, "" when none. */
static void s_usage_rv(store_t *ro, const char *key, char *out, size_t cap)
{
    store_query_t *q = store_query_open(store_path(ro), NULL, 0, NULL);
    json_t *rvs = json_object();
    json_decref(s_usage_have(q, rvs));
    const char *v = json_string_value(json_object_get(rvs, key));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(rvs);
    store_query_close(&q);
}

/* The PodUsage row text of ns/name with its resourceVersion and uid blanked and the pod's name
 * replaced by "P", into out ("" when none): two pods' rows of the same shape compare equal. */
static void s_usage_shape(store_t *ro, const char *ns, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    store_query_t *q = store_query_open(store_path(ro), NULL, 0, NULL);
    sqlite3_stmt *st = NULL;
    if (q && sqlite3_prepare_v2(store_query_handle(q),
                                "SELECT json FROM observed_objects WHERE cluster = 'u1' AND kind = "
                                "'PodUsage' AND namespace = ?1 AND name = ?2",
                                -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        json_t *js = sqlite3_step(st) == SQLITE_ROW
                         ? json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL)
                         : NULL;
        json_t *meta = jx_get(js, "metadata");
        json_object_set_new(meta, "resourceVersion", json_string(""));
        json_object_set_new(meta, "uid", json_string(""));
        json_object_set_new(meta, "name", json_string("P"));
        char *text = js ? json_dumps(js, JSON_COMPACT) : NULL; /* members in the row's order */
        snprintf(out, cap, "%s", text ? text : "");
        free(text);
        json_decref(js);
    }
    sqlite3_finalize(st);
    store_query_close(&q);
}

static watcher_t *s_usage_watcher(const char *kcpath, store_t *store, buf_t *err)
{
    static watcher_cluster_t cl;
    cl = (watcher_cluster_t){.name = "u1", .kubeconfig = kcpath};
    watcher_config_t wc = {.clusters = &cl,
                           .nclusters = 1,
                           .shards = IT_SHARDS,
                           .store = store,
                           .backoff_base_ms = 20,
                           .backoff_max_ms = 200,
                           .qps = 1000,
                           .burst = 1000,
                           .watch_nodes = true};
    watcher_t *w = watcher_new(g_loop, &wc, err);
    if (w && watcher_start(w) != 0)
        watcher_destroy(&w);
    return w;
}

/* --watch.nodes (after s_scenario made the CRDs): every pod, Ray or not, has its PodUsage row,
 * the projection the PodUsage reflector makes, through creation, a change of requests, a label
 * patch (no rewrite), a node-type label moving a pod between the two pod watches, deletion, a
 * 410 relist with changes in the gap and a restart with deletions while down; stale rows of a
 * previous run are deleted; each Ray pod event is received once (events_in counts one per
 * change, and the Ray pod reflector wrote the row: usage_by_pods). */
static int s_usage_scenario(apiserver_t *api, const char *kcpath)
{
    int failed = 0;
    char dbpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/observed-usage.db", g_dir);
    store_t *store = store_open(dbpath, STORE_READWRITE, NULL);
    store_t *ro = store_open(dbpath, STORE_READONLY, NULL);
    CHECK(store && ro);
    if (!store || !ro) {
        store_destroy(&ro);
        store_destroy(&store);
        return failed;
    }
    /* rows of a previous run whose pods are gone: a Ray pod's and another's */
    const char *ghosts[] = {"ghost-ray", "ghost-other"};
    for (int i = 0; i < 2; i++)
        CHECK(store_observed_upsert(store, &(store_observed_t){.cluster = "u1",
                                                               .api_group = "",
                                                               .kind = WATCHER_PODUSE_KIND,
                                                               .ns = "default",
                                                               .name = ghosts[i],
                                                               .json = "{}"}) == 0);
    CHECK(store_flush(store) == 0);
    const char *types[] = {"head", "worker", "worker", "redis-cleanup", NULL, "other"};
    for (int i = 0; i < 6; i++) {
        char n[32];
        snprintf(n, sizeof(n), "up-%d", i);
        json_decref(
            s_put(api, "", "pods", "default", s_usage_pod(n, types[i], "node-a", "1", "a")));
    }
    buf_t err;
    buf_init(&err, 4096);
    watcher_t *w = s_usage_watcher(kcpath, store, &err);
    CHECK(w != NULL);
    if (!w)
        printf("  usage watcher: %s\n", buf_str(&err));
    CHECK(w && s_wait_ready(w));
    CHECK(s_usage_wait(api, ro));
    store_query_t *q = store_query_open(store_path(ro), NULL, 0, NULL);
    json_t *have = s_usage_have(q, NULL);
    store_query_close(&q);
    CHECK(
        json_object_size(have) >= 6 && !json_object_get(have, "default/ghost-ray") &&
        !json_object_get(have, "default/ghost-other") &&
        !strcmp(jx_str(json_object_get(have, "default/up-0"), "json.spec.nodeName", ""), "node-a"));
    json_decref(have);

    /* a change of requests of each Ray pod: one event received each, rows rewritten */
    watcher_stats_t s0, s1;
    watcher_stats(w, &s0);
    for (int i = 0; i < 4; i++) {
        char n[32];
        snprintf(n, sizeof(n), "up-%d", i);
        json_decref(
            s_put(api, "", "pods", "default", s_usage_pod(n, types[i], "node-a", "2", "a")));
    }
    CHECK(s_usage_wait(api, ro));
    s_pump(300); /* a second reception would land meanwhile */
    watcher_stats(w, &s1);
    CHECK(s1.events_in - s0.events_in == 4);
    CHECK(s1.usage_by_pods - s0.usage_by_pods == 4);
    if (g_verbose)
        printf("  [usage] 4 Ray pod changes: events in %llu, PodUsage rows by the pod reflector "
               "%llu\n",
               (unsigned long long)(s1.events_in - s0.events_in),
               (unsigned long long)(s1.usage_by_pods - s0.usage_by_pods));
    /* a non-Ray pod's change: through the PodUsage reflector only */
    json_decref(s_put(api, "", "pods", "default", s_usage_pod("up-4", NULL, "node-a", "2", "a")));
    CHECK(s_usage_wait(api, ro));
    s_pump(300);
    watcher_stats(w, &s0);
    CHECK(s0.events_in - s1.events_in == 1 && s0.usage_by_pods == s1.usage_by_pods);
    /* the same pod, Ray (up-1: the pod reflector's row) or not (up-4: the PodUsage reflector's),
     * both written from a watch event: the same row text, member for member */
    char shape_ray[2048], shape_other[2048];
    s_usage_shape(ro, "default", "up-1", shape_ray, sizeof(shape_ray));
    s_usage_shape(ro, "default", "up-4", shape_other, sizeof(shape_other));
    CHECK(shape_ray[0] && strcmp(shape_ray, shape_other) == 0);
    if (g_verbose || strcmp(shape_ray, shape_other) != 0)
        printf("  [usage] Ray pod row %s\n          other row   %s\n", shape_ray, shape_other);

    /* a label patch of a Ray pod: the row is not rewritten (its resourceVersion stays) */
    char rv0[64], rv1[64];
    s_usage_rv(ro, "default/up-1", rv0, sizeof(rv0));
    json_decref(
        s_put(api, "", "pods", "default", s_usage_pod("up-1", "worker", "node-a", "2", "b")));
    s_pump(300);
    watcher_stats(w, &s1);
    CHECK(s1.events_in - s0.events_in == 1 && s1.usage_by_pods == s0.usage_by_pods);
    s_usage_rv(ro, "default/up-1", rv1, sizeof(rv1));
    CHECK(rv0[0] && !strcmp(rv0, rv1));
    CHECK(s_usage_wait(api, ro));

    /* node-type label changes move pods between the two watches: the rows stay */
    json_decref(
        s_put(api, "", "pods", "default", s_usage_pod("up-2", "other", "node-a", "2", "a")));
    json_decref(
        s_put(api, "", "pods", "default", s_usage_pod("up-5", "worker", "node-a", "1", "a")));
    CHECK(s_usage_wait(api, ro));
    json_decref(
        s_put(api, "", "pods", "default", s_usage_pod("up-2", "worker", "node-c", "2", "a")));
    CHECK(s_usage_wait(api, ro));

    /* deletions: a Ray pod's and another's */
    s_del(api, "", "pods", "default", "up-3");
    s_del(api, "", "pods", "default", "up-4");
    CHECK(s_usage_wait(api, ro));

    /* a 410 gap: changes, additions and deletions of both kinds while the watches are down */
    watcher_stats(w, &s0);
    apiserver_drop_watches(api);
    json_decref(s_put(api, "", "pods", "default", s_usage_pod("up-0", "head", "node-b", "4", "a")));
    json_decref(
        s_put(api, "", "pods", "default", s_usage_pod("up-6", "worker", "node-b", "1", "a")));
    json_decref(s_put(api, "", "pods", "default", s_usage_pod("up-7", NULL, "node-b", "1", "a")));
    s_del(api, "", "pods", "default", "up-1");
    s_del(api, "", "pods", "default", "up-5");
    apiserver_compact(api);
    CHECK(s_usage_wait(api, ro));
    watcher_stats(w, &s1);
    CHECK(s1.relists > s0.relists);

    /* a restart with deletions while down (the Ray pod reflector's and the other's) */
    watcher_destroy(&w);
    s_del(api, "", "pods", "default", "up-0");
    s_del(api, "", "pods", "default", "up-7");
    w = s_usage_watcher(kcpath, store, &err);
    CHECK(w && s_wait_ready(w));
    CHECK(s_usage_wait(api, ro));
    q = store_query_open(store_path(ro), NULL, 0, NULL);
    have = s_usage_have(q, NULL);
    store_query_close(&q);
    CHECK(!json_object_get(have, "default/up-0") && !json_object_get(have, "default/up-7") &&
          json_object_get(have, "default/up-6") && json_object_get(have, "default/up-2"));
    json_decref(have);
    watcher_destroy(&w);
    buf_free(&err);
    store_destroy(&ro);
    store_destroy(&store);
    return failed;
}

static int s_unit(void)
{
    int failed = 0;
    char scratch[256];
    watcher_cluster_t c;
    CHECK(watcher_parse_cluster("east=/etc/kube/east@ctx", scratch, sizeof(scratch), &c) == 0 &&
          !strcmp(c.name, "east") && !strcmp(c.kubeconfig, "/etc/kube/east") &&
          !strcmp(c.context, "ctx"));
    CHECK(watcher_parse_cluster("w=/k", scratch, sizeof(scratch), &c) == 0 && !c.context);
    CHECK(watcher_parse_cluster("nocfg", scratch, sizeof(scratch), &c) == ERR_INVAL);
    CHECK(watcher_parse_cluster("=/k", scratch, sizeof(scratch), &c) == ERR_INVAL);
    CHECK(watcher_parse_cluster("a/b=/k", scratch, sizeof(scratch), &c) == ERR_INVAL);
    CHECK(watcher_parse_cluster("a=/k@", scratch, sizeof(scratch), &c) == ERR_INVAL);
    CHECK(watcher_parse_cluster("a=/k", scratch, 3, &c) == ERR_TOOBIG);
    buf_t err;
    buf_init(&err, 1024);
    watcher_config_t bad = {0};
    CHECK(watcher_new(g_loop, &bad, &err) == NULL && err.len > 0);
    store_t *s = NULL;
    char path[256];
    snprintf(path, sizeof(path), "%s/unit.db", g_dir);
    s = store_open(path, STORE_READWRITE, NULL);
    watcher_cluster_t two[2] = {{.name = "x", .kubeconfig = "/nonexistent"},
                                {.name = "x", .kubeconfig = "/nonexistent"}};
    watcher_config_t dup = {.clusters = two, .nclusters = 2, .store = s};
    buf_reset(&err);
    CHECK(watcher_new(g_loop, &dup, &err) == NULL && strstr(buf_str(&err), "twice"));
    dup.nclusters = 1;
    buf_reset(&err);
    CHECK(watcher_new(g_loop, &dup, &err) == NULL && strstr(buf_str(&err), "nonexistent"));
    store_destroy(&s);
    unlink(path);
    buf_free(&err);
    return failed;
}

static void s_write_file(const char *name, const buf_t *b)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fwrite(b->data, 1, b->len, f);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = 0;
    /* as svc_start() does in the services: a peer closing a TLS connection must not kill us */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("watcher_it", g_verbose ? LOG_INFO : LOG_ERROR, 2);
    g_loop = loop_new();
    g_zctx = zmq_ctx_new();
    snprintf(g_dir, sizeof(g_dir), "/tmp/rf-watcher-it-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    failed += s_unit();

    /* plain HTTP */
    apiserver_t *api = apiserver_new(g_loop, &(apiserver_opts_t){.bookmark_ms = 200});
    CHECK(api != NULL);
    if (api) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
                 "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
                 "contexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
                 "users: [{name: u, user: {}}]\n",
                 apiserver_port(api));
        const char *kcpath = s_write_kubeconfig("config", text);
        failed += s_scenario(api, kcpath, "http", true);
        failed += s_usage_scenario(api, kcpath);
        apiserver_destroy(&api);
    }

    /* TLS: bearer token, then client certificate */
    api = apiserver_new(g_loop,
                        &(apiserver_opts_t){.bookmark_ms = 200, .tls = true, .token = "it-token"});
    CHECK(api != NULL);
    if (api) {
        buf_t pem;
        buf_init(&pem, 1 << 20);
        CHECK(apiserver_tls_pem(api, TLS_PEM_CA, &pem) == 0);
        s_write_file("ca.crt", &pem);
        buf_reset(&pem);
        CHECK(apiserver_tls_pem(api, TLS_PEM_CLIENT_CERT, &pem) == 0);
        s_write_file("client.crt", &pem);
        buf_reset(&pem);
        CHECK(apiserver_tls_pem(api, TLS_PEM_CLIENT_KEY, &pem) == 0);
        s_write_file("client.key", &pem);
        buf_free(&pem);
        char text[1024];
        snprintf(text, sizeof(text),
                 "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
                 "clusters: [{name: sim, cluster: {server: 'https://127.0.0.1:%d', "
                 "certificate-authority: ca.crt}}]\n"
                 "contexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
                 "users: [{name: u, user: {token: it-token}}]\n",
                 apiserver_tls_port(api));
        failed += s_scenario(api, s_write_kubeconfig("config-token", text), "tls-token", true);
        apiserver_destroy(&api);
    }
    api = apiserver_new(g_loop, &(apiserver_opts_t){.bookmark_ms = 200, .tls = true});
    CHECK(api != NULL);
    if (api) {
        buf_t pem;
        buf_init(&pem, 1 << 20);
        CHECK(apiserver_tls_pem(api, TLS_PEM_CA, &pem) == 0);
        s_write_file("ca2.crt", &pem);
        buf_reset(&pem);
        CHECK(apiserver_tls_pem(api, TLS_PEM_CLIENT_CERT, &pem) == 0);
        s_write_file("client2.crt", &pem);
        buf_reset(&pem);
        CHECK(apiserver_tls_pem(api, TLS_PEM_CLIENT_KEY, &pem) == 0);
        s_write_file("client2.key", &pem);
        buf_free(&pem);
        char text[1024];
        snprintf(text, sizeof(text),
                 "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
                 "clusters: [{name: sim, cluster: {server: 'https://127.0.0.1:%d', "
                 "certificate-authority: ca2.crt}}]\n"
                 "contexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
                 "users: [{name: u, user: {client-certificate: client2.crt, "
                 "client-key: client2.key}}]\n",
                 apiserver_tls_port(api));
        failed += s_scenario(api, s_write_kubeconfig("config-cert", text), "tls-cert", true);
        apiserver_destroy(&api);
    }

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        printf("cleanup of %s failed\n", g_dir);
    zmq_ctx_term(g_zctx);
    loop_destroy(&g_loop);
    curl_global_cleanup();
    return SELFTEST_RESULT("watcher_it", true);
}
