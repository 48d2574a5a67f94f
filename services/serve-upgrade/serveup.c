/*
 * serveup: the RayService controller (see serveup.h).
 */
#include "serveup.h"

#include "err.h"
#include "json.h"
#include "labels.h"
#include "log.h"
#include "names.h"
#include "raydash.h"
#include "rayjob.h"
#include "rayservice.h"
#include "rftime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_ERR_MAX 2048 /* bytes of a builder's error */
#define S_NAME_MAX 2048 /* bytes of a lease name, a Service name, a pushed-config key */
#define S_SERVE_PORT 8000 /* the Serve proxy's port when the head declares none */
/* A create is not repeated within this time while the watcher has not shown the object yet; after
 * it, an object observed missing is created again (suspend deletes the Services, a user may delete
 * them) and AlreadyExists counts as success. */
#define S_ENSURE_MS 5000

struct serveup {
    loop_t *loop;
    serveup_config_t cfg;
    rs_settings_t set; /* copied settings */
    ctrl_t *ctrl;
    raydash_t *dash;
    json_t *pushed; /* "ns/rayservice/cluster" -> [fingerprint, serveConfigV2] last pushed */
};

typedef struct probe probe_t;

/* The argument of a probe's callback (kept in the probe: nothing to free when cancelled). */
typedef struct {
    ctrl_pass_t *p;
    probe_t *pr;
    bool health;
} probe_cb_t;

/* One probed cluster (0 active, 1 pending). */
struct probe {
    json_t *rc; /* borrowed from pass_t.owned */
    json_t *head_pod; /* owned */
    rs_probe_t health, serve;
    json_t *apps; /* owned: the answer's applications */
    int64_t call_health, call_serve; /* raydash calls in flight, 0 none */
    char *dash_addr; /* storage of the dashboard target */
    char *dash_svc;
    probe_cb_t cb_health, cb_serve;
    json_t *svc; /* incremental: its per-cluster serve Service as observed (owned) */
    long endpoints; /* incremental: that Service's ready serve endpoints */
};

/* The argument of a push's callback. */
typedef struct {
    ctrl_pass_t *p;
    int idx;
    char cluster[256];
    char fp[RS_FP_MAX];
    int64_t t0;
    bool spec; /* the push carries the spec's serveConfigV2: remember it as pushed */
    char *config; /* that serveConfigV2 (owned) */
} push_cb_t;

typedef struct {
    ctrl_pass_t *cp;
    json_t *owned; /* array of the RayClusters it originated */
    rs_owned_t *own; /* their deadlines (rs_in_t.owned) */
    size_t nown;
    probe_t pr[2];
    json_t *head_svc, *serve_svc;
    long endpoints;
    rs_out_t out;
    bool stepped;
    bool drop_status; /* a target_capacity push failed: its status must not land */
    bool incremental; /* NewClusterWithIncrementalUpgrade in effect */
    json_t *gateway, *route; /* incremental: as read in the probe stage, or NULL */
    int64_t push_call[2];
    push_cb_t push_cb[2];
} pass_t;

static int s_rand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    return getrandom(out, n, 0) == (ssize_t)n ? 0 : ERR_IO;
}

/* ---------- reading what the RayService owns ---------- */

static void s_lease_name(const char *ns, const char *cluster, char *out, size_t n)
{
    snprintf(out, n, SERVEUP_LEASE_PREFIX "%s/%s", ns, cluster);
}

/* The deadline recorded for cluster ns/name, -1 none. */
static int64_t s_deadline(serveup_t *s, const char *ns, const char *name)
{
    if (!s->cfg.deadlines)
        return -1;
    char ln[S_NAME_MAX];
    s_lease_name(ns, name, ln, sizeof(ln));
    store_lease_t l;
    if (store_lease_get(s->cfg.deadlines, ln, &l) != 0 || !l.holder[0])
        return -1;
    return l.expires_ms;
}

static void s_forget_deadline(serveup_t *s, const char *ns, const char *name, const char *holder)
{
    if (!s->cfg.deadlines)
        return;
    char ln[S_NAME_MAX];
    s_lease_name(ns, name, ln, sizeof(ln));
    (void)store_lease_release(s->cfg.deadlines, ln, holder);
}

/* The ready serve endpoints of Service ns/svc from its EndpointSlices, found by name
 * (EndpointSlice names are generateName "<service>-", so a name range through the primary key)
 * and kept by their kubernetes.io/service-name label: not through the slice's owner, which the
 * watcher knows only when it saw the Service before the slice. */
