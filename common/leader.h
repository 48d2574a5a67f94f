/*
 * leader: one active writer per cluster. A process holds one named lease (lease.h: a Kubernetes
 * Lease object, or the SQLite backend in tests) under a holder identity before it writes, and
 * reports when it becomes leader and when it loses the lease. Semantics of client-go's
 * leaderelection (leaseDuration 15s, renewDeadline 10s, retryPeriod 2s):
 *
 *   - Standby: every retry_ms it tries lease_acquire(); it succeeds once the lease is free,
 *     released, expired, or already held by this identity. The last holder seen is kept
 *     (leader_holder()) so the log and status can say who leads.
 *   - Leader: it renews every renew_ms (lease_ms / 3 by default) and, after a renewal that did not
 *     succeed, again every retry_ms. It may act until t0 + renew_deadline_ms, where t0 is its
 *     MONOTONIC clock read just before the last successful acquire was sent (the shards.h rule).
 *     Another identity can take the lease only once its wall clock passes renewTime + lease_ms,
 *     and renewTime was written after t0, so lease_ms - renew_deadline_ms (5 s by default) is the
 *     margin for clock skew and for a write already sent when the deadline passes.
 *   - Lost: the deadline passed without a successful renewal, or a renewal found ANOTHER identity
 *     holding an unexpired lease. leader_is_leader() is false from that instant (it reads the
 *     clock itself, so a late timer cannot extend leadership), on_change(false) runs once, and the
 *     module stops trying: LEADER_LOST is final. The owner exits non-zero so its supervisor
 *     restarts it as a fresh standby (what controller-runtime does): a process that led holds
 *     in-memory state (expectations, per-key state) that another leader may have made stale, and
 *     a restart is the one way to drop all of it.
 *
 * Shared identity. Several processes of one cell (a scheduler, a submitter and serve-upgrade
 * sharing a state dir) use the same identity: each one renews the same lease and each acts as
 * leader while the lease names that identity. A conflict between two of them (one renewed between
 * the other's read and write: the lease backend answers ERR_CONFLICT with holder "" or our own
 * identity) is not a loss: the renewal is retried after retry_ms, the local deadline deciding.
 * For the same reason nothing is released on a clean stop: a sibling may still lead under the
 * identity, and a release would let another cell start before the sibling notices.
 *
 * The module also judges whether a KubeRay operator is reconciling (leader_kuberay_judge()): a
 * Lease named LEADER_KUBERAY_LEASE with a holder whose renewTime + leaseDurationSeconds is in the
 * future, in a list answer of any namespace.
 *
 * One thread (the loop's). Callbacks may call the accessors, not leader_destroy().
 */
#ifndef RF_LEADER_H
#define RF_LEADER_H

#include "buf.h"
#include "json.h"
#include "lease.h"
#include "loop.h"

#include <stdbool.h>
#include <stdint.h>

#define LEADER_LEASE_MS 15000 /* client-go's leaseDuration */
#define LEADER_RENEW_DIV 3 /* renewal every lease_ms / LEADER_RENEW_DIV while leading */
#define LEADER_KUBERAY_LEASE "ray-operator-leader" /* KubeRay's leader election id */
#define LEADER_DEFAULT_NAME "rayfleet-leader" /* rayfleet's leader Lease (--leader.id) */
#define LEADER_DEFAULT_NAMESPACE "default" /* its namespace outside a cluster */

typedef struct leader leader_t;

typedef enum {
    LEADER_STANDBY = 0, /* trying to acquire */
    LEADER_LEADING, /* holds the lease (until its local deadline) */
    LEADER_LOST /* led and lost it: final */
} leader_state_t;

/* Called when this process becomes leader (leading true) or loses the lease (false, once). */
typedef void(leader_fn)(leader_t *l, bool leading, void *arg);

typedef struct {
    const char *name; /* lease name ("rayfleet-leader"), copied */
    const char *identity; /* holder identity, copied; shared by the processes of one cell */
    int64_t lease_ms; /* lease duration; 0: LEADER_LEASE_MS */
    int64_t renew_deadline_ms; /* 0: lease_ms * 2 / 3 (client-go: 10 s of 15 s) */
    int64_t retry_ms; /* 0: lease_ms * 2 / 15 (client-go: 2 s of 15 s) */
    leader_fn *on_change; /* may be NULL */
    void *arg; /* passed to on_change */
} leader_config_t;

/* Counters, for tests and metrics. */
typedef struct {
    leader_state_t state; /* now (by the clock: LEADING past its deadline reads LOST) */
    uint64_t transitions; /* became leader or lost it */
    uint64_t attempts; /* acquires sent */
    uint64_t renewals; /* acquires that succeeded while leading */
    uint64_t conflicts; /* acquires answered ERR_CONFLICT */
    uint64_t errors; /* acquires that failed otherwise */
} leader_stats_t;

/* Starts trying to lead on `loop` through `backend` (both borrowed; they must outlive it). The
 * first attempt runs on the next loop turn. Needs 0 < retry_ms, renew_ms (lease_ms / 3) and
 * renew_deadline_ms < lease_ms, and name and identity of 1..LEASE_NAME_MAX bytes. Returns NULL on
 * bad arguments (reported in err when not NULL) or out of memory. */
leader_t *leader_new(loop_t *loop, lease_backend_t *backend, const leader_config_t *cfg,
                     buf_t *err);

/* Destroys at once: cancels the operation in flight, runs no callback, releases nothing (see the
 * file comment). NULLs *l_p. NULL-safe. */
void leader_destroy(leader_t **l_p);

/* True while this process leads: it holds the lease and its local deadline, read from the
 * monotonic clock at this call, has not passed. The fence before every write. */
bool leader_is_leader(const leader_t *l);

/* The holder last seen ("" unknown or free; our identity while we lead). */
const char *leader_holder(const leader_t *l);

/* Fills *out. */
void leader_stats(const leader_t *l, leader_stats_t *out);

/* The default identity "<host>_<8 hex of the SHA-1 of state_dir>" into out[size]: every process
 * of one cell (one host, one state dir) gets the same one. Returns 0, ERR_INVAL or ERR_TOOBIG. */
int leader_default_identity(const char *host, const char *state_dir, char *out, size_t size);

/* Judges a LeaseList (any namespaces) at wall-clock now_ms: returns 1 when a Lease named
 * LEADER_KUBERAY_LEASE is held and unexpired, writing into msg what was found and what to do
 * ("a KubeRay operator is reconciling: Lease ray-system/ray-operator-leader held by X, renewed
 * 3s ago; stop it first (...) or start rayfleet with <take_over_flag>"); 0 when none is
 * active; ERR_INVAL when `list` is not a list. */
int leader_kuberay_judge(const json_t *list, int64_t now_ms, const char *take_over_flag,
                         buf_t *msg);

/* Self-test: two identities over the SQLite backend (one leads, the other waits, takes over after
 * expiry), a shared identity (both lead), the local deadline, the KubeRay judgement. */
int leader_test(bool verbose);

#endif
