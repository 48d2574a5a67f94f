/*
 * reflector: list + watch into a local cache, with 410 relists as differences. See reflector.h.
 */
#include "reflector.h"

#include "err.h"
#include "json.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Entry flags. */
#define S_F_SEEN 1u /* listed by the list in progress */
#define S_F_UIDBIN 2u /* the uid is stored as 16 bytes */
#define S_UID_BIN 16 /* bytes of a packed UUID */
#define S_UID_LEN 36 /* characters of a canonical UUID */
#define S_TABLE_MIN 64 /* smallest table */

/* One cached object: a single allocation. data holds, in order: the tree pointer (full mode
 * only), key NUL, uid (NUL-terminated text, or 16 bytes), resourceVersion NUL, extra. */
typedef struct {
    uint32_t hash; /* hash of the key */
    uint16_t klen; /* key length */
    uint16_t xlen; /* extra length */
    uint8_t uidlen; /* uid length in characters (the stored bytes are 16 when packed) */
    uint8_t rvlen; /* resourceVersion length */
    uint8_t flags; /* S_F_* */
    char data[]; /* see above */
} ent_t;

struct reflector {
    loop_t *loop; /* the loop */
    k8s_client_t *client; /* borrowed */
    reflector_config_t cfg; /* settings (strings point at the copies below) */
    char *group, *version, *resource, *ns, *lsel, *fsel; /* owned copies */
    ent_t **slots; /* the table (NULL: empty slot) */
    size_t cap; /* slots (a power of two) */
    size_t count; /* entries */
    json_t *view; /* the last reflector_cache() result, or NULL */
    bool listing; /* a list is in progress (entries it listed carry S_F_SEEN) */
    char **keep; /* kept paths (NULL-terminated, the config's plus the reflector's), or NULL */
    char *cont; /* continue token of the list in progress, or NULL */
    char *rv; /* last resourceVersion ("" before the first list) */
    bool started; /* reflector_start() ran */
    bool synced; /* the first list was applied */
    bool relist; /* the next list follows a 410 */
    bool gone; /* the current watch saw an ERROR 410 */
    bool watch_had_events; /* the current watch delivered something */
    bool warned_field; /* an uncacheable uid/resourceVersion was logged */
    int64_t list_id; /* list request in flight, 0 when none */
    int64_t watch_id; /* watch in flight, 0 when none */
    int64_t timer; /* backoff timer, 0 when none */
    int64_t resync_timer; /* resync timer, 0 when none */
    int failures; /* consecutive failures (backoff exponent) */
    uint64_t rng; /* jitter state */
    reflector_stats_t stats; /* counters */
    const json_t *raw_obj; /* the watch event object being handled, or NULL */
    const char *raw; /* its text as received (k8s_event_raw), or NULL */
    size_t raw_len; /* bytes at raw */
    const void *ev_extra; /* extra record of the event being delivered, or NULL */
    size_t ev_xlen; /* its length */
    const void *ev_old_extra; /* MODIFIED: the extra record the cache held before, or NULL */
    size_t ev_old_xlen; /* its length */
    unsigned char xbuf[REFLECTOR_MAX_EXTRA]; /* extra record of an object not cached */
};

static void s_list(reflector_t *r);
static void s_watch(reflector_t *r);

static uint64_t s_rand(reflector_t *r)
{
    uint64_t x = r->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->rng = x;
    return x;
}

const char *reflector_event_name(reflector_event_t type)
{
    switch (type) {
    case REFLECTOR_ADDED:
        return "ADDED";
    case REFLECTOR_MODIFIED:
        return "MODIFIED";
    case REFLECTOR_DELETED:
        return "DELETED";
    case REFLECTOR_RESYNC:
        return "RESYNC";
    }
    return "?";
}

/* "ns/name" of an object; its length, or ERR_INVAL (no name) / ERR_TOOBIG. */
static int s_key(const json_t *obj, char *key, size_t size)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (!name || !*name)
        return ERR_INVAL;
    int n = snprintf(key, size, "%s/%s", ns ? ns : "", name);
    return n < 0 || (size_t)n >= size ? ERR_TOOBIG : n;
}

/* ---------- the table ---------- */

static uint32_t s_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static size_t s_hdr(const reflector_t *r)
{
    return r->cfg.compact ? 0 : sizeof(json_t *);
}

static const char *s_ekey(const reflector_t *r, const ent_t *e)
{
    return e->data + s_hdr(r);
}

static const unsigned char *s_euid(const reflector_t *r, const ent_t *e)
{
    return (const unsigned char *)s_ekey(r, e) + e->klen + 1;
}

static size_t s_euid_bytes(const ent_t *e)
{
    return (e->flags & S_F_UIDBIN) ? S_UID_BIN : (size_t)e->uidlen + 1;
}

static const char *s_erv(const reflector_t *r, const ent_t *e)
{
    return (const char *)s_euid(r, e) + s_euid_bytes(e);
}

static const void *s_eextra(const reflector_t *r, const ent_t *e)
{
    return e->xlen ? s_erv(r, e) + e->rvlen + 1 : NULL;
}

static json_t *s_eobj(const reflector_t *r, const ent_t *e)
{
    json_t *o = NULL;
    if (!r->cfg.compact)
        memcpy(&o, e->data, sizeof(o));
    return o;
}

static void s_ent_free(const reflector_t *r, ent_t *e)
{
    if (e)
        json_decref(s_eobj(r, e));
    free(e);
}

static int s_hex(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Packs a canonical lowercase UUID into 16 bytes; false when uid is not one. */
static bool s_uid_pack(const char *uid, size_t n, unsigned char *out)
{
    if (n != S_UID_LEN)
        return false;
    size_t j = 0;
    for (size_t i = 0; i < S_UID_LEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (uid[i++] != '-')
                return false;
            continue;
        }
        int a = s_hex(uid[i]), b = s_hex(uid[i + 1]);
        if (a < 0 || b < 0)
            return false;
        out[j++] = (unsigned char)(a << 4 | b);
        i += 2;
    }
    return true;
}

static void s_uid_unpack(const unsigned char *in, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t j = 0; j < S_UID_BIN; j++) {
        if (j == 4 || j == 6 || j == 8 || j == 10)
            out[k++] = '-';
        out[k++] = hex[in[j] >> 4];
        out[k++] = hex[in[j] & 15];
    }
    out[k] = '\0';
}

/* The uid of e as text (in buf when packed). */
static const char *s_uid_text(const reflector_t *r, const ent_t *e, char *buf)
{
    if (!(e->flags & S_F_UIDBIN))
        return (const char *)s_euid(r, e);
    s_uid_unpack(s_euid(r, e), buf);
    return buf;
}

