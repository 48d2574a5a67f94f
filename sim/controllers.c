/*
 * controllers: Job and EndpointSlice/Endpoints controllers. See controllers.h.
 */
#include "controllers.h"

#include "apps.h"
#include "certmgr.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "rftime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_KEY_MAX 640 /* bytes of an index key "ns\x1fkey=value" or "ns/name" */
#define S_SEP "\x1f" /* separates the namespace in index keys */

struct controllers {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    objstore_res_t *rpods, *rjobs, *rsvcs, *reps, *rslices; /* resources (some may be NULL) */
    objstore_watch_t *wpods, *wjobs, *wsvcs; /* watches */
    json_t *pods; /* "ns/name" -> latest pod */
    json_t *plabels; /* "ns\x1fk=v" -> {pod name: true} */
    json_t *jobpods; /* job uid -> {pod name: pod} */
    json_t *jobkeys; /* job uid -> "ns/name" */
    json_t *dirty_jobs; /* "ns/name" -> true */
    json_t *svcs; /* "ns/name" -> {"svc": svc|null, "members": {pod: true}, "idx": key} */
    json_t *sindex; /* "ns\x1fk=v" -> {service name: true} */
    json_t *dirty_svcs; /* "ns/name" -> true */
    loop_soon_t soon; /* the coalesced tick after watch events (soon.running: in the tick) */
    apps_t *apps; /* the apps/v1 workload controllers (sim/apps) */
    certmgr_t *certmgr; /* the simulated cert-manager (sim/certmgr) */
};

/* ---- helpers ---------------------------------------------------------------------------- */

static void s_ts(const controllers_t *c, char *buf, size_t n)
{
    rftime_format(objstore_now_ms(c->store), RFTIME_SEC, buf, n);
}

static void s_soon(void *arg)
{
    controllers_tick(arg);
}

static void s_kick(controllers_t *c)
{
    loop_soon(&c->soon);
}

static void s_split(const char *key, char *ns, size_t n, const char **name)
{
    const char *slash = strchr(key, '/');
    size_t l = slash ? (size_t)(slash - key) : 0;
    snprintf(ns, n, "%.*s", (int)l, key);
    *name = slash ? slash + 1 : key;
}

/* True when every pair of `sel` is in `labels`. An empty selector matches nothing here. */
static bool s_sel_match(const json_t *sel, const json_t *labels)
{
    if (!json_object_size(sel))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sel, k, v)
    {
        json_t *lv = json_object_get(labels, k);
        if (!json_is_string(lv) || !json_is_string(v) ||
            strcmp(json_string_value(lv), json_string_value(v)) != 0)
            return false;
    }
    return true;
}

static void s_idx_key(char *buf, size_t n, const char *ns, const char *k, const char *v)
{
    snprintf(buf, n, "%s" S_SEP "%s=%s", ns, k, v);
}

static void s_set_add(json_t *idx, const char *key, const char *member)
{
    json_t *set = json_object_get(idx, key);
    if (!set) {
        set = json_object();
        if (!set || json_object_set_new(idx, key, set) < 0)
            return;
    }
    json_object_set_new(set, member, json_true());
}

static void s_set_del(json_t *idx, const char *key, const char *member)
{
    json_t *set = json_object_get(idx, key);
    if (!set)
        return;
    json_object_del(set, member);
    if (!json_object_size(set))
        json_object_del(idx, key);
}

static bool s_pod_ready(const json_t *pod)
{
    json_t *conds = jx_get(pod, "status.conditions");
    size_t i;
    json_t *cd;
    json_array_foreach(conds, i, cd)
    {
        if (strcmp(jx_str(cd, "type", ""), "Ready") == 0)
            return strcmp(jx_str(cd, "status", ""), "True") == 0;
    }
    return false;
}

static const json_t *s_controller_ref(const json_t *obj, const char *kind)
{
    json_t *refs = jx_get(obj, "metadata.ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        if (json_is_true(json_object_get(r, "controller")) &&
            strcmp(jx_str(r, "kind", ""), kind) == 0)
            return r;
    }
    return NULL;
}

/* Creates or updates ns/name of resource r so that its top-level keys in `fields` (stolen) and
 * metadata.labels / ownerReferences given in `meta` (stolen, may be NULL) are as given.
 * Returns 1 when a write was attempted successfully, 0 otherwise. */
