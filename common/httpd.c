/*
 * httpd: HTTP/1.1 server on the loop. See httpd.h for the design.
 *
 * Each connection owns an input buffer (bounded by header + body limits) and an output queue
 * of chunk references with an offset into the first. Connections with output or pending input
 * are put on a dirty list; a 0 ms timer (armed when the list becomes non-empty; loop hooks
 * cannot be removed, timers can) flushes them with writev() and parses the next pipelined
 * request. Closed connections move to a zombie list freed by the same timer, so a pointer held
 * by a handler stays valid until the end of the current loop iteration.
 */
/* OpenSSL's err.h typedefs ERR_STATE, an enum constant of common/err.h: rename it here. */
#define ERR_STATE ossl_ERR_STATE
#include <openssl/ssl.h>
#include <openssl/x509.h>
#undef ERR_STATE

#include "httpd.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "quote.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define HTTPD_READ_SIZE 65536 /* bytes read per recv() */
#define HTTPD_IOV_MAX 64 /* segments per writev() */
#define HTTPD_LINGER_MS 2000 /* longest drain of unread input after an error reply */
#define HTTPD_LISTEN_BACKLOG 1024

typedef struct {
    httpd_chunk_t *chunk; /* referenced chunk */
    size_t off; /* bytes of it already written */
} seg_t;

typedef enum {
    ST_READING, /* waiting for a complete request */
    ST_HANDLING, /* request dispatched, no response yet */
    ST_STREAMING, /* streamed response in progress */
} conn_state_t;

struct httpd_conn {
    httpd_t *srv; /* owning server */
    int fd; /* socket, -1 once closed */
    conn_state_t state; /* where the current request is */
    buf_t in; /* received bytes not consumed yet */
    size_t consumed; /* bytes of `in` used by the request being handled */
    bool keep_alive; /* keep the connection after this response */
    bool closed; /* closed; waiting on the zombie list to be freed */
    bool dirty; /* on the dirty list */
    bool want_write; /* LOOP_WRITE is armed */
    bool sent_continue; /* 100 Continue sent for this request */
    bool head; /* the request being handled is HEAD: its response carries no body */
    bool linger; /* an error reply left unread input: drain it before closing */
    bool lingering; /* write side shut down; discarding input until EOF or the deadline */
    int64_t linger_until; /* loop time at which a lingering connection is closed anyway */
    seg_t *q; /* output queue (ring) */
    size_t qhead; /* index of the first segment */
    size_t qlen; /* segments queued */
    size_t qcap; /* ring capacity */
    size_t qbytes; /* unsent bytes queued */
    int64_t last_active; /* loop time of the last I/O */
    httpd_close_fn *on_close; /* close callback */
    void *on_close_arg; /* its argument */
    httpd_header_t headers[HTTPD_MAX_HEADERS]; /* parsed header fields */
    char *body_copy; /* decoded chunked body, if any */
    httpd_conn_t *prev, *next; /* all-connections list */
    httpd_conn_t *next_dirty; /* dirty or zombie list link */
    SSL *ssl; /* TLS state, NULL for plain connections */
    bool handshaking; /* TLS handshake not finished */
    bool hs_want_write; /* the handshake waits for writability */
    bool client_verified; /* a verified client certificate was presented */
};

struct httpd {
    loop_t *loop; /* the event loop */
    int lfd; /* listening socket */
    int port; /* bound port */
    size_t max_body; /* request body bound */
    httpd_limits_t lim; /* header, connection and idle bounds */
    int64_t sweep_ms; /* idle sweep period */
    httpd_handler_fn *handler; /* request handler */
    void *arg; /* its argument */
    httpd_conn_t *conns; /* open connections */
    size_t nconns; /* their number */
    httpd_conn_t *dirty; /* connections to flush/parse */
    httpd_conn_t *zombies; /* closed, to free */
    int64_t sweep_timer; /* idle sweep timer id */
    int64_t flush_timer; /* armed 0 ms flush timer id, 0 when none */
    SSL_CTX *tls; /* TLS context for new connections, or NULL */
};

/* ---- chunks ---------------------------------------------------------------------------- */

httpd_chunk_t *httpd_chunk_raw(const void *data, size_t len)
{
    httpd_chunk_t *ch = malloc(sizeof(*ch) + len + 1);
    if (!ch)
        return NULL;
    ch->refs = 1;
    ch->len = len;
    if (len)
        memcpy(ch->data, data, len);
    ch->data[len] = '\0';
    return ch;
}

httpd_chunk_t *httpd_chunk_framed(const void *data, size_t len)
{
    char head[24];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", len);
    httpd_chunk_t *ch = malloc(sizeof(*ch) + (size_t)hn + len + 3);
    if (!ch)
        return NULL;
    ch->refs = 1;
    memcpy(ch->data, head, (size_t)hn);
    if (len)
        memcpy(ch->data + hn, data, len);
    memcpy(ch->data + hn + len, "\r\n", 3);
    ch->len = (size_t)hn + len + 2;
    return ch;
}

void httpd_chunk_unref(httpd_chunk_t **chunk_p)
{
    if (!chunk_p || !*chunk_p)
        return;
    if (--(*chunk_p)->refs <= 0)
        free(*chunk_p);
    *chunk_p = NULL;
}

/* ---- helpers ---------------------------------------------------------------------------- */

