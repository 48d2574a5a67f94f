/*
 * workq: the reconcile driver (see workq.h for the semantics and the fairness
 * policy).
 *
 * Each key has one item in a chained hash table. An item is in at most one of:
 * the ready FIFO (doubly linked), the delay heap (a binary min-heap by ready
 * time), or in flight (with a `dirty` flag when it was added again meanwhile).
 * Items with nothing pending and no failure history are freed, except that with
 * a per-key rate they linger on an idle list until their interval has passed
 * (so the rate survives a done/add cycle). Two loop timers drive it: a
 * zero-delay dispatch timer armed while keys are ready and slots are free, and
 * a delay timer armed at the heap's earliest time.
 */
#include "workq.h"
#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Initial number of hash buckets (a power of two). */
#define WORKQ_INITIAL_BUCKETS 64
/* Failures beyond which the exponential backoff is always at its cap (avoids
 * overflow). */
#define WORKQ_MAX_BACKOFF_SHIFT 40

typedef struct item item_t;
struct item {
    item_t *hnext; /* next in the hash chain */
    item_t *prev; /* previous in the FIFO or the idle list */
    item_t *next; /* next in the FIFO or the idle list */
    uint32_t hash; /* hash of key */
    bool queued; /* in the ready FIFO */
    bool processing; /* a reconcile is in flight */
    bool dirty; /* added again while in flight: queue on done */
    bool idle; /* on the idle list */
    bool started; /* has been started at least once (last_start is valid) */
    bool urgent; /* added with workq_add_urgent() since its last start: queued in the urgent lane */
    bool in_lane; /* queued in the urgent lane (at the FIFO's front, up to utail) */
    bool ran_urgent; /* its reconcile in flight was started from the urgent lane */
    long heap_idx; /* index in the delay heap, or -1 */
    int64_t ready_at; /* when due, while in the heap */
    int64_t ready_since; /* when it became ready (for latency and the FIFO wait) */
    int64_t last_start; /* when its last reconcile started */
    int64_t idle_until; /* when it may be freed, while idle */
    int failures; /* consecutive rate-limited requeues */
    char key[]; /* the key, NUL-terminated */
};

struct workq {
    loop_t *loop; /* the event loop (not owned) */
    workq_opts_t o; /* options, defaults filled in */
    workq_reconcile_fn *fn; /* the reconcile callback */
    void *arg; /* its argument */
    item_t **buckets; /* hash table */
    size_t nbuckets; /* buckets, a power of two */
    size_t nitems; /* items in the table */
    item_t *qhead; /* FIFO head (next to start) */
    item_t *qtail; /* FIFO tail */
    item_t *utail; /* last key of the urgent lane (the FIFO's front part), NULL when empty */
    size_t depth; /* items in the FIFO */
    item_t **heap; /* delay heap */
    size_t heap_len; /* items in the heap */
    size_t heap_cap; /* heap capacity */
    item_t *ihead; /* idle list head */
    item_t *itail; /* idle list tail */
    size_t in_flight; /* reconciles running */
    size_t dirty_count; /* in-flight items marked dirty */
    int64_t dispatch_timer; /* dispatch timer id, 0 when not armed */
    int64_t delay_timer; /* delay timer id, 0 when not armed */
    int64_t delay_timer_at; /* when the delay timer fires */
    double tokens; /* overall retry bucket */
    int64_t tokens_at; /* when `tokens` was last refilled */
    workq_stats_t st; /* counters (gauges computed on demand) */
};

void workq_opts_default(workq_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->concurrency = WORKQ_DEFAULT_CONCURRENCY;
    o->max_len = WORKQ_DEFAULT_MAX_LEN;
    o->backoff_base_ms = WORKQ_DEFAULT_BACKOFF_BASE_MS;
    o->backoff_max_ms = WORKQ_DEFAULT_BACKOFF_MAX_MS;
    o->bucket_qps = WORKQ_DEFAULT_BUCKET_QPS;
    o->bucket_burst = WORKQ_DEFAULT_BUCKET_BURST;
    o->key_min_interval_ms = WORKQ_DEFAULT_KEY_MIN_INTERVAL_MS;
}

workq_result_t workq_ok(void)
{
    return (workq_result_t){.kind = WORKQ_OK, .after_ms = 0};
}

workq_result_t workq_requeue_after(int64_t ms)
{
    return (workq_result_t){.kind = WORKQ_REQUEUE_AFTER, .after_ms = ms};
}

workq_result_t workq_error(void)
{
    return (workq_result_t){.kind = WORKQ_ERROR, .after_ms = 0};
}

static int64_t s_now(void)
{
    return loop_clock_ms();
}

/* ---- hash table ---- */

static uint32_t s_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static item_t *s_find(const workq_t *q, const char *key)
{
    uint32_t h = s_hash(key);
    for (item_t *it = q->buckets[h & (q->nbuckets - 1)]; it; it = it->hnext) {
        if (it->hash == h && strcmp(it->key, key) == 0) {
            return it;
        }
    }
    return NULL;
}

static void s_grow(workq_t *q)
{
    size_t n = q->nbuckets * 2;
    item_t **b = calloc(n, sizeof(*b));
    if (!b) {
        return; /* keep the longer chains */
    }
    for (size_t i = 0; i < q->nbuckets; i++) {
        item_t *it = q->buckets[i];
        while (it) {
            item_t *next = it->hnext;
            it->hnext = b[it->hash & (n - 1)];
            b[it->hash & (n - 1)] = it;
            it = next;
        }
    }
    free(q->buckets);
    q->buckets = b;
    q->nbuckets = n;
}

static item_t *s_create(workq_t *q, const char *key)
{
    size_t len = strlen(key);
    item_t *it = calloc(1, sizeof(*it) + len + 1);
    if (!it) {
        return NULL;
    }
    memcpy(it->key, key, len + 1);
    it->hash = s_hash(key);
    it->heap_idx = -1;
    if (q->nitems >= q->nbuckets) {
        s_grow(q);
    }
    size_t b = it->hash & (q->nbuckets - 1);
    it->hnext = q->buckets[b];
    q->buckets[b] = it;
    q->nitems++;
    return it;
}

static void s_unlink_hash(workq_t *q, item_t *it)
{
    item_t **pp = &q->buckets[it->hash & (q->nbuckets - 1)];
    while (*pp && *pp != it) {
        pp = &(*pp)->hnext;
    }
    if (*pp) {
        *pp = it->hnext;
        q->nitems--;
    }
}

/* ---- FIFO and idle list ---- */

/* Queues `it` at the FIFO's tail, or an urgent key at the urgent lane's tail (behind the keys
 * already urgent, ahead of every ordinary key). */