static int s_put(controllers_t *c, objstore_res_t *r, const char *ns, const char *name,
                 json_t *fields, json_t *meta)
{
    objstore_status_t st;
    json_t *cur = NULL;
    int rc = 0;
    if (objstore_get(c->store, r, ns, name, &cur, &st) < 0) {
        json_t *obj = json_deep_copy(fields);
        json_t *m = meta ? json_deep_copy(meta) : json_object();
        if (obj && m) {
            json_object_set_new(m, "name", json_string(name));
            json_object_set_new(m, "namespace", json_string(ns));
            json_object_set_new(obj, "metadata", m);
            rc = objstore_create(c->store, r, ns, &obj, NULL, &st) == 0;
        } else {
            json_decref(obj);
            json_decref(m);
        }
    } else {
        json_t *obj = json_copy(cur);
        json_t *m = json_copy(json_object_get(cur, "metadata"));
        if (obj && m) {
            const char *k;
            json_t *v;
            json_object_foreach(fields, k, v)
            {
                json_object_set(obj, k, v);
            }
            json_object_foreach(meta, k, v)
            {
                json_object_set(m, k, v);
            }
            json_object_set_new(obj, "metadata", m);
            objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
            rc = objstore_update(c->store, r, ns, name, &obj, &uo, NULL, NULL, &st) == 0;
        } else {
            json_decref(obj);
            json_decref(m);
        }
        json_decref(cur);
    }
    json_decref(fields);
    json_decref(meta);
    return rc;
}

/* ---- services --------------------------------------------------------------------------- */

/* Adds/removes `pod` (key ns/name) in the membership of the services indexed under its labels. */
static void s_pod_services(controllers_t *c, const char *ns, const char *name, const json_t *old,
                           const json_t *now)
{
    char ik[S_KEY_MAX], sk[S_KEY_MAX];
    for (int pass = 0; pass < 2; pass++) {
        const json_t *labels = jx_get(pass ? now : old, "metadata.labels");
        const char *lk;
        json_t *lv;
        json_object_foreach((json_t *)labels, lk, lv)
        {
            if (!json_is_string(lv))
                continue;
            s_idx_key(ik, sizeof(ik), ns, lk, json_string_value(lv));
            json_t *set = json_object_get(c->sindex, ik);
            const char *svcname;
            json_t *t;
            json_object_foreach(set, svcname, t)
            {
                snprintf(sk, sizeof(sk), "%s/%s", ns, svcname);
                json_t *info = json_object_get(c->svcs, sk);
                json_t *members = json_object_get(info, "members");
                const json_t *sel = jx_get(json_object_get(info, "svc"), "spec.selector");
                bool was = json_object_get(members, name) != NULL;
                bool is = now && s_sel_match(sel, jx_get(now, "metadata.labels"));
                if (is)
                    json_object_set_new(members, name, json_true());
                else if (was)
                    json_object_del(members, name);
                if (is || was)
                    json_object_set_new(c->dirty_svcs, sk, json_true());
            }
        }
    }
}

static void s_svc_unindex(controllers_t *c, const char *ns, const char *name, json_t *info)
{
    const char *idx = jx_str(info, "idx", NULL);
    if (idx)
        s_set_del(c->sindex, idx, name);
    (void)ns;
}

/* (Re)indexes a service and recomputes its members from the pod label index. */
static void s_svc_index(controllers_t *c, const char *ns, const char *name, json_t *info)
{
    const json_t *sel = jx_get(json_object_get(info, "svc"), "spec.selector");
    json_t *members = json_object();
    json_object_set_new(info, "members", members);
    json_object_del(info, "idx");
    if (!json_object_size(sel))
        return;
    /* Index under the pair with the fewest services already (keeps candidate lists short). */
    char best[S_KEY_MAX] = "", ik[S_KEY_MAX];
    size_t best_n = SIZE_MAX;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sel, k, v)
    {
        if (!json_is_string(v))
            continue;
        s_idx_key(ik, sizeof(ik), ns, k, json_string_value(v));
        size_t n = json_object_size(json_object_get(c->sindex, ik));
        if (n < best_n) {
            best_n = n;
            snprintf(best, sizeof(best), "%s", ik);
        }
    }
    if (!best[0])
        return;
    s_set_add(c->sindex, best, name);
    json_object_set_new(info, "idx", json_string(best));
    json_t *cands = json_object_get(c->plabels, best);
    const char *pname;
    json_t *t;
    char pk[S_KEY_MAX];
    json_object_foreach(cands, pname, t)
    {
        snprintf(pk, sizeof(pk), "%s/%s", ns, pname);
        json_t *pod = json_object_get(c->pods, pk);
        if (pod && s_sel_match(sel, jx_get(pod, "metadata.labels")))
            json_object_set_new(members, pname, json_true());
    }
}

