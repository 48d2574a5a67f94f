/*
 * actlog: the controllers' audit writer (see actlog.h).
 */
#include "actlog.h"

#include "err.h"
#include "hash.h"
#include "log.h"
#include "redact.h"
#include "rftime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct actlog {
    store_t *db; /* the scheduler's database (borrowed) */
    char service[ACTLOG_FIELD_MAX]; /* actor service */
    char replica[ACTLOG_FIELD_MAX]; /* actor replica */
    char version[ACTLOG_FIELD_MAX]; /* actor version */
    actlog_stats_t stats; /* counters */
};

static void s_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

actlog_t *actlog_new(store_t *db, const actlog_actor_t *actor)
{
    if (!db || !actor)
        return NULL;
    actlog_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->db = db;
    s_copy(a->service, sizeof(a->service), actor->service ? actor->service : "scheduler");
    s_copy(a->replica, sizeof(a->replica), actor->replica);
    s_copy(a->version, sizeof(a->version), actor->version ? actor->version : RF_VERSION);
    return a;
}

void actlog_destroy(actlog_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    free(*a_p);
    *a_p = NULL;
}

int actlog_summary(const json_t *obj, size_t max, buf_t *out)
{
    if (!obj)
        return 0;
    // One redaction rule for every audit row and log line: common/redact.
    int rc = redact_summary(obj, max < REDACT_SUMMARY_MIN ? REDACT_SUMMARY_MIN : max, out);
    return rc == ERR_TOOBIG ? 0 : rc;
}

void actlog_new_correlation_id(char out[ACTLOG_CORR_LEN])
{
    static uint64_t s_counter;
    unsigned char b[16];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        uint64_t x = (uint64_t)rftime_now_ms();
        uint64_t y = ++s_counter ^ ((uint64_t)getpid() << 32);
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    hash_hex(b, sizeof(b), out, ACTLOG_CORR_LEN);
}

/* The row of `e` ("intent": result pending, `resolve`: over the intent named `intent_name`). */
typedef enum { S_ROW, S_INTENT, S_RESOLVE } s_mode_t;

static int s_write(actlog_t *a, const actlog_entry_t *e, s_mode_t mode, const char *intent_name)
{
    if (!a || !e || !e->verb)
        return ERR_INVAL;
    buf_t sum;
    buf_init(&sum, ACTLOG_SUMMARY_MAX + 8);
    if (e->request && mode != S_RESOLVE)
        actlog_summary(e->request, ACTLOG_SUMMARY_MAX, &sum);
    bool intent = mode == S_INTENT;
    store_audit_t rec = {
        .actor_service = a->service,
        .actor_replica = a->replica,
        .actor_version = a->version,
        .cluster = e->cluster,
        .target_group = e->group,
        .target_kind = e->kind,
        .target_namespace = e->ns,
        .target_name = e->name,
        .target_uid = e->uid && e->uid[0] ? e->uid : NULL,
        .verb = e->verb,
        .reason = e->reason,
        .message = e->message,
        .cause_key = e->cause ? e->cause->key : NULL,
        .cause_generation = e->cause ? e->cause->generation : 0,
        .cause_resource_version = e->cause ? e->cause->resource_version : NULL,
        .cause_event_id = e->cause ? e->cause->event_id : 0,
        .correlation_id = e->correlation_id,
        .request_summary = sum.len ? buf_str(&sum) : NULL,
        .result_status = intent ? 0 : e->result_status,
        .result_error = intent ? STORE_AUDIT_PENDING : e->result_error,
        .latency_ms = intent ? 0 : e->latency_ms,
    };
    int rc = mode == S_RESOLVE ? store_audit_resolve(a->db, intent_name, &rec)
                               : store_audit_append(a->db, &rec);
    buf_free(&sum);
    if (rc != 0) {
        a->stats.failures++;
        log_warn("audit row refused", "verb", e->verb, "name", e->name ? e->name : "", "error",
                 err_str(rc), NULL);
        return rc;
    }
    if (mode != S_RESOLVE)
        a->stats.rows++;
    return 0;
}

int actlog_record(actlog_t *a, const actlog_entry_t *e)
{
    return s_write(a, e, S_ROW, NULL);
}

int actlog_intent(actlog_t *a, const actlog_entry_t *e)
{
    return s_write(a, e, S_INTENT, NULL);
}

int actlog_resolve(actlog_t *a, const char *intent_name, const actlog_entry_t *e)
{
    if (!e || !e->correlation_id || !e->correlation_id[0])
        return ERR_INVAL;
    return s_write(a, e, S_RESOLVE, intent_name);
}

int actlog_commit(actlog_t *a)
{
    return a ? store_flush(a->db) : ERR_INVAL;
}

