/*
 * objstore: kubesim's in-memory Kubernetes object database. See objstore.h for the contract.
 *
 * Layout of the implementation:
 * - s_map_*: a string-keyed open-addressing hash table (linear probing, backward-shift delete);
 *   keys are borrowed from the values they index.
 * - entry_t: one stored object (current immutable tree, uid, key "ns/name", owner uids).
 * - the event ring: the last `history` committed events. RVs are consecutive (every RV increment
 *   commits exactly one event), so the event of RV x sits at a computed index and everything with
 *   RV > rv - n is replayable.
 * - dispatch: commits append to the ring, then s_dispatch() delivers every undelivered event to
 *   the live watches; a nested commit from a callback only appends (the outer loop delivers it).
 * - GC: three work queues of uids (removed owners, dependents to check, owners in foreground /
 *   orphan deletion) plus the list of terminating namespaces, drained by objstore_gc_run().
 */
#include "objstore.h"

#include "json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "metaval.h"
#include "procstat.h"
#include "rftime.h"

#define UID_LEN 36 /* characters of an RFC 4122 uid */
#define MAP_MIN_CAP 16 /* smallest hash table */
#define KEY_MAX 600 /* "ns/name" lookup key buffer (longer keys cannot exist) */
#define NAME_SUBDOMAIN_MAX 253 /* DNS-1123 subdomain length */
#define NAME_LABEL_MAX 63 /* DNS-1123 label length */
#define TIME_STR_MAX 32 /* "2025-01-31T12:00:05Z" plus room */
#define RV_STR_MAX 24 /* decimal uint64 */
#define HISTORY_MIN 16 /* smallest ring */
#define FIN_FOREGROUND "foregroundDeletion"
#define FIN_ORPHAN "orphan"
#define FIN_NAMESPACE "kubernetes"
#define NAME_ALPHABET "bcdfghjklmnpqrstvwxz2456789"
#define NAME_ALPHABET_LEN 27
#define CONTINUE_PREFIX "rfc1."
#define MSG_CONTINUE_EXPIRED                                                                       \
    "The provided continue parameter is too old to display a consistent list result. You can "     \
    "start a new list without the continue parameter, or use the continue token in this "          \
    "response to retrieve the remainder of the results. Continuing with the provided token "       \
    "results in an inconsistent list - objects that were created, modified, or deleted between "   \
    "the time the first chunk was returned and now may show up in the list."
/* ------------------------------------------------------------------------------------------ */
/* string-keyed hash map                                                                        */

typedef struct {
    uint64_t h; /* the key's hash */
    const char *key; /* borrowed from the value; NULL = empty slot */
    void *val; /* the value */
} slot_t;

typedef struct {
    slot_t *slots; /* cap slots */
    size_t cap; /* power of two, or 0 */
    size_t n; /* used slots */
} map_t;

static uint64_t s_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static slot_t *s_map_find(const map_t *m, const char *k, uint64_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *sl = &m->slots[i];
        if (!sl->key)
            return NULL;
        if (sl->h == h && strcmp(sl->key, k) == 0)
            return sl;
    }
}

static void *s_map_get(const map_t *m, const char *k)
{
    slot_t *sl = s_map_find(m, k, s_hash(k));
    return sl ? sl->val : NULL;
}

static void s_map_insert_slot(map_t *m, uint64_t h, const char *k, void *v)
{
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key)
        i = (i + 1) & mask;
    m->slots[i] = (slot_t){h, k, v};
    m->n++;
}

static int s_map_grow(map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : MAP_MIN_CAP;
    slot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return ERR_NOMEM;
    slot_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = ns;
    m->cap = ncap;
    m->n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            s_map_insert_slot(m, old[i].h, old[i].key, old[i].val);
    free(old);
    return 0;
}

/* Inserts or replaces k → v. Returns 0 or ERR_NOMEM. */
static int s_map_put(map_t *m, const char *k, void *v)
{
    uint64_t h = s_hash(k);
    slot_t *sl = s_map_find(m, k, h);
    if (sl) {
        sl->key = k;
        sl->val = v;
        return 0;
    }
    if ((m->n + 1) * 10 > m->cap * 7 && s_map_grow(m) != 0)
        return ERR_NOMEM;
    s_map_insert_slot(m, h, k, v);
    return 0;
}

/* Removes k; returns its value or NULL. */
static void *s_map_del(map_t *m, const char *k)
{
    slot_t *sl = s_map_find(m, k, s_hash(k));
    if (!sl)
        return NULL;
    void *v = sl->val;
    size_t mask = m->cap - 1;
    size_t i = (size_t)(sl - m->slots);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = m->slots[j].h & mask;
        /* move j into the hole i when its home is not in (i, j] cyclically */
        bool in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (slot_t){0, NULL, NULL};
    m->n--;
    return v;
}

static void s_map_free(map_t *m)
{
    free(m->slots);
    *m = (map_t){0};
}

/* ------------------------------------------------------------------------------------------ */
/* types                                                                                        */

typedef struct entry {
    objstore_res_t *res; /* the resource */
    json_t *obj; /* the stored immutable tree (one reference) */
    char uid[UID_LEN + 1]; /* metadata.uid */
    char **owners; /* owner uids this entry is indexed under */
    uint32_t n_owners; /* entries in owners */
    const char *ns; /* namespace ("" cluster-scoped), inside the allocation */
    const char *name; /* name, inside key */
    char key[]; /* "ns/name" NUL then ns NUL */
} entry_t;

typedef struct {
    char uid[UID_LEN + 1]; /* the owner uid (map key) */
    entry_t **v; /* dependents */
    size_t n; /* used */
    size_t cap; /* allocated */
} depvec_t;

typedef struct {
    char *name; /* namespace name (map key) */
    size_t count; /* namespaced objects stored in it */
    bool terminating; /* the namespace object is being deleted */
    bool swept; /* its contents were sent a delete */
} nsinfo_t;

struct objstore_res {
    objstore_resdesc_t desc; /* strings point at the fields below */
    char *group; /* owned copy */
    char *version; /* owned copy */
    char *resource; /* owned copy */
    char *kind; /* owned copy */
    char *api_version; /* "group/version" or "version" */
    char *qualified; /* "resource.group" or "resource" */
    char *kind_qualified; /* "Kind.group" or "Kind" */
    bool is_ns; /* the core namespaces resource */
    bool is_rbac; /* names are path segments, not DNS subdomains */
    map_t objs; /* "ns/name" → entry_t */
    objstore_watch_t *watches; /* live watches */
};

struct objstore_watch {
    objstore_res_t *res; /* NULL once detached (resource unregistered) */
    char *ns; /* namespace, NULL = all */
    objstore_filter_fn filter; /* selector or NULL */
    void *filter_arg; /* its argument */
    objstore_watch_fn cb; /* the callback */
    void *cb_arg; /* its argument */
    uint64_t last_rv; /* the newest RV delivered (or skipped) */
    bool stopped; /* deliver nothing more */
    bool zombie; /* objstore_watch_stop called during dispatch: free later */
    bool replaying; /* inside objstore_watch(): live dispatch skips it */
    struct objstore_watch *prev; /* list links */
    struct objstore_watch *next; /* list links */
};

typedef struct {
    uint64_t rv; /* the event's RV */
    objstore_res_t *res; /* its resource (NULL once unregistered) */
    objstore_evtype_t type; /* ADDED / MODIFIED / DELETED */
    json_t *obj; /* the new state (DELETED: final state at the deletion RV) */
    json_t *prev; /* MODIFIED: the previous state; else NULL */
    const char *ns; /* namespace, borrowed from obj */
} hev_t;

typedef struct {
    const json_t *obj; /* the object serialised */
    char *text; /* json_dumps, lazily */
    size_t len; /* strlen(text) */
} evcache_t;

typedef struct {
    uint64_t id; /* token id */
    uint64_t rv; /* list RV */
    objstore_res_t *res; /* resource */
    json_t **items; /* references */
    size_t n; /* items */
    int64_t created; /* clock ms */
} snap_t;

typedef struct {
    char **v; /* strdup'd uids */
    size_t n; /* used */
    size_t cap; /* allocated */
} strvec_t;

struct objstore {
    uint64_t rv; /* the global resourceVersion */
    objstore_clock_fn clock; /* time source or NULL */
    void *clock_arg; /* its argument */
    objstore_admit_fn admit; /* create admission hook or NULL */
    void *admit_arg; /* its argument */
    uint64_t rng; /* splitmix64 state */
    objstore_res_t **res; /* registered resources */
    size_t n_res; /* used */
    size_t cap_res; /* allocated */
    objstore_res_t *ns_res; /* the namespaces resource, when registered */
    map_t uids; /* uid → entry_t */
    map_t owners; /* owner uid → depvec_t */
    map_t nsinfo; /* namespace → nsinfo_t */
    hev_t *ring; /* event history */
    size_t ring_cap; /* allocated slots (the history size) */
    size_t ring_head; /* index of the oldest event */
    size_t ring_n; /* events held */
    uint64_t delivered_rv; /* events up to here were delivered to live watches */
    bool dispatching; /* inside s_dispatch */
    bool reap; /* zombie watches wait to be freed */
    objstore_watch_t *detached; /* watches of unregistered resources */
    snap_t snaps[OBJSTORE_SNAPSHOTS_MAX]; /* list snapshots (items NULL = free slot) */
    uint64_t next_snap; /* next snapshot id */
    strvec_t q_gone; /* uids of removed objects that had dependents */
    strvec_t q_dep; /* uids of objects whose owners must be checked */
    strvec_t q_owner; /* uids of owners in foreground/orphan deletion */
    bool gc_scan; /* a queue overflowed: rebuild the queues from a scan */
    nsinfo_t **term; /* terminating namespaces */
    size_t n_term; /* used */
    size_t cap_term; /* allocated */
    json_t *last_obj; /* the object of the last delivered event whose text was built (1 ref) */
    char *last_text; /* its compact JSON, kept for objstore_obj_json() */
    size_t last_len; /* strlen(last_text) */
};

/* ------------------------------------------------------------------------------------------ */
/* small helpers                                                                                */

static int64_t s_realtime_ms(void *arg)
{
    (void)arg;
    return rftime_now_ms();
}

int64_t objstore_now_ms(const objstore_t *s)
{
    return s->clock ? s->clock(s->clock_arg) : s_realtime_ms(NULL);
}

static void s_format_time(int64_t ms, char *buf, size_t size)
{
    if (rftime_format(ms, RFTIME_SEC, buf, size) != 0)
        snprintf(buf, size, "1970-01-01T00:00:00Z");
}

