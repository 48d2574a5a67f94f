/*
 * bench-watcher: pods modified in kubesim -> rows in SQLite and ObjectChanged on the bus, against
 * kubesim's raw watch delivery rate in the same run.
 *
 * Three processes, as in a real deployment where the API server is not the watcher:
 *   - kubesim: build/bin/kubesim next to this binary, a child process (--simulate off, --port 0,
 *     --ready-file), with its own core;
 *   - the writer: this binary re-executed with --writer, a child process that creates the pods
 *     once, then for each run patches every pod `--mods` times over HTTP (merge patch of one
 *     label, BENCH_WINDOW requests in flight), the load generator of the run;
 *   - this process, the consumer, which for each run measures from the writer's start to the
 *     last event received:
 *       (a) raw: a minimal client, one streaming watch on pods (the watcher's label selector,
 *           from the current resourceVersion) over common/http that counts event lines;
 *       (b) watcher: the watcher logic (services/watcher: reflectors, rows in SQLite on tmpfs,
 *           ObjectChanged published on inproc://) and a bus subscriber in this process counting
 *           MODIFIED events; an event is published only after its row committed, so the count
 *           covers both rows and events.
 * The watcher does not run during (a): it is created (initial list stored, not timed) before
 * each (b) and destroyed after it. Both paths see the same writes. Runs alternate which path goes
 * first; the table gives each run, the medians and their ratio (target >= BENCH_TARGET_RATIO),
 * plus the watcher's RSS growth per 10,000 observed pods (VmRSS of this process before the first
 * watcher was created and after its initial list was stored).
 *
 * CPUs: with two or more, kubesim and the writer are pinned to all but the last CPU and this
 * process to the last one (--pin off: no pinning), so the consumer has its own core as a watcher
 * would in a real deployment and the figures do not depend on how the scheduler mixes the three.
 * The cpu columns (CPU time per event of each process) are the load-independent comparison.
 *
 * --watch-nodes on runs the watcher as federation does (watcher_config_t.watch_nodes: every pod
 * also through the PodUsage projection reflector, and Nodes), to price that per pod event.
 *
 * Usage: bench-watcher [--pods N] [--mods M] [--runs R] [--pin on|off] [--watch-nodes on|off]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sched_setaffinity */
#endif
#include "bus.h"
#include "err.h"
#include "http.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "procstat.h"
#include "store.h"
#include "watcher.h"

#include <sched.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define BENCH_PODS_DEFAULT 10000
#define BENCH_MODS_DEFAULT 2
#define BENCH_RUNS_DEFAULT 3
#define BENCH_RUNS_MAX 9
#define BENCH_WINDOW 8 /* writer requests in flight (one HTTP/1.1 connection each) */
#define BENCH_WAIT_MS 60000 /* longest wait for one run's events, or for the writer */
#define BENCH_READY_MS 10000 /* longest wait for kubesim's ready file */
#define BENCH_TARGET_RATIO 0.80
#define BENCH_SHARDS 256
#define BENCH_HWM 2000000
#define BENCH_PATH_MAX 4096

/* ---------- the writer child ---------- */

typedef struct {
    loop_t *loop;
    k8s_client_t *c;
    size_t npods; /* pods */
    size_t total; /* writes to make */
    size_t sent; /* requests started */
    size_t done; /* requests ended */
    size_t failed; /* of those, failed */
    int round; /* label value of the first pass (0: create the pods) */
    int inflight; /* requests in flight */
} writer_t;

static void s_pod_name(size_t i, char *out, size_t cap)
{
    snprintf(out, cap, "rc%zu-worker-%05zu", i / 100, i);
}

static void s_wr_next(writer_t *w);

static void s_wr_done(k8s_client_t *c, const k8s_result_t *res, void *arg)
{
    writer_t *w = arg;
    w->inflight--;
    w->done++;
    if (res->err && w->failed++ == 0)
        fprintf(stderr, "writer: %s %s\n", err_str(res->err), res->message);
    s_wr_next(w);
}

