/*
 * bench-kubesim: kubesim's API server over HTTP against its object store called in-process.
 *
 * The measured side is a real kubesim child process (build/bin/kubesim next to this binary),
 * started with --simulate off so that only the API server runs: no scheduler, kubelet or
 * controllers write anything, and every cost measured is the server's. The bench talks to it on
 * loopback like any client, with common/http (libcurl multi on the event loop, keep-alive
 * connections, streaming watches).
 *
 *   1. Memory at scale, first, on the fresh server: VmRSS of the child (/proc/<pid>/status)
 *      before and after storing P pods, then after C custom resources (the upstream RayCluster
 *      CRD is registered first, the CRs are its ray-cluster.sample.yaml with their own names).
 *      The rate runs below then run against this loaded server, as the scale goal asks.
 *   2. Rate runs, R of them, each in a fresh namespace:
 *        create: N pods (~1 KB JSON) POSTed with K requests in flight, no watchers;
 *        fan-out: W watchers (watch=1, streamed, events counted by newlines) started just
 *        before a marker pod's RV, so each stream's first event (the marker's ADDED) proves it is
 *        delivering; then M status writes (PATCH .../status, merge patch) on M of those pods,
 *        K in flight. Events/s delivered = W * M / (first write sent -> last event received).
 *        Every watcher must receive exactly M events after the marker, else the bench fails.
 *      The pods have an ownerReference to a RayCluster created in their namespace: kubesim's
 *      garbage collector (like kube's) deletes pods whose owner does not exist.
 *   3. The raw baseline, interleaved with the HTTP runs (HTTP first on even runs, in-process
 *      first on odd ones): the same creates (json_loadb of the same bytes + objstore_create) and
 *      status writes (get + patch_merge + objstore_update) on an objstore_t in this process, with
 *      W watches whose callback takes the shared serialised event (objstore_event_json), as the
 *      server's watchers do.
 *
 * The table gives medians; ratios are HTTP / in-process. Beside the wall-clock rates it gives
 * the rates per CPU-second of the server (utime + stime of the child from /proc/<pid>/stat) and
 * of this process for the in-process side: steadier when other work shares the machine. The
 * targets are judged on the wall-clock rates. The machine is shared and has two
 * cores: the bench client (curl, counting) competes with the server for CPU, which is part of
 * what the HTTP side pays. The child is killed on every exit path (it also gets
 * PR_SET_PDEATHSIG, so it dies with the bench even on SIGKILL).
 *
 *   bench-kubesim [--pods N] [--writes M] [--watchers W] [--concurrency K] [--runs R]
 *                 [--mem-pods P] [--mem-crs C] [--kubesim PATH] [--crd FILE] [--cr FILE]
 */
#include "err.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "objstore.h"
#include "patch.h"
#include "procstat.h"
#include "yaml.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PODS_DEFAULT 20000 /* pod creates per rate run */
#define BENCH_WRITES_DEFAULT 2000 /* status writes per fan-out run */
#define BENCH_WATCHERS_DEFAULT 100 /* watchers during the fan-out */
#define BENCH_CONC_DEFAULT 32 /* requests in flight */
#define BENCH_RUNS_DEFAULT 3 /* rate runs of each side */
#define BENCH_RUNS_MAX 15 /* most rate runs accepted */
#define BENCH_MEM_PODS_DEFAULT 100000 /* pods stored for the memory figure */
#define BENCH_MEM_CRS_DEFAULT 10000 /* custom resources stored for the memory figure */
#define BENCH_WATCHERS_MAX 2000 /* most watchers accepted */
#define BENCH_CONC_MAX 256 /* most requests in flight accepted */
#define BENCH_COUNT_MAX 10000000 /* most objects per phase accepted */
#define BENCH_BODY_MAX 8192 /* bytes of one request body */
#define BENCH_URL_MAX 512 /* bytes of one request URL */
#define BENCH_BASE_MAX 128 /* bytes of the server URL */
#define BENCH_NAME_MAX 64 /* bytes of an object or namespace name */
#define BENCH_CRD_MAX (8u << 20) /* bytes of the CRD file */
#define BENCH_READY_MS 15000 /* longest wait for kubesim's ready file */
#define BENCH_STOP_MS 3000 /* SIGTERM -> SIGKILL grace for the child */
#define BENCH_PHASE_MS 120000 /* longest any one phase may take */
#define BENCH_WATCH_UP_MS 10000 /* longest wait for every watch stream to start */
#define BENCH_WATCH_IDLE_MS 60000 /* a watch stream silent this long is an error */
#define BENCH_POLL_MS 50 /* loop wait per iteration while driving requests */
#define BENCH_BUDGET_S 75.0 /* no new rate run starts that would end after this */
#define BENCH_TARGET_WRITES 5000.0 /* scale goal: writes/s */
#define BENCH_TARGET_EVENTS 50000.0 /* scale goal: watch events/s delivered */
#define BENCH_ERR_TEXT 512 /* bytes kept of the first failed response */
#define BENCH_FAKE_OWNER_UID "0a1b2c3d-0000-4000-8000-000000000001" /* in-process: no GC runs */

/* What one driven request does. */
typedef enum {
    REQ_POD_CREATE = 0, /* POST a pod */
    REQ_POD_STATUS, /* PATCH a pod's status */
    REQ_CR_CREATE /* POST a RayCluster */
} req_kind_t;

typedef struct bench bench_t;

/* One request slot of the driver: the URL and body stay valid while the request flies. */
typedef struct {
    bench_t *b; /* the bench */
    char url[BENCH_URL_MAX]; /* the request URL */
    char body[BENCH_BODY_MAX]; /* the request body */
    size_t body_len; /* bytes in body */
} slot_t;

/* One watch stream of the fan-out. */
typedef struct {
    bench_t *b; /* the bench */
    int64_t id; /* the http request id, 0 when not running */
    uint64_t lines; /* events received (newlines) */
    bool up; /* the marker event arrived: the server delivers to this stream */
    bool ended; /* the stream ended without being cancelled */
    int err; /* the error it ended with */
    long status; /* the HTTP status it ended with */
} watch_t;