/* True when e's uid is `uid` (n characters). */
static bool s_uid_eq(const reflector_t *r, const ent_t *e, const char *uid, size_t n)
{
    if (e->uidlen != n)
        return false;
    if (!(e->flags & S_F_UIDBIN))
        return memcmp(s_euid(r, e), uid, n) == 0;
    unsigned char b[S_UID_BIN];
    return s_uid_pack(uid, n, b) && memcmp(b, s_euid(r, e), S_UID_BIN) == 0;
}

/* The slot of key (klen bytes, hash h): the entry's, or the empty slot where it would go. */
static size_t s_find_slot(const reflector_t *r, const char *key, size_t klen, uint32_t h)
{
    size_t mask = r->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const ent_t *e = r->slots[i];
        if (!e || (e->hash == h && e->klen == klen && memcmp(s_ekey(r, e), key, klen) == 0))
            return i;
    }
}

static ent_t *s_find(const reflector_t *r, const char *key, size_t klen)
{
    if (!r->cap)
        return NULL;
    return r->slots[s_find_slot(r, key, klen, s_hash(key, klen))];
}

/* Grows the table so that one more entry keeps the load at most 3/4. 0 or ERR_NOMEM. */
static int s_reserve(reflector_t *r)
{
    if ((r->count + 1) * 4 <= r->cap * 3)
        return 0;
    size_t cap = r->cap ? r->cap * 2 : S_TABLE_MIN;
    ent_t **ns = calloc(cap, sizeof(*ns));
    if (!ns)
        return ERR_NOMEM;
    for (size_t i = 0; i < r->cap; i++) {
        ent_t *e = r->slots[i];
        if (!e)
            continue;
        size_t j = e->hash & (cap - 1);
        while (ns[j])
            j = (j + 1) & (cap - 1);
        ns[j] = e;
    }
    free(r->slots);
    r->slots = ns;
    r->cap = cap;
    return 0;
}

/* Removes the entry at slot i (backward-shift deletion); the entry is not freed. */
static void s_remove_at(reflector_t *r, size_t i)
{
    size_t mask = r->cap - 1;
    r->slots[i] = NULL;
    r->count--;
    for (size_t j = (i + 1) & mask; r->slots[j]; j = (j + 1) & mask) {
        size_t home = r->slots[j]->hash & mask;
        /* move j back to i when its home is not in (i, j] (cyclically) */
        bool keep = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (keep)
            continue;
        r->slots[i] = r->slots[j];
        r->slots[j] = NULL;
        i = j;
    }
}

/* Removes the entry e (cached) from the table; not freed. */
static void s_remove(reflector_t *r, const ent_t *e)
{
    s_remove_at(r, s_find_slot(r, s_ekey(r, e), e->klen, e->hash));
}

/* Puts ne in the table, replacing the entry of the same key if any (returned, not freed).
 * The table must have room (s_reserve()). */
static ent_t *s_put(reflector_t *r, ent_t *ne)
{
    size_t i = s_find_slot(r, s_ekey(r, ne), ne->klen, ne->hash);
    ent_t *old = r->slots[i];
    r->slots[i] = ne;
    if (!old)
        r->count++;
    return old;
}

/* A new entry for obj (key given, klen bytes; uid and resourceVersion at most
 * REFLECTOR_MAX_FIELD bytes); its extra record from the consumer. NULL on out of memory. */
static ent_t *s_ent_new(reflector_t *r, const json_t *obj, const char *key, size_t klen)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    size_t ul = uid ? strlen(uid) : 0, rl = rv ? strlen(rv) : 0;
    unsigned char ub[S_UID_BIN];
    bool bin = uid && s_uid_pack(uid, ul, ub);
    int xl = 0;
    if (r->cfg.extra) {
        xl = r->cfg.extra(r, obj, r->xbuf, sizeof(r->xbuf), r->cfg.arg);
        if (xl < 0 || (size_t)xl > sizeof(r->xbuf))
            xl = 0;
    }
    size_t ubytes = bin ? S_UID_BIN : ul + 1;
    ent_t *e = malloc(sizeof(ent_t) + s_hdr(r) + klen + 1 + ubytes + rl + 1 + (size_t)xl);
    if (!e)
        return NULL;
    e->hash = s_hash(key, klen);
    e->klen = (uint16_t)klen;
    e->xlen = (uint16_t)xl;
    e->uidlen = (uint8_t)ul;
    e->rvlen = (uint8_t)rl;
    e->flags = bin ? S_F_UIDBIN : 0;
    char *p = e->data;
    if (!r->cfg.compact) {
        json_t *o = json_incref((json_t *)obj);
        memcpy(p, &o, sizeof(o));
        p += sizeof(o);
    }
    memcpy(p, key, klen);
    p[klen] = '\0';
    p += klen + 1;
    if (bin) {
        memcpy(p, ub, S_UID_BIN);
    } else {
        if (ul)
            memcpy(p, uid, ul);
        p[ul] = '\0';
    }
    p += ubytes;
    if (rl)
        memcpy(p, rv, rl);
    p[rl] = '\0';
    p += rl + 1;
    if (xl)
        memcpy(p, r->xbuf, (size_t)xl);
    return e;
}

/* The object that stands for e in an event: its tree (full mode, a new reference) or a skeleton
 * (compact). NULL on out of memory. */
