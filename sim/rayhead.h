/*
 * rayhead: a simulated Ray head node (dashboard 8265, dashboard agent 52365,
 * Serve proxy 8000).
 *
 * kubesim puts one rayhead_t behind every Ready Ray head pod. It is a pure
 * state machine: no sockets, no threads, no timers. Time comes in as `now_ms`
 * on every call (Unix milliseconds, because `start_time`, `end_time` and
 * `last_deployed_time_s` are reported from it), and state advances lazily to
 * that instant: a job that was submitted at t and scripted to run 3 s is
 * RUNNING at t+pending and SUCCEEDED at t+pending+3 s whoever looks first, with
 * the transition stamped at the scripted instant rather than at the
 * observation. rayhead_tick() does the same advance without a request (e.g. to
 * drop deleted Serve apps). The HTTP layer routes proxy requests
 * (`/api/v1/namespaces/{ns}/services/{svc}:{port}/proxy/<rest>`) here with the
 * port number and `<rest>`, and turns the response into an HTTP reply.
 *
 * It follows ../shared/spec/ray-head-api.md §6 ("Emulator checklist"):
 *  - Lifecycle (item 1): phase (a) from start until `ports_open_ms`: every port
 * refuses the connection (resp.refused; the HTTP layer answers 503 as
 * kube-apiserver's proxy does, body from rayhead_refused_status()); phase (b)
 * until `healthy_ms`: 8265 answers, but /api/gcs_healthz is 503 and Jobs/Serve
 * calls are 503; 52365 answers 503 `Local Raylet failed`; phase (c): healthy;
 * phase (d): rayhead_set_gcs_down(true) after being healthy: health endpoints
 * 503, Jobs/Serve 500 text. Healthy bodies contain `success`, unhealthy ones
 * never do.
 *  - Restart (item 2): rayhead_restart() wipes jobs and Serve state and goes
 * back to phase (a).
 *  - /api/version (item 3).
 *  - Jobs (items 4-12, 14): the full JobDetails shape, every key present; the
 * state machine PENDING -> RUNNING -> SUCCEEDED | FAILED, STOPPED after a stop;
 * terminal states never change; logs; duplicate submission_id; 404 texts;
 * DELETE rules; list. Every error body is text/plain, never JSON. The WebSocket
 * tail (item 13) is NOT implemented: the route answers 404/400 like HTTP for
 * unknown ids and 501 text otherwise.
 *  - Serve (items 16-23): PUT with the synchronous 400 validations,
 * asynchronous progression, DEPLOY_FAILED for unimportable modules, replica
 * start failure, runtime UNHEALTHY flip, GET with api_type, DELETE, deletion of
 * apps missing from a new config, the proxy's /-/healthz and /-/routes on port
 * 8000, draining.
 *  - Not implemented: token auth (item 24), the browser guard (item 25) (this
 * interface has no request headers), and per-endpoint fault injection beyond
 * the switches below (kubesim's HTTP layer injects latency and errors itself).
 *
 * Scripting a job from its entrypoint. If the entrypoint contains the token
 * `FAKE:` the rest of that whitespace-delimited word is a comma-separated list
 * of keys: pending=S     stay PENDING S seconds (decimal; default:
 * opts.job_pending_ms) sleep=S       run S seconds once RUNNING (alias run=S;
 * default: opts.job_run_ms) exit=N        exit code (0 -> SUCCEEDED, else
 * FAILED with the exit code and log tail) envfail       the runtime_env setup
 * fails at the end of PENDING: FAILED, `runtime_env setup failed: ...`,
 * error_type RUNTIME_ENV_SETUP_FAILURE nostart       the supervisor never
 * starts: PENDING until opts.job_start_timeout_ms, then FAILED `Job supervisor
 * actor failed to start within N seconds...` log=TEXT      the program's
 * output; MUST be the last key: it takes the rest of the word, commas included;
 * each ';' in it becomes a newline e.g. `python train.py
 * FAKE:pending=0.5,sleep=3,exit=1,log=epoch_1;boom`. Without a marker the job
 * succeeds after the default times. A runtime_env whose `pip` list names a
 * package starting with `fake_missing` also fails as envfail does.
 *
 * Scripting Serve: an app whose import_path module starts with `fake_missing`
 * goes DEPLOYING -> DEPLOY_FAILED (ModuleNotFoundError) after the build time;
 * one whose module starts with `fake_crash` (or a deployment whose name starts
 * with `fake_crash`) builds, then its deployments (or that deployment) go
 * DEPLOY_FAILED with REPLICA_STARTUP_FAILED. An app's deployments are the names
 * in its `deployments` list, or one deployment named after the attribute of its
 * import_path (`mod.sub:app` -> `app`) when the list is empty.
 */
