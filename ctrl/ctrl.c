/*
 * ctrl: the controller runtime (see ctrl.h).
 */
#include "ctrl.h"

#include "err.h"
#include "evcorr.h"
#include "json.h"
#include "keytab.h"
#include "log.h"
#include "redact.h"
#include "rftime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_REASON_MAX 64 /* longest Event reason kept by a request */
#define S_RETRY_MS 5 /* wait before retrying an intent commit that failed */
/* The API server's generated names (names.SimpleNameGenerator): the base cut to 63 - 5
 * characters, then 5 characters of this alphabet (k8s.io/apimachinery util/rand). */
#define S_GEN_BASE_MAX 58
#define S_GEN_RANDOM 5
static const char s_gen_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

/* What a write's answer is read for (s_result(), s_event_cb()): 2xx bodies are decoded to these
 * paths only (k8s.h `keep`); error Status bodies stay whole. GETs decode everything. */
static const char *const s_write_keep[] = {"metadata.name", "metadata.uid",
                                           "metadata.resourceVersion", NULL};

typedef struct ctrl_req req_t;

/* An ensured child of a key: created or found existing at `t`. */
typedef struct {
    char *entry; /* "Kind/name" */
    int64_t t; /* when, loop ms */
} ens_t;

/* The state the runtime keeps per key between passes. */
typedef struct {
    bool has_cause; /* a bus event is noted for the next pass */
    char cause_rv[CTRL_RV_MAX]; /* its resourceVersion */
    uint64_t cause_eid; /* its event id */
    int64_t cause_gen; /* its generation, 0 unknown */
    bool has_memo; /* memo holds */
    char memo_uid[CTRL_MEMO_MAX]; /* ... for this uid */
    char memo_rv[CTRL_MEMO_MAX]; /* ... and this resourceVersion */
    char memo[CTRL_MEMO_MAX]; /* the kind's memo */
    bool has_desired; /* desired rows were written with this hash */
    char desired[CTRL_MEMO_MAX]; /* hash of the desired set last written */
    char *status_rv; /* observed resourceVersion the last status write was sent against, or NULL */
    char *status_text; /* the status sent then, compact JSON (a tree would cost kilobytes) */
    /* status_precondition kinds: the observed resourceVersion a write of the object itself (its
     * status or metadata) succeeded against; while observed.db still shows it, the observed copy
     * predates our own write and a pass on it would only be refused ("" none) */
    char self_rv[CTRL_RV_MAX];
    /* status_echo_quiet kinds: the resourceVersion our last /status write of the object
     * returned; the watch event at exactly that version is its echo ("" none) */
    char echo_rv[CTRL_RV_MAX];
    ens_t *ens; /* ensured children */
    size_t nens, capens; /* used and allocated */
} kstate_t;

struct ctrl {
    loop_t *loop; /* the event loop (borrowed) */
    ctrl_config_t cfg; /* settings (pointers borrowed) */
    const ctrl_kind_t *kind; /* the kind */
    char cluster[CTRL_KEY_MAX]; /* member cluster name (copy) */
    char api_version[128]; /* "group/version" of the kind */
    keytab_t *keys; /* key -> kstate_t */
    expect_t *expect; /* expectations by name */
    size_t ncauses; /* keys with has_cause */
    size_t nmemos; /* keys with has_memo */
    ctrl_pass_t *passes; /* passes in flight (list) */
    req_t *reqs; /* requests in flight (list) */
    uint64_t event_seq; /* makes Event names unique */
    evcorr_t *evcorr; /* the Event correlator (client-go's: dedup, aggregation, spam filter) */
    ctrl_stats_t stats; /* counters */
    /* writes whose intent row is queued, sent by s_release_hook() once it is committed (FIFO) */
    struct ctrl_req *held_head, *held_tail;
    bool hooked; /* s_release_hook() is a before-sleep hook of the loop */
    bool retry_armed; /* a timer wakes the loop to retry a commit that failed */
    workq_t *queue; /* the keys' work queue (ctrl_set_queue()), or NULL */
};

struct ctrl_req {
    req_t *next, *prev; /* list links */
    ctrl_t *c; /* owner */
    ctrl_pass_t *p; /* the pass waiting for it, or NULL (Events) */
    bool linked; /* in c->reqs */
    ctrl_verb_t what; /* the verb */
    int64_t id; /* k8s request id */
    int64_t t0; /* start, monotonic ms */
    char group[64]; /* API group of the target */
    char kind[32]; /* kind of the target */
    char ns[CTRL_KEY_MAX]; /* namespace of the target */
    char name[CTRL_KEY_MAX]; /* name, or generateName prefix */
    char noun[32]; /* "head Pod", "worker Pod", "service", ... for messages */
    char fail_event[2 * CTRL_KEY_MAX +
                    64]; /* the failure Event's text before ", <error>", "" none */
    bool has_exp; /* exp_group was given (it may be "") */
    char exp_group[CTRL_KEY_MAX]; /* expectation group, "" none */
    char ensure[CTRL_KEY_MAX]; /* ensured entry to record on success, "" none */
    const char *ok_reason; /* event reason on success, or NULL (static string) */
    const char *fail_reason; /* event reason on failure, or NULL (static string) */
    const char *rcs_reason; /* the pass's failure reason on failure, or NULL (static string) */
    char event_reason[S_REASON_MAX]; /* CTRL_EVENT: the reason of the Event */
    char ikind[32]; /* CTRL_EVENT: the kind of the involved object */
    bool ev_patch; /* CTRL_EVENT: a patch of the recorded Event (a repeat), not a create */
    json_t *ev_full; /* CTRL_EVENT patch: the whole Event, created should the patch find none */
    int64_t ev_count; /* CTRL_EVENT: the Event's count after this occurrence */
    char ev_key[EVCORR_KEY_LEN]; /* CTRL_EVENT: the correlator's key (forgotten on failure) */
    json_t *body; /* request body for the audit summary, or NULL */
    actlog_cause_t cause; /* copied cause */
    char cause_key[CTRL_KEY_MAX]; /* storage of cause.key */
    char cause_rv[CTRL_RV_MAX]; /* storage of cause.resource_version */
    char corr[ACTLOG_CORR_LEN]; /* correlation id */
    void (*on_get)(ctrl_pass_t *p, const k8s_result_t *res); /* CTRL_GET: the reader's handler */
    void (*on_result)(ctrl_pass_t *p, const k8s_result_t *res); /* other verbs, or NULL */
    req_t *wnext; /* next request queued behind the pass's window */
    char r_group[64]; /* target resource: API group */
    char r_version[16]; /* API version */
    char r_resource[64]; /* resource (plural) */
    char r_sub[16]; /* subresource, "" none */
    char propagation[16]; /* CTRL_DELETE: propagationPolicy, "" none */
    char uid[CTRL_RV_MAX]; /* CTRL_DELETE: preconditions.uid, "" none */
    bool r_named; /* the request URL names the object (q->name) */
    k8s_client_t *client; /* another cluster's client (ctrl_req_t.client), or NULL */
    char cluster[64]; /* with client: that cluster's name, for the audit row */
    bool intent; /* its intent row was recorded: the result is written over it */
    char iname[CTRL_KEY_MAX]; /* the target name of the intent row */
    bool chosen; /* CTRL_CREATE of a generateName body: the runtime chose q->name */
    bool checked; /* chosen: the 409 AlreadyExists was checked with a GET */
    bool resent; /* chosen: 409 of our own object (a resent create): counts as created */
    req_t *hnext; /* next held request (c->held_head) */
};

static void s_advance(ctrl_pass_t *p);
static void s_begin(ctrl_pass_t *p);
static void s_on_live(ctrl_pass_t *p, const k8s_result_t *res);
static void s_pump(ctrl_pass_t *p);
static void s_fire(req_t *q, bool in_caller);
static bool s_hook(ctrl_t *c);

/* ---------- keys ---------- */

int ctrl_key(const char *cluster, const char *ns, const char *name, char *out, size_t size)
{
    if (!cluster || !ns || !name || !out)
        return ERR_INVAL;
    size_t a = strlen(cluster), b = strlen(ns), c = strlen(name);
    if (a + b + c + 3 > size || a + b + c + 2 > INT32_MAX)
        return ERR_TOOBIG;
    memcpy(out, cluster, a);
    out[a] = '/';
    memcpy(out + a + 1, ns, b);
    out[a + 1 + b] = '/';
    memcpy(out + a + b + 2, name, c + 1);
    return (int)(a + b + c + 2);
}

int ctrl_parse_key(const char *key, char *cluster, char *ns, char *name)
{
    if (!key || !cluster || !ns || !name)
        return ERR_INVAL;
    const char *a = strchr(key, '/');
    const char *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || a == key || b == a + 1 || !b[1] || strchr(b + 1, '/') ||
        strlen(key) >= CTRL_KEY_MAX)
        return ERR_INVAL;
    memcpy(cluster, key, (size_t)(a - key));
    cluster[a - key] = '\0';
    memcpy(ns, a + 1, (size_t)(b - a - 1));
    ns[b - a - 1] = '\0';
    memcpy(name, b + 1, strlen(b + 1) + 1);
    return 0;
}

/* ---------- per-key state ---------- */

static void s_status_forget(kstate_t *ks)
{
    free(ks->status_rv);
    free(ks->status_text);
    ks->status_rv = NULL;
    ks->status_text = NULL;
}

static void s_kstate_free(void *val)
{
    kstate_t *ks = val;
    s_status_forget(ks);
    for (size_t i = 0; i < ks->nens; i++)
        free(ks->ens[i].entry);
    free(ks->ens);
    free(ks);
}

/* The state of `key`, created empty when `create` and missing; NULL when absent or out of
 * memory. */
static kstate_t *s_kstate(ctrl_t *c, const char *key, bool create)
{
    kstate_t *ks = keytab_get(c->keys, key);
    if (ks || !create)
        return ks;
    ks = calloc(1, sizeof(*ks));
    if (!ks || keytab_put(c->keys, key, ks) != 0)
        return NULL;
    return ks;
}

/* Forgets everything kept for `key` (the object is gone). */
static void s_forget_key(ctrl_t *c, const char *key)
{
    kstate_t *ks = keytab_get(c->keys, key);
    if (ks) {
        c->ncauses -= ks->has_cause;
        c->nmemos -= ks->has_memo;
        keytab_del(c->keys, key);
    }
    expect_forget_key(c->expect, key);
}

static bool s_clear_cause(const char *key, void *val, void *arg)
{
    ((kstate_t *)val)->has_cause = false;
    return false;
}

static bool s_clear_memo(const char *key, void *val, void *arg)
{
    ((kstate_t *)val)->has_memo = false;
    return false;
}

static void s_ensure_put(ctrl_t *c, const char *key, const char *entry)
{
    kstate_t *ks = s_kstate(c, key, true);
    if (!ks)
        return;
    int64_t now = loop_now(c->loop);
    for (size_t i = 0; i < ks->nens; i++) {
        if (!strcmp(ks->ens[i].entry, entry)) {
            ks->ens[i].t = now;
            return;
        }
    }
    if (ks->nens == ks->capens) {
        size_t cap = ks->capens ? ks->capens * 2 : 4;
        ens_t *v = realloc(ks->ens, cap * sizeof(*v));
        if (!v)
            return;
        ks->ens = v;
        ks->capens = cap;
    }
    size_t n = strlen(entry) + 1;
    char *e = malloc(n);
    if (!e)
        return;
    memcpy(e, entry, n);
    ks->ens[ks->nens++] = (ens_t){.entry = e, .t = now};
}

bool ctrl_ensured(ctrl_pass_t *p, const char *entry, int64_t max_age_ms)
{
    kstate_t *ks = keytab_get(p->c->keys, p->key);
    for (size_t i = 0; ks && i < ks->nens; i++) {
        if (!strcmp(ks->ens[i].entry, entry))
            return max_age_ms <= 0 || loop_now(p->c->loop) - ks->ens[i].t < max_age_ms;
    }
    return false;
}

void ctrl_ensure(ctrl_pass_t *p, const char *entry)
{
    s_ensure_put(p->c, p->key, entry);
}

