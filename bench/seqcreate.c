/*
 * bench-seqcreate: issue 19's sequential-client row. A user's `kubectl create -f` of N RayClusters
 * (1 head + 3 workers, small requests: bench-scale's template) is one create at a time over one
 * keep-alive connection with its own User-Agent; here a client of this process does exactly that
 * (its own common/http client, one connection, one request in flight) and records each create's
 * latency, from the request started to its 201.
 *
 * Two runs on a fresh kubesim of 1,000 nodes each (tests/integration/replicas/fleet.h). Each first
 * creates B background RayClusters in bulk (32 in flight, as a script or another user would),
 * then the client its N, one at a time:
 *   idle:     nothing but kubesim (the watcher is stopped, no scheduler): the client's floor;
 *   rayfleet: the bus, the watcher and one rayfleet-scheduler, unthrottled like bench-scale
 *             (--concurrency 64, --client.qps 100000), reconciling the background RayClusters
 *             and then the client's while it creates them (each RayCluster is 12 child writes:
 *             kubesim runs flat out). Without the background the client, sub-millisecond per
 *             create, is done before rayfleet gets busy.
 * Before and after kubesim's fairness in one run, under the same load: the client's creates go in
 * blocks of K (default 50), kubesim's fairness turned on and off between blocks (POST
 * /kubesim/fairness), so each row pair compares the same moments of the same reconcile; the
 * kubesim flag --fairness off is the old arrival-order service. Columns: create latency
 * p50/p99/max, creates per second over the blocks' spans, and for the rayfleet runs the time from
 * the client's first create to every RayCluster (B + N) ready (observed.db). With --runs R the
 * whole is repeated R times and the median of each column over the runs is printed last.
 *
 * --fairness on|off instead starts kubesim with that mode for the whole run (for rayfleet's own
 * time to all ready under each mode, in separate runs).
 *
 *   bench-seqcreate [--clusters N] [--background B] [--block K] [--concurrency C] [--runs R]
 *                   [--fairness alternate|on|off] [--keep]
 */
#include "benchlib.h"

#include "log.h"

#define SEQ_CLUSTERS_DEFAULT 1000 /* the client's RayClusters per run */
#define SEQ_BACKGROUND_DEFAULT 1000 /* background RayClusters per run */
#define SEQ_CLUSTERS_MAX 100000 /* most RayClusters per run */
#define SEQ_NODES 1000 /* kubesim nodes */
#define SEQ_CONC_DEFAULT 64 /* the scheduler's --concurrency (bench-scale's) */
#define SEQ_QPS 100000 /* its client qps: no client-side limit */
#define SEQ_LEASE_MS 5000 /* shard lease duration */
#define SEQ_READY_MAX_S 900.0 /* longest wait for readiness */
#define SEQ_UA "bench-seqcreate/1 (one create at a time over one connection, as kubectl)"

#define SEQ_BLOCK_DEFAULT 50 /* creates between fairness switches */
#define SEQ_RUNS_MAX 20 /* most --runs */

typedef struct {
    double p50_ms, p99_ms, max_ms; /* create latency */
    double creates_s; /* creates per second over the blocks' spans */
} seq_lat_t;

typedef struct {
    seq_lat_t mode[2]; /* [0]: kubesim fairness on, [1]: off */
    double ready_s; /* first create -> all ready; < 0: not measured (idle) or timed out */
    long ready; /* RayClusters ready at the end */
    size_t failed; /* creates that failed */
    long connects; /* connections the client opened */
    double kubesim_busy; /* kubesim's CPU seconds over the client's span / the span */
} seq_result_t;

/* Turns kubesim's fairness on or off. Returns 0 or -1. */
static int s_fairness(fleet_t *f, bool on)
{
    const char *body = on ? "{\"on\":true}" : "{\"on\":false}";
    return fleet_call(f, "POST", "/kubesim/fairness", "application/json", body, strlen(body),
                      NULL) == 200
               ? 0
               : -1;
}

/* Whether block b runs with fairness on: alternating from on (fixed < 0), else fixed. */
static bool s_block_on(size_t b, int fixed)
{
    return fixed < 0 ? b % 2 == 0 : fixed == 1;
}

/* Latency figures of the creates of lat[0..n) whose block has fairness `on`. */
static void s_mode(const int64_t *lat, size_t n, size_t block, int fixed, bool on,
                   const double *span, seq_lat_t *out)
{
    int64_t *v = calloc(n ? n : 1, sizeof(*v));
    size_t m = 0;
    double secs = 0;
    for (size_t i = 0; v && i < n; i++)
        if (s_block_on(i / block, fixed) == on)
            v[m++] = lat[i];
    for (size_t b = 0; b * block < n; b++)
        if (s_block_on(b, fixed) == on)
            secs += span[b];
    bench_pcts(v, m, &out->p50_ms, &out->p99_ms);
    out->p50_ms /= 1000.0;
    out->p99_ms /= 1000.0;
    out->max_ms = m ? (double)v[m - 1] / 1000.0 : -1;
    out->creates_s = secs > 0 ? (double)m / secs : 0;
    free(v);
}