void actlog_stats(const actlog_t *a, actlog_stats_t *out)
{
    if (a && out)
        *out = a->stats;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

int actlog_test(bool verbose)
{
    int failed = 0;
    /* redaction */
    json_t *pod = json_pack(
        "{s:s, s:{s:s}, s:{s:[{s:s, s:[s,s], s:[{s:s,s:s},{s:s,s:s},{s:s,s:{s:{s:s,s:s}}},"
        "{s:s,s:s}]}]}}",
        "kind", "Pod", "metadata", "name", "p", "spec", "containers", "name", "ray", "args",
        "ray start --redis-password=hunter2 --block", "x --token=abc", "env", "name",
        "REDIS_PASSWORD", "value", "hunter2", "name", "RAY_AUTH_TOKEN", "value", "tok123", "name",
        "FROM_SECRET_PASSWORD", "valueFrom", "secretKeyRef", "name", "s", "key", "k", "name",
        "PLAIN", "value", "visible");
    CHECK(pod != NULL);
    buf_t b;
    buf_init(&b, 1 << 16);
    CHECK(actlog_summary(pod, ACTLOG_SUMMARY_MAX, &b) == 0);
    const char *s = buf_str(&b);
    CHECK(strstr(s, "hunter2") == NULL);
    CHECK(strstr(s, "tok123") == NULL);
    CHECK(strstr(s, "abc") == NULL);
    CHECK(strstr(s, "visible") != NULL);
    CHECK(strstr(s, "secretKeyRef") != NULL);
    CHECK(strstr(s, "--block") != NULL);
    CHECK(strstr(s, "REDIS_PASSWORD") != NULL);
    /* the original is untouched */
    CHECK(strstr(json_string_value(json_array_get(
                     json_object_get(
                         json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"),
                                        0),
                         "args"),
                     0)),
                 "hunter2") != NULL);
    buf_reset(&b);
    json_t *sec = json_pack("{s:s, s:{s:s}, s:{s:s}}", "kind", "Secret", "metadata", "name", "x",
                            "data", "auth_token", "c2VjcmV0");
    CHECK(actlog_summary(sec, ACTLOG_SUMMARY_MAX, &b) == 0);
    CHECK(strstr(buf_str(&b), "c2VjcmV0") == NULL);
    CHECK(strstr(buf_str(&b), "auth_token") != NULL);
    /* bounded, and still valid JSON */
    buf_reset(&b);
    json_t *big = json_pack("{s:s,s:{s:s}}", "kind", "ConfigMap", "metadata", "name", "big");
    char filler[8192];
    memset(filler, 'y', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    json_object_set_new(big, "blob", json_string(filler));
    CHECK(actlog_summary(big, REDACT_SUMMARY_MIN, &b) == 0);
    CHECK(b.len <= REDACT_SUMMARY_MIN);
    json_t *back = json_loads(buf_str(&b), 0, NULL);
    CHECK(back != NULL);
    json_decref(back);
    json_decref(big);
    buf_free(&b);
    json_decref(sec);
    json_decref(pod);
    CHECK(actlog_summary(NULL, ACTLOG_SUMMARY_MAX, &b) == 0);

    char c1[ACTLOG_CORR_LEN], c2[ACTLOG_CORR_LEN];
    actlog_new_correlation_id(c1);
    actlog_new_correlation_id(c2);
    CHECK(strlen(c1) == 32 && strcmp(c1, c2) != 0);

    /* rows through a real store */
    CHECK(actlog_new(NULL, &(actlog_actor_t){0}) == NULL);
    char dir[] = "/tmp/rf-audit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/scheduler.db", dir);
    int err = 0;
    store_t *db = store_open(path, STORE_READWRITE, &err);
    CHECK(db != NULL);
    actlog_t *a =
        actlog_new(db, &(actlog_actor_t){.service = "scheduler", .replica = "scheduler/0"});
    CHECK(a != NULL);
    CHECK(actlog_record(a, &(actlog_entry_t){0}) == ERR_INVAL);
    actlog_cause_t cause = {
        .key = "c/default/rc", .generation = 3, .resource_version = "42", .event_id = 7};
    json_t *req = json_pack("{s:s,s:{s:s}}", "kind", "Pod", "metadata", "name", "rc-head-x");
    CHECK(actlog_record(a, &(actlog_entry_t){.cluster = "c",
                                             .kind = "Pod",
                                             .ns = "default",
                                             .name = "rc-head-x",
                                             .verb = "create",
                                             .reason = "CreatedHeadPod",
                                             .message = "Created head Pod default/rc-head-x",
                                             .cause = &cause,
                                             .correlation_id = c1,
                                             .request = req,
                                             .result_status = 201,
                                             .latency_ms = 3}) == 0);
    json_decref(req);
    CHECK(store_flush(db) == 0);
    store_audit_list_t l = {0};
    CHECK(store_audit_query_target(db, "c", "Pod", "default", "rc-head-x", 0, 0, 10, &l) == 0);
    CHECK(l.n == 1);
    if (l.n == 1) {
        const store_audit_t *r = l.rows[0];
        CHECK(strcmp(r->actor_replica, "scheduler/0") == 0);
        CHECK(strcmp(r->reason, "CreatedHeadPod") == 0);
        CHECK(r->cause_generation == 3 && r->cause_event_id == 7);
        CHECK(strcmp(r->cause_resource_version, "42") == 0);
        CHECK(strcmp(r->correlation_id, c1) == 0);
        CHECK(r->result_status == 201 && r->request_summary && strstr(r->request_summary, "Pod"));
    }
    store_audit_list_free(&l);
    /* intent -> result: the row is durable, pending, before the write is sent; the answer is
     * written over it (one row per write); a write whose answer never came stays pending */
    json_t *wreq = json_pack("{s:s,s:{s:s,s:s}}", "kind", "Pod", "metadata", "generateName",
                             "rc-worker-", "name", "rc-worker-bcd42");
    actlog_entry_t in = {.cluster = "c",
                         .kind = "Pod",
                         .ns = "default",
                         .name = "rc-worker-bcd42",
                         .verb = "create",
                         .cause = &cause,
                         .correlation_id = c2,
                         .request = wreq,
                         .result_status = 201};
    CHECK(actlog_intent(a, &in) == 0);
    in.name = "rc-worker-lost";
    CHECK(actlog_intent(a, &in) == 0);
    CHECK(actlog_commit(a) == 0);
    CHECK(actlog_commit(NULL) == ERR_INVAL);
    CHECK(store_audit_query_target(db, "c", "Pod", "default", "rc-worker-bcd42", 0, 0, 10, &l) ==
          0);
    CHECK(l.n == 1);
    if (l.n == 1) {
        CHECK(l.rows[0]->result_status == 0 && l.rows[0]->result_error &&
              strcmp(l.rows[0]->result_error, STORE_AUDIT_PENDING) == 0);
        CHECK(l.rows[0]->request_summary && strstr(l.rows[0]->request_summary, "generateName"));
        CHECK(strcmp(l.rows[0]->correlation_id, c2) == 0 && l.rows[0]->cause_generation == 3);
    }
    store_audit_list_free(&l);
    in.name = "rc-worker-bcd42";
    in.uid = "uid-1";
    in.reason = "CreatedWorkerPod";
    in.message = "Created worker Pod default/rc-worker-bcd42";
    in.request = NULL;
    in.latency_ms = 5;
    CHECK(actlog_resolve(a, NULL, &in) == 0);
    CHECK(actlog_resolve(a, NULL, &(actlog_entry_t){.verb = "create"}) == ERR_INVAL);
    CHECK(actlog_commit(a) == 0);
    CHECK(store_audit_query_target(db, "c", "Pod", "default", "rc-worker-bcd42", 0, 0, 10, &l) ==
          0);
    CHECK(l.n == 1);
    if (l.n == 1) {
        const store_audit_t *r = l.rows[0];
        CHECK(r->result_status == 201 && r->result_error == NULL && r->latency_ms == 5);
        CHECK(r->target_uid && strcmp(r->target_uid, "uid-1") == 0);
        CHECK(strcmp(r->reason, "CreatedWorkerPod") == 0);
        CHECK(r->request_summary && strstr(r->request_summary, "generateName"));
    }
    store_audit_list_free(&l);
    CHECK(store_audit_query_target(db, "c", "Pod", "default", "rc-worker-lost", 0, 0, 10, &l) == 0);
    CHECK(l.n == 1 && l.rows[0]->result_error &&
          strcmp(l.rows[0]->result_error, STORE_AUDIT_PENDING) == 0);
    store_audit_list_free(&l);
    /* a failed answer is written over its intent too */
    in.name = "svc";
    in.kind = "Service";
    in.uid = NULL;
    CHECK(actlog_intent(a, &in) == 0);
    in.result_status = 422;
    in.result_error = "spec.ports: Required value";
    CHECK(actlog_resolve(a, "svc", &in) == 0);
    CHECK(actlog_commit(a) == 0);
    CHECK(store_audit_query_target(db, "c", "Service", "default", "svc", 0, 0, 10, &l) == 0);
    CHECK(l.n == 1 && l.rows[0]->result_status == 422 && l.rows[0]->result_error &&
          strstr(l.rows[0]->result_error, "Required"));
    store_audit_list_free(&l);
    json_decref(wreq);
    actlog_stats_t st = {0};
    actlog_stats(a, &st);
    CHECK(st.rows == 4 && st.failures == 0);
    actlog_destroy(&a);
    actlog_destroy(&a);
    CHECK(a == NULL);
    store_destroy(&db);
    unlink(path);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
    rmdir(dir);
    return SELFTEST_RESULT("actlog", verbose);
}

#endif /* RF_SELFTEST */
