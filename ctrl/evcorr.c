/*
 * evcorr: client-go's Event correlator (see evcorr.h).
 */
#include "evcorr.h"

#include "err.h"
#include "hash.h"
#include "keytab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An entry of one LRU cache; which fields are used depends on the cache. */
typedef struct node {
    struct node *prev, *next; /* recency list links (head: most recent) */
    char key[EVCORR_KEY_LEN]; /* its key */
    /* aggregation: the distinct messages seen (digests) and when the group was last seen */
    uint64_t local[EVCORR_AGG_MAX];
    int nlocal;
    int64_t last_ms;
    /* deduplication: the recorded Event */
    int64_t count;
    int64_t first_ms;
    char *name;
    /* spam filter: the bucket (last_ms is its last refill) */
    double tokens;
} node_t;

/* A least-recently-used table of at most cap nodes. */
typedef struct {
    keytab_t *t; /* key -> node (not owned by the table) */
    node_t *head, *tail; /* recency list */
    size_t n, cap; /* entries, bound */
} lru_t;

struct evcorr {
    lru_t agg; /* similar groups */
    lru_t dedup; /* recorded Events */
    lru_t spam; /* buckets per source and object */
};

static void s_node_free(node_t *nd)
{
    if (nd) {
        free(nd->name);
        free(nd);
    }
}

static void s_unlink(lru_t *l, node_t *nd)
{
    if (nd->prev)
        nd->prev->next = nd->next;
    else
        l->head = nd->next;
    if (nd->next)
        nd->next->prev = nd->prev;
    else
        l->tail = nd->prev;
    nd->prev = nd->next = NULL;
}

static void s_push_front(lru_t *l, node_t *nd)
{
    nd->prev = NULL;
    nd->next = l->head;
    if (l->head)
        l->head->prev = nd;
    l->head = nd;
    if (!l->tail)
        l->tail = nd;
}

static void s_lru_del(lru_t *l, node_t *nd)
{
    s_unlink(l, nd);
    keytab_del(l->t, nd->key);
    l->n--;
    s_node_free(nd);
}

/* The node of `key`, made the most recent; NULL when absent. */
static node_t *s_lru_get(lru_t *l, const char *key)
{
    node_t *nd = keytab_get(l->t, key);
    if (nd) {
        s_unlink(l, nd);
        s_push_front(l, nd);
    }
    return nd;
}

/* The node of `key`, created (zeroed) when absent, evicting the least recent beyond the bound. */
static node_t *s_lru_put(lru_t *l, const char *key)
{
    node_t *nd = s_lru_get(l, key);
    if (nd)
        return nd;
    nd = calloc(1, sizeof(*nd));
    if (!nd)
        return NULL;
    snprintf(nd->key, sizeof(nd->key), "%s", key);
    if (keytab_put(l->t, nd->key, nd) != 0) {
        free(nd);
        return NULL;
    }
    s_push_front(l, nd);
    l->n++;
    while (l->n > l->cap && l->tail)
        s_lru_del(l, l->tail);
    return nd;
}

static void s_lru_free(lru_t *l)
{
    while (l->head)
        s_lru_del(l, l->head);
    keytab_destroy(&l->t);
}

evcorr_t *evcorr_new(size_t cap)
{
    evcorr_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    lru_t *ls[] = {&e->agg, &e->dedup, &e->spam};
    for (size_t i = 0; i < 3; i++) {
        ls[i]->cap = cap ? cap : EVCORR_CACHE_MAX;
        ls[i]->t = keytab_new(NULL);
        if (!ls[i]->t) {
            evcorr_destroy(&e);
            return NULL;
        }
    }
    return e;
}

void evcorr_destroy(evcorr_t **e_p)
{
    if (!e_p || !*e_p)
        return;
    evcorr_t *e = *e_p;
    s_lru_free(&e->agg);
    s_lru_free(&e->dedup);
    s_lru_free(&e->spam);
    free(e);
    *e_p = NULL;
}

/* The hex SHA-1 of the fields joined with a unit separator (client-go joins them with ""; a
 * separator keeps "ab"+"c" apart from "a"+"bc"). Returns 0 or an error. */
static int s_key(const char *const *fields, size_t n, char out[EVCORR_KEY_LEN])
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(fields[i] ? fields[i] : "") + 1;
    char *text = malloc(len + 1);
    if (!text)
        return ERR_NOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i] ? fields[i] : "";
        size_t fl = strlen(f);
        memcpy(text + at, f, fl);
        at += fl;
        text[at++] = '\x1f';
    }
    unsigned char d[HASH_SHA1_LEN];
    int rc = hash_sha1(text, at, d);
    free(text);
    return rc ? rc : hash_hex(d, sizeof(d), out, EVCORR_KEY_LEN);
}