static json_t *s_ent_obj(const reflector_t *r, const ent_t *e)
{
    if (!r->cfg.compact)
        return json_incref(s_eobj(r, e));
    const char *key = s_ekey(r, e);
    const char *slash = strchr(key, '/');
    if (!slash)
        return NULL;
    char ub[REFLECTOR_UID_TEXT];
    json_t *meta = json_object();
    json_t *o = json_object();
    if (!meta || !o || json_object_set_new(o, "metadata", meta) != 0) {
        if (!o || json_object_size(o) == 0)
            json_decref(meta);
        json_decref(o);
        return NULL;
    }
    int rc = 0;
    if (slash > key)
        rc |= json_object_set_new(meta, "namespace", json_stringn(key, (size_t)(slash - key)));
    rc |= json_object_set_new(meta, "name", json_string(slash + 1));
    if (e->uidlen)
        rc |= json_object_set_new(meta, "uid", json_string(s_uid_text(r, e, ub)));
    if (e->rvlen)
        rc |= json_object_set_new(meta, "resourceVersion", json_string(s_erv(r, e)));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---------- events ---------- */

static void s_set_rv(reflector_t *r, const char *rv)
{
    if (!rv || !*rv)
        return;
    char *copy = strdup(rv);
    if (!copy)
        return; /* keep the older RV: a later watch replays a little more */
    free(r->rv);
    r->rv = copy;
}

/* Delivers one event; `extra` (xlen bytes) is its extra record. */
static void s_emit(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old,
                   const void *extra, size_t xlen)
{
    r->stats.events++;
    r->ev_extra = xlen ? extra : NULL;
    r->ev_xlen = xlen;
    r->cfg.on_event(r, type, obj, old, r->cfg.arg);
    r->ev_extra = NULL;
    r->ev_xlen = 0;
}

/* Emits obj with its raw text (len bytes, may be NULL) available to reflector_event_raw(). */
static void s_emit_raw(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old,
                       const char *raw, size_t len, const ent_t *e)
{
    r->raw = raw;
    r->raw_len = raw ? len : 0;
    r->raw_obj = raw ? obj : NULL;
    s_emit(r, type, obj, old, e ? s_eextra(r, e) : NULL, e ? e->xlen : 0);
    r->raw = NULL;
    r->raw_len = 0;
    r->raw_obj = NULL;
}

/* DELETED for a cached entry that is gone (removed from the table already): the object is its
 * tree or skeleton. Frees e. */
static void s_emit_gone(reflector_t *r, ent_t *e)
{
    json_t *old = s_ent_obj(r, e);
    if (old)
        s_emit(r, REFLECTOR_DELETED, old, old, s_eextra(r, e), e->xlen);
    else
        log_error("reflector: out of memory, DELETED event lost", "resource", r->resource, NULL);
    json_decref(old);
    s_ent_free(r, e);
}

/* Caches obj (a list item or watch event object, key given) and emits what changed: ADDED,
 * MODIFIED (always when `force`, else only when uid or resourceVersion differ), or DELETED of the
 * old object then ADDED when the uid changed. `raw` (len bytes) is obj's text or NULL; `seen`
 * marks the entry as listed. Returns 0 or ERR_NOMEM (cache unchanged). */
static int s_upsert(reflector_t *r, json_t *obj, const char *key, size_t klen, const char *raw,
                    size_t len, bool force, bool seen)
{
    ent_t *e = s_find(r, key, klen);
    const json_t *meta = json_object_get(obj, "metadata");
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    uid = uid ? uid : "";
    rv = rv ? rv : "";
    if (strlen(uid) > REFLECTOR_MAX_FIELD || strlen(rv) > REFLECTOR_MAX_FIELD) {
        if (!r->warned_field)
            log_warn("reflector: uid or resourceVersion too long, object ignored", "resource",
                     r->resource, "key", key, NULL);
        r->warned_field = true;
        return 0;
    }
    bool same_uid = e && s_uid_eq(r, e, uid, strlen(uid));
    if (e && seen)
        e->flags |= S_F_SEEN;
    if (e && same_uid && !force && strcmp(s_erv(r, e), rv) == 0)
        return 0;
    if (s_reserve(r) != 0)
        return ERR_NOMEM;
    ent_t *ne = s_ent_new(r, obj, key, klen);
    if (!ne)
        return ERR_NOMEM;
    if (seen)
        ne->flags |= S_F_SEEN;
    ent_t *old_e = s_put(r, ne);
    if (!old_e) {
        s_emit_raw(r, REFLECTOR_ADDED, obj, NULL, raw, len, ne);
    } else if (!same_uid) {
        /* same name, another object: the old one was deleted */
        s_emit_gone(r, old_e);
        old_e = NULL;
        s_emit_raw(r, REFLECTOR_ADDED, obj, NULL, raw, len, ne);
    } else {
        json_t *old = r->cfg.compact && r->cfg.no_old ? NULL : s_ent_obj(r, old_e);
        r->ev_old_extra = old_e->xlen ? s_eextra(r, old_e) : NULL;
        r->ev_old_xlen = old_e->xlen;
        s_emit_raw(r, REFLECTOR_MODIFIED, obj, old, raw, len, ne);
        r->ev_old_extra = NULL;
        r->ev_old_xlen = 0;
        json_decref(old);
    }
    s_ent_free(r, old_e);
    return 0;
}

/* Clears S_F_SEEN on every entry. */
static void s_unsee(reflector_t *r)
{
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i])
            r->slots[i]->flags &= (uint8_t)~S_F_SEEN;
}

/* Applies one list page's items to the cache at once, emitting what differs, and marks their
 * entries listed. `text` and `spans` (n of them, may be NULL) give each item's raw text. A
 * changed uid under one name gives DELETED (old) then ADDED, so a consumer never holds two objects
 * of one name. Returns 0 or ERR_NOMEM. */
static int s_apply_page(reflector_t *r, json_t *items, const char *text, const jproj_span_t *spans,
                        size_t n)
{
    if (!r->listing) {
        s_unsee(r);
        r->listing = true;
    }
    if (spans && n != json_array_size(items))
        spans = NULL; /* cannot happen: the spans are the array's own elements */
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        char key[REFLECTOR_MAX_KEY];
        int kl = s_key(it, key, sizeof(key));
        if (kl < 0)
            continue;
        const char *raw = spans && text ? text + spans[i].off : NULL;
        size_t len = spans ? spans[i].len : 0;
        int rc = s_upsert(r, it, key, (size_t)kl, raw, len, false, true);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The list is complete: cached objects it did not contain are DELETED; rv is the list's. */
static void s_list_end(reflector_t *r, const char *rv)
{
    if (!r->listing)
        s_unsee(r); /* no page applied: nothing was listed */
    size_t n = 0;
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i] && !(r->slots[i]->flags & S_F_SEEN))
            n++;
    ent_t **gone = n ? malloc(n * sizeof(*gone)) : NULL;
    if (n && !gone) {
        /* cannot collect them: drop nothing now, the next relist judges again */
        log_error("reflector: out of memory at the end of a list", "resource", r->resource, NULL);
        n = 0;
    }
    size_t k = 0;
    for (size_t i = 0; k < n && i < r->cap; i++)
        if (r->slots[i] && !(r->slots[i]->flags & S_F_SEEN))
            gone[k++] = r->slots[i];
    for (size_t i = 0; i < k; i++)
        s_remove(r, gone[i]);
    for (size_t i = 0; i < k; i++)
        s_emit_gone(r, gone[i]);
    free(gone);
    r->listing = false;
    s_set_rv(r, rv);
}

