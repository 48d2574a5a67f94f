/*
 * shards_it: replicas of one component splitting shards with common/shards, over both lease
 * backends: SQLite (one file, one connection per replica) and Kubernetes Lease objects (kubesim's
 * API server in-process, one client per replica). All replicas share one loop, so their
 * monotonic clocks are the same clock and the safety check is exact.
 *
 * Per backend: one replica takes all shards; a second joins and they converge to half each; the
 * second is killed (destroyed without releasing) and the survivor takes its shards within two
 * lease durations, never before the dead replica's local deadline; a replica rejoins and then
 * stops cleanly, handing its shards back at once. Throughout, ownership is sampled every few ms
 * from every replica's shards_owns() and no shard may be owned by two replicas at once; the
 * callbacks are checked against shards_owns() too. Kubernetes only: two replicas racing to acquire
 * one Lease (missing, then expired) produce exactly one winner; the Lease fields as stored.
 *
 * Usage: shards_it [-v]. Exit 0 when every check passes.
 */
#include "apiserver.h"
#include "err.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "lease.h"
#include "log.h"
#include "rftime.h"
#include "selftest.h"
#include "shards.h"
#include "store.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IT_SHARDS 16 /* shards per component */
#define IT_LEASE_MS 300 /* lease duration */
#define IT_RENEW_MS 100 /* round period */
#define IT_REPLICAS 3 /* replica slots */
#define IT_SAMPLE_MS 2 /* loop wait between ownership samples */
#define IT_WAIT_MS 5000 /* longest wait for one step */

typedef enum { BK_SQLITE, BK_K8S } bk_t;

/* One replica: its backend connection, its shards_t, and what its callbacks said. */
typedef struct {
    const char *id; /* replica id */
    store_t *store; /* SQLite: its own connection */
    k8s_client_t *client; /* Kubernetes: its own client */
    lease_backend_t *be; /* its backend */
    shards_t *sh; /* its ownership manager, NULL when dead */
    bool cb_owned[IT_SHARDS]; /* owned according to the callbacks */
    int64_t acquired_at[IT_SHARDS]; /* monotonic ms of the last on_acquire */
    int cb_errors; /* callbacks inconsistent with shards_owns() */
} replica_t;

static loop_t *g_loop;
static bool g_verbose;
static replica_t g_rep[IT_REPLICAS];
static int g_overlaps; /* samples where two replicas owned one shard */
static int64_t g_dead_until[IT_SHARDS]; /* killed replica's local deadline per shard */

static void s_on_acquire(shards_t *sh, uint32_t shard, void *arg)
{
    replica_t *r = arg;
    if (shard >= IT_SHARDS || r->cb_owned[shard] || !shards_owns(sh, shard))
        r->cb_errors++;
    for (int i = 0; i < IT_REPLICAS; i++) {
        if (&g_rep[i] != r && g_rep[i].sh && shards_owns(g_rep[i].sh, shard))
            g_overlaps++;
    }
    if (shard < IT_SHARDS) {
        r->cb_owned[shard] = true;
        r->acquired_at[shard] = loop_clock_ms();
    }
}

static void s_on_release(shards_t *sh, uint32_t shard, void *arg)
{
    (void)sh;
    replica_t *r = arg;
    if (shard >= IT_SHARDS || !r->cb_owned[shard])
        r->cb_errors++;
    else
        r->cb_owned[shard] = false;
}

/* Checks that no shard is owned by two live replicas now. */
static void s_sample(void)
{
    for (uint32_t s = 0; s < IT_SHARDS; s++) {
        int owners = 0;
        for (int i = 0; i < IT_REPLICAS; i++)
            owners += g_rep[i].sh && shards_owns(g_rep[i].sh, s);
        if (owners > 1)
            g_overlaps++;
    }
}

static size_t s_owned(int i)
{
    return g_rep[i].sh ? shards_owned_count(g_rep[i].sh) : 0;
}

/* Runs the loop, sampling, until want_a/want_b shards are owned by replicas a/b (b < 0: only a),
 * or IT_WAIT_MS. Returns the ms it took, or -1 on timeout. */
static int64_t s_wait_split(int a, size_t want_a, int b, size_t want_b)
{
    int64_t start = loop_clock_ms();
    while (loop_clock_ms() - start < IT_WAIT_MS) {
        if (s_owned(a) == want_a && (b < 0 || s_owned(b) == want_b))
            return loop_clock_ms() - start;
        loop_run_once(g_loop, IT_SAMPLE_MS);
        s_sample();
    }
    return -1;
}

