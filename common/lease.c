/*
 * lease: the lease backends (SQLite and Kubernetes Lease objects). See lease.h.
 */
#include "lease.h"

#include "err.h"
#include "json.h"
#include "log.h"
#include "rftime.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_TAG 0x1ea5eb0du /* type tag of a live backend */
#define LEASE_TAG_DEAD 0xdeadbeefu /* poisoned on destroy */
#define MS_PER_S 1000
#define FNV_OFFSET 0xcbf29ce484222325ull /* FNV-1a 64 (cache buckets) */
#define FNV_PRIME 0x100000001b3ull

typedef enum { BACKEND_SQLITE, BACKEND_K8S } backend_kind_t;
typedef enum { OP_ACQUIRE, OP_RELEASE, OP_LIST } op_kind_t;

/* Steps of a Kubernetes operation: which request is in flight. */
typedef enum {
    STEP_NONE, /* nothing sent (SQLite, or a result waiting for delivery) */
    STEP_GET, /* GET the Lease */
    STEP_PUT_RENEW, /* PUT a renewal with the cached resourceVersion */
    STEP_PUT_TAKE, /* PUT ourselves as holder with the GET's resourceVersion */
    STEP_CREATE, /* POST a new Lease */
    STEP_PUT_RELEASE, /* PUT holderIdentity "" */
    STEP_LIST /* LIST the group */
} op_step_t;

/* One cached Lease: the last object the server returned for a name. */
typedef struct cache_ent {
    struct cache_ent *next; /* bucket chain */
    char kname[LEASE_K8S_NAME_MAX + 1]; /* object name */
    json_t *obj; /* the Lease (owned reference) */
} cache_ent_t;

/* One operation in flight. */
typedef struct lease_op {
    struct lease_op *prev; /* list of ops in flight */
    struct lease_op *next; /* list of ops in flight */
    lease_backend_t *b; /* the backend */
    int64_t id; /* op id (> 0) */
    op_kind_t kind; /* acquire, release or list */
    op_step_t step; /* Kubernetes request in flight */
    bool retried; /* a renewal conflict already fell back to GET */
    char name[LEASE_NAME_MAX + 1]; /* lease name, or list prefix */
    char holder[LEASE_NAME_MAX + 1]; /* the holder asking */
    char kname[LEASE_K8S_NAME_MAX + 1]; /* Kubernetes object name */
    char group[LEASE_K8S_LABEL_MAX + 1]; /* Kubernetes group label value */
    int64_t duration_ms; /* acquire: duration */
    lease_done_fn *done; /* acquire/release callback */
    lease_list_fn *list_fn; /* list callback */
    void *arg; /* callback argument */
    int64_t timer_id; /* delivery timer (SQLite), 0 when none */
    int64_t req_id; /* Kubernetes request in flight, 0 when none */
    int err; /* result to deliver */
    bool renewed; /* result: a renewal */
    char res_holder[LEASE_NAME_MAX + 1]; /* result: holder */
    int64_t res_expires; /* result: expiry */
    lease_entry_t *entries; /* list result (owned, strings owned too) */
    size_t n; /* number of entries */
} lease_op_t;

struct lease_backend {
    uint32_t tag; /* LEASE_TAG while alive */
    backend_kind_t kind; /* which backend */
    loop_t *loop; /* the loop (borrowed) */
    store_t *store; /* SQLite: the store (borrowed) */
    k8s_client_t *client; /* Kubernetes: the client (borrowed) */
    char *ns; /* Kubernetes: namespace (owned) */
    lease_op_t *ops; /* ops in flight (head) */
    size_t nops; /* their number */
    int64_t next_id; /* next op id */
    cache_ent_t *cache[LEASE_K8S_CACHE_BUCKETS]; /* last Lease seen per name */
    size_t ncache; /* cached Leases */
};

/* ---- Names ---- */

static bool s_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int lease_k8s_name(const char *name, char *out, size_t size)
{
    if (!name || !name[0] || !out || size == 0)
        return ERR_INVAL;
    size_t len = strlen(name);
    if (len > LEASE_K8S_NAME_MAX || len + 1 > size)
        return ERR_TOOBIG;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (c == '/')
            c = '.';
        else if (!s_alnum(c) && c != '.' && c != '-')
            c = '-';
        out[i] = c;
    }
    out[len] = '\0';
    if (!s_alnum(out[0]) || !s_alnum(out[len - 1]))
        return ERR_INVAL;
    return 0;
}

/* The group label value of `name`: its part before the last '/', mapped like an object name. */
static int s_group(const char *name, size_t len, char *out, size_t size)
{
    char tmp[LEASE_NAME_MAX + 1];
    if (len == 0 || len > LEASE_NAME_MAX)
        return ERR_INVAL;
    memcpy(tmp, name, len);
    tmp[len] = '\0';
    int rc = lease_k8s_name(tmp, out, size);
    if (rc == 0 && strlen(out) > LEASE_K8S_LABEL_MAX)
        rc = ERR_TOOBIG;
    return rc;
}

