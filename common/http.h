/*
 * http: a non-blocking HTTP/HTTPS client on the event loop (libcurl multi-socket API).
 *
 * One http_client_t per loop owns one curl multi handle. Its socket callback maps curl's sockets
 * onto loop_add_fd()/loop_set_fd_events()/loop_remove_fd() and its timer callback onto one loop
 * timer; every transfer advances through curl_multi_socket_action(), so nothing here ever blocks
 * the loop. Connections are kept alive and reused through the multi's connection cache (bounded
 * by max_total_connections and max_host_connections); HTTP/2 is negotiated over TLS when the
 * server offers it (CURL_HTTP_VERSION_2TLS) and transfers are then multiplexed on one connection.
 *
 * Two kinds of request:
 *   - buffered: the body is collected in a bounded buf_t and handed to on_done. A body that
 *     would pass max_body aborts the transfer with ERR_TOOBIG: it is never silently truncated.
 *   - streaming (on_data set; for Kubernetes watches): once the final status is 2xx, bytes go
 *     to on_data as they arrive (the caller splits lines). A non-2xx response (a watch refused
 *     with 410 or 429 and a Status body) is buffered as for a buffered request, so the error
 *     body reaches on_done. Streams usually run with timeout_ms = HTTP_NO_TIMEOUT and an
 *     idle_timeout_ms that aborts with ERR_TIMEOUT when no byte arrives for that long.
 *
 * Callbacks always run on the loop thread from inside loop_run()/loop_run_once(), never from
 * inside http_request(). on_done runs exactly once per request, unless the request is cancelled
 * with http_cancel() or the client is destroyed: then no callback of that request runs again.
 * Any callback may call http_request() and http_cancel() (any request, including its own); none
 * may call http_client_destroy().
 *
 * TLS: verification is on by default. The CA may come from a file or from PEM in memory, and so
 * may the client certificate and key (kubeconfig *-data fields, after base64 decoding). With a
 * CA given, only that CA is trusted (the system store is not added), as kubectl does.
 * insecure_skip_verify turns verification off, is only ever explicit, and is logged with
 * log_warn each time a client (or a request override) uses it. Secrets (keys, tokens in
 * headers) are never logged. Bearer tokens are the caller's business: pass an "Authorization"
 * header. Not supported yet: kubeconfig tls-server-name (would need CURLOPT_CONNECT_TO).
 *
 * Process-global setup is not done here: main() calls curl_global_init(CURL_GLOBAL_DEFAULT)
 * once, before any thread starts, and curl_global_cleanup() at exit.
 */
#ifndef RF_HTTP_H
#define RF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"

/* Defaults used when a field of http_config_t or http_request_t is 0, and fixed bounds. */
#define HTTP_DEFAULT_TIMEOUT_MS 30000 /* whole transfer */
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000 /* TCP + TLS handshake */
#define HTTP_DEFAULT_MAX_BODY (16u * 1024 * 1024) /* bytes of a buffered body */
#define HTTP_DEFAULT_MAX_TOTAL_CONNECTIONS 64 /* open connections per client */
#define HTTP_DEFAULT_MAX_HOST_CONNECTIONS 8 /* open connections per host:port */
#define HTTP_NO_TIMEOUT (-1) /* timeout_ms value: no overall deadline */
#define HTTP_MAX_HEADERS 128 /* response header lines kept; more is ERR_TOOBIG */
#define HTTP_MAX_HEADER_BYTES (64 * 1024) /* bytes of response headers kept; more: ERR_TOOBIG */
#define HTTP_TCP_KEEPALIVE_S 30 /* TCP keep-alive idle time and probe interval, seconds */
#define HTTP_MAX_TLS_BLOB (1024 * 1024) /* largest PEM blob accepted in http_tls_t */

/* TLS settings. Strings and blobs are borrowed by the function they are passed
 * to and copied there; a field left NULL/0 is unset. A *_file and a *_data for
 * the same item: data wins. */
