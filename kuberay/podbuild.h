/*
 * podbuild: the Pods KubeRay creates for a RayCluster, built as pure functions.
 *
 * A RayCluster (a jansson tree as stored by the API server) goes in; a new Pod object, exactly the
 * one KubeRay v1.7 would POST, comes out. The builders follow ../shared/spec/kuberay-behavior.md
 * §1.3-§1.8, §4.1, §4.2 and §4.5 (KubeRay `common/pod.go` DefaultHeadPodTemplate /
 * DefaultWorkerPodTemplate / BuildPod, `raycluster_controller.go` buildHeadPod / buildWorkerPod),
 * step by step in the same order, because the order is visible: env vars are appended, so their
 * order in the Pod is the order of the steps.
 *
 * What a built Pod holds: apiVersion/kind; metadata.generateName (or name with the deterministic
 * head name option), namespace, labels (base set, template labels merged with group `labels`,
 * multi-host indexing labels, RayService `ray.io/serve`, operator default labels where absent),
 * annotations (template annotations, `ray.io/ft-enabled`, `ray.io/external-storage-namespace`,
 * `ray.io/overwrite-container-cmd`, `ray.io/kuberay-version`, the Recreate hash when given,
 * operator default annotations where absent) and a controller ownerReference to the RayCluster;
 * spec = the group template with the Ray container (containers[0]) rewritten: command
 * `/bin/bash -c --` and args `ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start ...`,
 * injected env vars in KubeRay's append order, the `metrics` port, liveness/readiness probes, the
 * `/dev/shm` volume; workers get the `wait-gcs-ready` init container; the head gets the autoscaler
 * sidecar, its service account and the `ray-logs` volume when in-tree autoscaling is on; GCS fault
 * tolerance (Redis and RocksDB backends) and token authentication env vars and volumes; with
 * spec.tlsOptions.enabled (gate RayClusterMTLS) the mTLS volume, env and `wait-for-tls-ip-san`
 * init container of kuberay/mtls (mtls_configure_pod(), also the autoscaler's TLS env).
 *
 * With gate RayClusterHistoryServer (opts.gate_history_server) and historyServerOptions, the
 * `ray-history-collector` sidecar (collector.h), the shared /tmp/ray volume and its Ray env.
 *
 * Batch-scheduler metadata (operator flag --batch-scheduler, off by default) is added last, as
 * KubeRay's AddMetadataToChildResource after the pod is built (batchsched.h).
 *
 * Purity: no I/O, no clock, no randomness, no globals. Inputs are borrowed and never modified;
 * every result is a new tree the caller owns. Errors append one line to the caller's `err`
 * (may be NULL).
 */
#ifndef RF_PODBUILD_H
#define RF_PODBUILD_H

#include "batchsched.h"
#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The Ray container is always containers[0] (KubeRay RayContainerIndex). */
#define PODBUILD_RAY_CONTAINER_INDEX 0
/* The KubeRay version this module reproduces (KUBERAY_VERSION at tag v1.7.0). */
#define PODBUILD_KUBERAY_VERSION "v1.7.0"
/* The cluster DNS domain when the operator's CLUSTER_DOMAIN is not set. */
#define PODBUILD_DEFAULT_CLUSTER_DOMAIN "cluster.local"
/* Pod name prefixes are cut to this many characters before "-head"/"-worker" (utils.PodName). */
#define PODBUILD_POD_PREFIX_MAX 50
/* CheckName keeps the last 50 characters; CheckLabel the last 63. */
#define PODBUILD_CHECK_NAME_MAX 50
#define PODBUILD_CHECK_LABEL_MAX 63
/* Default ports (utils/constant.go). */
#define PODBUILD_DEFAULT_GCS_PORT 6379
#define PODBUILD_DEFAULT_DASHBOARD_PORT 8265
#define PODBUILD_DEFAULT_METRICS_PORT 8080
#define PODBUILD_DEFAULT_SERVE_PORT 8000
#define PODBUILD_DEFAULT_AGENT_PORT 52365
/* The first Ray version whose probes are `httpGet /api/healthz` instead of exec wget. */
#define PODBUILD_HTTP_PROBE_MIN_VERSION "2.53.0"
/* Probe timings (utils/constant.go). */
#define PODBUILD_LIVENESS_INITIAL_DELAY 30
#define PODBUILD_LIVENESS_FAILURE 120
#define PODBUILD_READINESS_INITIAL_DELAY 10
#define PODBUILD_READINESS_FAILURE 10
#define PODBUILD_SERVE_READINESS_FAILURE 1
#define PODBUILD_PROBE_TIMEOUT 2
#define PODBUILD_HEAD_PROBE_TIMEOUT 5
#define PODBUILD_PROBE_PERIOD 5
#define PODBUILD_PROBE_SUCCESS 1
/* The largest rendered `ray start` command or label value we build. */
#define PODBUILD_MAX_TEXT (256u * 1024u)