/* Runs the loop for ms, sampling. */
static void s_run_for(int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end) {
        loop_run_once(g_loop, IT_SAMPLE_MS);
        s_sample();
    }
}

/* Starts replica slot i over backend kind `bk`. Returns 0 or -1. */
static int s_start(int i, const char *id, bk_t bk, const char *db, const kubeconfig_t *kc)
{
    replica_t *r = &g_rep[i];
    memset(r, 0, sizeof(*r));
    r->id = id;
    int err = 0;
    if (bk == BK_SQLITE) {
        r->store = store_open(db, STORE_READWRITE, &err);
        r->be = r->store ? lease_sqlite_new(g_loop, r->store) : NULL;
    } else {
        k8s_config_t cfg = {.qps = -1, .max_retries = 1, .backoff_base_ms = 10};
        r->client = k8s_client_new(g_loop, kc, &cfg);
        r->be = r->client ? lease_k8s_new(g_loop, r->client, "default") : NULL;
    }
    shards_callbacks_t cb = {.on_acquire = s_on_acquire, .on_release = s_on_release, .arg = r};
    if (r->be)
        r->sh = shards_new(g_loop, r->be, "sched", id, IT_SHARDS, IT_LEASE_MS, IT_RENEW_MS, &cb);
    return r->sh ? 0 : -1;
}

/* Frees what is left of replica slot i (its shards_t first). */
static void s_free(int i)
{
    replica_t *r = &g_rep[i];
    shards_destroy(&r->sh);
    lease_backend_destroy(&r->be);
    k8s_client_destroy(&r->client);
    store_destroy(&r->store);
}

/* Kills replica i: destroyed without releasing anything, after noting its local deadlines. */
static void s_kill(int i)
{
    for (uint32_t s = 0; s < IT_SHARDS; s++)
        g_dead_until[s] = shards_owned_until(g_rep[i].sh, s);
    s_free(i);
}

/* Stops replica i cleanly and waits for its releases. */
static void s_stop(int i)
{
    shards_stop(g_rep[i].sh);
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (shards_pending(g_rep[i].sh) > 0 && loop_clock_ms() < end) {
        loop_run_once(g_loop, IT_SAMPLE_MS);
        s_sample();
    }
    s_free(i);
}

static int s_scenario(bk_t bk, const char *db, const kubeconfig_t *kc)
{
    int failed = 0;
    const char *name = bk == BK_SQLITE ? "sqlite" : "k8s";
    g_overlaps = 0;

    /* One replica takes everything. */
    CHECK(s_start(0, "a", bk, db, kc) == 0);
    int64_t t_first = s_wait_split(0, IT_SHARDS, -1, 0);
    CHECK(t_first >= 0);

    /* A second joins: half each, within a few rounds, never overlapping. */
    CHECK(s_start(1, "b", bk, db, kc) == 0);
    int64_t t_join = s_wait_split(0, IT_SHARDS / 2, 1, IT_SHARDS / 2);
    CHECK(t_join >= 0 && t_join <= 10 * IT_RENEW_MS);
    s_run_for(3 * IT_LEASE_MS);
    CHECK(s_owned(0) == IT_SHARDS / 2 && s_owned(1) == IT_SHARDS / 2);
    for (uint32_t s = 0; s < IT_SHARDS; s++) {
        CHECK(g_rep[0].cb_owned[s] == shards_owns(g_rep[0].sh, s));
        CHECK(g_rep[1].cb_owned[s] == shards_owns(g_rep[1].sh, s));
    }
    shards_stats_t st;
    shards_stats(g_rep[0].sh, &st);
    CHECK(st.members == 2 && st.target == IT_SHARDS / 2 && st.lost == 0);

    /* Kill b: a takes over within two lease durations, and never before b's local deadline. */
    int64_t t_kill = loop_clock_ms();
    s_kill(1);
    int64_t t_take = s_wait_split(0, IT_SHARDS, -1, 0);
    CHECK(t_take >= 0 && t_take <= 2 * IT_LEASE_MS);
    int early = 0;
    for (uint32_t s = 0; s < IT_SHARDS; s++) {
        if (g_dead_until[s] > 0 && g_rep[0].acquired_at[s] < g_dead_until[s])
            early++;
        if (g_dead_until[s] > 0 && g_rep[0].acquired_at[s] < t_kill)
            early++;
    }
    CHECK(early == 0);

    /* b rejoins, then stops cleanly: a has everything back well within one lease duration. */
    CHECK(s_start(1, "b", bk, db, kc) == 0);
    int64_t t_rejoin = s_wait_split(0, IT_SHARDS / 2, 1, IT_SHARDS / 2);
    CHECK(t_rejoin >= 0);
    CHECK(g_rep[1].cb_errors == 0);
    s_stop(1);
    int64_t t_handback = s_wait_split(0, IT_SHARDS, -1, 0);
    CHECK(t_handback >= 0 && t_handback < IT_LEASE_MS);

    CHECK(g_overlaps == 0);
    CHECK(g_rep[0].cb_errors == 0);
    shards_stats(g_rep[0].sh, &st);
    CHECK(st.lost == 0);
    printf("shards_it %s: all %" PRId64 " ms; join converged %" PRId64 " ms; takeover after kill "
           "%" PRId64 " ms (lease %d ms); rejoin %" PRId64 " ms; hand-back after stop %" PRId64
           " ms; overlaps %d\n",
           name, t_first, t_join, t_take, IT_LEASE_MS, t_rejoin, t_handback, g_overlaps);
    s_stop(0);
    return failed;
}

