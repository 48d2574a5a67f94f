/*
 * k8s_it: the Kubernetes client, kubeconfig and reflector against a real kubesim API server
 * started in-process (sim/apiserver.h) on an ephemeral port.
 *
 * Client: create / get / list with selectors and pagination / update with conflict / merge and
 * JSON patch / status subresource / delete with preconditions and propagation / Status decoding;
 * retry on 429 with Retry-After and on 503; POST not retried on 503; rate-limiter spacing.
 * Reflector: ordered events; a compaction + dropped watches with changes (including deletions)
 * during the gap, after which the cache (and a consumer applying the events) equals the
 * server's objects exactly; convergence under 30% injected errors and latency.
 *
 * Usage: k8s_it [-v]. Exit 0 when every check passes.
 */
#include "apiserver.h"
#include "err.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "objstore.h"
#include "reflector.h"
#include "selftest.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#define IT_WAIT_MS 15000 /* longest wait for one step */

static loop_t *g_loop;
static apiserver_t *g_api;
static bool g_verbose;

typedef struct {
    int done;
    int err;
    long status;
    int attempts;
    char reason[64];
    char message[512];
    json_t *body;
} res_t;

static void s_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    res_t *x = arg;
    x->done++;
    x->err = r->err;
    x->status = r->status;
    x->attempts = r->attempts;
    snprintf(x->reason, sizeof(x->reason), "%s", r->reason);
    snprintf(x->message, sizeof(x->message), "%s", r->message);
    json_decref(x->body);
    x->body = json_incref(r->body);
}

static bool s_wait(int *flag, int want)
{
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (*flag < want && loop_clock_ms() < end)
        loop_run_once(g_loop, 20);
    return *flag >= want;
}

/* Runs one request to completion. */
#define RUN(x, call)                                                                               \
    do {                                                                                           \
        json_decref((x)->body);                                                                    \
        memset((x), 0, sizeof(*(x)));                                                              \
        int64_t id_ = (call);                                                                      \
        CHECK(id_ > 0);                                                                            \
        if (id_ > 0)                                                                               \
            CHECK(s_wait(&(x)->done, 1));                                                          \
    } while (0)

static json_t *s_cm(const char *name, const char *label)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                     "ConfigMap", "metadata", "name", name, "labels", "app", label, "data", "k",
                     "v0");
}

