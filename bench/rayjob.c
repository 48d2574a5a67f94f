/*
 * bench-rayjob: issue 12's RayJob benchmark. rayfleet as child processes
 * (tests/integration/replicas/fleet.h: kubesim, the bus, the watcher, one rayfleet-scheduler and
 * rayfleet-submitter with --use-kubernetes-proxy=true) runs N RayJobs created unpaced (32 creates
 * in flight): head-only clusters (ray-cluster.sample.yaml's spec read in place, workers 0, small
 * requests), entrypoint `python x.py FAKE:sleep=10` (a scripted 10 s Ray job on kubesim's
 * simulated head), shutdownAfterJobFinishes with ttlSecondsAfterFinished 0, submissionMode
 * K8sJobMode (kubesim's kubelet runs the submitter Job's `ray job submit` against the head).
 *
 * Measured per side:
 *   all_s       wall ms of the first create sent -> the answer of the last RayJob's Complete
 *               status write (rayfleet: the submitter's audit row in submitter.db, verb "status",
 *               target RayJob, whose request sets "jobDeploymentStatus":"Complete", time_ms = when
 *               kubesim's answer arrived; raw: when its own Complete patch was answered). The run
 *               also waits for observed.db (rayfleet) to show every RayJob phase Complete.
 *   rj/s        N / all_s; ratio = rayfleet's rj/s / raw's.
 *   end->Complete p50/p99: per RayJob, Complete (as above) minus the Ray job's end_time in ms as
 *               the simulated head reports it. rayfleet side: the bench asks each head once through
 *               kubesim's service proxy (GET /api/jobs/<jobId>) while observed.db shows the RayJob
 *               Running; the head is deleted right after the end (ttl 0), so when the job is still
 *               RUNNING the end is taken as start_time + the head's pending time
 *               (RAYHEAD_DEFAULT_JOB_PENDING_MS) + 10 s, the exact instant rayhead stamps as
 *               end_time for a FAKE:sleep=10 job; when it already ended, its end_time. Raw side:
 *               the end_time its own poll read.
 *   writes/rj   rayfleet: audit rows (submitter.db + scheduler-0.db) caused by the RayJobs and
 * their clusters / N (the RayJob creates are the bench's, not counted); raw: its writes / N
 *               (creates not counted), and its dashboard GETs / N.
 *   RSS / CPU   peak VmRSS and CPU seconds of bus, watcher, scheduler, submitter (raw: this
 *               process, the client), kubesim separately.
 *
 * The raw baseline, same invocation, fresh kubesim without rayfleet (its watcher killed): this
 * process, on its loop with common/http, 32 requests in flight, makes per RayJob the writes
 * rayfleet makes, in its order: create the RayJob; finalizer; status (jobId, rayClusterName);
 * the RayCluster (kuberay/rayjob.h rayjob_cluster) + Event; status; the cluster's head Service
 * and head pod (objbuild/podbuild, as the scheduler) + 2 Events; 4 RayCluster status writes;
 * status; waits for the head's /api/gcs_healthz through the proxy (rayfleet waits for the head pod
 * Ready from its watch); the submitter Job (rayjob_submitter_job) + Event; status; the RayJob's
 * head Service (rayjob_head_service) + Event; status; then GET /api/jobs/<id> through the proxy
 * every 250 ms until the job shows up, 2 status writes (PENDING/RUNNING seen), no poll until the
 * scripted end is due (start + pending + 10 s), then every 100 ms until terminal; the Complete
 * status; the RayCluster deleted + Event. 25 writes per RayJob besides its create.
 *
 * Never a timed assertion: the table is printed whatever it shows; exit 1 only when a side could
 * not run or did not finish.
 *
 *   bench-rayjob [--rayjobs N] [--sleep S] [--concurrency C] [--skip-raw] [--keep]
 */
#include "benchlib.h"

#include "log.h"
#include "objbuild.h"
#include "podbuild.h"
#include "rayhead.h"
#include "rayjob.h"
#include "validate.h"

#define BENCH_RJ_DEFAULT 1000 /* RayJobs per run */
#define BENCH_RJ_MAX 100000 /* most RayJobs per run */
#define BENCH_SLEEP_S 10 /* scripted Ray job duration */
#define BENCH_CONC_DEFAULT 64 /* the services' --concurrency */
#define BENCH_QPS 100000 /* their client qps: no client-side limit */
#define BENCH_SAMPLE_S 0.2 /* observed.db / RSS sampling period */
#define BENCH_PROBES 64 /* head probes in flight (rayfleet side) */
#define BENCH_RAW_INFLIGHT FLEET_INFLIGHT /* raw client's requests in flight */
#define BENCH_POLL_WAIT_MS 250 /* raw: poll period before the job runs / before healthy */
#define BENCH_POLL_END_MS 100 /* raw: poll period once the scripted end is due */
#define BENCH_RAW_WRITES 25 /* raw writes per RayJob besides its create */
#define BENCH_PREFIX "rj" /* RayJob names: rj-NNNNNN */
#define BENCH_RJ_PATH "/apis/ray.io/v1/namespaces/" FLEET_NS "/rayjobs"
#define BENCH_RC_PATH "/apis/ray.io/v1/namespaces/" FLEET_NS "/rayclusters"

