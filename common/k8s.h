/*
 * k8s: an asynchronous Kubernetes API client on the event loop, over common/http (curl multi).
 *
 * One k8s_client_t talks to one API server described by a kubeconfig_t. Every call starts a
 * request and returns at once with its id; the result reaches a callback from the loop. The
 * verbs map to HTTP as in ../shared/spec/k8s-api-semantics.md §1.2: get/list/watch (GET),
 * create (POST), update (PUT), patch (PATCH with the media type of k8s_patch_type_t), delete
 * (DELETE with a DeleteOptions body). Status subresource: set k8s_res_t.subresource = "status".
 *
 * Errors. A non-2xx answer carries a Status body (§6); it is decoded into k8s_result_t: err from
 * the HTTP status (404 ERR_NOTFOUND, 409 ERR_CONFLICT or ERR_EXISTS for reason AlreadyExists,
 * 410 ERR_GONE, 400/422 ERR_INVAL, 401 ERR_UNAUTHORIZED, 403 ERR_FORBIDDEN, 429 ERR_THROTTLED,
 * 5xx ERR_SERVER, 504 ERR_TIMEOUT), plus the Status reason and message.
 *
 * Retries (never for a watch whose stream has started): up to max_retries times with exponential
 * backoff and jitter (delay = random in [d/2, d], d = base * 2^attempt capped at max), or after
 * Retry-After (header, else Status details.retryAfterSeconds) when the server gives one:
 *   - 429 TooManyRequests: any verb (the server did not process the request);
 *   - 5xx and transport errors: idempotent requests only: GET (get, list, watch set-up), PUT
 *     whose body carries metadata.resourceVersion, DELETE with preconditions, server-side apply;
 *   - connection refused: any verb (nothing was sent).
 * 401 Unauthorized with a refreshable credential (token file or exec plugin): the credential is
 * reloaded and the request retried once.
 *
 * Rate limit: a token bucket (qps, burst) in front of every attempt (retries included). Requests
 * beyond the bucket wait in a bounded FIFO queue (max_queue, else ERR_BUSY) served by a loop
 * timer; nothing blocks the loop. The same FIFO holds requests while max_inflight non-watch
 * requests are in flight (4 per connection by default), so what the connections cannot carry yet
 * waits here, in order, and not as curl handles; a watch needs no slot and passes them.
 *
 * Credentials: a static token; a token file, re-read when its mtime or size changes (checked at
 * most every K8S_TOKEN_CHECK_MS, and on 401; the read is a small local file, the one bounded
 * blocking call here); client certificates through http's TLS; an exec plugin (kubeconfig.h),
 * run asynchronously when no credential is cached or it expires within K8S_EXEC_EXPIRY_SLACK_S,
 * with requests held meanwhile. Tokens are never logged.
 *
 * Projections (k8s_opts_t.keep): a consumer that needs a few fields of big objects (a cache)
 * asks for them; 2xx bodies and watch events are then scanned once by jproj, which validates the
 * whole text but builds only the kept paths, and the raw text of each object stays available
 * (k8s_result_t.raw and .items, k8s_event_raw()) for storing it without serializing a tree.
 *
 * Watches: the body is split on newlines (kube-apiserver's JSON encoder and kubesim end each
 * WatchEvent with one; a server sending concatenated JSON without newlines is not supported); each
 * line, at most max_event bytes (else the watch ends with ERR_TOOBIG), is decoded into type and
 * object and handed to the event callback. An ERROR event is delivered as type "ERROR" with its
 * Status object; the server then ends the stream. A normal end runs on_done with err 0.
 *
 * Raw requests (k8s_raw): any path on the API server (the service proxy to a Pod's or Service's
 * HTTP port, /version, ...) with any body and content type, on the same auth, TLS, rate limit and
 * in-flight FIFO. The answer is handed over whatever its media type: res->status and res->raw
 * always; res->body only when the text is JSON (a non-JSON 2xx is not an error here); err from
 * the status as above. Retries follow the rules above with the method deciding idempotence (GET
 * and HEAD only: a POST, PUT, PATCH or DELETE through a proxy is never retried on 5xx or a
 * transport error), and k8s_raw_opts_t.max_retries can turn them off.
 *
 * Callbacks run on the loop thread, never from inside the call that started the request. Any
 * callback may start or cancel requests; none may destroy the client.
 */
#ifndef RF_K8S_H
#define RF_K8S_H

