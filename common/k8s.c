/*
 * k8s: the asynchronous Kubernetes API client. See k8s.h.
 */
#include "k8s.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef RF_VERSION
#define RF_VERSION "0"
#endif

typedef enum {
    S_QUEUED, /* waiting for a rate-limiter token */
    S_CRED, /* waiting for the exec plugin */
    S_FLIGHT, /* HTTP request in flight */
    S_BACKOFF /* waiting to retry */
} s_state_t;

typedef struct k8s_req k8s_req_t;
struct k8s_req {
    k8s_client_t *c; /* owner */
    int64_t id; /* our id */
    const char *method; /* static string */
    char *url; /* full URL */
    char *body; /* serialized body or NULL */
    size_t body_len; /* bytes at body */
    const char *content_type; /* static or ct_copy, or NULL */
    char *ct_copy; /* k8s_raw(): owned copy of its content type, or NULL */
    bool idempotent; /* 5xx / transport errors may be retried */
    bool is_watch; /* streaming */
    bool urgent; /* queued in the FIFO's urgent lane (k8s_opts_t.urgent) */
    bool streaming; /* a 2xx stream started: never retried */
    bool auth_retried; /* the one 401 retry was used */
    bool in_cb; /* a user callback of this request is running */
    bool cancelled; /* k8s_cancel() ran during in_cb */
    bool slot; /* holds one of the client's max_inflight slots (non-watch attempt in flight) */
    bool raw; /* k8s_raw(): any body is accepted, the caller reads res->raw */
    int max_retries; /* retries allowed after the first attempt */
    int64_t timeout_ms; /* per attempt */
    size_t max_body; /* largest response body */
    http_header_t *extra; /* k8s_raw() extra headers (owned copies; values wiped on free) */
    size_t n_extra; /* entries in extra */
    int attempts; /* attempts sent */
    bool counted; /* this attempt is in rest_client_requests_total already (a watch, at headers) */
    int64_t start_ms; /* when the request was made (rest_client_request_duration_seconds) */
    int64_t enq_ms; /* when the attempt entered the rate limiter */
    int64_t idle_ms; /* watch idle timeout */
    int64_t http_id; /* current HTTP request, 0 when none */
    int64_t timer; /* backoff timer, 0 when none */
    s_state_t state; /* where it is */
    k8s_done_fn *on_done; /* completion */
    k8s_event_fn *on_event; /* watch events */
    void *arg; /* callback argument */
    buf_t line; /* partial watch line */
    jproj_t *proj; /* projection of 2xx bodies / watch events (opts.keep), or NULL */
    const char *res_raw; /* response text handed to on_done, or NULL */
    size_t res_raw_len; /* bytes at res_raw */
    const jproj_span_t *res_items; /* item spans handed to on_done, or NULL */
    size_t res_n_items; /* how many */
    k8s_req_t *next, *prev; /* all requests */
    k8s_req_t *qnext; /* rate-limiter / credential queue */
};

struct k8s_client {
    loop_t *loop; /* the loop */
    const kubeconfig_t *kc; /* borrowed */
    http_client_t *http; /* transport */
    http_tls_t tls; /* base TLS (borrowed from kc) */
    k8s_config_t cfg; /* settings with defaults applied */
    char *user_agent; /* owned */
    int64_t next_id; /* id counter */
    k8s_req_t *all; /* every live request */
    k8s_req_t *qhead, *qtail; /* rate-limiter FIFO */
    k8s_req_t *qutail; /* last request of the FIFO's urgent lane (its front part), or NULL */
    size_t qlen; /* its length */
    int flight; /* slots held (non-watch attempts in flight) */
    k8s_req_t *chead, *ctail; /* requests waiting for credentials */
    double tokens; /* token bucket level */
    int64_t bucket_ms; /* last refill time */
    const char *ev_raw; /* the "object" text of the watch event being delivered, or NULL */
    size_t ev_raw_len; /* bytes at ev_raw */
    int64_t bucket_timer; /* drain timer, 0 when none */
    char *token; /* current bearer token (secret) */
    struct timespec tok_mtime; /* token file mtime */
    off_t tok_size; /* token file size */
    int64_t tok_checked_ms; /* last stat() */
    int64_t tok_read_ms; /* last read */
    kubeconfig_cred_t cred; /* exec plugin credential */
    bool have_cred; /* cred holds a credential */
    kubeconfig_run_t *run; /* exec plugin running, or NULL */
    uint64_t rng; /* jitter PRNG state */
    k8s_stats_t stats; /* counters */
    /* client-go's REST client metrics (k8s_client_metrics), NULL families when off */
    metric_t *m_requests, *m_duration, *m_retries, *m_limiter, *m_req_size, *m_resp_size;
    char host[METRICS_MAX_VALUE]; /* their host label: host[:port] of the server URL */
};

static void s_send(k8s_req_t *r);
static void s_enqueue(k8s_req_t *r);

/* ---------- client-go's REST client metrics ---------- */

/* The code label of an attempt: its HTTP status, or "<error>" when none was received. */
static void s_code(long status, char out[24])
{
    if (status > 0)
        snprintf(out, 24, "%ld", status);
    else
        snprintf(out, 24, "<error>");
}

/* Adds 1 to the series of counter `f` with these label values (no-op when off). */
static void s_m_count(metric_t *f, const char *const *values)
{
    metric_series_t *s = f ? metric_with(f, values) : NULL;
    if (s)
        metric_add(s, 1);
}

/* Records v in the {host, verb} series of histogram `f` (no-op when off). */
static void s_m_observe(const k8s_client_t *c, metric_t *f, const char *verb, double v)
{
    const char *values[] = {c->host, verb};
    metric_series_t *s = f ? metric_with(f, values) : NULL;
    if (s)
        metric_observe(s, v);
}

/* rest_client_requests_total{code,host,method} for one attempt of r. */
static void s_m_result(k8s_req_t *r, long status)
{
    char code[24];
    s_code(status, code);
    const char *values[] = {code, r->c->host, r->method};
    s_m_count(r->c->m_requests, values);
    r->counted = true;
}

/* ---------- helpers ---------- */

