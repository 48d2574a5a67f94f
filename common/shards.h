/*
 * shards: which shards of a component this replica owns, kept with leases (lease.h) so that
 * replicas of a reconciler split the shards between them without talking to each other.
 *
 * Membership. Every renew_ms each replica renews its membership lease "<component>/member/<id>"
 * and lists the others. The live members (holder set, recorded expiry in the future by our wall
 * clock), plus itself, determine the target assignment with shards_assign(): a deterministic
 * function of the member SET, so all replicas that see the same members compute the same owner for
 * every shard. It is balanced (every member gets floor(N/M) or ceil(N/M) shards) and moves few
 * shards when a member joins or leaves (rendezvous scores, assigned greedily under those quotas).
 *
 * Shard leases "<component>/shard/<n>". Each round the replica renews the shards it holds, tries
 * to acquire target shards (which succeeds once their lease is free, released or expired), and
 * gives up shards that left its target: on_release() first (stop work: unsubscribe, drain or
 * cancel in-flight reconciles of that shard's keys), then, after a quiet period of margin_ms
 * (writes already sent land meanwhile), the lease is released so the new owner takes it on its
 * next round. A replica that dies stops renewing: its membership lease and its
 * shard leases expire after lease_ms, the survivors' next list drops it and their next round
 * acquires its shards, so takeover completes within lease_ms + renew_ms (+ request latency), i.e.
 * within two lease durations since renew_ms < lease_ms.
 *
 * Safety: one shard, one active replica at any instant, even across a takeover.
 *   - Local deadline. Before sending an acquire/renew, the replica reads its MONOTONIC clock: t0.
 *     When the backend grants the lease, the replica may act on the shard until
 *     t0 + lease_ms - margin_ms, by that same monotonic clock. A renewal that does not succeed
 *     before then (error, timeout, slow backend) loses the shard: on_release() runs at the
 *     deadline (a timer armed for it), and shards_owns() returns false from the deadline on,
 *     whatever the timers do. A renewal answered ERR_CONFLICT loses it at once.
 *   - Backend expiry. The backend records the expiry as (its wall clock at the write, which is
 *     after t0) + lease_ms, and another replica acquires only once ITS wall clock passes that.
 *   - Clock assumptions. Wall clocks of all replicas agree within a skew S, and no wall clock
 *     jumps backwards by more than S while a lease is held; monotonic clocks run at the rate of
 *     real time (drift over one lease duration is negligible). Then the new owner starts at real
 *     time >= t0 + lease_ms - S, while the old one stopped at t0 + lease_ms - margin_ms.
 *   - The margin. margin_ms must exceed S plus the longest time between a passing shards_owns()
 *     check and the moment its API write is applied (an in-flight write cannot be recalled), plus
 *     the loop's timer lateness. Default: lease_ms / SHARDS_MARGIN_DIV (75 ms for a 300 ms lease;
 *     3.75 s for a 15 s lease). With a single host (SQLite backend) S is 0.
 *   - Fencing. The reconciler calls shards_owns(shard) right before each API write; it reads the
 *     monotonic clock itself, so a late timer cannot extend ownership.
 * Releases are safe by order: the old owner's on_release() has returned (work stopped) and
 * margin_ms have passed (the same bound on in-flight writes as above) before the release request
 * is sent, and the new owner can acquire only after the release is recorded.
 *
 * Cost: one acquire per held shard per renew_ms, plus one membership renewal and one list. With
 * the Kubernetes backend a renewal is one PUT (two requests on a cache miss): size nshards,
 * renew_ms and the client's qps accordingly (e.g. 32 shards every 2 s = 16 requests/s).
 *
 * Callbacks run on the loop thread, from the round timer or a backend callback. They may call
 * shards_owns() and the accessors; they must not destroy the shards_t or the backend.
 */
#ifndef RF_SHARDS_H
#define RF_SHARDS_H

#include "lease.h"
#include "loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHARDS_MAX 65536 /* most shards per component */
#define SHARDS_MEMBERS_MAX 1024 /* most live members considered */
#define SHARDS_MARGIN_DIV 4 /* default safety margin: lease_ms / SHARDS_MARGIN_DIV */
#define SHARDS_NAME_MAX 200 /* longest component or replica id */

typedef struct shards shards_t;

/* Called when this replica starts (on_acquire) or must stop (on_release) working on `shard`. */
typedef void(shards_fn)(shards_t *sh, uint32_t shard, void *arg);