static int s_client_tests(const kubeconfig_t *kc)
{
    int failed = 0;
    k8s_config_t cfg = {.backoff_base_ms = 50, .max_retries = 3};
    k8s_client_t *c = k8s_client_new(g_loop, kc, &cfg);
    CHECK(c != NULL);
    if (!c)
        return failed;
    res_t x = {0};
    k8s_res_t cms = {.version = "v1", .resource = "configmaps", .namespace_ = "kube-public"};
    k8s_res_t a = cms;
    a.name = "a";

    /* create, AlreadyExists */
    json_t *o = s_cm("a", "x");
    RUN(&x, k8s_create(c, &cms, o, NULL, s_done, &x));
    CHECK(x.err == 0 && x.status == 201 && x.body && jx_str(x.body, "metadata.uid", NULL));
    RUN(&x, k8s_create(c, &cms, o, NULL, s_done, &x));
    CHECK(x.err == ERR_EXISTS && x.status == 409 && strcmp(x.reason, "AlreadyExists") == 0);
    json_decref(o);
    for (int i = 0; i < 4; i++) {
        char n[8];
        snprintf(n, sizeof(n), "b%d", i);
        o = s_cm(n, "y");
        RUN(&x, k8s_create(c, &cms, o, NULL, s_done, &x));
        CHECK(x.err == 0);
        json_decref(o);
    }

    /* list with selectors */
    RUN(&x, k8s_list(c, &cms, &(k8s_opts_t){.label_selector = "app=x"}, s_done, &x));
    CHECK(x.err == 0 && json_array_size(json_object_get(x.body, "items")) == 1);
    RUN(&x, k8s_list(c, &cms, &(k8s_opts_t){.label_selector = "app in (x,y),app!=x"}, s_done, &x));
    CHECK(x.err == 0 && json_array_size(json_object_get(x.body, "items")) == 4);
    RUN(&x, k8s_list(c, &cms, &(k8s_opts_t){.field_selector = "metadata.name=b2"}, s_done, &x));
    CHECK(x.err == 0 && json_array_size(json_object_get(x.body, "items")) == 1);
    RUN(&x, k8s_list(c, &cms, &(k8s_opts_t){.label_selector = "a b c ("}, s_done, &x));
    CHECK(x.err == ERR_INVAL && x.status == 400);

    /* pagination */
    size_t total = 0;
    char cont[1024] = "", rv0[64] = "";
    int pages = 0;
    do {
        RUN(&x, k8s_list(c, &cms, &(k8s_opts_t){.limit = 2, .continue_token = cont}, s_done, &x));
        CHECK(x.err == 0);
        total += json_array_size(json_object_get(x.body, "items"));
        snprintf(cont, sizeof(cont), "%s", jx_str(x.body, "metadata.continue", ""));
        if (!pages)
            snprintf(rv0, sizeof(rv0), "%s", jx_str(x.body, "metadata.resourceVersion", ""));
        else
            CHECK(strcmp(rv0, jx_str(x.body, "metadata.resourceVersion", "")) == 0);
        pages++;
    } while (cont[0] && x.err == 0 && pages < 10);
    CHECK(total == 5 && pages == 3);

    /* get, not found */
    RUN(&x, k8s_get(c, &a, NULL, s_done, &x));
    CHECK(x.err == 0 && strcmp(jx_str(x.body, "metadata.name", ""), "a") == 0);
    json_t *cur = json_deep_copy(x.body);
    k8s_res_t missing = cms;
    missing.name = "nope";
    RUN(&x, k8s_get(c, &missing, NULL, s_done, &x));
    CHECK(x.err == ERR_NOTFOUND && x.status == 404 && strcmp(x.reason, "NotFound") == 0 &&
          strstr(x.message, "nope"));

    /* update: ok, then a stale RV conflicts */
    json_object_set_new(json_object_get(cur, "data"), "k", json_string("v1"));
    RUN(&x, k8s_update(c, &a, cur, NULL, s_done, &x));
    CHECK(x.err == 0 && strcmp(jx_str(x.body, "data.k", ""), "v1") == 0);
    RUN(&x, k8s_update(c, &a, cur, NULL, s_done, &x)); /* cur still has the old RV */
    CHECK(x.err == ERR_CONFLICT && x.status == 409 && strcmp(x.reason, "Conflict") == 0);
    json_decref(cur);

    /* patches */
    json_t *mp = json_pack("{s:{s:s}}", "data", "m", "merged");
    RUN(&x, k8s_patch(c, &a, K8S_PATCH_MERGE, mp, NULL, s_done, &x));
    CHECK(x.err == 0 && strcmp(jx_str(x.body, "data.m", ""), "merged") == 0);
    json_decref(mp);
    json_t *jp = json_pack("[{s:s, s:s, s:s}]", "op", "add", "path", "/data/j", "value", "jp");
    RUN(&x, k8s_patch(c, &a, K8S_PATCH_JSON, jp, NULL, s_done, &x));
    CHECK(x.err == 0 && strcmp(jx_str(x.body, "data.j", ""), "jp") == 0);
    json_decref(jp);
    jp = json_pack("[{s:s, s:s, s:s}]", "op", "test", "path", "/data/j", "value", "other");
    RUN(&x, k8s_patch(c, &a, K8S_PATCH_JSON, jp, NULL, s_done, &x));
    CHECK(x.err == ERR_INVAL && x.status == 422);
    json_decref(jp);

    /* status subresource on a pod */
    k8s_res_t pods = {.version = "v1", .resource = "pods", .namespace_ = "kube-public"};
    json_t *pod =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:[{s:s, s:s}]}}", "apiVersion", "v1", "kind", "Pod",
                  "metadata", "name", "p1", "spec", "containers", "name", "c", "image", "busybox");
    RUN(&x, k8s_create(c, &pods, pod, NULL, s_done, &x));
    CHECK(x.err == 0);
    json_decref(pod);
    k8s_res_t pst = pods;
    pst.name = "p1";
    pst.subresource = "status";
    json_t *sp = json_pack("{s:{s:s}, s:{s:s}}", "status", "phase", "Running", "spec", "nodeName",
                           "ignored");
    RUN(&x, k8s_patch(c, &pst, K8S_PATCH_MERGE, sp, NULL, s_done, &x));
    CHECK(x.err == 0 && strcmp(jx_str(x.body, "status.phase", ""), "Running") == 0 &&
          jx_str(x.body, "spec.nodeName", NULL) == NULL);
    json_decref(sp);

    /* delete: wrong uid precondition, then background */
    RUN(&x, k8s_delete(c, &a, &(k8s_opts_t){.precondition_uid = "wrong"}, s_done, &x));
    CHECK(x.err == ERR_CONFLICT && x.status == 409);
    RUN(&x, k8s_delete(c, &a, &(k8s_opts_t){.propagation_policy = "Background"}, s_done, &x));
    CHECK(x.err == 0);
    RUN(&x, k8s_get(c, &a, NULL, s_done, &x));
    CHECK(x.err == ERR_NOTFOUND);
    pst.subresource = NULL;
    RUN(&x, k8s_delete(c, &pst, &(k8s_opts_t){.has_grace_period = true}, s_done, &x));
    CHECK(x.err == 0);

    /* 429 with Retry-After: 1 s, twice: the get succeeds on the third attempt */
    k8s_res_t b0 = cms;
    b0.name = "b0";
    apiserver_throttle(g_api, 2, 1);
    int64_t t0 = loop_clock_ms();
    RUN(&x, k8s_get(c, &b0, NULL, s_done, &x));
    int64_t took = loop_clock_ms() - t0;
    CHECK(x.err == 0 && x.attempts == 3 && took >= 1900);
    if (g_verbose)
        printf("  429 x2 with Retry-After 1: ok after %d attempts, %lld ms\n", x.attempts,
               (long long)took);
    /* 503 on every get: retried max_retries times, then ERR_SERVER */
    CHECK(apiserver_add_fault_spec(g_api, "get:configmaps:1:503") == 0);
    RUN(&x, k8s_get(c, &b0, NULL, s_done, &x));
    CHECK(x.err == ERR_SERVER && x.status == 503 && x.attempts == 4);
    /* 503 on 30% of the gets: retries make (almost) all succeed */
    apiserver_clear_faults(g_api);
    CHECK(apiserver_add_fault_spec(g_api, "get:configmaps:0.3:503") == 0);
    int ok = 0, retried = 0;
    for (int i = 0; i < 20; i++) {
        RUN(&x, k8s_get(c, &b0, NULL, s_done, &x));
        ok += x.err == 0;
        retried += x.attempts > 1;
    }
    CHECK(ok >= 18 && retried >= 1);
    apiserver_clear_faults(g_api);
    /* POST is not retried on 503 */
    CHECK(apiserver_add_fault_spec(g_api, "create:configmaps:1:503") == 0);
    o = s_cm("c1", "z");
    RUN(&x, k8s_create(c, &cms, o, NULL, s_done, &x));
    CHECK(x.err == ERR_SERVER && x.attempts == 1);
    apiserver_clear_faults(g_api);
    /* ... but is retried on 429 */
    apiserver_throttle(g_api, 1, 1);
    RUN(&x, k8s_create(c, &cms, o, NULL, s_done, &x));
    CHECK(x.err == 0 && x.attempts == 2);
    json_decref(o);
    k8s_client_destroy(&c);

    /* rate limiter: 20 qps, burst 1: 11 gets take >= 500 ms */
    k8s_config_t slow = {.qps = 20, .burst = 1};
    c = k8s_client_new(g_loop, kc, &slow);
    res_t many[11];
    memset(many, 0, sizeof(many));
    t0 = loop_clock_ms();
    for (int i = 0; i < 11; i++)
        CHECK(k8s_get(c, &b0, NULL, s_done, &many[i]) > 0);
    int n = 0;
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (n < 11 && loop_clock_ms() < end) {
        loop_run_once(g_loop, 20);
        n = 0;
        for (int i = 0; i < 11; i++)
            n += many[i].done;
    }
    took = loop_clock_ms() - t0;
    CHECK(n == 11 && took >= 480 && took < 3000);
    k8s_stats_t st;
    k8s_client_stats(c, &st);
    CHECK(st.throttled >= 9);
    if (g_verbose)
        printf("  rate limit 20 qps burst 1: 11 gets in %lld ms (throttled %llu)\n",
               (long long)took, (unsigned long long)st.throttled);
    for (int i = 0; i < 11; i++)
        json_decref(many[i].body);
    k8s_client_destroy(&c);
    json_decref(x.body);
    return failed;
}

