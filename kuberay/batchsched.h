/*
 * batchsched: KubeRay's batch-scheduler plugins (../shared/spec/kuberay-behavior.md §4.3,
 * KubeRay `controllers/ray/batchscheduler/`) as pure functions on jansson trees.
 *
 * The operator picks one plugin (--batch-scheduler volcano | yunikorn | kai-scheduler |
 * scheduler-plugins; deprecated enableBatchScheduler = volcano). Its hooks:
 *   - AddMetadataToChildResource (batchsched_add_metadata): labels, annotations and schedulerName
 *     on a head/worker Pod (parent: the RayCluster), on a RayJob's submitter PodTemplateSpec
 *     (parent: the RayJob, group "submittergroup") and on the RayCluster a RayJob creates in
 *     K8sJobMode (parent: the RayJob; a RayCluster child gets no schedulerName);
 *   - DoBatchSchedulingOnSubmission (batchsched_podgroup, batchsched_check_rayjob): the PodGroup
 *     the plugin wants before pods are created (Volcano `scheduling.volcano.sh/v1beta1` PodGroup
 *     `ray-<name>-pg`; scheduler-plugins `scheduling.x-k8s.io/v1alpha1` PodGroup `<cluster>` when
 *     the RayCluster has label `ray.io/gang-scheduling-enabled`; YuniKorn and KAI none), and KAI's
 *     refusal of a RayJob in K8sJobMode.
 *
 * Resource sums are KubeRay's CalculatePodResource / CalculateDesiredResources /
 * CalculateMinResources: per container the requests, a limit filling a missing request; every
 * resource name; quantities parsed and formatted by rcstatus_parse_quantity /
 * rcstatus_format_quantity (a sum keeps the format of its first non-zero summand, as
 * Quantity.Add does).
 *
 * Purity: no I/O, no clock, no globals. Inputs are borrowed and never modified unless named as
 * the output; errors append one line to `err` (may be NULL).
 */
#ifndef RF_BATCHSCHED_H
#define RF_BATCHSCHED_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The plugins, by their --batch-scheduler names. */
typedef enum {
    BATCHSCHED_NONE = 0,
    BATCHSCHED_VOLCANO, /* "volcano" */
    BATCHSCHED_YUNIKORN, /* "yunikorn" */
    BATCHSCHED_KAI, /* "kai-scheduler" */
    BATCHSCHED_SCHEDULER_PLUGINS, /* "scheduler-plugins" */
    /* Kubernetes workload-aware scheduling, selected by the feature gate KubernetesWAS (never by
     * --batch-scheduler, with which the gate is refused): KubeRay's "kubernetes-was-v1alpha2" */
    BATCHSCHED_KUBERNETES_WAS
} batchsched_t;

/* Label and annotation keys (Volcano, YuniKorn, KAI, scheduler-plugins API constants). */
#define BATCHSCHED_VOLCANO_QUEUE_LABEL "volcano.sh/queue-name"
#define BATCHSCHED_VOLCANO_TOPOLOGY_MODE_LABEL "volcano.sh/network-topology-mode"
#define BATCHSCHED_VOLCANO_TOPOLOGY_TIER_LABEL "volcano.sh/network-topology-highest-tier-allowed"
/* Volcano KubeGroupNameAnnotationKey and TaskSpecKey. */
#define BATCHSCHED_VOLCANO_GROUP_ANN "scheduling.k8s.io/group-name"
#define BATCHSCHED_VOLCANO_TASK_SPEC_ANN "volcano.sh/task-spec"
#define BATCHSCHED_YUNIKORN_APP_ID_LABEL "yunikorn.apache.org/app-id"
#define BATCHSCHED_YUNIKORN_QUEUE_LABEL "yunikorn.apache.org/queue"
#define BATCHSCHED_YUNIKORN_POD_APP_ID_LABEL "applicationId"
#define BATCHSCHED_YUNIKORN_POD_QUEUE_LABEL "queue"
#define BATCHSCHED_YUNIKORN_TASK_GROUPS_ANN "yunikorn.apache.org/task-groups"
#define BATCHSCHED_YUNIKORN_TASK_GROUP_NAME_ANN "yunikorn.apache.org/task-group-name"
#define BATCHSCHED_KAI_QUEUE_LABEL "kai.scheduler/queue"
#define BATCHSCHED_SP_POD_GROUP_LABEL "scheduling.x-k8s.io/pod-group"
/* Kubernetes WAS (KubeRay batchscheduler/kubernetes-was/v1alpha2). */
#define BATCHSCHED_WAS_NAME "kubernetes-was-v1alpha2"
#define BATCHSCHED_WAS_GROUP "scheduling.k8s.io"
#define BATCHSCHED_WAS_VERSION "v1alpha2"
#define BATCHSCHED_WAS_API BATCHSCHED_WAS_GROUP "/" BATCHSCHED_WAS_VERSION
#define BATCHSCHED_WAS_SCHEDULER "default-scheduler" /* corev1.DefaultSchedulerName */
#define BATCHSCHED_WAS_TEMPLATE "cluster" /* the one PodGroupTemplate: the whole RayCluster */
#define BATCHSCHED_WAS_FINALIZER "scheduling.k8s.io/podgroup-protection"
#define BATCHSCHED_WAS_SKIP_LABEL "gang scheduling not enabled on RayCluster"
#define BATCHSCHED_WAS_SKIP_AUTOSCALING "autoscaling is not yet supported"
/* A PodGroup written for a gang is not read again for that gang sooner than this (controllers'
 * "ensured" cache; KubeRay reads it from its informer cache at every reconcile). */
