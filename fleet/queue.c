/*
 * queue: the tenants' admission state and decisions. See queue.h.
 */
#include "queue.h"

#include "err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A queue's place in fleet_queue_next()'s visit. */
typedef struct {
    double key; /* weighted dominant share before admission */
    size_t i; /* the queue */
} s_rank_t;

struct fleet_queues {
    fleet_queue_t *queues; /* nqueues, in the configuration's order */
    size_t nqueues;
    size_t ncohorts;
    char **cohort_names; /* ncohorts (owned) */
    fleet_res_t *cohort_quota; /* per cohort: the sum of its queues' nominal quotas */
    fleet_res_t *cohort_used; /* per cohort: the sum of its queues' use */
    fleet_res_t capacity; /* the fleet's total: the denominator of shares */
    json_t *index; /* key -> the workload's address (an integer) */
    size_t nworkloads;
    uint64_t seq; /* insertions */
    uint64_t admissions; /* admissions, the clock of "most recently admitted" */
    uint64_t epoch; /* grows whenever room may have grown (see fleet_queues_changed) */
    s_rank_t *rank; /* scratch: queues with waiting work by weighted share (nqueues) */
};

/* ---- workload lists -------------------------------------------------------------------------- */

/* True when a goes before b in a queue: higher priority, then earlier creation, then earlier
 * insertion. */
static bool s_before(const fleet_workload_t *a, const fleet_workload_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    if (a->order != b->order)
        return a->order < b->order;
    return a->seq < b->seq;
}

static int s_grow(fleet_workload_t ***list, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < want)
        n *= 2;
    fleet_workload_t **p = realloc(*list, n * sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    *list = p;
    *cap = n;
    return 0;
}

/* Inserts w into its queue's waiting list at its place (binary search). */
static int s_wait(fleet_queue_t *qu, fleet_workload_t *w)
{
    if (s_grow(&qu->waiting, &qu->capwaiting, qu->nwaiting + 1))
        return ERR_NOMEM;
    size_t lo = 0, hi = qu->nwaiting;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_before(qu->waiting[mid], w))
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&qu->waiting[lo + 1], &qu->waiting[lo], (qu->nwaiting - lo) * sizeof(*qu->waiting));
    qu->waiting[lo] = w;
    if (lo < qu->scan_pos)
        qu->scan_pos = lo; /* w is not judged yet */
    qu->nwaiting++;
    for (size_t i = lo; i < qu->nwaiting; i++)
        qu->waiting[i]->slot = i;
    w->state = FLEET_WL_WAITING;
    return 0;
}

static void s_unwait(fleet_queue_t *qu, fleet_workload_t *w)
{
    size_t i = w->slot;
    memmove(&qu->waiting[i], &qu->waiting[i + 1], (qu->nwaiting - i - 1) * sizeof(*qu->waiting));
    if (i < qu->scan_pos)
        qu->scan_pos--;
    qu->nwaiting--;
    for (; i < qu->nwaiting; i++)
        qu->waiting[i]->slot = i;
}

static void s_unadmit(fleet_queue_t *qu, fleet_workload_t *w)
{
    size_t i = w->slot;
    qu->admitted[i] = qu->admitted[--qu->nadmitted];
    qu->admitted[i]->slot = i;
}

/* ---- the set --------------------------------------------------------------------------------- */

int fleet_queues_new(const fedcfg_t *cfg, const fleet_res_t *capacity, fleet_queues_t **out)
{
    if (!out)
        return ERR_INVAL;
    *out = NULL;
    if (!cfg || cfg->nqueues == 0)
        return ERR_INVAL;
    fleet_queues_t *q = calloc(1, sizeof(*q));
    if (!q)
        return ERR_NOMEM;
    size_t n = cfg->nqueues;
    q->queues = calloc(n, sizeof(*q->queues));
    q->cohort_quota = calloc(n, sizeof(*q->cohort_quota));
    q->cohort_used = calloc(n, sizeof(*q->cohort_used));
    q->rank = calloc(n, sizeof(*q->rank));
    q->index = json_object();
    q->cohort_names = calloc(n, sizeof(*q->cohort_names));
    q->epoch = 1; /* queues start at scan_epoch 0: never judged */
    if (!q->queues || !q->cohort_quota || !q->cohort_used || !q->rank || !q->index ||
        !q->cohort_names)
        goto nomem;
    q->nqueues = n;
    for (size_t i = 0; i < n; i++) {
        const fedcfg_queue_t *c = &cfg->queues[i];
        fleet_queue_t *qu = &q->queues[i];
        if (!(qu->name = strdup(c->name)))
            goto nomem;
        qu->weight = c->weight > 0 ? c->weight : 1;
        qu->quota = c->quota;
        qu->borrowing_limit = c->borrowing_limit;
        qu->cohort = -1;
        qu->unlimited = !c->cohort;
        for (int r = 0; r < FLEET_RES_N; r++)
            qu->unlimited = qu->unlimited && qu->quota.v[r] == FEDCFG_UNLIMITED;
        if (!c->cohort)
            continue;
        size_t k = 0;
        while (k < q->ncohorts && strcmp(q->cohort_names[k], c->cohort) != 0)
            k++;
        if (k == q->ncohorts && !(q->cohort_names[q->ncohorts++] = strdup(c->cohort)))
            goto nomem;
        qu->cohort = (int)k;
        fleet_res_add(&q->cohort_quota[k], &qu->quota); /* saturates: unlimited stays so */
    }
    if (capacity)
        q->capacity = *capacity;
    *out = q;
    return 0;
nomem:
    fleet_queues_destroy(&q);
    return ERR_NOMEM;
}

void fleet_queues_destroy(fleet_queues_t **pq)
{
    if (!pq || !*pq)
        return;
    fleet_queues_t *q = *pq;
    for (size_t i = 0; q->queues && i < q->nqueues; i++) {
        fleet_queue_t *qu = &q->queues[i];
        for (size_t j = 0; j < qu->nwaiting; j++) {
            free(qu->waiting[j]->key);
            free(qu->waiting[j]);
        }
        for (size_t j = 0; j < qu->nadmitted; j++) {
            free(qu->admitted[j]->key);
            free(qu->admitted[j]);
        }
        free(qu->waiting);
        free(qu->admitted);
        free(qu->name);
    }
    free(q->queues);
    for (size_t i = 0; q->cohort_names && i < q->ncohorts; i++)
        free(q->cohort_names[i]);
    free(q->cohort_names);
    free(q->cohort_quota);
    free(q->cohort_used);
    free(q->rank);
    json_decref(q->index);
    free(q);
    *pq = NULL;
}

