/*
 * raysim: simulated Ray heads behind head pods, the service proxy, the autoscaler. See raysim.h.
 */
#include "raysim.h"

#include "autoscale.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "labels.h"
#include "log.h"
#include "names.h"
#include "patch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 600 /* bytes of "ns/name" */

/* One head. */
typedef struct {
    rayhead_t *head; /* the simulated head */
    char uid[48]; /* the pod's uid */
    char ip[48]; /* its podIP */
    json_int_t restarts; /* first container's restartCount when last seen */
    char cluster[OBJSTORE_NAME_MAX]; /* its ray.io/cluster label */
    bool proxy_down; /* annotation RAYSIM_ANN_SERVE_PROXY=down */
} s_head_t;

struct raysim {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    objstore_res_t *rpods, *rsvcs, *reps; /* resources (services/endpoints may be NULL) */
    objstore_watch_t *wpods; /* pod watch */
    rayhead_options_t hopt; /* head template */
    char version[64]; /* copy of hopt.ray_version */
    json_t *heads; /* "ns/name" -> integer (s_head_t *) */
    json_t *demands; /* "ns/cluster" -> demand object */
    json_t *gone_ids; /* submission id -> [attempts, accepted] of heads that are gone */
    rayhead_submit_count_t gone; /* submission totals of heads that are gone */
    rayhead_request_count_t gone_requests; /* request totals of heads that are gone */
    int64_t timer; /* autoscaler timer id, 0 = none */
};

static s_head_t *s_head_of(json_t *v)
{
    return json_is_integer(v) ? (s_head_t *)(intptr_t)json_integer_value(v) : NULL;
}

static void s_head_free(s_head_t *h)
{
    if (!h)
        return;
    rayhead_destroy(&h->head);
    free(h);
}

static void s_head_drop(raysim_t *r, const char *key)
{
    s_head_t *h = s_head_of(json_object_get(r->heads, key));
    if (!h)
        return;
    rayhead_submit_fold(h->head, r->gone_ids, &r->gone);
    rayhead_request_fold(h->head, &r->gone_requests);
    json_object_del(r->heads, key);
    s_head_free(h);
}

static bool s_is_head(const json_t *pod)
{
    json_t *v = jx_getv(pod, "metadata", "labels", LABEL_NODE_TYPE, NULL);
    return json_is_string(v) && strcmp(json_string_value(v), NAMES_NODE_HEAD) == 0;
}

/* Whether pod's Serve proxy is made unhealthy (RAYSIM_ANN_SERVE_PROXY). */
static bool s_proxy_down(const json_t *pod)
{
    json_t *v = jx_getv(pod, "metadata", "annotations", RAYSIM_ANN_SERVE_PROXY, NULL);
    return json_is_string(v) && strcmp(json_string_value(v), "down") == 0;
}

static int s_on_pod(const objstore_event_t *ev, void *arg)
{
    raysim_t *r = arg;
    if (!s_is_head(ev->obj))
        return 0;
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", jx_str(ev->obj, "metadata.namespace", ""),
             jx_str(ev->obj, "metadata.name", ""));
    const char *uid = jx_str(ev->obj, "metadata.uid", "");
    s_head_t *h = s_head_of(json_object_get(r->heads, key));
    const char *phase = jx_str(ev->obj, "status.phase", "");
    if (ev->type == OBJSTORE_DELETED || strcmp(phase, "Succeeded") == 0 ||
        strcmp(phase, "Failed") == 0 || (h && strcmp(h->uid, uid) != 0)) {
        s_head_drop(r, key);
        h = NULL;
        if (ev->type == OBJSTORE_DELETED)
            return 0;
    }
    json_t *c0 = json_array_get(jx_get(ev->obj, "status.containerStatuses"), 0);
    const char *ip = jx_str(ev->obj, "status.podIP", "");
    json_int_t restarts = jx_int(c0, "restartCount", 0);
    bool running = jx_get(c0, "state.running") != NULL;
    int64_t now = objstore_now_ms(r->store);
    if (!h) {
        if (!running || !*ip || strcmp(phase, "Running") != 0)
            return 0;
        h = calloc(1, sizeof(*h));
        if (!h)
            return 0;
        rayhead_options_t o = r->hopt;
        o.start_ms = now;
        o.head_ip = ip;
        o.cluster = json_string_value(jx_getv(ev->obj, "metadata", "labels", LABEL_CLUSTER, NULL));
        h->head = rayhead_new(&o);
        snprintf(h->uid, sizeof(h->uid), "%s", uid);
        snprintf(h->ip, sizeof(h->ip), "%s", ip);
        snprintf(h->cluster, sizeof(h->cluster), "%s", o.cluster ? o.cluster : "");
        h->restarts = restarts;
        h->proxy_down = s_proxy_down(ev->obj);
        if (!h->head || json_object_set_new(r->heads, key, json_integer((json_int_t)(intptr_t)h))) {
            s_head_free(h);
            log_error("raysim: cannot create a head", "pod", key, NULL);
        }
        return 0;
    }
    h->proxy_down = s_proxy_down(ev->obj);
    if (restarts > h->restarts) {
        h->restarts = restarts;
        rayhead_restart(h->head, now);
    }
    return 0;
}