/* ---------- reflector ---------- */

typedef struct {
    json_t *mirror; /* what a consumer applying the events holds */
    char log[8192]; /* event log of names starting with "ev-" */
    int synced;
    int events;
} consumer_t;

static void s_on_event(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old, void *arg)
{
    consumer_t *cs = arg;
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", jx_str(obj, "metadata.namespace", ""),
             jx_str(obj, "metadata.name", ""));
    cs->events++;
    if (type == REFLECTOR_DELETED)
        json_object_del(cs->mirror, key);
    else
        json_object_set(cs->mirror, key, obj);
    const char *name = jx_str(obj, "metadata.name", "");
    if (strncmp(name, "ev-", 3) == 0 && type != REFLECTOR_RESYNC) {
        size_t len = strlen(cs->log);
        snprintf(cs->log + len, sizeof(cs->log) - len, "%s:%s:%s;", reflector_event_name(type),
                 name, jx_str(obj, "data.k", ""));
    }
    if (type == REFLECTOR_MODIFIED && !old)
        cs->log[0] = '!'; /* MODIFIED must carry the old object */
}

static void s_on_synced(reflector_t *r, void *arg)
{
    ((consumer_t *)arg)->synced++;
}

/* True when `m` (key -> object) holds exactly the server's configmaps in "default". */
static bool s_equal_server(const json_t *m, bool verbose)
{
    objstore_t *s = apiserver_store(g_api);
    objstore_res_t *res = objstore_find(s, "", "configmaps");
    objstore_list_t l = {0};
    if (!res || objstore_list(s, res, &(objstore_list_opts_t){.ns = "default"}, &l, NULL) != 0)
        return false;
    bool eq = json_array_size(l.items) == json_object_size(m);
    size_t i;
    json_t *it;
    json_array_foreach(l.items, i, it)
    {
        char key[512];
        snprintf(key, sizeof(key), "default/%s", jx_str(it, "metadata.name", ""));
        json_t *mine = json_object_get(m, key);
        if (!mine || !json_equal(mine, it)) {
            if (verbose)
                printf("  differs: %s\n", key);
            eq = false;
        }
    }
    objstore_list_free(&l);
    return eq;
}