#include "buf.h"
#include "http.h"
#include "jproj.h"
#include "kubeconfig.h"
#include "loop.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define K8S_DEFAULT_QPS 20.0 /* requests per second (controller-runtime's default) */
#define K8S_DEFAULT_BURST 30 /* token bucket size */
#define K8S_DEFAULT_MAX_RETRIES 5 /* retries after the first attempt */
#define K8S_DEFAULT_BACKOFF_BASE_MS 100 /* first retry delay */
#define K8S_DEFAULT_BACKOFF_MAX_MS 10000 /* largest retry delay */
#define K8S_MAX_RETRY_AFTER_MS 60000 /* a Retry-After longer than this is capped */
#define K8S_DEFAULT_MAX_EVENT (16u * 1024 * 1024) /* largest watch event line */
#define K8S_DEFAULT_MAX_QUEUE 100000 /* requests waiting for the rate limiter */
#define K8S_INFLIGHT_PER_CONNECTION 4 /* default non-watch requests in flight per connection */
#define K8S_TOKEN_CHECK_MS 1000 /* token file stat() at most this often */
#define K8S_TOKEN_MAX_AGE_MS 60000 /* token file re-read at least this often */
#define K8S_EXEC_EXPIRY_SLACK_S 10 /* an exec credential this close to expiry is renewed */
#define K8S_WATCH_IDLE_SLACK_S 90 /* watch idle timeout = timeoutSeconds + this */
#define K8S_WATCH_DEFAULT_IDLE_S 300 /* watch idle timeout without timeoutSeconds */
#define K8S_MAX_URL 8192 /* longest request URL */
#define K8S_RAW_MAX_HEADERS 8 /* extra request headers of one k8s_raw() call */

typedef struct k8s_client k8s_client_t;

/* Client settings; 0 fields take the defaults above. */
typedef struct {
    double qps; /* token bucket rate; 0: K8S_DEFAULT_QPS; < 0: no client-side limit */
    int burst; /* token bucket size; 0: K8S_DEFAULT_BURST */
    int max_retries; /* 0: K8S_DEFAULT_MAX_RETRIES; < 0: never retry */
    int64_t backoff_base_ms; /* 0: K8S_DEFAULT_BACKOFF_BASE_MS */
    int64_t backoff_max_ms; /* 0: K8S_DEFAULT_BACKOFF_MAX_MS */
    int64_t timeout_ms; /* per attempt of a non-watch request; 0: HTTP_DEFAULT_TIMEOUT_MS */
    size_t max_body; /* largest response body; 0: HTTP_DEFAULT_MAX_BODY */
    size_t max_event; /* largest watch event; 0: K8S_DEFAULT_MAX_EVENT */
    size_t max_queue; /* rate-limiter queue bound; 0: K8S_DEFAULT_MAX_QUEUE */
    int max_inflight; /* non-watch requests handed to the transport at once (more wait in the
                       * rate-limiter FIFO, in order); 0: K8S_INFLIGHT_PER_CONNECTION times
                       * the connections */
    long max_connections; /* connections per API server; 0: HTTP_DEFAULT_MAX_HOST_CONNECTIONS */
    const char *user_agent; /* NULL: "rayfleet/<version>" (copied) */
} k8s_config_t;

/* A resource path: /api/v1 or /apis/<group>/<version>, [/namespaces/<ns>], /<resource>,
 * [/<name>[/<subresource>]]. Strings borrowed for the call; each segment is URL-escaped. */
typedef struct {
    const char *group; /* API group; NULL or "" for the core group */
    const char *version; /* "v1", ... (required) */
    const char *resource; /* plural resource ("pods", "rayclusters") (required) */
    const char *namespace_; /* namespace; NULL: cluster-scoped or all namespaces */
    const char *name; /* object name, or NULL for the collection */
    const char *subresource; /* "status", "scale", ... or NULL (needs name) */
} k8s_res_t;

/* Request options; zero = none. Strings borrowed for the call. */
typedef struct {
    const char *label_selector; /* labelSelector */
    const char *field_selector; /* fieldSelector */
    const char *resource_version; /* resourceVersion */
    const char *resource_version_match; /* resourceVersionMatch (NotOlderThan, Exact) */
    const char *continue_token; /* continue */
    int64_t limit; /* limit (> 0) */
    bool allow_bookmarks; /* allowWatchBookmarks=true (watch) */
    int64_t timeout_seconds; /* timeoutSeconds (watch, > 0) */
    const char *field_manager; /* fieldManager (required by apply) */
    bool force; /* force=true (apply) */
    bool dry_run; /* dryRun=All */
    const char *propagation_policy; /* delete: Foreground, Background, Orphan */
    bool has_grace_period; /* delete: gracePeriodSeconds is set */
    int64_t grace_period_seconds; /* delete: its value */
    const char *precondition_uid; /* delete: preconditions.uid */
    const char *precondition_rv; /* delete: preconditions.resourceVersion */
    bool urgent; /* waits in the FIFO's urgent lane: ahead of every request that is not urgent,
                  * FIFO among the urgent ones (e.g. the write that ends a job's run) */
    const char *const
        *keep; /* NULL: decode 2xx bodies fully; else a NULL-terminated list of
                * dotted paths (jproj.h) of the OBJECT to keep: a 2xx body (the object;
                * for k8s_list each of "items", plus the list's kind, apiVersion and
                * metadata) and each watch event's object are projected to these
                * paths and kind/apiVersion (the text is still fully validated);
                * non-2xx Status bodies and ERROR events stay complete. Copied. */
} k8s_opts_t;

