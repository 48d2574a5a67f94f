/*
 * fleetdb: the audit databases of every controller of a state dir, read as one: the scheduler's
 * (one file per scheduler replica) and the other controllers' (FLEETDB_CONTROLLER_FILES, today
 * STATE/submitter.db of rayfleet-submitter, the RayJob controller, and STATE/serve-upgrade.db of
 * rayfleet-serve-upgrade, the RayService controller; same store schema, created by
 * ctrl/ctrlsvc.c as <state-dir>/<name>.db). Each audit row's actor_service says who wrote it.
 *
 * Files. One scheduler (the default of `rayfleetctl up`) writes STATE/scheduler.db. With
 * `rayfleetctl up --scheduler-replicas N` (N > 1), replica i (--replica scheduler/i) writes its
 * own STATE/scheduler-<i>.db (--audit.db; the store's rule is one writing process per file): its
 * audit rows AND its desired_objects rows (the reconciler writes desired rows into the same file
 * as its audit rows; see services/scheduler/scheduler_main.c). fleetdb_find() lists scheduler.db
 * and every scheduler-<i>.db present, scheduler.db first, then by i, then the controller files
 * present (submitter.db, serve-upgrade.db), in the order of FLEETDB_CONTROLLER_FILES.
 *
 * Mechanism. ONE read-only query connection made by store_query_open(), so every guarantee of
 * `rayfleetctl sql` holds unchanged (SQLITE_OPEN_READONLY, PRAGMA query_only, extension loading
 * off, and the authorizer that denies writes, ATTACH, DETACH and setting PRAGMAs): the first file
 * is `main`, the others are ATTACHed read-only (mode=ro) by store_query_open() itself, before it
 * installs the authorizer, as schemas `replica1`, `replica2`, ..., a controller file as its
 * name without .db (`submitter`, unless it is the only file: then it is `main`), and observed.db
 * as `observed`.
 * The union cannot be a TEMP VIEW: the authorizer denies CREATE TEMP VIEW and query_only denies
 * writing even the temp schema, and store_query_open() has no hook before them (see the report
 * of issue 7). So fleetdb_rewrite() puts a WITH clause in front of the statement instead:
 *
 *   WITH audit AS (SELECT * FROM main.audit UNION ALL SELECT * FROM "replica1".audit ...),
 *        desired_objects AS (the desired rows, see below), <the statement's own CTEs> SELECT ...
 *
 * so that every unqualified `audit` and `desired_objects` of the statement means all replicas,
 * while main.audit, replica1.audit, ... still name one file. The rewritten text is prepared by
 * store_query_prepare(): still ONE statement, checked by the same authorizer and by
 * sqlite3_stmt_readonly(). Only statements that may start with WITH are rewritten (SELECT,
 * VALUES, WITH [RECURSIVE] ..., each optionally after EXPLAIN [QUERY PLAN]); others (PRAGMA
 * table_info(audit), or anything the authorizer refuses anyway) pass unchanged. A statement that
 * names its own CTE `audit` or `desired_objects` gets SQLite's "duplicate WITH table name" error.
 * The CTE names rf_desired_all and rf_desired_owner are taken too.
 *
 * With ONE file nothing is rewritten: statements, results and query plans are exactly those of
 * a single scheduler.db. SQLite pushes the WHERE terms of a query on the union down into each
 * arm, so each file still answers from its own indexes.
 *
 * audit rows: ids are per file (each file numbers its own rows), so (actor_replica, id)
 * identifies a row of the union; time order across files is time_ms (ties: id).
 * desired rows: for each owner (cluster, namespace, owner_kind, owner_name), only the rows of the
 * file that decided last (largest decided_ms; ties: the first file): a RayCluster whose shard moved
 * to another replica keeps stale rows in its former replica's file, which must not count twice.
 *
 * Federation (issue 16; `rayfleetctl up --sim --members N`, cli/launch.h). Each member cluster has
 * its own set of controllers, each writing STATE/<member>.<service>.db (member-1.scheduler.db,
 * member-1.submitter.db, member-1.serve-upgrade.db; a member's scheduler replicas would write
 * <member>.scheduler-<i>.db), beside the management set above (scheduler.db, ...), and
 * STATE/federation.yaml (read with fleet/fedcfg) names the members. fleetdb_select() picks the
 * files of a command:
 *   --context management      the management set (fleetdb_find()), as without a federation;
 *   --context NAME            the set of the member whose name or context is NAME (refused, naming
 *                             the members, when federation.yaml has none);
 *   neither, federation.yaml  every set: the management set first, then each member in the order
 *                             of federation.yaml, each set whole or not at all, as long as the
 *                             files fit in one connection: SQLite attaches at most
 *                             fleetdb_attach_max() files (SQLITE_LIMIT_ATTACHED: the compiled
 *                             SQLITE_MAX_ATTACHED, 10 in Debian's libsqlite3 3.40, which
 *                             sqlite3_limit() can lower but never raise), so main + 10 files, one
 *                             fewer when observed.db is attached too: the management set and two
 *                             members' three files each fit, a third member does not. The members
 *                             left out are listed in fleetdb_files_t.skipped, and every command
 *                             prints fleetdb_note_skipped(): which ones and `--context NAME`.
 * A member file's schema is its file name without .db, '-' and '.' written '_'
 * (member_1_scheduler, member_1_submitter, ...), whatever else is read; the first file read is
 * `main` as always. Audit rows carry the cluster that wrote them (--cluster of the member's
 * controllers), so `audit` shows a CLUSTER column when rows of more than one set are read.
 */
