/*
 * rayjob: the RayJob model (../shared/spec/kuberay-behavior.md §2), pure functions: KubeRay's
 * RayJob validation with its exact messages (ValidateRayJobMetadata, ValidateRayJobSpec,
 * ValidateRayJobStatus), and the objects a RayJob owns: its RayCluster (§2.4, with the SidecarMode
 * submitter container), its head Service `<rayjob>-head-svc`, the K8sJobMode submitter Job (§2.5)
 * with the generated `ray job submit` shell, the Jobs API submit body (§2.6) and the dashboard URL.
 *
 * Objects are jansson trees; the caller owns what is returned. Builders return NULL with the
 * reason in `err` (the builder's own message, or KubeRay's where it has one).
 */
#ifndef RF_RAYJOB_H
#define RF_RAYJOB_H

#include "buf.h"
#include "objbuild.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>

/* Submission modes. */
#define RAYJOB_MODE_K8SJOB "K8sJobMode"
#define RAYJOB_MODE_HTTP "HTTPMode"
#define RAYJOB_MODE_INTERACTIVE "InteractiveMode"
#define RAYJOB_MODE_SIDECAR "SidecarMode"

#define RAYJOB_SUBMITTER_CONTAINER "ray-job-submitter" /* SubmitterContainerName */
#define RAYJOB_MAX_NAME 47 /* MaxRayJobNameLength */
#define RAYJOB_RAND_LEN 5 /* rand.String(5) of generated names and ids */
#define RAYJOB_DEFAULT_SUBMITTER_BACKOFF 2 /* submitterConfig.backoffLimit default */
#define RAYJOB_DEFAULT_DASHBOARD_PORT 8265 /* head port "dashboard" when none is declared */
#define RAYJOB_DEFAULT_DOMAIN "cluster.local" /* CLUSTER_DOMAIN default */

/* Event reasons of validation (the Warning's reason) */
#define RAYJOB_EV_INVALID_METADATA "InvalidRayJobMetadata"
#define RAYJOB_EV_INVALID_SPEC "InvalidRayJobSpec"
#define RAYJOB_EV_INVALID_STATUS "InvalidRayJobStatus"

/* spec.submissionMode, defaulted to K8sJobMode (static string or borrowed from rj). */
const char *rayjob_mode(const json_t *rj);

/* Validates rj (metadata, then spec, then status, KubeRay's order; the gates as validate.h's,
 * with job_deletion_policy and sidecar_submitter_restart). Returns 0, or VALIDATE_INVALID with
 * the message appended to msg and *reason set to the Event reason (RAYJOB_EV_*); ERR_NOMEM /
 * ERR_TOOBIG when the message could not be written. */
int rayjob_validate(const json_t *rj, const validate_gates_t *g, const char **reason, buf_t *msg);

/* KubeRay's ValidateRayJobSpec alone (no metadata or status rules, no CRD CEL rules) of a RayJob
 * `rj` ({"spec": ...}; a RayCronJob's jobTemplate is checked so). Returns 0 or VALIDATE_INVALID
 * with the message appended to msg (ERR_NOMEM / ERR_TOOBIG as rayjob_validate()). */
int rayjob_validate_spec(const json_t *rj, const validate_gates_t *g, buf_t *msg);

/* `<base>-<5 chars>` from k8s rand.String's alphabet with rnd; NULL on failure (malloc'd).
 * The cluster name uses names_trim_job_name(rayjob) as base (GenerateRayClusterName), the job id
 * the RayJob's name (GenerateRayJobId). */
char *rayjob_random_name(const char *base, objbuild_rand_fn rnd, void *ctx);

/* The RayCluster `cluster_name` a RayJob owns (§2.4): labels (RayJob's + originated-from-cr-name,
 * originated-from-crd=RayJob, job-submission-mode), annotations (+ disable-provisioned-head-restart
 * in SidecarMode), spec = copy of rayClusterSpec, controller ownerReference to the RayJob. In
 * SidecarMode the submitter container (rayjob_sidecar_container()) is appended to the head pod's
 * containers and the head pod gets restartPolicy Never. Needs status.jobId in SidecarMode. */
json_t *rayjob_cluster(const json_t *rj, const char *cluster_name, const validate_gates_t *g,
                       buf_t *err);

/* The RayJob's own head Service `<rayjob>-head-svc` for its cluster rc (built like the cluster's
 * head Service, labels replaced, owned by the RayJob). */
json_t *rayjob_head_service(const json_t *rj, const json_t *rc, buf_t *err);

/* The name of the head Service of cluster rc KubeRay's dashboard URL uses (the cluster's head
 * service name, GenerateHeadServiceName), malloc'd; NULL on out of memory. */
char *rayjob_head_service_name(const json_t *rc);

/* status.dashboardURL for cluster rc: "<head svc>.<ns>.svc.<domain>:<port>" (port: the head
 * Service port named "dashboard", else the head container's "dashboard" port, else 8265).
 * domain NULL: RAYJOB_DEFAULT_DOMAIN. Returns 0 or a negative err_t. */
int rayjob_dashboard_url(const json_t *rc, const char *domain, buf_t *out);

/* The generated submitter shell (§2.5), tokens joined with single spaces. K8sJobMode:
 * address "http://<dashboardURL>", health "<address>/api/gcs_healthz", full form. SidecarMode:
 * address http://127.0.0.1:<port>, health http://localhost:<port>/api/gcs_healthz, the short
 * form unless `sidecar_restart` (gate SidecarSubmitterRestart). */
int rayjob_submitter_shell(const json_t *rj, const char *address, const char *health_url,
                           const char *job_id, bool full, buf_t *out);

/* The K8sJobMode submitter Job (§2.5): name = RayJob's, its labels, backoffLimit, the user's
 * submitterPodTemplate or KubeRay's default one (image of rc's head Ray container), the command
 * and env (PYTHONUNBUFFERED, RAY_DASHBOARD_ADDRESS, RAY_JOB_SUBMISSION_ID) on container 0,
 * controller ownerReference to the RayJob. Uses rj's status.dashboardURL and status.jobId. */
json_t *rayjob_submitter_job(const json_t *rj, const json_t *rc, buf_t *err);

/* The SidecarMode container `ray-job-submitter` for rj's head template (uses status.jobId). */
json_t *rayjob_sidecar_container(const json_t *rj, const validate_gates_t *g, buf_t *err);

/* The POST /api/jobs/ body (§2.6): entrypoint, submission_id = job_id, metadata, runtime_env
 * (runtimeEnvYAML converted to an object), entrypoint_num_cpus/_gpus, entrypoint_resources
 * (JSON string -> object); empty ones left out. */
json_t *rayjob_submit_body(const json_t *rj, const char *job_id, buf_t *err);

/* Self-test: validation messages, the builders on every RayJob sample in
 * ../shared/kuberay/samples, the shell text. */
int rayjob_test(bool verbose);

#endif
