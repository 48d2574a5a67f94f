/*
 * httpd: the HTTP/1.1 server of rayfleet, single-threaded on common/loop. Written for kubesim
 * (its API server's watch fan-out is the hard case), and used by common/opsrv for every
 * service's /healthz, /readyz and /metrics. One server, two users: per-server limits
 * (httpd_set_limits) let the small ops endpoint keep tight bounds while kubesim keeps its own.
 *
 * Why not libmicrohttpd: kubesim's hot path is watch fan-out, one event serialized once and
 * queued to thousands of streaming connections. Here every queued segment is a reference-counted
 * chunk (httpd_chunk_t) already framed in chunked transfer encoding, so fan-out costs one
 * reference per watcher and the bytes are written with writev() from the shared copy. With
 * MHD in external-select mode a streaming response needs a content-reader callback that copies
 * into MHD's buffer per connection, and idle streams must be suspended/resumed to avoid MHD
 * polling the callback in a busy loop. Owning the socket code also keeps keep-alive, request
 * bounds and abrupt drops (fault injection) under our control.
 *
 * Protocol subset: request line + headers (at most HTTPD_MAX_HEADER bytes), bodies with
 * Content-Length or chunked transfer encoding (at most the configured body bound, else 413),
 * `Expect: 100-continue`, keep-alive (HTTP/1.1 default, HTTP/1.0 closes), pipelining (requests
 * are answered in order; the next is parsed once the previous response is complete). Responses
 * are either complete (Content-Length) or streamed (Transfer-Encoding: chunked).
 *
 * Request lifetime: the handler gets an httpd_req_t whose pointers stay valid until the handler
 * starts its response (httpd_respond() or httpd_stream_begin()). A handler may answer later (for
 * injected latency): the connection then stops reading until the answer is given, and any
 * on-close callback is called if the peer goes away first.
 *
 * TLS (httpd_set_tls): OpenSSL on the same non-blocking sockets; the handshake runs inside
 * the connection's read/write events and the I/O calls become SSL_read/SSL_write.
 *
 * Output is queued and written in a before-sleep hook (one writev batch per connection per loop
 * iteration); a connection whose unsent output passes HTTPD_MAX_QUEUED is closed, as
 * kube-apiserver drops watchers that cannot keep up.
 */
#ifndef RF_HTTPD_H
#define RF_HTTPD_H

#include "buf.h"
#include "loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPD_MAX_HEADER (64 * 1024) /* request line + headers */
#define HTTPD_MAX_HEADERS 100 /* header fields per request */
#define HTTPD_DEFAULT_MAX_BODY (3 * 1024 * 1024) /* kube-apiserver's request body limit */
#define HTTPD_MAX_QUEUED ((size_t)256 << 20) /* unsent bytes per connection before drop */
#define HTTPD_IDLE_TIMEOUT_MS (300 * 1000) /* idle keep-alive connections are closed */
#define HTTPD_MAX_CONNS 20000 /* accepted connections at once */
#define HTTPD_SWEEP_MS 10000 /* idle sweep period (shorter when the idle timeout is shorter) */

/* OpenSSL's context type, declared here so this header does not pull in OpenSSL (whose err.h
 * defines an ERR_STATE type that collides with common/err.h). */
struct ssl_ctx_st;
typedef struct ssl_ctx_st SSL_CTX;

typedef struct httpd httpd_t;
typedef struct httpd_conn httpd_conn_t;

/* One header field (pointers into the request buffer). */
typedef struct {
    const char *name; /* field name as sent */
    const char *value; /* value, surrounding blanks removed */
} httpd_header_t;

/* A parsed request. Valid until the response starts. */
typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *target; /* raw request target, e.g. "/api/v1/pods?watch=1" */
    const char *path; /* target before '?', still percent-encoded */
    const char *query; /* text after '?', or "" */
    int minor; /* HTTP/1.<minor> */
    httpd_header_t *headers; /* the header fields */
    size_t nheaders; /* number of header fields */
    const char *body; /* body bytes (NUL-terminated), "" when none */
    size_t body_len; /* body length */
} httpd_req_t;

/* A reference-counted byte chunk that may sit in many connections' output queues. */
typedef struct httpd_chunk {
    int refs; /* references held (queues plus the creator) */
    size_t len; /* bytes in data */
    char data[]; /* the bytes, NUL-terminated */
} httpd_chunk_t;

/* Called for each complete request. It must eventually answer through httpd_respond() or
 * httpd_stream_begin() on `c` (now or later), unless the connection closes first. */
typedef void(httpd_handler_fn)(httpd_conn_t *c, const httpd_req_t *req, void *arg);
/* Called once when a connection that has an on-close callback closes, before it is freed. */
typedef void(httpd_close_fn)(httpd_conn_t *c, void *arg);

/* Listens on host:port (port 0 = ephemeral) and serves requests with `handler` on `loop`.
 * `max_body` bounds request bodies (0 = HTTPD_DEFAULT_MAX_BODY). Returns NULL on failure
 * (bind error or out of memory; logged). */
httpd_t *httpd_new(loop_t *loop, const char *host, int port, size_t max_body,
                   httpd_handler_fn *handler, void *arg);

/* Per-server bounds; a zero field keeps the default shown. */
typedef struct {
    size_t max_header; /* request line + headers bound, else 431 (HTTPD_MAX_HEADER) */
    size_t max_conns; /* connections at once; more are closed at accept (HTTPD_MAX_CONNS) */
    int64_t idle_ms; /* an idle connection (no request pending) is closed (HTTPD_IDLE_TIMEOUT_MS) */
} httpd_limits_t;

