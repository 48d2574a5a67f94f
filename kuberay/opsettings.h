/*
 * opsettings: KubeRay's operator settings, read once at start by every controller service and
 * handed to the builders and state machines that use them (../shared/spec/kuberay-behavior.md
 * §4.10 gates and environment switches, §6 flags and the Configuration v1alpha1 file).
 *
 * Sources, in the order they are applied:
 *   1. KubeRay's defaults (opsettings_init);
 *   2. the operator environment switches (opsettings_from_env): ENABLE_INIT_CONTAINER_INJECTION,
 *      ENABLE_PROBES_INJECTION, ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE, CLUSTER_DOMAIN,
 *      USE_INGRESS_ON_OPENSHIFT, RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV,
 * ENABLE_GCS_FT_REDIS_CLEANUP, ENABLE_ZERO_DOWNTIME, DELETE_RAYJOB_CR_AFTER_JOB_FINISHES,
 * ENABLE_DETERMINISTIC_HEAD_POD_NAME, ENABLE_LOGIN_SHELL, ENABLE_RANDOM_POD_DELETE,
 *      RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS,
 * RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS, ENABLE_WEBHOOKS. KubeRay compares the text ("false" turns
 * off a default-on switch, "true" turns on a default-off one, any case) and falls back to the
 * default for an integer that does not parse. rayfleet accepts the same values but REFUSES anything
 * else (a bool switch that is neither true nor false, an integer that is not a non-negative
 * decimal) with an error naming the variable: KubeRay would silently run with the default, which is
 * how ENABLE_LOGIN_SHELL=1 or RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV=5m go unnoticed; the fix
 *      (write true/false or a number) means the same to both operators. "" is unset, as in KubeRay.
 *      KUBERAY_VERSION is not an environment switch in KubeRay (a build constant): not read.
 *   3. KubeRay's Configuration file (opsettings_load_kuberay_config; apiVersion
 *      config.ray.io/v1alpha1, kind Configuration): every field of configuration_types.go is
 *      accepted, an unknown key is an error naming the key and the file (KubeRay ignores it);
 *      a bad value names the field.
 *   4. the flags of opsettings_options (--feature-gates applied after the file's featureGates).
 *
 * opsettings_configure() does all four for a controller process (ctrlsvc_def_t.configure) and maps
 * the settings that are rayfleet options already onto them (cfg_override): reconcileConcurrency
 * -> --concurrency, qps -> --client.qps, burst -> --client.burst, enableLeaderElection ->
 * --leader.elect, leaderElectionNamespace -> --leader.namespace, useKubernetesProxy and
 * watchNamespace -> the flags of the same name. A setting given both in the Configuration file
 * and as a rayfleet option is an error (one setting, one place).
 */
#ifndef RF_OPSETTINGS_H
#define RF_OPSETTINGS_H

#include "buf.h"
#include "cfg.h"
#include "objbuild.h"
#include "podbuild.h"
#include "rjstate.h"
#include "rsstate.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define OPSETTINGS_API_VERSION "config.ray.io/v1alpha1"
#define OPSETTINGS_KIND "Configuration"
/* RAYCLUSTER_DEFAULT_REQUEUE_SECONDS: the RayCluster requeue period without the env switch. */
#define OPSETTINGS_DEFAULT_REQUEUE_S 300
/* The longest cluster domain (a DNS name). */
#define OPSETTINGS_DOMAIN_MAX 253
/* KubeRay's --batch-scheduler values. */
#define OPSETTINGS_BATCH_SCHEDULERS "volcano, yunikorn, kai-scheduler, scheduler-plugins"