static long s_endpoints(serveup_t *s, const char *ns, const char *svc)
{
    char prefix[S_NAME_MAX];
    snprintf(prefix, sizeof(prefix), "%s-", svc);
    store_observed_list_t l = {0};
    json_t *slices = json_array();
    if (slices && store_observed_list_prefix(s->cfg.base.observed, s->cfg.base.cluster,
                                             "EndpointSlice", ns, prefix, &l) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            const store_observed_t *r = l.rows[i];
            json_t *o = r->json ? json_loads(r->json, 0, NULL) : NULL;
            const char *sn = json_string_value(
                json_object_get(jx_get(o, "metadata.labels"), LABEL_SERVICE_NAME));
            if (sn && strcmp(sn, svc) == 0)
                json_array_append(slices, o);
            json_decref(o);
        }
    }
    store_observed_list_free(&l);
    long n = rayservice_serve_endpoints(slices);
    json_decref(slices);
    return n;
}

/* Reads the rows of list l into the pass: RayClusters labelled as originated from the
 * RayService, its head and serve Services. */
static void s_take(ctrl_pass_t *p, const store_observed_list_t *l, const char *head_name,
                   const char *serve_name)
{
    pass_t *d = p->data;
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    for (size_t i = 0; i < l->n; i++) {
        const store_observed_t *r = l->rows[i];
        if (!r->json)
            continue;
        bool is_rc = strcmp(r->kind, "RayCluster") == 0;
        bool svc = strcmp(r->kind, "Service") == 0 &&
                   (strcmp(r->name, head_name) == 0 || strcmp(r->name, serve_name) == 0);
        if (!is_rc && !svc)
            continue;
        json_t *o = json_loads(r->json, 0, NULL);
        if (!o)
            continue;
        const json_t *lb = jx_get(o, "metadata.labels");
        if (is_rc) {
            /* KubeRay lists its clusters by label */
            const char *cr = json_string_value(json_object_get(lb, LABEL_ORIGINATED_FROM_CR_NAME));
            const char *crd = json_string_value(json_object_get(lb, LABEL_ORIGINATED_FROM_CRD));
            if (cr && crd && strcmp(cr, p->name) == 0 && strcmp(crd, RAYSERVICE_CRD) == 0)
                json_array_append(d->owned, o);
        } else {
            /* only the RayService's own (a namesake it does not control is not its Service) */
            const char *ou = r->owner_uid ? r->owner_uid : "";
            if (strcmp(ou, uid) == 0) {
                if (strcmp(r->name, head_name) == 0 && !d->head_svc)
                    d->head_svc = json_incref(o);
                else if (strcmp(r->name, serve_name) == 0 && !d->serve_svc)
                    d->serve_svc = json_incref(o);
            }
        }
        json_decref(o);
    }
}

static ctrl_begin_t s_load(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    const json_t *rs = p->obj;
    char *serve_name = rayservice_serve_service_name(rs);
    char *base = names_trim_job_name(p->name);
    char head_name[S_NAME_MAX], prefix[S_NAME_MAX];
    snprintf(head_name, sizeof(head_name), "%s-head-svc", p->name);
    snprintf(prefix, sizeof(prefix), "%s-", base ? base : p->name);
    free(base);
    d->owned = json_array();
    int rc = serve_name && d->owned ? 0 : ERR_NOMEM;
    store_observed_list_t l = {0};
    /* its Services and their EndpointSlices are owned by it */
    if (rc == 0)
        rc = store_observed_list_owner(s->cfg.base.observed, s->cfg.base.cluster, p->ns,
                                       "RayService", p->name, NULL, &l);
    if (rc == 0)
        s_take(p, &l, head_name, serve_name);
    store_observed_list_free(&l);
    /* its RayClusters are named <name>-<5 random characters> (GenerateRayClusterName); a Ray
     * object's row is its own owner, so they are found by that name range, then by label */
    if (rc == 0)
        rc = store_observed_list_prefix(s->cfg.base.observed, s->cfg.base.cluster, "RayCluster",
                                        p->ns, prefix, &l);
    if (rc == 0)
        s_take(p, &l, head_name, serve_name);
    store_observed_list_free(&l);
    if (rc == 0 && d->serve_svc)
        d->endpoints = s_endpoints(s, p->ns, serve_name);
    free(serve_name);
    if (rc != 0) {
        log_error("observed rows unreadable", "key", p->key, "error", err_str(rc), "correlation_id",
                  p->corr, NULL);
        return CTRL_BEGIN_ERROR;
    }

    d->nown = json_array_size(d->owned);
    d->own = calloc(d->nown ? d->nown : 1, sizeof(*d->own));
    if (!d->own)
        return CTRL_BEGIN_ERROR;
    const char *names[2] = {jx_str(rs, "status.activeServiceStatus.rayClusterName", ""),
                            jx_str(rs, "status.pendingServiceStatus.rayClusterName", "")};
    for (size_t i = 0; i < d->nown; i++) {
        json_t *c = json_array_get(d->owned, i);
        const char *cn = jx_str(c, "metadata.name", "");
        d->own[i].rc = c;
        d->own[i].due_ms = s_deadline(s, p->ns, cn);
        if (jx_get(c, "metadata.deletionTimestamp")) {
            /* its delete was accepted: the deadline has served */
            if (d->own[i].due_ms >= 0)
                s_forget_deadline(s, p->ns, cn, p->name);
            continue;
        }
        for (int k = 0; k < 2; k++) {
            if (*names[k] && strcmp(cn, names[k]) == 0 && !d->pr[k].rc) {
                d->pr[k].rc = c;
                d->pr[k].head_pod = ctrl_observed_head_pod(p->c, p->ns, cn);
            }
        }
    }
    return CTRL_BEGIN_STAGES;
}

