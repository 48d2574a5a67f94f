/*
 * objbuild: the Kubernetes objects KubeRay creates for a RayCluster besides its pods, as pure
 * builders (RayCluster tree in, new object tree out).
 *
 * Follows ray-operator/controllers/ray/common/{service.go,ingress.go,rbac.go} and the reconciler's
 * Secret, PVC and Redis-cleanup Job (spec §1.3, §1.11, §4.1, §4.2): names from names.h, the exact
 * labels, selectors, ports (sorted by name, metrics 8080 always present), headless head service
 * with publishNotReadyAddresses, the user headService merge rules, ingress annotations and class,
 * the autoscaler Role rules, and a controller ownerReference (controller and blockOwnerDeletion
 * true) on everything (except a Retain PVC).
 *
 * Every builder returns a new reference the caller json_decref()s, or NULL on allocation failure
 * (and, for the builders taking `err`, on a KubeRay error whose exact text is appended to err).
 */
#ifndef RF_OBJBUILD_H
#define RF_OBJBUILD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "labels.h"

/* Default head ports (utils/constant.go). */
#define OBJ_PORT_CLIENT 10001
#define OBJ_PORT_GCS 6379
#define OBJ_PORT_DASHBOARD 8265
#define OBJ_PORT_METRICS 8080
#define OBJ_PORT_SERVE 8000
#define OBJ_APP_PROTOCOL "tcp"

/* Auth token: random bytes before base64. */
#define OBJ_AUTH_TOKEN_BYTES 32
#define OBJ_AUTH_TOKEN_KEY "auth_token"

/* GCS PVC defaults. */
#define OBJ_GCS_PVC_DEFAULT_SIZE "1Gi"

/* Redis-cleanup Job settings (§1.11). */
#define OBJ_CLEANUP_ACTIVE_DEADLINE 300
#define OBJ_CLEANUP_CPU "200m"
#define OBJ_CLEANUP_MEMORY "256Mi"

/* Error texts (exact KubeRay messages). */
#define OBJ_ERR_NO_PORTS "ray head service does not have any ports set up"
#define OBJ_ERR_NO_SERVE_PORT                                                                      \
    "Please specify a port named 'serve' (or with the prefix 'serve-', e.g. 'serve-grpc') in the " \
    "Ray head container; otherwise, the Kubernetes service for Ray Serve will not be created."

/* Operator switches that change the builders. */
typedef struct {
    bool head_cluster_ip; /* env ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE == "true": no headless head svc
                           */
} objbuild_opts_t;

/* Fills `n` random bytes into `out`; returns 0 or a negative err_t. `ctx` is caller data. */
typedef int (*objbuild_rand_fn)(void *ctx, unsigned char *out, size_t n);

/* A one-element ownerReferences array for `rc` (apiVersion ray.io/v1, kind RayCluster, name,
 * uid, controller true, blockOwnerDeletion true). */
json_t *objbuild_owner_refs(const json_t *rc);

/* A controller ownerReference to the ray.io/v1 object `owner` of kind `kind` (RayJob,
 * RayService, ...), as an array; NULL on out of memory. */
json_t *objbuild_controller_refs(const json_t *owner, const char *kind);

/* The head service selector labels {ray.io/cluster, ray.io/node-type: head, ray.io/identifier,
 * app.kubernetes.io/name (head template's label of that key wins), app.kubernetes.io/created-by}.
 */
json_t *objbuild_head_service_labels(const json_t *rc);

/* The ports the head service derives from the head container (sorted by name, appProtocol tcp,
 * defaults when the container declares none, metrics 8080 always). A JSON array. */
json_t *objbuild_head_ports(const json_t *rc);

/* BuildServiceForHeadPod: the head Service (user headService merged when given). NULL with
 * OBJ_ERR_NO_PORTS in err when no port results. `opts` may be NULL (defaults). */
json_t *objbuild_head_service(const json_t *rc, const objbuild_opts_t *opts, buf_t *err);

/* KubeRay's BuildHeadServiceForRayService: the head Service of cluster rc renamed for the Ray
 * object `owner` of kind `kind` (RayJob or RayService) — `<owner>-head-svc`, labels
 * originated-from-cr-name / -crd, node-type head, identifier `<owner>-head` — and owned by it. */
json_t *objbuild_owner_head_service(const json_t *owner, const char *kind, const json_t *rc,
                                    buf_t *err);

/* True when some worker group has numOfHosts > 1 (the headless worker Service is needed). */
bool objbuild_needs_headless(const json_t *rc);

/* The headless worker Service "<cluster>-headless". */
json_t *objbuild_headless_service(const json_t *rc);

/* True when the RayCluster has annotation ray.io/enable-serve-service: "true". */
bool objbuild_needs_serve_service(const json_t *rc);

/* The RayCluster serve Service "<cluster>-serve-svc"; NULL with OBJ_ERR_NO_SERVE_PORT in err
 * when the head container has no port named serve / serve-*. */
json_t *objbuild_serve_service(const json_t *rc, buf_t *err);

/* The networking.k8s.io/v1 Ingress for the dashboard (headGroupSpec.enableIngress). */
json_t *objbuild_ingress(const json_t *rc);

/* Autoscaler RBAC: ServiceAccount, Role (exact rules), RoleBinding. */
json_t *objbuild_service_account(const json_t *rc);
json_t *objbuild_role(const json_t *rc);
json_t *objbuild_role_binding(const json_t *rc);

/* True when the auth token Secret must be created (mode token, no secretName, not k8s auth). */
bool objbuild_needs_auth_secret(const json_t *rc);

/* The auth token Secret: key auth_token = base64(32 bytes from `rnd`). NULL if rnd fails. */
json_t *objbuild_auth_secret(const json_t *rc, objbuild_rand_fn rnd, void *rnd_ctx);

/* True when the operator-managed GCS PVC is needed (backend rocksdb without claimName). */
bool objbuild_needs_gcs_pvc(const json_t *rc);

/* The GCS PVC "<cluster>-gcs-pvc" (no owner reference with deletionPolicy Retain). */
json_t *objbuild_gcs_pvc(const json_t *rc);

/* The Redis-cleanup batch/v1 Job built from the built head pod `head_pod` (§1.11). */
json_t *objbuild_redis_cleanup_job(const json_t *rc, const json_t *head_pod);

/* Self-test. */
int objbuild_test(bool verbose);

#endif
