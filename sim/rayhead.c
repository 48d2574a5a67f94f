/*
 * rayhead: the simulated Ray head. See rayhead.h for the contract and the
 * scripting syntax.
 *
 * Layout of this file: small helpers (ids, text replies, Python-style reprs),
 * the job state machine and the Jobs routes, the Serve model and its routes,
 * the health routes, then the dispatcher and the self-test. All state
 * transitions are computed from timestamps fixed when a job or app is created,
 * so any observation order yields the same history.
 */
#include "rayhead.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "rftime.h"

#define CT_JSON "application/json"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_HEALTH "application/text" /* what Ray's health handlers declare */

#define JOB_ID_ALPHABET "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz123456789"
#define JOB_SUBMIT_ID_LEN 16 /* random chars after "raysubmit_" */
#define NODE_ID_HEX_LEN 56 /* a Ray NodeID in hex */
#define ACTOR_ID_HEX_LEN 32 /* a Ray ActorID in hex */
#define REPLICA_SUFFIX_LEN 8 /* random chars of a replica id */
#define FAKE_PID_BASE 1000 /* first simulated driver/replica pid */
#define FAKE_COMMIT "9f2cdb2d5b1b3c1de0ad4e2c4ce6b1f1a9d2a7e0"
#define SCRIPT_MARKER "FAKE:"
#define SCRIPT_MAX_MS                                                                              \
    1000000000000LL /* scripted delays are clamped to this                                         \
                     */
#define FAKE_MISSING_PREFIX "fake_missing"
#define FAKE_CRASH_PREFIX "fake_crash"
#define DEFAULT_APP_NAME "default"
#define SERVE_HTTP_PORT 8000
#define SERVE_GRPC_PORT 9000
#define SERVE_KEEP_ALIVE_S 5

/* ------------------------------------------------------------------------------------------
 */
/* Types */

typedef enum { JOB_PENDING, JOB_RUNNING, JOB_STOPPED, JOB_SUCCEEDED, JOB_FAILED } job_status_t;

static const char *const s_job_status_names[] = {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED",
                                                 "FAILED"};

typedef enum { EV_NONE, EV_RUN, EV_EXIT, EV_ENVFAIL, EV_TIMEOUT, EV_STOP } job_event_t;

typedef struct {
    char *submission_id; /* the submission id (never NULL) */
    char *job_id; /* driver JobID hex, NULL until RUNNING */
    char *entrypoint; /* as submitted */
    json_t *metadata; /* owned object, or NULL when not sent */
    json_t *runtime_env; /* owned object, or NULL when not sent */
    job_status_t status; /* current status */
    char *message; /* current message (owned) */
    const char *error_type; /* static string or NULL */
    int64_t start_time; /* Unix ms of the submission */
    int64_t end_time; /* Unix ms of the terminal transition, -1 unset */
    int64_t running_at; /* Unix ms of PENDING -> RUNNING, -1 if never */
    int64_t stop_at; /* Unix ms at which a requested stop lands, -1 none */
    bool has_exit_code; /* driver_exit_code is set */
    int exit_code; /* driver_exit_code when has_exit_code */
    int pid; /* simulated driver pid (set on RUNNING) */
    int64_t pending_ms; /* scripted PENDING duration */
    int64_t run_ms; /* scripted RUNNING duration */
    int script_exit; /* scripted exit code */
    bool envfail; /* scripted runtime_env failure */
    bool nostart; /* scripted supervisor that never starts */
    char *log; /* scripted program output (owned), NULL for none */
} job_t;

typedef struct {
    char *name; /* deployment name */
    int replicas; /* target_num_replicas */
    bool crash; /* replicas fail to start */
    bool unhealthy; /* admin flip: failing health checks */
    json_t *config; /* deployment_config to report (owned object) */
    char suffix[REPLICA_SUFFIX_LEN + 1]; /* random part of replica ids */
} dep_t;

typedef struct {
    char *name; /* application name */
    json_t *route_prefix; /* JSON string or null: the route once built (owned) */
    json_t *config; /* deployed_app_config, NULL for imperative apps (owned) */
    bool imperative; /* deployed with serve.run, not through the REST API */
    int64_t deployed_at; /* Unix ms of the last PUT touching it */
    int64_t build_done_at; /* Unix ms at which the build task finishes */
    int64_t update_done_at; /* Unix ms at which deployments turn HEALTHY */
    int64_t deleting_at; /* Unix ms at which DELETING started, -1 if not deleting */
    bool served; /* it has run: its replicas keep serving while a later PUT redeploys it, as
                  * Serve's proxy routes to the running replicas during an update */
    char *missing_module; /* module that fails to import (owned), NULL if it
                             imports */
    dep_t *deps; /* deployments */
    size_t ndeps; /* number of deployments */
} app_t;

struct rayhead {
    rayhead_options_t opts; /* settings; ray_version/head_ip point at the copies below */
    char *ray_version; /* owned copy */
    char *head_ip; /* owned copy */
    char *cluster; /* owned copy, "" = not named */
    int64_t start_ms; /* start of the current process lifetime */
    bool gcs_down; /* phase (d) */
    bool serve_draining; /* proxy drain switch */
    bool serve_controller_down; /* Serve GET fault */
    uint64_t rng; /* xorshift state */
    char node_id[NODE_ID_HEX_LEN + 1]; /* head node id of this lifetime */
    char actor_id[ACTOR_ID_HEX_LEN + 1]; /* Serve controller actor id */
    char session[64]; /* session name of this lifetime */
    job_t **jobs; /* jobs in submission order */
    size_t njobs; /* jobs used */
    size_t cap_jobs; /* jobs allocated */
    uint32_t next_driver; /* next driver JobID number */
    int next_pid; /* next simulated pid */
    bool serve_running; /* a Serve controller exists */
    int64_t serve_shutdown_at; /* Unix ms at which a DELETE finishes, -1 none */
    json_t *serve_top; /* top-level options of the last PUT (owned) */
    app_t *apps[RAYHEAD_MAX_APPS]; /* applications, in creation order */
    size_t napps; /* applications used */
    rayhead_submit_count_t submits; /* POST /api/jobs/ answered, every lifetime */
    json_t *submit_ids; /* submission id -> [attempts, accepted], every lifetime (owned) */
    rayhead_request_count_t requests; /* requests answered, every lifetime */
};

/* ------------------------------------------------------------------------------------------
 */
/* Small helpers */

static char *s_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static char *s_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static uint64_t s_rand(rayhead_t *h)
{
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void s_rand_hex(rayhead_t *h, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++)
        out[i] = hex[s_rand(h) % 16];
    out[n] = '\0';
}

static void s_rand_alnum(rayhead_t *h, char *out, size_t n)
{
    static const char alpha[] = JOB_ID_ALPHABET;
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[s_rand(h) % (sizeof(alpha) - 1)];
    out[n] = '\0';
}

static bool s_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int s_reply_text(rayhead_response_t *out, int status, const char *text)
{
    out->status = status;
    out->content_type = CT_TEXT;
    buf_reset(&out->body);
    return buf_puts(&out->body, text);
}

/* Takes `root` (stolen, may be NULL meaning out of memory). */
static int s_reply_json(rayhead_response_t *out, int status, json_t *root)
{
    if (!root)
        return ERR_NOMEM;
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!s)
        return ERR_NOMEM;
    out->status = status;
    out->content_type = CT_JSON;
    buf_reset(&out->body);
    int rc = buf_puts(&out->body, s);
    free(s);
    return rc;
}

/* Sets `key` to `v` (stolen); records a failure in *bad. */
static void s_set(json_t *o, const char *key, json_t *v, bool *bad)
{
    if (!o || !v || json_object_set_new(o, key, v) != 0)
        *bad = true;
}

static json_t *s_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Appends a Python repr() of a str: single quotes unless the text holds ' and
 * no ". */
static int s_pyrepr(buf_t *b, const char *s)
{
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    int rc = buf_append(b, &q, 1);
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == q || *p == '\\')
            rc = buf_append(b, "\\", 1);
        if (rc == 0 && *p == '\n')
            rc = buf_puts(b, "\\n");
        else if (rc == 0)
            rc = buf_append(b, p, 1);
    }
    if (rc == 0)
        rc = buf_append(b, &q, 1);
    return rc;
}

/* The Python type name Ray's validators print for a JSON value. */
static const char *s_pytype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "<class 'dict'>";
    case JSON_ARRAY:
        return "<class 'list'>";
    case JSON_STRING:
        return "<class 'str'>";
    case JSON_INTEGER:
        return "<class 'int'>";
    case JSON_REAL:
        return "<class 'float'>";
    case JSON_TRUE:
    case JSON_FALSE:
        return "<class 'bool'>";
    default:
        return "<class 'NoneType'>";
    }
}

/* A text reply shaped like a Python traceback ending in `exc` (aiohttp handlers
 * send these). */
static int s_reply_traceback(rayhead_response_t *out, int status, const char *prefix,
                             const char *file, const char *exc)
{
    out->status = status;
    out->content_type = CT_TEXT;
    buf_reset(&out->body);
    return buf_printf(&out->body,
                      "%sTraceback (most recent call last):\n"
                      "  File \"/home/ray/anaconda3/lib/python3.11/site-packages/ray/dashboard/"
                      "modules/%s\", line 1, in handler\n"
                      "    raise\n%s\n",
                      prefix ? prefix : "", file, exc);
}

/* Decodes %XX escapes of a path segment [s, s+n). Returns an owned string or
 * NULL (no memory). */
static char *s_url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            char hx[3] = {s[i + 1], s[i + 2], '\0'};
            char *end = NULL;
            long v = strtol(hx, &end, 16);
            if (end == hx + 2) {
                out[o++] = (char)v;
                i += 2;
                continue;
            }
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

/* Looks `key` up in query string `q` ("a=1&b=2", may be NULL). Returns an owned
 * value, NULL if absent; *nomem is set when allocation failed. */
static char *s_query_get(const char *q, const char *key, bool *nomem)
{
    size_t klen = strlen(key);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        if (n > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
            char *v = s_url_decode(q + klen + 1, n - klen - 1);
            if (!v)
                *nomem = true;
            return v;
        }
        if (n == klen && strncmp(q, key, klen) == 0)
            return s_strdup("");
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 */
/* Lifecycle */

typedef enum { PHASE_CLOSED, PHASE_STARTING, PHASE_HEALTHY, PHASE_GCS_DOWN } phase_t;

static phase_t s_phase(const rayhead_t *h, int64_t now)
{
    if (now < h->start_ms + h->opts.ports_open_ms)
        return PHASE_CLOSED;
    if (now < h->start_ms + h->opts.healthy_ms)
        return PHASE_STARTING;
    return h->gcs_down ? PHASE_GCS_DOWN : PHASE_HEALTHY;
}

static void s_new_lifetime(rayhead_t *h, int64_t now)
{
    h->start_ms = now;
    s_rand_hex(h, h->node_id, NODE_ID_HEX_LEN);
    s_rand_hex(h, h->actor_id, ACTOR_ID_HEX_LEN);
    /* Ray's session date is the RFC 3339 one with '_' for 'T', '-' for ':' and no 'Z' */
    char date[RFTIME_BUF] = "1970-01-01_00-00-00";
    if (rftime_format(now, RFTIME_SEC, date, sizeof(date)) == 0) {
        for (char *c = date; *c; c++)
            *c = *c == 'T' ? '_' : *c == ':' ? '-' : *c;
        date[RFTIME_SEC_LEN - 1] = '\0';
    }
    snprintf(h->session, sizeof(h->session), "session_%s_%06d_1", date, (int)((now % 1000) * 1000));
    h->next_driver = 1;
}

void rayhead_options_default(rayhead_options_t *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->start_ms = 0;
    opts->ports_open_ms = RAYHEAD_DEFAULT_PORTS_OPEN_MS;
    opts->healthy_ms = RAYHEAD_DEFAULT_HEALTHY_MS;
    opts->job_pending_ms = RAYHEAD_DEFAULT_JOB_PENDING_MS;
    opts->job_run_ms = RAYHEAD_DEFAULT_JOB_RUN_MS;
    opts->job_stop_ms = RAYHEAD_DEFAULT_JOB_STOP_MS;
    opts->job_start_timeout_ms = RAYHEAD_DEFAULT_JOB_START_TIMEOUT_MS;
    opts->serve_build_ms = RAYHEAD_DEFAULT_SERVE_BUILD_MS;
    opts->serve_update_ms = RAYHEAD_DEFAULT_SERVE_UPDATE_MS;
    opts->serve_reapply_ms = RAYHEAD_DEFAULT_SERVE_REAPPLY_MS;
    opts->serve_delete_ms = RAYHEAD_DEFAULT_SERVE_DELETE_MS;
    opts->ray_version = RAYHEAD_DEFAULT_RAY_VERSION;
    opts->head_ip = RAYHEAD_DEFAULT_HEAD_IP;
    opts->strict = false;
    opts->duplicate_status = RAYHEAD_DEFAULT_DUPLICATE_STATUS;
    opts->stop_ignored = false;
    opts->seed = 1;
}

static void s_job_free(job_t **jp)
{
    job_t *j = *jp;
    if (!j)
        return;
    free(j->submission_id);
    free(j->job_id);
    free(j->entrypoint);
    json_decref(j->metadata);
    json_decref(j->runtime_env);
    free(j->message);
    free(j->log);
    free(j);
    *jp = NULL;
}

static void s_app_free(app_t **ap)
{
    app_t *a = *ap;
    if (!a)
        return;
    free(a->name);
    json_decref(a->route_prefix);
    json_decref(a->config);
    free(a->missing_module);
    for (size_t i = 0; i < a->ndeps; i++) {
        free(a->deps[i].name);
        json_decref(a->deps[i].config);
    }
    free(a->deps);
    free(a);
    *ap = NULL;
}

static void s_wipe(rayhead_t *h)
{
    for (size_t i = 0; i < h->njobs; i++)
        s_job_free(&h->jobs[i]);
    h->njobs = 0;
    for (size_t i = 0; i < h->napps; i++)
        s_app_free(&h->apps[i]);
    h->napps = 0;
    h->serve_running = false;
    h->serve_shutdown_at = -1;
    json_decref(h->serve_top);
    h->serve_top = NULL;
}

rayhead_t *rayhead_new(const rayhead_options_t *opts)
{
    if (!opts || opts->ports_open_ms < 0 || opts->healthy_ms < 0 || opts->job_pending_ms < 0 ||
        opts->job_run_ms < 0 || opts->job_stop_ms < 0 || opts->job_start_timeout_ms < 0 ||
        opts->serve_build_ms < 0 || opts->serve_update_ms < 0 || opts->serve_reapply_ms < 0 ||
        opts->serve_delete_ms < 0 ||
        (opts->duplicate_status != 400 && opts->duplicate_status != 500))
        return NULL;
    rayhead_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->opts = *opts;
    h->ray_version = s_strdup(opts->ray_version ? opts->ray_version : RAYHEAD_DEFAULT_RAY_VERSION);
    h->head_ip = s_strdup(opts->head_ip ? opts->head_ip : RAYHEAD_DEFAULT_HEAD_IP);
    h->cluster = s_strdup(opts->cluster ? opts->cluster : "");
    if (!h->ray_version || !h->head_ip || !h->cluster)
        goto fail;
    h->opts.ray_version = h->ray_version;
    h->opts.head_ip = h->head_ip;
    h->opts.cluster = h->cluster;
    h->rng = opts->seed ? opts->seed : 1;
    h->next_pid = FAKE_PID_BASE;
    h->serve_shutdown_at = -1;
    h->submit_ids = json_object();
    if (!h->submit_ids)
        goto fail;
    s_new_lifetime(h, opts->start_ms);
    return h;
fail:
    rayhead_destroy(&h);
    return NULL;
}

void rayhead_destroy(rayhead_t **head_p)
{
    if (!head_p || !*head_p)
        return;
    rayhead_t *h = *head_p;
    s_wipe(h);
    free(h->jobs);
    json_decref(h->submit_ids);
    free(h->ray_version);
    free(h->head_ip);
    free(h->cluster);
    free(h);
    *head_p = NULL;
}

void rayhead_response_free(rayhead_response_t *resp)
{
    if (resp)
        buf_free(&resp->body);
}

void rayhead_restart(rayhead_t *head, int64_t now_ms)
{
    if (!head)
        return;
    s_wipe(head);
    head->gcs_down = false;
    s_new_lifetime(head, now_ms);
}

void rayhead_set_gcs_down(rayhead_t *head, bool down)
{
    if (head)
        head->gcs_down = down;
}

void rayhead_set_serve_draining(rayhead_t *head, bool draining)
{
    if (head)
        head->serve_draining = draining;
}

void rayhead_set_serve_controller_down(rayhead_t *head, bool down)
{
    if (head)
        head->serve_controller_down = down;
}

size_t rayhead_job_count(const rayhead_t *head)
{
    return head ? head->njobs : 0;
}

size_t rayhead_app_count(const rayhead_t *head)
{
    return head ? head->napps : 0;
}

int rayhead_refused_status(const char *ip, int port, buf_t *out)
{
    if (!ip || !out)
        return ERR_INVAL;
    return buf_printf(out,
                      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                      "\"status\":\"Failure\",\"message\":\"error trying to reach service: "
                      "dial tcp %s:%d: connect: connection refused\","
                      "\"reason\":\"ServiceUnavailable\",\"code\":503}",
                      ip, port);
}

/* ------------------------------------------------------------------------------------------
 */
/* Jobs: state machine */

static bool s_terminal(job_status_t s)
{
    return s == JOB_STOPPED || s == JOB_SUCCEEDED || s == JOB_FAILED;
}

static int64_t s_secs_to_ms(const char *v)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || d != d || d < 0)
        return -1;
    double ms = d * 1000.0;
    return ms > (double)SCRIPT_MAX_MS ? SCRIPT_MAX_MS : (int64_t)ms;
}

