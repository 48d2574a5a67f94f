/*
 * bench-rayservice: issue 13's RayService benchmark. N RayServices to Ready, a steady window, then
 * an image change on all of them (the upgrade wave) with Serve traffic flowing, against rayfleet
 * and against a raw client doing KubeRay's API writes and dashboard calls, in one run.
 *
 * The RayService: ray-service.sample.yaml (two Serve apps, /fruit and /calc) read in place, its
 * worker groups at 0 replicas, small requests, spec.rayClusterDeletionDelaySeconds
 * --delete-delay (default 10 s; KubeRay's default is 60 s). The wave changes the head container's
 * image (JSON patch), which asks for a new RayCluster (zero-downtime upgrade, NewCluster).
 *
 * rayfleet side: fleet.h's child processes (kubesim, bus, watcher, one rayfleet-scheduler,
 * rayfleet-serve-upgrade with --use-kubernetes-proxy=true and --steady-poll, default its own 10 s).
 * Raw side: a fresh kubesim without rayfleet (its watcher killed); this process, on its loop with
 * common/http and 32 requests in flight, plays per RayService what KubeRay's reconcilers do
 * (builders of the KubeRay model: rayservice_cluster, objbuild_head_service, podbuild_head,
 * rayservice_head_service, rayservice_serve_service, rayservice_serve_body):
 *   finalizer; status (pending cluster named); the RayCluster + Event; the cluster's head Service
 *   and head pod + 2 Events; 4 RayCluster status writes; GET /api/gcs_healthz through the proxy
 *   every 250 ms until healthy (KubeRay waits for HeadPodReady from its informer); PUT
 *   /api/serve/applications/ + Event; every 2 s (KubeRay's requeue) the head pod's Serve proxy
 *   GET /-/healthz and GET /api/serve/applications/ until every app is RUNNING; status (app
 *   statuses); the head pod labelled ray.io/serve=true; the RayService's head and serve Services
 *   + 2 Events; status (promotion: active = the cluster); the serve Service's endpoints awaited
 *   (GET /-/healthz through it every 250 ms, KubeRay's EndpointSlice informer); status (Ready).
 *   Then every 2 s /-/healthz + GET applications on the active cluster (KubeRay's fixed loop).
 *   Upgrade: status (pending named); the new RayCluster, its head Service and pod, Events, 4
 *   RayCluster status writes, health wait, PUT + Event, polls of the new cluster until RUNNING
 *   (KubeRay polls the active one too; the raw client does not, so it makes fewer calls then),
 *   status, serve label;
 *   the head and serve Services' selectors patched to the new cluster; status (promotion); the old
 *   RayCluster deleted + Event once --delete-delay has passed. 21 writes to Ready, 19 per upgrade.
 *
 * Measured per side (wall clock):
 *   ready_s     first create sent -> the last RayService Ready (raw: its Ready status write
 *               answered; rayfleet: the watcher's observed.db row of the RayService showing
 *               serviceStatus Running, its updated_ms, sampled every 0.2 s).
 *   steady      over --steady S seconds (default 60) once every RayService is Ready and a
 *               settling period has passed: requests the simulated heads answered (kubesim's GET
 *               /kubesim/ray-requests): dashboard (8265) + Serve proxy control (/-/healthz) per
 *               RayService per minute, and the CPU seconds of each process in the window.
 *   wave_s      first image patch sent -> the last RayService switched to its new cluster (raw: its
 *               promotion status write answered; rayfleet: observed.db row with the new
 *               activeServiceStatus.rayClusterName and no pending cluster).
 *   traffic     during the wave (from the first patch until every old cluster is deleted, + 2 s):
 *               GET /fruit through kubesim's service proxy to the serve Services of a sample of
 *               --traffic-sample RayServices (default 50), round-robin, --traffic-rate per second
 *               (default 100), at most 8 in flight, on a client of its own; 2xx, non-2xx and
 * transport errors counted. writes/rs   API writes (rayfleet: audit rows of serve-upgrade +
 * scheduler for the RayService and its clusters, Serve pushes separate) per RayService, creates and
 * the bench's patches not counted. RSS / CPU   peak VmRSS and CPU seconds of each process over the
 * whole side.
 *
 * When no more RayServices become Ready (or switch) for BENCH_STALL_S (60 s), the side goes on
 * with those that did (the table shows how many); such a run exits 1.
 *
 * Never a timed assertion: the tables are printed whatever they show; exit 1 only when a side
 * could not run or did not finish.
 *
 *   bench-rayservice [--rayservices N] [--steady S] [--steady-poll DUR] [--delete-delay S]
 *                    [--traffic-sample K] [--traffic-rate R] [--max-wait S] [--skip-raw] [--keep]
 * (--max-wait: the longest wait for all Ready, then for the wave; default 300 s + 0.3 s per
 * RayService)
 */
#include "benchlib.h"

#include "log.h"
#include "objbuild.h"
#include "podbuild.h"
#include "rayjob.h"
#include "rayservice.h"
#include "rsstate.h"
#include "validate.h"

#define BENCH_RS_DEFAULT 200 /* RayServices per run */
#define BENCH_RS_MAX 20000 /* most RayServices per run */
#define BENCH_STEADY_S 60 /* steady window */
#define BENCH_SETTLE_S 12 /* after all Ready, before the steady window */
#define BENCH_DELETE_DELAY_S 10 /* spec.rayClusterDeletionDelaySeconds */
#define BENCH_TRAFFIC_SAMPLE 50 /* RayServices the traffic goes to */
#define BENCH_TRAFFIC_INFLIGHT 8 /* traffic requests in flight, at most */
#define BENCH_TRAFFIC_RATE 100 /* traffic requests per second */
#define BENCH_STALL_S 60 /* no progress this long: go on with the RayServices that made it */
#define BENCH_CONC 64 /* the services' --concurrency */
#define BENCH_QPS 100000 /* their client qps: no client-side limit */
#define BENCH_SAMPLE_S 0.2 /* observed.db / RSS sampling period */
#define BENCH_RAW_INFLIGHT FLEET_INFLIGHT /* raw client's requests in flight */
#define BENCH_WAIT_MS 250 /* raw: poll period of the health and endpoint waits */
#define BENCH_LOOP_MS RS_POLL_BUSY_MS /* raw: KubeRay's requeue (2 s) */
#define BENCH_NEW_IMAGE "rayproject/ray:2.52.1" /* the wave's head image */
#define BENCH_PREFIX "rs" /* RayService names: rs-NNNNNN */
#define BENCH_RS_PATH "/apis/ray.io/v1/namespaces/" FLEET_NS "/rayservices"
#define BENCH_RC_PATH "/apis/ray.io/v1/namespaces/" FLEET_NS "/rayclusters"
#define BENCH_CORE "/api/v1/namespaces/" FLEET_NS

/* Requests the heads answered (GET /kubesim/ray-requests). */
typedef struct {
    long long dashboard, agent, control, traffic;
} reqs_t;

