/*
 * raycronjob: the KubeRay model of a RayCronJob (see raycronjob.h).
 */
#include "raycronjob.h"

#include "cron.h"
#include "err.h"
#include "json.h"
#include "labels.h"
#include "objbuild.h"
#include "rayjob.h"
#include "rftime.h"
#include "tz.h"

#include <stdio.h>
#include <string.h>

#define S_MSG_MAX 4096 /* longest message kept */

/* Appends a failure message; returns VALIDATE_INVALID or the buffer's error. */
static int s_fail(buf_t *msg, const char *fmt, const char *arg)
{
    int rc = buf_printf(msg, fmt, arg);
    return rc ? rc : VALIDATE_INVALID;
}

/* Parses the schedule and loads the zone (timeZone absent: Local). The zone is set only on 0. */
static int s_schedule(const json_t *cj, cron_t *c, tz_t **z, buf_t *msg)
{
    const json_t *spec = json_object_get(cj, "spec");
    const char *sched = jx_str(spec, "schedule", "");
    if (strstr(sched, "TZ"))
        return s_fail(msg, "%s",
                      "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    int rc = 0;
    if (cron_parse(sched, c, &err, NULL) != 0) {
        rc = s_fail(msg, "invalid cron schedule: %s", buf_str(&err));
        buf_free(&err);
        return rc;
    }
    const json_t *tzv = json_object_get(spec, "timeZone");
    const char *zone = "Local";
    if (json_is_string(tzv)) {
        zone = json_string_value(tzv);
        if (!*zone)
            return s_fail(msg, "%s",
                          "timeZone must not be empty string, omit the field to use the local "
                          "time zone of the KubeRay operator");
    }
    rc = tz_load(zone, z, &err);
    if (rc == ERR_NOMEM) {
        buf_free(&err);
        return rc;
    }
    if (rc != 0)
        rc = s_fail(msg, "invalid time zone: %s", buf_str(&err));
    buf_free(&err);
    return rc;
}

/* Validation, keeping the schedule and zone for the step when z is not NULL. */
static int s_validate(const json_t *cj, const validate_gates_t *g, buf_t *msg, cron_t *c, tz_t **z)
{
    const char *name = jx_str(cj, "metadata.name", "");
    if (strlen(name) > RAYCRONJOB_NAME_MAX) {
        int rc = buf_printf(msg, "RayCronJob name should be no more than %d characters",
                            RAYCRONJOB_NAME_MAX);
        return rc ? rc : VALIDATE_INVALID;
    }
    cron_t cl;
    tz_t *zl = NULL;
    int rc = s_schedule(cj, c ? c : &cl, &zl, msg);
    if (rc)
        return rc;
    json_t *rj = json_pack("{s:O?}", "spec", jx_get(cj, "spec.jobTemplate"));
    if (!rj) {
        tz_free(&zl);
        return ERR_NOMEM;
    }
    if (!json_object_get(rj, "spec"))
        json_object_set_new(rj, "spec", json_object());
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    rc = rayjob_validate_spec(rj, g, &err);
    json_decref(rj);
    if (rc == VALIDATE_INVALID)
        rc = s_fail(msg, "invalid RayJob template: %s", buf_str(&err));
    buf_free(&err);
    if (rc == 0 && z)
        *z = zl;
    else
        tz_free(&zl);
    return rc;
}

int raycronjob_validate(const json_t *cj, const validate_gates_t *g, buf_t *msg)
{
    return s_validate(cj, g, msg, NULL, NULL);
}

int raycronjob_rayjob_name(const char *cronjob, int64_t tick_s, char *out, size_t size)
{
    int n = snprintf(out, size, "%s-%lld", cronjob, (long long)(tick_s / 60));
    return n < 0 || (size_t)n >= size ? ERR_TOOBIG : n;
}

json_t *raycronjob_rayjob(const json_t *cj, int64_t tick_s)
{
    const char *name = jx_str(cj, "metadata.name", "");
    char rjname[512], ts[RFTIME_BUF];
    if (raycronjob_rayjob_name(name, tick_s, rjname, sizeof(rjname)) < 0 ||
        rftime_format(tick_s * 1000, RFTIME_SEC, ts, sizeof(ts)) != 0)
        return NULL;
    json_t *spec = json_deep_copy(jx_get(cj, "spec.jobTemplate"));
    json_t *refs = objbuild_controller_refs(cj, "RayCronJob");
    json_t *rj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:{s:s}, s:o}, s:o}", "apiVersion",
                           "ray.io/v1", "kind", "RayJob", "metadata", "name", rjname, "namespace",
                           jx_str(cj, "metadata.namespace", ""), "labels", LABEL_CRONJOB_NAME, name,
                           "annotations", ANN_CRONJOB_SCHEDULED_TIMESTAMP, ts, "ownerReferences",
                           refs ? refs : json_null(), "spec", spec ? spec : json_object());
    if (rj && !refs) {
        json_decref(rj);
        return NULL;
    }
    return rj;
}