/* ---- Ops ---- */

static lease_backend_t *s_backend_new(loop_t *loop, backend_kind_t kind)
{
    lease_backend_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->tag = LEASE_TAG;
    b->kind = kind;
    b->loop = loop;
    b->next_id = 1;
    return b;
}

lease_backend_t *lease_sqlite_new(loop_t *loop, store_t *store)
{
    if (!loop || !store)
        return NULL;
    lease_backend_t *b = s_backend_new(loop, BACKEND_SQLITE);
    if (b)
        b->store = store;
    return b;
}

lease_backend_t *lease_k8s_new(loop_t *loop, k8s_client_t *client, const char *namespace_)
{
    if (!loop || !client || !namespace_ || !namespace_[0])
        return NULL;
    lease_backend_t *b = s_backend_new(loop, BACKEND_K8S);
    if (!b)
        return NULL;
    b->client = client;
    b->ns = strdup(namespace_);
    if (!b->ns) {
        free(b);
        return NULL;
    }
    return b;
}

static void s_entries_free(lease_op_t *op)
{
    for (size_t i = 0; i < op->n; i++) {
        free((char *)op->entries[i].name);
        free((char *)op->entries[i].holder);
    }
    free(op->entries);
    op->entries = NULL;
    op->n = 0;
}

/* Unlinks and frees op, cancelling its timer and request (no callback runs). */
static void s_op_free(lease_op_t *op)
{
    lease_backend_t *b = op->b;
    if (op->timer_id > 0)
        loop_cancel_timer(b->loop, op->timer_id);
    if (op->req_id > 0 && b->client)
        k8s_cancel(b->client, op->req_id);
    if (op->prev)
        op->prev->next = op->next;
    else
        b->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    b->nops--;
    s_entries_free(op);
    free(op);
}

void lease_backend_destroy(lease_backend_t **b_p)
{
    if (!b_p || !*b_p)
        return;
    lease_backend_t *b = *b_p;
    while (b->ops)
        s_op_free(b->ops);
    for (size_t i = 0; i < LEASE_K8S_CACHE_BUCKETS; i++) {
        cache_ent_t *e = b->cache[i];
        while (e) {
            cache_ent_t *next = e->next;
            json_decref(e->obj);
            free(e);
            e = next;
        }
    }
    free(b->ns);
    b->tag = LEASE_TAG_DEAD;
    free(b);
    *b_p = NULL;
}

static int s_copy(char *dst, size_t size, const char *src)
{
    if (!src || !src[0])
        return ERR_INVAL;
    size_t len = strlen(src);
    if (len >= size)
        return ERR_INVAL;
    memcpy(dst, src, len + 1);
    return 0;
}

/* A new op linked into b, or NULL with *err set. */
static lease_op_t *s_op_new(lease_backend_t *b, op_kind_t kind, const char *name,
                            const char *holder, int *err)
{
    if (b->nops >= LEASE_OPS_MAX) {
        *err = ERR_BUSY;
        return NULL;
    }
    lease_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        *err = ERR_NOMEM;
        return NULL;
    }
    op->b = b;
    op->kind = kind;
    if (s_copy(op->name, sizeof(op->name), name) < 0 ||
        (holder && s_copy(op->holder, sizeof(op->holder), holder) < 0)) {
        free(op);
        *err = ERR_INVAL;
        return NULL;
    }
    if (b->kind == BACKEND_K8S) {
        const char *slash = strrchr(name, '/');
        int rc = 0;
        if (!slash && kind == OP_LIST)
            rc = ERR_INVAL;
        if (rc == 0 && slash) /* a name without '/' has no group (an unlabelled Lease) */
            rc = s_group(name, (size_t)(slash - name), op->group, sizeof(op->group));
        if (rc == 0 && kind != OP_LIST)
            rc = lease_k8s_name(name, op->kname, sizeof(op->kname));
        if (rc < 0) {
            free(op);
            *err = rc;
            return NULL;
        }
    }
    op->id = b->next_id++;
    op->next = b->ops;
    if (b->ops)
        b->ops->prev = op;
    b->ops = op;
    b->nops++;
    return op;
}

/* Runs the op's callback with its result, then frees it. */
static void s_finish(lease_op_t *op)
{
    lease_backend_t *b = op->b;
    op->req_id = 0;
    op->timer_id = 0;
    if (op->kind == OP_LIST) {
        op->list_fn(b, op->id, op->err, op->err ? NULL : op->entries, op->err ? 0 : op->n, op->arg);
    } else {
        lease_result_t r = {.id = op->id,
                            .err = op->err,
                            .renewed = op->renewed,
                            .holder = op->res_holder,
                            .expires_ms = op->res_expires};
        op->done(b, &r, op->arg);
    }
    s_op_free(op);
}

