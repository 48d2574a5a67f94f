/*
 * raysim: the Ray side of kubesim: one simulated Ray head (rayhead_t) behind every Ray head pod,
 * the API server's service/pod proxy onto them, and the autoscaler emulation.
 *
 * - Heads. A pod labelled ray.io/node-type=head gets a rayhead_t when its first container is
 *   running and it has a podIP (the Ray process starts with the container; rayhead's own
 *   phases (a)-(c) then model the start-up, so a head Service with publishNotReadyAddresses
 *   proxies "connection refused" until the ports open). head_ip = podIP, start_ms = now. A
 *   restart of that container (restartCount grows: crash, OOM) calls rayhead_restart(); the
 *   head is destroyed when the pod is deleted, finishes, or gets a new uid.
 * - Proxy (what /api/v1/namespaces/{ns}/services/{name}:{port}/proxy/... and
 *   .../pods/{name}:{port}/proxy/... call): the Service's port is found by number or name;
 *   endpoints come from the Endpoints object (kept by sim/controllers), preferring an address
 *   whose pod has a head; the targetPort is the Endpoints port of the same name. Answers as
 *   kube-apiserver does: 404 `services "x" not found`, 503 `no service port "p" found for
 *   service "x"`, 503 `no endpoints available for service "x"`, 503 `error trying to reach
 *   service: dial tcp IP:PORT: connect: connection refused` (rayhead_refused_status) when the
 *   pod has no head or the port is closed; otherwise rayhead_handle()'s answer.
 * - Serve proxies: port 8000 of a head pod and of a Running worker pod (ray.io/node-type=worker)
 *   of the same cluster answer as that cluster's head's Serve proxy (rayhead_handle_proxy()), so
 *   each node has its own proxy; a pod annotated RAYSIM_ANN_SERVE_PROXY=down answers /-/healthz
 *   with 503 `This node is being drained.` A worker whose cluster has no head refuses.
 * - Dial: raysim_dial() is the same path as a client inside the cluster sees it (NXDOMAIN,
 *   connection refused or the head's answer), used by the simulated submitter (raysubmit.h).
 * - Submission counts: every head counts the POST /api/jobs/ it answered (rayhead.h); the counts
 *   of heads that go away are kept, so raysim_submit_counts() totals every head ever run. The
 *   same for every request a head answered, by port (raysim_request_counts()).
 * - Autoscaler. raysim_set_demand() records {group: replicas} for a RayCluster. Every
 *   RAYSIM_AUTOSCALE_MS the emulation reads each such cluster with
 *   spec.enableInTreeAutoscaling true and its pods (label ray.io/cluster), runs
 *   autoscale_compute() and applies the JSON patch with patch_json() and objstore_update() under
 *   the RayCluster's resourceVersion (a conflict is retried next period). The pod read is a
 *   filtered list (O(pods) per autoscaled cluster per period).
 */
#ifndef RF_RAYSIM_H
#define RF_RAYSIM_H

#include "loop.h"
#include "objstore.h"
#include "rayhead.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAYSIM_AUTOSCALE_MS 1000 /* autoscaler iteration period */
/* Pod annotation: "down" makes that pod's Serve proxy (port 8000) unhealthy: /-/healthz and
 * /-/routes answer 503 `This node is being drained.` (rayhead_handle_proxy()); the kubelet fails
 * a readiness probe that checks /-/healthz (KubeRay's RayService workers) while it is set. */
#define RAYSIM_ANN_SERVE_PROXY "sim.rayfleet.io/serve-proxy"

typedef struct raysim raysim_t;

/* Starts on `store` (pods must be registered) and `loop` (NULL: the caller drives
 * raysim_autoscale_tick()). `head_opts` (may be NULL = rayhead defaults) is the template for every
 * head; start_ms and head_ip are set per head; its strings are copied. Returns NULL when out of
 * memory or pods are not registered. */
raysim_t *raysim_new(loop_t *loop, objstore_t *store, const rayhead_options_t *head_opts);

