/*
 * place: fit, placement and commit. See place.h.
 */
#include "place.h"

#include "demand.h"
#include "err.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LABEL_MAX 96 /* "worker group NAME" in a message */

int fleet_strategy_parse(const char *text, fleet_strategy_t *out)
{
    if (text && strcmp(text, "spread") == 0)
        *out = FLEET_SPREAD;
    else if (text && strcmp(text, "pack") == 0)
        *out = FLEET_PACK;
    else
        return ERR_INVAL;
    return 0;
}

const char *fleet_strategy_name(fleet_strategy_t s)
{
    return s == FLEET_PACK ? "pack" : "spread";
}

/* ---- fit ---- */

/* A pod of the demand in fit order. */
typedef struct {
    double share; /* its dominant share of the member's allocatable */
    const char *group;
    size_t idx; /* its index in the demand */
} s_ord_t;

static int s_ord_cmp(const void *a, const void *b)
{
    const s_ord_t *x = a, *y = b;
    if (x->share != y->share)
        return x->share > y->share ? -1 : 1;
    int c = strcmp(x->group, y->group);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Whether the node's labels carry every key=value of the nodeSelector `sel` (NULL: any). */
static bool s_labels_match(const json_t *sel, const json_t *labels)
{
    if (!sel)
        return true;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sel, k, v)
    {
        const char *have = json_string_value(json_object_get(labels, k));
        const char *want = json_string_value(v);
        if (!have || !want || strcmp(have, want) != 0)
            return false;
    }
    return true;
}

/* The room of node `nd` in dimension i with `tent` taken by this demand. */
static int64_t s_free(const fleet_node_t *nd, const fleet_res_t *tent, int i)
{
    int64_t f;
    if (__builtin_sub_overflow(nd->alloc.v[i], nd->used.v[i], &f) ||
        __builtin_sub_overflow(f, tent->v[i], &f))
        return nd->alloc.v[i] >= 0 && nd->used.v[i] <= 0 ? INT64_MAX : INT64_MIN;
    return f;
}

static bool s_room(const fleet_node_t *nd, const fleet_res_t *tent, const fleet_res_t *req)
{
    for (int i = 0; i < FLEET_RES_N; i++)
        if (req->v[i] > 0 && s_free(nd, tent, i) < req->v[i])
            return false;
    return true;
}

static bool s_same_shape(const fleet_pod_t *a, const fleet_pod_t *b)
{
    return a->node_selector == b->node_selector && strcmp(a->group, b->group) == 0 &&
           memcmp(&a->req, &b->req, sizeof(a->req)) == 0;
}

/* The first schedulable node from `start` with room for p and matching labels, or nnodes. */
static size_t s_first_node(const fleet_member_t *m, const fleet_res_t *tent, const fleet_pod_t *p,
                           size_t start)
{
    for (size_t j = start; j < m->nnodes; j++) {
        const fleet_node_t *nd = &m->nodes[j];
        if (nd->schedulable && s_room(nd, &tent[j], &p->req) &&
            s_labels_match(p->node_selector, nd->labels))
            return j;
    }
    return m->nnodes;
}

/* One dimension's amount as users read it ("2", "500m", "1Gi") into out[n]. */
static void s_amount(int dim, int64_t v, char *out, size_t n)
{
    fleet_res_t r = {{0}};
    r.v[dim] = v;
    char s[64];
    fleet_res_format(&r, s, sizeof(s));
    const char *eq = strchr(s, '=');
    snprintf(out, n, "%s", eq ? eq + 1 : s);
}

/* The nodeSelector as "k=v,k2=v2" into out[n]. */
static void s_selector_text(const json_t *sel, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sel, k, v)
    {
        int w = snprintf(out + len, n - len, "%s%s=%s", len ? "," : "", k, json_string_value(v));
        if (w < 0 || (size_t)w >= n - len)
            return;
        len += (size_t)w;
    }
}

/* why[n] for pod p of d, `fails` of the `group_n` pods of its group not fitting, with `tent`
 * what the demand's other pods took. */