/* What one side measured. */
typedef struct {
    long ready; /* RayServices Ready */
    double ready_s; /* first create -> last Ready; < 0: not all */
    double rd50_ms, rd99_ms; /* per RayService: create acknowledged -> Ready */
    double steady_s; /* the window's length */
    reqs_t steady; /* requests answered in it */
    fleet_split_t steady_cpu; /* CPU seconds in it */
    double steady_cpu_self; /* raw client's CPU seconds in it */
    long upgraded; /* RayServices switched to the new cluster */
    double wave_s; /* first patch -> last switched; < 0: not all */
    double up50_ms, up99_ms; /* per RayService: its patch acknowledged -> switched */
    long old_left; /* old clusters not deleted at the end */
    long t_ok, t_bad, t_err; /* traffic: 2xx, other status, transport error */
    long t_new; /* traffic answered by a new cluster */
    double writes_per_rs, pushes_per_rs, gets_per_rs; /* per RayService, whole run */
    fleet_split_t peak; /* peak RSS per process kind, CPU seconds over the side */
    long long rss_self; /* raw: this process's peak VmRSS */
    double cpu_self; /* raw: its CPU seconds */
} result_t;

/* Index of a name `rs-NNNNNN`, or -1. */
static long s_index(const char *name, size_t n)
{
    size_t pl = strlen(BENCH_PREFIX);
    if (!name || strncmp(name, BENCH_PREFIX "-", pl + 1) != 0)
        return -1;
    char *end = NULL;
    long i = strtol(name + pl + 1, &end, 10);
    return end != name + pl + 1 && i >= 0 && (size_t)i < n && (*end == '\0' || *end == '-') ? i
                                                                                            : -1;
}

/* Per-RayService latencies from instants a[i] -> b[i] (0: unknown). */
static void s_lat(const int64_t *a, const int64_t *b, size_t n, double *p50, double *p99)
{
    int64_t *d = calloc(n ? n : 1, sizeof(*d));
    size_t m = 0;
    for (size_t i = 0; d && i < n; i++)
        if (a[i] > 0 && b[i] > 0)
            d[m++] = b[i] - a[i];
    bench_pcts(d, m, p50, p99);
    free(d);
}

/* The RayService template: ray-service.sample.yaml, worker groups at 0, small requests, the
 * deletion delay. NULL when the sample cannot be read. */
static json_t *s_template(fleet_t *f, int delete_delay_s)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/kuberay/samples/ray-service.sample.yaml", f->shared);
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 1024);
    int rc = yaml_load_file(path, FLEET_FILE_MAX, &docs, &err);
    json_t *rs = rc == 0 ? json_deep_copy(json_array_get(docs, 0)) : NULL;
    json_decref(docs);
    if (!json_is_object(rs)) {
        fprintf(stderr, "bench-rayservice: cannot load %s: %s\n", path, buf_str(&err));
        buf_free(&err);
        json_decref(rs);
        return NULL;
    }
    buf_free(&err);
    json_t *spec = json_object_get(rs, "spec");
    json_t *cc = json_object_get(spec, "rayClusterConfig");
    fleet_small_resources(jx_get(cc, "headGroupSpec.template"));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(cc, "workerGroupSpecs"), i, g)
    {
        json_object_set_new(g, "replicas", json_integer(0));
        json_object_set_new(g, "minReplicas", json_integer(0));
        fleet_small_resources(json_object_get(g, "template"));
    }
    json_object_set_new(spec, "rayClusterDeletionDelaySeconds", json_integer(delete_delay_s));
    return rs;
}

/* One blocking GET of kubesim's request counters. Returns 0 or -1. */
static int s_reqs(fleet_t *f, reqs_t *r)
{
    json_t *b = NULL;
    long st = fleet_call(f, "GET", "/kubesim/ray-requests", "application/json", NULL, 0, &b);
    memset(r, 0, sizeof(*r));
    if (st == 200) {
        r->dashboard = (long long)jx_int(b, "dashboard", 0);
        r->agent = (long long)jx_int(b, "agent", 0);
        r->control = (long long)jx_int(b, "serveControl", 0);
        r->traffic = (long long)jx_int(b, "serveTraffic", 0);
    }
    json_decref(b);
    return st == 200 ? 0 : -1;
}

/* ---- the traffic client -------------------------------------------------------------------- */

typedef struct {
    fleet_t *f;
    http_client_t *http; /* a client of its own: not queued behind the controllers' calls */
    size_t n, k; /* RayServices, sample size */
    size_t next; /* round-robin position */
    int inflight;
    bool on;
    double rate; /* requests per second */
    double t0; /* monotonic: when it was turned on */
    long ok, bad, err, answered_new;
    char (*old)[64]; /* per RayService: its cluster before the wave */
} traffic_t;

typedef struct {
    traffic_t *t;
    size_t i; /* the RayService */
    char url[512];
} treq_t;

static void s_traffic_done(http_client_t *client, http_response_t *resp, void *arg)
{
    (void)client;
    treq_t *q = arg;
    traffic_t *t = q->t;
    t->inflight--;
    if (resp->err)
        t->err++;
    else if (resp->status >= 200 && resp->status < 300)
        t->ok++;
    else
        t->bad++;
    if (!resp->err && resp->status == 200 && resp->body.len) {
        char tag[96];
        snprintf(tag, sizeof(tag), "on cluster '%s'", t->old[q->i]);
        t->answered_new += strstr(buf_str(&resp->body), tag) == NULL;
    }
    free(q);
}

/* Keeps BENCH_TRAFFIC_INFLIGHT requests going while t->on. */
static void s_traffic_pump(traffic_t *t)
{
    while (t->on && t->inflight < BENCH_TRAFFIC_INFLIGHT &&
           (double)t->next < t->rate * (fleet_now() - t->t0)) {
        treq_t *q = calloc(1, sizeof(*q));
        if (!q)
            return;
        q->t = t;
        size_t i = (t->next++ % t->k) * t->n / t->k; /* spread over the RayServices */
        q->i = i;
        snprintf(q->url, sizeof(q->url),
                 "%s" BENCH_CORE "/services/" BENCH_PREFIX "-%06zu-serve-svc:8000/proxy/fruit",
                 t->f->base, i);
        http_header_t h[] = {{"Accept", "text/plain"}};
        http_request_t req = {.method = "GET",
                              .url = q->url,
                              .headers = h,
                              .n_headers = 1,
                              .timeout_ms = 10000,
                              .on_done = s_traffic_done,
                              .arg = q};
        t->inflight++;
        if (http_request(t->http, &req) < 0) {
            t->inflight--;
            t->err++;
            free(q);
            return;
        }
    }
}

/* ---- patching every RayService's image ----------------------------------------------------- */

typedef struct {
    fleet_t *f;
    size_t n, started, done, failed;
    int inflight;
    int64_t *acked; /* per RayService: wall ms of the 200 */
} patcher_t;

typedef struct {
    patcher_t *p;
    size_t i;
    char url[256];
} preq_t;

static const char s_image_patch[] =
    "[{\"op\":\"replace\",\"path\":\"/spec/rayClusterConfig/headGroupSpec/template/spec/"
    "containers/0/image\",\"value\":\"" BENCH_NEW_IMAGE "\"}]";

static void s_patch_done(http_client_t *client, http_response_t *resp, void *arg)
{
    (void)client;
    preq_t *q = arg;
    patcher_t *p = q->p;
    p->inflight--;
    p->done++;
    if (resp->err || resp->status != 200) {
        if (p->failed++ == 0)
            fprintf(stderr, "bench-rayservice: patch %s: HTTP %ld %.200s\n", q->url, resp->status,
                    resp->body.len ? buf_str(&resp->body) : err_str(resp->err));
    } else {
        p->acked[q->i] = fleet_wall_ms();
    }
    free(q);
}

