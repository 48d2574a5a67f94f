/*
 * rayservice: the RayService model (../shared/spec/kuberay-behavior.md §3), pure functions:
 * KubeRay's RayService validation with its exact messages (ValidateRayServiceMetadata,
 * ValidateRayServiceSpec, ValidateClusterUpgradeOptions), the spec hash that decides between an
 * in-place update and a new cluster (GenerateHashWithoutReplicasAndWorkersToDelete, whole and
 * "partial"), and the objects a RayService owns: its RayClusters (constructRayClusterForRayService,
 * modifyRayCluster), its head Service `<rs>-head-svc` and serve Service
 * (BuildHeadServiceForRayService, BuildServeService), the per-cluster serve Services, Gateway and
 * HTTPRoute of an incremental upgrade, and the body of the Serve PUT /api/serve/applications/
 * (serveConfigV2 as JSON).
 *
 * Objects are jansson trees; the caller owns what is returned. Builders return NULL with the reason
 * in `err` (KubeRay's exact text where it has one). No I/O, no clock, no randomness here: the
 * caller names clusters (`<rs>-<rand5>`, see rayjob_random_name()) and supplies the operator
 * version and ENABLE_ZERO_DOWNTIME.
 */
#ifndef RF_RAYSERVICE_H
#define RF_RAYSERVICE_H

#include "buf.h"
#include "labels.h"
#include "objbuild.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAYSERVICE_MAX_NAME 47 /* MaxRayServiceNameLength */
#define RAYSERVICE_FINALIZER FINALIZER_RAYSERVICE
#define RAYSERVICE_ANN_HASH ANN_HASH_WITHOUT_REPLICAS
#define RAYSERVICE_ANN_NUM_GROUPS ANN_NUM_WORKER_GROUPS
#define RAYSERVICE_ANN_VERSION ANN_KUBERAY_VERSION
#define RAYSERVICE_ANN_INIT_TIMEOUT ANN_INITIALIZING_TIMEOUT
#define RAYSERVICE_HASH_MAX 64 /* bytes of a hash string, NUL incl. */
#define RAYSERVICE_DEFAULT_DELETE_DELAY_S 60 /* RayClusterDeletionDelayDuration */
#define RAYSERVICE_UPGRADE_NEW_CLUSTER "NewCluster"
#define RAYSERVICE_UPGRADE_INCREMENTAL "NewClusterWithIncrementalUpgrade"
#define RAYSERVICE_UPGRADE_NONE "None"
#define RAYSERVICE_CRD "RayService" /* RayOriginatedFromCRDLabelValue(RayServiceCRD) */

/* Event reasons of validation (utils.InvalidRayServiceSpec / InvalidRayServiceMetadata; the
 * Warning's message is "<ns>/<name>: <error>"). */
#define RAYSERVICE_EV_INVALID "InvalidRayServiceSpec"
#define RAYSERVICE_EV_INVALID_METADATA "InvalidRayServiceMetadata"

/* Defaults of clusterUpgradeOptions and the Gateway (utils/constant.go). */
#define RAYSERVICE_DEFAULT_MAX_SURGE 100
#define RAYSERVICE_GATEWAY_LISTENER "http"
#define RAYSERVICE_GATEWAY_PORT 80
#define RAYSERVICE_GATEWAY_API "gateway.networking.k8s.io/v1"
#define RAYSERVICE_GATEWAY_GROUP "gateway.networking.k8s.io"

/* BuildServeService's error when a custom serveService and the head container both lack a
 * serve port (without a serveService the error is objbuild's OBJ_ERR_NO_SERVE_PORT). */
#define RAYSERVICE_ERR_NO_SERVE_PORT_CUSTOM                                                        \
    "Please specify the port named 'serve' in the Ray head container or in "                       \
    "RayService.Spec.ServeService"
/* createGateway / the HTTPRoute without clusterUpgradeOptions. */
#define RAYSERVICE_ERR_NO_OPTIONS "Missing RayService ClusterUpgradeOptions during upgrade."

/* KubeRay's ValidateRayServiceMetadata then ValidateRayServiceSpec (the embedded RayCluster spec
 * via validate_spec(); the clusterUpgradeOptions rules when the upgrade type is
 * NewClusterWithIncrementalUpgrade and g->incremental_upgrade). `g` NULL: the defaults. Returns 0
 * or VALIDATE_INVALID with the message appended to msg; ERR_NOMEM / ERR_TOOBIG when the message
 * could not be written. */
