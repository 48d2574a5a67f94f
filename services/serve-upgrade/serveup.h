/*
 * serveup: the RayService controller (KubeRay's rayservice_controller), on the controller runtime
 * (ctrl/ctrl.h) and the KubeRay model (kuberay/rayservice.h builders and validation,
 * kuberay/rsstate.h the reconcile step).
 *
 * A pass for one RayService:
 *   begin    read from observed.db: the RayClusters it owns (labelled originated-from it), the
 *            active and pending ones its status names with their head pods, its head and serve
 *            Services, the serve Service's EndpointSlices (ready endpoints counted by targetRef
 *            uid), and the deletion deadlines of dangling clusters (leases.db, shared by the
 *            replicas of a host, so a restart neither forgets nor restarts a deadline).
 *   probe    for the active and pending clusters whose head is ready, at once: the Serve proxy's
 *            GET /-/healthz on the head pod and the dashboard's GET /api/serve/applications/
 *            (common/raydash.h, directly or through the API server's proxy with
 *            --use-kubernetes-proxy); with NewClusterWithIncrementalUpgrade also GETs of the
 *            Gateway and HTTPRoute (the watcher does not observe the Gateway API: a cluster may
 *            not serve it), and the per-cluster serve Services are read in begin.
 *   act      one rsstate_step(): Events; the pending RayCluster created, in-place updates (PUT),
 *            the ray.io/serve label of head pods (merge patch), the Serve config PUT when nothing
 *            was pushed to the cluster by this process, it reports zero applications, or
 *            serveConfigV2 changed (incremental: target_capacity pushes too); the head and serve
 *            Services created or pointed at the ready cluster (selector merge patch, ClusterIP
 *            kept); incremental: per-cluster serve Services, the Gateway and the HTTPRoute
 *            created or updated (weights); deadlines recorded and dangling
 *            clusters deleted; the finalizer. Every write and Serve push leaves an audit row with
 *            the pass's cause.
 *   status   written when it changed (KubeRay's InconsistentRayServiceStatuses), with a
 *            resourceVersion precondition.
 * The RayService is looked at every 2 s while it is not Ready or upgrading and every
 * --steady-poll once Ready (a change of anything it owns wakes it at once).
 */
#ifndef RF_SERVEUP_H
#define RF_SERVEUP_H

#include "actlog.h"
#include "ctrl.h"
#include "k8s.h"
#include "loop.h"
#include "rsstate.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

#define SERVEUP_COMPONENT "rayservice-controller" /* Event source component */
#define SERVEUP_INSTANCE "rayfleet-serve-upgrade" /* Event reportingInstance */
#define SERVEUP_LEASE_PREFIX "rayservice-delete/" /* deadline rows in leases.db */
#define SERVEUP_PUSHED_MAX 4096 /* clusters whose pushed config is remembered (then cleared) */

typedef struct serveup serveup_t;

/* Settings; pointers borrowed for the controller's life. */
typedef struct {
    /* the runtime's settings (cluster, observed.db, client, audit, events, fence, requeue; .kind
     * and .arg are serveup's own): ctrlsvc_env_t.ctrl in a process */
    ctrl_config_t base;
    store_t *deadlines; /* leases.db (deletion deadlines), read-write; NULL: not kept */
    bool use_proxy; /* reach dashboards and pods through the API server's proxy */
    const char *domain; /* cluster domain of dashboard URLs (NULL: cluster.local) */
    const rs_settings_t *settings; /* operator settings and gates (copied); NULL: defaults */
} serveup_config_t;

/* A controller; NULL on bad settings or out of memory. */
serveup_t *serveup_new(loop_t *loop, const serveup_config_t *cfg);

/* Its runtime (for the work queue: ctrl_fn with this as arg). */
ctrl_t *serveup_ctrl(serveup_t *s);

/* Frees it (dashboard calls in flight are cancelled first). NULL-safe; NULLs *s_p. */
void serveup_destroy(serveup_t **s_p);

#endif
