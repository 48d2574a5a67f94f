/*
 * http: libcurl multi-socket client on the event loop.
 *
 * Every transfer is one easy handle with a request record (req_t) in the
 * client's list. curl is driven only through curl_multi_socket_action(), from
 * the loop's fd handler and from the one loop timer that mirrors curl's
 * timeout. While that call runs, curl calls our write and header callbacks,
 * which call the user's on_data/on_headers; libcurl forbids adding or removing
 * easy handles from there, so http_request() and http_cancel() only queue the
 * change while `in_curl` is set and s_settle() applies it right after curl
 * returns. Completed transfers are then read with curl_multi_info_read() and
 * their on_done runs outside curl, where the user may add and cancel freely.
 */
#include "http.h"
#include "err.h"
#include "log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum {
    REQ_PENDING_ADD, /* created inside a curl callback; s_settle() adds it to the multi */
    REQ_ACTIVE, /* in the multi */
    REQ_CANCELLED /* cancelled (or done) and not yet freed; s_settle() frees it */
} req_state_t;

typedef struct req {
    struct req *prev; /* neighbours in client->reqs */
    struct req *next; /* neighbours in client->reqs */
    http_client_t *client; /* owner */
    int64_t id; /* the id handed to the caller */
    req_state_t state; /* see req_state_t */
    CURL *easy; /* the transfer */
    struct curl_slist *headers; /* request headers as curl wants them */
    void *body_copy; /* our copy of the request body, or NULL */
    http_done_fn *on_done; /* user callbacks and their argument */
    http_data_fn *on_data; /* NULL for buffered requests */
    http_headers_fn *on_headers; /* optional */
    void *arg; /* passed to the callbacks */
    buf_t body; /* buffered body (bounded by max_body) */
    buf_t hdr_store; /* response headers as "name\0value\0" pairs */
    size_t n_hdrs; /* pairs in hdr_store */
    http_header_t *hdr_list; /* pointers into hdr_store, built for the callbacks */
    bool headers_reported; /* on_headers ran (or was not needed) */
    bool streaming_body; /* 2xx streaming response: body goes to on_data */
    int err; /* an error decided by us or the user in a callback */
    int64_t idle_ms; /* idle limit, 0 for none */
    int64_t last_activity; /* loop time of the last byte received */
    int64_t idle_timer; /* loop timer id of the idle check, 0 when none */
    bool own_errtext; /* errbuf holds our text, not curl's */
    bool in_callback; /* on_headers runs from s_complete: cancel must not free */
    char errbuf[CURL_ERROR_SIZE]; /* curl's error text */
} req_t;

/* Our copy of an http_tls_t (strings and blobs owned). */
typedef struct {
    char *ca_file; /* owned copies of http_tls_t's fields */
    void *ca_data; /* owned */
    size_t ca_data_len; /* bytes */
    char *cert_file; /* owned */
    void *cert_data; /* owned */
    size_t cert_data_len; /* bytes */
    char *key_file; /* owned */
    void *key_data; /* owned, wiped before free */
    size_t key_data_len; /* bytes */
    bool insecure_skip_verify; /* as given */
} tls_copy_t;

struct http_client {
    loop_t *loop; /* the loop we run on */
    CURLM *multi; /* curl's multi handle */
    int64_t timer_id; /* loop timer mirroring curl's timeout, 0 when none */
    int in_curl; /* > 0 while curl_multi_socket_action runs */
    req_t *reqs; /* every request in flight */
    int64_t next_id; /* last id handed out */
    int *fds; /* sockets registered with the loop */
    size_t n_fds; /* entries used in fds */
    size_t cap_fds; /* entries allocated in fds */
    tls_copy_t tls; /* default TLS settings */
    char *user_agent; /* owned, or NULL */
    char *proxy_url; /* owned, or NULL */
    bool accept_compressed; /* see http_config_t */
    http_stats_t stats; /* counters */
};

static void s_settle(http_client_t *c);

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */

static void *s_memdup(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

/* Duplicates s into *out (NULL stays NULL). Returns 0 or ERR_NOMEM. */
static int s_strdup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : ERR_NOMEM;
}

static void s_wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    volatile unsigned char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
    free(p);
}

static void s_tls_free(tls_copy_t *t)
{
    free(t->ca_file);
    free(t->ca_data);
    free(t->cert_file);
    free(t->cert_data);
    free(t->key_file);
    s_wipe_free(t->key_data, t->key_data_len);
    memset(t, 0, sizeof *t);
}

static bool s_blob_ok(const void *data, size_t len)
{
    return !data || (len > 0 && len <= HTTP_MAX_TLS_BLOB);
}

static int s_tls_copy(const http_tls_t *in, tls_copy_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s_blob_ok(in->ca_data, in->ca_data_len) || !s_blob_ok(in->cert_data, in->cert_data_len) ||
        !s_blob_ok(in->key_data, in->key_data_len))
        return ERR_INVAL;
    out->insecure_skip_verify = in->insecure_skip_verify;
    int rc = s_strdup_opt(in->ca_file, &out->ca_file);
    rc = rc ? rc : s_strdup_opt(in->cert_file, &out->cert_file);
    rc = rc ? rc : s_strdup_opt(in->key_file, &out->key_file);
    if (rc)
        goto fail;
    if (in->ca_data) {
        out->ca_data = s_memdup(in->ca_data, in->ca_data_len);
        out->ca_data_len = in->ca_data_len;
    }
    if (in->cert_data) {
        out->cert_data = s_memdup(in->cert_data, in->cert_data_len);
        out->cert_data_len = in->cert_data_len;
    }
    if (in->key_data) {
        out->key_data = s_memdup(in->key_data, in->key_data_len);
        out->key_data_len = in->key_data_len;
    }
    if ((in->ca_data && !out->ca_data) || (in->cert_data && !out->cert_data) ||
        (in->key_data && !out->key_data)) {
        rc = ERR_NOMEM;
        goto fail;
    }
    return 0;
fail:
    s_tls_free(out);
    return rc;
}

/* Applies TLS settings to an easy handle. Blobs are copied by curl when `copy`
 * (per-request settings), or referenced when they live in the client (which
 * outlives its handles). */