/* One in-process watch of the baseline. */
typedef struct {
    uint64_t events; /* events delivered */
    uint64_t bytes; /* serialised bytes taken */
    uint64_t bad; /* events without JSON (out of memory) */
} os_watch_t;

/* The settings and the HTTP side's state. */
struct bench {
    size_t pods; /* creates per rate run */
    size_t writes; /* status writes per fan-out run */
    size_t watchers; /* watchers during the fan-out */
    size_t conc; /* requests in flight */
    size_t runs; /* rate runs */
    size_t mem_pods; /* pods for the memory figure */
    size_t mem_crs; /* custom resources for the memory figure */
    char kubesim[PATH_MAX]; /* the kubesim binary */
    char crd[PATH_MAX]; /* the RayCluster CRD YAML */
    char cr[PATH_MAX]; /* the RayCluster sample YAML */
    char dir[PATH_MAX]; /* temporary directory (ready file) */
    char base[BENCH_BASE_MAX]; /* http://127.0.0.1:PORT */
    loop_t *loop; /* the event loop of the HTTP client */
    http_client_t *http; /* the client */
    json_t *cr_obj; /* the RayCluster template */
    slot_t *slots; /* conc request slots */
    watch_t *watch; /* watchers streams */
    /* The current driven phase. */
    req_kind_t kind; /* what each request does */
    char ns[BENCH_NAME_MAX]; /* the namespace it works in */
    size_t total; /* requests to make */
    size_t started; /* requests started */
    size_t done; /* requests completed */
    size_t failed; /* requests that failed */
    char err_text[BENCH_ERR_TEXT]; /* the first failure, for the report */
    char owner_uid[BENCH_NAME_MAX]; /* uid of the RayCluster owning the pods of ns */
    double t_last_event; /* when the last watcher event arrived */
};

/* The child's pid, for the signal and exit handlers (process-wide by nature: one child). */
static volatile pid_t s_child = 0;
/* The temporary directory, removed by the signal handler too (set once, before signals). */
static char s_tmpdir[PATH_MAX];

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_kill_child_now(void)
{
    pid_t pid = s_child;
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s_child = 0;
    }
}

static void s_on_fatal_signal(int signo)
{
    pid_t pid = s_child;
    if (pid > 0)
        kill(pid, SIGKILL);
    if (s_tmpdir[0]) {
        char ready[PATH_MAX + 16];
        // The ready file may exist if kubesim just wrote it; both calls are async-signal-safe.
        size_t n = strlen(s_tmpdir);
        memcpy(ready, s_tmpdir, n);
        memcpy(ready + n, "/ready", sizeof("/ready"));
        unlink(ready);
        rmdir(s_tmpdir);
    }
    _exit(128 + signo);
}

/* CPU seconds (user + system) used so far by `pid` (0 = this process), or -1. */
static double s_cpu(pid_t pid)
{
    if (pid <= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    return procstat_cpu_of(pid);
}

/* VmRSS of `pid` (0 = this process) in bytes, or -1. */
static long long s_rss(pid_t pid)
{
    return procstat_rss_bytes(pid > 0 ? pid : 0);
}

/* ---- the kubesim child ---------------------------------------------------------------- */

/* Starts kubesim and waits for its ready file. Returns 0 or -1 (reason on stderr). */
static int s_child_start(bench_t *b)
{
    char ready[PATH_MAX + 16];
    snprintf(ready, sizeof(ready), "%s/ready", b->dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench-kubesim: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        // Dies with the bench, even when the bench is killed with SIGKILL.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            close(devnull);
        }
        char *argv[] = {b->kubesim, "--port",      "0",     "--simulate", "off", "--ready-file",
                        ready,      "--log-level", "error", "--nodes",    "3",   NULL};
        execv(b->kubesim, argv);
        fprintf(stderr, "bench-kubesim: exec %s: %s\n", b->kubesim, strerror(errno));
        _exit(127);
    }
    s_child = pid;
    double deadline = s_now() + BENCH_READY_MS / 1000.0;
    while (s_now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s_child = 0;
            fprintf(stderr, "bench-kubesim: kubesim exited before it was ready (status %d)\n",
                    status);
            return -1;
        }
        FILE *f = fopen(ready, "r");
        if (f) {
            char line[BENCH_BASE_MAX] = "";
            bool ok = fgets(line, sizeof(line), f) != NULL;
            fclose(f);
            line[strcspn(line, "\r\n")] = '\0';
            if (ok && strncmp(line, "http://", 7) == 0) {
                snprintf(b->base, sizeof(b->base), "%s", line);
                unlink(ready);
                return 0;
            }
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "bench-kubesim: kubesim not ready after %d ms\n", BENCH_READY_MS);
    return -1;
}

