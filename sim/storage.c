/*
 * storage: PersistentVolumeClaims, PersistentVolumes, StorageClasses and NetworkPolicies in
 * kubesim. See storage.h.
 */
#include "storage.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 600 /* "ns/name" */
#define S_SPEC_IMMUTABLE                                                                           \
    "spec is immutable after creation except resources.requests for bound claims"

struct storage {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    objstore_res_t *rpvc, *rpv, *rsc; /* resources */
    objstore_watch_t *wpvc, *wsc; /* watches */
    json_t *pending; /* "ns/name" -> true: claims not Bound yet */
    json_t *dirty; /* "ns/name" -> true: claims to try binding */
    json_t *released; /* PV name -> true: volumes whose claim went */
    loop_soon_t soon; /* the coalesced tick after watch events (soon.running: in the tick) */
};

/* ---- admission -------------------------------------------------------------------------- */

static bool s_invalid(objstore_status_t *st, const char *kind, const char *group, const json_t *obj,
                      const char *cause, const char *field, const char *fmt, ...)
{
    memset(st, 0, sizeof(*st));
    char detail[OBJSTORE_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    const char *name = jx_str(obj, "metadata.name", "");
    st->code = 422;
    st->reason = "Invalid";
    snprintf(st->message, sizeof(st->message), "%s%s%s \"%s\" is invalid: %s: %s", kind,
             group[0] ? "." : "", group, name, field, detail);
    snprintf(st->name, sizeof(st->name), "%s", name);
    snprintf(st->group, sizeof(st->group), "%s", group);
    snprintf(st->kind, sizeof(st->kind), "%s", kind);
    st->cause_reason = cause;
    snprintf(st->cause_message, sizeof(st->cause_message), "%s", detail);
    snprintf(st->cause_field, sizeof(st->cause_field), "%s", field);
    return false;
}

/* Annotation (or label) k of the map ann ("" when absent): keys hold dots, no paths. */
static const char *s_ann(const json_t *ann, const char *k)
{
    const char *v = json_string_value(json_object_get(ann, k));
    return v ? v : "";
}

/* The name of the default StorageClass (the newest one annotated default, as kube), or NULL. */
static char *s_default_class(objstore_t *s)
{
    objstore_res_t *r = objstore_find(s, "storage.k8s.io", "storageclasses");
    if (!r)
        return NULL;
    objstore_list_t l;
    objstore_status_t st;
    memset(&l, 0, sizeof(l));
    if (objstore_list(s, r, NULL, &l, &st) < 0)
        return NULL;
    const char *best = NULL, *best_ts = "";
    size_t i;
    json_t *sc;
    json_array_foreach(l.items, i, sc)
    {
        const json_t *ann = jx_get(sc, "metadata.annotations");
        const char *v = s_ann(ann, STORAGE_ANN_DEFAULT);
        if (!v[0])
            v = s_ann(ann, "storageclass.beta.kubernetes.io/is-default-class");
        if (strcmp(v, "true") != 0)
            continue;
        const char *ts = jx_str(sc, "metadata.creationTimestamp", "");
        if (!best || strcmp(ts, best_ts) > 0 ||
            (strcmp(ts, best_ts) == 0 && strcmp(jx_str(sc, "metadata.name", ""), best) < 0)) {
            best = jx_str(sc, "metadata.name", "");
            best_ts = ts;
        }
    }
    char *out = best ? strdup(best) : NULL;
    objstore_list_free(&l);
    return out;
}

static bool s_admit_pvc(objstore_t *s, json_t *obj, const json_t *old, objstore_status_t *st)
{
    json_t *spec = jx_child_obj(obj, "spec");
    if (!spec)
        return s_invalid(st, "PersistentVolumeClaim", "", obj, "FieldValueRequired", "spec",
                         "Required value");
    if (!old) {
        /* DefaultStorageClass admission: only an absent class, never "" */
        if (!json_object_get(spec, "storageClassName") &&
            !s_ann(jx_get(obj, "metadata.annotations"),
                   "volume.beta.kubernetes.io/storage-class")[0]) {
            char *def = s_default_class(s);
            if (def)
                json_object_set_new(spec, "storageClassName", json_string(def));
            free(def);
        }
        if (!json_object_get(spec, "volumeMode"))
            json_object_set_new(spec, "volumeMode", json_string("Filesystem"));
    }
    if (json_array_size(json_object_get(spec, "accessModes")) == 0)
        return s_invalid(st, "PersistentVolumeClaim", "", obj, "FieldValueRequired",
                         "spec.accessModes", "Required value: at least 1 access mode is required");
    if (!jx_get(spec, "resources.requests.storage"))
        return s_invalid(st, "PersistentVolumeClaim", "", obj, "FieldValueRequired",
                         "spec.resources[storage]", "Required value");
    if (!old)
        return true;
    /* kube's ValidatePersistentVolumeClaimUpdate: the spec is immutable, except that volumeName
     * may be set once and resources.requests may change on a bound claim */
    json_t *a = json_deep_copy(jx_get(old, "spec")), *b = json_deep_copy(spec);
    if (!a || !b) {
        json_decref(a);
        json_decref(b);
        return s_invalid(st, "PersistentVolumeClaim", "", obj, "InternalError", "spec",
                         "out of memory");
    }
    if (!jx_str(a, "volumeName", "")[0])
        json_object_del(a, "volumeName"), json_object_del(b, "volumeName");
    if (!json_object_get(b, "volumeMode") && json_object_get(a, "volumeMode"))
        json_object_set(b, "volumeMode", json_object_get(a, "volumeMode"));
    if (strcmp(jx_str(old, "status.phase", ""), "Bound") == 0) {
        json_t *ra = json_object_get(a, "resources"), *rb = json_object_get(b, "resources");
        if (json_is_object(ra))
            json_object_del(ra, "requests");
        if (json_is_object(rb))
            json_object_del(rb, "requests");
    }
    bool same = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (!same)
        return s_invalid(st, "PersistentVolumeClaim", "", obj, "FieldValueForbidden", "spec",
                         "Forbidden: %s", S_SPEC_IMMUTABLE);
    return true;
}

/* Defaults and validates one NetworkPolicy port list (ingress[i].ports or egress[i].ports). */
static bool s_np_ports(json_t *obj, json_t *ports, const char *path, objstore_status_t *st)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        if (!json_is_object(p))
            continue;
        const char *proto = jx_str(p, "protocol", NULL);
        if (!proto) {
            json_object_set_new(p, "protocol", json_string("TCP"));
            continue;
        }
        if (strcmp(proto, "TCP") && strcmp(proto, "UDP") && strcmp(proto, "SCTP")) {
            char field[160];
            snprintf(field, sizeof(field), "%s[%zu].protocol", path, i);
            return s_invalid(st, "NetworkPolicy", "networking.k8s.io", obj,
                             "FieldValueNotSupported", field,
                             "Unsupported value: \"%s\": supported values: \"TCP\", \"UDP\", "
                             "\"SCTP\"",
                             proto);
        }
    }
    return true;
}

