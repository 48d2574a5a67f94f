/*
 * store: SQLite persistence. See store.h for the contract.
 *
 * How it works: every statement is prepared once at open (SQLITE_PREPARE_PERSISTENT) and kept in
 * s->stmts[]. A batched write becomes an s_op_t: the index of its statement and its parameter
 * values, copied into one allocation, appended to a FIFO. store_flush() binds and steps each op in
 * a BEGIN IMMEDIATE transaction and frees the queue only after COMMIT succeeded, so a busy or
 * failed flush keeps every write for the next attempt.
 *
 * The C structs and the tables are tied together by field tables (s_field_t): one entry per column,
 * in column order, naming the struct member and how NULL and 0 are stored. The same table builds
 * the parameters of an insert and reads a SELECT row back into a struct, so a column added by a
 * migration is added in one place.
 */
#include "store.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "privfs.h"
#include "rftime.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The schemas, one per owner of tables. steps[i] brings the owner's version from i to i + 1.
 * Only ever append steps; never edit one that has shipped. A file written before per-owner versions
 * (user_version 1 or 2, one global list) held all four; s_layout() maps it onto these. */
static const char *const s_obs_steps[] = {
    /* observed 1: the watcher's table. */
    "CREATE TABLE observed_objects ("
    "  cluster TEXT NOT NULL,"
    "  api_group TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  namespace TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  uid TEXT,"
    "  resource_version TEXT,"
    "  generation INTEGER NOT NULL,"
    "  owner_kind TEXT NOT NULL,"
    "  owner_name TEXT NOT NULL,"
    "  owner_uid TEXT,"
    "  phase TEXT,"
    "  conditions TEXT,"
    "  deleting INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  json TEXT,"
    "  PRIMARY KEY (cluster, kind, namespace, name)"
    ") STRICT;"
    /* A reconciler reads its Ray object's children: pods and services by owner. */
    "CREATE INDEX observed_by_owner ON observed_objects"
    "  (cluster, namespace, owner_kind, owner_name, kind, name);",
};

static const char *const s_des_steps[] = {
    /* desired 1: what reconcilers want. */
    "CREATE TABLE desired_objects ("
    "  cluster TEXT NOT NULL,"
    "  namespace TEXT NOT NULL,"
    "  owner_kind TEXT NOT NULL,"
    "  owner_name TEXT NOT NULL,"
    "  owner_uid TEXT,"
    "  child_group TEXT NOT NULL,"
    "  child_kind TEXT NOT NULL,"
    "  child_name TEXT NOT NULL,"
    "  spec_hash TEXT,"
    "  json TEXT,"
    "  reason TEXT,"
    "  correlation_id TEXT,"
    "  decided_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (cluster, namespace, owner_kind, owner_name, child_kind, child_name)"
    ") STRICT;"
    /* Drift joins desired children with observed rows on the observed primary key; this index
     * answers the other direction: "which owner wants this object?". */
    "CREATE INDEX desired_by_child ON desired_objects"
    "  (cluster, child_kind, namespace, child_name);",
};

static const char *const s_audit_steps[] = {
    /* audit 1: the audit table and its indexes. */
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  actor_service TEXT,"
    "  actor_replica TEXT,"
    "  actor_version TEXT,"
    "  cluster TEXT NOT NULL,"
    "  target_group TEXT NOT NULL,"
    "  target_kind TEXT NOT NULL,"
    "  target_namespace TEXT NOT NULL,"
    "  target_name TEXT NOT NULL,"
    "  target_uid TEXT,"
    "  verb TEXT NOT NULL,"
    "  reason TEXT,"
    "  message TEXT,"
    "  cause_key TEXT,"
    "  cause_generation INTEGER,"
    "  cause_resource_version TEXT,"
    "  cause_event_id INTEGER,"
    "  correlation_id TEXT,"
    "  request_summary TEXT,"
    "  result_status INTEGER NOT NULL,"
    "  result_error TEXT,"
    "  latency_ms INTEGER NOT NULL"
    ") STRICT;"
    /* The questions of issue 6: what happened to this object, in this window, by this verb and
     * result, by this actor, in this reconcile. */
    "CREATE INDEX audit_by_target ON audit"
    "  (cluster, target_kind, target_namespace, target_name, time_ms);"
    "CREATE INDEX audit_by_time ON audit (time_ms);"
    "CREATE INDEX audit_by_verb ON audit (verb, result_status, time_ms);"
    "CREATE INDEX audit_by_actor ON audit (actor_service, time_ms);"
    "CREATE INDEX audit_by_correlation ON audit (correlation_id);",
    /* audit 2: everything done because of one Ray object (rayfleetctl explain raycluster/NAME). */
    "CREATE INDEX audit_by_cause ON audit (cause_key, id);",
};

static const char *const s_lease_steps[] = {
    /* leases 1: shard leases of reconciler replicas. */
    "CREATE TABLE leases ("
    "  name TEXT PRIMARY KEY,"
    "  holder TEXT NOT NULL,"
    "  acquired_ms INTEGER NOT NULL,"
    "  renewed_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  transitions INTEGER NOT NULL"
    ") STRICT;",
};

/* The owners of the built-in tables, by index (bit (STORE_OBSERVED << index) of the open flags). */
enum { S_OWN_OBS, S_OWN_DES, S_OWN_AUDIT, S_OWN_LEASE, S_OWN_COUNT, S_OWN_NONE = -1 };

/* One owner's schema: its name in schema_versions and its ordered migration steps. */
typedef struct {
    const char *owner; /* key of its row in schema_versions */
    const char *const *steps; /* steps[0..nsteps-1] */
    int nsteps; /* the version this build writes */
    int legacy; /* its version in a legacy file at user_version 2 (at 1: all were 1) */
} s_schema_t;

#define S_NSTEPS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const s_schema_t s_schemas[S_OWN_COUNT] = {
    [S_OWN_OBS] = {"observed", s_obs_steps, S_NSTEPS(s_obs_steps), 1},
    [S_OWN_DES] = {"desired", s_des_steps, S_NSTEPS(s_des_steps), 1},
    [S_OWN_AUDIT] = {"audit", s_audit_steps, S_NSTEPS(s_audit_steps), 2},
    [S_OWN_LEASE] = {"leases", s_lease_steps, S_NSTEPS(s_lease_steps), 1},
};

/* Column lists, in the order of the field tables below. */
#define S_OBS_COLS                                                                                 \
    "cluster, api_group, kind, namespace, name, uid, resource_version, generation, owner_kind, "   \
    "owner_name, owner_uid, phase, conditions, deleting, updated_ms, json"
#define S_DES_COLS                                                                                 \
    "cluster, namespace, owner_kind, owner_name, owner_uid, child_group, child_kind, child_name, " \
    "spec_hash, json, reason, correlation_id, decided_ms"

/* The prepared statements, by index into s->stmts. */
enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_OBS_UPSERT,
    S_OBS_UPSERT_OWNER,
    S_OBS_DELETE,
    S_OBS_GET,
    S_OBS_LIST_OWNER,
    S_OBS_SCAN,
    S_OBS_LIST_PREFIX,
    S_OBS_SCAN_JSON,
    S_DES_PUT,
    S_DES_DELETE_ONE,
    S_DES_DELETE_OWNER,
    S_DES_LIST_OWNER,
    S_AUDIT_INSERT,
    S_AUDIT_TARGET,
    S_AUDIT_RESOLVE,
    S_LEASE_GET,
    S_LEASE_PUT,
    S_LEASE_RELEASE,
    S_LEASE_SCAN,
    S_STMT_COUNT
};

/* The owner whose tables each statement reads or writes: it is prepared only when the file holds
 * that owner's tables at the current version. */
static const int s_sql_owner[S_STMT_COUNT] = {
    [S_BEGIN] = S_OWN_NONE,           [S_COMMIT] = S_OWN_NONE,
    [S_ROLLBACK] = S_OWN_NONE,        [S_OBS_UPSERT] = S_OWN_OBS,
    [S_OBS_UPSERT_OWNER] = S_OWN_OBS, [S_OBS_DELETE] = S_OWN_OBS,
    [S_OBS_GET] = S_OWN_OBS,          [S_OBS_LIST_OWNER] = S_OWN_OBS,
    [S_OBS_SCAN] = S_OWN_OBS,         [S_OBS_LIST_PREFIX] = S_OWN_OBS,
    [S_DES_PUT] = S_OWN_DES,          [S_OBS_SCAN_JSON] = S_OWN_OBS,
    [S_DES_DELETE_ONE] = S_OWN_DES,   [S_DES_DELETE_OWNER] = S_OWN_DES,
    [S_DES_LIST_OWNER] = S_OWN_DES,   [S_AUDIT_INSERT] = S_OWN_AUDIT,
    [S_AUDIT_TARGET] = S_OWN_AUDIT,   [S_AUDIT_RESOLVE] = S_OWN_AUDIT,
    [S_LEASE_GET] = S_OWN_LEASE,      [S_LEASE_PUT] = S_OWN_LEASE,
    [S_LEASE_RELEASE] = S_OWN_LEASE,  [S_LEASE_SCAN] = S_OWN_LEASE,
};

/* The observed upsert, in two parts around the owner columns (S_OBS_UPSERT leaves them out). */
#define S_OBS_UPSERT_HEAD                                                                          \
    "INSERT INTO observed_objects (" S_OBS_COLS ") "                                               \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "              \
    "ON CONFLICT (cluster, kind, namespace, name) DO UPDATE SET "                                  \
    "api_group = excluded.api_group, uid = excluded.uid, "                                         \
    "resource_version = excluded.resource_version, generation = excluded.generation, "
#define S_OBS_UPSERT_TAIL                                                                          \
    "owner_uid = excluded.owner_uid, phase = excluded.phase, "                                     \
    "conditions = excluded.conditions, deleting = excluded.deleting, "                             \
    "updated_ms = excluded.updated_ms, json = excluded.json"

static const char *const s_sql[S_STMT_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    /* An upsert whose update leaves owner_kind and owner_name alone, so SQLite does not rewrite
     * the row's observed_by_owner entry (one page less per commit): it changes nothing (0 rows)
     * when the stored row has another owner, and then S_OBS_UPSERT_OWNER runs (store_flush). */
    [S_OBS_UPSERT] = S_OBS_UPSERT_HEAD S_OBS_UPSERT_TAIL " WHERE owner_kind IS excluded.owner_kind "
                                                         "AND owner_name IS excluded.owner_name",
    /* The same upsert, every column: the row's owner changed. */
    [S_OBS_UPSERT_OWNER] = S_OBS_UPSERT_HEAD
    "owner_kind = excluded.owner_kind, owner_name = excluded.owner_name, " S_OBS_UPSERT_TAIL,
    [S_OBS_DELETE] = "DELETE FROM observed_objects "
                     "WHERE cluster = ?1 AND kind = ?2 AND namespace = ?3 AND name = ?4",
    [S_OBS_GET] = "SELECT " S_OBS_COLS " FROM observed_objects "
                  "WHERE cluster = ?1 AND kind = ?2 AND namespace = ?3 AND name = ?4",
    [S_OBS_LIST_OWNER] = "SELECT " S_OBS_COLS " FROM observed_objects "
                         "WHERE cluster = ?1 AND namespace = ?2 AND owner_kind = ?3 "
                         "AND owner_name = ?4 AND (?5 IS NULL OR owner_uid = ?5) "
                         "ORDER BY kind, name",
    /* Every column but the JSON (read as NULL), through the primary key's (cluster, kind) prefix.
     */
    [S_OBS_SCAN] = "SELECT cluster, api_group, kind, namespace, name, uid, resource_version, "
                   "generation, owner_kind, owner_name, owner_uid, phase, conditions, deleting, "
                   "updated_ms, NULL FROM observed_objects WHERE cluster = ?1 AND kind = ?2 "
                   "AND (?3 IS NULL OR namespace = ?3)",
    /* The same scan with the object's JSON (scrape-time metrics). */
    [S_OBS_SCAN_JSON] = "SELECT " S_OBS_COLS " FROM observed_objects WHERE cluster = ?1 AND "
                        "kind = ?2 AND (?3 IS NULL OR namespace = ?3)",
    /* A name range of one kind in one namespace, through the primary key. */
    [S_OBS_LIST_PREFIX] = "SELECT " S_OBS_COLS " FROM observed_objects "
                          "WHERE cluster = ?1 AND kind = ?2 AND namespace = ?3 "
                          "AND name >= ?4 AND name < ?5 ORDER BY name",
    [S_DES_PUT] = "INSERT OR REPLACE INTO desired_objects (" S_DES_COLS ") "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [S_DES_DELETE_ONE] = "DELETE FROM desired_objects WHERE cluster = ?1 AND namespace = ?2 "
                         "AND owner_kind = ?3 AND owner_name = ?4 AND child_kind = ?5 "
                         "AND child_name = ?6",
    [S_DES_DELETE_OWNER] = "DELETE FROM desired_objects WHERE cluster = ?1 AND namespace = ?2 "
                           "AND owner_kind = ?3 AND owner_name = ?4",
    [S_DES_LIST_OWNER] = "SELECT " S_DES_COLS " FROM desired_objects "
                         "WHERE cluster = ?1 AND namespace = ?2 AND owner_kind = ?3 "
                         "AND owner_name = ?4 ORDER BY child_kind, child_name",
    [S_AUDIT_INSERT] =
        "INSERT INTO audit (" STORE_AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
        "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    [S_AUDIT_TARGET] = "SELECT " STORE_AUDIT_COLUMNS ", id FROM audit "
                       "WHERE cluster = ?1 AND target_kind = ?2 AND target_namespace = ?3 "
                       "AND target_name = ?4 AND time_ms >= ?5 AND time_ms < ?6 "
                       "ORDER BY time_ms DESC, id DESC LIMIT ?7",
    /* The result of a write written over its intent row (store_audit_resolve()): the oldest
     * pending row of the same correlation id, verb and target (?23 the name the intent used),
     * found through audit_by_correlation. No such row: the flush inserts the result instead. */
    [S_AUDIT_RESOLVE] =
        "UPDATE audit SET target_name = ?9, target_uid = coalesce(?10, target_uid), "
        "reason = ?12, message = ?13, result_status = ?20, result_error = ?21, "
        "latency_ms = ?22 WHERE id = (SELECT id FROM audit "
        "WHERE correlation_id = ?18 AND verb = ?11 AND cluster = ?5 "
        "AND target_kind = ?7 AND target_namespace = ?8 AND target_name = ?23 "
        "AND result_status = 0 AND result_error = '" STORE_AUDIT_PENDING "' "
        "ORDER BY id LIMIT 1)",
    [S_LEASE_GET] = "SELECT name, holder, acquired_ms, renewed_ms, expires_ms, transitions "
                    "FROM leases WHERE name = ?1",
    [S_LEASE_PUT] = "INSERT INTO leases (name, holder, acquired_ms, renewed_ms, expires_ms, "
                    "transitions) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                    "acquired_ms = excluded.acquired_ms, renewed_ms = excluded.renewed_ms, "
                    "expires_ms = excluded.expires_ms, transitions = excluded.transitions",
    [S_LEASE_RELEASE] = "UPDATE leases SET holder = '', expires_ms = 0, renewed_ms = ?3 "
                        "WHERE name = ?1 AND holder = ?2",
    [S_LEASE_SCAN] = "SELECT name, holder, acquired_ms, renewed_ms, expires_ms, transitions "
                     "FROM leases WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name LIMIT ?2",
};

/* How a struct member maps to its column. */
typedef enum {
    F_KEY, /* const char *: NULL is stored as "" (key and lookup columns) */
    F_TEXT, /* const char *: NULL is stored as NULL */
    F_SUMMARY, /* as F_TEXT, cut to STORE_AUDIT_SUMMARY_MAX bytes */
    F_I64, /* int64_t */
    F_I64_NZ, /* int64_t: 0 is stored as NULL (and read back as 0) */
    F_U64_NZ, /* uint64_t: 0 is stored as NULL */
    F_TIME, /* int64_t wall-clock ms: 0 is stored as now */
    F_INT, /* int */
    F_BOOL /* bool, stored as 0/1 */
} s_kind_t;

typedef struct {
    size_t off; /* offsetof() the member */
    s_kind_t kind; /* its mapping */
} s_field_t;

static const s_field_t s_obs_fields[] = {
    {offsetof(store_observed_t, cluster), F_KEY},
    {offsetof(store_observed_t, api_group), F_KEY},
    {offsetof(store_observed_t, kind), F_KEY},
    {offsetof(store_observed_t, ns), F_KEY},
    {offsetof(store_observed_t, name), F_KEY},
    {offsetof(store_observed_t, uid), F_TEXT},
    {offsetof(store_observed_t, resource_version), F_TEXT},
    {offsetof(store_observed_t, generation), F_I64},
    {offsetof(store_observed_t, owner_kind), F_KEY},
    {offsetof(store_observed_t, owner_name), F_KEY},
    {offsetof(store_observed_t, owner_uid), F_TEXT},
    {offsetof(store_observed_t, phase), F_TEXT},
    {offsetof(store_observed_t, conditions), F_TEXT},
    {offsetof(store_observed_t, deleting), F_BOOL},
    {offsetof(store_observed_t, updated_ms), F_TIME},
    {offsetof(store_observed_t, json), F_TEXT},
};
#define S_OBS_NFIELDS ((int)(sizeof(s_obs_fields) / sizeof(s_obs_fields[0])))