/* What one side measured. */
typedef struct {
    double all_s; /* first create sent -> last Complete answered; < 0: not all Complete */
    long complete; /* RayJobs Complete at the end */
    long failed; /* RayJobs Failed at the end (rayfleet: observed.db) */
    double p50_ms, p99_ms; /* Ray job end -> Complete status answered */
    size_t lat_n; /* RayJobs with both instants */
    double writes_per_rj; /* writes per RayJob (creates excluded) */
    double gets_per_rj; /* raw: dashboard GETs per RayJob */
    double jd50_ms, jd99_ms; /* rayfleet: Ray job end -> its submitter Job's last change observed */
    size_t agree, checked; /* rayfleet: end instants whose second is status.rayJobInfo.endTime's */
    fleet_split_t peak; /* peak RSS per process kind, CPU seconds during the run */
    long long rss_self; /* raw: this process's peak VmRSS */
    double cpu_self; /* raw: its CPU seconds */
} result_t;

/* Index of a name `<prefix>-NNNNNN...`, or -1. */
static long s_index(const char *name, size_t n)
{
    size_t pl = strlen(BENCH_PREFIX);
    if (!name || strncmp(name, BENCH_PREFIX "-", pl + 1) != 0)
        return -1;
    char *end = NULL;
    long i = strtol(name + pl + 1, &end, 10);
    return end != name + pl + 1 && i >= 0 && (size_t)i < n ? i : -1;
}

/* Fills r->p50/p99 from end[i] and done[i] (0: unknown). */
static void s_latency(const int64_t *end, const int64_t *done, size_t n, result_t *r)
{
    int64_t *d = calloc(n ? n : 1, sizeof(*d));
    size_t m = 0;
    for (size_t i = 0; d && i < n; i++)
        if (end[i] > 0 && done[i] > 0)
            d[m++] = done[i] - end[i];
    r->lat_n = m;
    bench_pcts(d, m, &r->p50_ms, &r->p99_ms);
    free(d);
}

/* The RayJob template: ray-cluster.sample.yaml's spec (as fleet.h loaded it, small requests) with
 * its worker groups at 0 replicas as rayClusterSpec. */
static json_t *s_template(fleet_t *f, int sleep_s)
{
    json_t *spec = json_deep_copy(json_object_get(f->cr, "spec"));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(spec, "workerGroupSpecs"), i, g)
    {
        json_object_set_new(g, "replicas", json_integer(0));
        json_object_set_new(g, "minReplicas", json_integer(0));
    }
    char ep[96];
    snprintf(ep, sizeof(ep), "python x.py FAKE:sleep=%d", sleep_s);
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:b, s:i, s:o}}", "apiVersion",
                     "ray.io/v1", "kind", "RayJob", "metadata", "name", "x", "namespace", FLEET_NS,
                     "spec", "entrypoint", ep, "submissionMode", "K8sJobMode",
                     "shutdownAfterJobFinishes", 1, "ttlSecondsAfterFinished", 0, "rayClusterSpec",
                     spec);
}

/* ---- rayfleet side ------------------------------------------------------------------------- */

typedef struct probe probe_t;

typedef struct {
    fleet_t *f; /* the fleet */
    size_t n; /* RayJobs */
    int sleep_s; /* scripted job seconds */
    double next; /* next sample time */
    long complete; /* RayJobs Complete in observed.db */
    long rj_failed; /* RayJobs Failed in observed.db (terminal too) */
    fleet_split_t peak; /* peak RSS per process kind */
    uint8_t *probed; /* per RayJob: 0 not asked, 1 in flight, 2 answered, 3 failed */
    int64_t *end_ms; /* per RayJob: the head's end instant (0: unknown) */
    int inflight; /* probes in flight */
    size_t failed; /* probes that got no job */
} rfside_t;

struct probe {
    rfside_t *s; /* the side */
    size_t i; /* the RayJob */
    char url[512]; /* request URL */
};

/* A head's answer to GET /api/jobs/<id>: the end instant (see the file comment). */
static void s_probe_done(http_client_t *client, http_response_t *resp, void *arg)
{
    probe_t *p = arg;
    rfside_t *s = p->s;
    s->inflight--;
    json_t *j = resp->status == 200 ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    json_t *et = json_object_get(j, "end_time"), *st = json_object_get(j, "start_time");
    if (json_is_integer(et)) {
        s->end_ms[p->i] = json_integer_value(et);
        s->probed[p->i] = 2;
    } else if (json_is_integer(st)) {
        s->end_ms[p->i] =
            json_integer_value(st) + RAYHEAD_DEFAULT_JOB_PENDING_MS + (int64_t)s->sleep_s * 1000;
        s->probed[p->i] = 2;
    } else {
        s->probed[p->i] = 0; /* asked too early (job not there yet): again next sample */
        if (resp->status != 404)
            s->probed[p->i] = 3, s->failed++;
    }
    json_decref(j);
    free(p);
}

/* Asks the heads of RayJobs observed Running that were not asked yet. The scan reads only names
 * (no JSON is parsed for the thousands of rows already asked); the jobId and dashboardURL are
 * extracted for the few rows asked now, by primary key: the instrument must not take the CPU the
 * measured processes need. */