/* Writes directly in the store (synchronous; no HTTP). */
static void s_store_put(const char *name, const char *val)
{
    objstore_t *s = apiserver_store(g_api);
    objstore_res_t *res = objstore_find(s, "", "configmaps");
    json_t *cur = NULL;
    if (objstore_get(s, res, "default", name, &cur, NULL) == 0) {
        json_t *n = json_deep_copy(cur);
        json_decref(cur);
        json_object_set_new(n, "data", json_pack("{s:s}", "k", val));
        objstore_update(s, res, "default", name, &n, NULL, NULL, NULL, NULL);
    } else {
        json_t *n = json_pack("{s:{s:s}, s:{s:s}}", "metadata", "name", name, "data", "k", val);
        objstore_create(s, res, "default", &n, NULL, NULL);
    }
}

static void s_store_del(const char *name)
{
    objstore_t *s = apiserver_store(g_api);
    objstore_res_t *res = objstore_find(s, "", "configmaps");
    objstore_delete(s, res, "default", name, NULL, NULL, NULL, NULL);
}

static bool s_wait_equal(reflector_t *r, consumer_t *cs)
{
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (loop_clock_ms() < end) {
        loop_run_once(g_loop, 20);
        if (s_equal_server(reflector_cache(r), false) && s_equal_server(cs->mirror, false))
            return true;
    }
    s_equal_server(reflector_cache(r), true);
    return false;
}