/* Reads the FAKE: marker of the entrypoint into the job's script fields.
 * Returns 0 or ERR_NOMEM. Unknown keys and bad values are ignored (the real
 * command would just run). */
static int s_job_script(job_t *j)
{
    const char *m = strstr(j->entrypoint, SCRIPT_MARKER);
    if (!m)
        return 0;
    const char *p = m + strlen(SCRIPT_MARKER);
    size_t wlen = strcspn(p, " \t\r\n");
    const char *end = p + wlen;
    while (p < end) {
        if (strncmp(p, "log=", 4) == 0) {
            free(j->log);
            size_t n = (size_t)(end - p - 4);
            if (n > RAYHEAD_LOG_MAX)
                n = RAYHEAD_LOG_MAX;
            j->log = s_strndup(p + 4, n);
            if (!j->log)
                return ERR_NOMEM;
            for (char *c = j->log; *c; c++)
                if (*c == ';')
                    *c = '\n';
            return 0;
        }
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        char item[64];
        if (n < sizeof(item)) {
            memcpy(item, p, n);
            item[n] = '\0';
            char *eq = strchr(item, '=');
            const char *val = eq ? eq + 1 : "";
            if (eq)
                *eq = '\0';
            if (strcmp(item, "pending") == 0 && s_secs_to_ms(val) >= 0)
                j->pending_ms = s_secs_to_ms(val);
            else if ((strcmp(item, "sleep") == 0 || strcmp(item, "run") == 0) &&
                     s_secs_to_ms(val) >= 0)
                j->run_ms = s_secs_to_ms(val);
            else if (strcmp(item, "exit") == 0)
                j->script_exit = (int)strtol(val, NULL, 10);
            else if (strcmp(item, "envfail") == 0)
                j->envfail = true;
            else if (strcmp(item, "nostart") == 0)
                j->nostart = true;
        }
        p += n + (comma ? 1 : 0);
    }
    return 0;
}

static int s_job_set_message(job_t *j, const char *msg)
{
    char *m = s_strdup(msg);
    if (!m)
        return ERR_NOMEM;
    free(j->message);
    j->message = m;
    return 0;
}

static void s_job_advance(rayhead_t *h, job_t *j, int64_t now)
{
    for (;;) {
        if (s_terminal(j->status))
            return;
        int64_t t = INT64_MAX;
        job_event_t ev = EV_NONE;
        if (j->status == JOB_PENDING) {
            if (!j->nostart) {
                t = j->start_time + j->pending_ms;
                ev = j->envfail ? EV_ENVFAIL : EV_RUN;
            }
            int64_t timeout = j->start_time + h->opts.job_start_timeout_ms;
            if (timeout < t) {
                t = timeout;
                ev = EV_TIMEOUT;
            }
        } else {
            t = j->running_at + j->run_ms;
            ev = EV_EXIT;
        }
        if (j->stop_at >= 0 && j->stop_at < t) {
            t = j->stop_at;
            ev = EV_STOP;
        }
        if (t > now || ev == EV_NONE)
            return;
        buf_t msg;
        buf_init(&msg, RAYHEAD_LOG_TAIL_MAX + 1024);
        switch (ev) {
        case EV_RUN: {
            uint32_t n = h->next_driver++;
            char id[9];
            snprintf(id, sizeof(id), "%02x%02x%02x%02x", n & 0xffu, (n >> 8) & 0xffu,
                     (n >> 16) & 0xffu, (n >> 24) & 0xffu);
            free(j->job_id);
            j->job_id = s_strdup(id);
            j->pid = h->next_pid++;
            j->status = JOB_RUNNING;
            j->running_at = t;
            buf_puts(&msg, "Job is currently running.");
            break;
        }
        case EV_EXIT:
            j->end_time = t;
            j->has_exit_code = true;
            j->exit_code = j->script_exit;
            if (j->script_exit == 0) {
                j->status = JOB_SUCCEEDED;
                buf_puts(&msg, "Job finished successfully.");
            } else {
                j->status = JOB_FAILED;
                j->error_type = "JOB_ENTRYPOINT_COMMAND_ERROR";
                if (j->log && j->log[0]) {
                    size_t n = strlen(j->log);
                    const char *tail =
                        n > RAYHEAD_LOG_TAIL_MAX ? j->log + n - RAYHEAD_LOG_TAIL_MAX : j->log;
                    buf_printf(&msg,
                               "Job entrypoint command failed with exit code %d, last available "
                               "logs (truncated to 20,000 chars):\n%s",
                               j->script_exit, tail);
                } else {
                    buf_printf(&msg,
                               "Job entrypoint command failed with exit code %d. No logs "
                               "available.",
                               j->script_exit);
                }
            }
            break;
        case EV_ENVFAIL:
            j->status = JOB_FAILED;
            j->end_time = t;
            j->error_type = "RUNTIME_ENV_SETUP_FAILURE";
            buf_puts(&msg, "runtime_env setup failed: Failed to set up runtime environment.\n"
                           "ERROR: Could not find a version that satisfies the requirement "
                           "(simulated runtime_env failure)");
            break;
        case EV_TIMEOUT:
            j->status = JOB_FAILED;
            j->end_time = t;
            j->error_type = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT";
            buf_printf(&msg,
                       "Job supervisor actor failed to start within %.1f seconds. "
                       "This timeout "
                       "can be configured by setting the environment variable "
                       "RAY_JOB_START_TIMEOUT_SECONDS.",
                       (double)h->opts.job_start_timeout_ms / 1000.0);
            break;
        case EV_STOP:
            j->status = JOB_STOPPED;
            j->end_time = t;
            buf_puts(&msg, "Job was intentionally stopped.");
            break;
        case EV_NONE:
            break;
        }
        // On out of memory the old message stays: the status is still right.
        if (msg.len > 0)
            s_job_set_message(j, buf_str(&msg));
        buf_free(&msg);
    }
}

static job_t *s_job_find(rayhead_t *h, const char *id, int64_t now)
{
    for (size_t i = 0; i < h->njobs; i++) {
        job_t *j = h->jobs[i];
        s_job_advance(h, j, now);
        if (strcmp(j->submission_id, id) == 0 || (j->job_id && strcmp(j->job_id, id) == 0))
            return j;
    }
    return NULL;
}

static bool s_job_ran(const job_t *j)
{
    return j->running_at >= 0;
}

static json_t *s_job_json(const rayhead_t *h, const job_t *j)
{
    bool bad = false;
    json_t *o = json_object();
    s_set(o, "type", json_string("SUBMISSION"), &bad);
    s_set(o, "job_id", s_str_or_null(j->job_id), &bad);
    s_set(o, "submission_id", json_string(j->submission_id), &bad);
    if (j->job_id) {
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", j->pid);
        s_set(o, "driver_info",
              json_pack("{s:s, s:s, s:s}", "id", j->job_id, "node_ip_address", h->head_ip, "pid",
                        pid),
              &bad);
    } else {
        s_set(o, "driver_info", json_null(), &bad);
    }
    s_set(o, "status", json_string(s_job_status_names[j->status]), &bad);
    s_set(o, "entrypoint", json_string(j->entrypoint), &bad);
    s_set(o, "message", s_str_or_null(j->message), &bad);
    s_set(o, "error_type", s_str_or_null(j->error_type), &bad);
    s_set(o, "start_time", json_integer(j->start_time), &bad);
    s_set(o, "end_time", j->end_time >= 0 ? json_integer(j->end_time) : json_null(), &bad);
    s_set(o, "metadata", j->metadata ? json_deep_copy(j->metadata) : json_null(), &bad);
    s_set(o, "runtime_env", j->runtime_env ? json_deep_copy(j->runtime_env) : json_null(), &bad);
    if (s_job_ran(j)) {
        char addr[128];
        snprintf(addr, sizeof(addr), "http://%s:%d", h->head_ip, RAYHEAD_PORT_AGENT);
        s_set(o, "driver_agent_http_address", json_string(addr), &bad);
        s_set(o, "driver_node_id", json_string(h->node_id), &bad);
    } else {
        s_set(o, "driver_agent_http_address", json_null(), &bad);
        s_set(o, "driver_node_id", json_null(), &bad);
    }
    s_set(o, "driver_exit_code", j->has_exit_code ? json_integer(j->exit_code) : json_null(), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------------------------------
 */
/* Jobs: routes */

static int s_not_exist(rayhead_response_t *out, const char *id)
{
    out->status = 404;
    out->content_type = CT_TEXT;
    buf_reset(&out->body);
    return buf_printf(&out->body, "Job %s does not exist", id);
}

/* Checks one field of a submit request. Writes the TypeError text into `err` on
 * failure. */
static bool s_submit_field_ok(const char *key, const json_t *v, bool strict, buf_t *err,
                              bool *known)
{
    *known = true;
    if (strcmp(key, "entrypoint") == 0 || strcmp(key, "submission_id") == 0 ||
        strcmp(key, "job_id") == 0) {
        if (json_is_string(v))
            return true;
        buf_printf(err, "TypeError: %s must be a string, got %s", key, s_pytype(v));
        return false;
    }
    if (strcmp(key, "runtime_env") == 0 || strcmp(key, "retry_policy") == 0) {
        if (json_is_object(v))
            return true;
        buf_printf(err, "TypeError: %s must be a dict, got %s", key, s_pytype(v));
        return false;
    }
    if (strcmp(key, "metadata") == 0 || strcmp(key, "entrypoint_label_selector") == 0) {
        if (!json_is_object(v)) {
            buf_printf(err, "TypeError: %s must be a dict, got %s", key, s_pytype(v));
            return false;
        }
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (!json_is_string(x)) {
                buf_printf(err, "TypeError: %s values must be strings, got %s", key, s_pytype(x));
                return false;
            }
        }
        return true;
    }
    if (strcmp(key, "entrypoint_num_cpus") == 0 || strcmp(key, "entrypoint_num_gpus") == 0) {
        if (json_is_number(v))
            return true;
        buf_printf(err, "TypeError: %s must be a number, got %s", key, s_pytype(v));
        return false;
    }
    if (strcmp(key, "entrypoint_memory") == 0) {
        if (json_is_integer(v))
            return true;
        buf_printf(err, "TypeError: %s must be an integer, got %s", key, s_pytype(v));
        return false;
    }
    if (strcmp(key, "entrypoint_resources") == 0) {
        if (!json_is_object(v)) {
            buf_printf(err, "TypeError: %s must be a dict, got %s", key, s_pytype(v));
            return false;
        }
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (!json_is_number(x)) {
                buf_printf(err, "TypeError: %s values must be numbers, got %s", key, s_pytype(x));
                return false;
            }
        }
        return true;
    }
    *known = false;
    if (!strict)
        return true;
    buf_printf(err, "TypeError: __init__() got an unexpected keyword argument '%s'", key);
    return false;
}

static bool s_truthy(const json_t *v)
{
    if (!v)
        return false;
    if (json_is_number(v))
        return json_number_value(v) != 0.0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    return json_is_true(v) || (json_is_string(v) && json_string_length(v) > 0);
}

/* True when runtime_env.pip (a list, or {"packages": [...]}) names a
 * fake_missing package. */
static bool s_env_unsatisfiable(const json_t *env)
{
    const json_t *pip = json_object_get(env, "pip");
    if (json_is_object(pip))
        pip = json_object_get(pip, "packages");
    size_t i;
    json_t *p;
    json_array_foreach(pip, i, p)
    {
        if (json_is_string(p) && s_has_prefix(json_string_value(p), FAKE_MISSING_PREFIX))
            return true;
    }
    return false;
}