static void s_probe(rfside_t *s, sqlite3 *db)
{
    sqlite3_stmt *st = NULL, *one = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM observed_objects WHERE cluster = '" FLEET_CLUSTER
                           "' AND kind = 'RayJob' AND phase = 'Running'",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            db,
            "SELECT json_extract(json, '$.status.jobId'), "
            "json_extract(json, '$.status.dashboardURL') FROM observed_objects "
            "WHERE cluster = ?1 AND kind = 'RayJob' AND namespace = ?2 AND name = ?3",
            -1, &one, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        sqlite3_finalize(one);
        return;
    }
    while (sqlite3_step(st) == SQLITE_ROW && s->inflight < BENCH_PROBES) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        long i = s_index(name, s->n);
        if (i < 0 || s->probed[i])
            continue;
        sqlite3_reset(one);
        sqlite3_bind_text(one, 1, FLEET_CLUSTER, -1, SQLITE_STATIC);
        sqlite3_bind_text(one, 2, FLEET_NS, -1, SQLITE_STATIC);
        sqlite3_bind_text(one, 3, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(one) != SQLITE_ROW)
            continue;
        const char *id = (const char *)sqlite3_column_text(one, 0);
        const char *url = (const char *)sqlite3_column_text(one, 1);
        if (!id || !url)
            continue;
        probe_t *p = calloc(1, sizeof(*p));
        if (!p)
            break;
        p->s = s;
        p->i = (size_t)i;
        snprintf(p->url, sizeof(p->url),
                 "%s/api/v1/namespaces/%s/services/%.*s:8265/proxy/api/jobs/%s", s->f->base,
                 FLEET_NS, (int)strcspn(url, "."), url, id);
        http_header_t h[] = {{"Accept", "application/json"}};
        http_request_t req = {.method = "GET",
                              .url = p->url,
                              .headers = h,
                              .n_headers = 1,
                              .on_done = s_probe_done,
                              .arg = p};
        s->probed[i] = 1;
        s->inflight++;
        if (http_request(s->f->http, &req) < 0) {
            s->probed[i] = 0;
            s->inflight--;
            free(p);
        }
    }
    sqlite3_finalize(st);
    sqlite3_finalize(one);
}

/* Every BENCH_SAMPLE_S: RSS peaks, the Complete count, head probes. */
static void s_sample(void *arg)
{
    rfside_t *s = arg;
    double now = fleet_now();
    if (now < s->next)
        return;
    s->next = now + BENCH_SAMPLE_S;
    fleet_split_t sp;
    fleet_usage_split(s->f, &sp);
    bench_peak(&s->peak, &sp);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/observed.db", s->f->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT count(phase = 'Complete' OR NULL), count(phase = 'Failed' "
                               "OR NULL) FROM observed_objects WHERE cluster = '" FLEET_CLUSTER
                               "' AND kind = 'RayJob' AND name "
                               "LIKE '" BENCH_PREFIX "-%'",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            s->complete = (long)sqlite3_column_int64(st, 0);
            s->rj_failed = (long)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        s_probe(s, db);
    }
    sqlite3_close(db);
}

/* Reads the audit: Complete instants per RayJob (submitter.db) and the write count of both
 * databases for the RayJobs and their clusters. Returns 0 or -1. */
