/*
 * leader: one active writer through one lease (see leader.h).
 */
#include "leader.h"

#include "err.h"
#include "hash.h"
#include "log.h"
#include "rftime.h"
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEADER_TAG 0x1eade7u /* type tag of a live leader */
#define LEADER_ID_HASH_HEX 8 /* hex digits of the state dir's hash in the default identity */
#define MS_PER_S 1000

struct leader {
    uint32_t tag; /* LEADER_TAG */
    loop_t *loop; /* borrowed */
    lease_backend_t *backend; /* borrowed */
    char name[LEASE_NAME_MAX + 1]; /* lease name */
    char identity[LEASE_NAME_MAX + 1]; /* our holder identity */
    char holder[LEASE_NAME_MAX + 1]; /* last holder seen */
    int64_t lease_ms, renew_ms, deadline_ms, retry_ms; /* the periods */
    leader_fn *on_change; /* callback */
    void *arg; /* its argument */
    leader_state_t state; /* as recorded (leader_is_leader() also reads the clock) */
    int64_t until; /* LEADING: monotonic ms until which we may act */
    int64_t sent_at; /* monotonic ms the op in flight was sent (t0) */
    int64_t op; /* lease op in flight, 0 none */
    int64_t timer; /* next attempt timer, 0 none */
    int64_t deadline_timer; /* the deadline timer while leading, 0 none */
    leader_stats_t st; /* counters */
};

static void s_arm(leader_t *l, int64_t delay_ms);

/* Moves to LOST (once) and tells the owner. */
static void s_lose(leader_t *l, const char *why)
{
    if (l->state != LEADER_LEADING)
        return;
    l->state = LEADER_LOST;
    l->until = 0;
    l->st.transitions++;
    if (l->timer > 0)
        loop_cancel_timer(l->loop, l->timer);
    if (l->deadline_timer > 0)
        loop_cancel_timer(l->loop, l->deadline_timer);
    l->timer = l->deadline_timer = 0;
    if (l->op > 0)
        lease_cancel(l->backend, l->op);
    l->op = 0;
    log_error("leader lease lost", "lease", l->name, "identity", l->identity, "why", why, "holder",
              l->holder[0] ? l->holder : "unknown", NULL);
    if (l->on_change)
        l->on_change(l, false, l->arg);
}

static int64_t s_deadline_fire(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    leader_t *l = arg;
    if (l->state == LEADER_LEADING && loop_clock_ms() < l->until)
        return l->until - loop_clock_ms(); /* renewed meanwhile: the same timer, re-armed */
    l->deadline_timer = 0;
    if (l->state == LEADER_LEADING)
        s_lose(l, "renew deadline passed");
    return LOOP_TIMER_DONE;
}

static void s_done(lease_backend_t *b, const lease_result_t *r, void *arg)
{
    (void)b;
    leader_t *l = arg;
    l->op = 0;
    if (r->err == 0) {
        snprintf(l->holder, sizeof(l->holder), "%s", l->identity);
        int64_t until = l->sent_at + l->deadline_ms;
        if (l->state == LEADER_LEADING && loop_clock_ms() >= l->until) {
            s_lose(l, "renew deadline passed before the renewal was answered");
            return;
        }
        if (l->state == LEADER_LEADING) {
            l->st.renewals++;
            if (until > l->until)
                l->until = until;
            s_arm(l, l->renew_ms);
            return;
        }
        if (l->state != LEADER_STANDBY || loop_clock_ms() >= until) {
            s_arm(l, l->retry_ms); /* answered too late to act on: try again */
            return;
        }
        l->state = LEADER_LEADING;
        l->until = until;
        l->st.transitions++;
        l->deadline_timer = loop_add_timer(l->loop, l->deadline_ms, s_deadline_fire, l);
        if (l->deadline_timer < 0)
            l->deadline_timer = 0; /* leader_is_leader() still reads the clock */
        log_info("became leader", "lease", l->name, "identity", l->identity, "how",
                 r->renewed ? "held by this cell already" : "acquired", NULL);
        s_arm(l, l->renew_ms);
        if (l->on_change)
            l->on_change(l, true, l->arg);
        return;
    }
    bool other =
        r->err == ERR_CONFLICT && r->holder && r->holder[0] && strcmp(r->holder, l->identity) != 0;
    if (r->err == ERR_CONFLICT)
        l->st.conflicts++;
    else
        l->st.errors++;
    if (other && strcmp(l->holder, r->holder) != 0) {
        snprintf(l->holder, sizeof(l->holder), "%s", r->holder);
        if (l->state == LEADER_STANDBY)
            log_info("standby: another cell leads", "lease", l->name, "holder", l->holder,
                     "identity", l->identity, NULL);
    }
    if (l->state == LEADER_LEADING && other) {
        s_lose(l, "another identity holds the lease");
        return;
    }
    if (r->err != ERR_CONFLICT)
        log_warn("leader lease request failed", "lease", l->name, "error", err_str(r->err), NULL);
    s_arm(l, l->retry_ms);
}