/* FNV-1a of a message: its identity within one similar group. */
static uint64_t s_fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* A plain new Event (also the answer on errors). */
static void s_plain(evcorr_result_t *out, const char *new_name, int64_t now_ms)
{
    memset(out, 0, sizeof(*out));
    out->action = EVCORR_CREATE;
    snprintf(out->name, sizeof(out->name), "%s", new_name ? new_name : "");
    out->count = 1;
    out->first_ms = now_ms;
}

int evcorr_correlate(evcorr_t *e, const evcorr_event_t *ev, const char *new_name, int64_t now_ms,
                     evcorr_result_t *out)
{
    if (!out)
        return ERR_INVAL;
    s_plain(out, new_name, now_ms);
    if (!e || !ev || !new_name || !new_name[0])
        return ERR_INVAL;
    const char *obj[] = {ev->component, ev->host, ev->kind,       ev->ns,
                         ev->name,      ev->uid,  ev->api_version};
    const char *agg[] = {ev->component,
                         ev->host,
                         ev->kind,
                         ev->ns,
                         ev->name,
                         ev->uid,
                         ev->api_version,
                         ev->type,
                         ev->reason,
                         ev->reporting_controller,
                         ev->reporting_instance};
    const char *full[] = {ev->component, ev->host,        ev->kind, ev->ns,     ev->name,
                          ev->uid,       ev->api_version, ev->type, ev->reason, ev->message};
    char spam_key[EVCORR_KEY_LEN], agg_key[EVCORR_KEY_LEN], full_key[EVCORR_KEY_LEN];
    if (s_key(obj, sizeof(obj) / sizeof(obj[0]), spam_key) != 0 ||
        s_key(agg, sizeof(agg) / sizeof(agg[0]), agg_key) != 0 ||
        s_key(full, sizeof(full) / sizeof(full[0]), full_key) != 0)
        return ERR_NOMEM;

    /* 1. aggregation of similar Events */
    node_t *g = s_lru_put(&e->agg, agg_key);
    if (!g)
        return ERR_NOMEM;
    if (g->nlocal == 0 || now_ms - g->last_ms > EVCORR_AGG_INTERVAL_MS)
        g->nlocal = 0;
    uint64_t lk = s_fnv(ev->message);
    bool known = false;
    for (int i = 0; i < g->nlocal; i++)
        known = known || g->local[i] == lk;
    if (!known && g->nlocal < EVCORR_AGG_MAX)
        g->local[g->nlocal++] = lk;
    g->last_ms = now_ms;
    const char *key = full_key;
    if (g->nlocal >= EVCORR_AGG_MAX) {
        g->nlocal--; /* the set never grows beyond the bound (client-go pops any) */
        out->combined = true;
        key = agg_key;
    }
    snprintf(out->key, sizeof(out->key), "%s", key);

    /* 2. deduplication: the recorded Event of the key is patched */
    node_t *d = s_lru_put(&e->dedup, key);
    if (!d)
        return ERR_NOMEM;
    if (d->count > 0 && d->name) {
        out->action = EVCORR_PATCH;
        snprintf(out->name, sizeof(out->name), "%s", d->name);
        out->count = d->count + 1;
        out->first_ms = d->first_ms;
        d->count++;
    } else {
        char *nm = strdup(new_name);
        if (!nm) {
            s_lru_del(&e->dedup, d);
            return ERR_NOMEM;
        }
        free(d->name);
        d->name = nm;
        d->count = 1;
        d->first_ms = now_ms;
    }

    /* 3. the spam filter (after counting, as client-go) */
    node_t *s = s_lru_put(&e->spam, spam_key);
    if (!s)
        return ERR_NOMEM;
    if (s->last_ms == 0 && s->tokens == 0.0) {
        s->tokens = EVCORR_SPAM_BURST;
    } else if (now_ms > s->last_ms) {
        s->tokens += (double)(now_ms - s->last_ms) / EVCORR_SPAM_REFILL_MS;
        if (s->tokens > EVCORR_SPAM_BURST)
            s->tokens = EVCORR_SPAM_BURST;
    }
    s->last_ms = now_ms;
    if (s->tokens >= 1.0)
        s->tokens -= 1.0;
    else
        out->action = EVCORR_SKIP;
    return 0;
}

