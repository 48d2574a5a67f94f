/*
 * submitter: the RayJob controller (see submitter.h).
 */
#include "submitter.h"

#include "batchsched.h"
#include "err.h"
#include "json.h"
#include "labels.h"
#include "log.h"
#include "raydash.h"
#include "rayjob.h"
#include "rftime.h"
#include "rayfleet.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_ERR_MAX 2048 /* bytes of a builder's error */
#define S_HOST_MAX 256 /* bytes of a dashboard host part */

struct submitter {
    loop_t *loop;
    submitter_config_t cfg;
    rj_settings_t set; /* copied settings */
    ctrl_t *ctrl;
    raydash_t *dash;
};

/* A pass's own state (ctrl_pass_t.data). */
typedef struct {
    json_t *cluster; /* observed RayCluster, or NULL */
    json_t *job; /* observed submitter Job, or NULL */
    json_t *head_pod; /* observed head pod (SidecarMode), or NULL */
    rj_out_t out; /* the step's decision */
    int64_t call; /* raydash call in flight, 0 none */
    ctrl_pass_t *cp; /* the pass (for callbacks) */
    rj_info_t info; /* the Ray job (info stage) */
    char *info_status, *info_msg; /* storage of info's strings */
    bool submit_failed; /* HTTPMode submission failed */
    int64_t t0; /* start of the dashboard call, loop ms */
} pass_t;

static int s_rand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    return getrandom(out, n, 0) == (ssize_t)n ? 0 : ERR_IO;
}

/* ---------- the dashboard ---------- */

/* Fills *t from status.dashboardURL ("<svc>.<ns>.svc.<domain>:<port>") for the RayJob in ns (an
 * urgent pass's call is urgent too); the strings live in host/svc. Returns false when there is no
 * URL. */
static bool s_target(const json_t *rj, const char *ns, bool urgent, raydash_target_t *t, char *svc)
{
    const char *url = jx_str(rj, "status.dashboardURL", "");
    if (!*url)
        return false;
    size_t n = strcspn(url, ".:");
    if (n == 0 || n >= S_HOST_MAX)
        return false;
    memcpy(svc, url, n);
    svc[n] = '\0';
    *t = (raydash_target_t){.address = url, .ns = ns, .service = svc, .urgent = urgent};
    return true;
}

static void s_on_info(const raydash_result_t *res, void *arg)
{
    pass_t *d = arg;
    d->call = 0;
    if (res->err == 0) {
        d->info_status = strdup(res->job.status ? res->job.status : "");
        d->info_msg = strdup(res->job.message ? res->job.message : "");
        d->info = (rj_info_t){.kind = RJ_INFO_OK,
                              .status = d->info_status,
                              .message = d->info_msg,
                              .start_ms = res->job.start_time_ms,
                              .end_ms = res->job.end_time_ms};
        if (!d->info_status || !d->info_msg)
            d->info.kind = RJ_INFO_ERROR;
    } else if (res->err == ERR_NOTFOUND) {
        d->info = (rj_info_t){.kind = RJ_INFO_NOT_FOUND};
    } else {
        d->info = (rj_info_t){.kind = RJ_INFO_ERROR};
        log_error("job info failed", "key", d->cp->key, "error", res->message, "correlation_id",
                  d->cp->corr, NULL);
    }
    ctrl_release(d->cp);
}

/* Stage: read the Ray job when the step asked for it. */
static void s_stage_info(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    submitter_t *s = ctrl_arg(p->c);
    if (!d->out.wants_info)
        return;
    raydash_target_t t;
    char svc[S_HOST_MAX];
    const char *jid = jx_str(p->obj, "status.jobId", "");
    if (!s_target(p->obj, p->ns, p->urgent, &t, svc) || !*jid) {
        d->info = (rj_info_t){.kind = RJ_INFO_ERROR};
        return;
    }
    ctrl_hold(p);
    int64_t id = raydash_get_job(s->dash, &t, jid, s_on_info, d);
    if (id < 0) {
        d->info = (rj_info_t){.kind = RJ_INFO_ERROR};
        ctrl_release(p);
        return;
    }
    d->call = id;
}