#ifndef RF_RAYHEAD_H
#define RF_RAYHEAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RAYHEAD_PORT_DASHBOARD 8265 /* dashboard head: Jobs, Serve, version, gcs_healthz */
#define RAYHEAD_PORT_AGENT 52365 /* dashboard agent: raylet and combined health */
#define RAYHEAD_PORT_SERVE 8000 /* Serve HTTP proxy: /-/healthz, /-/routes */

#define RAYHEAD_BODY_MAX (4u * 1024u * 1024u) /* largest request body accepted (else 413 text) */
#define RAYHEAD_RESPONSE_MAX (64u * 1024u * 1024u) /* bound of a response body buffer */
#define RAYHEAD_MAX_JOBS 10000 /* jobs kept per head; more -> 500 text */
#define RAYHEAD_MAX_APPS 256 /* Serve applications per config */
#define RAYHEAD_MAX_DEPLOYMENTS 64 /* deployments per application */
#define RAYHEAD_LOG_MAX (256u * 1024u) /* bytes of scripted log per job */
#define RAYHEAD_MAX_SUBMIT_IDS 100000 /* submission ids counted per head (totals go on) */
#define RAYHEAD_LOG_TAIL_MAX 20000 /* chars of log quoted in a FAILED message, as Ray does */

#define RAYHEAD_DEFAULT_PORTS_OPEN_MS 0 /* phase (a) length after start */
#define RAYHEAD_DEFAULT_HEALTHY_MS 0 /* phase (a)+(b) length after start */
#define RAYHEAD_DEFAULT_JOB_PENDING_MS 1000 /* PENDING duration */
#define RAYHEAD_DEFAULT_JOB_RUN_MS 2000 /* RUNNING duration */
#define RAYHEAD_DEFAULT_JOB_STOP_MS 500 /* stop request -> STOPPED */
#define RAYHEAD_DEFAULT_JOB_START_TIMEOUT_MS 900000 /* RAY_JOB_START_TIMEOUT_SECONDS = 900 */
#define RAYHEAD_DEFAULT_SERVE_BUILD_MS                                                             \
    2000 /* DEPLOYING with deployments {}                                                          \
          */
#define RAYHEAD_DEFAULT_SERVE_UPDATE_MS 2000 /* deployments UPDATING */
#define RAYHEAD_DEFAULT_SERVE_REAPPLY_MS 100 /* DEPLOYING after a PUT that changes no code */
#define RAYHEAD_DEFAULT_SERVE_DELETE_MS 1000 /* DELETING -> gone */
#define RAYHEAD_DEFAULT_RAY_VERSION "2.46.0" /* reported by /api/version */
#define RAYHEAD_DEFAULT_HEAD_IP                                                                    \
    "10.244.0.10" /* pod IP reported in addresses                                                  \
                   */
#define RAYHEAD_DEFAULT_DUPLICATE_STATUS 500 /* current Ray; older Ray said 400 */

/* Every setting of a simulated head. Fill with rayhead_options_default(), then
 * override. */
