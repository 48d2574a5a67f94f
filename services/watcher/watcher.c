/*
 * watcher: see watcher.h for the design.
 */
#include "watcher.h"

#include "err.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "labels.h"
#include "log.h"
#include "redact.h"
#include "reflector.h"
#include "rftime.h"

#include <sqlite3.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_RAY_GROUP "ray.io" /* API group of the Ray custom resources */
#define S_KUBERAY_SELECTOR LABEL_CREATED_BY "=" LABEL_CREATED_BY_KUBERAY /* §6 */
/* The Services (and their EndpointSlices) a RayService, a RayJob or a RayCluster's serve Service
 * carry without the created-by label: every one S_KUBERAY_SELECTOR does not select. */
#define S_RAY_ORIGIN_SELECTOR                                                                      \
    LABEL_ORIGINATED_FROM_CRD "," LABEL_CREATED_BY "!=" LABEL_CREATED_BY_KUBERAY
#define S_KEY_MAX 600 /* "namespace/name" and similar keys */

/* The kinds watched in every member cluster. */
enum {
    K_RAYCLUSTER,
    K_RAYJOB,
    K_RAYSERVICE,
    K_RAYCRONJOB,
    K_POD,
    K_SERVICE,
    K_JOB,
    K_ENDPOINTSLICE,
    K_SERVICE_RAY, /* rows of kind Service, as K_SERVICE's: the twin reflector (watcher.h) */
    K_ENDPOINTSLICE_RAY, /* rows of kind EndpointSlice, as K_ENDPOINTSLICE's */
    K_NETWORKPOLICY, /* a RayCluster's NetworkPolicies (gate RayClusterNetworkPolicy) */
    K_PVC, /* a RayCluster's GCS PersistentVolumeClaim (gate GCSFaultToleranceEmbeddedStorage) */
    K_NODE, /* --watch.nodes: every Node, projected (rows of kind Node) */
    K_PODUSE, /* --watch.nodes: every pod's node, phase and requests (rows of kind PodUsage) */
    K_COUNT
};
#define S_CAPACITY_KIND(k) ((k) == K_NODE || (k) == K_PODUSE) /* projection rows, no events */

/* How one kind is watched. */
typedef struct {
    const char *group; /* API group ("" core) */
    const char *version; /* API version */
    const char *resource; /* plural resource */
    const char *kind; /* Kind, as stored in rows */
    const char *selector; /* label selector, NULL for none */
    const char *phase_path; /* dotted path of the phase, NULL for none */
} wkind_t;

/* What the watcher reads of a cached object (s_owner, s_conditions, s_handle, s_queue_event), so
 * the reflectors cache only that (plus the phase path of the kind): labels are kept whole (their
 * keys contain dots), conditions only their type and status. Rows still hold the complete object
 * from the event's raw text. */
#define S_KEEP_COMMON                                                                              \
    "metadata.name", "metadata.namespace", "metadata.uid", "metadata.resourceVersion",             \
        "metadata.generation", "metadata.labels", "metadata.ownerReferences",                      \
        "metadata.deletionTimestamp", "status.conditions.type", "status.conditions.status"

static const char *const s_keep_common[] = {S_KEEP_COMMON, NULL};
static const char *const s_keep_rc[] = {S_KEEP_COMMON, "status.state", NULL};
static const char *const s_keep_rj[] = {S_KEEP_COMMON, "status.jobDeploymentStatus", NULL};
static const char *const s_keep_rs[] = {S_KEEP_COMMON, "status.serviceStatus", NULL};
static const char *const s_keep_pod[] = {S_KEEP_COMMON, "status.phase", NULL};
/* The spec paths of a pod's PodUsage projection (fleet/member.h reads them). */
#define S_KEEP_USAGE_SPEC                                                                          \
    "spec.nodeName", "spec.overhead", "spec.containers.resources",                                 \
        "spec.initContainers.resources", "spec.initContainers.restartPolicy"
/* --watch.nodes: the Ray pod reflector also writes its pods' PodUsage rows, so it keeps what
 * those hold too (s_usage_obj() projects them out of its events' objects). */
static const char *const s_keep_pod_usage[] = {S_KEEP_COMMON, "status.phase", S_KEEP_USAGE_SPEC,
                                               NULL};
/* The capacity kinds keep exactly what their rows hold (fleet/member.h reads them). */
static const char *const s_keep_node[] = {"metadata.name",
                                          "metadata.uid",
                                          "metadata.resourceVersion",
                                          "metadata.labels",
                                          "spec.unschedulable",
                                          "status.allocatable",
                                          "status.conditions.type",
                                          "status.conditions.status",
                                          NULL};
static const char *const s_keep_poduse[] = {"metadata.name",
                                            "metadata.namespace",
                                            "metadata.uid",
                                            "metadata.resourceVersion",
                                            S_KEEP_USAGE_SPEC,
                                            "status.phase",
                                            NULL};

/* The kept paths of kind k: the common ones and its phase path (and, for the Ray pods with
 * --watch.nodes, their PodUsage projection's). */
static const char *const *s_keep_of(int k, bool watch_nodes)
{
    switch (k) {
    case K_RAYCLUSTER:
        return s_keep_rc;
    case K_RAYJOB:
        return s_keep_rj;
    case K_RAYSERVICE:
        return s_keep_rs;
    case K_POD:
        return watch_nodes ? s_keep_pod_usage : s_keep_pod;
    case K_NODE:
        return s_keep_node;
    case K_PODUSE:
        return s_keep_poduse;
    default:
        return s_keep_common;
    }
}

static const wkind_t s_kinds[K_COUNT] = {
    [K_RAYCLUSTER] = {S_RAY_GROUP, "v1", "rayclusters", "RayCluster", NULL, "status.state"},
    [K_RAYJOB] = {S_RAY_GROUP, "v1", "rayjobs", "RayJob", NULL, "status.jobDeploymentStatus"},
    [K_RAYSERVICE] = {S_RAY_GROUP, "v1", "rayservices", "RayService", NULL, "status.serviceStatus"},
    [K_RAYCRONJOB] = {S_RAY_GROUP, "v1", "raycronjobs", "RayCronJob", NULL, NULL},
    [K_POD] = {"", "v1", "pods", "Pod", WATCHER_POD_SELECTOR, "status.phase"},
    [K_SERVICE] = {"", "v1", "services", "Service", S_KUBERAY_SELECTOR, NULL},
    [K_JOB] = {"batch", "v1", "jobs", "Job", S_KUBERAY_SELECTOR, NULL},
    [K_ENDPOINTSLICE] = {"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice",
                         S_KUBERAY_SELECTOR, NULL},
    [K_SERVICE_RAY] = {"", "v1", "services", "Service", S_RAY_ORIGIN_SELECTOR, NULL},
    [K_ENDPOINTSLICE_RAY] = {"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice",
                             S_RAY_ORIGIN_SELECTOR, NULL},
    [K_NETWORKPOLICY] = {"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy",
                         LABEL_CLUSTER, NULL},
    [K_PVC] = {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", LABEL_CLUSTER,
               "status.phase"},
    [K_NODE] = {"", "v1", "nodes", "Node", NULL, NULL},
    [K_PODUSE] = {"", "v1", "pods", WATCHER_PODUSE_KIND, WATCHER_PODUSE_SELECTOR, "status.phase"},
};

/* The strings of a queued event, as offsets into the arena. */
enum { P_GROUP, P_KIND, P_NS, P_NAME, P_UID, P_RV, P_CKIND, P_CNAME, P_CUID, P_NSTR };

typedef struct wcluster wcluster_t;

/* An event waiting for the flush that commits its row. */
typedef struct {
    const wcluster_t *cl; /* its member cluster */
    uint32_t off[P_NSTR]; /* offsets of its strings in the arena */
    uint32_t len[P_NSTR]; /* their lengths */
    int64_t generation; /* owner generation, 0 unknown */
    int32_t type; /* Rayfleet EventType */
    uint32_t shard; /* owner's shard */
} pend_t;

/* One reflector: a kind in one cluster, all namespaces or one. */
typedef struct {
    watcher_t *w; /* the watcher */
    wcluster_t *cl; /* its cluster */
    int kind; /* K_* */
    char *ns; /* namespace, NULL: all */
    reflector_t *r; /* the reflector */
    bool warned; /* "not synced" was logged */
    json_t *dirty; /* "ns/name" -> [object, its complete JSON text or null], for rows the store
                    * refused; NULL when none */
} wres_t;

struct wcluster {
    char *name; /* member cluster name */
    kubeconfig_t *kc; /* its configuration */
    k8s_client_t *client; /* its client */
    wres_t *res; /* reflectors: res[kind * nns + i] */
    size_t nns; /* reflectors per kind (1 when all namespaces) */
    watcher_t *w; /* its watcher (the probe's callback) */
    int64_t probe_id; /* the health probe in flight, 0 when none */
    int64_t last_ok_ms; /* wall ms of the last probe answered, 0: none yet */
    char last_error[256]; /* the last probe's failure, "" when it answered */
};

/* A warning limited to one per WATCHER_LOG_INTERVAL_MS. */
typedef struct {
    int64_t last_ms; /* loop time of the last one logged */
    uint64_t suppressed; /* occurrences not logged since */
} rlog_t;

