/*
 * demand: what a RayCluster, RayJob or RayService needs of a member cluster at least, as a list of
 * pods (fleet_demand_t, member.h): the head, and per worker group its minimum (in-tree autoscaling
 * on: minReplicas, else the desired replicas clamped to min/max; × numOfHosts; a suspended group
 * none), a RayJob's submitter pod in K8sJobMode (its submitterPodTemplate or KubeRay's default
 * submitter, built by rayjob_submitter_job) and in SidecarMode the submitter container added to the
 * head pod. The object's own spec.suspend is not looked at: the demand is what it needs to run.
 *
 * A pod's request is counted as the kube-scheduler counts it (batchsched_add_pod_resources with
 * BATCHSCHED_RES_KUBE, as member.c counts the pods on a node: containers and native sidecars, the
 * largest init container, spec.overhead); one pod. Its nodeSelector is kept; its
 * accelerator type is the nodeSelector's value on the first of FLEET_GPU_TYPE_LABELS, for pods that
 * request accelerators.
 *
 * Bounds: replicas, minReplicas, maxReplicas and numOfHosts must be integers in 0..2147483647
 * (numOfHosts at least 1), and a demand holds at most FLEET_DEMAND_MAX_PODS pods; over either the
 * error names the field and the rule, and nothing is allocated.
 *
 * Purity: no I/O, no clock, no globals. The input is borrowed.
 */
#ifndef RF_FLEET_DEMAND_H
#define RF_FLEET_DEMAND_H

#include "buf.h"
#include "member.h"

#include <jansson.h>
#include <stdbool.h>

/* Pods per demand (the scheduler's --max-pods-per-cluster default). */
#define FLEET_DEMAND_MAX_PODS 10000

/* The demand of a RayClusterSpec (a RayCluster's .spec). Returns 0 with *out filled (caller frees
 * with fleet_demand_free), or ERR_INVAL with one line in `err` naming the field
 * ("spec.workerGroupSpecs[1].replicas: ..."), ERR_NOMEM. *out is empty on error. */
int fleet_demand_raycluster(const json_t *raycluster_spec, fleet_demand_t *out, buf_t *err);

/* The demand of a RayJob object: its spec.rayClusterSpec plus the submitter (see above). A RayJob
 * with a non-empty spec.clusterSelector: an empty demand with FLEET_DEMAND_EXISTING_CLUSTER set.
 * Errors as fleet_demand_raycluster, fields named from the RayJob ("spec.rayClusterSpec..."). */
int fleet_demand_rayjob(const json_t *rayjob, fleet_demand_t *out, buf_t *err);

/* The demand of a RayService object: its spec.rayClusterConfig. */
int fleet_demand_rayservice(const json_t *rayservice, fleet_demand_t *out, buf_t *err);

/* Frees what the demand owns and empties it. NULL-safe. */
void fleet_demand_free(fleet_demand_t *d);

/* "head", "worker group NAME" or "submitter": how a message names the pod's group, into out[n]. */
void fleet_demand_group_label(const fleet_pod_t *p, char *out, size_t n);

/* Self-test: every upstream sample, hand-checked demands, the bounds. */
int demand_test(bool verbose);

#endif
