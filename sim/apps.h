/*
 * apps: kubesim's apps/v1 workload controllers (Deployment, ReplicaSet, StatefulSet) over
 * objstore (no HTTP), and the pure parts the API server uses for those kinds: defaults,
 * create/update validation with kube-apiserver's messages, the printer columns of
 * `kubectl get deploy,rs,sts`, and the autoscaling/v1 Scale view of the /scale subresource.
 *
 * - ReplicaSet: keeps spec.replicas active pods (not terminating, not Succeeded/Failed) made from
 *   spec.template with generateName "<rs>-" (5 random characters), the template's labels and
 *   annotations and a controller ownerReference (blockOwnerDeletion) to the ReplicaSet. A deleted
 *   or failed pod is replaced; on scale-down the pods removed first are unscheduled, then not
 *   Ready, then the newest. Status: replicas, fullyLabeledReplicas, readyReplicas,
 *   availableReplicas (Ready for spec.minReadySeconds: a timer syncs again when that runs out),
 *   observedGeneration (zero counts omitted as kube's omitempty does).
 * - Deployment: one ReplicaSet per pod template, named "<deploy>-<pod-template-hash>", the hash
 *   being FNV-1a of the template's canonical JSON (plus status.collisionCount) encoded as kube's
 *   rand.SafeEncodeString does (kube hashes its own Go printing of the template, so the value
 *   differs from a real cluster's, its form does not); label pod-template-hash on the ReplicaSet,
 *   its selector and its template, annotations deployment.kubernetes.io/revision, desired-replicas
 *   and max-replicas, controller ownerReference. Rollout as kube's deployment controller steps
 *   it: RollingUpdate scales the new ReplicaSet up within spec.replicas + maxSurge (percent
 *   rounded up) and the old ones down while spec.replicas - maxUnavailable (rounded down) pods
 *   stay available (unhealthy old pods first; 0/0 gives maxUnavailable 1); Recreate scales the
 *   old ones to 0 first and the new one up when their pods are gone. Simplified: a pure scale
 *   during a rollout is not spread proportionally over the ReplicaSets. spec.paused stops the
 * rollout. Old ReplicaSets are kept (revisionHistoryLimit is not enforced). Status: replicas,
 * updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas, observedGeneration and
 * the conditions Available (MinimumReplicasAvailable / MinimumReplicasUnavailable, against
 * spec.replicas minus maxUnavailable) and Progressing (NewReplicaSetCreated, ReplicaSetUpdated,
 *   NewReplicaSetAvailable) with kube's messages; progressDeadlineSeconds is not timed.
 * - StatefulSet: pods "<sts>-<ordinal>" (spec.ordinals.start is not applied) with labels
 * statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index and controller-revision-hash
 * ("<sts>-<hash>"), spec.hostname = the pod name and spec.subdomain = spec.serviceName.
 * OrderedReady (default): ordinal n is created only when 0..n-1 are Running and Ready, scale-down
 * removes the highest ordinal first, one at a time; Parallel: all at once. Failed pods are deleted
 * and made again. RollingUpdate: when the template changes, the highest-ordinal pod of the old
 * revision is deleted (and made again from the new one) once every pod is Ready; OnDelete: only
 * deleted pods get the new template. volumeClaimTemplates: a volume per claim in the pod and, ONLY
 * when kubesim serves persistentvolumeclaims, the PVC "<claim>-<sts>-<ordinal>" (created if
 * missing, never deleted: persistentVolumeClaimRetentionPolicy is not applied). Status: replicas,
 * readyReplicas, currentReplicas, updatedReplicas, availableReplicas, currentRevision,
 * updateRevision, observedGeneration, collisionCount.
 * - Garbage collection is objstore's (owner references), as for every kind.
 *
 * Watch callbacks only mark objects dirty; writes happen in apps_tick(), run by a 0 ms loop timer
 * (and by controllers_tick(), which calls it).
 */
#ifndef RF_APPS_H
#define RF_APPS_H

#include "loop.h"
#include "objstore.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define APPS_LABEL_HASH "pod-template-hash"
#define APPS_LABEL_POD_NAME "statefulset.kubernetes.io/pod-name"
#define APPS_LABEL_POD_INDEX "apps.kubernetes.io/pod-index"
#define APPS_LABEL_REVISION "controller-revision-hash"
#define APPS_ANN_REVISION "deployment.kubernetes.io/revision"
#define APPS_TICK_BUDGET 2000 /* dirty objects synced per tick before yielding */

typedef struct apps apps_t;

/* Starts the controllers on `store` (pods must be registered; each of deployments, replicasets
 * and statefulsets of group apps is run when registered) and `loop` (NULL = the caller drives
 * apps_tick()). Returns NULL when out of memory or when pods are not registered. */
apps_t *apps_new(loop_t *loop, objstore_t *store);

/* Stops the watches and the timer; frees everything (objects stay). NULL-safe; NULLs *ap. */
void apps_destroy(apps_t **ap);

/* Syncs every dirty Deployment, ReplicaSet and StatefulSet now. Returns the store writes. */
int apps_tick(apps_t *a);

/* kube's defaults for `resource` ("deployments", "replicasets", "statefulsets") applied to
 * `obj` in place (replicas 1, strategies, revisionHistoryLimit, progressDeadlineSeconds,
 * podManagementPolicy, persistentVolumeClaimRetentionPolicy; the pod template's restartPolicy,
 * dnsPolicy, schedulerName, terminationGracePeriodSeconds, securityContext). Other resources:
 * nothing. */
void apps_defaults(const char *resource, json_t *obj);

/* kube-apiserver's create/update validation of the selector against the template: appends the
 * causes (schema.h's form) to `causes`: `spec.selector: Required value`, `spec.selector:
 * Invalid value: "...": empty selector is invalid for deployment|statefulset`,
 * `spec.template.metadata.labels: Invalid value: map[string]string{...}: `selector` does not
 * match template `labels``, negative replicas, a template restartPolicy other than Always.
 * Returns the number of causes added. */
int apps_validate(const char *resource, const json_t *obj, json_t *causes);

/* kube-apiserver's update validation (old = the stored object, obj = the new one): appends
 * `spec.selector: Invalid value: v1.LabelSelector{...}: field is immutable` (Deployment,
 * ReplicaSet) or `spec: Forbidden: updates to statefulset spec for fields other than ...`
 * (StatefulSet). Returns the number of causes added. */
int apps_validate_update(const char *resource, const json_t *old, const json_t *obj,
                         json_t *causes);

/* The pod-template-hash of `tmpl` with collision count `collisions` into out (>= 11 bytes). */
void apps_template_hash(const json_t *tmpl, long collisions, char *out, size_t n);

/* Table column definitions of `resource` after Name (kube's printers), a new array; NULL for
 * resources this module does not print. */
json_t *apps_columns(const char *resource);

/* The Table cells of `obj` (Name first), `age` (stolen) being the Age cell. NULL as above. */
json_t *apps_cells(const char *resource, const json_t *obj, json_t *age);

/* The autoscaling/v1 Scale of `obj` (spec.replicas, status.replicas, status.selector as text). */
json_t *apps_scale(const json_t *obj);

/* Self-test. */
int apps_test(bool verbose);

#endif
