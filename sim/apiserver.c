/*
 * apiserver: the Kubernetes API surface of kubesim. See apiserver.h.
 *
 * Layout of this file: the resource registry (built-ins and CRD-defined resources), reply
 * helpers, discovery, request routing, the verbs, watches, Tables, CRD registration, fault
 * injection and admin endpoints, bootstrap objects, and the self-test.
 *
 * Every API resource the server knows is an apires_t entry: one per group/version/resource, so a
 * CRD with two served versions has two entries sharing one objstore resource (objects are kept
 * once; the stored apiVersion is the one they were written with — no conversion, as with the
 * "None" conversion strategy).
 */
#include "apiserver.h"
#include "apps.h"
#include "buf.h"
#include "controllers.h"
#include "err.h"
#include "gateway.h"
#include "hash.h"
#include "metaval.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "patch.h"
#include "pbjson.h"
#include "rbac.h"
#include "rftime.h"
#include "satoken.h"
#include "schema.h"
#include "selector.h"
#include "quota.h"
#include "storage.h"
#include "tls.h"
#include "yaml.h"

#include <curl/curl.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define AS_SEG_MAX 8 /* path segments after the group-version */
#define AS_PATH_MAX 2048 /* decoded request path bytes */
#define AS_PARAM_MAX 8192 /* decoded query parameter bytes */
#define AS_NAME_LEN 256 /* group, resource, kind names */
#define AS_MAX_SHORT 8 /* short names per resource */
#define AS_STATUS_MSG 1024 /* Status message bytes */
#define AS_FLOW_KEY_MAX 256 /* bytes of a flow key (a longer User-Agent is cut) */
#define AS_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))
#define AS_PROTO_MAX (1u << 30) /* bound of one protobuf reply or watch frame */
#define AS_TABLE_TYPE "application/json;as=Table;v=v1;g=meta.k8s.io"
#define AS_UNSUPPORTED_PATCH                                                                       \
    "the body of the request was in an unknown format - accepted media types include: "            \
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
#define AS_UNSUPPORTED_PATCH_BUILTIN                                                               \
    "the body of the request was in an unknown format - accepted media types include: "            \
    "application/json-patch+json, application/merge-patch+json, "                                  \
    "application/strategic-merge-patch+json, application/apply-patch+yaml"

/* ---- registry --------------------------------------------------------------------------- */

/* One served group/version/resource. */
typedef struct apires {
    char group[AS_NAME_LEN]; /* API group, "" = core */
    char version[64]; /* served version */
    char resource[AS_NAME_LEN]; /* plural */
    char singular[AS_NAME_LEN]; /* singular name */
    char kind[AS_NAME_LEN]; /* Kind */
    char list_kind[AS_NAME_LEN + 8]; /* <Kind>List */
    char shorts[AS_MAX_SHORT][32]; /* short names */
    int nshorts; /* their number */
    bool cat_all; /* in category "all" */
    bool namespaced; /* namespace-scoped */
    bool has_status; /* status subresource */
    bool has_scale; /* scale subresource (CRDs) */
    bool has_binding; /* pods/binding */
    bool is_custom; /* defined by a CRD */
    bool storage; /* the CRD's storage version */
    char crd[AS_NAME_LEN * 2]; /* the defining CRD's name, "" for built-ins */
    json_t *columns; /* CRD additionalPrinterColumns (array) or NULL */
    json_t *crd_version; /* the CRD's versions[] entry (schema etc.) or NULL */
    schema_rules_t *rules; /* its schema's compiled x-kubernetes-validations, or NULL */
    json_t *selectable; /* CRD selectableFields (array) or NULL */
    objstore_res_t *res; /* the storage resource (shared between versions) */
} apires_t;

typedef struct watcher watcher_t;
typedef struct pending pending_t;
typedef struct flow flow_t;

struct apiserver {
    loop_t *loop; /* the event loop */
    httpd_t *http; /* plain-HTTP listener */
    httpd_t *https; /* TLS listener, or NULL */
    tls_ca_t *ca; /* generated certificates, or NULL */
    kubelet_t *kubelet; /* simulated scheduler and kubelet, or NULL */
    controllers_t *ctrl; /* simulated Job and EndpointSlice controllers, or NULL */
    storage_t *storage; /* simulated volume provisioner and binder (sim/storage.h), or NULL */
    quota_t *quota; /* quota admission and the resourcequota controller (sim/quota.h) */
    raysim_t *ray; /* Ray heads behind the service proxy, or NULL */
    gateway_t *gw; /* Gateway API controller and data plane, or NULL */
    uint32_t service_ips; /* cluster IPs handed out so far */
    char token[256]; /* bearer token accepted over TLS ("" = none) */
    satoken_t *sat; /* service-account token signer (TokenRequest) */
    rbac_t *rbac; /* refused requests, counted */
    objstore_t *store; /* the objects */
    apires_t **res; /* registered API resources */
    size_t nres; /* their number */
    size_t capres; /* allocated slots */
    watcher_t *watchers; /* open watches */
    size_t nwatchers; /* their number */
    pending_t *pending; /* requests delayed by injected latency */
    bool fair; /* requests wait for their flow's turn (see apiserver.h) */
    flow_t *flows[APISERVER_FLOW_BUCKETS]; /* flows with queued requests, by key hash */
    flow_t *rr_head, *rr_tail; /* the same flows in round-robin order */
    loop_soon_t dispatch; /* the next turn of queued requests */
    uint64_t fair_queued; /* requests queued for their turn so far */
    uint64_t fair_turns; /* turns served so far */
    size_t fair_flows, fair_flows_max; /* flows with queued requests now, and at most */
    char minor[8]; /* /version minor */
    int64_t bookmark_ms; /* bookmark period */
    int64_t gc_timer; /* objstore_tick timer */
    int64_t gc_soon_timer; /* pending 0 ms GC run, 0 when none */
    uint64_t rng; /* xorshift state */
    apiserver_fault_t faults[APISERVER_MAX_FAULTS]; /* error-rate rules */
    int nfaults; /* their number */
    int64_t latency_ms; /* injected fixed latency */
    int64_t jitter_ms; /* injected random latency bound */
    int throttle_left; /* requests still to answer 429 */
    int throttle_retry; /* their Retry-After */
    /* The shared-event cache: the framed chunk for the event being fanned out. */
    const char *ev_text; /* objstore's JSON text of the cached event */
    uint64_t ev_rv; /* its RV */
    int ev_type; /* its type */
    const apires_t *ev_res; /* the resource it was built for */
    httpd_chunk_t *ev_chunk; /* the framed WatchEvent */
};

static uint64_t s_rand(apiserver_t *a)
{
    uint64_t x = a->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    a->rng = x;
    return x;
}

static void s_res_free(apires_t *r)
{
    if (!r)
        return;
    json_decref(r->columns);
    json_decref(r->crd_version);
    json_decref(r->selectable);
    schema_rules_free(r->rules);
    free(r);
}

static int s_res_add(apiserver_t *a, apires_t *r)
{
    if (a->nres == a->capres) {
        size_t n = a->capres ? a->capres * 2 : 32;
        apires_t **p = realloc(a->res, n * sizeof(*p));
        if (!p)
            return ERR_NOMEM;
        a->res = p;
        a->capres = n;
    }
    a->res[a->nres++] = r;
    return 0;
}

static apires_t *s_res_find(const apiserver_t *a, const char *group, const char *version,
                            const char *resource)
{
    for (size_t i = 0; i < a->nres; i++) {
        apires_t *r = a->res[i];
        if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
            strcmp(r->resource, resource) == 0)
            return r;
    }
    return NULL;
}

static bool s_gv_exists(const apiserver_t *a, const char *group, const char *version)
{
    for (size_t i = 0; i < a->nres; i++)
        if (strcmp(a->res[i]->group, group) == 0 && strcmp(a->res[i]->version, version) == 0)
            return true;
    return false;
}

/* A built-in resource. */
typedef struct {
    const char *group, *version, *resource, *singular, *kind, *shorts; /* shorts: comma list */
    bool namespaced, has_status, all, graceful, create_on_update;
} builtin_t;

static const builtin_t s_builtins[] = {
    {"", "v1", "namespaces", "namespace", "Namespace", "ns", false, true, false, false, false},
    {"", "v1", "pods", "pod", "Pod", "po", true, true, true, true, false},
    {"", "v1", "services", "service", "Service", "svc", true, true, true, false, false},
    {"", "v1", "endpoints", "endpoints", "Endpoints", "ep", true, false, false, false, false},
    {"", "v1", "nodes", "node", "Node", "no", false, true, false, false, false},
    {"", "v1", "events", "event", "Event", "ev", true, false, false, false, true},
    {"", "v1", "configmaps", "configmap", "ConfigMap", "cm", true, false, false, false, false},
    {"", "v1", "secrets", "secret", "Secret", "", true, false, false, false, false},
    {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", "sa", true, false, false,
     false, false},
    {"batch", "v1", "jobs", "job", "Job", "", true, true, true, false, false},
    {"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", "", true, false, false, false,
     false},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", "", true,
     false, false, false, false},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", "", false,
     false, false, false, false},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", "", false, false, false, false, false},
    {"networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", "ing", true, true, false, false,
     false},
    {"discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", "", true, false,
     false, false, false},
    {"coordination.k8s.io", "v1", "leases", "lease", "Lease", "", true, false, false, false, false},
    {"events.k8s.io", "v1", "events", "event", "Event", "ev", true, false, false, false, true},
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
     "CustomResourceDefinition", "crd,crds", false, true, false, false, false},
    /* apps/v1 workloads, run by sim/apps (with /scale) */
    {"apps", "v1", "deployments", "deployment", "Deployment", "deploy", true, true, true, false,
     false},
    {"apps", "v1", "replicasets", "replicaset", "ReplicaSet", "rs", true, true, true, false, false},
    {"apps", "v1", "statefulsets", "statefulset", "StatefulSet", "sts", true, true, true, false,
     false},
    /* volumes and network policies (sim/storage.c: admission, provisioner, printers) */
    {"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", "pvc",
     true, true, false, false, false},
    {"", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", "pv", false, true,
     false, false, false},
    {"storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", "sc", false, false,
     false, false, false},
    {"networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", "netpol", true,
     false, false, false, false},
    /* quota (sim/quota.c: LimitRanger and ResourceQuota admission, the status controller) */
    {"", "v1", "resourcequotas", "resourcequota", "ResourceQuota", "quota", true, true, false,
     false, false},
    {"", "v1", "limitranges", "limitrange", "LimitRange", "limits", true, false, false, false,
     false},
};

/* Alpha built-ins served from a Kubernetes minor version on (kubesim's /version minor). */
typedef struct {
    builtin_t b;
    long since_minor;
} builtin_since_t;

static const builtin_since_t s_builtins_since[] = {
    /* workload-aware scheduling (KEP-4671): the Workload and PodGroup of
     * scheduling.k8s.io/v1alpha2, Kubernetes 1.36 (alpha: a real API server serves them only when
     * enabled) */
    {{"scheduling.k8s.io", "v1alpha2", "workloads", "workload", "Workload", "", true, false, false,
      false, false},
     36},
    {{"scheduling.k8s.io", "v1alpha2", "podgroups", "podgroup", "PodGroup", "", true, true, false,
      false, false},
     36},
};

/* A built-in apps/v1 workload (printer columns, defaults, validation, /scale from sim/apps). */
static bool s_is_apps(const apires_t *r)
{
    return !r->is_custom && strcmp(r->group, "apps") == 0;
}

static void s_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static int s_register_builtin(apiserver_t *a, const builtin_t *b);

static int s_register_builtins(apiserver_t *a)
{
    for (size_t i = 0; i < sizeof(s_builtins) / sizeof(s_builtins[0]); i++) {
        int rc = s_register_builtin(a, &s_builtins[i]);
        if (rc)
            return rc;
    }
    long minor = strtol(a->minor, NULL, 10);
    for (size_t i = 0; i < sizeof(s_builtins_since) / sizeof(s_builtins_since[0]); i++) {
        int rc = minor >= s_builtins_since[i].since_minor
                     ? s_register_builtin(a, &s_builtins_since[i].b)
                     : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int s_register_builtin(apiserver_t *a, const builtin_t *b)
{
    apires_t *r = calloc(1, sizeof(*r));
    if (!r)
        return ERR_NOMEM;
    s_copy(r->group, sizeof(r->group), b->group);
    s_copy(r->version, sizeof(r->version), b->version);
    s_copy(r->resource, sizeof(r->resource), b->resource);
    s_copy(r->singular, sizeof(r->singular), b->singular);
    s_copy(r->kind, sizeof(r->kind), b->kind);
    snprintf(r->list_kind, sizeof(r->list_kind), "%sList", b->kind);
    const char *p = b->shorts;
    while (*p && r->nshorts < AS_MAX_SHORT) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        snprintf(r->shorts[r->nshorts++], sizeof(r->shorts[0]), "%.*s", (int)n, p);
        p = c ? c + 1 : p + n;
    }
    r->cat_all = b->all;
    r->namespaced = b->namespaced;
    r->has_status = b->has_status;
    r->has_binding = strcmp(b->resource, "pods") == 0;
    r->has_scale = strcmp(b->group, "apps") == 0;
    r->storage = true;
    objstore_resdesc_t d = {.group = b->group,
                            .version = b->version,
                            .resource = b->resource,
                            .kind = b->kind,
                            .namespaced = b->namespaced,
                            .has_status = b->has_status,
                            .graceful = b->graceful,
                            .create_on_update = b->create_on_update};
    r->res = objstore_register(a->store, &d);
    if (!r->res || s_res_add(a, r) < 0) {
        s_res_free(r);
        return ERR_NOMEM;
    }
    return 0;
}

/* ---- replies ---------------------------------------------------------------------------- */

/* Per-request context. */
typedef struct {
    apiserver_t *a; /* the server */
    httpd_conn_t *c; /* the connection */
    const httpd_req_t *req; /* the request */
    char verb[24]; /* kube verb, for faults and logs */
    apires_t *r; /* resolved resource (NULL for non-resource paths) */
    const char *ns; /* namespace from the URL, or NULL */
    const char *name; /* object name, or NULL */
    const char *sub; /* subresource, or NULL */
    bool table; /* Accept asks for a Table */
    bool proto; /* Accept prefers Kubernetes protobuf (sim/pbjson.h) */
    bool dry_run; /* dryRun=All */
    char pp_buf[32]; /* propagationPolicy query value */
    const rbac_user_t *user; /* the identity over TLS when not system:masters, else NULL */
    int after_fault; /* APISERVER_FAULT_* rolled for this request: a success answer is lost */
} reqctx_t;

/* kube-apiserver's timeout filter (apiserver/pkg/server/filters/timeout.go): NewTimeoutError(
 * "request did not complete within requested timeout - " + ctx.Err(), 0). */
static const char s_timeout_status[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"Timeout: request did not complete within requested timeout - context deadline "
    "exceeded\",\"reason\":\"Timeout\",\"details\":{},\"code\":504}\n";

static void s_reply_text(reqctx_t *x, int status, const char *ctype, const char *extra,
                         const char *text, size_t len)
{
    if (x->after_fault && status < 300) { /* the write was done; its answer is lost */
        int how = x->after_fault;
        x->after_fault = 0;
        if (how == APISERVER_FAULT_DROP)
            httpd_conn_abort(x->c);
        else
            httpd_respond(x->c, 504, "application/json", NULL, s_timeout_status,
                          sizeof(s_timeout_status) - 1);
        return;
    }
    httpd_respond(x->c, status, ctype, extra, text, len);
}

/* Replies with `obj` (reference stolen) in protobuf when the client prefers it (sim/pbjson.h);
 * returns false (obj untouched) for a kind without a schema. */
static bool s_reply_proto(reqctx_t *x, int status, json_t *obj, const char *extra)
{
    buf_t b, err;
    buf_init(&b, AS_PROTO_MAX);
    buf_init(&err, PBJSON_ERR_MAX);
    int rc = pbjson_encode_object(obj, &b, &err);
    if (rc == ERR_NOTFOUND) {
        buf_free(&b);
        buf_free(&err);
        return false;
    }
    json_decref(obj);
    if (rc < 0) {
        log_error("kubesim: protobuf reply: %s", buf_str(&err));
        static const char oom[] =
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
            "\"status\":\"Failure\",\"message\":\"the object could not be "
            "encoded as protobuf\",\"reason\":\"InternalError\",\"code\":500}";
        s_reply_text(x, 500, "application/json", NULL, oom, sizeof(oom) - 1);
    } else {
        s_reply_text(x, status, PBJSON_MEDIA, extra, b.data, b.len);
    }
    buf_free(&b);
    buf_free(&err);
    return true;
}

/* Replies with `obj` (reference stolen) as JSON, or protobuf when the client prefers it. */
static void s_reply_json(reqctx_t *x, int status, json_t *obj, const char *ctype)
{
    if (x->proto && !ctype && obj && s_reply_proto(x, status, obj, NULL))
        return;
    /* a stored tree a write just committed: its watchers' bytes (AS_JSON_FLAGS's precision 17
     * is jansson's default, so they are the same bytes) */
    size_t len = 0;
    const char *shared = objstore_obj_json(x->a->store, obj, &len);
    if (shared) {
        s_reply_text(x, status, ctype ? ctype : "application/json", NULL, shared, len);
        json_decref(obj);
        return;
    }
    char *text = obj ? jx_dumps_compact(obj, &len) : NULL; /* = json_dumps(obj, AS_JSON_FLAGS) */
    json_decref(obj);
    if (!text) {
        static const char oom[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                  "\"status\":\"Failure\",\"message\":\"out of memory\","
                                  "\"reason\":\"InternalError\",\"code\":500}";
        s_reply_text(x, 500, "application/json", NULL, oom, sizeof(oom) - 1);
        return;
    }
    s_reply_text(x, status, ctype ? ctype : "application/json", NULL, text, len);
    free(text);
}

static void s_reply_status(reqctx_t *x, const objstore_status_t *st, const char *extra)
{
    json_t *j = objstore_status_json(st);
    int code = st->code ? st->code : 500;
    if (x->proto && j && s_reply_proto(x, code, j, extra))
        return;
    char *text = j ? json_dumps(j, AS_JSON_FLAGS) : NULL;
    json_decref(j);
    if (!text) {
        s_reply_text(x, 500, "text/plain", NULL, "out of memory", 13);
        return;
    }
    s_reply_text(x, code, "application/json", extra, text, strlen(text));
    free(text);
}

/* Fills a status. `reason` must be static. */
static void s_status_set(objstore_status_t *st, int code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_status_set(objstore_status_t *st, int code, const char *reason, const char *fmt, ...)
{
    memset(st, 0, sizeof(*st));
    st->code = code;
    st->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof(st->message), fmt, ap);
    va_end(ap);
}

static void s_fail(reqctx_t *x, int code, const char *reason, const char *msg)
{
    objstore_status_t st;
    s_status_set(&st, code, reason, "%s", msg);
    s_reply_status(x, &st, NULL);
}

static void s_not_found_path(reqctx_t *x)
{
    s_fail(x, 404, "NotFound", "the server could not find the requested resource");
}

/* A 422 Invalid for list/patch options: "<Kind>.meta.k8s.io "" is invalid: <field>: <detail>". */
static void s_fail_options(reqctx_t *x, const char *kind, const char *field, const char *cause,
                           const char *detail)
{
    objstore_status_t st;
    s_status_set(&st, 422, "Invalid", "%s.meta.k8s.io \"\" is invalid: %s: %s", kind, field,
                 detail);
    s_copy(st.group, sizeof(st.group), "meta.k8s.io");
    s_copy(st.kind, sizeof(st.kind), kind);
    st.cause_reason = cause;
    s_copy(st.cause_message, sizeof(st.cause_message), detail);
    s_copy(st.cause_field, sizeof(st.cause_field), field);
    s_reply_status(x, &st, NULL);
}

/* A query parameter into out[n]; false when absent (out = ""). Bad encodings count as absent. */
static bool s_param(const reqctx_t *x, const char *name, char *out, size_t n)
{
    int rc = httpd_query_get(x->req->query, name, out, n);
    if (rc < 0) {
        out[0] = '\0';
        return false;
    }
    return true;
}

static bool s_param_bool(const reqctx_t *x, const char *name)
{
    char v[16];
    if (!s_param(x, name, v, sizeof(v)))
        return false;
    return strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "True") == 0 ||
           v[0] == '\0';
}

/* ---- discovery -------------------------------------------------------------------------- */

/* kube's version priority: GA before beta before alpha, higher numbers first; anything else
 * sorts last, alphabetically. Returns <0 when v1 should come first. */
static int s_version_cmp(const char *v1, const char *v2)
{
    struct vk {
        int kind; /* 3 GA, 2 beta, 1 alpha, 0 other */
        long major, minor;
    } k[2];
    const char *vs[2] = {v1, v2};
    for (int i = 0; i < 2; i++) {
        const char *v = vs[i];
        k[i].kind = 0;
        k[i].major = k[i].minor = 0;
        if (v[0] != 'v' || !isdigit((unsigned char)v[1]))
            continue;
        char *end;
        k[i].major = strtol(v + 1, &end, 10);
        if (*end == '\0') {
            k[i].kind = 3;
        } else if (strncmp(end, "beta", 4) == 0 && isdigit((unsigned char)end[4])) {
            k[i].kind = 2;
            k[i].minor = strtol(end + 4, NULL, 10);
        } else if (strncmp(end, "alpha", 5) == 0 && isdigit((unsigned char)end[5])) {
            k[i].kind = 1;
            k[i].minor = strtol(end + 5, NULL, 10);
        }
    }
    if (k[0].kind != k[1].kind)
        return k[1].kind - k[0].kind;
    if (k[0].kind == 0)
        return strcmp(v1, v2);
    if (k[0].major != k[1].major)
        return k[0].major > k[1].major ? -1 : 1;
    if (k[0].minor != k[1].minor)
        return k[0].minor > k[1].minor ? -1 : 1;
    return 0;
}

/* The APIGroup document of `group`, or NULL when no version of it is served. */
static json_t *s_group_doc(const apiserver_t *a, const char *group)
{
    const char *versions[32];
    int nv = 0;
    for (size_t i = 0; i < a->nres && nv < 32; i++) {
        if (strcmp(a->res[i]->group, group) != 0)
            continue;
        bool seen = false;
        for (int j = 0; j < nv; j++)
            seen = seen || strcmp(versions[j], a->res[i]->version) == 0;
        if (!seen)
            versions[nv++] = a->res[i]->version;
    }
    if (nv == 0)
        return NULL;
    /* Insertion sort by priority. */
    for (int i = 1; i < nv; i++)
        for (int j = i; j > 0 && s_version_cmp(versions[j], versions[j - 1]) < 0; j--) {
            const char *t = versions[j];
            versions[j] = versions[j - 1];
            versions[j - 1] = t;
        }
    json_t *vs = json_array();
    for (int i = 0; i < nv; i++) {
        char gv[AS_NAME_LEN + 70];
        snprintf(gv, sizeof(gv), "%s/%s", group, versions[i]);
        json_array_append_new(vs,
                              json_pack("{s:s,s:s}", "groupVersion", gv, "version", versions[i]));
    }
    json_t *pref = json_copy(json_array_get(vs, 0));
    return json_pack("{s:s,s:s,s:s,s:o,s:o}", "kind", "APIGroup", "apiVersion", "v1", "name", group,
                     "versions", vs, "preferredVersion", pref);
}

static json_t *s_group_list(const apiserver_t *a)
{
    json_t *groups = json_array();
    const char *seen[128];
    int ns = 0;
    for (size_t i = 0; i < a->nres && ns < 128; i++) {
        const char *g = a->res[i]->group;
        if (!g[0])
            continue;
        bool dup = false;
        for (int j = 0; j < ns; j++)
            dup = dup || strcmp(seen[j], g) == 0;
        if (dup)
            continue;
        seen[ns++] = g;
        json_t *doc = s_group_doc(a, g);
        if (doc) {
            json_object_del(doc, "kind");
            json_object_del(doc, "apiVersion");
            json_array_append_new(groups, doc);
        }
    }
    return json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups", groups);
}

static json_t *s_verbs(bool all)
{
    if (all)
        return json_pack("[s,s,s,s,s,s,s,s]", "create", "delete", "deletecollection", "get", "list",
                         "patch", "update", "watch");
    return json_pack("[s,s,s]", "get", "patch", "update");
}

static json_t *s_resource_list(const apiserver_t *a, const char *group, const char *version)
{
    json_t *list = json_array();
    for (size_t i = 0; i < a->nres; i++) {
        const apires_t *r = a->res[i];
        if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
            continue;
        json_t *e =
            json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", r->resource, "singularName", r->singular,
                      "namespaced", r->namespaced, "kind", r->kind, "verbs", s_verbs(true));
        if (r->nshorts) {
            json_t *sn = json_array();
            for (int k = 0; k < r->nshorts; k++)
                json_array_append_new(sn, json_string(r->shorts[k]));
            json_object_set_new(e, "shortNames", sn);
        }
        if (r->cat_all)
            json_object_set_new(e, "categories", json_pack("[s]", "all"));
        json_object_set_new(e, "storageVersionHash", json_string(""));
        json_object_del(e, "storageVersionHash");
        json_array_append_new(list, e);
        char sub[AS_NAME_LEN + 16];
        if (r->has_status) {
            snprintf(sub, sizeof(sub), "%s/status", r->resource);
            json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", sub,
                                                  "singularName", "", "namespaced", r->namespaced,
                                                  "kind", r->kind, "verbs", s_verbs(false)));
        }
        if (r->has_scale) {
            snprintf(sub, sizeof(sub), "%s/scale", r->resource);
            json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:o}", "name", sub,
                                                  "singularName", "", "namespaced", r->namespaced,
                                                  "group", "autoscaling", "version", "v1", "kind",
                                                  "Scale", "verbs", s_verbs(false)));
        }
        if (!r->is_custom && strcmp(r->resource, "serviceaccounts") == 0 && !*r->group)
            json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:[s]}", "name",
                                                  "serviceaccounts/token", "singularName", "",
                                                  "namespaced", true, "group",
                                                  "authentication.k8s.io", "version", "v1", "kind",
                                                  "TokenRequest", "verbs", "create"));
        if (r->has_binding) {
            snprintf(sub, sizeof(sub), "%s/binding", r->resource);
            json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:[s]}", "name", sub,
                                                  "singularName", "", "namespaced", r->namespaced,
                                                  "kind", "Binding", "verbs", "create"));
        }
    }
    char gv[AS_NAME_LEN + 70];
    if (group[0])
        snprintf(gv, sizeof(gv), "%s/%s", group, version);
    else
        snprintf(gv, sizeof(gv), "%s", version);
    return json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", list);
}