static void s_fifo_push(workq_t *q, item_t *it)
{
    item_t *after = it->urgent ? q->utail : q->qtail;
    if (it->urgent && !after && q->qhead) {
        /* the lane is empty: first of the FIFO */
        it->prev = NULL;
        it->next = q->qhead;
        q->qhead->prev = it;
        q->qhead = it;
    } else {
        it->prev = after;
        it->next = after ? after->next : NULL;
        if (after) {
            after->next = it;
        } else {
            q->qhead = it;
        }
        if (it->next) {
            it->next->prev = it;
        } else {
            q->qtail = it;
        }
    }
    if (it->urgent) {
        q->utail = it;
    }
    it->in_lane = it->urgent;
    it->queued = true;
    q->depth++;
}

/* Takes `it` out of the FIFO. */
static void s_fifo_unlink(workq_t *q, item_t *it)
{
    if (q->utail == it) {
        q->utail = it->prev; /* the lane is the FIFO's front: what precedes is urgent too */
    }
    if (it->prev) {
        it->prev->next = it->next;
    } else {
        q->qhead = it->next;
    }
    if (it->next) {
        it->next->prev = it->prev;
    } else {
        q->qtail = it->prev;
    }
    it->next = it->prev = NULL;
    it->queued = false;
    it->in_lane = false;
    q->depth--;
}

static item_t *s_fifo_pop(workq_t *q)
{
    item_t *it = q->qhead;
    if (!it) {
        return NULL;
    }
    s_fifo_unlink(q, it);
    return it;
}

static void s_idle_remove(workq_t *q, item_t *it)
{
    if (!it->idle) {
        return;
    }
    if (it->prev) {
        it->prev->next = it->next;
    } else {
        q->ihead = it->next;
    }
    if (it->next) {
        it->next->prev = it->prev;
    } else {
        q->itail = it->prev;
    }
    it->next = it->prev = NULL;
    it->idle = false;
}

static void s_idle_push(workq_t *q, item_t *it)
{
    it->prev = q->itail;
    it->next = NULL;
    if (q->itail) {
        q->itail->next = it;
    } else {
        q->ihead = it;
    }
    q->itail = it;
    it->idle = true;
}

/* ---- delay heap ---- */

static void s_heap_swap(workq_t *q, size_t a, size_t b)
{
    item_t *t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->heap_idx = (long)a;
    q->heap[b]->heap_idx = (long)b;
}

static void s_heap_up(workq_t *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (q->heap[p]->ready_at <= q->heap[i]->ready_at) {
            break;
        }
        s_heap_swap(q, p, i);
        i = p;
    }
}

static void s_heap_down(workq_t *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->heap_len && q->heap[l]->ready_at < q->heap[m]->ready_at) {
            m = l;
        }
        if (r < q->heap_len && q->heap[r]->ready_at < q->heap[m]->ready_at) {
            m = r;
        }
        if (m == i) {
            return;
        }
        s_heap_swap(q, i, m);
        i = m;
    }
}

static int s_heap_push(workq_t *q, item_t *it)
{
    if (q->heap_len == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
        item_t **h = realloc(q->heap, cap * sizeof(*h));
        if (!h) {
            return ERR_NOMEM;
        }
        q->heap = h;
        q->heap_cap = cap;
    }
    q->heap[q->heap_len] = it;
    it->heap_idx = (long)q->heap_len;
    q->heap_len++;
    s_heap_up(q, (size_t)it->heap_idx);
    return 0;
}

static void s_heap_remove(workq_t *q, item_t *it)
{
    if (it->heap_idx < 0) {
        return;
    }
    size_t i = (size_t)it->heap_idx;
    q->heap_len--;
    if (i != q->heap_len) {
        s_heap_swap(q, i, q->heap_len);
        s_heap_down(q, i);
        s_heap_up(q, i);
    }
    it->heap_idx = -1;
}

/* ---- timers ---- */

static int64_t s_dispatch_cb(loop_t *loop, int64_t id, void *arg);
static int64_t s_delay_cb(loop_t *loop, int64_t id, void *arg);

/* Arms the dispatch timer when a key is ready and a slot is free. */
static void s_kick(workq_t *q)
{
    if (q->dispatch_timer || !q->qhead || q->in_flight >= (size_t)q->o.concurrency) {
        return;
    }
    int64_t id = loop_add_timer(q->loop, 0, s_dispatch_cb, q);
    if (id > 0) {
        q->dispatch_timer = id;
    } else {
        log_error("workq: cannot arm the dispatch timer", "error", err_str((int)id), NULL);
    }
}

/* (Re)arms the delay timer at the heap's earliest time. */
static void s_arm_delay(workq_t *q, int64_t now)
{
    if (q->heap_len == 0) {
        return;
    }
    int64_t at = q->heap[0]->ready_at;
    if (q->delay_timer && q->delay_timer_at <= at) {
        return;
    }
    if (q->delay_timer) {
        loop_cancel_timer(q->loop, q->delay_timer);
        q->delay_timer = 0;
    }
    int64_t id = loop_add_timer(q->loop, at > now ? at - now : 0, s_delay_cb, q);
    if (id > 0) {
        q->delay_timer = id;
        q->delay_timer_at = at;
    } else {
        log_error("workq: cannot arm the delay timer", "error", err_str((int)id), NULL);
    }
}

/* ---- item life cycle ---- */

static bool s_waiting(const item_t *it)
{
    return it->queued || it->heap_idx >= 0 || it->dirty;
}

static size_t s_waiting_count(const workq_t *q)
{
    return q->depth + q->heap_len + q->dirty_count;
}

/* Frees or parks an item that has nothing left to do. */
static void s_settle(workq_t *q, item_t *it, int64_t now)
{
    if (s_waiting(it) || it->processing || it->failures > 0) {
        s_idle_remove(q, it);
        return;
    }
    if (q->o.key_min_interval_ms > 0 && it->started &&
        now - it->last_start < q->o.key_min_interval_ms) {
        if (!it->idle) {
            it->idle_until = it->last_start + q->o.key_min_interval_ms;
            s_idle_push(q, it);
        }
        return;
    }
    s_idle_remove(q, it);
    s_unlink_hash(q, it);
    free(it);
}

/* Frees idle items whose interval has passed (the list is roughly ordered). */
static void s_sweep_idle(workq_t *q, int64_t now)
{
    while (q->ihead && q->ihead->idle_until <= now) {
        item_t *it = q->ihead;
        s_idle_remove(q, it);
        s_unlink_hash(q, it);
        free(it);
    }
}