void fleet_queues_set_capacity(fleet_queues_t *q, const fleet_res_t *capacity)
{
    if (q && capacity) {
        q->capacity = *capacity;
        q->epoch++;
    }
}

void fleet_queues_changed(fleet_queues_t *q)
{
    if (q)
        q->epoch++;
}

size_t fleet_queues_count(const fleet_queues_t *q)
{
    return q ? q->nqueues : 0;
}

const fleet_queue_t *fleet_queues_get(const fleet_queues_t *q, size_t i)
{
    return q && i < q->nqueues ? &q->queues[i] : NULL;
}

double fleet_queue_share(const fleet_queues_t *q, size_t i)
{
    if (!q || i >= q->nqueues)
        return 0;
    return fleet_res_dominant_share(&q->queues[i].used, &q->capacity, NULL);
}

size_t fleet_queues_workloads(const fleet_queues_t *q)
{
    return q ? q->nworkloads : 0;
}

int fleet_queue_add(fleet_queues_t *q, const char *key, size_t queue, int32_t priority,
                    int64_t order, const fleet_res_t *need, fleet_workload_t **out)
{
    if (out)
        *out = NULL;
    if (!q || !key || !*key || !need || queue >= q->nqueues)
        return ERR_INVAL;
    for (int i = 0; i < FLEET_RES_N; i++) {
        if (need->v[i] < 0)
            return ERR_INVAL;
    }
    if (strlen(key) > FLEET_QUEUE_KEY_MAX || q->nworkloads >= FLEET_QUEUE_MAX_WORKLOADS)
        return ERR_TOOBIG;
    if (json_object_get(q->index, key))
        return ERR_EXISTS;
    fleet_workload_t *w = calloc(1, sizeof(*w));
    if (!w || !(w->key = strdup(key))) {
        free(w);
        return ERR_NOMEM;
    }
    w->queue = queue;
    w->priority = priority;
    w->order = order;
    w->need = *need;
    w->seq = ++q->seq;
    if (json_object_set_new(q->index, key, json_integer((json_int_t)(intptr_t)w)) ||
        s_wait(&q->queues[queue], w)) {
        json_object_del(q->index, key);
        free(w->key);
        free(w);
        return ERR_NOMEM;
    }
    q->nworkloads++;
    if (out)
        *out = w;
    return 0;
}

fleet_workload_t *fleet_queue_find(const fleet_queues_t *q, const char *key)
{
    json_t *v = q && key ? json_object_get(q->index, key) : NULL;
    return v ? (fleet_workload_t *)(intptr_t)json_integer_value(v) : NULL;
}

/* ---- quota ----------------------------------------------------------------------------------- */

/* Whether `need` more fits queue qi's quota given its use `used` and its cohort's `cused`. */
static bool s_quota_fits(const fleet_queues_t *q, size_t qi, const fleet_res_t *used,
                         const fleet_res_t *cused, const fleet_res_t *need)
{
    const fleet_queue_t *qu = &q->queues[qi];
    if (qu->unlimited)
        return true;
    fleet_res_t after = *used, limit = qu->quota;
    fleet_res_add(&after, need);
    if (qu->cohort >= 0)
        fleet_res_add(&limit, &qu->borrowing_limit);
    for (int r = 0; r < FLEET_RES_N; r++) {
        if (need->v[r] <= 0 || limit.v[r] == FEDCFG_UNLIMITED)
            continue;
        if (after.v[r] > limit.v[r])
            return false;
    }
    if (qu->cohort < 0)
        return true;
    fleet_res_t cafter = *cused;
    fleet_res_add(&cafter, need);
    const fleet_res_t *cq = &q->cohort_quota[qu->cohort];
    for (int r = 0; r < FLEET_RES_N; r++) {
        if (need->v[r] > 0 && cq->v[r] != FEDCFG_UNLIMITED && cafter.v[r] > cq->v[r])
            return false;
    }
    return true;
}

static const fleet_res_t s_zero;

bool fleet_queue_admissible(const fleet_queues_t *q, const fleet_workload_t *w)
{
    if (!q || !w || w->queue >= q->nqueues)
        return false;
    const fleet_queue_t *qu = &q->queues[w->queue];
    return s_quota_fits(q, w->queue, &qu->used,
                        qu->cohort >= 0 ? &q->cohort_used[qu->cohort] : &s_zero, &w->need);
}

/* ---- next ------------------------------------------------------------------------------------ */

/* The weighted dominant share of queue qu, with w's need added when w is not NULL. */
static double s_key(const fleet_queues_t *q, const fleet_queue_t *qu, const fleet_workload_t *w)
{
    fleet_res_t with = qu->used;
    if (w)
        fleet_res_add(&with, &w->need);
    return fleet_res_dominant_share(&with, &q->capacity, NULL) / qu->weight;
}

/* Lower weighted share first; ties in the configuration's order. */
static int s_cmp_rank(const void *pa, const void *pb)
{
    const s_rank_t *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

fleet_workload_t *fleet_queue_next(fleet_queues_t *q, fleet_fits_fn fits, void *arg)
{
    if (!q)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < q->nqueues; i++) {
        if (q->queues[i].nwaiting > 0) {
            q->rank[n].key = s_key(q, &q->queues[i], NULL);
            q->rank[n++].i = i;
        }
    }
    qsort(q->rank, n, sizeof(*q->rank), s_cmp_rank);
    fleet_workload_t *best = NULL;
    double best_key = 0;
    for (size_t k = 0; k < n; k++) {
        if (best && q->rank[k].key >= best_key)
            break; /* the key with a workload is never below the key without */
        fleet_queue_t *qu = &q->queues[q->rank[k].i];
        size_t j = qu->scan_epoch == q->epoch ? qu->scan_pos : 0;
        for (; j < qu->nwaiting; j++) {
            fleet_workload_t *w = qu->waiting[j];
            if (fleet_queue_admissible(q, w) && (!fits || fits(arg, w))) {
                double key = s_key(q, qu, w);
                if (!best || key < best_key) {
                    best = w;
                    best_key = key;
                }
                break;
            }
        }
        qu->scan_epoch = q->epoch; /* waiting[0..j) cannot be admitted until room grows */
        qu->scan_pos = j;
    }
    return best;
}