/* ---- proxy ------------------------------------------------------------------------------ */

/* Content type of the answers the proxy makes itself (Status documents), told apart from a
 * head's by address in raysim_dial(). */
static const char s_ct_status[] = "application/json";

static int s_status(rayhead_response_t *out, int code, const char *reason, const char *msg)
{
    objstore_status_t st;
    memset(&st, 0, sizeof(st));
    st.code = code;
    st.reason = reason;
    snprintf(st.message, sizeof(st.message), "%s", msg);
    json_t *j = objstore_status_json(&st);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return ERR_NOMEM;
    out->refused = false;
    out->status = code;
    out->content_type = s_ct_status;
    int rc = buf_puts(&out->body, text);
    free(text);
    return rc;
}

static int s_refused(rayhead_response_t *out, const char *ip, int port)
{
    out->refused = false;
    out->status = 503;
    out->content_type = s_ct_status;
    buf_reset(&out->body);
    return rayhead_refused_status(ip, port, &out->body);
}

static void s_init_out(rayhead_response_t *out)
{
    memset(out, 0, sizeof(*out));
    buf_init(&out->body, RAYHEAD_RESPONSE_MAX);
}

/* The head of worker pod `podkey`'s cluster when that pod is a Running Ray worker (its Serve
 * proxy answers as the head's); *down: the worker's proxy is made unhealthy. NULL otherwise. */
static s_head_t *s_worker_head(raysim_t *r, const char *podkey, bool *down)
{
    const char *slash = strchr(podkey, '/');
    if (!slash)
        return NULL;
    char ns[S_KEY_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - podkey), podkey);
    json_t *pod = NULL;
    objstore_status_t st;
    if (objstore_get(r->store, r->rpods, ns, slash + 1, &pod, &st) < 0)
        return NULL;
    json_t *nt = jx_getv(pod, "metadata", "labels", LABEL_NODE_TYPE, NULL);
    const char *cluster =
        json_string_value(jx_getv(pod, "metadata", "labels", LABEL_CLUSTER, NULL));
    json_t *c0 = json_array_get(jx_get(pod, "status.containerStatuses"), 0);
    s_head_t *found = NULL;
    if (json_is_string(nt) && strcmp(json_string_value(nt), NAMES_NODE_WORKER) == 0 && cluster &&
        strcmp(jx_str(pod, "status.phase", ""), "Running") == 0 && jx_get(c0, "state.running")) {
        *down = s_proxy_down(pod);
        size_t nl = (size_t)(slash - podkey);
        const char *k;
        json_t *v;
        json_object_foreach(r->heads, k, v)
        {
            s_head_t *h = s_head_of(v);
            if (h && strncmp(k, podkey, nl + 1) == 0 && strcmp(h->cluster, cluster) == 0) {
                found = h;
                break;
            }
        }
    }
    json_decref(pod);
    return found;
}

static int s_call(raysim_t *r, const char *podkey, const char *ip, int port, const char *method,
                  const char *path, const char *body, size_t len, int64_t now,
                  rayhead_response_t *out)
{
    s_head_t *h = s_head_of(json_object_get(r->heads, podkey));
    bool down = h && h->proxy_down;
    if (!h && port == RAYHEAD_PORT_SERVE)
        h = s_worker_head(r, podkey, &down);
    if (!h)
        return s_refused(out, ip, port);
    buf_free(&out->body);
    int rc = port == RAYHEAD_PORT_SERVE
                 ? rayhead_handle_proxy(h->head, now, down, method, path, body, len, out)
                 : rayhead_handle(h->head, now, port, method, path, body, len, out);
    if (rc < 0)
        return rc;
    if (out->refused)
        return s_refused(out, ip, port);
    return 0;
}