/* Makes an existing item ready now (dedup, dirty when in flight). */
static void s_ready(workq_t *q, item_t *it, int64_t now)
{
    s_idle_remove(q, it);
    if (it->processing) {
        s_heap_remove(q, it);
        if (!it->dirty) {
            it->dirty = true;
            q->dirty_count++;
            it->ready_since = now;
            q->st.adds++;
        }
        return;
    }
    if (it->queued) {
        if (it->urgent && !it->in_lane) {
            s_fifo_unlink(q, it); /* made urgent while waiting: into the lane, same add time */
            s_fifo_push(q, it);
        }
        return;
    }
    s_heap_remove(q, it);
    it->ready_since = now;
    s_fifo_push(q, it);
    q->st.adds++;
    s_kick(q);
}

/* Looks up or creates the item for a new add, enforcing the bound. */
static int s_item_for_add(workq_t *q, const char *key, item_t **out)
{
    if (!q || !key || !key[0] || strlen(key) > WORKQ_MAX_KEY_LEN) {
        return ERR_INVAL;
    }
    item_t *it = s_find(q, key);
    if (!(it && s_waiting(it)) && s_waiting_count(q) >= q->o.max_len) {
        q->st.rejected++;
        log_warn("workq full: key dropped", "key", key, NULL);
        return ERR_TOOBIG;
    }
    if (!it) {
        it = s_create(q, key);
        if (!it) {
            return ERR_NOMEM;
        }
    }
    *out = it;
    return 0;
}

static int s_add_after(workq_t *q, item_t *it, int64_t delay_ms, int64_t now)
{
    if (delay_ms <= 0) {
        s_ready(q, it, now);
        return 0;
    }
    if (it->queued || it->dirty) {
        return 0; /* ready sooner already */
    }
    s_idle_remove(q, it);
    int64_t at = now + delay_ms;
    if (it->heap_idx >= 0) {
        if (at < it->ready_at) {
            it->ready_at = at;
            s_heap_up(q, (size_t)it->heap_idx);
            s_arm_delay(q, now);
        }
        return 0;
    }
    it->ready_at = at;
    int rc = s_heap_push(q, it);
    if (rc == 0) {
        s_arm_delay(q, now);
    }
    return rc;
}

static int64_t s_backoff(const workq_t *q, int failures)
{
    if (failures >= WORKQ_MAX_BACKOFF_SHIFT) {
        return q->o.backoff_max_ms;
    }
    double d = (double)q->o.backoff_base_ms * ldexp(1.0, failures);
    return d >= (double)q->o.backoff_max_ms ? q->o.backoff_max_ms : (int64_t)d;
}

/* The delay of one more failure of `it`: counts it and takes a bucket token. */
static int64_t s_when(workq_t *q, item_t *it, int64_t now)
{
    int64_t d = s_backoff(q, it->failures);
    it->failures++;
    if (q->o.bucket_qps > 0) {
        double burst = (double)q->o.bucket_burst;
        q->tokens += (double)(now - q->tokens_at) * q->o.bucket_qps / 1000.0;
        if (q->tokens > burst) {
            q->tokens = burst;
        }
        q->tokens_at = now;
        q->tokens -= 1.0;
        if (q->tokens < 0) {
            int64_t b = (int64_t)ceil(-q->tokens * 1000.0 / q->o.bucket_qps);
            if (b > d) {
                d = b;
            }
        }
    }
    return d;
}

/* ---- timer callbacks ---- */

static int64_t s_delay_cb(loop_t *loop, int64_t id, void *arg)
{
    workq_t *q = arg;
    int64_t now = s_now();
    while (q->heap_len > 0 && q->heap[0]->ready_at <= now) {
        item_t *it = q->heap[0];
        s_heap_remove(q, it);
        s_ready(q, it, now);
    }
    if (q->heap_len == 0) {
        q->delay_timer = 0;
        return LOOP_TIMER_DONE;
    }
    q->delay_timer_at = q->heap[0]->ready_at;
    return q->delay_timer_at - now;
}

static int64_t s_dispatch_cb(loop_t *loop, int64_t id, void *arg)
{
    workq_t *q = arg;
    int64_t now = s_now();
    s_sweep_idle(q, now);
    /* One pass at most: keys made ready during the pass wait for the next
     * iteration. */
    size_t pass = q->depth;
    while (pass-- > 0 && q->in_flight < (size_t)q->o.concurrency && q->qhead) {
        item_t *it = s_fifo_pop(q);
        if (q->o.key_min_interval_ms > 0 && it->started &&
            now - it->last_start < q->o.key_min_interval_ms) {
            it->ready_at = it->last_start + q->o.key_min_interval_ms;
            q->st.rate_deferred++;
            if (s_heap_push(q, it) < 0) {
                s_fifo_push(q, it); /* out of memory: keep it ready */
                break;
            }
            s_arm_delay(q, now);
            continue;
        }
        it->processing = true;
        it->started = true;
        it->ran_urgent = it->urgent;
        it->urgent = false;
        it->last_start = now;
        q->in_flight++;
        q->st.starts++;
        int64_t wait = now - it->ready_since;
        q->st.latency_last_ms = wait;
        q->st.latency_sum_ms += wait;
        if (wait > q->st.latency_max_ms) {
            q->st.latency_max_ms = wait;
        }
        if (q->o.on_latency) {
            q->o.on_latency(it->key, wait, q->o.latency_arg);
        }
        q->fn(q, it->key, q->arg); /* may call workq_done() and free `it` */
    }
    if (q->qhead && q->in_flight < (size_t)q->o.concurrency) {
        return 0;
    }
    q->dispatch_timer = 0;
    return LOOP_TIMER_DONE;
}

/* ---- public ---- */

workq_t *workq_new(loop_t *loop, const workq_opts_t *opts, workq_reconcile_fn *fn, void *arg)
{
    if (!loop || !fn) {
        return NULL;
    }
    workq_t *q = calloc(1, sizeof(*q));
    if (!q) {
        return NULL;
    }
    workq_opts_default(&q->o);
    if (opts) {
        workq_opts_t d = q->o;
        q->o = *opts;
        if (q->o.concurrency <= 0) {
            q->o.concurrency = d.concurrency;
        }
        if (q->o.max_len == 0) {
            q->o.max_len = d.max_len;
        }
        if (q->o.backoff_base_ms <= 0) {
            q->o.backoff_base_ms = d.backoff_base_ms;
        }
        if (q->o.backoff_max_ms <= 0) {
            q->o.backoff_max_ms = d.backoff_max_ms;
        }
        if (q->o.bucket_qps < 0) {
            q->o.bucket_qps = d.bucket_qps;
        }
        if (q->o.bucket_burst <= 0) {
            q->o.bucket_burst = d.bucket_burst;
        }
        if (q->o.key_min_interval_ms < 0) {
            q->o.key_min_interval_ms = d.key_min_interval_ms;
        }
    }
    q->loop = loop;
    q->fn = fn;
    q->arg = arg;
    q->nbuckets = WORKQ_INITIAL_BUCKETS;
    q->buckets = calloc(q->nbuckets, sizeof(*q->buckets));
    q->tokens = (double)q->o.bucket_burst;
    q->tokens_at = s_now();
    if (!q->buckets) {
        workq_destroy(&q);
        return NULL;
    }
    return q;
}

