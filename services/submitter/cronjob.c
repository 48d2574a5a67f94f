/*
 * cronjob: the RayCronJob controller (see cronjob.h).
 */
#include "cronjob.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "raycronjob.h"
#include "rftime.h"
#include "submitter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MSG_MAX 4096 /* longest Event message */
#define S_MEMO_INVALID                                                                             \
    "invalid" /* memo: the InvalidRayCronJobSpec Event was sent for the version */
#define S_MEMO_SUSPENDED "suspended" /* memo: the SuspendedRayCronJob Event was sent */
#define S_MEMO_GATE "gate" /* memo: the gate-off Event was sent for the uid */

struct cronjob {
    ctrl_t *ctrl; /* the runtime */
    validate_gates_t gates; /* the gates (cronjob: reconcile, else only the gate-off Event) */
    int64_t (*now_ms)(void *arg); /* the wall clock */
    void *now_arg;
};

/* The pass's state. */
typedef struct {
    raycronjob_step_t st; /* the step */
    json_t *rayjob; /* CREATE: the RayJob of the tick */
    int64_t now_ms; /* the clock the step was taken at */
} pass_t;

static int64_t s_now(const cronjob_t *cj)
{
    return cj->now_ms ? cj->now_ms(cj->now_arg) : rftime_now_ms();
}

/* Milliseconds from now_ms to the tick t_s, at least 1. */
static int64_t s_until(int64_t t_s, int64_t now_ms)
{
    int64_t d = t_s * 1000 - now_ms;
    return d > 0 ? d : 1;
}

/* An Event once per object version (or per uid with rv "-"): the memo remembers it was sent. */
static void s_event_once(ctrl_pass_t *p, const char *memo, const char *rv, bool warning,
                         const char *reason, const char *msg)
{
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    const char *seen = ctrl_memo_get(p, uid, rv);
    if (seen && strcmp(seen, memo) == 0)
        return;
    ctrl_event(p, warning, reason, "Reconcile", "%s", msg);
    ctrl_memo_put(p, uid, rv, memo);
}

static ctrl_begin_t s_begin(ctrl_pass_t *p)
{
    cronjob_t *cj = ctrl_arg(p->c);
    pass_t *d = p->data;
    p->requeue_ms = CRONJOB_IDLE_REQUEUE_MS;
    if (!p->obj)
        return CTRL_BEGIN_OK;
    const char *rv = jx_str(p->obj, "metadata.resourceVersion", "");
    if (!cj->gates.cronjob) {
        char msg[S_MSG_MAX];
        snprintf(msg, sizeof(msg),
                 "RayCronJob %s/%s is not reconciled: the feature gate RayCronJob is off "
                 "(KubeRay's default); start rayfleet with --feature-gates RayCronJob=true",
                 p->ns, p->name);
        s_event_once(p, S_MEMO_GATE, "-", true, RAYCRONJOB_EV_GATE, msg);
        return CTRL_BEGIN_END;
    }
    if (jx_get(p->obj, "metadata.deletionTimestamp"))
        return CTRL_BEGIN_OK; /* its RayJobs go with it (ownerReferences) */
    buf_t msg;
    buf_init(&msg, S_MSG_MAX);
    d->now_ms = s_now(cj);
    int rc = raycronjob_step(p->obj, &cj->gates, d->now_ms, &d->st, &msg);
    if (rc != 0) {
        buf_free(&msg);
        ctrl_fail(p, NULL, "RayCronJob step failed: %s", err_str(rc));
        return CTRL_BEGIN_ERROR;
    }
    ctrl_begin_t out = CTRL_BEGIN_END;
    switch (d->st.action) {
    case RAYCRONJOB_INVALID:
        s_event_once(p, S_MEMO_INVALID, rv, true, RAYCRONJOB_EV_INVALID, buf_str(&msg));
        break;
    case RAYCRONJOB_SUSPENDED:
        s_event_once(p, S_MEMO_SUSPENDED, rv, false, RAYCRONJOB_EV_SUSPENDED,
                     RAYCRONJOB_SUSPENDED_MSG);
        break;
    case RAYCRONJOB_NONE:
        break;
    case RAYCRONJOB_WAIT:
        p->requeue_ms = s_until(d->st.tick_s, d->now_ms);
        break;
    case RAYCRONJOB_CREATE:
        d->rayjob = raycronjob_rayjob(p->obj, d->st.tick_s);
        if (!d->rayjob) {
            ctrl_fail(p, NULL, "failed to build the RayJob of the tick");
            out = CTRL_BEGIN_ERROR;
        } else {
            out = CTRL_BEGIN_STAGES;
        }
        break;
    }
    buf_free(&msg);
    return out;
}

/* Stage: the RayJob of the tick (AlreadyExists counts as created). */
static void s_stage_create(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_CREATE,
                            .group = "ray.io",
                            .version = "v1",
                            .resource = "rayjobs",
                            .kind = "RayJob",
                            .name = jx_str(d->rayjob, "metadata.name", ""),
                            .noun = "RayJob"},
              d->rayjob);
}