void ctrl_unensure(ctrl_pass_t *p, const char *prefix)
{
    kstate_t *ks = keytab_get(p->c->keys, p->key);
    size_t n = strlen(prefix), j = 0;
    for (size_t i = 0; ks && i < ks->nens; i++) {
        if (strncmp(ks->ens[i].entry, prefix, n) == 0)
            free(ks->ens[i].entry);
        else
            ks->ens[j++] = ks->ens[i];
    }
    if (ks)
        ks->nens = j;
}

const char *ctrl_memo_get(ctrl_pass_t *p, const char *uid, const char *rv)
{
    kstate_t *ks = keytab_get(p->c->keys, p->key);
    if (!ks || !ks->has_memo || !uid || !rv || !rv[0] || strcmp(ks->memo_uid, uid) != 0 ||
        strcmp(ks->memo_rv, rv) != 0)
        return NULL;
    return ks->memo;
}

void ctrl_memo_put(ctrl_pass_t *p, const char *uid, const char *rv, const char *memo)
{
    ctrl_t *c = p->c;
    if (!uid || !rv || !memo || strlen(uid) >= CTRL_MEMO_MAX || strlen(rv) >= CTRL_MEMO_MAX ||
        strlen(memo) >= CTRL_MEMO_MAX)
        return;
    if (c->nmemos >= CTRL_MAX_MEMOS) {
        keytab_sweep(c->keys, s_clear_memo, NULL);
        c->nmemos = 0;
    }
    kstate_t *ks = s_kstate(c, p->key, true);
    if (!ks)
        return;
    if (!ks->has_memo)
        c->nmemos++;
    ks->has_memo = true;
    snprintf(ks->memo_uid, sizeof(ks->memo_uid), "%s", uid);
    snprintf(ks->memo_rv, sizeof(ks->memo_rv), "%s", rv);
    snprintf(ks->memo, sizeof(ks->memo), "%s", memo);
}

/* ---------- expectations ---------- */

void ctrl_expect(ctrl_pass_t *p, const char *group, const char *name, bool create)
{
    expect_record(p->c->expect, p->key, group, name, create, loop_now(p->c->loop));
}

bool ctrl_expect_satisfied(ctrl_pass_t *p, const char *group, expect_seen_fn *seen, void *arg)
{
    if (expect_satisfied(p->c->expect, p->key, group, seen, arg, loop_now(p->c->loop)))
        return true;
    p->c->stats.skipped_groups++;
    p->short_requeue = true;
    return false;
}

/* ---------- requests ---------- */

/* Copies `cause` (NULL: none) into q, its strings into q's storage; `key` replaces a NULL key. */
static void s_req_cause(req_t *q, const actlog_cause_t *cause, const char *key)
{
    if (!cause)
        return;
    snprintf(q->cause_key, sizeof(q->cause_key), "%s", cause->key ? cause->key : key);
    snprintf(q->cause_rv, sizeof(q->cause_rv), "%s",
             cause->resource_version ? cause->resource_version : "");
    q->cause = *cause;
    q->cause.key = q->cause_key;
    q->cause.resource_version = q->cause_rv[0] ? q->cause_rv : NULL;
}

/* A request of the pass for the verb, target and audit fields of `r` (NULL on out of memory). */
static req_t *s_req_new(ctrl_pass_t *p, const ctrl_req_t *r)
{
    req_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->c = p->c;
    q->p = p;
    q->what = r->verb;
    q->t0 = loop_clock_ms();
    snprintf(q->group, sizeof(q->group), "%s", r->group ? r->group : "");
    snprintf(q->kind, sizeof(q->kind), "%s", r->kind ? r->kind : "");
    snprintf(q->ns, sizeof(q->ns), "%s", p->ns);
    snprintf(q->name, sizeof(q->name), "%s", r->name ? r->name : "");
    snprintf(q->noun, sizeof(q->noun), "%s", r->noun ? r->noun : q->kind);
    snprintf(q->fail_event, sizeof(q->fail_event), "%s", r->fail_event ? r->fail_event : "");
    s_req_cause(q, &p->cause, p->key);
    memcpy(q->corr, p->corr, sizeof(q->corr));
    q->ok_reason = r->ok_reason;
    q->fail_reason = r->fail_reason;
    q->rcs_reason = r->rcs_reason;
    q->has_exp = r->exp_group != NULL;
    snprintf(q->exp_group, sizeof(q->exp_group), "%s", r->exp_group ? r->exp_group : "");
    snprintf(q->ensure, sizeof(q->ensure), "%s", r->ensure ? r->ensure : "");
    q->on_get = r->on_get;
    q->on_result = r->on_result;
    snprintf(q->r_group, sizeof(q->r_group), "%s", r->group ? r->group : "");
    snprintf(q->r_version, sizeof(q->r_version), "%s", r->version ? r->version : "");
    snprintf(q->r_resource, sizeof(q->r_resource), "%s", r->resource ? r->resource : "");
    snprintf(q->r_sub, sizeof(q->r_sub), "%s", r->subresource ? r->subresource : "");
    snprintf(q->propagation, sizeof(q->propagation), "%s", r->propagation ? r->propagation : "");
    snprintf(q->uid, sizeof(q->uid), "%s", r->uid ? r->uid : "");
    q->r_named = r->verb != CTRL_CREATE;
    if (r->client) {
        q->client = r->client;
        snprintf(q->cluster, sizeof(q->cluster), "%s", r->cluster ? r->cluster : "");
    }
    return q;
}

static void s_req_link(ctrl_t *c, req_t *q)
{
    q->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = q;
    c->reqs = q;
    q->linked = true;
    c->stats.requests_inflight++;
}

/* Takes q out of c->reqs (when in). */
static void s_req_free_link(ctrl_t *c, req_t *q)
{
    if (q->linked) {
        if (q->prev)
            q->prev->next = q->next;
        else if (c->reqs == q)
            c->reqs = q->next;
        if (q->next)
            q->next->prev = q->prev;
        q->next = q->prev = NULL;
        q->linked = false;
        c->stats.requests_inflight--;
    }
}

static void s_req_free(ctrl_t *c, req_t *q)
{
    s_req_free_link(c, q);
    json_decref(q->body);
    json_decref(q->ev_full);
    free(q);
}

void ctrl_fail(ctrl_pass_t *p, const char *reason, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->fail_reason = reason;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&p->fail_msg, fmt, ap);
    va_end(ap);
}

/* The verb of an audit row for request verb `what`. */
static const char *s_verb(ctrl_verb_t what)
{
    return what == CTRL_CREATE                             ? "create"
           : what == CTRL_DELETE                           ? "delete"
           : what == CTRL_PATCH || what == CTRL_JSON_PATCH ? "patch"
           : what == CTRL_UPDATE                           ? "update"
                                                           : "status";
}

/* The audit row of request q's result: written over its intent row when it has one. */
static void s_audit(ctrl_t *c, req_t *q, const char *verb, const char *name, const char *uid,
                    const char *reason, const char *message, long status, const char *error)
{
    if (!c->cfg.audit)
        return;
    actlog_entry_t e = {.cluster = q->cluster[0] ? q->cluster : c->cluster,
                        .group = q->group,
                        .kind = q->kind,
                        .ns = q->ns,
                        .name = name,
                        .uid = uid,
                        .verb = verb,
                        .reason = reason,
                        .message = message,
                        .cause = &q->cause,
                        .correlation_id = q->corr,
                        .request = q->body,
                        .result_status = (int)status,
                        .result_error = error,
                        .latency_ms = loop_clock_ms() - q->t0};
    if (q->intent)
        actlog_resolve(c->cfg.audit, q->iname, &e);
    else
        actlog_record(c->cfg.audit, &e);
}

/* Records the intent row of write q (before it is sent; committed by s_release_hook()). */
static void s_intent(ctrl_t *c, req_t *q)
{
    snprintf(q->iname, sizeof(q->iname), "%s", q->name);
    char msg[CTRL_MSG_MAX];
    snprintf(msg, sizeof(msg), "Sending: %s %s %s/%s", s_verb(q->what), q->noun, q->ns, q->name);
    q->intent = actlog_intent(c->cfg.audit,
                              &(actlog_entry_t){.cluster = q->cluster[0] ? q->cluster : c->cluster,
                                                .group = q->group,
                                                .kind = q->kind,
                                                .ns = q->ns,
                                                .name = q->name,
                                                .verb = s_verb(q->what),
                                                .reason = q->ok_reason,
                                                .message = msg,
                                                .cause = &q->cause,
                                                .correlation_id = q->corr,
                                                .request = q->body}) == 0;
}

/* ---------- events ---------- */

static void s_event_send(ctrl_t *c, req_t *q);

static void s_event_cb(k8s_client_t *k, const k8s_result_t *res, void *arg)
{
    req_t *q = arg;
    ctrl_t *c = q->c;
    if (q->ev_patch && res->err == ERR_NOTFOUND && q->ev_full) {
        /* the recorded Event is gone (expired or deleted): create it anew, as client-go does,
         * under the same name and with the count reached */
        s_req_free_link(c, q);
        q->ev_patch = false;
        json_decref(q->body);
        q->body = q->ev_full;
        q->ev_full = NULL;
        s_event_send(c, q);
        return;
    }
    char msg[CTRL_KEY_MAX + 160];
    const json_t *whole = q->ev_full ? q->ev_full : q->body; /* a patch names no object */
    snprintf(msg, sizeof(msg), "Recorded Event %s on %s %s/%s%s", q->event_reason, q->ikind, q->ns,
             jx_str(whole, "involvedObject.name", ""), q->ev_count > 1 ? " again" : "");
    if (q->ev_count > 1) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, " (count %lld)", (long long)q->ev_count);
    }
    s_audit(c, q, q->ev_patch ? "patch" : "create", q->name,
            jx_str(res->body, "metadata.uid", NULL), q->event_reason, msg, res->status,
            res->err ? res->message : NULL);
    if (res->err) {
        /* not recorded: the next occurrence creates the Event anew */
        evcorr_forget(c->evcorr, q->ev_key);
        log_warn("event not recorded", "reason", q->event_reason, "error", err_str(res->err),
                 "correlation_id", q->corr, NULL);
    }
    s_req_free(c, q);
}

/* Sends Event request q (a create, or with ev_patch a merge patch of count, lastTimestamp and
 * message) and links it. */
static void s_event_send(ctrl_t *c, req_t *q)
{
    k8s_res_t res = {.version = "v1",
                     .resource = "events",
                     .namespace_ = q->ns,
                     .name = q->ev_patch ? q->name : NULL};
    const k8s_opts_t o = {.keep = s_write_keep};
    q->t0 = loop_clock_ms();
    int64_t id = q->ev_patch
                     ? k8s_patch(c->cfg.client, &res, K8S_PATCH_MERGE, q->body, &o, s_event_cb, q)
                     : k8s_create(c->cfg.client, &res, q->body, &o, s_event_cb, q);
    if (q->ev_patch)
        c->stats.events_patched++;
    else
        c->stats.events++;
    if (id < 0) {
        evcorr_forget(c->evcorr, q->ev_key);
        s_audit(c, q, q->ev_patch ? "patch" : "create", q->name, NULL, q->event_reason,
                "Event not sent", 0, err_str((int)id));
        s_req_free(c, q);
        return;
    }
    q->id = id;
    s_req_link(c, q);
}