static bool s_numeric(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int raysim_set_proxy_down(raysim_t *r, const char *ns, const char *pod, bool down)
{
    if (!r || !ns || !pod)
        return ERR_INVAL;
    json_t *obj = NULL;
    objstore_status_t st;
    if (objstore_get(r->store, r->rpods, ns, pod, &obj, &st) < 0)
        return ERR_NOTFOUND;
    json_t *o = json_deep_copy(obj);
    json_decref(obj);
    json_t *ann = o ? jx_child_obj(jx_child_obj(o, "metadata"), "annotations") : NULL;
    if (!ann) {
        json_decref(o);
        return ERR_NOMEM;
    }
    if (down)
        json_object_set_new(ann, RAYSIM_ANN_SERVE_PROXY, json_string("down"));
    else
        json_object_del(ann, RAYSIM_ANN_SERVE_PROXY);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    int rc = objstore_update(r->store, r->rpods, ns, pod, &o, &uo, NULL, NULL, &st);
    json_decref(o);
    return rc < 0 ? (st.code == 404 ? ERR_NOTFOUND : rc) : 0;
}

int raysim_proxy(raysim_t *r, const char *ns, const char *service, const char *port,
                 const char *method, const char *path, const char *body, size_t len, int64_t now_ms,
                 rayhead_response_t *out)
{
    if (!out)
        return ERR_INVAL;
    s_init_out(out);
    if (!r || !ns || !service || !method || !path)
        return ERR_INVAL;
    char msg[OBJSTORE_MSG_MAX];
    json_t *svc = NULL;
    objstore_status_t st;
    if (!r->rsvcs || objstore_get(r->store, r->rsvcs, ns, service, &svc, &st) < 0) {
        snprintf(msg, sizeof(msg), "services \"%s\" not found", service);
        return s_status(out, 404, "NotFound", msg);
    }
    const json_t *sp = NULL;
    json_t *ports = jx_get(svc, "spec.ports");
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        bool hit = (!port || !*port) ? json_array_size(ports) == 1
                   : s_numeric(port) ? jx_int(p, "port", -1) == strtol(port, NULL, 10)
                                     : strcmp(jx_str(p, "name", ""), port) == 0;
        if (hit) {
            sp = p;
            break;
        }
    }
    if (!sp) {
        snprintf(msg, sizeof(msg), "no service port %s found for service \"%s\"",
                 port && *port ? port : "\"\"", service);
        json_decref(svc);
        return s_status(out, 503, "ServiceUnavailable", msg);
    }
    const char *pname = jx_str(sp, "name", "");
    json_t *ep = NULL;
    const char *ip = NULL;
    char podkey[S_KEY_MAX] = "";
    long tport = -1;
    if (r->reps && objstore_get(r->store, r->reps, ns, service, &ep, &st) == 0) {
        json_t *subs = json_object_get(ep, "subsets");
        size_t si, ai, pi;
        json_t *sub, *a, *pp;
        json_array_foreach(subs, si, sub)
        {
            long sport = -1;
            json_array_foreach(json_object_get(sub, "ports"), pi, pp)
            {
                if (strcmp(jx_str(pp, "name", ""), pname) == 0)
                    sport = (long)jx_int(pp, "port", -1);
            }
            if (sport < 0)
                continue;
            json_array_foreach(json_object_get(sub, "addresses"), ai, a)
            {
                char k[S_KEY_MAX];
                snprintf(k, sizeof(k), "%s/%s", ns, jx_str(a, "targetRef.name", ""));
                bool has = s_head_of(json_object_get(r->heads, k)) != NULL;
                if (!ip || (has && !s_head_of(json_object_get(r->heads, podkey)))) {
                    ip = jx_str(a, "ip", "");
                    snprintf(podkey, sizeof(podkey), "%s", k);
                    tport = sport;
                }
            }
        }
    }
    int rc;
    if (!ip || tport < 0) {
        snprintf(msg, sizeof(msg), "no endpoints available for service \"%s\"", service);
        rc = s_status(out, 503, "ServiceUnavailable", msg);
    } else {
        rc = s_call(r, podkey, ip, (int)tport, method, path, body, len, now_ms, out);
    }
    json_decref(ep);
    json_decref(svc);
    return rc;
}