void workq_destroy(workq_t **qp)
{
    if (!qp || !*qp) {
        return;
    }
    workq_t *q = *qp;
    if (q->dispatch_timer) {
        loop_cancel_timer(q->loop, q->dispatch_timer);
    }
    if (q->delay_timer) {
        loop_cancel_timer(q->loop, q->delay_timer);
    }
    for (size_t i = 0; q->buckets && i < q->nbuckets; i++) {
        item_t *it = q->buckets[i];
        while (it) {
            item_t *next = it->hnext;
            free(it);
            it = next;
        }
    }
    free(q->buckets);
    free(q->heap);
    free(q);
    *qp = NULL;
}

int workq_add(workq_t *q, const char *key)
{
    item_t *it = NULL;
    int rc = s_item_for_add(q, key, &it);
    if (rc < 0) {
        return rc;
    }
    q->st.add_calls++;
    s_ready(q, it, s_now());
    return 0;
}

int workq_add_urgent(workq_t *q, const char *key)
{
    item_t *it = NULL;
    int rc = s_item_for_add(q, key, &it);
    if (rc < 0) {
        return rc;
    }
    q->st.add_calls++;
    q->st.urgent_adds++;
    it->urgent = true;
    s_ready(q, it, s_now());
    return 0;
}

int workq_add_after(workq_t *q, const char *key, int64_t delay_ms)
{
    item_t *it = NULL;
    int rc = s_item_for_add(q, key, &it);
    if (rc < 0) {
        return rc;
    }
    q->st.add_calls++;
    int64_t now = s_now();
    rc = s_add_after(q, it, delay_ms, now);
    s_settle(q, it, now);
    return rc;
}

int workq_add_rate_limited(workq_t *q, const char *key)
{
    item_t *it = NULL;
    int rc = s_item_for_add(q, key, &it);
    if (rc < 0) {
        return rc;
    }
    q->st.add_calls++;
    q->st.retries++;
    int64_t now = s_now();
    rc = s_add_after(q, it, s_when(q, it, now), now);
    s_settle(q, it, now);
    return rc;
}

void workq_forget(workq_t *q, const char *key)
{
    if (!q || !key) {
        return;
    }
    item_t *it = s_find(q, key);
    if (it) {
        it->failures = 0;
        s_settle(q, it, s_now());
    }
}

int workq_num_requeues(const workq_t *q, const char *key)
{
    const item_t *it = q && key ? s_find(q, key) : NULL;
    return it ? it->failures : 0;
}

int64_t workq_next_backoff_ms(const workq_t *q, const char *key)
{
    if (!q) {
        return 0;
    }
    return s_backoff(q, workq_num_requeues(q, key));
}

int workq_done(workq_t *q, const char *key, workq_result_t result)
{
    if (!q || !key) {
        return ERR_INVAL;
    }
    item_t *it = s_find(q, key);
    if (!it || !it->processing) {
        return ERR_STATE;
    }
    int64_t now = s_now();
    it->processing = false;
    q->in_flight--;
    if (q->o.on_done)
        q->o.on_done(it->key, now - it->last_start, result.kind, q->o.done_arg);
    if (it->dirty) {
        /* Added while in flight: exactly one more pass, at the tail, keeping its
         * add time. */
        it->dirty = false;
        q->dirty_count--;
        s_fifo_push(q, it);
    }
    int rc = 0;
    switch (result.kind) {
    case WORKQ_OK:
        it->failures = 0;
        break;
    case WORKQ_REQUEUE_AFTER:
        it->failures = 0;
        rc = s_add_after(q, it, result.after_ms, now);
        break;
    case WORKQ_ERROR:
    case WORKQ_REQUEUE:
    default:
        q->st.retries++;
        rc = s_add_after(q, it, s_when(q, it, now), now);
        break;
    }
    s_settle(q, it, now);
    s_sweep_idle(q, now);
    s_kick(q);
    return rc;
}

bool workq_in_flight(const workq_t *q, const char *key)
{
    const item_t *it = q && key ? s_find(q, key) : NULL;
    return it && it->processing;
}

bool workq_urgent_start(const workq_t *q, const char *key)
{
    const item_t *it = q && key ? s_find(q, key) : NULL;
    return it && it->processing && it->ran_urgent;
}

bool workq_pending(const workq_t *q, const char *key)
{
    const item_t *it = q && key ? s_find(q, key) : NULL;
    return it && s_waiting(it);
}

void workq_stats(const workq_t *q, workq_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!q) {
        return;
    }
    *out = q->st;
    out->depth = q->depth;
    out->delayed = q->heap_len;
    out->in_flight = q->in_flight;
    out->keys = q->nitems;
    int64_t now = s_now();
    out->longest_wait_ms = q->qhead ? now - q->qhead->ready_since : 0;
    const item_t *first_ordinary = q->utail ? q->utail->next : NULL; /* may have waited longer */
    if (first_ordinary && now - first_ordinary->ready_since > out->longest_wait_ms) {
        out->longest_wait_ms = now - first_ordinary->ready_since;
    }
    for (size_t b = 0; q->in_flight && b < q->nbuckets; b++)
        for (const item_t *it = q->buckets[b]; it; it = it->hnext)
            if (it->processing) {
                out->unfinished_ms += now - it->last_start;
                if (now - it->last_start > out->longest_running_ms)
                    out->longest_running_ms = now - it->last_start;
            }
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

/* Most keys a test tracks. */
#define T_MAX_KEYS 64
/* Most starts a test records. */
#define T_MAX_LOG 4096

