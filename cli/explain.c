/*
 * explain: see explain.h.
 *
 * Every audit row read is turned into a jansson object with the column names of
 * `rayfleetctl audit --output json` (id, time, time_ms, actor_service, ...), so that the text and
 * the JSON outputs are made from the same values.
 */
#include "explain.h"

#include "args.h"
#include "audit.h"
#include "buf.h"
#include "err.h"
#include "fleetdb.h"
#include "json.h"
#include "labels.h"
#include "launch.h"
#include "names.h"
#include "rcstatus.h"
#include "rftime.h"
#include "rjstate.h"
#include "rayservice.h"
#include "rsstate.h"
#include "conds.h"
#include "sql.h"
#include "store.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S_KIND_MAX 64 /* longest KIND word accepted */
#define S_GROUP_MAX 256 /* longest worker group name kept */
#define S_WORKER_INFIX "-worker-" /* worker pod names: <cluster>-<group>-worker-<suffix> */
#define S_HTTP_NOT_FOUND 404 /* a delete that found the object gone */
#define S_GROUP_LABEL "\"" LABEL_GROUP "\":\"" /* the group label inside a cut summary's text */

/* A kind the command line may name: its words (singular, lower case) and its API group. */
typedef struct {
    const char *word; /* "pod" */
    const char *alias; /* a short name ("po"), or NULL */
    const char *kind; /* "Pod" */
    const char *group; /* API group, "" for core */
} s_kind_t;

static const s_kind_t s_kinds[] = {
    {"pod", "po", "Pod", ""},
    {"service", "svc", "Service", ""},
    {"event", "ev", "Event", ""},
    {"raycluster", "rc", "RayCluster", "ray.io"},
    {"rayjob", NULL, "RayJob", "ray.io"},
    {"rayservice", NULL, "RayService", "ray.io"},
    {"configmap", "cm", "ConfigMap", ""},
    {"secret", NULL, "Secret", ""},
    {"serviceaccount", "sa", "ServiceAccount", ""},
    {"role", NULL, "Role", "rbac.authorization.k8s.io"},
    {"rolebinding", NULL, "RoleBinding", "rbac.authorization.k8s.io"},
    {"ingress", "ing", "Ingress", "networking.k8s.io"},
    {"route", NULL, "Route", "route.openshift.io"},
    {"persistentvolumeclaim", "pvc", "PersistentVolumeClaim", ""},
    {"job", NULL, "Job", "batch"},
    {"endpointslice", NULL, "EndpointSlice", "discovery.k8s.io"},
};
#define S_NKINDS (sizeof(s_kinds) / sizeof(s_kinds[0]))

/* The audit columns, in the order of a store_audit_prepare() statement, then id. */
static const char *const s_cols[STORE_AUDIT_NCOLS] = {
    STORE_AUDIT_COLUMN_LIST(STORE_AUDIT_NAME_) "id"};

/* One explain run: the connection and what the command line asked. */
typedef struct {
    fleetdb_t *fdb; /* the scheduler files as one (fleetdb.h), observed.db as `observed`; or NULL */
    store_query_t *q; /* read-only connection: fleetdb_query(fdb), or observed.db alone */
    bool observed; /* observed.db is attached */
    json_t *clusters; /* member clusters to look in (array of strings) */
    const s_kind_t *kind; /* the object's kind */
    const char *ns; /* its namespace */
    const char *name; /* its name */
    bool json; /* --output json */
} s_ex_t;

static const char *s_s(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static json_int_t s_i(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* RFC 3339 UTC with milliseconds ("-" when out of range). */
static void s_rfc3339(int64_t ms, char *out, size_t size)
{
    if (rftime_format(ms, RFTIME_MILLI, out, size) != 0)
        snprintf(out, size, "-");
}

/* The current row of an audit statement (columns as s_cols) as a new JSON object, or NULL. */
static json_t *s_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char when[40];
    s_rfc3339(sqlite3_column_int64(st, 0), when, sizeof(when));
    json_object_set_new(o, "time", json_string(when));
    for (int i = 0; i < STORE_AUDIT_NCOLS; i++) {
        json_t *v = NULL;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            v = json_integer(sqlite3_column_int64(st, i));
            break;
        case SQLITE_TEXT:
            v = json_stringn((const char *)sqlite3_column_text(st, i),
                             (size_t)sqlite3_column_bytes(st, i));
            break;
        default:
            v = json_null();
        }
        if (!v || json_object_set_new(o, s_cols[i], v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Steps `st` (finalized here) appending each row to `out`, at most `max`. Returns 0 or 1 (error
 * printed). */
static int s_collect(s_ex_t *x, sqlite3_stmt *st, json_t *out, size_t max)
{
    int rc;
    int code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_size(out) >= max)
            break;
        json_t *r = s_row(st);
        if (!r || json_array_append_new(out, r) != 0) {
            fprintf(stderr, "rayfleetctl explain: out of memory\n");
            code = 1;
            break;
        }
    }
    if (!code && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fprintf(stderr, "rayfleetctl explain: reading the audit table: %s\n",
                store_query_timed_out(x->q) ? "the query timed out"
                                            : sqlite3_errmsg(store_query_handle(x->q)));
        code = 1;
    }
    sqlite3_finalize(st);
    return code;
}

/* Runs the audit filter `f` into `out`. Returns 0 or 1 (error printed). */
static int s_filter(s_ex_t *x, const store_audit_filter_t *f, json_t *out, size_t max)
{
    sqlite3_stmt *st = NULL;
    int rc = x->fdb ? fleetdb_audit_prepare(x->fdb, f, -1, NULL, &st, NULL)
                    : store_audit_prepare(store_query_handle(x->q), f, &st, NULL);
    if (rc) {
        fprintf(stderr, "rayfleetctl explain: cannot query the audit table: %s\n",
                rc == ERR_DB ? sqlite3_errmsg(store_query_handle(x->q)) : err_str(rc));
        return 1;
    }
    return s_collect(x, st, out, max);
}

/* Prepares `sql` on the read-only connection. Returns the statement or NULL (error printed). */
static sqlite3_stmt *s_prepare(s_ex_t *x, const char *sql)
{
    sqlite3_stmt *st = NULL;
    buf_t why;
    buf_init(&why, STORE_QUERY_WHY_MAX);
    int rc = x->fdb ? fleetdb_prepare(x->fdb, sql, -1, &st, &why)
                    : store_query_prepare(x->q, sql, &st, &why);
    if (rc != 0) {
        fprintf(stderr, "rayfleetctl explain: %s\n", buf_str(&why));
        st = NULL;
    }
    buf_free(&why);
    return st;
}

/* The observed row of (cluster, kind, ns, name) as a new JSON object (the columns, and the
 * parsed object under "object"), or NULL when not observed (or observed.db is absent). */
static json_t *s_observed(s_ex_t *x, const char *cluster, const char *kind, const char *ns,
                          const char *name)
{
    if (!x->observed)
        return NULL;
    sqlite3_stmt *st =
        s_prepare(x, "SELECT cluster, api_group, kind, namespace, name, uid, resource_version, "
                     "generation, owner_kind, owner_name, phase, conditions, deleting, updated_ms, "
                     "json FROM observed.observed_objects WHERE cluster = ?1 AND kind = ?2 AND "
                     "namespace = ?3 AND name = ?4");
    if (!st)
        return NULL;
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
    json_t *o = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && (o = json_object())) {
        static const char *const names[] = {
            "cluster", "api_group",       "kind",       "namespace",  "name",
            "uid",     "resourceVersion", "generation", "owner_kind", "owner_name",
            "phase",   "conditions",      "deleting",   "updated_ms"};
        for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
            if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
                json_object_set_new(o, names[i], json_integer(sqlite3_column_int64(st, i)));
            else if (sqlite3_column_type(st, i) == SQLITE_TEXT)
                json_object_set_new(o, names[i],
                                    json_string((const char *)sqlite3_column_text(st, i)));
        }
        json_object_set_new(o, "deleting", json_boolean(sqlite3_column_int64(st, 12) != 0));
        const char *js = (const char *)sqlite3_column_text(st, 14);
        size_t len = (size_t)sqlite3_column_bytes(st, 14);
        if (js && len <= EXPLAIN_OBJECT_MAX) {
            json_t *obj = NULL;
            buf_t err;
            buf_init(&err, 256);
            if (jx_parse(js, len, "observed", &obj, &err) == 0)
                json_object_set_new(o, "object", obj);
            buf_free(&err);
        }
    }
    sqlite3_finalize(st);
    return o;
}

/* Looks for the object in every candidate cluster; returns the first observed row or NULL. */
static json_t *s_observed_any(s_ex_t *x, const char *kind, const char *ns, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(x->clusters, i, c)
    {
        json_t *o = s_observed(x, json_string_value(c), kind, ns, name);
        if (o)
            return o;
    }
    return NULL;
}

/* Splits a cause key "cluster/namespace/name" into its parts (borrowed copies in the buffers).
 * Returns 0, or -1 when it has another shape. */
static int s_split_key(const char *key, char *cluster, char *ns, char *name, size_t size)
{
    const char *a = key ? strchr(key, '/') : NULL;
    const char *b = key ? strrchr(key, '/') : NULL;
    if (!a || a == b || (size_t)(a - key) >= size || (size_t)(b - a - 1) >= size ||
        strlen(b + 1) >= size)
        return -1;
    snprintf(cluster, size, "%.*s", (int)(a - key), key);
    snprintf(ns, size, "%.*s", (int)(b - a - 1), a + 1);
    snprintf(name, size, "%s", b + 1);
    return 0;
}

/* The Ray object a cause key names: its observed row (with "kind"), or, when it is no longer
 * observed, an object with only "kind" (from the audit rows that target it, else "Ray object"),
 * "cluster", "namespace" and "name". NULL on a malformed key. The caller owns the result. */
static json_t *s_cause_owner(s_ex_t *x, const char *key)
{
    char c[S_GROUP_MAX], ns[S_GROUP_MAX], nm[S_GROUP_MAX];
    if (s_split_key(key, c, ns, nm, sizeof(c)) != 0)
        return NULL;
    static const char *const ray_kinds[] = {"RayCluster", "RayJob", "RayService"};
    for (size_t i = 0; i < sizeof(ray_kinds) / sizeof(ray_kinds[0]); i++) {
        json_t *o = s_observed(x, c, ray_kinds[i], ns, nm);
        if (o)
            return o;
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "cluster", c, "namespace", ns, "name", nm);
    if (!o)
        return NULL;
    const char *kind = "Ray object";
    for (size_t i = 0; i < sizeof(ray_kinds) / sizeof(ray_kinds[0]); i++) {
        json_t *rows = json_array();
        store_audit_filter_t f = {.cluster = c,
                                  .kind = ray_kinds[i],
                                  .ns = ns,
                                  .name = nm,
                                  .limit = 1,
                                  .order = STORE_AUDIT_NEWEST};
        bool hit = rows && s_filter(x, &f, rows, 1) == 0 && json_array_size(rows) > 0;
        json_decref(rows);
        if (hit) {
            kind = ray_kinds[i];
            break;
        }
    }
    json_object_set_new(o, "kind", json_string(kind));
    return o;
}

/* The worker group of a pod row: from its request summary (the labels, also in a cut summary's
 * text), else from the name "<cluster>-<group>-worker-<suffix>" matched against the groups of the
 * RayCluster `rc` (may be NULL). Writes "" when unknown. */
static void s_pod_group(const json_t *row, const json_t *rc, char *out, size_t size)
{
    out[0] = '\0';
    const char *sum = s_s(row, "request_summary");
    json_t *doc = NULL;
    buf_t err;
    buf_init(&err, 256);
    if (sum[0] && jx_parse(sum, strlen(sum), "summary", &doc, &err) == 0) {
        json_t *labels = jx_getv(doc, "metadata", "labels", NULL);
        const char *g = json_string_value(json_object_get(labels, LABEL_GROUP));
        if (g)
            snprintf(out, size, "%s", g);
        const char *head = jx_str(doc, "head", NULL);
        const char *p = head ? strstr(head, S_GROUP_LABEL) : NULL;
        if (!g && p) {
            p += strlen(S_GROUP_LABEL);
            const char *e = strchr(p, '"');
            if (e && (size_t)(e - p) < size)
                snprintf(out, size, "%.*s", (int)(e - p), p);
        }
    }
    json_decref(doc);
    buf_free(&err);
    if (out[0] || !rc)
        return;
    const char *name = s_s(row, "target_name");
    const char *rcname = jx_str(rc, "metadata.name", "");
    size_t n = strlen(rcname);
    size_t i;
    json_t *wg;
    size_t best = 0;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, wg)
    {
        const char *g = jx_str(wg, "groupName", "");
        size_t gl = strlen(g);
        if (strncmp(name, rcname, n) == 0 && name[n] == '-' && strncmp(name + n + 1, g, gl) == 0 &&
            strncmp(name + n + 1 + gl, S_WORKER_INFIX, strlen(S_WORKER_INFIX)) == 0 && gl > best &&
            gl < size) {
            snprintf(out, size, "%s", g);
            best = gl;
        }
    }
}

/* The worker group spec named `group` in RayCluster `rc`, borrowed, or NULL. */
static const json_t *s_group_spec(const json_t *rc, const char *group)
{
    return jx_array_find(jx_get(rc, "spec.workerGroupSpecs"), "groupName", group);
}

/* The worker pods a group spec asks for, counted by the KubeRay model as the scheduler counts
 * them (rcstatus_group_wanted: clamped replicas times numOfHosts, 0 when the cluster or group is
 * suspended). Sets *replicas (clamped) and *hosts. */