/* ---- admit, evict, finish -------------------------------------------------------------------- */

/* Adds (sign 1) or takes away (-1) w's need to its queue's and cohort's use. */
static void s_use(fleet_queues_t *q, const fleet_workload_t *w, int sign)
{
    fleet_queue_t *qu = &q->queues[w->queue];
    fleet_res_t *cu = qu->cohort >= 0 ? &q->cohort_used[qu->cohort] : NULL;
    if (sign > 0) {
        fleet_res_add(&qu->used, &w->need);
        if (cu)
            fleet_res_add(cu, &w->need);
    } else {
        fleet_res_sub(&qu->used, &w->need);
        if (cu)
            fleet_res_sub(cu, &w->need);
    }
}

int fleet_queue_admit(fleet_queues_t *q, fleet_workload_t *w)
{
    if (!q || !w || w->queue >= q->nqueues || w->state != FLEET_WL_WAITING)
        return ERR_STATE;
    if (!fleet_queue_admissible(q, w))
        return ERR_RANGE;
    fleet_queue_t *qu = &q->queues[w->queue];
    if (s_grow(&qu->admitted, &qu->capadmitted, qu->nadmitted + 1))
        return ERR_NOMEM;
    s_unwait(qu, w);
    w->slot = qu->nadmitted;
    qu->admitted[qu->nadmitted++] = w;
    w->state = FLEET_WL_ADMITTED;
    w->admitted_at = ++q->admissions;
    s_use(q, w, 1);
    return 0;
}

int fleet_queue_evict(fleet_queues_t *q, fleet_workload_t *w)
{
    if (!q || !w || w->queue >= q->nqueues || w->state != FLEET_WL_ADMITTED)
        return ERR_STATE;
    fleet_queue_t *qu = &q->queues[w->queue];
    if (s_grow(&qu->waiting, &qu->capwaiting, qu->nwaiting + 1))
        return ERR_NOMEM;
    s_unadmit(qu, w);
    s_use(q, w, -1);
    q->epoch++;
    w->evictions++;
    return s_wait(qu, w); /* cannot fail: room was made above */
}

int fleet_queue_finish(fleet_queues_t *q, fleet_workload_t *w)
{
    if (!q || !w || w->queue >= q->nqueues || fleet_queue_find(q, w->key) != w)
        return ERR_INVAL;
    fleet_queue_t *qu = &q->queues[w->queue];
    if (w->state == FLEET_WL_ADMITTED) {
        s_unadmit(qu, w);
        s_use(q, w, -1);
        q->epoch++;
    } else {
        s_unwait(qu, w);
    }
    json_object_del(q->index, w->key);
    q->nworkloads--;
    free(w->key);
    free(w);
    return 0;
}

/* ---- preemption ------------------------------------------------------------------------------ */

/* Preemption's scratch: the candidates and, per queue and cohort, the use as if the chosen
 * victims were gone. */
typedef struct {
    fleet_queues_t *q;
    const fleet_workload_t *w; /* the preemptor */
    size_t wq; /* its queue */
    fleet_workload_t **cand; /* candidates, in order */
    size_t ncand;
} s_pre_t;

/* Kueue's CandidatesOrdering within one part (other queues', then the preemptor's own): lower
 * priority first, most recent admission first. */
