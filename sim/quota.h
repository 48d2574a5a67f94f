/*
 * quota: ResourceQuota and LimitRange in kubesim (kube-apiserver 1.32's ResourceQuota and
 * LimitRanger admission plugins and kube-controller-manager's resourcequota controller).
 *
 * Served resources (registered by sim/apiserver.c): v1 resourcequotas (namespaced, /status) and
 * v1 limitranges (namespaced). What this module adds to plain storage:
 *
 * - Admission on create (quota_admit(), installed as the object store's create hook, so it runs
 *   after generateName as kube's validating admission does, for every create: API clients and
 *   kubesim's own controllers alike):
 *   LimitRanger: a pod's containers and init containers get the namespace's LimitRange
 *   `default` (limits) and `defaultRequest` (requests) for what they lack, with kube's annotation
 *   kubernetes.io/limit-ranger; then min / max / maxLimitRequestRatio (types Container and Pod)
 *   are checked with kube's messages (`pods "x" is forbidden: maximum cpu usage per Container is
 *   1, but limit is 2`; several as `[a, b]`). A LimitRange itself is defaulted as kube's
 *   SetDefaults_LimitRangeItem (Container: default = max, defaultRequest = default or min).
 *   ResourceQuota: the usage the new object adds (pods: `pods`, `cpu`/`requests.cpu`,
 *   `memory`/`requests.memory`, `limits.cpu`, `limits.memory`, ephemeral storage, hugepages,
 *   `requests.<extended>` such as requests.nvidia.com/gpu, from the pod's effective requests and
 *   limits, a request falling back to its limit as kube's defaulting does; services:
 *   `services`, `services.loadbalancers`, `services.nodeports`; claims: `persistentvolumeclaims`,
 *   `requests.storage` and the per-class names; `count/<resource>[.<group>]` for every kind and
 *   the legacy `secrets`, `configmaps`, `replicationcontrollers`, `resourcequotas`) is checked
 *   against every ResourceQuota of the namespace (by name) that tracks it, with used = the live
 *   usage of the namespace (terminal pods count only in count/pods). Refusals are kube's 403
 *   Forbidden Status: `pods "x" is forbidden: exceeded quota: q1, requested: cpu=2, used:
 *   cpu=1, limited: cpu=2` and, when a quota tracks cpu or memory and a container does not set
 *   it, `pods "x" is forbidden: failed quota: q1: must specify limits.cpu for: c1`.
 *   Scopes Terminating, NotTerminating, BestEffort and NotBestEffort are honoured; a quota with
 *   any other scope (PriorityClass, CrossNamespacePodAffinity) is not enforced.
 * - The resourcequota controller (quota_new()): status.hard (spec.hard, canonical quantities)
 *   and status.used (every hard resource, zeros included) recomputed after pod, service, claim,
 *   quota and limit-range changes (coalesced) and every QUOTA_RESYNC_MS for the other counted
 *   kinds. Writes happen outside watch callbacks.
 * - kubectl's printer columns (quota_table_columns() / quota_table_cells()): ResourceQuota NAME,
 *   AGE, REQUEST, LIMIT (`pods: 1/2, requests.cpu: 500m/1`, limits.* in LIMIT) and LimitRange
 *   NAME, CREATED AT.
 * Not done: updates are not re-checked (kube re-checks a service's type change and a claim's
 * resize), dry-run creates are not checked, and used is not reserved in status by admission (it
 * is computed live, so concurrent creates cannot overrun a quota here anyway).
 */
#ifndef RF_QUOTA_H
#define RF_QUOTA_H

#include "loop.h"
#include "objstore.h"

#include <jansson.h>
#include <stdbool.h>

#define QUOTA_RESYNC_MS 1000 /* full status recomputation period */
#define QUOTA_ANN_LIMIT_RANGER "kubernetes.io/limit-ranger" /* LimitRanger's pod annotation */

typedef struct quota quota_t;

/* LimitRanger then ResourceQuota admission of a create of `obj` (resource r, namespace ns),
 * with the name already set; `obj` may be changed (defaults). Returns true when the create may go
 * on; false with *st filled (403 Forbidden, or 500 when out of memory). Other resources pass. */
bool quota_admit(objstore_t *s, objstore_res_t *r, const char *ns, json_t *obj,
                 objstore_status_t *st);

/* Installs quota_admit as s's create hook and starts the status controller (`loop` NULL = the
 * caller drives quota_tick()). NULL when out of memory or resourcequotas is not registered. */
quota_t *quota_new(loop_t *loop, objstore_t *s);

/* Stops the watches and timers, removes the hook and frees everything. NULL-safe; NULLs *qp. */
void quota_destroy(quota_t **qp);

/* Recomputes the status of every ResourceQuota now. Returns the status writes. */
int quota_tick(quota_t *q);

/* True when this module prints group/resource (kubectl's columns). */
bool quota_prints(const char *group, const char *resource);

/* Appends the column definitions after NAME (each made with `coldef`). */
void quota_table_columns(const char *resource, json_t *cols,
                         json_t *(*coldef)(const char *name, const char *type, const char *format,
                                           const char *desc, json_int_t priority));

/* The row cells of obj after NAME; `age` (stolen) is its AGE cell. */
json_t *quota_table_cells(const char *resource, const json_t *obj, json_t *age);

/* Self-test. */
int quota_test(bool verbose);

#endif
