/*
 * expect: creation and deletion expectations (see expect.h).
 *
 * The records live in a jansson tree, which is a hash table of hash tables:
 *   { key: { group: {"add": n, "del": n, "ts": ms, "seen": {id: true, ...}} } }
 * so lookups are O(1) and freeing is one json_decref().
 */
#include "expect.h"
#include "err.h"
#include "log.h"
#include "selftest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct expect {
    json_t *keys; /* key -> group -> record */
    int64_t timeout_ms; /* age after which a record counts as satisfied */
    size_t records; /* number of (key, group) records */
};

expect_t *expect_new(int64_t timeout_ms)
{
    expect_t *e = calloc(1, sizeof(*e));
    if (!e) {
        return NULL;
    }
    e->keys = json_object();
    if (!e->keys) {
        free(e);
        return NULL;
    }
    e->timeout_ms = timeout_ms > 0 ? timeout_ms : EXPECT_DEFAULT_TIMEOUT_MS;
    return e;
}

void expect_destroy(expect_t **ep)
{
    if (!ep || !*ep) {
        return;
    }
    json_decref((*ep)->keys);
    free(*ep);
    *ep = NULL;
}

static json_int_t s_int(const json_t *rec, const char *field)
{
    return json_integer_value(json_object_get(rec, field));
}

static bool s_rec_satisfied(const expect_t *e, const json_t *rec, int64_t now_ms)
{
    if (s_int(rec, "add") <= 0 && s_int(rec, "del") <= 0) {
        return true;
    }
    return now_ms - s_int(rec, "ts") > e->timeout_ms;
}

static json_t *s_get(const expect_t *e, const char *key, const char *group)
{
    if (!e || !key || !group) {
        return NULL;
    }
    return json_object_get(json_object_get(e->keys, key), group);
}

/* Adds n to the "add" or "del" count of (key, group), creating or restarting
 * the record. */
static int s_expect(expect_t *e, const char *key, const char *group, const char *field, int n,
                    int64_t now_ms)
{
    if (!e || !key || !group || n < 0) {
        return ERR_INVAL;
    }
    json_t *groups = json_object_get(e->keys, key);
    if (!groups) {
        groups = json_object();
        if (!groups || json_object_set_new(e->keys, key, groups) < 0) {
            return ERR_NOMEM;
        }
    }
    json_t *rec = json_object_get(groups, group);
    if (!rec) {
        if (e->records >= EXPECT_MAX_RECORDS) {
            log_warn("expectation records full", "key", key, "group", group, NULL);
            if (json_object_size(groups) == 0) {
                json_object_del(e->keys, key);
            }
            return ERR_TOOBIG;
        }
        rec = json_pack("{s:I, s:I, s:I, s:{}}", "add", (json_int_t)0, "del", (json_int_t)0, "ts",
                        (json_int_t)now_ms, "seen");
        if (!rec || json_object_set_new(groups, group, rec) < 0) {
            return ERR_NOMEM;
        }
        e->records++;
    } else if (s_rec_satisfied(e, rec, now_ms)) {
        /* A fresh window: forget counts (an expired one is abandoned) and seen ids.
         */
        if (json_object_set_new(rec, "add", json_integer(0)) < 0 ||
            json_object_set_new(rec, "del", json_integer(0)) < 0 ||
            json_object_set_new(rec, "seen", json_object()) < 0) {
            return ERR_NOMEM;
        }
    }
    if (json_object_set_new(rec, field, json_integer(s_int(rec, field) + n)) < 0 ||
        json_object_set_new(rec, "ts", json_integer(now_ms)) < 0) {
        return ERR_NOMEM;
    }
    return 0;
}

int expect_creations(expect_t *e, const char *key, const char *group, int n, int64_t now_ms)
{
    return s_expect(e, key, group, "add", n, now_ms);
}

int expect_deletions(expect_t *e, const char *key, const char *group, int n, int64_t now_ms)
{
    return s_expect(e, key, group, "del", n, now_ms);
}

static int s_observed(expect_t *e, const char *key, const char *group, const char *field,
                      const char *id)
{
    if (!e || !key || !group) {
        return ERR_INVAL;
    }
    json_t *rec = s_get(e, key, group);
    if (!rec || s_int(rec, field) <= 0) {
        return 0;
    }
    if (id) {
        /* Creations and deletions of one id are different events: prefix the field.
         */
        char seen_key[512];
        int len = snprintf(seen_key, sizeof(seen_key), "%s:%s", field, id);
        if (len < 0 || (size_t)len >= sizeof(seen_key)) {
            return ERR_TOOBIG;
        }
        json_t *seen = json_object_get(rec, "seen");
        if (json_object_get(seen, seen_key)) {
            return 0;
        }
        if (json_object_size(seen) >= EXPECT_MAX_SEEN) {
            return ERR_TOOBIG;
        }
        if (json_object_set_new(seen, seen_key, json_true()) < 0) {
            return ERR_NOMEM;
        }
    }
    if (json_object_set_new(rec, field, json_integer(s_int(rec, field) - 1)) < 0) {
        return ERR_NOMEM;
    }
    return 0;
}