/* Serves non-resource paths. Returns true when it answered. */
static bool s_serve_nonresource(reqctx_t *x, const char *path)
{
    apiserver_t *a = x->a;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0 ||
        strcmp(path, "/readyz") == 0 || strncmp(path, "/healthz/", 9) == 0 ||
        strncmp(path, "/livez/", 7) == 0 || strncmp(path, "/readyz/", 8) == 0) {
        s_reply_text(x, 200, "text/plain; charset=utf-8", NULL, "ok", 2);
        return true;
    }
    if (strcmp(path, "/version") == 0 || strcmp(path, "/version/") == 0) {
        char git[64];
        snprintf(git, sizeof(git), "v1.%s.0-kubesim", a->minor);
        json_t *v =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "major", "1", "minor", a->minor,
                      "gitVersion", git, "gitCommit", "0000000000000000000000", "gitTreeState",
                      "clean", "buildDate", "2026-01-01T00:00:00Z", "goVersion", "go1.23.0",
                      "compiler", "gc", "platform", "linux/amd64", "emulator", "kubesim");
        s_reply_json(x, 200, v, NULL);
        return true;
    }
    if (strcmp(path, "/openapi/v2") == 0) {
        s_reply_text(x, 200, "application/octet-stream", NULL, "", 0);
        return true;
    }
    if (strcmp(path, "/api") == 0 || strcmp(path, "/api/") == 0) {
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", httpd_port(a->http));
        s_reply_json(x, 200,
                     json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions", "v1",
                               "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                               "serverAddress", addr),
                     NULL);
        return true;
    }
    if (strcmp(path, "/apis") == 0 || strcmp(path, "/apis/") == 0) {
        s_reply_json(x, 200, s_group_list(a), NULL);
        return true;
    }
    return false;
}

/* ---- selectors and list options --------------------------------------------------------- */

typedef struct {
    selector_t *labels; /* label selector or NULL */
    selector_t *fields; /* field selector or NULL */
} filter_t;

static bool s_filter_match(const json_t *obj, void *arg)
{
    const filter_t *f = arg;
    if (f->labels && !selector_matches_labels(f->labels, jx_get(obj, "metadata.labels")))
        return false;
    if (f->fields && !selector_matches_fields(f->fields, obj))
        return false;
    return true;
}

static void s_filter_free(filter_t *f)
{
    selector_destroy(&f->labels);
    selector_destroy(&f->fields);
}

/* Parses labelSelector and fieldSelector; on error replies 400 and returns false. */
static bool s_filter_parse(reqctx_t *x, filter_t *f)
{
    memset(f, 0, sizeof(*f));
    char *text = malloc(AS_PARAM_MAX);
    if (!text) {
        s_fail(x, 500, "InternalError", "out of memory");
        return false;
    }
    buf_t err;
    buf_init(&err, AS_STATUS_MSG);
    bool ok = true;
    if (s_param(x, "labelSelector", text, AS_PARAM_MAX) && text[0]) {
        if (selector_parse_labels(text, &f->labels, &err) < 0) {
            s_fail(x, 400, "BadRequest", err.len ? buf_str(&err) : "invalid label selector");
            ok = false;
        }
    }
    if (ok && s_param(x, "fieldSelector", text, AS_PARAM_MAX) && text[0]) {
        const char *fields[40];
        size_t nf = 0;
        fields[nf++] = "metadata.name";
        if (x->r->namespaced)
            fields[nf++] = "metadata.namespace";
        const char *res = x->r->resource;
        if (!x->r->is_custom && strcmp(res, "pods") == 0) {
            static const char *pf[] = {"spec.nodeName",      "spec.restartPolicy",
                                       "spec.schedulerName", "spec.serviceAccountName",
                                       "spec.hostNetwork",   "status.phase",
                                       "status.podIP",       "status.nominatedNodeName"};
            for (size_t i = 0; i < sizeof(pf) / sizeof(pf[0]); i++)
                fields[nf++] = pf[i];
        } else if (!x->r->is_custom && strcmp(res, "events") == 0) {
            static const char *ef[] = {"involvedObject.kind",
                                       "involvedObject.namespace",
                                       "involvedObject.name",
                                       "involvedObject.uid",
                                       "involvedObject.apiVersion",
                                       "involvedObject.resourceVersion",
                                       "involvedObject.fieldPath",
                                       "reason",
                                       "reportingComponent",
                                       "source",
                                       "type"};
            for (size_t i = 0; i < sizeof(ef) / sizeof(ef[0]); i++)
                fields[nf++] = ef[i];
        } else if (!x->r->is_custom && strcmp(res, "secrets") == 0) {
            fields[nf++] = "type";
        } else if (!x->r->is_custom && strcmp(res, "nodes") == 0) {
            fields[nf++] = "spec.unschedulable";
        } else if (!x->r->is_custom && strcmp(res, "namespaces") == 0) {
            fields[nf++] = "status.phase";
        } else if (!x->r->is_custom && strcmp(res, "jobs") == 0) {
            fields[nf++] = "status.successful";
        }
        size_t nsel = json_array_size(x->r->selectable);
        for (size_t i = 0; i < nsel && nf < sizeof(fields) / sizeof(fields[0]); i++) {
            const char *jp = jx_str(json_array_get(x->r->selectable, i), "jsonPath", NULL);
            if (jp && jp[0] == '.')
                fields[nf++] = jp + 1;
        }
        if (selector_parse_fields(text, fields, nf, &f->fields, &err) < 0) {
            s_fail(x, 400, "BadRequest", err.len ? buf_str(&err) : "invalid field selector");
            ok = false;
        }
    }
    buf_free(&err);
    free(text);
    if (!ok)
        s_filter_free(f);
    return ok;
}

static bool s_is_uint(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* ---- Tables ----------------------------------------------------------------------------- */

/* Parses an RFC 3339 time into seconds since the epoch. Returns false when malformed. */
static bool s_parse_time(const char *s, int64_t *out)
{
    return rftime_parse_sec(s, out) == 0;
}

/* kube's duration.HumanDuration. */
static void s_human_age(int64_t secs, char *out, size_t n)
{
    if (secs < -1) {
        snprintf(out, n, "<invalid>");
        return;
    }
    if (secs < 0)
        secs = 0;
    int64_t m = secs / 60, h = secs / 3600, d = h / 24;
    if (secs < 120)
        snprintf(out, n, "%" PRId64 "s", secs);
    else if (m < 10)
        snprintf(out, n, secs % 60 ? "%" PRId64 "m%" PRId64 "s" : "%" PRId64 "m", m, secs % 60);
    else if (m < 180)
        snprintf(out, n, "%" PRId64 "m", m);
    else if (h < 8)
        snprintf(out, n, m % 60 ? "%" PRId64 "h%" PRId64 "m" : "%" PRId64 "h", h, m % 60);
    else if (h < 48)
        snprintf(out, n, "%" PRId64 "h", h);
    else if (h < 192)
        snprintf(out, n, h % 24 ? "%" PRId64 "d%" PRId64 "h" : "%" PRId64 "d", d, h % 24);
    else if (d < 730)
        snprintf(out, n, "%" PRId64 "d", d);
    else if (d < 2920)
        snprintf(out, n, d % 365 ? "%" PRId64 "y%" PRId64 "d" : "%" PRId64 "y", d / 365, d % 365);
    else
        snprintf(out, n, "%" PRId64 "y", d / 365);
}

static json_t *s_age_cell(apiserver_t *a, const json_t *ts)
{
    int64_t t;
    if (!json_is_string(ts) || !s_parse_time(json_string_value(ts), &t))
        return json_null();
    char age[32];
    s_human_age(objstore_now_ms(a->store) / 1000 - t, age, sizeof(age));
    return json_string(age);
}

/* Evaluates a simple JSONPath (".a.b[0].c", optional {} braces; [*] takes the first element,
 * [?(@.k=="v")] the first whose k is "v") on obj; borrowed or NULL. */
static const json_t *s_jsonpath(const json_t *obj, const char *path)
{
    char buf[512];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return NULL;
    if (n >= 2 && path[0] == '{' && path[n - 1] == '}') {
        path++;
        n -= 2;
    }
    memcpy(buf, path, n);
    buf[n] = '\0';
    const json_t *cur = obj;
    char *p = buf;
    if (*p == '$')
        p++;
    while (*p && cur) {
        if (*p == '.') {
            p++;
            char *e = p;
            while (*e && *e != '.' && *e != '[')
                e++;
            char save = *e;
            *e = '\0';
            cur = json_is_object(cur) ? json_object_get(cur, p) : NULL;
            *e = save;
            p = e;
        } else if (*p == '[') {
            char *e = strchr(p, ']');
            if (!e)
                return NULL;
            *e = '\0';
            char *q = p + 1;
            if (q[0] == '?' && q[1] == '(' && q[2] == '@' && q[3] == '.') {
                /* [?(@.key=="value")]: the first element whose key is that string. */
                char *key = q + 4, *eq = strstr(key, "==");
                size_t vl = eq ? strlen(eq + 2) : 0;
                if (!eq || vl < 3 || !json_is_array(cur) || eq[2 + vl - 1] != ')')
                    return NULL;
                *eq = '\0';
                char *val = eq + 3;
                val[vl - 3] = '\0'; /* drop the closing quote and ')' */
                const json_t *hit = NULL;
                size_t k;
                json_t *el;
                json_array_foreach(cur, k, el)
                {
                    const char *ev = json_string_value(json_object_get(el, key));
                    if (!hit && ev && strcmp(ev, val) == 0)
                        hit = el;
                }
                cur = hit;
            } else if (strcmp(q, "*") == 0) {
                cur = json_is_array(cur) ? json_array_get(cur, 0) : NULL; /* the first one */
            } else if (*q == '\'' || *q == '"') {
                size_t ql = strlen(q);
                if (ql < 2)
                    return NULL;
                q[ql - 1] = '\0';
                cur = json_is_object(cur) ? json_object_get(cur, q + 1) : NULL;
            } else {
                char *end;
                long idx = strtol(q, &end, 10);
                if (*end || !json_is_array(cur))
                    return NULL;
                if (idx < 0)
                    idx += (long)json_array_size(cur);
                cur = idx >= 0 ? json_array_get(cur, (size_t)idx) : NULL;
            }
            p = e + 1;
        } else {
            return NULL;
        }
    }
    return cur;
}

static json_t *s_coldef(const char *name, const char *type, const char *format, const char *desc,
                        json_int_t priority)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", name, "type", type, "format",
                     format ? format : "", "description", desc ? desc : "", "priority", priority);
}

/* Roles, ClusterRoles and their bindings (kube prints them with columns of their own). */
static bool s_is_rbac(const apires_t *r)
{
    return !r->is_custom && strcmp(r->group, "rbac.authorization.k8s.io") == 0;
}

/* NAME CREATED AT (roles), NAME ROLE AGE [USERS GROUPS SERVICEACCOUNTS] (bindings), as kube's
 * printers. */
static json_t *s_rbac_cells(apiserver_t *a, const apires_t *r, const json_t *obj)
{
    const char *name = jx_str(obj, "metadata.name", "");
    if (!strstr(r->resource, "bindings"))
        return json_pack("[s,s]", name, jx_str(obj, "metadata.creationTimestamp", ""));
    buf_t who[3];
    static const char *kinds[3] = {"User", "Group", "ServiceAccount"};
    for (int k = 0; k < 3; k++)
        buf_init(&who[k], 64 * 1024);
    size_t i;
    json_t *sj;
    json_array_foreach(jx_get(obj, "subjects"), i, sj)
    {
        for (int k = 0; k < 3; k++) {
            if (strcmp(jx_str(sj, "kind", ""), kinds[k]) != 0)
                continue;
            if (who[k].len)
                buf_puts(&who[k], ", ");
            if (k == 2)
                buf_printf(&who[k], "%s/", jx_str(sj, "namespace", ""));
            buf_puts(&who[k], jx_str(sj, "name", ""));
        }
    }
    char role[AS_NAME_LEN * 2];
    snprintf(role, sizeof(role), "%s/%s", jx_str(obj, "roleRef.kind", ""),
             jx_str(obj, "roleRef.name", ""));
    json_t *cells = json_pack("[s,s,o,s,s,s]", name, role,
                              s_age_cell(a, jx_get(obj, "metadata.creationTimestamp")),
                              buf_str(&who[0]), buf_str(&who[1]), buf_str(&who[2]));
    for (int k = 0; k < 3; k++)
        buf_free(&who[k]);
    return cells;
}

static json_t *s_table_columns(const apires_t *r)
{
    json_t *cols = json_array();
    if (!r->is_custom && strcmp(r->resource, "events") == 0 && !*r->group) {
        // As kube-apiserver: the name is last and only shown with -o wide.
        json_array_append_new(cols, s_coldef("Last Seen", "string", "", "Last seen", 0));
        json_array_append_new(cols, s_coldef("Type", "string", "", "Event type", 0));
        json_array_append_new(cols, s_coldef("Reason", "string", "", "Reason", 0));
        json_array_append_new(cols, s_coldef("Object", "string", "", "Involved object", 0));
        json_array_append_new(cols, s_coldef("Message", "string", "", "Message", 0));
        json_array_append_new(
            cols, s_coldef("Name", "string", "name", "Name must be unique within a namespace.", 1));
        return cols;
    }
    json_array_append_new(
        cols, s_coldef("Name", "string", "name", "Name must be unique within a namespace.", 0));
    if (!r->is_custom && storage_prints(r->group, r->resource)) {
        storage_table_columns(r->resource, cols, s_coldef);
        return cols;
    }
    if (!r->is_custom && quota_prints(r->group, r->resource)) {
        quota_table_columns(r->resource, cols, s_coldef);
        return cols;
    }
    if (!r->is_custom && strcmp(r->resource, "pods") == 0) {
        json_array_append_new(
            cols, s_coldef("Ready", "string", "", "The aggregate readiness state of this pod", 0));
        json_array_append_new(
            cols, s_coldef("Status", "string", "", "The aggregate status of the containers", 0));
        json_array_append_new(cols, s_coldef("Restarts", "string", "",
                                             "The number of times the containers restarted", 0));
        json_array_append_new(cols, s_coldef("Age", "string", "", "CreationTimestamp", 0));
        json_array_append_new(cols, s_coldef("IP", "string", "", "IP address of the pod", 1));
        json_array_append_new(cols, s_coldef("Node", "string", "", "Node the pod runs on", 1));
        return cols;
    }
    if (!r->is_custom && strcmp(r->resource, "nodes") == 0) {
        json_array_append_new(cols, s_coldef("Status", "string", "",
                                             "The status of the node (its Ready condition)", 0));
        json_array_append_new(cols, s_coldef("Roles", "string", "", "The roles of the node", 0));
        json_array_append_new(cols, s_coldef("Age", "string", "", "CreationTimestamp", 0));
        json_array_append_new(cols, s_coldef("Version", "string", "", "Kubelet version", 0));
        return cols;
    }
    if (s_is_apps(r)) {
        json_t *more = apps_columns(r->resource);
        json_array_extend(cols, more);
        json_decref(more);
        return cols;
    }
    if (s_is_rbac(r)) {
        if (strstr(r->resource, "bindings")) {
            json_array_append_new(cols, s_coldef("Role", "string", "", "Role", 0));
            json_array_append_new(cols, s_coldef("Age", "string", "", "CreationTimestamp", 0));
            json_array_append_new(cols, s_coldef("Users", "string", "", "Users in the binding", 1));
            json_array_append_new(cols,
                                  s_coldef("Groups", "string", "", "Groups in the binding", 1));
            json_array_append_new(cols, s_coldef("ServiceAccounts", "string", "",
                                                 "ServiceAccounts in the binding", 1));
        } else {
            json_array_append_new(cols, s_coldef("Created At", "date", "", "CreationTimestamp", 0));
        }
        return cols;
    }
    if (r->columns && json_array_size(r->columns) > 0) {
        size_t i;
        json_t *c;
        json_array_foreach(r->columns, i, c)
        {
            json_array_append_new(cols,
                                  s_coldef(jx_str(c, "name", ""), jx_str(c, "type", "string"),
                                           jx_str(c, "format", ""), jx_str(c, "description", ""),
                                           jx_int(c, "priority", 0)));
        }
        return cols;
    }
    json_array_append_new(cols, s_coldef("Age", "date", "", "CreationTimestamp", 0));
    return cols;
}

/* Whether init container `name` of pod is a native sidecar (restartPolicy Always). */
static bool s_pod_sidecar(const json_t *pod, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(pod, "spec.initContainers"), i, c)
    {
        if (strcmp(jx_str(c, "name", ""), name) == 0)
            return strcmp(jx_str(c, "restartPolicy", ""), "Always") == 0;
    }
    return false;
}

static json_t *s_pod_cells(apiserver_t *a, const json_t *pod)
{
    const json_t *cs = jx_get(pod, "status.containerStatuses");
    size_t total = json_array_size(jx_get(pod, "spec.containers"));
    size_t ready = 0;
    json_int_t restarts = 0, sidecar_restarts = 0;
    const char *reason = jx_str(pod, "status.reason", NULL);
    const char *status = reason ? reason : jx_str(pod, "status.phase", "Pending");
    size_t i;
    json_t *c;
    /* kubectl's printPod (pkg/printers/internalversion): init containers first; native sidecars
     * count among the containers */
    char initbuf[96];
    bool initializing = false;
    const json_t *ics = jx_get(pod, "status.initContainerStatuses");
    json_array_foreach(jx_get(pod, "spec.initContainers"), i, c)
    {
        if (strcmp(jx_str(c, "restartPolicy", ""), "Always") == 0)
            total++;
    }
    json_array_foreach(ics, i, c)
    {
        bool sidecar = s_pod_sidecar(pod, jx_str(c, "name", ""));
        restarts += jx_int(c, "restartCount", 0);
        if (sidecar)
            sidecar_restarts += jx_int(c, "restartCount", 0);
        const json_t *term = jx_get(c, "state.terminated");
        const char *w = jx_str(c, "state.waiting.reason", "");
        if (term && jx_int(term, "exitCode", -1) == 0)
            continue;
        if (sidecar && jx_bool(c, "started", false)) {
            if (jx_bool(c, "ready", false))
                ready++;
            continue;
        }
        if (term && *jx_str(term, "reason", ""))
            snprintf(initbuf, sizeof(initbuf), "Init:%s", jx_str(term, "reason", ""));
        else if (term)
            snprintf(initbuf, sizeof(initbuf), "Init:ExitCode:%" JSON_INTEGER_FORMAT,
                     jx_int(term, "exitCode", 0));
        else if (*w && strcmp(w, "PodInitializing") != 0)
            snprintf(initbuf, sizeof(initbuf), "Init:%s", w);
        else
            snprintf(initbuf, sizeof(initbuf), "Init:%zu/%zu", i,
                     json_array_size(jx_get(pod, "spec.initContainers")));
        status = initbuf;
        initializing = true;
        break;
    }
    bool initialized = false;
    json_array_foreach(jx_get(pod, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), "Initialized") == 0)
            initialized = strcmp(jx_str(c, "status", ""), "True") == 0;
    }
    if (initializing && !initialized)
        cs = NULL; /* the containers are not looked at */
    else
        restarts = sidecar_restarts;
    json_array_foreach(cs, i, c)
    {
        if (jx_bool(c, "ready", false))
            ready++;
        restarts += jx_int(c, "restartCount", 0);
        const char *w = jx_str(c, "state.waiting.reason", NULL);
        const char *t = jx_str(c, "state.terminated.reason", NULL);
        if (w && w[0])
            status = w;
        else if (t && t[0] && strcmp(status, "Running") != 0)
            status = t;
        else if (t && t[0])
            status = t;
    }
    if (jx_get(pod, "metadata.deletionTimestamp"))
        status = "Terminating";
    char rd[48], rs[32];
    snprintf(rd, sizeof(rd), "%zu/%zu", ready, total);
    snprintf(rs, sizeof(rs), "%" JSON_INTEGER_FORMAT, restarts);
    const char *ip = jx_str(pod, "status.podIP", "<none>");
    const char *node = jx_str(pod, "spec.nodeName", "<none>");
    return json_pack("[s,s,s,s,o,s,s]", jx_str(pod, "metadata.name", ""), rd, status, rs,
                     s_age_cell(a, jx_get(pod, "metadata.creationTimestamp")), ip, node);
}

/* LAST SEEN TYPE REASON OBJECT MESSAGE (NAME with -o wide), as kubectl prints core/v1
 * events. */
static json_t *s_event_cells(apiserver_t *a, const json_t *ev)
{
    const json_t *when = jx_get(ev, "lastTimestamp");
    if (!json_is_string(when))
        when = jx_get(ev, "eventTime");
    if (!json_is_string(when))
        when = jx_get(ev, "metadata.creationTimestamp");
    char object[600];
    int n = snprintf(object, sizeof(object), "%s/%s", jx_str(ev, "involvedObject.kind", ""),
                     jx_str(ev, "involvedObject.name", ""));
    for (int i = 0; i < n && object[i] != '/' && (size_t)i < sizeof(object); i++)
        object[i] = (char)tolower((unsigned char)object[i]);
    return json_pack("[o,s,s,s,s,s]", s_age_cell(a, when), jx_str(ev, "type", ""),
                     jx_str(ev, "reason", ""), object, jx_str(ev, "message", ""),
                     jx_str(ev, "metadata.name", ""));
}

/* NAME STATUS ROLES AGE VERSION, as kubectl prints nodes. */
static json_t *s_node_cells(apiserver_t *a, const json_t *node)
{
    const char *status = "Unknown";
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(node, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), "Ready") == 0)
            status = strcmp(jx_str(c, "status", ""), "True") == 0 ? "Ready" : "NotReady";
    }
    if (jx_bool(node, "spec.unschedulable", false))
        status = strcmp(status, "Ready") == 0 ? "Ready,SchedulingDisabled"
                                              : "NotReady,SchedulingDisabled";
    return json_pack("[s,s,s,o,s]", jx_str(node, "metadata.name", ""), status, "<none>",
                     s_age_cell(a, jx_get(node, "metadata.creationTimestamp")),
                     jx_str(node, "status.nodeInfo.kubeletVersion", ""));
}

static json_t *s_cell_value(apiserver_t *a, const json_t *col, const json_t *obj)
{
    const char *type = jx_str(col, "type", "string");
    const json_t *v = s_jsonpath(obj, jx_str(col, "jsonPath", ""));
    if (!v || json_is_null(v))
        return json_null();
    if (strcmp(type, "date") == 0)
        return s_age_cell(a, v);
    if (strcmp(type, "integer") == 0 && json_is_integer(v))
        return json_incref((json_t *)v);
    if (strcmp(type, "number") == 0 && json_is_number(v))
        return json_incref((json_t *)v);
    if (strcmp(type, "boolean") == 0 && json_is_boolean(v))
        return json_incref((json_t *)v);
    if (json_is_string(v))
        return json_incref((json_t *)v);
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *s = json_string(text ? text : "");
    free(text);
    return s;
}

