/*
 * raydash: an asynchronous client of the Ray head's HTTP APIs, on the loop: the dashboard's Jobs
 * API and Serve API (port 8265) and the Serve proxy's health check (port 8000).
 *
 * ../shared/spec/ray-head-api.md §0-§3 and ../shared/spec/kuberay-behavior.md §2.6, §3.2 step 10,
 * §3.3. A head is reached either directly (http://<host:port>, a raydash_t made with an
 * http_client_t) or through the Kubernetes API server's proxy (a raydash_t made with a
 * k8s_client_t: the API server's auth and TLS apply, as KubeRay's --use-kubernetes-proxy does):
 * the dashboard at <apiserver>/api/v1/namespaces/<ns>/services/<svc>:dashboard/proxy/api/...,
 * the Serve proxy of a pod at <apiserver>/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/-/healthz
 * (directly: http://<pod ip>:<port>/-/healthz). Timeouts as KubeRay's: 2 s direct, 10 s through
 * the proxy. Bodies are bounded (RAYDASH_MAX_BODY), the answers' and the requests'. A token (the
 * cluster's auth Secret `auth_token`) is sent to the dashboard as `x-ray-authorization: Bearer
 * <t>` and never logged; the Serve proxy's health check takes none (KubeRay sends none, Ray
 * needs none there). No browser-looking header or user agent is ever sent (the dashboard's
 * browser guard refuses POST and PUT from browsers).
 *
 * Results: err 0 on 2xx (the health check: on 200 only); ERR_NOTFOUND on 404 (message "Job <id>
 * does not exist on the cluster", KubeRay's wording, for the calls naming a job; as KubeRay, any
 * 404 counts, the proxy's own `services "x" not found` included); ERR_EXISTS for a submit
 * answered by any 4xx/5xx whose body contains "Please use a different submission_id" (the job
 * exists: KubeRay treats it as submitted); ERR_SERVER (5xx: a Serve proxy not ready yet answers
 * 503 "Route table is not populated yet."), ERR_UNAUTHORIZED (401, token missing), ERR_FORBIDDEN
 * (403, token wrong), ERR_INVAL (other 4xx: a Serve config refused by Serve's validation is a
 * 400 whose text is Serve's ValidationError), ERR_PROTO (2xx whose body is not what the API
 * returns), ERR_TIMEOUT, ERR_CONNREFUSED, ERR_TOOBIG (body over RAYDASH_MAX_BODY), ERR_HTTP
 * (transport); with the proxy, the API server's own 503 "no endpoints available" / "connection
 * refused" (a pod whose Serve proxy does not run) come back as ERR_SERVER with its Status
 * message. `message` names what failed ("<call>: HTTP <status>: <first line of the body>",
 * bounded, control bytes replaced), "" on success.
 *
 * Arguments refused before any request (ERR_INVAL): a job id empty, longer than 256 bytes,
 * holding a control byte, or "." / ".." (ids are percent-escaped as one path segment); a token
 * with a control byte; an address other than host:port (optionally with http:// or https:// and
 * a trailing '/'); a proxy target without namespace or service; a Serve config or job request
 * that is not a JSON object; a pod without ip (direct) or namespace and name (proxy), or with a
 * port outside 0-65535. Through the proxy each call is one attempt (k8s_raw with retries off):
 * KubeRay does not retry either, the caller calls again. Callbacks run from the loop, never
 * inside the call; one may make calls, cancel others, or destroy the client.
 */
#ifndef RF_RAYDASH_H
#define RF_RAYDASH_H

#include "http.h"
#include "k8s.h"
#include "loop.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAYDASH_DIRECT_TIMEOUT_MS 2000 /* RayHTTPClientDirectTimeoutSeconds */
#define RAYDASH_PROXY_TIMEOUT_MS 10000 /* RayHTTPClientProxyTimeoutSeconds */
#define RAYDASH_MAX_BODY (4u << 20) /* largest response body accepted (logs included) */
#define RAYDASH_MSG_MAX 512 /* longest message kept in a result */
#define RAYDASH_PORT_NAME "dashboard" /* head Service port name used through the proxy */
#define RAYDASH_SERVE_PORT 8000 /* Serve proxy port when a pod names none (DefaultServingPort) */

typedef struct raydash raydash_t;

/* Where the head is. Strings borrowed for the call. */
typedef struct {
    const char *address; /* direct: "host:port" (status.dashboardURL); unused with the proxy */
    const char *ns; /* proxy: namespace of the head Service */
    const char *service; /* proxy: the head Service's name */
    const char *token; /* x-ray-authorization bearer token, or NULL */
    bool urgent; /* proxy: the request waits in the API client's urgent lane (k8s_raw_opts_t) */
} raydash_target_t;

/* A job as GET /api/jobs/{id} (JobDetails) gives it. Strings point into `body`. */
typedef struct {
    const char *submission_id; /* "" when null */
    const char *status; /* PENDING RUNNING STOPPED SUCCEEDED FAILED ("" when absent) */
    const char *message; /* "" when null */
    const char *error_type; /* "" when null */
    int64_t start_time_ms; /* 0 when null */
    int64_t end_time_ms; /* 0 when null */
} raydash_job_t;

/* The outcome of one call, valid only during the callback. */
typedef struct {
    int64_t id; /* the id the call returned */
    int err; /* see the file comment */
    long status; /* HTTP status (0 when none was received) */
    const char *message; /* never NULL */
    const json_t *body; /* the decoded JSON answer on 2xx, else NULL (borrowed) */
    raydash_job_t job; /* raydash_get_job(): the parsed job on success */
    bool stopped; /* raydash_stop_job(): the answer's "stopped" */
    const char *logs; /* raydash_job_logs(): the logs text on success, else NULL */
    int64_t elapsed_us; /* time from the call to the answer */
} raydash_result_t;

