/*
 * raydash: the Ray head's HTTP client (dashboard Jobs and Serve APIs, Serve proxy health). See
 * raydash.h.
 *
 * Each call becomes one HTTP request: on the http client (direct) or a k8s_raw() request (through
 * the API server's service or pod proxy, one attempt: KubeRay's client does not retry either, the
 * reconciler calls again). A call's base (s_dash_base() for the dashboard, s_pod_base() for a
 * pod's Serve proxy) and path (s_path()) make its URL; s_send() hands it to the transport. The
 * answer is mapped onto raydash_result_t in s_finish(): transport errors pass through, the status
 * picks the err_t, and a 2xx body must have the shape the API returns for that call. Job ids and
 * proxy names are percent-escaped into the path (they come from the spec); the token header is
 * built for the call, handed to the transport (which copies it) and wiped.
 */
#include "raydash.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef RF_VERSION
#define RF_VERSION "0"
#endif

#define RAYDASH_USER_AGENT "rayfleet/" RF_VERSION /* never Mozilla-like (browser guard) */
#define RAYDASH_MAX_JOB_ID 256 /* longest job id accepted */
#define RAYDASH_MAX_PATH 2048 /* longest request path (proxy prefix included) */
#define RAYDASH_MAX_URL 4096 /* longest direct URL */
#define RAYDASH_MAX_TOKEN 8192 /* longest token accepted */
#define RAYDASH_DUPLICATE "Please use a different submission_id" /* Ray's duplicate-id text */
#define RAYDASH_SERVE_PATH "/api/serve/applications/" /* Serve REST API (trailing '/' needed) */
#define RAYDASH_SERVE_QUERY "?api_type=declarative" /* KubeRay's GET filter (Ray >= 2.50) */
#define RAYDASH_HEALTHZ_PATH "/-/healthz" /* the Serve proxy's health check */
#define RAYDASH_MAX_IP 64 /* longest pod address accepted (any IPv6 text fits) */

typedef enum {
    OP_SUBMIT,
    OP_GET,
    OP_LIST,
    OP_STOP,
    OP_DELETE,
    OP_LOGS,
    OP_SERVE_GET,
    OP_SERVE_PUT,
    OP_SERVE_HEALTHZ
} s_op_t;

typedef struct s_call s_call_t;
struct s_call {
    raydash_t *d; /* owner */
    int64_t id; /* our id */
    int64_t lower; /* the http or k8s request id */
    s_op_t op; /* which call */
    char job_id[RAYDASH_MAX_JOB_ID + 1]; /* for messages ("" for submit and list) */
    int64_t start_us; /* when it was made */
    raydash_done_fn *fn; /* completion */
    void *arg; /* its argument */
    s_call_t *next, *prev; /* calls in flight */
};

struct raydash {
    loop_t *loop; /* the loop */
    http_client_t *http; /* direct transport, or NULL */
    http_client_t *own_http; /* the direct transport it made itself (raydash_config_t.direct) */
    k8s_client_t *k8s; /* proxy transport, or NULL */
    int64_t timeout_ms; /* per call */
    int64_t next_id; /* id counter */
    s_call_t *calls; /* in flight */
    raydash_stats_t stats; /* counters (inflight computed) */
};

static const char *const s_op_name[] = {"submit",         "get job",        "list jobs",
                                        "stop job",       "delete job",     "job logs",
                                        "get serve apps", "put serve apps", "serve healthz"};

/* Monotonic microseconds. */
static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* True when `s` holds a control byte (below 0x20, or DEL). */
static bool s_has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* A job id is usable: not empty, at most RAYDASH_MAX_JOB_ID bytes, no control byte. "." and ".."
 * would change the path's meaning once normalised: refused too. */
static bool s_job_id_ok(const char *id)
{
    size_t n = id ? strnlen(id, RAYDASH_MAX_JOB_ID + 1) : 0;
    return n > 0 && n <= RAYDASH_MAX_JOB_ID && !s_has_ctl(id) && strcmp(id, ".") != 0 &&
           strcmp(id, "..") != 0;
}

/* Appends the path of `op` after its base: the Jobs API's ("/api/jobs/", "/api/jobs/<id>",
 * "/api/jobs/<id>/stop", ...), the Serve API's, or the Serve proxy's health check. */
static int s_path(buf_t *out, s_op_t op, const char *job_id)
{
    if (op == OP_SERVE_GET)
        return buf_puts(out, RAYDASH_SERVE_PATH RAYDASH_SERVE_QUERY);
    if (op == OP_SERVE_PUT)
        return buf_puts(out, RAYDASH_SERVE_PATH);
    if (op == OP_SERVE_HEALTHZ)
        return buf_puts(out, RAYDASH_HEALTHZ_PATH);
    int rc = buf_puts(out, "/api/jobs/");
    if (rc || op == OP_SUBMIT || op == OP_LIST)
        return rc;
    rc = buf_url_escape(out, job_id);
    if (!rc && op == OP_STOP)
        rc = buf_puts(out, "/stop");
    if (!rc && op == OP_LOGS)
        rc = buf_puts(out, "/logs");
    return rc;
}

/* Appends `n` bytes of `s` up to its first line end, with control bytes replaced by '?'. */
static void s_first_line(buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i] != '\n' && s[i] != '\r'; i++) {
        unsigned char ch = (unsigned char)s[i];
        char c = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        if (buf_append(out, &c, 1))
            return;
    }
}

/* The body `raw` (n bytes) contains `needle`. */
static bool s_contains(const char *raw, size_t n, const char *needle)
{
    return raw && n && memmem(raw, n, needle, strlen(needle)) != NULL;
}

/* Fills job fields from a JobDetails object: strings "" when null or absent, times 0. */
static void s_parse_job(const json_t *o, raydash_job_t *job)
{
    job->submission_id = jx_str(o, "submission_id", "");
    job->status = jx_str(o, "status", "");
    job->message = jx_str(o, "message", "");
    job->error_type = jx_str(o, "error_type", "");
    json_t *st = json_object_get(o, "start_time"), *et = json_object_get(o, "end_time");
    job->start_time_ms = json_is_number(st) ? (int64_t)json_number_value(st) : 0;
    job->end_time_ms = json_is_number(et) ? (int64_t)json_number_value(et) : 0;
    if (json_is_integer(st))
        job->start_time_ms = (int64_t)json_integer_value(st);
    if (json_is_integer(et))
        job->end_time_ms = (int64_t)json_integer_value(et);
}

/* Unlinks a call. */
static void s_unlink(s_call_t *call)
{
    raydash_t *d = call->d;
    if (call->prev)
        call->prev->next = call->next;
    else
        d->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
}

/* Maps one answer onto a result, runs the callback and frees the call. `terr` is the transport's
 * err (0 when an HTTP answer came), `text` the transport's error text, `raw`/`n` the body, `body`
 * its JSON (or NULL). */
