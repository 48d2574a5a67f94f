/*
 * bench-fleet: federation placement decisions per second (fleet/place) with a queue of RayJobs
 * over members of different sizes, each placement committed so the next decision sees it.
 *
 * Input, generated before timing from a fixed seed: --members members (default 16) of 50 to 500
 * nodes (CPU nodes of 16/32/64 cores; every fourth member with a quarter of its nodes A100 nodes
 * of 8 GPUs, every fourth other one with T4 nodes of 4 GPUs; nodes in zones a/b/c; members
 * labelled region=us|eu), and --rayjobs RayJobs (default 10,000) whose demands are computed by
 * fleet_demand_rayjob from their JSON (head, K8sJobMode submitter, a CPU group of 0–8 workers of
 * 1–4 cores with one in fifty of 32–128 workers, one in five with a GPU group of 1–4 workers of
 * 1–8 GPUs, half of those selecting A100 or T4, one in seven selecting a zone, one in ten asking
 * for members with region=eu). The queue asks for a little more than the fleet has, so the last
 * decisions run against full members (the slow case: every member is tried and explained).
 *
 * Each run builds the members afresh and places the whole queue in order (fleet_place, then
 * fleet_commit on the chosen member). Measured: decisions per second (median over --runs), each
 * decision's latency (p50/p99 of the median run), how many RayJobs were placed and how many did
 * not fit. The raw baseline is an aggregate-only placer (member sums, no nodes, no selectors, no
 * reason text): what node-by-node fitting and the explanation cost.
 */
#include "demand.h"
#include "err.h"
#include "json.h"
#include "place.h"
#include "selector.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_RAYJOBS_DEFAULT 10000
#define BENCH_MEMBERS_DEFAULT 16
#define BENCH_RUNS_DEFAULT 5
#define BENCH_RUNS_MAX 15
#define BENCH_TARGET 1000.0 /* decisions/s (issue 16) */

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static int s_between(int lo, int hi)
{
    return lo + (int)(s_rand() % (uint64_t)(hi - lo + 1));
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the members ---- */

static void s_node(fleet_node_t *nd, size_t j, int cpu, int mem_gi, int gpu, const char *product)
{
    static const char *const zones[] = {"a", "b", "c"};
    char name[32];
    snprintf(name, sizeof(name), "node-%05zu", j);
    nd->name = strdup(name);
    nd->labels = json_pack("{s:s,s:s}", "topology.kubernetes.io/zone", zones[j % 3],
                           "kubernetes.io/hostname", name);
    if (product)
        json_object_set_new(nd->labels, "nvidia.com/gpu.product", json_string(product));
    nd->gpu_type = json_string_value(json_object_get(nd->labels, "nvidia.com/gpu.product"));
    nd->alloc.v[FLEET_RES_CPU] = (int64_t)cpu * 1000;
    nd->alloc.v[FLEET_RES_MEMORY] = (int64_t)mem_gi << 30;
    nd->alloc.v[FLEET_RES_GPU] = gpu;
    nd->alloc.v[FLEET_RES_PODS] = 110;
    nd->schedulable = (j % 97) != 96; /* about one node in a hundred cordoned */
}

/* Member i of n: 50..500 nodes. Returns the nodes. */
static size_t s_member(fleet_member_t *m, int i, int n)
{
    memset(m, 0, sizeof(*m));
    char name[32];
    snprintf(name, sizeof(name), "member-%02d", i + 1);
    m->name = strdup(name);
    m->labels = json_pack("{s:s}", "region", i < n / 2 ? "us" : "eu");
    size_t nn = 50 + (size_t)(n > 1 ? 450 * i / (n - 1) : 0);
    m->nodes = calloc(nn, sizeof(*m->nodes));
    m->nnodes = nn;
    m->healthy = true;
    for (size_t j = 0; j < nn; j++) {
        fleet_node_t *nd = &m->nodes[j];
        if (i % 4 == 0 && j % 4 == 0)
            s_node(nd, j, 96, 768, 8, "A100");
        else if (i % 4 == 1 && j % 4 == 0)
            s_node(nd, j, 48, 192, 4, "T4");
        else
            s_node(nd, j, j % 3 == 0 ? 64 : j % 3 == 1 ? 32 : 16, j % 3 == 0 ? 256 : 128, 0, NULL);
        if (nd->schedulable) {
            fleet_res_add(&m->alloc, &nd->alloc);
            fleet_res_add(&m->used, &nd->used);
        }
    }
    if (i % 4 == 0)
        json_object_set_new(m->labels, "accelerator", json_string("a100"));
    return nn;
}

static void s_members_free(fleet_member_t *ms, int n)
{
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < ms[i].nnodes; j++) {
            free(ms[i].nodes[j].name);
            json_decref(ms[i].nodes[j].labels);
        }
        free(ms[i].nodes);
        free(ms[i].name);
        json_decref(ms[i].labels);
    }
}

