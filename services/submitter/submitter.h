/*
 * submitter: the RayJob controller (KubeRay's rayjob_controller), on the controller runtime
 * (ctrl/ctrl.h) and the KubeRay model (kuberay/rayjob.h builders and validation,
 * kuberay/rjstate.h the state machine).
 *
 * A pass for one RayJob:
 *   begin    the RayJob and what it owns are read from observed.db: the RayCluster named
 *            status.rayClusterName (owned by the RayJob, or any with clusterSelector), the
 *            submitter Job (named like the RayJob, owned by it), and in SidecarMode the head pod.
 *            The state machine steps once (rjstate_step()).
 *   info     when the step stopped where it reads the Ray job, GET /api/jobs/<jobId> from the
 *            cluster's dashboard (common/raydash.h: directly, or through the API server's service
 *            proxy with --use-kubernetes-proxy), and step again with the answer.
 *   act      Events; the RayCluster, the RayJob's head Service and the submitter Job created
 *            (ensured once per name); HTTPMode's POST /api/jobs/ (a duplicate submission id counts
 *            as submitted; any other failure starts the status-check failure timer); stop on
 *            deletion; deletes of the cluster, the submitter Job (Background) or the RayJob;
 *            worker groups suspended (DeleteWorkers). Every write and every dashboard call leaves
 *            an audit row with the pass's cause.
 *   status   the status written when it changed, with a resourceVersion precondition: the job id
 *            and cluster name are recorded before anything is created or submitted, and a
 *            status computed from a lagging observed copy never lands (so one submission id per
 *            attempt, whatever crashes).
 *   after    the finalizer ray.io/rayjob-finalizer appended (New) or removed (deletion).
 * The pass requeues as the step says (3 s in progress, the TTL waits) and, while a Ray job runs
 * in HTTPMode or InteractiveMode, every --job-poll (no submitter to wake it when the job ends).
 */
#ifndef RF_SUBMITTER_H
#define RF_SUBMITTER_H

#include "actlog.h"
#include "ctrl.h"
#include "k8s.h"
#include "loop.h"
#include "rjstate.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

#define SUBMITTER_COMPONENT "rayjob-controller" /* Event source component (KubeRay's recorder) */
#define SUBMITTER_INSTANCE "rayfleet-submitter" /* Event reportingInstance */
#define SUBMITTER_JOB_POLL_MS 1000 /* default --job-poll */

typedef struct submitter submitter_t;

/* Settings; pointers borrowed for the submitter's life. */
typedef struct {
    /* the runtime's settings (cluster, observed.db, client, audit, events, fence, requeue; .kind
     * and .arg are the submitter's own): ctrlsvc_env_t.ctrl in a process */
    ctrl_config_t base;
    bool use_proxy; /* reach dashboards through the API server's service proxy */
    int64_t job_poll_ms; /* poll period of a running Ray job without a submitter; 0: default */
    const rj_settings_t *settings; /* operator settings and gates (copied); NULL: defaults */
} submitter_config_t;

/* A submitter; NULL on bad settings or out of memory. */
submitter_t *submitter_new(loop_t *loop, const submitter_config_t *cfg);

/* Its runtime (for the work queue: ctrl_fn with this as arg). */
ctrl_t *submitter_ctrl(submitter_t *s);

/* Frees it (dashboard calls in flight are cancelled first). NULL-safe; NULLs *s_p. */
void submitter_destroy(submitter_t **s_p);

#endif