static int s_reflector_tests(const kubeconfig_t *kc)
{
    int failed = 0;
    k8s_config_t cfg = {.backoff_base_ms = 20, .backoff_max_ms = 200, .qps = 500, .burst = 100};
    k8s_client_t *c = k8s_client_new(g_loop, kc, &cfg);
    consumer_t cs = {.mirror = json_object()};
    for (int i = 0; i < 30; i++) {
        char n[16];
        snprintf(n, sizeof(n), "pre-%02d", i);
        s_store_put(n, "0");
    }
    reflector_config_t rc = {.version = "v1",
                             .resource = "configmaps",
                             .namespace_ = "default",
                             .page_size = 7,
                             .resync_ms = 300,
                             .backoff_base_ms = 20,
                             .backoff_max_ms = 200,
                             .on_event = s_on_event,
                             .on_synced = s_on_synced,
                             .arg = &cs};
    reflector_t *r = reflector_new(g_loop, c, &rc);
    CHECK(r && reflector_start(r) == 0);
    CHECK(s_wait(&cs.synced, 1));
    CHECK(reflector_count(r) >= 30 && s_equal_server(reflector_cache(r), g_verbose));

    /* ordered events through the client */
    k8s_res_t cms = {.version = "v1", .resource = "configmaps", .namespace_ = "default"};
    k8s_res_t ev = cms;
    ev.name = "ev-1";
    res_t x = {0};
    json_t *o = json_pack("{s:{s:s}, s:{s:s}}", "metadata", "name", "ev-1", "data", "k", "1");
    RUN(&x, k8s_create(c, &cms, o, NULL, s_done, &x));
    json_decref(o);
    json_t *p = json_pack("{s:{s:s}}", "data", "k", "2");
    RUN(&x, k8s_patch(c, &ev, K8S_PATCH_MERGE, p, NULL, s_done, &x));
    json_decref(p);
    RUN(&x, k8s_delete(c, &ev, NULL, s_done, &x));
    CHECK(s_wait_equal(r, &cs));
    CHECK(strcmp(cs.log, "ADDED:ev-1:1;MODIFIED:ev-1:2;DELETED:ev-1:2;") == 0);
    if (g_verbose)
        printf("  events: %s\n", cs.log);

    /* resync re-delivers */
    int before = cs.events;
    int64_t end = loop_clock_ms() + 1000;
    while (loop_clock_ms() < end)
        loop_run_once(g_loop, 20);
    CHECK(cs.events >= before + 30);

    /* the gap: watches dropped, changes (including deletions), history compacted */
    reflector_stats_t st0, st1;
    reflector_stats(r, &st0);
    apiserver_drop_watches(g_api);
    for (int i = 0; i < 10; i++) {
        char n[16];
        snprintf(n, sizeof(n), "pre-%02d", i);
        s_store_del(n);
    }
    for (int i = 10; i < 20; i++) {
        char n[16];
        snprintf(n, sizeof(n), "pre-%02d", i);
        s_store_put(n, "changed");
    }
    for (int i = 0; i < 5; i++) {
        char n[16];
        snprintf(n, sizeof(n), "gap-%02d", i);
        s_store_put(n, "new");
    }
    apiserver_compact(g_api);
    CHECK(s_wait_equal(r, &cs));
    reflector_stats(r, &st1);
    CHECK(st1.relists >= st0.relists + 1);
    CHECK(reflector_get(r, "default", "pre-00") == NULL && reflector_get(r, "default", "gap-00"));
    if (g_verbose)
        printf("  after gap: %zu objects, relists %llu, rv %s\n", reflector_count(r),
               (unsigned long long)st1.relists, reflector_resource_version(r));

    /* chaos: 30% errors on list and watch, latency, drops and compactions during changes */
    CHECK(apiserver_add_fault_spec(g_api, "list:configmaps:0.3:500") == 0);
    CHECK(apiserver_add_fault_spec(g_api, "watch:configmaps:0.3:503") == 0);
    apiserver_set_latency(g_api, 2, 10);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 10; i++) {
            char n[16];
            snprintf(n, sizeof(n), "chaos-%02d", (round * 7 + i) % 40);
            if ((round + i) % 4 == 0)
                s_store_del(n);
            else
                s_store_put(n, round % 2 ? "odd" : "even");
        }
        if (round % 3 == 0)
            apiserver_drop_watches(g_api);
        if (round % 4 == 1)
            apiserver_compact(g_api);
        end = loop_clock_ms() + 100;
        while (loop_clock_ms() < end)
            loop_run_once(g_loop, 10);
    }
    CHECK(s_wait_equal(r, &cs));
    reflector_stats(r, &st1);
    if (g_verbose)
        printf("  chaos: lists %llu relists %llu watches %llu failures %llu events %llu\n",
               (unsigned long long)st1.lists, (unsigned long long)st1.relists,
               (unsigned long long)st1.watches, (unsigned long long)st1.failures,
               (unsigned long long)st1.events);
    CHECK(st1.failures >= 1);
    apiserver_clear_faults(g_api);
    CHECK(cs.log[0] != '!');

    reflector_destroy(&r);
    k8s_client_destroy(&c);
    json_decref(cs.mirror);
    json_decref(x.body);
    return failed;
}