static bool s_admit_netpol(json_t *obj, objstore_status_t *st)
{
    json_t *spec = jx_child_obj(obj, "spec");
    if (!spec)
        return true;
    static const char *const dirs[2] = {"ingress", "egress"};
    for (int d = 0; d < 2; d++) {
        size_t i;
        json_t *rule;
        json_array_foreach(json_object_get(spec, dirs[d]), i, rule)
        {
            char path[96];
            snprintf(path, sizeof(path), "spec.%s[%zu].ports", dirs[d], i);
            if (!s_np_ports(obj, json_object_get(rule, "ports"), path, st))
                return false;
        }
    }
    json_t *types = json_object_get(spec, "policyTypes");
    if (json_array_size(types) == 0) {
        /* SetDefaults_NetworkPolicy */
        json_t *t = json_pack("[s]", "Ingress");
        if (json_array_size(json_object_get(spec, "egress")) > 0)
            json_array_append_new(t, json_string("Egress"));
        json_object_set_new(spec, "policyTypes", t);
        return true;
    }
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *v = json_string_value(t) ? json_string_value(t) : "";
        if (strcmp(v, "Ingress") && strcmp(v, "Egress")) {
            char field[64];
            snprintf(field, sizeof(field), "spec.policyTypes[%zu]", i);
            return s_invalid(st, "NetworkPolicy", "networking.k8s.io", obj,
                             "FieldValueNotSupported", field,
                             "Unsupported value: \"%s\": supported values: \"Ingress\", "
                             "\"Egress\"",
                             v);
        }
    }
    if (json_array_size(types) > 2)
        return s_invalid(st, "NetworkPolicy", "networking.k8s.io", obj, "FieldValueInvalid",
                         "spec.policyTypes",
                         "Invalid value: %zu: may not specify more than two "
                         "policyTypes",
                         json_array_size(types));
    return true;
}

bool storage_admit(objstore_t *s, const char *group, const char *resource, json_t *obj,
                   const json_t *old, objstore_status_t *st)
{
    if (!json_is_object(obj))
        return true;
    if (!group[0] && strcmp(resource, "persistentvolumeclaims") == 0)
        return s_admit_pvc(s, obj, old, st);
    if (strcmp(group, "networking.k8s.io") == 0 && strcmp(resource, "networkpolicies") == 0)
        return s_admit_netpol(obj, st);
    return true;
}

