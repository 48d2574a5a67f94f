/*
 * bench-scale: issue 7's benchmark. rayfleet as child processes (kubesim with 1,000 nodes, the
 * bus, the watcher and 1, 2 or 4 rayfleet-scheduler replicas splitting the shards with SQLite
 * leases; tests/integration/replicas/fleet.h) reconciles N RayClusters of 1 head + 3 workers
 * (ray-cluster.sample.yaml with 3 workers and small requests, like KubeRay's clusterloader2
 * test), created paced at 100/s and unpaced (32 requests in flight), with kubesim's added
 * latency at 0 and 20 ms.
 *
 * Per run: time from the first create to every RayCluster `ready` (as observed.db says);
 * pods created per second (successful pod creates in the audit rows / the span from the first
 * pod create sent to the last one answered); event-to-first-write latency p50/p99 (from the
 * 201 of the RayCluster's create, i.e. the moment kubesim emits its watch event, to the first
 * audited API write for it); peak total VmRSS and CPU seconds of rayfleet's processes (bus,
 * watcher, schedulers; kubesim excluded); API writes per RayCluster (audit rows / N; the
 * scheduler reads nothing from the API, the watcher's list+watch are O(1) per run).
 *
 * Baselines, in the same invocation and per latency, on a fresh kubesim each: raw-pods, a
 * minimal client creating N RayClusters then 4N small bare pods (kubesim's create ceiling), and
 * raw-mix, a minimal client creating N RayClusters then making exactly the child writes rayfleet
 * makes for them (the head Service, the same pods from the same builders, an Event per create,
 * two status updates: 12 per cluster, bodies built before the clock starts). raw-mix's pods/s is
 * the limit the ratio column compares rayfleet's pods/s with.
 *
 *   bench-scale [--clusters N] [--replicas LIST] [--latencies LIST] [--modes paced,unpaced]
 *               [--rate R] [--concurrency C] [--max-inflight M] [--connections K] [--keep]
 */
#include "../tests/integration/replicas/fleet.h"

#include "log.h"
#include "objbuild.h"
#include "podbuild.h"
#include "validate.h"

#define BENCH_CLUSTERS_DEFAULT 2000 /* RayClusters per run */
#define BENCH_CLUSTERS_MAX 100000 /* most RayClusters per run */
#define BENCH_RATE_DEFAULT 100.0 /* paced creates per second */
#define BENCH_NODES 1000 /* kubesim nodes */
#define BENCH_CONC_DEFAULT 64 /* schedulers' --concurrency */
#define BENCH_QPS 100000 /* schedulers' client qps: no client-side limit */
#define BENCH_LEASE_MS 5000 /* shard lease duration */
#define BENCH_RUN_MAX_S 900.0 /* longest wait for readiness of one run */
#define BENCH_SAMPLE_S 0.2 /* readiness / RSS sampling period */
#define BENCH_SPLIT_MAX_S 30.0 /* longest wait for the replicas to split the shards */
#define BENCH_LIST_MAX 8 /* most values in --replicas / --latencies */
#define BENCH_WORKERS 3 /* workers per RayCluster */
/* child writes per RayCluster: head Service, 1 + BENCH_WORKERS pods, an Event per create, two
 * status updates */
#define BENCH_MIX_WRITES (1 + (1 + BENCH_WORKERS) + (2 + BENCH_WORKERS) + 2)

typedef struct {
    fleet_t *f; /* the fleet */
    const char *prefix; /* RayCluster name prefix */
    double next; /* next sample time */
    long long rss_peak; /* peak total RSS */
    fleet_split_t peak; /* peak RSS per process kind */
    long ready; /* last ready count */
} sampler_t;