/* KubeRay's operator settings. Strings and JSON are owned (opsettings_free). */
typedef struct {
    validate_gates_t gates; /* --feature-gates / featureGates */
    /* Environment switches (§4.10), KubeRay's defaults in the comments. */
    bool init_container_injection; /* ENABLE_INIT_CONTAINER_INJECTION (true) */
    bool probes_injection; /* ENABLE_PROBES_INJECTION (true) */
    bool head_cluster_ip_service; /* ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE (false: headless) */
    char *cluster_domain; /* CLUSTER_DOMAIN or --cluster-domain (NULL: cluster.local) */
    bool use_ingress_on_openshift; /* USE_INGRESS_ON_OPENSHIFT (false; no Route is built) */
    int64_t requeue_s; /* RAYCLUSTER_DEFAULT_REQUEUE_SECONDS_ENV (300) */
    bool requeue_set; /* the variable was set */
    bool gcs_ft_redis_cleanup; /* ENABLE_GCS_FT_REDIS_CLEANUP (true) */
    bool zero_downtime; /* ENABLE_ZERO_DOWNTIME (true) */
    bool delete_rayjob_after_finish; /* DELETE_RAYJOB_CR_AFTER_JOB_FINISHES or the file (false) */
    bool deterministic_head_name; /* ENABLE_DETERMINISTIC_HEAD_POD_NAME (false) */
    bool login_shell; /* ENABLE_LOGIN_SHELL (false) */
    bool random_pod_delete; /* ENABLE_RANDOM_POD_DELETE (false) */
    int64_t grace_s; /* RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS */
    int64_t check_timeout_s; /* RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS */
    bool webhooks; /* ENABLE_WEBHOOKS (false; rayfleet has no webhook server: a warning) */
    /* Configuration v1alpha1 (NULL / 0 / -1: not given). */
    json_t *head_sidecars; /* headSidecarContainers (Container array) */
    json_t *worker_sidecars; /* workerSidecarContainers (Container array) */
    json_t *default_container_envs; /* defaultContainerEnvs (EnvVar array) */
    json_t *default_pod_labels; /* defaultPodLabels (string map) */
    json_t *default_pod_annotations; /* defaultPodAnnotations (string map) */
    char *batch_scheduler; /* batchScheduler / --batch-scheduler */
    char *watch_namespace; /* watchNamespace / --watch-namespace (comma list; NULL: all) */
    int64_t reconcile_concurrency; /* reconcileConcurrency (0: not given) */
    int64_t qps; /* qps (0: not given) */
    int64_t burst; /* burst (0: not given) */
    int enable_leader_election; /* enableLeaderElection: -1 not given, 0, 1 */
    char *leader_election_namespace; /* leaderElectionNamespace */
    bool use_kubernetes_proxy; /* useKubernetesProxy / --use-kubernetes-proxy */
    bool enable_batch_scheduler; /* enableBatchScheduler (deprecated: volcano) */
    char *feature_gates; /* featureGates rendered "A=true,B=false" (NULL: none) */
    char *config_path; /* the Configuration file read, or NULL */
} opsettings_t;

/* The KubeRay flags every controller takes (ctrlsvc_def_t.shared_options): --feature-gates,
 * --batch-scheduler, --watch-namespace, --use-kubernetes-proxy, --cluster-domain,
 * --kuberay-config. --reconcile-concurrency, --qps, --burst, --enable-leader-election and
 * --leader-election-namespace are aliases (CFG_ALIAS) of ctrlsvc's --concurrency, --client.qps,
 * --client.burst, --leader.elect and --leader.namespace: one setting, two names. */
extern const cfg_opt_t opsettings_options[];

/* Fills `s` with KubeRay's defaults. */
void opsettings_init(opsettings_t *s);

/* Frees what `s` owns and re-initialises it. NULL-safe. */
void opsettings_free(opsettings_t *s);

/* A source of environment variables: the value of `name` or NULL. */
typedef const char *(*opsettings_getenv_fn)(const char *name, void *arg);

/* Applies the environment switches from `get` (NULL: the process environment). Returns 0, or
 * ERR_INVAL with "environment NAME: must be true or false, got "v"" (or "a non-negative integer
 * (seconds)") in err; warnings (ENABLE_WEBHOOKS=true, USE_INGRESS_ON_OPENSHIFT=true) are logged. */