static int s_tls_apply(CURL *e, const http_tls_t *t, bool copy)
{
    unsigned int flags = copy ? CURL_BLOB_COPY : CURL_BLOB_NOCOPY;
    CURLcode rc = CURLE_OK;
    if (t->ca_data || t->ca_file) {
        // Only the given CA is trusted, as kubectl does: drop the system store.
        rc |= curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        if (t->ca_data) {
            struct curl_blob b = {(void *)t->ca_data, t->ca_data_len, flags};
            rc |= curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
            rc |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
        } else {
            rc |= curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
        }
    }
    if (t->cert_data) {
        struct curl_blob b = {(void *)t->cert_data, t->cert_data_len, flags};
        rc |= curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
        rc |= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (t->cert_file) {
        rc |= curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    }
    if (t->key_data) {
        struct curl_blob b = {(void *)t->key_data, t->key_data_len, flags};
        rc |= curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
        rc |= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (t->key_file) {
        rc |= curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    }
    long verify = t->insecure_skip_verify ? 0L : 1L;
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    return rc == CURLE_OK ? 0 : ERR_HTTP;
}

static http_tls_t s_tls_view(const tls_copy_t *t)
{
    return (http_tls_t){.ca_file = t->ca_file,
                        .ca_data = t->ca_data,
                        .ca_data_len = t->ca_data_len,
                        .cert_file = t->cert_file,
                        .cert_data = t->cert_data,
                        .cert_data_len = t->cert_data_len,
                        .key_file = t->key_file,
                        .key_data = t->key_data,
                        .key_data_len = t->key_data_len,
                        .insecure_skip_verify = t->insecure_skip_verify};
}

/* The err_t for a curl result. */
static int s_err_from_curl(CURLcode code)
{
    switch (code) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return ERR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return ERR_CONNREFUSED;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return ERR_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return ERR_TOOBIG;
    case CURLE_OUT_OF_MEMORY:
        return ERR_NOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ERR_INVAL;
    default:
        return ERR_HTTP;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Sockets and the timer: curl <-> loop
 */

static int s_fd_index(const http_client_t *c, int fd)
{
    for (size_t i = 0; i < c->n_fds; i++) {
        if (c->fds[i] == fd)
            return (int)i;
    }
    return -1;
}

static int s_on_fd(loop_t *loop, int fd, int revents, void *arg)
{
    http_client_t *c = arg;
    int mask = 0;
    if (revents & LOOP_READ)
        mask |= CURL_CSELECT_IN;
    if (revents & LOOP_WRITE)
        mask |= CURL_CSELECT_OUT;
    if (revents & LOOP_ERROR)
        mask |= CURL_CSELECT_ERR;
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, mask, &running);
    c->in_curl--;
    s_settle(c);
    return 0;
}

/* Stops watching socket s on the loop, if we watch it. */
static void s_forget_fd(http_client_t *c, int s)
{
    int at = s_fd_index(c, s);
    if (at < 0)
        return;
    loop_remove_fd(c->loop, s);
    c->fds[at] = c->fds[--c->n_fds];
}

/* CURLOPT_CLOSESOCKETFUNCTION: forget the socket on the loop, then close it. The loop is shared
 * (httpd, other clients) and keys fds by number, which the kernel hands out again as soon as
 * it is closed: removal must precede the close whatever order libcurl reports the two in, or
 * a late CURL_POLL_REMOVE would take the new owner's registration. */
static int s_curl_close(void *clientp, curl_socket_t s)
{
    s_forget_fd(clientp, s);
    return close(s) == 0 ? 0 : 1;
}

/* CURLMOPT_SOCKETFUNCTION: watch, re-watch or forget one of curl's sockets. */
static int s_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    http_client_t *c = userp;
    if (what == CURL_POLL_REMOVE) {
        s_forget_fd(c, s);
        return 0;
    }
    int at = s_fd_index(c, s);
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= LOOP_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= LOOP_WRITE;
    if (at >= 0)
        return loop_set_fd_events(c->loop, s, events) == 0 ? 0 : -1;
    if (c->n_fds == c->cap_fds) {
        size_t cap = c->cap_fds ? c->cap_fds * 2 : 16;
        int *fds = realloc(c->fds, cap * sizeof *fds);
        if (!fds)
            return -1;
        c->fds = fds;
        c->cap_fds = cap;
    }
    if (loop_add_fd(c->loop, s, events, s_on_fd, c) != 0)
        return -1;
    c->fds[c->n_fds++] = s;
    return 0;
}

static int64_t s_on_timer(loop_t *loop, int64_t timer_id, void *arg)
{
    http_client_t *c = arg;
    c->timer_id = 0; // fired: curl's timer callback below may arm a new one
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl--;
    s_settle(c);
    return LOOP_TIMER_DONE;
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called after timeout_ms (-1: never).
 */
static int s_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    http_client_t *c = userp;
    if (c->timer_id > 0) {
        loop_cancel_timer(c->loop, c->timer_id);
        c->timer_id = 0;
    }
    if (timeout_ms < 0)
        return 0;
    int64_t id = loop_add_timer(c->loop, timeout_ms, s_on_timer, c);
    if (id < 0)
        return -1;
    c->timer_id = id;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Requests
 */

static void s_list_unlink(http_client_t *c, req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Removes the request from the multi (when in it) and the list, and frees it.
 * No callback. */
static void s_req_free(http_client_t *c, req_t *r)
{
    if (r->easy) {
        if (r->state != REQ_PENDING_ADD)
            curl_multi_remove_handle(c->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    if (r->idle_timer > 0)
        loop_cancel_timer(c->loop, r->idle_timer);
    s_list_unlink(c, r);
    c->stats.in_flight--;
    curl_slist_free_all(r->headers);
    free(r->body_copy);
    buf_free(&r->body);
    buf_free(&r->hdr_store);
    free(r->hdr_list);
    free(r);
}

static req_t *s_req_find(const http_client_t *c, int64_t id)
{
    for (req_t *r = c->reqs; r; r = r->next) {
        if (r->id == id)
            return r->state == REQ_CANCELLED ? NULL : r;
    }
    return NULL;
}

/* Builds r->hdr_list from r->hdr_store. Returns 0 or ERR_NOMEM. */
static int s_build_header_list(req_t *r)
{
    free(r->hdr_list);
    r->hdr_list = NULL;
    if (r->n_hdrs == 0)
        return 0;
    r->hdr_list = calloc(r->n_hdrs, sizeof *r->hdr_list);
    if (!r->hdr_list)
        return ERR_NOMEM;
    const char *p = buf_str(&r->hdr_store);
    for (size_t i = 0; i < r->n_hdrs; i++) {
        r->hdr_list[i].name = p;
        p += strlen(p) + 1;
        r->hdr_list[i].value = p;
        p += strlen(p) + 1;
    }
    return 0;
}

static void s_fill_response(req_t *r, http_response_t *resp)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    *resp = (http_response_t){.id = r->id,
                              .status = status,
                              .headers = r->hdr_list,
                              .n_headers = r->hdr_list ? r->n_hdrs : 0,
                              .body = r->body,
                              .error_text = ""};
    long version = 0;
    curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &version);
    switch (version) {
    case CURL_HTTP_VERSION_1_0:
        resp->http_version = 10;
        break;
    case CURL_HTTP_VERSION_1_1:
        resp->http_version = 11;
        break;
    case CURL_HTTP_VERSION_2_0:
        resp->http_version = 20;
        break;
    default:
        resp->http_version = 0;
    }
}

/* Runs on_headers once, when the final response's headers are complete. Returns
 * 0 or the error that must abort the transfer. */
static int s_report_headers(req_t *r)
{
    if (r->headers_reported)
        return 0;
    r->headers_reported = true;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    r->streaming_body = r->on_data && status >= 200 && status < 300;
    if (!r->on_headers)
        return 0;
    if (s_build_header_list(r) != 0)
        return ERR_NOMEM;
    http_response_t resp;
    s_fill_response(r, &resp);
    int rc = r->on_headers(r->client, &resp, r->arg);
    return rc < 0 ? rc : 0;
}

int http_header_line(const char *data, size_t n, http_header_span_t *out)
{
    *out = (http_header_span_t){0};
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        return HTTP_LINE_STATUS;
    size_t end = n;
    while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n'))
        end--;
    if (end == 0)
        return HTTP_LINE_IGNORED; // the blank line that ends a header block
    const char *colon = memchr(data, ':', end);
    if (!colon || colon == data || data[0] == ' ' || data[0] == '\t')
        return HTTP_LINE_IGNORED; // not "name: value" (an obsolete folded line): ignored
    if (memchr(data, '\0', end))
        return ERR_PROTO;
    size_t name_len = (size_t)(colon - data);
    size_t v = name_len + 1;
    while (v < end && (data[v] == ' ' || data[v] == '\t'))
        v++;
    size_t v_end = end;
    while (v_end > v && (data[v_end - 1] == ' ' || data[v_end - 1] == '\t'))
        v_end--;
    *out = (http_header_span_t){.name_len = name_len, .value_off = v, .value_len = v_end - v};
    return HTTP_LINE_HEADER;
}

/* CURLOPT_HEADERFUNCTION: one header line (status lines included). */
static size_t s_curl_header(char *data, size_t size, size_t nmemb, void *userp)
{
    req_t *r = userp;
    size_t n = size * nmemb;
    if (r->state == REQ_CANCELLED)
        return 0;
    r->last_activity = loop_now(r->client->loop);
    http_header_span_t h;
    int kind = http_header_line(data, n, &h);
    if (kind == HTTP_LINE_STATUS) {
        // A new response (after 1xx, or the first): forget the headers of any
        // previous one.
        buf_reset(&r->hdr_store);
        r->n_hdrs = 0;
        r->headers_reported = false;
        return n;
    }
    if (kind == HTTP_LINE_IGNORED)
        return n;
    if (kind < 0 || r->n_hdrs >= HTTP_MAX_HEADERS) {
        r->err = kind < 0 ? kind : ERR_TOOBIG;
        return 0;
    }
    int rc = buf_append(&r->hdr_store, data, h.name_len);
    rc = rc ? rc : buf_append(&r->hdr_store, "", 1);
    rc = rc ? rc : buf_append(&r->hdr_store, data + h.value_off, h.value_len);
    rc = rc ? rc : buf_append(&r->hdr_store, "", 1);
    if (rc) {
        r->err = rc;
        return 0;
    }
    r->n_hdrs++;
    return n;
}

/* CURLOPT_WRITEFUNCTION: body bytes. */
static size_t s_curl_write(char *data, size_t size, size_t nmemb, void *userp)
{
    req_t *r = userp;
    size_t n = size * nmemb;
    if (r->state == REQ_CANCELLED)
        return CURL_WRITEFUNC_ERROR;
    r->last_activity = loop_now(r->client->loop);
    int rc = s_report_headers(r);
    if (rc == 0 && r->state == REQ_CANCELLED)
        return CURL_WRITEFUNC_ERROR; // on_headers cancelled its own request
    if (rc == 0 && r->streaming_body) {
        rc = r->on_data(r->client, r->id, data, n, r->arg);
        if (r->state == REQ_CANCELLED)
            return CURL_WRITEFUNC_ERROR;
    } else if (rc == 0) {
        rc = buf_append(&r->body, data, n);
    }
    if (rc < 0) {
        r->err = rc;
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

/* Ends a request: runs on_done with `err` (or the transfer's own result) and
 * frees it. */
static void s_complete(http_client_t *c, req_t *r, CURLcode code)
{
    if (code == CURLE_OK && !r->headers_reported) {
        r->in_callback = true;
        int rc = s_report_headers(r); // a response without body (204, HEAD, empty 200)
        r->in_callback = false;
        if (r->state == REQ_CANCELLED) {
            s_req_free(c, r);
            return;
        }
        if (rc < 0)
            r->err = rc;
    }
    http_response_t resp;
    if (s_build_header_list(r) != 0 && r->err == 0)
        r->err = ERR_NOMEM;
    s_fill_response(r, &resp);
    if (r->err)
        resp.err = r->err;
    else
        resp.err = s_err_from_curl(code);
    if (resp.err && r->err && !r->own_errtext) // curl's text would only say "write error"
        snprintf(r->errbuf, sizeof r->errbuf, "%s", err_str(r->err));
    if (resp.err)
        resp.error_text = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    curl_off_t total = 0;
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total);
    resp.total_us = (int64_t)total;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &resp.num_connects);
    c->stats.connects += (uint64_t)resp.num_connects;
    c->stats.completed++;
    if (resp.err)
        c->stats.failed++;

    // Take the request out of curl and the list before the callback, so that it
    // may start and cancel requests (its own id is not found any more).
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    if (r->idle_timer > 0) {
        loop_cancel_timer(c->loop, r->idle_timer);
        r->idle_timer = 0;
    }
    r->state = REQ_CANCELLED;
    r->on_done(c, &resp, r->arg);
    r->body = resp.body; // the callback may have taken the bytes
    s_req_free(c, r);
}

/* Applies changes queued while curl ran, then runs the callbacks of finished
 * transfers. */
static void s_settle(http_client_t *c)
{
    if (c->in_curl > 0)
        return;
    req_t *next = NULL;
    for (req_t *r = c->reqs; r; r = next) {
        next = r->next;
        if (r->state == REQ_CANCELLED) {
            s_req_free(c, r);
        } else if (r->state == REQ_PENDING_ADD) {
            if (curl_multi_add_handle(c->multi, r->easy) == CURLM_OK) {
                r->state = REQ_ACTIVE;
            } else {
                r->state = REQ_ACTIVE; // not in the multi: s_complete's remove is harmless
                s_complete(c, r, CURLE_OUT_OF_MEMORY);
                next = c->reqs; // the callback may have changed the list; restart
            }
        }
    }
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            s_complete(c, (req_t *)priv, msg->data.result);
    }
}

static int64_t s_on_idle(loop_t *loop, int64_t timer_id, void *arg)
{
    req_t *r = arg;
    int64_t quiet = loop_clock_ms() - r->last_activity;
    if (quiet < r->idle_ms)
        return r->idle_ms - quiet;
    r->idle_timer = 0; // this timer ends here
    r->err = ERR_TIMEOUT;
    snprintf(r->errbuf, sizeof r->errbuf, "no data received for %lld ms", (long long)r->idle_ms);
    r->own_errtext = true;
    s_complete(r->client, r, CURLE_OPERATION_TIMEDOUT);
    return LOOP_TIMER_DONE;
}

static bool s_method_ok(const char *m)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(m, known[i]) == 0)
            return true;
    }
    return false;
}