static int64_t s_deliver_timer(loop_t *loop, int64_t timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    lease_op_t *op = arg;
    op->timer_id = 0;
    s_finish(op);
    return LOOP_TIMER_DONE;
}

/* Arms the delivery of a result computed during the call. Returns 0 or the timer's error. */
static int s_defer(lease_op_t *op)
{
    int64_t t = loop_add_timer(op->b->loop, 0, s_deliver_timer, op);
    if (t < 0)
        return (int)t;
    op->timer_id = t;
    return 0;
}

static void s_set_result(lease_op_t *op, int err, bool renewed, const char *holder, int64_t expires)
{
    op->err = err;
    op->renewed = renewed;
    snprintf(op->res_holder, sizeof(op->res_holder), "%s", holder ? holder : "");
    op->res_expires = expires;
}

/* ---- SQLite ---- */

static void s_sqlite_acquire(lease_op_t *op)
{
    int64_t now = store_wall_ms();
    bool renewed = false;
    int rc =
        store_lease_try_acquire(op->b->store, op->name, op->holder, op->duration_ms, now, &renewed);
    if (rc == 0) {
        s_set_result(op, 0, renewed, op->holder, now + op->duration_ms);
    } else if (rc == ERR_CONFLICT) {
        store_lease_t cur;
        if (store_lease_get(op->b->store, op->name, &cur) == 0)
            s_set_result(op, rc, false, cur.holder, cur.expires_ms);
        else
            s_set_result(op, rc, false, "", 0);
    } else {
        s_set_result(op, rc, false, "", 0);
    }
}

static void s_sqlite_release(lease_op_t *op)
{
    int rc = store_lease_release(op->b->store, op->name, op->holder);
    s_set_result(op, rc, false, "", 0);
}

static int s_entry_add(lease_op_t *op, size_t *cap, const char *name, const char *holder,
                       int64_t expires)
{
    if (op->n >= LEASE_LIST_MAX)
        return ERR_TOOBIG;
    if (op->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        lease_entry_t *e = realloc(op->entries, ncap * sizeof(*e));
        if (!e)
            return ERR_NOMEM;
        op->entries = e;
        *cap = ncap;
    }
    char *n = strdup(name);
    char *h = strdup(holder ? holder : "");
    if (!n || !h) {
        free(n);
        free(h);
        return ERR_NOMEM;
    }
    op->entries[op->n++] = (lease_entry_t){.name = n, .holder = h, .expires_ms = expires};
    return 0;
}

/* One lease listed by s_sqlite_list(). */
typedef struct {
    lease_op_t *op;
    size_t cap; /* entries allocated */
} sqlite_list_t;

static int s_sqlite_list_row(const store_lease_t *lease, void *arg)
{
    sqlite_list_t *l = arg;
    return s_entry_add(l->op, &l->cap, lease->name, lease->holder, lease->expires_ms);
}

static void s_sqlite_list(lease_op_t *op)
{
    sqlite_list_t l = {.op = op};
    int err = store_lease_scan(op->b->store, op->name, LEASE_LIST_MAX, s_sqlite_list_row, &l);
    if (err < 0 && err != ERR_BUSY && err != ERR_NOMEM && err != ERR_TOOBIG)
        err = ERR_DB;
    if (err < 0)
        s_entries_free(op);
    op->err = err;
}

/* ---- Kubernetes ---- */

static uint64_t s_hash(const char *s)
{
    uint64_t h = FNV_OFFSET;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return h;
}

static cache_ent_t **s_cache_slot(lease_backend_t *b, const char *kname)
{
    cache_ent_t **p = &b->cache[s_hash(kname) % LEASE_K8S_CACHE_BUCKETS];
    while (*p && strcmp((*p)->kname, kname) != 0)
        p = &(*p)->next;
    return p;
}

static json_t *s_cache_get(lease_backend_t *b, const char *kname)
{
    cache_ent_t **p = s_cache_slot(b, kname);
    return *p ? (*p)->obj : NULL;
}

static void s_cache_drop(lease_backend_t *b, const char *kname)
{
    cache_ent_t **p = s_cache_slot(b, kname);
    if (*p) {
        cache_ent_t *e = *p;
        *p = e->next;
        json_decref(e->obj);
        free(e);
        b->ncache--;
    }
}

/* Remembers `obj` (a Lease from the server) for kname; silently skipped when full or OOM. */
static void s_cache_put(lease_backend_t *b, const char *kname, json_t *obj)
{
    if (!json_is_object(obj))
        return;
    cache_ent_t **p = s_cache_slot(b, kname);
    if (*p) {
        json_decref((*p)->obj);
        (*p)->obj = json_incref(obj);
        return;
    }
    if (b->ncache >= LEASE_K8S_CACHE_MAX)
        return;
    cache_ent_t *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    snprintf(e->kname, sizeof(e->kname), "%s", kname);
    e->obj = json_incref(obj);
    *p = e;
    b->ncache++;
}

