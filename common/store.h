/*
 * store: the SQLite persistence of rayfleet: observed state (what the API server said), desired
 * state (what a reconciler decided should exist, and why), audit records, and leases.
 *
 * One writing process per database file, many readers (DESIGN.md, "state"). A process opens its
 * file read-write with store_open(path, STORE_READWRITE | <owners>, &err), which creates the file,
 * sets WAL mode, synchronous=NORMAL and foreign keys, and brings the schemas of the named owners up
 * to date; rayfleetctl opens it with STORE_READONLY (SQLITE_OPEN_READONLY plus query_only), which
 * refuses every write.
 *
 * Schemas by owner: the tables belong to four owners, each with its own ordered list of migration
 * steps and its own version (a row of the table schema_versions(owner, version)):
 * STORE_OBSERVED (observed_objects: the watcher), STORE_DESIRED (desired_objects) and
 * STORE_AUDIT (audit: a reconciler's decisions and actions), STORE_LEASES (leases: the SQLite
 * lease backend). A file receives only the tables of the owners named in the flags of its
 * read-write opens (no owner bit: all four, as before per-owner schemas). Each step runs in its own
 * transaction together with the bump of its owner's version, so a crash leaves the file at a step
 * boundary; reopening an up-to-date file applies nothing. PRAGMA user_version holds the layout
 * (STORE_LAYOUT_VERSION); a file of the single global list that came before (user_version 1 or 2,
 * all four owners' tables) is mapped onto per-owner versions on its first read-write open and then
 * migrated. A file whose layout, or the schema of an owner being opened, is NEWER than this build
 * is refused with ERR_STATE and left untouched; a read-only open also refuses an older one, since
 * it cannot migrate it. Statements are prepared only for the owners whose tables the file holds at
 * the current version: the functions of a missing owner return ERR_STATE.
 *
 * Queries go through the functions below only: no raw handle of a store_t leaves this module.
 * Arbitrary read-only SQL (rayfleetctl sql, tests) goes through store_query_open() on the file.
 *
 * Batched writes: the observed, desired and audit writes do not touch the database when called.
 * They copy their values into a bounded in-memory queue, and store_flush() applies the whole queue
 * in one transaction (BEGIN IMMEDIATE ... COMMIT) with statements prepared once at open.
 * store_attach_loop() makes the event loop call store_flush() before every poll, so each loop turn
 * costs one commit however many rows it wrote. When the queue reaches the batch bound, the write
 * that filled it flushes early. Reads see committed rows only: a write queued since the last flush
 * is not visible to store_*_get/list until store_flush() has run.
 *
 * Busy handling: the busy timeout is short (STORE_BUSY_TIMEOUT_MS_DEFAULT) because the loop must
 * never wait long. A flush that meets SQLITE_BUSY (another process holds the write lock) returns
 * ERR_BUSY and keeps the whole queue, to be retried by the next flush: nothing is lost. Only when
 * the queue has reached its hard bound (STORE_QUEUE_MAX_OPS / STORE_QUEUE_MAX_BYTES) and cannot be
 * flushed does a write fail with ERR_BUSY, and then nothing of it was queued. A queued write that
 * SQLite rejects on its own (a constraint) is logged, counted in `dropped` and skipped, so one bad
 * row cannot block the queue forever.
 *
 * Leases are the exception to batching: store_lease_try_acquire() and store_lease_release() run
 * their own small transaction at once, because other processes (replicas of a reconciler) read and
 * write the same lease rows and must see each change as soon as it is made. Lease times are
 * WALL-CLOCK milliseconds since the epoch (store_wall_ms()): the monotonic clock of one process
 * means nothing to another. Since several replicas write leases, keep them in a file of their own
 * (e.g. STATE_DIR/leases.db), apart from a service's batched writes.
 *
 * Strings passed in (the const char * fields of store_observed_t, store_desired_t, store_audit_t)
 * are borrowed for the duration of the call only: the store copies what it queues. Rows returned to
 * the caller are single allocations the caller frees with the matching *_free function; their const
 * char * fields point inside that allocation.
 *
 * A store_t is used by one thread (its event loop's).
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

/* Opening modes for store_open(). */
#define STORE_READWRITE 0 /* read and write; creates the file and migrates it */
#define STORE_READONLY 1 /* reads only (SQLITE_OPEN_READONLY); every write fails */
/* Owners of tables, or-ed into the mode of store_open(). */
#define STORE_OBSERVED 0x100 /* observed_objects */
#define STORE_DESIRED 0x200 /* desired_objects */
#define STORE_AUDIT 0x400 /* audit */