/* What a race callback saw. */
typedef struct {
    int calls; /* results */
    int err; /* last err */
} race_t;

static void s_race_done(lease_backend_t *b, const lease_result_t *r, void *arg)
{
    (void)b;
    race_t *x = arg;
    x->calls++;
    x->err = r->err;
}

static void s_race_wait(race_t *x, race_t *y)
{
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while ((x->calls < 1 || y->calls < 1) && loop_clock_ms() < end)
        loop_run_once(g_loop, IT_SAMPLE_MS);
}

static void s_got(k8s_client_t *c, const k8s_result_t *r, void *arg)
{
    (void)c;
    json_t **out = arg;
    *out = r->err == 0 ? json_incref(r->body) : json_null();
}

static int s_k8s_race(const kubeconfig_t *kc)
{
    int failed = 0;
    k8s_config_t cfg = {.qps = -1};
    k8s_client_t *c1 = k8s_client_new(g_loop, kc, &cfg);
    k8s_client_t *c2 = k8s_client_new(g_loop, kc, &cfg);
    lease_backend_t *b1 = c1 ? lease_k8s_new(g_loop, c1, "default") : NULL;
    lease_backend_t *b2 = c2 ? lease_k8s_new(g_loop, c2, "default") : NULL;
    CHECK(b1 && b2);
    if (!b1 || !b2)
        goto out;
    /* A missing Lease: both GET 404, both POST, one wins. */
    race_t x = {0}, y = {0};
    CHECK(lease_acquire(b1, "race/shard/0", "p", 5000, s_race_done, &x) > 0);
    CHECK(lease_acquire(b2, "race/shard/0", "q", 5000, s_race_done, &y) > 0);
    s_race_wait(&x, &y);
    CHECK(x.calls == 1 && y.calls == 1);
    CHECK((x.err == 0) + (y.err == 0) == 1);
    CHECK((x.err == ERR_CONFLICT) + (y.err == ERR_CONFLICT) == 1);

    /* An expired Lease: both GET it, both PUT with the same resourceVersion, one wins. */
    race_t z = {0};
    CHECK(lease_acquire(b1, "race/shard/1", "old", 1, s_race_done, &z) > 0);
    s_race_wait(&z, &z);
    CHECK(z.err == 0);
    usleep(20 * 1000);
    memset(&x, 0, sizeof(x));
    memset(&y, 0, sizeof(y));
    CHECK(lease_acquire(b1, "race/shard/1", "p", 5000, s_race_done, &x) > 0);
    CHECK(lease_acquire(b2, "race/shard/1", "q", 5000, s_race_done, &y) > 0);
    s_race_wait(&x, &y);
    CHECK((x.err == 0) + (y.err == 0) == 1);
    CHECK((x.err == ERR_CONFLICT) + (y.err == ERR_CONFLICT) == 1);
    const char *winner = x.err == 0 ? "p" : "q";

    /* The Lease as stored. */
    json_t *got = NULL;
    k8s_res_t res = {.group = "coordination.k8s.io",
                     .version = "v1",
                     .resource = "leases",
                     .namespace_ = "default",
                     .name = "race.shard.1"};
    CHECK(k8s_get(c1, &res, NULL, s_got, &got) > 0);
    int64_t end = loop_clock_ms() + IT_WAIT_MS;
    while (!got && loop_clock_ms() < end)
        loop_run_once(g_loop, IT_SAMPLE_MS);
    const char *rt = jx_str(got, "spec.renewTime", "");
    int64_t ms = 0;
    CHECK(!strcmp(jx_str(got, "spec.holderIdentity", ""), winner));
    CHECK(jx_int(got, "spec.leaseDurationSeconds", 0) == 5);
    CHECK(jx_int(got, "spec.leaseTransitions", -1) == 1);
    CHECK(strlen(rt) == RFTIME_MICRO_LEN && rftime_parse(rt, &ms) == 0);
    CHECK(ms <= store_wall_ms() && ms > store_wall_ms() - IT_WAIT_MS);
    const char *grp =
        json_string_value(json_object_get(jx_get(got, "metadata.labels"), LEASE_K8S_LABEL_GROUP));
    CHECK(grp && !strcmp(grp, "race.shard"));
    if (g_verbose && got)
        printf("shards_it k8s: lease after the race: holder %s renewTime %s\n",
               jx_str(got, "spec.holderIdentity", "?"), rt);
    json_decref(got);

    /* The loser cannot release it; the winner can, and then the loser acquires at once. */
    lease_backend_t *lose = x.err == 0 ? b2 : b1;
    lease_backend_t *win = x.err == 0 ? b1 : b2;
    const char *loser = x.err == 0 ? "q" : "p";
    memset(&x, 0, sizeof(x));
    CHECK(lease_release(lose, "race/shard/1", loser, s_race_done, &x) > 0);
    s_race_wait(&x, &x);
    CHECK(x.err == ERR_NOTFOUND);
    memset(&x, 0, sizeof(x));
    CHECK(lease_release(win, "race/shard/1", winner, s_race_done, &x) > 0);
    s_race_wait(&x, &x);
    CHECK(x.err == 0);
    memset(&x, 0, sizeof(x));
    CHECK(lease_acquire(lose, "race/shard/1", loser, 5000, s_race_done, &x) > 0);
    s_race_wait(&x, &x);
    CHECK(x.err == 0);
out:
    lease_backend_destroy(&b1);
    lease_backend_destroy(&b2);
    k8s_client_destroy(&c1);
    k8s_client_destroy(&c2);
    return failed;
}