static uint64_t s_rand(k8s_client_t *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

static void s_wipe_str(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
    free(s);
}

static int s_seg(buf_t *out, const char *s)
{
    int rc = buf_puts(out, "/");
    return rc ? rc : buf_url_escape(out, s);
}

static int s_param(buf_t *out, bool *first, const char *key, const char *value)
{
    int rc = buf_puts(out, *first ? "?" : "&");
    *first = false;
    if (!rc)
        rc = buf_puts(out, key);
    if (!rc)
        rc = buf_puts(out, "=");
    if (!rc)
        rc = buf_url_escape(out, value);
    return rc;
}

int k8s_path(const k8s_res_t *res, const k8s_opts_t *opts, bool watch, buf_t *out)
{
    if (!res || !res->version || !*res->version || !res->resource || !*res->resource ||
        (res->subresource && *res->subresource && !(res->name && *res->name)))
        return ERR_INVAL;
    size_t mark = out->len;
    int rc;
    if (res->group && *res->group) {
        rc = buf_puts(out, "/apis");
        if (!rc)
            rc = s_seg(out, res->group);
    } else {
        rc = buf_puts(out, "/api");
    }
    if (!rc)
        rc = s_seg(out, res->version);
    if (!rc && res->namespace_ && *res->namespace_) {
        rc = buf_puts(out, "/namespaces");
        if (!rc)
            rc = s_seg(out, res->namespace_);
    }
    if (!rc)
        rc = s_seg(out, res->resource);
    if (!rc && res->name && *res->name)
        rc = s_seg(out, res->name);
    if (!rc && res->subresource && *res->subresource)
        rc = s_seg(out, res->subresource);
    bool first = true;
    if (!rc && watch)
        rc = s_param(out, &first, "watch", "true");
    if (!rc && opts) {
        char num[32];
        if (!rc && opts->label_selector && *opts->label_selector)
            rc = s_param(out, &first, "labelSelector", opts->label_selector);
        if (!rc && opts->field_selector && *opts->field_selector)
            rc = s_param(out, &first, "fieldSelector", opts->field_selector);
        if (!rc && opts->resource_version)
            rc = s_param(out, &first, "resourceVersion", opts->resource_version);
        if (!rc && opts->resource_version_match && *opts->resource_version_match)
            rc = s_param(out, &first, "resourceVersionMatch", opts->resource_version_match);
        if (!rc && opts->continue_token && *opts->continue_token)
            rc = s_param(out, &first, "continue", opts->continue_token);
        if (!rc && opts->limit > 0) {
            snprintf(num, sizeof(num), "%lld", (long long)opts->limit);
            rc = s_param(out, &first, "limit", num);
        }
        if (!rc && opts->allow_bookmarks)
            rc = s_param(out, &first, "allowWatchBookmarks", "true");
        if (!rc && opts->timeout_seconds > 0) {
            snprintf(num, sizeof(num), "%lld", (long long)opts->timeout_seconds);
            rc = s_param(out, &first, "timeoutSeconds", num);
        }
        if (!rc && opts->field_manager && *opts->field_manager)
            rc = s_param(out, &first, "fieldManager", opts->field_manager);
        if (!rc && opts->force)
            rc = s_param(out, &first, "force", "true");
        if (!rc && opts->dry_run)
            rc = s_param(out, &first, "dryRun", "All");
    }
    if (rc) {
        out->len = mark;
        if (out->data)
            out->data[mark] = 0;
    }
    return rc;
}

/* ---------- credentials ---------- */

static void s_token_file_check(k8s_client_t *c, bool force)
{
    const char *tf = c->kc->token_file;
    if (!tf)
        return;
    int64_t now = loop_clock_ms();
    if (!force && c->token && now - c->tok_checked_ms < K8S_TOKEN_CHECK_MS)
        return;
    c->tok_checked_ms = now;
    struct stat st;
    if (stat(tf, &st) != 0) {
        log_warn("k8s: token file not readable", "file", tf, NULL);
        return;
    }
    if (!force && c->token && st.st_mtim.tv_sec == c->tok_mtime.tv_sec &&
        st.st_mtim.tv_nsec == c->tok_mtime.tv_nsec && st.st_size == c->tok_size &&
        now - c->tok_read_ms < K8S_TOKEN_MAX_AGE_MS)
        return;
    FILE *f = fopen(tf, "re");
    if (!f) {
        log_warn("k8s: token file not readable", "file", tf, NULL);
        return;
    }
    char tok[16384];
    size_t n = fread(tok, 1, sizeof(tok) - 1, f);
    fclose(f);
    tok[n] = 0;
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = 0;
    char *copy = strdup(tok);
    volatile char *v = tok;
    for (size_t i = 0; i < sizeof(tok); i++)
        v[i] = 0;
    if (!copy)
        return;
    s_wipe_str(c->token);
    c->token = copy;
    c->tok_mtime = st.st_mtim;
    c->tok_size = st.st_size;
    c->tok_read_ms = now;
    c->stats.auth_reloads++;
}

static bool s_cred_valid(const k8s_client_t *c)
{
    if (!c->have_cred)
        return false;
    if (!c->cred.expires_unix)
        return true;
    return (int64_t)time(NULL) + K8S_EXEC_EXPIRY_SLACK_S < c->cred.expires_unix;
}

static void s_fail(k8s_req_t *r, int err, const char *message);

static void s_exec_done(void *arg, int err, const kubeconfig_cred_t *cred, const char *errtext)
{
    k8s_client_t *c = arg;
    c->run = NULL;
    c->stats.auth_reloads++;
    if (!err) {
        kubeconfig_cred_free(&c->cred);
        c->have_cred = false;
        c->cred.token = cred->token ? strdup(cred->token) : NULL;
        c->cred.cert_data = cred->cert_data ? strdup(cred->cert_data) : NULL;
        c->cred.key_data = cred->key_data ? strdup(cred->key_data) : NULL;
        c->cred.expires_unix = cred->expires_unix;
        c->have_cred = (!cred->token || c->cred.token) && (!cred->cert_data || c->cred.cert_data) &&
                       (!cred->key_data || c->cred.key_data);
        if (!c->have_cred)
            err = ERR_NOMEM;
    } else {
        log_warn("k8s: exec credential plugin failed", "command", c->kc->exec->command, "error",
                 errtext, NULL);
    }
    k8s_req_t *list = c->chead;
    c->chead = c->ctail = NULL;
    while (list) {
        k8s_req_t *r = list;
        list = r->qnext;
        r->qnext = NULL;
        if (err)
            s_fail(r, ERR_UNAUTHORIZED, errtext);
        else
            s_send(r);
    }
}

/* ---------- request lifecycle ---------- */

static void s_unlink_queues(k8s_req_t *r)
{
    k8s_client_t *c = r->c;
    k8s_req_t **pp, *prev = NULL;
    if (r->state == S_QUEUED) {
        for (pp = &c->qhead; *pp; prev = *pp, pp = &(*pp)->qnext)
            if (*pp == r) {
                *pp = r->qnext;
                if (c->qtail == r)
                    c->qtail = prev;
                if (c->qutail == r)
                    c->qutail = prev; /* the lane is the front: prev is urgent too, or NULL */
                c->qlen--;
                break;
            }
    } else if (r->state == S_CRED) {
        for (pp = &c->chead; *pp; prev = *pp, pp = &(*pp)->qnext)
            if (*pp == r) {
                *pp = r->qnext;
                if (c->ctail == r)
                    c->ctail = prev;
                break;
            }
    }
    r->qnext = NULL;
}

static void s_arm_drain(k8s_client_t *c);

/* Gives back r's in-flight slot; a request waiting for one goes on the next loop turn. */
static void s_release_slot(k8s_req_t *r)
{
    if (!r->slot)
        return;
    r->slot = false;
    r->c->flight--;
    s_arm_drain(r->c);
}

/* Frees a request's extra headers, wiping their values (they may hold tokens). */
static void s_free_extra(k8s_req_t *r)
{
    for (size_t i = 0; i < r->n_extra; i++) {
        free((char *)r->extra[i].name);
        s_wipe_str((char *)r->extra[i].value);
    }
    free(r->extra);
    r->extra = NULL;
    r->n_extra = 0;
}

static void s_req_free(k8s_req_t *r)
{
    k8s_client_t *c = r->c;
    s_release_slot(r);
    s_unlink_queues(r);
    if (r->http_id)
        http_cancel(c->http, r->http_id);
    if (r->timer)
        loop_cancel_timer(c->loop, r->timer);
    if (r->prev)
        r->prev->next = r->next;
    else
        c->all = r->next;
    if (r->next)
        r->next->prev = r->prev;
    s_free_extra(r);
    free(r->ct_copy);
    free(r->url);
    free(r->body);
    buf_free(&r->line);
    jproj_destroy(&r->proj);
    free(r);
}

/* Runs on_done with a result and frees the request. */
static void s_finish(k8s_req_t *r, int err, long status, const char *reason, const char *message,
                     json_t *body)
{
    k8s_result_t res = {.id = r->id,
                        .err = err,
                        .status = status,
                        .reason = reason ? reason : "",
                        .message = message ? message : "",
                        .body = body,
                        .attempts = r->attempts,
                        .raw = r->res_raw,
                        .raw_len = r->res_raw_len,
                        .items = r->res_items,
                        .n_items = r->res_n_items};
    r->http_id = 0;
    if (!r->is_watch)
        s_m_observe(r->c, r->c->m_duration, r->method,
                    (double)(loop_clock_ms() - r->start_ms) / 1000.0);
    r->in_cb = true;
    if (r->on_done)
        r->on_done(r->c, &res, r->arg);
    s_req_free(r);
}

static void s_fail(k8s_req_t *r, int err, const char *message)
{
    s_finish(r, err, 0, "", message, NULL);
}

static int64_t s_retry_timer(loop_t *loop, int64_t id, void *arg)
{
    k8s_req_t *r = arg;
    r->timer = 0;
    s_enqueue(r);
    return LOOP_TIMER_DONE;
}

static int64_t s_backoff_ms(k8s_client_t *c, int attempt)
{
    int64_t d = c->cfg.backoff_base_ms;
    for (int i = 1; i < attempt && d < c->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > c->cfg.backoff_max_ms)
        d = c->cfg.backoff_max_ms;
    int64_t half = d / 2;
    return half + (int64_t)(s_rand(c) % (uint64_t)(half + 1));
}

/* Schedules the next attempt of r after delay_ms (< 0: backoff), counting the retry under the
 * status of the attempt that caused it. */
static bool s_schedule_retry(k8s_req_t *r, int64_t delay_ms, long status)
{
    k8s_client_t *c = r->c;
    if (delay_ms < 0)
        delay_ms = s_backoff_ms(c, r->attempts);
    if (delay_ms > K8S_MAX_RETRY_AFTER_MS)
        delay_ms = K8S_MAX_RETRY_AFTER_MS;
    int64_t t = loop_add_timer(c->loop, delay_ms, s_retry_timer, r);
    if (t < 0)
        return false;
    r->timer = t;
    r->state = S_BACKOFF;
    r->http_id = 0;
    c->stats.retries++;
    char code[24];
    s_code(status, code);
    const char *values[] = {code, c->host, r->method};
    s_m_count(c->m_retries, values);
    return true;
}

/* After the string starting at p (on its opening quote): the byte after its closing quote, or
 * NULL when it does not end before `end`. */
static const char *s_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* After the JSON value starting at p: the byte after it, or NULL. The text was validated by the
 * parser already; this only finds where the value ends. */
static const char *s_skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return s_skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && !strchr(",}] \t\r\n", *p))
            p++;
        return p;
    }
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            if (!(p = s_skip_string(p, end)))
                return NULL;
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return NULL;
}

static const char *s_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* The byte span of the top-level "object" member's value in the watch event text `line` (a
 * JSON object the parser accepted). Returns its start and sets *out_len, or NULL. */
static const char *s_object_span(const char *line, size_t len, size_t *out_len)
{
    const char *p = line, *end = line + len;
    p = s_skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p++;
    for (;;) {
        p = s_skip_ws(p, end);
        if (p >= end || *p != '"')
            return NULL;
        const char *key = p + 1;
        const char *after = s_skip_string(p, end);
        if (!after)
            return NULL;
        bool is_object = after - key - 1 == 6 && memcmp(key, "object", 6) == 0;
        p = s_skip_ws(after, end);
        if (p >= end || *p != ':')
            return NULL;
        p = s_skip_ws(p + 1, end);
        const char *vend = s_skip_value(p, end);
        if (!vend)
            return NULL;
        if (is_object) {
            *out_len = (size_t)(vend - p);
            return p;
        }
        p = s_skip_ws(vend, end);
        if (p >= end || *p != ',')
            return NULL;
        p++;
    }
}