static const char *s_holder_of(const json_t *lease)
{
    return jx_str(lease, "spec.holderIdentity", "");
}

/* The recorded expiry of a Lease in wall-clock ms: renewTime (else acquireTime) plus the duration
 * (annotation in ms, else leaseDurationSeconds). 0 when it has no time or no duration. */
static int64_t s_expiry_of(const json_t *lease)
{
    const char *t = jx_str(lease, "spec.renewTime", NULL);
    if (!t)
        t = jx_str(lease, "spec.acquireTime", NULL);
    int64_t at;
    if (!t || rftime_parse(t, &at) < 0)
        return 0;
    int64_t dur = 0;
    json_t *ann = jx_get(lease, "metadata.annotations");
    const char *ds = json_string_value(json_object_get(ann, LEASE_K8S_ANN_DURATION));
    if (ds) {
        char *end = NULL;
        long long v = strtoll(ds, &end, 10);
        if (end && *end == '\0' && end != ds && v > 0)
            dur = v;
    }
    if (dur == 0)
        dur = (int64_t)jx_int(lease, "spec.leaseDurationSeconds", 0) * MS_PER_S;
    return dur > 0 ? at + dur : 0;
}

int64_t lease_k8s_expiry(const json_t *lease)
{
    return json_is_object(lease) && s_holder_of(lease)[0] ? s_expiry_of(lease) : 0;
}

/* The object `key` of obj, created when missing. NULL on OOM or when it is not an object. */
static json_t *s_child(json_t *obj, const char *key)
{
    json_t *c = json_object_get(obj, key);
    if (c)
        return json_is_object(c) ? c : NULL;
    c = json_object();
    if (!c || json_object_set_new(obj, key, c) < 0)
        return NULL;
    return c;
}

/* A Lease body with `holder` as holder, renewed now: based on `base` (a copy) or a new object.
 * holder "" releases it. Returns the body, or NULL when out of memory. */