/* Incremental: the per-cluster serve Service of pr's cluster and its ready endpoints. */
static void s_load_cluster_svc(ctrl_pass_t *p, probe_t *pr)
{
    serveup_t *s = ctrl_arg(p->c);
    const char *cn = jx_str(pr->rc, "metadata.name", "");
    char name[S_NAME_MAX];
    snprintf(name, sizeof(name), "%s-serve-svc", cn);
    pr->svc = ctrl_observed_get(p->c, "Service", p->ns, name, jx_str(pr->rc, "metadata.uid", ""));
    if (pr->svc)
        pr->endpoints = s_endpoints(s, p->ns, name);
}

static ctrl_begin_t s_begin(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    d->cp = p;
    ctrl_begin_t b = s_load(p);
    d->incremental = rayservice_incremental(p->obj, &s->set.gates);
    for (int k = 0; b == CTRL_BEGIN_STAGES && d->incremental && k < 2; k++)
        if (d->pr[k].rc)
            s_load_cluster_svc(p, &d->pr[k]);
    return b;
}

/* ---------- probes ---------- */

static void s_on_health(const raydash_result_t *res, void *arg)
{
    probe_t *pr = arg;
    pr->call_health = 0;
    pr->health = res->err == 0 ? RS_PROBE_OK : RS_PROBE_FAIL;
}

static void s_on_serve(const raydash_result_t *res, void *arg)
{
    probe_t *pr = arg;
    pr->call_serve = 0;
    const json_t *apps = res->err == 0 ? json_object_get(res->body, "applications") : NULL;
    if (res->err == 0 && (json_is_object(apps) || json_is_null(apps) || !apps)) {
        pr->serve = RS_PROBE_OK;
        pr->apps = json_is_object(apps) ? json_deep_copy(apps) : json_object();
    } else {
        pr->serve = RS_PROBE_FAIL;
    }
}

static void s_probe_done(const raydash_result_t *res, void *arg)
{
    probe_cb_t *cb = arg;
    if (cb->health)
        s_on_health(res, cb->pr);
    else
        s_on_serve(res, cb->pr);
    ctrl_release(cb->p);
}

/* The head pod's Serve proxy port (container port "serve", else 8000). */
static long s_serve_port(const json_t *pod)
{
    size_t i;
    json_t *c, *pt;
    json_array_foreach(jx_get(pod, "spec.containers"), i, c)
    {
        size_t j;
        json_array_foreach(json_object_get(c, "ports"), j, pt)
        {
            if (strcmp(jx_str(pt, "name", ""), "serve") == 0)
                return (long)jx_int(pt, "containerPort", S_SERVE_PORT);
        }
    }
    return S_SERVE_PORT;
}