static int s_on_svc(const objstore_event_t *ev, void *arg)
{
    controllers_t *c = arg;
    const char *ns = jx_str(ev->obj, "metadata.namespace", "");
    const char *name = jx_str(ev->obj, "metadata.name", "");
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    json_t *info = json_object_get(c->svcs, key);
    if (ev->type == OBJSTORE_DELETED) {
        if (info) {
            s_svc_unindex(c, ns, name, info);
            json_object_set_new(info, "svc", json_null());
            json_object_set_new(c->dirty_svcs, key, json_true());
            s_kick(c);
        }
        return 0;
    }
    bool reindex = true;
    if (!info) {
        info = json_object();
        if (!info || json_object_set_new(c->svcs, key, info) < 0)
            return 0;
    } else {
        json_t *old = json_object_get(info, "svc");
        reindex = !json_equal(jx_get(old, "spec.selector"), jx_get(ev->obj, "spec.selector"));
        if (reindex)
            s_svc_unindex(c, ns, name, info);
    }
    json_object_set(info, "svc", (json_t *)ev->obj);
    if (reindex)
        s_svc_index(c, ns, name, info);
    json_object_set_new(c->dirty_svcs, key, json_true());
    s_kick(c);
    return 0;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The container port named `pname` in `pod`, or -1. */
static long s_named_port(const json_t *pod, const char *pname)
{
    json_t *cs = jx_get(pod, "spec.containers");
    size_t i, j;
    json_t *ct, *p;
    json_array_foreach(cs, i, ct)
    {
        json_array_foreach(json_object_get(ct, "ports"), j, p)
        {
            if (strcmp(jx_str(p, "name", ""), pname) == 0)
                return (long)jx_int(p, "containerPort", -1);
        }
    }
    return -1;
}

/* Resolves the service's ports for `pod`: an array of {name, port, protocol}, or NULL when a
 * named targetPort is missing from the pod. */
static json_t *s_ports_for(const json_t *svc, const json_t *pod)
{
    json_t *out = json_array();
    json_t *ports = jx_get(svc, "spec.ports");
    size_t i;
    json_t *sp;
    json_array_foreach(ports, i, sp)
    {
        json_t *tp = json_object_get(sp, "targetPort");
        long port = (long)jx_int(sp, "port", 0);
        if (json_is_integer(tp))
            port = (long)json_integer_value(tp);
        else if (json_is_string(tp)) {
            port = s_named_port(pod, json_string_value(tp));
            if (port < 0) {
                json_decref(out);
                return NULL;
            }
        }
        json_t *one = json_pack("{s:I,s:s}", "port", (json_int_t)port, "protocol",
                                jx_str(sp, "protocol", "TCP"));
        if (one && json_object_get(sp, "name"))
            json_object_set_new(one, "name", json_string(jx_str(sp, "name", "")));
        if (one && json_object_get(sp, "appProtocol"))
            json_object_set_new(one, "appProtocol", json_string(jx_str(sp, "appProtocol", "")));
        json_array_append_new(out, one);
    }
    return out;
}

static void s_slice_name(const json_t *svc, const char *name, char *buf, size_t n)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    const char *uid = jx_str(svc, "metadata.uid", name);
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = uid; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    char suf[6];
    for (int i = 0; i < 5; i++) {
        suf[i] = alnum[h % (sizeof(alnum) - 1)];
        h /= (sizeof(alnum) - 1);
    }
    suf[5] = '\0';
    snprintf(buf, n, "%.57s-%s", name, suf);
}