static const s_field_t s_des_fields[] = {
    {offsetof(store_desired_t, cluster), F_KEY},
    {offsetof(store_desired_t, ns), F_KEY},
    {offsetof(store_desired_t, owner_kind), F_KEY},
    {offsetof(store_desired_t, owner_name), F_KEY},
    {offsetof(store_desired_t, owner_uid), F_TEXT},
    {offsetof(store_desired_t, child_group), F_KEY},
    {offsetof(store_desired_t, child_kind), F_KEY},
    {offsetof(store_desired_t, child_name), F_KEY},
    {offsetof(store_desired_t, spec_hash), F_TEXT},
    {offsetof(store_desired_t, json), F_TEXT},
    {offsetof(store_desired_t, reason), F_TEXT},
    {offsetof(store_desired_t, correlation_id), F_TEXT},
    {offsetof(store_desired_t, decided_ms), F_TIME},
};
#define S_DES_NFIELDS ((int)(sizeof(s_des_fields) / sizeof(s_des_fields[0])))

static const s_field_t s_audit_fields[] = {
    {offsetof(store_audit_t, time_ms), F_TIME},
    {offsetof(store_audit_t, actor_service), F_TEXT},
    {offsetof(store_audit_t, actor_replica), F_TEXT},
    {offsetof(store_audit_t, actor_version), F_TEXT},
    {offsetof(store_audit_t, cluster), F_KEY},
    {offsetof(store_audit_t, target_group), F_KEY},
    {offsetof(store_audit_t, target_kind), F_KEY},
    {offsetof(store_audit_t, target_namespace), F_KEY},
    {offsetof(store_audit_t, target_name), F_KEY},
    {offsetof(store_audit_t, target_uid), F_TEXT},
    {offsetof(store_audit_t, verb), F_TEXT},
    {offsetof(store_audit_t, reason), F_TEXT},
    {offsetof(store_audit_t, message), F_TEXT},
    {offsetof(store_audit_t, cause_key), F_TEXT},
    {offsetof(store_audit_t, cause_generation), F_I64_NZ},
    {offsetof(store_audit_t, cause_resource_version), F_TEXT},
    {offsetof(store_audit_t, cause_event_id), F_U64_NZ},
    {offsetof(store_audit_t, correlation_id), F_TEXT},
    {offsetof(store_audit_t, request_summary), F_SUMMARY},
    {offsetof(store_audit_t, result_status), F_INT},
    {offsetof(store_audit_t, result_error), F_TEXT},
    {offsetof(store_audit_t, latency_ms), F_I64},
};
#define S_AUDIT_NFIELDS ((int)(sizeof(s_audit_fields) / sizeof(s_audit_fields[0])))

/* One parameter value of a queued write. */
typedef struct {
    int type; /* SQLITE_TEXT, SQLITE_INTEGER or SQLITE_NULL */
    int len; /* text length in bytes */
    int64_t i; /* the integer */
    const char *s; /* the text (inside the op once queued) */
} s_val_t;

/* One queued write: a statement and its parameters, laid out in one piece of a chunk. */
typedef struct s_op {
    struct s_op *next; /* FIFO link */
    size_t bytes; /* size of this piece */
    int stmt; /* index into s->stmts */
    int nvals; /* parameters ?1..?nvals */
    s_val_t vals[]; /* the values, then the text bytes */
} s_op_t;

/* Queued writes are carved out of chunks of this size (a write larger than that gets a chunk of
 * its own), so queueing costs no malloc per row and a flush frees them at once. */
#define S_CHUNK_BYTES (256u * 1024u)

/* A piece of memory holding queued writes back to back. */
typedef struct s_chunk {
    struct s_chunk *next; /* older chunk */
    size_t cap; /* bytes in data[] */
    size_t used; /* bytes handed out */
    max_align_t data[]; /* the writes */
} s_chunk_t;

struct store {
    sqlite3 *db; /* the connection */
    char *path; /* for logs */
    struct metric_series *commit_hist; /* flush durations, or NULL (store_set_commit_metric) */
    bool readonly; /* opened with STORE_READONLY */
    unsigned owners; /* STORE_OBSERVED... bits of the owners whose tables are current here */
    int busy_timeout_ms; /* current busy timeout */
    size_t batch_max; /* queued writes that trigger an early flush */
    size_t flush_at; /* queue length at which a write tries the next early flush */
    sqlite3_stmt *stmts[S_STMT_COUNT]; /* prepared once, reused */
    s_op_t *head; /* oldest queued write */
    s_op_t *tail; /* newest queued write */
    s_chunk_t *chunks; /* the memory of the queued writes, newest chunk first */
    s_chunk_t *spare; /* one emptied chunk kept for reuse, or NULL */
    bool in_flush; /* a flush is running (no early flush from inside it) */
    bool hook_failing; /* the loop hook's last flush failed (log transitions) */
    int64_t
        every_ms; /* store_attach_loop_every(): least time between hook flushes, 0: every turn */
    int64_t last_hook_ms; /* loop clock of the hook's last flush */
    bool wake_armed; /* a timer will end the loop's sleep when the interval has passed */
    store_stats_t stats; /* counters */
};

int64_t store_wall_ms(void)
{
    return rftime_now_ms();
}

/* ---------------------------------------------------------------------------------------------
 * Opening, migrations, closing.
 */

static void s_log_db(const store_t *s, const char *what)
{
    char code[16];
    snprintf(code, sizeof(code), "%d", sqlite3_extended_errcode(s->db));
    log_error(what, "path", s->path, "sqlite_code", code, "sqlite_error", sqlite3_errmsg(s->db),
              NULL);
}

/* Maps an SQLite result code to an err_t. */
static int s_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ERR_BUSY;
    case SQLITE_NOMEM:
        return ERR_NOMEM;
    case SQLITE_READONLY:
        return ERR_STATE;
    default:
        return ERR_DB;
    }
}

/* Reads PRAGMA user_version into *out. */
static int s_user_version(store_t *s, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs SQL that returns no rows we need. Returns an SQLite code. */
static int s_exec(store_t *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* Reads the version of `owner` from schema_versions into *out (0: no row). Returns an SQLite code.
 */
static int s_owner_version(store_t *s, const char *owner, int *out)
{
    *out = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT version FROM schema_versions WHERE owner = ?1", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *out = sqlite3_column_int(st, 0);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Logs why a file is refused and returns ERR_STATE. */
static int s_refuse(const store_t *s, bool newer, const char *owner, int have, int want)
{
    char h[16];
    char w[16];
    snprintf(h, sizeof(h), "%d", have);
    snprintf(w, sizeof(w), "%d", want);
    log_error(newer ? "store: database schema is newer than this build; refusing to open it"
                    : "store: database schema is not current; open it read-write to migrate",
              "path", s->path, "owner", owner, "schema_version", h, "supported_version", w, NULL);
    return ERR_STATE;
}

/* Checks, before anything is written (even the switch to WAL rewrites the header), that this build
 * can use the file at layout version `uv`: returns 0, ERR_STATE (logged: the layout or the schema
 * of an owner in `want` is newer than this build or, read-only, not current; the file is left as it
 * was) or an error reading the versions. */
static int s_check(store_t *s, unsigned want, int uv)
{
    if (uv > STORE_LAYOUT_VERSION || (s->readonly && uv != STORE_LAYOUT_VERSION))
        return s_refuse(s, uv > STORE_LAYOUT_VERSION, "layout", uv, STORE_LAYOUT_VERSION);
    if (uv < STORE_LAYOUT_VERSION)
        return 0;
    for (int i = 0; i < S_OWN_COUNT; i++) {
        if (!(want & (STORE_OBSERVED << i)))
            continue;
        int v = 0;
        int rc = s_owner_version(s, s_schemas[i].owner, &v);
        if (rc != SQLITE_OK) {
            s_log_db(s, "store: cannot read the schema versions");
            return s_err(rc) ? s_err(rc) : ERR_DB;
        }
        if (v > s_schemas[i].nsteps || (s->readonly && v != s_schemas[i].nsteps))
            return s_refuse(s, v > s_schemas[i].nsteps, s_schemas[i].owner, v, s_schemas[i].nsteps);
    }
    return 0;
}

/* Begins a migration transaction and reads the layout version in it into *uv. */
static int s_begin_migration(store_t *s, int *uv)
{
    int rc = s_exec(s, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        s_log_db(s, "store: cannot begin a migration");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    rc = s_user_version(s, uv);
    if (rc != SQLITE_OK) {
        s_log_db(s, "store: cannot read the schema version");
        s_exec(s, "ROLLBACK");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    return 0;
}

/* Commits a migration step, or rolls it back (logged) when rc or the commit failed. */
static int s_end_migration(store_t *s, int rc)
{
    if (rc == SQLITE_OK)
        rc = s_exec(s, "COMMIT");
    if (rc == SQLITE_OK)
        return 0;
    s_log_db(s, "store: migration failed");
    s_exec(s, "ROLLBACK");
    return s_err(rc) ? s_err(rc) : ERR_DB;
}

/* Brings the file to the per-owner layout (STORE_LAYOUT_VERSION): creates schema_versions and, in a
 * legacy file (user_version 1 or 2: one global list that created all four owners' tables at
 * once), records the version each owner had there. Versions are read again inside the transaction,
 * so two processes opening a new file at once do not both convert it. */
static int s_layout(store_t *s)
{
    int uv = 0;
    int err = s_begin_migration(s, &uv);
    if (err)
        return err;
    if (uv >= STORE_LAYOUT_VERSION) {
        s_exec(s, "ROLLBACK");
        return uv > STORE_LAYOUT_VERSION ? s_refuse(s, true, "layout", uv, STORE_LAYOUT_VERSION)
                                         : 0;
    }
    int rc = s_exec(s, "CREATE TABLE schema_versions (owner TEXT PRIMARY KEY, "
                       "version INTEGER NOT NULL) STRICT");
    for (int i = 0; i < S_OWN_COUNT && rc == SQLITE_OK && uv > 0; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "INSERT INTO schema_versions VALUES ('%s', %d)",
                 s_schemas[i].owner, uv == 1 ? 1 : s_schemas[i].legacy);
        rc = s_exec(s, sql);
    }
    if (rc == SQLITE_OK) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_LAYOUT_VERSION);
        rc = s_exec(s, sql);
    }
    err = s_end_migration(s, rc);
    if (!err && uv > 0) {
        char from[16];
        snprintf(from, sizeof(from), "%d", uv);
        log_info("store: legacy schema mapped onto per-owner versions", "path", s->path,
                 "from_version", from, NULL);
    }
    return err;
}

/* Applies the missing migration steps of owner `i`, each in its own transaction together with the
 * bump of its version, so a crash leaves the file at a step boundary. */
static int s_migrate(store_t *s, int i)
{
    const s_schema_t *sc = &s_schemas[i];
    for (;;) {
        int uv = 0;
        int err = s_begin_migration(s, &uv);
        if (err)
            return err;
        int version = 0;
        int rc = s_owner_version(s, sc->owner, &version);
        if (rc == SQLITE_OK && version >= sc->nsteps) {
            s_exec(s, "ROLLBACK");
            return version > sc->nsteps ? s_refuse(s, true, sc->owner, version, sc->nsteps) : 0;
        }
        if (rc == SQLITE_OK)
            rc = s_exec(s, sc->steps[version]);
        if (rc == SQLITE_OK) {
            char sql[160];
            snprintf(sql, sizeof(sql),
                     "INSERT INTO schema_versions VALUES ('%s', %d) "
                     "ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
                     sc->owner, version + 1);
            rc = s_exec(s, sql);
        }
        err = s_end_migration(s, rc);
        if (err)
            return err;
        s->stats.migrations_applied++;
        char from[16];
        snprintf(from, sizeof(from), "%d", version);
        log_info("store: schema migrated", "path", s->path, "owner", sc->owner, "from_version",
                 from, NULL);
    }
}

/* Sets s->owners to the built-in owners whose tables the file holds at the current version. */
static int s_present(store_t *s)
{
    s->owners = 0;
    for (int i = 0; i < S_OWN_COUNT; i++) {
        int v = 0;
        int rc = s_owner_version(s, s_schemas[i].owner, &v);
        if (rc != SQLITE_OK) {
            s_log_db(s, "store: cannot read the schema versions");
            return s_err(rc) ? s_err(rc) : ERR_DB;
        }
        if (v == s_schemas[i].nsteps)
            s->owners |= STORE_OBSERVED << i;
    }
    return 0;
}

/* Sets the pragmas of a read-write connection. WAL lets readers in other processes read while we
 * write; synchronous=NORMAL in WAL mode loses at most the last commits on power loss, never
 * consistency. */
static int s_pragmas(store_t *s)
{
    if (!s->readonly) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        bool wal = rc == SQLITE_ROW && sqlite3_column_text(st, 0) &&
                   strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            s_log_db(s, "store: cannot set WAL mode");
            return rc == SQLITE_ROW ? ERR_DB : s_err(rc);
        }
        rc = s_exec(s, "PRAGMA synchronous = NORMAL");
        if (rc != SQLITE_OK)
            return s_err(rc);
    } else if (s_exec(s, "PRAGMA query_only = ON") != SQLITE_OK) {
        return ERR_DB;
    }
    return s_exec(s, "PRAGMA foreign_keys = ON") == SQLITE_OK ? 0 : ERR_DB;
}

/* The pragmas of the observed state's writer (the watcher), whose every commit rewrites big rows:
 * checkpoints come every STORE_OBSERVED_CHECKPOINT_PAGES WAL pages instead of SQLite's 1000, so a
 * page rewritten by many commits (a leaf, an index page, a reused overflow page) is copied into
 * the file once per checkpoint, and the checkpoint's two fsyncs are paid 1/N as often. Durability
 * is unchanged (a commit is in the WAL either way); only the WAL file grows larger between
 * checkpoints. */
static int s_observed_pragmas(store_t *s)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint = %d", STORE_OBSERVED_CHECKPOINT_PAGES);
    return s_exec(s, sql) == SQLITE_OK ? 0 : ERR_DB;
}

/* Prepares the statements of the owners present (the others stay NULL: their functions return
 * ERR_STATE). */
static int s_prepare(store_t *s)
{
    for (int i = 0; i < S_STMT_COUNT; i++) {
        if (s_sql_owner[i] != S_OWN_NONE && !(s->owners & (STORE_OBSERVED << s_sql_owner[i])))
            continue;
        int rc =
            sqlite3_prepare_v3(s->db, s_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[i], NULL);
        if (rc != SQLITE_OK) {
            s_log_db(s, "store: cannot prepare a statement");
            return s_err(rc);
        }
    }
    return 0;
}

/* The writer's files are private whatever the umask (privfs.h): the database is created (empty,
 * which SQLite takes as a new database) or tightened to mode 0600 before SQLite opens it, and
 * SQLite gives the -wal and -shm files it creates the mode of the database file; leftover ones of
 * an older version are tightened. ":memory:" and URIs are left to SQLite. Returns 0 or ERR_IO. */
static int s_private_files(const char *path)
{
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return 0;
    int fd = privfs_open(path, O_RDWR, PRIVFS_FILE_MODE);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == EISDIR
                   ? 0 // SQLite cannot open it either, and says why
                   : ERR_IO;
    close(fd);
    char side[PRIVFS_PATH_MAX];
    static const char *const ext[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        if (snprintf(side, sizeof(side), "%s%s", path, ext[i]) >= (int)sizeof(side) ||
            privfs_tighten(side) != 0)
            return ERR_IO;
    }
    return 0;
}

store_t *store_open(const char *path, int flags, int *err_out)
{
    int err = ERR_INVAL;
    store_t *s = NULL;
    unsigned want = (unsigned)flags & STORE_OWNERS_ALL;
    int mode = flags & ~STORE_OWNERS_ALL;
    if (!path || !*path || (mode != STORE_READWRITE && mode != STORE_READONLY))
        goto fail;
    err = ERR_NOMEM;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->path = strdup(path);
    if (!s->path)
        goto fail;
    s->readonly = mode == STORE_READONLY;
    if (!s->readonly && !want)
        want = STORE_OWNERS_ALL;
    s->batch_max = STORE_BATCH_MAX_DEFAULT;
    s->flush_at = STORE_BATCH_MAX_DEFAULT;
    s->busy_timeout_ms = STORE_BUSY_TIMEOUT_MS_DEFAULT;

    int oflags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (!s->readonly && s_private_files(path) != 0) {
        err = ERR_IO;
        log_error("store: cannot create the database file mode 0600", "path", path, "error",
                  strerror(errno), NULL);
        goto fail;
    }
    int rc = sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err = (rc & 0xff) == SQLITE_CANTOPEN ? ERR_NOTFOUND : s_err(rc);
        if (s->db)
            s_log_db(s, "store: cannot open the database");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, s->busy_timeout_ms);

    int version = 0;
    rc = s_user_version(s, &version);
    if (rc != SQLITE_OK) {
        s_log_db(s, "store: cannot read the schema version");
        err = (rc & 0xff) == SQLITE_NOTADB ? ERR_DB : s_err(rc);
        goto fail;
    }
    err = s_check(s, want, version);
    if (!err)
        err = s_pragmas(s);
    if (!err && !s->readonly && (want & STORE_OBSERVED))
        err = s_observed_pragmas(s);
    if (!err && !s->readonly)
        err = s_layout(s);
    for (int i = 0; i < S_OWN_COUNT && !err && !s->readonly; i++)
        if (want & (STORE_OBSERVED << i))
            err = s_migrate(s, i);
    if (!err)
        err = s_present(s);
    if (err)
        goto fail;
    s->stats.schema_version = STORE_LAYOUT_VERSION;
    err = s_prepare(s);
    if (err)
        goto fail;
    if (err_out)
        *err_out = 0;
    return s;