static uint64_t s_rand(objstore_t *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void s_uid(objstore_t *s, char *out)
{
    unsigned char b[16];
    uint64_t a = s_rand(s), c = s_rand(s);
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* Parses a decimal RV. Returns 0 or ERR_INVAL. */
static int s_parse_rv(const char *str, uint64_t *out)
{
    if (!str || !*str || strlen(str) > 20)
        return ERR_INVAL;
    uint64_t v = 0;
    for (const char *p = str; *p; p++) {
        if (*p < '0' || *p > '9')
            return ERR_INVAL;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ERR_INVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static const char *s_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const json_t *s_meta(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

static const char *s_meta_str(const json_t *obj, const char *k)
{
    return s_str(s_meta(obj), k);
}

static bool s_deleting(const json_t *obj)
{
    return json_object_get(s_meta(obj), "deletionTimestamp") != NULL;
}

static bool s_str_in_array(const json_t *arr, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        const char *sv = json_string_value(x);
        if (sv && strcmp(sv, v) == 0)
            return true;
    }
    return false;
}

static bool s_has_finalizer(const json_t *obj, const char *f)
{
    return s_str_in_array(json_object_get(s_meta(obj), "finalizers"), f);
}

static bool s_blocking(const objstore_res_t *r, const json_t *obj)
{
    if (json_array_size(json_object_get(s_meta(obj), "finalizers")) > 0)
        return true;
    return r->is_ns &&
           json_array_size(json_object_get(json_object_get(obj, "spec"), "finalizers")) > 0;
}

static int64_t s_int(const json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* A copy of `arr` (array of strings) without value `v`. New reference or NULL. */
static json_t *s_array_without(const json_t *arr, const char *v)
{
    json_t *out = json_array();
    size_t i;
    json_t *x;
    if (!out)
        return NULL;
    json_array_foreach(arr, i, x)
    {
        const char *sv = json_string_value(x);
        if (sv && strcmp(sv, v) == 0)
            continue;
        if (json_array_append(out, x) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Makes obj's top level and metadata private copies (shallow), so the store can set fields
 * without touching shared subtrees. Takes `obj`, returns the private tree or NULL. */
static json_t *s_own(json_t *obj)
{
    json_t *o = obj;
    if (o->refcount > 1) {
        o = json_copy(obj);
        json_decref(obj);
        if (!o)
            return NULL;
    }
    json_t *m = json_object_get(o, "metadata");
    json_t *nm = json_is_object(m) ? json_copy(m) : json_object();
    if (!nm || json_object_set_new(o, "metadata", nm) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A shallow copy of `obj` with a private metadata object. New reference or NULL. */
static json_t *s_clone(const json_t *obj)
{
    json_t *c = json_copy((json_t *)obj);
    return c ? s_own(c) : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* status errors                                                                                */

static void s_copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void s_st_clear(objstore_status_t *st)
{
    if (!st)
        return;
    st->code = 0;
    st->reason = "";
    st->message[0] = st->name[0] = st->group[0] = st->kind[0] = st->uid[0] = '\0';
    st->retry_after = 0;
    st->cause_reason = NULL;
    st->cause_message[0] = st->cause_field[0] = '\0';
}

/* Fills *st with code/reason/details (kind = plural resource) and a formatted message; returns e.
 */
static int s_fail(objstore_status_t *st, int e, int code, const char *reason,
                  const objstore_res_t *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static int s_fail(objstore_status_t *st, int e, int code, const char *reason,
                  const objstore_res_t *r, const char *name, const char *fmt, ...)
{
    if (!st)
        return e;
    s_st_clear(st);
    st->code = code;
    st->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof(st->message), fmt, ap);
    va_end(ap);
    if (r) {
        s_copy(st->group, sizeof(st->group), r->group);
        s_copy(st->kind, sizeof(st->kind), r->resource);
    }
    s_copy(st->name, sizeof(st->name), name);
    return e;
}

static int s_notfound(objstore_status_t *st, const objstore_res_t *r, const char *name)
{
    return s_fail(st, ERR_NOTFOUND, 404, "NotFound", r, name, "%s \"%s\" not found", r->qualified,
                  name ? name : "");
}

static int s_conflict(objstore_status_t *st, const objstore_res_t *r, const char *name)
{
    return s_fail(
        st, ERR_CONFLICT, 409, "Conflict", r, name,
        "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please "
        "apply your changes to the latest version and try again",
        r->qualified, name);
}

static int s_badrequest(objstore_status_t *st, const char *msg)
{
    return s_fail(st, ERR_INVAL, 400, "BadRequest", NULL, NULL, "%s", msg);
}

/* 422 Invalid: "<Kind[.group]> "<name>" is invalid: <field>: <detail>", details kind = Kind. */
static int s_invalid(objstore_status_t *st, const objstore_res_t *r, const char *name,
                     const char *field, const char *cause_reason, const char *detail)
{
    if (!st)
        return ERR_INVAL;
    s_fail(st, ERR_INVAL, 422, "Invalid", r, name, "%s \"%s\" is invalid: %s: %s",
           r->kind_qualified, name ? name : "", field, detail);
    s_copy(st->kind, sizeof(st->kind), r->kind);
    st->cause_reason = cause_reason;
    s_copy(st->cause_message, sizeof(st->cause_message), detail);
    s_copy(st->cause_field, sizeof(st->cause_field), field);
    return ERR_INVAL;
}

static int s_nomem(objstore_status_t *st)
{
    return s_fail(st, ERR_NOMEM, 500, "InternalError", NULL, NULL, "out of memory");
}

json_t *objstore_status_json(const objstore_status_t *st)
{
    /* metav1.Status's field order: ..., reason, details, code */
    json_t *o = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s}", "kind", "Status", "apiVersion", "v1",
                          "metadata", "status", st->code < 400 ? "Success" : "Failure", "message",
                          st->message, "reason", st->reason ? st->reason : "");
    if (!o)
        return NULL;
    json_t *d = json_object();
    if (!d)
        goto fail;
    if (st->name[0])
        json_object_set_new(d, "name", json_string(st->name));
    if (st->group[0])
        json_object_set_new(d, "group", json_string(st->group));
    if (st->kind[0])
        json_object_set_new(d, "kind", json_string(st->kind));
    if (st->uid[0])
        json_object_set_new(d, "uid", json_string(st->uid));
    if (st->cause_reason) {
        json_t *c = json_pack("[{s:s, s:s, s:s}]", "reason", st->cause_reason, "message",
                              st->cause_message, "field", st->cause_field);
        if (c)
            json_object_set_new(d, "causes", c);
    }
    if (st->retry_after > 0)
        json_object_set_new(d, "retryAfterSeconds", json_integer(st->retry_after));
    if (json_object_size(d) > 0 || st->name[0])
        json_object_set_new(o, "details", d);
    else
        json_decref(d);
    json_object_set_new(o, "code", json_integer(st->code));
    return o;
fail:
    json_decref(o);
    return NULL;
}

json_t *objstore_status_success(const objstore_res_t *r, const json_t *obj)
{
    const char *uid = s_meta_str(obj, "uid");
    return json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s, s:s, s:s}}", "kind", "Status",
                     "apiVersion", "v1", "metadata", "status", "Success", "details", "name",
                     s_meta_str(obj, "name") ? s_meta_str(obj, "name") : "", "group", r->group,
                     "kind", r->resource, "uid", uid ? uid : "");
}

void objstore_res_qualified(const objstore_res_t *r, char *buf, size_t size)
{
    s_copy(buf, size, r->qualified);
}

const char *objstore_evtype_str(objstore_evtype_t t)
{
    switch (t) {
    case OBJSTORE_ADDED:
        return "ADDED";
    case OBJSTORE_MODIFIED:
        return "MODIFIED";
    case OBJSTORE_DELETED:
        return "DELETED";
    }
    return "ERROR";
}

/* ------------------------------------------------------------------------------------------ */
/* name validation                                                                              */

/* Validates a name for r; fills *st (422) and returns ERR_INVAL when invalid. */
static int s_check_name(const objstore_res_t *r, const char *name, objstore_status_t *st)
{
    char detail[OBJSTORE_MSG_MAX];
    if (r->is_rbac) {
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/') ||
            strchr(name, '%') || strlen(name) > NAME_SUBDOMAIN_MAX) {
            snprintf(detail, sizeof(detail), "Invalid value: \"%s\": may not contain '/' or '%%'",
                     name);
            return s_invalid(st, r, name, "metadata.name", "FieldValueInvalid", detail);
        }
        return 0;
    }
    size_t max = r->is_ns ? NAME_LABEL_MAX : NAME_SUBDOMAIN_MAX;
    if (strlen(name) > max) {
        snprintf(detail, sizeof(detail),
                 "Invalid value: \"%.*s\": must be no more than %zu characters", (int)max, name,
                 max);
        return s_invalid(st, r, name, "metadata.name", "FieldValueInvalid", detail);
    }
    bool ok = r->is_ns ? metaval_dns1123_label(name, strlen(name))
                       : metaval_dns1123_subdomain(name, strlen(name));
    if (!ok) {
        snprintf(detail, sizeof(detail), "Invalid value: \"%s\": %s", name,
                 r->is_ns ? METAVAL_MSG_LABEL : METAVAL_MSG_SUBDOMAIN);
        return s_invalid(st, r, name, "metadata.name", "FieldValueInvalid", detail);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* GC queues                                                                                    */

static void s_strvec_free(strvec_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->v[i]);
    free(q->v);
    *q = (strvec_t){0};
}

/* Queues a uid; on overflow or out of memory falls back to a full scan at the next GC run. */
static void s_queue(objstore_t *s, strvec_t *q, const char *uid)
{
    if (s->gc_scan)
        return;
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        char **nv = ncap <= OBJSTORE_GC_QUEUE_MAX ? realloc(q->v, ncap * sizeof(*nv)) : NULL;
        if (!nv) {
            s->gc_scan = true;
            return;
        }
        q->v = nv;
        q->cap = ncap;
    }
    char *d = strdup(uid);
    if (!d) {
        s->gc_scan = true;
        return;
    }
    q->v[q->n++] = d;
}

/* ------------------------------------------------------------------------------------------ */
/* entries and indexes                                                                          */

static nsinfo_t *s_nsinfo(objstore_t *s, const char *ns, bool create)
{
    nsinfo_t *ni = s_map_get(&s->nsinfo, ns);
    if (ni || !create)
        return ni;
    ni = calloc(1, sizeof(*ni));
    if (!ni || !(ni->name = strdup(ns)) || s_map_put(&s->nsinfo, ni->name, ni) != 0) {
        if (ni)
            free(ni->name);
        free(ni);
        return NULL;
    }
    return ni;
}

static int s_make_key(char *buf, size_t size, const char *ns, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", ns ? ns : "", name ? name : "");
    return (n < 0 || (size_t)n >= size) ? ERR_TOOBIG : 0;
}

static entry_t *s_lookup(const objstore_res_t *r, const char *ns, const char *name)
{
    char key[KEY_MAX];
    if (!name || s_make_key(key, sizeof(key), r->desc.namespaced ? ns : "", name) != 0)
        return NULL;
    return s_map_get(&r->objs, key);
}

static void s_dep_remove(objstore_t *s, const char *owner, entry_t *e)
{
    depvec_t *dv = s_map_get(&s->owners, owner);
    if (!dv)
        return;
    for (size_t i = 0; i < dv->n; i++) {
        if (dv->v[i] == e) {
            dv->v[i] = dv->v[--dv->n];
            break;
        }
    }
    if (dv->n == 0) {
        s_map_del(&s->owners, dv->uid);
        free(dv->v);
        free(dv);
    }
}

static void s_owners_unindex(objstore_t *s, entry_t *e)
{
    for (uint32_t i = 0; i < e->n_owners; i++) {
        s_dep_remove(s, e->owners[i], e);
        free(e->owners[i]);
    }
    free(e->owners);
    e->owners = NULL;
    e->n_owners = 0;
}

/* Indexes e under each ownerReferences[].uid of its object. Returns 0 or ERR_NOMEM (then the
 * GC falls back to a scan). */
static int s_owners_index(objstore_t *s, entry_t *e)
{
    json_t *refs = json_object_get(s_meta(e->obj), "ownerReferences");
    size_t n = json_array_size(refs);
    if (n == 0)
        return 0;
    e->owners = calloc(n, sizeof(char *));
    if (!e->owners)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const char *uid = s_str(json_array_get(refs, i), "uid");
        if (!uid || !*uid || strlen(uid) > UID_LEN)
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < e->n_owners; j++)
            dup = dup || strcmp(e->owners[j], uid) == 0;
        if (dup)
            continue;
        depvec_t *dv = s_map_get(&s->owners, uid);
        if (!dv) {
            dv = calloc(1, sizeof(*dv));
            if (!dv)
                goto nomem;
            s_copy(dv->uid, sizeof(dv->uid), uid);
            if (s_map_put(&s->owners, dv->uid, dv) != 0) {
                free(dv);
                goto nomem;
            }
        }
        if (dv->n == dv->cap) {
            size_t ncap = dv->cap ? dv->cap * 2 : 4;
            entry_t **nv = realloc(dv->v, ncap * sizeof(*nv));
            if (!nv)
                goto nomem;
            dv->v = nv;
            dv->cap = ncap;
        }
        char *d = strdup(uid);
        if (!d)
            goto nomem;
        dv->v[dv->n++] = e;
        e->owners[e->n_owners++] = d;
    }
    return 0;
nomem:
    s->gc_scan = true;
    return ERR_NOMEM;
}

static entry_t *s_entry_new(objstore_res_t *r, const char *ns, const char *name, const char *uid)
{
    size_t nl = strlen(ns), ml = strlen(name);
    entry_t *e = calloc(1, sizeof(*e) + nl + 1 + ml + 1 + nl + 1);
    if (!e)
        return NULL;
    e->res = r;
    memcpy(e->key, ns, nl);
    e->key[nl] = '/';
    memcpy(e->key + nl + 1, name, ml + 1);
    e->name = e->key + nl + 1;
    char *nsc = e->key + nl + 1 + ml + 1;
    memcpy(nsc, ns, nl + 1);
    e->ns = nsc;
    s_copy(e->uid, sizeof(e->uid), uid);
    return e;
}

static void s_entry_free(entry_t *e)
{
    if (!e)
        return;
    json_decref(e->obj);
    for (uint32_t i = 0; i < e->n_owners; i++)
        free(e->owners[i]);
    free(e->owners);
    free(e);
}

/* ------------------------------------------------------------------------------------------ */
/* event ring and dispatch                                                                      */

static uint64_t s_oldest_rv(const objstore_t *s)
{
    return s->rv - s->ring_n + 1;
}

static hev_t *s_ring_at(objstore_t *s, uint64_t rv)
{
    if (s->ring_n == 0 || rv > s->rv || rv < s_oldest_rv(s))
        return NULL;
    return &s->ring[(s->ring_head + (size_t)(rv - s_oldest_rv(s))) % s->ring_cap];
}

static void s_ring_drop_oldest(objstore_t *s)
{
    hev_t *ev = &s->ring[s->ring_head];
    json_decref(ev->obj);
    json_decref(ev->prev);
    *ev = (hev_t){0};
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
    s->ring_n--;
}

static int s_ring_grow(objstore_t *s)
{
    size_t ncap = s->ring_cap * 2;
    hev_t *nr = calloc(ncap, sizeof(*nr));
    if (!nr)
        return ERR_NOMEM;
    for (size_t i = 0; i < s->ring_n; i++)
        nr[i] = s->ring[(s->ring_head + i) % s->ring_cap];
    free(s->ring);
    s->ring = nr;
    s->ring_cap = ncap;
    s->ring_head = 0;
    return 0;
}

static void s_evcache_free(evcache_t *c)
{
    free(c->text);
    c->text = NULL;
}

const char *objstore_event_json(const objstore_event_t *ev, size_t *len)
{
    evcache_t *c = ev->priv_;
    if (!c)
        return NULL;
    if (!c->text) {
        c->text = jx_dumps_compact(c->obj, &c->len);
        if (!c->text)
            return NULL;
    }
    if (len)
        *len = c->len;
    return c->text;
}

/* Per-event delivery state shared by all watches: the serialisation caches and, for filtered
 * watches an object leaves, the previous state re-stamped with the event's RV. */
typedef struct {
    evcache_t cur; /* cache for ev->obj */
    evcache_t gone; /* cache for gone_obj */
    json_t *gone_obj; /* prev with metadata.resourceVersion = ev->rv, built lazily */
} dstate_t;

/* Forgets the text objstore_obj_json() would hand out. */
static void s_last_clear(objstore_t *s)
{
    free(s->last_text);
    s->last_text = NULL;
    s->last_len = 0;
    json_decref(s->last_obj);
    s->last_obj = NULL;
}

const char *objstore_obj_json(objstore_t *s, const json_t *obj, size_t *len)
{
    if (!s || !obj || obj != s->last_obj || !s->last_text)
        return NULL;
    if (len)
        *len = s->last_len;
    return s->last_text;
}

static void s_dstate_free(dstate_t *d)
{
    s_evcache_free(&d->cur);
    s_evcache_free(&d->gone);
    json_decref(d->gone_obj);
}

static int s_call(objstore_watch_t *w, objstore_evtype_t type, const json_t *obj, uint64_t rv,
                  evcache_t *cache)
{
    cache->obj = obj;
    objstore_event_t e = {type, obj, rv, w->res, cache};
    if (w->cb(&e, w->cb_arg) != 0)
        w->stopped = true;
    return 0;
}

static void s_deliver(objstore_watch_t *w, hev_t *ev, dstate_t *d)
{
    if (w->stopped || w->zombie || w->last_rv >= ev->rv || !w->res || ev->res != w->res)
        return;
    w->last_rv = ev->rv;
    if (w->ns && strcmp(w->ns, ev->ns) != 0)
        return;
    if (!w->filter || ev->type != OBJSTORE_MODIFIED) {
        if (!w->filter || w->filter(ev->obj, w->filter_arg))
            s_call(w, ev->type, ev->obj, ev->rv, &d->cur);
        return;
    }
    bool cur = w->filter(ev->obj, w->filter_arg);
    bool old = ev->prev && w->filter(ev->prev, w->filter_arg);
    if (cur) {
        s_call(w, old ? OBJSTORE_MODIFIED : OBJSTORE_ADDED, ev->obj, ev->rv, &d->cur);
    } else if (old) {
        if (!d->gone_obj) {
            char rvs[RV_STR_MAX];
            snprintf(rvs, sizeof(rvs), "%" PRIu64, ev->rv);
            d->gone_obj = s_clone(ev->prev);
            if (!d->gone_obj)
                return;
            json_object_set_new(json_object_get(d->gone_obj, "metadata"), "resourceVersion",
                                json_string(rvs));
        }
        s_call(w, OBJSTORE_DELETED, d->gone_obj, ev->rv, &d->gone);
    }
}

static void s_watch_unlink(objstore_t *s, objstore_watch_t *w)
{
    objstore_watch_t **head = w->res ? &w->res->watches : &s->detached;
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void s_watch_free(objstore_watch_t *w)
{
    free(w->ns);
    free(w);
}

static void s_reap_list(objstore_t *s, objstore_watch_t *head)
{
    objstore_watch_t *w = head, *nx;
    for (; w; w = nx) {
        nx = w->next;
        if (w->zombie) {
            s_watch_unlink(s, w);
            s_watch_free(w);
        }
    }
}

static void s_reap(objstore_t *s)
{
    if (!s->reap || s->dispatching)
        return;
    s->reap = false;
    for (size_t i = 0; i < s->n_res; i++)
        s_reap_list(s, s->res[i]->watches);
    s_reap_list(s, s->detached);
}

static void s_dispatch(objstore_t *s)
{
    if (s->dispatching)
        return;
    s->dispatching = true;
    while (s->delivered_rv < s->rv) {
        uint64_t rv = ++s->delivered_rv;
        hev_t *ev = s_ring_at(s, rv);
        if (!ev || !ev->res)
            continue;
        dstate_t d = {0};
        /* the event may move if a callback grows the ring: deliver from a copy */
        hev_t copy = *ev;
        json_incref(copy.obj);
        json_incref(copy.prev);
        for (objstore_watch_t *w = copy.res->watches; w; w = w->next)
            if (!w->replaying)
                s_deliver(w, &copy, &d);
        /* keep the event's text for the write's own reply (objstore_obj_json) */
        s_last_clear(s);
        if (d.cur.text && d.cur.obj == copy.obj) {
            s->last_obj = json_incref(copy.obj);
            s->last_text = d.cur.text;
            s->last_len = d.cur.len;
            d.cur.text = NULL;
        }
        s_dstate_free(&d);
        json_decref(copy.obj);
        json_decref(copy.prev);
    }
    s->dispatching = false;
    s_reap(s);
}

/* Advances the global RV to s->rv + 1 (which the caller stamped into obj), records the event
 * and delivers it. Takes its own references to obj and prev (borrowed from the caller). */
static void s_commit(objstore_t *s, objstore_res_t *r, objstore_evtype_t type, json_t *obj,
                     json_t *prev)
{
    if (s->ring_n == s->ring_cap) {
        if (s_oldest_rv(s) <= s->delivered_rv || s_ring_grow(s) != 0)
            s_ring_drop_oldest(s);
    }
    s->rv++;
    hev_t *ev = &s->ring[(s->ring_head + s->ring_n) % s->ring_cap];
    s->ring_n++;
    *ev = (hev_t){s->rv, r, type, json_incref(obj), json_incref(prev), NULL};
    ev->ns = s_meta_str(obj, "namespace");
    if (!ev->ns)
        ev->ns = "";
    s_dispatch(s);
}

/* ------------------------------------------------------------------------------------------ */
/* lifetime and resources                                                                       */

static void s_snap_free(snap_t *sn)
{
    for (size_t i = 0; i < sn->n; i++)
        json_decref(sn->items[i]);
    free(sn->items);
    *sn = (snap_t){0};
}

objstore_t *objstore_new(size_t history)
{
    objstore_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ring_cap = history ? history : OBJSTORE_HISTORY_DEFAULT;
    if (s->ring_cap < HISTORY_MIN)
        s->ring_cap = HISTORY_MIN;
    s->ring = calloc(s->ring_cap, sizeof(*s->ring));
    if (!s->ring) {
        free(s);
        return NULL;
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)s_realtime_ms(NULL) ^ ((uint64_t)getpid() << 32);
    s->rng = seed;
    s->next_snap = 1;
    return s;
}

void objstore_set_clock(objstore_t *s, objstore_clock_fn fn, void *arg)
{
    s->clock = fn;
    s->clock_arg = arg;
}

void objstore_set_admit(objstore_t *s, objstore_admit_fn fn, void *arg)
{
    s->admit = fn;
    s->admit_arg = arg;
}

void objstore_seed(objstore_t *s, uint64_t seed)
{
    s->rng = seed;
}

static void s_res_free(objstore_res_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->objs.cap; i++)
        if (r->objs.slots[i].key)
            s_entry_free(r->objs.slots[i].val);
    s_map_free(&r->objs);
    free(r->group);
    free(r->version);
    free(r->resource);
    free(r->kind);
    free(r->api_version);
    free(r->qualified);
    free(r->kind_qualified);
    free(r);
}

static void s_watch_list_free(objstore_watch_t *w)
{
    objstore_watch_t *nx;
    for (; w; w = nx) {
        nx = w->next;
        s_watch_free(w);
    }
}

void objstore_destroy(objstore_t **sp)
{
    if (!sp || !*sp)
        return;
    objstore_t *s = *sp;
    for (size_t i = 0; i < s->n_res; i++) {
        s_watch_list_free(s->res[i]->watches);
        s_res_free(s->res[i]);
    }
    free(s->res);
    s_watch_list_free(s->detached);
    s_last_clear(s);
    while (s->ring_n)
        s_ring_drop_oldest(s);
    free(s->ring);
    for (size_t i = 0; i < OBJSTORE_SNAPSHOTS_MAX; i++)
        s_snap_free(&s->snaps[i]);
    s_strvec_free(&s->q_gone);
    s_strvec_free(&s->q_dep);
    s_strvec_free(&s->q_owner);
    for (size_t i = 0; i < s->owners.cap; i++) {
        depvec_t *dv = s->owners.slots[i].val;
        if (s->owners.slots[i].key) {
            free(dv->v);
            free(dv);
        }
    }
    s_map_free(&s->owners);
    for (size_t i = 0; i < s->nsinfo.cap; i++) {
        nsinfo_t *ni = s->nsinfo.slots[i].val;
        if (s->nsinfo.slots[i].key) {
            free(ni->name);
            free(ni);
        }
    }
    s_map_free(&s->nsinfo);
    s_map_free(&s->uids);
    free(s->term);
    free(s);
    *sp = NULL;
}

static char *s_join(const char *a, const char *sep, const char *b)
{
    size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", a, sep, b);
    return p;
}

objstore_res_t *objstore_find(const objstore_t *s, const char *group, const char *resource)
{
    if (!group)
        group = "";
    for (size_t i = 0; resource && i < s->n_res; i++)
        if (strcmp(s->res[i]->group, group) == 0 && strcmp(s->res[i]->resource, resource) == 0)
            return s->res[i];
    return NULL;
}

objstore_res_t *objstore_find_kind(const objstore_t *s, const char *group, const char *kind)
{
    if (!group)
        group = "";
    for (size_t i = 0; kind && i < s->n_res; i++)
        if (strcmp(s->res[i]->group, group) == 0 && strcmp(s->res[i]->kind, kind) == 0)
            return s->res[i];
    return NULL;
}

const objstore_resdesc_t *objstore_res_desc(const objstore_res_t *r)
{
    return &r->desc;
}

size_t objstore_res_count(const objstore_res_t *r)
{
    return r->objs.n;
}

objstore_res_t *objstore_register(objstore_t *s, const objstore_resdesc_t *desc)
{
    if (!desc || !desc->version || !*desc->version || !desc->resource || !*desc->resource ||
        !desc->kind || !*desc->kind)
        return NULL;
    const char *group = desc->group ? desc->group : "";
    if (objstore_find(s, group, desc->resource))
        return NULL;
    if (s->n_res == s->cap_res) {
        size_t ncap = s->cap_res ? s->cap_res * 2 : 32;
        objstore_res_t **nr = realloc(s->res, ncap * sizeof(*nr));
        if (!nr)
            return NULL;
        s->res = nr;
        s->cap_res = ncap;
    }
    objstore_res_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->group = strdup(group);
    r->version = strdup(desc->version);
    r->resource = strdup(desc->resource);
    r->kind = strdup(desc->kind);
    if (!r->group || !r->version || !r->resource || !r->kind)
        goto fail;
    r->api_version = *group ? s_join(group, "/", desc->version) : strdup(desc->version);
    r->qualified = *group ? s_join(desc->resource, ".", group) : strdup(desc->resource);
    r->kind_qualified = *group ? s_join(desc->kind, ".", group) : strdup(desc->kind);
    if (!r->api_version || !r->qualified || !r->kind_qualified)
        goto fail;
    r->desc = *desc;
    r->desc.group = r->group;
    r->desc.version = r->version;
    r->desc.resource = r->resource;
    r->desc.kind = r->kind;
    r->is_ns = !*group && strcmp(desc->resource, "namespaces") == 0;
    r->is_rbac = strcmp(group, "rbac.authorization.k8s.io") == 0;
    if (r->is_ns)
        r->desc.namespaced = false;
    s->res[s->n_res++] = r;
    if (r->is_ns)
        s->ns_res = r;
    return r;
fail:
    s_res_free(r);
    return NULL;
}

uint64_t objstore_rv(const objstore_t *s)
{
    return s->rv;
}

/* ------------------------------------------------------------------------------------------ */
/* committing writes                                                                            */

static bool s_jeq(const json_t *a, const json_t *b)
{
    if (a == b)
        return true;
    return a && b && json_equal((json_t *)a, (json_t *)b);
}

static bool s_arr_eq(const json_t *a, const json_t *b)
{
    if (json_array_size(a) == 0 && json_array_size(b) == 0)
        return true;
    return s_jeq(a, b);
}

/* True when a and b agree on every top-level key except metadata. */
static bool s_nonmeta_equal(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    size_t na = 0, nb = 0;
    json_object_foreach((json_t *)a, k, v)
    {
        if (strcmp(k, "metadata") == 0)
            continue;
        na++;
        if (!s_jeq(v, json_object_get(b, k)))
            return false;
    }
    json_object_foreach((json_t *)b, k, v) nb += strcmp(k, "metadata") != 0;
    return na == nb;
}

static void s_term_remove(objstore_t *s, nsinfo_t *ni)
{
    for (size_t i = 0; i < s->n_term; i++) {
        if (s->term[i] == ni) {
            s->term[i] = s->term[--s->n_term];
            break;
        }
    }
    ni->terminating = false;
    ni->swept = false;
}

static void s_term_add(objstore_t *s, const char *ns)
{
    nsinfo_t *ni = s_nsinfo(s, ns, true);
    if (!ni || ni->terminating)
        return;
    if (s->n_term == s->cap_term) {
        size_t ncap = s->cap_term ? s->cap_term * 2 : 8;
        nsinfo_t **nt = realloc(s->term, ncap * sizeof(*nt));
        if (!nt)
            return;
        s->term = nt;
        s->cap_term = ncap;
    }
    ni->terminating = true;
    ni->swept = false;
    s->term[s->n_term++] = ni;
}

static void s_set_rv(json_t *obj, uint64_t rv)
{
    char rvs[RV_STR_MAX];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rv);
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rvs));
}

