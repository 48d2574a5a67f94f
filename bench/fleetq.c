/*
 * bench-fleetq: admission decisions per second of fleet/queue (DRF over the tenants' queues,
 * quotas, preemption), with --waiting workloads (10,000) waiting over --queues queues (10).
 *
 * Rows:
 *   - open: no quota binds; each decision is fleet_queue_next() (with a fits callback over a fleet
 *     of 1,000 CPU / 4 TiB) and fleet_queue_admit(); when nothing fits, the oldest running workload
 *     finishes; every admitted workload is replaced by a new waiting one, so the backlog stays at
 *     --waiting;
 *   - quota-blocked: as open, but half the queues have a 1-CPU quota none of their workloads fits:
 *     those queues have the lowest share, so every decision first scans their whole backlog
 *     (BestEffortFIFO: nothing blocks, everything is looked at);
 *   - preempt: fleet_queue_preempt() for a high-priority workload of a queue with 1,000 admitted
 *     lower-priority ones (choosing and minimising the victims).
 * The workloads are generated before timing starts (sizes 1-16 CPU, 1-64 GiB). No I/O is timed.
 */
#include "benchclock.h"
#include "fedcfg.h"
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_WAITING_DEFAULT 10000
#define BENCH_QUEUES_DEFAULT 10
#define BENCH_DECISIONS_DEFAULT 20000
#define BENCH_QUEUES_MAX 1024

typedef struct {
    fleet_res_t free; /* the fleet's room */
    fleet_workload_t **run; /* admitted, a FIFO ring */
    size_t rhead, rlen, rcap;
    uint64_t rng;
} bench_t;

static uint64_t s_rand(bench_t *b, uint64_t n)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng % n;
}

static bool s_fits(void *arg, const fleet_workload_t *w)
{
    return fleet_res_fits(&w->need, &((bench_t *)arg)->free);
}

static bool s_fits_after(void *arg, const fleet_workload_t *w, fleet_workload_t *const *v, size_t n)
{
    fleet_res_t room = ((bench_t *)arg)->free;
    for (size_t i = 0; i < n; i++)
        fleet_res_add(&room, &v[i]->need);
    return fleet_res_fits(&w->need, &room);
}

/* The queues: weights 1..n, the last `blocked` with a 1-CPU quota. */
static fleet_queues_t *s_queues(size_t n, size_t blocked, const fleet_res_t *cap)
{
    fedcfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.queues = calloc(n, sizeof(*cfg.queues));
    if (!cfg.queues)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        fedcfg_queue_t *q = &cfg.queues[i];
        char name[32];
        (void)snprintf(name, sizeof name, "q%zu", i);
        q->name = strdup(name);
        q->weight = (double)(i + 1);
        for (int r = 0; r < FLEET_RES_N; r++)
            q->quota.v[r] = FEDCFG_UNLIMITED;
        if (i >= n - blocked)
            q->quota.v[FLEET_RES_CPU] = 1000;
        cfg.nqueues++;
    }
    fleet_queues_t *fq = NULL;
    (void)fleet_queues_new(&cfg, cap, &fq);
    fedcfg_free(&cfg);
    return fq;
}

static int s_add(fleet_queues_t *q, bench_t *b, size_t nq, size_t *seq, int32_t prio)
{
    char key[48];
    (void)snprintf(key, sizeof key, "ns/rayjob-%zu", *seq);
    fleet_res_t need = {{(int64_t)(1 + s_rand(b, 16)) * 1000, (int64_t)(1 + s_rand(b, 64)) << 30, 0,
                         (int64_t)(1 + s_rand(b, 4))}};
    size_t qi = (*seq)++ % nq;
    return fleet_queue_add(q, key, qi, prio, (int64_t)*seq, &need, NULL);
}

/* One row: `decisions` admissions in steady state. Returns decisions per wall second, or -1;
 * *cpu_rate gets decisions per CPU second, *next_us the wall time in fleet_queue_next() per
 * decision. */