#ifndef RF_CLI_FLEETDB_H
#define RF_CLI_FLEETDB_H

#include "buf.h"
#include "store.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEETDB_MAX_SCHEDULER_FILES 8 /* most scheduler files read as one */
#define FLEETDB_CONTROLLER_FILES                                                                   \
    {                                                                                              \
        "submitter.db", "serve-upgrade.db"                                                         \
    } /* other controllers' files, read after them */
#define FLEETDB_NCONTROLLER_FILES 2 /* how many FLEETDB_CONTROLLER_FILES names */
#define FLEETDB_SET_FILES                                                                          \
    (FLEETDB_MAX_SCHEDULER_FILES + FLEETDB_NCONTROLLER_FILES) /* most files of one set */
#define FLEETDB_MAX_FILES                                                                          \
    16 /* most files of one connection (SQLite's limit is lower, see above)                        \
        */
#define FLEETDB_NAME_MAX 64 /* longest member name kept, NUL included (a DNS-1123 label) */
#define FLEETDB_MAX_SKIPPED 256 /* most members listed as not read (FEDCFG_MAX_MEMBERS) */
#define FLEETDB_MAIN_FILE "scheduler.db" /* the file of a single scheduler */
#define FLEETDB_REPLICA_PREFIX "scheduler-" /* replica i writes scheduler-<i>.db */
#define FLEETDB_SCHEMA_PREFIX "replica" /* files after the first are attached as replica<k> */
#define FLEETDB_SQL_MAX (256u * 1024u) /* longest rewritten statement */

/* The audit files of a state dir (large: allocate it). */
typedef struct {
    char path[FLEETDB_MAX_FILES][PATH_MAX]; /* scheduler.db first, then by replica, then the
                                             * controller files; then each member's the same way */
    char set[FLEETDB_MAX_FILES][FLEETDB_NAME_MAX]; /* "" (management set) or the member's name */
    size_t n; /* how many */
    size_t nsets; /* sets with at least one file among them */
    char skipped[FLEETDB_MAX_SKIPPED][FLEETDB_NAME_MAX]; /* members whose files did not fit */
    size_t nskipped; /* how many */
    size_t skipped_files; /* their files */
    size_t room; /* files one connection could take for this command (0: no member skipped) */
} fleetdb_files_t;

typedef struct fleetdb fleetdb_t;

/* Fills *out with STATE/scheduler.db (when present) and every STATE/scheduler-<i>.db present
 * (i a decimal number), ordered by i, then each FLEETDB_CONTROLLER_FILES present. Returns 0,
 * ERR_NOTFOUND (none; out->n is 0), ERR_TOOBIG (more than FLEETDB_MAX_SCHEDULER_FILES scheduler
 * files; the first ones are kept, the controller files still follow) or ERR_INVAL. */
int fleetdb_find(const char *state_dir, fleetdb_files_t *out);

/* Fills *out (zeroed first) with the files fleetdb_select() reads from the set of member
 * `member` (its name): STATE/<member>.scheduler.db, <member>.scheduler-<i>.db,
 * <member>.<controller> files, ordered as fleetdb_find() orders them. Same returns as
 * fleetdb_find(). */
