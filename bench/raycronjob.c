/*
 * bench-raycronjob: issue 14's RayCronJob cost. rayfleet as child processes
 * (tests/integration/replicas/fleet.h: kubesim, the bus, the watcher, one rayfleet-scheduler and
 * rayfleet-submitter with --feature-gates RayCronJob=true) runs N RayCronJobs firing every minute
 * ("* * * * *", jobTemplate suspend: true, so their RayJobs stay cheap), created unpaced (32
 * creates in flight) before a minute boundary, then watched over M tick-minutes.
 *
 * Measured:
 *   CPU/min     submitter CPU seconds per tick-minute (from just before a boundary to just before
 *               the next one: the RayCronJob passes of the tick, the N RayJob creates and status
 *               writes, and the RayJob controller's passes over the N new suspended RayJobs, which
 *               share the process), and the same per RayCronJob tick (/ N); the watcher, bus and
 *               kubesim beside it.
 *   lag p50/p99 per RayJob of a tick, from the submitter's audit rows (submitter.db, verb create,
 *               target RayJob `<cronjob>-<minute>`): when the create was sent and when kubesim's
 *               answer arrived, minus the minute boundary of its name.
 *   ticks       RayJobs created per minute (N expected).
 * The raw floor, same kubesim once rayfleet's watcher and submitter are stopped: this process
 * creates the N RayJobs of one tick at once (32 in flight), answer time minus the start.
 *
 * Never a timed assertion: the table is printed whatever it shows; exit 1 only when a side could
 * not run.
 *
 *   bench-raycronjob [--cronjobs N] [--minutes M] [--skip-raw] [--keep]
 */
#include "benchlib.h"

#include "log.h"

#define BENCH_CJ_DEFAULT 1000 /* RayCronJobs */
#define BENCH_CJ_MAX 20000 /* most RayCronJobs */
#define BENCH_MIN_DEFAULT 2 /* tick-minutes measured */
#define BENCH_MIN_MAX 10 /* most tick-minutes */
#define BENCH_CONC 64 /* the services' --concurrency */
#define BENCH_QPS 100000 /* the services' client rate limit: kubesim is the limit */
#define BENCH_PREFIX "cj" /* RayCronJob names: cj-NNNNNN */
#define BENCH_EDGE_MS 1000 /* CPU samples are taken this long before each boundary */

/* A RayCronJob firing every minute whose RayJobs are suspended. */
static json_t *s_template(void)
{
    return json_pack("{s:s, s:s, s:{}, s:{s:s, s:{s:s, s:b, s:b, s:{s:{s:{}, s:{s:{s:[{s:s, "
                     "s:s}]}}}}}}}",
                     "apiVersion", "ray.io/v1", "kind", "RayCronJob", "metadata", "spec",
                     "schedule", "* * * * *", "jobTemplate", "entrypoint", "python x.py",
                     "shutdownAfterJobFinishes", 1, "suspend", 1, "rayClusterSpec", "headGroupSpec",
                     "rayStartParams", "template", "spec", "containers", "name", "ray-head",
                     "image", "rayproject/ray:2.52.0");
}

/* Sleeps until wall-clock ms `at`. */
static void s_sleep_until(int64_t at)
{
    for (int64_t now = fleet_wall_ms(); now < at; now = fleet_wall_ms())
        fleet_sleep_ms((int)(at - now > 200 ? 200 : at - now));
}

/* The submitter's RayJob creates: for each, the minute of its name, sent and answer times. */
typedef struct {
    int64_t minute; /* Unix minutes of the tick (the name's suffix) */
    int64_t sent_ms, done_ms; /* wall clock */
    int status; /* HTTP status */
} s_create_t;