/* Removes e from the store: DELETED event with its last state at a new RV. Returns a new
 * reference to that final state (never NULL unless out of memory). Frees e. */
static json_t *s_remove(objstore_t *s, entry_t *e)
{
    objstore_res_t *r = e->res;
    json_t *fin = s_clone(e->obj);
    if (fin)
        s_set_rv(fin, s->rv + 1);
    else
        fin = json_incref(e->obj);
    s_map_del(&r->objs, e->key);
    s_map_del(&s->uids, e->uid);
    if (s_map_get(&s->owners, e->uid))
        s_queue(s, &s->q_gone, e->uid);
    for (uint32_t i = 0; i < e->n_owners; i++) {
        entry_t *o = s_map_get(&s->uids, e->owners[i]);
        if (o && s_deleting(o->obj) && s_has_finalizer(o->obj, FIN_FOREGROUND))
            s_queue(s, &s->q_owner, o->uid);
    }
    s_owners_unindex(s, e);
    if (r->desc.namespaced) {
        nsinfo_t *ni = s_nsinfo(s, e->ns, false);
        if (ni && ni->count)
            ni->count--;
    }
    if (r->is_ns) {
        nsinfo_t *ni = s_nsinfo(s, e->name, false);
        if (ni && ni->terminating)
            s_term_remove(s, ni);
    }
    s_commit(s, r, OBJSTORE_DELETED, fin, NULL);
    s_entry_free(e);
    return fin;
}

/* Stores `nobj` (owned, metadata private) as e's new state at a new RV and emits MODIFIED. */
static void s_store(objstore_t *s, entry_t *e, json_t *nobj)
{
    json_t *old = e->obj;
    s_set_rv(nobj, s->rv + 1);
    e->obj = nobj;
    if (!s_jeq(json_object_get(s_meta(old), "ownerReferences"),
               json_object_get(s_meta(nobj), "ownerReferences"))) {
        s_owners_unindex(s, e);
        s_owners_index(s, e);
        if (e->n_owners)
            s_queue(s, &s->q_dep, e->uid);
    }
    if (s_deleting(nobj) &&
        (s_has_finalizer(nobj, FIN_FOREGROUND) || s_has_finalizer(nobj, FIN_ORPHAN)))
        s_queue(s, &s->q_owner, e->uid);
    s_commit(s, e->res, OBJSTORE_MODIFIED, nobj, old);
    json_decref(old);
}

/* ------------------------------------------------------------------------------------------ */
/* get / create                                                                                 */

int objstore_get(objstore_t *s, objstore_res_t *r, const char *ns, const char *name, json_t **out,
                 objstore_status_t *st)
{
    (void)s;
    s_st_clear(st);
    if (out)
        *out = NULL;
    entry_t *e = s_lookup(r, ns, name);
    if (!e)
        return s_notfound(st, r, name);
    if (out)
        *out = json_incref(e->obj);
    return 0;
}

/* Namespace admission for creates: 404 when missing, 403 when terminating. */
static int s_check_ns(objstore_t *s, objstore_res_t *r, const char *ns, const char *name,
                      objstore_status_t *st)
{
    if (!r->desc.namespaced || !s->ns_res)
        return 0;
    entry_t *nse = s_lookup(s->ns_res, "", ns);
    if (!nse)
        return s_fail(st, ERR_NOTFOUND, 404, "NotFound", s->ns_res, ns,
                      "namespaces \"%s\" not found", ns);
    if (s_deleting(nse->obj))
        return s_fail(st, ERR_FORBIDDEN, 403, "Forbidden", r, name,
                      "%s \"%s\" is forbidden: unable to create new content in namespace %s "
                      "because it is being terminated",
                      r->qualified, name, ns);
    return 0;
}

/* Namespaces get status.phase Active, spec.finalizers ["kubernetes"] and the
 * kubernetes.io/metadata.name label, as kube-apiserver's strategy does. */
static int s_ns_prepare(json_t *obj, const char *name)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *nspec = json_is_object(spec) ? json_copy(spec) : json_object();
    json_t *meta = json_object_get(obj, "metadata");
    json_t *labels = json_object_get(meta, "labels");
    json_t *nl = json_is_object(labels) ? json_copy(labels) : json_object();
    if (!nspec || !nl)
        goto fail;
    json_t *fins = json_object_get(nspec, "finalizers");
    if (!s_str_in_array(fins, FIN_NAMESPACE)) {
        json_t *nf = json_is_array(fins) ? json_copy(fins) : json_array();
        if (!nf || json_array_append_new(nf, json_string(FIN_NAMESPACE)) != 0 ||
            json_object_set_new(nspec, "finalizers", nf) != 0)
            goto fail;
    }
    if (json_object_set_new(nl, "kubernetes.io/metadata.name", json_string(name)) != 0 ||
        json_object_set_new(meta, "labels", nl) != 0)
        goto fail_spec;
    nl = NULL;
    if (json_object_set_new(obj, "spec", nspec) != 0)
        return ERR_NOMEM;
    if (json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active")) != 0)
        return ERR_NOMEM;
    return 0;
fail:
    json_decref(nl);
fail_spec:
    json_decref(nspec);
    return ERR_NOMEM;
}