/* Applies one watch event. Returns 0, or ERR_GONE (410: relist), or another err to restart. */
static int s_handle_event(reflector_t *r, const char *type, json_t *obj)
{
    const char *rv = jx_str(obj, "metadata.resourceVersion", NULL);
    if (strcmp(type, "BOOKMARK") == 0) {
        r->stats.bookmarks++;
        s_set_rv(r, rv);
        return 0;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = jx_int(obj, "code", 0);
        log_info("reflector: watch ERROR event", "resource", r->resource, "reason",
                 jx_str(obj, "reason", ""), "message", jx_str(obj, "message", ""), NULL);
        return code == 410 ? ERR_GONE : ERR_SERVER;
    }
    char key[REFLECTOR_MAX_KEY];
    int kl = s_key(obj, key, sizeof(key));
    if (kl < 0)
        return 0; /* not an object we can key: ignore it */
    r->watch_had_events = true;
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        int rc = s_upsert(r, obj, key, (size_t)kl, r->raw, r->raw_len,
                          strcmp(type, "MODIFIED") == 0, false);
        if (rc != 0)
            return rc;
        s_set_rv(r, rv);
    } else if (strcmp(type, "DELETED") == 0) {
        ent_t *e = s_find(r, key, (size_t)kl);
        if (e)
            s_remove(r, e);
        s_set_rv(r, rv);
        json_t *old = e && !(r->cfg.compact && r->cfg.no_old) ? s_ent_obj(r, e) : NULL;
        int xl = 0;
        if (r->cfg.extra) {
            xl = r->cfg.extra(r, obj, r->xbuf, sizeof(r->xbuf), r->cfg.arg);
            if (xl < 0 || (size_t)xl > sizeof(r->xbuf))
                xl = 0;
        }
        s_emit(r, REFLECTOR_DELETED, obj, old, r->xbuf, (size_t)xl);
        json_decref(old);
        s_ent_free(r, e);
    }
    return 0;
}

static int64_t s_backoff(reflector_t *r)
{
    int64_t d = r->cfg.backoff_base_ms;
    for (int i = 1; i < r->failures && d < r->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > r->cfg.backoff_max_ms)
        d = r->cfg.backoff_max_ms;
    return d / 2 + (int64_t)(s_rand(r) % (uint64_t)(d / 2 + 1));
}

static int64_t s_timer_fn(loop_t *loop, int64_t id, void *arg)
{
    reflector_t *r = arg;
    r->timer = 0;
    if (!r->synced || r->relist || r->listing)
        s_list(r);
    else
        s_watch(r);
    return LOOP_TIMER_DONE;
}

/* Schedules the next list/watch after `delay_ms`. */
static void s_later(reflector_t *r, int64_t delay_ms)
{
    if (r->timer)
        return;
    int64_t t = loop_add_timer(r->loop, delay_ms, s_timer_fn, r);
    if (t > 0)
        r->timer = t;
    else
        log_error("reflector: cannot arm a timer", "resource", r->resource, NULL);
}

static void s_failed(reflector_t *r)
{
    r->failures++;
    r->stats.failures++;
    s_later(r, s_backoff(r));
}

static void s_list_done(k8s_client_t *c, const k8s_result_t *res, void *arg)
{
    reflector_t *r = arg;
    r->list_id = 0;
    r->stats.list_pages++;
    if (res->err) {
        if (res->err == ERR_GONE && r->cont) {
            /* continue token expired: restart the list from scratch */
            free(r->cont);
            r->cont = NULL;
            r->listing = false; /* a new snapshot: what it lacks is deleted at its end */
            s_later(r, 0);
            return;
        }
        log_info("reflector: list failed", "resource", r->resource, "error", err_str(res->err),
                 "message", res->message, NULL);
        s_failed(r);
        return;
    }
    if (s_apply_page(r, json_object_get(res->body, "items"), res->raw, res->items, res->n_items) !=
        0) {
        s_failed(r);
        return;
    }
    const char *cont = jx_str(res->body, "metadata.continue", "");
    free(r->cont);
    r->cont = *cont ? strdup(cont) : NULL;
    if (*cont && !r->cont) {
        s_failed(r);
        return;
    }
    if (r->cont) {
        s_list(r);
        return;
    }
    /* complete */
    bool was_relist = r->relist;
    r->relist = false;
    r->failures = 0;
    r->stats.lists++;
    if (was_relist)
        r->stats.relists++;
    s_list_end(r, jx_str(res->body, "metadata.resourceVersion", ""));
    if (!r->synced) {
        r->synced = true;
        if (r->cfg.on_synced)
            r->cfg.on_synced(r, r->cfg.arg);
    }
    s_watch(r);
}

static void s_list(reflector_t *r)
{
    k8s_res_t res = {
        .group = r->group, .version = r->version, .resource = r->resource, .namespace_ = r->ns};
    k8s_opts_t o = {.label_selector = r->lsel,
                    .field_selector = r->fsel,
                    .limit = r->cfg.page_size,
                    .continue_token = r->cont,
                    .keep = (const char *const *)r->keep};
    int64_t id = k8s_list(r->client, &res, &o, s_list_done, r);
    if (id < 0) {
        s_failed(r);
        return;
    }
    r->list_id = id;
}

static int s_watch_event(k8s_client_t *c, int64_t id, const char *type, json_t *obj, void *arg)
{
    reflector_t *r = arg;
    r->raw = k8s_event_raw(c, &r->raw_len);
    r->raw_obj = r->raw ? obj : NULL;
    int rc = s_handle_event(r, type, obj);
    r->raw_obj = NULL;
    r->raw = NULL;
    r->raw_len = 0;
    if (rc == ERR_GONE)
        r->gone = true;
    return rc;
}

static void s_watch_done(k8s_client_t *c, const k8s_result_t *res, void *arg)
{
    reflector_t *r = arg;
    r->watch_id = 0;
    if (r->gone || res->err == ERR_GONE) {
        r->gone = false;
        r->relist = true;
        log_info("reflector: resourceVersion expired, relisting", "resource", r->resource, "rv",
                 r->rv, NULL);
        s_later(r, 0);
        return;
    }
    if (res->err == 0) {
        r->failures = 0;
        s_later(r, 0); /* normal end: watch again from the last RV */
        return;
    }
    if (r->watch_had_events)
        r->failures = 0;
    s_failed(r);
}

static void s_watch(reflector_t *r)
{
    k8s_res_t res = {
        .group = r->group, .version = r->version, .resource = r->resource, .namespace_ = r->ns};
    int64_t to = r->cfg.watch_timeout_s;
    if (to <= 0)
        to = REFLECTOR_WATCH_MIN_S + (int64_t)(s_rand(r) % REFLECTOR_WATCH_MIN_S);
    k8s_opts_t o = {.label_selector = r->lsel,
                    .field_selector = r->fsel,
                    .resource_version = r->rv,
                    .allow_bookmarks = true,
                    .timeout_seconds = to,
                    .keep = (const char *const *)r->keep};
    r->gone = false;
    r->watch_had_events = false;
    int64_t id = k8s_watch(r->client, &res, &o, s_watch_event, s_watch_done, r);
    if (id < 0) {
        s_failed(r);
        return;
    }
    r->watch_id = id;
    r->stats.watches++;
}