/* observed_objects row kinds that are not API kinds: the watcher's projections with
 * --watch.nodes, read by federation's placer (services/scheduler/placer.c) and `rayfleetctl
 * members`: every pod's node, phase and requests, and a cluster's probe */
#define STORE_KIND_POD_USAGE "PodUsage"
#define STORE_KIND_CLUSTER_HEALTH "ClusterHealth"
#define STORE_LEASES 0x800 /* leases */
#define STORE_OWNERS_ALL (STORE_OBSERVED | STORE_DESIRED | STORE_AUDIT | STORE_LEASES)

/* How long a statement waits for another connection's lock before SQLITE_BUSY. Short: the event
 * loop must not block. */
#define STORE_BUSY_TIMEOUT_MS_DEFAULT 50
#define STORE_FLUSH_EVERY_MAX_MS 1000 /* longest store_attach_loop_every() interval */

/* WAL pages between automatic checkpoints of a read-write open that holds STORE_OBSERVED (SQLite's
 * default is 1000): fewer checkpoints, each page copied once however often it was rewritten. */
#define STORE_OBSERVED_CHECKPOINT_PAGES 10000

/* Queued writes that trigger an early flush. */
#define STORE_BATCH_MAX_DEFAULT 2000
/* Hard bounds of the write queue (while the database stays busy). */
#define STORE_QUEUE_MAX_OPS 200000
#define STORE_QUEUE_MAX_BYTES (256u * 1024u * 1024u)
/* Longest request_summary kept in an audit row, in bytes (longer ones are cut). */
#define STORE_AUDIT_SUMMARY_MAX 4096
/* Longest lease name and holder, in bytes, not counting the NUL. */
#define STORE_LEASE_NAME_MAX 255
/* Most rows one list call returns. */
#define STORE_LIST_MAX 100000
#define STORE_NAME_MAX 253 /* longest object name (a DNS subdomain) */
/* The file layout this build writes (PRAGMA user_version): 1 and 2 were the single global list of
 * migrations, 3 the per-owner versions in schema_versions. */
#define STORE_LAYOUT_VERSION 3

typedef struct store store_t;

/* One observed Kubernetes object: a row of observed_objects. As input, every pointer is borrowed
 * for the call; NULL means "" for the key fields and NULL in the database for the others. As output
 * (store_observed_get/list), the strings live inside the row's own allocation. */
typedef struct {
    const char *cluster; /* member cluster, as named in the configuration */
    const char *api_group; /* API group ("" for core, "ray.io", "batch", ...) */
    const char *kind; /* "Pod", "RayCluster", ... */
    const char *ns; /* namespace ("" for cluster-scoped objects) */
    const char *name; /* metadata.name */
    const char *uid; /* metadata.uid */
    const char *resource_version; /* metadata.resourceVersion */
    int64_t generation; /* metadata.generation, 0 when the kind has none */
    const char *owner_kind; /* kind of the owning Ray object ("" when none) */
    const char *owner_name; /* name of the owning Ray object (same namespace) */
    const char *owner_uid; /* uid of the owning Ray object */
    const char *phase; /* status.phase or state, short */
    const char *conditions; /* conditions summary, e.g. "Ready=True,HeadPodReady=True" */
    bool deleting; /* metadata.deletionTimestamp is set */
    int64_t updated_ms; /* wall-clock ms of the write; 0 on input: now */
    const char *json; /* the whole object as JSON */
} store_observed_t;

/* A list of rows returned by store_observed_list_owner(); free with store_observed_list_free(). */
typedef struct {
    store_observed_t **rows; /* rows[0..n-1], each owned by the list */
    size_t n; /* number of rows */
} store_observed_list_t;

/* One child that a reconciler wants for a Ray object: a row of desired_objects. Children live in
 * their owner's namespace. Pointers as in store_observed_t. */