/* Sends the next patches (FLEET_INFLIGHT in flight). */
static void s_patch_pump(patcher_t *p)
{
    while (p->started < p->n && p->inflight < FLEET_INFLIGHT) {
        preq_t *q = calloc(1, sizeof(*q));
        if (!q)
            return;
        q->p = p;
        q->i = p->started++;
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RS_PATH "/" BENCH_PREFIX "-%06zu", p->f->base,
                 q->i);
        http_header_t h[] = {{"Content-Type", "application/json-patch+json"},
                             {"Accept", "application/json"}};
        http_request_t req = {.method = "PATCH",
                              .url = q->url,
                              .headers = h,
                              .n_headers = 2,
                              .body = s_image_patch,
                              .body_len = sizeof(s_image_patch) - 1,
                              .body_borrowed = true,
                              .on_done = s_patch_done,
                              .arg = q};
        p->inflight++;
        if (http_request(p->f->http, &req) < 0) {
            p->inflight--;
            p->done++;
            p->failed++;
            free(q);
        }
    }
}

/* ---- the raw baseline ---------------------------------------------------------------------- */

/* The steps of one raw RayService, each one request. */
enum {
    S_CREATE,
    S_FINALIZER,
    S_ST_PENDING, /* status: the pending cluster named */
    S_RC,
    S_RC_EV,
    S_SVC,
    S_SVC_EV,
    S_POD,
    S_POD_EV,
    S_RCST1,
    S_RCST2,
    S_RCST3,
    S_RCST4,
    S_HEALTH, /* GET gcs_healthz, repeated */
    S_PUT, /* PUT serve applications */
    S_PUT_EV,
    S_HZ, /* GET the head pod's /-/healthz */
    S_APPS, /* GET serve applications, repeated with S_HZ every 2 s */
    S_ST_APPS, /* status: app statuses */
    S_LABEL, /* head pod ray.io/serve=true */
    S_HSVC, /* initial: the RayService's head Service */
    S_HSVC_EV,
    S_SSVC, /* initial: its serve Service */
    S_SSVC_EV,
    S_PH, /* upgrade: head Service selector -> new cluster */
    S_PS, /* upgrade: serve Service selector -> new cluster */
    S_PROMOTE, /* status: active = the cluster, no pending */
    S_EPWAIT, /* initial: GET /-/healthz through the serve Service until 200 */
    S_READY, /* initial: status Ready */
    S_IDLE_HZ, /* steady: /-/healthz, then applications, every 2 s */
    S_IDLE_APPS,
    S_DEL, /* upgrade: old cluster deleted after the delay */
    S_DEL_EV,
    S_END
};

typedef struct raw raw_t;

typedef struct {
    raw_t *w; /* the run */
    size_t i; /* index */
    int step; /* next step */
    int gen; /* 0: the first cluster, 1: the upgrade's */
    json_t *rs; /* the RayService as created (its spec changed locally by the wave) */
    json_t *rc[2]; /* the clusters as created, defaulted */
    char name[32], cname[2][48], hsvc[2][128], pod[2][160], ssvc[128]; /* names */
    bool upgrading, deleted; /* in the upgrade / its old cluster deleted */
    double del_due; /* monotonic: when the old cluster may go */
    int64_t ready_ms, upgraded_ms; /* Ready / promotion answered */
} rawrs_t;

struct raw {
    fleet_t *f; /* the fleet (kubesim only) */
    json_t *tmpl; /* RayService template */
    rawrs_t *rs; /* per RayService */
    size_t n;
    bench_queue_t q; /* RayServices due now or later */
    int inflight; /* requests in flight */
    size_t writes, gets, pushes, failed; /* counts */
    int64_t first_ms; /* wall ms of the first create sent */
    int64_t *acked; /* per RayService: create answered */
    const int64_t *patched; /* per RayService: its image patch answered (the wave), or NULL */
    int delete_delay_s;
    const char *version; /* ray.io/kuberay-version */
    validate_gates_t gates;
};

typedef struct {
    rawrs_t *j;
    char url[768];
    char *body; /* malloc'd or NULL */
} rawreq_t;

/* A metav1.Condition. */
static json_t *s_cond(const char *type, const char *status, const char *reason, const char *msg)
{
    char now[40];
    rftime_now(RFTIME_SEC, now, sizeof(now));
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status", status, "reason", reason,
                     "message", msg, "lastTransitionTime", now);
}

/* A RayService status merge patch. */
static char *s_status(rawrs_t *j, int step)
{
    const char *c = j->cname[j->gen];
    json_t *apps = json_pack("{s:{s:s}, s:{s:s}}", "fruit_app", "status", "RUNNING", "math_app",
                             "status", "RUNNING");
    json_t *st = json_object();
    json_int_t gen = jx_int(j->rs, "metadata.generation", 1);
    json_object_set_new(st, "observedGeneration", json_integer(gen));
    switch (step) {
    case S_ST_PENDING:
        json_object_set_new(st, "pendingServiceStatus", json_pack("{s:s}", "rayClusterName", c));
        json_object_set_new(st, "conditions",
                            json_pack("[o, o]",
                                      j->gen ? s_cond(RS_COND_READY, "True", RS_R_NONZERO_ENDPOINTS,
                                                      "Number of serve endpoints is greater than 0")
                                             : s_cond(RS_COND_READY, "False", RS_R_INITIALIZING,
                                                      "RayService is initializing"),
                                      j->gen ? s_cond(RS_COND_UPGRADE, "True", RS_R_BOTH,
                                                      "Both active and pending Ray clusters exist")
                                             : s_cond(RS_COND_UPGRADE, "False", RS_R_INITIALIZING,
                                                      "RayService is initializing")));
        break;
    case S_ST_APPS:
        json_object_set_new(
            st, "pendingServiceStatus",
            json_pack("{s:s, s:O}", "rayClusterName", c, "applicationStatuses", apps));
        break;
    case S_PROMOTE:
        json_object_set_new(
            st, "activeServiceStatus",
            json_pack("{s:s, s:O}", "rayClusterName", c, "applicationStatuses", apps));
        json_object_set_new(st, "pendingServiceStatus", json_null());
        break;
    default: /* S_READY */
        json_object_set_new(st, "serviceStatus", json_string("Running"));
        json_object_set_new(st, "numServeEndpoints", json_integer(1));
        json_object_set_new(
            st, "conditions",
            json_pack("[o, o]",
                      s_cond(RS_COND_READY, "True", RS_R_NONZERO_ENDPOINTS,
                             "Number of serve endpoints is greater than 0"),
                      s_cond(RS_COND_UPGRADE, "False", RS_R_NO_PENDING,
                             "Active Ray cluster exists and no pending Ray cluster")));
        break;
    }
    json_decref(apps);
    return bench_dump(json_pack("{s:o}", "status", st));
}