static int64_t s_start(ctrl_pass_t *p, probe_t *pr, bool health)
{
    serveup_t *s = ctrl_arg(p->c);
    probe_cb_t *cb = health ? &pr->cb_health : &pr->cb_serve;
    *cb = (probe_cb_t){.p = p, .pr = pr, .health = health};
    ctrl_hold(p);
    int64_t id;
    if (health) {
        raydash_pod_t pod = {.ns = p->ns,
                             .pod = jx_str(pr->head_pod, "metadata.name", ""),
                             .ip = jx_str(pr->head_pod, "status.podIP", ""),
                             .port = s_serve_port(pr->head_pod)};
        id = raydash_serve_healthz(s->dash, &pod, s_probe_done, cb);
    } else {
        raydash_target_t t = {.address = pr->dash_addr, .ns = p->ns, .service = pr->dash_svc};
        id = raydash_serve_get(s->dash, &t, s_probe_done, cb);
    }
    if (id < 0) {
        if (health)
            pr->health = RS_PROBE_FAIL;
        else
            pr->serve = RS_PROBE_FAIL;
        ctrl_release(p);
    }
    return id;
}

/* Fills pr's dashboard target from its cluster; false when there is none. */
static bool s_target(serveup_t *s, probe_t *pr)
{
    buf_t url;
    buf_init(&url, 512);
    bool ok = rayjob_dashboard_url(pr->rc, s->cfg.domain, &url) == 0;
    pr->dash_addr = ok ? strdup(buf_str(&url)) : NULL;
    pr->dash_svc = ok ? rayjob_head_service_name(pr->rc) : NULL;
    buf_free(&url);
    return pr->dash_addr && pr->dash_svc;
}

static void s_on_gateway(ctrl_pass_t *p, const k8s_result_t *res)
{
    pass_t *d = p->data;
    if (res->err == 0 && res->body)
        d->gateway = json_incref(res->body);
    else if (res->err != ERR_NOTFOUND)
        log_error("gateway read failed", "key", p->key, "error", res->message, "correlation_id",
                  p->corr, NULL);
}

static void s_on_route(ctrl_pass_t *p, const k8s_result_t *res)
{
    pass_t *d = p->data;
    if (res->err == 0 && res->body)
        d->route = json_incref(res->body);
    else if (res->err != ERR_NOTFOUND)
        log_error("httproute read failed", "key", p->key, "error", res->message, "correlation_id",
                  p->corr, NULL);
}

/* Incremental: reads the Gateway and the HTTPRoute (not observed by the watcher: a cluster may
 * not serve the Gateway API at all; a RayService that uses them is polled every 2 s while it
 * upgrades). */
static void s_read_gateway(ctrl_pass_t *p)
{
    char gw[S_NAME_MAX], rt[S_NAME_MAX];
    snprintf(gw, sizeof(gw), "%s-gateway", p->name);
    snprintf(rt, sizeof(rt), "%s-httproute", p->name);
    const char *names[2] = {gw, rt};
    const char *res[2] = {"gateways", "httproutes"};
    const char *kinds[2] = {"Gateway", "HTTPRoute"};
    for (int k = 0; k < 2; k++)
        ctrl_send(p,
                  &(ctrl_req_t){.verb = CTRL_GET,
                                .group = RAYSERVICE_GATEWAY_GROUP,
                                .version = "v1",
                                .resource = res[k],
                                .kind = kinds[k],
                                .name = names[k],
                                .on_get = k == 0 ? s_on_gateway : s_on_route},
                  NULL);
}

/* Stage: probe the active and pending clusters whose head is ready. */
static void s_stage_probe(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    if (jx_get(p->obj, "metadata.deletionTimestamp") || jx_bool(p->obj, "spec.suspend", false))
        return;
    if (d->incremental)
        s_read_gateway(p);
    for (int k = 0; k < 2; k++) {
        probe_t *pr = &d->pr[k];
        if (!pr->rc || !rsstate_head_ready(pr->rc, pr->head_pod)) {
            log_debug("rayservice probe skipped", "key", p->key, "cluster",
                      pr->rc ? jx_str(pr->rc, "metadata.name", "") : "(none)", "head_pod",
                      pr->head_pod ? "yes" : "no", "correlation_id", p->corr, NULL);
            continue;
        }
        if (pr->head_pod && *jx_str(pr->head_pod, "status.podIP", "")) {
            int64_t id = s_start(p, pr, true);
            pr->call_health = id > 0 ? id : 0;
        }
        if (s_target(s, pr)) {
            int64_t id = s_start(p, pr, false);
            pr->call_serve = id > 0 ? id : 0;
        } else {
            pr->serve = RS_PROBE_FAIL;
        }
    }
}

/* ---------- acting ---------- */