static double s_row(size_t nq, size_t blocked, size_t waiting, size_t decisions, double *cpu_rate,
                    double *next_us)
{
    fleet_res_t cap = {{1000000, 4096LL << 30, 0, 100000}};
    bench_t b = {.free = cap, .rng = 0x9e3779b97f4a7c15ULL, .rcap = 4096};
    b.run = calloc(b.rcap, sizeof(*b.run));
    fleet_queues_t *q = s_queues(nq, blocked, &cap);
    if (!q || !b.run)
        return -1;
    size_t seq = 0;
    for (size_t i = 0; i < waiting; i++) {
        if (s_add(q, &b, nq, &seq, 0) != 0)
            return -1;
    }
    double t0 = benchclock_now(), c0 = benchclock_cpu(), tnext = 0;
    size_t done = 0;
    while (done < decisions) {
        double a = benchclock_now();
        fleet_workload_t *w = fleet_queue_next(q, s_fits, &b);
        tnext += benchclock_now() - a;
        if (!w) {
            if (b.rlen == 0)
                return -1;
            fleet_workload_t *f = b.run[b.rhead];
            b.rhead = (b.rhead + 1) % b.rcap;
            b.rlen--;
            fleet_res_add(&b.free, &f->need);
            (void)fleet_queue_finish(q, f);
            continue;
        }
        if (fleet_queue_admit(q, w) != 0 || b.rlen == b.rcap)
            return -1;
        fleet_res_sub(&b.free, &w->need);
        b.run[(b.rhead + b.rlen++) % b.rcap] = w;
        done++;
        if (s_add(q, &b, nq - blocked, &seq, 0) != 0)
            return -1;
    }
    double el = benchclock_now() - t0;
    *cpu_rate = (double)decisions / (benchclock_cpu() - c0);
    *next_us = tnext / (double)decisions * 1e6;
    fleet_queues_destroy(&q);
    free(b.run);
    return (double)decisions / el;
}

/* Preemption decisions per wall second over a queue with `admitted` low-priority workloads;
 * *cpu_rate per CPU second. */
static double s_preempt_row(size_t admitted, size_t *victims, double *cpu_rate)
{
    fleet_res_t cap = {{(int64_t)admitted * 8000, (int64_t)admitted << 35, 0, 1000000}};
    bench_t b = {.free = cap, .rng = 0x2545f4914f6cdd1dULL};
    fleet_queues_t *q = s_queues(1, 0, &cap);
    if (!q)
        return -1;
    size_t seq = 0;
    fleet_workload_t *w;
    for (size_t i = 0; i < admitted * 2; i++) {
        if (s_add(q, &b, 1, &seq, 0) != 0)
            return -1;
    }
    while ((w = fleet_queue_next(q, s_fits, &b)) && fleet_queue_admit(q, w) == 0)
        fleet_res_sub(&b.free, &w->need);
    fleet_res_t need = {{64000, 256LL << 30, 0, 8}};
    if (fleet_queue_add(q, "ns/urgent", 0, 1000, 0, &need, &w) != 0)
        return -1;
    fleet_workload_t *v[256];
    size_t n = 0, calls = 0;
    double t0 = benchclock_now(), c0 = benchclock_cpu(), el = 0;
    while (el < 1.0) {
        if (fleet_queue_preempt(q, w, s_fits_after, &b, v, 256, &n) != 0)
            return -1;
        calls++;
        el = benchclock_now() - t0;
    }
    *victims = n;
    *cpu_rate = (double)calls / (benchclock_cpu() - c0);
    fleet_queues_destroy(&q);
    return (double)calls / el;
}

int main(int argc, char **argv)
{
    size_t waiting = BENCH_WAITING_DEFAULT, nq = BENCH_QUEUES_DEFAULT;
    size_t decisions = BENCH_DECISIONS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t *dst = strcmp(a, "--waiting") == 0     ? &waiting
                      : strcmp(a, "--queues") == 0    ? &nq
                      : strcmp(a, "--decisions") == 0 ? &decisions
                                                      : NULL;
        char *end = NULL;
        unsigned long long x = v ? strtoull(v, &end, 10) : 0;
        if (!dst || !v || *end || x == 0) {
            fprintf(stderr,
                    "usage: bench-fleetq [--waiting N] [--queues N (2..%d)] "
                    "[--decisions N]\n",
                    BENCH_QUEUES_MAX);
            return 2;
        }
        *dst = (size_t)x;
        i++;
    }
    if (nq < 2 || nq > BENCH_QUEUES_MAX) {
        fprintf(stderr, "bench-fleetq: --queues must be between 2 and %d\n", BENCH_QUEUES_MAX);
        return 2;
    }
    printf("bench-fleetq: %zu waiting workloads over %zu queues, %zu admissions per row\n", waiting,
           nq, decisions);
    printf("%-16s %14s %14s %18s\n", "row", "decisions/s", "per CPU s", "next() us/decision");
    double us = 0, cpu = 0;
    double open = s_row(nq, 0, waiting, decisions, &cpu, &us);
    printf("%-16s %14.0f %14.0f %18.2f\n", "open", open, cpu, us);
    double blocked = s_row(nq, nq / 2, waiting, decisions, &cpu, &us);
    printf("%-16s %14.0f %14.0f %18.2f\n", "quota-blocked", blocked, cpu, us);
    size_t victims = 0;
    double pre = s_preempt_row(1000, &victims, &cpu);
    printf("%-16s %14.0f %14.0f %18s (1000 admitted, %zu victims chosen)\n", "preempt", pre, cpu,
           "-", victims);
    return open > 0 && blocked > 0 && pre > 0 ? 0 : 1;
}