static int s_sync_svc(controllers_t *c, const char *key)
{
    char ns[OBJSTORE_NAME_MAX];
    const char *name;
    s_split(key, ns, sizeof(ns), &name);
    json_t *info = json_object_get(c->svcs, key);
    json_t *svc = json_object_get(info, "svc");
    objstore_status_t st;
    int writes = 0;
    if (!info)
        return 0;
    if (!json_is_object(svc)) {
        /* Deleted: the Endpoints goes with it (the slice is also garbage collected). */
        if (c->reps && objstore_delete(c->store, c->reps, ns, name, NULL, NULL, NULL, &st) == 0)
            writes++;
        const char *slice = jx_str(info, "slice", NULL);
        if (c->rslices && slice &&
            objstore_delete(c->store, c->rslices, ns, slice, NULL, NULL, NULL, &st) == 0)
            writes++;
        json_object_del(c->svcs, key);
        return writes;
    }
    if (!json_object_size(jx_get(svc, "spec.selector")))
        return 0;
    bool publish = jx_bool(svc, "spec.publishNotReadyAddresses", false);
    json_t *members = json_object_get(info, "members");
    size_t n = json_object_size(members);
    const char **names = calloc(n ? n : 1, sizeof(*names));
    if (!names)
        return 0;
    size_t cnt = 0;
    const char *pn;
    json_t *t;
    json_object_foreach(members, pn, t)
    {
        names[cnt++] = pn;
    }
    qsort(names, cnt, sizeof(*names), s_cmp_str);
    json_t *eps = json_array(), *addrs = json_array(), *nready = json_array();
    json_t *ports = NULL;
    char pk[S_KEY_MAX];
    for (size_t i = 0; i < cnt; i++) {
        snprintf(pk, sizeof(pk), "%s/%s", ns, names[i]);
        json_t *pod = json_object_get(c->pods, pk);
        const char *ip = jx_str(pod, "status.podIP", NULL);
        const char *phase = jx_str(pod, "status.phase", "");
        if (!pod || !ip || !*ip || strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)
            continue;
        json_t *pp = s_ports_for(svc, pod);
        if (!pp)
            continue;
        if (!ports)
            ports = pp;
        else
            json_decref(pp);
        bool ready = s_pod_ready(pod);
        bool term = jx_get(pod, "metadata.deletionTimestamp") != NULL;
        const char *node = jx_str(pod, "spec.nodeName", "");
        json_t *ref = json_pack("{s:s,s:s,s:s,s:s}", "kind", "Pod", "namespace", ns, "name",
                                names[i], "uid", jx_str(pod, "metadata.uid", ""));
        json_array_append_new(eps,
                              json_pack("{s:[s],s:{s:b,s:b,s:b},s:s,s:O}", "addresses", ip,
                                        "conditions", "ready", ready && !term, "serving", ready,
                                        "terminating", term, "nodeName", node, "targetRef", ref));
        if (!term || publish)
            json_array_append_new(
                ready || publish ? addrs : nready,
                json_pack("{s:s,s:s,s:O}", "ip", ip, "nodeName", node, "targetRef", ref));
        json_decref(ref);
    }
    free(names);
    if (!ports)
        ports = s_ports_for(svc, NULL);
    if (!ports)
        ports = json_array();
    json_t *labels = json_copy(jx_get(svc, "metadata.labels"));
    if (!labels)
        labels = json_object();
    json_t *owner = json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion", "v1", "kind", "Service",
                              "name", name, "uid", jx_str(svc, "metadata.uid", ""), "controller", 1,
                              "blockOwnerDeletion", 1);
    if (c->rslices) {
        char sname[128];
        s_slice_name(svc, name, sname, sizeof(sname));
        json_object_set_new(info, "slice", json_string(sname));
        json_t *sl = json_deep_copy(labels);
        if (sl) {
            json_object_set_new(sl, "kubernetes.io/service-name", json_string(name));
            json_object_set_new(sl, "endpointslice.kubernetes.io/managed-by",
                                json_string(CONTROLLERS_SLICE_MANAGER));
        }
        json_t *fields =
            json_pack("{s:s,s:s,s:s,s:O,s:O}", "apiVersion", "discovery.k8s.io/v1", "kind",
                      "EndpointSlice", "addressType", "IPv4", "endpoints", eps, "ports", ports);
        json_t *meta = json_pack("{s:o,s:O}", "labels", sl, "ownerReferences", owner);
        writes += s_put(c, c->rslices, ns, sname, fields, meta);
    }
    if (c->reps) {
        json_t *subsets = json_array();
        if (json_array_size(addrs) || json_array_size(nready)) {
            json_t *sub = json_pack("{s:O}", "ports", ports);
            if (json_array_size(addrs))
                json_object_set(sub, "addresses", addrs);
            if (json_array_size(nready))
                json_object_set(sub, "notReadyAddresses", nready);
            json_array_append_new(subsets, sub);
        }
        json_t *fields =
            json_pack("{s:s,s:s,s:o}", "apiVersion", "v1", "kind", "Endpoints", "subsets", subsets);
        if (fields && !json_array_size(subsets))
            json_object_del(fields, "subsets");
        json_t *meta = json_pack("{s:O}", "labels", labels);
        writes += s_put(c, c->reps, ns, name, fields, meta);
    }
    json_decref(labels);
    json_decref(owner);
    json_decref(eps);
    json_decref(addrs);
    json_decref(nready);
    json_decref(ports);
    return writes;
}

/* ---- pods ------------------------------------------------------------------------------- */

static void s_plabels(controllers_t *c, const char *ns, const char *name, const json_t *pod,
                      bool add)
{
    char ik[S_KEY_MAX];
    const char *k;
    json_t *v;
    json_object_foreach(jx_get(pod, "metadata.labels"), k, v)
    {
        if (!json_is_string(v))
            continue;
        s_idx_key(ik, sizeof(ik), ns, k, json_string_value(v));
        if (add)
            s_set_add(c->plabels, ik, name);
        else
            s_set_del(c->plabels, ik, name);
    }
}

