/*
 * expect: creation and deletion expectations by name (see expect.h).
 */
#include "expect.h"

#include "err.h"
#include "keytab.h"

#include <stdlib.h>
#include <string.h>

#define S_MIN_CAP 4 /* first capacity of a key's record array */

/* One recorded write. */
typedef struct {
    int64_t t; /* when it was recorded, monotonic ms */
    bool create; /* a create (else a delete) */
    char *group; /* "group\0name" in one allocation */
    const char *name; /* points into group's allocation */
} rec_t;

/* The records of one key. */
typedef struct {
    rec_t *v; /* records */
    size_t n, cap; /* used and allocated */
} recs_t;

struct expect {
    keytab_t *keys; /* key -> recs_t */
    int64_t create_ms; /* creation timeout */
    int64_t delete_ms; /* deletion timeout */
};

static void s_recs_free(void *val)
{
    recs_t *rs = val;
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].group);
    free(rs->v);
    free(rs);
}

expect_t *expect_new(int64_t create_ms, int64_t delete_ms)
{
    expect_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->keys = keytab_new(s_recs_free);
    if (!e->keys) {
        free(e);
        return NULL;
    }
    e->create_ms = create_ms > 0 ? create_ms : EXPECT_CREATE_MS;
    e->delete_ms = delete_ms > 0 ? delete_ms : EXPECT_DELETE_MS;
    return e;
}

void expect_destroy(expect_t **e_p)
{
    if (!e_p || !*e_p)
        return;
    keytab_destroy(&(*e_p)->keys);
    free(*e_p);
    *e_p = NULL;
}

static rec_t *s_find(recs_t *rs, const char *group, const char *name)
{
    for (size_t i = 0; rs && i < rs->n; i++) {
        if (!strcmp(rs->v[i].group, group) && !strcmp(rs->v[i].name, name))
            return &rs->v[i];
    }
    return NULL;
}

int expect_record(expect_t *e, const char *key, const char *group, const char *name, bool create,
                  int64_t now_ms)
{
    if (!e || !key || !group || !name)
        return ERR_INVAL;
    size_t gl = strlen(group), nl = strlen(name);
    if (strlen(key) >= EXPECT_NAME_MAX || gl >= EXPECT_NAME_MAX || nl >= EXPECT_NAME_MAX)
        return ERR_TOOBIG;
    recs_t *rs = keytab_get(e->keys, key);
    rec_t *r = s_find(rs, group, name);
    if (r) {
        r->t = now_ms;
        r->create = create;
        return 0;
    }
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        if (!rs || keytab_put(e->keys, key, rs) != 0)
            return ERR_NOMEM;
    }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : S_MIN_CAP;
        rec_t *v = realloc(rs->v, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        rs->v = v;
        rs->cap = cap;
    }
    char *gn = malloc(gl + nl + 2);
    if (!gn)
        return ERR_NOMEM;
    memcpy(gn, group, gl + 1);
    memcpy(gn + gl + 1, name, nl + 1);
    rs->v[rs->n++] = (rec_t){.t = now_ms, .create = create, .group = gn, .name = gn + gl + 1};
    return 0;
}

/* Removes record i of the key `key` (swap with the last); drops the key when it is empty. */
static void s_remove(expect_t *e, const char *key, recs_t *rs, size_t i)
{
    free(rs->v[i].group);
    rs->v[i] = rs->v[--rs->n];
    if (rs->n == 0)
        keytab_del(e->keys, key);
}

void expect_drop(expect_t *e, const char *key, const char *group, const char *name)
{
    if (!e || !key || !group || !name)
        return;
    recs_t *rs = keytab_get(e->keys, key);
    rec_t *r = s_find(rs, group, name);
    if (r)
        s_remove(e, key, rs, (size_t)(r - rs->v));
}