static int s_jobs_submit(rayhead_t *h, int64_t now, const char *body, size_t len,
                         rayhead_response_t *out)
{
    json_error_t jerr;
    json_t *req = json_loadb(body ? body : "", len, 0, &jerr);
    buf_t err;
    buf_init(&err, 4096);
    job_t *j = NULL;
    int rc = 0;
    if (!req) {
        buf_printf(&err, "json.decoder.JSONDecodeError: %s: line %d column %d", jerr.text,
                   jerr.line, jerr.column);
        rc = s_reply_traceback(out, 500, NULL, "job/job_head.py", buf_str(&err));
        goto done;
    }
    if (!json_is_object(req)) {
        buf_printf(&err, "AttributeError: '%s' object has no attribute 'items'",
                   json_is_array(req) ? "list" : "str");
        rc = s_reply_traceback(out, 400, NULL, "job/job_head.py", buf_str(&err));
        goto done;
    }
    // Ray drops every null-valued key, then validates strictly.
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(req, tmp, key, v)
    {
        if (json_is_null(v))
            json_object_del(req, key);
    }
    bool known = false;
    json_object_foreach(req, key, v)
    {
        if (!s_submit_field_ok(key, v, h->opts.strict, &err, &known)) {
            rc = s_reply_traceback(out, 400, NULL, "job/job_head.py", buf_str(&err));
            goto done;
        }
    }
    const char *entrypoint = json_string_value(json_object_get(req, "entrypoint"));
    if (!entrypoint) {
        rc = s_reply_traceback(out, 400, NULL, "job/job_head.py",
                               "TypeError: __init__() missing 1 required positional argument: "
                               "'entrypoint'");
        goto done;
    }
    const char *sid = json_string_value(json_object_get(req, "submission_id"));
    if (!sid)
        sid = json_string_value(json_object_get(req, "job_id"));
    char gen[sizeof("raysubmit_") + JOB_SUBMIT_ID_LEN];
    if (!sid) {
        char rnd[JOB_SUBMIT_ID_LEN + 1];
        s_rand_alnum(h, rnd, JOB_SUBMIT_ID_LEN);
        snprintf(gen, sizeof(gen), "raysubmit_%s", rnd);
        sid = gen;
    }
    for (size_t i = 0; i < h->njobs; i++) {
        if (strcmp(h->jobs[i]->submission_id, sid) == 0) {
            buf_printf(&err,
                       "ValueError: Job with submission_id %s already exists. Please use a "
                       "different submission_id.",
                       sid);
            if (h->opts.duplicate_status == 500)
                rc = s_reply_traceback(out, 500,
                                       "Request failed with status code 400: ", "job/job_agent.py",
                                       buf_str(&err));
            else
                rc = s_reply_traceback(out, 400, NULL, "job/job_head.py", buf_str(&err));
            goto done;
        }
    }
    if (h->njobs >= RAYHEAD_MAX_JOBS) {
        rc = s_reply_text(out, 500,
                          "Failed to submit job: the simulated head keeps at most "
                          "10000 jobs.");
        goto done;
    }
    if (h->njobs == h->cap_jobs) {
        size_t cap = h->cap_jobs ? h->cap_jobs * 2 : 16;
        job_t **jobs = realloc(h->jobs, cap * sizeof(*jobs));
        if (!jobs) {
            rc = ERR_NOMEM;
            goto done;
        }
        h->jobs = jobs;
        h->cap_jobs = cap;
    }
    j = calloc(1, sizeof(*j));
    if (!j) {
        rc = ERR_NOMEM;
        goto done;
    }
    j->status = JOB_PENDING;
    j->start_time = now;
    j->end_time = -1;
    j->running_at = -1;
    j->stop_at = -1;
    j->pending_ms = h->opts.job_pending_ms;
    j->run_ms = h->opts.job_run_ms;
    j->submission_id = s_strdup(sid);
    j->entrypoint = s_strdup(entrypoint);
    if (!j->submission_id || !j->entrypoint) {
        rc = ERR_NOMEM;
        goto done;
    }
    json_t *md = json_object_get(req, "metadata");
    json_t *env = json_object_get(req, "runtime_env");
    j->metadata = md ? json_deep_copy(md) : NULL;
    j->runtime_env = env ? json_deep_copy(env) : NULL;
    if ((md && !j->metadata) || (env && !j->runtime_env)) {
        rc = ERR_NOMEM;
        goto done;
    }
    rc = s_job_script(j);
    if (rc != 0)
        goto done;
    if (env && s_env_unsatisfiable(env))
        j->envfail = true;
    buf_t msg;
    buf_init(&msg, 1024);
    rc = buf_puts(&msg, "Job has not started yet.");
    if (rc == 0 && (s_truthy(json_object_get(req, "entrypoint_num_cpus")) ||
                    s_truthy(json_object_get(req, "entrypoint_num_gpus")) ||
                    s_truthy(json_object_get(req, "entrypoint_memory")) ||
                    s_truthy(json_object_get(req, "entrypoint_resources"))))
        rc = buf_puts(&msg, " It may be waiting for resources (CPUs, GPUs, memory, custom "
                            "resources) to become available.");
    if (rc == 0 && s_truthy(env))
        rc = buf_puts(&msg, " It may be waiting for the runtime environment to be set up.");
    if (rc == 0)
        rc = s_job_set_message(j, buf_str(&msg));
    buf_free(&msg);
    if (rc != 0)
        goto done;
    h->jobs[h->njobs++] = j;
    j = NULL;
    rc = s_reply_json(out, 200, json_pack("{s:s, s:s}", "job_id", sid, "submission_id", sid));
done:
    s_job_free(&j);
    json_decref(req);
    buf_free(&err);
    return rc;
}

static int s_jobs_list(rayhead_t *h, int64_t now, rayhead_response_t *out)
{
    json_t *arr = json_array();
    if (!arr)
        return ERR_NOMEM;
    for (size_t i = 0; i < h->njobs; i++) {
        s_job_advance(h, h->jobs[i], now);
        if (json_array_append_new(arr, s_job_json(h, h->jobs[i])) != 0) {
            json_decref(arr);
            return ERR_NOMEM;
        }
    }
    return s_reply_json(out, 200, arr);
}

static int s_jobs_logs(const job_t *j, rayhead_response_t *out)
{
    buf_t logs;
    buf_init(&logs, RAYHEAD_LOG_MAX + 4096);
    int rc = 0;
    if (s_job_ran(j)) {
        rc = buf_printf(&logs, "Running entrypoint for job %s: %s\n", j->submission_id,
                        j->entrypoint);
        if (rc == 0 && j->log && j->log[0]) {
            rc = buf_puts(&logs, j->log);
            if (rc == 0 && j->log[strlen(j->log) - 1] != '\n')
                rc = buf_puts(&logs, "\n");
        }
    }
    if (rc == 0)
        rc = s_reply_json(out, 200, json_pack("{s:s}", "logs", buf_str(&logs)));
    buf_free(&logs);
    return rc;
}

static int s_jobs_delete(rayhead_t *h, job_t *j, const char *id, rayhead_response_t *out)
{
    if (!s_terminal(j->status)) {
        buf_t e;
        buf_init(&e, 1024);
        int rc = buf_printf(&e,
                            "RuntimeError: Attempted to delete job '%s', but it is in a "
                            "non-terminal state %s.",
                            j->submission_id, s_job_status_names[j->status]);
        if (rc == 0)
            rc = s_reply_traceback(
                out, 500, "Request failed with status code 500: ", "job/job_agent.py", buf_str(&e));
        buf_free(&e);
        return rc;
    }
    for (size_t i = 0; i < h->njobs; i++) {
        if (h->jobs[i] == j) {
            s_job_free(&h->jobs[i]);
            memmove(&h->jobs[i], &h->jobs[i + 1], (h->njobs - i - 1) * sizeof(*h->jobs));
            h->njobs--;
            break;
        }
    }
    (void)id;
    return s_reply_json(out, 200, json_pack("{s:b}", "deleted", 1));
}

static int s_jobs_route(rayhead_t *h, int64_t now, const char *method, const char *rest,
                        const char *body, size_t len, rayhead_response_t *out)
{
    if (rest[0] == '\0') {
        if (strcmp(method, "GET") == 0)
            return s_jobs_list(h, now, out);
        if (strcmp(method, "POST") == 0)
            return s_jobs_submit(h, now, body, len, out);
        return s_reply_text(out, 405, "405: Method Not Allowed");
    }
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *suffix = slash ? slash : "";
    char *id = s_url_decode(rest, idlen);
    if (!id)
        return ERR_NOMEM;
    int rc;
    job_t *j = s_job_find(h, id, now);
    bool get = strcmp(method, "GET") == 0;
    if (strcmp(suffix, "") == 0 && (get || strcmp(method, "DELETE") == 0)) {
        if (!j)
            rc = s_not_exist(out, id);
        else if (get)
            rc = s_reply_json(out, 200, s_job_json(h, j));
        else
            rc = s_jobs_delete(h, j, id, out);
    } else if (strcmp(suffix, "/stop") == 0 && strcmp(method, "POST") == 0) {
        if (!j) {
            rc = s_not_exist(out, id);
        } else if (s_terminal(j->status)) {
            rc = s_reply_json(out, 200, json_pack("{s:b}", "stopped", 0));
        } else {
            if (!h->opts.stop_ignored && j->stop_at < 0)
                j->stop_at = now + h->opts.job_stop_ms;
            rc = s_reply_json(out, 200, json_pack("{s:b}", "stopped", 1));
        }
    } else if (strcmp(suffix, "/logs") == 0 && get) {
        rc = j ? s_jobs_logs(j, out) : s_not_exist(out, id);
    } else if (strcmp(suffix, "/logs/tail") == 0 && get) {
        rc = j ? s_reply_text(out, 501,
                              "The simulated Ray head does not implement the WebSocket "
                              "log tail; poll /api/jobs/{id}/logs instead.")
               : s_not_exist(out, id);
    } else if (strcmp(suffix, "") == 0 || strcmp(suffix, "/stop") == 0 ||
               strcmp(suffix, "/logs") == 0 || strcmp(suffix, "/logs/tail") == 0) {
        rc = s_reply_text(out, 405, "405: Method Not Allowed");
    } else {
        rc = s_reply_text(out, 404, "404: Not Found");
    }
    free(id);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 */
/* Serve: model */

typedef enum {
    APP_DEPLOYING,
    APP_DEPLOY_FAILED,
    APP_RUNNING,
    APP_UNHEALTHY,
    APP_DELETING
} app_status_t;

static const char *const s_app_status_names[] = {"DEPLOYING", "DEPLOY_FAILED", "RUNNING",
                                                 "UNHEALTHY", "DELETING"};

/* Drops finished deletions and a finished Serve shutdown. */
static app_status_t s_app_status(const app_t *a, int64_t now, buf_t *msg);

static void s_serve_advance(rayhead_t *h, int64_t now)
{
    if (h->serve_shutdown_at >= 0 && now >= h->serve_shutdown_at) {
        for (size_t i = 0; i < h->napps; i++)
            s_app_free(&h->apps[i]);
        h->napps = 0;
        h->serve_running = false;
        h->serve_shutdown_at = -1;
        json_decref(h->serve_top);
        h->serve_top = NULL;
        return;
    }
    size_t o = 0;
    buf_t tmp;
    buf_init(&tmp, 64 * 1024);
    for (size_t i = 0; i < h->napps; i++) {
        app_t *a = h->apps[i];
        buf_reset(&tmp);
        if (!a->served && s_app_status(a, now, &tmp) == APP_RUNNING)
            a->served = true;
        if (a->deleting_at >= 0 && now >= a->deleting_at + h->opts.serve_delete_ms)
            s_app_free(&h->apps[i]);
        else
            h->apps[o++] = a;
    }
    buf_free(&tmp);
    h->napps = o;
}

static app_t *s_app_find(rayhead_t *h, const char *name)
{
    for (size_t i = 0; i < h->napps; i++)
        if (strcmp(h->apps[i]->name, name) == 0)
            return h->apps[i];
    return NULL;
}

/* Appends the Python list repr of the names of the unhealthy (or else crashing)
 * deployments. */
static int s_dep_list(const app_t *a, bool unhealthy_list, buf_t *b)
{
    int rc = buf_puts(b, "[");
    bool first = true;
    for (size_t i = 0; i < a->ndeps && rc == 0; i++) {
        bool pick = unhealthy_list ? a->deps[i].unhealthy : a->deps[i].crash;
        if (!pick)
            continue;
        if (!first)
            rc = buf_puts(b, ", ");
        if (rc == 0)
            rc = s_pyrepr(b, a->deps[i].name);
        first = false;
    }
    if (rc == 0)
        rc = buf_puts(b, "]");
    return rc;
}

/* Computes an app's status and message (into `msg`) at `now`. */
static app_status_t s_app_status(const app_t *a, int64_t now, buf_t *msg)
{
    if (a->deleting_at >= 0)
        return APP_DELETING;
    if (now < a->build_done_at)
        return APP_DEPLOYING;
    if (a->missing_module) {
        buf_printf(msg,
                   "Deploying app '%s' failed with exception:\nTraceback (most recent "
                   "call "
                   "last):\n  File "
                   "\"/home/ray/anaconda3/lib/python3.11/site-packages/ray/serve/"
                   "_private/application_state.py\", line 1, in build_serve_application\n"
                   "ModuleNotFoundError: No module named '%s'\n",
                   a->name, a->missing_module);
        return APP_DEPLOY_FAILED;
    }
    if (now < a->update_done_at)
        return APP_DEPLOYING;
    bool crash = false;
    bool unhealthy = false;
    for (size_t i = 0; i < a->ndeps; i++) {
        crash = crash || a->deps[i].crash;
        unhealthy = unhealthy || a->deps[i].unhealthy;
    }
    if (crash) {
        buf_puts(msg, "Failed to update the deployments ");
        s_dep_list(a, false, msg);
        buf_puts(msg, ".");
        return APP_DEPLOY_FAILED;
    }
    if (unhealthy) {
        buf_puts(msg, "The deployments ");
        s_dep_list(a, true, msg);
        buf_puts(msg, " are UNHEALTHY.");
        return APP_UNHEALTHY;
    }
    return APP_RUNNING;
}

static json_t *s_actor_info(const rayhead_t *h, const char *actor_name, const char *log_file)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "node_id", h->node_id, "node_ip",
                     h->head_ip, "node_instance_id", h->head_ip, "actor_id", h->actor_id,
                     "actor_name", actor_name, "worker_id", h->actor_id, "log_file_path", log_file);
}