static int s_on_pod(const objstore_event_t *ev, void *arg)
{
    controllers_t *c = arg;
    const char *ns = jx_str(ev->obj, "metadata.namespace", "");
    const char *name = jx_str(ev->obj, "metadata.name", "");
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    json_t *old = json_object_get(c->pods, key);
    json_incref(old);
    bool del = ev->type == OBJSTORE_DELETED;
    if (!json_equal(jx_get(old, "metadata.labels"), jx_get(ev->obj, "metadata.labels")) || del) {
        s_plabels(c, ns, name, old, false);
        if (!del)
            s_plabels(c, ns, name, ev->obj, true);
    }
    if (del)
        json_object_del(c->pods, key);
    else
        json_object_set(c->pods, key, (json_t *)ev->obj);
    s_pod_services(c, ns, name, old, del ? NULL : ev->obj);
    const json_t *ref = s_controller_ref(ev->obj, "Job");
    if (ref) {
        const char *juid = jx_str(ref, "uid", "");
        json_t *set = json_object_get(c->jobpods, juid);
        if (del) {
            json_object_del(set, name);
        } else {
            if (!set) {
                set = json_object();
                json_object_set_new(c->jobpods, juid, set);
            }
            json_object_set(set, name, (json_t *)ev->obj);
        }
        json_t *jk = json_object_get(c->jobkeys, juid);
        if (json_is_string(jk))
            json_object_set_new(c->dirty_jobs, json_string_value(jk), json_true());
    }
    json_decref(old);
    if (json_object_size(c->dirty_jobs) || json_object_size(c->dirty_svcs))
        s_kick(c);
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------- */

static int s_on_job(const objstore_event_t *ev, void *arg)
{
    controllers_t *c = arg;
    const char *uid = jx_str(ev->obj, "metadata.uid", "");
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", jx_str(ev->obj, "metadata.namespace", ""),
             jx_str(ev->obj, "metadata.name", ""));
    if (ev->type == OBJSTORE_DELETED) {
        json_object_del(c->jobkeys, uid);
        json_object_del(c->jobpods, uid);
        return 0;
    }
    json_object_set_new(c->jobkeys, uid, json_string(key));
    json_object_set_new(c->dirty_jobs, key, json_true());
    s_kick(c);
    return 0;
}

static bool s_job_finished(const json_t *job)
{
    json_t *conds = jx_get(job, "status.conditions");
    size_t i;
    json_t *cd;
    json_array_foreach(conds, i, cd)
    {
        const char *t = jx_str(cd, "type", "");
        if ((strcmp(t, "Complete") == 0 || strcmp(t, "Failed") == 0) &&
            strcmp(jx_str(cd, "status", ""), "True") == 0)
            return true;
    }
    return false;
}

static int s_job_create_pod(controllers_t *c, const json_t *job, const char *ns)
{
    const char *jname = jx_str(job, "metadata.name", "");
    const char *juid = jx_str(job, "metadata.uid", "");
    const json_t *tmpl = jx_get(job, "spec.template");
    json_t *labels = json_copy(jx_get(tmpl, "metadata.labels"));
    if (!labels)
        labels = json_object();
    json_object_set_new(labels, "batch.kubernetes.io/job-name", json_string(jname));
    json_object_set_new(labels, "job-name", json_string(jname));
    json_object_set_new(labels, "batch.kubernetes.io/controller-uid", json_string(juid));
    json_object_set_new(labels, "controller-uid", json_string(juid));
    char gen[OBJSTORE_NAME_MAX];
    snprintf(gen, sizeof(gen), "%s-", jname);
    json_t *spec = json_deep_copy(jx_get(tmpl, "spec"));
    json_t *pod = json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},s:o}",
                            "apiVersion", "v1", "kind", "Pod", "metadata", "generateName", gen,
                            "namespace", ns, "labels", labels, "ownerReferences", "apiVersion",
                            "batch/v1", "kind", "Job", "name", jname, "uid", juid, "controller", 1,
                            "blockOwnerDeletion", 1, "spec", spec ? spec : json_object());
    if (!pod)
        return 0;
    json_t *ann = jx_get(tmpl, "metadata.annotations");
    if (ann)
        json_object_set_new(json_object_get(pod, "metadata"), "annotations", json_deep_copy(ann));
    objstore_status_t st;
    return objstore_create(c->store, c->rpods, ns, &pod, NULL, &st) == 0;
}

static json_t *s_job_cond(const char *type, const char *reason, const char *msg, const char *ts)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", type, "status", "True", "reason", reason,
                     "message", msg, "lastProbeTime", ts, "lastTransitionTime", ts);
}