static int s_deliver_line(k8s_req_t *r, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return 0;
    json_t *ev = NULL;
    const char *raw = NULL;
    size_t raw_len = 0;
    if (r->proj) {
        jproj_result_t pr;
        int prc = jproj_parse(r->proj, line, len, "watch event", &pr, NULL);
        if (prc != 0)
            return prc;
        ev = pr.value;
        pr.value = NULL;
        if (pr.n_spans == 1) {
            raw = line + pr.spans[0].off;
            raw_len = pr.spans[0].len;
        }
        jproj_result_free(&pr);
        if (strcmp(jx_str(ev, "type", ""), "ERROR") == 0) {
            /* an ERROR event carries a Status: hand it over complete */
            json_decref(ev);
            ev = NULL;
            raw = NULL;
            if (jx_parse(line, len, "watch event", &ev, NULL) != 0)
                return ERR_PARSE;
        }
    } else if (jx_parse(line, len, "watch event", &ev, NULL) != 0) {
        return ERR_PARSE;
    }
    const char *type = jx_str(ev, "type", NULL);
    json_t *obj = json_object_get(ev, "object");
    int rc = 0;
    if (!type || !json_is_object(obj)) {
        rc = ERR_PROTO;
    } else {
        r->c->stats.events++;
        if (!raw)
            raw = s_object_span(line, len, &raw_len);
        r->c->ev_raw = raw;
        r->c->ev_raw_len = raw ? raw_len : 0;
        r->in_cb = true;
        rc = r->on_event(r->c, r->id, type, obj, r->arg);
        r->in_cb = false;
        r->c->ev_raw = NULL;
        r->c->ev_raw_len = 0;
    }
    json_decref(ev);
    return rc;
}

static int s_on_data(http_client_t *h, int64_t id, const void *data, size_t len, void *arg)
{
    k8s_req_t *r = arg;
    r->streaming = true;
    const char *p = data;
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t n = nl ? (size_t)(nl - p) : len;
        int rc;
        if (nl && r->line.len == 0) {
            rc = s_deliver_line(r, p, n);
        } else {
            rc = buf_append(&r->line, p, n);
            if (rc == 0 && nl) {
                rc = s_deliver_line(r, r->line.data, r->line.len);
                buf_reset(&r->line);
            }
        }
        if (r->cancelled) {
            r->http_id = 0; /* http_cancel() ran already */
            s_req_free(r);
            return ERR_CLOSED;
        }
        if (rc)
            return rc;
        if (!nl)
            break;
        p += n + 1;
        len -= n + 1;
    }
    return 0;
}

/* A watch's status and headers: it counts in rest_client_requests_total now, as client-go's does
 * when its response arrives, not when the stream ends minutes later. */
static int s_on_headers(http_client_t *h, const http_response_t *resp, void *arg)
{
    (void)h;
    s_m_result(arg, resp->status);
    return 0;
}

static bool s_refreshable(const k8s_client_t *c)
{
    return c->kc->token_file || c->kc->exec;
}

static void s_on_http(http_client_t *h, http_response_t *resp, void *arg)
{
    k8s_req_t *r = arg;
    k8s_client_t *c = r->c;
    r->http_id = 0;
    s_release_slot(r);
    if (!r->counted)
        s_m_result(r, resp->status);
    if (!r->is_watch && resp->status > 0)
        s_m_observe(c, c->m_resp_size, r->method, (double)resp->body.len);
    json_t *body = NULL;
    jproj_result_t pr = {0};
    bool projected = false;
    if (resp->body.len > 0 && r->proj && !resp->err && resp->status >= 200 && resp->status < 300) {
        if (jproj_parse(r->proj, resp->body.data, resp->body.len, "response", &pr, NULL) == 0) {
            body = pr.value;
            pr.value = NULL;
            projected = true;
        }
    } else if (resp->body.len > 0) {
        jx_parse(resp->body.data, resp->body.len, "response", &body, NULL);
    }
    r->res_raw = resp->body.len > 0 ? resp->body.data : NULL;
    r->res_raw_len = resp->body.len;
    r->res_items = projected && pr.span_found ? pr.spans : NULL;
    r->res_n_items = projected && pr.span_found ? pr.n_spans : 0;
    int err = resp->err;
    long status = resp->status;
    const char *reason = "", *message = resp->error_text;
    if (body && strcmp(jx_str(body, "kind", ""), "Status") == 0) {
        reason = jx_str(body, "reason", "");
        if (status >= 300 || err)
            message = jx_str(body, "message", message);
    }
    if (!err && status >= 300) {
        err = err_from_http_status(status);
        if (status == 409 && strcmp(reason, "AlreadyExists") == 0)
            err = ERR_EXISTS;
        if (!*message)
            message = reason;
    } else if (!err && r->is_watch) {
        /* normal end of a stream: a last line without newline is still an event */
        if (r->line.len > 0 && r->on_event) {
            int rc = s_deliver_line(r, r->line.data, r->line.len);
            buf_reset(&r->line);
            if (r->cancelled) {
                json_decref(body);
                jproj_result_free(&pr);
                s_req_free(r);
                return;
            }
            err = rc;
        }
    } else if (!err && !body && resp->body.len > 0 && !r->raw) {
        err = ERR_PARSE;
        message = "response body is not JSON";
    }

    /* retry decisions */
    bool can_retry = !r->streaming && r->attempts <= r->max_retries;
    int64_t delay = -1;
    bool retry = false;
    if (status == 401 && !r->auth_retried && s_refreshable(c) && !r->streaming) {
        r->auth_retried = true;
        if (c->kc->exec) {
            kubeconfig_cred_free(&c->cred);
            c->have_cred = false;
        }
        s_token_file_check(c, true);
        retry = true;
        delay = 0;
        r->attempts--; /* the auth retry is free */
    } else if (can_retry && status == 429) {
        retry = true;
    } else if (can_retry && resp->err == ERR_CONNREFUSED) {
        retry = true;
    } else if (can_retry && r->idempotent &&
               ((status >= 500 && !resp->err) ||
                (resp->err && resp->err != ERR_TOOBIG && resp->err != ERR_INVAL &&
                 resp->err != ERR_TLS))) {
        retry = true;
    }
    if (retry) {
        if (delay < 0) {
            delay = http_retry_after_ms(resp);
            if (delay < 0 && body) {
                json_int_t ra = jx_int(body, "details.retryAfterSeconds", -1);
                if (ra >= 0)
                    delay = (int64_t)ra * 1000;
            }
        }
        if (s_schedule_retry(r, delay, status)) {
            json_decref(body);
            jproj_result_free(&pr);
            r->res_raw = NULL;
            r->res_items = NULL;
            r->res_n_items = r->res_raw_len = 0;
            return;
        }
    }
    if (err && err != ERR_CLOSED && log_enabled(LOG_DEBUG)) {
        char st[16];
        snprintf(st, sizeof(st), "%ld", status);
        log_debug("k8s: request failed", "method", r->method, "status", st, "reason", reason,
                  "error", err_str(err), NULL);
    }
    s_finish(r, err, status, reason, message, body);
    json_decref(body);
    jproj_result_free(&pr);
}

/* Sends one attempt now (a token was taken). */
static void s_send(k8s_req_t *r)
{
    k8s_client_t *c = r->c;
    if (c->kc->exec && !s_cred_valid(c)) {
        r->state = S_CRED;
        r->qnext = NULL;
        if (c->ctail)
            c->ctail->qnext = r;
        else
            c->chead = r;
        c->ctail = r;
        if (!c->run) {
            int rc = kubeconfig_exec_run(c->loop, c->kc, s_exec_done, c, &c->run);
            if (rc) {
                c->run = NULL;
                s_unlink_queues(r);
                s_fail(r, ERR_UNAUTHORIZED, "exec credential plugin could not start");
            }
        }
        return;
    }
    s_token_file_check(c, false);
    const char *token = c->kc->exec ? c->cred.token : c->token ? c->token : c->kc->token;
    http_header_t hdr[3 + K8S_RAW_MAX_HEADERS];
    size_t nh = 0;
    bool accept = true;
    for (size_t i = 0; i < r->n_extra; i++)
        if (strcasecmp(r->extra[i].name, "Accept") == 0)
            accept = false;
    if (accept)
        hdr[nh++] = (http_header_t){"Accept", "application/json"};
    if (r->content_type)
        hdr[nh++] = (http_header_t){"Content-Type", r->content_type};
    for (size_t i = 0; i < r->n_extra; i++)
        hdr[nh++] = r->extra[i];
    char *auth = NULL;
    if (token && *token) {
        size_t n = strlen(token) + 8;
        auth = malloc(n);
        if (!auth) {
            s_fail(r, ERR_NOMEM, "out of memory");
            return;
        }
        snprintf(auth, n, "Bearer %s", token);
        hdr[nh++] = (http_header_t){"Authorization", auth};
    }
    http_tls_t tls = c->tls;
    bool own_tls = false;
    if (c->kc->exec && c->cred.cert_data && c->cred.key_data) {
        tls.cert_file = tls.key_file = NULL;
        tls.cert_data = c->cred.cert_data;
        tls.cert_data_len = strlen(c->cred.cert_data);
        tls.key_data = c->cred.key_data;
        tls.key_data_len = strlen(c->cred.key_data);
        own_tls = true;
    }
    http_request_t req = {.method = r->method,
                          .url = r->url,
                          .headers = hdr,
                          .n_headers = nh,
                          .body = r->body,
                          .body_len = r->body_len,
                          .body_borrowed = true,
                          .timeout_ms = r->is_watch ? HTTP_NO_TIMEOUT : r->timeout_ms,
                          .idle_timeout_ms = r->is_watch ? r->idle_ms : 0,
                          .max_body = r->max_body,
                          .tls = own_tls ? &tls : NULL,
                          .on_done = s_on_http,
                          .on_data = r->is_watch ? s_on_data : NULL,
                          .on_headers = r->is_watch && c->m_requests ? s_on_headers : NULL,
                          .arg = r};
    r->attempts++;
    c->stats.attempts++;
    r->counted = false;
    s_m_observe(c, c->m_req_size, r->method, (double)r->body_len);
    r->state = S_FLIGHT;
    buf_reset(&r->line);
    int64_t id = http_request(c->http, &req);
    if (auth) {
        s_wipe_str(auth);
    }
    if (id < 0) {
        s_fail(r, (int)id, "http request could not start");
        return;
    }
    r->http_id = id;
}

