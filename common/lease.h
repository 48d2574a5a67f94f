/*
 * lease: named, time-limited leases behind one asynchronous interface, with two backends:
 *   - SQLite (lease_sqlite_new): the leases table of a store.h database shared by the replicas of
 *     one host (store_lease_try_acquire/release/get: short immediate transactions, wall-clock ms);
 *   - Kubernetes (lease_k8s_new): coordination.k8s.io/v1 Lease objects in one namespace, for
 *     replicas on several hosts, written with optimistic concurrency (resourceVersion).
 *
 * The three operations are acquire-or-renew(name, holder, duration), release(name, holder) and
 * list(prefix). Each starts at once and returns an op id (> 0); its result reaches a callback on
 * the loop, never from inside the call that started it (the SQLite transaction runs during the
 * call; its result is delivered from a zero-delay loop timer, so both backends behave alike).
 *
 * Results of acquire: err 0 (held: acquired, or renewed when `renewed` is true, until about
 * expires_ms), ERR_CONFLICT (another holder's lease is unexpired; holder and expires_ms describe
 * it when known, holder "" when not), or another err_t (the backend failed: nothing is known about
 * the lease; a holder must keep judging its lease by its own deadline).
 *
 * Expiry is judged from what the backend records: SQLite stores expires_ms; a Kubernetes Lease
 * expires at spec.renewTime + its duration. Times written into the backend are the writer's WALL
 * clock (ms since the epoch) and compared with the reader's wall clock, so every replica's wall
 * clock must agree within a bounded skew (see shards.h for the margin that covers it).
 *
 * Kubernetes mapping. A lease name like "scheduler/shard/17" becomes the object name
 * "scheduler.shard.17" (lowercase; '/' becomes '.', any other character outside [a-z0-9.-]
 * becomes '-'). The original name is kept in the annotation LEASE_K8S_ANN_NAME; the name up to
 * its last '/' ("scheduler/shard", mapped the same way) is the label LEASE_K8S_LABEL_GROUP, which
 * list() selects on. A name without '/' ("rayfleet-leader", leader.h) has no group label and can
 * be acquired and released but not listed. spec.leaseDurationSeconds is the duration rounded up to
 * whole seconds (what other Kubernetes tools read); the exact duration in ms is the annotation
 * LEASE_K8S_ANN_DURATION, which this backend prefers (it is never longer, so other readers are only
 * more conservative). Acquire follows client-go's tryAcquireOrRenew (k8s-api-semantics.md §9.2):
 * when the last Lease seen says we hold it, PUT a fresh renewTime with the resourceVersion seen;
 * else GET it, POST it when missing, and when it is free ("" holder), ours, or expired, PUT
 * ourselves as holder with the resourceVersion of the GET (leaseTransitions + 1 when the holder
 * changes). Two replicas racing get one success and one 409, reported as ERR_CONFLICT. Release PUTs
 * holderIdentity "".
 *
 * A backend is used by one thread (its loop's). Callbacks may start or cancel operations; they
 * must not destroy the backend.
 */
#ifndef RF_LEASE_H
#define RF_LEASE_H

#include "k8s.h"
#include "loop.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_NAME_MAX STORE_LEASE_NAME_MAX /* longest lease name and holder, bytes */
#define LEASE_OPS_MAX 100000 /* operations in flight per backend; beyond: ERR_BUSY */
#define LEASE_LIST_MAX 10000 /* most entries one list() returns */
#define LEASE_K8S_NAME_MAX 253 /* longest Kubernetes object name (DNS subdomain) */
#define LEASE_K8S_LABEL_MAX 63 /* longest label value */
#define LEASE_K8S_CACHE_BUCKETS 1024 /* hash buckets of the last-seen Lease cache */
#define LEASE_K8S_CACHE_MAX 100000 /* most Leases remembered */
#define LEASE_K8S_ANN_NAME "rayfleet.io/lease-name" /* annotation: the original lease name */
#define LEASE_K8S_ANN_DURATION "rayfleet.io/lease-duration-ms" /* annotation: duration in ms */
#define LEASE_K8S_LABEL_GROUP "rayfleet.io/lease-group" /* label: the name up to its last '/' */

typedef struct lease_backend lease_backend_t;