/* ---------- projections (k8s_opts_t.keep, reflector keep) ---------- */

typedef struct {
    int done;
    int err;
    size_t n_items; /* items in the projected body */
    size_t n_spans; /* spans reported */
    int raw_ok; /* spans whose text parses to a complete object of the same name */
    int projected; /* items holding only the kept paths */
} keep_res_t;

static void s_keep_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    keep_res_t *x = arg;
    x->done++;
    x->err = r->err;
    json_t *items = json_object_get(r->body, "items");
    x->n_items = json_array_size(items);
    x->n_spans = r->n_items;
    for (size_t i = 0; i < r->n_items && i < x->n_items && r->raw; i++) {
        json_t *it = json_array_get(items, i);
        json_t *full = json_loadb(r->raw + r->items[i].off, r->items[i].len, 0, NULL);
        if (full && jx_get(full, "metadata.uid") && jx_get(full, "data") &&
            strcmp(jx_str(full, "metadata.name", "?"), jx_str(it, "metadata.name", "")) == 0)
            x->raw_ok++;
        if (json_object_size(it) == 1 && json_object_size(json_object_get(it, "metadata")) == 1)
            x->projected++;
        json_decref(full);
    }
}

typedef struct {
    int synced;
    int events; /* ADDED/MODIFIED seen */
    int raw_ok; /* of those, with a complete raw text matching the projection */
    int slim; /* of those, cached as a projection (no creationTimestamp) */
} keep_cs_t;