const char *httpd_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* Percent-decodes in[n] into out[outsz]; '+' becomes ' ' when `plus` is set. */
static int s_decode(const char *in, size_t n, char *out, size_t outsz, bool plus)
{
    size_t o = 0;
    if (outsz == 0)
        return ERR_TOOBIG;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)in[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return ERR_INVAL;
            int h = quote_hexval((unsigned char)in[i + 1]),
                l = quote_hexval((unsigned char)in[i + 2]);
            if (h < 0 || l < 0)
                return ERR_INVAL;
            ch = h * 16 + l;
            if (ch == 0)
                return ERR_INVAL;
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        if (o + 1 >= outsz)
            return ERR_TOOBIG;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

int httpd_pct_decode(const char *in, size_t n, char *out, size_t outsz)
{
    return s_decode(in, n, out, outsz, false);
}

int httpd_query_get(const char *query, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (klen == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : p + plen;
            size_t vlen = eq ? plen - klen - 1 : 0;
            return s_decode(v, vlen, out, outsz, true);
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return ERR_NOTFOUND;
}

const char *httpd_req_header(const httpd_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* ---- connection plumbing --------------------------------------------------------------- */

static int64_t s_flush_all(loop_t *loop, int64_t id, void *arg);

/* Arms the flush timer if it is not armed. */
static void s_arm(httpd_t *srv)
{
    if (srv->flush_timer > 0)
        return;
    int64_t id = loop_add_timer(srv->loop, 0, s_flush_all, srv);
    srv->flush_timer = id > 0 ? id : 0;
}

static void s_mark_dirty(httpd_conn_t *c)
{
    if (c->dirty || c->closed)
        return;
    c->dirty = true;
    c->next_dirty = c->srv->dirty;
    c->srv->dirty = c;
    s_arm(c->srv);
}

/* Watches the socket for reading unless a request is being handled, and for writing while
 * output is queued. */
static void s_update_events(httpd_conn_t *c)
{
    if (c->closed || c->fd < 0)
        return;
    int ev = (c->state == ST_HANDLING && !c->handshaking ? 0 : LOOP_READ) |
             (c->want_write || c->hs_want_write ? LOOP_WRITE : 0);
    loop_set_fd_events(c->srv->loop, c->fd, ev);
}

static void s_queue_clear(httpd_conn_t *c)
{
    for (size_t i = 0; i < c->qlen; i++)
        httpd_chunk_unref(&c->q[(c->qhead + i) % c->qcap].chunk);
    c->qlen = 0;
    c->qhead = 0;
    c->qbytes = 0;
}

/* Queues a reference to `ch` (taking a new reference). */
static int s_enqueue(httpd_conn_t *c, httpd_chunk_t *ch)
{
    if (c->closed)
        return ERR_CLOSED;
    if (c->qbytes + ch->len > HTTPD_MAX_QUEUED) {
        log_warn("httpd: dropping slow connection", NULL);
        httpd_conn_abort(c);
        return ERR_TOOBIG;
    }
    if (c->qlen == c->qcap) {
        size_t ncap = c->qcap ? c->qcap * 2 : 8;
        seg_t *nq = malloc(ncap * sizeof(*nq));
        if (!nq)
            return ERR_NOMEM;
        for (size_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    ch->refs++;
    c->q[(c->qhead + c->qlen) % c->qcap] = (seg_t){ch, 0};
    c->qlen++;
    c->qbytes += ch->len;
    s_mark_dirty(c);
    return 0;
}

static int s_enqueue_copy(httpd_conn_t *c, const void *data, size_t len)
{
    httpd_chunk_t *ch = httpd_chunk_raw(data, len);
    if (!ch)
        return ERR_NOMEM;
    int rc = s_enqueue(c, ch);
    httpd_chunk_unref(&ch);
    return rc;
}

void httpd_conn_abort(httpd_conn_t *c)
{
    if (!c || c->closed)
        return;
    httpd_t *srv = c->srv;
    c->closed = true;
    if (c->fd >= 0) {
        loop_remove_fd(srv->loop, c->fd);
        if (c->ssl) {
            SSL_free(c->ssl);
            c->ssl = NULL;
        }
        close(c->fd);
        c->fd = -1;
    }
    s_queue_clear(c);
    if (c->on_close) {
        httpd_close_fn *fn = c->on_close;
        c->on_close = NULL;
        fn(c, c->on_close_arg);
    }
    /* Unlink from the live list; the dirty list is cleaned in the hook. */
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = srv->zombies;
        srv->zombies = c;
        s_arm(srv);
    }
}

static void s_conn_free(httpd_conn_t *c)
{
    buf_free(&c->in);
    free(c->q);
    free(c->body_copy);
    free(c);
}

void httpd_conn_on_close(httpd_conn_t *c, httpd_close_fn *fn, void *arg)
{
    c->on_close = fn;
    c->on_close_arg = arg;
}

bool httpd_conn_closed(const httpd_conn_t *c)
{
    return c->closed;
}

/* Drops `n` written bytes from the head of the output queue. */
static void s_consume(httpd_conn_t *c, size_t n)
{
    c->last_active = loop_now(c->srv->loop);
    size_t left = n;
    c->qbytes -= left;
    while (left > 0 && c->qlen > 0) {
        seg_t *s = &c->q[c->qhead];
        size_t avail = s->chunk->len - s->off;
        if (left >= avail) {
            left -= avail;
            httpd_chunk_unref(&s->chunk);
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
        } else {
            s->off += left;
            left = 0;
        }
    }
}

/* Writes queued output through TLS. Returns the bytes written (>= 0) or -1 after closing. */
static ssize_t s_ssl_write(httpd_conn_t *c)
{
    size_t total = 0;
    for (size_t i = 0; i < c->qlen; i++) {
        seg_t *s = &c->q[(c->qhead + i) % c->qcap];
        size_t off = s->off;
        while (off < s->chunk->len) {
            size_t n = s->chunk->len - off;
            int w = SSL_write(c->ssl, s->chunk->data + off, n > INT32_MAX ? INT32_MAX : (int)n);
            if (w <= 0) {
                int e = SSL_get_error(c->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    return (ssize_t)total;
                httpd_conn_abort(c);
                return -1;
            }
            off += (size_t)w;
            total += (size_t)w;
        }
    }
    return (ssize_t)total;
}

/* Writes as much queued output as the socket takes. Returns 0 or a negative err (closed). */
static int s_flush(httpd_conn_t *c)
{
    if (c->handshaking)
        return 0;
    while (c->qlen > 0) {
        if (c->ssl) {
            ssize_t w = s_ssl_write(c);
            if (w < 0)
                return ERR_IO;
            if (w == 0)
                break;
            s_consume(c, (size_t)w);
            continue;
        }
        struct iovec iov[HTTPD_IOV_MAX];
        int n = 0;
        for (size_t i = 0; i < c->qlen && n < HTTPD_IOV_MAX; i++) {
            seg_t *s = &c->q[(c->qhead + i) % c->qcap];
            iov[n].iov_base = s->chunk->data + s->off;
            iov[n].iov_len = s->chunk->len - s->off;
            n++;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            httpd_conn_abort(c);
            return ERR_IO;
        }
        s_consume(c, (size_t)w);
    }
    bool want = c->qlen > 0;
    if (want != c->want_write) {
        c->want_write = want;
        s_update_events(c);
    }
    if (c->qlen == 0 && !c->keep_alive && c->state == ST_READING && !c->lingering) {
        /* After an early error reply the peer may still be sending its body. Closing now
         * with unread input makes the kernel send RST, and the peer can lose the reply
         * before reading it. Shut down the write side and drain instead (a lingering
         * close, as nginx does); the sweep or the next read ends it. */
        if (c->linger && !c->ssl && shutdown(c->fd, SHUT_WR) == 0) {
            c->lingering = true;
            c->linger_until = loop_now(c->srv->loop) + HTTPD_LINGER_MS;
            s_update_events(c);
            return 0;
        }
        httpd_conn_abort(c);
        return ERR_CLOSED;
    }
    return 0;
}

int httpd_conn_flush(httpd_conn_t *c)
{
    if (!c || c->closed)
        return ERR_CLOSED;
    return s_flush(c) == ERR_IO ? ERR_IO : 0;
}

/* Ends the current request: drops its bytes from the input and goes back to reading. */
static void s_request_done(httpd_conn_t *c)
{
    size_t rest = c->in.len - c->consumed;
    if (rest)
        memmove(c->in.data, c->in.data + c->consumed, rest);
    c->in.len = rest;
    if (c->in.data)
        c->in.data[rest] = '\0';
    c->consumed = 0;
    c->state = ST_READING;
    c->sent_continue = false;
    free(c->body_copy);
    c->body_copy = NULL;
    s_update_events(c);
    s_mark_dirty(c);
}

static int s_head(httpd_conn_t *c, buf_t *b, int status, const char *ctype, const char *extra)
{
    int rc = buf_printf(b, "HTTP/1.1 %d %s\r\n", status, httpd_status_text(status));
    if (!rc && ctype)
        rc = buf_printf(b, "Content-Type: %s\r\n", ctype);
    if (!rc && extra)
        rc = buf_puts(b, extra);
    if (!rc && !c->keep_alive)
        rc = buf_puts(b, "Connection: close\r\n");
    return rc;
}

int httpd_respond(httpd_conn_t *c, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t len)
{
    if (c->closed)
        return ERR_CLOSED;
    if (c->state != ST_HANDLING)
        return ERR_STATE;
    buf_t b;
    buf_init(&b, c->srv->lim.max_header + len + 64);
    int rc = s_head(c, &b, status, content_type, extra_headers);
    if (!rc)
        rc = buf_printf(&b, "Content-Length: %zu\r\n\r\n", len);
    if (!rc && len && !c->head)
        rc = buf_append(&b, body, len);
    if (!rc)
        rc = s_enqueue_copy(c, b.data, b.len);
    buf_free(&b);
    if (rc)
        return rc;
    s_request_done(c);
    return 0;
}

int httpd_stream_begin(httpd_conn_t *c, int status, const char *content_type,
                       const char *extra_headers)
{
    if (c->closed)
        return ERR_CLOSED;
    if (c->state != ST_HANDLING)
        return ERR_STATE;
    buf_t b;
    buf_init(&b, c->srv->lim.max_header);
    int rc = s_head(c, &b, status, content_type, extra_headers);
    if (!rc)
        rc = buf_puts(&b, "Transfer-Encoding: chunked\r\n\r\n");
    if (!rc)
        rc = s_enqueue_copy(c, b.data, b.len);
    buf_free(&b);
    if (rc)
        return rc;
    c->state = ST_STREAMING;
    /* Keep reading so a peer hang-up is noticed; later input is discarded while streaming. */
    s_update_events(c);
    return 0;
}

int httpd_stream_send(httpd_conn_t *c, httpd_chunk_t *chunk)
{
    if (c->closed)
        return ERR_CLOSED;
    if (c->state != ST_STREAMING)
        return ERR_STATE;
    return s_enqueue(c, chunk);
}

int httpd_stream_end(httpd_conn_t *c)
{
    if (c->closed)
        return ERR_CLOSED;
    if (c->state != ST_STREAMING)
        return ERR_STATE;
    int rc = s_enqueue_copy(c, "0\r\n\r\n", 5);
    if (rc)
        return rc;
    s_request_done(c);
    return 0;
}

/* ---- request parsing -------------------------------------------------------------------- */

static void s_error(httpd_conn_t *c, int status, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                     "\"Failure\",\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}\n",
                     msg, status == 413 ? "RequestEntityTooLarge" : "BadRequest", status);
    c->keep_alive = false;
    c->linger = true;
    c->state = ST_HANDLING;
    c->consumed = c->in.len;
    httpd_respond(c, status, "application/json", NULL, body, (size_t)n);
}

static char *s_trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

/* Decodes a chunked body starting at p (n bytes available). Returns the bytes used (> 0) with
 * *out and *outlen set, 0 when more input is needed, or a negative err. */
static long s_dechunk(const char *p, size_t n, size_t max, char **out, size_t *outlen)
{
    buf_t b;
    buf_init(&b, max);
    size_t i = 0;
    for (;;) {
        const char *eol = memmem(p + i, n - i, "\r\n", 2);
        if (!eol)
            goto more;
        char *endp = NULL;
        unsigned long sz = strtoul(p + i, &endp, 16);
        if (endp == p + i) {
            buf_free(&b);
            return ERR_PARSE;
        }
        i = (size_t)(eol - p) + 2;
        if (sz == 0) {
            /* Skip trailers up to the empty line. */
            for (;;) {
                const char *e2 = memmem(p + i, n - i, "\r\n", 2);
                if (!e2)
                    goto more;
                size_t linelen = (size_t)(e2 - (p + i));
                i += linelen + 2;
                if (linelen == 0)
                    break;
            }
            if (buf_append(&b, "", 0) < 0) {
                buf_free(&b);
                return ERR_NOMEM;
            }
            *outlen = b.len;
            *out = buf_take(&b, NULL);
            return *out ? (long)i : ERR_NOMEM;
        }
        if (n - i < sz + 2)
            goto more;
        int rc = buf_append(&b, p + i, sz);
        if (rc) {
            buf_free(&b);
            return rc;
        }
        i += sz + 2;
    }
more:
    buf_free(&b);
    return 0;
}

/* Tries to parse and dispatch requests from the input buffer. */
static void s_parse(httpd_conn_t *c)
{
    httpd_t *srv = c->srv;
    while (!c->closed && c->state == ST_READING && c->in.len > 0) {
        char *data = c->in.data;
        char *hend = memmem(data, c->in.len, "\r\n\r\n", 4);
        if (!hend) {
            if (c->in.len > srv->lim.max_header)
                s_error(c, 431, "request header too large");
            return;
        }
        size_t hlen = (size_t)(hend - data) + 4;
        /* Request line. Parse into a scratch copy so an incomplete body leaves `in` intact. */
        char *line_end = memmem(data, hlen, "\r\n", 2);
        char *sp1 = memchr(data, ' ', (size_t)(line_end - data));
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || line_end - sp2 < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
            s_error(c, 400, "malformed request line");
            return;
        }
        int minor = sp2[8] - '0';
        /* Headers: find the body length first without modifying the buffer. */
        size_t clen = 0;
        bool chunked = false, expect100 = false;
        bool conn_close = minor == 0, conn_keep = false;
        char *h = line_end + 2;
        while (h < hend) {
            char *e = memmem(h, (size_t)(hend + 2 - h), "\r\n", 2);
            char *colon = memchr(h, ':', (size_t)(e - h));
            if (!colon) {
                s_error(c, 400, "malformed header");
                return;
            }
            size_t nlen = (size_t)(colon - h);
            const char *v = colon + 1;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(e - v);
            if (nlen == 14 && strncasecmp(h, "Content-Length", 14) == 0) {
                char tmp[24];
                if (vlen == 0 || vlen >= sizeof(tmp)) {
                    s_error(c, 400, "bad Content-Length");
                    return;
                }
                memcpy(tmp, v, vlen);
                tmp[vlen] = '\0';
                char *endp;
                unsigned long long x = strtoull(tmp, &endp, 10);
                while (*endp == ' ' || *endp == '\t')
                    endp++;
                if (*endp || tmp[0] == '-') {
                    s_error(c, 400, "bad Content-Length");
                    return;
                }
                if (x > srv->max_body) {
                    s_error(c, 413, "the request body is too large");
                    return;
                }
                clen = (size_t)x;
            } else if (nlen == 17 && strncasecmp(h, "Transfer-Encoding", 17) == 0) {
                chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
            } else if (nlen == 10 && strncasecmp(h, "Connection", 10) == 0) {
                if (vlen >= 5 && strncasecmp(v, "close", 5) == 0)
                    conn_close = true;
                if (vlen >= 10 && strncasecmp(v, "keep-alive", 10) == 0)
                    conn_keep = true;
            } else if (nlen == 6 && strncasecmp(h, "Expect", 6) == 0) {
                expect100 = vlen >= 12 && strncasecmp(v, "100-continue", 12) == 0;
            }
            h = e + 2;
        }
        char *body = NULL;
        size_t body_len = 0, total = hlen;
        if (chunked) {
            char *dec = NULL;
            long used = s_dechunk(data + hlen, c->in.len - hlen, srv->max_body, &dec, &body_len);
            if (used == ERR_TOOBIG) {
                s_error(c, 413, "the request body is too large");
                return;
            }
            if (used < 0) {
                s_error(c, 400, "malformed chunked body");
                return;
            }
            if (used == 0)
                goto need_more;
            free(c->body_copy);
            c->body_copy = dec;
            body = dec;
            total = hlen + (size_t)used;
        } else {
            if (c->in.len - hlen < clen)
                goto need_more;
            body = data + hlen;
            body_len = clen;
            total = hlen + clen;
        }
        /* Complete: now split the header block in place. */
        c->keep_alive = !conn_close && (minor >= 1 || conn_keep);
        httpd_req_t req;
        memset(&req, 0, sizeof(req));
        *sp1 = '\0';
        *sp2 = '\0';
        req.method = data;
        req.target = sp1 + 1;
        req.minor = minor;
        char *qm = strchr(sp1 + 1, '?');
        if (qm) {
            *qm = '\0';
            req.query = qm + 1;
        } else {
            req.query = "";
        }
        req.path = sp1 + 1;
        size_t nh = 0;
        h = line_end + 2;
        *line_end = '\0';
        while (h < hend && nh < HTTPD_MAX_HEADERS) {
            char *e = memmem(h, (size_t)(hend + 2 - h), "\r\n", 2);
            char *colon = memchr(h, ':', (size_t)(e - h));
            *colon = '\0';
            c->headers[nh].name = h;
            c->headers[nh].value = s_trim(colon + 1, e);
            nh++;
            h = e + 2;
        }
        req.headers = c->headers;
        req.nheaders = nh;
        req.body = body;
        req.body_len = body_len;
        if (!chunked && body_len > 0 && total < c->in.len) {
            /* Copy the body so it can be NUL-terminated without clobbering pipelined bytes. */
            free(c->body_copy);
            c->body_copy = malloc(body_len + 1);
            if (!c->body_copy) {
                httpd_conn_abort(c);
                return;
            }
            memcpy(c->body_copy, body, body_len);
            c->body_copy[body_len] = '\0';
            req.body = c->body_copy;
        } else if (!chunked && body_len == 0) {
            req.body = "";
        }
        /* Otherwise the body ends the buffer, whose NUL terminates it. */
        c->consumed = total;
        c->head = strcmp(req.method, "HEAD") == 0;
        c->state = ST_HANDLING;
        c->last_active = loop_now(srv->loop);
        /* Stop reading until the response starts: the request points into the buffer. */
        s_update_events(c);
        srv->handler(c, &req, srv->arg);
        continue;
    need_more:
        if (expect100 && !c->sent_continue) {
            c->sent_continue = true;
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            s_enqueue_copy(c, cont, sizeof(cont) - 1);
        }
        return;
    }
}

/* Reads from the socket or TLS: bytes, 0 at end of stream, or -1 with errno (EAGAIN). */
static ssize_t s_recv(httpd_conn_t *c, char *p, size_t n)
{
    if (!c->ssl)
        return recv(c->fd, p, n, 0);
    int r = SSL_read(c->ssl, p, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : EIO;
    return -1;
}

/* Advances the TLS handshake. Returns 0 (done or waiting) or -1 after closing. */
static int s_handshake(httpd_conn_t *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshaking = false;
        c->hs_want_write = false;
        c->client_verified =
            SSL_get0_peer_certificate(c->ssl) != NULL && SSL_get_verify_result(c->ssl) == X509_V_OK;
        s_update_events(c);
        return 0;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->hs_want_write = e == SSL_ERROR_WANT_WRITE;
        s_update_events(c);
        return 0;
    }
    httpd_conn_abort(c);
    return -1;
}

static int s_on_conn(loop_t *loop, int fd, int revents, void *arg)
{
    httpd_conn_t *c = arg;
    if (c->handshaking && (s_handshake(c) < 0 || c->handshaking))
        return 0;
    if (revents & LOOP_READ || revents & LOOP_ERROR || (c->ssl && SSL_pending(c->ssl) > 0)) {
        for (;;) {
            if (c->state == ST_HANDLING)
                break;
            char tmp[HTTPD_READ_SIZE];
            ssize_t r = s_recv(c, tmp, sizeof(tmp));
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                httpd_conn_abort(c);
                return 0;
            }
            if (r == 0) {
                httpd_conn_abort(c);
                return 0;
            }
            c->last_active = loop_now(loop);
            if (c->lingering) {
                if (c->last_active >= c->linger_until) {
                    httpd_conn_abort(c);
                    return 0;
                }
                continue; /* draining after an error reply; discard */
            }
            if (c->state == ST_STREAMING)
                continue; /* watch clients send nothing useful; discard */
            if (buf_append(&c->in, tmp, (size_t)r) < 0) {
                /* Past the bound: 431 while the header is still open, 413 for a body. */
                bool head_done = (c->in.len && memmem(c->in.data, c->in.len, "\r\n\r\n", 4)) ||
                                 memmem(tmp, (size_t)r, "\r\n\r\n", 4);
                if (head_done)
                    s_error(c, 413, "the request is too large");
                else
                    s_error(c, 431, "request header too large");
                return 0;
            }
            if ((size_t)r < sizeof(tmp) && !(c->ssl && SSL_pending(c->ssl) > 0))
                break;
        }
        if (!c->lingering)
            s_parse(c);
    }
    if (!c->closed && (revents & LOOP_WRITE))
        s_flush(c);
    return 0;
}

static int s_on_accept(loop_t *loop, int fd, int revents, void *arg)
{
    httpd_t *srv = arg;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("httpd: accept failed", "error", strerror(errno), NULL);
            break;
        }
        if (srv->nconns >= srv->lim.max_conns) {
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        httpd_conn_t *c = calloc(1, sizeof(*c));
        if (!c) {
            close(cfd);
            continue;
        }
        c->srv = srv;
        c->fd = cfd;
        c->state = ST_READING;
        c->keep_alive = true;
        c->last_active = loop_now(loop);
        buf_init(&c->in, srv->lim.max_header + srv->max_body + 64);
        if (srv->tls) {
            c->ssl = SSL_new(srv->tls);
            if (!c->ssl || SSL_set_fd(c->ssl, cfd) != 1) {
                SSL_free(c->ssl);
                close(cfd);
                free(c);
                continue;
            }
            SSL_set_accept_state(c->ssl);
            c->handshaking = true;
        }
        if (loop_add_fd(loop, cfd, LOOP_READ, s_on_conn, c) < 0) {
            close(cfd);
            free(c);
            continue;
        }
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        srv->nconns++;
    }
    return 0;
}

static int64_t s_flush_all(loop_t *loop, int64_t id, void *arg)
{
    httpd_t *srv = arg;
    srv->flush_timer = 0;
    /* Parse pipelined input and flush output; parsing may dirty connections again. */
    for (int round = 0; round < 4 && srv->dirty; round++) {
        httpd_conn_t *list = srv->dirty;
        srv->dirty = NULL;
        while (list) {
            httpd_conn_t *c = list;
            list = c->next_dirty;
            c->dirty = false;
            c->next_dirty = NULL;
            if (c->closed) {
                s_conn_free(c);
                continue;
            }
            if (c->state == ST_READING && c->in.len > 0)
                s_parse(c);
            if (!c->closed && c->ssl && c->state == ST_READING && SSL_pending(c->ssl) > 0)
                s_on_conn(loop, c->fd, LOOP_READ, c);
            if (!c->closed)
                s_flush(c);
            if (c->closed && !c->dirty)
                s_conn_free(c);
        }
    }
    while (srv->zombies) {
        httpd_conn_t *c = srv->zombies;
        srv->zombies = c->next_dirty;
        s_conn_free(c);
    }
    if (srv->dirty && !srv->flush_timer)
        s_arm(srv);
    return LOOP_TIMER_DONE;
}

static int64_t s_sweep(loop_t *loop, int64_t id, void *arg)
{
    httpd_t *srv = arg;
    int64_t now = loop_now(loop);
    for (httpd_conn_t *c = srv->conns, *n; c; c = n) {
        n = c->next;
        if (c->lingering
                ? now >= c->linger_until
                : c->state == ST_READING && c->qlen == 0 && now - c->last_active > srv->lim.idle_ms)
            httpd_conn_abort(c);
    }
    return srv->sweep_ms;
}

httpd_t *httpd_new(loop_t *loop, const char *host, int port, size_t max_body,
                   httpd_handler_fn *handler, void *arg)
{
    httpd_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        goto fail;
    srv->loop = loop;
    srv->lfd = -1;
    srv->max_body = max_body ? max_body : HTTPD_DEFAULT_MAX_BODY;
    srv->lim = (httpd_limits_t){HTTPD_MAX_HEADER, HTTPD_MAX_CONNS, HTTPD_IDLE_TIMEOUT_MS};
    srv->sweep_ms = HTTPD_SWEEP_MS;
    srv->handler = handler;
    srv->arg = arg;
    srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->lfd < 0)
        goto fail;
    int one = 1;
    setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &sa.sin_addr) != 1)
        goto fail;
    if (bind(srv->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(srv->lfd, HTTPD_LISTEN_BACKLOG) < 0) {
        log_error("httpd: cannot listen", "error", strerror(errno), NULL);
        goto fail;
    }
    socklen_t sl = sizeof(sa);
    getsockname(srv->lfd, (struct sockaddr *)&sa, &sl);
    srv->port = ntohs(sa.sin_port);
    if (loop_add_fd(loop, srv->lfd, LOOP_READ, s_on_accept, srv) < 0)
        goto fail;
    srv->sweep_timer = loop_add_timer(loop, HTTPD_SWEEP_MS, s_sweep, srv);
    return srv;
fail:
    if (srv && srv->lfd >= 0)
        close(srv->lfd);
    free(srv);
    return NULL;
}

