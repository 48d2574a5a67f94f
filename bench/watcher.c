/*
 * bench-watcher: pods modified in kubesim -> rows in SQLite and ObjectChanged on the bus, against
 * kubesim's raw watch delivery rate in the same run.
 *
 * One process, one loop, kubesim's API server in-process (sim/apiserver.h). N pods carrying Ray
 * labels are created first. Then each run patches every pod `--mods` times (a 0 ms timer writes
 * BENCH_WRITE_BATCH pods per loop turn straight into kubesim's object store, so writes interleave
 * with delivery) and measures, from the first write to the last event:
 *   (a) raw: a bare k8s_watch() on pods (the same label selector) counting WatchEvents;
 *   (b) watcher: the watcher logic (services/watcher) with its store on tmpfs and its publisher
 *       bound on inproc://, and a bus subscriber counting ObjectChanged; an event arrives only
 *       after its row committed, so the count covers both rows and events.
 * kubesim, the writer and the consumer share one thread, so both rates include kubesim's own
 * cost. The watcher does not run during (a): it is created (initial list stored, not timed)
 * before each (b) and destroyed after it. Runs alternate raw / watcher; the table gives median
 * events/s of each and the ratio (target
 * >= BENCH_TARGET_RATIO), plus the watcher's RSS growth per 10,000 observed pods (VmRSS before
 * the watcher was created and after its initial list was stored).
 *
 * Usage: bench-watcher [--pods N] [--mods M] [--runs R]
 */
#include "apiserver.h"
#include "bus.h"
#include "err.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "objstore.h"
#include "store.h"
#include "watcher.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define BENCH_PODS_DEFAULT 10000
#define BENCH_MODS_DEFAULT 2
#define BENCH_RUNS_DEFAULT 3
#define BENCH_RUNS_MAX 9
#define BENCH_WRITE_BATCH 200 /* pods written per loop turn */
#define BENCH_WAIT_MS 60000 /* longest wait for one run's events */
#define BENCH_TARGET_RATIO 0.80
#define BENCH_SHARDS 256
#define BENCH_HWM 2000000
#define BENCH_SELECTOR "ray.io/node-type in (head,worker,redis-cleanup)"

typedef struct {
    loop_t *loop;
    apiserver_t *api;
    objstore_res_t *pods;
    size_t npods; /* pods */
    size_t total; /* writes in this run */
    size_t written; /* writes done */
    int round; /* label value of this run */
    uint64_t raw_events; /* raw watch MODIFIED events */
    uint64_t bus_events; /* ObjectChanged MODIFIED received */
} bench_t;

static long s_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void s_pod_name(size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "rc%zu-worker-%05zu", i / 100, i);
}

static void s_write_one(bench_t *b, size_t i)
{
    char name[64], cl[32], v[16];
    s_pod_name(i, name, sizeof(name));
    snprintf(cl, sizeof(cl), "rc%zu", i / 100);
    snprintf(v, sizeof(v), "%d", b->round);
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:s, s:s}},"
                          " s:{s:[{s:s, s:s}], s:s}, s:{s:s}}",
                          "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace",
                          "default", "labels", "ray.io/cluster", cl, "ray.io/node-type", "worker",
                          "app.kubernetes.io/created-by", "kuberay-operator", "round", v, "spec",
                          "containers", "name", "ray-worker", "image", "rayproject/ray:2.41.0",
                          "nodeName", "kubesim-node-0", "status", "phase", "Running");
    objstore_t *s = apiserver_store(b->api);
    if (b->round == 0) {
        objstore_create(s, b->pods, "default", &o, NULL, NULL);
        return;
    }
    objstore_update(s, b->pods, "default", name, &o,
                    &(objstore_update_opts_t){.precond = OBJSTORE_PRECOND_NONE}, NULL, NULL, NULL);
}

static int64_t s_writer(loop_t *loop, int64_t id, void *arg)
{
    bench_t *b = arg;
    for (int k = 0; k < BENCH_WRITE_BATCH && b->written < b->total; k++, b->written++) {
        if (b->written && b->written % b->npods == 0)
            b->round++;
        s_write_one(b, b->written % b->npods);
    }
    return b->written < b->total ? 0 : LOOP_TIMER_DONE;
}

static int s_raw_event(k8s_client_t *c, int64_t id, const char *type, json_t *obj, void *arg)
{
    bench_t *b = arg;
    if (strcmp(type, "MODIFIED") == 0)
        b->raw_events++;
    return 0;
}