static int s_audit(fleet_t *f, size_t n, int64_t *done, size_t *writes)
{
    static const char *const dbs[] = {"submitter.db", "scheduler-0.db"};
    *writes = 0;
    for (size_t k = 0; k < 2; k++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", f->dir, dbs[k]);
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            sqlite3_close(db);
            return -1;
        }
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(
                db, "SELECT count(*) FROM audit WHERE cause_key LIKE '%/" BENCH_PREFIX "-%'", -1,
                &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            *writes += (size_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (k == 0 &&
            sqlite3_prepare_v2(db,
                               "SELECT target_name, min(time_ms) FROM audit WHERE verb = 'status' "
                               "AND target_kind = 'RayJob' AND result_status BETWEEN 200 AND 299 "
                               "AND request_summary LIKE '%\"jobDeploymentStatus\":\"Complete\"%' "
                               "GROUP BY target_name",
                               -1, &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW) {
                long i = s_index((const char *)sqlite3_column_text(st, 0), n);
                if (i >= 0)
                    done[i] = sqlite3_column_int64(st, 1);
            }
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    return 0;
}

/* From observed.db at the end: when the watcher saw each submitter Job's last change (its
 * completion: with ttl 0 only the cluster is deleted) into jobdone[], and how many end instants
 * of end_ms[] fall in the second status.rayJobInfo.endTime says (the probe's cross-check). */
static void s_observed_end(fleet_t *f, size_t n, const int64_t *end_ms, int64_t *jobdone,
                           result_t *r)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/observed.db", f->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT kind, name, updated_ms, json_extract(json, "
                           "'$.status.rayJobInfo.endTime') FROM observed_objects WHERE kind IN "
                           "('Job', 'RayJob') AND name LIKE '" BENCH_PREFIX "-%'",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *kind = (const char *)sqlite3_column_text(st, 0);
            long i = s_index((const char *)sqlite3_column_text(st, 1), n);
            if (i < 0 || !kind)
                continue;
            if (strcmp(kind, "Job") == 0) {
                jobdone[i] = sqlite3_column_int64(st, 2);
                continue;
            }
            const char *et = (const char *)sqlite3_column_text(st, 3);
            int64_t sec = 0;
            if (et && end_ms[i] > 0 && rftime_parse_sec(et, &sec) == 0) {
                r->checked++;
                r->agree += end_ms[i] / 1000 == sec;
            }
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The rayfleet run. Returns 0 or -1. */
static int s_rayfleet(size_t n, int sleep_s, int conc, int nodes, double max_s, bool keep,
                      result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->all_s = -1;
    fleet_t f = {0};
    fleet_opts_t o = {.nodes = nodes,
                      .latency_ms = 0,
                      .replicas = 1,
                      .lease_ms = 5000,
                      .qps = BENCH_QPS,
                      .concurrency = conc,
                      .log_level = "warn",
                      .submitter = true};
    rfside_t s = {.f = &f, .n = n, .sleep_s = sleep_s};
    int64_t *acked = calloc(n, sizeof(*acked)), *done = calloc(n, sizeof(*done));
    int64_t *jobdone = calloc(n, sizeof(*jobdone));
    s.probed = calloc(n, 1);
    s.end_ms = calloc(n, sizeof(*s.end_ms));
    json_t *tmpl = NULL;
    int rc = -1;
    if (!acked || !done || !jobdone || !s.probed || !s.end_ms || fleet_start(&f, &o) != 0 ||
        !(tmpl = s_template(&f, sleep_s))) {
        fprintf(stderr, "bench-rayjob: cannot start the fleet (state %s)\n", f.dir);
        goto out;
    }
    fleet_sleep_ms(1000); /* the services list+watch and take their shards */
    fleet_split_t sp0;
    fleet_usage_split(&f, &sp0);
    int64_t w0 = fleet_wall_ms();
    double t0 = fleet_now();
    size_t failed =
        fleet_create_objs(&f, BENCH_RJ_PATH, tmpl, BENCH_PREFIX, n, 0, acked, s_sample, &s, false);
    if (failed)
        fprintf(stderr, "bench-rayjob: %zu RayJob creates failed\n", failed);
    while (s.complete + s.rj_failed < (long)n && fleet_now() - t0 < max_s) {
        s.next = 0;
        s_sample(&s);
        double until = fleet_now() + BENCH_SAMPLE_S;
        while (fleet_now() < until)
            loop_run_once(f.loop, 20);
    }
    while (s.inflight > 0)
        loop_run_once(f.loop, 20);
    fleet_split_t sp1;
    fleet_usage_split(&f, &sp1);
    r->peak = s.peak;
    bench_cpu_delta(&sp0, &sp1, &r->peak);
    r->complete = s.complete;
    r->failed = s.rj_failed;
    fleet_sleep_ms(500); /* last audit batches committed */
    size_t writes = 0;
    if (s_audit(&f, n, done, &writes) == 0) {
        int64_t last = 0;
        size_t have = 0;
        for (size_t i = 0; i < n; i++)
            if (done[i] > 0) {
                have++;
                last = done[i] > last ? done[i] : last;
            }
        if (have > 0)
            r->all_s = (double)(last - w0) / 1000.0;
        r->complete = (long)have < r->complete ? (long)have : r->complete;
        r->writes_per_rj = (double)writes / (double)n;
        s_observed_end(&f, n, s.end_ms, jobdone, r);
        result_t jd = {0};
        s_latency(s.end_ms, jobdone, n, &jd);
        r->jd50_ms = jd.p50_ms;
        r->jd99_ms = jd.p99_ms;
        s_latency(s.end_ms, done, n, r);
        rc = 0;
    }
    if (s.failed)
        fprintf(stderr, "bench-rayjob: %zu head probes failed\n", s.failed);
out:
    json_decref(tmpl);
    fleet_stop(&f, keep);
    if (keep)
        fprintf(stderr, "bench-rayjob: rayfleet state kept in %s\n", f.dir);
    free(acked);
    free(done);
    free(jobdone);
    free(s.probed);
    free(s.end_ms);
    return rc;
}

/* ---- the raw baseline ---------------------------------------------------------------------- */

/* The steps of one raw RayJob, each one request. */
enum {
    R_CREATE,
    R_FINALIZER,
    R_ST1,
    R_RC,
    R_RC_EV,
    R_ST2,
    R_SVC,
    R_SVC_EV,
    R_POD,
    R_POD_EV,
    R_RCST1,
    R_RCST2,
    R_RCST3,
    R_RCST4,
    R_ST3,
    R_HEALTH, /* GET, repeated */
    R_JOB,
    R_JOB_EV,
    R_ST4,
    R_RJSVC,
    R_RJSVC_EV,
    R_ST5,
    R_POLL, /* GET, repeated */
    R_ST6,
    R_ST7,
    R_DONE,
    R_DEL,
    R_DEL_EV,
    R_END
};

typedef struct raw raw_t;

typedef struct {
    raw_t *w; /* the run */
    size_t i; /* index */
    int step; /* next step */
    bool seen_job, seen_running; /* the poll saw the job / it RUNNING */
    json_t *rj; /* the RayJob as created, status filled in locally */
    json_t *rc; /* the RayCluster as created, defaulted */
    char name[32], cname[48], jobid[48], svc[96]; /* names */
    int64_t start_ms, end_ms, done_ms; /* head's start/end, Complete answered */
} rawjob_t;

struct raw {
    fleet_t *f; /* the fleet (kubesim only) */
    json_t *tmpl; /* RayJob template */
    rawjob_t *jobs; /* per RayJob */
    size_t n, done; /* RayJobs, finished */
    bench_queue_t q; /* jobs due now or later */
    int inflight; /* requests in flight */
    size_t writes, gets, failed; /* counts */
    int64_t first_ms; /* wall ms of the first create sent */
    validate_gates_t gates; /* KubeRay's default gates */
};

typedef struct {
    rawjob_t *j; /* the job */
    char url[768]; /* URL */
    char *body; /* body (malloc'd) or NULL */
} rawreq_t;

static void s_ready(raw_t *w, size_t i)
{
    bench_ready(&w->q, i);
}

static void s_wait(raw_t *w, size_t i, int ms)
{
    bench_wait(&w->q, i, ms);
}

/* An Event about the job's RayJob (or its RayCluster), like the services' recorders. */
static char *s_event(rawjob_t *j, bool of_cluster, const char *reason)
{
    char name[96];
    snprintf(name, sizeof(name), "%s.raw%d", of_cluster ? j->cname : j->name, j->step);
    const json_t *obj = of_cluster ? j->rc : j->rj;
    return bench_event(name, of_cluster ? "RayCluster" : "RayJob", of_cluster ? j->cname : j->name,
                       jx_str(obj, "metadata.uid", ""), reason,
                       of_cluster ? "raycluster-controller" : "rayjob-controller");
}

/* A RayJob status merge patch with the job's ids and `dep`, `js` (NULL: left out). */
static char *s_status(rawjob_t *j, const char *dep, const char *js, bool info)
{
    json_t *st = json_pack("{s:s, s:s, s:s}", "jobId", j->jobid, "rayClusterName", j->cname,
                           "jobDeploymentStatus", dep);
    if (js)
        json_object_set_new(st, "jobStatus", json_string(js));
    if (info && j->start_ms > 0)
        json_object_set_new(st, "rayJobInfo",
                            json_pack("{s:I}", "startMs", (json_int_t)j->start_ms));
    const char *url = jx_str(j->rj, "status.dashboardURL", NULL);
    if (url)
        json_object_set_new(st, "dashboardURL", json_string(url));
    return bench_dump(json_pack("{s:o}", "status", st));
}

static void s_raw_done(http_client_t *client, http_response_t *resp, void *arg);

/* Sends job j's next request. */
static void s_raw_send(raw_t *w, rawjob_t *j)
{
    rawreq_t *q = calloc(1, sizeof(*q));
    if (!q) {
        w->failed++;
        j->step = R_END;
        w->done++;
        return;
    }
    q->j = j;
    const char *method = "POST", *ctype = "application/json";
    const char *b = w->f->base;
    buf_t err;
    buf_init(&err, 1024);
    bool write = true;
    switch (j->step) {
    case R_CREATE: {
        json_t *md = json_object_get(w->tmpl, "metadata");
        json_object_set_new(md, "name", json_string(j->name));
        q->body = json_dumps(w->tmpl, JSON_COMPACT);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RJ_PATH, b);
        write = false;
        if (w->first_ms == 0)
            w->first_ms = fleet_wall_ms();
        break;
    }
    case R_FINALIZER:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = bench_dump(
            json_pack("{s:{s:[s]}}", "metadata", "finalizers", "ray.io/rayjob-finalizer"));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RJ_PATH "/%s", b, j->name);
        break;
    case R_ST1:
    case R_ST2:
    case R_ST3:
    case R_ST4:
    case R_ST5:
    case R_ST6:
    case R_ST7:
    case R_DONE:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = s_status(j,
                           j->step == R_DONE                       ? "Complete"
                           : j->step >= R_ST4 && j->step != R_DONE ? "Running"
                                                                   : "Initializing",
                           j->step == R_DONE  ? "SUCCEEDED"
                           : j->step == R_ST7 ? "RUNNING"
                           : j->step == R_ST6 ? "PENDING"
                                              : NULL,
                           j->step >= R_ST6);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RJ_PATH "/%s/status", b, j->name);
        break;
    case R_RC:
        q->body = bench_dump(rayjob_cluster(j->rj, j->cname, &w->gates, &err));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RC_PATH, b);
        break;
    case R_RC_EV:
        q->body = s_event(j, false, "CreatedRayCluster");
        break;
    case R_SVC: {
        objbuild_opts_t oo = {0};
        q->body = bench_dump(objbuild_head_service(j->rc, &oo, &err));
        snprintf(q->url, sizeof(q->url), "%s/api/v1/namespaces/%s/services", b, FLEET_NS);
        break;
    }
    case R_SVC_EV:
        q->body = s_event(j, true, "CreatedService");
        break;
    case R_POD: {
        podbuild_opts_t po;
        podbuild_opts_init(&po);
        json_t *pod = NULL;
        q->body = podbuild_head(j->rc, &po, &pod, &err) == 0 ? bench_dump(pod) : NULL;
        snprintf(q->url, sizeof(q->url), "%s/api/v1/namespaces/%s/pods", b, FLEET_NS);
        break;
    }
    case R_POD_EV:
        q->body = s_event(j, true, "CreatedHeadPod");
        break;
    case R_RCST1:
    case R_RCST2:
    case R_RCST3:
    case R_RCST4:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = bench_dump(json_pack("{s:{s:s, s:i, s:i}}", "status", "state",
                                       j->step == R_RCST4 ? "ready" : "", "readyWorkerReplicas", 0,
                                       "observedGeneration", j->step - R_RCST1 + 1));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RC_PATH "/%s/status", b, j->cname);
        break;
    case R_HEALTH:
        method = "GET";
        write = false;
        snprintf(q->url, sizeof(q->url),
                 "%s/api/v1/namespaces/%s/services/%s:8265/proxy/api/gcs_healthz", b, FLEET_NS,
                 j->svc);
        break;
    case R_JOB:
        q->body = bench_dump(rayjob_submitter_job(j->rj, j->rc, &err));
        snprintf(q->url, sizeof(q->url), "%s/apis/batch/v1/namespaces/%s/jobs", b, FLEET_NS);
        break;
    case R_JOB_EV:
        q->body = s_event(j, false, "CreatedRayJobSubmitter");
        break;
    case R_RJSVC:
        q->body = bench_dump(rayjob_head_service(j->rj, j->rc, &err));
        snprintf(q->url, sizeof(q->url), "%s/api/v1/namespaces/%s/services", b, FLEET_NS);
        break;
    case R_RJSVC_EV:
        q->body = s_event(j, false, "CreatedService");
        break;
    case R_POLL:
        method = "GET";
        write = false;
        snprintf(q->url, sizeof(q->url),
                 "%s/api/v1/namespaces/%s/services/%s:8265/proxy/api/jobs/%s", b, FLEET_NS, j->svc,
                 j->jobid);
        break;
    case R_DEL:
        method = "DELETE";
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RC_PATH "/%s", b, j->cname);
        break;
    case R_DEL_EV:
        q->body = s_event(j, false, "DeletedRayCluster");
        break;
    default:
        break;
    }
    if (j->step == R_RC_EV || j->step == R_SVC_EV || j->step == R_POD_EV || j->step == R_JOB_EV ||
        j->step == R_RJSVC_EV || j->step == R_DEL_EV)
        snprintf(q->url, sizeof(q->url), "%s/api/v1/namespaces/%s/events", b, FLEET_NS);
    if (write)
        w->writes++;
    else if (strcmp(method, "GET") == 0)
        w->gets++;
    bool need_body = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
    if (need_body && !q->body) {
        if (w->failed++ == 0)
            fprintf(stderr, "bench-rayjob: raw %s step %d: cannot build: %s\n", j->name, j->step,
                    buf_str(&err));
        buf_free(&err);
        free(q);
        j->step = R_END;
        w->done++;
        return;
    }
    buf_free(&err);
    w->inflight++;
    if (bench_send(w->f->http, method, q->url, ctype, q->body, s_raw_done, q) < 0) {
        w->inflight--;
        w->failed++;
        free(q->body);
        free(q);
        s_wait(w, j->i, BENCH_POLL_WAIT_MS); /* the same step again */
    }
}