void httpd_destroy(httpd_t **srv_p)
{
    if (!srv_p || !*srv_p)
        return;
    httpd_t *srv = *srv_p;
    while (srv->conns)
        httpd_conn_abort(srv->conns);
    /* Free everything on the dirty and zombie lists. */
    while (srv->dirty) {
        httpd_conn_t *c = srv->dirty;
        srv->dirty = c->next_dirty;
        if (c->closed)
            s_conn_free(c);
    }
    while (srv->zombies) {
        httpd_conn_t *c = srv->zombies;
        srv->zombies = c->next_dirty;
        s_conn_free(c);
    }
    loop_remove_fd(srv->loop, srv->lfd);
    close(srv->lfd);
    if (srv->sweep_timer > 0)
        loop_cancel_timer(srv->loop, srv->sweep_timer);
    if (srv->flush_timer > 0)
        loop_cancel_timer(srv->loop, srv->flush_timer);
    free(srv);
    *srv_p = NULL;
}

int httpd_set_limits(httpd_t *srv, const httpd_limits_t *limits)
{
    if (!srv || !limits || limits->idle_ms < 0)
        return ERR_INVAL;
    httpd_limits_t lim = *limits;
    lim.max_header = lim.max_header ? lim.max_header : HTTPD_MAX_HEADER;
    lim.max_conns = lim.max_conns ? lim.max_conns : HTTPD_MAX_CONNS;
    lim.idle_ms = lim.idle_ms ? lim.idle_ms : HTTPD_IDLE_TIMEOUT_MS;
    int64_t sweep = lim.idle_ms / 4 < HTTPD_SWEEP_MS ? lim.idle_ms / 4 : HTTPD_SWEEP_MS;
    sweep = sweep > 0 ? sweep : 1;
    if (sweep != srv->sweep_ms) {
        int64_t id = loop_add_timer(srv->loop, sweep, s_sweep, srv);
        if (id < 0)
            return (int)id;
        if (srv->sweep_timer > 0)
            loop_cancel_timer(srv->loop, srv->sweep_timer);
        srv->sweep_timer = id;
        srv->sweep_ms = sweep;
    }
    srv->lim = lim;
    return 0;
}