int main(int argc, char **argv)
{
    g_verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    int failed = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_setup("shards_it", LOG_WARN, 2);
    g_loop = loop_new();
    apiserver_t *api = g_loop ? apiserver_new(g_loop, NULL) : NULL;
    CHECK(g_loop && api);
    if (!api)
        return 1;

    char dir[] = "/tmp/rf-shards-it-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char db[300], cfgpath[300], text[1024];
    snprintf(db, sizeof(db), "%s/leases.db", dir);
    snprintf(cfgpath, sizeof(cfgpath), "%s/config", dir);
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
             "clusters: [{name: sim, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
             "contexts: [{name: sim, context: {cluster: sim, user: u, namespace: default}}]\n"
             "users: [{name: u, user: {token: t}}]\n",
             apiserver_port(api));
    FILE *f = fopen(cfgpath, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    kubeconfig_t *kc = NULL;
    buf_t err;
    buf_init(&err, 4096);
    CHECK(kubeconfig_load(cfgpath, NULL, &kc, &err) == 0);

    failed += s_scenario(BK_SQLITE, db, NULL);
    if (kc) {
        failed += s_scenario(BK_K8S, NULL, kc);
        failed += s_k8s_race(kc);
    }

    for (int i = 0; i < IT_REPLICAS; i++)
        s_free(i);
    kubeconfig_destroy(&kc);
    buf_free(&err);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof(p), "%s%s", db, suffix[i]);
        unlink(p);
    }
    unlink(cfgpath);
    rmdir(dir);
    apiserver_destroy(&api);
    loop_destroy(&g_loop);
    curl_global_cleanup();
    return SELFTEST_RESULT("shards_it", true) == 0 ? 0 : 1;
}