/* The outcome of an acquire or release, valid only during the callback. */
typedef struct {
    int64_t id; /* the op id the call returned */
    int err; /* 0, ERR_CONFLICT or another err_t, as in the file comment */
    bool renewed; /* acquire, err 0: we held it already (a renewal) */
    const char *holder; /* the holder now (us on success; the other one on conflict; "" unknown) */
    int64_t expires_ms; /* wall-clock ms when the lease expires as recorded; 0 when unknown */
} lease_result_t;

/* One lease of a list() answer. */
typedef struct {
    const char *name; /* the lease name ("scheduler/member/r1") */
    const char *holder; /* its holder, "" when released */
    int64_t expires_ms; /* wall-clock expiry as recorded, 0 when released or unknown */
} lease_entry_t;

/* Called once when an acquire or release ends (not after lease_cancel() or destroy). */
typedef void(lease_done_fn)(lease_backend_t *b, const lease_result_t *res, void *arg);

/* Called once when a list ends: err 0 and entries[0..n-1] (borrowed for the call), or an err_t
 * and n 0. */
typedef void(lease_list_fn)(lease_backend_t *b, int64_t id, int err, const lease_entry_t *entries,
                            size_t n, void *arg);

/* A backend over the leases table of `store` (borrowed: it must outlive the backend), delivering
 * results on `loop`. Returns NULL on bad arguments or out of memory. */
lease_backend_t *lease_sqlite_new(loop_t *loop, store_t *store);

/* A backend over Lease objects in `namespace_` (copied) through `client` (borrowed: it must
 * outlive the backend). Returns NULL on bad arguments or out of memory. */
lease_backend_t *lease_k8s_new(loop_t *loop, k8s_client_t *client, const char *namespace_);

/* Cancels every operation in flight (no callback runs), frees the backend and NULLs *b_p.
 * NULL-safe. Not from inside one of its callbacks. */
void lease_backend_destroy(lease_backend_t **b_p);

/* Acquires or renews lease `name` for `holder` for duration_ms (strings copied). Returns the op
 * id (> 0), or ERR_INVAL (empty or too long strings, duration_ms <= 0, NULL fn), ERR_BUSY
 * (LEASE_OPS_MAX in flight) or ERR_NOMEM; then no callback runs. */
int64_t lease_acquire(lease_backend_t *b, const char *name, const char *holder, int64_t duration_ms,
                      lease_done_fn *fn, void *arg);

/* Releases lease `name` if `holder` holds it, so another can acquire it at once. Result err: 0,
 * ERR_NOTFOUND (not held by `holder`), ERR_CONFLICT (it changed meanwhile) or another err_t.
 * Returns as lease_acquire(). */
int64_t lease_release(lease_backend_t *b, const char *name, const char *holder, lease_done_fn *fn,
                      void *arg);

/* Lists the leases whose names start with `prefix`, which must end with '/' (the Kubernetes
 * backend selects on the group label). Returns as lease_acquire(). */
int64_t lease_list(lease_backend_t *b, const char *prefix, lease_list_fn *fn, void *arg);

/* Cancels operation `id`: its callback will not run (a request already sent may still take
 * effect on the server). Returns 0 or ERR_NOTFOUND. */
int lease_cancel(lease_backend_t *b, int64_t id);

/* Operations in flight. */
size_t lease_pending(const lease_backend_t *b);

/* Writes the Kubernetes object name for lease `name` into out[size]. Returns 0, ERR_INVAL (empty,
 * or nothing alphanumeric to start or end with) or ERR_TOOBIG (longer than LEASE_K8S_NAME_MAX or
 * size). */
int lease_k8s_name(const char *name, char *out, size_t size);

/* The recorded expiry of a Lease object `lease` (from any writer: spec.renewTime, else
 * acquireTime, plus the duration in ms of LEASE_K8S_ANN_DURATION, else leaseDurationSeconds), in
 * wall-clock ms; 0 when it has no holder, no time or no duration (free). */
int64_t lease_k8s_expiry(const json_t *lease);

/* Self-test: the SQLite backend end to end (acquire, renew, conflict, expiry, release, list,
 * cancel, destroy with ops pending), name mapping, argument errors. The Kubernetes
 * backend against kubesim is tested in tests/integration/shards. */
int lease_test(bool verbose);

#endif