int httpd_set_tls(httpd_t *srv, SSL_CTX *ctx)
{
    srv->tls = ctx;
    return 0;
}

bool httpd_conn_is_tls(const httpd_conn_t *c)
{
    return c->ssl != NULL;
}

bool httpd_conn_client_verified(const httpd_conn_t *c)
{
    return c->client_verified;
}

int httpd_port(const httpd_t *srv)
{
    return srv->port;
}

size_t httpd_conn_count(const httpd_t *srv)
{
    return srv->nconns;
}

/* Test support (see httpd.h); outside RF_SELFTEST so the self-tests of other libraries (sim/)
 * can use it. */
int httpd_test_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test -------------------------------------------------------------------------- */

typedef struct {
    httpd_conn_t *stream; /* the streaming connection */
    httpd_conn_t *deferred; /* a connection waiting for its answer */
    int closes; /* on-close calls */
} t_state_t;

static void t_on_close(httpd_conn_t *c, void *arg)
{
    t_state_t *st = arg;
    st->closes++;
    if (st->stream == c)
        st->stream = NULL;
    if (st->deferred == c)
        st->deferred = NULL;
}

static void t_handler(httpd_conn_t *c, const httpd_req_t *req, void *arg)
{
    t_state_t *st = arg;
    char out[512];
    if (strcmp(req->path, "/stream") == 0) {
        httpd_stream_begin(c, 200, "application/json", NULL);
        httpd_conn_on_close(c, t_on_close, st);
        st->stream = c;
        return;
    }
    if (strcmp(req->path, "/defer") == 0) {
        httpd_conn_on_close(c, t_on_close, st);
        st->deferred = c;
        return;
    }
    char sel[64] = "";
    httpd_query_get(req->query, "sel", sel, sizeof(sel));
    const char *ua = httpd_req_header(req, "user-agent");
    int n =
        snprintf(out, sizeof(out), "%s %s sel=[%s] ua=%s len=%zu body=%s", req->method, req->path,
                 sel, ua ? ua : "-", req->body_len, req->body_len < 100 ? req->body : "(big)");
    httpd_respond(c, 200, "text/plain", "X-Test: 1\r\n", out, (size_t)n);
}