struct watcher {
    loop_t *loop; /* the loop (borrowed) */
    store_t *store; /* observed state (borrowed) */
    bus_pub_t *pub; /* publisher (borrowed, may be NULL) */
    uint32_t shards; /* shard count */
    int64_t stats_ms; /* stats log period */
    wcluster_t *clusters; /* the member clusters */
    size_t nclusters; /* how many */
    pend_t *pend; /* queued events */
    size_t npend; /* how many */
    size_t cap_pend; /* allocated */
    buf_t arena; /* strings of the queued events */
    bool started; /* watcher_start() ran */
    bool hooked; /* the before-sleep hook is installed */
    bool any_dirty; /* some wres has a dirty set */
    int64_t retry_timer; /* flush retry timer, 0 when none */
    int64_t delay_timer; /* batching delay timer, 0 when none */
    int64_t flush_delay_ms; /* longest a queued row waits for its commit; <= 0: every turn */
    size_t unflushed; /* rows queued since the last successful flush */
    int64_t first_ms; /* loop time when the first of them was queued */
    int64_t ready_timer; /* not-ready check timer */
    int64_t stats_timer; /* stats log timer */
    int64_t probe_timer; /* clusters' health probe timer (watch_nodes), 0 when none */
    bool watch_nodes; /* watcher_config_t.watch_nodes */
    buf_t scratch; /* conditions summary */
    char *jbuf; /* the serialized object of the row being written (reused) */
    size_t jcap; /* bytes allocated at jbuf */
    rlog_t rl_drop, rl_flush, rl_write; /* rate limits */
    watcher_stats_t st; /* counters */
};

/* ---------- helpers ---------- */

static void s_rlog(watcher_t *w, rlog_t *rl, const char *msg, const char *k, const char *v)
{
    int64_t now = loop_now(w->loop);
    if (rl->last_ms && now - rl->last_ms < WATCHER_LOG_INTERVAL_MS) {
        rl->suppressed++;
        return;
    }
    char n[24];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)rl->suppressed);
    log_warn(msg, k, v, "suppressed", n, NULL);
    rl->last_ms = now ? now : 1;
    rl->suppressed = 0;
}

/* True for the kinds of EndpointSlice reflectors. */
static bool s_is_slice(int k)
{
    return k == K_ENDPOINTSLICE || k == K_ENDPOINTSLICE_RAY;
}

/* True when k and j are two reflectors writing rows of one kind (twins, watcher.h). */
static bool s_twins(int k, int j)
{
    return k != j && strcmp(s_kinds[k].kind, s_kinds[j].kind) == 0;
}

/* The first kind index of the Kind text `kind` (K_SERVICE for "Service"), -1 when none. */
static int s_kind_of(const char *kind)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(s_kinds[k].kind, kind) == 0)
            return k;
    return -1;
}

/* The cache entry of the object of kind k named ns/name in cluster cl into *it; false when not
 * cached. */
static bool s_cached(const wcluster_t *cl, int k, const char *ns, const char *name,
                     reflector_item_t *it)
{
    for (size_t i = 0; i < cl->nns; i++) {
        const wres_t *x = &cl->res[(size_t)k * cl->nns + i];
        if (!x->r || (x->ns && strcmp(x->ns, ns) != 0))
            continue;
        if (reflector_lookup(x->r, ns, name, it))
            return true;
    }
    return false;
}

/* True when a twin of x's reflector in its cluster caches ns/name: the row is the twin's. The
 * rows of kind WATCHER_PODUSE_KIND have two writers, the PodUsage reflector and the Ray pod
 * reflector (--watch.nodes): such a row is held while either caches its pod. */
static bool s_twin_holds(const wres_t *x, const char *ns, const char *name)
{
    for (int k = 0; k < K_COUNT; k++)
        if (s_twins(x->kind, k) && s_cached(x->cl, k, ns, name, NULL))
            return true;
    return x->kind == K_PODUSE &&
           (s_cached(x->cl, K_POD, ns, name, NULL) || s_cached(x->cl, K_PODUSE, ns, name, NULL));
}

/* The reflector of kind k watching the namespace of x (same slot). */
static wres_t *s_slot(const wres_t *x, int k)
{
    size_t slot = (size_t)(x - x->cl->res) % x->cl->nns;
    return &x->cl->res[(size_t)k * x->cl->nns + slot];
}

/* True when every twin of x's reflector watching x's namespace has applied its first list (for
 * the PodUsage reflector: the Ray pod reflector, its rows' other writer, too). */
static bool s_twins_synced(const wres_t *x)
{
    for (int k = 0; k < K_COUNT; k++)
        if ((s_twins(x->kind, k) || (x->kind == K_PODUSE && k == K_POD)) &&
            !reflector_synced(s_slot(x, k)->r))
            return false;
    return true;
}

/* ---------- the extra record cached per object ----------
 * Ray kinds:  'R', generation (8 bytes, little-endian), then, when its controller ownerReference
 *             is a Ray object, that owner as s_rec_owner() writes it (nothing else otherwise).
 * The others: 'C', then the owner as its controller ownerReference or ray.io/cluster label gives
 * it (s_rec_owner()): kind index (K_*, or S_REC_KIND_TEXT then the kind text NUL), uid mode
 * (S_REC_UID_*: none, 16 bytes, or text NUL), name NUL; then the kubernetes.io/service-name
 * label NUL (EndpointSlices; "" for the others). No owner: kind index S_REC_NONE and nothing
 * else but the service name. A Ray pod's record with --watch.nodes ends with the 8 bytes of its
 * PodUsage hash (S_REC_USAGE_TAIL, after the service name; the decoder ignores them). */
#define S_REC_RAY 'R' /* record of a Ray object */
#define S_REC_CHILD 'C' /* record of a child */
#define S_REC_NONE 0xFF /* child without an owner */
#define S_REC_USAGE 'U' /* record of a PodUsage: the tag and the projection's 64-bit hash */
#define S_REC_USAGE_LEN 9 /* its length */
#define S_REC_USAGE_TAIL 8 /* a Ray pod's record (--watch.nodes) ends with that hash too */
#define S_REC_KIND_TEXT 0xFE /* owner kind given as text */
#define S_REC_UID_NONE 0 /* no owner uid */
#define S_REC_UID_BIN 1 /* owner uid as 16 bytes */
#define S_REC_UID_TEXT 2 /* owner uid as text */
#define S_REC_MAX REFLECTOR_MAX_EXTRA /* longest record */

/* A decoded record. Strings point into the record or into uid_buf. */
typedef struct {
    bool ray; /* a Ray object's record */
    int64_t generation; /* Ray: its generation */
    const char *okind; /* owner kind (a Ray object's: its Ray owner), "" none */
    const char *oname; /* owner name */
    const char *ouid; /* owner uid, "" unknown */
    const char *svc; /* child: the service-name label, "" none */
    char uid_buf[REFLECTOR_UID_TEXT]; /* storage of a packed owner uid */
} rec_t;

/* Appends the n bytes at p to the record out (cap bytes, *len used). false when full. */
static bool s_rec_put(unsigned char *out, size_t cap, size_t *len, const void *p, size_t n)
{
    if (*len + n > cap)
        return false;
    memcpy(out + *len, p, n);
    *len += n;
    return true;
}

static bool s_rec_str(unsigned char *out, size_t cap, size_t *len, const char *s)
{
    return s_rec_put(out, cap, len, s, strlen(s) + 1);
}

/* Writes the owner (kind, name, uid) of a child into the record. */
static bool s_rec_owner(unsigned char *out, size_t cap, size_t *len, const char *kind,
                        const char *name, const char *uid)
{
    int k = s_kind_of(kind);
    unsigned char b = k >= 0 ? (unsigned char)k : S_REC_KIND_TEXT;
    bool ok = s_rec_put(out, cap, len, &b, 1);
    if (ok && k < 0)
        ok = s_rec_str(out, cap, len, kind);
    unsigned char ub[16];
    if (ok && !*uid) {
        b = S_REC_UID_NONE;
        ok = s_rec_put(out, cap, len, &b, 1);
    } else if (ok && reflector_uid_pack(uid, strlen(uid), ub)) {
        b = S_REC_UID_BIN;
        ok = s_rec_put(out, cap, len, &b, 1) && s_rec_put(out, cap, len, ub, sizeof(ub));
    } else if (ok) {
        b = S_REC_UID_TEXT;
        ok = s_rec_put(out, cap, len, &b, 1) && s_rec_str(out, cap, len, uid);
    }
    return ok && s_rec_str(out, cap, len, name);
}

/* Writes the owner of meta (an object's metadata) into the record when its controller
 * ownerReference names a Ray object (apiVersion ray.io/...); *found tells whether it did. */
static bool s_rec_ray_controller(unsigned char *out, size_t cap, size_t *len, const json_t *meta,
                                 bool *found)
{
    *found = false;
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(meta, "ownerReferences"), i, ref)
    {
        if (!jx_bool(ref, "controller", false))
            continue;
        const char *api = jx_str(ref, "apiVersion", "");
        const char *kind = jx_str(ref, "kind", "");
        const char *name = jx_str(ref, "name", "");
        if (strncmp(api, S_RAY_GROUP "/", strlen(S_RAY_GROUP) + 1) != 0 || !*kind || !*name)
            return true;
        *found = true;
        return s_rec_owner(out, cap, len, kind, name, jx_str(ref, "uid", ""));
    }
    return true;
}

/* The 64-bit hash of what fleet/member.c counts of a pod obj (a PodUsage projection, or a Ray
 * pod's projection, whose spec holds the same paths): the projected spec (node, requests) and
 * the phase. 0 or ERR_NOMEM. */
static int s_usage_hash(const json_t *obj, uint64_t *h)
{
    json_t *what = json_pack("{s:O?,s:O?}", "spec", json_object_get(obj, "spec"), "phase",
                             jx_get(obj, "status.phase"));
    *h = 0;
    int hr = what ? jx_hash(what, h) : ERR_NOMEM;
    json_decref(what);
    return hr;
}

/* The record of obj, an object of kind k, into out (cap bytes); `usage`: a Ray pod whose
 * PodUsage row its reflector writes too (--watch.nodes), whose record ends with the 8 bytes of
 * s_usage_hash() (S_REC_USAGE_TAIL). Returns its length, or -1 when it does not fit. */
