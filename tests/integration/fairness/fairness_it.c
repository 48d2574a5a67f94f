/*
 * fairness_it: fair progress across keys (issue 7: "one huge scale-up or a burst of jobs must not
 * starve other keys"), end to end in-process on one loop: kubesim's API server (simulate=true,
 * with API latency), the watcher logic writing observed.db and publishing on an inproc:// bus,
 * and the scheduler logic (bus -> work queue -> reconcile) auditing into scheduler.db.
 *
 * Scenario: RayCluster "big" is created with one worker group of FT_BIG_WORKERS replicas; once
 * its first worker create is audited (its scale-up pass is under way), FT_SMALL RayClusters
 * "small-<i>" are created. Each pass keeps at most RECONCILE_PASS_WINDOW requests in flight, so
 * every small cluster's head pod create must be audited BEFORE big's last worker create. The
 * assertions are on the order of audit rows (their ids, assigned in append order), never on time;
 * the waits only bound how long the test may take.
 *
 * Usage: fairness_it [-v]. Exit 0 when every check passes.
 */
#include "harness.h"

#include <sqlite3.h>

#define FT_WAIT_MS 120000 /* longest wait for one step (a bound, not an assertion) */
#define FT_NS "default" /* namespace */
#define FT_BIG_WORKERS 1000 /* the big scale-up */
#define FT_SMALL 20 /* RayClusters created meanwhile */
#define FT_LATENCY_MS 5 /* fixed API latency */
#define FT_JITTER_MS 5 /* random API latency on top */

static harness_t g_h; /* kubesim, watcher, bus and reconciler on one loop */

/* One integer from `sql` on the scheduler's database (committed rows only); -1 on error. */
static int64_t s_int(const char *sql)
{
    return harness_sql_int(&g_h, sql);
}

#define FT_BIG_WORKER_CREATES                                                                      \
    "FROM audit WHERE cause_key = 'c1/" FT_NS "/big' AND target_kind = 'Pod' AND verb = 'create' " \
    "AND reason = 'CreatedWorkerPod'"

/* Waits until `sql` yields at least `want`; returns the last value. */
static int64_t s_wait_int(const char *sql, int64_t want)
{
    int64_t end = loop_clock_ms() + FT_WAIT_MS, v = -1;
    while (loop_clock_ms() < end) {
        loop_run_once(g_h.loop, 10);
        store_flush(g_h.sdb);
        if ((v = s_int(sql)) >= want)
            break;
    }
    return v;
}

static int s_scenario(void)
{
    json_t *sample = NULL;
    int failed = harness_start(&g_h);
    if (!g_h.started)
        goto out;
    apiserver_set_latency(g_h.api, FT_LATENCY_MS, FT_JITTER_MS);

    sample = harness_load_sample(&g_h, "ray-cluster.sample.yaml");
    CHECK(sample != NULL);
    if (!sample)
        goto out;
    k8s_res_t rcres = {
        .group = "ray.io", .version = "v1", .resource = "rayclusters", .namespace_ = FT_NS};
    /* 1. the big scale-up starts */
    json_t *big = json_deep_copy(sample);
    jx_set_path(big, "metadata.name", json_string("big"));
    json_t *wg = json_array_get(jx_get(big, "spec.workerGroupSpecs"), 0);
    json_object_set_new(wg, "replicas", json_integer(FT_BIG_WORKERS));
    json_object_set_new(wg, "maxReplicas", json_integer(FT_BIG_WORKERS));
    CHECK(harness_create(&g_h, g_h.admin, &rcres, big, NULL, 0) == 0);
    json_decref(big);
    CHECK(s_wait_int("SELECT count(*) " FT_BIG_WORKER_CREATES, 1) >= 1);
    /* 2. meanwhile, FT_SMALL RayClusters (the admin client is not the scheduler's: their
     * creates do not queue behind the scheduler's writes) */
    for (int i = 0; i < FT_SMALL; i++) {
        json_t *s = json_deep_copy(sample);
        char name[32];
        snprintf(name, sizeof(name), "small-%d", i);
        jx_set_path(s, "metadata.name", json_string(name));
        json_object_set_new(json_array_get(jx_get(s, "spec.workerGroupSpecs"), 0), "replicas",
                            json_integer(0));
        json_object_set_new(json_array_get(jx_get(s, "spec.workerGroupSpecs"), 0), "minReplicas",
                            json_integer(0));
        CHECK(harness_create(&g_h, g_h.admin, &rcres, s, NULL, 0) == 0);
        json_decref(s);
    }
    int64_t at_small = s_int("SELECT count(*) " FT_BIG_WORKER_CREATES);
    /* 3. everything is written */
    int64_t nbig = s_wait_int("SELECT count(*) " FT_BIG_WORKER_CREATES, FT_BIG_WORKERS);
    int64_t nsmall = s_wait_int("SELECT count(DISTINCT cause_key) FROM audit WHERE target_kind = "
                                "'Pod' AND verb = 'create' AND reason = 'CreatedHeadPod' AND "
                                "cause_key LIKE 'c1/" FT_NS "/small-%'",
                                FT_SMALL);
    CHECK(nbig == FT_BIG_WORKERS);
    CHECK(nsmall == FT_SMALL);
    /* the small clusters arrived while big still had most of its scale-up ahead */
    CHECK(at_small >= 1 && at_small < FT_BIG_WORKERS / 2);
    /* 4. the order: every small head create before big's last worker create */
    int64_t last_big = s_int("SELECT max(id) " FT_BIG_WORKER_CREATES);
    int64_t last_small =
        s_int("SELECT max(id) FROM audit WHERE target_kind = 'Pod' AND verb = "
              "'create' AND reason = 'CreatedHeadPod' AND cause_key LIKE 'c1/" FT_NS "/small-%'");
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) " FT_BIG_WORKER_CREATES " AND id > %lld",
             (long long)last_small);
    int64_t after = s_int(sql);
    if (g_h.verbose)
        printf("  big worker creates: %lld audited when the small clusters were created, %lld "
               "after the last small head create (of %d)\n",
               (long long)at_small, (long long)after, FT_BIG_WORKERS);
    CHECK(last_big > 0 && last_small > 0 && last_small < last_big);
    /* and well before: most of the big scale-up was still to come */
    CHECK(after >= FT_BIG_WORKERS / 2);
    /* every write of the small clusters got an answer (none was starved into an error) */
    CHECK(s_int("SELECT count(*) FROM audit WHERE cause_key LIKE 'c1/" FT_NS "/small-%' AND "
                "result_error IS NOT NULL") == 0);
out:
    json_decref(sample);
    failed += harness_stop(&g_h);
    return failed;
}

int main(int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = harness_init(
        &g_h, "fairness_it", verbose, verbose ? LOG_WARN : LOG_ERROR,
        &(harness_opts_t){
            .nodes = 4, .wait_ms = FT_WAIT_MS, .qps = 100000, .concurrency = 8, .desired = false});
    if (g_h.api)
        failed += s_scenario();
    harness_end(&g_h);
    return SELFTEST_RESULT("fairness_it", true);
}