typedef struct {
    const char *cluster; /* member cluster */
    const char *ns; /* namespace of owner and child */
    const char *owner_kind; /* "RayCluster", "RayJob", ... */
    const char *owner_name; /* name of the Ray object */
    const char *owner_uid; /* uid of the Ray object the decision was made for */
    const char *child_group; /* API group of the child ("" for core) */
    const char *child_kind; /* "Pod", "Service", ... */
    const char *child_name; /* name of the child */
    const char *spec_hash; /* hash of the wanted spec, to compare with the observed child */
    const char *json; /* the object the reconciler wants, as JSON */
    const char *reason; /* why it is wanted, a short sentence */
    const char *correlation_id; /* the reconcile that decided it (links to audit rows) */
    int64_t decided_ms; /* wall-clock ms of the decision; 0 on input: now */
} store_desired_t;

/* A list of desired rows; free with store_desired_list_free(). */
typedef struct {
    store_desired_t **rows; /* rows[0..n-1], each owned by the list */
    size_t n; /* number of rows */
} store_desired_list_t;

/* One audit record: an action rayfleet took, its cause and its result. Pointers as in
 * store_observed_t (NULL stores NULL, except the target key fields, which store ""). The caller
 * redacts secrets from request_summary before the call; the store only bounds its length. */
typedef struct {
    int64_t id; /* assigned by the store (output only) */
    int64_t time_ms; /* wall-clock ms since the epoch; 0 on input: now */
    const char *actor_service; /* "scheduler", "submitter", ... */
    const char *actor_replica; /* "scheduler/2" */
    const char *actor_version; /* rayfleet version of the actor */
    const char *cluster; /* member cluster of the target */
    const char *target_group; /* API group of the target */
    const char *target_kind; /* kind of the target */
    const char *target_namespace; /* namespace of the target */
    const char *target_name; /* name of the target */
    const char *target_uid; /* uid of the target, when known */
    const char *verb; /* create, update, patch, delete, status, job-submit, ... */
    const char *reason; /* KubeRay's event reason where one exists */
    const char *message; /* a sentence saying why */
    const char *cause_key; /* key of the object change that triggered the action */
    int64_t cause_generation; /* its generation, 0: unknown (stored as NULL) */
    const char *cause_resource_version; /* its resourceVersion */
    uint64_t cause_event_id; /* the bus event id, 0: none (stored as NULL) */
    const char *correlation_id; /* shared by all actions of one reconcile */
    const char *request_summary; /* redacted summary, cut to STORE_AUDIT_SUMMARY_MAX */
    int result_status; /* HTTP status, 0 when no response came */
    const char *result_error; /* error text, NULL on success */
    int64_t latency_ms; /* time from request to result */
} store_audit_t;

/* A list of audit rows; free with store_audit_list_free(). */
typedef struct {
    store_audit_t **rows; /* rows[0..n-1], newest first, each owned by the list */
    size_t n; /* number of rows */
} store_audit_list_t;

/* A lease as stored. Times are wall-clock ms since the epoch. */
typedef struct {
    char name[STORE_LEASE_NAME_MAX + 1]; /* "scheduler/shard/17" */
    char holder[STORE_LEASE_NAME_MAX + 1]; /* the replica holding it, "" after a release */
    int64_t acquired_ms; /* when the current holder acquired it */
    int64_t renewed_ms; /* last renewal */
    int64_t expires_ms; /* end of validity, 0 after a release */
    int64_t transitions; /* number of changes of holder */
} store_lease_t;

/* Counters, for tests and metrics. */
typedef struct {
    uint64_t flushes; /* transactions committed by store_flush() */
    uint64_t rows_written; /* queued writes applied */
    uint64_t busy; /* flushes that met SQLITE_BUSY */
    uint64_t dropped; /* queued writes SQLite rejected (logged, skipped) */
    size_t queued; /* writes waiting for the next flush */
    size_t queued_bytes; /* bytes they hold */
    unsigned migrations_applied; /* migration steps this open applied, all owners together */
    unsigned schema_version; /* the file layout after open (STORE_LAYOUT_VERSION) */
} store_stats_t;

