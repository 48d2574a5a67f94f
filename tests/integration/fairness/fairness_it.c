/*
 * fairness_it: fair progress across keys (issue 7: "one huge scale-up or a burst of jobs must not
 * starve other keys"), end to end in-process on one loop: kubesim's API server (simulate=true,
 * with API latency), the watcher logic writing observed.db and publishing on an inproc:// bus,
 * and the scheduler logic (bus -> work queue -> reconcile) auditing into scheduler.db.
 *
 * Scenario: RayCluster "big" is created with one worker group of FT_BIG_WORKERS replicas; once
 * its first worker create is audited (its scale-up pass is under way), FT_SMALL RayClusters
 * "small-<i>" are created. Each pass keeps at most RECONCILE_PASS_WINDOW requests in flight, so
 * every small cluster's head pod create must be audited BEFORE big's last worker create. The
 * assertions are on the order of audit rows (their ids, assigned in append order), never on time;
 * the waits only bound how long the test may take.
 *
 * Usage: fairness_it [-v]. Exit 0 when every check passes.
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

#define FT_WAIT_MS 120000 /* longest wait for one step (a bound, not an assertion) */
#define FT_SHARDS 256 /* shards */
#define FT_NS "default" /* namespace */
#define FT_BIG_WORKERS 1000 /* the big scale-up */
#define FT_SMALL 20 /* RayClusters created meanwhile */
#define FT_LATENCY_MS 5 /* fixed API latency */
#define FT_JITTER_MS 5 /* random API latency on top */

static loop_t *g_loop;
static void *g_zctx;
static bool g_verbose;
static char g_dir[64];
static apiserver_t *g_api;
static reconciler_t *g_rec;
static workq_t *g_q;
static store_t *g_wdb, *g_sdb; /* destroyed after the loop */

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
    int64_t end = loop_clock_ms() + FT_WAIT_MS;
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