int expect_observed_creation(expect_t *e, const char *key, const char *group, const char *id)
{
    return s_observed(e, key, group, "add", id);
}

int expect_observed_deletion(expect_t *e, const char *key, const char *group, const char *id)
{
    return s_observed(e, key, group, "del", id);
}

static int s_lower(expect_t *e, const char *key, const char *group, const char *field, int n)
{
    if (!e || !key || !group || n < 0) {
        return ERR_INVAL;
    }
    json_t *rec = s_get(e, key, group);
    if (!rec) {
        return 0;
    }
    json_int_t v = s_int(rec, field) - n;
    if (json_object_set_new(rec, field, json_integer(v < 0 ? 0 : v)) < 0) {
        return ERR_NOMEM;
    }
    return 0;
}

int expect_lower_creations(expect_t *e, const char *key, const char *group, int n)
{
    return s_lower(e, key, group, "add", n);
}

int expect_lower_deletions(expect_t *e, const char *key, const char *group, int n)
{
    return s_lower(e, key, group, "del", n);
}

bool expect_satisfied(const expect_t *e, const char *key, const char *group, int64_t now_ms)
{
    if (!e || !key) {
        return true;
    }
    if (group) {
        const json_t *rec = s_get(e, key, group);
        return !rec || s_rec_satisfied(e, rec, now_ms);
    }
    const char *g;
    json_t *rec;
    json_object_foreach(json_object_get(e->keys, key), g, rec)
    {
        if (!s_rec_satisfied(e, rec, now_ms)) {
            return false;
        }
    }
    return true;
}

void expect_pending(const expect_t *e, const char *key, const char *group, int *creations,
                    int *deletions)
{
    const json_t *rec = s_get(e, key, group);
    if (creations) {
        *creations = rec ? (int)s_int(rec, "add") : 0;
    }
    if (deletions) {
        *deletions = rec ? (int)s_int(rec, "del") : 0;
    }
}

void expect_forget_key(expect_t *e, const char *key)
{
    if (!e || !key) {
        return;
    }
    json_t *groups = json_object_get(e->keys, key);
    if (groups) {
        e->records -= json_object_size(groups);
        json_object_del(e->keys, key);
    }
}

size_t expect_gc(expect_t *e, int64_t now_ms)
{
    if (!e) {
        return 0;
    }
    size_t dropped = 0;
    const char *key;
    json_t *groups;
    void *tmp;
    json_object_foreach_safe(e->keys, tmp, key, groups)
    {
        const char *g;
        json_t *rec;
        void *tmp2;
        json_object_foreach_safe(groups, tmp2, g, rec)
        {
            if (s_rec_satisfied(e, rec, now_ms)) {
                json_object_del(groups, g);
                dropped++;
            }
        }
        if (json_object_size(groups) == 0) {
            json_object_del(e->keys, key);
        }
    }
    e->records -= dropped;
    return dropped;
}

size_t expect_count(const expect_t *e)
{
    return e ? e->records : 0;
}