static int s_sync_job(controllers_t *c, const char *key)
{
    char ns[OBJSTORE_NAME_MAX];
    const char *name;
    s_split(key, ns, sizeof(ns), &name);
    json_t *job = NULL;
    objstore_status_t st;
    if (!c->rjobs || objstore_get(c->store, c->rjobs, ns, name, &job, &st) < 0)
        return 0;
    int writes = 0;
    if (s_job_finished(job) || jx_get(job, "metadata.deletionTimestamp")) {
        json_decref(job);
        return 0;
    }
    const char *juid = jx_str(job, "metadata.uid", "");
    json_t *pods = json_object_get(c->jobpods, juid);
    json_int_t active = 0, ready = 0, succ = 0, fail = 0, term = 0;
    const char *pn;
    json_t *pod;
    json_object_foreach(pods, pn, pod)
    {
        const char *phase = jx_str(pod, "status.phase", "");
        bool deleting = jx_get(pod, "metadata.deletionTimestamp") != NULL;
        if (strcmp(phase, "Succeeded") == 0)
            succ++;
        else if (strcmp(phase, "Failed") == 0)
            fail++;
        else if (deleting)
            term++;
        else {
            active++;
            ready += s_pod_ready(pod);
        }
    }
    json_int_t psucc = jx_int(job, "status.succeeded", 0), pfail = jx_int(job, "status.failed", 0);
    succ = succ > psucc ? succ : psucc;
    fail = fail > pfail ? fail : pfail;
    json_int_t completions = jx_int(job, "spec.completions", 1);
    json_int_t parallelism = jx_int(job, "spec.parallelism", 1);
    json_int_t backoff = jx_int(job, "spec.backoffLimit", CONTROLLERS_BACKOFF_LIMIT);
    char ts[40];
    s_ts(c, ts, sizeof(ts));
    json_t *status = json_copy(json_object_get(job, "status"));
    if (!status)
        status = json_object();
    if (!json_object_get(status, "startTime"))
        json_object_set_new(status, "startTime", json_string(ts));
    json_t *conds = NULL;
    bool finish = false;
    if (succ >= completions) {
        const char *m = "Reached expected number of succeeded pods";
        conds = json_pack("[o,o]", s_job_cond("SuccessCriteriaMet", "CompletionsReached", m, ts),
                          s_job_cond("Complete", "CompletionsReached", m, ts));
        json_object_set_new(status, "completionTime", json_string(ts));
        finish = true;
    } else if (fail > backoff) {
        const char *m = "Job has reached the specified backoff limit";
        conds = json_pack("[o,o]", s_job_cond("FailureTarget", "BackoffLimitExceeded", m, ts),
                          s_job_cond("Failed", "BackoffLimitExceeded", m, ts));
        finish = true;
    } else {
        json_int_t want = completions - succ;
        want = want < parallelism ? want : parallelism;
        for (json_int_t i = active; i < want; i++) {
            int ok = s_job_create_pod(c, job, ns);
            writes += ok;
            active += ok;
        }
    }
    if (finish) {
        json_object_foreach(pods, pn, pod)
        {
            const char *phase = jx_str(pod, "status.phase", "");
            if (strcmp(phase, "Succeeded") && strcmp(phase, "Failed") &&
                !jx_get(pod, "metadata.deletionTimestamp") &&
                objstore_delete(c->store, c->rpods, ns, pn, NULL, NULL, NULL, &st) == 0)
                writes++;
        }
        active = ready = 0;
        json_object_set_new(status, "conditions", conds);
    }
    json_object_set_new(status, "active", json_integer(active));
    json_object_set_new(status, "ready", json_integer(ready));
    json_object_set_new(status, "succeeded", json_integer(succ));
    json_object_set_new(status, "failed", json_integer(fail));
    json_object_set_new(status, "terminating", json_integer(term));
    json_object_set_new(status, "uncountedTerminatedPods", json_object());
    json_t *obj = json_copy(job);
    json_decref(job);
    if (!obj) {
        json_decref(status);
        return writes;
    }
    json_object_set_new(obj, "status", status);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    if (objstore_update(c->store, c->rjobs, ns, name, &obj, &uo, NULL, NULL, &st) == 0)
        writes++;
    return writes;
}

/* ---- public ----------------------------------------------------------------------------- */

/* Pops up to `budget` keys from `dirty` and runs fn on each. */
static int s_drain(controllers_t *c, json_t *dirty, int (*fn)(controllers_t *, const char *),
                   size_t *budget)
{
    int writes = 0;
    while (json_object_size(dirty) && *budget) {
        void *it = json_object_iter(dirty);
        char key[S_KEY_MAX];
        snprintf(key, sizeof(key), "%s", json_object_iter_key(it));
        json_object_del(dirty, key);
        writes += fn(c, key);
        (*budget)--;
    }
    return writes;
}

int controllers_tick(controllers_t *c)
{
    if (!c)
        return 0;
    c->soon.running = true;
    size_t budget = CONTROLLERS_TICK_BUDGET;
    int writes = s_drain(c, c->dirty_jobs, s_sync_job, &budget);
    writes += s_drain(c, c->dirty_svcs, s_sync_svc, &budget);
    writes += apps_tick(c->apps);
    c->soon.running = false;
    if (json_object_size(c->dirty_jobs) || json_object_size(c->dirty_svcs))
        s_kick(c);
    return writes;
}

