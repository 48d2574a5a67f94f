/*
 * rjstate: KubeRay's RayJob state machine as one pure step (see rjstate.h).
 */
#include "rjstate.h"

#include "err.h"
#include "json.h"
#include "labels.h"
#include "names.h"
#include "rayjob.h"
#include "rftime.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MANAGED_BY "ray.io/kuberay-operator" /* the only spec.managedBy handled */
#define S_MS 1000 /* ms per second */
#define S_TIME_MAX 64 /* bytes of a formatted time */

/* Policies of a deletion rule, by impact (DeleteSelf 4 > DeleteCluster 3 > ...). */
enum { S_P_NONE = 1, S_P_WORKERS = 2, S_P_CLUSTER = 3, S_P_SELF = 4 };

/* The step's working state. */
typedef struct {
    const rj_in_t *in;
    rj_out_t *out;
    buf_t *err;
    const json_t *rj; /* the RayJob */
    const json_t *spec; /* its spec ({} when absent) */
    json_t *st; /* the status being staged (a copy of the observed one) */
    const char *mode; /* submission mode */
    bool selector; /* clusterSelector is used */
} step_t;

void rjstate_settings_default(rj_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->grace_s = RJ_DEFAULT_GRACE_S;
    s->check_timeout_s = RJ_DEFAULT_CHECK_TIMEOUT_S;
    validate_gates_default(&s->gates);
}

bool rjstate_terminal(const char *d)
{
    return d && (strcmp(d, RJ_COMPLETE) == 0 || strcmp(d, RJ_FAILED) == 0);
}

/* True for a terminal Ray job status. */
static bool s_job_terminal(const char *js)
{
    return js && (strcmp(js, "STOPPED") == 0 || strcmp(js, "SUCCEEDED") == 0 ||
                  strcmp(js, "FAILED") == 0);
}

void rjstate_out_free(rj_out_t *out)
{
    json_decref(out->status);
    json_decref(out->cluster);
    json_decref(out->job);
    json_decref(out->service);
    json_decref(out->submit);
    json_decref(out->podgroup);
    memset(out, 0, sizeof(*out));
}

/* ---------- small helpers ---------- */

static const char *s_sget(const step_t *s, const char *key)
{
    return json_string_value(json_object_get(s->st, key));
}

static const char *s_dstate(const step_t *s)
{
    const char *d = s_sget(s, "jobDeploymentStatus");
    return d ? d : RJ_NEW;
}

static void s_sset(step_t *s, const char *key, const char *v)
{
    if (v)
        json_object_set_new(s->st, key, json_string(v));
    else
        json_object_del(s->st, key);
}

/* Formats epoch ms as a Kubernetes Time. */
static void s_fmt_time(int64_t ms, char *out)
{
    if (rftime_format(ms, RFTIME_SEC, out, S_TIME_MAX) != 0)
        out[0] = '\0';
}

/* Go's time.Time %v (metav1.Time in messages): "2006-01-02 15:04:05 +0000 UTC". */
static void s_fmt_gotime(int64_t ms, char *out)
{
    char t[S_TIME_MAX];
    s_fmt_time(ms, t);
    if (strlen(t) >= 20) {
        t[10] = ' ';
        t[19] = '\0';
        snprintf(out, S_TIME_MAX, "%.19s +0000 UTC", t); /* bounded: no truncation */
    } else {
        snprintf(out, S_TIME_MAX, "%s", t);
    }
}

/* A status time field in epoch ms, or -1 when absent or unparsable. */
static int64_t s_time_of(const json_t *st, const char *key)
{
    const char *v = json_string_value(json_object_get(st, key));
    int64_t ms;
    return v && *v && rftime_parse(v, &ms) == 0 ? ms : -1;
}

static void s_set_now(step_t *s, const char *key)
{
    char t[S_TIME_MAX];
    s_fmt_time(s->in->now_ms, t);
    s_sset(s, key, t);
}

static void s_why(step_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_why(step_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->out->why, sizeof(s->out->why), fmt, ap);
    va_end(ap);
}