/* Opens (STORE_READWRITE: creates if missing, and migrates) or STORE_READONLY the database at
 * `path`. `flags` is the mode or-ed with the owners (STORE_OBSERVED, ...) whose tables the caller
 * uses: read-write, their schemas are created or migrated (no owner: all four); read-only, they
 * must be current (no owner: whatever the file holds). Returns the store, or NULL with *err_out
 * (may be NULL) set to: ERR_INVAL (bad arguments), ERR_NOMEM, ERR_NOTFOUND (the file, read-only, or
 * its directory is missing), ERR_STATE (the file's layout or an owner's schema is newer than this
 * build, or, read-only, not current; the file is left untouched), ERR_BUSY (another process held a
 * lock too long), ERR_DB (any other SQLite error, logged with SQLite's message). The caller owns
 * the store and destroys it with store_destroy(). */
store_t *store_open(const char *path, int flags, int *err_out);

/* Flushes what is queued (best effort: if that fails, logs how many writes are lost), finalizes the
 * statements, closes the database and sets *store_p to NULL. NULL-safe. A store attached to a loop
 * must be destroyed after that loop (loop.h has no way to remove a hook). */
void store_destroy(store_t **store_p);

/* Sets the busy timeout in ms (>= 0). Returns 0 or ERR_INVAL. */
int store_set_busy_timeout(store_t *store, int ms);

/* Sets how many queued writes trigger an early flush (1 .. STORE_QUEUE_MAX_OPS). Returns 0 or
 * ERR_INVAL. */
int store_set_batch_max(store_t *store, size_t n);

/* Applies every queued write in one transaction. Returns 0 (also when nothing was queued),
 * ERR_BUSY (the database is locked by another connection; the queue is kept for the next flush),
 * or ERR_DB, ERR_NOMEM or ERR_STATE (the file became read-only): the transaction failed and the
 * queue is kept. A no-op on a read-only store. */
int store_flush(store_t *store);

/* Registers store_flush() as a before-sleep hook of `loop`, so writes commit once per loop turn.
 * ERR_BUSY is counted and retried on the next turn; other failures are logged. Returns 0, ERR_INVAL
 * or ERR_NOMEM. The loop borrows the store: destroy the loop first. */
int store_attach_loop(store_t *store, loop_t *loop);

/* Like store_attach_loop(), but a loop turn flushes only when at least `every_ms` (0 ..
 * STORE_FLUSH_EVERY_MAX_MS; 0: every turn) passed since the hook's last flush; queued writes then
 * wait at most that long (a timer wakes the loop for them) unless the batch bound flushes them
 * first. Fewer, larger commits for a busy writer; the price is that a crash loses the writes of
 * the last `every_ms` instead of the last loop turn, and readers on other connections see them
 * up to `every_ms` later. Returns 0, ERR_INVAL or ERR_NOMEM. The loop borrows the store. */
int store_attach_loop_every(store_t *store, loop_t *loop, int64_t every_ms);

/* Fills *out with the counters. */
void store_stats(const store_t *store, store_stats_t *out);

/* Observes the duration of every committed flush (BEGIN to COMMIT, seconds) in a histogram
 * series of common/metrics (borrowed; NULL stops). */
struct metric_series;
void store_set_commit_metric(store_t *store, struct metric_series *hist);

/* The {service} series of rayfleet_store_commit_duration_seconds in `reg` (the family registered
 * on first use), for store_set_commit_metric(); NULL when out of memory or at a bound. */
struct metrics;
struct metric_series *store_commit_series(struct metrics *reg, const char *service);

/* The path the store was opened with, borrowed (for store_query_open() on the same file). */
const char *store_path(const store_t *store);

/* Wall-clock ms since the epoch (for lease and audit times). */
int64_t store_wall_ms(void);

/* Queues an insert-or-replace of the observed row keyed by (cluster, kind, namespace, name).
 * Returns 0 when queued, ERR_INVAL (kind or name missing), ERR_STATE (read-only store), ERR_NOMEM,
 * ERR_TOOBIG (one row larger than STORE_QUEUE_MAX_BYTES), or, when the queue is full and the flush
 * that would make room fails, that flush's error (ERR_BUSY mostly); then nothing was queued. */
int store_observed_upsert(store_t *store, const store_observed_t *row);

/* Queues the removal of an observed row (deleting a missing row is not an error). Returns as
 * store_observed_upsert(). */