void ctrl_event_about(ctrl_t *c, const ctrl_ref_t *obj, const actlog_cause_t *cause,
                      const char *corr, bool warning, const char *reason, const char *action,
                      const char *msg)
{
    if (!c || !obj || !reason || !msg || !c->cfg.events || !c->cfg.client)
        return;
    const char *ns = obj->ns ? obj->ns : "";
    const char *type = warning ? "Warning" : "Normal";
    const char *instance = c->kind->instance ? c->kind->instance : "";
    char ename[CTRL_KEY_MAX];
    int64_t wall_ms = rftime_now_ms();
    uint64_t nano = (uint64_t)wall_ms * RFTIME_NS_PER_MS + ++c->event_seq;
    snprintf(ename, sizeof(ename), "%.400s.%llx", obj->name ? obj->name : "",
             (unsigned long long)nano);
    /* client-go's correlator: drop (spam), patch the recorded one (a repeat), or create */
    evcorr_result_t cr;
    evcorr_correlate(c->evcorr,
                     &(evcorr_event_t){.component = c->kind->component,
                                       .api_version = obj->api_version,
                                       .kind = obj->kind,
                                       .ns = ns,
                                       .name = obj->name,
                                       .uid = obj->uid,
                                       .type = type,
                                       .reason = reason,
                                       .message = msg,
                                       .reporting_controller = c->kind->component,
                                       .reporting_instance = instance},
                     ename, wall_ms, &cr);
    if (cr.action == EVCORR_SKIP) {
        c->stats.events_dropped++;
        log_debug("event dropped by the spam filter", "reason", reason, "kind",
                  obj->kind ? obj->kind : "", "object", obj->name ? obj->name : "", "namespace", ns,
                  "correlation_id", corr ? corr : "", NULL);
        return;
    }
    char text[CTRL_MSG_MAX];
    snprintf(text, sizeof(text), "%s%s", cr.combined ? EVCORR_COMBINED_PREFIX : "", msg);
    char now[RFTIME_BUF], first[RFTIME_BUF];
    rftime_format(wall_ms, RFTIME_SEC, now, sizeof(now));
    rftime_format(cr.first_ms, RFTIME_SEC, first, sizeof(first));
    json_t *ev = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:s}, "
        "s:s, s:s, s:I, s:s, s:s, s:s}",
        "apiVersion", "v1", "kind", "Event", "metadata", "name", cr.name, "namespace", ns,
        "involvedObject", "apiVersion", obj->api_version ? obj->api_version : "", "kind",
        obj->kind ? obj->kind : "", "name", obj->name ? obj->name : "", "namespace", ns, "uid",
        obj->uid ? obj->uid : "", "resourceVersion",
        obj->resource_version ? obj->resource_version : "", "reason", reason, "message", text,
        "type", type, "source", "component", c->kind->component, "firstTimestamp", first,
        "lastTimestamp", now, "count", (json_int_t)cr.count, "reportingComponent",
        c->kind->component, "reportingInstance", instance, "action", action ? action : "Reconcile");
    json_t *patch = cr.action == EVCORR_PATCH
                        ? json_pack("{s:I, s:s, s:s}", "count", (json_int_t)cr.count,
                                    "lastTimestamp", now, "message", text)
                        : NULL;
    req_t *q = ev && (cr.action != EVCORR_PATCH || patch) ? calloc(1, sizeof(*q)) : NULL;
    if (!q) {
        evcorr_forget(c->evcorr, cr.key);
        json_decref(ev);
        json_decref(patch);
        return;
    }
    q->c = c;
    q->what = CTRL_EVENT;
    snprintf(q->kind, sizeof(q->kind), "Event");
    snprintf(q->ns, sizeof(q->ns), "%s", ns);
    snprintf(q->name, sizeof(q->name), "%s", cr.name);
    snprintf(q->event_reason, sizeof(q->event_reason), "%s", reason);
    snprintf(q->ikind, sizeof(q->ikind), "%s", obj->kind ? obj->kind : "");
    snprintf(q->ev_key, sizeof(q->ev_key), "%s", cr.key);
    q->ev_count = cr.count;
    s_req_cause(q, cause, "");
    if (corr)
        memcpy(q->corr, corr, sizeof(q->corr));
    if (patch) {
        q->ev_patch = true;
        q->body = patch;
        q->ev_full = ev;
    } else {
        q->body = ev;
    }
    s_event_send(c, q);
}

/* The Event of the pass's object with message `msg`. */
static void s_event_msg(ctrl_pass_t *p, bool warning, const char *reason, const char *action,
                        const char *msg)
{
    ctrl_t *c = p->c;
    p->events_sent++;
    if (c->cfg.capture) {
        json_array_append_new(c->cfg.capture, json_pack("{s:s, s:s}", "event", reason, "msg", msg));
        return;
    }
    ctrl_event_about(
        c,
        &(ctrl_ref_t){.api_version = c->api_version,
                      .kind = c->kind->kind,
                      .ns = p->ns,
                      .name = p->name,
                      .uid = jx_str(p->obj, "metadata.uid", ""),
                      .resource_version = jx_str(p->obj, "metadata.resourceVersion", "")},
        &p->cause, p->corr, warning, reason, action, msg);
}

void ctrl_event(ctrl_pass_t *p, bool warning, const char *reason, const char *action,
                const char *fmt, ...)
{
    char msg[CTRL_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s_event_msg(p, warning, reason, action, msg);
}

/* ---------- results ---------- */

/* The characters of generateName's random suffix (apimachinery's utilrand alphabet). */
#define S_GEN_ALPHABET "bcdfghjklmnpqrstvwxz2456789"
#define S_GEN_SUFFIX_LEN 5

void ctrl_strip_generated(const char *msg, const char *prefix, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    const char *s = msg ? msg : "";
    buf_t b;
    buf_init(&b, strlen(s) + 1); /* never longer than msg */
    size_t pl = prefix ? strlen(prefix) : 0;
    while (*s) {
        const char *hit = pl ? strstr(s, prefix) : NULL;
        if (!hit) {
            buf_append(&b, s, strlen(s));
            break;
        }
        const char *suf = hit + pl;
        size_t n = 0;
        while (n < S_GEN_SUFFIX_LEN && suf[n] && strchr(S_GEN_ALPHABET, suf[n]))
            n++;
        /* a generated name ends after its suffix (no further name character) */
        char after = n == S_GEN_SUFFIX_LEN ? suf[n] : 'x';
        bool gen = n == S_GEN_SUFFIX_LEN && !(after >= 'a' && after <= 'z') &&
                   !(after >= '0' && after <= '9') && after != '-' && after != '.';
        buf_append(&b, s, (size_t)(suf - s));
        s = gen ? suf + S_GEN_SUFFIX_LEN : suf;
    }
    snprintf(out, size, "%s", buf_str(&b));
    buf_free(&b);
}

/* Ends a request of the pass: the window moves on, and the stage when it was the last one. */
static void s_req_answered(ctrl_pass_t *p)
{
    p->inflight--;
    s_pump(p);
    if (--p->pending == 0) {
        if (p->reading)
            s_begin(p);
        else
            s_advance(p);
    }
}

static const char *s_action(ctrl_verb_t what)
{
    return what == CTRL_CREATE ? "Create" : what == CTRL_DELETE ? "Delete" : "Update";
}

/* A request of the pass has ended: result handling common to every verb. */
/* True when request q of pass p changes p's object itself (its status, or a patch or update of
 * it; deleting it is not a change a later pass could be stale about). */
static bool s_writes_self(const ctrl_t *c, const ctrl_pass_t *p, const req_t *q)
{
    if (q->what == CTRL_STATUS)
        return true;
    if (q->what != CTRL_PATCH && q->what != CTRL_JSON_PATCH && q->what != CTRL_UPDATE)
        return false;
    return strcmp(q->r_resource, c->kind->resource) == 0 &&
           strcmp(q->r_group, c->kind->group) == 0 && strcmp(q->name, p->name) == 0;
}

static void s_result(k8s_client_t *k, const k8s_result_t *res, void *arg);

/* True when `obj` (as read back) is the object `body` created: the same controller
 * ownerReference uid when the body has one, else every label of the body with the same value. */
static bool s_ours(const json_t *body, const json_t *obj)
{
    const json_t *refs = jx_get(body, "metadata.ownerReferences");
    const json_t *orefs = jx_get(obj, "metadata.ownerReferences");
    size_t i, j;
    const json_t *r, *o;
    bool any = false;
    json_array_foreach(refs, i, r)
    {
        const char *uid = jx_str(r, "uid", "");
        if (!uid[0])
            continue;
        any = true;
        bool found = false;
        json_array_foreach(orefs, j, o) found = found || strcmp(jx_str(o, "uid", ""), uid) == 0;
        if (!found)
            return false;
    }
    if (any)
        return true;
    const json_t *labels = jx_get(body, "metadata.labels");
    const json_t *olabels = jx_get(obj, "metadata.labels");
    if (!json_is_object(labels) || json_object_size(labels) == 0)
        return false;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)labels, k, v)
    {
        const json_t *ov = json_object_get(olabels, k);
        if (!json_is_string(v) || !json_is_string(ov) ||
            strcmp(json_string_value(v), json_string_value(ov)) != 0)
            return false;
    }
    return true;
}

/* The answer of the GET that checks a 409 AlreadyExists of a name the runtime chose. */
static void s_owner_cb(k8s_client_t *k, const k8s_result_t *res, void *arg)
{
    req_t *q = arg;
    if (res->err == 0 && s_ours(q->body, res->body)) {
        // a resent create (the connection dropped after the server applied it): ours, created
        q->resent = true;
        s_result(k,
                 &(k8s_result_t){.id = res->id,
                                 .status = 201,
                                 .reason = "",
                                 .message = "",
                                 .body = res->body,
                                 .attempts = res->attempts},
                 q);
        return;
    }
    char msg[CTRL_MSG_MAX];
    if (res->err == 0)
        snprintf(msg, sizeof(msg),
                 "%s %s already exists and is not this create's (another owner): a new name is "
                 "chosen on the next pass",
                 q->kind, q->name);
    else
        snprintf(msg, sizeof(msg), "%s %s already exists and could not be read back: %s", q->kind,
                 q->name, res->message[0] ? res->message : err_str(res->err));
    // no answer to the read: as ambiguous as the create itself (the watch decides)
    s_result(k,
             &(k8s_result_t){.id = res->id,
                             .err = ERR_EXISTS,
                             .status = res->status == 0 ? 0 : 409,
                             .reason = "AlreadyExists",
                             .message = msg,
                             .attempts = res->attempts},
             q);
}

/* Reads back the object of a create whose chosen name met 409 AlreadyExists (s_owner_cb()).
 * Returns false when the read could not start. */
static bool s_check_owner(req_t *q)
{
    ctrl_t *c = q->c;
    q->checked = true;
    if (!c->cfg.client)
        return false;
    k8s_res_t res = {.group = q->r_group,
                     .version = q->r_version,
                     .resource = q->r_resource,
                     .namespace_ = q->ns,
                     .name = q->name};
    int64_t id = k8s_get(q->client ? q->client : c->cfg.client, &res,
                         &(k8s_opts_t){.urgent = q->p && q->p->urgent}, s_owner_cb, q);
    if (id < 0)
        return false;
    q->id = id;
    return true;
}

