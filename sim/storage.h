/*
 * storage: kubesim's volumes and network policies (../shared/spec/k8s-api-semantics.md; where it
 * is silent, kube-apiserver 1.32 and kube-controller-manager).
 *
 * Served resources (registered by sim/apiserver.c): v1 persistentvolumeclaims (namespaced, status),
 * v1 persistentvolumes (cluster-scoped, status), storage.k8s.io/v1 storageclasses (cluster-scoped)
 * and networking.k8s.io/v1 networkpolicies (namespaced). What this module adds to plain storage:
 *
 * - Admission and validation (storage_admit(), before a create or an update is stored):
 *   PVC: the DefaultStorageClass admission plugin (a claim with no spec.storageClassName gets the
 *   StorageClass annotated storageclass.kubernetes.io/is-default-class=true; "" stays ""), the
 *   defaults spec.volumeMode=Filesystem, the required spec.accessModes and
 *   spec.resources.requests.storage, and on update kube's immutability rule (422 "spec: Forbidden:
 *   spec is immutable after creation except resources.requests for bound claims"; spec.volumeName
 *   may be set once; go-cmp's diff that kube appends is not reproduced).
 *   NetworkPolicy: the defaults (a port's protocol TCP; policyTypes [Ingress] plus Egress when
 *   egress rules are given) and kube's validation of spec.policyTypes values and port protocols
 *   (422 "Unsupported value: ...: supported values: ...").
 * - The default class: storage_bootstrap() creates StorageClass STORAGE_DEFAULT_CLASS
 *   (provisioner STORAGE_PROVISIONER, reclaimPolicy Delete, volumeBindingMode Immediate,
 *   annotated default) unless one of that name exists.
 * - A simulated provisioner and binder (storage_new()): a Pending claim whose class has provisioner
 *   STORAGE_PROVISIONER and binding mode Immediate gets a PersistentVolume "pvc-<claim uid>" of the
 *   requested size (claimRef, the class's reclaimPolicy, hostPath, phase Bound), the claim gets
 *   spec.volumeName, the annotation pv.kubernetes.io/bind-completed and status phase Bound with
 *   capacity and accessModes. A claim of an unknown class, another provisioner or
 *   WaitForFirstConsumer stays Pending. When a bound claim goes, its PV is deleted (reclaimPolicy
 *   Delete) or marked Released (Retain). Writes happen from a 0 ms timer, never inside a watch.
 * - The scheduler's volume check (storage_pod_unschedulable()): a pod that mounts a claim that does
 *   not exist, or is not Bound, is not schedulable, with kube-scheduler's VolumeBinding PreFilter
 *   reason (`persistentvolumeclaim "X" not found`, `pod has unbound immediate
 *   PersistentVolumeClaims`); the kubelet writes it into the PodScheduled condition.
 * - kubectl's printer columns for the four kinds (storage_table_columns() / storage_table_cells()).
 * Garbage collection by ownerReferences is objstore's, as for every kind.
 */
#ifndef RF_STORAGE_H
#define RF_STORAGE_H

#include "loop.h"
#include "objstore.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define STORAGE_DEFAULT_CLASS "standard" /* the default StorageClass created at boot */
#define STORAGE_PROVISIONER "kubesim.rayfleet.io/hostpath" /* the simulated provisioner */
#define STORAGE_ANN_DEFAULT "storageclass.kubernetes.io/is-default-class"
#define STORAGE_ANN_BIND_COMPLETED "pv.kubernetes.io/bind-completed"
#define STORAGE_ANN_BOUND_BY "pv.kubernetes.io/bound-by-controller"
#define STORAGE_ANN_PROVISIONED_BY "pv.kubernetes.io/provisioned-by"
#define STORAGE_ANN_STORAGE_PROVISIONER "volume.kubernetes.io/storage-provisioner"

typedef struct storage storage_t;

/* Admission + validation of a write of `obj` (modified in place: defaults) to resource
 * group/resource. `old` is the stored object on update, NULL on create. Returns true when the
 * write may go on; false with *st filled (422 Invalid with kube's message and cause). Resources
 * this module does not own pass untouched. */
bool storage_admit(objstore_t *s, const char *group, const char *resource, json_t *obj,
                   const json_t *old, objstore_status_t *st);

/* Creates the default StorageClass unless it exists. Returns 0 or a negative err_t. */
int storage_bootstrap(objstore_t *s);

/* Starts the provisioner/binder on `store` (the four resources must be registered; `loop` NULL =
 * the caller drives storage_tick()). NULL when out of memory or a resource is missing. */
storage_t *storage_new(loop_t *loop, objstore_t *store);

/* Stops the watches and the timer and frees everything (objects stay). NULL-safe; NULLs *sp. */
void storage_destroy(storage_t **sp);

/* Binds every pending claim and releases the PVs of deleted claims now. Returns the writes. */
int storage_tick(storage_t *st);

/* When pod (namespace ns) cannot be scheduled for its volumes, writes kube-scheduler's PreFilter
 * reason into out and returns true. False when every claim it mounts exists and is Bound (or
 * the claims resource is not served). */
bool storage_pod_unschedulable(objstore_t *s, const char *ns, const json_t *pod, char *out,
                               size_t n);

/* True when this module prints group/resource (kubectl's columns). */
bool storage_prints(const char *group, const char *resource);

/* Appends the column definitions after NAME (each made with `coldef`, AGE included). */
void storage_table_columns(const char *resource, json_t *cols,
                           json_t *(*coldef)(const char *name, const char *type, const char *format,
                                             const char *desc, json_int_t priority));

/* The row cells of obj; `age` (stolen) is its AGE cell. */
json_t *storage_table_cells(const char *resource, const json_t *obj, json_t *age);

/* Self-test. */
int storage_test(bool verbose);

#endif
