/*
 * member: what federation knows of a member cluster and of what a Ray cluster asks of one.
 *
 * A member is a Kubernetes cluster rayfleet may place Ray clusters on. Its capacity is counted
 * per node, as the kube-scheduler would: a node's allocatable minus the requests of the
 * non-terminal pods bound to it (a pod's request per resource is the larger of the sum of its
 * containers' and its largest init container's, a limit filling a missing request, as
 * batchsched_add_pod_resources computes it with BATCHSCHED_RES_KUBE, which adds pod overhead and
 * native sidecars as kube does). Cordoned (spec.unschedulable) and not-Ready nodes
 * offer nothing. A node's accelerator type is the value of the first of FLEET_GPU_TYPE_LABELS it
 * carries.
 *
 * A demand is the list of pods a Ray cluster needs at least: the head, and per worker group its
 * minimum (in-tree autoscaling: minReplicas, else replicas; × numOfHosts; suspended groups none),
 * each with its requests, nodeSelector and accelerator type (from the pod's nodeSelector on one
 * of FLEET_GPU_TYPE_LABELS). A RayJob's demand adds its submitter pod in K8sJobMode.
 *
 * Purity: no I/O, no clock, no globals. Trees are borrowed unless said otherwise.
 */
#ifndef RF_FLEET_MEMBER_H
#define RF_FLEET_MEMBER_H

#include "buf.h"
#include "res.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Node labels naming the accelerator type, in the order they are looked for. */
#define FLEET_GPU_TYPE_LABELS                                                                      \
    {                                                                                              \
        "nvidia.com/gpu.product", "cloud.google.com/gke-accelerator",                              \
            "node.kubernetes.io/instance-type", NULL                                               \
    }

typedef struct {
    char *name; /* the node's name (owned) */
    json_t *labels; /* its labels (owned; {} when none) */
    const char *gpu_type; /* the accelerator type: points into labels, or NULL */
    fleet_res_t alloc; /* status.allocatable (pods included) */
    fleet_res_t used; /* requests of the non-terminal pods bound to it, one pod each */
    bool schedulable; /* Ready and not cordoned */
} fleet_node_t;

typedef struct {
    char *name; /* the member's name, as in the configuration (owned) */
    json_t *labels; /* the member's labels from the configuration (owned; {} when none) */
    fleet_node_t *nodes; /* its nodes (owned) */
    size_t nnodes;
    json_t *by_name; /* node name -> its index in nodes (owned; jansson's hash table), kept by
                      * fleet_member_add_node(); NULL (a member built by hand): names scanned */
    fleet_res_t alloc; /* sum over schedulable nodes */
    fleet_res_t used; /* sum over schedulable nodes */
    bool healthy; /* answering its API: no new placements when false */
} fleet_member_t;

typedef struct {
    fleet_res_t req; /* what the pod requests */
    json_t *node_selector; /* its nodeSelector (owned; NULL when none) */
    char *gpu_type; /* the accelerator type it asks for (owned; NULL: any) */
    char *group; /* "head", the worker group's name, or "submitter" (owned) */
} fleet_pod_t;

typedef struct {
    fleet_pod_t *pods; /* owned */
    size_t npods;
    fleet_res_t total; /* the sum of the pods' requests (pods counted) */
    unsigned flags; /* FLEET_DEMAND_* */
} fleet_demand_t;

/* fleet_demand_t.flags: a RayJob with spec.clusterSelector runs on an existing RayCluster and
 * creates no pod of its own (its demand is empty; it goes where that cluster is). */
#define FLEET_DEMAND_EXISTING_CLUSTER 0x1u

/* ---- building a member from its Node and Pod objects (member.c) ---- */

/* Starts an empty member `name` with the configuration's `labels` (borrowed, copied; NULL: {}),
 * healthy, no nodes. Returns 0, ERR_INVAL (no name) or ERR_NOMEM. */
int fleet_member_init(fleet_member_t *m, const char *name, const json_t *labels);

/* Adds a Node object (or a projection with the same paths): metadata.name and .labels,
 * status.allocatable, spec.unschedulable, the Ready condition (status.conditions). A node of a
 * name already added replaces nothing and is refused (ERR_EXISTS). Returns 0, or ERR_INVAL with
 * one line in `err` naming the field and rule (no name, allocatable not a map of quantities). */
int fleet_member_add_node(fleet_member_t *m, const json_t *node, buf_t *err);

/* Adds a Pod object (or a projection: spec.nodeName, status.phase, spec.containers[],
 * spec.initContainers[] (name, restartPolicy, resources), spec.overhead): a non-terminal pod
 * (phase neither Succeeded nor Failed) bound to a node of the member adds its requests
 * (batchsched_add_pod_resources' BATCHSCHED_RES_KUBE rule) and one pod to that node's `used`.
 * Others add nothing. Returns 0, or ERR_INVAL naming the field (a quantity that does not
 * parse). */
int fleet_member_add_pod(fleet_member_t *m, const json_t *pod, buf_t *err);

/* The node called `name`, or NULL: a hash lookup (by_name), so adding P pods over N nodes costs
 * O(P + N). */
fleet_node_t *fleet_member_node(const fleet_member_t *m, const char *name);

/* Sums alloc and used over the schedulable nodes into m->alloc and m->used; returns how many
 * nodes are schedulable. Call after the last add (adding after it needs another finish). */
size_t fleet_member_finish(fleet_member_t *m);

/* Frees what the member owns and zeroes it. */
void fleet_member_free(fleet_member_t *m);

#endif