static void s_result(k8s_client_t *k, const k8s_result_t *res, void *arg)
{
    req_t *q = arg;
    ctrl_t *c = q->c;
    ctrl_pass_t *p = q->p;
    int err = res->err;
    if (q->what == CTRL_GET) {
        /* reads are not audited; the handler may start writes of the same pass */
        if (p && q->on_get)
            q->on_get(p, res);
        s_req_free(c, q);
        if (p)
            s_req_answered(p);
        return;
    }
    if (q->what == CTRL_CREATE && err == ERR_EXISTS && q->chosen && !q->checked && s_check_owner(q))
        return; // s_owner_cb() ends it (and comes back here once)
    if (p && q->what == CTRL_CREATE)
        p->creates_inflight--;
    /* AlreadyExists is success for a name the stage chose (a child created once); for a name the
     * runtime chose it is success only when the object is ours (q->resent, decided above) */
    bool exists = q->what == CTRL_CREATE && err == ERR_EXISTS && !q->chosen;
    bool gone = q->what == CTRL_DELETE && err == ERR_NOTFOUND;
    const char *name = q->name;
    if (q->what == CTRL_CREATE && err == 0)
        name = jx_str(res->body, "metadata.name", q->name);
    const char *uid = jx_str(res->body, "metadata.uid", NULL);
    char msg[CTRL_MSG_MAX];
    const char *verb = s_verb(q->what);
    if (err == 0 && p && c->kind->status_precondition && s_writes_self(c, p, q)) {
        kstate_t *ks = s_kstate(c, p->key, true);
        if (ks)
            snprintf(ks->self_rv, sizeof(ks->self_rv), "%s",
                     jx_str(p->obj, "metadata.resourceVersion", ""));
    }
    if (err == 0 && p && q->what == CTRL_STATUS && c->kind->status_echo_quiet) {
        kstate_t *ks = s_kstate(c, p->key, true);
        if (ks)
            snprintf(ks->echo_rv, sizeof(ks->echo_rv), "%s",
                     jx_str(res->body, "metadata.resourceVersion", ""));
    }
    if (err == 0 || exists || gone) {
        if (q->what == CTRL_CREATE)
            snprintf(msg, sizeof(msg),
                     exists      ? "%s %s/%s exists already"
                     : q->resent ? "Created %s %s/%s (its create was resent after a lost answer; "
                                   "409 AlreadyExists of this create's own object)"
                                 : "Created %s %s/%s",
                     q->noun, q->ns, name);
        else if (q->what == CTRL_DELETE)
            snprintf(msg, sizeof(msg), gone ? "%s %s/%s was gone already" : "Deleted %s %s/%s",
                     q->noun, q->ns, name);
        else if (q->what == CTRL_PATCH || q->what == CTRL_JSON_PATCH)
            snprintf(msg, sizeof(msg), "Patched %s %s/%s", q->noun, q->ns, name);
        else if (q->what == CTRL_UPDATE)
            snprintf(msg, sizeof(msg), "Updated %s %s/%s", q->noun, q->ns, name);
        else
            snprintf(msg, sizeof(msg), "Updated the status of %s %s/%s", q->kind, q->ns, name);
        s_audit(c, q, verb, name, uid, q->ok_reason, msg, res->status, err ? res->message : NULL);
        if (p && q->what == CTRL_CREATE)
            p->create_ok = true;
        if (p && q->ok_reason && err == 0)
            s_event_msg(p, false, q->ok_reason, s_action(q->what), msg);
        if (p && q->exp_group[0] && q->what == CTRL_CREATE && err == 0)
            ctrl_expect(p, q->exp_group, name, true);
        if (p && q->ensure[0])
            s_ensure_put(c, p->key, q->ensure);
    } else {
        c->stats.write_errors++;
        /* An ambiguous create (no answer, or kube's 504 Timeout: the object may exist) is
         * expected all the same, so the group waits for the watch (or EXPECT_CREATE_MS) instead of
         * creating a duplicate; a generateName create, whose name is unknown, holds the group
         * with a placeholder that is never observed. */
        if (p && q->exp_group[0] && q->what == CTRL_CREATE &&
            (res->status == 0 || res->status == 504)) {
            char ph[CTRL_KEY_MAX + 32];
            const char *nm = jx_str(q->body, "metadata.name", "");
            if (!nm[0]) {
                snprintf(ph, sizeof(ph), "?%s%lld", q->name, (long long)q->id);
                nm = ph;
            }
            ctrl_expect(p, q->exp_group, nm, true);
        }
        if (p && q->what == CTRL_CREATE)
            p->create_failed = true;
        /* the API server's message names the object; a generated name (generateName's random
         * suffix) would make every attempt's message differ, so messages for Events and status
         * carry the prefix instead: a repeated failure is the same Event and the same status */
        const char *raw = res->message[0] ? res->message : err_str(err);
        char *stable = malloc(CTRL_MSG_MAX);
        if (stable)
            ctrl_strip_generated(raw, jx_str(q->body, "metadata.generateName", ""), stable,
                                 CTRL_MSG_MAX);
        const char *why = stable ? stable : raw;
        if (q->what == CTRL_CREATE)
            snprintf(msg, sizeof(msg), "Failed to create %s %s/%s, %s", q->noun, q->ns, name, why);
        else if (q->what == CTRL_DELETE)
            snprintf(msg, sizeof(msg), "Failed to delete %s %s/%s, %s", q->noun, q->ns, name, why);
        else if (q->what == CTRL_PATCH || q->what == CTRL_JSON_PATCH)
            snprintf(msg, sizeof(msg), "Failed to patch %s %s/%s, %s", q->noun, q->ns, name, why);
        else if (q->what == CTRL_UPDATE)
            snprintf(msg, sizeof(msg), "Failed to update %s %s/%s, %s", q->noun, q->ns, name, why);
        else
            snprintf(msg, sizeof(msg), "Failed to update the status of %s %s/%s, %s", q->kind,
                     q->ns, name, why);
        s_audit(c, q, verb, name, uid, q->fail_reason, msg, res->status, raw);
        /* the log line carries the audit row's correlation id: one id from log to audit */
        char st[24];
        snprintf(st, sizeof(st), "%ld", res->status);
        log_error("write failed", "key", p ? p->key : "", "verb", verb, "kind", q->kind, "object",
                  name, "status", st, "error", msg, "correlation_id", q->corr, NULL);
        if (p) {
            if (q->fail_reason && q->fail_event[0]) {
                char ev[CTRL_MSG_MAX];
                snprintf(ev, sizeof(ev), "%s, %s", q->fail_event, why);
                s_event_msg(p, true, q->fail_reason, s_action(q->what), ev);
            } else if (q->fail_reason) {
                s_event_msg(p, true, q->fail_reason, s_action(q->what), msg);
            }
            if (q->what == CTRL_STATUS) {
                p->status_error = true;
                kstate_t *ks = keytab_get(c->keys, p->key);
                if (ks)
                    s_status_forget(ks);
            } else if (q->rcs_reason) {
                ctrl_fail(p, q->rcs_reason, "%s\n%s", q->rcs_reason, why);
            } else {
                ctrl_fail(p, NULL, "%s", msg);
            }
            /* the write failed: its expectation will never be met */
            if (q->exp_group[0] && q->what == CTRL_DELETE)
                expect_drop(c->expect, p->key, q->exp_group, q->name);
        }
        free(stable);
    }
    if (p && q->on_result)
        q->on_result(p, res);
    s_req_free(c, q);
    if (p)
        s_req_answered(p);
}

/* Sends `q` now (fence check, then the k8s call). Counted in p->pending already. */
static void s_dispatch(ctrl_pass_t *p, req_t *q)
{
    ctrl_t *c = p->c;
    if (c->cfg.capture) {
        // self-test: the request is recorded, not sent, and ends without a result
        json_array_append_new(c->cfg.capture,
                              json_pack("{s:i, s:s, s:s, s:s, s:O?}", "what", (int)q->what, "kind",
                                        q->kind, "name", q->name, "group", q->exp_group, "body",
                                        q->body));
        s_req_free(c, q);
        p->pending--;
        return;
    }
    if (q->what == CTRL_CREATE && p->create_failed) {
        // KubeRay returns on the first failed create: the rest of the pass's creates wait for
        // the key's backoff instead of failing alike (unsent, so no action and no audit row)
        c->stats.creates_dropped++;
        s_req_free(c, q);
        p->pending--;
        return;
    }
    if (c->cfg.fence && !c->cfg.fence(p->key, c->cfg.fence_arg)) {
        // The shard moved to another replica while this pass ran: nothing more may be written.
        // The write is not sent, so it is not an action and gets no audit row; the pass ends
        // quietly and the new owner reconciles the key.
        c->stats.fenced++;
        if (!p->fenced)
            log_info("pass fenced: shard no longer owned", "key", p->key, "object", q->name,
                     "correlation_id", p->corr, NULL);
        p->fenced = true;
        if (q->exp_group[0] && q->what == CTRL_DELETE) // never sent: never to be observed
            expect_drop(c->expect, p->key, q->exp_group, q->name);
        s_req_free(c, q);
        p->pending--; // the caller (a stage or a result) still holds the pass: no advance here
        return;
    }
    s_req_link(c, q);
    p->inflight++;
    if (q->what == CTRL_CREATE)
        p->creates_inflight++; /* counted from here: a create held for its intent row is in flight
                                */
    p->sent = true;
    if (c->cfg.audit && q->what != CTRL_GET && (c->hooked || s_hook(c))) {
        // The write's intent row goes first: it is sent once the row is committed, with every
        // other write of this loop turn, by s_release_hook() (one commit per turn).
        s_intent(c, q);
        if (c->held_tail)
            c->held_tail->hnext = q;
        else
            c->held_head = q;
        c->held_tail = q;
        return;
    }
    s_fire(q, true);
}

/* Sends request q (linked, counted in flight). `in_caller`: a stage or a result is running and
 * holds the pass, so an immediate failure must not advance it. */
static void s_fire(req_t *q, bool in_caller)
{
    ctrl_t *c = q->c;
    ctrl_pass_t *p = q->p;
    k8s_res_t res = {.group = q->r_group,
                     .version = q->r_version,
                     .resource = q->r_resource,
                     .namespace_ = q->ns,
                     .name = q->r_named ? q->name : NULL,
                     .subresource = q->r_sub[0] ? q->r_sub : NULL};
    const json_t *obj = q->body;
    const k8s_opts_t wo = {.keep = s_write_keep, .urgent = p->urgent};
    k8s_client_t *k = q->client ? q->client : c->cfg.client;
    int64_t id;
    q->t0 = loop_clock_ms();
    if (q->what == CTRL_CREATE) {
        id = k8s_create(k, &res, obj, &wo, s_result, q);
        c->stats.creates++;
    } else if (q->what == CTRL_DELETE) {
        k8s_opts_t dopts = wo;
        dopts.propagation_policy = q->propagation[0] ? q->propagation : NULL;
        dopts.precondition_uid = q->uid[0] ? q->uid : NULL;
        id = k8s_delete(k, &res, &dopts, s_result, q);
        c->stats.deletes++;
    } else if (q->what == CTRL_PATCH || q->what == CTRL_JSON_PATCH) {
        id = k8s_patch(k, &res, q->what == CTRL_PATCH ? K8S_PATCH_MERGE : K8S_PATCH_JSON, obj, &wo,
                       s_result, q);
        c->stats.updates++;
    } else if (q->what == CTRL_UPDATE) {
        id = k8s_update(k, &res, obj, &wo, s_result, q);
        c->stats.updates++;
    } else if (q->what == CTRL_GET) {
        id = k8s_get(k, &res, &(k8s_opts_t){.urgent = p->urgent}, s_result, q);
    } else {
        id = k8s_patch(k, &res, K8S_PATCH_JSON, obj, &wo, s_result, q);
        c->stats.status_writes++;
    }
    if (id < 0) {
        k8s_result_t fake = {.err = (int)id, .reason = "", .message = err_str((int)id)};
        /* handled as if the server had answered, without re-entering s_advance now */
        if (in_caller)
            p->pending++;
        s_result(k, &fake, q);
        if (in_caller)
            p->pending--;
        return;
    }
    q->id = id;
}

/* Wakes the loop up so that its hooks retry a commit that failed. */
static int64_t s_retry_timer(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    ctrl_t *c = arg;
    c->retry_armed = false;
    return LOOP_TIMER_DONE;
}

/* Before every poll: commits the intent rows of the writes held this turn in one transaction,
 * then sends them, oldest first. A commit that fails (the database is busy) keeps them held for
 * the next turn: no write goes out without its row. */
static int s_release_hook(loop_t *loop, void *arg)
{
    ctrl_t *c = arg;
    while (c->held_head) {
        int rc = actlog_commit(c->cfg.audit);
        if (rc != 0) {
            if (!c->retry_armed && loop_add_timer(loop, S_RETRY_MS, s_retry_timer, c) >= 0)
                c->retry_armed = true;
            return 0;
        }
        req_t *q = c->held_head;
        c->held_head = c->held_tail = NULL;
        while (q) {
            req_t *next = q->hnext;
            q->hnext = NULL;
            s_fire(q, false); // may hold new writes (a failure moves the window): next round
            q = next;
        }
    }
    return 0;
}

/* Adds s_release_hook() to the loop. Returns false when it cannot (the write is then sent at
 * once, its row written after the answer as before). */
static bool s_hook(ctrl_t *c)
{
    if (!c->loop || loop_add_before_sleep(c->loop, s_release_hook, c) != 0)
        return false;
    c->hooked = true;
    return true;
}

/* Sends the requests queued behind the pass's window while fewer than CTRL_PASS_WINDOW are in
 * flight, oldest first. */
static void s_pump(ctrl_pass_t *p)
{
    if (p->pumping)
        return;
    p->pumping = true;
    while (p->wait_head && p->inflight < CTRL_PASS_WINDOW) {
        req_t *q = p->wait_head;
        if (q->what == CTRL_CREATE && !p->create_ok && p->creates_inflight > 0)
            break; /* slow start: the first create answers before the next goes */
        p->wait_head = q->wnext;
        if (!p->wait_head)
            p->wait_tail = NULL;
        q->wnext = NULL;
        s_dispatch(p, q);
    }
    p->pumping = false;
}

