/*
 * quota: ResourceQuota and LimitRange in kubesim. See quota.h.
 *
 * Message formats, from kube 1.32's sources: plugin/pkg/admission/resourcequota (controller.go:
 * "failed quota: %s: %v", "exceeded quota: %s, requested: %s, used: %s, limited: %s", prettyPrint
 * = sorted "name=quantity" joined by ","), pkg/quota/v1/evaluator/core/pods.go (Constraints:
 * "must specify %s", each "%s for: %s" with the sorted container names joined by ",", joined by
 * "; "), plugin/pkg/admission/limitranger/admission.go (minConstraint, maxConstraint,
 * limitRequestRatioConstraint, the kubernetes.io/limit-ranger annotation), apimachinery's
 * NewForbidden (`%s %q is forbidden: %v`) and utilerrors.NewAggregate ("[a, b]" for more than one
 * distinct message).
 */
#include "quota.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "rcstatus.h"
#include "rftime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q_NAME_MAX 256 /* a resource name ("requests.nvidia.com/gpu", "count/x.y") */
#define Q_RES_MAX 128 /* resource names in one list (more are ignored) */

struct quota {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    objstore_res_t *rq; /* resourcequotas */
    objstore_watch_t *wpods, *wrq, *wsvc, *wpvc; /* watches that kick a recomputation */
    loop_soon_t soon; /* the coalesced recomputation after watch events */
    int64_t timer; /* the resync timer (0 = none) */
};

/* ---- resource lists ---------------------------------------------------------------------- */

/* One quantity: milli-units and its format (Quantity.Add keeps the first non-zero's). */
typedef struct {
    char name[Q_NAME_MAX];
    int64_t milli;
    bool binary;
} qent_t;

typedef struct {
    qent_t v[Q_RES_MAX];
    size_t n;
} qlist_t;

static qent_t *s_find(qlist_t *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

static const qent_t *s_cfind(const qlist_t *l, const char *name)
{
    return s_find((qlist_t *)l, name);
}

/* Adds milli (format binary) to name, keeping the format of the first non-zero summand. */
static void s_addq(qlist_t *l, const char *name, int64_t milli, bool binary)
{
    qent_t *e = s_find(l, name);
    if (!e) {
        if (l->n >= Q_RES_MAX || strlen(name) >= Q_NAME_MAX)
            return;
        e = &l->v[l->n++];
        snprintf(e->name, sizeof(e->name), "%s", name);
        e->milli = 0;
        e->binary = binary;
    }
    if (e->milli == 0 && milli != 0)
        e->binary = binary;
    e->milli += milli;
}

/* Adds the quantity string q to name; false when it does not parse. */
static bool s_adds(qlist_t *l, const char *name, const char *q)
{
    int64_t m;
    bool bin = false;
    if (!q || rcstatus_parse_quantity(q, &m, &bin) != 0)
        return false;
    s_addq(l, name, m, bin);
    return true;
}

/* Sets name to max(current, milli). */
static void s_maxq(qlist_t *l, const char *name, int64_t milli, bool binary)
{
    qent_t *e = s_find(l, name);
    if (!e) {
        s_addq(l, name, milli, binary);
        return;
    }
    if (milli > e->milli) {
        e->milli = milli;
        e->binary = binary;
    }
}

static void s_fmt(const qent_t *e, char *out, size_t n)
{
    rcstatus_format_quantity(e->milli, e->binary, out, n);
}

/* The canonical form of a quantity string (as kube prints a stored Quantity); s itself when it
 * does not parse. */
static void s_canon(const char *s, char *out, size_t n)
{
    int64_t m;
    bool bin = false;
    if (s && rcstatus_parse_quantity(s, &m, &bin) == 0)
        rcstatus_format_quantity(m, bin, out, n);
    else
        snprintf(out, n, "%s", s ? s : "");
}

/* Loads a JSON ResourceList (name → quantity string or number) into l. */
static void s_load(qlist_t *l, const json_t *rl)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rl, k, v)
    {
        char num[64];
        const char *q = json_string_value(v);
        if (!q && json_is_number(v)) {
            snprintf(num, sizeof(num), "%.17g", json_number_value(v));
            q = num;
        }
        if (!s_adds(l, k, q))
            s_addq(l, k, 0, false);
    }
}

static int s_cmp_ent(const void *a, const void *b)
{
    return strcmp(((const qent_t *)a)->name, ((const qent_t *)b)->name);
}

/* prettyPrint: "a=1,b=2Gi", sorted, of l's entries whose names are in `mask`. */
static void s_pretty(const qlist_t *l, const qlist_t *mask, buf_t *b)
{
    qlist_t t;
    t.n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (s_cfind(mask, l->v[i].name))
            t.v[t.n++] = l->v[i];
    qsort(t.v, t.n, sizeof(t.v[0]), s_cmp_ent);
    for (size_t i = 0; i < t.n; i++) {
        char q[64];
        s_fmt(&t.v[i], q, sizeof(q));
        buf_printf(b, "%s%s=%s", i ? "," : "", t.v[i].name, q);
    }
}

/* ---- status helpers ------------------------------------------------------------------------ */