static void s_keep_event(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old,
                         void *arg)
{
    keep_cs_t *cs = arg;
    if (type != REFLECTOR_ADDED && type != REFLECTOR_MODIFIED)
        return;
    cs->events++;
    size_t len = 0;
    const char *raw = reflector_event_raw(r, obj, &len);
    json_t *full = raw ? json_loadb(raw, len, 0, NULL) : NULL;
    if (full && jx_get(full, "metadata.creationTimestamp") &&
        strcmp(jx_str(full, "metadata.uid", "?"), jx_str(obj, "metadata.uid", "")) == 0 &&
        json_equal(json_object_get(full, "data"), json_object_get(obj, "data")))
        cs->raw_ok++;
    if (!jx_get(obj, "metadata.creationTimestamp") && jx_get(obj, "metadata.resourceVersion"))
        cs->slim++;
    json_decref(full);
}

static void s_keep_synced(reflector_t *r, void *arg)
{
    ((keep_cs_t *)arg)->synced++;
}

static int s_keep_tests(const kubeconfig_t *kc)
{
    int failed = 0;
    k8s_config_t cfg = {.backoff_base_ms = 20, .qps = 500, .burst = 100};
    k8s_client_t *c = k8s_client_new(g_loop, kc, &cfg);
    CHECK(c != NULL);
    if (!c)
        return failed;
    for (int i = 0; i < 12; i++) {
        char n[16];
        snprintf(n, sizeof(n), "keep-%02d", i);
        s_store_put(n, "0");
    }
    /* a projected list: item spans hold the complete objects */
    const char *const keep[] = {"metadata.name", NULL};
    k8s_res_t cms = {.version = "v1", .resource = "configmaps", .namespace_ = "default"};
    keep_res_t x = {0};
    CHECK(k8s_list(c, &cms, &(k8s_opts_t){.keep = keep, .limit = 5}, s_keep_done, &x) > 0);
    CHECK(s_wait(&x.done, 1));
    CHECK(x.err == 0 && x.n_items == 5 && x.n_spans == 5 && x.raw_ok == 5 && x.projected == 5);
    /* a bad kept path is refused at the call */
    CHECK(k8s_list(c, &cms, &(k8s_opts_t){.keep = (const char *const[]){"a..b", NULL}}, s_keep_done,
                   &x) == ERR_INVAL);
    /* errors keep their complete Status */
    res_t e = {0};
    k8s_res_t missing = cms;
    missing.name = "no-such-configmap";
    RUN(&e, k8s_get(c, &missing, &(k8s_opts_t){.keep = keep}, s_done, &e));
    CHECK(e.err == ERR_NOTFOUND && strcmp(e.reason, "NotFound") == 0 &&
          jx_get(e.body, "message") != NULL);
    RUN(&e, k8s_get(c,
                    &(k8s_res_t){.version = "v1",
                                 .resource = "configmaps",
                                 .namespace_ = "default",
                                 .name = "keep-00"},
                    &(k8s_opts_t){.keep = keep}, s_done, &e));
    CHECK(e.err == 0 && strcmp(jx_str(e.body, "metadata.name", ""), "keep-00") == 0 &&
          !jx_get(e.body, "metadata.uid") && !jx_get(e.body, "data"));
    json_decref(e.body);

    /* a projected reflector: list and watch objects come with their complete text */
    keep_cs_t cs = {0};
    reflector_config_t rc = {.version = "v1",
                             .resource = "configmaps",
                             .namespace_ = "default",
                             .page_size = 4,
                             .keep = (const char *const[]){"data", NULL},
                             .on_event = s_keep_event,
                             .on_synced = s_keep_synced,
                             .arg = &cs};
    reflector_t *r = reflector_new(g_loop, c, &rc);
    CHECK(r && reflector_start(r) == 0);
    CHECK(s_wait(&cs.synced, 1));
    int listed = cs.events;
    CHECK(listed >= 12 && cs.raw_ok == listed && cs.slim == listed);
    s_store_put("keep-00", "1");
    s_store_put("keep-new", "2");
    CHECK(s_wait(&cs.events, listed + 2));
    CHECK(cs.raw_ok == cs.events && cs.slim == cs.events);
    json_t *o = r ? reflector_get(r, "default", "keep-00") : NULL;
    CHECK(o && strcmp(jx_str(o, "data.k", ""), "1") == 0 && jx_get(o, "metadata.uid") &&
          !jx_get(o, "metadata.creationTimestamp"));
    if (g_verbose)
        printf("  keep: %d events, %d with complete raw text\n", cs.events, cs.raw_ok);
    reflector_destroy(&r);
    for (int i = 0; i < 12; i++) {
        char n[16];
        snprintf(n, sizeof(n), "keep-%02d", i);
        s_store_del(n);
    }
    s_store_del("keep-new");
    k8s_client_destroy(&c);
    return failed;
}