static void s_sample(void *arg)
{
    sampler_t *s = arg;
    double now = fleet_now();
    if (now < s->next)
        return;
    s->next = now + BENCH_SAMPLE_S;
    fleet_split_t sp; /* one read of each process's /proc files per sample */
    fleet_usage_split(s->f, &sp);
    long long rss = sp.rss_bus + sp.rss_watcher + sp.rss_sched;
    if (rss > s->rss_peak)
        s->rss_peak = rss;
    if (sp.rss_watcher > s->peak.rss_watcher)
        s->peak.rss_watcher = sp.rss_watcher;
    if (sp.rss_sched > s->peak.rss_sched)
        s->peak.rss_sched = sp.rss_sched;
    if (sp.rss_kubesim > s->peak.rss_kubesim)
        s->peak.rss_kubesim = sp.rss_kubesim;
    s->ready = fleet_ready_count(s->f, s->prefix);
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double ready_s; /* first create -> all ready; < 0: timeout */
    double pods_per_s; /* pod creates per second */
    double p50_ms, p99_ms; /* event -> first write */
    double rss_mb; /* peak total RSS */
    double cpu_s; /* CPU seconds */
    double writes_per_rc; /* audit rows / N */
    long ready; /* RayClusters ready at the end */
    fleet_split_t split; /* peak RSS and CPU seconds per process kind */
} result_t;

/* The replicas hold every shard between them (and, with several, each holds some). */
static bool s_split(fleet_t *f, int replicas)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/leases.db", f->dir);
    sqlite3 *db = NULL;
    long holders = 0, total = 0;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT count(*) FROM leases WHERE name LIKE 'scheduler/shard/%' "
                               "AND expires_ms > ?1 GROUP BY holder",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, fleet_wall_ms());
            while (sqlite3_step(st) == SQLITE_ROW) {
                long c = (long)sqlite3_column_int64(st, 0);
                holders++;
                total += c;
                if (c < FLEET_SHARDS / replicas - 1)
                    holders = -100; /* not balanced yet */
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return holders == replicas && total == FLEET_SHARDS;
}

