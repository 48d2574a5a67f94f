/*
 * apiserver: kubesim's Kubernetes API server: HTTP routing, discovery, the resource registry,
 * CRD registration, watches, Tables and fault injection, over objstore (storage semantics) and
 * httpd (the HTTP/1.1 server), all on one common/loop thread.
 *
 * What it serves (see ../shared/spec/k8s-api-semantics.md §1, §2, §4, §6, §7, §12):
 * - discovery: /version (minor "32"), /api, /apis, /apis/<g>, /api/v1, /apis/<g>/<v>
 *   (APIResourceList with verbs, shortNames, categories, singularName and status/scale/binding
 *   subresources), /openapi/v2 (200, empty application/octet-stream), /healthz /livez /readyz;
 * - built-in resources (namespaces, pods, services, endpoints, nodes, events, configmaps,
 *   secrets, serviceaccounts, jobs, roles, rolebindings, clusterroles, clusterrolebindings
 *   (with kube's table columns), ingresses, endpointslices, leases,
 *   customresourcedefinitions) and every served version of every CRD, registered when the CRD
 *   is written (status NamesAccepted/Established, acceptedNames, storedVersions) and removed
 *   with it;
 * - every verb (get, list, watch, create, update, patch, delete, deletecollection, status,
 *   pods/binding) with label/field selectors, pagination, resourceVersion rules, dry-run,
 *   Status error bodies, Tables (Accept ...;as=Table) with CRD printer columns;
 * - watches as chunked WatchEvent streams whose event bytes are serialized once and shared by
 *   every watcher (httpd chunks), with bookmarks, timeouts and 410 ERROR events;
 * - optionally a TLS listener (certificates from tls.h) where every request but /version and the
 *   health checks needs `Authorization: Bearer <token>` or a client certificate signed by the
 *   CA, else 401 Unauthorized (the plain port stays unauthenticated, as kubectl sends no
 *   credentials over http). The admin token and client certificates are system:masters; a
 *   service-account token (sim/satoken.h, from the TokenRequest subresource
 *   POST .../serviceaccounts/{name}/token, dead with its ServiceAccount) is
 *   system:serviceaccount:<ns>:<name>, and its requests go through the RBAC authorizer
 *   (sim/rbac.h: Roles, ClusterRoles and their bindings, bootstrap discovery rules, escalation
 *   prevention on RBAC writes): a refusal is 403 with kube's Status and message, logged at warn
 *   and counted (GET /kubesim/forbidden, DELETE to reset);
 * - Kubernetes protobuf (sim/pbjson.h) for every built-in kind: request bodies decoded (their
 *   kind must be the URL's), replies, lists, Status errors and watch streams encoded when the
 *   Accept header prefers it; custom resources and Tables stay JSON (a custom-resource request
 *   accepting only protobuf gets kube's 406);
 * - the Gateway API add-on (sim/gateway.h), unless no_gateway_api: its CRDs are created at boot
 *   (as a cluster add-on would; a user may delete or replace them), and with simulate its
 *   controller writes their status and GET|POST|PUT|DELETE
 *   /kubesim/gateways/{ns}/{gateway}/proxy/{path} sends a request through a Gateway;
 * - fairness between clients (unless no_fairness), after kube's API Priority and Fairness: a
 *   request is queued in its flow, the client's identity (the client certificate or bearer
 *   token over TLS, else the User-Agent), and the flows with queued requests are served
 *   round-robin, at most APISERVER_FAIR_SEATS requests per loop turn, each answer written as it
 *   is made; so a client sending one request at a time (kubectl create -f) waits for at most
 *   one request of each other busy client and one turn, not for everything a controller has
 *   in flight. Nothing is refused (no 429): the queues are bounded by the connections, each
 *   holding at most one request;
 * - /kubesim/... admin endpoints for fault injection (see apiserver_fault_t and the README).
 * The objstore is exposed so in-process simulators (kubelet, scheduler, Ray heads) can read and
 * write objects; their writes reach watchers the same way.
 */
#ifndef RF_APISERVER_H
#define RF_APISERVER_H

#include "buf.h"
#include "kubelet.h"
#include "loop.h"
#include "objstore.h"
#include "raysim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define APISERVER_MAX_BODY (3u << 20) /* request body bound (kube-apiserver's); 413 past it */
#define APISERVER_BOOKMARK_MS (60 * 1000) /* periodic BOOKMARK interval */
#define APISERVER_WATCH_MIN_S 1800 /* default watch timeout: random in [min, 2*min) seconds */
#define APISERVER_GC_TICK_MS 1000 /* objstore_tick() period */
#define APISERVER_MAX_FAULTS 64 /* error-rate rules at once */
#define APISERVER_NODE_CPU "16" /* default node capacity */
#define APISERVER_NODE_MEMORY "64Gi"
#define APISERVER_NODE_PODS "110"
#define APISERVER_GIT_VERSION "v1.32.0-kubesim" /* /version gitVersion */
#define APISERVER_FAIR_SEATS 8 /* requests served per loop turn when fair */
#define APISERVER_FLOW_BUCKETS 256 /* hash buckets of the active flows */

typedef struct apiserver apiserver_t;