static json_t *s_dep_json(rayhead_t *h, const app_t *a, const dep_t *d, app_status_t st,
                          int64_t now)
{
    const char *status = "HEALTHY";
    const char *trigger = "CONFIG_UPDATE_COMPLETED";
    const char *message = "";
    const char *replica_state = "RUNNING";
    if (st == APP_DELETING) {
        trigger = "DELETING";
        replica_state = "STOPPING";
    } else if (now < a->update_done_at) {
        status = "UPDATING";
        trigger = "CONFIG_UPDATE_STARTED";
        replica_state = "STARTING";
    } else if (d->crash) {
        status = "DEPLOY_FAILED";
        trigger = "REPLICA_STARTUP_FAILED";
        message = "The deployment failed to start 3 times in a row. This may be due to a "
                  "problem with its constructor or initial health check failing. See "
                  "controller logs for details. Error:\nRuntimeError: simulated replica "
                  "start failure";
        replica_state = NULL;
    } else if (d->unhealthy) {
        status = "UNHEALTHY";
        trigger = "HEALTH_CHECK_FAILED";
        message = "The deployment's replicas failed their health checks.";
    }
    bool bad = false;
    json_t *o = json_object();
    s_set(o, "name", json_string(d->name), &bad);
    s_set(o, "status", json_string(status), &bad);
    s_set(o, "status_trigger", json_string(trigger), &bad);
    s_set(o, "message", json_string(message), &bad);
    s_set(o, "deployment_config", json_deep_copy(d->config), &bad);
    s_set(o, "target_num_replicas", json_integer(d->replicas), &bad);
    s_set(o, "required_resources", json_pack("{s:f}", "CPU", 1.0), &bad);
    json_t *reps = json_array();
    for (int r = 0; replica_state && r < d->replicas && !bad; r++) {
        char rid[512];
        char aname[600];
        char logf[700];
        snprintf(rid, sizeof(rid), "%s#%s#%s%d", a->name, d->name, d->suffix, r);
        snprintf(aname, sizeof(aname), "SERVE_REPLICA::%s", rid);
        snprintf(logf, sizeof(logf), "/serve/replica_%s_%s_%s%d.log", a->name, d->name, d->suffix,
                 r);
        json_t *rep = s_actor_info(h, aname, logf);
        s_set(rep, "replica_id", json_string(rid), &bad);
        s_set(rep, "state", json_string(replica_state), &bad);
        s_set(rep, "pid", json_integer(FAKE_PID_BASE + r), &bad);
        s_set(rep, "start_time_s", json_real((double)a->build_done_at / 1000.0), &bad);
        if (!rep || json_array_append_new(reps, rep) != 0)
            bad = true;
    }
    s_set(o, "replicas", reps, &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *s_app_json(rayhead_t *h, const app_t *a, int64_t now)
{
    buf_t msg;
    buf_init(&msg, 64 * 1024);
    app_status_t st = s_app_status(a, now, &msg);
    bool built = st != APP_DEPLOYING || now >= a->build_done_at;
    bool bad = false;
    json_t *o = json_object();
    s_set(o, "name", json_string(a->name), &bad);
    s_set(o, "route_prefix", built ? json_deep_copy(a->route_prefix) : json_null(), &bad);
    s_set(o, "docs_path", json_null(), &bad);
    s_set(o, "status", json_string(s_app_status_names[st]), &bad);
    s_set(o, "message", json_string(buf_str(&msg)), &bad);
    s_set(o, "last_deployed_time_s", json_real((double)a->deployed_at / 1000.0), &bad);
    s_set(o, "deployed_app_config", a->config ? json_deep_copy(a->config) : json_null(), &bad);
    s_set(o, "source", json_string(a->imperative ? "imperative" : "declarative"), &bad);
    json_t *deps = json_object();
    bool show = built && !a->missing_module;
    for (size_t i = 0; show && i < a->ndeps && !bad; i++)
        s_set(deps, a->deps[i].name, s_dep_json(h, a, &a->deps[i], st, now), &bad);
    s_set(o, "deployments", deps, &bad);
    buf_free(&msg);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Merges `over` (may be NULL) onto `defaults` (stolen); returns the merged
 * object or NULL. */
static json_t *s_merge(json_t *defaults, const json_t *over)
{
    if (defaults && json_is_object(over) && json_object_update(defaults, (json_t *)over) != 0) {
        json_decref(defaults);
        return NULL;
    }
    return defaults;
}

static int s_serve_get(rayhead_t *h, int64_t now, const char *query, rayhead_response_t *out)
{
    bool nomem = false;
    char *api_type = s_query_get(query, "api_type", &nomem);
    if (nomem)
        return ERR_NOMEM;
    int filter = 0; // 0 all, 1 declarative, 2 imperative
    if (api_type && strcmp(api_type, "declarative") == 0)
        filter = 1;
    else if (api_type && strcmp(api_type, "imperative") == 0)
        filter = 2;
    else if (api_type) {
        buf_t e;
        buf_init(&e, 1024);
        int rc = buf_puts(&e, "Invalid 'api_type' value: ");
        if (rc == 0)
            rc = s_pyrepr(&e, api_type);
        if (rc == 0)
            rc = buf_puts(&e, ". Must be one of ['declarative', 'imperative']");
        if (rc == 0)
            rc = s_reply_text(out, 400, buf_str(&e));
        buf_free(&e);
        free(api_type);
        return rc;
    }
    free(api_type);
    if (h->serve_controller_down)
        return s_reply_text(out, 503,
                            "Failed to get a response from the controller. The GCS may be down, "
                            "please retry later: simulated controller fault");
    if (!h->serve_running)
        return s_reply_json(out, 200,
                            json_pack("{s:s, s:{}, s:{}, s:{}, s:n}", "deploy_mode", "MULTI_APP",
                                      "controller_info", "proxies", "applications",
                                      "target_capacity"));
    bool bad = false;
    json_t *o = json_object();
    char logf[128];
    snprintf(logf, sizeof(logf), "/serve/controller_%d.log", FAKE_PID_BASE);
    s_set(o, "controller_info", s_actor_info(h, "SERVE_CONTROLLER_ACTOR", logf), &bad);
    const json_t *top = h->serve_top;
    const json_t *loc = json_object_get(top, "proxy_location");
    s_set(o, "proxy_location", json_is_string(loc) ? json_deep_copy(loc) : json_string("EveryNode"),
          &bad);
    s_set(o, "http_options",
          s_merge(json_pack("{s:s, s:i, s:s, s:n, s:i}", "host", "0.0.0.0", "port", SERVE_HTTP_PORT,
                            "root_path", "", "request_timeout_s", "keep_alive_timeout_s",
                            SERVE_KEEP_ALIVE_S),
                  json_object_get(top, "http_options")),
          &bad);
    s_set(o, "grpc_options",
          s_merge(json_pack("{s:i, s:[]}", "port", SERVE_GRPC_PORT, "grpc_servicer_functions"),
                  json_object_get(top, "grpc_options")),
          &bad);
    char pname[128];
    snprintf(pname, sizeof(pname), "SERVE_PROXY_ACTOR-%s", h->node_id);
    snprintf(logf, sizeof(logf), "/serve/proxy_%s.log", h->head_ip);
    json_t *proxy = s_actor_info(h, pname, logf);
    s_set(proxy, "status", json_string(h->serve_draining ? "DRAINING" : "HEALTHY"), &bad);
    json_t *proxies = json_object();
    s_set(proxies, h->node_id, proxy, &bad);
    s_set(o, "proxies", proxies, &bad);
    s_set(o, "deploy_mode", json_string("MULTI_APP"), &bad);
    const json_t *tc = json_object_get(top, "target_capacity");
    s_set(o, "target_capacity", tc ? json_deep_copy(tc) : json_null(), &bad);
    json_t *apps = json_object();
    for (size_t i = 0; i < h->napps && !bad; i++) {
        const app_t *a = h->apps[i];
        if ((filter == 1 && a->imperative) || (filter == 2 && !a->imperative))
            continue;
        s_set(apps, a->name, s_app_json(h, a, now), &bad);
    }
    s_set(o, "applications", apps, &bad);
    if (bad) {
        json_decref(o);
        return ERR_NOMEM;
    }
    return s_reply_json(out, 200, o);
}

/* ValidationError repr as the Serve REST handler returns it with 400. */
static int s_validation_error(rayhead_response_t *out, const char *loc, const char *msg)
{
    buf_t b;
    buf_init(&b, 8192);
    int rc = buf_puts(&b, "ValidationError(model='ServeDeploySchema', errors=[{'loc': (");
    if (rc == 0)
        rc = s_pyrepr(&b, loc);
    if (rc == 0)
        rc = buf_puts(&b, ",), 'msg': ");
    if (rc == 0)
        rc = s_pyrepr(&b, msg);
    if (rc == 0)
        rc = buf_puts(&b, ", 'type': 'value_error'}])");
    if (rc == 0)
        rc = s_reply_text(out, 400, buf_str(&b));
    buf_free(&b);
    return rc;
}

/* Checks an import path as Serve's schema does. Writes the error into `e`;
 * false if bad. */
static bool s_import_path_ok(const char *v, buf_t *e)
{
    const char *colon = strchr(v, ':');
    size_t n = strlen(v);
    if (colon) {
        if (strchr(colon + 1, ':')) {
            buf_printf(e,
                       "Got invalid import path \"%s\". An import path may have at most one "
                       "colon.",
                       v);
            return false;
        }
        if (colon == v || (size_t)(colon - v) == n - 1) {
            buf_printf(e,
                       "Got invalid import path \"%s\". An import path may not start or end "
                       "with a colon.",
                       v);
            return false;
        }
        return true;
    }
    const char *dot = strrchr(v, '.');
    if (!dot) {
        buf_printf(e,
                   "Got invalid import path \"%s\". An import path must contain at "
                   "least one "
                   "dot or colon separating the module (and potentially "
                   "submodules) from the "
                   "deployment graph. E.g.: \"module.deployment_graph\".",
                   v);
        return false;
    }
    if (v[0] == '.' || dot == v + n - 1) {
        buf_printf(e,
                   "Got invalid import path \"%s\". An import path may not start "
                   "or end with "
                   "a dot.",
                   v);
        return false;
    }
    return true;
}

static bool s_route_prefix_ok(const char *v, buf_t *e)
{
    size_t n = strlen(v);
    if (n < 1 || v[0] != '/') {
        buf_printf(e, "Got \"%s\" for route_prefix. Route prefix must start with \"/\".", v);
        return false;
    }
    if (n > 1 && v[n - 1] == '/') {
        buf_printf(e,
                   "Got \"%s\" for route_prefix. Route prefix cannot end with "
                   "\"/\" unless "
                   "the entire prefix is just \"/\".",
                   v);
        return false;
    }
    if (strchr(v, '{') || strchr(v, '}')) {
        buf_printf(e,
                   "Got \"%s\" for route_prefix. Route prefix cannot contain "
                   "wildcards, so "
                   "it cannot contain \"{\" or \"}\".",
                   v);
        return false;
    }
    return true;
}

/* Validates one application entry. Returns true when valid; else fills loc/e.
 */
static bool s_app_cfg_ok(const json_t *app, const char **loc, buf_t *e)
{
    *loc = "applications";
    if (!json_is_object(app)) {
        buf_puts(e, "value is not a valid dict");
        return false;
    }
    const json_t *name = json_object_get(app, "name");
    if (name && !json_is_string(name)) {
        buf_puts(e, "str type expected");
        return false;
    }
    if (name && json_string_length(name) == 0) {
        buf_puts(e, "Application names must be nonempty.");
        return false;
    }
    const char *aname = name ? json_string_value(name) : DEFAULT_APP_NAME;
    if (json_object_get(app, "host") || json_object_get(app, "port")) {
        buf_printf(e,
                   "Found host and/or port in the config of application '%s'. Host and "
                   "port "
                   "must be set in the top-level http_options, not in an application.",
                   aname);
        return false;
    }
    const json_t *ip = json_object_get(app, "import_path");
    if (!json_is_string(ip)) {
        *loc = "import_path";
        buf_puts(e, ip ? "str type expected" : "field required");
        return false;
    }
    if (!s_import_path_ok(json_string_value(ip), e)) {
        *loc = "import_path";
        return false;
    }
    const json_t *rp = json_object_get(app, "route_prefix");
    if (rp && !json_is_null(rp)) {
        *loc = "route_prefix";
        if (!json_is_string(rp)) {
            buf_puts(e, "str type expected");
            return false;
        }
        if (!s_route_prefix_ok(json_string_value(rp), e))
            return false;
    }
    const json_t *env = json_object_get(app, "runtime_env");
    const json_t *wd = json_object_get(env, "working_dir");
    if (json_is_string(wd) && !strstr(json_string_value(wd), "://")) {
        *loc = "runtime_env";
        buf_printf(e,
                   "'%s' is not a valid URI. Passing directories or modules to be "
                   "dynamically "
                   "uploaded is only supported at the top level of the runtime_env.",
                   json_string_value(wd));
        return false;
    }
    const json_t *deps = json_object_get(app, "deployments");
    if (deps && !json_is_array(deps)) {
        *loc = "deployments";
        buf_puts(e, "value is not a valid list");
        return false;
    }
    if (json_array_size(deps) > RAYHEAD_MAX_DEPLOYMENTS) {
        *loc = "deployments";
        buf_puts(e, "too many deployments for the simulated head");
        return false;
    }
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        *loc = "deployments";
        if (!json_is_object(d) || !json_is_string(json_object_get(d, "name"))) {
            buf_puts(e, "field required");
            return false;
        }
        const json_t *nr = json_object_get(d, "num_replicas");
        const json_t *as = json_object_get(d, "autoscaling_config");
        bool is_auto = json_is_string(nr) && strcmp(json_string_value(nr), "auto") == 0;
        if (nr && !json_is_null(nr) && !json_is_integer(nr) && !is_auto) {
            buf_puts(e, "value is not a valid integer");
            return false;
        }
        if (json_is_integer(nr) && json_integer_value(nr) < 0) {
            buf_puts(e, "ensure this value is greater than or equal to 0");
            return false;
        }
        if (json_is_integer(nr) && as && !json_is_null(as)) {
            buf_puts(e, "Manually setting num_replicas is not allowed when "
                        "autoscaling_config "
                        "is provided.");
            return false;
        }
    }
    return true;
}

/* The module part of an import path ("a.b:c" -> "a.b", "a.b.c" -> "a.b"), into
 * `out`. */
static void s_import_module(const char *ip, char *out, size_t cap)
{
    const char *colon = strchr(ip, ':');
    const char *cut = colon ? colon : strrchr(ip, '.');
    size_t n = cut ? (size_t)(cut - ip) : strlen(ip);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, ip, n);
    out[n] = '\0';
}

static int s_dep_init(rayhead_t *h, dep_t *d, const char *name, const json_t *over, bool crash_all)
{
    d->name = s_strdup(name);
    d->config = json_object();
    if (!d->name || !d->config)
        return ERR_NOMEM;
    d->replicas = 1;
    const json_t *nr = json_object_get(over, "num_replicas");
    const json_t *as = json_object_get(over, "autoscaling_config");
    if (json_is_integer(nr))
        d->replicas = (int)json_integer_value(nr);
    else if (json_is_object(as)) {
        const json_t *init = json_object_get(as, "initial_replicas");
        const json_t *min = json_object_get(as, "min_replicas");
        if (json_is_integer(init))
            d->replicas = (int)json_integer_value(init);
        else if (json_is_integer(min) && json_integer_value(min) > 0)
            d->replicas = (int)json_integer_value(min);
    }
    if (d->replicas > 1000)
        d->replicas = 1000;
    d->crash = crash_all || s_has_prefix(name, FAKE_CRASH_PREFIX);
    bool bad = false;
    if (json_is_object(over) && json_object_update(d->config, (json_t *)over) != 0)
        bad = true;
    s_set(d->config, "name", json_string(name), &bad);
    s_set(d->config, "num_replicas", json_integer(d->replicas), &bad);
    s_rand_alnum(h, d->suffix, REPLICA_SUFFIX_LEN);
    return bad ? ERR_NOMEM : 0;
}

/* Builds an app from a validated config entry, deploying from scratch at `now`.
 */
static int s_app_from_cfg(rayhead_t *h, const json_t *cfg, int64_t now, app_t **out)
{
    int rc = ERR_NOMEM;
    app_t *a = calloc(1, sizeof(*a));
    if (!a)
        return ERR_NOMEM;
    const json_t *name = json_object_get(cfg, "name");
    a->name = s_strdup(name ? json_string_value(name) : DEFAULT_APP_NAME);
    const json_t *rp = json_object_get(cfg, "route_prefix");
    a->route_prefix = rp ? json_deep_copy(rp) : json_string("/");
    a->config = json_deep_copy(cfg);
    if (!a->name || !a->route_prefix || !a->config)
        goto fail;
    a->deployed_at = now;
    a->build_done_at = now + h->opts.serve_build_ms;
    a->update_done_at = a->build_done_at + h->opts.serve_update_ms;
    a->deleting_at = -1;
    const char *ip = json_string_value(json_object_get(cfg, "import_path"));
    char module[256];
    s_import_module(ip, module, sizeof(module));
    if (s_has_prefix(module, FAKE_MISSING_PREFIX)) {
        a->missing_module = s_strdup(module);
        if (!a->missing_module)
            goto fail;
    }
    bool crash_all = s_has_prefix(module, FAKE_CRASH_PREFIX);
    const json_t *deps = json_object_get(cfg, "deployments");
    size_t n = json_array_size(deps);
    a->deps = calloc(n ? n : 1, sizeof(*a->deps));
    if (!a->deps)
        goto fail;
    if (n == 0) {
        const char *colon = strchr(ip, ':');
        const char *attr = colon ? colon + 1 : strrchr(ip, '.') + 1;
        a->ndeps = 1;
        if (s_dep_init(h, &a->deps[0], attr, NULL, crash_all) != 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(deps, i);
        a->ndeps = i + 1;
        if (s_dep_init(h, &a->deps[i], json_string_value(json_object_get(d, "name")), d,
                       crash_all) != 0)
            goto fail;
    }
    *out = a;
    return 0;
fail:
    s_app_free(&a);
    return rc;
}

/* True when the new config changes the app's code (import_path, runtime_env or
 * args). */
static bool s_code_changed(const json_t *old_cfg, const json_t *new_cfg)
{
    static const char *const keys[] = {"import_path", "runtime_env", "args"};
    if (!old_cfg)
        return true;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const json_t *a = json_object_get(old_cfg, keys[i]);
        const json_t *b = json_object_get(new_cfg, keys[i]);
        if ((a == NULL) != (b == NULL) || (a && !json_equal((json_t *)a, (json_t *)b)))
            return true;
    }
    return false;
}

static int s_serve_put(rayhead_t *h, int64_t now, const char *body, size_t len,
                       rayhead_response_t *out)
{
    json_error_t jerr;
    json_t *cfg = json_loadb(body ? body : "", len, 0, &jerr);
    buf_t e;
    buf_init(&e, 8192);
    app_t *fresh[RAYHEAD_MAX_APPS] = {0};
    size_t nfresh = 0;
    int rc = 0;
    if (!cfg) {
        buf_printf(&e, "json.decoder.JSONDecodeError: %s: line %d column %d", jerr.text, jerr.line,
                   jerr.column);
        rc = s_reply_traceback(out, 500, NULL, "serve/serve_head.py", buf_str(&e));
        goto done;
    }
    const json_t *apps = json_object_get(cfg, "applications");
    if (!json_is_object(cfg) || !json_is_array(apps)) {
        rc = s_validation_error(out, "applications",
                                apps ? "value is not a valid list" : "field required");
        goto done;
    }
    if (json_array_size(apps) > RAYHEAD_MAX_APPS) {
        rc = s_validation_error(out, "applications",
                                "too many applications for the simulated "
                                "head");
        goto done;
    }
    size_t i;
    json_t *app;
    const char *loc = "applications";
    json_array_foreach(apps, i, app)
    {
        if (!s_app_cfg_ok(app, &loc, &e)) {
            rc = s_validation_error(out, loc, buf_str(&e));
            goto done;
        }
    }
    // Unique names and route prefixes across the config.
    json_array_foreach(apps, i, app)
    {
        const json_t *n1 = json_object_get(app, "name");
        const char *name = n1 ? json_string_value(n1) : DEFAULT_APP_NAME;
        const char *route = json_string_value(json_object_get(app, "route_prefix"));
        if (!json_object_get(app, "route_prefix"))
            route = "/";
        for (size_t k = 0; k < i; k++) {
            const json_t *other = json_array_get(apps, k);
            const json_t *n2 = json_object_get(other, "name");
            const char *oname = n2 ? json_string_value(n2) : DEFAULT_APP_NAME;
            const char *oroute = json_string_value(json_object_get(other, "route_prefix"));
            if (!json_object_get(other, "route_prefix"))
                oroute = "/";
            if (strcmp(name, oname) == 0) {
                buf_printf(&e,
                           "Found multiple configs for application \"%s\". Please remove all "
                           "duplicates.",
                           name);
                rc = s_validation_error(out, "applications", buf_str(&e));
                goto done;
            }
            if (route && oroute && strcmp(route, oroute) == 0) {
                buf_printf(&e,
                           "Found duplicate applications for route prefix \"%s\". "
                           "Please ensure "
                           "each application's route_prefix is unique.",
                           route);
                rc = s_validation_error(out, "applications", buf_str(&e));
                goto done;
            }
        }
        // A route held by an imperative app that stays is refused by the
        // controller.
        for (size_t k = 0; route && k < h->napps; k++) {
            const app_t *a = h->apps[k];
            const char *held = json_string_value(a->route_prefix);
            if (a->imperative && a->deleting_at < 0 && strcmp(a->name, name) != 0 && held &&
                strcmp(held, route) == 0) {
                buf_printf(&e,
                           "ray.exceptions.RayTaskError(RuntimeError): Prefix %s is being "
                           "used "
                           "by application \"%s\". Failed to deploy application \"%s\".",
                           route, a->name, name);
                rc = s_reply_text(out, 400, buf_str(&e));
                goto done;
            }
        }
    }
    // Build every app first so that running out of memory changes nothing.
    json_array_foreach(apps, i, app)
    {
        rc = s_app_from_cfg(h, app, now, &fresh[i]);
        if (rc != 0)
            goto done;
        nfresh = i + 1;
    }
    json_t *top = json_deep_copy(cfg);
    if (!top) {
        rc = ERR_NOMEM;
        goto done;
    }
    json_object_del(top, "applications");
    json_decref(h->serve_top);
    h->serve_top = top;
    h->serve_running = true;
    h->serve_shutdown_at = -1;
    // Declarative apps missing from the config start DELETING.
    for (size_t k = 0; k < h->napps; k++) {
        app_t *a = h->apps[k];
        bool kept = false;
        for (size_t f = 0; f < nfresh; f++)
            kept = kept || strcmp(fresh[f]->name, a->name) == 0;
        if (!kept && !a->imperative && a->deleting_at < 0)
            a->deleting_at = now;
    }
    for (size_t f = 0; f < nfresh; f++) {
        app_t *a = fresh[f];
        fresh[f] = NULL;
        app_t *old = s_app_find(h, a->name);
        if (old && old->deleting_at < 0 && !old->missing_module &&
            !s_code_changed(old->config, a->config)) {
            // Same code: no rebuild, a short DEPLOYING while the options apply.
            a->build_done_at = now;
            a->update_done_at = now + h->opts.serve_reapply_ms;
        }
        if (old) {
            /* its running replicas keep serving while the new config deploys */
            buf_t tmp;
            buf_init(&tmp, 64 * 1024);
            app_status_t ost = old->deleting_at < 0 ? s_app_status(old, now, &tmp) : APP_DELETING;
            a->served =
                old->deleting_at < 0 && (old->served || ost == APP_RUNNING || ost == APP_UNHEALTHY);
            buf_free(&tmp);
            for (size_t k = 0; k < h->napps; k++)
                if (h->apps[k] == old)
                    h->apps[k] = a;
            s_app_free(&old);
        } else if (h->napps < RAYHEAD_MAX_APPS) {
            h->apps[h->napps++] = a;
        } else {
            s_app_free(&a);
        }
    }
    nfresh = 0;
    out->status = 200;
    out->content_type = CT_TEXT;
    buf_reset(&out->body);
done:
    for (size_t f = 0; f < nfresh; f++)
        s_app_free(&fresh[f]);
    json_decref(cfg);
    buf_free(&e);
    return rc;
}

static int s_serve_delete(rayhead_t *h, int64_t now, rayhead_response_t *out)
{
    if (h->serve_running && h->serve_shutdown_at < 0) {
        for (size_t i = 0; i < h->napps; i++)
            if (h->apps[i]->deleting_at < 0)
                h->apps[i]->deleting_at = now;
        h->serve_shutdown_at = now + h->opts.serve_delete_ms;
    }
    out->status = 200;
    out->content_type = CT_TEXT;
    buf_reset(&out->body);
    return 0;
}

int rayhead_set_app_unhealthy(rayhead_t *head, const char *app, const char *deployment,
                              bool unhealthy)
{
    if (!head || !app)
        return ERR_INVAL;
    app_t *a = s_app_find(head, app);
    if (!a)
        return ERR_NOTFOUND;
    bool found = false;
    for (size_t i = 0; i < a->ndeps; i++) {
        if (!deployment || strcmp(a->deps[i].name, deployment) == 0) {
            a->deps[i].unhealthy = unhealthy;
            found = true;
        }
    }
    return found ? 0 : ERR_NOTFOUND;
}

int rayhead_add_imperative_app(rayhead_t *head, int64_t now_ms, const char *name,
                               const char *route_prefix)
{
    if (!head || !name || !name[0])
        return ERR_INVAL;
    s_serve_advance(head, now_ms);
    if (s_app_find(head, name))
        return ERR_EXISTS;
    if (head->napps >= RAYHEAD_MAX_APPS)
        return ERR_TOOBIG;
    app_t *a = calloc(1, sizeof(*a));
    if (!a)
        return ERR_NOMEM;
    a->name = s_strdup(name);
    a->route_prefix = route_prefix ? json_string(route_prefix) : json_null();
    a->deps = calloc(1, sizeof(*a->deps));
    a->imperative = true;
    a->deployed_at = now_ms;
    a->build_done_at = now_ms;
    a->update_done_at = now_ms;
    a->deleting_at = -1;
    if (!a->name || !a->route_prefix || !a->deps)
        goto fail;
    a->ndeps = 1;
    if (s_dep_init(head, &a->deps[0], name, NULL, false) != 0)
        goto fail;
    head->apps[head->napps++] = a;
    head->serve_running = true;
    return 0;
fail:
    s_app_free(&a);
    return ERR_NOMEM;
}

/* ------------------------------------------------------------------------------------------
 */
/* Serve proxy (port 8000) */

static int s_serve_proxy(rayhead_t *h, int64_t now, const char *path, rayhead_response_t *out)
{
    bool routed = false;
    buf_t tmp;
    buf_init(&tmp, 64 * 1024);
    json_t *routes = json_object();
    int rc = routes ? 0 : ERR_NOMEM;
    const app_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < h->napps && rc == 0; i++) {
        app_t *a = h->apps[i];
        buf_reset(&tmp);
        app_status_t st = s_app_status(a, now, &tmp);
        const char *route = json_string_value(a->route_prefix);
        if (st == APP_RUNNING || st == APP_UNHEALTHY)
            a->served = true;
        /* routed: running, or redeploying after it ran (its old replicas still serve) */
        if (!route ||
            !(st == APP_RUNNING || st == APP_UNHEALTHY || (st == APP_DEPLOYING && a->served)))
            continue;
        routed = true;
        if (json_object_set_new(routes, route, json_string(a->name)) != 0)
            rc = ERR_NOMEM;
        size_t rl = strlen(route);
        bool match = strcmp(route, "/") == 0 ||
                     (strncmp(path, route, rl) == 0 && (path[rl] == '\0' || path[rl] == '/'));
        if (match && rl >= best_len) {
            best = a;
            best_len = rl;
        }
    }
    buf_free(&tmp);
    if (rc != 0) {
        json_decref(routes);
        return rc;
    }
    if (strcmp(path, "/-/healthz") == 0) {
        json_decref(routes);
        if (h->serve_draining)
            return s_reply_text(out, 503, "This node is being drained.");
        if (!routed)
            return s_reply_text(out, 503, "Route table is not populated yet.");
        return s_reply_text(out, 200, "success");
    }
    if (strcmp(path, "/-/routes") == 0) {
        if (h->serve_draining) {
            json_decref(routes);
            return s_reply_text(out, 503, "This node is being drained.");
        }
        return s_reply_json(out, 200, routes);
    }
    json_decref(routes);
    if (!best) {
        out->status = 404;
        out->content_type = CT_TEXT;
        buf_reset(&out->body);
        return buf_printf(&out->body,
                          "Path '%s' not found. Ping http://.../-/routes for available routes.",
                          path);
    }
    out->status = 200;
    out->content_type = CT_TEXT;
    buf_reset(&out->body);
    if (h->cluster[0])
        return buf_printf(&out->body,
                          "Hello from simulated Serve application '%s' on cluster '%s'.",
                          best->name, h->cluster);
    return buf_printf(&out->body, "Hello from simulated Serve application '%s'.", best->name);
}