static int s_rec_make(int k, bool usage, const json_t *obj, unsigned char *out, size_t cap)
{
    size_t len = 0;
    bool found = false;
    const json_t *meta = json_object_get(obj, "metadata");
    if (k == K_PODUSE) {
        uint64_t h = 0;
        int hr = s_usage_hash(obj, &h);
        unsigned char b[S_REC_USAGE_LEN] = {S_REC_USAGE};
        for (int i = 0; i < 8; i++)
            b[1 + i] = (unsigned char)(h >> (8 * i));
        return hr == 0 && s_rec_put(out, cap, &len, b, sizeof(b)) ? (int)len : -1;
    }
    if (strcmp(s_kinds[k].group, S_RAY_GROUP) == 0) {
        json_t *g = json_object_get(meta, "generation");
        uint64_t gen = json_is_integer(g) ? (uint64_t)json_integer_value(g) : 0;
        unsigned char b[9] = {S_REC_RAY};
        for (int i = 0; i < 8; i++)
            b[1 + i] = (unsigned char)(gen >> (8 * i));
        bool ok = s_rec_put(out, cap, &len, b, sizeof(b)) &&
                  s_rec_ray_controller(out, cap, &len, meta, &found);
        return ok ? (int)len : -1;
    }
    unsigned char tag = S_REC_CHILD;
    bool ok = s_rec_put(out, cap, &len, &tag, 1);
    ok = ok && s_rec_ray_controller(out, cap, &len, meta, &found);
    json_t *labels = json_object_get(meta, "labels");
    const char *rc = json_string_value(json_object_get(labels, LABEL_CLUSTER));
    if (!found && rc && *rc) {
        ok = ok && s_rec_owner(out, cap, &len, s_kinds[K_RAYCLUSTER].kind, rc, "");
        found = true;
    }
    if (!found) {
        unsigned char b = S_REC_NONE;
        ok = ok && s_rec_put(out, cap, &len, &b, 1);
    }
    const char *svc =
        s_is_slice(k) ? json_string_value(json_object_get(labels, LABEL_SERVICE_NAME)) : NULL;
    ok = ok && s_rec_str(out, cap, &len, svc ? svc : "");
    if (ok && usage) {
        uint64_t h = 0;
        unsigned char b[S_REC_USAGE_TAIL];
        ok = s_usage_hash(obj, &h) == 0;
        for (int i = 0; i < S_REC_USAGE_TAIL; i++)
            b[i] = (unsigned char)(h >> (8 * i));
        ok = ok && s_rec_put(out, cap, &len, b, sizeof(b));
    }
    return ok ? (int)len : -1;
}

/* The NUL-terminated string at *p (before end), advancing *p; NULL when unterminated. */
static const char *s_rec_get_str(const unsigned char **p, const unsigned char *end)
{
    const unsigned char *z = memchr(*p, 0, (size_t)(end - *p));
    if (!z)
        return NULL;
    const char *s = (const char *)*p;
    *p = z + 1;
    return s;
}

/* Decodes the owner part of a record (s_rec_owner(), or S_REC_NONE) at *pp (before end) into
 * out's okind, oname and ouid, advancing *pp. false when malformed. */
static bool s_rec_get_owner(const unsigned char **pp, const unsigned char *end, rec_t *out)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return false;
    unsigned char kb = *p++;
    const char *kind = "", *name = "", *uid = "";
    if (kb != S_REC_NONE) {
        if (kb == S_REC_KIND_TEXT)
            kind = s_rec_get_str(&p, end);
        else if (kb < K_COUNT)
            kind = s_kinds[kb].kind;
        else
            return false;
        if (!kind || p >= end)
            return false;
        unsigned char um = *p++;
        if (um == S_REC_UID_BIN) {
            if (end - p < 16)
                return false;
            reflector_uid_unpack(p, out->uid_buf);
            uid = out->uid_buf;
            p += 16;
        } else if (um == S_REC_UID_TEXT) {
            uid = s_rec_get_str(&p, end);
        } else if (um != S_REC_UID_NONE) {
            return false;
        }
        name = uid ? s_rec_get_str(&p, end) : NULL;
        if (!name)
            return false;
    }
    out->okind = kind;
    out->oname = name;
    out->ouid = uid;
    *pp = p;
    return true;
}

/* Decodes a record (n bytes). Returns false (and a record of nothing) when malformed. */
static bool s_rec_read(const void *data, size_t n, rec_t *out)
{
    memset(out, 0, sizeof(*out));
    out->okind = out->oname = out->ouid = out->svc = "";
    const unsigned char *p = data, *end = p ? p + n : NULL;
    if (!p || n == 0)
        return false;
    bool ok;
    if (p[0] == S_REC_RAY) {
        if (n < 9)
            return false;
        uint64_t g = 0;
        for (int i = 0; i < 8; i++)
            g |= (uint64_t)p[1 + i] << (8 * i);
        out->ray = true;
        out->generation = (int64_t)g;
        p += 9;
        ok = p == end || (s_rec_get_owner(&p, end, out) && p == end);
    } else {
        p++;
        ok = data && ((const unsigned char *)data)[0] == S_REC_CHILD && n >= 2 &&
             s_rec_get_owner(&p, end, out);
        const char *svc = ok && p < end ? s_rec_get_str(&p, end) : NULL;
        ok = svc != NULL;
        out->svc = ok ? svc : "";
    }
    if (!ok) {
        memset(out, 0, sizeof(*out));
        out->okind = out->oname = out->ouid = out->svc = "";
    }
    return ok;
}

/* The reflectors' extra function: the record of obj. */
static int s_extra_fn(reflector_t *r, const json_t *obj, void *out, size_t cap, void *arg)
{
    const wres_t *x = arg;
    return s_rec_make(x->kind, x->kind == K_POD && x->w->watch_nodes, obj, out, cap);
}

/* The owning Ray object of a changed object. Strings borrowed from the objects, the records or
 * the buffers below. */
typedef struct {
    const char *group; /* owner's group */
    const char *kind; /* owner's kind, "" when no owner was found */
    const char *name; /* owner's name */
    const char *uid; /* owner's uid, "" unknown */
    int64_t generation; /* owner's generation, 0 unknown */
    bool self; /* the object is its own owner */
    rec_t rec; /* the decoded record the strings may point into */
    reflector_item_t item; /* the owner's cache entry the uid may point into */
} owner_t;

/* Fills the uid (when missing) and generation of o from the Ray caches. */
static void s_owner_lookup(const wcluster_t *cl, const char *ns, owner_t *o)
{
    int k = s_kind_of(o->kind);
    if (k < 0 || strcmp(s_kinds[k].group, S_RAY_GROUP) != 0)
        return;
    if (!s_cached(cl, k, ns, o->name, &o->item))
        return;
    if (!*o->uid)
        o->uid = o->item.uid;
    rec_t r;
    if (strcmp(o->uid, o->item.uid) == 0 && s_rec_read(o->item.extra, o->item.extra_len, &r) &&
        r.ray)
        o->generation = r.generation;
}

/* The owner of a child as its decoded record `rec` gives it (strings point into rec). Returns
 * true when found. */
static bool s_owner_of_child(const wcluster_t *cl, const char *ns, const rec_t *rec, owner_t *o)
{
    if (rec->ray || !*rec->okind || !*rec->oname)
        return false;
    o->group = S_RAY_GROUP;
    o->kind = rec->okind;
    o->name = rec->oname;
    o->uid = rec->ouid;
    s_owner_lookup(cl, ns, o);
    return true;
}

/* The owner of obj, an object of kind k whose record is `data` (n bytes). */
static void s_owner(const wcluster_t *cl, int k, const json_t *obj, const void *data, size_t n,
                    owner_t *o)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    ns = ns ? ns : "";
    memset(o, 0, sizeof(*o));
    o->group = o->kind = o->name = o->uid = "";
    rec_t rec;
    bool have = s_rec_read(data, n, &rec);
    if (strcmp(s_kinds[k].group, S_RAY_GROUP) == 0) {
        o->group = S_RAY_GROUP;
        o->kind = s_kinds[k].kind;
        o->name = jx_str(obj, "metadata.name", "");
        o->uid = jx_str(obj, "metadata.uid", "");
        o->generation = have && rec.ray ? rec.generation : 0;
        o->self = true;
        return;
    }
    if (!have)
        return;
    bool found = false;
    if (s_is_slice(k) && *rec.svc) {
        /* the Service in either cache, its twin's first (a slice has its Service's labels) */
        int first = k == K_ENDPOINTSLICE ? K_SERVICE : K_SERVICE_RAY;
        int second = first == K_SERVICE ? K_SERVICE_RAY : K_SERVICE;
        reflector_item_t it;
        if ((s_cached(cl, first, ns, rec.svc, &it) || s_cached(cl, second, ns, rec.svc, &it)) &&
            s_rec_read(it.extra, it.extra_len, &o->rec))
            found = s_owner_of_child(cl, ns, &o->rec, o);
    }
    if (!found) {
        o->group = o->kind = o->name = o->uid = "";
        o->generation = 0;
        o->rec = rec;
        if (o->rec.ouid == rec.uid_buf)
            o->rec.ouid = o->rec.uid_buf; /* the copy's own buffer */
        found = s_owner_of_child(cl, ns, &o->rec, o);
    }
    if (!found) {
        o->group = o->kind = o->name = o->uid = "";
        o->generation = 0;
    }
}

/* The top Ray owner of a changed object: the end of the chain of Ray controller references that
 * starts at its owner (watcher.h, "Top owner"). Strings borrowed from the Ray caches, the decoded
 * records below or the record of the changed object. */
typedef struct {
    const char *kind; /* the top owner's kind, "" when it is the owner itself (or none) */
    const char *name; /* its name */
    const char *uid; /* its uid, "" unknown */
    int64_t generation; /* its generation, 0 unknown */
    rec_t rec[2]; /* records decoded on the way (a reference's uid may point into one) */
    reflector_item_t item; /* the cache entry looked up last (its uid may point into it) */
} top_t;

/* True when kind/name is one of the n entries of seen. */
static bool s_seen(const char *const seen[][2], size_t n, const char *kind, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(seen[i][0], kind) == 0 && strcmp(seen[i][1], name) == 0)
            return true;
    return false;
}

/* The top Ray owner of a changed object in namespace ns whose owner is o into *t; `self` is the
 * decoded record of the changed object (used when it is its own owner, NULL unknown). */
