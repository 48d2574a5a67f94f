/*
 * placer: federation's admission and placement on the management cluster (placer.h).
 */
#include "placer.h"

#include "demand.h"
#include "err.h"
#include "fedcfg.h"
#include "hash.h"
#include "json.h"
#include "kubeconfig.h"
#include "log.h"
#include "place.h"
#include "queue.h"
#include "rftime.h"
#include "selector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_RAY_CLUSTER_LABEL "ray.io/cluster"
#define S_WHY_ROUND 64 /* waiting workloads per round whose reason is worked out */

/* One member cluster. */
typedef struct {
    const fedcfg_cluster_t *cfg; /* its configuration (in pl->fed) */
    kubeconfig_t *kc; /* its kubeconfig at its context */
    k8s_client_t *client;
    int64_t suspect_until; /* wall ms: a request to it got no answer; no create until then */
    bool was_healthy; /* as the last round saw it */
    bool revived; /* it answers again since the last round: its placed keys get a pass */
} s_member_t;

/* What a kind is to the placer. */
typedef struct {
    const char *kind, *resource;
    int (*demand)(const json_t *obj, fleet_demand_t *out, buf_t *err);
} s_kind_t;

static int s_demand_rc(const json_t *obj, fleet_demand_t *out, buf_t *err)
{
    return fleet_demand_raycluster(json_object_get(obj, "spec"), out, err);
}

static const s_kind_t s_kinds[PLACER_NKINDS] = {
    [PLACER_RAYCLUSTER] = {"RayCluster", "rayclusters", s_demand_rc},
    [PLACER_RAYJOB] = {"RayJob", "rayjobs", fleet_demand_rayjob},
    [PLACER_RAYSERVICE] = {"RayService", "rayservices", fleet_demand_rayservice},
};

/* A workload of one admission round. */
typedef struct {
    placer_kind_t kind;
    char key[CTRL_KEY_MAX]; /* the management key */
    fleet_demand_t demand;
    fleet_policy_t policy;
    selector_t *sel; /* the member-selector annotation's, or NULL */
    char required[64]; /* rayfleet.io/member, or "" */
    size_t queue;
    int32_t priority;
    bool resume; /* placed and preempted: admitted again, it is resumed on its member */
    fleet_choice_t choice; /* the last fleet_place() of it */
} s_ent_t;

struct placer {
    loop_t *loop;
    store_t *observed;
    fedcfg_t fed;
    s_member_t *members;
    size_t nmembers;
    ctrl_t *ctrl[PLACER_NKINDS];
    ctrl_kind_t kinds[PLACER_NKINDS];
    /* decisions made by a round and not yet seen recorded on the object: per kind, key ->
     * {"m": member index, "r": reason} */
    json_t *decided[PLACER_NKINDS];
    /* why a waiting object waits (key -> text), from the last round */
    json_t *waiting[PLACER_NKINDS];
    /* preemptions decided and not yet seen recorded on the object: key -> why */
    json_t *preempt[PLACER_NKINDS];
    /* every key the last round left waiting (its pass need not ask for a round) */
    json_t *queued[PLACER_NKINDS];
    /* keys this process placed (key -> member index), and of those the ones whose copy's create
     * was sent (key -> member index): only an object placed here whose create was never sent
     * may be placed again elsewhere when its member stops answering (a create that got no
     * answer may still land: the object stays, and runs there once the member is back) */
    json_t *placed_here[PLACER_NKINDS];
    json_t *sent[PLACER_NKINDS];
    /* the last round's members (capacity after its admissions) and health */
    fleet_member_t *cap;
    int64_t timer; /* the round's timer, 0 none */
    bool dirty; /* something changed since the last round */
    uint64_t rounds, admitted, preempted;
};

/* ---------- helpers ---------- */

static const char *s_ann(const json_t *obj, const char *name)
{
    json_t *v = jx_getv(obj, "metadata", "annotations", name, NULL);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int s_member_index(const placer_t *pl, const char *name)
{
    for (size_t i = 0; name && i < pl->nmembers; i++)
        if (strcmp(pl->members[i].cfg->name, name) == 0)
            return (int)i;
    return -1;
}

/* A RayJob's deployment status is final. */
static bool s_rayjob_terminal(const json_t *obj)
{
    const char *s = jx_str(obj, "status.jobDeploymentStatus", "");
    return !strcmp(s, "Complete") || !strcmp(s, "Failed") || !strcmp(s, "ValidationFailed");
}

/* The object is suspended (spec.suspend) and its status says it is done suspending: a RayJob
 * Suspended, a RayCluster suspended (a RayService is never counted so). */
static bool s_suspended(placer_kind_t k, const json_t *obj)
{
    if (!jx_bool(obj, "spec.suspend", false))
        return false;
    if (k == PLACER_RAYJOB)
        return strcmp(jx_str(obj, "status.jobDeploymentStatus", ""), "Suspended") == 0;
    return k == PLACER_RAYCLUSTER && strcmp(jx_str(obj, "status.state", ""), "suspended") == 0;
}

/* Whether a placed object still holds room on its member: not once it is suspended; a RayJob
 * until it is terminal and its RayCluster is gone from the member (or it never got one), the
 * others while they exist. */
static bool s_active(placer_t *pl, placer_kind_t k, const json_t *obj, int member)
{
    if (s_suspended(k, obj))
        return false;
    if (k != PLACER_RAYJOB || !s_rayjob_terminal(obj))
        return true;
    const char *rc = jx_str(obj, "status.rayClusterName", "");
    if (!rc[0] || member < 0 || !pl->observed)
        return false;
    store_observed_t *row = NULL; /* whether it is there: the row, its JSON not parsed */
    bool there = store_observed_get(pl->observed, pl->members[member].cfg->name, "RayCluster",
                                    jx_str(obj, "metadata.namespace", ""), rc, &row) == 0;
    store_observed_free(&row);
    return there;
}

/* The body of the copy of management object `obj` for the member (a new tree, NULL when out of
 * memory): apiVersion, kind, name, namespace, labels, annotations (without the placer's own and
 * kubectl's last-applied copy, with FLEET_ANN_PLACED_FROM and FLEET_ANN_PLACED_GENERATION), spec.
 */
static json_t *s_copy_body(const json_t *obj, const char *cluster)
{
    json_t *ann = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(jx_get(obj, "metadata.annotations"), k, v)
    {
        if (strcmp(k, FLEET_ANN_PLACED_ON) && strcmp(k, FLEET_ANN_PLACEMENT_REASON) &&
            strcmp(k, "kubectl.kubernetes.io/last-applied-configuration"))
            json_object_set(ann, k, v);
    }
    char from[4 * CTRL_KEY_MAX];
    snprintf(from, sizeof(from), "%s/%s/%s/%s", cluster, jx_str(obj, "metadata.namespace", ""),
             jx_str(obj, "metadata.name", ""), jx_str(obj, "metadata.uid", ""));
    char gen[32];
    snprintf(gen, sizeof(gen), "%lld", (long long)jx_int(obj, "metadata.generation", 0));
    json_object_set_new(ann, FLEET_ANN_PLACED_FROM, json_string(from));
    json_object_set_new(ann, FLEET_ANN_PLACED_GENERATION, json_string(gen));
    json_t *labels = jx_get(obj, "metadata.labels");
    json_t *spec = json_object_get(obj, "spec");
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:o}, s:O}", "apiVersion",
                     jx_str(obj, "apiVersion", "ray.io/v1"), "kind", jx_str(obj, "kind", ""),
                     "metadata", "name", jx_str(obj, "metadata.name", ""), "namespace",
                     jx_str(obj, "metadata.namespace", ""), "labels",
                     labels ? labels : json_object(), "annotations", ann, "spec",
                     spec ? spec : json_object());
}

