/*
 * reconcile: the RayCluster reconciler, KubeRay's raycluster_controller.go on rayfleet's parts:
 * the RayCluster kind and its stages on the controller runtime (ctrl/ctrl.h), which runs the
 * passes, windows and fences the writes, audits them, records Events, keeps the causes, the
 * expectations, the status guard and the desired rows.
 *
 * One pass for one key ("cluster/namespace/name"), started by the work queue (workq.h):
 *   1. the runtime reads the RayCluster from observed.db (read-only connection; the watcher is
 *      its only writer). NotFound: the key's state is forgotten, done. Then (s_begin) the pods,
 *      services and Jobs are read; `managedBy` other than ray.io/kuberay-operator: done.
 *   2. default nil rayStartParams, validate (validate.h) with KubeRay's Warning events
 *      InvalidRayClusterMetadata / InvalidRayClusterSpec / the UpgradeStrategy message (no
 *      requeue) and InvalidRayClusterStatus (error requeue);
 *   2b. GCS fault tolerance with Redis (spec §1.11; FT = annotation ray.io/ft-enabled "true" or
 *      gcsFaultToleranceOptions, backend redis, cfg.no_redis_cleanup false): not deleting and
 *      without the finalizer ray.io/gcs-ft-redis-cleanup-finalizer -> merge-patch it in, requeue
 *      2 s, nothing else. Deleting -> delete the head and worker pods; a head pod still listed
 *      -> requeue 10 s; deletion older than ray.io/gcs-ft-deletion-timeout (else 300 s) ->
 *      remove the finalizer with Warning ForceDeletedStuckCluster; a cleanup Job (labels
 *      ray.io/cluster, ray.io/node-type=redis-cleanup) finished (Complete/Failed/FailureTarget)
 *      -> remove the finalizer, unfinished -> requeue 2 s; none -> create it (objbuild; events
 *      CreatedRedisCleanupJob / FailedToCreateRedisCleanupJob), requeue 2 s. A deleting rocksdb
 *      cluster still holding the finalizer has it removed. Any other deleting cluster: done.
 *   3. the sub-reconcilers in KubeRay's order, stopping at the first error: autoscaler
 *      ServiceAccount, Role, RoleBinding, Ingress, auth Secret, head Service, headless Service,
 *      serve Service, GCS PVC, pods. Each stage issues its writes asynchronously through k8s.h
 *      and the pass moves on when they have all answered;
 *   4. calculateStatus (rcstatus.h) on what observed.db says now, written through /status only
 *      when rcstatus_changed() says so;
 *   5. workq_done(): an error -> rate-limited requeue; a status write or an unmet expectation ->
 *      RECONCILE_SHORT_REQUEUE_MS; otherwise the configured period (300 s).
 *
 * Autoscaler ServiceAccount: a user-named head serviceAccountName is read (GET); NotFound ->
 * Warning AutoscalerServiceAccountNotFound and the pass fails. Ingress: read every pass (GET);
 * absent -> created (CreatedIngress); owned by the RayCluster and labels, annotations or spec
 * differ -> updated (UpdatedIngress / FailedToUpdateIngress; an unset desired ingressClassName
 * adopts the live one); not owned -> left alone with Warning FailedToCreateIngress.
 *
 * Pods (reconcilePods, spec §1.9/§1.10): Suspending deletes every pod (event DeletedPod);
 * Suspended creates nothing; upgradeStrategy Recreate: the head pod carries
 * ray.io/upgrade-strategy-recreate-hash (reconcile_spec_hash of the defaulted spec, set on every
 * head pod); with exactly one head pod whose ray.io/kuberay-version is this operator's (another
 * version: its two annotations are patched, nothing recreated) and whose hash differs, every
 * non-terminating pod is deleted (event DeletedPod) and the pass creates nothing; the next passes
 * recreate the pods once the deletions are observed. None (default): pods are never recreated; one
 * unhealthy head is deleted (DeletedHeadPod, error), none is created (CreatedHeadPod) unless
 * RayClusterProvisioned is True and the annotation ray.io/disable-provisioned-head-restart is
 * "true"; per worker group rcstatus_scale_group() decides deletions (unhealthy pods first, then
 * every name in workersToDelete, then surplus only with autoscaling off) and creations (lowest
 * unused ray.io/worker-group-replica-index). Multi-host groups (numOfHosts > 1) create and delete
 * whole replicas.
 *
 * Expectations (KubeRay's scale_expectations.go, by name): every pod this reconciler creates or
 * deletes is remembered per (key, group) with the time; a group is skipped until each created
 * name is visible in observed.db (or RECONCILE_CREATE_EXPECT_MS passed) and each deleted name
 * is gone from it (or RECONCILE_DELETE_EXPECT_MS passed). Since the watcher publishes only after
 * its rows are committed, a pod is never created twice while its own watch event is in flight,
 * whatever the watch delay. Objects the watcher does not observe (ServiceAccount, Role,
 * RoleBinding, Secret, Ingress, PVC) are created once per RayCluster uid (AlreadyExists is
 * success), as KubeRay never updates them.
 *
 * Desired objects (issue 6). When cfg.desired is set, each pass that gets past validation (and
 * is not for a deleting RayCluster) records the children it wants in desired_objects: one row per
 * wanted object (autoscaler ServiceAccount, Role, RoleBinding, Ingress, auth Secret, head,
 * headless and serve Services, GCS PVC, by name) and one row per pod group (child kind "Pod",
 * child name "head" or the worker group's name, JSON {"want", "numOfHosts", "template_hash"}),
 * each with a sentence of reason, the pass's correlation id and the decision time. A hash of the
 * set is kept per key, and the rows are rewritten (the owner's rows deleted, then the set put, in
 * the same store batch) only when it changed, so a steady-state pass writes nothing. A pass that
 * finds the RayCluster gone deletes its rows.
 *
 * Every write, Kubernetes Events included, leaves an audit row (actlog.h) with the pass's cause
 * (the triggering bus event, else the observed RayCluster's generation and resourceVersion) and
 * its correlation id. Events are core/v1 Event objects from component raycluster-controller.
 */