int store_observed_delete(store_t *store, const char *cluster, const char *kind, const char *ns,
                          const char *name);

/* Reads one committed observed row into *out (the caller frees it with store_observed_free()).
 * Returns 0, ERR_NOTFOUND (*out is NULL), ERR_INVAL, ERR_NOMEM or ERR_DB. */
int store_observed_get(store_t *store, const char *cluster, const char *kind, const char *ns,
                       const char *name, store_observed_t **out);

/* Lists the committed observed rows of `kind` in namespace ns whose name starts with `prefix`
 * (through the primary key: a range, not a scan), by name, at most STORE_LIST_MAX; free with
 * store_observed_list_free(). Returns 0, ERR_INVAL, ERR_NOMEM, ERR_TOOBIG or ERR_DB. */
int store_observed_list_prefix(store_t *store, const char *cluster, const char *kind,
                               const char *ns, const char *prefix, store_observed_list_t *out);

/* Frees a row returned by store_observed_get() and sets *row_p to NULL. NULL-safe. */
void store_observed_free(store_observed_t **row_p);

/* Lists the committed observed rows owned by the Ray object (cluster, namespace, owner_kind,
 * owner_name), and, when owner_uid is not NULL, with that owner uid; ordered by kind and name, at
 * most STORE_LIST_MAX. On success *out holds the rows (free with store_observed_list_free()).
 * Returns 0, ERR_INVAL, ERR_NOMEM, ERR_TOOBIG (more than STORE_LIST_MAX rows) or ERR_DB; on error
 * *out is empty. */
int store_observed_list_owner(store_t *store, const char *cluster, const char *ns,
                              const char *owner_kind, const char *owner_name, const char *owner_uid,
                              store_observed_list_t *out);

/* Frees the rows of a list and empties it. NULL-safe. */
void store_observed_list_free(store_observed_list_t *list);

/* Called by store_observed_scan() for each row. The row is borrowed for the call (its json is
 * NULL). Returns 0 to go on; anything else ends the scan, which returns it. The callback may queue
 * writes (store_observed_delete(), ...) but must not start another scan of the same store. */
typedef int (*store_observed_fn)(const store_observed_t *row, void *arg);

/* Calls fn for every committed observed row of (cluster, kind) and, when ns is not NULL, that
 * namespace, in no particular order, without reading the JSON (a resync scan or a relist's stale
 * check over the primary key). Returns 0, fn's non-zero value, ERR_INVAL (no kind or fn),
 * ERR_STATE (no observed table), ERR_BUSY or ERR_DB. */
int store_observed_scan(store_t *store, const char *cluster, const char *kind, const char *ns,
                        store_observed_fn fn, void *arg);

/* As store_observed_scan(), with each row's json set (borrowed for the call): a reader of every
 * object of a kind, such as the scrape-time KubeRay metrics. */
int store_observed_scan_json(store_t *store, const char *cluster, const char *kind, const char *ns,
                             store_observed_fn fn, void *arg);

/* Queues an insert-or-replace of a desired child keyed by (cluster, namespace, owner_kind,
 * owner_name, child_kind, child_name). Returns as store_observed_upsert(). */
int store_desired_put(store_t *store, const store_desired_t *row);

/* Queues the removal of one desired child, or of all the children of the owner when child_kind is
 * NULL. Returns as store_observed_upsert(). */
int store_desired_delete(store_t *store, const char *cluster, const char *ns,
                         const char *owner_kind, const char *owner_name, const char *child_kind,
                         const char *child_name);

/* Lists the committed desired children of an owner, ordered by child kind and name. Returns and
 * ownership as store_observed_list_owner(). */
int store_desired_list_owner(store_t *store, const char *cluster, const char *ns,
                             const char *owner_kind, const char *owner_name,
                             store_desired_list_t *out);

/* Frees the rows of a list and empties it. NULL-safe. */
void store_desired_list_free(store_desired_list_t *list);

/* Queues one audit record (its id is assigned when it is flushed). Returns 0, ERR_INVAL (no verb),
 * ERR_STATE (read-only), ERR_NOMEM or ERR_BUSY (as store_observed_upsert()). */