static void s_on_submit(const raydash_result_t *res, void *arg)
{
    pass_t *d = arg;
    ctrl_pass_t *p = d->cp;
    d->call = 0;
    const char *jid = jx_str(d->out.submit, "submission_id", "");
    bool ok = res->err == 0 || res->err == ERR_EXISTS;
    char msg[CTRL_MSG_MAX];
    if (ok)
        snprintf(msg, sizeof(msg), "%s Ray job %s to RayCluster %s",
                 res->err == ERR_EXISTS ? "Already submitted" : "Submitted", jid,
                 jx_str(p->obj, "status.rayClusterName", ""));
    else
        snprintf(msg, sizeof(msg), "Failed to submit Ray job %s: %s", jid, res->message);
    ctrl_audit(p, "", "RayJob", p->name, "submit", ok ? NULL : "SubmissionFailed", msg,
               d->out.submit, res->status, ok ? NULL : res->message, loop_clock_ms() - d->t0);
    if (!ok) {
        d->submit_failed = true;
        log_error("job submission failed", "key", p->key, "job", jid, "error", res->message,
                  "correlation_id", p->corr, NULL);
    }
    ctrl_release(p);
}

static void s_on_stop(const raydash_result_t *res, void *arg)
{
    pass_t *d = arg;
    ctrl_pass_t *p = d->cp;
    d->call = 0;
    const char *jid = jx_str(p->obj, "status.jobId", "");
    char msg[CTRL_MSG_MAX];
    snprintf(msg, sizeof(msg), res->err ? "Failed to stop Ray job %s: %s" : "Stopped Ray job %s%s",
             jid, res->err ? res->message : "");
    ctrl_audit(p, "", "RayJob", p->name, "stop", NULL, msg, NULL, res->status,
               res->err ? res->message : NULL, loop_clock_ms() - d->t0);
    if (res->err)
        log_error("job stop failed", "key", p->key, "job", jid, "error", res->message,
                  "correlation_id", p->corr, NULL);
    ctrl_release(p);
}

/* Starts a dashboard call with a hold; false when it could not start (released). */
static void s_dash_call(ctrl_pass_t *p, int op)
{
    pass_t *d = p->data;
    submitter_t *s = ctrl_arg(p->c);
    raydash_target_t t;
    char svc[S_HOST_MAX];
    if (!s_target(p->obj, p->ns, p->urgent, &t, svc)) {
        if (op == RJ_ACT_SUBMIT)
            d->submit_failed = true;
        return;
    }
    ctrl_hold(p);
    d->t0 = loop_clock_ms();
    int64_t id =
        op == RJ_ACT_SUBMIT
            ? raydash_submit(s->dash, &t, d->out.submit, s_on_submit, d)
            : raydash_stop_job(s->dash, &t, jx_str(p->obj, "status.jobId", ""), s_on_stop, d);
    if (id < 0) {
        if (op == RJ_ACT_SUBMIT)
            d->submit_failed = true;
        log_error("dashboard call not started", "key", p->key, "error", err_str((int)id),
                  "correlation_id", p->corr, NULL);
        ctrl_release(p);
        return;
    }
    d->call = id;
}

/* ---------- the pass ---------- */

/* One step over what is loaded; false (the pass failed) when a builder failed. */
static bool s_step(ctrl_pass_t *p, const rj_info_t *info)
{
    pass_t *d = p->data;
    submitter_t *s = ctrl_arg(p->c);
    rjstate_out_free(&d->out);
    rj_in_t in = {.rj = p->obj,
                  .cluster = d->cluster,
                  .job = d->job,
                  .head_pod = d->head_pod,
                  .now_ms = rftime_now_ms(),
                  .set = &s->set,
                  .rnd = s_rand};
    if (info)
        in.info = *info;
    /* a version of the RayJob validated clean once is not validated again (its runtimeEnvYAML is
     * parsed once, not at every poll): the memo is "valid", or "build-failed" (valid too) */
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    const char *rv = jx_str(p->obj, "metadata.resourceVersion", "");
    const char *memo = ctrl_memo_get(p, uid, rv);
    in.validated = memo != NULL;
    buf_t err;
    buf_init(&err, S_ERR_MAX);
    int rc = rjstate_step(&in, &d->out, &err);
    if (rc == 0 && !d->out.invalid && !memo)
        ctrl_memo_put(p, uid, rv, "valid");
    if (rc != 0) {
        /* a builder refused what the RayJob asks for: the user sees it once per version of the
         * RayJob as a Warning (the pass fails and is retried with backoff, logged each time) */
        const char *why = err.len ? buf_str(&err) : err_str(rc);
        if (!memo || strcmp(memo, "build-failed") != 0) {
            ctrl_event(p, true, "FailedToReconcileRayJob", "Reconcile", "%s", why);
            ctrl_memo_put(p, uid, rv, "build-failed");
        }
        ctrl_fail(p, NULL, "RayJob %s/%s: %s", p->ns, p->name, why);
    }
    buf_free(&err);
    return rc == 0;
}