static void s_finish(s_call_t *call, int terr, long status, const char *text, const char *raw,
                     size_t n, const json_t *body)
{
    raydash_t *d = call->d;
    raydash_result_t res = {.id = call->id, .status = status};
    buf_t msg;
    buf_init(&msg, RAYDASH_MSG_MAX);
    json_t *parsed = NULL;
    if (!terr && status >= 200 && status < 300 && !body && n > 0 && call->op != OP_SERVE_HEALTHZ)
        jx_parse(raw, n, "dashboard answer", &parsed, NULL);
    if (parsed)
        body = parsed;
    const char *what = s_op_name[call->op];
    if (terr) {
        res.err = terr;
        buf_printf(&msg, "%s: %s", what, text && *text ? text : err_str(terr));
    } else if (status == 404 && call->job_id[0]) {
        res.err = ERR_NOTFOUND;
        buf_printf(&msg, "Job %s does not exist on the cluster", call->job_id);
    } else if (status >= 300 || status < 200) {
        if (call->op == OP_SUBMIT && status >= 400 && s_contains(raw, n, RAYDASH_DUPLICATE))
            res.err = ERR_EXISTS;
        else if (status == 401)
            res.err = ERR_UNAUTHORIZED;
        else if (status == 403)
            res.err = ERR_FORBIDDEN;
        else if (status == 404)
            res.err = ERR_NOTFOUND;
        else if (status >= 500)
            res.err = ERR_SERVER;
        else if (status == 408)
            res.err = ERR_TIMEOUT;
        else
            res.err = status >= 400 ? ERR_INVAL : ERR_PROTO;
        /* an API server Status (the proxy's own 503) says it in "message"; Ray answers text */
        const char *sm =
            strcmp(jx_str(body, "kind", ""), "Status") == 0 ? jx_str(body, "message", NULL) : NULL;
        buf_printf(&msg, "%s: HTTP %ld: ", what, status);
        if (sm)
            s_first_line(&msg, sm, strlen(sm));
        else
            s_first_line(&msg, raw ? raw : "", n);
    } else {
        /* 2xx: the body must be what the API returns for this call */
        bool ok = false;
        switch (call->op) {
        case OP_SUBMIT:
            ok = json_is_object(body) && (json_is_string(json_object_get(body, "submission_id")) ||
                                          json_is_string(json_object_get(body, "job_id")));
            break;
        case OP_GET:
            ok = json_is_object(body) && json_is_string(json_object_get(body, "status"));
            if (ok)
                s_parse_job(body, &res.job);
            break;
        case OP_LIST:
            ok = json_is_array(body);
            break;
        case OP_STOP:
            ok = json_is_object(body) && json_is_boolean(json_object_get(body, "stopped"));
            res.stopped = ok && json_is_true(json_object_get(body, "stopped"));
            break;
        case OP_DELETE: /* {"deleted": true}; the OpenAPI file says a bare boolean */
            ok = json_is_object(body) || json_is_boolean(body);
            break;
        case OP_LOGS:
            ok = json_is_object(body) && json_is_string(json_object_get(body, "logs"));
            res.logs = ok ? json_string_value(json_object_get(body, "logs")) : NULL;
            break;
        case OP_SERVE_GET:
            ok = json_is_object(body) && json_is_object(json_object_get(body, "applications"));
            break;
        case OP_SERVE_PUT: /* an empty body; KubeRay reads none */
            ok = true;
            break;
        case OP_SERVE_HEALTHZ: /* KubeRay: 200 only; the body ("success") is not read */
            ok = status == 200;
            break;
        }
        if (ok) {
            res.body = body;
        } else {
            res.err = ERR_PROTO;
            buf_printf(&msg, "%s: HTTP %ld: unexpected answer: ", what, status);
            s_first_line(&msg, raw ? raw : "", n);
        }
    }
    if (res.err && log_enabled(LOG_DEBUG))
        log_debug("raydash: call failed", "call", what, "job", call->job_id, "error", buf_str(&msg),
                  NULL);
    res.message = buf_str(&msg);
    res.elapsed_us = s_now_us() - call->start_us;
    d->stats.answered++;
    if (res.err)
        d->stats.failed++;
    s_unlink(call);
    raydash_done_fn *fn = call->fn;
    void *arg = call->arg;
    free(call);
    fn(&res, arg);
    json_decref(parsed);
    buf_free(&msg);
}

/* Direct transport's completion. */
static void s_on_http(http_client_t *h, http_response_t *resp, void *arg)
{
    s_call_t *call = arg;
    s_finish(call, resp->err, resp->status, resp->error_text, resp->body.data, resp->body.len,
             NULL);
}

/* Proxy transport's completion. k8s_raw's err for a non-2xx status is dropped (s_finish decides
 * from the status itself); a transport error passes through, also when a status had arrived
 * (a body over the bound, a timeout mid-body). The body is the decoded JSON when it was JSON:
 * the API server's own Status on its errors. */
static void s_on_k8s(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    s_call_t *call = arg;
    bool status_err =
        r->status >= 300 && (r->err == (int)err_from_http_status(r->status) || r->status == 409);
    int terr = r->err && !status_err ? r->err : 0;
    s_finish(call, terr, r->status, r->message, r->raw, r->raw_len, r->body);
}

/* Wipes and frees a string that held a secret. */
static void s_wipe(buf_t *b)
{
    if (b->data) {
        volatile char *v = b->data;
        for (size_t i = 0; i < b->cap; i++)
            v[i] = 0;
    }
    buf_free(b);
}

/* The HTTP method of `op`. */
static const char *s_method(s_op_t op)
{
    switch (op) {
    case OP_SUBMIT:
    case OP_STOP:
        return "POST";
    case OP_DELETE:
        return "DELETE";
    case OP_SERVE_PUT:
        return "PUT";
    default:
        return "GET";
    }
}

/* Appends the dashboard's base for `t`: "http://host:port" (direct) or the API server's service
 * proxy path (proxy). Returns 0, ERR_INVAL when `t` does not fit the client's mode, or the
 * buffer's error. */
static int s_dash_base(const raydash_t *d, const raydash_target_t *t, buf_t *url)
{
    if (d->k8s) {
        if (!t->ns || !*t->ns || !t->service || !*t->service || s_has_ctl(t->ns) ||
            s_has_ctl(t->service))
            return ERR_INVAL;
        int rc = buf_puts(url, "/api/v1/namespaces/");
        if (!rc)
            rc = buf_url_escape(url, t->ns);
        if (!rc)
            rc = buf_puts(url, "/services/");
        if (!rc)
            rc = buf_url_escape(url, t->service);
        if (!rc)
            rc = buf_puts(url, ":" RAYDASH_PORT_NAME "/proxy");
        return rc;
    }
    /* "host:port", or a URL with its scheme (trailing '/' dropped); nothing else */
    const char *a = t->address;
    if (!a || !*a)
        return ERR_INVAL;
    size_t skip = strncmp(a, "http://", 7) == 0 ? 7 : strncmp(a, "https://", 8) == 0 ? 8 : 0;
    size_t n = strlen(a);
    while (n > skip && a[n - 1] == '/')
        n--;
    bool ok = n > skip && !s_has_ctl(a);
    for (size_t i = skip; ok && i < n; i++)
        ok = !strchr(" /?#@\\", a[i]);
    if (!ok)
        return ERR_INVAL;
    int rc = skip ? 0 : buf_puts(url, "http://");
    return rc ? rc : buf_append(url, a, n);
}

/* Appends the base of the Serve proxy on pod `p`: "http://<ip>:<port>" (direct; an IPv6 address
 * bracketed) or the API server's pod proxy path (proxy). The address is an IP or a host name:
 * ASCII letters, digits, '.', '-' and ':' only. Returns 0, ERR_INVAL when `p` does not fit the
 * client's mode, or the buffer's error. */
static int s_pod_base(const raydash_t *d, const raydash_pod_t *p, buf_t *url)
{
    if (p->port < 0 || p->port > 65535)
        return ERR_INVAL;
    long port = p->port ? p->port : RAYDASH_SERVE_PORT;
    if (d->k8s) {
        if (!p->ns || !*p->ns || !p->pod || !*p->pod || s_has_ctl(p->ns) || s_has_ctl(p->pod))
            return ERR_INVAL;
        int rc = buf_puts(url, "/api/v1/namespaces/");
        if (!rc)
            rc = buf_url_escape(url, p->ns);
        if (!rc)
            rc = buf_puts(url, "/pods/");
        if (!rc)
            rc = buf_url_escape(url, p->pod);
        if (!rc)
            rc = buf_printf(url, ":%ld/proxy", port);
        return rc;
    }
    size_t n = p->ip ? strnlen(p->ip, RAYDASH_MAX_IP + 1) : 0;
    if (n == 0 || n > RAYDASH_MAX_IP)
        return ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = p->ip[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':';
        if (!ok)
            return ERR_INVAL;
    }
    bool v6 = strchr(p->ip, ':') != NULL;
    return buf_printf(url, "http://%s%s%s:%ld", v6 ? "[" : "", p->ip, v6 ? "]" : "", port);
}

/* Sends call `op` to `url` (borrowed: a direct URL, or a path on the API server) with `token`
 * (or NULL) and `req` serialized as its JSON body (or NULL: none). `job_id` (or NULL) names the
 * job in messages; `urgent`: through the proxy, in the API client's urgent lane. Returns the call's
 * id or a negative err_t (then fn never runs). */