/* Queues `q` with body `obj` (a reference is taken) behind the pass's window and pumps it. */
static void s_send(ctrl_pass_t *p, req_t *q, const json_t *obj)
{
    if (obj)
        q->body = json_incref((json_t *)obj);
    p->pending++;
    if (p->wait_tail)
        p->wait_tail->wnext = q;
    else
        p->wait_head = q;
    p->wait_tail = q;
    s_pump(p);
}

int ctrl_generate_name(const char *base, char *out, size_t size)
{
    if (!base || !out || size == 0)
        return ERR_INVAL;
    size_t n = strnlen(base, S_GEN_BASE_MAX);
    if (n + S_GEN_RANDOM + 1 > size)
        return ERR_TOOBIG;
    unsigned char rnd[S_GEN_RANDOM];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return ERR_IO;
    memcpy(out, base, n);
    size_t m = sizeof(s_gen_alphabet) - 1;
    for (size_t i = 0; i < S_GEN_RANDOM; i++)
        out[n + i] = s_gen_alphabet[rnd[i] % m]; // 256 % 27 = 13: a bias of 1/19 at most
    out[n + S_GEN_RANDOM] = '\0';
    return 0;
}

/* A create of a body with metadata.generateName and no metadata.name: the runtime names the
 * object itself, as the API server would, so that a resent POST (a connection that dropped after
 * the server applied it) meets 409 AlreadyExists instead of making a second object, and the
 * intent row names the object before it exists. Returns the body to send (a new reference: a
 * shallow copy with metadata.name set, generateName kept), `body` itself (increfed) when there is
 * nothing to name, or NULL when out of memory. */
static json_t *s_name_body(req_t *q, const json_t *body)
{
    const json_t *meta = json_object_get(body, "metadata");
    const char *gen = jx_str(meta, "generateName", "");
    if (q->what != CTRL_CREATE || !gen[0] || jx_str(meta, "name", "")[0])
        return json_incref((json_t *)body);
    char name[CTRL_KEY_MAX];
    if (ctrl_generate_name(gen, name, sizeof(name)) != 0)
        return json_incref((json_t *)body); // (cannot happen) the server names it
    json_t *copy = json_copy((json_t *)body);
    json_t *m = json_copy((json_t *)meta);
    if (!copy || !m || json_object_set_new(m, "name", json_string(name)) != 0 ||
        json_object_set(copy, "metadata", m) != 0) {
        json_decref(copy);
        json_decref(m);
        return NULL;
    }
    json_decref(m);
    snprintf(q->name, sizeof(q->name), "%s", name);
    q->chosen = true;
    return copy;
}

void ctrl_send(ctrl_pass_t *p, const ctrl_req_t *r, const json_t *body)
{
    req_t *q = r ? s_req_new(p, r) : NULL;
    json_t *named = NULL;
    if (q && body && !p->c->cfg.capture) {
        named = s_name_body(q, body);
        if (!named) {
            s_req_free(p->c, q);
            q = NULL;
        }
    }
    if (!q) {
        ctrl_fail(p, NULL, "out of memory");
        return;
    }
    if (r->verb == CTRL_DELETE && r->exp_group)
        ctrl_expect(p, r->exp_group, q->name, false);
    s_send(p, q, named ? named : body);
    json_decref(named);
}

void ctrl_create_once(ctrl_pass_t *p, json_t *obj, const char *group, const char *version,
                      const char *resource, const char *noun, const char *ok_reason,
                      const char *fail_reason, int64_t max_age_ms)
{
    if (!obj) {
        ctrl_fail(p, NULL, "failed to build the %s", noun);
        return;
    }
    const char *kind = jx_str(obj, "kind", "");
    const char *name = jx_str(obj, "metadata.name", "");
    char entry[CTRL_KEY_MAX];
    snprintf(entry, sizeof(entry), "%s/%s", kind, name);
    if (ctrl_ensured(p, entry, max_age_ms)) {
        json_decref(obj);
        return;
    }
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_CREATE,
                            .group = group,
                            .version = version,
                            .resource = resource,
                            .kind = kind,
                            .name = name,
                            .noun = noun,
                            .ok_reason = ok_reason,
                            .fail_reason = fail_reason,
                            .ensure = entry},
              obj);
    json_decref(obj);
}

/* ---------- the status-patch guard ---------- */

void ctrl_status_write(ctrl_pass_t *p, json_t *st, bool (*changed)(const json_t *, const json_t *))
{
    ctrl_t *c = p->c;
    const char *orv = jx_str(p->obj, "metadata.resourceVersion", "");
    /* what was sent only matters while observed.db still shows the resourceVersion it was sent
     * against; once that moved on, drop it */
    kstate_t *ks = keytab_get(c->keys, p->key);
    if (ks && ks->status_rv && strcmp(ks->status_rv, orv) != 0)
        s_status_forget(ks);
    if (!changed(jx_get(p->obj, "status"), st)) {
        json_decref(st);
        return;
    }
    // observed.db may not have caught up with our own last status write yet: the same status
    // sent against the same observed resourceVersion is not sent again.
    if (ks && ks->status_rv && ks->status_text) {
        json_t *prev = json_loads(ks->status_text, 0, NULL);
        bool same = prev && !changed(prev, st);
        json_decref(prev);
        if (same) {
            json_decref(st);
            return;
        }
    }
    // Only the owner replica writes an object's status, so it replaces /status whole without a
    // resourceVersion precondition, which the lagging observed copy would fail; the uid test
    // keeps it from landing on a re-created namesake.
    json_t *obj = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:O}]", "op", "test", "path", "/metadata/uid",
                            "value", jx_str(p->obj, "metadata.uid", ""), "op", "replace", "path",
                            "/status", "value", st);
    if (obj && c->kind->status_precondition)
        json_array_insert_new(obj, 1,
                              json_pack("{s:s,s:s,s:s}", "op", "test", "path",
                                        "/metadata/resourceVersion", "value", orv));
    if (!obj) {
        json_decref(st);
        p->status_error = true;
        return;
    }
    char *st_text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    ks = st_text ? s_kstate(c, p->key, true) : NULL;
    size_t rvn = strlen(orv) + 1;
    char *rv = ks ? malloc(rvn) : NULL;
    if (rv) {
        memcpy(rv, orv, rvn);
        s_status_forget(ks);
        ks->status_rv = rv;
        ks->status_text = st_text;
    } else {
        free(st_text);
    }
    const ctrl_kind_t *kd = c->kind;
    req_t *q = s_req_new(p, &(ctrl_req_t){.verb = CTRL_STATUS,
                                          .group = kd->group,
                                          .version = kd->version,
                                          .resource = kd->resource,
                                          .subresource = "status",
                                          .kind = kd->kind,
                                          .name = p->name});
    if (!q) {
        json_decref(obj);
        p->status_error = true;
        return;
    }
    p->short_requeue = true;
    s_send(p, q, obj);
    json_decref(obj);
}

/* ---------- the desired-set writer ---------- */

bool ctrl_desired_written(ctrl_pass_t *p)
{
    kstate_t *ks = keytab_get(p->c->keys, p->key);
    return ks && ks->has_desired;
}

/* Deletes the desired rows of the object ns/name of `c`. */
static void s_desired_delete(ctrl_t *c, const char *key, const char *ns, const char *name)
{
    int rc = store_desired_delete(c->cfg.desired, c->cluster, ns, c->kind->kind, name, NULL, NULL);
    if (rc != 0)
        log_warn("desired rows not deleted", "key", key, "error", err_str(rc), NULL);
}

void ctrl_desired_forget(ctrl_pass_t *p)
{
    ctrl_t *c = p->c;
    if (!c->cfg.desired)
        return;
    kstate_t *ks = keytab_get(c->keys, p->key);
    if (ks)
        ks->has_desired = false;
    s_desired_delete(c, p->key, p->ns, p->name);
}