int objstore_create(objstore_t *s, objstore_res_t *r, const char *ns, json_t **objp, json_t **out,
                    objstore_status_t *st)
{
    json_t *obj = objp ? *objp : NULL;
    int rc = 0;
    char namebuf[NAME_SUBDOMAIN_MAX + 1];
    char uid[UID_LEN + 1];
    char ts[TIME_STR_MAX];
    entry_t *e = NULL;
    s_st_clear(st);
    if (objp)
        *objp = NULL;
    if (out)
        *out = NULL;
    if (!ns || !r->desc.namespaced)
        ns = "";
    if (!json_is_object(obj)) {
        rc = s_badrequest(st, "the object provided is not a JSON object");
        goto done;
    }
    obj = s_own(obj);
    if (!obj) {
        rc = s_nomem(st);
        goto done;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (r->desc.namespaced) {
        const char *bns = s_str(meta, "namespace");
        if (!*ns) {
            rc = s_badrequest(st, "the namespace of the object is required");
            goto done;
        }
        if (bns && *bns && strcmp(bns, ns) != 0) {
            rc = s_badrequest(st, "the namespace of the provided object does not match the "
                                  "namespace sent on the request");
            goto done;
        }
        json_object_set_new(meta, "namespace", json_string(ns));
    } else {
        json_object_del(meta, "namespace");
    }
    const char *name = s_str(meta, "name");
    const char *gen = s_str(meta, "generateName");
    if ((!name || !*name) && (!gen || !*gen)) {
        rc = s_invalid(st, r, "", "metadata.name", "FieldValueRequired",
                       "Required value: name or generateName is required");
        goto done;
    }
    if ((rc = s_check_ns(s, r, ns, name ? name : "", st)) != 0)
        goto done;
    if (name && *name) {
        if ((rc = s_check_name(r, name, st)) != 0)
            goto done;
        entry_t *ex = s_lookup(r, ns, name);
        if (ex) {
            rc = s_fail(st, ERR_EXISTS, 409, "AlreadyExists", r, name, "%s%s \"%s\" already exists",
                        s_deleting(ex->obj) ? "object is being deleted: " : "", r->qualified, name);
            goto done;
        }
        s_copy(namebuf, sizeof(namebuf), name);
    } else {
        size_t pl = strlen(gen);
        if (pl > OBJSTORE_GENERATE_PREFIX_MAX)
            pl = OBJSTORE_GENERATE_PREFIX_MAX;
        bool found = false;
        for (int a = 0; a < OBJSTORE_GENERATE_ATTEMPTS && !found; a++) {
            memcpy(namebuf, gen, pl);
            for (int i = 0; i < OBJSTORE_GENERATE_SUFFIX_LEN; i++)
                namebuf[pl + (size_t)i] = NAME_ALPHABET[s_rand(s) % NAME_ALPHABET_LEN];
            namebuf[pl + OBJSTORE_GENERATE_SUFFIX_LEN] = '\0';
            if ((rc = s_check_name(r, namebuf, st)) != 0)
                goto done;
            found = s_lookup(r, ns, namebuf) == NULL;
        }
        if (!found) {
            rc = s_fail(st, ERR_EXISTS, 409, "AlreadyExists", r, namebuf,
                        "%s \"%s\" already exists, the server was not able to generate a unique "
                        "name for the object",
                        r->qualified, namebuf);
            if (st)
                st->retry_after = 1;
            goto done;
        }
    }
    json_object_set_new(meta, "name", json_string(namebuf));
    if (!json_object_get(obj, "apiVersion"))
        json_object_set_new(obj, "apiVersion", json_string(r->api_version));
    if (!json_object_get(obj, "kind"))
        json_object_set_new(obj, "kind", json_string(r->kind));
    if (r->desc.has_status)
        json_object_del(obj, "status");
    if (s->admit) {
        objstore_status_t ast;
        memset(&ast, 0, sizeof(ast));
        if (!s->admit(s, r, ns, obj, &ast, s->admit_arg)) {
            rc = ast.code == 403 ? ERR_FORBIDDEN : ast.code == 500 ? ERR_NOMEM : ERR_INVAL;
            if (st)
                *st = ast;
            goto done;
        }
    }
    if (r->is_ns && s_ns_prepare(obj, namebuf) != 0) {
        rc = s_nomem(st);
        goto done;
    }
    meta = json_object_get(obj, "metadata");
    s_uid(s, uid);
    s_format_time(objstore_now_ms(s), ts, sizeof(ts));
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(ts));
    json_object_set_new(meta, "generation", json_integer(1));
    s_set_rv(obj, s->rv + 1);
    e = s_entry_new(r, ns, namebuf, uid);
    if (!e || s_map_put(&r->objs, e->key, e) != 0) {
        rc = s_nomem(st);
        goto done;
    }
    if (s_map_put(&s->uids, e->uid, e) != 0) {
        s_map_del(&r->objs, e->key);
        rc = s_nomem(st);
        goto done;
    }
    e->obj = obj;
    obj = NULL;
    if (r->desc.namespaced) {
        nsinfo_t *ni = s_nsinfo(s, ns, true);
        if (ni)
            ni->count++;
    }
    s_owners_index(s, e);
    if (e->n_owners)
        s_queue(s, &s->q_dep, e->uid);
    if (out)
        *out = json_incref(e->obj);
    s_commit(s, r, OBJSTORE_ADDED, e->obj, NULL);
    return 0;
done:
    json_decref(obj);
    if (e && !e->obj)
        s_entry_free(e);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* update                                                                                       */

static const char *const s_server_meta[] = {
    "uid",        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "generation", "resourceVersion",   "namespace",         "name"};

/* 422 when an object being deleted gains finalizers. */
static int s_check_new_finalizers(const objstore_res_t *r, const entry_t *e, const json_t *nobj,
                                  objstore_status_t *st)
{
    json_t *of = json_object_get(s_meta(e->obj), "finalizers");
    json_t *nf = json_object_get(s_meta(nobj), "finalizers");
    char list[OBJSTORE_MSG_MAX / 2] = "";
    size_t used = 0;
    size_t i;
    json_t *x;
    json_array_foreach(nf, i, x)
    {
        const char *f = json_string_value(x);
        if (!f || s_str_in_array(of, f))
            continue;
        int n = snprintf(list + used, sizeof(list) - used, "%s\"%s\"", used ? ", " : "", f);
        if (n > 0 && (size_t)n < sizeof(list) - used)
            used += (size_t)n;
    }
    if (!used)
        return 0;
    char detail[OBJSTORE_MSG_MAX];
    snprintf(detail, sizeof(detail),
             "Forbidden: no new finalizers can be added if the object is being deleted, found new "
             "finalizers []string{%s}",
             list);
    return s_invalid(st, r, e->name, "metadata.finalizers", "FieldValueForbidden", detail);
}

/* Updates entry e with body (owned). See objstore_update(). */
static int s_update_entry(objstore_t *s, entry_t *e, json_t *body, objstore_precond_t precond,
                          bool status, json_t **out, bool *deleted, objstore_status_t *st)
{
    objstore_res_t *r = e->res;
    json_t *old = e->obj;
    const json_t *om = s_meta(old);
    json_t *nobj = NULL;
    int rc = 0;
    json_t *bm = json_object_get(body, "metadata");
    if (bm && !json_is_object(bm)) {
        rc = s_badrequest(st, "metadata must be an object");
        goto done;
    }
    const char *bname = s_str(bm, "name");
    if (bname && *bname && strcmp(bname, e->name) != 0) {
        rc = s_fail(st, ERR_INVAL, 400, "BadRequest", NULL, NULL,
                    "the name of the object (%s) does not match the name on the URL (%s)", bname,
                    e->name);
        goto done;
    }
    const char *bns = s_str(bm, "namespace");
    if (r->desc.namespaced && bns && *bns && strcmp(bns, e->ns) != 0) {
        rc = s_badrequest(st, "the namespace of the provided object does not match the namespace "
                              "sent on the request");
        goto done;
    }
    const char *brv = s_str(bm, "resourceVersion");
    const char *orv = s_str(om, "resourceVersion");
    bool has_rv = brv && *brv;
    if (precond == OBJSTORE_PRECOND_PUT && !has_rv && r->desc.is_custom) {
        rc = s_invalid(st, r, e->name, "metadata.resourceVersion", "FieldValueInvalid",
                       "Invalid value: 0x0: must be specified for an update");
        goto done;
    }
    if (precond != OBJSTORE_PRECOND_NONE && has_rv && (!orv || strcmp(brv, orv) != 0)) {
        rc = s_conflict(st, r, e->name);
        goto done;
    }
    if (status) {
        if (!r->desc.has_status) {
            rc = s_fail(st, ERR_NOTFOUND, 404, "NotFound", NULL, NULL,
                        "the server could not find the requested resource");
            goto done;
        }
        nobj = s_clone(old);
        if (!nobj) {
            rc = s_nomem(st);
            goto done;
        }
        json_t *bs = json_object_get(body, "status");
        if (bs)
            json_object_set(nobj, "status", bs);
        else
            json_object_del(nobj, "status");
        json_decref(body);
        body = NULL;
    } else {
        nobj = s_own(body);
        body = NULL;
        if (!nobj) {
            rc = s_nomem(st);
            goto done;
        }
        json_t *nm = json_object_get(nobj, "metadata");
        for (size_t i = 0; i < sizeof(s_server_meta) / sizeof(s_server_meta[0]); i++) {
            json_t *v = json_object_get(om, s_server_meta[i]);
            if (v)
                json_object_set(nm, s_server_meta[i], v);
            else
                json_object_del(nm, s_server_meta[i]);
        }
        if (r->desc.has_status) {
            json_t *os = json_object_get(old, "status");
            if (os)
                json_object_set(nobj, "status", os);
            else
                json_object_del(nobj, "status");
        }
        if (!json_object_get(nobj, "apiVersion"))
            json_object_set(nobj, "apiVersion", json_object_get(old, "apiVersion"));
        if (!json_object_get(nobj, "kind"))
            json_object_set(nobj, "kind", json_object_get(old, "kind"));
        if (s_deleting(old) && (rc = s_check_new_finalizers(r, e, nobj, st)) != 0)
            goto done;
        json_t *g = json_object_get(om, "generation");
        if (json_is_integer(g) && !s_nonmeta_equal(nobj, old))
            json_object_set_new(nm, "generation", json_integer(json_integer_value(g) + 1));
    }
    if (s_jeq(nobj, old)) {
        json_decref(nobj);
        if (out)
            *out = json_incref(old);
        return 0;
    }
    if (s_deleting(nobj) && !s_blocking(r, nobj) &&
        s_int(s_meta(nobj), "deletionGracePeriodSeconds", 0) == 0) {
        json_decref(nobj);
        json_t *fin = s_remove(s, e);
        if (deleted)
            *deleted = true;
        if (out)
            *out = fin;
        else
            json_decref(fin);
        return 0;
    }
    if (out)
        *out = json_incref(nobj);
    s_store(s, e, nobj);
    return 0;
done:
    json_decref(body);
    json_decref(nobj);
    return rc;
}

int objstore_put_status(objstore_t *s, objstore_res_t *r, const json_t *obj, json_t *status,
                        objstore_status_t *st)
{
    if (!status || json_equal(status, json_object_get(obj, "status"))) {
        json_decref(status);
        return 0;
    }
    json_t *upd = json_copy((json_t *)obj); /* a status write reads only its status (and names) */
    if (!upd) {
        json_decref(status);
        return s_nomem(st);
    }
    json_object_set_new(upd, "status", status);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    const char *ns = jx_str(obj, "metadata.namespace", "");
    int rc = objstore_update(s, r, *ns ? ns : NULL, jx_str(obj, "metadata.name", ""), &upd, &uo,
                             NULL, NULL, st);
    return rc < 0 ? rc : 1;
}

int objstore_update(objstore_t *s, objstore_res_t *r, const char *ns, const char *name,
                    json_t **objp, const objstore_update_opts_t *opts, json_t **out, bool *deleted,
                    objstore_status_t *st)
{
    static const objstore_update_opts_t dflt = {0};
    json_t *body = objp ? *objp : NULL;
    s_st_clear(st);
    if (objp)
        *objp = NULL;
    if (out)
        *out = NULL;
    if (deleted)
        *deleted = false;
    if (!opts)
        opts = &dflt;
    if (!json_is_object(body)) {
        json_decref(body);
        return s_badrequest(st, "the object provided is not a JSON object");
    }
    entry_t *e = s_lookup(r, ns, name);
    if (!e) {
        if (!r->desc.create_on_update || opts->status || !name) {
            json_decref(body);
            return s_notfound(st, r, name);
        }
        body = s_own(body);
        if (!body)
            return s_nomem(st);
        const char *bname = s_meta_str(body, "name");
        if (bname && *bname && strcmp(bname, name) != 0) {
            json_decref(body);
            return s_fail(st, ERR_INVAL, 400, "BadRequest", NULL, NULL,
                          "the name of the object (%s) does not match the name on the URL (%s)",
                          bname, name);
        }
        json_object_set_new(json_object_get(body, "metadata"), "name", json_string(name));
        json_object_del(json_object_get(body, "metadata"), "resourceVersion");
        return objstore_create(s, r, ns, &body, out, st);
    }
    if (r->is_ns && !opts->status) {
        /* spec.finalizers of a namespace only change through deletion (kube: /finalize) */
        body = s_own(body);
        json_t *spec = body ? json_object_get(body, "spec") : NULL;
        json_t *nspec = json_is_object(spec) ? json_copy(spec) : json_object();
        json_t *of = json_object_get(json_object_get(e->obj, "spec"), "finalizers");
        if (!body || !nspec) {
            json_decref(body);
            json_decref(nspec);
            return s_nomem(st);
        }
        if (of)
            json_object_set(nspec, "finalizers", of);
        else
            json_object_del(nspec, "finalizers");
        json_object_set_new(body, "spec", nspec);
    }
    return s_update_entry(s, e, body, opts->precond, opts->status, out, deleted, st);
}

/* ------------------------------------------------------------------------------------------ */
/* delete                                                                                       */

static int s_delete_entry(objstore_t *s, entry_t *e, const objstore_delete_opts_t *opts,
                          json_t **out, bool *deleted, objstore_status_t *st)
{
    static const objstore_delete_opts_t dflt = {0};
    objstore_res_t *r = e->res;
    json_t *old = e->obj;
    const json_t *om = s_meta(old);
    json_t *nobj = NULL, *fs = NULL;
    char ts[TIME_STR_MAX];
    if (!opts)
        opts = &dflt;
    if (opts->precond_uid && strcmp(opts->precond_uid, e->uid) != 0)
        return s_fail(st, ERR_CONFLICT, 409, "Conflict", r, e->name,
                      "Operation cannot be fulfilled on %s \"%s\": Precondition failed: UID in "
                      "precondition: %s, UID in object meta: %s",
                      r->qualified, e->name, opts->precond_uid, e->uid);
    const char *orv = s_str(om, "resourceVersion");
    if (opts->precond_rv && (!orv || strcmp(opts->precond_rv, orv) != 0))
        return s_fail(st, ERR_CONFLICT, 409, "Conflict", r, e->name,
                      "Operation cannot be fulfilled on %s \"%s\": Precondition failed: "
                      "ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
                      r->qualified, e->name, opts->precond_rv, orv ? orv : "");
    int64_t g = 0;
    if (r->desc.graceful) {
        const json_t *spec = json_object_get(old, "spec");
        if (opts->grace_set)
            g = opts->grace_seconds < 0 ? 1 : opts->grace_seconds;
        else
            g = s_int(spec, "terminationGracePeriodSeconds", OBJSTORE_GRACE_DEFAULT);
        if (g < 0)
            g = 1;
        const char *node = s_str(spec, "nodeName");
        const char *phase = s_str(json_object_get(old, "status"), "phase");
        if (!node || !*node ||
            (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)))
            g = 0;
    }
    json_t *of = json_object_get(om, "finalizers");
    fs = json_is_array(of) ? json_copy(of) : json_array();
    if (!fs)
        return s_nomem(st);
    const char *add = NULL, *rm1 = NULL, *rm2 = NULL;
    switch (opts->propagation) {
    case OBJSTORE_PROPAGATE_FOREGROUND:
        add = FIN_FOREGROUND, rm1 = FIN_ORPHAN;
        break;
    case OBJSTORE_PROPAGATE_ORPHAN:
        add = FIN_ORPHAN, rm1 = FIN_FOREGROUND;
        break;
    case OBJSTORE_PROPAGATE_BACKGROUND:
        rm1 = FIN_ORPHAN, rm2 = FIN_FOREGROUND;
        break;
    case OBJSTORE_PROPAGATE_DEFAULT:
        break;
    }
    for (const char *rm = rm1; rm; rm = (rm == rm1) ? rm2 : NULL) {
        json_t *t = s_array_without(fs, rm);
        json_decref(fs);
        if (!(fs = t))
            return s_nomem(st);
    }
    if (add && !s_str_in_array(fs, add) && json_array_append_new(fs, json_string(add)) != 0)
        goto nomem;
    bool fins_changed = !s_arr_eq(fs, of);
    bool blocking =
        json_array_size(fs) > 0 ||
        (r->is_ns && json_array_size(json_object_get(json_object_get(old, "spec"), "finalizers")));
    int64_t newg = g;
    if (s_deleting(old)) {
        int64_t cur = s_int(om, "deletionGracePeriodSeconds", 0);
        newg = g < cur ? g : cur;
        if (blocking || newg != 0) {
            if (newg == cur && !fins_changed) {
                json_decref(fs);
                if (out)
                    *out = json_incref(old);
                if (deleted)
                    *deleted = false;
                return 0;
            }
            goto write;
        }
    } else if (blocking || g != 0) {
        goto write;
    }
    json_decref(fs);
    json_t *fin = s_remove(s, e);
    if (deleted)
        *deleted = true;
    if (out)
        *out = fin;
    else
        json_decref(fin);
    return 0;
write:
    nobj = s_clone(old);
    if (!nobj)
        goto nomem;
    json_t *nm = json_object_get(nobj, "metadata");
    if (json_array_size(fs))
        json_object_set(nm, "finalizers", fs);
    else
        json_object_del(nm, "finalizers");
    json_decref(fs);
    fs = NULL;
    if (!s_deleting(old) || newg < s_int(om, "deletionGracePeriodSeconds", 0)) {
        s_format_time(objstore_now_ms(s) + newg * 1000, ts, sizeof(ts));
        json_object_set_new(nm, "deletionTimestamp", json_string(ts));
        json_object_set_new(nm, "deletionGracePeriodSeconds", json_integer(newg));
    }
    if (!s_deleting(old)) {
        json_t *gen = json_object_get(om, "generation");
        if (json_is_integer(gen) && json_integer_value(gen) > 0)
            json_object_set_new(nm, "generation", json_integer(json_integer_value(gen) + 1));
        if (r->is_ns) {
            json_t *ost = json_object_get(old, "status");
            json_t *nst = json_is_object(ost) ? json_copy(ost) : json_object();
            if (!nst)
                goto nomem;
            json_object_set_new(nst, "phase", json_string("Terminating"));
            json_object_set_new(nobj, "status", nst);
            s_term_add(s, e->name);
        }
    }
    if (out)
        *out = json_incref(nobj);
    if (deleted)
        *deleted = false;
    s_store(s, e, nobj);
    return 0;
nomem:
    json_decref(fs);
    json_decref(nobj);
    return s_nomem(st);
}

int objstore_delete(objstore_t *s, objstore_res_t *r, const char *ns, const char *name,
                    const objstore_delete_opts_t *opts, json_t **out, bool *deleted,
                    objstore_status_t *st)
{
    s_st_clear(st);
    if (out)
        *out = NULL;
    if (deleted)
        *deleted = false;
    entry_t *e = s_lookup(r, ns, name);
    if (!e)
        return s_notfound(st, r, name);
    return s_delete_entry(s, e, opts, out, deleted, st);
}

/* ------------------------------------------------------------------------------------------ */
/* list                                                                                         */