/* The copy `copy` was made from the management object uid `uid`. */
static bool s_copy_of(const json_t *copy, const char *uid)
{
    const char *from = s_ann(copy, FLEET_ANN_PLACED_FROM);
    size_t n = from ? strlen(from) : 0, u = strlen(uid);
    return u > 0 && n > u && from[n - u - 1] == '/' && strcmp(from + n - u, uid) == 0;
}

/* Cuts `text` to at most PLACER_REASON_MAX - 1 bytes (ending "..." when cut) into out. */
static void s_bound_reason(const char *text, char *out)
{
    size_t n = strlen(text);
    if (n < PLACER_REASON_MAX) {
        memcpy(out, text, n + 1);
        return;
    }
    size_t m = PLACER_REASON_MAX - 4;
    while (m > 0 && ((unsigned char)text[m] & 0xC0) == 0x80)
        m--; /* not inside a UTF-8 sequence */
    memcpy(out, text, m);
    memcpy(out + m, "...", 4);
}

/* ---------- the admission round ---------- */

/* Members' capacity and health from observed.db into pl->cap (rebuilt). */
typedef struct {
    placer_t *pl;
    fleet_member_t *m;
    json_t *ray_pods; /* "ns/name" of the member's Ray pods */
    buf_t *err;
    int64_t last_ok;
} s_scan_t;

static int s_scan_node(const store_observed_t *row, void *arg)
{
    s_scan_t *s = arg;
    json_t *o = row->json ? json_loads(row->json, 0, NULL) : NULL;
    if (o) {
        buf_reset(s->err);
        if (fleet_member_add_node(s->m, o, s->err) != 0)
            log_warn("node row skipped", "cluster", s->m->name, "error", buf_str(s->err), NULL);
        json_decref(o);
    }
    return 0;
}

static int s_scan_raypod(const store_observed_t *row, void *arg)
{
    s_scan_t *s = arg;
    char k[2 * CTRL_KEY_MAX];
    snprintf(k, sizeof(k), "%s/%s", row->ns ? row->ns : "", row->name ? row->name : "");
    json_object_set_new(s->ray_pods, k, json_true());
    return 0;
}

static int s_scan_pod(const store_observed_t *row, void *arg)
{
    s_scan_t *s = arg;
    char k[2 * CTRL_KEY_MAX];
    snprintf(k, sizeof(k), "%s/%s", row->ns ? row->ns : "", row->name ? row->name : "");
    if (json_object_get(s->ray_pods, k))
        return 0; /* a Ray pod: its cluster counts by its demand */
    json_t *o = row->json ? json_loads(row->json, 0, NULL) : NULL;
    if (o) {
        buf_reset(s->err);
        if (fleet_member_add_pod(s->m, o, s->err) != 0)
            log_warn("pod row skipped", "cluster", s->m->name, "error", buf_str(s->err), NULL);
        json_decref(o);
    }
    return 0;
}

static int s_scan_health(const store_observed_t *row, void *arg)
{
    s_scan_t *s = arg;
    json_t *o = row->json ? json_loads(row->json, 0, NULL) : NULL;
    if (o && jx_int(o, "lastOkMs", 0) > s->last_ok)
        s->last_ok = jx_int(o, "lastOkMs", 0);
    json_decref(o);
    return 0;
}

static void s_cap_free(placer_t *pl)
{
    for (size_t i = 0; pl->cap && i < pl->nmembers; i++)
        fleet_member_free(&pl->cap[i]);
    free(pl->cap);
    pl->cap = NULL;
}

static int s_read_members(placer_t *pl, buf_t *err)
{
    s_cap_free(pl);
    pl->cap = calloc(pl->nmembers, sizeof(*pl->cap));
    if (!pl->cap)
        return ERR_NOMEM;
    int64_t now = rftime_now_ms();
    for (size_t i = 0; i < pl->nmembers; i++) {
        fleet_member_t *m = &pl->cap[i];
        if (fleet_member_init(m, pl->members[i].cfg->name, pl->members[i].cfg->labels) != 0)
            return ERR_NOMEM;
        s_scan_t s = {.pl = pl, .m = m, .ray_pods = json_object(), .err = err};
        if (!s.ray_pods)
            return ERR_NOMEM;
        (void)store_observed_scan_json(pl->observed, m->name, "Node", NULL, s_scan_node, &s);
        (void)store_observed_scan(pl->observed, m->name, "Pod", NULL, s_scan_raypod, &s);
        (void)store_observed_scan_json(pl->observed, m->name, STORE_KIND_POD_USAGE, NULL,
                                       s_scan_pod, &s);
        (void)store_observed_scan_json(pl->observed, m->name, STORE_KIND_CLUSTER_HEALTH, NULL,
                                       s_scan_health, &s);
        json_decref(s.ray_pods);
        fleet_member_finish(m);
        m->healthy = fleet_member_answering(s.last_ok, now) && now >= pl->members[i].suspect_until;
        pl->members[i].revived = m->healthy && !pl->members[i].was_healthy && pl->rounds > 0;
        pl->members[i].was_healthy = m->healthy;
    }
    return 0;
}

/* One object of the round. */
typedef struct {
    placer_t *pl;
    placer_kind_t k;
    fleet_queues_t *q;
    s_ent_t *ents;
    size_t nents, capents;
    json_t *index; /* workload key -> entry index */
    json_t *seen[PLACER_NKINDS]; /* keys present (to forget stale decisions) */
    size_t suspending; /* preempted objects not done suspending yet */
    buf_t *err;
} s_round_t;

static s_ent_t *s_ent_new(s_round_t *r)
{
    if (r->nents == r->capents) {
        size_t cap = r->capents ? 2 * r->capents : 64;
        s_ent_t *e = realloc(r->ents, cap * sizeof(*e));
        if (!e)
            return NULL;
        r->ents = e;
        r->capents = cap;
    }
    s_ent_t *e = &r->ents[r->nents];
    memset(e, 0, sizeof(*e));
    return e;
}

static void s_ent_free(s_ent_t *e)
{
    fleet_demand_free(&e->demand);
    selector_destroy(&e->sel);
}

static void s_wait_why(s_round_t *r, const char *key, const char *fmt, const char *a, const char *b)
{
    char text[FLEET_REASON_MAX + PLACER_REASON_MAX + 256], out[PLACER_REASON_MAX];
    snprintf(text, sizeof(text), fmt, a, b ? b : "");
    s_bound_reason(text, out);
    json_object_set_new(r->pl->waiting[r->k], key, json_string(out));
}