bool httpd_test_pump(loop_t *loop, int fd, const char *req, size_t reqlen, buf_t *got,
                     const char *want)
{
    size_t off = 0;
    int iters = want && strcmp(want, "never") == 0 ? 40 : 400;
    for (int i = 0; i < iters; i++) {
        if (req && off < reqlen) {
            ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
        }
        loop_run_once(loop, 5);
        char tmp[8192];
        ssize_t r;
        while ((r = recv(fd, tmp, sizeof(tmp), 0)) > 0)
            buf_append(got, tmp, (size_t)r);
        if (r == 0 && !want)
            return true;
        if (want && got->len && strstr(buf_str(got), want))
            return true;
    }
    return false;
}

int httpd_test(bool verbose)
{
    int failed = 0;
    signal(SIGPIPE, SIG_IGN);
    char out[64];
    CHECK(httpd_query_get("a=1&labelSelector=x%3Dy%2Cz+in+(a)&b", "labelSelector", out,
                          sizeof(out)) == 12);
    CHECK(strcmp(out, "x=y,z in (a)") == 0);
    CHECK(httpd_query_get("a=1&b", "b", out, sizeof(out)) == 0);
    CHECK(httpd_query_get("a=1", "c", out, sizeof(out)) == ERR_NOTFOUND);
    CHECK(httpd_query_get("a=%zz", "a", out, sizeof(out)) == ERR_INVAL);
    CHECK(httpd_query_get("a=%2", "a", out, sizeof(out)) == ERR_INVAL);
    CHECK(httpd_query_get("a=123456", "a", out, 4) == ERR_TOOBIG);
    CHECK(httpd_pct_decode("a%2Bb+", 6, out, sizeof(out)) == 4 && strcmp(out, "a+b+") == 0);
    CHECK(strcmp(httpd_status_text(415), "Unsupported Media Type") == 0);
    CHECK(strcmp(httpd_status_text(999), "Unknown") == 0);
    httpd_chunk_t *ch = httpd_chunk_framed("hello", 5);
    CHECK(ch && ch->len == 10 && memcmp(ch->data, "5\r\nhello\r\n", 10) == 0);
    httpd_chunk_unref(&ch);
    CHECK(ch == NULL);
    httpd_chunk_unref(&ch);

    loop_t *loop = loop_new();
    t_state_t st = {0};
    httpd_t *srv = httpd_new(loop, "127.0.0.1", 0, 1024, t_handler, &st);
    CHECK(srv != NULL);
    CHECK(httpd_new(loop, "127.0.0.1", httpd_port(srv), 0, t_handler, &st) == NULL);
    CHECK(httpd_new(loop, "not-an-ip", 0, 0, t_handler, &st) == NULL);
    int port = httpd_port(srv);
    CHECK(port > 0);

    /* Simple GET, then a pipelined pair with a body, on one keep-alive connection. */
    int fd = httpd_test_connect(port);
    buf_t got;
    buf_init(&got, 1 << 20);
    const char *r1 = "GET /x?sel=a%3Db HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n";
    CHECK(httpd_test_pump(loop, fd, r1, strlen(r1), &got, "body="));
    CHECK(strstr(buf_str(&got), "HTTP/1.1 200 OK\r\n") != NULL);
    CHECK(strstr(buf_str(&got), "GET /x sel=[a=b] ua=t len=0") != NULL);
    CHECK(strstr(buf_str(&got), "X-Test: 1\r\n") != NULL);
    CHECK(httpd_conn_count(srv) == 1);
    buf_reset(&got);
    const char *r2 = "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPUT /q HTTP/1.1\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n1\r\nz\r\n0\r\n\r\n";
    CHECK(httpd_test_pump(loop, fd, r2, strlen(r2), &got, "body=xyz"));
    CHECK(strstr(buf_str(&got), "POST /p sel=[] ua=- len=3 body=abc") != NULL);
    CHECK(strstr(buf_str(&got), "PUT /q sel=[] ua=- len=3 body=xyz") != NULL);
    /* Body too large: 413 and close. */
    buf_reset(&got);
    const char *r3 = "POST /p HTTP/1.1\r\nContent-Length: 5000\r\n\r\n";
    CHECK(httpd_test_pump(loop, fd, r3, strlen(r3), &got, NULL));
    CHECK(strstr(buf_str(&got), "413 Request Entity Too Large") != NULL);
    /* The reply ended in EOF (write side shut down), but the server still drains what the
     * client goes on sending instead of resetting the connection, until the client closes. */
    CHECK(httpd_conn_count(srv) == 1);
    char junk[4096];
    memset(junk, 'x', sizeof(junk));
    CHECK(send(fd, junk, sizeof(junk), MSG_NOSIGNAL) == (ssize_t)sizeof(junk));
    for (int i = 0; i < 20; i++)
        loop_run_once(loop, 5);
    CHECK(httpd_conn_count(srv) == 1);
    close(fd);
    for (int i = 0; i < 200 && httpd_conn_count(srv) > 0; i++)
        loop_run_once(loop, 5);
    CHECK(httpd_conn_count(srv) == 0);

    /* Malformed request line. */
    fd = httpd_test_connect(port);
    buf_reset(&got);
    CHECK(httpd_test_pump(loop, fd, "BAD\r\n\r\n", 7, &got, NULL));
    CHECK(strstr(buf_str(&got), "400 Bad Request") != NULL);
    close(fd);

    /* HTTP/1.0 closes after the response; Expect: 100-continue gets its interim answer. */
    fd = httpd_test_connect(port);
    buf_reset(&got);
    const char *r4 = "POST /c HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    CHECK(httpd_test_pump(loop, fd, r4, strlen(r4), &got, "100 Continue"));
    CHECK(httpd_test_pump(loop, fd, "ok", 2, &got, NULL));
    CHECK(strstr(buf_str(&got), "body=ok") != NULL);
    CHECK(strstr(buf_str(&got), "Connection: close") != NULL);
    close(fd);

    /* Streaming: two watchers share one chunk; end one, abort the other. */
    int w1 = httpd_test_connect(port), w2 = httpd_test_connect(port);
    buf_t g2;
    buf_init(&g2, 1 << 20);
    buf_reset(&got);
    const char *rs = "GET /stream HTTP/1.1\r\n\r\n";
    CHECK(httpd_test_pump(loop, w1, rs, strlen(rs), &got, "chunked\r\n\r\n"));
    httpd_conn_t *s1 = st.stream;
    CHECK(httpd_test_pump(loop, w2, rs, strlen(rs), &g2, "chunked\r\n\r\n"));
    httpd_conn_t *s2 = st.stream;
    CHECK(s1 && s2 && s1 != s2);
    ch = httpd_chunk_framed("{\"type\":\"ADDED\"}\n", 17);
    CHECK(httpd_stream_send(s1, ch) == 0);
    CHECK(httpd_stream_send(s2, ch) == 0);
    CHECK(ch->refs == 3);
    CHECK(httpd_respond(s1, 200, NULL, NULL, "", 0) == ERR_STATE);
    CHECK(httpd_test_pump(loop, w1, NULL, 0, &got, "ADDED"));
    CHECK(httpd_test_pump(loop, w2, NULL, 0, &g2, "ADDED"));
    CHECK(ch->refs == 1);
    httpd_chunk_unref(&ch);
    CHECK(httpd_stream_end(s1) == 0);
    CHECK(httpd_stream_end(s1) == ERR_STATE);
    CHECK(httpd_test_pump(loop, w1, NULL, 0, &got, "\r\n0\r\n\r\n"));
    /* The ended connection serves another request. */
    buf_reset(&got);
    CHECK(httpd_test_pump(loop, w1, "GET /again HTTP/1.1\r\n\r\n", 23, &got, "body="));
    int closes = st.closes;
    httpd_conn_abort(s2);
    CHECK(st.closes == closes + 1);
    CHECK(httpd_conn_closed(s2));
    CHECK(httpd_stream_send(s2, NULL) == ERR_CLOSED);
    CHECK(httpd_test_pump(loop, w2, NULL, 0, &g2, NULL));
    close(w1);
    close(w2);

    /* Deferred answer, and a peer that hangs up on a deferred request. */
    fd = httpd_test_connect(port);
    buf_reset(&got);
    CHECK(httpd_test_pump(loop, fd, "GET /defer HTTP/1.1\r\n\r\n", 23, &got, "never") == false);
    CHECK(st.deferred != NULL);
    if (st.deferred)
        CHECK(httpd_respond(st.deferred, 204, NULL, NULL, NULL, 0) == 0);
    CHECK(httpd_test_pump(loop, fd, NULL, 0, &got, "204 No Content"));
    CHECK(httpd_test_pump(loop, fd, "GET /defer HTTP/1.1\r\n\r\n", 23, &got, "never") == false);
    closes = st.closes;
    close(fd);
    for (int i = 0; i < 20; i++)
        loop_run_once(loop, 5);
    /* A handling connection does not read, so the hang-up shows as an error/hang-up event. */
    CHECK(st.closes == closes + 1 || st.deferred != NULL);
    if (st.deferred)
        httpd_conn_abort(st.deferred);
    for (int i = 0; i < 5; i++)
        loop_run_once(loop, 1);

    /* A connection left open is closed by destroy. */
    fd = httpd_test_connect(port);
    buf_reset(&got);
    CHECK(httpd_test_pump(loop, fd, "GET /stream HTTP/1.1\r\n\r\n", 24, &got, "chunked"));
    buf_free(&got);
    buf_free(&g2);
    closes = st.closes;
    httpd_destroy(&srv);
    CHECK(srv == NULL);
    CHECK(st.closes == closes + 1);
    httpd_destroy(&srv);
    close(fd);

    /* Per-server limits: a small header bound (431), two connections at most, idle close. */
    srv = httpd_new(loop, "127.0.0.1", 0, 16, t_handler, &st);
    CHECK(srv != NULL);
    CHECK(httpd_set_limits(srv, &(httpd_limits_t){.idle_ms = -1}) == ERR_INVAL);
    CHECK(httpd_set_limits(srv, &(httpd_limits_t){256, 2, 200}) == 0);
    port = httpd_port(srv);
    buf_init(&got, 1 << 16);
    fd = httpd_test_connect(port);
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /x HTTP/1.1\r\nX-Big: ", 25);
    CHECK(httpd_test_pump(loop, fd, big, sizeof(big), &got, NULL));
    CHECK(strstr(buf_str(&got), "431 Request Header Fields Too Large") != NULL);
    close(fd);
    for (int i = 0; i < 100 && httpd_conn_count(srv) > 0; i++)
        loop_run_once(loop, 5);
    CHECK(httpd_conn_count(srv) == 0);
    int c1 = httpd_test_connect(port), c2 = httpd_test_connect(port), c3 = httpd_test_connect(port);
    buf_reset(&got);
    CHECK(httpd_test_pump(loop, c3, NULL, 0, &got, NULL)); /* the third is closed at accept */
    CHECK(httpd_conn_count(srv) == 2);
    int64_t t0 = loop_clock_ms();
    for (int i = 0; i < 200 && httpd_conn_count(srv) > 0; i++)
        loop_run_once(loop, 10);
    CHECK(httpd_conn_count(srv) == 0); /* both idle ones closed by the sweep */
    CHECK(loop_clock_ms() - t0 >= 150);
    close(c1);
    close(c2);
    close(c3);
    buf_free(&got);
    httpd_destroy(&srv);
    loop_destroy(&loop);
    return SELFTEST_RESULT("httpd", verbose);
}

#endif /* RF_SELFTEST */