static bool s_forbidden(objstore_status_t *st, const objstore_res_t *r, const char *name,
                        const char *fmt, ...)
{
    memset(st, 0, sizeof(*st));
    char q[OBJSTORE_NAME_MAX * 2];
    objstore_res_qualified(r, q, sizeof(q));
    const objstore_resdesc_t *d = objstore_res_desc(r);
    st->code = 403;
    st->reason = "Forbidden";
    int n = snprintf(st->message, sizeof(st->message), "%s \"%s\" is forbidden: ", q, name);
    if (n > 0 && (size_t)n < sizeof(st->message)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->message + n, sizeof(st->message) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    snprintf(st->name, sizeof(st->name), "%s", name);
    snprintf(st->group, sizeof(st->group), "%s", d->group);
    snprintf(st->kind, sizeof(st->kind), "%s", d->resource);
    return false;
}

/* The name admission.NewForbidden reports: metadata.name, else generateName (a dry run). */
static const char *s_obj_name(const json_t *obj)
{
    const char *n = jx_str(obj, "metadata.name", "");
    return n[0] ? n : jx_str(obj, "metadata.generateName", "");
}

static bool s_nomem(objstore_status_t *st)
{
    memset(st, 0, sizeof(*st));
    st->code = 500;
    st->reason = "InternalError";
    snprintf(st->message, sizeof(st->message), "out of memory");
    return false;
}

static bool s_is(const objstore_res_t *r, const char *group, const char *resource)
{
    const objstore_resdesc_t *d = objstore_res_desc(r);
    return strcmp(d->group, group) == 0 && strcmp(d->resource, resource) == 0;
}

/* The objects of resource r in ns, sorted by name (a new array; NULL when out of memory). */
static json_t *s_list(objstore_t *s, objstore_res_t *r, const char *ns)
{
    if (!r)
        return json_array();
    objstore_list_opts_t o = {.ns = ns};
    objstore_list_t l;
    objstore_status_t st;
    memset(&l, 0, sizeof(l));
    if (objstore_list(s, r, &o, &l, &st) < 0)
        return NULL;
    json_t *items = json_incref(l.items);
    objstore_list_free(&l);
    return items;
}

static int s_cmp_name(const void *a, const void *b)
{
    return strcmp(jx_str(*(json_t *const *)a, "metadata.name", ""),
                  jx_str(*(json_t *const *)b, "metadata.name", ""));
}

/* items sorted by metadata.name into a new array (NULL when out of memory). */
static json_t *s_sorted(json_t *items)
{
    size_t n = json_array_size(items);
    json_t **v = n ? calloc(n, sizeof(*v)) : NULL;
    json_t *out = json_array();
    if ((n && !v) || !out) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(items, i);
    if (n)
        qsort(v, n, sizeof(*v), s_cmp_name);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

/* ---- usage --------------------------------------------------------------------------------- */

/* QuotaV1Pod's negation: a terminal phase, or marked for deletion with its grace period
 * expired (deletionTimestamp + deletionGracePeriodSeconds before now). */
static bool s_terminal(const json_t *pod, int64_t now_ms)
{
    const char *ph = jx_str(pod, "status.phase", "");
    if (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0)
        return true;
    const char *del = jx_str(pod, "metadata.deletionTimestamp", NULL);
    const json_t *grace = jx_get(pod, "metadata.deletionGracePeriodSeconds");
    int64_t t;
    return del && json_is_integer(grace) && rftime_parse(del, &t) == 0 &&
           now_ms > t + json_integer_value(grace) * 1000;
}

/* kube's helper.IsNativeResource: no domain, or a kubernetes.io domain. */
static bool s_native(const char *k)
{
    const char *slash = strchr(k, '/');
    if (!slash)
        return true;
    size_t dl = (size_t)(slash - k);
    return (dl == strlen("kubernetes.io") && strncmp(k, "kubernetes.io", dl) == 0) ||
           (dl > strlen(".kubernetes.io") &&
            strncmp(slash - strlen(".kubernetes.io"), ".kubernetes.io", 14) == 0);
}

/* A container's requests (falling back to its limit per resource, as kube's defaulting sets
 * them) or limits into l. */
static void s_container(const json_t *c, bool limits, qlist_t *l)
{
    if (!limits) {
        s_load(l, jx_get(c, "resources.limits"));
        qlist_t req;
        req.n = 0;
        s_load(&req, jx_get(c, "resources.requests"));
        for (size_t i = 0; i < req.n; i++) {
            qent_t *e = s_find(l, req.v[i].name);
            if (e) {
                e->milli = req.v[i].milli;
                e->binary = req.v[i].binary;
            } else {
                s_addq(l, req.v[i].name, req.v[i].milli, req.v[i].binary);
            }
        }
        return;
    }
    s_load(l, jx_get(c, "resources.limits"));
}

/* PodRequests / PodLimits: the sum over containers, at least each init container's, plus the
 * pod overhead. */
static void s_pod_res(const json_t *pod, bool limits, bool overhead, qlist_t *out)
{
    out->n = 0;
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(pod, "spec.containers"), i, c)
    {
        qlist_t one;
        one.n = 0;
        s_container(c, limits, &one);
        for (size_t k = 0; k < one.n; k++)
            s_addq(out, one.v[k].name, one.v[k].milli, one.v[k].binary);
    }
    json_array_foreach(jx_get(pod, "spec.initContainers"), i, c)
    {
        qlist_t one;
        one.n = 0;
        s_container(c, limits, &one);
        for (size_t k = 0; k < one.n; k++)
            s_maxq(out, one.v[k].name, one.v[k].milli, one.v[k].binary);
    }
    qlist_t ov;
    ov.n = 0;
    if (overhead)
        s_load(&ov, jx_get(pod, "spec.overhead"));
    for (size_t k = 0; k < ov.n; k++)
        if (s_find(out, ov.v[k].name))
            s_addq(out, ov.v[k].name, ov.v[k].milli, ov.v[k].binary);
}

/* PodUsageFunc. */
static void s_pod_usage(const json_t *pod, int64_t now_ms, qlist_t *u)
{
    s_addq(u, "count/pods", 1000, false);
    if (s_terminal(pod, now_ms))
        return;
    s_addq(u, "pods", 1000, false);
    qlist_t req, lim;
    s_pod_res(pod, false, true, &req);
    s_pod_res(pod, true, true, &lim);
    static const char *const comp[] = {"cpu", "memory", "ephemeral-storage"};
    for (size_t i = 0; i < 3; i++) {
        char n[64];
        const qent_t *e = s_cfind(&req, comp[i]);
        if (e) {
            s_addq(u, comp[i], e->milli, e->binary);
            snprintf(n, sizeof(n), "requests.%s", comp[i]);
            s_addq(u, n, e->milli, e->binary);
        }
        e = s_cfind(&lim, comp[i]);
        if (e) {
            snprintf(n, sizeof(n), "limits.%s", comp[i]);
            s_addq(u, n, e->milli, e->binary);
        }
    }
    for (size_t i = 0; i < req.n; i++) {
        char n[Q_NAME_MAX + 16]; /* s_addq() drops a name of Q_NAME_MAX bytes or more */
        const char *k = req.v[i].name;
        if (strncmp(k, "hugepages-", 10) == 0) {
            s_addq(u, k, req.v[i].milli, req.v[i].binary);
            snprintf(n, sizeof(n), "requests.%s", k);
            s_addq(u, n, req.v[i].milli, req.v[i].binary);
        } else if (!s_native(k)) {
            snprintf(n, sizeof(n), "requests.%s", k);
            s_addq(u, n, req.v[i].milli, req.v[i].binary);
        }
    }
}

/* The usage of one object of resource r (the evaluators of kube's quota registry). */
static void s_usage(const objstore_t *s, const objstore_res_t *r, const json_t *obj, qlist_t *u)
{
    const objstore_resdesc_t *d = objstore_res_desc(r);
    char n[Q_NAME_MAX];
    if (!d->group[0] && strcmp(d->resource, "pods") == 0) {
        s_pod_usage(obj, objstore_now_ms(s), u);
        return;
    }
    if (d->group[0])
        snprintf(n, sizeof(n), "count/%s.%s", d->resource, d->group);
    else
        snprintf(n, sizeof(n), "count/%s", d->resource);
    s_addq(u, n, 1000, false);
    if (d->group[0])
        return;
    static const char *const legacy[] = {"services",       "persistentvolumeclaims",
                                         "secrets",        "configmaps",
                                         "resourcequotas", "replicationcontrollers"};
    for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
        if (strcmp(d->resource, legacy[i]) == 0)
            s_addq(u, legacy[i], 1000, false);
    if (strcmp(d->resource, "services") == 0) {
        const char *t = jx_str(obj, "spec.type", "ClusterIP");
        size_t ports = json_array_size(jx_get(obj, "spec.ports"));
        if (strcmp(t, "NodePort") == 0) {
            s_addq(u, "services.nodeports", (int64_t)ports * 1000, false);
        } else if (strcmp(t, "LoadBalancer") == 0) {
            const json_t *alloc = jx_get(obj, "spec.allocateLoadBalancerNodePorts");
            if (json_is_false(alloc)) {
                size_t i, np = 0;
                json_t *p;
                json_array_foreach(jx_get(obj, "spec.ports"), i, p) np +=
                    json_integer_value(json_object_get(p, "nodePort")) != 0;
                ports = np;
            }
            s_addq(u, "services.nodeports", (int64_t)ports * 1000, false);
            s_addq(u, "services.loadbalancers", 1000, false);
        }
    } else if (strcmp(d->resource, "persistentvolumeclaims") == 0) {
        const char *size = jx_str(obj, "spec.resources.requests.storage", NULL);
        const char *cls = jx_str(obj, "spec.storageClassName", "");
        if (size)
            s_adds(u, "requests.storage", size);
        if (cls[0]) {
            snprintf(n, sizeof(n), "%s.storageclass.storage.k8s.io/persistentvolumeclaims", cls);
            s_addq(u, n, 1000, false);
            snprintf(n, sizeof(n), "%s.storageclass.storage.k8s.io/requests.storage", cls);
            if (size)
                s_adds(u, n, size);
        }
    }
}

/* True when the evaluator of resource r tracks resource name k (MatchingResources). */
static bool s_matches(const objstore_res_t *r, const char *k)
{
    const objstore_resdesc_t *d = objstore_res_desc(r);
    if (!d->group[0] && strcmp(d->resource, "pods") == 0) {
        static const char *const pr[] = {"count/pods",
                                         "cpu",
                                         "memory",
                                         "ephemeral-storage",
                                         "requests.cpu",
                                         "requests.memory",
                                         "requests.ephemeral-storage",
                                         "limits.cpu",
                                         "limits.memory",
                                         "limits.ephemeral-storage",
                                         "pods"};
        for (size_t i = 0; i < sizeof(pr) / sizeof(pr[0]); i++)
            if (strcmp(k, pr[i]) == 0)
                return true;
        if (strncmp(k, "hugepages-", 10) == 0 || strncmp(k, "requests.hugepages-", 19) == 0)
            return true;
        return strncmp(k, "requests.", 9) == 0 && !s_native(k + 9);
    }
    qlist_t u;
    u.n = 0;
    /* every name the evaluator can produce: what an object of the kind charges, with the
     * service and claim names that depend on the object's spec */
    char n[Q_NAME_MAX];
    if (d->group[0])
        snprintf(n, sizeof(n), "count/%s.%s", d->resource, d->group);
    else
        snprintf(n, sizeof(n), "count/%s", d->resource);
    if (strcmp(k, n) == 0)
        return true;
    if (d->group[0])
        return false;
    if (strcmp(d->resource, "services") == 0)
        return !strcmp(k, "services") || !strcmp(k, "services.nodeports") ||
               !strcmp(k, "services.loadbalancers");
    if (strcmp(d->resource, "persistentvolumeclaims") == 0)
        return !strcmp(k, "persistentvolumeclaims") || !strcmp(k, "requests.storage") ||
               strstr(k, ".storageclass.storage.k8s.io/") != NULL;
    (void)u;
    return strcmp(k, d->resource) == 0 &&
           (!strcmp(k, "secrets") || !strcmp(k, "configmaps") || !strcmp(k, "resourcequotas") ||
            !strcmp(k, "replicationcontrollers"));
}

/* ---- scopes -------------------------------------------------------------------------------- */

static bool s_best_effort(const json_t *pod)
{
    static const char *const paths[] = {"spec.containers", "spec.initContainers"};
    for (size_t p = 0; p < 2; p++) {
        size_t i;
        json_t *c;
        json_array_foreach(jx_get(pod, paths[p]), i, c)
        {
            if (json_object_size(jx_get(c, "resources.requests")) ||
                json_object_size(jx_get(c, "resources.limits")))
                return false;
        }
    }
    return true;
}

/* 1: the quota's scopes match obj; 0: they do not; -1: a scope kubesim does not evaluate. */
static int s_scopes_match(const json_t *rq, const objstore_res_t *r, const json_t *obj)
{
    json_t *names = json_array();
    if (!names)
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(jx_get(rq, "spec.scopes"), i, v) json_array_append(names, v);
    json_array_foreach(jx_get(rq, "spec.scopeSelector.matchExpressions"), i, v)
    {
        if (strcmp(jx_str(v, "operator", "Exists"), "Exists") != 0) {
            json_decref(names);
            return -1;
        }
        json_array_append(names, json_object_get(v, "scopeName"));
    }
    int out = 1;
    bool pod = s_is(r, "", "pods");
    json_array_foreach(names, i, v)
    {
        const char *sc = json_string_value(v) ? json_string_value(v) : "";
        bool m;
        if (!strcmp(sc, "Terminating"))
            m = jx_get(obj, "spec.activeDeadlineSeconds") != NULL;
        else if (!strcmp(sc, "NotTerminating"))
            m = jx_get(obj, "spec.activeDeadlineSeconds") == NULL;
        else if (!strcmp(sc, "BestEffort"))
            m = s_best_effort(obj);
        else if (!strcmp(sc, "NotBestEffort"))
            m = !s_best_effort(obj);
        else {
            out = -1;
            break;
        }
        if (!pod || !m) {
            out = 0;
            break;
        }
    }
    json_decref(names);
    return out;
}

/* ---- live usage of a namespace -------------------------------------------------------------- */

/* The usage in ns of every name in `hard` for quota rq (scopes applied), into used (zeros
 * included). `skip_uid`: an object not to count (NULL = none). */
static int s_ns_used(objstore_t *s, const json_t *rq, const char *ns, const qlist_t *hard,
                     qlist_t *used)
{
    used->n = 0;
    for (size_t i = 0; i < hard->n; i++)
        s_addq(used, hard->v[i].name, 0, hard->v[i].binary);
    /* the resources to list: pods, services, claims, legacy names and count/<r>.<g> */
    objstore_res_t *lst[Q_RES_MAX];
    size_t nl = 0;
    for (size_t i = 0; i < hard->n; i++) {
        const char *k = hard->v[i].name;
        objstore_res_t *r = NULL;
        if (strncmp(k, "count/", 6) == 0) {
            char res[Q_NAME_MAX];
            snprintf(res, sizeof(res), "%s", k + 6);
            char *dot = strchr(res, '.');
            const char *grp = "";
            if (dot) {
                *dot = '\0';
                grp = dot + 1;
            }
            r = objstore_find(s, grp, res);
        } else {
            static const char *const core[] = {
                "pods",       "services",       "persistentvolumeclaims", "secrets",
                "configmaps", "resourcequotas", "replicationcontrollers"};
            for (size_t c = 0; c < sizeof(core) / sizeof(core[0]) && !r; c++) {
                objstore_res_t *cr = objstore_find(s, "", core[c]);
                if (cr && s_matches(cr, k))
                    r = cr;
            }
        }
        if (!r)
            continue;
        bool dup = false;
        for (size_t j = 0; j < nl; j++)
            dup |= lst[j] == r;
        if (!dup && nl < Q_RES_MAX)
            lst[nl++] = r;
    }
    for (size_t j = 0; j < nl; j++) {
        json_t *items = s_list(s, lst[j], ns);
        if (!items)
            return ERR_NOMEM;
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o)
        {
            if (s_is(lst[j], "", "pods") && s_scopes_match(rq, lst[j], o) != 1)
                continue;
            qlist_t u;
            u.n = 0;
            s_usage(s, lst[j], o, &u);
            for (size_t k = 0; k < u.n; k++)
                if (s_cfind(hard, u.v[k].name) && s_matches(lst[j], u.v[k].name))
                    s_addq(used, u.v[k].name, u.v[k].milli, u.v[k].binary);
        }
        json_decref(items);
    }
    return 0;
}