/* One Table row for obj (PartialObjectMetadata or the whole object per includeObject). */
static json_t *s_table_row(apiserver_t *a, const apires_t *r, const json_t *obj, int include)
{
    json_t *cells;
    if (!r->is_custom && strcmp(r->resource, "pods") == 0) {
        cells = s_pod_cells(a, obj);
    } else if (!r->is_custom && strcmp(r->resource, "nodes") == 0) {
        cells = s_node_cells(a, obj);
    } else if (!r->is_custom && strcmp(r->resource, "events") == 0 && !*r->group) {
        cells = s_event_cells(a, obj);
    } else if (s_is_rbac(r)) {
        cells = s_rbac_cells(a, r, obj);
    } else if (s_is_apps(r)) {
        cells =
            apps_cells(r->resource, obj, s_age_cell(a, jx_get(obj, "metadata.creationTimestamp")));
    } else if (!r->is_custom && storage_prints(r->group, r->resource)) {
        cells = storage_table_cells(r->resource, obj,
                                    s_age_cell(a, jx_get(obj, "metadata.creationTimestamp")));
    } else if (!r->is_custom && quota_prints(r->group, r->resource)) {
        cells = quota_table_cells(r->resource, obj,
                                  s_age_cell(a, jx_get(obj, "metadata.creationTimestamp")));
    } else {
        cells = json_pack("[s]", jx_str(obj, "metadata.name", ""));
        if (r->columns && json_array_size(r->columns) > 0) {
            size_t i;
            json_t *c;
            json_array_foreach(r->columns, i, c)
                json_array_append_new(cells, s_cell_value(a, c, obj));
        } else {
            json_array_append_new(cells, s_age_cell(a, jx_get(obj, "metadata.creationTimestamp")));
        }
    }
    json_t *row = json_pack("{s:o}", "cells", cells);
    if (include == 1) {
        json_t *meta = json_deep_copy(json_object_get(obj, "metadata"));
        if (meta)
            json_object_del(meta, "managedFields");
        json_object_set_new(row, "object",
                            json_pack("{s:s,s:s,s:o}", "kind", "PartialObjectMetadata",
                                      "apiVersion", "meta.k8s.io/v1", "metadata",
                                      meta ? meta : json_object()));
    } else if (include == 2) {
        json_object_set_new(row, "object", json_incref((json_t *)obj));
    }
    return row;
}

/* includeObject: 0 None, 1 Metadata (default), 2 Object. */
static int s_include_object(const reqctx_t *x)
{
    char v[32];
    if (!s_param(x, "includeObject", v, sizeof(v)))
        return 1;
    if (strcmp(v, "None") == 0)
        return 0;
    if (strcmp(v, "Object") == 0)
        return 2;
    return 1;
}

static json_t *s_table(apiserver_t *a, const apires_t *r, const json_t *items, int include,
                       bool columns)
{
    json_t *rows = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o) json_array_append_new(rows, s_table_row(a, r, o, include));
    json_t *t = json_pack("{s:s,s:s,s:{},s:o}", "kind", "Table", "apiVersion", "meta.k8s.io/v1",
                          "metadata", "rows", rows);
    json_object_set_new(t, "columnDefinitions", columns ? s_table_columns(r) : json_array());
    return t;
}

/* ---- object helpers ---------------------------------------------------------------------- */

static void s_gv(const apires_t *r, char *out, size_t n)
{
    if (r->group[0])
        snprintf(out, n, "%s/%s", r->group, r->version);
    else
        snprintf(out, n, "%s", r->version);
}

/* The kind a request body must be: the subresource's, else the resource's. */
static void s_body_kind(const reqctx_t *x, char *av, size_t avn, const char **kind)
{
    const char *sub = x->sub ? x->sub : "";
    if (strcmp(sub, "binding") == 0) {
        snprintf(av, avn, "v1");
        *kind = "Binding";
    } else if (strcmp(sub, "token") == 0) {
        snprintf(av, avn, "authentication.k8s.io/v1");
        *kind = "TokenRequest";
    } else if (strcmp(sub, "scale") == 0) {
        snprintf(av, avn, "autoscaling/v1");
        *kind = "Scale";
    } else {
        s_gv(x->r, av, avn);
        *kind = x->r->kind;
    }
}

/* A body in Kubernetes protobuf (sim/pbjson.h) into a new object, or NULL after a 400 or 415.
 * Messages as kube-apiserver's transformDecodeError (k8s.io/apiserver handlers/rest.go):
 * "<Kind> in version \"<v>\" cannot be handled as a <Kind>: <reason>", the reason of a kind
 * mismatch being the scheme's "converting (v1.Deployment) to (core.Pod): unknown conversion". */
static json_t *s_body_proto(reqctx_t *x)
{
    const httpd_req_t *req = x->req;
    char want_av[AS_NAME_LEN + 70], av[AS_NAME_LEN], kind[AS_NAME_LEN];
    const char *want;
    if (x->r)
        s_body_kind(x, want_av, sizeof(want_av), &want);
    /* custom resources (and any built-in without a schema here): the media types a custom
     * resource's serializer takes (negotiation/errors.go's message) */
    if (!x->r || x->r->is_custom || !pbjson_kind(want_av, want)) {
        s_fail(x, 415, "UnsupportedMediaType",
               "the body of the request was in an unknown format - accepted media types include: "
               "application/json, application/yaml");
        return NULL;
    }
    buf_t err;
    buf_init(&err, AS_STATUS_MSG);
    json_t *obj = NULL;
    int rc = pbjson_decode_object(req->body, req->body_len, &obj, &err);
    bool known =
        pbjson_peek_kind(req->body, req->body_len, av, sizeof(av), kind, sizeof(kind)) == 0 &&
        kind[0];
    const char *ver = strchr(av, '/') ? strchr(av, '/') + 1 : av;
    buf_t msg;
    buf_init(&msg, AS_STATUS_MSG);
    if (rc == 0 && (strcmp(av, want_av) != 0 || strcmp(kind, want) != 0)) {
        /* internal packages are named after the group's first label; core's is "core" */
        const char *g = x->sub && strcmp(x->sub, "binding") == 0 ? "" : x->r->group;
        if (x->sub && strcmp(x->sub, "token") == 0)
            g = "authentication";
        else if (x->sub && strcmp(x->sub, "scale") == 0)
            g = "autoscaling";
        size_t gl = strcspn(g, ".");
        buf_printf(&msg,
                   "%s in version \"%s\" cannot be handled as a %s: converting (%s.%s) to "
                   "(%.*s.%s): unknown conversion",
                   kind, ver, want, ver, kind, (int)(gl ? gl : 4), gl ? g : "core", want);
        json_decref(obj);
        obj = NULL;
    } else if (rc < 0 && known) {
        buf_printf(&msg, "%s in version \"%s\" cannot be handled as a %s: %s", kind, ver, want,
                   buf_str(&err));
    } else if (rc < 0) {
        buf_printf(&msg, "the object provided is unrecognized (must be of type %s): %s (", want,
                   buf_str(&err));
        size_t n = req->body_len < 30 ? req->body_len : 30;
        if (n && req->body[0] == '{') /* summarizeData: JSON as text, else hex */
            buf_append(&msg, req->body, n);
        else
            for (size_t i = 0; i < n; i++)
                buf_printf(&msg, "%02x", (unsigned)((const unsigned char *)req->body)[i]);
        buf_puts(&msg, n == 0 ? "<empty>)" : req->body_len > 30 ? " ...)" : ")");
    }
    buf_free(&err);
    if (!obj)
        s_fail(x, 400, "BadRequest", buf_str(&msg));
    buf_free(&msg);
    return obj;
}

/* Parses the request body as JSON (or YAML for YAML content types) into a new object. On error
 * replies 400 and returns NULL. */
static json_t *s_body(reqctx_t *x, bool yaml)
{
    const httpd_req_t *req = x->req;
    const char *ct = httpd_req_header(req, "content-type");
    if (ct && (strncasecmp(ct, "application/yaml", 16) == 0 || strstr(ct, "+yaml")))
        yaml = true;
    if (ct && strncasecmp(ct, PBJSON_MEDIA, strlen(PBJSON_MEDIA)) == 0)
        return s_body_proto(x);
    if (req->body_len == 0) {
        s_fail(x, 400, "BadRequest", "the body of the request was empty");
        return NULL;
    }
    buf_t err;
    buf_init(&err, AS_STATUS_MSG);
    json_t *obj = NULL;
    if (yaml) {
        json_t *docs = NULL;
        if (yaml_load_buf(req->body, req->body_len, "body", &docs, &err) == 0) {
            obj = json_incref(json_array_get(docs, 0));
            json_decref(docs);
        }
    } else {
        jx_parse(req->body, req->body_len, "body", &obj, &err);
    }
    if (!obj || !json_is_object(obj)) {
        char msg[AS_STATUS_MSG + 64];
        snprintf(msg, sizeof(msg), "the object provided is unrecognized: %s",
                 err.len ? buf_str(&err) : "not a JSON object");
        s_fail(x, 400, "BadRequest", msg);
        json_decref(obj);
        obj = NULL;
    }
    buf_free(&err);
    return obj;
}

static void s_now_rfc3339(apiserver_t *a, char *out, size_t n)
{
    rftime_format(objstore_now_ms(a->store), RFTIME_SEC, out, n);
}

static void s_gc_soon(apiserver_t *a);
static int s_crd_sync(apiserver_t *a, const json_t *crd, json_t **out);
static void s_crd_remove(apiserver_t *a, const char *name);
static bool s_crd_validate(reqctx_t *x, const json_t *crd);

/* Applies the CRD's structural schema (defaults, pruning, validation) to a custom resource
 * about to be written, honouring fieldValidation (Strict: unknown fields give 400; Warn, the
 * default: a Warning header is not sent back but the fields are pruned; Ignore: pruned).
 * Returns true to go on (obj possibly changed); false after replying 400/422. */
/* The defaults kube-apiserver applies to a Service on every write (the fields controllers read
 * back): type ClusterIP, sessionAffinity None, each port's protocol TCP and targetPort = port;
 * and on create a cluster IP from the service CIDR for a ClusterIP Service without one. */
static void s_service_defaults(reqctx_t *x, json_t *obj, bool create)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec))
        return;
    if (!json_is_string(json_object_get(spec, "type")))
        json_object_set_new(spec, "type", json_string("ClusterIP"));
    if (!json_is_string(json_object_get(spec, "sessionAffinity")))
        json_object_set_new(spec, "sessionAffinity", json_string("None"));
    size_t i;
    json_t *port;
    json_array_foreach(json_object_get(spec, "ports"), i, port)
    {
        if (!json_is_object(port))
            continue;
        if (!json_object_get(port, "protocol"))
            json_object_set_new(port, "protocol", json_string("TCP"));
        json_t *p = json_object_get(port, "port");
        if (!json_object_get(port, "targetPort") && json_is_integer(p))
            json_object_set(port, "targetPort", p);
    }
    const char *type = jx_str(spec, "type", "ClusterIP");
    if (create && strcmp(type, "ExternalName") != 0 && !json_object_get(spec, "clusterIP")) {
        uint32_t n = ++x->a->service_ips; // 10.96.0.0/12, skipping .0 and the API server's .1
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", 96 + ((n + 1) >> 16) % 16, ((n + 1) >> 8) & 255,
                 (n + 1) & 255);
        json_object_set_new(spec, "clusterIP", json_string(ip));
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
    }
}

static bool s_schema_apply(reqctx_t *x, json_t *obj)
{
    /* kube's ObjectMeta validation (names, labels, annotations, finalizers), every kind */
    json_t *mcauses = json_array();
    int mn = mcauses ? metaval_check(x->r->group, x->r->resource, obj,
                                     strcmp(x->verb, "create") == 0, !x->r->is_custom, mcauses)
                     : ERR_NOMEM;
    if (mn != 0) {
        if (mn < 0)
            s_fail(x, 500, "InternalError", "out of memory");
        else
            s_reply_json(x, 422,
                         schema_invalid_status(x->r->kind, x->r->group,
                                               jx_str(obj, "metadata.name", ""), mcauses),
                         NULL);
        json_decref(mcauses);
        return false;
    }
    json_decref(mcauses);
    if (!x->r->is_custom && storage_prints(x->r->group, x->r->resource)) {
        /* volumes and network policies: kube's admission, defaults and validation */
        json_t *old = NULL;
        objstore_status_t st;
        if (x->name && objstore_get(x->a->store, x->r->res, x->ns, x->name, &old, &st) < 0)
            old = NULL;
        bool ok = storage_admit(x->a->store, x->r->group, x->r->resource, obj, old, &st);
        json_decref(old);
        if (!ok)
            s_reply_status(x, &st, NULL);
        return ok;
    }
    if (!x->r->is_custom && strcmp(x->r->resource, "services") == 0 && !*x->r->group) {
        s_service_defaults(x, obj, strcmp(x->verb, "create") == 0);
        return true;
    }
    if (s_is_apps(x->r)) {
        apps_defaults(x->r->resource, obj);
        json_t *causes = json_array();
        if (causes && apps_validate(x->r->resource, obj, causes) > 0) {
            s_reply_json(x, 422,
                         schema_invalid_status(x->r->kind, x->r->group,
                                               jx_str(obj, "metadata.name", ""), causes),
                         NULL);
            json_decref(causes);
            return false;
        }
        json_decref(causes);
        return true;
    }
    if (!x->r->is_custom && strcmp(x->r->resource, "customresourcedefinitions") == 0) {
        /* The CRD's validation rules: refused with kube's causes when one cannot be compiled. */
        json_t *causes = json_array();
        int rc = causes ? schema_crd_rules_check(obj, causes) : ERR_NOMEM;
        if (rc == ERR_INVAL)
            s_reply_json(x, 422,
                         schema_invalid_status("CustomResourceDefinition", "apiextensions.k8s.io",
                                               jx_str(obj, "metadata.name", ""), causes),
                         NULL);
        else if (rc)
            s_fail(x, 500, "InternalError", "out of memory");
        json_decref(causes);
        return rc == 0;
    }
    if (!x->r->is_custom || !x->r->crd_version)
        return true;
    const json_t *sch = jx_get(x->r->crd_version, "schema.openAPIV3Schema");
    if (!sch)
        return true;
    json_t *pruned = json_array(), *causes = json_array();
    if (!pruned || !causes) {
        json_decref(pruned);
        json_decref(causes);
        s_fail(x, 500, "InternalError", "out of memory");
        return false;
    }
    int rc = schema_apply(sch, obj, pruned, causes);
    if (rc != ERR_NOMEM && x->r->rules) {
        /* x-kubernetes-validations, after the structural checks; the stored object is oldSelf. */
        json_t *old = NULL;
        objstore_status_t st;
        if (x->name && objstore_get(x->a->store, x->r->res, x->ns, x->name, &old, &st) < 0)
            old = NULL;
        int rrc = schema_rules_validate(x->r->rules, obj, old, causes);
        json_decref(old);
        if (rrc)
            rc = rrc;
    }
    char fv[32];
    bool strict = s_param(x, "fieldValidation", fv, sizeof(fv)) && strcmp(fv, "Strict") == 0;
    bool ok = true;
    if (rc == ERR_NOMEM) {
        s_fail(x, 500, "InternalError", "out of memory");
        ok = false;
    } else if (strict && json_array_size(pruned) > 0) {
        buf_t m;
        buf_init(&m, AS_STATUS_MSG);
        buf_puts(&m, "strict decoding error: ");
        size_t i;
        json_t *f;
        json_array_foreach(pruned, i, f)
        {
            if (buf_printf(&m, "%sunknown field \"%s\"", i ? ", " : "",
                           json_string_value(f) ? json_string_value(f) : "") < 0)
                break;
        }
        s_fail(x, 400, "BadRequest", buf_str(&m));
        buf_free(&m);
        ok = false;
    } else if (rc == ERR_INVAL) {
        s_reply_json(x, 422,
                     schema_invalid_status(x->r->kind, x->r->group,
                                           jx_str(obj, "metadata.name", ""), causes),
                     NULL);
        ok = false;
    }
    json_decref(pruned);
    json_decref(causes);
    return ok;
}

/* After a successful write: CRD bookkeeping, GC. Returns the object to reply with (stolen). */
static json_t *s_after_write(reqctx_t *x, json_t *obj, bool deleted)
{
    apiserver_t *a = x->a;
    if (!x->r->is_custom && strcmp(x->r->resource, "customresourcedefinitions") == 0) {
        if (deleted) {
            s_crd_remove(a, jx_str(obj, "metadata.name", ""));
        } else {
            json_t *upd = NULL;
            if (s_crd_sync(a, obj, &upd) == 0 && upd) {
                json_decref(obj);
                obj = upd;
            } else {
                json_decref(upd);
            }
        }
        gateway_rebind(a->gw);
    }
    s_gc_soon(a);
    return obj;
}

/* ---- get / list ------------------------------------------------------------------------- */

static void s_get(reqctx_t *x)
{
    objstore_status_t st;
    json_t *obj = NULL;
    if (objstore_get(x->a->store, x->r->res, x->ns, x->name, &obj, &st) < 0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    if (x->sub && strcmp(x->sub, "scale") == 0) {
        json_t *sc = apps_scale(obj);
        json_decref(obj);
        s_reply_json(x, 200, sc, NULL);
        return;
    }
    if (x->table) {
        json_t *items = json_pack("[O]", obj);
        json_t *t = s_table(x->a, x->r, items, s_include_object(x), true);
        json_object_set_new(json_object_get(t, "metadata"), "resourceVersion",
                            json_string(jx_str(obj, "metadata.resourceVersion", "")));
        json_decref(items);
        json_decref(obj);
        s_reply_json(x, 200, t, AS_TABLE_TYPE);
        return;
    }
    s_reply_json(x, 200, obj, NULL);
}

/* Checks resourceVersion/resourceVersionMatch/continue/sendInitialEvents for a list. Replies
 * and returns false on error. *exact_rv is set when the list must be served at exactly that
 * RV (which we can only do when it is the current one). */
static bool s_list_options(reqctx_t *x, bool watch, uint64_t *min_rv, uint64_t *exact_rv)
{
    char rv[64], match[64], cont[16], sie[16];
    bool has_rv = s_param(x, "resourceVersion", rv, sizeof(rv)) && rv[0];
    bool has_match = s_param(x, "resourceVersionMatch", match, sizeof(match)) && match[0];
    bool has_cont = s_param(x, "continue", cont, sizeof(cont)) && cont[0];
    bool has_sie = s_param(x, "sendInitialEvents", sie, sizeof(sie)) && sie[0];
    char limit[32];
    bool has_limit =
        s_param(x, "limit", limit, sizeof(limit)) && strcmp(limit, "0") != 0 && limit[0];
    *min_rv = 0;
    *exact_rv = 0;
    if (has_rv && !s_is_uint(rv)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Invalid value: \"%s\": must be a non-negative integer", rv);
        s_fail_options(x, "ListOptions", "resourceVersion", "FieldValueInvalid", msg);
        return false;
    }
    if (!watch && has_sie) {
        s_fail_options(x, "ListOptions", "sendInitialEvents", "FieldValueForbidden",
                       "Forbidden: sendInitialEvents is forbidden for list");
        return false;
    }
    if (watch && has_match && !has_sie) {
        s_fail_options(x, "ListOptions", "resourceVersionMatch", "FieldValueForbidden",
                       "Forbidden: resourceVersionMatch is forbidden for watch unless "
                       "sendInitialEvents is provided");
        return false;
    }
    if (has_match && !has_rv && !(watch && has_sie)) {
        s_fail_options(x, "ListOptions", "resourceVersionMatch", "FieldValueForbidden",
                       "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is "
                       "provided");
        return false;
    }
    if (has_match && strcmp(match, "NotOlderThan") != 0 && strcmp(match, "Exact") != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Unsupported value: \"%s\": supported values: \"Exact\", \"NotOlderThan\"", match);
        s_fail_options(x, "ListOptions", "resourceVersionMatch", "FieldValueNotSupported", msg);
        return false;
    }
    if (has_match && strcmp(match, "Exact") == 0 && has_rv && strcmp(rv, "0") == 0) {
        s_fail_options(x, "ListOptions", "resourceVersionMatch", "FieldValueForbidden",
                       "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion "
                       "\"0\"");
        return false;
    }
    if (!watch && has_cont && has_rv && strcmp(rv, "0") != 0) {
        s_fail(x, 400, "BadRequest",
               "specifying resource version is not allowed when using continue");
        return false;
    }
    if (watch || !has_rv || strcmp(rv, "0") == 0)
        return true;
    uint64_t n = strtoull(rv, NULL, 10);
    bool exact = (has_match && strcmp(match, "Exact") == 0) || (!has_match && has_limit);
    if (exact)
        *exact_rv = n;
    else
        *min_rv = n;
    return true;
}

static void s_list(reqctx_t *x)
{
    apiserver_t *a = x->a;
    uint64_t min_rv, exact_rv;
    if (!s_list_options(x, false, &min_rv, &exact_rv))
        return;
    uint64_t cur = objstore_rv(a->store);
    objstore_status_t st;
    if ((min_rv && min_rv > cur) || (exact_rv && exact_rv > cur)) {
        s_status_set(&st, 504, "Timeout",
                     "Too large resource version: %" PRIu64 ", current: %" PRIu64,
                     min_rv ? min_rv : exact_rv, cur);
        st.cause_reason = "ResourceVersionTooLarge";
        s_copy(st.cause_message, sizeof(st.cause_message), "Too large resource version");
        st.retry_after = 1;
        s_reply_status(x, &st, NULL);
        return;
    }
    if (exact_rv && exact_rv != cur) {
        s_status_set(&st, 410, "Expired", "too old resource version: %" PRIu64 " (%" PRIu64 ")",
                     exact_rv, cur);
        s_reply_status(x, &st, NULL);
        return;
    }
    filter_t f;
    if (!s_filter_parse(x, &f))
        return;
    char limit[32], cont[OBJSTORE_CONTINUE_MAX];
    objstore_list_opts_t o = {.ns = x->ns};
    if (f.labels || f.fields) {
        o.filter = s_filter_match;
        o.filter_arg = &f;
    }
    if (s_param(x, "limit", limit, sizeof(limit)) && limit[0]) {
        char *end;
        long long l = strtoll(limit, &end, 10);
        if (*end || l < 0) {
            s_filter_free(&f);
            s_fail(x, 400, "BadRequest", "invalid limit");
            return;
        }
        o.limit = (size_t)l;
    }
    if (s_param(x, "continue", cont, sizeof(cont)) && cont[0])
        o.continue_token = cont;
    objstore_list_t l;
    memset(&l, 0, sizeof(l));
    int rc = objstore_list(a->store, x->r->res, &o, &l, &st);
    s_filter_free(&f);
    if (rc < 0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, l.rv);
    json_t *meta = json_pack("{s:s}", "resourceVersion", rvs);
    if (l.continue_token[0])
        json_object_set_new(meta, "continue", json_string(l.continue_token));
    if (l.remaining > 0)
        json_object_set_new(meta, "remainingItemCount", json_integer(l.remaining));
    if (x->table) {
        json_t *t = s_table(a, x->r, l.items, s_include_object(x), true);
        json_object_set_new(t, "metadata", meta);
        objstore_list_free(&l);
        s_reply_json(x, 200, t, AS_TABLE_TYPE);
        return;
    }
    char gv[AS_NAME_LEN + 70];
    s_gv(x->r, gv, sizeof(gv));
    json_t *out = json_pack("{s:s,s:s,s:o,s:O}", "kind", x->r->list_kind, "apiVersion", gv,
                            "metadata", meta, "items", l.items ? l.items : json_array());
    objstore_list_free(&l);
    s_reply_json(x, 200, out, NULL);
}

/* ---- create / update / patch ------------------------------------------------------------ */

/* A dry-run create: the object as it would be stored, without storing it. */
static void s_create_dry(reqctx_t *x, json_t *obj)
{
    objstore_status_t st;
    const char *name = jx_str(obj, "metadata.name", NULL);
    json_t *old = NULL;
    if (name && objstore_get(x->a->store, x->r->res, x->ns, name, &old, &st) == 0) {
        json_decref(old);
        char q[AS_NAME_LEN * 2];
        objstore_res_qualified(x->r->res, q, sizeof(q));
        s_status_set(&st, 409, "AlreadyExists", "%s \"%s\" already exists", q, name);
        s_copy(st.name, sizeof(st.name), name);
        s_copy(st.group, sizeof(st.group), x->r->group);
        s_copy(st.kind, sizeof(st.kind), x->r->resource);
        s_reply_status(x, &st, NULL);
        json_decref(obj);
        return;
    }
    char ts[32], gv[AS_NAME_LEN + 70];
    s_now_rfc3339(x->a, ts, sizeof(ts));
    s_gv(x->r, gv, sizeof(gv));
    if (!json_object_get(obj, "apiVersion"))
        json_object_set_new(obj, "apiVersion", json_string(gv));
    if (!json_object_get(obj, "kind"))
        json_object_set_new(obj, "kind", json_string(x->r->kind));
    json_t *md = json_object_get(obj, "metadata");
    if (!json_is_object(md)) {
        md = json_object();
        json_object_set_new(obj, "metadata", md);
    }
    if (x->ns && x->r->namespaced)
        json_object_set_new(md, "namespace", json_string(x->ns));
    json_object_set_new(md, "creationTimestamp", json_string(ts));
    json_object_set_new(md, "generation", json_integer(1));
    if (x->r->has_status)
        json_object_del(obj, "status");
    s_reply_json(x, 201, obj, NULL);
}