static void s_why_pod(const fleet_member_t *m, const fleet_demand_t *d, const fleet_pod_t *p,
                      const fleet_res_t *tent, size_t fails, size_t group_n, char *why, size_t n)
{
    char label[S_LABEL_MAX], head[S_LABEL_MAX + 48];
    fleet_demand_group_label(p, label, sizeof(label));
    if (group_n <= 1)
        snprintf(head, sizeof(head), "%s: the pod does not fit", label);
    else
        snprintf(head, sizeof(head), "%s: %zu of %zu pods do not fit", label, fails, group_n);
    size_t sched = 0, match = 0;
    int64_t short_min[FLEET_RES_N];
    for (int i = 0; i < FLEET_RES_N; i++)
        short_min[i] = INT64_MAX;
    for (size_t j = 0; j < m->nnodes; j++) {
        const fleet_node_t *nd = &m->nodes[j];
        if (!nd->schedulable)
            continue;
        sched++;
        if (!s_labels_match(p->node_selector, nd->labels))
            continue;
        match++;
        for (int i = 0; i < FLEET_RES_N; i++) {
            int64_t s = 0;
            if (p->req.v[i] > 0 && __builtin_sub_overflow(p->req.v[i], s_free(nd, &tent[j], i), &s))
                s = INT64_MAX - 1; /* short by more than can be said */
            if (s < 0)
                s = 0;
            if (s < short_min[i])
                short_min[i] = s;
        }
    }
    char sel[160] = "";
    if (p->node_selector)
        s_selector_text(p->node_selector, sel, sizeof(sel));
    if (sched == 0) {
        snprintf(why, n, "%s: no schedulable node (%zu nodes, none Ready and uncordoned)", head,
                 m->nnodes);
        return;
    }
    if (match == 0) {
        if (p->gpu_type)
            snprintf(why, n, "%s: no schedulable node has accelerator %s (nodeSelector %s)", head,
                     p->gpu_type, sel);
        else
            snprintf(why, n, "%s: no schedulable node matches nodeSelector %s", head, sel);
        return;
    }
    static const int dims[] = {FLEET_RES_GPU, FLEET_RES_CPU, FLEET_RES_MEMORY, FLEET_RES_PODS};
    fleet_res_t room = m->alloc;
    fleet_res_sub(&room, &m->used);
    /* fragmentation, said when the pod asks for no particular nodes */
    const char *whole = !sel[0] && fleet_res_fits(&d->total, &room)
                            ? " (enough free in total, not on one node)"
                            : "";
    for (size_t k = 0; k < sizeof(dims) / sizeof(dims[0]); k++) {
        int i = dims[k];
        if (short_min[i] > 0 && short_min[i] != INT64_MAX) {
            char amt[64];
            s_amount(i, short_min[i], amt, sizeof(amt));
            snprintf(why, n, "%s: %s short by %s on every node%s%s%s", head, fleet_res_name(i), amt,
                     sel[0] ? " matching " : "", sel, whole);
            return;
        }
    }
    char req[128];
    fleet_res_format(&p->req, req, sizeof(req));
    snprintf(why, n, "%s: no single node has room for all of %s at once%s", head, req, whole);
}

/* Fits d on m: 1 (node_of[i], when not NULL, the node of pod i), 0 (why[n] says why, when not
 * NULL), ERR_NOMEM. */