static int s_round_obj(const store_observed_t *row, void *arg)
{
    s_round_t *r = arg;
    placer_t *pl = r->pl;
    json_t *obj = row->json ? json_loads(row->json, 0, NULL) : NULL;
    if (!obj)
        return 0;
    char key[CTRL_KEY_MAX];
    if (ctrl_key(pl->fed.management.name, row->ns ? row->ns : "", row->name ? row->name : "", key,
                 sizeof(key)) < 0) {
        json_decref(obj);
        return 0;
    }
    json_object_set_new(r->seen[r->k], key, json_true());
    const char *placed = s_ann(obj, FLEET_ANN_PLACED_ON);
    bool preempted = s_ann(obj, FLEET_ANN_PREEMPTED) != NULL;
    json_t *dec = json_object_get(pl->decided[r->k], key);
    if (placed && dec && (!jx_bool(dec, "resume", false) || !preempted)) {
        json_object_del(pl->decided[r->k], key); /* recorded: the annotation rules */
        dec = NULL;
    }
    if (preempted)
        json_object_del(pl->preempt[r->k], key); /* recorded */
    int member = placed ? s_member_index(pl, placed) : dec ? (int)jx_int(dec, "m", -1) : -1;
    bool is_placed = placed || dec;
    /* preempted and suspended: waits again in its queue, to be resumed on its member */
    bool resume = placed && preempted && !dec && member >= 0 && s_suspended(r->k, obj);
    if (preempted && !resume && !s_suspended(r->k, obj))
        r->suspending++;
    if (json_object_get(pl->preempt[r->k], key))
        r->suspending++;
    if (placed && member >= 0 && pl->members[member].revived)
        (void)ctrl_enqueue(pl->ctrl[r->k], key, false); /* its member is back: reconcile it */
    if (!resume && is_placed && (member < 0 || !s_active(pl, r->k, obj, member))) {
        json_decref(obj); /* done (or placed on a member no longer configured): holds nothing */
        return 0;
    }
    if (resume)
        is_placed = false;
    if (!is_placed && row->deleting) {
        json_decref(obj);
        return 0;
    }
    s_ent_t *e = s_ent_new(r);
    if (!e) {
        json_decref(obj);
        return ERR_NOMEM;
    }
    e->kind = r->k;
    snprintf(e->key, sizeof(e->key), "%s", key);
    buf_reset(r->err);
    if (s_kinds[r->k].demand(obj, &e->demand, r->err) != 0) {
        if (!is_placed)
            s_wait_why(r, key, "its demand cannot be worked out: %s%s", buf_str(r->err), NULL);
        json_decref(obj);
        return 0;
    }
    json_t *labels = jx_get(obj, "metadata.labels");
    buf_reset(r->err);
    int32_t prio = 0;
    if (fedcfg_queue_of(&pl->fed, row->ns ? row->ns : "", labels, &e->queue, r->err) != 0 ||
        fedcfg_priority_of(&pl->fed, labels, &prio, r->err) != 0) {
        if (!is_placed)
            s_wait_why(r, key, "%s%s", buf_str(r->err), NULL);
        fleet_demand_free(&e->demand);
        json_decref(obj);
        return 0;
    }
    const char *req = resume ? placed : s_ann(obj, FLEET_ANN_MEMBER);
    snprintf(e->required, sizeof(e->required), "%s", req ? req : "");
    e->resume = resume;
    e->priority = prio;
    const char *seltext = resume ? NULL : s_ann(obj, FLEET_ANN_MEMBER_SELECTOR);
    if (seltext && !is_placed) {
        buf_reset(r->err);
        if (selector_parse_labels(seltext, &e->sel, r->err) != 0) {
            s_wait_why(r, key, "annotation rayfleet.io/member-selector: %s%s", buf_str(r->err),
                       NULL);
            fleet_demand_free(&e->demand);
            json_decref(obj);
            return 0;
        }
    }
    e->policy = (fleet_policy_t){.member = e->required[0] ? e->required : NULL,
                                 .selector = e->sel,
                                 .strategy = pl->fed.strategy};
    int64_t order = 0;
    (void)rftime_parse(jx_str(obj, "metadata.creationTimestamp", ""), &order);
    if (!is_placed && !resume && (e->demand.flags & FLEET_DEMAND_EXISTING_CLUSTER)) {
        /* goes with its RayCluster, placed or not: no queue of its own */
        json_t *cs = json_object_get(jx_get(obj, "spec.clusterSelector"), S_RAY_CLUSTER_LABEL);
        const char *cname = json_is_string(cs) ? json_string_value(cs) : NULL;
        json_t *c = cname
                        ? ctrl_observed_get_in(pl->ctrl[PLACER_RAYCLUSTER], pl->fed.management.name,
                                               "RayCluster", row->ns ? row->ns : "", cname, NULL)
                        : NULL;
        const char *there = c ? s_ann(c, FLEET_ANN_PLACED_ON) : NULL;
        int mi = there ? s_member_index(pl, there) : -1;
        if (mi >= 0) {
            char why[PLACER_REASON_MAX];
            snprintf(why, sizeof(why), "its clusterSelector's RayCluster %s runs on %s", cname,
                     there);
            json_object_set_new(pl->decided[r->k], key, json_pack("{s:i, s:s}", "m", mi, "r", why));
            (void)ctrl_enqueue(pl->ctrl[r->k], key, true);
            pl->admitted++;
        } else {
            s_wait_why(r, key, "its clusterSelector's RayCluster %s is not placed yet%s",
                       cname ? cname : "(none named)", NULL);
        }
        json_decref(c);
        s_ent_free(e);
        json_decref(obj);
        return 0;
    }
    char wkey[CTRL_KEY_MAX + 16];
    snprintf(wkey, sizeof(wkey), "%s|%s", s_kinds[r->k].kind, key);
    fleet_workload_t *w = NULL;
    int rc = fleet_queue_add(r->q, wkey, e->queue, prio, order, &e->demand.total, &w);
    if (rc != 0) {
        s_ent_free(e);
        json_decref(obj);
        return rc == ERR_NOMEM ? rc : 0;
    }
    json_object_set_new(r->index, wkey, json_integer((json_int_t)r->nents));
    r->nents++;
    if (is_placed) {
        (void)fleet_queue_admit(r->q, w); /* over a quota shrunk since: still counted */
        if (fleet_commit(&pl->cap[member], &e->demand) != 0)
            fleet_res_add(&pl->cap[member].used, &e->demand.total); /* no longer fits: counted */
    }
    json_decref(obj);
    return 0;
}

static s_ent_t *s_ent_of(s_round_t *r, const fleet_workload_t *w)
{
    json_t *i = json_object_get(r->index, w->key);
    return i ? &r->ents[json_integer_value(i)] : NULL;
}

static bool s_fits(void *arg, const fleet_workload_t *w)
{
    s_round_t *r = arg;
    s_ent_t *e = s_ent_of(r, w);
    return e && fleet_place(r->pl->cap, r->pl->nmembers, &e->demand, &e->policy, &e->choice) >= 0;
}

/* Drops decisions of objects that are gone. */
static void s_forget_gone(placer_t *pl, s_round_t *r)
{
    for (int k = 0; k < PLACER_NKINDS; k++) {
        const char *key;
        json_t *v, *tmp;
        json_object_foreach_safe(pl->decided[k], tmp, key, v)
        {
            if (!json_object_get(r->seen[k], key))
                json_object_del(pl->decided[k], key);
        }
        json_t *maps[] = {pl->preempt[k], pl->placed_here[k], pl->sent[k]};
        for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
            json_object_foreach_safe(maps[i], tmp, key, v)
            {
                if (!json_object_get(r->seen[k], key))
                    json_object_del(maps[i], key);
            }
        }
    }
}

/* Preemption (fleet/queue.h): the first waiting workload, by priority, that its queue's quota
 * does not admit and that lower-priority admitted work blocks gets that work suspended. One
 * preemption at a time: none while an earlier one's victims are still suspending (their room is
 * not free yet). Victims are RayJobs and RayClusters (spec.suspend); a RayService is never
 * suspended by the placer. Quota only: room on members is not a reason to preempt. */