int rayservice_validate(const json_t *rs, const validate_gates_t *g, buf_t *msg);

/* rayservice_validate(), also setting *reason (may be NULL) to the Event reason
 * (RAYSERVICE_EV_INVALID_METADATA or RAYSERVICE_EV_INVALID) when invalid, NULL otherwise. */
int rayservice_validate_reason(const json_t *rs, const validate_gates_t *g, const char **reason,
                               buf_t *msg);

/* utils.IsIncrementalUpgradeEnabled: the gate is on and spec.upgradeStrategy.type is
 * NewClusterWithIncrementalUpgrade. `g` NULL: the defaults. */
bool rayservice_incremental(const json_t *rs, const validate_gates_t *g);

/* The hash of a rayClusterConfig (spec.rayClusterConfig) with suspend and upgradeStrategy
 * removed, every worker group's replicas, minReplicas, maxReplicas and
 * scaleStrategy.workersToDelete removed, and the head and worker templates' tolerations and
 * schedulingGates removed (spec §3.4); ngroups < 0: every worker group, else only the first
 * ngroups groups (the "partial" hash of §3.4). base32hex(sha1(canonical JSON: sorted keys,
 * compact)) in upper case, 32 characters, written into out. This is the same text as the
 * scheduler's Recreate hash of the same spec (not Go's encoding/json bytes, so not KubeRay's
 * value; only the behaviour is the same). Returns 0, ERR_INVAL (not an object, NULL out),
 * ERR_RANGE (ngroups > number of groups) or ERR_NOMEM. */
int rayservice_hash(const json_t *cluster_config, long ngroups, char out[RAYSERVICE_HASH_MAX]);

/* isClusterSpecHashEqual(rs, rc, partial) for an existing cluster rc: the annotation
 * RAYSERVICE_ANN_HASH of rc equals the hash of rs's rayClusterConfig; with `partial`, the goal
 * hash is over the first ray.io/num-worker-groups groups of rc (an unreadable count is "equal", a
 * goal with fewer groups "not equal", both as KubeRay). */
bool rayservice_hash_equal(const json_t *rs, const json_t *rc, bool partial);

/* The goal hashes of one RayService, computed once for several comparisons (zero it for each
 * version of the RayService). */
typedef struct {
    bool have_full, have_part;
    int64_t part_groups; /* the group count the partial hash is over */
    char full[RAYSERVICE_HASH_MAX], part[RAYSERVICE_HASH_MAX];
} rayservice_hash_cache_t;

/* rayservice_hash_equal() with the goal hashes kept in `cache` (NULL: none). */
bool rayservice_hash_equal_cached(const json_t *rs, const json_t *rc, bool partial,
                                  rayservice_hash_cache_t *cache);

/* The RayCluster `name` for rs (§3.2 constructRayClusterForRayService): labels = rs labels +
 * originated-from-cr-name / originated-from-crd=RayService; annotations = rs annotations + hash,
 * num-worker-groups, kuberay-version=`version`; spec = rayClusterConfig (spec.suspend true when
 * rs spec.suspend is true, the Kueue case; otherwise the config's own); incremental_pending:
 * worker replicas removed (nil); controller ownerReference to rs (apiVersion ray.io/v1, kind
 * RayService, name, uid, controller true, blockOwnerDeletion true). */
json_t *rayservice_cluster(const json_t *rs, const char *name, const char *version,
                           bool incremental_pending, buf_t *err);

/* The in-place update of observed cluster rc (§3.2 step 8, modifyRayCluster): a copy of rc whose
 * spec is the goal's spec (rayservice_cluster(rs, rc's name, version, false)) except spec.suspend
 * kept from rc, labels and annotations replaced by the goal's; metadata.resourceVersion, uid etc.
 * kept (ready for a PUT). */
json_t *rayservice_cluster_update(const json_t *rs, const json_t *rc, const char *version,
                                  buf_t *err);

/* The RayService's head Service `<rs>-head-svc` pointing at cluster rc (§3.4 RayService
 * Services): rc's head Service (objbuild_head_service()) renamed, in rs's namespace, labels
 * replaced by {originated-from-cr-name, originated-from-crd=RayService, node-type=head,
 * identifier=<rs>-head}, owned by rs. */
json_t *rayservice_head_service(const json_t *rs, const json_t *rc, buf_t *err);

/* spec.serveService.metadata.name or `<rs>-serve-svc` (malloc'd; NULL on out of memory). */
char *rayservice_serve_service_name(const json_t *rs);