static void s_pushed_key(const ctrl_pass_t *p, const char *cluster, char *out, size_t n)
{
    snprintf(out, n, "%s/%s/%s", p->ns, p->name, cluster);
}

static void s_on_push(const raydash_result_t *res, void *arg)
{
    push_cb_t *cb = arg;
    ctrl_pass_t *p = cb->p;
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    d->push_call[cb->idx] = 0;
    bool ok = res->err == 0;
    char msg[CTRL_MSG_MAX];
    if (ok) {
        snprintf(msg, sizeof(msg), "Updated serve applications to the RayCluster %s/%s", p->ns,
                 cb->cluster);
        char key[S_NAME_MAX];
        s_pushed_key(p, cb->cluster, key, sizeof(key));
        if (json_object_size(s->pushed) >= SERVEUP_PUSHED_MAX)
            json_object_clear(s->pushed); /* each config is pushed once more, no harm */
        if (cb->spec)
            json_object_set_new(s->pushed, key, json_pack("[s,s]", cb->fp, cb->config));
    } else {
        snprintf(msg, sizeof(msg),
                 "Failed to update serve applications to the RayCluster %s/%s: fail to create / "
                 "update Serve applications. err: %s",
                 p->ns, cb->cluster, res->message);
        log_error("serve push failed", "key", p->key, "cluster", cb->cluster, "error", res->message,
                  "correlation_id", p->corr, NULL);
        if (d->out.push_tc[cb->idx])
            d->drop_status = true;
    }
    ctrl_event(p, !ok, ok ? "UpdatedServeApplications" : "FailedToUpdateServeApplications",
               "Reconcile", "%s", msg);
    ctrl_audit(p, "ray.io", "RayCluster", cb->cluster, "serve-push",
               ok ? NULL : "FailedToUpdateServeApplications", msg, d->out.push[cb->idx],
               res->status, ok ? NULL : res->message, loop_clock_ms() - cb->t0);
    ctrl_release(p);
}

static void s_push(ctrl_pass_t *p, int idx)
{
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    probe_t *pr = &d->pr[idx];
    if (!pr->dash_addr || !pr->dash_svc)
        return;
    push_cb_t *cb = &d->push_cb[idx];
    free(cb->config);
    memset(cb, 0, sizeof(*cb));
    cb->p = p;
    cb->idx = idx;
    cb->spec = d->out.push_spec[idx];
    cb->config = strdup(jx_str(p->obj, "spec.serveConfigV2", ""));
    snprintf(cb->cluster, sizeof(cb->cluster), "%s", jx_str(pr->rc, "metadata.name", ""));
    rsstate_config_fp(p->obj, cb->fp);
    cb->t0 = loop_clock_ms();
    raydash_target_t t = {.address = pr->dash_addr, .ns = p->ns, .service = pr->dash_svc};
    ctrl_hold(p);
    int64_t id = raydash_serve_put(s->dash, &t, d->out.push[idx], s_on_push, cb);
    if (id < 0) {
        log_error("serve push not started", "key", p->key, "error", err_str((int)id),
                  "correlation_id", p->corr, NULL);
        ctrl_release(p);
        return;
    }
    d->push_call[idx] = id;
}

static void s_send(ctrl_pass_t *p, ctrl_verb_t verb, const char *group, const char *resource,
                   const char *kind, const char *name, const char *noun, const char *ok,
                   const char *fail, const json_t *body, const char *propagation)
{
    ctrl_send(p,
              &(ctrl_req_t){.verb = verb,
                            .group = group,
                            .version = "v1",
                            .resource = resource,
                            .kind = kind,
                            .name = name,
                            .noun = noun,
                            .ok_reason = ok,
                            .fail_reason = fail,
                            .propagation = propagation},
              body);
}

/* Points Service `name` at goal's selector (merge patch: ClusterIP and the rest kept). */
static void s_point(ctrl_pass_t *p, const json_t *goal)
{
    json_t *patch = json_pack("{s:{s:O}}", "spec", "selector", jx_get(goal, "spec.selector"));
    if (!patch)
        return;
    s_send(p, CTRL_PATCH, "", "services", "Service", jx_str(goal, "metadata.name", ""), "Service",
           "UpdatedService", "FailedToUpdateService", patch, NULL);
    json_decref(patch);
}

