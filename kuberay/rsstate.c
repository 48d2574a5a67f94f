/*
 * rsstate: KubeRay's RayService reconcile as one pure step (see rsstate.h).
 */
#include "rsstate.h"

#include "conds.h"
#include "err.h"
#include "hash.h"
#include "json.h"
#include "labels.h"
#include "names.h"
#include "podbuild.h"
#include "rayjob.h"
#include "rayservice.h"
#include "rftime.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MS 1000
#define S_MANAGED_BY_KUBERAY "ray.io/kuberay-operator"
#define S_EV_INIT_TIMEOUT "RayServiceInitializingTimeout"

void rsstate_settings_default(rs_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->version = PODBUILD_KUBERAY_VERSION;
    s->zero_downtime = true;
    s->steady_poll_ms = RS_POLL_STEADY_MS;
    validate_gates_default(&s->gates);
}

/* ---------- small helpers ---------- */

typedef struct {
    const rs_in_t *in;
    rs_out_t *out;
    const json_t *rs;
    const char *ns, *name;
    char now[40]; /* RFC 3339 */
    int64_t gen;
    bool rolling; /* incremental: RollbackInProgress */
    rayservice_hash_cache_t hashes; /* the goal hashes, computed once per step */
} step_t;

static void s_event(step_t *s, bool warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_event(step_t *s, bool warning, const char *reason, const char *fmt, ...)
{
    rs_out_t *o = s->out;
    if (o->nevents >= RS_MAX_EVENTS)
        return;
    rs_event_t *e = &o->events[o->nevents++];
    e->warning = warning;
    e->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

static void s_why(step_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_why(step_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->out->why, sizeof(s->out->why), fmt, ap);
    va_end(ap);
}

static void s_requeue(step_t *s, int64_t ms)
{
    if (ms <= 0)
        return;
    if (s->out->requeue_ms == 0 || ms < s->out->requeue_ms)
        s->out->requeue_ms = ms;
}

static const char *s_ann(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(jx_get(obj, "metadata.annotations"), key));
}

static const char *s_cname(const json_t *rc)
{
    return jx_str(rc, "metadata.name", "");
}

/* The status copy every write starts from (an object, never NULL unless out of memory). */
static json_t *s_status_copy(const json_t *rs)
{
    const json_t *st = json_object_get(rs, "status");
    return json_is_object(st) ? json_deep_copy(st) : json_object();
}

static json_t *s_conds(json_t *st)
{
    return jx_child_arr(st, "conditions");
}

static const char *s_cond_reason(const json_t *st, const char *type)
{
    return jx_str(conds_find(json_object_get(st, "conditions"), type, NULL), "reason", "");
}

/* Sets the status to write when it differs from the observed one. */
static int s_emit_status(step_t *s, json_t *st)
{
    if (!st)
        return ERR_NOMEM;
    if (!rsstate_status_changed(json_object_get(s->rs, "status"), st)) {
        json_decref(st);
        return 0;
    }
    json_object_set_new(st, "lastUpdateTime", json_string(s->now));
    s->out->status = st;
    return 0;
}

void rsstate_config_fp(const json_t *rs, char out[RS_FP_MAX])
{
    const char *cfg = jx_str(rs, "spec.serveConfigV2", "");
    unsigned char d[HASH_SHA1_LEN];
    out[0] = '\0';
    if (hash_sha1(cfg, strlen(cfg), d) == 0)
        hash_hex(d, (RS_FP_MAX - 1) / 2, out, RS_FP_MAX);
}

bool rsstate_head_ready(const json_t *rc, const json_t *head_pod)
{
    if (!rc)
        return false;
    const json_t *c = conds_find(jx_get(rc, "status.conditions"), "HeadPodReady", NULL);
    if (c)
        return strcmp(jx_str(c, "status", ""), "True") == 0;
    if (!head_pod || strcmp(jx_str(head_pod, "status.phase", ""), "Running") != 0)
        return false;
    return strcmp(jx_str(conds_find(jx_get(head_pod, "status.conditions"), "Ready", NULL), "status",
                         ""),
                  "True") == 0;
}

/* ---------- hashes ---------- */

/* shouldPrepareNewCluster. */
static bool s_should_prepare(step_t *s, const json_t *active, const json_t *pending,
                             bool pending_serving)
{
    if (pending_serving || s->rolling)
        return false;
    if (!active && !pending)
        return true;
    const json_t *c = pending ? pending : active;
    if (rayservice_hash_equal_cached(s->rs, c, false, &s->hashes) ||
        rayservice_hash_equal_cached(s->rs, c, true, &s->hashes))
        return false;
    return rayservice_zero_downtime(s->rs, s->in->set->zero_downtime, &s->in->set->gates);
}

/* shouldUpdateCluster: an in-place update of an existing cluster. */
static bool s_should_update(step_t *s, const json_t *rc, bool active, const json_t *st)
{
    if (!rc)
        return false;
    if (active) {
        if (conds_true(json_object_get(st, "conditions"), RS_COND_UPGRADE))
            return false;
        const char *v = s_ann(rc, ANN_KUBERAY_VERSION);
        if (!v || strcmp(v, s->in->set->version) != 0)
            return true;
    }
    if (rayservice_hash_equal_cached(s->rs, rc, false, &s->hashes))
        return false;
    return rayservice_hash_equal_cached(s->rs, rc, true, &s->hashes);
}

/* ---------- Serve applications ---------- */

/* The status form of a Serve GET's applications (app "" is shown as "default"). */
static json_t *s_app_statuses(const json_t *apps)
{
    json_t *m = json_object();
    const char *name;
    json_t *a;
    json_object_foreach((json_t *)apps, name, a)
    {
        json_t *deps = json_object();
        const char *dn;
        json_t *d;
        json_object_foreach(json_object_get(a, "deployments"), dn, d)
        {
            json_t *e = json_pack("{s:s}", "status", jx_str(d, "status", ""));
            const char *msg = jx_str(d, "message", "");
            if (e && *msg)
                json_object_set_new(e, "message", json_string(msg));
            if (e)
                json_object_set_new(deps, dn, e);
        }
        json_t *e = json_pack("{s:s}", "status", jx_str(a, "status", ""));
        const char *msg = jx_str(a, "message", "");
        if (e && *msg)
            json_object_set_new(e, "message", json_string(msg));
        if (e && json_object_size(deps) > 0)
            json_object_set(e, "serveDeploymentStatuses", deps);
        json_decref(deps);
        if (e)
            json_object_set_new(m, *name ? name : "default", e);
    }
    return m;
}

/* KubeRay's isReady: at least one application and every one RUNNING. */
static bool s_apps_ready(const json_t *apps)
{
    if (json_object_size(apps) == 0)
        return false;
    const char *k;
    json_t *a;
    json_object_foreach((json_t *)apps, k, a)
    {
        if (strcmp(jx_str(a, "status", ""), "RUNNING") != 0)
            return false;
    }
    return true;
}

/* reconcileServe for one cluster (idx 0 active, 1 pending): the push decision (with
 * target_capacity `tc` when >= 0; none when skip_push); returns ready. */
static bool s_serve(step_t *s, const rs_cluster_in_t *c, int idx, int tc, bool skip_push,
                    buf_t *err, int *rc_out)
{
    if (!c->rc || !rsstate_head_ready(c->rc, c->head_pod) || c->serve != RS_PROBE_OK)
        return false;
    char fp[RS_FP_MAX];
    rsstate_config_fp(s->rs, fp);
    size_t napps = json_object_size(c->apps);
    bool push = !c->pushed || napps == 0 || strcmp(c->pushed, fp) != 0;
    if (push && !skip_push && !s->out->push[idx]) {
        json_t *body = rayservice_serve_body(s->rs, tc, err);
        if (!body) {
            *rc_out = ERR_INVAL;
            return false;
        }
        s->out->push[idx] = body;
        s->out->push_spec[idx] = true;
        s->out->actions |= idx == 0 ? RS_ACT_PUSH_ACTIVE : RS_ACT_PUSH_PENDING;
    }
    return s_apps_ready(c->apps);
}

/* The ray.io/serve label of a cluster's head pod from its proxy health. */
static void s_label(step_t *s, const rs_cluster_in_t *c, int idx)
{
    if (!c->rc || !c->head_pod || c->health == RS_PROBE_NONE)
        return;
    bool exclude = jx_bool(s->rs, "spec.excludeHeadPodFromServeSvc", false);
    const char *want = !exclude && c->health == RS_PROBE_OK ? "true" : "false";
    const char *have =
        json_string_value(json_object_get(jx_get(c->head_pod, "metadata.labels"), LABEL_SERVE));
    if (have && strcmp(have, want) == 0)
        return;
    s->out->label[idx] = want;
    s->out->actions |= idx == 0 ? RS_ACT_LABEL_ACTIVE : RS_ACT_LABEL_PENDING;
}

/* ---------- incremental upgrade (§3.5) ---------- */

/* An integer member, or def when missing. */
static int s_num(const json_t *o, const char *key, int def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

/* utils.IsGatewayReady: Accepted and Programmed. */
static bool s_gateway_ready(const json_t *gw)
{
    const json_t *c = jx_get(gw, "status.conditions");
    return gw && conds_true(c, "Accepted") && conds_true(c, "Programmed");
}

/* utils.IsHTTPRouteReady: the route's status for the Gateway says Accepted and ResolvedRefs. */
static bool s_route_ready(const json_t *gw, const json_t *route)
{
    const char *gn = jx_str(gw, "metadata.name", "");
    size_t i;
    json_t *p;
    json_array_foreach(jx_get(route, "status.parents"), i, p)
    {
        if (strcmp(jx_str(p, "parentRef.name", ""), gn) != 0)
            continue;
        const json_t *c = json_object_get(p, "conditions");
        if (conds_true(c, "Accepted") && conds_true(c, "ResolvedRefs"))
            return true;
    }
    return false;
}

/* clusterUpgradeOptions' integer `key`, or def. */
static int s_opt(const json_t *rs, const char *key, int def)
{
    return s_num(jx_get(rs, "spec.upgradeStrategy.clusterUpgradeOptions"), key, def);
}

/* The serveConfigV2 body for cluster c with target_capacity tc: the config pushed to it last
 * (the active cluster keeps its own during an upgrade), else the spec's. */
static json_t *s_tc_body(step_t *s, const rs_cluster_in_t *c, int tc, buf_t *err)
{
    if (!c->pushed_config)
        return rayservice_serve_body(s->rs, tc, err);
    json_t *tmp = json_pack("{s:{s:s}}", "spec", "serveConfigV2", c->pushed_config);
    json_t *body = tmp ? rayservice_serve_body(tmp, tc, err) : NULL;
    json_decref(tmp);
    return body;
}

/* checkIfNeedTargetCapacityUpdate + reconcileServeTargetCapacity for cluster idx during an
 * incremental upgrade: st's target capacities move by maxSurgePercent (the pending one up while
 * the two sum to at most 100 and its traffic has caught up, the active one down while they sum to
 * more), each move a Serve push of target_capacity. */
static int s_target_capacity(step_t *s, json_t *st, int idx, const rs_cluster_in_t *c, buf_t *err)
{
    json_t *ast = jx_child_obj(st, "activeServiceStatus");
    json_t *pst = jx_child_obj(st, "pendingServiceStatus");
    if (!ast || !pst)
        return ERR_NOMEM;
    if (!*jx_str(ast, "rayClusterName", "") || !*jx_str(pst, "rayClusterName", ""))
        return 0;
    if (!s_gateway_ready(s->in->gateway) || !s_route_ready(s->in->gateway, s->in->route))
        return 0;
    int atc = s_num(ast, "targetCapacity", -1), ptc = s_num(pst, "targetCapacity", -1);
    int atr = s_num(ast, "trafficRoutedPercent", -1), ptr = s_num(pst, "trafficRoutedPercent", -1);
    if (!s->rolling && atc == 0 && ptc == 100 && atr >= 0 && ptr >= 0)
        return 0; /* complete */
    if (atc < 0)
        json_object_set_new(ast, "targetCapacity", json_integer(atc = 100));
    if (ptc < 0)
        json_object_set_new(pst, "targetCapacity", json_integer(ptc = 0));
    int surge = s_opt(s->rs, "maxSurgePercent", RAYSERVICE_DEFAULT_MAX_SURGE);
    int goal;
    if (s->rolling) {
        /* in reverse: the active cluster's traffic catches up with its capacity, then the
         * pending capacity comes down to what the pending cluster still carries, then the active
         * capacity goes up by the surge */
        if ((atr < 0 ? 100 : atr) != atc)
            return 0;
        if (idx == 1 && atc + ptc > 100)
            goal = ptc - surge > 100 - atc ? ptc - surge : 100 - atc;
        else if (idx == 0 && atc + ptc <= 100 && atc < 100)
            goal = atc + surge < 100 ? atc + surge : 100;
        else
            return 0;
    } else if (ptc != (ptr < 0 ? 0 : ptr)) {
        return 0; /* the traffic is still moving to the pending cluster */
    } else if (idx == 0 && atc + ptc > 100) {
        goal = atc - surge > 0 ? atc - surge : 0;
    } else if (idx == 1 && atc + ptc <= 100) {
        goal = ptc + surge < 100 ? ptc + surge : 100;
    } else {
        return 0;
    }
    json_t *body = s->out->push[idx];
    if (body) {
        json_object_set_new(body, "target_capacity", json_integer(goal));
    } else {
        body = s_tc_body(s, c, goal, err);
        if (!body)
            return ERR_INVAL;
        s->out->push[idx] = body;
        s->out->push_spec[idx] = c->pushed_config == NULL;
        s->out->actions |= idx == 0 ? RS_ACT_PUSH_ACTIVE : RS_ACT_PUSH_PENDING;
    }
    s->out->push_tc[idx] = true;
    json_object_set_new(idx == 0 ? ast : pst, "targetCapacity", json_integer(goal));
    return 0;
}

/* calculateTrafficRoutedPercent: the route weights (active, pending). */
static void s_weights(step_t *s, const json_t *st, bool pready, int *aw, int *pw)
{
    const json_t *ast = json_object_get(st, "activeServiceStatus");
    const json_t *pst = json_object_get(st, "pendingServiceStatus");
    *aw = s_num(ast, "trafficRoutedPercent", 100);
    *pw = s_num(pst, "trafficRoutedPercent", 0);
    if (s->rolling) {
        /* back to the active cluster, up to its capacity, a step every interval; at once when
         * the pending cluster is not ready */
        int atc = s_num(ast, "targetCapacity", 100);
        if (!pready) {
            *aw = 100;
            *pw = 0;
            return;
        }
        if (*aw >= atc)
            return;
        int64_t last = 0;
        int64_t interval = (int64_t)s_opt(s->rs, "intervalSeconds", 0) * S_MS;
        const char *lt = jx_str(ast, "lastTrafficMigratedTime", "");
        if (*lt && rftime_parse(lt, &last) == 0 && s->in->now_ms - last < interval) {
            s_requeue(s, interval - (s->in->now_ms - last));
            return;
        }
        int w = *aw + s_opt(s->rs, "stepSizePercent", 0);
        *aw = w > atc ? atc : w;
        *pw = 100 - *aw;
        return;
    }
    if (!pready)
        return;
    int ptc = s_num(pst, "targetCapacity", 0);
    if (*pw == ptc)
        return;
    int64_t last = 0;
    int64_t interval = (int64_t)s_opt(s->rs, "intervalSeconds", 0) * S_MS;
    const char *lt = jx_str(pst, "lastTrafficMigratedTime", "");
    if (*lt && rftime_parse(lt, &last) == 0 && s->in->now_ms - last < interval) {
        s_requeue(s, interval - (s->in->now_ms - last));
        return;
    }
    int step = s_opt(s->rs, "stepSizePercent", 0);
    int w = *pw + step;
    if (w > 100)
        w = 100;
    if (w > ptc)
        w = ptc;
    *pw = w;
    *aw = 100 - w;
}

/* The per-cluster serve Services, the Gateway and the HTTPRoute (reconcilePerClusterServeService,
 * reconcileGateway, reconcileHTTPRoute); aw and pw get the route's weights (-1: no route). */
static int s_incremental_objects(step_t *s, const json_t *st, const json_t *active,
                                 const json_t *pending, bool pready, int *aw, int *pw, buf_t *err)
{
    rs_out_t *o = s->out;
    const rs_cluster_in_t *cs[2] = {&s->in->active, &s->in->pending};
    const json_t *rcs[2] = {active, pending};
    *aw = *pw = -1;
    for (int k = 0; k < 2; k++) {
        if (!rcs[k] || cs[k]->serve_svc)
            continue;
        o->cluster_svc[k] = rayservice_cluster_serve_service(s->rs, rcs[k], err);
        if (!o->cluster_svc[k])
            return ERR_INVAL;
        o->actions |= k == 0 ? RS_ACT_CLUSTER_SVC_ACTIVE : RS_ACT_CLUSTER_SVC_PENDING;
    }
    json_t *gw = rayservice_gateway(s->rs, err);
    if (!gw)
        return ERR_INVAL;
    if (!s->in->gateway) {
        o->gateway = gw;
        o->actions |= RS_ACT_CREATE_GATEWAY;
    } else if (!json_equal(json_object_get(gw, "spec"), jx_get(s->in->gateway, "spec"))) {
        o->gateway = json_deep_copy(s->in->gateway);
        json_object_set(o->gateway, "spec", json_object_get(gw, "spec"));
        json_object_del(o->gateway, "status");
        json_decref(gw);
        o->actions |= RS_ACT_UPDATE_GATEWAY;
    } else {
        json_decref(gw);
    }
    if (!active)
        return 0; /* KubeRay: no route before there is an active cluster */
    s_weights(s, st, pready, aw, pw);
    char asvc[320], psvc[320];
    snprintf(asvc, sizeof(asvc), "%s-serve-svc", s_cname(active));
    const char *svcs[2] = {asvc, psvc};
    int weights[2] = {*aw, *pw};
    size_t n = 1;
    if (pending) {
        snprintf(psvc, sizeof(psvc), "%s-serve-svc", s_cname(pending));
        n = 2;
    } else {
        *pw = -1;
    }
    json_t *route =
        rayservice_httproute(s->rs, svcs, weights, n, rayservice_serve_port(active), err);
    if (!route)
        return ERR_INVAL;
    if (!s->in->route) {
        o->route = route;
        o->actions |= RS_ACT_CREATE_ROUTE;
    } else if (!json_equal(json_object_get(route, "spec"), jx_get(s->in->route, "spec"))) {
        o->route = json_deep_copy(s->in->route);
        json_object_set(o->route, "spec", json_object_get(route, "spec"));
        json_object_del(o->route, "status");
        json_decref(route);
        o->actions |= RS_ACT_UPDATE_ROUTE;
    } else {
        json_decref(route);
    }
    return 0;
}

/* Records a route weight as the cluster's trafficRoutedPercent (lastTrafficMigratedTime when it
 * moved). */
static void s_traffic(step_t *s, json_t *sst, int w)
{
    if (w < 0 || !sst)
        return;
    if (s_num(sst, "trafficRoutedPercent", -1) != w)
        json_object_set_new(sst, "lastTrafficMigratedTime", json_string(s->now));
    json_object_set_new(sst, "trafficRoutedPercent", json_integer(w));
}

/* ---------- Services ---------- */

/* The selector value of `key` of a Service, "" when none. */
static const char *s_sel(const json_t *svc, const char *key)
{
    const char *v = json_string_value(json_object_get(jx_get(svc, "spec.selector"), key));
    return v ? v : "";
}

static const char *s_svc_cluster(const json_t *svc)
{
    return s_sel(svc, LABEL_CLUSTER);
}

/* reconcileServicesToReadyCluster: both Services exist and select `target`. Returns the cluster
 * they select after the step, "" when there are none. With the incremental upgrade KubeRay's
 * serve Service builder yields the target's own per-cluster Service (created by
 * s_incremental_objects), so only the head Service is the RayService's. */
static const char *s_services(step_t *s, const json_t *target, bool incr, buf_t *err, int *rc_out)
{
    const rs_in_t *in = s->in;
    const char *tname = s_cname(target);
    json_t *head = rayservice_head_service(s->rs, target, err);
    json_t *serve = head && !incr ? rayservice_serve_service(s->rs, target, err) : NULL;
    if (!head || (!incr && !serve)) {
        json_decref(head);
        *rc_out = ERR_INVAL;
        return "";
    }
    s->out->head_svc = head;
    s->out->serve_svc = serve;
    if (!in->head_svc)
        s->out->actions |= RS_ACT_CREATE_HEAD_SVC;
    else if (strcmp(s_svc_cluster(in->head_svc), tname) != 0)
        s->out->actions |= RS_ACT_POINT_HEAD_SVC;
    if (incr)
        return tname;
    if (!in->serve_svc)
        s->out->actions |= RS_ACT_CREATE_SERVE_SVC;
    else if (strcmp(s_svc_cluster(in->serve_svc), tname) != 0)
        s->out->actions |= RS_ACT_POINT_SERVE_SVC;
    return tname;
}

/* ---------- dangling clusters ---------- */

/* cleanUpRayClusterInstance. Returns the clusters still to clean (not yet being deleted). */
static size_t s_cleanup(step_t *s, bool all)
{
    const rs_in_t *in = s->in;
    const char *an = jx_str(s->rs, "status.activeServiceStatus.rayClusterName", "");
    const char *pn = jx_str(s->rs, "status.pendingServiceStatus.rayClusterName", "");
    int64_t delay = all ? 0 : (int64_t)rayservice_delete_delay_s(s->rs) * S_MS;
    size_t left = 0;
    for (size_t i = 0; i < in->nowned; i++) {
        const json_t *rc = in->owned[i].rc;
        const char *n = s_cname(rc);
        if (!all && (strcmp(n, an) == 0 || strcmp(n, pn) == 0))
            continue;
        left++;
        if (jx_get(rc, "metadata.deletionTimestamp"))
            continue;
        int64_t due = in->owned[i].due_ms;
        if (due < 0) {
            if (s->out->nrecord < RS_MAX_DELETES) {
                s->out->record[s->out->nrecord] = n;
                s->out->record_due[s->out->nrecord++] = in->now_ms + delay;
            }
            s_requeue(s, delay > 0 ? delay : RS_POLL_BUSY_MS);
        } else if (in->now_ms >= due) {
            if (s->out->ndeletes < RS_MAX_DELETES)
                s->out->deletes[s->out->ndeletes++] = n;
            s_requeue(s, RS_POLL_BUSY_MS);
        } else {
            s_requeue(s, due - in->now_ms);
        }
    }
    return left;
}

/* ---------- conditions ---------- */

/* markFailedOnInitializingTimeout. */
static void s_init_timeout(step_t *s, json_t *st)
{
    json_t *conds = s_conds(st);
    const json_t *ready = conds_find(conds, RS_COND_READY, NULL);
    if (!ready || strcmp(jx_str(ready, "reason", ""), RS_R_INITIALIZING) != 0)
        return;
    int64_t limit = 0;
    if (rayservice_init_timeout_ms(s->rs, &limit) != 0 || limit <= 0)
        return;
    int64_t since = 0;
    if (rftime_parse(jx_str(ready, "lastTransitionTime", ""), &since) != 0)
        return;
    if (s->in->now_ms - since < limit) {
        s_requeue(s, limit - (s->in->now_ms - since));
        return;
    }
    char lim[64], spent[64], msg[256];
    rftime_duration_format(limit * 1000000, lim, sizeof(lim));
    rftime_duration_format((s->in->now_ms - since) * 1000000, spent, sizeof(spent));
    snprintf(msg, sizeof(msg),
             "RayService failed to become ready within the configured timeout of %s. Time spent "
             "initializing: %s",
             lim, spent);
    conds_set(conds, RS_COND_READY, "False", RS_R_INIT_TIMEOUT, msg, s->now, s->gen);
    json_object_set_new(st, "activeServiceStatus", json_object());
    json_object_set_new(st, "pendingServiceStatus", json_object());
    s_event(s, true, S_EV_INIT_TIMEOUT,
            "RayService initializing timeout exceeded after %s (configured timeout: %s)", spent,
            lim);
}

/* calculateConditions. */
static void s_conditions(step_t *s, json_t *st)
{
    json_t *conds = s_conds(st);
    if (json_array_size(conds) == 0) {
        const char *m = "RayService is initializing";
        conds_set(conds, RS_COND_READY, "False", RS_R_INITIALIZING, m, s->now, s->gen);
        conds_set(conds, RS_COND_UPGRADE, "False", RS_R_INITIALIZING, m, s->now, s->gen);
    }
    if (jx_int(st, "numServeEndpoints", 0) > 0)
        conds_set(conds, RS_COND_READY, "True", RS_R_NONZERO_ENDPOINTS,
                  "Number of serve endpoints is greater than 0", s->now, s->gen);
    else if (conds_true(conds, RS_COND_READY))
        conds_set(conds, RS_COND_READY, "False", RS_R_ZERO_ENDPOINTS,
                  "Number of serve endpoints dropped to 0", s->now, s->gen);
    else
        s_init_timeout(s, st);
    const char *an = jx_str(st, "activeServiceStatus.rayClusterName", "");
    const char *pn = jx_str(st, "pendingServiceStatus.rayClusterName", "");
    if (*an && *pn) {
        conds_set(conds, RS_COND_UPGRADE, "True", RS_R_BOTH,
                  "Both active and pending Ray clusters exist", s->now, s->gen);
    } else if (*an) {
        conds_set(conds, RS_COND_UPGRADE, "False", RS_R_NO_PENDING,
                  "Active Ray cluster exists and no pending Ray cluster", s->now, s->gen);
    } else {
        const char *r = jx_str(conds_find(conds, RS_COND_UPGRADE, NULL), "reason", "");
        if (!*r || (strcmp(r, RS_R_INITIALIZING) != 0 && strcmp(r, RS_R_INIT_TIMEOUT) != 0))
            conds_set(conds, RS_COND_UPGRADE, "Unknown", RS_R_NO_ACTIVE,
                      "No active Ray cluster exists, and the RayService is not initializing. "
                      "Please open a GitHub issue in the KubeRay repository.",
                      s->now, s->gen);
    }
    bool ready = conds_true(conds, RS_COND_READY);
    json_object_set_new(st, "serviceStatus", json_string(ready ? "Running" : ""));
}

/* ---------- suspend ---------- */

/* The suspend machine. Returns true when the step ends here (suspending or suspended). */
static bool s_suspend(step_t *s, int *rc_out)
{
    const json_t *cur = json_object_get(s->rs, "status");
    const json_t *cc = json_object_get(cur, "conditions");
    bool want = jx_bool(s->rs, "spec.suspend", false);
    bool suspending = conds_true(cc, RS_COND_SUSPENDING);
    bool suspended = conds_true(cc, RS_COND_SUSPENDED);
    if (!want && !suspending && !suspended)
        return false;
    json_t *st = s_status_copy(s->rs);
    json_t *conds = s_conds(st);
    if (!st || !conds) {
        json_decref(st);
        *rc_out = ERR_NOMEM;
        return true;
    }
    if (suspended && !want) {
        /* resume */
        conds_set(conds, RS_COND_SUSPENDED, "False", RS_R_RESUMED, "RayService is resumed", s->now,
                  s->gen);
        const char *m = "RayService is initializing";
        conds_set(conds, RS_COND_READY, "False", RS_R_INITIALIZING, m, s->now, s->gen);
        conds_set(conds, RS_COND_UPGRADE, "False", RS_R_INITIALIZING, m, s->now, s->gen);
        *rc_out = s_emit_status(s, st);
        s_requeue(s, RS_POLL_BUSY_MS);
        s_why(s, "resumed: a new RayCluster will be prepared");
        return true;
    }
    if (suspended) {
        s_why(s, "suspended (spec.suspend is true): no RayCluster, no Service");
        json_decref(st);
        return true;
    }
    if (!suspending) {
        conds_set(conds, RS_COND_SUSPENDING, "True", RS_R_SUSPEND_REQUESTED,
                  "RayService suspend is requested", s->now, s->gen);
        conds_set(conds, RS_COND_READY, "False", RS_R_SUSPEND_IN_PROGRESS,
                  "RayService is suspending", s->now, s->gen);
        conds_set(conds, RS_COND_UPGRADE, "False", RS_R_SUSPEND_IN_PROGRESS,
                  "RayService is suspending", s->now, s->gen);
        if (conds_find(conds, RS_COND_ROLLBACK, NULL))
            conds_set(conds, RS_COND_ROLLBACK, "False", RS_R_SUSPEND_IN_PROGRESS,
                      "RayService is suspending", s->now, s->gen);
        json_object_set_new(st, "activeServiceStatus", json_object());
        json_object_set_new(st, "pendingServiceStatus", json_object());
        json_object_set_new(st, "numServeEndpoints", json_integer(0));
        json_object_set_new(st, "serviceStatus", json_string(""));
        *rc_out = s_emit_status(s, st);
        s_requeue(s, RS_POLL_BUSY_MS);
        s_why(s, "suspend requested: its RayClusters and Services will be deleted");
        return true;
    }
    /* suspending: everything the RayService made goes */
    size_t left = s_cleanup(s, true);
    bool svcs = s->in->head_svc || s->in->serve_svc;
    if (svcs)
        s->out->actions |= RS_ACT_DELETE_SERVICES;
    if (left > 0 || svcs) {
        json_decref(st);
        s_requeue(s, RS_POLL_BUSY_MS);
        s_why(s, "suspending: %zu RayCluster(s)%s still to delete", left,
              svcs ? " and its Services" : "");
        return true;
    }
    conds_set(conds, RS_COND_SUSPENDING, "False", RS_R_SUSPEND_COMPLETE,
              "RayService suspend is complete", s->now, s->gen);
    conds_set(conds, RS_COND_SUSPENDED, "True", RS_R_SUSPEND_COMPLETE, "RayService is suspended",
              s->now, s->gen);
    *rc_out = s_emit_status(s, st);
    s_why(s, "suspended: every RayCluster and Service is deleted");
    return true;
}

/* ---------- the step ---------- */

static bool s_validate(step_t *s, int *rc_out)
{
    if (s->in->validated)
        return true;
    buf_t msg;
    buf_init(&msg, RS_MSG_MAX);
    const char *reason = NULL;
    int rc = rayservice_validate_reason(s->rs, &s->in->set->gates, &reason, &msg);
    if (rc == 0) {
        buf_free(&msg);
        return true;
    }
    if (rc != VALIDATE_INVALID) {
        *rc_out = rc;
        buf_free(&msg);
        return false;
    }
    s->out->invalid = true;
    s_event(s, true, reason ? reason : RAYSERVICE_EV_INVALID, "%s/%s: %s", s->ns, s->name,
            buf_str(&msg));
    json_t *st = s_status_copy(s->rs);
    json_t *conds = st ? s_conds(st) : NULL;
    if (conds)
        conds_set(conds, RS_COND_READY, "False", RS_R_VALIDATION, buf_str(&msg), s->now, -1);
    *rc_out = conds ? s_emit_status(s, st) : (json_decref(st), ERR_NOMEM);
    s_why(s, "invalid: %s", buf_str(&msg));
    buf_free(&msg);
    return false;
}

int rsstate_step(const rs_in_t *in, rs_out_t *out, buf_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!in || !in->rs || !in->set)
        return ERR_INVAL;
    step_t s = {.in = in,
                .out = out,
                .rs = in->rs,
                .ns = jx_str(in->rs, "metadata.namespace", ""),
                .name = jx_str(in->rs, "metadata.name", ""),
                .gen = jx_int(in->rs, "metadata.generation", 0)};
    if (rftime_format(in->now_ms, RFTIME_SEC, s.now, sizeof(s.now)) != 0)
        return ERR_INVAL;
    int rc = 0;

    /* managedBy: another controller's */
    const char *mb = jx_str(in->rs, "spec.managedBy", "");
    if (*mb && strcmp(mb, S_MANAGED_BY_KUBERAY) != 0) {
        s_why(&s, "managed by %s, not by rayfleet: left alone", mb);
        return 0;
    }

    /* deletion */
    bool deleting = jx_get(in->rs, "metadata.deletionTimestamp") != NULL;
    if (deleting) {
        size_t left = s_cleanup(&s, true);
        if (left == 0) {
            if (jx_array_has_string(jx_get(in->rs, "metadata.finalizers"), RAYSERVICE_FINALIZER))
                out->actions |= RS_ACT_REMOVE_FINALIZER;
            out->done = true;
            s_why(&s, "deleted: every RayCluster is gone, the finalizer is removed");
        } else {
            s_requeue(&s, RS_POLL_BUSY_MS);
            s_why(&s, "being deleted: %zu RayCluster(s) still to go", left);
        }
        return 0;
    }
    if (!jx_array_has_string(jx_get(in->rs, "metadata.finalizers"), RAYSERVICE_FINALIZER)) {
        out->actions |= RS_ACT_ADD_FINALIZER;
        s_requeue(&s, RS_POLL_BUSY_MS);
        s_why(&s, "new: the finalizer %s is added first", RAYSERVICE_FINALIZER);
        return 0;
    }
    if (!s_validate(&s, &rc))
        return rc;

    (void)s_cleanup(&s, false);

    if (s_suspend(&s, &rc))
        return rc;

    const json_t *cur = json_object_get(in->rs, "status");
    if (strcmp(s_cond_reason(cur, RS_COND_READY), RS_R_INIT_TIMEOUT) == 0) {
        s_why(&s,
              "failed: not ready within the %s annotation's time (delete and recreate the "
              "RayService to retry)",
              ANN_INITIALIZING_TIMEOUT);
        return 0;
    }

    const char *an = jx_str(cur, "activeServiceStatus.rayClusterName", "");
    const char *pn = jx_str(cur, "pendingServiceStatus.rayClusterName", "");
    const json_t *active = in->active.rc;
    const json_t *pending = in->pending.rc;

    bool incr = rayservice_incremental(in->rs, &in->set->gates);
    bool upgrading = incr && conds_true(json_object_get(cur, "conditions"), RS_COND_UPGRADE);
    s.rolling = upgrading && conds_true(json_object_get(cur, "conditions"), RS_COND_ROLLBACK);

    /* reconcileRayCluster */
    if (*pn && !pending) {
        /* incremental: a pending cluster of an upgrade starts without worker replicas */
        out->cluster = rayservice_cluster(in->rs, pn, in->set->version, incr && *an, err);
        if (!out->cluster)
            return ERR_INVAL;
        out->actions |= RS_ACT_CREATE_CLUSTER;
        pending = out->cluster;
    }
    if (s_should_update(&s, active, true, cur)) {
        out->update[0] = rayservice_cluster_update(in->rs, active, in->set->version, err);
        if (!out->update[0])
            return ERR_INVAL;
        out->actions |= RS_ACT_UPDATE_ACTIVE;
    }
    if (in->pending.rc && s_should_update(&s, in->pending.rc, false, cur)) {
        out->update[1] = rayservice_cluster_update(in->rs, in->pending.rc, in->set->version, err);
        if (!out->update[1])
            return ERR_INVAL;
        out->actions |= RS_ACT_UPDATE_PENDING;
    }

    /* the serve label of the head pods */
    s_label(&s, &in->active, 0);
    s_label(&s, &in->pending, 1);

    /* the status being calculated (target capacities move in it as they are pushed) */
    json_t *st = s_status_copy(in->rs);
    json_t *ast = st ? jx_child_obj(st, "activeServiceStatus") : NULL;
    json_t *pst = st ? jx_child_obj(st, "pendingServiceStatus") : NULL;
    if (!ast || !pst) {
        json_decref(st);
        return ERR_NOMEM;
    }
    /* incremental: the spec no longer that of the pending cluster mid-upgrade -> roll back */
    if (upgrading && !s.rolling && in->pending.rc &&
        !rayservice_hash_equal_cached(in->rs, in->pending.rc, false, &s.hashes) &&
        !rayservice_hash_equal_cached(in->rs, in->pending.rc, true, &s.hashes)) {
        char msg[RS_MSG_MAX];
        snprintf(msg, sizeof(msg),
                 "The RayService spec changed during the incremental upgrade to RayCluster %s: "
                 "the traffic and capacity go back to RayCluster %s",
                 pn, an);
        json_t *conds = s_conds(st);
        if (!conds ||
            conds_set(conds, RS_COND_ROLLBACK, "True", RS_R_SPEC_CHANGED, msg, s.now, s.gen) != 0) {
            json_decref(st);
            return ERR_NOMEM;
        }
        s.rolling = true;
        s_event(&s, false, RS_R_SPEC_CHANGED, "%s", msg);
    }

    /* Serve applications: the pending cluster's; the active one's when nothing is pending (and it
     * needs no new cluster), or during an incremental upgrade (its config frozen) */
    bool pready = false, aready = false, a_reconciled = false;
    if (in->pending.rc)
        pready = s_serve(&s, &in->pending, 1, incr ? s_num(pst, "targetCapacity", -1) : -1,
                         s.rolling, err, &rc);
    if (!rc && upgrading && in->pending.rc && in->pending.serve == RS_PROBE_OK)
        rc = s_target_capacity(&s, st, 1, &in->pending, err);
    if (!rc && active &&
        ((!pending && !s_should_prepare(&s, active, NULL, false)) || (pending && incr))) {
        a_reconciled = true;
        aready = s_serve(&s, &in->active, 0, incr ? s_num(ast, "targetCapacity", -1) : -1,
                         upgrading && !s.rolling, err, &rc);
        if (!rc && upgrading && in->active.serve == RS_PROBE_OK)
            rc = s_target_capacity(&s, st, 0, &in->active, err);
    }
    int aw = -1, pw = -1;
    if (!rc && incr)
        rc = s_incremental_objects(&s, st, active, in->pending.rc, pready, &aw, &pw, err);
    if (rc) {
        json_decref(st);
        return rc;
    }

    /* the Services follow the ready cluster (not the pending one during an incremental upgrade:
     * the route moves the traffic there) */
    const char *points = NULL;
    if (pready || aready) {
        const json_t *target = pready && !upgrading ? in->pending.rc : active;
        if (target) {
            points = s_services(&s, target, incr, err, &rc);
            if (rc) {
                json_decref(st);
                return rc;
            }
        }
    } else if (in->head_svc && (incr || in->serve_svc)) {
        points = s_svc_cluster(in->head_svc);
    }

    /* calculateStatus */
    json_object_set_new(st, "observedGeneration", json_integer(s.gen));
    const json_t *acs = active ? json_object_get(active, "status") : NULL;
    const json_t *pcs = in->pending.rc ? json_object_get(in->pending.rc, "status") : NULL;
    json_object_set_new(ast, "rayClusterStatus", acs ? json_deep_copy(acs) : json_object());
    json_object_set_new(pst, "rayClusterStatus", pcs ? json_deep_copy(pcs) : json_object());
    if (in->pending.rc && in->pending.serve == RS_PROBE_OK)
        json_object_set_new(pst, "applicationStatuses", s_app_statuses(in->pending.apps));
    else if (!in->pending.rc)
        json_object_del(pst, "applicationStatuses");
    if (a_reconciled && in->active.serve == RS_PROBE_OK)
        json_object_set_new(ast, "applicationStatuses", s_app_statuses(in->active.apps));
    else if (!a_reconciled)
        json_object_del(ast, "applicationStatuses");

    bool pending_serving = false, rolled_back = false;
    if (points && *points) {
        bool promote;
        if (incr) {
            s_traffic(&s, ast, aw);
            s_traffic(&s, pst, pw);
            promote = upgrading ? !s.rolling && s_num(ast, "targetCapacity", -1) == 0 &&
                                      s_num(pst, "trafficRoutedPercent", -1) == 100
                                : !*an && *pn;
            if (s.rolling && s_num(ast, "targetCapacity", 100) == 100 && aw == 100 &&
                (s_num(pst, "targetCapacity", 0) == 0 || !pready)) {
                /* rolled back: the pending cluster is dropped (deleted after the delay) */
                json_object_set_new(st, "pendingServiceStatus", json_object());
                pst = json_object_get(st, "pendingServiceStatus");
                conds_set(s_conds(st), RS_COND_ROLLBACK, "False", RS_R_ROLLBACK_COMPLETE,
                          "The rollback is complete: all traffic and capacity are on the active "
                          "RayCluster",
                          s.now, s.gen);
                s_event(&s, false, RS_R_ROLLBACK_COMPLETE,
                        "Rolled back %s/%s to RayCluster %s; RayCluster %s is no longer pending",
                        s.ns, s.name, an, pn);
                s.rolling = false;
                rolled_back = true;
            }
        } else {
            promote = strcmp(points, an) != 0 && strcmp(points, pn) == 0;
        }
        pending_serving = *pn && strcmp(points, pn) == 0;
        if (promote && *pn) {
            json_object_set(st, "activeServiceStatus", pst);
            json_object_set_new(st, "pendingServiceStatus", json_object());
            s_event(&s, false, "ClusterSwitched",
                    "Switched traffic of %s/%s from RayCluster %s to %s", s.ns, s.name,
                    *an ? an : "(none)", pn);
        }
    }
    if (s_should_prepare(&s, active, rolled_back ? NULL : pending, pending_serving)) {
        char *base = names_trim_job_name(s.name);
        char *gen = base ? rayjob_random_name(base, in->rnd, in->rnd_ctx) : NULL;
        free(base);
        if (!gen) {
            json_decref(st);
            return ERR_NOMEM;
        }
        json_t *np = json_pack("{s:s}", "rayClusterName", gen);
        if (incr && !*jx_str(st, "activeServiceStatus.rayClusterName", "") &&
            s_num(json_object_get(st, "activeServiceStatus"), "targetCapacity", -1) < 0)
            json_object_set_new(np, "targetCapacity", json_integer(100));
        else if (incr && upgrading)
            json_object_set_new(np, "targetCapacity", json_integer(0));
        json_object_set_new(st, "pendingServiceStatus", np);
        free(gen);
    }
    long endpoints = in->serve_svc ? in->endpoints : 0;
    if (incr && active)
        endpoints = in->active.endpoints + (in->pending.rc ? in->pending.endpoints : 0);
    json_object_set_new(st, "numServeEndpoints", json_integer(endpoints));
    s_conditions(&s, st);

    /* why, and when to look again */
    const char *nan = jx_str(st, "activeServiceStatus.rayClusterName", "");
    const char *npn = jx_str(st, "pendingServiceStatus.rayClusterName", "");
    bool ready = conds_true(json_object_get(st, "conditions"), RS_COND_READY);
    if (*npn && *nan)
        s_why(&s,
              "upgrading: RayCluster %s serves; %s is prepared and takes the traffic once its "
              "Serve applications are all RUNNING",
              nan, npn);
    else if (*npn)
        s_why(&s,
              "initializing: RayCluster %s is prepared; it serves once its Serve applications "
              "are all RUNNING",
              npn);
    else if (ready)
        s_why(&s, "ready: RayCluster %s serves (%ld serve endpoint(s))", nan, endpoints);
    else
        s_why(&s, "not ready: RayCluster %s has no ready serve endpoint", *nan ? nan : "(none)");
    s_requeue(&s, ready && !*npn && !out->actions ? in->set->steady_poll_ms : RS_POLL_BUSY_MS);
    return s_emit_status(&s, st);
}

/* ---------- status comparison ---------- */

static bool s_sub_changed(const json_t *a, const json_t *b)
{
    const char *keys[] = {"rayClusterName", "applicationStatuses", "targetCapacity",
                          "trafficRoutedPercent"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *x = json_object_get(a, keys[i]), *y = json_object_get(b, keys[i]);
        if ((x || y) && !json_equal(x, y))
            return true;
    }
    return false;
}

bool rsstate_status_changed(const json_t *old, const json_t *now)
{
    if (!old)
        return now != NULL;
    const char *keys[] = {"serviceStatus", "numServeEndpoints", "conditions", "observedGeneration"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *x = json_object_get(old, keys[i]), *y = json_object_get(now, keys[i]);
        if ((x || y) && !json_equal(x, y))
            return true;
    }
    return s_sub_changed(json_object_get(old, "activeServiceStatus"),
                         json_object_get(now, "activeServiceStatus")) ||
           s_sub_changed(json_object_get(old, "pendingServiceStatus"),
                         json_object_get(now, "pendingServiceStatus"));
}

void rsstate_out_free(rs_out_t *out)
{
    if (!out)
        return;
    json_decref(out->status);
    json_decref(out->cluster);
    for (int i = 0; i < 2; i++) {
        json_decref(out->update[i]);
        json_decref(out->push[i]);
        json_decref(out->cluster_svc[i]);
    }
    json_decref(out->gateway);
    json_decref(out->route);
    json_decref(out->head_svc);
    json_decref(out->serve_svc);
    memset(out, 0, sizeof(*out));
}

#ifdef RF_SELFTEST
#include "selftest.h"

#define T0 1700000000000LL

static int s_t_rand(void *ctx, unsigned char *out, size_t n)
{
    unsigned *seq = ctx;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)((*seq)++ * 7u);
    return 0;
}