/* Builds the curl header list. Returns 0, ERR_INVAL (CR/LF/NUL or an empty
 * name) or ERR_NOMEM. */
static int s_build_headers(const http_request_t *in, struct curl_slist **out)
{
    struct curl_slist *list = NULL;
    buf_t line;
    buf_init(&line, HTTP_MAX_HEADER_BYTES);
    int rc = 0;
    // No "Expect: 100-continue" round trip for large bodies.
    struct curl_slist *t = curl_slist_append(list, "Expect:");
    if (!t) {
        rc = ERR_NOMEM;
        goto done;
    }
    list = t;
    for (size_t i = 0; i < in->n_headers; i++) {
        const char *name = in->headers[i].name;
        const char *value = in->headers[i].value ? in->headers[i].value : "";
        if (!name || !*name || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
            rc = ERR_INVAL;
            goto done;
        }
        buf_reset(&line);
        // "Name;" is curl's way to send a header with an empty value.
        rc = *value ? buf_printf(&line, "%s: %s", name, value) : buf_printf(&line, "%s;", name);
        if (rc)
            goto done;
        t = curl_slist_append(list, buf_str(&line));
        if (!t) {
            rc = ERR_NOMEM;
            goto done;
        }
        list = t;
    }
done:
    buf_free(&line);
    if (rc) {
        curl_slist_free_all(list);
        list = NULL;
    }
    *out = list;
    return rc;
}

/* Sets every option of a request's easy handle. Returns 0 or an err_t. */
static int s_setup_easy(http_client_t *c, req_t *r, const http_request_t *in)
{
    CURL *e = r->easy;
    const char *method = in->method ? in->method : "GET";
    int64_t timeout = in->timeout_ms ? in->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    int64_t connect =
        in->connect_timeout_ms ? in->connect_timeout_ms : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt(e, CURLOPT_URL, in->url);
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, s_curl_close);
    rc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    // Waiting for a connection to multiplex on (PIPEWAIT) pays over HTTP/1.1 too for short
    // requests (fewer new connections: bench-scale's scheduler spends ~17% less CPU with it), but
    // a streaming request over plain http:// must never wait: libcurl 7.x parks the other
    // transfers to the host behind a connection whose multiplexing is unknown and wakes one per
    // finished transfer, and a watch does not finish for minutes (after dropped watches, every
    // watch but one stayed parked). Over https:// HTTP/2 is negotiated and streams share it.
    if (strncasecmp(in->url, "https://", 8) == 0 || !in->on_data)
        rc |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, (long)HTTP_TCP_KEEPALIVE_S);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, (long)HTTP_TCP_KEEPALIVE_S);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout > 0 ? (long)timeout : 0L);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s_curl_header);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_curl_write);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    if (!in->on_data && strcmp(method, "HEAD") != 0) // a stream has no total size; its error body
                                                     // is bounded by buf anyway
        rc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->body.max);
    if (c->user_agent)
        rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    if (c->proxy_url)
        rc |= curl_easy_setopt(e, CURLOPT_PROXY, c->proxy_url);
    if (c->accept_compressed)
        rc |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");

    if (strcmp(method, "HEAD") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || in->body) {
        if (strcmp(method, "POST") != 0)
            rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (in->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            const void *body = in->body_borrowed ? in->body : r->body_copy;
            rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)in->body_len);
            rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    if (rc != CURLE_OK)
        return ERR_HTTP;

    if (in->tls) {
        if (in->tls->insecure_skip_verify)
            log_warn("TLS verification disabled for a request (insecure_skip_verify)", NULL);
        return s_tls_apply(e, in->tls, true);
    }
    http_tls_t view = s_tls_view(&c->tls);
    return s_tls_apply(e, &view, false);
}