fail:
    if (err_out)
        *err_out = err;
    store_destroy(&s);
    return NULL;
}

/* Empties the queue. One standard-size chunk is kept so that a steady load allocates nothing. */
static void s_queue_clear(store_t *s)
{
    s_chunk_t *c = s->chunks;
    while (c) {
        s_chunk_t *next = c->next;
        if (!s->spare && c->cap == S_CHUNK_BYTES) {
            c->used = 0;
            c->next = NULL;
            s->spare = c;
        } else {
            free(c);
        }
        c = next;
    }
    s->chunks = NULL;
    s->head = NULL;
    s->tail = NULL;
    s->stats.queued = 0;
    s->stats.queued_bytes = 0;
}

void store_destroy(store_t **store_p)
{
    if (!store_p || !*store_p)
        return;
    store_t *s = *store_p;
    if (s->db && s->head && s->stmts[S_COMMIT] && store_flush(s) != 0) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", s->stats.queued);
        log_error("store: closing with unflushed writes; they are lost", "path", s->path, "writes",
                  n, NULL);
    }
    s_queue_clear(s);
    free(s->spare);
    for (int i = 0; i < S_STMT_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
    *store_p = NULL;
}

int store_set_busy_timeout(store_t *store, int ms)
{
    if (!store || ms < 0)
        return ERR_INVAL;
    store->busy_timeout_ms = ms;
    sqlite3_busy_timeout(store->db, ms);
    return 0;
}

int store_set_batch_max(store_t *store, size_t n)
{
    if (!store || n < 1 || n > STORE_QUEUE_MAX_OPS)
        return ERR_INVAL;
    store->batch_max = n;
    store->flush_at = n;
    return 0;
}

void store_stats(const store_t *store, store_stats_t *out)
{
    *out = store->stats;
}