static void s_top_owner(watcher_t *w, const wcluster_t *cl, const char *ns, const owner_t *o,
                        const rec_t *self, top_t *t)
{
    memset(t, 0, sizeof(*t));
    t->kind = t->name = t->uid = "";
    if (!*o->kind)
        return;
    const char *seen[WATCHER_OWNER_DEPTH + 1][2] = {{o->kind, o->name}};
    const char *kind = o->kind, *name = o->name, *uid = o->uid;
    int64_t gen = o->generation;
    const rec_t *r = o->self && self && self->ray ? self : NULL;
    size_t steps = 0;
    for (;;) {
        if (!r) {
            int k = s_kind_of(kind);
            rec_t *slot = &t->rec[steps & 1]; /* the other slot may hold uid */
            if (k < 0 || strcmp(s_kinds[k].group, S_RAY_GROUP) != 0 ||
                !s_cached(cl, k, ns, name, &t->item) || (*uid && strcmp(uid, t->item.uid) != 0) ||
                !s_rec_read(t->item.extra, t->item.extra_len, slot) || !slot->ray)
                break; /* not cached (or another object of that name): the end of the chain */
            uid = t->item.uid;
            gen = slot->generation;
            r = slot;
        }
        if (!*r->okind)
            break; /* no Ray owner: kind/name is the top */
        if (steps == WATCHER_OWNER_DEPTH || s_seen(seen, steps + 1, r->okind, r->oname)) {
            w->st.owner_chains_cut++;
            return;
        }
        kind = r->okind;
        name = r->oname;
        uid = r->ouid;
        gen = 0;
        r = NULL;
        steps++;
        seen[steps][0] = kind;
        seen[steps][1] = name;
    }
    if (steps == 0)
        return;
    t->kind = kind;
    t->name = name;
    t->uid = uid;
    t->generation = gen;
}

/* "Type=Status,..." of status.conditions into w->scratch; returns it or NULL when none. */
static const char *s_conditions(watcher_t *w, const json_t *obj)
{
    json_t *conds = jx_get(obj, "status.conditions");
    if (!json_is_array(conds) || json_array_size(conds) == 0)
        return NULL;
    buf_reset(&w->scratch);
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *t = jx_str(c, "type", "");
        const char *s = jx_str(c, "status", "");
        if (!*t)
            continue;
        if (buf_printf(&w->scratch, "%s%s=%s", w->scratch.len ? "," : "", t, s) != 0)
            break;
    }
    return w->scratch.len ? buf_str(&w->scratch) : NULL;
}

/* Appends s to the arena, recording its offset and length. Returns 0 or an error. */
static int s_arena_put(watcher_t *w, pend_t *p, int i, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    p->off[i] = (uint32_t)w->arena.len;
    p->len[i] = (uint32_t)n;
    return n ? buf_append(&w->arena, s, n) : 0;
}

static void s_arm_retry(watcher_t *w, int64_t delay_ms);

/* Queues the event; the row write was queued already. */
static void s_queue_event(watcher_t *w, const wcluster_t *cl, int k, int32_t type, const owner_t *o,
                          const char *ns, const json_t *obj)
{
    if (!w->pub)
        return;
    if (w->npend >= WATCHER_PENDING_MAX) {
        w->st.drops_queue++;
        s_rlog(w, &w->rl_drop, "watcher: event queue full, event dropped", "cluster", cl->name);
        return;
    }
    if (w->npend == w->cap_pend) {
        size_t cap = w->cap_pend ? w->cap_pend * 2 : 1024;
        pend_t *np = realloc(w->pend, cap * sizeof(*np));
        if (!np) {
            w->st.drops_queue++;
            return;
        }
        w->pend = np;
        w->cap_pend = cap;
    }
    pend_t *p = &w->pend[w->npend];
    memset(p, 0, sizeof(*p));
    p->cl = cl;
    p->type = type;
    p->generation = o->generation;
    const char *name = jx_str(obj, "metadata.name", "");
    bool owned = *o->kind != '\0';
    const char *okind = owned ? o->kind : s_kinds[k].kind;
    const char *oname = owned ? o->name : name;
    p->shard = bus_shard_of(cl->name, ns, oname, w->shards);
    size_t mark = w->arena.len;
    int rc = s_arena_put(w, p, P_GROUP, owned ? o->group : s_kinds[k].group);
    rc = rc ? rc : s_arena_put(w, p, P_KIND, okind);
    rc = rc ? rc : s_arena_put(w, p, P_NS, ns);
    rc = rc ? rc : s_arena_put(w, p, P_NAME, oname);
    rc = rc ? rc : s_arena_put(w, p, P_UID, owned ? o->uid : jx_str(obj, "metadata.uid", ""));
    rc = rc ? rc : s_arena_put(w, p, P_RV, jx_str(obj, "metadata.resourceVersion", ""));
    if (owned && !o->self) {
        rc = rc ? rc : s_arena_put(w, p, P_CKIND, s_kinds[k].kind);
        rc = rc ? rc : s_arena_put(w, p, P_CNAME, name);
        rc = rc ? rc : s_arena_put(w, p, P_CUID, jx_str(obj, "metadata.uid", ""));
    }
    if (rc != 0) {
        w->arena.len = mark;
        w->st.drops_queue++;
        s_rlog(w, &w->rl_drop, "watcher: event arena full, event dropped", "cluster", cl->name);
        return;
    }
    w->npend++;
}

/* Queues the event under the owner o and, when o has a top Ray owner, under that one too. `rec`
 * (rlen bytes) is obj's record, NULL when unknown. */
static void s_queue_events(watcher_t *w, const wcluster_t *cl, int k, int32_t type,
                           const owner_t *o, const char *ns, const json_t *obj, const void *rec,
                           size_t rlen)
{
    s_queue_event(w, cl, k, type, o, ns, obj);
    if (!w->pub)
        return;
    rec_t self;
    top_t t;
    s_top_owner(w, cl, ns, o, rec && s_rec_read(rec, rlen, &self) ? &self : NULL, &t);
    if (!*t.kind)
        return;
    owner_t top = {.group = S_RAY_GROUP,
                   .kind = t.kind,
                   .name = t.name,
                   .uid = t.uid,
                   .generation = t.generation};
    s_queue_event(w, cl, k, type, &top, ns, obj);
}

static int32_t s_type(reflector_event_t t)
{
    switch (t) {
    case REFLECTOR_ADDED:
        return RAYFLEET__EVENT_TYPE__EVENT_ADDED;
    case REFLECTOR_MODIFIED:
        return RAYFLEET__EVENT_TYPE__EVENT_MODIFIED;
    case REFLECTOR_DELETED:
        return RAYFLEET__EVENT_TYPE__EVENT_DELETED;
    default:
        return RAYFLEET__EVENT_TYPE__EVENT_RESYNC;
    }
}

/* Counts a queued row write. */
static void s_row_queued(watcher_t *w)
{
    w->st.rows_written++;
    if (w->unflushed++ == 0)
        w->first_ms = loop_now(w->loop);
}

/* Remembers that the row of obj could not be queued; it is written again after a flush, from
 * `raw` (len bytes: the complete object; the cache holds no tree) when given, with obj's record
 * (rec, rlen bytes). */
static void s_mark_dirty(wres_t *x, const json_t *obj, const char *raw, size_t len, const void *rec,
                         size_t rlen)
{
    watcher_t *w = x->w;
    char key[S_KEY_MAX];
    snprintf(key, sizeof(key), "%s/%s", jx_str(obj, "metadata.namespace", ""),
             jx_str(obj, "metadata.name", ""));
    if (!x->dirty)
        x->dirty = json_object();
    if (x->dirty)
        json_object_set_new(x->dirty, key,
                            json_pack("[O, o, o]", obj,
                                      raw && len ? json_stringn_nocheck(raw, len) : json_null(),
                                      json_stringn_nocheck(rec, rlen)));
    w->any_dirty = true;
    w->st.write_errors++;
    s_rlog(w, &w->rl_write, "watcher: row write refused, will retry", "cluster", x->cl->name);
    s_arm_retry(w, WATCHER_RETRY_MS);
}

/* obj as compact JSON in w->jbuf (reused, grown as needed up to K8S_DEFAULT_MAX_EVENT), or
 * NULL when out of memory or too large. Saves a malloc and free per event over json_dumps(). */
static const char *s_dump(watcher_t *w, const json_t *obj)
{
    size_t need = json_dumpb(obj, w->jbuf, w->jcap, JSON_COMPACT);
    if (need == 0 || need > K8S_DEFAULT_MAX_EVENT)
        return NULL;
    if (need >= w->jcap) {
        size_t cap = need + 1 > 2 * w->jcap ? need + 1 : 2 * w->jcap;
        char *nb = realloc(w->jbuf, cap);
        if (!nb)
            return NULL;
        w->jbuf = nb;
        w->jcap = cap;
        need = json_dumpb(obj, w->jbuf, w->jcap, JSON_COMPACT);
        if (need == 0 || need >= w->jcap)
            return NULL;
    }
    w->jbuf[need] = '\0';
    return w->jbuf;
}

/* The string member `key` of the object `meta`, or `def` when missing or not a string. */
static const char *s_mstr(const json_t *meta, const char *key, const char *def)
{
    const char *v = json_string_value(json_object_get(meta, key));
    return v ? v : def;
}

/* The JSON text of the row: `raw` (the text obj was parsed from, len bytes) copied into w->jbuf
 * and terminated when there is one, which saves serializing the tree again; else s_dump(). */
static const char *s_row_json(watcher_t *w, const json_t *obj, const char *raw, size_t len)
{
    if (!raw || len == 0 || len > K8S_DEFAULT_MAX_EVENT)
        return s_dump(w, obj);
    if (len >= w->jcap) {
        size_t cap = len + 1 > 2 * w->jcap ? len + 1 : 2 * w->jcap;
        char *nb = realloc(w->jbuf, cap);
        if (!nb)
            return NULL;
        w->jbuf = nb;
        w->jcap = cap;
    }
    memcpy(w->jbuf, raw, len);
    w->jbuf[len] = '\0';
    return w->jbuf;
}