static void s_binding(reqctx_t *x)
{
    json_t *b = s_body(x, false);
    if (!b)
        return;
    const char *node = jx_str(b, "target.name", NULL);
    objstore_status_t st;
    json_t *pod = NULL;
    if (!node || !node[0]) {
        json_decref(b);
        s_fail(x, 422, "Invalid", "Binding.core \"\" is invalid: target.name: Required value");
        return;
    }
    if (objstore_get(x->a->store, x->r->res, x->ns, x->name, &pod, &st) < 0) {
        json_decref(b);
        s_reply_status(x, &st, NULL);
        return;
    }
    const char *cur = jx_str(pod, "spec.nodeName", "");
    if (cur[0]) {
        s_status_set(&st, 409, "Conflict",
                     "Operation cannot be fulfilled on pods/binding \"%s\": "
                     "pod %s is already assigned to node \"%s\"",
                     x->name, x->name, cur);
        s_copy(st.name, sizeof(st.name), x->name);
        s_copy(st.kind, sizeof(st.kind), "pods/binding");
        json_decref(pod);
        json_decref(b);
        s_reply_status(x, &st, NULL);
        return;
    }
    json_t *np = json_copy(pod);
    json_t *spec = json_copy(json_object_get(pod, "spec"));
    json_decref(pod);
    if (!np || !spec) {
        json_decref(np);
        json_decref(spec);
        json_decref(b);
        s_fail(x, 500, "InternalError", "out of memory");
        return;
    }
    json_object_set_new(spec, "nodeName", json_string(node));
    json_object_set_new(np, "spec", spec);
    json_decref(b);
    if (x->dry_run) {
        json_decref(np);
    } else {
        objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
        json_t *out = NULL;
        if (objstore_update(x->a->store, x->r->res, x->ns, x->name, &np, &uo, &out, NULL, &st) <
            0) {
            s_reply_status(x, &st, NULL);
            return;
        }
        json_decref(out);
    }
    s_reply_json(x, 201,
                 json_pack("{s:s,s:s,s:{},s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                           "metadata", "status", "Success", "code", 201),
                 NULL);
}

/* A Role, ClusterRole or binding written by a non-master identity: kube's escalation prevention
 * (rbac_escalation_ok). Answers 403 (counted) and returns false when refused. */
static bool s_rbac_write_ok(reqctx_t *x, const json_t *obj)
{
    apiserver_t *a = x->a;
    const apires_t *r = x->r;
    if (!x->user || r->is_custom || strcmp(r->group, "rbac.authorization.k8s.io") != 0 || x->sub)
        return true;
    bool binding = strstr(r->resource, "bindings") != NULL;
    const char *ns = r->namespaced && x->ns ? x->ns : "";
    const char *name = x->name ? x->name : jx_str(obj, "metadata.name", "");
    json_t *role = NULL;
    const char *kind = binding ? jx_str(obj, "roleRef.kind", "") : NULL;
    if (binding) {
        bool cluster = strcmp(kind, "ClusterRole") == 0;
        objstore_res_t *rr = objstore_find(a->store, "rbac.authorization.k8s.io",
                                           cluster ? "clusterroles" : "roles");
        objstore_status_t st;
        if (rr && objstore_get(a->store, rr, cluster ? NULL : ns, jx_str(obj, "roleRef.name", ""),
                               &role, &st) < 0)
            role = NULL;
    }
    objstore_status_t st;
    memset(&st, 0, sizeof(st));
    bool ok = rbac_escalation_ok(
        a->store, x->user, r->resource, ns, name, json_object_get(binding ? role : obj, "rules"),
        kind, binding ? jx_str(obj, "roleRef.name", "") : NULL, st.message, sizeof(st.message));
    json_decref(role);
    if (ok)
        return true;
    rbac_attrs_t at;
    memset(&at, 0, sizeof(at));
    at.resource_request = true;
    s_copy(at.verb, sizeof(at.verb), x->verb);
    s_copy(at.group, sizeof(at.group), r->group);
    s_copy(at.resource, sizeof(at.resource), r->resource);
    s_copy(at.ns, sizeof(at.ns), ns);
    rbac_count_denied(a->rbac, x->user, &at);
    log_warn("kubesim: forbidden: RBAC escalation", "user", x->user->name, "resource", r->resource,
             "name", name, "namespace", ns, NULL);
    st.code = 403;
    st.reason = "Forbidden";
    s_copy(st.kind, sizeof(st.kind), r->resource);
    s_copy(st.group, sizeof(st.group), r->group);
    s_copy(st.name, sizeof(st.name), name);
    s_reply_status(x, &st, NULL);
    return false;
}

static void s_create(reqctx_t *x)
{
    json_t *obj = s_body(x, false);
    if (!obj)
        return;
    if (!s_rbac_write_ok(x, obj)) {
        json_decref(obj);
        return;
    }
    if (!x->r->is_custom && strcmp(x->r->resource, "customresourcedefinitions") == 0 &&
        !s_crd_validate(x, obj)) {
        json_decref(obj);
        return;
    }
    if (!s_schema_apply(x, obj)) {
        json_decref(obj);
        return;
    }
    objstore_status_t st;
    if (x->dry_run) {
        /* kube admits a dry-run create too (objstore_create() runs the hook for real ones) */
        if (!quota_admit(x->a->store, x->r->res, x->ns, obj, &st)) {
            s_reply_status(x, &st, NULL);
            json_decref(obj);
            return;
        }
        s_create_dry(x, obj);
        return;
    }
    json_t *out = NULL;
    if (objstore_create(x->a->store, x->r->res, x->ns, &obj, &out, &st) < 0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    s_reply_json(x, 201, s_after_write(x, out, false), NULL);
}

/* Writes the Scale `sc` (stolen) of an apps/v1 workload: its spec.replicas goes to the object's
 * spec.replicas (kube's scale subresource); replies with the new Scale. */
static void s_scale_write(reqctx_t *x, json_t *sc)
{
    const json_t *rep = jx_get(sc, "spec.replicas");
    json_int_t n = json_is_integer(rep) ? json_integer_value(rep) : 0;
    if (n < 0) {
        json_t *causes = json_array();
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "Invalid value: %" JSON_INTEGER_FORMAT ": must be greater than or equal to 0", n);
        json_array_append_new(causes, json_pack("{s:s,s:s,s:s}", "reason", "FieldValueInvalid",
                                                "message", msg, "field", "spec.replicas"));
        s_reply_json(x, 422, schema_invalid_status("Scale", "autoscaling", x->name, causes), NULL);
        json_decref(causes);
        json_decref(sc);
        return;
    }
    json_decref(sc);
    objstore_status_t st;
    json_t *cur = NULL, *out = NULL;
    if (objstore_get(x->a->store, x->r->res, x->ns, x->name, &cur, &st) < 0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    json_t *obj = json_copy(cur);
    json_t *spec = json_copy(json_object_get(cur, "spec"));
    json_decref(cur);
    if (!obj || !spec) {
        json_decref(obj);
        json_decref(spec);
        s_fail(x, 500, "InternalError", "out of memory");
        return;
    }
    json_object_set_new(spec, "replicas", json_integer(n));
    json_object_set_new(obj, "spec", spec);
    if (x->dry_run) {
        s_reply_json(x, 200, apps_scale(obj), NULL);
        json_decref(obj);
        return;
    }
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    if (objstore_update(x->a->store, x->r->res, x->ns, x->name, &obj, &uo, &out, NULL, &st) < 0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    s_reply_json(x, 200, apps_scale(out), NULL);
    json_decref(out);
}

/* kube's update validation of an apps/v1 workload against the stored object (defaults applied
 * to a copy of obj first, as on create). Replies 422 and returns false when refused. */
static bool s_apps_update_ok(reqctx_t *x, const json_t *obj)
{
    objstore_status_t st;
    json_t *cur = NULL;
    if (objstore_get(x->a->store, x->r->res, x->ns, x->name, &cur, &st) < 0)
        return true; /* the write reports the 404 */
    json_t *o = json_deep_copy(obj), *causes = json_array();
    apps_defaults(x->r->resource, o);
    bool ok = apps_validate_update(x->r->resource, cur, o, causes) == 0;
    if (!ok)
        s_reply_json(x, 422, schema_invalid_status(x->r->kind, x->r->group, x->name, causes), NULL);
    json_decref(causes);
    json_decref(o);
    json_decref(cur);
    return ok;
}

/* Writes `obj` (stolen) over x->name with precondition mode `pc`; replies. */
static void s_write(reqctx_t *x, json_t *obj, objstore_precond_t pc, int ok_status)
{
    if (!s_rbac_write_ok(x, obj)) {
        json_decref(obj);
        return;
    }
    const char *bn = jx_str(obj, "metadata.name", NULL);
    if (bn && strcmp(bn, x->name) != 0) {
        char msg[600];
        snprintf(msg, sizeof(msg),
                 "the name of the object (%s) does not match the name on the URL (%s)", bn,
                 x->name);
        json_decref(obj);
        s_fail(x, 400, "BadRequest", msg);
        return;
    }
    if (x->sub && strcmp(x->sub, "scale") == 0) {
        s_scale_write(x, obj);
        return;
    }
    bool status = x->sub && strcmp(x->sub, "status") == 0;
    if (!status && s_is_apps(x->r) && !s_apps_update_ok(x, obj)) {
        json_decref(obj);
        return;
    }
    if (!status && !s_schema_apply(x, obj)) {
        json_decref(obj);
        return;
    }
    if (x->dry_run) {
        s_reply_json(x, 200, obj, NULL);
        return;
    }
    objstore_update_opts_t uo = {.precond = pc, .status = status};
    objstore_status_t st;
    json_t *out = NULL;
    bool deleted = false;
    if (objstore_update(x->a->store, x->r->res, x->ns, x->name, &obj, &uo, &out, &deleted, &st) <
        0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    s_reply_json(x, ok_status, s_after_write(x, out, deleted), NULL);
}

static void s_update(reqctx_t *x)
{
    json_t *obj = s_body(x, false);
    if (!obj)
        return;
    if (!x->r->is_custom && strcmp(x->r->resource, "customresourcedefinitions") == 0 &&
        !s_crd_validate(x, obj)) {
        json_decref(obj);
        return;
    }
    s_write(x, obj, OBJSTORE_PRECOND_PUT, 200);
}

static void s_patch(reqctx_t *x)
{
    const char *ct = httpd_req_header(x->req, "content-type");
    char type[96] = "";
    if (ct) {
        size_t n = strcspn(ct, ";");
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
            n--;
        snprintf(type, sizeof(type), "%.*s", (int)n, ct);
    }
    enum { P_MERGE, P_JSON, P_SMP, P_APPLY } kind;
    if (strcasecmp(type, "application/merge-patch+json") == 0)
        kind = P_MERGE;
    else if (strcasecmp(type, "application/json-patch+json") == 0)
        kind = P_JSON;
    else if (strcasecmp(type, "application/strategic-merge-patch+json") == 0 && !x->r->is_custom)
        kind = P_SMP;
    else if (strcasecmp(type, "application/apply-patch+yaml") == 0)
        kind = P_APPLY;
    else {
        s_fail(x, 415, "UnsupportedMediaType",
               x->r->is_custom ? AS_UNSUPPORTED_PATCH : AS_UNSUPPORTED_PATCH_BUILTIN);
        return;
    }
    char fm[256];
    if (kind == P_APPLY && !(s_param(x, "fieldManager", fm, sizeof(fm)) && fm[0])) {
        s_fail_options(x, "PatchOptions", "fieldManager", "FieldValueRequired",
                       "Required value: is required for apply patch");
        return;
    }
    /* Parse the patch document. */
    json_t *p = NULL;
    buf_t err;
    buf_init(&err, AS_STATUS_MSG);
    if (x->req->body_len == 0) {
        buf_free(&err);
        s_fail(x, 400, "BadRequest", "the body of the request was empty");
        return;
    }
    if (kind == P_APPLY) {
        json_t *docs = NULL;
        if (yaml_load_buf(x->req->body, x->req->body_len, "patch", &docs, &err) == 0)
            p = json_incref(json_array_get(docs, 0));
        json_decref(docs);
    } else {
        jx_parse(x->req->body, x->req->body_len, "patch", &p, &err);
    }
    if (!p) {
        char msg[AS_STATUS_MSG + 64];
        snprintf(msg, sizeof(msg), "error decoding patch: %s", buf_str(&err));
        buf_free(&err);
        s_fail(x, 400, "BadRequest", msg);
        return;
    }
    objstore_status_t st;
    json_t *cur = NULL;
    if (objstore_get(x->a->store, x->r->res, x->ns, x->name, &cur, &st) < 0) {
        if (kind == P_APPLY && st.code == 404 && !x->sub) {
            /* Server-side apply creates. */
            json_t *obj = NULL;
            int rc = patch_apply_approx(NULL, p, x->r->kind, &obj, &err);
            json_decref(p);
            if (rc < 0 || !json_is_object(obj)) {
                json_decref(obj);
                s_fail(x, 400, "BadRequest", buf_str(&err));
                buf_free(&err);
                return;
            }
            buf_free(&err);
            if (!jx_get(obj, "metadata.name"))
                jx_set_path(obj, "metadata.name", json_string(x->name));
            if (!s_schema_apply(x, obj)) {
                json_decref(obj);
                return;
            }
            if (x->dry_run) {
                s_create_dry(x, obj);
                return;
            }
            json_t *out = NULL;
            if (objstore_create(x->a->store, x->r->res, x->ns, &obj, &out, &st) < 0) {
                s_reply_status(x, &st, NULL);
                return;
            }
            s_reply_json(x, 201, s_after_write(x, out, false), NULL);
            return;
        }
        json_decref(p);
        buf_free(&err);
        s_reply_status(x, &st, NULL);
        return;
    }
    if (x->sub && strcmp(x->sub, "scale") == 0) {
        json_t *sc = apps_scale(cur);
        json_decref(cur);
        cur = sc;
        if (kind == P_SMP || kind == P_APPLY)
            kind = P_MERGE; /* a Scale has no merge keys */
    }
    json_t *obj = NULL;
    int rc = 0;
    switch (kind) {
    case P_MERGE:
        obj = patch_merge(cur, p);
        rc = obj ? 0 : ERR_NOMEM;
        break;
    case P_JSON:
        rc = patch_json(cur, p, &obj, &err);
        break;
    case P_SMP:
        rc = patch_strategic(cur, p, x->r->kind, &obj, &err);
        break;
    case P_APPLY:
        rc = patch_apply_approx(cur, p, x->r->kind, &obj, &err);
        break;
    }
    json_decref(p);
    json_decref(cur);
    if (rc < 0 || !json_is_object(obj)) {
        json_decref(obj);
        if (rc == ERR_TOOBIG) {
            s_fail(x, 413, "RequestEntityTooLarge", buf_str(&err));
        } else if (rc == ERR_INVAL && kind == P_JSON) {
            s_status_set(&st, 422, "Invalid",
                         "the server rejected our request due to an error in our request");
            st.cause_reason = "FieldValueInvalid";
            s_copy(st.cause_message, sizeof(st.cause_message), buf_str(&err));
            s_reply_status(x, &st, NULL);
        } else if (rc == ERR_NOMEM) {
            s_fail(x, 500, "InternalError", "out of memory");
        } else {
            s_fail(x, rc == ERR_INVAL ? 422 : 400, rc == ERR_INVAL ? "Invalid" : "BadRequest",
                   err.len ? buf_str(&err) : "invalid patch");
        }
        buf_free(&err);
        return;
    }
    buf_free(&err);
    s_write(x, obj, OBJSTORE_PRECOND_PATCH, 200);
}

/* ---- delete ----------------------------------------------------------------------------- */

/* Fills DeleteOptions from the body and query. Strings point into *holder (free it). Replies
 * and returns false on error. */
static bool s_delete_opts(reqctx_t *x, objstore_delete_opts_t *o, json_t **holder)
{
    memset(o, 0, sizeof(*o));
    *holder = NULL;
    const char *pp = NULL;
    if (x->req->body_len > 0) {
        json_t *b = NULL;
        if (jx_parse(x->req->body, x->req->body_len, "body", &b, NULL) < 0 || !json_is_object(b)) {
            json_decref(b);
            s_fail(x, 400, "BadRequest", "the body of the request is not a valid DeleteOptions");
            return false;
        }
        *holder = b;
        pp = jx_str(b, "propagationPolicy", NULL);
        json_t *g = json_object_get(b, "gracePeriodSeconds");
        if (json_is_integer(g)) {
            o->grace_set = true;
            o->grace_seconds = json_integer_value(g);
        }
        o->precond_uid = jx_str(b, "preconditions.uid", NULL);
        o->precond_rv = jx_str(b, "preconditions.resourceVersion", NULL);
        json_t *od = json_object_get(b, "orphanDependents");
        if (json_is_boolean(od) && !pp)
            pp = json_is_true(od) ? "Orphan" : "Foreground";
        json_t *dr = json_object_get(b, "dryRun");
        if (json_array_size(dr) > 0)
            x->dry_run = true;
    }
    char v[64];
    if (s_param(x, "gracePeriodSeconds", v, sizeof(v)) && v[0]) {
        char *end;
        long long g = strtoll(v, &end, 10);
        if (*end) {
            s_fail(x, 400, "BadRequest", "invalid gracePeriodSeconds");
            return false;
        }
        o->grace_set = true;
        o->grace_seconds = g;
    }
    if (s_param(x, "propagationPolicy", x->pp_buf, sizeof(x->pp_buf)) && x->pp_buf[0])
        pp = x->pp_buf;
    if (pp) {
        if (strcmp(pp, "Background") == 0)
            o->propagation = OBJSTORE_PROPAGATE_BACKGROUND;
        else if (strcmp(pp, "Foreground") == 0)
            o->propagation = OBJSTORE_PROPAGATE_FOREGROUND;
        else if (strcmp(pp, "Orphan") == 0)
            o->propagation = OBJSTORE_PROPAGATE_ORPHAN;
        else {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "Unsupported value: \"%.64s\": supported values: \"Foreground\", "
                     "\"Background\", \"Orphan\"",
                     pp);
            s_fail_options(x, "DeleteOptions", "propagationPolicy", "FieldValueNotSupported", msg);
            return false;
        }
    }
    return true;
}

static void s_delete(reqctx_t *x)
{
    objstore_delete_opts_t o;
    json_t *holder;
    if (!s_delete_opts(x, &o, &holder))
        return;
    objstore_status_t st;
    json_t *out = NULL;
    bool deleted = false;
    int rc;
    if (x->dry_run)
        rc = objstore_get(x->a->store, x->r->res, x->ns, x->name, &out, &st);
    else
        rc = objstore_delete(x->a->store, x->r->res, x->ns, x->name, &o, &out, &deleted, &st);
    json_decref(holder);
    if (rc < 0) {
        s_reply_status(x, &st, NULL);
        return;
    }
    if (!x->dry_run)
        out = s_after_write(x, out, deleted);
    if (deleted && x->r->is_custom) {
        json_t *s = objstore_status_success(x->r->res, out);
        json_decref(out);
        s_reply_json(x, 200, s, NULL);
        return;
    }
    s_reply_json(x, 200, out, NULL);
}

static void s_deletecollection(reqctx_t *x)
{
    objstore_delete_opts_t o;
    json_t *holder;
    if (!s_delete_opts(x, &o, &holder))
        return;
    filter_t f;
    if (!s_filter_parse(x, &f)) {
        json_decref(holder);
        return;
    }
    objstore_list_opts_t lo = {.ns = x->ns};
    if (f.labels || f.fields) {
        lo.filter = s_filter_match;
        lo.filter_arg = &f;
    }
    objstore_list_t l;
    memset(&l, 0, sizeof(l));
    objstore_status_t st;
    int rc = objstore_list(x->a->store, x->r->res, &lo, &l, &st);
    s_filter_free(&f);
    if (rc < 0) {
        json_decref(holder);
        s_reply_status(x, &st, NULL);
        return;
    }
    json_t *items = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(l.items, i, it)
    {
        const char *ns = jx_str(it, "metadata.namespace", NULL);
        const char *name = jx_str(it, "metadata.name", "");
        json_t *out = NULL;
        bool deleted = false;
        if (x->dry_run) {
            json_array_append(items, it);
            continue;
        }
        if (objstore_delete(x->a->store, x->r->res, ns, name, &o, &out, &deleted, &st) == 0) {
            out = s_after_write(x, out, deleted);
            json_array_append_new(items, out);
        }
    }
    objstore_list_free(&l);
    json_decref(holder);
    char gv[AS_NAME_LEN + 70], rvs[32];
    s_gv(x->r, gv, sizeof(gv));
    snprintf(rvs, sizeof(rvs), "%" PRIu64, objstore_rv(x->a->store));
    s_reply_json(x, 200,
                 json_pack("{s:s,s:s,s:{s:s},s:o}", "kind", x->r->list_kind, "apiVersion", gv,
                           "metadata", "resourceVersion", rvs, "items", items),
                 NULL);
}

/* ---- watch ------------------------------------------------------------------------------ */

struct watcher {
    apiserver_t *a; /* the server */
    httpd_conn_t *c; /* the streaming connection */
    apires_t *r; /* the watched resource */
    objstore_watch_t *w; /* the store watch */
    filter_t filter; /* selectors */
    bool table; /* events carry one-row Tables */
    bool proto; /* events are Kubernetes protobuf frames (sim/pbjson.h) */
    int include; /* Table includeObject mode */
    bool columns_sent; /* the Table column definitions went out */
    bool bookmarks; /* allowWatchBookmarks */
    int64_t timeout_timer; /* ends the watch cleanly */
    int64_t bookmark_timer; /* periodic bookmarks */
    watcher_t *prev, *next; /* the server's list */
};

/* Ends a watch: stops the store watch and timers, unlinks and frees it. `how`: 0 the connection
 * is closed already, 1 end the stream cleanly, 2 abort the connection. */
static void s_watcher_close(watcher_t *w, int how)
{
    apiserver_t *a = w->a;
    objstore_watch_stop(a->store, &w->w);
    if (w->timeout_timer > 0)
        loop_cancel_timer(a->loop, w->timeout_timer);
    if (w->bookmark_timer > 0)
        loop_cancel_timer(a->loop, w->bookmark_timer);
    if (w->prev)
        w->prev->next = w->next;
    else
        a->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    a->nwatchers--;
    httpd_conn_on_close(w->c, NULL, NULL);
    if (how == 1)
        httpd_stream_end(w->c);
    else if (how == 2)
        httpd_conn_abort(w->c);
    s_filter_free(&w->filter);
    free(w);
}

static void s_watcher_on_close(httpd_conn_t *c, void *arg)
{
    s_watcher_close(arg, 0);
}

/* Sends `text` (a complete WatchEvent line) to one watcher. Returns 0 or an err (closed). */
static int s_watch_send_text(watcher_t *w, const char *text, size_t len)
{
    httpd_chunk_t *ch = httpd_chunk_framed(text, len);
    if (!ch)
        return ERR_NOMEM;
    int rc = httpd_stream_send(w->c, ch);
    httpd_chunk_unref(&ch);
    return rc;
}

/* Sends one protobuf watch frame about obj (borrowed). */
static int s_watch_send_proto(watcher_t *w, const char *type, const json_t *obj)
{
    buf_t b, err;
    buf_init(&b, AS_PROTO_MAX);
    buf_init(&err, PBJSON_ERR_MAX);
    int rc = pbjson_encode_watch_frame(type, obj, &b, &err);
    if (rc < 0)
        log_error("kubesim: protobuf watch event: %s", buf_str(&err));
    else
        rc = s_watch_send_text(w, b.data, b.len);
    buf_free(&b);
    buf_free(&err);
    return rc;
}

static int s_watch_send_obj(watcher_t *w, const char *type, json_t *obj)
{
    if (w->proto) {
        int rc = s_watch_send_proto(w, type, obj);
        json_decref(obj);
        return rc;
    }
    json_t *ev = json_pack("{s:s,s:o}", "type", type, "object", obj);
    char *text = ev ? json_dumps(ev, AS_JSON_FLAGS) : NULL;
    json_decref(ev);
    if (!text)
        return ERR_NOMEM;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return ERR_NOMEM;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    int rc = s_watch_send_text(w, line, n + 1);
    free(line);
    return rc;
}

static int s_send_bookmark(watcher_t *w, bool initial_end)
{
    char gv[AS_NAME_LEN + 70], rv[32];
    s_gv(w->r, gv, sizeof(gv));
    snprintf(rv, sizeof(rv), "%" PRIu64, objstore_rv(w->a->store));
    json_t *md = json_pack("{s:s}", "resourceVersion", rv);
    if (initial_end)
        json_object_set_new(md, "annotations",
                            json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
    return s_watch_send_obj(
        w, "BOOKMARK",
        json_pack("{s:s,s:s,s:o}", "kind", w->r->kind, "apiVersion", gv, "metadata", md));
}

/* The shared framed chunk for a plain-JSON event (built once per event, borrowed). */
static httpd_chunk_t *s_event_chunk(apiserver_t *a, const objstore_event_t *ev)
{
    size_t len = 0;
    const char *text = objstore_event_json(ev, &len);
    if (!text)
        return NULL;
    if (a->ev_chunk && a->ev_text == text && a->ev_rv == ev->rv && a->ev_type == (int)ev->type)
        return a->ev_chunk;
    httpd_chunk_unref(&a->ev_chunk);
    const char *type = objstore_evtype_str(ev->type);
    buf_t b;
    buf_init(&b, len + 64);
    if (buf_printf(&b, "{\"type\":\"%s\",\"object\":", type) < 0 || buf_append(&b, text, len) < 0 ||
        buf_puts(&b, "}\n") < 0) {
        buf_free(&b);
        return NULL;
    }
    a->ev_chunk = httpd_chunk_framed(b.data, b.len);
    buf_free(&b);
    a->ev_text = text;
    a->ev_rv = ev->rv;
    a->ev_type = (int)ev->type;
    return a->ev_chunk;
}

static int s_watch_cb(const objstore_event_t *ev, void *arg)
{
    watcher_t *w = arg;
    if (w->table) {
        json_t *items = json_pack("[O]", (json_t *)ev->obj);
        json_t *t = s_table(w->a, w->r, items, w->include, !w->columns_sent);
        json_decref(items);
        w->columns_sent = true;
        json_object_set_new(json_object_get(t, "metadata"), "resourceVersion",
                            json_string(jx_str(ev->obj, "metadata.resourceVersion", "")));
        return s_watch_send_obj(w, objstore_evtype_str(ev->type), t) < 0 ? 1 : 0;
    }
    if (w->proto)
        return s_watch_send_proto(w, objstore_evtype_str(ev->type), ev->obj) < 0 ? 1 : 0;
    httpd_chunk_t *ch = s_event_chunk(w->a, ev);
    if (!ch)
        return 1;
    return httpd_stream_send(w->c, ch) < 0 ? 1 : 0;
}

static int64_t s_watch_timeout(loop_t *loop, int64_t id, void *arg)
{
    watcher_t *w = arg;
    w->timeout_timer = 0;
    s_watcher_close(w, 1);
    return LOOP_TIMER_DONE;
}

static int64_t s_watch_bookmark(loop_t *loop, int64_t id, void *arg)
{
    watcher_t *w = arg;
    if (s_send_bookmark(w, false) < 0) {
        w->bookmark_timer = 0;
        return LOOP_TIMER_DONE;
    }
    return w->a->bookmark_ms;
}

static void s_watch(reqctx_t *x)
{
    apiserver_t *a = x->a;
    uint64_t min_rv, exact_rv;
    if (!s_list_options(x, true, &min_rv, &exact_rv))
        return;
    char rv[64], tmo[32];
    s_param(x, "resourceVersion", rv, sizeof(rv));
    bool sie = s_param_bool(x, "sendInitialEvents") &&
               httpd_query_get(x->req->query, "sendInitialEvents", tmo, sizeof(tmo)) >= 0;
    int64_t timeout_s = -1;
    if (s_param(x, "timeoutSeconds", tmo, sizeof(tmo)) && tmo[0]) {
        char *end;
        long long t = strtoll(tmo, &end, 10);
        if (*end || t < 0) {
            s_fail(x, 400, "BadRequest", "invalid timeoutSeconds");
            return;
        }
        timeout_s = t;
    }
    if (timeout_s <= 0)
        timeout_s = APISERVER_WATCH_MIN_S + (int64_t)(s_rand(a) % APISERVER_WATCH_MIN_S);
    watcher_t *w = calloc(1, sizeof(*w));
    if (!w) {
        s_fail(x, 500, "InternalError", "out of memory");
        return;
    }
    if (!s_filter_parse(x, &w->filter)) {
        free(w);
        return;
    }
    w->a = a;
    w->c = x->c;
    w->r = x->r;
    w->table = x->table;
    w->proto = x->proto;
    w->include = s_include_object(x);
    w->bookmarks = s_param_bool(x, "allowWatchBookmarks");
    const char *ctype = x->table   ? AS_TABLE_TYPE
                        : x->proto ? PBJSON_MEDIA_WATCH
                                   : "application/json";
    if (httpd_stream_begin(x->c, 200, ctype, NULL) < 0) {
        s_filter_free(&w->filter);
        free(w);
        return;
    }
    w->next = a->watchers;
    if (a->watchers)
        a->watchers->prev = w;
    a->watchers = w;
    a->nwatchers++;
    httpd_conn_on_close(x->c, s_watcher_on_close, w);
    bool filtered = w->filter.labels || w->filter.fields;
    objstore_status_t st;
    const char *from = sie ? NULL : rv;
    int rc = objstore_watch(a->store, x->r->res, x->ns, from, filtered ? s_filter_match : NULL,
                            &w->filter, s_watch_cb, w, &w->w, &st);
    if (rc < 0) {
        /* The stream has started: errors travel as an ERROR event, then the stream ends. */
        s_watch_send_obj(w, "ERROR", objstore_status_json(&st));
        s_watcher_close(w, 1);
        return;
    }
    if (httpd_conn_closed(x->c))
        return; /* closed while replaying (queue bound); the watcher is gone */
    if (sie && w->bookmarks)
        s_send_bookmark(w, true);
    w->timeout_timer = loop_add_timer(a->loop, timeout_s * 1000, s_watch_timeout, w);
    if (w->bookmarks)
        w->bookmark_timer = loop_add_timer(a->loop, a->bookmark_ms, s_watch_bookmark, w);
}

size_t apiserver_drop_watches(apiserver_t *a)
{
    size_t n = 0;
    while (a->watchers) {
        s_watcher_close(a->watchers, 2);
        n++;
    }
    return n;
}

size_t apiserver_bookmark_now(apiserver_t *a)
{
    size_t n = 0;
    for (watcher_t *w = a->watchers, *next; w; w = next) {
        next = w->next;
        if (w->bookmarks && s_send_bookmark(w, false) == 0)
            n++;
    }
    return n;
}

void apiserver_compact(apiserver_t *a)
{
    objstore_compact(a->store);
}

size_t apiserver_watch_count(const apiserver_t *a)
{
    return a->nwatchers;
}

/* ---- CRDs ------------------------------------------------------------------------------- */

static bool s_crd_validate(reqctx_t *x, const json_t *crd)
{
    const char *group = jx_str(crd, "spec.group", "");
    const char *plural = jx_str(crd, "spec.names.plural", "");
    const char *kind = jx_str(crd, "spec.names.kind", "");
    const char *name = jx_str(crd, "metadata.name", "");
    const char *scope = jx_str(crd, "spec.scope", "");
    char want[AS_NAME_LEN * 2];
    snprintf(want, sizeof(want), "%s.%s", plural, group);
    objstore_status_t st;
    const char *field = NULL, *detail = NULL;
    char msg[AS_STATUS_MSG];
    if (!group[0]) {
        field = "spec.group";
        detail = "Required value";
    } else if (!plural[0]) {
        field = "spec.names.plural";
        detail = "Required value";
    } else if (!kind[0]) {
        field = "spec.names.kind";
        detail = "Required value";
    } else if (strcmp(scope, "Namespaced") != 0 && strcmp(scope, "Cluster") != 0) {
        field = "spec.scope";
        snprintf(msg, sizeof(msg),
                 "Unsupported value: \"%s\": supported values: \"Cluster\", "
                 "\"Namespaced\"",
                 scope);
        detail = msg;
    } else if (strcmp(name, want) != 0) {
        field = "metadata.name";
        snprintf(msg, sizeof(msg),
                 "Invalid value: \"%s\": must be spec.names.plural+\".\"+spec.group", name);
        detail = msg;
    } else if (json_array_size(jx_get(crd, "spec.versions")) == 0) {
        field = "spec.versions";
        detail = "Invalid value: \"null\": must have exactly one version marked as storage version";
    }
    if (!field)
        return true;
    s_status_set(&st, 422, "Invalid",
                 "CustomResourceDefinition.apiextensions.k8s.io \"%s\" is invalid: %s: %s", name,
                 field, detail);
    s_copy(st.name, sizeof(st.name), name);
    s_copy(st.group, sizeof(st.group), "apiextensions.k8s.io");
    s_copy(st.kind, sizeof(st.kind), "CustomResourceDefinition");
    st.cause_reason = "FieldValueInvalid";
    s_copy(st.cause_message, sizeof(st.cause_message), detail);
    s_copy(st.cause_field, sizeof(st.cause_field), field);
    s_reply_status(x, &st, NULL);
    return false;
}

/* Removes API entries of CRD `name` for which keep(entry) is false, ending their watches. */
static void s_crd_drop_entries(apiserver_t *a, const char *name, const json_t *versions)
{
    for (size_t i = 0; i < a->nres;) {
        apires_t *r = a->res[i];
        bool drop = r->crd[0] && strcmp(r->crd, name) == 0;
        if (drop && versions) {
            size_t k;
            json_t *v;
            json_array_foreach(versions, k, v)
            {
                if (jx_bool(v, "served", false) && strcmp(jx_str(v, "name", ""), r->version) == 0)
                    drop = false;
            }
        }
        if (!drop) {
            i++;
            continue;
        }
        for (watcher_t *w = a->watchers, *next; w; w = next) {
            next = w->next;
            if (w->r == r)
                s_watcher_close(w, 1);
        }
        if (a->ev_res == r)
            a->ev_res = NULL;
        a->res[i] = a->res[--a->nres];
        s_res_free(r);
    }
}

static void s_crd_remove(apiserver_t *a, const char *name)
{
    objstore_res_t *res = NULL;
    for (size_t i = 0; i < a->nres; i++)
        if (a->res[i]->crd[0] && strcmp(a->res[i]->crd, name) == 0)
            res = a->res[i]->res;
    s_crd_drop_entries(a, name, NULL);
    httpd_chunk_unref(&a->ev_chunk);
    a->ev_text = NULL;
    if (res)
        objstore_unregister(a->store, &res);
}

static json_t *s_condition(const char *type, const char *status, const char *reason,
                           const char *msg, const char *ts)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", type, "status", status, "reason", reason,
                     "message", msg, "lastTransitionTime", ts);
}

static int s_crd_sync(apiserver_t *a, const json_t *crd, json_t **out)
{
    *out = NULL;
    const char *name = jx_str(crd, "metadata.name", "");
    const char *group = jx_str(crd, "spec.group", "");
    const json_t *names = jx_get(crd, "spec.names");
    const char *plural = jx_str(names, "plural", "");
    const char *kind = jx_str(names, "kind", "");
    bool namespaced = strcmp(jx_str(crd, "spec.scope", "Namespaced"), "Namespaced") == 0;
    const json_t *versions = jx_get(crd, "spec.versions");
    if (!group[0] || !plural[0] || !kind[0] || !json_is_array(versions))
        return ERR_INVAL;
    char singular[AS_NAME_LEN];
    s_copy(singular, sizeof(singular), jx_str(names, "singular", ""));
    if (!singular[0])
        for (size_t i = 0; kind[i] && i + 1 < sizeof(singular); i++) {
            singular[i] = (char)tolower((unsigned char)kind[i]);
            singular[i + 1] = '\0';
        }
    const char *storage = NULL;
    bool any_status = false;
    size_t k;
    json_t *v;
    json_array_foreach(versions, k, v)
    {
        if (jx_bool(v, "storage", false))
            storage = jx_str(v, "name", NULL);
        if (jx_get(v, "subresources.status"))
            any_status = true;
    }
    if (!storage)
        storage = jx_str(json_array_get(versions, 0), "name", "v1");
    /* Drop versions no longer served, then (re)build entries for the served ones. */
    s_crd_drop_entries(a, name, versions);
    objstore_res_t *res = objstore_find(a->store, group, plural);
    if (!res) {
        objstore_resdesc_t d = {.group = group,
                                .version = storage,
                                .resource = plural,
                                .kind = kind,
                                .namespaced = namespaced,
                                .has_status = any_status,
                                .is_custom = true};
        res = objstore_register(a->store, &d);
        if (!res)
            return ERR_NOMEM;
    }
    json_array_foreach(versions, k, v)
    {
        if (!jx_bool(v, "served", false))
            continue;
        const char *ver = jx_str(v, "name", "");
        apires_t *r = s_res_find(a, group, ver, plural);
        if (r && strcmp(r->crd, name) != 0)
            continue; /* taken by another definition */
        if (!r) {
            r = calloc(1, sizeof(*r));
            if (!r || s_res_add(a, r) < 0) {
                free(r);
                return ERR_NOMEM;
            }
        }
        json_decref(r->columns);
        json_decref(r->crd_version);
        json_decref(r->selectable);
        schema_rules_free(r->rules);
        memset(r, 0, sizeof(*r));
        s_copy(r->group, sizeof(r->group), group);
        s_copy(r->version, sizeof(r->version), ver);
        s_copy(r->resource, sizeof(r->resource), plural);
        s_copy(r->singular, sizeof(r->singular), singular);
        s_copy(r->kind, sizeof(r->kind), kind);
        s_copy(r->list_kind, sizeof(r->list_kind), jx_str(names, "listKind", ""));
        if (!r->list_kind[0])
            snprintf(r->list_kind, sizeof(r->list_kind), "%sList", kind);
        size_t j;
        json_t *sn;
        json_array_foreach(json_object_get(names, "shortNames"), j, sn)
        {
            if (r->nshorts < AS_MAX_SHORT && json_is_string(sn))
                s_copy(r->shorts[r->nshorts++], sizeof(r->shorts[0]), json_string_value(sn));
        }
        json_array_foreach(json_object_get(names, "categories"), j, sn)
        {
            if (json_is_string(sn) && strcmp(json_string_value(sn), "all") == 0)
                r->cat_all = true;
        }
        r->namespaced = namespaced;
        r->has_status = jx_get(v, "subresources.status") != NULL;
        r->has_scale = jx_get(v, "subresources.scale") != NULL;
        r->is_custom = true;
        r->storage = strcmp(ver, storage) == 0;
        snprintf(r->crd, sizeof(r->crd), "%s", name);
        r->columns = json_incref(json_object_get(v, "additionalPrinterColumns"));
        r->crd_version = json_incref(v);
        /* A rule that does not compile is kept and fails every object (kube's behaviour); the
         * CRD write itself refused such rules (s_schema_apply). */
        if (schema_rules_compile(jx_get(v, "schema.openAPIV3Schema"), NULL, &r->rules, NULL) ==
            ERR_NOMEM)
            return ERR_NOMEM;
        r->selectable = json_incref(json_object_get(v, "selectableFields"));
        r->res = res;
    }
    /* Status: NamesAccepted and Established, acceptedNames, storedVersions. */
    const json_t *conds = jx_get(crd, "status.conditions");
    bool established = false;
    json_array_foreach(conds, k, v)
    {
        if (strcmp(jx_str(v, "type", ""), "Established") == 0 &&
            strcmp(jx_str(v, "status", ""), "True") == 0)
            established = true;
    }
    json_t *stored = json_deep_copy(jx_get(crd, "status.storedVersions"));
    if (!json_is_array(stored)) {
        json_decref(stored);
        stored = json_array();
    }
    bool have = false;
    json_array_foreach(stored, k, v) have =
        have || (json_is_string(v) && strcmp(json_string_value(v), storage) == 0);
    if (established && have && json_equal(jx_get(crd, "status.acceptedNames"), names)) {
        json_decref(stored);
        return 0;
    }
    if (!have)
        json_array_append_new(stored, json_string(storage));
    char ts[32];
    s_now_rfc3339(a, ts, sizeof(ts));
    json_t *status =
        json_pack("{s:[o,o],s:O,s:o}", "conditions",
                  s_condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", ts),
                  s_condition("Established", "True", "InitialNamesAccepted",
                              "the initial names have been accepted", ts),
                  "acceptedNames", (json_t *)names, "storedVersions", stored);
    json_t *obj = json_copy((json_t *)crd);
    if (!obj || !status) {
        json_decref(obj);
        json_decref(status);
        return ERR_NOMEM;
    }
    json_object_set_new(obj, "status", status);
    objstore_res_t *crds =
        objstore_find(a->store, "apiextensions.k8s.io", "customresourcedefinitions");
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    objstore_status_t st;
    return objstore_update(a->store, crds, NULL, name, &obj, &uo, out, NULL, &st);
}

/* ---- faults and admin ------------------------------------------------------------------- */

int apiserver_add_fault(apiserver_t *a, const apiserver_fault_t *f)
{
    if (!(f->rate >= 0.0 && f->rate <= 1.0) || f->code < 400 || f->code > 599 || !f->verb[0] ||
        !f->resource[0])
        return ERR_INVAL;
    if (a->nfaults >= APISERVER_MAX_FAULTS)
        return ERR_TOOBIG;
    a->faults[a->nfaults++] = *f;
    return 0;
}

int apiserver_add_fault_spec(apiserver_t *a, const char *spec)
{
    apiserver_fault_t f;
    memset(&f, 0, sizeof(f));
    f.code = 500;
    const char *p = spec;
    const char *c1 = strchr(p, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || (size_t)(c1 - p) >= sizeof(f.verb) ||
        (size_t)(c2 - c1 - 1) >= sizeof(f.resource))
        return ERR_INVAL;
    snprintf(f.verb, sizeof(f.verb), "%.*s", (int)(c1 - p), p);
    snprintf(f.resource, sizeof(f.resource), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    char *end;
    f.rate = strtod(c2 + 1, &end);
    if (end == c2 + 1)
        return ERR_INVAL;
    if (strcmp(end, ":drop") == 0 || strcmp(end, ":timeout") == 0) {
        f.after = end[1] == 'd' ? APISERVER_FAULT_DROP : APISERVER_FAULT_TIMEOUT;
        f.code = 504;
        end += strlen(end);
    } else if (*end == ':') {
        long code = strtol(end + 1, &end, 10);
        f.code = (int)code;
    }
    if (*end)
        return ERR_INVAL;
    return apiserver_add_fault(a, &f);
}

void apiserver_clear_faults(apiserver_t *a)
{
    a->nfaults = 0;
    a->latency_ms = 0;
    a->jitter_ms = 0;
    a->throttle_left = 0;
}

void apiserver_set_latency(apiserver_t *a, int64_t fixed_ms, int64_t jitter_ms)
{
    a->latency_ms = fixed_ms > 0 ? fixed_ms : 0;
    a->jitter_ms = jitter_ms > 0 ? jitter_ms : 0;
}

void apiserver_set_fairness(apiserver_t *a, bool on)
{
    a->fair = on; /* requests queued already are served in their turns */
}

void apiserver_throttle(apiserver_t *a, int count, int retry_after_s)
{
    a->throttle_left = count > 0 ? count : 0;
    a->throttle_retry = retry_after_s > 0 ? retry_after_s : 1;
}

static const char *s_reason_for(int code)
{
    switch (code) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 409:
        return "Conflict";
    case 410:
        return "Expired";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return "InternalError";
    }
}

/* Answers an injected fault when one applies. Returns true when it did. */
static bool s_inject(reqctx_t *x)
{
    apiserver_t *a = x->a;
    objstore_status_t st;
    if (a->throttle_left > 0) {
        a->throttle_left--;
        s_status_set(&st, 429, "TooManyRequests", "Too many requests, please try again later.");
        st.retry_after = a->throttle_retry;
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "Retry-After: %d\r\n", a->throttle_retry);
        s_reply_status(x, &st, hdr);
        return true;
    }
    for (int i = 0; i < a->nfaults; i++) {
        const apiserver_fault_t *f = &a->faults[i];
        if (strcmp(f->verb, "*") != 0 && strcmp(f->verb, x->verb) != 0)
            continue;
        if (strcmp(f->resource, "*") != 0 && strcmp(f->resource, x->r->resource) != 0)
            continue;
        double roll = (double)(s_rand(a) >> 11) / 9007199254740992.0;
        if (roll >= f->rate)
            continue;
        if (f->after) { /* done normally, the answer is lost (s_reply_text) */
            x->after_fault = f->after;
            return false;
        }
        s_status_set(&st, f->code, s_reason_for(f->code), "kubesim: injected fault (%s %s)",
                     x->verb, x->r->resource);
        char hdr[64] = "";
        if (f->code == 429 || f->code == 503) {
            st.retry_after = 1;
            snprintf(hdr, sizeof(hdr), "Retry-After: 1\r\n");
        }
        s_reply_status(x, &st, hdr[0] ? hdr : NULL);
        return true;
    }
    return false;
}

/* The simulation's admin calls (POST, JSON body); kubesim --help lists them. Returns true when
 * done (the caller answers 200), false after answering an error itself. */
static bool s_admin_sim(reqctx_t *x, const char *what)
{
    apiserver_t *a = x->a;
    if (!a->kubelet) {
        s_fail(x, 409, "Conflict", "this kubesim runs without simulated workloads");
        return false;
    }
    json_t *b = s_body(x, false);
    if (!b)
        return false;
    int rc = ERR_INVAL;
    const char *ns = jx_str(b, "namespace", "default");
    if (strcmp(what, "nodes") == 0) {
        // {"add": "name", "cpu": "32", "memory": "128Gi", "pods": "110"} | {"fail": "name"} |
        // {"restore": "name"}
        const char *add = jx_str(b, "add", NULL);
        const char *fail = jx_str(b, "fail", NULL);
        const char *restore = jx_str(b, "restore", NULL);
        if (add)
            rc = kubelet_add_node(a->kubelet, add, jx_str(b, "cpu", KUBELET_NODE_CPU),
                                  jx_str(b, "memory", KUBELET_NODE_MEMORY),
                                  jx_str(b, "pods", KUBELET_NODE_PODS));
        else if (fail)
            rc = kubelet_fail_node(a->kubelet, fail);
        else if (restore)
            rc = kubelet_restore_node(a->kubelet, restore);
    } else if (strcmp(what, "pod-fault") == 0) {
        // {"namespace": "ns", "name": "pod", "kind": "ImagePull" | "Crash" | "OOM"}
        // or "kind": "ServeProxyDown" | "ServeProxyUp" (raysim.h RAYSIM_ANN_SERVE_PROXY)
        const char *k = jx_str(b, "kind", "");
        kubelet_fail_t kind = kubelet_fail_parse(k);
        const char *name = jx_str(b, "name", NULL);
        if ((int)kind > 0 && name)
            rc = kubelet_inject(a->kubelet, ns, name, kind);
        else if (name && (strcmp(k, "ServeProxyDown") == 0 || strcmp(k, "ServeProxyUp") == 0))
            rc = raysim_set_proxy_down(a->ray, ns, name, strcmp(k, "ServeProxyDown") == 0);
        // or "kind": "Exit", "container": C, "code": N, "afterSeconds": S (kubelet.h)
        else if (name && strcmp(k, "Exit") == 0 && json_is_integer(json_object_get(b, "code")) &&
                 json_is_number(json_object_get(b, "afterSeconds")))
            rc = kubelet_set_exit(a->kubelet, ns, name, jx_str(b, "container", ""),
                                  jx_int(b, "code", -1) < 0 || jx_int(b, "code", -1) > 255
                                      ? -1
                                      : (int)jx_int(b, "code", -1),
                                  json_number_value(json_object_get(b, "afterSeconds")));
    } else if (strcmp(what, "demand") == 0) {
        // {"namespace": "ns", "cluster": "name", "demand": {"group": replicas}}
        const char *cluster = jx_str(b, "cluster", NULL);
        json_t *demand = json_object_get(b, "demand");
        if (cluster && json_is_object(demand))
            rc = raysim_set_demand(a->ray, ns, cluster, demand);
    } else {
        // {"namespace": "ns", "pod": "head-pod", "gcsDown": true|false, "restart": true}
        const char *pod = jx_str(b, "pod", NULL);
        rayhead_t *h = pod ? raysim_head(a->ray, ns, pod) : NULL;
        if (h) {
            rc = 0;
            json_t *down = json_object_get(b, "gcsDown");
            if (json_is_boolean(down))
                rayhead_set_gcs_down(h, json_is_true(down));
            if (jx_bool(b, "restart", false))
                rayhead_restart(h, objstore_now_ms(a->store));
        } else if (pod) {
            rc = ERR_NOTFOUND;
        }
    }
    json_decref(b);
    if (rc == ERR_NOTFOUND) {
        s_fail(x, 404, "NotFound", "no such node, pod or Ray head");
        return false;
    }
    if (rc < 0) {
        s_fail(x, 400, "BadRequest", "invalid simulation request (see kubesim --help)");
        return false;
    }
    return true;
}

static void s_admin(reqctx_t *x, const char *what)
{
    apiserver_t *a = x->a;
    const char *m = x->req->method;
    if (strcmp(what, "stats") == 0) {
        json_t *objs = json_object();
        for (size_t i = 0; i < a->nres; i++)
            if (a->res[i]->storage) {
                char q[AS_NAME_LEN * 2];
                objstore_res_qualified(a->res[i]->res, q, sizeof(q));
                json_object_set_new(objs, q,
                                    json_integer((json_int_t)objstore_res_count(a->res[i]->res)));
            }
        char rv[32];
        snprintf(rv, sizeof(rv), "%" PRIu64, objstore_rv(a->store));
        json_t *fair =
            json_pack("{s:b,s:I,s:I,s:I,s:I}", "on", a->fair, "queued", (json_int_t)a->fair_queued,
                      "turns", (json_int_t)a->fair_turns, "flows", (json_int_t)a->fair_flows,
                      "flowsMax", (json_int_t)a->fair_flows_max);
        s_reply_json(x, 200,
                     json_pack("{s:I,s:I,s:s,s:o,s:i,s:I,s:I,s:i,s:o}", "watches",
                               (json_int_t)a->nwatchers, "connections",
                               (json_int_t)httpd_conn_count(a->http), "resourceVersion", rv,
                               "objects", objs, "faults", a->nfaults, "latencyMs",
                               (json_int_t)a->latency_ms, "jitterMs", (json_int_t)a->jitter_ms,
                               "throttleLeft", a->throttle_left, "fairness", fair),
                     NULL);
        return;
    }
    if (strcmp(what, "forbidden") == 0) {
        // GET: the 403s answered so far, by user, verb and resource; DELETE forgets them
        if (strcmp(m, "DELETE") == 0)
            rbac_reset(a->rbac);
        s_reply_json(x, 200, rbac_denied_json(a->rbac), NULL);
        return;
    }
    if (strcmp(what, "ray-submissions") == 0) {
        // GET [?submissionId=ID]: POST /api/jobs/ over every simulated head, live or gone
        if (!a->ray) {
            s_fail(x, 409, "Conflict", "this kubesim runs without simulated workloads");
            return;
        }
        char sid[AS_PARAM_MAX];
        bool one = s_param(x, "submissionId", sid, sizeof(sid));
        rayhead_submit_count_t c;
        raysim_submit_counts(a->ray, one ? sid : NULL, &c);
        s_reply_json(x, 200,
                     json_pack("{s:o,s:I,s:I,s:I,s:I}", "submissionId",
                               one ? json_string(sid) : json_null(), "attempts",
                               (json_int_t)c.attempts, "accepted", (json_int_t)c.accepted, "heads",
                               (json_int_t)raysim_head_count(a->ray), "submitters",
                               (json_int_t)kubelet_submitter_count(a->kubelet)),
                     NULL);
        return;
    }
    if (strcmp(what, "ray-requests") == 0) {
        // GET: requests answered by every simulated head, live or gone, by port
        if (!a->ray) {
            s_fail(x, 409, "Conflict", "this kubesim runs without simulated workloads");
            return;
        }
        rayhead_request_count_t c;
        raysim_request_counts(a->ray, &c);
        s_reply_json(x, 200,
                     json_pack("{s:I,s:I,s:I,s:I,s:I}", "dashboard", (json_int_t)c.dashboard,
                               "agent", (json_int_t)c.agent, "serveControl",
                               (json_int_t)c.serve_control, "serveTraffic",
                               (json_int_t)c.serve_traffic, "heads",
                               (json_int_t)raysim_head_count(a->ray)),
                     NULL);
        return;
    }
    if (strcmp(m, "POST") != 0 && !(strcmp(what, "faults") == 0 && strcmp(m, "DELETE") == 0)) {
        s_fail(x, 405, "MethodNotAllowed", "use POST");
        return;
    }
    json_int_t count = 0;
    if (strcmp(what, "drop-watches") == 0) {
        count = (json_int_t)apiserver_drop_watches(a);
    } else if (strcmp(what, "bookmark") == 0) {
        count = (json_int_t)apiserver_bookmark_now(a);
    } else if (strcmp(what, "compact") == 0) {
        apiserver_compact(a);
    } else if (strcmp(what, "faults") == 0 && strcmp(m, "DELETE") == 0) {
        apiserver_clear_faults(a);
    } else if (strcmp(what, "faults") == 0) {
        json_t *b = s_body(x, false);
        if (!b)
            return;
        size_t i;
        json_t *rule;
        json_array_foreach(json_object_get(b, "rules"), i, rule)
        {
            apiserver_fault_t f;
            memset(&f, 0, sizeof(f));
            s_copy(f.verb, sizeof(f.verb), jx_str(rule, "verb", "*"));
            s_copy(f.resource, sizeof(f.resource), jx_str(rule, "resource", "*"));
            json_t *rate = json_object_get(rule, "rate");
            f.rate = json_is_number(rate) ? json_number_value(rate) : 1.0;
            f.code = (int)jx_int(rule, "code", 500);
            const char *after = jx_str(rule, "after", NULL);
            if (after && (strcmp(after, "drop") == 0 || strcmp(after, "timeout") == 0)) {
                f.after = after[0] == 'd' ? APISERVER_FAULT_DROP : APISERVER_FAULT_TIMEOUT;
                f.code = 504;
            } else if (after) {
                f.code = 0; /* refused below */
            }
            if (apiserver_add_fault(a, &f) < 0) {
                json_decref(b);
                s_fail(x, 400, "BadRequest", "invalid fault rule");
                return;
            }
            count++;
        }
        if (json_object_get(b, "latencyMs") || json_object_get(b, "jitterMs"))
            apiserver_set_latency(a, jx_int(b, "latencyMs", 0), jx_int(b, "jitterMs", 0));
        if (json_object_get(b, "throttle"))
            apiserver_throttle(a, (int)jx_int(b, "throttle.count", 1),
                               (int)jx_int(b, "throttle.retryAfterSeconds", 1));
        json_decref(b);
    } else if (strcmp(what, "fairness") == 0) {
        json_t *b = s_body(x, false);
        if (!b)
            return;
        json_t *on = json_object_get(b, "on");
        bool ok = json_is_boolean(on);
        if (ok)
            apiserver_set_fairness(a, json_is_true(on));
        json_decref(b);
        if (!ok) {
            s_fail(x, 400, "BadRequest", "fairness: \"on\" must be true or false");
            return;
        }
    } else if (strcmp(what, "nodes") == 0 || strcmp(what, "pod-fault") == 0 ||
               strcmp(what, "demand") == 0 || strcmp(what, "ray-head") == 0) {
        if (!s_admin_sim(x, what))
            return;
    } else {
        s_not_found_path(x);
        return;
    }
    s_reply_json(x, 200, json_pack("{s:I}", "count", count), NULL);
}

static int s_proxy_target(reqctx_t *x, buf_t *target);

/* GET|POST|PUT|DELETE .../namespaces/{ns}/{services|pods}/{name}[:{port}]/proxy[/rest]: the API
 * server's proxy to a Service or Pod, which kubesim answers from the simulated Ray head behind
 * it (sim/raysim.h). The path after "/proxy" and the query go to the head unchanged. */
static void s_proxy(reqctx_t *x, bool pod, const char *name_port)
{
    apiserver_t *a = x->a;
    if (!a->ray) {
        s_fail(x, 503, "ServiceUnavailable", "this kubesim runs without simulated workloads");
        return;
    }
    char name[AS_NAME_LEN];
    s_copy(name, sizeof(name), name_port);
    char *colon = strchr(name, ':');
    const char *port = NULL;
    if (colon) {
        *colon = '\0';
        port = colon + 1;
    }
    buf_t target;
    buf_init(&target, AS_PATH_MAX + 4096);
    if (s_proxy_target(x, &target) < 0) {
        buf_free(&target);
        s_fail(x, 414, "RequestURITooLong", "proxy target too long");
        return;
    }
    rayhead_response_t resp;
    int rc =
        pod ? raysim_proxy_pod(a->ray, x->ns, name, port, x->req->method, buf_str(&target),
                               x->req->body, x->req->body_len, objstore_now_ms(a->store), &resp)
            : raysim_proxy(a->ray, x->ns, name, port, x->req->method, buf_str(&target),
                           x->req->body, x->req->body_len, objstore_now_ms(a->store), &resp);
    buf_free(&target);
    if (rc < 0)
        s_fail(x, 500, "InternalError", err_str(rc));
    else
        s_reply_text(x, resp.status, resp.content_type ? resp.content_type : "text/plain", NULL,
                     buf_str(&resp.body), resp.body.len);
    rayhead_response_free(&resp);
}

/* Appends the raw (still percent-encoded) path after the first "/proxy" segment and the query
 * to target ("/" when the path ends there). Returns 0 or the buffer's error. */
static int s_proxy_target(reqctx_t *x, buf_t *target)
{
    const char *raw = x->req->path;
    const char *at = strstr(raw, "/proxy");
    while (at && at[6] != '\0' && at[6] != '/')
        at = strstr(at + 6, "/proxy");
    const char *rest = at ? at + 6 : "";
    if (buf_puts(target, *rest ? rest : "/") < 0 ||
        (x->req->query[0] && buf_printf(target, "?%s", x->req->query) < 0))
        return ERR_TOOBIG;
    return 0;
}

/* GET|POST|PUT|DELETE /kubesim/gateways/{ns}/{gateway}/proxy[/rest]: a request sent to Gateway
 * ns/gateway, routed by its HTTPRoutes to a backend Service (gateway_proxy()). */
static void s_gateway_proxy(reqctx_t *x, const char *ns, const char *name)
{
    apiserver_t *a = x->a;
    if (!a->gw) {
        s_fail(x, 503, "ServiceUnavailable",
               "this kubesim runs without simulated workloads or without the Gateway API");
        return;
    }
    buf_t target;
    buf_init(&target, AS_PATH_MAX + 4096);
    if (s_proxy_target(x, &target) < 0) {
        buf_free(&target);
        s_fail(x, 414, "RequestURITooLong", "proxy target too long");
        return;
    }
    rayhead_response_t resp;
    int rc = gateway_proxy(a->gw, ns, name, x->req->method, buf_str(&target), x->req->body,
                           x->req->body_len, objstore_now_ms(a->store), &resp);
    buf_free(&target);
    if (rc < 0)
        s_fail(x, 500, "InternalError", err_str(rc));
    else
        s_reply_text(x, resp.status, resp.content_type ? resp.content_type : "text/plain", NULL,
                     buf_str(&resp.body), resp.body.len);
    rayhead_response_free(&resp);
}

/* ---- service-account tokens and RBAC ---------------------------------------------------- */

/* POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token: an authentication.k8s.io/v1
 * TokenRequest answered with a token bound to that ServiceAccount (sim/satoken.h). */
static void s_token_request(reqctx_t *x)
{
    apiserver_t *a = x->a;
    json_t *body = s_body(x, false);
    if (!body)
        return;
    objstore_status_t st;
    json_t *sa = NULL;
    if (objstore_get(a->store, x->r->res, x->ns, x->name, &sa, &st) < 0) {
        json_decref(body);
        s_reply_status(x, &st, NULL);
        return;
    }
    json_t *exp = jx_get(body, "spec.expirationSeconds");
    json_int_t secs = json_is_integer(exp) ? json_integer_value(exp) : SATOKEN_DEFAULT_SECONDS;
    if (secs < SATOKEN_MIN_SECONDS || secs > SATOKEN_MAX_SECONDS) {
        s_status_set(
            &st, 422, "Invalid",
            "TokenRequest.authentication.k8s.io \"%s\" is invalid: spec.expirationSeconds: "
            "Invalid value: %" JSON_INTEGER_FORMAT ": may not specify a duration %s",
            x->name, secs,
            secs < SATOKEN_MIN_SECONDS ? "less than 10 minutes" : "larger than 2^32 seconds");
        s_copy(st.name, sizeof(st.name), x->name);
        s_copy(st.group, sizeof(st.group), "authentication.k8s.io");
        s_copy(st.kind, sizeof(st.kind), "TokenRequest");
        st.cause_reason = "FieldValueInvalid";
        s_copy(st.cause_field, sizeof(st.cause_field), "spec.expirationSeconds");
        snprintf(st.cause_message, sizeof(st.cause_message),
                 "Invalid value: %" JSON_INTEGER_FORMAT ": may not specify a duration %s", secs,
                 secs < SATOKEN_MIN_SECONDS ? "less than 10 minutes" : "larger than 2^32 seconds");
        json_decref(body);
        json_decref(sa);
        s_reply_status(x, &st, NULL);
        return;
    }
    json_t *aud = jx_get(body, "spec.audiences");
    json_t *auds = json_array_size(aud) ? json_deep_copy(aud) : json_pack("[s]", SATOKEN_ISSUER);
    int64_t now_ms = objstore_now_ms(a->store);
    char *tok = satoken_mint(a->sat, x->ns, x->name, jx_str(sa, "metadata.uid", ""), auds,
                             now_ms / 1000, secs);
    json_decref(sa);
    json_decref(body);
    char ts[40];
    rftime_format((now_ms / 1000 + secs) * 1000, RFTIME_SEC, ts, sizeof(ts));
    if (!tok || !auds) {
        json_decref(auds);
        free(tok);
        s_fail(x, 500, "InternalError", "cannot mint a token");
        return;
    }
    json_t *resp = json_pack("{s:s,s:s,s:{s:s,s:s,s:n},s:{s:o,s:I,s:n},s:{s:s,s:s}}", "kind",
                             "TokenRequest", "apiVersion", "authentication.k8s.io/v1", "metadata",
                             "name", x->name, "namespace", x->ns, "creationTimestamp", "spec",
                             "audiences", auds, "expirationSeconds", (json_int_t)secs,
                             "boundObjectRef", "status", "token", tok, "expirationTimestamp", ts);
    size_t tl = strlen(tok);
    volatile char *v = tok;
    for (size_t i = 0; i < tl; i++)
        v[i] = 0;
    free(tok);
    s_reply_json(x, 201, resp, NULL);
}

/* The identity of a TLS request: the admin token or a verified client certificate are
 * system:masters; a service-account token (signature, time, audience, and its ServiceAccount
 * still there with the same uid) is that ServiceAccount. Returns false when unauthenticated. */
static bool s_authenticate(apiserver_t *a, httpd_conn_t *c, const httpd_req_t *req, rbac_user_t *u)
{
    memset(u, 0, sizeof(*u));
    if (httpd_conn_client_verified(c)) {
        s_copy(u->name, sizeof(u->name), "kubesim-admin");
        s_copy(u->groups[0], sizeof(u->groups[0]), "system:masters");
        s_copy(u->groups[1], sizeof(u->groups[1]), "system:authenticated");
        u->ngroups = 2;
        return true;
    }
    const char *auth = httpd_req_header(req, "authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    if (a->token[0]) {
        /* Constant-time comparison of equal-length strings. */
        size_t n = strlen(t), m = strlen(a->token);
        unsigned char diff = n != m;
        for (size_t i = 0; i < n && i < m; i++)
            diff |= (unsigned char)(t[i] ^ a->token[i]);
        if (diff == 0) {
            s_copy(u->name, sizeof(u->name), "kubesim-admin");
            s_copy(u->groups[0], sizeof(u->groups[0]), "system:masters");
            s_copy(u->groups[1], sizeof(u->groups[1]), "system:authenticated");
            u->ngroups = 2;
            return true;
        }
    }
    satoken_claims_t cl;
    if (satoken_verify(a->sat, t, objstore_now_ms(a->store) / 1000, &cl) != 0)
        return false;
    json_t *sa = NULL;
    objstore_status_t st;
    objstore_res_t *r = objstore_find(a->store, "", "serviceaccounts");
    if (!r || objstore_get(a->store, r, cl.ns, cl.name, &sa, &st) < 0) {
        log_warn("kubesim: service-account token refused: its ServiceAccount is gone", "namespace",
                 cl.ns, "serviceaccount", cl.name, NULL);
        return false;
    }
    bool same = strcmp(jx_str(sa, "metadata.uid", ""), cl.uid) == 0;
    json_decref(sa);
    if (!same) {
        log_warn("kubesim: service-account token refused: its ServiceAccount was recreated",
                 "namespace", cl.ns, "serviceaccount", cl.name, NULL);
        return false;
    }
    rbac_user_serviceaccount(u, cl.ns, cl.name);
    return true;
}

/* RBAC for a non-master identity: answers 403 with the API server's Status (counted, logged at
 * warn) and returns false when refused. */
static bool s_authorize(reqctx_t *x, const rbac_user_t *u, const char *path)
{
    apiserver_t *a = x->a;
    if (rbac_user_is_master(u))
        return true;
    rbac_attrs_t at;
    if (rbac_request_info(x->req->method, path, x->req->query, &at) < 0) {
        s_not_found_path(x);
        return false;
    }
    objstore_status_t st;
    memset(&st, 0, sizeof(st));
    if (rbac_authorize(a->store, u, &at, st.message, sizeof(st.message)))
        return true;
    rbac_count_denied(a->rbac, u, &at);
    log_warn("kubesim: forbidden", "user", u->name, "verb", at.verb, "resource",
             at.resource_request ? at.resource : at.path, "subresource", at.subresource, "group",
             at.group, "namespace", at.ns, NULL);
    st.code = 403;
    st.reason = "Forbidden";
    if (at.resource_request) {
        s_copy(st.kind, sizeof(st.kind), at.resource);
        s_copy(st.group, sizeof(st.group), at.group);
        s_copy(st.name, sizeof(st.name), at.name);
    }
    s_reply_status(x, &st, NULL);
    return false;
}

/* ---- routing ---------------------------------------------------------------------------- */

/* A request held before it is handled: delayed by injected latency (on the server's list) or
 * queued for its flow's turn. Its pointers stay valid: the connection reads nothing meanwhile. */
struct pending {
    apiserver_t *a; /* the server */
    httpd_conn_t *c; /* the waiting connection */
    httpd_req_t req; /* the request (its pointers stay valid: the connection is not read) */
    int64_t timer; /* the delay timer; 0 when queued */
    flow_t *flow; /* the flow it is queued in; NULL when delayed */
    pending_t *prev, *next; /* the server's delayed list, or its flow's queue */
};

/* A client with requests queued for their turn: kube's APF flow, one per identity. */
struct flow {
    char key[AS_FLOW_KEY_MAX]; /* "agent:<User-Agent>", "token:<hash>", "cert" or "anonymous" */
    unsigned bucket; /* its index in apiserver_t.flows */
    pending_t *head, *tail; /* its queued requests, oldest first */
    flow_t *hnext; /* next in its bucket */
    flow_t *rprev, *rnext; /* round-robin order */
};

static void s_handle(apiserver_t *a, httpd_conn_t *c, const httpd_req_t *req, bool delayed);

/* Takes flow f out of the round and its bucket, and frees it (its queue is empty). */
static void s_flow_free(apiserver_t *a, flow_t *f)
{
    flow_t **pp = &a->flows[f->bucket];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    if (f->rprev)
        f->rprev->rnext = f->rnext;
    else
        a->rr_head = f->rnext;
    if (f->rnext)
        f->rnext->rprev = f->rprev;
    else
        a->rr_tail = f->rprev;
    a->fair_flows--;
    free(f);
}

/* Unlinks p from the delayed list or its flow's queue (a flow left empty is freed). */
static void s_pending_unlink(pending_t *p)
{
    flow_t *f = p->flow;
    if (p->prev)
        p->prev->next = p->next;
    else if (f)
        f->head = p->next;
    else
        p->a->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else if (f)
        f->tail = p->prev;
    p->prev = p->next = NULL;
    p->flow = NULL;
    if (f && !f->head)
        s_flow_free(p->a, f);
}

static void s_pending_on_close(httpd_conn_t *c, void *arg)
{
    pending_t *p = arg;
    if (p->timer > 0)
        loop_cancel_timer(p->a->loop, p->timer);
    s_pending_unlink(p);
    free(p);
}

static int64_t s_pending_fire(loop_t *loop, int64_t id, void *arg)
{
    pending_t *p = arg;
    s_pending_unlink(p);
    httpd_conn_on_close(p->c, NULL, NULL);
    s_handle(p->a, p->c, &p->req, true);
    free(p);
    return LOOP_TIMER_DONE;
}

/* The flow of a request: who sends it, as kube's APF tells flows apart by user. Over TLS the
 * credential stands for the user (a verified client certificate is kubesim-admin; a bearer
 * token, one flow per token, is named by a hash so the key never holds it); over plain HTTP,
 * where kubectl sends no credentials, the User-Agent. */
static void s_flow_key(httpd_conn_t *c, const httpd_req_t *req, char *out, size_t n)
{
    if (httpd_conn_is_tls(c)) {
        const char *auth = httpd_req_header(req, "authorization");
        unsigned char h[HASH_SHA1_LEN];
        char hex[2 * HASH_SHA1_LEN + 1];
        if (httpd_conn_client_verified(c))
            snprintf(out, n, "cert");
        else if (auth && hash_sha1(auth, strlen(auth), h) == 0 &&
                 hash_hex(h, 8, hex, sizeof(hex)) >= 0)
            snprintf(out, n, "token:%s", hex);
        else
            snprintf(out, n, "anonymous");
        return;
    }
    const char *ua = httpd_req_header(req, "user-agent");
    snprintf(out, n, "agent:%s", ua ? ua : "");
}

/* Queues the request in its flow and asks for a turn; when out of memory it is served now. */
static void s_enqueue(apiserver_t *a, httpd_conn_t *c, const httpd_req_t *req)
{
    char key[AS_FLOW_KEY_MAX];
    s_flow_key(c, req, key, sizeof(key));
    unsigned char h[HASH_SHA1_LEN];
    hash_sha1(key, strlen(key), h);
    unsigned b = ((unsigned)h[0] << 8 | h[1]) % APISERVER_FLOW_BUCKETS;
    flow_t *f = a->flows[b];
    while (f && strcmp(f->key, key) != 0)
        f = f->hnext;
    pending_t *p = calloc(1, sizeof(*p));
    if (p && !f && (f = calloc(1, sizeof(*f))) != NULL) {
        s_copy(f->key, sizeof(f->key), key);
        f->bucket = b;
        f->hnext = a->flows[b];
        a->flows[b] = f;
        f->rprev = a->rr_tail;
        if (a->rr_tail)
            a->rr_tail->rnext = f;
        else
            a->rr_head = f;
        a->rr_tail = f;
        if (++a->fair_flows > a->fair_flows_max)
            a->fair_flows_max = a->fair_flows;
    }
    if (!p || !f) {
        free(p);
        s_handle(a, c, req, false);
        return;
    }
    p->a = a;
    p->c = c;
    p->req = *req;
    p->flow = f;
    p->prev = f->tail;
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
    httpd_conn_on_close(c, s_pending_on_close, p);
    a->fair_queued++;
    loop_soon(&a->dispatch);
}

/* One turn: up to APISERVER_FAIR_SEATS queued requests, the oldest of each flow in round-robin
 * order, each answer written at once; what is left waits for the next loop turn, after the
 * next poll, so a request arriving meanwhile from an idle client is among the first served. */
static void s_dispatch(void *arg)
{
    apiserver_t *a = arg;
    a->dispatch.running = true;
    a->fair_turns++;
    for (int seat = 0; seat < APISERVER_FAIR_SEATS && a->rr_head; seat++) {
        flow_t *f = a->rr_head;
        pending_t *p = f->head;
        if (f->rnext) { /* to the back of the round */
            a->rr_head = f->rnext;
            a->rr_head->rprev = NULL;
            f->rprev = a->rr_tail;
            f->rnext = NULL;
            a->rr_tail->rnext = f;
            a->rr_tail = f;
        }
        s_pending_unlink(p);
        httpd_conn_on_close(p->c, NULL, NULL);
        s_handle(a, p->c, &p->req, false);
        httpd_conn_flush(p->c);
        free(p);
    }
    a->dispatch.running = false;
    if (a->rr_head)
        loop_soon(&a->dispatch);
}

/* Delays the request by the injected latency. Returns true when it did. */
static bool s_delay(reqctx_t *x)
{
    apiserver_t *a = x->a;
    if (a->latency_ms <= 0 && a->jitter_ms <= 0)
        return false;
    int64_t d =
        a->latency_ms + (a->jitter_ms > 0 ? (int64_t)(s_rand(a) % (uint64_t)a->jitter_ms) : 0);
    pending_t *p = calloc(1, sizeof(*p));
    if (!p)
        return false;
    p->a = a;
    p->c = x->c;
    p->req = *x->req;
    p->timer = loop_add_timer(a->loop, d, s_pending_fire, p);
    if (p->timer <= 0) {
        free(p);
        return false;
    }
    p->next = a->pending;
    if (a->pending)
        a->pending->prev = p;
    a->pending = p;
    httpd_conn_on_close(x->c, s_pending_on_close, p);
    return true;
}

static void s_route(reqctx_t *x, char *path, bool delayed)
{
    apiserver_t *a = x->a;
    const char *method = x->req->method;
    /* Split into segments. */
    char *seg[AS_SEG_MAX + 4];
    int nseg = 0;
    char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        if (nseg == AS_SEG_MAX + 4) {
            s_not_found_path(x);
            return;
        }
        seg[nseg++] = p;
        while (*p && *p != '/')
            p++;
        if (*p)
            *p++ = '\0';
    }
    const char *group, *version;
    int i;
    if (nseg >= 2 && strcmp(seg[0], "api") == 0) {
        group = "";
        version = seg[1];
        i = 2;
    } else if (nseg >= 2 && strcmp(seg[0], "apis") == 0) {
        group = seg[1];
        if (nseg == 2) {
            json_t *doc = s_group_doc(a, group);
            if (!doc)
                s_not_found_path(x);
            else
                s_reply_json(x, 200, doc, NULL);
            return;
        }
        version = seg[2];
        i = 3;
    } else if (nseg == 2 && strcmp(seg[0], "kubesim") == 0) {
        s_admin(x, seg[1]);
        return;
    } else if (nseg >= 5 && strcmp(seg[0], "kubesim") == 0 && strcmp(seg[1], "gateways") == 0 &&
               strcmp(seg[4], "proxy") == 0) {
        s_gateway_proxy(x, seg[2], seg[3]);
        return;
    } else {
        s_not_found_path(x);
        return;
    }
    if (!s_gv_exists(a, group, version)) {
        s_not_found_path(x);
        return;
    }
    if (i == nseg) {
        s_reply_json(x, 200, s_resource_list(a, group, version), NULL);
        return;
    }
    bool watch = false;
    if (strcmp(seg[i], "watch") == 0) {
        watch = true;
        i++;
    }
    int rest = nseg - i;
    char **s = seg + i;
    apires_t *r = NULL;
    if (rest >= 3 && strcmp(s[0], "namespaces") == 0) {
        apires_t *cand = s_res_find(a, group, version, s[2]);
        if (cand && cand->namespaced) {
            x->ns = s[1];
            r = cand;
            s += 2;
            rest -= 2;
        }
    }
    if (!r && rest >= 1)
        r = s_res_find(a, group, version, s[0]);
    if (r && rest >= 3 && strcmp(s[2], "proxy") == 0 && x->ns && !*group &&
        (strcmp(s[0], "services") == 0 || strcmp(s[0], "pods") == 0)) {
        s_proxy(x, strcmp(s[0], "pods") == 0, s[1]);
        return;
    }
    if (!r || rest > 3) {
        s_not_found_path(x);
        return;
    }
    x->r = r;
    x->name = rest >= 2 ? s[1] : NULL;
    x->sub = rest == 3 ? s[2] : NULL;
    bool token_sub = x->sub && strcmp(x->sub, "token") == 0 && !r->is_custom && !*r->group &&
                     strcmp(r->resource, "serviceaccounts") == 0;
    if (x->sub && !((strcmp(x->sub, "status") == 0 && r->has_status) ||
                    (strcmp(x->sub, "scale") == 0 && s_is_apps(r)) ||
                    (strcmp(x->sub, "binding") == 0 && r->has_binding) || token_sub)) {
        s_not_found_path(x);
        return;
    }
    if (!watch && !x->name)
        watch = s_param_bool(x, "watch");
    /* The verb. */
    const char *verb = NULL;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!x->name) {
        if (get)
            verb = watch ? "watch" : "list";
        else if (strcmp(method, "POST") == 0 && (x->ns || !r->namespaced))
            verb = "create";
        else if (strcmp(method, "DELETE") == 0)
            verb = "deletecollection";
    } else if (x->sub && (strcmp(x->sub, "binding") == 0 || token_sub)) {
        if (strcmp(method, "POST") == 0)
            verb = "create";
    } else if (watch) {
        verb = NULL;
    } else if (get) {
        verb = "get";
    } else if (strcmp(method, "PUT") == 0) {
        verb = "update";
    } else if (strcmp(method, "PATCH") == 0) {
        verb = "patch";
    } else if (strcmp(method, "DELETE") == 0 && !x->sub) {
        verb = "delete";
    }
    if (!verb) {
        s_fail(x, 405, "MethodNotAllowed",
               "the server does not allow this method on the requested resource");
        return;
    }
    if (x->name && r->namespaced && !x->ns) {
        s_not_found_path(x);
        return;
    }
    s_copy(x->verb, sizeof(x->verb), verb);
    const char *accept = httpd_req_header(x->req, "accept");
    x->table = accept && strstr(accept, "as=Table") != NULL;
    char gv[AS_NAME_LEN + 70];
    s_gv(r, gv, sizeof(gv));
    int want = pbjson_negotiate(accept, !r->is_custom && !x->table && pbjson_kind(gv, r->kind));
    if (want == PBJSON_WANT_NONE) {
        s_fail(x, 406, "NotAcceptable",
               "only the following media types are accepted: application/json, application/yaml");
        return;
    }
    x->proto = want == PBJSON_WANT_PROTO;
    char dr[16];
    x->dry_run = s_param(x, "dryRun", dr, sizeof(dr)) && strcmp(dr, "All") == 0;
    if (!delayed && s_delay(x))
        return;
    if (s_inject(x))
        return;
    if (strcmp(verb, "watch") == 0)
        s_watch(x);
    else if (strcmp(verb, "list") == 0)
        s_list(x);
    else if (strcmp(verb, "get") == 0)
        s_get(x);
    else if (strcmp(verb, "create") == 0 && token_sub)
        s_token_request(x);
    else if (strcmp(verb, "create") == 0 && x->sub)
        s_binding(x);
    else if (strcmp(verb, "create") == 0)
        s_create(x);
    else if (strcmp(verb, "update") == 0)
        s_update(x);
    else if (strcmp(verb, "patch") == 0)
        s_patch(x);
    else if (strcmp(verb, "delete") == 0)
        s_delete(x);
    else
        s_deletecollection(x);
}

