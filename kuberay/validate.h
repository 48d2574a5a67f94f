/*
 * validate: KubeRay's controller-side RayCluster validation with its exact error messages.
 *
 * Mirrors ray-operator/controllers/ray/utils/validation.go (KubeRay v1.7):
 * ValidateRayClusterMetadata, ValidateRayClusterSpec (first failure wins, same order of checks),
 * ValidateRayClusterUpgradeOptions and ValidateRayClusterStatus, plus the Kubernetes name/label
 * validators they use (IsDNS1035Label, IsDNS1123Label, IsQualifiedName, IsValidLabelValue, with
 * apimachinery's message texts) and the Ray version comparison (version.ParseGeneric). The
 * reconciler turns a message into the Warning event with validate_event_message().
 *
 * Every function is pure: it reads jansson trees (a RayCluster object or its .spec) and appends
 * the error text to a caller-owned buf_t. Returns 0 when valid, VALIDATE_INVALID (= ERR_INVAL)
 * when not (message appended), or ERR_NOMEM/ERR_TOOBIG when the message could not be written.
 */
#ifndef RF_VALIDATE_H
#define RF_VALIDATE_H

#include <stdbool.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

/* The return of a check that found the input invalid (its message is in the buffer). */
#define VALIDATE_INVALID ERR_INVAL
/* MaxRayClusterNameLength. */
#define VALIDATE_MAX_CLUSTER_NAME 53
/* DNS-1035/1123 label and qualified-name part limit; label values likewise. */
#define VALIDATE_DNS_LABEL_MAX 63
/* DNS-1123 subdomain limit. */
#define VALIDATE_DNS_SUBDOMAIN_MAX 253

/* The feature gates validation consults (KubeRay defaults from validate_gates_default()). */
typedef struct {
    bool multihost_indexing; /* RayMultiHostIndexing (default on): multi-host indexing labels */
    bool job_deletion_policy; /* RayJobDeletionPolicy (default on): allows group suspend */
    bool gcs_embedded_storage; /* GCSFaultToleranceEmbeddedStorage (default off): rocksdb backend */
    bool history_server; /* RayClusterHistoryServer (default off) */
    bool network_policy; /* RayClusterNetworkPolicy (default off) */
    bool mtls; /* RayClusterMTLS (default off) */
    bool sidecar_submitter_restart; /* SidecarSubmitterRestart (default off): RayJob SidecarMode
                                       submitter restarts (submitterConfig allowed) */
    bool incremental_upgrade; /* RayServiceIncrementalUpgrade (default on): RayService upgrade
                                 type NewClusterWithIncrementalUpgrade takes effect */
    bool cronjob; /* RayCronJob (default off): the RayCronJob controller runs */
    bool kubernetes_was; /* KubernetesWAS (default off): the kubernetes-was-v1alpha2 batch
                            scheduler; exclusive with --batch-scheduler (opsettings_check_was) */
} validate_gates_t;

/* Fills `g` with KubeRay v1.7's default gate values. */
void validate_gates_default(validate_gates_t *g);

/* Applies KubeRay's --feature-gates value ("A=true,B=false"; spaces around items allowed; NULL
 * or "" changes nothing) to `g`. Every gate of KubeRay v1.7 is accepted (those validation does
 * not consult are recognised and ignored). Returns 0, or ERR_INVAL with the error appended to
 * err: "unrecognized feature gate: X", "missing bool value for X", or "invalid value of X=V,
 * must be true or false". `g` is only changed when the whole value is valid. */
int validate_gates_parse(const char *spec, validate_gates_t *g, buf_t *err);

/* Checks a --feature-gates option value (the controllers' start-up check): 0, or the parse
 * error prefixed "--feature-gates: " in err. */
int validate_gates_option(const char *spec, buf_t *err);

/* ValidateRayClusterMetadata on the RayCluster object `rc` (reads metadata.name). */
int validate_metadata(const json_t *rc, buf_t *msg);

/* ValidateRayClusterSpec on `spec` (the RayCluster .spec) with the object's `annotations` (may
 * be NULL). `gates` NULL means the defaults. */
int validate_spec(const json_t *spec, const json_t *annotations, const validate_gates_t *gates,
                  buf_t *msg);

/* ValidateRayClusterUpgradeOptions on the RayCluster object `rc`. */
int validate_upgrade_options(const json_t *rc, buf_t *msg);

/* ValidateRayClusterStatus: Suspending and Suspended both True is invalid. */
int validate_status(const json_t *rc, buf_t *msg);

/* The non-fatal autoscaler-v1 warning of the reconcile pipeline (step 6): when autoscaling is on,
 * autoscalerOptions.version is explicitly "v1" and some worker template restartPolicy is set and
 * not Never, appends "restartPolicy for worker groups [g1, g2] should be Never or unset when using
 * autoscaler V1" and returns 1; returns 0 when there is nothing to warn about; <0 on NOMEM. */
int validate_autoscaler_v1_warning(const json_t *spec, buf_t *msg);

/* Fills the CRD defaults the API server would apply to a RayCluster object `rc` in place:
 * worker groups replicas 0, minReplicas 0, maxReplicas 2147483647, numOfHosts 1; and the
 * controller's own defaulting of nil rayStartParams to {} (head and workers). Returns 0 or
 * ERR_NOMEM / ERR_INVAL (rc not an object). */
int validate_apply_defaults(json_t *rc);

/* Appends the event message "<prefix> <ns>/<name>: <err>", e.g. prefix "The RayCluster spec is
 * invalid". Returns 0 or a buf error. */
int validate_event_message(buf_t *out, const char *prefix, const json_t *rc, const char *err);

/* Event reasons and message prefixes (reconcile pipeline §1.2). */
#define VALIDATE_REASON_METADATA "InvalidRayClusterMetadata"
#define VALIDATE_REASON_SPEC "InvalidRayClusterSpec"
#define VALIDATE_REASON_STATUS "InvalidRayClusterStatus"
#define VALIDATE_PREFIX_METADATA "The RayCluster metadata is invalid"
#define VALIDATE_PREFIX_SPEC "The RayCluster spec is invalid"
#define VALIDATE_PREFIX_UPGRADE "The RayCluster UpgradeStrategy is invalid"

/* apimachinery validators: append the error strings (joined as Go's %v of []string would be
 * without the brackets is NOT done here: each error is appended followed by `sep`). Return the
 * number of errors found (0 = valid) or a negative buf error. */
int validate_dns1035_label(const char *v, buf_t *errs, const char *sep);
int validate_dns1123_label(const char *v, buf_t *errs, const char *sep);
int validate_qualified_name(const char *v, buf_t *errs, const char *sep);
int validate_label_value(const char *v, buf_t *errs, const char *sep);

/* version.ParseGeneric + compare: sets *cmp to -1/0/1 comparing `v` with `min`. Returns 0, or
 * VALIDATE_INVALID with Go's parse error text ("could not parse \"x\" as version") in `err`. */
int validate_version_cmp(const char *v, const char *min, int *cmp, buf_t *err);

/* Self-test. */
int validate_test(bool verbose);

#endif