int raycronjob_step(const json_t *cj, const validate_gates_t *g, int64_t now_ms,
                    raycronjob_step_t *out, buf_t *msg)
{
    memset(out, 0, sizeof(*out));
    cron_t c;
    tz_t *z = NULL;
    buf_t err;
    buf_init(&err, S_MSG_MAX);
    int rc = s_validate(cj, g, &err, &c, &z);
    if (rc == VALIDATE_INVALID) {
        out->action = RAYCRONJOB_INVALID;
        rc = buf_printf(msg, "%s/%s: %s", jx_str(cj, "metadata.namespace", ""),
                        jx_str(cj, "metadata.name", ""), buf_str(&err));
        buf_free(&err);
        return rc == ERR_NOMEM ? rc : 0;
    }
    buf_free(&err);
    if (rc)
        return rc;
    if (jx_bool(cj, "spec.suspend", false)) {
        tz_free(&z);
        out->action = RAYCRONJOB_SUSPENDED;
        return 0;
    }
    int64_t earliest = 0;
    if (rftime_parse_sec(jx_str(cj, "status.lastScheduleTime", ""), &earliest) != 0 &&
        rftime_parse_sec(jx_str(cj, "metadata.creationTimestamp", ""), &earliest) != 0)
        earliest = now_ms / 1000;
    int64_t tick = 0;
    if (!cron_next(&c, z, earliest, &tick)) {
        tz_free(&z);
        out->action = RAYCRONJOB_NONE;
        return 0;
    }
    out->tick_s = tick;
    if (tick * 1000 > now_ms) {
        out->action = RAYCRONJOB_WAIT;
    } else {
        out->action = RAYCRONJOB_CREATE;
        int64_t next = 0;
        out->next_s = cron_next(&c, z, tick, &next) ? next : 0;
    }
    tz_free(&z);
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* A RayCronJob with the given schedule, zone (NULL: absent) and extra JSON merged at the top. */
static json_t *s_cj(const char *name, const char *schedule, const char *zone)
{
    json_t *cj = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:{s:s, s:b, s:b, s:{s:{s:{}, s:{s:{s:[{s:s, "
        "s:s}]}}}}}}}",
        "apiVersion", "ray.io/v1", "kind", "RayCronJob", "metadata", "name", name, "namespace",
        "ns1", "uid", "uid-1", "creationTimestamp", "2026-12-07T09:00:30Z", "spec", "schedule",
        schedule, "jobTemplate", "entrypoint", "python x.py", "shutdownAfterJobFinishes", 1,
        "suspend", 1, "rayClusterSpec", "headGroupSpec", "rayStartParams", "template", "spec",
        "containers", "name", "ray-head", "image", "rayproject/ray:2.52.0");
    if (cj && zone)
        json_object_set_new(json_object_get(cj, "spec"), "timeZone", json_string(zone));
    return cj;
}

/* True when validating cj fails with exactly msg. */
static bool s_invalid(json_t *cj, const char *msg)
{
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    bool ok =
        raycronjob_validate(cj, NULL, &m) == VALIDATE_INVALID && strcmp(buf_str(&m), msg) == 0;
    if (!ok)
        printf("raycronjob: got \"%s\"\n", buf_str(&m));
    buf_free(&m);
    json_decref(cj);
    return ok;
}

/* The UTC instant of a civil time. */
static int64_t s_utc(int y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

int raycronjob_test(bool verbose)
{
    int failed = 0;
    buf_t m;
    buf_init(&m, S_MSG_MAX);
    /* validation messages */
    json_t *cj = s_cj("ok", "* * * * *", NULL);
    CHECK(raycronjob_validate(cj, NULL, &m) == 0);
    json_decref(cj);
    CHECK(s_invalid(s_cj("a234567890123456789012345678901234567", "* * * * *", NULL),
                    "RayCronJob name should be no more than 36 characters"));
    cj = s_cj("a23456789012345678901234567890123456", "* * * * *", NULL);
    CHECK(raycronjob_validate(cj, NULL, &m) == 0);
    json_decref(cj);
    CHECK(s_invalid(s_cj("x", "TZ=UTC * * * * *", NULL),
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
    CHECK(s_invalid(s_cj("x", "61 * * * *", NULL),
                    "invalid cron schedule: end of range (61) above maximum (59): 61"));
    CHECK(s_invalid(s_cj("x", "* * * *", NULL),
                    "invalid cron schedule: expected exactly 5 fields, found 4: [* * * *]"));
    CHECK(s_invalid(s_cj("x", "* * * * *", ""),
                    "timeZone must not be empty string, omit the field to use the local time "
                    "zone of the KubeRay operator"));
    CHECK(s_invalid(s_cj("x", "* * * * *", "Mars/Olympus"),
                    "invalid time zone: unknown time zone Mars/Olympus"));
    CHECK(s_invalid(s_cj("x", "* * * * *", "../../etc/passwd"),
                    "invalid time zone: time: invalid location name"));
    cj = s_cj("x", "* * * * *", NULL);
    json_object_set_new(json_object_get(cj, "spec"), "jobTemplate",
                        json_pack("{s:s, s:b}", "entrypoint", "x", "suspend", 1));
    CHECK(s_invalid(cj, "invalid RayJob template: The RayJob spec is invalid: a RayJob with "
                        "shutdownAfterJobFinishes set to false is not allowed to be suspended"));

    /* the RayJob of a tick */
    cj = s_cj("nightly", "45 21 * * *", "Asia/Taipei");
    int64_t tick = s_utc(2026, 12, 7, 13, 45);
    json_t *rj = raycronjob_rayjob(cj, tick);
    char want[64];
    snprintf(want, sizeof(want), "nightly-%lld", (long long)(tick / 60));
    CHECK(rj && strcmp(jx_str(rj, "metadata.name", ""), want) == 0);
    CHECK(rj && strcmp(jx_str(rj, "metadata.namespace", ""), "ns1") == 0);
    CHECK(rj && strcmp(jx_str(rj, "kind", ""), "RayJob") == 0);
    CHECK(rj && strcmp(json_string_value(
                           json_object_get(jx_get(rj, "metadata.labels"), LABEL_CRONJOB_NAME)),
                       "nightly") == 0);
    CHECK(rj && strcmp(json_string_value(json_object_get(jx_get(rj, "metadata.annotations"),
                                                         ANN_CRONJOB_SCHEDULED_TIMESTAMP)),
                       "2026-12-07T13:45:00Z") == 0);
    const json_t *ref = json_array_get(jx_get(rj, "metadata.ownerReferences"), 0);
    CHECK(ref && strcmp(jx_str(ref, "kind", ""), "RayCronJob") == 0 &&
          strcmp(jx_str(ref, "uid", ""), "uid-1") == 0 && jx_bool(ref, "controller", false));
    CHECK(rj && json_equal(jx_get(rj, "spec"), jx_get(cj, "spec.jobTemplate")));
    json_decref(rj);

    /* steps: created 09:00:30 UTC, first tick 13:45 UTC */
    raycronjob_step_t st;
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 7, 10, 0) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_WAIT && st.tick_s == tick);
    /* three days later, lastScheduleTime unset: the first missed tick, then the next one at once */
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 10, 14, 0) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_CREATE && st.tick_s == tick && st.next_s == tick + 86400);
    json_object_set_new(cj, "status",
                        json_pack("{s:s}", "lastScheduleTime", "2026-12-07T13:45:00Z"));
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 10, 14, 0) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_CREATE && st.tick_s == tick + 86400);
    json_object_set_new(cj, "status",
                        json_pack("{s:s}", "lastScheduleTime", "2026-12-10T13:45:00Z"));
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 10, 14, 0) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_WAIT && st.tick_s == s_utc(2026, 12, 11, 13, 45));
    /* exactly at the tick: create */
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 11, 13, 45) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_CREATE && st.tick_s == s_utc(2026, 12, 11, 13, 45));
    json_object_set_new(json_object_get(cj, "spec"), "suspend", json_true());
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 11, 13, 45) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_SUSPENDED);
    json_decref(cj);
    cj = s_cj("never", "0 0 30 2 *", "UTC");
    CHECK(raycronjob_step(cj, NULL, s_utc(2026, 12, 7, 10, 0) * 1000, &st, &m) == 0);
    CHECK(st.action == RAYCRONJOB_NONE);
    json_decref(cj);
    cj = s_cj("x", "* * * * *", "");
    buf_reset(&m);
    CHECK(raycronjob_step(cj, NULL, 0, &st, &m) == 0 && st.action == RAYCRONJOB_INVALID);
    CHECK(strncmp(buf_str(&m), "ns1/x: timeZone must not be empty string", 40) == 0);
    json_decref(cj);

    /* the two upstream samples validate */
    const char *dir = selftest_shared_dir();
    const char *files[] = {"ray-cronjob.sample.yaml", "ray-cronjob-timezone.sample.yaml"};
    for (size_t i = 0; dir && i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/kuberay/samples/%s", dir, files[i]);
        json_t *docs = NULL;
        CHECK(yaml_load_file(path, 1 << 20, &docs, NULL) == 0 && docs);
        json_t *first = json_array_get(docs, 0);
        buf_reset(&m);
        CHECK(first && raycronjob_validate(first, NULL, &m) == 0);
        if (buf_str(&m)[0])
            printf("raycronjob sample %s: %s\n", files[i], buf_str(&m));
        json_decref(docs);
    }
    buf_free(&m);
    return SELFTEST_RESULT("raycronjob", verbose);
}
#endif