static int64_t s_attempt(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    leader_t *l = arg;
    l->timer = 0;
    if (l->state == LEADER_LOST || l->op > 0)
        return LOOP_TIMER_DONE;
    l->sent_at = loop_clock_ms();
    l->st.attempts++;
    int64_t op = lease_acquire(l->backend, l->name, l->identity, l->lease_ms, s_done, l);
    if (op < 0) {
        l->st.errors++;
        log_warn("leader lease request not sent", "lease", l->name, "error", err_str((int)op),
                 NULL);
        l->timer = id; /* re-armed below */
        return l->retry_ms;
    }
    l->op = op;
    return LOOP_TIMER_DONE;
}

/* Arms the next attempt in delay_ms (replacing an armed one). */
static void s_arm(leader_t *l, int64_t delay_ms)
{
    if (l->timer > 0)
        loop_cancel_timer(l->loop, l->timer);
    l->timer = loop_add_timer(l->loop, delay_ms, s_attempt, l);
    if (l->timer < 0) {
        l->timer = 0;
        log_error("leader: cannot arm a timer", "lease", l->name, NULL);
    }
}

static int s_bad(buf_t *err, const char *what)
{
    if (err)
        buf_printf(err, "%s", what);
    return ERR_INVAL;
}

leader_t *leader_new(loop_t *loop, lease_backend_t *backend, const leader_config_t *cfg, buf_t *err)
{
    if (!loop || !backend || !cfg) {
        s_bad(err, "leader: no loop, lease backend or configuration");
        return NULL;
    }
    size_t nl = cfg->name ? strlen(cfg->name) : 0, il = cfg->identity ? strlen(cfg->identity) : 0;
    if (nl == 0 || nl > LEASE_NAME_MAX || il == 0 || il > LEASE_NAME_MAX) {
        s_bad(err, "leader: the lease name and the identity must have 1..255 bytes");
        return NULL;
    }
    int64_t lease = cfg->lease_ms > 0 ? cfg->lease_ms : LEADER_LEASE_MS;
    int64_t deadline = cfg->renew_deadline_ms > 0 ? cfg->renew_deadline_ms : lease * 2 / 3;
    int64_t retry = cfg->retry_ms > 0 ? cfg->retry_ms : lease * 2 / 15;
    int64_t renew = lease / LEADER_RENEW_DIV;
    if (retry <= 0 || renew <= 0 || deadline >= lease || renew >= deadline || retry >= deadline) {
        s_bad(err, "leader: need 0 < retry period and lease-duration/3 < renew deadline < lease "
                   "duration");
        return NULL;
    }
    leader_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->tag = LEADER_TAG;
    l->loop = loop;
    l->backend = backend;
    memcpy(l->name, cfg->name, nl + 1);
    memcpy(l->identity, cfg->identity, il + 1);
    l->lease_ms = lease;
    l->deadline_ms = deadline;
    l->retry_ms = retry;
    l->renew_ms = renew;
    l->on_change = cfg->on_change;
    l->arg = cfg->arg;
    s_arm(l, 0);
    if (!l->timer) {
        free(l);
        return NULL;
    }
    return l;
}