static int64_t s_group_want(const json_t *rc, const json_t *wg, int64_t *replicas, int64_t *hosts)
{
    *replicas = rcstatus_group_replicas(wg);
    *hosts = jx_int(wg, "numOfHosts", 1);
    return rcstatus_group_wanted(rc, wg);
}

/* Whether spec.workerGroupSpecs[].scaleStrategy.workersToDelete of `rc` names `pod`; the group
 * that names it is written to `group`. */
static bool s_named_to_delete(const json_t *rc, const char *pod, char *group, size_t size)
{
    size_t i, k;
    json_t *wg, *w;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, wg)
    {
        json_array_foreach(jx_get(wg, "scaleStrategy.workersToDelete"), k, w)
        {
            if (json_is_string(w) && strcmp(json_string_value(w), pod) == 0) {
                snprintf(group, size, "%s", jx_str(wg, "groupName", ""));
                return true;
            }
        }
    }
    return false;
}

/* The verb of a row in the past tense. */
static const char *s_past(const char *verb)
{
    static const char *const map[][2] = {
        {"create", "created"},
        {"delete", "deleted"},
        {"patch", "patched"},
        {"update", "updated"},
        {"status", "had its status updated"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], verb) == 0)
            return map[i][1];
    return NULL;
}

/* Whether a row's verb is a call that is not a Kubernetes write (a job submission or stop, a
 * Serve config push, a recorded deletion deadline): its message says what was done. */