static int64_t s_send(raydash_t *d, s_op_t op, const char *job_id, const buf_t *url,
                      const char *token, bool urgent, const json_t *req, raydash_done_fn *fn,
                      void *arg)
{
    if (token &&
        (!*token || s_has_ctl(token) || strnlen(token, RAYDASH_MAX_TOKEN + 1) > RAYDASH_MAX_TOKEN))
        return ERR_INVAL;
    if (d->k8s && url->len > RAYDASH_MAX_PATH)
        return ERR_TOOBIG;
    const char *method = s_method(op);
    bool with_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    buf_t auth;
    buf_init(&auth, RAYDASH_MAX_TOKEN + 16);
    char *body = NULL;
    size_t body_len = 0;
    s_call_t *call = NULL;
    int64_t rc = 0;
    if (req) {
        body = json_dumps(req, JSON_COMPACT);
        if (!body) {
            rc = ERR_NOMEM;
            goto fail;
        }
        body_len = strlen(body);
        if (body_len > RAYDASH_MAX_BODY) {
            rc = ERR_TOOBIG;
            goto fail;
        }
    }
    if (token && (rc = buf_printf(&auth, "Bearer %s", token)))
        goto fail;
    call = calloc(1, sizeof(*call));
    if (!call) {
        rc = ERR_NOMEM;
        goto fail;
    }
    call->d = d;
    call->op = op;
    call->fn = fn;
    call->arg = arg;
    call->start_us = s_now_us();
    if (job_id)
        snprintf(call->job_id, sizeof(call->job_id), "%s", job_id);

    http_header_t hdr[4];
    size_t nh = 0;
    if (token)
        hdr[nh++] = (http_header_t){"x-ray-authorization", buf_str(&auth)};
    if (d->k8s) {
        k8s_raw_opts_t o = {.timeout_ms = d->timeout_ms,
                            .max_body = RAYDASH_MAX_BODY,
                            .max_retries = -1,
                            .headers = hdr,
                            .n_headers = nh,
                            .urgent = urgent};
        rc = k8s_raw(d->k8s, method, buf_str(url), with_body ? "application/json" : NULL, body,
                     body_len, &o, s_on_k8s, call);
    } else {
        hdr[nh++] = (http_header_t){"User-Agent", RAYDASH_USER_AGENT};
        hdr[nh++] = (http_header_t){"Accept", "application/json"};
        if (with_body)
            hdr[nh++] = (http_header_t){"Content-Type", "application/json"};
        http_request_t hr = {.method = method,
                             .url = buf_str(url),
                             .headers = hdr,
                             .n_headers = nh,
                             .body = body,
                             .body_len = body_len,
                             .timeout_ms = d->timeout_ms,
                             .connect_timeout_ms = d->timeout_ms,
                             .max_body = RAYDASH_MAX_BODY,
                             .on_done = s_on_http,
                             .arg = call};
        rc = http_request(d->http, &hr);
    }
    if (rc < 0)
        goto fail;
    call->lower = rc;
    call->id = ++d->next_id;
    call->next = d->calls;
    if (d->calls)
        d->calls->prev = call;
    d->calls = call;
    d->stats.calls++;
    free(body);
    s_wipe(&auth);
    return call->id;
fail:
    free(call);
    free(body);
    s_wipe(&auth);
    return rc;
}

/* Starts one dashboard call. Returns its id or a negative err_t (then fn never runs). */
static int64_t s_call(raydash_t *d, const raydash_target_t *t, s_op_t op, const char *job_id,
                      const json_t *req, raydash_done_fn *fn, void *arg)
{
    if (!d || !t || !fn)
        return ERR_INVAL;
    bool with_id = op == OP_GET || op == OP_STOP || op == OP_DELETE || op == OP_LOGS;
    if (with_id && !s_job_id_ok(job_id))
        return ERR_INVAL;
    if ((op == OP_SUBMIT || op == OP_SERVE_PUT) && !json_is_object(req))
        return ERR_INVAL;
    buf_t url;
    buf_init(&url, RAYDASH_MAX_URL);
    int64_t rc = s_dash_base(d, t, &url);
    if (!rc)
        rc = s_path(&url, op, job_id);
    if (!rc)
        rc = s_send(d, op, with_id ? job_id : NULL, &url, t->token, t->urgent, req, fn, arg);
    buf_free(&url);
    return rc;
}

raydash_t *raydash_new(loop_t *loop, const raydash_config_t *cfg)
{
    bool own = cfg && cfg->direct && !cfg->http && !cfg->k8s;
    if (!loop || !cfg || (!own && !cfg->http == !cfg->k8s) || cfg->timeout_ms < 0)
        return NULL;
    raydash_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->loop = loop;
    d->http = cfg->http;
    if (own) {
        d->own_http = http_client_new(loop, &(http_config_t){0});
        if (!d->own_http) {
            free(d);
            return NULL;
        }
        d->http = d->own_http;
    }
    d->k8s = cfg->k8s;
    d->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms
                    : d->k8s            ? RAYDASH_PROXY_TIMEOUT_MS
                                        : RAYDASH_DIRECT_TIMEOUT_MS;
    return d;
}

/* Cancels the transport request of a call and frees it (no callback). */
static void s_drop(s_call_t *call)
{
    raydash_t *d = call->d;
    if (d->k8s)
        k8s_cancel(d->k8s, call->lower);
    else
        http_cancel(d->http, call->lower);
    s_unlink(call);
    free(call);
}

void raydash_destroy(raydash_t **d_p)
{
    if (!d_p || !*d_p)
        return;
    raydash_t *d = *d_p;
    while (d->calls)
        s_drop(d->calls);
    http_client_destroy(&d->own_http);
    free(d);
    *d_p = NULL;
}

int64_t raydash_submit(raydash_t *d, const raydash_target_t *t, const json_t *req,
                       raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_SUBMIT, NULL, req, fn, arg);
}

int64_t raydash_get_job(raydash_t *d, const raydash_target_t *t, const char *job_id,
                        raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_GET, job_id, NULL, fn, arg);
}

int64_t raydash_list_jobs(raydash_t *d, const raydash_target_t *t, raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_LIST, NULL, NULL, fn, arg);
}

int64_t raydash_stop_job(raydash_t *d, const raydash_target_t *t, const char *job_id,
                         raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_STOP, job_id, NULL, fn, arg);
}

int64_t raydash_delete_job(raydash_t *d, const raydash_target_t *t, const char *job_id,
                           raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_DELETE, job_id, NULL, fn, arg);
}

int64_t raydash_job_logs(raydash_t *d, const raydash_target_t *t, const char *job_id,
                         raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_LOGS, job_id, NULL, fn, arg);
}

int64_t raydash_serve_get(raydash_t *d, const raydash_target_t *t, raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_SERVE_GET, NULL, NULL, fn, arg);
}

int64_t raydash_serve_put(raydash_t *d, const raydash_target_t *t, const json_t *config,
                          raydash_done_fn *fn, void *arg)
{
    return s_call(d, t, OP_SERVE_PUT, NULL, config, fn, arg);
}

int64_t raydash_serve_healthz(raydash_t *d, const raydash_pod_t *pod, raydash_done_fn *fn,
                              void *arg)
{
    if (!d || !pod || !fn)
        return ERR_INVAL;
    buf_t url;
    buf_init(&url, RAYDASH_MAX_URL);
    int64_t rc = s_pod_base(d, pod, &url);
    if (!rc)
        rc = s_path(&url, OP_SERVE_HEALTHZ, NULL);
    if (!rc)
        rc = s_send(d, OP_SERVE_HEALTHZ, NULL, &url, NULL, false, NULL, fn, arg);
    buf_free(&url);
    return rc;
}

int raydash_serve_ready(const json_t *answer, size_t *napps, bool *all_running)
{
    if (napps)
        *napps = 0;
    if (all_running)
        *all_running = false;
    json_t *apps = json_object_get(answer, "applications");
    if (!json_is_object(answer) || !json_is_object(apps))
        return ERR_PROTO;
    size_t n = 0;
    bool running = true;
    const char *name;
    json_t *app;
    json_object_foreach(apps, name, app)
    {
        json_t *st = json_object_get(app, "status");
        if (!json_is_object(app) || (st && !json_is_string(st) && !json_is_null(st)))
            return ERR_PROTO;
        if (!json_is_string(st) || strcmp(json_string_value(st), "RUNNING") != 0)
            running = false;
        n++;
    }
    if (napps)
        *napps = n;
    if (all_running)
        *all_running = n > 0 && running;
    return 0;
}

int raydash_cancel(raydash_t *d, int64_t id)
{
    if (!d)
        return ERR_INVAL;
    for (s_call_t *call = d->calls; call; call = call->next)
        if (call->id == id) {
            s_drop(call);
            return 0;
        }
    return ERR_NOTFOUND;
}

bool raydash_status_terminal(const char *status)
{
    return status && (strcmp(status, "STOPPED") == 0 || strcmp(status, "SUCCEEDED") == 0 ||
                      strcmp(status, "FAILED") == 0);
}

void raydash_stats(const raydash_t *d, raydash_stats_t *out)
{
    *out = d->stats;
    out->inflight = 0;
    for (const s_call_t *call = d->calls; call; call = call->next)
        out->inflight++;
}

#ifdef RF_SELFTEST
#include "httpd.h"
#include "selftest.h"

#include <curl/curl.h>
#include <unistd.h>

#define T_TOKEN "sekret-ray-token" /* the head's token (must never reach a log) */
#define T_PREFIX "/api/v1/namespaces/ns1/services/head-svc:dashboard/proxy" /* proxy mode */
#define T_POD_PREFIX "/api/v1/namespaces/ns1/pods/head-pod:8000/proxy" /* proxy, Serve proxy */
#define T_SERVE_EMPTY                                                                              \
    "{\"deploy_mode\":\"MULTI_APP\",\"controller_info\":{},\"proxies\":{},\"applications\":{},"    \
    "\"target_capacity\":null}" /* GET while Serve does not run */

