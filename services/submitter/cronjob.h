/*
 * cronjob: the RayCronJob controller (KubeRay's raycronjob_controller, §4.4), on the controller
 * runtime (ctrl/ctrl.h) and the KubeRay model (kuberay/raycronjob.h), hosted in the
 * rayfleet-submitter process beside the RayJob controller (ctrlsvc_def_t.extra).
 *
 * A pass for one RayCronJob steps the model once (raycronjob_step()) at the wall clock:
 *   invalid    Warning Event InvalidRayCronJobSpec "ns/name: <KubeRay's message>", once per
 *              object version (the key's memo), nothing else; no requeue before a change.
 *   suspended  Normal Event SuspendedRayCronJob, once per object version; no requeue.
 *   wait       requeue at the next tick (a timer at the tick: no polling).
 *   create     the RayJob of the tick is created (`<cronjob>-<minutes>`; AlreadyExists counts as
 *              created, so a pass repeated after a crash creates nothing twice), then
 *              status.lastScheduleTime = the tick, then requeue at the tick after it (at once
 *              when that one has passed too: ticks missed while no controller ran are caught up
 *              one RayJob per pass). The status write has the observed resourceVersion as its
 *              precondition and a pass over a copy older than our own write is not run, so a tick
 *              is never created from a stale lastScheduleTime twice.
 * With the RayCronJob gate off (KubeRay's default) nothing is reconciled: the controller only
 * emits one Warning Event RayCronJobGateDisabled per RayCronJob (per uid and process life) that
 * names the gate, so an applied RayCronJob does not fail silently.
 */
#ifndef RF_CRONJOB_H
#define RF_CRONJOB_H

#include "ctrl.h"
#include "loop.h"
#include "validate.h"

#include <stdbool.h>
#include <stdint.h>

/* Event source component (KubeRay's recorder) */
#define CRONJOB_COMPONENT "raycronjob-controller"
/* Requeue of a pass that waits for nothing but a change of the object (invalid, suspended, no
 * activation within five years, gate off): KubeRay does not requeue these at all. */
#define CRONJOB_IDLE_REQUEUE_MS (24LL * 3600 * 1000)

typedef struct cronjob cronjob_t;

/* Settings; pointers borrowed for the controller's life. */
typedef struct {
    ctrl_config_t base; /* the runtime's settings (.kind and .arg are the controller's own) */
    const validate_gates_t *gates; /* copied; NULL: defaults (gate RayCronJob off) */
    /* The wall clock in Unix milliseconds (self-tests); NULL: rftime_now_ms(). */
    int64_t (*now_ms)(void *arg);
    void *now_arg;
} cronjob_config_t;

/* A RayCronJob controller; NULL on bad settings or out of memory. */
cronjob_t *cronjob_new(loop_t *loop, const cronjob_config_t *cfg);

/* Its runtime. */
ctrl_t *cronjob_ctrl(cronjob_t *cj);

/* Frees it; NULL-safe; NULLs *cj_p. */
void cronjob_destroy(cronjob_t **cj_p);

/* Self-test: captured passes (create, wait, catch-up, invalid and suspended Events once per
 * version, gate off). */
int cronjob_test(bool verbose);

#endif