static void s_wr_next(writer_t *w)
{
    while (w->inflight < BENCH_WINDOW && w->sent < w->total) {
        size_t i = w->sent % w->npods;
        int round = w->round + (int)(w->sent / w->npods);
        char name[64], cl[32], v[16];
        s_pod_name(i, name, sizeof(name));
        snprintf(cl, sizeof(cl), "rc%zu", i / 100);
        snprintf(v, sizeof(v), "%d", round);
        k8s_res_t res = {.version = "v1", .resource = "pods", .namespace_ = "default"};
        int64_t id;
        if (w->round == 0) {
            json_t *o =
                json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:s, s:s}},"
                          " s:{s:[{s:s, s:s}], s:s}, s:{s:s}}",
                          "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace",
                          "default", "labels", "ray.io/cluster", cl, "ray.io/node-type", "worker",
                          "app.kubernetes.io/created-by", "kuberay-operator", "round", v, "spec",
                          "containers", "name", "ray-worker", "image", "rayproject/ray:2.41.0",
                          "nodeName", "kubesim-node-0", "status", "phase", "Running");
            id = o ? k8s_create(w->c, &res, o, NULL, s_wr_done, w) : ERR_NOMEM;
            json_decref(o);
        } else {
            res.name = name;
            json_t *p = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "round", v);
            id = p ? k8s_patch(w->c, &res, K8S_PATCH_MERGE, p, NULL, s_wr_done, w) : ERR_NOMEM;
            json_decref(p);
        }
        w->sent++;
        if (id < 0) {
            w->done++;
            if (w->failed++ == 0)
                fprintf(stderr, "writer: %s\n", err_str((int)id));
            continue;
        }
        w->inflight++;
    }
}

/* bench-watcher --writer KUBECONFIG NPODS ROUND TOTAL: exit 0 when every write succeeded. */
static int s_writer_main(char **argv)
{
    writer_t w = {.loop = loop_new(),
                  .npods = (size_t)strtoull(argv[3], NULL, 10),
                  .round = (int)strtol(argv[4], NULL, 10),
                  .total = (size_t)strtoull(argv[5], NULL, 10)};
    kubeconfig_t *kc = NULL;
    buf_t ebuf;
    buf_init(&ebuf, 4096);
    if (!w.loop || w.npods == 0 || kubeconfig_load(argv[2], NULL, &kc, &ebuf) != 0) {
        fprintf(stderr, "writer: %s\n", buf_str(&ebuf));
        return 1;
    }
    w.c = k8s_client_new(w.loop, kc, &(k8s_config_t){.qps = -1, .max_retries = -1});
    if (!w.c)
        return 1;
    int64_t end = loop_clock_ms() + BENCH_WAIT_MS;
    s_wr_next(&w);
    while (w.done < w.total && loop_clock_ms() < end)
        loop_run_once(w.loop, 100);
    int rc = w.done == w.total && w.failed == 0 ? 0 : 1;
    k8s_client_destroy(&w.c);
    kubeconfig_destroy(&kc);
    loop_destroy(&w.loop);
    buf_free(&ebuf);
    return rc;
}

/* ---------- the consumer (this process) ---------- */

typedef struct {
    loop_t *loop;
    http_client_t *http; /* the raw watch */
    k8s_client_t *k8s; /* resourceVersion lookups */
    char self[BENCH_PATH_MAX]; /* this binary */
    char kcpath[BENCH_PATH_MAX]; /* kubesim's kubeconfig */
    char server[256]; /* kubesim's URL */
    size_t npods; /* pods */
    size_t total; /* writes per run */
    uint64_t raw_events; /* raw watch lines */
    uint64_t bus_events; /* ObjectChanged MODIFIED received */
    char rv[64]; /* resourceVersion of the last lookup */
    bool rv_done; /* the lookup ended */
    double cpu_us; /* CPU time of this process per event in the last run, microseconds */
    double sim_us; /* kubesim's, likewise */
    double writer_us; /* the writer's, likewise */
    pid_t sim; /* kubesim */
} bench_t;

static long s_rss_kb(void)
{
    int64_t b = procstat_rss_bytes(0);
    return b > 0 ? (long)(b / 1024) : 0;
}

/* CPU seconds (user + system) this process has used. */
static double s_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds used by process pid (/proc/pid/stat utime + stime), 0 when unknown. */
static double s_cpu_of(pid_t pid)
{
    double s = pid > 0 ? procstat_cpu_of(pid) : -1;
    return s < 0 ? 0 : s;
}