void leader_destroy(leader_t **l_p)
{
    if (!l_p || !*l_p)
        return;
    leader_t *l = *l_p;
    if (l->timer > 0)
        loop_cancel_timer(l->loop, l->timer);
    if (l->deadline_timer > 0)
        loop_cancel_timer(l->loop, l->deadline_timer);
    if (l->op > 0)
        lease_cancel(l->backend, l->op);
    l->tag = 0;
    free(l);
    *l_p = NULL;
}

bool leader_is_leader(const leader_t *l)
{
    return l && l->state == LEADER_LEADING && loop_clock_ms() < l->until;
}

const char *leader_holder(const leader_t *l)
{
    return l ? l->holder : "";
}

void leader_stats(const leader_t *l, leader_stats_t *out)
{
    if (!out)
        return;
    *out = l ? l->st : (leader_stats_t){0};
    if (!l)
        return;
    out->state = l->state;
    if (l->state == LEADER_LEADING && !leader_is_leader(l))
        out->state = LEADER_LOST;
}

int leader_default_identity(const char *host, const char *state_dir, char *out, size_t size)
{
    if (!host || !host[0] || !state_dir || !state_dir[0] || !out)
        return ERR_INVAL;
    unsigned char sha[HASH_SHA1_LEN];
    char hex[2 * HASH_SHA1_LEN + 1];
    int rc = hash_sha1(state_dir, strlen(state_dir), sha);
    if (rc == 0)
        rc = hash_hex(sha, sizeof(sha), hex, sizeof(hex));
    if (rc < 0)
        return rc;
    int n = snprintf(out, size, "%s_%.*s", host, LEADER_ID_HASH_HEX, hex);
    return n < 0 || (size_t)n >= size || (size_t)n > LEASE_NAME_MAX ? ERR_TOOBIG : 0;
}

int leader_kuberay_judge(const json_t *list, int64_t now_ms, const char *take_over_flag, buf_t *msg)
{
    json_t *items = json_object_get(list, "items");
    if (!json_is_array(items))
        return ERR_INVAL;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (strcmp(jx_str(it, "metadata.name", ""), LEADER_KUBERAY_LEASE) != 0)
            continue;
        int64_t exp = lease_k8s_expiry(it);
        if (exp <= now_ms)
            continue;
        const char *ns = jx_str(it, "metadata.namespace", "");
        const char *rt = jx_str(it, "spec.renewTime", NULL);
        int64_t at = 0;
        char ago[48] = "at an unknown time";
        if (rt && rftime_parse(rt, &at) == 0)
            snprintf(ago, sizeof(ago), "%" PRId64 "s ago",
                     (now_ms > at ? now_ms - at : 0) / MS_PER_S);
        if (msg)
            buf_printf(msg,
                       "a KubeRay operator is reconciling: Lease %s/%s held by %s, renewed %s; "
                       "stop it first (kubectl -n %s scale deployment kuberay-operator "
                       "--replicas=0, or helm uninstall it keeping the CRDs) or start rayfleet "
                       "with %s",
                       ns, LEADER_KUBERAY_LEASE, jx_str(it, "spec.holderIdentity", ""), ago, ns,
                       take_over_flag ? take_over_flag : "--leader.take-over");
        return 1;
    }
    return 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

#include <unistd.h>

/* What a test callback saw. */
typedef struct {
    int up, down; /* became leader, lost it */
} t_seen_t;

static void t_change(leader_t *l, bool leading, void *arg)
{
    (void)l;
    t_seen_t *s = arg;
    if (leading)
        s->up++;
    else
        s->down++;
}

/* Runs the loop until *flag becomes nonzero or max_ms pass. */
static void t_until(loop_t *loop, const int *flag, int64_t max_ms)
{
    int64_t end = loop_clock_ms() + max_ms;
    while (!*flag && loop_clock_ms() < end)
        loop_run_once(loop, 5);
}

static void t_for(loop_t *loop, int64_t ms)
{
    int64_t end = loop_clock_ms() + ms;
    while (loop_clock_ms() < end)
        loop_run_once(loop, 5);
}