/* ------------------------------------------------------------------------------------------
 */
/* Dispatcher */

void rayhead_tick(rayhead_t *head, int64_t now_ms)
{
    if (!head)
        return;
    for (size_t i = 0; i < head->njobs; i++)
        s_job_advance(head, head->jobs[i], now_ms);
    s_serve_advance(head, now_ms);
}

static int s_version(rayhead_t *h, rayhead_response_t *out)
{
    return s_reply_json(out, 200,
                        json_pack("{s:s, s:s, s:s, s:s}", "version", "4", "ray_version",
                                  h->ray_version, "ray_commit", FAKE_COMMIT, "session_name",
                                  h->session));
}

static int s_dashboard(rayhead_t *h, int64_t now, phase_t ph, const char *method, const char *path,
                       const char *query, const char *body, size_t len, rayhead_response_t *out)
{
    bool get = strcmp(method, "GET") == 0;
    if (strcmp(path, "/api/version") == 0 || strcmp(path, "/api/ray/version") == 0)
        return get ? s_version(h, out) : s_reply_text(out, 405, "405: Method Not Allowed");
    if (strcmp(path, "/api/gcs_healthz") == 0) {
        int rc = ph == PHASE_HEALTHY
                     ? s_reply_text(out, 200, "success")
                     : s_reply_text(out, 503,
                                    ph == PHASE_STARTING
                                        ? "503: Health check failed: GCS is not ready"
                                        : "503: Health check failed: GCS is unreachable");
        out->content_type = CT_HEALTH;
        return rc;
    }
    bool jobs = s_has_prefix(path, "/api/jobs/");
    bool serve = strcmp(path, "/api/serve/applications/") == 0;
    if (!jobs && !serve)
        return s_reply_text(out, 404, "404: Not Found");
    if (ph == PHASE_STARTING)
        return s_reply_text(out, 503, "Service Unavailable: the GCS is not ready yet.");
    if (ph == PHASE_GCS_DOWN)
        return s_reply_traceback(out, 500, NULL, jobs ? "job/job_head.py" : "serve/serve_head.py",
                                 "ray.exceptions.RpcError: failed to connect to all addresses; "
                                 "GCS is unreachable");
    if (jobs)
        return s_jobs_route(h, now, method, path + strlen("/api/jobs/"), body, len, out);
    s_serve_advance(h, now);
    if (get)
        return s_serve_get(h, now, query, out);
    if (strcmp(method, "PUT") == 0)
        return s_serve_put(h, now, body, len, out);
    if (strcmp(method, "DELETE") == 0)
        return s_serve_delete(h, now, out);
    return s_reply_text(out, 405, "405: Method Not Allowed");
}

static int s_agent(phase_t ph, const char *path, rayhead_response_t *out)
{
    int rc;
    if (strcmp(path, "/api/local_raylet_healthz") == 0) {
        rc = ph == PHASE_HEALTHY ? s_reply_text(out, 200, "success")
                                 : s_reply_text(out, 503, "Local Raylet failed");
    } else if (strcmp(path, "/api/healthz") == 0) {
        if (ph == PHASE_HEALTHY)
            rc = s_reply_text(out, 200, "raylet: success\ngcs: success");
        else
            rc = s_reply_text(out, 503, "raylet: Local Raylet failed\ngcs: Health check failed");
    } else {
        return s_reply_text(out, 404, "404: Not Found");
    }
    out->content_type = CT_HEALTH;
    return rc;
}

/* Counts one POST /api/jobs/ the dashboard answered: the head's totals and, when the request
 * (or, for a generated id, the answer `accepted`) names a submission id, that id's counts.
 * `accepted` is the 200 answer, NULL when the submission was refused. */
static void s_count_submit(rayhead_t *h, const char *body, size_t len,
                           const rayhead_response_t *accepted)
{
    h->submits.attempts++;
    if (accepted)
        h->submits.accepted++;
    json_t *req = json_loadb(body ? body : "", len, 0, NULL);
    const char *sid = json_string_value(json_object_get(req, "submission_id"));
    if (!sid)
        sid = json_string_value(json_object_get(req, "job_id"));
    json_t *ans = NULL;
    if (!sid && accepted) {
        ans = json_loadb(buf_str(&accepted->body), accepted->body.len, 0, NULL);
        sid = json_string_value(json_object_get(ans, "submission_id"));
    }
    if (sid) {
        json_t *pair = json_object_get(h->submit_ids, sid);
        if (!pair && json_object_size(h->submit_ids) < RAYHEAD_MAX_SUBMIT_IDS) {
            pair = json_pack("[I,I]", (json_int_t)0, (json_int_t)0);
            if (pair && json_object_set_new(h->submit_ids, sid, pair) < 0)
                pair = NULL;
        }
        if (pair) {
            json_t *a = json_array_get(pair, 0), *b = json_array_get(pair, 1);
            json_integer_set(a, json_integer_value(a) + 1);
            if (accepted)
                json_integer_set(b, json_integer_value(b) + 1);
        }
    }
    json_decref(ans);
    json_decref(req);
}

void rayhead_submit_counts(const rayhead_t *head, const char *submission_id,
                           rayhead_submit_count_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (!head)
        return;
    if (!submission_id) {
        *out = head->submits;
        return;
    }
    json_t *pair = json_object_get(head->submit_ids, submission_id);
    out->attempts = (uint64_t)json_integer_value(json_array_get(pair, 0));
    out->accepted = (uint64_t)json_integer_value(json_array_get(pair, 1));
}