/* An answer: the job's next step (now, or after a wait). */
static void s_raw_done(http_client_t *client, http_response_t *resp, void *arg)
{
    rawreq_t *q = arg;
    rawjob_t *j = q->j;
    raw_t *w = j->w;
    w->inflight--;
    free(q->body);
    free(q);
    bool ok = !resp->err && resp->status >= 200 && resp->status < 300;
    json_t *body =
        ok && resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    int wait = 0;
    switch (j->step) {
    case R_CREATE:
        if (!body) {
            ok = false;
            break;
        }
        json_decref(j->rj);
        j->rj = json_incref(body);
        json_object_set_new(j->rj, "status",
                            json_pack("{s:s, s:s}", "jobId", j->jobid, "rayClusterName", j->cname));
        break;
    case R_RC: {
        if (!body) {
            ok = false;
            break;
        }
        json_decref(j->rc);
        j->rc = json_deep_copy(body);
        validate_apply_defaults(j->rc);
        char *svc = rayjob_head_service_name(j->rc);
        snprintf(j->svc, sizeof(j->svc), "%s", svc ? svc : "");
        free(svc);
        buf_t u;
        buf_init(&u, 512);
        if (rayjob_dashboard_url(j->rc, NULL, &u) == 0)
            json_object_set_new(json_object_get(j->rj, "status"), "dashboardURL",
                                json_string(buf_str(&u)));
        buf_free(&u);
        break;
    }
    case R_HEALTH:
        if (!ok || !strstr(resp->body.len ? buf_str(&resp->body) : "", "success")) {
            ok = true;
            wait = BENCH_POLL_WAIT_MS;
            j->step--; /* again */
        }
        break;
    case R_POLL: {
        const char *st = json_string_value(json_object_get(body, "status"));
        json_t *s0 = json_object_get(body, "start_time"), *e0 = json_object_get(body, "end_time");
        ok = true;
        if (json_is_integer(s0))
            j->start_ms = json_integer_value(s0);
        if (!st) {
            wait = BENCH_POLL_WAIT_MS;
            j->step--;
        } else if (!j->seen_job) {
            j->seen_job = true; /* next: R_ST6, then the poll again */
        } else if (strcmp(st, "RUNNING") == 0 && !j->seen_running) {
            j->seen_running = true;
            j->step = R_ST7 - 1; /* next: R_ST7 */
        } else if (strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0 ||
                   strcmp(st, "STOPPED") == 0) {
            j->end_ms = json_is_integer(e0) ? json_integer_value(e0) : fleet_wall_ms();
            j->step = R_DONE - 1;
        } else {
            /* PENDING / RUNNING: not before the scripted end is due */
            int64_t due = j->start_ms + RAYHEAD_DEFAULT_JOB_PENDING_MS + BENCH_SLEEP_S * 1000;
            int64_t left = j->start_ms > 0 && j->seen_running ? due - fleet_wall_ms() : 0;
            wait = left > BENCH_POLL_END_MS ? (int)left : BENCH_POLL_END_MS;
            if (!j->seen_running)
                wait = BENCH_POLL_WAIT_MS;
            j->step--;
        }
        break;
    }
    case R_ST6:
        j->step = R_POLL - 1; /* back to polling */
        break;
    case R_ST7:
        j->step = R_POLL - 1;
        break;
    case R_DONE:
        if (ok)
            j->done_ms = fleet_wall_ms();
        break;
    default:
        break;
    }
    json_decref(body);
    if (!ok) {
        if (w->failed++ < 3)
            fprintf(stderr, "bench-rayjob: raw %s step %d: HTTP %ld %.200s\n", j->name, j->step,
                    resp->status, resp->body.len ? buf_str(&resp->body) : err_str(resp->err));
        if (j->step == R_CREATE || j->step == R_RC) { /* nothing to go on with */
            j->step = R_END;
            w->done++;
            return;
        }
    }
    j->step++;
    if (j->step >= R_END) {
        w->done++;
        return;
    }
    if (wait > 0)
        s_wait(w, j->i, wait);
    else
        s_ready(w, j->i);
}