static int s_entry_cmp(const void *a, const void *b)
{
    const entry_t *x = *(const entry_t *const *)a, *y = *(const entry_t *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

/* The matching entries of r, sorted. *out is malloc'd (free it); NULL with *n 0 when none. */
static int s_collect(objstore_res_t *r, const char *ns, objstore_filter_fn filter, void *arg,
                     bool sort, entry_t ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (r->objs.n == 0)
        return 0;
    entry_t **v = malloc(r->objs.n * sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->objs.cap; i++) {
        entry_t *e = r->objs.slots[i].val;
        if (!r->objs.slots[i].key)
            continue;
        if (ns && *ns && strcmp(e->ns, ns) != 0)
            continue;
        if (filter && !filter(e->obj, arg))
            continue;
        v[k++] = e;
    }
    if (sort)
        qsort(v, k, sizeof(*v), s_entry_cmp);
    *out = v;
    *n = k;
    return 0;
}

void objstore_list_free(objstore_list_t *l)
{
    if (!l)
        return;
    json_decref(l->items);
    l->items = NULL;
}

static void s_snaps_expire(objstore_t *s)
{
    int64_t now = objstore_now_ms(s);
    for (size_t i = 0; i < OBJSTORE_SNAPSHOTS_MAX; i++)
        if (s->snaps[i].items && now - s->snaps[i].created > OBJSTORE_SNAPSHOT_TTL_MS)
            s_snap_free(&s->snaps[i]);
}

static int s_page(objstore_list_t *out, json_t *const *items, size_t n, size_t off, size_t limit)
{
    size_t end = (limit && off + limit < n) ? off + limit : n;
    for (size_t i = off; i < end; i++)
        if (json_array_append(out->items, items[i]) != 0)
            return ERR_NOMEM;
    return (int)(n - end);
}

int objstore_list(objstore_t *s, objstore_res_t *r, const objstore_list_opts_t *opts,
                  objstore_list_t *out, objstore_status_t *st)
{
    static const objstore_list_opts_t dflt = {0};
    entry_t **v = NULL;
    size_t n = 0;
    int rc = 0;
    s_st_clear(st);
    memset(out, 0, sizeof(*out));
    out->remaining = -1;
    if (!opts)
        opts = &dflt;
    out->items = json_array();
    if (!out->items)
        return s_nomem(st);
    s_snaps_expire(s);
    if (opts->continue_token && *opts->continue_token) {
        uint64_t rv = 0, id = 0, off = 0;
        const char *t = opts->continue_token;
        char parts[3][RV_STR_MAX];
        int np = 0;
        bool bad = strncmp(t, CONTINUE_PREFIX, strlen(CONTINUE_PREFIX)) != 0;
        t += bad ? 0 : strlen(CONTINUE_PREFIX);
        while (!bad && np < 3) {
            const char *dot = strchr(t, '.');
            size_t len = dot ? (size_t)(dot - t) : strlen(t);
            if (len == 0 || len >= RV_STR_MAX || (np < 2 && !dot) || (np == 2 && dot)) {
                bad = true;
                break;
            }
            memcpy(parts[np], t, len);
            parts[np++][len] = '\0';
            t += len + (dot ? 1 : 0);
        }
        if (bad || s_parse_rv(parts[0], &rv) || s_parse_rv(parts[1], &id) ||
            s_parse_rv(parts[2], &off)) {
            rc = s_badrequest(st, "continue key is not valid");
            goto fail;
        }
        snap_t *sn = NULL;
        for (size_t i = 0; i < OBJSTORE_SNAPSHOTS_MAX; i++)
            if (s->snaps[i].items && s->snaps[i].id == id)
                sn = &s->snaps[i];
        if (!sn || sn->rv != rv) {
            rc = s_fail(st, ERR_GONE, 410, "Expired", NULL, NULL, "%s", MSG_CONTINUE_EXPIRED);
            goto fail;
        }
        if (sn->res != r || off > sn->n) {
            rc = s_badrequest(st, "continue key is not valid");
            goto fail;
        }
        out->rv = sn->rv;
        int rem = s_page(out, sn->items, sn->n, (size_t)off, opts->limit);
        if (rem < 0) {
            rc = s_nomem(st);
            goto fail;
        }
        if (rem > 0) {
            snprintf(out->continue_token, sizeof(out->continue_token),
                     CONTINUE_PREFIX "%" PRIu64 ".%" PRIu64 ".%zu", sn->rv, sn->id,
                     (size_t)off + json_array_size(out->items));
            if (!opts->filter)
                out->remaining = rem;
        }
        return 0;
    }
    out->rv = s->rv;
    if (s_collect(r, r->desc.namespaced ? opts->ns : NULL, opts->filter, opts->filter_arg, true, &v,
                  &n) != 0) {
        rc = s_nomem(st);
        goto fail;
    }
    if (!opts->limit || n <= opts->limit) {
        for (size_t i = 0; i < n; i++)
            if (json_array_append(out->items, v[i]->obj) != 0) {
                rc = s_nomem(st);
                goto fail;
            }
        free(v);
        return 0;
    }
    /* pin a snapshot: replace the oldest slot */
    snap_t *sn = &s->snaps[0];
    for (size_t i = 0; i < OBJSTORE_SNAPSHOTS_MAX; i++) {
        if (!s->snaps[i].items) {
            sn = &s->snaps[i];
            break;
        }
        if (s->snaps[i].created < sn->created)
            sn = &s->snaps[i];
    }
    s_snap_free(sn);
    sn->items = malloc(n * sizeof(json_t *));
    if (!sn->items) {
        rc = s_nomem(st);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        sn->items[i] = json_incref(v[i]->obj);
    sn->n = n;
    sn->id = s->next_snap++;
    sn->rv = s->rv;
    sn->res = r;
    sn->created = objstore_now_ms(s);
    free(v);
    v = NULL;
    int rem = s_page(out, sn->items, n, 0, opts->limit);
    if (rem < 0) {
        rc = s_nomem(st);
        goto fail;
    }
    snprintf(out->continue_token, sizeof(out->continue_token),
             CONTINUE_PREFIX "%" PRIu64 ".%" PRIu64 ".%zu", sn->rv, sn->id,
             json_array_size(out->items));
    if (!opts->filter)
        out->remaining = rem;
    return 0;
fail:
    free(v);
    objstore_list_free(out);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* watch                                                                                        */

int objstore_watch(objstore_t *s, objstore_res_t *r, const char *ns, const char *from_rv,
                   objstore_filter_fn filter, void *filter_arg, objstore_watch_fn cb, void *cb_arg,
                   objstore_watch_t **wp, objstore_status_t *st)
{
    s_st_clear(st);
    *wp = NULL;
    uint64_t from = 0;
    bool initial = !from_rv || !*from_rv || strcmp(from_rv, "0") == 0;
    if (!initial) {
        if (s_parse_rv(from_rv, &from) != 0)
            return s_fail(st, ERR_INVAL, 400, "BadRequest", NULL, NULL,
                          "invalid resource version: %s", from_rv);
        if (from < s->rv - s->ring_n)
            return s_fail(st, ERR_GONE, 410, "Expired", NULL, NULL,
                          "too old resource version: %" PRIu64 " (%" PRIu64 ")", from,
                          s->rv - s->ring_n);
        if (from > s->rv)
            return s_fail(st, ERR_TIMEOUT, 504, "Timeout", NULL, NULL,
                          "Too large resource version: %" PRIu64 ", current: %" PRIu64, from,
                          s->rv);
    }
    objstore_watch_t *w = calloc(1, sizeof(*w));
    if (!w)
        return s_nomem(st);
    if (ns && *ns && r->desc.namespaced && !(w->ns = strdup(ns))) {
        free(w);
        return s_nomem(st);
    }
    w->res = r;
    w->filter = filter;
    w->filter_arg = filter_arg;
    w->cb = cb;
    w->cb_arg = cb_arg;
    /* linked first so that unregister/destroy can always find it; live dispatch skips events
     * up to last_rv, which the replay below advances */
    w->next = r->watches;
    if (r->watches)
        r->watches->prev = w;
    r->watches = w;
    *wp = w;
    w->replaying = true;
    if (initial) {
        entry_t **v = NULL;
        size_t n = 0;
        w->last_rv = s->rv;
        if (s_collect(r, w->ns, filter, filter_arg, false, &v, &n) != 0) {
            objstore_watch_stop(s, wp);
            return s_nomem(st);
        }
        json_t **objs = n ? malloc(n * sizeof(*objs)) : NULL;
        if (n && !objs) {
            free(v);
            objstore_watch_stop(s, wp);
            return s_nomem(st);
        }
        for (size_t i = 0; i < n; i++)
            objs[i] = json_incref(v[i]->obj);
        free(v);
        for (size_t i = 0; i < n; i++) {
            if (!w->stopped && !w->zombie) {
                evcache_t c = {0};
                uint64_t orv = 0;
                s_parse_rv(s_meta_str(objs[i], "resourceVersion"), &orv);
                s_call(w, OBJSTORE_ADDED, objs[i], orv, &c);
                s_evcache_free(&c);
            }
            json_decref(objs[i]);
        }
        free(objs);
    } else {
        w->last_rv = from;
    }
    /* replay (or catch up with writes made by callbacks meanwhile) */
    while (!w->stopped && !w->zombie && w->last_rv < s->rv) {
        hev_t *ev = s_ring_at(s, w->last_rv + 1);
        if (!ev) {
            w->last_rv++;
            continue;
        }
        dstate_t d = {0};
        hev_t copy = *ev;
        json_incref(copy.obj);
        json_incref(copy.prev);
        if (copy.res == r)
            s_deliver(w, &copy, &d);
        else
            w->last_rv = copy.rv;
        s_dstate_free(&d);
        json_decref(copy.obj);
        json_decref(copy.prev);
    }
    w->replaying = false;
    return 0;
}

void objstore_watch_stop(objstore_t *s, objstore_watch_t **wp)
{
    if (!wp || !*wp)
        return;
    objstore_watch_t *w = *wp;
    *wp = NULL;
    w->stopped = true;
    if (s->dispatching) {
        w->zombie = true;
        s->reap = true;
        return;
    }
    s_watch_unlink(s, w);
    s_watch_free(w);
}

void objstore_compact(objstore_t *s)
{
    while (s->ring_n && s_oldest_rv(s) <= s->delivered_rv)
        s_ring_drop_oldest(s);
    for (size_t i = 0; i < OBJSTORE_SNAPSHOTS_MAX; i++)
        s_snap_free(&s->snaps[i]);
}

void objstore_unregister(objstore_t *s, objstore_res_t **rp)
{
    if (!rp || !*rp)
        return;
    objstore_res_t *r = *rp;
    *rp = NULL;
    entry_t **v = NULL;
    size_t n = 0;
    if (s_collect(r, NULL, NULL, NULL, false, &v, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            json_decref(s_remove(s, v[i]));
    } else {
        log_error("objstore: out of memory unregistering, objects dropped silently", "resource",
                  r->qualified, NULL);
    }
    free(v);
    /* any objects left (out of memory above) are freed without events */
    for (size_t i = 0; i < r->objs.cap; i++) {
        entry_t *e = r->objs.slots[i].val;
        if (r->objs.slots[i].key) {
            s_map_del(&s->uids, e->uid);
            s_owners_unindex(s, e);
        }
    }
    objstore_watch_t *w = r->watches, *nx;
    for (; w; w = nx) {
        nx = w->next;
        w->res = NULL;
        w->stopped = true;
        w->prev = NULL;
        w->next = s->detached;
        if (s->detached)
            s->detached->prev = w;
        s->detached = w;
    }
    r->watches = NULL;
    for (size_t i = 0; i < s->ring_n; i++) {
        hev_t *ev = &s->ring[(s->ring_head + i) % s->ring_cap];
        if (ev->res == r)
            ev->res = NULL;
    }
    for (size_t i = 0; i < OBJSTORE_SNAPSHOTS_MAX; i++)
        if (s->snaps[i].items && s->snaps[i].res == r)
            s_snap_free(&s->snaps[i]);
    for (size_t i = 0; i < s->n_res; i++) {
        if (s->res[i] == r) {
            memmove(&s->res[i], &s->res[i + 1], (s->n_res - i - 1) * sizeof(*s->res));
            s->n_res--;
            break;
        }
    }
    if (s->ns_res == r)
        s->ns_res = NULL;
    s_res_free(r);
}

/* ------------------------------------------------------------------------------------------ */
/* garbage collector and namespace controller                                                   */

/* True when some owner uid of e still exists. */
static bool s_has_live_owner(objstore_t *s, const entry_t *e)
{
    for (uint32_t i = 0; i < e->n_owners; i++)
        if (s_map_get(&s->uids, e->owners[i]))
            return true;
    return false;
}

static int s_remove_finalizer(objstore_t *s, entry_t *e, const char *fin)
{
    json_t *nobj = s_clone(e->obj);
    json_t *nf = nobj ? s_array_without(json_object_get(s_meta(e->obj), "finalizers"), fin) : NULL;
    if (!nf) {
        json_decref(nobj);
        return ERR_NOMEM;
    }
    json_object_set_new(json_object_get(nobj, "metadata"), "finalizers", nf);
    return s_update_entry(s, e, nobj, OBJSTORE_PRECOND_NONE, false, NULL, NULL, NULL);
}

/* Copies the uids of owner's dependents (malloc'd array of strdup'd strings). */
static char **s_dependents(objstore_t *s, const char *owner, size_t *n)
{
    depvec_t *dv = s_map_get(&s->owners, owner);
    *n = 0;
    if (!dv || !dv->n)
        return NULL;
    char **v = calloc(dv->n, sizeof(char *));
    if (!v)
        return NULL;
    for (size_t i = 0; i < dv->n; i++)
        if ((v[*n] = strdup(dv->v[i]->uid)))
            (*n)++;
    return v;
}

static void s_strs_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The ownerReferences entry of dep pointing at owner (NULL when none). */
static const json_t *s_ref_to(const json_t *dep, const char *owner)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(s_meta(dep), "ownerReferences"), i, x)
    {
        const char *u = s_str(x, "uid");
        if (u && strcmp(u, owner) == 0)
            return x;
    }
    return NULL;
}

static int s_gc_orphan(objstore_t *s, entry_t *owner)
{
    int n = 0;
    size_t nd = 0;
    char ouid[UID_LEN + 1];
    s_copy(ouid, sizeof(ouid), owner->uid);
    char **deps = s_dependents(s, ouid, &nd);
    for (size_t i = 0; i < nd; i++) {
        entry_t *d = s_map_get(&s->uids, deps[i]);
        if (!d)
            continue;
        json_t *nobj = s_clone(d->obj);
        json_t *nr = json_array();
        if (!nobj || !nr) {
            json_decref(nobj);
            json_decref(nr);
            continue;
        }
        size_t k;
        json_t *x;
        json_array_foreach(json_object_get(s_meta(d->obj), "ownerReferences"), k, x)
        {
            const char *u = s_str(x, "uid");
            if (!u || strcmp(u, ouid) != 0)
                json_array_append(nr, x);
        }
        json_t *nm = json_object_get(nobj, "metadata");
        if (json_array_size(nr))
            json_object_set_new(nm, "ownerReferences", nr);
        else {
            json_decref(nr);
            json_object_del(nm, "ownerReferences");
        }
        if (s_update_entry(s, d, nobj, OBJSTORE_PRECOND_NONE, false, NULL, NULL, NULL) == 0)
            n++;
    }
    s_strs_free(deps, nd);
    owner = s_map_get(&s->uids, ouid);
    if (owner && s_remove_finalizer(s, owner, FIN_ORPHAN) == 0)
        n++;
    return n;
}

static int s_gc_foreground(objstore_t *s, entry_t *owner)
{
    int n = 0;
    size_t nd = 0, blocking = 0;
    char ouid[UID_LEN + 1];
    s_copy(ouid, sizeof(ouid), owner->uid);
    char **deps = s_dependents(s, ouid, &nd);
    for (size_t i = 0; i < nd; i++) {
        entry_t *d = s_map_get(&s->uids, deps[i]);
        if (!d)
            continue;
        if (!s_deleting(d->obj)) {
            objstore_delete_opts_t o = {0};
            if (s_map_get(&s->owners, d->uid))
                o.propagation = OBJSTORE_PROPAGATE_FOREGROUND;
            if (s_delete_entry(s, d, &o, NULL, NULL, NULL) == 0)
                n++;
            d = s_map_get(&s->uids, deps[i]);
        }
        if (d && json_is_true(json_object_get(s_ref_to(d->obj, ouid), "blockOwnerDeletion")))
            blocking++;
    }
    s_strs_free(deps, nd);
    owner = s_map_get(&s->uids, ouid);
    if (owner && !blocking && s_remove_finalizer(s, owner, FIN_FOREGROUND) == 0)
        n++;
    return n;
}

static int s_gc_namespaces(objstore_t *s)
{
    int n = 0;
    for (size_t t = 0; t < s->n_term; t++) {
        nsinfo_t *ni = s->term[t];
        if (!ni->swept) {
            ni->swept = true;
            for (size_t i = 0; i < s->n_res; i++) {
                objstore_res_t *r = s->res[i];
                entry_t **v = NULL;
                size_t k = 0;
                if (!r->desc.namespaced || s_collect(r, ni->name, NULL, NULL, false, &v, &k) != 0)
                    continue;
                char **uids = k ? calloc(k, sizeof(char *)) : NULL;
                for (size_t j = 0; uids && j < k; j++)
                    uids[j] = strdup(v[j]->uid);
                free(v);
                for (size_t j = 0; uids && j < k; j++) {
                    entry_t *e = uids[j] ? s_map_get(&s->uids, uids[j]) : NULL;
                    if (e && !s_deleting(e->obj) &&
                        s_delete_entry(s, e, NULL, NULL, NULL, NULL) == 0)
                        n++;
                }
                s_strs_free(uids, uids ? k : 0);
            }
        }
        if (ni->count == 0 && s->ns_res) {
            entry_t *nse = s_lookup(s->ns_res, "", ni->name);
            if (!nse)
                continue;
            json_t *nobj = s_clone(nse->obj);
            json_t *spec = nobj ? json_object_get(nobj, "spec") : NULL;
            json_t *nspec = json_is_object(spec) ? json_copy(spec) : json_object();
            if (!nobj || !nspec) {
                json_decref(nobj);
                json_decref(nspec);
                continue;
            }
            if (json_array_size(json_object_get(spec, "finalizers")) == 0) {
                json_decref(nobj);
                json_decref(nspec);
                continue; /* finalized; waits for metadata.finalizers */
            }
            json_object_set_new(nspec, "finalizers", json_array());
            json_object_set_new(nobj, "spec", nspec);
            size_t before = s->n_term;
            /* the namespace may be removed (and leave s->term) by this write */
            if (s_update_entry(s, nse, nobj, OBJSTORE_PRECOND_NONE, false, NULL, NULL, NULL) == 0)
                n++;
            if (s->n_term != before)
                t = (size_t)-1; /* restart: s->term changed */
        }
    }
    return n;
}

int objstore_gc_run(objstore_t *s)
{
    int n = 0;
    if (s->gc_scan) {
        s->gc_scan = false;
        for (size_t i = 0; i < s->n_res; i++) {
            objstore_res_t *r = s->res[i];
            for (size_t j = 0; j < r->objs.cap; j++) {
                entry_t *e = r->objs.slots[j].val;
                if (!r->objs.slots[j].key)
                    continue;
                if (e->n_owners)
                    s_queue(s, &s->q_dep, e->uid);
                if (s_deleting(e->obj))
                    s_queue(s, &s->q_owner, e->uid);
            }
        }
    }
    strvec_t q = s->q_gone;
    s->q_gone = (strvec_t){0};
    for (size_t i = 0; i < q.n; i++) {
        size_t nd = 0;
        char **deps = s_dependents(s, q.v[i], &nd);
        for (size_t j = 0; j < nd; j++)
            s_queue(s, &s->q_dep, deps[j]);
        s_strs_free(deps, nd);
    }
    s_strvec_free(&q);
    q = s->q_dep;
    s->q_dep = (strvec_t){0};
    for (size_t i = 0; i < q.n; i++) {
        entry_t *e = s_map_get(&s->uids, q.v[i]);
        if (e && e->n_owners && !s_has_live_owner(s, e) && !s_deleting(e->obj) &&
            s_delete_entry(s, e, NULL, NULL, NULL, NULL) == 0)
            n++;
    }
    s_strvec_free(&q);
    q = s->q_owner;
    s->q_owner = (strvec_t){0};
    for (size_t i = 0; i < q.n; i++) {
        entry_t *e = s_map_get(&s->uids, q.v[i]);
        if (!e || !s_deleting(e->obj))
            continue;
        if (s_has_finalizer(e->obj, FIN_ORPHAN))
            n += s_gc_orphan(s, e);
        else if (s_has_finalizer(e->obj, FIN_FOREGROUND))
            n += s_gc_foreground(s, e);
    }
    s_strvec_free(&q);
    n += s_gc_namespaces(s);
    return n;
}

int objstore_tick(objstore_t *s)
{
    s_snaps_expire(s);
    return objstore_gc_run(s);
}

/* ------------------------------------------------------------------------------------------ */
#ifdef RF_SELFTEST
#include "selftest.h"

/* self-test                                                                                    */

#define T_EPOCH_MS 1700000000000LL /* 2023-11-14T22:13:20Z */
#define T_PERF_PODS_VERBOSE 100000 /* objects inserted by the timing run (verbose) */
#define T_PERF_PODS_QUIET 10000 /* objects inserted by the timing run (CTest) */
#define T_PERF_WATCHERS 10 /* watches fed by the timing run */

typedef struct {
    int64_t now; /* fake clock */
} t_clock_t;

static int64_t t_clock(void *arg)
{
    return ((t_clock_t *)arg)->now;
}

typedef struct {
    int n; /* events seen */
    int added; /* ADDED */
    int modified; /* MODIFIED */
    int deleted; /* DELETED */
    char last_rv[RV_STR_MAX]; /* metadata.resourceVersion of the last event */
    char last_name[NAME_SUBDOMAIN_MAX + 1]; /* its name */
    uint64_t last_ev_rv; /* the last event's rv */
    bool order_ok; /* RVs strictly increase */
    size_t bytes; /* serialised bytes seen */
} t_rec_t;

static int t_rec(const objstore_event_t *ev, void *arg)
{
    t_rec_t *t = arg;
    if (t->n && ev->rv <= t->last_ev_rv)
        t->order_ok = false;
    t->last_ev_rv = ev->rv;
    t->n++;
    t->added += ev->type == OBJSTORE_ADDED;
    t->modified += ev->type == OBJSTORE_MODIFIED;
    t->deleted += ev->type == OBJSTORE_DELETED;
    s_copy(t->last_rv, sizeof(t->last_rv), s_meta_str(ev->obj, "resourceVersion"));
    s_copy(t->last_name, sizeof(t->last_name), s_meta_str(ev->obj, "name"));
    size_t len = 0;
    if (objstore_event_json(ev, &len))
        t->bytes += len;
    return 0;
}

typedef struct {
    objstore_t *s; /* the store */
    objstore_res_t *r; /* where to write */
    int writes; /* writes made */
} t_writer_t;

/* A callback that writes: on ADDED of "trigger" it creates "echo" in the same namespace. */
static int t_writer(const objstore_event_t *ev, void *arg)
{
    t_writer_t *t = arg;
    const char *name = s_meta_str(ev->obj, "name");
    if (ev->type == OBJSTORE_ADDED && name && strcmp(name, "trigger") == 0) {
        json_t *o = json_pack("{s:{s:s}}", "metadata", "name", "echo");
        t->writes +=
            objstore_create(t->s, t->r, s_meta_str(ev->obj, "namespace"), &o, NULL, NULL) == 0;
    }
    return 0;
}

static bool t_label_filter(const json_t *obj, void *arg)
{
    const char *v = s_str(json_object_get(s_meta(obj), "labels"), "app");
    return v && strcmp(v, (const char *)arg) == 0;
}

static json_t *t_obj(const char *name, const char *ns)
{
    json_t *o = json_pack("{s:{s:s}, s:{s:i}}", "metadata", "name", name, "spec", "replicas", 1);
    if (o && ns)
        json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
    return o;
}

static json_t *t_create(objstore_t *s, objstore_res_t *r, const char *ns, json_t *o)
{
    json_t *out = NULL;
    objstore_status_t st;
    if (objstore_create(s, r, ns, &o, &out, &st) != 0)
        printf("create failed: %d %s\n", st.code, st.message);
    return out;
}

/* A private copy of the stored object, for editing. */
static json_t *t_edit(objstore_t *s, objstore_res_t *r, const char *ns, const char *name)
{
    json_t *o = NULL;
    objstore_status_t st;
    if (objstore_get(s, r, ns, name, &o, &st) != 0)
        return NULL;
    json_t *c = json_deep_copy(o);
    json_decref(o);
    return c;
}

static json_t *t_owner_ref(const json_t *owner, bool block)
{
    return json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", "v1", "kind", "ConfigMap",
                     "name", s_meta_str(owner, "name"), "uid", s_meta_str(owner, "uid"),
                     "controller", 1, "blockOwnerDeletion", block);
}

static bool t_exists(objstore_t *s, objstore_res_t *r, const char *ns, const char *name)
{
    return s_lookup(r, ns, name) != NULL;
}

static int t_gc(objstore_t *s)
{
    int total = 0, n, rounds = 0;
    while ((n = objstore_gc_run(s)) > 0 && rounds++ < 100)
        total += n;
    return total;
}

static long t_rss_kb(void)
{
    int64_t b = procstat_rss_bytes(0);
    return b > 0 ? (long)(b / 1024) : 0;
}

static double t_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int t_perf(bool verbose)
{
    int failed = 0;
    const int npods = verbose ? T_PERF_PODS_VERBOSE : T_PERF_PODS_QUIET;
    objstore_t *s = objstore_new(0);
    objstore_resdesc_t dn = {"", "v1", "namespaces", "Namespace", false, true, false, false, false};
    objstore_resdesc_t dp = {"", "v1", "pods", "Pod", true, true, false, true, false};
    objstore_res_t *ns = s ? objstore_register(s, &dn) : NULL;
    objstore_res_t *pods = s ? objstore_register(s, &dp) : NULL;
    CHECK(ns && pods);
    if (!ns || !pods) {
        objstore_destroy(&s);
        return failed;
    }
    json_decref(t_create(s, ns, NULL, t_obj("perf", NULL)));
    t_rec_t rec[T_PERF_WATCHERS];
    objstore_watch_t *w[T_PERF_WATCHERS];
    memset(rec, 0, sizeof(rec));
    for (int i = 0; i < T_PERF_WATCHERS; i++)
        rec[i].order_ok = true;
    for (int i = 0; i < T_PERF_WATCHERS; i++)
        CHECK(objstore_watch(s, pods, NULL, NULL, NULL, NULL, t_rec, &rec[i], &w[i], NULL) == 0);
    json_t *tmpl = json_loads(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"ray.io/cluster\":"
        "\"demo\",\"ray.io/node-type\":\"worker\",\"ray.io/group\":\"small\"},\"ownerReferences\":"
        "[{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayCluster\",\"name\":\"demo\",\"uid\":"
        "\"0b6f6f46-6f5c-4b8e-9d2a-000000000001\",\"controller\":true,\"blockOwnerDeletion\":true}"
        "]},\"spec\":{\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray:2.41.0\","
        "\"command\":[\"/bin/bash\",\"-lc\",\"--\"],\"args\":[\"ray start --block\"],"
        "\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},\"requests\":{\"cpu\":\"1\","
        "\"memory\":\"2Gi\"}},\"ports\":[{\"containerPort\":8080,\"name\":\"metrics\"}]}],"
        "\"nodeName\":\"node-1\",\"restartPolicy\":\"Never\"},\"status\":{\"phase\":\"Running\","
        "\"podIP\":\"10.0.0.5\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
        0, NULL);
    CHECK(tmpl != NULL);
    long rss0 = t_rss_kb();
    double t0 = t_secs();
    char name[64];
    int ok = 0;
    for (int i = 0; i < npods && tmpl; i++) {
        json_t *o = json_deep_copy(tmpl);
        snprintf(name, sizeof(name), "worker-%06d", i);
        json_object_set_new(json_object_get(o, "metadata"), "name", json_string(name));
        json_t *out = NULL;
        ok += objstore_create(s, pods, "perf", &o, &out, NULL) == 0;
        json_decref(out);
    }
    double t1 = t_secs();
    long rss1 = t_rss_kb();
    CHECK(ok == npods);
    objstore_list_t l;
    CHECK(objstore_list(s, pods, NULL, &l, NULL) == 0);
    double t2 = t_secs();
    CHECK(json_array_size(l.items) == (size_t)npods);
    objstore_list_free(&l);
    /* status updates: the watch fan-out */
    int nupd = npods / 2;
    for (int i = 0; i < nupd; i++) {
        snprintf(name, sizeof(name), "worker-%06d", i);
        entry_t *e = s_lookup(pods, "perf", name);
        json_t *o = e ? s_clone(e->obj) : NULL;
        if (!o)
            continue;
        json_object_set_new(o, "status", json_pack("{s:s}", "phase", "Succeeded"));
        objstore_update_opts_t uo = {OBJSTORE_PRECOND_PUT, true};
        objstore_update(s, pods, "perf", name, &o, &uo, NULL, NULL, NULL);
    }
    double t3 = t_secs();
    CHECK(rec[0].n == npods + nupd);
    CHECK(rec[T_PERF_WATCHERS - 1].order_ok);
    if (verbose) {
        printf("objstore perf: %d pod creates in %.3f s (%.0f/s) with %d watches; list %d sorted "
               "in %.3f s; %d status updates in %.3f s (%.0f writes/s, %.0f events/s "
               "delivered+serialised); ~%ld bytes RSS per stored pod (incl. history)\n",
               npods, t1 - t0, npods / (t1 - t0), T_PERF_WATCHERS, npods, t2 - t1, nupd, t3 - t2,
               nupd / (t3 - t2), (double)nupd * T_PERF_WATCHERS / (t3 - t2),
               (rss1 - rss0) * 1024 / npods);
    }
    for (int i = 0; i < T_PERF_WATCHERS; i++)
        objstore_watch_stop(s, &w[i]);
    json_decref(tmpl);
    objstore_destroy(&s);
    return failed;
}

int objstore_test(bool verbose)
{
    int failed = 0;
    objstore_status_t st;
    t_clock_t clk = {T_EPOCH_MS};
    objstore_t *s = objstore_new(64);
    CHECK(s != NULL);
    if (!s)
        return SELFTEST_RESULT("objstore", verbose);
    objstore_set_clock(s, t_clock, &clk);
    CHECK(objstore_now_ms(s) == T_EPOCH_MS);
    objstore_resdesc_t dn = {"", "v1", "namespaces", "Namespace", false, true, false, false, false};
    objstore_resdesc_t dp = {"", "v1", "pods", "Pod", true, true, false, true, false};
    objstore_resdesc_t dc = {"", "v1", "configmaps", "ConfigMap", true, false, false, false, false};
    objstore_resdesc_t drc = {"ray.io", "v1", "rayclusters", "RayCluster", true,
                              true,     true, false,         false};
    objstore_resdesc_t dl = {
        "coordination.k8s.io", "v1", "leases", "Lease", true, false, false, false, false};
    objstore_resdesc_t dev = {"", "v1", "events", "Event", true, false, false, false, true};
    objstore_res_t *nsr = objstore_register(s, &dn);
    objstore_res_t *pods = objstore_register(s, &dp);
    objstore_res_t *cms = objstore_register(s, &dc);
    objstore_res_t *rcs = objstore_register(s, &drc);
    objstore_res_t *leases = objstore_register(s, &dl);
    objstore_res_t *evs = objstore_register(s, &dev);
    CHECK(nsr && pods && cms && rcs && leases && evs);
    CHECK(objstore_register(s, &dp) == NULL);
    objstore_resdesc_t bad = {"", NULL, "x", "X", false, false, false, false, false};
    CHECK(objstore_register(s, &bad) == NULL);
    CHECK(objstore_find(s, "ray.io", "rayclusters") == rcs);
    CHECK(objstore_find(s, NULL, "pods") == pods);
    CHECK(objstore_find(s, "", "nope") == NULL);
    CHECK(objstore_find_kind(s, "ray.io", "RayCluster") == rcs);
    CHECK(strcmp(objstore_res_desc(rcs)->kind, "RayCluster") == 0);
    char q[64];
    objstore_res_qualified(rcs, q, sizeof(q));
    CHECK(strcmp(q, "rayclusters.ray.io") == 0);
    if (!nsr || !pods || !cms || !rcs || !leases || !evs)
        goto out;

    /* namespaces */
    json_t *o = t_create(s, nsr, NULL, t_obj("default", NULL));
    CHECK(o && strcmp(s_str(json_object_get(o, "status"), "phase"), "Active") == 0);
    CHECK(o &&
          s_str_in_array(json_object_get(json_object_get(o, "spec"), "finalizers"), "kubernetes"));
    json_decref(o);
    json_t *bn = t_obj("Bad_NS", NULL);
    CHECK(objstore_create(s, nsr, NULL, &bn, NULL, &st) == ERR_INVAL && st.code == 422);
    CHECK(bn == NULL);

    json_t *ed = t_edit(s, nsr, NULL, "default");
    json_object_set_new(ed, "spec", json_object());
    CHECK(objstore_update(s, nsr, NULL, "default", &ed, NULL, &o, NULL, &st) == 0);
    CHECK(o &&
          s_str_in_array(json_object_get(json_object_get(o, "spec"), "finalizers"), "kubernetes"));
    json_decref(o);
    objstore_list_t nl;
    objstore_list_opts_t nlo = {.ns = "default"};
    CHECK(objstore_list(s, nsr, &nlo, &nl, &st) == 0 && json_array_size(nl.items) == 1);
    objstore_list_free(&nl);

    /* create: server-owned fields, status dropped */
    json_t *in = t_obj("demo", "default");
    json_object_set_new(in, "status", json_pack("{s:s}", "state", "ready"));
    json_object_set_new(json_object_get(in, "metadata"), "uid", json_string("client-uid"));
    uint64_t rv0 = objstore_rv(s);
    o = NULL;
    CHECK(objstore_create(s, rcs, "default", &in, &o, &st) == 0);
    CHECK(o && strlen(s_meta_str(o, "uid")) == UID_LEN && s_meta_str(o, "uid")[14] == '4');
    CHECK(o && strcmp(s_meta_str(o, "creationTimestamp"), "2023-11-14T22:13:20Z") == 0);
    CHECK(o && s_int(s_meta(o), "generation", 0) == 1);
    CHECK(o && json_object_get(o, "status") == NULL);
    CHECK(o && strcmp(s_str(o, "apiVersion"), "ray.io/v1") == 0 &&
          strcmp(s_str(o, "kind"), "RayCluster") == 0);
    CHECK(objstore_rv(s) == rv0 + 1);
    char rvbuf[RV_STR_MAX];
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, rv0 + 1);
    CHECK(o && strcmp(s_meta_str(o, "resourceVersion"), rvbuf) == 0);
    json_decref(o);

    /* errors */
    CHECK(objstore_get(s, rcs, "default", "nope", &o, &st) == ERR_NOTFOUND && o == NULL);
    CHECK(st.code == 404 && strcmp(st.reason, "NotFound") == 0 &&
          strcmp(st.message, "rayclusters.ray.io \"nope\" not found") == 0 &&
          strcmp(st.kind, "rayclusters") == 0 && strcmp(st.group, "ray.io") == 0);
    CHECK(objstore_get(s, pods, "default", "nope", NULL, &st) == ERR_NOTFOUND &&
          strcmp(st.message, "pods \"nope\" not found") == 0);
    in = t_obj("demo", "default");
    CHECK(objstore_create(s, rcs, "default", &in, NULL, &st) == ERR_EXISTS && st.code == 409 &&
          strcmp(st.message, "rayclusters.ray.io \"demo\" already exists") == 0 &&
          strcmp(st.reason, "AlreadyExists") == 0);
    in = t_obj("x", "missing");
    CHECK(objstore_create(s, pods, "missing", &in, NULL, &st) == ERR_NOTFOUND && st.code == 404 &&
          strcmp(st.message, "namespaces \"missing\" not found") == 0);
    in = t_obj("x", "other");
    CHECK(objstore_create(s, pods, "default", &in, NULL, &st) == ERR_INVAL && st.code == 400);
    in = json_pack("{s:{}}", "metadata");
    CHECK(objstore_create(s, rcs, "default", &in, NULL, &st) == ERR_INVAL && st.code == 422 &&
          strcmp(st.message, "RayCluster.ray.io \"\" is invalid: metadata.name: Required value: "
                             "name or generateName is required") == 0 &&
          strcmp(st.kind, "RayCluster") == 0 && strcmp(st.cause_field, "metadata.name") == 0);
    in = t_obj("Bad_Name", "default");
    CHECK(objstore_create(s, pods, "default", &in, NULL, &st) == ERR_INVAL && st.code == 422 &&
          strstr(st.message, "Pod \"Bad_Name\" is invalid: metadata.name: Invalid value") != NULL);
    in = json_string("x");
    CHECK(objstore_create(s, pods, "default", &in, NULL, &st) == ERR_INVAL && st.code == 400);
    json_t *sj = objstore_status_json(&st);
    CHECK(sj && strcmp(s_str(sj, "kind"), "Status") == 0 && s_int(sj, "code", 0) == 400 &&
          strcmp(s_str(sj, "status"), "Failure") == 0);
    json_decref(sj);

    /* watch everything on rayclusters from now */
    t_rec_t all = {.order_ok = true};
    objstore_watch_t *wall = NULL;
    CHECK(objstore_watch(s, rcs, NULL, NULL, NULL, NULL, t_rec, &all, &wall, &st) == 0);
    CHECK(all.added == 1 && strcmp(all.last_name, "demo") == 0);

    /* update: spec change bumps generation; conflict; custom resource without RV */
    ed = t_edit(s, rcs, "default", "demo");
    char oldrv[RV_STR_MAX];
    s_copy(oldrv, sizeof(oldrv), s_meta_str(ed, "resourceVersion"));
    json_object_set_new(json_object_get(ed, "spec"), "replicas", json_integer(3));
    json_t *ed2 = json_deep_copy(ed);
    json_object_set_new(json_object_get(ed, "metadata"), "uid", json_string("forged"));
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, &o, NULL, &st) == 0 && ed == NULL);
    CHECK(o && s_int(s_meta(o), "generation", 0) == 2);
    CHECK(o && strcmp(s_meta_str(o, "uid"), "forged") != 0);
    CHECK(o && strcmp(s_meta_str(o, "creationTimestamp"), "2023-11-14T22:13:20Z") == 0);
    CHECK(all.modified == 1);
    json_decref(o);
    CHECK(objstore_update(s, rcs, "default", "demo", &ed2, NULL, NULL, NULL, &st) == ERR_CONFLICT);
    CHECK(st.code == 409 && strcmp(st.reason, "Conflict") == 0 &&
          strcmp(st.message, "Operation cannot be fulfilled on rayclusters.ray.io \"demo\": the "
                             "object has been modified; please apply your changes to the latest "
                             "version and try again") == 0 &&
          strcmp(st.name, "demo") == 0 && strcmp(st.kind, "rayclusters") == 0);
    ed = t_edit(s, rcs, "default", "demo");
    json_object_del(json_object_get(ed, "metadata"), "resourceVersion");
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, NULL, NULL, &st) == ERR_INVAL &&
          st.code == 422 &&
          strcmp(st.message, "RayCluster.ray.io \"demo\" is invalid: metadata.resourceVersion: "
                             "Invalid value: 0x0: must be specified for an update") == 0);
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(json_object_get(ed, "metadata"), "name", json_string("other"));
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, NULL, NULL, &st) == ERR_INVAL &&
          st.code == 400);
    ed = t_obj("ghost", "default");
    CHECK(objstore_update(s, rcs, "default", "ghost", &ed, NULL, NULL, NULL, &st) == ERR_NOTFOUND);
    /* PATCH-mode: no RV in body = unconditional */
    ed = t_edit(s, rcs, "default", "demo");
    json_object_del(json_object_get(ed, "metadata"), "resourceVersion");
    json_object_set_new(json_object_get(ed, "spec"), "replicas", json_integer(4));
    objstore_update_opts_t po = {OBJSTORE_PRECOND_PATCH, false};
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, &po, &o, NULL, &st) == 0);
    CHECK(o && s_int(s_meta(o), "generation", 0) == 3);
    json_decref(o);

    /* no-op write: same RV, no event */
    int nev = all.n;
    uint64_t rvb = objstore_rv(s);
    ed = t_edit(s, rcs, "default", "demo");
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, &o, NULL, &st) == 0);
    CHECK(objstore_rv(s) == rvb && all.n == nev);
    json_decref(o);
    /* main-endpoint status change is ignored (status subresource) → no-op */
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(ed, "status", json_pack("{s:s}", "state", "x"));
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, &o, NULL, &st) == 0);
    CHECK(objstore_rv(s) == rvb && all.n == nev && json_object_get(o, "status") == NULL);
    json_decref(o);
    /* status write: only status, generation unchanged */
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(ed, "status", json_pack("{s:s}", "state", "ready"));
    json_object_set_new(json_object_get(ed, "spec"), "replicas", json_integer(99));
    objstore_update_opts_t so = {OBJSTORE_PRECOND_PUT, true};
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, &so, &o, NULL, &st) == 0);
    CHECK(o && s_int(s_meta(o), "generation", 0) == 3);
    CHECK(o && s_int(json_object_get(o, "spec"), "replicas", 0) == 4);
    CHECK(o && strcmp(s_str(json_object_get(o, "status"), "state"), "ready") == 0);
    CHECK(all.n == nev + 1);
    json_decref(o);
    /* same status again: no-op */
    ed = t_edit(s, rcs, "default", "demo");
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, &so, NULL, NULL, &st) == 0);
    CHECK(all.n == nev + 1);
    /* status write to a resource without the subresource */
    ed = t_obj("c", "default");
    json_decref(t_create(s, cms, "default", json_deep_copy(ed)));
    CHECK(objstore_update(s, cms, "default", "c", &ed, &so, NULL, NULL, &st) == ERR_NOTFOUND);
    /* metadata-only write: generation unchanged, RV bumped */
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(json_object_get(ed, "metadata"), "labels", json_pack("{s:s}", "a", "b"));
    rvb = objstore_rv(s);
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, &o, NULL, &st) == 0);
    CHECK(o && s_int(s_meta(o), "generation", 0) == 3 && objstore_rv(s) == rvb + 1);
    json_decref(o);
    /* built-in PUT without RV: unconditional */
    ed = t_edit(s, cms, "default", "c");
    json_object_del(json_object_get(ed, "metadata"), "resourceVersion");
    json_object_set_new(ed, "data", json_pack("{s:s}", "k", "v"));
    CHECK(objstore_update(s, cms, "default", "c", &ed, NULL, NULL, NULL, &st) == 0);
    /* create-on-update resource */
    ed = t_obj("e1", "default");
    CHECK(objstore_update(s, evs, "default", "e1", &ed, NULL, &o, NULL, &st) == 0 && o);
    json_decref(o);

    /* generateName */
    in = json_pack("{s:{s:s}}", "metadata", "generateName", "demo-worker-");
    CHECK(objstore_create(s, pods, "default", &in, &o, &st) == 0);
    const char *gn = o ? s_meta_str(o, "name") : "";
    CHECK(strlen(gn) == strlen("demo-worker-") + 5 && strncmp(gn, "demo-worker-", 12) == 0);
    CHECK(strspn(gn + 12, NAME_ALPHABET) == 5);
    json_decref(o);
    /* name and generateName both given: the name is used and generateName kept, as the API
     * server does (a client that names a generateName object itself); a resend meets 409 */
    in = json_pack("{s:{s:s,s:s}}", "metadata", "generateName", "demo-worker-", "name",
                   "demo-worker-bcd42");
    CHECK(objstore_create(s, pods, "default", &in, &o, &st) == 0 && o);
    CHECK(o && !strcmp(s_meta_str(o, "name"), "demo-worker-bcd42") &&
          !strcmp(s_meta_str(o, "generateName"), "demo-worker-"));
    json_decref(o);
    o = NULL;
    in = json_pack("{s:{s:s,s:s}}", "metadata", "generateName", "demo-worker-", "name",
                   "demo-worker-bcd42");
    CHECK(objstore_create(s, pods, "default", &in, &o, &st) == ERR_EXISTS && st.code == 409);
    json_decref(o);
    o = NULL;
    char longp[80];
    memset(longp, 'a', 70);
    longp[70] = '\0';
    in = json_pack("{s:{s:s}}", "metadata", "generateName", longp);
    CHECK(objstore_create(s, cms, "default", &in, &o, &st) == 0);
    CHECK(o && strlen(s_meta_str(o, "name")) == 63);
    json_decref(o);
    char first[64] = "";
    int gen_ok = 0;
    for (int i = 0; i <= OBJSTORE_GENERATE_ATTEMPTS; i++) {
        objstore_seed(s, 42);
        in = json_pack("{s:{s:s}}", "metadata", "generateName", "coll-");
        int rc = objstore_create(s, cms, "default", &in, &o, &st);
        if (i == 0 && o)
            s_copy(first, sizeof(first), s_meta_str(o, "name"));
        if (i == 1)
            CHECK(rc == 0 && o && strcmp(s_meta_str(o, "name"), first) != 0);
        if (i < OBJSTORE_GENERATE_ATTEMPTS)
            gen_ok += rc == 0;
        else
            CHECK(rc == ERR_EXISTS && st.code == 409 && st.retry_after == 1 &&
                  strstr(st.message, "the server was not able to generate a unique name") != NULL);
        json_decref(o);
        o = NULL;
    }
    CHECK(gen_ok == OBJSTORE_GENERATE_ATTEMPTS);

    /* watch from N replays; filtered watch transitions */
    t_rec_t rep = {.order_ok = true};
    objstore_watch_t *wrep = NULL;
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, rv0);
    CHECK(objstore_watch(s, rcs, "default", rvbuf, NULL, NULL, t_rec, &rep, &wrep, &st) == 0);
    CHECK(rep.added == 1 && rep.modified == 4 && rep.order_ok);
    t_rec_t flt = {.order_ok = true};
    objstore_watch_t *wf = NULL;
    CHECK(objstore_watch(s, rcs, NULL, "0", t_label_filter, "x", t_rec, &flt, &wf, &st) == 0);
    CHECK(flt.n == 0);
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(json_object_get(ed, "metadata"), "labels", json_pack("{s:s}", "app", "x"));
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, NULL, NULL, &st) == 0);
    CHECK(flt.added == 1 && flt.n == 1);
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(json_object_get(ed, "spec"), "replicas", json_integer(5));
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, NULL, NULL, &st) == 0);
    CHECK(flt.modified == 1 && flt.n == 2);
    ed = t_edit(s, rcs, "default", "demo");
    json_object_set_new(json_object_get(ed, "metadata"), "labels", json_pack("{s:s}", "app", "y"));
    CHECK(objstore_update(s, rcs, "default", "demo", &ed, NULL, NULL, NULL, &st) == 0);
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, objstore_rv(s));
    CHECK(flt.deleted == 1 && flt.n == 3 && strcmp(flt.last_rv, rvbuf) == 0);
    objstore_watch_stop(s, &wf);
    CHECK(wf == NULL);
    objstore_watch_stop(s, &wrep);

    /* watch errors: too old after compaction, too new, malformed */
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, rv0);
    objstore_watch_t *wx = NULL;
    objstore_compact(s);
    CHECK(objstore_watch(s, rcs, NULL, rvbuf, NULL, NULL, t_rec, &rep, &wx, &st) == ERR_GONE);
    char expect[128];
    snprintf(expect, sizeof(expect), "too old resource version: %" PRIu64 " (%" PRIu64 ")", rv0,
             objstore_rv(s));
    CHECK(st.code == 410 && strcmp(st.reason, "Expired") == 0 && strcmp(st.message, expect) == 0);
    CHECK(wx == NULL);
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, objstore_rv(s) + 5);
    CHECK(objstore_watch(s, rcs, NULL, rvbuf, NULL, NULL, t_rec, &rep, &wx, &st) == ERR_TIMEOUT);
    CHECK(objstore_watch(s, rcs, NULL, "abc", NULL, NULL, t_rec, &rep, &wx, &st) == ERR_INVAL);
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, objstore_rv(s));
    CHECK(objstore_watch(s, rcs, NULL, rvbuf, NULL, NULL, t_rec, &rep, &wx, &st) == 0);
    objstore_watch_stop(s, &wx);
    /* history overflow: a 64-event ring forgets old events by itself */
    uint64_t early = objstore_rv(s);
    for (int i = 0; i < 80; i++) {
        ed = t_edit(s, cms, "default", "c");
        json_object_set_new(ed, "data", json_pack("{s:i}", "i", i));
        objstore_update(s, cms, "default", "c", &ed, NULL, NULL, NULL, NULL);
    }
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, early);
    CHECK(objstore_watch(s, cms, NULL, rvbuf, NULL, NULL, t_rec, &rep, &wx, &st) == ERR_GONE);

    /* finalizers */
    in = t_obj("fin", "default");
    json_object_set_new(json_object_get(in, "metadata"), "finalizers",
                        json_pack("[s]", "example.com/hold"));
    json_decref(t_create(s, rcs, "default", in));
    int del0 = all.deleted, mod0 = all.modified;
    bool gone = true;
    clk.now += 5000;
    CHECK(objstore_delete(s, rcs, "default", "fin", NULL, &o, &gone, &st) == 0 && !gone);
    CHECK(o && strcmp(s_meta_str(o, "deletionTimestamp"), "2023-11-14T22:13:25Z") == 0);
    CHECK(o && s_int(s_meta(o), "deletionGracePeriodSeconds", -1) == 0);
    CHECK(o && s_int(s_meta(o), "generation", 0) == 2);
    CHECK(all.modified == mod0 + 1);
    json_decref(o);
    CHECK(objstore_delete(s, rcs, "default", "fin", NULL, NULL, &gone, &st) == 0 && !gone);
    CHECK(all.modified == mod0 + 1);
    ed = t_edit(s, rcs, "default", "fin");
    json_array_append_new(json_object_get(json_object_get(ed, "metadata"), "finalizers"),
                          json_string("new/one"));
    CHECK(objstore_update(s, rcs, "default", "fin", &ed, NULL, NULL, NULL, &st) == ERR_INVAL &&
          st.code == 422 &&
          strstr(st.message, "no new finalizers can be added if the object is being deleted, found "
                             "new finalizers []string{\"new/one\"}") != NULL);
    ed = t_edit(s, rcs, "default", "fin");
    json_object_set_new(json_object_get(ed, "spec"), "replicas", json_integer(7));
    CHECK(objstore_update(s, rcs, "default", "fin", &ed, NULL, NULL, NULL, &st) == 0);
    CHECK(all.modified == mod0 + 2);
    ed = t_edit(s, rcs, "default", "fin");
    json_object_set_new(json_object_get(ed, "metadata"), "finalizers", json_array());
    CHECK(objstore_update(s, rcs, "default", "fin", &ed, NULL, &o, &gone, &st) == 0 && gone);
    CHECK(all.deleted == del0 + 1 && all.modified == mod0 + 2);
    snprintf(rvbuf, sizeof(rvbuf), "%" PRIu64, objstore_rv(s));
    CHECK(strcmp(all.last_rv, rvbuf) == 0 && o &&
          strcmp(s_meta_str(o, "resourceVersion"), rvbuf) == 0);
    json_decref(o);
    CHECK(!t_exists(s, rcs, "default", "fin"));
    /* delete preconditions and plain delete of a custom resource */
    CHECK(objstore_get(s, rcs, "default", "demo", &o, &st) == 0);
    objstore_delete_opts_t dopt = {.precond_uid = "wrong"};
    CHECK(objstore_delete(s, rcs, "default", "demo", &dopt, NULL, NULL, &st) == ERR_CONFLICT &&
          st.code == 409 &&
          strstr(st.message, "Precondition failed: UID in precondition: wrong") != NULL);
    dopt = (objstore_delete_opts_t){.precond_rv = "1"};
    CHECK(objstore_delete(s, rcs, "default", "demo", &dopt, NULL, NULL, &st) == ERR_CONFLICT);
    dopt = (objstore_delete_opts_t){.precond_uid = s_meta_str(o, "uid")};
    json_t *fin_obj = NULL;
    CHECK(objstore_delete(s, rcs, "default", "demo", &dopt, &fin_obj, &gone, &st) == 0 && gone);
    sj = fin_obj ? objstore_status_success(rcs, fin_obj) : NULL;
    CHECK(sj && strcmp(s_str(sj, "status"), "Success") == 0 &&
          strcmp(s_str(json_object_get(sj, "details"), "uid"), s_meta_str(o, "uid")) == 0);
    json_decref(sj);
    json_decref(fin_obj);
    json_decref(o);
    CHECK(objstore_delete(s, rcs, "default", "demo", NULL, NULL, NULL, &st) == ERR_NOTFOUND);

    /* background GC: a → b → c */
    json_t *a = t_create(s, cms, "default", t_obj("gc-a", "default"));
    in = t_obj("gc-b", "default");
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences", t_owner_ref(a, false));
    json_t *b = t_create(s, cms, "default", in);
    in = t_obj("gc-c", "default");
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences", t_owner_ref(b, false));
    json_decref(t_create(s, cms, "default", in));
    CHECK(t_gc(s) == 0);
    CHECK(objstore_delete(s, cms, "default", "gc-a", NULL, NULL, &gone, &st) == 0 && gone);
    CHECK(t_exists(s, cms, "default", "gc-b"));
    CHECK(t_gc(s) == 2);
    CHECK(!t_exists(s, cms, "default", "gc-b") && !t_exists(s, cms, "default", "gc-c"));
    json_decref(a);
    json_decref(b);
    /* a dependent created with a dangling owner is garbage */
    in = t_obj("gc-dangling", "default");
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences",
                        json_pack("[{s:s, s:s, s:s, s:s}]", "apiVersion", "v1", "kind", "ConfigMap",
                                  "name", "x", "uid", "00000000-0000-4000-8000-000000000000"));
    json_decref(t_create(s, cms, "default", in));
    CHECK(t_gc(s) == 1 && !t_exists(s, cms, "default", "gc-dangling"));

    /* foreground with blockOwnerDeletion */
    json_t *fo = t_create(s, cms, "default", t_obj("fg-owner", "default"));
    in = t_obj("fg-block", "default");
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences", t_owner_ref(fo, true));
    json_object_set_new(json_object_get(in, "metadata"), "finalizers", json_pack("[s]", "hold"));
    json_decref(t_create(s, cms, "default", in));
    in = t_obj("fg-free", "default");
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences", t_owner_ref(fo, false));
    json_decref(t_create(s, cms, "default", in));
    dopt = (objstore_delete_opts_t){.propagation = OBJSTORE_PROPAGATE_FOREGROUND};
    CHECK(objstore_delete(s, cms, "default", "fg-owner", &dopt, &o, &gone, &st) == 0 && !gone);
    CHECK(o && s_has_finalizer(o, FIN_FOREGROUND) && s_deleting(o));
    json_decref(o);
    t_gc(s);
    CHECK(!t_exists(s, cms, "default", "fg-free"));
    CHECK(t_exists(s, cms, "default", "fg-block") && t_exists(s, cms, "default", "fg-owner"));
    ed = t_edit(s, cms, "default", "fg-block");
    json_object_del(json_object_get(ed, "metadata"), "finalizers");
    CHECK(objstore_update(s, cms, "default", "fg-block", &ed, NULL, NULL, &gone, &st) == 0 && gone);
    t_gc(s);
    CHECK(!t_exists(s, cms, "default", "fg-owner"));
    json_decref(fo);

    /* orphan */
    json_t *oo = t_create(s, cms, "default", t_obj("or-owner", "default"));
    in = t_obj("or-dep", "default");
    json_object_set_new(json_object_get(in, "metadata"), "ownerReferences", t_owner_ref(oo, true));
    json_decref(t_create(s, cms, "default", in));
    dopt = (objstore_delete_opts_t){.propagation = OBJSTORE_PROPAGATE_ORPHAN};
    CHECK(objstore_delete(s, cms, "default", "or-owner", &dopt, NULL, &gone, &st) == 0 && !gone);
    t_gc(s);
    CHECK(!t_exists(s, cms, "default", "or-owner") && t_exists(s, cms, "default", "or-dep"));
    CHECK(objstore_get(s, cms, "default", "or-dep", &o, &st) == 0 && o &&
          json_object_get(s_meta(o), "ownerReferences") == NULL);
    json_decref(o);
    json_decref(oo);

    /* graceful pod deletion */
    in = t_obj("p1", "default");
    json_object_set_new(json_object_get(in, "spec"), "nodeName", json_string("node-1"));
    json_decref(t_create(s, pods, "default", in));
    clk.now = T_EPOCH_MS + 60000;
    CHECK(objstore_delete(s, pods, "default", "p1", NULL, &o, &gone, &st) == 0 && !gone);
    CHECK(o && strcmp(s_meta_str(o, "deletionTimestamp"), "2023-11-14T22:14:50Z") == 0 &&
          s_int(s_meta(o), "deletionGracePeriodSeconds", 0) == 30);
    char puid[UID_LEN + 1];
    s_copy(puid, sizeof(puid), o ? s_meta_str(o, "uid") : "");
    json_decref(o);
    dopt = (objstore_delete_opts_t){.grace_set = true, .grace_seconds = 10};
    CHECK(objstore_delete(s, pods, "default", "p1", &dopt, &o, &gone, &st) == 0 && !gone);
    CHECK(o && s_int(s_meta(o), "deletionGracePeriodSeconds", 0) == 10);
    json_decref(o);
    dopt = (objstore_delete_opts_t){.grace_set = true, .grace_seconds = 0, .precond_uid = puid};
    CHECK(objstore_delete(s, pods, "default", "p1", &dopt, NULL, &gone, &st) == 0 && gone);
    in = t_obj("p2", "default");
    json_decref(t_create(s, pods, "default", in));
    CHECK(objstore_delete(s, pods, "default", "p2", NULL, NULL, &gone, &st) == 0 && gone);
    in = t_obj("p3", "default");
    json_object_set_new(json_object_get(in, "spec"), "nodeName", json_string("node-1"));
    json_object_set_new(json_object_get(in, "spec"), "terminationGracePeriodSeconds",
                        json_integer(5));
    json_decref(t_create(s, pods, "default", in));
    CHECK(objstore_delete(s, pods, "default", "p3", NULL, &o, &gone, &st) == 0 && !gone);
    CHECK(o && s_int(s_meta(o), "deletionGracePeriodSeconds", 0) == 5);
    json_decref(o);

    /* namespace termination */
    json_decref(t_create(s, nsr, NULL, t_obj("doomed", NULL)));
    json_decref(t_create(s, cms, "doomed", t_obj("c1", "doomed")));
    in = t_obj("held", "doomed");
    json_object_set_new(json_object_get(in, "metadata"), "finalizers", json_pack("[s]", "hold"));
    json_decref(t_create(s, cms, "doomed", in));
    json_decref(t_create(s, pods, "doomed", t_obj("pp", "doomed")));
    CHECK(objstore_delete(s, nsr, NULL, "doomed", NULL, &o, &gone, &st) == 0 && !gone);
    CHECK(o && strcmp(s_str(json_object_get(o, "status"), "phase"), "Terminating") == 0);
    json_decref(o);
    in = t_obj("late", "doomed");
    CHECK(objstore_create(s, cms, "doomed", &in, NULL, &st) == ERR_FORBIDDEN && st.code == 403 &&
          strcmp(st.message, "configmaps \"late\" is forbidden: unable to create new content in "
                             "namespace doomed because it is being terminated") == 0);
    t_gc(s);
    CHECK(!t_exists(s, cms, "doomed", "c1") && !t_exists(s, pods, "doomed", "pp"));
    CHECK(t_exists(s, cms, "doomed", "held") && t_exists(s, nsr, NULL, "doomed"));
    ed = t_edit(s, cms, "doomed", "held");
    json_object_del(json_object_get(ed, "metadata"), "finalizers");
    CHECK(objstore_update(s, cms, "doomed", "held", &ed, NULL, NULL, NULL, &st) == 0);
    t_gc(s);
    CHECK(!t_exists(s, nsr, NULL, "doomed"));

    /* list: sorted, limit/continue from a pinned snapshot */
    json_decref(t_create(s, nsr, NULL, t_obj("a-b", NULL)));
    json_decref(t_create(s, nsr, NULL, t_obj("a", NULL)));
    json_decref(t_create(s, cms, "a-b", t_obj("z", "a-b")));
    json_decref(t_create(s, cms, "a", t_obj("z", "a")));
    objstore_list_t l;
    CHECK(objstore_list(s, cms, NULL, &l, &st) == 0 && l.rv == objstore_rv(s) &&
          !l.continue_token[0]);
    size_t total = json_array_size(l.items);
    bool sorted = total > 2;
    for (size_t i = 1; i < total; i++) {
        const json_t *x = json_array_get(l.items, i - 1), *y = json_array_get(l.items, i);
        int c = strcmp(s_meta_str(x, "namespace"), s_meta_str(y, "namespace"));
        sorted = sorted &&
                 (c < 0 || (c == 0 && strcmp(s_meta_str(x, "name"), s_meta_str(y, "name")) < 0));
    }
    CHECK(sorted);
    CHECK(strcmp(s_meta_str(json_array_get(l.items, 0), "namespace"), "a") == 0);
    objstore_list_free(&l);
    objstore_list_free(&l);
    objstore_list_opts_t lo = {.limit = 3};
    CHECK(objstore_list(s, cms, &lo, &l, &st) == 0 && json_array_size(l.items) == 3 &&
          l.continue_token[0] && l.remaining == (long)total - 3);
    uint64_t lrv = l.rv;
    size_t seen = json_array_size(l.items);
    char tok[OBJSTORE_CONTINUE_MAX];
    s_copy(tok, sizeof(tok), l.continue_token);
    objstore_list_free(&l);
    json_decref(t_create(s, cms, "a", t_obj("zz", "a"))); /* not in the snapshot */
    int pages = 1;
    while (tok[0] && pages < 100) {
        lo.continue_token = tok;
        CHECK(objstore_list(s, cms, &lo, &l, &st) == 0 && l.rv == lrv);
        seen += json_array_size(l.items);
        s_copy(tok, sizeof(tok), l.continue_token);
        objstore_list_free(&l);
        pages++;
    }
    CHECK(seen == total && pages == (int)((total + 2) / 3));
    lo = (objstore_list_opts_t){.limit = 2, .ns = "a"};
    CHECK(objstore_list(s, cms, &lo, &l, &st) == 0 && json_array_size(l.items) == 2 &&
          !l.continue_token[0]);
    objstore_list_free(&l);
    lo = (objstore_list_opts_t){.filter = t_label_filter, .filter_arg = "none"};
    CHECK(objstore_list(s, cms, &lo, &l, &st) == 0 && json_array_size(l.items) == 0);
    objstore_list_free(&l);
    lo = (objstore_list_opts_t){.limit = 1};
    CHECK(objstore_list(s, cms, &lo, &l, &st) == 0);
    s_copy(tok, sizeof(tok), l.continue_token);
    objstore_list_free(&l);
    lo.continue_token = tok;
    CHECK(objstore_list(s, pods, &lo, &l, &st) == ERR_INVAL && st.code == 400);
    objstore_compact(s);
    CHECK(objstore_list(s, cms, &lo, &l, &st) == ERR_GONE && st.code == 410 &&
          strcmp(st.reason, "Expired") == 0);
    lo.continue_token = "garbage";
    CHECK(objstore_list(s, cms, &lo, &l, &st) == ERR_INVAL && st.code == 400);
    lo.continue_token = "rfc1.1.2";
    CHECK(objstore_list(s, cms, &lo, &l, &st) == ERR_INVAL);
    /* snapshot TTL */
    lo = (objstore_list_opts_t){.limit = 1};
    CHECK(objstore_list(s, cms, &lo, &l, &st) == 0);
    s_copy(tok, sizeof(tok), l.continue_token);
    objstore_list_free(&l);
    clk.now += OBJSTORE_SNAPSHOT_TTL_MS + 1000;
    objstore_tick(s);
    lo.continue_token = tok;
    CHECK(objstore_list(s, cms, &lo, &l, &st) == ERR_GONE);

    /* leases: exact optimistic concurrency, MicroTime verbatim */
    in = json_pack("{s:{s:s}, s:{s:s, s:i, s:s}}", "metadata", "name", "leader", "spec",
                   "holderIdentity", "a", "leaseDurationSeconds", 15, "renewTime",
                   "2025-01-31T12:00:05.123456Z");
    json_decref(t_create(s, leases, "default", in));
    json_t *l1 = t_edit(s, leases, "default", "leader");
    json_t *l2 = json_deep_copy(l1);
    json_object_set_new(json_object_get(l1, "spec"), "renewTime",
                        json_string("2025-01-31T12:00:06.000001Z"));
    json_object_set_new(json_object_get(l2, "spec"), "holderIdentity", json_string("b"));
    CHECK(objstore_update(s, leases, "default", "leader", &l1, NULL, &o, NULL, &st) == 0);
    CHECK(o && strcmp(s_str(json_object_get(o, "spec"), "renewTime"),
                      "2025-01-31T12:00:06.000001Z") == 0);
    json_decref(o);
    CHECK(objstore_update(s, leases, "default", "leader", &l2, NULL, NULL, NULL, &st) ==
          ERR_CONFLICT);

    /* a callback that writes: nested events stay in order for every watch */
    t_writer_t tw = {s, cms, 0};
    t_rec_t ord1 = {.order_ok = true}, ord2 = {.order_ok = true};
    objstore_watch_t *ww = NULL, *w1 = NULL, *w2 = NULL;
    CHECK(objstore_watch(s, cms, "default", NULL, NULL, NULL, t_rec, &ord1, &w1, &st) == 0);
    CHECK(objstore_watch(s, cms, "default", NULL, NULL, NULL, t_writer, &tw, &ww, &st) == 0);
    CHECK(objstore_watch(s, cms, "default", NULL, NULL, NULL, t_rec, &ord2, &w2, &st) == 0);
    int n1 = ord1.n, n2 = ord2.n;
    ord1.order_ok = ord2.order_ok = true; /* synthetic ADDED come in no particular order */
    json_decref(t_create(s, cms, "default", t_obj("trigger", "default")));
    CHECK(tw.writes == 1 && ord1.n == n1 + 2 && ord2.n == n2 + 2);
    CHECK(ord1.order_ok && ord2.order_ok && strcmp(ord2.last_name, "echo") == 0);
    objstore_watch_stop(s, &ww);
    objstore_watch_stop(s, &w1);
    objstore_watch_stop(s, &w2);
    /* a write's stored tree reuses the text its watchers got; any other tree gets NULL */
    {
        t_rec_t sh = {.order_ok = true};
        objstore_watch_t *wsh = NULL;
        CHECK(objstore_watch(s, cms, NULL, NULL, NULL, NULL, t_rec, &sh, &wsh, &st) == 0);
        json_t *sa = t_create(s, cms, "default", t_obj("shared-a", "default"));
        size_t len = 0;
        const char *txt = objstore_obj_json(s, sa, &len);
        char *want = json_dumps(sa, JSON_COMPACT);
        CHECK(txt && want && len == strlen(want) && strcmp(txt, want) == 0);
        free(want);
        json_t *sb = t_create(s, cms, "default", t_obj("shared-b", "default"));
        CHECK(objstore_obj_json(s, sa, NULL) == NULL && objstore_obj_json(s, sb, NULL) != NULL);
        json_t *sc = json_deep_copy(sb);
        CHECK(objstore_obj_json(s, sc, NULL) == NULL && objstore_obj_json(s, NULL, NULL) == NULL);
        json_decref(sc);
        json_decref(sa);
        json_decref(sb);
        objstore_watch_stop(s, &wsh);
    }
    /* unregister (CRD deletion): DELETED for every object */
    json_decref(t_create(s, rcs, "default", t_obj("r1", "default")));
    json_decref(t_create(s, rcs, "default", t_obj("r2", "default")));
    int d0 = all.deleted;
    objstore_unregister(s, &rcs);
    CHECK(rcs == NULL && all.deleted == d0 + 2 && all.order_ok);
    CHECK(objstore_find(s, "ray.io", "rayclusters") == NULL);
    objstore_watch_stop(s, &wall);
    objstore_unregister(s, &rcs);
    CHECK(objstore_res_count(cms) > 0);
    /* a watch left open is freed by destroy */
    CHECK(objstore_watch(s, cms, NULL, NULL, NULL, NULL, t_rec, &rep, &wx, &st) == 0);
out:
    objstore_destroy(&s);
    objstore_destroy(&s);
    CHECK(s == NULL);
    failed += t_perf(verbose);
    return SELFTEST_RESULT("objstore", verbose);
}

#endif /* RF_SELFTEST */
