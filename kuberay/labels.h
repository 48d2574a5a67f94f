/*
 * labels: every label, annotation and finalizer name of KubeRay (spec §1.4, §1.5 "Other label/
 * annotation keys", §2, §3, §5), defined once for the model, the watcher, kubesim and the CLI.
 *
 * Where KubeRay's ray-operator/controllers/ray/utils/constant.go names one, its Go constant is
 * given on the line. Values of ray.io/node-type are NAMES_NODE_* in names.h, because names also
 * build pod names and identifiers from them. Every macro is a string literal, so selectors and
 * paths can be composed by literal concatenation (LABEL_CREATED_BY "=" LABEL_CREATED_BY_KUBERAY).
 * labels_is_protected() is the one rule about them: which pod labels a template cannot override.
 */
#ifndef RF_LABELS_H
#define RF_LABELS_H

#include <stdbool.h>

/* ---- Labels on Ray pods and on the objects KubeRay creates ---- */

/* RayClusterLabelKey: the name of the RayCluster a pod, Service or Job belongs to. */
#define LABEL_CLUSTER "ray.io/cluster"
/* RayNodeTypeLabelKey: NAMES_NODE_HEAD, NAMES_NODE_WORKER or NAMES_NODE_REDIS_CLEANUP. */
#define LABEL_NODE_TYPE "ray.io/node-type"
/* RayNodeGroupLabelKey: LABEL_GROUP_HEAD or the worker group's name. */
#define LABEL_GROUP "ray.io/group"
/* RayIDLabelKey: CheckLabel(<cluster>-<node type>). */
#define LABEL_IDENTIFIER "ray.io/identifier"
/* RayNodeLabelKey: LABEL_IS_RAY_NODE_YES on every Ray pod. */
#define LABEL_IS_RAY_NODE "ray.io/is-ray-node"
/* KubernetesApplicationNameLabelKey: LABEL_APP_NAME_KUBERAY unless the user sets it. */
#define LABEL_APP_NAME "app.kubernetes.io/name"
/* KubernetesCreatedByLabelKey: LABEL_CREATED_BY_KUBERAY. */
#define LABEL_CREATED_BY "app.kubernetes.io/created-by"
/* RayClusterHeadlessServiceLabelKey: on the headless worker Service (multi-host groups). */
#define LABEL_HEADLESS_WORKER_SVC "ray.io/headless-worker-svc"
/* RayOriginatedFromCRNameLabelKey: the name of the RayJob or RayService that made it. */
#define LABEL_ORIGINATED_FROM_CR_NAME "ray.io/originated-from-cr-name"
/* RayOriginatedFromCRDLabelKey: RayCluster, RayJob or RayService. */
#define LABEL_ORIGINATED_FROM_CRD "ray.io/originated-from-crd"
/* RayClusterServingServiceLabelKey: serve pods and Services of RayService clusters. */
#define LABEL_SERVE "ray.io/serve"
/* Every worker: its replica's index in the group (gate RayMultiHostIndexing). */
#define LABEL_REPLICA_INDEX "ray.io/worker-group-replica-index"
/* Multi-host workers: their replica's name, <group>-<rand5>. */
#define LABEL_REPLICA_NAME "ray.io/worker-group-replica-name"
/* Multi-host workers: the host's index in its replica, 0..numOfHosts-1. */
#define LABEL_HOST_INDEX "ray.io/replica-host-index"
/* On a RayJob's RayCluster: the submission mode. */
#define LABEL_JOB_SUBMISSION_MODE "ray.io/job-submission-mode"
/* On a RayCronJob's RayJobs: the RayCronJob's name. */
#define LABEL_CRONJOB_NAME "ray.io/cronjob-name"
/* RayPriorityClassName: the priority class batch schedulers use. */
#define LABEL_PRIORITY_CLASS_NAME "ray.io/priority-class-name"
/* Gang scheduling with a batch scheduler when present. */
#define LABEL_GANG_SCHEDULING "ray.io/gang-scheduling-enabled"
/* Kubernetes' own: the Service an EndpointSlice belongs to. */
#define LABEL_SERVICE_NAME "kubernetes.io/service-name"