/* Token bucket. */
static void s_refill(k8s_client_t *c)
{
    int64_t now = loop_clock_ms();
    if (now > c->bucket_ms) {
        c->tokens += (double)(now - c->bucket_ms) * c->cfg.qps / 1000.0;
        if (c->tokens > c->cfg.burst)
            c->tokens = c->cfg.burst;
        c->bucket_ms = now;
    }
}

static int64_t s_drain(loop_t *loop, int64_t id, void *arg);

/* Whether r may go now as far as in-flight slots go: watches never wait for one (they hold a
 * connection for minutes); other requests wait while max_inflight are in flight, so that what
 * the transport cannot send yet waits here, in order, and not in curl's pending list. */
static bool s_slot_free(const k8s_req_t *r)
{
    return r->is_watch || r->c->flight < r->c->cfg.max_inflight;
}

/* Sends r, taking a slot unless it is a watch. */
static void s_go(k8s_req_t *r)
{
    s_m_observe(r->c, r->c->m_limiter, r->method, (double)(loop_clock_ms() - r->enq_ms) / 1000.0);
    if (!r->is_watch) {
        r->slot = true;
        r->c->flight++;
    }
    s_send(r);
}

/* Arms the drain timer when the head of the FIFO can go: at once when it waits only for a slot
 * that is free now, when a token comes back when it waits for one. A head waiting for a slot with
 * none free is drained by s_release_slot(). */
static void s_arm_drain(k8s_client_t *c)
{
    if (c->bucket_timer || !c->qhead || !s_slot_free(c->qhead))
        return;
    int64_t ms = 0;
    if (c->cfg.qps > 0) {
        s_refill(c);
        double need = 1.0 - c->tokens;
        ms = need <= 0 ? 0 : (int64_t)(need * 1000.0 / c->cfg.qps) + 1;
    }
    int64_t t = loop_add_timer(c->loop, ms, s_drain, c);
    c->bucket_timer = t > 0 ? t : 0;
}

static int64_t s_drain(loop_t *loop, int64_t id, void *arg)
{
    k8s_client_t *c = arg;
    c->bucket_timer = 0;
    if (c->cfg.qps > 0)
        s_refill(c);
    while (c->qhead && (c->cfg.qps <= 0 || c->tokens >= 1.0) && s_slot_free(c->qhead)) {
        k8s_req_t *r = c->qhead;
        c->qhead = r->qnext;
        if (!c->qhead)
            c->qtail = NULL;
        if (c->qutail == r)
            c->qutail = NULL;
        c->qlen--;
        r->qnext = NULL;
        if (c->cfg.qps > 0)
            c->tokens -= 1.0;
        s_go(r);
    }
    s_arm_drain(c);
    return LOOP_TIMER_DONE;
}

/* Puts a request through the rate limiter and the in-flight bound: sent now when a token and a
 * slot are free and nobody waits ahead of it (a watch needs no slot, and passes requests that
 * wait only for one); otherwise it waits in the FIFO. */
static void s_enqueue(k8s_req_t *r)
{
    k8s_client_t *c = r->c;
    r->state = S_QUEUED;
    r->qnext = NULL;
    r->enq_ms = loop_clock_ms();
    if (c->cfg.qps > 0)
        s_refill(c);
    /* A watch with a token free goes ahead of requests that wait only for a slot; so does an
     * urgent request when no urgent one waits. */
    if (((r->urgent ? c->qutail : c->qhead) && !r->is_watch) ||
        (c->cfg.qps > 0 && c->tokens < 1.0) || !s_slot_free(r)) {
        if (r->urgent) {
            /* behind the urgent lane, ahead of the rest */
            k8s_req_t **pp = c->qutail ? &c->qutail->qnext : &c->qhead;
            r->qnext = *pp;
            *pp = r;
            if (!r->qnext)
                c->qtail = r;
            c->qutail = r;
        } else if (c->qtail) {
            c->qtail->qnext = r;
            c->qtail = r;
        } else {
            c->qhead = c->qtail = r;
        }
        c->qlen++;
        c->stats.throttled++;
        s_arm_drain(c);
        return;
    }
    if (c->cfg.qps > 0)
        c->tokens -= 1.0;
    s_go(r);
}

static int64_t s_start_timer(loop_t *loop, int64_t id, void *arg)
{
    k8s_req_t *r = arg;
    r->timer = 0;
    s_enqueue(r);
    return LOOP_TIMER_DONE;
}

/* The projection of opts->keep for a request: paths under "items." for a list (spans of the items),
 * under "object." for a watch (span of the object), as they are for other verbs. *out NULL when
 * there is nothing to project. Returns 0, ERR_INVAL (bad or too many paths) or ERR_NOMEM. */
static int s_projection(const k8s_opts_t *opts, bool watch, bool list, jproj_t **out)
{
    *out = NULL;
    if (!opts || !opts->keep)
        return 0;
    const char *prefix = watch ? "object." : list ? "items." : "";
    char *paths[JPROJ_MAX_PATHS + 1] = {0};
    size_t n = 0;
    int rc = ERR_INVAL;
    const char *fixed[] = {watch ? "type" : "kind", watch ? "object.kind" : "apiVersion",
                           watch  ? "object.apiVersion"
                           : list ? "metadata"
                                  : NULL,
                           NULL};
    for (size_t i = 0; fixed[i]; i++)
        if (!(paths[n++] = strdup(fixed[i]))) {
            rc = ERR_NOMEM;
            goto done;
        }
    for (size_t i = 0; opts->keep[i]; i++) {
        if (n >= JPROJ_MAX_PATHS)
            goto done;
        size_t len = strlen(prefix) + strlen(opts->keep[i]) + 1;
        if (!(paths[n] = malloc(len))) {
            rc = ERR_NOMEM;
            goto done;
        }
        snprintf(paths[n++], len, "%s%s", prefix, opts->keep[i]);
    }
    *out = jproj_new((const char *const *)paths, watch ? "object" : list ? "items" : NULL);
    rc = *out ? 0 : ERR_INVAL;
done:
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    return rc;
}

/* Gives a built request its id, the client's per-attempt defaults where unset, and links it;
 * its first attempt starts from a zero-delay timer so that no callback runs inside the caller's
 * call. Returns 0 or the timer's error (then r is not linked and the caller frees it). */
static int s_launch(k8s_client_t *c, k8s_req_t *r)
{
    if (!r->raw) {
        r->max_retries = c->cfg.max_retries;
        r->timeout_ms = c->cfg.timeout_ms;
        r->max_body = c->cfg.max_body;
    }
    r->id = ++c->next_id;
    r->start_ms = loop_clock_ms();
    r->state = S_BACKOFF;
    int64_t t = loop_add_timer(c->loop, 0, s_start_timer, r);
    if (t < 0)
        return (int)t;
    r->timer = t;
    r->next = c->all;
    if (c->all)
        c->all->prev = r;
    c->all = r;
    c->stats.requests++;
    return 0;
}

static int64_t s_start(k8s_client_t *c, const char *method, const k8s_res_t *res,
                       const k8s_opts_t *opts, bool watch, bool list, json_t *body_owned,
                       const char *content_type, bool idempotent, k8s_done_fn *fn,
                       k8s_event_fn *on_event, void *arg)
{
    int64_t rc = ERR_INVAL;
    k8s_req_t *r = NULL;
    buf_t url;
    buf_init(&url, K8S_MAX_URL);
    if (!c || !fn || (watch && !on_event))
        goto fail;
    if (c->qlen >= c->cfg.max_queue) {
        rc = ERR_BUSY;
        goto fail;
    }
    rc = buf_puts(&url, c->kc->server);
    if (!rc)
        rc = k8s_path(res, opts, watch, &url);
    if (rc)
        goto fail;
    rc = ERR_NOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        goto fail;
    buf_init(&r->line, c->cfg.max_event);
    rc = s_projection(opts, watch, list, &r->proj);
    if (rc)
        goto fail;
    rc = ERR_NOMEM;
    r->c = c;
    r->method = method;
    r->url = buf_take(&url, NULL);
    if (!r->url)
        goto fail;
    if (body_owned) {
        r->body = json_dumps(body_owned, JSON_COMPACT);
        if (!r->body)
            goto fail;
        r->body_len = strlen(r->body);
        if (r->body_len > HTTP_DEFAULT_MAX_BODY) {
            rc = ERR_TOOBIG;
            goto fail;
        }
    }
    r->content_type = content_type;
    r->idempotent = idempotent;
    r->is_watch = watch;
    r->urgent = opts && opts->urgent;
    r->on_done = fn;
    r->on_event = on_event;
    r->arg = arg;
    if (watch)
        r->idle_ms = 1000 * ((opts && opts->timeout_seconds > 0)
                                 ? opts->timeout_seconds + K8S_WATCH_IDLE_SLACK_S
                                 : K8S_WATCH_DEFAULT_IDLE_S);
    rc = s_launch(c, r);
    if (rc)
        goto fail;
    json_decref(body_owned);
    return r->id;
fail:
    if (r) {
        free(r->url);
        free(r->body);
        jproj_destroy(&r->proj);
        free(r);
    }
    buf_free(&url);
    json_decref(body_owned);
    return rc;
}