/* Operator-level settings that change the Pods; podbuild_opts_init() gives KubeRay's defaults. */
typedef struct {
    bool gate_multihost_indexing; /* feature gate RayMultiHostIndexing (default true) */
    bool gate_history_server; /* feature gate RayClusterHistoryServer (default false): the
                                 collector sidecar of historyServerOptions (collector.h) */
    bool init_container_injection; /* ENABLE_INIT_CONTAINER_INJECTION != "false" (default true) */
    bool probes_injection; /* ENABLE_PROBES_INJECTION != "false" (default true) */
    bool deterministic_head_name; /* ENABLE_DETERMINISTIC_HEAD_POD_NAME == "true" (default false) */
    bool login_shell; /* ENABLE_LOGIN_SHELL == "true": `bash -lc` instead of `-c` (default false) */
    const char *cluster_domain; /* CLUSTER_DOMAIN, NULL or "" = "cluster.local" */
    const char *kuberay_version; /* KUBERAY_VERSION, NULL = PODBUILD_KUBERAY_VERSION */
    const json_t *default_container_envs; /* operator defaultContainerEnvs (EnvVar array) or NULL */
    const json_t *default_pod_labels; /* operator defaultPodLabels (object) or NULL */
    const json_t *default_pod_annotations; /* operator defaultPodAnnotations (object) or NULL */
    const json_t *head_sidecars; /* operator headSidecarContainers (Container array) or NULL */
    const json_t *worker_sidecars; /* operator workerSidecarContainers (Container array) or NULL */
    const char *recreate_hash; /* head annotation ray.io/upgrade-strategy-recreate-hash, or NULL */
    batchsched_t batch_scheduler; /* --batch-scheduler: pod metadata (default none) */
} podbuild_opts_t;

/* Which member of a worker group a Pod is: multi-host groups (numOfHosts > 1) create replicas of
 * numOfHosts Pods that share a replica name. */
typedef struct {
    int replica_index; /* label ray.io/worker-group-replica-index (lowest unused index) */
    const char *replica_name; /* "<group>-<rand5>" for numOfHosts > 1; NULL = derived (see below) */
    int host_index; /* label ray.io/replica-host-index, 0..numOfHosts-1 */
} podbuild_replica_t;

/* Fills `o` with KubeRay's defaults (gates and env switches as an unconfigured operator). */
void podbuild_opts_init(podbuild_opts_t *o);

/* Builds the head Pod of `raycluster` (a RayCluster object with metadata.name, namespace, uid and
 * spec.headGroupSpec.template). `opts` may be NULL (defaults). On success returns 0 and stores a
 * new Pod in *pod_out (caller json_decref()s). Errors: ERR_INVAL with a line in `err` (no head
 * template or no container, missing name), ERR_NOMEM. *pod_out is NULL on failure. */
int podbuild_head(const json_t *raycluster, const podbuild_opts_t *opts, json_t **pod_out,
                  buf_t *err);

/* Builds one Pod of worker group `group_index` as replica 0, host 0. For a multi-host group the
 * replica name is derived deterministically from the cluster uid and group (the reconciler, which
 * must use fresh random names, calls podbuild_worker_ex). Same returns as podbuild_head; also
 * ERR_INVAL when group_index is out of range. */
int podbuild_worker(const json_t *raycluster, int group_index, const podbuild_opts_t *opts,
                    json_t **pod_out, buf_t *err);

/* podbuild_worker with the replica identity given; `replica` NULL = index 0, host 0. */
int podbuild_worker_ex(const json_t *raycluster, int group_index, const podbuild_replica_t *replica,
                       const podbuild_opts_t *opts, json_t **pod_out, buf_t *err);

/* The index of the Ray container in a PodTemplateSpec (always PODBUILD_RAY_CONTAINER_INDEX), or
 * -1 when the template has no containers. */
int podbuild_ray_container_index(const json_t *template);

/* Renders the `ray start` command for a finished rayStartParams object (string values) exactly as
 * KubeRay's convertParamMap: "ray start --head " / "ray start " followed by " --key=value " or
 * " --key " per sorted key. Appends to `out`; returns 0, ERR_INVAL (non-object) or ERR_TOOBIG /
 * ERR_NOMEM from the buffer. */
int podbuild_start_command(const json_t *params, bool head, buf_t *out);

/* The head Service name (headService.metadata.name, else CheckName("<cluster>-head-svc")) and
 * the FQDN "<svc>.<namespace>.svc.<domain>" workers use; appended to `out`. Returns 0 or a buf
 * error; ERR_INVAL without metadata.name. */
int podbuild_head_service_name(const json_t *raycluster, buf_t *out);
int podbuild_head_fqdn(const json_t *raycluster, const podbuild_opts_t *opts, buf_t *out);

/* The head port workers connect to: head rayStartParams["port"] or "6379"; appended to `out`. */
int podbuild_head_port(const json_t *raycluster, buf_t *out);

/* Parses a Kubernetes quantity ("500m", "5Gi", "40G", "1e3", "0.5") and stores its value rounded
 * up to an integer (Quantity.Value()) in *ceil_out and as a double in *approx_out (either may be
 * NULL). Returns 0 or ERR_INVAL. */
int podbuild_quantity(const char *s, int64_t *ceil_out, double *approx_out);

#endif