const char *store_path(const store_t *store)
{
    return store ? store->path : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The write queue and the flush.
 */

static int s_bind(sqlite3_stmt *st, const s_val_t *vals, int n)
{
    for (int i = 0; i < n; i++) {
        int rc;
        if (vals[i].type == SQLITE_TEXT)
            rc = sqlite3_bind_text(st, i + 1, vals[i].s, vals[i].len, SQLITE_STATIC);
        else if (vals[i].type == SQLITE_INTEGER)
            rc = sqlite3_bind_int64(st, i + 1, vals[i].i);
        else
            rc = sqlite3_bind_null(st, i + 1);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Steps a statement that returns no rows and resets it. Returns the SQLite code of the step. */
static int s_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

void store_set_commit_metric(store_t *store, struct metric_series *hist)
{
    if (store)
        store->commit_hist = hist;
}

struct metric_series *store_commit_series(struct metrics *reg, const char *service)
{
    static const char name[] = "rayfleet_store_commit_duration_seconds";
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    if (!reg || !service)
        return NULL;
    metric_t *fam = metrics_find(reg, name);
    if (!fam)
        fam = metrics_histogram(reg, name,
                                "Duration of a SQLite write transaction (BEGIN to COMMIT) of this "
                                "service's database.",
                                (const char *const[]){"service", NULL}, bounds,
                                sizeof(bounds) / sizeof(bounds[0]));
    return fam ? metric_with(fam, (const char *const[]){service}) : NULL;
}

int store_flush(store_t *store)
{
    if (!store || store->readonly || !store->head || store->in_flush)
        return 0;
    store_t *s = store;
    int rc = s_step_done(s->stmts[S_BEGIN]);
    if (rc != SQLITE_DONE) {
        if (s_err(rc) == ERR_BUSY) {
            s->stats.busy++;
            return ERR_BUSY;
        }
        s_log_db(s, "store: cannot begin a flush");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    s->in_flush = true;
    int64_t began_us = s->commit_hist ? rftime_now_us() : 0;
    uint64_t written = 0;
    uint64_t dropped = 0;
    int err = 0;
    for (s_op_t *op = s->head; op; op = op->next) {
        sqlite3_stmt *st = s->stmts[op->stmt];
        rc = s_bind(st, op->vals, op->nvals);
        if (rc == SQLITE_OK)
            rc = s_step_done(st);
        if (rc == SQLITE_DONE && op->stmt == S_OBS_UPSERT && sqlite3_changes(s->db) == 0) {
            /* the stored row has another owner: the upsert that rewrites it */
            st = s->stmts[S_OBS_UPSERT_OWNER];
            rc = s_bind(st, op->vals, op->nvals);
            if (rc == SQLITE_OK)
                rc = s_step_done(st);
        }
        if (rc == SQLITE_DONE && op->stmt == S_AUDIT_RESOLVE && sqlite3_changes(s->db) == 0) {
            /* no pending intent row (pruned, or never written): the result becomes its own row */
            st = s->stmts[S_AUDIT_INSERT];
            rc = s_bind(st, op->vals, S_AUDIT_NFIELDS);
            if (rc == SQLITE_OK)
                rc = s_step_done(st);
        }
        if (rc == SQLITE_DONE) {
            written++;
            continue;
        }
        if (sqlite3_get_autocommit(s->db) || s_err(rc) == ERR_BUSY || s_err(rc) == ERR_NOMEM) {
            // The transaction is gone or cannot go on: keep the whole queue for the next flush.
            err = s_err(rc) ? s_err(rc) : ERR_DB;
            s_log_db(s, "store: flush failed; the batch is kept");
            goto rollback;
        }
        // This one write is refused (a constraint, a type): the statement was undone, the
        // transaction goes on. Retrying it would fail forever, so it is dropped.
        s_log_db(s, "store: a queued write was refused and dropped");
        dropped++;
    }
    rc = s_step_done(s->stmts[S_COMMIT]);
    if (rc != SQLITE_DONE) {
        err = s_err(rc) ? s_err(rc) : ERR_DB;
        if (err != ERR_BUSY)
            s_log_db(s, "store: commit failed; the batch is kept");
        goto rollback;
    }
    s->in_flush = false;
    if (s->commit_hist)
        metric_observe(s->commit_hist, (double)(rftime_now_us() - began_us) / 1e6);
    s->stats.flushes++;
    s->stats.rows_written += written;
    s->stats.dropped += dropped;
    s->flush_at = s->batch_max;
    s_queue_clear(s);
    return 0;
rollback:
    if (!sqlite3_get_autocommit(s->db))
        s_step_done(s->stmts[S_ROLLBACK]);
    s->in_flush = false;
    if (err == ERR_BUSY)
        s->stats.busy++;
    return err;
}

/* Cuts `len` to at most `max` bytes without splitting a UTF-8 sequence. */
static size_t s_utf8_cut(const char *p, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Builds the parameters of one row from a struct and its field table. */
static int s_vals_from(const void *row, const s_field_t *fields, int n, int64_t now, s_val_t *vals)
{
    const char *base = row;
    for (int i = 0; i < n; i++) {
        const void *p = base + fields[i].off;
        s_val_t *v = &vals[i];
        v->type = SQLITE_INTEGER;
        v->s = NULL;
        v->len = 0;
        switch (fields[i].kind) {
        case F_KEY:
        case F_TEXT:
        case F_SUMMARY: {
            const char *str = *(const char *const *)p;
            if (!str && fields[i].kind != F_KEY) {
                v->type = SQLITE_NULL;
                break;
            }
            str = str ? str : "";
            size_t len = strlen(str);
            if (fields[i].kind == F_SUMMARY)
                len = s_utf8_cut(str, len, STORE_AUDIT_SUMMARY_MAX);
            if (len > INT_MAX)
                return ERR_TOOBIG;
            v->type = SQLITE_TEXT;
            v->s = str;
            v->len = (int)len;
            break;
        }
        case F_I64:
            v->i = *(const int64_t *)p;
            break;
        case F_I64_NZ:
            v->i = *(const int64_t *)p;
            v->type = v->i ? SQLITE_INTEGER : SQLITE_NULL;
            break;
        case F_U64_NZ:
            v->i = (int64_t) * (const uint64_t *)p;
            v->type = v->i ? SQLITE_INTEGER : SQLITE_NULL;
            break;
        case F_TIME:
            v->i = *(const int64_t *)p;
            v->i = v->i ? v->i : now;
            break;
        case F_INT:
            v->i = *(const int *)p;
            break;
        case F_BOOL:
            v->i = *(const bool *)p ? 1 : 0;
            break;
        }
    }
    return 0;
}

/* Returns `bytes` of queue memory aligned for an s_op_t, or NULL when out of memory. */
static void *s_chunk_alloc(store_t *s, size_t bytes)
{
    bytes = (bytes + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    s_chunk_t *c = s->chunks;
    if (!c || c->cap - c->used < bytes) {
        if (bytes <= S_CHUNK_BYTES && s->spare) {
            c = s->spare;
            s->spare = NULL;
        } else {
            size_t cap = bytes > S_CHUNK_BYTES ? bytes : S_CHUNK_BYTES;
            c = malloc(sizeof(s_chunk_t) + cap);
            if (!c)
                return NULL;
            c->cap = cap;
            c->used = 0;
        }
        c->next = s->chunks;
        s->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += bytes;
    return p;
}

/* Copies `vals` into a new op and appends it to the queue, flushing first when the queue is at its
 * hard bound and after when it reaches the batch bound. */
static int s_enqueue(store_t *s, int stmt, const s_val_t *vals, int n)
{
    if (s->readonly || !s->stmts[stmt])
        return ERR_STATE;
    size_t bytes = sizeof(s_op_t) + (size_t)n * sizeof(s_val_t);
    for (int i = 0; i < n; i++)
        bytes += vals[i].type == SQLITE_TEXT ? (size_t)vals[i].len : 0;
    if (bytes > STORE_QUEUE_MAX_BYTES)
        return ERR_TOOBIG;
    if (s->stats.queued >= STORE_QUEUE_MAX_OPS ||
        s->stats.queued_bytes > STORE_QUEUE_MAX_BYTES - bytes) {
        // Full. Retrying a flush that just met a busy database on every write would block the loop
        // for a busy timeout per write, so only the next store_flush() call retries it.
        if (s->stats.queued < s->flush_at)
            return ERR_BUSY;
        int rc = store_flush(s);
        if (rc) {
            s->flush_at = SIZE_MAX;
            return rc;
        }
    }
    s_op_t *op = s_chunk_alloc(s, bytes);
    if (!op)
        return ERR_NOMEM;
    op->next = NULL;
    op->bytes = bytes;
    op->stmt = stmt;
    op->nvals = n;
    char *text = (char *)&op->vals[n];
    for (int i = 0; i < n; i++) {
        op->vals[i] = vals[i];
        if (vals[i].type == SQLITE_TEXT) {
            memcpy(text, vals[i].s, (size_t)vals[i].len);
            op->vals[i].s = text;
            text += vals[i].len;
        }
    }
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->stats.queued++;
    s->stats.queued_bytes += bytes;
    if (s->stats.queued >= s->flush_at && store_flush(s) != 0) {
        // The write is queued whatever the early flush says. A busy database is retried by the
        // next store_flush(), or early again once another batch has been queued.
        s->flush_at = s->stats.queued + s->batch_max;
    }
    return 0;
}

/* Text parameters for a key lookup or delete. */
static void s_key_vals(s_val_t *vals, const char *const *keys, int n)
{
    for (int i = 0; i < n; i++) {
        const char *k = keys[i] ? keys[i] : "";
        vals[i].type = SQLITE_TEXT;
        vals[i].s = k;
        vals[i].len = (int)strnlen(k, INT_MAX);
        vals[i].i = 0;
    }
}

static bool s_empty(const char *str)
{
    return !str || !*str;
}

/* ---------------------------------------------------------------------------------------------
 * Reading rows back into structs.
 */

/* Whether the member is a string. */
static bool s_is_text(const s_field_t *f)
{
    return f->kind == F_KEY || f->kind == F_TEXT || f->kind == F_SUMMARY;
}

/* Stores column i of the current row of `st` into the member of `mem` that fields[i] names; a text
 * member is set to `text` (the column's text, or a copy of it, or NULL). */
static void s_field_set(sqlite3_stmt *st, const s_field_t *fields, int i, char *mem,
                        const char *text)
{
    void *p = mem + fields[i].off;
    switch (fields[i].kind) {
    case F_KEY:
    case F_TEXT:
    case F_SUMMARY:
        *(const char **)p = text;
        break;
    case F_I64:
    case F_I64_NZ:
    case F_TIME:
        *(int64_t *)p = sqlite3_column_int64(st, i);
        break;
    case F_U64_NZ:
        *(uint64_t *)p = (uint64_t)sqlite3_column_int64(st, i);
        break;
    case F_INT:
        *(int *)p = sqlite3_column_int(st, i);
        break;
    case F_BOOL:
        *(bool *)p = sqlite3_column_int(st, i) != 0;
        break;
    }
}

/* Fills the struct at `out` laid out by `fields` from the current row of `st`, columns 0..n-1,
 * its strings pointing into the statement's row (valid until the next step or reset). */
static void s_row_view(sqlite3_stmt *st, const s_field_t *fields, int n, void *out)
{
    for (int i = 0; i < n; i++)
        s_field_set(st, fields, i, out,
                    s_is_text(&fields[i]) ? (const char *)sqlite3_column_text(st, i) : NULL);
}

/* Reads the current row of `st`, columns 0..n-1, into a new struct of `size` bytes laid out by
 * `fields`, with the text in the same allocation. Returns the struct or NULL (out of memory). */
static void *s_row_read(sqlite3_stmt *st, const s_field_t *fields, int n, size_t size)
{
    size_t bytes = size;
    for (int i = 0; i < n; i++) {
        if (s_is_text(&fields[i]) && sqlite3_column_type(st, i) != SQLITE_NULL) {
            sqlite3_column_text(st,
                                i); // converts first, so the byte count is the text's
            bytes += (size_t)sqlite3_column_bytes(st, i) + 1;
        }
    }
    char *mem = calloc(1, bytes);
    if (!mem)
        return NULL;
    char *arena = mem + size;
    for (int i = 0; i < n; i++) {
        const unsigned char *t = s_is_text(&fields[i]) ? sqlite3_column_text(st, i) : NULL;
        const char *copy = NULL;
        if (t) {
            size_t len = (size_t)sqlite3_column_bytes(st, i);
            memcpy(arena, t, len);
            arena[len] = '\0';
            copy = arena;
            arena += len + 1;
        }
        s_field_set(st, fields, i, mem, copy);
    }
    return mem;
}

/* A list being filled: rows are void * to structs read by s_row_read(). */
typedef struct {
    void **rows; /* the rows */
    size_t n; /* used */
    size_t cap; /* allocated */
} s_rows_t;

static void s_rows_free(void ***rows_p, size_t *n_p)
{
    if (!*rows_p)
        return;
    for (size_t i = 0; i < *n_p; i++)
        free((*rows_p)[i]);
    free(*rows_p);
    *rows_p = NULL;
    *n_p = 0;
}

/* Steps `st` (already bound) and collects up to `max` rows. Resets `st`. Returns 0, ERR_TOOBIG
 * (more rows than `max` and `strict`), ERR_NOMEM or an SQLite-derived error; on error `out` is
 * empty. Each row is read with `fields`, and when `id_col` >= 0 that column is stored as int64 at
 * `id_off`.
 */
static int s_collect(store_t *s, sqlite3_stmt *st, const s_field_t *fields, int n, size_t size,
                     size_t max, bool strict, int id_col, size_t id_off, s_rows_t *out)
{
    int err = 0;
    out->rows = NULL;
    out->n = 0;
    out->cap = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            s_log_db(s, "store: query failed");
            err = s_err(rc) ? s_err(rc) : ERR_DB;
            goto fail;
        }
        if (out->n >= max) {
            if (strict) {
                err = ERR_TOOBIG;
                goto fail;
            }
            break;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            void **rows = realloc(out->rows, cap * sizeof(*rows));
            if (!rows) {
                err = ERR_NOMEM;
                goto fail;
            }
            out->rows = rows;
            out->cap = cap;
        }
        void *row = s_row_read(st, fields, n, size);
        if (!row) {
            err = ERR_NOMEM;
            goto fail;
        }
        if (id_col >= 0)
            *(int64_t *)((char *)row + id_off) = sqlite3_column_int64(st, id_col);
        out->rows[out->n++] = row;
    }
    sqlite3_reset(st);
    return 0;
fail:
    sqlite3_reset(st);
    s_rows_free(&out->rows, &out->n);
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * Observed objects.
 */

int store_observed_upsert(store_t *store, const store_observed_t *row)
{
    if (!store || !row || s_empty(row->kind) || s_empty(row->name))
        return ERR_INVAL;
    s_val_t vals[S_OBS_NFIELDS];
    int rc = s_vals_from(row, s_obs_fields, S_OBS_NFIELDS, store_wall_ms(), vals);
    if (rc)
        return rc;
    return s_enqueue(store, S_OBS_UPSERT, vals, S_OBS_NFIELDS);
}

int store_observed_delete(store_t *store, const char *cluster, const char *kind, const char *ns,
                          const char *name)
{
    if (!store || s_empty(kind) || s_empty(name))
        return ERR_INVAL;
    const char *keys[] = {cluster, kind, ns, name};
    s_val_t vals[4];
    s_key_vals(vals, keys, 4);
    return s_enqueue(store, S_OBS_DELETE, vals, 4);
}

int store_observed_get(store_t *store, const char *cluster, const char *kind, const char *ns,
                       const char *name, store_observed_t **out)
{
    if (out)
        *out = NULL;
    if (!store || !out || s_empty(kind) || s_empty(name))
        return ERR_INVAL;
    const char *keys[] = {cluster, kind, ns, name};
    s_val_t vals[4];
    s_key_vals(vals, keys, 4);
    sqlite3_stmt *st = store->stmts[S_OBS_GET];
    if (!st)
        return ERR_STATE;
    s_bind(st, vals, 4);
    s_rows_t rows;
    int rc = s_collect(store, st, s_obs_fields, S_OBS_NFIELDS, sizeof(store_observed_t), 1, false,
                       -1, 0, &rows);
    if (rc)
        return rc;
    if (rows.n == 0) {
        free(rows.rows);
        return ERR_NOTFOUND;
    }
    *out = rows.rows[0];
    free(rows.rows);
    return 0;
}

void store_observed_free(store_observed_t **row_p)
{
    if (!row_p)
        return;
    free(*row_p);
    *row_p = NULL;
}

int store_observed_list_owner(store_t *store, const char *cluster, const char *ns,
                              const char *owner_kind, const char *owner_name, const char *owner_uid,
                              store_observed_list_t *out)
{
    if (out) {
        out->rows = NULL;
        out->n = 0;
    }
    if (!store || !out || s_empty(owner_kind) || s_empty(owner_name))
        return ERR_INVAL;
    const char *keys[] = {cluster, ns, owner_kind, owner_name};
    s_val_t vals[5];
    s_key_vals(vals, keys, 4);
    vals[4].type = SQLITE_NULL;
    if (owner_uid)
        s_key_vals(&vals[4], &owner_uid, 1);
    sqlite3_stmt *st = store->stmts[S_OBS_LIST_OWNER];
    if (!st)
        return ERR_STATE;
    s_bind(st, vals, 5);
    s_rows_t rows;
    int rc = s_collect(store, st, s_obs_fields, S_OBS_NFIELDS, sizeof(store_observed_t),
                       STORE_LIST_MAX, true, -1, 0, &rows);
    if (rc)
        return rc;
    out->rows = (store_observed_t **)rows.rows;
    out->n = rows.n;
    return 0;
}

int store_observed_list_prefix(store_t *store, const char *cluster, const char *kind,
                               const char *ns, const char *prefix, store_observed_list_t *out)
{
    if (out) {
        out->rows = NULL;
        out->n = 0;
    }
    size_t n = prefix ? strlen(prefix) : 0;
    if (!store || !out || s_empty(kind) || n == 0 || n > STORE_NAME_MAX ||
        (unsigned char)prefix[n - 1] == 0xff)
        return ERR_INVAL;
    /* the names in [prefix, prefix with its last byte + 1) are those that start with it */
    char end[STORE_NAME_MAX + 1];
    memcpy(end, prefix, n + 1);
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    const char *keys[] = {cluster, kind, ns, prefix, end};
    s_val_t vals[5];
    s_key_vals(vals, keys, 5);
    sqlite3_stmt *st = store->stmts[S_OBS_LIST_PREFIX];
    if (!st)
        return ERR_STATE;
    s_bind(st, vals, 5);
    s_rows_t rows;
    int rc = s_collect(store, st, s_obs_fields, S_OBS_NFIELDS, sizeof(store_observed_t),
                       STORE_LIST_MAX, true, -1, 0, &rows);
    if (rc)
        return rc;
    out->rows = (store_observed_t **)rows.rows;
    out->n = rows.n;
    return 0;
}

void store_observed_list_free(store_observed_list_t *list)
{
    if (list)
        s_rows_free((void ***)&list->rows, &list->n);
}

/* Steps the bound statement `st`, calling visit(st, ctx) on each row until it returns non-zero,
 * then resets `st` and clears its bindings. Returns 0, visit's value, or the step's error. */
static int s_scan(store_t *s, sqlite3_stmt *st, int (*visit)(sqlite3_stmt *, void *), void *ctx)
{
    int rc = SQLITE_DONE;
    int ret = 0;
    while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW)
        ret = visit(st, ctx);
    if (!ret && rc != SQLITE_DONE) {
        s_log_db(s, "store: scan failed");
        ret = s_err(rc) ? s_err(rc) : ERR_DB;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* The callback of store_observed_scan(). */
typedef struct {
    store_observed_fn fn;
    void *arg;
} s_obs_scan_t;

static int s_obs_visit(sqlite3_stmt *st, void *ctx)
{
    s_obs_scan_t *sc = ctx;
    store_observed_t row;
    s_row_view(st, s_obs_fields, S_OBS_NFIELDS, &row);
    return sc->fn(&row, sc->arg);
}

/* The scans by cluster, kind and (NULL: any) namespace, through statement `which`. */
static int s_observed_scan(store_t *store, int which, const char *cluster, const char *kind,
                           const char *ns, store_observed_fn fn, void *arg)
{
    if (!store || s_empty(kind) || !fn)
        return ERR_INVAL;
    sqlite3_stmt *st = store->stmts[which];
    if (!st)
        return ERR_STATE;
    const char *keys[] = {cluster, kind, ns};
    s_val_t vals[3];
    s_key_vals(vals, keys, 3);
    if (!ns)
        vals[2].type = SQLITE_NULL;
    s_bind(st, vals, 3);
    s_obs_scan_t sc = {fn, arg};
    return s_scan(store, st, s_obs_visit, &sc);
}

int store_observed_scan(store_t *store, const char *cluster, const char *kind, const char *ns,
                        store_observed_fn fn, void *arg)
{
    return s_observed_scan(store, S_OBS_SCAN, cluster, kind, ns, fn, arg);
}

int store_observed_scan_json(store_t *store, const char *cluster, const char *kind, const char *ns,
                             store_observed_fn fn, void *arg)
{
    return s_observed_scan(store, S_OBS_SCAN_JSON, cluster, kind, ns, fn, arg);
}

/* ---------------------------------------------------------------------------------------------
 * Desired objects.
 */

int store_desired_put(store_t *store, const store_desired_t *row)
{
    if (!store || !row || s_empty(row->owner_kind) || s_empty(row->owner_name) ||
        s_empty(row->child_kind) || s_empty(row->child_name))
        return ERR_INVAL;
    s_val_t vals[S_DES_NFIELDS];
    int rc = s_vals_from(row, s_des_fields, S_DES_NFIELDS, store_wall_ms(), vals);
    if (rc)
        return rc;
    return s_enqueue(store, S_DES_PUT, vals, S_DES_NFIELDS);
}

int store_desired_delete(store_t *store, const char *cluster, const char *ns,
                         const char *owner_kind, const char *owner_name, const char *child_kind,
                         const char *child_name)
{
    if (!store || s_empty(owner_kind) || s_empty(owner_name) || (child_kind && s_empty(child_name)))
        return ERR_INVAL;
    const char *keys[] = {cluster, ns, owner_kind, owner_name, child_kind, child_name};
    s_val_t vals[6];
    int n = child_kind ? 6 : 4;
    s_key_vals(vals, keys, n);
    return s_enqueue(store, child_kind ? S_DES_DELETE_ONE : S_DES_DELETE_OWNER, vals, n);
}

int store_desired_list_owner(store_t *store, const char *cluster, const char *ns,
                             const char *owner_kind, const char *owner_name,
                             store_desired_list_t *out)
{
    if (out) {
        out->rows = NULL;
        out->n = 0;
    }
    if (!store || !out || s_empty(owner_kind) || s_empty(owner_name))
        return ERR_INVAL;
    const char *keys[] = {cluster, ns, owner_kind, owner_name};
    s_val_t vals[4];
    s_key_vals(vals, keys, 4);
    sqlite3_stmt *st = store->stmts[S_DES_LIST_OWNER];
    if (!st)
        return ERR_STATE;
    s_bind(st, vals, 4);
    s_rows_t rows;
    int rc = s_collect(store, st, s_des_fields, S_DES_NFIELDS, sizeof(store_desired_t),
                       STORE_LIST_MAX, true, -1, 0, &rows);
    if (rc)
        return rc;
    out->rows = (store_desired_t **)rows.rows;
    out->n = rows.n;
    return 0;
}

void store_desired_list_free(store_desired_list_t *list)
{
    if (list)
        s_rows_free((void ***)&list->rows, &list->n);
}

/* ---------------------------------------------------------------------------------------------
 * Audit.
 */

int store_audit_append(store_t *store, const store_audit_t *rec)
{
    if (!store || !rec || s_empty(rec->verb))
        return ERR_INVAL;
    s_val_t vals[S_AUDIT_NFIELDS];
    int rc = s_vals_from(rec, s_audit_fields, S_AUDIT_NFIELDS, store_wall_ms(), vals);
    if (rc)
        return rc;
    return s_enqueue(store, S_AUDIT_INSERT, vals, S_AUDIT_NFIELDS);
}

int store_audit_resolve(store_t *store, const char *intent_name, const store_audit_t *rec)
{
    if (!store || !rec || s_empty(rec->verb) || s_empty(rec->correlation_id))
        return ERR_INVAL;
    s_val_t vals[S_AUDIT_NFIELDS + 1];
    int rc = s_vals_from(rec, s_audit_fields, S_AUDIT_NFIELDS, store_wall_ms(), vals);
    if (rc)
        return rc;
    const char *in = intent_name ? intent_name : rec->target_name;
    s_key_vals(&vals[S_AUDIT_NFIELDS], &in, 1);
    return s_enqueue(store, S_AUDIT_RESOLVE, vals, S_AUDIT_NFIELDS + 1);
}

int store_audit_query_target(store_t *store, const char *cluster, const char *kind, const char *ns,
                             const char *name, int64_t since_ms, int64_t until_ms, size_t limit,
                             store_audit_list_t *out)
{
    if (out) {
        out->rows = NULL;
        out->n = 0;
    }
    if (!store || !out || s_empty(kind) || s_empty(name) || limit < 1 || limit > STORE_LIST_MAX)
        return ERR_INVAL;
    const char *keys[] = {cluster, kind, ns, name};
    s_val_t vals[7];
    s_key_vals(vals, keys, 4);
    vals[4] = (s_val_t){.type = SQLITE_INTEGER, .i = since_ms};
    vals[5] = (s_val_t){.type = SQLITE_INTEGER, .i = until_ms ? until_ms : INT64_MAX};
    vals[6] = (s_val_t){.type = SQLITE_INTEGER, .i = (int64_t)limit};
    sqlite3_stmt *st = store->stmts[S_AUDIT_TARGET];
    if (!st)
        return ERR_STATE;
    s_bind(st, vals, 7);
    s_rows_t rows;
    int rc = s_collect(store, st, s_audit_fields, S_AUDIT_NFIELDS, sizeof(store_audit_t), limit,
                       false, S_AUDIT_NFIELDS, offsetof(store_audit_t, id), &rows);
    if (rc)
        return rc;
    out->rows = (store_audit_t **)rows.rows;
    out->n = rows.n;
    return 0;
}

void store_audit_list_free(store_audit_list_t *list)
{
    if (list)
        s_rows_free((void ***)&list->rows, &list->n);
}

/* ---------------------------------------------------------------------------------------------
 * Leases: written at once, each change in its own transaction.
 */

static bool s_lease_str_ok(const char *str)
{
    return str && *str && strnlen(str, STORE_LEASE_NAME_MAX + 1) <= STORE_LEASE_NAME_MAX;
}

/* Copies the current lease row of `st` (the columns of S_LEASE_GET) into *out. */
static void s_lease_row(sqlite3_stmt *st, store_lease_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *holder = (const char *)sqlite3_column_text(st, 1);
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    snprintf(out->holder, sizeof(out->holder), "%s", holder ? holder : "");
    out->acquired_ms = sqlite3_column_int64(st, 2);
    out->renewed_ms = sqlite3_column_int64(st, 3);
    out->expires_ms = sqlite3_column_int64(st, 4);
    out->transitions = sqlite3_column_int64(st, 5);
}

/* Reads the lease row of the bound S_LEASE_GET into *out. Returns 0, ERR_NOTFOUND or an error;
 * resets the statement. */
static int s_lease_read(store_t *s, store_lease_t *out)
{
    sqlite3_stmt *st = s->stmts[S_LEASE_GET];
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW)
        s_lease_row(st, out);
    else if (rc == SQLITE_DONE)
        err = ERR_NOTFOUND;
    else
        err = s_err(rc) ? s_err(rc) : ERR_DB;
    sqlite3_reset(st);
    return err;
}

int store_lease_try_acquire(store_t *store, const char *name, const char *holder,
                            int64_t duration_ms, int64_t now_ms, bool *renewed_out)
{
    if (!store || !s_lease_str_ok(name) || !s_lease_str_ok(holder) || duration_ms <= 0 ||
        now_ms > INT64_MAX - duration_ms)
        return ERR_INVAL;
    if (store->readonly || !store->stmts[S_LEASE_PUT])
        return ERR_STATE;
    store_t *s = store;
    int rc = s_step_done(s->stmts[S_BEGIN]);
    if (rc != SQLITE_DONE)
        return s_err(rc) ? s_err(rc) : ERR_DB;
    int err = 0;
    store_lease_t cur;
    sqlite3_bind_text(s->stmts[S_LEASE_GET], 1, name, -1, SQLITE_STATIC);
    err = s_lease_read(s, &cur);
    if (err && err != ERR_NOTFOUND)
        goto rollback;
    bool exists = err == 0;
    bool mine = exists && strcmp(cur.holder, holder) == 0;
    bool live = exists && cur.expires_ms > now_ms;
    if (live && !mine) {
        err = ERR_CONFLICT;
        goto rollback;
    }
    bool renewed = mine && live;
    sqlite3_stmt *st = s->stmts[S_LEASE_PUT];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, renewed ? cur.acquired_ms : now_ms);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_int64(st, 5, now_ms + duration_ms);
    sqlite3_bind_int64(st, 6, exists ? cur.transitions + (mine ? 0 : 1) : 0);
    rc = s_step_done(st);
    if (rc != SQLITE_DONE) {
        err = s_err(rc) ? s_err(rc) : ERR_DB;
        goto rollback;
    }
    rc = s_step_done(s->stmts[S_COMMIT]);
    if (rc != SQLITE_DONE) {
        err = s_err(rc) ? s_err(rc) : ERR_DB;
        goto rollback;
    }
    if (renewed_out)
        *renewed_out = renewed;
    return 0;
rollback:
    if (err != ERR_CONFLICT)
        s_log_db(s, "store: lease write failed");
    if (!sqlite3_get_autocommit(s->db))
        s_step_done(s->stmts[S_ROLLBACK]);
    return err;
}

int store_lease_release(store_t *store, const char *name, const char *holder)
{
    if (!store || !s_lease_str_ok(name) || !s_lease_str_ok(holder))
        return ERR_INVAL;
    if (store->readonly || !store->stmts[S_LEASE_RELEASE])
        return ERR_STATE;
    sqlite3_stmt *st = store->stmts[S_LEASE_RELEASE];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, store_wall_ms());
    int rc = s_step_done(st);
    if (rc != SQLITE_DONE) {
        s_log_db(store, "store: lease release failed");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    return sqlite3_changes(store->db) == 1 ? 0 : ERR_NOTFOUND;
}

int store_lease_get(store_t *store, const char *name, store_lease_t *out)
{
    if (!store || !out || !s_lease_str_ok(name))
        return ERR_INVAL;
    if (!store->stmts[S_LEASE_GET])
        return ERR_STATE;
    sqlite3_bind_text(store->stmts[S_LEASE_GET], 1, name, -1, SQLITE_STATIC);
    return s_lease_read(store, out);
}

/* The callback of store_lease_scan(). */
typedef struct {
    store_lease_fn fn;
    void *arg;
} s_lease_scan_t;

static int s_lease_visit(sqlite3_stmt *st, void *ctx)
{
    s_lease_scan_t *sc = ctx;
    store_lease_t lease;
    s_lease_row(st, &lease);
    return sc->fn(&lease, sc->arg);
}

int store_lease_scan(store_t *store, const char *prefix, size_t limit, store_lease_fn fn, void *arg)
{
    if (!store || !prefix || limit < 1 || limit > INT64_MAX || !fn)
        return ERR_INVAL;
    sqlite3_stmt *st = store->stmts[S_LEASE_SCAN];
    if (!st)
        return ERR_STATE;
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    s_lease_scan_t sc = {fn, arg};
    return s_scan(store, st, s_lease_visit, &sc);
}

/* ---------------------------------------------------------------------------------------------
 * Audit queries by filter and pruning.
 */

#include <unistd.h>

/* Appends " AND <cond>" with parameter number *np for a text criterion. */
static int s_filter_text(buf_t *sql, const char *col, const char *val, int *np)
{
    if (!val)
        return 0;
    return buf_printf(sql, " AND %s = ?%d", col, ++*np);
}

int store_audit_prepare(sqlite3 *db, const store_audit_filter_t *f, sqlite3_stmt **out,
                        buf_t *sql_out)
{
    if (out)
        *out = NULL;
    if (!db || !f || !out || f->order < STORE_AUDIT_NEWEST || f->order > STORE_AUDIT_LAST ||
        (f->order == STORE_AUDIT_LAST && !f->limit) || f->status_min < 0 ||
        f->status_max < f->status_min)
        return ERR_INVAL;
    buf_t sql;
    buf_init(&sql, 4096);
    int np = 0;
    int rc =
        buf_puts(&sql, f->order == STORE_AUDIT_LAST
                           ? "SELECT * FROM (SELECT " STORE_AUDIT_COLUMNS ", id FROM audit WHERE 1"
                           : "SELECT " STORE_AUDIT_COLUMNS ", id FROM audit WHERE 1");
    if (!rc)
        rc = s_filter_text(&sql, "cluster", f->cluster, &np);
    if (!rc)
        rc = s_filter_text(&sql, "target_kind", f->kind, &np);
    if (!rc)
        rc = s_filter_text(&sql, "target_namespace", f->ns, &np);
    if (!rc)
        rc = s_filter_text(&sql, "target_name", f->name, &np);
    if (!rc)
        rc = s_filter_text(&sql, "verb", f->verb, &np);
    if (!rc)
        rc = s_filter_text(&sql, "actor_service", f->actor, &np);
    if (!rc)
        rc = s_filter_text(&sql, "correlation_id", f->correlation_id, &np);
    if (!rc && f->status_max > 0) {
        if (f->status_min == f->status_max)
            rc = buf_printf(&sql, " AND result_status = %d", f->status_min);
        else
            rc = buf_printf(&sql, " AND result_status BETWEEN %d AND %d", f->status_min,
                            f->status_max);
    }
    if (!rc && f->errors_only)
        rc = buf_puts(&sql, " AND (result_status = 0 OR result_status >= 400 OR "
                            "result_error IS NOT NULL)");
    if (!rc && f->since_ms)
        rc = buf_printf(&sql, " AND time_ms >= %" PRId64, f->since_ms);
    if (!rc && f->until_ms)
        rc = buf_printf(&sql, " AND time_ms < %" PRId64, f->until_ms);
    if (!rc && f->after_id)
        rc = buf_printf(&sql, " AND id > %" PRId64, f->after_id);
    if (!rc)
        rc = buf_puts(&sql, f->order == STORE_AUDIT_OLDEST  ? " ORDER BY time_ms, id"
                            : f->order == STORE_AUDIT_BY_ID ? " ORDER BY id"
                                                            : " ORDER BY time_ms DESC, id DESC");
    if (!rc && f->limit)
        rc = buf_printf(&sql, " LIMIT %zu", f->limit);
    if (!rc && f->order == STORE_AUDIT_LAST)
        rc = buf_puts(&sql, ") ORDER BY time_ms, id");
    if (rc)
        goto done;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, buf_str(&sql), -1, &st, NULL) != SQLITE_OK) {
        rc = (sqlite3_errcode(db) & 0xff) == SQLITE_NOMEM ? ERR_NOMEM : ERR_DB;
        goto done;
    }
    const char *texts[] = {f->cluster, f->kind,          f->ns, f->name, f->verb,
                           f->actor,   f->correlation_id};
    int p = 0;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i])
            sqlite3_bind_text(st, ++p, texts[i], -1, SQLITE_TRANSIENT);
    *out = st;
    if (sql_out)
        rc = buf_puts(sql_out, buf_str(&sql));
    if (rc) {
        sqlite3_finalize(st);
        *out = NULL;
    }
done:
    buf_free(&sql);
    return rc;
}

int store_audit_query(store_t *store, const store_audit_filter_t *f, store_audit_list_t *out)
{
    if (out) {
        out->rows = NULL;
        out->n = 0;
    }
    if (!store || !f || !out || f->limit < 1 || f->limit > STORE_LIST_MAX)
        return ERR_INVAL;
    if (!(store->owners & STORE_AUDIT))
        return ERR_STATE;
    sqlite3_stmt *st = NULL;
    int rc = store_audit_prepare(store->db, f, &st, NULL);
    if (rc) {
        if (rc == ERR_DB)
            s_log_db(store, "store: cannot prepare an audit query");
        return rc;
    }
    s_rows_t rows;
    rc = s_collect(store, st, s_audit_fields, S_AUDIT_NFIELDS, sizeof(store_audit_t), f->limit,
                   false, S_AUDIT_NFIELDS, offsetof(store_audit_t, id), &rows);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    out->rows = (store_audit_t **)rows.rows;
    out->n = rows.n;
    return 0;
}

int store_audit_prune_chunk(store_t *store, int64_t before_ms, size_t max_rows, size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!store || max_rows < 1 || max_rows > STORE_PRUNE_CHUNK_MAX)
        return ERR_INVAL;
    if (store->readonly || !(store->owners & STORE_AUDIT))
        return ERR_STATE;
    // The oldest rows first, found through audit_by_time; one chunk per transaction.
    const char *sql = "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE time_ms < ?1 "
                      "ORDER BY time_ms LIMIT ?2)";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        s_log_db(store, "store: cannot prepare the audit prune");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int64(st, 2, (int64_t)max_rows);
    rc = s_exec(store, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    rc = sqlite3_step(st);
    size_t n = (size_t)sqlite3_changes(store->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        s_log_db(store, "store: audit prune failed");
        s_exec(store, "ROLLBACK");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    rc = s_exec(store, "COMMIT");
    if (rc != SQLITE_OK) {
        s_exec(store, "ROLLBACK");
        return s_err(rc) ? s_err(rc) : ERR_DB;
    }
    if (deleted)
        *deleted = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The read-only query connection.
 */

/* Progress handler period, in virtual machine instructions. */
#define S_QUERY_PROGRESS_OPS 1000

struct store_query {
    sqlite3 *db; /* the connection */
    int64_t deadline_ms; /* monotonic ms after which statements are interrupted, 0: none */
    bool timed_out; /* the deadline interrupted a statement */
    char why[STORE_QUERY_WHY_MAX]; /* the authorizer's first refusal, "" when none */
    char first_word[16]; /* the first word of the statement being prepared, upper case */
};

/* Pragmas that only read, allowed with a table/index name argument or none. A pragma with a value
 * to set ("PRAGMA x = v") is refused unless it is a name-taking one below. */
static const char *const s_query_name_pragmas[] = {
    "table_info",  "table_xinfo",      "index_list", "index_info",
    "index_xinfo", "foreign_key_list", "table_list",
};
static const char *const s_query_read_pragmas[] = {
    "user_version",    "schema_version", "page_count",    "page_size",
    "freelist_count",  "database_list",  "function_list", "collation_list",
    "compile_options", "encoding",       "data_version",  "application_id",
};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool s_in(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (sqlite3_stricmp(s, list[i]) == 0)
            return true;
    return false;
}

/* The statement kind an authorizer action stands for, for refusal messages. */
static const char *s_action_name(int action)
{
    switch (action) {
    case SQLITE_INSERT:
        return "INSERT";
    case SQLITE_UPDATE:
        return "UPDATE";
    case SQLITE_DELETE:
        return "DELETE";
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_VTABLE:
        return "CREATE";
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_VTABLE:
        return "DROP";
    case SQLITE_ALTER_TABLE:
        return "ALTER TABLE";
    case SQLITE_ATTACH:
        return "ATTACH";
    case SQLITE_DETACH:
        return "DETACH";
    case SQLITE_TRANSACTION:
        return "BEGIN/COMMIT/ROLLBACK";
    case SQLITE_SAVEPOINT:
        return "SAVEPOINT";
    case SQLITE_REINDEX:
        return "REINDEX";
    case SQLITE_ANALYZE:
        return "ANALYZE";
    default:
        return "this statement";
    }
}

static int s_query_auth(void *arg, int action, const char *a1, const char *a2, const char *db,
                        const char *trigger)
{
    (void)db;
    (void)trigger;
    store_query_t *q = arg;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        // a2 is the function name. load_extension is also disabled on the connection.
        if (a2 && sqlite3_stricmp(a2, "load_extension") == 0) {
            snprintf(q->why, sizeof(q->why), "the function load_extension() is not allowed");
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_PRAGMA:
        if (s_in(a1, s_query_name_pragmas,
                 sizeof(s_query_name_pragmas) / sizeof(s_query_name_pragmas[0])) ||
            (!a2 && s_in(a1, s_query_read_pragmas,
                         sizeof(s_query_read_pragmas) / sizeof(s_query_read_pragmas[0]))))
            return SQLITE_OK;
        snprintf(q->why, sizeof(q->why), "PRAGMA %.64s%s%.64s is not allowed", a1 ? a1 : "?",
                 a2 ? "=" : "", a2 ? a2 : "");
        return SQLITE_DENY;
    default:
        if (q->why[0])
            return SQLITE_DENY; // keep the first reason
        if ((action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) && a1 &&
            (sqlite3_stricmp(a1, "sqlite_master") == 0 ||
             sqlite3_stricmp(a1, "sqlite_temp_master") == 0 ||
             sqlite3_stricmp(a1, "sqlite_schema") == 0))
            snprintf(q->why, sizeof(q->why), "%s is not allowed (it changes the schema)",
                     q->first_word[0] ? q->first_word : "a schema change");
        else
            snprintf(q->why, sizeof(q->why), "%s is not allowed", s_action_name(action));
        return SQLITE_DENY;
    }
}

static int s_query_progress(void *arg)
{
    store_query_t *q = arg;
    if (q->deadline_ms && s_mono_ms() >= q->deadline_ms) {
        q->timed_out = true;
        return 1;
    }
    return 0;
}

/* Appends `path` to `b` as the path of a file: URI (percent-encoding what URIs reserve). */
static int s_uri_path(buf_t *b, const char *path)
{
    int rc = buf_puts(b, "file:");
    for (const unsigned char *p = (const unsigned char *)path; !rc && *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7f)
            rc = buf_printf(b, "%%%02X", *p);
        else
            rc = buf_append(b, p, 1);
    }
    return rc ? rc : buf_puts(b, "?mode=ro");
}

static bool s_schema_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64 || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')))
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
            return false;
    return true;
}

store_query_t *store_query_open(const char *path, const store_query_attach_t *extra, size_t nextra,
                                int *err_out)
{
    int err = ERR_INVAL;
    store_query_t *q = NULL;
    buf_t uri;
    buf_init(&uri, 8192);
    if (!path || !*path || (nextra && !extra))
        goto fail;
    for (size_t i = 0; i < nextra; i++)
        if (!s_schema_name_ok(extra[i].schema) || !extra[i].path || !*extra[i].path)
            goto fail;
    err = ERR_NOTFOUND;
    if (access(path, F_OK) != 0)
        goto fail;
    for (size_t i = 0; i < nextra; i++)
        if (access(extra[i].path, F_OK) != 0)
            goto fail;
    err = ERR_NOMEM;
    q = calloc(1, sizeof(*q));
    if (!q || s_uri_path(&uri, path))
        goto fail;
    err = ERR_DB;
    int rc = sqlite3_open_v2(buf_str(&uri), &q->db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("store: cannot open for queries", "path", path, "sqlite_error",
                  q->db ? sqlite3_errmsg(q->db) : "", NULL);
        goto fail;
    }
    sqlite3_busy_timeout(q->db, STORE_BUSY_TIMEOUT_MS_DEFAULT * 40);
    if (sqlite3_db_config(q->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL) !=
            SQLITE_OK ||
        sqlite3_exec(q->db, "PRAGMA query_only = ON", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < nextra; i++) {
        buf_reset(&uri);
        if (s_uri_path(&uri, extra[i].path)) {
            err = ERR_NOMEM;
            goto fail;
        }
        char *sql = sqlite3_mprintf("ATTACH %Q AS \"%w\"", buf_str(&uri), extra[i].schema);
        if (!sql) {
            err = ERR_NOMEM;
            goto fail;
        }
        rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
        sqlite3_free(sql);
        if (rc != SQLITE_OK) {
            log_error("store: cannot attach for queries", "path", extra[i].path, "sqlite_error",
                      sqlite3_errmsg(q->db), NULL);
            goto fail;
        }
    }
    // From here on the authorizer decides: no further ATTACH, no writes, no pragma writes.
    sqlite3_set_authorizer(q->db, s_query_auth, q);
    sqlite3_progress_handler(q->db, S_QUERY_PROGRESS_OPS, s_query_progress, q);
    buf_free(&uri);
    if (err_out)
        *err_out = 0;
    return q;
fail:
    buf_free(&uri);
    store_query_close(&q);
    if (err_out)
        *err_out = err;
    return NULL;
}

int store_query_prepare(store_query_t *q, const char *sql, sqlite3_stmt **out, buf_t *why)
{
    if (out)
        *out = NULL;
    if (why)
        buf_reset(why);
    if (!q || !sql || !out || !why)
        return ERR_INVAL;
    size_t len = strnlen(sql, STORE_QUERY_SQL_MAX + 1);
    if (len > STORE_QUERY_SQL_MAX) {
        buf_printf(why, "the query is longer than %u bytes", STORE_QUERY_SQL_MAX);
        return ERR_INVAL;
    }
    q->why[0] = '\0';
    size_t w = 0;
    const char *p0 = sql;
    while (*p0 == ' ' || *p0 == '\t' || *p0 == '\n' || *p0 == '\r')
        p0++;
    while (w + 1 < sizeof(q->first_word) && ((*p0 | 32) >= 'a' && (*p0 | 32) <= 'z'))
        q->first_word[w++] = (char)(*p0++ & ~32);
    q->first_word[w] = '\0';
    const char *tail = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, (int)len, &st, &tail);
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_NOMEM)
            return ERR_NOMEM;
        if (q->why[0])
            buf_puts(why, q->why);
        else
            buf_printf(why, "%s", sqlite3_errmsg(q->db));
        return q->why[0] ? ERR_FORBIDDEN : ERR_PARSE;
    }
    if (!st) {
        buf_puts(why, "the query is empty");
        return ERR_INVAL;
    }
    for (const char *p = tail; p && *p; p++) {
        if (p[0] == '-' && p[1] == '-') {
            while (p[1] && p[1] != '\n')
                p++;
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (end) {
                p = end + 1;
                continue;
            }
        }
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != ';') {
            sqlite3_finalize(st);
            buf_puts(why, "more than one statement is not allowed");
            return ERR_FORBIDDEN;
        }
    }
    if (!sqlite3_stmt_readonly(st)) {
        sqlite3_finalize(st);
        buf_puts(why, "a statement that writes is not allowed");
        return ERR_FORBIDDEN;
    }
    *out = st;
    return 0;
}