static void s_label_pod(ctrl_pass_t *p, const json_t *pod, const char *value)
{
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "labels", LABEL_SERVE, value);
    if (!patch)
        return;
    s_send(p, CTRL_PATCH, "", "pods", "Pod", jx_str(pod, "metadata.name", ""), "head Pod",
           "UpdatedHeadPodServeLabel", "FailedToUpdateHeadPodServeLabel", patch, NULL);
    json_decref(patch);
}

/* Records the deadlines the step asked for. */
static void s_record(ctrl_pass_t *p, const rs_out_t *o)
{
    serveup_t *s = ctrl_arg(p->c);
    int64_t now = rftime_now_ms();
    for (size_t i = 0; i < o->nrecord; i++) {
        char ln[S_NAME_MAX], msg[CTRL_MSG_MAX], when[40] = "";
        s_lease_name(p->ns, o->record[i], ln, sizeof(ln));
        int64_t dur = o->record_due[i] - now;
        rftime_format(o->record_due[i], RFTIME_SEC, when, sizeof(when));
        int rc = s->cfg.deadlines ? store_lease_try_acquire(s->cfg.deadlines, ln, p->name,
                                                            dur > 0 ? dur : 1, now, NULL)
                                  : 0;
        snprintf(msg, sizeof(msg), "RayCluster %s/%s is no longer active or pending: deleted at %s",
                 p->ns, o->record[i], when);
        ctrl_audit(p, "ray.io", "RayCluster", o->record[i], "schedule-delete",
                   rc ? "FailedToScheduleDelete" : NULL, msg, NULL, 0, rc ? err_str(rc) : NULL, 0);
    }
}

static bool s_step(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    rs_cluster_in_t c[2];
    char fps[2][RS_FP_MAX];
    for (int k = 0; k < 2; k++) {
        probe_t *pr = &d->pr[k];
        c[k] = (rs_cluster_in_t){.rc = pr->rc,
                                 .head_pod = pr->head_pod,
                                 .health = pr->health,
                                 .serve = pr->serve,
                                 .apps = pr->apps};
        if (pr->rc) {
            char key[S_NAME_MAX];
            s_pushed_key(p, jx_str(pr->rc, "metadata.name", ""), key, sizeof(key));
            const json_t *e = json_object_get(s->pushed, key);
            const char *fp = json_string_value(json_array_get(e, 0));
            if (fp) {
                snprintf(fps[k], sizeof(fps[k]), "%s", fp);
                c[k].pushed = fps[k];
                c[k].pushed_config = json_string_value(json_array_get(e, 1));
            }
            c[k].serve_svc = pr->svc;
            c[k].endpoints = pr->endpoints;
        }
    }
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    const char *rv = jx_str(p->obj, "metadata.resourceVersion", "");
    const char *memo = ctrl_memo_get(p, uid, rv);
    rs_in_t in = {.rs = p->obj,
                  .owned = d->own,
                  .nowned = d->nown,
                  .active = c[0],
                  .pending = c[1],
                  .head_svc = d->head_svc,
                  .serve_svc = d->serve_svc,
                  .endpoints = d->endpoints,
                  .gateway = d->gateway,
                  .route = d->route,
                  .now_ms = rftime_now_ms(),
                  .set = &s->set,
                  .validated = memo != NULL,
                  .rnd = s_rand};
    buf_t err;
    buf_init(&err, S_ERR_MAX);
    int rc = rsstate_step(&in, &d->out, &err);
    if (rc == 0 && !d->out.invalid && !memo)
        ctrl_memo_put(p, uid, rv, "valid");
    if (rc != 0) {
        const char *why = err.len ? buf_str(&err) : err_str(rc);
        if (!memo || strcmp(memo, "build-failed") != 0) {
            ctrl_event(p, true, "FailedToReconcileRayService", "Reconcile", "%s", why);
            ctrl_memo_put(p, uid, rv, "build-failed");
        }
        ctrl_fail(p, NULL, "RayService %s/%s: %s", p->ns, p->name, why);
    }
    buf_free(&err);
    /* a spec that stays invalid is reported once, not at every resync */
    if (rc == 0 && d->out.invalid && !d->out.status)
        d->out.nevents = 0;
    if (rc == 0 && d->out.why[0])
        log_debug("rayservice step", "key", p->key, "why", d->out.why, "correlation_id", p->corr,
                  NULL);
    return rc == 0;
}