int opsettings_from_env(opsettings_t *s, opsettings_getenv_fn get, void *arg, buf_t *err);

/* Reads KubeRay's Configuration file at `path` into `s`. Returns 0, or with one line in err:
 * ERR_IO / ERR_PARSE (the YAML), ERR_INVAL "PATH: unknown key "k"" (line:col when known),
 * "PATH: apiVersion must be config.ray.io/v1alpha1", "PATH: FIELD: must be ...". */
int opsettings_load_kuberay_config(opsettings_t *s, const char *path, buf_t *err);

/* Applies a --feature-gates value over the gates (validate_gates_parse). 0 or ERR_INVAL with
 * "--feature-gates: <cause>" in err. */
int opsettings_feature_gates(opsettings_t *s, const char *spec, buf_t *err);

/* Checks the batch scheduler (ValidateBatchSchedulerConfig): 0 for none or one of KubeRay's
 * names; ERR_INVAL with "batch scheduler "x": must be one of ..." (KubeRay's list) for another
 * name, or KubeRay's message when both enableBatchScheduler and batchScheduler are set. */
int opsettings_check_batch_scheduler(const opsettings_t *s, buf_t *err);

/* The KubernetesWAS gate (§4.3): with --batch-scheduler or --enable-batch-scheduler (or the
 * Configuration's batchScheduler / enableBatchScheduler) KubeRay's start-up error "batch scheduler
 * configs validation failed: the KubernetesWAS feature gate cannot be combined with
 * --batch-scheduler or --enable-batch-scheduler" (ERR_INVAL, the text in err); 0 otherwise: the
 * gate alone selects the kubernetes-was-v1alpha2 plugin (opsettings_batch_scheduler()). */
int opsettings_check_was(const opsettings_t *s, buf_t *err);

/* SidecarSubmitterRestart needs Kubernetes 1.35+ (§4.10, KubeRay's main.go checks the API
 * server's version once at start): `version` is the decoded GET /version body. 0 when the gate
 * is off or gitVersion (else major/minor) is at least 1.35.0; else ERR_INVAL with KubeRay's
 * start-up error in err: "SidecarSubmitterRestart feature gate requires K8s 1.35+: current
 * version v1.32.0 is below 1.35", or, when the version cannot be read, "SidecarSubmitterRestart
 * feature gate enabled but unable to detect K8s version. Feature requires K8s 1.35+.". */
int opsettings_check_server_version(const opsettings_t *s, const json_t *version, buf_t *err);

/* True when opsettings_check_server_version() needs the version (SidecarSubmitterRestart on). */
bool opsettings_wants_server_version(const opsettings_t *s);

/* The batch scheduler in force: batchScheduler, else volcano for the deprecated
 * enableBatchScheduler, else none. */
batchsched_t opsettings_batch_scheduler(const opsettings_t *s);

/* Everything for a controller process: environment, --kuberay-config, --feature-gates,
 * --batch-scheduler, --watch-namespace, --cluster-domain, and the Configuration's settings that
 * are ctrlsvc options set into `cfg` (cfg_override). 0 or an error with the message in err. */
int opsettings_configure(opsettings_t *s, cfg_t *cfg, buf_t *err);

/* True when namespace `ns` is in the watch list (or there is none). */
bool opsettings_watches(const opsettings_t *s, const char *ns);

/* The settings as the builders take them; pointers borrow from `s`. */
void opsettings_fill_podbuild(const opsettings_t *s, podbuild_opts_t *o);
void opsettings_fill_objbuild(const opsettings_t *s, objbuild_opts_t *o);
void opsettings_fill_rayjob(const opsettings_t *s, rj_settings_t *o);
void opsettings_fill_rayservice(const opsettings_t *s, rs_settings_t *o);

/* Self-test. */
int opsettings_test(bool verbose);

#endif
