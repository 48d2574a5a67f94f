/*
 * benchlib: what the fleet benchmarks (bench-rayjob, bench-rayservice) share beyond
 * tests/integration/replicas/fleet.h (which starts kubesim and the rayfleet processes and reads
 * their RSS and CPU): percentiles, peak RSS per process kind, and the raw baselines' driver: a
 * queue of objects whose next request is due now (a FIFO ring) or later (a min-heap of wake-up
 * times), each object in at most one of them at a time, plus the JSON bodies every raw client
 * writes (compact dumps, Events like the services' recorders).
 *
 * Included by single-file benchmark programs, so the helpers are file-static (unused ones are
 * allowed). Not thread-safe; no I/O.
 */
#ifndef RF_BENCHLIB_H
#define RF_BENCHLIB_H

#include "../tests/integration/replicas/fleet.h"

#define BENCH_FN static __attribute__((unused))

BENCH_FN int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median and 99th percentile of v[0..n) (sorted in place); -1 each when n is 0. */
BENCH_FN void bench_pcts(int64_t *v, size_t n, double *p50, double *p99)
{
    if (n == 0) {
        *p50 = *p99 = -1;
        return;
    }
    qsort(v, n, sizeof(*v), bench_cmp_i64);
    size_t k = (n * 99) / 100;
    *p50 = (double)v[n / 2];
    *p99 = (double)v[k < n ? k : n - 1];
}

/* Raises the peak VmRSS per process kind in *peak to the sample sp (CPU fields untouched). */
BENCH_FN void bench_peak(fleet_split_t *peak, const fleet_split_t *sp)
{
#define BENCH_PEAK(x)                                                                              \
    if (sp->x > peak->x)                                                                           \
    peak->x = sp->x
    BENCH_PEAK(rss_bus);
    BENCH_PEAK(rss_watcher);
    BENCH_PEAK(rss_sched);
    BENCH_PEAK(rss_submitter);
    BENCH_PEAK(rss_serveup);
    BENCH_PEAK(rss_kubesim);
#undef BENCH_PEAK
}

/* CPU seconds spent between samples a and b, per process kind, into *out (RSS fields untouched). */
BENCH_FN void bench_cpu_delta(const fleet_split_t *a, const fleet_split_t *b, fleet_split_t *out)
{
    out->cpu_bus = b->cpu_bus - a->cpu_bus;
    out->cpu_watcher = b->cpu_watcher - a->cpu_watcher;
    out->cpu_sched = b->cpu_sched - a->cpu_sched;
    out->cpu_submitter = b->cpu_submitter - a->cpu_submitter;
    out->cpu_serveup = b->cpu_serveup - a->cpu_serveup;
    out->cpu_kubesim = b->cpu_kubesim - a->cpu_kubesim;
}

/* ---- the raw baselines' driver ----------------------------------------------------------- */

/* A timed wake-up of object i. */
typedef struct {
    double at; /* monotonic seconds (fleet_now()) */
    size_t i; /* object */
} bench_wake_t;

/* Objects 0..n-1, each due now (ring), later (heap) or neither (a request in flight, done). */
typedef struct {
    size_t n; /* objects */
    size_t *ready; /* FIFO ring of objects with a request to send */
    size_t rhead, rlen; /* its head and length */
    bench_wake_t *heap; /* min-heap of waiting objects */
    size_t hlen; /* its length */
} bench_queue_t;

/* Returns 0 or -1 (out of memory; bench_queue_free() either way). */
BENCH_FN int bench_queue_init(bench_queue_t *q, size_t n)
{
    memset(q, 0, sizeof(*q));
    q->n = n;
    q->ready = calloc(n ? n : 1, sizeof(*q->ready));
    q->heap = calloc(n ? n : 1, sizeof(*q->heap));
    return q->ready && q->heap ? 0 : -1;
}

BENCH_FN void bench_queue_free(bench_queue_t *q)
{
    free(q->ready);
    free(q->heap);
    memset(q, 0, sizeof(*q));
}

/* Object i's next request is due now. */
BENCH_FN void bench_ready(bench_queue_t *q, size_t i)
{
    q->ready[(q->rhead + q->rlen++) % q->n] = i;
}

/* Object i's next request is due in ms milliseconds. */
BENCH_FN void bench_wait(bench_queue_t *q, size_t i, int ms)
{
    size_t k = q->hlen++;
    q->heap[k] = (bench_wake_t){fleet_now() + ms / 1000.0, i};
    while (k > 0 && q->heap[(k - 1) / 2].at > q->heap[k].at) {
        bench_wake_t t = q->heap[k];
        q->heap[k] = q->heap[(k - 1) / 2];
        q->heap[(k - 1) / 2] = t;
        k = (k - 1) / 2;
    }
}

/* Moves the wake-ups that are due into the ring. */
BENCH_FN void bench_wake_due(bench_queue_t *q)
{
    double now = fleet_now();
    while (q->hlen > 0 && q->heap[0].at <= now) {
        bench_ready(q, q->heap[0].i);
        q->heap[0] = q->heap[--q->hlen];
        size_t k = 0;
        for (;;) {
            size_t l = 2 * k + 1, m = k;
            if (l < q->hlen && q->heap[l].at < q->heap[m].at)
                m = l;
            if (l + 1 < q->hlen && q->heap[l + 1].at < q->heap[m].at)
                m = l + 1;
            if (m == k)
                break;
            bench_wake_t t = q->heap[k];
            q->heap[k] = q->heap[m];
            q->heap[m] = t;
            k = m;
        }
    }
}

/* Takes the next due object into *i; false when none is due. */
BENCH_FN bool bench_next(bench_queue_t *q, size_t *i)
{
    if (q->rlen == 0)
        return false;
    *i = q->ready[q->rhead];
    q->rhead = (q->rhead + 1) % q->n;
    q->rlen--;
    return true;
}

/* ---- request bodies ---------------------------------------------------------------------- */

/* Compact JSON text of o (malloc'd; NULL when o is NULL), o released. */
/* Starts the raw driver's request `method url` with `body` (borrowed until done: NULL none) as
 * content type `ctype`, JSON accepted. Returns http_request()'s result (< 0: not started). */
BENCH_FN int64_t bench_send(http_client_t *http, const char *method, const char *url,
                            const char *ctype, const char *body, http_done_fn *done, void *arg)
{
    http_header_t h[] = {{"Content-Type", ctype}, {"Accept", "application/json"}};
    http_request_t req = {.method = method,
                          .url = url,
                          .headers = h,
                          .n_headers = 2,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .body_borrowed = true,
                          .on_done = done,
                          .arg = arg};
    return http_request(http, &req);
}

BENCH_FN char *bench_dump(json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

/* An Event `name` (unique per object and step) about ray.io/v1 `kind` `obj` (uid), like the
 * services' recorders (malloc'd text). */
BENCH_FN char *bench_event(const char *name, const char *kind, const char *obj, const char *uid,
                           const char *reason, const char *component)
{
    return bench_dump(json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:s}, s:i}",
        "apiVersion", "v1", "kind", "Event", "metadata", "name", name, "namespace", FLEET_NS,
        "involvedObject", "apiVersion", "ray.io/v1", "kind", kind, "name", obj, "namespace",
        FLEET_NS, "uid", uid, "reason", reason, "message", reason, "type", "Normal", "source",
        "component", component, "count", 1));
}

#endif