int main(int argc, char **argv)
{
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("k8s_it", g_verbose ? LOG_INFO : LOG_WARN, 2);
    g_loop = loop_new();
    g_api = apiserver_new(g_loop, &(apiserver_opts_t){.bookmark_ms = 200});
    CHECK(g_loop && g_api);
    if (!g_api)
        return 1;
    char dir[] = "/tmp/rf-k8s-it-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], text[1024];
    snprintf(path, sizeof(path), "%s/config", dir);
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
             "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
             "contexts: [{name: sim, context: {cluster: sim, user: u, namespace: default}}]\n"
             "users: [{name: u, user: {tokenFile: token}}]\n",
             apiserver_port(g_api));
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    char tok[300];
    snprintf(tok, sizeof(tok), "%s/token", dir);
    f = fopen(tok, "w");
    if (f) {
        fputs("test-token\n", f);
        fclose(f);
    }
    kubeconfig_t *kc = NULL;
    buf_t err;
    buf_init(&err, 4096);
    CHECK(kubeconfig_load(path, NULL, &kc, &err) == 0);
    /* an exec credential plugin feeding the client */
    char plug[300], path2[300];
    snprintf(plug, sizeof(plug), "%s/plugin.sh", dir);
    snprintf(path2, sizeof(path2), "%s/config-exec", dir);
    f = fopen(plug, "w");
    if (f) {
        fputs("#!/bin/sh\nprintf '{\"kind\":\"ExecCredential\",\"apiVersion\":"
              "\"client.authentication.k8s.io/v1beta1\",\"status\":{\"token\":\"xt\"}}'\n",
              f);
        fclose(f);
        chmod(plug, 0700);
    }
    snprintf(text, sizeof(text),
             "current-context: sim\n"
             "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
             "contexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
             "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1,"
             " command: ./plugin.sh}}}]\n",
             apiserver_port(g_api));
    f = fopen(path2, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    kubeconfig_t *kx = NULL;
    CHECK(kubeconfig_load(path2, NULL, &kx, &err) == 0);
    if (kx) {
        k8s_client_t *c = k8s_client_new(g_loop, kx, NULL);
        res_t x = {0};
        k8s_res_t ns = {.version = "v1", .resource = "namespaces"};
        RUN(&x, k8s_list(c, &ns, NULL, s_done, &x));
        CHECK(x.err == 0 && json_array_size(json_object_get(x.body, "items")) >= 4);
        RUN(&x, k8s_list(c, &ns, NULL, s_done, &x)); /* cached credential */
        k8s_stats_t st;
        k8s_client_stats(c, &st);
        CHECK(x.err == 0 && st.auth_reloads == 1);
        json_decref(x.body);
        k8s_client_destroy(&c);
    }
    kubeconfig_destroy(&kx);
    unlink(plug);
    unlink(path2);
    if (kc) {
        failed += s_client_tests(kc);
        failed += s_reflector_tests(kc);
        failed += s_keep_tests(kc);
    } else {
        printf("kubeconfig: %s\n", buf_str(&err));
    }
    kubeconfig_destroy(&kc);
    buf_free(&err);
    unlink(tok);
    unlink(path);
    rmdir(dir);
    apiserver_destroy(&g_api);
    loop_destroy(&g_loop);
    curl_global_cleanup();
    return SELFTEST_RESULT("k8s_it", true);
}