/* One integer from `sql` on the scheduler's database (committed rows only); -1 on error. */
static int64_t s_int(const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(store_handle(g_sdb), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#define FT_BIG_WORKER_CREATES                                                                      \
    "FROM audit WHERE cause_key = 'c1/" FT_NS "/big' AND target_kind = 'Pod' AND verb = 'create' " \
    "AND reason = 'CreatedWorkerPod'"

/* Waits until `sql` yields at least `want`; returns the last value. */
static int64_t s_wait_int(const char *sql, int64_t want)
{
    int64_t end = loop_clock_ms() + FT_WAIT_MS, v = -1;
    while (loop_clock_ms() < end) {
        loop_run_once(g_loop, 10);
        store_flush(g_sdb);
        if ((v = s_int(sql)) >= want)
            break;
    }
    return v;
}

static int s_scenario(const char *kcpath)
{
    int failed = 0;
    json_t *sample = NULL;
    char dbpath[256], schedpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/observed.db", g_dir);
    snprintf(schedpath, sizeof(schedpath), "%s/scheduler.db", g_dir);
    buf_t err;
    buf_init(&err, 4096);
    kubeconfig_t *kc = NULL;
    CHECK(kubeconfig_load(kcpath, NULL, &kc, &err) == 0);
    k8s_client_t *admin = kc ? k8s_client_new(g_loop, kc, NULL) : NULL;
    k8s_client_t *client =
        kc ? k8s_client_new(g_loop, kc, &(k8s_config_t){.qps = 100000, .burst = 100000}) : NULL;
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
    int e = 0;
    store_t *wdb = store_open(dbpath, STORE_READWRITE, &e);
    store_t *obs = store_open(dbpath, STORE_READONLY, &e);
    store_t *sdb = store_open(schedpath, STORE_READWRITE, &e);
    CHECK(wdb && obs && sdb);
    g_sdb = sdb;
    if (sdb)
        store_attach_loop(sdb, g_loop);
    bus_pub_t *pub = bus_pub_new(
        g_loop, g_zctx,
        &(bus_options_t){.source = "watcher/it", .endpoint = "@inproc://fair-it", .hwm = 1000000});
    bus_sub_t *sub = bus_sub_new(g_loop, g_zctx,
                                 &(bus_options_t){.endpoint = "inproc://fair-it", .hwm = 1000000},
                                 s_on_msg, NULL, NULL);
    CHECK(pub && sub);
    for (uint32_t s = 0; sub && s < FT_SHARDS; s++)
        bus_sub_subscribe(sub, s);
    watcher_cluster_t cl = {.name = "c1", .kubeconfig = kcpath};
    watcher_config_t wc = {.clusters = &cl,
                           .nclusters = 1,
                           .shards = FT_SHARDS,
                           .store = wdb,
                           .pub = pub,
                           .backoff_base_ms = 20,
                           .backoff_max_ms = 200,
                           .qps = 100000,
                           .burst = 100000};
    watcher_t *w = wdb && pub ? watcher_new(g_loop, &wc, &err) : NULL;
    CHECK(w != NULL);
    audit_t *aud =
        sdb ? audit_new(sdb, &(audit_actor_t){.service = "scheduler", .replica = "scheduler/0"})
            : NULL;
    g_rec = obs && client ? reconcile_new(g_loop, &(reconcile_config_t){.cluster = "c1",
                                                                        .observed = obs,
                                                                        .client = client,
                                                                        .audit = aud,
                                                                        .events = true})
                          : NULL;
    CHECK(g_rec != NULL);
    workq_opts_t qo;
    workq_opts_default(&qo);
    qo.concurrency = 8;
    g_q = g_rec ? workq_new(g_loop, &qo, reconcile_fn, g_rec) : NULL;
    CHECK(g_q != NULL);
    if (!w || !g_q || !aud)
        goto out;
    CHECK(watcher_start(w) == 0);
    int64_t end = loop_clock_ms() + FT_WAIT_MS;
    while (!watcher_ready(w) && loop_clock_ms() < end)
        loop_run_once(g_loop, 10);
    CHECK(watcher_ready(w));
    apiserver_set_latency(g_api, FT_LATENCY_MS, FT_JITTER_MS);

    const char *shared = getenv("RF_SHARED_DIR");
    char spath[512];
    snprintf(spath, sizeof(spath), "%s/kuberay/samples/ray-cluster.sample.yaml",
             shared ? shared : RF_SHARED_DIR);
    sample = s_load_yaml(spath);
    CHECK(sample != NULL);
    if (!sample)
        goto out;
    k8s_res_t rcres = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = FT_NS};
    /* 1. the big scale-up starts */
    json_t *big = json_deep_copy(sample);
    jx_set_path(big, "metadata.name", json_string("big"));
    json_t *wg = json_array_get(jx_get(big, "spec.workerGroupSpecs"), 0);
    json_object_set_new(wg, "replicas", json_integer(FT_BIG_WORKERS));
    json_object_set_new(wg, "maxReplicas", json_integer(FT_BIG_WORKERS));
    CHECK(s_create(admin, &rcres, big) == 0);
    json_decref(big);
    CHECK(s_wait_int("SELECT count(*) " FT_BIG_WORKER_CREATES, 1) >= 1);
    /* 2. meanwhile, FT_SMALL RayClusters (the admin client is not the scheduler's: their
     * creates do not queue behind the scheduler's writes) */
    for (int i = 0; i < FT_SMALL; i++) {
        json_t *s = json_deep_copy(sample);
        char name[32];
        snprintf(name, sizeof(name), "small-%d", i);
        jx_set_path(s, "metadata.name", json_string(name));
        json_object_set_new(json_array_get(jx_get(s, "spec.workerGroupSpecs"), 0), "replicas",
                            json_integer(0));
        json_object_set_new(json_array_get(jx_get(s, "spec.workerGroupSpecs"), 0), "minReplicas",
                            json_integer(0));
        CHECK(s_create(admin, &rcres, s) == 0);
        json_decref(s);
    }
    int64_t at_small = s_int("SELECT count(*) " FT_BIG_WORKER_CREATES);
    /* 3. everything is written */
    int64_t nbig = s_wait_int("SELECT count(*) " FT_BIG_WORKER_CREATES, FT_BIG_WORKERS);
    int64_t nsmall = s_wait_int("SELECT count(DISTINCT cause_key) FROM audit WHERE target_kind = "
                                "'Pod' AND verb = 'create' AND reason = 'CreatedHeadPod' AND "
                                "cause_key LIKE 'c1/" FT_NS "/small-%'",
                                FT_SMALL);
    CHECK(nbig == FT_BIG_WORKERS);
    CHECK(nsmall == FT_SMALL);
    /* the small clusters arrived while big still had most of its scale-up ahead */
    CHECK(at_small >= 1 && at_small < FT_BIG_WORKERS / 2);
    /* 4. the order: every small head create before big's last worker create */
    int64_t last_big = s_int("SELECT max(id) " FT_BIG_WORKER_CREATES);
    int64_t last_small =
        s_int("SELECT max(id) FROM audit WHERE target_kind = 'Pod' AND verb = "
              "'create' AND reason = 'CreatedHeadPod' AND cause_key LIKE 'c1/" FT_NS "/small-%'");
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) " FT_BIG_WORKER_CREATES " AND id > %lld",
             (long long)last_small);
    int64_t after = s_int(sql);
    if (g_verbose)
        printf("  big worker creates: %lld audited when the small clusters were created, %lld "
               "after the last small head create (of %d)\n",
               (long long)at_small, (long long)after, FT_BIG_WORKERS);
    CHECK(last_big > 0 && last_small > 0 && last_small < last_big);
    /* and well before: most of the big scale-up was still to come */
    CHECK(after >= FT_BIG_WORKERS / 2);
    /* every write of the small clusters got an answer (none was starved into an error) */
    CHECK(s_int("SELECT count(*) FROM audit WHERE cause_key LIKE 'c1/" FT_NS "/small-%' AND "
                "result_error IS NOT NULL") == 0);
out:
    json_decref(sample);
    workq_destroy(&g_q);
    k8s_client_destroy(&client);
    reconcile_destroy(&g_rec);
    audit_destroy(&aud);
    watcher_destroy(&w);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    store_destroy(&obs);
    g_wdb = wdb;
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
    log_setup("fairness_it", g_verbose ? LOG_WARN : LOG_ERROR, 2);
    g_loop = loop_new();
    g_zctx = zmq_ctx_new();
    snprintf(g_dir, sizeof(g_dir), "/tmp/rf-fair-it-XXXXXX");
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
    return SELFTEST_RESULT("fairness_it", true);
}