static bool s_verb_has_message(const char *verb)
{
    static const char *const verbs[] = {"submit", "stop", "serve-push", "schedule-delete"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (!strcmp(verb, verbs[i]))
            return true;
    return false;
}

/* Whether a row's result is a success: no error and an HTTP status below 400, or, for a record
 * without an HTTP call (a deletion deadline: status 0), no error. */
static bool s_ok(const json_t *row)
{
    json_int_t st = s_i(row, "result_status");
    if (json_is_string(json_object_get(row, "result_error")))
        return false;
    return (st > 0 && st < 400) || (st == 0 && s_verb_has_message(s_s(row, "verb")));
}

/* Whether a row is an intent whose result was never recorded (ctrl/actlog.h: the write was
 * committed as about to be sent, and the controller stopped before its answer). */
static bool s_pending(const json_t *row)
{
    return s_i(row, "result_status") == 0 &&
           !strcmp(s_s(row, "result_error"), STORE_AUDIT_PENDING) &&
           !s_verb_has_message(s_s(row, "verb"));
}

/* Whether a row is a create whose outcome rayfleet does not know: pending, or sent and never
 * answered (the connection dropped) or answered 504 (the server's timeout, the write may have
 * gone through). Its object, when it exists, is rayfleet's. */
static bool s_create_unknown(const json_t *row)
{
    json_int_t st = s_i(row, "result_status");
    return !strcmp(s_s(row, "verb"), "create") && (s_pending(row) || st == 0 || st == 504);
}

/* Appends "RayCluster default/demo generation 1 (resourceVersion 25, bus event 17953...)" for
 * the cause of `row` with owner `owner` (may be NULL). */
static void s_cause_text(buf_t *b, const json_t *row, const json_t *owner)
{
    const char *kind = owner ? s_s(owner, "kind") : "the object";
    const char *ns = owner ? s_s(owner, "namespace") : "";
    const char *nm = owner ? s_s(owner, "name") : s_s(row, "cause_key");
    buf_printf(b, "%s %s%s%s", kind, ns, ns[0] ? "/" : "", nm);
    if (json_is_integer(json_object_get(row, "cause_generation")))
        buf_printf(b, " generation %" JSON_INTEGER_FORMAT, s_i(row, "cause_generation"));
    buf_puts(b, " (");
    const char *sep = "";
    if (s_s(row, "cause_resource_version")[0]) {
        buf_printf(b, "resourceVersion %s", s_s(row, "cause_resource_version"));
        sep = ", ";
    }
    if (json_is_integer(json_object_get(row, "cause_event_id")))
        buf_printf(b, "%sbus event %" JSON_INTEGER_FORMAT, sep, s_i(row, "cause_event_id"));
    else
        buf_printf(b, "%sno bus event: a resync or requeue", sep);
    buf_puts(b, ")");
}

/* Counts the worker pods of `group` created by the rows of `siblings` (the whole reconcile,
 * the row itself included). */
static int64_t s_created_in_group(const json_t *siblings, const json_t *rc, const char *group)
{
    int64_t n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(siblings, i, r)
    {
        if (strcmp(s_s(r, "target_kind"), "Pod") || strcmp(s_s(r, "verb"), "create") ||
            (!s_ok(r) && !s_pending(r)) || strcmp(s_s(r, "reason"), "CreatedWorkerPod"))
            continue;
        char g[S_GROUP_MAX];
        s_pod_group(r, rc, g, sizeof(g));
        if (strcmp(g, group) == 0)
            n++;
    }
    return n;
}

/* Appends the wanted count of a worker pod's group, when the spec acted on is known: " wanted 2
 * workers in group workers (replicas 2 x numOfHosts 1) and ..." */
static void s_want_text(buf_t *b, const json_t *row, const json_t *owner, const json_t *siblings,
                        const char *group)
{
    const json_t *rc = json_object_get(owner, "object");
    bool same_gen = rc && json_is_integer(json_object_get(row, "cause_generation")) &&
                    s_i(owner, "generation") == s_i(row, "cause_generation");
    const json_t *wg = group[0] ? s_group_spec(rc, group) : NULL;
    if (!wg)
        return;
    int64_t replicas = 0, hosts = 0;
    int64_t want = s_group_want(rc, wg, &replicas, &hosts);
    if (!same_gen) {
        buf_printf(b,
                   " (its spec at that generation is not kept; at generation %" JSON_INTEGER_FORMAT
                   " it wants %" PRId64 " workers in group %s)",
                   s_i(owner, "generation"), want, group);
        return;
    }
    buf_printf(b,
               " wanted %" PRId64 " workers in group %s (replicas %" PRId64 " x numOfHosts %" PRId64
               ")",
               want, group, replicas, hosts);
    if (!strcmp(s_s(row, "verb"), "create")) {
        int64_t made = s_created_in_group(siblings, rc, group);
        int64_t existed = want - made;
        buf_printf(b, " and %" PRId64 " existed, so this reconcile created %" PRId64,
                   existed < 0 ? 0 : existed, made);
    }
}

/* Appends the other actions of the reconcile: "same reconcile also created Service x
 * (CreatedService), ...; recorded N Events". */
static void s_siblings_text(buf_t *b, const json_t *row, const json_t *siblings)
{
    int64_t id = s_i(row, "id");
    size_t i;
    json_t *r;
    int events = 0, listed = 0;
    json_array_foreach(siblings, i, r)
    {
        if (s_i(r, "id") == id)
            continue;
        if (!strcmp(s_s(r, "target_kind"), "Event") && !strcmp(s_s(r, "verb"), "create")) {
            events++;
            continue;
        }
        const char *past = s_past(s_s(r, "verb"));
        buf_printf(b, "%s%s %s %s/%s",
                   listed ? ", " : "\n    same reconcile also: ", past ? past : s_s(r, "verb"),
                   s_s(r, "target_kind"), s_s(r, "target_namespace"), s_s(r, "target_name"));
        if (s_s(r, "reason")[0])
            buf_printf(b, " (%s)", s_s(r, "reason"));
        if (s_pending(r))
            buf_puts(b, " [result not recorded]");
        else if (!s_ok(r))
            buf_printf(b, " [FAILED: %" JSON_INTEGER_FORMAT " %s]", s_i(r, "result_status"),
                       s_s(r, "result_error"));
        listed++;
    }
    if (events)
        buf_printf(b, "%srecorded %d Event%s on the owner",
                   listed ? "; " : "\n    same reconcile also: ", events, events == 1 ? "" : "s");
    if (!listed && !events)
        buf_puts(b, "\n    same reconcile: no other action");
}

/* Appends why a delete happened, inferred from the owner's current spec. */
static void s_delete_why(buf_t *b, const json_t *row, const json_t *owner, const json_t *siblings)
{
    const json_t *rc = json_object_get(owner, "object");
    const char *reason = s_s(row, "reason");
    char group[S_GROUP_MAX];
    if (rc && s_named_to_delete(rc, s_s(row, "target_name"), group, sizeof(group))) {
        buf_printf(b, "\n    why: scaleStrategy.workersToDelete of group %s names it", group);
        return;
    }
    if (!strcmp(reason, "DeletedWorkerPod")) {
        s_pod_group(row, rc, group, sizeof(group));
        const json_t *wg = group[0] ? s_group_spec(rc, group) : NULL;
        bool same_gen = wg && s_i(owner, "generation") == s_i(row, "cause_generation");
        if (same_gen) {
            int64_t r = 0, h = 0;
            int64_t want = s_group_want(rc, wg, &r, &h);
            buf_printf(b,
                       "\n    why: scale down or replacement: generation %" JSON_INTEGER_FORMAT
                       " wants %" PRId64 " workers in group %s; the audit row does not say "
                       "whether the pod was surplus, unhealthy or part of an incomplete "
                       "multi-host replica",
                       s_i(row, "cause_generation"), want, group);
        } else {
            buf_puts(b, "\n    why: the reconcile chose it (surplus after a scale down, unhealthy, "
                        "or part of an incomplete multi-host replica); the audit row does not "
                        "say which and the spec of that generation is not kept");
        }
        return;
    }
    if (!strcmp(reason, "DeletedHeadPod"))
        buf_puts(b, "\n    why: the reconcile found the head pod unhealthy, terminated or "
                    "outdated (KubeRay deletes such a head pod to recreate it)");
    (void)siblings;
}

/* Reads the rows of one reconcile into a new array (NULL on error, printed). */
static json_t *s_reconcile_rows(s_ex_t *x, const char *corr)
{
    json_t *rows = json_array();
    if (!rows)
        return NULL;
    if (!corr || !corr[0])
        return rows;
    store_audit_filter_t f = {
        .correlation_id = corr, .limit = EXPLAIN_MAX_SIBLINGS, .order = STORE_AUDIT_OLDEST};
    if (s_filter(x, &f, rows, EXPLAIN_MAX_SIBLINGS) != 0) {
        json_decref(rows);
        return NULL;
    }
    return rows;
}

/* Explains one row of the object: text into `b`, details into `row` (cause object, siblings).
 * Returns 0 or 1 (error printed). */
static int s_explain_row(s_ex_t *x, json_t *row, buf_t *b)
{
    char when[40];
    s_rfc3339(s_i(row, "time_ms"), when, sizeof(when));
    const char *verb = s_s(row, "verb");
    const char *past = s_past(verb);
    buf_printf(b, "%s %s/%s ", x->kind->word, s_s(row, "target_namespace"),
               s_s(row, "target_name"));
    /* A delete answered 404 found the object gone already (someone else, or an earlier delete
     * of rayfleet, removed it): not a failure. */
    bool gone = !strcmp(verb, "delete") && s_i(row, "result_status") == S_HTTP_NOT_FOUND;
    if (gone)
        buf_puts(b, "was to be deleted again (it was gone already)");
    else if (past)
        buf_printf(b, "was %s", past);
    else
        buf_printf(b, "had '%s' done to it", verb);
    buf_printf(b, " at %s by %s", when,
               s_s(row, "actor_replica")[0] ? s_s(row, "actor_replica")
                                            : s_s(row, "actor_service"));
    if (s_s(row, "reason")[0])
        buf_printf(b, " (%s)", s_s(row, "reason"));
    buf_printf(b, ": %s", s_s(row, "message"));
    if (s_ok(row) || gone)
        buf_printf(b, " [HTTP %" JSON_INTEGER_FORMAT "]", s_i(row, "result_status"));
    else if (s_pending(row))
        buf_puts(b, " [sent; result not recorded: the controller stopped]");
    else
        buf_printf(b, " [FAILED: HTTP %" JSON_INTEGER_FORMAT "%s%s]", s_i(row, "result_status"),
                   s_s(row, "result_error")[0] ? ", " : "", s_s(row, "result_error"));
    json_t *owner = s_s(row, "cause_key")[0] ? s_cause_owner(x, s_s(row, "cause_key")) : NULL;
    json_t *siblings = s_reconcile_rows(x, s_s(row, "correlation_id"));
    if (!siblings) {
        json_decref(owner);
        return 1;
    }
    if (s_s(row, "cause_key")[0]) {
        buf_puts(b, "\n    because ");
        s_cause_text(b, row, owner);
        char group[S_GROUP_MAX] = "";
        if (!strcmp(x->kind->kind, "Pod") && !strcmp(s_s(row, "reason"), "CreatedWorkerPod")) {
            s_pod_group(row, json_object_get(owner, "object"), group, sizeof(group));
            s_want_text(b, row, owner, siblings, group);
        } else if (!strcmp(s_s(row, "reason"), "CreatedHeadPod")) {
            buf_puts(b, " wanted 1 head pod and none was running");
        } else if (!strcmp(verb, "create")) {
            buf_printf(b, " wanted this %s and it did not exist", x->kind->kind);
        } else if (!strcmp(verb, "delete")) {
            buf_puts(b, " was reconciled");
            s_delete_why(b, row, owner, siblings);
        } else if (!strcmp(verb, "status")) {
            buf_puts(b, " was reconciled and its status had changed");
        } else {
            buf_puts(b, " was reconciled");
        }
        buf_printf(b, "\n    reconcile %s",
                   s_s(row, "correlation_id")[0] ? s_s(row, "correlation_id")
                                                 : "(no correlation id)");
    } else {
        buf_puts(b, "\n    cause: not recorded (no cause key in the audit row)");
    }
    if (owner && json_is_integer(json_object_get(owner, "generation"))) {
        buf_printf(b,
                   "\n    %s %s/%s now: generation %" JSON_INTEGER_FORMAT
                   ", resourceVersion %s, state %s%s",
                   s_s(owner, "kind"), s_s(owner, "namespace"), s_s(owner, "name"),
                   s_i(owner, "generation"), s_s(owner, "resourceVersion"),
                   s_s(owner, "phase")[0] ? s_s(owner, "phase") : "-",
                   s_i(owner, "generation") == s_i(row, "cause_generation")
                       ? " (the generation acted on: its current spec is the one the reconcile "
                         "read)"
                       : " (changed since: the spec of the generation acted on is not kept)");
    } else if (owner) {
        buf_printf(b, "\n    %s %s/%s is no longer observed (deleted, or observed.db is missing)",
                   s_s(owner, "kind"), s_s(owner, "namespace"), s_s(owner, "name"));
    }
    s_siblings_text(b, row, siblings);
    if (owner) {
        json_t *slim = json_deep_copy(owner);
        if (slim)
            json_object_del(slim, "object");
        json_object_set_new(row, "cause_object", slim);
    }
    json_object_set_new(row, "same_reconcile", siblings);
    json_decref(owner);
    return 0;
}

/* For a worker pod gone without a rayfleet delete: the worker pods the scheduler created later
 * for the same owner and group. Appends text to `b` and the rows to `out`. */
static int s_replacements(s_ex_t *x, const json_t *create, buf_t *b, json_t *out)
{
    json_t *owner = s_cause_owner(x, s_s(create, "cause_key"));
    const json_t *rc = json_object_get(owner, "object");
    char group[S_GROUP_MAX];
    s_pod_group(create, rc, group, sizeof(group));
    json_t *rows = json_array();
    store_audit_filter_t f = {.cluster = s_s(create, "cluster"),
                              .verb = "create",
                              .since_ms = s_i(create, "time_ms"),
                              .limit = EXPLAIN_MAX_ROWS,
                              .order = STORE_AUDIT_OLDEST};
    int code = rows ? s_filter(x, &f, rows, EXPLAIN_MAX_ROWS) : 1;
    size_t i;
    json_t *r;
    int n = 0;
    json_array_foreach(rows, i, r)
    {
        char g[S_GROUP_MAX];
        if (code || s_i(r, "id") <= s_i(create, "id") || strcmp(s_s(r, "target_kind"), "Pod") ||
            strcmp(s_s(r, "reason"), "CreatedWorkerPod") ||
            strcmp(s_s(r, "cause_key"), s_s(create, "cause_key")) || !s_ok(r) ||
            !strcmp(s_s(r, "correlation_id"), s_s(create, "correlation_id")))
            continue;
        s_pod_group(r, rc, g, sizeof(g));
        if (strcmp(g, group) != 0)
            continue;
        char when[40];
        s_rfc3339(s_i(r, "time_ms"), when, sizeof(when));
        if (!n)
            buf_printf(b,
                       "\n  worker pods the scheduler created later in group %s (a replacement, "
                       "if one was needed, is among them; 'rayfleetctl explain pod/NAME' says "
                       "why each exists):",
                       group[0] ? group : "?");
        buf_printf(b,
                   "\n    pod %s/%s at %s (cause generation %" JSON_INTEGER_FORMAT
                   ", resourceVersion %s, reconcile %s)",
                   s_s(r, "target_namespace"), s_s(r, "target_name"), when,
                   s_i(r, "cause_generation"), s_s(r, "cause_resource_version"),
                   s_s(r, "correlation_id"));
        json_array_append(out, r);
        n++;
    }
    if (!n && !code)
        buf_printf(b, "\n  the scheduler has created no worker pod in group %s since",
                   group[0] ? group : "?");
    json_decref(rows);
    json_decref(owner);
    return code;
}

/* explain for a non-Ray object. Returns the exit code. */
static int s_explain_object(s_ex_t *x)
{
    json_t *rows = json_array();
    json_t *doc = json_object();
    buf_t text;
    buf_init(&text, EXPLAIN_TEXT_MAX);
    int code = 1;
    if (!rows || !doc)
        goto done;
    size_t ci;
    json_t *c;
    json_array_foreach(x->clusters, ci, c)
    {
        store_audit_filter_t f = {.cluster = json_string_value(c),
                                  .kind = x->kind->kind,
                                  .ns = x->ns,
                                  .name = x->name,
                                  .limit = EXPLAIN_MAX_ROWS,
                                  .order = STORE_AUDIT_OLDEST};
        if (s_filter(x, &f, rows, EXPLAIN_MAX_ROWS) != 0)
            goto done;
    }
    json_t *obs = s_observed_any(x, x->kind->kind, x->ns, x->name);
    json_object_set_new(doc, "kind", json_string(x->kind->kind));
    json_object_set_new(doc, "namespace", json_string(x->ns));
    json_object_set_new(doc, "name", json_string(x->name));
    if (obs)
        json_object_del(obs, "object");
    json_object_set_new(doc, "observed", obs ? obs : json_null());
    json_object_set_new(doc, "actions", json_incref(rows));
    bool created = false, deleted = false;
    const json_t *create = NULL, *unknown = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (i)
            buf_puts(&text, "\n");
        if (s_explain_row(x, r, &text) != 0)
            goto done;
        if (!strcmp(s_s(r, "verb"), "create") && s_ok(r)) {
            created = true;
            create = r;
        }
        if (s_create_unknown(r))
            unknown = r;
        if (!strcmp(s_s(r, "verb"), "delete") && s_ok(r))
            deleted = true;
    }
    const char *verdict;
    json_t *later = json_array();
    if (json_array_size(rows) == 0) {
        verdict =
            obs ? "exists but was not created by rayfleet" : "unknown to rayfleet and not observed";
        buf_printf(&text, "%s %s/%s: no audit row: rayfleet never created, changed or deleted it",
                   x->kind->word, x->ns, x->name);
        if (obs)
            buf_printf(
                &text,
                ".\n  It exists (observed, resourceVersion %s%s%s%s%s), so it was not created "
                "by rayfleet: a user or another controller made it (or its audit rows "
                "were pruned).",
                s_s(obs, "resourceVersion"), s_s(obs, "owner_kind")[0] ? ", belongs to " : "",
                s_s(obs, "owner_kind"), s_s(obs, "owner_kind")[0] ? " " : "",
                s_s(obs, "owner_name"));
        else if (x->observed)
            buf_puts(&text, ", and it is not observed now (it does not exist, or never did).");
        else
            buf_puts(&text, " (observed.db is missing, so whether it exists is unknown).");
    } else if (obs) {
        verdict = obs && json_is_true(json_object_get(obs, "deleting")) ? "exists, being deleted"
                                                                        : "exists";
        buf_printf(&text, "\n  now: it exists (resourceVersion %s%s%s)%s",
                   s_s(obs, "resourceVersion"), s_s(obs, "phase")[0] ? ", phase " : "",
                   s_s(obs, "phase"),
                   json_is_true(json_object_get(obs, "deleting")) ? " and is being deleted" : "");
        if (!created && unknown) {
            // the create rayfleet sent is the one that made it: its answer was never recorded
            created = true;
            create = unknown;
            verdict = s_pending(unknown)
                          ? "created by rayfleet (result not recorded: the controller stopped)"
                          : "created by rayfleet (the answer to its create was lost)";
            buf_printf(&text, "; %s", verdict);
        } else if (!created) {
            buf_puts(&text, "; rayfleet changed it but did not create it (a user or another "
                            "controller did)");
        }
    } else if (!x->observed) {
        verdict = deleted ? "deleted by rayfleet" : "unknown (observed.db missing)";
        buf_puts(&text, "\n  now: unknown (observed.db is missing)");
    } else if (deleted) {
        verdict = "deleted by rayfleet";
        buf_puts(&text, "\n  now: gone (not observed); rayfleet deleted it (see above)");
    } else {
        verdict = "deleted outside rayfleet";
        buf_puts(&text,
                 "\n  now: gone (not observed), and rayfleet has no delete row for it: it was "
                 "deleted outside rayfleet (a user, kubectl, or the garbage collector)");
        if (created && !strcmp(x->kind->kind, "Pod") && later &&
            s_replacements(x, create, &text, later) != 0)
            goto done;
    }
    json_object_set_new(doc, "verdict", json_string(verdict));
    json_object_set_new(doc, "created_by_rayfleet", json_boolean(created));
    json_object_set_new(doc, "deleted_by_rayfleet", json_boolean(deleted));
    json_object_set_new(doc, "later_creates_in_group", later ? later : json_array());
    json_object_set_new(doc, "explanation", json_string(buf_str(&text)));
    if (x->json) {
        char *s = json_dumps(doc, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        printf("%s\n", buf_str(&text));
    }
    code = json_array_size(rows) ? 0 : 1;
done:
    json_decref(rows);
    json_decref(doc);
    buf_free(&text);
    return code;
}

/* ---- RayJob: where it is and why ----------------------------------------------------------- */

/* Deterministic bytes for rjstate's generated names (explain never creates what they name). */
static int s_norand(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    memset(out, 0, n);
    return 0;
}

/* One sentence: why the RayJob `rj` is where it is, from one rjstate_step() over what is
 * observed (its RayCluster `rc` and submitter Job `job`, each may be NULL) with KubeRay's default
 * settings; where the step wants the dashboard, the Ray job status the RayJob last recorded
 * stands for its answer. Falls back to the status fields when the step cannot run. */
static void s_rayjob_why(const json_t *rj, const json_t *rc, const json_t *job, buf_t *b)
{
    rj_settings_t set;
    rjstate_settings_default(&set);
    rj_in_t in = {.rj = rj,
                  .cluster = rc,
                  .job = job,
                  .now_ms = rftime_now_ms(),
                  .set = &set,
                  .rnd = s_norand};
    rj_out_t out = {0};
    buf_t err;
    buf_init(&err, 1024);
    int rc_step = rjstate_step(&in, &out, &err);
    if (rc_step == 0 && out.wants_info) {
        rjstate_out_free(&out);
        in.info = (rj_info_t){.kind = RJ_INFO_OK,
                              .status = jx_str(rj, "status.jobStatus", "PENDING"),
                              .message = jx_str(rj, "status.message", "")};
        rc_step = rjstate_step(&in, &out, &err);
    }
    if (rc_step == 0 && out.why[0]) {
        buf_puts(b, out.why);
    } else {
        const char *d = jx_str(rj, "status.jobDeploymentStatus", "");
        const char *msg = jx_str(rj, "status.message", "");
        buf_printf(b, "deployment status %s%s%s", d[0] ? d : "(new)", msg[0] ? ": " : "", msg);
    }
    rjstate_out_free(&out);
    buf_free(&err);
}

/* Appends "not observed" and, when rayfleet wrote to the object, its newest audit row's verb,
 * actor and time (the watcher may not list that kind, or not yet). */
static void s_not_observed(s_ex_t *x, const char *cluster, const char *kind, const char *name,
                           buf_t *b)
{
    buf_puts(b, "not observed");
    json_t *rows = json_array();
    store_audit_filter_t f = {.cluster = cluster,
                              .kind = kind,
                              .ns = x->ns,
                              .name = name,
                              .limit = 1,
                              .order = STORE_AUDIT_NEWEST};
    if (rows && s_filter(x, &f, rows, 1) == 0 && json_array_size(rows) > 0) {
        const json_t *r = json_array_get(rows, 0);
        buf_printf(b, " (last %s by %s at %s: %" JSON_INTEGER_FORMAT ")", s_s(r, "verb"),
                   s_s(r, "actor_service"), s_s(r, "time"), s_i(r, "result_status"));
    }
    json_decref(rows);
}

/* Appends which RayCluster Service `svc` selects ("selects ray.io/cluster=NAME", or "selects no
 * ray.io/cluster"), and sets it as "selects" (the name or null) in `row`. */
static void s_selects(const json_t *svc, buf_t *b, json_t *row)
{
    const char *c = json_string_value(json_object_get(jx_get(svc, "spec.selector"), LABEL_CLUSTER));
    if (c && c[0])
        buf_printf(b, "selects %s=%s", LABEL_CLUSTER, c);
    else
        buf_puts(b, "selects no " LABEL_CLUSTER);
    json_object_set_new(row, "selects", c && c[0] ? json_string(c) : json_null());
}

/* Appends one owned object's line: kind ns/name, its role when given ("active", ...), then its
 * observed state (phase, conditions; for a Service the cluster it selects) or "not observed". Adds
 * {kind, name, [role,] observed} to `owned`. */
static void s_owned(s_ex_t *x, const char *cluster, const char *kind, const char *name,
                    const char *role, buf_t *b, json_t *owned)
{
    json_t *o = name[0] ? s_observed(x, cluster, kind, x->ns, name) : NULL;
    buf_printf(b, "\n  %-10s %s/%s: ", kind, x->ns, name[0] ? name : "-");
    if (role)
        buf_printf(b, "%s, ", role);
    if (!name[0])
        buf_puts(b, "none yet");
    else if (!o)
        s_not_observed(x, cluster, kind, name, b);
    else if (!strcmp(kind, "Service"))
        s_selects(json_object_get(o, "object"), b, o);
    else
        buf_printf(b, "state %s, conditions %s%s", s_s(o, "phase")[0] ? s_s(o, "phase") : "-",
                   s_s(o, "conditions")[0] ? s_s(o, "conditions") : "-",
                   json_is_true(json_object_get(o, "deleting")) ? " (being deleted)" : "");
    if (o)
        json_object_del(o, "object");
    json_t *e =
        json_pack("{s:s, s:s, s:o}", "kind", kind, "name", name, "observed", o ? o : json_null());
    if (e && role)
        json_object_set_new(e, "role", json_string(role));
    json_array_append_new(owned, e);
}

/* An object named in the "last audit rows" query: its kind and name. */
typedef struct {
    const char *kind;
    const char *name;
} s_target_t;

#define S_LAST_MAX 32 /* most cause keys, and most targets, of one "last audit rows" query */

/* The newest audit rows (at most EXPLAIN_RAYJOB_LAST) about a Ray object and its children: those
 * whose cause_key is cluster/ns/causes[i] (the objects whose reconciles they belong to), or whose
 * target is one of `targets` (in cluster and x->ns); appended oldest first to `out`. An empty name
 * matches nothing; at most S_LAST_MAX of each are used. Returns 0 or 1 (error printed). */
static int s_last_rows(s_ex_t *x, const char *cluster, const char *const *causes, size_t ncauses,
                       const s_target_t *targets, size_t ntargets, json_t *out)
{
    ncauses = ncauses < S_LAST_MAX ? ncauses : S_LAST_MAX;
    ntargets = ntargets < S_LAST_MAX ? ntargets : S_LAST_MAX;
    buf_t sql;
    buf_init(&sql, 8192);
    buf_puts(&sql, "SELECT * FROM (SELECT " STORE_AUDIT_COLUMNS
                   ", id FROM audit WHERE cause_key IN (NULL");
    for (size_t i = 0; i < ncauses; i++)
        buf_printf(&sql, ", ?%zu", 4 + i);
    buf_puts(&sql, ") OR (cluster = ?1 AND target_namespace = ?2 AND (0");
    for (size_t i = 0; i < ntargets; i++)
        buf_printf(&sql, " OR (target_kind = ?%zu AND target_name = ?%zu)", 4 + ncauses + 2 * i,
                   5 + ncauses + 2 * i);
    buf_puts(&sql, ")) ORDER BY time_ms DESC, id DESC LIMIT ?3) ORDER BY time_ms, id");
    sqlite3_stmt *st = sql.len ? s_prepare(x, buf_str(&sql)) : NULL;
    buf_free(&sql);
    if (!st)
        return 1;
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, x->ns, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, EXPLAIN_RAYJOB_LAST);
    char key[S_GROUP_MAX * 3 + 3];
    for (size_t i = 0; i < ncauses; i++) {
        snprintf(key, sizeof(key), "%s/%s/%s", cluster, x->ns, causes[i]);
        if (causes[i][0]) /* else NULL: matches nothing */
            sqlite3_bind_text(st, (int)(4 + i), key, -1, SQLITE_TRANSIENT);
    }
    for (size_t i = 0; i < ntargets; i++) {
        sqlite3_bind_text(st, (int)(4 + ncauses + 2 * i), targets[i].kind, -1, SQLITE_TRANSIENT);
        if (targets[i].name[0])
            sqlite3_bind_text(st, (int)(5 + ncauses + 2 * i), targets[i].name, -1,
                              SQLITE_TRANSIENT);
    }
    return s_collect(x, st, out, EXPLAIN_RAYJOB_LAST);
}