static bool s_status_changed(const json_t *old, const json_t *now)
{
    return !json_equal(json_object_get(old, "lastScheduleTime"),
                       json_object_get(now, "lastScheduleTime"));
}

/* Stage: status.lastScheduleTime = the tick; requeue at the next tick. */
static void s_stage_status(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    char ts[RFTIME_BUF];
    if (rftime_format(d->st.tick_s * 1000, RFTIME_SEC, ts, sizeof(ts)) != 0) {
        ctrl_fail(p, NULL, "tick out of range");
        return;
    }
    const json_t *cur = jx_get(p->obj, "status");
    json_t *st = json_is_object(cur) ? json_deep_copy(cur) : json_object();
    if (!st || json_object_set_new(st, "lastScheduleTime", json_string(ts)) != 0) {
        json_decref(st);
        ctrl_fail(p, NULL, "out of memory");
        return;
    }
    ctrl_status_write(p, st, s_status_changed);
    p->requeue_ms =
        d->st.next_s ? s_until(d->st.next_s, s_now(ctrl_arg(p->c))) : CRONJOB_IDLE_REQUEUE_MS;
}

static const ctrl_stage_t s_stages[] = {
    {s_stage_create, false},
    {s_stage_status, false},
};

static void s_pass_free(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    json_decref(d->rayjob);
    d->rayjob = NULL;
}

static const ctrl_kind_t s_kind = {.group = "ray.io",
                                   .version = "v1",
                                   .kind = "RayCronJob",
                                   .resource = "raycronjobs",
                                   .component = CRONJOB_COMPONENT,
                                   .instance = SUBMITTER_INSTANCE,
                                   .pass_size = sizeof(pass_t),
                                   .begin = s_begin,
                                   .stages = s_stages,
                                   .nstages = sizeof(s_stages) / sizeof(s_stages[0]),
                                   .pass_free = s_pass_free,
                                   .status_precondition = true};

cronjob_t *cronjob_new(loop_t *loop, const cronjob_config_t *cfg)
{
    if (!loop || !cfg || !cfg->base.cluster)
        return NULL;
    cronjob_t *cj = calloc(1, sizeof(*cj));
    if (!cj)
        return NULL;
    if (cfg->gates)
        cj->gates = *cfg->gates;
    else
        validate_gates_default(&cj->gates);
    cj->now_ms = cfg->now_ms;
    cj->now_arg = cfg->now_arg;
    ctrl_config_t cc = cfg->base;
    cc.kind = &s_kind;
    cc.arg = cj;
    cj->ctrl = ctrl_new(loop, &cc);
    if (!cj->ctrl) {
        free(cj);
        return NULL;
    }
    return cj;
}

ctrl_t *cronjob_ctrl(cronjob_t *cj)
{
    return cj ? cj->ctrl : NULL;
}

void cronjob_destroy(cronjob_t **cj_p)
{
    if (!cj_p || !*cj_p)
        return;
    ctrl_destroy(&(*cj_p)->ctrl);
    free(*cj_p);
    *cj_p = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"
#include "tz.h"

static int64_t s_t_clock(void *arg)
{
    return *(int64_t *)arg;
}

/* Runs begin and, when it says so, the stages of one captured pass over obj. */
static ctrl_begin_t s_t_pass(cronjob_t *cj, json_t *obj, int64_t *requeue_ms)
{
    ctrl_pass_t *p = ctrl_test_pass(cj->ctrl, "c1/ns1/nightly", obj);
    if (!p)
        return CTRL_BEGIN_ERROR;
    ctrl_begin_t b = s_begin(p);
    if (b == CTRL_BEGIN_STAGES)
        for (size_t i = 0; i < sizeof(s_stages) / sizeof(s_stages[0]) && !p->failed; i++)
            s_stages[i].fn(p);
    *requeue_ms = p->requeue_ms;
    ctrl_test_pass_free(&p);
    return b;
}

/* The captured entries of a kind of request (what) or of Events (what 0: entries with "event"). */
static size_t s_t_count(const json_t *cap, int what)
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(cap, i, e)
    {
        if (what == 0 ? json_object_get(e, "event") != NULL
                      : json_integer_value(json_object_get(e, "what")) == what)
            n++;
    }
    return n;
}