#define BATCHSCHED_REREAD_MS 60000
/* The group name of a RayJob's submitter (Volcano task spec). */
#define BATCHSCHED_SUBMITTER_GROUP "submittergroup"
/* KAI's refusal of a RayJob in K8sJobMode (DoBatchSchedulingOnSubmission). */
#define BATCHSCHED_KAI_K8SJOB_MSG                                                                  \
    "KAI-Scheduler does not support RayJob with K8sJobMode: the submitter pod is created after "   \
    "RayCluster is ready, preventing proper gang scheduling"

/* Parses a --batch-scheduler value: "" or NULL → BATCHSCHED_NONE. Returns 0 or ERR_INVAL
 * (unknown name; *out untouched). */
int batchsched_parse(const char *name, batchsched_t *out);

/* The --batch-scheduler name ("volcano", ...; "" for NONE). */
const char *batchsched_name(batchsched_t b);

/* The schedulerName the plugin writes into pods ("volcano", "yunikorn", "kai-scheduler",
 * "scheduler-plugins-scheduler"; NULL for NONE). */
const char *batchsched_scheduler_name(batchsched_t b);

/* AddMetadataToChildResource: adds the plugin's labels/annotations to child.metadata and, unless
 * the child's kind is "RayCluster", spec.schedulerName. `parent` is the RayCluster (pods) or the
 * RayJob (submitter template, RayJob-created RayCluster); `group` the head group "headgroup", the
 * worker group name or "submittergroup". NONE, and scheduler-plugins with a RayJob parent:
 * nothing. Kubernetes WAS: only for a RayCluster parent that is not skipped
 * (batchsched_was_skip_reason), schedulerName default-scheduler and
 * spec.schedulingGroup.podGroupName <cluster>-cluster. Returns 0 or ERR_NOMEM. */
int batchsched_add_metadata(batchsched_t b, const json_t *parent, json_t *child, const char *group);

/* batchsched_add_pod_resources' flags. 0: KubeRay's CalculatePodResource (the regular containers
 * only). BATCHSCHED_RES_KUBE: Kubernetes' PodRequests, what the kube-scheduler counts on a node
 * (per resource the larger of the regular containers plus native sidecars and of the largest init
 * container plus the sidecars before it, plus spec.overhead); federation's member capacity. */
#define BATCHSCHED_RES_KUBE 1u

/* The requests of a PodSpec (per container the requests, a limit filling a missing request),
 * summed by the rule of `flags`, times `times`, added into `acc` (an object name → quantity
 * string). Returns 0, ERR_INVAL (a quantity that does not parse; named in err) or ERR_NOMEM. */
int batchsched_add_pod_resources(json_t *acc, const json_t *podspec, int64_t times, unsigned flags,
                                 buf_t *err);

/* The gang size and resources of a RayClusterSpec as Volcano computes them: without in-tree
 * autoscaling the desired workers (suspended groups 0, × numOfHosts) + 1 and the desired
 * resources (head + each group's pod × its desired pods); with autoscaling minReplicas ×
 * numOfHosts + 1 and the minimum resources. Stores a new object in *resources_out. Returns 0 or
 * an error of batchsched_add_pod_resources. */
int batchsched_cluster_gang(const json_t *rcspec, int64_t *min_member, json_t **resources_out,
                            buf_t *err);

/* The PodGroup name of a Volcano parent: "ray-<job>-pg" for an object labelled as originated
 * from a RayJob (ray.io/originated-from-crd=RayJob, ray.io/originated-from-cr-name=<job>), else
 * "ray-<name>-pg". Appended to `out`. */
int batchsched_volcano_pg_name(const json_t *obj, buf_t *out);

/* The PodGroup the plugin wants for `raycluster` before its pods are created (reconcilePods):
 * Volcano: `ray-<name>-pg` controlled by the RayCluster (none for a RayJob-created cluster: the
 * RayJob owns it); scheduler-plugins: `<name>` with a (non-controller) owner reference, only with
 * label ray.io/gang-scheduling-enabled. *pg_out is NULL when no PodGroup is wanted. Returns 0,
 * ERR_INVAL (message in err: a quantity, a non-integer network-topology tier) or ERR_NOMEM. */
int batchsched_podgroup(batchsched_t b, const json_t *raycluster, json_t **pg_out, buf_t *err);

/* Volcano's RayJob PodGroup (DoBatchSchedulingOnSubmission at Initializing): `ray-<job>-pg`
 * controlled by the RayJob, the gang of spec.rayClusterSpec with the submitter's resources
 * (`submitter_podspec`, the submitter pod spec KubeRay would use: its Job template for
 * K8sJobMode, a pod spec holding just the submitter container for SidecarMode; NULL none) added to
 * minResources but not to minMember. A RayJob with a clusterSelector: ERR_INVAL with KubeRay's
 * message. Other plugins: *pg_out NULL. */