typedef struct {
    int failed_concurrent; /* a key started while already running */
    int mode; /* 0 sync ok, 1 async, 2 hot re-add, 3 error once then ok */
    char names[T_MAX_KEYS][32]; /* keys seen */
    int starts[T_MAX_KEYS]; /* starts per key */
    bool running[T_MAX_KEYS]; /* currently in flight (async) */
    int64_t first_start[T_MAX_KEYS]; /* the queue's time of the first start (item last_start) */
    int64_t last_start[T_MAX_KEYS]; /* the queue's time of the last start */
    int order[T_MAX_LOG]; /* key index per start */
    int64_t at[T_MAX_LOG]; /* the queue's time of each start */
    int nlog; /* starts recorded */
    int nkeys; /* keys seen */
    size_t max_in_flight; /* largest in-flight count observed */
    const char *hot; /* mode 2: the key that re-adds itself */
} t_rec_t;

static int t_idx(t_rec_t *r, const char *key)
{
    for (int i = 0; i < r->nkeys; i++) {
        if (strcmp(r->names[i], key) == 0) {
            return i;
        }
    }
    if (r->nkeys >= T_MAX_KEYS) {
        return 0;
    }
    snprintf(r->names[r->nkeys], sizeof(r->names[0]), "%s", key);
    return r->nkeys++;
}

static void t_reconcile(workq_t *q, const char *key, void *arg)
{
    t_rec_t *r = arg;
    int i = t_idx(r, key);
    if (r->running[i]) {
        r->failed_concurrent++;
    }
    r->starts[i]++;
    /* the queue's own start time, so that the checks below compare the times it acted on, not
     * when a loaded machine let the test look */
    const item_t *it = s_find(q, key);
    int64_t at = it ? it->last_start : -1;
    if (r->starts[i] == 1) {
        r->first_start[i] = at;
    }
    r->last_start[i] = at;
    if (r->nlog < T_MAX_LOG) {
        r->at[r->nlog] = at;
        r->order[r->nlog++] = i;
    }
    if (q->in_flight > r->max_in_flight) {
        r->max_in_flight = q->in_flight;
    }
    if (r->mode == 1) {
        r->running[i] = true;
        return;
    }
    if (r->mode == 3 && r->starts[i] == 1) {
        workq_done(q, key, workq_error());
        return;
    }
    const char *copy = r->names[i]; /* `key` is gone after workq_done() */
    workq_done(q, key, workq_ok());
    if (r->mode == 2 && r->hot && strcmp(copy, r->hot) == 0) {
        workq_add(q, copy);
    }
}

/* Finishes an async reconcile recorded in r. */
static int t_finish(workq_t *q, t_rec_t *r, const char *key, workq_result_t res)
{
    r->running[t_idx(r, key)] = false;
    return workq_done(q, key, res);
}

static void t_latency(const char *key, int64_t wait_ms, void *arg)
{
    *(int64_t *)arg = wait_ms;
}

static void t_spin(loop_t *loop, int iterations)
{
    for (int i = 0; i < iterations; i++) {
        loop_run_once(loop, 1);
    }
}

/* Most a test waits for something the queue must do (only a bound: a loaded machine may be slow,
 * the checks never depend on how long it took). */
#define T_WAIT_MS 10000

/* Runs the loop until the key at index i of r (t_idx) has started `n` times, at most T_WAIT_MS.
 * Returns whether it has. */
static bool t_run_until_starts(loop_t *loop, t_rec_t *r, const char *key, int n)
{
    int64_t end = loop_clock_ms() + T_WAIT_MS;
    int i = t_idx(r, key);
    while (r->starts[i] < n && loop_clock_ms() < end) {
        loop_run_once(loop, 5);
    }
    return r->starts[i] >= n;
}

static void t_reset(t_rec_t *r, int mode)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
}