int store_audit_append(store_t *store, const store_audit_t *rec);

/* The result_error of an intent row: a write recorded before it was sent (result_status 0), whose
 * result is not known yet. A row still pending after its writer stopped is a write that may or may
 * not have reached the API server. */
#define STORE_AUDIT_PENDING "pending"

/* Queues the result of a write over its intent row: the oldest row with the same correlation_id,
 * verb, cluster, kind, namespace and target name `intent_name` (NULL: rec->target_name) whose
 * result is still pending gets rec's target name and uid (a NULL uid keeps the row's), reason,
 * message, result_status, result_error and latency_ms; its time, cause and summary stay the
 * intent's. When no such row is found at flush time, rec is inserted as a row of its own. Returns
 * as store_audit_append(); ERR_INVAL also without a correlation_id. */
int store_audit_resolve(store_t *store, const char *intent_name, const store_audit_t *rec);

/* Lists the committed audit rows of one target (cluster, kind, namespace, name) with since_ms <=
 * time_ms < until_ms (until_ms 0: no upper bound), newest first, at most `limit` (1 ..
 * STORE_LIST_MAX). Uses the index audit_by_target. Returns 0, ERR_INVAL, ERR_NOMEM or ERR_DB; on
 * success the caller frees *out with store_audit_list_free(). */
int store_audit_query_target(store_t *store, const char *cluster, const char *kind, const char *ns,
                             const char *name, int64_t since_ms, int64_t until_ms, size_t limit,
                             store_audit_list_t *out);

/* Frees the rows of a list and empties it. NULL-safe. */
void store_audit_list_free(store_audit_list_t *list);

/* Acquires or renews the lease `name` for `holder` until now_ms + duration_ms, in its own
 * transaction, committed before returning (not batched). It succeeds when the lease is free,
 * released, expired (expires_ms <= now_ms), or held by `holder` already (a renewal); a change of
 * holder counts one transition. Returns 0 (acquired or renewed; *renewed_out, may be NULL, says
 * which), ERR_CONFLICT (another holder's lease is unexpired), ERR_INVAL (empty or too long strings,
 * duration_ms <= 0), ERR_STATE (read-only), ERR_BUSY (the write lock was not free within the busy
 * timeout) or ERR_DB. now_ms is wall-clock ms since the epoch (store_wall_ms()). */
int store_lease_try_acquire(store_t *store, const char *name, const char *holder,
                            int64_t duration_ms, int64_t now_ms, bool *renewed_out);

/* Releases the lease if `holder` holds it: holder becomes "" and expires_ms 0, at once (own
 * transaction). Returns 0, ERR_NOTFOUND (not held by `holder`), ERR_INVAL, ERR_STATE, ERR_BUSY or
 * ERR_DB. */
int store_lease_release(store_t *store, const char *name, const char *holder);

/* Reads the lease `name` into *out. Returns 0, ERR_NOTFOUND, ERR_INVAL or ERR_DB. */
int store_lease_get(store_t *store, const char *name, store_lease_t *out);

/* Called by store_lease_scan() for each lease, borrowed for the call. Returns 0 to go on; anything
 * else ends the scan, which returns it. */
typedef int (*store_lease_fn)(const store_lease_t *lease, void *arg);

/* Calls fn for each committed lease whose name begins with `prefix` ("": all), in name order, at
 * most `limit` (>= 1) of them. Returns 0, fn's non-zero value, ERR_INVAL, ERR_STATE (no leases
 * table), ERR_BUSY or ERR_DB. */
int store_lease_scan(store_t *store, const char *prefix, size_t limit, store_lease_fn fn,
                     void *arg);

/* ---- Audit queries by filter, pruning, and the read-only query connection (rayfleetctl) ---- */

/* Orders of store_audit_filter_t.order. */
#define STORE_AUDIT_NEWEST 0 /* time_ms DESC, id DESC (the newest `limit` rows) */
#define STORE_AUDIT_OLDEST 1 /* time_ms ASC, id ASC (export) */
#define STORE_AUDIT_BY_ID 2 /* id ASC (follow: rows appended after after_id) */
#define STORE_AUDIT_LAST 3 /* the newest `limit` rows (limit required), returned oldest first */