int storage_bootstrap(objstore_t *s)
{
    objstore_res_t *r = objstore_find(s, "storage.k8s.io", "storageclasses");
    if (!r)
        return ERR_NOTFOUND;
    json_t *cur = NULL;
    objstore_status_t st;
    if (objstore_get(s, r, NULL, STORAGE_DEFAULT_CLASS, &cur, &st) == 0) {
        json_decref(cur);
        return 0;
    }
    json_t *sc =
        json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:s,s:s,s:s}", "apiVersion", "storage.k8s.io/v1",
                  "kind", "StorageClass", "metadata", "name", STORAGE_DEFAULT_CLASS, "annotations",
                  STORAGE_ANN_DEFAULT, "true", "provisioner", STORAGE_PROVISIONER, "reclaimPolicy",
                  "Delete", "volumeBindingMode", "Immediate");
    if (!sc)
        return ERR_NOMEM;
    return objstore_create(s, r, NULL, &sc, NULL, &st) < 0 ? ERR_NOMEM : 0;
}

/* ---- provisioner ------------------------------------------------------------------------ */

static void s_soon(void *arg)
{
    storage_tick(arg);
}

static void s_kick(storage_t *c)
{
    loop_soon(&c->soon);
}

static void s_key(const json_t *o, char *key, size_t n)
{
    snprintf(key, n, "%s/%s", jx_str(o, "metadata.namespace", ""), jx_str(o, "metadata.name", ""));
}

static int s_on_pvc(const objstore_event_t *ev, void *arg)
{
    storage_t *c = arg;
    char key[S_KEY_MAX];
    s_key(ev->obj, key, sizeof(key));
    if (ev->type == OBJSTORE_DELETED) {
        json_object_del(c->pending, key);
        json_object_del(c->dirty, key);
        const char *pv = jx_str(ev->obj, "spec.volumeName", "");
        if (pv[0]) {
            json_object_set_new(c->released, pv, json_true());
            s_kick(c);
        }
        return 0;
    }
    if (strcmp(jx_str(ev->obj, "status.phase", ""), "Bound") == 0) {
        json_object_del(c->pending, key);
        return 0;
    }
    json_object_set_new(c->pending, key, json_true());
    json_object_set_new(c->dirty, key, json_true());
    s_kick(c);
    return 0;
}

static int s_on_sc(const objstore_event_t *ev, void *arg)
{
    storage_t *c = arg;
    if (ev->type == OBJSTORE_DELETED)
        return 0;
    json_object_update(c->dirty, c->pending); /* a class appeared: try the waiting claims */
    if (json_object_size(c->dirty))
        s_kick(c);
    return 0;
}