int raysim_proxy_pod(raysim_t *r, const char *ns, const char *pod, const char *port,
                     const char *method, const char *path, const char *body, size_t len,
                     int64_t now_ms, rayhead_response_t *out)
{
    if (!out)
        return ERR_INVAL;
    s_init_out(out);
    if (!r || !ns || !pod || !method || !path)
        return ERR_INVAL;
    json_t *obj = NULL;
    objstore_status_t st;
    char msg[OBJSTORE_MSG_MAX];
    if (objstore_get(r->store, r->rpods, ns, pod, &obj, &st) < 0) {
        snprintf(msg, sizeof(msg), "pods \"%s\" not found", pod);
        return s_status(out, 404, "NotFound", msg);
    }
    long nport = -1;
    if (s_numeric(port)) {
        nport = strtol(port, NULL, 10);
    } else {
        json_t *cs = jx_get(obj, "spec.containers");
        size_t i, j;
        json_t *c, *p;
        json_array_foreach(cs, i, c)
        {
            json_array_foreach(json_object_get(c, "ports"), j, p)
            {
                if (nport < 0 && (!port || !*port || strcmp(jx_str(p, "name", ""), port) == 0))
                    nport = (long)jx_int(p, "containerPort", -1);
            }
        }
    }
    const char *ip = jx_str(obj, "status.podIP", "");
    int rc;
    if (nport < 0) {
        snprintf(msg, sizeof(msg), "no such port %s on pod \"%s\"", port ? port : "", pod);
        rc = s_status(out, 503, "ServiceUnavailable", msg);
    } else if (!*ip) {
        snprintf(msg, sizeof(msg), "address not allowed");
        rc = s_status(out, 503, "ServiceUnavailable", msg);
    } else {
        char key[S_KEY_MAX];
        snprintf(key, sizeof(key), "%s/%s", ns, pod);
        rc = s_call(r, key, ip, (int)nport, method, path, body, len, now_ms, out);
    }
    json_decref(obj);
    return rc;
}

int raysim_dial(raysim_t *r, const char *ns, const char *service, const char *pod, int port,
                const char *method, const char *path_and_query, const char *body, size_t len,
                int64_t now_ms, rayhead_response_t *out)
{
    if (!out)
        return ERR_INVAL;
    s_init_out(out);
    if (!r || !ns || (!service == !pod) || !method || !path_and_query || port <= 0)
        return ERR_INVAL;
    if (service) {
        json_t *svc = NULL;
        objstore_status_t st;
        if (!r->rsvcs || objstore_get(r->store, r->rsvcs, ns, service, &svc, &st) < 0)
            return ERR_NOTFOUND;
        json_decref(svc);
    }
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    rayhead_response_free(out);
    int rc = service
                 ? raysim_proxy(r, ns, service, p, method, path_and_query, body, len, now_ms, out)
                 : raysim_proxy_pod(r, ns, pod, p, method, path_and_query, body, len, now_ms, out);
    if (rc < 0)
        return rc;
    if (out->content_type == s_ct_status) {
        rayhead_response_free(out);
        s_init_out(out);
        return ERR_CONNREFUSED;
    }
    return 0;
}

int raysim_submit_counts(const raysim_t *r, const char *submission_id, rayhead_submit_count_t *out)
{
    if (!r || !out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (submission_id) {
        json_t *pair = json_object_get(r->gone_ids, submission_id);
        out->attempts = (uint64_t)json_integer_value(json_array_get(pair, 0));
        out->accepted = (uint64_t)json_integer_value(json_array_get(pair, 1));
    } else {
        *out = r->gone;
    }
    const char *k;
    json_t *v;
    json_object_foreach(r->heads, k, v)
    {
        rayhead_submit_count_t c;
        rayhead_submit_counts(s_head_of(v)->head, submission_id, &c);
        out->attempts += c.attempts;
        out->accepted += c.accepted;
    }
    return 0;
}

int raysim_request_counts(const raysim_t *r, rayhead_request_count_t *out)
{
    if (!r || !out)
        return ERR_INVAL;
    *out = r->gone_requests;
    const char *k;
    json_t *v;
    json_object_foreach(r->heads, k, v)
    {
        rayhead_request_fold(s_head_of(v)->head, out);
    }
    return 0;
}

rayhead_t *raysim_head(raysim_t *r, const char *ns, const char *pod)
{
    if (!r || !ns || !pod)
        return NULL;
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", ns, pod);
    s_head_t *h = s_head_of(json_object_get(r->heads, key));
    return h ? h->head : NULL;
}

size_t raysim_head_count(const raysim_t *r)
{
    return r ? json_object_size(r->heads) : 0;
}

/* ---- autoscaler ------------------------------------------------------------------------- */

int raysim_set_demand(raysim_t *r, const char *ns, const char *cluster, const json_t *demand)
{
    if (!r || !ns || !cluster)
        return ERR_INVAL;
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", ns, cluster);
    if (!demand) {
        json_object_del(r->demands, key);
        return 0;
    }
    if (!json_is_object(demand))
        return ERR_INVAL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)demand, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return ERR_INVAL;
    }
    json_t *copy = json_deep_copy(demand);
    if (!copy || json_object_set_new(r->demands, key, copy) < 0)
        return ERR_NOMEM;
    return 0;
}

static bool s_cluster_filter(const json_t *obj, void *arg)
{
    json_t *v = jx_getv(obj, "metadata", "labels", LABEL_CLUSTER, NULL);
    return json_is_string(v) && strcmp(json_string_value(v), (const char *)arg) == 0;
}