static int s_cmp_cand(const void *pa, const void *pb)
{
    const fleet_workload_t *a = *(fleet_workload_t *const *)pa;
    const fleet_workload_t *b = *(fleet_workload_t *const *)pb;
    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if (a->admitted_at != b->admitted_at)
        return a->admitted_at > b->admitted_at ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* Whether the queue uses more than its nominal quota in a dimension `need` asks for. */
static bool s_borrows(const fleet_queue_t *qu, const fleet_res_t *need)
{
    for (int r = 0; r < FLEET_RES_N; r++) {
        if (need->v[r] > 0 && qu->quota.v[r] != FEDCFG_UNLIMITED && qu->used.v[r] > qu->quota.v[r])
            return true;
    }
    return false;
}

/* Whether the preemptor fits once `set[0..n)` (and only those) are gone. */
static bool s_fits_without(const s_pre_t *p, fleet_workload_t *const *set, size_t n,
                           fleet_fits_after_fn fits_after, void *arg)
{
    const fleet_queue_t *qu = &p->q->queues[p->wq];
    fleet_res_t used = qu->used;
    fleet_res_t cused = qu->cohort >= 0 ? p->q->cohort_used[qu->cohort] : s_zero;
    for (size_t i = 0; i < n; i++) {
        const fleet_queue_t *vq = &p->q->queues[set[i]->queue];
        if (set[i]->queue == p->wq)
            fleet_res_sub(&used, &set[i]->need);
        if (qu->cohort >= 0 && vq->cohort == qu->cohort)
            fleet_res_sub(&cused, &set[i]->need);
    }
    if (!s_quota_fits(p->q, p->wq, &used, &cused, &p->w->need))
        return false;
    return !fits_after || fits_after(arg, p->w, set, n);
}

int fleet_queue_preempt(fleet_queues_t *q, const fleet_workload_t *w,
                        fleet_fits_after_fn fits_after, void *arg, fleet_workload_t **victims,
                        size_t max, size_t *n)
{
    if (n)
        *n = 0;
    if (!q || !w || !n || w->queue >= q->nqueues || w->state != FLEET_WL_WAITING)
        return ERR_STATE;
    s_pre_t p = {.q = q, .w = w, .wq = w->queue};
    if (s_fits_without(&p, NULL, 0, fits_after, arg))
        return 0;
    const fleet_queue_t *own = &q->queues[w->queue];
    /* other queues' borrowers only while the preemptor's queue stays within its nominal quota */
    fleet_res_t after = own->used;
    fleet_res_add(&after, &w->need);
    bool within = fleet_res_fits(&after, &own->quota);
    size_t total = own->nadmitted;
    for (size_t i = 0; within && own->cohort >= 0 && i < q->nqueues; i++) {
        if (i != w->queue && q->queues[i].cohort == own->cohort)
            total += q->queues[i].nadmitted;
    }
    p.cand = calloc(total ? total : 1, sizeof(*p.cand));
    if (!p.cand)
        return ERR_NOMEM;
    /* other queues' candidates first (Kueue's CandidatesOrdering), then the own queue's */
    for (size_t i = 0; i < q->nqueues; i++) {
        const fleet_queue_t *qu = &q->queues[i];
        if (i == w->queue || !within || own->cohort < 0 || qu->cohort != own->cohort ||
            !s_borrows(qu, &w->need))
            continue;
        for (size_t j = 0; j < qu->nadmitted; j++) {
            if (qu->admitted[j]->priority < w->priority)
                p.cand[p.ncand++] = qu->admitted[j];
        }
    }
    size_t nother = p.ncand;
    for (size_t j = 0; j < own->nadmitted; j++) {
        if (own->admitted[j]->priority < w->priority)
            p.cand[p.ncand++] = own->admitted[j];
    }
    qsort(p.cand, nother, sizeof(*p.cand), s_cmp_cand);
    qsort(p.cand + nother, p.ncand - nother, sizeof(*p.cand), s_cmp_cand);
    /* greedily, in order, until it fits */
    size_t k = 0;
    bool ok = false;
    while (k < p.ncand && !ok) {
        k++;
        ok = s_fits_without(&p, p.cand, k, fits_after, arg);
    }
    if (!ok) {
        free(p.cand);
        return ERR_NOTFOUND;
    }
    /* give back every victim not needed, from the one chosen last but one down to the first */
    for (size_t i = k - 1; i-- > 0;) {
        fleet_workload_t *v = p.cand[i];
        memmove(&p.cand[i], &p.cand[i + 1], (k - i - 1) * sizeof(*p.cand));
        if (s_fits_without(&p, p.cand, k - 1, fits_after, arg)) {
            k--;
            continue;
        }
        memmove(&p.cand[i + 1], &p.cand[i], (k - i - 1) * sizeof(*p.cand));
        p.cand[i] = v;
    }
    int rc = 0;
    if (k > max) {
        rc = ERR_TOOBIG;
    } else {
        memcpy(victims, p.cand, k * sizeof(*victims));
        *n = k;
    }
    free(p.cand);
    return rc;
}

/* ---- invariants ------------------------------------------------------------------------------ */

int fleet_queues_check(const fleet_queues_t *q, buf_t *err)
{
    if (!q)
        return ERR_INVAL;
    fleet_res_t *csum = calloc(q->nqueues, sizeof(*csum));
    if (!csum)
        return ERR_NOMEM;
    int rc = 0;
    size_t held = 0;
    for (size_t i = 0; !rc && i < q->nqueues; i++) {
        const fleet_queue_t *qu = &q->queues[i];
        fleet_res_t sum = s_zero, limit = qu->quota;
        for (size_t j = 0; j < qu->nadmitted; j++)
            fleet_res_add(&sum, &qu->admitted[j]->need);
        held += qu->nadmitted + qu->nwaiting;
        if (qu->cohort >= 0) {
            fleet_res_add(&limit, &qu->borrowing_limit);
            fleet_res_add(&csum[qu->cohort], &sum);
        }
        char a[128], b[128];
        if (memcmp(&sum, &qu->used, sizeof(sum)) != 0) {
            fleet_res_format(&qu->used, a, sizeof a);
            fleet_res_format(&sum, b, sizeof b);
            (void)buf_printf(err, "queue %s: use %s is not the sum of its admitted needs %s",
                             qu->name, a, b);
            rc = ERR_STATE;
        } else if (!fleet_res_fits(&qu->used, &limit)) {
            fleet_res_format(&qu->used, a, sizeof a);
            fleet_res_format(&limit, b, sizeof b);
            (void)buf_printf(err, "queue %s: use %s exceeds its quota%s %s", qu->name, a,
                             qu->cohort >= 0 ? " and borrowing limit" : "", b);
            rc = ERR_STATE;
        }
    }
    for (size_t c = 0; !rc && c < q->ncohorts; c++) {
        char a[128], b[128];
        if (memcmp(&csum[c], &q->cohort_used[c], sizeof(csum[c])) != 0 ||
            !fleet_res_fits(&csum[c], &q->cohort_quota[c])) {
            fleet_res_format(&csum[c], a, sizeof a);
            fleet_res_format(&q->cohort_quota[c], b, sizeof b);
            (void)buf_printf(err, "cohort %s: use %s is not its queues' or exceeds its quota %s",
                             q->cohort_names[c], a, b);
            rc = ERR_STATE;
        }
    }
    if (!rc && held != q->nworkloads) {
        (void)buf_printf(err, "%zu workloads in the queues, %zu held", held, q->nworkloads);
        rc = ERR_STATE;
    }
    free(csum);
    return rc;
}

#ifdef RF_SELFTEST
#include "selftest.h"

#include <math.h>

/* Queues from a `federation:` document's queues (YAML flow text). */
static fleet_queues_t *s_new(const char *queues, const fleet_res_t *cap)
{
    char doc[4096];
    (void)snprintf(doc, sizeof doc,
                   "federation:\n  management: {name: mg}\n  members: [{name: m}]\n"
                   "  queues: %s\n",
                   queues);
    json_t *docs = NULL;
    buf_t err;
    buf_init(&err, 4096);
    fedcfg_t cfg;
    fleet_queues_t *q = NULL;
    if (yaml_load_buf(doc, strlen(doc), "t", &docs, &err) == 0 &&
        fedcfg_parse(json_object_get(json_array_get(docs, 0), "federation"), NULL, NULL, &cfg,
                     &err) == 0)
        (void)fleet_queues_new(&cfg, cap, &q);
    if (!q)
        printf("queue: cannot build %s: %s\n", queues, buf_str(&err));
    fedcfg_free(&cfg);
    json_decref(docs);
    buf_free(&err);
    return q;
}

static fleet_res_t s_cpu(int64_t cores)
{
    fleet_res_t r = {{cores * 1000, 0, 0, 0}};
    return r;
}

/* Checks the invariants; prints a violation. */
static int s_ok(const fleet_queues_t *q)
{
    buf_t err;
    buf_init(&err, 4096);
    int rc = fleet_queues_check(q, &err);
    if (rc)
        printf("queue: invariant: %s\n", buf_str(&err));
    buf_free(&err);
    return rc == 0;
}

static fleet_workload_t *s_add(fleet_queues_t *q, const char *key, size_t qi, int32_t prio,
                               int64_t order, int64_t cores)
{
    fleet_res_t need = s_cpu(cores);
    fleet_workload_t *w = NULL;
    (void)fleet_queue_add(q, key, qi, prio, order, &need, &w);
    return w;
}

/* A fits callback: the workload needs at most *arg cores. */
static bool s_fits_small(void *arg, const fleet_workload_t *w)
{
    return w->need.v[FLEET_RES_CPU] <= *(int64_t *)arg * 1000;
}

/* ---- the simulation ---------------------------------------------------------------------- */

#define S_SIM_QUEUES 3
#define S_SIM_JOBS 9000
#define S_SIM_WINDOWS 10

typedef struct {
    fleet_queues_t *q;
    fleet_res_t free; /* the fleet's room */
    fleet_workload_t *run[S_SIM_JOBS + 8]; /* admitted */
    double end[S_SIM_JOBS + 8]; /* their end times */
    size_t nrun;
    int64_t dur[S_SIM_JOBS + 8]; /* per job index (the key's number) */
    uint64_t rng;
} s_sim_t;

static uint64_t s_rand(s_sim_t *s, uint64_t n)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng % n;
}