/* Binds ns/name when its class is ours and Immediate. Returns the writes. */
static int s_bind(storage_t *c, const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash)
        return 0;
    char ns[S_KEY_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
    const char *name = slash + 1;
    objstore_status_t st;
    json_t *pvc = NULL, *sc = NULL;
    if (objstore_get(c->store, c->rpvc, ns, name, &pvc, &st) < 0)
        return 0;
    int writes = 0;
    const char *cls = jx_str(pvc, "spec.storageClassName", "");
    if (jx_get(pvc, "metadata.deletionTimestamp") ||
        strcmp(jx_str(pvc, "status.phase", ""), "Bound") == 0 || !cls[0] ||
        objstore_get(c->store, c->rsc, NULL, cls, &sc, &st) < 0 ||
        strcmp(jx_str(sc, "provisioner", ""), STORAGE_PROVISIONER) != 0 ||
        strcmp(jx_str(sc, "volumeBindingMode", "Immediate"), "Immediate") != 0)
        goto out;
    char pvname[OBJSTORE_NAME_MAX];
    snprintf(pvname, sizeof(pvname), "%s", jx_str(pvc, "spec.volumeName", ""));
    if (!pvname[0])
        snprintf(pvname, sizeof(pvname), "pvc-%s", jx_str(pvc, "metadata.uid", ""));
    const json_t *size = jx_get(pvc, "spec.resources.requests.storage");
    const json_t *modes = jx_get(pvc, "spec.accessModes");
    json_t *cur = NULL;
    if (objstore_get(c->store, c->rpv, NULL, pvname, &cur, &st) < 0) {
        char path[OBJSTORE_NAME_MAX + 32];
        snprintf(path, sizeof(path), "/var/lib/kubesim/volumes/%s", pvname);
        json_t *pv = json_pack(
            "{s:s,s:s,s:{s:s,s:{s:s}},s:{s:{s:O},s:O,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s},"
            "s:{s:s,s:s}}}",
            "apiVersion", "v1", "kind", "PersistentVolume", "metadata", "name", pvname,
            "annotations", STORAGE_ANN_PROVISIONED_BY, STORAGE_PROVISIONER, "spec", "capacity",
            "storage", size ? (json_t *)size : json_null(), "accessModes",
            modes ? (json_t *)modes : json_null(), "persistentVolumeReclaimPolicy",
            jx_str(sc, "reclaimPolicy", "Delete"), "storageClassName", cls, "volumeMode",
            jx_str(pvc, "spec.volumeMode", "Filesystem"), "claimRef", "kind",
            "PersistentVolumeClaim", "apiVersion", "v1", "namespace", ns, "name", name, "uid",
            jx_str(pvc, "metadata.uid", ""), "resourceVersion",
            jx_str(pvc, "metadata.resourceVersion", ""), "hostPath", "path", path, "type",
            "DirectoryOrCreate");
        if (!pv || objstore_create(c->store, c->rpv, NULL, &pv, &cur, &st) < 0)
            goto out;
        writes++;
    }
    if (strcmp(jx_str(cur, "status.phase", ""), "Bound") != 0) {
        json_t *upd = json_copy(cur);
        if (upd) {
            json_object_set_new(upd, "status", json_pack("{s:s}", "phase", "Bound"));
            objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
            if (objstore_update(c->store, c->rpv, NULL, pvname, &upd, &uo, NULL, NULL, &st) == 0)
                writes++;
        }
    }
    json_decref(cur);
    /* the claim: volumeName and the binder's annotations, then status */
    json_t *claim = json_deep_copy(pvc);
    if (!claim)
        goto out;
    json_t *ann = jx_child_obj(jx_child_obj(claim, "metadata"), "annotations");
    if (ann) {
        json_object_set_new(ann, STORAGE_ANN_BIND_COMPLETED, json_string("yes"));
        json_object_set_new(ann, STORAGE_ANN_BOUND_BY, json_string("yes"));
        json_object_set_new(ann, STORAGE_ANN_STORAGE_PROVISIONER, json_string(STORAGE_PROVISIONER));
        json_object_set_new(ann, "volume.beta.kubernetes.io/storage-provisioner",
                            json_string(STORAGE_PROVISIONER));
    }
    json_object_set_new(jx_child_obj(claim, "spec"), "volumeName", json_string(pvname));
    json_t *out = NULL;
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    if (objstore_update(c->store, c->rpvc, ns, name, &claim, &uo, &out, NULL, &st) < 0)
        goto out;
    writes++;
    json_t *s2 = json_copy(out);
    json_decref(out);
    if (!s2)
        goto out;
    json_object_set_new(s2, "status",
                        json_pack("{s:s,s:O,s:{s:O}}", "phase", "Bound", "accessModes",
                                  modes ? (json_t *)modes : json_array(), "capacity", "storage",
                                  size ? (json_t *)size : json_null()));
    objstore_update_opts_t so = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    if (objstore_update(c->store, c->rpvc, ns, name, &s2, &so, NULL, NULL, &st) == 0)
        writes++;
out:
    json_decref(pvc);
    json_decref(sc);
    return writes;
}

/* The claim of PV `name` went: delete it (reclaimPolicy Delete) or mark it Released. */
static int s_release(storage_t *c, const char *name)
{
    objstore_status_t st;
    json_t *pv = NULL;
    if (objstore_get(c->store, c->rpv, NULL, name, &pv, &st) < 0)
        return 0;
    int writes = 0;
    if (strcmp(jx_str(pv, "spec.persistentVolumeReclaimPolicy", "Delete"), "Delete") == 0) {
        if (objstore_delete(c->store, c->rpv, NULL, name, NULL, NULL, NULL, &st) == 0)
            writes++;
    } else if (strcmp(jx_str(pv, "status.phase", ""), "Released") != 0) {
        json_t *upd = json_copy(pv);
        if (upd) {
            json_object_set_new(upd, "status", json_pack("{s:s}", "phase", "Released"));
            objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
            if (objstore_update(c->store, c->rpv, NULL, name, &upd, &uo, NULL, NULL, &st) == 0)
                writes++;
        }
    }
    json_decref(pv);
    return writes;
}

int storage_tick(storage_t *c)
{
    if (!c)
        return 0;
    c->soon.running = true;
    int writes = 0;
    json_t *dirty = c->dirty, *rel = c->released;
    c->dirty = json_object();
    c->released = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(dirty, k, v) writes += s_bind(c, k);
    json_object_foreach(rel, k, v) writes += s_release(c, k);
    json_decref(dirty);
    json_decref(rel);
    c->soon.running = false;
    if (json_object_size(c->dirty) || json_object_size(c->released))
        s_kick(c);
    return writes;
}

