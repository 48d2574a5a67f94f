/*
 * expect: creation and deletion expectations by name (KubeRay's scale_expectations.go), so a
 * controller never creates or deletes a child twice while the watch event of its own earlier
 * write is still in flight. The one expectation mechanism of the controller runtime (ctrl.h).
 *
 * Every child a pass creates or deletes is remembered per (key, group) with its name and the
 * time. expect_satisfied() asks, for one group (or every group of the key), whether each created
 * name is now observed (or EXPECT_CREATE_MS passed) and each deleted name is no longer observed
 * (or EXPECT_DELETE_MS passed); entries that are met are dropped, so a satisfied key holds
 * nothing. What is observed is the caller's: a predicate over names (the children the pass read
 * from observed.db). A write that failed or was never sent is taken back with expect_drop().
 *
 * Pure data structure: the caller passes the time (monotonic ms). Names are bounded by
 * EXPECT_NAME_MAX.
 */
#ifndef RF_EXPECT_H
#define RF_EXPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPECT_CREATE_MS (30 * 1000) /* a create counts as seen after this */
#define EXPECT_DELETE_MS (5 * 60 * 1000) /* a delete counts as seen after this */
#define EXPECT_NAME_MAX 512 /* longest key, group or name, NUL included */

typedef struct expect expect_t;

/* True when `name` is observed now. */
typedef bool(expect_seen_fn)(const char *name, void *arg);

/* An empty set whose creations count as seen `create_ms` and deletions `delete_ms` after they
 * were recorded (<= 0: EXPECT_CREATE_MS, EXPECT_DELETE_MS). NULL when out of memory. */
expect_t *expect_new(int64_t create_ms, int64_t delete_ms);

/* Frees everything and NULLs *e_p. NULL-safe. */
void expect_destroy(expect_t **e_p);

/* Records that `name` was created (create true) or deleted in (key, group) at `now_ms`,
 * replacing an earlier record of the same name. Returns 0, ERR_INVAL, ERR_TOOBIG or ERR_NOMEM. */
int expect_record(expect_t *e, const char *key, const char *group, const char *name, bool create,
                  int64_t now_ms);

/* Takes back the record of `name` in (key, group): its write failed or was never sent, so it
 * will never be observed. Unknown records are ignored. */
void expect_drop(expect_t *e, const char *key, const char *group, const char *name);

/* True when every record of (key, group) (group NULL: of every group of the key) is met at
 * `now_ms`: a created name `seen`, a deleted name not, or the record older than its timeout.
 * Drops the records that are met. A NULL set or an unknown key is satisfied. */
bool expect_satisfied(expect_t *e, const char *key, const char *group, expect_seen_fn *seen,
                      void *arg, int64_t now_ms);

/* Records pending for (key, group) (group NULL: every group). */
size_t expect_pending(const expect_t *e, const char *key, const char *group);

/* Drops every record of `key` (the object is gone). NULL-safe. */
void expect_forget_key(expect_t *e, const char *key);

/* Keys holding records. */
size_t expect_count(const expect_t *e);

/* Self-test. */
int expect_test(bool verbose);

#endif