int64_t http_request(http_client_t *c, const http_request_t *in)
{
    if (!c || !in || !in->url || !in->on_done || (in->body_len && !in->body) ||
        (in->method && !s_method_ok(in->method)) || in->idle_timeout_ms < 0 ||
        in->connect_timeout_ms < 0 || (in->timeout_ms < 0 && in->timeout_ms != HTTP_NO_TIMEOUT))
        return ERR_INVAL;
    if (in->tls && (!s_blob_ok(in->tls->ca_data, in->tls->ca_data_len) ||
                    !s_blob_ok(in->tls->cert_data, in->tls->cert_data_len) ||
                    !s_blob_ok(in->tls->key_data, in->tls->key_data_len)))
        return ERR_INVAL;
    req_t *r = calloc(1, sizeof *r);
    if (!r)
        return ERR_NOMEM;
    r->client = c;
    r->on_done = in->on_done;
    r->on_data = in->on_data;
    r->on_headers = in->on_headers;
    r->arg = in->arg;
    r->idle_ms = in->idle_timeout_ms;
    r->last_activity = loop_clock_ms();
    r->state = REQ_PENDING_ADD;
    buf_init(&r->body, in->max_body ? in->max_body : HTTP_DEFAULT_MAX_BODY);
    buf_init(&r->hdr_store, HTTP_MAX_HEADER_BYTES);
    int rc = s_build_headers(in, &r->headers);
    if (rc)
        goto fail;
    if (in->body && !in->body_borrowed) {
        r->body_copy = s_memdup(in->body, in->body_len);
        if (!r->body_copy) {
            rc = ERR_NOMEM;
            goto fail;
        }
    }
    r->easy = curl_easy_init();
    if (!r->easy) {
        rc = ERR_NOMEM;
        goto fail;
    }
    rc = s_setup_easy(c, r, in);
    if (rc)
        goto fail;
    if (r->idle_ms > 0) {
        int64_t t = loop_add_timer(c->loop, r->idle_ms, s_on_idle, r);
        if (t < 0) {
            rc = (int)t;
            goto fail;
        }
        r->idle_timer = t;
    }
    // Inside a curl callback the handle may not be added: s_settle() adds it when
    // curl returns.
    if (c->in_curl == 0) {
        if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
            rc = ERR_HTTP;
            goto fail;
        }
        r->state = REQ_ACTIVE;
    }
    r->id = ++c->next_id;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->stats.started++;
    c->stats.in_flight++;
    return r->id;
fail:
    if (r->idle_timer > 0)
        loop_cancel_timer(c->loop, r->idle_timer);
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body_copy);
    free(r);
    return rc;
}

int http_cancel(http_client_t *c, int64_t id)
{
    req_t *r = c ? s_req_find(c, id) : NULL;
    if (!r)
        return ERR_NOTFOUND;
    c->stats.cancelled++;
    if (r->in_callback) {
        r->state = REQ_CANCELLED; // s_complete() frees it when on_headers returns
        return 0;
    }
    if (c->in_curl > 0) {
        // Inside curl the handle may not be removed: mark it; s_settle() frees it.
        if (r->state == REQ_PENDING_ADD) {
            s_req_free(c, r);
        } else {
            r->state = REQ_CANCELLED;
        }
        return 0;
    }
    s_req_free(c, r);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Client
 */

http_client_t *http_client_new(loop_t *loop, const http_config_t *config)
{
    if (!loop)
        return NULL;
    http_config_t defaults = {0};
    const http_config_t *cfg = config ? config : &defaults;
    if (cfg->max_total_connections < 0 || cfg->max_host_connections < 0)
        return NULL;
    http_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->accept_compressed = cfg->accept_compressed;
    if (s_tls_copy(&cfg->tls, &c->tls) != 0)
        goto fail;
    if (s_strdup_opt(cfg->user_agent, &c->user_agent) != 0 ||
        s_strdup_opt(cfg->proxy_url, &c->proxy_url) != 0)
        goto fail;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto fail;
    long total = cfg->max_total_connections ? cfg->max_total_connections
                                            : HTTP_DEFAULT_MAX_TOTAL_CONNECTIONS;
    long host =
        cfg->max_host_connections ? cfg->max_host_connections : HTTP_DEFAULT_MAX_HOST_CONNECTIONS;
    CURLMcode rc = CURLM_OK;
    rc |= curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, s_curl_socket);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, s_curl_timer);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host);
    rc |= curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total);
    if (rc != CURLM_OK)
        goto fail;
    if (c->tls.insecure_skip_verify)
        log_warn("TLS verification disabled for this HTTP client "
                 "(insecure_skip_verify): "
                 "servers are not authenticated",
                 NULL);
    return c;
fail:
    http_client_destroy(&c);
    return NULL;
}

void http_client_destroy(http_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    http_client_t *c = *client_p;
    *client_p = NULL;
    while (c->reqs)
        s_req_free(c, c->reqs);
    if (c->multi)
        curl_multi_cleanup(c->multi); // closes cached connections (may call s_curl_socket)
    if (c->timer_id > 0)
        loop_cancel_timer(c->loop, c->timer_id);
    for (size_t i = 0; i < c->n_fds; i++)
        loop_remove_fd(c->loop, c->fds[i]);
    free(c->fds);
    s_tls_free(&c->tls);
    free(c->user_agent);
    free(c->proxy_url);
    free(c);
}

const char *http_header_get(const http_response_t *resp, const char *name)
{
    if (!resp || !name)
        return NULL;
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    }
    return NULL;
}