static void s_preempt(placer_t *pl, s_round_t *r)
{
    s_ent_t *best = NULL;
    fleet_workload_t *bw = NULL;
    for (size_t i = 0; i < r->nents; i++) {
        s_ent_t *e = &r->ents[i];
        char wkey[CTRL_KEY_MAX + 16];
        snprintf(wkey, sizeof(wkey), "%s|%s", s_kinds[e->kind].kind, e->key);
        fleet_workload_t *w = fleet_queue_find(r->q, wkey);
        if (!w || w->state != FLEET_WL_WAITING || fleet_queue_admissible(r->q, w))
            continue;
        if (!best || e->priority > best->priority) {
            best = e;
            bw = w;
        }
    }
    if (!best)
        return;
    fleet_workload_t *victims[64];
    size_t nv = 0;
    if (fleet_queue_preempt(r->q, bw, NULL, NULL, victims, 64, &nv) != 0 || nv == 0)
        return;
    for (size_t i = 0; i < nv; i++) {
        s_ent_t *v = s_ent_of(r, victims[i]);
        if (!v || v->kind == PLACER_RAYSERVICE || v->resume)
            return; /* not one the placer suspends: no preemption */
    }
    const fleet_queue_t *qu = fleet_queues_get(r->q, bw->queue);
    for (size_t i = 0; i < nv; i++) {
        s_ent_t *v = s_ent_of(r, victims[i]);
        char why[CTRL_KEY_MAX + 256], out[PLACER_REASON_MAX];
        snprintf(why, sizeof(why), "preempted for %s %s (priority %d > %d) in queue %s",
                 s_kinds[best->kind].kind, best->key, (int)best->priority, (int)v->priority,
                 qu ? qu->name : "?");
        s_bound_reason(why, out);
        json_object_set_new(pl->preempt[v->kind], v->key, json_string(out));
        (void)ctrl_enqueue(pl->ctrl[v->kind], v->key, true);
        pl->preempted++;
    }
}

static void s_round(placer_t *pl)
{
    buf_t err;
    buf_init(&err, 4096);
    s_round_t r = {.pl = pl, .index = json_object(), .err = &err};
    for (int k = 0; k < PLACER_NKINDS; k++)
        r.seen[k] = json_object();
    fleet_res_t cap = {0};
    int rc = r.index ? s_read_members(pl, &err) : ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < pl->nmembers; i++)
        if (pl->cap[i].healthy)
            fleet_res_add(&cap, &pl->cap[i].alloc);
    if (rc == 0)
        rc = fleet_queues_new(&pl->fed, &cap, &r.q);
    json_t *before[PLACER_NKINDS] = {0}; /* the last round's reasons */
    for (int k = 0; rc == 0 && k < PLACER_NKINDS; k++) {
        before[k] = pl->waiting[k];
        pl->waiting[k] = json_object();
        if (!pl->waiting[k]) {
            pl->waiting[k] = before[k];
            before[k] = NULL;
            rc = ERR_NOMEM;
            break;
        }
        r.k = (placer_kind_t)k;
        rc = store_observed_scan_json(pl->observed, pl->fed.management.name, s_kinds[k].kind, NULL,
                                      s_round_obj, &r);
    }
    size_t n = 0;
    fleet_workload_t *w;
    while (rc == 0 && n < PLACER_MAX_PER_ROUND && (w = fleet_queue_next(r.q, s_fits, &r))) {
        s_ent_t *e = s_ent_of(&r, w);
        int mi = e ? e->choice.index : -1;
        if (mi < 0 || fleet_commit(&pl->cap[mi], &e->demand) != 0 || fleet_queue_admit(r.q, w) != 0)
            break; /* cannot happen: s_fits() just placed it */
        json_object_set_new(
            pl->decided[e->kind], e->key,
            json_pack("{s:i, s:s, s:b}", "m", mi, "r", e->choice.reason, "resume", e->resume));
        (void)ctrl_enqueue(pl->ctrl[e->kind], e->key, true);
        n++;
    }
    if (rc == 0 && r.suspending == 0)
        s_preempt(pl, &r);
    /* why the first waiting ones wait; each whose reason changed is woken so its pass can say so
     * (an Event) */
    size_t explained = 0;
    for (size_t i = 0; rc == 0 && i < r.nents && explained < S_WHY_ROUND; i++) {
        s_ent_t *e = &r.ents[i];
        char wkey[CTRL_KEY_MAX + 16];
        snprintf(wkey, sizeof(wkey), "%s|%s", s_kinds[e->kind].kind, e->key);
        fleet_workload_t *wl = fleet_queue_find(r.q, wkey);
        if (!wl || wl->state != FLEET_WL_WAITING)
            continue;
        r.k = e->kind;
        const fleet_queue_t *qu = fleet_queues_get(r.q, wl->queue);
        if (!fleet_queue_admissible(r.q, wl))
            s_wait_why(&r, e->key, "queue %s: its quota (or its cohort's) has no room for it now%s",
                       qu ? qu->name : "?", NULL);
        else if (fleet_place(pl->cap, pl->nmembers, &e->demand, &e->policy, &e->choice) < 0)
            s_wait_why(&r, e->key, "no member can take it now: %s%s", e->choice.reason, NULL);
        else
            s_wait_why(&r, e->key, "queue %s: behind work admitted first (fair share)%s",
                       qu ? qu->name : "?", NULL);
        const char *now = json_string_value(json_object_get(pl->waiting[e->kind], e->key));
        const char *was = json_string_value(json_object_get(before[e->kind], e->key));
        if (now && (!was || strcmp(now, was) != 0))
            (void)ctrl_enqueue(pl->ctrl[e->kind], e->key, false);
        explained++;
    }
    for (int k = 0; k < PLACER_NKINDS; k++)
        json_decref(before[k]);
    if (rc == 0)
        s_forget_gone(pl, &r);
    else
        log_error("admission round failed", "error", err_str(rc), NULL);
    size_t waiting = 0;
    for (int k = 0; rc == 0 && k < PLACER_NKINDS; k++) {
        json_object_clear(pl->queued[k]);
        json_object_update(pl->queued[k], pl->waiting[k]); /* those that cannot be queued */
    }
    for (size_t i = 0; i < r.nents; i++) {
        s_ent_t *e = &r.ents[i];
        char wkey[CTRL_KEY_MAX + 16];
        snprintf(wkey, sizeof(wkey), "%s|%s", s_kinds[e->kind].kind, e->key);
        fleet_workload_t *wl = r.q ? fleet_queue_find(r.q, wkey) : NULL;
        if (wl && wl->state == FLEET_WL_WAITING) {
            waiting++;
            if (rc == 0)
                json_object_set_new(pl->queued[e->kind], e->key, json_true());
        }
        s_ent_free(e);
    }
    pl->rounds++;
    pl->admitted += n;
    if (n > 0) {
        char a[24], wt[24];
        snprintf(a, sizeof(a), "%zu", n);
        snprintf(wt, sizeof(wt), "%zu", waiting);
        log_info("admission round", "admitted", a, "waiting", wt, NULL);
    }
    pl->dirty = waiting > 0; /* work waits: another round after the period */
    fleet_queues_destroy(&r.q);
    free(r.ents);
    json_decref(r.index);
    for (int k = 0; k < PLACER_NKINDS; k++)
        json_decref(r.seen[k]);
    buf_free(&err);
}

static int64_t s_timer(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    placer_t *pl = arg;
    pl->timer = 0;
    s_round(pl);
    if (pl->dirty)
        pl->timer = loop_add_timer(pl->loop, PLACER_PERIOD_MS, s_timer, pl);
    if (pl->timer < 0)
        pl->timer = 0;
    return LOOP_TIMER_DONE;
}

/* Something may have changed what can be admitted: a round soon. */
static void s_wake(placer_t *pl)
{
    if (pl->timer) {
        if (pl->dirty)
            return; /* the round to come sees it */
        loop_cancel_timer(pl->loop, pl->timer);
    }
    pl->dirty = true;
    pl->timer = loop_add_timer(pl->loop, PLACER_ROUND_MS, s_timer, pl);
    if (pl->timer < 0)
        pl->timer = 0;
}