static char *s_event(rawrs_t *j, bool of_cluster, const char *reason)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.raw%d-%d", of_cluster ? j->cname[j->gen] : j->name, j->gen,
             j->step);
    const json_t *obj = of_cluster ? j->rc[j->gen] : j->rs;
    return bench_event(name, of_cluster ? "RayCluster" : "RayService",
                       of_cluster ? j->cname[j->gen] : j->name, jx_str(obj, "metadata.uid", ""),
                       reason, of_cluster ? "raycluster-controller" : "rayservice-controller");
}

/* A selector merge patch from a built Service (released). */
static char *s_selector(json_t *svc)
{
    char *t =
        svc ? bench_dump(json_pack("{s:{s:O}}", "spec", "selector", jx_get(svc, "spec.selector")))
            : NULL;
    json_decref(svc);
    return t;
}

static void s_raw_done(http_client_t *client, http_response_t *resp, void *arg);

/* Sends RayService j's next request. */
static void s_raw_send(raw_t *w, rawrs_t *j)
{
    rawreq_t *q = calloc(1, sizeof(*q));
    if (!q) {
        w->failed++;
        j->step = S_END;
        return;
    }
    q->j = j;
    const char *method = "POST", *ctype = "application/json", *b = w->f->base;
    const char *ev = NULL; /* an Event: its reason */
    bool ev_cluster = false, write = true;
    int g = j->gen;
    buf_t err;
    buf_init(&err, 1024);
    switch (j->step) {
    case S_CREATE: {
        json_t *md = json_object_get(w->tmpl, "metadata");
        json_object_set_new(md, "name", json_string(j->name));
        json_object_set_new(md, "namespace", json_string(FLEET_NS));
        q->body = json_dumps(w->tmpl, JSON_COMPACT);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RS_PATH, b);
        write = false;
        if (w->first_ms == 0)
            w->first_ms = fleet_wall_ms();
        break;
    }
    case S_FINALIZER:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body =
            bench_dump(json_pack("{s:{s:[s]}}", "metadata", "finalizers", RAYSERVICE_FINALIZER));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RS_PATH "/%s", b, j->name);
        break;
    case S_ST_PENDING:
    case S_ST_APPS:
    case S_PROMOTE:
    case S_READY:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = s_status(j, j->step);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RS_PATH "/%s/status", b, j->name);
        break;
    case S_RC:
        q->body = bench_dump(rayservice_cluster(j->rs, j->cname[g], w->version, false, &err));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RC_PATH, b);
        break;
    case S_RC_EV:
        ev = "CreatedRayCluster";
        break;
    case S_SVC: {
        objbuild_opts_t oo = {0};
        json_t *svc = objbuild_head_service(j->rc[g], &oo, &err);
        snprintf(j->hsvc[g], sizeof(j->hsvc[g]), "%s", jx_str(svc, "metadata.name", ""));
        q->body = bench_dump(svc);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/services", b);
        break;
    }
    case S_SVC_EV:
        ev = "CreatedService", ev_cluster = true;
        break;
    case S_POD: {
        podbuild_opts_t po;
        podbuild_opts_init(&po);
        json_t *pod = NULL;
        q->body = podbuild_head(j->rc[g], &po, &pod, &err) == 0 ? bench_dump(pod) : NULL;
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/pods", b);
        break;
    }
    case S_POD_EV:
        ev = "CreatedHeadPod", ev_cluster = true;
        break;
    case S_RCST1:
    case S_RCST2:
    case S_RCST3:
    case S_RCST4:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = bench_dump(json_pack("{s:{s:s, s:i, s:i}}", "status", "state",
                                       j->step == S_RCST4 ? "ready" : "", "readyWorkerReplicas", 0,
                                       "observedGeneration", j->step - S_RCST1 + 1));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RC_PATH "/%s/status", b, j->cname[g]);
        break;
    case S_HEALTH:
        method = "GET";
        write = false;
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/services/%s:8265/proxy/api/gcs_healthz",
                 b, j->hsvc[g]);
        break;
    case S_PUT:
        method = "PUT";
        write = false;
        w->pushes++;
        q->body = bench_dump(rayservice_serve_body(j->rs, -1, &err));
        snprintf(q->url, sizeof(q->url),
                 "%s" BENCH_CORE "/services/%s:8265/proxy/api/serve/applications/", b, j->hsvc[g]);
        break;
    case S_PUT_EV:
        ev = "UpdatedServeApplications";
        break;
    case S_HZ:
    case S_IDLE_HZ:
        method = "GET";
        write = false;
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/pods/%s:8000/proxy/-/healthz", b,
                 j->pod[g]);
        break;
    case S_APPS:
    case S_IDLE_APPS:
        method = "GET";
        write = false;
        snprintf(q->url, sizeof(q->url),
                 "%s" BENCH_CORE "/services/%s:8265/proxy/api/serve/applications/", b, j->hsvc[g]);
        break;
    case S_LABEL:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = bench_dump(json_pack("{s:{s:{s:s}}}", "metadata", "labels", LABEL_SERVE, "true"));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/pods/%s", b, j->pod[g]);
        break;
    case S_HSVC:
        q->body = bench_dump(rayservice_head_service(j->rs, j->rc[g], &err));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/services", b);
        break;
    case S_HSVC_EV:
    case S_SSVC_EV:
        ev = "CreatedService";
        break;
    case S_SSVC: {
        json_t *svc = rayservice_serve_service(j->rs, j->rc[g], &err);
        snprintf(j->ssvc, sizeof(j->ssvc), "%s", jx_str(svc, "metadata.name", ""));
        q->body = bench_dump(svc);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/services", b);
        break;
    }
    case S_PH:
    case S_PS:
        method = "PATCH";
        ctype = "application/merge-patch+json";
        q->body = s_selector(j->step == S_PH ? rayservice_head_service(j->rs, j->rc[g], &err)
                                             : rayservice_serve_service(j->rs, j->rc[g], &err));
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/services/%s-%s", b, j->name,
                 j->step == S_PH ? "head-svc" : "serve-svc");
        break;
    case S_EPWAIT:
        method = "GET";
        write = false;
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/services/%s:8000/proxy/-/healthz", b,
                 j->ssvc);
        break;
    case S_DEL:
        method = "DELETE";
        snprintf(q->url, sizeof(q->url), "%s" BENCH_RC_PATH "/%s", b, j->cname[0]);
        break;
    case S_DEL_EV:
        ev = "DeletedRayCluster";
        break;
    default:
        break;
    }
    if (ev) {
        q->body = s_event(j, ev_cluster, ev);
        snprintf(q->url, sizeof(q->url), "%s" BENCH_CORE "/events", b);
    }
    if (write)
        w->writes++;
    else if (strcmp(method, "GET") == 0)
        w->gets++;
    bool need_body = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
    if (need_body && !q->body) {
        if (w->failed++ == 0)
            fprintf(stderr, "bench-rayservice: raw %s step %d: cannot build: %s\n", j->name,
                    j->step, buf_str(&err));
        buf_free(&err);
        free(q);
        j->step = S_END;
        return;
    }
    buf_free(&err);
    w->inflight++;
    if (bench_send(w->f->http, method, q->url, ctype, q->body, s_raw_done, q) < 0) {
        w->inflight--;
        w->failed++;
        free(q->body);
        free(q);
        bench_wait(&w->q, j->i, BENCH_WAIT_MS); /* the same step again */
    }
}