/* status.hard (else spec.hard) of a quota into l. */
static void s_hard(const json_t *rq, qlist_t *l)
{
    l->n = 0;
    const json_t *h = jx_get(rq, "status.hard");
    if (!json_object_size(h))
        h = jx_get(rq, "spec.hard");
    s_load(l, h);
}

/* ---- LimitRanger ----------------------------------------------------------------------------- */

/* SetDefaults_LimitRangeItem for type Container: default = max, defaultRequest = default or
 * min, per resource. */
static void s_limitrange_defaults(json_t *lr)
{
    size_t i;
    json_t *it;
    json_array_foreach(jx_get(lr, "spec.limits"), i, it)
    {
        if (!json_is_object(it) || strcmp(jx_str(it, "type", ""), "Container") != 0)
            continue;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(it, "max"), k, v)
        {
            json_t *def = jx_child_obj(it, "default");
            if (def && !json_object_get(def, k))
                json_object_set(def, k, v);
        }
        json_object_foreach(json_object_get(it, "default"), k, v)
        {
            json_t *dr = jx_child_obj(it, "defaultRequest");
            if (dr && !json_object_get(dr, k))
                json_object_set(dr, k, v);
        }
        json_object_foreach(json_object_get(it, "min"), k, v)
        {
            json_t *dr = jx_child_obj(it, "defaultRequest");
            if (dr && !json_object_get(dr, k))
                json_object_set(dr, k, v);
        }
    }
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of a JSON object, sorted (at most max). */
static size_t s_keys(const json_t *o, const char **out, size_t max)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (n < max)
            out[n++] = k;
    }
    qsort(out, n, sizeof(*out), s_cmp_str);
    return n;
}

/* mergeContainerResources: one container's missing limits and requests from the defaults;
 * appends "cpu, memory request for container c" parts to ann. */