int64_t k8s_get(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts, k8s_done_fn *fn,
                void *arg)
{
    if (!res || !res->name)
        return ERR_INVAL;
    return s_start(c, "GET", res, opts, false, false, NULL, NULL, true, fn, NULL, arg);
}

int64_t k8s_list(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts, k8s_done_fn *fn,
                 void *arg)
{
    return s_start(c, "GET", res, opts, false, true, NULL, NULL, true, fn, NULL, arg);
}

int64_t k8s_create(k8s_client_t *c, const k8s_res_t *res, const json_t *obj, const k8s_opts_t *opts,
                   k8s_done_fn *fn, void *arg)
{
    if (!obj)
        return ERR_INVAL;
    return s_start(c, "POST", res, opts, false, false, json_incref((json_t *)obj),
                   "application/json", false, fn, NULL, arg);
}

int64_t k8s_update(k8s_client_t *c, const k8s_res_t *res, const json_t *obj, const k8s_opts_t *opts,
                   k8s_done_fn *fn, void *arg)
{
    if (!obj || !res || !res->name)
        return ERR_INVAL;
    const char *rv = jx_str(obj, "metadata.resourceVersion", "");
    return s_start(c, "PUT", res, opts, false, false, json_incref((json_t *)obj),
                   "application/json", *rv != 0, fn, NULL, arg);
}

int64_t k8s_patch(k8s_client_t *c, const k8s_res_t *res, k8s_patch_type_t type, const json_t *patch,
                  const k8s_opts_t *opts, k8s_done_fn *fn, void *arg)
{
    if (!patch || !res || !res->name)
        return ERR_INVAL;
    const char *ct;
    switch (type) {
    case K8S_PATCH_MERGE:
        ct = "application/merge-patch+json";
        break;
    case K8S_PATCH_JSON:
        ct = "application/json-patch+json";
        break;
    case K8S_PATCH_STRATEGIC:
        ct = "application/strategic-merge-patch+json";
        break;
    case K8S_PATCH_APPLY:
        if (!opts || !opts->field_manager || !*opts->field_manager)
            return ERR_INVAL;
        ct = "application/apply-patch+yaml";
        break;
    default:
        return ERR_INVAL;
    }
    return s_start(c, "PATCH", res, opts, false, false, json_incref((json_t *)patch), ct,
                   type == K8S_PATCH_APPLY, fn, NULL, arg);
}

int64_t k8s_delete(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts, k8s_done_fn *fn,
                   void *arg)
{
    if (!res || !res->name)
        return ERR_INVAL;
    json_t *body = NULL;
    bool precond = false;
    if (opts && (opts->propagation_policy || opts->has_grace_period || opts->precondition_uid ||
                 opts->precondition_rv)) {
        body = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
        if (!body)
            return ERR_NOMEM;
        int e = 0;
        if (opts->propagation_policy)
            e |= json_object_set_new(body, "propagationPolicy",
                                     json_string(opts->propagation_policy));
        if (opts->has_grace_period)
            e |= json_object_set_new(body, "gracePeriodSeconds",
                                     json_integer(opts->grace_period_seconds));
        if (opts->precondition_uid)
            e |= jx_set_path(body, "preconditions.uid", json_string(opts->precondition_uid));
        if (opts->precondition_rv)
            e |= jx_set_path(body, "preconditions.resourceVersion",
                             json_string(opts->precondition_rv));
        if (e) {
            json_decref(body);
            return ERR_NOMEM;
        }
        precond = opts->precondition_uid || opts->precondition_rv;
    }
    return s_start(c, "DELETE", res, opts, false, false, body, body ? "application/json" : NULL,
                   precond, fn, NULL, arg);
}

int64_t k8s_watch(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts,
                  k8s_event_fn *on_event, k8s_done_fn *on_done, void *arg)
{
    if (res && res->name)
        return ERR_INVAL;
    return s_start(c, "GET", res, opts, true, false, NULL, NULL, true, on_done, on_event, arg);
}

/* True when `s` holds a byte that may not appear in a request line or header (controls, DEL);
 * `space` also refuses the blank. */
static bool s_has_ctl(const char *s, bool space)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (space && *p == ' '))
            return true;
    return false;
}

/* Copies the extra headers of `o` into r (validated: a name without ':' or blanks, no control
 * bytes anywhere). Returns 0, ERR_INVAL, ERR_TOOBIG (too many) or ERR_NOMEM. */
static int s_copy_extra(k8s_req_t *r, const k8s_raw_opts_t *o)
{
    if (!o || o->n_headers == 0)
        return 0;
    if (!o->headers)
        return ERR_INVAL;
    if (o->n_headers > K8S_RAW_MAX_HEADERS)
        return ERR_TOOBIG;
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *n = o->headers[i].name, *v = o->headers[i].value;
        if (!n || !*n || strchr(n, ':') || s_has_ctl(n, true) || (v && s_has_ctl(v, false)))
            return ERR_INVAL;
    }
    r->extra = calloc(o->n_headers, sizeof(*r->extra));
    if (!r->extra)
        return ERR_NOMEM;
    for (size_t i = 0; i < o->n_headers; i++) {
        const char *v = o->headers[i].value ? o->headers[i].value : "";
        r->extra[i].name = strdup(o->headers[i].name);
        r->extra[i].value = strdup(v);
        r->n_extra++;
        if (!r->extra[i].name || !r->extra[i].value)
            return ERR_NOMEM;
    }
    return 0;
}

int64_t k8s_raw(k8s_client_t *c, const char *method, const char *path, const char *content_type,
                const void *body, size_t len, const k8s_raw_opts_t *o, k8s_done_fn *fn, void *arg)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL};
    if (!c || !fn || !method || !path || path[0] != '/' || s_has_ctl(path, true) ||
        strchr(path, '#') || (len && !body) || (content_type && s_has_ctl(content_type, false)))
        return ERR_INVAL;
    const char *m = NULL; /* a static string: requests keep the method pointer */
    for (size_t i = 0; methods[i] && !m; i++)
        if (strcmp(methods[i], method) == 0)
            m = methods[i];
    if (!m)
        return ERR_INVAL;
    if (len > HTTP_DEFAULT_MAX_BODY)
        return ERR_TOOBIG;
    if (c->qlen >= c->cfg.max_queue)
        return ERR_BUSY;
    buf_t url;
    buf_init(&url, K8S_MAX_URL);
    int rc = buf_puts(&url, c->kc->server);
    if (!rc)
        rc = buf_puts(&url, path);
    if (rc) {
        buf_free(&url);
        return rc;
    }
    k8s_req_t *r = calloc(1, sizeof(*r));
    if (!r) {
        buf_free(&url);
        return ERR_NOMEM;
    }
    r->c = c;
    r->raw = true;
    r->method = m;
    buf_init(&r->line, c->cfg.max_event);
    rc = ERR_NOMEM;
    if (!(r->url = buf_take(&url, NULL)))
        goto fail;
    if (content_type && !(r->ct_copy = strdup(content_type)))
        goto fail;
    r->content_type = r->ct_copy;
    if (len) {
        if (!(r->body = malloc(len)))
            goto fail;
        memcpy(r->body, body, len);
        r->body_len = len;
    }
    if ((rc = s_copy_extra(r, o)))
        goto fail;
    /* only what cannot have changed anything on the server is retried (file comment) */
    r->idempotent = m == methods[0] || m == methods[1];
    r->urgent = o && o->urgent;
    int mr = o ? o->max_retries : 0;
    r->max_retries = mr < 0 ? 0 : mr > 0 ? mr : c->cfg.max_retries;
    r->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : c->cfg.timeout_ms;
    r->max_body = o && o->max_body > 0 ? o->max_body : c->cfg.max_body;
    r->on_done = fn;
    r->arg = arg;
    if ((rc = s_launch(c, r)))
        goto fail;
    return r->id;
fail:
    s_free_extra(r);
    free(r->ct_copy);
    free(r->url);
    free(r->body);
    free(r);
    buf_free(&url);
    return rc;
}

int k8s_cancel(k8s_client_t *c, int64_t id)
{
    if (!c)
        return ERR_INVAL;
    for (k8s_req_t *r = c->all; r; r = r->next) {
        if (r->id != id || r->cancelled)
            continue;
        if (r->in_cb) {
            /* its own callback is running: freed when that returns */
            r->cancelled = true;
            r->on_done = NULL;
            r->on_event = NULL;
            if (r->http_id)
                http_cancel(c->http, r->http_id);
            return 0;
        }
        s_req_free(r);
        return 0;
    }
    return ERR_NOTFOUND;
}

void k8s_client_stats(const k8s_client_t *c, k8s_stats_t *out)
{
    *out = c->stats;
    out->queued = c->qlen;
    size_t n = 0;
    for (k8s_req_t *r = c->all; r; r = r->next)
        n++;
    out->in_flight = n;
}

const char *k8s_client_namespace(const k8s_client_t *c)
{
    return c->kc->namespace_ ? c->kc->namespace_ : "default";
}

const char *k8s_event_raw(const k8s_client_t *c, size_t *len)
{
    if (len)
        *len = c && c->ev_raw ? c->ev_raw_len : 0;
    return c ? c->ev_raw : NULL;
}

/* k8s.io/component-base/metrics/prometheus/restclient's buckets */
static const double s_rest_latency_buckets[] = {0.005, 0.025, 0.1, 0.25, 0.5,  1.0,
                                                2.0,   4.0,   8.0, 15.0, 30.0, 60.0};
static const double s_rest_size_buckets[] = {64,    256,    512,     1024,    4096,    16384,
                                             65536, 262144, 1048576, 4194304, 16777216};

/* The family `name` of `reg`, registered on first use (several clients of one process share
 * it); a histogram when `bounds` is set, else a counter. */