int workq_test(bool verbose)
{
    int failed = 0;
    loop_t *loop = loop_new();
    CHECK(loop != NULL);
    if (!loop) {
        return SELFTEST_RESULT("workq", verbose);
    }
    static t_rec_t rec;
    t_rec_t *r = &rec;
    workq_opts_t o;
    workq_stats_t st;

    /* Construction failures and argument checks. */
    CHECK(workq_new(NULL, NULL, t_reconcile, r) == NULL);
    CHECK(workq_new(loop, NULL, NULL, r) == NULL);
    workq_destroy(NULL);

    /* 1. Deduplication and FIFO order (sync completion). */
    t_reset(r, 0);
    workq_t *q = workq_new(loop, NULL, t_reconcile, r);
    CHECK(q != NULL);
    CHECK(workq_add(q, NULL) == ERR_INVAL);
    CHECK(workq_add(q, "") == ERR_INVAL);
    char longkey[WORKQ_MAX_KEY_LEN + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    CHECK(workq_add(q, longkey) == ERR_INVAL);
    CHECK(workq_add(q, "c/ns/a") == 0);
    CHECK(workq_add(q, "c/ns/b") == 0);
    CHECK(workq_add(q, "c/ns/a") == 0);
    CHECK(workq_add(q, "c/ns/a") == 0);
    CHECK(workq_pending(q, "c/ns/a"));
    workq_stats(q, &st);
    CHECK(st.depth == 2 && st.adds == 2 && st.add_calls == 4);
    t_spin(loop, 3);
    CHECK(r->nkeys == 2 && r->starts[0] == 1 && r->starts[1] == 1);
    CHECK(r->nlog == 2 && strcmp(r->names[r->order[0]], "c/ns/a") == 0);
    workq_stats(q, &st);
    CHECK(st.depth == 0 && st.in_flight == 0 && st.starts == 2 && st.keys == 0);
    CHECK(workq_done(q, "c/ns/a", workq_ok()) == ERR_STATE);
    CHECK(workq_done(q, NULL, workq_ok()) == ERR_INVAL);
    workq_destroy(&q);
    CHECK(q == NULL);

    /* 2. Async completion, concurrency 4: one key never runs twice at once, and
     * an add during its reconcile gives exactly one more pass after done. */
    t_reset(r, 1);
    workq_opts_default(&o);
    o.concurrency = 4;
    q = workq_new(loop, &o, t_reconcile, r);
    CHECK(workq_add(q, "k") == 0);
    t_spin(loop, 3);
    CHECK(r->starts[0] == 1 && workq_in_flight(q, "k"));
    CHECK(workq_add(q, "k") == 0);
    CHECK(workq_add(q, "k") == 0);
    CHECK(workq_add_after(q, "k", 1) == 0); /* dirty already: no-op */
    CHECK(workq_add(q, "other") == 0);
    t_spin(loop, 5);
    CHECK(r->starts[0] == 1); /* not started again while in flight */
    CHECK(r->starts[1] == 1);
    workq_stats(q, &st);
    CHECK(st.in_flight == 2 && st.depth == 0);
    CHECK(workq_pending(q, "k"));
    CHECK(t_finish(q, r, "k", workq_ok()) == 0);
    t_spin(loop, 3);
    CHECK(r->starts[0] == 2); /* exactly one more pass */
    CHECK(t_finish(q, r, "k", workq_ok()) == 0);
    CHECK(t_finish(q, r, "other", workq_ok()) == 0);
    t_spin(loop, 5);
    CHECK(r->starts[0] == 2 && r->starts[1] == 1);
    CHECK(r->failed_concurrent == 0);
    workq_stats(q, &st);
    CHECK(st.in_flight == 0 && st.keys == 0);
    workq_destroy(&q);

    /* 3. Concurrency limit: 10 keys, 3 slots. */
    t_reset(r, 1);
    workq_opts_default(&o);
    o.concurrency = 3;
    q = workq_new(loop, &o, t_reconcile, r);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "key-%d", i);
        CHECK(workq_add(q, name) == 0);
    }
    t_spin(loop, 5);
    workq_stats(q, &st);
    CHECK(st.in_flight == 3 && st.depth == 7);
    CHECK(r->nlog == 3);
    int finished = 0;
    for (int round = 0; round < 20 && finished < 10; round++) {
        for (int i = 0; i < r->nkeys; i++) {
            if (r->running[i]) {
                CHECK(t_finish(q, r, r->names[i], workq_ok()) == 0);
                finished++;
            }
        }
        t_spin(loop, 2);
    }
    CHECK(finished == 10 && r->nlog == 10);
    CHECK(r->max_in_flight <= 3);
    /* FIFO: keys started in the order added. */
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "key-%d", i);
        CHECK(strcmp(r->names[r->order[i]], name) == 0);
    }
    workq_destroy(&q);

    /* 4. add_after timing: due after the delay, the earlier time kept. The due times are read
     * from the items, bracketed by the clock around the add that set them; the starts are
     * checked by order and against the due times, never by elapsed wall-clock time. */
    t_reset(r, 0);
    q = workq_new(loop, NULL, t_reconcile, r);
    int64_t t0 = loop_clock_ms();
    CHECK(workq_add_after(q, "late", 60) == 0);
    int64_t t1 = loop_clock_ms();
    CHECK(workq_add_after(q, "early", 200) == 0);
    int64_t t2 = loop_clock_ms();
    CHECK(workq_add_after(q, "early", 30) == 0); /* earlier wins */
    int64_t t3 = loop_clock_ms();
    CHECK(workq_add_after(q, "late", 300) == 0); /* later ignored */
    workq_stats(q, &st);
    CHECK(st.delayed == 2 && st.depth == 0 && r->nlog == 0);
    const item_t *ei = s_find(q, "early"), *li = s_find(q, "late");
    CHECK(ei && ei->heap_idx >= 0 && ei->ready_at >= t2 + 30 && ei->ready_at <= t3 + 30);
    CHECK(li && li->heap_idx >= 0 && li->ready_at >= t0 + 60 && li->ready_at <= t1 + 60);
    int64_t early_due = ei ? ei->ready_at : 0, late_due = li ? li->ready_at : 0;
    CHECK(t_run_until_starts(loop, r, "late", 1));
    CHECK(r->nlog == 2);
    int ie = t_idx(r, "early"), il = t_idx(r, "late");
    CHECK(r->starts[ie] == 1 && r->starts[il] == 1);
    CHECK(r->order[0] == ie && r->order[1] == il); /* by due time */
    CHECK(r->first_start[ie] >= early_due && r->first_start[il] >= late_due);
    /* An immediate add supersedes a pending delayed one. */
    CHECK(workq_add_after(q, "moved", 10000) == 0);
    CHECK(workq_add(q, "moved") == 0);
    workq_stats(q, &st);
    CHECK(st.delayed == 0 && st.depth == 1);
    t_spin(loop, 3);
    CHECK(r->starts[t_idx(r, "moved")] == 1);
    CHECK(workq_add_after(q, "zero", 0) == 0);
    t_spin(loop, 3);
    CHECK(r->starts[t_idx(r, "zero")] == 1);
    workq_destroy(&q);

    /* 5. Backoff sequence, cap and forget (bucket off). */
    t_reset(r, 1);
    workq_opts_default(&o);
    o.bucket_qps = 0;
    q = workq_new(loop, &o, t_reconcile, r);
    int64_t expect_seq[] = {5, 10, 20, 40, 80, 160, 320, 640};
    for (size_t i = 0; i < sizeof(expect_seq) / sizeof(expect_seq[0]); i++) {
        CHECK(workq_next_backoff_ms(q, "f") == expect_seq[i]);
        CHECK(workq_add_rate_limited(q, "f") == 0);
        CHECK(workq_num_requeues(q, "f") == (int)i + 1);
    }
    for (int i = 8; i < 60; i++) {
        CHECK(workq_add_rate_limited(q, "f") == 0);
    }
    CHECK(workq_next_backoff_ms(q, "f") == WORKQ_DEFAULT_BACKOFF_MAX_MS);
    CHECK(workq_num_requeues(q, "f") == 60);
    workq_forget(q, "f");
    CHECK(workq_num_requeues(q, "f") == 0);
    CHECK(workq_next_backoff_ms(q, "f") == 5);
    workq_forget(q, "absent");
    workq_forget(NULL, "f");
    CHECK(workq_num_requeues(q, "absent") == 0);
    /* The key is still waiting (first rate-limited add: 5 ms); it starts and
     * fails: requeue. */
    CHECK(t_run_until_starts(loop, r, "f", 1));
    CHECK(r->starts[0] == 1);
    int64_t t_fail = loop_clock_ms();
    CHECK(t_finish(q, r, "f", workq_error()) == 0);
    CHECK(workq_num_requeues(q, "f") == 1);
    workq_stats(q, &st);
    CHECK(st.delayed == 1);
    const item_t *fi = s_find(q, "f");
    CHECK(fi && fi->ready_at >= t_fail + 5 && fi->ready_at <= loop_clock_ms() + 5);
    CHECK(t_run_until_starts(loop, r, "f", 2));
    CHECK(r->starts[0] == 2);
    CHECK(r->last_start[0] - r->first_start[0] >= 5);
    CHECK(r->last_start[0] >= t_fail + 5);
    /* Success forgets. */
    CHECK(t_finish(q, r, "f", workq_ok()) == 0);
    CHECK(workq_num_requeues(q, "f") == 0);
    workq_stats(q, &st);
    CHECK(st.keys == 0);
    workq_destroy(&q);

    /* Custom backoff and the overall bucket: burst 2 at 10 qps, the 3rd retry
     * waits ~100 ms. */
    workq_opts_default(&o);
    o.backoff_base_ms = 1;
    o.backoff_max_ms = 4;
    o.bucket_qps = 10;
    o.bucket_burst = 2;
    q = workq_new(loop, &o, t_reconcile, r);
    {
        int64_t now = s_now();
        item_t *a = s_create(q, "x");
        CHECK(a != NULL);
        if (a) {
            CHECK(s_when(q, a, now) == 1);
            CHECK(s_when(q, a, now) == 2);
            int64_t d = s_when(q, a, now);
            CHECK(d >= 99 && d <= 101);
            a->failures = 10;
            CHECK(s_backoff(q, a->failures) == 4);
        }
    }
    workq_destroy(&q);

    /* 6. Requeue-after result and REQUEUE result. */
    t_reset(r, 1);
    q = workq_new(loop, NULL, t_reconcile, r);
    CHECK(workq_add(q, "ra") == 0);
    t_spin(loop, 2);
    t0 = loop_clock_ms();
    CHECK(t_finish(q, r, "ra", workq_requeue_after(40)) == 0);
    t1 = loop_clock_ms();
    workq_stats(q, &st);
    CHECK(st.delayed == 1 && r->starts[0] == 1);
    const item_t *rai = s_find(q, "ra");
    CHECK(rai && rai->heap_idx >= 0 && rai->ready_at >= t0 + 40 && rai->ready_at <= t1 + 40);
    CHECK(t_run_until_starts(loop, r, "ra", 2));
    CHECK(r->starts[0] == 2 && r->last_start[0] - t0 >= 40);
    CHECK(t_finish(q, r, "ra", (workq_result_t){.kind = WORKQ_REQUEUE}) == 0);
    CHECK(workq_num_requeues(q, "ra") == 1);
    CHECK(t_run_until_starts(loop, r, "ra", 3));
    CHECK(r->starts[0] == 3);
    CHECK(t_finish(q, r, "ra", workq_ok()) == 0);
    workq_destroy(&q);

    /* 7. Fairness: a key that re-adds itself on every pass does not starve the
     * others. */
    t_reset(r, 2);
    r->hot = "hot";
    q = workq_new(loop, NULL, t_reconcile, r);
    CHECK(workq_add(q, "hot") == 0);
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "cold-%d", i);
        CHECK(workq_add(q, name) == 0);
    }
    t_spin(loop, 20);
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "cold-%d", i);
        CHECK(r->starts[t_idx(r, name)] == 1);
    }
    /* Every cold key started before the hot key's 3rd start. */
    int hot_before = 0;
    for (int i = 0; i < r->nlog; i++) {
        if (strcmp(r->names[r->order[i]], "hot") == 0) {
            hot_before++;
        } else {
            CHECK(hot_before <= 2);
        }
    }
    CHECK(r->starts[t_idx(r, "hot")] >= 10); /* and the hot key still progresses */
    workq_destroy(&q);

    /* The per-key rate: a hot key starts at most once per interval. With an interval no test
     * run reaches, the re-add is deferred exactly once, to its last start + the interval. */
    t_reset(r, 2);
    r->hot = "hot";
    workq_opts_default(&o);
    o.key_min_interval_ms = 3600 * 1000;
    q = workq_new(loop, &o, t_reconcile, r);
    CHECK(workq_add(q, "hot") == 0);
    t_spin(loop, 10);
    workq_stats(q, &st);
    const item_t *hi = s_find(q, "hot");
    CHECK(r->starts[t_idx(r, "hot")] == 1 && st.rate_deferred == 1 && st.delayed == 1);
    CHECK(hi && hi->heap_idx >= 0 && hi->ready_at == r->last_start[t_idx(r, "hot")] + 3600 * 1000);
    workq_destroy(&q);
    /* With 20 ms, every start of the hot key is at least 20 ms after the one before (the
     * queue's own start times), and it keeps progressing. */
    t_reset(r, 2);
    r->hot = "hot";
    o.key_min_interval_ms = 20;
    q = workq_new(loop, &o, t_reconcile, r);
    CHECK(workq_add(q, "hot") == 0);
    CHECK(t_run_until_starts(loop, r, "hot", 6));
    int64_t min_gap = INT64_MAX;
    for (int i = 1; i < r->nlog; i++) {
        if (r->at[i] - r->at[i - 1] < min_gap) {
            min_gap = r->at[i] - r->at[i - 1];
        }
    }
    CHECK(r->nlog >= 6 && min_gap >= 20);
    workq_stats(q, &st);
    CHECK(st.starts == (uint64_t)r->nlog);
    /* The idle item is swept after its interval: once the hot key stopped re-adding itself and
     * 20 ms passed since its last start, the next dispatch frees it. */
    r->hot = NULL;
    int64_t end = loop_clock_ms() + T_WAIT_MS;
    while ((workq_pending(q, "hot") || workq_in_flight(q, "hot")) && loop_clock_ms() < end) {
        loop_run_once(loop, 5);
    }
    CHECK(!workq_pending(q, "hot") && !workq_in_flight(q, "hot") && s_find(q, "hot") != NULL);
    int64_t hot_last = r->last_start[t_idx(r, "hot")];
    while (loop_clock_ms() < hot_last + 20) {
        loop_run_once(loop, 5);
    }
    CHECK(workq_add(q, "other") == 0);
    CHECK(t_run_until_starts(loop, r, "other", 1));
    CHECK(s_find(q, "hot") == NULL);
    workq_stats(q, &st);
    CHECK(st.keys == 1); /* "other", idle until its own interval passes */
    workq_destroy(&q);

    /* 8. Bounded length. */
    t_reset(r, 1);
    workq_opts_default(&o);
    o.max_len = 2;
    q = workq_new(loop, &o, t_reconcile, r);
    CHECK(workq_add(q, "a") == 0);
    CHECK(workq_add_after(q, "b", 1000) == 0);
    CHECK(workq_add(q, "c") == ERR_TOOBIG);
    CHECK(workq_add_after(q, "c", 10) == ERR_TOOBIG);
    CHECK(workq_add_rate_limited(q, "c") == ERR_TOOBIG);
    CHECK(workq_add(q, "a") == 0); /* already waiting */
    CHECK(workq_add(q, "b") == 0); /* moves from the heap, no new slot */
    workq_stats(q, &st);
    CHECK(st.rejected == 3 && st.depth == 2 && st.delayed == 0);
    int64_t tb = loop_clock_ms(); /* b became ready (moved from the heap) before this */
    t_spin(loop, 2);
    /* a is in flight: c fits now; an add of a while in flight takes a slot
     * (dirty). */
    CHECK(workq_add(q, "c") == 0);
    const item_t *bi = s_find(q, "b");
    int64_t ts0 = loop_clock_ms();
    workq_stats(q, &st);
    int64_t ts1 = loop_clock_ms();
    /* the oldest ready key is b, at the FIFO's head: its wait is exactly stats time minus its
     * ready time */
    CHECK(bi && q->qhead == bi && bi->ready_since <= tb);
    CHECK(st.in_flight == 1 && st.depth == 2 && bi && st.longest_wait_ms >= ts0 - bi->ready_since &&
          st.longest_wait_ms <= ts1 - bi->ready_since);
    CHECK(workq_add(q, "a") == ERR_TOOBIG);
    workq_destroy(&q);

    /* 9. Latency statistics and the observer. */
    t_reset(r, 0);
    workq_opts_default(&o);
    int64_t observed = -1;
    o.on_latency = t_latency;
    o.latency_arg = &observed;
    q = workq_new(loop, &o, t_reconcile, r);
    int64_t ta = loop_clock_ms();
    CHECK(workq_add(q, "lat") == 0);
    const item_t *lt = s_find(q, "lat");
    int64_t lat_ready = lt ? lt->ready_since : -1; /* the item is freed once done */
    CHECK(lt && lat_ready >= ta && lat_ready <= loop_clock_ms());
    CHECK(t_run_until_starts(loop, r, "lat", 1));
    workq_stats(q, &st);
    /* the latency is exactly its start minus when it became ready */
    CHECK(st.starts == 1 && st.latency_last_ms == r->first_start[0] - lat_ready &&
          st.latency_max_ms == st.latency_last_ms);
    CHECK(st.latency_sum_ms == st.latency_last_ms);
    CHECK(observed == st.latency_last_ms);
    workq_stats(NULL, &st);
    CHECK(st.starts == 0);
    CHECK(!workq_in_flight(NULL, "x") && !workq_pending(NULL, "x"));

    /* 10. Expectations: moved to the controller runtime (ctrl/expect.c), whose
     * self-test keeps these assertions. */
    workq_destroy(&q);

    /* 11. Error result from a sync reconcile: retried once after the backoff,
     * then forgotten. */
    t_reset(r, 3);
    q = workq_new(loop, NULL, t_reconcile, r);
    CHECK(workq_add(q, "e") == 0);
    CHECK(t_run_until_starts(loop, r, "e", 2));
    t_spin(loop, 3);
    CHECK(r->starts[0] == 2);
    CHECK(workq_num_requeues(q, "e") == 0);
    workq_stats(q, &st);
    CHECK(st.retries == 1 && st.keys == 0);
    workq_destroy(&q);

    /* 12. The urgent lane: urgent keys start before every ordinary key, FIFO among themselves;
     * a queued ordinary key made urgent moves into the lane, a delayed one too, one in flight goes
     * into the lane when done; dedup and one-at-a-time hold; the mark ends with the start. */
    t_reset(r, 1);
    q = workq_new(loop, NULL, t_reconcile, r); /* concurrency 1 */
    CHECK(workq_add_urgent(q, NULL) == ERR_INVAL);
    CHECK(workq_add(q, "busy") == 0);
    CHECK(t_run_until_starts(loop, r, "busy", 1));
    CHECK(workq_add(q, "o1") == 0);
    CHECK(workq_add(q, "o2") == 0);
    CHECK(workq_add(q, "o3") == 0);
    CHECK(workq_add_urgent(q, "u1") == 0);
    CHECK(workq_add_urgent(q, "o2") == 0); /* queued: into the lane, behind u1 */
    CHECK(workq_add_urgent(q, "u1") == 0); /* deduplicated, keeps its place */
    CHECK(workq_add_after(q, "d", 100000) == 0);
    CHECK(workq_add_urgent(q, "d") == 0); /* delayed: into the lane now */
    CHECK(workq_add_urgent(q, "busy") == 0); /* in flight: dirty, into the lane when done */
    CHECK(workq_add(q, "o1") == 0); /* an ordinary re-add does not move o1 */
    workq_stats(q, &st);
    CHECK(st.depth == 5 && st.delayed == 0 && st.in_flight == 1 && st.urgent_adds == 5);
    t_spin(loop, 3);
    CHECK(r->starts[t_idx(r, "busy")] == 1 && r->starts[t_idx(r, "u1")] == 0);
    CHECK(t_finish(q, r, "busy", workq_ok()) == 0);
    {
        static const char *const want[] = {"u1", "o2", "d", "busy", "o1", "o3"};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            int n = r->nlog;
            CHECK(t_run_until_starts(loop, r, want[i], want[i][0] == 'b' ? 2 : 1));
            CHECK(r->nlog == n + 1 && strcmp(r->names[r->order[n]], want[i]) == 0);
            CHECK(workq_urgent_start(q, want[i]) == (want[i][0] != 'o' || want[i][1] == '2'));
            CHECK(t_finish(q, r, want[i], workq_ok()) == 0);
        }
    }
    /* started: the mark is gone, an ordinary re-add queues at the tail again */
    CHECK(workq_add(q, "x") == 0);
    CHECK(t_run_until_starts(loop, r, "x", 1));
    CHECK(workq_add(q, "y") == 0);
    CHECK(workq_add(q, "busy") == 0);
    CHECK(t_finish(q, r, "x", workq_ok()) == 0);
    CHECK(t_run_until_starts(loop, r, "y", 1));
    CHECK(r->starts[t_idx(r, "busy")] == 2);
    CHECK(t_finish(q, r, "y", workq_ok()) == 0);
    CHECK(t_run_until_starts(loop, r, "busy", 3));
    CHECK(t_finish(q, r, "busy", workq_ok()) == 0);
    t_spin(loop, 3);
    CHECK(r->failed_concurrent == 0);
    workq_stats(q, &st);
    CHECK(st.depth == 0 && st.in_flight == 0 && st.keys == 0);
    workq_destroy(&q);

    /* Destroy with keys in every state cancels the timers. */
    t_reset(r, 1);
    q = workq_new(loop, NULL, t_reconcile, r);
    CHECK(workq_add(q, "run") == 0);
    t_spin(loop, 2);
    CHECK(workq_add(q, "queued") == 0);
    CHECK(workq_add_after(q, "delayed", 100000) == 0);
    CHECK(workq_add(q, "run") == 0);
    size_t timers = loop_timer_count(loop);
    CHECK(timers >= 1);
    workq_destroy(&q);
    CHECK(loop_timer_count(loop) == 0);

    loop_destroy(&loop);
    return SELFTEST_RESULT("workq", verbose);
}

#endif /* RF_SELFTEST */