/* True when the applications answer shows every app RUNNING. */
static bool s_all_running(const json_t *body)
{
    json_t *apps = json_object_get(body, "applications");
    if (json_object_size(apps) == 0)
        return false;
    const char *k;
    json_t *a;
    json_object_foreach(apps, k, a)
    {
        if (strcmp(jx_str(a, "status", ""), "RUNNING") != 0)
            return false;
    }
    return true;
}

/* The step after the steady loop's GET applications: the upgrade, the old cluster's deletion,
 * or the loop again in 2 s. Returns the wait in ms. */
static int s_idle_next(raw_t *w, rawrs_t *j)
{
    if (w->patched && w->patched[j->i] > 0 && !j->upgrading) {
        j->upgrading = true;
        j->gen = 1;
        json_t *c0 = json_array_get(jx_get(j->rs, "spec.rayClusterConfig.headGroupSpec.template."
                                                  "spec.containers"),
                                    0);
        json_object_set_new(c0, "image", json_string(BENCH_NEW_IMAGE));
        j->step = S_ST_PENDING;
        return 0;
    }
    if (j->upgrading && j->upgraded_ms && !j->deleted && fleet_now() >= j->del_due) {
        j->step = S_DEL;
        return 0;
    }
    j->step = S_IDLE_HZ;
    return BENCH_LOOP_MS;
}

/* An answer: the RayService's next step (now, or after a wait). */
static void s_raw_done(http_client_t *client, http_response_t *resp, void *arg)
{
    (void)client;
    rawreq_t *q = arg;
    rawrs_t *j = q->j;
    raw_t *w = j->w;
    w->inflight--;
    free(q->body);
    free(q);
    bool ok = !resp->err && resp->status >= 200 && resp->status < 300;
    json_t *body =
        ok && resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    int g = j->gen, wait = 0, next = j->step + 1;
    switch (j->step) {
    case S_CREATE:
        if (!body) {
            ok = false;
            break;
        }
        json_decref(j->rs);
        j->rs = json_incref(body);
        w->acked[j->i] = fleet_wall_ms();
        break;
    case S_RC:
        if (!body) {
            ok = false;
            break;
        }
        json_decref(j->rc[g]);
        j->rc[g] = json_deep_copy(body);
        validate_apply_defaults(j->rc[g]);
        break;
    case S_POD:
        snprintf(j->pod[g], sizeof(j->pod[g]), "%s", jx_str(body, "metadata.name", ""));
        break;
    case S_HEALTH:
        if (!ok || !strstr(resp->body.len ? buf_str(&resp->body) : "", "success"))
            ok = true, wait = BENCH_WAIT_MS, next = S_HEALTH;
        break;
    case S_HZ:
        ok = true; /* 503 until the routes are populated: KubeRay only sets the label */
        break;
    case S_APPS:
        if (!ok || !s_all_running(body))
            ok = true, wait = BENCH_LOOP_MS, next = S_HZ;
        break;
    case S_LABEL:
        next = g == 0 ? S_HSVC : S_PH;
        break;
    case S_SSVC_EV:
        next = S_PROMOTE;
        break;
    case S_PROMOTE:
        if (g == 1) {
            if (ok)
                j->upgraded_ms = fleet_wall_ms();
            j->del_due = fleet_now() + w->delete_delay_s;
            next = S_IDLE_HZ;
            wait = BENCH_LOOP_MS;
        }
        break;
    case S_EPWAIT:
        if (!ok)
            ok = true, wait = BENCH_WAIT_MS, next = S_EPWAIT;
        break;
    case S_READY:
        if (ok)
            j->ready_ms = fleet_wall_ms();
        next = S_IDLE_HZ;
        wait = BENCH_LOOP_MS;
        break;
    case S_IDLE_HZ:
        ok = true;
        break;
    case S_IDLE_APPS:
        ok = true;
        wait = s_idle_next(w, j);
        next = j->step;
        break;
    case S_DEL:
        j->deleted = ok;
        break;
    case S_DEL_EV:
        next = S_IDLE_HZ;
        wait = BENCH_LOOP_MS;
        break;
    default:
        break;
    }
    json_decref(body);
    if (!ok) {
        if (w->failed++ < 3)
            fprintf(stderr, "bench-rayservice: raw %s step %d: HTTP %ld %.200s\n", j->name, j->step,
                    resp->status, resp->body.len ? buf_str(&resp->body) : err_str(resp->err));
        if (j->step == S_CREATE || j->step == S_RC || j->step == S_POD) {
            j->step = S_END; /* nothing to go on with */
            return;
        }
    }
    j->step = next;
    if (j->step >= S_END)
        return;
    if (wait > 0)
        bench_wait(&w->q, j->i, wait);
    else
        bench_ready(&w->q, j->i);
}

/* ---- one side ------------------------------------------------------------------------------ */

typedef struct {
    fleet_t *f;
    size_t n;
    raw_t *w; /* raw side: its client, else NULL */
    traffic_t *t; /* traffic while on */
    patcher_t *p; /* the wave's patches while sending */
    double next; /* next sample */
    fleet_split_t peak;
    long long rss_self;
    /* rayfleet side, from observed.db */
    int64_t *ready_ms, *switched_ms; /* per RayService: first seen Ready / on its new cluster */
    char (*old)[64]; /* per RayService: the active cluster before the wave */
    long ready, switched;
} side_t;

/* rayfleet: reads the RayServices' rows of observed.db. */
static void s_observe(side_t *s)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/observed.db", s->f->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, phase, updated_ms, "
                           "json_extract(json, '$.status.activeServiceStatus.rayClusterName'), "
                           "json_extract(json, '$.status.pendingServiceStatus.rayClusterName') "
                           "FROM observed_objects WHERE kind = 'RayService'",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            long i = s_index((const char *)sqlite3_column_text(st, 0), s->n);
            const char *phase = (const char *)sqlite3_column_text(st, 1);
            const char *act = (const char *)sqlite3_column_text(st, 3);
            const char *pend = (const char *)sqlite3_column_text(st, 4);
            if (i < 0 || !phase || !act || !*act)
                continue;
            int64_t at = sqlite3_column_int64(st, 2);
            if (!s->ready_ms[i] && strcmp(phase, "Running") == 0) {
                s->ready_ms[i] = at;
                s->ready++;
                snprintf(s->old[i], sizeof(s->old[i]), "%s", act);
            } else if (s->p && !s->switched_ms[i] && *s->old[i] && strcmp(act, s->old[i]) != 0 &&
                       (!pend || !*pend)) {
                s->switched_ms[i] = at;
                s->switched++;
            }
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Every BENCH_SAMPLE_S: RSS peaks and (rayfleet) observed.db. */
static void s_sample(side_t *s)
{
    double now = fleet_now();
    if (now < s->next)
        return;
    s->next = now + BENCH_SAMPLE_S;
    fleet_split_t sp;
    fleet_usage_split(s->f, &sp);
    bench_peak(&s->peak, &sp);
    long long me = fleet_rss(getpid());
    s->rss_self = me > s->rss_self ? me : s->rss_self;
    if (!s->w)
        s_observe(s);
}

/* fleet_create_objs()'s tick. */
static void s_tick(void *arg)
{
    s_sample(arg);
}