/* ---- the queue ---- */

typedef struct {
    fleet_demand_t d;
    bool eu; /* asks for members with region=eu */
} s_job_t;

static json_t *s_group(const char *name, int replicas, int cpu, int gpu, const char *product,
                       const char *zone)
{
    json_t *req = json_pack("{s:s,s:s}", "cpu", "0", "memory", "0");
    char q[32];
    snprintf(q, sizeof(q), "%d", cpu);
    json_object_set_new(req, "cpu", json_string(q));
    snprintf(q, sizeof(q), "%dGi", cpu * 4);
    json_object_set_new(req, "memory", json_string(q));
    if (gpu)
        json_object_set_new(req, "nvidia.com/gpu", json_integer(gpu));
    json_t *spec = json_pack("{s:[{s:s,s:s,s:{s:o}}]}", "containers", "name", "ray-worker", "image",
                             "rayproject/ray:2.52.0", "resources", "requests", req);
    if (product || zone) {
        json_t *ns = json_object();
        if (product)
            json_object_set_new(ns, "nvidia.com/gpu.product", json_string(product));
        if (zone)
            json_object_set_new(ns, "topology.kubernetes.io/zone", json_string(zone));
        json_object_set_new(spec, "nodeSelector", ns);
    }
    return json_pack("{s:s,s:i,s:i,s:i,s:{},s:{s:o}}", "groupName", name, "replicas", replicas,
                     "minReplicas", 0, "maxReplicas", replicas + 10, "rayStartParams", "template",
                     "spec", spec);
}

/* RayJob k's JSON. Counts GPU and selector jobs. */
static json_t *s_rayjob(int k, int *gpu_jobs, int *sel_jobs, bool *eu)
{
    const char *zone = s_between(0, 6) == 0 ? (s_between(0, 1) ? "a" : "b") : NULL;
    json_t *groups = json_array();
    int big = s_between(0, 49) == 0;
    int workers = big ? s_between(32, 128) : s_between(0, 8);
    static const int cpus[] = {1, 2, 3, 4};
    json_array_append_new(groups, s_group("cpu", workers, cpus[s_between(0, 3)], 0, NULL, zone));
    bool gpu = s_between(0, 4) == 0;
    const char *product = NULL;
    if (gpu) {
        static const int gpus[] = {1, 2, 4, 8};
        int g = gpus[s_between(0, 3)];
        int pick = s_between(0, 3);
        product = pick == 0 ? "A100" : pick == 1 ? "T4" : NULL;
        if (product && strcmp(product, "T4") == 0 && g > 4)
            g = 4;
        json_array_append_new(groups, s_group("gpu", s_between(1, 4), 8, g, product, zone));
        (*gpu_jobs)++;
    }
    if (zone || product)
        (*sel_jobs)++;
    *eu = s_between(0, 9) == 0;
    char name[32];
    snprintf(name, sizeof(name), "rayjob-%05d", k);
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s},s:{s:s,s:{s:{s:{},s:{s:{s:[{s:s,s:s,s:{s:{s:s,s:s}}}]}}},s:o}}}",
        "apiVersion", "ray.io/v1", "kind", "RayJob", "metadata", "name", name, "namespace",
        "team-a", "spec", "entrypoint", "python /home/ray/samples/sample_code.py", "rayClusterSpec",
        "headGroupSpec", "rayStartParams", "template", "spec", "containers", "name", "ray-head",
        "image", "rayproject/ray:2.52.0", "resources", "requests", "cpu", "2", "memory", "8Gi",
        "workerGroupSpecs", groups);
}

/* ---- the runs ---- */

typedef struct {
    double secs; /* the whole queue */
    int placed, unfit;
    int unrunnable; /* the baseline's placements that do not fit node by node */
    double *lat; /* per decision, seconds (NULL: not kept) */
} s_run_t;

