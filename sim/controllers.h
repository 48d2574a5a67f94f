/*
 * controllers: the kube-controller-manager loops kubesim needs, over objstore (no HTTP).
 *
 * - Job controller (batch/v1 Jobs). For each Job it keeps min(parallelism, completions -
 *   succeeded) pods, created from spec.template with generateName "<job>-" (objstore appends 5
 *   random characters), labels batch.kubernetes.io/job-name, job-name,
 *   batch.kubernetes.io/controller-uid, controller-uid, and a controller ownerReference to the
 *   Job. Status (startTime, active, ready, succeeded, failed, terminating, completionTime) follows
 *   the pods' phases; when succeeded reaches completions (default 1) the Job gets
 *   SuccessCriteriaMet then Complete (reason CompletionsReached); when failed exceeds
 *   backoffLimit (default 6) it gets FailureTarget then Failed (reason BackoffLimitExceeded,
 *   "Job has reached the specified backoff limit") and its active pods are deleted. Failed pods
 *   are replaced at once (no exponential back-off). Not modelled: suspend, activeDeadlineSeconds,
 *   indexed completion, pod failure / success policies, the job-tracking finalizer.
 * - EndpointSlice + Endpoints controller. For every Service with a non-empty spec.selector it
 *   keeps one EndpointSlice named "<service>-<5 chars from the service uid>" (labels
 *   kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by=
 *   endpointslice-controller.k8s.io, controller ownerReference to the Service) and one Endpoints
 *   named after the Service, listing the matching pods that have a podIP (Endpoints: ready ones
 *   in addresses, others in notReadyAddresses, all in addresses with publishNotReadyAddresses;
 *   terminating pods only in the slice, with conditions.terminating) and the Service's ports
 *   with targetPort resolved (a number, a name looked up in the pod's container ports, or the
 *   port itself when unset). Pods are matched through an index on one selector label per
 *   Service, so a pod event costs O(its labels + candidate services), never O(services).
 * - apps/v1 Deployments, ReplicaSets and StatefulSets: sim/apps (apps.h), created, ticked and
 *   destroyed with these controllers.
 * - cert-manager (Issuers, ClusterIssuers, Certificates → Secrets, once a user installs its CRDs):
 *   sim/certmgr (certmgr.h), created and destroyed with these controllers, on its own timer.
 * - Garbage collection: NOT run here. kube-apiserver's stand-in (sim/apiserver.c) already calls
 *   objstore_tick() every APISERVER_GC_TICK_MS and objstore_gc_run() after deletes.
 *
 * Watch callbacks only record state and mark Jobs/Services dirty; the writes happen in
 * controllers_tick(), run by a 0 ms loop timer armed when something becomes dirty.
 */
#ifndef RF_CONTROLLERS_H
#define RF_CONTROLLERS_H

#include "loop.h"
#include "objstore.h"

#include <stdbool.h>
#include <stddef.h>

#define CONTROLLERS_BACKOFF_LIMIT 6 /* Job spec.backoffLimit default */
#define CONTROLLERS_SLICE_MANAGER "endpointslice-controller.k8s.io" /* managed-by label value */
#define CONTROLLERS_TICK_BUDGET 5000 /* dirty Jobs + Services synced per tick before yielding */

typedef struct controllers controllers_t;

/* Starts the controllers on `store` (pods must be registered; jobs, services, endpoints and
 * endpointslices are used when registered) and `loop` (NULL = the caller drives
 * controllers_tick()). Returns NULL when out of memory or when pods are not registered. */
controllers_t *controllers_new(loop_t *loop, objstore_t *store);

/* Stops the watches and the timer and frees everything (objects stay). NULL-safe; NULLs *cp. */
void controllers_destroy(controllers_t **cp);

/* Syncs every dirty Job and Service now. Returns the number of store writes (>= 0). */
int controllers_tick(controllers_t *c);

/* Self-test. */
int controllers_test(bool verbose);

#endif