static bool s_sim_fits(void *arg, const fleet_workload_t *w)
{
    return fleet_res_fits(&w->need, &((s_sim_t *)arg)->free);
}

static bool s_sim_fits_after(void *arg, const fleet_workload_t *w, fleet_workload_t *const *v,
                             size_t n)
{
    fleet_res_t room = ((s_sim_t *)arg)->free;
    for (size_t i = 0; i < n; i++)
        fleet_res_add(&room, &v[i]->need);
    return fleet_res_fits(&w->need, &room);
}

static size_t s_job(const fleet_workload_t *w)
{
    return (size_t)strtoul(w->key + 4, NULL, 10);
}

static void s_sim_start(s_sim_t *s, fleet_workload_t *w, double now)
{
    fleet_res_sub(&s->free, &w->need);
    s->run[s->nrun] = w;
    s->end[s->nrun++] = now + (double)s->dur[s_job(w)];
}

static void s_sim_stop(s_sim_t *s, size_t i)
{
    fleet_res_add(&s->free, &s->run[i]->need);
    s->run[i] = s->run[--s->nrun];
    s->end[i] = s->end[s->nrun];
}

/* Adds `n` jobs round-robin over the first `nq` queues: 1-16 cores, 1-64 GiB, 1-4 pods, 10-200
 * time units. */
static void s_sim_jobs(s_sim_t *s, size_t nq, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char key[32];
        (void)snprintf(key, sizeof key, "job-%zu", i);
        fleet_res_t need = {{(int64_t)(1 + s_rand(s, 16)) * 1000,
                             (int64_t)(1 + s_rand(s, 64)) << 30, 0, (int64_t)(1 + s_rand(s, 4))}};
        s->dur[i] = 10 + (int64_t)s_rand(s, 191);
        (void)fleet_queue_add(s->q, key, i % nq, 0, (int64_t)i, &need, NULL);
    }
}

/* Admits what fits; for each queue's head that does not, tries preemption. Returns failures. */
static int s_sim_admit(s_sim_t *s, double now, size_t *preemptions)
{
    int failed = 0;
    for (size_t i = 0; i < fleet_queues_count(s->q); i++) {
        const fleet_queue_t *qu = fleet_queues_get(s->q, i);
        if (qu->nwaiting == 0)
            continue;
        fleet_workload_t *h = qu->waiting[0];
        if (h->priority <= 0 || (fleet_queue_admissible(s->q, h) && s_sim_fits(s, h)))
            continue;
        fleet_workload_t *v[64];
        size_t n = 0;
        if (fleet_queue_preempt(s->q, h, s_sim_fits_after, s, v, 64, &n) != 0)
            continue;
        for (size_t k = 0; k < n; k++) {
            CHECK(v[k]->priority < h->priority);
            for (size_t r = 0; r < s->nrun; r++) {
                if (s->run[r] == v[k]) {
                    s_sim_stop(s, r);
                    break;
                }
            }
            CHECK(fleet_queue_evict(s->q, v[k]) == 0);
            (*preemptions)++;
        }
        CHECK(fleet_queue_admissible(s->q, h) && s_sim_fits(s, h));
        CHECK(fleet_queue_admit(s->q, h) == 0);
        s_sim_start(s, h, now);
    }
    fleet_workload_t *w;
    while ((w = fleet_queue_next(s->q, s_sim_fits, s))) {
        CHECK(fleet_queue_admit(s->q, w) == 0);
        s_sim_start(s, w, now);
    }
    return failed;
}

/* Advances to the next end; finishes what ends then. Returns the new time (now when idle). */
static double s_sim_step(s_sim_t *s, double now)
{
    if (s->nrun == 0)
        return now;
    double t = s->end[0];
    for (size_t i = 1; i < s->nrun; i++)
        t = s->end[i] < t ? s->end[i] : t;
    for (size_t i = 0; i < s->nrun;) {
        if (s->end[i] <= t) {
            fleet_workload_t *w = s->run[i];
            s_sim_stop(s, i);
            (void)fleet_queue_finish(s->q, w);
        } else {
            i++;
        }
    }
    return t;
}

/* Fair share: three queues 1:2:3, a backlog larger than the fleet, a high-priority job that
 * preempts. Prints the measured shares; returns failures. */