/* The fake head: what it saw. */
typedef struct {
    int hits; /* requests seen */
    char path[512]; /* the last request's raw path (proxy prefix removed) */
    char method[16]; /* its method */
    char ua[128]; /* its User-Agent */
    char ctype[64]; /* its Content-Type */
    char k8s_auth[64]; /* its Authorization (the API server's token, proxy mode) */
    char query[128]; /* the last request's query */
    bool browser; /* a browser-looking request came (Referer, Origin, Sec-Fetch-*, Mozilla) */
    bool proxy; /* paths must start with T_PREFIX (T_POD_PREFIX for the Serve proxy) */
    bool serve_deployed; /* a config was accepted: the apps exist, the Serve proxy routes */
    int serve_gets; /* GETs answered since: app1 is DEPLOYING at the first, then RUNNING */
    bool serve_bad_shape; /* GET answers "applications" as an array */
    int healthz_mode; /* 0 as Serve does, 1 no answer, 2 answers 204, 3 draining */
    bool healthz_token; /* a token came with the last /-/healthz */
} s_t_head_t;

/* Answers a text body. */
static void s_t_text(httpd_conn_t *c, int status, const char *text)
{
    httpd_respond(c, status, "text/plain; charset=utf-8", NULL, text, strlen(text));
}

/* Answers a JSON body. */
static void s_t_json(httpd_conn_t *c, int status, const char *text)
{
    httpd_respond(c, status, "application/json", NULL, text, strlen(text));
}

/* The fake head's handler (routes in the self-test's comment below). */
static void s_t_handle(httpd_conn_t *c, const httpd_req_t *req, void *arg)
{
    s_t_head_t *h = arg;
    const char *v;
    h->hits++;
    const char *path = req->path;
    if (h->proxy) {
        if (strncmp(path, "/api/v1/namespaces/ns1/services/nohead:dashboard/proxy/", 55) == 0) {
            s_t_json(
                c, 503,
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                "\"no endpoints available for service \\\"nohead\\\"\",\"reason\":"
                "\"ServiceUnavailable\",\"code\":503}");
            return;
        }
        if (strncmp(path, "/api/v1/namespaces/ns1/pods/nopod:8000/proxy/", 45) == 0) {
            s_t_json(c, 503,
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                     "\"message\":\"error trying to reach service: dial tcp 10.0.0.9:8000: "
                     "connect: connection refused\",\"reason\":\"ServiceUnavailable\",\"code\":"
                     "503}");
            return;
        }
        if (strncmp(path, T_POD_PREFIX, strlen(T_POD_PREFIX)) == 0) {
            path += strlen(T_POD_PREFIX);
        } else if (strncmp(path, T_PREFIX, strlen(T_PREFIX)) == 0) {
            path += strlen(T_PREFIX);
        } else {
            s_t_json(c, 404, "{\"kind\":\"Status\",\"message\":\"not found\",\"code\":404}");
            return;
        }
    }
    snprintf(h->path, sizeof(h->path), "%s", path);
    snprintf(h->method, sizeof(h->method), "%s", req->method);
    snprintf(h->ua, sizeof(h->ua), "%s", (v = httpd_req_header(req, "User-Agent")) ? v : "");
    snprintf(h->ctype, sizeof(h->ctype), "%s",
             (v = httpd_req_header(req, "Content-Type")) ? v : "");
    snprintf(h->k8s_auth, sizeof(h->k8s_auth), "%s",
             (v = httpd_req_header(req, "Authorization")) ? v : "");
    snprintf(h->query, sizeof(h->query), "%s", req->query);
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, "Referer") == 0 ||
            strcasecmp(req->headers[i].name, "Origin") == 0 ||
            strncasecmp(req->headers[i].name, "Sec-Fetch-", 10) == 0)
            h->browser = true;
    if (strncmp(h->ua, "Mozilla", 7) == 0)
        h->browser = true;
    if (h->browser && (!strcmp(req->method, "POST") || !strcmp(req->method, "PUT"))) {
        s_t_text(c, 405, "Method Not Allowed for browser traffic.");
        return;
    }
    if (strcmp(path, "/-/healthz") == 0) { /* the Serve proxy: no token needed */
        h->healthz_token = httpd_req_header(req, "x-ray-authorization") != NULL;
        if (h->healthz_mode == 1)
            return;
        if (h->healthz_mode == 2)
            httpd_respond(c, 204, NULL, NULL, "", 0);
        else if (h->healthz_mode == 3)
            s_t_text(c, 503, "This node is being drained.");
        else if (!h->serve_deployed)
            s_t_text(c, 503, "Route table is not populated yet.");
        else
            s_t_text(c, 200, "success");
        return;
    }
    v = httpd_req_header(req, "x-ray-authorization");
    if (!v || strcmp(v, "Bearer " T_TOKEN) != 0) {
        s_t_text(c, v ? 403 : 401,
                 v ? "Forbidden: Invalid authentication token"
                   : "Unauthorized: Missing authentication token");
        return;
    }
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    if (get && strcmp(path, "/api/serve/applications/") == 0) {
        if (strcmp(req->query, "api_type=declarative") != 0) {
            s_t_text(c, 400,
                     "Invalid 'api_type' value. Must be one of ['declarative', 'imperative']");
        } else if (h->serve_bad_shape) {
            s_t_json(c, 200, "{\"applications\": []}");
        } else if (!h->serve_deployed) {
            s_t_json(c, 200, T_SERVE_EMPTY);
        } else {
            char out[512];
            snprintf(out, sizeof(out),
                     "{\"deploy_mode\":\"MULTI_APP\",\"applications\":{\"app1\":{\"name\":"
                     "\"app1\",\"route_prefix\":\"/a\",\"status\":\"%s\",\"message\":\"\","
                     "\"deployments\":{}},\"app2\":{\"name\":\"app2\",\"route_prefix\":\"/b\","
                     "\"status\":\"RUNNING\",\"message\":\"\",\"deployments\":{}}}}",
                     h->serve_gets++ == 0 ? "DEPLOYING" : "RUNNING");
            s_t_json(c, 200, out);
        }
    } else if (strcmp(req->method, "PUT") == 0 && strcmp(path, "/api/serve/applications/") == 0) {
        json_t *b = NULL;
        jx_parse(req->body, req->body_len, "serve config", &b, NULL);
        json_t *apps = json_object_get(b, "applications");
        const char *imp = jx_str(json_array_get(apps, 0), "import_path", "");
        if (!json_is_array(apps)) {
            s_t_text(
                c, 400,
                "ValidationError(model='ServeDeploySchema', errors=[{'loc': ('applications',), "
                "'msg': 'field required', 'type': 'value_error.missing'}])\nsecond line");
        } else if (strcmp(imp, "boom.x") == 0) {
            s_t_text(c, 500, "Traceback (most recent call last):\n  File \"serve_head.py\"");
        } else {
            h->serve_deployed = true;
            h->serve_gets = 0;
            httpd_respond(c, 200, "text/plain", NULL, "", 0);
        }
        json_decref(b);
    } else if (post && strcmp(path, "/api/jobs/") == 0) {
        json_t *b = NULL;
        jx_parse(req->body, req->body_len, "submit", &b, NULL);
        const char *sid = jx_str(b, "submission_id", "");
        char out[512];
        if (!b || !*jx_str(b, "entrypoint", ""))
            s_t_text(c, 400, "TypeError: __init__() missing 'entrypoint'");
        else if (strcmp(sid, "dup") == 0)
            s_t_text(c, 500,
                     "Traceback (most recent call last):\nRuntimeError: Request failed with status "
                     "code 400: ValueError: Job with submission_id dup already exists. Please use "
                     "a different submission_id.");
        else if (strcmp(sid, "old-dup") == 0)
            s_t_text(c, 400,
                     "Job with submission_id old-dup already exists. Please use a "
                     "different submission_id.");
        else if (strcmp(sid, "down") == 0)
            s_t_text(c, 500, "No available agent to submit job, please try again later.");
        else if (snprintf(out, sizeof(out), "{\"job_id\": \"%s\", \"submission_id\": \"%s\"}", sid,
                          sid) > 0)
            s_t_json(c, 200, out);
        json_decref(b);
    } else if (get && strcmp(path, "/api/jobs/") == 0) {
        s_t_json(c, 200,
                 "[{\"type\":\"SUBMISSION\",\"submission_id\":\"j1\",\"status\":\"RUNNING\"},"
                 "{\"type\":\"DRIVER\",\"submission_id\":null,\"status\":\"SUCCEEDED\"}]");
    } else if (get && strcmp(path, "/api/jobs/j1") == 0) {
        s_t_json(c, 200,
                 "{\"type\":\"SUBMISSION\",\"job_id\":null,\"submission_id\":\"j1\",\"status\":"
                 "\"RUNNING\",\"entrypoint\":\"python x.py\",\"message\":\"Job is currently "
                 "running.\",\"error_type\":null,\"start_time\":1700000000123,\"end_time\":null,"
                 "\"metadata\":null}");
    } else if (get && strcmp(path, "/api/jobs/j2") == 0) {
        s_t_json(c, 200,
                 "{\"submission_id\":\"j2\",\"status\":\"FAILED\",\"message\":null,\"error_type\":"
                 "\"JOB_ENTRYPOINT_COMMAND_ERROR\",\"start_time\":1700000000000,\"end_time\":"
                 "1700000005123.0}");
    } else if (get && strcmp(path, "/api/jobs/slow") == 0) {
        /* no answer: the client times out or cancels */
    } else if (get && strcmp(path, "/api/jobs/big") == 0) {
        size_t n = RAYDASH_MAX_BODY + 16;
        char *big = malloc(n);
        if (big) {
            memset(big, ' ', n);
            memcpy(big, "{\"status\":\"x\"}", 14);
            httpd_respond(c, 200, "application/json", NULL, big, n);
            free(big);
        }
    } else if (get && strcmp(path, "/api/jobs/text") == 0) {
        s_t_text(c, 200, "this is not JSON");
    } else if (get && strcmp(path, "/api/jobs/nostatus") == 0) {
        s_t_json(c, 200, "{\"submission_id\":\"nostatus\"}");
    } else if (get && strcmp(path, "/api/jobs/boom") == 0) {
        s_t_text(c, 500, "Traceback (most recent call last):\n  File \"x.py\", line 1");
    } else if (post && strcmp(path, "/api/jobs/j1/stop") == 0) {
        s_t_json(c, 200, "{\"stopped\": true}");
    } else if (post && strcmp(path, "/api/jobs/j2/stop") == 0) {
        s_t_json(c, 200, "{\"stopped\": false}");
    } else if (post && strcmp(path, "/api/jobs/text/stop") == 0) {
        s_t_text(c, 200, "stopped");
    } else if (strcmp(req->method, "DELETE") == 0 && strcmp(path, "/api/jobs/j2") == 0) {
        s_t_json(c, 200, "{\"deleted\": true}");
    } else if (strcmp(req->method, "DELETE") == 0 && strcmp(path, "/api/jobs/j1") == 0) {
        s_t_text(c, 500,
                 "Attempted to delete job 'j1', but it is in a non-terminal state RUNNING.");
    } else if (get && strcmp(path, "/api/jobs/j1/logs") == 0) {
        s_t_json(c, 200, "{\"logs\": \"line 1\\nline 2\\n\"}");
    } else {
        const char *id = strncmp(path, "/api/jobs/", 10) == 0 ? path + 10 : path;
        char out[600];
        snprintf(out, sizeof(out), "Job %s does not exist", id);
        s_t_text(c, 404, out);
    }
}