static void s_raw_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
}

static int s_bus_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    bench_t *b = arg;
    if (msg->object_changed.type == 2)
        b->bus_events++;
    return 0;
}

/* Writes total modifications and waits for *counter to reach them. Returns events/s or 0. */
static double s_run(bench_t *b, uint64_t *counter, int round)
{
    uint64_t start_count = *counter;
    b->round = round;
    b->written = 0;
    int64_t t0 = loop_clock_ms();
    loop_add_timer(b->loop, 0, s_writer, b);
    int64_t end = t0 + BENCH_WAIT_MS;
    while (*counter - start_count < b->total && loop_clock_ms() < end)
        loop_run_once(b->loop, 5);
    int64_t took = loop_clock_ms() - t0;
    if (*counter - start_count < b->total) {
        fprintf(stderr, "run incomplete: %llu of %zu events\n",
                (unsigned long long)(*counter - start_count), b->total);
        return 0;
    }
    return (double)b->total * 1000.0 / (double)(took ? took : 1);
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A started watcher whose initial list is stored and published, or NULL. */
static watcher_t *s_watcher(bench_t *b, store_t *store, bus_pub_t *pub, bus_sub_t *sub,
                            watcher_cluster_t *cl, buf_t *ebuf)
{
    watcher_config_t wc = {.clusters = cl,
                           .nclusters = 1,
                           .shards = BENCH_SHARDS,
                           .store = store,
                           .pub = pub,
                           .qps = 1000,
                           .burst = 1000};
    watcher_t *w = store && pub && sub ? watcher_new(b->loop, &wc, ebuf) : NULL;
    if (!w || watcher_start(w) != 0) {
        fprintf(stderr, "watcher: %s\n", buf_str(ebuf));
        watcher_destroy(&w);
        return NULL;
    }
    int64_t end = loop_clock_ms() + BENCH_WAIT_MS;
    watcher_stats_t ws;
    do {
        loop_run_once(b->loop, 5);
        watcher_stats(w, &ws);
    } while ((ws.objects < b->npods || ws.pending) && loop_clock_ms() < end);
    for (int i = 0; i < 20; i++)
        loop_run_once(b->loop, 5);
    return w;
}

int main(int argc, char **argv)
{
    size_t npods = BENCH_PODS_DEFAULT;
    int mods = BENCH_MODS_DEFAULT, runs = BENCH_RUNS_DEFAULT;
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--pods") && v > 0)
            npods = (size_t)v;
        else if (!strcmp(argv[i], "--mods") && v > 0)
            mods = (int)v;
        else if (!strcmp(argv[i], "--runs") && v > 0 && v <= BENCH_RUNS_MAX)
            runs = (int)v;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("bench-watcher", LOG_ERROR, 2);
    bench_t b = {.loop = loop_new(), .npods = npods};
    void *zctx = zmq_ctx_new();
    b.api = apiserver_new(b.loop, &(apiserver_opts_t){.history = npods * (size_t)mods * 4 + 1000});
    if (!b.loop || !zctx || !b.api)
        return 1;
    b.pods = objstore_find(apiserver_store(b.api), "", "pods");
    char dir[] = "/dev/shm/rf-bench-watcher-XXXXXX";
    char dir2[] = "/tmp/rf-bench-watcher-XXXXXX";
    char *d = mkdtemp(dir);
    if (!d)
        d = mkdtemp(dir2);
    if (!d)
        return 1;
    char kcpath[256], dbpath[256], text[512];
    snprintf(kcpath, sizeof(kcpath), "%s/config", d);
    snprintf(dbpath, sizeof(dbpath), "%s/observed.db", d);
    snprintf(text, sizeof(text),
             "current-context: sim\nclusters: [{name: sim, cluster: {server: "
             "'http://127.0.0.1:%d'}}]\ncontexts: [{name: sim, context: {cluster: sim, user: u}}]\n"
             "users: [{name: u, user: {}}]\n",
             apiserver_port(b.api));
    FILE *f = fopen(kcpath, "w");
    if (!f)
        return 1;
    fputs(text, f);
    fclose(f);

    /* the pods */
    b.round = 0;
    for (size_t i = 0; i < npods; i++)
        s_write_one(&b, i);
    b.total = npods * (size_t)mods;

    /* the watcher, its store and the bus */
    long rss0 = s_rss_kb();
    int err = 0;
    store_t *store = store_open(dbpath, STORE_READWRITE, &err);
    bus_pub_t *pub = bus_pub_new(
        b.loop, zctx,
        &(bus_options_t){.source = "watcher/bench", .endpoint = "@inproc://bw", .hwm = BENCH_HWM});
    bus_sub_t *sub =
        bus_sub_new(b.loop, zctx, &(bus_options_t){.endpoint = "inproc://bw", .hwm = BENCH_HWM},
                    s_bus_msg, NULL, &b);
    for (uint32_t s = 0; sub && s < BENCH_SHARDS; s++)
        bus_sub_subscribe(sub, s);
    watcher_cluster_t cl = {.name = "bench", .kubeconfig = kcpath};
    buf_t ebuf;
    buf_init(&ebuf, 4096);
    watcher_stats_t ws = {0};
    watcher_t *w = s_watcher(&b, store, pub, sub, &cl, &ebuf);
    if (!w)
        return 1;
    long rss1 = s_rss_kb();
    watcher_destroy(&w); /* (a) runs without the watcher */
    uint64_t rows = 0, drops = 0;
    double rss_per_10k = (double)(rss1 - rss0) / 1024.0 * 10000.0 / (double)npods;

    kubeconfig_t *kc = NULL;
    kubeconfig_load(kcpath, NULL, &kc, &ebuf);
    k8s_client_t *raw = kc ? k8s_client_new(b.loop, kc, &(k8s_config_t){.qps = -1}) : NULL;
    if (!raw)
        return 1;
    double rr[BENCH_RUNS_MAX], rw[BENCH_RUNS_MAX];
    int round = 1;
    printf("bench-watcher: %zu pods x %d modifications per run, %d runs\n", npods, mods, runs);
    for (int r = 0; r < runs; r++) {
        /* (a) the raw watch alone, from the current RV */
        char rv[32];
        snprintf(rv, sizeof(rv), "%llu", (unsigned long long)objstore_rv(apiserver_store(b.api)));
        int64_t id = k8s_watch(raw, &(k8s_res_t){.version = "v1", .resource = "pods"},
                               &(k8s_opts_t){.label_selector = BENCH_SELECTOR,
                                             .resource_version = rv,
                                             .timeout_seconds = 600},
                               s_raw_event, s_raw_done, &b);
        for (int i = 0; i < 20; i++)
            loop_run_once(b.loop, 5);
        rr[r] = s_run(&b, &b.raw_events, round);
        round += mods;
        k8s_cancel(raw, id);
        /* (b) the watcher alone: rows committed and events received */
        if (!w)
            w = s_watcher(&b, store, pub, sub, &cl, &ebuf);
        if (!w)
            return 1;
        rw[r] = s_run(&b, &b.bus_events, round);
        watcher_stats(w, &ws);
        rows += ws.rows_written;
        drops += ws.drops_hwm + ws.drops_queue;
        watcher_destroy(&w);
        round += mods;
        printf("  run %d: raw watch %.0f events/s, watcher %.0f events/s\n", r + 1, rr[r], rw[r]);
    }
    double mr = s_median(rr, runs), mw = s_median(rw, runs);
    printf("\n%-44s %14s\n", "measure", "median");
    printf("%-44s %14.0f\n", "kubesim raw watch delivery (events/s)", mr);
    printf("%-44s %14.0f\n", "watcher rows+bus events (events/s)", mw);
    printf("%-44s %13.0f%%  (target >= %.0f%%) %s\n", "ratio", mr > 0 ? 100.0 * mw / mr : 0,
           BENCH_TARGET_RATIO * 100, mr > 0 && mw / mr >= BENCH_TARGET_RATIO ? "ok" : "BELOW");
    printf("%-44s %14.1f\n", "watcher RSS per 10,000 observed pods (MiB)", rss_per_10k);
    printf("%-44s %14llu\n", "bus drops (hwm + queue)", (unsigned long long)drops);
    printf("%-44s %14llu\n", "rows written (incl. initial lists)", (unsigned long long)rows);
    watcher_destroy(&w);
    k8s_client_destroy(&raw);
    kubeconfig_destroy(&kc);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    store_destroy(&store);
    apiserver_destroy(&b.api);
    buf_free(&ebuf);
    zmq_ctx_term(zctx);
    loop_destroy(&b.loop);
    curl_global_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", d);
    return 0;
}