/* Appends the "last audit rows" listing of `last` (s_last_rows()). */
static void s_last_text(const json_t *last, buf_t *b)
{
    buf_printf(b, "\nlast %zu audit row%s about it and its children:", json_array_size(last),
               json_array_size(last) == 1 ? "" : "s");
    size_t i;
    json_t *r;
    json_array_foreach(last, i, r)
    {
        buf_printf(b, "\n  %s %-10s %-7s %s %s/%s", s_s(r, "time"), s_s(r, "actor_service"),
                   s_s(r, "verb"), s_s(r, "target_kind"), s_s(r, "target_namespace"),
                   s_s(r, "target_name"));
        if (s_s(r, "reason")[0])
            buf_printf(b, " (%s)", s_s(r, "reason"));
        if (s_ok(r) && s_i(r, "result_status") > 0)
            buf_printf(b, " %" JSON_INTEGER_FORMAT, s_i(r, "result_status"));
        else if (s_pending(r))
            buf_puts(b, " result not recorded");
        else if (!s_ok(r))
            buf_printf(b, " FAILED %" JSON_INTEGER_FORMAT " %s", s_i(r, "result_status"),
                       s_s(r, "result_error"));
        if (s_verb_has_message(s_s(r, "verb")) && s_s(r, "message")[0])
            buf_printf(b, ": %s", s_s(r, "message"));
    }
}

/* The Events among a Ray object's audit rows `rows` (the rows that created them: type, reason,
 * message), appended to `events` as {time, type, reason, message}, and listed into `b`. */
static void s_events(const json_t *rows, json_t *events, buf_t *b)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (strcmp(s_s(r, "target_kind"), "Event") != 0)
            continue;
        // the Event's own type and message are in the request body the row kept
        const char *body = s_s(r, "request_summary");
        json_t *ev = NULL;
        buf_t perr;
        buf_init(&perr, 256);
        if (jx_parse(body, strlen(body), "event", &ev, &perr) != 0 || !json_is_object(ev)) {
            json_decref(ev);
            ev = NULL;
        }
        buf_free(&perr);
        json_t *e =
            json_pack("{s:s, s:s, s:s, s:s}", "time", s_s(r, "time"), "type",
                      ev ? jx_str(ev, "type", "") : "", "reason", s_s(r, "reason"), "message",
                      ev ? jx_str(ev, "message", s_s(r, "message")) : s_s(r, "message"));
        json_decref(ev);
        if (e)
            json_array_append_new(events, e);
    }
    buf_printf(b, "\nevents (%zu):", json_array_size(events));
    json_array_foreach(events, i, r)
    {
        buf_printf(b, "\n  %s %s %s: %s", s_s(r, "time"), s_s(r, "type")[0] ? s_s(r, "type") : "-",
                   s_s(r, "reason")[0] ? s_s(r, "reason") : "-", s_s(r, "message"));
    }
}

/* A status line of a Ray object's section: its label and where the value is. */
typedef struct {
    const char *label;
    const char *path;
} s_field_t;

/* Appends "\n  LABEL  value" for each field of `obj` (strings and integers; "-" when absent) and
 * sets label -> value (the string or integer, "" when absent) in `st`. */
static void s_fields(const json_t *obj, const s_field_t *fields, size_t n, buf_t *b, json_t *st)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *v = jx_get(obj, fields[i].path);
        char num[32];
        const char *text = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            text = num;
        }
        buf_printf(b, "\n  %-18s %s", fields[i].label, text && text[0] ? text : "-");
        json_object_set_new(st, fields[i].label,
                            json_is_integer(v) ? json_integer(json_integer_value(v))
                                               : json_string(text ? text : ""));
    }
}

/* The end of a Ray object's section: the newest audit rows about it and its children (see
 * s_last_rows()) and its Events (from its audit rows `rows`), into `b` and, as "last_audit" and
 * "events", into `sec`. Returns 0 or 1 (error printed). */
static int s_section_tail(s_ex_t *x, const char *cluster, const char *const *causes, size_t ncauses,
                          const s_target_t *targets, size_t ntargets, const json_t *rows,
                          json_t *sec, buf_t *b)
{
    json_t *last = json_array();
    json_t *events = json_array();
    int code = 1;
    if (last && events && s_last_rows(x, cluster, causes, ncauses, targets, ntargets, last) == 0) {
        s_last_text(last, b);
        s_events(rows, events, b);
        json_object_set(sec, "last_audit", last);
        json_object_set(sec, "events", events);
        code = 0;
    }
    json_decref(last);
    json_decref(events);
    return code;
}

/* The cluster a Ray object's section reads: the one it is observed in, else the first candidate. */
static const char *s_section_cluster(const s_ex_t *x, const json_t *obs)
{
    const char *c = obs ? s_s(obs, "cluster") : json_string_value(json_array_get(x->clusters, 0));
    return c ? c : "";
}

#define S_WHY_UNOBSERVED "\nwhy: not observed now (deleted, or the watcher has not seen it)"

/* Appends the RayJob section of explain (status, why, owned objects, last audit rows, Events) to
 * `b`, and the same as "rayjob" to `doc`. `obs` is the RayJob's observed row (with "object"), or
 * NULL; `rows` its audit rows (explain's listing). Returns 0 or 1 (error printed). */
static int s_rayjob_section(s_ex_t *x, const json_t *obs, const json_t *rows, buf_t *b, json_t *doc)
{
    const json_t *rj = obs ? json_object_get(obs, "object") : NULL;
    const char *cluster = s_section_cluster(x, obs);
    json_t *sec = json_object();
    json_t *owned = json_array();
    buf_t why;
    buf_init(&why, RJ_MSG_MAX + 64);
    int code = 1;
    if (!sec || !owned)
        goto done;
    const char *rcname = rj ? jx_str(rj, "status.rayClusterName", "") : "";
    char svc[S_GROUP_MAX + 16];
    snprintf(svc, sizeof(svc), "%s-head-svc", x->name);
    if (rj) {
        json_t *rco = rcname[0] ? s_observed(x, cluster, "RayCluster", x->ns, rcname) : NULL;
        json_t *jo = s_observed(x, cluster, "Job", x->ns, x->name);
        s_rayjob_why(rj, rco ? json_object_get(rco, "object") : NULL,
                     jo ? json_object_get(jo, "object") : NULL, &why);
        json_decref(rco);
        json_decref(jo);
        static const s_field_t fields[] = {{"deployment status", "status.jobDeploymentStatus"},
                                           {"job status", "status.jobStatus"},
                                           {"reason", "status.reason"},
                                           {"message", "status.message"},
                                           {"job id", "status.jobId"},
                                           {"cluster", "status.rayClusterName"},
                                           {"dashboard", "status.dashboardURL"},
                                           {"start", "status.startTime"},
                                           {"end", "status.endTime"}};
        json_t *st = json_object();
        buf_printf(b, "\nwhy: %s\nstatus:", buf_str(&why));
        s_fields(rj, fields, sizeof(fields) / sizeof(fields[0]), b, st);
        json_object_set_new(sec, "why", json_string(buf_str(&why)));
        json_object_set_new(sec, "status", st ? st : json_null());
    } else {
        buf_puts(b, S_WHY_UNOBSERVED);
        json_object_set_new(sec, "why", json_null());
    }
    buf_puts(b, "\nowns:");
    s_owned(x, cluster, "RayCluster", rcname, NULL, b, owned);
    s_owned(x, cluster, "Job", x->name, NULL, b, owned);
    s_owned(x, cluster, "Service", svc, NULL, b, owned);
    json_object_set(sec, "owns", owned);
    const char *causes[] = {x->name, rcname};
    const s_target_t targets[] = {
        {"RayJob", x->name}, {"RayCluster", rcname}, {"Job", x->name}, {"Service", svc}};
    if (s_section_tail(x, cluster, causes, 2, targets, 4, rows, sec, b) != 0)
        goto done;
    json_object_set(doc, "rayjob", sec);
    code = 0;
done:
    json_decref(sec);
    json_decref(owned);
    buf_free(&why);
    return code;
}

/* ---- RayService: which cluster serves and why ---------------------------------------------- */

#define S_RS_CLUSTERS_MAX 16 /* most RayClusters of one RayService explain reads or lists */
#define S_RS_SLICES_MAX 1000 /* most EndpointSlices of the serve Service read */
#define S_RS_NOT_PROBED "Serve state not probed by explain"
#define S_LABEL_PATH(l) "'$.metadata.labels.\"" l "\"'" /* json_extract() path of a label */

/* The parsed `json` column (0) of each row of `st` (finalized here), at most `max`, appended to
 * `out`. */
static void s_objects(sqlite3_stmt *st, json_t *out, size_t max)
{
    while (json_array_size(out) < max && sqlite3_step(st) == SQLITE_ROW) {
        const char *js = (const char *)sqlite3_column_text(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        json_t *o = NULL;
        buf_t err;
        buf_init(&err, 256);
        if (js && len <= EXPLAIN_OBJECT_MAX && jx_parse(js, len, "observed", &o, &err) == 0)
            json_array_append_new(out, o);
        buf_free(&err);
    }
    sqlite3_finalize(st);
}

/* The RayClusters the RayService originated, as serve-upgrade finds them: observed, named
 * <trimmed name>- (a range of the primary key), labelled originated-from-cr-name = the RayService
 * and originated-from-crd = RayService; at most S_RS_CLUSTERS_MAX, by name, into `out`. */
static void s_rs_clusters(s_ex_t *x, const char *cluster, json_t *out)
{
    char *base = names_trim_job_name(x->name);
    char lo[S_GROUP_MAX], hi[S_GROUP_MAX];
    snprintf(lo, sizeof(lo), "%s-", base ? base : x->name);
    snprintf(hi, sizeof(hi), "%s.", base ? base : x->name); /* '.' follows '-' */
    free(base);
    sqlite3_stmt *st = s_prepare(x,
                                 "SELECT json FROM observed.observed_objects WHERE cluster = ?1 "
                                 "AND kind = 'RayCluster' "
                                 "AND namespace = ?2 AND name >= ?3 AND name < ?4 AND "
                                 "json_extract(json, " S_LABEL_PATH(LABEL_ORIGINATED_FROM_CR_NAME) ") = ?5 AND json_extract(json, " S_LABEL_PATH(
                                     LABEL_ORIGINATED_FROM_CRD) ") = '" RAYSERVICE_CRD
                                                                "' ORDER BY name LIMIT ?6");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, x->ns, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, lo, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, hi, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, x->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, S_RS_CLUSTERS_MAX);
    s_objects(st, out, S_RS_CLUSTERS_MAX);
}