static int s_sim_fair(bool verbose, buf_t *report)
{
    int failed = 0;
    static s_sim_t s;
    memset(&s, 0, sizeof s);
    s.rng = 0x9e3779b97f4a7c15ULL;
    fleet_res_t cap = {{256000, 1024LL << 30, 0, 1000}};
    s.free = cap;
    s.q = s_new("[{name: a, weight: 1, quota: {cpu: 200, memory: 800Gi}},"
                " {name: b, weight: 2, quota: {cpu: 200, memory: 800Gi}},"
                " {name: c, weight: 3, quota: {cpu: 200, memory: 800Gi}}]",
                &cap);
    if (!s.q)
        return 1;
    s_sim_jobs(&s, S_SIM_QUEUES, S_SIM_JOBS);
    double now = 0, area[S_SIM_QUEUES] = {0}, warea[S_SIM_WINDOWS][S_SIM_QUEUES] = {{0}};
    double measured = -1, hp_at = 2000;
    size_t preemptions = 0, steps = 0;
    fleet_workload_t *hp = NULL, *victim = NULL; /* looked up by key: finished ones are freed */
    char victim_key[32] = "";
    bool victim_resumed = false, victim_done = false, hp_ran = false;
    for (;;) {
        hp = fleet_queue_find(s.q, "job-9000");
        if (!hp && !hp_ran && now >= hp_at) {
            fleet_res_t need = {{96000, 256LL << 30, 0, 8}};
            s.dur[S_SIM_JOBS] = 100;
            CHECK(fleet_queue_add(s.q, "job-9000", 0, 1000, 0, &need, &hp) == 0);
        }
        size_t before = preemptions;
        failed += s_sim_admit(&s, now, &preemptions);
        if (preemptions > before && !victim_key[0]) {
            /* remember one victim (a waiting, evicted workload of queue a) */
            const fleet_queue_t *qa = fleet_queues_get(s.q, 0);
            for (size_t i = 0; i < qa->nwaiting && !victim_key[0]; i++)
                if (qa->waiting[i]->evictions > 0)
                    (void)snprintf(victim_key, sizeof victim_key, "%s", qa->waiting[i]->key);
        }
        hp = fleet_queue_find(s.q, "job-9000");
        if (hp && hp->state == FLEET_WL_ADMITTED)
            hp_ran = true;
        victim = victim_key[0] ? fleet_queue_find(s.q, victim_key) : NULL;
        if (victim && victim->state == FLEET_WL_ADMITTED)
            victim_resumed = true;
        if (victim_resumed && !victim)
            victim_done = true;
        CHECK(s_ok(s.q));
        for (int r = 0; r < FLEET_RES_N; r++)
            CHECK(s.free.v[r] >= 0); /* the fleet never over its capacity */
        bool backlog = true;
        for (size_t i = 0; i < S_SIM_QUEUES; i++)
            backlog = backlog && fleet_queues_get(s.q, i)->nwaiting > 0;
        if (!backlog && measured < 0)
            measured = now; /* the first queue ran dry: the fair-share window ends */
        if (s.nrun == 0 || steps++ > 10 * S_SIM_JOBS)
            break;
        double t = s_sim_step(&s, now);
        if (measured < 0) {
            size_t wi = (size_t)(now / 1000.0);
            for (size_t i = 0; i < S_SIM_QUEUES; i++) {
                double sh = fleet_queue_share(s.q, i) * (t - now);
                area[i] += sh;
                if (wi < S_SIM_WINDOWS)
                    warea[wi][i] += sh;
            }
        }
        now = t;
    }
    CHECK(measured > (double)S_SIM_WINDOWS * 1000.0); /* the windows are inside the backlog */
    double sum = area[0] + area[1] + area[2], worst = 0;
    (void)buf_printf(report,
                     "fair share (weights 1:2:3, %d jobs, fleet 256 CPU / 1 TiB, backlog "
                     "until t=%.0f):\n",
                     S_SIM_JOBS, measured);
    for (size_t i = 0; i < S_SIM_QUEUES; i++) {
        double want = (double)(i + 1) / 6.0, got = area[i] / sum;
        double dev = fabs(got - want) / want;
        worst = dev > worst ? dev : worst;
        CHECK(dev <= 0.05);
        (void)buf_printf(report,
                         "  queue %c: weight %zu, want %.4f, measured %.4f (%.2f%% off), "
                         "time-averaged dominant share %.4f\n",
                         'a' + (int)i, i + 1, want, got, dev * 100, area[i] / measured);
    }
    double wworst = 0;
    for (size_t k = 0; k < S_SIM_WINDOWS; k++) {
        double ws = warea[k][0] + warea[k][1] + warea[k][2];
        for (size_t i = 0; ws > 0 && i < S_SIM_QUEUES; i++) {
            double want = (double)(i + 1) / 6.0, dev = fabs(warea[k][i] / ws - want) / want;
            wworst = dev > wworst ? dev : wworst;
        }
    }
    CHECK(wworst <= 0.05);
    (void)buf_printf(report,
                     "  worst queue off its weight: %.2f%% over the run, %.2f%% in any of %d "
                     "windows of 1000 time units\n",
                     worst * 100, wworst * 100, S_SIM_WINDOWS);
    (void)buf_printf(
        report,
        "  high-priority job (96 CPU, 256 GiB, priority 1000) at t=%.0f: admitted "
        "%s, %zu preemption(s), the preempted job %s resumed: %s, ran to its end: %s\n",
        hp_at, hp_ran ? "yes" : "no", preemptions, victim_key, victim_resumed ? "yes" : "no",
        victim_done ? "yes" : "no");
    CHECK(hp_ran && preemptions > 0 && victim_resumed && victim_done);
    CHECK(fleet_queues_workloads(s.q) == 0); /* everything ran to the end */
    if (verbose)
        fputs(buf_str(report), stdout);
    fleet_queues_destroy(&s.q);
    return failed;
}

/* Cohort borrowing under tight quotas: the quotas hold at every step and borrowing happens. */
static int s_sim_cohort(bool verbose, buf_t *report)
{
    int failed = 0;
    static s_sim_t s;
    memset(&s, 0, sizeof s);
    s.rng = 0x2545f4914f6cdd1dULL;
    fleet_res_t cap = {{256000, 1024LL << 30, 0, 1000}};
    s.free = cap;
    s.q = s_new("[{name: a, cohort: r, quota: {cpu: 64}, borrowingLimit: {cpu: 32}},"
                " {name: b, cohort: r, weight: 2, quota: {cpu: 64, memory: 300Gi}},"
                " {name: c, quota: {cpu: 48}}]",
                &cap);
    if (!s.q)
        return 1;
    s_sim_jobs(&s, 3, 3000);
    double now = 0;
    size_t steps = 0, pre = 0;
    int64_t peak[3] = {0};
    bool borrowed = false;
    for (;;) {
        failed += s_sim_admit(&s, now, &pre);
        if (!s_ok(s.q)) {
            failed++;
            break;
        }
        for (size_t i = 0; i < 3; i++) {
            const fleet_queue_t *qu = fleet_queues_get(s.q, i);
            int64_t u = qu->used.v[FLEET_RES_CPU];
            peak[i] = u > peak[i] ? u : peak[i];
            borrowed = borrowed || u > qu->quota.v[FLEET_RES_CPU];
        }
        if (s.nrun == 0 || steps++ > 100000)
            break;
        now = s_sim_step(&s, now);
    }
    CHECK(borrowed && fleet_queues_workloads(s.q) == 0);
    CHECK(peak[0] <= 96000 && peak[1] <= 128000 && peak[2] <= 48000);
    (void)buf_printf(report,
                     "cohort: a (quota 64 CPU, borrowingLimit 32) and b (quota 64) in cohort r, c "
                     "(quota 48) alone, 3000 jobs: peak use a %.0f, b %.0f, c %.0f CPU; "
                     "quotas held at all %zu steps\n",
                     (double)peak[0] / 1000, (double)peak[1] / 1000, (double)peak[2] / 1000, steps);
    if (verbose)
        fputs(buf_str(report), stdout);
    fleet_queues_destroy(&s.q);
    return failed;
}