static int s_fit(const fleet_member_t *m, const fleet_demand_t *d, size_t *node_of, char *why,
                 size_t n)
{
    if (why && n)
        why[0] = '\0';
    if (!why)
        n = 0;
    if (d->npods == 0)
        return 1;
    fleet_res_t room = m->alloc;
    fleet_res_sub(&room, &m->used);
    if (!fleet_res_fits(&d->total, &room)) {
        if (n) {
            char need[128], have[128];
            fleet_res_format(&d->total, need, sizeof(need));
            for (int i = 0; i < FLEET_RES_N; i++)
                if (room.v[i] < 0)
                    room.v[i] = 0;
            fleet_res_format(&room, have, sizeof(have));
            for (int i = 0; i < FLEET_RES_N; i++) {
                if (d->total.v[i] > room.v[i]) {
                    char amt[64];
                    s_amount(i, d->total.v[i] - room.v[i], amt, sizeof(amt));
                    snprintf(why, n, "%s short by %s in total: needs %s, %s free",
                             fleet_res_name(i), amt, need, have);
                    break;
                }
            }
        }
        return 0;
    }
    s_ord_t *ord = calloc(d->npods, sizeof(*ord));
    fleet_res_t *tent = calloc(m->nnodes ? m->nnodes : 1, sizeof(*tent));
    if (!ord || !tent) {
        free(ord);
        free(tent);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < d->npods; i++) {
        ord[i].share = fleet_res_dominant_share(&d->pods[i].req, &m->alloc, NULL);
        ord[i].group = d->pods[i].group ? d->pods[i].group : "";
        ord[i].idx = i;
    }
    qsort(ord, d->npods, sizeof(*ord), s_ord_cmp);
    int fits = 1;
    size_t start = 0;
    const fleet_pod_t *prev = NULL;
    for (size_t k = 0; k < d->npods; k++) {
        const fleet_pod_t *p = &d->pods[ord[k].idx];
        /* an identical pod did not fit on the nodes before the previous one's */
        if (!prev || !s_same_shape(prev, p))
            start = 0;
        size_t j = s_first_node(m, tent, p, start);
        if (j < m->nnodes) {
            fleet_res_add(&tent[j], &p->req);
            if (node_of)
                node_of[ord[k].idx] = j;
            start = j;
            prev = p;
            continue;
        }
        fits = 0;
        if (n) {
            /* how many of its group do not fit, the others placed */
            size_t fails = 1, group_n = 0;
            for (size_t i = 0; i < d->npods; i++)
                group_n += strcmp(d->pods[i].group ? d->pods[i].group : "", ord[k].group) == 0;
            for (size_t k2 = k + 1; k2 < d->npods; k2++) {
                const fleet_pod_t *q = &d->pods[ord[k2].idx];
                if (!s_same_shape(p, q))
                    continue;
                size_t j2 = s_first_node(m, tent, q, 0);
                if (j2 < m->nnodes)
                    fleet_res_add(&tent[j2], &q->req);
                else
                    fails++;
            }
            s_why_pod(m, d, p, tent, fails, group_n, why, n);
        }
        break;
    }
    free(ord);
    free(tent);
    return fits;
}

bool fleet_fit(const fleet_member_t *m, const fleet_demand_t *d, char *why, size_t n)
{
    if (!m || !d)
        return false;
    int rc = s_fit(m, d, NULL, why, n);
    if (rc < 0 && why && n)
        snprintf(why, n, "out of memory");
    return rc == 1;
}

int fleet_commit(fleet_member_t *m, const fleet_demand_t *d)
{
    if (!m || !d)
        return ERR_INVAL;
    if (d->npods == 0)
        return 0;
    size_t *node_of = calloc(d->npods, sizeof(*node_of));
    if (!node_of)
        return ERR_NOMEM;
    int rc = s_fit(m, d, node_of, NULL, 0);
    if (rc == 1) {
        for (size_t i = 0; i < d->npods; i++) {
            fleet_res_add(&m->nodes[node_of[i]].used, &d->pods[i].req);
            fleet_res_add(&m->used, &d->pods[i].req);
        }
        rc = 0;
    } else if (rc == 0) {
        rc = ERR_INVAL;
    }
    free(node_of);
    return rc;
}

/* ---- placement ---- */

