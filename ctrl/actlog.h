/*
 * actlog: the controllers' audit writer (the action log). Every API write a controller makes
 * through the runtime (ctrl.h: create, update, patch, delete, status, Event) leaves one row in
 * the `audit` table of the controller's OWN database (the scheduler's <state-dir>/scheduler.db;
 * the controller is its only writer) through
 * store_audit_append(), which batches rows and commits them once per loop turn.
 *
 * A row says who acted (service, replica, version), on what (cluster, group, kind, namespace,
 * name, uid), how (verb), why (KubeRay's event reason where one exists, and a sentence), because
 * of what (the key, generation and resourceVersion of the observed object whose change triggered
 * the reconcile, and the bus event id), in which reconcile (a correlation id shared by every
 * action of one reconcile pass), with what (a bounded, redacted summary of the request body), and
 * with which result (HTTP status, error text, latency).
 *
 * Redaction: request bodies are summarised through common/redact (redact_summary), the one rule
 * for every audit row and log line: literal values of secret-looking env vars, headers and
 * fields are replaced, valueFrom references kept, a Secret's data hidden, and "password=..."
 * style values inside strings (a rendered `ray start --redis-password=...`) replaced.
 *
 * Summaries are compact JSON cut to ACTLOG_SUMMARY_MAX bytes (a cut summary ends with "...").
 *
 * Intent rows (issue 17: no action without a row, even across kill -9). A write is recorded
 * BEFORE it is sent: actlog_intent() queues its row with the result pending (result_status 0,
 * result_error STORE_AUDIT_PENDING), actlog_commit() makes every queued row durable in one
 * transaction (WAL, synchronous=NORMAL: it survives the death of the process), and only then is
 * the request sent; its answer is written over the same row by actlog_resolve(). A row still
 * pending is a write whose result was never recorded (the controller stopped in between).
 */
#ifndef RF_ACTLOG_H
#define RF_ACTLOG_H

#include "buf.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACTLOG_SUMMARY_MAX 2048 /* longest request summary written, bytes (below the store's) */
#define ACTLOG_CORR_LEN 33 /* correlation id: 32 hex characters and a NUL */
#define ACTLOG_REDACTED "(redacted)" /* what replaces a secret value */
#define ACTLOG_FIELD_MAX 256 /* longest actor string kept */

typedef struct actlog actlog_t;

/* Who acts. Strings are copied by actlog_new(). */
typedef struct {
    const char *service; /* "scheduler" */
    const char *replica; /* "scheduler/0" */
    const char *version; /* rayfleet version; NULL: RF_VERSION */
} actlog_actor_t;

/* The cause of a reconcile: what the observed state said when it started. */
typedef struct {
    const char *key; /* the reconcile key "cluster/namespace/name" */
    int64_t generation; /* metadata.generation of the observed owner, 0: unknown */
    const char *resource_version; /* resourceVersion of the observed object that changed */
    uint64_t event_id; /* the bus event id, 0: none (resync, requeue) */
} actlog_cause_t;

/* One action and its result. Strings are borrowed for the call. */
typedef struct {
    const char *cluster; /* member cluster of the target */
    const char *group; /* API group of the target ("" core) */
    const char *kind; /* kind of the target */
    const char *ns; /* namespace of the target */
    const char *name; /* name of the target (the created name for generateName) */
    const char *uid; /* uid of the target, when known */
    const char *verb; /* create, update, patch, delete, status */
    const char *reason; /* KubeRay's event reason, or NULL */
    const char *message; /* a sentence saying why */
    const actlog_cause_t *cause; /* the reconcile's cause, or NULL */
    const char *correlation_id; /* the reconcile's correlation id */
    const json_t *request; /* the request body (redacted and summarised here), or NULL */
    int result_status; /* HTTP status, 0 when no response came */
    const char *result_error; /* error text, NULL on success */
    int64_t latency_ms; /* request to result */
} actlog_entry_t;

/* Counters. */
typedef struct {
    uint64_t rows; /* rows handed to the store */
    uint64_t failures; /* rows the store refused (logged) */
} actlog_stats_t;

/* A writer appending to `db` (borrowed, opened read-write by the caller) as `actor`. Returns
 * NULL on bad arguments or out of memory. */
actlog_t *actlog_new(store_t *db, const actlog_actor_t *actor);

/* Frees the writer and NULLs *a_p. NULL-safe. Rows already appended stay queued in the store. */
void actlog_destroy(actlog_t **a_p);

/* Appends one row for `e`. Returns 0, ERR_INVAL (no verb) or the store's error (logged). */
int actlog_record(actlog_t *a, const actlog_entry_t *e);

/* Appends the intent row of write `e` before it is sent: e's result fields are ignored and the
 * row's result is pending. The row is durable only after actlog_commit(). Returns as
 * actlog_record(). */
int actlog_intent(actlog_t *a, const actlog_entry_t *e);

/* Writes the result of a write (e: the same correlation id, verb and target as its intent, e->name
 * the name the answer gave) over its intent row, whose target name was `intent_name` (NULL:
 * e->name); e->request is not summarised again. Without an intent row the result becomes a row of
 * its own (store_audit_resolve()). Returns as actlog_record(). */
int actlog_resolve(actlog_t *a, const char *intent_name, const actlog_entry_t *e);

/* Commits every queued row (store_flush() of the writer's database). Returns 0 or the store's
 * error (ERR_BUSY: nothing committed, the rows stay queued). */
int actlog_commit(actlog_t *a);

/* Appends the redacted summary of `obj` (`obj` is not modified) to `out`: compact JSON, at most
 * max(max, REDACT_SUMMARY_MIN) bytes, still valid JSON when cut. Returns 0 or ERR_NOMEM. */
int actlog_summary(const json_t *obj, size_t max, buf_t *out);

/* Writes a fresh random correlation id (32 hex characters) into out[ACTLOG_CORR_LEN]. */
void actlog_new_correlation_id(char out[ACTLOG_CORR_LEN]);

/* Fills *out with the counters. */
void actlog_stats(const actlog_t *a, actlog_stats_t *out);

/* Self-test. */
int actlog_test(bool verbose);

#endif