int fleetdb_find_member(const char *state_dir, const char *member, fleetdb_files_t *out);

/* How many files SQLite attaches to one connection (SQLITE_LIMIT_ATTACHED of a fresh connection,
 * at most FLEETDB_MAX_FILES - 1). */
size_t fleetdb_attach_max(void);

/* The files a command reads (the file comment, "Federation"): `context` NULL or a name;
 * `reserve` attachments the caller adds (1 for observed.db, else 0). Fills *out (zeroed first).
 * Returns 0; ERR_NOTFOUND (no file in the selection), ERR_INVAL (federation.yaml unreadable or
 * invalid, `context` names no cluster of it, or there is no federation.yaml and `context` is not
 * "management") or ERR_TOOBIG (a set holds more than FLEETDB_MAX_SCHEDULER_FILES scheduler files:
 * the first ones are kept), each with one line in `err` (no "rayfleetctl CMD: " prefix); or
 * ERR_NOMEM. */
int fleetdb_select(const char *state_dir, const char *context, size_t reserve, fleetdb_files_t *out,
                   buf_t *err);

/* When members were left out of *files, prints to stderr "rayfleetctl CMD: note: ..." naming them,
 * their files, the attach limit, and `--context NAME` to read them. */
void fleetdb_note_skipped(const fleetdb_files_t *files, const char *cmd);

/* Opens files->path[0..n-1] (n >= 1, each must exist) read-only through store_query_open(),
 * with `observed` (may be NULL) attached as schema `observed`. Returns the handle or NULL with
 * *err_out (may be NULL) set to ERR_INVAL, ERR_NOMEM, ERR_NOTFOUND or ERR_DB. Close with
 * fleetdb_close(). */
fleetdb_t *fleetdb_open(const fleetdb_files_t *files, const char *observed, int *err_out);

/* Closes the connection, sets *f_p to NULL. NULL-safe. */
void fleetdb_close(fleetdb_t **f_p);

/* The query connection (borrowed: timeouts, sqlite3_errmsg()). */
store_query_t *fleetdb_query(fleetdb_t *f);

/* Number of files. */
size_t fleetdb_count(const fleetdb_t *f);

/* Number of scheduler files (those that are not FLEETDB_CONTROLLER_FILES). */
size_t fleetdb_scheduler_count(const fleetdb_t *f);

/* Number of sets read (the management set and each member with a file open): more than 1 means
 * rows of several clusters. */
size_t fleetdb_set_count(const fleetdb_t *f);

/* The schema of file k ("main", "replica1", ..., "submitter"), or NULL when k is out of range. */
const char *fleetdb_schema(const fleetdb_t *f, size_t k);

/* The path of file k, or NULL when k is out of range. */
const char *fleetdb_path(const fleetdb_t *f, size_t k);

/* Appends to `out` the statement `sql` rewritten as the file comment says (unchanged with one
 * file, or when it cannot start with WITH); file >= 0 restricts `audit` to that one file
 * (desired_objects is left alone). Returns 0, ERR_INVAL (bad file) or ERR_NOMEM/ERR_TOOBIG. */
int fleetdb_rewrite(const fleetdb_t *f, const char *sql, int file, buf_t *out);

/* store_query_prepare() of the rewritten `sql` (file -1: every file). Same returns and `why`. */
int fleetdb_prepare(fleetdb_t *f, const char *sql, int file, sqlite3_stmt **out, buf_t *why);

/* store_audit_prepare() of filter `flt` on the union of the files (file -1) or on file `file`:
 * same columns; its parameters are inlined (sqlite3_expanded_sql) before the rewrite. `ceil`
 * (NULL: none; else count() values) hides the rows of file k whose id is above ceil[k]. When
 * `sql_out` is not NULL the final SQL text is appended to it. Returns 0, ERR_INVAL, ERR_NOMEM or
 * ERR_DB (sqlite3_errmsg() of the connection says why). */
int fleetdb_audit_prepare(fleetdb_t *f, const store_audit_filter_t *flt, int file,
                          const int64_t *ceil, sqlite3_stmt **out, buf_t *sql_out);

/* Sets ids[k] to the largest audit id of file k (0 when empty or unreadable), k < count. */
void fleetdb_max_ids(fleetdb_t *f, int64_t *ids);

#endif