/* Stage: step with what was observed and probed, and carry the decision out. */
static void s_stage_act(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    if (!s_step(p))
        return;
    d->stepped = true;
    rs_out_t *o = &d->out;
    for (size_t i = 0; i < o->nevents; i++)
        ctrl_event(p, o->events[i].warning, o->events[i].reason, "Reconcile", "%s",
                   o->events[i].msg);
    s_record(p, o);
    for (size_t i = 0; i < o->ndeletes; i++)
        s_send(p, CTRL_DELETE, "ray.io", "rayclusters", "RayCluster", o->deletes[i], "RayCluster",
               "DeletedRayCluster", "FailedToDeleteRayCluster", NULL, "Background");
    if (o->actions & RS_ACT_CREATE_CLUSTER)
        ctrl_create_once(p, json_incref(o->cluster), "ray.io", "v1", "rayclusters", "RayCluster",
                         "CreatedRayCluster", "FailedToCreateRayCluster", S_ENSURE_MS);
    for (int k = 0; k < 2; k++) {
        if (o->actions & (k == 0 ? RS_ACT_UPDATE_ACTIVE : RS_ACT_UPDATE_PENDING))
            s_send(p, CTRL_UPDATE, "ray.io", "rayclusters", "RayCluster",
                   jx_str(o->update[k], "metadata.name", ""), "RayCluster", "UpdatedRayCluster",
                   "FailedToUpdateRayCluster", o->update[k], NULL);
        if (o->actions & (k == 0 ? RS_ACT_LABEL_ACTIVE : RS_ACT_LABEL_PENDING))
            s_label_pod(p, d->pr[k].head_pod, o->label[k]);
        if (o->actions & (k == 0 ? RS_ACT_PUSH_ACTIVE : RS_ACT_PUSH_PENDING))
            s_push(p, k);
    }
    for (int k = 0; k < 2; k++)
        if (o->actions & (k == 0 ? RS_ACT_CLUSTER_SVC_ACTIVE : RS_ACT_CLUSTER_SVC_PENDING))
            ctrl_create_once(p, json_incref(o->cluster_svc[k]), "", "v1", "services", "Service",
                             "CreatedService", "FailedToCreateService", S_ENSURE_MS);
    if (o->actions & RS_ACT_CREATE_GATEWAY)
        ctrl_create_once(p, json_incref(o->gateway), RAYSERVICE_GATEWAY_GROUP, "v1", "gateways",
                         "Gateway", "CreatedGateway", "FailedToCreateGateway", S_ENSURE_MS);
    else if (o->actions & RS_ACT_UPDATE_GATEWAY)
        s_send(p, CTRL_UPDATE, RAYSERVICE_GATEWAY_GROUP, "gateways", "Gateway",
               jx_str(o->gateway, "metadata.name", ""), "Gateway", "UpdatedGateway",
               "FailedToUpdateGateway", o->gateway, NULL);
    if (o->actions & RS_ACT_CREATE_ROUTE)
        ctrl_create_once(p, json_incref(o->route), RAYSERVICE_GATEWAY_GROUP, "v1", "httproutes",
                         "HTTPRoute", "CreatedHTTPRoute", "FailedToCreateHTTPRoute", S_ENSURE_MS);
    else if (o->actions & RS_ACT_UPDATE_ROUTE)
        s_send(p, CTRL_UPDATE, RAYSERVICE_GATEWAY_GROUP, "httproutes", "HTTPRoute",
               jx_str(o->route, "metadata.name", ""), "HTTPRoute", "UpdatedHTTPRoute",
               "FailedToUpdateHTTPRoute", o->route, NULL);
    if (o->actions & RS_ACT_CREATE_HEAD_SVC)
        ctrl_create_once(p, json_incref(o->head_svc), "", "v1", "services", "Service",
                         "CreatedService", "FailedToCreateService", S_ENSURE_MS);
    else if (o->actions & RS_ACT_POINT_HEAD_SVC)
        s_point(p, o->head_svc);
    if (o->actions & RS_ACT_CREATE_SERVE_SVC)
        ctrl_create_once(p, json_incref(o->serve_svc), "", "v1", "services", "Service",
                         "CreatedService", "FailedToCreateService", S_ENSURE_MS);
    else if (o->actions & RS_ACT_POINT_SERVE_SVC)
        s_point(p, o->serve_svc);
    if (o->actions & RS_ACT_DELETE_SERVICES) {
        if (d->head_svc)
            s_send(p, CTRL_DELETE, "", "services", "Service",
                   jx_str(d->head_svc, "metadata.name", ""), "Service", "DeletedService",
                   "FailedToDeleteService", NULL, NULL);
        if (d->serve_svc)
            s_send(p, CTRL_DELETE, "", "services", "Service",
                   jx_str(d->serve_svc, "metadata.name", ""), "Service", "DeletedService",
                   "FailedToDeleteService", NULL, NULL);
    }
    if (o->actions & (RS_ACT_ADD_FINALIZER | RS_ACT_REMOVE_FINALIZER))
        ctrl_finalizer(p, RAYSERVICE_FINALIZER, o->actions & RS_ACT_ADD_FINALIZER);
    if (o->requeue_ms > 0)
        p->requeue_ms = o->requeue_ms;
}

