/*
 * audit_fixture: writes audit rows through the store API for the integration.audit test.
 *
 *   audit_fixture DB create N BASE_MS STEP_MS   N rows, row i at BASE_MS + i * STEP_MS
 *   audit_fixture DB append NAME                one row for Pod NAME, now
 *
 * The test spaces rows an hour apart, half an hour off its relative cutoffs (--since 60h,
 * prune --older-than 100h): a row is 30 minutes from any cutoff, so the counts do not depend on
 * how long the test takes to run (under ASan and CPU load it takes minutes, not seconds).
 *
 * Row i: cluster c(i%2), kind Pod/Service/RayCluster (i%3), namespace ns(i%4), name obj-(i%10),
 * verb create/update/patch/delete/status (i%5), actor submitter when i%7 == 0 else scheduler,
 * status 201/200/409/500/0 (i%5 offset by i/5), an error text when the status is 0 or >= 400,
 * correlation corr-(i/10). Messages hold commas, quotes and newlines (CSV quoting), and the
 * request summary is redact_summary() of a pod whose env holds the literal "hunter2-fixture"
 * under DB_PASSWORD and a secretKeyRef: the test checks that literal never shows.
 */
#include "redact.h"
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_kinds[] = {"Pod", "Service", "RayCluster"};
static const char *const s_verbs[] = {"create", "update", "patch", "delete", "status"};
static const int s_status[] = {201, 200, 409, 500, 0};

static int s_append(store_t *s, int64_t i, int64_t time_ms, const char *name_override,
                    const char *summary)
{
    char name[64];
    char cluster[16];
    char ns[16];
    char corr[32];
    char msg[128];
    snprintf(name, sizeof(name), "obj-%" PRId64, i % 10);
    snprintf(cluster, sizeof(cluster), "c%" PRId64, i % 2);
    snprintf(ns, sizeof(ns), "ns%" PRId64, i % 4);
    snprintf(corr, sizeof(corr), "corr-%" PRId64, i / 10);
    snprintf(msg, sizeof(msg), "row %" PRId64 ", with \"quotes\",\nand a second line", i);
    int status = s_status[(i + i / 5) % 5];
    store_audit_t rec = {
        .time_ms = time_ms,
        .actor_service = i % 7 == 0 ? "submitter" : "scheduler",
        .actor_replica = i % 7 == 0 ? "submitter/0" : "scheduler/0",
        .actor_version = "test",
        .cluster = name_override ? "c0" : cluster,
        .target_kind = name_override ? "Pod" : s_kinds[i % 3],
        .target_namespace = name_override ? "ns0" : ns,
        .target_name = name_override ? name_override : name,
        .verb = s_verbs[i % 5],
        .reason = "CreatedWorkerPod",
        .message = msg,
        .cause_key = "ray.io/RayCluster/ns0/demo",
        .cause_generation = 1 + i % 3,
        .cause_resource_version = "42",
        .correlation_id = corr,
        .request_summary = summary,
        .result_status = status,
        .result_error = status == 0 || status >= 400 ? "failed, \"badly\"" : NULL,
        .latency_ms = i % 50,
    };
    return store_audit_append(s, &rec);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: audit_fixture DB create N BASE_MS STEP_MS | DB append NAME\n");
        return 2;
    }
    json_error_t je;
    json_t *pod = json_loads(
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"w\",\"namespace\":\"ns0\"},\"spec\":{"
        "\"containers\":[{\"name\":\"ray\",\"env\":[{\"name\":\"DB_PASSWORD\",\"value\":"
        "\"hunter2-fixture\"},{\"name\":\"FROM_SECRET\",\"valueFrom\":{\"secretKeyRef\":{"
        "\"name\":\"db\",\"key\":\"password\"}}}]}]}}",
        0, &je);
    buf_t sum;
    buf_init(&sum, 8192);
    if (!pod || redact_summary(pod, REDACT_SUMMARY_MAX_DEFAULT, &sum) != 0) {
        fprintf(stderr, "audit_fixture: cannot build the summary\n");
        return 1;
    }
    json_decref(pod);
    int err = 0;
    store_t *s = store_open(argv[1], STORE_READWRITE, &err);
    if (!s) {
        fprintf(stderr, "audit_fixture: cannot open %s: %d\n", argv[1], err);
        return 1;
    }
    int rc = 0;
    if (strcmp(argv[2], "create") == 0 && argc == 6) {
        int64_t n = strtoll(argv[3], NULL, 10);
        int64_t base = strtoll(argv[4], NULL, 10);
        int64_t step = strtoll(argv[5], NULL, 10);
        for (int64_t i = 0; i < n && !rc; i++)
            rc = s_append(s, i, base + i * step, NULL, buf_str(&sum));
    } else if (strcmp(argv[2], "append") == 0) {
        rc = s_append(s, 0, 0, argv[3], buf_str(&sum));
    } else {
        rc = -1;
    }
    if (!rc)
        rc = store_flush(s);
    store_destroy(&s);
    buf_free(&sum);
    if (rc)
        fprintf(stderr, "audit_fixture: failed: %d\n", rc);
    return rc ? 1 : 0;
}