static json_t *s_t_rs(void)
{
    const char *doc =
        "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayService\",\"metadata\":{\"name\":\"rs\","
        "\"namespace\":\"default\",\"uid\":\"u-rs\",\"generation\":1,\"finalizers\":["
        "\"ray.io/rayservice-finalizer\"]},\"spec\":{\"serveConfigV2\":\"applications:\\n"
        "  - name: app\\n    import_path: m.app\\n    route_prefix: /\\n\","
        "\"rayClusterConfig\":{\"rayVersion\":\"2.9.0\",\"headGroupSpec\":{\"rayStartParams\":{},"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-head\",\"image\":"
        "\"rayproject/ray:2.9.0\",\"ports\":[{\"name\":\"gcs-server\",\"containerPort\":6379},"
        "{\"name\":\"dashboard\",\"containerPort\":8265},{\"name\":\"client\",\"containerPort\":"
        "10001},{\"name\":\"serve\",\"containerPort\":8000}]}]}}},\"workerGroupSpecs\":[{"
        "\"groupName\":\"wg\",\"replicas\":1,\"minReplicas\":1,\"maxReplicas\":5,"
        "\"rayStartParams\":{},\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray-worker\","
        "\"image\":\"rayproject/ray:2.9.0\"}]}}}]}},\"status\":{}}";
    return json_loads(doc, 0, NULL);
}