void rayhead_request_fold(const rayhead_t *head, rayhead_request_count_t *into)
{
    if (!head || !into)
        return;
    into->dashboard += head->requests.dashboard;
    into->agent += head->requests.agent;
    into->serve_control += head->requests.serve_control;
    into->serve_traffic += head->requests.serve_traffic;
}

int rayhead_submit_fold(const rayhead_t *head, json_t *into, rayhead_submit_count_t *totals)
{
    if (!head || !json_is_object(into))
        return ERR_INVAL;
    if (totals) {
        totals->attempts += head->submits.attempts;
        totals->accepted += head->submits.accepted;
    }
    const char *sid;
    json_t *pair;
    json_object_foreach(head->submit_ids, sid, pair)
    {
        json_t *dst = json_object_get(into, sid);
        if (!dst) {
            if (json_object_size(into) >= RAYHEAD_MAX_SUBMIT_IDS)
                continue;
            dst = json_pack("[I,I]", (json_int_t)0, (json_int_t)0);
            if (!dst || json_object_set_new(into, sid, dst) < 0)
                return ERR_NOMEM;
        }
        for (size_t i = 0; i < 2; i++) {
            json_t *d = json_array_get(dst, i);
            json_integer_set(d,
                             json_integer_value(d) + json_integer_value(json_array_get(pair, i)));
        }
    }
    return 0;
}

int rayhead_handle_proxy(rayhead_t *head, int64_t now_ms, bool unhealthy, const char *method,
                         const char *path_and_query, const char *body, size_t body_len,
                         rayhead_response_t *out)
{
    int rc = rayhead_handle(head, now_ms, RAYHEAD_PORT_SERVE, method, path_and_query, body,
                            body_len, out);
    if (rc < 0 || out->refused || !unhealthy)
        return rc;
    size_t plen = strcspn(path_and_query, "?");
    if ((plen == 10 && strncmp(path_and_query, "/-/healthz", 10) == 0) ||
        (plen == 9 && strncmp(path_and_query, "/-/routes", 9) == 0))
        return s_reply_text(out, 503, "This node is being drained.");
    return rc;
}

int rayhead_handle(rayhead_t *head, int64_t now_ms, int port, const char *method,
                   const char *path_and_query, const char *body, size_t body_len,
                   rayhead_response_t *out)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    buf_init(&out->body, RAYHEAD_RESPONSE_MAX);
    out->content_type = CT_TEXT;
    if (!head || !method || !path_and_query || (!body && body_len > 0))
        return ERR_INVAL;
    phase_t ph = s_phase(head, now_ms);
    bool known_port =
        port == RAYHEAD_PORT_DASHBOARD || port == RAYHEAD_PORT_AGENT || port == RAYHEAD_PORT_SERVE;
    if (ph == PHASE_CLOSED || !known_port) {
        out->refused = true;
        return 0;
    }
    s_serve_advance(head, now_ms);
    if (port == RAYHEAD_PORT_SERVE && !head->serve_running) {
        out->refused = true;
        return 0;
    }
    if (port == RAYHEAD_PORT_DASHBOARD)
        head->requests.dashboard++;
    else if (port == RAYHEAD_PORT_AGENT)
        head->requests.agent++;
    else if (strncmp(path_and_query, "/-/", 3) == 0)
        head->requests.serve_control++;
    else
        head->requests.serve_traffic++;
    if (body_len > RAYHEAD_BODY_MAX)
        return s_reply_text(out, 413, "Request Entity Too Large");
    const char *q = strchr(path_and_query, '?');
    size_t plen = q ? (size_t)(q - path_and_query) : strlen(path_and_query);
    char *path = s_strndup(path_and_query, plen);
    if (!path)
        return ERR_NOMEM;
    int rc;
    bool submit = port == RAYHEAD_PORT_DASHBOARD && strcmp(method, "POST") == 0 &&
                  strcmp(path, "/api/jobs/") == 0;
    if (port == RAYHEAD_PORT_DASHBOARD)
        rc = s_dashboard(head, now_ms, ph, method, path, q ? q + 1 : NULL, body, body_len, out);
    else if (port == RAYHEAD_PORT_AGENT)
        rc = s_agent(ph, path, out);
    else
        rc = s_serve_proxy(head, now_ms, path, out);
    free(path);
    if (submit)
        s_count_submit(head, body, body_len, rc == 0 && out->status == 200 ? out : NULL);
    if (rc != 0) {
        buf_free(&out->body);
        out->status = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 */
#ifdef RF_SELFTEST
#include "selftest.h"

/* Self-test */

#define T0 1700000000000LL /* a Unix ms start time for the tests */

static rayhead_response_t s_resp;

/* Issues one request; returns the status (0 when refused, -1 on error). */
static int s_req(rayhead_t *h, int64_t now, int port, const char *m, const char *p,
                 const char *body)
{
    rayhead_response_free(&s_resp);
    int rc = rayhead_handle(h, now, port, m, p, body, body ? strlen(body) : 0, &s_resp);
    if (rc != 0)
        return -1;
    return s_resp.refused ? 0 : s_resp.status;
}

static json_t *s_body_json(void)
{
    return json_loadb(buf_str(&s_resp.body), s_resp.body.len, 0, NULL);
}

static bool s_body_has(const char *needle)
{
    return strstr(buf_str(&s_resp.body), needle) != NULL;
}

static bool s_body_is_json(void)
{
    json_t *j = s_body_json();
    json_decref(j);
    return j != NULL;
}

/* GETs /api/jobs/<id> and returns the parsed document (caller decrefs). */
static json_t *s_get_job(rayhead_t *h, int64_t now, const char *id)
{
    char p[256];
    snprintf(p, sizeof(p), "/api/jobs/%s", id);
    if (s_req(h, now, RAYHEAD_PORT_DASHBOARD, "GET", p, NULL) != 200)
        return NULL;
    return s_body_json();
}

static const char *s_jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *s_get_apps(rayhead_t *h, int64_t now)
{
    if (s_req(h, now, RAYHEAD_PORT_DASHBOARD, "GET",
              "/api/serve/applications/?api_type=declarative", NULL) != 200)
        return NULL;
    return s_body_json();
}

static const char *s_app_field(const json_t *doc, const char *app, const char *field)
{
    return s_jstr(json_object_get(json_object_get(doc, "applications"), app), field);
}

static int s_test_lifecycle(bool verbose)
{
    int failed = 0;
    rayhead_options_t o;
    rayhead_options_default(&o);
    o.start_ms = T0;
    o.ports_open_ms = 1000;
    o.healthy_ms = 3000;
    o.ray_version = "2.41.0";
    rayhead_t *h = rayhead_new(&o);
    CHECK(h != NULL);
    // (a) closed
    CHECK(s_req(h, T0 + 10, RAYHEAD_PORT_DASHBOARD, "GET", "/api/gcs_healthz", NULL) == 0);
    CHECK(s_resp.refused);
    CHECK(s_req(h, T0 + 10, RAYHEAD_PORT_AGENT, "GET", "/api/local_raylet_healthz", NULL) == 0);
    // (b) dashboard up, GCS not healthy
    CHECK(s_req(h, T0 + 1500, RAYHEAD_PORT_DASHBOARD, "GET", "/api/gcs_healthz", NULL) == 503);
    CHECK(!s_body_has("success"));
    CHECK(s_req(h, T0 + 1500, RAYHEAD_PORT_AGENT, "GET", "/api/local_raylet_healthz", NULL) == 503);
    CHECK(!s_body_has("success"));
    CHECK(s_req(h, T0 + 1500, RAYHEAD_PORT_DASHBOARD, "GET", "/api/jobs/", NULL) == 503);
    CHECK(!s_body_is_json());
    // (c) healthy
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/gcs_healthz", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "success") == 0);
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_AGENT, "GET", "/api/local_raylet_healthz", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "success") == 0);
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_AGENT, "GET", "/api/healthz", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "raylet: success\ngcs: success") == 0);
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_AGENT, "GET", "/nope", NULL) == 404);
    CHECK(s_req(h, T0 + 3000, 6379, "GET", "/", NULL) == 0);
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/nothing", NULL) == 404);
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/jobs", NULL) == 404);
    // version
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/version", NULL) == 200);
    json_t *v = s_body_json();
    CHECK(v && strcmp(s_jstr(v, "version"), "4") == 0);
    CHECK(v && strcmp(s_jstr(v, "ray_version"), "2.41.0") == 0);
    CHECK(v && strlen(s_jstr(v, "ray_commit")) == 40);
    CHECK(v && s_has_prefix(s_jstr(v, "session_name"), "session_2023-11-14_"));
    json_decref(v);
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_DASHBOARD, "POST", "/api/version", "{}") == 405);
    // Serve proxy refuses before Serve starts.
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_SERVE, "GET", "/-/healthz", NULL) == 0);
    // (d) GCS down after healthy
    CHECK(s_req(h, T0 + 3000, RAYHEAD_PORT_DASHBOARD, "POST", "/api/jobs/",
                "{\"entrypoint\":\"echo\",\"submission_id\":\"j1\"}") == 200);
    rayhead_set_gcs_down(h, true);
    CHECK(s_req(h, T0 + 4000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/gcs_healthz", NULL) == 503);
    CHECK(!s_body_has("success"));
    CHECK(s_req(h, T0 + 4000, RAYHEAD_PORT_AGENT, "GET", "/api/healthz", NULL) == 503);
    CHECK(!s_body_has("success"));
    CHECK(s_req(h, T0 + 4000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/jobs/j1", NULL) == 500);
    CHECK(!s_body_is_json());
    CHECK(s_req(h, T0 + 4000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/serve/applications/", NULL) ==
          500);
    rayhead_set_gcs_down(h, false);
    CHECK(s_req(h, T0 + 4000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/jobs/j1", NULL) == 200);
    CHECK(s_req(h, T0 + 4000, RAYHEAD_PORT_DASHBOARD, "PUT", "/api/serve/applications/",
                "{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.app\"}]}") == 200);
    CHECK(rayhead_job_count(h) == 1 && rayhead_app_count(h) == 1);
    // restart wipes everything and goes back to (a)
    rayhead_restart(h, T0 + 5000);
    CHECK(rayhead_job_count(h) == 0 && rayhead_app_count(h) == 0);
    CHECK(s_req(h, T0 + 5100, RAYHEAD_PORT_DASHBOARD, "GET", "/api/jobs/j1", NULL) == 0);
    CHECK(s_req(h, T0 + 8000, RAYHEAD_PORT_DASHBOARD, "GET", "/api/jobs/j1", NULL) == 404);
    CHECK(strcmp(buf_str(&s_resp.body), "Job j1 does not exist") == 0);
    json_t *doc = s_get_apps(h, T0 + 8000);
    CHECK(doc && json_object_size(json_object_get(doc, "applications")) == 0);
    CHECK(doc && strcmp(s_jstr(doc, "deploy_mode"), "MULTI_APP") == 0);
    CHECK(doc && json_is_object(json_object_get(doc, "controller_info")));
    CHECK(doc && json_is_object(json_object_get(doc, "proxies")));
    json_decref(doc);
    // refused status body
    buf_t b;
    buf_init(&b, 4096);
    CHECK(rayhead_refused_status("10.0.0.1", 8265, &b) == 0);
    json_t *st = json_loadb(buf_str(&b), b.len, 0, NULL);
    CHECK(st && json_integer_value(json_object_get(st, "code")) == 503);
    CHECK(st && strcmp(s_jstr(st, "message"), "error trying to reach service: dial tcp "
                                              "10.0.0.1:8265: connect: connection refused") == 0);
    CHECK(st && strcmp(s_jstr(st, "reason"), "ServiceUnavailable") == 0);
    json_decref(st);
    buf_free(&b);
    CHECK(rayhead_refused_status(NULL, 1, &b) == ERR_INVAL);
    // argument checks
    rayhead_response_t r;
    CHECK(rayhead_handle(NULL, 0, 8265, "GET", "/", NULL, 0, &r) == ERR_INVAL);
    rayhead_response_free(&r);
    CHECK(rayhead_handle(h, 0, 8265, "GET", "/", NULL, 0, NULL) == ERR_INVAL);
    rayhead_options_t bad = o;
    bad.duplicate_status = 409;
    CHECK(rayhead_new(&bad) == NULL);
    bad = o;
    bad.job_run_ms = -1;
    CHECK(rayhead_new(&bad) == NULL);
    CHECK(rayhead_new(NULL) == NULL);
    rayhead_destroy(&h);
    CHECK(h == NULL);
    rayhead_destroy(&h);
    rayhead_tick(NULL, 0);
    rayhead_restart(NULL, 0);
    (void)verbose;
    return failed;
}

static int s_test_jobs(bool verbose)
{
    int failed = 0;
    rayhead_options_t o;
    rayhead_options_default(&o);
    o.start_ms = T0;
    o.job_pending_ms = 1000;
    o.job_run_ms = 2000;
    o.job_stop_ms = 300;
    o.job_start_timeout_ms = 5000;
    rayhead_t *h = rayhead_new(&o);
    CHECK(h != NULL);
    const int D = RAYHEAD_PORT_DASHBOARD;
    CHECK(s_req(h, T0, D, "GET", "/api/jobs/", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "[]") == 0);
    // submit -> PENDING
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"python "
                "x.py\",\"submission_id\":\"rj-1\",\"metadata\":{\"k\":"
                "\"v\"},\"runtime_env\":null,\"entrypoint_num_cpus\":1}") == 200);
    json_t *sub = s_body_json();
    CHECK(sub && strcmp(s_jstr(sub, "job_id"), "rj-1") == 0);
    CHECK(sub && strcmp(s_jstr(sub, "submission_id"), "rj-1") == 0);
    json_decref(sub);
    json_t *j = s_get_job(h, T0 + 500, "rj-1");
    static const char *const keys[] = {"type",
                                       "job_id",
                                       "submission_id",
                                       "driver_info",
                                       "status",
                                       "entrypoint",
                                       "message",
                                       "error_type",
                                       "start_time",
                                       "end_time",
                                       "metadata",
                                       "runtime_env",
                                       "driver_agent_http_address",
                                       "driver_node_id",
                                       "driver_exit_code"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK(j && json_object_get(j, keys[i]) != NULL);
    CHECK(j && json_object_size(j) == sizeof(keys) / sizeof(keys[0]));
    CHECK(j && strcmp(s_jstr(j, "type"), "SUBMISSION") == 0);
    CHECK(j && strcmp(s_jstr(j, "status"), "PENDING") == 0);
    CHECK(j &&
          strcmp(s_jstr(j, "message"), "Job has not started yet. It may be waiting for resources "
                                       "(CPUs, GPUs, "
                                       "memory, custom resources) to become available.") == 0);
    CHECK(j && json_integer_value(json_object_get(j, "start_time")) == T0);
    CHECK(j && json_is_null(json_object_get(j, "end_time")));
    CHECK(j && json_is_null(json_object_get(j, "job_id")));
    CHECK(j && json_is_null(json_object_get(j, "driver_agent_http_address")));
    CHECK(j && json_is_null(json_object_get(j, "runtime_env")));
    CHECK(j && strcmp(s_jstr(json_object_get(j, "metadata"), "k"), "v") == 0);
    CHECK(j && json_object_get(j, "entrypoint_num_cpus") == NULL);
    json_decref(j);
    CHECK(s_req(h, T0 + 500, D, "GET", "/api/jobs/rj-1/logs", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "{\"logs\":\"\"}") == 0);
    // RUNNING
    j = s_get_job(h, T0 + 1500, "rj-1");
    CHECK(j && strcmp(s_jstr(j, "status"), "RUNNING") == 0);
    CHECK(j && strcmp(s_jstr(j, "message"), "Job is currently running.") == 0);
    CHECK(j && strcmp(s_jstr(j, "job_id"), "01000000") == 0);
    CHECK(j && strcmp(s_jstr(j, "driver_agent_http_address"), "http://10.244.0.10:52365") == 0);
    CHECK(j && strlen(s_jstr(j, "driver_node_id")) == NODE_ID_HEX_LEN);
    CHECK(j && json_is_string(json_object_get(json_object_get(j, "driver_info"), "pid")));
    CHECK(j && json_is_null(json_object_get(j, "driver_exit_code")));
    json_decref(j);
    // lookup by driver job id
    j = s_get_job(h, T0 + 1500, "01000000");
    CHECK(j && strcmp(s_jstr(j, "submission_id"), "rj-1") == 0);
    json_decref(j);
    CHECK(s_req(h, T0 + 1500, D, "GET", "/api/jobs/rj-1/logs", NULL) == 200);
    CHECK(s_body_has("Running entrypoint for job rj-1: python x.py"));
    // DELETE non-terminal -> 500 text
    CHECK(s_req(h, T0 + 1500, D, "DELETE", "/api/jobs/rj-1", NULL) == 500);
    CHECK(s_body_has("Attempted to delete job 'rj-1', but it is in a non-terminal state "
                     "RUNNING."));
    CHECK(!s_body_is_json());
    // SUCCEEDED, stamped at the scripted instant even when observed late
    j = s_get_job(h, T0 + 9000, "rj-1");
    CHECK(j && strcmp(s_jstr(j, "status"), "SUCCEEDED") == 0);
    CHECK(j && strcmp(s_jstr(j, "message"), "Job finished successfully.") == 0);
    CHECK(j && json_integer_value(json_object_get(j, "end_time")) == T0 + 3000);
    CHECK(j && json_integer_value(json_object_get(j, "driver_exit_code")) == 0);
    CHECK(j && json_is_null(json_object_get(j, "error_type")));
    json_decref(j);
    // stop on terminal -> stopped false, status unchanged
    CHECK(s_req(h, T0 + 9000, D, "POST", "/api/jobs/rj-1/stop", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "{\"stopped\":false}") == 0);
    // duplicate -> 500 text with the exact sentence
    CHECK(s_req(h, T0 + 9000, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"x\",\"submission_id\":\"rj-1\"}") == 500);
    CHECK(s_body_has("Job with submission_id rj-1 already exists. Please use a different "
                     "submission_id."));
    CHECK(s_has_prefix(buf_str(&s_resp.body), "Request failed with status code 400: Traceback"));
    CHECK(strcmp(s_resp.content_type, CT_TEXT) == 0 && !s_body_is_json());
    // submission counts: rj-1 tried twice, accepted once; kept across a restart
    {
        rayhead_submit_count_t sc;
        rayhead_submit_counts(h, "rj-1", &sc);
        CHECK(sc.attempts == 2 && sc.accepted == 1);
        rayhead_submit_counts(h, "nope", &sc);
        CHECK(sc.attempts == 0 && sc.accepted == 0);
        rayhead_submit_counts(h, NULL, &sc);
        CHECK(sc.attempts >= 2 && sc.accepted >= 1 && sc.attempts > sc.accepted);
        json_t *fold = json_object();
        rayhead_submit_count_t tot = {0, 0};
        CHECK(rayhead_submit_fold(h, fold, &tot) == 0);
        CHECK(tot.attempts == sc.attempts && tot.accepted == sc.accepted);
        CHECK(json_integer_value(json_array_get(json_object_get(fold, "rj-1"), 0)) == 2);
        CHECK(rayhead_submit_fold(h, NULL, NULL) == ERR_INVAL);
        json_decref(fold);
    }
    // scripted FAILED
    CHECK(s_req(h, T0 + 10000, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"python t.py FAKE:pending=0.5,sleep=1,exit=3 "
                "--flag\","
                "\"submission_id\":\"bad\",\"runtime_env\":{\"env_vars\":{\"A\":"
                "\"1\"}}}") == 200);
    j = s_get_job(h, T0 + 10100, "bad");
    CHECK(j && strcmp(s_jstr(j, "message"), "Job has not started yet. It may be waiting for the "
                                            "runtime environment to be set up.") == 0);
    CHECK(j && json_is_object(json_object_get(j, "runtime_env")));
    json_decref(j);
    CHECK(s_req(h, T0 + 20000, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"FAKE:exit=2,log=line1;line2,with,commas\","
                "\"submission_id\":"
                "\"bad2\"}") == 200);
    j = s_get_job(h, T0 + 11500, "bad");
    CHECK(j && strcmp(s_jstr(j, "status"), "FAILED") == 0);
    CHECK(j && strcmp(s_jstr(j, "message"), "Job entrypoint command failed with exit "
                                            "code 3. No logs available.") == 0);
    CHECK(j && json_integer_value(json_object_get(j, "driver_exit_code")) == 3);
    CHECK(j && json_integer_value(json_object_get(j, "end_time")) == T0 + 11500);
    CHECK(j && strcmp(s_jstr(j, "error_type"), "JOB_ENTRYPOINT_COMMAND_ERROR") == 0);
    json_decref(j);
    j = s_get_job(h, T0 + 30000, "bad2");
    CHECK(j && strcmp(s_jstr(j, "status"), "FAILED") == 0);
    CHECK(j && strcmp(s_jstr(j, "message"),
                      "Job entrypoint command failed with exit code 2, last available logs "
                      "(truncated to 20,000 chars):\nline1\nline2,with,commas") == 0);
    json_decref(j);
    CHECK(s_req(h, T0 + 30000, D, "GET", "/api/jobs/bad2/logs", NULL) == 200);
    CHECK(s_body_has("line1\\nline2,with,commas\\n"));
    // stop -> STOPPED asynchronously
    CHECK(s_req(h, T0 + 40000, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"FAKE:sleep=100\",\"submission_id\":\"long\"}") == 200);
    CHECK(s_req(h, T0 + 42000, D, "POST", "/api/jobs/long/stop", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "{\"stopped\":true}") == 0);
    j = s_get_job(h, T0 + 42100, "long");
    CHECK(j && strcmp(s_jstr(j, "status"), "RUNNING") == 0);
    json_decref(j);
    j = s_get_job(h, T0 + 42300, "long");
    CHECK(j && strcmp(s_jstr(j, "status"), "STOPPED") == 0);
    CHECK(j && strcmp(s_jstr(j, "message"), "Job was intentionally stopped.") == 0);
    CHECK(j && json_integer_value(json_object_get(j, "end_time")) == T0 + 42300);
    CHECK(j && json_is_null(json_object_get(j, "driver_exit_code")));
    json_decref(j);
    j = s_get_job(h, T0 + 200000, "long"); // terminal never changes
    CHECK(j && strcmp(s_jstr(j, "status"), "STOPPED") == 0);
    json_decref(j);
    // DELETE terminal, then 404
    CHECK(s_req(h, T0 + 200000, D, "DELETE", "/api/jobs/long", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "{\"deleted\":true}") == 0);
    CHECK(s_req(h, T0 + 200000, D, "GET", "/api/jobs/long", NULL) == 404);
    CHECK(strcmp(buf_str(&s_resp.body), "Job long does not exist") == 0);
    // unknown ids on every route
    CHECK(s_req(h, T0, D, "GET", "/api/jobs/nope", NULL) == 404);
    CHECK(strcmp(buf_str(&s_resp.body), "Job nope does not exist") == 0);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/nope/stop", NULL) == 404);
    CHECK(s_req(h, T0, D, "DELETE", "/api/jobs/nope", NULL) == 404);
    CHECK(s_req(h, T0, D, "GET", "/api/jobs/nope/logs", NULL) == 404);
    CHECK(s_req(h, T0, D, "GET", "/api/jobs/nope/logs/tail", NULL) == 404);
    CHECK(s_req(h, T0, D, "GET", "/api/jobs/bad/logs/tail", NULL) == 501);
    CHECK(s_req(h, T0, D, "PUT", "/api/jobs/bad", NULL) == 405);
    CHECK(s_req(h, T0, D, "GET", "/api/jobs/bad/other", NULL) == 404);
    CHECK(s_req(h, T0, D, "PATCH", "/api/jobs/", NULL) == 405);
    // validation
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"submission_id\":\"x\"}") == 400);
    CHECK(!s_body_is_json());
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"entrypoint\":5}") == 400);
    CHECK(s_body_has("entrypoint must be a string, got <class 'int'>"));
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"entrypoint\":\"x\",\"metadata\":{\"a\":1}}") ==
          400);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"x\",\"entrypoint_memory\":1.5}") == 400);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "not json") == 500);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "[1]") == 400);
    size_t before = rayhead_job_count(h);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"entrypoint\":\"x\",\"bogus\":1}") == 200);
    // generated id
    json_t *g = s_body_json();
    const char *gid = s_jstr(g, "submission_id");
    CHECK(gid && s_has_prefix(gid, "raysubmit_") && strlen(gid) == 10 + JOB_SUBMIT_ID_LEN);
    CHECK(gid && strcspn(gid + 10, "IloO0") == JOB_SUBMIT_ID_LEN);
    json_decref(g);
    CHECK(rayhead_job_count(h) == before + 1);
    // list holds every job, submission order
    CHECK(s_req(h, T0 + 300000, D, "GET", "/api/jobs/", NULL) == 200);
    json_t *list = s_body_json();
    CHECK(list && json_array_size(list) == rayhead_job_count(h));
    CHECK(list && strcmp(s_jstr(json_array_get(list, 0), "submission_id"), "rj-1") == 0);
    json_decref(list);
    // envfail, nostart, fake_missing pip
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"FAKE:envfail\",\"submission_id\":\"ef\"}") == 200);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"x\",\"submission_id\":\"pip\",\"runtime_env\":"
                "{\"pip\":"
                "[\"fake_missing_pkg\"]}}") == 200);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"FAKE:nostart\",\"submission_id\":\"ns\"}") == 200);
    j = s_get_job(h, T0 + 1000, "ef");
    CHECK(j && strcmp(s_jstr(j, "status"), "FAILED") == 0);
    CHECK(j && s_has_prefix(s_jstr(j, "message"), "runtime_env setup failed: "));
    CHECK(j && json_is_null(json_object_get(j, "driver_agent_http_address")));
    CHECK(j && strcmp(s_jstr(j, "error_type"), "RUNTIME_ENV_SETUP_FAILURE") == 0);
    json_decref(j);
    j = s_get_job(h, T0 + 1000, "pip");
    CHECK(j && strcmp(s_jstr(j, "status"), "FAILED") == 0);
    json_decref(j);
    j = s_get_job(h, T0 + 4999, "ns");
    CHECK(j && strcmp(s_jstr(j, "status"), "PENDING") == 0);
    json_decref(j);
    j = s_get_job(h, T0 + 5000, "ns");
    CHECK(j && strcmp(s_jstr(j, "status"), "FAILED") == 0);
    CHECK(j && s_has_prefix(s_jstr(j, "message"),
                            "Job supervisor actor failed to start within 5.0 seconds."));
    CHECK(j && json_is_null(json_object_get(j, "driver_agent_http_address")));
    json_decref(j);
    // stop while PENDING -> STOPPED without ever running
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/",
                "{\"entrypoint\":\"x\",\"submission_id\":\"sp\"}") == 200);
    CHECK(s_req(h, T0 + 100, D, "POST", "/api/jobs/sp/stop", NULL) == 200);
    rayhead_tick(h, T0 + 5000);
    j = s_get_job(h, T0 + 5000, "sp");
    CHECK(j && strcmp(s_jstr(j, "status"), "STOPPED") == 0);
    CHECK(j && json_is_null(json_object_get(j, "job_id")));
    json_decref(j);
    rayhead_destroy(&h);

    // strict mode, duplicate as 400, stop ignored
    o.strict = true;
    o.duplicate_status = 400;
    o.stop_ignored = true;
    h = rayhead_new(&o);
    CHECK(h != NULL);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"entrypoint\":\"x\",\"bogus\":1}") == 400);
    CHECK(s_body_has("unexpected keyword argument 'bogus'"));
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"entrypoint\":\"x\",\"job_id\":\"d\"}") == 200);
    CHECK(s_req(h, T0, D, "POST", "/api/jobs/", "{\"entrypoint\":\"x\",\"submission_id\":\"d\"}") ==
          400);
    CHECK(s_body_has("Please use a different submission_id"));
    CHECK(s_req(h, T0 + 1500, D, "POST", "/api/jobs/d/stop", NULL) == 200);
    CHECK(s_body_has("true"));
    j = s_get_job(h, T0 + 2500, "d");
    CHECK(j && strcmp(s_jstr(j, "status"), "RUNNING") == 0);
    json_decref(j);
    rayhead_destroy(&h);
    (void)verbose;
    return failed;
}