/* CPU seconds used by this process's reaped children (the writers). */
static double s_cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double s_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU placement: with 2+ CPUs, kubesim and the writer (the API server side) share every CPU but
 * the last, and this process (the consumer) gets the last one to itself, as a watcher on its own
 * machine or core would. -1: no pinning. */
static int s_consumer_cpu = -1;

/* Pins the calling process to the server side (server true) or to the consumer's CPU. */
static void s_pin(bool server)
{
    if (s_consumer_cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (server)
        for (int i = 0; i < s_consumer_cpu; i++)
            CPU_SET(i, &set);
    else
        CPU_SET(s_consumer_cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        fprintf(stderr, "sched_setaffinity failed\n");
}

/* Starts argv[0] with argv on the server side's CPUs; stdout to /dev/null when quiet. Returns the
 * pid or -1. */
static pid_t s_spawn(char *const argv[], bool quiet)
{
    pid_t pid = fork();
    if (pid == 0) {
        s_pin(true);
        if (quiet && !freopen("/dev/null", "w", stdout))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid to exit; true when it exited with 0. */
static bool s_reap(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Starts the writer for `total` writes from label value `round` (0: create). */
static pid_t s_start_writer(bench_t *b, int round, size_t total)
{
    char np[32], r[32], t[32];
    snprintf(np, sizeof(np), "%zu", b->npods);
    snprintf(r, sizeof(r), "%d", round);
    snprintf(t, sizeof(t), "%zu", total);
    char *argv[] = {b->self, "--writer", b->kcpath, np, r, t, NULL};
    return s_spawn(argv, false);
}

static int s_raw_data(http_client_t *h, int64_t id, const void *data, size_t len, void *arg)
{
    bench_t *b = arg;
    const char *p = data, *end = p + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        b->raw_events++;
        p++;
    }
    return 0;
}

static void s_raw_done(http_client_t *h, http_response_t *resp, void *arg)
{
    if (resp->err || resp->status != 200)
        fprintf(stderr, "raw watch ended: %s status %ld\n", resp->error_text, resp->status);
}

static int s_bus_msg(bus_sub_t *sub, const envwire_msg_t *msg, void *arg)
{
    bench_t *b = arg;
    if (msg->object_changed.type == 2)
        b->bus_events++;
    return 0;
}

static void s_rv_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    bench_t *b = arg;
    snprintf(b->rv, sizeof(b->rv), "%s", jx_str(r->body, "metadata.resourceVersion", ""));
    b->rv_done = true;
}

/* The server's current resourceVersion into b->rv (a one-item list). Returns 0 or -1. */
static int s_current_rv(bench_t *b)
{
    b->rv_done = false;
    b->rv[0] = '\0';
    if (k8s_list(b->k8s, &(k8s_res_t){.version = "v1", .resource = "pods"},
                 &(k8s_opts_t){.limit = 1}, s_rv_done, b) < 0)
        return -1;
    int64_t end = loop_clock_ms() + BENCH_WAIT_MS;
    while (!b->rv_done && loop_clock_ms() < end)
        loop_run_once(b->loop, 50);
    return b->rv[0] ? 0 : -1;
}

/* Runs the writer for one run and waits for *counter to grow by its writes. Returns events/s,
 * or -1 when the run did not complete. */
static double s_run(bench_t *b, uint64_t *counter, int round)
{
    uint64_t start_count = *counter;
    double t0 = s_now_s(), c0 = s_cpu_s(), k0 = s_cpu_of(b->sim), w0 = s_cpu_children();
    pid_t pid = s_start_writer(b, round, b->total);
    if (pid < 0)
        return -1;
    int64_t end = loop_clock_ms() + BENCH_WAIT_MS;
    while (*counter - start_count < b->total && loop_clock_ms() < end)
        loop_run_once(b->loop, 5);
    double took = s_now_s() - t0;
    b->cpu_us = (s_cpu_s() - c0) * 1e6 / (double)b->total;
    bool ok = s_reap(pid);
    b->sim_us = (s_cpu_of(b->sim) - k0) * 1e6 / (double)b->total;
    b->writer_us = (s_cpu_children() - w0) * 1e6 / (double)b->total;
    if (!ok || *counter - start_count < b->total) {
        fprintf(stderr, "run incomplete: %llu of %zu events, writer %s\n",
                (unsigned long long)(*counter - start_count), b->total, ok ? "ok" : "failed");
        return -1;
    }
    return (double)b->total / (took > 0 ? took : 1e-6);
}

/* (a) one streaming watch counting lines, from the current resourceVersion. */
static double s_raw_run(bench_t *b, int round)
{
    if (s_current_rv(b) != 0)
        return -1;
    buf_t url;
    buf_init(&url, K8S_MAX_URL);
    buf_puts(&url, b->server);
    int rc = k8s_path(&(k8s_res_t){.version = "v1", .resource = "pods"},
                      &(k8s_opts_t){.label_selector = WATCHER_POD_SELECTOR,
                                    .resource_version = b->rv,
                                    .timeout_seconds = 600},
                      true, &url);
    int64_t id = rc ? rc
                    : http_request(b->http, &(http_request_t){.url = buf_str(&url),
                                                              .timeout_ms = HTTP_NO_TIMEOUT,
                                                              .on_done = s_raw_done,
                                                              .on_data = s_raw_data,
                                                              .arg = b});
    buf_free(&url);
    if (id < 0)
        return -1;
    for (int i = 0; i < 20; i++)
        loop_run_once(b->loop, 5);
    double rate = s_run(b, &b->raw_events, round);
    http_cancel(b->http, id);
    return rate;
}

static bool s_watch_nodes; /* --watch-nodes on */

/* A started watcher whose initial list is stored and published, or NULL. */
static watcher_t *s_watcher(bench_t *b, store_t *store, bus_pub_t *pub, watcher_cluster_t *cl,
                            buf_t *ebuf)
{
    watcher_config_t wc = {.clusters = cl,
                           .nclusters = 1,
                           .shards = BENCH_SHARDS,
                           .store = store,
                           .pub = pub,
                           .qps = 1000,
                           .burst = 1000,
                           .watch_nodes = s_watch_nodes};
    watcher_t *w = watcher_new(b->loop, &wc, ebuf);
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

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(const double *v, int n)
{
    double s[BENCH_RUNS_MAX];
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), s_cmp);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Starts kubesim next to this binary; fills b->server and b->kcpath. Returns its pid or -1. */
static pid_t s_kubesim(bench_t *b, const char *dir, size_t history)
{
    char bin[BENCH_PATH_MAX + 16], ready[BENCH_PATH_MAX], hist[32];
    const char *slash = strrchr(b->self, '/');
    int n = slash ? (int)(slash - b->self) : 1;
    snprintf(bin, sizeof(bin), "%.*s/kubesim", n, slash ? b->self : ".");
    snprintf(ready, sizeof(ready), "%s/ready", dir);
    snprintf(b->kcpath, sizeof(b->kcpath), "%s/config", dir);
    snprintf(hist, sizeof(hist), "%zu", history);
    char *argv[] = {bin,   "--simulate",  "off",   "--port",           "0",       "--nodes",
                    "1",   "--history",   hist,    "--kubeconfig-out", b->kcpath, "--ready-file",
                    ready, "--log-level", "error", "--bookmark-ms",    "3600000", NULL};
    pid_t pid = s_spawn(argv, true);
    if (pid < 0)
        return -1;
    int64_t end = loop_clock_ms() + BENCH_READY_MS;
    while (loop_clock_ms() < end) {
        FILE *f = fopen(ready, "r");
        if (f) {
            bool ok = fgets(b->server, sizeof(b->server), f) != NULL;
            fclose(f);
            b->server[strcspn(b->server, "\r\n")] = '\0';
            if (ok && b->server[0])
                return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "kubesim (%s) exited\n", bin);
            return -1;
        }
        usleep(10000);
    }
    kill(pid, SIGTERM);
    s_reap(pid);
    fprintf(stderr, "kubesim (%s) not ready\n", bin);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--writer") == 0) {
        signal(SIGPIPE, SIG_IGN);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        log_setup("bench-watcher-writer", LOG_ERROR, 2);
        int rc = s_writer_main(argv);
        curl_global_cleanup();
        return rc;
    }
    size_t npods = BENCH_PODS_DEFAULT;
    int mods = BENCH_MODS_DEFAULT, runs = BENCH_RUNS_DEFAULT;
    bool pin = true;
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--pods") && v > 0)
            npods = (size_t)v;
        else if (!strcmp(argv[i], "--mods") && v > 0)
            mods = (int)v;
        else if (!strcmp(argv[i], "--runs") && v > 0 && v <= BENCH_RUNS_MAX)
            runs = (int)v;
        else if (!strcmp(argv[i], "--pin") &&
                 (!strcmp(argv[i + 1], "on") || !strcmp(argv[i + 1], "off")))
            pin = !strcmp(argv[i + 1], "on");
        else if (!strcmp(argv[i], "--watch-nodes") &&
                 (!strcmp(argv[i + 1], "on") || !strcmp(argv[i + 1], "off")))
            s_watch_nodes = !strcmp(argv[i + 1], "on");
        else {
            fprintf(stderr,
                    "usage: bench-watcher [--pods N] [--mods M] [--runs R (<= %d)] [--pin on|off] "
                    "[--watch-nodes on|off]\n",
                    BENCH_RUNS_MAX);
            return 2;
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (pin && ncpu >= 2)
        s_consumer_cpu = (int)(ncpu - 1);
    s_pin(false);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("bench-watcher", LOG_ERROR, 2);
    bench_t b = {.loop = loop_new(), .npods = npods, .total = npods * (size_t)mods};
    ssize_t sl = readlink("/proc/self/exe", b.self, sizeof(b.self) - 1);
    if (sl <= 0 || !b.loop)
        return 1;
    b.self[sl] = '\0';
    char dir[] = "/dev/shm/rf-bench-watcher-XXXXXX";
    char dir2[] = "/tmp/rf-bench-watcher-XXXXXX";
    char *d = mkdtemp(dir);
    if (!d)
        d = mkdtemp(dir2);
    if (!d)
        return 1;
    size_t history = npods + 2 * (size_t)runs * b.total + 1000;
    pid_t sim = s_kubesim(&b, d, history);
    if (sim < 0)
        return 1;
    b.sim = sim;
    int code = 1;
    void *zctx = zmq_ctx_new();
    store_t *store = NULL;
    bus_pub_t *pub = NULL;
    bus_sub_t *sub = NULL;
    watcher_t *w = NULL;
    kubeconfig_t *kc = NULL;
    buf_t ebuf;
    buf_init(&ebuf, 4096);
    char dbpath[BENCH_PATH_MAX + 16];
    snprintf(dbpath, sizeof(dbpath), "%s/observed.db", d);
    if (kubeconfig_load(b.kcpath, NULL, &kc, &ebuf) != 0) {
        fprintf(stderr, "kubeconfig: %s\n", buf_str(&ebuf));
        goto out;
    }
    b.k8s = k8s_client_new(b.loop, kc, &(k8s_config_t){.qps = -1});
    b.http = http_client_new(b.loop, &(http_config_t){0});
    if (!zctx || !b.k8s || !b.http)
        goto out;

    /* the pods */
    double tc = s_now_s();
    if (!s_reap(s_start_writer(&b, 0, npods))) {
        fprintf(stderr, "creating the pods failed\n");
        goto out;
    }
    tc = s_now_s() - tc;

    /* the watcher's store and bus, and the first watcher for the RSS figure */
    long rss0 = s_rss_kb();
    int err = 0;
    store = store_open(dbpath, STORE_READWRITE, &err);
    pub = bus_pub_new(
        b.loop, zctx,
        &(bus_options_t){.source = "watcher/bench", .endpoint = "@inproc://bw", .hwm = BENCH_HWM});
    sub = bus_sub_new(b.loop, zctx, &(bus_options_t){.endpoint = "inproc://bw", .hwm = BENCH_HWM},
                      s_bus_msg, NULL, &b);
    for (uint32_t s = 0; sub && s < BENCH_SHARDS; s++)
        bus_sub_subscribe(sub, s);
    if (!store || !pub || !sub)
        goto out;
    watcher_cluster_t cl = {.name = "bench", .kubeconfig = b.kcpath};
    w = s_watcher(&b, store, pub, &cl, &ebuf);
    if (!w)
        goto out;
    long rss1 = s_rss_kb();
    watcher_destroy(&w);
    double rss_per_10k = (double)(rss1 - rss0) / 1024.0 * 10000.0 / (double)npods;

    printf("bench-watcher: %zu pods (created in %.1f s) x %d modifications per run, %d runs; "
           "kubesim and the writer are child processes (writer: merge PATCH over HTTP, %d in "
           "flight)\n",
           npods, tc, mods, runs, BENCH_WINDOW);
    if (s_consumer_cpu >= 0)
        printf("  CPUs: kubesim and the writer on 0-%d, this process (raw client or watcher) on "
               "%d\n",
               s_consumer_cpu - 1, s_consumer_cpu);
    else
        printf("  CPUs: not pinned (--pin off or a single CPU)\n");
    printf("  raw: one streaming watch on pods (common/http) counting event lines\n");
    printf("  watcher: reflectors -> rows in SQLite (tmpfs) -> ObjectChanged on inproc:// -> "
           "subscriber counting MODIFIED\n");
    printf("  cpu columns: CPU time per event (user + system, microseconds) of this process in "
           "each path, and of kubesim and the writer (mean of both paths)\n");
    printf("%-4s %14s %14s %8s %10s %10s %10s %10s\n", "run", "watcher ev/s", "raw ev/s", "ratio",
           "watch cpu", "raw cpu", "sim cpu", "wrtr cpu");
    fflush(stdout);
    double rr[BENCH_RUNS_MAX], rw[BENCH_RUNS_MAX], cr[BENCH_RUNS_MAX], cw[BENCH_RUNS_MAX];
    double cs[BENCH_RUNS_MAX], cx[BENCH_RUNS_MAX];
    uint64_t rows = 0, drops = 0;
    int round = 1;
    for (int r = 0; r < runs; r++) {
        cs[r] = cx[r] = 0;
        /* alternate which path goes first, so neither always runs on a warmer machine */
        for (int k = 0; k < 2; k++) {
            bool raw = (k == 0) == (r % 2 == 0);
            if (raw) {
                rr[r] = s_raw_run(&b, round);
                cr[r] = b.cpu_us;
            } else {
                w = s_watcher(&b, store, pub, &cl, &ebuf);
                rw[r] = w ? s_run(&b, &b.bus_events, round) : -1;
                cw[r] = b.cpu_us;
                watcher_stats_t ws;
                watcher_stats(w, &ws);
                rows += ws.rows_written;
                drops += ws.drops_hwm + ws.drops_queue;
                watcher_destroy(&w);
            }
            cs[r] += b.sim_us / 2;
            cx[r] += b.writer_us / 2;
            round += mods;
            if ((raw ? rr[r] : rw[r]) < 0) {
                fprintf(stderr, "bench-watcher: run %d failed\n", r + 1);
                goto out;
            }
        }
        printf("%-4d %14.0f %14.0f %7.0f%% %10.1f %10.1f %10.1f %10.1f\n", r + 1, rw[r], rr[r],
               100.0 * rw[r] / rr[r], cw[r], cr[r], cs[r], cx[r]);
        fflush(stdout);
    }
    double mr = s_median(rr, runs), mw = s_median(rw, runs);
    double ratio = mw / mr;
    printf("%-4s %14.0f %14.0f %7.0f%% %10.1f %10.1f %10.1f %10.1f\n", "med", mw, mr, 100.0 * ratio,
           s_median(cw, runs), s_median(cr, runs), s_median(cs, runs), s_median(cx, runs));
    printf("ratio watcher/raw: %.2f (target >= %.2f): %s\n", ratio, BENCH_TARGET_RATIO,
           ratio >= BENCH_TARGET_RATIO ? "met" : "NOT met");
    printf("watcher RSS per 10,000 observed pods: %.1f MiB\n", rss_per_10k);
    store_stats_t ss;
    store_stats(store, &ss);
    printf("bus drops (hwm + queue): %llu; rows written (incl. initial lists): %llu in %llu "
           "commits\n",
           (unsigned long long)drops, (unsigned long long)rows, (unsigned long long)ss.flushes);
    code = 0;
out:
    watcher_destroy(&w);
    bus_sub_destroy(&sub);
    bus_pub_destroy(&pub);
    store_destroy(&store);
    http_client_destroy(&b.http);
    k8s_client_destroy(&b.k8s);
    kubeconfig_destroy(&kc);
    buf_free(&ebuf);
    if (zctx)
        zmq_ctx_term(zctx);
    loop_destroy(&b.loop);
    curl_global_cleanup();
    kill(sim, SIGTERM);
    s_reap(sim);
    char cmd[BENCH_PATH_MAX];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", d);
    return code;
}