static int64_t s_resync(loop_t *loop, int64_t id, void *arg)
{
    reflector_t *r = arg;
    /* the callback may not change the cache, so the table can be walked directly */
    for (size_t i = 0; r->synced && i < r->cap; i++) {
        const ent_t *e = r->slots[i];
        if (!e)
            continue;
        json_t *o = s_ent_obj(r, e);
        if (o)
            s_emit(r, REFLECTOR_RESYNC, o, NULL, s_eextra(r, e), e->xlen);
        json_decref(o);
    }
    return r->cfg.resync_ms;
}

static char *s_dup(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* The paths the reflector itself reads: keys, list diffs, bookmarks. */
static const char *const s_own_paths[] = {"metadata.name", "metadata.namespace", "metadata.uid",
                                          "metadata.resourceVersion", NULL};

/* r->keep = cfg's paths + s_own_paths, or NULL when cfg keeps everything. 0 or ERR_NOMEM. */
static int s_keep_init(reflector_t *r, const char *const *keep)
{
    if (!keep)
        return 0;
    size_t n = 0, m = 0;
    while (keep[n])
        n++;
    r->keep = calloc(n + 5, sizeof(*r->keep));
    if (!r->keep)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(r->keep[m++] = strdup(keep[i])))
            return ERR_NOMEM;
    for (size_t i = 0; s_own_paths[i]; i++)
        if (!(r->keep[m++] = strdup(s_own_paths[i])))
            return ERR_NOMEM;
    return 0;
}

reflector_t *reflector_new(loop_t *loop, k8s_client_t *client, const reflector_config_t *cfg)
{
    if (!loop || !client || !cfg || !cfg->version || !cfg->resource || !cfg->on_event)
        return NULL;
    reflector_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->client = client;
    r->cfg = *cfg;
    if (r->cfg.page_size <= 0)
        r->cfg.page_size = REFLECTOR_DEFAULT_PAGE;
    if (r->cfg.backoff_base_ms <= 0)
        r->cfg.backoff_base_ms = REFLECTOR_BACKOFF_BASE_MS;
    if (r->cfg.backoff_max_ms <= 0)
        r->cfg.backoff_max_ms = REFLECTOR_BACKOFF_MAX_MS;
    r->group = s_dup(cfg->group);
    r->version = strdup(cfg->version);
    r->resource = strdup(cfg->resource);
    r->ns = s_dup(cfg->namespace_);
    r->lsel = s_dup(cfg->label_selector);
    r->fsel = s_dup(cfg->field_selector);
    r->rv = strdup("");
    r->rng = (uint64_t)loop_clock_ms() * 2862933555777941757ULL + (uint64_t)getpid() + 7;
    if (!r->version || !r->resource || !r->rv || s_keep_init(r, cfg->keep) != 0 ||
        (cfg->group && *cfg->group && !r->group) ||
        (cfg->namespace_ && *cfg->namespace_ && !r->ns) ||
        (cfg->label_selector && *cfg->label_selector && !r->lsel) ||
        (cfg->field_selector && *cfg->field_selector && !r->fsel)) {
        reflector_destroy(&r);
        return NULL;
    }
    return r;
}

int reflector_start(reflector_t *r)
{
    if (!r)
        return ERR_INVAL;
    if (r->started)
        return ERR_STATE;
    r->started = true;
    if (r->cfg.resync_ms > 0) {
        int64_t t = loop_add_timer(r->loop, r->cfg.resync_ms, s_resync, r);
        r->resync_timer = t > 0 ? t : 0;
    }
    k8s_res_t res = {
        .group = r->group, .version = r->version, .resource = r->resource, .namespace_ = r->ns};
    k8s_opts_t o = {.label_selector = r->lsel,
                    .field_selector = r->fsel,
                    .limit = r->cfg.page_size,
                    .keep = (const char *const *)r->keep};
    int64_t id = k8s_list(r->client, &res, &o, s_list_done, r);
    if (id < 0)
        return (int)id;
    r->list_id = id;
    return 0;
}

void reflector_destroy(reflector_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    reflector_t *r = *r_p;
    if (r->list_id)
        k8s_cancel(r->client, r->list_id);
    if (r->watch_id)
        k8s_cancel(r->client, r->watch_id);
    if (r->timer)
        loop_cancel_timer(r->loop, r->timer);
    if (r->resync_timer)
        loop_cancel_timer(r->loop, r->resync_timer);
    for (size_t i = 0; i < r->cap; i++)
        s_ent_free(r, r->slots[i]);
    free(r->slots);
    json_decref(r->view);
    for (size_t i = 0; r->keep && r->keep[i]; i++)
        free(r->keep[i]);
    free(r->keep);
    free(r->cont);
    free(r->rv);
    free(r->group);
    free(r->version);
    free(r->resource);
    free(r->ns);
    free(r->lsel);
    free(r->fsel);
    free(r);
    *r_p = NULL;
}

bool reflector_synced(const reflector_t *r)
{
    return r && r->synced;
}

const char *reflector_resource_version(const reflector_t *r)
{
    return r->rv ? r->rv : "";
}

size_t reflector_count(const reflector_t *r)
{
    return r ? r->count : 0;
}

/* The entry of ns/name, or NULL. */
static const ent_t *s_lookup(const reflector_t *r, const char *ns, const char *name)
{
    char key[REFLECTOR_MAX_KEY];
    int n = snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name ? name : "");
    if (!r || n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return s_find(r, key, (size_t)n);
}

bool reflector_lookup(const reflector_t *r, const char *ns, const char *name, reflector_item_t *out)
{
    const ent_t *e = s_lookup(r, ns, name);
    if (!e || !out)
        return e != NULL;
    out->key = s_ekey(r, e);
    out->uid = s_uid_text(r, e, out->uid_buf);
    out->resource_version = s_erv(r, e);
    out->extra = s_eextra(r, e);
    out->extra_len = e->xlen;
    out->obj = s_eobj(r, e);
    return true;
}

json_t *reflector_get(const reflector_t *r, const char *ns, const char *name)
{
    const ent_t *e = s_lookup(r, ns, name);
    return e ? s_eobj(r, e) : NULL;
}

const json_t *reflector_cache(reflector_t *r)
{
    json_decref(r->view);
    r->view = json_object();
    for (size_t i = 0; r->view && i < r->cap; i++) {
        const ent_t *e = r->slots[i];
        if (e && json_object_set_new(r->view, s_ekey(r, e), s_ent_obj(r, e)) != 0) {
            json_decref(r->view);
            r->view = NULL;
        }
    }
    return r->view;
}

const void *reflector_event_extra(const reflector_t *r, size_t *len)
{
    bool ok = r && r->ev_extra && r->ev_xlen;
    if (len)
        *len = ok ? r->ev_xlen : 0;
    return ok ? r->ev_extra : NULL;
}