/* The raw run. Returns 0 or -1. */
static int s_raw(size_t n, int sleep_s, int nodes, double max_s, result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->all_s = -1;
    fleet_t f = {0};
    fleet_opts_t o = {.nodes = nodes, .lease_ms = 5000, .qps = BENCH_QPS, .log_level = "warn"};
    raw_t w = {.f = &f, .n = n};
    validate_gates_default(&w.gates);
    w.jobs = calloc(n, sizeof(*w.jobs));
    int qrc = bench_queue_init(&w.q, n);
    int64_t *end = calloc(n, sizeof(*end)), *done = calloc(n, sizeof(*done));
    int rc = -1;
    if (!w.jobs || qrc != 0 || !end || !done || fleet_start(&f, &o) != 0 ||
        !(w.tmpl = s_template(&f, sleep_s))) {
        fprintf(stderr, "bench-rayjob: cannot start kubesim for the raw baseline\n");
        goto out;
    }
    fleet_kill(&f.watcher, true);
    for (size_t i = 0; i < n; i++) {
        rawjob_t *j = &w.jobs[i];
        j->w = &w;
        j->i = i;
        snprintf(j->name, sizeof(j->name), BENCH_PREFIX "-%06zu", i);
        snprintf(j->cname, sizeof(j->cname), "%s-rawrc", j->name);
        snprintf(j->jobid, sizeof(j->jobid), "%s-rawjb", j->name);
        s_ready(&w, i);
    }
    fleet_split_t sp0, peak = {0};
    fleet_usage_split(&f, &sp0);
    double cpu0 = fleet_cpu(getpid()), t0 = fleet_now(), next = 0;
    long long rss_self = 0;
    while (w.done < n && fleet_now() - t0 < max_s) {
        bench_wake_due(&w.q);
        size_t i;
        while (w.inflight < BENCH_RAW_INFLIGHT && bench_next(&w.q, &i))
            s_raw_send(&w, &w.jobs[i]);
        loop_run_once(f.loop, 2);
        if (fleet_now() >= next) {
            next = fleet_now() + BENCH_SAMPLE_S;
            fleet_split_t sp;
            fleet_usage_split(&f, &sp);
            if (sp.rss_kubesim > peak.rss_kubesim)
                peak.rss_kubesim = sp.rss_kubesim;
            long long me = fleet_rss(getpid());
            rss_self = me > rss_self ? me : rss_self;
        }
    }
    while (w.inflight > 0)
        loop_run_once(f.loop, 20);
    fleet_split_t sp1;
    fleet_usage_split(&f, &sp1);
    r->peak = peak;
    r->peak.cpu_kubesim = sp1.cpu_kubesim - sp0.cpu_kubesim;
    r->cpu_self = fleet_cpu(getpid()) - cpu0;
    r->rss_self = rss_self;
    int64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        end[i] = w.jobs[i].end_ms;
        done[i] = w.jobs[i].done_ms;
        if (done[i] > 0) {
            r->complete++;
            last = done[i] > last ? done[i] : last;
        }
    }
    if (r->complete > 0)
        r->all_s = (double)(last - w.first_ms) / 1000.0;
    r->writes_per_rj = (double)w.writes / (double)n;
    r->gets_per_rj = (double)w.gets / (double)n;
    s_latency(end, done, n, r);
    if (w.failed)
        fprintf(stderr, "bench-rayjob: raw: %zu requests failed\n", w.failed);
    rc = 0;