int64_t http_retry_after_ms(const http_response_t *resp)
{
    const char *v = http_header_get(resp, "Retry-After");
    if (!v || !isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    char *end = NULL;
    long long s = strtoll(v, &end, 10);
    if (errno || *end != '\0' || s < 0 || s > INT64_MAX / 1000)
        return -1;
    return (int64_t)s * 1000;
}

void http_client_stats(const http_client_t *c, http_stats_t *out)
{
    if (!out)
        return;
    *out = c ? c->stats : (http_stats_t){0};
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------------------------------------------------------------------------------------------
 * Self-test: a libmicrohttpd server on 127.0.0.1 with its own threads (one per
 * connection, so that slow and streaming handlers may sleep), and the client
 * driven with loop_run_once().
 */

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define T_SLOW_MS 3000 /* how long /slow and /stall keep the client waiting */
#define T_STREAM_LINES 500 /* lines /stream sends at most */
#define T_STREAM_GAP_MS 20 /* pause between lines of /stream */
#define T_DEADLINE_MS 8000 /* the longest any step of the test waits */
#define T_CONCURRENT 50 /* requests in the keep-alive test */

typedef struct {
    struct MHD_Daemon *daemon; /* the server */
    int port; /* its ephemeral port */
    atomic_bool stopping; /* set before MHD_stop_daemon: sleeping handlers return */
    atomic_int requests; /* requests answered */
    atomic_int connections; /* connections accepted */
} t_server_t;

typedef struct {
    buf_t upload; /* the request body received */
} t_conn_t;

typedef struct {
    t_server_t *srv; /* the server */
    int kind; /* 0: /stream, 1: /stall, 2: /bigchunk */
    int calls; /* reader calls so far */
} t_stream_t;

static void s_t_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleeps up to ms in small steps; returns early when the server stops. */
static void s_t_sleep_unless_stopping(t_server_t *srv, int ms)
{
    for (int slept = 0; slept < ms && !atomic_load(&srv->stopping); slept += 10)
        s_t_sleep_ms(10);
}

static ssize_t s_t_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    t_stream_t *st = cls;
    st->calls++;
    if (atomic_load(&st->srv->stopping))
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (st->kind == 0) {
        if (st->calls > T_STREAM_LINES)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->calls > 1)
            s_t_sleep_ms(T_STREAM_GAP_MS);
        int n = snprintf(out, max, "line %d\n", st->calls);
        return n > 0 && (size_t)n < max ? n : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (st->kind == 1) {
        if (st->calls == 1) {
            memcpy(out, "first\n", 6);
            return 6;
        }
        s_t_sleep_unless_stopping(st->srv, T_SLOW_MS);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (st->calls > 20)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = max < 1000 ? max : 1000;
    memset(out, 'y', n);
    return (ssize_t)n;
}

static void s_t_reader_free(void *cls)
{
    free(cls);
}

static struct MHD_Response *s_t_text(const char *text)
{
    return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result s_t_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    t_server_t *srv = cls;
    t_conn_t *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc)
            return MHD_NO;
        buf_init(&cc->upload, 1024 * 1024);
        *con_cls = cc;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (buf_append(&cc->upload, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&srv->requests, 1);
    unsigned status = MHD_HTTP_OK;
    struct MHD_Response *resp = NULL;
    if (strcmp(url, "/hello") == 0) {
        resp = s_t_text("hello world");
        if (resp) {
            MHD_add_response_header(resp, "X-Custom", "abc-123");
            MHD_add_response_header(resp, "Content-Type", "text/plain");
        }
    } else if (strcmp(url, "/echo") == 0) {
        resp =
            MHD_create_response_from_buffer(cc->upload.len, cc->upload.data, MHD_RESPMEM_MUST_COPY);
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (resp && ct)
            MHD_add_response_header(resp, "Content-Type", ct);
    } else if (strcmp(url, "/method") == 0) {
        resp = s_t_text(method);
    } else if (strcmp(url, "/auth") == 0) {
        const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        resp = s_t_text(a ? a : "none");
    } else if (strcmp(url, "/empty") == 0) {
        status = MHD_HTTP_NO_CONTENT;
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(url, "/throttle") == 0) {
        status = MHD_HTTP_TOO_MANY_REQUESTS;
        resp = s_t_text("slow down");
        if (resp)
            MHD_add_response_header(resp, "Retry-After", "3");
    } else if (strcmp(url, "/big") == 0) {
        char big[10000];
        memset(big, 'x', sizeof big);
        resp = MHD_create_response_from_buffer(sizeof big, big, MHD_RESPMEM_MUST_COPY);
    } else if (strcmp(url, "/slow") == 0) {
        s_t_sleep_unless_stopping(srv, T_SLOW_MS);
        resp = s_t_text("late");
    } else if (strcmp(url, "/stream") == 0 || strcmp(url, "/stall") == 0 ||
               strcmp(url, "/bigchunk") == 0) {
        t_stream_t *st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        st->srv = srv;
        st->kind = url[3] == 'r' ? 0 : url[3] == 'a' ? 1 : 2;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, s_t_reader, st,
                                                 s_t_reader_free);
        if (!resp)
            free(st);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        resp = s_t_text("no such thing");
    }
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void s_t_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    t_conn_t *cc = *con_cls;
    if (cc) {
        buf_free(&cc->upload);
        free(cc);
        *con_cls = NULL;
    }
}

static void s_t_notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe)
{
    t_server_t *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&srv->connections, 1);
}

/* Starts a server on 127.0.0.1 (HTTPS when key and cert are given). Returns 0
 * or -1. */
static int s_t_server_start(t_server_t *srv, const char *key, const char *cert)
{
    memset(srv, 0, sizeof *srv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;
    if (key)
        srv->daemon = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, s_t_handler, srv,
                                       MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                                       s_t_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
                                       s_t_notify_conn, srv, MHD_OPTION_HTTPS_MEM_KEY, key,
                                       MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    else
        srv->daemon =
            MHD_start_daemon(flags, 0, NULL, NULL, s_t_handler, srv, MHD_OPTION_SOCK_ADDR, &sa,
                             MHD_OPTION_NOTIFY_COMPLETED, s_t_completed, srv,
                             MHD_OPTION_NOTIFY_CONNECTION, s_t_notify_conn, srv, MHD_OPTION_END);
    if (!srv->daemon)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    return srv->port > 0 ? 0 : -1;
}

static void s_t_server_stop(t_server_t *srv)
{
    atomic_store(&srv->stopping, true);
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}

/* What the test callbacks saw. */
typedef struct {
    int done; /* on_done calls */
    int err; /* resp->err */
    long status; /* resp->status */
    char *body; /* the body, taken with buf_take */
    size_t body_len; /* its length */
    char custom[64]; /* X-Custom header */
    char ctype[64]; /* Content-Type header */
    int64_t retry_ms; /* http_retry_after_ms */
    long connects; /* resp->num_connects */
    long version; /* resp->http_version */
    int64_t total_us; /* resp->total_us */
    bool error_text; /* error_text was non-empty */
    int headers_calls; /* on_headers calls */
    bool headers_cancel; /* on_headers: cancel own request */
    int headers_fail; /* on_headers: return this */
    long headers_status; /* status seen by on_headers */
    int data_calls; /* on_data calls */
    size_t data_bytes; /* bytes seen by on_data */
    int cancel_after; /* on_data: cancel own request after this many calls (0: never) */
    int fail_after; /* on_data: return ERR_TOOBIG after this many calls (0: never) */
    bool spawn; /* on_data: start a GET /hello from inside the first call */
    int64_t id; /* this request's id */
    int64_t spawned_id; /* the id of the spawned request */
    void *spawned; /* the result record (a t_result_t) of the spawned request */
    int port; /* the server's port, for the spawned request */
    int64_t cancel_other; /* on_done: cancel this id */
    int cancel_other_rc; /* what that http_cancel returned */
    int cancel_self_rc; /* on_done: what http_cancel(own id) returned */
} t_result_t;

static void s_t_done(http_client_t *client, http_response_t *resp, void *arg)
{
    t_result_t *t = arg;
    t->done++;
    t->err = resp->err;
    t->status = resp->status;
    free(t->body);
    t->body = buf_take(&resp->body, &t->body_len);
    const char *v = http_header_get(resp, "x-custom");
    snprintf(t->custom, sizeof t->custom, "%s", v ? v : "");
    v = http_header_get(resp, "CONTENT-TYPE");
    snprintf(t->ctype, sizeof t->ctype, "%s", v ? v : "");
    t->retry_ms = http_retry_after_ms(resp);
    t->connects = resp->num_connects;
    t->version = resp->http_version;
    t->total_us = resp->total_us;
    t->error_text = resp->error_text[0] != '\0';
    t->cancel_self_rc = http_cancel(client, resp->id);
    if (t->cancel_other > 0)
        t->cancel_other_rc = http_cancel(client, t->cancel_other);
}

static int s_t_headers(http_client_t *client, const http_response_t *resp, void *arg)
{
    t_result_t *t = arg;
    t->headers_calls++;
    t->headers_status = resp->status;
    if (t->headers_cancel)
        t->cancel_self_rc = http_cancel(client, resp->id);
    return t->headers_fail;
}

static int s_t_data(http_client_t *client, int64_t id, const void *data, size_t len, void *arg)
{
    t_result_t *t = arg;
    t->data_calls++;
    t->data_bytes += len;
    if (t->spawn && t->data_calls == 1 && t->spawned) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", t->port);
        t->spawned_id = http_request(
            client, &(http_request_t){.url = url, .on_done = s_t_done, .arg = t->spawned});
    }
    if (t->cancel_after && t->data_calls == t->cancel_after)
        http_cancel(client, id);
    if (t->fail_after && t->data_calls == t->fail_after)
        return ERR_TOOBIG;
    return 0;
}