void store_query_set_timeout(store_query_t *q, int64_t timeout_ms)
{
    if (!q)
        return;
    q->timed_out = false;
    q->deadline_ms = timeout_ms > 0 ? s_mono_ms() + timeout_ms : 0;
}

bool store_query_timed_out(const store_query_t *q)
{
    return q && q->timed_out;
}

sqlite3 *store_query_handle(store_query_t *q)
{
    return q ? q->db : NULL;
}

void store_query_close(store_query_t **q_p)
{
    if (!q_p || !*q_p)
        return;
    sqlite3_close_v2((*q_p)->db);
    free(*q_p);
    *q_p = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The event loop hook.
 */

static int64_t s_wake_timer(loop_t *loop, int64_t id, void *arg)
{
    store_t *s = arg;
    s->wake_armed = false; // the hook of this loop turn flushes
    return LOOP_TIMER_DONE;
}

static int s_flush_hook(loop_t *loop, void *arg)
{
    store_t *s = arg;
    if (s->every_ms > 0) {
        int64_t now = loop_clock_ms();
        if (s->stats.queued == 0)
            return 0;
        int64_t due = s->last_hook_ms + s->every_ms;
        if (now < due) {
            // not yet: make sure the loop wakes up to flush even if nothing else happens
            if (!s->wake_armed && loop_add_timer(loop, due - now, s_wake_timer, s) >= 0)
                s->wake_armed = true;
            return 0;
        }
        s->last_hook_ms = now;
    }
    int rc = store_flush(s);
    if (rc && !s->hook_failing) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", s->stats.queued);
        log_warn("store: flush deferred; retrying every loop turn", "path", s->path, "error",
                 err_str(rc), "queued", n, NULL);
    } else if (!rc && s->hook_failing) {
        log_info("store: flush succeeded again", "path", s->path, NULL);
    }
    s->hook_failing = rc != 0;
    return 0;
}

int store_attach_loop(store_t *store, loop_t *loop)
{
    if (!store || !loop)
        return ERR_INVAL;
    return loop_add_before_sleep(loop, s_flush_hook, store);
}

int store_attach_loop_every(store_t *store, loop_t *loop, int64_t every_ms)
{
    if (!store || !loop || every_ms < 0 || every_ms > STORE_FLUSH_EVERY_MAX_MS)
        return ERR_INVAL;
    store->every_ms = every_ms;
    store->last_hook_ms = loop_clock_ms();
    return loop_add_before_sleep(loop, s_flush_hook, store);
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------------------------------------------------------------------------------------------
 * Self-test.
 */

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes every file in `dir`, then `dir`. */
static void s_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* One integer from a query on `db`, or -1. */
static int64_t s_test_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The EXPLAIN QUERY PLAN of `sql`, its detail lines joined, into `out`. */
static void s_test_plan(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    buf_t b;
    buf_init(&b, cap - 1);
    char q[2048];
    snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            buf_printf(&b, "%s; ", detail ? detail : "");
        }
    }
    sqlite3_finalize(st);
    snprintf(out, cap, "%s", buf_str(&b));
    buf_free(&b);
}

/* A pod row owned by RayCluster rc1 in namespace ns1. */
/* Scan callbacks: append "ns/name" of each row (or name of each lease) to a buf_t; stop with 7
 * when the buffer's text ends with "!". */
static int s_test_scan_obs(const store_observed_t *row, void *arg)
{
    buf_t *b = arg;
    if (row->json || strcmp(row->owner_uid, "uid-rc1") != 0 || row->updated_ms <= 0)
        return ERR_STATE;
    buf_printf(b, "%s/%s;", row->ns, row->name);
    return strcmp(row->name, "stop") == 0 ? 7 : 0;
}