void evcorr_forget(evcorr_t *e, const char *key)
{
    node_t *d = e && key ? keytab_get(e->dedup.t, key) : NULL;
    if (d)
        s_lru_del(&e->dedup, d);
}

void evcorr_sizes(const evcorr_t *e, size_t *agg, size_t *dedup, size_t *spam)
{
    if (agg)
        *agg = e ? e->agg.n : 0;
    if (dedup)
        *dedup = e ? e->dedup.n : 0;
    if (spam)
        *spam = e ? e->spam.n : 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

int evcorr_test(bool verbose)
{
    int failed = 0;
    evcorr_t *e = evcorr_new(0);
    CHECK(e != NULL);
    evcorr_result_t r;
    evcorr_event_t ev = {.component = "widget-controller",
                         .api_version = "example.com/v1",
                         .kind = "Widget",
                         .ns = "default",
                         .name = "w1",
                         .uid = "u1",
                         .type = "Warning",
                         .reason = "FailedCreate",
                         .message = "Failed to create Pod default/w1-x, invalid name"};
    int64_t t = 1000000;
    CHECK(evcorr_correlate(NULL, &ev, "w1.1", t, &r) == ERR_INVAL && r.action == EVCORR_CREATE);
    CHECK(evcorr_correlate(e, &ev, "", t, &r) == ERR_INVAL);

    /* dedup: the first is created, identical ones patch it with count + 1, name and first kept */
    CHECK(evcorr_correlate(e, &ev, "w1.1", t, &r) == 0);
    CHECK(r.action == EVCORR_CREATE && !r.combined && strcmp(r.name, "w1.1") == 0 && r.count == 1 &&
          r.first_ms == t && strlen(r.key) == 40);
    char key1[EVCORR_KEY_LEN];
    snprintf(key1, sizeof(key1), "%s", r.key);
    for (int i = 2; i <= 5; i++) {
        CHECK(evcorr_correlate(e, &ev, "w1.other", t + i * 1000, &r) == 0);
        CHECK(r.action == EVCORR_PATCH && strcmp(r.name, "w1.1") == 0 && r.count == i &&
              r.first_ms == t && strcmp(r.key, key1) == 0);
    }
    /* another reason, type or object is another Event */
    evcorr_event_t ev2 = ev;
    ev2.reason = "FailedDelete";
    CHECK(evcorr_correlate(e, &ev2, "w1.2", t, &r) == 0 && r.action == EVCORR_CREATE &&
          strcmp(r.name, "w1.2") == 0);
    ev2 = ev;
    ev2.type = "Normal";
    CHECK(evcorr_correlate(e, &ev2, "w1.3", t, &r) == 0 && r.action == EVCORR_CREATE);
    ev2 = ev;
    ev2.name = "w2";
    CHECK(evcorr_correlate(e, &ev2, "w2.1", t, &r) == 0 && r.action == EVCORR_CREATE);
    /* a forgotten record (its write failed) is created anew */
    evcorr_forget(e, key1);
    CHECK(evcorr_correlate(e, &ev, "w1.4", t + 6000, &r) == 0 && r.action == EVCORR_CREATE &&
          strcmp(r.name, "w1.4") == 0 && r.count == 1);
    evcorr_destroy(&e);
    CHECK(e == NULL);
    evcorr_destroy(&e);

    /* similar aggregation: messages 1..9 are their own Events; the 10th distinct message within
     * the interval becomes one combined Event, and every later one patches it */
    e = evcorr_new(0);
    char msg[64], nm[64];
    ev.reason = "FailedScale";
    for (int i = 1; i <= 9; i++) {
        snprintf(msg, sizeof(msg), "scale to %d failed", i);
        snprintf(nm, sizeof(nm), "w1.a%d", i);
        ev.message = msg;
        CHECK(evcorr_correlate(e, &ev, nm, t + i, &r) == 0);
        CHECK(r.action == EVCORR_CREATE && !r.combined && strcmp(r.name, nm) == 0);
    }
    /* a repeated message of the group is still deduplicated on its own */
    snprintf(msg, sizeof(msg), "scale to %d failed", 3);
    CHECK(evcorr_correlate(e, &ev, "w1.b", t + 10, &r) == 0 && r.action == EVCORR_PATCH &&
          strcmp(r.name, "w1.a3") == 0 && r.count == 2 && !r.combined);
    snprintf(msg, sizeof(msg), "scale to %d failed", 10);
    CHECK(evcorr_correlate(e, &ev, "w1.c", t + 11, &r) == 0);
    CHECK(r.action == EVCORR_CREATE && r.combined && strcmp(r.name, "w1.c") == 0 && r.count == 1);
    char combined[EVCORR_KEY_LEN];
    snprintf(combined, sizeof(combined), "%s", r.key);
    snprintf(msg, sizeof(msg), "scale to %d failed", 11);
    CHECK(evcorr_correlate(e, &ev, "w1.d", t + 12, &r) == 0);
    CHECK(r.action == EVCORR_PATCH && r.combined && strcmp(r.name, "w1.c") == 0 && r.count == 2 &&
          strcmp(r.key, combined) == 0);
    /* similar Events of another reason are not in the group */
    ev2 = ev;
    ev2.reason = "Other";
    CHECK(evcorr_correlate(e, &ev2, "w1.e", t + 13, &r) == 0 && !r.combined &&
          r.action == EVCORR_CREATE);
    /* beyond the interval the group starts over: a new message is its own Event again */
    snprintf(msg, sizeof(msg), "scale to %d failed", 12);
    CHECK(evcorr_correlate(e, &ev, "w1.f", t + 13 + EVCORR_AGG_INTERVAL_MS + 1, &r) == 0);
    CHECK(r.action == EVCORR_CREATE && !r.combined && strcmp(r.name, "w1.f") == 0);
    evcorr_destroy(&e);

    /* spam filter: 25 Events about one object at once, then one per 5 minutes; another object
     * has its own bucket; dropped Events still count (client-go filters after counting) */
    e = evcorr_new(0);
    ev.reason = "Spam";
    int sent = 0, skipped = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(msg, sizeof(msg), "same");
        CHECK(evcorr_correlate(e, &ev, "w1.s", t, &r) == 0);
        if (r.action == EVCORR_SKIP)
            skipped++;
        else
            sent++;
    }
    CHECK(sent == EVCORR_SPAM_BURST && skipped == 40 - EVCORR_SPAM_BURST);
    CHECK(evcorr_correlate(e, &ev, "w1.s", t + EVCORR_SPAM_REFILL_MS / 2, &r) == 0 &&
          r.action == EVCORR_SKIP);
    CHECK(evcorr_correlate(e, &ev, "w1.s", t + EVCORR_SPAM_REFILL_MS + 1, &r) == 0 &&
          r.action == EVCORR_PATCH && r.count == 42);
    CHECK(evcorr_correlate(e, &ev, "w1.s", t + EVCORR_SPAM_REFILL_MS + 2, &r) == 0 &&
          r.action == EVCORR_SKIP);
    ev2 = ev;
    ev2.name = "w9";
    CHECK(evcorr_correlate(e, &ev2, "w9.s", t, &r) == 0 && r.action == EVCORR_CREATE);
    evcorr_destroy(&e);

    /* LRU bound: caches of 8 keep the 8 most recently used records: o5, touched when it was the
     * least recent, outlives o6..o12, evicted by o13..o19 */
    e = evcorr_new(8);
    char on[32];
    ev.reason = "Lru";
    ev.message = "m";
    for (int i = 0; i < 20; i++) {
        snprintf(on, sizeof(on), "o%d", i);
        ev.name = on;
        snprintf(nm, sizeof(nm), "o%d.1", i);
        CHECK(evcorr_correlate(e, &ev, nm, t, &r) == 0 && r.action == EVCORR_CREATE);
        if (i == 12) {
            ev.name = "o5";
            CHECK(evcorr_correlate(e, &ev, "x", t, &r) == 0 && r.action == EVCORR_PATCH &&
                  r.count == 2);
        }
    }
    size_t na, nd, ns;
    evcorr_sizes(e, &na, &nd, &ns);
    CHECK(na == 8 && nd == 8 && ns == 8);
    ev.name = "o19";
    CHECK(evcorr_correlate(e, &ev, "x", t, &r) == 0 && r.action == EVCORR_PATCH && r.count == 2);
    ev.name = "o5";
    CHECK(evcorr_correlate(e, &ev, "x", t, &r) == 0 && r.action == EVCORR_PATCH && r.count == 3 &&
          strcmp(r.name, "o5.1") == 0);
    ev.name = "o12";
    CHECK(evcorr_correlate(e, &ev, "o12.2", t, &r) == 0 && r.action == EVCORR_CREATE);
    evcorr_sizes(e, &na, &nd, &ns);
    CHECK(na == 8 && nd == 8 && ns == 8);
    evcorr_destroy(&e);
    return SELFTEST_RESULT("evcorr", verbose);
}

#endif /* RF_SELFTEST */