/* TLS requests need a bearer token or a verified client certificate, except /version and the
 * health checks (public in kube via system:public-info-viewer). */
static bool s_public_path(const char *path)
{
    return strcmp(path, "/version") == 0 || strcmp(path, "/healthz") == 0 ||
           strcmp(path, "/livez") == 0 || strcmp(path, "/readyz") == 0;
}

static void s_handle(apiserver_t *a, httpd_conn_t *c, const httpd_req_t *req, bool delayed)
{
    reqctx_t x;
    memset(&x, 0, sizeof(x));
    x.a = a;
    x.c = c;
    x.req = req;
    char path[AS_PATH_MAX];
    if (httpd_pct_decode(req->path, strlen(req->path), path, sizeof(path)) < 0) {
        s_fail(&x, 400, "BadRequest", "malformed request path");
        return;
    }
    /* Over TLS: who (401 when nobody), then RBAC; a request delayed by injected latency was
     * authorized before its delay and is only identified again (for escalation checks). */
    rbac_user_t u;
    if (httpd_conn_is_tls(c) && !s_public_path(path)) {
        if (!s_authenticate(a, c, req, &u)) {
            s_fail(&x, 401, "Unauthorized", "Unauthorized");
            return;
        }
        if (!delayed && !s_authorize(&x, &u, path))
            return;
        x.user = rbac_user_is_master(&u) ? NULL : &u;
    }
    if (!delayed && s_serve_nonresource(&x, path))
        return;
    s_route(&x, path, delayed);
}