static void s_merge(json_t *c, const json_t *def_lim, const json_t *def_req, const char *what,
                    buf_t *ann)
{
    if (!json_is_object(c))
        return;
    json_t *res = jx_child_obj(c, "resources");
    if (!res)
        return;
    static const int kinds[2] = {0, 1};
    for (size_t pass = 0; pass < 2; pass++) {
        const json_t *def = kinds[pass] ? def_lim : def_req;
        if (!json_object_size(def))
            continue;
        json_t *have = jx_child_obj(res, kinds[pass] ? "limits" : "requests");
        const char *keys[Q_RES_MAX];
        size_t n = s_keys(def, keys, Q_RES_MAX), set = 0;
        char list[1024] = "";
        size_t off = 0;
        for (size_t i = 0; i < n && have; i++) {
            if (json_object_get(have, keys[i]))
                continue;
            json_object_set(have, keys[i], json_object_get(def, keys[i]));
            int w = snprintf(list + off, sizeof(list) - off, "%s%s", set ? ", " : "", keys[i]);
            if (w > 0 && (size_t)w < sizeof(list) - off)
                off += (size_t)w;
            set++;
        }
        if (have && json_object_size(have) == 0)
            json_object_del(res, kinds[pass] ? "limits" : "requests");
        if (set)
            buf_printf(ann, "%s%s %s for %s %s", ann->len ? "; " : "", list,
                       kinds[pass] ? "limit" : "request", what, jx_str(c, "name", ""));
    }
    if (json_object_size(res) == 0)
        json_object_del(c, "resources");
}

/* Appends one LimitRanger error to errs (deduplicated as NewAggregate does). */
static void s_err(json_t *errs, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    size_t i;
    json_t *v;
    json_array_foreach(errs, i, v)
    {
        if (strcmp(json_string_value(v), m) == 0)
            return;
    }
    json_array_append_new(errs, json_string(m));
}

/* minConstraint, maxConstraint and limitRequestRatioConstraint of one item over one
 * requests/limits pair (kube's JSON ResourceLists). */
static void s_constraints(const json_t *item, const char *type, const json_t *req,
                          const json_t *lim, json_t *errs)
{
    const char *keys[Q_RES_MAX];
    size_t n = s_keys(json_object_get(item, "min"), keys, Q_RES_MAX);
    for (size_t i = 0; i < n; i++) {
        char enf[64], rq[64], lm[64];
        int64_t e = 0, r = 0, l = 0;
        const char *es = json_string_value(jx_get(json_object_get(item, "min"), keys[i]));
        s_canon(es, enf, sizeof(enf));
        rcstatus_parse_quantity(es, &e, NULL);
        const char *rs = json_string_value(json_object_get(req, keys[i]));
        const char *ls = json_string_value(json_object_get(lim, keys[i]));
        if (!rs) {
            s_err(errs, "minimum %s usage per %s is %s.  No request is specified", keys[i], type,
                  enf);
            continue;
        }
        rcstatus_parse_quantity(rs, &r, NULL);
        s_canon(rs, rq, sizeof(rq));
        if (r < e) {
            s_err(errs, "minimum %s usage per %s is %s, but request is %s", keys[i], type, enf, rq);
            continue;
        }
        if (ls && rcstatus_parse_quantity(ls, &l, NULL) == 0 && l < e) {
            s_canon(ls, lm, sizeof(lm));
            s_err(errs, "minimum %s usage per %s is %s, but limit is %s", keys[i], type, enf, lm);
        }
    }
    n = s_keys(json_object_get(item, "max"), keys, Q_RES_MAX);
    for (size_t i = 0; i < n; i++) {
        char enf[64], rq[64], lm[64];
        int64_t e = 0, r = 0, l = 0;
        const char *es = json_string_value(jx_get(json_object_get(item, "max"), keys[i]));
        s_canon(es, enf, sizeof(enf));
        rcstatus_parse_quantity(es, &e, NULL);
        const char *rs = json_string_value(json_object_get(req, keys[i]));
        const char *ls = json_string_value(json_object_get(lim, keys[i]));
        if (!ls) {
            s_err(errs, "maximum %s usage per %s is %s.  No limit is specified", keys[i], type,
                  enf);
            continue;
        }
        rcstatus_parse_quantity(ls, &l, NULL);
        s_canon(ls, lm, sizeof(lm));
        if (l > e) {
            s_err(errs, "maximum %s usage per %s is %s, but limit is %s", keys[i], type, enf, lm);
            continue;
        }
        if (rs && rcstatus_parse_quantity(rs, &r, NULL) == 0 && r > e) {
            s_canon(rs, rq, sizeof(rq));
            s_err(errs, "maximum %s usage per %s is %s, but request is %s", keys[i], type, enf, rq);
        }
    }
    n = s_keys(json_object_get(item, "maxLimitRequestRatio"), keys, Q_RES_MAX);
    for (size_t i = 0; i < n; i++) {
        char enf[64];
        int64_t e = 0, r = 0, l = 0;
        const char *es =
            json_string_value(jx_get(json_object_get(item, "maxLimitRequestRatio"), keys[i]));
        s_canon(es, enf, sizeof(enf));
        rcstatus_parse_quantity(es, &e, NULL);
        const char *rs = json_string_value(json_object_get(req, keys[i]));
        const char *ls = json_string_value(json_object_get(lim, keys[i]));
        if (!rs || rcstatus_parse_quantity(rs, &r, NULL) != 0 || r == 0) {
            s_err(errs,
                  "%s max limit to request ratio per %s is %s, but no request is specified or "
                  "request is 0",
                  keys[i], type, enf);
            continue;
        }
        if (!ls || rcstatus_parse_quantity(ls, &l, NULL) != 0 || l == 0) {
            s_err(errs,
                  "%s max limit to request ratio per %s is %s, but no limit is specified or "
                  "limit is 0",
                  keys[i], type, enf);
            continue;
        }
        double ratio = (double)l / (double)r;
        if (ratio * 1000.0 > (double)e)
            s_err(errs, "%s max limit to request ratio per %s is %s, but provided ratio is %f",
                  keys[i], type, enf, ratio);
    }
}

/* A qlist as a JSON ResourceList of canonical strings (new reference). */
static json_t *s_rl_json(const qlist_t *l)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < l->n; i++) {
        char q[64];
        s_fmt(&l->v[i], q, sizeof(q));
        json_object_set_new(o, l->v[i].name, json_string(q));
    }
    return o;
}