/* Appends printf text to out[FLEET_REASON_MAX] at *len; a text that does not fit ends in "...". */
static void s_reason(char *out, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_reason(char *out, size_t *len, const char *fmt, ...)
{
    if (*len >= FLEET_REASON_MAX - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *len, FLEET_REASON_MAX - *len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= FLEET_REASON_MAX - *len) {
        memcpy(out + FLEET_REASON_MAX - 4, "...", 4);
        *len = FLEET_REASON_MAX - 1;
        return;
    }
    *len += (size_t)w;
}

static int s_name_cmp(const fleet_member_t *a, const fleet_member_t *b)
{
    return strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

int fleet_place(const fleet_member_t *members, size_t n, const fleet_demand_t *d,
                const fleet_policy_t *p, fleet_choice_t *out)
{
    if (!out)
        return -1;
    out->index = -1;
    out->share = 0;
    out->fits = 0;
    out->reason[0] = '\0';
    if (!d || (n && !members)) {
        snprintf(out->reason, sizeof(out->reason), "no demand or no members");
        return -1;
    }
    if (d->flags & FLEET_DEMAND_EXISTING_CLUSTER) {
        snprintf(out->reason, sizeof(out->reason),
                 "not placed: runs on an existing RayCluster (spec.clusterSelector), on that "
                 "cluster's member");
        return -1;
    }
    fleet_policy_t none = {NULL, NULL, FLEET_SPREAD};
    if (!p)
        p = &none;
    size_t *ord = calloc(n ? n : 1, sizeof(*ord));
    char *whys = calloc(n ? n : 1, FLEET_WHY_MAX);
    if (!ord || !whys) {
        free(ord);
        free(whys);
        snprintf(out->reason, sizeof(out->reason), "out of memory");
        return -1;
    }
    /* members in name order (insertion sort: a federation has tens of members) */
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        while (k > 0 && s_name_cmp(&members[ord[k - 1]], &members[i]) > 0) {
            ord[k] = ord[k - 1];
            k--;
        }
        ord[k] = i;
    }
    int best = -1;
    double best_share = 0;
    size_t skipped = 0; /* not the required member */
    bool required_seen = false;
    for (size_t r = 0; r < n; r++) {
        const fleet_member_t *m = &members[ord[r]];
        char *why = whys + ord[r] * FLEET_WHY_MAX;
        if (p->member && strcmp(m->name ? m->name : "", p->member) != 0) {
            skipped++;
            continue;
        }
        required_seen = true;
        if (!m->healthy) {
            snprintf(why, FLEET_WHY_MAX, "unhealthy (not answering its API)");
            continue;
        }
        if (p->selector && !selector_matches_labels(p->selector, m->labels)) {
            snprintf(why, FLEET_WHY_MAX, "its labels do not match the member selector");
            continue;
        }
        char fwhy[FLEET_WHY_MAX];
        int rc = s_fit(m, d, NULL, fwhy, sizeof(fwhy));
        if (rc != 1) {
            snprintf(why, FLEET_WHY_MAX, "%s", rc < 0 ? "out of memory" : fwhy);
            continue;
        }
        fleet_res_t after = m->used;
        fleet_res_add(&after, &d->total);
        double share = fleet_res_dominant_share(&after, &m->alloc, NULL);
        snprintf(why, FLEET_WHY_MAX, "fits, dominant share %.2f after", share);
        out->fits++;
        if (best < 0 || (p->strategy == FLEET_PACK ? share > best_share : share < best_share)) {
            best = (int)ord[r];
            best_share = share;
        }
    }
    size_t len = 0;
    if (p->member && !required_seen)
        s_reason(out->reason, &len, "required member %s (rayfleet.io/member) is not a member",
                 p->member);
    else if (best >= 0)
        s_reason(out->reason, &len,
                 "placed on %s (%s: dominant share %.2f after, the %s of %d "
                 "that fit)",
                 members[best].name, fleet_strategy_name(p->strategy), best_share,
                 p->strategy == FLEET_PACK ? "highest" : "lowest", out->fits);
    else
        s_reason(out->reason, &len, "no member fits");
    for (size_t r = 0; r < n; r++) {
        const char *why = whys + ord[r] * FLEET_WHY_MAX;
        if ((int)ord[r] == best || !why[0])
            continue;
        s_reason(out->reason, &len, "; %s: %s", members[ord[r]].name, why);
    }
    if (p->member && skipped)
        s_reason(out->reason, &len, "; %zu other member%s not considered (rayfleet.io/member=%s)",
                 skipped, skipped == 1 ? "" : "s", p->member);
    free(ord);
    free(whys);
    out->index = best;
    out->share = best >= 0 ? best_share : 0;
    return best;
}

bool fleet_member_answering(int64_t last_ok_ms, int64_t now_ms)
{
    return last_ok_ms > 0 && now_ms - last_ok_ms <= FLEET_HEALTHY_MS;
}

#ifdef RF_SELFTEST
#include "selftest.h"

#define S_T_GI (1LL << 30)

/* A schedulable node of cpu cores, memory GiB, gpus, 110 pods, labels from JSON (NULL: {}). */
static void s_t_node(fleet_node_t *nd, const char *name, int64_t cpu, int64_t mem, int64_t gpu,
                     const char *labels)
{
    memset(nd, 0, sizeof(*nd));
    nd->name = strdup(name);
    nd->labels = labels ? json_loads(labels, 0, NULL) : json_object();
    nd->gpu_type = json_string_value(json_object_get(nd->labels, "nvidia.com/gpu.product"));
    nd->alloc.v[FLEET_RES_CPU] = cpu * 1000;
    nd->alloc.v[FLEET_RES_MEMORY] = mem * S_T_GI;
    nd->alloc.v[FLEET_RES_GPU] = gpu;
    nd->alloc.v[FLEET_RES_PODS] = 110;
    nd->schedulable = true;
}

/* Member `name` of nn nodes made by the caller into nodes; sums recomputed. */
static void s_t_member(fleet_member_t *m, const char *name, const char *labels, fleet_node_t *nodes,
                       size_t nn)
{
    memset(m, 0, sizeof(*m));
    m->name = strdup(name);
    m->labels = labels ? json_loads(labels, 0, NULL) : json_object();
    m->nodes = calloc(nn ? nn : 1, sizeof(*nodes));
    memcpy(m->nodes, nodes, nn * sizeof(*nodes));
    m->nnodes = nn;
    m->healthy = true;
    for (size_t i = 0; i < nn; i++) {
        if (!nodes[i].schedulable)
            continue;
        fleet_res_add(&m->alloc, &nodes[i].alloc);
        fleet_res_add(&m->used, &nodes[i].used);
    }
}

static void s_t_member_free(fleet_member_t *m)
{
    for (size_t i = 0; i < m->nnodes; i++) {
        free(m->nodes[i].name);
        json_decref(m->nodes[i].labels);
    }
    free(m->nodes);
    free(m->name);
    json_decref(m->labels);
    memset(m, 0, sizeof(*m));
}

/* A demand: a head of 1 CPU 1 GiB, and `count` workers of group `group` each cpu/gpu, with the
 * nodeSelector JSON `sel` (NULL none). */
static int s_t_demand(fleet_demand_t *d, const char *group, int count, const char *cpu, int gpu,
                      const char *sel)
{
    char spec[2048];
    snprintf(spec, sizeof(spec),
             "{\"headGroupSpec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\","
             "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}},"
             "\"workerGroupSpecs\":[{\"groupName\":\"%s\",\"replicas\":%d,\"template\":{\"spec\":"
             "{%s%s%s\"containers\":[{\"name\":\"w\",\"resources\":{\"requests\":{\"cpu\":\"%s\","
             "\"nvidia.com/gpu\":%d}}}]}}}]}",
             group, count, sel ? "\"nodeSelector\":" : "", sel ? sel : "", sel ? "," : "", cpu,
             gpu);
    json_t *s = json_loads(spec, 0, NULL);
    buf_t err;
    buf_init(&err, 1024);
    int rc = s ? fleet_demand_raycluster(s, d, &err) : ERR_INVAL;
    if (rc)
        printf("place: demand: %s\n", buf_str(&err));
    buf_free(&err);
    json_decref(s);
    return rc;
}

int place_test(bool verbose)
{
    int failed = 0;
    char why[FLEET_WHY_MAX];
    fleet_node_t nodes[8];
    fleet_member_t m;
    fleet_demand_t d;

    /* fragmentation: 8 CPUs free in total over two nodes, a 6-CPU worker fits neither */
    s_t_node(&nodes[0], "n0", 4, 16, 0, NULL);
    s_t_node(&nodes[1], "n1", 4, 16, 0, NULL);
    s_t_member(&m, "frag", NULL, nodes, 2);
    CHECK(s_t_demand(&d, "big", 1, "6", 0, NULL) == 0);
    CHECK(d.total.v[FLEET_RES_CPU] == 7000);
    fleet_member_t snap = m;
    fleet_node_t snap_nodes[2];
    memcpy(snap_nodes, m.nodes, sizeof(snap_nodes));
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)));
    if (verbose)
        printf("place: %s\n", why);
    CHECK(strcmp(why, "worker group big: the pod does not fit: cpu short by 2 on every node "
                      "(enough free in total, not on one node)") == 0);
    /* fit and a refused commit leave the member as it was */
    CHECK(fleet_commit(&m, &d) == ERR_INVAL);
    CHECK(memcmp(&snap, &m, sizeof(m)) == 0 &&
          memcmp(snap_nodes, m.nodes, sizeof(snap_nodes)) == 0);
    fleet_demand_free(&d);
    /* a 3-CPU worker fits beside the head; committing it twice fills the member */
    CHECK(s_t_demand(&d, "mid", 1, "3", 0, NULL) == 0);
    CHECK(fleet_fit(&m, &d, why, sizeof(why)) && why[0] == '\0');
    CHECK(memcmp(&snap, &m, sizeof(m)) == 0);
    CHECK(fleet_commit(&m, &d) == 0);
    /* decreasing order: the 3-CPU worker first on n0, the head on n0 too (first fit) */
    CHECK(m.nodes[0].used.v[FLEET_RES_CPU] == 4000 && m.nodes[1].used.v[FLEET_RES_CPU] == 0);
    CHECK(m.used.v[FLEET_RES_CPU] == 4000 && m.used.v[FLEET_RES_PODS] == 2);
    CHECK(fleet_commit(&m, &d) == 0 && m.nodes[1].used.v[FLEET_RES_CPU] == 4000);
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)));
    CHECK(strstr(why, "cpu short by 4 in total") == why);
    fleet_demand_free(&d);
    s_t_member_free(&m);

    /* "2 of 4 pods do not fit": 4 workers of 2 GPUs, one 4-GPU node and four 1-GPU nodes */
    s_t_node(&nodes[0], "g0", 32, 64, 4, NULL);
    for (int i = 1; i <= 4; i++)
        s_t_node(&nodes[i], i == 1 ? "g1" : i == 2 ? "g2" : i == 3 ? "g3" : "g4", 32, 64, 1, NULL);
    s_t_member(&m, "gpus", NULL, nodes, 5);
    CHECK(s_t_demand(&d, "gpu", 4, "1", 2, NULL) == 0);
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)));
    CHECK(strcmp(why, "worker group gpu: 2 of 4 pods do not fit: gpu short by 1 on every node "
                      "(enough free in total, not on one node)") == 0);
    fleet_demand_free(&d);
    s_t_member_free(&m);

    /* accelerator type and nodeSelector */
    s_t_node(&nodes[0], "t4", 32, 64, 4, "{\"nvidia.com/gpu.product\":\"T4\",\"zone\":\"a\"}");
    s_t_node(&nodes[1], "a100", 32, 64, 1, "{\"nvidia.com/gpu.product\":\"A100\",\"zone\":\"a\"}");
    s_t_member(&m, "typed", NULL, nodes, 2);
    const char *a100 = "{\"nvidia.com/gpu.product\":\"A100\"}";
    CHECK(s_t_demand(&d, "g", 1, "1", 1, a100) == 0);
    CHECK(d.npods == 2 && d.pods[1].gpu_type && strcmp(d.pods[1].gpu_type, "A100") == 0);
    CHECK(fleet_fit(&m, &d, why, sizeof(why)));
    CHECK(fleet_commit(&m, &d) == 0);
    CHECK(m.nodes[1].used.v[FLEET_RES_GPU] == 1 && m.nodes[0].used.v[FLEET_RES_GPU] == 0);
    /* the T4 node has 4 free GPUs, the A100 none: does not fit */
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)));
    CHECK(strcmp(why, "worker group g: the pod does not fit: gpu short by 1 on every node "
                      "matching nvidia.com/gpu.product=A100") == 0);
    fleet_demand_free(&d);
    CHECK(s_t_demand(&d, "g", 1, "1", 1, "{\"nvidia.com/gpu.product\":\"H100\"}") == 0);
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)));
    CHECK(strcmp(why, "worker group g: the pod does not fit: no schedulable node has accelerator "
                      "H100 (nodeSelector nvidia.com/gpu.product=H100)") == 0);
    fleet_demand_free(&d);
    CHECK(s_t_demand(&d, "z", 2, "1", 0, "{\"zone\":\"b\"}") == 0);
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)));
    CHECK(strcmp(why, "worker group z: 2 of 2 pods do not fit: no schedulable node matches "
                      "nodeSelector zone=b") == 0);
    fleet_demand_free(&d);
    CHECK(s_t_demand(&d, "z", 2, "1", 0, "{\"zone\":\"a\"}") == 0);
    CHECK(fleet_fit(&m, &d, why, sizeof(why)));
    fleet_demand_free(&d);
    /* a cordoned node offers nothing */
    m.nodes[0].schedulable = m.nodes[1].schedulable = false;
    CHECK(s_t_demand(&d, "z", 1, "1", 0, NULL) == 0);
    CHECK(!fleet_fit(&m, &d, why, sizeof(why)) && strstr(why, "head: the pod does not fit: no "
                                                              "schedulable node (2 nodes"));
    fleet_demand_free(&d);
    s_t_member_free(&m);
    /* an empty demand fits anything */
    fleet_demand_t empty = {0};
    s_t_member(&m, "none", NULL, nodes, 0);
    CHECK(fleet_fit(&m, &empty, why, sizeof(why)) && fleet_commit(&m, &empty) == 0);
    s_t_member_free(&m);

    /* placement: small (8 CPUs), big (64), huge (128, unhealthy), eu (16, region=eu) */
    fleet_member_t ms[4];
    s_t_node(&nodes[0], "s0", 8, 32, 0, NULL);
    s_t_member(&ms[0], "small", "{\"region\":\"us\"}", nodes, 1);
    s_t_node(&nodes[0], "b0", 32, 128, 0, NULL);
    s_t_node(&nodes[1], "b1", 32, 128, 0, NULL);
    s_t_member(&ms[1], "big", "{\"region\":\"us\"}", nodes, 2);
    s_t_node(&nodes[0], "h0", 128, 512, 0, NULL);
    s_t_member(&ms[2], "huge", "{\"region\":\"us\"}", nodes, 1);
    ms[2].healthy = false;
    s_t_node(&nodes[0], "e0", 16, 64, 0, NULL);
    s_t_member(&ms[3], "eu", "{\"region\":\"eu\"}", nodes, 1);
    CHECK(s_t_demand(&d, "w", 3, "1", 0, NULL) == 0); /* 4 CPUs, 4 GiB */
    fleet_choice_t c;
    fleet_policy_t pol = {NULL, NULL, FLEET_SPREAD};
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == 1 && c.index == 1 && c.fits == 3);
    if (verbose)
        printf("place: %s\n", c.reason);
    CHECK(strcmp(c.reason, "placed on big (spread: dominant share 0.06 after, the lowest of 3 "
                           "that fit); eu: fits, dominant share 0.25 after; huge: unhealthy (not "
                           "answering its API); small: fits, dominant share 0.50 after") == 0);
    pol.strategy = FLEET_PACK;
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == 0 && strstr(c.reason, "placed on small (pack:"));
    /* required member, healthy or not, present or not */
    pol.member = "eu";
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == 3);
    CHECK(strstr(c.reason, "3 other members not considered (rayfleet.io/member=eu)") != NULL);
    pol.member = "huge";
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == -1 &&
          strcmp(c.reason, "no member fits; huge: unhealthy (not answering its API); 3 other "
                           "members not considered (rayfleet.io/member=huge)") == 0);
    pol.member = "mars";
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == -1 && strstr(c.reason, "required member mars"));
    /* a member selector */
    selector_t *sel = NULL;
    CHECK(selector_parse_labels("region=eu", &sel, NULL) == 0);
    pol = (fleet_policy_t){NULL, sel, FLEET_SPREAD};
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == 3 &&
          strstr(c.reason, "big: its labels do not match the member selector"));
    selector_destroy(&sel);
    CHECK(selector_parse_labels("region in (us),accelerator", &sel, NULL) == 0);
    pol.selector = sel;
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == -1 && c.fits == 0);
    selector_destroy(&sel);
    /* determinism: the same members in another order, the same choice and reason */
    fleet_member_t rev[4] = {ms[3], ms[2], ms[1], ms[0]};
    fleet_choice_t c2;
    pol = (fleet_policy_t){NULL, NULL, FLEET_SPREAD};
    CHECK(fleet_place(ms, 4, &d, &pol, &c) == 1 && fleet_place(rev, 4, &d, &pol, &c2) == 2);
    CHECK(strcmp(c.reason, c2.reason) == 0);
    fleet_demand_free(&d);
    for (int i = 0; i < 4; i++)
        s_t_member_free(&ms[i]);

    /* ties go to the first name; spread alternates over equal members, pack fills the first */
    for (int strat = 0; strat < 2; strat++) {
        fleet_member_t eq[2];
        s_t_node(&nodes[0], "x", 16, 64, 0, NULL);
        s_t_member(&eq[0], "m-2", NULL, nodes, 1);
        s_t_node(&nodes[0], "y", 16, 64, 0, NULL);
        s_t_member(&eq[1], "m-1", NULL, nodes, 1);
        CHECK(s_t_demand(&d, "w", 3, "1", 0, NULL) == 0);
        pol = (fleet_policy_t){NULL, NULL, strat ? FLEET_PACK : FLEET_SPREAD};
        int seq[6];
        for (int k = 0; k < 6; k++) {
            seq[k] = fleet_place(eq, 2, &d, &pol, &c);
            if (seq[k] >= 0)
                CHECK(fleet_commit(&eq[seq[k]], &d) == 0);
        }
        if (strat == 0)
            CHECK(seq[0] == 1 && seq[1] == 0 && seq[2] == 1 && seq[3] == 0 && seq[4] == 1 &&
                  seq[5] == 0);
        else
            CHECK(seq[0] == 1 && seq[1] == 1 && seq[2] == 1 && seq[3] == 1 && seq[4] == 0 &&
                  seq[5] == 0);
        /* never over capacity */
        for (int k = 0; k < 2; k++)
            CHECK(eq[k].used.v[FLEET_RES_CPU] <= eq[k].alloc.v[FLEET_RES_CPU]);
        fleet_demand_free(&d);
        s_t_member_free(&eq[0]);
        s_t_member_free(&eq[1]);
    }

    /* the reason text is bounded */
    enum { S_T_MANY = 60 };
    fleet_member_t *many = calloc(S_T_MANY, sizeof(*many));
    for (int i = 0; i < S_T_MANY; i++) {
        char name[96];
        snprintf(name, sizeof(name), "a-member-with-a-rather-long-name-%03d", i);
        s_t_node(&nodes[0], "n", 1, 1, 0, NULL);
        s_t_member(&many[i], name, NULL, nodes, 1);
    }
    CHECK(s_t_demand(&d, "w", 1, "2", 0, NULL) == 0);
    CHECK(fleet_place(many, S_T_MANY, &d, NULL, &c) == -1);
    CHECK(strlen(c.reason) == FLEET_REASON_MAX - 1 &&
          strcmp(c.reason + FLEET_REASON_MAX - 4, "...") == 0);
    fleet_demand_free(&d);
    for (int i = 0; i < S_T_MANY; i++)
        s_t_member_free(&many[i]);
    free(many);
    /* a RayJob on an existing cluster is not placed by itself */
    fleet_demand_t existing = {.flags = FLEET_DEMAND_EXISTING_CLUSTER};
    CHECK(fleet_place(NULL, 0, &existing, NULL, &c) == -1 && strstr(c.reason, "clusterSelector"));
    /* a member built from Node and Pod objects (member.c): a 4-CPU node with a 3.5-CPU pod and a
     * cordoned 8-CPU node; a 1-CPU head fits, a 1-CPU worker more does not */
    fleet_member_t built;
    CHECK(fleet_member_init(&built, "built", NULL) == 0);
    const char *objs[] = {
        "{\"metadata\":{\"name\":\"n1\"},\"status\":{\"allocatable\":{\"cpu\":\"4\","
        "\"memory\":\"16Gi\",\"pods\":\"110\"},\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\"}]}}",
        "{\"metadata\":{\"name\":\"n2\"},\"spec\":{\"unschedulable\":true},\"status\":{"
        "\"allocatable\":{\"cpu\":\"8\",\"memory\":\"16Gi\",\"pods\":\"110\"},\"conditions\":"
        "[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
        "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":\"n1\",\"containers\":[{"
        "\"name\":\"c\",\"resources\":{\"requests\":{\"cpu\":\"2500m\"}}}]},\"status\":{"
        "\"phase\":\"Running\"}}"};
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_loads(objs[i], 0, NULL);
        CHECK(o && (i < 2 ? fleet_member_add_node(&built, o, NULL)
                          : fleet_member_add_pod(&built, o, NULL)) == 0);
        json_decref(o);
    }
    CHECK(fleet_member_finish(&built) == 1);
    CHECK(s_t_demand(&d, "w", 0, "1", 0, NULL) == 0);
    CHECK(fleet_fit(&built, &d, why, sizeof(why)));
    fleet_demand_free(&d);
    CHECK(s_t_demand(&d, "w", 1, "1", 0, NULL) == 0);
    CHECK(!fleet_fit(&built, &d, why, sizeof(why)));
    CHECK(strstr(why, "cpu short by 500m in total") == why);
    fleet_demand_free(&d);
    fleet_member_free(&built);
    fleet_strategy_t st;
    CHECK(fleet_strategy_parse("pack", &st) == 0 && st == FLEET_PACK);
    CHECK(fleet_strategy_parse("Spread", &st) == ERR_INVAL);
    return SELFTEST_RESULT("place", verbose);
}
#endif