static void s_on_request(httpd_conn_t *c, const httpd_req_t *req, void *arg)
{
    apiserver_t *a = arg;
    if (a->fair)
        s_enqueue(a, c, req);
    else
        s_handle(a, c, req, false);
}

/* ---- background ------------------------------------------------------------------------- */

static int64_t s_gc_tick(loop_t *loop, int64_t id, void *arg)
{
    apiserver_t *a = arg;
    for (int i = 0; i < 64 && objstore_tick(a->store) > 0; i++)
        ;
    return APISERVER_GC_TICK_MS;
}

static int64_t s_gc_now(loop_t *loop, int64_t id, void *arg)
{
    apiserver_t *a = arg;
    a->gc_soon_timer = 0;
    for (int i = 0; i < 64 && objstore_gc_run(a->store) > 0; i++)
        ;
    return LOOP_TIMER_DONE;
}

static void s_gc_soon(apiserver_t *a)
{
    /* A 0 ms timer: the GC runs after the current request, as the controller manager would. */
    if (a->gc_soon_timer > 0)
        return;
    int64_t id = loop_add_timer(a->loop, 0, s_gc_now, a);
    a->gc_soon_timer = id > 0 ? id : 0;
}

/* ---- bootstrap -------------------------------------------------------------------------- */

static int s_bootstrap(apiserver_t *a, int nodes)
{
    static const char *nss[] = {"default", "kube-system", "kube-public", "kube-node-lease"};
    objstore_res_t *nsr = objstore_find(a->store, "", "namespaces");
    objstore_res_t *nodr = objstore_find(a->store, "", "nodes");
    objstore_status_t st;
    for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
        json_t *o =
            json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:[s]}}", "apiVersion", "v1", "kind",
                      "Namespace", "metadata", "name", nss[i], "labels",
                      "kubernetes.io/metadata.name", nss[i], "spec", "finalizers", "kubernetes");
        json_t *out = NULL;
        if (objstore_create(a->store, nsr, NULL, &o, &out, &st) < 0)
            return ERR_NOMEM;
        json_t *s = json_copy(out);
        json_decref(out);
        if (!s)
            return ERR_NOMEM;
        json_object_set_new(s, "status", json_pack("{s:s}", "phase", "Active"));
        objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
        if (objstore_update(a->store, nsr, NULL, nss[i], &s, &uo, NULL, NULL, &st) < 0)
            return ERR_NOMEM;
    }
    char ts[32];
    s_now_rfc3339(a, ts, sizeof(ts));
    for (int i = 0; i < nodes; i++) {
        char name[64], ip[32];
        snprintf(name, sizeof(name), "kubesim-node-%d", i);
        snprintf(ip, sizeof(ip), "10.1.%d.%d", (i / 250) % 250, i % 250 + 1);
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s,s:s}},s:{}}", "apiVersion", "v1",
                              "kind", "Node", "metadata", "name", name, "labels",
                              "kubernetes.io/hostname", name, "kubernetes.io/os", "linux",
                              "kubernetes.io/arch", "amd64", "type", "kubesim", "spec");
        json_t *out = NULL;
        if (objstore_create(a->store, nodr, NULL, &o, &out, &st) < 0)
            return ERR_NOMEM;
        json_t *s = json_copy(out);
        json_decref(out);
        if (!s)
            return ERR_NOMEM;
        json_t *res = json_pack("{s:s,s:s,s:s}", "cpu", APISERVER_NODE_CPU, "memory",
                                APISERVER_NODE_MEMORY, "pods", APISERVER_NODE_PODS);
        json_t *status = json_pack(
            "{s:O,s:O,s:[{s:s,s:s,s:s,s:s,s:s,s:s}],s:[{s:s,s:s},{s:s,s:s}],s:{s:s,s:s,s:s,"
            "s:s,s:s},s:s}",
            "capacity", res, "allocatable", res, "conditions", "type", "Ready", "status", "True",
            "reason", "KubeletReady", "message", "kubelet is posting ready status",
            "lastHeartbeatTime", ts, "lastTransitionTime", ts, "addresses", "type", "InternalIP",
            "address", ip, "type", "Hostname", "address", name, "nodeInfo", "kubeletVersion",
            APISERVER_GIT_VERSION, "kubeProxyVersion", APISERVER_GIT_VERSION, "operatingSystem",
            "linux", "architecture", "amd64", "containerRuntimeVersion", "kubesim://1.0", "phase",
            "Running");
        json_decref(res);
        if (!status) {
            json_decref(s);
            return ERR_NOMEM;
        }
        json_object_set_new(s, "status", status);
        objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
        if (objstore_update(a->store, nodr, NULL, name, &s, &uo, NULL, NULL, &st) < 0)
            return ERR_NOMEM;
    }
    return 0;
}