void ctrl_desired_record(ctrl_pass_t *p, const json_t *set, const char *h)
{
    ctrl_t *c = p->c;
    if (!c->cfg.desired)
        return;
    if (!set || !h || !h[0] || strlen(h) >= CTRL_MEMO_MAX) {
        log_error("desired rows not computed", "key", p->key, "error", err_str(ERR_NOMEM),
                  "correlation_id", p->corr, NULL);
        return;
    }
    kstate_t *ks = s_kstate(c, p->key, true);
    if (ks && ks->has_desired && !strcmp(ks->desired, h))
        return;
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    int rc = ks ? store_desired_delete(c->cfg.desired, c->cluster, p->ns, c->kind->kind, p->name,
                                       NULL, NULL)
                : ERR_NOMEM;
    size_t i;
    json_t *w;
    json_array_foreach(set, i, w)
    {
        if (rc)
            break;
        // desired rows hold no secret either (the scheduler's file is as readable as observed.db)
        char *js = json_dumps(json_object_get(w, "json"), JSON_COMPACT | JSON_SORT_KEYS);
        if (js && redact_text_may_hold(js, strlen(js))) {
            json_t *red = redact_object(json_object_get(w, "json"));
            free(js);
            js = red ? json_dumps(red, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            json_decref(red);
        }
        store_desired_t d = {.cluster = c->cluster,
                             .ns = p->ns,
                             .owner_kind = c->kind->kind,
                             .owner_name = p->name,
                             .owner_uid = uid,
                             .child_group = jx_str(w, "group", ""),
                             .child_kind = jx_str(w, "kind", ""),
                             .child_name = jx_str(w, "name", ""),
                             .spec_hash = jx_str(w, "hash", NULL),
                             .json = js,
                             .reason = jx_str(w, "reason", ""),
                             .correlation_id = p->corr};
        rc = js ? store_desired_put(c->cfg.desired, &d) : ERR_NOMEM;
        free(js);
    }
    if (rc == 0) {
        ks->has_desired = true;
        snprintf(ks->desired, sizeof(ks->desired), "%s", h);
    } else {
        /* not remembered: the next pass writes the set again */
        if (ks)
            ks->has_desired = false;
        log_error("desired rows not written", "key", p->key, "error", err_str(rc), "correlation_id",
                  p->corr, NULL);
    }
}

/* ---------- the pass ---------- */

/* A new pass of `c` for `key`, linked (NULL on out of memory). */
static ctrl_pass_t *s_pass_new(ctrl_t *c, const char *key)
{
    ctrl_pass_t *p = calloc(1, sizeof(*p) + c->kind->pass_size);
    if (!p)
        return NULL;
    p->c = c;
    p->data = c->kind->pass_size ? (void *)(p + 1) : NULL;
    buf_init(&p->fail_msg, CTRL_MSG_MAX);
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->next = c->passes;
    if (c->passes)
        c->passes->prev = p;
    c->passes = p;
    c->stats.passes_inflight++;
    actlog_new_correlation_id(p->corr);
    return p;
}

static void s_pass_free(ctrl_pass_t *p)
{
    ctrl_t *c = p->c;
    if (p->prev)
        p->prev->next = p->next;
    else if (c->passes == p)
        c->passes = p->next;
    if (p->next)
        p->next->prev = p->prev;
    c->stats.passes_inflight--;
    if (c->kind->pass_free)
        c->kind->pass_free(p);
    json_decref(p->obj);
    while (p->wait_head) {
        req_t *q = p->wait_head;
        p->wait_head = q->wnext;
        json_decref(q->body);
        free(q);
    }
    buf_free(&p->fail_msg);
    free(p);
}

static void s_finish(ctrl_pass_t *p, workq_result_t res)
{
    workq_t *q = p->q;
    char key[CTRL_KEY_MAX];
    snprintf(key, sizeof(key), "%s", p->key);
    if (res.kind == WORKQ_ERROR)
        p->c->stats.errors++;
    s_pass_free(p);
    if (q)
        workq_done(q, key, res);
}

static void s_advance(ctrl_pass_t *p)
{
    const ctrl_kind_t *kd = p->c->kind;
    while (p->pending == 0) {
        size_t st = p->stage++;
        if (st >= kd->nstages) {
            workq_result_t res;
            if (p->fenced) {
                res = workq_ok(); // the shard's new owner has the key now
            } else if (p->failed || p->status_error) {
                log_error("reconcile failed", "key", p->key, "error",
                          p->failed ? buf_str(&p->fail_msg)
                                    : "the status could not be calculated or written",
                          "correlation_id", p->corr, NULL);
                res = workq_error();
            } else if (p->requeue_ms > 0) {
                res = workq_requeue_after(p->requeue_ms);
            } else if (p->short_requeue) {
                res = workq_requeue_after(CTRL_SHORT_REQUEUE_MS);
            } else {
                res = workq_requeue_after(p->c->cfg.requeue_ms);
            }
            s_finish(p, res);
            return;
        }
        if (p->failed && !kd->stages[st].always)
            continue;
        p->in_stage = true;
        kd->stages[st].fn(p);
        p->in_stage = false;
    }
}

/* ---------- observed objects ---------- */

json_t *ctrl_observed_get(ctrl_t *c, const char *kind, const char *ns, const char *name,
                          const char *owner_uid)
{
    return c ? ctrl_observed_get_in(c, c->cluster, kind, ns, name, owner_uid) : NULL;
}

json_t *ctrl_observed_get_in(ctrl_t *c, const char *cluster, const char *kind, const char *ns,
                             const char *name, const char *owner_uid)
{
    if (!c || !cluster || !name || !*name || !c->cfg.observed)
        return NULL;
    store_observed_t *row = NULL;
    if (store_observed_get(c->cfg.observed, cluster, kind, ns, name, &row) != 0)
        return NULL;
    json_t *obj = row->json ? json_loads(row->json, 0, NULL) : NULL;
    store_observed_free(&row);
    if (obj && owner_uid) {
        bool owned = false;
        size_t i;
        json_t *ref;
        json_array_foreach(jx_get(obj, "metadata.ownerReferences"), i, ref) owned =
            owned ||
            (jx_bool(ref, "controller", false) && strcmp(jx_str(ref, "uid", ""), owner_uid) == 0);
        if (!owned) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

json_t *ctrl_observed_head_pod(ctrl_t *c, const char *ns, const char *cluster)
{
    if (!c || !cluster || !*cluster)
        return NULL;
    store_observed_list_t l = {0};
    if (store_observed_list_owner(c->cfg.observed, c->cluster, ns, "RayCluster", cluster, NULL,
                                  &l) != 0)
        return NULL;
    json_t *pod = NULL;
    for (size_t i = 0; i < l.n && !pod; i++) {
        const store_observed_t *r = l.rows[i];
        /* only head pods are parsed: their names carry "-head" (names_head_pod()) */
        if (strcmp(r->kind, "Pod") != 0 || r->deleting || !r->json || !strstr(r->name, "-head"))
            continue;
        json_t *o = json_loads(r->json, 0, NULL);
        const char *nt =
            json_string_value(json_object_get(jx_get(o, "metadata.labels"), "ray.io/node-type"));
        if (nt && strcmp(nt, "head") == 0)
            pod = o;
        else
            json_decref(o);
    }
    store_observed_list_free(&l);
    return pod;
}

bool ctrl_has_finalizer(const json_t *obj, const char *name)
{
    return jx_array_has_string(jx_get(obj, "metadata.finalizers"), name);
}

json_t *ctrl_finalizers_with(const json_t *obj, const char *name, bool add)
{
    json_t *fins = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(jx_get(obj, "metadata.finalizers"), i, f)
    {
        if (fins && (!json_is_string(f) || strcmp(json_string_value(f), name) != 0))
            json_array_append(fins, f);
    }
    if (fins && add)
        json_array_append_new(fins, json_string(name));
    if (fins && json_array_size(fins) == 0) {
        json_decref(fins);
        fins = json_null();
    }
    return fins;
}

void ctrl_finalizer(ctrl_pass_t *p, const char *name, bool add)
{
    if (ctrl_has_finalizer(p->obj, name) == add)
        return;
    json_t *fins = ctrl_finalizers_with(p->obj, name, add);
    json_t *patch =
        fins ? json_pack("{s:{s:o, s:s}}", "metadata", "finalizers", fins, "resourceVersion",
                         jx_str(p->obj, "metadata.resourceVersion", ""))
             : NULL;
    if (!patch) {
        ctrl_fail(p, NULL, "out of memory");
        return;
    }
    const ctrl_kind_t *kd = p->c->kind;
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_PATCH,
                            .group = kd->group,
                            .version = kd->version,
                            .resource = kd->resource,
                            .kind = kd->kind,
                            .name = p->name,
                            .noun = kd->kind},
              patch);
    json_decref(patch);
}

void ctrl_hold(ctrl_pass_t *p)
{
    p->pending++;
    p->holds++;
}

void ctrl_release(ctrl_pass_t *p)
{
    if (p->holds <= 0)
        return;
    p->holds--;
    if (--p->pending == 0 && !p->in_stage && !p->pumping)
        s_advance(p);
}

void ctrl_audit(ctrl_pass_t *p, const char *group, const char *kind, const char *name,
                const char *verb, const char *reason, const char *message, const json_t *request,
                long status, const char *error, int64_t latency_ms)
{
    ctrl_t *c = p->c;
    if (!c->cfg.audit)
        return;
    actlog_record(c->cfg.audit, &(actlog_entry_t){.cluster = c->cluster,
                                                  .group = group ? group : "",
                                                  .kind = kind,
                                                  .ns = p->ns,
                                                  .name = name,
                                                  .verb = verb,
                                                  .reason = reason,
                                                  .message = message,
                                                  .cause = &p->cause,
                                                  .correlation_id = p->corr,
                                                  .request = request,
                                                  .result_status = (int)status,
                                                  .result_error = error,
                                                  .latency_ms = latency_ms});
}

void ctrl_fn(workq_t *q, const char *key, void *arg)
{
    ctrl_t *c = arg;
    c->stats.passes++;
    ctrl_pass_t *p = s_pass_new(c, key);
    if (!p) {
        workq_done(q, key, workq_error());
        return;
    }
    p->q = q;
    p->urgent = workq_urgent_start(q, key);
    char cl[CTRL_KEY_MAX];
    if (ctrl_parse_key(key, cl, p->ns, p->name) != 0 || strcmp(cl, c->cluster) != 0) {
        log_warn("reconcile key ignored", "key", key, NULL);
        s_finish(p, workq_ok());
        return;
    }
    /* 1. the object */
    store_observed_t *row = NULL;
    int rc = store_observed_get(c->cfg.observed, c->cluster, c->kind->kind, p->ns, p->name, &row);
    if (rc == ERR_NOTFOUND) {
        c->stats.not_found++;
        s_forget_key(c, key);
        if (c->cfg.desired)
            s_desired_delete(c, key, p->ns, p->name);
        s_finish(p, workq_ok());
        return;
    }
    if (rc != 0) {
        s_finish(p, workq_error());
        return;
    }
    /* read your writes: a copy older than our own last write of the object is not reconciled
     * (the write would be refused); the watcher's event for that write queues the key again,
     * the short requeue only covers a lost event */
    kstate_t *self = c->kind->status_precondition ? keytab_get(c->keys, key) : NULL;
    if (self && self->self_rv[0] && row->resource_version &&
        strcmp(self->self_rv, row->resource_version) == 0) {
        c->stats.stale_skips++;
        store_observed_free(&row);
        s_finish(p, workq_requeue_after(CTRL_SHORT_REQUEUE_MS));
        return;
    }
    p->obj = row->json ? json_loads(row->json, 0, NULL) : NULL;
    bool marked = row->json && strstr(row->json, REDACT_MARK) && redact_marked(p->obj);
    /* 2. the cause: the last bus event for the key, else the observed object */
    kstate_t *ks = keytab_get(c->keys, key);
    bool noted = ks && ks->has_cause;
    p->cause.key = p->key;
    p->cause.generation = row->generation;
    snprintf(p->cause_rv, sizeof(p->cause_rv), "%s",
             noted ? ks->cause_rv : (row->resource_version ? row->resource_version : ""));
    if (noted) {
        p->cause.event_id = ks->cause_eid;
        if (ks->cause_gen > 0)
            p->cause.generation = ks->cause_gen;
        ks->has_cause = false;
        c->ncauses--;
    }
    p->cause.resource_version = p->cause_rv;
    store_observed_free(&row);
    if (!p->obj) {
        s_finish(p, workq_error());
        return;
    }
    /* 3. a row whose secret values the watcher replaced: the object is read live, begin() runs
     * on the answer (s_req_answered()) */
    if (marked) {
        c->stats.live_reads++;
        p->reading = true;
        ctrl_send(p,
                  &(ctrl_req_t){.verb = CTRL_GET,
                                .group = c->kind->group,
                                .version = c->kind->version,
                                .resource = c->kind->resource,
                                .kind = c->kind->kind,
                                .name = p->name,
                                .on_get = s_on_live},
                  NULL);
        if (p->pending == 0) // not sent (fenced, out of memory) or answered at once
            s_begin(p);
        return;
    }
    s_begin(p);
}

/* The answer of the live read of a pass's object (ctrl_fn() step 3). */
static void s_on_live(ctrl_pass_t *p, const k8s_result_t *res)
{
    if (res->err == 0 && json_is_object(res->body)) {
        json_decref(p->obj);
        p->obj = json_incref((json_t *)res->body);
        p->live = true;
    } else {
        p->read_err = res->err ? res->err : ERR_PROTO;
    }
}

/* Steps 4 and 5 of a pass: the kind's decision on p->obj, then the stages. */
static void s_begin(ctrl_pass_t *p)
{
    ctrl_t *c = p->c;
    if (p->reading) {
        p->reading = false;
        p->sent = false; // a read changed nothing
        if (p->fenced || p->read_err == ERR_NOTFOUND) {
            s_finish(p, workq_ok()); // another replica's key now, or gone (DELETED follows)
            return;
        }
        if (!p->live) {
            log_warn("reconcile: cannot read the object", "key", p->key, "error",
                     p->read_err ? err_str(p->read_err)
                     : p->failed ? buf_str(&p->fail_msg)
                                 : "no answer",
                     "correlation_id", p->corr, NULL);
            s_finish(p, workq_error());
            return;
        }
    }
    /* 4. the kind's decision */
    switch (c->kind->begin ? c->kind->begin(p) : CTRL_BEGIN_STAGES) {
    case CTRL_BEGIN_OK:
        s_finish(p, workq_ok());
        return;
    case CTRL_BEGIN_ERROR:
        s_finish(p, workq_error());
        return;
    case CTRL_BEGIN_END:
        p->stage = c->kind->nstages;
        break;
    case CTRL_BEGIN_STAGES:
        p->stage = 0;
        break;
    }
    /* 5. the stages */
    s_advance(p);
}

void ctrl_set_queue(ctrl_t *c, workq_t *q)
{
    if (c)
        c->queue = q;
}

int ctrl_enqueue(ctrl_t *c, const char *key, bool urgent)
{
    if (!c || !key)
        return ERR_INVAL;
    if (!c->queue)
        return ERR_STATE;
    return urgent ? workq_add_urgent(c->queue, key) : workq_add(c->queue, key);
}

int ctrl_note_change(ctrl_t *c, const envwire_object_changed_t *oc, char *out, size_t size)
{
    if (!c || !oc || !out || !envwire_str_eq(oc->kind, c->kind->kind) || oc->name.n == 0)
        return ERR_INVAL;
    if (!envwire_str_eq(oc->cluster, c->cluster) && (!c->kind->any_cluster || oc->child_kind.n > 0))
        return ERR_INVAL;
    /* (any_cluster: a foreign object's change is noted under the runtime's cluster) */
    int n = snprintf(out, size, "%s/%.*s/%.*s", c->cluster, (int)oc->namespace_.n,
                     oc->namespace_.p ? oc->namespace_.p : "", (int)oc->name.n, oc->name.p);
    if (n < 0 || (size_t)n >= size || (size_t)n >= CTRL_KEY_MAX)
        return ERR_TOOBIG;
    if (c->ncauses >= CTRL_MAX_CAUSES) {
        keytab_sweep(c->keys, s_clear_cause, NULL);
        c->ncauses = 0;
    }
    kstate_t *ks = s_kstate(c, out, true);
    if (!ks)
        return 0; /* the pass falls back on the observed object as its cause */
    if (!ks->has_cause)
        c->ncauses++;
    ks->has_cause = true;
    snprintf(ks->cause_rv, sizeof(ks->cause_rv), "%.*s", (int)oc->resource_version.n,
             oc->resource_version.p ? oc->resource_version.p : "");
    ks->cause_eid = oc->event_id;
    ks->cause_gen = oc->generation;
    return 0;
}

/* True when oc is the watch echo of our own last /status write of the object (see
 * ctrl_kind_t.status_echo_quiet). */
static bool s_own_status_echo(ctrl_t *c, const envwire_object_changed_t *oc)
{
    if (!c || !oc || !c->kind->status_echo_quiet || oc->child_kind.n > 0 ||
        oc->resource_version.n == 0 || !envwire_str_eq(oc->kind, c->kind->kind) ||
        !envwire_str_eq(oc->cluster, c->cluster))
        return false;
    char key[CTRL_KEY_MAX];
    int n = snprintf(key, sizeof(key), "%.*s/%.*s/%.*s", (int)oc->cluster.n,
                     oc->cluster.p ? oc->cluster.p : "", (int)oc->namespace_.n,
                     oc->namespace_.p ? oc->namespace_.p : "", (int)oc->name.n,
                     oc->name.p ? oc->name.p : "");
    if (n < 0 || (size_t)n >= sizeof(key))
        return false;
    kstate_t *ks = keytab_get(c->keys, key);
    return ks && ks->echo_rv[0] && envwire_str_eq(oc->resource_version, ks->echo_rv);
}

int ctrl_queue_change(ctrl_t *c, workq_t *q, const envwire_object_changed_t *oc)
{
    char key[CTRL_KEY_MAX];
    if (s_own_status_echo(c, oc)) {
        c->stats.echo_skips++;
        return 0;
    }
    int rc = ctrl_note_change(c, oc, key, sizeof(key));
    if (rc != 0)
        return rc;
    return c->kind->urgent && c->kind->urgent(oc) ? workq_add_urgent(q, key) : workq_add(q, key);
}

/* ---------- the runtime ---------- */

ctrl_t *ctrl_new(loop_t *loop, const ctrl_config_t *cfg)
{
    const ctrl_kind_t *kd = cfg ? cfg->kind : NULL;
    if (!loop || !kd || !kd->kind || !kd->version || !kd->resource || !kd->component ||
        (kd->nstages && !kd->stages) || !cfg->cluster || !cfg->cluster[0] ||
        ((!cfg->observed || !cfg->client) && !cfg->capture) || strlen(cfg->cluster) >= CTRL_KEY_MAX)
        return NULL;
    ctrl_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->cfg = *cfg;
    c->kind = kd;
    if (c->cfg.requeue_ms <= 0)
        c->cfg.requeue_ms = CTRL_REQUEUE_MS;
    snprintf(c->cluster, sizeof(c->cluster), "%s", cfg->cluster);
    c->cfg.cluster = c->cluster;
    if (kd->group && kd->group[0])
        snprintf(c->api_version, sizeof(c->api_version), "%s/%s", kd->group, kd->version);
    else
        snprintf(c->api_version, sizeof(c->api_version), "%s", kd->version);
    c->keys = keytab_new(s_kstate_free);
    c->expect = expect_new(0, 0);
    c->evcorr = evcorr_new(0);
    if (!c->keys || !c->expect || !c->evcorr) {
        ctrl_destroy(&c);
        return NULL;
    }
    return c;
}

void ctrl_destroy(ctrl_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    ctrl_t *c = *c_p;
    if (c->hooked)
        loop_remove_before_sleep(c->loop, s_release_hook, c);
    c->held_head = c->held_tail = NULL; // held requests are in c->reqs
    while (c->passes)
        s_pass_free(c->passes);
    while (c->reqs)
        s_req_free(c, c->reqs);
    keytab_destroy(&c->keys);
    expect_destroy(&c->expect);
    evcorr_destroy(&c->evcorr);
    free(c);
    *c_p = NULL;
}

void *ctrl_arg(const ctrl_t *c)
{
    return c ? c->cfg.arg : NULL;
}

loop_t *ctrl_loop(const ctrl_t *c)
{
    return c ? c->loop : NULL;
}

const char *ctrl_cluster(const ctrl_t *c)
{
    return c ? c->cluster : NULL;
}

const ctrl_config_t *ctrl_config(const ctrl_t *c)
{
    return c ? &c->cfg : NULL;
}

bool ctrl_capturing(const ctrl_t *c)
{
    return c && c->cfg.capture;
}

void ctrl_stats(const ctrl_t *c, ctrl_stats_t *out)
{
    if (!c || !out)
        return;
    *out = c->stats;
    out->keys = keytab_size(c->keys);
    out->expect_keys = expect_count(c->expect);
}

ctrl_pass_t *ctrl_test_pass(ctrl_t *c, const char *key, json_t *obj)
{
    char cl[CTRL_KEY_MAX];
    ctrl_pass_t *p = c && key && strlen(key) < CTRL_KEY_MAX ? s_pass_new(c, key) : NULL;
    if (!p)
        return NULL;
    if (ctrl_parse_key(key, cl, p->ns, p->name) != 0) {
        s_pass_free(p);
        return NULL;
    }
    p->obj = json_incref(obj);
    p->cause.key = p->key;
    return p;
}

void ctrl_test_pass_free(ctrl_pass_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    s_pass_free(*p_p);
    *p_p = NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

static bool s_t_changed(const json_t *a, const json_t *b)
{
    return !json_equal(a, b);
}

static bool s_t_seen(const char *name, void *arg)
{
    return json_object_get(arg, name) != NULL;
}

/* The number of captured entries with "what" == `what`. */
static size_t s_t_count(const json_t *capture, ctrl_verb_t what)
{
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(capture, i, e)
    {
        if (jx_int(e, "what", 0) == what)
            n++;
    }
    return n;
}

static bool s_t_urgent(const envwire_object_changed_t *oc)
{
    return envwire_str_eq(oc->child_kind, "Gadget");
}

/* Records the order of starts (keys appended to the JSON array `arg`) and ends each at once. */
static void s_t_reconcile(workq_t *q, const char *key, void *arg)
{
    json_array_append_new(arg, json_string(key));
    workq_done(q, key, workq_ok());
}

int ctrl_test(bool verbose)
{
    int failed = 0;
    char k[CTRL_KEY_MAX], cl[CTRL_KEY_MAX], ns[CTRL_KEY_MAX], n[CTRL_KEY_MAX];
    CHECK(ctrl_key("c1", "default", "rc", k, sizeof(k)) == 13 && !strcmp(k, "c1/default/rc"));
    CHECK(ctrl_key("c1", "default", "rc", k, 5) == ERR_TOOBIG);
    CHECK(ctrl_key(NULL, "default", "rc", k, sizeof(k)) == ERR_INVAL);
    CHECK(ctrl_parse_key("c1/default/rc", cl, ns, n) == 0);
    CHECK(!strcmp(cl, "c1") && !strcmp(ns, "default") && !strcmp(n, "rc"));
    CHECK(ctrl_parse_key("c1/default", cl, ns, n) == ERR_INVAL);
    CHECK(ctrl_parse_key("c1//rc", cl, ns, n) == ERR_INVAL);
    CHECK(ctrl_parse_key("/a/b", cl, ns, n) == ERR_INVAL);
    CHECK(ctrl_parse_key("a/b/c/d", cl, ns, n) == ERR_INVAL);
    /* generated names cut back to their generateName prefix: the same message every attempt */
    char sm[128];
    ctrl_strip_generated("Pod \"rc-w-worker-x7kq2\" is invalid: metadata.name: rc-w-worker-x7kq2",
                         "rc-w-worker-", sm, sizeof(sm));
    CHECK(!strcmp(sm, "Pod \"rc-w-worker-\" is invalid: metadata.name: rc-w-worker-"));
    /* not generated: a longer name, a suffix outside the alphabet, no prefix */
    ctrl_strip_generated("rc-w-worker-x7kq2z and rc-w-worker-aaaaa", "rc-w-worker-", sm,
                         sizeof(sm));
    CHECK(!strcmp(sm, "rc-w-worker-x7kq2z and rc-w-worker-aaaaa"));
    ctrl_strip_generated("rc-w-worker-x7kq2", "", sm, sizeof(sm));
    CHECK(!strcmp(sm, "rc-w-worker-x7kq2"));
    ctrl_strip_generated("a rc-w-worker-x7kq2", "rc-w-worker-", sm, 8);
    CHECK(!strcmp(sm, "a rc-w-"));
    /* names chosen for generateName creates: the API server's shape (names.SimpleNameGenerator) */
    char g1[CTRL_KEY_MAX], g2[CTRL_KEY_MAX];
    CHECK(ctrl_generate_name("rc-worker-", g1, sizeof(g1)) == 0);
    CHECK(strlen(g1) == 15 && !strncmp(g1, "rc-worker-", 10) &&
          strspn(g1 + 10, s_gen_alphabet) == S_GEN_RANDOM);
    char longb[80];
    memset(longb, 'a', 70);
    longb[70] = '\0';
    CHECK(ctrl_generate_name(longb, g2, sizeof(g2)) == 0);
    CHECK(strlen(g2) == 63 && strspn(g2, "a") >= 58 && strspn(g2 + 58, s_gen_alphabet) == 5);
    int same = 0;
    for (int i = 0; i < 20; i++) {
        CHECK(ctrl_generate_name("rc-worker-", g2, sizeof(g2)) == 0);
        same += strcmp(g1, g2) == 0;
    }
    CHECK(same < 2); // 27^5 names: two draws alike is a bug, not luck
    CHECK(ctrl_generate_name("rc-worker-", g2, 15) == ERR_TOOBIG);
    CHECK(ctrl_generate_name(NULL, g2, sizeof(g2)) == ERR_INVAL);
    CHECK(ctrl_parse_key(NULL, cl, ns, n) == ERR_INVAL);
    char now[RFTIME_BUF];
    CHECK(rftime_now(RFTIME_SEC, now, sizeof(now)) == 0);
    CHECK(strlen(now) == 20 && now[4] == '-' && now[10] == 'T' && now[19] == 'Z');

    /* settings */
    loop_t *loop = loop_new();
    static const ctrl_kind_t kind = {.group = "example.com",
                                     .version = "v1",
                                     .kind = "Widget",
                                     .resource = "widgets",
                                     .component = "widget-controller",
                                     .urgent = s_t_urgent};
    json_t *capture = json_array();
    CHECK(ctrl_new(NULL, &(ctrl_config_t){.kind = &kind}) == NULL);
    CHECK(ctrl_new(loop, &(ctrl_config_t){.kind = &kind, .cluster = "c1"}) == NULL);
    CHECK(ctrl_new(loop, &(ctrl_config_t){.cluster = "c1", .capture = capture}) == NULL);
    CHECK(ctrl_new(loop, &(ctrl_config_t){.kind = &kind, .cluster = "c1"}) == NULL);
    ctrl_destroy(NULL);
    ctrl_t *c = ctrl_new(
        loop, &(ctrl_config_t){.kind = &kind, .cluster = "c1", .capture = capture, .arg = capture});
    CHECK(c && ctrl_capturing(c) && ctrl_arg(c) == capture && ctrl_loop(c) == loop);
    CHECK(c && !strcmp(ctrl_cluster(c), "c1") && ctrl_config(c)->requeue_ms == CTRL_REQUEUE_MS);
    if (!c || !loop || !capture) {
        ctrl_destroy(&c);
        loop_destroy(&loop);
        json_decref(capture);
        return SELFTEST_RESULT("ctrl", verbose);
    }

    /* causes: only this kind and cluster; remembered per key */
    envwire_object_changed_t oc = {0};
    oc.kind = (envwire_str_t){"Widget", 6};
    oc.cluster = (envwire_str_t){"c1", 2};
    oc.namespace_ = (envwire_str_t){"ns", 2};
    oc.name = (envwire_str_t){"w", 1};
    oc.resource_version = (envwire_str_t){"42", 2};
    oc.event_id = 7;
    oc.generation = 3;
    CHECK(ctrl_note_change(c, &oc, k, sizeof(k)) == 0 && !strcmp(k, "c1/ns/w"));
    CHECK(ctrl_note_change(c, &oc, k, 4) == ERR_TOOBIG);
    oc.kind = (envwire_str_t){"Pod", 3};
    CHECK(ctrl_note_change(c, &oc, k, sizeof(k)) == ERR_INVAL);
    oc.kind = (envwire_str_t){"Widget", 6};
    oc.cluster = (envwire_str_t){"c2", 2};
    CHECK(ctrl_note_change(c, &oc, k, sizeof(k)) == ERR_INVAL);
    /* queued from the bus: a change the kind calls urgent goes ahead of the ordinary keys */
    json_t *started = json_array();
    workq_t *wq = workq_new(loop, NULL, s_t_reconcile, started);
    CHECK(ctrl_queue_change(c, wq, &oc) == ERR_INVAL); /* not this cluster: nothing queued */
    oc.cluster = (envwire_str_t){"c1", 2};
    oc.name = (envwire_str_t){"a", 1};
    CHECK(ctrl_queue_change(c, wq, &oc) == 0);
    oc.name = (envwire_str_t){"b", 1};
    oc.child_kind = (envwire_str_t){"Gadget", 6};
    CHECK(ctrl_queue_change(c, wq, &oc) == 0);
    oc.child_kind = (envwire_str_t){NULL, 0};
    oc.name = (envwire_str_t){"w", 1};
    workq_stats_t qs;
    workq_stats(wq, &qs);
    CHECK(qs.depth == 2 && qs.urgent_adds == 1);
    for (int i = 0; i < 5 && json_array_size(started) < 2; i++)
        loop_run_once(loop, 1);
    CHECK(json_array_size(started) == 2 &&
          !strcmp(json_string_value(json_array_get(started, 0)), "c1/ns/b") &&
          !strcmp(json_string_value(json_array_get(started, 1)), "c1/ns/a"));
    /* ctrl_enqueue: only with a queue set */
    CHECK(ctrl_enqueue(c, "c1/ns/q", false) == ERR_STATE);
    ctrl_set_queue(c, wq);
    CHECK(ctrl_enqueue(c, "c1/ns/q", true) == 0 && ctrl_enqueue(NULL, "k", false) == ERR_INVAL);
    workq_stats(wq, &qs);
    CHECK(qs.depth == 1 && qs.urgent_adds == 2);
    ctrl_set_queue(c, NULL);
    workq_destroy(&wq);
    json_decref(started);
    /* any_cluster: another cluster's object (not a child) wakes the same name in ours */
    static const ctrl_kind_t akind = {.group = "example.com",
                                      .version = "v1",
                                      .kind = "Widget",
                                      .resource = "widgets",
                                      .component = "widget-controller",
                                      .any_cluster = true};
    ctrl_t *ac =
        ctrl_new(loop, &(ctrl_config_t){.kind = &akind, .cluster = "mgmt", .capture = capture});
    envwire_object_changed_t fo = {0};
    fo.kind = (envwire_str_t){"Widget", 6};
    fo.cluster = (envwire_str_t){"member-2", 8};
    fo.namespace_ = (envwire_str_t){"ns", 2};
    fo.name = (envwire_str_t){"w", 1};
    CHECK(ac && ctrl_note_change(ac, &fo, k, sizeof(k)) == 0 && !strcmp(k, "mgmt/ns/w"));
    fo.child_kind = (envwire_str_t){"Pod", 3};
    CHECK(ctrl_note_change(ac, &fo, k, sizeof(k)) == ERR_INVAL); /* a child's change: not ours */
    fo.child_kind = (envwire_str_t){NULL, 0};
    fo.kind = (envwire_str_t){"Gadget", 6};
    CHECK(ctrl_note_change(ac, &fo, k, sizeof(k)) == ERR_INVAL);
    ctrl_destroy(&ac);
    /* the two notes hold causes for keys a and b: forgotten with their passes, not counted below */
    s_forget_key(c, "c1/ns/a");
    s_forget_key(c, "c1/ns/b");
    ctrl_stats_t st = {0};
    ctrl_stats(c, &st);
    CHECK(st.keys == 1 && st.passes_inflight == 0);

    /* a pass: requests are captured in order, with the kind in status writes */
    json_t *obj = json_pack("{s:{s:s, s:s, s:s}, s:{s:i}}", "metadata", "name", "w", "uid", "u1",
                            "resourceVersion", "42", "status", "ready", 0);
    ctrl_pass_t *p = ctrl_test_pass(c, "c1/ns/w", obj);
    CHECK(p && !strcmp(p->ns, "ns") && !strcmp(p->name, "w") && p->obj == obj);
    CHECK(ctrl_test_pass(c, "bad", obj) == NULL);
    ctrl_stats(c, &st);
    CHECK(st.passes_inflight == 1);
    json_t *child = json_pack("{s:s, s:{s:s}}", "kind", "ConfigMap", "metadata", "name", "w-cm");
    ctrl_create_once(p, child, "", "v1", "configmaps", "config map", "Created", "FailedToCreate",
                     0);
    CHECK(s_t_count(capture, CTRL_CREATE) == 1);
    CHECK(!strcmp(jx_str(json_array_get(capture, 0), "name", ""), "w-cm"));
    ctrl_create_once(p, NULL, "", "v1", "configmaps", "config map", NULL, NULL, 0);
    CHECK(p->failed && strstr(buf_str(&p->fail_msg), "config map"));
    ctrl_fail(p, "Other", "second failure");
    CHECK(p->fail_reason == NULL && !strstr(buf_str(&p->fail_msg), "second"));
    ctrl_event(p, true, "Warned", "Validate", "widget %s is odd", p->name);
    CHECK(p->events_sent == 1);
    CHECK(!strcmp(jx_str(json_array_get(capture, 1), "msg", ""), "widget w is odd"));

    /* the status guard: unchanged -> nothing; changed -> one write; the same status again
     * against the same observed resourceVersion -> nothing; a new resourceVersion -> again */
    json_array_clear(capture);
    ctrl_status_write(p, json_pack("{s:i}", "ready", 0), s_t_changed);
    CHECK(json_array_size(capture) == 0 && !p->short_requeue);
    ctrl_status_write(p, json_pack("{s:i}", "ready", 1), s_t_changed);
    CHECK(s_t_count(capture, CTRL_STATUS) == 1 && p->short_requeue);
    json_t *sbody = jx_get(json_array_get(capture, 0), "body");
    CHECK(json_array_size(sbody) == 2 &&
          !strcmp(jx_str(json_array_get(sbody, 0), "value", ""), "u1"));
    ctrl_status_write(p, json_pack("{s:i}", "ready", 1), s_t_changed);
    CHECK(s_t_count(capture, CTRL_STATUS) == 1);
    ctrl_status_write(p, json_pack("{s:i}", "ready", 2), s_t_changed);
    CHECK(s_t_count(capture, CTRL_STATUS) == 2);
    jx_set_path(obj, "metadata.resourceVersion", json_string("43"));
    ctrl_status_write(p, json_pack("{s:i}", "ready", 2), s_t_changed);
    CHECK(s_t_count(capture, CTRL_STATUS) == 3);

    /* finalizers: the whole list with the observed resourceVersion; nothing when already so */
    json_array_clear(capture);
    jx_set_path(obj, "metadata.finalizers", json_pack("[s]", "other.io/keep"));
    CHECK(ctrl_has_finalizer(obj, "other.io/keep") && !ctrl_has_finalizer(obj, "w.io/f"));
    ctrl_finalizer(p, "w.io/f", true);
    json_t *fb = jx_get(json_array_get(capture, 0), "body");
    CHECK(
        s_t_count(capture, CTRL_PATCH) == 1 &&
        !strcmp(jx_str(fb, "metadata.resourceVersion", ""), "43") &&
        json_array_size(jx_get(fb, "metadata.finalizers")) == 2 &&
        !strcmp(json_string_value(json_array_get(jx_get(fb, "metadata.finalizers"), 1)), "w.io/f"));
    ctrl_finalizer(p, "w.io/f", false); /* not there: nothing */
    ctrl_finalizer(p, "other.io/keep", true); /* there: nothing */
    CHECK(json_array_size(capture) == 1);
    ctrl_finalizer(p, "other.io/keep", false); /* the last one: the list becomes null */
    CHECK(json_array_size(capture) == 2 &&
          json_is_null(jx_get(jx_get(json_array_get(capture, 1), "body"), "metadata.finalizers")));
    json_object_del(json_object_get(obj, "metadata"), "finalizers");

    /* expectations: a delete is recorded when sent; unmet -> skipped and short requeue */
    json_array_clear(capture);
    p->short_requeue = false;
    json_t *seen = json_pack("{s:b}", "pod-a", 1);
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_DELETE,
                            .version = "v1",
                            .resource = "pods",
                            .kind = "Pod",
                            .name = "pod-a",
                            .exp_group = "g"},
              NULL);
    CHECK(s_t_count(capture, CTRL_DELETE) == 1 && p->pending == 0);
    CHECK(!ctrl_expect_satisfied(p, "g", s_t_seen, seen) && p->short_requeue);
    CHECK(ctrl_expect_satisfied(p, "other", s_t_seen, seen));
    json_object_del(seen, "pod-a");
    CHECK(ctrl_expect_satisfied(p, "g", s_t_seen, seen));
    ctrl_expect(p, "g", "pod-b", true);
    CHECK(!ctrl_expect_satisfied(p, "g", s_t_seen, seen));
    ctrl_stats(c, &st);
    CHECK(st.skipped_groups == 2 && st.expect_keys == 1);
    json_decref(seen);

    /* the memo: kept per (uid, rv) */
    CHECK(ctrl_memo_get(p, "u1", "43") == NULL);
    ctrl_memo_put(p, "u1", "43", "HASH");
    CHECK(ctrl_memo_get(p, "u1", "43") && !strcmp(ctrl_memo_get(p, "u1", "43"), "HASH"));
    CHECK(ctrl_memo_get(p, "u1", "44") == NULL && ctrl_memo_get(p, "u2", "43") == NULL);
    char longv[CTRL_MEMO_MAX + 8];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    ctrl_memo_put(p, "u1", "44", longv);
    CHECK(ctrl_memo_get(p, "u1", "44") == NULL);

    /* ensured entries: none recorded in capture mode (no answer comes) */
    CHECK(!ctrl_ensured(p, "ConfigMap/w-cm", 0));
    /* recorded without a write; forgotten by prefix, others kept */
    ctrl_ensure(p, "PodGroup/w-pg#3");
    s_ensure_put(c, p->key, "PodGroup/w-pg#5");
    s_ensure_put(c, p->key, "Workload/w#3");
    CHECK(ctrl_ensured(p, "PodGroup/w-pg#3", 0) && ctrl_ensured(p, "PodGroup/w-pg#5", 0));
    ctrl_unensure(p, "PodGroup/w-pg#");
    CHECK(!ctrl_ensured(p, "PodGroup/w-pg#3", 0) && !ctrl_ensured(p, "PodGroup/w-pg#5", 0));
    CHECK(ctrl_ensured(p, "Workload/w#3", 0));
    ctrl_unensure(p, "Workload/w#");
    CHECK(!ctrl_ensured(p, "Workload/w#3", 0));

    /* the window: at most CTRL_PASS_WINDOW in flight; captured requests end at once */
    json_array_clear(capture);
    for (int i = 0; i < 3 * CTRL_PASS_WINDOW; i++) {
        char pn[32];
        snprintf(pn, sizeof(pn), "p-%d", i);
        ctrl_send(p,
                  &(ctrl_req_t){.verb = CTRL_CREATE,
                                .version = "v1",
                                .resource = "pods",
                                .kind = "Pod",
                                .name = pn},
                  NULL);
    }
    CHECK(s_t_count(capture, CTRL_CREATE) == 3 * CTRL_PASS_WINDOW && p->pending == 0);
    CHECK(!strcmp(jx_str(json_array_get(capture, 3 * CTRL_PASS_WINDOW - 1), "name", ""), "p-47"));

    ctrl_test_pass_free(&p);
    CHECK(p == NULL);
    ctrl_stats(c, &st);
    CHECK(st.passes_inflight == 0 && st.requests_inflight == 0);
    json_decref(obj);
    ctrl_destroy(&c);
    CHECK(c == NULL);
    json_decref(capture);
    loop_destroy(&loop);
    return SELFTEST_RESULT("ctrl", verbose);
}

#endif /* RF_SELFTEST */