typedef struct {
    json_t *rs;
    json_t *clusters[4];
    size_t n;
    rs_owned_t own[4];
    rs_cluster_in_t a, p;
    json_t *head_svc, *serve_svc;
    long endpoints;
    const json_t *gateway, *route; /* incremental: as read */
    int64_t now;
    rs_settings_t set;
    unsigned seq;
} t_world_t;

/* A cluster as the RayService would create it, HeadPodReady True. */
static json_t *s_t_cluster(const json_t *rs, const char *name)
{
    buf_t e;
    buf_init(&e, 512);
    json_t *rc = rayservice_cluster(rs, name, PODBUILD_KUBERAY_VERSION, false, &e);
    buf_free(&e);
    if (!rc)
        return NULL;
    json_object_set_new(json_object_get(rc, "metadata"), "uid", json_string(name));
    json_object_set_new(
        rc, "status",
        json_pack("{s:[{s:s,s:s}]}", "conditions", "type", "HeadPodReady", "status", "True"));
    return rc;
}

static json_t *s_t_pod(const char *cluster, const char *serve)
{
    json_t *p = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:s,s:s}}", "metadata", "name", "head", "labels",
                          LABEL_CLUSTER, cluster, LABEL_NODE_TYPE, "head", "status", "phase",
                          "Running", "podIP", "10.0.0.1");
    if (serve)
        json_object_set_new(json_object_get(jx_get(p, "metadata"), "labels"), LABEL_SERVE,
                            json_string(serve));
    return p;
}