/* LimitRanger's Admit (defaults) and Validate of a pod. */
static bool s_limitranger(objstore_t *s, objstore_res_t *r, const char *ns, json_t *pod,
                          objstore_status_t *st)
{
    json_t *all = s_list(s, objstore_find(s, "", "limitranges"), ns);
    json_t *lrs = all ? s_sorted(all) : NULL;
    json_decref(all);
    if (!lrs)
        return s_nomem(st);
    const char *name = s_obj_name(pod);
    bool ok = true;
    size_t i;
    json_t *lr;
    json_array_foreach(lrs, i, lr)
    {
        /* defaults: the first Container item with default / defaultRequest */
        const json_t *def_lim = NULL, *def_req = NULL;
        size_t j;
        json_t *it;
        json_array_foreach(jx_get(lr, "spec.limits"), j, it)
        {
            if (strcmp(jx_str(it, "type", ""), "Container") != 0)
                continue;
            def_lim = json_object_get(it, "default");
            def_req = json_object_get(it, "defaultRequest");
            break;
        }
        if (json_object_size(def_lim) || json_object_size(def_req)) {
            buf_t ann;
            buf_init(&ann, 4096);
            json_t *c;
            json_array_foreach(jx_get(pod, "spec.containers"), j, c)
                s_merge(c, def_lim, def_req, "container", &ann);
            json_array_foreach(jx_get(pod, "spec.initContainers"), j, c)
                s_merge(c, def_lim, def_req, "init container", &ann);
            if (ann.len) {
                json_t *a = jx_child_obj(jx_child_obj(pod, "metadata"), "annotations");
                buf_t v;
                buf_init(&v, 8192);
                if (a && buf_printf(&v, "LimitRanger plugin set: %s", buf_str(&ann)) == 0)
                    json_object_set_new(a, QUOTA_ANN_LIMIT_RANGER, json_string(buf_str(&v)));
                buf_free(&v);
            }
            buf_free(&ann);
        }
    }
    json_array_foreach(lrs, i, lr)
    {
        json_t *errs = json_array();
        if (!errs) {
            ok = s_nomem(st);
            break;
        }
        size_t j;
        json_t *it;
        json_array_foreach(jx_get(lr, "spec.limits"), j, it)
        {
            const char *type = jx_str(it, "type", "");
            if (!strcmp(type, "Container")) {
                static const char *const paths[] = {"spec.containers", "spec.initContainers"};
                for (size_t p = 0; p < 2; p++) {
                    size_t k;
                    json_t *c;
                    json_array_foreach(jx_get(pod, paths[p]), k, c)
                    {
                        /* the requests as kube's defaulting left them: a limit stands for a
                         * missing request */
                        json_t *req = json_object();
                        json_object_update(req, (json_t *)jx_get(c, "resources.limits"));
                        json_object_update(req, (json_t *)jx_get(c, "resources.requests"));
                        s_constraints(it, type, req, jx_get(c, "resources.limits"), errs);
                        json_decref(req);
                    }
                }
            } else if (!strcmp(type, "Pod")) {
                qlist_t rq, lm;
                s_pod_res(pod, false, false, &rq);
                s_pod_res(pod, true, false, &lm);
                json_t *jr = s_rl_json(&rq), *jl = s_rl_json(&lm);
                s_constraints(it, type, jr, jl, errs);
                json_decref(jr);
                json_decref(jl);
            }
        }
        if (json_array_size(errs)) {
            buf_t m;
            buf_init(&m, OBJSTORE_MSG_MAX);
            bool many = json_array_size(errs) > 1;
            json_t *e;
            buf_puts(&m, many ? "[" : "");
            json_array_foreach(errs, j, e)
                buf_printf(&m, "%s%s", j ? ", " : "", json_string_value(e));
            buf_puts(&m, many ? "]" : "");
            ok = s_forbidden(st, r, name, "%s", buf_str(&m));
            buf_free(&m);
        }
        json_decref(errs);
        if (!ok)
            break;
    }
    json_decref(lrs);
    return ok;
}

/* ---- ResourceQuota admission ------------------------------------------------------------- */

/* The validationSet of pods.go: if a quota tracks these, every container must set them. */
static bool s_validation_set(const char *k)
{
    return !strcmp(k, "cpu") || !strcmp(k, "memory") || !strcmp(k, "requests.cpu") ||
           !strcmp(k, "requests.memory") || !strcmp(k, "limits.cpu") || !strcmp(k, "limits.memory");
}

/* podEvaluator.Constraints: "must specify ..." into out (empty when satisfied). */
static void s_pod_constraints(const json_t *pod, const qlist_t *tracked, buf_t *out)
{
    const char *req[6];
    size_t nr = 0;
    for (size_t i = 0; i < tracked->n && nr < 6; i++)
        if (s_validation_set(tracked->v[i].name))
            req[nr++] = tracked->v[i].name;
    if (!nr)
        return;
    qsort(req, nr, sizeof(req[0]), s_cmp_str);
    json_t *missing = json_object(); /* resource → {container: true} */
    if (!missing)
        return;
    static const char *const paths[] = {"spec.containers", "spec.initContainers"};
    for (size_t p = 0; p < 2; p++) {
        size_t i;
        json_t *c;
        json_array_foreach(jx_get(pod, paths[p]), i, c)
        {
            qlist_t cu;
            cu.n = 0;
            qlist_t rq, lm;
            rq.n = lm.n = 0;
            s_container(c, false, &rq);
            s_container(c, true, &lm);
            if (s_cfind(&rq, "cpu"))
                s_addq(&cu, "cpu", 0, false), s_addq(&cu, "requests.cpu", 0, false);
            if (s_cfind(&lm, "cpu"))
                s_addq(&cu, "limits.cpu", 0, false);
            if (s_cfind(&rq, "memory"))
                s_addq(&cu, "memory", 0, false), s_addq(&cu, "requests.memory", 0, false);
            if (s_cfind(&lm, "memory"))
                s_addq(&cu, "limits.memory", 0, false);
            for (size_t k = 0; k < nr; k++) {
                if (s_cfind(&cu, req[k]))
                    continue;
                json_t *set = json_object_get(missing, req[k]);
                if (!set) {
                    set = json_object();
                    json_object_set_new(missing, req[k], set);
                }
                json_object_set_new(set, jx_str(c, "name", ""), json_true());
            }
        }
    }
    if (json_object_size(missing)) {
        buf_puts(out, "must specify ");
        size_t n = 0;
        for (size_t k = 0; k < nr; k++) {
            json_t *set = json_object_get(missing, req[k]);
            if (!set)
                continue;
            const char *names[256];
            size_t nn = s_keys(set, names, 256);
            buf_printf(out, "%s%s for: ", n++ ? "; " : "", req[k]);
            for (size_t j = 0; j < nn; j++)
                buf_printf(out, "%s%s", j ? "," : "", names[j]);
        }
    }
    json_decref(missing);
}

static bool s_resourcequota(objstore_t *s, objstore_res_t *r, const char *ns, const json_t *obj,
                            objstore_status_t *st)
{
    objstore_res_t *rrq = objstore_find(s, "", "resourcequotas");
    if (!rrq || !ns || !ns[0])
        return true;
    json_t *all = s_list(s, rrq, ns);
    json_t *quotas = all ? s_sorted(all) : NULL;
    json_decref(all);
    if (!quotas)
        return s_nomem(st);
    if (json_array_size(quotas) == 0) {
        json_decref(quotas);
        return true;
    }
    qlist_t *delta = calloc(1, sizeof(*delta)), *hard = calloc(1, sizeof(*hard));
    qlist_t *used = calloc(1, sizeof(*used)), *tracked = calloc(1, sizeof(*tracked));
    qlist_t *exceeded = calloc(1, sizeof(*exceeded)), *reqd = calloc(1, sizeof(*reqd));
    bool ok = true;
    if (!delta || !hard || !used || !tracked || !exceeded || !reqd) {
        ok = s_nomem(st);
        goto out;
    }
    s_usage(s, r, obj, delta);
    const char *name = s_obj_name(obj);
    bool pod = s_is(r, "", "pods");
    size_t i;
    json_t *rq;
    json_array_foreach(quotas, i, rq)
    {
        if ((json_array_size(jx_get(rq, "spec.scopes")) || jx_get(rq, "spec.scopeSelector")) &&
            s_scopes_match(rq, r, obj) != 1)
            continue;
        s_hard(rq, hard);
        tracked->n = 0;
        for (size_t k = 0; k < hard->n; k++)
            if (s_matches(r, hard->v[k].name))
                s_addq(tracked, hard->v[k].name, 0, false);
        if (!tracked->n)
            continue;
        const char *qn = jx_str(rq, "metadata.name", "");
        if (pod) {
            buf_t m;
            buf_init(&m, OBJSTORE_MSG_MAX);
            s_pod_constraints(obj, tracked, &m);
            if (m.len)
                ok = s_forbidden(st, r, name, "failed quota: %s: %s", qn, buf_str(&m));
            buf_free(&m);
            if (!ok)
                break;
        }
        /* requested = RemoveZeros(Mask(delta, tracked)) */
        reqd->n = 0;
        for (size_t k = 0; k < delta->n; k++)
            if (delta->v[k].milli != 0 && s_cfind(tracked, delta->v[k].name))
                s_addq(reqd, delta->v[k].name, delta->v[k].milli, delta->v[k].binary);
        if (!reqd->n)
            continue;
        if (s_ns_used(s, rq, ns, hard, used) < 0) {
            ok = s_nomem(st);
            break;
        }
        exceeded->n = 0;
        for (size_t k = 0; k < reqd->n; k++) {
            const qent_t *u = s_cfind(used, reqd->v[k].name);
            const qent_t *h = s_cfind(hard, reqd->v[k].name);
            if (h && (u ? u->milli : 0) + reqd->v[k].milli > h->milli)
                s_addq(exceeded, reqd->v[k].name, 0, false);
        }
        if (exceeded->n) {
            buf_t a, b, c;
            buf_init(&a, 512);
            buf_init(&b, 512);
            buf_init(&c, 512);
            s_pretty(reqd, exceeded, &a);
            s_pretty(used, exceeded, &b);
            s_pretty(hard, exceeded, &c);
            ok =
                s_forbidden(st, r, name, "exceeded quota: %s, requested: %s, used: %s, limited: %s",
                            qn, buf_str(&a), buf_str(&b), buf_str(&c));
            buf_free(&a);
            buf_free(&b);
            buf_free(&c);
            break;
        }
    }
out:
    free(delta);
    free(hard);
    free(used);
    free(tracked);
    free(exceeded);
    free(reqd);
    json_decref(quotas);
    return ok;
}