int leader_test(bool verbose)
{
    int failed = 0;
    char id[LEASE_NAME_MAX + 1];
    CHECK(leader_default_identity("pod-1", "/var/lib/rayfleet", id, sizeof(id)) == 0);
    CHECK(!strncmp(id, "pod-1_", 6) && strlen(id) == 6 + LEADER_ID_HASH_HEX);
    char id2[LEASE_NAME_MAX + 1];
    CHECK(leader_default_identity("pod-1", "/var/lib/other", id2, sizeof(id2)) == 0 &&
          strcmp(id, id2) != 0);
    CHECK(leader_default_identity("", "/x", id2, sizeof(id2)) == ERR_INVAL);
    CHECK(leader_default_identity("h", "/x", id2, 5) == ERR_TOOBIG);

    /* The KubeRay judgement. */
    int64_t now = store_wall_ms();
    char fresh[RFTIME_BUF], stale[RFTIME_BUF];
    CHECK(rftime_format(now - 3000, RFTIME_MICRO, fresh, sizeof(fresh)) == 0);
    CHECK(rftime_format(now - 60000, RFTIME_MICRO, stale, sizeof(stale)) == 0);
    json_t *list =
        json_pack("{s:[{s:{s:s,s:s},s:{s:s,s:s,s:i}},{s:{s:s,s:s},s:{s:s,s:s,s:i}}]}", "items",
                  "metadata", "name", "other", "namespace", "x", "spec", "holderIdentity", "h",
                  "renewTime", fresh, "leaseDurationSeconds", 15, "metadata", "name",
                  LEADER_KUBERAY_LEASE, "namespace", "ray-system", "spec", "holderIdentity",
                  "kuberay-operator-abc_1", "renewTime", stale, "leaseDurationSeconds", 15);
    buf_t msg;
    buf_init(&msg, 4096);
    CHECK(list && leader_kuberay_judge(list, now, NULL, &msg) == 0 && msg.len == 0);
    json_t *kr = json_array_get(json_object_get(list, "items"), 1);
    json_object_set_new(json_object_get(kr, "spec"), "renewTime", json_string(fresh));
    CHECK(leader_kuberay_judge(list, now, "--take-over", &msg) == 1);
    CHECK(strstr(buf_str(&msg), "a KubeRay operator is reconciling: Lease "
                                "ray-system/ray-operator-leader held by kuberay-operator-abc_1, "
                                "renewed 3s ago; stop it first (kubectl -n ray-system scale "
                                "deployment kuberay-operator --replicas=0") != NULL);
    CHECK(strstr(buf_str(&msg), "or start rayfleet with --take-over") != NULL);
    json_object_set_new(json_object_get(kr, "spec"), "holderIdentity", json_string(""));
    CHECK(leader_kuberay_judge(list, now, NULL, NULL) == 0); /* released */
    CHECK(leader_kuberay_judge(json_object_get(list, "items"), now, NULL, NULL) == ERR_INVAL);
    json_decref(list);
    buf_free(&msg);

    /* Two cells over one SQLite lease table. */
    char dir[] = "/tmp/rf-leader-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/leases.db", dir);
    loop_t *loop = loop_new();
    int e = 0;
    store_t *s1 = store_open(path, STORE_READWRITE | STORE_LEASES, &e);
    store_t *s2 = store_open(path, STORE_READWRITE | STORE_LEASES, &e);
    lease_backend_t *b1 = loop && s1 ? lease_sqlite_new(loop, s1) : NULL;
    lease_backend_t *b2 = loop && s2 ? lease_sqlite_new(loop, s2) : NULL;
    CHECK(b1 && b2);
    buf_t err;
    buf_init(&err, 512);
    CHECK(leader_new(loop, b1, &(leader_config_t){.name = "l", .identity = ""}, &err) == NULL);
    CHECK(strstr(buf_str(&err), "identity") != NULL);
    CHECK(leader_new(loop, b1,
                     &(leader_config_t){.name = "l", .identity = "a", .renew_deadline_ms = 20000},
                     NULL) == NULL);
    buf_free(&err);

    /* 600 ms leases: renewals every 200 ms, deadline 400 ms, retries every 80 ms */
    t_seen_t sa = {0}, sb = {0}, sc = {0};
    leader_config_t ca = {
        .name = "rayfleet-leader", .identity = "cell-a", .lease_ms = 600, .on_change = t_change};
    leader_config_t cb = ca, cc = ca;
    ca.arg = &sa;
    cb.identity = "cell-b";
    cb.arg = &sb;
    cc.arg = &sc; /* a second process of cell a */
    leader_t *a = leader_new(loop, b1, &ca, NULL);
    t_until(loop, &sa.up, 2000);
    CHECK(a && sa.up == 1 && leader_is_leader(a) && !strcmp(leader_holder(a), "cell-a"));
    leader_t *b = leader_new(loop, b2, &cb, NULL);
    leader_t *c = leader_new(loop, b2, &cc, NULL);
    t_until(loop, &sc.up, 2000);
    CHECK(c && sc.up == 1 && leader_is_leader(c)); /* the shared identity leads too */
    t_for(loop, 1500); /* several lease durations: a and c keep it, b waits */
    CHECK(leader_is_leader(a) && leader_is_leader(c) && sa.down == 0 && sc.down == 0);
    CHECK(b && !leader_is_leader(b) && sb.up == 0 && !strcmp(leader_holder(b), "cell-a"));
    leader_stats_t st;
    leader_stats(a, &st);
    CHECK(st.state == LEADER_LEADING && st.transitions == 1 && st.renewals >= 5);
    leader_stats(b, &st);
    CHECK(st.state == LEADER_STANDBY && st.conflicts >= 5 && st.transitions == 0);

    /* cell a dies (no release): b takes over, and only after a's recorded expiry */
    leader_destroy(&a);
    leader_destroy(&c);
    CHECK(a == NULL);
    store_lease_t held;
    CHECK(store_lease_get(s1, "rayfleet-leader", &held) == 0 && !strcmp(held.holder, "cell-a"));
    t_until(loop, &sb.up, 3000);
    CHECK(sb.up == 1 && leader_is_leader(b) && store_wall_ms() >= held.expires_ms);

    /* a renewal that finds another identity holding the lease loses at once */
    CHECK(store_lease_release(s1, "rayfleet-leader", "cell-b") == 0);
    bool renewed = false;
    CHECK(store_lease_try_acquire(s1, "rayfleet-leader", "intruder", 600, store_wall_ms(),
                                  &renewed) == 0);
    t_until(loop, &sb.down, 2000);
    CHECK(sb.down == 1 && !leader_is_leader(b));
    leader_stats(b, &st);
    CHECK(st.state == LEADER_LOST && st.transitions == 2 && !strcmp(leader_holder(b), "intruder"));
    t_for(loop, 700); /* LOST is final: it does not come back when the lease frees */
    CHECK(sb.up == 1 && !leader_is_leader(b));
    leader_destroy(&b);

    /* the local deadline: a leader whose renewals stop being answered stops at its deadline */
    t_seen_t sd = {0};
    leader_config_t cd = {
        .name = "other-lease", .identity = "d", .lease_ms = 600, .on_change = t_change, .arg = &sd};
    leader_t *d = leader_new(loop, b1, &cd, NULL);
    t_until(loop, &sd.up, 2000);
    CHECK(d && leader_is_leader(d));
    int64_t t0 = loop_clock_ms();
    while (loop_clock_ms() < t0 + 400 + 1)
        usleep(5000); /* the loop does not turn: no renewal is answered, the clock alone decides */
    CHECK(!leader_is_leader(d)); /* its last renewal was sent before t0: deadline <= t0 + 400 */
    leader_stats(d, &st);
    CHECK(st.state == LEADER_LOST);
    leader_destroy(&d);
    lease_backend_destroy(&b1);

    lease_backend_destroy(&b2);
    store_destroy(&s1);
    store_destroy(&s2);
    loop_destroy(&loop);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char f[160];
        snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
        unlink(f);
    }
    rmdir(dir);
    return SELFTEST_RESULT("leader", verbose);
}

#endif /* RF_SELFTEST */