int raysim_autoscale_tick(raysim_t *r)
{
    if (!r)
        return 0;
    objstore_res_t *rc_res = objstore_find(r->store, "ray.io", "rayclusters");
    if (!rc_res)
        return 0;
    int patched = 0;
    const char *key;
    json_t *demand;
    json_object_foreach(r->demands, key, demand)
    {
        char ns[S_KEY_MAX];
        const char *slash = strchr(key, '/');
        if (!slash)
            continue;
        snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
        const char *name = slash + 1;
        json_t *rc = NULL;
        objstore_status_t st;
        if (objstore_get(r->store, rc_res, ns, name, &rc, &st) < 0)
            continue;
        if (!jx_bool(rc, "spec.enableInTreeAutoscaling", false)) {
            json_decref(rc);
            continue;
        }
        objstore_list_opts_t lo = {
            .ns = ns, .filter = s_cluster_filter, .filter_arg = (void *)name};
        objstore_list_t l;
        json_t *patch = NULL;
        if (objstore_list(r->store, r->rpods, &lo, &l, &st) == 0) {
            if (autoscale_compute(rc, l.items, demand, &patch) < 0)
                patch = NULL;
            objstore_list_free(&l);
        }
        json_t *next = NULL;
        if (patch && json_array_size(patch) && patch_json(rc, patch, &next, NULL) == 0) {
            objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_PATCH};
            if (objstore_update(r->store, rc_res, ns, name, &next, &uo, NULL, NULL, &st) == 0)
                patched++;
            /* ERR_CONFLICT: someone wrote in between; the next period retries. */
        }
        json_decref(next);
        json_decref(patch);
        json_decref(rc);
    }
    return patched;
}

static int64_t s_on_timer(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    raysim_autoscale_tick(arg);
    return RAYSIM_AUTOSCALE_MS;
}

/* ---- lifetime --------------------------------------------------------------------------- */

raysim_t *raysim_new(loop_t *loop, objstore_t *store, const rayhead_options_t *head_opts)
{
    if (!store)
        return NULL;
    raysim_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->store = store;
    if (head_opts)
        r->hopt = *head_opts;
    else
        rayhead_options_default(&r->hopt);
    snprintf(r->version, sizeof(r->version), "%s",
             r->hopt.ray_version ? r->hopt.ray_version : RAYHEAD_DEFAULT_RAY_VERSION);
    r->hopt.ray_version = r->version;
    r->hopt.head_ip = NULL;
    r->rpods = objstore_find(store, "", "pods");
    r->rsvcs = objstore_find(store, "", "services");
    r->reps = objstore_find(store, "", "endpoints");
    r->heads = json_object();
    r->demands = json_object();
    r->gone_ids = json_object();
    objstore_status_t st;
    if (!r->rpods || !r->heads || !r->demands || !r->gone_ids ||
        objstore_watch(store, r->rpods, NULL, NULL, NULL, NULL, s_on_pod, r, &r->wpods, &st) < 0)
        goto fail;
    if (loop) {
        int64_t id = loop_add_timer(loop, RAYSIM_AUTOSCALE_MS, s_on_timer, r);
        if (id <= 0)
            goto fail;
        r->timer = id;
    }
    return r;
fail:
    raysim_destroy(&r);
    return NULL;
}