/* The serve Service for cluster rc (§3.4, BuildServeService for a RayService): selector
 * {ray.io/cluster: <rc>, ray.io/serve: "true"}, labels {originated-from-cr-name=<rs>,
 * originated-from-crd=RayService, ray.io/serve=<rs>-serve}, ports = rc's head ports named serve
 * or serve-* ({name, port}), type = rayClusterConfig.headGroupSpec.serviceType. With a custom
 * spec.serveService: that Service with its selector replaced, our labels merged over its own,
 * its name (else `<rs>-serve-svc`), rs's namespace, its type (else the default), and for each
 * serve port the user's port of that name unless the head container declares the port itself.
 * Owned by rs. NULL with OBJ_ERR_NO_SERVE_PORT (or RAYSERVICE_ERR_NO_SERVE_PORT_CUSTOM) in err
 * when there is no serve port. This is the non-incremental Service; during an incremental
 * upgrade KubeRay's builder yields the per-cluster one below instead. */
json_t *rayservice_serve_service(const json_t *rs, const json_t *rc, buf_t *err);

/* Incremental: the per-cluster serve Service `<cluster>-serve-svc` (labels originated-from-cr-
 * name=<cluster>, originated-from-crd=RayService, ray.io/serve=<cluster>-serve; selector as
 * above; the custom serveService ignored) owned by the RayCluster rc. */
json_t *rayservice_cluster_serve_service(const json_t *rs, const json_t *rc, buf_t *err);

/* common.GetServePort: rc's head container port named "serve", else 8000. */
long rayservice_serve_port(const json_t *rc);

/* Incremental: Gateway `<rs>-gateway` (gatewayClassName from clusterUpgradeOptions, one HTTP
 * listener "http" on port 80) and HTTPRoute `<rs>-httproute` (§3.5: parentRef the Gateway, one
 * rule PathPrefix "/" with `n` backendRefs (service name svc[i], weight[i], namespace rs's,
 * port `port`)). Both owned by rs. NULL with RAYSERVICE_ERR_NO_OPTIONS in err when rs has no
 * clusterUpgradeOptions (Gateway), or with a message on bad arguments (HTTPRoute). */
json_t *rayservice_gateway(const json_t *rs, buf_t *err);
json_t *rayservice_httproute(const json_t *rs, const char *const *svc, const int *weight, size_t n,
                             long port, buf_t *err);

/* The PUT /api/serve/applications/ body: serveConfigV2 YAML converted to JSON (common/yaml.h;
 * empty: {}), plus "target_capacity" when target_capacity >= 0. NULL + err when the YAML is bad
 * or not a mapping. */
json_t *rayservice_serve_body(const json_t *rs, int target_capacity, buf_t *err);

/* Annotation ray.io/initializing-timeout: Go duration ("10m", "1h30m", "90s", "1.5h") or
 * integer seconds, in milliseconds (rounded up); *ms = 0 when absent or empty. VALIDATE_INVALID
 * when malformed or not positive (validation reports KubeRay's message for it). */
int rayservice_init_timeout_ms(const json_t *rs, int64_t *ms);

/* calculateNumServeEndpointsFromSlices: the ready serve endpoints of `slices` (an array of the
 * serve Service's EndpointSlices; the caller picks them by their kubernetes.io/service-name
 * label): the distinct endpoints[].targetRef.uid whose conditions.ready is true. */
long rayservice_serve_endpoints(const json_t *slices);

/* spec.upgradeStrategy.type or "" when unset (borrowed). */
const char *rayservice_upgrade_type(const json_t *rs);

/* isZeroDowntimeUpgradeEnabled (§3.4): with upgradeStrategy.type set, true for NewCluster (and
 * NewClusterWithIncrementalUpgrade when g->incremental_upgrade), false otherwise; unset: the
 * operator's ENABLE_ZERO_DOWNTIME, `env_enabled` (true unless "false", any case). */
bool rayservice_zero_downtime(const json_t *rs, bool env_enabled, const validate_gates_t *g);

/* spec.rayClusterDeletionDelaySeconds, default 60; a negative value (refused by validation) is
 * 0, which is what KubeRay's deadline in the past amounts to. */
long rayservice_delete_delay_s(const json_t *rs);

/* Self-test: every validation rule with KubeRay's message, the hash's invariants, the builders on
 * every RayService sample of ../shared/kuberay/samples (vllm/ included). */
int rayservice_test(bool verbose);

#endif