static json_t *s_lease_body(lease_op_t *op, const json_t *base, const char *holder)
{
    lease_backend_t *b = op->b;
    json_t *obj = base ? json_deep_copy(base) : json_object();
    if (!obj)
        return NULL;
    int64_t now = store_wall_ms();
    char ts[RFTIME_BUF];
    char dur[32];
    snprintf(dur, sizeof(dur), "%" PRId64, op->duration_ms);
    json_t *md = s_child(obj, "metadata");
    json_t *labels = md ? s_child(md, "labels") : NULL;
    json_t *ann = md ? s_child(md, "annotations") : NULL;
    json_t *spec = s_child(obj, "spec");
    if (!md || !labels || !ann || !spec || rftime_format(now, RFTIME_MICRO, ts, sizeof(ts)) < 0)
        goto fail;
    const char *old = jx_str(obj, "spec.holderIdentity", "");
    bool changed = strcmp(old, holder) != 0;
    json_int_t transitions = jx_int(obj, "spec.leaseTransitions", 0);
    int rc = 0;
    rc |= json_object_set_new(obj, "apiVersion", json_string("coordination.k8s.io/v1"));
    rc |= json_object_set_new(obj, "kind", json_string("Lease"));
    rc |= json_object_set_new(md, "name", json_string(op->kname));
    rc |= json_object_set_new(md, "namespace", json_string(b->ns));
    if (op->group[0])
        rc |= json_object_set_new(labels, LEASE_K8S_LABEL_GROUP, json_string(op->group));
    rc |= json_object_set_new(ann, LEASE_K8S_ANN_NAME, json_string(op->name));
    if (holder[0]) {
        int64_t secs = (op->duration_ms + MS_PER_S - 1) / MS_PER_S;
        rc |= json_object_set_new(ann, LEASE_K8S_ANN_DURATION, json_string(dur));
        rc |= json_object_set_new(spec, "leaseDurationSeconds", json_integer(secs));
        rc |= json_object_set_new(spec, "renewTime", json_string(ts));
        if (changed || !base) {
            rc |= json_object_set_new(spec, "acquireTime", json_string(ts));
            if (base)
                transitions++;
        }
    } else {
        /* Released: client-go's ReleaseOnCancel shape, so any successor takes it at once. */
        rc |= json_object_set_new(ann, LEASE_K8S_ANN_DURATION, json_string("1"));
        rc |= json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
    }
    rc |= json_object_set_new(spec, "holderIdentity", json_string(holder));
    rc |= json_object_set_new(spec, "leaseTransitions", json_integer(transitions));
    if (rc != 0)
        goto fail;
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

static void s_k8s_done(k8s_client_t *c, const k8s_result_t *r, void *arg);

static k8s_res_t s_res(const lease_op_t *op, bool named)
{
    return (k8s_res_t){.group = "coordination.k8s.io",
                       .version = "v1",
                       .resource = "leases",
                       .namespace_ = op->b->ns,
                       .name = named ? op->kname : NULL};
}

/* Sends the request of op->step. Returns 0 or the client's error (nothing sent). */
static int s_k8s_send(lease_op_t *op, const json_t *body)
{
    k8s_client_t *c = op->b->client;
    k8s_res_t named = s_res(op, true);
    k8s_res_t coll = s_res(op, false);
    int64_t id = ERR_INVAL;
    switch (op->step) {
    case STEP_GET:
        id = k8s_get(c, &named, NULL, s_k8s_done, op);
        break;
    case STEP_PUT_RENEW:
    case STEP_PUT_TAKE:
    case STEP_PUT_RELEASE:
        id = k8s_update(c, &named, body, NULL, s_k8s_done, op);
        break;
    case STEP_CREATE:
        id = k8s_create(c, &coll, body, NULL, s_k8s_done, op);
        break;
    case STEP_LIST: {
        char sel[LEASE_K8S_LABEL_MAX + sizeof(LEASE_K8S_LABEL_GROUP) + 2];
        snprintf(sel, sizeof(sel), "%s=%s", LEASE_K8S_LABEL_GROUP, op->group);
        id = k8s_list(c, &coll, &(k8s_opts_t){.label_selector = sel}, s_k8s_done, op);
        break;
    }
    case STEP_NONE:
        break;
    }
    if (id < 0)
        return (int)id;
    op->req_id = id;
    return 0;
}

/* Builds the body for a PUT/POST step from base and sends it. Returns 0 or an err_t. */
static int s_k8s_write(lease_op_t *op, op_step_t step, const json_t *base, const char *holder)
{
    json_t *body = s_lease_body(op, base, holder);
    if (!body)
        return ERR_NOMEM;
    op->step = step;
    int rc = s_k8s_send(op, body);
    json_decref(body);
    return rc;
}

/* Acquire after a GET answered `lease`: conflict when another holder's lease is unexpired,
 * else PUT ourselves with its resourceVersion. Returns 0 (sent or result set), or an err_t. */
static int s_k8s_decide(lease_op_t *op, const json_t *lease)
{
    const char *holder = s_holder_of(lease);
    int64_t exp = s_expiry_of(lease);
    if (holder[0] && strcmp(holder, op->holder) != 0 && exp > store_wall_ms()) {
        s_set_result(op, ERR_CONFLICT, false, holder, exp);
        return 1;
    }
    op->renewed = strcmp(holder, op->holder) == 0;
    return s_k8s_write(op, STEP_PUT_TAKE, lease, op->holder);
}

/* Release after a GET answered `lease`. Returns as s_k8s_decide(). */
static int s_k8s_release_decide(lease_op_t *op, const json_t *lease)
{
    if (strcmp(s_holder_of(lease), op->holder) != 0) {
        s_set_result(op, ERR_NOTFOUND, false, s_holder_of(lease), s_expiry_of(lease));
        return 1;
    }
    return s_k8s_write(op, STEP_PUT_RELEASE, lease, "");
}

static void s_k8s_list_result(lease_op_t *op, const json_t *body)
{
    size_t cap = 0;
    size_t plen = strlen(op->name);
    json_t *items = json_object_get(body, "items");
    size_t i;
    json_t *it;
    int err = 0;
    json_array_foreach(items, i, it)
    {
        json_t *ann = jx_get(it, "metadata.annotations");
        const char *name = json_string_value(json_object_get(ann, LEASE_K8S_ANN_NAME));
        if (!name || strncmp(name, op->name, plen) != 0)
            continue;
        const char *holder = s_holder_of(it);
        err = s_entry_add(op, &cap, name, holder, holder[0] ? s_expiry_of(it) : 0);
        if (err < 0)
            break;
    }
    if (err < 0)
        s_entries_free(op);
    op->err = err;
}

/* One step's answer: moves the op to its next step or sets its result. */
static void s_k8s_done(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    lease_op_t *op = arg;
    lease_backend_t *b = op->b;
    op->req_id = 0;
    int rc = 1; /* 1: result set; 0: next request sent; < 0: failed */
    switch (op->step) {
    case STEP_LIST:
        if (r->err == 0)
            s_k8s_list_result(op, r->body);
        else
            op->err = r->err;
        break;
    case STEP_GET:
        if (r->err == 0) {
            s_cache_put(b, op->kname, r->body);
            rc = op->kind == OP_RELEASE ? s_k8s_release_decide(op, r->body)
                                        : s_k8s_decide(op, r->body);
        } else if (r->err == ERR_NOTFOUND && op->kind == OP_ACQUIRE) {
            s_cache_drop(b, op->kname);
            op->renewed = false;
            rc = s_k8s_write(op, STEP_CREATE, NULL, op->holder);
        } else {
            s_cache_drop(b, op->kname);
            s_set_result(op, r->err, false, "", 0);
        }
        break;
    case STEP_PUT_RENEW:
        if (r->err == 0) {
            s_cache_put(b, op->kname, r->body);
            s_set_result(op, 0, true, op->holder, s_expiry_of(r->body));
        } else if ((r->err == ERR_CONFLICT || r->err == ERR_NOTFOUND) && !op->retried) {
            /* Someone wrote it since we last saw it (or it was deleted): start over. */
            s_cache_drop(b, op->kname);
            op->retried = true;
            op->step = STEP_GET;
            rc = s_k8s_send(op, NULL);
        } else {
            s_set_result(op, r->err, false, "", 0);
        }
        break;
    case STEP_PUT_TAKE:
    case STEP_CREATE:
        if (r->err == 0) {
            s_cache_put(b, op->kname, r->body);
            s_set_result(op, 0, op->renewed, op->holder, s_expiry_of(r->body));
        } else if (r->err == ERR_CONFLICT || r->err == ERR_EXISTS) {
            /* Another replica wrote it between our GET and this write: it won. */
            s_cache_drop(b, op->kname);
            s_set_result(op, ERR_CONFLICT, false, "", 0);
        } else {
            s_set_result(op, r->err, false, "", 0);
        }
        break;
    case STEP_PUT_RELEASE:
        if (r->err == 0)
            s_cache_put(b, op->kname, r->body);
        else
            s_cache_drop(b, op->kname);
        s_set_result(op, r->err == ERR_NOTFOUND ? ERR_NOTFOUND : r->err, false, "", 0);
        break;
    case STEP_NONE:
        s_set_result(op, ERR_STATE, false, "", 0);
        break;
    }
    if (rc < 0)
        s_set_result(op, rc, false, "", 0);
    if (rc != 0)
        s_finish(op);
}

/* Starts a Kubernetes acquire or release. Returns 0 or an err_t (nothing sent). */
static int s_k8s_start(lease_op_t *op)
{
    json_t *cached = s_cache_get(op->b, op->kname);
    bool ours = cached && strcmp(s_holder_of(cached), op->holder) == 0;
    if (ours && op->kind == OP_ACQUIRE)
        return s_k8s_write(op, STEP_PUT_RENEW, cached, op->holder);
    if (ours && op->kind == OP_RELEASE) {
        op->retried = true;
        return s_k8s_write(op, STEP_PUT_RELEASE, cached, "");
    }
    op->step = STEP_GET;
    return s_k8s_send(op, NULL);
}

/* ---- The public operations ---- */

static int64_t s_start(lease_op_t *op)
{
    lease_backend_t *b = op->b;
    int rc;
    if (b->kind == BACKEND_SQLITE) {
        if (op->kind == OP_ACQUIRE)
            s_sqlite_acquire(op);
        else if (op->kind == OP_RELEASE)
            s_sqlite_release(op);
        else
            s_sqlite_list(op);
        rc = s_defer(op);
    } else if (op->kind == OP_LIST) {
        op->step = STEP_LIST;
        rc = s_k8s_send(op, NULL);
    } else {
        rc = s_k8s_start(op);
    }
    if (rc < 0) {
        s_op_free(op);
        return rc;
    }
    return op->id;
}

int64_t lease_acquire(lease_backend_t *b, const char *name, const char *holder, int64_t duration_ms,
                      lease_done_fn *fn, void *arg)
{
    if (!b || !fn || duration_ms <= 0 || !holder)
        return ERR_INVAL;
    int err = 0;
    lease_op_t *op = s_op_new(b, OP_ACQUIRE, name, holder, &err);
    if (!op)
        return err;
    op->duration_ms = duration_ms;
    op->done = fn;
    op->arg = arg;
    return s_start(op);
}

int64_t lease_release(lease_backend_t *b, const char *name, const char *holder, lease_done_fn *fn,
                      void *arg)
{
    if (!b || !fn || !holder)
        return ERR_INVAL;
    int err = 0;
    lease_op_t *op = s_op_new(b, OP_RELEASE, name, holder, &err);
    if (!op)
        return err;
    op->duration_ms = 1;
    op->done = fn;
    op->arg = arg;
    return s_start(op);
}

int64_t lease_list(lease_backend_t *b, const char *prefix, lease_list_fn *fn, void *arg)
{
    if (!b || !fn || !prefix || !prefix[0] || prefix[strlen(prefix) - 1] != '/')
        return ERR_INVAL;
    int err = 0;
    lease_op_t *op = s_op_new(b, OP_LIST, prefix, NULL, &err);
    if (!op)
        return err;
    op->list_fn = fn;
    op->arg = arg;
    return s_start(op);
}

int lease_cancel(lease_backend_t *b, int64_t id)
{
    if (!b)
        return ERR_NOTFOUND;
    for (lease_op_t *op = b->ops; op; op = op->next) {
        if (op->id == id) {
            s_op_free(op);
            return 0;
        }
    }
    return ERR_NOTFOUND;
}

size_t lease_pending(const lease_backend_t *b)
{
    return b ? b->nops : 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- Self-test ---- */

/* What a test callback saw. */
typedef struct {
    int calls; /* callbacks run */
    int err; /* last err */
    bool renewed; /* last renewed */
    char holder[LEASE_NAME_MAX + 1]; /* last holder */
    int64_t expires; /* last expiry */
    size_t n; /* list: entries */
    char names[8][64]; /* list: first names */
    char holders[8][64]; /* list: their holders */
} t_seen_t;

static void t_done(lease_backend_t *b, const lease_result_t *r, void *arg)
{
    (void)b;
    t_seen_t *s = arg;
    s->calls++;
    s->err = r->err;
    s->renewed = r->renewed;
    snprintf(s->holder, sizeof(s->holder), "%s", r->holder);
    s->expires = r->expires_ms;
}

static void t_list(lease_backend_t *b, int64_t id, int err, const lease_entry_t *e, size_t n,
                   void *arg)
{
    (void)b;
    (void)id;
    t_seen_t *s = arg;
    s->calls++;
    s->err = err;
    s->n = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(s->names[i], sizeof(s->names[i]), "%s", e[i].name);
        snprintf(s->holders[i], sizeof(s->holders[i]), "%s", e[i].holder);
    }
}

static void t_run(loop_t *loop, t_seen_t *s, int want)
{
    int64_t end = loop_clock_ms() + 2000;
    while (s->calls < want && loop_clock_ms() < end)
        loop_run_once(loop, 10);
}

int lease_test(bool verbose)
{
    int failed = 0;

    /* Names and times. */
    char kn[LEASE_K8S_NAME_MAX + 1];
    CHECK(lease_k8s_name("Sched/shard/17", kn, sizeof(kn)) == 0 && !strcmp(kn, "sched.shard.17"));
    CHECK(lease_k8s_name("a_b/member/r 1", kn, sizeof(kn)) == 0 && !strcmp(kn, "a-b.member.r-1"));
    CHECK(lease_k8s_name("/x", kn, sizeof(kn)) == ERR_INVAL);
    CHECK(lease_k8s_name("", kn, sizeof(kn)) == ERR_INVAL);
    CHECK(lease_k8s_name("abc", kn, 3) == ERR_TOOBIG);
    char g[LEASE_K8S_LABEL_MAX + 1];
    CHECK(s_group("a/b/c", 3, g, sizeof(g)) == 0 && !strcmp(g, "a.b"));
    lease_backend_t *kb = lease_k8s_new((loop_t *)1, (k8s_client_t *)1, "ns"); /* never used */
    int e0 = 0;
    lease_op_t *plain = kb ? s_op_new(kb, OP_ACQUIRE, "rayfleet-leader", "h", &e0) : NULL;
    CHECK(plain && !strcmp(plain->kname, "rayfleet-leader") && plain->group[0] == '\0');
    CHECK(kb && !s_op_new(kb, OP_LIST, "nolist", NULL, &e0) && e0 == ERR_INVAL);
    if (plain)
        s_op_free(plain);
    lease_backend_destroy(&kb);

    /* The Lease body and its expiry. */
    int64_t now = store_wall_ms();
    lease_backend_t fake = {.kind = BACKEND_K8S, .ns = "ns"};
    lease_op_t op = {.b = &fake, .duration_ms = 1500};
    snprintf(op.name, sizeof(op.name), "c/shard/1");
    snprintf(op.kname, sizeof(op.kname), "c.shard.1");
    snprintf(op.group, sizeof(op.group), "c.shard");
    json_t *body = s_lease_body(&op, NULL, "r1");
    CHECK(body && !strcmp(s_holder_of(body), "r1") &&
          jx_int(body, "spec.leaseDurationSeconds", 0) == 2 &&
          jx_int(body, "spec.leaseTransitions", -1) == 0);
    int64_t exp = s_expiry_of(body);
    CHECK(exp >= now + 1500 && exp < now + 1500 + 5000);
    CHECK(lease_k8s_expiry(body) == exp && lease_k8s_expiry(NULL) == 0);
    json_t *body2 = s_lease_body(&op, body, "r2");
    CHECK(body2 && jx_int(body2, "spec.leaseTransitions", -1) == 1);
    json_t *rel = s_lease_body(&op, body2, "");
    CHECK(rel && !strcmp(s_holder_of(rel), "") && jx_int(rel, "spec.leaseTransitions", -1) == 1);
    json_decref(body);
    json_decref(body2);
    json_decref(rel);

    /* The SQLite backend. */
    char dir[] = "/tmp/rf-lease-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/leases.db", dir);
    loop_t *loop = loop_new();
    int err = 0;
    store_t *s1 = store_open(path, STORE_READWRITE | STORE_LEASES, &err);
    store_t *s2 = store_open(path, STORE_READWRITE | STORE_LEASES, &err);
    CHECK(loop && s1 && s2);
    CHECK(lease_sqlite_new(NULL, s1) == NULL);
    CHECK(lease_k8s_new(loop, NULL, "ns") == NULL);
    lease_backend_t *a = lease_sqlite_new(loop, s1);
    lease_backend_t *b = lease_sqlite_new(loop, s2);
    CHECK(a && b);
    t_seen_t x = {0};
    t_seen_t y = {0};
    CHECK(lease_acquire(a, "", "r1", 100, t_done, &x) == ERR_INVAL);
    CHECK(lease_acquire(a, "c/shard/0", "r1", 0, t_done, &x) == ERR_INVAL);
    CHECK(lease_acquire(a, "c/shard/0", "r1", 100, NULL, &x) == ERR_INVAL);
    CHECK(lease_list(a, "c/shard", t_list, &x) == ERR_INVAL);
    CHECK(lease_release(NULL, "c/shard/0", "r1", t_done, &x) == ERR_INVAL);

    CHECK(lease_acquire(a, "c/shard/0", "r1", 200, t_done, &x) > 0);
    CHECK(x.calls == 0 && lease_pending(a) == 1); /* never from inside the call */
    t_run(loop, &x, 1);
    CHECK(x.err == 0 && !x.renewed && !strcmp(x.holder, "r1") && x.expires > now);
    CHECK(lease_acquire(a, "c/shard/0", "r1", 200, t_done, &x) > 0);
    t_run(loop, &x, 2);
    CHECK(x.err == 0 && x.renewed);
    CHECK(lease_acquire(b, "c/shard/0", "r2", 200, t_done, &y) > 0);
    t_run(loop, &y, 1);
    CHECK(y.err == ERR_CONFLICT && !strcmp(y.holder, "r1") && y.expires > store_wall_ms());
    CHECK(lease_release(b, "c/shard/0", "r2", t_done, &y) > 0);
    t_run(loop, &y, 2);
    CHECK(y.err == ERR_NOTFOUND);
    CHECK(lease_release(a, "c/shard/0", "r1", t_done, &x) > 0);
    t_run(loop, &x, 3);
    CHECK(x.err == 0);
    CHECK(lease_acquire(b, "c/shard/0", "r2", 30, t_done, &y) > 0);
    t_run(loop, &y, 3);
    CHECK(y.err == 0 && !y.renewed);
    usleep(40 * 1000); /* let r2's lease expire */
    CHECK(lease_acquire(a, "c/shard/0", "r1", 200, t_done, &x) > 0);
    t_run(loop, &x, 4);
    CHECK(x.err == 0 && !x.renewed);

    /* list */
    CHECK(lease_acquire(a, "c/member/r1", "r1", 500, t_done, &x) > 0);
    CHECK(lease_acquire(b, "c/member/r2", "r2", 500, t_done, &y) > 0);
    CHECK(lease_acquire(b, "d/member/r3", "r3", 500, t_done, &y) > 0);
    t_run(loop, &y, 5);
    t_seen_t l = {0};
    CHECK(lease_list(b, "c/member/", t_list, &l) > 0);
    t_run(loop, &l, 1);
    CHECK(l.err == 0 && l.n == 2 && !strcmp(l.names[0], "c/member/r1") &&
          !strcmp(l.holders[1], "r2"));

    /* cancel, and destroy with ops pending */
    t_seen_t z = {0};
    int64_t id = lease_acquire(a, "c/shard/5", "r1", 100, t_done, &z);
    CHECK(id > 0 && lease_cancel(a, id) == 0 && lease_cancel(a, id) == ERR_NOTFOUND);
    CHECK(lease_list(a, "c/shard/", t_list, &z) > 0);
    CHECK(lease_acquire(a, "c/shard/6", "r1", 100, t_done, &z) > 0);
    lease_backend_destroy(&a);
    lease_backend_destroy(&a);
    CHECK(a == NULL);
    loop_run_once(loop, 10);
    CHECK(z.calls == 0);

    lease_backend_destroy(&b);
    store_destroy(&s1);
    store_destroy(&s2);
    loop_destroy(&loop);
    char f[160];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
        unlink(f);
    }
    rmdir(dir);
    return SELFTEST_RESULT("lease", verbose);
}

#endif /* RF_SELFTEST */