/* One run: B in bulk, then N one at a time in blocks of K alternating fairness on/off (fixed < 0;
 * else kubesim started with --fairness on (1) or off (0) for the whole run), rayfleet or not.
 * Returns 0 or -1. */
static int s_run(bool rayfleet, size_t n, size_t bg, size_t block, int fixed, int conc, bool keep,
                 seq_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->ready_s = -1;
    fleet_t f = {0};
    fleet_opts_t o = {.nodes = SEQ_NODES,
                      .replicas = rayfleet ? 1 : 0,
                      .lease_ms = SEQ_LEASE_MS,
                      .qps = SEQ_QPS,
                      .concurrency = conc,
                      .log_level = "warn",
                      .kubesim_flag = fixed < 0 ? NULL : "--fairness",
                      .kubesim_value = fixed == 1 ? "on" : "off"};
    size_t nblocks = (n + block - 1) / block;
    int64_t *lat = calloc(n, sizeof(*lat));
    double *span = calloc(nblocks, sizeof(*span));
    http_client_t *seq = NULL;
    int rc = -1;
    if (!lat || !span || fleet_start(&f, &o) != 0) {
        fprintf(stderr, "bench-seqcreate: cannot start the fleet (state %s)\n", f.dir);
        goto done;
    }
    if (!rayfleet)
        fleet_kill(&f.watcher, true); /* nothing but kubesim */
    seq = http_client_new(f.loop, &(http_config_t){.max_total_connections = 1,
                                                   .max_host_connections = 1,
                                                   .user_agent = SEQ_UA});
    if (!seq)
        goto done;
    r->failed = bg ? fleet_create(&f, "bg", bg, 0, NULL, NULL, NULL, false) : 0;
    double t0 = fleet_now(), cpu0 = fleet_cpu(f.kubesim);
    for (size_t b = 0; b < nblocks; b++) {
        if (fixed < 0 && s_fairness(&f, s_block_on(b, fixed)) != 0) {
            fprintf(stderr, "bench-seqcreate: POST /kubesim/fairness failed\n");
            goto done;
        }
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "rc-b%04zu", b);
        size_t k = n - b * block < block ? n - b * block : block;
        double tb = fleet_now();
        r->failed += fleet_create_run(
            &f,
            &(fleet_create_opts_t){
                .prefix = prefix, .n = k, .http = seq, .inflight = 1, .lat_us = lat + b * block});
        span[b] = fleet_now() - tb;
    }
    double all = fleet_now() - t0;
    r->kubesim_busy = all > 0 ? (fleet_cpu(f.kubesim) - cpu0) / all : 0;
    http_stats_t hs;
    http_client_stats(seq, &hs);
    r->connects = (long)hs.connects;
    s_mode(lat, n, block, fixed, true, span, &r->mode[0]);
    s_mode(lat, n, block, fixed, false, span, &r->mode[1]);
    if (rayfleet) {
        while ((r->ready = fleet_ready_count(&f, "rc") + fleet_ready_count(&f, "bg")) <
                   (long)(n + bg) &&
               fleet_now() - t0 < SEQ_READY_MAX_S)
            fleet_sleep_ms(100);
        if (r->ready >= (long)(n + bg))
            r->ready_s = fleet_now() - t0;
    }
    rc = 0;
done:
    http_client_destroy(&seq);
    fleet_stop(&f, keep);
    if (keep)
        fprintf(stderr, "bench-seqcreate: state kept in %s\n", f.dir);
    free(lat);
    free(span);
    return rc;
}

static int s_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorted in place). */
static double s_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), s_cmp_d);
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : -1;
}

static void s_row(const char *label, const char *fair, const seq_lat_t *l, double ready_s,
                  bool rayfleet, double busy)
{
    char ready[32] = "-";
    if (rayfleet && ready_s >= 0)
        snprintf(ready, sizeof(ready), "%.1f", ready_s);
    else if (rayfleet)
        snprintf(ready, sizeof(ready), "T/O");
    printf("%-6s %-8s %-8s %9.2f %9.2f %9.1f %10.0f %9s %7.0f%%\n", label,
           rayfleet ? "running" : "-", fair, l->p50_ms, l->p99_ms, l->max_ms, l->creates_s, ready,
           100.0 * busy);
}

static size_t s_arg(const char *v, size_t lo, size_t hi, size_t bad)
{
    char *end = NULL;
    unsigned long x = strtoul(v, &end, 10);
    return *end || !*v || x < lo || x > hi ? bad : (size_t)x;
}

