/*
 * raycronjob: the KubeRay model of a RayCronJob (§4.4; KubeRay's raycronjob_controller and
 * ValidateRayCronJobSpec), pure functions.
 *
 * - Validation, KubeRay's order and messages: the name at most RAYCRONJOB_NAME_MAX characters;
 *   a schedule containing "TZ" refused; the schedule parsed as robfig/cron ParseStandard
 *   (common/cron.h: "invalid cron schedule: <robfig's error>"); a timeZone of "" refused and any
 *   other loaded as Go's time.LoadLocation (common/tz.h: "invalid time zone: unknown time zone
 *   X"); the jobTemplate validated as a RayJob spec (kuberay/rayjob.h rayjob_validate_spec():
 *   "invalid RayJob template: <message>").
 * - The RayJob of a tick: `<cronjob>-<tick Unix seconds / 60>` in the RayCronJob's namespace,
 *   label ray.io/cronjob-name, annotation ray.io/cronjob-scheduled-timestamp (the tick, RFC 3339
 *   UTC), spec = a copy of jobTemplate, a controller ownerReference to the RayCronJob.
 * - One step of the controller for the object at `now`: invalid (message "ns/name: <error>", the
 *   InvalidRayCronJobSpec Event's), suspended, none (no activation within five years), wait until
 *   the next tick, or create the RayJob of the tick and requeue at the tick after it. The next tick
 *   is counted from status.lastScheduleTime, else metadata.creationTimestamp, in timeZone (absent:
 *   the process's local zone, as KubeRay's operator), so ticks missed while no controller ran are
 *   caught up one per step, each step's requeue being immediate until the schedule is current.
 */
#ifndef RF_RAYCRONJOB_H
#define RF_RAYCRONJOB_H

#include "buf.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define RAYCRONJOB_NAME_MAX 36 /* KubeRay's MaxRayCronJobNameLength */
#define RAYCRONJOB_EV_INVALID "InvalidRayCronJobSpec" /* Warning Event of a validation failure */
#define RAYCRONJOB_EV_SUSPENDED "SuspendedRayCronJob" /* Normal Event of a suspended RayCronJob */
/* rayfleet's Warning Event about a RayCronJob while the gate is off */
#define RAYCRONJOB_EV_GATE "RayCronJobGateDisabled"
#define RAYCRONJOB_SUSPENDED_MSG "RayCronJob suspended, no new RayJobs will be created"

/* Validates RayCronJob `cj` (gates for the jobTemplate's RayJob rules; NULL: defaults). Returns 0,
 * or VALIDATE_INVALID with KubeRay's message appended to msg (without the "ns/name: " prefix). */
int raycronjob_validate(const json_t *cj, const validate_gates_t *g, buf_t *msg);

/* The RayJob `cj` creates for the tick at tick_s (Unix seconds); NULL on out of memory. */
json_t *raycronjob_rayjob(const json_t *cj, int64_t tick_s);

/* The name of that RayJob into out[size]; returns its length or ERR_TOOBIG. */
int raycronjob_rayjob_name(const char *cronjob, int64_t tick_s, char *out, size_t size);

/* What one step decided. */
typedef enum {
    RAYCRONJOB_INVALID = 1, /* validation failed: Warning Event with msg, no requeue */
    RAYCRONJOB_SUSPENDED, /* spec.suspend: Event SuspendedRayCronJob, no requeue */
    RAYCRONJOB_NONE, /* no activation within five years: no requeue */
    RAYCRONJOB_WAIT, /* the next tick (tick_s) is in the future: requeue at it */
    RAYCRONJOB_CREATE /* create the RayJob of tick_s, lastScheduleTime = tick_s, requeue at next_s
                       */
} raycronjob_action_t;

/* The step's result. */
typedef struct {
    raycronjob_action_t action;
    int64_t tick_s; /* WAIT: the next tick; CREATE: the tick to create (Unix seconds) */
    int64_t next_s; /* CREATE: the tick after it, 0 none */
} raycronjob_step_t;

/* One step for `cj` at now_ms (Unix milliseconds). Returns 0 with *out set (INVALID: msg holds
 * "ns/name: <error>"), or ERR_NOMEM. */
int raycronjob_step(const json_t *cj, const validate_gates_t *g, int64_t now_ms,
                    raycronjob_step_t *out, buf_t *msg);

/* Self-test: every validation message, the RayJob built, steps (first tick from creation,
 * catch-up one tick per step, wait, suspend, time zones, no activation), the two samples. */
int raycronjob_test(bool verbose);

#endif