/* Destroys every head, stops the watch and timer. NULL-safe; NULLs *rp. */
void raysim_destroy(raysim_t **rp);

/* Sets (down) or removes the annotation RAYSIM_ANN_SERVE_PROXY=down on pod ns/pod (kubesim's
 * POST /kubesim/pod-fault kinds ServeProxyDown / ServeProxyUp). Returns 0, ERR_NOTFOUND, ERR_INVAL
 * or ERR_NOMEM. */
int raysim_set_proxy_down(raysim_t *r, const char *ns, const char *pod, bool down);

/* Proxies one request to Service ns/service, port `port` (a number or a port name; NULL or ""
 * = the only port), at `now_ms` (Unix ms). Fills *out (initialised here; free it with
 * rayhead_response_free() after any return): out->refused is never set, the status and body are
 * the final HTTP answer. Returns 0 (whatever the HTTP status), ERR_INVAL for NULL arguments,
 * ERR_NOMEM / ERR_TOOBIG when the answer could not be built. */
int raysim_proxy(raysim_t *r, const char *ns, const char *service, const char *port,
                 const char *method, const char *path_and_query, const char *body, size_t len,
                 int64_t now_ms, rayhead_response_t *out);

/* Same for pods/{pod}:{port}/proxy: `port` must be a number or a container port name (NULL or
 * "" = the first container port). 404 `pods "x" not found` when missing. */
int raysim_proxy_pod(raysim_t *r, const char *ns, const char *pod, const char *port,
                     const char *method, const char *path_and_query, const char *body, size_t len,
                     int64_t now_ms, rayhead_response_t *out);

/* A call as a process in a pod makes it (DNS, then a TCP connection; no API server): to Service
 * ns/service port `port` (by number; the endpoint chosen as raysim_proxy() does), or, with
 * service NULL, to pod ns/pod's own head (127.0.0.1:port). Exactly one of service and pod is set.
 * Fills *out (initialised here; free with rayhead_response_free() after any return). Returns 0
 * with the head's answer; ERR_NOTFOUND when the Service does not exist (NXDOMAIN);
 * ERR_CONNREFUSED when nothing answers (no such port or endpoints, no head, port closed);
 * ERR_INVAL, ERR_NOMEM or ERR_TOOBIG otherwise. */
int raysim_dial(raysim_t *r, const char *ns, const char *service, const char *pod, int port,
                const char *method, const char *path_and_query, const char *body, size_t len,
                int64_t now_ms, rayhead_response_t *out);

/* Sums the submission counts (rayhead_submit_counts()) of every head, live or gone since,
 * for one submission id or (NULL) all POST /api/jobs/. Returns 0 or ERR_INVAL. */
int raysim_submit_counts(const raysim_t *r, const char *submission_id, rayhead_submit_count_t *out);

/* Sums the request counts (rayhead_request_fold()) of every head, live or gone since, into *out
 * (zeroed first). Returns 0 or ERR_INVAL. */
int raysim_request_counts(const raysim_t *r, rayhead_request_count_t *out);

/* The head behind pod ns/pod (borrowed; valid until the pod goes), or NULL. For admin endpoints
 * (rayhead_set_gcs_down, ...) and tests. */
rayhead_t *raysim_head(raysim_t *r, const char *ns, const char *pod);

/* Number of live heads. */
size_t raysim_head_count(const raysim_t *r);

/* Sets the simulated demand of RayCluster ns/cluster: an object {groupName: replicas} (borrowed,
 * copied); NULL clears it. Returns 0, ERR_INVAL (NULL names, not an object, a value that is not
 * a non-negative integer) or ERR_NOMEM. */
int raysim_set_demand(raysim_t *r, const char *ns, const char *cluster, const json_t *demand);

/* Runs one autoscaler iteration over every cluster with a demand. Returns the number of
 * RayClusters patched (>= 0). */
int raysim_autoscale_tick(raysim_t *r);

/* Self-test. */
int raysim_test(bool verbose);

#endif