int main(int argc, char **argv)
{
    size_t n = SEQ_CLUSTERS_DEFAULT, bg = SEQ_BACKGROUND_DEFAULT, block = SEQ_BLOCK_DEFAULT,
           runs = 1, conc = SEQ_CONC_DEFAULT;
    bool keep = false;
    int fixed = -1;
    const char *bad = NULL;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--clusters") == 0 && v) {
            n = s_arg(v, 1, SEQ_CLUSTERS_MAX, 0);
            bad = n ? NULL : "--clusters: must be an integer in 1..100000";
            i++;
        } else if (strcmp(a, "--background") == 0 && v) {
            bg = s_arg(v, 0, SEQ_CLUSTERS_MAX, SIZE_MAX);
            bad = bg != SIZE_MAX ? NULL : "--background: must be an integer in 0..100000";
            i++;
        } else if (strcmp(a, "--block") == 0 && v) {
            block = s_arg(v, 1, SEQ_CLUSTERS_MAX, 0);
            bad = block ? NULL : "--block: must be an integer in 1..100000";
            i++;
        } else if (strcmp(a, "--concurrency") == 0 && v) {
            conc = s_arg(v, 1, 10000, 0);
            bad = conc ? NULL : "--concurrency: must be an integer in 1..10000";
            i++;
        } else if (strcmp(a, "--runs") == 0 && v) {
            runs = s_arg(v, 1, SEQ_RUNS_MAX, 0);
            bad = runs ? NULL : "--runs: must be an integer in 1..20";
            i++;
        } else if (strcmp(a, "--fairness") == 0 && v) {
            fixed = strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? 0 : -1;
            bad = fixed >= 0 || strcmp(v, "alternate") == 0
                      ? NULL
                      : "--fairness: must be alternate, on or off";
            i++;
        } else if (strcmp(a, "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr,
                    "usage: bench-seqcreate [--clusters N] [--background B] [--block K] "
                    "[--concurrency C] [--runs R] [--fairness alternate|on|off] [--keep]\n");
            return 2;
        }
    }
    if (bad) {
        fprintf(stderr, "bench-seqcreate: %s\n", bad);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("bench-seqcreate", LOG_ERROR, STDERR_FILENO);
    printf("bench-seqcreate: %zu RayClusters (1 head + 3 workers) created one at a time over one "
           "keep-alive connection (User-Agent %s) after %zu created in bulk, kubesim %d nodes, "
           "its fairness %s every %zu creates; rayfleet: bus, watcher, one scheduler "
           "--concurrency %zu --client.qps %d\n",
           n, SEQ_UA, bg, SEQ_NODES,
           fixed < 0 ? "on and off"
           : fixed   ? "on (fixed)"
                     : "off (fixed)",
           block, conc, SEQ_QPS);
    printf("%-6s %-8s %-8s %9s %9s %9s %10s %9s %8s\n", "run", "rayfleet", "fairness", "p50_ms",
           "p99_ms", "max_ms", "creates/s", "ready_s", "kubesim");
    fflush(stdout);
    int failures = 0;
    seq_result_t res[SEQ_RUNS_MAX][2];
    bool ok[SEQ_RUNS_MAX][2];
    memset(ok, 0, sizeof(ok));
    for (size_t ri = 0; ri < runs; ri++)
        for (int rf = 0; rf < 2; rf++) {
            seq_result_t *r = &res[ri][rf];
            if (s_run(rf == 1, n, bg, block, fixed, (int)conc, keep, r) != 0) {
                failures++;
                continue;
            }
            ok[ri][rf] = true;
            failures += (rf == 1 && r->ready_s < 0) || r->failed > 0 || r->connects != 1;
            char label[24];
            snprintf(label, sizeof(label), "%zu", ri + 1);
            for (int m = 0; m < 2; m++)
                if (fixed < 0 || fixed == (m == 0))
                    s_row(label, m == 0 ? "on" : "off", &r->mode[m], r->ready_s, rf == 1,
                          r->kubesim_busy);
            if (r->failed || r->connects != 1)
                printf(
                    "       %zu creates failed; the client opened %ld connections (1 expected)\n",
                    r->failed, r->connects);
            fflush(stdout);
        }
    for (int rf = 0; runs > 1 && rf < 2; rf++)
        for (int m = 0; m < 2; m++) {
            if (fixed >= 0 && fixed != (m == 0))
                continue;
            double v[6][SEQ_RUNS_MAX];
            size_t k = 0;
            for (size_t ri = 0; ri < runs; ri++) {
                if (!ok[ri][rf])
                    continue;
                const seq_result_t *r = &res[ri][rf];
                v[0][k] = r->mode[m].p50_ms;
                v[1][k] = r->mode[m].p99_ms;
                v[2][k] = r->mode[m].max_ms;
                v[3][k] = r->mode[m].creates_s;
                v[4][k] = r->ready_s;
                v[5][k] = r->kubesim_busy;
                k++;
            }
            if (!k)
                continue;
            seq_lat_t med = {s_median(v[0], k), s_median(v[1], k), s_median(v[2], k),
                             s_median(v[3], k)};
            s_row("median", m == 0 ? "on" : "off", &med, s_median(v[4], k), rf == 1,
                  s_median(v[5], k));
        }
    printf("p50/p99/max: one create's latency, request started -> 201 (the client sends the next "
           "create when one is answered, as kubectl create -f does), over the creates made with "
           "kubesim's fairness on (round-robin between clients by User-Agent, a few requests per "
           "turn) or off (arrival order); creates/s: those creates over their blocks' spans; "
           "ready_s: the client's first create -> every RayCluster (background and the client's) "
           "ready (observed.db); kubesim: its CPU time over the client's span / the span.\n");
    return failures ? 1 : 0;
}