static json_t *s_t_apps(const char *status)
{
    return status ? json_pack("{s:{s:s}}", "app", "status", status) : json_object();
}

static int s_t_step(t_world_t *w, rs_out_t *o)
{
    for (size_t i = 0; i < w->n; i++)
        w->own[i].rc = w->clusters[i];
    rs_in_t in = {.rs = w->rs,
                  .owned = w->own,
                  .nowned = w->n,
                  .active = w->a,
                  .pending = w->p,
                  .head_svc = w->head_svc,
                  .serve_svc = w->serve_svc,
                  .endpoints = w->endpoints,
                  .gateway = w->gateway,
                  .route = w->route,
                  .now_ms = w->now,
                  .set = &w->set,
                  .rnd = s_t_rand,
                  .rnd_ctx = &w->seq};
    buf_t err;
    buf_init(&err, 512);
    int rc = rsstate_step(&in, o, &err);
    if (rc)
        printf("rsstate step: %s\n", buf_str(&err));
    buf_free(&err);
    return rc;
}

/* One step with the Gateway `gw` and a copy of `route` whose parent Gateway accepted it and
 * resolved its backends (what a gateway controller reports). */
static int s_t_step_routed(t_world_t *w, rs_out_t *o, json_t *gw, const json_t *route)
{
    json_t *rt = json_deep_copy(route);
    json_object_set_new(rt, "status",
                        json_pack("{s:[{s:{s:s},s:[{s:s,s:s},{s:s,s:s}]}]}", "parents", "parentRef",
                                  "name", "rs-gateway", "conditions", "type", "Accepted", "status",
                                  "True", "type", "ResolvedRefs", "status", "True"));
    w->gateway = gw;
    w->route = rt;
    int rc = s_t_step(w, o);
    w->route = NULL;
    json_decref(rt);
    return rc;
}

