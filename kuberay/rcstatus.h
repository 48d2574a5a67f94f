/*
 * rcstatus: KubeRay's RayCluster status calculation (calculateStatus), its "consistent compare",
 * and the pure pod-scaling decisions of reconcilePods (spec §1.9, §1.10, §1.12).
 *
 * rcstatus_calculate() takes the RayCluster object, the observed pods (all pods labelled
 * ray.io/cluster=<name>), the observed head services, the reconcile error of this pass (its
 * ReplicaFailure reason and text, or NULL), and the current time, and returns the new status tree.
 * rcstatus_changed() says whether the status must be written (state, reason, the 5 replica
 * counters, endpoints, head and conditions; desired resources and lastUpdateTime are ignored).
 * rcstatus_scale_group() decides, for one single-host worker group, which pods to delete and how
 * many to create, exactly as reconcilePods does.
 *
 * All functions are pure; results are new references the caller json_decref()s.
 */
#ifndef RF_RCSTATUS_H
#define RF_RCSTATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/* Condition types, reasons and messages (apis/ray/v1/raycluster_types.go). */
#define RCS_COND_HEAD_READY "HeadPodReady"
#define RCS_COND_PROVISIONED "RayClusterProvisioned"
#define RCS_COND_REPLICA_FAILURE "RayClusterReplicaFailure"
#define RCS_COND_SUSPENDING "RayClusterSuspending"
#define RCS_COND_SUSPENDED "RayClusterSuspended"
#define RCS_REASON_HEAD_NOT_FOUND "HeadPodNotFound"
#define RCS_REASON_HEAD_READY "HeadPodRunningAndReady"
#define RCS_REASON_UNKNOWN "Unknown"
#define RCS_REASON_FIRST_READY "AllPodRunningAndReadyFirstTime"
#define RCS_REASON_PROVISIONING "RayClusterPodsProvisioning"
#define RCS_MSG_HEAD_NOT_FOUND "Head Pod not found"
#define RCS_MSG_FIRST_READY "All Ray Pods are ready for the first time"
#define RCS_MSG_PROVISIONING "RayCluster Pods are being provisioned for first time"
#define RCS_MSG_SUSPENDED "RayCluster has been suspended"
#define RCS_STATE_READY "ready"
#define RCS_STATE_SUSPENDED "suspended"
/* CalculateMaxReplicas saturates here. */
#define RCS_MAX_REPLICAS 2147483647LL

/* The reconcile error of this pass, as calculateStatus sees it. */
typedef struct {
    const char *reason; /* ReplicaFailure reason (FailedCreateWorkerPod, ...) or NULL */
    const char *message; /* the error text */
} rcstatus_err_t;

/* calculateStatus. `rc` the RayCluster (its current status is the starting point), `pods` an
 * array of the cluster's pods, `head_services` an array of services with the head-service
 * selector labels, `err` NULL when the reconcile succeeded, `now` an RFC 3339 time. Returns the
 * new status object, or NULL with KubeRay's error text in `errbuf` (no/multiple head service,
 * empty ClusterIP) or on NOMEM. */
json_t *rcstatus_calculate(const json_t *rc, const json_t *pods, const json_t *head_services,
                           const rcstatus_err_t *err, const char *now, buf_t *errbuf);

/* InconsistentRayClusterStatus: true when `old_status` and `new_status` differ in a field that
 * warrants a write. NULLs count as empty objects. */
bool rcstatus_changed(const json_t *old_status, const json_t *new_status);

/* The replicas of worker group `wg` as GetWorkerGroupDesiredReplicas clamps them, before
 * numOfHosts and suspend: maxReplicas when minReplicas > maxReplicas, minReplicas when replicas
 * is unset or below it, maxReplicas when above it, else replicas. */
int64_t rcstatus_group_replicas(const json_t *wg);

/* GetWorkerGroupDesiredReplicas: 0 when the group is suspended, else rcstatus_group_replicas()
 * x numOfHosts (as set: 0 hosts want 0 pods). */
int64_t rcstatus_group_desired(const json_t *wg);

/* The worker pods the reconciler keeps for group `wg` of RayCluster `rc`: 0 when the cluster is
 * suspended (reconcilePods deletes every pod), else rcstatus_group_desired(wg): the count of the
 * scheduler's desired rows and of `rayfleetctl explain` and `drift`. */
int64_t rcstatus_group_wanted(const json_t *rc, const json_t *wg);

/* The head pods the reconciler keeps for RayCluster `rc`: 0 when suspended, else 1. */
int64_t rcstatus_head_wanted(const json_t *rc);

/* shouldDeletePod: Failed/Succeeded, or Running with the Ray container (containers[0] name)
 * terminated and restartPolicy Never. */
bool rcstatus_should_delete_pod(const json_t *pod);

/* The decision for one single-host worker group. */
typedef struct {
    json_t *delete_names; /* array of pod names to delete, in order */
    int64_t create; /* pods to create (0 when unhealthy pods were deleted this pass) */
    bool unhealthy; /* unhealthy pods were deleted: reconcile returns "delete N unhealthy worker
                       Pods" */
} rcstatus_scale_t;

/* reconcilePods for one group: `pods` the group's observed pods (informer order), `autoscaling`
 * enableInTreeAutoscaling, `random_delete` env ENABLE_RANDOM_POD_DELETE=true. Fills *out (caller
 * releases with rcstatus_scale_free). Returns 0 or ERR_NOMEM. */
int rcstatus_scale_group(const json_t *wg, const json_t *pods, bool autoscaling, bool random_delete,
                         rcstatus_scale_t *out);
void rcstatus_scale_free(rcstatus_scale_t *s);

/* Parses a Kubernetes quantity into milli-units. Returns 0 or ERR_INVAL. *binary is set when
 * the suffix is binary (Ki, Mi, ...). */
int rcstatus_parse_quantity(const char *s, int64_t *milli, bool *binary);

/* Formats milli-units as Kubernetes canonicalizes a quantity of that format into `out`. */
void rcstatus_format_quantity(int64_t milli, bool binary, char *out, size_t n);

/* Self-test. */
int rcstatus_test(bool verbose);

#endif