/* One run. Returns 0 or -1. */
static int s_run(int latency, int replicas, double rate, size_t n, int conc, int inflight,
                 int conns, bool keep, result_t *r)
{
    memset(r, 0, sizeof(*r));
    fleet_t f = {0};
    fleet_opts_t o = {.nodes = BENCH_NODES,
                      .latency_ms = latency,
                      .replicas = replicas,
                      .lease_ms = BENCH_LEASE_MS,
                      .qps = BENCH_QPS,
                      .concurrency = conc,
                      .max_inflight = inflight,
                      .connections = conns,
                      .log_level = "warn"};
    int64_t *acked = calloc(n, sizeof(*acked));
    int64_t *first = calloc(n, sizeof(*first));
    int rc = -1;
    if (!acked || !first || fleet_start(&f, &o) != 0) {
        fprintf(stderr, "bench-scale: cannot start the fleet (state %s)\n", f.dir);
        goto done;
    }
    double t = fleet_now();
    while (!s_split(&f, replicas) && fleet_now() - t < BENCH_SPLIT_MAX_S)
        fleet_sleep_ms(50);
    sampler_t sm = {.f = &f, .prefix = "rc"};
    fleet_split_t sp0;
    fleet_usage_split(&f, &sp0);
    double t0 = fleet_now();
    size_t failed = fleet_create(&f, "rc", n, rate, acked, s_sample, &sm, false);
    if (failed)
        fprintf(stderr, "bench-scale: %zu creates failed\n", failed);
    while ((sm.ready = fleet_ready_count(&f, "rc")) < (long)n &&
           fleet_now() - t0 < BENCH_RUN_MAX_S) {
        sm.next = 0;
        s_sample(&sm);
        if (sm.ready >= (long)n)
            break;
        fleet_sleep_ms((int)(BENCH_SAMPLE_S * 1000));
    }
    r->ready = sm.ready;
    r->ready_s = sm.ready >= (long)n ? fleet_now() - t0 : -1;
    fleet_split_t sp1;
    fleet_usage_split(&f, &sp1);
    long long rss = sp1.rss_bus + sp1.rss_watcher + sp1.rss_sched;
    r->rss_mb = (double)(rss > sm.rss_peak ? rss : sm.rss_peak) / (1024.0 * 1024.0);
    r->cpu_s = (sp1.cpu_bus + sp1.cpu_watcher + sp1.cpu_sched) -
               (sp0.cpu_bus + sp0.cpu_watcher + sp0.cpu_sched);
    r->split = sm.peak;
    r->split.cpu_watcher = sp1.cpu_watcher - sp0.cpu_watcher;
    r->split.cpu_sched = sp1.cpu_sched - sp0.cpu_sched;
    r->split.cpu_kubesim = sp1.cpu_kubesim - sp0.cpu_kubesim;
    fleet_sleep_ms(300); /* last audit batches committed */
    fleet_row_t *rows = NULL;
    size_t nr = 0;
    if (fleet_audit_rows(&f, "rc", &rows, &nr) == 0) {
        int64_t pod_first = INT64_MAX, pod_last = 0;
        size_t pods = 0;
        for (size_t i = 0; i < nr; i++) {
            const char *dash = strrchr(rows[i].key, '-');
            long idx = dash ? strtol(dash + 1, NULL, 10) : -1;
            if (idx >= 0 && (size_t)idx < n && (first[idx] == 0 || rows[i].sent_ms < first[idx]))
                first[idx] = rows[i].sent_ms;
            if (strcmp(rows[i].kind, "Pod") == 0 && strcmp(rows[i].verb, "create") == 0 &&
                rows[i].status == 201) {
                pods++;
                if (rows[i].sent_ms < pod_first)
                    pod_first = rows[i].sent_ms;
                if (rows[i].done_ms > pod_last)
                    pod_last = rows[i].done_ms;
            }
        }
        r->pods_per_s = pods > 0 && pod_last > pod_first
                            ? (double)pods * 1000.0 / (double)(pod_last - pod_first)
                            : 0;
        r->writes_per_rc = (double)nr / (double)n;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (acked[i] > 0 && first[i] > 0)
                first[m++] = first[i] - acked[i] < 0 ? 0 : first[i] - acked[i];
        qsort(first, m, sizeof(*first), s_cmp_i64);
        r->p50_ms = m ? (double)first[m / 2] : -1;
        r->p99_ms = m ? (double)first[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1] : -1;
    }
    free(rows);
    rc = 0;
done:
    fleet_stop(&f, keep);
    if (keep)
        fprintf(stderr, "bench-scale: state kept in %s\n", f.dir);
    free(acked);
    free(first);
    return rc;
}

/* ---- the raw baselines ------------------------------------------------------------------ */

/* One request of the same-mix baseline, built before the clock starts. */
typedef struct {
    char *url; /* full URL */
    char *body; /* JSON body */
    size_t len; /* its length */
    bool patch; /* PATCH (merge patch of /status) rather than POST */
} rawreq_t;

typedef struct {
    rawreq_t *reqs; /* every request, in sending order */
    size_t n, next, done, failed; /* count, next to send, answered, failed */
    int inflight; /* requests in flight */
} rawrun_t;

static void s_raw_done(http_client_t *client, http_response_t *resp, void *arg)
{
    rawrun_t *rr = arg;
    rr->done++;
    rr->inflight--;
    if (resp->err || resp->status < 200 || resp->status >= 300) {
        if (rr->failed++ == 0)
            fprintf(stderr, "bench-scale: raw request: HTTP %ld %.200s\n", resp->status,
                    resp->body.len ? buf_str(&resp->body) : err_str(resp->err));
    }
}

