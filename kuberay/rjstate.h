/*
 * rjstate: KubeRay's RayJob state machine (../shared/spec/kuberay-behavior.md §2.3, §2.5 failure
 * detection, §2.7), as one pure step: what was observed goes in (the RayJob, its RayCluster, its
 * submitter Job, the head pod, the Ray job's info from the dashboard, the time), what to do comes
 * out (the status to write, the objects to create or delete, the dashboard calls, Events, when to
 * look again). The submitter service (services/submitter) gathers the inputs and carries the
 * actions out; this file decides, so every transition is testable without a cluster.
 *
 * One step is one KubeRay reconcile: the pre-steps (deletion, validation), then the switch on
 * status.jobDeploymentStatus, then (not after an early return) the backoff check that counts
 * failed/succeeded and turns a Failed into Retrying while backoffLimit allows, then one status
 * write when anything changed. Timestamps are RFC 3339 (second precision, as metav1.Time).
 *
 * Differences from KubeRay, on purpose:
 *  - A New RayJob without the finalizer gets only the finalizer in one step, its ids and
 *    Initializing in the next (KubeRay: the finalizer Update, then the status, in one reconcile);
 *    each write carries the observed resourceVersion as its precondition, so a lagging observed
 *    copy can never write a second set of ids.
 *  - The dashboard is asked only when the step needs it (out.wants_info); the service asks, then
 *    steps again with the answer.
 */
#ifndef RF_RJSTATE_H
#define RF_RJSTATE_H

#include "batchsched.h"
#include "buf.h"
#include "objbuild.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JobDeploymentStatus values. */
#define RJ_NEW ""
#define RJ_INITIALIZING "Initializing"
#define RJ_WAITING "Waiting"
#define RJ_RUNNING "Running"
#define RJ_COMPLETE "Complete"
#define RJ_FAILED "Failed"
#define RJ_SUSPENDING "Suspending"
#define RJ_SUSPENDED "Suspended"
#define RJ_RETRYING "Retrying"
#define RJ_VALIDATION_FAILED "ValidationFailed"

/* Reasons. */
#define RJ_R_SUBMISSION_FAILED "SubmissionFailed"
#define RJ_R_DEADLINE "DeadlineExceeded"
#define RJ_R_PRE_RUNNING_DEADLINE "PreRunningDeadlineExceeded"
#define RJ_R_APP_FAILED "AppFailed"
#define RJ_R_GRACE "JobDeploymentStatusTransitionGracePeriodExceeded"
#define RJ_R_CHECK_TIMEOUT "JobStatusCheckTimeoutExceeded"
#define RJ_R_VALIDATION "ValidationFailed"

#define RJ_REQUEUE_MS 3000 /* RayJobDefaultRequeueDuration */
#define RJ_SUBMITTER_FINISHED_TIMEOUT_S 30 /* DefaultSubmitterFinishedTimeout */
#define RJ_DEFAULT_GRACE_S 300 /* RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS */
#define RJ_DEFAULT_CHECK_TIMEOUT_S 300 /* RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS */
#define RJ_TTL_SLACK_MS 2000 /* TTL waits requeue after the remaining time plus this */
#define RJ_MAX_EVENTS 4 /* Events one step may emit */
#define RJ_MSG_MAX 2048 /* longest Event message */

/* Actions of a step (rjstate_out_t.actions), carried out in this order. */
enum {
    RJ_ACT_REMOVE_FINALIZER = 1u << 0, /* the RayJob is being deleted */
    RJ_ACT_STOP_JOB = 1u << 1, /* POST /api/jobs/<status.jobId>/stop (errors only logged) */
    RJ_ACT_CREATE_CLUSTER = 1u << 2, /* create out.cluster */
    RJ_ACT_HEAD_SERVICE = 1u << 3, /* ensure the RayJob's head Service (<rayjob>-head-svc) */
    RJ_ACT_CREATE_JOB = 1u << 4, /* create out.job (the K8sJobMode submitter) */
    RJ_ACT_SUBMIT = 1u << 5, /* HTTPMode: POST /api/jobs/ with out.submit */
    RJ_ACT_DELETE_CLUSTER = 1u << 6, /* delete RayCluster status.rayClusterName (observed) */
    RJ_ACT_DELETE_JOB = 1u << 7, /* delete the submitter Job (propagation Background) */
    RJ_ACT_SUSPEND_WORKERS = 1u << 8, /* set suspend: true on every worker group of the cluster */
    RJ_ACT_DELETE_SELF = 1u << 9, /* delete the RayJob */
    RJ_ACT_ADD_FINALIZER = 1u << 10, /* add ray.io/rayjob-finalizer (alone in its step) */
    RJ_ACT_CREATE_PODGROUP = 1u << 11, /* create out.podgroup (batch scheduler, Initializing) */
    RJ_ACT_SYNC_PODGROUP = 1u << 12 /* create or resize to out.podgroup (terminal: Volcano
                                       CleanupOnCompletion) */
};