storage_t *storage_new(loop_t *loop, objstore_t *store)
{
    if (!store)
        return NULL;
    storage_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    loop_soon_init(&c->soon, loop, s_soon, c);
    c->store = store;
    c->rpvc = objstore_find(store, "", "persistentvolumeclaims");
    c->rpv = objstore_find(store, "", "persistentvolumes");
    c->rsc = objstore_find(store, "storage.k8s.io", "storageclasses");
    c->pending = json_object();
    c->dirty = json_object();
    c->released = json_object();
    objstore_status_t st;
    if (!c->rpvc || !c->rpv || !c->rsc || !c->pending || !c->dirty || !c->released)
        goto fail;
    if (objstore_watch(store, c->rpvc, NULL, NULL, NULL, NULL, s_on_pvc, c, &c->wpvc, &st) < 0 ||
        objstore_watch(store, c->rsc, NULL, NULL, NULL, NULL, s_on_sc, c, &c->wsc, &st) < 0)
        goto fail;
    return c;
fail:
    storage_destroy(&c);
    return NULL;
}

void storage_destroy(storage_t **sp)
{
    if (!sp || !*sp)
        return;
    storage_t *c = *sp;
    objstore_watch_stop(c->store, &c->wpvc);
    objstore_watch_stop(c->store, &c->wsc);
    loop_soon_cancel(&c->soon);
    json_decref(c->pending);
    json_decref(c->dirty);
    json_decref(c->released);
    free(c);
    *sp = NULL;
}

/* ---- scheduler's volume check ----------------------------------------------------------- */

bool storage_pod_unschedulable(objstore_t *s, const char *ns, const json_t *pod, char *out,
                               size_t n)
{
    objstore_res_t *r = objstore_find(s, "", "persistentvolumeclaims");
    if (!r)
        return false;
    bool unbound = false;
    size_t i;
    json_t *vol;
    json_array_foreach(jx_get(pod, "spec.volumes"), i, vol)
    {
        const char *claim = jx_str(vol, "persistentVolumeClaim.claimName", NULL);
        if (!claim)
            continue;
        json_t *pvc = NULL;
        objstore_status_t st;
        if (objstore_get(s, r, ns, claim, &pvc, &st) < 0) {
            snprintf(out, n, "persistentvolumeclaim \"%s\" not found", claim);
            return true;
        }
        if (jx_get(pvc, "metadata.deletionTimestamp")) {
            snprintf(out, n, "persistentvolumeclaim \"%s\" is being deleted", claim);
            json_decref(pvc);
            return true;
        }
        if (strcmp(jx_str(pvc, "status.phase", ""), "Bound") != 0)
            unbound = true;
        json_decref(pvc);
    }
    if (unbound)
        snprintf(out, n, "pod has unbound immediate PersistentVolumeClaims");
    return unbound;
}

/* ---- printers --------------------------------------------------------------------------- */

bool storage_prints(const char *group, const char *resource)
{
    if (!group[0])
        return !strcmp(resource, "persistentvolumeclaims") ||
               !strcmp(resource, "persistentvolumes");
    return (!strcmp(group, "storage.k8s.io") && !strcmp(resource, "storageclasses")) ||
           (!strcmp(group, "networking.k8s.io") && !strcmp(resource, "networkpolicies"));
}

void storage_table_columns(const char *resource, json_t *cols,
                           json_t *(*coldef)(const char *name, const char *type, const char *format,
                                             const char *desc, json_int_t priority))
{
    static const char *const pvc[] = {
        "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass",
        "Age",    NULL};
    static const char *const pv[] = {
        "Capacity",     "Access Modes",          "Reclaim Policy", "Status", "Claim",
        "StorageClass", "VolumeAttributesClass", "Reason",         "Age",    NULL};
    static const char *const sc[] = {"Provisioner",          "ReclaimPolicy", "VolumeBindingMode",
                                     "AllowVolumeExpansion", "Age",           NULL};
    static const char *const np[] = {"Pod-Selector", "Age", NULL};
    const char *const *names = !strcmp(resource, "persistentvolumeclaims") ? pvc
                               : !strcmp(resource, "persistentvolumes")    ? pv
                               : !strcmp(resource, "storageclasses")       ? sc
                                                                           : np;
    for (size_t i = 0; names[i]; i++)
        json_array_append_new(cols, coldef(names[i], "string", "", names[i], 0));
    if (names == pvc || names == pv)
        json_array_append_new(cols, coldef("VolumeMode", "string", "", "VolumeMode", 1));
}