/* The Gateway API add-on: its CRDs as a cluster add-on installs them (Established at once),
 * and with simulate the controller and data plane behind them. */
static int s_install_gateway_api(apiserver_t *a, bool simulate)
{
    json_t *crds = gateway_crds();
    if (!crds)
        return ERR_NOMEM;
    objstore_res_t *r =
        objstore_find(a->store, "apiextensions.k8s.io", "customresourcedefinitions");
    int rc = 0;
    size_t i;
    json_t *crd;
    json_array_foreach(crds, i, crd)
    {
        json_t *obj = json_incref(crd), *out = NULL, *upd = NULL;
        objstore_status_t st;
        rc = objstore_create(a->store, r, NULL, &obj, &out, &st);
        if (rc == 0)
            rc = s_crd_sync(a, out, &upd);
        json_decref(out);
        json_decref(upd);
        if (rc < 0)
            break;
    }
    json_decref(crds);
    if (rc == 0 && simulate) {
        a->gw = gateway_new(a->loop, a->store, a->ray);
        rc = a->gw ? 0 : ERR_NOMEM;
    }
    return rc;
}

/* ---- lifetime --------------------------------------------------------------------------- */

apiserver_t *apiserver_new(loop_t *loop, const apiserver_opts_t *opts)
{
    apiserver_opts_t o;
    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    apiserver_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->loop = loop;
    a->fair = !o.no_fairness;
    loop_soon_init(&a->dispatch, loop, s_dispatch, a);
    s_copy(a->minor, sizeof(a->minor), o.minor ? o.minor : "32");
    a->bookmark_ms = o.bookmark_ms > 0 ? o.bookmark_ms : APISERVER_BOOKMARK_MS;
    a->rng = o.seed ? o.seed : (uint64_t)loop_clock_ms() * 2654435761u + (uint64_t)getpid();
    if (!a->rng)
        a->rng = 88172645463325252ULL;
    a->store = objstore_new(o.history);
    a->sat = satoken_new();
    a->rbac = rbac_new();
    if (!a->sat || !a->rbac)
        goto fail;
    if (!a->store || s_register_builtins(a) < 0 || s_bootstrap(a, o.simulate ? 0 : o.nodes) < 0 ||
        storage_bootstrap(a->store) < 0 || !(a->quota = quota_new(loop, a->store)))
        goto fail;
    if (o.simulate) {
        kubelet_opts_t ko;
        if (o.kubelet)
            ko = *o.kubelet;
        else
            kubelet_opts_default(&ko);
        ko.nodes = o.nodes;
        if (!ko.seed)
            ko.seed = o.seed;
        a->kubelet = kubelet_new(loop, a->store, &ko);
        a->ctrl = a->kubelet ? controllers_new(loop, a->store) : NULL;
        a->ray = a->ctrl ? raysim_new(loop, a->store, NULL) : NULL;
        a->storage = a->ray ? storage_new(loop, a->store) : NULL;
        if (!a->storage)
            goto fail;
        kubelet_set_raysim(a->kubelet, a->ray);
    }
    if (!o.no_gateway_api && s_install_gateway_api(a, o.simulate) < 0)
        goto fail;
    a->http =
        httpd_new(loop, o.host ? o.host : "127.0.0.1", o.port, APISERVER_MAX_BODY, s_on_request, a);
    if (!a->http)
        goto fail;
    if (o.tls) {
        s_copy(a->token, sizeof(a->token), o.token);
        a->ca = tls_ca_new_sans(o.tls_sans);
        const char *tls_host = o.tls_host ? o.tls_host : o.host;
        a->https = a->ca ? httpd_new(loop, tls_host ? tls_host : "127.0.0.1", o.tls_port,
                                     APISERVER_MAX_BODY, s_on_request, a)
                         : NULL;
        if (!a->https)
            goto fail;
        httpd_set_tls(a->https, tls_ca_server_ctx(a->ca));
    }
    a->gc_timer = loop_add_timer(loop, APISERVER_GC_TICK_MS, s_gc_tick, a);
    return a;
fail:
    apiserver_destroy(&a);
    return NULL;
}

void apiserver_destroy(apiserver_t **ap)
{
    if (!ap || !*ap)
        return;
    apiserver_t *a = *ap;
    while (a->watchers)
        s_watcher_close(a->watchers, 2);
    while (a->pending || a->rr_head) {
        pending_t *p = a->pending ? a->pending : a->rr_head->head;
        httpd_conn_on_close(p->c, NULL, NULL);
        if (p->timer > 0)
            loop_cancel_timer(a->loop, p->timer);
        s_pending_unlink(p);
        free(p);
    }
    loop_soon_cancel(&a->dispatch);
    httpd_destroy(&a->http);
    httpd_destroy(&a->https);
    tls_ca_destroy(&a->ca);
    if (a->gc_timer > 0)
        loop_cancel_timer(a->loop, a->gc_timer);
    if (a->gc_soon_timer > 0)
        loop_cancel_timer(a->loop, a->gc_soon_timer);
    httpd_chunk_unref(&a->ev_chunk);
    gateway_destroy(&a->gw);
    kubelet_set_raysim(a->kubelet, NULL);
    raysim_destroy(&a->ray);
    controllers_destroy(&a->ctrl);
    storage_destroy(&a->storage);
    quota_destroy(&a->quota);
    kubelet_destroy(&a->kubelet);
    for (size_t i = 0; i < a->nres; i++)
        s_res_free(a->res[i]);
    free(a->res);
    objstore_destroy(&a->store);
    satoken_destroy(&a->sat);
    rbac_destroy(&a->rbac);
    free(a);
    *ap = NULL;
}

kubelet_t *apiserver_kubelet(apiserver_t *a)
{
    return a->kubelet;
}

raysim_t *apiserver_raysim(apiserver_t *a)
{
    return a->ray;
}

int apiserver_port(const apiserver_t *a)
{
    return httpd_port(a->http);
}

int apiserver_tls_port(const apiserver_t *a)
{
    return a->https ? httpd_port(a->https) : 0;
}

int apiserver_tls_pem(const apiserver_t *a, int which, buf_t *out)
{
    if (!a->ca)
        return ERR_STATE;
    return tls_ca_pem(a->ca, (tls_pem_t)which, out);
}

objstore_t *apiserver_store(apiserver_t *a)
{
    return a->store;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test -------------------------------------------------------------------------- */

/* The client half runs in a forked child with blocking libcurl calls while the parent drives
 * the loop; the child's exit status is its failure count. */

static size_t t_write(char *p, size_t size, size_t n, void *arg)
{
    buf_append(arg, p, size * n);
    return size * n;
}

/* Sends one request; returns the HTTP status (0 on transport failure). */
static long t_http(const char *method, const char *url, const char *ctype, const char *body,
                   size_t body_len, buf_t *out, buf_t *hdrs)
{
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    struct curl_slist *hl = NULL;
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        hl = curl_slist_append(hl, ct);
    }
    if (ctype && strstr(ctype, "Table"))
        hl = curl_slist_append(hl, "Accept: application/json;as=Table;v=v1;g=meta.k8s.io");
    hl = curl_slist_append(hl, "Expect:");
    buf_reset(out);
    if (hdrs)
        buf_reset(hdrs);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, t_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    if (hdrs) {
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, t_write);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    long code = 0;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    else
        printf("  %s %s: %s\n", method, url, curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return code;
}

#define T_GET(path) t_http("GET", t_url(base, path), NULL, NULL, 0, &b, &hd)
#define T_SEND(m, path, ct, body) t_http(m, t_url(base, path), ct, body, strlen(body), &b, &hd)
#define T_HAS(s) (strstr(buf_str(&b), (s)) != NULL)

static const char *t_url(const char *base, const char *path)
{
    static char url[1024];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return url;
}

static const char t_crd[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"widgets.example.com\"},\"spec\":{\"group\":\"example.com\","
    "\"scope\":\"Namespaced\",\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\","
    "\"kind\":\"Widget\",\"shortNames\":[\"wg\"],\"categories\":[\"all\"]},\"versions\":[{"
    "\"name\":\"v1\",\"served\":true,\"storage\":true,\"subresources\":{\"status\":{}},"
    "\"additionalPrinterColumns\":[{\"name\":\"Size\",\"type\":\"integer\",\"jsonPath\":"
    "\".spec.size\"},{\"name\":\"Age\",\"type\":\"date\",\"jsonPath\":"
    "\".metadata.creationTimestamp\"}],\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
    "\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{\"size\":{\"type\":"
    "\"integer\",\"default\":3},\"color\":{\"type\":\"string\"}}},\"status\":{\"type\":"
    "\"object\",\"x-kubernetes-preserve-unknown-fields\":true}}}}}]}}";

/* Runs a watch request with curl multi while `poke` (may be NULL) is sent after 300 ms.
 * Returns the watch body bytes in `out`. */
static void t_watch(const char *url, const char *poke_method, const char *poke_url,
                    const char *poke_body, buf_t *out)
{
    CURLM *m = curl_multi_init();
    CURL *w = curl_easy_init();
    buf_reset(out);
    curl_easy_setopt(w, CURLOPT_URL, url);
    curl_easy_setopt(w, CURLOPT_WRITEFUNCTION, t_write);
    curl_easy_setopt(w, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(w, CURLOPT_TIMEOUT, 10L);
    curl_multi_add_handle(m, w);
    int running = 1;
    int64_t start = loop_clock_ms();
    bool poked = poke_url == NULL;
    while (running) {
        curl_multi_perform(m, &running);
        if (!running)
            break;
        curl_multi_poll(m, NULL, 0, 50, NULL);
        if (!poked && loop_clock_ms() - start > 300) {
            poked = true;
            buf_t pb;
            buf_init(&pb, 1 << 20);
            t_http(poke_method, poke_url, "application/json", poke_body,
                   poke_body ? strlen(poke_body) : 0, &pb, NULL);
            buf_free(&pb);
        }
    }
    curl_multi_remove_handle(m, w);
    curl_easy_cleanup(w);
    curl_multi_cleanup(m);
}

/* What the TLS checks need (set by the parent before fork). */
static struct {
    int port; /* TLS port */
    const char *ca; /* CA PEM */
    const char *cert; /* client certificate PEM */
    const char *key; /* client key PEM */
} t_tls;

/* GET over TLS with an optional token and optional client certificate; returns the status. */
static long t_https(const char *path, const char *token, bool client_cert, buf_t *out)
{
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    char url[256], auth[300];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", t_tls.port, path);
    struct curl_slist *hl = NULL;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, auth);
    }
    struct curl_blob cab = {(void *)t_tls.ca, strlen(t_tls.ca), CURL_BLOB_COPY};
    struct curl_blob certb = {(void *)t_tls.cert, strlen(t_tls.cert), CURL_BLOB_COPY};
    struct curl_blob keyb = {(void *)t_tls.key, strlen(t_tls.key), CURL_BLOB_COPY};
    buf_reset(out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &cab);
    if (client_cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &certb);
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &keyb);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, t_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return code;
}