/* One call's outcome, copied out of the callback. */
typedef struct {
    int done; /* callbacks run */
    int err; /* res->err */
    long status; /* res->status */
    char message[RAYDASH_MSG_MAX]; /* res->message */
    char sid[64], jstatus[32], jmessage[64], etype[64]; /* res->job strings */
    int64_t start_ms, end_ms; /* res->job times */
    bool stopped; /* res->stopped */
    char logs[64]; /* res->logs, "" when NULL */
    bool logs_null; /* res->logs was NULL */
    size_t list_n; /* array size of res->body (list) */
    bool body_null; /* res->body was NULL */
    int64_t elapsed_us; /* res->elapsed_us */
    int ready_rc; /* raydash_serve_ready(res->body) */
    size_t napps; /* its application count */
    bool ready; /* its readiness */
    char app1[16]; /* res->body's applications.app1.status, "" when none */
} s_t_res_t;

static void s_t_done(const raydash_result_t *r, void *arg)
{
    s_t_res_t *x = arg;
    x->done++;
    x->err = r->err;
    x->status = r->status;
    snprintf(x->message, sizeof(x->message), "%s", r->message);
    snprintf(x->sid, sizeof(x->sid), "%s", r->job.submission_id ? r->job.submission_id : "(null)");
    snprintf(x->jstatus, sizeof(x->jstatus), "%s", r->job.status ? r->job.status : "(null)");
    snprintf(x->jmessage, sizeof(x->jmessage), "%s", r->job.message ? r->job.message : "(null)");
    snprintf(x->etype, sizeof(x->etype), "%s", r->job.error_type ? r->job.error_type : "(null)");
    x->start_ms = r->job.start_time_ms;
    x->end_ms = r->job.end_time_ms;
    x->stopped = r->stopped;
    x->logs_null = r->logs == NULL;
    snprintf(x->logs, sizeof(x->logs), "%s", r->logs ? r->logs : "");
    x->list_n = json_is_array(r->body) ? json_array_size(r->body) : 0;
    x->body_null = r->body == NULL;
    x->elapsed_us = r->elapsed_us;
    x->ready_rc = raydash_serve_ready(r->body, &x->napps, &x->ready);
    snprintf(x->app1, sizeof(x->app1), "%s", jx_str(r->body, "applications.app1.status", ""));
}

/* A callback that destroys the client (*arg) from inside. */
static void s_t_destroy_cb(const raydash_result_t *r, void *arg)
{
    raydash_destroy((raydash_t **)arg);
}

/* Runs the loop until x->done or `ms` pass; true when exactly one callback ran. */
static bool s_t_wait(loop_t *loop, s_t_res_t *x, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (!x->done && loop_clock_ms() < end)
        loop_run_once(loop, 10);
    return x->done == 1;
}

/* Starts a call with `call` into a fresh *x and waits for it. */
#define T_RUN(x, call)                                                                             \
    do {                                                                                           \
        memset((x), 0, sizeof(*(x)));                                                              \
        int64_t id_ = (call);                                                                      \
        CHECK(id_ > 0);                                                                            \
        if (id_ > 0)                                                                               \
            CHECK(s_t_wait(loop, (x), 5000));                                                      \
    } while (0)

/* The calls both modes share: submit (new, duplicate 500 and 400, missing entrypoint, server
 * error), get (running, failed with a float end_time, 404, escaped id, text, wrong shape), list,
 * stop (true, false, text), delete (ok, 500), logs. */