/* Stops the child: SIGTERM, then SIGKILL after BENCH_STOP_MS. */
static void s_child_stop(void)
{
    pid_t pid = s_child;
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    double deadline = s_now() + BENCH_STOP_MS / 1000.0;
    while (s_now() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s_child = 0;
            return;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    s_kill_child_now();
}

/* ---- request bodies --------------------------------------------------------------------- */

/* A worker pod of about 1 KB as the operator would create it (the server adds uid, RV, ...).
 * Its owner must exist: the server's garbage collector deletes pods with a dangling owner. */
static int s_pod_json(char *out, size_t cap, const char *ns, size_t i, const char *owner_uid)
{
    size_t c = i / 8;
    int n = snprintf(
        out, cap,
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-%06zu\","
        "\"namespace\":\"%s\",\"labels\":{\"ray.io/cluster\":\"raycluster-%zu\",\"ray.io/"
        "node-type\":\"worker\",\"ray.io/group\":\"small-group\",\"ray.io/is-ray-node\":\"yes\","
        "\"app.kubernetes.io/created-by\":\"kuberay-operator\"},\"ownerReferences\":[{"
        "\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"name\":\"owner\","
        "\"uid\":\"%.40s\",\"controller\":true,\"blockOwnerDeletion\":"
        "true}]},\"spec\":{\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray:"
        "2.9.0\",\"command\":[\"/bin/bash\",\"-lc\",\"--\"],\"args\":[\"ulimit -n 65536; ray "
        "start --address=raycluster-%zu-head-svc:6379 --block --num-cpus=1 "
        "--memory=2000000000\"],\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},"
        "\"requests\":{\"cpu\":\"500m\",\"memory\":\"1Gi\"}},\"env\":[{\"name\":\"RAY_CLUSTER_"
        "NAME\",\"value\":\"raycluster-%zu\"},{\"name\":\"RAY_PORT\",\"value\":\"6379\"}]}],"
        "\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30}}",
        i, ns, c, owner_uid, c, c);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The status a kubelet would write once the pod runs (always a change: creates drop status). */
static int s_status_json(char *out, size_t cap, size_t i)
{
    int n = snprintf(out, cap,
                     "{\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%zu.%zu.%zu\","
                     "\"startTime\":\"2026-11-22T10:00:00Z\",\"conditions\":[{\"type\":"
                     "\"Ready\",\"status\":\"True\"},{\"type\":\"ContainersReady\",\"status\":"
                     "\"True\"},{\"type\":\"PodScheduled\",\"status\":\"True\"}]}}",
                     (i >> 16) & 255, (i >> 8) & 255, i & 255);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---- the HTTP request driver ------------------------------------------------------------ */

static void s_drive_start(bench_t *b, slot_t *s);

static void s_on_done(http_client_t *client, http_response_t *resp, void *arg)
{
    slot_t *s = arg;
    bench_t *b = s->b;
    long want = b->kind == REQ_POD_STATUS ? 200 : 201;
    b->done++;
    if (resp->err != 0 || resp->status != want) {
        if (b->failed++ == 0)
            snprintf(b->err_text, sizeof(b->err_text), "%.120s: err %s, HTTP %ld: %.300s", s->url,
                     err_str(resp->err), resp->status, resp->body.len ? buf_str(&resp->body) : "");
        return;
    }
    if (b->started < b->total)
        s_drive_start(b, s);
}

/* Fills slot s with request number b->started and starts it (a failure counts as done). */
static void s_drive_start(bench_t *b, slot_t *s)
{
    size_t i = b->started++;
    const char *method = "POST";
    const char *ctype = "application/json";
    int n = -1;
    if (b->kind == REQ_POD_CREATE) {
        snprintf(s->url, sizeof(s->url), "%s/api/v1/namespaces/%s/pods", b->base, b->ns);
        n = s_pod_json(s->body, sizeof(s->body), b->ns, i, b->owner_uid);
    } else if (b->kind == REQ_POD_STATUS) {
        snprintf(s->url, sizeof(s->url), "%s/api/v1/namespaces/%s/pods/pod-%06zu/status", b->base,
                 b->ns, i);
        n = s_status_json(s->body, sizeof(s->body), i);
        method = "PATCH";
        ctype = "application/merge-patch+json";
    } else {
        snprintf(s->url, sizeof(s->url), "%s/apis/ray.io/v1/namespaces/%s/rayclusters", b->base,
                 b->ns);
        char name[BENCH_NAME_MAX];
        snprintf(name, sizeof(name), "raycluster-%06zu", i);
        json_t *md = json_object_get(b->cr_obj, "metadata");
        json_object_set_new(md, "name", json_string(name));
        json_object_set_new(md, "namespace", json_string(b->ns));
        size_t len = json_dumpb(b->cr_obj, s->body, sizeof(s->body), JSON_COMPACT);
        n = len > 0 && len < sizeof(s->body) ? (int)len : -1;
    }
    http_header_t h[] = {{"Content-Type", ctype}, {"Accept", "application/json"}};
    http_request_t req = {.method = method,
                          .url = s->url,
                          .headers = h,
                          .n_headers = 2,
                          .body = s->body,
                          .body_len = n > 0 ? (size_t)n : 0,
                          .body_borrowed = true,
                          .on_done = s_on_done,
                          .arg = s};
    if (n < 0 || http_request(b->http, &req) < 0) {
        b->done++;
        if (b->failed++ == 0)
            snprintf(b->err_text, sizeof(b->err_text), "cannot start request %.400s", s->url);
    }
}

/* Makes `total` requests of `kind` in namespace ns with b->conc in flight. Returns the requests
 * per second, or -1 on any failure or timeout (reason on stderr). */
static double s_drive(bench_t *b, req_kind_t kind, const char *ns, size_t total)
{
    b->kind = kind;
    snprintf(b->ns, sizeof(b->ns), "%s", ns);
    b->total = total;
    b->started = 0;
    b->done = 0;
    b->failed = 0;
    b->err_text[0] = '\0';
    double t0 = s_now();
    for (size_t k = 0; k < b->conc && b->started < total; k++)
        s_drive_start(b, &b->slots[k]);
    double deadline = t0 + BENCH_PHASE_MS / 1000.0;
    while (b->done < b->started && s_now() < deadline) {
        if (loop_run_once(b->loop, BENCH_POLL_MS) < 0)
            break;
    }
    double dt = s_now() - t0;
    if (b->done < b->started) {
        fprintf(stderr, "bench-kubesim: %zu of %zu requests unfinished after %d ms\n",
                b->started - b->done, total, BENCH_PHASE_MS);
        return -1;
    }
    if (b->failed || b->done != total) {
        fprintf(stderr, "bench-kubesim: %zu of %zu requests failed; first: %s\n", b->failed, total,
                b->err_text);
        return -1;
    }
    return (double)total / dt;
}

/* Result of one blocking request made on the loop. */
typedef struct {
    bool done; /* on_done ran */
    long status; /* HTTP status */
    int err; /* transport error */
    json_t *body; /* parsed JSON body, or NULL */
} sync_t;

static void s_sync_done(http_client_t *client, http_response_t *resp, void *arg)
{
    sync_t *r = arg;
    r->done = true;
    r->status = resp->status;
    r->err = resp->err;
    if (resp->body.len)
        r->body = json_loadb(resp->body.data, resp->body.len, 0, NULL);
}

/* One request, waited for on the loop (setup calls only, never timed). Returns the HTTP status,
 * or -1; *out (may be NULL) receives the parsed body. */
static long s_call(bench_t *b, const char *method, const char *path, const char *ctype,
                   const char *body, size_t len, json_t **out)
{
    char url[BENCH_URL_MAX];
    snprintf(url, sizeof(url), "%s%s", b->base, path);
    http_header_t h[] = {{"Content-Type", ctype}, {"Accept", "application/json"}};
    sync_t r = {0};
    http_request_t req = {.method = method,
                          .url = url,
                          .headers = h,
                          .n_headers = 2,
                          .body = body,
                          .body_len = len,
                          .on_done = s_sync_done,
                          .arg = &r};
    int64_t id = http_request(b->http, &req);
    if (id < 0)
        return -1;
    double deadline = s_now() + HTTP_DEFAULT_TIMEOUT_MS / 1000.0 + 1;
    while (!r.done && s_now() < deadline)
        loop_run_once(b->loop, BENCH_POLL_MS);
    if (!r.done) {
        http_cancel(b->http, id);
        return -1;
    }
    if (out)
        *out = r.body;
    else
        json_decref(r.body);
    return r.err ? -1 : r.status;
}

/* Creates namespace ns and the RayCluster "owner" in it whose uid the pods reference (in
 * b->owner_uid). Returns 0 or -1. */
static int s_create_ns(bench_t *b, const char *ns)
{
    char body[256];
    int n = snprintf(
        body, sizeof(body),
        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    long st = s_call(b, "POST", "/api/v1/namespaces", "application/json", body, (size_t)n, NULL);
    if (st != 201) {
        fprintf(stderr, "bench-kubesim: creating namespace %s: HTTP %ld\n", ns, st);
        return -1;
    }
    char path[BENCH_URL_MAX];
    snprintf(path, sizeof(path), "/apis/ray.io/v1/namespaces/%s/rayclusters", ns);
    json_t *md = json_object_get(b->cr_obj, "metadata");
    json_object_set_new(md, "name", json_string("owner"));
    json_object_set_new(md, "namespace", json_string(ns));
    char *text = json_dumps(b->cr_obj, JSON_COMPACT);
    json_t *obj = NULL;
    st = text ? s_call(b, "POST", path, "application/json", text, strlen(text), &obj) : -1;
    free(text);
    const char *uid = st == 201 ? jx_str(obj, "metadata.uid", NULL) : NULL;
    if (uid)
        snprintf(b->owner_uid, sizeof(b->owner_uid), "%s", uid);
    json_decref(obj);
    if (!uid) {
        fprintf(stderr, "bench-kubesim: creating the owner RayCluster in %s: HTTP %ld\n", ns, st);
        return -1;
    }
    return 0;
}

/* Creates the marker pod "marker" in ns and returns the resourceVersion just before it, as a
 * string (caller frees), or NULL. Watches from there first replay the marker's ADDED event,
 * which tells the bench that the stream is up (nothing else writes: --simulate off). */
static char *s_marker_rv(bench_t *b, const char *ns)
{
    char path[BENCH_URL_MAX], body[256];
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods", ns);
    int n = snprintf(body, sizeof(body),
                     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                     "\"marker\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}");
    json_t *obj = NULL;
    long st = s_call(b, "POST", path, "application/json", body, (size_t)n, &obj);
    const char *rv = st == 201 ? jx_str(obj, "metadata.resourceVersion", NULL) : NULL;
    char *end = NULL;
    unsigned long long v = rv ? strtoull(rv, &end, 10) : 0;
    bool ok = v > 0 && end && !*end;
    json_decref(obj);
    char out[32];
    if (!ok) {
        fprintf(stderr, "bench-kubesim: cannot create the marker pod (HTTP %ld)\n", st);
        return NULL;
    }
    snprintf(out, sizeof(out), "%llu", v - 1);
    return strdup(out);
}

/* ---- watch streams ---------------------------------------------------------------------- */

static int s_watch_data(http_client_t *client, int64_t id, const void *data, size_t len, void *arg)
{
    watch_t *w = arg;
    const char *p = data;
    const char *end = p + len;
    uint64_t before = w->lines;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        w->lines++;
        p = nl + 1;
    }
    if (w->lines != before) {
        w->b->t_last_event = s_now();
        w->up = true;
    }
    return 0;
}

static void s_watch_done(http_client_t *client, http_response_t *resp, void *arg)
{
    watch_t *w = arg;
    w->id = 0;
    w->ended = true;
    w->err = resp->err;
    w->status = resp->status;
}

static void s_watch_stop_all(bench_t *b)
{
    for (size_t i = 0; i < b->watchers; i++) {
        if (b->watch[i].id > 0)
            http_cancel(b->http, b->watch[i].id);
        b->watch[i].id = 0;
    }
}

/* Starts W watches on the pods of ns from resourceVersion rv and waits until every stream has
 * started. Returns 0 or -1. */
static int s_watch_start_all(bench_t *b, const char *ns, const char *rv)
{
    char url[BENCH_URL_MAX];
    snprintf(url, sizeof(url), "%s/api/v1/namespaces/%s/pods?watch=1&resourceVersion=%.40s",
             b->base, ns, rv);
    for (size_t i = 0; i < b->watchers; i++) {
        watch_t *w = &b->watch[i];
        *w = (watch_t){.b = b};
        http_request_t req = {.url = url,
                              .timeout_ms = HTTP_NO_TIMEOUT,
                              .idle_timeout_ms = BENCH_WATCH_IDLE_MS,
                              .on_done = s_watch_done,
                              .on_data = s_watch_data,
                              .arg = w};
        w->id = http_request(b->http, &req);
        if (w->id < 0) {
            w->id = 0;
            fprintf(stderr, "bench-kubesim: cannot start watch %zu\n", i);
            return -1;
        }
    }
    double deadline = s_now() + BENCH_WATCH_UP_MS / 1000.0;
    for (;;) {
        size_t up = 0;
        for (size_t i = 0; i < b->watchers; i++) {
            if (b->watch[i].ended) {
                fprintf(stderr, "bench-kubesim: watch %zu ended at start: %s, HTTP %ld\n", i,
                        err_str(b->watch[i].err), b->watch[i].status);
                return -1;
            }
            up += b->watch[i].up;
        }
        if (up == b->watchers)
            return 0;
        if (s_now() > deadline) {
            fprintf(stderr, "bench-kubesim: %zu of %zu watches up after %d ms\n", up, b->watchers,
                    BENCH_WATCH_UP_MS);
            return -1;
        }
        loop_run_once(b->loop, BENCH_POLL_MS);
    }
}

/* ---- one HTTP rate run ------------------------------------------------------------------ */

/* The figures of one run of either side. */
typedef struct {
    double creates; /* pod creates/s, no watchers */
    double writes; /* status writes/s with W watchers */
    double events; /* watch events delivered/s */
    double creates_cpu; /* creates per CPU-second of the server (or of this process) */
    double writes_cpu; /* status writes per CPU-second (with the deliveries) */
    double events_cpu; /* events delivered per CPU-second */
} rates_t;

static int s_http_run(bench_t *b, size_t run, rates_t *out)
{
    char ns[BENCH_NAME_MAX];
    snprintf(ns, sizeof(ns), "bench-http-%zu", run);
    if (s_create_ns(b, ns) < 0)
        return -1;
    double c0 = s_cpu(s_child);
    out->creates = s_drive(b, REQ_POD_CREATE, ns, b->pods);
    out->creates_cpu = (double)b->pods / (s_cpu(s_child) - c0);
    if (out->creates < 0)
        return -1;
    char *rv = s_marker_rv(b, ns);
    if (!rv || s_watch_start_all(b, ns, rv) < 0) {
        free(rv);
        s_watch_stop_all(b);
        return -1;
    }
    free(rv);
    b->t_last_event = 0;
    double t0 = s_now();
    c0 = s_cpu(s_child);
    out->writes = s_drive(b, REQ_POD_STATUS, ns, b->writes);
    int rc = out->writes < 0 ? -1 : 0;
    uint64_t want = b->writes + 1; // the marker's ADDED, then one MODIFIED per write
    double deadline = s_now() + BENCH_PHASE_MS / 1000.0;
    while (rc == 0) {
        bool all = true;
        for (size_t i = 0; i < b->watchers && all; i++)
            all = b->watch[i].lines >= want || b->watch[i].ended;
        if (all)
            break;
        if (s_now() > deadline) {
            fprintf(stderr, "bench-kubesim: watch events still missing after %d ms\n",
                    BENCH_PHASE_MS);
            rc = -1;
            break;
        }
        loop_run_once(b->loop, BENCH_POLL_MS);
    }
    double c1 = s_cpu(s_child);
    // A short drain shows any event beyond the M expected.
    double drain = s_now() + 0.05;
    while (rc == 0 && s_now() < drain)
        loop_run_once(b->loop, 10);
    uint64_t total = 0;
    for (size_t i = 0; i < b->watchers && rc == 0; i++) {
        watch_t *w = &b->watch[i];
        total += w->lines - 1;
        if (w->lines != want || w->ended) {
            fprintf(stderr,
                    "bench-kubesim: watcher %zu got %" PRIu64 " events, want %" PRIu64
                    "%s (%s, HTTP %ld)\n",
                    i, w->lines, want, w->ended ? ", stream ended" : "", err_str(w->err),
                    w->status);
            rc = -1;
        }
    }
    s_watch_stop_all(b);
    if (rc == 0) {
        out->events = (double)total / (b->t_last_event - t0);
        out->writes_cpu = (double)b->writes / (c1 - c0);
        out->events_cpu = (double)total / (c1 - c0);
    }
    return rc;
}

/* ---- the in-process baseline ------------------------------------------------------------ */

static int s_os_watch_cb(const objstore_event_t *ev, void *arg)
{
    os_watch_t *w = arg;
    size_t len = 0;
    if (objstore_event_json(ev, &len))
        w->bytes += len;
    else
        w->bad++;
    w->events++;
    return 0;
}

/* The baseline's store with namespaces and pods registered as kubesim registers them. */
typedef struct {
    objstore_t *s; /* the store */
    objstore_res_t *nss; /* namespaces */
    objstore_res_t *pods; /* pods */
} os_t;

static int s_os_open(os_t *o)
{
    o->s = objstore_new(0);
    objstore_resdesc_t dn = {.group = "",
                             .version = "v1",
                             .resource = "namespaces",
                             .kind = "Namespace",
                             .has_status = true};
    objstore_resdesc_t dp = {.group = "",
                             .version = "v1",
                             .resource = "pods",
                             .kind = "Pod",
                             .namespaced = true,
                             .has_status = true,
                             .graceful = true};
    o->nss = o->s ? objstore_register(o->s, &dn) : NULL;
    o->pods = o->nss ? objstore_register(o->s, &dp) : NULL;
    return o->pods ? 0 : -1;
}

/* One in-process run: the same creates and status writes as s_http_run(). *rss_per_pod gets
 * this process's RSS growth per created pod. */
static int s_os_run(bench_t *b, os_t *o, size_t run, rates_t *out, double *rss_per_pod)
{
    char ns[BENCH_NAME_MAX];
    snprintf(ns, sizeof(ns), "bench-os-%zu", run);
    objstore_status_t st;
    json_t *nsobj = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                              "metadata", "name", ns);
    if (objstore_create(o->s, o->nss, NULL, &nsobj, NULL, &st) < 0) {
        fprintf(stderr, "bench-kubesim: in-process namespace: %s\n", st.message);
        return -1;
    }
    char *body = malloc(BENCH_BODY_MAX);
    os_watch_t *ws = calloc(b->watchers, sizeof(*ws));
    objstore_watch_t **wh = calloc(b->watchers, sizeof(*wh));
    int rc = body && ws && wh ? 0 : -1;
    long long rss0 = s_rss(0);
    double t0 = s_now();
    double c0 = s_cpu(0);
    for (size_t i = 0; i < b->pods && rc == 0; i++) {
        int n = s_pod_json(body, BENCH_BODY_MAX, ns, i, BENCH_FAKE_OWNER_UID);
        json_t *obj = n > 0 ? json_loadb(body, (size_t)n, 0, NULL) : NULL;
        if (!obj || objstore_create(o->s, o->pods, ns, &obj, NULL, &st) < 0) {
            fprintf(stderr, "bench-kubesim: in-process create: %s\n", st.message);
            json_decref(obj);
            rc = -1;
        }
    }
    out->creates = (double)b->pods / (s_now() - t0);
    out->creates_cpu = (double)b->pods / (s_cpu(0) - c0);
    *rss_per_pod = (double)(s_rss(0) - rss0) / (double)b->pods;
    char rv[32];
    snprintf(rv, sizeof(rv), "%" PRIu64, objstore_rv(o->s));
    for (size_t i = 0; i < b->watchers && rc == 0; i++) {
        if (objstore_watch(o->s, o->pods, ns, rv, NULL, NULL, s_os_watch_cb, &ws[i], &wh[i], &st) <
            0) {
            fprintf(stderr, "bench-kubesim: in-process watch: %s\n", st.message);
            rc = -1;
        }
    }
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_PATCH, .status = true};
    t0 = s_now();
    c0 = s_cpu(0);
    for (size_t i = 0; i < b->writes && rc == 0; i++) {
        char name[BENCH_NAME_MAX];
        snprintf(name, sizeof(name), "pod-%06zu", i);
        int n = s_status_json(body, BENCH_BODY_MAX, i);
        json_t *patch = n > 0 ? json_loadb(body, (size_t)n, 0, NULL) : NULL;
        json_t *cur = NULL;
        json_t *next = NULL;
        if (patch && objstore_get(o->s, o->pods, ns, name, &cur, &st) == 0)
            next = patch_merge(cur, patch);
        if (!next || objstore_update(o->s, o->pods, ns, name, &next, &uo, NULL, NULL, &st) < 0) {
            fprintf(stderr, "bench-kubesim: in-process status write: %s\n", st.message);
            json_decref(next);
            rc = -1;
        }
        json_decref(cur);
        json_decref(patch);
    }
    double dt = s_now() - t0;
    double dc = s_cpu(0) - c0;
    uint64_t total = 0;
    for (size_t i = 0; i < b->watchers && rc == 0; i++) {
        total += ws[i].events;
        if (ws[i].events != b->writes || ws[i].bad) {
            fprintf(stderr, "bench-kubesim: in-process watch %zu got %" PRIu64 " events\n", i,
                    ws[i].events);
            rc = -1;
        }
    }
    out->writes = (double)b->writes / dt;
    out->events = (double)total / dt;
    out->writes_cpu = (double)b->writes / dc;
    out->events_cpu = (double)total / dc;
    for (size_t i = 0; wh && i < b->watchers; i++)
        objstore_watch_stop(o->s, &wh[i]);
    free(wh);
    free(ws);
    free(body);
    return rc;
}

/* ---- memory at scale -------------------------------------------------------------------- */

/* The memory phase's figures. */
typedef struct {
    long long rss0; /* fresh server */
    long long rss_crd; /* after the CRD */
    long long rss_pods; /* after P pods */
    long long rss_crs; /* after C CRs */
    double pod_rate; /* creates/s while loading the pods */
    double cr_rate; /* creates/s while loading the CRs */
    double seconds; /* the phase's wall time */
} mem_t;

static char *s_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(max + 1);
    size_t n = p ? fread(p, 1, max + 1, f) : 0;
    fclose(f);
    if (!p || n > max) {
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

/* Registers the RayCluster CRD (the pods' owners are RayClusters). Returns 0 or -1. */
static int s_register_crd(bench_t *b)
{
    size_t len = 0;
    char *crd = s_read_file(b->crd, BENCH_CRD_MAX, &len);
    if (!crd) {
        fprintf(stderr, "bench-kubesim: cannot read %s\n", b->crd);
        return -1;
    }
    long st = s_call(b, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                     "application/yaml", crd, len, NULL);
    free(crd);
    if (st != 201) {
        fprintf(stderr, "bench-kubesim: registering the CRD %s: HTTP %ld\n", b->crd, st);
        return -1;
    }
    return 0;
}

static int s_mem_phase(bench_t *b, mem_t *m)
{
    double t0 = s_now();
    if (s_create_ns(b, "bench-mem") < 0)
        return -1;
    m->rss_crd = s_rss(s_child);
    if (b->mem_pods) {
        m->pod_rate = s_drive(b, REQ_POD_CREATE, "bench-mem", b->mem_pods);
        if (m->pod_rate < 0)
            return -1;
    }
    m->rss_pods = s_rss(s_child);
    if (b->mem_crs) {
        m->cr_rate = s_drive(b, REQ_CR_CREATE, "bench-mem", b->mem_crs);
        if (m->cr_rate < 0)
            return -1;
    }
    m->rss_crs = s_rss(s_child);
    m->seconds = s_now() - t0;
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(const double *v, size_t n)
{
    double tmp[BENCH_RUNS_MAX];
    memcpy(tmp, v, n * sizeof(double));
    qsort(tmp, n, sizeof(double), s_cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: bench-kubesim [options]\n"
            "kubesim's API server over HTTP (a child process, --simulate off) against its object\n"
            "store called in-process: pod creates/s, status writes/s and watch events/s with W\n"
            "watchers, and the server's memory per stored pod and per custom resource.\n"
            "  --pods N         pod creates per rate run (default %d)\n"
            "  --writes M       status writes per fan-out run, <= pods (default %d)\n"
            "  --watchers W     watchers during the fan-out (default %d)\n"
            "  --concurrency K  requests in flight (default %d)\n"
            "  --runs R         rate runs of each side, medians reported (default %d)\n"
            "  --mem-pods P     pods stored for the memory figure (default %d, 0 = skip)\n"
            "  --mem-crs C      RayClusters stored for the memory figure (default %d)\n"
            "  --kubesim PATH   the kubesim binary (default: next to this program)\n"
            "  --crd FILE       RayCluster CRD YAML (default $RF_SHARED_DIR/kuberay/crd/...)\n"
            "  --cr FILE        RayCluster sample YAML (default $RF_SHARED_DIR/kuberay/samples/"
            "ray-cluster.sample.yaml)\n"
            "Exits 1 if anything fails (a request, a missing watch event, the child).\n",
            BENCH_PODS_DEFAULT, BENCH_WRITES_DEFAULT, BENCH_WATCHERS_DEFAULT, BENCH_CONC_DEFAULT,
            BENCH_RUNS_DEFAULT, BENCH_MEM_PODS_DEFAULT, BENCH_MEM_CRS_DEFAULT);
}

static bool s_parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!s[0] || *end || errno || v < min || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

/* Fills the default paths: kubesim next to /proc/self/exe, the CRD and CR from the shared dir
 * ($RF_SHARED_DIR, else ../../../shared from the binary: build/bin -> the checkout's sibling). */
static int s_default_paths(bench_t *b)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if (!b->kubesim[0])
        snprintf(b->kubesim, sizeof(b->kubesim), "%.4000s/kubesim", exe);
    char shared[PATH_MAX];
    const char *env = getenv("RF_SHARED_DIR");
    if (env && env[0])
        snprintf(shared, sizeof(shared), "%s", env);
    else
        snprintf(shared, sizeof(shared), "%.3000s/../../../shared", exe);
    if (!b->crd[0])
        snprintf(b->crd, sizeof(b->crd), "%.3000s/kuberay/crd/ray.io_rayclusters.yaml", shared);
    if (!b->cr[0])
        snprintf(b->cr, sizeof(b->cr), "%.3000s/kuberay/samples/ray-cluster.sample.yaml", shared);
    return 0;
}

static int s_load_cr(bench_t *b)
{
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 1024);
    int rc = yaml_load_file(b->cr, BENCH_CRD_MAX, &docs, &err);
    json_t *cr = rc == 0 ? json_array_get(docs, 0) : NULL;
    if (!json_is_object(cr) || !json_is_object(json_object_get(cr, "metadata"))) {
        fprintf(stderr, "bench-kubesim: cannot load %s: %s\n", b->cr, buf_str(&err));
        json_decref(docs);
        buf_free(&err);
        return -1;
    }
    b->cr_obj = json_deep_copy(cr);
    json_decref(docs);
    buf_free(&err);
    return b->cr_obj ? 0 : -1;
}

/* The median over n runs of the double at byte offset `off` in rates_t. */
static double s_median_of(const rates_t *v, size_t n, size_t off)
{
    double tmp[BENCH_RUNS_MAX] = {0};
    for (size_t i = 0; i < n; i++)
        memcpy(&tmp[i], (const char *)&v[i] + off, sizeof(double));
    return s_median(tmp, n);
}

/* One table row: wall-clock rates of both sides and their ratio, the same per CPU-second of the
 * server (HTTP) or of this process (in-process), and the target verdict on the wall rate. */
static void s_print_row(const char *name, const rates_t *http, const rates_t *os, size_t n,
                        size_t off, size_t off_cpu, double target)
{
    double h = s_median_of(http, n, off);
    double o = s_median_of(os, n, off);
    double hc = s_median_of(http, n, off_cpu);
    double oc = s_median_of(os, n, off_cpu);
    printf("%-30s %12.0f %12.0f %6.2f %12.0f %12.0f %6.2f   >= %.0f: %s\n", name, h, o, h / o, hc,
           oc, hc / oc, target, h >= target ? "met" : "NOT met");
}

int main(int argc, char **argv)
{
    log_setup("bench-kubesim", LOG_WARN, 2);
    bench_t *b = calloc(1, sizeof(*b));
    if (!b)
        return 1;
    b->pods = BENCH_PODS_DEFAULT;
    b->writes = BENCH_WRITES_DEFAULT;
    b->watchers = BENCH_WATCHERS_DEFAULT;
    b->conc = BENCH_CONC_DEFAULT;
    b->runs = BENCH_RUNS_DEFAULT;
    b->mem_pods = BENCH_MEM_PODS_DEFAULT;
    b->mem_crs = BENCH_MEM_CRS_DEFAULT;
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            free(b);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("bench-kubesim %s\n", RF_VERSION);
            free(b);
            return 0;
        }
        bool ok = v != NULL;
        if (ok && strcmp(a, "--pods") == 0)
            ok = s_parse_size(v, 1, BENCH_COUNT_MAX, &b->pods);
        else if (ok && strcmp(a, "--writes") == 0)
            ok = s_parse_size(v, 1, BENCH_COUNT_MAX, &b->writes);
        else if (ok && strcmp(a, "--watchers") == 0)
            ok = s_parse_size(v, 1, BENCH_WATCHERS_MAX, &b->watchers);
        else if (ok && strcmp(a, "--concurrency") == 0)
            ok = s_parse_size(v, 1, BENCH_CONC_MAX, &b->conc);
        else if (ok && strcmp(a, "--runs") == 0)
            ok = s_parse_size(v, 1, BENCH_RUNS_MAX, &b->runs);
        else if (ok && strcmp(a, "--mem-pods") == 0)
            ok = s_parse_size(v, 0, BENCH_COUNT_MAX, &b->mem_pods);
        else if (ok && strcmp(a, "--mem-crs") == 0)
            ok = s_parse_size(v, 0, BENCH_COUNT_MAX, &b->mem_crs);
        else if (ok && strcmp(a, "--kubesim") == 0)
            snprintf(b->kubesim, sizeof(b->kubesim), "%s", v);
        else if (ok && strcmp(a, "--crd") == 0)
            snprintf(b->crd, sizeof(b->crd), "%s", v);
        else if (ok && strcmp(a, "--cr") == 0)
            snprintf(b->cr, sizeof(b->cr), "%s", v);
        else
            ok = false;
        if (!ok) {
            s_usage(stderr);
            free(b);
            return 2;
        }
        i++;
    }
    if (b->writes > b->pods) {
        fprintf(stderr, "bench-kubesim: --writes must not exceed --pods\n");
        free(b);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, s_on_fatal_signal);
    signal(SIGTERM, s_on_fatal_signal);
    signal(SIGHUP, s_on_fatal_signal);
    atexit(s_kill_child_now);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    os_t os = {0};
    rates_t http_r[BENCH_RUNS_MAX] = {{0}};
    rates_t os_r[BENCH_RUNS_MAX] = {{0}};
    double os_rss[BENCH_RUNS_MAX] = {0};
    mem_t mem = {0};
    size_t done = 0;
    double t_start = s_now();
    snprintf(b->dir, sizeof(b->dir), "/tmp/rf-bench-kubesim-XXXXXX");
    if (s_default_paths(b) < 0 || !mkdtemp(b->dir)) {
        fprintf(stderr, "bench-kubesim: cannot set up paths\n");
        b->dir[0] = '\0';
        goto out;
    }
    memcpy(s_tmpdir, b->dir, sizeof(s_tmpdir));
    if (access(b->kubesim, X_OK) != 0) {
        fprintf(stderr, "bench-kubesim: no kubesim at %s (build it, or pass --kubesim)\n",
                b->kubesim);
        goto out;
    }
    if (s_load_cr(b) < 0)
        goto out;
    http_config_t hc = {.max_total_connections = (long)(b->watchers + b->conc + 8),
                        .max_host_connections = (long)(b->watchers + b->conc + 8)};
    b->loop = loop_new();
    b->http = b->loop ? http_client_new(b->loop, &hc) : NULL;
    b->slots = calloc(b->conc, sizeof(*b->slots));
    b->watch = calloc(b->watchers, sizeof(*b->watch));
    if (!b->http || !b->slots || !b->watch || s_os_open(&os) < 0) {
        fprintf(stderr, "bench-kubesim: out of memory\n");
        goto out;
    }
    for (size_t k = 0; k < b->conc; k++)
        b->slots[k].b = b;
    printf("bench-kubesim: kubesim --simulate off (API server only) as a child process over HTTP "
           "on loopback,\n  against objstore in-process; %zu creates and %zu status writes per "
           "run, %zu watchers,\n  %zu requests in flight, %zu runs interleaved; shared 2-core "
           "machine: client and server share the CPUs\n",
           b->pods, b->writes, b->watchers, b->conc, b->runs);
    fflush(stdout);
    char load[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (!fgets(load, sizeof(load), lf))
            snprintf(load, sizeof(load), "?");
        fclose(lf);
        load[strcspn(load, "\n")] = '\0';
    }
    printf("  load average at start: %s\n", load);
    fflush(stdout);
    if (s_child_start(b) < 0)
        goto out;
    mem.rss0 = s_rss(s_child);
    if (s_register_crd(b) < 0)
        goto out;
    if ((b->mem_pods || b->mem_crs) && s_mem_phase(b, &mem) < 0)
        goto out;
    bool failed = false;
    double t_runs = s_now();
    for (size_t r = 0; r < b->runs && !failed; r++) {
        double per_run = r ? (s_now() - t_runs) / (double)r : 0;
        if (r && s_now() - t_start + per_run > BENCH_BUDGET_S) {
            printf("bench-kubesim: stopping after %zu runs to stay within %.0f s\n", r,
                   BENCH_BUDGET_S);
            break;
        }
        for (int k = 0; k < 2 && !failed; k++) {
            // Even runs measure HTTP first, odd runs in-process first.
            bool http_side = (k == 0) == (r % 2 == 0);
            if (http_side)
                failed = s_http_run(b, r, &http_r[r]) < 0;
            else
                failed = s_os_run(b, &os, r, &os_r[r], &os_rss[r]) < 0;
        }
        if (!failed)
            done = r + 1;
    }
    if (failed || done == 0) {
        fprintf(stderr, "bench-kubesim: a run failed\n");
        goto out;
    }
    if (s_child > 0 && waitpid(s_child, NULL, WNOHANG) != 0) {
        fprintf(stderr, "bench-kubesim: kubesim died during the runs\n");
        s_child = 0;
        goto out;
    }
    long long rss_end = s_rss(s_child);
    s_child_stop();
    printf("%-30s %12s %12s %6s %12s %12s %6s\n", "medians", "kubesim HTTP", "objstore", "ratio",
           "HTTP /CPU-s", "objst /CPU-s", "ratio");
    char name[80];
    s_print_row("pod create/s (no watchers)", http_r, os_r, done, offsetof(rates_t, creates),
                offsetof(rates_t, creates_cpu), BENCH_TARGET_WRITES);
    snprintf(name, sizeof(name), "status write/s (%zu watchers)", b->watchers);
    s_print_row(name, http_r, os_r, done, offsetof(rates_t, writes), offsetof(rates_t, writes_cpu),
                BENCH_TARGET_WRITES);
    snprintf(name, sizeof(name), "watch events/s (x%zu)", b->watchers);
    s_print_row(name, http_r, os_r, done, offsetof(rates_t, events), offsetof(rates_t, events_cpu),
                BENCH_TARGET_EVENTS);
    printf("every watcher received every event: yes (%zu of %zu each, %zu runs)\n", b->writes,
           b->writes, done);
    if (b->mem_pods || b->mem_crs) {
        const double mib = 1024.0 * 1024.0;
        printf("memory (kubesim VmRSS): fresh %.0f MiB, +CRD %.0f MiB, +%zu pods %.0f MiB, "
               "+%zu RayClusters %.0f MiB, after the runs %.0f MiB\n",
               (double)mem.rss0 / mib, (double)mem.rss_crd / mib, b->mem_pods,
               (double)mem.rss_pods / mib, b->mem_crs, (double)mem.rss_crs / mib,
               (double)rss_end / mib);
        if (b->mem_pods)
            printf("  per stored pod:  %7.0f B (kubesim; in-process objstore: %.0f B, median)  "
                   "loaded at %.0f creates/s\n",
                   (double)(mem.rss_pods - mem.rss_crd) / (double)b->mem_pods,
                   s_median(os_rss, done), mem.pod_rate);
        if (b->mem_crs)
            printf("  per RayCluster:  %7.0f B (sample CR, CRD schema applied)  loaded at "
                   "%.0f creates/s\n",
                   (double)(mem.rss_crs - mem.rss_pods) / (double)b->mem_crs, mem.cr_rate);
        printf("  the rate runs above ran against this loaded server (%zu pods + %zu CRs "
               "stored); memory phase %.1f s\n",
               b->mem_pods, b->mem_crs, mem.seconds);
    }
    printf("bench-kubesim: medians of %zu runs, %.1f s in total\n", done, s_now() - t_start);
    rc = 0;
out:
    s_child_stop();
    http_client_destroy(&b->http);
    loop_destroy(&b->loop);
    objstore_destroy(&os.s);
    json_decref(b->cr_obj);
    free(b->slots);
    free(b->watch);
    s_tmpdir[0] = '\0';
    if (b->dir[0])
        rmdir(b->dir);
    free(b);
    curl_global_cleanup();
    return rc;
}