bool quota_admit(objstore_t *s, objstore_res_t *r, const char *ns, json_t *obj,
                 objstore_status_t *st)
{
    if (!json_is_object(obj))
        return true;
    const objstore_resdesc_t *d = objstore_res_desc(r);
    if (!d->namespaced || !ns || !ns[0])
        return true;
    if (s_is(r, "", "limitranges"))
        s_limitrange_defaults(obj);
    if (s_is(r, "", "pods") && !s_limitranger(s, r, ns, obj, st))
        return false;
    return s_resourcequota(s, r, ns, obj, st);
}

static bool s_admit_hook(objstore_t *s, objstore_res_t *r, const char *ns, json_t *obj,
                         objstore_status_t *st, void *arg)
{
    (void)arg;
    return quota_admit(s, r, ns, obj, st);
}

/* ---- the resourcequota controller --------------------------------------------------------- */

int quota_tick(quota_t *q)
{
    json_t *all = s_list(q->store, q->rq, NULL);
    if (!all)
        return 0;
    qlist_t *hard = calloc(1, sizeof(*hard)), *used = calloc(1, sizeof(*used));
    int writes = 0;
    size_t i;
    json_t *rq;
    json_array_foreach(all, i, rq)
    {
        if (!hard || !used)
            break;
        hard->n = 0;
        s_load(hard, jx_get(rq, "spec.hard"));
        if (s_ns_used(q->store, rq, jx_str(rq, "metadata.namespace", ""), hard, used) < 0)
            break;
        json_t *status = json_pack("{s:o,s:o}", "hard", s_rl_json(hard), "used", s_rl_json(used));
        if (!status)
            break;
        objstore_status_t st;
        if (objstore_put_status(q->store, q->rq, rq, status, &st) > 0)
            writes++;
    }
    free(hard);
    free(used);
    json_decref(all);
    return writes;
}

static void s_soon(void *arg)
{
    quota_tick(arg);
}

static int s_on_change(const objstore_event_t *ev, void *arg)
{
    quota_t *q = arg;
    (void)ev;
    loop_soon(&q->soon);
    return 0;
}

static int64_t s_resync(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    quota_t *q = arg;
    quota_tick(q);
    return QUOTA_RESYNC_MS;
}

quota_t *quota_new(loop_t *loop, objstore_t *s)
{
    quota_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = loop;
    q->store = s;
    q->rq = objstore_find(s, "", "resourcequotas");
    if (!q->rq) {
        free(q);
        return NULL;
    }
    loop_soon_init(&q->soon, loop, s_soon, q);
    objstore_set_admit(s, s_admit_hook, q);
    objstore_status_t st;
    struct {
        const char *res;
        objstore_watch_t **w;
    } ws[] = {{"pods", &q->wpods},
              {"resourcequotas", &q->wrq},
              {"services", &q->wsvc},
              {"persistentvolumeclaims", &q->wpvc}};
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        objstore_res_t *r = objstore_find(s, "", ws[i].res);
        if (r && objstore_watch(s, r, NULL, NULL, NULL, NULL, s_on_change, q, ws[i].w, &st) < 0) {
            quota_destroy(&q);
            return NULL;
        }
    }
    if (loop)
        q->timer = loop_add_timer(loop, QUOTA_RESYNC_MS, s_resync, q);
    return q;
}

void quota_destroy(quota_t **qp)
{
    if (!qp || !*qp)
        return;
    quota_t *q = *qp;
    objstore_set_admit(q->store, NULL, NULL);
    objstore_watch_stop(q->store, &q->wpods);
    objstore_watch_stop(q->store, &q->wrq);
    objstore_watch_stop(q->store, &q->wsvc);
    objstore_watch_stop(q->store, &q->wpvc);
    loop_soon_cancel(&q->soon);
    if (q->loop && q->timer > 0)
        loop_cancel_timer(q->loop, q->timer);
    free(q);
    *qp = NULL;
}

/* ---- printers ------------------------------------------------------------------------------ */

bool quota_prints(const char *group, const char *resource)
{
    return !group[0] && (!strcmp(resource, "resourcequotas") || !strcmp(resource, "limitranges"));
}

void quota_table_columns(const char *resource, json_t *cols,
                         json_t *(*coldef)(const char *name, const char *type, const char *format,
                                           const char *desc, json_int_t priority))
{
    if (!strcmp(resource, "limitranges")) {
        json_array_append_new(cols, coldef("Created At", "date", "",
                                           "CreationTimestamp is a timestamp representing the "
                                           "server time when this object was created.",
                                           0));
        return;
    }
    json_array_append_new(cols, coldef("Age", "string", "",
                                       "CreationTimestamp is a timestamp representing the server "
                                       "time when this object was created.",
                                       0));
    json_array_append_new(cols, coldef("Request", "string", "",
                                       "Request represents a minimum amount of cpu/memory that a "
                                       "container may consume.",
                                       0));
    json_array_append_new(cols, coldef("Limit", "string", "",
                                       "Limits control the maximum amount of cpu/memory that a "
                                       "container may use independent of contention on the node.",
                                       0));
}

json_t *quota_table_cells(const char *resource, const json_t *obj, json_t *age)
{
    const char *name = jx_str(obj, "metadata.name", "");
    if (!strcmp(resource, "limitranges")) {
        json_decref(age);
        return json_pack("[s,s]", name, jx_str(obj, "metadata.creationTimestamp", ""));
    }
    const json_t *hard = jx_get(obj, "status.hard");
    const json_t *used = jx_get(obj, "status.used");
    const char *keys[Q_RES_MAX];
    size_t n = s_keys(hard, keys, Q_RES_MAX);
    buf_t rq, lm;
    buf_init(&rq, 8192);
    buf_init(&lm, 8192);
    for (size_t i = 0; i < n; i++) {
        buf_t *w = strncmp(keys[i], "limits.", 7) == 0 ? &lm : &rq;
        char h[64], u[64];
        s_canon(json_string_value(json_object_get(hard, keys[i])), h, sizeof(h));
        const char *us = json_string_value(json_object_get(used, keys[i]));
        s_canon(us ? us : "0", u, sizeof(u));
        buf_printf(w, "%s%s: %s/%s", w->len ? ", " : "", keys[i], u, h);
    }
    json_t *cells = json_pack("[s,o,s,s]", name, age, buf_str(&rq), buf_str(&lm));
    buf_free(&rq);
    buf_free(&lm);
    return cells;
}

/* ---- self-test ----------------------------------------------------------------------------- */