#ifndef RF_RECONCILE_H
#define RF_RECONCILE_H

#include "actlog.h"
#include "ctrl.h"
#include "envwire.h"
#include "hash.h"
#include "k8s.h"
#include "labels.h"
#include "loop.h"
#include "podbuild.h"
#include "store.h"
#include "validate.h"
#include "workq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECONCILE_REQUEUE_MS CTRL_REQUEUE_MS /* RAYCLUSTER_DEFAULT_REQUEUE_SECONDS default */
#define RECONCILE_SHORT_REQUEUE_MS CTRL_SHORT_REQUEUE_MS /* DefaultRequeueDuration */
#define RECONCILE_CREATE_EXPECT_MS EXPECT_CREATE_MS /* a create counts as seen after this */
#define RECONCILE_DELETE_EXPECT_MS EXPECT_DELETE_MS /* a delete counts as seen after this */
#define RECONCILE_KEY_MAX CTRL_KEY_MAX /* longest key */
#define RECONCILE_MAX_CREATES_PER_GROUP 1000 /* pods created for one group in one pass */
#define RECONCILE_PASS_WINDOW CTRL_PASS_WINDOW /* requests of one pass in flight at once */
/* Clean validations and Recreate hashes are remembered by (uid, resourceVersion) as the
 * runtime's memo (CTRL_MAX_MEMOS keys; issue 7's fleet is 10,000 RayClusters per scheduler). */
#define RECONCILE_GROUP "ray.io" /* API group of the RayCluster kind */
#define RECONCILE_VERSION "v1" /* its API version */
#define RECONCILE_KIND "RayCluster" /* the kind */
#define RECONCILE_RESOURCE "rayclusters" /* its resource */
#define RECONCILE_COMPONENT "raycluster-controller" /* Event source component */
#define RECONCILE_INSTANCE "rayfleet-scheduler" /* Event reportingInstance */
#define RECONCILE_MANAGED_BY "ray.io/kuberay-operator" /* the only spec.managedBy handled */
#define RECONCILE_HEAD_GROUP "head" /* expectation group of the head pod */
#define RECONCILE_MSG_MAX 4096 /* longest error or event message */
#define RECONCILE_HEAD_GONE_REQUEUE_MS (10 * 1000) /* GCS FT deletion: head pod still listed */
#define RECONCILE_FT_TIMEOUT_S 300 /* default Redis cleanup timeout */
#define RECONCILE_HASH_LEN HASH_SHA1_B32HEX_LEN /* base32hex(sha1) characters */

typedef struct reconciler reconciler_t;