int expect_test(bool verbose)
{
    int failed = 0;
    expect_t *e = expect_new(0);
    CHECK(e != NULL);
    if (!e) {
        return SELFTEST_RESULT("expect", verbose);
    }
    const char *k = "c1/default/rc";
    int64_t t = 1000;

    /* Nothing recorded: satisfied. */
    CHECK(expect_satisfied(e, k, "workers", t));
    CHECK(expect_satisfied(e, k, NULL, t));
    CHECK(expect_satisfied(NULL, k, "workers", t));

    /* Bad arguments. */
    CHECK(expect_creations(e, NULL, "g", 1, t) == ERR_INVAL);
    CHECK(expect_creations(e, k, NULL, 1, t) == ERR_INVAL);
    CHECK(expect_creations(e, k, "g", -1, t) == ERR_INVAL);
    CHECK(expect_observed_creation(NULL, k, "g", "p") == ERR_INVAL);
    CHECK(expect_lower_creations(e, k, "g", -2) == ERR_INVAL);

    /* Three creations: satisfied after three distinct observations, duplicates
     * ignored. */
    CHECK(expect_creations(e, k, "workers", 3, t) == 0);
    CHECK(expect_count(e) == 1);
    CHECK(!expect_satisfied(e, k, "workers", t));
    CHECK(!expect_satisfied(e, k, NULL, t));
    CHECK(expect_satisfied(e, k, "head", t));
    CHECK(expect_observed_creation(e, k, "workers", "w-1") == 0);
    CHECK(expect_observed_creation(e, k, "workers", "w-1") == 0);
    int c = -1, d = -1;
    expect_pending(e, k, "workers", &c, &d);
    CHECK(c == 2 && d == 0);
    CHECK(expect_observed_creation(e, k, "workers", "w-2") == 0);
    CHECK(!expect_satisfied(e, k, "workers", t + 10));
    CHECK(expect_observed_creation(e, k, "workers", NULL) == 0);
    CHECK(expect_satisfied(e, k, "workers", t + 10));
    /* Observations beyond the expectation do not go negative. */
    CHECK(expect_observed_creation(e, k, "workers", "w-4") == 0);
    expect_pending(e, k, "workers", &c, NULL);
    CHECK(c == 0);
    /* Observation for an unknown record is ignored. */
    CHECK(expect_observed_creation(e, "other", "g", "x") == 0);
    CHECK(expect_count(e) == 1);

    /* Deletions, with one failed delete lowered. */
    CHECK(expect_deletions(e, k, "workers", 2, t + 20) == 0);
    CHECK(!expect_satisfied(e, k, "workers", t + 20));
    CHECK(expect_observed_deletion(e, k, "workers", "w-1") == 0);
    CHECK(expect_observed_deletion(e, k, "workers", "w-1") == 0);
    CHECK(!expect_satisfied(e, k, "workers", t + 20));
    CHECK(expect_lower_deletions(e, k, "workers", 5) == 0);
    expect_pending(e, k, "workers", NULL, &d);
    CHECK(d == 0);
    CHECK(expect_satisfied(e, k, "workers", t + 20));
    CHECK(expect_lower_creations(e, "nokey", "g", 1) == 0);

    /* A fresh window forgets the seen ids: w-1 counts again. */
    CHECK(expect_creations(e, k, "workers", 1, t + 30) == 0);
    CHECK(expect_observed_creation(e, k, "workers", "w-1") == 0);
    CHECK(expect_satisfied(e, k, "workers", t + 30));

    /* Pending expectations add up while unsatisfied. */
    CHECK(expect_creations(e, k, "head", 1, t + 40) == 0);
    CHECK(expect_creations(e, k, "head", 1, t + 41) == 0);
    expect_pending(e, k, "head", &c, NULL);
    CHECK(c == 2);
    CHECK(expect_lower_creations(e, k, "head", 1) == 0);
    CHECK(!expect_satisfied(e, k, NULL, t + 41));

    /* Timeout: an unmet expectation counts as satisfied after the timeout from
     * its last set. */
    CHECK(!expect_satisfied(e, k, "head", t + 41 + EXPECT_DEFAULT_TIMEOUT_MS));
    CHECK(expect_satisfied(e, k, "head", t + 42 + EXPECT_DEFAULT_TIMEOUT_MS));
    CHECK(expect_satisfied(e, k, NULL, t + 42 + EXPECT_DEFAULT_TIMEOUT_MS));
    /* A new expectation after expiry starts from zero. */
    CHECK(expect_creations(e, k, "head", 1, t + 50 + EXPECT_DEFAULT_TIMEOUT_MS) == 0);
    expect_pending(e, k, "head", &c, NULL);
    CHECK(c == 1);

    /* gc and forget. */
    CHECK(expect_count(e) == 2);
    CHECK(expect_gc(e, t + 60 + EXPECT_DEFAULT_TIMEOUT_MS) == 1); /* workers satisfied */
    CHECK(expect_count(e) == 1);
    CHECK(expect_creations(e, "k2", "g", 1, t) == 0);
    CHECK(expect_count(e) == 2);
    expect_forget_key(e, k);
    CHECK(expect_count(e) == 1);
    CHECK(expect_satisfied(e, k, NULL, t));
    expect_forget_key(e, "absent");
    expect_forget_key(NULL, k);
    CHECK(expect_gc(e, t + 2 * EXPECT_DEFAULT_TIMEOUT_MS) == 1);
    CHECK(expect_count(e) == 0);

    /* A short custom timeout. */
    expect_t *s = expect_new(50);
    CHECK(s != NULL);
    CHECK(expect_creations(s, k, "g", 1, 0) == 0);
    CHECK(!expect_satisfied(s, k, "g", 50));
    CHECK(expect_satisfied(s, k, "g", 51));
    expect_destroy(&s);
    CHECK(s == NULL);

    /* An over-long id is refused. */
    char longid[600];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    CHECK(expect_creations(e, k, "g", 1, t) == 0);
    CHECK(expect_observed_creation(e, k, "g", longid) == ERR_TOOBIG);

    expect_destroy(&e);
    CHECK(e == NULL);
    expect_destroy(&e);
    expect_destroy(NULL);
    return SELFTEST_RESULT("expect", verbose);
}
