/*
 * expect: creation and deletion expectations, so a reconciler never creates (or
 * deletes) an object twice while the watch event of its own earlier write is
 * still in flight.
 *
 * The model is client-go's ControllerExpectations (kubernetes/pkg/controller)
 * with KubeRay's per-group granularity: for a reconcile key
 * ("cluster/namespace/name") and a group (a worker group name, "head", ...) the
 * reconciler records how many creations and deletions it has just issued; the
 * watch handlers report each observed add or delete; expect_satisfied() is true
 * once every expected event was seen (counts at or below zero), when nothing is
 * recorded, or when the record is older than the timeout (5 min like
 * client-go's ExpectationsTimeout: a lost event must not wedge the key
 * forever). While unsatisfied, the reconciler skips scaling for that group and
 * waits for the next event (or requeue).
 *
 * Observations are deduplicated by object name or uid within one expectation
 * window (a relist or a replayed watch event does not count twice). A failed
 * create or delete should be reported with
 * expect_lower_creations()/expect_lower_deletions() (client-go's
 * CreationObserved on error).
 *
 * Pure data structure: the caller passes the time (monotonic ms). Bounded: at
 * most EXPECT_MAX_RECORDS records and EXPECT_MAX_SEEN names per record
 * (ERR_TOOBIG beyond).
 */
#ifndef RF_EXPECT_H
#define RF_EXPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* client-go's ExpectationsTimeout: after this an unmet expectation counts as
 * satisfied. */
#define EXPECT_DEFAULT_TIMEOUT_MS (5 * 60 * 1000)
/* The most (key, group) records held at once. */
#define EXPECT_MAX_RECORDS 1000000
/* The most distinct observed names remembered per record (for deduplication).
 */
#define EXPECT_MAX_SEEN 100000

typedef struct expect expect_t;

/* A new, empty set of expectations whose records expire `timeout_ms` after they
 * were last set
 * (<= 0 takes EXPECT_DEFAULT_TIMEOUT_MS). NULL when out of memory. */
expect_t *expect_new(int64_t timeout_ms);

/* Frees everything and sets *ep to NULL. NULL-safe. */
void expect_destroy(expect_t **ep);

/* Records that `n` (>= 0) more creations were issued for (key, group) at time
 * `now_ms`. Adds to any creations still pending; a satisfied or expired record
 * starts afresh (its seen names are forgotten). Returns 0, ERR_INVAL (NULL
 * key/group, n < 0), ERR_TOOBIG or ERR_NOMEM. */
int expect_creations(expect_t *e, const char *key, const char *group, int n, int64_t now_ms);

/* The same for deletions. */
int expect_deletions(expect_t *e, const char *key, const char *group, int n, int64_t now_ms);

/* Reports that the watch showed object `id` (name or uid; NULL counts without
 * deduplication) created in (key, group). Decrements the pending creations once
 * per distinct id; an unknown record or a count already at zero is ignored.
 * Returns 0, ERR_INVAL, ERR_TOOBIG or ERR_NOMEM. */
int expect_observed_creation(expect_t *e, const char *key, const char *group, const char *id);

/* The same for a deletion. */
int expect_observed_deletion(expect_t *e, const char *key, const char *group, const char *id);

/* Takes back `n` expected creations (the writes failed, so no event will come).
 * Returns 0 or ERR_INVAL; an unknown record is ignored. */
int expect_lower_creations(expect_t *e, const char *key, const char *group, int n);

/* Takes back `n` expected deletions. As expect_lower_creations(). */
int expect_lower_deletions(expect_t *e, const char *key, const char *group, int n);

/* True when (key, group) has no pending creations or deletions, no record, or a
 * record set more than the timeout before `now_ms`. A NULL group asks for every
 * group of the key. */
bool expect_satisfied(const expect_t *e, const char *key, const char *group, int64_t now_ms);

/* The pending counts of (key, group) (0 when unknown); either pointer may be
 * NULL. */
void expect_pending(const expect_t *e, const char *key, const char *group, int *creations,
                    int *deletions);

/* Drops every record of `key` (the object is gone). */
void expect_forget_key(expect_t *e, const char *key);

/* Drops records that are satisfied or expired at `now_ms`. Returns how many
 * were dropped. */
size_t expect_gc(expect_t *e, int64_t now_ms);

/* Number of records held. */
size_t expect_count(const expect_t *e);

/* Self-test. */
int expect_test(bool verbose);

#endif
