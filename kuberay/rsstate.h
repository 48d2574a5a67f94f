/*
 * rsstate: KubeRay's RayService reconcile (../shared/spec/kuberay-behavior.md §3.2-§3.4) as one
 * pure step: what was observed goes in (the RayService, the RayClusters it originated, the active
 * and pending clusters' head pods with what their Serve proxy and dashboard said, the RayService's
 * Services, the ready serve endpoints, the recorded deletion deadlines, the time), what to do comes
 * out (clusters to create, update in place or delete, Serve configs to push, head pod serve labels,
 * Services to create or point at a cluster, deadlines to record, the status, Events, when to look
 * again). The serve-upgrade service (services/serve-upgrade) gathers the inputs and carries the
 * actions out; this file decides, so every transition is testable without a cluster.
 *
 * One step is one KubeRay reconcile: validation; dangling clusters (a deadline on first sight,
 * deletion once past it); deletion with the finalizer; the finalizer; suspend; the terminal
 * InitializingTimeout; the pending cluster created when named and missing, in-place updates
 * (KubeRay version, worker groups appended); the `ray.io/serve` label from the proxy health; the
 * Serve push (nothing cached for the cluster, zero applications, or a changed serveConfigV2);
 * the Services pointed at the ready cluster; then calculateStatus (promotion when the Services
 * point at the pending cluster, a new pending cluster when the spec changed and zero-downtime
 * upgrades are on, serve endpoints, conditions).
 *
 * Differences from KubeRay, on purpose:
 *  - The deletion deadlines of dangling clusters are given and recorded by the caller (kept in
 *    SQLite), so a restart neither forgets nor restarts them (KubeRay keeps them in memory).
 *  - NewClusterWithIncrementalUpgrade (§3.5) is KubeRay's forward path: per-cluster serve
 *    Services, the Gateway and HTTPRoute, traffic moved by stepSizePercent every intervalSeconds up
 *    to the pending cluster's target_capacity, target_capacity raised on the pending cluster and
 *    lowered on the active one by maxSurgePercent, promotion when the active capacity is 0 and the
 *    pending traffic 100. The caller reads the Gateway and HTTPRoute (in.gateway, in.route).
 *    When the spec stops being the pending cluster's mid-upgrade (reverted, or changed again),
 *    RollbackInProgress=True/DesiredClusterSpecChanged and the process runs in reverse: the
 *    active cluster's traffic rises by the step every interval up to its capacity, then the
 *    pending capacity comes down to what it still carries and the active capacity goes up by the
 *    surge; at active 100/100 and pending capacity 0 (at once when the pending cluster is not
 *    ready) the pending cluster is dropped (deleted after the delay), RollbackInProgress=False/
 *    RollbackComplete (rayfleet's reason: KubeRay's is not in the spec), and a spec that differs
 *    from the active cluster's then starts a new upgrade.
 *  - The RayService is looked at every RS_POLL_BUSY_MS while it is not Ready or is upgrading, and
 *    every `steady_poll_ms` once Ready with nothing pending (KubeRay: every 2 s, always); a change
 *    of any object it owns (pods of its clusters included) wakes it at once.
 */
#ifndef RF_RSSTATE_H
#define RF_RSSTATE_H

#include "buf.h"
#include "objbuild.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Condition types. */
#define RS_COND_READY "Ready"
#define RS_COND_UPGRADE "UpgradeInProgress"
#define RS_COND_ROLLBACK "RollbackInProgress"
#define RS_COND_SUSPENDING "Suspending"
#define RS_COND_SUSPENDED "Suspended"

/* Condition reasons. */
#define RS_R_INITIALIZING "Initializing"
#define RS_R_INIT_TIMEOUT "InitializingTimeout"
#define RS_R_ZERO_ENDPOINTS "ZeroServeEndpoints"
#define RS_R_NONZERO_ENDPOINTS "NonZeroServeEndpoints"
#define RS_R_BOTH "BothActivePendingClustersExist"
#define RS_R_NO_PENDING "NoPendingCluster"
#define RS_R_NO_ACTIVE "NoActiveCluster"
#define RS_R_VALIDATION "ValidationFailed"
#define RS_R_SUSPEND_REQUESTED "SuspendRequested"
#define RS_R_SUSPEND_IN_PROGRESS "SuspendInProgress"
#define RS_R_SUSPEND_COMPLETE "SuspendComplete"
#define RS_R_RESUMED "RayServiceResumed"
#define RS_R_SPEC_CHANGED "DesiredClusterSpecChanged"
#define RS_R_ROLLBACK_COMPLETE "RollbackComplete" /* rayfleet's: KubeRay's is not in the spec */