typedef void(raydash_done_fn)(const raydash_result_t *res, void *arg);

/* Settings. Exactly one of http and k8s (borrowed, must outlive the raydash_t), or neither and
 * `direct`: the raydash_t makes its own http_client_t (default settings) for direct calls. */
typedef struct {
    http_client_t *http; /* direct connections (TLS settings are the client's) */
    k8s_client_t *k8s; /* through the API server's service proxy */
    bool direct; /* no http nor k8s: direct connections on a client of its own */
    int64_t timeout_ms; /* 0: RAYDASH_DIRECT_TIMEOUT_MS or RAYDASH_PROXY_TIMEOUT_MS */
} raydash_config_t;

/* A client; NULL on bad settings or out of memory. */
raydash_t *raydash_new(loop_t *loop, const raydash_config_t *cfg);

/* Frees it; calls in flight are cancelled (their callbacks never run). NULL-safe; NULLs *d_p. */
void raydash_destroy(raydash_t **d_p);

/* POST /api/jobs/ with `req` (borrowed for the call: {"entrypoint", "submission_id", ...}).
 * Each call returns a request id > 0 or a negative err_t (then fn is never called). */
int64_t raydash_submit(raydash_t *d, const raydash_target_t *t, const json_t *req,
                       raydash_done_fn *fn, void *arg);
/* GET /api/jobs/{id}. */
int64_t raydash_get_job(raydash_t *d, const raydash_target_t *t, const char *job_id,
                        raydash_done_fn *fn, void *arg);
/* GET /api/jobs/ (body: the array). */
int64_t raydash_list_jobs(raydash_t *d, const raydash_target_t *t, raydash_done_fn *fn, void *arg);
/* POST /api/jobs/{id}/stop. */
int64_t raydash_stop_job(raydash_t *d, const raydash_target_t *t, const char *job_id,
                         raydash_done_fn *fn, void *arg);
/* DELETE /api/jobs/{id}. */
int64_t raydash_delete_job(raydash_t *d, const raydash_target_t *t, const char *job_id,
                           raydash_done_fn *fn, void *arg);
/* GET /api/jobs/{id}/logs. */
int64_t raydash_job_logs(raydash_t *d, const raydash_target_t *t, const char *job_id,
                         raydash_done_fn *fn, void *arg);

/* GET /api/serve/applications/?api_type=declarative on the dashboard (res->body: the whole
 * answer object, ServeInstanceDetails, whose "applications" is an object; else ERR_PROTO). */
int64_t raydash_serve_get(raydash_t *d, const raydash_target_t *t, raydash_done_fn *fn, void *arg);
/* PUT /api/serve/applications/ with `config` (a JSON object, borrowed for the call: serveConfigV2
 * as JSON), Content-Type application/json. Serve answers 200 with an empty body and deploys
 * asynchronously (poll raydash_serve_get()). A 400 (Serve's ValidationError, or the controller's
 * refusal) -> ERR_INVAL with the first line of its text; 5xx -> ERR_SERVER. */
int64_t raydash_serve_put(raydash_t *d, const raydash_target_t *t, const json_t *config,
                          raydash_done_fn *fn, void *arg);

/* Where a pod is, for the Serve proxy health check. Strings borrowed for the call. */
typedef struct {
    const char *ns, *pod; /* proxy: pods/<pod>:<port>/proxy/-/healthz */
    const char *ip; /* direct: http://<ip>:<port>/-/healthz (an IPv6 address is bracketed) */
    long port; /* the head's "serve" container port; 0: RAYDASH_SERVE_PORT */
} raydash_pod_t;

/* GET /-/healthz of the Serve proxy on a pod (KubeRay's CheckProxyActorHealth, which
 * updateHeadPodServeLabel turns into the head pod's ray.io/serve label): err 0 only on HTTP 200
 * (the body "success"); another 2xx -> ERR_PROTO; 503 ("Route table is not populated yet.",
 * "This node is being drained.") -> ERR_SERVER; refused, timeout -> the matching err; each with
 * a message. No token is sent. The client's timeout (2 s direct by default). */
int64_t raydash_serve_healthz(raydash_t *d, const raydash_pod_t *pod, raydash_done_fn *fn,
                              void *arg);

/* Parses a Serve GET answer (res->body of raydash_serve_get()): the number of applications and
 * whether Serve is ready as KubeRay's isReady says (at least one application, and every one with
 * status exactly "RUNNING"; so false with zero applications). An application's missing or null
 * status counts as not RUNNING. Either output may be NULL. Returns 0, or ERR_PROTO (outputs 0 and
 * false) when the answer is not an object whose "applications" is an object of objects with a
 * string (or null) "status". */
int raydash_serve_ready(const json_t *answer, size_t *napps, bool *all_running);

/* Cancels a call (its callback never runs). Returns 0 or ERR_NOTFOUND. */
int raydash_cancel(raydash_t *d, int64_t id);

/* True for a terminal Ray job status (STOPPED, SUCCEEDED, FAILED). */
bool raydash_status_terminal(const char *status);

/* Calls made (accepted), answered (callback run, any err), failed (of those, err != 0), and in
 * flight. Cancelled calls count in none but `calls`. */
typedef struct {
    uint64_t calls, answered, failed, inflight;
} raydash_stats_t;
void raydash_stats(const raydash_t *d, raydash_stats_t *out);

/* Self-test (against an in-process httpd playing a head, and kubesim's proxy where linked). */
int raydash_test(bool verbose);

#endif