static int s_run_place(const s_job_t *jobs, int njobs, int nmembers, fleet_strategy_t strat,
                       const selector_t *eu, s_run_t *out)
{
    fleet_member_t *ms = calloc((size_t)nmembers, sizeof(*ms));
    if (!ms)
        return ERR_NOMEM;
    for (int i = 0; i < nmembers; i++)
        s_member(&ms[i], i, nmembers);
    fleet_choice_t c;
    out->placed = out->unfit = 0;
    int rc = 0;
    double t0 = s_now();
    for (int k = 0; k < njobs && rc == 0; k++) {
        fleet_policy_t pol = {NULL, jobs[k].eu ? eu : NULL, strat};
        double a = out->lat ? s_now() : 0;
        int i = fleet_place(ms, (size_t)nmembers, &jobs[k].d, &pol, &c);
        if (i >= 0) {
            rc = fleet_commit(&ms[i], &jobs[k].d);
            out->placed++;
        } else {
            out->unfit++;
        }
        if (out->lat)
            out->lat[k] = s_now() - a;
    }
    out->secs = s_now() - t0;
    /* no member over its capacity, node by node */
    for (int i = 0; i < nmembers && rc == 0; i++)
        for (size_t j = 0; j < ms[i].nnodes; j++)
            for (int r = 0; r < FLEET_RES_N; r++)
                if (ms[i].nodes[j].used.v[r] > ms[i].nodes[j].alloc.v[r])
                    rc = ERR_STATE; /* over capacity: a bug */
    s_members_free(ms, nmembers);
    free(ms);
    return rc;
}

/* The baseline: member sums only, spread by dominant share, no nodes, no reasons. */
static int s_run_aggregate(const s_job_t *jobs, int njobs, int nmembers, s_run_t *out)
{
    fleet_member_t *ms = calloc((size_t)nmembers, sizeof(*ms));
    if (!ms)
        return ERR_NOMEM;
    for (int i = 0; i < nmembers; i++)
        s_member(&ms[i], i, nmembers);
    int *choice = calloc((size_t)njobs, sizeof(*choice));
    if (!choice) {
        s_members_free(ms, nmembers);
        free(ms);
        return ERR_NOMEM;
    }
    out->placed = out->unfit = out->unrunnable = 0;
    double t0 = s_now();
    for (int k = 0; k < njobs; k++) {
        int best = -1;
        double bs = 0;
        for (int i = 0; i < nmembers; i++) {
            fleet_res_t after = ms[i].used;
            fleet_res_add(&after, &jobs[k].d.total);
            if (!fleet_res_fits(&after, &ms[i].alloc))
                continue;
            double s = fleet_res_dominant_share(&after, &ms[i].alloc, NULL);
            if (best < 0 || s < bs) {
                best = i;
                bs = s;
            }
        }
        choice[k] = best;
        if (best >= 0) {
            fleet_res_add(&ms[best].used, &jobs[k].d.total);
            out->placed++;
        } else {
            out->unfit++;
        }
    }
    out->secs = s_now() - t0;
    /* untimed: replay its choices node by node on fresh members */
    s_members_free(ms, nmembers);
    for (int i = 0; i < nmembers; i++)
        s_member(&ms[i], i, nmembers);
    for (int k = 0; k < njobs; k++)
        if (choice[k] >= 0 && fleet_commit(&ms[choice[k]], &jobs[k].d) != 0)
            out->unrunnable++;
    free(choice);
    s_members_free(ms, nmembers);
    free(ms);
    return 0;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: bench-fleet [--rayjobs N] [--members N] [--runs N]\n");
}