static metric_t *s_rest_family(metrics_t *reg, const char *name, const char *help,
                               const char *const *labels, const double *bounds, size_t n)
{
    metric_t *f = metrics_find(reg, name);
    if (f)
        return f;
    return bounds ? metrics_histogram(reg, name, help, labels, bounds, n)
                  : metrics_counter(reg, name, help, labels);
}

int k8s_client_metrics(k8s_client_t *c, struct metrics *reg)
{
    if (!c)
        return ERR_INVAL;
    c->m_requests = c->m_duration = c->m_retries = c->m_limiter = c->m_req_size = c->m_resp_size =
        NULL;
    if (!reg)
        return 0;
    /* host[:port] of the server URL, as client-go's url.URL.Host */
    const char *h = strstr(c->kc->server, "://");
    h = h ? h + 3 : c->kc->server;
    size_t n = strcspn(h, "/?#");
    if (n >= sizeof(c->host))
        n = sizeof(c->host) - 1;
    memcpy(c->host, h, n);
    c->host[n] = '\0';
    static const char *const result[] = {"code", "host", "method", NULL};
    static const char *const retry[] = {"code", "host", "verb", NULL};
    static const char *const hv[] = {"host", "verb", NULL};
    const size_t nl = sizeof(s_rest_latency_buckets) / sizeof(s_rest_latency_buckets[0]);
    const size_t ns = sizeof(s_rest_size_buckets) / sizeof(s_rest_size_buckets[0]);
    metric_t *f[6] = {
        s_rest_family(reg, "rest_client_requests_total",
                      "Number of HTTP requests, partitioned by status code, method, and host.",
                      result, NULL, 0),
        s_rest_family(reg, "rest_client_request_duration_seconds",
                      "Request latency in seconds. Broken down by verb, and host.", hv,
                      s_rest_latency_buckets, nl),
        s_rest_family(reg, "rest_client_request_retries_total",
                      "Number of request retries, partitioned by status code, verb, and host.",
                      retry, NULL, 0),
        s_rest_family(reg, "rest_client_rate_limiter_duration_seconds",
                      "Client side rate limiter latency in seconds. Broken down by verb, and "
                      "host.",
                      hv, s_rest_latency_buckets, nl),
        s_rest_family(reg, "rest_client_request_size_bytes",
                      "Request size in bytes. Broken down by verb and host.", hv,
                      s_rest_size_buckets, ns),
        s_rest_family(reg, "rest_client_response_size_bytes",
                      "Response size in bytes. Broken down by verb and host.", hv,
                      s_rest_size_buckets, ns),
    };
    for (size_t i = 0; i < 6; i++)
        if (!f[i])
            return ERR_NOMEM;
    c->m_requests = f[0];
    c->m_duration = f[1];
    c->m_retries = f[2];
    c->m_limiter = f[3];
    c->m_req_size = f[4];
    c->m_resp_size = f[5];
    return 0;
}

k8s_client_t *k8s_client_new(loop_t *loop, const kubeconfig_t *kc, const k8s_config_t *cfg)
{
    if (!loop || !kc || !kc->server)
        return NULL;
    k8s_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->kc = kc;
    if (cfg)
        c->cfg = *cfg;
    if (c->cfg.qps == 0)
        c->cfg.qps = K8S_DEFAULT_QPS;
    if (c->cfg.burst <= 0)
        c->cfg.burst = K8S_DEFAULT_BURST;
    if (c->cfg.max_retries == 0)
        c->cfg.max_retries = K8S_DEFAULT_MAX_RETRIES;
    if (c->cfg.max_retries < 0)
        c->cfg.max_retries = 0;
    if (c->cfg.backoff_base_ms <= 0)
        c->cfg.backoff_base_ms = K8S_DEFAULT_BACKOFF_BASE_MS;
    if (c->cfg.backoff_max_ms <= 0)
        c->cfg.backoff_max_ms = K8S_DEFAULT_BACKOFF_MAX_MS;
    if (c->cfg.max_event == 0)
        c->cfg.max_event = K8S_DEFAULT_MAX_EVENT;
    if (c->cfg.max_queue == 0)
        c->cfg.max_queue = K8S_DEFAULT_MAX_QUEUE;
    if (c->cfg.max_connections <= 0)
        c->cfg.max_connections = HTTP_DEFAULT_MAX_HOST_CONNECTIONS;
    if (c->cfg.max_inflight <= 0)
        c->cfg.max_inflight = (int)c->cfg.max_connections * K8S_INFLIGHT_PER_CONNECTION;
    c->tokens = c->cfg.burst;
    c->bucket_ms = loop_clock_ms();
    c->rng = (uint64_t)loop_clock_ms() * 6364136223846793005ULL + (uint64_t)getpid() + 1;
    c->user_agent = strdup(cfg && cfg->user_agent ? cfg->user_agent : "rayfleet/" RF_VERSION);
    if (!c->user_agent)
        goto fail;
    c->cfg.user_agent = c->user_agent;
    kubeconfig_tls(kc, &c->tls);
    http_config_t hc = {.tls = c->tls,
                        .user_agent = c->user_agent,
                        .max_host_connections =
                            c->cfg.max_connections > 0 ? c->cfg.max_connections : 0};
    c->http = http_client_new(loop, &hc);
    if (!c->http) {
        log_error("k8s: cannot create the HTTP client", "server", kc->server, NULL);
        goto fail;
    }
    s_token_file_check(c, true);
    return c;
fail:
    free(c->user_agent);
    free(c);
    return NULL;
}

void k8s_client_destroy(k8s_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    k8s_client_t *c = *client_p;
    while (c->all)
        s_req_free(c->all);
    if (c->bucket_timer)
        loop_cancel_timer(c->loop, c->bucket_timer);
    kubeconfig_exec_cancel(&c->run);
    http_client_destroy(&c->http);
    kubeconfig_cred_free(&c->cred);
    s_wipe_str(c->token);
    free(c->user_agent);
    free(c);
    *client_p = NULL;
}

#ifdef RF_SELFTEST
#include "httpd.h"
#include "selftest.h"

/* ---------- self-test ---------- */

typedef struct {
    int done;
    k8s_result_t res;
    char reason[64];
    char raw[64]; /* the start of res.raw, NUL-terminated */
    char body_m[16]; /* the decoded body's "m", "" when none */
} s_t_result_t;

static void s_t_done(k8s_client_t *c, const k8s_result_t *res, void *arg)
{
    s_t_result_t *t = arg;
    t->done++;
    t->res = *res;
    snprintf(t->reason, sizeof(t->reason), "%s", res->reason);
    size_t n = res->raw_len < sizeof(t->raw) - 1 ? res->raw_len : sizeof(t->raw) - 1;
    if (res->raw)
        memcpy(t->raw, res->raw, n);
    t->raw[res->raw ? n : 0] = 0;
    snprintf(t->body_m, sizeof(t->body_m), "%s", jx_str(res->body, "m", ""));
    t->res.raw = NULL; /* only valid during the callback */
    t->res.body = NULL;
}

static int s_t_event(k8s_client_t *c, int64_t id, const char *type, json_t *object, void *arg)
{
    (void)c, (void)id, (void)type, (void)object, (void)arg;
    return 0;
}

/* What the raw-request test server saw. */
typedef struct {
    int hits; /* requests answered or held */
    char method[16]; /* the last request's method */
    char ctype[64]; /* its Content-Type */
    char extra[64]; /* its X-Test header */
    char accept[64]; /* its Accept header */
    char body[64]; /* its body */
} s_t_srv_t;

/* The raw-request test server: /text a 200 text/plain, /json echoes the method as JSON, /busy a
 * 503 text, /big 64 KiB of text, /never no answer. */
static void s_t_handler(httpd_conn_t *conn, const httpd_req_t *req, void *arg)
{
    s_t_srv_t *t = arg;
    t->hits++;
    const char *h;
    snprintf(t->method, sizeof(t->method), "%s", req->method);
    snprintf(t->ctype, sizeof(t->ctype), "%s",
             (h = httpd_req_header(req, "Content-Type")) ? h : "");
    snprintf(t->extra, sizeof(t->extra), "%s", (h = httpd_req_header(req, "X-Test")) ? h : "");
    snprintf(t->accept, sizeof(t->accept), "%s", (h = httpd_req_header(req, "Accept")) ? h : "");
    snprintf(t->body, sizeof(t->body), "%s", req->body);
    if (strcmp(req->path, "/text") == 0) {
        httpd_respond(conn, 200, "text/plain", NULL, "plain words", 11);
    } else if (strcmp(req->path, "/json") == 0) {
        char b[64];
        int n = snprintf(b, sizeof(b), "{\"m\":\"%s\"}", req->method);
        httpd_respond(conn, 201, "application/json", NULL, b, (size_t)n);
    } else if (strcmp(req->path, "/busy") == 0) {
        httpd_respond(conn, 503, "text/plain", NULL, "overloaded", 10);
    } else if (strcmp(req->path, "/big") == 0) {
        static char big[65536];
        memset(big, 'x', sizeof(big));
        httpd_respond(conn, 200, "text/plain", NULL, big, sizeof(big));
    } else if (strcmp(req->path, "/never") != 0) {
        httpd_respond(conn, 404, "text/plain", NULL, "no", 2);
    }
}

/* Runs the loop until t->done or 5 s pass. */
static bool s_t_wait(loop_t *loop, s_t_result_t *t)
{
    int64_t end = loop_clock_ms() + 5000;
    while (!t->done && loop_clock_ms() < end)
        loop_run_once(loop, 10);
    return t->done == 1;
}