/* The row's JSON text `js` (in w->jbuf) with secret values replaced (redact.h: literal values of
 * secret-looking env entries, Secret data, the last-applied annotation, ...): observed rows hold
 * no secret, so neither `rayfleetctl sql` nor a copy of observed.db shows one. Reconcilers that
 * need a replaced value read the object from the API server (ctrl.h, ctrl_pass_t.live). Most
 * objects hold no secret word at all and are stored as received, unparsed. NULL when out of
 * memory or too large. */
static const char *s_redacted(watcher_t *w, const char *js)
{
    size_t n = strlen(js);
    if (!redact_text_may_hold(js, n))
        return js;
    w->st.redacted++;
    json_t *full = json_loadb(js, n, 0, NULL);
    json_t *red = full ? redact_object(full) : NULL;
    json_decref(full);
    const char *out = red ? s_dump(w, red) : NULL;
    json_decref(red);
    return out;
}

/* Writes the row of one change and queues its event. `raw` (len bytes, may be NULL) is the JSON
 * text obj was parsed from; `rec` (rlen bytes) obj's record, or NULL to make it from obj. */
static void s_handle(wres_t *x, reflector_event_t type, const json_t *obj, const char *raw,
                     size_t len, const void *rec, size_t rlen)
{
    watcher_t *w = x->w;
    const wkind_t *kd = &s_kinds[x->kind];
    const json_t *meta = json_object_get(obj, "metadata"); /* looked up once, not per field */
    const char *ns = s_mstr(meta, "namespace", "");
    const char *name = s_mstr(meta, "name", "");
    if (type == REFLECTOR_DELETED && s_twin_holds(x, ns, name))
        return; /* it left x's selector for its twin's: the twin wrote (or writes) its row */
    unsigned char local[S_REC_MAX];
    if (!rec) {
        int n = s_rec_make(x->kind, x->kind == K_POD && w->watch_nodes, obj, local, sizeof(local));
        rec = n > 0 ? local : NULL;
        rlen = n > 0 ? (size_t)n : 0;
    }
    owner_t o;
    s_owner(x->cl, x->kind, obj, rec, rlen, &o);
    int rc;
    if (type == REFLECTOR_DELETED) {
        rc = store_observed_delete(w->store, x->cl->name, kd->kind, ns, name);
    } else if (type == REFLECTOR_RESYNC && !raw) {
        rc = 0; /* unchanged: the row holds it already (and the cache only a projection) */
    } else {
        /* a capacity row is the projection (bounded: no env, no volumes), never a secret */
        const char *js = S_CAPACITY_KIND(x->kind) ? s_dump(w, obj) : s_row_json(w, obj, raw, len);
        if (js && !S_CAPACITY_KIND(x->kind))
            js = s_redacted(w, js);
        store_observed_t row = {
            .cluster = x->cl->name,
            .api_group = kd->group,
            .kind = kd->kind,
            .ns = ns,
            .name = name,
            .uid = s_mstr(meta, "uid", NULL),
            .resource_version = s_mstr(meta, "resourceVersion", NULL),
            .generation = json_is_integer(json_object_get(meta, "generation"))
                              ? json_integer_value(json_object_get(meta, "generation"))
                              : 0,
            .owner_kind = o.kind,
            .owner_name = o.name,
            .owner_uid = *o.uid ? o.uid : NULL,
            .phase = kd->phase_path ? jx_str(obj, kd->phase_path, NULL) : NULL,
            .conditions = s_conditions(w, obj),
            .deleting = json_object_get(meta, "deletionTimestamp") != NULL,
            .json = js,
        };
        rc = js ? store_observed_upsert(w->store, &row) : ERR_NOMEM;
    }
    if (rc != 0) {
        s_mark_dirty(x, obj, raw, len, rec, rlen);
        return;
    }
    s_row_queued(w);
    if (!S_CAPACITY_KIND(x->kind)) /* no controller reconciles Nodes or every pod */
        s_queue_events(w, x->cl, x->kind, s_type(type), &o, ns, obj, rec, rlen);
}

/* Copies the members of src named in `names` (NULL-terminated) into dst, in src's order. */
static int s_copy_members(json_t *dst, const json_t *src, const char *const *names)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v)
    {
        for (size_t i = 0; names[i]; i++)
            if (strcmp(key, names[i]) == 0 && json_object_set_nocheck(dst, key, v) != 0)
                return ERR_NOMEM;
    }
    return 0;
}

/* The PodUsage projection (s_keep_poduse) of a Ray pod's event object obj (s_keep_pod_usage):
 * what the PodUsage reflector's projection of the same text holds, members in the text's order
 * (jproj.h: the objects on the way kept even when empty; apiVersion and kind, which k8s.c keeps
 * in a watch event's object, as they are). The spec is shared (its kept paths are the same).
 * NULL when out of memory. */
static json_t *s_usage_obj(const json_t *obj)
{
    static const char *const meta_keys[] = {"name", "namespace", "uid", "resourceVersion", NULL};
    static const char *const status_keys[] = {"phase", NULL};
    json_t *u = json_object();
    const char *key;
    json_t *v;
    int rc = u ? 0 : ERR_NOMEM;
    json_object_foreach((json_t *)obj, key, v)
    {
        json_t *part = NULL;
        if (rc != 0)
            continue;
        if (strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0)
            part = json_incref(v);
        else if (!json_is_object(v))
            continue;
        else if (strcmp(key, "spec") == 0) {
            part = json_incref(v);
        } else if (strcmp(key, "metadata") == 0 || strcmp(key, "status") == 0) {
            part = json_object();
            rc = part ? s_copy_members(part, v, *key == 'm' ? meta_keys : status_keys) : ERR_NOMEM;
        }
        if (part && rc != 0)
            json_decref(part);
        else if (part && json_object_set_new_nocheck(u, key, part) != 0)
            rc = ERR_NOMEM;
    }
    if (rc != 0)
        json_decref(u);
    return rc == 0 ? u : NULL;
}

/* --watch.nodes: the PodUsage row of a Ray pod, written by its reflector x (the PodUsage
 * reflector does not select Ray pods: each pod's event is decoded once). The row is the one the
 * PodUsage reflector would write (same projection, identity and rule: a MODIFIED rewrites it only
 * when the usage hash, the tail of the pod's record, changed). `rec`/`prev`: the pod's records
 * now and before (MODIFIED), NULL when unknown. */
static void s_pod_usage(wres_t *x, reflector_event_t type, const json_t *obj, const void *rec,
                        size_t rlen, const void *prev, size_t plen)
{
    wres_t *xu = s_slot(x, K_PODUSE);
    if (!xu->r || type == REFLECTOR_RESYNC)
        return; /* RESYNC rewrites no row */
    if (type == REFLECTOR_MODIFIED && rec && prev && rlen >= S_REC_USAGE_TAIL &&
        plen >= S_REC_USAGE_TAIL &&
        memcmp((const char *)rec + rlen - S_REC_USAGE_TAIL,
               (const char *)prev + plen - S_REC_USAGE_TAIL, S_REC_USAGE_TAIL) == 0)
        return; /* nothing it counts changed */
    json_t *u = s_usage_obj(obj);
    if (!u) {
        x->w->st.write_errors++;
        s_rlog(x->w, &x->w->rl_write, "watcher: out of memory, PodUsage row not written", "cluster",
               x->cl->name);
        return;
    }
    if (xu->dirty) {
        /* this change supersedes a pending retry of the row (as s_on_event() does) */
        char key[S_KEY_MAX];
        snprintf(key, sizeof(key), "%s/%s", jx_str(obj, "metadata.namespace", ""),
                 jx_str(obj, "metadata.name", ""));
        json_object_del(xu->dirty, key);
    }
    unsigned char urec[S_REC_USAGE_LEN];
    int n = s_rec_make(K_PODUSE, false, u, urec, sizeof(urec));
    x->w->st.usage_by_pods++;
    s_handle(xu, type, u, NULL, 0, n > 0 ? urec : NULL, n > 0 ? (size_t)n : 0);
    json_decref(u);
}

static void s_on_event(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old, void *arg)
{
    wres_t *x = arg;
    x->w->st.events_in++;
    if (x->dirty) {
        /* a newer change supersedes a pending retry of the same object */
        char key[S_KEY_MAX];
        snprintf(key, sizeof(key), "%s/%s", jx_str(obj, "metadata.namespace", ""),
                 jx_str(obj, "metadata.name", ""));
        json_object_del(x->dirty, key);
    }
    size_t len = 0, rlen = 0, olen = 0;
    const void *rec = reflector_event_extra(r, &rlen);
    if (x->kind == K_PODUSE && type == REFLECTOR_MODIFIED) {
        /* a PodUsage row changes only when what it counts does (not on a label or status
         * patch): its rows' resourceVersion is that of the last change that mattered */
        const void *prev = reflector_event_old_extra(r, &olen);
        if (rec && prev && rlen == S_REC_USAGE_LEN && olen == rlen && memcmp(rec, prev, rlen) == 0)
            return;
    }
    const char *raw = reflector_event_raw(r, obj, &len);
    s_handle(x, type, obj, raw, len, rec, rlen);
    if (x->kind == K_POD && x->w->watch_nodes) {
        const void *prev = type == REFLECTOR_MODIFIED ? reflector_event_old_extra(r, &olen) : NULL;
        s_pod_usage(x, type, obj, rec, rlen, prev, olen);
    }
}

/* The stale rows s_on_synced() collects. */
typedef struct {
    wres_t *x; /* the resource that synced */
    json_t *stale; /* array of the rows its list did not contain */
} stale_t;