/* The callbacks; any may be NULL. */
typedef struct {
    shards_fn *on_acquire; /* start: subscribe to the shard's topic, resync its keys */
    shards_fn *on_release; /* stop: unsubscribe, drain or cancel the shard's reconciles */
    void *arg; /* passed to both */
} shards_callbacks_t;

/* Counters, for tests and metrics. */
typedef struct {
    uint64_t rounds; /* renewal rounds run */
    uint64_t acquired; /* shards acquired (on_acquire calls) */
    uint64_t released; /* shards given up on purpose (rebalance, stop) */
    uint64_t lost; /* shards lost (conflict on renewal, or local deadline passed) */
    uint64_t conflicts; /* acquires answered ERR_CONFLICT */
    uint64_t errors; /* backend operations that failed otherwise */
    size_t owned; /* shards owned now */
    size_t members; /* live members in the last assignment (self included) */
    size_t target; /* shards in this replica's target */
} shards_stats_t;

/* Computes the target assignment: owner_out[s] (s < nshards) is the index in members[] of the
 * owner of shard s. Deterministic given the SET of member names (their order in members[] does
 * not matter); each member gets floor(nshards/n) or ceil(nshards/n) shards. Returns 0, ERR_INVAL
 * (n == 0, nshards == 0 or > SHARDS_MAX, NULL or duplicate names) or ERR_NOMEM. */
int shards_assign(const char *const *members, size_t n, uint32_t nshards, uint32_t *owner_out);

/* Writes the lease name of shard `shard` ("<component>/shard/<n>") into out[size]. Returns 0 or
 * ERR_TOOBIG. */
int shards_lease_name(const char *component, uint32_t shard, char *out, size_t size);

/* Starts the ownership manager of `replica_id` (unique among the replicas) for `component`,
 * with nshards shards (1..SHARDS_MAX), leases of lease_ms renewed every renew_ms, on `loop`
 * through `backend` (both borrowed; they must outlive it). Strings are copied; cb may be NULL.
 * The first round runs on the next loop iteration. Needs 0 < renew_ms and
 * renew_ms + margin < lease_ms (margin: lease_ms / SHARDS_MARGIN_DIV, see shards_set_margin()).
 * Returns NULL on bad arguments (names empty, longer than SHARDS_NAME_MAX, or containing '/') or
 * out of memory. */
shards_t *shards_new(loop_t *loop, lease_backend_t *backend, const char *component,
                     const char *replica_id, uint32_t nshards, int64_t lease_ms, int64_t renew_ms,
                     const shards_callbacks_t *cb);

/* Sets the safety margin (see the file comment). Needs 0 <= margin_ms and
 * renew_ms + margin_ms < lease_ms. Applies to renewals sent from now on. Returns 0 or ERR_INVAL. */
int shards_set_margin(shards_t *sh, int64_t margin_ms);

/* Clean shutdown: runs on_release() for every owned shard, then releases the membership lease at
 * once and their leases after the quiet period (margin_ms), so other replicas take over without
 * waiting for expiry; no more rounds run. Run the loop until
 * shards_pending() is 0, then destroy. Returns 0, or ERR_STATE when stopped already. */
int shards_stop(shards_t *sh);

/* Backend operations still in flight. */
size_t shards_pending(const shards_t *sh);

/* Destroys at once: cancels the operations in flight, runs NO callbacks and releases nothing (the
 * leases expire; this is also how tests simulate a crash). NULLs *sh_p. NULL-safe. Not from inside
 * one of its callbacks. */
void shards_destroy(shards_t **sh_p);

/* True when this replica owns `shard` now: it holds the lease and its local deadline (read from
 * the monotonic clock at this call) has not passed. The fencing check before every API write. */
bool shards_owns(const shards_t *sh, uint32_t shard);

/* The monotonic ms (loop_clock_ms()) at which ownership of `shard` ends unless renewed, or 0 when
 * it is not owned. */
int64_t shards_owned_until(const shards_t *sh, uint32_t shard);

/* Number of shards owned now (by the same rule as shards_owns()). */
size_t shards_owned_count(const shards_t *sh);

/* True when `shard` is in this replica's target assignment. */
bool shards_in_target(const shards_t *sh, uint32_t shard);

/* Fills *out with the counters. */
void shards_stats(const shards_t *sh, shards_stats_t *out);

/* Self-test: shards_assign (balance, determinism, movement on join and leave, errors) and one
 * replica over the SQLite backend (acquire all, stop, release). The multi-replica tests (SQLite
 * and Kubernetes) are in tests/integration/shards. */
int shards_test(bool verbose);

#endif