/* Options of k8s_raw(); zero = the client's settings. Borrowed for the call (copied). */
typedef struct {
    int64_t timeout_ms; /* per attempt; 0: k8s_config_t.timeout_ms */
    size_t max_body; /* largest response body; 0: k8s_config_t.max_body */
    int max_retries; /* 0: k8s_config_t.max_retries; < 0: one attempt only */
    const http_header_t *headers; /* extra request headers (at most K8S_RAW_MAX_HEADERS; no CR,
                                   * LF or other control bytes), or NULL; their values are wiped
                                   * from memory when the request ends (they may hold tokens) */
    size_t n_headers; /* entries in headers */
    bool urgent; /* as k8s_opts_t.urgent */
} k8s_raw_opts_t;

/* PATCH media types. */
typedef enum {
    K8S_PATCH_MERGE, /* application/merge-patch+json (RFC 7386) */
    K8S_PATCH_JSON, /* application/json-patch+json (RFC 6902) */
    K8S_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in types only) */
    K8S_PATCH_APPLY /* application/apply-patch+yaml (server-side apply; needs field_manager) */
} k8s_patch_type_t;

/* The outcome of one request, valid only during the callback. */
typedef struct {
    int64_t id; /* the id the call returned */
    int err; /* 0 on 2xx; else as described in the file comment, or a transport err_t */
    long status; /* HTTP status of the last attempt (0 when none was received) */
    const char *reason; /* Status reason ("Conflict", "NotFound", ...), "" when none; never NULL */
    const char *message; /* Status message or transport error text, "" when none; never NULL */
    json_t *body; /* the decoded response (object or Status), or NULL (empty / not JSON). Borrowed:
                   * freed after the callback returns; json_incref() it to keep it */
    int attempts; /* attempts made (1 + retries) */
    const char *raw; /* the response body text as received (not NUL-terminated), or NULL when
                      * there was none; borrowed like body */
    size_t raw_len; /* bytes at raw */
    const jproj_span_t
        *items; /* k8s_list with opts.keep, 2xx: where each element of "items"
                 * lies in raw (items[i] is the text of body's items[i]); else NULL */
    size_t n_items; /* how many */
} k8s_result_t;

/* Called once when a request ends (not after k8s_cancel() or client destroy). */
typedef void(k8s_done_fn)(k8s_client_t *client, const k8s_result_t *res, void *arg);

/* Called for each watch event: type "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR";
 * `object` borrowed for the call (json_incref() to keep). Return 0 to go on, or a negative err_t
 * to end the watch (on_done then runs with that err). */
typedef int(k8s_event_fn)(k8s_client_t *client, int64_t id, const char *type, json_t *object,
                          void *arg);

/* Counters for tests and metrics. */
typedef struct {
    uint64_t requests; /* requests started */
    uint64_t attempts; /* HTTP attempts sent */
    uint64_t retries; /* attempts that were retries */
    uint64_t throttled; /* attempts that waited for the rate limiter or an in-flight slot */
    uint64_t auth_reloads; /* token file re-reads and exec plugin runs */
    uint64_t events; /* watch events delivered */
    size_t queued; /* requests waiting for the rate limiter or an in-flight slot now */
    size_t in_flight; /* requests not yet ended */
} k8s_stats_t;

/* A new client on `loop` for the server of `kc` (both must outlive the client; kc is read, not
 * copied). `cfg` may be NULL (defaults). Returns NULL when out of memory or when http cannot be
 * set up (logged). */
k8s_client_t *k8s_client_new(loop_t *loop, const kubeconfig_t *kc, const k8s_config_t *cfg);

/* Ends every request without running its callbacks, stops a running exec plugin, frees the
 * client and NULLs *client_p. NULL-safe. Not from inside one of its callbacks. */
void k8s_client_destroy(k8s_client_t **client_p);

/* Appends the URL path and query ("/api/v1/namespaces/default/pods?labelSelector=a%3Db") to
 * `out`; `opts` may be NULL; `watch` adds watch=true. Returns 0, ERR_INVAL (no version or
 * resource, subresource without name), ERR_TOOBIG or ERR_NOMEM. */
int k8s_path(const k8s_res_t *res, const k8s_opts_t *opts, bool watch, buf_t *out);