/* The audit table's columns in the order of store_audit_t (time_ms .. latency_ms), defined once:
 * STORE_AUDIT_COLUMN_LIST(X) expands X(sep, column) for each, sep being empty for the first and
 * ", " for the others. STORE_AUDIT_COLUMNS is the SQL list ("time_ms, actor_service, ...,
 * latency_ms") for INSERTs and SELECTs; STORE_AUDIT_NAME_ makes string initializers
 * ({STORE_AUDIT_COLUMN_LIST(STORE_AUDIT_NAME_) "id"}). */
#define STORE_AUDIT_COLUMN_LIST(X)                                                                 \
    X(, time_ms)                                                                                   \
    X(", ", actor_service)                                                                         \
    X(", ", actor_replica)                                                                         \
    X(", ", actor_version)                                                                         \
    X(", ", cluster)                                                                               \
    X(", ", target_group)                                                                          \
    X(", ", target_kind)                                                                           \
    X(", ", target_namespace)                                                                      \
    X(", ", target_name)                                                                           \
    X(", ", target_uid)                                                                            \
    X(", ", verb)                                                                                  \
    X(", ", reason)                                                                                \
    X(", ", message)                                                                               \
    X(", ", cause_key)                                                                             \
    X(", ", cause_generation)                                                                      \
    X(", ", cause_resource_version)                                                                \
    X(", ", cause_event_id)                                                                        \
    X(", ", correlation_id)                                                                        \
    X(", ", request_summary)                                                                       \
    X(", ", result_status)                                                                         \
    X(", ", result_error)                                                                          \
    X(", ", latency_ms)
#define STORE_AUDIT_SQL_(sep, column) sep #column
#define STORE_AUDIT_NAME_(sep, column) #column,
#define STORE_AUDIT_COLUMNS STORE_AUDIT_COLUMN_LIST(STORE_AUDIT_SQL_)

/* Number of columns of a statement made by store_audit_prepare(): the 22 STORE_AUDIT_COLUMNS,
 * then id (column STORE_AUDIT_NCOLS - 1). */
#define STORE_AUDIT_NCOLS 23

/* A query of the audit table. Every criterion is optional (NULL, 0 or false: any); all that are
 * given must hold. Strings are borrowed for the call. Index use (checked by the tests):
 * cluster+kind+namespace+name -> audit_by_target; correlation_id -> audit_by_correlation;
 * verb -> audit_by_verb; actor -> audit_by_actor; only a time window -> audit_by_time; SQLite's
 * planner picks among them when several apply. */
typedef struct {
    const char *cluster; /* member cluster */
    const char *kind; /* target kind */
    const char *ns; /* target namespace */
    const char *name; /* target name */
    const char *verb; /* create, delete, ... */
    const char *actor; /* actor_service */
    const char *correlation_id; /* one reconcile */
    int status_min; /* result_status >= status_min (with status_max; 0/0: any) */
    int status_max; /* result_status <= status_max */
    bool errors_only; /* result_status = 0 or >= 400, or result_error set */
    int64_t since_ms; /* time_ms >= since_ms (0: no bound) */
    int64_t until_ms; /* time_ms < until_ms (0: no bound) */
    int64_t after_id; /* id > after_id (0: no bound) */
    size_t limit; /* most rows, 1 .. STORE_LIST_MAX for store_audit_query(); 0: no limit
                     (store_audit_prepare() only) */
    int order; /* STORE_AUDIT_NEWEST, _OLDEST, _BY_ID or _LAST */
} store_audit_filter_t;

/* Prepares the SELECT for `f` on `db` (any connection, read-only ones included) with its
 * parameters bound, into *out (the caller finalizes it); the columns are described at
 * STORE_AUDIT_NCOLS. When `sql_out` is not NULL the SQL text is appended to it (for EXPLAIN QUERY
 * PLAN). Returns 0, ERR_INVAL (bad arguments or order), ERR_NOMEM, or ERR_DB (no audit table:
 * SQLite's message is in sqlite3_errmsg(db)). */
int store_audit_prepare(sqlite3 *db, const store_audit_filter_t *f, sqlite3_stmt **out,
                        buf_t *sql_out);