const void *reflector_event_old_extra(const reflector_t *r, size_t *len)
{
    bool ok = r && r->ev_old_extra && r->ev_old_xlen;
    if (len)
        *len = ok ? r->ev_old_xlen : 0;
    return ok ? r->ev_old_extra : NULL;
}

const char *reflector_event_raw(const reflector_t *r, const json_t *obj, size_t *len)
{
    bool ok = r && obj && r->raw && r->raw_obj == obj;
    if (len)
        *len = ok ? r->raw_len : 0;
    return ok ? r->raw : NULL;
}

bool reflector_uid_pack(const char *uid, size_t n, unsigned char out[16])
{
    return uid && out && s_uid_pack(uid, n, out);
}

void reflector_uid_unpack(const unsigned char in[16], char out[REFLECTOR_UID_TEXT])
{
    s_uid_unpack(in, out);
}

void reflector_stats(const reflector_t *r, reflector_stats_t *out)
{
    *out = r->stats;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

typedef struct {
    char log[2048];
    int n;
    int synced;
    int bad_extra; /* events whose extra record did not match the object */
    char old_extra[16]; /* the last MODIFIED's previous extra record ("-": none) */
} s_t_rec_t;

/* Extra record of the self-test: the "x" label of the object, else none. */
static int s_t_extra(reflector_t *r, const json_t *obj, void *out, size_t cap, void *arg)
{
    const char *x = jx_str(obj, "metadata.labels.x", NULL);
    if (!x)
        return -1;
    size_t n = strlen(x);
    if (n > cap)
        return -1;
    memcpy(out, x, n);
    return (int)n;
}

static void s_t_event(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old, void *arg)
{
    s_t_rec_t *t = arg;
    size_t len = strlen(t->log);
    size_t rl = 0, xl = 0;
    const char *raw = reflector_event_raw(r, obj, &rl);
    const char *x = reflector_event_extra(r, &xl);
    snprintf(t->log + len, sizeof(t->log) - len, "%s:%s:%s%s%s%.*s%s%.*s;",
             reflector_event_name(type), jx_str(obj, "metadata.name", "?"),
             jx_str(obj, "metadata.resourceVersion", "?"), old ? "+old" : "", raw ? "@" : "",
             raw ? (int)rl : 0, raw ? raw : "", x ? "#" : "", x ? (int)xl : 0, x ? x : "");
    size_t ol = 0;
    const char *ox = reflector_event_old_extra(r, &ol);
    if (type == REFLECTOR_MODIFIED)
        snprintf(t->old_extra, sizeof(t->old_extra), "%.*s", ox ? (int)ol : 1, ox ? ox : "-");
    else if (ox)
        t->bad_extra++; /* only MODIFIED has one */
    const char *lx = jx_str(obj, "metadata.labels.x", NULL);
    if (r->cfg.extra && lx && (!x || xl != strlen(lx) || memcmp(x, lx, xl) != 0))
        t->bad_extra++;
    if (old && (strcmp(jx_str(old, "metadata.name", "?"), jx_str(obj, "metadata.name", "")) ||
                strcmp(jx_str(old, "metadata.namespace", "?"), "ns")))
        t->bad_extra++;
    t->n++;
}

static json_t *s_t_obj(const char *name, const char *uid, const char *rv)
{
    return json_pack("{s:{s:s, s:s, s:s, s:s}}", "metadata", "name", name, "namespace", "ns", "uid",
                     uid, "resourceVersion", rv);
}

/* The list/watch scenario in full (compact false) or compact mode. */
static int s_t_scenario(loop_t *loop, k8s_client_t *c, bool compact, bool verbose)
{
    int failed = 0;
    s_t_rec_t t = {0};
    reflector_config_t cfg = {.version = "v1",
                              .resource = "pods",
                              .compact = compact,
                              .extra = compact ? s_t_extra : NULL,
                              .on_event = s_t_event,
                              .arg = &t};
    reflector_t *r = c ? reflector_new(loop, c, &cfg) : NULL;
    CHECK(r != NULL);
    if (!r)
        return failed;
    CHECK(!reflector_synced(r) && strcmp(reflector_resource_version(r), "") == 0);
    /* first list: all ADDED, in two pages, the first with the raw text of its items */
    json_t *l = json_array();
    json_array_append_new(l, s_t_obj("a", "0123abcd-4567-89ab-cdef-0123456789ab", "1"));
    json_t *b = s_t_obj("b", "u2", "2");
    json_object_set_new(json_object_get(b, "metadata"), "labels", json_pack("{s:s}", "x", "xb"));
    json_array_append_new(l, b);
    const char *text = "[A,BB]";
    jproj_span_t sp[2] = {{1, 1}, {3, 2}};
    CHECK(s_apply_page(r, l, text, sp, 2) == 0);
    json_decref(l);
    l = json_array();
    json_array_append_new(l, s_t_obj("c", "u3", "3"));
    json_array_append_new(l, json_pack("{s:{s:s}}", "metadata", "namespace", "x"));
    CHECK(s_apply_page(r, l, text, sp, 1) == 0); /* spans not matching: none used */
    json_decref(l);
    s_list_end(r, "3");
    CHECK(strcmp(t.log, compact ? "ADDED:a:1@A;ADDED:b:2@BB#xb;ADDED:c:3;"
                                : "ADDED:a:1@A;ADDED:b:2@BB;ADDED:c:3;") == 0);
    CHECK(reflector_count(r) == 3 && strcmp(reflector_resource_version(r), "3") == 0);
    /* lookups: a packed UUID comes back as text, an odd uid as it is */
    reflector_item_t it;
    CHECK(reflector_lookup(r, "ns", "a", &it) &&
          strcmp(it.uid, "0123abcd-4567-89ab-cdef-0123456789ab") == 0 &&
          strcmp(it.resource_version, "1") == 0 && strcmp(it.key, "ns/a") == 0 && !it.extra &&
          (it.obj != NULL) == !compact);
    CHECK(reflector_lookup(r, "ns", "b", &it) && strcmp(it.uid, "u2") == 0 &&
          it.extra_len == (compact ? 2u : 0u) && (!compact || memcmp(it.extra, "xb", 2) == 0));
    CHECK(reflector_lookup(r, "ns", "b", NULL) && !reflector_lookup(r, "ns", "zz", &it));
    CHECK(!reflector_lookup(r, NULL, "b", &it) && !reflector_lookup(NULL, "ns", "b", &it));
    CHECK((reflector_get(r, "ns", "b") != NULL) == !compact);
    /* watch events */
    t.log[0] = 0;
    json_t *o = s_t_obj("d", "u4", "4");
    CHECK(s_handle_event(r, "ADDED", o) == 0);
    json_decref(o);
    o = s_t_obj("a", "0123abcd-4567-89ab-cdef-0123456789ab", "5");
    CHECK(s_handle_event(r, "MODIFIED", o) == 0);
    /* the raw text is handed out only for the watch event's own object */
    size_t rl = 9;
    r->raw = "{}";
    r->raw_len = 2;
    r->raw_obj = o;
    CHECK(reflector_event_raw(r, o, &rl) != NULL && rl == 2);
    CHECK(reflector_event_raw(r, b, &rl) == NULL && rl == 0);
    r->raw = NULL;
    r->raw_obj = NULL;
    CHECK(reflector_event_raw(r, o, &rl) == NULL && rl == 0);
    CHECK(reflector_event_raw(NULL, o, NULL) == NULL);
    CHECK(reflector_event_extra(r, &rl) == NULL && rl == 0 && !reflector_event_extra(NULL, NULL));
    json_decref(o);
    o = s_t_obj("b", "u2", "6");
    json_object_set_new(json_object_get(o, "metadata"), "labels", json_pack("{s:s}", "x", "xB"));
    CHECK(s_handle_event(r, "DELETED", o) == 0);
    json_decref(o);
    o = json_pack("{s:{s:s}}", "metadata", "resourceVersion", "7");
    CHECK(s_handle_event(r, "BOOKMARK", o) == 0);
    json_decref(o);
    CHECK(strcmp(reflector_resource_version(r), "7") == 0);
    o = json_pack("{s:s, s:i, s:s}", "kind", "Status", "code", 410, "reason", "Expired");
    CHECK(s_handle_event(r, "ERROR", o) == ERR_GONE);
    json_decref(o);
    o = json_pack("{s:s, s:i}", "kind", "Status", "code", 500);
    CHECK(s_handle_event(r, "ERROR", o) == ERR_SERVER);
    json_decref(o);
    /* a deleted object's extra is computed from the object received */
    CHECK(strcmp(t.log, compact ? "ADDED:d:4;MODIFIED:a:5+old;DELETED:b:6+old#xB;"
                                : "ADDED:d:4;MODIFIED:a:5+old;DELETED:b:6+old;") == 0);
    CHECK(reflector_get(r, "ns", "b") == NULL && !reflector_lookup(r, "ns", "b", NULL));
    CHECK(reflector_lookup(r, "ns", "d", NULL));
    /* an identical list: nothing */
    t.log[0] = 0;
    {
        l = json_array();
        const char *k;
        json_t *v;
        const json_t *cache = reflector_cache(r);
        CHECK(cache && json_object_size(cache) == 3);
        json_object_foreach((json_t *)cache, k, v) json_array_append_new(l, json_deep_copy(v));
        CHECK(s_apply_page(r, l, NULL, NULL, 0) == 0);
        json_decref(l);
        s_list_end(r, "8");
    }
    CHECK(t.log[0] == 0);
    /* relist after a gap: c deleted, a changed, d replaced by another uid, e new */
    o = s_t_obj("c", "u3", "3b");
    json_object_set_new(json_object_get(o, "metadata"), "labels", json_pack("{s:s}", "x", "xc"));
    CHECK(s_handle_event(r, "MODIFIED", o) == 0);
    json_decref(o);
    o = s_t_obj("d", "u4", "4b");
    json_object_set_new(json_object_get(o, "metadata"), "labels", json_pack("{s:s}", "x", "xd"));
    CHECK(s_handle_event(r, "MODIFIED", o) == 0);
    json_decref(o);
    t.log[0] = 0;
    l = json_array();
    json_array_append_new(l, s_t_obj("a", "0123abcd-4567-89ab-cdef-0123456789ab", "9"));
    json_array_append_new(l, s_t_obj("d", "u4x", "10"));
    json_array_append_new(l, s_t_obj("e", "u5", "11"));
    CHECK(s_apply_page(r, l, NULL, NULL, 0) == 0);
    json_decref(l);
    s_list_end(r, "11");
    if (verbose)
        printf("  relist (%s): %s\n", compact ? "compact" : "full", t.log);
    /* compact: the deleted objects' extra records come from the cache */
    CHECK(strcmp(t.log, compact ? "MODIFIED:a:9+old;DELETED:d:4b+old#xd;ADDED:d:10;ADDED:e:11;"
                                  "DELETED:c:3b+old#xc;"
                                : "MODIFIED:a:9+old;DELETED:d:4b+old;ADDED:d:10;ADDED:e:11;"
                                  "DELETED:c:3b+old;") == 0);
    CHECK(strcmp(reflector_resource_version(r), "11") == 0);
    CHECK(reflector_count(r) == 3);
    const json_t *cache = reflector_cache(r);
    CHECK(json_object_get(cache, "ns/e") != NULL &&
          strcmp(jx_str(json_object_get(cache, "ns/a"), "metadata.uid", ""),
                 "0123abcd-4567-89ab-cdef-0123456789ab") == 0);
    /* an expired continue token restarts the list: what the first page listed is forgotten */
    t.log[0] = 0;
    l = json_array();
    json_array_append_new(l, s_t_obj("a", "0123abcd-4567-89ab-cdef-0123456789ab", "9"));
    CHECK(s_apply_page(r, l, NULL, NULL, 0) == 0);
    json_decref(l);
    r->listing = false;
    l = json_array();
    json_array_append_new(l, s_t_obj("e", "u5", "11"));
    CHECK(s_apply_page(r, l, NULL, NULL, 0) == 0);
    json_decref(l);
    s_list_end(r, "12");
    CHECK(strncmp(t.log, "DELETED:", 8) == 0 && reflector_count(r) == 1);
    /* a uid too long to cache: ignored */
    char longuid[REFLECTOR_MAX_FIELD + 2];
    memset(longuid, 'u', sizeof(longuid) - 1);
    longuid[sizeof(longuid) - 1] = '\0';
    o = s_t_obj("f", longuid, "13");
    CHECK(s_handle_event(r, "ADDED", o) == 0 && !reflector_lookup(r, "ns", "f", NULL));
    json_decref(o);
    /* resync */
    t.n = 0;
    r->synced = true;
    s_resync(loop, 0, r);
    CHECK(t.n == 1);
    CHECK(t.bad_extra == 0);
    reflector_destroy(&r);
    return failed;
}

/* The table alone: many keys, deletions in every order, growth. */
static int s_t_table(loop_t *loop, k8s_client_t *c)
{
    int failed = 0;
    s_t_rec_t t = {0};
    reflector_config_t cfg = {
        .version = "v1", .resource = "pods", .compact = true, .on_event = s_t_event, .arg = &t};
    reflector_t *r = reflector_new(loop, c, &cfg);
    CHECK(r != NULL);
    if (!r)
        return failed;
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        char name[32], uid[64];
        snprintf(name, sizeof(name), "o%d", i);
        snprintf(uid, sizeof(uid), "%08x-0000-4000-8000-%012x", (unsigned)i, (unsigned)i * 7);
        json_t *o = s_t_obj(name, uid, "1");
        CHECK(s_handle_event(r, "ADDED", o) == 0);
        json_decref(o);
        t.log[0] = 0;
    }
    CHECK(reflector_count(r) == N && r->cap >= N * 4 / 3);
    bool ok = true;
    for (int i = 0; i < N; i += 3) {
        char name[32];
        snprintf(name, sizeof(name), "o%d", i);
        json_t *o = s_t_obj(name, "x", "2");
        ok = ok && s_handle_event(r, "DELETED", o) == 0;
        json_decref(o);
        t.log[0] = 0;
    }
    for (int i = 0; i < N; i++) {
        char name[32], uid[64];
        snprintf(name, sizeof(name), "o%d", i);
        snprintf(uid, sizeof(uid), "%08x-0000-4000-8000-%012x", (unsigned)i, (unsigned)i * 7);
        reflector_item_t it;
        bool there = reflector_lookup(r, "ns", name, &it);
        ok = ok && there == (i % 3 != 0) && (!there || strcmp(it.uid, uid) == 0);
    }
    CHECK(ok && reflector_count(r) == N - (N + 2) / 3);
    reflector_destroy(&r);
    return failed;
}