/* Collects one observed row that x's reflector does not hold. */
static int s_stale_row(const store_observed_t *row, void *arg)
{
    stale_t *t = arg;
    if (!row->ns || !row->name || reflector_lookup(t->x->r, row->ns, row->name, NULL) ||
        s_twin_holds(t->x, row->ns, row->name))
        return 0;
    json_t *o =
        json_pack("{s:{s:s, s:s, s:s?, s:s?}, s:s?, s:s?, s:s?}", "metadata", "namespace", row->ns,
                  "name", row->name, "uid", row->uid, "resourceVersion", row->resource_version,
                  "ok", row->owner_kind, "on", row->owner_name, "ou", row->owner_uid);
    if (o)
        json_array_append_new(t->stale, o);
    return 0;
}

/* Deletes the rows of x's kind (and namespace) that no reflector writing them holds. */
static void s_stale_pass(wres_t *x)
{
    watcher_t *w = x->w;
    const wkind_t *kd = &s_kinds[x->kind];
    json_t *stale = json_array();
    if (!stale || store_observed_scan(w->store, x->cl->name, kd->kind, x->ns, s_stale_row,
                                      &(stale_t){.x = x, .stale = stale}) != 0)
        log_error("watcher: cannot read observed rows", "kind", kd->kind, NULL);
    size_t i;
    json_t *o;
    json_array_foreach(stale, i, o)
    {
        const char *ns = jx_str(o, "metadata.namespace", "");
        const char *name = jx_str(o, "metadata.name", "");
        if (store_observed_delete(w->store, x->cl->name, kd->kind, ns, name) != 0) {
            w->st.write_errors++;
            continue;
        }
        s_row_queued(w);
        w->st.stale_deleted++;
        owner_t ow = {.group = "",
                      .kind = jx_str(o, "ok", ""),
                      .name = jx_str(o, "on", ""),
                      .uid = jx_str(o, "ou", "")};
        if (s_kind_of(ow.kind) >= 0 && strcmp(s_kinds[s_kind_of(ow.kind)].group, S_RAY_GROUP) == 0)
            ow.group = S_RAY_GROUP;
        ow.self = strcmp(ow.kind, kd->kind) == 0 && strcmp(ow.name, name) == 0;
        if (!S_CAPACITY_KIND(x->kind))
            s_queue_events(w, x->cl, x->kind, RAYFLEET__EVENT_TYPE__EVENT_DELETED, &ow, ns, o, NULL,
                           0);
    }
    json_decref(stale);
}

/* Deletes the rows of x's kind (and namespace) that its first list did not contain; for a kind
 * with twins, once all of them have listed, the rows none of them holds. The PodUsage rows have
 * two writers (the PodUsage and the Ray pod reflectors): the last of the two to sync deletes. */
static void s_on_synced(reflector_t *r, void *arg)
{
    wres_t *x = arg;
    const wkind_t *kd = &s_kinds[x->kind];
    if (x->warned)
        log_info("watcher: resource synced", "cluster", x->cl->name, "resource", kd->resource,
                 "namespace", x->ns ? x->ns : "", NULL);
    x->warned = false;
    if (x->kind == K_POD && s_slot(x, K_PODUSE)->r && s_twins_synced(s_slot(x, K_PODUSE)) &&
        reflector_synced(s_slot(x, K_PODUSE)->r))
        s_stale_pass(s_slot(x, K_PODUSE));
    if (!s_twins_synced(x))
        return; /* the rows of the kind are the twins' too: the last of them to sync deletes */
    s_stale_pass(x);
#ifdef __GLIBC__
    /* a first list parses pages of big objects and queues rows: hand the freed heap back */
    malloc_trim(0);
#endif
}

/* ---------- flush and publish ---------- */

static int64_t s_retry_fn(loop_t *loop, int64_t timer_id, void *arg)
{
    watcher_t *w = arg;
    w->retry_timer = 0;
    return LOOP_TIMER_DONE; /* the before-sleep hook does the work on the next turn */
}

static void s_arm_retry(watcher_t *w, int64_t delay_ms)
{
    if (w->retry_timer)
        return;
    int64_t t = loop_add_timer(w->loop, delay_ms, s_retry_fn, w);
    w->retry_timer = t > 0 ? t : 0;
}

static envwire_str_t s_view(const watcher_t *w, const pend_t *p, int i)
{
    envwire_str_t v = {w->arena.data + p->off[i], p->len[i]};
    if (!p->len[i])
        v.p = NULL;
    return v;
}

static void s_publish(watcher_t *w)
{
    uint64_t id = w->st.last_event_id;
    uint64_t now = (uint64_t)rftime_now_us();
    if (now > id)
        id = now;
    for (size_t i = 0; i < w->npend; i++) {
        const pend_t *p = &w->pend[i];
        envwire_object_changed_t oc = {
            .cluster = envwire_str(p->cl->name),
            .group = s_view(w, p, P_GROUP),
            .kind = s_view(w, p, P_KIND),
            .namespace_ = s_view(w, p, P_NS),
            .name = s_view(w, p, P_NAME),
            .uid = s_view(w, p, P_UID),
            .resource_version = s_view(w, p, P_RV),
            .generation = p->generation,
            .type = p->type,
            .shard = p->shard,
            .event_id = ++id,
            .child_kind = s_view(w, p, P_CKIND),
            .child_name = s_view(w, p, P_CNAME),
            .child_uid = s_view(w, p, P_CUID),
        };
        int rc = bus_pub_publish_view(w->pub, &oc);
        if (rc == 0) {
            w->st.events_published++;
        } else {
            w->st.drops_hwm++;
            s_rlog(w, &w->rl_drop, "watcher: event not published (bus full or error)", "error",
                   err_str(rc));
        }
    }
    w->st.last_event_id = id;
    w->npend = 0;
    buf_reset(&w->arena);
    /* a burst (a locked database, a big relist) grew the queue: give the memory back */
    if (w->cap_pend > WATCHER_PENDING_KEEP) {
        free(w->pend);
        w->pend = NULL;
        w->cap_pend = 0;
    }
    if (w->arena.cap > WATCHER_ARENA_KEEP)
        buf_free(&w->arena); /* stays usable: the next append allocates again */
    bus_pub_flush(w->pub); /* now: the bus's own before-sleep hook may have run this turn */
}

/* Writes again the rows the store refused, from the reflectors' caches. */
static void s_retry_dirty(watcher_t *w)
{
    w->any_dirty = false;
    for (size_t c = 0; c < w->nclusters; c++) {
        wcluster_t *cl = &w->clusters[c];
        for (size_t i = 0; i < K_COUNT * cl->nns; i++) {
            wres_t *x = &cl->res[i];
            json_t *d = x->dirty;
            if (!d)
                continue;
            x->dirty = NULL;
            const char *key;
            json_t *ent;
            json_object_foreach(d, key, ent)
            {
                json_t *obj = json_array_get(ent, 0);
                json_t *raw = json_array_get(ent, 1);
                json_t *rec = json_array_get(ent, 2);
                const char *ons = jx_str(obj, "metadata.namespace", "");
                const char *oname = jx_str(obj, "metadata.name", "");
                /* a PodUsage row is current while either of its writers caches the pod */
                bool cur = x->kind == K_PODUSE ? s_twin_holds(x, ons, oname)
                                               : reflector_lookup(x->r, ons, oname, NULL);
                /* obj and its text are the latest state: a newer event would have replaced the
                 * entry */
                s_handle(x, cur ? REFLECTOR_MODIFIED : REFLECTOR_DELETED, obj,
                         cur ? json_string_value(raw) : NULL, cur ? json_string_length(raw) : 0,
                         json_string_length(rec) ? json_string_value(rec) : NULL,
                         json_string_length(rec));
            }
            json_decref(d);
        }
    }
    if (w->npend)
        s_arm_retry(w, 0);
}

int watcher_flush(watcher_t *w)
{
    if (!w)
        return ERR_INVAL;
    int rc = store_flush(w->store);
    if (rc != 0) {
        if (rc == ERR_BUSY)
            w->st.flush_busy++;
        else
            s_rlog(w, &w->rl_flush, "watcher: store flush failed, will retry", "error",
                   err_str(rc));
        s_arm_retry(w, WATCHER_RETRY_MS);
        return rc;
    }
    w->unflushed = 0;
    if (w->jcap > WATCHER_JBUF_KEEP) {
        /* grown to one big object: not kept for the next */
        free(w->jbuf);
        w->jbuf = NULL;
        w->jcap = 0;
    }
    if (w->npend)
        s_publish(w);
    if (w->any_dirty)
        s_retry_dirty(w);
    return 0;
}

static int64_t s_delay_fn(loop_t *loop, int64_t timer_id, void *arg)
{
    watcher_t *w = arg;
    w->delay_timer = 0;
    return LOOP_TIMER_DONE; /* the before-sleep hook commits on this turn */
}

static int s_hook(loop_t *loop, void *arg)
{
    watcher_t *w = arg;
    if (w->unflushed && w->unflushed < WATCHER_FLUSH_BATCH && w->flush_delay_ms > 0 &&
        !w->any_dirty) {
        int64_t age = loop_now(loop) - w->first_ms;
        if (age < w->flush_delay_ms) {
            /* batch: wait for more rows, at most until the oldest has waited the delay */
            if (!w->delay_timer) {
                int64_t t = loop_add_timer(loop, w->flush_delay_ms - age, s_delay_fn, w);
                w->delay_timer = t > 0 ? t : 0;
            }
            if (w->delay_timer)
                return 0;
        }
    }
    watcher_flush(w);
    return 0;
}

/* ---------- clusters' health (watch_nodes) ---------- */

/* Writes cluster cl's WATCHER_HEALTH_KIND row (watcher.h, "Capacity"). */
static void s_health_row(wcluster_t *cl)
{
    watcher_t *w = cl->w;
    json_t *o = json_pack("{s:{s:s,s:s},s:I,s:I,s:s}", "metadata", "name", cl->name, "namespace",
                          "", "lastOkMs", (json_int_t)cl->last_ok_ms, "checkedMs",
                          (json_int_t)rftime_now_ms(), "lastError", cl->last_error);
    const char *js = o ? s_dump(w, o) : NULL;
    json_decref(o);
    store_observed_t row = {.cluster = cl->name,
                            .api_group = "",
                            .kind = WATCHER_HEALTH_KIND,
                            .ns = "",
                            .name = cl->name,
                            .phase = cl->last_error[0] ? "Failing" : "Answering",
                            .json = js};
    if (!js || store_observed_upsert(w->store, &row) != 0) {
        w->st.write_errors++;
        return;
    }
    s_row_queued(w);
}