static int s_creates(fleet_t *f, s_create_t **out, size_t *n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/submitter.db", f->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT target_name, time_ms, latency_ms, result_status FROM audit "
                           "WHERE verb = 'create' AND target_kind = 'RayJob'",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 2000);
    size_t cap = 0;
    *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *dash = name ? strrchr(name, '-') : NULL;
        if (!dash)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4096;
            s_create_t *nc = realloc(*out, cap * sizeof(**out));
            if (!nc)
                break;
            *out = nc;
        }
        s_create_t *c = &(*out)[(*n)++];
        c->minute = strtoll(dash + 1, NULL, 10);
        c->done_ms = sqlite3_column_int64(st, 1);
        c->sent_ms = c->done_ms - sqlite3_column_int64(st, 2);
        c->status = sqlite3_column_int(st, 3);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = BENCH_CJ_DEFAULT;
    int minutes = BENCH_MIN_DEFAULT;
    bool keep = false, skip_raw = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--cronjobs") == 0 && v) {
            n = (size_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--minutes") == 0 && v) {
            minutes = (int)strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--skip-raw") == 0) {
            skip_raw = true;
        } else if (strcmp(a, "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr, "usage: bench-raycronjob [--cronjobs N] [--minutes M] [--skip-raw] "
                            "[--keep]\n");
            return 2;
        }
    }
    if (n == 0 || n > BENCH_CJ_MAX || minutes < 1 || minutes > BENCH_MIN_MAX) {
        fprintf(stderr, "bench-raycronjob: --cronjobs in 1..%d, --minutes in 1..%d\n", BENCH_CJ_MAX,
                BENCH_MIN_MAX);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("bench-raycronjob", LOG_ERROR, STDERR_FILENO);
    fleet_t f;
    fleet_opts_t o = {.nodes = 4,
                      .replicas = 1,
                      .lease_ms = 5000,
                      .qps = BENCH_QPS,
                      .concurrency = BENCH_CONC,
                      .log_level = "warn",
                      .submitter = true,
                      .submitter_gates = "RayCronJob=true"};
    if (fleet_start(&f, &o) != 0) {
        fprintf(stderr, "bench-raycronjob: the fleet did not start\n");
        fleet_stop(&f, keep);
        return 1;
    }
    /* create them well before a boundary, so that every first tick is the same minute */
    if (fleet_wall_ms() % 60000 > 45000)
        s_sleep_until((fleet_wall_ms() / 60000 + 1) * 60000 + 500);
    json_t *tmpl = s_template();
    int64_t *cj_acked = calloc(n, sizeof(*cj_acked));
    double t0 = fleet_now();
    size_t cfail =
        cj_acked ? fleet_create_objs(&f, "/apis/ray.io/v1/namespaces/" FLEET_NS "/raycronjobs",
                                     tmpl, BENCH_PREFIX, n, 0, cj_acked, NULL, NULL, false)
                 : n;
    free(cj_acked);
    double create_s = fleet_now() - t0;
    json_decref(tmpl);
    int64_t first = (fleet_wall_ms() / 60000 + 1) * 60000; /* the first tick of every one */
    printf("bench-raycronjob: %zu RayCronJobs \"* * * * *\" (RayJobs suspended) created in %.1f s "
           "(%zu failed); ticks from %lld, %d minutes measured\n",
           n, create_s, cfail, (long long)(first / 60000), minutes);
    fflush(stdout);
    fleet_split_t *cpu = calloc((size_t)minutes + 1, sizeof(*cpu)), peak = {0};
    for (int m = 0; m <= minutes; m++) {
        s_sleep_until(first + (int64_t)m * 60000 - BENCH_EDGE_MS);
        fleet_usage_split(&f, &cpu[m]);
        bench_peak(&peak, &cpu[m]);
    }
    s_sleep_until(fleet_wall_ms() + 1000); /* the audit database commits every 10 ms */
    s_create_t *cr = NULL;
    size_t ncr = 0;
    int arc = s_creates(&f, &cr, &ncr);
    printf("\n%-8s %7s %8s %9s %9s %9s %9s %11s %10s %10s\n", "minute", "RayJobs", "errors",
           "sent p50", "sent p99", "done p50", "done p99", "submitter s", "s/tick ms", "watcher s");
    size_t cap = ncr > n ? ncr : n;
    int64_t *sent = calloc(cap, sizeof(*sent)), *done = calloc(cap, sizeof(*done));
    for (int m = 0; m < minutes && arc == 0 && sent && done; m++) {
        int64_t minute = first / 60000 + m;
        size_t k = 0, errs = 0;
        for (size_t i = 0; i < ncr; i++) {
            if (cr[i].minute != minute)
                continue;
            if (cr[i].status >= 300 && cr[i].status != 409)
                errs++;
            sent[k] = cr[i].sent_ms - minute * 60000;
            done[k++] = cr[i].done_ms - minute * 60000;
        }
        double sp50, sp99, dp50, dp99;
        bench_pcts(sent, k, &sp50, &sp99);
        bench_pcts(done, k, &dp50, &dp99);
        fleet_split_t d;
        bench_cpu_delta(&cpu[m], &cpu[m + 1], &d);
        printf("%-8lld %7zu %8zu %8.0fms %8.0fms %8.0fms %8.0fms %11.2f %10.3f %10.2f\n",
               (long long)minute, k, errs, sp50, sp99, dp50, dp99, d.cpu_submitter,
               k ? d.cpu_submitter * 1000.0 / (double)k : 0, d.cpu_watcher);
    }
    fleet_split_t all;
    bench_cpu_delta(&cpu[0], &cpu[minutes], &all);
    printf("over %d minutes: submitter %.2f s CPU (%.2f s/min), watcher %.2f s, bus %.2f s, "
           "scheduler %.2f s, kubesim %.2f s; peak RSS submitter %.0f MB, watcher %.0f MB\n",
           minutes, all.cpu_submitter, all.cpu_submitter / minutes, all.cpu_watcher, all.cpu_bus,
           all.cpu_sched, all.cpu_kubesim, (double)peak.rss_submitter / 1e6,
           (double)peak.rss_watcher / 1e6);
    int rc = arc == 0 ? 0 : 1;
    if (!skip_raw) {
        /* the raw floor: this process creates one tick's N RayJobs at once */
        fleet_kill(&f.submitter, true);
        fleet_kill(&f.watcher, true);
        json_t *rj =
            json_pack("{s:s, s:s, s:{}, s:{s:s, s:b, s:b, s:{s:{s:{}, s:{s:{s:[{s:s, "
                      "s:s}]}}}}}}",
                      "apiVersion", "ray.io/v1", "kind", "RayJob", "metadata", "spec", "entrypoint",
                      "python x.py", "shutdownAfterJobFinishes", 1, "suspend", 1, "rayClusterSpec",
                      "headGroupSpec", "rayStartParams", "template", "spec", "containers", "name",
                      "ray-head", "image", "rayproject/ray:2.52.0");
        int64_t *acked = calloc(n, sizeof(*acked));
        if (!acked || !done) {
            fleet_stop(&f, keep);
            return 1;
        }
        int64_t start = fleet_wall_ms();
        size_t rfail = fleet_create_objs(&f, "/apis/ray.io/v1/namespaces/" FLEET_NS "/rayjobs", rj,
                                         "raw", n, 0, acked, NULL, NULL, false);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (acked[i] > 0)
                done[k++] = acked[i] - start;
        double p50, p99;
        bench_pcts(done, k, &p50, &p99);
        printf("raw      %zu RayJob creates at once (32 in flight, no controller): answered p50 "
               "%.0f ms p99 %.0f ms after the start (%zu failed)\n",
               n, p50, p99, rfail);
        free(acked);
        json_decref(rj);
    }
    printf("lag: a RayJob create's send (sent) and kubesim's answer (done) after the minute "
           "boundary of its tick; submitter s: its CPU seconds over that tick-minute (the "
           "RayCronJob and RayJob controllers), s/tick ms: the same per RayJob created.\n");
    free(cr);
    free(sent);
    free(done);
    free(cpu);
    fleet_stop(&f, keep);
    return rc;
}