static int64_t s_t_utc(int y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

int cronjob_test(bool verbose)
{
    int failed = 0;
    loop_t *loop = loop_new();
    json_t *cap = json_array();
    int64_t now = s_t_utc(2026, 12, 7, 9, 0) * 1000 + 500;
    validate_gates_t g;
    validate_gates_default(&g);
    g.cronjob = true;
    cronjob_t *cj = loop && cap
                        ? cronjob_new(loop,
                                      &(cronjob_config_t){
                                          .base = {.cluster = "c1", .capture = cap, .events = true},
                                          .gates = &g,
                                          .now_ms = s_t_clock,
                                          .now_arg = &now})
                        : NULL;
    CHECK(cj && cronjob_ctrl(cj));
    if (!cj) {
        json_decref(cap);
        loop_destroy(&loop);
        return SELFTEST_RESULT("cronjob", verbose);
    }
    json_t *obj =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:{s:s, s:b, s:b, s:{s:{s:{}, "
                  "s:{s:{s:[{s:s, s:s}]}}}}}}}",
                  "apiVersion", "ray.io/v1", "kind", "RayCronJob", "metadata", "name", "nightly",
                  "namespace", "ns1", "uid", "u1", "resourceVersion", "10", "creationTimestamp",
                  "2026-12-07T08:58:10Z", "spec", "schedule", "* * * * *", "jobTemplate",
                  "entrypoint", "x", "shutdownAfterJobFinishes", 1, "suspend", 1, "rayClusterSpec",
                  "headGroupSpec", "rayStartParams", "template", "spec", "containers", "name",
                  "ray-head", "image", "rayproject/ray:2.52.0");
    int64_t rq = 0;
    /* created 08:58:10, now 09:00:00.5: the 08:59 tick is due; the 09:00 one at once after */
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_STAGES);
    CHECK(s_t_count(cap, CTRL_CREATE) == 1 && s_t_count(cap, CTRL_STATUS) == 1);
    const json_t *c0 = json_array_get(cap, 0);
    char want[64];
    snprintf(want, sizeof(want), "nightly-%lld", (long long)(s_t_utc(2026, 12, 7, 8, 59) / 60));
    CHECK(strcmp(jx_str(c0, "name", ""), want) == 0);
    const json_t *ann = jx_get(c0, "body.metadata.annotations");
    CHECK(strcmp(json_string_value(json_object_get(ann, "ray.io/cronjob-scheduled-timestamp")),
                 "2026-12-07T08:59:00Z") == 0);
    CHECK(rq == 1);
    const json_t *sb = jx_get(json_array_get(cap, 1), "body");
    const json_t *repl = json_array_get(sb, json_array_size(sb) - 1);
    CHECK(strcmp(jx_str(repl, "value.lastScheduleTime", ""), "2026-12-07T08:59:00Z") == 0);
    json_array_clear(cap);
    /* the watcher brought the status: the 09:00 tick */
    json_object_set_new(obj, "status",
                        json_pack("{s:s}", "lastScheduleTime", "2026-12-07T08:59:00Z"));
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("11"));
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_STAGES && s_t_count(cap, CTRL_CREATE) == 1);
    CHECK(rq == 59500); /* the 09:01 tick, 59.5 s away */
    json_array_clear(cap);
    json_object_set_new(obj, "status",
                        json_pack("{s:s}", "lastScheduleTime", "2026-12-07T09:00:00Z"));
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("12"));
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && json_array_size(cap) == 0 && rq == 59500);
    /* suspended: one Event per version */
    json_object_set_new(json_object_get(obj, "spec"), "suspend", json_true());
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && s_t_count(cap, 0) == 1);
    CHECK(strcmp(jx_str(json_array_get(cap, 0), "event", ""), "SuspendedRayCronJob") == 0);
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && s_t_count(cap, 0) == 1);
    CHECK(rq == CRONJOB_IDLE_REQUEUE_MS);
    json_array_clear(cap);
    /* invalid: Warning with "ns/name: message", once per version, nothing created */
    json_object_set_new(json_object_get(obj, "spec"), "suspend", json_false());
    json_object_set_new(json_object_get(obj, "spec"), "schedule", json_string("61 * * * *"));
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("13"));
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && s_t_count(cap, 0) == 1);
    CHECK(strcmp(jx_str(json_array_get(cap, 0), "event", ""), "InvalidRayCronJobSpec") == 0);
    CHECK(strcmp(jx_str(json_array_get(cap, 0), "msg", ""),
                 "ns1/nightly: invalid cron schedule: end of range (61) above maximum (59): 61") ==
          0);
    CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && json_array_size(cap) == 1);
    CHECK(s_t_count(cap, CTRL_CREATE) == 0);
    cronjob_destroy(&cj);
    json_array_clear(cap);
    /* gate off: one Warning naming the gate per uid, nothing else */
    g.cronjob = false;
    cj = cronjob_new(loop,
                     &(cronjob_config_t){.base = {.cluster = "c1", .capture = cap, .events = true},
                                         .gates = &g});
    CHECK(cj != NULL);
    if (cj) {
        CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && s_t_count(cap, 0) == 1);
        CHECK(strcmp(jx_str(json_array_get(cap, 0), "event", ""), RAYCRONJOB_EV_GATE) == 0);
        CHECK(strstr(jx_str(json_array_get(cap, 0), "msg", ""), "RayCronJob=true") != NULL);
        json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("14"));
        CHECK(s_t_pass(cj, obj, &rq) == CTRL_BEGIN_END && json_array_size(cap) == 1);
        cronjob_destroy(&cj);
    }
    json_decref(obj);
    json_decref(cap);
    loop_destroy(&loop);
    return SELFTEST_RESULT("cronjob", verbose);
}
#endif
