/*
 * conds: metav1.Condition lists (see conds.h).
 */
#include "conds.h"

#include "err.h"
#include "json.h"

#include <string.h>

json_t *conds_find(const json_t *conds, const char *type, size_t *idx)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0) {
            if (idx)
                *idx = i;
            return c;
        }
    }
    return NULL;
}

bool conds_true(const json_t *conds, const char *type)
{
    return strcmp(jx_str(conds_find(conds, type, NULL), "status", ""), "True") == 0;
}

int conds_set(json_t *conds, const char *type, const char *status, const char *reason,
              const char *msg, const char *now, int64_t generation)
{
    json_t *c = conds_find(conds, type, NULL);
    int rc = 0;
    if (!c) {
        c = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", type, "status", status, "reason", reason,
                      "message", msg ? msg : "", "lastTransitionTime", now);
        if (!c || json_array_append_new(conds, c) != 0)
            return ERR_NOMEM;
    } else {
        if (strcmp(jx_str(c, "status", ""), status) != 0) {
            rc |= json_object_set_new(c, "status", json_string(status));
            rc |= json_object_set_new(c, "lastTransitionTime", json_string(now));
        }
        rc |= json_object_set_new(c, "reason", json_string(reason));
        rc |= json_object_set_new(c, "message", json_string(msg ? msg : ""));
    }
    if (generation >= 0)
        rc |= json_object_set_new(c, "observedGeneration", json_integer(generation));
    return rc ? ERR_NOMEM : 0;
}

void conds_remove(json_t *conds, const char *type)
{
    size_t i;
    if (conds_find(conds, type, &i))
        json_array_remove(conds, i);
}

#ifdef RF_SELFTEST
#include "selftest.h"

int conds_test(bool verbose)
{
    int failed = 0;
    json_t *c = json_array();
    CHECK(conds_set(c, "Ready", "False", "Initializing", NULL, "T1", -1) == 0);
    CHECK(json_array_size(c) == 1);
    CHECK(!conds_true(c, "Ready"));
    CHECK(strcmp(jx_str(conds_find(c, "Ready", NULL), "message", "x"), "") == 0);
    /* same status: the transition time stays, reason and message follow */
    CHECK(conds_set(c, "Ready", "False", "Other", "m", "T2", 3) == 0);
    CHECK(strcmp(jx_str(conds_find(c, "Ready", NULL), "lastTransitionTime", ""), "T1") == 0);
    CHECK(strcmp(jx_str(conds_find(c, "Ready", NULL), "reason", ""), "Other") == 0);
    CHECK(jx_int(conds_find(c, "Ready", NULL), "observedGeneration", 0) == 3);
    /* a new status moves it */
    CHECK(conds_set(c, "Ready", "True", "Ok", "m", "T3", -1) == 0);
    CHECK(conds_true(c, "Ready"));
    CHECK(strcmp(jx_str(conds_find(c, "Ready", NULL), "lastTransitionTime", ""), "T3") == 0);
    size_t idx = 9;
    CHECK(conds_set(c, "Up", "Unknown", "R", NULL, "T4", -1) == 0);
    CHECK(conds_find(c, "Up", &idx) && idx == 1);
    conds_remove(c, "Ready");
    CHECK(json_array_size(c) == 1 && !conds_find(c, "Ready", NULL));
    conds_remove(c, "Absent");
    json_decref(c);
    return SELFTEST_RESULT("conds", verbose);
}
#endif /* RF_SELFTEST */