static void s_probe_done(k8s_client_t *client, const k8s_result_t *res, void *arg)
{
    wcluster_t *cl = arg;
    cl->probe_id = 0;
    if (res->err == 0) {
        cl->last_ok_ms = rftime_now_ms();
        cl->last_error[0] = '\0';
    } else {
        snprintf(cl->last_error, sizeof(cl->last_error), "GET " WATCHER_PROBE_PATH ": %s%s%s",
                 err_str(res->err), res->message[0] ? ": " : "", res->message);
    }
    s_health_row(cl);
}

static int64_t s_probe_fn(loop_t *loop, int64_t timer_id, void *arg)
{
    watcher_t *w = arg;
    for (size_t c = 0; c < w->nclusters; c++) {
        wcluster_t *cl = &w->clusters[c];
        if (cl->probe_id)
            continue; /* still waiting: its timeout ends it */
        k8s_raw_opts_t o = {
            .timeout_ms = WATCHER_PROBE_TIMEOUT_MS, .max_retries = -1, .urgent = true};
        int64_t id =
            k8s_raw(cl->client, "GET", WATCHER_PROBE_PATH, NULL, NULL, 0, &o, s_probe_done, cl);
        if (id > 0) {
            cl->probe_id = id;
        } else {
            snprintf(cl->last_error, sizeof(cl->last_error), "GET " WATCHER_PROBE_PATH ": %s",
                     err_str((int)id));
            s_health_row(cl);
        }
    }
    return WATCHER_PROBE_MS;
}

/* ---------- readiness and stats ---------- */

static int64_t s_ready_fn(loop_t *loop, int64_t timer_id, void *arg)
{
    watcher_t *w = arg;
    for (size_t c = 0; c < w->nclusters; c++) {
        wcluster_t *cl = &w->clusters[c];
        for (size_t i = 0; i < K_COUNT * cl->nns; i++) {
            wres_t *x = &cl->res[i];
            if (!x->r)
                continue;
            reflector_stats_t rs;
            reflector_stats(x->r, &rs);
            if (reflector_synced(x->r) || x->warned || rs.failures == 0)
                continue;
            x->warned = true;
            log_warn("watcher: resource not synced, retrying with backoff (CRD not installed?)",
                     "cluster", cl->name, "resource", s_kinds[x->kind].resource, "namespace",
                     x->ns ? x->ns : "", NULL);
        }
    }
    return WATCHER_READY_CHECK_MS;
}

static int64_t s_stats_fn(loop_t *loop, int64_t timer_id, void *arg)
{
    watcher_t *w = arg;
    watcher_log_stats(w);
    return w->stats_ms;
}

bool watcher_ready(const watcher_t *w)
{
    if (!w)
        return false;
    for (size_t c = 0; c < w->nclusters; c++)
        for (size_t i = 0; i < K_COUNT * w->clusters[c].nns; i++)
            if (w->clusters[c].res[i].r && !reflector_synced(w->clusters[c].res[i].r))
                return false;
    return true;
}

int watcher_unsynced(const watcher_t *w, buf_t *out)
{
    int n = 0;
    for (size_t c = 0; w && c < w->nclusters; c++) {
        const wcluster_t *cl = &w->clusters[c];
        for (size_t i = 0; i < K_COUNT * cl->nns; i++) {
            const wres_t *x = &cl->res[i];
            if (!x->r || reflector_synced(x->r))
                continue;
            const wkind_t *kd = &s_kinds[x->kind];
            int rc = buf_printf(out, "%s/%s/%s%s%s\n", cl->name, *kd->group ? kd->group : "core",
                                kd->resource, x->ns ? "/" : "", x->ns ? x->ns : "");
            if (rc != 0)
                return rc;
            n++;
        }
    }
    return n;
}

int watcher_readiness(void *w, buf_t *why)
{
    return watcher_unsynced(w, why);
}

void watcher_stats(const watcher_t *w, watcher_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!w)
        return;
    *out = w->st;
    out->pending = w->npend;
    for (size_t c = 0; c < w->nclusters; c++)
        for (size_t i = 0; i < K_COUNT * w->clusters[c].nns; i++) {
            if (!w->clusters[c].res[i].r)
                continue;
            reflector_stats_t rs;
            reflector_stats(w->clusters[c].res[i].r, &rs);
            out->relists += rs.relists;
            out->list_failures += rs.failures;
            out->objects += reflector_count(w->clusters[c].res[i].r);
        }
}

/* The counters /metrics exports, read from watcher_stats() at each scrape. */
static const struct {
    const char *name; /* family name */
    const char *help; /* its help text */
    metric_type_t type; /* counter or gauge */
    const char *reason; /* value of the "reason" label, or NULL for a family without labels */
    size_t off; /* offset of the field in watcher_stats_t */
    bool is_size; /* the field is a size_t (else uint64_t) */
} s_exported[] = {
#define X_(name, help, type, reason, field, sz)                                                    \
    {                                                                                              \
        "rayfleet_watcher_" name, help, type, reason, offsetof(watcher_stats_t, field), sz         \
    }
    X_("reflector_events_total", "Events handled from the reflectors.", METRIC_COUNTER, NULL,
       events_in, false),
    X_("rows_written_total", "Observed rows upserted or deleted.", METRIC_COUNTER, NULL,
       rows_written, false),
    X_("write_errors_total", "Row writes the store refused (retried from the cache).",
       METRIC_COUNTER, NULL, write_errors, false),
    X_("stale_rows_deleted_total", "Stale rows deleted at the first sync.", METRIC_COUNTER, NULL,
       stale_deleted, false),
    X_("events_published_total", "ObjectChanged events published on the bus.", METRIC_COUNTER, NULL,
       events_published, false),
    X_("events_dropped_total", "Events dropped, by reason.", METRIC_COUNTER, "hwm", drops_hwm,
       false),
    X_("events_dropped_total", "Events dropped, by reason.", METRIC_COUNTER, "queue", drops_queue,
       false),
    X_("flush_busy_total", "Store flushes that met a locked database.", METRIC_COUNTER, NULL,
       flush_busy, false),
    X_("relists_total", "Relists after an expired resource version (410).", METRIC_COUNTER, NULL,
       relists, false),
    X_("list_failures_total", "Failed lists and watches.", METRIC_COUNTER, NULL, list_failures,
       false),
    X_("pod_usage_rows_total",
       "PodUsage rows written or deleted by the Ray pod reflector (--watch.nodes).", METRIC_COUNTER,
       NULL, usage_by_pods, false),
    X_("pending_events", "Events waiting for the next flush.", METRIC_GAUGE, NULL, pending, true),
    X_("objects", "Objects in the reflector caches.", METRIC_GAUGE, NULL, objects, true),
#undef X_
};

static double s_read_stat(void *arg, int which)
{
    watcher_stats_t st;
    watcher_stats(arg, &st);
    const char *field = (const char *)&st + s_exported[which].off;
    if (s_exported[which].is_size)
        return (double)*(const size_t *)(const void *)field;
    return (double)*(const uint64_t *)(const void *)field;
}

static double s_read_ready(void *arg, int which)
{
    return watcher_ready(arg) ? 1 : 0;
}

int watcher_metrics(watcher_t *w, metrics_t *m)
{
    if (!w)
        return ERR_INVAL;
    if (!m) { /* detach: nothing records into the registry any more */
        for (size_t c = 0; c < w->nclusters; c++)
            k8s_client_metrics(w->clusters[c].client, NULL);
        store_set_commit_metric(w->store, NULL);
        return 0;
    }
    static const char *const reason[] = {"reason", NULL};
    for (size_t i = 0; i < sizeof(s_exported) / sizeof(s_exported[0]); i++) {
        const char *name = s_exported[i].name;
        /* A family of two series (by reason) is made at its first row, reused at the next. */
        bool again = i > 0 && strcmp(s_exported[i - 1].name, name) == 0;
        metric_t *fam = again ? metrics_find(m, name) : NULL;
        if (!again && metrics_find(m, name))
            return ERR_EXISTS;
        if (!fam && s_exported[i].type == METRIC_COUNTER)
            fam =
                metrics_counter(m, name, s_exported[i].help, s_exported[i].reason ? reason : NULL);
        else if (!fam)
            fam = metrics_gauge(m, name, s_exported[i].help, NULL);
        const char *const values[] = {s_exported[i].reason};
        int rc = fam ? metric_series_fn(fam, s_exported[i].reason ? values : NULL, s_read_stat, w,
                                        (int)i)
                     : ERR_INVAL;
        if (rc != 0)
            return rc;
    }
    metric_t *ready = metrics_gauge(m, "rayfleet_watcher_ready",
                                    "1 once every reflector has applied its first list.", NULL);
    int rc = ready ? metric_series_fn(ready, NULL, s_read_ready, w, 0) : ERR_EXISTS;
    /* client-go's rest_client_* of every cluster's client, observed.db's commit latency */
    for (size_t c = 0; rc == 0 && c < w->nclusters; c++)
        rc = k8s_client_metrics(w->clusters[c].client, m);
    metric_series_t *commit = rc == 0 ? store_commit_series(m, "watcher") : NULL;
    if (rc == 0 && !commit)
        rc = ERR_NOMEM;
    if (rc == 0)
        store_set_commit_metric(w->store, commit);
    return rc;
}