static ctrl_begin_t s_begin(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    d->cp = p;
    const char *cn = jx_str(p->obj, "status.rayClusterName", "");
    json_t *sel = jx_get(p->obj, "spec.clusterSelector");
    bool selector = json_is_object(sel) && json_object_size(sel) > 0;
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    d->cluster = ctrl_observed_get(p->c, "RayCluster", p->ns, cn, selector ? NULL : uid);
    d->job = ctrl_observed_get(p->c, "Job", p->ns, p->name, uid);
    if (strcmp(rayjob_mode(p->obj), RAYJOB_MODE_SIDECAR) == 0)
        d->head_pod = ctrl_observed_head_pod(p->c, p->ns, cn);
    if (!s_step(p, NULL))
        return CTRL_BEGIN_ERROR;
    /* a spec that stays invalid is reported once, not at every resync */
    if (d->out.invalid &&
        strcmp(jx_str(p->obj, "status.jobDeploymentStatus", ""), RJ_VALIDATION_FAILED) == 0 &&
        d->out.status == NULL)
        d->out.nevents = 0;
    if (d->out.why[0])
        log_debug("rayjob step", "key", p->key, "why", d->out.why, "correlation_id", p->corr, NULL);
    return CTRL_BEGIN_STAGES;
}

/* Deletes an object the RayJob owns (or the RayJob itself) with KubeRay's Event reasons `ok` and
 * `fail` (static strings: the runtime keeps the pointers). */
static void s_delete(ctrl_pass_t *p, const char *group, const char *resource, const char *kind,
                     const char *name, const char *ok, const char *fail, const char *propagation)
{
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_DELETE,
                            .group = group,
                            .version = "v1",
                            .resource = resource,
                            .kind = kind,
                            .name = name,
                            .noun = strcmp(kind, "Job") == 0 ? "submitter Job" : kind,
                            .ok_reason = ok,
                            .fail_reason = fail,
                            .propagation = propagation},
              NULL);
}

/* Suspends every worker group of the observed cluster (DeleteWorkers). */
static void s_suspend_workers(ctrl_pass_t *p, const json_t *rc)
{
    json_t *patch = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, g)
    {
        char path[64];
        snprintf(path, sizeof(path), "/spec/workerGroupSpecs/%zu/groupName", i);
        json_array_append_new(patch, json_pack("{s:s,s:s,s:s}", "op", "test", "path", path, "value",
                                               jx_str(g, "groupName", "")));
        snprintf(path, sizeof(path), "/spec/workerGroupSpecs/%zu/suspend", i);
        json_array_append_new(patch,
                              json_pack("{s:s,s:s,s:b}", "op", "add", "path", path, "value", 1));
    }
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_JSON_PATCH,
                            .group = "ray.io",
                            .version = "v1",
                            .resource = "rayclusters",
                            .kind = "RayCluster",
                            .name = jx_str(rc, "metadata.name", ""),
                            .noun = "RayCluster",
                            .ok_reason = "UpdatedRayCluster",
                            .fail_reason = "FailedToUpdateRayCluster"},
              patch);
    json_decref(patch);
}

/* When to look again: as the step says and, while a Ray job runs without a submitter to wake the
 * RayJob when it ends (HTTPMode, InteractiveMode), every --job-poll. */
static void s_requeue(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    submitter_t *s = ctrl_arg(p->c);
    const rj_out_t *o = &d->out;
    int64_t rq = o->requeue_ms;
    const char *ds = o->status ? jx_str(o->status, "jobDeploymentStatus", "")
                               : jx_str(p->obj, "status.jobDeploymentStatus", "");
    const char *mode = rayjob_mode(p->obj);
    if (strcmp(ds, RJ_RUNNING) == 0 &&
        (strcmp(mode, RAYJOB_MODE_HTTP) == 0 || strcmp(mode, RAYJOB_MODE_INTERACTIVE) == 0)) {
        if (rq == 0 || s->cfg.job_poll_ms < rq)
            rq = s->cfg.job_poll_ms;
    }
    if (rq > 0)
        p->requeue_ms = rq;
}