/* The requests. Each returns the request id (> 0), or ERR_INVAL (bad res, NULL callback, NULL
 * body where one is needed), ERR_BUSY (rate-limiter queue full), ERR_NOMEM, ERR_TOOBIG (URL or
 * body too long). On error no callback runs. Bodies are serialized during the call. */
int64_t k8s_get(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts, k8s_done_fn *fn,
                void *arg);
int64_t k8s_list(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts, k8s_done_fn *fn,
                 void *arg);
int64_t k8s_create(k8s_client_t *c, const k8s_res_t *res, const json_t *obj, const k8s_opts_t *opts,
                   k8s_done_fn *fn, void *arg);
int64_t k8s_update(k8s_client_t *c, const k8s_res_t *res, const json_t *obj, const k8s_opts_t *opts,
                   k8s_done_fn *fn, void *arg);
int64_t k8s_patch(k8s_client_t *c, const k8s_res_t *res, k8s_patch_type_t type, const json_t *patch,
                  const k8s_opts_t *opts, k8s_done_fn *fn, void *arg);
/* DELETE; propagation policy, grace period and preconditions from opts go in the body. */
int64_t k8s_delete(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts, k8s_done_fn *fn,
                   void *arg);
/* A watch: on_event per event, then on_done once when the stream ends (err 0: normal end). */
int64_t k8s_watch(k8s_client_t *c, const k8s_res_t *res, const k8s_opts_t *opts,
                  k8s_event_fn *on_event, k8s_done_fn *on_done, void *arg);

/* A raw request (file comment): `method` one of GET HEAD POST PUT PATCH DELETE; `path` the
 * already-escaped path and query after the server URL, starting with '/' (no blanks, control
 * bytes or '#'); `body` (len bytes, copied; NULL when len is 0) sent with `content_type` (NULL:
 * no Content-Type). An "Accept: application/json" is sent unless o names an Accept header.
 * Returns the request id (> 0), ERR_INVAL (bad method, path, header or NULL callback), ERR_BUSY,
 * ERR_TOOBIG (URL or body over HTTP_DEFAULT_MAX_BODY, too many headers) or ERR_NOMEM; on error no
 * callback runs. */
int64_t k8s_raw(k8s_client_t *c, const char *method, const char *path, const char *content_type,
                const void *body, size_t len, const k8s_raw_opts_t *o, k8s_done_fn *fn, void *arg);

/* Cancels request `id` (queued, waiting, in flight or streaming): none of its callbacks runs
 * again. Safe from inside any callback, including its own. Returns 0 or ERR_NOTFOUND. */
int k8s_cancel(k8s_client_t *c, int64_t id);

/* Only from inside a watch's on_event callback: the JSON text of the event's "object" exactly as
 * the server sent it (not NUL-terminated; *len gets its length), the text `object` was parsed
 * from, so a consumer can store it without serializing the tree again. Borrowed: valid until the
 * callback returns. NULL (and *len 0) outside on_event or when it could not be located. `len` may
 * be NULL. */
const char *k8s_event_raw(const k8s_client_t *c, size_t *len);

/* Fills *out with the client's counters. */
void k8s_client_stats(const k8s_client_t *c, k8s_stats_t *out);

struct metrics;

/* Records client-go's REST client metrics (k8s.io/component-base/metrics/prometheus/restclient:
 * names, labels and buckets) into `reg` from now on, registering each family on first use so
 * that several clients of one process share them (each client's requests carry its own host
 * label); `reg` must outlive the client or be detached with NULL first. Per attempt:
 * rest_client_requests_total{code,host,method} (code = HTTP status, "<error>" when none was
 * received; a watch counts when its response headers arrive), rest_client_request_size_bytes
 * {host,verb}, rest_client_rate_limiter_duration_seconds{host,verb} (the wait for a token and,
 * unlike client-go, for an in-flight slot), rest_client_response_size_bytes{host,verb} (non-watch
 * responses); per retry rest_client_request_retries_total{code,host,verb} (the code of the
 * attempt that is retried); per non-watch request rest_client_request_duration_seconds{host,verb}
 * (made to answered, retries included, as client-go's request()). verb and method are the HTTP
 * method. Durations have the loop clock's millisecond resolution. Returns 0, ERR_INVAL or
 * ERR_NOMEM (nothing recorded then). */
int k8s_client_metrics(k8s_client_t *c, struct metrics *reg);

/* The namespace of the kubeconfig context (never NULL). */
const char *k8s_client_namespace(const k8s_client_t *c);

/* Self-test: path building and escaping, argument errors, connection-refused retries (POST
 * included), cancel, the rate-limiter queue, destroy with requests pending. The end-to-end tests
 * against kubesim are in tests/integration/k8s. */
int k8s_test(bool verbose);

#endif