void raysim_destroy(raysim_t **rp)
{
    if (!rp || !*rp)
        return;
    raysim_t *r = *rp;
    objstore_watch_stop(r->store, &r->wpods);
    if (r->timer > 0 && r->loop)
        loop_cancel_timer(r->loop, r->timer);
    const char *k;
    json_t *v;
    json_object_foreach(r->heads, k, v)
    {
        s_head_free(s_head_of(v));
    }
    json_decref(r->heads);
    json_decref(r->demands);
    json_decref(r->gone_ids);
    free(r);
    *rp = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"
#include "simtest.h"

/* ---- self-test -------------------------------------------------------------------------- */

#include "controllers.h"
#include "kubelet.h"

static int s_get(raysim_t *r, simtest_clock_t *clk, const char *path, const char *method,
                 const char *body, char *text, size_t n)
{
    rayhead_response_t resp;
    int rc = raysim_proxy(r, "default", "rc-head-svc", "dashboard", method, path, body,
                          body ? strlen(body) : 0, clk->now, &resp);
    snprintf(text, n, "%s", resp.body.data ? resp.body.data : "");
    int status = rc == 0 ? resp.status : -1;
    rayhead_response_free(&resp);
    return status;
}

int raysim_test(bool verbose)
{
    int failed = 0;
    simtest_clock_t clk = {.now = SIMTEST_T0};
    objstore_t *s = objstore_new(0);
    CHECK(raysim_new(NULL, s, NULL) == NULL);
    const objstore_resdesc_t extra[] = {
        {.group = "ray.io",
         .version = "v1",
         .resource = "rayclusters",
         .kind = "RayCluster",
         .namespaced = true,
         .has_status = true,
         .is_custom = true},
    };
    CHECK(simtest_core(s, &clk, extra, sizeof(extra) / sizeof(extra[0])) == 0);
    objstore_status_t st;
    json_t *o = NULL;
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 2;
    ko.jitter_ms = 0;
    ko.create_ms = 100;
    ko.ready_ms = 100;
    kubelet_t *k = kubelet_new(NULL, s, &ko);
    controllers_t *c = controllers_new(NULL, s);
    rayhead_options_t ho;
    rayhead_options_default(&ho);
    ho.ports_open_ms = 200;
    ho.healthy_ms = 400;
    ho.job_pending_ms = 300;
    ho.job_run_ms = 500;
    raysim_t *r = raysim_new(NULL, s, &ho);
    CHECK(k && c && r);
    objstore_res_t *rp = objstore_find(s, "", "pods");
    objstore_res_t *rs = objstore_find(s, "", "services");
    char text[8192];

    /* No service yet: 404; service without pods: 503 no endpoints. */
    CHECK(s_get(r, &clk, "/api/version", "GET", NULL, text, sizeof(text)) == 404);
    o = json_pack("{s:{s:s},s:{s:s,s:b,s:{s:s,s:s},s:[{s:s,s:i},{s:s,s:i}]}}", "metadata", "name",
                  "rc-head-svc", "spec", "clusterIP", "None", "publishNotReadyAddresses", 1,
                  "selector", "ray.io/cluster", "rc", "ray.io/node-type", "head", "ports", "name",
                  "dashboard", "port", 8265, "name", "serve", "port", 8000);
    CHECK(objstore_create(s, rs, "default", &o, NULL, &st) == 0);
    controllers_tick(c);
    CHECK(s_get(r, &clk, "/api/version", "GET", NULL, text, sizeof(text)) == 503);
    CHECK(strstr(text, "no endpoints available for service \\\"rc-head-svc\\\"") != NULL);
    {
        rayhead_response_t resp;
        CHECK(raysim_proxy(r, "default", "rc-head-svc", "nope", "GET", "/", NULL, 0, clk.now,
                           &resp) == 0);
        CHECK(resp.status == 503 && strstr(resp.body.data, "no service port") != NULL);
        rayhead_response_free(&resp);
        CHECK(raysim_proxy(NULL, "default", "x", "1", "GET", "/", NULL, 0, 0, &resp) == ERR_INVAL);
        rayhead_response_free(&resp);
    }

    /* A head pod: Running -> head created (ports closed: refused), then healthy. */
    o = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:[{s:s,s:s,s:[{s:s,s:i},{s:s,s:i}]}]}}", "metadata",
                  "name", "rc-head-x", "labels", "ray.io/cluster", "rc", "ray.io/node-type", "head",
                  "spec", "containers", "name", "ray-head", "image", "rayproject/ray", "ports",
                  "name", "dashboard", "containerPort", 8265, "name", "serve", "containerPort",
                  8000);
    CHECK(objstore_create(s, rp, "default", &o, NULL, &st) == 0);
    simtest_step(k, c, &clk, 120);
    CHECK(raysim_head_count(r) == 1);
    CHECK(raysim_head(r, "default", "rc-head-x") != NULL);
    CHECK(s_get(r, &clk, "/api/version", "GET", NULL, text, sizeof(text)) == 503);
    CHECK(strstr(text, "connection refused") != NULL);
    simtest_step(k, c, &clk, 500);
    CHECK(s_get(r, &clk, "/api/version", "GET", NULL, text, sizeof(text)) == 200);
    CHECK(strstr(text, "ray_version") != NULL);
    {
        rayhead_response_t resp;
        CHECK(raysim_proxy_pod(r, "default", "rc-head-x", "8265", "GET", "/api/gcs_healthz", NULL,
                               0, clk.now, &resp) == 0);
        CHECK(resp.status == 200);
        rayhead_response_free(&resp);
        CHECK(raysim_proxy_pod(r, "default", "none", "8265", "GET", "/", NULL, 0, clk.now, &resp) ==
              0);
        CHECK(resp.status == 404);
        rayhead_response_free(&resp);
    }

    /* A job goes PENDING -> RUNNING -> SUCCEEDED. */
    CHECK(s_get(r, &clk, "/api/jobs/", "POST",
                "{\"entrypoint\":\"python x.py\",\"submission_id\":\"j1\"}", text,
                sizeof(text)) == 200);
    CHECK(s_get(r, &clk, "/api/jobs/j1", "GET", NULL, text, sizeof(text)) == 200);
    CHECK(strstr(text, "\"PENDING\"") != NULL);
    simtest_step(k, c, &clk, 400);
    CHECK(s_get(r, &clk, "/api/jobs/j1", "GET", NULL, text, sizeof(text)) == 200);
    CHECK(strstr(text, "\"RUNNING\"") != NULL);
    simtest_step(k, c, &clk, 600);
    CHECK(s_get(r, &clk, "/api/jobs/j1", "GET", NULL, text, sizeof(text)) == 200);
    CHECK(strstr(text, "\"SUCCEEDED\"") != NULL);

    /* Serve proxies per node: a worker of the cluster answers as the head's proxy; the
     * serve-proxy control fails one pod's /-/healthz (head or worker), and the kubelet fails the
     * worker's /-/healthz readiness probe meanwhile. */
    CHECK(s_get(r, &clk, "/api/serve/applications/", "PUT",
                "{\"applications\":[{\"name\":\"app\",\"route_prefix\":\"/\","
                "\"import_path\":\"m.app\"}]}",
                text, sizeof(text)) == 200);
    o = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:[{s:s,s:s,s:{s:{s:[s,s,s]}}}]}}", "metadata", "name",
                  "rc-worker-x", "labels", "ray.io/cluster", "rc", "ray.io/node-type", "worker",
                  "spec", "containers", "name", "ray-worker", "image", "rayproject/ray",
                  "readinessProbe", "exec", "command", "bash", "-c",
                  "wget --tries 1 -T 2 -q -O- http://localhost:8000/-/healthz | grep success");
    CHECK(objstore_create(s, rp, "default", &o, NULL, &st) == 0);
    o = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:[{s:s,s:s}]}}", "metadata", "name", "zz-worker-x",
                  "labels", "ray.io/cluster", "zz", "ray.io/node-type", "worker", "spec",
                  "containers", "name", "ray-worker", "image", "rayproject/ray");
    CHECK(objstore_create(s, rp, "default", &o, NULL, &st) == 0);
    simtest_step(k, c, &clk, 5000);
    {
        struct {
            const char *pod, *port;
            int status;
            const char *body;
        } cases[] = {
            {"rc-worker-x", "8000", 200, "success"},
            {"rc-head-x", "8000", 200, "success"},
            {"rc-worker-x", "8265", 503, "connection refused"}, /* no dashboard on a worker */
            {"zz-worker-x", "8000", 503, "connection refused"}, /* its cluster has no head */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            rayhead_response_t resp;
            CHECK(raysim_proxy_pod(r, "default", cases[i].pod, cases[i].port, "GET", "/-/healthz",
                                   NULL, 0, clk.now, &resp) == 0);
            CHECK(resp.status == cases[i].status && resp.body.data &&
                  strstr(resp.body.data, cases[i].body));
            rayhead_response_free(&resp);
        }
    }
    CHECK(raysim_set_proxy_down(r, "default", "rc-worker-x", true) == 0);
    CHECK(raysim_set_proxy_down(r, "default", "nope", true) == ERR_NOTFOUND);
    simtest_step(k, c, &clk, 100);
    for (int down = 1; down >= 0; down--) {
        rayhead_response_t resp;
        CHECK(raysim_proxy_pod(r, "default", "rc-worker-x", "8000", "GET", "/-/healthz", NULL, 0,
                               clk.now, &resp) == 0);
        CHECK(down
                  ? resp.status == 503 && strcmp(resp.body.data, "This node is being drained.") == 0
                  : resp.status == 200);
        rayhead_response_free(&resp);
        CHECK(raysim_proxy_pod(r, "default", "rc-head-x", "8000", "GET", "/-/healthz", NULL, 0,
                               clk.now, &resp) == 0);
        CHECK(resp.status == 200);
        rayhead_response_free(&resp);
        CHECK(objstore_get(s, rp, "default", "rc-worker-x", &o, &st) == 0);
        json_t *cond = json_array_get(jx_get(o, "status.conditions"), 2);
        CHECK(strcmp(jx_str(cond, "type", ""), "Ready") == 0 &&
              strcmp(jx_str(cond, "status", ""), down ? "False" : "True") == 0);
        CHECK(!down || strcmp(jx_str(cond, "message", ""),
                              "containers with unready status: [ray-worker]") == 0);
        json_decref(o);
        CHECK(raysim_set_proxy_down(r, "default", "rc-worker-x", false) == 0);
        simtest_step(k, c, &clk, 100);
    }
    CHECK(raysim_set_proxy_down(r, "default", "rc-head-x", true) == 0);
    simtest_step(k, c, &clk, 100);
    {
        rayhead_response_t resp;
        CHECK(raysim_proxy_pod(r, "default", "rc-head-x", "8000", "GET", "/-/healthz", NULL, 0,
                               clk.now, &resp) == 0);
        CHECK(resp.status == 503 && strcmp(resp.body.data, "This node is being drained.") == 0);
        rayhead_response_free(&resp);
        /* the head has no /-/healthz readiness probe (KubeRay's): it stays Ready */
        CHECK(objstore_get(s, rp, "default", "rc-head-x", &o, &st) == 0);
        CHECK(strcmp(jx_str(json_array_get(jx_get(o, "status.conditions"), 2), "status", ""),
                     "True") == 0);
        json_decref(o);
    }
    CHECK(raysim_set_proxy_down(r, "default", "rc-head-x", false) == 0);
    simtest_step(k, c, &clk, 100);
    CHECK(objstore_delete(s, rp, "default", "rc-worker-x", NULL, NULL, NULL, &st) == 0);
    CHECK(objstore_delete(s, rp, "default", "zz-worker-x", NULL, NULL, NULL, &st) == 0);
    simtest_step(k, c, &clk, 1500);

    /* A container crash restarts the head: jobs wiped. */
    CHECK(kubelet_inject(k, "default", "rc-head-x", KUBELET_FAIL_CRASH) == 0);
    simtest_step(k, c, &clk, 2000);
    CHECK(s_get(r, &clk, "/api/jobs/j1", "GET", NULL, text, sizeof(text)) == 404);

    /* Request counts: the 8 dashboard requests the head answered (refused ones are none). */
    rayhead_request_count_t rq0, rq1;
    CHECK(raysim_request_counts(r, &rq0) == 0 && rq0.dashboard == 8 && rq0.serve_traffic == 0);
    CHECK(raysim_request_counts(NULL, &rq0) == ERR_INVAL);

    /* Deleting the head pod: 503; its counts are kept. */
    CHECK(objstore_delete(s, rp, "default", "rc-head-x", NULL, NULL, NULL, &st) == 0);
    simtest_step(k, c, &clk, 1500);
    CHECK(raysim_head_count(r) == 0);
    CHECK(s_get(r, &clk, "/api/version", "GET", NULL, text, sizeof(text)) == 503);
    CHECK(raysim_request_counts(r, &rq1) == 0 && rq1.dashboard == 8 && rq1.agent == 0);

    /* Autoscaler: demand patches replicas. */
    json_t *bad = json_integer(1);
    CHECK(raysim_set_demand(r, "default", "rc", bad) == ERR_INVAL);
    json_decref(bad);
    bad = json_pack("{s:i}", "g", -1);
    CHECK(raysim_set_demand(r, "default", "rc", bad) == ERR_INVAL);
    json_decref(bad);
    o = json_pack("{s:s,s:s,s:{s:s},s:{s:b,s:{},s:[{s:s,s:i,s:i,s:i}]}}", "apiVersion", "ray.io/v1",
                  "kind", "RayCluster", "metadata", "name", "rc", "spec", "enableInTreeAutoscaling",
                  1, "headGroupSpec", "workerGroupSpecs", "groupName", "small", "replicas", 1,
                  "minReplicas", 0, "maxReplicas", 5);
    objstore_res_t *rrc = objstore_find(s, "ray.io", "rayclusters");
    CHECK(objstore_create(s, rrc, "default", &o, NULL, &st) == 0);
    json_t *dem = json_pack("{s:i}", "small", 3);
    CHECK(raysim_set_demand(r, "default", "rc", dem) == 0);
    json_decref(dem);
    CHECK(raysim_autoscale_tick(r) == 1);
    json_t *rc = NULL;
    CHECK(objstore_get(s, rrc, "default", "rc", &rc, &st) == 0);
    CHECK(jx_int(json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0), "replicas", 0) == 3);
    json_decref(rc);
    CHECK(raysim_autoscale_tick(r) == 0);
    CHECK(raysim_set_demand(r, "default", "rc", NULL) == 0);

    if (verbose)
        printf("raysim: ok\n");
    raysim_destroy(&r);
    CHECK(r == NULL);
    raysim_destroy(&r);
    controllers_destroy(&c);
    kubelet_destroy(&k);
    objstore_destroy(&s);
    return SELFTEST_RESULT("raysim", verbose);
}

#endif /* RF_SELFTEST */