bool expect_satisfied(expect_t *e, const char *key, const char *group, expect_seen_fn *seen,
                      void *arg, int64_t now_ms)
{
    recs_t *rs = e && key ? keytab_get(e->keys, key) : NULL;
    if (!rs)
        return true;
    bool ok = true;
    size_t i = 0;
    while (i < rs->n) {
        rec_t *r = &rs->v[i];
        if (group && strcmp(r->group, group) != 0) {
            i++;
            continue;
        }
        int64_t age = now_ms - r->t;
        bool is_seen = seen && seen(r->name, arg);
        bool met = r->create ? (is_seen || age > e->create_ms) : (!is_seen || age > e->delete_ms);
        if (!met) {
            ok = false;
            i++;
            continue;
        }
        bool last = rs->n == 1;
        s_remove(e, key, rs, i); /* record i is now the former last one */
        if (last)
            break;
    }
    return ok;
}

size_t expect_pending(const expect_t *e, const char *key, const char *group)
{
    recs_t *rs = e && key ? keytab_get(e->keys, key) : NULL;
    size_t n = 0;
    for (size_t i = 0; rs && i < rs->n; i++) {
        if (!group || !strcmp(rs->v[i].group, group))
            n++;
    }
    return n;
}

void expect_forget_key(expect_t *e, const char *key)
{
    if (e)
        keytab_del(e->keys, key);
}