out:
    fleet_stop(&f, false);
    for (size_t i = 0; w.jobs && i < n; i++) {
        json_decref(w.jobs[i].rj);
        json_decref(w.jobs[i].rc);
    }
    json_decref(w.tmpl);
    free(w.jobs);
    bench_queue_free(&w.q);
    free(end);
    free(done);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void s_row(const char *side, size_t n, const result_t *r, double raw_rate)
{
    char all[32];
    if (r->all_s > 0)
        snprintf(all, sizeof(all), "%.1f", r->all_s);
    else
        snprintf(all, sizeof(all), "-");
    double rate = r->all_s > 0 ? (double)r->complete / r->all_s : 0;
    char ratio[16] = "-";
    if (raw_rate > 0)
        snprintf(ratio, sizeof(ratio), "%.2f", rate / raw_rate);
    printf("%-8s %6zu %8ld %6ld %9s %8.1f %7s %8.0f %8.0f %9.1f %8.1f\n", side, n, r->complete,
           r->failed, all, rate, ratio, r->p50_ms, r->p99_ms, r->writes_per_rj, r->gets_per_rj);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t n = BENCH_RJ_DEFAULT;
    int conc = BENCH_CONC_DEFAULT;
    bool keep = false, skip_raw = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--rayjobs") == 0 && v) {
            n = (size_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--concurrency") == 0 && v) {
            long c = strtol(v, NULL, 10);
            conc = c > 0 && c <= 10000 ? (int)c : -1;
            i++;
        } else if (strcmp(a, "--skip-raw") == 0) {
            skip_raw = true;
        } else if (strcmp(a, "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr, "usage: bench-rayjob [--rayjobs N] [--concurrency C] [--skip-raw] "
                            "[--keep]\n");
            return 2;
        }
    }
    if (n == 0 || n > BENCH_RJ_MAX || conc < 0) {
        fprintf(stderr, "bench-rayjob: %s\n",
                conc < 0 ? "--concurrency: must be an integer in 1..10000"
                         : "--rayjobs: must be an integer in 1..100000");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("bench-rayjob", LOG_ERROR, STDERR_FILENO);
    int nodes = (int)(n / 4 + 16); /* a head (100m) and a submitter pod (500m) per RayJob */
    double max_s = 300.0 + (double)n * 0.2;
    printf("bench-rayjob: %zu RayJobs (head-only clusters, `python x.py FAKE:sleep=%d`, "
           "K8sJobMode, shutdownAfterJobFinishes, ttl 0), created unpaced (%d in flight), kubesim "
           "%d nodes; rayfleet: 1 scheduler + the submitter, --concurrency %d\n",
           n, BENCH_SLEEP_S, FLEET_INFLIGHT, nodes, conc);
    fflush(stdout);
    result_t raw = {.all_s = -1}, rf;
    int failures = 0;
    const double mb = 1048576.0;
    printf("%-8s %6s %8s %6s %9s %8s %7s %8s %8s %9s %8s\n", "side", "N", "complete", "failed",
           "all_s", "rj/s", "ratio", "p50_ms", "p99_ms", "writes/rj", "gets/rj");
    fflush(stdout);
    if (!skip_raw) {
        if (s_raw(n, BENCH_SLEEP_S, nodes, max_s, &raw) != 0)
            failures++;
        s_row("raw", n, &raw, 0);
        printf("raw      client %.1f s CPU %.0f MB; kubesim %.1f s CPU %.0f MB; end->Complete "
               "samples %zu\n",
               raw.cpu_self, (double)raw.rss_self / mb, raw.peak.cpu_kubesim,
               (double)raw.peak.rss_kubesim / mb, raw.lat_n);
        fflush(stdout);
    }
    if (s_rayfleet(n, BENCH_SLEEP_S, conc, nodes, max_s, keep, &rf) != 0)
        failures++;
    double raw_rate = raw.all_s > 0 ? (double)raw.complete / raw.all_s : 0;
    s_row("rayfleet", n, &rf, raw_rate);
    printf("rayfleet bus %.1f s %.0f MB, watcher %.1f s %.0f MB, scheduler %.1f s %.0f MB, "
           "submitter %.1f s %.0f MB (CPU s, peak RSS); kubesim %.1f s CPU %.0f MB; "
           "end->Complete samples %zu\n",
           rf.peak.cpu_bus, (double)rf.peak.rss_bus / mb, rf.peak.cpu_watcher,
           (double)rf.peak.rss_watcher / mb, rf.peak.cpu_sched, (double)rf.peak.rss_sched / mb,
           rf.peak.cpu_submitter, (double)rf.peak.rss_submitter / mb, rf.peak.cpu_kubesim,
           (double)rf.peak.rss_kubesim / mb, rf.lat_n);
    printf("rayfleet Ray job end -> submitter Job's completion observed (watcher) p50 %.0f ms p99 "
           "%.0f ms; end instants in the second of status.rayJobInfo.endTime: %zu of %zu\n",
           rf.jd50_ms, rf.jd99_ms, rf.agree, rf.checked);
    printf("complete/failed: RayJobs at Complete / Failed when every one was terminal (or the "
           "wait ended); all_s: first create sent -> last Complete status write answered; rj/s = "
           "complete / all_s; "
           "ratio = rayfleet rj/s / raw rj/s; p50/p99: the head's Ray job end_time (ms) -> the "
           "Complete status write answered (rayfleet: submitter.db audit time_ms); writes/rj: "
           "API writes per RayJob besides its create (rayfleet: audit rows of submitter + "
           "scheduler); gets/rj: raw's dashboard GETs through the proxy.\n");
    failures += rf.complete < (long)n || (!skip_raw && raw.complete < (long)n);
    return failures ? 1 : 0;
}
