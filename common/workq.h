/*
 * workq: the reconcile driver shared by every reconciler: client-go's workqueue
 * (rate-limited, delaying, deduplicating) reimplemented on the event loop, with
 * controller-runtime's mapping of reconcile results. Creation and deletion
 * expectations are the controller runtime's (ctrl/expect.h).
 *
 * Keys are strings ("cluster/namespace/name"), never objects: the reconcile
 * reads the current state from the cache. Semantics (k8s-api-semantics.md §11):
 * - Deduplication: a key waiting in the queue is there once however often it is
 * added.
 * - One reconcile per key at a time: a key added while its reconcile runs is
 * marked dirty and queued again, once, when workq_done() is called for it.
 * - Reconciles are asynchronous: the reconcile callback starts the work and
 * returns; the caller later calls workq_done(key, result) (possibly from inside
 * the callback). At most `concurrency` reconciles are in flight at once.
 * - Results (controller-runtime): OK → forget the key's failures; REQUEUE_AFTER
 * n ms → forget and add_after(n); ERROR → add_rate_limited (per-key exponential
 * backoff 5 ms × 2^failures capped at 1000 s, combined by maximum with an
 * overall token bucket of 10 qps / burst 100; both configurable, bucket off
 * with qps 0).
 * - add_after keeps the earlier time when the key is already waiting. An
 * immediate workq_add() of a key that waits in the delay heap moves it into the
 * queue now (its reconcile will set its own requeue), so one key is never both
 * queued and delayed.
 *
 * Fairness policy: the queue is FIFO by the time a key became ready (first add
 * since its last start); re-adding a waiting key does not move it. A key
 * re-added during its reconcile goes to the tail when done, behind every key
 * that was already waiting, so a hot key gets at most one turn per pass over
 * the queue. On top of that a per-key rate limit (`key_min_interval_ms`,
 * default WORKQ_DEFAULT_KEY_MIN_INTERVAL_MS) is enforced when a key reaches the
 * head: a key started less than that long ago is parked in the delay heap until
 * the interval has passed and the next key starts instead. Dispatch runs from a
 * zero-delay loop timer, at most one pass over the queue per loop iteration, so
 * a reconcile that completes synchronously and re-adds its key cannot spin the
 * loop.
 *
 * Urgent lane: workq_add_urgent() is workq_add() for a key whose pass must not wait behind the
 * ordinary backlog (e.g. the event that ends a job). Urgent keys queue at the FIFO's front, FIFO
 * among themselves, ahead of every ordinary key; an ordinary key already waiting moves into the
 * lane keeping its add time; a key in flight is marked dirty and goes into the lane when done; a
 * delayed key moves into the lane now. Deduplication, one reconcile per key at a time and the
 * per-key rate limit are unchanged; the mark is cleared when the key starts.
 *
 * Bounds: at most `max_len` keys waiting (queued or delayed); an add of a new
 * key beyond that fails with ERR_TOOBIG and a log line (a key already waiting,
 * or in flight, can always be re-added). Keys with a failure history are kept
 * until forgotten.
 *
 * Stats: depth, delayed, in flight, adds, retries, longest current wait, and
 * the queue latency (time from add to start) as last/max/sum/count plus an
 * optional per-start observer callback for histograms.
 */
#ifndef RF_WORKQ_H
#define RF_WORKQ_H

#include "loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* controller-runtime's per-item exponential backoff: base and cap. */
#define WORKQ_DEFAULT_BACKOFF_BASE_MS 5
#define WORKQ_DEFAULT_BACKOFF_MAX_MS (1000 * 1000)
/* controller-runtime's overall bucket: 10 qps, burst 100. */
#define WORKQ_DEFAULT_BUCKET_QPS 10.0
#define WORKQ_DEFAULT_BUCKET_BURST 100
/* MaxConcurrentReconciles default (KubeRay --reconcile-concurrency). */
#define WORKQ_DEFAULT_CONCURRENCY 1
/* Default bound on waiting keys. */
#define WORKQ_DEFAULT_MAX_LEN 1000000
/* Default per-key rate limit: one start per key per this many ms (0 = none). */
#define WORKQ_DEFAULT_KEY_MIN_INTERVAL_MS 0
/* Longest key accepted, bytes. */
#define WORKQ_MAX_KEY_LEN 1024

/* KubeRay's requeue periods (kuberay-behavior.md §6), for reconcilers' results.
 */
#define WORKQ_REQUEUE_RAYCLUSTER_MS (300 * 1000)
#define WORKQ_REQUEUE_RAYCLUSTER_SHORT_MS (2 * 1000)
#define WORKQ_REQUEUE_RAYJOB_MS (3 * 1000)
#define WORKQ_REQUEUE_RAYSERVICE_MS (2 * 1000)

typedef struct workq workq_t;

/* What a reconcile ended with. */
typedef enum {
    WORKQ_OK = 0, /* success: forget failures, no requeue */
    WORKQ_REQUEUE_AFTER = 1, /* forget failures and requeue after `after_ms` */
    WORKQ_ERROR = 2, /* failure: rate-limited requeue */
    WORKQ_REQUEUE = 3 /* Requeue: true: rate-limited requeue, not counted as an error */
} workq_result_kind_t;

typedef struct {
    workq_result_kind_t kind; /* the outcome */
    int64_t after_ms; /* delay for WORKQ_REQUEUE_AFTER */
} workq_result_t;