int reflector_test(bool verbose)
{
    int failed = 0;
    loop_t *loop = loop_new();
    kubeconfig_t kc = {.server = "http://127.0.0.1:1"};
    k8s_config_t kcfg = {.max_retries = -1};
    k8s_client_t *c = loop ? k8s_client_new(loop, &kc, &kcfg) : NULL;
    CHECK(reflector_new(loop, c, &(reflector_config_t){.version = "v1"}) == NULL);
    failed += s_t_scenario(loop, c, false, verbose);
    failed += s_t_scenario(loop, c, true, verbose);
    failed += s_t_table(loop, c);
    {
        /* no_old: MODIFIED without a skeleton */
        s_t_rec_t t = {0};
        reflector_t *r = reflector_new(loop, c,
                                       &(reflector_config_t){.version = "v1",
                                                             .resource = "pods",
                                                             .compact = true,
                                                             .no_old = true,
                                                             .on_event = s_t_event,
                                                             .arg = &t});
        json_t *o = s_t_obj("a", "u1", "1");
        CHECK(r && s_handle_event(r, "ADDED", o) == 0);
        json_decref(o);
        o = s_t_obj("a", "u1", "2");
        CHECK(r && s_handle_event(r, "MODIFIED", o) == 0 && s_handle_event(r, "DELETED", o) == 0);
        json_decref(o);
        CHECK(strcmp(t.log, "ADDED:a:1;MODIFIED:a:2;DELETED:a:2;") == 0);
        CHECK(strcmp(t.old_extra, "-") == 0 && t.bad_extra == 0); /* no extra function */
        reflector_destroy(&r);
        /* MODIFIED hands out the extra record the cache held before the event */
        s_t_rec_t u = {0};
        r = reflector_new(loop, c,
                          &(reflector_config_t){.version = "v1",
                                                .resource = "pods",
                                                .compact = true,
                                                .no_old = true,
                                                .extra = s_t_extra,
                                                .on_event = s_t_event,
                                                .arg = &u});
        o = s_t_obj("a", "u1", "1");
        json_object_set_new(json_object_get(o, "metadata"), "labels",
                            json_pack("{s:s}", "x", "x1"));
        CHECK(r && s_handle_event(r, "ADDED", o) == 0);
        json_decref(o);
        o = s_t_obj("a", "u1", "2");
        json_object_set_new(json_object_get(o, "metadata"), "labels",
                            json_pack("{s:s}", "x", "x2"));
        CHECK(r && s_handle_event(r, "MODIFIED", o) == 0);
        CHECK(strcmp(u.old_extra, "x1") == 0);
        CHECK(reflector_event_old_extra(r, NULL) == NULL); /* outside on_event */
        json_decref(o);
        o = s_t_obj("a", "u1", "3");
        json_object_set_new(json_object_get(o, "metadata"), "labels",
                            json_pack("{s:s}", "x", "x3"));
        CHECK(r && s_handle_event(r, "MODIFIED", o) == 0 && s_handle_event(r, "DELETED", o) == 0);
        CHECK(strcmp(u.old_extra, "x2") == 0 && u.bad_extra == 0);
        json_decref(o);
        reflector_destroy(&r);
    }
    /* uid packing */
    unsigned char ub[S_UID_BIN];
    char ut[REFLECTOR_UID_TEXT];
    CHECK(s_uid_pack("a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5", 36, ub));
    s_uid_unpack(ub, ut);
    CHECK(strcmp(ut, "a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5") == 0);
    CHECK(!s_uid_pack("A0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5", 36, ub));
    CHECK(!s_uid_pack("a0b1c2d3xe4f5-a6b7-c8d9-e0f1a2b3c4d5", 36, ub));
    CHECK(!s_uid_pack("a0b1c2d3-e4f5", 13, ub));
    CHECK(reflector_uid_pack("00000000-0000-0000-0000-0000000000ff", 36, ub) && ub[15] == 0xff);
    reflector_uid_unpack(ub, ut);
    CHECK(strcmp(ut, "00000000-0000-0000-0000-0000000000ff") == 0);
    CHECK(!reflector_uid_pack(NULL, 0, ub));
    /* start against a closed port: the list fails and backs off */
    s_t_rec_t t = {0};
    reflector_t *r = c ? reflector_new(loop, c,
                                       &(reflector_config_t){.version = "v1",
                                                             .resource = "pods",
                                                             .on_event = s_t_event,
                                                             .arg = &t})
                       : NULL;
    CHECK(r != NULL);
    if (r) {
        reflector_stats_t st;
        CHECK(strcmp(reflector_event_name(REFLECTOR_RESYNC), "RESYNC") == 0);
        CHECK(reflector_start(r) == 0);
        CHECK(reflector_start(r) == ERR_STATE);
        for (int i = 0; i < 20; i++)
            loop_run_once(loop, 10);
        reflector_stats(r, &st);
        CHECK(st.failures >= 1 && !reflector_synced(r));
    }
    reflector_destroy(&r);
    reflector_destroy(&r);
    k8s_client_destroy(&c);
    loop_destroy(&loop);
    return SELFTEST_RESULT("reflector", verbose);
}

#endif /* RF_SELFTEST */