typedef struct {
    int64_t start_ms; /* Unix ms at which the head process starts (phase (a)
                         begins) */
    int64_t ports_open_ms; /* phase (a): ms after start during which ports refuse */
    int64_t healthy_ms; /* ms after start at which GCS is healthy (end of phase
                           (b)) */
    int64_t job_pending_ms; /* default PENDING duration of a job */
    int64_t job_run_ms; /* default RUNNING duration of a job */
    int64_t job_stop_ms; /* delay between a stop request and STOPPED */
    int64_t job_start_timeout_ms; /* PENDING longer than this -> FAILED */
    int64_t serve_build_ms; /* app DEPLOYING with no deployments (the build task) */
    int64_t serve_update_ms; /* deployments UPDATING before HEALTHY */
    int64_t serve_reapply_ms; /* DEPLOYING after a re-PUT that changes no code */
    int64_t serve_delete_ms; /* DELETING before an app disappears */
    const char *ray_version; /* borrowed until rayhead_new() returns (copied) */
    const char *head_ip; /* borrowed until rayhead_new() returns (copied) */
    const char *cluster; /* the RayCluster this head belongs to (its pod's ray.io/cluster label),
                            named in the Serve proxy's answer; NULL or "" = not named; borrowed
                            until rayhead_new() returns (copied) */
    bool strict; /* unknown keys in POST /api/jobs/ -> 400 (real Ray) */
    int duplicate_status; /* status for a duplicate submission_id: 500 or 400 */
    bool stop_ignored; /* stop answers {"stopped": true} but the job keeps running
                        */
    uint64_t seed; /* seed of generated ids (submission ids, node ids) */
} rayhead_options_t;

/* One answer. `refused` means the port is closed: no HTTP status, the caller
 * maps it. */
typedef struct {
    bool refused; /* connection refused (phase (a), or Serve proxy not started) */
    int status; /* HTTP status when !refused */
    const char *content_type; /* static string: "application/json", "text/plain; ..." */
    buf_t body; /* the body; the caller frees it with rayhead_response_free() */
} rayhead_response_t;

typedef struct rayhead rayhead_t;

/* Submission counts: POST /api/jobs/ requests the dashboard answered (any phase but (a): a
 * refused connection is no attempt) and those answered 200. Kept across rayhead_restart(). */
typedef struct {
    uint64_t attempts; /* POSTs answered */
    uint64_t accepted; /* of which 200 (a job was created) */
} rayhead_submit_count_t;

/* Requests the head answered (a refused connection is none), by what they asked, every lifetime:
 * the dashboard (8265: Jobs, Serve, version, health), the agent (52365), the Serve proxy's own
 * endpoints (8000 paths /-/..., e.g. a controller's /-/healthz probe) and Serve traffic (8000,
 * any other path: what applications answer). Benchmarks tell a controller's polling from user
 * traffic by them. */
typedef struct {
    uint64_t dashboard; /* port 8265 */
    uint64_t agent; /* port 52365 */
    uint64_t serve_control; /* port 8000, /-/healthz, /-/routes, ... */
    uint64_t serve_traffic; /* port 8000, application paths */
} rayhead_request_count_t;

/* Fills `opts` with the RAYHEAD_DEFAULT_* values (start_ms 0, strict off, seed
 * 1). */
void rayhead_options_default(rayhead_options_t *opts);

/* Creates a head in phase (a) at opts->start_ms. Returns NULL when out of
 * memory or when `opts` is NULL or invalid (negative delays, duplicate_status
 * not 400 or 500). */
rayhead_t *rayhead_new(const rayhead_options_t *opts);

/* Frees the head and sets *head_p to NULL. NULL-safe and idempotent. */
void rayhead_destroy(rayhead_t **head_p);

/* Answers one request at `now_ms` on `port` (8265, 52365 or 8000; any other
 * port refuses). `path_and_query` is the path after the proxy prefix, starting
 * with '/', with an optional query string. `body` may be NULL when `body_len`
 * is 0. Fills `out` (initialised here; the caller must call
 * rayhead_response_free() after any return). Returns 0 with a response, even
 * for HTTP errors; ERR_INVAL for NULL arguments; ERR_NOMEM or ERR_TOOBIG when
 * the response could not be built (out->body is then empty). */
int rayhead_handle(rayhead_t *head, int64_t now_ms, int port, const char *method,
                   const char *path_and_query, const char *body, size_t body_len,
                   rayhead_response_t *out);