/* Appends a request (takes `body`, a malloc'ed string). Returns 0 or -1. */
static int s_raw_add(rawrun_t *rr, size_t cap, const char *base, const char *path, char *body,
                     bool patch)
{
    if (!body || rr->n >= cap) {
        free(body);
        return -1;
    }
    rawreq_t *q = &rr->reqs[rr->n];
    size_t ul = strlen(base) + strlen(path) + 1;
    q->url = malloc(ul);
    if (!q->url) {
        free(body);
        return -1;
    }
    snprintf(q->url, ul, "%s%s", base, path);
    q->body = body;
    q->len = strlen(body);
    q->patch = patch;
    rr->n++;
    return 0;
}

static char *s_dump_decref(json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

/* The child writes rayfleet makes for RayCluster `rc` (as listed back, with its uid): the head
 * Service, the head and BENCH_WORKERS worker pods, one Event per create (5) and two status
 * updates — the same objects, built by the same builders. Returns 0 or -1. */
static int s_raw_build(rawrun_t *rr, size_t cap, const char *base, const json_t *listed)
{
    json_t *rc = json_deep_copy(listed);
    if (!rc || validate_apply_defaults(rc) != 0) {
        json_decref(rc);
        return -1;
    }
    const char *name = jx_str(rc, "metadata.name", "");
    const char *uid = jx_str(rc, "metadata.uid", "");
    char path[512];
    buf_t err;
    buf_init(&err, 1024);
    int rc_ = 0;
    objbuild_opts_t oo = {0};
    json_t *svc = objbuild_head_service(rc, &oo, &err);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", FLEET_NS);
    rc_ |= s_raw_add(rr, cap, base, path, s_dump_decref(svc), false);
    podbuild_opts_t po;
    podbuild_opts_init(&po);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods", FLEET_NS);
    for (int k = 0; k <= BENCH_WORKERS; k++) {
        json_t *pod = NULL;
        int e =
            k == 0 ? podbuild_head(rc, &po, &pod, &err) : podbuild_worker(rc, 0, &po, &pod, &err);
        if (e == 0 && k > 0) {
            char pn[256];
            snprintf(pn, sizeof(pn), "%s-w-%d", name, k);
            json_object_set_new(json_object_get(pod, "metadata"), "name", json_string(pn));
        }
        rc_ |= s_raw_add(rr, cap, base, path, e == 0 ? s_dump_decref(pod) : NULL, false);
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", FLEET_NS);
    for (int k = 0; k < 2 + BENCH_WORKERS; k++) {
        char ename[300];
        snprintf(ename, sizeof(ename), "%s.raw%d", name, k);
        json_t *ev = json_pack(
            "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:s}, s:i}",
            "apiVersion", "v1", "kind", "Event", "metadata", "name", ename, "namespace", FLEET_NS,
            "involvedObject", "apiVersion", "ray.io/v1", "kind", "RayCluster", "name", name,
            "namespace", FLEET_NS, "uid", uid, "reason", k == 0 ? "CreatedService" : "CreatedPod",
            "message", "Created an object of the RayCluster", "type", "Normal", "source",
            "component", "raycluster-controller", "count", 1);
        rc_ |= s_raw_add(rr, cap, base, path, s_dump_decref(ev), false);
    }
    snprintf(path, sizeof(path), "/apis/ray.io/v1/namespaces/%s/rayclusters/%s/status", FLEET_NS,
             name);
    rc_ |= s_raw_add(
        rr, cap, base, path,
        s_dump_decref(json_pack("{s:{s:s, s:i}}", "status", "state", "", "readyWorkerReplicas", 0)),
        true);
    rc_ |= s_raw_add(rr, cap, base, path,
                     s_dump_decref(json_pack("{s:{s:s, s:i}}", "status", "state", "ready",
                                             "readyWorkerReplicas", BENCH_WORKERS)),
                     true);
    buf_free(&err);
    json_decref(rc);
    return rc_ ? -1 : 0;
}

/* Sends every request, FLEET_INFLIGHT in flight. Returns the failures. */
static size_t s_raw_send(fleet_t *f, rawrun_t *rr)
{
    http_header_t post[] = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    http_header_t patch[] = {{"Content-Type", "application/merge-patch+json"},
                             {"Accept", "application/json"}};
    while (rr->done < rr->n) {
        while (rr->inflight < FLEET_INFLIGHT && rr->next < rr->n) {
            rawreq_t *q = &rr->reqs[rr->next++];
            http_request_t req = {.method = q->patch ? "PATCH" : "POST",
                                  .url = q->url,
                                  .headers = q->patch ? patch : post,
                                  .n_headers = 2,
                                  .body = q->body,
                                  .body_len = q->len,
                                  .body_borrowed = true,
                                  .on_done = s_raw_done,
                                  .arg = rr};
            rr->inflight++;
            if (http_request(f->http, &req) < 0) {
                rr->inflight--;
                rr->done++;
                rr->failed++;
            }
        }
        loop_run_once(f->loop, 1);
    }
    return rr->failed;
}

/* The raw baselines at `latency`, each on a fresh kubesim without the watcher (which would add
 * load a baseline must not have):
 *   pods: N RayClusters, then 4N small bare pods, 32 in flight: *pods_s = pod creates/s;
 *   mix:  N RayClusters, then exactly the child writes rayfleet makes for them (head Service,
 *         the same head and worker pods from the same builders, 5 Events, 2 status updates per
 *         RayCluster: 12 per cluster, built before the clock starts), 32 in flight:
 *         *mix_s = pods/s over the span of those writes, the figure rayfleet's pods/s compares
 *         with. *secs: seconds for all objects of the mix run.
 * Returns 0 or -1. */
static int s_raw(int latency, size_t n, double *pods_s, double *mix_s, double *secs)
{
    *pods_s = *mix_s = -1;
    int out = -1;
    for (int mode = 0; mode < 2; mode++) {
        fleet_t f = {0};
        fleet_opts_t o = {.nodes = BENCH_NODES,
                          .latency_ms = latency,
                          .replicas = 0,
                          .lease_ms = BENCH_LEASE_MS,
                          .qps = BENCH_QPS,
                          .concurrency = 1,
                          .log_level = "warn"};
        int64_t *acked = calloc(n * (1 + BENCH_WORKERS), sizeof(*acked));
        size_t cap = n * BENCH_MIX_WRITES + 16;
        rawrun_t rr = {.reqs = calloc(cap, sizeof(rawreq_t))};
        if (acked && rr.reqs && fleet_start(&f, &o) == 0) {
            fleet_kill(&f.watcher, true);
            double t0 = fleet_now();
            size_t bad = fleet_create(&f, "raw", n, 0, acked, NULL, NULL, false);
            double t1 = fleet_now();
            if (mode == 0) {
                bad +=
                    fleet_create(&f, "rawpod", n * (1 + BENCH_WORKERS), 0, acked, NULL, NULL, true);
                if (bad == 0)
                    *pods_s = (double)(n * (1 + BENCH_WORKERS)) / (fleet_now() - t1);
            } else {
                json_t *list = NULL;
                long st =
                    fleet_call(&f, "GET", "/apis/ray.io/v1/namespaces/" FLEET_NS "/rayclusters",
                               "application/json", NULL, 0, &list);
                size_t i;
                json_t *rc;
                json_array_foreach(json_object_get(list, "items"), i, rc) bad +=
                    s_raw_build(&rr, cap, f.base, rc) != 0;
                json_decref(list);
                if (st != 200 || rr.n != n * BENCH_MIX_WRITES) {
                    fprintf(stderr, "bench-scale: raw-mix: list HTTP %ld, %zu requests built\n", st,
                            rr.n);
                    bad++;
                }
                double t2 = fleet_now();
                bad += s_raw_send(&f, &rr);
                double t3 = fleet_now();
                if (bad == 0) {
                    *mix_s = (double)(n * (1 + BENCH_WORKERS)) / (t3 - t2);
                    *secs = (t1 - t0) + (t3 - t2);
                    out = 0;
                }
            }
        }
        fleet_stop(&f, false);
        for (size_t i = 0; i < rr.n; i++) {
            free(rr.reqs[i].url);
            free(rr.reqs[i].body);
        }
        free(rr.reqs);
        free(acked);
    }
    return out;
}

static int s_parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 100000)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    size_t n = BENCH_CLUSTERS_DEFAULT;
    int reps[BENCH_LIST_MAX] = {1, 2, 4}, nreps = 3;
    int lats[BENCH_LIST_MAX] = {0, 20}, nlats = 2;
    bool paced = true, unpaced = true, keep = false;
    double rate = BENCH_RATE_DEFAULT;
    int conc = BENCH_CONC_DEFAULT;
    long inflight = 0, conns = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--clusters") == 0 && v) {
            n = (size_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--replicas") == 0 && v) {
            nreps = s_parse_list(v, reps, BENCH_LIST_MAX);
            i++;
        } else if (strcmp(a, "--latencies") == 0 && v) {
            nlats = s_parse_list(v, lats, BENCH_LIST_MAX);
            i++;
        } else if (strcmp(a, "--modes") == 0 && v) {
            paced = strstr(v, "paced") == v || strstr(v, ",paced") != NULL;
            unpaced = strstr(v, "unpaced") != NULL;
            i++;
        } else if (strcmp(a, "--rate") == 0 && v) {
            rate = strtod(v, NULL);
            i++;
        } else if (strcmp(a, "--concurrency") == 0 && v) {
            long c = strtol(v, NULL, 10);
            conc = c > 0 && c <= 10000 ? (int)c : -1;
            i++;
        } else if (strcmp(a, "--max-inflight") == 0 && v) {
            inflight = strtol(v, NULL, 10);
            inflight = inflight > 0 && inflight <= 100000 ? inflight : -1;
            i++;
        } else if (strcmp(a, "--connections") == 0 && v) {
            conns = strtol(v, NULL, 10);
            conns = conns > 0 && conns <= 1024 ? conns : -1;
            i++;
        } else if (strcmp(a, "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr,
                    "usage: bench-scale [--clusters N] [--replicas 1,2,4] [--latencies 0,20] "
                    "[--modes paced,unpaced] [--rate R] [--concurrency C] [--max-inflight M] "
                    "[--keep]\n");
            return 2;
        }
    }
    for (int i = 0; i < nreps; i++)
        if (reps[i] < 1 || reps[i] > FLEET_REPLICAS_MAX)
            nreps = -1; /* each count in 1..FLEET_REPLICAS_MAX */
    const char *bad =
        n == 0 || n > BENCH_CLUSTERS_MAX ? "--clusters: must be an integer in 1..100000"
        : nreps <= 0
            ? "--replicas: must be a comma-separated list of at most 8 counts, each in 1..16"
        : nlats <= 0 ? "--latencies: must be a comma-separated list of milliseconds (at most 8)"
        : rate <= 0  ? "--rate: must be a positive number of creates per second"
        : !paced && !unpaced ? "--modes: must name paced, unpaced or both"
        : conc < 0           ? "--concurrency: must be an integer in 1..10000"
        : inflight < 0       ? "--max-inflight: must be an integer in 1..100000"
        : conns < 0          ? "--connections: must be an integer in 1..1024"
                             : NULL;
    if (bad) {
        fprintf(stderr, "bench-scale: %s\n", bad);
        return 2;
    }
    char inflight_s[24] = "default", conns_s[24] = "default";
    if (inflight > 0)
        snprintf(inflight_s, sizeof(inflight_s), "%ld", inflight);
    if (conns > 0)
        snprintf(conns_s, sizeof(conns_s), "%ld", conns);
    signal(SIGPIPE, SIG_IGN);
    log_setup("bench-scale", LOG_ERROR, STDERR_FILENO);
    printf("bench-scale: %zu RayClusters (1 head + %d workers = %zu pods), kubesim %d nodes, "
           "scheduler --concurrency %d --client.max-inflight %s --client.connections %s, shard "
           "leases in SQLite (%d ms)\n",
           n, BENCH_WORKERS, n * (1 + BENCH_WORKERS), BENCH_NODES, conc, inflight_s, conns_s,
           BENCH_LEASE_MS);
    printf("%-4s %-4s %-8s %9s %8s %8s %7s %9s %9s %8s %7s %9s\n", "lat", "reps", "mode", "ready_s",
           "pods/s", "raw/s", "ratio", "p50_ms", "p99_ms", "rss_MB", "cpu_s", "writes/rc");
    fflush(stdout);
    int failures = 0;
    for (int li = 0; li < nlats; li++) {
        double raw_secs = 0, raw_pods = -1, raw = -1;
        s_raw(lats[li], n, &raw_pods, &raw, &raw_secs);
        printf("%-4d %-4s %-8s %9s %8.0f %8s %7s %9s %9s %8s %7s %9s\n", lats[li], "-", "raw-pods",
               "-", raw_pods, "-", "-", "-", "-", "-", "-", "-");
        printf("%-4d %-4s %-8s %9.1f %8.0f %8.0f %7s %9s %9s %8s %7s %9s\n", lats[li], "-",
               "raw-mix", raw_secs, raw, raw, "1.00", "-", "-", "-", "-", "12.0");
        fflush(stdout);
        for (int ri = 0; ri < nreps; ri++)
            for (int mode = 0; mode < 2; mode++) {
                if ((mode == 0 && !paced) || (mode == 1 && !unpaced))
                    continue;
                result_t r;
                if (s_run(lats[li], reps[ri], mode == 0 ? rate : 0, n, conc, (int)inflight,
                          (int)conns, keep, &r) != 0) {
                    failures++;
                    continue;
                }
                char ready[32];
                if (r.ready_s >= 0)
                    snprintf(ready, sizeof(ready), "%.1f", r.ready_s);
                else
                    snprintf(ready, sizeof(ready), "T/O %ld", r.ready);
                failures += r.ready_s < 0;
                printf("%-4d %-4d %-8s %9s %8.0f %8.0f %7.2f %9.0f %9.0f %8.1f %7.1f %9.1f\n",
                       lats[li], reps[ri], mode == 0 ? "paced" : "unpaced", ready, r.pods_per_s,
                       raw, raw > 0 ? r.pods_per_s / raw : 0, r.p50_ms, r.p99_ms, r.rss_mb, r.cpu_s,
                       r.writes_per_rc);
                printf("     split: watcher %.1f s CPU %.0f MB, schedulers %.1f s CPU %.0f MB, "
                       "kubesim %.1f s CPU %.0f MB\n",
                       r.split.cpu_watcher, (double)r.split.rss_watcher / 1048576.0,
                       r.split.cpu_sched, (double)r.split.rss_sched / 1048576.0,
                       r.split.cpu_kubesim, (double)r.split.rss_kubesim / 1048576.0);
                fflush(stdout);
            }
    }
    printf("ready_s: first create -> all ready (observed.db); pods/s: audited pod creates over "
           "their span; raw-pods: small bare pods created straight into kubesim (32 in flight); "
           "raw-mix (raw/s): a minimal client making the same 12 child writes per RayCluster as "
           "rayfleet (same Service, pods from the same builders, Events, status), pods/s over "
           "their span; ratio = pods/s / raw/s (paced runs are bounded by the pace); p50/p99: "
           "create acknowledged -> first "
           "API write for it; rss: peak VmRSS sum of bus + watcher + schedulers; cpu: their CPU "
           "seconds during the run; writes/rc: audited API writes per RayCluster.\n");
    return failures ? 1 : 0;
}