/* ---------- the pass ---------- */

typedef struct {
    placer_t *pl;
    placer_kind_t k;
    int member; /* placed (or to be placed) on, or -1 */
    bool decide; /* the place stage records the decision */
    int suspend; /* the place stage suspends (1: preempted) or resumes (-1) the object */
    int target; /* the member of the requests to members (s_member_result) */
    char reason[PLACER_REASON_MAX];
    json_t *copy; /* the member's copy as observed, or NULL */
    json_t *cms; /* the ConfigMaps it refers to, read from the management cluster, or NULL */
} s_pass_t;

static placer_t *s_pl(ctrl_pass_t *p)
{
    return ctrl_arg(p->c);
}

static placer_kind_t s_kind_of(ctrl_pass_t *p)
{
    placer_t *pl = s_pl(p);
    for (int k = 0; k < PLACER_NKINDS; k++)
        if (pl->ctrl[k] == p->c)
            return (placer_kind_t)k;
    return PLACER_RAYJOB;
}

static void s_pass_free(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    json_decref(d->copy);
    d->copy = NULL;
    json_decref(d->cms);
    d->cms = NULL;
}

/* The answer of a request to a member: none at all (a transport error or kube's 504) makes the
 * member suspect for FLEET_HEALTHY_MS: no create is sent to it and no round places on it (the
 * watcher's probe would say so only later). */
static void s_member_result(ctrl_pass_t *p, const k8s_result_t *res)
{
    s_pass_t *d = p->data;
    if (res->err == 0 || (res->status != 0 && res->status != 504) || d->target < 0)
        return;
    s_member_t *m = &d->pl->members[d->target];
    int64_t until = rftime_now_ms() + FLEET_HEALTHY_MS;
    if (m->suspect_until < until) {
        if (m->suspect_until < rftime_now_ms())
            log_warn("member does not answer: no create sent to it for a while", "member",
                     m->cfg->name, "error", res->message, NULL);
        m->suspect_until = until;
    }
}

/* A request to member `mi` about object kind/name of the pass's namespace. */
static void s_member_send_to(ctrl_pass_t *p, int mi, ctrl_verb_t verb, const char *group,
                             const char *resource, const char *kind, const char *name,
                             const char *ok, const char *fail, const json_t *body)
{
    s_pass_t *d = p->data;
    placer_t *pl = d->pl;
    d->target = mi; /* a pass talks to one member at a time (strays: to each in turn) */
    ctrl_send(p,
              &(ctrl_req_t){.verb = verb,
                            .group = group,
                            .version = "v1",
                            .resource = resource,
                            .kind = kind,
                            .name = name,
                            .noun = kind,
                            .ok_reason = ok,
                            .fail_reason = fail,
                            .propagation = verb == CTRL_DELETE ? "Background" : NULL,
                            .client = pl->members[mi].client,
                            .cluster = pl->members[mi].cfg->name,
                            .on_result = s_member_result},
              body);
}

/* A request to member `mi` about the copy. */
static void s_member_send(ctrl_pass_t *p, int mi, ctrl_verb_t verb, const char *ok,
                          const char *fail, const json_t *body)
{
    s_pass_t *d = p->data;
    s_member_send_to(p, mi, verb, "ray.io", s_kinds[d->k].resource, s_kinds[d->k].kind, p->name, ok,
                     fail, body);
}

/* A merge patch of the management object's metadata (stolen; resourceVersion precondition) and,
 * when not NULL, spec (stolen). */
static void s_meta_patch_spec(ctrl_pass_t *p, json_t *meta, json_t *spec)
{
    s_pass_t *d = p->data;
    json_object_set_new(meta, "resourceVersion",
                        json_string(jx_str(p->obj, "metadata.resourceVersion", "")));
    json_t *patch = json_pack("{s:o, s:o*}", "metadata", meta, "spec", spec);
    if (!patch) {
        ctrl_fail(p, NULL, "out of memory");
        return;
    }
    ctrl_send(p,
              &(ctrl_req_t){.verb = CTRL_PATCH,
                            .group = "ray.io",
                            .version = "v1",
                            .resource = s_kinds[d->k].resource,
                            .kind = s_kinds[d->k].kind,
                            .name = p->name,
                            .noun = s_kinds[d->k].kind},
              patch);
    json_decref(patch);
}

static void s_meta_patch(ctrl_pass_t *p, json_t *meta)
{
    s_meta_patch_spec(p, meta, NULL);
}

/* Deletes copies of this object left on members other than `keep` (-1: all). Returns how many
 * are still there. */
static int s_strays(ctrl_pass_t *p, int keep)
{
    s_pass_t *d = p->data;
    placer_t *pl = d->pl;
    const char *uid = jx_str(p->obj, "metadata.uid", "");
    int left = 0;
    for (size_t i = 0; i < pl->nmembers; i++) {
        if ((int)i == keep)
            continue;
        json_t *c = ctrl_observed_get_in(p->c, pl->members[i].cfg->name, s_kinds[d->k].kind, p->ns,
                                         p->name, NULL);
        if (c && s_copy_of(c, uid)) {
            left++;
            if (!jx_get(c, "metadata.deletionTimestamp") && pl->cap && pl->cap[i].healthy)
                s_member_send(p, (int)i, CTRL_DELETE, "DeletedStrayCopy", "FailedToDeleteCopy",
                              NULL);
        }
        json_decref(c);
    }
    return left;
}

static bool s_member_healthy(placer_t *pl, int mi)
{
    return pl->cap && mi >= 0 && (size_t)mi < pl->nmembers && pl->cap[mi].healthy;
}