/* One loop turn: the raw client's requests, the traffic, the patches, then a sample. */
static void s_turn(side_t *s)
{
    if (s->w) {
        raw_t *w = s->w;
        bench_wake_due(&w->q);
        size_t i;
        while (w->inflight < BENCH_RAW_INFLIGHT && bench_next(&w->q, &i))
            s_raw_send(w, &w->rs[i]);
    }
    if (s->t)
        s_traffic_pump(s->t);
    if (s->p)
        s_patch_pump(s->p);
    loop_run_once(s->f->loop, 2);
    s_sample(s);
}

/* Counts of the raw side: Ready, switched, old clusters deleted. */
static void s_raw_counts(side_t *s, long *ready, long *switched, long *deleted)
{
    *ready = *switched = *deleted = 0;
    for (size_t i = 0; i < s->n; i++) {
        *ready += s->w->rs[i].ready_ms > 0;
        *switched += s->w->rs[i].upgraded_ms > 0;
        *deleted += s->w->rs[i].deleted;
    }
}

/* rayfleet: old clusters (the names recorded before the wave) still in observed.db. */
static long s_old_left(side_t *s)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/observed.db", s->f->dir);
    sqlite3 *db = NULL;
    long left = -1;
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT name FROM observed_objects WHERE kind = 'RayCluster' AND "
                               "name LIKE '" BENCH_PREFIX "-%'",
                               -1, &st, NULL) == SQLITE_OK) {
            left = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                const char *nm = (const char *)sqlite3_column_text(st, 0);
                long i = s_index(nm, s->n);
                left += i >= 0 && nm && strcmp(nm, s->old[i]) == 0;
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return left;
}

/* rayfleet: audit rows of serve-upgrade.db and scheduler-0.db about the RayServices and their
 * clusters: writes (Serve pushes apart). Returns 0 or -1. */