/* Runs the loop until *count reaches `want` or T_DEADLINE_MS pass. Returns the
 * elapsed ms. */
static int64_t s_t_run(loop_t *loop, const int *count, int want)
{
    int64_t start = loop_clock_ms();
    while (*count < want && loop_clock_ms() - start < T_DEADLINE_MS)
        loop_run_once(loop, 50);
    return loop_clock_ms() - start;
}

/* Runs the loop for `ms`. */
static void s_t_spin(loop_t *loop, int64_t ms)
{
    int64_t start = loop_clock_ms();
    while (loop_clock_ms() - start < ms)
        loop_run_once(loop, 10);
}

static void s_t_reset(t_result_t *t)
{
    free(t->body);
    memset(t, 0, sizeof *t);
}

/* Streams over plain http:// start at once on connections of their own: none waits behind
 * another (a watch stream) for a connection to multiplex on. Returns the failed-check count. */
static int s_t_parallel_streams(loop_t *loop, const char *base)
{
    enum { N = 4 };
    int failed = 0;
    http_client_t *c = http_client_new(loop, NULL);
    CHECK(c);
    char url[128];
    snprintf(url, sizeof url, "%s/stream", base);
    t_result_t t[N] = {{0}};
    int64_t ids[N] = {0};
    for (int i = 0; c && i < N; i++) {
        ids[i] = http_request(c, &(http_request_t){.url = url,
                                                   .timeout_ms = HTTP_NO_TIMEOUT,
                                                   .on_done = s_t_done,
                                                   .on_data = s_t_data,
                                                   .arg = &t[i]});
        CHECK(ids[i] > 0);
    }
    int64_t start = loop_clock_ms();
    int streaming = 0;
    while (streaming < N && loop_clock_ms() - start < T_SLOW_MS) {
        loop_run_once(loop, 20);
        streaming = 0;
        for (int i = 0; i < N; i++)
            streaming += t[i].data_calls > 0;
    }
    CHECK(streaming == N); // before the first stream ends (T_STREAM_LINES * T_STREAM_GAP_MS)
    for (int i = 0; i < N; i++) {
        CHECK(t[i].done == 0);
        if (c && ids[i] > 0)
            CHECK(http_cancel(c, ids[i]) == 0);
        s_t_reset(&t[i]);
    }
    http_client_destroy(&c);
    return failed;
}

/* A raw fd sharing the loop with the client: counts its readable events. */
static int s_t_pipe_read(loop_t *loop, int fd, int revents, void *arg)
{
    char b[16];
    if (read(fd, b, sizeof b) > 0)
        (*(int *)arg)++;
    return 0;
}

/* GET url with "Connection: close" and runs the loop until it is done. Returns the
 * failed-check count. */
static int s_t_get_close(loop_t *loop, http_client_t *c, const char *url, t_result_t *t)
{
    int failed = 0;
    http_header_t close_hdr[] = {{"Connection", "close"}};
    s_t_reset(t);
    CHECK(http_request(c, &(http_request_t){.url = url,
                                            .headers = close_hdr,
                                            .n_headers = 1,
                                            .on_done = s_t_done,
                                            .arg = t}) > 0);
    s_t_run(loop, &t->done, 1);
    CHECK(t->done == 1 && t->status == 200);
    return failed;
}

/* Writes a byte into pipe p and runs the loop until its read end's handler counted it, then
 * unwatches (before closing) and closes the pipe. Returns the failed-check count. */
static int s_t_pipe_check(loop_t *loop, int p[2], int *reads)
{
    int failed = 0;
    CHECK(write(p[1], "x", 1) == 1);
    int want = *reads + 1;
    s_t_run(loop, reads, want);
    CHECK(*reads == want);
    CHECK(loop_remove_fd(loop, p[0]) == 0); // removal before close
    close(p[0]);
    close(p[1]);
    return failed;
}

/* Two users of one loop, fd numbers reused at once: every transfer closes its connection, and
 * between transfers a pipe takes a low free number (often one a socket just had) and registers
 * it. The client must leave that registration alone (no late removal of a closed socket) and
 * must not keep a stale one that takes its own next socket's events. Returns the failed-check
 * count. */
static int s_t_fd_reuse(loop_t *loop, const char *base)
{
    int failed = 0;
    http_client_t *c = http_client_new(loop, NULL);
    CHECK(c);
    char url[128];
    snprintf(url, sizeof url, "%s/hello", base);
    t_result_t t = {0};
    int reads = 0, fresh = 0;
    int p[2];
    for (int i = 0; c && i < 8; i++) {
        failed += s_t_get_close(loop, c, url, &t);
        CHECK(pipe(p) == 0);
        CHECK(loop_add_fd(loop, p[0], LOOP_READ, s_t_pipe_read, &reads) == 0);
        // One more transfer on a new connection, then the pipe must still be watched.
        failed += s_t_get_close(loop, c, url, &t);
        fresh += t.connects == 1;
        failed += s_t_pipe_check(loop, p, &reads);
    }
    CHECK(fresh == 8); // each transfer opened a connection of its own
    // The client's destruction, too, leaves alone an fd registered after its last transfer.
    CHECK(pipe(p) == 0);
    CHECK(loop_add_fd(loop, p[0], LOOP_READ, s_t_pipe_read, &reads) == 0);
    http_client_destroy(&c);
    failed += s_t_pipe_check(loop, p, &reads);
    s_t_reset(&t);
    return failed;
}

/* Reads a whole small file into a NUL-terminated heap string, or NULL. */
static char *s_t_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b;
    buf_init(&b, 1024 * 1024);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf_append(&b, chunk, n) != 0)
            break;
    }
    fclose(f);
    return buf_take(&b, len);
}

static int s_t_tls(loop_t *loop, bool verbose)
{
    int failed = 0;
    char dir[] = "/tmp/rf-http-test-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return failed;
    }
    char cmd[1024], key_path[256], cert_path[256];
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes "
             "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key_path, cert_path);
    int sys = system(cmd);
    CHECK(sys == 0);
    size_t key_len = 0, cert_len = 0;
    char *key = s_t_slurp(key_path, &key_len);
    char *cert = s_t_slurp(cert_path, &cert_len);
    CHECK(key && cert && key_len > 0 && cert_len > 0);
    t_server_t srv;
    bool have_tls = MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
    if (verbose && !have_tls)
        printf("http: libmicrohttpd has no TLS; TLS checks skipped\n");
    if (key && cert && have_tls && s_t_server_start(&srv, key, cert) == 0) {
        char url[128];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/hello", srv.port);
        t_result_t t = {0};

        // Verification on, the system CAs only: the self-signed server is refused.
        http_client_t *c = http_client_new(loop, NULL);
        CHECK(c);
        CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == ERR_TLS && t.status == 0 && t.error_text);
        http_client_destroy(&c);

        // The CA given as PEM data in the client config: accepted.
        s_t_reset(&t);
        http_config_t cfg = {.tls = {.ca_data = cert, .ca_data_len = cert_len}};
        c = http_client_new(loop, &cfg);
        CHECK(c);
        CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == 0 && t.status == 200);
        CHECK(t.body && strcmp(t.body, "hello world") == 0);
        http_client_destroy(&c);

        // The CA from a file, and a client certificate and key from files.
        s_t_reset(&t);
        cfg = (http_config_t){
            .tls = {.ca_file = cert_path, .cert_file = cert_path, .key_file = key_path}};
        c = http_client_new(loop, &cfg);
        CHECK(c);
        CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == 0 && t.status == 200);

        // A per-request override (CA, client cert and key as data) on a default
        // client.
        s_t_reset(&t);
        http_tls_t over = {.ca_data = cert,
                           .ca_data_len = cert_len,
                           .cert_data = cert,
                           .cert_data_len = cert_len,
                           .key_data = key,
                           .key_data_len = key_len};
        http_client_t *plain = http_client_new(loop, NULL);
        CHECK(plain);
        CHECK(http_request(
                  plain,
                  &(http_request_t){.url = url, .tls = &over, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == 0 && t.status == 200);
        http_client_destroy(&plain);
        http_client_destroy(&c);

        // A wrong CA file: still refused.
        s_t_reset(&t);
        cfg = (http_config_t){.tls = {.ca_file = "/nonexistent/ca.pem"}};
        c = http_client_new(loop, &cfg);
        CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == ERR_TLS);
        http_client_destroy(&c);

        // insecure_skip_verify: accepted without any CA (and logged).
        s_t_reset(&t);
        cfg = (http_config_t){.tls = {.insecure_skip_verify = true}};
        c = http_client_new(loop, &cfg);
        CHECK(c);
        CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == 0 && t.status == 200);
        http_client_destroy(&c);
        s_t_reset(&t);
        s_t_server_stop(&srv);
    } else if (have_tls) {
        CHECK(!"TLS server start");
    }
    free(key);
    free(cert);
    unlink(key_path);
    unlink(cert_path);
    rmdir(dir);
    return failed;
}