static ctrl_begin_t s_begin(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    placer_t *pl = s_pl(p);
    d->pl = pl;
    d->k = s_kind_of(p);
    d->member = -1;
    const char *placed = s_ann(p->obj, FLEET_ANN_PLACED_ON);
    bool deleting = jx_get(p->obj, "metadata.deletionTimestamp") != NULL;
    if (deleting) {
        if (!ctrl_has_finalizer(p->obj, FLEET_FINALIZER_PLACEMENT))
            return CTRL_BEGIN_OK;
        int left = s_strays(p, -1); /* every copy goes, wherever it is */
        if (left == 0) {
            json_t *meta =
                json_pack("{s:o}", "finalizers",
                          ctrl_finalizers_with(p->obj, FLEET_FINALIZER_PLACEMENT, false));
            if (meta)
                s_meta_patch(p, meta);
            json_object_del(pl->decided[d->k], p->key);
            s_wake(pl); /* its room is free */
        } else {
            p->short_requeue = true;
        }
        return CTRL_BEGIN_END;
    }
    if (placed) {
        json_t *dec = json_object_get(pl->decided[d->k], p->key);
        bool preempted = s_ann(p->obj, FLEET_ANN_PREEMPTED) != NULL;
        if (dec && (!jx_bool(dec, "resume", false) || !preempted)) {
            json_object_del(pl->decided[d->k], p->key);
            dec = NULL;
        }
        const char *pre = json_string_value(json_object_get(pl->preempt[d->k], p->key));
        if (pre && !preempted) {
            d->suspend = 1;
            s_bound_reason(pre, d->reason);
        } else if (dec && preempted) {
            d->suspend = -1;
            s_bound_reason(jx_str(dec, "r", ""), d->reason);
        }
        d->member = s_member_index(pl, placed);
        if (d->member < 0) {
            ctrl_event(p, true, "UnknownMember", "Place",
                       "placed on member %s, which the federation configuration does not list",
                       placed);
            return CTRL_BEGIN_OK;
        }
        d->copy = ctrl_observed_get_in(p->c, placed, s_kinds[d->k].kind, p->ns, p->name, NULL);
        if (d->copy && !s_copy_of(d->copy, jx_str(p->obj, "metadata.uid", ""))) {
            ctrl_event(p, true, "MemberNameTaken", "Place",
                       "member %s already has a %s %s/%s that is not this object's copy; nothing "
                       "is created there",
                       placed, s_kinds[d->k].kind, p->ns, p->name);
            return CTRL_BEGIN_OK;
        }
        json_t *here = json_object_get(pl->placed_here[d->k], p->key);
        bool unsent = here && json_integer_value(here) == d->member &&
                      !json_object_get(pl->sent[d->k], p->key);
        if (!d->copy && !s_member_healthy(pl, d->member) && !jx_get(p->obj, "status") && unsent) {
            /* not started and its member does not answer: placed again elsewhere */
            char why[3 * CTRL_KEY_MAX + 256];
            snprintf(why, sizeof(why),
                     "member %s does not answer and %s %s/%s has not started there: placed again",
                     placed, s_kinds[d->k].kind, p->ns, p->name);
            ctrl_audit(p, "ray.io", s_kinds[d->k].kind, p->name, "unplace", "MemberUnreachable",
                       why, NULL, 0, NULL, 0);
            ctrl_event(p, true, "MemberUnreachable", "Place", "%s", why);
            json_object_del(pl->placed_here[d->k], p->key);
            json_t *meta = json_pack("{s:{s:n, s:n}}", "annotations", FLEET_ANN_PLACED_ON,
                                     FLEET_ANN_PLACEMENT_REASON);
            if (meta)
                s_meta_patch(p, meta);
            s_wake(pl);
            return CTRL_BEGIN_END;
        }
        return CTRL_BEGIN_STAGES;
    }
    json_t *dec = json_object_get(pl->decided[d->k], p->key);
    if (!dec) {
        /* waiting: say why once per reason; a key no round has seen yet asks for one */
        const char *why = json_string_value(json_object_get(pl->waiting[d->k], p->key));
        if (!json_object_get(pl->queued[d->k], p->key))
            s_wake(pl);
        if (why) {
            char h[CTRL_MEMO_MAX] = "";
            (void)hash_sha1_b32hex(why, strlen(why), HASH_LOWER, h, sizeof(h));
            const char *uid = jx_str(p->obj, "metadata.uid", "");
            const char *memo = ctrl_memo_get(p, uid, "waiting");
            if (!memo || strcmp(memo, h) != 0) {
                ctrl_event(p, false, "Waiting", "Place", "not placed yet: %s", why);
                ctrl_memo_put(p, uid, "waiting", h);
                return CTRL_BEGIN_END;
            }
        }
        return CTRL_BEGIN_OK;
    }
    d->member = (int)jx_int(dec, "m", -1);
    if (d->member < 0 || (size_t)d->member >= pl->nmembers)
        return CTRL_BEGIN_OK;
    d->decide = true;
    s_bound_reason(jx_str(dec, "r", ""), d->reason);
    return CTRL_BEGIN_STAGES;
}

/* Stage 1: the decision is written on the object before anything is created. */
static void s_stage_place(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    if (d->suspend) {
        /* Kueue's way: spec.suspend on the object; the member's copy follows (sync) */
        bool on = d->suspend > 0;
        json_t *meta =
            json_pack("{s:{s:s?}}", "annotations", FLEET_ANN_PREEMPTED, on ? d->reason : NULL);
        json_t *spec = json_pack("{s:b}", "suspend", on);
        if (!meta || !spec) {
            json_decref(meta);
            json_decref(spec);
            ctrl_fail(p, NULL, "out of memory");
            return;
        }
        if (!on)
            json_object_set_new(json_object_get(meta, "annotations"), FLEET_ANN_PREEMPTED,
                                json_null());
        ctrl_audit(p, "ray.io", s_kinds[d->k].kind, p->name, on ? "preempt" : "resume",
                   on ? "Preempted" : "Resumed", d->reason, NULL, 0, NULL, 0);
        ctrl_event(p, false, on ? "Preempted" : "Resumed", "Place", "%s",
                   on ? d->reason : "admitted again by its queue: resumed on its member");
        s_meta_patch_spec(p, meta, spec);
        return;
    }
    if (!d->decide)
        return;
    const char *mname = d->pl->members[d->member].cfg->name;
    json_t *meta = json_pack("{s:{s:s, s:s}, s:o}", "annotations", FLEET_ANN_PLACED_ON, mname,
                             FLEET_ANN_PLACEMENT_REASON, d->reason, "finalizers",
                             ctrl_finalizers_with(p->obj, FLEET_FINALIZER_PLACEMENT, true));
    if (!meta) {
        ctrl_fail(p, NULL, "out of memory");
        return;
    }
    char msg[PLACER_REASON_MAX + 128];
    snprintf(msg, sizeof(msg), "placed on member %s: %s", mname, d->reason);
    ctrl_audit(p, "ray.io", s_kinds[d->k].kind, p->name, "place", "Placed", msg, NULL, 0, NULL, 0);
    json_object_set_new(d->pl->placed_here[d->k], p->key, json_integer(d->member));
    json_object_del(d->pl->sent[d->k], p->key);
    ctrl_event(p, false, "Placed", "Place", "%s", msg);
    s_meta_patch(p, meta);
}

/* The copy is to be created in this pass: none observed, the member answers, and not a RayJob
 * that started (a second copy could run it twice). */
static bool s_will_create(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    placer_t *pl = d->pl;
    return !p->failed && d->member >= 0 && !d->copy && !d->suspend &&
           !(d->k == PLACER_RAYJOB && jx_get(p->obj, "status")) &&
           s_member_healthy(pl, d->member) &&
           rftime_now_ms() >= pl->members[d->member].suspect_until;
}

/* The names of the ConfigMaps `v` refers to (volumes' configMap, projected sources, env
 * configMapKeyRef, envFrom configMapRef), as keys of `names`, at most PLACER_MAX_CONFIGMAPS. */
static void s_configmap_refs(const json_t *v, json_t *names, int depth)
{
    if (depth > 64 || json_object_size(names) >= PLACER_MAX_CONFIGMAPS)
        return;
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x)
        {
            const char *n = json_string_value(json_object_get(x, "name"));
            if ((!strcmp(k, "configMap") || !strcmp(k, "configMapRef") ||
                 !strcmp(k, "configMapKeyRef")) &&
                n && n[0])
                json_object_set_new(names, n, json_true());
            else
                s_configmap_refs(x, names, depth + 1);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) s_configmap_refs(x, names, depth + 1);
    }
}

/* A ConfigMap read from the management cluster: kept, as the body of its copy (name, namespace,
 * labels, annotations with FLEET_ANN_PLACED_FROM, data, binaryData, immutable). */
static void s_on_configmap(ctrl_pass_t *p, const k8s_result_t *res)
{
    s_pass_t *d = p->data;
    if (res->err != 0 || !json_is_object(res->body))
        return; /* missing: the member's pods will say so, as on one cluster */
    json_t *ann = json_deep_copy(jx_get(res->body, "metadata.annotations"));
    if (!ann)
        ann = json_object();
    json_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
    char from[4 * CTRL_KEY_MAX];
    snprintf(from, sizeof(from), "%s/%s/%s/%s", d->pl->fed.management.name, p->ns,
             jx_str(res->body, "metadata.name", ""), jx_str(res->body, "metadata.uid", ""));
    json_object_set_new(ann, FLEET_ANN_PLACED_FROM, json_string(from));
    json_t *labels = jx_get(res->body, "metadata.labels");
    json_t *cm =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:o}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", jx_str(res->body, "metadata.name", ""), "namespace", p->ns,
                  "labels", labels ? labels : json_object(), "annotations", ann);
    const char *keep[] = {"data", "binaryData", "immutable"};
    for (size_t i = 0; cm && i < sizeof(keep) / sizeof(keep[0]); i++)
        if (json_object_get(res->body, keep[i]))
            json_object_set(cm, keep[i], json_object_get(res->body, keep[i]));
    if (cm && (d->cms || (d->cms = json_array())))
        json_array_append(d->cms, cm);
    json_decref(cm);
}