static void s_event(step_t *s, bool warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_event(step_t *s, bool warning, const char *reason, const char *fmt, ...)
{
    rj_out_t *o = s->out;
    if (o->nevents >= RJ_MAX_EVENTS)
        return;
    rj_event_t *e = &o->events[o->nevents++];
    e->warning = warning;
    e->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

/* Moves to deployment status d (reason/message set when reason is not NULL). */
static void s_goto(step_t *s, const char *d, const char *reason, const char *msg)
{
    s_sset(s, "jobDeploymentStatus", d);
    if (reason) {
        s_sset(s, "reason", reason);
        s_sset(s, "message", msg);
    }
}

static int64_t s_spec_int(const step_t *s, const char *key, int64_t def)
{
    json_t *v = json_object_get(s->spec, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* The RayJob carries ray.io/rayjob-finalizer. */
static bool s_has_finalizer(const json_t *rj)
{
    return jx_array_has_string(jx_get(rj, "metadata.finalizers"), FINALIZER_RAYJOB);
}

/* ---------- checks shared by states ---------- */

/* activeDeadlineSeconds passed: Failed/DeadlineExceeded. */
static bool s_active_deadline(step_t *s)
{
    int64_t ads = s_spec_int(s, "activeDeadlineSeconds", 0);
    int64_t start = s_time_of(s->st, "startTime");
    if (ads <= 0 || start < 0 || s->in->now_ms < start + ads * S_MS)
        return false;
    char t[S_TIME_MAX], msg[RJ_MSG_MAX];
    s_fmt_gotime(start, t);
    snprintf(msg, sizeof(msg),
             "The RayJob has passed the activeDeadlineSeconds. StartTime: %s. "
             "ActiveDeadlineSeconds: %" PRId64,
             t, ads);
    s_goto(s, RJ_FAILED, RJ_R_DEADLINE, msg);
    s_why(s, "%s", msg);
    return true;
}

/* preRunningDeadlineSeconds passed: Failed/PreRunningDeadlineExceeded. */
static bool s_pre_running_deadline(step_t *s)
{
    int64_t prd = s_spec_int(s, "preRunningDeadlineSeconds", 0);
    int64_t start = s_time_of(s->st, "startTime");
    if (prd <= 0 || start < 0 || s->in->now_ms < start + prd * S_MS)
        return false;
    char t[S_TIME_MAX], msg[RJ_MSG_MAX];
    s_fmt_gotime(start, t);
    snprintf(msg, sizeof(msg),
             "The RayJob has passed the preRunningDeadlineSeconds. StartTime: %s. "
             "PreRunningDeadlineSeconds: %" PRId64,
             t, prd);
    s_goto(s, RJ_FAILED, RJ_R_PRE_RUNNING_DEADLINE, msg);
    s_why(s, "%s", msg);
    return true;
}

/* The cluster is observed and not being deleted. */
static bool s_cluster_live(const json_t *rc)
{
    return rc && !jx_get(rc, "metadata.deletionTimestamp");
}

/* Stages the creation of the RayJob's RayCluster (not with clusterSelector). */
static int s_create_cluster(step_t *s)
{
    const char *name = s_sget(s, "rayClusterName");
    json_t *rc = rayjob_cluster(s->rj, name ? name : "", &s->in->set->gates, s->err);
    if (!rc)
        return ERR_INVAL;
    /* AddMetadataToChildResource(rayJob, rayCluster, "") in K8sJobMode */
    if (strcmp(s->mode, RAYJOB_MODE_K8SJOB) == 0 &&
        batchsched_add_metadata(s->in->set->batch_scheduler, s->rj, rc, "") != 0) {
        json_decref(rc);
        return ERR_NOMEM;
    }
    s->out->cluster = rc;
    s->out->actions |= RJ_ACT_CREATE_CLUSTER;
    return 0;
}

/* The RayCluster status as kept in rayClusterStatus. */
static void s_copy_cluster_status(step_t *s)
{
    json_t *cs = jx_get(s->in->cluster, "status");
    if (json_is_object(cs))
        json_object_set_new(s->st, "rayClusterStatus", json_deep_copy(cs));
}

/* Submitter state (§2.5 failure detection). */
typedef struct {
    bool failed; /* the step moved to Failed */
    bool finished; /* the submitter finished */
    int64_t finished_ms; /* when, -1 unknown */
} sub_t;

/* K8sJobMode: the Job's Complete/Failed condition. */
static void s_check_job(step_t *s, sub_t *r)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(s->in->job, "status.conditions"), i, c)
    {
        const char *type = jx_str(c, "type", "");
        if (strcmp(jx_str(c, "status", ""), "True") != 0)
            continue;
        bool failed = strcmp(type, "Failed") == 0;
        if (!failed && strcmp(type, "Complete") != 0)
            continue;
        r->finished = true;
        const char *lt = jx_str(c, "lastTransitionTime", "");
        if (!*lt || rftime_parse(lt, &r->finished_ms) != 0)
            r->finished_ms = -1;
        if (failed) {
            const char *js = s_sget(s, "jobStatus");
            bool app = js && strcmp(js, "FAILED") == 0;
            char msg[RJ_MSG_MAX];
            snprintf(msg, sizeof(msg), "Job submission has failed. Reason: %s. Message: %s",
                     jx_str(c, "reason", ""), jx_str(c, "message", ""));
            s_goto(s, RJ_FAILED, app ? RJ_R_APP_FAILED : RJ_R_SUBMISSION_FAILED, msg);
            s_why(s, "the submitter Job failed: %s", msg);
            r->failed = true;
        }
        return;
    }
}

/* SidecarMode: the head pod's ray-job-submitter container. */
static void s_check_sidecar(step_t *s, sub_t *r)
{
    const json_t *pod = s->in->head_pod;
    if (!pod) {
        s_goto(s, RJ_FAILED, RJ_R_APP_FAILED, "Ray head pod not found.");
        s_why(s, "the head pod of the RayJob's cluster is gone (SidecarMode)");
        r->failed = true;
        return;
    }
    const json_t *cs =
        jx_array_find(jx_get(pod, "status.containerStatuses"), "name", RAYJOB_SUBMITTER_CONTAINER);
    if (!cs)
        return;
    /* without the restart gate a non-zero exit fails the RayJob; with it (the container restarts
     * OnFailure) only once the restarts reached submitterConfig.backoffLimit */
    bool restart = s->in->set->gates.sidecar_submitter_restart;
    bool limit_reached =
        jx_int(cs, "restartCount", 0) >=
        jx_int(s->spec, "submitterConfig.backoffLimit", RAYJOB_DEFAULT_SUBMITTER_BACKOFF);
    const json_t *term = jx_get(cs, "state.terminated"), *failure = NULL;
    if (term) {
        r->finished = true;
        const char *fa = jx_str(term, "finishedAt", "");
        if (!*fa || rftime_parse(fa, &r->finished_ms) != 0)
            r->finished_ms = -1;
        if (jx_int(term, "exitCode", 0) != 0 && (!restart || limit_reached))
            failure = term;
    } else if (restart && limit_reached) {
        const json_t *last = jx_get(cs, "lastState.terminated");
        if (last && jx_int(last, "exitCode", 0) != 0)
            failure = last;
    }
    if (!failure)
        return;
    char msg[RJ_MSG_MAX];
    snprintf(msg, sizeof(msg), "Ray head pod container %s terminated with exit code %d: %s",
             RAYJOB_SUBMITTER_CONTAINER, (int)jx_int(failure, "exitCode", 0),
             jx_str(failure, "reason", ""));
    s_goto(s, RJ_FAILED, RJ_R_SUBMISSION_FAILED, msg);
    s_why(s, "%s", msg);
    r->failed = true;
}

/* ---------- states ---------- */

/* New: ids, cluster name, Initializing, startTime (initRayJobStatusIfNeed). */
static int s_new(step_t *s)
{
    /* the finalizer first, in a pass of its own (KubeRay: an Update before the status) */
    if (!s_has_finalizer(s->rj)) {
        s->out->actions |= RJ_ACT_ADD_FINALIZER;
        s->out->requeue_ms = RJ_REQUEUE_MS;
        s_why(s, "new: adding the finalizer " FINALIZER_RAYJOB);
        return 0;
    }
    const char *name = jx_str(s->rj, "metadata.name", "");
    const char *jid = s_sget(s, "jobId"), *cn = s_sget(s, "rayClusterName"),
               *js = s_sget(s, "jobStatus");
    if (!jid || !*jid || !cn || !*cn || !js || !*js) {
        if ((!jid || !*jid) && strcmp(s->mode, RAYJOB_MODE_INTERACTIVE) != 0) {
            const char *sj = jx_str(s->spec, "jobId", "");
            char *gen = *sj ? NULL : rayjob_random_name(name, s->in->rnd, s->in->rnd_ctx);
            if (!*sj && !gen)
                return ERR_NOMEM;
            s_sset(s, "jobId", *sj ? sj : gen);
            free(gen);
        }
        if (!cn || !*cn) {
            json_t *sel = json_object_get(s->spec, "clusterSelector");
            const char *sn = json_string_value(json_object_get(sel, LABEL_CLUSTER));
            if (s->selector && sn) {
                s_sset(s, "rayClusterName", sn);
            } else {
                char *base = names_trim_job_name(name);
                char *gen = base ? rayjob_random_name(base, s->in->rnd, s->in->rnd_ctx) : NULL;
                free(base);
                if (!gen)
                    return ERR_NOMEM;
                s_sset(s, "rayClusterName", gen);
                free(gen);
            }
        }
        s_sset(s, "jobStatus", "");
        s_goto(s, RJ_INITIALIZING, NULL, NULL);
        s_set_now(s, "startTime");
    }
    s_why(s, "new: job id %s and cluster %s recorded before anything is created",
          s_sget(s, "jobId") ? s_sget(s, "jobId") : "(interactive)", s_sget(s, "rayClusterName"));
    s->out->requeue_ms = RJ_REQUEUE_MS;
    return 0;
}

/* The submitter pod spec whose resources a Volcano RayJob PodGroup reserves (getSubmitterResource):
 * K8sJobMode the submitter Job's template spec, SidecarMode the submitter container; NULL none. */
static json_t *s_submitter_podspec(step_t *s)
{
    const json_t *rcspec = jx_get(s->rj, "spec.rayClusterSpec");
    if (strcmp(s->mode, RAYJOB_MODE_K8SJOB) == 0) {
        json_t *rc = json_pack("{s:{s:s}, s:O}", "metadata", "name",
                               jx_str(s->rj, "metadata.name", ""), "spec", rcspec);
        json_t *job = rc ? rayjob_submitter_job(s->rj, rc, NULL) : NULL;
        json_t *ps = json_incref(jx_get(job, "spec.template.spec"));
        json_decref(job);
        json_decref(rc);
        return ps;
    }
    if (strcmp(s->mode, RAYJOB_MODE_SIDECAR) == 0) {
        json_t *c = rayjob_sidecar_container(s->rj, &s->in->set->gates, NULL);
        return c ? json_pack("{s:[o]}", "containers", c) : NULL;
    }
    return NULL;
}

/* DoBatchSchedulingOnSubmission(rayJob) at Initializing: KAI refuses K8sJobMode; Volcano creates
 * the RayJob's PodGroup `ray-<job>-pg` (minResources with the submitter's). */
static int s_batch_submission(step_t *s)
{
    batchsched_t b = s->in->set->batch_scheduler;
    if (b == BATCHSCHED_NONE)
        return 0;
    int rc = batchsched_check_rayjob(b, s->rj, s->err);
    if (rc || b != BATCHSCHED_VOLCANO)
        return rc;
    json_t *sub = s_submitter_podspec(s);
    json_t *pg = NULL;
    rc = batchsched_rayjob_podgroup(b, s->rj, sub, &pg, s->err);
    json_decref(sub);
    if (rc == 0 && pg) {
        s->out->podgroup = pg;
        s->out->actions |= RJ_ACT_CREATE_PODGROUP;
    }
    return rc;
}

/* Initializing: cluster, dashboard URL, submitter Job, then Running or Waiting. */
static int s_initializing(step_t *s)
{
    s->out->requeue_ms = RJ_REQUEUE_MS;
    if (jx_bool(s->spec, "suspend", false)) {
        s_goto(s, RJ_SUSPENDING, NULL, NULL);
        s_why(s, "spec.suspend is true: suspending");
        return 0;
    }
    if (s_active_deadline(s) || s_pre_running_deadline(s))
        return 0;
    int brc = s_batch_submission(s);
    if (brc)
        return brc;
    const char *cn = s_sget(s, "rayClusterName");
    const json_t *rc = s->in->cluster;
    if (!rc) {
        if (s->selector) {
            s_event(s, true, "RayClusterNotFound",
                    "RayCluster %s/%s set in the clusterSelector is not found. It must be "
                    "created manually",
                    jx_str(s->rj, "metadata.namespace", ""), cn ? cn : "");
            s_why(s, "waiting for RayCluster %s named in spec.clusterSelector", cn ? cn : "");
            return 0;
        }
        s_why(s, "creating RayCluster %s", cn ? cn : "");
        return s_create_cluster(s);
    }
    const char *url = s_sget(s, "dashboardURL");
    if (!url || !*url) {
        if (strcmp(jx_str(rc, "status.state", ""), "ready") != 0) {
            s_copy_cluster_status(s);
            s_why(s, "waiting for RayCluster %s to be ready", cn ? cn : "");
            return 0;
        }
        buf_t u;
        buf_init(&u, 1024);
        int rcode = rayjob_dashboard_url(rc, s->in->set->domain, &u);
        if (rcode == 0)
            s_sset(s, "dashboardURL", buf_str(&u));
        buf_free(&u);
        if (rcode != 0) {
            buf_printf(s->err, "dashboard URL of RayCluster %s: %s", cn ? cn : "", err_str(rcode));
            return rcode;
        }
        s_copy_cluster_status(s);
    }
    if (strcmp(s->mode, RAYJOB_MODE_INTERACTIVE) == 0) {
        s_goto(s, RJ_WAITING, NULL, NULL);
        s_why(s, "InteractiveMode: waiting for spec.jobId");
        return 0;
    }
    if (strcmp(s->mode, RAYJOB_MODE_K8SJOB) == 0 && !s->in->job) {
        /* the Job is built from the status as it will be written (dashboardURL, jobId) */
        json_t *rj2 = json_deep_copy(s->rj);
        if (!rj2)
            return ERR_NOMEM;
        json_object_set(rj2, "status", s->st);
        json_t *job = rayjob_submitter_job(rj2, rc, s->err);
        json_decref(rj2);
        if (!job)
            return ERR_INVAL;
        /* AddMetadataToChildResource(rayJob, submitterTemplate, "submittergroup") */
        if (batchsched_add_metadata(s->in->set->batch_scheduler, s->rj,
                                    jx_get(job, "spec.template"), BATCHSCHED_SUBMITTER_GROUP)) {
            json_decref(job);
            return ERR_NOMEM;
        }
        s->out->job = job;
        s->out->actions |= RJ_ACT_CREATE_JOB;
    }
    s_goto(s, RJ_RUNNING, NULL, NULL);
    s_why(s, "cluster %s is ready; the job is submitted (%s)", cn ? cn : "", s->mode);
    return 0;
}

/* Waiting (InteractiveMode): spec.jobId. */
static int s_waiting(step_t *s)
{
    s->out->requeue_ms = RJ_REQUEUE_MS;
    if (s_pre_running_deadline(s))
        return 0;
    const char *sj = jx_str(s->spec, "jobId", "");
    if (!*sj) {
        s_why(s, "InteractiveMode: waiting for the user to set spec.jobId");
        return 0;
    }
    s_sset(s, "jobId", sj);
    s_goto(s, RJ_RUNNING, NULL, NULL);
    s_why(s, "InteractiveMode: spec.jobId %s set", sj);
    return 0;
}

/* Running. */
static int s_running(step_t *s)
{
    const rj_in_t *in = s->in;
    s->out->requeue_ms = RJ_REQUEUE_MS;
    if (jx_bool(s->spec, "suspend", false)) {
        s_goto(s, RJ_SUSPENDING, NULL, NULL);
        s_why(s, "spec.suspend is true: suspending");
        return 0;
    }
    if (s_active_deadline(s))
        return 0;
    const char *js = s_sget(s, "jobStatus");
    if (s_job_terminal(js)) {
        int64_t end = s_time_of(jx_get(s->st, "rayJobInfo"), "endTime");
        if (end >= 0 && in->now_ms >= end + in->set->grace_s * S_MS) {
            bool failed = strcmp(js, "FAILED") == 0;
            char msg[RJ_MSG_MAX];
            snprintf(msg, sizeof(msg),
                     "The job reached terminal status %s but the deployment status did not "
                     "follow within %" PRId64 "s",
                     js, in->set->grace_s);
            s_goto(s, failed ? RJ_FAILED : RJ_COMPLETE, RJ_R_GRACE, msg);
            s_why(s, "%s", msg);
            return 0;
        }
    }
    int64_t fst = s_time_of(s->st, "jobStatusCheckFailureStartTime");
    if (fst >= 0 && in->now_ms >= fst + in->set->check_timeout_s * S_MS) {
        char t[S_TIME_MAX], msg[RJ_MSG_MAX];
        s_fmt_gotime(fst, t);
        snprintf(msg, sizeof(msg),
                 "Job status checks have been failing since %s; exceeded timeout of %" PRId64 "s",
                 t, in->set->check_timeout_s);
        s_goto(s, RJ_FAILED, RJ_R_CHECK_TIMEOUT, msg);
        s_why(s, "%s", msg);
        return 0;
    }
    const char *cn = s_sget(s, "rayClusterName");
    if (!in->cluster) {
        if (s->selector) {
            s_event(s, true, "RayClusterNotFound",
                    "RayCluster %s/%s set in the clusterSelector is not found. It must be "
                    "created manually",
                    jx_str(s->rj, "metadata.namespace", ""), cn ? cn : "");
            s_why(s, "RayCluster %s named in spec.clusterSelector is gone", cn ? cn : "");
            return 0;
        }
        s_why(s, "RayCluster %s is gone: creating it again", cn ? cn : "");
        return s_create_cluster(s);
    }
    if (!s->selector) {
        json_t *svc = rayjob_head_service(s->rj, in->cluster, s->err);
        if (!svc)
            return ERR_INVAL;
        s->out->service = svc;
        s->out->actions |= RJ_ACT_HEAD_SERVICE;
    }
    sub_t sub = {.finished_ms = -1};
    bool has_submitter =
        strcmp(s->mode, RAYJOB_MODE_K8SJOB) == 0 || strcmp(s->mode, RAYJOB_MODE_SIDECAR) == 0;
    if (strcmp(s->mode, RAYJOB_MODE_K8SJOB) == 0)
        s_check_job(s, &sub);
    else if (strcmp(s->mode, RAYJOB_MODE_SIDECAR) == 0)
        s_check_sidecar(s, &sub);
    if (sub.failed)
        return 0;
    /* the submitter finished 30 s ago: decided on the Ray job's state read now, never on the
     * last recorded one (under load that can be older than the job's end) */
    bool sub_late = sub.finished && sub.finished_ms >= 0 &&
                    in->now_ms >= sub.finished_ms + RJ_SUBMITTER_FINISHED_TIMEOUT_S * S_MS;
    switch (in->info.kind) {
    case RJ_INFO_NONE:
        s->out->wants_info = true;
        return 0;
    case RJ_INFO_NOT_FOUND:
        if (strcmp(s->mode, RAYJOB_MODE_HTTP) == 0) {
            json_t *body = rayjob_submit_body(s->rj, s_sget(s, "jobId"), s->err);
            if (!body)
                return ERR_INVAL;
            s->out->submit = body;
            s->out->actions |= RJ_ACT_SUBMIT;
            s_why(s, "HTTPMode: submitting job %s to the dashboard", s_sget(s, "jobId"));
        } else if (has_submitter && sub.finished) {
            s_goto(s, RJ_FAILED, RJ_R_APP_FAILED,
                   "Submitter completed but Ray job not found in RayCluster.");
            s_why(s, "the submitter finished but the Ray job %s does not exist",
                  s_sget(s, "jobId"));
        } else {
            s_why(s, "waiting for the submitter to submit job %s", s_sget(s, "jobId"));
        }
        return 0;
    case RJ_INFO_ERROR:
        if (fst < 0)
            s_set_now(s, "jobStatusCheckFailureStartTime");
        s_why(s, "the dashboard of cluster %s did not answer about job %s", cn ? cn : "",
              s_sget(s, "jobId"));
        return 0;
    case RJ_INFO_OK:
        break;
    }
    json_object_del(s->st, "jobStatusCheckFailureStartTime");
    s_sset(s, "jobStatus", in->info.status ? in->info.status : "");
    s_sset(s, "message", in->info.message ? in->info.message : "");
    json_t *ji = json_object();
    char t[S_TIME_MAX];
    if (in->info.start_ms > 0) {
        s_fmt_time(in->info.start_ms, t);
        json_object_set_new(ji, "startTime", json_string(t));
    }
    if (in->info.end_ms > 0) {
        s_fmt_time(in->info.end_ms, t);
        json_object_set_new(ji, "endTime", json_string(t));
    }
    json_object_set_new(s->st, "rayJobInfo", ji);
    s_copy_cluster_status(s);
    js = s_sget(s, "jobStatus");
    bool terminal = s_job_terminal(js) && (!has_submitter || sub.finished);
    if (!terminal && sub_late) {
        char fin[S_TIME_MAX], msg[RJ_MSG_MAX];
        s_fmt_gotime(sub.finished_ms, fin);
        snprintf(msg, sizeof(msg),
                 "The RayJob submitter finished at %s but the ray job did not reach terminal "
                 "state within %ds",
                 fin, RJ_SUBMITTER_FINISHED_TIMEOUT_S);
        s_sset(s, "jobStatus", "FAILED");
        s_goto(s, RJ_FAILED, RJ_R_GRACE, msg);
        s_why(s, "%s", msg);
        return 0;
    }
    if (terminal) {
        if (strcmp(js, "FAILED") == 0) {
            s_goto(s, RJ_FAILED, RJ_R_APP_FAILED, in->info.message ? in->info.message : "");
            s_why(s, "the Ray job %s FAILED", s_sget(s, "jobId"));
        } else {
            s_goto(s, RJ_COMPLETE, NULL, NULL);
            s_why(s, "the Ray job %s ended %s", s_sget(s, "jobId"), js);
        }
    } else {
        s_why(s, "the Ray job %s is %s", s_sget(s, "jobId"), *js ? js : "not started");
    }
    return 0;
}

/* Suspending and Retrying: delete the cluster and the submitter Job, wait until both are gone,
 * reset, then Suspended or New. */
static int s_teardown(step_t *s, bool retrying)
{
    s->out->requeue_ms = RJ_REQUEUE_MS;
    bool waiting = false;
    if (!s->selector && s->in->cluster) {
        if (s_cluster_live(s->in->cluster))
            s->out->actions |= RJ_ACT_DELETE_CLUSTER;
        waiting = true;
    }
    if (strcmp(s->mode, RAYJOB_MODE_K8SJOB) == 0 && s->in->job) {
        if (!jx_get(s->in->job, "metadata.deletionTimestamp"))
            s->out->actions |= RJ_ACT_DELETE_JOB;
        waiting = true;
    }
    if (waiting) {
        s_why(s, "%s: waiting for the RayCluster and the submitter Job to be deleted",
              retrying ? "retrying" : "suspending");
        return 0;
    }
    /* CleanupOnCompletion: Volcano resizes the RayJob's PodGroup (the cluster is gone: to 0) */
    int brc = batchsched_rayjob_podgroup_final(s->in->set->batch_scheduler, s->rj, NULL,
                                               &s->out->podgroup, s->err);
    if (brc)
        return brc;
    if (s->out->podgroup)
        s->out->actions |= RJ_ACT_SYNC_PODGROUP;
    static const char *const reset[] = {
        "rayClusterStatus", "rayClusterName", "dashboardURL", "jobId",
        "message",          "reason",         "rayJobInfo",   "jobStatusCheckFailureStartTime"};
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        json_object_del(s->st, reset[i]);
    s_sset(s, "jobStatus", "");
    s_goto(s, retrying ? RJ_NEW : RJ_SUSPENDED, NULL, NULL);
    s_why(s, "%s", retrying ? "retrying with a new RayCluster" : "suspended");
    return 0;
}

static int s_suspended(step_t *s)
{
    if (jx_bool(s->spec, "suspend", false)) {
        s_why(s, "suspended (spec.suspend is true)");
        return 0;
    }
    s_sset(s, "jobStatus", "");
    s_goto(s, RJ_NEW, NULL, NULL);
    s_why(s, "resumed: spec.suspend is false");
    s->out->requeue_ms = RJ_REQUEUE_MS;
    return 0;
}

static int s_policy(const char *p)
{
    if (!p)
        return 0;
    if (strcmp(p, "DeleteSelf") == 0)
        return S_P_SELF;
    if (strcmp(p, "DeleteCluster") == 0)
        return S_P_CLUSTER;
    if (strcmp(p, "DeleteWorkers") == 0)
        return S_P_WORKERS;
    if (strcmp(p, "DeleteNone") == 0)
        return S_P_NONE;
    return 0;
}

/* True when every worker group of the cluster is suspended. */
static bool s_workers_suspended(const json_t *rc)
{
    size_t i;
    json_t *g;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i,
                       g) if (!jx_bool(g, "suspend", false)) return false;
    return true;
}

/* Stages policy `pol` now; true when it does something. */
static bool s_apply_policy(step_t *s, int pol)
{
    const json_t *rc = s->in->cluster;
    switch (pol) {
    case S_P_SELF:
        s->out->actions |= RJ_ACT_DELETE_SELF;
        return true;
    case S_P_CLUSTER:
        if (!s_cluster_live(rc))
            return false;
        s->out->actions |= RJ_ACT_DELETE_CLUSTER;
        return true;
    case S_P_WORKERS:
        if (!s_cluster_live(rc) || s_workers_suspended(rc))
            return false;
        s->out->actions |= RJ_ACT_SUSPEND_WORKERS;
        return true;
    default:
        return false;
    }
}

/* True when the policy's effect is already there (rule skipped). */
static bool s_satisfied(step_t *s, int pol)
{
    const json_t *rc = s->in->cluster;
    switch (pol) {
    case S_P_CLUSTER:
        return !s_cluster_live(rc);
    case S_P_WORKERS:
        return !s_cluster_live(rc) || s_workers_suspended(rc);
    case S_P_NONE:
        return true;
    default:
        return false;
    }
}

/* Requeue after `at_ms` (+ slack) when that is sooner than what is set. */
static void s_requeue_at(step_t *s, int64_t at_ms)
{
    int64_t d = at_ms - s->in->now_ms + RJ_TTL_SLACK_MS;
    if (d < 1)
        d = 1;
    if (s->out->requeue_ms == 0 || d < s->out->requeue_ms)
        s->out->requeue_ms = d;
}

/* Complete / Failed: the deletion policies (§2.7). */
static int s_finished(step_t *s)
{
    const char *d = s_dstate(s);
    s_why(s, "%s", strcmp(d, RJ_COMPLETE) == 0 ? "the job is complete" : "the job failed");
    if (s->selector)
        return 0;
    /* (deferred) CleanupOnCompletion: Volcano resizes the RayJob's PodGroup to the live cluster */
    int brc = batchsched_rayjob_podgroup_final(s->in->set->batch_scheduler, s->rj, s->in->cluster,
                                               &s->out->podgroup, s->err);
    if (brc)
        return brc;
    if (s->out->podgroup)
        s->out->actions |= RJ_ACT_SYNC_PODGROUP;
    int64_t end = s_time_of(s->st, "endTime");
    if (end < 0)
        end = s->in->now_ms;
    const char *js = s_sget(s, "jobStatus");
    json_t *ds = json_object_get(s->spec, "deletionStrategy");
    if (s->in->set->gates.job_deletion_policy && json_is_object(ds)) {
        json_t *rules = json_object_get(ds, "deletionRules");
        if (json_is_array(rules)) {
            int best = 0;
            size_t i;
            json_t *r;
            json_array_foreach(rules, i, r)
            {
                const char *cj = jx_str(r, "condition.jobStatus", "");
                const char *cd = jx_str(r, "condition.jobDeploymentStatus", "");
                bool match = (*cj && js && strcmp(cj, js) == 0) || (*cd && strcmp(cd, d) == 0);
                int pol = s_policy(jx_str(r, "policy", ""));
                if (!match || !pol || s_satisfied(s, pol))
                    continue;
                int64_t at =
                    end + jx_int(r, "condition.ttlSeconds", 0) * S_MS; /* in the condition */
                if (s->in->now_ms >= at) {
                    if (pol > best)
                        best = pol;
                } else {
                    s_requeue_at(s, at);
                }
            }
            if (best && s_apply_policy(s, best))
                s_why(s, "deletion rule %s is due",
                      best == S_P_SELF      ? "DeleteSelf"
                      : best == S_P_CLUSTER ? "DeleteCluster"
                                            : "DeleteWorkers");
            return 0;
        }
        const char *which = js && strcmp(js, "SUCCEEDED") == 0 ? "onSuccess"
                            : js && strcmp(js, "FAILED") == 0  ? "onFailure"
                                                               : NULL;
        if (!which)
            return 0;
        int pol = s_policy(jx_str(json_object_get(ds, which), "policy", ""));
        int64_t at = end + s_spec_int(s, "ttlSecondsAfterFinished", 0) * S_MS;
        if (pol <= S_P_NONE || s_satisfied(s, pol))
            return 0;
        if (s->in->now_ms < at) {
            s_requeue_at(s, at);
            return 0;
        }
        if (s_apply_policy(s, pol))
            s_why(s, "%s policy is due", which);
        return 0;
    }
    if (!jx_bool(s->spec, "shutdownAfterJobFinishes", false))
        return 0;
    int64_t at = end + s_spec_int(s, "ttlSecondsAfterFinished", 0) * S_MS;
    if (s->in->now_ms < at) {
        s_requeue_at(s, at);
        s_why(s, "the RayCluster is deleted %" PRId64 "s after the job finished",
              s_spec_int(s, "ttlSecondsAfterFinished", 0));
        return 0;
    }
    if (s->in->set->delete_cr_after_finish) {
        s->out->actions |= RJ_ACT_DELETE_SELF;
        s_why(s, "shutdownAfterJobFinishes: deleting the RayJob");
    } else if (s_cluster_live(s->in->cluster)) {
        s->out->actions |= RJ_ACT_DELETE_CLUSTER;
        s_why(s, "shutdownAfterJobFinishes: deleting the RayCluster");
    }
    return 0;
}

/* checkBackoffLimitAndUpdateStatusIfNeeded. */
static void s_backoff(step_t *s)
{
    const char *d = s_dstate(s);
    int64_t failed = jx_int(s->st, "failed", 0), succeeded = jx_int(s->st, "succeeded", 0);
    if (strcmp(d, RJ_FAILED) == 0)
        failed++;
    const char *js = s_sget(s, "jobStatus");
    if (js && strcmp(js, "SUCCEEDED") == 0 && strcmp(d, RJ_COMPLETE) == 0)
        succeeded++;
    json_object_set_new(s->st, "failed", json_integer(failed));
    json_object_set_new(s->st, "succeeded", json_integer(succeeded));
    const char *reason = s_sget(s, "reason");
    if (reason && (strcmp(reason, RJ_R_DEADLINE) == 0 || strcmp(reason, RJ_R_CHECK_TIMEOUT) == 0))
        return;
    json_t *bl = json_object_get(s->spec, "backoffLimit");
    if (strcmp(d, RJ_FAILED) == 0 && json_is_integer(bl) && failed < json_integer_value(bl) + 1) {
        s_goto(s, RJ_RETRYING, NULL, NULL);
        s_why(s, "attempt %" PRId64 " failed; retrying (backoffLimit %" PRId64 ")", failed,
              (int64_t)json_integer_value(bl));
    }
}

/* True when two statuses differ in what KubeRay compares, ignoring the cluster status's
 * lastUpdateTime (it moves without anything changing). */
/* a and b (objects, either may be NULL) differ in a member other than `skip`. */
static bool s_differ_but(const json_t *a, const json_t *b, const char *skip)
{
    const char *k;
    json_t *v;
    size_t na = 0, nb = 0;
    json_object_foreach((json_t *)a, k, v)
    {
        if (skip && strcmp(k, skip) == 0)
            continue;
        na++;
        if (!json_equal(v, json_object_get(b, k)))
            return true;
    }
    json_object_foreach((json_t *)b, k, v) nb += !(skip && strcmp(k, skip) == 0);
    return na != nb;
}

bool rjstate_status_changed(const json_t *old, const json_t *now)
{
    /* compared in place (this runs twice a pass): every member but rayClusterStatus exactly,
     * that one without its lastUpdateTime; no status is an empty one */
    if (!json_is_object(now))
        return true;
    if (!json_is_object(old))
        return json_object_size(now) > 0;
    if (s_differ_but(old, now, "rayClusterStatus"))
        return true;
    const json_t *a = json_object_get(old, "rayClusterStatus");
    const json_t *b = json_object_get(now, "rayClusterStatus");
    if (json_is_object(a) && json_is_object(b))
        return s_differ_but(a, b, "lastUpdateTime");
    return !json_equal(a, b) && (a || b);
}

int rjstate_step(const rj_in_t *in, rj_out_t *out, buf_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!in || !in->rj || !in->set)
        return ERR_INVAL;
    step_t s = {.in = in, .out = out, .err = err, .rj = in->rj};
    s.spec = json_object_get(in->rj, "spec");
    json_t *empty = NULL;
    if (!json_is_object(s.spec))
        s.spec = empty = json_object();
    s.mode = rayjob_mode(in->rj);
    json_t *sel = json_object_get(s.spec, "clusterSelector");
    s.selector = json_is_object(sel) && json_object_size(sel) > 0;
    json_t *ost = jx_get(in->rj, "status");
    s.st = json_is_object(ost) ? json_deep_copy(ost) : json_object();
    int rc = 0;
    if (!s.st) {
        rc = ERR_NOMEM;
        goto done;
    }
    /* 1. managedBy another controller: nothing */
    const char *mb = jx_str(s.spec, "managedBy", "");
    if (*mb && strcmp(mb, S_MANAGED_BY) != 0) {
        s_why(&s, "spec.managedBy is %s: not reconciled by rayfleet", mb);
        goto done;
    }
    /* 2. being deleted: stop the job unless terminal, drop the finalizer */
    if (jx_get(in->rj, "metadata.deletionTimestamp")) {
        const char *js = s_sget(&s, "jobStatus");
        const char *jid = s_sget(&s, "jobId");
        if (!s_job_terminal(js) && jid && *jid && s_sget(&s, "dashboardURL"))
            out->actions |= RJ_ACT_STOP_JOB;
        if (s_has_finalizer(in->rj))
            out->actions |= RJ_ACT_REMOVE_FINALIZER;
        out->requeue_ms = RJ_REQUEUE_MS;
        s_why(&s, "being deleted%s",
              out->actions & RJ_ACT_STOP_JOB ? ": stopping the Ray job" : "");
        goto done;
    }
    /* 3. validation */
    buf_t msg;
    buf_init(&msg, RJ_MSG_MAX);
    const char *reason = NULL;
    int v = in->validated ? 0 : rayjob_validate(in->rj, &in->set->gates, &reason, &msg);
    if (v != 0) {
        if (v != VALIDATE_INVALID) {
            buf_free(&msg);
            rc = v;
            goto done;
        }
        out->invalid = true;
        s_event(&s, true, reason ? reason : RAYJOB_EV_INVALID_SPEC, "%s/%s: %s",
                jx_str(in->rj, "metadata.namespace", ""), jx_str(in->rj, "metadata.name", ""),
                buf_str(&msg));
        s_goto(&s, RJ_VALIDATION_FAILED, RJ_R_VALIDATION, buf_str(&msg));
        s_why(&s, "invalid: %s", buf_str(&msg));
        buf_free(&msg);
        goto status;
    }
    buf_free(&msg);
    /* 4. the state machine */
    const char *d = s_dstate(&s);
    bool early = false;
    if (strcmp(d, RJ_NEW) == 0)
        rc = s_new(&s);
    else if (strcmp(d, RJ_INITIALIZING) == 0)
        rc = s_initializing(&s);
    else if (strcmp(d, RJ_WAITING) == 0)
        rc = s_waiting(&s);
    else if (strcmp(d, RJ_RUNNING) == 0)
        rc = s_running(&s);
    else if (strcmp(d, RJ_SUSPENDING) == 0)
        rc = s_teardown(&s, false);
    else if (strcmp(d, RJ_RETRYING) == 0)
        rc = s_teardown(&s, true);
    else if (strcmp(d, RJ_SUSPENDED) == 0) {
        rc = s_suspended(&s);
        early = jx_bool(s.spec, "suspend", false);
    } else if (rjstate_terminal(d)) {
        rc = s_finished(&s);
        early = true;
    } else {
        /* ValidationFailed and anything unknown: nothing, look again later */
        out->requeue_ms = RJ_REQUEUE_MS;
        s_why(&s, "deployment status %s: nothing to do", d);
        early = true;
    }
    if (rc != 0 || out->wants_info || (out->actions & RJ_ACT_ADD_FINALIZER))
        goto done; /* the finalizer goes alone: the status follows in the next step */
    if (!early)
        s_backoff(&s);
    /* endTime when the deployment becomes terminal */
    if (rjstate_terminal(s_dstate(&s)) &&
        !rjstate_terminal(jx_str(in->rj, "status.jobDeploymentStatus", "")))
        s_set_now(&s, "endTime");
status:
    if (rjstate_status_changed(ost, s.st)) {
        out->status = s.st;
        s.st = NULL;
    }
done:
    json_decref(s.st);
    json_decref(empty);
    if (rc != 0)
        rjstate_out_free(out);
    return rc;
}