typedef struct {
    const char *ca_file; /* PEM CA bundle to verify the server, or NULL: the system's */
    const void *ca_data; /* PEM CA bundle in memory (CURLOPT_CAINFO_BLOB), or NULL */
    size_t ca_data_len; /* bytes at ca_data */
    const char *cert_file; /* PEM client certificate file, or NULL */
    const void *cert_data; /* PEM client certificate in memory, or NULL */
    size_t cert_data_len; /* bytes at cert_data */
    const char *key_file; /* PEM client private key file, or NULL */
    const void *key_data; /* PEM client private key in memory (secret), or NULL */
    size_t key_data_len; /* bytes at key_data */
    bool insecure_skip_verify; /* true: do not verify the server (logged loudly) */
} http_tls_t;

/* Client settings; every field may be left 0/NULL for its default. */
typedef struct {
    http_tls_t tls; /* the TLS settings of every request without its own */
    long max_total_connections; /* 0: HTTP_DEFAULT_MAX_TOTAL_CONNECTIONS */
    long max_host_connections; /* 0: HTTP_DEFAULT_MAX_HOST_CONNECTIONS */
    const char *user_agent; /* User-Agent header, or NULL for none (copied) */
    const char *proxy_url; /* proxy for every request, or NULL (curl then reads the
                            * http_proxy/https_proxy/no_proxy environment) (copied) */
    bool accept_compressed; /* true: send Accept-Encoding and decompress (gzip, ...) */
} http_config_t;

typedef struct http_client http_client_t;

/* One header: a request header to send, or a response header received. */
typedef struct {
    const char *name; /* header name, without the colon */
    const char *value; /* header value, without surrounding blanks ("" when empty) */
} http_header_t;

/* The outcome of a request, owned by the module and valid only during the
 * callback. */
typedef struct {
    int64_t id; /* the id http_request() returned */
    int err; /* 0 when an HTTP response was received, whatever its status;
              * else ERR_TIMEOUT, ERR_CONNREFUSED (also DNS failure), ERR_TLS, ERR_TOOBIG,
              * ERR_NOMEM, ERR_INVAL (bad URL), ERR_HTTP, or the value
              * on_data/on_headers returned */
    long status; /* HTTP status, 0 when none was received (it may be set with
                  * err != 0: a stream cut mid-body keeps its status) */
    const http_header_t *headers; /* all response headers in arrival order (final response) */
    size_t n_headers; /* entries in headers */
    buf_t body; /* the buffered body (empty for a 2xx streaming response); the
                 * callback may keep the bytes with buf_take(&resp->body, ...) */
    const char *error_text; /* curl's message for err != 0, "" otherwise; never NULL */
    int64_t total_us; /* time from start to end of the transfer, microseconds */
    long num_connects; /* new connections this transfer opened (0: one was reused) */
    long http_version; /* 10, 11, 20 (HTTP/1.0, 1.1, 2), 0 when unknown */
} http_response_t;

/* Called once when a request ends (never after http_cancel() or client destroy). */
typedef void(http_done_fn)(http_client_t *client, http_response_t *resp, void *arg);

/* Streaming: called with each piece of a 2xx body as it arrives. Return 0 to go
 * on, or a negative err_t to abort the transfer: on_done then runs with that
 * err. */
typedef int(http_data_fn)(http_client_t *client, int64_t id, const void *data, size_t len,
                          void *arg);

/* Optional: called once when the final response's status and headers are known,
 * before the first on_data and before on_done (resp->body is empty, resp->err
 * 0). Return 0 to go on, or a negative err_t to abort the transfer (on_done
 * then runs with that err). */
typedef int(http_headers_fn)(http_client_t *client, const http_response_t *resp, void *arg);

/* One request. All pointers are borrowed for the duration of http_request()
 * only, except the body when body_borrowed is true. */