/* Stage 2: the ConfigMaps the object refers to are read from the management cluster (a member
 * has none of them: the RayJob sample's code, ...). Secrets are not copied between clusters. */
static void s_stage_configmaps(ctrl_pass_t *p)
{
    if (!s_will_create(p))
        return;
    json_t *names = json_object();
    s_configmap_refs(json_object_get(p->obj, "spec"), names, 0);
    const char *n;
    json_t *v;
    json_object_foreach(names, n, v)
    {
        ctrl_send(p,
                  &(ctrl_req_t){.verb = CTRL_GET,
                                .version = "v1",
                                .resource = "configmaps",
                                .kind = "ConfigMap",
                                .name = n,
                                .on_get = s_on_configmap},
                  NULL);
    }
    json_decref(names);
}

/* Stage 3: they are created on the member when missing (an existing one is left as it is). */
static void s_stage_configmaps_copy(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    size_t i;
    json_t *cm;
    if (!s_will_create(p))
        return;
    json_array_foreach(d->cms, i, cm)
    {
        s_member_send_to(p, d->member, CTRL_CREATE, "", "configmaps", "ConfigMap",
                         jx_str(cm, "metadata.name", ""), NULL, "FailedToCreateOnMember", cm);
    }
}

/* Stage 4: the copy on the member. */
static void s_stage_sync(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    placer_t *pl = d->pl;
    if (p->failed)
        return;
    const char *mname = pl->members[d->member].cfg->name;
    (void)s_strays(p, d->member);
    if (!d->copy) {
        if (d->k == PLACER_RAYJOB && jx_get(p->obj, "status")) {
            /* it started there: a second copy could run it twice */
            if (!s_rayjob_terminal(p->obj) && s_member_healthy(pl, d->member))
                ctrl_event(p, true, "PlacedCopyMissing", "Place",
                           "the copy on member %s is gone after the RayJob started; it is not "
                           "created again (the job could run twice)",
                           mname);
            else if (!s_member_healthy(pl, d->member))
                ctrl_event(p, true, "MemberUnreachable", "Place",
                           "member %s does not answer; the RayJob placed there keeps its place",
                           mname);
            return;
        }
        if (!s_member_healthy(pl, d->member) ||
            rftime_now_ms() < pl->members[d->member].suspect_until)
            return; /* not sent: the begin may place it elsewhere */
        json_t *body = s_copy_body(p->obj, pl->fed.management.name);
        if (!body) {
            ctrl_fail(p, NULL, "out of memory");
            return;
        }
        json_object_set_new(pl->sent[d->k], p->key, json_integer(d->member));
        s_member_send(p, d->member, CTRL_CREATE, "CreatedOnMember", "FailedToCreateOnMember", body);
        json_decref(body);
        return;
    }
    if (jx_get(d->copy, "metadata.deletionTimestamp"))
        return;
    if (!s_member_healthy(pl, d->member))
        ctrl_event(p, true, "MemberUnreachable", "Place",
                   "member %s does not answer; what runs there keeps its place", mname);
    char gen[32];
    snprintf(gen, sizeof(gen), "%lld", (long long)jx_int(p->obj, "metadata.generation", 0));
    const char *synced = s_ann(d->copy, FLEET_ANN_PLACED_GENERATION);
    if (synced && strcmp(synced, gen) != 0) {
        json_t *patch =
            json_pack("[{s:s, s:s, s:O}, {s:s, s:s, s:s}]", "op", "replace", "path", "/spec",
                      "value", json_object_get(p->obj, "spec"), "op", "replace", "path",
                      "/metadata/annotations/rayfleet.io~1placed-generation", "value", gen);
        if (patch)
            s_member_send(p, d->member, CTRL_JSON_PATCH, "UpdatedOnMember",
                          "FailedToUpdateOnMember", patch);
        json_decref(patch);
    }
}

static bool s_status_changed(const json_t *old, const json_t *now)
{
    return !json_equal(old ? old : json_null(), now ? now : json_null());
}

/* Stage 5: the copy's status is the management object's. */
static void s_stage_status(ctrl_pass_t *p)
{
    s_pass_t *d = p->data;
    if (p->failed || !d->copy)
        return;
    json_t *st = json_object_get(d->copy, "status");
    if (d->k == PLACER_RAYJOB && s_rayjob_terminal(d->copy) && !s_rayjob_terminal(p->obj))
        s_wake(d->pl); /* its room frees soon: a round (the period would come too) */
    if (st)
        ctrl_status_write(p, json_deep_copy(st), s_status_changed);
}

static const ctrl_stage_t s_stages[] = {{s_stage_place, false},
                                        {s_stage_configmaps, false},
                                        {s_stage_configmaps_copy, false},
                                        {s_stage_sync, false},
                                        {s_stage_status, false}};

/* ---------- the placer ---------- */

placer_t *placer_new(const ctrlsvc_env_t *env, const char *path, buf_t *err)
{
    placer_t *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        (void)buf_puts(err, "out of memory");
        return NULL;
    }
    pl->loop = env->svc->loop;
    pl->observed = env->observed;
    if (fedcfg_load(path, &pl->fed, err) != 0)
        goto fail;
    if (strcmp(pl->fed.management.name, env->cluster) != 0) {
        (void)buf_printf(err,
                         "%s: federation.management.name is %s but this scheduler's --cluster is "
                         "%s: the placer runs on the management cluster",
                         path, pl->fed.management.name, env->cluster);
        goto fail;
    }
    pl->nmembers = pl->fed.nmembers;
    pl->members = calloc(pl->nmembers, sizeof(*pl->members));
    if (!pl->members)
        goto nomem;
    const char *dflt = cfg_str(env->svc->cfg, "kubeconfig");
    char ua[96];
    snprintf(ua, sizeof(ua), "rayfleet-scheduler/placer");
    for (size_t i = 0; i < pl->nmembers; i++) {
        s_member_t *m = &pl->members[i];
        m->cfg = &pl->fed.members[i];
        const char *kcpath = m->cfg->kubeconfig ? m->cfg->kubeconfig : dflt;
        buf_t kerr;
        buf_init(&kerr, 1024);
        if (kubeconfig_load(kcpath, m->cfg->context, &m->kc, &kerr) != 0) {
            (void)buf_printf(err, "%s: federation.members[%zu] (%s): kubeconfig: %s", path, i,
                             m->cfg->name, buf_str(&kerr));
            buf_free(&kerr);
            goto fail;
        }
        buf_free(&kerr);
        m->client = k8s_client_new(
            pl->loop, m->kc,
            &(k8s_config_t){.qps = (double)cfg_int(env->svc->cfg, "client.qps"),
                            .burst = (int)cfg_int(env->svc->cfg, "client.burst"),
                            /* a member that stops answering must not hold the placer's passes
                             * (and the work queue's slots) long: one short attempt, the pass's
                             * backoff retries */
                            .timeout_ms = PLACER_MEMBER_TIMEOUT_MS,
                            .max_retries = -1,
                            .max_inflight = (int)cfg_int(env->svc->cfg, "client.max-inflight"),
                            .max_connections = cfg_int(env->svc->cfg, "client.connections"),
                            .user_agent = ua});
        if (!m->client)
            goto nomem;
    }
    for (int k = 0; k < PLACER_NKINDS; k++) {
        pl->decided[k] = json_object();
        pl->waiting[k] = json_object();
        pl->preempt[k] = json_object();
        pl->queued[k] = json_object();
        pl->placed_here[k] = json_object();
        pl->sent[k] = json_object();
        if (!pl->decided[k] || !pl->waiting[k] || !pl->preempt[k] || !pl->queued[k] ||
            !pl->placed_here[k] || !pl->sent[k])
            goto nomem;
        pl->kinds[k] = (ctrl_kind_t){.group = "ray.io",
                                     .version = "v1",
                                     .kind = s_kinds[k].kind,
                                     .resource = s_kinds[k].resource,
                                     .component = "rayfleet-placer",
                                     .instance = "rayfleet-scheduler",
                                     .pass_size = sizeof(s_pass_t),
                                     .begin = s_begin,
                                     .stages = s_stages,
                                     .nstages = sizeof(s_stages) / sizeof(s_stages[0]),
                                     .pass_free = s_pass_free,
                                     .any_cluster = true};
        ctrl_config_t cc = env->ctrl;
        cc.kind = &pl->kinds[k];
        cc.arg = pl;
        pl->ctrl[k] = ctrl_new(pl->loop, &cc);
        if (!pl->ctrl[k])
            goto nomem;
    }
    s_wake(pl);
    log_info("placer started", "management", pl->fed.management.name, "config", path, NULL);
    return pl;