static int t_client(const char *base)
{
    int failed = 0;
    buf_t b, hd, wb;
    buf_init(&b, 8 << 20);
    buf_init(&hd, 1 << 16);
    buf_init(&wb, 8 << 20);
    char path[512];

    /* Discovery. */
    CHECK(T_GET("/version") == 200 && T_HAS("\"minor\":\"32\""));
    CHECK(T_GET("/api") == 200 && T_HAS("\"APIVersions\""));
    CHECK(T_GET("/apis") == 200 && T_HAS("\"apiextensions.k8s.io\"") && T_HAS("\"batch\""));
    CHECK(T_GET("/apis/batch") == 200 && T_HAS("\"preferredVersion\""));
    CHECK(T_GET("/api/v1") == 200 && T_HAS("\"pods/status\"") && T_HAS("\"pods/binding\"") &&
          T_HAS("\"shortNames\":[\"po\"]"));
    CHECK(T_GET("/apis/nope.io/v1") == 404 && T_HAS("\"reason\":\"NotFound\""));
    CHECK(T_GET("/apis/nope.io") == 404);
    CHECK(T_GET("/openapi/v2") == 200 && b.len == 0 &&
          strstr(buf_str(&hd), "application/octet-stream"));
    CHECK(T_GET("/healthz") == 200 && strcmp(buf_str(&b), "ok") == 0);
    CHECK(T_GET("/readyz") == 200);
    CHECK(T_GET("/nope") == 404);
    CHECK(T_GET("/api/v1/nodes") == 200 && T_HAS("kubesim-node-1") && T_HAS("\"NodeList\""));
    CHECK(T_GET("/api/v1/namespaces/kube-node-lease") == 200 && T_HAS("\"Active\""));

    /* CRUD on configmaps. */
    const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                     "\"c1\",\"labels\":{\"app\":\"x\"}},\"data\":{\"k\":\"v\"}}";
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps", "application/json", cm) == 201);
    CHECK(T_HAS("\"resourceVersion\"") && T_HAS("\"uid\""));
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps", "application/json", cm) == 409 &&
          T_HAS("AlreadyExists"));
    CHECK(T_SEND("POST", "/api/v1/namespaces/nope/configmaps", "application/json", cm) == 404);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps", "application/json", "{x") == 400);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 200 && T_HAS("\"k\":\"v\""));
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/zz") == 404 &&
          T_HAS("configmaps \\\"zz\\\" not found"));
    /* Ambiguous creates: applied, then the answer lost (kube's 504, or the connection closed);
     * a create that fails is answered as usual. */
    CHECK(T_SEND("POST", "/kubesim/faults", "application/json",
                 "{\"rules\":[{\"verb\":\"create\",\"resource\":\"configmaps\",\"after\":"
                 "\"timeout\"}]}") == 200);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps", "application/json",
                 "{\"metadata\":{\"name\":\"amb1\"}}") == 504 &&
          T_HAS("\"message\":\"Timeout: request did not complete within requested timeout - "
                "context deadline exceeded\",\"reason\":\"Timeout\""));
    CHECK(T_SEND("DELETE", "/kubesim/faults", "application/json", "") == 200);
    CHECK(T_SEND("POST", "/kubesim/faults", "application/json",
                 "{\"rules\":[{\"verb\":\"create\",\"resource\":\"configmaps\",\"after\":"
                 "\"drop\"}]}") == 200);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps", "application/json",
                 "{\"metadata\":{\"name\":\"amb2\"}}") == 0);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps", "application/json",
                 "{\"metadata\":{\"name\":\"amb1\"}}") == 409);
    CHECK(T_SEND("POST", "/kubesim/faults", "application/json",
                 "{\"rules\":[{\"verb\":\"create\",\"after\":\"later\"}]}") == 400);
    CHECK(T_SEND("DELETE", "/kubesim/faults", "application/json", "") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/amb1") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/amb2") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps?labelSelector=app%3Dx") == 200 &&
          T_HAS("\"c1\""));
    CHECK(T_GET("/api/v1/configmaps?labelSelector=app%21%3Dx") == 200 && !T_HAS("\"c1\""));
    CHECK(T_GET("/api/v1/configmaps?labelSelector=a%20b") == 400);
    CHECK(T_GET("/api/v1/configmaps?fieldSelector=spec.x%3D1") == 400 &&
          T_HAS("field label not supported"));
    CHECK(T_GET("/api/v1/configmaps?fieldSelector=metadata.name%3Dc1") == 200 && T_HAS("\"c1\""));
    CHECK(T_GET("/api/v1/configmaps?resourceVersionMatch=NotOlderThan") == 422 &&
          T_HAS("resourceVersionMatch is forbidden unless resourceVersion is provided"));
    CHECK(T_GET("/api/v1/configmaps?resourceVersion=0&resourceVersionMatch=Exact") == 422);
    CHECK(T_GET("/api/v1/configmaps?sendInitialEvents=true") == 422);
    CHECK(T_GET("/api/v1/configmaps?resourceVersion=999999") == 504);
    CHECK(T_GET("/api/v1/namespaces/kube-system/configmaps?limit=1") == 200 &&
          T_HAS("\"items\":[]"));
    CHECK(T_GET("/api/v1/namespaces?limit=2") == 200 && T_HAS("\"continue\""));
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/configmaps/c1",
                 "application/strategic-merge-patch+json", "{\"data\":{\"k2\":\"v2\"}}") == 200 &&
          T_HAS("\"k2\":\"v2\""));
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/configmaps/c1", "text/plain", "{}") == 415);
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/configmaps/c1",
                 "application/apply-patch+yaml", "data:\n  k3: v3\n") == 422 &&
          T_HAS("fieldManager"));
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/configmaps/c1?fieldManager=t",
                 "application/apply-patch+yaml", "data:\n  k3: v3\n") == 200 &&
          T_HAS("\"k3\":\"v3\""));
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/configmaps/new1?fieldManager=t",
                 "application/apply-patch+yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new1\n") == 201);
    CHECK(T_SEND("PUT", "/api/v1/namespaces/default/configmaps/c1", "application/json",
                 "{\"metadata\":{\"name\":\"other\"}}") == 400);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/configmaps?dryRun=All", "application/json",
                 "{\"metadata\":{\"name\":\"dry\"}}") == 201);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/dry") == 404);
    CHECK(T_SEND("POST", "/api/v1/configmaps", "application/json", cm) == 405);

    /* Watch: initial ADDED, replay, 410, live events, bookmarks, Table. */
    CHECK(T_GET("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1") == 200 &&
          T_HAS("{\"type\":\"ADDED\",\"object\":{") && T_HAS("\"c1\""));
    CHECK(T_GET("/api/v1/watch/namespaces/default/configmaps?resourceVersion=1&timeoutSeconds=1") ==
              200 &&
          T_HAS("\"MODIFIED\""));
    CHECK(T_SEND("POST", "/kubesim/compact", "application/json", "{}") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2") == 200 &&
          T_HAS("\"type\":\"ERROR\"") && T_HAS("\"code\":410") && T_HAS("Expired"));
    CHECK(T_GET("/api/v1/configmaps?watch=true&resourceVersion=abc") == 422);
    snprintf(path, sizeof(path), "%s/api/v1/namespaces/default/configmaps", base);
    char wurl[600];
    snprintf(wurl, sizeof(wurl),
             "%s?watch=1&timeoutSeconds=2&resourceVersion=0&labelSelector=app%%3Dy", path);
    t_watch(wurl, "POST", path,
            "{\"metadata\":{\"name\":\"c2\",\"labels\":{\"app\":\"y\"}},\"data\":{}}", &wb);
    CHECK(strstr(buf_str(&wb), "\"ADDED\"") && strstr(buf_str(&wb), "\"c2\"") &&
          !strstr(buf_str(&wb), "\"c1\""));
    snprintf(wurl, sizeof(wurl), "%s?watch=1&timeoutSeconds=2&allowWatchBookmarks=true", path);
    char burl[600];
    snprintf(burl, sizeof(burl), "%s/kubesim/bookmark", base);
    t_watch(wurl, "POST", burl, "{}", &wb);
    CHECK(strstr(buf_str(&wb), "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\""));
    char durl[600];
    snprintf(durl, sizeof(durl), "%s/kubesim/drop-watches", base);
    snprintf(wurl, sizeof(wurl), "%s?watch=1&resourceVersion=0", path);
    t_watch(wurl, "POST", durl, "{}", &wb);
    CHECK(strstr(buf_str(&wb), "\"ADDED\"") != NULL);

    /* Pods: binding, Table. */
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/pods", "application/json",
                 "{\"metadata\":{\"name\":\"p1\"},\"spec\":{\"containers\":[{\"name\":\"c\","
                 "\"image\":\"i\"}]}}") == 201);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/pods/p1/binding", "application/json",
                 "{\"target\":{\"name\":\"kubesim-node-0\"}}") == 201);
    CHECK(T_GET("/api/v1/namespaces/default/pods/p1") == 200 &&
          T_HAS("\"nodeName\":\"kubesim-node-0\""));
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/pods/p1/binding", "application/json",
                 "{\"target\":{\"name\":\"kubesim-node-1\"}}") == 409);
    CHECK(t_http("GET", t_url(base, "/api/v1/namespaces/default/pods"), "Table", NULL, 0, &b,
                 &hd) == 200 &&
          T_HAS("\"kind\":\"Table\"") && T_HAS("\"Restarts\"") && T_HAS("\"0/1\""));
    CHECK(T_GET("/api/v1/namespaces/default/pods/p1/nope") == 404);
    /* Object metadata validation (metaval.h): kube's 422 with one cause per error. */
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/pods", "application/json",
                 "{\"metadata\":{\"name\":\"p2\",\"labels\":{\"bad key!\":\"v\"}},\"spec\":"
                 "{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}") == 422 &&
          T_HAS("\"message\":\"Pod \\\"p2\\\" is invalid: metadata.labels: Invalid value: "
                "\\\"bad key!\\\": name part must consist of alphanumeric characters, '-', '_' "
                "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  "
                "or 'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')\"") &&
          T_HAS("\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":\"Invalid value: "
                "\\\"bad key!\\\": name part must consist") &&
          T_HAS("\"field\":\"metadata.labels\"}]"));
    CHECK(T_GET("/api/v1/namespaces/default/pods/p2") == 404);
    CHECK(T_SEND("POST", "/api/v1/namespaces/default/services", "application/json",
                 "{\"metadata\":{\"name\":\"9svc\"},\"spec\":{\"ports\":[{\"port\":80}]}}") ==
              422 &&
          T_HAS("Service \\\"9svc\\\" is invalid: metadata.name: Invalid value: \\\"9svc\\\": "
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character"));
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/pods/p1", "application/merge-patch+json",
                 "{\"metadata\":{\"labels\":{\"ok\":\"-bad\"}}}") == 422 &&
          T_HAS("Pod \\\"p1\\\" is invalid: metadata.labels: Invalid value: \\\"-bad\\\": a "
                "valid label must be an empty string"));
    CHECK(T_SEND("PATCH", "/api/v1/namespaces/default/pods/p1", "application/merge-patch+json",
                 "{\"metadata\":{\"labels\":{\"ok\":\"good\"}}}") == 200);

    /* CRDs. */
    CHECK(T_SEND("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                 "application/json", t_crd) == 201 &&
          T_HAS("\"Established\"") && T_HAS("\"storedVersions\":[\"v1\"]"));
    CHECK(T_GET("/apis/example.com/v1") == 200 && T_HAS("\"widgets/status\"") && T_HAS("\"wg\""));
    CHECK(T_GET("/apis") == 200 && T_HAS("example.com/v1"));
    CHECK(T_SEND("POST", "/apis/example.com/v1/namespaces/default/widgets", "application/json",
                 "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":"
                 "\"w1\"},\"spec\":{\"color\":\"red\",\"junk\":1},\"status\":{\"x\":1}}") == 201);
    CHECK(T_HAS("\"size\":3") && !T_HAS("junk") && !T_HAS("\"status\""));
    CHECK(T_SEND("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1",
                 "application/merge-patch+json",
                 "{\"metadata\":{\"finalizers\":[\"a/b/c\"]}}") == 422 &&
          T_HAS("Widget.example.com \\\"w1\\\" is invalid: metadata.finalizers: Invalid value: "
                "\\\"a/b/c\\\": a qualified name must consist"));
    CHECK(T_SEND("POST", "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
                 "application/json",
                 "{\"metadata\":{\"name\":\"w2\"},\"spec\":{\"junk\":1}}") == 400 &&
          T_HAS("unknown field"));
    CHECK(T_SEND("POST", "/apis/example.com/v1/namespaces/default/widgets", "application/json",
                 "{\"metadata\":{\"name\":\"w3\"},\"spec\":{\"size\":\"big\"}}") == 422 &&
          T_HAS("\"reason\":\"Invalid\"") && T_HAS("spec.size"));
    CHECK(t_http("GET", t_url(base, "/apis/example.com/v1/namespaces/default/widgets"), "Table",
                 NULL, 0, &b, &hd) == 200 &&
          T_HAS("\"name\":\"Size\"") && T_HAS("[\"w1\",3,"));
    CHECK(T_SEND("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1",
                 "application/strategic-merge-patch+json", "{}") == 415 &&
          T_HAS("accepted media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml"));
    CHECK(T_SEND("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1",
                 "application/merge-patch+json", "{\"spec\":{\"size\":5}}") == 200 &&
          T_HAS("\"generation\":2"));
    CHECK(T_SEND("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1",
                 "application/json-patch+json",
                 "[{\"op\":\"test\",\"path\":\"/spec/size\",\"value\":9}]") == 422);
    CHECK(T_SEND("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1/status",
                 "application/merge-patch+json", "{\"status\":{\"ok\":true}}") == 200 &&
          T_HAS("\"ok\":true") && T_HAS("\"generation\":2"));
    CHECK(T_SEND("PUT", "/apis/example.com/v1/namespaces/default/widgets/w1", "application/json",
                 "{\"metadata\":{\"name\":\"w1\"},\"spec\":{}}") == 422);
    CHECK(T_SEND("DELETE", "/apis/example.com/v1/namespaces/default/widgets/w1", NULL, "") == 200 &&
          T_HAS("\"status\":\"Success\""));
    CHECK(T_SEND("DELETE",
                 "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                 "widgets.example.com",
                 NULL, "") == 200);
    CHECK(T_GET("/apis/example.com/v1") == 404);
    CHECK(T_SEND("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                 "application/json",
                 "{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"group\":\"g.io\",\"scope\":"
                 "\"Namespaced\",\"names\":{\"plural\":\"xs\",\"kind\":\"X\"},\"versions\":[{"
                 "\"name\":\"v1\",\"served\":true,\"storage\":true}]}}") == 422);

    /* Faults, throttling, latency, bounds. */
    CHECK(T_SEND("POST", "/kubesim/faults", "application/json",
                 "{\"rules\":[{\"verb\":\"get\",\"resource\":\"configmaps\",\"rate\":1,"
                 "\"code\":503}]}") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 503 &&
          strstr(buf_str(&hd), "Retry-After: 1"));
    CHECK(T_GET("/api/v1/namespaces/default/pods/p1") == 200);
    CHECK(T_SEND("DELETE", "/kubesim/faults", NULL, "") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 200);
    CHECK(T_SEND("POST", "/kubesim/faults", "application/json",
                 "{\"throttle\":{\"count\":1,\"retryAfterSeconds\":2}}") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 429 &&
          strstr(buf_str(&hd), "Retry-After: 2") && T_HAS("TooManyRequests"));
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 200);
    CHECK(T_SEND("POST", "/kubesim/faults", "application/json", "{\"latencyMs\":300}") == 200);
    int64_t t0 = loop_clock_ms();
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 200);
    CHECK(loop_clock_ms() - t0 >= 290);
    CHECK(T_SEND("DELETE", "/kubesim/faults", NULL, "") == 200);
    CHECK(T_GET("/kubesim/stats") == 200 && T_HAS("\"watches\""));
    /* no simulated workloads in this API server: the Ray counters are not there */
    CHECK(T_GET("/kubesim/ray-requests") == 409 && T_HAS("without simulated workloads"));
    CHECK(T_SEND("POST", "/kubesim/nope", "application/json", "{}") == 404);
    size_t big = APISERVER_MAX_BODY + 16;
    char *huge = malloc(big + 1);
    if (huge) {
        memset(huge, ' ', big);
        huge[big] = '\0';
        CHECK(t_http("POST", t_url(base, "/api/v1/namespaces/default/configmaps"),
                     "application/json", huge, big, &b, &hd) == 413);
        free(huge);
    }

    /* TLS: token, client certificate, 401 without either; /version is public. */
    CHECK(t_https("/version", NULL, false, &b) == 200 && T_HAS("\"minor\""));
    CHECK(t_https("/api/v1/namespaces", NULL, false, &b) == 401 && T_HAS("Unauthorized"));
    CHECK(t_https("/api/v1/namespaces", "wrong", false, &b) == 401);
    CHECK(t_https("/api/v1/namespaces", "s3cret", false, &b) == 200 && T_HAS("kube-system"));
    CHECK(t_https("/api/v1/namespaces", NULL, true, &b) == 200 && T_HAS("kube-system"));
    size_t bigl = 300000;
    char *bigq = malloc(bigl);
    if (bigq) {
        /* A response larger than one TLS record and socket buffer. */
        memset(bigq, 'a', bigl - 1);
        bigq[bigl - 1] = '\0';
        buf_t body;
        buf_init(&body, bigl + 200);
        buf_printf(&body, "{\"metadata\":{\"name\":\"big\"},\"data\":{\"k\":\"%s\"}}", bigq);
        CHECK(t_http("POST", t_url(base, "/api/v1/namespaces/default/configmaps"),
                     "application/json", body.data, body.len, &b, &hd) == 201);
        CHECK(t_https("/api/v1/namespaces/default/configmaps/big", "s3cret", false, &b) == 200 &&
              b.len > bigl);
        buf_free(&body);
        free(bigq);
    }

    /* Delete and deletecollection. */
    CHECK(T_SEND("DELETE", "/api/v1/namespaces/default/configmaps/c1", "application/json",
                 "{\"propagationPolicy\":\"Background\"}") == 200);
    CHECK(T_GET("/api/v1/namespaces/default/configmaps/c1") == 404);
    CHECK(T_SEND("DELETE", "/api/v1/namespaces/default/configmaps/c2?propagationPolicy=Bad", NULL,
                 "") == 422);
    CHECK(T_SEND("DELETE", "/api/v1/namespaces/default/configmaps", NULL, "") == 200 &&
          T_HAS("\"c2\""));
    CHECK(T_GET("/api/v1/namespaces/default/configmaps") == 200 && T_HAS("\"items\":[]"));
    buf_free(&b);
    buf_free(&hd);
    buf_free(&wb);
    return failed;
}

/* The bytes waiting on fd (non-blocking), appended to b. */
static void t_drain(int fd, buf_t *b)
{
    char tmp[8192];
    ssize_t r;
    while ((r = recv(fd, tmp, sizeof(tmp), 0)) > 0)
        buf_append(b, tmp, (size_t)r);
}

/* Fairness between clients: 16 connections of a busy client and one of an idle client, each
 * with one request sent before the server's turn. Fair: the first turn serves
 * APISERVER_FAIR_SEATS requests round-robin, the idle client's second (after the busy client's
 * first), the rest in later turns; a server destroyed with requests queued frees them. Off: all
 * 17 in arrival order in the one turn. Returns the failures. */
static int t_fairness(bool fair)
{
    enum { BUSY = 16 };
    int failed = 0;
    loop_t *loop = loop_new();
    apiserver_t *a = apiserver_new(loop, &(apiserver_opts_t){.seed = 7, .no_fairness = !fair});
    CHECK(a != NULL);
    if (!a) {
        loop_destroy(&loop);
        return failed;
    }
    int fds[BUSY + 1];
    for (int i = 0; i <= BUSY; i++)
        fds[i] = httpd_test_connect(apiserver_port(a));
    for (int i = 0; i < 100 && httpd_conn_count(a->http) < BUSY + 1; i++)
        loop_run_once(loop, 5);
    CHECK(httpd_conn_count(a->http) == BUSY + 1);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i <= BUSY; i++) {
            char req[200];
            int n = snprintf(req, sizeof(req),
                             "GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: k\r\n"
                             "User-Agent: %s\r\n\r\n",
                             i < BUSY ? "busy-controller/1.0" : "kubectl/v1.32.4");
            CHECK(send(fds[i], req, (size_t)n, MSG_NOSIGNAL) == n);
        }
        loop_run_once(loop, 100); /* reads all 17, then one turn */
        int answered = 0;
        bool idle = false;
        for (int i = 0; i <= BUSY; i++) {
            buf_t got;
            buf_init(&got, 1 << 20);
            t_drain(fds[i], &got);
            bool ok = strncmp(buf_str(&got), "HTTP/1.1 200 OK\r\n", 17) == 0;
            answered += ok;
            idle |= ok && i == BUSY;
            buf_free(&got);
        }
        CHECK(idle);
        CHECK(answered == (fair ? APISERVER_FAIR_SEATS : BUSY + 1));
        if (round == 1 || !fair)
            break; /* destroyed with requests queued */
        for (int i = 0; i < 100 && (a->rr_head || a->dispatch.timer); i++)
            loop_run_once(loop, 5);
        CHECK(a->rr_head == NULL && a->fair_flows == 0 && a->fair_flows_max == 2);
        CHECK(a->fair_queued == BUSY + 1 && a->fair_turns >= 3);
        for (int i = 0; i < BUSY; i++) {
            buf_t got;
            buf_init(&got, 1 << 20);
            t_drain(fds[i], &got);
            answered += strncmp(buf_str(&got), "HTTP/1.1 200 OK\r\n", 17) == 0;
            buf_free(&got);
        }
        CHECK(answered == BUSY + 1);
    }
    apiserver_destroy(&a);
    for (int i = 0; i <= BUSY; i++)
        close(fds[i]);
    loop_destroy(&loop);
    return failed;
}

int apiserver_test(bool verbose)
{
    int failed = 0;
    signal(SIGPIPE, SIG_IGN);
    char sv[32];
    s_human_age(5, sv, sizeof(sv));
    CHECK(strcmp(sv, "5s") == 0);
    s_human_age(200, sv, sizeof(sv));
    CHECK(strcmp(sv, "3m20s") == 0);
    s_human_age(3 * 3600 + 120, sv, sizeof(sv));
    CHECK(strcmp(sv, "3h2m") == 0);
    s_human_age(3 * 86400, sv, sizeof(sv));
    CHECK(strcmp(sv, "3d") == 0);
    CHECK(s_version_cmp("v1", "v1beta1") < 0 && s_version_cmp("v1beta2", "v1beta1") < 0 &&
          s_version_cmp("v2", "v1") < 0 && s_version_cmp("v1alpha1", "foo") < 0);
    int64_t t;
    CHECK(s_parse_time("1970-01-02T00:00:00Z", &t) && t == 86400);
    CHECK(!s_parse_time("nope", &t));
    json_t *o = json_pack("{s:{s:[{s:i}]}}", "spec", "a", "b", 7);
    CHECK(json_integer_value(s_jsonpath(o, ".spec.a[0].b")) == 7);
    CHECK(json_integer_value(s_jsonpath(o, "{.spec.a[-1].b}")) == 7);
    CHECK(s_jsonpath(o, ".spec.x[0]") == NULL);
    json_decref(o);

    loop_t *loop = loop_new();
    apiserver_opts_t opts = {.nodes = 2, .seed = 42, .tls = true, .token = "s3cret"};
    apiserver_t *a = apiserver_new(loop, &opts);
    CHECK(a != NULL);
    if (!a) {
        loop_destroy(&loop);
        return SELFTEST_RESULT("apiserver", verbose);
    }
    CHECK(apiserver_store(a) != NULL);
    CHECK(apiserver_add_fault_spec(a, "get:pods:0.5:503") == 0);
    CHECK(apiserver_add_fault_spec(a, "get:pods") == ERR_INVAL);
    CHECK(apiserver_add_fault_spec(a, "get:pods:2") == ERR_INVAL);
    CHECK(apiserver_add_fault_spec(a, "get:pods:0.1:99") == ERR_INVAL);
    CHECK(apiserver_add_fault_spec(a, "create:pods:0.3:drop") == 0 &&
          apiserver_add_fault_spec(a, "create:pods:0.3:timeout") == 0);
    CHECK(apiserver_add_fault_spec(a, "create:pods:0.3:dropx") == ERR_INVAL);
    apiserver_clear_faults(a);
    apiserver_opts_t same = {.port = apiserver_port(a)};
    apiserver_t *dup = apiserver_new(loop, &same);
    CHECK(dup == NULL);
    /* scheduling.k8s.io/v1alpha2 (Workload, PodGroup) from 1.36 on only */
    CHECK(!s_res_find(a, "scheduling.k8s.io", "v1alpha2", "workloads") &&
          !s_res_find(a, "scheduling.k8s.io", "v1alpha2", "podgroups"));
    apiserver_opts_t m36 = {.minor = "36"};
    apiserver_t *a36 = apiserver_new(loop, &m36);
    CHECK(a36 && s_res_find(a36, "scheduling.k8s.io", "v1alpha2", "workloads") &&
          s_res_find(a36, "scheduling.k8s.io", "v1alpha2", "podgroups") &&
          s_res_find(a36, "scheduling.k8s.io", "v1alpha2", "podgroups")->namespaced &&
          s_res_find(a36, "scheduling.k8s.io", "v1alpha2", "podgroups")->has_status);
    apiserver_destroy(&a36);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", apiserver_port(a));
    CHECK(apiserver_tls_port(a) > 0);
    buf_t ca, cc, ck;
    buf_init(&ca, 1 << 16);
    buf_init(&cc, 1 << 16);
    buf_init(&ck, 1 << 16);
    CHECK(apiserver_tls_pem(a, TLS_PEM_CA, &ca) == 0);
    CHECK(apiserver_tls_pem(a, TLS_PEM_CLIENT_CERT, &cc) == 0);
    CHECK(apiserver_tls_pem(a, TLS_PEM_CLIENT_KEY, &ck) == 0);
    t_tls.port = apiserver_tls_port(a);
    t_tls.ca = buf_str(&ca);
    t_tls.cert = buf_str(&cc);
    t_tls.key = buf_str(&ck);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int f = t_client(base);
        fflush(stdout);
        _exit(f > 100 ? 100 : f);
    }
    CHECK(pid > 0);
    int status = 0;
    int64_t deadline = loop_clock_ms() + 60000;
    while (pid > 0 && loop_clock_ms() < deadline) {
        loop_run_once(loop, 20);
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = 0;
            break;
        }
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(!"client timed out");
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFEXITED(status))
        failed += WEXITSTATUS(status);
    buf_free(&ca);
    buf_free(&cc);
    buf_free(&ck);
    CHECK(apiserver_watch_count(a) == 0);
    CHECK(apiserver_drop_watches(a) == 0);
    CHECK(apiserver_bookmark_now(a) == 0);
    apiserver_compact(a);
    apiserver_destroy(&a);
    CHECK(a == NULL);
    apiserver_destroy(&a);
    loop_destroy(&loop);
    failed += t_fairness(true);
    failed += t_fairness(false);
    return SELFTEST_RESULT("apiserver", verbose);
}

#endif /* RF_SELFTEST */