/* ---- The fixed label values ---- */

/* The value of LABEL_IS_RAY_NODE. */
#define LABEL_IS_RAY_NODE_YES "yes"
/* ApplicationName: the default of LABEL_APP_NAME. */
#define LABEL_APP_NAME_KUBERAY "kuberay"
/* ComponentName: the value of LABEL_CREATED_BY. */
#define LABEL_CREATED_BY_KUBERAY "kuberay-operator"
/* RayNodeHeadGroupLabelValue: LABEL_GROUP of the head pod. */
#define LABEL_GROUP_HEAD "headgroup"
/* RayOriginatedFromCRDLabelValue(RayJobCRD): LABEL_ORIGINATED_FROM_CRD of a RayJob's objects. */
#define LABEL_CRD_RAYJOB "RayJob"

/* ---- Annotations ---- */

/* RayFTEnabledAnnotationKey: the legacy GCS fault-tolerance switch. */
#define ANN_FT_ENABLED "ray.io/ft-enabled"
/* RayExternalStorageNSAnnotationKey: the Redis namespace with GCS fault tolerance. */
#define ANN_EXTERNAL_STORAGE_NS "ray.io/external-storage-namespace"
/* RayOverwriteContainerCmdAnnotationKey: "true" keeps the user's container command. */
#define ANN_OVERWRITE_CONTAINER_CMD "ray.io/overwrite-container-cmd"
/* The operator version that built the head pod. */
#define ANN_KUBERAY_VERSION "ray.io/kuberay-version"
/* The head pod's hash of the spec it was built from (upgradeStrategy Recreate). */
#define ANN_RECREATE_HASH "ray.io/upgrade-strategy-recreate-hash"
/* EnableServeServiceKey: "true" on a RayCluster creates its serve Service. */
#define ANN_ENABLE_SERVE_SERVICE "ray.io/enable-serve-service"
/* The legacy ingress class, never copied into the Ingress's annotations. */
#define ANN_INGRESS_CLASS "kubernetes.io/ingress.class"
/* "true": a provisioned RayCluster's lost head pod is not recreated (sidecar RayJobs). */
#define ANN_DISABLE_HEAD_RESTART "ray.io/disable-provisioned-head-restart"
/* The Redis cleanup timeout in seconds (integer > 0, default 300). */
#define ANN_FT_DELETION_TIMEOUT "ray.io/gcs-ft-deletion-timeout"
/* HashWithoutReplicasAndWorkersToDeleteKey: a RayService cluster's spec hash. */
#define ANN_HASH_WITHOUT_REPLICAS "ray.io/hash-without-replicas-and-workers-to-delete"
/* NumWorkerGroupsKey: RayService clusters. */
#define ANN_NUM_WORKER_GROUPS "ray.io/num-worker-groups"
/* RayService: a Go duration or seconds before an initializing cluster is abandoned. */
#define ANN_INITIALIZING_TIMEOUT "ray.io/initializing-timeout"
/* On a RayCronJob's RayJobs: the scheduled time (RFC 3339 UTC). */
#define ANN_CRONJOB_SCHEDULED_TIMESTAMP "ray.io/cronjob-scheduled-timestamp"

/* ---- Finalizers ---- */

/* GCSFaultToleranceRedisCleanupFinalizer: RayCluster with Redis GCS fault tolerance. */
#define FINALIZER_GCS_FT_REDIS_CLEANUP "ray.io/gcs-ft-redis-cleanup-finalizer"
/* RayJobStopJobFinalizer: RayJob. */
#define FINALIZER_RAYJOB "ray.io/rayjob-finalizer"
/* RayService. */
#define FINALIZER_RAYSERVICE "ray.io/rayservice-finalizer"

/* True when `key` is one of the pod labels that template and group labels cannot override
 * (LABEL_NODE_TYPE, LABEL_GROUP, LABEL_CLUSTER; spec §1.4). False for NULL. */
bool labels_is_protected(const char *key);

#endif