/* Applies the step's status to the world's RayService. */
static void s_t_apply(t_world_t *w, rs_out_t *o)
{
    if (o->status)
        json_object_set(w->rs, "status", o->status);
}

/* A condition's field from a RayService or from a status object. */
static const char *s_t_cond(const json_t *rs, const char *type, const char *field)
{
    const json_t *c = json_object_get(rs, "conditions");
    if (!c)
        c = jx_get(rs, "status.conditions");
    return jx_str(conds_find(c, type, NULL), field, "");
}

static void s_t_add(t_world_t *w, json_t *rc)
{
    w->own[w->n].due_ms = -1;
    w->clusters[w->n++] = rc;
}

/* The incremental upgrade, end to end on a simulated world: the weights move by the step every
 * interval up to the pending capacity, the capacities by the surge, and the pending cluster is
 * promoted when the active capacity is 0 and the pending traffic 100. */
static int s_t_incremental(void)
{
    int failed = 0;
    t_world_t w = {.now = T0};
    rsstate_settings_default(&w.set);
    w.rs = s_t_rs();
    json_t *spec = json_object_get(w.rs, "spec");
    json_object_set_new(json_object_get(spec, "rayClusterConfig"), "enableInTreeAutoscaling",
                        json_true());
    json_object_set_new(spec, "upgradeStrategy",
                        json_pack("{s:s,s:{s:s,s:i,s:i,s:i}}", "type",
                                  RAYSERVICE_UPGRADE_INCREMENTAL, "clusterUpgradeOptions",
                                  "gatewayClassName", "istio", "stepSizePercent", 10,
                                  "intervalSeconds", 30, "maxSurgePercent", 20));
    rs_out_t o;
    /* first cluster: target capacity 100 from the start */
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(jx_int(o.status, "pendingServiceStatus.targetCapacity", -1) == 100);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    char a[64];
    snprintf(a, sizeof(a), "%s", jx_str(w.rs, "status.pendingServiceStatus.rayClusterName", ""));
    json_t *ac = s_t_cluster(w.rs, a);
    s_t_add(&w, ac);
    json_t *pod = s_t_pod(a, "true");
    json_t *running = s_t_apps("RUNNING");
    char fp[RS_FP_MAX];
    rsstate_config_fp(w.rs, fp);
    w.p = (rs_cluster_in_t){.rc = ac,
                            .head_pod = pod,
                            .health = RS_PROBE_OK,
                            .serve = RS_PROBE_OK,
                            .apps = running,
                            .pushed = fp};
    /* ready: the RayService Services, its per-cluster Service and the Gateway; promoted */
    CHECK(s_t_step(&w, &o) == 0);
    CHECK((o.actions & (RS_ACT_CREATE_HEAD_SVC | RS_ACT_CREATE_SERVE_SVC |
                        RS_ACT_CLUSTER_SVC_PENDING | RS_ACT_CREATE_GATEWAY)) ==
          (RS_ACT_CREATE_HEAD_SVC | RS_ACT_CLUSTER_SVC_PENDING | RS_ACT_CREATE_GATEWAY));
    CHECK(!(o.actions & RS_ACT_CREATE_ROUTE)); /* no route before there is an active cluster */
    CHECK(strcmp(jx_str(o.status, "activeServiceStatus.rayClusterName", ""), a) == 0);
    json_t *gw = json_incref(o.gateway);
    json_object_set_new(gw, "status",
                        json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "conditions", "type", "Accepted",
                                  "status", "True", "type", "Programmed", "status", "True"));
    w.head_svc = json_incref(o.head_svc);
    CHECK(!o.serve_svc);
    json_t *csvc = json_incref(o.cluster_svc[1]);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    w.a = w.p;
    w.a.serve_svc = csvc;
    w.a.endpoints = 2;
    w.p = (rs_cluster_in_t){0};
    /* the route, all on the active cluster; Ready from its per-cluster Service */
    json_t *route = NULL;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions & RS_ACT_CREATE_ROUTE);
    CHECK(jx_int(o.status, "numServeEndpoints", 0) == 2);
    CHECK(jx_int(o.status, "activeServiceStatus.trafficRoutedPercent", -1) == 100);
    route = json_incref(o.route);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    /* an image change: a pending cluster without worker replicas */
    json_t *img = jx_get(w.rs, "spec.rayClusterConfig.headGroupSpec.template.spec.containers");
    json_object_set_new(json_array_get(img, 0), "image", json_string("rayproject/ray:2.10.0"));
    CHECK(s_t_step(&w, &o) == 0);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    char q[64];
    snprintf(q, sizeof(q), "%s", jx_str(w.rs, "status.pendingServiceStatus.rayClusterName", ""));
    CHECK(*q && strcmp(q, a) != 0);
    CHECK(conds_true(jx_get(w.rs, "status.conditions"), RS_COND_UPGRADE));
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions & RS_ACT_CREATE_CLUSTER);
    CHECK(!json_object_get(json_array_get(jx_get(o.cluster, "spec.workerGroupSpecs"), 0),
                           "replicas"));
    rsstate_out_free(&o);
    json_t *qc = s_t_cluster(w.rs, q);
    s_t_add(&w, qc);
    json_t *qpod = s_t_pod(q, "true");
    rsstate_config_fp(w.rs, fp);
    w.p = (rs_cluster_in_t){.rc = qc,
                            .head_pod = qpod,
                            .health = RS_PROBE_OK,
                            .serve = RS_PROBE_OK,
                            .apps = running,
                            .pushed = fp,
                            .endpoints = 1};
    /* walk it: each step the route answers Accepted/ResolvedRefs */
    int last_pw = 0, steps = 0;
    bool promoted = false, monotone = true, active_tc_down = false;
    for (; steps < 60 && !promoted; steps++) {
        int rc = s_t_step_routed(&w, &o, gw, route);
        CHECK(rc == 0);
        if (rc)
            break;
        /* the Services stay on the active cluster during the upgrade */
        CHECK(!(o.actions & (RS_ACT_POINT_HEAD_SVC | RS_ACT_POINT_SERVE_SVC)));
        if (o.actions & RS_ACT_CLUSTER_SVC_PENDING)
            w.p.serve_svc = csvc; /* (any object: it exists now) */
        if (o.route) {
            json_decref(route);
            route = json_incref(o.route);
        }
        if (o.push[0] && json_object_get(o.push[0], "target_capacity") &&
            json_integer_value(json_object_get(o.push[0], "target_capacity")) < 100)
            active_tc_down = true;
        const char *nan = jx_str(o.status, "activeServiceStatus.rayClusterName", "");
        if (o.status && strcmp(nan, q) == 0) {
            promoted = true;
            CHECK(jx_int(o.status, "activeServiceStatus.trafficRoutedPercent", -1) == 100);
            CHECK(jx_int(o.status, "activeServiceStatus.targetCapacity", -1) == 100);
        } else if (o.status) {
            int pw = (int)jx_int(o.status, "pendingServiceStatus.trafficRoutedPercent", 0);
            int aw = (int)jx_int(o.status, "activeServiceStatus.trafficRoutedPercent", 100);
            monotone = monotone && pw >= last_pw && pw - last_pw <= 10 && aw + pw == 100;
            monotone = monotone && pw <= jx_int(o.status, "pendingServiceStatus.targetCapacity", 0);
            last_pw = pw;
        }
        s_t_apply(&w, &o);
        rsstate_out_free(&o);
        w.now += 30000;
    }
    CHECK(promoted);
    CHECK(monotone);
    CHECK(active_tc_down);
    CHECK(steps >= 10); /* 0 -> 100 in steps of 10 */

    /* a second upgrade, reverted midway: rolled back, the same active cluster */
    w.a = w.p;
    w.a.serve_svc = csvc;
    w.p = (rs_cluster_in_t){0};
    json_object_set_new(json_array_get(img, 0), "image", json_string("rayproject/ray:2.11.0"));
    CHECK(s_t_step(&w, &o) == 0);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    char r[64];
    snprintf(r, sizeof(r), "%s", jx_str(w.rs, "status.pendingServiceStatus.rayClusterName", ""));
    CHECK(*r && strcmp(r, q) != 0);
    json_t *rc3 = s_t_cluster(w.rs, r);
    s_t_add(&w, rc3);
    w.p = (rs_cluster_in_t){.rc = rc3,
                            .head_pod = qpod,
                            .health = RS_PROBE_OK,
                            .serve = RS_PROBE_OK,
                            .apps = running,
                            .pushed = fp,
                            .serve_svc = csvc,
                            .endpoints = 1};
    bool reverted = false, rolled = false, saw_rollback = false, back_monotone = true;
    int last_aw = -1;
    for (steps = 0; steps < 80 && !rolled; steps++) {
        int rc = s_t_step_routed(&w, &o, gw, route);
        CHECK(rc == 0);
        if (rc)
            break;
        if (o.route) {
            json_decref(route);
            route = json_incref(o.route);
        }
        const json_t *st = o.status ? o.status : json_object_get(w.rs, "status");
        int pw = (int)jx_int(st, "pendingServiceStatus.trafficRoutedPercent", 0);
        int aw = (int)jx_int(st, "activeServiceStatus.trafficRoutedPercent", 100);
        if (!reverted && pw >= 30) {
            /* the spec goes back to the active cluster's */
            json_object_set_new(json_array_get(img, 0), "image",
                                json_string("rayproject/ray:2.10.0"));
            reverted = true;
        } else if (reverted) {
            CHECK(strcmp(jx_str(st, "activeServiceStatus.rayClusterName", ""), q) == 0);
            saw_rollback =
                saw_rollback || conds_true(json_object_get(st, "conditions"), RS_COND_ROLLBACK);
            if (*jx_str(st, "pendingServiceStatus.rayClusterName", "")) {
                back_monotone = back_monotone && aw >= last_aw;
                last_aw = aw;
            } else {
                rolled = true;
                CHECK(!conds_true(json_object_get(st, "conditions"), RS_COND_ROLLBACK));
                CHECK(strcmp(s_t_cond(st, RS_COND_ROLLBACK, "reason"), RS_R_ROLLBACK_COMPLETE) ==
                      0);
                CHECK(jx_int(st, "activeServiceStatus.targetCapacity", -1) == 100);
                CHECK(aw == 100);
            }
        }
        s_t_apply(&w, &o);
        rsstate_out_free(&o);
        w.now += 30000;
    }
    CHECK(reverted && saw_rollback && rolled && back_monotone);
    /* and no new upgrade: the spec is the active cluster's */
    w.p = (rs_cluster_in_t){0};
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(!o.status || !*jx_str(o.status, "pendingServiceStatus.rayClusterName", ""));
    rsstate_out_free(&o);
    json_decref(route);
    json_decref(gw);
    json_decref(csvc);
    json_decref(w.head_svc);
    json_decref(w.serve_svc);
    for (size_t i = 0; i < w.n; i++)
        json_decref(w.clusters[i]);
    json_decref(pod);
    json_decref(qpod);
    json_decref(running);
    json_decref(w.rs);
    return failed;
}