/* The observed head pod of RayCluster `rc` (not being deleted), or NULL. The caller owns it. */
static json_t *s_head_pod(s_ex_t *x, const char *cluster, const char *rc)
{
    sqlite3_stmt *st = s_prepare(
        x, "SELECT json FROM observed.observed_objects WHERE cluster = ?1 AND namespace = ?2 AND "
           "kind = 'Pod' AND owner_kind = 'RayCluster' AND owner_name = ?3 AND deleting = 0 AND "
           "json_extract(json, " S_LABEL_PATH(LABEL_NODE_TYPE) ") = '" NAMES_NODE_HEAD "' LIMIT 1");
    json_t *pods = json_array();
    if (!st || !pods) {
        sqlite3_finalize(st);
        json_decref(pods);
        return NULL;
    }
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, x->ns, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, rc, -1, SQLITE_TRANSIENT);
    s_objects(st, pods, 1);
    json_t *pod = json_incref(json_array_get(pods, 0));
    json_decref(pods);
    return pod;
}

/* The RayService's Service `name` as observed (the object), when the RayService owns it; else
 * NULL. The caller owns it. */
static json_t *s_rs_service(s_ex_t *x, const char *cluster, const char *name)
{
    json_t *row = s_observed(x, cluster, "Service", x->ns, name);
    json_t *svc = NULL;
    if (row && !strcmp(s_s(row, "owner_kind"), "RayService") &&
        !strcmp(s_s(row, "owner_name"), x->name))
        svc = json_incref(json_object_get(row, "object"));
    json_decref(row);
    return svc;
}

/* The ready serve endpoints of Service `serve` (its EndpointSlices, by their service-name label,
 * counted as KubeRay does: rayservice_serve_endpoints()). */
static long s_rs_endpoints(s_ex_t *x, const char *cluster, const char *serve)
{
    sqlite3_stmt *st = s_prepare(
        x, "SELECT json FROM observed.observed_objects WHERE cluster = ?1 AND namespace = ?2 AND "
           "kind = 'EndpointSlice' AND json_extract(json, " S_LABEL_PATH(
               LABEL_SERVICE_NAME) ") = ?3 LIMIT ?4");
    json_t *slices = json_array();
    if (!st || !slices) {
        sqlite3_finalize(st);
        json_decref(slices);
        return 0;
    }
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, x->ns, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, serve, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, S_RS_SLICES_MAX);
    s_objects(st, slices, S_RS_SLICES_MAX);
    long n = rayservice_serve_endpoints(slices);
    json_decref(slices);
    return n;
}

/* What the RayService's next reconcile would do (rs_out_t.actions), in words, into `next`. */
static void s_rs_next(const rs_out_t *o, json_t *next)
{
    static const struct {
        unsigned bit;
        const char *what;
    } acts[] = {
        {RS_ACT_ADD_FINALIZER, "add the finalizer"},
        {RS_ACT_REMOVE_FINALIZER, "remove the finalizer"},
        {RS_ACT_CREATE_CLUSTER, "create the pending RayCluster"},
        {RS_ACT_UPDATE_ACTIVE, "update the active RayCluster in place"},
        {RS_ACT_UPDATE_PENDING, "update the pending RayCluster in place"},
        {RS_ACT_LABEL_ACTIVE, "set ray.io/serve on the active head pod"},
        {RS_ACT_LABEL_PENDING, "set ray.io/serve on the pending head pod"},
        {RS_ACT_CREATE_HEAD_SVC, "create the head Service"},
        {RS_ACT_POINT_HEAD_SVC, "point the head Service at the ready RayCluster"},
        {RS_ACT_CREATE_SERVE_SVC, "create the serve Service"},
        {RS_ACT_POINT_SERVE_SVC, "point the serve Service at the ready RayCluster"},
        {RS_ACT_DELETE_SERVICES, "delete the head and serve Services"},
    };
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
        if (o->actions & acts[i].bit)
            json_array_append_new(next, json_string(acts[i].what));
    for (size_t i = 0; i < o->nrecord; i++)
        json_array_append_new(
            next, json_sprintf("record the deletion deadline of RayCluster %s", o->record[i]));
    for (size_t i = 0; i < o->ndeletes; i++)
        json_array_append_new(next, json_sprintf("delete RayCluster %s", o->deletes[i]));
}

/* The deletion deadline serve-upgrade recorded for its dangling RayCluster `cn`, as its newest
 * successful schedule-delete row among `rows` says: the row's time plus the RayService's
 * rayClusterDeletionDelaySeconds (the step records now + delay; the lease holding the exact value
 * is serve-upgrade's, in leases.db). -1 when none is recorded. */
static int64_t s_rs_due(const json_t *rs, const json_t *rows, const char *cn)
{
    int64_t due = -1;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (!strcmp(s_s(r, "verb"), "schedule-delete") &&
            !strcmp(s_s(r, "target_kind"), "RayCluster") && !strcmp(s_s(r, "target_name"), cn) &&
            !json_is_string(json_object_get(r, "result_error")))
            due = s_i(r, "time_ms") + (int64_t)rayservice_delete_delay_s(rs) * 1000;
    }
    return due;
}

/* One sentence: which cluster serves the RayService `rs` and why, from one rsstate_step() over
 * what is observed (its RayClusters `clusters`, their head pods, its Services, `endpoints`) with
 * KubeRay's default settings and no Serve probe (explain calls no Ray head). Its actions, in
 * words, go to `next`. The deletion deadlines of dangling clusters are those its audit rows `rows`
 * recorded (s_rs_due()). */
static void s_rayservice_why(s_ex_t *x, const char *cluster, const json_t *rs,
                             const json_t *clusters, const json_t *rows, const json_t *head_svc,
                             const json_t *serve_svc, long endpoints, buf_t *b, json_t *next)
{
    rs_owned_t own[S_RS_CLUSTERS_MAX];
    size_t nown = 0;
    rs_cluster_in_t c[2] = {{0}, {0}};
    json_t *pods[2] = {NULL, NULL};
    const char *names[2] = {jx_str(rs, "status.activeServiceStatus.rayClusterName", ""),
                            jx_str(rs, "status.pendingServiceStatus.rayClusterName", "")};
    size_t i;
    json_t *rc;
    json_array_foreach(clusters, i, rc)
    {
        if (nown >= S_RS_CLUSTERS_MAX)
            break;
        const char *cn = jx_str(rc, "metadata.name", "");
        own[nown++] = (rs_owned_t){.rc = rc, .due_ms = s_rs_due(rs, rows, cn)};
        for (int k = 0; k < 2; k++) {
            if (!jx_get(rc, "metadata.deletionTimestamp") && names[k][0] && !strcmp(cn, names[k]) &&
                !c[k].rc) {
                c[k].rc = rc;
                c[k].head_pod = pods[k] = s_head_pod(x, cluster, cn);
            }
        }
    }
    rs_settings_t set;
    rsstate_settings_default(&set);
    rs_in_t in = {.rs = rs,
                  .owned = own,
                  .nowned = nown,
                  .active = c[0],
                  .pending = c[1],
                  .head_svc = head_svc,
                  .serve_svc = serve_svc,
                  .endpoints = endpoints,
                  .now_ms = rftime_now_ms(),
                  .set = &set,
                  .rnd = s_norand};
    rs_out_t out;
    buf_t err;
    buf_init(&err, RS_MSG_MAX);
    int rc_step = rsstate_step(&in, &out, &err);
    const char *npn = jx_str(out.status, "pendingServiceStatus.rayClusterName", "");
    const char *nan = jx_str(out.status, "activeServiceStatus.rayClusterName", "");
    if (rc_step != 0) {
        buf_printf(b, "the reconcile cannot build its objects: %s",
                   err.len ? buf_str(&err) : err_str(rc_step));
    } else if (*npn && strcmp(npn, names[1]) != 0 && strcmp(npn, names[0]) != 0) {
        /* the step named a new pending cluster (with explain's placeholder randomness) */
        if (*nan)
            buf_printf(b,
                       "upgrading: RayCluster %s serves; the spec changed, so serve-upgrade is "
                       "about to name a new pending RayCluster",
                       nan);
        else
            buf_puts(b, "initializing: serve-upgrade is about to name the first RayCluster");
    } else {
        buf_puts(b, out.why[0] ? out.why : "-");
    }
    if (rc_step == 0 && !out.done && !out.invalid && !jx_bool(rs, "spec.suspend", false))
        buf_puts(b, " (" S_RS_NOT_PROBED ")");
    if (rc_step == 0)
        s_rs_next(&out, next);
    rsstate_out_free(&out);
    buf_free(&err);
    json_decref(pods[0]);
    json_decref(pods[1]);
}

/* Appends the "serves:" line: the cluster the serve Service selects (ray.io/cluster as observed),
 * and the active and pending clusters of the status; the same into `sec` as "serving". */
static void s_rs_serving(s_ex_t *x, const json_t *rs, const char *serve_name,
                         const json_t *serve_svc, const json_t *head_svc, buf_t *b, json_t *sec)
{
    const char *sel =
        json_string_value(json_object_get(jx_get(serve_svc, "spec.selector"), LABEL_CLUSTER));
    const char *hsel =
        json_string_value(json_object_get(jx_get(head_svc, "spec.selector"), LABEL_CLUSTER));
    const char *an = jx_str(rs, "status.activeServiceStatus.rayClusterName", "");
    const char *pn = jx_str(rs, "status.pendingServiceStatus.rayClusterName", "");
    if (sel && sel[0])
        buf_printf(b, "\nserves: RayCluster %s (the serve Service %s/%s selects %s=%s)", sel, x->ns,
                   serve_name, LABEL_CLUSTER, sel);
    else if (serve_svc)
        buf_printf(b, "\nserves: no RayCluster (the serve Service %s/%s selects no %s)", x->ns,
                   serve_name, LABEL_CLUSTER);
    else
        buf_printf(b, "\nserves: no RayCluster yet (the serve Service %s/%s is not observed)",
                   x->ns, serve_name);
    buf_printf(b, "; active %s, pending %s", an[0] ? an : "-", pn[0] ? pn : "-");
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "serve_service", serve_name, "active", an, "pending", pn);
    if (o) {
        json_object_set_new(o, "cluster", sel && sel[0] ? json_string(sel) : json_null());
        json_object_set_new(o, "head_service_cluster",
                            hsel && hsel[0] ? json_string(hsel) : json_null());
    }
    json_object_set_new(sec, "serving", o ? o : json_null());
}

/* Adds `name` to the array of names `names` unless it is empty, there or the array is full. */
static void s_name_add(json_t *names, const char *name)
{
    if (!name[0] || json_array_size(names) >= S_RS_CLUSTERS_MAX)
        return;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (!strcmp(json_string_value(n), name))
            return;
    }
    json_array_append_new(names, json_string(name));
}

/* Appends the RayService section of explain (why, status, which cluster serves, the objects it
 * owns, last audit rows, Events) to `b`, and the same as "rayservice" to `doc`. `obs` is the
 * RayService's observed row (with "object"), or NULL; `rows` its audit rows. Returns 0 or 1
 * (error printed). */