/* What the dashboard said about the Ray job (GET /api/jobs/<id>), when the step needed it. */
typedef enum {
    RJ_INFO_NONE = 0, /* not asked */
    RJ_INFO_OK, /* answered */
    RJ_INFO_NOT_FOUND, /* 404 */
    RJ_INFO_ERROR /* anything else (head unreachable, timeout, 5xx) */
} rj_info_kind_t;

typedef struct {
    rj_info_kind_t kind;
    const char *status; /* PENDING ... (RJ_INFO_OK) */
    const char *message; /* the job's message */
    int64_t start_ms, end_ms; /* epoch ms, 0 unknown */
} rj_info_t;

/* Operator-level settings. */
typedef struct {
    int64_t grace_s; /* RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS */
    int64_t check_timeout_s; /* RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS */
    bool delete_cr_after_finish; /* DELETE_RAYJOB_CR_AFTER_JOB_FINISHES=true */
    const char *domain; /* cluster domain of dashboard URLs (NULL: cluster.local) */
    validate_gates_t gates; /* feature gates */
    batchsched_t batch_scheduler; /* --batch-scheduler (default none) */
} rj_settings_t;

/* Fills `s` with KubeRay's defaults. */
void rjstate_settings_default(rj_settings_t *s);

/* What was observed. Borrowed for the call. */
typedef struct {
    const json_t *rj; /* the RayJob */
    const json_t *cluster; /* the RayCluster named status.rayClusterName, or NULL (none) */
    const json_t *job; /* the submitter Job (named like the RayJob), or NULL */
    const json_t *head_pod; /* SidecarMode: the cluster's head pod, or NULL */
    rj_info_t info; /* the Ray job, when rjstate_needs_info() said so */
    int64_t now_ms; /* wall clock, epoch ms */
    const rj_settings_t *set; /* settings */
    bool validated; /* the caller knows this version of the RayJob validates clean (skip it) */
    objbuild_rand_fn rnd; /* random bytes for generated names */
    void *rnd_ctx;
} rj_in_t;

typedef struct {
    bool warning;
    const char *reason;
    char msg[RJ_MSG_MAX];
} rj_event_t;

/* What to do. Free with rjstate_out_free(). */
typedef struct {
    unsigned actions; /* RJ_ACT_* */
    json_t *status; /* the status to write (whole), or NULL when unchanged */
    json_t *cluster; /* RJ_ACT_CREATE_CLUSTER: the RayCluster */
    json_t *job; /* RJ_ACT_CREATE_JOB: the submitter Job */
    json_t *service; /* RJ_ACT_HEAD_SERVICE: the RayJob's head Service */
    json_t *submit; /* RJ_ACT_SUBMIT: the request body */
    json_t *podgroup; /* RJ_ACT_CREATE/SYNC_PODGROUP: the RayJob's PodGroup (Volcano) */
    rj_event_t events[RJ_MAX_EVENTS]; /* Events about the RayJob */
    size_t nevents;
    int64_t requeue_ms; /* look again after this (0: only when something changes) */
    bool invalid; /* validation failed (the status and Warning say why) */
    bool wants_info; /* the step stopped where it reads the Ray job: ask the dashboard (GET
                      * /api/jobs/<status.jobId>) and step again with in.info filled */
    char why[RJ_MSG_MAX]; /* one sentence: why the RayJob is where it is now (logs, explain) */
} rj_out_t;

/* One step. With in->info.kind RJ_INFO_NONE a Running RayJob whose checks before the dashboard
 * call did not end the step comes back with only out->wants_info set. Returns 0 (out filled) or
 * ERR_NOMEM / ERR_INVAL (a builder failed: err says why, nothing in out is to be done). */
int rjstate_step(const rj_in_t *in, rj_out_t *out, buf_t *err);

/* After RJ_ACT_SUBMIT failed (not "already exists"): the status to write instead (the failure
 * timer jobStatusCheckFailureStartTime started if not running). `status` is out->status or a
 * copy of the observed one; modified in place. */
void rjstate_submit_failed(json_t *status, int64_t now_ms);

/* Frees what out holds and zeroes it. */
void rjstate_out_free(rj_out_t *out);

/* True when RayJob status `now` differs from `old` (NULL: none) in anything but the copied
 * cluster status's lastUpdateTime, which moves without anything changing: the comparison of
 * rjstate_step()'s status write and of the service's status guard. */
bool rjstate_status_changed(const json_t *old, const json_t *now);

/* True for Complete and Failed. */
bool rjstate_terminal(const char *deployment_status);

/* Self-test: every transition. */
int rjstate_test(bool verbose);

#endif