void watcher_log_stats(const watcher_t *w)
{
    watcher_stats_t s;
    watcher_stats(w, &s);
    char v[10][24];
    snprintf(v[0], 24, "%llu", (unsigned long long)s.events_in);
    snprintf(v[1], 24, "%llu", (unsigned long long)s.rows_written);
    snprintf(v[2], 24, "%llu", (unsigned long long)s.events_published);
    snprintf(v[3], 24, "%llu", (unsigned long long)(s.drops_hwm + s.drops_queue));
    snprintf(v[4], 24, "%llu", (unsigned long long)s.relists);
    snprintf(v[5], 24, "%llu", (unsigned long long)s.list_failures);
    snprintf(v[6], 24, "%zu", s.objects);
    snprintf(v[7], 24, "%llu", (unsigned long long)s.write_errors);
    snprintf(v[8], 24, "%llu", (unsigned long long)s.flush_busy);
    snprintf(v[9], 24, "%s", watcher_ready(w) ? "true" : "false");
    log_info("watcher: stats", "events_in", v[0], "rows_written", v[1], "events_published", v[2],
             "drops", v[3], "relists", v[4], "list_failures", v[5], "objects", v[6], "write_errors",
             v[7], "flush_busy", v[8], "ready", v[9], NULL);
}

/* ---------- lifetime ---------- */

int watcher_parse_cluster(const char *spec, char *scratch, size_t size, watcher_cluster_t *out)
{
    if (!spec || !scratch || !out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    int n = snprintf(scratch, size, "%s", spec);
    if (n < 0 || (size_t)n >= size)
        return ERR_TOOBIG;
    char *eq = strchr(scratch, '=');
    if (!eq)
        return ERR_INVAL;
    *eq = '\0';
    char *path = eq + 1;
    char *at = strrchr(path, '@');
    if (at) {
        *at = '\0';
        out->context = at + 1;
        if (!*out->context)
            return ERR_INVAL;
    }
    out->name = scratch;
    out->kubeconfig = path;
    if (!*out->name || !*path || strchr(out->name, '/') ||
        strlen(out->name) > WATCHER_CLUSTER_NAME_MAX)
        return ERR_INVAL;
    return 0;
}

static int s_cluster_init(watcher_t *w, wcluster_t *cl, const watcher_cluster_t *c,
                          const watcher_config_t *cfg, buf_t *err)
{
    if (!c->name || !*c->name || strchr(c->name, '/') ||
        strlen(c->name) > WATCHER_CLUSTER_NAME_MAX) {
        if (err)
            buf_printf(err, "watcher: bad cluster name \"%s\"", c->name ? c->name : "");
        return ERR_INVAL;
    }
    cl->name = strdup(c->name);
    if (!cl->name)
        return ERR_NOMEM;
    cl->w = w;
    int rc = c->in_cluster ? kubeconfig_in_cluster(NULL, &cl->kc, err)
                           : kubeconfig_load(c->kubeconfig, c->context, &cl->kc, err);
    if (rc != 0)
        return rc;
    cl->nns = cfg->nnamespaces ? cfg->nnamespaces : 1;
    /* Over HTTP/1.1 each watch holds a connection of its own: one per reflector, plus the
     * client's default number for the lists (whose in-flight bound stays the default's). */
    k8s_config_t kcfg = {
        .qps = cfg->qps,
        .burst = cfg->burst,
        .max_connections = (long)(K_COUNT * cl->nns) + HTTP_DEFAULT_MAX_HOST_CONNECTIONS,
        .max_inflight = K8S_INFLIGHT_PER_CONNECTION * HTTP_DEFAULT_MAX_HOST_CONNECTIONS,
    };
    cl->client = k8s_client_new(w->loop, cl->kc, &kcfg);
    if (!cl->client)
        return ERR_NOMEM;
    cl->res = calloc(K_COUNT * cl->nns, sizeof(*cl->res));
    if (!cl->res)
        return ERR_NOMEM;
    for (int k = 0; k < K_COUNT; k++) {
        for (size_t i = 0; i < cl->nns; i++) {
            wres_t *x = &cl->res[(size_t)k * cl->nns + i];
            x->w = w;
            x->cl = cl;
            x->kind = k;
            if (S_CAPACITY_KIND(k) && (!cfg->watch_nodes || (k == K_NODE && i > 0)))
                continue; /* off, or Nodes (cluster-scoped) once */
            if (cfg->nnamespaces && k != K_NODE && !(x->ns = strdup(cfg->namespaces[i])))
                return ERR_NOMEM;
            reflector_config_t rc_ = {
                .group = s_kinds[k].group,
                .version = s_kinds[k].version,
                .resource = s_kinds[k].resource,
                .namespace_ = x->ns,
                .label_selector = s_kinds[k].selector,
                .keep = s_keep_of(k, cfg->watch_nodes),
                .compact = true,
                .no_old = true,
                .extra = s_extra_fn,
                .resync_ms = cfg->resync_ms,
                .page_size = cfg->page_size,
                .backoff_base_ms = cfg->backoff_base_ms,
                .backoff_max_ms =
                    cfg->backoff_max_ms ? cfg->backoff_max_ms : WATCHER_DEFAULT_BACKOFF_MAX_MS,
                .on_event = s_on_event,
                .on_synced = s_on_synced,
                .arg = x,
            };
            x->r = reflector_new(w->loop, cl->client, &rc_);
            if (!x->r)
                return ERR_NOMEM;
        }
    }
    return 0;
}

static void s_cluster_free(wcluster_t *cl)
{
    for (size_t i = 0; cl->res && i < K_COUNT * cl->nns; i++) {
        reflector_destroy(&cl->res[i].r);
        free(cl->res[i].ns);
        json_decref(cl->res[i].dirty);
    }
    free(cl->res);
    k8s_client_destroy(&cl->client);
    kubeconfig_destroy(&cl->kc);
    free(cl->name);
}

watcher_t *watcher_new(loop_t *loop, const watcher_config_t *cfg, buf_t *err)
{
    if (!loop || !cfg || !cfg->store || !cfg->clusters || cfg->nclusters == 0 ||
        cfg->nclusters > WATCHER_MAX_CLUSTERS || cfg->nnamespaces > WATCHER_MAX_NAMESPACES ||
        (cfg->nnamespaces && !cfg->namespaces) || cfg->shards > BUS_SHARD_LIMIT) {
        if (err)
            buf_puts(err, "watcher: bad configuration (clusters, namespaces, shards or store)");
        return NULL;
    }
    for (size_t i = 0; i < cfg->nclusters; i++)
        for (size_t j = 0; j < i; j++)
            if (cfg->clusters[i].name && cfg->clusters[j].name &&
                strcmp(cfg->clusters[i].name, cfg->clusters[j].name) == 0) {
                if (err)
                    buf_printf(err, "watcher: cluster \"%s\" listed twice", cfg->clusters[i].name);
                return NULL;
            }
    watcher_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = loop;
    w->store = cfg->store;
    w->pub = cfg->pub;
    w->shards = cfg->shards ? cfg->shards : WATCHER_DEFAULT_SHARDS;
    w->stats_ms = cfg->stats_ms;
    w->watch_nodes = cfg->watch_nodes;
    w->flush_delay_ms = cfg->flush_delay_ms ? cfg->flush_delay_ms : WATCHER_FLUSH_DELAY_MS;
    buf_init(&w->arena, WATCHER_ARENA_MAX);
    buf_init(&w->scratch, WATCHER_CONDITIONS_MAX);
    w->clusters = calloc(cfg->nclusters, sizeof(*w->clusters));
    if (!w->clusters)
        goto fail;
    for (size_t i = 0; i < cfg->nclusters; i++) {
        w->nclusters = i + 1;
        if (s_cluster_init(w, &w->clusters[i], &cfg->clusters[i], cfg, err) != 0)
            goto fail;
    }
    return w;
fail:
    watcher_destroy(&w);
    return NULL;
}

int watcher_start(watcher_t *w)
{
    if (!w)
        return ERR_INVAL;
    if (w->started)
        return ERR_STATE;
    if (loop_add_before_sleep(w->loop, s_hook, w) != 0)
        return ERR_NOMEM;
    w->hooked = true;
    w->started = true;
    for (size_t c = 0; c < w->nclusters; c++)
        for (size_t i = 0; i < K_COUNT * w->clusters[c].nns; i++) {
            if (!w->clusters[c].res[i].r)
                continue; /* a capacity kind without --watch.nodes */
            int rc = reflector_start(w->clusters[c].res[i].r);
            if (rc != 0)
                log_warn("watcher: reflector did not start", "resource",
                         s_kinds[w->clusters[c].res[i].kind].resource, "error", err_str(rc), NULL);
        }
    int64_t t = loop_add_timer(w->loop, WATCHER_READY_CHECK_MS, s_ready_fn, w);
    w->ready_timer = t > 0 ? t : 0;
    if (w->watch_nodes) {
        t = loop_add_timer(w->loop, 0, s_probe_fn, w);
        w->probe_timer = t > 0 ? t : 0;
    }
    if (w->stats_ms > 0) {
        t = loop_add_timer(w->loop, w->stats_ms, s_stats_fn, w);
        w->stats_timer = t > 0 ? t : 0;
    }
    return 0;
}

void watcher_destroy(watcher_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    watcher_t *w = *w_p;
    if (w->hooked)
        loop_remove_before_sleep(w->loop, s_hook, w);
    if (w->retry_timer)
        loop_cancel_timer(w->loop, w->retry_timer);
    if (w->delay_timer)
        loop_cancel_timer(w->loop, w->delay_timer);
    if (w->ready_timer)
        loop_cancel_timer(w->loop, w->ready_timer);
    if (w->stats_timer)
        loop_cancel_timer(w->loop, w->stats_timer);
    if (w->probe_timer)
        loop_cancel_timer(w->loop, w->probe_timer);
    for (size_t c = 0; w->clusters && c < w->nclusters; c++)
        s_cluster_free(&w->clusters[c]);
    free(w->clusters);
    free(w->pend);
    buf_free(&w->arena);
    buf_free(&w->scratch);
    free(w->jbuf);
    free(w);
    *w_p = NULL;
}