controllers_t *controllers_new(loop_t *loop, objstore_t *store)
{
    if (!store)
        return NULL;
    controllers_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    loop_soon_init(&c->soon, loop, s_soon, c);
    c->store = store;
    c->rpods = objstore_find(store, "", "pods");
    c->rjobs = objstore_find(store, "batch", "jobs");
    c->rsvcs = objstore_find(store, "", "services");
    c->reps = objstore_find(store, "", "endpoints");
    c->rslices = objstore_find(store, "discovery.k8s.io", "endpointslices");
    c->pods = json_object();
    c->plabels = json_object();
    c->jobpods = json_object();
    c->jobkeys = json_object();
    c->dirty_jobs = json_object();
    c->svcs = json_object();
    c->sindex = json_object();
    c->dirty_svcs = json_object();
    objstore_status_t st;
    if (!c->rpods || !c->pods || !c->plabels || !c->jobpods || !c->jobkeys || !c->dirty_jobs ||
        !c->svcs || !c->sindex || !c->dirty_svcs)
        goto fail;
    if (objstore_watch(store, c->rpods, NULL, NULL, NULL, NULL, s_on_pod, c, &c->wpods, &st) < 0)
        goto fail;
    if (c->rjobs &&
        objstore_watch(store, c->rjobs, NULL, NULL, NULL, NULL, s_on_job, c, &c->wjobs, &st) < 0)
        goto fail;
    if (c->rsvcs &&
        objstore_watch(store, c->rsvcs, NULL, NULL, NULL, NULL, s_on_svc, c, &c->wsvcs, &st) < 0)
        goto fail;
    if (!(c->apps = apps_new(loop, store)))
        goto fail;
    if (!(c->certmgr = certmgr_new(loop, store)))
        goto fail;
    return c;
fail:
    controllers_destroy(&c);
    return NULL;
}