#define RS_POLL_BUSY_MS 2000 /* ServiceDefaultRequeueDuration */
#define RS_POLL_STEADY_MS 10000 /* default steady_poll_ms */
#define RS_MAX_EVENTS 6 /* Events one step may emit */
#define RS_MSG_MAX 2048 /* longest Event message */
#define RS_MAX_DELETES 16 /* dangling clusters one step deletes or records */

/* Actions (rs_out_t.actions). */
enum {
    RS_ACT_ADD_FINALIZER = 1u << 0,
    RS_ACT_REMOVE_FINALIZER = 1u << 1,
    RS_ACT_CREATE_CLUSTER = 1u << 2, /* create out.cluster (the pending cluster) */
    RS_ACT_UPDATE_ACTIVE = 1u << 3, /* PUT out.update[0] (in-place update of the active cluster) */
    RS_ACT_UPDATE_PENDING = 1u << 4, /* PUT out.update[1] */
    RS_ACT_PUSH_ACTIVE = 1u << 5, /* PUT /api/serve/applications/ out.push[0] on the active */
    RS_ACT_PUSH_PENDING = 1u << 6, /* ... out.push[1] on the pending cluster */
    RS_ACT_LABEL_ACTIVE = 1u << 7, /* set ray.io/serve=out.label[0] on the active head pod */
    RS_ACT_LABEL_PENDING = 1u << 8, /* ... out.label[1] on the pending head pod */
    RS_ACT_CREATE_HEAD_SVC = 1u << 9, /* create out.head_svc */
    RS_ACT_POINT_HEAD_SVC = 1u << 10, /* patch the head Service's selector to out.head_svc's */
    RS_ACT_CREATE_SERVE_SVC = 1u << 11, /* create out.serve_svc */
    RS_ACT_POINT_SERVE_SVC = 1u << 12, /* patch the serve Service's selector to out.serve_svc's */
    RS_ACT_DELETE_SERVICES = 1u << 13, /* suspend: delete the head and serve Services */
    RS_ACT_CLUSTER_SVC_ACTIVE = 1u << 14, /* incremental: create out.cluster_svc[0] */
    RS_ACT_CLUSTER_SVC_PENDING = 1u << 15, /* incremental: create out.cluster_svc[1] */
    RS_ACT_CREATE_GATEWAY = 1u << 16, /* incremental: create out.gateway */
    RS_ACT_UPDATE_GATEWAY = 1u << 17, /* incremental: PUT out.gateway (observed, spec replaced) */
    RS_ACT_CREATE_ROUTE = 1u << 18, /* incremental: create out.route */
    RS_ACT_UPDATE_ROUTE = 1u << 19, /* incremental: PUT out.route (observed, spec replaced) */
};

/* What a probe of the cluster's head said. */
typedef enum {
    RS_PROBE_NONE = 0, /* not asked */
    RS_PROBE_OK, /* answered (healthz: 200; serve: the applications) */
    RS_PROBE_FAIL /* anything else */
} rs_probe_t;

/* The active or the pending cluster as observed. Borrowed. */
typedef struct {
    const json_t *rc; /* the RayCluster (not being deleted), or NULL when missing */
    const json_t *head_pod; /* its head pod, or NULL */
    rs_probe_t health; /* GET /-/healthz on the head pod's Serve proxy */
    rs_probe_t serve; /* GET /api/serve/applications/ */
    const json_t *apps; /* RS_PROBE_OK: the answer's "applications" object */
    const char *pushed; /* fingerprint of the serveConfigV2 this process last pushed, or NULL */
    const char *pushed_config; /* that serveConfigV2 (incremental target_capacity), or NULL */
    const json_t *serve_svc; /* incremental: its per-cluster serve Service, or NULL */
    long endpoints; /* incremental: that Service's ready serve endpoints */
} rs_cluster_in_t;

/* A RayCluster the RayService originated (label) and its recorded deletion deadline. */
typedef struct {
    const json_t *rc;
    int64_t due_ms; /* the deadline recorded for it (wall ms), -1 none */
} rs_owned_t;