int main(int argc, char **argv)
{
    int njobs = BENCH_RAYJOBS_DEFAULT, nmembers = BENCH_MEMBERS_DEFAULT, runs = BENCH_RUNS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        int *dst = strcmp(argv[i], "--rayjobs") == 0   ? &njobs
                   : strcmp(argv[i], "--members") == 0 ? &nmembers
                   : strcmp(argv[i], "--runs") == 0    ? &runs
                                                       : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            s_usage(stdout);
            return 0;
        }
        if (!dst || i + 1 >= argc) {
            s_usage(stderr);
            return 2;
        }
        char *end = NULL;
        long v = strtol(argv[++i], &end, 10);
        *dst = (end && *end == '\0' && v >= 0 && v <= 1000000) ? (int)v : -1;
    }
    if (njobs < 1 || njobs > 1000000 || nmembers < 1 || nmembers > 1000 || runs < 1 ||
        runs > BENCH_RUNS_MAX) {
        fprintf(stderr, "bench-fleet: --rayjobs 1..1000000, --members 1..1000, --runs 1..%d\n",
                BENCH_RUNS_MAX);
        return 2;
    }
    s_job_t *jobs = calloc((size_t)njobs, sizeof(*jobs));
    double *lat = calloc((size_t)njobs, sizeof(*lat));
    if (!jobs || !lat)
        return 1;
    int gpu_jobs = 0, sel_jobs = 0, eu_jobs = 0;
    int64_t pods = 0;
    buf_t err;
    buf_init(&err, 4096);
    double t0 = s_now();
    for (int k = 0; k < njobs; k++) {
        json_t *rj = s_rayjob(k, &gpu_jobs, &sel_jobs, &jobs[k].eu);
        if (!rj || fleet_demand_rayjob(rj, &jobs[k].d, &err) != 0) {
            fprintf(stderr, "bench-fleet: RayJob %d: %s\n", k, buf_str(&err));
            return 1;
        }
        eu_jobs += jobs[k].eu;
        pods += (int64_t)jobs[k].d.npods;
        json_decref(rj);
    }
    double demand_s = s_now() - t0;
    size_t nodes = 0;
    {
        fleet_member_t m;
        for (int i = 0; i < nmembers; i++) {
            nodes += s_member(&m, i, nmembers);
            s_members_free(&m, 1);
        }
    }
    selector_t *eu = NULL;
    if (selector_parse_labels("region=eu", &eu, NULL) != 0)
        return 1;
    printf("bench-fleet: %d RayJobs (%lld pods; %d with a GPU group, %d with a nodeSelector, %d "
           "asking for region=eu) over %d members (%zu nodes, 50..500 each), %d runs\n",
           njobs, (long long)pods, gpu_jobs, sel_jobs, eu_jobs, nmembers, nodes, runs);
    printf("bench-fleet: demands from RayJob JSON: %.0f RayJobs/s (fleet_demand_rayjob)\n",
           njobs / demand_s);

    const char *names[3] = {"node by node, spread", "node by node, pack",
                            "aggregate only (baseline)"};
    double rate[3][BENCH_RUNS_MAX];
    s_run_t last[3];
    double p50 = 0, p99 = 0;
    int rc = 0;
    for (int r = 0; r < runs && rc == 0; r++) {
        for (int w = 0; w < 3 && rc == 0; w++) {
            s_run_t run = {0};
            run.lat = (w == 0 && r == runs / 2) ? lat : NULL;
            rc = w == 2
                     ? s_run_aggregate(jobs, njobs, nmembers, &run)
                     : s_run_place(jobs, njobs, nmembers, w ? FLEET_PACK : FLEET_SPREAD, eu, &run);
            rate[w][r] = njobs / run.secs;
            last[w] = run;
            if (run.lat) {
                qsort(lat, (size_t)njobs, sizeof(*lat), s_cmp_double);
                p50 = lat[njobs / 2];
                p99 = lat[(size_t)njobs * 99 / 100];
            }
        }
    }
    if (rc) {
        fprintf(stderr, "bench-fleet: a run failed (%s)\n", err_str(rc));
        return 1;
    }
    printf("%-28s %14s %10s %8s %12s %12s\n", "placer", "decisions/s", "vs base", "placed",
           "did not fit", "cannot run");
    double med[3];
    for (int w = 0; w < 3; w++) {
        qsort(rate[w], (size_t)runs, sizeof(double), s_cmp_double);
        med[w] = rate[w][runs / 2];
    }
    for (int w = 0; w < 3; w++)
        printf("%-28s %14.0f %9.1f%% %8d %12d %12d\n", names[w], med[w], 100.0 * med[w] / med[2],
               last[w].placed, last[w].unfit, last[w].unrunnable);
    printf("bench-fleet: spread decision latency p50 %.1f us, p99 %.1f us; target >= %.0f "
           "decisions/s: %s\n",
           p50 * 1e6, p99 * 1e6, BENCH_TARGET, med[0] >= BENCH_TARGET ? "met" : "NOT met");
    printf("bench-fleet: medians of %d runs; \"cannot run\": placed on a member where the pods do "
           "not fit node by node (the baseline ignores nodes and nodeSelectors)\n",
           runs);
    for (int k = 0; k < njobs; k++)
        fleet_demand_free(&jobs[k].d);
    free(jobs);
    free(lat);
    selector_destroy(&eu);
    buf_free(&err);
    return 0;
}