#ifdef RF_SELFTEST
#include "selftest.h"
#include "simtest.h"

static json_t *t_pod(const char *name, const char *cpu_req, const char *cpu_lim)
{
    json_t *res = json_object();
    if (cpu_req)
        json_object_set_new(res, "requests", json_pack("{s:s}", "cpu", cpu_req));
    if (cpu_lim)
        json_object_set_new(res, "limits", json_pack("{s:s}", "cpu", cpu_lim));
    return json_pack("{s:{s:s},s:{s:[{s:s,s:s,s:o}]}}", "metadata", "name", name, "spec",
                     "containers", "name", "c1", "image", "x", "resources", res);
}

static int t_create(objstore_t *s, const char *res, json_t *o, objstore_status_t *st)
{
    return objstore_create(s, objstore_find(s, "", res), "default", &o, NULL, st);
}

static const char *t_used(objstore_t *s, const char *q, const char *k)
{
    json_t *o = NULL;
    objstore_status_t st;
    if (objstore_get(s, objstore_find(s, "", "resourcequotas"), "default", q, &o, &st) < 0)
        return "";
    static char buf[64];
    const char *v = json_string_value(json_object_get(jx_get(o, "status.used"), k));
    snprintf(buf, sizeof(buf), "%s", v ? v : "");
    json_decref(o);
    return buf;
}