/* Starts the reconcile of `key` (borrowed; valid until workq_done() for it).
 * Must eventually lead to exactly one workq_done(q, key, ...), which may be
 * called from inside. */
typedef void(workq_reconcile_fn)(workq_t *q, const char *key, void *arg);

/* Observes the queue latency of each start (for a metrics histogram). */
typedef void(workq_latency_fn)(const char *key, int64_t wait_ms, void *arg);

/* Observes each reconcile's end: how long it ran (start to workq_done) and its result. */
typedef void(workq_done_fn)(const char *key, int64_t run_ms, workq_result_kind_t kind, void *arg);

typedef struct {
    int concurrency; /* most reconciles in flight; <= 0 takes the default */
    size_t max_len; /* most keys waiting; 0 takes the default */
    int64_t backoff_base_ms; /* first backoff; <= 0 takes the default */
    int64_t backoff_max_ms; /* backoff cap; <= 0 takes the default */
    double bucket_qps; /* overall retry rate; 0 disables the bucket, < 0 takes the
                          default */
    int bucket_burst; /* overall retry burst; <= 0 takes the default */
    int64_t key_min_interval_ms; /* per-key start interval; < 0 takes the default,
                                    0 none */
    workq_latency_fn *on_latency; /* optional latency observer */
    void *latency_arg; /* its argument */
    workq_done_fn *on_done; /* optional end observer */
    void *done_arg; /* its argument */
} workq_opts_t;

typedef struct {
    size_t depth; /* keys queued and ready */
    size_t delayed; /* keys waiting in the delay heap */
    size_t in_flight; /* reconciles running */
    size_t keys; /* keys tracked (waiting, running, or with failure history) */
    uint64_t adds; /* calls that made a key ready (after dedup) */
    uint64_t add_calls; /* every workq_add/_after/_rate_limited call accepted */
    uint64_t retries; /* rate-limited requeues */
    uint64_t urgent_adds; /* workq_add_urgent() calls accepted */
    uint64_t starts; /* reconciles started */
    uint64_t rejected; /* adds refused because the queue was full */
    uint64_t rate_deferred; /* starts deferred by the per-key rate */
    int64_t longest_wait_ms; /* how long the oldest ready key has waited now */
    int64_t latency_last_ms; /* queue latency of the last start */
    int64_t latency_max_ms; /* largest queue latency seen */
    int64_t latency_sum_ms; /* sum of queue latencies */
    int64_t unfinished_ms; /* sum of how long each reconcile in flight has run now */
    int64_t longest_running_ms; /* how long the longest reconcile in flight has run now */
} workq_stats_t;

/* Fills `o` with the defaults. */
void workq_opts_default(workq_opts_t *o);

/* A new queue on `loop` calling `fn(q, key, arg)` for each reconcile. `opts`
 * may be NULL (all defaults). NULL when out of memory or fn/loop is NULL. */
workq_t *workq_new(loop_t *loop, const workq_opts_t *opts, workq_reconcile_fn *fn, void *arg);

/* Cancels timers and frees every key; sets *qp to NULL.
 * NULL-safe. Reconciles still in flight must not call workq_done() afterwards.
 */
void workq_destroy(workq_t **qp);

/* Makes `key` ready now (deduplicated; see the file comment). Returns 0,
 * ERR_INVAL (NULL, empty or longer than WORKQ_MAX_KEY_LEN), ERR_TOOBIG (queue
 * full) or ERR_NOMEM. */
int workq_add(workq_t *q, const char *key);

/* Makes `key` ready now in the urgent lane (see the file comment). Returns as workq_add(). */
int workq_add_urgent(workq_t *q, const char *key);

/* Makes `key` ready in `delay_ms` (<= 0: now), keeping an earlier pending time.
 * Returns as workq_add(). */
int workq_add_after(workq_t *q, const char *key, int64_t delay_ms);

/* add_after(key, backoff) where backoff is the larger of the per-key
 * exponential delay and the overall bucket's; counts one more failure for the
 * key. Returns as workq_add(). */
int workq_add_rate_limited(workq_t *q, const char *key);

/* Clears the failure history of `key` (the next backoff is the base again).
 * NULL-safe. */
void workq_forget(workq_t *q, const char *key);

/* How many consecutive rate-limited requeues `key` has had since it was last
 * forgotten. */
int workq_num_requeues(const workq_t *q, const char *key);

/* The backoff the next workq_add_rate_limited(key) would take from the per-key
 * limiter alone (without counting a failure). */
int64_t workq_next_backoff_ms(const workq_t *q, const char *key);

/* Reports the end of `key`'s reconcile and applies `result`. Returns 0,
 * ERR_STATE when the key is not in flight, ERR_INVAL, or the error of the
 * requeue (the reconcile is over either way). */
int workq_done(workq_t *q, const char *key, workq_result_t result);

/* Shorthands for results. */
workq_result_t workq_ok(void);
workq_result_t workq_requeue_after(int64_t ms);
workq_result_t workq_error(void);

/* True while `key` is being reconciled. */
bool workq_in_flight(const workq_t *q, const char *key);

/* True while `key` is being reconciled by a start from the urgent lane (its pass may ask for
 * urgency downstream, e.g. k8s_opts_t.urgent). */
bool workq_urgent_start(const workq_t *q, const char *key);

/* True while `key` waits (queued or delayed). */
bool workq_pending(const workq_t *q, const char *key);

/* Fills `out` with the current statistics. */
void workq_stats(const workq_t *q, workq_stats_t *out);

/* Self-test. */
int workq_test(bool verbose);

#endif