/* The RayJob's PodGroup write (Volcano): create, or update to the step's out.podgroup. */
static void s_send_pg(ctrl_pass_t *p, ctrl_verb_t verb, const json_t *pg)
{
    buf_t entry;
    buf_init(&entry, CTRL_KEY_MAX - 1);
    if (batchsched_podgroup_key(pg, &entry) != 0) {
        ctrl_fail(p, NULL, "PodGroup %s: name too long", jx_str(pg, "metadata.name", ""));
        buf_free(&entry);
        return;
    }
    ctrl_send(p,
              &(ctrl_req_t){.verb = verb,
                            .group = "scheduling.volcano.sh",
                            .version = "v1beta1",
                            .resource = "podgroups",
                            .kind = "PodGroup",
                            .name = jx_str(pg, "metadata.name", ""),
                            .noun = "PodGroup",
                            .ensure = buf_str(&entry),
                            .fail_reason = verb == CTRL_CREATE ? "FailedToCreatePodGroup"
                                                               : "FailedToUpdatePodGroup"},
              pg);
    buf_free(&entry);
}

/* syncPodGroup for CleanupOnCompletion: the live PodGroup read, create or resize it. */
static void s_pg_got(ctrl_pass_t *p, const k8s_result_t *res)
{
    pass_t *d = p->data;
    const json_t *want = d->out.podgroup;
    json_t *upd = NULL;
    if (!want)
        return;
    if (res->err && res->err != ERR_NOTFOUND) {
        ctrl_fail(p, NULL, "failed to get PodGroup %s/%s, %s", p->ns,
                  jx_str(want, "metadata.name", ""),
                  res->message[0] ? res->message : err_str(res->err));
        return;
    }
    switch (batchsched_podgroup_sync(res->err ? NULL : res->body, want, true, &upd)) {
    case BATCHSCHED_SYNC_CREATE:
        s_send_pg(p, CTRL_CREATE, want);
        break;
    case BATCHSCHED_SYNC_UPDATE:
        if (upd)
            s_send_pg(p, CTRL_UPDATE, upd);
        else
            ctrl_fail(p, NULL, "out of memory");
        break;
    case BATCHSCHED_SYNC_NONE:
        break;
    }
    json_decref(upd);
}

/* RJ_ACT_SYNC_PODGROUP: read the PodGroup unless written for this size a moment ago. */
static void s_sync_pg(ctrl_pass_t *p, const json_t *pg)
{
    buf_t entry;
    buf_init(&entry, CTRL_KEY_MAX - 1);
    bool fresh = batchsched_podgroup_key(pg, &entry) == 0 &&
                 ctrl_ensured(p, buf_str(&entry), BATCHSCHED_REREAD_MS);
    buf_free(&entry);
    if (!fresh)
        ctrl_send(p,
                  &(ctrl_req_t){.verb = CTRL_GET,
                                .group = "scheduling.volcano.sh",
                                .version = "v1beta1",
                                .resource = "podgroups",
                                .kind = "PodGroup",
                                .name = jx_str(pg, "metadata.name", ""),
                                .on_get = s_pg_got},
                  NULL);
}

/* Stage: step again with the Ray job's info, then carry out the decision. */
static void s_stage_act(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    if (d->out.wants_info && !s_step(p, &d->info))
        return;
    rj_out_t *o = &d->out;
    for (size_t i = 0; i < o->nevents; i++)
        ctrl_event(p, o->events[i].warning, o->events[i].reason, "Reconcile", "%s",
                   o->events[i].msg);
    if (o->actions & RJ_ACT_STOP_JOB)
        s_dash_call(p, RJ_ACT_STOP_JOB);
    if (o->actions & RJ_ACT_SYNC_PODGROUP)
        s_sync_pg(p, o->podgroup);
    if (o->actions & RJ_ACT_CREATE_PODGROUP)
        ctrl_create_once(p, json_incref(o->podgroup), "scheduling.volcano.sh", "v1beta1",
                         "podgroups", "PodGroup", NULL, "FailedToCreatePodGroup", 0);
    if (o->actions & RJ_ACT_CREATE_CLUSTER)
        ctrl_create_once(p, json_incref(o->cluster), "ray.io", "v1", "rayclusters", "RayCluster",
                         "CreatedRayCluster", "FailedToCreateRayCluster", 0);
    if (o->actions & RJ_ACT_HEAD_SERVICE)
        ctrl_create_once(p, json_incref(o->service), "", "v1", "services", "Service",
                         "CreatedService", "FailedToCreateService", 0);
    if (o->actions & RJ_ACT_CREATE_JOB)
        ctrl_create_once(p, json_incref(o->job), "batch", "v1", "jobs", "submitter Job",
                         "CreatedRayJobSubmitter", "FailedToCreateRayJobSubmitter", 0);
    if (o->actions & RJ_ACT_SUBMIT)
        s_dash_call(p, RJ_ACT_SUBMIT);
    if (o->actions & RJ_ACT_DELETE_CLUSTER)
        s_delete(p, "ray.io", "rayclusters", "RayCluster", jx_str(d->cluster, "metadata.name", ""),
                 "DeletedRayCluster", "FailedToDeleteRayCluster", NULL);
    if (o->actions & RJ_ACT_DELETE_JOB)
        s_delete(p, "batch", "jobs", "Job", p->name, "DeletedRayJobSubmitter",
                 "FailedToDeleteRayJobSubmitter", "Background");
    if (o->actions & RJ_ACT_SUSPEND_WORKERS)
        s_suspend_workers(p, d->cluster);
    if (o->actions & (RJ_ACT_ADD_FINALIZER | RJ_ACT_REMOVE_FINALIZER))
        ctrl_finalizer(p, FINALIZER_RAYJOB, o->actions & RJ_ACT_ADD_FINALIZER);
    s_requeue(p);
    if (o->actions & RJ_ACT_DELETE_SELF)
        s_delete(p, "ray.io", "rayjobs", "RayJob", p->name, "DeletedRayJob", "FailedToDeleteRayJob",
                 NULL);
}

