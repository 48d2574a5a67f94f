/*
 * autoscale: what Ray's in-tree autoscaler would write to a RayCluster, as a
 * pure function.
 *
 * kubesim plays the autoscaler sidecar for clusters with
 * `spec.enableInTreeAutoscaling: true`. Real Ray derives demand from tasks and
 * actors in the GCS; here an admin call sets a simulated demand per worker
 * group (the number of replicas the workload wants), and this module computes
 * the patch one autoscaler iteration would send, following
 * ../shared/spec/ray-head-api.md §4:
 *
 *  - Reads: the RayCluster (metadata.name, spec.workerGroupSpecs[] groupName,
 * replicas (missing means 1), minReplicas (missing 0), maxReplicas (missing
 * 2147483647), suspend, scaleStrategy.workersToDelete) and the cluster's pods
 * (labels ray.io/cluster, ray.io/node-type=worker, ray.io/group). Pods with
 * metadata.deletionTimestamp count as gone; a pod without
 * status.containerStatuses counts as pending.
 *  - Waits (v1 `safe_to_scale`): while any name in any group's workersToDelete
 * still matches a live pod, it does nothing at all (returns no patch).
 *  - Writes a JSON Patch (RFC 6902, Content-Type application/json-patch+json),
 * only "replace" ops, as Ray does: /spec/workerGroupSpecs/<i>/replicas integer,
 * only when it changes; /spec/workerGroupSpecs/<i>/scaleStrategy
 * {"workersToDelete": [names]} on scale-down, in the same patch as the lowered
 * replicas;
 *                                                {"workersToDelete": []} to
 * clear a list whose pods are all gone. Note: Ray sends "replace" even when
 * scaleStrategy is absent; kube-apiserver's JSON patch library
 * (evanphx/json-patch v4) applies a replace of a missing object member like an
 * add, so kubesim's JSON patch must do the same.
 *  - Target per group: clamp(demand[groupName], minReplicas, maxReplicas); a
 * group absent from the demand keeps clamp(replicas, min, max). Suspended
 * groups are left alone.
 *  - Scale-down victims: first replicas that have no pod at all (lowered
 * without naming anyone), then idle pods: pending pods first, then the newest
 * (creationTimestamp), then by name. A pod annotated
 * AUTOSCALE_BUSY_ANNOTATION="true" runs work and is never chosen, so a group
 * whose pods are all busy does not shrink.
 *  - Not modelled: numOfHosts > 1 (victims are single pods, not whole
 * multi-host replicas), idle timeouts (idle pods go at once), upscaling_speed,
 * autoscaler v2's per-group timeouts.
 */
#ifndef RF_AUTOSCALE_H
#define RF_AUTOSCALE_H

#include <jansson.h>
#include <stdbool.h>

#define AUTOSCALE_BUSY_ANNOTATION "sim.rayfleet.io/ray-busy" /* "true": the pod is not idle */
#define AUTOSCALE_DEFAULT_REPLICAS 1 /* replicas when the field is missing */
#define AUTOSCALE_DEFAULT_MAX_REPLICAS 2147483647 /* the CRD's default maxReplicas */
#define AUTOSCALE_MAX_PODS 100000 /* pods considered per call */

/* Computes one autoscaler iteration.
 *   raycluster: the RayCluster object (borrowed).
 *   pods:       a JSON array of Pod objects, or a PodList object with "items"
 * (borrowed); pods of other clusters are ignored. demand:     an object
 * {groupName: wanted replicas (integer >= 0)} (borrowed); may be NULL.
 *   patch_out:  receives a new JSON Patch array (caller decrefs), or NULL when
 * nothing changes (already at target, or waiting for listed pods to go).
 * Returns 0; ERR_INVAL for NULL arguments, a cluster without metadata.name, a
 * non-object demand or a negative/non-integer demand value; ERR_STATE when
 * spec.enableInTreeAutoscaling is not true; ERR_TOOBIG for more than
 * AUTOSCALE_MAX_PODS pods; ERR_NOMEM. *patch_out is NULL on error. */
int autoscale_compute(const json_t *raycluster, const json_t *pods, const json_t *demand,
                      json_t **patch_out);

/* Self-test; returns 0 when every check passes. */
int autoscale_test(bool verbose);

#endif