static int s_test_scan_lease(const store_lease_t *lease, void *arg)
{
    buf_t *b = arg;
    buf_printf(b, "%s=%s;", lease->name, lease->holder);
    return 0;
}

static store_observed_t s_test_pod(const char *name, const char *phase, const char *json)
{
    return (store_observed_t){.cluster = "c1",
                              .api_group = "",
                              .kind = "Pod",
                              .ns = "ns1",
                              .name = name,
                              .uid = "uid-pod",
                              .resource_version = "101",
                              .generation = 0,
                              .owner_kind = "RayCluster",
                              .owner_name = "rc1",
                              .owner_uid = "uid-rc1",
                              .phase = phase,
                              .conditions = "Ready=True",
                              .deleting = false,
                              .updated_ms = 0,
                              .json = json};
}

/* Self-tests: makes the temporary directory `dir` (a mkdtemp template) and opens `file` in it
 * read-write. Returns the store, or NULL (the directory then removed). */
static store_t *s_test_db(char *dir, const char *file)
{
    if (!mkdtemp(dir))
        return NULL;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int err = 0;
    store_t *s = store_open(path, STORE_READWRITE, &err);
    if (!s)
        s_test_rmdir(dir);
    return s;
}

/* Self-test of intent rows and their results (store_audit_resolve()). Returns the number of
 * failed checks. */
static int s_test_resolve(bool verbose)
{
    (void)verbose;
    int failed = 0;
    char dir[] = "/tmp/rf-store-resolve-XXXXXX";
    store_t *s = s_test_db(dir, "r.db");
    if (!s)
        return 1;
    store_audit_t in = {.cluster = "c1",
                        .target_kind = "Pod",
                        .target_namespace = "ns1",
                        .target_name = "rc-worker-",
                        .verb = "create",
                        .correlation_id = "corr-a",
                        .request_summary = "{\"kind\":\"Pod\"}",
                        .result_error = STORE_AUDIT_PENDING};
    CHECK(store_audit_append(s, &in) == 0);
    CHECK(store_audit_append(s, &in) == 0); // a second create of the same prefix, same pass
    in.verb = "delete";
    in.target_name = "old";
    CHECK(store_audit_append(s, &in) == 0);
    CHECK(store_flush(s) == 0);
    CHECK(s_test_int(s->db, "SELECT count(*) FROM audit WHERE result_error = 'pending'") == 3);
    // the first create's result names the object the server made; the oldest pending row takes it
    store_audit_t res = in;
    res.verb = "create";
    res.target_name = "rc-worker-abcde";
    res.target_uid = "u1";
    res.message = "Created worker Pod ns1/rc-worker-abcde";
    res.request_summary = NULL;
    res.result_status = 201;
    res.result_error = NULL;
    res.latency_ms = 7;
    CHECK(store_audit_resolve(s, "rc-worker-", &res) == 0);
    CHECK(store_audit_resolve(s, "rc-worker-", &(store_audit_t){0}) == ERR_INVAL);
    CHECK(store_audit_resolve(NULL, "x", &res) == ERR_INVAL);
    // a result with no intent row (another correlation id) is a row of its own
    res.correlation_id = "corr-b";
    res.target_name = "lone";
    CHECK(store_audit_resolve(s, NULL, &res) == 0);
    CHECK(store_flush(s) == 0);
    CHECK(s_test_int(s->db, "SELECT count(*) FROM audit") == 4);
    CHECK(s_test_int(s->db, "SELECT id FROM audit WHERE target_name = 'rc-worker-abcde' AND "
                            "result_status = 201 AND result_error IS NULL AND target_uid = 'u1' "
                            "AND latency_ms = 7 AND request_summary LIKE '%Pod%'") == 1);
    CHECK(s_test_int(s->db, "SELECT count(*) FROM audit WHERE result_error = 'pending'") == 2);
    CHECK(s_test_int(s->db, "SELECT count(*) FROM audit WHERE target_name = 'lone' AND "
                            "correlation_id = 'corr-b' AND result_status = 201") == 1);
    store_destroy(&s);
    s_test_rmdir(dir);
    return failed;
}

/* Self-test of the audit filters, pruning and the read-only query connection. Returns the number
 * of failed checks. */
