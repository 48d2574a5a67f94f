/*
 * audit: `rayfleetctl audit` — the actions rayfleet took, with their causes, from the audit table
 * of the scheduler's database (STATE/scheduler.db), read through a read-only query connection
 * (store_query_open(): SQLITE_OPEN_READONLY, query_only, authorizer).
 *
 *   rayfleetctl audit [FILTERS] [--output table|json|jsonl|csv] [--limit N] [--follow] [--explain]
 *       The newest N rows that match (default AUDIT_DEFAULT_LIMIT), printed oldest first.
 *       FILTERS: --cluster --namespace --kind --name --verb --actor --correlation ID
 *       --result (NNN: that status; Nxx: a class such as 2xx; ok: 1..399 without error;
 *       error: no response, >= 400, or an error text) --since/--until (RFC 3339 such as
 *       2025-01-31T12:00:00Z, or a duration back from now such as 15m, 2h, 7d; until is
 *       exclusive). --follow then polls every AUDIT_FOLLOW_POLL_MS for rows with a larger id
 *       (AUDIT_FOLLOW_BATCH at most per query, so memory stays bounded) until SIGINT/SIGTERM;
 *       with --output json it prints JSON lines (an array never ends). --explain prints SQLite's
 *       EXPLAIN QUERY PLAN of the query (which index it uses) instead of rows.
 *   rayfleetctl audit export --output json|jsonl|csv [FILTERS] [--limit N]
 *       Every matching row (no limit unless --limit), oldest first, streamed.
 *   rayfleetctl audit prune --older-than DURATION [--chunk N] [--pause DURATION] [--dry-run]
 *       Deletes the rows older than now - DURATION, AUDIT_PRUNE_CHUNK_DEFAULT rows per
 *       transaction with a pause between chunks. NOTE the store's rule is one writing process per
 *       database file: prune is the exception, an administrative writer that holds the write lock
 *       only for one chunk at a time. A running scheduler meets at most a short SQLITE_BUSY on a
 *       flush and keeps its queue (store.h), and prune retries a chunk that met the scheduler's
 * lock.
 *
 * json/csv rows have the columns: id, time (RFC 3339 UTC with ms), then the 22 columns of the
 * audit table (time_ms, actor_service, ..., latency_ms). The table format shows a summary.
 *
 * Scheduler replicas (`rayfleetctl up --scheduler-replicas N`): with --state-dir, every scheduler
 * file of the directory is read (scheduler.db and scheduler-<i>.db, see fleetdb.h) as ONE history
 * ordered by time: listing and export run store_audit_prepare()'s query on the union of the files
 * (a WITH clause over ATTACHed read-only files; SQLite merges the files' index scans), --explain
 * prints that plan. ids are per file: (actor_replica, id) identifies a row. --follow keeps one id
 * watermark per file and merges each poll's new rows by time_ms; its first listing stops at the
 * watermarks, so no row is printed twice. prune (and --dry-run) handles every file in turn, one
 * line per file and a total. --db FILE reads or prunes that one file, as before.
 *
 * Federation (`rayfleetctl up --sim --members N`): --context NAME reads (or prunes) the files of
 * one cluster, member-<i> (STATE/member-<i>.scheduler.db, ...) or management; without it every
 * cluster's files are read as one, as many as fit in one connection (fleetdb_select(): a note on
 * stderr names the members left out and says --context), and the table shows a CLUSTER column.
 */
#ifndef RF_CLI_AUDIT_H
#define RF_CLI_AUDIT_H

#define AUDIT_DEFAULT_LIMIT 100 /* rows `audit` prints by default */
#define AUDIT_MAX_LIMIT 1000000 /* --limit upper bound */
#define AUDIT_DB_FILE "scheduler.db" /* the audit database inside the state dir */
#define AUDIT_FOLLOW_POLL_MS 500 /* --follow polling period */
#define AUDIT_FOLLOW_BATCH 1000 /* most rows one --follow poll reads */
#define AUDIT_PRUNE_CHUNK_DEFAULT 10000 /* rows deleted per prune transaction */
#define AUDIT_PRUNE_PAUSE_DEFAULT_MS 50 /* pause between prune chunks */
#define AUDIT_PRUNE_BUSY_RETRIES 100 /* attempts of one chunk that meets a busy database */

/* `rayfleetctl audit ARGS` (also `audit export ...` and `audit prune ...`); returns the exit
 * code. */
int audit_main(int argc, char **argv);

#endif