static int s_rayservice_section(s_ex_t *x, const json_t *obs, const json_t *rows, buf_t *b,
                                json_t *doc)
{
    const json_t *rs = obs ? json_object_get(obs, "object") : NULL;
    const char *cluster = s_section_cluster(x, obs);
    json_t *sec = json_object();
    json_t *owned = json_array();
    json_t *clusters = json_array(); /* observed RayClusters it originated */
    json_t *names = json_array(); /* names of every RayCluster it has or had */
    json_t *next = json_array();
    json_t *head_svc = NULL, *serve_svc = NULL;
    char *serve_name = NULL;
    buf_t why;
    buf_init(&why, RS_MSG_MAX + 64);
    int code = 1;
    if (!sec || !owned || !clusters || !names || !next)
        goto done;
    char head_name[S_GROUP_MAX + 16];
    snprintf(head_name, sizeof(head_name), "%s-head-svc", x->name);
    serve_name = rs ? rayservice_serve_service_name(rs) : NULL;
    if (!serve_name) {
        /* not observed: the default name (a custom serveService name is in the spec) */
        char dflt[S_GROUP_MAX + 16];
        snprintf(dflt, sizeof(dflt), "%s-serve-svc", x->name);
        serve_name = strdup(dflt);
        if (!serve_name)
            goto done;
    }
    const char *an = rs ? jx_str(rs, "status.activeServiceStatus.rayClusterName", "") : "";
    const char *pn = rs ? jx_str(rs, "status.pendingServiceStatus.rayClusterName", "") : "";
    s_name_add(names, an);
    s_name_add(names, pn);
    if (rs && x->observed) {
        s_rs_clusters(x, cluster, clusters);
        head_svc = s_rs_service(x, cluster, head_name);
        serve_svc = s_rs_service(x, cluster, serve_name);
        long endpoints = serve_svc ? s_rs_endpoints(x, cluster, serve_name) : 0;
        s_rayservice_why(x, cluster, rs, clusters, rows, head_svc, serve_svc, endpoints, &why,
                         next);
    }
    if (rs) {
        static const s_field_t fields[] = {
            {"service status", "status.serviceStatus"},
            {"serve endpoints", "status.numServeEndpoints"},
            {"active cluster", "status.activeServiceStatus.rayClusterName"},
            {"pending cluster", "status.pendingServiceStatus.rayClusterName"},
            {"observed generation", "status.observedGeneration"}};
        json_t *st = json_object();
        if (!x->observed)
            buf_puts(&why, "observed.db is missing");
        buf_printf(b, "\nwhy: %s", buf_str(&why));
        s_rs_serving(x, rs, serve_name, serve_svc, head_svc, b, sec);
        buf_puts(b, "\nstatus:");
        s_fields(rs, fields, sizeof(fields) / sizeof(fields[0]), b, st);
        static const char *const types[] = {RS_COND_READY, RS_COND_UPGRADE, RS_COND_ROLLBACK,
                                            RS_COND_SUSPENDING, RS_COND_SUSPENDED};
        const json_t *conds = jx_get(rs, "status.conditions");
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            const json_t *cd = conds_find(conds, types[i], NULL);
            if (!cd && i > 1)
                continue; /* Ready and UpgradeInProgress always, the others when set */
            buf_printf(b, "\n  %-18s %s", types[i], cd ? jx_str(cd, "status", "-") : "-");
            if (cd)
                buf_printf(b, " (%s: %s)", jx_str(cd, "reason", "-"), jx_str(cd, "message", ""));
            json_object_set_new(
                st, types[i],
                cd ? json_pack("{s:s, s:s, s:s}", "status", jx_str(cd, "status", ""), "reason",
                               jx_str(cd, "reason", ""), "message", jx_str(cd, "message", ""))
                   : json_null());
        }
        json_object_set_new(sec, "why", json_string(buf_str(&why)));
        json_object_set_new(sec, "status", st ? st : json_null());
        if (json_array_size(next)) {
            buf_puts(b, "\nnext reconcile (one step over what is observed, " S_RS_NOT_PROBED "):");
            size_t i;
            json_t *n;
            json_array_foreach(next, i, n)
            {
                buf_printf(b, "%s%s", i ? "; " : " ", json_string_value(n));
            }
        }
        json_object_set(sec, "next", next);
    } else {
        buf_puts(b, S_WHY_UNOBSERVED);
        json_object_set_new(sec, "why", json_null());
    }
    /* its clusters: named in the status, observed, and those its audit rows name (gone ones) */
    size_t i;
    json_t *r;
    json_array_foreach(clusters, i, r)
    {
        s_name_add(names, jx_str(r, "metadata.name", ""));
    }
    json_array_foreach(rows, i, r)
    {
        if (!strcmp(s_s(r, "target_kind"), "RayCluster"))
            s_name_add(names, s_s(r, "target_name"));
    }
    buf_puts(b, "\nowns:");
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *cn = json_string_value(n);
        char role[96] = "dangling (neither active nor pending)";
        int64_t due = rs ? s_rs_due(rs, rows, cn) : -1;
        if (!strcmp(cn, an))
            snprintf(role, sizeof(role), "active");
        else if (!strcmp(cn, pn))
            snprintf(role, sizeof(role), "pending");
        else if (due >= 0) {
            char when[40];
            s_rfc3339(due, when, sizeof(when));
            snprintf(role, sizeof(role), "dangling, deletion due at %s", when);
        }
        s_owned(x, cluster, "RayCluster", cn, role, b, owned);
    }
    if (!json_array_size(names))
        s_owned(x, cluster, "RayCluster", "", NULL, b, owned);
    s_owned(x, cluster, "Service", head_name, "head", b, owned);
    s_owned(x, cluster, "Service", serve_name, "serve", b, owned);
    json_object_set(sec, "owns", owned);
    const char *causes[1 + S_RS_CLUSTERS_MAX] = {x->name};
    s_target_t targets[3 + S_RS_CLUSTERS_MAX] = {
        {"RayService", x->name}, {"Service", head_name}, {"Service", serve_name}};
    size_t ncauses = 1, ntargets = 3;
    json_array_foreach(names, i, n)
    {
        causes[ncauses++] = json_string_value(n);
        targets[ntargets++] = (s_target_t){"RayCluster", json_string_value(n)};
    }
    if (s_section_tail(x, cluster, causes, ncauses, targets, ntargets, rows, sec, b) != 0)
        goto done;
    json_object_set(doc, "rayservice", sec);
    code = 0;
done:
    json_decref(sec);
    json_decref(owned);
    json_decref(clusters);
    json_decref(names);
    json_decref(next);
    json_decref(head_svc);
    json_decref(serve_svc);
    free(serve_name);
    buf_free(&why);
    return code;
}

/* explain for a Ray object: everything done for it, grouped by reconcile. */
static int s_explain_ray(s_ex_t *x)
{
    json_t *rows = json_array();
    json_t *doc = json_object();
    json_t *groups = json_array();
    buf_t text;
    buf_init(&text, EXPLAIN_TEXT_MAX);
    buf_t key;
    buf_init(&key, 4096);
    int code = 1;
    if (!rows || !doc || !groups)
        goto done;
    size_t ci;
    json_t *c;
    json_array_foreach(x->clusters, ci, c)
    {
        buf_reset(&key);
        if (buf_printf(&key, "%s/%s/%s", json_string_value(c), x->ns, x->name) != 0)
            goto done;
        sqlite3_stmt *st =
            s_prepare(x, "SELECT " STORE_AUDIT_COLUMNS ", id FROM audit WHERE cause_key = ?1 OR "
                         "(cluster = ?2 AND target_kind = ?3 AND target_namespace "
                         "= ?4 AND target_name = ?5) ORDER BY id LIMIT ?6");
        if (!st)
            goto done;
        sqlite3_bind_text(st, 1, buf_str(&key), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json_string_value(c), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, x->kind->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, x->ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, x->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, EXPLAIN_MAX_ROWS);
        if (s_collect(x, st, rows, EXPLAIN_MAX_ROWS) != 0)
            goto done;
    }
    json_t *obs = s_observed_any(x, x->kind->kind, x->ns, x->name);
    buf_printf(&text, "%s %s/%s", x->kind->kind, x->ns, x->name);
    if (obs)
        buf_printf(&text, ": generation %" JSON_INTEGER_FORMAT ", resourceVersion %s, state %s%s",
                   s_i(obs, "generation"), s_s(obs, "resourceVersion"),
                   s_s(obs, "phase")[0] ? s_s(obs, "phase") : "-",
                   json_is_true(json_object_get(obs, "deleting")) ? " (being deleted)" : "");
    else
        buf_puts(&text, x->observed ? ": not observed now" : ": observed.db is missing");
    if ((!strcmp(x->kind->kind, "RayJob") && s_rayjob_section(x, obs, rows, &text, doc) != 0) ||
        (!strcmp(x->kind->kind, "RayService") &&
         s_rayservice_section(x, obs, rows, &text, doc) != 0)) {
        json_decref(obs);
        goto done;
    }
    buf_printf(&text, "\n%zu action%s by rayfleet", json_array_size(rows),
               json_array_size(rows) == 1 ? "" : "s");
    /* Group by correlation id, in the order of each reconcile's first row. */
    json_t *index = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *corr = s_s(r, "correlation_id");
        json_t *g = index ? json_object_get(index, corr) : NULL;
        if (!g) {
            g = json_pack("{s:s, s:s, s:O, s:O, s:O, s:[]}", "correlation_id", corr, "time",
                          s_s(r, "time"), "cause_generation",
                          json_object_get(r, "cause_generation"), "cause_resource_version",
                          json_object_get(r, "cause_resource_version"), "cause_event_id",
                          json_object_get(r, "cause_event_id"), "actions");
            if (!g || !index || json_object_set(index, corr, g) != 0 ||
                json_array_append_new(groups, g) != 0) {
                json_decref(index);
                goto done;
            }
        }
        json_array_append(json_object_get(g, "actions"), r);
    }
    json_decref(index);
    json_array_foreach(groups, i, r)
    {
        const json_t *first = json_array_get(json_object_get(r, "actions"), 0);
        buf_printf(&text, "\nreconcile %s at %s by %s",
                   s_s(r, "correlation_id")[0] ? s_s(r, "correlation_id") : "(none)",
                   s_s(r, "time"), s_s(first, "actor_replica"));
        if (fleetdb_set_count(x->fdb) > 1) // several clusters' files: say whose row it is
            buf_printf(&text, " in cluster %s", s_s(first, "cluster"));
        buf_puts(&text, ": cause generation ");
        if (json_is_integer(json_object_get(r, "cause_generation")))
            buf_printf(&text, "%" JSON_INTEGER_FORMAT, s_i(r, "cause_generation"));
        else
            buf_puts(&text, "?");
        buf_printf(&text, ", resourceVersion %s, ",
                   s_s(r, "cause_resource_version")[0] ? s_s(r, "cause_resource_version") : "?");
        if (json_is_integer(json_object_get(r, "cause_event_id")))
            buf_printf(&text, "bus event %" JSON_INTEGER_FORMAT, s_i(r, "cause_event_id"));
        else
            buf_puts(&text, "no bus event");
        size_t k;
        json_t *a;
        int events = 0;
        json_array_foreach(json_object_get(r, "actions"), k, a)
        {
            if (!strcmp(s_s(a, "target_kind"), "Event")) {
                events++;
                continue;
            }
            buf_printf(&text, "\n  %-7s %s %s/%s", s_s(a, "verb"), s_s(a, "target_kind"),
                       s_s(a, "target_namespace"), s_s(a, "target_name"));
            if (s_s(a, "reason")[0])
                buf_printf(&text, " (%s)", s_s(a, "reason"));
            if (s_ok(a) && s_i(a, "result_status") > 0)
                buf_printf(&text, " %" JSON_INTEGER_FORMAT, s_i(a, "result_status"));
            else if (s_pending(a))
                buf_puts(&text, " result not recorded");
            else if (!s_ok(a))
                buf_printf(&text, " FAILED %" JSON_INTEGER_FORMAT " %s", s_i(a, "result_status"),
                           s_s(a, "result_error"));
        }
        if (events)
            buf_printf(&text, "\n  recorded %d Event%s", events, events == 1 ? "" : "s");
    }
    if (json_array_size(rows) == 0)
        buf_printf(&text, "\nrayfleet has no audit row for %s %s/%s: it never reconciled it%s",
                   x->kind->kind, x->ns, x->name,
                   obs ? " (is the scheduler running? or the rows were pruned)" : "");
    if (obs)
        json_object_del(obs, "object");
    json_object_set_new(doc, "kind", json_string(x->kind->kind));
    json_object_set_new(doc, "namespace", json_string(x->ns));
    json_object_set_new(doc, "name", json_string(x->name));
    json_object_set_new(doc, "observed", obs ? obs : json_null());
    json_object_set_new(doc, "reconciles", json_incref(groups));
    json_object_set_new(doc, "explanation", json_string(buf_str(&text)));
    if (x->json) {
        char *s = json_dumps(doc, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        printf("%s\n", buf_str(&text));
    }
    code = json_array_size(rows) ? 0 : 1;
done:
    json_decref(rows);
    json_decref(doc);
    json_decref(groups);
    buf_free(&text);
    buf_free(&key);
    return code;
}

/* Resolves a KIND word (case-insensitive, plural or short name). NULL when unknown. */
static const s_kind_t *s_kind(const char *word)
{
    char w[S_KIND_MAX];
    size_t n = strlen(word);
    if (n == 0 || n >= sizeof(w))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        w[i] = (char)tolower((unsigned char)word[i]);
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1 && n > 1 && w[n - 1] == 's')
            w[--n] = '\0'; /* pods -> pod */
        else if (pass == 2 && n > 1 && w[n - 1] == 'e')
            w[--n] = '\0'; /* ingresses -> ingresse -> ingress */
        else if (pass)
            continue;
        for (size_t i = 0; i < S_NKINDS; i++)
            if (!strcmp(s_kinds[i].word, w) || (s_kinds[i].alias && !strcmp(s_kinds[i].alias, w)))
                return &s_kinds[i];
    }
    return NULL;
}

/* Fills x->clusters: --cluster, or the clusters of observed.db, plus "default", plus the members
 * whose audit files are read (`members`, may be NULL: a federation without observed.db). */
static int s_clusters(s_ex_t *x, const char *only, const json_t *members)
{
    x->clusters = json_array();
    if (!x->clusters)
        return 1;
    if (only)
        return json_array_append_new(x->clusters, json_string(only)) ? 1 : 0;
    bool has_default = false;
    if (x->observed) {
        sqlite3_stmt *st = s_prepare(x, "SELECT DISTINCT cluster FROM observed.observed_objects");
        if (!st)
            return 1;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *c = (const char *)sqlite3_column_text(st, 0);
            if (!c)
                continue;
            has_default = has_default || !strcmp(c, "default");
            json_array_append_new(x->clusters, json_string(c));
        }
        sqlite3_finalize(st);
    }
    size_t mi;
    json_t *m;
    json_array_foreach(members, mi, m)
    {
        bool seen = false;
        size_t ci;
        json_t *c;
        json_array_foreach(x->clusters, ci, c) seen = seen || json_equal(c, m);
        if (!seen && json_array_append(x->clusters, m) != 0)
            return 1;
    }
    if (!has_default)
        json_array_append_new(x->clusters, json_string("default"));
    return 0;
}