/* k8s_raw() against an in-process httpd: any media type, headers, retries by method. */
static int s_t_raw(loop_t *loop)
{
    int failed = 0;
    s_t_srv_t srv = {0};
    httpd_t *h = httpd_new(loop, "127.0.0.1", 0, 0, s_t_handler, &srv);
    CHECK(h != NULL);
    if (!h)
        return failed;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", httpd_port(h));
    kubeconfig_t kc = {.server = url, .namespace_ = "default", .token = "api-token"};
    k8s_client_t *c =
        k8s_client_new(loop, &kc, &(k8s_config_t){.max_retries = 2, .backoff_base_ms = 5});
    CHECK(c != NULL);
    if (!c) {
        httpd_destroy(&h);
        return failed;
    }
    metrics_t *reg = metrics_new();
    CHECK(reg != NULL && k8s_client_metrics(c, reg) == 0);
    s_t_result_t t = {0};
    /* argument errors: no request */
    const http_header_t crlf[] = {{"X-Test", "a\r\nInjected: 1"}};
    const http_header_t colon[] = {{"X:Test", "a"}};
    CHECK(k8s_raw(c, "GET", "text", NULL, NULL, 0, NULL, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "GET", "/a b", NULL, NULL, 0, NULL, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "GET", "/a\nb", NULL, NULL, 0, NULL, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "BREW", "/text", NULL, NULL, 0, NULL, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "GET", "/text", NULL, NULL, 0, NULL, NULL, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "POST", "/text", NULL, NULL, 3, NULL, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "GET", "/text", NULL, NULL, 0,
                  &(k8s_raw_opts_t){.headers = crlf, .n_headers = 1}, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "GET", "/text", NULL, NULL, 0,
                  &(k8s_raw_opts_t){.headers = colon, .n_headers = 1}, s_t_done, &t) == ERR_INVAL);
    CHECK(k8s_raw(c, "GET", "/text", NULL, NULL, 0,
                  &(k8s_raw_opts_t){.headers = crlf, .n_headers = K8S_RAW_MAX_HEADERS + 1},
                  s_t_done, &t) == ERR_TOOBIG);
    loop_run_once(loop, 10);
    CHECK(t.done == 0 && srv.hits == 0);

    /* a text answer is handed over as it is, without an error */
    CHECK(k8s_raw(c, "GET", "/text", NULL, NULL, 0, NULL, s_t_done, &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == 0 && t.res.status == 200 && t.res.attempts == 1);
    CHECK(strcmp(t.raw, "plain words") == 0);
    CHECK(strcmp(srv.accept, "application/json") == 0);

    /* a POST with a body, a content type and an extra header; a JSON answer is decoded */
    const http_header_t extra[] = {{"X-Test", "v1"}, {"Accept", "*/*"}};
    memset(&t, 0, sizeof(t));
    CHECK(k8s_raw(c, "POST", "/json", "application/json", "{\"a\":1}", 7,
                  &(k8s_raw_opts_t){.headers = extra, .n_headers = 2}, s_t_done, &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == 0 && t.res.status == 201 && strcmp(t.body_m, "POST") == 0);
    CHECK(strcmp(srv.method, "POST") == 0 && strcmp(srv.ctype, "application/json") == 0 &&
          strcmp(srv.extra, "v1") == 0 && strcmp(srv.body, "{\"a\":1}") == 0 &&
          strcmp(srv.accept, "*/*") == 0);

    /* 503: a POST is never retried, a GET is (max_retries 2), unless max_retries < 0 */
    memset(&t, 0, sizeof(t));
    srv.hits = 0;
    CHECK(k8s_raw(c, "POST", "/busy", NULL, NULL, 0, NULL, s_t_done, &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == ERR_SERVER && t.res.status == 503 && t.res.attempts == 1 && srv.hits == 1);
    CHECK(strcmp(t.raw, "overloaded") == 0);
    memset(&t, 0, sizeof(t));
    srv.hits = 0;
    CHECK(k8s_raw(c, "GET", "/busy", NULL, NULL, 0, NULL, s_t_done, &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == ERR_SERVER && t.res.attempts == 3 && srv.hits == 3);
    memset(&t, 0, sizeof(t));
    srv.hits = 0;
    CHECK(k8s_raw(c, "GET", "/busy", NULL, NULL, 0, &(k8s_raw_opts_t){.max_retries = -1}, s_t_done,
                  &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == ERR_SERVER && t.res.attempts == 1 && srv.hits == 1);

    /* per-request bounds: body size and timeout */
    memset(&t, 0, sizeof(t));
    CHECK(k8s_raw(c, "GET", "/big", NULL, NULL, 0,
                  &(k8s_raw_opts_t){.max_body = 1024, .max_retries = -1}, s_t_done, &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == ERR_TOOBIG);
    memset(&t, 0, sizeof(t));
    int64_t t0 = loop_clock_ms();
    CHECK(k8s_raw(c, "GET", "/never", NULL, NULL, 0,
                  &(k8s_raw_opts_t){.timeout_ms = 150, .max_retries = -1}, s_t_done, &t) > 0);
    CHECK(s_t_wait(loop, &t));
    CHECK(t.res.err == ERR_TIMEOUT && loop_clock_ms() - t0 < 2000);

    /* client-go's REST client metrics of all the above: per attempt, per retry, per request */
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%d", httpd_port(h));
    const char *const post201[] = {"201", host, "POST"}, *const get503[] = {"503", host, "GET"},
                      *const get200[] = {"200", host, "GET"},
                      *const err[] = {"<error>", host, "GET"}, *const get[] = {host, "GET"},
                      *const post[] = {host, "POST"};
    metric_t *req = metrics_find(reg, "rest_client_requests_total");
    metric_t *retries = metrics_find(reg, "rest_client_request_retries_total");
    CHECK(req && metric_value(metric_with(req, post201)) == 1);
    CHECK(req && metric_value(metric_with(req, get503)) == 4); /* 3 attempts, then 1 */
    CHECK(req && metric_value(metric_with(req, get200)) == 2); /* /text, /big */
    CHECK(req && metric_value(metric_with(req, err)) == 1); /* /never timed out */
    CHECK(retries && metric_value(metric_with(retries, get503)) == 2);
    metric_t *dur = metrics_find(reg, "rest_client_request_duration_seconds");
    CHECK(dur && metric_value(metric_with(dur, get)) == 5 &&
          metric_value(metric_with(dur, post)) == 2);
    metric_t *lim = metrics_find(reg, "rest_client_rate_limiter_duration_seconds");
    CHECK(lim && metric_value(metric_with(lim, get)) == 7); /* one per GET attempt */
    metric_t *rsz = metrics_find(reg, "rest_client_request_size_bytes");
    CHECK(rsz && metric_value(metric_with(rsz, post)) == 2);
    metric_t *psz = metrics_find(reg, "rest_client_response_size_bytes");
    CHECK(psz && metric_value(metric_with(psz, get)) == 6); /* /never got no response */
    buf_t out;
    buf_init(&out, 1 << 20);
    CHECK(metrics_render(reg, &out) == 0);
    char line[128];
    snprintf(line, sizeof(line),
             "rest_client_request_size_bytes_sum{host=\"%s\",verb=\"POST\"} 7\n", host);
    CHECK(strstr(buf_str(&out), line) != NULL); /* {"a":1} and the empty /busy POST */
    buf_free(&out);
    k8s_client_destroy(&c);
    metrics_destroy(&reg);
    httpd_destroy(&h);
    return failed;
}

int k8s_test(bool verbose)
{
    int failed = 0;
    buf_t b;
    buf_init(&b, 4096);
    k8s_res_t pods = {.version = "v1", .resource = "pods", .namespace_ = "default"};
    k8s_opts_t o = {.label_selector = "app in (a,b),x!=y", .limit = 5, .continue_token = "c/+="};
    CHECK(k8s_path(&pods, &o, false, &b) == 0);
    CHECK(strcmp(buf_str(&b), "/api/v1/namespaces/default/pods?labelSelector=app%20in%20%28a%2Cb%"
                              "29%2Cx%21%3Dy&continue=c%2F%2B%3D&limit=5") == 0);
    if (verbose)
        printf("  path: %s\n", buf_str(&b));
    buf_reset(&b);
    k8s_res_t rc = {.group = "ray.io",
                    .version = "v1",
                    .resource = "rayclusters",
                    .namespace_ = "ns 1",
                    .name = "a/b",
                    .subresource = "status"};
    CHECK(k8s_path(&rc, NULL, false, &b) == 0);
    CHECK(strcmp(buf_str(&b), "/apis/ray.io/v1/namespaces/ns%201/rayclusters/a%2Fb/status") == 0);
    buf_reset(&b);
    k8s_res_t all = {.group = "ray.io", .version = "v1", .resource = "rayclusters"};
    k8s_opts_t w = {.resource_version = "42", .allow_bookmarks = true, .timeout_seconds = 300};
    CHECK(k8s_path(&all, &w, true, &b) == 0);
    CHECK(strcmp(buf_str(&b), "/apis/ray.io/v1/rayclusters?watch=true&resourceVersion=42&"
                              "allowWatchBookmarks=true&timeoutSeconds=300") == 0);
    buf_reset(&b);
    /* the raw "object" span of watch event lines */
    {
        const char *ev = " {\"type\" : \"MODIFIED\", \"x\":[1,{\"object\":2},\"}\\\"\"],"
                         "\"n\":-1.5e3,\"object\": {\"a\":\"b}\\\\\",\"c\":[{}]} }";
        size_t n = 0;
        const char *sp = s_object_span(ev, strlen(ev), &n);
        const char *want = "{\"a\":\"b}\\\\\",\"c\":[{}]}";
        CHECK(sp && n == strlen(want) && memcmp(sp, want, n) == 0);
        const char *ev2 = "{\"type\":\"ADDED\",\"object\":{\"k\":1}}";
        sp = s_object_span(ev2, strlen(ev2), &n);
        CHECK(sp && n == 7 && memcmp(sp, "{\"k\":1}", 7) == 0);
        CHECK(s_object_span("{\"type\":\"ADDED\"}", 16, &n) == NULL);
        CHECK(s_object_span("[1]", 3, &n) == NULL);
        CHECK(s_object_span("{\"object\":{\"a\":1", 17, &n) == NULL);
        CHECK(s_object_span("{\"object\":\"ab", 13, &n) == NULL);
        CHECK(s_object_span("{\"a\" 1}", 7, &n) == NULL);
        CHECK(k8s_event_raw(NULL, &n) == NULL && n == 0);
    }
    /* projections: list, watch and plain bodies */
    {
        const char *const keep[] = {"metadata.name", NULL};
        k8s_opts_t ko = {.keep = keep};
        jproj_t *jp = NULL;
        jproj_result_t pr;
        CHECK(s_projection(NULL, false, false, &jp) == 0 && jp == NULL);
        CHECK(s_projection(&ko, false, true, &jp) == 0 && jp != NULL);
        const char *l = "{\"kind\":\"PodList\",\"metadata\":{\"continue\":\"x\"},\"items\":[{"
                        "\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{}}]}";
        CHECK(jp && jproj_parse(jp, l, strlen(l), NULL, &pr, NULL) == 0 && pr.n_spans == 1 &&
              strcmp(jx_str(pr.value, "metadata.continue", ""), "x") == 0 &&
              strcmp(jx_str(json_array_get(json_object_get(pr.value, "items"), 0), "metadata.name",
                            ""),
                     "a") == 0 &&
              !jx_get(json_array_get(json_object_get(pr.value, "items"), 0), "metadata.uid"));
        jproj_result_free(&pr);
        jproj_destroy(&jp);
        CHECK(s_projection(&ko, true, false, &jp) == 0 && jp != NULL);
        const char *e = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{"
                        "\"name\":\"a\",\"uid\":\"u\"}}}";
        CHECK(jp && jproj_parse(jp, e, strlen(e), NULL, &pr, NULL) == 0 && pr.n_spans == 1 &&
              strcmp(jx_str(pr.value, "object.kind", ""), "Pod") == 0 &&
              strcmp(jx_str(pr.value, "type", ""), "ADDED") == 0 &&
              !jx_get(pr.value, "object.metadata.uid"));
        jproj_result_free(&pr);
        jproj_destroy(&jp);
        const char *const badkeep[] = {"a..b", NULL};
        ko.keep = badkeep;
        CHECK(s_projection(&ko, false, false, &jp) == ERR_INVAL && jp == NULL);
    }
    k8s_res_t bad = {.version = "v1", .resource = "pods", .subresource = "status"};
    CHECK(k8s_path(&bad, NULL, false, &b) == ERR_INVAL && b.len == 0);
    k8s_res_t bad2 = {.resource = "pods"};
    CHECK(k8s_path(&bad2, NULL, false, &b) == ERR_INVAL);
    buf_t small;
    buf_init(&small, 10);
    CHECK(k8s_path(&all, NULL, false, &small) == ERR_TOOBIG && small.len == 0);
    buf_free(&small);
    buf_free(&b);

    /* a client against a closed port: argument errors, connection refused with retries */
    loop_t *loop = loop_new();
    kubeconfig_t kc = {.server = "http://127.0.0.1:1", .namespace_ = "default"};
    k8s_config_t cfg = {
        .max_retries = 2, .backoff_base_ms = 5, .backoff_max_ms = 10, .qps = 1000, .burst = 2};
    k8s_client_t *c = loop ? k8s_client_new(loop, &kc, &cfg) : NULL;
    CHECK(c != NULL);
    CHECK(k8s_client_new(loop, &(kubeconfig_t){0}, NULL) == NULL);
    if (c) {
        CHECK(strcmp(k8s_client_namespace(c), "default") == 0);
        s_t_result_t t = {0};
        CHECK(k8s_get(c, &pods, NULL, s_t_done, &t) == ERR_INVAL); /* no name */
        CHECK(k8s_create(c, &pods, NULL, NULL, s_t_done, &t) == ERR_INVAL);
        CHECK(k8s_list(c, &pods, NULL, NULL, &t) == ERR_INVAL);
        json_t *obj = json_pack("{s:{s:s}}", "metadata", "name", "p");
        CHECK(k8s_patch(c, &(k8s_res_t){.version = "v1", .resource = "pods", .name = "p"},
                        K8S_PATCH_APPLY, obj, NULL, s_t_done, &t) == ERR_INVAL);
        int64_t id = k8s_create(c, &pods, obj, NULL, s_t_done, &t);
        CHECK(id > 0);
        CHECK(t.done == 0);
        int64_t end = loop_clock_ms() + 5000;
        while (!t.done && loop_clock_ms() < end)
            loop_run_once(loop, 20);
        CHECK(t.done == 1 && t.res.err == ERR_CONNREFUSED && t.res.attempts == 3);
        CHECK(t.res.id == id && t.res.body == NULL);
        /* cancel before it runs */
        memset(&t, 0, sizeof(t));
        id = k8s_list(c, &pods, NULL, s_t_done, &t);
        CHECK(k8s_cancel(c, id) == 0);
        CHECK(k8s_cancel(c, id) == ERR_NOTFOUND);
        loop_run_once(loop, 20);
        CHECK(t.done == 0);
        /* the token bucket: burst 2 at 1000 qps, 10 requests queue then drain */
        int64_t ids[10];
        for (int i = 0; i < 10; i++)
            ids[i] = k8s_list(c, &pods, NULL, s_t_done, &t);
        loop_run_once(loop, 0);
        k8s_stats_t st;
        k8s_client_stats(c, &st);
        CHECK(st.in_flight == 10);
        CHECK(ids[9] > ids[0]);
        json_decref(obj);
        k8s_client_destroy(&c); /* with requests in flight / queued: no callback */
        CHECK(c == NULL);
    }
    k8s_client_destroy(&c);

    /* The in-flight bound: a server that takes connections and never answers. With
     * max_inflight 2 and no rate limit, 2 of 5 lists go to the transport and 3 wait in order;
     * a watch does not wait for a slot; cancelling one in flight lets the next waiting one go. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 64) == 0 &&
          getsockname(ls, (struct sockaddr *)&sa, &salen) == 0);
    char srv[64];
    snprintf(srv, sizeof(srv), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    kubeconfig_t kc2 = {.server = srv, .namespace_ = "default"};
    c = loop ? k8s_client_new(loop, &kc2, &(k8s_config_t){.qps = -1, .max_inflight = 2}) : NULL;
    CHECK(c != NULL);
    if (c) {
        s_t_result_t t = {0};
        int64_t ids[5];
        for (int i = 0; i < 5; i++)
            ids[i] = k8s_list(c, &pods, NULL, s_t_done, &t);
        loop_run_once(loop, 0);
        k8s_stats_t st;
        k8s_client_stats(c, &st);
        CHECK(st.queued == 3 && st.in_flight == 5 && st.throttled == 3);
        CHECK(k8s_watch(c, &pods, NULL, s_t_event, s_t_done, &t) > 0);
        loop_run_once(loop, 0);
        k8s_client_stats(c, &st);
        CHECK(st.queued == 3 && st.attempts == 3);
        CHECK(k8s_cancel(c, ids[0]) == 0);
        for (int i = 0; i < 5; i++)
            loop_run_once(loop, 5);
        k8s_client_stats(c, &st);
        CHECK(st.queued == 2 && st.attempts == 4 && t.done == 0);
        CHECK(k8s_cancel(c, ids[4]) == 0); /* a waiting one: no slot to give back */
        k8s_client_stats(c, &st);
        CHECK(st.queued == 1 && st.attempts == 4);
        /* the urgent lane: urgent requests wait ahead of the others, FIFO among themselves */
        const k8s_opts_t uo = {.urgent = true};
        int64_t u1 = k8s_list(c, &pods, &uo, s_t_done, &t);
        int64_t n1 = k8s_list(c, &pods, NULL, s_t_done, &t);
        int64_t u2 = k8s_list(c, &pods, &uo, s_t_done, &t);
        loop_run_once(loop, 0); /* queued from the start timer */
        const k8s_req_t *q = c->qhead;
        CHECK(q && q->id == u1 && q->qnext && q->qnext->id == u2 && q->qnext->qnext &&
              q->qnext->qnext->id == ids[3] && q->qnext->qnext->qnext &&
              q->qnext->qnext->qnext->id == n1 && c->qtail->id == n1 && c->qutail->id == u2);
        CHECK(k8s_cancel(c, u2) == 0);
        CHECK(c->qutail && c->qutail->id == u1 && c->qhead->qnext->id == ids[3]);
        CHECK(k8s_cancel(c, u1) == 0);
        CHECK(c->qutail == NULL && c->qhead->id == ids[3]);
        int64_t u3 = k8s_list(c, &pods, &uo, s_t_done, &t);
        loop_run_once(loop, 0);
        CHECK(c->qhead->id == u3 && c->qutail == c->qhead && c->qtail->id == n1);
        k8s_client_stats(c, &st);
        CHECK(st.queued == 3 && st.attempts == 4 && t.done == 0);
        k8s_client_destroy(&c);
    }
    if (ls >= 0)
        close(ls);
    if (loop)
        failed += s_t_raw(loop);
    loop_destroy(&loop);
    return SELFTEST_RESULT("k8s", verbose);
}

#endif /* RF_SELFTEST */