size_t expect_count(const expect_t *e)
{
    return e ? keytab_size(e->keys) : 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

/* The observed names of the test: a NULL-terminated list. */
static bool s_t_seen(const char *name, void *arg)
{
    for (const char *const *n = arg; *n; n++) {
        if (!strcmp(*n, name))
            return true;
    }
    return false;
}

int expect_test(bool verbose)
{
    int failed = 0;
    expect_t *e = expect_new(0, 0);
    CHECK(e != NULL);
    if (!e)
        return SELFTEST_RESULT("expect", verbose);
    const char *k = "c1/default/rc";
    int64_t t = 1000;
    const char *none[] = {NULL};
    const char *w1[] = {"w-1", NULL};
    const char *w12[] = {"w-1", "w-2", NULL};

    /* Nothing recorded: satisfied. */
    CHECK(expect_satisfied(e, k, "workers", s_t_seen, none, t));
    CHECK(expect_satisfied(e, k, NULL, s_t_seen, none, t));
    CHECK(expect_satisfied(NULL, k, "workers", s_t_seen, none, t));

    /* Bad arguments. */
    CHECK(expect_record(e, NULL, "g", "p", true, t) == ERR_INVAL);
    CHECK(expect_record(e, k, NULL, "p", true, t) == ERR_INVAL);
    CHECK(expect_record(e, k, "g", NULL, true, t) == ERR_INVAL);
    CHECK(expect_record(NULL, k, "g", "p", true, t) == ERR_INVAL);
    char longid[600];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    CHECK(expect_record(e, k, "g", longid, true, t) == ERR_TOOBIG);
    CHECK(expect_count(e) == 0);

    /* Two creations: satisfied once both names are observed; other groups are not held up. */
    CHECK(expect_record(e, k, "workers", "w-1", true, t) == 0);
    CHECK(expect_record(e, k, "workers", "w-2", true, t) == 0);
    CHECK(expect_count(e) == 1 && expect_pending(e, k, "workers") == 2);
    CHECK(!expect_satisfied(e, k, "workers", s_t_seen, none, t));
    CHECK(!expect_satisfied(e, k, NULL, s_t_seen, none, t));
    CHECK(expect_satisfied(e, k, "head", s_t_seen, none, t));
    CHECK(!expect_satisfied(e, k, "workers", s_t_seen, w1, t + 10));
    CHECK(expect_pending(e, k, "workers") == 1); /* w-1 is met and dropped */
    CHECK(expect_satisfied(e, k, "workers", s_t_seen, w12, t + 10));
    CHECK(expect_pending(e, k, NULL) == 0 && expect_count(e) == 0);

    /* Deletions: met once the name is gone; a failed delete is taken back. */
    CHECK(expect_record(e, k, "workers", "w-1", false, t + 20) == 0);
    CHECK(expect_record(e, k, "workers", "w-2", false, t + 20) == 0);
    CHECK(!expect_satisfied(e, k, "workers", s_t_seen, w12, t + 20));
    CHECK(!expect_satisfied(e, k, "workers", s_t_seen, w1, t + 20)); /* w-2 gone, w-1 not */
    expect_drop(e, k, "workers", "w-1");
    expect_drop(e, k, "workers", "absent");
    expect_drop(e, "nokey", "g", "x");
    CHECK(expect_satisfied(e, k, "workers", s_t_seen, w1, t + 20));

    /* A record of the same name replaces the earlier one (a delete after its create). */
    CHECK(expect_record(e, k, "head", "h", true, t + 30) == 0);
    CHECK(expect_record(e, k, "head", "h", false, t + 31) == 0);
    CHECK(expect_pending(e, k, "head") == 1);
    CHECK(expect_satisfied(e, k, "head", s_t_seen, none, t + 31));

    /* Timeouts: an unmet create counts as met after the creation timeout, a delete after the
     * deletion timeout, each from its own record. */
    CHECK(expect_record(e, k, "head", "h", true, t + 40) == 0);
    CHECK(expect_record(e, k, "workers", "w-9", false, t + 40) == 0);
    CHECK(!expect_satisfied(e, k, "head", s_t_seen, none, t + 40 + EXPECT_CREATE_MS));
    CHECK(expect_satisfied(e, k, "head", s_t_seen, none, t + 41 + EXPECT_CREATE_MS));
    const char *w9[] = {"w-9", NULL};
    CHECK(!expect_satisfied(e, k, NULL, s_t_seen, w9, t + 40 + EXPECT_DELETE_MS));
    CHECK(expect_satisfied(e, k, NULL, s_t_seen, w9, t + 41 + EXPECT_DELETE_MS));

    /* forget */
    CHECK(expect_record(e, k, "g", "a", true, t) == 0);
    CHECK(expect_record(e, "k2", "g", "b", true, t) == 0);
    CHECK(expect_count(e) == 2);
    expect_forget_key(e, k);
    CHECK(expect_count(e) == 1);
    CHECK(expect_satisfied(e, k, NULL, s_t_seen, none, t));
    expect_forget_key(e, "absent");
    expect_forget_key(NULL, k);
    CHECK(!expect_satisfied(e, "k2", "g", s_t_seen, none, t));

    /* Many names in one group (a large scale-up): all met at once. */
    char nm[32];
    for (int i = 0; i < 300; i++) {
        snprintf(nm, sizeof(nm), "p-%d", i);
        CHECK(expect_record(e, "big", "g", nm, true, t) == 0);
    }
    CHECK(expect_pending(e, "big", "g") == 300);
    CHECK(expect_satisfied(e, "big", "g", s_t_seen, none, t + 1 + EXPECT_CREATE_MS));
    CHECK(expect_pending(e, "big", NULL) == 0);

    /* A short custom timeout. */
    expect_t *s = expect_new(50, 70);
    CHECK(s != NULL);
    CHECK(expect_record(s, k, "g", "p", true, 0) == 0);
    CHECK(!expect_satisfied(s, k, "g", s_t_seen, none, 50));
    CHECK(expect_satisfied(s, k, "g", s_t_seen, none, 51));
    CHECK(expect_record(s, k, "g", "p", false, 0) == 0);
    const char *p[] = {"p", NULL};
    CHECK(!expect_satisfied(s, k, "g", s_t_seen, p, 70));
    CHECK(expect_satisfied(s, k, "g", s_t_seen, p, 71));
    expect_destroy(&s);
    CHECK(s == NULL);

    expect_destroy(&e);
    CHECK(e == NULL);
    expect_destroy(&e);
    expect_destroy(NULL);
    return SELFTEST_RESULT("expect", verbose);
}

#endif /* RF_SELFTEST */