/* Operator-level settings. */
typedef struct {
    const char *version; /* the KubeRay version stamped on clusters (ray.io/kuberay-version) */
    bool zero_downtime; /* ENABLE_ZERO_DOWNTIME (true unless "false") */
    int64_t steady_poll_ms; /* poll period of a Ready RayService with nothing pending */
    validate_gates_t gates;
} rs_settings_t;

void rsstate_settings_default(rs_settings_t *s);

/* What was observed. Borrowed for the call. */
typedef struct {
    const json_t *rs; /* the RayService */
    const rs_owned_t *owned; /* every RayCluster labelled as originated from it */
    size_t nowned;
    rs_cluster_in_t active, pending; /* the clusters its status names */
    const json_t *head_svc, *serve_svc; /* its Services as observed, or NULL */
    long endpoints; /* ready serve endpoints of the serve Service (EndpointSlices) */
    const json_t *gateway, *route; /* incremental: the Gateway and HTTPRoute as read, or NULL */
    int64_t now_ms; /* wall clock */
    const rs_settings_t *set;
    bool validated; /* this version of the RayService is known to validate clean */
    objbuild_rand_fn rnd; /* random bytes for cluster names */
    void *rnd_ctx;
} rs_in_t;

typedef struct {
    bool warning;
    const char *reason;
    char msg[RS_MSG_MAX];
} rs_event_t;

/* What to do. Free with rsstate_out_free(). */
typedef struct {
    unsigned actions; /* RS_ACT_* */
    json_t *status; /* the status to write (whole), or NULL when unchanged */
    json_t *cluster; /* RS_ACT_CREATE_CLUSTER */
    json_t *update[2]; /* RS_ACT_UPDATE_ACTIVE, RS_ACT_UPDATE_PENDING */
    json_t *push[2]; /* RS_ACT_PUSH_ACTIVE, RS_ACT_PUSH_PENDING: the request bodies */
    bool push_tc[2]; /* that push sets a target_capacity the status records: if it fails, the
                      * status must not be written */
    bool push_spec[2]; /* that push carries the spec's serveConfigV2 (to remember as pushed) */
    json_t *cluster_svc[2]; /* RS_ACT_CLUSTER_SVC_*: per-cluster serve Services */
    json_t *gateway, *route; /* RS_ACT_*_GATEWAY, RS_ACT_*_ROUTE */
    const char *label[2]; /* RS_ACT_LABEL_*: "true" or "false" */
    json_t *head_svc, *serve_svc; /* RS_ACT_*_HEAD_SVC, RS_ACT_*_SERVE_SVC */
    const char *record[RS_MAX_DELETES]; /* clusters whose deadline out.record_due[i] to record */
    int64_t record_due[RS_MAX_DELETES];
    size_t nrecord;
    const char *deletes[RS_MAX_DELETES]; /* clusters to delete now (borrowed from in.owned) */
    size_t ndeletes;
    rs_event_t events[RS_MAX_EVENTS];
    size_t nevents;
    int64_t requeue_ms; /* look again after this (0: only on a change) */
    bool invalid; /* validation failed */
    bool done; /* the finalizer goes: nothing more will happen */
    char why[RS_MSG_MAX]; /* one sentence: which cluster serves and why (logs, explain) */
} rs_out_t;

/* True when the head of cluster rc is ready for Serve calls (HeadPodReady True, else the head
 * pod Running and Ready), so the caller probes it. */
bool rsstate_head_ready(const json_t *rc, const json_t *head_pod);

/* One step. Returns 0 (out filled) or ERR_NOMEM / ERR_INVAL (a builder refused the spec: err
 * says why; nothing in out is to be done). */
int rsstate_step(const rs_in_t *in, rs_out_t *out, buf_t *err);

/* The serveConfigV2 fingerprint kept as "pushed" (a hash string, RS_FP_MAX bytes). */
#define RS_FP_MAX 24
void rsstate_config_fp(const json_t *rs, char out[RS_FP_MAX]);

/* True when RayService status `now` differs from `old` (NULL: none) in anything KubeRay's
 * InconsistentRayServiceStatuses looks at (lastUpdateTime and the copied rayClusterStatus
 * never count). */
bool rsstate_status_changed(const json_t *old, const json_t *now);

void rsstate_out_free(rs_out_t *out);

int rsstate_test(bool verbose);

#endif