/* kube's GetAccessModesAsString. */
static void s_modes(const json_t *modes, char *out, size_t n)
{
    static const char *const full[] = {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany",
                                       "ReadWriteOncePod"};
    static const char *const abbr[] = {"RWO", "ROX", "RWX", "RWOP"};
    buf_t b;
    buf_init(&b, n ? n - 1 : 0);
    for (size_t m = 0; m < 4; m++) {
        size_t i;
        json_t *v;
        json_array_foreach(modes, i, v)
        {
            if (json_string_value(v) && !strcmp(json_string_value(v), full[m])) {
                buf_printf(&b, "%s%s", b.len ? "," : "", abbr[m]);
                break;
            }
        }
    }
    snprintf(out, n, "%s", buf_str(&b));
    buf_free(&b);
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* metav1.FormatLabelSelector. */
static void s_selector(const json_t *sel, char *out, size_t n)
{
    buf_t b;
    buf_init(&b, n ? n - 1 : 0);
    const json_t *ml = json_object_get(sel, "matchLabels");
    size_t nk = json_object_size(ml), k = 0;
    const char **keys = nk ? calloc(nk, sizeof(*keys)) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ml, key, v)
    {
        if (keys)
            keys[k++] = key;
    }
    if (keys)
        qsort(keys, k, sizeof(*keys), s_cmp_str);
    for (size_t i = 0; i < k; i++)
        buf_printf(&b, "%s%s=%s", b.len ? "," : "", keys[i], s_ann(ml, keys[i]));
    free(keys);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(sel, "matchExpressions"), i, e)
    {
        const char *op = jx_str(e, "operator", "");
        const char *lk = jx_str(e, "key", "");
        if (b.len)
            buf_puts(&b, ",");
        if (!strcmp(op, "Exists")) {
            buf_puts(&b, lk);
            continue;
        }
        if (!strcmp(op, "DoesNotExist")) {
            buf_printf(&b, "!%s", lk);
            continue;
        }
        buf_printf(&b, "%s %s (", lk, !strcmp(op, "In") ? "in" : "notin");
        size_t j;
        json_t *val;
        json_array_foreach(json_object_get(e, "values"), j, val) buf_printf(
            &b, "%s%s", j ? "," : "", json_string_value(val) ? json_string_value(val) : "");
        buf_puts(&b, ")");
    }
    snprintf(out, n, "%s", b.len ? buf_str(&b) : "<none>");
    buf_free(&b);
}

json_t *storage_table_cells(const char *resource, const json_t *obj, json_t *age)
{
    const char *name = jx_str(obj, "metadata.name", "");
    char modes[64];
    if (!strcmp(resource, "persistentvolumeclaims")) {
        const char *phase = jx_str(obj, "status.phase", "Pending");
        if (jx_get(obj, "metadata.deletionTimestamp"))
            phase = "Terminating";
        const char *vol = jx_str(obj, "spec.volumeName", "");
        const char *cap = "";
        modes[0] = '\0';
        if (vol[0]) {
            s_modes(jx_get(obj, "status.accessModes"), modes, sizeof(modes));
            cap = jx_str(obj, "status.capacity.storage", "");
        }
        return json_pack("[s,s,s,s,s,s,s,o,s]", name, phase, vol, cap, modes,
                         jx_str(obj, "spec.storageClassName", ""),
                         jx_str(obj, "spec.volumeAttributesClassName", "<unset>"), age,
                         jx_str(obj, "spec.volumeMode", "Filesystem"));
    }
    if (!strcmp(resource, "persistentvolumes")) {
        char claim[OBJSTORE_NAME_MAX * 2 + 2] = "";
        if (jx_get(obj, "spec.claimRef"))
            snprintf(claim, sizeof(claim), "%s/%s", jx_str(obj, "spec.claimRef.namespace", ""),
                     jx_str(obj, "spec.claimRef.name", ""));
        const char *phase = jx_str(obj, "status.phase", "Pending");
        if (jx_get(obj, "metadata.deletionTimestamp"))
            phase = "Terminating";
        s_modes(jx_get(obj, "spec.accessModes"), modes, sizeof(modes));
        return json_pack("[s,s,s,s,s,s,s,s,s,o,s]", name, jx_str(obj, "spec.capacity.storage", ""),
                         modes, jx_str(obj, "spec.persistentVolumeReclaimPolicy", ""), phase, claim,
                         jx_str(obj, "spec.storageClassName", ""),
                         jx_str(obj, "spec.volumeAttributesClassName", "<unset>"),
                         jx_str(obj, "status.reason", ""), age,
                         jx_str(obj, "spec.volumeMode", "Filesystem"));
    }
    if (!strcmp(resource, "storageclasses")) {
        char n2[OBJSTORE_NAME_MAX + 16];
        bool def = !strcmp(s_ann(jx_get(obj, "metadata.annotations"), STORAGE_ANN_DEFAULT), "true");
        snprintf(n2, sizeof(n2), "%s%s", name, def ? " (default)" : "");
        return json_pack("[s,s,s,s,s,o]", n2, jx_str(obj, "provisioner", ""),
                         jx_str(obj, "reclaimPolicy", "Delete"),
                         jx_str(obj, "volumeBindingMode", "Immediate"),
                         jx_bool(obj, "allowVolumeExpansion", false) ? "true" : "false", age);
    }
    char sel[1024];
    s_selector(jx_get(obj, "spec.podSelector"), sel, sizeof(sel));
    return json_pack("[s,s,o]", name, sel, age);
}