/* Runs `f` (limit 1 .. STORE_LIST_MAX) on the committed rows into *out (free with
 * store_audit_list_free()), ids filled in. Returns 0, ERR_INVAL, ERR_NOMEM or ERR_DB; on error
 * *out is empty. */
int store_audit_query(store_t *store, const store_audit_filter_t *f, store_audit_list_t *out);

/* Most rows store_audit_prune_chunk() deletes in one call. */
#define STORE_PRUNE_CHUNK_MAX 100000

/* Deletes, in ONE short transaction of its own (BEGIN IMMEDIATE ... COMMIT, not batched), at most
 * `max_rows` (1 .. STORE_PRUNE_CHUNK_MAX) of the oldest audit rows with time_ms < before_ms, and
 * sets *deleted (may be NULL) to how many. Call it in a loop, with a pause between calls, until it
 * deletes fewer than max_rows: each call holds the write lock only for one chunk, so a service
 * writing the same file meets at most a short ERR_BUSY on a flush and keeps its queue. Returns 0,
 * ERR_INVAL, ERR_STATE (read-only store), ERR_BUSY (the write lock was not free within the busy
 * timeout; nothing deleted) or ERR_DB. */
int store_audit_prune_chunk(store_t *store, int64_t before_ms, size_t max_rows, size_t *deleted);

/* A read-only connection for arbitrary user queries (rayfleetctl sql, audit): opened with
 * SQLITE_OPEN_READONLY, PRAGMA query_only, extension loading disabled
 * (SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION 0), the optional extra files ATTACHed read-only
 * (mode=ro) by store_query_open() itself, and THEN an authorizer that allows only SELECT, READ,
 * FUNCTION (but not load_extension), recursive CTEs, and the introspection pragmas listed in
 * store.c (table_info, index_list, ... without a value to set); everything else (INSERT, UPDATE,
 * DELETE, CREATE, DROP, ALTER, ATTACH, DETACH, BEGIN, other PRAGMAs, ...) is denied. */
typedef struct store_query store_query_t;

/* One file to attach read-only: it is visible as schema.table. */
typedef struct {
    const char *schema; /* the schema name, [A-Za-z_][A-Za-z0-9_]* ("observed") */
    const char *path; /* the file (must exist) */
} store_query_attach_t;

/* Longest query text store_query_prepare() accepts, bytes. */
#define STORE_QUERY_SQL_MAX (64u * 1024u)
/* Longest refusal message, bytes. */
#define STORE_QUERY_WHY_MAX 512

/* Opens `path` (must exist) read-only as above, attaching extra[0..nextra-1]. Returns the
 * connection, or NULL with *err_out (may be NULL) set to ERR_INVAL, ERR_NOMEM, ERR_NOTFOUND (a
 * file is missing) or ERR_DB. Close with store_query_close(). */
store_query_t *store_query_open(const char *path, const store_query_attach_t *extra, size_t nextra,
                                int *err_out);

/* Prepares ONE read-only statement into *out (the caller finalizes it). On failure `why` (cleared
 * first) holds a sentence, e.g. "INSERT is not allowed". Returns 0, ERR_FORBIDDEN (refused: more
 * than one statement, anything the authorizer denies, or a statement for which
 * sqlite3_stmt_readonly() is false), ERR_PARSE (SQLite rejected the text: syntax error, unknown
 * table; its message is in `why`), ERR_INVAL (bad arguments, an empty text, or one longer than
 * STORE_QUERY_SQL_MAX) or ERR_NOMEM. */
int store_query_prepare(store_query_t *q, const char *sql, sqlite3_stmt **out, buf_t *why);

/* Bounds the time of the statements stepped from now on: after `timeout_ms` ms (0: no bound) of
 * wall time, sqlite3_step() returns SQLITE_INTERRUPT and store_query_timed_out() is true. */
void store_query_set_timeout(store_query_t *q, int64_t timeout_ms);

/* Whether the deadline interrupted a statement. */
bool store_query_timed_out(const store_query_t *q);

/* The connection, borrowed (for stepping and sqlite3_errmsg()). */
sqlite3 *store_query_handle(store_query_t *q);

/* Closes the connection and sets *q_p to NULL. NULL-safe. */
void store_query_close(store_query_t **q_p);

/* The self-test. */
int store_test(bool verbose);

#endif