/* Settings; pointers are borrowed and must outlive the reconciler. */
typedef struct {
    const char *cluster; /* member cluster name used in keys and rows (required) */
    store_t *observed; /* observed.db, read-only (required) */
    k8s_client_t *client; /* the member cluster's API client (required) */
    actlog_t *audit; /* audit writer, or NULL */
    const podbuild_opts_t *pod_opts; /* NULL: KubeRay defaults */
    const validate_gates_t *gates; /* NULL: KubeRay defaults */
    bool random_delete; /* ENABLE_RANDOM_POD_DELETE=true */
    bool events; /* emit Kubernetes Events (true in production) */
    int64_t requeue_ms; /* period after a clean pass; 0: RECONCILE_REQUEUE_MS */
    bool no_redis_cleanup; /* ENABLE_GCS_FT_REDIS_CLEANUP=false: no finalizer, no cleanup Job */
    bool head_cluster_ip; /* ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE=true: the head Service not headless
                           */
    store_t *desired; /* scheduler.db (read-write) for desired_objects rows, or NULL: none */
    /* Checked right before every API write of a pass: false (this replica no longer owns the
     * key's shard) fails the write unsent with ERR_STATE and ends the pass. NULL: always owned. */
    bool (*fence)(const char *key, void *arg);
    void *fence_arg; /* handed to fence */
    int64_t max_pods; /* per-cluster pod cap (bounds.h); 0: BOUNDS_MAX_PODS_DEFAULT */
} reconcile_config_t;

/* Counters. */
typedef struct {
    uint64_t passes; /* passes started */
    uint64_t not_found; /* passes whose RayCluster was gone */
    uint64_t invalid; /* passes stopped by validation */
    uint64_t creates; /* create requests sent (pods, services, RBAC, ...) */
    uint64_t deletes; /* delete requests sent */
    uint64_t status_writes; /* /status updates sent */
    uint64_t updates; /* other updates and patches sent (finalizer, head annotations) */
    uint64_t events; /* Events sent */
    uint64_t fenced; /* writes withheld because the fence said the shard was lost */
    uint64_t write_errors; /* writes that failed (AlreadyExists and delete NotFound excluded) */
    uint64_t errors; /* passes that ended with an error */
    uint64_t skipped_groups; /* group passes skipped for unmet expectations */
} reconcile_stats_t;

/* A reconciler for cfg->cluster. Returns NULL on bad settings or out of memory. */
reconciler_t *reconcile_new(loop_t *loop, const reconcile_config_t *cfg);

/* Frees everything, passes in flight included (destroy the k8s client and the work queue first
 * so no callback can come), and NULLs *r_p. NULL-safe. */
void reconcile_destroy(reconciler_t **r_p);

/* The work queue's reconcile function: `arg` is the reconciler. Starts a pass for `key`; the pass
 * calls workq_done() when it ends. */
void reconcile_fn(workq_t *q, const char *key, void *arg);

/* Remembers a bus ObjectChanged as the cause of the next pass of its owner's key and writes that
 * key into out[size]. Returns 0, ERR_INVAL (the event is not about a RayCluster of this
 * reconciler's cluster) or ERR_TOOBIG. */
int reconcile_note_change(reconciler_t *r, const envwire_object_changed_t *oc, char *out,
                          size_t size);

/* The Recreate-strategy hash of a RayCluster spec (spec §1.9/§1.10): base32hex(sha1(JSON(spec')))
 * where spec' is `spec` without every worker group's replicas, minReplicas, maxReplicas and
 * scaleStrategy.workersToDelete, the head and worker templates' tolerations and schedulingGates,
 * and upgradeStrategy. JSON is jansson's compact form with sorted keys, NOT Go's encoding/json
 * of the RayClusterSpec struct (field order, omitempty), so the value differs from KubeRay's;
 * the behaviour (a template or rayVersion change alters it, a replica change does not) is the
 * same. Writes RECONCILE_HASH_LEN characters and a NUL into out[size]. Returns 0, ERR_INVAL,
 * ERR_TOOBIG or ERR_NOMEM. */
int reconcile_spec_hash(const json_t *spec, char *out, size_t size);

/* Fills *out with the counters. */
void reconcile_stats(const reconciler_t *r, reconcile_stats_t *out);

/* The controller runtime running the reconciler's passes (for its ctrl_stats()). */
ctrl_t *reconcile_ctrl(const reconciler_t *r);

/* Self-test: argument errors, expectations, SHA-1 and the Recreate hash, finalizer, time
 * and duration helpers (the behaviour is tested end to end in tests/integration/scheduler and
 * tests/integration/scheduler2). */
int reconcile_test(bool verbose);

#endif