/* A copy of argv (the array only, freed by the caller) with "-n" spelled "--namespace"
 * (args.h knows only long options). NULL when out of memory (printed). */
static char **s_short_opts(int argc, char **argv)
{
    char **out = calloc((size_t)argc + 1, sizeof(*out));
    if (!out) {
        fprintf(stderr, "rayfleetctl: out of memory\n");
        return NULL;
    }
    for (int i = 0; i < argc; i++)
        out[i] = strcmp(argv[i], "-n") == 0 ? (char *)"--namespace" : argv[i];
    return out;
}

static const args_opt_t s_explain_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up' (default " LAUNCH_DEFAULT_STATE_DIR "): reads "
     "scheduler.db (audit) and observed.db."},
    {"namespace", "NS", "Namespace of the object (default " EXPLAIN_DEFAULT_NS "); also -n NS."},
    {"cluster", "NAME", "Member cluster (default: every cluster observed.db knows, and default)."},
    {"context", "NAME",
     "With 'up --members': read only this cluster's audit files (member-<i>: "
     "STATE/member-<i>.*.db; management: the management set) and look for the object there "
     "(--cluster defaults to NAME). Default: every cluster's files that fit in one connection "
     "(a note names the others)."},
    {"output", "FORMAT", "text (default) or json."},
    {NULL, NULL, NULL},
};

static int s_explain_run(int argc, char **words);

int explain_main(int argc, char **argv)
{
    char **words = s_short_opts(argc, argv);
    if (!words)
        return 1;
    int code = s_explain_run(argc, words);
    free(words);
    return code;
}

/* explain_main() after the argv copy. */
static int s_explain_run(int argc, char **words)
{
    args_t a;
    int pr = args_parse(
        "explain",
        "KIND/NAME [-n NAMESPACE] [--state-dir DIR] [--context NAME] [--output text|json]",
        "Why does this object exist, or why was it deleted? Lists the actions rayfleet took on "
        "it (audit rows: reason, actor, result), follows each one's cause back to the Ray object "
        "change that triggered the reconcile (generation, resourceVersion, bus event id; the "
        "object as observed now), and the other actions of the same reconcile. KIND: pod, "
        "service, event, raycluster, rayjob, rayservice, configmap, secret, serviceaccount, "
        "role, rolebinding, ingress, pvc, job, endpointslice (any case, plural or short name "
        "such as svc). For a Ray object, lists everything done for it, grouped by reconcile; "
        "for a RayJob, where it is and why; for a RayService, which RayCluster serves and why "
        "(one reconcile step over what is observed, without calling Serve). "
        "Exit 0 when rayfleet acted on the object, 1 when it has no audit row (not created by "
        "rayfleet) or on error, 2 on a usage error.",
        s_explain_opts, 1, argc, words, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    if (a.npositional != 1) {
        fprintf(stderr,
                "rayfleetctl explain: give the object as KIND/NAME (e.g. pod/demo-head-x)\n");
        return 2;
    }
    const char *arg = a.positional[0];
    const char *slash = strchr(arg, '/');
    char kword[S_KIND_MAX];
    if (!slash || slash == arg || !slash[1] || strchr(slash + 1, '/') ||
        (size_t)(slash - arg) >= sizeof(kword)) {
        fprintf(stderr, "rayfleetctl explain: give the object as KIND/NAME (got '%s')\n", arg);
        return 2;
    }
    snprintf(kword, sizeof(kword), "%.*s", (int)(slash - arg), arg);
    s_ex_t x = {.name = slash + 1,
                .ns = args_str(&a, "namespace") ? args_str(&a, "namespace") : EXPLAIN_DEFAULT_NS,
                .kind = s_kind(kword)};
    if (!x.kind) {
        fprintf(stderr,
                "rayfleetctl explain: unknown kind '%s' (pod, service, event, raycluster, rayjob, "
                "rayservice, configmap, secret, serviceaccount, role, rolebinding, ingress, pvc, "
                "job, endpointslice)\n",
                kword);
        return 2;
    }
    const char *out = args_str(&a, "output");
    if (out && strcmp(out, "text") && strcmp(out, "json")) {
        fprintf(stderr, "rayfleetctl explain: --output: must be text or json (got '%s')\n", out);
        return 2;
    }
    x.json = out && !strcmp(out, "json");
    const char *dir =
        args_str(&a, "state-dir") ? args_str(&a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
    char obs[PATH_MAX];
    snprintf(obs, sizeof(obs), "%s/%s", dir, SQL_OBSERVED_DB);
    fleetdb_files_t *files = calloc(1, sizeof(*files));
    if (!files)
        return 1;
    x.observed = access(obs, F_OK) == 0;
    const char *context = args_str(&a, "context");
    buf_t ferr;
    buf_init(&ferr, 4096);
    int fr = fleetdb_select(dir, context, x.observed ? 1 : 0, files, &ferr);
    if (fr != 0 && fr != ERR_TOOBIG) {
        fprintf(stderr, "rayfleetctl explain: %s\n",
                buf_str(&ferr)[0] ? buf_str(&ferr) : err_str(fr));
        buf_free(&ferr);
        free(files);
        return 1;
    }
    if (fr == ERR_TOOBIG)
        fprintf(stderr, "rayfleetctl explain: note: %s\n", buf_str(&ferr));
    buf_free(&ferr);
    fleetdb_note_skipped(files, "explain");
    int err = 0;
    x.fdb = fleetdb_open(files, x.observed ? obs : NULL, &err);
    x.q = fleetdb_query(x.fdb);
    if (!x.q) {
        fprintf(stderr, "rayfleetctl explain: cannot open %s read-only: %s\n", files->path[0],
                err_str(err));
        free(files);
        return 1;
    }
    // --context of a member: its files hold the rows of that cluster only (its controllers run
    // with --cluster <member name>, cli/launch.c), so look for the object there
    char member[FLEETDB_NAME_MAX];
    snprintf(member, sizeof(member), "%s", context ? files->set[0] : "");
    json_t *members = json_array(); /* the members whose files are read */
    for (size_t k = 0; members && k < files->n; k++)
        if (files->set[k][0] && (k == 0 || strcmp(files->set[k], files->set[k - 1]) != 0))
            json_array_append_new(members, json_string(files->set[k]));
    free(files);
    store_query_set_timeout(x.q, EXPLAIN_TIMEOUT_MS);
    int code = 1;
    const char *cluster = args_str(&a, "cluster") ? args_str(&a, "cluster")
                          : member[0]             ? member
                                                  : NULL;
    if (members && s_clusters(&x, cluster, members) == 0)
        code = !strcmp(x.kind->group, "ray.io") ? s_explain_ray(&x) : s_explain_object(&x);
    json_decref(members);
    json_decref(x.clusters);
    fleetdb_close(&x.fdb);
    return code;
}

/* ---- drift ------------------------------------------------------------------------------- */

static const args_opt_t s_drift_opts[] = {
    {"state-dir", "DIR",
     "State directory of 'rayfleetctl up' (default " LAUNCH_DEFAULT_STATE_DIR "): reads "
     "scheduler.db and observed.db."},
    {"namespace", "NS", "Only Ray objects in this namespace; also -n NS."},
    {"output", "FORMAT", "table (default), json, jsonl or csv."},
    {NULL, NULL, NULL},
};

#define S_DRIFT_COLS 9
static const char *const s_drift_names[S_DRIFT_COLS] = {
    "cluster", "namespace", "raycluster", "generation", "child", "want", "have", "drift", "reason"};
#define S_NAME_LEN_MAX 512 /* longest cluster, namespace or object name drift handles */
#define S_DRIFT_UNOBSERVED "unobserved" /* drift of a child of a kind the watcher does not list */
#define S_DRIFT_SPEC_REASON "from the spec (no desired rows)" /* reason of a spec-only row */
#define S_DRIFT_EXTRA_REASON "observed, not wanted" /* reason of an unwanted observed child */

/* One drift run: the connection, the output and the totals. */
typedef struct {
    s_ex_t x; /* the read-only connection */
    const char *obs; /* "observed." (observed.db attached) or "" (observed.db is main) */
    sql_out_t *out; /* the rows */
    int drifting; /* child counts whose have differs from want */
    int owners; /* Ray objects listed */
    int unobserved; /* wanted children of kinds the watcher does not observe */
} s_drift_t;

/* True for the child kinds the watcher lists (so `have` is known). */
static bool s_drift_watched(const char *kind)
{
    return !strcmp(kind, "Pod") || !strcmp(kind, "Service") || !strcmp(kind, "Job");
}

/* Counts the observed children of (cluster, ns, rc) that are not being deleted into `counts`:
 * "head pod", "workers GROUP", and either "head service" (spec mode) or "KIND NAME" for each
 * Service and Job (by_name, desired mode). Returns 0, or 1 on a query error (printed). */
static int s_drift_children(s_drift_t *d, const char *cluster, const char *ns, const char *rc,
                            bool by_name, json_t *counts)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT kind, name, deleting, json FROM %sobserved_objects WHERE cluster = ?1 AND "
             "namespace = ?2 AND owner_kind = 'RayCluster' AND owner_name = ?3 AND kind IN "
             "('Pod', 'Service', 'Job')",
             d->obs);
    sqlite3_stmt *st = s_prepare(&d->x, sql);
    if (!st)
        return 1;
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rc, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *js = (const char *)sqlite3_column_text(st, 3);
        size_t len = (size_t)sqlite3_column_bytes(st, 3);
        if (!kind || !name || sqlite3_column_int64(st, 2) != 0)
            continue;
        json_t *o = NULL;
        buf_t err;
        buf_init(&err, 256);
        if (js && len <= EXPLAIN_OBJECT_MAX)
            jx_parse(js, len, "observed", &o, &err);
        buf_free(&err);
        json_t *labels = jx_get(o, "metadata.labels");
        const char *type = json_string_value(json_object_get(labels, LABEL_NODE_TYPE));
        const char *group = json_string_value(json_object_get(labels, LABEL_GROUP));
        char child[S_GROUP_MAX + S_NAME_LEN_MAX] = "";
        if (!strcmp(kind, "Pod") && type && !strcmp(type, NAMES_NODE_HEAD))
            snprintf(child, sizeof(child), "head pod");
        else if (!strcmp(kind, "Pod") && type && !strcmp(type, NAMES_NODE_WORKER) && group)
            snprintf(child, sizeof(child), "workers %s", group);
        else if (!by_name && !strcmp(kind, "Service") && type && !strcmp(type, NAMES_NODE_HEAD))
            snprintf(child, sizeof(child), "head service");
        else if (by_name && strcmp(kind, "Pod") != 0)
            snprintf(child, sizeof(child), "%s %s", kind, name);
        if (child[0])
            json_object_set_new(
                counts, child,
                json_integer(json_integer_value(json_object_get(counts, child)) + 1));
        json_decref(o);
    }
    sqlite3_finalize(st);
    return 0;
}

/* Writes one output row; have_known false: the watcher does not observe the kind. Returns 0 or
 * 1. */
static int s_drift_emit(s_drift_t *d, const char *c, const char *ns, const char *nm, bool has_gen,
                        int64_t gen, const char *child, int64_t want, bool have_known, int64_t have,
                        const char *reason)
{
    char dd[32];
    const char *dt = "0";
    if (!have_known) {
        dt = S_DRIFT_UNOBSERVED;
        d->unobserved++;
    } else if (have != want) {
        snprintf(dd, sizeof(dd), "%+" PRId64, have - want);
        dt = dd;
        d->drifting++;
    }
    sql_val_t vals[S_DRIFT_COLS] = {
        {.type = SQLITE_TEXT, .s = c, .len = strlen(c)},
        {.type = SQLITE_TEXT, .s = ns, .len = strlen(ns)},
        {.type = SQLITE_TEXT, .s = nm, .len = strlen(nm)},
        {.type = has_gen ? SQLITE_INTEGER : SQLITE_NULL, .i = gen},
        {.type = SQLITE_TEXT, .s = child, .len = strlen(child)},
        {.type = SQLITE_INTEGER, .i = want},
        {.type = have_known ? SQLITE_INTEGER : SQLITE_NULL, .i = have},
        {.type = SQLITE_TEXT, .s = dt, .len = strlen(dt)},
        {.type = SQLITE_TEXT, .s = reason, .len = strlen(reason)},
    };
    return sql_out_row(d->out, vals) != 0;
}

/* Writes the observed children of an owner that no desired row asked for (`left`), want 0. */
static int s_drift_leftovers(s_drift_t *d, const char *c, const char *ns, const char *nm,
                             bool has_gen, int64_t gen, json_t *left)
{
    int code = 0;
    const char *child;
    json_t *v;
    json_object_foreach(left, child, v)
    {
        if (s_drift_emit(d, c, ns, nm, has_gen, gen, child, 0, true, json_integer_value(v),
                         S_DRIFT_EXTRA_REASON) != 0)
            code = 1;
    }
    return code;
}

/* Desired mode: every desired row of a RayCluster (scheduler.db) against observed.db. Returns
 * 0 or 1. */