static int s_t_common(loop_t *loop, raydash_t *d, const raydash_target_t *t, s_t_head_t *h)
{
    int failed = 0;
    s_t_res_t x;
    json_t *req = json_pack("{s:s, s:s, s:{s:s}}", "entrypoint", "python x.py", "submission_id",
                            "new-1", "metadata", "k", "v");
    T_RUN(&x, raydash_submit(d, t, req, s_t_done, &x));
    CHECK(x.err == 0 && x.status == 200 && !x.body_null && *x.message == 0);
    CHECK(strcmp(h->method, "POST") == 0 && strcmp(h->path, "/api/jobs/") == 0);
    CHECK(strcmp(h->ctype, "application/json") == 0 && !h->browser);
    CHECK(strncmp(h->ua, "rayfleet/", 9) == 0);
    json_object_set_new(req, "submission_id", json_string("dup"));
    T_RUN(&x, raydash_submit(d, t, req, s_t_done, &x));
    CHECK(x.err == ERR_EXISTS && x.status == 500 && x.body_null);
    json_object_set_new(req, "submission_id", json_string("old-dup"));
    T_RUN(&x, raydash_submit(d, t, req, s_t_done, &x));
    CHECK(x.err == ERR_EXISTS && x.status == 400);
    json_object_set_new(req, "submission_id", json_string("down"));
    T_RUN(&x, raydash_submit(d, t, req, s_t_done, &x));
    CHECK(x.err == ERR_SERVER && strstr(x.message, "HTTP 500: No available agent"));
    json_object_del(req, "entrypoint");
    T_RUN(&x, raydash_submit(d, t, req, s_t_done, &x));
    CHECK(x.err == ERR_INVAL && x.status == 400 && strstr(x.message, "TypeError"));
    json_decref(req);

    T_RUN(&x, raydash_get_job(d, t, "j1", s_t_done, &x));
    CHECK(x.err == 0 && strcmp(x.sid, "j1") == 0 && strcmp(x.jstatus, "RUNNING") == 0 &&
          strcmp(x.jmessage, "Job is currently running.") == 0 && strcmp(x.etype, "") == 0 &&
          x.start_ms == 1700000000123LL && x.end_ms == 0);
    CHECK(strcmp(h->method, "GET") == 0 && strcmp(h->path, "/api/jobs/j1") == 0);
    T_RUN(&x, raydash_get_job(d, t, "j2", s_t_done, &x));
    CHECK(x.err == 0 && strcmp(x.jstatus, "FAILED") == 0 && strcmp(x.jmessage, "") == 0 &&
          strcmp(x.etype, "JOB_ENTRYPOINT_COMMAND_ERROR") == 0 && x.start_ms == 1700000000000LL &&
          x.end_ms == 1700000005123LL);
    T_RUN(&x, raydash_get_job(d, t, "missing", s_t_done, &x));
    CHECK(x.err == ERR_NOTFOUND && x.status == 404 &&
          strcmp(x.message, "Job missing does not exist on the cluster") == 0);
    CHECK(strcmp(x.sid, "(null)") == 0); /* no job on failure */
    T_RUN(&x, raydash_get_job(d, t, "a/b c?d%é", s_t_done, &x));
    CHECK(x.err == ERR_NOTFOUND && strcmp(h->path, "/api/jobs/a%2Fb%20c%3Fd%25%C3%A9") == 0);
    T_RUN(&x, raydash_get_job(d, t, "text", s_t_done, &x));
    CHECK(x.err == ERR_PROTO && x.status == 200 && x.body_null &&
          strstr(x.message, "this is not JSON"));
    T_RUN(&x, raydash_get_job(d, t, "nostatus", s_t_done, &x));
    CHECK(x.err == ERR_PROTO);
    T_RUN(&x, raydash_get_job(d, t, "boom", s_t_done, &x));
    CHECK(x.err == ERR_SERVER && x.status == 500 &&
          strcmp(x.message, "get job: HTTP 500: Traceback (most recent call last):") == 0);

    T_RUN(&x, raydash_list_jobs(d, t, s_t_done, &x));
    CHECK(x.err == 0 && x.list_n == 2 && strcmp(h->path, "/api/jobs/") == 0);

    T_RUN(&x, raydash_stop_job(d, t, "j1", s_t_done, &x));
    CHECK(x.err == 0 && x.stopped && strcmp(h->method, "POST") == 0 &&
          strcmp(h->path, "/api/jobs/j1/stop") == 0);
    T_RUN(&x, raydash_stop_job(d, t, "j2", s_t_done, &x));
    CHECK(x.err == 0 && !x.stopped);
    T_RUN(&x, raydash_stop_job(d, t, "text", s_t_done, &x));
    CHECK(x.err == ERR_PROTO && !x.stopped);
    T_RUN(&x, raydash_stop_job(d, t, "missing", s_t_done, &x));
    CHECK(x.err == ERR_NOTFOUND);

    T_RUN(&x, raydash_delete_job(d, t, "j2", s_t_done, &x));
    CHECK(x.err == 0 && strcmp(h->method, "DELETE") == 0 && strcmp(h->path, "/api/jobs/j2") == 0);
    T_RUN(&x, raydash_delete_job(d, t, "j1", s_t_done, &x));
    CHECK(x.err == ERR_SERVER && strstr(x.message, "non-terminal state RUNNING"));

    T_RUN(&x, raydash_job_logs(d, t, "j1", s_t_done, &x));
    CHECK(x.err == 0 && !x.logs_null && strcmp(x.logs, "line 1\nline 2\n") == 0 &&
          strcmp(h->path, "/api/jobs/j1/logs") == 0);
    T_RUN(&x, raydash_job_logs(d, t, "missing", s_t_done, &x));
    CHECK(x.err == ERR_NOTFOUND && x.logs_null);
    CHECK(!h->browser);
    return failed;
}

/* The Serve calls both modes share: GET before any PUT (no apps, not ready; the declarative
 * filter sent), the health check refused before Serve runs (503 "Route table is not populated
 * yet.", no token sent), a config refused by validation (400 -> ERR_INVAL with the first line) or
 * failing (500), a good PUT (method, path, content type), app1 DEPLOYING then RUNNING, the health
 * check 200 after, draining, a 204, a GET of the wrong shape. `pod` is the fake head's. */
static int s_t_serve(loop_t *loop, raydash_t *d, const raydash_target_t *t,
                     const raydash_pod_t *pod, s_t_head_t *h)
{
    int failed = 0;
    s_t_res_t x;
    h->serve_deployed = false;
    h->healthz_mode = 0;
    T_RUN(&x, raydash_serve_get(d, t, s_t_done, &x));
    CHECK(x.err == 0 && x.status == 200 && !x.body_null && *x.message == 0);
    CHECK(x.ready_rc == 0 && x.napps == 0 && !x.ready);
    CHECK(strcmp(h->method, "GET") == 0 && strcmp(h->path, "/api/serve/applications/") == 0 &&
          strcmp(h->query, "api_type=declarative") == 0);
    T_RUN(&x, raydash_serve_healthz(d, pod, s_t_done, &x));
    CHECK(x.err == ERR_SERVER && x.status == 503 &&
          strcmp(x.message, "serve healthz: HTTP 503: Route table is not populated yet.") == 0);
    CHECK(strcmp(h->path, "/-/healthz") == 0 && strcmp(h->method, "GET") == 0 && !h->healthz_token);

    json_t *cfg =
        json_pack("{s:s, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "proxy_location", "EveryNode",
                  "applications", "name", "app1", "route_prefix", "/a", "import_path", "m.a:app",
                  "name", "app2", "route_prefix", "/b", "import_path", "m.b:app");
    json_t *bad = json_pack("{s:s}", "proxy_location", "EveryNode");
    T_RUN(&x, raydash_serve_put(d, t, bad, s_t_done, &x));
    CHECK(x.err == ERR_INVAL && x.status == 400 && x.body_null &&
          strncmp(x.message, "put serve apps: HTTP 400: ValidationError(model='ServeDeploySchema'",
                  67) == 0 &&
          strstr(x.message, "second line") == NULL);
    CHECK(strcmp(h->method, "PUT") == 0 && strcmp(h->path, "/api/serve/applications/") == 0 &&
          strcmp(h->ctype, "application/json") == 0 && !h->browser);
    json_object_set_new(bad, "applications",
                        json_pack("[{s:s, s:s}]", "name", "x", "import_path", "boom.x"));
    T_RUN(&x, raydash_serve_put(d, t, bad, s_t_done, &x));
    CHECK(x.err == ERR_SERVER && x.status == 500 &&
          strcmp(x.message, "put serve apps: HTTP 500: Traceback (most recent call last):") == 0);
    json_decref(bad);
    T_RUN(&x, raydash_serve_put(d, t, cfg, s_t_done, &x));
    CHECK(x.err == 0 && x.status == 200 && *x.message == 0 && h->serve_deployed);
    json_decref(cfg);

    T_RUN(&x, raydash_serve_get(d, t, s_t_done, &x));
    CHECK(x.err == 0 && x.ready_rc == 0 && x.napps == 2 && !x.ready &&
          strcmp(x.app1, "DEPLOYING") == 0);
    T_RUN(&x, raydash_serve_get(d, t, s_t_done, &x));
    CHECK(x.err == 0 && x.ready_rc == 0 && x.napps == 2 && x.ready &&
          strcmp(x.app1, "RUNNING") == 0);
    T_RUN(&x, raydash_serve_healthz(d, pod, s_t_done, &x));
    CHECK(x.err == 0 && x.status == 200 && *x.message == 0 && x.body_null && !h->healthz_token);
    h->healthz_mode = 3;
    T_RUN(&x, raydash_serve_healthz(d, pod, s_t_done, &x));
    CHECK(x.err == ERR_SERVER && strstr(x.message, "HTTP 503: This node is being drained."));
    h->healthz_mode = 2;
    T_RUN(&x, raydash_serve_healthz(d, pod, s_t_done, &x));
    CHECK(x.err == ERR_PROTO && x.status == 204);
    h->healthz_mode = 0;
    h->serve_bad_shape = true;
    T_RUN(&x, raydash_serve_get(d, t, s_t_done, &x));
    CHECK(x.err == ERR_PROTO && x.status == 200 && x.body_null &&
          strstr(x.message, "get serve apps: HTTP 200: unexpected answer"));
    h->serve_bad_shape = false;
    return failed;
}