static int s_test_query(bool verbose)
{
    int failed = 0;
    char dir[] = "/tmp/rf-store-query-XXXXXX";
    store_t *s = s_test_db(dir, "q.db");
    if (!s)
        return 1;
    char path[256]; // the query connection opens the same file
    snprintf(path, sizeof(path), "%s/q.db", dir);
    int err = 0;
    for (int i = 0; i < 50; i++) {
        char name[32];
        char corr[32];
        snprintf(name, sizeof(name), "pod-%d", i % 5);
        snprintf(corr, sizeof(corr), "corr-%d", i / 10);
        store_audit_t rec = {.time_ms = 1000 + i,
                             .actor_service = i % 2 ? "scheduler" : "submitter",
                             .cluster = "c1",
                             .target_kind = "Pod",
                             .target_namespace = "ns1",
                             .target_name = name,
                             .verb = i % 3 ? "create" : "delete",
                             .correlation_id = corr,
                             .result_status = i % 7 ? 201 : 409,
                             .result_error = i % 7 ? NULL : "conflict"};
        CHECK(store_audit_append(s, &rec) == 0);
    }
    CHECK(store_flush(s) == 0);
    store_audit_list_t al;
    store_audit_filter_t f = {
        .cluster = "c1", .kind = "Pod", .ns = "ns1", .name = "pod-0", .limit = 100};
    CHECK(store_audit_query(s, &f, &al) == 0 && al.n == 10);
    if (al.n == 10)
        CHECK(al.rows[0]->time_ms == 1045 && al.rows[9]->time_ms == 1000 && al.rows[0]->id == 46);
    store_audit_list_free(&al);
    f = (store_audit_filter_t){
        .verb = "delete", .status_min = 400, .status_max = 499, .limit = 100};
    CHECK(store_audit_query(s, &f, &al) == 0 && al.n == 3); // i = 0, 21, 42
    store_audit_list_free(&al);
    f = (store_audit_filter_t){.errors_only = true, .actor = "submitter", .limit = 100};
    CHECK(store_audit_query(s, &f, &al) == 0 && al.n == 4); // i = 0, 14, 28, 42
    store_audit_list_free(&al);
    f = (store_audit_filter_t){.correlation_id = "corr-2",
                               .since_ms = 1022,
                               .until_ms = 1025,
                               .order = STORE_AUDIT_OLDEST,
                               .limit = 100};
    CHECK(store_audit_query(s, &f, &al) == 0 && al.n == 3);
    if (al.n == 3)
        CHECK(al.rows[0]->time_ms == 1022 && al.rows[2]->time_ms == 1024);
    store_audit_list_free(&al);
    f = (store_audit_filter_t){.name = "pod-1", .order = STORE_AUDIT_LAST, .limit = 3};
    CHECK(store_audit_query(s, &f, &al) == 0 && al.n == 3);
    if (al.n == 3)
        CHECK(al.rows[0]->time_ms == 1036 && al.rows[2]->time_ms == 1046);
    store_audit_list_free(&al);
    f = (store_audit_filter_t){.after_id = 45, .order = STORE_AUDIT_BY_ID, .limit = 2};
    CHECK(store_audit_query(s, &f, &al) == 0 && al.n == 2 && al.rows[0]->id == 46);
    store_audit_list_free(&al);
    f.order = 7;
    CHECK(store_audit_query(s, &f, &al) == ERR_INVAL);
    f = (store_audit_filter_t){.limit = 0};
    CHECK(store_audit_query(s, &f, &al) == ERR_INVAL);
    buf_t sql;
    buf_init(&sql, 4096);
    sqlite3_stmt *st = NULL;
    f = (store_audit_filter_t){.name = "x"};
    CHECK(store_audit_prepare(s->db, &f, &st, &sql) == 0 && st);
    CHECK(strstr(buf_str(&sql), "target_name = ?1") != NULL);
    // The one column list: the statement's columns are STORE_AUDIT_COLUMN_LIST's names, then id.
    static const char *const names[STORE_AUDIT_NCOLS] = {
        STORE_AUDIT_COLUMN_LIST(STORE_AUDIT_NAME_) "id"};
    CHECK(st && sqlite3_column_count(st) == STORE_AUDIT_NCOLS);
    for (int i = 0; st && i < sqlite3_column_count(st) && i < STORE_AUDIT_NCOLS; i++)
        CHECK(!strcmp(sqlite3_column_name(st, i), names[i]));
    sqlite3_finalize(st);
    CHECK(store_audit_prepare(NULL, &f, &st, NULL) == ERR_INVAL);

    // Pruning in chunks: the 20 oldest rows go, 7 at a time.
    size_t n = 99;
    CHECK(store_audit_prune_chunk(s, 1020, 7, &n) == 0 && n == 7);
    CHECK(store_audit_prune_chunk(s, 1020, 7, &n) == 0 && n == 7);
    CHECK(store_audit_prune_chunk(s, 1020, 7, &n) == 0 && n == 6);
    CHECK(store_audit_prune_chunk(s, 1020, 7, &n) == 0 && n == 0);
    CHECK(s_test_int(s->db, "SELECT count(*) FROM audit") == 30);
    CHECK(s_test_int(s->db, "SELECT min(time_ms) FROM audit") == 1020);
    CHECK(store_audit_prune_chunk(s, 1020, 0, &n) == ERR_INVAL);
    CHECK(store_audit_prune_chunk(NULL, 1020, 1, &n) == ERR_INVAL);
    store_t *ro = store_open(path, STORE_READONLY, &err);
    CHECK(ro && store_audit_prune_chunk(ro, 5000, 10, &n) == ERR_STATE);
    store_destroy(&ro);

    // The query connection: reads pass, everything else is refused with a reason.
    store_query_attach_t other = {"other", path};
    store_query_t *q = store_query_open(path, &other, 1, &err);
    CHECK(q != NULL && err == 0);
    if (q) {
        CHECK(store_query_prepare(q, "SELECT count(*) FROM audit JOIN other.audit USING (id);", &st,
                                  &sql) == 0 &&
              st);
        CHECK(st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 30);
        sqlite3_finalize(st);
        CHECK(store_query_prepare(q, "PRAGMA table_info(audit)", &st, &sql) == 0);
        sqlite3_finalize(st);
        struct {
            const char *sql;
            const char *why;
        } bad[] = {
            {"INSERT INTO leases VALUES ('a','b',1,1,1,1)", "INSERT is not allowed"},
            {"DELETE FROM audit", "DELETE is not allowed"},
            {"UPDATE audit SET verb = 'x'", "UPDATE is not allowed"},
            {"DROP TABLE audit", "DROP is not allowed (it changes the schema)"},
            {"CREATE TABLE t (x)", "CREATE is not allowed"},
            {"ATTACH 'x.db' AS x", "ATTACH is not allowed"},
            {"DETACH other", "DETACH is not allowed"},
            {"PRAGMA journal_mode = DELETE", "PRAGMA journal_mode=DELETE is not allowed"},
            {"PRAGMA writable_schema = 1", "PRAGMA writable_schema=1 is not allowed"},
            {"SELECT load_extension('x')", "load_extension() is not allowed"},
            {"SELECT 1; DELETE FROM audit", "more than one statement"},
            {"BEGIN", "BEGIN/COMMIT/ROLLBACK is not allowed"},
            {"  ", "empty"},
            {"SELEC 1", "syntax error"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int rc = store_query_prepare(q, bad[i].sql, &st, &sql);
            int want = i + 2 == sizeof(bad) / sizeof(bad[0])   ? ERR_INVAL
                       : i + 1 == sizeof(bad) / sizeof(bad[0]) ? ERR_PARSE
                                                               : ERR_FORBIDDEN;
            CHECK(rc == want && st == NULL && strstr(buf_str(&sql), bad[i].why));
            if (verbose || !strstr(buf_str(&sql), bad[i].why))
                printf("store: refused '%s': %s\n", bad[i].sql, buf_str(&sql));
        }
        CHECK(store_query_prepare(q, "SELECT 1 -- fine\n /* also */ ;", &st, &sql) == 0);
        sqlite3_finalize(st);
        // A runaway query stops at its deadline.
        CHECK(store_query_prepare(q,
                                  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM "
                                  "c) SELECT count(*) FROM c",
                                  &st, &sql) == 0);
        store_query_set_timeout(q, 50);
        CHECK(st && sqlite3_step(st) == SQLITE_INTERRUPT && store_query_timed_out(q));
        sqlite3_finalize(st);
        store_query_set_timeout(q, 0);
        CHECK(!store_query_timed_out(q) && store_query_handle(q) != NULL);
        CHECK(store_query_prepare(NULL, "SELECT 1", &st, &sql) == ERR_INVAL);
        store_query_close(&q);
        store_query_close(&q);
    }
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/missing.db", dir);
    CHECK(store_query_open(missing, NULL, 0, &err) == NULL && err == ERR_NOTFOUND);
    store_query_attach_t bad_name = {"x;y", path};
    CHECK(store_query_open(path, &bad_name, 1, &err) == NULL && err == ERR_INVAL);
    buf_free(&sql);
    store_destroy(&s);
    s_test_rmdir(dir);
    return failed;
}

int store_test(bool verbose)
{
    int failed = 0;
    char dir[] = "/tmp/rf-store-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    char newer[512];
    char older[512];
    snprintf(path, sizeof(path), "%s/state.db", dir);
    snprintf(newer, sizeof(newer), "%s/newer.db", dir);
    snprintf(older, sizeof(older), "%s/older.db", dir);
    int err = 0;
    store_stats_t stats;

    // Bad arguments and a missing file opened read-only.
    CHECK(store_open(NULL, STORE_READWRITE, &err) == NULL && err == ERR_INVAL);
    CHECK(store_open(path, 7, &err) == NULL && err == ERR_INVAL);
    CHECK(store_open(path, STORE_READONLY, &err) == NULL && err == ERR_NOTFOUND);
    store_destroy(NULL);

    // Private files whatever the umask: the database and its -wal and -shm are 0600 (privfs.h);
    // a leftover -wal of an older version, created wide, is tightened.
    {
        char priv[600], side[620];
        snprintf(priv, sizeof(priv), "%s/private.db", dir);
        snprintf(side, sizeof(side), "%s-wal", priv);
        FILE *old_wal = fopen(side, "w");
        CHECK(old_wal && fclose(old_wal) == 0 && chmod(side, 0666) == 0);
        mode_t um = umask(0);
        store_t *ps = store_open(priv, STORE_READWRITE | STORE_AUDIT, &err);
        umask(um);
        CHECK(ps != NULL);
        if (ps)
            CHECK(sqlite3_exec(ps->db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL,
                               NULL) == SQLITE_OK);
        const char *const ext[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < 3; i++) {
            struct stat st;
            snprintf(side, sizeof(side), "%s%s", priv, ext[i]);
            CHECK(stat(side, &st) == 0 && (st.st_mode & 07777) == 0600);
        }
        store_destroy(&ps);
    }

    // Migrations from zero (every owner's steps), then a reopen that applies nothing.
    store_t *s = store_open(path, STORE_READWRITE, &err);
    CHECK(s != NULL && err == 0);
    if (!s) {
        s_test_rmdir(dir);
        return SELFTEST_RESULT("store", verbose);
    }
    unsigned all_steps = 0;
    for (int i = 0; i < S_OWN_COUNT; i++)
        all_steps += (unsigned)s_schemas[i].nsteps;
    store_stats(s, &stats);
    CHECK(all_steps == 5 && stats.migrations_applied == all_steps);
    CHECK(stats.schema_version == STORE_LAYOUT_VERSION);
    sqlite3 *db = s->db;
    CHECK(s_test_int(db, "PRAGMA user_version") == STORE_LAYOUT_VERSION);
    CHECK(s_test_int(db, "SELECT version FROM schema_versions WHERE owner = 'audit'") == 2);
    CHECK(s_test_int(db, "SELECT sum(version) FROM schema_versions") == 5);
    CHECK(s_test_int(db, "PRAGMA foreign_keys") == 1);
    CHECK(s_test_int(db, "PRAGMA synchronous") == 1);
    CHECK(s_test_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = "
                         "'index' AND name LIKE "
                         "'audit_by_%'") == 6);
    store_destroy(&s);
    CHECK(s == NULL);
    s = store_open(path, STORE_READWRITE, &err);
    CHECK(s != NULL);
    if (!s) {
        s_test_rmdir(dir);
        return SELFTEST_RESULT("store", verbose);
    }
    store_stats(s, &stats);
    CHECK(stats.migrations_applied == 0 && stats.schema_version == STORE_LAYOUT_VERSION);
    db = s->db;
    CHECK(s_test_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'audit_by_cause'") == 1);

    // Files of the single global list that came before: at user_version 1 (the first release) and
    // 2 (the base of per-owner schemas, with rows). They are mapped and migrated, not recreated.
    for (int uv = 1; uv <= 2; uv++) {
        char legacy[512];
        snprintf(legacy, sizeof(legacy), "%s/legacy%d.db", dir, uv);
        sqlite3 *old = NULL;
        CHECK(sqlite3_open(legacy, &old) == SQLITE_OK);
        for (int i = 0; i < S_OWN_COUNT; i++)
            CHECK(sqlite3_exec(old, s_schemas[i].steps[0], NULL, NULL, NULL) == SQLITE_OK);
        if (uv == 2)
            CHECK(sqlite3_exec(old, s_audit_steps[1], NULL, NULL, NULL) == SQLITE_OK);
        CHECK(sqlite3_exec(old,
                           "INSERT INTO leases VALUES ('l/1', 'r/1', 1, 2, 3, 4);"
                           "INSERT INTO audit (time_ms, cluster, target_group, target_kind, "
                           "target_namespace, target_name, verb, result_status, latency_ms) "
                           "VALUES (5, 'c', '', 'Pod', 'ns', 'p', 'create', 201, 1)",
                           NULL, NULL, NULL) == SQLITE_OK);
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", uv);
        CHECK(sqlite3_exec(old, pragma, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(old);
        // A read-only open cannot map it; an open of one owner maps all four and migrates that one.
        CHECK(store_open(legacy, STORE_READONLY, &err) == NULL && err == ERR_STATE);
        store_t *s1 = store_open(legacy, STORE_READWRITE | STORE_LEASES, &err);
        CHECK(s1 != NULL);
        if (s1) {
            store_stats(s1, &stats);
            CHECK(stats.migrations_applied == 0 && stats.schema_version == STORE_LAYOUT_VERSION);
            CHECK(s_test_int(s1->db, "SELECT version FROM schema_versions WHERE owner = 'audit'") ==
                  uv);
            CHECK(s_test_int(s1->db, "SELECT count(*) FROM schema_versions WHERE version = 1") ==
                  (uv == 1 ? 4 : 3));
            store_lease_t l;
            CHECK(store_lease_get(s1, "l/1", &l) == 0 && l.transitions == 4);
            store_destroy(&s1);
        }
        s1 = store_open(legacy, STORE_READWRITE, &err);
        CHECK(s1 != NULL);
        if (s1) {
            store_stats(s1, &stats);
            CHECK(stats.migrations_applied == (uv == 1 ? 1u : 0u));
            CHECK(s_test_int(s1->db,
                             "SELECT count(*) FROM sqlite_master WHERE name = 'audit_by_cause'") ==
                  1);
            store_audit_list_t al = {0};
            CHECK(store_audit_query_target(s1, "c", "Pod", "ns", "p", 0, 0, 10, &al) == 0 &&
                  al.n == 1 && al.rows[0]->result_status == 201);
            store_audit_list_free(&al);
            store_destroy(&s1);
        }
        unlink(legacy);
    }

    // Each owner's tables only: a leases file has no observed, desired or audit table, and their
    // functions say so; a second owner added later gets its tables on its first open.
    char own[512];
    snprintf(own, sizeof(own), "%s/own.db", dir);
    store_t *so = store_open(own, STORE_READWRITE | STORE_LEASES, &err);
    CHECK(so != NULL);
    if (so) {
        store_stats(so, &stats);
        CHECK(stats.migrations_applied == 1);
        CHECK(s_test_int(so->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'") == 2);
        CHECK(store_lease_try_acquire(so, "x", "h", 1000, store_wall_ms(), NULL) == 0);
        CHECK(store_observed_upsert(so, &(store_observed_t){.kind = "Pod", .name = "p"}) ==
              ERR_STATE);
        CHECK(store_audit_append(so, &(store_audit_t){.verb = "create"}) == ERR_STATE);
        CHECK(store_audit_prune_chunk(so, 1, 10, NULL) == ERR_STATE);
        store_audit_list_t al = {0};
        CHECK(store_audit_query(so, &(store_audit_filter_t){.limit = 1}, &al) == ERR_STATE);
        store_destroy(&so);
    }
    // Read-only: an owner that is not there is refused; without owners, what is there is usable.
    CHECK(store_open(own, STORE_READONLY | STORE_AUDIT, &err) == NULL && err == ERR_STATE);
    so = store_open(own, STORE_READONLY, &err);
    CHECK(so != NULL);
    if (so) {
        store_lease_t l;
        CHECK(store_lease_get(so, "x", &l) == 0 && strcmp(l.holder, "h") == 0);
        store_observed_t *o = NULL;
        CHECK(store_observed_get(so, "", "Pod", "", "p", &o) == ERR_STATE && !o);
        store_destroy(&so);
    }
    so = store_open(own, STORE_READWRITE | STORE_AUDIT, &err);
    CHECK(so != NULL);
    if (so) {
        store_stats(so, &stats);
        CHECK(stats.migrations_applied == 2);
        CHECK(store_audit_append(so, &(store_audit_t){.verb = "create"}) == 0);
        CHECK(store_flush(so) == 0);
        CHECK(s_test_int(so->db, "SELECT count(*) FROM sqlite_schema WHERE name = "
                                 "'observed_objects' OR name = 'desired_objects'") == 0);
        // An owner's schema from a newer build refuses opens of that owner only, untouched.
        CHECK(sqlite3_exec(so->db, "UPDATE schema_versions SET version = 9 WHERE owner = 'audit'",
                           NULL, NULL, NULL) == SQLITE_OK);
        store_destroy(&so);
    }
    CHECK(store_open(own, STORE_READWRITE | STORE_AUDIT, &err) == NULL && err == ERR_STATE);
    CHECK(store_open(own, STORE_READWRITE, &err) == NULL && err == ERR_STATE);
    CHECK(store_open(own, STORE_READONLY | STORE_AUDIT, &err) == NULL && err == ERR_STATE);
    so = store_open(own, STORE_READWRITE | STORE_LEASES, &err);
    CHECK(so != NULL);
    if (so) {
        CHECK(s_test_int(so->db, "SELECT version FROM schema_versions WHERE owner = 'audit'") == 9);
        CHECK(store_audit_append(so, &(store_audit_t){.verb = "create"}) == ERR_STATE);
        store_destroy(&so);
    }
    CHECK(store_open(own, STORE_READWRITE | 0x1000, &err) == NULL && err == ERR_INVAL);

    sqlite3_stmt *jm = NULL;
    CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &jm, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(jm) == SQLITE_ROW &&
          strcmp((const char *)sqlite3_column_text(jm, 0), "wal") == 0);
    sqlite3_finalize(jm);
    CHECK(store_set_busy_timeout(s, -1) == ERR_INVAL);
    CHECK(store_set_batch_max(s, 0) == ERR_INVAL);
    CHECK(store_set_batch_max(s, STORE_QUEUE_MAX_OPS + 1) == ERR_INVAL);

    // A file from a newer version is refused and left untouched; an older file cannot be read by a
    // read-only open.
    sqlite3 *raw = NULL;
    CHECK(sqlite3_open(newer, &raw) == SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_LAYOUT_VERSION + 1);
    CHECK(sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    CHECK(store_open(newer, STORE_READWRITE, &err) == NULL && err == ERR_STATE);
    CHECK(store_open(newer, STORE_READONLY, &err) == NULL && err == ERR_STATE);
    raw = NULL;
    CHECK(sqlite3_open(newer, &raw) == SQLITE_OK);
    CHECK(s_test_int(raw, "PRAGMA user_version") == STORE_LAYOUT_VERSION + 1);
    CHECK(s_test_int(raw, "SELECT count(*) FROM sqlite_schema") == 0);
    sqlite3_stmt *mode = NULL;
    CHECK(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &mode, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(mode) == SQLITE_ROW &&
          strcmp((const char *)sqlite3_column_text(mode, 0), "delete") == 0);
    sqlite3_finalize(mode);
    sqlite3_close(raw);
    raw = NULL;
    CHECK(sqlite3_open(older, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw, "CREATE TABLE t (x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    CHECK(store_open(older, STORE_READONLY, &err) == NULL && err == ERR_STATE);

    // Observed rows: queued writes are invisible until the flush.
    store_observed_t pa = s_test_pod("pod-a", "Pending", "{\"kind\":\"Pod\"}");
    store_observed_t pb = s_test_pod("pod-b", "Pending", "{}");
    store_observed_t svc = s_test_pod("svc-head", NULL, "{}");
    svc.kind = "Service";
    store_observed_t other = s_test_pod("pod-z", "Running", "{}");
    other.owner_name = "rc2";
    CHECK(store_observed_upsert(s, &pa) == 0);
    CHECK(store_observed_upsert(s, &pb) == 0);
    CHECK(store_observed_upsert(s, &svc) == 0);
    CHECK(store_observed_upsert(s, &other) == 0);
    store_observed_t bad = pa;
    bad.name = "";
    CHECK(store_observed_upsert(s, &bad) == ERR_INVAL);
    CHECK(store_observed_upsert(s, NULL) == ERR_INVAL);
    store_observed_t *row = NULL;
    CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-a", &row) == ERR_NOTFOUND && !row);
    store_stats(s, &stats);
    CHECK(stats.queued == 4);
    CHECK(store_flush(s) == 0);
    CHECK(store_flush(s) == 0);
    store_stats(s, &stats);
    CHECK(stats.queued == 0 && stats.rows_written == 4 && stats.flushes == 1);
    CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-a", &row) == 0 && row);
    if (row) {
        CHECK(strcmp(row->cluster, "c1") == 0 && strcmp(row->api_group, "") == 0);
        CHECK(strcmp(row->name, "pod-a") == 0 && strcmp(row->phase, "Pending") == 0);
        CHECK(strcmp(row->owner_uid, "uid-rc1") == 0 && strcmp(row->json, pa.json) == 0);
        CHECK(row->updated_ms > 0 && !row->deleting && row->generation == 0);
    }
    store_observed_free(&row);
    CHECK(row == NULL);
    store_observed_free(&row);
    CHECK(store_observed_get(s, "c1", "Pod", "ns1", "", &row) == ERR_INVAL);
    pa.phase = "Running";
    pa.resource_version = "102";
    pa.deleting = true;
    pa.updated_ms = 1234;
    CHECK(store_observed_upsert(s, &pa) == 0);
    CHECK(store_flush(s) == 0);
    CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-a", &row) == 0 && row);
    if (row) {
        CHECK(strcmp(row->phase, "Running") == 0 && strcmp(row->resource_version, "102") == 0);
        CHECK(row->deleting && row->updated_ms == 1234);
    }
    store_observed_free(&row);
    CHECK(store_observed_get(s, "c1", "Service", "ns1", "svc-head", &row) == 0 && row);
    if (row)
        CHECK(row->phase == NULL);
    store_observed_free(&row);
    store_observed_list_t list;
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayCluster", "rc1", NULL, &list) == 0);
    CHECK(list.n == 3);
    if (list.n == 3) {
        CHECK(strcmp(list.rows[0]->name, "pod-a") == 0);
        CHECK(strcmp(list.rows[1]->name, "pod-b") == 0);
        CHECK(strcmp(list.rows[2]->kind, "Service") == 0);
    }
    store_observed_list_free(&list);
    CHECK(list.rows == NULL && list.n == 0);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayCluster", "rc1", "uid-rc1", &list) == 0);
    CHECK(list.n == 3);
    store_observed_list_free(&list);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayCluster", "rc1", "old-uid", &list) == 0);
    CHECK(list.n == 0);
    store_observed_list_free(&list);
    CHECK(store_observed_list_owner(s, "c1", "ns1", NULL, "rc1", NULL, &list) == ERR_INVAL);
    CHECK(store_observed_delete(s, "c1", "Pod", "ns1", "pod-b") == 0);
    CHECK(store_observed_delete(s, "c1", "Pod", "ns1", "never-was") == 0);
    CHECK(store_observed_delete(s, "c1", NULL, "ns1", "pod-b") == ERR_INVAL);
    CHECK(store_flush(s) == 0);
    CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-b", &row) == ERR_NOTFOUND);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayCluster", "rc1", NULL, &list) == 0);
    CHECK(list.n == 2);
    store_observed_list_free(&list);
    // An upsert that changes the owner moves the row to its new owner's list, in the same flush
    // as an upsert that keeps it; the fields of both are written.
    store_observed_t moved = pa;
    moved.owner_kind = "RayJob";
    moved.owner_name = "rj1";
    moved.resource_version = "103";
    CHECK(store_observed_upsert(s, &moved) == 0);
    moved.owner_name = "rj2";
    moved.resource_version = "104";
    CHECK(store_observed_upsert(s, &moved) == 0);
    moved.phase = "Succeeded";
    moved.resource_version = "105";
    CHECK(store_observed_upsert(s, &moved) == 0);
    CHECK(store_flush(s) == 0);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayCluster", "rc1", NULL, &list) == 0);
    CHECK(list.n == 1);
    store_observed_list_free(&list);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayJob", "rj1", NULL, &list) == 0);
    CHECK(list.n == 0);
    store_observed_list_free(&list);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayJob", "rj2", NULL, &list) == 0);
    CHECK(list.n == 1);
    if (list.n == 1) {
        CHECK(strcmp(list.rows[0]->name, "pod-a") == 0);
        CHECK(strcmp(list.rows[0]->resource_version, "105") == 0);
        CHECK(strcmp(list.rows[0]->phase, "Succeeded") == 0);
    }
    store_observed_list_free(&list);
    CHECK(store_observed_upsert(s, &pa) == 0); /* back to rc1 for what follows */
    CHECK(store_flush(s) == 0);
    CHECK(store_observed_list_owner(s, "c1", "ns1", "RayCluster", "rc1", NULL, &list) == 0);
    CHECK(list.n == 2);
    store_observed_list_free(&list);
    // Scans: the key columns without the JSON, by cluster, kind and optionally namespace.
    store_observed_t ons = s_test_pod("pod-x", "Running", "{}");
    ons.ns = "ns2";
    CHECK(store_observed_upsert(s, &ons) == 0);
    CHECK(store_flush(s) == 0);
    buf_t scan;
    buf_init(&scan, 4096);
    CHECK(store_observed_scan(s, "c1", "Pod", NULL, s_test_scan_obs, &scan) == 0);
    CHECK(strcmp(buf_str(&scan), "ns1/pod-a;ns1/pod-z;ns2/pod-x;") == 0);
    buf_reset(&scan);
    CHECK(store_observed_scan(s, "c1", "Pod", "ns2", s_test_scan_obs, &scan) == 0);
    CHECK(strcmp(buf_str(&scan), "ns2/pod-x;") == 0);
    buf_reset(&scan);
    CHECK(store_observed_scan(s, "c2", "Pod", NULL, s_test_scan_obs, &scan) == 0);
    CHECK(store_observed_scan(s, "c1", "Service", "ns2", s_test_scan_obs, &scan) == 0);
    CHECK(strcmp(buf_str(&scan), "") == 0);
    ons.name = "stop";
    CHECK(store_observed_upsert(s, &ons) == 0);
    CHECK(store_flush(s) == 0);
    CHECK(store_observed_scan(s, "c1", "Pod", "ns2", s_test_scan_obs, &scan) == 7);
    CHECK(strcmp(buf_str(&scan), "ns2/pod-x;ns2/stop;") == 0 ||
          strcmp(buf_str(&scan), "ns2/stop;") == 0);
    // A callback may queue writes; the scan statement is reusable at once.
    CHECK(store_observed_delete(s, "c1", "Pod", "ns2", "stop") == 0);
    CHECK(store_observed_delete(s, "c1", "Pod", "ns2", "pod-x") == 0);
    CHECK(store_flush(s) == 0);
    buf_reset(&scan);
    CHECK(store_observed_scan(s, "c1", "Pod", NULL, s_test_scan_obs, &scan) == 0);
    CHECK(strcmp(buf_str(&scan), "ns1/pod-a;ns1/pod-z;") == 0);
    CHECK(store_observed_scan(s, "c1", NULL, NULL, s_test_scan_obs, &scan) == ERR_INVAL);
    CHECK(store_observed_scan(s, "c1", "Pod", NULL, NULL, NULL) == ERR_INVAL);
    char plan[1024];
    s_test_plan(db, s_sql[S_OBS_SCAN], plan, sizeof(plan));
    CHECK(strstr(plan, "sqlite_autoindex_observed_objects_1") != NULL);
    s_test_plan(db, s_sql[S_OBS_LIST_OWNER], plan, sizeof(plan));
    CHECK(strstr(plan, "USING INDEX observed_by_owner") && !strstr(plan, "TEMP B-TREE"));
    if (verbose)
        printf("store: list by owner: %s\n", plan);

    // Desired children.
    store_desired_t d1 = {.cluster = "c1",
                          .ns = "ns1",
                          .owner_kind = "RayCluster",
                          .owner_name = "rc1",
                          .owner_uid = "uid-rc1",
                          .child_group = "",
                          .child_kind = "Pod",
                          .child_name = "rc1-head",
                          .spec_hash = "abc",
                          .json = "{}",
                          .reason = "head pod missing",
                          .correlation_id = "r-1"};
    store_desired_t d2 = d1;
    d2.child_kind = "Service";
    d2.child_name = "rc1-head-svc";
    CHECK(store_desired_put(s, &d1) == 0);
    CHECK(store_desired_put(s, &d2) == 0);
    d1.spec_hash = "def";
    CHECK(store_desired_put(s, &d1) == 0);
    store_desired_t dbad = d1;
    dbad.child_kind = NULL;
    CHECK(store_desired_put(s, &dbad) == ERR_INVAL);
    CHECK(store_flush(s) == 0);
    store_desired_list_t dl;
    CHECK(store_desired_list_owner(s, "c1", "ns1", "RayCluster", "rc1", &dl) == 0);
    CHECK(dl.n == 2);
    if (dl.n == 2) {
        CHECK(strcmp(dl.rows[0]->child_name, "rc1-head") == 0);
        CHECK(strcmp(dl.rows[0]->spec_hash, "def") == 0 && dl.rows[0]->decided_ms > 0);
        CHECK(strcmp(dl.rows[1]->child_kind, "Service") == 0);
    }
    store_desired_list_free(&dl);
    CHECK(store_desired_delete(s, "c1", "ns1", "RayCluster", "rc1", "Pod", "rc1-head") == 0);
    CHECK(store_desired_delete(s, "c1", "ns1", "RayCluster", "rc1", "Pod", NULL) == ERR_INVAL);
    CHECK(store_flush(s) == 0);
    CHECK(store_desired_list_owner(s, "c1", "ns1", "RayCluster", "rc1", &dl) == 0 && dl.n == 1);
    store_desired_list_free(&dl);
    CHECK(store_desired_put(s, &d1) == 0);
    CHECK(store_desired_delete(s, "c1", "ns1", "RayCluster", "rc1", NULL, NULL) == 0);
    CHECK(store_flush(s) == 0);
    CHECK(store_desired_list_owner(s, "c1", "ns1", "RayCluster", "rc1", &dl) == 0 && dl.n == 0);
    store_desired_list_free(&dl);
    CHECK(store_desired_list_owner(s, "c1", "ns1", "RayCluster", NULL, &dl) == ERR_INVAL);

    // Batch bound: the write that reaches it flushes early.
    CHECK(store_set_batch_max(s, 100) == 0);
    store_stats(s, &stats);
    uint64_t flushes0 = stats.flushes;
    char name[64];
    for (int i = 0; i < 250; i++) {
        snprintf(name, sizeof(name), "batch-%03d", i);
        store_observed_t p = s_test_pod(name, "Running", "{}");
        p.owner_name = "rc-batch";
        CHECK(store_observed_upsert(s, &p) == 0);
    }
    store_stats(s, &stats);
    CHECK(stats.flushes == flushes0 + 2 && stats.queued == 50);
    CHECK(store_flush(s) == 0);
    CHECK(s_test_int(db, "SELECT count(*) FROM observed_objects WHERE owner_name "
                         "= 'rc-batch'") == 250);

    // A write SQLite refuses is dropped alone; the rest of its batch commits.
    s_val_t nullverb[S_AUDIT_NFIELDS];
    store_audit_t empty = {.verb = "x"};
    CHECK(s_vals_from(&empty, s_audit_fields, S_AUDIT_NFIELDS, 1, nullverb) == 0);
    nullverb[10].type = SQLITE_NULL;
    CHECK(s_enqueue(s, S_AUDIT_INSERT, nullverb, S_AUDIT_NFIELDS) == 0);
    store_observed_t pc = s_test_pod("pod-c", "Running", "{}");
    CHECK(store_observed_upsert(s, &pc) == 0);
    CHECK(store_flush(s) == 0);
    store_stats(s, &stats);
    CHECK(stats.dropped == 1 && stats.queued == 0);
    CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-c", &row) == 0);
    store_observed_free(&row);

    // Busy: another connection holds the write lock. The flush gives up within about the busy
    // timeout, keeps every row, and commits them all once the lock is free.
    CHECK(store_set_batch_max(s, 10000) == 0);
    raw = NULL;
    CHECK(sqlite3_open(path, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "busy-%03d", i);
        store_observed_t p = s_test_pod(name, "Running", "{}");
        p.owner_name = "rc-busy";
        CHECK(store_observed_upsert(s, &p) == 0);
    }
    int64_t t0 = loop_clock_ms();
    CHECK(store_flush(s) == ERR_BUSY);
    int64_t waited = loop_clock_ms() - t0;
    CHECK(waited < 1000);
    CHECK(store_flush(s) == ERR_BUSY);
    bool renewed = false;
    CHECK(store_lease_try_acquire(s, "l/busy", "a", 1000, 1, &renewed) == ERR_BUSY);
    store_stats(s, &stats);
    CHECK(stats.queued == 500 && stats.busy >= 2);
    CHECK(sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(store_flush(s) == 0);
    CHECK(s_test_int(raw, "SELECT count(*) FROM observed_objects WHERE "
                          "owner_name = 'rc-busy'") == 500);
    sqlite3_close(raw);
    if (verbose)
        printf("store: busy flush returned after %" PRId64 " ms\n", waited);

    // The hard bound: while the database stays locked, the queue fills to STORE_QUEUE_MAX_OPS;
    // the next write is refused with ERR_BUSY and nothing already queued is lost.
    raw = NULL;
    CHECK(sqlite3_open(path, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(store_set_busy_timeout(s, 1) == 0);
    CHECK(store_set_batch_max(s, STORE_QUEUE_MAX_OPS) == 0);
    int refused = 0;
    for (int i = 0; i < STORE_QUEUE_MAX_OPS + 1; i++) {
        snprintf(name, sizeof(name), "gone-%d", i);
        if (store_observed_delete(s, "c1", "Pod", "ns1", name) != 0)
            refused++;
    }
    store_stats(s, &stats);
    CHECK(refused == 1 && stats.queued == STORE_QUEUE_MAX_OPS);
    CHECK(store_observed_delete(s, "c1", "Pod", "ns1", "one-more") == ERR_BUSY);
    CHECK(sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    CHECK(store_flush(s) == 0);
    store_stats(s, &stats);
    CHECK(stats.queued == 0 && stats.queued_bytes == 0);
    CHECK(store_set_busy_timeout(s, STORE_BUSY_TIMEOUT_MS_DEFAULT) == 0);
    CHECK(store_set_batch_max(s, STORE_BATCH_MAX_DEFAULT) == 0);

    // The loop hook flushes before each poll.
    loop_t *loop = loop_new();
    CHECK(loop != NULL);
    CHECK(store_attach_loop(s, NULL) == ERR_INVAL);
    if (loop) {
        CHECK(store_attach_loop(s, loop) == 0);
        store_observed_t pl = s_test_pod("pod-loop", "Running", "{}");
        CHECK(store_observed_upsert(s, &pl) == 0);
        CHECK(loop_run_once(loop, 0) == 0);
        store_stats(s, &stats);
        CHECK(stats.queued == 0);
        CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-loop", &row) == 0);
        store_observed_free(&row);
        loop_destroy(&loop);
    }
    // store_attach_loop_every(): a write waits for the interval, then commits without any other
    // activity on the loop (the wake-up timer); nothing queued: no flush.
    loop = loop_new();
    CHECK(store_attach_loop_every(s, loop, -1) == ERR_INVAL);
    CHECK(store_attach_loop_every(NULL, loop, 5) == ERR_INVAL);
    if (loop) {
        CHECK(store_attach_loop_every(s, loop, 50) == 0);
        store_stats(s, &stats);
        uint64_t f0 = stats.flushes;
        store_observed_t pe = s_test_pod("pod-every", "Running", "{}");
        CHECK(store_observed_upsert(s, &pe) == 0);
        CHECK(loop_run_once(loop, 0) == 0);
        store_stats(s, &stats);
        CHECK(stats.queued == 1 && stats.flushes == f0); // within the interval: still queued
        for (int i = 0; i < 100 && stats.queued; i++) {
            loop_run_once(loop, 1000); // sleeps until the wake-up timer at most
            store_stats(s, &stats);
        }
        CHECK(stats.queued == 0 && stats.flushes == f0 + 1);
        CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-every", &row) == 0);
        store_observed_free(&row);
        s->every_ms = 0;
        loop_destroy(&loop);
    }

    // Leases: acquire, renew, conflict, takeover after expiry, release.
    CHECK(store_lease_try_acquire(s, "sched/shard/1", "a", 100, 1000, &renewed) == 0 && !renewed);
    CHECK(store_lease_try_acquire(s, "sched/shard/1", "a", 100, 1050, &renewed) == 0 && renewed);
    CHECK(store_lease_try_acquire(s, "sched/shard/1", "b", 100, 1100, &renewed) == ERR_CONFLICT);
    store_lease_t lease;
    CHECK(store_lease_get(s, "sched/shard/1", &lease) == 0);
    CHECK(strcmp(lease.holder, "a") == 0 && lease.acquired_ms == 1000);
    CHECK(lease.renewed_ms == 1050 && lease.expires_ms == 1150 && lease.transitions == 0);
    CHECK(store_lease_try_acquire(s, "sched/shard/1", "b", 100, 1150, &renewed) == 0 && !renewed);
    CHECK(store_lease_get(s, "sched/shard/1", &lease) == 0);
    CHECK(strcmp(lease.holder, "b") == 0 && lease.acquired_ms == 1150 && lease.transitions == 1);
    CHECK(store_lease_release(s, "sched/shard/1", "a") == ERR_NOTFOUND);
    CHECK(store_lease_release(s, "sched/shard/1", "b") == 0);
    CHECK(store_lease_get(s, "sched/shard/1", &lease) == 0);
    CHECK(strcmp(lease.holder, "") == 0 && lease.expires_ms == 0);
    CHECK(store_lease_try_acquire(s, "sched/shard/1", "a", 100, 1160, NULL) == 0);
    CHECK(store_lease_get(s, "sched/shard/1", &lease) == 0 && lease.transitions == 2);
    CHECK(store_lease_get(s, "sched/shard/2", &lease) == ERR_NOTFOUND);
    // Another process (here another connection) sees the lease at once.
    store_t *s2 = store_open(path, STORE_READWRITE, &err);
    CHECK(s2 != NULL);
    if (s2) {
        CHECK(store_lease_try_acquire(s2, "sched/shard/1", "c", 100, 1200, NULL) == ERR_CONFLICT);
        CHECK(store_lease_try_acquire(s2, "sched/shard/1", "c", 100, 1260, &renewed) == 0);
        CHECK(!renewed);
        CHECK(store_lease_try_acquire(s, "sched/shard/1", "a", 100, 1300, NULL) == ERR_CONFLICT);
        CHECK(store_lease_get(s, "sched/shard/1", &lease) == 0);
        CHECK(strcmp(lease.holder, "c") == 0 && lease.transitions == 3);
        store_destroy(&s2);
    }
    CHECK(store_lease_try_acquire(s, "", "a", 100, 1, NULL) == ERR_INVAL);
    CHECK(store_lease_try_acquire(s, "x", "a", 0, 1, NULL) == ERR_INVAL);
    CHECK(store_lease_try_acquire(s, "x", "a", 10, INT64_MAX, NULL) == ERR_INVAL);
    char longname[STORE_LEASE_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK(store_lease_try_acquire(s, longname, "a", 10, 1, NULL) == ERR_INVAL);
    CHECK(store_lease_release(s, "x", NULL) == ERR_INVAL);
    CHECK(store_lease_get(s, NULL, &lease) == ERR_INVAL);
    CHECK(store_lease_try_acquire(s, "sched/shard/10", "d", 100, 1300, NULL) == 0);
    CHECK(store_lease_try_acquire(s, "schedX", "e", 100, 1300, NULL) == 0);
    buf_reset(&scan);
    CHECK(store_lease_scan(s, "sched/", 10, s_test_scan_lease, &scan) == 0);
    CHECK(strcmp(buf_str(&scan), "sched/shard/1=c;sched/shard/10=d;") == 0);
    buf_reset(&scan);
    CHECK(store_lease_scan(s, "", 1, s_test_scan_lease, &scan) == 0);
    CHECK(strcmp(buf_str(&scan), "sched/shard/1=c;") == 0);
    CHECK(store_lease_scan(s, "", 0, s_test_scan_lease, &scan) == ERR_INVAL);
    CHECK(store_lease_scan(s, NULL, 1, s_test_scan_lease, &scan) == ERR_INVAL);
    buf_free(&scan);
    CHECK(store_wall_ms() > 1600000000000LL);

    // Audit: append, query by target (newest first, window, limit), through the index.
    char summary[STORE_AUDIT_SUMMARY_MAX + 100];
    memset(summary, 's', sizeof(summary) - 1);
    summary[sizeof(summary) - 1] = '\0';
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof(name), "pod-%d", i % 3);
        store_audit_t rec = {.time_ms = 10000 + i,
                             .actor_service = "scheduler",
                             .actor_replica = "scheduler/0",
                             .actor_version = "0.1.0",
                             .cluster = "c1",
                             .target_group = "",
                             .target_kind = "Pod",
                             .target_namespace = "ns1",
                             .target_name = name,
                             .verb = i % 2 ? "create" : "delete",
                             .reason = "CreatedWorkerPod",
                             .message = "worker group small-group needs 3 pods",
                             .cause_key = "c1/ns1/rc1",
                             .cause_generation = i == 0 ? 0 : 4,
                             .cause_event_id = (uint64_t)i,
                             .correlation_id = "r-2",
                             .request_summary = i == 3 ? summary : "POST /api/v1/pods",
                             .result_status = 201,
                             .latency_ms = 3};
        CHECK(store_audit_append(s, &rec) == 0);
    }
    store_audit_t noverb = {.target_kind = "Pod"};
    CHECK(store_audit_append(s, &noverb) == ERR_INVAL);
    CHECK(store_flush(s) == 0);
    store_audit_list_t al;
    CHECK(store_audit_query_target(s, "c1", "Pod", "ns1", "pod-0", 0, 0, 100, &al) == 0);
    CHECK(al.n == 20);
    if (al.n == 20) {
        CHECK(al.rows[0]->time_ms == 10057 && al.rows[19]->time_ms == 10000);
        CHECK(al.rows[0]->id > al.rows[19]->id);
        CHECK(al.rows[19]->cause_generation == 0 && al.rows[19]->cause_event_id == 0);
        CHECK(al.rows[0]->cause_generation == 4 && al.rows[0]->cause_event_id == 57);
        CHECK(strcmp(al.rows[0]->verb, "create") == 0 && al.rows[0]->result_status == 201);
        CHECK(al.rows[0]->result_error == NULL && strcmp(al.rows[0]->cluster, "c1") == 0);
        CHECK(strcmp(al.rows[0]->request_summary, "POST /api/v1/pods") == 0);
    }
    store_audit_list_free(&al);
    CHECK(al.rows == NULL && al.n == 0);
    CHECK(store_audit_query_target(s, "c1", "Pod", "ns1", "pod-0", 10003, 10030, 5, &al) == 0);
    CHECK(al.n == 5 && al.rows[0]->time_ms == 10027);
    store_audit_list_free(&al);
    CHECK(store_audit_query_target(s, "c1", "Pod", "ns1", "pod-0", 10000, 10001, 5, &al) == 0);
    CHECK(al.n == 1);
    store_audit_list_free(&al);
    CHECK(s_test_int(db, "SELECT length(request_summary) FROM audit WHERE "
                         "cause_event_id = 3") == STORE_AUDIT_SUMMARY_MAX);
    CHECK(store_audit_query_target(s, "c1", "Pod", "ns1", "pod-0", 0, 0, 0, &al) == ERR_INVAL);
    CHECK(store_audit_query_target(s, "c1", NULL, "ns1", "pod-0", 0, 0, 1, &al) == ERR_INVAL);
    s_test_plan(db, s_sql[S_AUDIT_TARGET], plan, sizeof(plan));
    CHECK(strstr(plan, "USING INDEX audit_by_target") && !strstr(plan, "TEMP B-TREE"));
    if (verbose)
        printf("store: audit by target: %s\n", plan);
    s_test_plan(db,
                "SELECT id FROM audit WHERE verb = 'delete' AND result_status = 201 "
                "AND time_ms > 10 ORDER BY time_ms",
                plan, sizeof(plan));
    CHECK(strstr(plan, "audit_by_verb") != NULL);
    s_test_plan(db, "SELECT id FROM audit WHERE time_ms BETWEEN 1 AND 5", plan, sizeof(plan));
    CHECK(strstr(plan, "audit_by_time") != NULL);

    // A UTF-8 sequence is never split when a summary is cut.
    CHECK(s_utf8_cut("a\xc3\xa9", 3, 2) == 1);
    CHECK(s_utf8_cut("abc", 3, 2) == 2 && s_utf8_cut("abc", 3, 5) == 3);

    // Read-only: reads work, every write is refused.
    store_t *ro = store_open(path, STORE_READONLY, &err);
    CHECK(ro != NULL && err == 0);
    if (ro) {
        CHECK(store_observed_get(ro, "c1", "Pod", "ns1", "pod-a", &row) == 0);
        store_observed_free(&row);
        CHECK(store_observed_upsert(ro, &pa) == ERR_STATE);
        CHECK(store_observed_delete(ro, "c1", "Pod", "ns1", "pod-a") == ERR_STATE);
        CHECK(store_desired_put(ro, &d1) == ERR_STATE);
        CHECK(store_audit_append(ro, &(store_audit_t){.verb = "create"}) == ERR_STATE);
        CHECK(store_lease_try_acquire(ro, "sched/shard/1", "a", 10, 1, NULL) == ERR_STATE);
        CHECK(store_lease_release(ro, "sched/shard/1", "a") == ERR_STATE);
        CHECK(store_lease_get(ro, "sched/shard/1", &lease) == 0);
        CHECK(store_flush(ro) == 0);
        CHECK(sqlite3_exec(ro->db, "DELETE FROM leases", NULL, NULL, NULL) != SQLITE_OK);
        store_destroy(&ro);
    }

    // Destroying flushes what is queued.
    store_observed_t pd = s_test_pod("pod-d", "Running", "{}");
    CHECK(store_observed_upsert(s, &pd) == 0);
    store_destroy(&s);
    s = store_open(path, STORE_READWRITE, &err);
    CHECK(s != NULL);
    if (s) {
        CHECK(store_observed_get(s, "c1", "Pod", "ns1", "pod-d", &row) == 0);
        store_observed_free(&row);
        store_destroy(&s);
    }
    s_test_rmdir(dir);
    failed += s_test_query(verbose);
    failed += s_test_resolve(verbose);
    return SELFTEST_RESULT("store", verbose);
}

#endif /* RF_SELFTEST */