void rjstate_submit_failed(json_t *status, int64_t now_ms)
{
    if (!json_is_object(status) || json_object_get(status, "jobStatusCheckFailureStartTime"))
        return;
    char t[S_TIME_MAX];
    s_fmt_time(now_ms, t);
    json_object_set_new(status, "jobStatusCheckFailureStartTime", json_string(t));
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static int s_t_rand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(i * 7 + 3);
    return 0;
}

#define T0 1700000000000LL /* the test's "now" */

static json_t *s_t_rayjob(const char *mode)
{
    json_t *rj = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:[s]}, s:{s:s, s:s, s:{s:{s:{}, s:{s:{s:[{s:s, s:s, "
        "s:[{s:s, s:i}]}]}}}, s:[{s:s, s:i, s:i, s:i, s:{}, s:{s:{s:[{s:s, s:s}]}}}]}}}",
        "apiVersion", "ray.io/v1", "kind", "RayJob", "metadata", "name", "rj", "namespace",
        "default", "uid", "u1", "finalizers", FINALIZER_RAYJOB, "spec", "entrypoint", "python x.py",
        "submissionMode", mode, "rayClusterSpec", "headGroupSpec", "rayStartParams", "template",
        "spec", "containers", "name", "ray-head", "image", "rayproject/ray:2.46.0", "ports", "name",
        "dashboard", "containerPort", 8265, "workerGroupSpecs", "groupName", "wg", "replicas", 1,
        "minReplicas", 0, "maxReplicas", 2, "rayStartParams", "template", "spec", "containers",
        "name", "ray-worker", "image", "rayproject/ray:2.46.0");
    return rj;
}

/* One step with a head pod and settings (NULL: defaults). */
static int s_t_step_x(json_t *rj, const json_t *rc, const json_t *job, const json_t *pod,
                      const rj_info_t *info, int64_t now, const rj_settings_t *setp, rj_out_t *out)
{
    rj_settings_t set;
    rjstate_settings_default(&set);
    if (setp)
        set = *setp;
    rj_in_t in = {.rj = rj,
                  .cluster = rc,
                  .job = job,
                  .head_pod = pod,
                  .now_ms = now,
                  .set = &set,
                  .rnd = s_t_rand};
    if (info)
        in.info = *info;
    buf_t err;
    buf_init(&err, 4096);
    int rc2 = rjstate_step(&in, out, &err);
    if (rc2 != 0)
        printf("  step error: %s\n", buf_str(&err));
    buf_free(&err);
    return rc2;
}

/* Applies out->status to rj (as the API server would). */
static void s_t_apply(json_t *rj, rj_out_t *out)
{
    if (out->status)
        json_object_set(rj, "status", out->status);
    rjstate_out_free(out);
}

static int s_t_step(json_t *rj, const json_t *rc, const json_t *job, const rj_info_t *info,
                    int64_t now, rj_out_t *out)
{
    return s_t_step_x(rj, rc, job, NULL, info, now, NULL, out);
}

/* A copy of `rj` Running (jobStatus js) or terminal, with endTime T0 when terminal. */
static json_t *s_t_at(const json_t *rj, const char *ds, const char *js)
{
    json_t *c = json_deep_copy(rj);
    json_t *st = json_object_get(c, "status");
    json_object_set_new(st, "jobDeploymentStatus", json_string(ds));
    json_object_set_new(st, "jobStatus", json_string(js));
    json_object_del(st, "reason");
    if (rjstate_terminal(ds))
        json_object_set_new(st, "endTime", json_string("2023-11-14T22:13:20Z"));
    else
        json_object_del(st, "endTime");
    return c;
}

static const char *s_t_ds(const json_t *rj)
{
    return jx_str(rj, "status.jobDeploymentStatus", "");
}

static json_t *s_t_cluster(const char *name, const char *state)
{
    return json_pack("{s:{s:s, s:s}, s:{s:[{s:s}]}, s:{s:s}}", "metadata", "name", name,
                     "namespace", "default", "spec", "workerGroupSpecs", "groupName", "wg",
                     "status", "state", state);
}

static json_t *s_t_job(const char *cond, const char *reason, const char *msg)
{
    if (!cond)
        return json_pack("{s:{s:s}, s:{}}", "metadata", "name", "rj", "status");
    return json_pack("{s:{s:s}, s:{s:[{s:s, s:s, s:s, s:s, s:s}]}}", "metadata", "name", "rj",
                     "status", "conditions", "type", cond, "status", "True", "reason", reason,
                     "message", msg, "lastTransitionTime", "2023-11-14T22:13:21Z");
}

/* Batch schedulers at Initializing: Volcano's RayJob PodGroup and metadata on the cluster and the
 * submitter template; KAI's refusal of K8sJobMode. */
static int s_t_batch(bool verbose)
{
    int failed = 0;
    rj_out_t o;
    rj_settings_t set;
    rjstate_settings_default(&set);
    set.batch_scheduler = BATCHSCHED_VOLCANO;
    json_t *rj = s_t_rayjob(RAYJOB_MODE_K8SJOB);
    json_object_set_new(jx_get(rj, "metadata"), "labels",
                        json_pack("{s:s}", BATCHSCHED_VOLCANO_QUEUE_LABEL, "q1"));
    CHECK(s_t_step_x(rj, NULL, NULL, NULL, NULL, T0, &set, &o) == 0);
    s_t_apply(rj, &o);
    CHECK(strcmp(s_t_ds(rj), RJ_INITIALIZING) == 0);
    CHECK(s_t_step_x(rj, NULL, NULL, NULL, NULL, T0 + 100, &set, &o) == 0);
    CHECK((o.actions & RJ_ACT_CREATE_PODGROUP) && o.podgroup);
    CHECK(strcmp(jx_str(o.podgroup, "metadata.name", ""), "ray-rj-pg") == 0);
    CHECK(strcmp(jx_str(o.podgroup, "metadata.ownerReferences.0.kind", ""), "RayJob") == 0);
    CHECK(jx_int(o.podgroup, "spec.minMember", 0) == 2); /* head + 1 worker; not the submitter */
    /* minResources: no container requests in the cluster; the default submitter's requests */
    CHECK(strcmp(jx_str(o.podgroup, "spec.minResources.cpu", ""), "500m") == 0);
    CHECK(strcmp(jx_str(o.podgroup, "spec.minResources.memory", ""), "200Mi") == 0);
    CHECK(strcmp(jx_str(o.podgroup, "spec.queue", ""), "q1") == 0);
    /* the RayCluster: queue label and PodGroup annotation, no schedulerName */
    const char *ql = json_string_value(
        json_object_get(jx_get(o.cluster, "metadata.labels"), BATCHSCHED_VOLCANO_QUEUE_LABEL));
    const char *ga = json_string_value(
        json_object_get(jx_get(o.cluster, "metadata.annotations"), BATCHSCHED_VOLCANO_GROUP_ANN));
    CHECK(ql && strcmp(ql, "q1") == 0);
    CHECK(ga && strcmp(ga, "ray-rj-pg") == 0);
    CHECK(!jx_get(o.cluster, "spec.schedulerName"));
    rjstate_out_free(&o);
    if (verbose)
        printf("  volcano RayJob PodGroup and cluster metadata checked\n");
    /* Complete: the PodGroup resized to the live cluster (no submitter), or to 0 without it */
    json_t *done = s_t_at(rj, RJ_COMPLETE, "SUCCEEDED");
    json_t *crc = s_t_cluster(jx_str(rj, "status.rayClusterName", ""), "ready");
    json_object_set_new(crc, "spec", json_deep_copy(jx_get(rj, "spec.rayClusterSpec")));
    CHECK(s_t_step_x(done, crc, NULL, NULL, NULL, T0 + 200, &set, &o) == 0);
    CHECK((o.actions & RJ_ACT_SYNC_PODGROUP) && jx_int(o.podgroup, "spec.minMember", 0) == 2);
    CHECK(json_object_size(jx_get(o.podgroup, "spec.minResources")) == 0);
    rjstate_out_free(&o);
    CHECK(s_t_step_x(done, NULL, NULL, NULL, NULL, T0 + 200, &set, &o) == 0);
    CHECK((o.actions & RJ_ACT_SYNC_PODGROUP) && jx_int(o.podgroup, "spec.minMember", -1) == 0);
    rjstate_out_free(&o);
    json_decref(crc);
    json_decref(done);
    /* Suspending, cluster and Job gone: the PodGroup resized to 0, then Suspended */
    json_t *susp = s_t_at(rj, RJ_SUSPENDING, "");
    CHECK(s_t_step_x(susp, NULL, NULL, NULL, NULL, T0 + 200, &set, &o) == 0);
    CHECK((o.actions & RJ_ACT_SYNC_PODGROUP) && jx_int(o.podgroup, "spec.minMember", -1) == 0);
    CHECK(o.status && strcmp(jx_str(o.status, "jobDeploymentStatus", ""), RJ_SUSPENDED) == 0);
    rjstate_out_free(&o);
    json_decref(susp);
    /* KAI: K8sJobMode refused with KubeRay's message, nothing created */
    set.batch_scheduler = BATCHSCHED_KAI;
    rj_in_t in = {.rj = rj, .now_ms = T0 + 200, .set = &set, .rnd = s_t_rand};
    buf_t err;
    buf_init(&err, 4096);
    CHECK(rjstate_step(&in, &o, &err) == ERR_INVAL);
    CHECK(strcmp(buf_str(&err), BATCHSCHED_KAI_K8SJOB_MSG) == 0);
    CHECK(!(o.actions & RJ_ACT_CREATE_CLUSTER));
    rjstate_out_free(&o);
    buf_free(&err);
    json_decref(rj);
    return failed;
}

int rjstate_test(bool verbose)
{
    int failed = s_t_batch(verbose);
    rj_out_t o;

    /* K8sJobMode, the whole happy path */
    json_t *rj = s_t_rayjob(RAYJOB_MODE_K8SJOB);
    json_object_del(json_object_get(rj, "metadata"), "finalizers");
    /* the finalizer alone first, then the ids */
    CHECK(s_t_step(rj, NULL, NULL, NULL, T0, &o) == 0);
    CHECK(!o.status && o.actions == RJ_ACT_ADD_FINALIZER);
    rjstate_out_free(&o);
    json_object_set_new(json_object_get(rj, "metadata"), "finalizers",
                        json_pack("[s]", FINALIZER_RAYJOB));
    CHECK(s_t_step(rj, NULL, NULL, NULL, T0, &o) == 0);
    CHECK(o.status && o.actions == 0);
    s_t_apply(rj, &o);
    CHECK(strcmp(s_t_ds(rj), RJ_INITIALIZING) == 0);
    const char *jid = jx_str(rj, "status.jobId", "");
    const char *cn = jx_str(rj, "status.rayClusterName", "");
    CHECK(strncmp(jid, "rj-", 3) == 0 && strlen(jid) == 8);
    CHECK(strncmp(cn, "rj-", 3) == 0 && strlen(cn) == 8);
    CHECK(strcmp(jx_str(rj, "status.startTime", ""), "2023-11-14T22:13:20Z") == 0);
    char cname[64];
    snprintf(cname, sizeof(cname), "%s", cn);
    /* no cluster: create it; status unchanged */
    CHECK(s_t_step(rj, NULL, NULL, NULL, T0 + 100, &o) == 0);
    CHECK((o.actions & RJ_ACT_CREATE_CLUSTER) && o.cluster && !o.status);
    CHECK(o.cluster && strcmp(jx_str(o.cluster, "metadata.name", ""), cname) == 0);
    rjstate_out_free(&o);
    /* cluster not ready: its status copied, still Initializing */
    json_t *rc = s_t_cluster(cname, "");
    json_object_set_new(rc, "spec", json_deep_copy(jx_get(rj, "spec.rayClusterSpec")));
    json_object_set_new(json_object_get(rc, "status"), "readyWorkerReplicas", json_integer(0));
    CHECK(s_t_step(rj, rc, NULL, NULL, T0 + 200, &o) == 0);
    CHECK(o.status && !(o.actions & RJ_ACT_CREATE_JOB));
    s_t_apply(rj, &o);
    CHECK(strcmp(s_t_ds(rj), RJ_INITIALIZING) == 0 && jx_get(rj, "status.rayClusterStatus"));
    /* ready: dashboard URL, submitter Job, Running */
    json_object_set_new(json_object_get(rc, "status"), "state", json_string("ready"));
    CHECK(s_t_step(rj, rc, NULL, NULL, T0 + 300, &o) == 0);
    CHECK((o.actions & RJ_ACT_CREATE_JOB) && o.job);
    CHECK(o.job && strcmp(jx_str(o.job, "metadata.name", ""), "rj") == 0);
    s_t_apply(rj, &o);
    CHECK(strcmp(s_t_ds(rj), RJ_RUNNING) == 0);
    char url[256];
    snprintf(url, sizeof(url), "%s-head-svc.default.svc.cluster.local:8265", cname);
    CHECK(strcmp(jx_str(rj, "status.dashboardURL", ""), url) == 0);
    /* Running: asks for the info first, ensures the RayJob's head Service */
    CHECK(s_t_step(rj, rc, NULL, NULL, T0 + 400, &o) == 0 && o.wants_info && !o.status);
    rjstate_out_free(&o);
    rj_info_t info = {.kind = RJ_INFO_OK, .status = "RUNNING", .message = "m", .start_ms = T0};
    json_t *job = s_t_job(NULL, NULL, NULL);
    CHECK(s_t_step(rj, rc, job, &info, T0 + 500, &o) == 0 && (o.actions & RJ_ACT_HEAD_SERVICE));
    CHECK(o.service && strcmp(jx_str(o.service, "metadata.name", ""), "rj-head-svc") == 0);
    s_t_apply(rj, &o);
    CHECK(strcmp(jx_str(rj, "status.jobStatus", ""), "RUNNING") == 0);
    /* SUCCEEDED while the submitter runs: still Running (K8sJobMode waits for it) */
    info.status = "SUCCEEDED";
    info.end_ms = T0 + 5000;
    CHECK(s_t_step(rj, rc, job, &info, T0 + 5100, &o) == 0);
    s_t_apply(rj, &o);
    CHECK(strcmp(s_t_ds(rj), RJ_RUNNING) == 0 &&
          strcmp(jx_str(rj, "status.jobStatus", ""), "SUCCEEDED") == 0);
    json_decref(job);
    job = s_t_job("Complete", "", "");
    CHECK(s_t_step(rj, rc, job, &info, T0 + 5200, &o) == 0);
    s_t_apply(rj, &o);
    CHECK(strcmp(s_t_ds(rj), RJ_COMPLETE) == 0 && jx_int(rj, "status.succeeded", 0) == 1 &&
          jx_int(rj, "status.failed", -1) == 0 && jx_get(rj, "status.endTime"));
    CHECK(strcmp(jx_str(rj, "status.rayJobInfo.endTime", ""), "2023-11-14T22:13:25Z") == 0);
    /* Complete without shutdown: nothing, no requeue, no status */
    CHECK(s_t_step(rj, rc, job, NULL, T0 + 6000, &o) == 0 && !o.status && !o.actions &&
          o.requeue_ms == 0);
    rjstate_out_free(&o);
    /* shutdownAfterJobFinishes with a TTL: wait, then delete the cluster */
    json_object_set_new(json_object_get(rj, "spec"), "shutdownAfterJobFinishes", json_true());
    json_object_set_new(json_object_get(rj, "spec"), "ttlSecondsAfterFinished", json_integer(10));
    int64_t end = 0;
    rftime_parse(jx_str(rj, "status.endTime", ""), &end);
    CHECK(s_t_step(rj, rc, job, NULL, end + 4000, &o) == 0 && !o.actions &&
          o.requeue_ms == 6000 + RJ_TTL_SLACK_MS);
    rjstate_out_free(&o);
    CHECK(s_t_step(rj, rc, job, NULL, end + 10000, &o) == 0 && o.actions == RJ_ACT_DELETE_CLUSTER);
    rjstate_out_free(&o);
    json_decref(job);

    /* the submitter Job failed: SubmissionFailed with KubeRay's message; retries with backoff */
    json_t *rj2 = json_deep_copy(rj);
    json_object_set_new(json_object_get(rj2, "status"), "jobDeploymentStatus",
                        json_string(RJ_RUNNING));
    json_object_set_new(json_object_get(rj2, "status"), "jobStatus", json_string("PENDING"));
    json_object_set_new(json_object_get(rj2, "status"), "succeeded", json_integer(0));
    json_object_del(json_object_get(rj2, "status"), "endTime");
    json_object_set_new(json_object_get(rj2, "spec"), "backoffLimit", json_integer(1));
    job = s_t_job("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit");
    CHECK(s_t_step(rj2, rc, job, NULL, T0 + 7000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_RETRYING) == 0 && jx_int(rj2, "status.failed", 0) == 1);
    CHECK(strcmp(jx_str(rj2, "status.message", ""),
                 "Job submission has failed. Reason: BackoffLimitExceeded. Message: Job has "
                 "reached the specified backoff limit") == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_SUBMISSION_FAILED) == 0);
    /* Retrying: delete both, wait, then New with everything reset */
    CHECK(s_t_step(rj2, rc, job, NULL, T0 + 7100, &o) == 0 &&
          o.actions == (RJ_ACT_DELETE_CLUSTER | RJ_ACT_DELETE_JOB) && !o.status);
    rjstate_out_free(&o);
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 7200, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_NEW) == 0 && !jx_get(rj2, "status.jobId") &&
          !jx_get(rj2, "status.rayClusterName") && jx_int(rj2, "status.failed", 0) == 1);
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 7300, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_INITIALIZING) == 0 && jx_get(rj2, "status.jobId"));
    /* second failure: the limit is reached, Failed stays */
    json_object_set_new(json_object_get(rj2, "status"), "jobDeploymentStatus",
                        json_string(RJ_RUNNING));
    json_object_set_new(json_object_get(rj2, "status"), "dashboardURL", json_string(url));
    CHECK(s_t_step(rj2, rc, job, NULL, T0 + 8000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_FAILED) == 0 && jx_int(rj2, "status.failed", 0) == 2 &&
          jx_get(rj2, "status.endTime"));
    json_decref(job);
    json_decref(rj2);

    /* AppFailed: the Ray job FAILED after the submitter finished */
    rj2 = json_deep_copy(rj);
    json_object_set_new(json_object_get(rj2, "status"), "jobDeploymentStatus",
                        json_string(RJ_RUNNING));
    json_object_del(json_object_get(rj2, "status"), "endTime");
    job = s_t_job("Complete", "", "");
    info = (rj_info_t){.kind = RJ_INFO_OK, .status = "FAILED", .message = "exit 1"};
    CHECK(s_t_step(rj2, rc, job, &info, T0 + 9000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_APP_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.message", ""), "exit 1") == 0);
    /* activeDeadlineSeconds: DeadlineExceeded, never retried */
    json_object_set_new(json_object_get(rj2, "status"), "jobDeploymentStatus",
                        json_string(RJ_RUNNING));
    json_object_set_new(json_object_get(rj2, "spec"), "activeDeadlineSeconds", json_integer(5));
    json_object_set_new(json_object_get(rj2, "spec"), "backoffLimit", json_integer(3));
    CHECK(s_t_step(rj2, rc, job, NULL, T0 + 6000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_DEADLINE) == 0);
    CHECK(strcmp(jx_str(rj2, "status.message", ""),
                 "The RayJob has passed the activeDeadlineSeconds. StartTime: 2023-11-14 22:13:20 "
                 "+0000 UTC. ActiveDeadlineSeconds: 5") == 0);
    json_decref(job);
    json_decref(rj2);

    /* suspend: Running -> Suspending -> (teardown) -> Suspended -> resume -> New */
    rj2 = json_deep_copy(rj);
    json_object_set_new(json_object_get(rj2, "status"), "jobDeploymentStatus",
                        json_string(RJ_RUNNING));
    json_object_set_new(json_object_get(rj2, "spec"), "suspend", json_true());
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 1000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_SUSPENDING) == 0);
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 1100, &o) == 0 && o.actions == RJ_ACT_DELETE_CLUSTER);
    rjstate_out_free(&o);
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 1200, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_SUSPENDED) == 0 && !jx_get(rj2, "status.rayClusterName"));
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 1300, &o) == 0 && !o.status && !o.requeue_ms);
    rjstate_out_free(&o);
    json_object_set_new(json_object_get(rj2, "spec"), "suspend", json_false());
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 1400, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_NEW) == 0);
    json_decref(rj2);

    /* HTTPMode: a 404 submits with the recorded id; an error starts the failure timer, which
     * ends in JobStatusCheckTimeoutExceeded */
    rj2 = s_t_rayjob(RAYJOB_MODE_HTTP);
    json_object_set_new(rj2, "status",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "jobDeploymentStatus",
                                  RJ_RUNNING, "jobId", "rj-abcde", "rayClusterName", cname,
                                  "dashboardURL", url, "jobStatus", "", "startTime",
                                  "2023-11-14T22:13:20Z"));
    info = (rj_info_t){.kind = RJ_INFO_NOT_FOUND};
    CHECK(s_t_step(rj2, rc, NULL, &info, T0 + 1000, &o) == 0 && (o.actions & RJ_ACT_SUBMIT));
    CHECK(o.submit && strcmp(jx_str(o.submit, "submission_id", ""), "rj-abcde") == 0 &&
          strcmp(jx_str(o.submit, "entrypoint", ""), "python x.py") == 0);
    rjstate_out_free(&o);
    info = (rj_info_t){.kind = RJ_INFO_ERROR};
    CHECK(s_t_step(rj2, rc, NULL, &info, T0 + 1000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(jx_str(rj2, "status.jobStatusCheckFailureStartTime", ""),
                 "2023-11-14T22:13:21Z") == 0);
    CHECK(s_t_step(rj2, rc, NULL, &info, T0 + 1000 + 301000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_CHECK_TIMEOUT) == 0);
    json_decref(rj2);

    /* InteractiveMode: Initializing -> Waiting -> (spec.jobId) -> Running */
    rj2 = s_t_rayjob(RAYJOB_MODE_INTERACTIVE);
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(!jx_get(rj2, "status.jobId"));
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 10, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_WAITING) == 0);
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 20, &o) == 0 && !o.status);
    rjstate_out_free(&o);
    json_object_set_new(json_object_get(rj2, "spec"), "jobId", json_string("mine"));
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 30, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_RUNNING) == 0 &&
          strcmp(jx_str(rj2, "status.jobId", ""), "mine") == 0);
    json_decref(rj2);

    /* deletionRules: DeleteWorkers at once, DeleteCluster after 10 s */
    rj2 = json_deep_copy(rj);
    json_object_del(json_object_get(rj2, "spec"), "shutdownAfterJobFinishes");
    json_object_del(json_object_get(rj2, "spec"), "ttlSecondsAfterFinished");
    json_object_set_new(json_object_get(rj2, "spec"), "deletionStrategy",
                        json_pack("{s:[{s:s, s:{s:s, s:i}}, {s:s, s:{s:s, s:i}}]}", "deletionRules",
                                  "policy", "DeleteWorkers", "condition", "jobStatus", "SUCCEEDED",
                                  "ttlSeconds", 0, "policy", "DeleteCluster", "condition",
                                  "jobStatus", "SUCCEEDED", "ttlSeconds", 10));
    CHECK(s_t_step(rj2, rc, NULL, NULL, end + 1000, &o) == 0 &&
          o.actions == RJ_ACT_SUSPEND_WORKERS && o.requeue_ms == 9000 + RJ_TTL_SLACK_MS);
    rjstate_out_free(&o);
    json_t *rcs = json_deep_copy(rc);
    json_object_set_new(json_array_get(jx_get(rcs, "spec.workerGroupSpecs"), 0), "suspend",
                        json_true());
    CHECK(s_t_step(rj2, rcs, NULL, NULL, end + 2000, &o) == 0 && o.actions == 0);
    rjstate_out_free(&o);
    CHECK(s_t_step(rj2, rcs, NULL, NULL, end + 10000, &o) == 0 &&
          o.actions == RJ_ACT_DELETE_CLUSTER);
    rjstate_out_free(&o);
    json_decref(rcs);
    json_decref(rj2);

    /* validation: no cluster spec nor selector -> ValidationFailed, a Warning, nothing else */
    rj2 = s_t_rayjob(RAYJOB_MODE_K8SJOB);
    json_object_del(json_object_get(rj2, "spec"), "rayClusterSpec");
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0, &o) == 0 && o.invalid && o.nevents == 1 &&
          o.events[0].warning && !o.actions);
    CHECK(o.nevents == 1 && strcmp(o.events[0].reason, RAYJOB_EV_INVALID_SPEC) == 0 &&
          strncmp(o.events[0].msg, "default/rj: ", 12) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_VALIDATION_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_VALIDATION) == 0);
    json_decref(rj2);

    /* deletion: a running job is stopped and the finalizer removed */
    rj2 = json_deep_copy(rj);
    json_object_set_new(json_object_get(rj2, "status"), "jobStatus", json_string("RUNNING"));
    json_object_set_new(json_object_get(rj2, "metadata"), "deletionTimestamp",
                        json_string("2023-11-14T22:14:00Z"));
    json_object_set_new(json_object_get(rj2, "metadata"), "finalizers",
                        json_pack("[s]", FINALIZER_RAYJOB));
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0, &o) == 0 &&
          o.actions == (RJ_ACT_STOP_JOB | RJ_ACT_REMOVE_FINALIZER));
    rjstate_out_free(&o);
    json_decref(rj2);

    /* preRunningDeadlineSeconds in Initializing: Failed / PreRunningDeadlineExceeded, no retry
     * needed to be asked for */
    rj2 = s_t_at(rj, RJ_INITIALIZING, "");
    json_object_set_new(json_object_get(rj2, "spec"), "preRunningDeadlineSeconds", json_integer(2));
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 1000, &o) == 0 &&
          (o.actions & RJ_ACT_CREATE_CLUSTER));
    rjstate_out_free(&o);
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0 + 2000, &o) == 0 && !o.actions);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_PRE_RUNNING_DEADLINE) == 0);
    CHECK(strcmp(jx_str(rj2, "status.message", ""),
                 "The RayJob has passed the preRunningDeadlineSeconds. StartTime: 2023-11-14 "
                 "22:13:20 +0000 UTC. PreRunningDeadlineSeconds: 2") == 0);
    json_decref(rj2);

    /* grace period: the Ray job ended long ago but the submitter never finished */
    rj2 = s_t_at(rj, RJ_RUNNING, "SUCCEEDED");
    json_object_set_new(json_object_get(rj2, "status"), "rayJobInfo",
                        json_pack("{s:s}", "endTime", "2023-11-14T22:13:20Z"));
    job = s_t_job(NULL, NULL, NULL);
    CHECK(s_t_step(rj2, rc, job, NULL, T0 + 299000, &o) == 0 && o.wants_info);
    rjstate_out_free(&o);
    CHECK(s_t_step(rj2, rc, job, NULL, T0 + 300000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_COMPLETE) == 0 &&
          strcmp(jx_str(rj2, "status.reason", ""), RJ_R_GRACE) == 0);
    json_decref(job);
    json_decref(rj2);

    /* the submitter finished 30 s ago: decided on the job's state read now. Recorded RUNNING but
     * SUCCEEDED on the head (the status lagged, e.g. under load): Complete, not Failed. */
    rj2 = s_t_at(rj, RJ_RUNNING, "RUNNING");
    job = s_t_job("Complete", "", "");
    int64_t fin = 0;
    rftime_parse("2023-11-14T22:13:21Z", &fin);
    CHECK(s_t_step(rj2, rc, job, NULL, fin + 30000, &o) == 0 && o.wants_info && !o.status);
    rjstate_out_free(&o);
    info = (rj_info_t){.kind = RJ_INFO_OK, .status = "SUCCEEDED", .end_ms = T0 + 500};
    CHECK(s_t_step(rj2, rc, job, &info, fin + 40000, &o) == 0 && o.status &&
          !strcmp(jx_str(o.status, "jobDeploymentStatus", ""), RJ_COMPLETE));
    rjstate_out_free(&o);
    /* still RUNNING on the head: Failed with KubeRay's message */
    info = (rj_info_t){.kind = RJ_INFO_OK, .status = "RUNNING"};
    CHECK(s_t_step(rj2, rc, job, &info, fin + 30000, &o) == 0);
    s_t_apply(rj2, &o);
    CHECK(strcmp(s_t_ds(rj2), RJ_FAILED) == 0 &&
          strcmp(jx_str(rj2, "status.jobStatus", ""), "FAILED") == 0 &&
          strstr(jx_str(rj2, "status.message", ""), "did not reach terminal state within 30s"));
    json_decref(job);
    json_decref(rj2);

    /* SidecarMode: the head pod gone, then the submitter container failed */
    rj2 = s_t_at(rj, RJ_RUNNING, "RUNNING");
    json_object_set_new(json_object_get(rj2, "spec"), "submissionMode",
                        json_string(RAYJOB_MODE_SIDECAR));
    CHECK(s_t_step_x(rj2, rc, NULL, NULL, NULL, T0, NULL, &o) == 0);
    CHECK(o.status && !strcmp(jx_str(o.status, "message", ""), "Ray head pod not found."));
    rjstate_out_free(&o);
    json_t *pod = json_pack("{s:{s:[{s:s, s:{s:{s:i, s:s, s:s}}}]}}", "status", "containerStatuses",
                            "name", RAYJOB_SUBMITTER_CONTAINER, "state", "terminated", "exitCode",
                            1, "reason", "Error", "finishedAt", "2023-11-14T22:13:30Z");
    CHECK(s_t_step_x(rj2, rc, NULL, pod, NULL, T0 + 11000, NULL, &o) == 0);
    CHECK(o.status && !strcmp(jx_str(o.status, "reason", ""), RJ_R_SUBMISSION_FAILED) &&
          !strcmp(jx_str(o.status, "message", ""),
                  "Ray head pod container ray-job-submitter terminated with exit code 1: Error"));
    rjstate_out_free(&o);
    json_decref(pod);
    /* with SidecarSubmitterRestart the container restarts OnFailure: a failure with
     * restartCount below submitterConfig.backoffLimit (default 2) is not final; at the limit it
     * is, from lastState.terminated while the restarted container runs */
    rj_settings_t rset;
    rjstate_settings_default(&rset);
    rset.gates.sidecar_submitter_restart = true;
    for (int n = 0; n <= 3; n++) {
        pod = json_pack("{s:{s:[{s:s, s:i, s:{s:{}}, s:{s:{s:i, s:s, s:s}}}]}}", "status",
                        "containerStatuses", "name", RAYJOB_SUBMITTER_CONTAINER, "restartCount", n,
                        "state", "running", "lastState", "terminated", "exitCode", 3, "reason",
                        "Error", "finishedAt", "2023-11-14T22:13:30Z");
        CHECK(s_t_step_x(rj2, rc, NULL, pod, NULL, T0 + 11000, &rset, &o) == 0);
        const char *ds = o.status ? jx_str(o.status, "jobDeploymentStatus", "") : "";
        if (n < 2)
            CHECK(strcmp(ds, RJ_FAILED) != 0);
        else
            CHECK(strcmp(ds, RJ_FAILED) == 0 &&
                  !strcmp(jx_str(o.status, "message", ""),
                          "Ray head pod container ray-job-submitter terminated with exit code 3: "
                          "Error"));
        rjstate_out_free(&o);
        json_decref(pod);
    }
    /* a terminated (not restarted) exit below the limit is not final either; backoffLimit 0 is */
    pod = json_pack("{s:{s:[{s:s, s:i, s:{s:{s:i, s:s, s:s}}}]}}", "status", "containerStatuses",
                    "name", RAYJOB_SUBMITTER_CONTAINER, "restartCount", 0, "state", "terminated",
                    "exitCode", 1, "reason", "Error", "finishedAt", "2023-11-14T22:13:30Z");
    CHECK(s_t_step_x(rj2, rc, NULL, pod, NULL, T0 + 11000, &rset, &o) == 0);
    CHECK(!o.status || strcmp(jx_str(o.status, "jobDeploymentStatus", ""), RJ_FAILED) != 0);
    rjstate_out_free(&o);
    json_object_set_new(json_object_get(rj2, "spec"), "submitterConfig",
                        json_pack("{s:i}", "backoffLimit", 0));
    CHECK(s_t_step_x(rj2, rc, NULL, pod, NULL, T0 + 11000, &rset, &o) == 0);
    CHECK(o.status && strcmp(jx_str(o.status, "jobDeploymentStatus", ""), RJ_FAILED) == 0);
    rjstate_out_free(&o);
    json_decref(pod);
    json_decref(rj2);

    /* legacy deletionStrategy (a TTL needs shutdownAfterJobFinishes, which the policies then
     * replace): onSuccess DeleteSelf after the TTL; onFailure DeleteCluster */
    rj2 = s_t_at(rj, RJ_COMPLETE, "SUCCEEDED");
    json_object_set_new(json_object_get(rj2, "spec"), "ttlSecondsAfterFinished", json_integer(5));
    json_object_set_new(json_object_get(rj2, "spec"), "deletionStrategy",
                        json_pack("{s:{s:s}, s:{s:s}}", "onSuccess", "policy", "DeleteSelf",
                                  "onFailure", "policy", "DeleteCluster"));
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 1000, &o) == 0 && !o.actions &&
          o.requeue_ms == 4000 + RJ_TTL_SLACK_MS);
    rjstate_out_free(&o);
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 5000, &o) == 0 && o.actions == RJ_ACT_DELETE_SELF);
    rjstate_out_free(&o);
    json_object_set_new(json_object_get(rj2, "status"), "jobStatus", json_string("FAILED"));
    CHECK(s_t_step(rj2, rc, NULL, NULL, T0 + 50000, &o) == 0 && o.actions == RJ_ACT_DELETE_CLUSTER);
    rjstate_out_free(&o);
    json_decref(rj2);

    /* shutdownAfterJobFinishes with DELETE_RAYJOB_CR_AFTER_JOB_FINISHES: the RayJob goes */
    rj2 = s_t_at(rj, RJ_COMPLETE, "SUCCEEDED");
    json_object_set_new(json_object_get(rj2, "spec"), "ttlSecondsAfterFinished", json_integer(0));
    rj_settings_t delset;
    rjstate_settings_default(&delset);
    delset.delete_cr_after_finish = true;
    CHECK(s_t_step_x(rj2, rc, NULL, NULL, NULL, T0, &delset, &o) == 0 &&
          o.actions == RJ_ACT_DELETE_SELF);
    rjstate_out_free(&o);
    json_decref(rj2);

    /* the status comparison: the copied cluster status's lastUpdateTime does not count */
    {
        json_t *a = json_pack("{s:s, s:{s:s, s:s}}", "jobStatus", "RUNNING", "rayClusterStatus",
                              "state", "ready", "lastUpdateTime", "2023-11-14T22:13:20Z");
        json_t *b = json_deep_copy(a);
        CHECK(!rjstate_status_changed(a, b));
        json_object_set_new(json_object_get(b, "rayClusterStatus"), "lastUpdateTime",
                            json_string("2023-11-14T22:13:59Z"));
        CHECK(!rjstate_status_changed(a, b));
        json_object_set_new(json_object_get(b, "rayClusterStatus"), "state", json_string("x"));
        CHECK(rjstate_status_changed(a, b));
        json_decref(b);
        b = json_deep_copy(a);
        json_object_set_new(b, "message", json_string("m"));
        CHECK(rjstate_status_changed(a, b) && rjstate_status_changed(b, a));
        json_object_del(b, "rayClusterStatus");
        json_object_del(b, "message");
        CHECK(rjstate_status_changed(a, b) && rjstate_status_changed(b, a));
        json_t *e = json_object();
        CHECK(!rjstate_status_changed(NULL, e) && rjstate_status_changed(NULL, a));
        json_decref(e);
        json_decref(b);
        json_decref(a);
    }

    /* managedBy another controller: nothing at all */
    rj2 = s_t_rayjob(RAYJOB_MODE_K8SJOB);
    json_object_set_new(json_object_get(rj2, "spec"), "managedBy",
                        json_string("kueue.x-k8s.io/multikueue"));
    CHECK(s_t_step(rj2, NULL, NULL, NULL, T0, &o) == 0 && !o.status && !o.actions);
    rjstate_out_free(&o);
    json_decref(rj2);

    json_decref(rc);
    json_decref(rj);
    return SELFTEST_RESULT("rjstate", verbose);
}
#endif /* RF_SELFTEST */