static int s_audit(fleet_t *f, size_t *writes, size_t *pushes)
{
    static const char *const dbs[] = {"serve-upgrade.db", "scheduler-0.db"};
    *writes = *pushes = 0;
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
        int rc = sqlite3_prepare_v2(db,
                                    "SELECT count(verb != 'serve-push' OR NULL), "
                                    "count(verb = 'serve-push' OR NULL) FROM audit WHERE "
                                    "cause_key LIKE '%/" BENCH_PREFIX "-%'",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            *writes += (size_t)sqlite3_column_int64(st, 0);
            *pushes += (size_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (rc != SQLITE_OK)
            return -1;
    }
    return 0;
}

typedef struct {
    size_t n;
    int steady_s, delete_delay_s, sample, nodes, conc;
    int stall_s; /* no more Ready (switched) for this long: go on with those that are */
    double rate; /* traffic requests per second */
    const char *steady_poll;
    double max_s;
    bool keep;
} opts_t;

/* Runs one side (raw when `raw`). Returns 0 or -1. */
static int s_side(const opts_t *o, bool raw, result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->ready_s = r->wave_s = -1;
    size_t n = o->n;
    fleet_t f = {0};
    fleet_opts_t fo = {.nodes = o->nodes,
                       .replicas = raw ? 0 : 1,
                       .lease_ms = 5000,
                       .qps = BENCH_QPS,
                       .concurrency = o->conc,
                       .log_level = "warn",
                       .serveup = !raw,
                       .steady_poll = o->steady_poll};
    rs_settings_t set;
    rsstate_settings_default(&set);
    raw_t w = {.f = &f, .n = n, .delete_delay_s = o->delete_delay_s, .version = set.version};
    validate_gates_default(&w.gates);
    side_t s = {.f = &f, .n = n, .w = raw ? &w : NULL};
    traffic_t t = {
        .f = &f, .n = n, .k = (size_t)o->sample < n ? (size_t)o->sample : n, .rate = o->rate};
    patcher_t pt = {.f = &f, .n = n};
    int64_t *acked = calloc(n, sizeof(*acked)), *packed = calloc(n, sizeof(*packed));
    int64_t *ready = calloc(n, sizeof(*ready)), *switched = calloc(n, sizeof(*switched));
    s.ready_ms = calloc(n, sizeof(*s.ready_ms));
    s.switched_ms = calloc(n, sizeof(*s.switched_ms));
    s.old = calloc(n, sizeof(*s.old));
    w.rs = calloc(n, sizeof(*w.rs));
    w.acked = acked;
    pt.acked = packed;
    json_t *tmpl = NULL;
    int rc = -1;
    const char *side = raw ? "raw" : "rayfleet";
    if (!acked || !packed || !ready || !switched || !s.ready_ms || !s.switched_ms || !s.old ||
        !w.rs || bench_queue_init(&w.q, n) != 0 || fleet_start(&f, &fo) != 0 ||
        !(tmpl = s_template(&f, o->delete_delay_s))) {
        fprintf(stderr, "bench-rayservice: %s: cannot start (state %s)\n", side, f.dir);
        goto out;
    }
    t.http = http_client_new(
        f.loop, &(http_config_t){.max_host_connections = 16, .max_total_connections = 16});
    if (!t.http)
        goto out;
    if (raw)
        fleet_kill(&f.watcher, true);
    else
        fleet_sleep_ms(1000); /* the services list+watch */
    w.tmpl = tmpl;
    fleet_split_t sp0, sp1, sp2, sp3;
    fleet_usage_split(&f, &sp0);
    double cpu0 = fleet_cpu(getpid());
    int64_t w0 = fleet_wall_ms();
    double t0 = fleet_now();

    /* 1. N RayServices to Ready */
    if (raw) {
        for (size_t i = 0; i < n; i++) {
            rawrs_t *j = &w.rs[i];
            j->w = &w;
            j->i = i;
            snprintf(j->name, sizeof(j->name), BENCH_PREFIX "-%06zu", i);
            snprintf(j->cname[0], sizeof(j->cname[0]), "%s-raw00", j->name);
            snprintf(j->cname[1], sizeof(j->cname[1]), "%s-raw01", j->name);
            bench_ready(&w.q, i);
        }
    } else {
        size_t failed = fleet_create_objs(&f, BENCH_RS_PATH, tmpl, BENCH_PREFIX, n, 0, acked,
                                          s_tick, &s, false);
        if (failed)
            fprintf(stderr, "bench-rayservice: %zu RayService creates failed\n", failed);
    }
    long nready = 0, nsw = 0, ndel = 0, seen = -1;
    double moved = fleet_now();
    for (;;) {
        s_turn(&s);
        if (raw)
            s_raw_counts(&s, &nready, &nsw, &ndel);
        else
            nready = s.ready;
        if (nready != seen)
            seen = nready, moved = fleet_now();
        if (nready >= (long)n || fleet_now() - t0 > o->max_s ||
            (nready > 0 && fleet_now() - moved > o->stall_s))
            break;
    }
    for (size_t i = 0; i < n; i++)
        ready[i] = raw ? w.rs[i].ready_ms : s.ready_ms[i];
    r->ready = nready;
    int64_t last = 0;
    for (size_t i = 0; i < n; i++)
        last = ready[i] > last ? ready[i] : last;
    if (nready >= (long)n)
        r->ready_s = (double)(last - (raw ? w.first_ms : w0)) / 1000.0;
    s_lat(acked, ready, n, &r->rd50_ms, &r->rd99_ms);
    printf("  %s: %ld/%zu Ready in %.1f s\n", side, nready, n, r->ready_s);
    fflush(stdout);
    if (nready == 0)
        goto measure;
    if (nready < (long)n) /* stalled: the rest is measured on those that are Ready */
        printf("  %s: no more Ready for %d s: going on with %ld\n", side, o->stall_s, nready);

    /* 2. the steady window */
    double until = fleet_now() + BENCH_SETTLE_S;
    while (fleet_now() < until)
        s_turn(&s);
    reqs_t q0, q1;
    s_reqs(&f, &q0);
    fleet_usage_split(&f, &sp1);
    double c1 = fleet_cpu(getpid()), ts = fleet_now();
    until = ts + o->steady_s;
    while (fleet_now() < until)
        s_turn(&s);
    s_reqs(&f, &q1);
    fleet_usage_split(&f, &sp2);
    r->steady_s = fleet_now() - ts;
    r->steady_cpu_self = fleet_cpu(getpid()) - c1;
    bench_cpu_delta(&sp1, &sp2, &r->steady_cpu);
    r->steady = (reqs_t){q1.dashboard - q0.dashboard, q1.agent - q0.agent, q1.control - q0.control,
                         q1.traffic - q0.traffic};

    /* 3. the wave, with traffic */
    for (size_t i = 0; raw && i < n; i++)
        snprintf(s.old[i], sizeof(s.old[i]), "%s", w.rs[i].cname[0]);
    t.old = s.old;
    t.t0 = fleet_now();
    t.on = true;
    double tw = fleet_now();
    int64_t ww0 = fleet_wall_ms();
    if (raw)
        w.patched = packed;
    s.p = &pt;
    s.t = &t;
    double done_at = 0, next_del = 0;
    long want = nready, last_sw = -1; /* the RayServices that were Ready */
    moved = fleet_now();
    for (;;) {
        s_turn(&s);
        if (raw) {
            s_raw_counts(&s, &nready, &nsw, &ndel);
        } else {
            nsw = s.switched;
            if (nsw >= want && fleet_now() >= next_del) {
                next_del = fleet_now() + 1.0;
                long left = s_old_left(&s);
                ndel = left >= 0 ? want - left : 0;
            }
        }
        if (nsw != last_sw)
            last_sw = nsw, moved = fleet_now();
        if (pt.done >= n && nsw >= want && ndel >= nsw && done_at == 0)
            done_at = fleet_now() + 2.0; /* traffic goes on 2 s after the last deletion */
        if ((done_at > 0 && fleet_now() >= done_at) || fleet_now() - tw > o->max_s ||
            (nsw > 0 && fleet_now() - moved > o->stall_s + o->delete_delay_s))
            break;
    }
    t.on = false;
    while (t.inflight > 0 || pt.inflight > 0)
        loop_run_once(f.loop, 20);
    for (size_t i = 0; i < n; i++)
        switched[i] = raw ? w.rs[i].upgraded_ms : s.switched_ms[i];
    r->upgraded = nsw;
    last = 0;
    for (size_t i = 0; i < n; i++)
        last = switched[i] > last ? switched[i] : last;
    if (nsw >= want)
        r->wave_s = (double)(last - ww0) / 1000.0;
    s_lat(packed, switched, n, &r->up50_ms, &r->up99_ms);
    r->old_left = want - ndel;
    r->t_ok = t.ok;
    r->t_bad = t.bad;
    r->t_err = t.err;
    r->t_new = t.answered_new;
    printf("  %s: %ld/%zu switched in %.1f s, old clusters left %ld\n", side, nsw, n, r->wave_s,
           r->old_left);
    fflush(stdout);

measure:
    while (w.inflight > 0)
        loop_run_once(f.loop, 20);
    fleet_usage_split(&f, &sp3);
    r->peak = s.peak;
    bench_cpu_delta(&sp0, &sp3, &r->peak);
    r->cpu_self = fleet_cpu(getpid()) - cpu0;
    r->rss_self = s.rss_self;
    if (raw) {
        r->writes_per_rs = (double)w.writes / (double)n;
        r->pushes_per_rs = (double)w.pushes / (double)n;
        r->gets_per_rs = (double)w.gets / (double)n;
        if (w.failed)
            fprintf(stderr, "bench-rayservice: raw: %zu requests failed\n", w.failed);
    } else {
        fleet_sleep_ms(500); /* last audit batches committed */
        size_t wr = 0, pu = 0;
        if (s_audit(&f, &wr, &pu) == 0) {
            r->writes_per_rs = (double)wr / (double)n;
            r->pushes_per_rs = (double)pu / (double)n;
        }
    }
    rc = r->ready >= (long)n && r->upgraded >= (long)n ? 0 : -1;
out:
    http_client_destroy(&t.http);
    json_decref(tmpl);
    fleet_stop(&f, o->keep && !raw);
    if (o->keep && !raw)
        fprintf(stderr, "bench-rayservice: rayfleet state kept in %s\n", f.dir);
    for (size_t i = 0; w.rs && i < n; i++) {
        json_decref(w.rs[i].rs);
        json_decref(w.rs[i].rc[0]);
        json_decref(w.rs[i].rc[1]);
    }
    free(w.rs);
    bench_queue_free(&w.q);
    free(acked);
    free(packed);
    free(ready);
    free(switched);
    free(s.ready_ms);
    free(s.switched_ms);
    free(s.old);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void s_fmt(char *out, size_t n, double v, const char *fmt)
{
    if (v >= 0)
        snprintf(out, n, fmt, v);
    else
        snprintf(out, n, "-");
}

int main(int argc, char **argv)
{
    opts_t o = {.n = BENCH_RS_DEFAULT,
                .steady_s = BENCH_STEADY_S,
                .delete_delay_s = BENCH_DELETE_DELAY_S,
                .sample = BENCH_TRAFFIC_SAMPLE,
                .rate = BENCH_TRAFFIC_RATE,
                .stall_s = BENCH_STALL_S,
                .conc = BENCH_CONC};
    bool skip_raw = false, bad = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = v ? strtol(v, NULL, 10) : -1;
        if (strcmp(a, "--rayservices") == 0 && v) {
            bad |= x < 1 || x > BENCH_RS_MAX;
            o.n = (size_t)x;
            i++;
        } else if (strcmp(a, "--steady") == 0 && v) {
            bad |= x < 1 || x > 3600;
            o.steady_s = (int)x;
            i++;
        } else if (strcmp(a, "--delete-delay") == 0 && v) {
            bad |= x < 0 || x > 3600;
            o.delete_delay_s = (int)x;
            i++;
        } else if (strcmp(a, "--traffic-sample") == 0 && v) {
            bad |= x < 1 || x > BENCH_RS_MAX;
            o.sample = (int)x;
            i++;
        } else if (strcmp(a, "--traffic-rate") == 0 && v) {
            bad |= x < 1 || x > 100000;
            o.rate = (double)x;
            i++;
        } else if (strcmp(a, "--max-wait") == 0 && v) {
            bad |= x < 1 || x > 86400;
            o.max_s = (double)x;
            i++;
        } else if (strcmp(a, "--steady-poll") == 0 && v) {
            o.steady_poll = v;
            i++;
        } else if (strcmp(a, "--skip-raw") == 0) {
            skip_raw = true;
        } else if (strcmp(a, "--keep") == 0) {
            o.keep = true;
        } else {
            bad = true;
        }
    }
    if (bad) {
        fprintf(stderr,
                "usage: bench-rayservice [--rayservices 1..%d] [--steady 1..3600 s] "
                "[--steady-poll DURATION] [--delete-delay 0..3600 s] [--traffic-sample K] "
                "[--traffic-rate R] [--max-wait S] [--skip-raw] [--keep]\n",
                BENCH_RS_MAX);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("bench-rayservice", LOG_ERROR, STDERR_FILENO);
    o.nodes = (int)(o.n / 4 + 16); /* two heads per RayService during the wave */
    if (o.max_s <= 0)
        o.max_s = 300.0 + (double)o.n * 0.3;
    printf(
        "bench-rayservice: %zu RayServices (ray-service.sample.yaml, 2 Serve apps, head only, "
        "rayClusterDeletionDelaySeconds %d), created unpaced (%d in flight), kubesim %d nodes; "
        "steady window %d s; wave: head image -> %s, traffic GET /fruit to %d serve Services "
        "(%.0f/s, at most %d in flight); rayfleet: 1 scheduler + serve-upgrade --steady-poll %s\n",
        o.n, o.delete_delay_s, FLEET_INFLIGHT, o.nodes, o.steady_s, BENCH_NEW_IMAGE,
        o.sample < (int)o.n ? o.sample : (int)o.n, o.rate, BENCH_TRAFFIC_INFLIGHT,
        o.steady_poll ? o.steady_poll : "10s (its default)");
    fflush(stdout);
    result_t raw = {.ready_s = -1, .wave_s = -1}, rf = {.ready_s = -1, .wave_s = -1};
    int failures = 0;
    if (!skip_raw && s_side(&o, true, &raw) != 0)
        failures++;
    if (s_side(&o, false, &rf) != 0)
        failures++;
    const double mb = 1048576.0;
    printf("\n%-8s %6s %6s %8s %7s %8s %8s %6s %8s %7s %8s %8s %5s\n", "side", "N", "ready",
           "ready_s", "ratio", "p50_ms", "p99_ms", "switch", "wave_s", "ratio", "p50_ms", "p99_ms",
           "left");
    for (int k = skip_raw ? 1 : 0; k < 2; k++) {
        const result_t *r = k ? &rf : &raw;
        char a[16], b[16], c[16], d[16];
        s_fmt(a, sizeof(a), r->ready_s, "%.1f");
        s_fmt(c, sizeof(c), r->wave_s, "%.1f");
        s_fmt(b, sizeof(b), k && raw.ready_s > 0 && r->ready_s > 0 ? r->ready_s / raw.ready_s : -1,
              "%.2f");
        s_fmt(d, sizeof(d), k && raw.wave_s > 0 && r->wave_s > 0 ? r->wave_s / raw.wave_s : -1,
              "%.2f");
        printf("%-8s %6zu %6ld %8s %7s %8.0f %8.0f %6ld %8s %7s %8.0f %8.0f %5ld\n",
               k ? "rayfleet" : "raw", o.n, r->ready, a, b, r->rd50_ms, r->rd99_ms, r->upgraded, c,
               d, r->up50_ms, r->up99_ms, r->old_left);
    }
    printf("\n%-8s %9s %9s %9s %9s %10s %9s %9s %8s %8s\n", "side", "t_ok", "t_non2xx", "t_error",
           "t_newclus", "dash/rs/m", "hz/rs/m", "all/rs/m", "writes", "pushes");
    for (int k = skip_raw ? 1 : 0; k < 2; k++) {
        const result_t *r = k ? &rf : &raw;
        double per = r->steady_s > 0 ? (double)o.n * r->steady_s / 60.0 : 0;
        double dash = per > 0 ? (double)r->steady.dashboard / per : -1;
        double hz = per > 0 ? (double)r->steady.control / per : -1;
        double all = per > 0
                         ? (double)(r->steady.dashboard + r->steady.agent + r->steady.control) / per
                         : -1;
        char tn[16];
        snprintf(tn, sizeof(tn), "%ld", r->t_new);
        printf("%-8s %9ld %9ld %9ld %9s %10.1f %9.1f %9.1f %8.1f %8.1f\n", k ? "rayfleet" : "raw",
               r->t_ok, r->t_bad, r->t_err, tn, dash, hz, all, r->writes_per_rs, r->pushes_per_rs);
    }
    printf("KubeRay's fixed 2 s loop implies %.0f dashboard + %.0f proxy /-/healthz requests per "
           "RayService per minute (30 reconciles: GET applications + the head's /-/healthz); "
           "rayfleet's --steady-poll %s implies %s.\n",
           60000.0 / BENCH_LOOP_MS, 60000.0 / BENCH_LOOP_MS, o.steady_poll ? o.steady_poll : "10s",
           o.steady_poll ? "60 s / the period of each" : "6 + 6");
    printf("\nCPU seconds (whole side / steady window) and peak RSS MB:\n");
    if (!skip_raw)
        printf("raw      client %.1f / %.2f s %.0f MB; kubesim %.1f / %.2f s %.0f MB\n",
               raw.cpu_self, raw.steady_cpu_self, (double)raw.rss_self / mb, raw.peak.cpu_kubesim,
               raw.steady_cpu.cpu_kubesim, (double)raw.peak.rss_kubesim / mb);
    printf("rayfleet bus %.1f / %.2f s %.0f MB; watcher %.1f / %.2f s %.0f MB; scheduler %.1f / "
           "%.2f s %.0f MB; serve-upgrade %.1f / %.2f s %.0f MB; kubesim %.1f / %.2f s %.0f MB\n",
           rf.peak.cpu_bus, rf.steady_cpu.cpu_bus, (double)rf.peak.rss_bus / mb,
           rf.peak.cpu_watcher, rf.steady_cpu.cpu_watcher, (double)rf.peak.rss_watcher / mb,
           rf.peak.cpu_sched, rf.steady_cpu.cpu_sched, (double)rf.peak.rss_sched / mb,
           rf.peak.cpu_serveup, rf.steady_cpu.cpu_serveup, (double)rf.peak.rss_serveup / mb,
           rf.peak.cpu_kubesim, rf.steady_cpu.cpu_kubesim, (double)rf.peak.rss_kubesim / mb);
    printf(
        "ready_s: first create sent -> last RayService Ready (raw: its Ready status write "
        "answered; rayfleet: observed.db row updated_ms showing serviceStatus Running); "
        "p50/p99: create answered -> Ready; switch/wave_s: RayServices on their new cluster, "
        "first image patch sent -> last switch (raw: promotion status answered; rayfleet: "
        "observed.db row with the new active cluster and no pending one), p50/p99: patch "
        "answered -> switch; left: old clusters not deleted at the end; ratio: rayfleet / "
        "raw time; t_*: traffic during the wave (2xx, other status, transport error; "
        "t_newclus: 2xx answers not naming the old cluster); */rs/m: requests the heads answered "
        "in the steady window per RayService per minute (dash: dashboard 8265, hz: Serve "
        "proxy /-/healthz, all: + agent); writes, pushes: API writes and Serve PUTs per "
        "RayService (creates and the wave's patches not counted; rayfleet: audit rows).\n");
    return failures ? 1 : 0;
}
