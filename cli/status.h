/*
 * status: `rayfleetctl status` (the Ray objects of a cluster, read through the Kubernetes API, as
 * tables with more columns than `kubectl get`) and `rayfleetctl audit` (a first, read-only view of
 * the scheduler's audit table in STATE/scheduler.db).
 */
#ifndef RF_CLI_STATUS_H
#define RF_CLI_STATUS_H

#define STATUS_MAX_COLS 12 /* most columns of one table */
#define STATUS_MAX_ROWS 100000 /* most rows printed per table */
#define STATUS_CELL_MAX 256 /* longest cell text */
#define AUDIT_DEFAULT_LIMIT 100 /* rows `audit` prints by default */
#define AUDIT_MAX_LIMIT 1000000 /* --limit upper bound */
#define AUDIT_DB_FILE "scheduler.db" /* the audit database inside the state dir */

/* `rayfleetctl status ARGS`; returns the exit code. */
int status_main(int argc, char **argv);

/* `rayfleetctl audit ARGS`; returns the exit code. */
int audit_main(int argc, char **argv);

#endif
