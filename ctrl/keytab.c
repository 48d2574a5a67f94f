/*
 * keytab: string-keyed table of owned values (see keytab.h).
 */
#include "keytab.h"

#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_BUCKETS 64 /* initial bucket count (a power of two) */

typedef struct entry entry_t;

struct entry {
    entry_t *next; /* next entry of the bucket */
    uint64_t hash; /* hash of key */
    void *val; /* the value (owned) */
    char key[]; /* the key, NUL-terminated */
};

struct keytab {
    entry_t **buckets; /* nbuckets chains */
    size_t nbuckets; /* a power of two */
    size_t n; /* entries */
    keytab_free_fn *free_fn; /* releases values, or NULL */
};

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void s_release(keytab_t *t, void *val)
{
    if (t->free_fn && val)
        t->free_fn(val);
}

keytab_t *keytab_new(keytab_free_fn *free_fn)
{
    keytab_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->buckets = calloc(S_MIN_BUCKETS, sizeof(*t->buckets));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->nbuckets = S_MIN_BUCKETS;
    t->free_fn = free_fn;
    return t;
}

void keytab_destroy(keytab_t **t_p)
{
    if (!t_p || !*t_p)
        return;
    keytab_t *t = *t_p;
    for (size_t b = 0; b < t->nbuckets; b++) {
        entry_t *e = t->buckets[b];
        while (e) {
            entry_t *next = e->next;
            s_release(t, e->val);
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t);
    *t_p = NULL;
}

static entry_t **s_find(const keytab_t *t, const char *key, uint64_t h)
{
    entry_t **pp = &t->buckets[h & (t->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *keytab_get(const keytab_t *t, const char *key)
{
    if (!t || !key)
        return NULL;
    entry_t *e = *s_find(t, key, s_hash(key));
    return e ? e->val : NULL;
}

/* Doubles the bucket array; on out of memory the table stays as it is (longer chains). */
static void s_grow(keytab_t *t)
{
    size_t nb = t->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        entry_t *e = t->buckets[i];
        while (e) {
            entry_t *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

int keytab_put(keytab_t *t, const char *key, void *val)
{
    if (!t || !key || !val) {
        if (t)
            s_release(t, val);
        return ERR_INVAL;
    }
    uint64_t h = s_hash(key);
    entry_t **pp = s_find(t, key, h);
    if (*pp) {
        if ((*pp)->val != val)
            s_release(t, (*pp)->val);
        (*pp)->val = val;
        return 0;
    }
    size_t klen = strlen(key) + 1;
    entry_t *e = malloc(sizeof(*e) + klen);
    if (!e) {
        s_release(t, val);
        return ERR_NOMEM;
    }
    memcpy(e->key, key, klen);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *pp = e;
    if (++t->n > t->nbuckets)
        s_grow(t);
    return 0;
}

void keytab_del(keytab_t *t, const char *key)
{
    if (!t || !key)
        return;
    entry_t **pp = s_find(t, key, s_hash(key));
    entry_t *e = *pp;
    if (!e)
        return;
    *pp = e->next;
    t->n--;
    s_release(t, e->val);
    free(e);
}

size_t keytab_size(const keytab_t *t)
{
    return t ? t->n : 0;
}

void keytab_sweep(keytab_t *t, keytab_visit_fn *fn, void *arg)
{
    if (!t || !fn)
        return;
    for (size_t b = 0; b < t->nbuckets; b++) {
        entry_t **pp = &t->buckets[b];
        while (*pp) {
            entry_t *e = *pp;
            if (fn(e->key, e->val, arg)) {
                *pp = e->next;
                t->n--;
                s_release(t, e->val);
                free(e);
            } else {
                pp = &e->next;
            }
        }
    }
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

static int s_t_freed; /* values released by s_t_free */

static void s_t_free(void *val)
{
    s_t_freed++;
    free(val);
}

static bool s_t_odd(const char *key, void *val, void *arg)
{
    (*(int *)arg)++;
    return *(int *)val % 2 == 1;
}

int keytab_test(bool verbose)
{
    int failed = 0;
    keytab_t *t = keytab_new(s_t_free);
    CHECK(t && keytab_size(t) == 0 && keytab_get(t, "a") == NULL);
    CHECK(keytab_put(t, NULL, NULL) == ERR_INVAL);
    /* enough keys to grow the buckets several times */
    char k[32];
    for (int i = 0; i < 1000; i++) {
        int *v = malloc(sizeof(*v));
        CHECK(v != NULL);
        if (v)
            *v = i;
        snprintf(k, sizeof(k), "c/ns/rc-%d", i);
        CHECK(keytab_put(t, k, v) == 0);
    }
    CHECK(keytab_size(t) == 1000);
    int *v = keytab_get(t, "c/ns/rc-777");
    CHECK(v && *v == 777);
    CHECK(keytab_get(t, "c/ns/rc-1000") == NULL);
    /* replacing releases the old value; deleting releases the value */
    s_t_freed = 0;
    int *w = malloc(sizeof(*w));
    if (w)
        *w = 7;
    CHECK(keytab_put(t, "c/ns/rc-777", w) == 0 && s_t_freed == 1 && keytab_size(t) == 1000);
    v = keytab_get(t, "c/ns/rc-777");
    CHECK(v && *v == 7);
    keytab_del(t, "c/ns/rc-777");
    keytab_del(t, "nope");
    CHECK(s_t_freed == 2 && keytab_size(t) == 999 && !keytab_get(t, "c/ns/rc-777"));
    /* a sweep visits every entry and deletes those the visitor says */
    int visited = 0;
    keytab_sweep(t, s_t_odd, &visited);
    CHECK(visited == 999 && keytab_size(t) == 500);
    v = keytab_get(t, "c/ns/rc-2");
    CHECK(v && *v == 2 && keytab_get(t, "c/ns/rc-3") == NULL);
    keytab_destroy(&t);
    CHECK(t == NULL && s_t_freed == 2 + 499 + 500);
    keytab_destroy(NULL);
    CHECK(keytab_get(NULL, "a") == NULL && keytab_size(NULL) == 0);
    return SELFTEST_RESULT("keytab", verbose);
}

#endif /* RF_SELFTEST */
