/*
 * sql: `rayfleetctl sql "SELECT ..."` (read-only SQL over rayfleet's databases) and the result
 * writers it shares with `rayfleetctl audit` (table, JSON, JSON lines, CSV).
 *
 * Read-only for real: the connection comes from store_query_open() (common/store.h):
 * SQLITE_OPEN_READONLY, PRAGMA query_only, extension loading disabled, and an authorizer that
 * allows only SELECT, reads, functions other than load_extension() and introspection pragmas
 * (table_info, index_list, ...). One statement per call (a second one is refused), and a statement
 * that is not read-only (sqlite3_stmt_readonly) is refused. Every refusal prints
 * "rayfleetctl sql: refused: WHAT is not allowed (rayfleetctl sql is read-only)" and exits 1.
 * A query runs at most --timeout (default SQL_TIMEOUT_DEFAULT_MS) and prints at most --limit rows
 * (default SQL_LIMIT_DEFAULT).
 *
 * Which databases: with --db FILE, that file only (schema `main`). With --state-dir DIR (the
 * default), `main` is DIR/scheduler.db (audit, desired_objects, leases) and DIR/observed.db is
 * ATTACHed read-only as schema `observed` (query observed.observed_objects); the tool attaches it
 * itself BEFORE it installs the authorizer, which then denies every ATTACH and DETACH. When
 * scheduler.db is missing, observed.db is `main`. With several scheduler replicas (STATE/
 * scheduler-<i>.db, `rayfleetctl up --scheduler-replicas N`) the first file is `main`, the others
 * are attached the same way as `replica1`, `replica2`, ..., and the statement is rewritten so that
 * `audit` and `desired_objects` name the union of every file (fleetdb.h: a WITH clause in front
 * of the statement, not a view, so nothing is ever written, not even the temp schema); the
 * rewritten text goes through the same store_query_prepare() checks. With a federation
 * (`rayfleetctl up --sim --members N`, STATE/federation.yaml) each member's files
 * (member-<i>.scheduler.db, member-<i>.submitter.db, member-<i>.serve-upgrade.db) join the union
 * as schemas member_<i>_scheduler, ... as far as SQLite's attach limit allows (a note on stderr
 * names the members left out), or --context NAME reads one cluster's files alone (fleetdb.h).
 *
 * Output formats: table (aligned columns, cells cut to SQL_CELL_MAX), json (ONE JSON array of
 * objects, column name -> value; integers and reals as numbers, NULL as null, text as strings,
 * blobs as hex strings), jsonl (one JSON object per line: what --follow prints for json), csv
 * (RFC 4180: a header line, fields with comma, quote, CR or LF quoted, quotes doubled, NULL empty).
 */
#ifndef RF_CLI_SQL_H
#define RF_CLI_SQL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SQL_LIMIT_DEFAULT 1000 /* rows `sql` prints by default */
#define SQL_LIMIT_MAX 1000000 /* --limit upper bound */
#define SQL_TIMEOUT_DEFAULT_MS 10000 /* --timeout default */
#define SQL_TIMEOUT_MAX_MS 3600000 /* --timeout upper bound */
#define SQL_CELL_MAX 120 /* longest table cell, bytes (longer ones end with "...") */
#define SQL_MAX_COLS 64 /* most columns of one result */
#define SQL_VALUE_MAX (16u * 1024u * 1024u) /* longest value written in json/csv */
#define SQL_SCHEDULER_DB "scheduler.db" /* the scheduler's database in the state dir */
#define SQL_OBSERVED_DB "observed.db" /* the watcher's database in the state dir */

/* Output formats. */
typedef enum { SQL_OUT_TABLE, SQL_OUT_JSON, SQL_OUT_JSONL, SQL_OUT_CSV } sql_fmt_t;

/* One value of a result row. Strings are borrowed for the sql_out_row() call. */
typedef struct {
    int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL */
    int64_t i; /* the integer */
    double d; /* the real */
    const char *s; /* the text or blob bytes */
    size_t len; /* bytes of s */
} sql_val_t;

typedef struct sql_out sql_out_t;

/* Parses "table", "json", "jsonl" or "csv". Returns 0, or -1 for anything else. */
int sql_parse_format(const char *s, sql_fmt_t *out);

/* A writer of `ncols` (1 .. SQL_MAX_COLS) columns named names[] (copied) to `f` (borrowed).
 * The table format buffers rows until sql_out_flush(); the others write each row at once.
 * Returns NULL on bad arguments or out of memory. */
sql_out_t *sql_out_new(FILE *f, sql_fmt_t fmt, int ncols, const char *const *names);

/* Writes (or, table, buffers) one row of ncols values. Returns 0 or a negative err_t. */
int sql_out_row(sql_out_t *o, const sql_val_t *vals);

/* Table: prints the buffered rows (the header only the first time; column widths are fixed by
 * the first flush). Other formats: nothing. Then fflush(f). Returns 0 or a negative err_t. */
int sql_out_flush(sql_out_t *o);

/* Rows written so far. */
uint64_t sql_out_count(const sql_out_t *o);

/* Flushes, closes a JSON array ("[]" when no row came), frees the writer, sets *o_p to NULL.
 * NULL-safe. */
void sql_out_end(sql_out_t **o_p);

/* Reads column `col` of the current row of `st` into *v (borrowing the statement's memory). */
void sql_val_from(sqlite3_stmt *st, int col, sql_val_t *v);

/* `rayfleetctl sql ARGS`; returns the exit code. */
int sql_main(int argc, char **argv);

#endif