static int s_test_serve(bool verbose)
{
    int failed = 0;
    rayhead_options_t o;
    rayhead_options_default(&o);
    o.start_ms = T0;
    o.serve_build_ms = 1000;
    o.serve_update_ms = 1000;
    o.serve_reapply_ms = 100;
    o.serve_delete_ms = 500;
    rayhead_t *h = rayhead_new(&o);
    CHECK(h != NULL);
    const int D = RAYHEAD_PORT_DASHBOARD;
    const char *cfg = "{\"http_options\":{\"port\":8000},\"applications\":["
                      "{\"name\":\"fruit\",\"route_prefix\":\"/fruit\",\"import_path\":"
                      "\"fruit.deployment_graph\",\"deployments\":[{\"name\":\"Mango\","
                      "\"num_replicas\":2},{\"name\":\"Pear\"}]},"
                      "{\"name\":\"calc\",\"route_prefix\":\"/calc\",\"import_path\":"
                      "\"conditional_dag.serve_dag\"}]}";
    CHECK(s_req(h, T0, D, "PUT", "/api/serve/applications/", cfg) == 200);
    CHECK(s_resp.body.len == 0);
    json_t *doc = s_get_apps(h, T0 + 10);
    CHECK(doc && strcmp(s_app_field(doc, "fruit", "status"), "DEPLOYING") == 0);
    CHECK(doc &&
          json_object_size(json_object_get(
              json_object_get(json_object_get(doc, "applications"), "fruit"), "deployments")) == 0);
    CHECK(doc &&
          json_is_null(json_object_get(
              json_object_get(json_object_get(doc, "applications"), "fruit"), "route_prefix")));
    json_decref(doc);
    // proxy: routes not populated yet
    CHECK(s_req(h, T0 + 10, RAYHEAD_PORT_SERVE, "GET", "/-/healthz", NULL) == 503);
    CHECK(strcmp(buf_str(&s_resp.body), "Route table is not populated yet.") == 0);
    doc = s_get_apps(h, T0 + 1500);
    json_t *fruit = json_object_get(json_object_get(doc, "applications"), "fruit");
    json_t *mango = json_object_get(json_object_get(fruit, "deployments"), "Mango");
    CHECK(doc && strcmp(s_jstr(fruit, "status"), "DEPLOYING") == 0);
    CHECK(mango && strcmp(s_jstr(mango, "status"), "UPDATING") == 0);
    CHECK(mango && strcmp(s_jstr(mango, "status_trigger"), "CONFIG_UPDATE_STARTED") == 0);
    json_decref(doc);
    doc = s_get_apps(h, T0 + 2000);
    fruit = json_object_get(json_object_get(doc, "applications"), "fruit");
    mango = json_object_get(json_object_get(fruit, "deployments"), "Mango");
    CHECK(fruit && strcmp(s_jstr(fruit, "status"), "RUNNING") == 0);
    CHECK(fruit && strcmp(s_jstr(fruit, "message"), "") == 0);
    CHECK(fruit && strcmp(s_jstr(fruit, "route_prefix"), "/fruit") == 0);
    CHECK(fruit && strcmp(s_jstr(fruit, "source"), "declarative") == 0);
    CHECK(fruit &&
          json_real_value(json_object_get(fruit, "last_deployed_time_s")) == (double)T0 / 1000.0);
    CHECK(fruit && json_is_object(json_object_get(fruit, "deployed_app_config")));
    CHECK(mango && strcmp(s_jstr(mango, "status"), "HEALTHY") == 0);
    CHECK(mango && strcmp(s_jstr(mango, "status_trigger"), "CONFIG_UPDATE_COMPLETED") == 0);
    CHECK(mango && json_integer_value(json_object_get(mango, "target_num_replicas")) == 2);
    CHECK(mango && json_array_size(json_object_get(mango, "replicas")) == 2);
    CHECK(mango && strcmp(s_jstr(json_array_get(json_object_get(mango, "replicas"), 0), "state"),
                          "RUNNING") == 0);
    CHECK(doc && strcmp(s_app_field(doc, "calc", "status"), "RUNNING") == 0);
    CHECK(doc && json_object_get(
                     json_object_get(json_object_get(json_object_get(doc, "applications"), "calc"),
                                     "deployments"),
                     "serve_dag") != NULL);
    CHECK(doc && strcmp(s_jstr(doc, "deploy_mode"), "MULTI_APP") == 0);
    CHECK(doc && json_integer_value(
                     json_object_get(json_object_get(doc, "http_options"), "port")) == 8000);
    json_decref(doc);
    rayhead_request_count_t rq0 = {0}, rq1 = {0};
    rayhead_request_fold(h, &rq0);
    CHECK(rq0.dashboard >= 4 && rq0.serve_control == 1 && rq0.serve_traffic == 0);
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_SERVE, "GET", "/-/healthz", NULL) == 200);
    CHECK(strcmp(buf_str(&s_resp.body), "success") == 0);
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_SERVE, "GET", "/-/routes", NULL) == 200);
    CHECK(s_body_has("\"/fruit\":\"fruit\""));
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_SERVE, "GET", "/fruit/mango", NULL) == 200);
    CHECK(s_body_has("fruit"));
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_SERVE, "GET", "/nothing", NULL) == 404);
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_AGENT, "GET", "/api/local_raylet_healthz", NULL) == 200);
    CHECK(s_req(h, T0 + 2000, 1234, "GET", "/", NULL) == 0); /* refused: not counted */
    // request counts: each answered request once, by port and path
    rayhead_request_fold(h, &rq1);
    CHECK(rq1.dashboard == rq0.dashboard && rq1.agent == rq0.agent + 1);
    CHECK(rq1.serve_control == rq0.serve_control + 2 && rq1.serve_traffic == 2);
    rayhead_request_fold(NULL, &rq1); /* NULL head: nothing added */
    CHECK(rq1.serve_traffic == 2);
    rayhead_set_serve_draining(h, true);
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_SERVE, "GET", "/-/healthz", NULL) == 503);
    CHECK(strcmp(buf_str(&s_resp.body), "This node is being drained.") == 0);
    rayhead_set_serve_draining(h, false);
    // one node's proxy made unhealthy (kubesim's serve-proxy control): health and routes 503,
    // traffic still served; a healthy node's proxy answers as the head's
    rayhead_response_free(&s_resp);
    CHECK(rayhead_handle_proxy(h, T0 + 2000, true, "GET", "/-/healthz?x=1", NULL, 0, &s_resp) ==
              0 &&
          s_resp.status == 503);
    CHECK(strcmp(buf_str(&s_resp.body), "This node is being drained.") == 0);
    rayhead_response_free(&s_resp);
    CHECK(rayhead_handle_proxy(h, T0 + 2000, true, "GET", "/-/routes", NULL, 0, &s_resp) == 0 &&
          s_resp.status == 503);
    rayhead_response_free(&s_resp);
    CHECK(rayhead_handle_proxy(h, T0 + 2000, true, "GET", "/fruit/x", NULL, 0, &s_resp) == 0 &&
          s_resp.status == 200);
    rayhead_response_free(&s_resp);
    CHECK(rayhead_handle_proxy(h, T0 + 2000, false, "GET", "/-/healthz", NULL, 0, &s_resp) == 0 &&
          s_resp.status == 200 && strcmp(buf_str(&s_resp.body), "success") == 0);
    CHECK(s_req(h, T0 + 2000, RAYHEAD_PORT_SERVE, "GET", "/-/healthz", NULL) == 200);
    // unhealthy flip and back
    CHECK(rayhead_set_app_unhealthy(h, "fruit", "Pear", true) == 0);
    doc = s_get_apps(h, T0 + 2100);
    CHECK(doc && strcmp(s_app_field(doc, "fruit", "status"), "UNHEALTHY") == 0);
    CHECK(doc && strcmp(s_app_field(doc, "fruit", "message"),
                        "The deployments ['Pear'] are UNHEALTHY.") == 0);
    json_decref(doc);
    CHECK(rayhead_set_app_unhealthy(h, "fruit", NULL, false) == 0);
    CHECK(rayhead_set_app_unhealthy(h, "nope", NULL, true) == ERR_NOTFOUND);
    CHECK(rayhead_set_app_unhealthy(h, "fruit", "Nope", true) == ERR_NOTFOUND);
    CHECK(rayhead_set_app_unhealthy(h, NULL, NULL, true) == ERR_INVAL);
    doc = s_get_apps(h, T0 + 2100);
    CHECK(doc && strcmp(s_app_field(doc, "fruit", "status"), "RUNNING") == 0);
    json_decref(doc);
    // identical re-PUT: brief DEPLOYING, no rebuild
    CHECK(s_req(h, T0 + 3000, D, "PUT", "/api/serve/applications/", cfg) == 200);
    doc = s_get_apps(h, T0 + 3010);
    CHECK(doc && strcmp(s_app_field(doc, "fruit", "status"), "DEPLOYING") == 0);
    // ... while its running replicas keep serving (Serve's proxy routes to them)
    CHECK(s_req(h, T0 + 3010, RAYHEAD_PORT_SERVE, "GET", "/fruit/mango", NULL) == 200);
    CHECK(doc &&
          json_object_size(json_object_get(
              json_object_get(json_object_get(doc, "applications"), "fruit"), "deployments")) == 2);
    json_decref(doc);
    doc = s_get_apps(h, T0 + 3100);
    CHECK(doc && strcmp(s_app_field(doc, "fruit", "status"), "RUNNING") == 0);
    json_decref(doc);
    // new config: calc dropped (DELETING, then gone), bad import, replica crash
    const char *cfg2 = "{\"applications\":["
                       "{\"name\":\"fruit\",\"route_prefix\":\"/fruit\",\"import_path\":"
                       "\"fruit.deployment_graph\",\"deployments\":[{\"name\":\"Mango\","
                       "\"num_replicas\":2},{\"name\":\"Pear\"}]},"
                       "{\"name\":\"miss\",\"route_prefix\":\"/m\",\"import_path\":"
                       "\"fake_missing_mod.sub:app\"},"
                       "{\"name\":\"crash\",\"route_prefix\":\"/c\",\"import_path\":"
                       "\"fake_crash.x:app\",\"deployments\":[{\"name\":\"X\"}]}]}";
    CHECK(s_req(h, T0 + 4000, D, "PUT", "/api/serve/applications/", cfg2) == 200);
    doc = s_get_apps(h, T0 + 4100);
    CHECK(doc && strcmp(s_app_field(doc, "calc", "status"), "DELETING") == 0);
    CHECK(doc && strcmp(s_app_field(doc, "miss", "status"), "DEPLOYING") == 0);
    json_decref(doc);
    doc = s_get_apps(h, T0 + 6000);
    CHECK(doc && json_object_get(json_object_get(doc, "applications"), "calc") == NULL);
    CHECK(doc && strcmp(s_app_field(doc, "miss", "status"), "DEPLOY_FAILED") == 0);
    CHECK(doc && s_has_prefix(s_app_field(doc, "miss", "message"),
                              "Deploying app 'miss' failed with exception:\n"));
    CHECK(doc && strstr(s_app_field(doc, "miss", "message"),
                        "ModuleNotFoundError: No module named 'fake_missing_mod.sub'") != NULL);
    CHECK(doc &&
          json_object_size(json_object_get(
              json_object_get(json_object_get(doc, "applications"), "miss"), "deployments")) == 0);
    CHECK(doc && strcmp(s_app_field(doc, "crash", "status"), "DEPLOY_FAILED") == 0);
    CHECK(doc && strcmp(s_app_field(doc, "crash", "message"),
                        "Failed to update the deployments ['X'].") == 0);
    json_t *x = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "applications"), "crash"),
                        "deployments"),
        "X");
    CHECK(x && strcmp(s_jstr(x, "status"), "DEPLOY_FAILED") == 0);
    CHECK(x && strcmp(s_jstr(x, "status_trigger"), "REPLICA_STARTUP_FAILED") == 0);
    json_decref(doc);
    // api_type filter and imperative apps
    CHECK(rayhead_add_imperative_app(h, T0 + 6000, "imp", "/imp") == 0);
    CHECK(rayhead_add_imperative_app(h, T0 + 6000, "imp", "/imp") == ERR_EXISTS);
    CHECK(rayhead_add_imperative_app(h, T0 + 6000, NULL, "/imp") == ERR_INVAL);
    doc = s_get_apps(h, T0 + 6000);
    CHECK(doc && json_object_get(json_object_get(doc, "applications"), "imp") == NULL);
    json_decref(doc);
    CHECK(s_req(h, T0 + 6000, D, "GET", "/api/serve/applications/?api_type=imperative", NULL) ==
          200);
    doc = s_body_json();
    CHECK(doc && json_object_size(json_object_get(doc, "applications")) == 1);
    CHECK(doc && strcmp(s_app_field(doc, "imp", "source"), "imperative") == 0);
    json_decref(doc);
    CHECK(s_req(h, T0 + 6000, D, "GET", "/api/serve/applications/", NULL) == 200);
    doc = s_body_json();
    CHECK(doc && json_object_size(json_object_get(doc, "applications")) == 4);
    json_decref(doc);
    CHECK(s_req(h, T0 + 6000, D, "GET", "/api/serve/applications/?api_type=bogus", NULL) == 400);
    CHECK(!s_body_is_json());
    // a declarative route held by the imperative app is refused
    CHECK(s_req(h, T0 + 6000, D, "PUT", "/api/serve/applications/",
                "{\"applications\":[{\"name\":\"z\",\"route_prefix\":\"/"
                "imp\",\"import_path\":"
                "\"a.b\"}]}") == 400);
    CHECK(s_body_has("Prefix /imp is being used"));
    rayhead_set_serve_controller_down(h, true);
    CHECK(s_req(h, T0 + 6000, D, "GET", "/api/serve/applications/", NULL) == 503);
    rayhead_set_serve_controller_down(h, false);
    // synchronous validations
    static const char *const invalid[][2] = {
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.a\"},{\"name\":"
         "\"a\","
         "\"route_prefix\":\"/b\",\"import_path\":\"m.b\"}]}",
         "Found multiple configs for application"},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.a\"},{\"name\":"
         "\"b\","
         "\"import_path\":\"m.b\"}]}",
         "Found duplicate applications for route prefix"},
        {"{\"applications\":[{\"name\":\"\",\"import_path\":\"m.a\"}]}",
         "Application names must be nonempty."},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"nodot\"}]}",
         "must contain at least one dot or colon"},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"a:b:c\"}]}", "at most one colon"},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.\"}]}", "start or end with a dot"},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\":m\"}]}",
         "start or end with a colon"},
        {"{\"applications\":[{\"name\":\"a\",\"route_prefix\":\"x\",\"import_"
         "path\":\"m.a\"}]}",
         "must start with"},
        {"{\"applications\":[{\"name\":\"a\",\"route_prefix\":\"/x/"
         "\",\"import_path\":\"m.a\"}]}",
         "cannot end with"},
        {"{\"applications\":[{\"name\":\"a\",\"route_prefix\":\"/"
         "{x}\",\"import_path\":\"m.a\"}]}",
         "cannot contain wildcards"},
        {"{\"applications\":[{\"name\":\"a\",\"host\":\"0.0.0.0\",\"import_"
         "path\":\"m.a\"}]}",
         "http_options"},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.a\","
         "\"deployments\":[{\"name\":"
         "\"D\",\"num_replicas\":2,\"autoscaling_config\":{\"min_replicas\":1}}]}"
         "]}",
         "Manually setting num_replicas is not allowed when autoscaling_config "
         "is provided."},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.a\","
         "\"deployments\":[{\"name\":"
         "\"D\",\"num_replicas\":\"many\"}]}]}",
         "value is not a valid integer"},
        {"{\"applications\":[{\"name\":\"a\",\"import_path\":\"m.a\",\"runtime_"
         "env\":"
         "{\"working_dir\":\"./local\"}}]}",
         "is not a valid URI"},
        {"{\"proxy_location\":\"EveryNode\"}", "field required"},
        {"{\"applications\":[{\"name\":\"a\"}]}", "field required"},
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        int st = s_req(h, T0 + 6000, D, "PUT", "/api/serve/applications/", invalid[i][0]);
        CHECK(st == 400);
        CHECK(s_body_has(invalid[i][1]));
        CHECK(s_has_prefix(buf_str(&s_resp.body), "ValidationError("));
        if (st != 400 || !s_body_has(invalid[i][1]))
            printf("rayhead: invalid case %zu answered %d: %s\n", i, st, buf_str(&s_resp.body));
    }
    CHECK(s_req(h, T0 + 6000, D, "PUT", "/api/serve/applications/", "{bad") == 500);
    CHECK(s_req(h, T0 + 6000, D, "POST", "/api/serve/applications/", "{}") == 405);
    // "auto" with autoscaling_config is fine
    CHECK(s_req(h, T0 + 6000, D, "PUT", "/api/serve/applications/",
                "{\"applications\":[{\"name\":\"auto\",\"import_path\":\"m.a\","
                "\"deployments\":"
                "[{\"name\":\"D\",\"num_replicas\":\"auto\",\"autoscaling_config\":"
                "{\"min_replicas\":3}}]}]}") == 200);
    doc = s_get_apps(h, T0 + 9000);
    CHECK(doc && json_object_size(json_object_get(doc, "applications")) == 1);
    CHECK(doc && strcmp(s_app_field(doc, "auto", "status"), "RUNNING") == 0);
    json_decref(doc);
    // DELETE: all apps DELETING, then Serve is not running
    CHECK(s_req(h, T0 + 9000, D, "DELETE", "/api/serve/applications/", NULL) == 200);
    CHECK(s_resp.body.len == 0);
    CHECK(s_req(h, T0 + 9100, D, "GET", "/api/serve/applications/", NULL) == 200);
    doc = s_body_json();
    CHECK(doc && strcmp(s_app_field(doc, "auto", "status"), "DELETING") == 0);
    json_decref(doc);
    doc = s_get_apps(h, T0 + 9600);
    CHECK(doc && json_object_size(json_object_get(doc, "applications")) == 0);
    CHECK(doc && json_object_size(json_object_get(doc, "controller_info")) == 0);
    json_decref(doc);
    CHECK(s_req(h, T0 + 9600, RAYHEAD_PORT_SERVE, "GET", "/-/healthz", NULL) == 0);
    CHECK(rayhead_app_count(h) == 0);
    rayhead_destroy(&h);
    (void)verbose;
    return failed;
}

int rayhead_test(bool verbose)
{
    int failed = 0;
    failed += s_test_lifecycle(verbose);
    failed += s_test_jobs(verbose);
    failed += s_test_serve(verbose);
    rayhead_response_free(&s_resp);
    return SELFTEST_RESULT("rayhead", verbose);
}

#endif /* RF_SELFTEST */