/* Stage: the status write. */
static void s_stage_status(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    rj_out_t *o = &d->out;
    if (o->wants_info)
        return; /* the act stage failed to step again */
    json_t *st = o->status;
    o->status = NULL;
    if (d->submit_failed) {
        if (!st) {
            json_t *cur = jx_get(p->obj, "status");
            st = json_is_object(cur) ? json_deep_copy(cur) : json_object();
        }
        rjstate_submit_failed(st, rftime_now_ms());
    }
    if (st)
        ctrl_status_write(p, st, rjstate_status_changed);
}

static void s_pass_free(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    submitter_t *s = ctrl_arg(p->c);
    if (d->call > 0)
        raydash_cancel(s->dash, d->call);
    json_decref(d->cluster);
    json_decref(d->job);
    json_decref(d->head_pod);
    rjstate_out_free(&d->out);
    free(d->info_status);
    free(d->info_msg);
}

static const ctrl_stage_t s_stages[] = {
    {s_stage_info, false},
    {s_stage_act, false},
    {s_stage_status, false},
};

/* A change of the RayJob's submitter Job (K8sJobMode) is what tells that the Ray job ended: that
 * pass (Running -> Complete/Failed) must not wait behind thousands of other RayJobs' passes. Its
 * creation (ADDED) is not urgent: the pass it causes only records what the submitter just did. */
static bool s_urgent(const envwire_object_changed_t *oc)
{
    return envwire_str_eq(oc->child_kind, "Job") &&
           oc->type == RAYFLEET__EVENT_TYPE__EVENT_MODIFIED;
}

static const ctrl_kind_t s_kind = {.group = "ray.io",
                                   .version = "v1",
                                   .kind = "RayJob",
                                   .resource = "rayjobs",
                                   .component = SUBMITTER_COMPONENT,
                                   .instance = SUBMITTER_INSTANCE,
                                   .pass_size = sizeof(pass_t),
                                   .begin = s_begin,
                                   .stages = s_stages,
                                   .nstages = sizeof(s_stages) / sizeof(s_stages[0]),
                                   .pass_free = s_pass_free,
                                   .status_precondition = true,
                                   .urgent = s_urgent};

submitter_t *submitter_new(loop_t *loop, const submitter_config_t *cfg)
{
    if (!loop || !cfg || !cfg->base.cluster || !cfg->base.observed || !cfg->base.client)
        return NULL;
    submitter_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    if (s->cfg.job_poll_ms <= 0)
        s->cfg.job_poll_ms = SUBMITTER_JOB_POLL_MS;
    if (cfg->settings)
        s->set = *cfg->settings;
    else
        rjstate_settings_default(&s->set);
    s->cfg.settings = &s->set;
    ctrl_config_t cc = cfg->base;
    cc.kind = &s_kind;
    cc.arg = s;
    s->dash = raydash_new(loop, &(raydash_config_t){.k8s = cfg->use_proxy ? cfg->base.client : NULL,
                                                    .direct = !cfg->use_proxy});
    s->ctrl = s->dash ? ctrl_new(loop, &cc) : NULL;
    if (!s->ctrl) {
        submitter_destroy(&s);
        return NULL;
    }
    return s;
}

ctrl_t *submitter_ctrl(submitter_t *s)
{
    return s ? s->ctrl : NULL;
}

void submitter_destroy(submitter_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    submitter_t *s = *s_p;
    ctrl_destroy(&s->ctrl); /* passes cancel their dashboard calls */
    raydash_destroy(&s->dash);
    free(s);
    *s_p = NULL;
}