static int s_drift_desired(s_drift_t *d, const char *only_ns)
{
    sqlite3_stmt *st = s_prepare(
        &d->x,
        "SELECT d.cluster, d.namespace, d.owner_name, o.generation, d.child_kind, d.child_name, "
        "d.json, d.reason FROM desired_objects d LEFT JOIN observed.observed_objects o ON "
        "o.cluster = d.cluster AND o.kind = d.owner_kind AND o.namespace = d.namespace AND "
        "o.name = d.owner_name WHERE d.owner_kind = 'RayCluster' AND (?1 IS NULL OR d.namespace "
        "= ?1) ORDER BY d.cluster, d.namespace, d.owner_name, d.child_kind <> 'Pod', "
        "d.child_name <> 'head', d.child_kind, d.child_name");
    if (!st)
        return 1;
    if (only_ns)
        sqlite3_bind_text(st, 1, only_ns, -1, SQLITE_STATIC);
    int code = 0;
    char cur[3][S_NAME_LEN_MAX] = {"", "", ""};
    bool cur_gen = false;
    int64_t gen = 0;
    json_t *have = NULL, *left = NULL;
    while (!code && sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        const char *ns = (const char *)sqlite3_column_text(st, 1);
        const char *nm = (const char *)sqlite3_column_text(st, 2);
        const char *kind = (const char *)sqlite3_column_text(st, 4);
        const char *cname = (const char *)sqlite3_column_text(st, 5);
        const char *js = (const char *)sqlite3_column_text(st, 6);
        const char *reason = (const char *)sqlite3_column_text(st, 7);
        if (!c || !ns || !nm || !kind || !cname || strlen(c) >= S_NAME_LEN_MAX ||
            strlen(ns) >= S_NAME_LEN_MAX || strlen(nm) >= S_NAME_LEN_MAX)
            continue;
        if (!have || strcmp(c, cur[0]) || strcmp(ns, cur[1]) || strcmp(nm, cur[2])) {
            if (have)
                code |= s_drift_leftovers(d, cur[0], cur[1], cur[2], cur_gen, gen, left);
            json_decref(have);
            json_decref(left);
            snprintf(cur[0], sizeof(cur[0]), "%s", c);
            snprintf(cur[1], sizeof(cur[1]), "%s", ns);
            snprintf(cur[2], sizeof(cur[2]), "%s", nm);
            cur_gen = sqlite3_column_type(st, 3) == SQLITE_INTEGER;
            gen = sqlite3_column_int64(st, 3);
            have = json_object();
            d->owners++;
            if (!have || s_drift_children(d, c, ns, nm, true, have) != 0) {
                code = 1;
                break;
            }
            left = json_copy(have);
            if (!left) {
                code = 1;
                break;
            }
        }
        int64_t want = 1;
        json_t *wj = NULL;
        buf_t err;
        buf_init(&err, 256);
        if (js && jx_parse(js, strlen(js), "desired", &wj, &err) == 0 &&
            json_is_integer(json_object_get(wj, "want")))
            want = json_integer_value(json_object_get(wj, "want"));
        buf_free(&err);
        json_decref(wj);
        char child[S_GROUP_MAX + S_NAME_LEN_MAX];
        bool pod = !strcmp(kind, "Pod");
        if (pod && !strcmp(cname, "head"))
            snprintf(child, sizeof(child), "head pod");
        else if (pod)
            snprintf(child, sizeof(child), "workers %s", cname);
        else
            snprintf(child, sizeof(child), "%s %s", kind, cname);
        bool known = s_drift_watched(kind);
        int64_t hv = json_integer_value(json_object_get(have, child));
        json_object_del(left, child);
        code |=
            s_drift_emit(d, c, ns, nm, cur_gen, gen, child, want, known, hv, reason ? reason : "");
    }
    if (!code && have)
        code |= s_drift_leftovers(d, cur[0], cur[1], cur[2], cur_gen, gen, left);
    json_decref(have);
    json_decref(left);
    sqlite3_finalize(st);
    return code;
}

/* Lists (into `out`, "ns/name" words) the observed RayClusters without a desired row. Returns 0
 * or 1. */
static int s_drift_missing(s_drift_t *d, const char *only_ns, buf_t *out, int *n)
{
    sqlite3_stmt *st = s_prepare(
        &d->x, "SELECT o.namespace, o.name FROM observed.observed_objects o WHERE o.kind = "
               "'RayCluster' AND o.api_group = 'ray.io' AND (?1 IS NULL OR o.namespace = ?1) AND "
               "NOT EXISTS (SELECT 1 FROM desired_objects d WHERE d.cluster = o.cluster AND "
               "d.namespace = o.namespace AND d.owner_kind = 'RayCluster' AND d.owner_name = "
               "o.name) ORDER BY o.cluster, o.namespace, o.name");
    if (!st)
        return 1;
    if (only_ns)
        sqlite3_bind_text(st, 1, only_ns, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *ns = (const char *)sqlite3_column_text(st, 0);
        const char *nm = (const char *)sqlite3_column_text(st, 1);
        buf_printf(out, " %s/%s", ns ? ns : "", nm ? nm : "");
        (*n)++;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Spec mode (no desired rows): want derived from each observed RayCluster's spec. Returns 0 or
 * 1. */
static int s_drift_spec(s_drift_t *d, const char *only_ns)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT cluster, namespace, name, generation, json FROM %sobserved_objects WHERE "
             "kind = 'RayCluster' AND api_group = 'ray.io' AND (?1 IS NULL OR namespace = ?1) "
             "ORDER BY cluster, namespace, name",
             d->obs);
    sqlite3_stmt *st = s_prepare(&d->x, sql);
    if (!st)
        return 1;
    if (only_ns)
        sqlite3_bind_text(st, 1, only_ns, -1, SQLITE_STATIC);
    int code = 0;
    while (!code && sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        const char *ns = (const char *)sqlite3_column_text(st, 1);
        const char *nm = (const char *)sqlite3_column_text(st, 2);
        int64_t gen = sqlite3_column_int64(st, 3);
        const char *js = (const char *)sqlite3_column_text(st, 4);
        size_t len = (size_t)sqlite3_column_bytes(st, 4);
        json_t *rc = NULL;
        buf_t perr;
        buf_init(&perr, 256);
        if (!c || !ns || !nm || !js || len > EXPLAIN_OBJECT_MAX ||
            jx_parse(js, len, "observed", &rc, &perr) != 0) {
            buf_free(&perr);
            continue;
        }
        buf_free(&perr);
        d->owners++;
        json_t *want = json_object();
        json_t *have = json_object();
        json_object_set_new(want, "head pod", json_integer(rcstatus_head_wanted(rc)));
        json_object_set_new(want, "head service", json_integer(1));
        size_t i;
        json_t *wg;
        json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, wg)
        {
            char child[S_GROUP_MAX + 16];
            int64_t r = 0, h = 0;
            snprintf(child, sizeof(child), "workers %s", jx_str(wg, "groupName", ""));
            json_object_set_new(want, child, json_integer(s_group_want(rc, wg, &r, &h)));
        }
        if (s_drift_children(d, c, ns, nm, false, have) != 0)
            code = 1;
        const char *child;
        json_t *v;
        json_object_foreach(have, child, v)
        {
            if (!json_object_get(want, child))
                json_object_set_new(want, child, json_integer(0));
        }
        json_object_foreach(want, child, v)
        {
            if (s_drift_emit(d, c, ns, nm, true, gen, child, json_integer_value(v), true,
                             json_integer_value(json_object_get(have, child)),
                             S_DRIFT_SPEC_REASON) != 0)
                code = 1;
        }
        json_decref(want);
        json_decref(have);
        json_decref(rc);
    }
    sqlite3_finalize(st);
    return code;
}

/* Whether scheduler.db (main) holds any desired row. */
static bool s_drift_has_desired(s_drift_t *d)
{
    sqlite3_stmt *st = s_prepare(&d->x, "SELECT EXISTS (SELECT 1 FROM desired_objects)");
    bool yes = st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) != 0;
    sqlite3_finalize(st);
    return yes;
}

static int s_drift_run(int argc, char **words);

int drift_main(int argc, char **argv)
{
    char **words = s_short_opts(argc, argv);
    if (!words)
        return 1;
    int code = s_drift_run(argc, words);
    free(words);
    return code;
}

/* drift_main() after the argv copy. */
static int s_drift_run(int argc, char **words)
{
    args_t a;
    int pr = args_parse(
        "drift", "[--state-dir DIR] [-n NAMESPACE] [--output FORMAT]",
        "For each Ray object, the children its reconciler wants versus those observed, and the "
        "difference (drift = have - want). want comes from the desired_objects rows the "
        "scheduler writes into scheduler.db on every change of what it wants: per pod group "
        "('head pod', 'workers GROUP') the pod count (replicas x numOfHosts, 0 when suspended), "
        "and each wanted Service, Secret, Ingress, ServiceAccount, Role, RoleBinding or PVC by "
        "name, each with the reason the scheduler gave. have counts the objects in observed.db "
        "owned by the Ray object and not being deleted: pods by their ray.io/node-type and "
        "ray.io/group labels, Services and Jobs by name; the watcher does not observe the other "
        "kinds, so their have is empty and their drift reads 'unobserved'. Observed pod groups "
        "and Services that no row wants are listed with want 0. When scheduler.db has no "
        "desired rows (a scheduler older than this rayfleetctl, or none has run), want is "
        "computed from the RayCluster spec in observed.db alone (head pod 1, head service 1, "
        "each worker group replicas clamped to [minReplicas, maxReplicas] times numOfHosts, 0 "
        "when suspended), and the output says so. Neither mode sees children the watcher has "
        "not listed yet, nor counts a pod in a terminal phase as absent.",
        s_drift_opts, 0, argc, words, &a);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    sql_fmt_t fmt = SQL_OUT_TABLE;
    if (args_has(&a, "output") && sql_parse_format(args_str(&a, "output"), &fmt) != 0) {
        fprintf(stderr,
                "rayfleetctl drift: --output: must be table, json, jsonl or csv (got "
                "'%s')\n",
                args_str(&a, "output"));
        return 2;
    }
    const char *dir =
        args_str(&a, "state-dir") ? args_str(&a, "state-dir") : LAUNCH_DEFAULT_STATE_DIR;
    const char *only_ns = args_str(&a, "namespace");
    char obs[PATH_MAX];
    snprintf(obs, sizeof(obs), "%s/%s", dir, SQL_OBSERVED_DB);
    if (access(obs, F_OK) != 0) {
        fprintf(stderr, "rayfleetctl drift: no observed database at %s (has the watcher run?)\n",
                obs);
        return 1;
    }
    int err = 0;
    s_drift_t d = {.obs = "observed."};
    bool desired = false;
    fleetdb_files_t *files = calloc(1, sizeof(*files));
    if (!files)
        return 1;
    int fr = fleetdb_find(dir, files);
    if (fr == 0 || fr == ERR_TOOBIG) {
        d.x.fdb = fleetdb_open(files, obs, &err);
        d.x.q = fleetdb_query(d.x.fdb);
        if (d.x.q) {
            store_query_set_timeout(d.x.q, EXPLAIN_TIMEOUT_MS);
            desired = s_drift_has_desired(&d);
        }
        if (!desired) {
            fleetdb_close(&d.x.fdb);
            d.x.q = NULL;
        }
    }
    free(files);
    if (!desired) {
        d.obs = "";
        d.x.q = store_query_open(obs, NULL, 0, &err);
        if (!d.x.q) {
            fprintf(stderr, "rayfleetctl drift: cannot open %s read-only: %s\n", obs, err_str(err));
            return 1;
        }
        store_query_set_timeout(d.x.q, EXPLAIN_TIMEOUT_MS);
        if (fmt != SQL_OUT_TABLE)
            fprintf(stderr,
                    "rayfleetctl drift: note: %s has no desired rows (a scheduler older "
                    "than this rayfleetctl, or none has run); want is computed from "
                    "the RayCluster spec in observed.db alone\n",
                    SQL_SCHEDULER_DB);
    }
    d.out = sql_out_new(stdout, fmt, S_DRIFT_COLS, s_drift_names);
    int code = d.out ? 0 : 1;
    if (!code)
        code = desired ? s_drift_desired(&d, only_ns) : s_drift_spec(&d, only_ns);
    buf_t missing;
    buf_init(&missing, EXPLAIN_TEXT_MAX);
    int nmissing = 0;
    if (!code && desired)
        code = s_drift_missing(&d, only_ns, &missing, &nmissing);
    if (!code && fmt == SQL_OUT_TABLE) {
        sql_out_flush(d.out);
        printf("%d RayCluster%s, %d child count%s drifting", d.owners, d.owners == 1 ? "" : "s",
               d.drifting, d.drifting == 1 ? "" : "s");
        if (d.unobserved)
            printf(", %d child%s of kinds the watcher does not observe", d.unobserved,
                   d.unobserved == 1 ? "" : "ren");
        if (desired && fleetdb_scheduler_count(d.x.fdb) > 1)
            printf(" (desired rows of the %zu scheduler replicas' files versus %s)\n",
                   fleetdb_scheduler_count(d.x.fdb), SQL_OBSERVED_DB);
        else if (desired)
            printf(" (desired rows of %s versus %s)\n", SQL_SCHEDULER_DB, SQL_OBSERVED_DB);
        else
            printf(" (computed from the spec in %s alone: %s has no desired rows, the scheduler "
                   "is older than this rayfleetctl or has not run)\n",
                   SQL_OBSERVED_DB, SQL_SCHEDULER_DB);
    }
    if (!code && nmissing)
        fprintf(fmt == SQL_OUT_TABLE ? stdout : stderr,
                "%d RayCluster%s observed without desired rows (not reconciled yet, invalid, or "
                "managed by another controller):%s\n",
                nmissing, nmissing == 1 ? "" : "s", buf_str(&missing));
    buf_free(&missing);
    sql_out_end(&d.out);
    if (d.x.fdb)
        fleetdb_close(&d.x.fdb);
    else
        store_query_close(&d.x.q);
    return code;
}