int http_test(bool verbose)
{
    int failed = 0;
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    loop_t *loop = loop_new();
    t_server_t srv;
    CHECK(loop && s_t_server_start(&srv, NULL, NULL) == 0);
    if (!loop || !srv.daemon) {
        loop_destroy(&loop);
        curl_global_cleanup();
        return SELFTEST_RESULT("http", verbose);
    }
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);
    char url[128];
    t_result_t t = {0};
    http_stats_t st0, st1;
    http_client_t *c = http_client_new(loop, &(http_config_t){.user_agent = "rayfleet-test"});
    CHECK(c);

    // Argument checks: no callback ever runs for these.
    CHECK(http_client_new(NULL, NULL) == NULL);
    CHECK(http_client_new(loop, &(http_config_t){.max_host_connections = -1}) == NULL);
    CHECK(http_client_new(loop, &(http_config_t){.tls = {.ca_data = "x", .ca_data_len = 0}}) ==
          NULL);
    CHECK(http_request(c, &(http_request_t){.on_done = s_t_done}) == ERR_INVAL);
    CHECK(http_request(c, &(http_request_t){.url = base}) == ERR_INVAL);
    CHECK(http_request(c, &(http_request_t){.url = base, .method = "BREW", .on_done = s_t_done}) ==
          ERR_INVAL);
    http_header_t bad[] = {{"X-Evil", "a\r\nInjected: 1"}};
    CHECK(http_request(c,
                       &(http_request_t){
                           .url = base, .headers = bad, .n_headers = 1, .on_done = s_t_done}) ==
          ERR_INVAL);
    CHECK(http_request(c, &(http_request_t){.url = base, .timeout_ms = -5, .on_done = s_t_done}) ==
          ERR_INVAL);
    CHECK(http_cancel(c, 12345) == ERR_NOTFOUND);
    CHECK(http_cancel(NULL, 1) == ERR_NOTFOUND);
    CHECK(http_header_get(NULL, "x") == NULL);
    http_client_destroy(NULL);

    // GET 200 with a body and a custom header; the request id is known to
    // on_done.
    snprintf(url, sizeof url, "%s/hello", base);
    t.id = http_request(
        c,
        &(http_request_t){.url = url, .on_done = s_t_done, .on_headers = s_t_headers, .arg = &t});
    CHECK(t.id > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 200);
    CHECK(t.body && t.body_len == 11 && strcmp(t.body, "hello world") == 0);
    CHECK(strcmp(t.custom, "abc-123") == 0 && strcmp(t.ctype, "text/plain") == 0);
    CHECK(t.headers_calls == 1 && t.headers_status == 200);
    CHECK(t.retry_ms == -1 && !t.error_text);
    CHECK(t.version == 11 && t.total_us > 0 && t.connects == 1);
    CHECK(t.cancel_self_rc == ERR_NOTFOUND); // its own id is gone during on_done
    CHECK(http_cancel(c, t.id) == ERR_NOTFOUND);

    // POST with a copied body, echoed with its content type; headers sent as
    // given.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/echo", base);
    char body[] = "{\"kind\":\"RayCluster\"}";
    http_header_t hdrs[] = {{"Content-Type", "application/json"}, {"X-Empty", ""}};
    CHECK(http_request(c, &(http_request_t){.method = "POST",
                                            .url = url,
                                            .headers = hdrs,
                                            .n_headers = 2,
                                            .body = body,
                                            .body_len = strlen(body),
                                            .on_done = s_t_done,
                                            .arg = &t}) > 0);
    memset(body, '#', strlen(body)); // copied: changing it now is harmless
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 200);
    CHECK(t.body && strcmp(t.body, "{\"kind\":\"RayCluster\"}") == 0);
    CHECK(strcmp(t.ctype, "application/json") == 0);

    // PUT with a borrowed body (kept alive until on_done), PATCH, DELETE, HEAD.
    s_t_reset(&t);
    static const char borrowed[] = "borrowed bytes";
    CHECK(http_request(c, &(http_request_t){.method = "PUT",
                                            .url = url,
                                            .body = borrowed,
                                            .body_len = strlen(borrowed),
                                            .body_borrowed = true,
                                            .on_done = s_t_done,
                                            .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.status == 200 && t.body && strcmp(t.body, borrowed) == 0);
    const char *methods[] = {"PATCH", "DELETE", "GET"};
    snprintf(url, sizeof url, "%s/method", base);
    for (size_t i = 0; i < 3; i++) {
        s_t_reset(&t);
        CHECK(http_request(
                  c, &(http_request_t){
                         .method = methods[i], .url = url, .on_done = s_t_done, .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.status == 200 && t.body && strcmp(t.body, methods[i]) == 0);
    }
    s_t_reset(&t);
    CHECK(http_request(c, &(http_request_t){.method = "HEAD",
                                            .url = url,
                                            .on_done = s_t_done,
                                            .on_headers = s_t_headers,
                                            .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 200 && t.body_len == 0);
    CHECK(t.headers_calls == 1);

    // A bearer token header reaches the server (the caller builds it).
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/auth", base);
    http_header_t auth[] = {{"Authorization", "Bearer s3cr3t"}};
    CHECK(http_request(c, &(http_request_t){.url = url,
                                            .headers = auth,
                                            .n_headers = 1,
                                            .on_done = s_t_done,
                                            .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.body && strcmp(t.body, "Bearer s3cr3t") == 0);

    // 404 keeps its body; 429 gives Retry-After; 204 has no body.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/nope", base);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 404);
    CHECK(t.body && strcmp(t.body, "no such thing") == 0);
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/throttle", base);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 429 && t.retry_ms == 3000);
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/empty", base);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 204 && t.body_len == 0);

    // on_headers cancels its own request (with and without a body), or fails it.
    const char *paths[] = {"/empty", "/hello", "/stream"};
    for (size_t i = 0; i < 3; i++) {
        s_t_reset(&t);
        t.headers_cancel = true;
        snprintf(url, sizeof url, "%s%s", base, paths[i]);
        CHECK(http_request(c, &(http_request_t){.url = url,
                                                .timeout_ms = HTTP_NO_TIMEOUT,
                                                .on_done = s_t_done,
                                                .on_data = i == 2 ? s_t_data : NULL,
                                                .on_headers = s_t_headers,
                                                .arg = &t}) > 0);
        s_t_spin(loop, 150);
        CHECK(t.headers_calls == 1 && t.cancel_self_rc == 0 && t.done == 0 && t.data_calls == 0);
    }
    for (size_t i = 0; i < 2; i++) {
        s_t_reset(&t);
        t.headers_fail = ERR_FORBIDDEN;
        snprintf(url, sizeof url, "%s%s", base, paths[i]);
        CHECK(http_request(c, &(http_request_t){.url = url,
                                                .on_done = s_t_done,
                                                .on_headers = s_t_headers,
                                                .arg = &t}) > 0);
        s_t_run(loop, &t.done, 1);
        CHECK(t.done == 1 && t.err == ERR_FORBIDDEN && t.headers_calls == 1 && t.error_text);
    }
    http_client_stats(c, &st0);
    CHECK(st0.in_flight == 0 && st0.cancelled >= 3);

    // Bodies over the bound: with a Content-Length, and chunked. Never truncated.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/big", base);
    CHECK(http_request(c, &(http_request_t){
                              .url = url, .max_body = 1000, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_TOOBIG && t.error_text);
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/bigchunk", base);
    CHECK(http_request(c, &(http_request_t){
                              .url = url, .max_body = 5000, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_TOOBIG && t.status == 200);
    s_t_reset(&t);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.body_len == 20000);

    // A server slower than the timeout: ERR_TIMEOUT, quickly.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/slow", base);
    CHECK(http_request(c, &(http_request_t){
                              .url = url, .timeout_ms = 300, .on_done = s_t_done, .arg = &t}) > 0);
    int64_t took = s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_TIMEOUT && took < 1500);

    // Connection refused on a port nobody listens on.
    s_t_reset(&t);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &sl) == 0);
    close(s);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    took = s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_CONNREFUSED && t.status == 0 && t.error_text);
    CHECK(took < 1500);
    s_t_reset(&t);
    CHECK(http_request(c, &(http_request_t){
                              .url = "ftp://127.0.0.1/x", .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_INVAL);

    // Streaming: several on_data calls, a request started from inside on_data
    // (its add is deferred until curl returns), then the stream cancels itself
    // mid-way: on_done never runs.
    s_t_reset(&t);
    t_result_t spawned = {0};
    t.spawn = true;
    t.port = srv.port;
    t.spawned = &spawned;
    snprintf(url, sizeof url, "%s/stream", base);
    t.cancel_after = 5;
    t.id = http_request(c, &(http_request_t){.url = url,
                                             .timeout_ms = HTTP_NO_TIMEOUT,
                                             .idle_timeout_ms = 2000,
                                             .on_done = s_t_done,
                                             .on_data = s_t_data,
                                             .on_headers = s_t_headers,
                                             .arg = &t});
    CHECK(t.id > 0);
    s_t_run(loop, &t.data_calls, 5);
    s_t_spin(loop, 200);
    CHECK(t.data_calls == 5 && t.done == 0 && t.headers_calls == 1 && t.headers_status == 200);
    CHECK(t.data_bytes >= 5 * 6);
    CHECK(http_cancel(c, t.id) == ERR_NOTFOUND);
    CHECK(t.spawned_id > 0);
    s_t_run(loop, &spawned.done, 1);
    CHECK(spawned.done == 1 && spawned.status == 200);
    s_t_reset(&spawned);

    // Streaming, aborted by on_data's error: on_done gets that error.
    s_t_reset(&t);
    t.fail_after = 3;
    CHECK(http_request(c, &(http_request_t){.url = url,
                                            .timeout_ms = HTTP_NO_TIMEOUT,
                                            .on_done = s_t_done,
                                            .on_data = s_t_data,
                                            .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_TOOBIG && t.data_calls == 3 && t.status == 200);

    // Streaming, stalled after the first line: the idle timeout ends it with
    // ERR_TIMEOUT.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/stall", base);
    CHECK(http_request(c, &(http_request_t){.url = url,
                                            .timeout_ms = HTTP_NO_TIMEOUT,
                                            .idle_timeout_ms = 300,
                                            .on_done = s_t_done,
                                            .on_data = s_t_data,
                                            .arg = &t}) > 0);
    took = s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == ERR_TIMEOUT && t.data_calls == 1 && t.error_text);
    CHECK(took < 1500);

    // Streaming a refused watch (404): no on_data, the error body reaches
    // on_done.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/nope", base);
    CHECK(http_request(c, &(http_request_t){.url = url,
                                            .timeout_ms = HTTP_NO_TIMEOUT,
                                            .on_done = s_t_done,
                                            .on_data = s_t_data,
                                            .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.err == 0 && t.status == 404 && t.data_calls == 0);
    CHECK(t.body && strcmp(t.body, "no such thing") == 0);

    // on_done cancels another request in flight: that one never calls back.
    s_t_reset(&t);
    t_result_t other = {0};
    snprintf(url, sizeof url, "%s/slow", base);
    int64_t slow_id =
        http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &other});
    CHECK(slow_id > 0);
    t.cancel_other = slow_id;
    snprintf(url, sizeof url, "%s/hello", base);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    s_t_spin(loop, 100);
    CHECK(t.done == 1 && t.cancel_other_rc == 0 && other.done == 0);

    // 50 concurrent requests: all complete over a few kept-alive connections.
    http_client_stats(c, &st0);
    CHECK(st0.in_flight == 0);
    t_result_t many[T_CONCURRENT];
    memset(many, 0, sizeof many);
    int done_count = 0;
    snprintf(url, sizeof url, "%s/hello", base);
    for (int i = 0; i < T_CONCURRENT; i++)
        CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &many[i]}) >
              0);
    int64_t start = loop_clock_ms();
    while (done_count < T_CONCURRENT && loop_clock_ms() - start < T_DEADLINE_MS) {
        loop_run_once(loop, 50);
        done_count = 0;
        for (int i = 0; i < T_CONCURRENT; i++)
            done_count += many[i].done;
    }
    int ok = 0;
    for (int i = 0; i < T_CONCURRENT; i++) {
        ok += many[i].status == 200 && many[i].body && strcmp(many[i].body, "hello world") == 0;
        free(many[i].body);
    }
    http_client_stats(c, &st1);
    CHECK(ok == T_CONCURRENT);
    CHECK(st1.connects - st0.connects <= HTTP_DEFAULT_MAX_HOST_CONNECTIONS);
    CHECK(st1.completed - st0.completed == T_CONCURRENT && st1.in_flight == 0);
    if (verbose)
        printf("http: %d concurrent requests in %lld ms over %llu new connection(s)\n",
               T_CONCURRENT, (long long)(loop_clock_ms() - start),
               (unsigned long long)(st1.connects - st0.connects));
    // One more: a cached connection is reused.
    s_t_reset(&t);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    s_t_run(loop, &t.done, 1);
    CHECK(t.done == 1 && t.status == 200 && t.connects == 0);

    // Destroy with requests in flight: no callback runs, nothing leaks.
    s_t_reset(&t);
    snprintf(url, sizeof url, "%s/slow", base);
    CHECK(http_request(c, &(http_request_t){.url = url, .on_done = s_t_done, .arg = &t}) > 0);
    snprintf(url, sizeof url, "%s/stream", base);
    CHECK(http_request(c, &(http_request_t){.url = url,
                                            .timeout_ms = HTTP_NO_TIMEOUT,
                                            .idle_timeout_ms = 1000,
                                            .on_done = s_t_done,
                                            .on_data = s_t_data,
                                            .arg = &t}) > 0);
    s_t_spin(loop, 100);
    http_client_stats(c, &st1);
    CHECK(st1.in_flight == 2 && st1.started > st1.completed);
    http_client_destroy(&c);
    CHECK(c == NULL);
    int data_before = t.data_calls;
    s_t_spin(loop, 100);
    CHECK(t.done == 0 && t.data_calls == data_before);
    CHECK(loop_timer_count(loop) == 0);
    s_t_reset(&t);

    failed += s_t_fd_reuse(loop, base);
    failed += s_t_parallel_streams(loop, base);
    failed += s_t_tls(loop, verbose);

    s_t_server_stop(&srv);
    if (verbose)
        printf("http: server saw %d request(s) on %d connection(s)\n", atomic_load(&srv.requests),
               atomic_load(&srv.connections));
    loop_destroy(&loop);
    curl_global_cleanup();
    return SELFTEST_RESULT("http", verbose);
}

#endif /* RF_SELFTEST */