int quota_test(bool verbose)
{
    int failed = 0;
    simtest_clock_t clk = {SIMTEST_T0};
    objstore_t *s = objstore_new(0);
    CHECK(s != NULL);
    if (!s)
        return SELFTEST_RESULT("quota", verbose);
    const objstore_resdesc_t extra[] = {
        {.group = "",
         .version = "v1",
         .resource = "resourcequotas",
         .kind = "ResourceQuota",
         .namespaced = true,
         .has_status = true},
        {.group = "",
         .version = "v1",
         .resource = "limitranges",
         .kind = "LimitRange",
         .namespaced = true},
        {.group = "",
         .version = "v1",
         .resource = "configmaps",
         .kind = "ConfigMap",
         .namespaced = true},
        {.group = "",
         .version = "v1",
         .resource = "persistentvolumeclaims",
         .kind = "PersistentVolumeClaim",
         .namespaced = true,
         .has_status = true},
        {.group = "apps",
         .version = "v1",
         .resource = "deployments",
         .kind = "Deployment",
         .namespaced = true,
         .has_status = true},
    };
    CHECK(simtest_core(s, &clk, extra, sizeof(extra) / sizeof(extra[0])) == 0);
    quota_t *q = quota_new(NULL, s);
    CHECK(q != NULL);
    objstore_status_t st;

    /* no quota: anything goes */
    CHECK(t_create(s, "pods", t_pod("free", NULL, NULL), &st) == 0);
    objstore_delete_opts_t dop = {.grace_set = true, .grace_seconds = 0};
    CHECK(objstore_delete(s, objstore_find(s, "", "pods"), "default", "free", &dop, NULL, NULL,
                          &st) >= 0);

    /* q1: cpu=2 (requests), pods=2 */
    CHECK(t_create(s, "resourcequotas",
                   json_pack("{s:{s:s},s:{s:{s:s,s:s}}}", "metadata", "name", "q1", "spec", "hard",
                             "cpu", "2", "pods", "2"),
                   &st) == 0);
    quota_tick(q);
    CHECK(strcmp(t_used(s, "q1", "cpu"), "0") == 0 && strcmp(t_used(s, "q1", "pods"), "0") == 0);
    /* must specify */
    CHECK(t_create(s, "pods", t_pod("x", NULL, NULL), &st) == ERR_FORBIDDEN);
    CHECK(st.code == 403 && strcmp(st.reason, "Forbidden") == 0);
    CHECK(strcmp(st.message,
                 "pods \"x\" is forbidden: failed quota: q1: must specify cpu for: c1") == 0);
    CHECK(strcmp(st.name, "x") == 0 && strcmp(st.kind, "pods") == 0 && st.group[0] == '\0');
    /* a limit alone counts as the request (kube defaults requests from limits) */
    CHECK(t_create(s, "pods", t_pod("a", NULL, "1"), &st) == 0);
    /* exceeded */
    CHECK(t_create(s, "pods", t_pod("b", "1500m", NULL), &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"b\" is forbidden: exceeded quota: q1, requested: cpu=1500m, "
                             "used: cpu=1, limited: cpu=2") == 0);
    CHECK(t_create(s, "pods", t_pod("b", "1", NULL), &st) == 0);
    quota_tick(q);
    CHECK(strcmp(t_used(s, "q1", "cpu"), "2") == 0 && strcmp(t_used(s, "q1", "pods"), "2") == 0);
    /* two resources exceeded, sorted */
    CHECK(t_create(s, "pods", t_pod("c", "1", NULL), &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"c\" is forbidden: exceeded quota: q1, requested: "
                             "cpu=1,pods=1, used: cpu=2,pods=2, limited: cpu=2,pods=2") == 0);
    /* generateName: the generated name is in the message */
    json_t *gp = t_pod("", "1", NULL);
    json_object_del(json_object_get(gp, "metadata"), "name");
    json_object_set_new(json_object_get(gp, "metadata"), "generateName", json_string("g-"));
    CHECK(t_create(s, "pods", gp, &st) == ERR_FORBIDDEN);
    CHECK(strncmp(st.message, "pods \"g-", 8) == 0 && strlen(st.name) == 7);
    /* a terminal pod frees its share */
    json_t *b = NULL;
    CHECK(objstore_get(s, objstore_find(s, "", "pods"), "default", "b", &b, &st) == 0);
    CHECK(objstore_put_status(s, objstore_find(s, "", "pods"), b,
                              json_pack("{s:s}", "phase", "Succeeded"), &st) == 1);
    json_decref(b);
    CHECK(t_create(s, "pods", t_pod("c", "1", NULL), &st) == 0);
    quota_tick(q);
    CHECK(strcmp(t_used(s, "q1", "pods"), "2") == 0);

    /* object counts and limits.* with memory formats */
    CHECK(t_create(s, "resourcequotas",
                   json_pack("{s:{s:s},s:{s:{s:s,s:s,s:s}}}", "metadata", "name", "q2", "spec",
                             "hard", "configmaps", "1", "count/deployments.apps", "0",
                             "limits.memory", "1Gi"),
                   &st) == 0);
    CHECK(t_create(s, "configmaps", json_pack("{s:{s:s}}", "metadata", "name", "cm1"), &st) == 0);
    CHECK(t_create(s, "configmaps", json_pack("{s:{s:s}}", "metadata", "name", "cm2"), &st) ==
          ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "configmaps \"cm2\" is forbidden: exceeded quota: q2, requested: "
                             "configmaps=1, used: configmaps=1, limited: configmaps=1") == 0);
    CHECK(objstore_create(s, objstore_find(s, "apps", "deployments"), "default",
                          &(json_t *){json_pack("{s:{s:s}}", "metadata", "name", "d")}, NULL,
                          &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "deployments.apps \"d\" is forbidden: exceeded quota: q2, requested: "
                             "count/deployments.apps=1, used: count/deployments.apps=0, limited: "
                             "count/deployments.apps=0") == 0);
    CHECK(strcmp(st.group, "apps") == 0 && strcmp(st.kind, "deployments") == 0);
    /* a quota on limits.memory wants every container to set it */
    CHECK(objstore_delete(s, objstore_find(s, "", "resourcequotas"), "default", "q1", NULL, NULL,
                          NULL, &st) >= 0);
    json_t *mp = t_pod("m", "100m", NULL);
    CHECK(t_create(s, "pods", mp, &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message,
                 "pods \"m\" is forbidden: failed quota: q2: must specify limits.memory for: c1") ==
          0);

    /* LimitRange: defaults, annotation and refusals */
    CHECK(objstore_delete(s, objstore_find(s, "", "resourcequotas"), "default", "q2", NULL, NULL,
                          NULL, &st) >= 0);
    CHECK(t_create(s, "limitranges",
                   json_pack("{s:{s:s},s:{s:[{s:s,s:{s:s,s:s},s:{s:s}}]}}", "metadata", "name",
                             "lr", "spec", "limits", "type", "Container", "max", "cpu", "1",
                             "memory", "1Gi", "defaultRequest", "cpu", "250m"),
                   &st) == 0);
    json_t *lr = NULL;
    CHECK(objstore_get(s, objstore_find(s, "", "limitranges"), "default", "lr", &lr, &st) == 0);
    CHECK(strcmp(jx_str(json_array_get(jx_get(lr, "spec.limits"), 0), "default.memory", ""),
                 "1Gi") == 0);
    json_decref(lr);
    json_t *out = NULL;
    json_t *dp = t_pod("d1", NULL, NULL);
    CHECK(objstore_create(s, objstore_find(s, "", "pods"), "default", &dp, &out, &st) == 0);
    json_t *c0 = json_array_get(jx_get(out, "spec.containers"), 0);
    CHECK(strcmp(jx_str(c0, "resources.limits.cpu", ""), "1") == 0);
    CHECK(strcmp(jx_str(c0, "resources.requests.cpu", ""), "250m") == 0);
    const char *av = json_string_value(
        json_object_get(jx_get(out, "metadata.annotations"), QUOTA_ANN_LIMIT_RANGER));
    CHECK(strcmp(av ? av : "",
                 "LimitRanger plugin set: cpu, memory request for container c1; cpu, memory limit "
                 "for container c1") == 0);
    json_decref(out);
    CHECK(t_create(s, "pods", t_pod("big", NULL, "2"), &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"big\" is forbidden: maximum cpu usage per Container is 1, "
                             "but limit is 2") == 0);
    json_t *bp = t_pod("big2", "1500m", "2");
    json_object_set_new(jx_child_obj(json_array_get(jx_get(bp, "spec.containers"), 0), "resources"),
                        "limits", json_pack("{s:s,s:s}", "cpu", "2", "memory", "2Gi"));
    CHECK(t_create(s, "pods", bp, &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"big2\" is forbidden: [maximum cpu usage per Container is 1, "
                             "but limit is 2, maximum memory usage per Container is 1Gi, but "
                             "limit is 2Gi]") == 0);

    /* min and maxLimitRequestRatio; a limit stands for a missing request */
    CHECK(objstore_delete(s, objstore_find(s, "", "limitranges"), "default", "lr", NULL, NULL, NULL,
                          &st) >= 0);
    CHECK(t_create(s, "limitranges",
                   json_pack("{s:{s:s},s:{s:[{s:s,s:{s:s},s:{s:s}}]}}", "metadata", "name", "lr2",
                             "spec", "limits", "type", "Container", "min", "cpu", "200m",
                             "maxLimitRequestRatio", "cpu", "2"),
                   &st) == 0);
    CHECK(t_create(s, "pods", t_pod("small", "100m", "150m"), &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"small\" is forbidden: minimum cpu usage per Container is "
                             "200m, but request is 100m") == 0);
    CHECK(t_create(s, "pods", t_pod("ratio", "250m", "1"), &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"ratio\" is forbidden: cpu max limit to request ratio per "
                             "Container is 2, but provided ratio is 4.000000") == 0);
    CHECK(t_create(s, "pods", t_pod("limonly", NULL, "300m"), &st) == 0);
    CHECK(objstore_delete(s, objstore_find(s, "", "limitranges"), "default", "lr2", NULL, NULL,
                          NULL, &st) >= 0);

    /* scopes, services, and a pod past its deletion grace */
    CHECK(t_create(s, "resourcequotas",
                   json_pack("{s:{s:s},s:{s:{s:s},s:[s]}}", "metadata", "name", "be", "spec",
                             "hard", "pods", "0", "scopes", "BestEffort"),
                   &st) == 0);
    CHECK(t_create(s, "pods", t_pod("be1", NULL, NULL), &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "pods \"be1\" is forbidden: exceeded quota: be, requested: pods=1, "
                             "used: pods=0, limited: pods=0") == 0);
    CHECK(t_create(s, "pods", t_pod("nbe", "100m", NULL), &st) == 0); /* not BestEffort */
    CHECK(t_create(s, "resourcequotas",
                   json_pack("{s:{s:s},s:{s:{s:s,s:s}}}", "metadata", "name", "svc", "spec", "hard",
                             "services.nodeports", "1", "services.loadbalancers", "0"),
                   &st) == 0);
    CHECK(t_create(s, "services",
                   json_pack("{s:{s:s},s:{s:s,s:[{s:i},{s:i}]}}", "metadata", "name", "np", "spec",
                             "type", "NodePort", "ports", "port", 80, "port", 81),
                   &st) == ERR_FORBIDDEN);
    CHECK(strcmp(st.message, "services \"np\" is forbidden: exceeded quota: svc, requested: "
                             "services.nodeports=2, used: services.nodeports=0, limited: "
                             "services.nodeports=1") == 0);
    CHECK(t_create(s, "services",
                   json_pack("{s:{s:s},s:{s:s,s:[{s:i}]}}", "metadata", "name", "lb", "spec",
                             "type", "LoadBalancer", "ports", "port", 80),
                   &st) == ERR_FORBIDDEN);
    CHECK(strstr(st.message,
                 "requested: services.loadbalancers=1, used: "
                 "services.loadbalancers=0, limited: services.loadbalancers=0") != NULL);
    CHECK(t_create(s, "services",
                   json_pack("{s:{s:s},s:{s:[{s:i}]}}", "metadata", "name", "ci", "spec", "ports",
                             "port", 80),
                   &st) == 0);
    CHECK(t_create(s, "resourcequotas",
                   json_pack("{s:{s:s},s:{s:{s:s}}}", "metadata", "name", "p0", "spec", "hard",
                             "pods", "100"),
                   &st) == 0);
    json_t *bound = t_pod("bound", "100m", NULL);
    json_object_set_new(json_object_get(bound, "spec"), "nodeName", json_string("n1"));
    CHECK(t_create(s, "pods", bound, &st) == 0); /* a bound pod is deleted gracefully */
    quota_tick(q);
    char before[64];
    snprintf(before, sizeof(before), "%s", t_used(s, "p0", "pods"));
    objstore_delete_opts_t g1 = {.grace_set = true, .grace_seconds = 1};
    CHECK(objstore_delete(s, objstore_find(s, "", "pods"), "default", "bound", &g1, NULL, NULL,
                          &st) >= 0);
    quota_tick(q);
    CHECK(strcmp(t_used(s, "p0", "pods"), before) == 0); /* still within its grace */
    clk.now += 3000; /* deletionTimestamp (now + 1 s) + 1 s grace: past */
    quota_tick(q);
    CHECK(strtol(t_used(s, "p0", "pods"), NULL, 10) == strtol(before, NULL, 10) - 1);

    /* printer cells */
    json_t *rqo = json_pack("{s:{s:s},s:{s:{s:s,s:s,s:s},s:{s:s,s:s}}}", "metadata", "name", "q",
                            "status", "hard", "pods", "2", "limits.cpu", "2", "requests.memory",
                            "1024Mi", "used", "pods", "1", "limits.cpu", "500m");
    json_t *cells = quota_table_cells("resourcequotas", rqo, json_string("5s"));
    CHECK(cells && strcmp(json_string_value(json_array_get(cells, 2)),
                          "pods: 1/2, requests.memory: 0/1Gi") == 0);
    CHECK(cells && strcmp(json_string_value(json_array_get(cells, 3)), "limits.cpu: 500m/2") == 0);
    json_decref(cells);
    json_decref(rqo);

    quota_destroy(&q);
    CHECK(q == NULL);
    objstore_destroy(&s);
    return SELFTEST_RESULT("quota", verbose);
}
#endif