int rsstate_test(bool verbose)
{
    int failed = s_t_incremental();
    t_world_t w = {.now = T0};
    rsstate_settings_default(&w.set);
    w.rs = s_t_rs();
    CHECK(w.rs != NULL);
    rs_out_t o;

    /* no finalizer yet: only the finalizer */
    json_t *fin = json_incref(jx_get(w.rs, "metadata.finalizers"));
    json_object_del(json_object_get(w.rs, "metadata"), "finalizers");
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == RS_ACT_ADD_FINALIZER && !o.status);
    rsstate_out_free(&o);
    json_object_set_new(json_object_get(w.rs, "metadata"), "finalizers", fin);

    /* initial: a pending cluster is named, conditions Initializing */
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == 0 && o.status);
    s_t_apply(&w, &o);
    const char *pn0 = jx_str(w.rs, "status.pendingServiceStatus.rayClusterName", "");
    CHECK(strncmp(pn0, "rs-", 3) == 0 && strlen(pn0) == 8);
    CHECK(strcmp(s_t_cond(w.rs, RS_COND_READY, "reason"), RS_R_INITIALIZING) == 0);
    CHECK(strcmp(s_t_cond(w.rs, RS_COND_UPGRADE, "reason"), RS_R_INITIALIZING) == 0);
    CHECK(strcmp(jx_str(w.rs, "status.serviceStatus", "x"), "") == 0);
    rsstate_out_free(&o);
    char pn[64];
    snprintf(pn, sizeof(pn), "%s", pn0);

    /* the named pending cluster is created, and no other name is drawn */
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == RS_ACT_CREATE_CLUSTER);
    CHECK(strcmp(jx_str(o.cluster, "metadata.name", ""), pn) == 0);
    CHECK(strcmp(jx_str(w.rs, "status.pendingServiceStatus.rayClusterName", ""), pn) == 0);
    CHECK(!o.status);
    rsstate_out_free(&o);

    /* pending exists, its head is ready, Serve reports nothing: push */
    json_t *pc = s_t_cluster(w.rs, pn);
    s_t_add(&w, pc);
    json_t *pod = s_t_pod(pn, NULL);
    json_t *apps0 = s_t_apps(NULL);
    w.p = (rs_cluster_in_t){
        .rc = pc, .head_pod = pod, .health = RS_PROBE_FAIL, .serve = RS_PROBE_OK, .apps = apps0};
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == (RS_ACT_PUSH_PENDING | RS_ACT_LABEL_PENDING));
    CHECK(strcmp(o.label[1], "false") == 0);
    CHECK(strcmp(jx_str(json_array_get(jx_get(o.push[1], "applications"), 0), "name", ""), "app") ==
          0);
    rsstate_out_free(&o);

    /* pushed and RUNNING, proxy healthy: label true, Services created at it, promoted */
    char fp[RS_FP_MAX];
    rsstate_config_fp(w.rs, fp);
    json_t *running = s_t_apps("RUNNING");
    w.p.apps = running;
    w.p.pushed = fp;
    w.p.health = RS_PROBE_OK;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == (RS_ACT_LABEL_PENDING | RS_ACT_CREATE_HEAD_SVC | RS_ACT_CREATE_SERVE_SVC));
    CHECK(strcmp(o.label[1], "true") == 0);
    CHECK(strcmp(s_sel(o.serve_svc, LABEL_CLUSTER), pn) == 0);
    CHECK(strcmp(s_sel(o.serve_svc, LABEL_SERVE), "true") == 0);
    CHECK(strcmp(jx_str(o.head_svc, "metadata.name", ""), "rs-head-svc") == 0);
    CHECK(strcmp(jx_str(o.status, "activeServiceStatus.rayClusterName", ""), pn) == 0);
    CHECK(strcmp(jx_str(o.status, "pendingServiceStatus.rayClusterName", "x"), "x") == 0);
    CHECK(strcmp(jx_str(o.status, "activeServiceStatus.applicationStatuses.app.status", ""),
                 "RUNNING") == 0);
    CHECK(strcmp(s_t_cond(o.status ? o.status : w.rs, RS_COND_READY, "status"), "False") == 0);
    s_t_apply(&w, &o);
    w.head_svc = json_incref(o.head_svc);
    w.serve_svc = json_incref(o.serve_svc);
    rsstate_out_free(&o);

    /* the world now: active = pn; endpoints appear -> Ready */
    json_object_set_new(json_object_get(pod, "metadata"), "labels",
                        json_pack("{s:s,s:s,s:s}", LABEL_CLUSTER, pn, LABEL_NODE_TYPE, "head",
                                  LABEL_SERVE, "true"));
    w.a = w.p;
    w.p = (rs_cluster_in_t){0};
    w.endpoints = 1;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_READY, "reason"), RS_R_NONZERO_ENDPOINTS) == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_UPGRADE, "reason"), RS_R_NO_PENDING) == 0);
    CHECK(strcmp(jx_str(o.status, "serviceStatus", ""), "Running") == 0);
    CHECK(jx_int(o.status, "numServeEndpoints", 0) == 1);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    /* steady: nothing to write, the steady poll */
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == 0 && !o.status && o.requeue_ms == w.set.steady_poll_ms);
    rsstate_out_free(&o);

    /* a head restart (Serve reports no application) re-pushes without an upgrade */
    w.a.apps = apps0;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == RS_ACT_PUSH_ACTIVE);
    CHECK(!jx_get(o.status, "pendingServiceStatus.rayClusterName"));
    rsstate_out_free(&o);
    w.a.apps = running;

    /* serveConfigV2 only: pushed in place, no new cluster */
    json_object_set_new(json_object_get(w.rs, "spec"), "serveConfigV2",
                        json_string("applications:\n  - name: app\n    import_path: m.app2\n"));
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == RS_ACT_PUSH_ACTIVE);
    CHECK(!o.status || !jx_get(o.status, "pendingServiceStatus.rayClusterName"));
    rsstate_out_free(&o);
    rsstate_config_fp(w.rs, fp);

    /* an appended worker group: the active cluster is updated in place */
    json_t *wgs = jx_get(w.rs, "spec.rayClusterConfig.workerGroupSpecs");
    json_t *g2 = json_deep_copy(json_array_get(wgs, 0));
    json_object_set_new(g2, "groupName", json_string("wg2"));
    json_array_append_new(wgs, g2);
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == RS_ACT_UPDATE_ACTIVE);
    CHECK(json_array_size(jx_get(o.update[0], "spec.workerGroupSpecs")) == 2);
    CHECK(!o.status || !jx_get(o.status, "pendingServiceStatus.rayClusterName"));
    rsstate_out_free(&o);
    json_array_remove(wgs, 1);

    /* image change with upgradeStrategy None: not applied */
    json_t *img = jx_get(w.rs, "spec.rayClusterConfig.headGroupSpec.template.spec.containers");
    json_object_set_new(json_array_get(img, 0), "image", json_string("rayproject/ray:2.10.0"));
    json_object_set_new(json_object_get(w.rs, "spec"), "upgradeStrategy",
                        json_pack("{s:s}", "type", "None"));
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(!o.status || !jx_get(o.status, "pendingServiceStatus.rayClusterName"));
    CHECK(!(o.actions & (RS_ACT_UPDATE_ACTIVE | RS_ACT_CREATE_CLUSTER)));
    rsstate_out_free(&o);
    json_object_del(json_object_get(w.rs, "spec"), "upgradeStrategy");

    /* with zero-downtime on: a new pending cluster, UpgradeInProgress */
    CHECK(s_t_step(&w, &o) == 0);
    const char *np0 = jx_str(o.status, "pendingServiceStatus.rayClusterName", "");
    CHECK(*np0 && strcmp(np0, pn) != 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_UPGRADE, "reason"), RS_R_BOTH) == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_READY, "status"), "True") == 0);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    char np[64];
    snprintf(np, sizeof(np), "%s", jx_str(w.rs, "status.pendingServiceStatus.rayClusterName", ""));
    json_t *nc = s_t_cluster(w.rs, np);
    s_t_add(&w, nc);
    json_t *npod = s_t_pod(np, NULL);
    json_t *failed_apps = s_t_apps("DEPLOY_FAILED");
    w.p = (rs_cluster_in_t){.rc = nc,
                            .head_pod = npod,
                            .health = RS_PROBE_FAIL,
                            .serve = RS_PROBE_OK,
                            .apps = failed_apps,
                            .pushed = fp};
    /* DEPLOY_FAILED: the Services stay on the active cluster */
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(!(o.actions & (RS_ACT_POINT_HEAD_SVC | RS_ACT_POINT_SERVE_SVC)));
    CHECK(!(o.actions & RS_ACT_PUSH_ACTIVE)); /* the active one is left alone */
    CHECK(!o.status || strcmp(jx_str(o.status, "activeServiceStatus.rayClusterName", ""), pn) == 0);
    rsstate_out_free(&o);
    /* RUNNING: the Services point at it, promotion */
    w.p.apps = running;
    w.p.health = RS_PROBE_OK;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK((o.actions & (RS_ACT_POINT_HEAD_SVC | RS_ACT_POINT_SERVE_SVC)) ==
          (RS_ACT_POINT_HEAD_SVC | RS_ACT_POINT_SERVE_SVC));
    CHECK(strcmp(s_sel(o.serve_svc, LABEL_CLUSTER), np) == 0);
    CHECK(strcmp(jx_str(o.status, "activeServiceStatus.rayClusterName", ""), np) == 0);
    CHECK(!jx_get(o.status, "pendingServiceStatus.rayClusterName"));
    s_t_apply(&w, &o);
    json_decref(w.head_svc);
    json_decref(w.serve_svc);
    w.head_svc = json_incref(o.head_svc);
    w.serve_svc = json_incref(o.serve_svc);
    rsstate_out_free(&o);
    /* the old cluster is dangling: a deadline, then its deletion */
    w.a = w.p;
    w.p = (rs_cluster_in_t){0};
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.nrecord == 1 && strcmp(o.record[0], pn) == 0);
    CHECK(o.record_due[0] == w.now + RAYSERVICE_DEFAULT_DELETE_DELAY_S * 1000);
    CHECK(o.ndeletes == 0);
    w.own[0].due_ms = o.record_due[0];
    rsstate_out_free(&o);
    w.now += 30000;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.nrecord == 0 && o.ndeletes == 0 && o.requeue_ms <= 30000);
    rsstate_out_free(&o);
    w.now += 30000;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.ndeletes == 1 && strcmp(o.deletes[0], pn) == 0);
    rsstate_out_free(&o);

    /* suspend: requested, then everything deleted, then suspended; resume */
    json_object_set_new(json_object_get(w.rs, "spec"), "suspend", json_true());
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_SUSPENDING, "reason"), RS_R_SUSPEND_REQUESTED) == 0);
    CHECK(!jx_get(o.status, "activeServiceStatus.rayClusterName"));
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.nrecord == 2 && (o.actions & RS_ACT_DELETE_SERVICES));
    rsstate_out_free(&o);
    json_t *keep[4];
    size_t nkeep = w.n;
    memcpy(keep, w.clusters, sizeof(keep));
    w.n = 0;
    json_decref(w.head_svc);
    json_decref(w.serve_svc);
    w.head_svc = w.serve_svc = NULL;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(conds_true(jx_get(o.status, "conditions"), RS_COND_SUSPENDED));
    CHECK(!conds_true(jx_get(o.status, "conditions"), RS_COND_SUSPENDING));
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    json_object_set_new(json_object_get(w.rs, "spec"), "suspend", json_false());
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_SUSPENDED, "reason"), RS_R_RESUMED) == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_READY, "reason"), RS_R_INITIALIZING) == 0);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    w.a = (rs_cluster_in_t){0};
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(*jx_str(o.status, "pendingServiceStatus.rayClusterName", ""));
    rsstate_out_free(&o);

    /* initializing timeout */
    json_object_set_new(json_object_get(w.rs, "metadata"), "annotations",
                        json_pack("{s:s}", ANN_INITIALIZING_TIMEOUT, "30s"));
    char t[40];
    rftime_format(w.now - 31000, RFTIME_SEC, t, sizeof(t));
    json_object_set_new(json_object_get(w.rs, "status"), "conditions",
                        json_pack("[{s:s,s:s,s:s,s:s}]", "type", RS_COND_READY, "status", "False",
                                  "reason", RS_R_INITIALIZING, "lastTransitionTime", t));
    json_object_set_new(json_object_get(w.rs, "status"), "pendingServiceStatus",
                        json_pack("{s:s}", "rayClusterName", "rs-xxxxx"));
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_READY, "reason"), RS_R_INIT_TIMEOUT) == 0);
    CHECK(!jx_get(o.status, "pendingServiceStatus.rayClusterName"));
    CHECK(o.nevents == 1 && strcmp(o.events[0].reason, "RayServiceInitializingTimeout") == 0);
    s_t_apply(&w, &o);
    rsstate_out_free(&o);
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == 0 && !o.status && strstr(o.why, "failed"));
    rsstate_out_free(&o);

    /* deletion: every cluster goes at once, then the finalizer */
    w.n = nkeep;
    memcpy(w.clusters, keep, sizeof(keep));
    for (size_t i = 0; i < w.n; i++)
        w.own[i].due_ms = -1;
    json_object_set_new(json_object_get(w.rs, "metadata"), "deletionTimestamp",
                        json_string("2023-11-14T22:13:20Z"));
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.nrecord == 2 && o.record_due[0] == w.now && !(o.actions & RS_ACT_REMOVE_FINALIZER));
    rsstate_out_free(&o);
    w.n = 0;
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == RS_ACT_REMOVE_FINALIZER && o.done);
    rsstate_out_free(&o);
    json_object_del(json_object_get(w.rs, "metadata"), "deletionTimestamp");

    /* validation: KubeRay's message, Ready False/ValidationFailed, nothing else */
    json_object_set_new(json_object_get(w.rs, "spec"), "rayClusterDeletionDelaySeconds",
                        json_integer(-1));
    json_object_set_new(w.rs, "status", json_object());
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.invalid && o.nevents == 1 && o.events[0].warning);
    CHECK(strcmp(s_t_cond(o.status, RS_COND_READY, "reason"), RS_R_VALIDATION) == 0);
    CHECK(o.actions == 0);
    rsstate_out_free(&o);

    /* managedBy another controller: left alone */
    json_object_set_new(json_object_get(w.rs, "spec"), "managedBy",
                        json_string("kueue.x-k8s.io/multikueue"));
    CHECK(s_t_step(&w, &o) == 0);
    CHECK(o.actions == 0 && !o.status && o.nevents == 0);
    rsstate_out_free(&o);

    /* the status comparison ignores the copied cluster status and lastUpdateTime */
    json_t *s1 =
        json_pack("{s:s,s:{s:s,s:{s:s}}}", "serviceStatus", "Running", "activeServiceStatus",
                  "rayClusterName", "a", "rayClusterStatus", "state", "ready");
    json_t *s2 = json_deep_copy(s1);
    json_object_set_new(json_object_get(s2, "activeServiceStatus"), "rayClusterStatus",
                        json_pack("{s:s}", "state", "x"));
    json_object_set_new(s2, "lastUpdateTime", json_string("now"));
    CHECK(!rsstate_status_changed(s1, s2));
    json_object_set_new(s2, "serviceStatus", json_string(""));
    CHECK(rsstate_status_changed(s1, s2));
    json_decref(s1);
    json_decref(s2);

    for (size_t i = 0; i < nkeep; i++)
        json_decref(keep[i]);
    json_decref(pod);
    json_decref(npod);
    json_decref(apps0);
    json_decref(running);
    json_decref(failed_apps);
    json_decref(w.rs);
    return SELFTEST_RESULT("rsstate", verbose);
}
#endif /* RF_SELFTEST */