void controllers_destroy(controllers_t **cp)
{
    if (!cp || !*cp)
        return;
    controllers_t *c = *cp;
    objstore_watch_stop(c->store, &c->wpods);
    objstore_watch_stop(c->store, &c->wjobs);
    objstore_watch_stop(c->store, &c->wsvcs);
    apps_destroy(&c->apps);
    certmgr_destroy(&c->certmgr);
    loop_soon_cancel(&c->soon);
    json_decref(c->pods);
    json_decref(c->plabels);
    json_decref(c->jobpods);
    json_decref(c->jobkeys);
    json_decref(c->dirty_jobs);
    json_decref(c->svcs);
    json_decref(c->sindex);
    json_decref(c->dirty_svcs);
    free(c);
    *cp = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"
#include "simtest.h"

/* ---- self-test -------------------------------------------------------------------------- */

#include "kubelet.h"

int controllers_test(bool verbose)
{
    int failed = 0;
    simtest_clock_t clk = {.now = SIMTEST_T0};
    objstore_t *s = objstore_new(0);
    CHECK(controllers_new(NULL, s) == NULL); /* no pods registered */
    CHECK(simtest_core(s, &clk, NULL, 0) == 0);
    objstore_status_t st;
    json_t *o = NULL;
    kubelet_opts_t ko;
    kubelet_opts_default(&ko);
    ko.nodes = 2;
    ko.jitter_ms = 0;
    ko.create_ms = 100;
    ko.ready_ms = 100;
    ko.job_run_ms = 300;
    kubelet_t *k = kubelet_new(NULL, s, &ko);
    controllers_t *c = controllers_new(NULL, s);
    CHECK(k && c);
    objstore_res_t *rp = objstore_find(s, "", "pods");
    objstore_res_t *rs = objstore_find(s, "", "services");
    objstore_res_t *rj = objstore_find(s, "batch", "jobs");
    objstore_res_t *re = objstore_find(s, "", "endpoints");

    /* A Job runs its pod to Succeeded and becomes Complete. */
    o = json_pack("{s:{s:s},s:{s:{s:{s:{s:s}},s:{s:s,s:[{s:s,s:s}]}}}}", "metadata", "name", "pi",
                  "spec", "template", "metadata", "labels", "app", "pi", "spec", "restartPolicy",
                  "Never", "containers", "name", "pi", "image", "perl");
    CHECK(objstore_create(s, rj, "default", &o, NULL, &st) == 0);
    simtest_step(k, c, &clk, 100);
    objstore_list_t l;
    CHECK(objstore_list(s, rp, NULL, &l, &st) == 0);
    CHECK(json_array_size(l.items) == 1);
    json_t *jp = json_array_get(l.items, 0);
    CHECK(strncmp(jx_str(jp, "metadata.name", ""), "pi-", 3) == 0 &&
          strlen(jx_str(jp, "metadata.name", "")) == 8);
    CHECK(strcmp(jx_str(jx_get(jp, "metadata.labels"), "job-name", ""), "pi") == 0);
    CHECK(s_controller_ref(jp, "Job") != NULL);
    objstore_list_free(&l);
    json_t *job = NULL;
    CHECK(objstore_get(s, rj, "default", "pi", &job, &st) == 0);
    CHECK(jx_int(job, "status.active", 0) == 1);
    CHECK(jx_get(job, "status.startTime") != NULL);
    json_decref(job);
    simtest_step(k, c, &clk, 800);
    CHECK(objstore_get(s, rj, "default", "pi", &job, &st) == 0);
    CHECK(jx_int(job, "status.succeeded", 0) == 1);
    CHECK(jx_int(job, "status.active", 1) == 0);
    CHECK(s_job_finished(job));
    CHECK(strcmp(jx_str(json_array_get(jx_get(job, "status.conditions"), 1), "type", ""),
                 "Complete") == 0);
    CHECK(jx_get(job, "status.completionTime") != NULL);
    json_decref(job);

    /* A failing Job with backoffLimit 1: two pods fail, then Failed. */
    o = json_pack("{s:{s:s},s:{s:i,s:{s:{s:{s:s}},s:{s:s,s:[{s:s,s:s}]}}}}", "metadata", "name",
                  "bad", "spec", "backoffLimit", 1, "template", "metadata", "annotations",
                  KUBELET_ANN_EXIT_CODE, "2", "spec", "restartPolicy", "Never", "containers",
                  "name", "b", "image", "x");
    CHECK(objstore_create(s, rj, "default", &o, NULL, &st) == 0);
    simtest_step(k, c, &clk, 2000);
    CHECK(objstore_get(s, rj, "default", "bad", &job, &st) == 0);
    CHECK(jx_int(job, "status.failed", 0) == 2);
    CHECK(strcmp(jx_str(json_array_get(jx_get(job, "status.conditions"), 1), "reason", ""),
                 "BackoffLimitExceeded") == 0);
    json_decref(job);

    /* EndpointSlice + Endpoints follow readiness; named targetPort resolves. */
    o = json_pack("{s:{s:s},s:{s:{s:s},s:[{s:s,s:i,s:s}]}}", "metadata", "name", "web", "spec",
                  "selector", "app", "web", "ports", "name", "http", "port", 80, "targetPort",
                  "http");
    CHECK(objstore_create(s, rs, "default", &o, NULL, &st) == 0);
    o = json_pack("{s:{s:s,s:{s:s}},s:{s:[{s:s,s:s,s:[{s:s,s:i}]}]}}", "metadata", "name", "w1",
                  "labels", "app", "web", "spec", "containers", "name", "c", "image", "nginx",
                  "ports", "name", "http", "containerPort", 8080);
    CHECK(objstore_create(s, rp, "default", &o, NULL, &st) == 0);
    controllers_tick(c);
    json_t *ep = NULL;
    CHECK(objstore_get(s, re, "default", "web", &ep, &st) == 0);
    CHECK(jx_get(ep, "subsets") == NULL);
    json_decref(ep);
    simtest_step(k, c, &clk, 150);
    CHECK(objstore_get(s, re, "default", "web", &ep, &st) == 0);
    json_t *sub = json_array_get(jx_get(ep, "subsets"), 0);
    CHECK(json_array_size(json_object_get(sub, "notReadyAddresses")) == 1);
    json_decref(ep);
    simtest_step(k, c, &clk, 150);
    CHECK(objstore_get(s, re, "default", "web", &ep, &st) == 0);
    sub = json_array_get(jx_get(ep, "subsets"), 0);
    CHECK(json_array_size(json_object_get(sub, "addresses")) == 1);
    CHECK(jx_int(json_array_get(json_object_get(sub, "ports"), 0), "port", 0) == 8080);
    json_decref(ep);
    objstore_res_t *rsl = objstore_find(s, "discovery.k8s.io", "endpointslices");
    CHECK(objstore_list(s, rsl, NULL, &l, &st) == 0);
    CHECK(json_array_size(l.items) == 1);
    json_t *sl = json_array_get(l.items, 0);
    CHECK(strcmp(json_string_value(
                     jx_getv(sl, "metadata", "labels", "kubernetes.io/service-name", NULL)),
                 "web") == 0);
    json_t *e0 = json_array_get(json_object_get(sl, "endpoints"), 0);
    CHECK(jx_bool(e0, "conditions.ready", false));
    if (verbose)
        printf("slice %s\n", jx_str(sl, "metadata.name", ""));
    objstore_list_free(&l);
    /* Deleting the pod: terminating in the slice, gone from Endpoints addresses, then gone. */
    CHECK(objstore_delete(s, rp, "default", "w1", NULL, NULL, NULL, &st) == 0);
    controllers_tick(c);
    CHECK(objstore_list(s, rsl, NULL, &l, &st) == 0);
    e0 = json_array_get(json_object_get(json_array_get(l.items, 0), "endpoints"), 0);
    CHECK(jx_bool(e0, "conditions.terminating", false));
    objstore_list_free(&l);
    simtest_step(k, c, &clk, 1200);
    CHECK(objstore_list(s, rsl, NULL, &l, &st) == 0);
    CHECK(json_array_size(json_object_get(json_array_get(l.items, 0), "endpoints")) == 0);
    objstore_list_free(&l);
    /* Service deleted: Endpoints and slice removed. */
    CHECK(objstore_delete(s, rs, "default", "web", NULL, NULL, NULL, &st) == 0);
    controllers_tick(c);
    CHECK(objstore_get(s, re, "default", "web", &ep, &st) == ERR_NOTFOUND);
    CHECK(objstore_res_count(rsl) == 0);

    controllers_destroy(&c);
    CHECK(c == NULL);
    controllers_destroy(&c);
    kubelet_destroy(&k);
    objstore_destroy(&s);
    return SELFTEST_RESULT("controllers", verbose);
}

#endif /* RF_SELFTEST */