int batchsched_rayjob_podgroup(batchsched_t b, const json_t *rayjob,
                               const json_t *submitter_podspec, json_t **pg_out, buf_t *err);

/* CleanupOnCompletion (Volcano, RayJob terminal): the RayJob's PodGroup resized to the live
 * cluster: `cluster` (the RayCluster named status.rayClusterName) present and not being deleted:
 * its gang (no submitter); absent or being deleted: minMember 0, minResources {}. *pg_out NULL
 * for other plugins, a RayJob with a clusterSelector or without status.rayClusterName. */
int batchsched_rayjob_podgroup_final(batchsched_t b, const json_t *rayjob, const json_t *cluster,
                                     json_t **pg_out, buf_t *err);

/* syncPodGroup's decision. */
typedef enum {
    BATCHSCHED_SYNC_NONE = 0, /* the live PodGroup is as wanted */
    BATCHSCHED_SYNC_CREATE, /* absent: create `want` */
    BATCHSCHED_SYNC_UPDATE /* differs: update with *obj_out */
} batchsched_sync_t;

/* `live` the PodGroup read (NULL: not found), `want` the one built; `update` false (scheduler-
 * plugins) never updates. For UPDATE *obj_out is a new copy of `live` with want's minMember and
 * minResources (NULL on ERR_NOMEM: the caller fails). */
batchsched_sync_t batchsched_podgroup_sync(const json_t *live, const json_t *want, bool update,
                                           json_t **obj_out);

/* The "ensured" entry of a written PodGroup: "PodGroup/<name>#<minMember>#<minResources>",
 * appended to `out`, so a changed gang is written again. */
int batchsched_podgroup_key(const json_t *pg, buf_t *out);

/* True when the live PodGroup needs an update to `want` (Volcano syncPodGroup: minMember or
 * minResources differ; resources compared by value). */
bool batchsched_podgroup_differs(const json_t *live, const json_t *want);

/* The resource/version of a PodGroup object (`apiVersion` split: group, version, "podgroups"). */
int batchsched_podgroup_api(const json_t *pg, char *group, size_t gsize, char *version,
                            size_t vsize);

/* KAI's DoBatchSchedulingOnSubmission for a RayJob: ERR_INVAL with BATCHSCHED_KAI_K8SJOB_MSG in
 * err when the submission mode is K8sJobMode (the default); 0 otherwise and for other plugins. */
int batchsched_check_rayjob(batchsched_t b, const json_t *rayjob, buf_t *err);

/* ---- Kubernetes WAS (v1alpha2): a Workload <cluster> and a PodGroup <cluster>-cluster ---- */

/* schedulingSkipReason: BATCHSCHED_WAS_SKIP_LABEL when the RayCluster has no label
 * ray.io/gang-scheduling-enabled or its value is "false" in any case (any other value, "" included,
 * enables it, as KubeRay's v1alpha2 plugin reads it); BATCHSCHED_WAS_SKIP_AUTOSCALING with
 * spec.enableInTreeAutoscaling; NULL: the cluster is gang scheduled. */
const char *batchsched_was_skip_reason(const json_t *raycluster);

/* The gang's minCount: 1 + CalculateDesiredReplicas (suspended groups 0, × numOfHosts). */
int64_t batchsched_was_min_count(const json_t *raycluster);

/* The PodGroup name "<cluster>-cluster" appended to `out`. */
int batchsched_was_podgroup_name(const char *cluster, buf_t *out);

/* buildSchedulingResources: the Workload <cluster> (label ray.io/cluster, spec.controllerRef
 * {apiGroup ray.io, kind RayCluster, name}, one podGroupTemplate "cluster" with the gang policy)
 * and the PodGroup <cluster>-cluster (same label, spec.podGroupTemplateRef.workload
 * {workloadName, podGroupTemplateName}, the same policy), both controlled by the RayCluster.
 * Returns 0 or ERR_NOMEM (both outputs NULL). */
int batchsched_was_objects(const json_t *raycluster, json_t **workload_out, json_t **podgroup_out);

/* isWorkloadStale: not exactly one template, another template name, no gang, or another
 * minCount than `want`'s. */
bool batchsched_was_workload_stale(const json_t *live, const json_t *want);

/* syncPodGroup's test: the live PodGroup has no gang or another minCount than `want`'s. */
bool batchsched_was_podgroup_stale(const json_t *live, const json_t *want);

/* metav1.IsControlledBy: `obj` has a controller ownerReference with the RayCluster's uid. */
bool batchsched_was_controlled(const json_t *obj, const json_t *raycluster);

/* The PodGroup without the protection finalizer (a new copy, for an update), or NULL when it
 * does not carry it (*nomem set when the copy failed). */
json_t *batchsched_was_unprotected(const json_t *podgroup, bool *nomem);

/* Self-test. */
int batchsched_test(bool verbose);

#endif