typedef struct {
    const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"; NULL: GET */
    const char *url; /* absolute http:// or https:// URL (required) */
    const http_header_t *headers; /* request headers (no CR or LF allowed), or NULL */
    size_t n_headers; /* entries in headers */
    const void *body; /* request body, or NULL for none */
    size_t body_len; /* bytes at body */
    bool body_borrowed; /* false: the body is copied by http_request(); true: the
                         * caller keeps it valid and unchanged until on_done runs,
                         * the request is cancelled or the client destroyed */
    int64_t timeout_ms; /* whole-transfer deadline; 0: HTTP_DEFAULT_TIMEOUT_MS;
                         * HTTP_NO_TIMEOUT: none (watches) */
    int64_t connect_timeout_ms; /* connect + TLS handshake; 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    int64_t idle_timeout_ms; /* abort with ERR_TIMEOUT when no byte (header or body)
                              * arrives for this long; 0: no idle limit */
    size_t max_body; /* largest buffered body; 0: HTTP_DEFAULT_MAX_BODY */
    const http_tls_t *tls; /* TLS for this request instead of the client's, or NULL */
    http_done_fn *on_done; /* required */
    http_data_fn *on_data; /* NULL: buffered request; set: streaming request */
    http_headers_fn *on_headers; /* optional, see http_headers_fn */
    void *arg; /* passed to the callbacks */
} http_request_t;

/* Counters of one client, for tests and metrics. */
typedef struct {
    uint64_t started; /* requests accepted by http_request() */
    uint64_t completed; /* requests whose on_done ran (any err) */
    uint64_t failed; /* of those, the ones with err != 0 */
    uint64_t cancelled; /* requests ended by http_cancel() */
    uint64_t connects; /* new connections opened (sum of num_connects) */
    size_t in_flight; /* requests started and not yet ended */
} http_stats_t;

/* A new client on `loop` (which must outlive it), with `config` copied (NULL:
 * all defaults). Does not call curl_global_init(). Returns NULL when out of
 * memory, when curl cannot create a multi handle, or when a TLS blob is larger
 * than HTTP_MAX_TLS_BLOB. Logs a warning when config->tls.insecure_skip_verify
 * is set. */
http_client_t *http_client_new(loop_t *loop, const http_config_t *config);

/* Aborts every request in flight WITHOUT running any of their callbacks, closes
 * all connections, wipes the copied key material, frees the client and sets
 * *client_p to NULL. NULL-safe. Must not be called from inside one of this
 * client's callbacks. */
void http_client_destroy(http_client_t **client_p);

/* Starts a request. Returns its id (> 0), or ERR_INVAL (no URL, no on_done, a
 * header with CR/LF, an unknown method), ERR_NOMEM, or ERR_HTTP (curl refused
 * the handle). On error no callback runs. The callbacks run later, from the
 * loop. */
int64_t http_request(http_client_t *client, const http_request_t *req);

/* Cancels request `id`: the transfer is aborted and none of its callbacks runs
 * again (on_done does not run). Safe from inside any callback, including the
 * request's own. Returns 0, or ERR_NOTFOUND when there is no such request in
 * flight (done, cancelled, or never started). */
int http_cancel(http_client_t *client, int64_t id);

/* The value of the first response header named `name` (case-insensitive), or
 * NULL. */
const char *http_header_get(const http_response_t *resp, const char *name);

/* The Retry-After header in milliseconds when it holds delta-seconds (as
 * Kubernetes sends), or -1 when absent or not a plain non-negative number (an
 * HTTP date is not parsed). */
int64_t http_retry_after_ms(const http_response_t *resp);

/* One response header line as libcurl hands it to the client (CRLF included or not). */
typedef struct {
    size_t name_len; /* the name is data[0, name_len) */
    size_t value_off; /* the value (blanks around it trimmed) is data[value_off, +value_len) */
    size_t value_len;
} http_header_span_t;
enum { HTTP_LINE_IGNORED = 0, HTTP_LINE_HEADER = 1, HTTP_LINE_STATUS = 2 };

/* Classifies the header line data[n] (*out zeroed unless a header): HTTP_LINE_STATUS for a
 * status line ("HTTP/..." starts a new response, after a 1xx), HTTP_LINE_IGNORED for the blank
 * line ending a block, a line without a colon or an obsolete folded line, HTTP_LINE_HEADER with
 * the spans of "name: value" (name not empty, never read past n), or ERR_PROTO for a header line
 * holding a NUL byte. */
int http_header_line(const char *data, size_t n, http_header_span_t *out);

/* Fills *out with the client's counters. */
void http_client_stats(const http_client_t *client, http_stats_t *out);

/* Self-test: a libmicrohttpd server in-process on 127.0.0.1 (HTTP and HTTPS). */
int http_test(bool verbose);

#endif