/* Answers a request to port 8000 as the Serve proxy of ONE node of this head's cluster (the
 * head's own or a worker's: every proxy routes to the same applications): rayhead_handle() on
 * RAYHEAD_PORT_SERVE, except that with `unhealthy` (kubesim's per-pod control
 * `sim.rayfleet.io/serve-proxy: down`) /-/healthz and /-/routes answer 503 `This node is being
 * drained.` as Ray's proxy does when it is not healthy (ray-head-api.md §3). Same returns. */
int rayhead_handle_proxy(rayhead_t *head, int64_t now_ms, bool unhealthy, const char *method,
                         const char *path_and_query, const char *body, size_t body_len,
                         rayhead_response_t *out);

/* Releases a response's body. NULL-safe. */
void rayhead_response_free(rayhead_response_t *resp);

/* Writes the kube-apiserver Status document for a proxied connection that was
 * refused (code 503, reason ServiceUnavailable, message `error trying to reach
 * service: dial tcp IP:PORT: connect: connection refused`) into `out`
 * (appended). Returns 0, ERR_INVAL, ERR_NOMEM or ERR_TOOBIG. */
int rayhead_refused_status(const char *ip, int port, buf_t *out);

/* Advances every job and Serve app to `now_ms` without a request. */
void rayhead_tick(rayhead_t *head, int64_t now_ms);

/* Simulates a head restart without GCS fault tolerance: every job and all Serve
 * state are wiped, a new node id and session are drawn, and the head is in
 * phase (a) from `now_ms`. */
void rayhead_restart(rayhead_t *head, int64_t now_ms);

/* Phase (d): with `down` the health endpoints answer 503 and Jobs/Serve calls
 * 500. */
void rayhead_set_gcs_down(rayhead_t *head, bool down);

/* Marks the deployments of Serve app `app` (all of them when `deployment` is
 * NULL) UNHEALTHY (HEALTH_CHECK_FAILED) or healthy again. Takes effect once the
 * app has finished deploying. Returns 0, ERR_INVAL for NULL arguments,
 * ERR_NOTFOUND when no such app/deployment exists. */
int rayhead_set_app_unhealthy(rayhead_t *head, const char *app, const char *deployment,
                              bool unhealthy);

/* The Serve proxy's drain switch: /-/healthz answers 503 `This node is being
 * drained.` */
void rayhead_set_serve_draining(rayhead_t *head, bool draining);

/* Fault: GET /api/serve/applications/ answers 503 "controller unreachable"
 * while set. */
void rayhead_set_serve_controller_down(rayhead_t *head, bool down);

/* Adds an imperatively deployed (serve.run) app, RUNNING at once with one
 * deployment named after the app; declarative PUTs leave it alone. Returns 0,
 * ERR_INVAL, ERR_EXISTS (name taken), ERR_TOOBIG (too many apps) or ERR_NOMEM.
 * `route_prefix` may be NULL (no route). */
int rayhead_add_imperative_app(rayhead_t *head, int64_t now_ms, const char *name,
                               const char *route_prefix);

/* Counts, for admin endpoints and tests: jobs kept, Serve apps (including
 * DELETING ones). */
size_t rayhead_job_count(const rayhead_t *head);
size_t rayhead_app_count(const rayhead_t *head);

/* Submission counts of the head (submission_id NULL: all POSTs) or of one submission id (the
 * POSTs whose body named it, or, for a generated id, the accepted one). Zeros for NULL head. */
void rayhead_submit_counts(const rayhead_t *head, const char *submission_id,
                           rayhead_submit_count_t *out);

/* Adds the head's per-submission-id counts into `into` (object id -> [attempts, accepted]) and,
 * when totals is not NULL, its totals into *totals. Returns 0, ERR_INVAL or ERR_NOMEM. */
int rayhead_submit_fold(const rayhead_t *head, json_t *into, rayhead_submit_count_t *totals);

/* Adds the head's request counts (rayhead_request_count_t) into *into. NULL-safe (adds nothing). */
void rayhead_request_fold(const rayhead_t *head, rayhead_request_count_t *into);

/* Self-test; returns 0 when every check passes. */
int rayhead_test(bool verbose);

#endif