/* Construction options. Zero-initialised = 127.0.0.1, ephemeral port, no nodes. */
typedef struct {
    const char *host; /* listen address (NULL = 127.0.0.1) */
    int port; /* TCP port, 0 = ephemeral */
    int nodes; /* Node objects pre-created (kubesim-node-0..N-1) */
    size_t history; /* watch history events (0 = objstore default) */
    const char *minor; /* /version minor (NULL = "32"), for version-skew tests */
    int64_t bookmark_ms; /* bookmark period (0 = APISERVER_BOOKMARK_MS) */
    uint64_t seed; /* random seed (0 = from the clock) */
    bool tls; /* also listen with TLS (generated CA) on tls_port */
    int tls_port; /* TLS port, 0 = ephemeral */
    const char *token; /* bearer token accepted over TLS (NULL = client certificates only) */
    const char *tls_host; /* TLS listen address (NULL = host), e.g. 0.0.0.0 in a container */
    const char *tls_sans; /* extra names of the server certificate, comma-separated (tls.h) */
    bool simulate; /* run the simulated scheduler/kubelet, the Job and EndpointSlice
                      controllers and the Ray heads behind the service proxy (kubesim does;
                      protocol tests that want pods left alone do not) */
    const kubelet_opts_t *kubelet; /* with simulate: kubelet settings (NULL = defaults); the
                                      Nodes are then the kubelet's (`nodes` of them) */
    bool no_gateway_api; /* do not install the Gateway API add-on (sim/gateway.h: its CRDs at
                            boot and, with simulate, its controller and data plane) */
    bool no_fairness; /* serve requests in arrival order instead of fairly between clients */
} apiserver_opts_t;

/* An injected error rule: requests matching verb and resource fail with `code` at `rate`. */
typedef struct {
    char verb[24]; /* "get", "list", "watch", "create", "update", "patch", "delete",
                      "deletecollection", or "*" */
    char resource[64]; /* plural resource name (e.g. "pods"), or "*" */
    double rate; /* probability in [0, 1] */
    int code; /* HTTP status to answer (e.g. 500, 503, 409, 429) */
    int after; /* APISERVER_FAULT_*: 0 = answer `code` instead of doing the request; else the
                  request is done (a create is applied) and only a successful answer is lost */
} apiserver_fault_t;

/* apiserver_fault_t.after: an ambiguous write. DROP: the connection is closed without an answer
 * (the client sees EOF / a reset); TIMEOUT: 504 as kube-apiserver's timeout filter answers when
 * the handler outlives the request deadline while the storage write goes through. */
#define APISERVER_FAULT_DROP 1
#define APISERVER_FAULT_TIMEOUT 2

/* Creates the server: registers the built-in resources, pre-creates the namespaces default,
 * kube-system, kube-public, kube-node-lease and the Nodes, and starts listening on `loop`.
 * `opts` may be NULL. Returns NULL on failure (logged). */
apiserver_t *apiserver_new(loop_t *loop, const apiserver_opts_t *opts);

/* Stops listening, ends every watch and frees everything; NULLs *ap. NULL-safe. */
void apiserver_destroy(apiserver_t **ap);

/* The bound TCP port. */
int apiserver_port(const apiserver_t *a);

/* With simulate: the kubelet, and the Ray side (heads, proxy, autoscaler demand); else NULL. */
kubelet_t *apiserver_kubelet(apiserver_t *a);
raysim_t *apiserver_raysim(apiserver_t *a);

/* The TLS port, or 0 when TLS is off. */
int apiserver_tls_port(const apiserver_t *a);

/* Appends a PEM of the generated CA (TLS_PEM_CA, TLS_PEM_CLIENT_CERT, TLS_PEM_CLIENT_KEY, see
 * tls.h) to out. Returns 0, ERR_STATE when TLS is off, or the buffer's error. */
int apiserver_tls_pem(const apiserver_t *a, int which, buf_t *out);

/* The object store (owned by the server). */
objstore_t *apiserver_store(apiserver_t *a);

/* Number of open watch streams. */
size_t apiserver_watch_count(const apiserver_t *a);

/* Adds an error-rate rule. Returns 0, ERR_INVAL (bad rate or code) or ERR_TOOBIG (too many). */
int apiserver_add_fault(apiserver_t *a, const apiserver_fault_t *f);

/* Parses "verb:resource:rate[:code]" (code defaults to 500) and adds it. Returns as above. */
int apiserver_add_fault_spec(apiserver_t *a, const char *spec);

/* Removes every error-rate rule, latency and pending 429s. */
void apiserver_clear_faults(apiserver_t *a);

/* Adds fixed + uniform random [0, jitter) latency to every API request. */
void apiserver_set_latency(apiserver_t *a, int64_t fixed_ms, int64_t jitter_ms);

/* Turns fairness between clients on or off (apiserver_opts_t.no_fairness); requests queued
 * already are served in their turns. */
void apiserver_set_fairness(apiserver_t *a, bool on);

/* The next `count` API requests get 429 TooManyRequests with Retry-After: retry_after_s. */
void apiserver_throttle(apiserver_t *a, int count, int retry_after_s);

/* Closes every watch connection abruptly (no terminating chunk). Returns how many. */
size_t apiserver_drop_watches(apiserver_t *a);

/* Sends a BOOKMARK now to every watch that allows them. Returns how many. */
size_t apiserver_bookmark_now(apiserver_t *a);

/* Forgets the watch history and list snapshots (next old-RV watch or continue gets 410). */
void apiserver_compact(apiserver_t *a);

/* Self-test. */
int apiserver_test(bool verbose);

#endif