/* Stage: the status write. */
static void s_stage_status(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    if (!d->stepped || !d->out.status)
        return;
    if (d->drop_status) {
        /* the status would record a target_capacity the cluster did not take */
        ctrl_fail(p, NULL, "RayService %s/%s: target_capacity push failed", p->ns, p->name);
        return;
    }
    json_t *st = d->out.status;
    d->out.status = NULL;
    ctrl_status_write(p, st, rsstate_status_changed);
}

static void s_pass_free(ctrl_pass_t *p)
{
    pass_t *d = p->data;
    serveup_t *s = ctrl_arg(p->c);
    for (int k = 0; k < 2; k++) {
        probe_t *pr = &d->pr[k];
        if (pr->call_health > 0)
            raydash_cancel(s->dash, pr->call_health);
        if (pr->call_serve > 0)
            raydash_cancel(s->dash, pr->call_serve);
        if (d->push_call[k] > 0)
            raydash_cancel(s->dash, d->push_call[k]);
        json_decref(pr->head_pod);
        json_decref(pr->apps);
        json_decref(pr->svc);
        free(d->push_cb[k].config);
        free(pr->dash_addr);
        free(pr->dash_svc);
    }
    json_decref(d->owned);
    json_decref(d->gateway);
    json_decref(d->route);
    json_decref(d->head_svc);
    json_decref(d->serve_svc);
    free(d->own);
    rsstate_out_free(&d->out);
}

static const ctrl_stage_t s_stages[] = {
    {s_stage_probe, false},
    {s_stage_act, false},
    {s_stage_status, false},
};

static const ctrl_kind_t s_kind = {.group = "ray.io",
                                   .version = "v1",
                                   .kind = "RayService",
                                   .resource = "rayservices",
                                   .component = SERVEUP_COMPONENT,
                                   .instance = SERVEUP_INSTANCE,
                                   .pass_size = sizeof(pass_t),
                                   .begin = s_begin,
                                   .stages = s_stages,
                                   .nstages = sizeof(s_stages) / sizeof(s_stages[0]),
                                   .pass_free = s_pass_free,
                                   .status_precondition = true,
                                   /* KubeRay watches RayServices through Generation/Label/
                                    * AnnotationChanged predicates: a status-only echo is no
                                    * cause (the 2 s requeue follows the service) */
                                   .status_echo_quiet = true};

serveup_t *serveup_new(loop_t *loop, const serveup_config_t *cfg)
{
    if (!loop || !cfg || !cfg->base.cluster || !cfg->base.observed || !cfg->base.client)
        return NULL;
    serveup_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    if (cfg->settings)
        s->set = *cfg->settings;
    else
        rsstate_settings_default(&s->set);
    if (s->set.steady_poll_ms <= 0)
        s->set.steady_poll_ms = RS_POLL_STEADY_MS;
    s->cfg.settings = &s->set;
    s->pushed = json_object();
    ctrl_config_t cc = cfg->base;
    cc.kind = &s_kind;
    cc.arg = s;
    s->dash = raydash_new(loop, &(raydash_config_t){.k8s = cfg->use_proxy ? cfg->base.client : NULL,
                                                    .direct = !cfg->use_proxy});
    s->ctrl = s->dash && s->pushed ? ctrl_new(loop, &cc) : NULL;
    if (!s->ctrl) {
        serveup_destroy(&s);
        return NULL;
    }
    return s;
}

ctrl_t *serveup_ctrl(serveup_t *s)
{
    return s ? s->ctrl : NULL;
}

void serveup_destroy(serveup_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    serveup_t *s = *s_p;
    ctrl_destroy(&s->ctrl); /* passes cancel their dashboard calls */
    raydash_destroy(&s->dash);
    json_decref(s->pushed);
    free(s);
    *s_p = NULL;
}