nomem:
    (void)buf_puts(err, "out of memory");
fail:
    placer_destroy(&pl);
    return NULL;
}

ctrl_t *placer_ctrl(placer_t *pl, placer_kind_t k)
{
    return pl && k < PLACER_NKINDS ? pl->ctrl[k] : NULL;
}

void placer_destroy(placer_t **pl_p)
{
    placer_t *pl = pl_p ? *pl_p : NULL;
    if (!pl)
        return;
    if (pl->timer)
        loop_cancel_timer(pl->loop, pl->timer);
    for (int k = 0; k < PLACER_NKINDS; k++) {
        ctrl_destroy(&pl->ctrl[k]);
        json_decref(pl->decided[k]);
        json_decref(pl->waiting[k]);
        json_decref(pl->preempt[k]);
        json_decref(pl->queued[k]);
        json_decref(pl->placed_here[k]);
        json_decref(pl->sent[k]);
    }
    for (size_t i = 0; pl->members && i < pl->nmembers; i++) {
        k8s_client_destroy(&pl->members[i].client);
        kubeconfig_destroy(&pl->members[i].kc);
    }
    free(pl->members);
    s_cap_free(pl);
    fedcfg_free(&pl->fed);
    free(pl);
    *pl_p = NULL;
}

/* ---------- self-test ---------- */

#ifdef RF_SELFTEST
#include "selftest.h"

int placer_test(bool verbose)
{
    int failed = 0;
    json_t *obj = json_loads(
        "{\"apiVersion\":\"ray.io/v1\",\"kind\":\"RayJob\",\"metadata\":{\"name\":\"j\","
        "\"namespace\":\"ns\",\"uid\":\"u-1\",\"generation\":3,\"resourceVersion\":\"9\","
        "\"labels\":{\"a\":\"b\"},\"annotations\":{\"rayfleet.io/placed-on\":\"m1\","
        "\"rayfleet.io/placement-reason\":\"r\",\"keep\":\"me\","
        "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"},"
        "\"finalizers\":[\"x\",\"rayfleet.io/placement\"]},\"spec\":{\"entrypoint\":\"e\"},"
        "\"status\":{\"jobDeploymentStatus\":\"Complete\"}}",
        0, NULL);
    CHECK(obj != NULL);
    json_t *body = s_copy_body(obj, "management");
    CHECK(body && !strcmp(jx_str(body, "metadata.name", ""), "j") &&
          !strcmp(jx_str(body, "metadata.namespace", ""), "ns") &&
          !strcmp(jx_str(body, "metadata.labels.a", ""), "b") &&
          !strcmp(jx_str(body, "spec.entrypoint", ""), "e") && !jx_get(body, "status") &&
          !jx_get(body, "metadata.uid") && !jx_get(body, "metadata.resourceVersion") &&
          !jx_get(body, "metadata.finalizers"));
    CHECK(!s_ann(body, FLEET_ANN_PLACED_ON) && !s_ann(body, FLEET_ANN_PLACEMENT_REASON) &&
          !s_ann(body, "kubectl.kubernetes.io/last-applied-configuration") && s_ann(body, "keep") &&
          !strcmp(s_ann(body, FLEET_ANN_PLACED_FROM), "management/ns/j/u-1") &&
          !strcmp(s_ann(body, FLEET_ANN_PLACED_GENERATION), "3"));
    CHECK(s_copy_of(body, "u-1") && !s_copy_of(body, "u-") && !s_copy_of(body, "") &&
          !s_copy_of(obj, "u-1"));
    json_decref(body);
    CHECK(s_rayjob_terminal(obj));
    json_t *f = ctrl_finalizers_with(obj, FLEET_FINALIZER_PLACEMENT, false);
    CHECK(json_array_size(f) == 1 && !strcmp(json_string_value(json_array_get(f, 0)), "x"));
    json_decref(f);
    f = ctrl_finalizers_with(obj, FLEET_FINALIZER_PLACEMENT, true);
    CHECK(json_array_size(f) == 2);
    json_decref(f);
    json_t *bare = json_pack("{s:{}}", "metadata");
    f = ctrl_finalizers_with(bare, FLEET_FINALIZER_PLACEMENT, false);
    CHECK(json_is_null(f));
    json_decref(f);
    json_decref(bare);
    /* the terminal RayJob without a cluster name holds nothing (no observed read needed) */
    placer_t pl = {0};
    CHECK(!s_active(&pl, PLACER_RAYJOB, obj, 0));
    CHECK(s_active(&pl, PLACER_RAYCLUSTER, obj, 0));
    json_decref(obj);
    char big[3 * PLACER_REASON_MAX], out[PLACER_REASON_MAX];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s_bound_reason(big, out);
    CHECK(strlen(out) == PLACER_REASON_MAX - 1 && !strcmp(out + strlen(out) - 3, "..."));
    s_bound_reason("short", out);
    CHECK(!strcmp(out, "short"));
    /* the ConfigMaps a spec refers to: volumes, projected sources, env, envFrom; not Secrets */
    json_t *spec = json_loads(
        "{\"t\":{\"volumes\":[{\"configMap\":{\"name\":\"code\"}},{\"projected\":{"
        "\"sources\":[{\"configMap\":{\"name\":\"proj\"}},{\"secret\":{\"name\":\"s\"}}]}}],"
        "\"containers\":[{\"env\":[{\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"env\","
        "\"key\":\"k\"}}}],\"envFrom\":[{\"configMapRef\":{\"name\":\"all\"}},"
        "{\"secretRef\":{\"name\":\"s2\"}}]}]}}",
        0, NULL);
    json_t *names = json_object();
    s_configmap_refs(spec, names, 0);
    CHECK(json_object_size(names) == 4 && json_object_get(names, "code") &&
          json_object_get(names, "proj") && json_object_get(names, "env") &&
          json_object_get(names, "all"));
    json_decref(names);
    json_decref(spec);
    return SELFTEST_RESULT("placer", verbose);
}
#endif /* RF_SELFTEST */