/* raydash_serve_ready() over answers of every shape. */
static int s_t_ready(void)
{
    int failed = 0;
    static const struct {
        const char *answer; /* JSON, or NULL for a NULL answer */
        int rc; /* expected return */
        size_t napps; /* expected count */
        bool ready; /* expected readiness */
    } cases[] = {
        {NULL, ERR_PROTO, 0, false},
        {"[]", ERR_PROTO, 0, false},
        {"{}", ERR_PROTO, 0, false},
        {"{\"applications\": []}", ERR_PROTO, 0, false},
        {"{\"applications\": null}", ERR_PROTO, 0, false},
        {T_SERVE_EMPTY, 0, 0, false},
        {"{\"applications\": {\"a\": {\"status\": \"RUNNING\"}}}", 0, 1, true},
        {"{\"applications\": {\"\": {\"status\": \"RUNNING\"}}}", 0, 1, true},
        {"{\"applications\": {\"a\": {\"status\": \"RUNNING\"}, \"b\": {\"status\": "
         "\"DEPLOYING\"}}}",
         0, 2, false},
        {"{\"applications\": {\"a\": {\"status\": \"running\"}}}", 0, 1, false},
        {"{\"applications\": {\"a\": {\"status\": \"UNHEALTHY\"}}}", 0, 1, false},
        {"{\"applications\": {\"a\": {\"status\": null}}}", 0, 1, false},
        {"{\"applications\": {\"a\": {\"name\": \"a\"}}}", 0, 1, false},
        {"{\"applications\": {\"a\": {\"status\": 1}}}", ERR_PROTO, 0, false},
        {"{\"applications\": {\"a\": \"RUNNING\"}}", ERR_PROTO, 0, false},
        {"{\"applications\": {\"a\": {\"status\": \"RUNNING\"}, \"b\": null}}", ERR_PROTO, 0,
         false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *a = NULL;
        if (cases[i].answer)
            CHECK(jx_parse(cases[i].answer, strlen(cases[i].answer), "case", &a, NULL) == 0);
        size_t n = 99;
        bool ready = true;
        int rc = raydash_serve_ready(a, &n, &ready);
        CHECK(rc == cases[i].rc && n == cases[i].napps && ready == cases[i].ready);
        if (rc != cases[i].rc || n != cases[i].napps || ready != cases[i].ready)
            printf("  serve_ready case %zu: rc %d napps %zu ready %d\n", i, rc, n, ready);
        CHECK(raydash_serve_ready(a, NULL, NULL) == cases[i].rc);
        json_decref(a);
    }
    return failed;
}

int raydash_test(bool verbose)
{
    int failed = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CHECK(raydash_status_terminal("STOPPED") && raydash_status_terminal("SUCCEEDED") &&
          raydash_status_terminal("FAILED") && !raydash_status_terminal("RUNNING") &&
          !raydash_status_terminal("PENDING") && !raydash_status_terminal("") &&
          !raydash_status_terminal(NULL));
    failed += s_t_ready();
    loop_t *loop = loop_new();
    s_t_head_t head = {0};
    httpd_t *srv = loop ? httpd_new(loop, "127.0.0.1", 0, 0, s_t_handle, &head) : NULL;
    http_client_t *http = loop ? http_client_new(loop, NULL) : NULL;
    /* a client of its own for direct calls, or exactly one transport */
    raydash_t *own = loop ? raydash_new(loop, &(raydash_config_t){.direct = true}) : NULL;
    CHECK(own != NULL);
    raydash_destroy(&own);
    CHECK(!loop || !raydash_new(loop, &(raydash_config_t){0}));
    CHECK(loop && srv && http);
    if (!loop || !srv || !http) {
        httpd_destroy(&srv);
        http_client_destroy(&http);
        loop_destroy(&loop);
        return SELFTEST_RESULT("raydash", verbose);
    }
    /* every log line of this test goes to a file, checked for the token at the end */
    char logpath[] = "/tmp/rf-raydash-log-XXXXXX";
    int logfd = mkstemp(logpath);
    CHECK(logfd >= 0);
    if (logfd >= 0)
        log_setup("raydash-test", LOG_DEBUG, logfd);

    CHECK(raydash_new(loop, &(raydash_config_t){0}) == NULL);
    CHECK(raydash_new(loop, &(raydash_config_t){.http = http, .k8s = (k8s_client_t *)http}) ==
          NULL);
    CHECK(raydash_new(NULL, &(raydash_config_t){.http = http}) == NULL);
    raydash_t *d = raydash_new(loop, &(raydash_config_t){.http = http});
    CHECK(d != NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", httpd_port(srv));
    raydash_target_t t = {.address = addr, .token = T_TOKEN};
    s_t_res_t x;

    /* direct mode: the whole API */
    failed += s_t_common(loop, d, &t, &head);
    raydash_pod_t pod = {.ip = "127.0.0.1", .port = httpd_port(srv)};
    failed += s_t_serve(loop, d, &t, &pod, &head);

    /* refused before any request: bad ids, targets, tokens, bodies */
    int hits = head.hits;
    char long_id[RAYDASH_MAX_JOB_ID + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = 0;
    CHECK(raydash_get_job(d, &t, long_id, s_t_done, &x) == ERR_INVAL);
    long_id[RAYDASH_MAX_JOB_ID] = 0; /* 256 bytes: accepted */
    T_RUN(&x, raydash_get_job(d, &t, long_id, s_t_done, &x));
    CHECK(x.err == ERR_NOTFOUND && head.hits == ++hits);
    memset(&x, 0, sizeof(x));
    CHECK(raydash_get_job(d, &t, "", s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_get_job(d, &t, NULL, s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_get_job(d, &t, "a\nb", s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_stop_job(d, &t, "a\tb", s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_delete_job(d, &t, "a\x7f", s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_job_logs(d, &t, "..", s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_get_job(d, &t, "j1", NULL, &x) == ERR_INVAL);
    CHECK(raydash_get_job(d, NULL, "j1", s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_submit(d, &t, NULL, s_t_done, &x) == ERR_INVAL);
    json_t *arr = json_array();
    CHECK(raydash_submit(d, &t, arr, s_t_done, &x) == ERR_INVAL);
    json_decref(arr);
    raydash_target_t bad = t;
    bad.token = "a\r\nX-Injected: 1";
    CHECK(raydash_get_job(d, &bad, "j1", s_t_done, &x) == ERR_INVAL);
    bad = t;
    bad.address = NULL;
    CHECK(raydash_list_jobs(d, &bad, s_t_done, &x) == ERR_INVAL);
    const char *bad_addrs[] = {"", "http://", "h:1/x", "h:1?x", "u@h:1", "h 1", "h:1\n", NULL};
    for (size_t i = 0; bad_addrs[i]; i++) {
        bad.address = bad_addrs[i];
        CHECK(raydash_list_jobs(d, &bad, s_t_done, &x) == ERR_INVAL);
    }
    /* the Serve calls: a config that is not an object or too big, pods that do not fit */
    CHECK(raydash_serve_put(d, &t, NULL, s_t_done, &x) == ERR_INVAL);
    json_t *cfg = json_array();
    CHECK(raydash_serve_put(d, &t, cfg, s_t_done, &x) == ERR_INVAL);
    json_decref(cfg);
    char *huge = malloc(RAYDASH_MAX_BODY + 1);
    if (huge) {
        memset(huge, 'x', RAYDASH_MAX_BODY);
        huge[RAYDASH_MAX_BODY] = 0;
        cfg = json_pack("{s:s}", "import_path", huge);
        CHECK(cfg && raydash_serve_put(d, &t, cfg, s_t_done, &x) == ERR_TOOBIG);
        json_decref(cfg);
        free(huge);
    }
    CHECK(raydash_serve_get(d, NULL, s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_serve_get(d, &t, NULL, &x) == ERR_INVAL);
    CHECK(raydash_serve_healthz(d, NULL, s_t_done, &x) == ERR_INVAL);
    CHECK(raydash_serve_healthz(d, &pod, NULL, &x) == ERR_INVAL);
    CHECK(raydash_serve_healthz(NULL, &pod, s_t_done, &x) == ERR_INVAL);
    char long_ip[80];
    memset(long_ip, '1', sizeof(long_ip) - 1);
    long_ip[sizeof(long_ip) - 1] = 0;
    const raydash_pod_t bad_pods[] = {
        {.port = 8000},
        {.ip = "", .port = 8000},
        {.ip = "1.2.3.4/x", .port = 8000},
        {.ip = "a b", .port = 8000},
        {.ip = "h\n", .port = 8000},
        {.ip = "u@h", .port = 8000},
        {.ip = "[::1]", .port = 8000},
        {.ip = long_ip, .port = 8000},
        {.ip = "1.2.3.4", .port = -1},
        {.ip = "1.2.3.4", .port = 65536},
        {.ns = "ns1", .pod = "head-pod", .port = 8000}, /* direct needs the ip */
    };
    for (size_t i = 0; i < sizeof(bad_pods) / sizeof(bad_pods[0]); i++)
        CHECK(raydash_serve_healthz(d, &bad_pods[i], s_t_done, &x) == ERR_INVAL);
    loop_run_once(loop, 20);
    CHECK(head.hits == hits && x.done == 0);

    /* a scheme and a trailing slash are accepted */
    char url[80];
    snprintf(url, sizeof(url), "http://%s/", addr);
    bad.address = url;
    T_RUN(&x, raydash_list_jobs(d, &bad, s_t_done, &x));
    CHECK(x.err == 0 && x.list_n == 2);

    /* the token: missing -> 401, wrong -> 403 */
    bad = t;
    bad.token = NULL;
    T_RUN(&x, raydash_get_job(d, &bad, "j1", s_t_done, &x));
    CHECK(x.err == ERR_UNAUTHORIZED && x.status == 401 && strstr(x.message, "Missing"));
    bad.token = "wrong";
    T_RUN(&x, raydash_get_job(d, &bad, "j1", s_t_done, &x));
    CHECK(x.err == ERR_FORBIDDEN && x.status == 403);

    /* an oversize body is refused, never truncated */
    T_RUN(&x, raydash_get_job(d, &t, "big", s_t_done, &x));
    CHECK(x.err == ERR_TOOBIG);

    /* connection refused */
    bad = t;
    bad.address = "127.0.0.1:1";
    T_RUN(&x, raydash_get_job(d, &bad, "j1", s_t_done, &x));
    CHECK(x.err == ERR_CONNREFUSED && x.status == 0 && strncmp(x.message, "get job: ", 9) == 0);
    raydash_pod_t rp = {.ip = "127.0.0.1", .port = 1};
    T_RUN(&x, raydash_serve_healthz(d, &rp, s_t_done, &x));
    CHECK(x.err == ERR_CONNREFUSED && x.status == 0 &&
          strncmp(x.message, "serve healthz: ", 15) == 0);
    rp.ip = "::1"; /* bracketed in the URL: refused (or unreachable), never a malformed URL */
    T_RUN(&x, raydash_serve_healthz(d, &rp, s_t_done, &x));
    CHECK(x.err == ERR_CONNREFUSED);

    /* cancel: the callback never runs; stats */
    raydash_stats_t st;
    raydash_stats(d, &st);
    CHECK(st.inflight == 0 && st.calls == st.answered && st.failed > 0 && st.failed < st.answered);
    memset(&x, 0, sizeof(x));
    int64_t id = raydash_get_job(d, &t, "slow", s_t_done, &x);
    CHECK(id > 0);
    raydash_stats(d, &st);
    CHECK(st.inflight == 1);
    for (int i = 0; i < 5; i++)
        loop_run_once(loop, 10);
    CHECK(raydash_cancel(d, id) == 0);
    CHECK(raydash_cancel(d, id) == ERR_NOTFOUND);
    raydash_stats(d, &st);
    CHECK(st.inflight == 0);
    for (int i = 0; i < 10; i++)
        loop_run_once(loop, 10);
    CHECK(x.done == 0);

    /* a callback may destroy the client: its other calls end without callback */
    raydash_t *d2 = raydash_new(loop, &(raydash_config_t){.http = http});
    memset(&x, 0, sizeof(x));
    CHECK(d2 && raydash_get_job(d2, &t, "j1", s_t_destroy_cb, &d2) > 0);
    CHECK(d2 && raydash_get_job(d2, &t, "slow", s_t_done, &x) > 0);
    for (int i = 0; i < 300 && d2; i++)
        loop_run_once(loop, 10);
    CHECK(d2 == NULL && x.done == 0);
    raydash_destroy(&d2);

    /* a slow head: ERR_TIMEOUT after the client's timeout */
    raydash_t *fast = raydash_new(loop, &(raydash_config_t){.http = http, .timeout_ms = 200});
    CHECK(fast != NULL);
    if (fast) {
        T_RUN(&x, raydash_get_job(fast, &t, "slow", s_t_done, &x));
        CHECK(x.err == ERR_TIMEOUT && x.elapsed_us >= 150000 && x.elapsed_us < 2000000);
        head.healthz_mode = 1;
        T_RUN(&x, raydash_serve_healthz(fast, &pod, s_t_done, &x));
        CHECK(x.err == ERR_TIMEOUT && x.elapsed_us >= 150000 && x.elapsed_us < 2000000);
        head.healthz_mode = 0;
        /* destroyed with a call in flight: no callback */
        memset(&x, 0, sizeof(x));
        CHECK(raydash_get_job(fast, &t, "slow", s_t_done, &x) > 0);
        raydash_destroy(&fast);
        CHECK(fast == NULL);
        for (int i = 0; i < 30; i++)
            loop_run_once(loop, 10);
        CHECK(x.done == 0);
    }
    raydash_destroy(&d);
    raydash_destroy(&d);

    /* proxy mode: the same API through an API server's service proxy (the fake head checks the
     * prefix), the API server's own token next to the head's, the proxy's 503 Status */
    head.proxy = true;
    char server[64];
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", httpd_port(srv));
    kubeconfig_t kc = {.server = server, .namespace_ = "default", .token = "api-server-token"};
    k8s_client_t *kcl = k8s_client_new(loop, &kc, NULL);
    CHECK(kcl != NULL);
    d = kcl ? raydash_new(loop, &(raydash_config_t){.k8s = kcl}) : NULL;
    CHECK(d != NULL);
    if (d) {
        raydash_target_t pt = {.ns = "ns1", .service = "head-svc", .token = T_TOKEN};
        failed += s_t_common(loop, d, &pt, &head);
        CHECK(strcmp(head.k8s_auth, "Bearer api-server-token") == 0);
        raydash_pod_t pp = {.ns = "ns1", .pod = "head-pod"}; /* port 0: 8000 (T_POD_PREFIX) */
        failed += s_t_serve(loop, d, &pt, &pp, &head);
        CHECK(strcmp(head.k8s_auth, "Bearer api-server-token") == 0);
        pp.pod = "nopod"; /* the API server cannot reach the pod's port 8000 */
        T_RUN(&x, raydash_serve_healthz(d, &pp, s_t_done, &x));
        if (verbose)
            printf("  nopod: %d %ld %s\n", x.err, x.status, x.message);
        CHECK(x.err == ERR_SERVER && x.status == 503 &&
              strstr(x.message, "dial tcp 10.0.0.9:8000: connect: connection refused"));
        pp.ns = NULL;
        CHECK(raydash_serve_healthz(d, &pp, s_t_done, &x) == ERR_INVAL);
        pp = (raydash_pod_t){.ip = "127.0.0.1", .port = 8000}; /* the proxy needs ns and pod */
        CHECK(raydash_serve_healthz(d, &pp, s_t_done, &x) == ERR_INVAL);
        pp = (raydash_pod_t){.ns = "ns1", .pod = "a\tb"};
        CHECK(raydash_serve_healthz(d, &pp, s_t_done, &x) == ERR_INVAL);
        raydash_target_t nt = pt;
        nt.service = "nohead";
        json_t *req = json_pack("{s:s, s:s}", "entrypoint", "x", "submission_id", "p1");
        hits = head.hits;
        T_RUN(&x, raydash_submit(d, &nt, req, s_t_done, &x));
        if (verbose)
            printf("  nohead: %d %ld %s\n", x.err, x.status, x.message);
        CHECK(x.err == ERR_SERVER && x.status == 503 && head.hits == hits + 1 &&
              strstr(x.message, "no endpoints available for service \"nohead\""));
        T_RUN(&x, raydash_get_job(d, &nt, "j1", s_t_done, &x));
        CHECK(x.err == ERR_SERVER && head.hits == hits + 2); /* one attempt, no retries */
        json_decref(req);
        nt.service = NULL;
        CHECK(raydash_get_job(d, &nt, "j1", s_t_done, &x) == ERR_INVAL);
        T_RUN(&x, raydash_get_job(d, &pt, "big", s_t_done, &x));
        CHECK(x.err == ERR_TOOBIG);
        raydash_t *fast2 = raydash_new(loop, &(raydash_config_t){.k8s = kcl, .timeout_ms = 200});
        if (fast2) {
            T_RUN(&x, raydash_get_job(fast2, &pt, "slow", s_t_done, &x));
            CHECK(x.err == ERR_TIMEOUT && x.elapsed_us < 2000000);
            memset(&x, 0, sizeof(x));
            id = raydash_get_job(fast2, &pt, "slow", s_t_done, &x);
            CHECK(raydash_cancel(fast2, id) == 0);
            for (int i = 0; i < 30; i++)
                loop_run_once(loop, 10);
            CHECK(x.done == 0);
            raydash_destroy(&fast2);
        }
        raydash_destroy(&d);
    }
    k8s_client_destroy(&kcl);

    /* the token never reached a log line (the debug lines of every failure above included) */
    log_setup("rayfleet", LOG_INFO, STDERR_FILENO);
    if (logfd >= 0) {
        char buf[65536];
        ssize_t n = pread(logfd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        CHECK(n > 0 && strstr(buf, "raydash: call failed") != NULL);
        CHECK(strstr(buf, T_TOKEN) == NULL && strstr(buf, "api-server-token") == NULL);
        if (verbose)
            printf("  %zd bytes of logs, no token\n", n);
        close(logfd);
        unlink(logpath);
    }
    httpd_destroy(&srv);
    http_client_destroy(&http);
    loop_destroy(&loop);
    curl_global_cleanup();
    return SELFTEST_RESULT("raydash", verbose);
}

#endif /* RF_SELFTEST */