/* ---- self-test -------------------------------------------------------------------------- */

#ifdef RF_SELFTEST
#include "simtest.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "storage_test: %s:%d: %s\n", __FILE__, __LINE__, #c);                  \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static json_t *t_get(objstore_t *s, objstore_res_t *r, const char *ns, const char *name)
{
    json_t *o = NULL;
    objstore_status_t st;
    return objstore_get(s, r, ns, name, &o, &st) == 0 ? o : NULL;
}

static int t_create_pvc(objstore_t *s, objstore_res_t *r, const char *name, const char *cls,
                        objstore_status_t *st)
{
    json_t *o =
        json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:[s],s:{s:{s:s}}}}", "apiVersion", "v1", "kind",
                  "PersistentVolumeClaim", "metadata", "name", name, "namespace", "default", "spec",
                  "accessModes", "ReadWriteOnce", "resources", "requests", "storage", "1Gi");
    if (cls)
        json_object_set_new(jx_child_obj(o, "spec"), "storageClassName", json_string(cls));
    if (!storage_admit(s, "", "persistentvolumeclaims", o, NULL, st)) {
        json_decref(o);
        return -1;
    }
    return objstore_create(s, r, "default", &o, NULL, st);
}

int storage_test(bool verbose)
{
    int rc = 1;
    simtest_clock_t clk = {SIMTEST_T0};
    objstore_t *s = objstore_new(0);
    storage_t *c = NULL;
    json_t *o = NULL, *o2 = NULL;
    CHECK(s && simtest_core(s, &clk, NULL, 0) == 0 && simtest_storage(s) == 0);
    objstore_res_t *rpvc = objstore_find(s, "", "persistentvolumeclaims");
    objstore_res_t *rpv = objstore_find(s, "", "persistentvolumes");
    objstore_status_t st;
    CHECK(storage_bootstrap(s) == 0 && storage_bootstrap(s) == 0);
    c = storage_new(NULL, s);
    CHECK(c);

    /* default class admission, binding to pvc-<uid>, status */
    CHECK(t_create_pvc(s, rpvc, "data", NULL, &st) == 0);
    CHECK(storage_tick(c) == 4);
    o = t_get(s, rpvc, "default", "data");
    CHECK(o && !strcmp(jx_str(o, "spec.storageClassName", ""), STORAGE_DEFAULT_CLASS));
    CHECK(!strcmp(jx_str(o, "status.phase", ""), "Bound"));
    CHECK(!strcmp(jx_str(o, "status.capacity.storage", ""), "1Gi"));
    char pvname[128];
    snprintf(pvname, sizeof(pvname), "pvc-%s", jx_str(o, "metadata.uid", ""));
    CHECK(!strcmp(jx_str(o, "spec.volumeName", ""), pvname));
    o2 = t_get(s, rpv, NULL, pvname);
    CHECK(o2 && !strcmp(jx_str(o2, "status.phase", ""), "Bound") &&
          !strcmp(jx_str(o2, "spec.claimRef.name", ""), "data") &&
          !strcmp(jx_str(o2, "spec.persistentVolumeReclaimPolicy", ""), "Delete"));
    json_decref(o2);
    o2 = NULL;
    /* printer row */
    o2 = storage_table_cells("persistentvolumeclaims", o, json_string("1s"));
    CHECK(o2 && !strcmp(json_string_value(json_array_get(o2, 1)), "Bound") &&
          !strcmp(json_string_value(json_array_get(o2, 4)), "RWO") &&
          !strcmp(json_string_value(json_array_get(o2, 6)), "<unset>"));
    json_decref(o2);
    o2 = NULL;

    /* immutability: storageClassName change refused, requests change of a bound claim allowed */
    o2 = json_deep_copy(o);
    json_object_set_new(jx_child_obj(o2, "spec"), "storageClassName", json_string("other"));
    CHECK(!storage_admit(s, "", "persistentvolumeclaims", o2, o, &st));
    CHECK(st.code == 422 && !strcmp(st.message, "PersistentVolumeClaim \"data\" is invalid: spec: "
                                                "Forbidden: " S_SPEC_IMMUTABLE));
    json_decref(o2);
    o2 = json_deep_copy(o);
    jx_set_path(o2, "spec.resources.requests.storage", json_string("2Gi"));
    CHECK(storage_admit(s, "", "persistentvolumeclaims", o2, o, &st));
    json_decref(o2);
    o2 = NULL;

    /* the scheduler's check */
    char msg[256];
    json_t *pod = json_pack("{s:{s:[{s:s,s:{s:s}}]}}", "spec", "volumes", "name", "v",
                            "persistentVolumeClaim", "claimName", "nope");
    CHECK(storage_pod_unschedulable(s, "default", pod, msg, sizeof(msg)) &&
          !strcmp(msg, "persistentvolumeclaim \"nope\" not found"));
    json_object_set_new(
        json_object_get(json_array_get(jx_get(pod, "spec.volumes"), 0), "persistentVolumeClaim"),
        "claimName", json_string("data"));
    CHECK(!storage_pod_unschedulable(s, "default", pod, msg, sizeof(msg)));
    /* a claim of an unknown class stays Pending: the pod is unschedulable */
    CHECK(t_create_pvc(s, rpvc, "slow", "nosuch", &st) == 0);
    storage_tick(c);
    json_object_set_new(
        json_object_get(json_array_get(jx_get(pod, "spec.volumes"), 0), "persistentVolumeClaim"),
        "claimName", json_string("slow"));
    CHECK(storage_pod_unschedulable(s, "default", pod, msg, sizeof(msg)) &&
          !strcmp(msg, "pod has unbound immediate PersistentVolumeClaims"));
    json_decref(pod);

    /* missing access modes */
    o2 = json_pack("{s:{s:s},s:{s:{s:{s:s}}}}", "metadata", "name", "bad", "spec", "resources",
                   "requests", "storage", "1Gi");
    CHECK(!storage_admit(s, "", "persistentvolumeclaims", o2, NULL, &st) &&
          strstr(st.message, "spec.accessModes: Required value"));
    json_decref(o2);
    o2 = NULL;

    /* deleting the claim deletes its PV (reclaimPolicy Delete) */
    CHECK(objstore_delete(s, rpvc, "default", "data", NULL, NULL, NULL, &st) == 0);
    CHECK(storage_tick(c) == 1);
    o2 = t_get(s, rpv, NULL, pvname);
    CHECK(!o2);

    /* NetworkPolicy defaults and validation */
    o2 = json_pack("{s:{s:s},s:{s:{},s:[{s:[{s:i}]}]}}", "metadata", "name", "np", "spec",
                   "podSelector", "egress", "ports", "port", 53);
    CHECK(storage_admit(s, "networking.k8s.io", "networkpolicies", o2, NULL, &st));
    const char *t1 = json_string_value(json_array_get(jx_get(o2, "spec.policyTypes"), 1));
    CHECK(t1 && !strcmp(t1, "Egress"));
    CHECK(!strcmp(
        jx_str(json_array_get(jx_get(json_array_get(jx_get(o2, "spec.egress"), 0), "ports"), 0),
               "protocol", ""),
        "TCP"));
    json_decref(o2);
    o2 = json_pack("{s:{s:s},s:{s:{},s:[s]}}", "metadata", "name", "np", "spec", "podSelector",
                   "policyTypes", "Sideways");
    CHECK(!storage_admit(s, "networking.k8s.io", "networkpolicies", o2, NULL, &st));
    CHECK(!strcmp(st.message, "NetworkPolicy.networking.k8s.io \"np\" is invalid: "
                              "spec.policyTypes[0]: Unsupported value: \"Sideways\": supported "
                              "values: \"Ingress\", \"Egress\""));
    json_decref(o2);
    o2 = json_pack("{s:{s:s},s:{s:{},s:[{s:[{s:i,s:s}]}]}}", "metadata", "name", "np", "spec",
                   "podSelector", "ingress", "ports", "port", 80, "protocol", "ICMP");
    CHECK(!storage_admit(s, "networking.k8s.io", "networkpolicies", o2, NULL, &st));
    CHECK(!strcmp(st.cause_field, "spec.ingress[0].ports[0].protocol"));
    json_decref(o2);
    o2 = json_pack("{s:{s:s},s:{s:{s:{s:s,s:s}}}}", "metadata", "name", "np", "spec", "podSelector",
                   "matchLabels", "ray.io/node-type", "head", "ray.io/cluster", "c");
    json_t *cells = storage_table_cells("networkpolicies", o2, json_string("5s"));
    CHECK(cells && !strcmp(json_string_value(json_array_get(cells, 1)),
                           "ray.io/cluster=c,ray.io/node-type=head"));
    json_decref(cells);
    rc = 0;
    if (verbose)
        fprintf(stderr, "storage_test: ok\n");
done:
    json_decref(o);
    json_decref(o2);
    storage_destroy(&c);
    objstore_destroy(&s);
    return rc;
}
#endif