/* Replaces the server's limits (connections open now keep their input bound). The idle sweep
 * then runs every min(HTTPD_SWEEP_MS, idle_ms / 4) ms. Returns 0, ERR_INVAL or ERR_NOMEM. */
int httpd_set_limits(httpd_t *srv, const httpd_limits_t *limits);

/* Makes every connection accepted from now on speak TLS with `ctx` (borrowed; must outlive the
 * server). Returns 0. */
int httpd_set_tls(httpd_t *srv, SSL_CTX *ctx);

/* True when the connection speaks TLS. */
bool httpd_conn_is_tls(const httpd_conn_t *c);

/* True when the TLS peer presented a client certificate that verified against the context's
 * trust store. */
bool httpd_conn_client_verified(const httpd_conn_t *c);

/* Closes every connection (calling on-close callbacks) and the listener, frees the server and
 * NULLs *srv_p. NULL-safe. */
void httpd_destroy(httpd_t **srv_p);

/* The bound TCP port. */
int httpd_port(const httpd_t *srv);

/* Number of open connections. */
size_t httpd_conn_count(const httpd_t *srv);

/* Sends a complete response: status line, Content-Type (if not NULL), Content-Length,
 * `extra_headers` (NULL or complete "Name: value\r\n" lines) and a copy of the body (none for a
 * HEAD request, whose Content-Length still tells the body's length). Ends the current request.
 * Returns 0, ERR_STATE if a response was started already, or ERR_NOMEM. */
int httpd_respond(httpd_conn_t *c, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t len);

/* Starts a streamed (chunked) response. Returns 0, ERR_STATE or ERR_NOMEM. */
int httpd_stream_begin(httpd_conn_t *c, int status, const char *content_type,
                       const char *extra_headers);

/* Queues a chunk made by httpd_chunk_framed() on a streaming connection, taking a new reference
 * (the caller keeps its own). Returns 0, ERR_STATE when not streaming, or ERR_TOOBIG when the
 * queue bound is passed (the connection is then closed). */
int httpd_stream_send(httpd_conn_t *c, httpd_chunk_t *chunk);

/* Ends a streamed response with the terminating zero-length chunk; the connection may then
 * serve its next request. Returns 0 or ERR_STATE. */
int httpd_stream_end(httpd_conn_t *c);

/* Writes the connection's queued output now, as far as the socket takes it, instead of at the
 * end of the loop turn (what is left, and closing after a last response, stay with the turn's
 * flush). Lets a server that answers many requests in one turn send each answer as it is made.
 * Returns 0 (also when the connection was closed after a last response, as asked), ERR_CLOSED
 * when it was closed already, or ERR_IO (it failed and was closed). */
int httpd_conn_flush(httpd_conn_t *c);

/* Closes the connection now (pending output is dropped); on-close runs. Safe at any time,
 * including from the handler; the memory is freed later in the loop. */
void httpd_conn_abort(httpd_conn_t *c);

/* Registers the on-close callback (NULL to clear). */
void httpd_conn_on_close(httpd_conn_t *c, httpd_close_fn *fn, void *arg);

/* True once the connection has closed (it stays allocated until the loop frees it). */
bool httpd_conn_closed(const httpd_conn_t *c);

/* A new chunk holding `len` bytes framed for chunked transfer encoding ("<hex>\r\n" bytes
 * "\r\n"), with one reference; NULL when out of memory. */
httpd_chunk_t *httpd_chunk_framed(const void *data, size_t len);

/* A new chunk holding exactly `len` bytes, with one reference; NULL when out of memory. */
httpd_chunk_t *httpd_chunk_raw(const void *data, size_t len);

/* Drops one reference and frees the chunk at zero; NULLs *chunk_p. NULL-safe. */
void httpd_chunk_unref(httpd_chunk_t **chunk_p);

/* The value of header `name` (case-insensitive), or NULL. */
const char *httpd_req_header(const httpd_req_t *req, const char *name);

/* Finds query parameter `name` in `query` and writes its decoded value (percent-escapes and
 * '+' decoded, NUL-terminated) into out[outsz]. Returns the value length, ERR_NOTFOUND when
 * absent, or ERR_TOOBIG when it does not fit. */
int httpd_query_get(const char *query, const char *name, char *out, size_t outsz);

/* Percent-decodes `in` (n bytes) into out[outsz] (NUL-terminated; '+' is kept). Returns the
 * length or ERR_TOOBIG / ERR_INVAL (bad escape or an encoded NUL). */
int httpd_pct_decode(const char *in, size_t n, char *out, size_t outsz);

/* The reason phrase for an HTTP status ("OK", "Not Found", ...). Never NULL. */
const char *httpd_status_text(int status);

/* Test support (self-tests and integration tests): a non-blocking TCP connection to
 * 127.0.0.1:port, or -1. */
int httpd_test_connect(int port);

/* Test support: sends req[reqlen] (req may be NULL) on fd while running `loop`, appending what
 * arrives to `got`, until `want` shows up in it (or, when want is NULL, the peer closes), for at
 * most about 2 s (200 ms when want is "never"). Returns true when it did. */
bool httpd_test_pump(loop_t *loop, int fd, const char *req, size_t reqlen, buf_t *got,
                     const char *want);

/* Self-test. */
int httpd_test(bool verbose);

#endif