int queue_test(bool verbose)
{
    int failed = 0;
    fleet_res_t cap = s_cpu(100);
    /* DRF: the lowest share / weight first; ties in the configuration's order */
    fleet_queues_t *q = s_new("[{name: a, weight: 1}, {name: b, weight: 2}]", &cap);
    CHECK(q && fleet_queues_count(q) == 3); /* a, b and the implicit default */
    fleet_workload_t *a1 = s_add(q, "a1", 0, 0, 1, 10), *b1 = s_add(q, "b1", 1, 0, 2, 15);
    fleet_workload_t *a2 = s_add(q, "a2", 0, 0, 3, 1), *b2 = s_add(q, "b2", 1, 0, 4, 1);
    CHECK(a1 && b1 && a2 && b2);
    CHECK(fleet_queue_next(q, NULL, NULL) == b1); /* with its candidate b 0.15/2 < a 0.10/1 */
    CHECK(fleet_queue_admit(q, b1) == 0 && s_ok(q));
    CHECK(fleet_queue_next(q, NULL, NULL) == b2); /* b 0.16/2 < a 0.10/1 */
    CHECK(fleet_queue_admit(q, b2) == 0 && s_ok(q));
    CHECK(fleet_queue_share(q, 1) == 0.16);
    CHECK(fleet_queue_next(q, NULL, NULL) == a1); /* b has nothing waiting */
    fleet_workload_t *b3 = s_add(q, "b3", 1, 0, 5, 1);
    CHECK(fleet_queue_next(q, NULL, NULL) == b3); /* b 0.17/2 < a 0.10/1 */
    CHECK(fleet_queue_admit(q, a1) == 0 && s_ok(q));
    CHECK(fleet_queue_admit(q, b1) == ERR_STATE); /* already admitted */
    CHECK(fleet_queue_add(q, "a1", 0, 0, 9, &cap, NULL) == ERR_EXISTS);
    CHECK(fleet_queue_add(q, "zz", 7, 0, 9, &cap, NULL) == ERR_INVAL);
    CHECK(fleet_queue_find(q, "b2") == b2 && !fleet_queue_find(q, "nope"));
    CHECK(fleet_queue_finish(q, a1) == 0 && s_ok(q) && fleet_queues_get(q, 0)->used.v[0] == 0);
    CHECK(!fleet_queue_find(q, "a1") && fleet_queues_workloads(q) == 4);
    CHECK(fleet_queue_next(q, NULL, NULL) == a2); /* a 0.01/1 < b 0.17/2 */
    fleet_queues_destroy(&q);
    CHECK(!q);

    /* within a queue: priority, then creation order (FIFO), then insertion */
    q = s_new("[{name: a}]", &cap);
    fleet_workload_t *p1 = s_add(q, "p1", 0, 0, 5, 1), *p2 = s_add(q, "p2", 0, 10, 9, 1);
    fleet_workload_t *p3 = s_add(q, "p3", 0, 0, 1, 1), *p4 = s_add(q, "p4", 0, 0, 5, 1);
    fleet_workload_t *want[] = {p2, p3, p1, p4};
    for (size_t i = 0; i < 4; i++) {
        fleet_workload_t *w = fleet_queue_next(q, NULL, NULL);
        CHECK(w == want[i]);
        CHECK(w && fleet_queue_admit(q, w) == 0 && s_ok(q));
    }
    CHECK(!fleet_queue_next(q, NULL, NULL));
    fleet_queues_destroy(&q);

    /* quota: never exceeded; BestEffortFIFO: a workload over quota does not block the ones behind
     * it nor other queues; the fits callback is asked */
    q = s_new("[{name: a, quota: {cpu: 10}}, {name: b, weight: 0.5}]", &cap);
    fleet_workload_t *q1 = s_add(q, "q1", 0, 0, 1, 8), *q2 = s_add(q, "q2", 0, 0, 2, 4);
    fleet_workload_t *q3 = s_add(q, "q3", 0, 0, 3, 2), *r1 = s_add(q, "r1", 1, 0, 4, 3);
    CHECK(fleet_queue_admit(q, q1) == 0);
    CHECK(!fleet_queue_admissible(q, q2) && fleet_queue_admit(q, q2) == ERR_RANGE && s_ok(q));
    CHECK(q2->state == FLEET_WL_WAITING);
    CHECK(fleet_queue_next(q, NULL, NULL) == r1); /* b 0.03/0.5 < a (0.08 + q3's 0.02)/1 */
    int64_t small = 2;
    CHECK(fleet_queue_next(q, s_fits_small, &small) == q3); /* r1 does not fit; a's head over
                                                               quota; q3 behind it does */
    CHECK(fleet_queue_admit(q, q3) == 0 && s_ok(q));
    CHECK(fleet_queues_get(q, 0)->used.v[FLEET_RES_CPU] == 10000);
    small = 1;
    CHECK(!fleet_queue_next(q, s_fits_small, &small));
    /* what was judged is not judged again until room grows: fits turning yes by itself is not
     * seen until fleet_queues_changed() (or a finish, an eviction, a new capacity) */
    small = 50;
    CHECK(!fleet_queue_next(q, s_fits_small, &small));
    fleet_queues_changed(q);
    CHECK(fleet_queue_next(q, s_fits_small, &small) == r1);
    fleet_queues_destroy(&q);

    /* cohort borrowing: within quota + borrowingLimit and the cohort's unused quota */
    q = s_new("[{name: a, cohort: r, quota: {cpu: 10}, borrowingLimit: {cpu: 5}},"
              " {name: b, cohort: r, quota: {cpu: 10}}, {name: c, quota: {cpu: 10}}]",
              &cap);
    fleet_workload_t *c1 = s_add(q, "c1", 0, 0, 1, 10), *c2 = s_add(q, "c2", 0, 0, 2, 6);
    fleet_workload_t *c3 = s_add(q, "c3", 0, 0, 3, 4), *d1 = s_add(q, "d1", 1, 0, 4, 8);
    fleet_workload_t *e1 = s_add(q, "e1", 2, 0, 5, 10), *e2 = s_add(q, "e2", 2, 0, 6, 1);
    CHECK(fleet_queue_admit(q, c1) == 0);
    CHECK(!fleet_queue_admissible(q, c2)); /* borrowing 6 > limit 5 */
    CHECK(fleet_queue_admissible(q, c3) && fleet_queue_admit(q, c3) == 0 && s_ok(q)); /* 4 */
    CHECK(!fleet_queue_admissible(q, d1)); /* b within its quota, but a borrowed: 14 + 8 > 20 */
    CHECK(fleet_queue_admit(q, e1) == 0 && !fleet_queue_admissible(q, e2)); /* no cohort */
    /* b reclaims: a's borrowing workloads are candidates only when of lower priority */
    fleet_workload_t *v[8];
    size_t nv = 9;
    CHECK(fleet_queue_preempt(q, d1, NULL, NULL, v, 8, &nv) == ERR_NOTFOUND && nv == 0);
    fleet_workload_t *d2 = s_add(q, "d2", 1, 100, 7, 8);
    CHECK(fleet_queue_preempt(q, d2, NULL, NULL, v, 8, &nv) == 0 && nv == 1 && v[0] == c3);
    CHECK(fleet_queue_evict(q, c3) == 0 && s_ok(q) && c3->state == FLEET_WL_WAITING);
    CHECK(c3->evictions == 1 && fleet_queue_admit(q, d2) == 0 && s_ok(q));
    CHECK(fleet_queue_evict(q, c3) == ERR_STATE);
    /* no preemption to borrow: d3 would take b over its quota, a's borrowers are not candidates */
    fleet_workload_t *d3 = s_add(q, "d3", 1, 100, 8, 4);
    CHECK(fleet_queue_preempt(q, d3, NULL, NULL, v, 8, &nv) == ERR_NOTFOUND);
    /* c's queue is in no cohort: nothing of a or b is a candidate */
    fleet_workload_t *e3 = s_add(q, "e3", 2, 100, 9, 1);
    CHECK(fleet_queue_preempt(q, e3, NULL, NULL, v, 8, &nv) == 0 && nv == 1 && v[0] == e1);
    CHECK(fleet_queue_preempt(q, e3, NULL, NULL, v, 0, &nv) == ERR_TOOBIG);
    CHECK(fleet_queue_preempt(q, e1, NULL, NULL, v, 8, &nv) == ERR_STATE); /* admitted */
    fleet_queues_destroy(&q);

    /* within a queue: lowest priority first, newest first, and only those needed */
    q = s_new("[{name: a, quota: {cpu: 10}}]", &cap);
    fleet_workload_t *x = s_add(q, "x", 0, 0, 1, 4), *y = s_add(q, "y", 0, 0, 2, 4);
    fleet_workload_t *z = s_add(q, "z", 0, -5, 3, 2);
    CHECK(fleet_queue_admit(q, x) == 0 && fleet_queue_admit(q, y) == 0);
    CHECK(fleet_queue_admit(q, z) == 0 && s_ok(q));
    fleet_workload_t *hp = s_add(q, "hp", 0, 10, 9, 4), *eq = s_add(q, "eq", 0, 0, 5, 2);
    CHECK(fleet_queue_preempt(q, hp, NULL, NULL, v, 8, &nv) == 0);
    CHECK(nv == 1 && v[0] == y); /* z then y taken; z given back: y alone makes room */
    CHECK(fleet_queue_preempt(q, eq, NULL, NULL, v, 8, &nv) == 0 && nv == 1 && v[0] == z);
    fleet_workload_t *big = s_add(q, "big", 0, 10, 9, 11);
    CHECK(fleet_queue_preempt(q, big, NULL, NULL, v, 8, &nv) == ERR_NOTFOUND); /* over quota */
    fleet_workload_t *same = s_add(q, "same", 0, 0, 9, 4);
    CHECK(fleet_queue_preempt(q, same, NULL, NULL, v, 8, &nv) == ERR_NOTFOUND); /* z too small */
    fleet_workload_t *two = s_add(q, "two", 0, 10, 9, 6);
    CHECK(fleet_queue_preempt(q, two, NULL, NULL, v, 8, &nv) == 0 && nv == 2 && v[0] == z &&
          v[1] == y);
    CHECK(fleet_queue_finish(q, two) == 0);
    CHECK(fleet_queue_evict(q, y) == 0 && fleet_queue_admit(q, hp) == 0 && s_ok(q));
    /* the evicted one keeps its creation order: first of its priority when room comes back */
    CHECK(fleet_queue_finish(q, hp) == 0 && fleet_queue_finish(q, big) == 0);
    CHECK(fleet_queue_next(q, NULL, NULL) == y && y->evictions == 1);
    /* room on members: fits_after decides with quota unlimited */
    fleet_queues_destroy(&q);
    q = s_new("[{name: a}]", &cap);
    x = s_add(q, "x", 0, 0, 1, 50);
    y = s_add(q, "y", 0, 0, 2, 50);
    CHECK(fleet_queue_admit(q, x) == 0 && fleet_queue_admit(q, y) == 0);
    s_sim_t *room = calloc(1, sizeof(*room));
    room->free = s_cpu(0);
    hp = s_add(q, "hp", 0, 5, 3, 30);
    CHECK(fleet_queue_preempt(q, hp, s_sim_fits_after, room, v, 8, &nv) == 0 && nv == 1 &&
          v[0] == y);
    room->free = s_cpu(30);
    CHECK(fleet_queue_preempt(q, hp, s_sim_fits_after, room, v, 8, &nv) == 0 && nv == 0);
    free(room);
    fleet_queues_destroy(&q);

    /* the simulations */
    buf_t report;
    buf_init(&report, 1u << 16);
    failed += s_sim_fair(verbose, &report);
    buf_reset(&report);
    failed += s_sim_cohort(verbose, &report);
    buf_free(&report);
    return SELFTEST_RESULT("queue", verbose);
}
#endif /* RF_SELFTEST */
