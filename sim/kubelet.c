/*
 * kubelet: simulated nodes, scheduler and kubelets. See kubelet.h for the model.
 */
#include "kubelet.h"

#include "buf.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "raysubmit.h"
#include "rftime.h"
#include "storage.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_TS_LEN 40 /* bytes of an RFC 3339 timestamp with microseconds */
#define S_MSG_LEN 512 /* bytes of a condition / waiting message */
#define S_HASH_MIN 1024 /* initial pod hash buckets */
#define S_LEASE_NS "kube-node-lease" /* namespace of node Leases */
#define S_VERSION "v1.32.0-kubesim" /* nodeInfo kubelet version */

/* What a heap item does when due. */
enum {
    A_NONE = 0, /* nothing scheduled */
    A_SCHEDULE, /* pod: enter the scheduling queue */
    A_ACCEPT, /* pod: kubelet accepts it (Pending, ContainerCreating) */
    A_START, /* pod: containers start (or the image pull fails) */
    A_READY, /* pod: readiness passes */
    A_EXIT, /* pod: the program exits with its scripted code */
    A_CRASH, /* pod: the first container crashes / is OOM killed */
    A_PULLBACKOFF, /* pod: ErrImagePull -> ImagePullBackOff */
    A_FINAL, /* pod: final delete after graceful termination */
    A_NODEINIT, /* node: write the initial status */
    A_LEASE, /* node: renew the Lease */
    A_EVICT, /* node: lost long enough, delete its pods */
    A_NODEGONE, /* node: the Node was deleted, force-delete its pods */
    A_SUBSTEP, /* submitter: the next step of its script */
    A_CEXIT, /* container (kcont_t): its scripted exit */
    A_CSTART /* container (kcont_t): started again after its back-off */
};

/* What a heap item is embedded in. */
enum { HK_POD = 0, HK_NODE, HK_SUB, HK_CONT };

/* Pod stages. */
enum {
    PS_NEW = 0, /* no node yet (waiting for, or in, the scheduling queue) */
    PS_BOUND, /* spec.nodeName set, kubelet has not written status */
    PS_ACCEPTED, /* Pending, containers being created */
    PS_INIT, /* Pending, a scripted init container runs (init_at) */
    PS_PULLFAIL, /* Pending, first container cannot pull its image */
    PS_RUNNING, /* Running, not ready */
    PS_READY, /* Running and Ready */
    PS_BACKOFF, /* Running, first container in CrashLoopBackOff */
    PS_DONE /* Succeeded or Failed */
};

/* Container-state kinds of the first container. */
enum { CS_WAITING = 0, CS_RUNNING, CS_TERMINATED };

/* A heap entry, embedded first in pods and nodes. */
typedef struct {
    int64_t due; /* when the action is due (store clock, ms) */
    uint64_t seq; /* insertion order, breaks ties */
    size_t idx; /* position in the heap, SIZE_MAX when not queued */
    int action; /* A_* */
    int kind; /* HK_*: the owner is a kpod_t, knode_t or ksub_t */
} hitem_t;

typedef struct knode {
    hitem_t h; /* lease / eviction work */
    char name[OBJSTORE_NAME_MAX]; /* Node name */
    char ip[32]; /* InternalIP */
    int64_t cpu, mem, pods; /* allocatable, milli-units */
    int64_t ucpu, umem, upods; /* allocated to bound non-terminal pods, milli-units */
    json_t *alloc; /* status.allocatable (reference): extended resources are looked up here */
    json_t *labels; /* metadata.labels (reference) */
    bool lost; /* kubelet_fail_node() in effect */
    bool gone; /* the Node object was deleted */
    bool lease_off; /* leases unavailable for this node */
    bool lease_made; /* the Lease object exists */
} knode_t;

typedef struct kpod {
    hitem_t h; /* next stage */
    struct kpod *hnext; /* hash chain */
    char key[KUBELET_NAME_MAX]; /* "ns/name" */
    size_t nslen; /* length of the namespace part of key */
    char uid[48]; /* metadata.uid */
    knode_t *node; /* bound node or NULL */
    bool counted; /* requests are charged to node */
    int64_t cpu, mem; /* requests, milli-units */
    char ext[64]; /* the first extended resource requested (nvidia.com/gpu), "" = none */
    int64_t ext_qty; /* its request, milli-units */
    uint32_t ip; /* pod IP offset in the CIDR, 0 = none */
    int stage; /* PS_* */
    bool deleting; /* deletionTimestamp seen */
    bool queued; /* in the scheduling queue */
    bool dead; /* deleted while queued: freed by the scheduler pass */
    bool restart_always; /* restartPolicy Always */
    bool on_failure; /* restartPolicy OnFailure */
    bool job; /* owned by a Job */
    bool has_run; /* exits after run_ms */
    int64_t run_ms; /* run time */
    int exit_code; /* scripted exit code */
    int fail_ann; /* KUBELET_FAIL_* from the annotation, 0 = none */
    int inject; /* pending kubelet_inject() kind, 0 = none */
    int pull_fail; /* this start fails to pull */
    bool succeeded; /* PS_DONE: Succeeded (else Failed) */
    bool node_notready; /* node lost: Ready False */
    bool probe_fail; /* a readiness probe fails (its Serve proxy is down): Ready False */
    int restarts; /* first container's restartCount */
    int cstate; /* CS_* of the first container */
    char creason[32]; /* its waiting/terminated reason */
    char cmsg[S_MSG_LEN]; /* its waiting message */
    int cexit; /* its terminated exit code */
    bool has_last; /* lastState.terminated present */
    int last_exit; /* lastState exit code */
    char last_reason[32]; /* lastState reason */
    int64_t last_start, last_end; /* lastState times */
    int64_t t_sched, t_accept, t_start, t_ready, t_end; /* stage times */
    uint64_t unsched_hash; /* hash of the last Unschedulable message written, 0 = none */
    char cid[65]; /* container id hex */
    int sub_idx; /* index of the submitter container (raysubmit.h), -1 none */
    struct ksub *sub; /* its run while it runs, else NULL */
    bool sub_done; /* a non-first submitter container has terminated */
    int sub_exit; /* its exit code */
    int64_t sub_start, sub_end; /* its start and finish times */
    bool sub_on_failure; /* the sidecar submitter has restartPolicy OnFailure (K8s 1.35
                            ContainerRestartRules): a non-zero exit restarts it */
    int sub_restarts; /* its restartCount */
    bool sub_has_last; /* its lastState.terminated is set */
    int sub_last_exit; /* ... exit code */
    int64_t sub_last_start, sub_last_end; /* ... times */
    struct kcont **cx; /* containers with a scripted exit */
    size_t ncx; /* their count */
    int init_at; /* PS_INIT (or PS_DONE after it failed): index of that init container, else -1 */
    int64_t t_init; /* start of the init phase */
} kpod_t;

/* A container other than the first (or a native sidecar: an init container with restartPolicy
 * Always) with a scripted exit (KUBELET_ANN_EXIT_PREFIX<name>): its own state and heap item. */
typedef struct kcont {
    hitem_t h; /* its exit or restart */
    struct kpod *pod; /* the pod */
    char name[64]; /* container name */
    bool sidecar; /* an init container with restartPolicy Always */
    bool init; /* a regular init container (runs before the containers, in order) */
    int iidx; /* its index in spec.initContainers (init and sidecar), else -1 */
    bool done; /* init: exited 0 */
    int code; /* exit code */
    int64_t after_ms; /* run time from each start */
    bool active; /* started once (the pod's containers started) */
    int state; /* CS_RUNNING, CS_WAITING (CrashLoopBackOff) or CS_TERMINATED */
    char msg[S_MSG_LEN]; /* its CrashLoopBackOff message */
    int64_t start, end; /* current start; termination time */
    int exit; /* terminated exit code */
    int restarts; /* restartCount */
    bool has_last; /* lastState.terminated set */
    int last_exit; /* ... exit code */
    int64_t last_start, last_end; /* ... times */
} kcont_t;

/* A running submitter container: its own heap item, apart from the pod's stages. */
typedef struct ksub {
    hitem_t h; /* next step */
    kpod_t *pod; /* the pod it runs in */
    raysubmit_t *run; /* the script's state */
} ksub_t;

struct kubelet {
    loop_t *loop; /* event loop or NULL */
    objstore_t *store; /* the objects */
    kubelet_opts_t o; /* options (strings not kept) */
    char prefix[128]; /* node name prefix */
    int64_t def_cpu, def_mem, def_pods; /* default node capacity (milli) */
    char def_cpu_s[32], def_mem_s[32], def_pods_s[32]; /* same, as quantities */
    objstore_res_t *rpods, *rnodes, *rleases; /* resources (leases may be NULL) */
    objstore_watch_t *wpods, *wnodes, *wpvcs; /* watches (wpvcs: claims, when served) */
    knode_t **nodes; /* known nodes */
    size_t nnodes, capnodes; /* count, allocated */
    size_t cursor; /* first-fit start */
    kpod_t **buckets; /* pod hash */
    size_t nbuckets, npods; /* buckets, pods */
    hitem_t **heap; /* due work */
    size_t nheap, capheap; /* count, allocated */
    uint64_t seq; /* heap tie breaker */
    kpod_t **queue; /* pods to schedule */
    size_t nqueue, capqueue; /* count, allocated */
    size_t untried; /* queue[untried..] have never been tried */
    bool retry_all; /* capacity changed: retry the whole queue */
    uint32_t ip_base; /* network address of the pod CIDR */
    uint32_t ip_size; /* addresses in it */
    uint32_t ip_next; /* next offset to try */
    uint8_t *ip_used; /* bitmap of offsets in use */
    uint64_t rng; /* xorshift state */
    int64_t timer; /* loop timer id, 0 = none */
    int64_t timer_due; /* store time it was armed for */
    bool in_tick; /* kubelet_tick running */
    raysim_t *ray; /* the Ray side submitters call, or NULL */
    size_t nsubs; /* submitters running */
    json_t *probe_dirty; /* "ns/name" -> true: readiness changed, status to write */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t s_rand(kubelet_t *k)
{
    uint64_t x = k->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    k->rng = x;
    return x;
}

static int64_t s_jitter(kubelet_t *k, int64_t delay)
{
    if (k->o.jitter_ms > 0)
        delay += (int64_t)(s_rand(k) % (uint64_t)k->o.jitter_ms);
    return delay;
}

static int64_t s_now(const kubelet_t *k)
{
    return objstore_now_ms(k->store);
}

/* Formats ms since the epoch as RFC 3339 (seconds, or microseconds when micro). */
static void s_ts(int64_t ms, bool micro, char *buf, size_t n)
{
    rftime_format(ms, micro ? RFTIME_MICRO : RFTIME_SEC, buf, n);
}

static json_t *s_tsj(int64_t ms)
{
    char b[S_TS_LEN];
    s_ts(ms, false, b, sizeof(b));
    return json_string(b);
}

static uint64_t s_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

int kubelet_parse_quantity(const char *s, int64_t *milli)
{
    if (!s || !milli || !*s)
        return ERR_INVAL;
    const char *p = s;
    if (*p == '+')
        p++;
    if (!isdigit((unsigned char)*p) && *p != '.')
        return ERR_INVAL;
    long double v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (*p == '.') {
        p++;
        long double scale = 0.1L;
        while (isdigit((unsigned char)*p)) {
            v += (*p++ - '0') * scale;
            scale /= 10;
            digits++;
        }
    }
    if (!digits)
        return ERR_INVAL;
    long double mult = 1;
    static const struct {
        const char *suf;
        long double m;
    } sufs[] = {{"Ki", 1024.0L},
                {"Mi", 1048576.0L},
                {"Gi", 1073741824.0L},
                {"Ti", 1099511627776.0L},
                {"Pi", 1125899906842624.0L},
                {"Ei", 1152921504606846976.0L},
                {"m", 1e-3L},
                {"k", 1e3L},
                {"M", 1e6L},
                {"G", 1e9L},
                {"T", 1e12L},
                {"P", 1e15L},
                {"E", 1e18L},
                {"", 1}};
    if ((*p == 'e' || *p == 'E') && (isdigit((unsigned char)p[1]) || p[1] == '-' || p[1] == '+')) {
        char *end = NULL;
        long e = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || e > 30 || e < -30)
            return ERR_INVAL;
        mult = powl(10.0L, (long double)e);
        p = end;
    } else {
        size_t i;
        for (i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
            if (strcmp(p, sufs[i].suf) == 0)
                break;
        if (i == sizeof(sufs) / sizeof(sufs[0]))
            return ERR_INVAL;
        mult = sufs[i].m;
    }
    long double r = ceill(v * mult * 1000.0L - 1e-9L);
    if (r > 9.0e18L)
        return ERR_TOOBIG;
    *milli = r < 0 ? 0 : (int64_t)r;
    return 0;
}

/* A quantity field of an object, in milli-units (`def` when missing or malformed). */
static int64_t s_qty(const json_t *v, int64_t def)
{
    int64_t m = def;
    if (json_is_string(v)) {
        if (kubelet_parse_quantity(json_string_value(v), &m) < 0)
            m = def;
    } else if (json_is_integer(v)) {
        m = (int64_t)json_integer_value(v) * 1000;
    } else if (json_is_real(v)) {
        m = (int64_t)ceil(json_real_value(v) * 1000.0);
    }
    return m;
}

/* ---- heap ------------------------------------------------------------------------------- */

static bool s_before(const hitem_t *a, const hitem_t *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void s_heap_swap(kubelet_t *k, size_t i, size_t j)
{
    hitem_t *t = k->heap[i];
    k->heap[i] = k->heap[j];
    k->heap[j] = t;
    k->heap[i]->idx = i;
    k->heap[j]->idx = j;
}

static void s_heap_up(kubelet_t *k, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!s_before(k->heap[i], k->heap[p]))
            break;
        s_heap_swap(k, i, p);
        i = p;
    }
}

static void s_heap_down(kubelet_t *k, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k->nheap && s_before(k->heap[l], k->heap[m]))
            m = l;
        if (r < k->nheap && s_before(k->heap[r], k->heap[m]))
            m = r;
        if (m == i)
            break;
        s_heap_swap(k, i, m);
        i = m;
    }
}

static void s_heap_remove(kubelet_t *k, hitem_t *h)
{
    if (h->idx == SIZE_MAX)
        return;
    size_t i = h->idx;
    k->nheap--;
    if (i != k->nheap) {
        k->heap[i] = k->heap[k->nheap];
        k->heap[i]->idx = i;
        s_heap_down(k, i);
        s_heap_up(k, i);
    }
    h->idx = SIZE_MAX;
    h->action = A_NONE;
}

static void s_arm(kubelet_t *k);

/* Schedules `action` for item h at absolute time `due`, replacing what it had. */
static int s_sched_at(kubelet_t *k, hitem_t *h, int action, int64_t due)
{
    s_heap_remove(k, h);
    if (k->nheap == k->capheap) {
        size_t n = k->capheap ? k->capheap * 2 : 1024;
        hitem_t **p = realloc(k->heap, n * sizeof(*p));
        if (!p)
            return ERR_NOMEM;
        k->heap = p;
        k->capheap = n;
    }
    h->due = due;
    h->seq = ++k->seq;
    h->action = action;
    h->idx = k->nheap;
    k->heap[k->nheap++] = h;
    s_heap_up(k, h->idx);
    s_arm(k);
    return 0;
}

static int s_sched_in(kubelet_t *k, hitem_t *h, int action, int64_t delay)
{
    return s_sched_at(k, h, action, s_now(k) + (delay > 0 ? delay : 0));
}

/* ---- the timer -------------------------------------------------------------------------- */

static int64_t s_on_timer(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    kubelet_t *k = arg;
    k->timer = 0;
    kubelet_tick(k);
    s_arm(k);
    return LOOP_TIMER_DONE;
}

static bool s_sched_work(const kubelet_t *k)
{
    return k->retry_all || k->untried < k->nqueue || json_object_size(k->probe_dirty) > 0;
}

/* Arms the loop timer for the earliest due work (no-op inside a tick: it re-arms at the end). */
static void s_arm(kubelet_t *k)
{
    if (!k->loop || k->in_tick)
        return;
    int64_t due;
    if (s_sched_work(k))
        due = s_now(k);
    else if (k->nheap)
        due = k->heap[0]->due;
    else
        return;
    if (k->timer > 0 && k->timer_due <= due)
        return;
    if (k->timer > 0)
        loop_cancel_timer(k->loop, k->timer);
    int64_t delay = due - s_now(k);
    int64_t id = loop_add_timer(k->loop, delay > 0 ? delay : 0, s_on_timer, k);
    k->timer = id > 0 ? id : 0;
    k->timer_due = due;
}

/* ---- pod map ---------------------------------------------------------------------------- */

static size_t s_bucket(const kubelet_t *k, const char *key)
{
    return (size_t)(s_hash_str(key) & (k->nbuckets - 1));
}

static kpod_t *s_pod_find(const kubelet_t *k, const char *key)
{
    for (kpod_t *p = k->buckets[s_bucket(k, key)]; p; p = p->hnext)
        if (strcmp(p->key, key) == 0)
            return p;
    return NULL;
}

static int s_pod_insert(kubelet_t *k, kpod_t *p)
{
    if (k->npods + 1 > k->nbuckets) {
        size_t n = k->nbuckets * 2;
        kpod_t **b = calloc(n, sizeof(*b));
        if (!b)
            return ERR_NOMEM;
        for (size_t i = 0; i < k->nbuckets; i++) {
            kpod_t *q = k->buckets[i];
            while (q) {
                kpod_t *nx = q->hnext;
                size_t j = (size_t)(s_hash_str(q->key) & (n - 1));
                q->hnext = b[j];
                b[j] = q;
                q = nx;
            }
        }
        free(k->buckets);
        k->buckets = b;
        k->nbuckets = n;
    }
    size_t i = s_bucket(k, p->key);
    p->hnext = k->buckets[i];
    k->buckets[i] = p;
    k->npods++;
    return 0;
}

static void s_pod_unlink(kubelet_t *k, kpod_t *p)
{
    kpod_t **pp = &k->buckets[s_bucket(k, p->key)];
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = p->hnext;
        k->npods--;
    }
    p->hnext = NULL;
}

/* ---- IPs -------------------------------------------------------------------------------- */

static int s_parse_cidr(kubelet_t *k, const char *cidr)
{
    unsigned a, b, c, d, bits;
    char tail;
    /* sscanf is banned: parse by hand. */
    const char *p = cidr;
    unsigned v[5];
    for (int i = 0; i < 5; i++) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return ERR_INVAL;
        unsigned long x = strtoul(p, &end, 10);
        if (x > 255)
            return ERR_INVAL;
        v[i] = (unsigned)x;
        p = end;
        tail = *p;
        if (i < 3 && tail != '.')
            return ERR_INVAL;
        if (i == 3 && tail != '/')
            return ERR_INVAL;
        if (i == 4 && tail != '\0')
            return ERR_INVAL;
        if (i < 4)
            p++;
    }
    a = v[0], b = v[1], c = v[2], d = v[3], bits = v[4];
    if (bits < KUBELET_POD_CIDR_MIN_BITS || bits > 30)
        return ERR_INVAL;
    uint32_t addr = (a << 24) | (b << 16) | (c << 8) | d;
    uint32_t mask = bits ? ~((1u << (32 - bits)) - 1) : 0;
    k->ip_base = addr & mask;
    k->ip_size = 1u << (32 - bits);
    k->ip_used = calloc(k->ip_size / 8 + 1, 1);
    if (!k->ip_used)
        return ERR_NOMEM;
    k->ip_next = 2; /* .0 is the network, .1 the gateway (kwok hands out from .1's successor) */
    return 0;
}

static bool s_ip_isset(const kubelet_t *k, uint32_t off)
{
    return off < k->ip_size && (k->ip_used[off / 8] & (1u << (off % 8)));
}

static void s_ip_mark(kubelet_t *k, uint32_t off, bool used)
{
    if (off >= k->ip_size)
        return;
    if (used)
        k->ip_used[off / 8] |= (uint8_t)(1u << (off % 8));
    else
        k->ip_used[off / 8] &= (uint8_t) ~(1u << (off % 8));
}

/* Allocates the next free address; 0 when the CIDR is exhausted. */
static uint32_t s_ip_alloc(kubelet_t *k)
{
    for (uint32_t n = 0; n < k->ip_size; n++) {
        uint32_t off = k->ip_next;
        k->ip_next = k->ip_next + 1 >= k->ip_size - 1 ? 2 : k->ip_next + 1;
        if (off >= 2 && off < k->ip_size - 1 && !s_ip_isset(k, off)) {
            s_ip_mark(k, off, true);
            return off;
        }
    }
    return 0;
}

static void s_ip_str(const kubelet_t *k, uint32_t off, char *buf, size_t n)
{
    uint32_t a = k->ip_base + off;
    snprintf(buf, n, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int s_ip_parse(const kubelet_t *k, const char *s, uint32_t *off)
{
    uint32_t v = 0;
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return ERR_INVAL;
        unsigned long x = strtoul(p, &end, 10);
        if (x > 255 || (i < 3 && *end != '.') || (i == 3 && *end))
            return ERR_INVAL;
        v = (v << 8) | (uint32_t)x;
        p = end + (i < 3);
    }
    if (v < k->ip_base || v - k->ip_base >= k->ip_size)
        return ERR_NOTFOUND;
    *off = v - k->ip_base;
    return 0;
}

/* ---- nodes ------------------------------------------------------------------------------ */

static knode_t *s_node_find(const kubelet_t *k, const char *name)
{
    for (size_t i = 0; i < k->nnodes; i++)
        if (strcmp(k->nodes[i]->name, name) == 0)
            return k->nodes[i];
    return NULL;
}

static void s_charge(kubelet_t *k, kpod_t *p, bool on)
{
    if (!p->node || p->counted == on)
        return;
    int64_t sign = on ? 1 : -1;
    p->node->ucpu += sign * p->cpu;
    p->node->umem += sign * p->mem;
    p->node->upods += sign * 1000;
    p->counted = on;
    if (!on)
        k->retry_all = true;
}

static bool s_ready_true(const json_t *node)
{
    json_t *conds = jx_get(node, "status.conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (strcmp(jx_str(c, "type", ""), "Ready") == 0)
            return strcmp(jx_str(c, "status", ""), "True") == 0;
    }
    return false;
}

static void s_node_read(kubelet_t *k, knode_t *n, const json_t *obj)
{
    const json_t *alloc = jx_get(obj, "status.allocatable");
    if (!alloc)
        alloc = jx_get(obj, "status.capacity");
    n->cpu = s_qty(json_object_get(alloc, "cpu"), k->def_cpu);
    n->mem = s_qty(json_object_get(alloc, "memory"), k->def_mem);
    n->pods = s_qty(json_object_get(alloc, "pods"), k->def_pods);
    json_incref((json_t *)alloc);
    json_decref(n->alloc);
    n->alloc = (json_t *)alloc;
    json_t *labels = jx_get(obj, "metadata.labels");
    json_incref(labels);
    json_decref(n->labels);
    n->labels = labels;
    json_t *addrs = jx_get(obj, "status.addresses");
    size_t i;
    json_t *a;
    json_array_foreach(addrs, i, a)
    {
        if (strcmp(jx_str(a, "type", ""), "InternalIP") == 0)
            snprintf(n->ip, sizeof(n->ip), "%s", jx_str(a, "address", ""));
    }
}

/* Resource `name` is an extended resource (Kubernetes' IsExtendedResourceName): fully qualified
 * outside the kubernetes.io domain (nvidia.com/gpu, google.com/tpu), not a requests.* quota
 * name. */
static bool s_extended(const char *name)
{
    return strchr(name, '/') && !strstr(name, "kubernetes.io/") &&
           strncmp(name, "requests.", 9) != 0;
}

/* The node's status (initial or after a transition). */
static json_t *s_node_status(kubelet_t *k, knode_t *n, const json_t *old)
{
    char ts[S_TS_LEN];
    s_ts(s_now(k), false, ts, sizeof(ts));
    char cpu[32], mem[32], pods[32];
    const json_t *alloc = jx_get(old, "status.allocatable");
    snprintf(cpu, sizeof(cpu), "%s", jx_str(alloc, "cpu", k->def_cpu_s));
    snprintf(mem, sizeof(mem), "%s", jx_str(alloc, "memory", k->def_mem_s));
    snprintf(pods, sizeof(pods), "%s", jx_str(alloc, "pods", k->def_pods_s));
    const char *st = n->lost ? "Unknown" : "False";
    const char *why = n->lost ? "NodeStatusUnknown" : NULL;
    const char *msg = "Kubelet stopped posting node status.";
    json_t *conds = json_array();
    static const char *const types[] = {"MemoryPressure", "DiskPressure", "PIDPressure"};
    static const char *const okr[] = {"KubeletHasSufficientMemory", "KubeletHasNoDiskPressure",
                                      "KubeletHasSufficientPID"};
    static const char *const okm[] = {"kubelet has sufficient memory available",
                                      "kubelet has no disk pressure",
                                      "kubelet has sufficient PID available"};
    for (int i = 0; i < 3; i++)
        json_array_append_new(conds,
                              json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", types[i], "status", st,
                                        "reason", why ? why : okr[i], "message", why ? msg : okm[i],
                                        "lastHeartbeatTime", ts, "lastTransitionTime", ts));
    json_array_append_new(conds, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", "Ready", "status",
                                           n->lost ? "Unknown" : "True", "reason",
                                           why ? why : "KubeletReady", "message",
                                           why ? msg : "kubelet is posting ready status",
                                           "lastHeartbeatTime", ts, "lastTransitionTime", ts));
    json_t *cap = json_pack("{s:s,s:s,s:s,s:s}", "cpu", cpu, "memory", mem, "pods", pods,
                            "ephemeral-storage", "1Ti");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)alloc, key, v) /* extended resources a device plugin gave */
    {
        if (s_extended(key))
            json_object_set(cap, key, v);
    }
    json_t *s = json_pack(
        "{s:O,s:o,s:o,s:[{s:s,s:s},{s:s,s:s}],s:{s:{s:i}},s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,"
        "s:s,s:s},s:s}",
        "allocatable", cap, "capacity", cap, "conditions", conds, "addresses", "type", "InternalIP",
        "address", n->ip, "type", "Hostname", "address", n->name, "daemonEndpoints",
        "kubeletEndpoint", "Port", 10250, "nodeInfo", "architecture", "amd64", "bootID", "",
        "containerRuntimeVersion", "kubesim://1.0", "kernelVersion", "", "kubeletVersion",
        S_VERSION, "kubeProxyVersion", S_VERSION, "machineID", "", "operatingSystem", "linux",
        "osImage", "kubesim", "systemUUID", "", "phase", "Running");
    return s;
}

static int s_node_write_status(kubelet_t *k, knode_t *n)
{
    json_t *cur = NULL;
    objstore_status_t st;
    if (objstore_get(k->store, k->rnodes, NULL, n->name, &cur, &st) < 0)
        return ERR_NOTFOUND;
    json_t *obj = json_copy(cur);
    json_t *status = s_node_status(k, n, cur);
    json_decref(cur);
    if (!obj || !status) {
        json_decref(obj);
        json_decref(status);
        return ERR_NOMEM;
    }
    json_object_set_new(obj, "status", status);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    return objstore_update(k->store, k->rnodes, NULL, n->name, &obj, &uo, NULL, NULL, &st);
}

/* Sets or clears the unreachable taints (main endpoint write). */
static int s_node_taints(kubelet_t *k, knode_t *n, bool on)
{
    json_t *cur = NULL;
    objstore_status_t st;
    if (objstore_get(k->store, k->rnodes, NULL, n->name, &cur, &st) < 0)
        return ERR_NOTFOUND;
    json_t *obj = json_copy(cur);
    json_t *spec = json_copy(json_object_get(cur, "spec"));
    json_decref(cur);
    if (!spec)
        spec = json_object();
    if (!obj || !spec) {
        json_decref(obj);
        json_decref(spec);
        return ERR_NOMEM;
    }
    json_t *taints = json_array();
    json_t *old = json_object_get(spec, "taints");
    size_t i;
    json_t *t;
    json_array_foreach(old, i, t)
    {
        if (strcmp(jx_str(t, "key", ""), "node.kubernetes.io/unreachable") != 0)
            json_array_append(taints, t);
    }
    if (on) {
        char ts[S_TS_LEN];
        s_ts(s_now(k), false, ts, sizeof(ts));
        json_array_append_new(taints,
                              json_pack("{s:s,s:s,s:s}", "key", "node.kubernetes.io/unreachable",
                                        "effect", "NoSchedule", "timeAdded", ts));
        json_array_append_new(taints,
                              json_pack("{s:s,s:s,s:s}", "key", "node.kubernetes.io/unreachable",
                                        "effect", "NoExecute", "timeAdded", ts));
    }
    if (json_array_size(taints))
        json_object_set_new(spec, "taints", taints);
    else {
        json_decref(taints);
        json_object_del(spec, "taints");
    }
    json_object_set_new(obj, "spec", spec);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    return objstore_update(k->store, k->rnodes, NULL, n->name, &obj, &uo, NULL, NULL, &st);
}

static int s_lease_renew(kubelet_t *k, knode_t *n)
{
    if (!k->rleases || n->lease_off || n->lost)
        return 0;
    char ts[S_TS_LEN];
    s_ts(s_now(k), true, ts, sizeof(ts));
    objstore_status_t st;
    if (!n->lease_made) {
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:i,s:s}}", "apiVersion",
                              "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
                              n->name, "namespace", S_LEASE_NS, "spec", "holderIdentity", n->name,
                              "leaseDurationSeconds", KUBELET_LEASE_DURATION_S, "renewTime", ts);
        int rc = objstore_create(k->store, k->rleases, S_LEASE_NS, &o, NULL, &st);
        if (rc == 0 || rc == ERR_EXISTS) {
            n->lease_made = true;
            if (rc == 0)
                return 1;
        } else {
            n->lease_off = true; /* no kube-node-lease namespace: no leases for this node */
            return 0;
        }
    }
    json_t *cur = NULL;
    if (objstore_get(k->store, k->rleases, S_LEASE_NS, n->name, &cur, &st) < 0) {
        n->lease_made = false;
        return 0;
    }
    json_t *obj = json_copy(cur);
    json_t *spec = json_copy(json_object_get(cur, "spec"));
    json_decref(cur);
    if (!obj || !spec) {
        json_decref(obj);
        json_decref(spec);
        return ERR_NOMEM;
    }
    json_object_set_new(spec, "renewTime", json_string(ts));
    json_object_set_new(obj, "spec", spec);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    return objstore_update(k->store, k->rleases, S_LEASE_NS, n->name, &obj, &uo, NULL, NULL, &st) ==
                   0
               ? 1
               : 0;
}

static knode_t *s_node_add(kubelet_t *k, const json_t *obj)
{
    if (k->nnodes == k->capnodes) {
        size_t c = k->capnodes ? k->capnodes * 2 : 64;
        knode_t **p = realloc(k->nodes, c * sizeof(*p));
        if (!p)
            return NULL;
        k->nodes = p;
        k->capnodes = c;
    }
    knode_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->h.idx = SIZE_MAX;
    n->h.kind = HK_NODE;
    snprintf(n->name, sizeof(n->name), "%s", jx_str(obj, "metadata.name", ""));
    snprintf(n->ip, sizeof(n->ip), "10.1.%zu.%zu", (k->nnodes / 250) % 250, k->nnodes % 250 + 1);
    s_node_read(k, n, obj);
    k->nodes[k->nnodes++] = n;
    k->retry_all = true;
    if (!s_ready_true(obj))
        s_sched_in(k, &n->h, A_NODEINIT, 0);
    else if (k->rleases && k->o.lease_ms > 0)
        s_sched_in(k, &n->h, A_LEASE, (int64_t)(s_rand(k) % (uint64_t)k->o.lease_ms));
    return n;
}

static void s_node_free(knode_t *n)
{
    if (!n)
        return;
    json_decref(n->labels);
    json_decref(n->alloc);
    free(n);
}

/* A claim changed (bound, created, deleted): pods waiting for their volumes are tried again. */
static int s_on_pvc(const objstore_event_t *ev, void *arg)
{
    (void)ev;
    kubelet_t *k = arg;
    if (k->nqueue) {
        k->retry_all = true;
        s_arm(k);
    }
    return 0;
}

static int s_on_node(const objstore_event_t *ev, void *arg)
{
    kubelet_t *k = arg;
    const char *name = jx_str(ev->obj, "metadata.name", "");
    knode_t *n = s_node_find(k, name);
    if (ev->type == OBJSTORE_DELETED) {
        if (n && !n->gone) {
            n->gone = true;
            s_sched_in(k, &n->h, A_NODEGONE, 0);
        }
        return 0;
    }
    if (!n) {
        if (!s_node_add(k, ev->obj))
            log_error("kubelet: out of memory adding node", "node", name, NULL);
        return 0;
    }
    int64_t cpu = n->cpu, mem = n->mem;
    json_t *alloc = json_incref(n->alloc);
    s_node_read(k, n, ev->obj);
    if (n->cpu > cpu || n->mem > mem || !json_equal(alloc, n->alloc))
        k->retry_all = true;
    json_decref(alloc);
    return 0;
}

/* ---- pods: reading ---------------------------------------------------------------------- */

/* max(sum over containers, max over init containers) of requests (limits when missing). */
static void s_requests(const json_t *pod, int64_t *cpu, int64_t *mem)
{
    int64_t sc = 0, sm = 0, ic = 0, im = 0;
    for (int pass = 0; pass < 2; pass++) {
        json_t *arr = jx_get(pod, pass ? "spec.initContainers" : "spec.containers");
        size_t i;
        json_t *c;
        json_array_foreach(arr, i, c)
        {
            json_t *req = jx_get(c, "resources.requests");
            json_t *lim = jx_get(c, "resources.limits");
            json_t *vc = json_object_get(req, "cpu");
            json_t *vm = json_object_get(req, "memory");
            if (!vc)
                vc = json_object_get(lim, "cpu");
            if (!vm)
                vm = json_object_get(lim, "memory");
            int64_t c1 = s_qty(vc, 0), m1 = s_qty(vm, 0);
            if (pass == 0) {
                sc += c1;
                sm += m1;
            } else {
                /* Sidecars (restartPolicy Always) add up like containers. */
                if (strcmp(jx_str(c, "restartPolicy", ""), "Always") == 0) {
                    sc += c1;
                    sm += m1;
                } else {
                    ic = c1 > ic ? c1 : ic;
                    im = m1 > im ? m1 : im;
                }
            }
        }
    }
    *cpu = sc > ic ? sc : ic;
    *mem = sm > im ? sm : im;
}

/* The first extended resource pod asks a positive amount of (requests, or limits, which the API
 * server copies into missing requests), summed over containers and maxed with init containers as
 * kube-scheduler does. Nodes are checked for it in their allocatable; SIMPLIFICATION: extended
 * resources are not charged per pod (kubesim's nodes have none, so a pod asking any fits no
 * node, "Insufficient nvidia.com/gpu"). */
static void s_ext_requests(const json_t *pod, char *name, size_t n, int64_t *qty)
{
    *name = 0;
    *qty = 0;
    for (int pass = 0; pass < 2; pass++) {
        json_t *arr = jx_get(pod, pass ? "spec.initContainers" : "spec.containers");
        size_t i;
        json_t *c;
        json_array_foreach(arr, i, c)
        {
            for (int r = 0; r < 2; r++) {
                const char *key;
                json_t *v;
                json_object_foreach(jx_get(c, r ? "resources.limits" : "resources.requests"), key,
                                    v)
                {
                    int64_t q = s_qty(v, 0);
                    if (!s_extended(key) || q <= 0 || (*name && strcmp(key, name) != 0))
                        continue;
                    if (!*name)
                        snprintf(name, n, "%s", key);
                    bool sum = pass == 0 || strcmp(jx_str(c, "restartPolicy", ""), "Always") == 0;
                    if (r && json_object_get(jx_get(c, "resources.requests"), key))
                        continue; /* the request wins over the limit */
                    *qty = sum ? *qty + q : (q > *qty ? q : *qty);
                }
            }
        }
    }
}

static bool s_owned_by_job(const json_t *pod)
{
    json_t *refs = jx_get(pod, "metadata.ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        if (strcmp(jx_str(r, "kind", ""), "Job") == 0 &&
            strncmp(jx_str(r, "apiVersion", ""), "batch/", 6) == 0)
            return true;
    }
    return false;
}

static const char *s_ann(const json_t *pod, const char *key)
{
    json_t *v = jx_getv(pod, "metadata", "annotations", key, NULL);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Whether a readiness probe of pod fails: its Serve proxy is down (RAYSIM_ANN_SERVE_PROXY) and a
 * container's readinessProbe checks the proxy's /-/healthz (KubeRay's RayService workers:
 * `wget ...:8000/-/healthz | grep success`, failureThreshold 1, so the first failure counts). */
static bool s_probe_fails(const json_t *pod)
{
    const char *down = s_ann(pod, RAYSIM_ANN_SERVE_PROXY);
    if (!down || strcmp(down, "down") != 0)
        return false;
    size_t i, j;
    json_t *c, *a;
    json_array_foreach(jx_get(pod, "spec.containers"), i, c)
    {
        json_t *rp = json_object_get(c, "readinessProbe");
        if (strstr(jx_str(rp, "httpGet.path", ""), "/-/healthz"))
            return true;
        json_array_foreach(jx_get(rp, "exec.command"), j, a)
        {
            if (json_is_string(a) && strstr(json_string_value(a), "/-/healthz"))
                return true;
        }
    }
    return false;
}

/* Whether init container c is a native sidecar (restartPolicy Always). */
static bool s_is_sidecar(const json_t *c)
{
    return strcmp(jx_str(c, "restartPolicy", ""), "Always") == 0;
}

int kubelet_set_exit(kubelet_t *k, const char *ns, const char *name, const char *container,
                     int code, double after_s)
{
    if (!k || !ns || !name || !container || !*container || code < 0 || code > 255 ||
        !(after_s >= 0 && after_s < 1e9))
        return ERR_INVAL;
    json_t *cur = NULL;
    objstore_status_t st;
    if (objstore_get(k->store, k->rpods, ns, name, &cur, &st) < 0)
        return ERR_NOTFOUND;
    bool ok = false;
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(cur, "spec.containers"), i, c)
    {
        if (strcmp(jx_str(c, "name", ""), container) == 0)
            ok = i > 0 || !jx_get(cur, "status.containerStatuses");
    }
    json_array_foreach(jx_get(cur, "spec.initContainers"), i, c)
    {
        if (strcmp(jx_str(c, "name", ""), container) == 0)
            ok = s_is_sidecar(c) || !jx_get(cur, "status.containerStatuses");
    }
    json_t *o = ok ? json_deep_copy(cur) : NULL;
    json_decref(cur);
    if (!ok)
        return ERR_INVAL;
    char key[256], val[64];
    snprintf(key, sizeof(key), "%s%s", KUBELET_ANN_EXIT_PREFIX, container);
    snprintf(val, sizeof(val), "%d@%g", code, after_s);
    json_t *ann = o ? jx_child_obj(jx_child_obj(o, "metadata"), "annotations") : NULL;
    if (!ann || json_object_set_new(ann, key, json_string(val)) != 0) {
        json_decref(o);
        return ERR_NOMEM;
    }
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    int rc = objstore_update(k->store, k->rpods, ns, name, &o, &uo, NULL, NULL, &st);
    json_decref(o);
    return rc < 0 ? (rc == ERR_NOTFOUND ? ERR_NOTFOUND : ERR_INVAL) : 0;
}

kubelet_fail_t kubelet_fail_parse(const char *s)
{
    if (!s)
        return 0;
    if (strcasecmp(s, "ImagePull") == 0)
        return KUBELET_FAIL_IMAGEPULL;
    if (strcasecmp(s, "Crash") == 0)
        return KUBELET_FAIL_CRASH;
    if (strcasecmp(s, "OOM") == 0)
        return KUBELET_FAIL_OOM;
    return 0;
}

/* Parses "<code>@<seconds>" (code 0..255, seconds a decimal >= 0). */
static bool s_exit_parse(const char *v, int *code, int64_t *ms)
{
    char *end = NULL;
    long c = v ? strtol(v, &end, 10) : -1;
    if (!v || end == v || *end != '@' || c < 0 || c > 255)
        return false;
    const char *sp = end + 1;
    double d = strtod(sp, &end);
    if (end == sp || *end || !(d >= 0 && d < 1e9))
        return false;
    *code = (int)c;
    *ms = (int64_t)(d * 1000.0);
    return true;
}

static void s_cx_free(kubelet_t *k, kpod_t *p)
{
    for (size_t i = 0; i < p->ncx; i++) {
        s_heap_remove(k, &p->cx[i]->h);
        free(p->cx[i]);
    }
    free(p->cx);
    p->cx = NULL;
    p->ncx = 0;
}

static kcont_t *s_cx_find(const kpod_t *p, const char *name)
{
    for (size_t i = 0; i < p->ncx; i++)
        if (strcmp(p->cx[i]->name, name) == 0)
            return p->cx[i];
    return NULL;
}

/* Reads the KUBELET_ANN_EXIT_PREFIX annotations of pod: the first container's becomes the
 * pod's scripted run (at creation only: `first`; KUBELET_ANN_EXIT_CODE / RUN_SECONDS win), any
 * other container's or native sidecar's a kcont_t; a changed one on a running container takes
 * effect from now. Returns whether the first container was scripted. */
static bool s_cx_sync(kubelet_t *k, kpod_t *p, const json_t *pod, bool first)
{
    bool scripted = false;
    const size_t plen = strlen(KUBELET_ANN_EXIT_PREFIX);
    const char *key;
    json_t *v;
    json_object_foreach(jx_get(pod, "metadata.annotations"), key, v)
    {
        int code;
        int64_t ms;
        if (strncmp(key, KUBELET_ANN_EXIT_PREFIX, plen) != 0 ||
            !s_exit_parse(json_string_value(v), &code, &ms))
            continue;
        const char *cn = key + plen;
        json_t *cs = jx_get(pod, "spec.containers");
        if (strcmp(jx_str(json_array_get(cs, 0), "name", ""), cn) == 0) {
            if (first && !s_ann(pod, KUBELET_ANN_RUN_SECONDS) &&
                !s_ann(pod, KUBELET_ANN_EXIT_CODE)) {
                p->has_run = scripted = true;
                p->run_ms = ms;
                p->exit_code = code;
            }
            continue;
        }
        bool known = false, sidecar = false, initc = false;
        int iidx = -1;
        size_t i;
        json_t *c;
        json_array_foreach(cs, i, c) known =
            known || (i > 0 && strcmp(jx_str(c, "name", ""), cn) == 0);
        json_array_foreach(jx_get(pod, "spec.initContainers"), i, c)
        {
            if (strcmp(jx_str(c, "name", ""), cn) == 0) {
                known = true;
                sidecar = s_is_sidecar(c);
                initc = !sidecar;
                iidx = (int)i;
            }
        }
        if (!known || strlen(cn) >= sizeof(((kcont_t *)0)->name) || p->ncx >= 64)
            continue;
        kcont_t *x = s_cx_find(p, cn);
        if (x && x->code == code && x->after_ms == ms)
            continue;
        if (!x) {
            kcont_t **nv = realloc(p->cx, (p->ncx + 1) * sizeof(*nv));
            x = nv ? calloc(1, sizeof(*x)) : NULL;
            if (nv)
                p->cx = nv;
            if (!x)
                continue;
            x->h.idx = SIZE_MAX;
            x->h.kind = HK_CONT;
            x->pod = p;
            x->sidecar = sidecar;
            x->init = initc;
            x->iidx = iidx;
            snprintf(x->name, sizeof(x->name), "%s", cn);
            p->cx[p->ncx++] = x;
        }
        x->code = code;
        x->after_ms = ms;
        if (x->init)
            continue; /* runs when the init phase reaches it (s_init_next) */
        if (!x->active && p->stage >= PS_RUNNING && p->stage != PS_DONE) {
            /* scripted while the containers run: it has run since their start */
            x->active = true;
            x->state = CS_RUNNING;
            x->start = p->t_start;
        }
        if (x->active && x->state == CS_RUNNING)
            s_sched_in(k, &x->h, A_CEXIT, ms);
    }
    return scripted;
}

/* The containers' start (the pod's first container start): scripted ones begin their run. */
static void s_cx_start(kubelet_t *k, kpod_t *p)
{
    for (size_t i = 0; i < p->ncx; i++) {
        kcont_t *x = p->cx[i];
        if (x->active || x->init)
            continue;
        x->active = true;
        x->state = CS_RUNNING;
        x->start = s_now(k);
        s_sched_in(k, &x->h, A_CEXIT, x->after_ms);
    }
}

/* Whether every scripted container runs (a waiting or terminated one makes the pod unready). */
static bool s_cx_running(const kpod_t *p)
{
    for (size_t i = 0; i < p->ncx; i++)
        if (!p->cx[i]->init && p->cx[i]->active && p->cx[i]->state != CS_RUNNING)
            return false;
    return true;
}

/* The init phase: starts the next scripted regular init container (spec order) that has not
 * exited 0; the unscripted ones complete at once. Returns false when none is left. */
static bool s_init_next(kubelet_t *k, kpod_t *p)
{
    kcont_t *next = NULL;
    for (size_t i = 0; i < p->ncx; i++) {
        kcont_t *x = p->cx[i];
        if (x->init && !x->done && (!next || x->iidx < next->iidx))
            next = x;
    }
    if (!next) {
        p->init_at = -1;
        return false;
    }
    if (p->stage != PS_INIT)
        p->t_init = s_now(k);
    p->stage = PS_INIT;
    p->init_at = next->iidx;
    next->active = true;
    next->state = CS_RUNNING;
    next->start = s_now(k);
    s_sched_in(k, &next->h, A_CEXIT, next->after_ms);
    return true;
}

static void s_read_script(kubelet_t *k, kpod_t *p, const json_t *pod)
{
    p->job = s_owned_by_job(pod);
    const char *rp = jx_str(pod, "spec.restartPolicy", "Always");
    p->restart_always = strcmp(rp, "Always") == 0;
    p->on_failure = strcmp(rp, "OnFailure") == 0;
    const char *run = s_ann(pod, KUBELET_ANN_RUN_SECONDS);
    p->has_run = p->job || run;
    p->run_ms = k->o.job_run_ms;
    if (run) {
        char *end = NULL;
        double d = strtod(run, &end);
        if (end != run && d >= 0 && d < 1e9)
            p->run_ms = (int64_t)(d * 1000.0);
    }
    const char *ec = s_ann(pod, KUBELET_ANN_EXIT_CODE);
    p->exit_code = 0;
    if (ec) {
        char *end = NULL;
        long v = strtol(ec, &end, 10);
        if (end != ec && v >= 0 && v <= 255)
            p->exit_code = (int)v;
    }
    p->fail_ann = (int)kubelet_fail_parse(s_ann(pod, KUBELET_ANN_FAIL));
    p->probe_fail = s_probe_fails(pod);
    bool scripted = s_cx_sync(k, p, pod, true);
    p->sub_idx = run || ec || p->fail_ann || scripted ? -1 : raysubmit_find(pod);
    p->sub_on_failure =
        p->sub_idx > 0 &&
        strcmp(jx_str(json_array_get(jx_get(pod, "spec.containers"), (size_t)p->sub_idx),
                      "restartPolicy", ""),
               "OnFailure") == 0;
}

/* ---- pods: status ----------------------------------------------------------------------- */

static json_t *s_cond(const char *type, bool ok, int64_t t, const char *reason, const char *msg)
{
    json_t *c = json_pack("{s:s,s:s,s:n,s:o}", "type", type, "status", ok ? "True" : "False",
                          "lastProbeTime", "lastTransitionTime", s_tsj(t));
    if (c && reason)
        json_object_set_new(c, "reason", json_string(reason));
    if (c && msg)
        json_object_set_new(c, "message", json_string(msg));
    return c;
}

static bool s_pod_ready(const kpod_t *p)
{
    return p->stage == PS_READY && !p->node_notready && !p->probe_fail;
}

static const char *s_qos(const json_t *pod)
{
    bool any = false, guaranteed = true;
    json_t *arr = jx_get(pod, "spec.containers");
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
    {
        json_t *req = jx_get(c, "resources.requests");
        json_t *lim = jx_get(c, "resources.limits");
        if (json_object_size(req) || json_object_size(lim))
            any = true;
        for (int j = 0; j < 2; j++) {
            const char *r = j ? "memory" : "cpu";
            json_t *l = json_object_get(lim, r);
            json_t *q = json_object_get(req, r);
            if (!l || (q && s_qty(q, -1) != s_qty(l, -2)))
                guaranteed = false;
        }
    }
    return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

static json_t *s_container_status(kubelet_t *k, const kpod_t *p, const json_t *c, bool first,
                                  bool init, bool sub, size_t idx)
{
    const char *name = jx_str(c, "name", "");
    const char *image = jx_str(c, "image", "");
    char idb[128];
    snprintf(idb, sizeof(idb), "containerd://%.16s%08x", p->cid, (unsigned)s_hash_str(name));
    int stv;
    const char *reason = NULL;
    const char *msg = NULL;
    int exitc = 0;
    int64_t started = p->t_start;
    bool sidecar = init && s_is_sidecar(c);
    const kcont_t *x = first ? NULL : s_cx_find(p, name);
    if (x && (!x->active || x->sidecar != sidecar))
        x = NULL;
    if (sidecar) {
        /* a native sidecar: runs beside the containers from their start, stopped at the end */
        stv = p->stage == PS_DONE      ? CS_TERMINATED
              : p->stage >= PS_RUNNING ? CS_RUNNING
                                       : CS_WAITING;
        reason = stv == CS_TERMINATED ? "Completed" : stv == CS_WAITING ? "PodInitializing" : NULL;
    } else if (init) {
        stv = p->stage >= PS_RUNNING ? CS_TERMINATED : CS_WAITING;
        reason = stv == CS_TERMINATED ? "Completed" : "PodInitializing";
    } else if (first) {
        stv = p->cstate;
        reason = p->creason[0] ? p->creason : NULL;
        msg = p->cmsg[0] ? p->cmsg : NULL;
        exitc = p->cexit;
    } else if (sub && p->sub_done) {
        /* A sidecar submitter that has exited: terminated on its own. */
        stv = CS_TERMINATED;
        reason = p->sub_exit ? "Error" : "Completed";
        exitc = p->sub_exit;
        started = p->sub_start;
    } else if (p->stage == PS_ACCEPTED || p->stage == PS_PULLFAIL || p->stage == PS_BOUND) {
        stv = CS_WAITING;
        reason = "ContainerCreating";
    } else if (p->stage == PS_DONE) {
        stv = CS_TERMINATED;
        reason = p->succeeded ? "Completed" : "Error";
        exitc = p->succeeded ? 0 : p->cexit;
    } else {
        stv = CS_RUNNING;
        if (sub && p->sub_restarts > 0)
            started = p->sub_start; /* a restarted sidecar submitter */
    }
    int64_t fin = sub && p->sub_done ? p->sub_end : p->t_end ? p->t_end : s_now(k);
    if (p->init_at >= 0) {
        /* the init phase (or its failure): init containers before init_at have completed
         * (sidecars among them run), later ones and the containers wait */
        bool before = init && (int)idx < p->init_at;
        stv = before && sidecar && p->stage != PS_DONE ? CS_RUNNING
              : before                                 ? CS_TERMINATED
                                                       : CS_WAITING;
        reason = stv == CS_TERMINATED ? "Completed" : stv == CS_WAITING ? "PodInitializing" : NULL;
        msg = NULL;
        exitc = 0;
        started = p->t_init;
        fin = p->stage == PS_DONE && sidecar ? p->t_end : p->t_init;
    }
    if (x && p->stage != PS_DONE) {
        stv = x->state;
        started = x->start;
        reason = stv == CS_WAITING      ? "CrashLoopBackOff"
                 : stv == CS_TERMINATED ? (x->exit ? "Error" : "Completed")
                                        : NULL;
        msg = stv == CS_WAITING ? x->msg : NULL;
        exitc = stv == CS_TERMINATED ? x->exit : 0;
        fin = x->end;
    } else if (x && p->stage == PS_DONE && x->state == CS_TERMINATED) {
        stv = CS_TERMINATED;
        msg = NULL;
        started = x->start;
        reason = x->exit ? "Error" : "Completed";
        exitc = x->exit;
        fin = x->end;
    } else if (x && x->start > started) {
        started = x->start; /* restarted, then stopped with the pod */
    }
    json_t *state = json_object();
    if (stv == CS_WAITING) {
        json_t *w = json_object();
        if (reason)
            json_object_set_new(w, "reason", json_string(reason));
        if (msg)
            json_object_set_new(w, "message", json_string(msg));
        json_object_set_new(state, "waiting", w);
    } else if (stv == CS_RUNNING) {
        json_object_set_new(state, "running", json_pack("{s:o}", "startedAt", s_tsj(started)));
    } else {
        json_object_set_new(state, "terminated",
                            json_pack("{s:i,s:s,s:o,s:o,s:s}", "exitCode", exitc, "reason",
                                      reason ? reason : "Completed", "startedAt",
                                      s_tsj(started ? started : p->t_accept), "finishedAt",
                                      s_tsj(fin), "containerID", idb));
    }
    bool ready = (!init || sidecar) && stv == CS_RUNNING &&
                 (s_pod_ready(p) || (sidecar && p->stage == PS_INIT));
    json_t *cs = json_pack("{s:s,s:s,s:s,s:o,s:b,s:b,s:i,s:o}", "name", name, "image", image,
                           "imageID", stv == CS_WAITING ? "" : image, "state", state, "ready",
                           ready, "started", stv == CS_RUNNING, "restartCount",
                           first ? p->restarts
                           : sub ? p->sub_restarts
                           : x   ? x->restarts
                                 : 0,
                           "lastState", json_object());
    if (cs && stv != CS_WAITING)
        json_object_set_new(cs, "containerID", json_string(idb));
    if (cs && first && p->has_last)
        json_object_set_new(json_object_get(cs, "lastState"), "terminated",
                            json_pack("{s:i,s:s,s:o,s:o,s:s}", "exitCode", p->last_exit, "reason",
                                      p->last_reason, "startedAt", s_tsj(p->last_start),
                                      "finishedAt", s_tsj(p->last_end), "containerID", idb));
    if (cs && x && x->has_last)
        json_object_set_new(json_object_get(cs, "lastState"), "terminated",
                            json_pack("{s:i,s:s,s:o,s:o,s:s}", "exitCode", x->last_exit, "reason",
                                      x->last_exit ? "Error" : "Completed", "startedAt",
                                      s_tsj(x->last_start), "finishedAt", s_tsj(x->last_end),
                                      "containerID", idb));
    if (cs && sub && p->sub_has_last)
        json_object_set_new(json_object_get(cs, "lastState"), "terminated",
                            json_pack("{s:i,s:s,s:o,s:o,s:s}", "exitCode", p->sub_last_exit,
                                      "reason", "Error", "startedAt", s_tsj(p->sub_last_start),
                                      "finishedAt", s_tsj(p->sub_last_end), "containerID", idb));
    return cs;
}

/* Builds the whole status the kubelet would post for p. */
static json_t *s_pod_status(kubelet_t *k, const kpod_t *p, const json_t *pod)
{
    const char *phase = "Pending";
    if (p->stage == PS_RUNNING || p->stage == PS_READY || p->stage == PS_BACKOFF)
        phase = "Running";
    else if (p->stage == PS_DONE)
        phase = p->succeeded ? "Succeeded" : "Failed";
    bool ready = s_pod_ready(p) && !(p->sub_idx > 0 && p->sub_done) && s_cx_running(p);
    json_t *cs = json_array();
    json_t *ics = json_array();
    json_t *arr = jx_get(pod, "spec.initContainers");
    size_t i;
    json_t *c;
    buf_t unready;
    buf_init(&unready, 4096);
    /* kubelet's GenerateContainersReadyCondition: unready native sidecars, then containers */
    json_array_foreach(arr, i, c)
    {
        json_t *one = s_container_status(k, p, c, false, true, false, i);
        if (one && s_is_sidecar(c) && !json_is_true(json_object_get(one, "ready")))
            buf_printf(&unready, "%s%s", unready.len ? " " : "", jx_str(c, "name", ""));
        json_array_append_new(ics, one);
    }
    arr = jx_get(pod, "spec.containers");
    json_array_foreach(arr, i, c)
    {
        json_t *one = s_container_status(k, p, c, i == 0, false, i > 0 && (int)i == p->sub_idx, i);
        if (one && !json_is_true(json_object_get(one, "ready")))
            buf_printf(&unready, "%s%s", unready.len ? " " : "", jx_str(c, "name", ""));
        json_array_append_new(cs, one);
    }
    char msg[S_MSG_LEN];
    snprintf(msg, sizeof(msg), "containers with unready status: [%s]",
             unready.data ? unready.data : "");
    buf_free(&unready);
    bool done = p->stage == PS_DONE;
    const char *nr = done ? "PodCompleted" : p->node_notready ? NULL : "ContainersNotReady";
    int64_t tr = p->t_ready ? p->t_ready : p->t_accept;
    json_t *conds = json_array();
    json_array_append_new(conds, s_cond("PodReadyToStartContainers",
                                        p->stage >= PS_RUNNING || p->stage == PS_INIT,
                                        p->t_start  ? p->t_start
                                        : p->t_init ? p->t_init
                                                    : p->t_accept,
                                        NULL, NULL));
    if (p->init_at >= 0) {
        /* kubelet's GeneratePodInitializedCondition */
        buf_t inc;
        buf_init(&inc, 4096);
        json_array_foreach(jx_get(pod, "spec.initContainers"), i, c)
        {
            if ((int)i >= p->init_at && !s_is_sidecar(c))
                buf_printf(&inc, "%s%s", inc.len ? " " : "", jx_str(c, "name", ""));
        }
        char imsg[S_MSG_LEN];
        snprintf(imsg, sizeof(imsg), "containers with incomplete status: [%s]",
                 inc.data ? inc.data : "");
        buf_free(&inc);
        json_array_append_new(
            conds, s_cond("Initialized", false, p->t_init, "ContainersNotInitialized", imsg));
    } else {
        json_array_append_new(
            conds, s_cond("Initialized", true, p->t_accept, done ? "PodCompleted" : NULL, NULL));
    }
    json_array_append_new(conds, s_cond("Ready", ready, tr, ready ? NULL : nr,
                                        ready || done || p->node_notready ? NULL : msg));
    json_array_append_new(conds, s_cond("ContainersReady", ready, tr, ready ? NULL : nr,
                                        ready || done || p->node_notready ? NULL : msg));
    json_array_append_new(conds, s_cond("PodScheduled", true, p->t_sched, NULL, NULL));
    const char *hostip = p->node ? p->node->ip : "";
    json_t *st = json_pack("{s:s,s:o,s:s,s:[{s:s}],s:o,s:o,s:s}", "phase", phase, "conditions",
                           conds, "hostIP", hostip, "hostIPs", "ip", hostip, "startTime",
                           s_tsj(p->t_accept), "containerStatuses", cs, "qosClass", s_qos(pod));
    if (st && json_array_size(ics))
        json_object_set_new(st, "initContainerStatuses", ics);
    else
        json_decref(ics);
    if (st && p->ip && p->stage >= PS_RUNNING) {
        char ip[32];
        s_ip_str(k, p->ip, ip, sizeof(ip));
        json_object_set_new(st, "podIP", json_string(ip));
        json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", ip));
    }
    return st;
}

static int s_pod_get(kubelet_t *k, const kpod_t *p, json_t **out)
{
    char ns[KUBELET_NAME_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)p->nslen, p->key);
    objstore_status_t st;
    int rc = objstore_get(k->store, k->rpods, ns, p->key + p->nslen + 1, out, &st);
    if (rc == 0 && strcmp(jx_str(*out, "metadata.uid", ""), p->uid) != 0) {
        json_decref(*out);
        *out = NULL;
        return ERR_NOTFOUND;
    }
    return rc;
}

/* Writes `status` (stolen) to the pod's status subresource. Returns 1 on a write, 0 otherwise. */
static int s_pod_put_status(kubelet_t *k, kpod_t *p, json_t *cur, json_t *status)
{
    json_t *obj = json_copy(cur);
    if (!obj || !status) {
        json_decref(obj);
        json_decref(status);
        return 0;
    }
    json_object_set_new(obj, "status", status);
    char ns[KUBELET_NAME_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)p->nslen, p->key);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    objstore_status_t st;
    return objstore_update(k->store, k->rpods, ns, p->key + p->nslen + 1, &obj, &uo, NULL, NULL,
                           &st) == 0
               ? 1
               : 0;
}

/* Writes p's current status. Returns writes made. */
static int s_pod_write(kubelet_t *k, kpod_t *p)
{
    json_t *cur = NULL;
    if (s_pod_get(k, p, &cur) < 0)
        return 0;
    int n = s_pod_put_status(k, p, cur, s_pod_status(k, p, cur));
    json_decref(cur);
    return n;
}

/* ---- pods: events ----------------------------------------------------------------------- */

/* Stops p's submitter run, if any (the container is gone or stopped). */
static void s_sub_end(kubelet_t *k, kpod_t *p)
{
    ksub_t *ks = p->sub;
    if (!ks)
        return;
    s_heap_remove(k, &ks->h);
    raysubmit_destroy(&ks->run);
    free(ks);
    p->sub = NULL;
    k->nsubs--;
}

static void s_sub_begin_in(kubelet_t *k, kpod_t *p, int64_t delay_ms);

/* Starts p's submitter container (at a start of the pod's containers): the first start of a
 * sidecar submitter, every start of a first-container one. No-op without the Ray side. */
static void s_sub_begin(kubelet_t *k, kpod_t *p)
{
    s_sub_begin_in(k, p, 0);
}

/* s_sub_begin with its first step `delay_ms` from now (a restart after the back-off). */
static void s_sub_begin_in(kubelet_t *k, kpod_t *p, int64_t delay_ms)
{
    if (p->sub_idx < 0 || !k->ray || (p->sub_idx > 0 && (p->sub || p->sub_done)))
        return;
    s_sub_end(k, p);
    json_t *pod = NULL;
    if (s_pod_get(k, p, &pod) < 0)
        return;
    raysubmit_opts_t ro = {.poll_ms = k->o.submit_poll_ms, .dns_fail_ms = k->o.submit_dns_fail_ms};
    ksub_t *ks = calloc(1, sizeof(*ks));
    if (ks)
        ks->run = raysubmit_new(pod, p->sub_idx, &ro, s_now(k));
    json_decref(pod);
    if (!ks || !ks->run) {
        free(ks);
        log_warn("kubelet: cannot run a submitter", "pod", p->key, NULL);
        return;
    }
    ks->h.idx = SIZE_MAX;
    ks->h.kind = HK_SUB;
    ks->pod = p;
    p->sub = ks;
    p->sub_start = s_now(k) + delay_ms;
    k->nsubs++;
    s_sched_in(k, &ks->h, A_SUBSTEP, delay_ms);
}

static void s_pod_free(kubelet_t *k, kpod_t *p)
{
    s_sub_end(k, p);
    s_cx_free(k, p);
    s_heap_remove(k, &p->h);
    s_charge(k, p, false);
    if (p->ip)
        s_ip_mark(k, p->ip, false);
    free(p);
}

static int s_queue_push(kubelet_t *k, kpod_t *p)
{
    if (p->queued)
        return 0;
    if (k->nqueue == k->capqueue) {
        size_t n = k->capqueue ? k->capqueue * 2 : 1024;
        kpod_t **q = realloc(k->queue, n * sizeof(*q));
        if (!q)
            return ERR_NOMEM;
        k->queue = q;
        k->capqueue = n;
    }
    k->queue[k->nqueue++] = p;
    p->queued = true;
    s_arm(k);
    return 0;
}

static void s_bind_to(kubelet_t *k, kpod_t *p, knode_t *n)
{
    p->node = n;
    s_charge(k, p, true);
    p->stage = PS_BOUND;
    p->t_sched = s_now(k);
}

/* First state of a pod seen for the first time. */
static void s_pod_adopt(kubelet_t *k, kpod_t *p, const json_t *pod)
{
    const char *nodename = jx_str(pod, "spec.nodeName", "");
    const char *phase = jx_str(pod, "status.phase", "");
    p->t_sched = p->t_accept = s_now(k);
    if (!*nodename) {
        s_sched_in(k, &p->h, A_SCHEDULE, s_jitter(k, k->o.schedule_ms));
        return;
    }
    knode_t *n = s_node_find(k, nodename);
    if (!n)
        return; /* bound to a node nobody runs: stays Pending, as in Kubernetes */
    p->node = n;
    if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0) {
        p->stage = PS_DONE;
        p->succeeded = phase[0] == 'S';
        return;
    }
    s_charge(k, p, true);
    const char *ip = jx_str(pod, "status.podIP", NULL);
    uint32_t off;
    if (strcmp(phase, "Running") == 0 && ip && s_ip_parse(k, ip, &off) == 0 &&
        !s_ip_isset(k, off)) {
        /* Adopt a running pod (kubesim restarted on a persisted store). */
        s_ip_mark(k, off, true);
        p->ip = off;
        p->stage = PS_READY;
        p->cstate = CS_RUNNING;
        p->t_start = p->t_ready = s_now(k);
        json_t *c0 = json_array_get(jx_get(pod, "status.containerStatuses"), 0);
        p->restarts = (int)jx_int(c0, "restartCount", 0);
        return;
    }
    p->stage = PS_BOUND;
    s_sched_in(k, &p->h, A_ACCEPT, 0);
}

static void s_pod_deleting(kubelet_t *k, kpod_t *p, const json_t *pod)
{
    p->deleting = true;
    s_sub_end(k, p); /* SIGTERM */
    if (p->node && p->node->lost)
        return; /* no kubelet to finish it */
    int64_t grace = jx_int(pod, "metadata.deletionGracePeriodSeconds", OBJSTORE_GRACE_DEFAULT);
    int64_t d = grace * 1000 < k->o.terminate_ms ? grace * 1000 : k->o.terminate_ms;
    s_sched_in(k, &p->h, A_FINAL, d);
}

static int s_on_pod(const objstore_event_t *ev, void *arg)
{
    kubelet_t *k = arg;
    char key[KUBELET_NAME_MAX];
    const char *ns = jx_str(ev->obj, "metadata.namespace", "");
    int kl = snprintf(key, sizeof(key), "%s/%s", ns, jx_str(ev->obj, "metadata.name", ""));
    if (kl < 0 || (size_t)kl >= sizeof(key))
        return 0;
    const char *uid = jx_str(ev->obj, "metadata.uid", "");
    kpod_t *p = s_pod_find(k, key);
    if (p && strcmp(p->uid, uid) != 0) {
        /* Same name, new object: forget the old one. */
        s_pod_unlink(k, p);
        if (p->queued) {
            p->dead = true;
            s_heap_remove(k, &p->h);
            s_cx_free(k, p);
            s_charge(k, p, false);
        } else {
            s_pod_free(k, p);
        }
        p = NULL;
    }
    if (ev->type == OBJSTORE_DELETED) {
        if (!p)
            return 0;
        s_pod_unlink(k, p);
        k->retry_all = true;
        if (p->queued) {
            p->dead = true;
            s_heap_remove(k, &p->h);
            s_cx_free(k, p);
            s_charge(k, p, false);
            if (p->ip)
                s_ip_mark(k, p->ip, false);
            p->ip = 0;
        } else {
            s_pod_free(k, p);
        }
        s_arm(k);
        return 0;
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p) {
            log_error("kubelet: out of memory tracking a pod", "pod", key, NULL);
            return 0;
        }
        p->h.idx = SIZE_MAX;
        p->sub_idx = -1;
        p->init_at = -1;
        snprintf(p->key, sizeof(p->key), "%s", key);
        p->nslen = strlen(ns);
        snprintf(p->uid, sizeof(p->uid), "%s", uid);
        snprintf(p->cid, sizeof(p->cid), "%016" PRIx64 "%016" PRIx64, s_rand(k), s_rand(k));
        s_requests(ev->obj, &p->cpu, &p->mem);
        s_ext_requests(ev->obj, p->ext, sizeof(p->ext), &p->ext_qty);
        s_read_script(k, p, ev->obj);
        if (s_pod_insert(k, p) < 0) {
            free(p);
            return 0;
        }
        s_pod_adopt(k, p, ev->obj);
    } else {
        int fail = (int)kubelet_fail_parse(s_ann(ev->obj, KUBELET_ANN_FAIL));
        if (fail && fail != p->fail_ann && !p->inject)
            kubelet_inject(k, ns, key + p->nslen + 1, fail);
        p->fail_ann = fail;
        s_cx_sync(k, p, ev->obj, false);
        bool pf = s_probe_fails(ev->obj);
        if (pf != p->probe_fail) {
            /* the probe's next run sees it: write the status from the timer */
            p->probe_fail = pf;
            if (k->probe_dirty)
                json_object_set_new(k->probe_dirty, key, json_true());
        }
        const char *nodename = jx_str(ev->obj, "spec.nodeName", "");
        if (p->stage == PS_NEW && *nodename && !p->node) {
            /* Bound by someone else (pods/binding). */
            knode_t *n = s_node_find(k, nodename);
            if (n) {
                s_bind_to(k, p, n);
                s_sched_in(k, &p->h, A_ACCEPT, 0);
            }
        }
    }
    if (!p->deleting && jx_get(ev->obj, "metadata.deletionTimestamp"))
        s_pod_deleting(k, p, ev->obj);
    return 0;
}

/* ---- pods: stage transitions ------------------------------------------------------------ */

static void s_set_c0(kpod_t *p, int state, const char *reason, const char *msg, int exitc)
{
    p->cstate = state;
    snprintf(p->creason, sizeof(p->creason), "%s", reason ? reason : "");
    snprintf(p->cmsg, sizeof(p->cmsg), "%s", msg ? msg : "");
    p->cexit = exitc;
}

/* Schedules what follows a container start: readiness, scripted exit, annotated crash. */
static void s_after_start(kubelet_t *k, kpod_t *p)
{
    if (p->stage == PS_RUNNING) {
        s_sched_in(k, &p->h, A_READY, s_jitter(k, k->o.ready_ms));
        return;
    }
    if (p->inject == KUBELET_FAIL_CRASH || p->inject == KUBELET_FAIL_OOM) {
        s_sched_at(k, &p->h, A_CRASH, p->t_start + k->o.crash_after_ms);
    } else if (p->fail_ann == KUBELET_FAIL_CRASH || p->fail_ann == KUBELET_FAIL_OOM) {
        p->inject = p->fail_ann;
        s_sched_at(k, &p->h, A_CRASH, p->t_start + k->o.crash_after_ms);
    } else if (p->has_run && !(p->sub && p->sub_idx == 0)) {
        s_sched_at(k, &p->h, A_EXIT, p->t_start + p->run_ms);
    }
}

static int s_do_start(kubelet_t *k, kpod_t *p)
{
    if (p->pull_fail || p->fail_ann == KUBELET_FAIL_IMAGEPULL) {
        char msg[S_MSG_LEN];
        json_t *cur = NULL;
        if (s_pod_get(k, p, &cur) < 0)
            return 0;
        json_t *c0 = json_array_get(jx_get(cur, "spec.containers"), 0);
        snprintf(msg, sizeof(msg),
                 "failed to pull and unpack image \"%s\": failed to resolve reference: not found",
                 jx_str(c0, "image", ""));
        json_decref(cur);
        s_set_c0(p, CS_WAITING, "ErrImagePull", msg, 0);
        if (p->stage < PS_RUNNING)
            p->stage = PS_PULLFAIL;
        else
            p->stage = PS_BACKOFF;
        p->pull_fail = 0;
        s_sched_in(k, &p->h, A_PULLBACKOFF, KUBELET_PULL_BACKOFF_MS);
        return s_pod_write(k, p);
    }
    if (!p->ip) {
        p->ip = s_ip_alloc(k);
        if (!p->ip)
            log_warn("kubelet: pod CIDR exhausted", "pod", p->key, NULL);
    }
    p->t_start = s_now(k);
    s_set_c0(p, CS_RUNNING, NULL, NULL, 0);
    s_sub_begin(k, p);
    s_cx_start(k, p);
    if (k->o.ready_ms <= 0) {
        p->stage = PS_READY;
        p->t_ready = p->t_start;
    } else {
        p->stage = PS_RUNNING;
        if (p->restarts || p->t_ready)
            p->t_ready = p->t_start;
    }
    s_after_start(k, p);
    return s_pod_write(k, p);
}

/* The first container stops with `exitc`/`reason`. */
static int s_do_stop(kubelet_t *k, kpod_t *p, int exitc, const char *reason)
{
    int64_t now = s_now(k);
    p->t_end = now;
    if (p->sub_idx == 0 || !p->restart_always)
        s_sub_end(k, p);
    if (!p->restart_always) {
        p->stage = PS_DONE;
        p->succeeded = exitc == 0;
        for (size_t i = 0; i < p->ncx; i++)
            if (!p->cx[i]->sidecar && !p->cx[i]->init && p->cx[i]->state == CS_TERMINATED &&
                p->cx[i]->exit != 0)
                p->succeeded = false; /* kube: Succeeded only when every container exited 0 */
        s_set_c0(p, CS_TERMINATED, reason, NULL, exitc);
        p->t_ready = now;
        s_charge(k, p, false);
        return s_pod_write(k, p);
    }
    p->has_last = true;
    p->last_exit = exitc;
    snprintf(p->last_reason, sizeof(p->last_reason), "%s", reason);
    p->last_start = p->t_start;
    p->last_end = now;
    p->restarts++;
    if (exitc == 0 && strcmp(reason, "Completed") == 0) {
        /* A clean exit under restartPolicy Always restarts at once. */
        return s_do_start(k, p);
    }
    char msg[S_MSG_LEN];
    char ns[KUBELET_NAME_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)p->nslen, p->key);
    json_t *cur = NULL;
    const char *cname = "";
    if (s_pod_get(k, p, &cur) == 0)
        cname = jx_str(json_array_get(jx_get(cur, "spec.containers"), 0), "name", "");
    snprintf(msg, sizeof(msg), "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
             (long long)((k->o.backoff_ms + 999) / 1000), cname, p->key + p->nslen + 1, ns, p->uid);
    json_decref(cur);
    s_set_c0(p, CS_WAITING, "CrashLoopBackOff", msg, 0);
    if (p->stage == PS_READY)
        p->t_ready = now;
    p->stage = PS_BACKOFF;
    s_sched_in(k, &p->h, A_START, k->o.backoff_ms);
    return s_pod_write(k, p);
}

static int s_run_pod(kubelet_t *k, kpod_t *p, int action)
{
    switch (action) {
    case A_SCHEDULE:
        s_queue_push(k, p);
        return 0;
    case A_ACCEPT:
        p->stage = PS_ACCEPTED;
        p->t_accept = s_now(k);
        s_set_c0(p, CS_WAITING, "ContainerCreating", NULL, 0);
        s_sched_in(k, &p->h, A_START, s_jitter(k, k->o.create_ms));
        return s_pod_write(k, p);
    case A_START:
        if (p->stage < PS_RUNNING && !p->pull_fail && s_init_next(k, p))
            return s_pod_write(k, p);
        return s_do_start(k, p);
    case A_READY:
        p->stage = PS_READY;
        p->t_ready = s_now(k);
        s_after_start(k, p);
        return s_pod_write(k, p);
    case A_EXIT:
        return s_do_stop(k, p, p->exit_code, p->exit_code ? "Error" : "Completed");
    case A_CRASH: {
        int kind = p->inject;
        p->inject = 0;
        if (kind == KUBELET_FAIL_IMAGEPULL) {
            /* Image pull failure on a running pod: the container restarts into a failed pull. */
            p->has_last = true;
            p->last_exit = 1;
            snprintf(p->last_reason, sizeof(p->last_reason), "Error");
            p->last_start = p->t_start;
            p->last_end = s_now(k);
            p->restarts++;
            p->pull_fail = 1;
            if (p->stage == PS_READY)
                p->t_ready = s_now(k);
            return s_do_start(k, p);
        }
        if (kind == KUBELET_FAIL_OOM)
            return s_do_stop(k, p, 137, "OOMKilled");
        return s_do_stop(k, p, 1, "Error");
    }
    case A_PULLBACKOFF:
        s_set_c0(p, CS_WAITING, "ImagePullBackOff", "Back-off pulling image", 0);
        if (p->fail_ann != KUBELET_FAIL_IMAGEPULL)
            s_sched_in(k, &p->h, A_START, k->o.backoff_ms);
        return s_pod_write(k, p);
    case A_FINAL: {
        char ns[KUBELET_NAME_MAX];
        snprintf(ns, sizeof(ns), "%.*s", (int)p->nslen, p->key);
        objstore_delete_opts_t d = {.precond_uid = p->uid, .grace_set = true, .grace_seconds = 0};
        objstore_status_t st;
        s_charge(k, p, false);
        return objstore_delete(k->store, k->rpods, ns, p->key + p->nslen + 1, &d, NULL, NULL,
                               &st) == 0
                   ? 1
                   : 0;
    }
    default:
        return 0;
    }
}

/* A scripted container's exit (A_CEXIT) or restart after its back-off (A_CSTART), with the
 * kubelet's rules: a native sidecar always restarts; another container as the pod's
 * restartPolicy says (Always: restart; OnFailure: restart after a non-zero exit; Never: stays
 * terminated, the pod unready). A restart waits kube's doubling back-off (backoff_ms, 2x per
 * restart, at most 300 s) in Waiting CrashLoopBackOff. Returns writes made. */
static int s_run_cont(kubelet_t *k, kcont_t *x, int action)
{
    kpod_t *p = x->pod;
    if (p->deleting || p->stage == PS_DONE ||
        (x->init ? p->stage != PS_INIT : p->stage < PS_RUNNING) || (p->node && p->node->lost))
        return 0;
    int64_t now = s_now(k);
    if (x->init && action == A_CEXIT && x->code == 0) {
        /* done: the next init container, or the containers */
        x->state = CS_TERMINATED;
        x->exit = 0;
        x->end = now;
        x->done = true;
        s_sched_in(k, &p->h, A_START, 0);
        return s_pod_write(k, p);
    }
    if (x->init && action == A_CEXIT && !p->restart_always && !p->on_failure) {
        /* restartPolicy Never: a failed init container fails the pod */
        x->state = CS_TERMINATED;
        x->exit = x->code;
        x->end = now;
        p->stage = PS_DONE;
        p->succeeded = false;
        p->t_end = now;
        s_heap_remove(k, &p->h);
        s_charge(k, p, false);
        return s_pod_write(k, p);
    }
    if (action == A_CSTART) {
        x->state = CS_RUNNING;
        x->start = now;
        x->msg[0] = '\0';
        s_sched_in(k, &x->h, A_CEXIT, x->after_ms);
        return s_pod_write(k, p);
    }
    bool restart = x->sidecar || x->init || p->restart_always || (p->on_failure && x->code != 0);
    if (!restart) {
        x->state = CS_TERMINATED;
        x->exit = x->code;
        x->end = now;
        return s_pod_write(k, p);
    }
    x->has_last = true;
    x->last_exit = x->code;
    x->last_start = x->start;
    x->last_end = now;
    x->restarts++;
    int64_t delay = k->o.backoff_ms;
    for (int i = 1; i < x->restarts && delay < 300000; i++)
        delay *= 2;
    if (delay > 300000)
        delay = 300000;
    char ns[KUBELET_NAME_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)p->nslen, p->key);
    /* kubelet's message (pkg/kubelet/kuberuntime: "back-off %s restarting failed
     * container=%s pod=%s", the pod as format.Pod: name_namespace(uid)) */
    snprintf(x->msg, sizeof(x->msg), "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
             (long long)((delay + 999) / 1000), x->name, p->key + p->nslen + 1, ns, p->uid);
    x->state = CS_WAITING;
    s_sched_in(k, &x->h, A_CSTART, delay);
    return s_pod_write(k, p);
}

/* One step of a running submitter; its exit ends its container. Returns writes made. */
static int s_run_sub(kubelet_t *k, ksub_t *ks)
{
    kpod_t *p = ks->pod;
    if (p->deleting || p->stage == PS_DONE || (p->node && p->node->lost))
        return 0;
    int64_t next = 0;
    int code = 1;
    int rc = raysubmit_step(ks->run, k->ray, s_now(k), &next, &code);
    if (rc == 0) {
        s_sched_at(k, &ks->h, A_SUBSTEP, next);
        return 0;
    }
    if (rc < 0)
        code = 1;
    if (p->sub_idx == 0) {
        s_heap_remove(k, &p->h); /* readiness no longer matters */
        return s_do_stop(k, p, code, code ? "Error" : "Completed");
    }
    s_sub_end(k, p);
    if (code != 0 && p->sub_on_failure) {
        /* restartPolicy OnFailure on the container: the kubelet starts it again after the
         * back-off (SIMPLIFICATION: shown running from the exit on, startedAt the restart time,
         * not Waiting CrashLoopBackOff meanwhile), restartCount + 1, lastState the exit */
        p->sub_has_last = true;
        p->sub_last_exit = code;
        p->sub_last_start = p->sub_start;
        p->sub_last_end = s_now(k);
        p->sub_restarts++;
        s_sub_begin_in(k, p, k->o.backoff_ms);
        return s_pod_write(k, p);
    }
    p->sub_done = true;
    p->sub_exit = code;
    p->sub_end = s_now(k);
    return s_pod_write(k, p);
}

/* ---- scheduling ------------------------------------------------------------------------- */

static bool s_selector_ok(const json_t *pod, const knode_t *n)
{
    json_t *sel = jx_get(pod, "spec.nodeSelector");
    const char *key;
    json_t *v;
    json_object_foreach(sel, key, v)
    {
        json_t *lv = json_object_get(n->labels, key);
        if (!json_is_string(lv) || !json_is_string(v) ||
            strcmp(json_string_value(lv), json_string_value(v)) != 0)
            return false;
    }
    return true;
}

/* Node n has the extended resource p asks for (always true when it asks none). */
static bool s_ext_fits(const kpod_t *p, const knode_t *n)
{
    return !p->ext[0] || s_qty(json_object_get(n->alloc, p->ext), 0) >= p->ext_qty;
}

static bool s_fits(const kpod_t *p, const knode_t *n)
{
    return !n->lost && !n->gone && n->ucpu + p->cpu <= n->cpu && n->umem + p->mem <= n->mem &&
           n->upods + 1000 <= n->pods && s_ext_fits(p, n);
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* kube-scheduler's FitError message for p. */
static void s_unsched_msg(kubelet_t *k, const kpod_t *p, const json_t *pod, char *out, size_t n)
{
    enum { R_SEL, R_TAINT, R_CPU, R_MEM, R_PODS, R_EXT, R_N };
    char ext[96];
    snprintf(ext, sizeof(ext), "Insufficient %s", p->ext);
    const char *const names[R_N] = {
        "node(s) didn't match Pod's node affinity/selector",
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
        "Insufficient cpu",
        "Insufficient memory",
        "Too many pods",
        ext};
    size_t cnt[R_N] = {0};
    size_t unhelpful = 0, helpful = 0;
    for (size_t i = 0; i < k->nnodes; i++) {
        const knode_t *nd = k->nodes[i];
        if (nd->gone)
            continue;
        if (!s_selector_ok(pod, nd)) {
            cnt[R_SEL]++;
            unhelpful++;
            continue;
        }
        if (nd->lost) {
            cnt[R_TAINT]++;
            unhelpful++;
            continue;
        }
        if (nd->upods + 1000 > nd->pods)
            cnt[R_PODS]++;
        if (nd->ucpu + p->cpu > nd->cpu)
            cnt[R_CPU]++;
        if (nd->umem + p->mem > nd->mem)
            cnt[R_MEM]++;
        if (!s_ext_fits(p, nd))
            cnt[R_EXT]++;
        helpful++;
    }
    size_t total = unhelpful + helpful;
    if (!total) {
        snprintf(out, n, "no nodes available to schedule pods");
        return;
    }
    char parts[R_N][160];
    const char *ptr[R_N];
    size_t np = 0;
    for (int r = 0; r < R_N; r++)
        if (cnt[r]) {
            snprintf(parts[np], sizeof(parts[np]), "%zu %s", cnt[r], names[r]);
            ptr[np] = parts[np];
            np++;
        }
    qsort(ptr, np, sizeof(ptr[0]), s_cmp_str);
    buf_t b;
    buf_init(&b, n > 0 ? n - 1 : 0);
    buf_printf(&b, "0/%zu nodes are available: ", total);
    for (size_t i = 0; i < np; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", ptr[i]);
    buf_printf(&b, ". preemption: 0/%zu nodes are available: ", total);
    if (helpful && unhelpful)
        buf_printf(&b,
                   "%zu No preemption victims found for incoming pod, %zu Preemption is not "
                   "helpful for scheduling.",
                   helpful, unhelpful);
    else if (helpful)
        buf_printf(&b, "%zu No preemption victims found for incoming pod.", helpful);
    else
        buf_printf(&b, "%zu Preemption is not helpful for scheduling.", unhelpful);
    snprintf(out, n, "%s", b.data ? b.data : "");
    buf_free(&b);
}

/* kube-scheduler's FitError message for a PreFilter rejection (every node unresolvable). */
static void s_prefilter_msg(const kubelet_t *k, const char *reason, char *out, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < k->nnodes; i++)
        if (!k->nodes[i]->gone)
            total++;
    if (!total)
        snprintf(out, n, "no nodes available to schedule pods");
    else
        snprintf(out, n,
                 "0/%zu nodes are available: %s. preemption: 0/%zu nodes are available: %zu "
                 "Preemption is not helpful for scheduling.",
                 total, reason, total, total);
}

/* Writes PodScheduled=False Unschedulable with `why` (NULL = the FitError of the nodes). */
static int s_write_unsched(kubelet_t *k, kpod_t *p, const json_t *pod, const char *why)
{
    char msg[1024];
    if (why)
        s_prefilter_msg(k, why, msg, sizeof(msg));
    else
        s_unsched_msg(k, p, pod, msg, sizeof(msg));
    uint64_t h = s_hash_str(msg);
    if (h == p->unsched_hash)
        return 0;
    p->unsched_hash = h;
    json_t *status = json_copy(json_object_get(pod, "status"));
    if (!status)
        status = json_object();
    if (!status)
        return 0;
    json_object_set_new(status, "phase", json_string("Pending"));
    json_object_set_new(
        status, "conditions",
        json_pack("[o]", s_cond("PodScheduled", false, s_now(k), "Unschedulable", msg)));
    return s_pod_put_status(k, p, (json_t *)pod, status);
}

static int s_bind(kubelet_t *k, kpod_t *p, json_t *pod, knode_t *n)
{
    json_t *obj = json_copy(pod);
    json_t *spec = json_copy(json_object_get(pod, "spec"));
    if (!obj || !spec) {
        json_decref(obj);
        json_decref(spec);
        return 0;
    }
    json_object_set_new(spec, "nodeName", json_string(n->name));
    json_object_set_new(obj, "spec", spec);
    char ns[KUBELET_NAME_MAX];
    snprintf(ns, sizeof(ns), "%.*s", (int)p->nslen, p->key);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    objstore_status_t st;
    s_bind_to(k, p, n);
    if (objstore_update(k->store, k->rpods, ns, p->key + p->nslen + 1, &obj, &uo, NULL, NULL, &st) <
        0)
        return 0;
    /* The kubelet on the node accepts it at once. */
    return 1 + s_run_pod(k, p, A_ACCEPT);
}

static int s_schedule_pass(kubelet_t *k)
{
    size_t from = k->retry_all ? 0 : k->untried;
    k->retry_all = false;
    int writes = 0;
    size_t tried = 0;
    size_t w = 0;
    for (size_t i = 0; i < k->nqueue; i++) {
        kpod_t *p = k->queue[i];
        if (p->dead) {
            free(p);
            continue;
        }
        if (i < from || tried >= KUBELET_SCHED_BUDGET || p->stage != PS_NEW || p->deleting) {
            if (p->stage == PS_NEW && !p->deleting)
                k->queue[w++] = p;
            else
                p->queued = false;
            continue;
        }
        tried++;
        json_t *pod = NULL;
        if (s_pod_get(k, p, &pod) < 0) {
            k->queue[w++] = p; /* the DELETED event will mark it dead */
            continue;
        }
        /* VolumeBinding's PreFilter: every claim the pod mounts exists and is Bound */
        char vns[KUBELET_NAME_MAX], why[512];
        snprintf(vns, sizeof(vns), "%.*s", (int)p->nslen, p->key);
        if (storage_pod_unschedulable(k->store, vns, pod, why, sizeof(why))) {
            writes += s_write_unsched(k, p, pod, why);
            k->queue[w++] = p;
            json_decref(pod);
            continue;
        }
        knode_t *chosen = NULL;
        for (size_t j = 0; j < k->nnodes; j++) {
            knode_t *n = k->nodes[(k->cursor + j) % k->nnodes];
            if (s_fits(p, n) && s_selector_ok(pod, n)) {
                chosen = n;
                k->cursor = (k->cursor + j + 1) % k->nnodes;
                break;
            }
        }
        if (chosen) {
            p->queued = false;
            writes += s_bind(k, p, pod, chosen);
        } else {
            writes += s_write_unsched(k, p, pod, NULL);
            k->queue[w++] = p;
        }
        json_decref(pod);
    }
    k->nqueue = w;
    k->untried = w;
    if (tried >= KUBELET_SCHED_BUDGET)
        k->retry_all = true;
    return writes;
}

/* ---- node work -------------------------------------------------------------------------- */

static int s_delete_node_pods(kubelet_t *k, knode_t *n, bool force)
{
    int writes = 0;
    /* Collect first: deletes deliver events that change the map. */
    size_t cap = 0, cnt = 0;
    char(*keys)[KUBELET_NAME_MAX] = NULL;
    char(*uids)[48] = NULL;
    for (size_t b = 0; b < k->nbuckets; b++)
        for (kpod_t *p = k->buckets[b]; p; p = p->hnext) {
            if (p->node != n || (!force && p->deleting))
                continue;
            if (cnt == cap) {
                size_t c = cap ? cap * 2 : 64;
                void *nk = realloc(keys, c * sizeof(*keys));
                if (!nk)
                    goto out;
                keys = nk;
                void *nu = realloc(uids, c * sizeof(*uids));
                if (!nu)
                    goto out;
                uids = nu;
                cap = c;
            }
            snprintf(keys[cnt], sizeof(keys[cnt]), "%s", p->key);
            snprintf(uids[cnt], sizeof(uids[cnt]), "%s", p->uid);
            cnt++;
        }
    for (size_t i = 0; i < cnt; i++) {
        char *slash = strchr(keys[i], '/');
        if (!slash)
            continue;
        *slash = '\0';
        objstore_delete_opts_t d = {.precond_uid = uids[i]};
        if (force) {
            d.grace_set = true;
            d.grace_seconds = 0;
        }
        objstore_status_t st;
        if (objstore_delete(k->store, k->rpods, keys[i], slash + 1, &d, NULL, NULL, &st) == 0)
            writes++;
    }
out:
    free(keys);
    free(uids);
    return writes;
}

static void s_node_remove(kubelet_t *k, knode_t *n)
{
    for (size_t i = 0; i < k->nnodes; i++)
        if (k->nodes[i] == n) {
            k->nodes[i] = k->nodes[--k->nnodes];
            break;
        }
    if (k->cursor >= k->nnodes)
        k->cursor = 0;
    for (size_t b = 0; b < k->nbuckets; b++)
        for (kpod_t *p = k->buckets[b]; p; p = p->hnext)
            if (p->node == n) {
                s_charge(k, p, false);
                p->node = NULL;
            }
    for (size_t i = 0; i < k->nqueue; i++)
        if (k->queue[i]->node == n)
            k->queue[i]->node = NULL;
    s_heap_remove(k, &n->h);
    s_node_free(n);
}

static int s_run_node(kubelet_t *k, knode_t *n, int action)
{
    int w = 0;
    switch (action) {
    case A_NODEINIT:
        w = s_node_write_status(k, n) == 0;
        if (k->rleases && k->o.lease_ms > 0)
            s_sched_in(k, &n->h, A_LEASE, 0);
        return w;
    case A_LEASE:
        w = s_lease_renew(k, n);
        if (!n->lease_off && !n->lost)
            s_sched_in(k, &n->h, A_LEASE, k->o.lease_ms);
        return w;
    case A_EVICT:
        return s_delete_node_pods(k, n, false);
    case A_NODEGONE:
        w = s_delete_node_pods(k, n, true);
        s_node_remove(k, n);
        return w;
    default:
        return 0;
    }
}

/* ---- public ----------------------------------------------------------------------------- */

int kubelet_tick(kubelet_t *k)
{
    if (!k)
        return 0;
    k->in_tick = true;
    int writes = 0;
    size_t budget = KUBELET_TICK_BUDGET;
    for (int round = 0; round < 4; round++) {
        int64_t now = s_now(k);
        while (k->nheap && k->heap[0]->due <= now && budget) {
            hitem_t *h = k->heap[0];
            int action = h->action;
            s_heap_remove(k, h);
            budget--;
            if (h->kind == HK_NODE)
                writes += s_run_node(k, (knode_t *)h, action);
            else if (h->kind == HK_SUB)
                writes += s_run_sub(k, (ksub_t *)h);
            else if (h->kind == HK_CONT)
                writes += s_run_cont(k, (kcont_t *)h, action);
            else
                writes += s_run_pod(k, (kpod_t *)h, action);
        }
        if (json_object_size(k->probe_dirty)) {
            const char *pk;
            json_t *pv;
            json_object_foreach(k->probe_dirty, pk, pv)
            {
                kpod_t *p = s_pod_find(k, pk);
                if (p && !p->deleting && (p->stage == PS_READY || p->stage == PS_RUNNING)) {
                    p->t_ready = now;
                    writes += s_pod_write(k, p);
                }
            }
            json_object_clear(k->probe_dirty);
        }
        if (s_sched_work(k))
            writes += s_schedule_pass(k);
        if (!budget || !(k->nheap && k->heap[0]->due <= now))
            break;
    }
    k->in_tick = false;
    s_arm(k);
    return writes;
}

void kubelet_opts_default(kubelet_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->node_prefix = KUBELET_NODE_PREFIX;
    o->node_cpu = KUBELET_NODE_CPU;
    o->node_memory = KUBELET_NODE_MEMORY;
    o->node_pods = KUBELET_NODE_PODS;
    o->schedule_ms = KUBELET_SCHEDULE_MS;
    o->create_ms = KUBELET_CREATE_MS;
    o->ready_ms = KUBELET_READY_MS;
    o->jitter_ms = KUBELET_JITTER_MS;
    o->terminate_ms = KUBELET_TERMINATE_MS;
    o->job_run_ms = KUBELET_JOB_RUN_MS;
    o->backoff_ms = KUBELET_BACKOFF_MS;
    o->crash_after_ms = KUBELET_CRASH_AFTER_MS;
    o->lease_ms = KUBELET_LEASE_MS;
    o->eviction_ms = KUBELET_EVICTION_MS;
    o->pod_cidr = KUBELET_POD_CIDR;
    o->submit_poll_ms = KUBELET_SUBMIT_POLL_MS;
    o->submit_dns_fail_ms = KUBELET_SUBMIT_DNS_FAIL_MS;
}

static int s_create_node(kubelet_t *k, const char *name, const char *cpu, const char *mem,
                         const char *pods)
{
    json_t *o =
        json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s,s:s},s:{s:s}},s:{},s:{s:{s:s,s:s,s:s},"
                  "s:{s:s,s:s,s:s}}}",
                  "apiVersion", "v1", "kind", "Node", "metadata", "name", name, "labels",
                  "kubernetes.io/hostname", name, "kubernetes.io/os", "linux", "kubernetes.io/arch",
                  "amd64", "type", "kubesim", "annotations", "node.alpha.kubernetes.io/ttl", "0",
                  "spec", "status", "capacity", "cpu", cpu, "memory", mem, "pods", pods,
                  "allocatable", "cpu", cpu, "memory", mem, "pods", pods);
    if (!o)
        return ERR_NOMEM;
    objstore_status_t st;
    json_t *out = NULL;
    int rc = objstore_create(k->store, k->rnodes, NULL, &o, &out, &st);
    if (rc < 0)
        return rc;
    /* status is dropped on create (status subresource): the node-initialize stage writes it,
     * reading allocatable from our record. */
    knode_t *n = s_node_find(k, name);
    json_decref(out);
    if (n) {
        int64_t c = 0, m = 0, p = 0;
        if (kubelet_parse_quantity(cpu, &c) == 0)
            n->cpu = c;
        if (kubelet_parse_quantity(mem, &m) == 0)
            n->mem = m;
        if (kubelet_parse_quantity(pods, &p) == 0)
            n->pods = p;
        /* Write the status now so allocatable carries this node's own capacity. */
        json_t *cur = NULL;
        if (objstore_get(k->store, k->rnodes, NULL, name, &cur, &st) == 0) {
            json_t *obj = json_copy(cur);
            json_t *tmp = json_pack("{s:{s:{s:s,s:s,s:s}}}", "status", "allocatable", "cpu", cpu,
                                    "memory", mem, "pods", pods);
            json_t *status = s_node_status(k, n, tmp);
            json_decref(tmp);
            json_decref(cur);
            if (obj && status) {
                json_object_set_new(obj, "status", status);
                objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
                objstore_update(k->store, k->rnodes, NULL, name, &obj, &uo, NULL, NULL, &st);
            } else {
                json_decref(obj);
                json_decref(status);
            }
            if (n->h.action == A_NODEINIT) {
                s_heap_remove(k, &n->h);
                if (k->rleases && k->o.lease_ms > 0)
                    s_sched_in(k, &n->h, A_LEASE, 0);
            }
        }
    }
    return 0;
}

int kubelet_add_node(kubelet_t *k, const char *name, const char *cpu, const char *memory,
                     const char *pods)
{
    if (!k || !name || !*name)
        return ERR_INVAL;
    int64_t v;
    cpu = cpu ? cpu : k->def_cpu_s;
    memory = memory ? memory : k->def_mem_s;
    pods = pods ? pods : k->def_pods_s;
    if (kubelet_parse_quantity(cpu, &v) < 0 || kubelet_parse_quantity(memory, &v) < 0 ||
        kubelet_parse_quantity(pods, &v) < 0)
        return ERR_INVAL;
    if (s_node_find(k, name))
        return ERR_EXISTS;
    int rc = s_create_node(k, name, cpu, memory, pods);
    if (rc == 0)
        s_arm(k);
    return rc;
}

kubelet_t *kubelet_new(loop_t *loop, objstore_t *store, const kubelet_opts_t *opts)
{
    if (!store)
        return NULL;
    kubelet_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    if (opts)
        k->o = *opts;
    else
        kubelet_opts_default(&k->o);
    k->loop = loop;
    k->store = store;
    k->rng = k->o.seed ? k->o.seed : 0x9E3779B97F4A7C15ULL;
    k->probe_dirty = json_object();
    if (!k->probe_dirty) {
        free(k);
        return NULL;
    }
    snprintf(k->prefix, sizeof(k->prefix), "%s",
             k->o.node_prefix ? k->o.node_prefix : KUBELET_NODE_PREFIX);
    snprintf(k->def_cpu_s, sizeof(k->def_cpu_s), "%s",
             k->o.node_cpu ? k->o.node_cpu : KUBELET_NODE_CPU);
    snprintf(k->def_mem_s, sizeof(k->def_mem_s), "%s",
             k->o.node_memory ? k->o.node_memory : KUBELET_NODE_MEMORY);
    snprintf(k->def_pods_s, sizeof(k->def_pods_s), "%s",
             k->o.node_pods ? k->o.node_pods : KUBELET_NODE_PODS);
    k->o.node_prefix = k->o.node_cpu = k->o.node_memory = k->o.node_pods = NULL;
    const char *cidr = k->o.pod_cidr ? k->o.pod_cidr : KUBELET_POD_CIDR;
    k->o.pod_cidr = NULL;
    k->rpods = objstore_find(store, "", "pods");
    k->rnodes = objstore_find(store, "", "nodes");
    k->rleases = k->o.lease_ms > 0 ? objstore_find(store, "coordination.k8s.io", "leases") : NULL;
    k->nbuckets = S_HASH_MIN;
    k->buckets = calloc(k->nbuckets, sizeof(*k->buckets));
    objstore_status_t st;
    if (!k->rpods || !k->rnodes || !k->buckets ||
        kubelet_parse_quantity(k->def_cpu_s, &k->def_cpu) < 0 ||
        kubelet_parse_quantity(k->def_mem_s, &k->def_mem) < 0 ||
        kubelet_parse_quantity(k->def_pods_s, &k->def_pods) < 0 || s_parse_cidr(k, cidr) < 0)
        goto fail;
    if (objstore_watch(store, k->rnodes, NULL, NULL, NULL, NULL, s_on_node, k, &k->wnodes, &st) < 0)
        goto fail;
    for (int i = 0; i < k->o.nodes; i++) {
        char name[OBJSTORE_NAME_MAX];
        snprintf(name, sizeof(name), "%s-%d", k->prefix, i);
        if (s_node_find(k, name))
            continue;
        if (s_create_node(k, name, k->def_cpu_s, k->def_mem_s, k->def_pods_s) < 0)
            goto fail;
    }
    if (objstore_watch(store, k->rpods, NULL, NULL, NULL, NULL, s_on_pod, k, &k->wpods, &st) < 0)
        goto fail;
    objstore_res_t *rpvcs = objstore_find(store, "", "persistentvolumeclaims");
    if (rpvcs &&
        objstore_watch(store, rpvcs, NULL, NULL, NULL, NULL, s_on_pvc, k, &k->wpvcs, &st) < 0)
        goto fail;
    s_arm(k);
    return k;
fail:
    kubelet_destroy(&k);
    return NULL;
}

void kubelet_destroy(kubelet_t **kp)
{
    if (!kp || !*kp)
        return;
    kubelet_t *k = *kp;
    objstore_watch_stop(k->store, &k->wpods);
    objstore_watch_stop(k->store, &k->wnodes);
    objstore_watch_stop(k->store, &k->wpvcs);
    if (k->timer > 0 && k->loop)
        loop_cancel_timer(k->loop, k->timer);
    for (size_t i = 0; i < k->nqueue; i++)
        if (k->queue[i]->dead)
            free(k->queue[i]);
    free(k->queue);
    for (size_t b = 0; b < k->nbuckets && k->buckets; b++) {
        kpod_t *p = k->buckets[b];
        while (p) {
            kpod_t *nx = p->hnext;
            if (p->sub) {
                raysubmit_destroy(&p->sub->run);
                free(p->sub);
            }
            for (size_t i = 0; i < p->ncx; i++)
                free(p->cx[i]);
            free(p->cx);
            free(p);
            p = nx;
        }
    }
    free(k->buckets);
    for (size_t i = 0; i < k->nnodes; i++)
        s_node_free(k->nodes[i]);
    free(k->nodes);
    free(k->heap);
    free(k->ip_used);
    json_decref(k->probe_dirty);
    free(k);
    *kp = NULL;
}

int kubelet_inject(kubelet_t *k, const char *ns, const char *name, kubelet_fail_t kind)
{
    if (!k || !ns || !name || kind < KUBELET_FAIL_IMAGEPULL || kind > KUBELET_FAIL_OOM)
        return ERR_INVAL;
    char key[KUBELET_NAME_MAX];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    kpod_t *p = s_pod_find(k, key);
    if (!p)
        return ERR_NOTFOUND;
    if (p->stage == PS_DONE || p->deleting)
        return ERR_STATE;
    if (p->stage < PS_RUNNING) {
        /* Not started yet: the failure applies at start. */
        if (kind == KUBELET_FAIL_IMAGEPULL)
            p->pull_fail = 1;
        else
            p->inject = (int)kind; /* crash right after the start */
        return 0;
    }
    p->inject = (int)kind;
    s_sched_in(k, &p->h, A_CRASH, 0);
    return 0;
}

/* Re-schedules a pod's next stage after its node came back. */
static void s_resume(kubelet_t *k, kpod_t *p)
{
    switch (p->stage) {
    case PS_BOUND:
        s_sched_in(k, &p->h, A_ACCEPT, 0);
        break;
    case PS_ACCEPTED:
    case PS_BACKOFF:
        s_sched_in(k, &p->h, A_START, 0);
        break;
    case PS_PULLFAIL:
        if (p->fail_ann != KUBELET_FAIL_IMAGEPULL)
            s_sched_in(k, &p->h, A_START, 0);
        break;
    case PS_RUNNING:
    case PS_READY:
        s_after_start(k, p);
        break;
    default:
        break;
    }
}

/* Applies node-loss effects to its pods (Ready False) or lifts them. */
static void s_node_pods_ready(kubelet_t *k, knode_t *n, bool lost)
{
    for (size_t b = 0; b < k->nbuckets; b++)
        for (kpod_t *p = k->buckets[b]; p; p = p->hnext) {
            if (p->node != n || p->stage == PS_DONE)
                continue;
            p->node_notready = lost;
            p->t_ready = s_now(k);
            if (lost) {
                s_heap_remove(k, &p->h);
                if (p->sub)
                    s_heap_remove(k, &p->sub->h);
                s_pod_write(k, p);
            } else if (p->deleting) {
                s_sched_in(k, &p->h, A_FINAL, 0);
            } else {
                s_pod_write(k, p);
                s_resume(k, p);
                if (p->sub)
                    s_sched_in(k, &p->sub->h, A_SUBSTEP, 0);
            }
        }
}

int kubelet_fail_node(kubelet_t *k, const char *name)
{
    knode_t *n = k && name ? s_node_find(k, name) : NULL;
    if (!n)
        return ERR_NOTFOUND;
    if (n->lost)
        return ERR_STATE;
    n->lost = true;
    s_node_write_status(k, n);
    s_node_taints(k, n, true);
    s_node_pods_ready(k, n, true);
    s_sched_in(k, &n->h, A_EVICT, k->o.eviction_ms);
    return 0;
}

int kubelet_restore_node(kubelet_t *k, const char *name)
{
    knode_t *n = k && name ? s_node_find(k, name) : NULL;
    if (!n)
        return ERR_NOTFOUND;
    if (!n->lost)
        return ERR_STATE;
    n->lost = false;
    s_heap_remove(k, &n->h);
    s_node_write_status(k, n);
    s_node_taints(k, n, false);
    s_node_pods_ready(k, n, false);
    k->retry_all = true;
    if (k->rleases && k->o.lease_ms > 0 && !n->lease_off)
        s_sched_in(k, &n->h, A_LEASE, 0);
    s_arm(k);
    return 0;
}

void kubelet_set_raysim(kubelet_t *k, raysim_t *r)
{
    if (k)
        k->ray = r;
}

size_t kubelet_submitter_count(const kubelet_t *k)
{
    return k ? k->nsubs : 0;
}

size_t kubelet_node_count(const kubelet_t *k)
{
    return k ? k->nnodes : 0;
}

size_t kubelet_pod_count(const kubelet_t *k)
{
    return k ? k->npods : 0;
}

size_t kubelet_pending_count(const kubelet_t *k)
{
    size_t n = 0;
    for (size_t i = 0; k && i < k->nqueue; i++)
        n += !k->queue[i]->dead && k->queue[i]->stage == PS_NEW;
    return n;
}

#ifdef RF_SELFTEST
#include "simtest.h"
#include "selftest.h"

/* ---- self-test -------------------------------------------------------------------------- */

typedef simtest_clock_t s_clock_t;

/* The core resources (simtest_core), Leases, and the namespace of the node Leases. */
static objstore_t *s_test_store(s_clock_t *clk)
{
    objstore_t *s = objstore_new(0);
    if (!s)
        return NULL;
    static const objstore_resdesc_t leases = {.group = "coordination.k8s.io",
                                              .version = "v1",
                                              .resource = "leases",
                                              .kind = "Lease",
                                              .namespaced = true};
    simtest_core(s, clk, &leases, 1);
    objstore_status_t st;
    json_t *o = json_pack("{s:{s:s}}", "metadata", "name", S_LEASE_NS);
    objstore_create(s, objstore_find(s, "", "namespaces"), NULL, &o, NULL, &st);
    return s;
}

static json_t *s_test_pod(const char *name, const char *cpu, const char *mem)
{
    return json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:[{s:s,s:s,s:{s:{s:s,s:s}}}]}}", "apiVersion",
                     "v1", "kind", "Pod", "metadata", "name", name, "labels", "app", "t", "spec",
                     "containers", "name", "main", "image", "busybox", "resources", "requests",
                     "cpu", cpu, "memory", mem);
}

static json_t *s_test_get(objstore_t *s, const char *ns, const char *name)
{
    json_t *o = NULL;
    objstore_status_t st;
    objstore_res_t *r = objstore_find(s, "", ns ? "pods" : "nodes");
    if (objstore_get(s, r, ns, name, &o, &st) < 0)
        return NULL;
    return o;
}

/* Advances the fake clock in steps, ticking. */
static void s_advance(kubelet_t *k, s_clock_t *clk, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 50) {
        clk->now += 50;
        kubelet_tick(k);
    }
    kubelet_tick(k);
}

static const char *s_c0(const json_t *pod, const char *path)
{
    json_t *c0 = json_array_get(jx_get(pod, "status.containerStatuses"), 0);
    return jx_str(c0, path, "");
}

/* Status of container `name` in pod g (containerStatuses or initContainerStatuses). */
static const json_t *s_cst(const json_t *g, const char *name)
{
    const char *lists[] = {"status.containerStatuses", "status.initContainerStatuses"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(jx_get(g, lists[l]), i, c)
        {
            if (strcmp(jx_str(c, "name", ""), name) == 0)
                return c;
        }
    }
    return NULL;
}

static const json_t *s_tcond(const json_t *g, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(g, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0)
            return c;
    }
    return NULL;
}

/* Native sidecars, per-container exits with the restart rules, the serve-proxy probe. */
static int s_test_containers(bool verbose)
{
    int failed = 0;
    s_clock_t clk = {.now = 1700000000000LL};
    objstore_t *s = s_test_store(&clk);
    objstore_res_t *rp = objstore_find(s, "", "pods");
    objstore_status_t st;
    kubelet_opts_t o;
    kubelet_opts_default(&o);
    o.nodes = 1;
    o.jitter_ms = 0;
    o.create_ms = 100;
    o.ready_ms = 100;
    o.backoff_ms = 300;
    kubelet_t *k = kubelet_new(NULL, s, &o);
    CHECK(k != NULL);
    json_t *pod, *g;

    /* A: a Job-like pod (Never) with an init container and a native sidecar: the sidecar runs
     * beside the main container and does not hold the completion. */
    pod = json_pack("{s:{s:s,s:{s:s}},s:{s:s,s:[{s:s,s:s},{s:s,s:s,s:s}],s:[{s:s,s:s}]}}",
                    "metadata", "name", "a", "annotations", "sim.rayfleet.io/exit.main", "0@1",
                    "spec", "restartPolicy", "Never", "initContainers", "name", "setup", "image",
                    "i", "name", "log", "image", "i", "restartPolicy", "Always", "containers",
                    "name", "main", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 50);
    g = s_test_get(s, "default", "a");
    CHECK(strcmp(jx_str(s_cst(g, "setup"), "state.waiting.reason", ""), "PodInitializing") == 0);
    CHECK(strcmp(jx_str(s_cst(g, "log"), "state.waiting.reason", ""), "PodInitializing") == 0);
    json_decref(g);
    s_advance(k, &clk, 300);
    g = s_test_get(s, "default", "a");
    CHECK(strcmp(jx_str(s_cst(g, "setup"), "state.terminated.reason", ""), "Completed") == 0);
    CHECK(jx_get(s_cst(g, "log"), "state.running") && jx_bool(s_cst(g, "log"), "started", false) &&
          jx_bool(s_cst(g, "log"), "ready", false));
    CHECK(!jx_bool(s_cst(g, "setup"), "started", true));
    CHECK(strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "True") == 0);
    json_decref(g);
    s_advance(k, &clk, 1000);
    g = s_test_get(s, "default", "a");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Succeeded") == 0);
    CHECK(jx_int(s_cst(g, "log"), "state.terminated.exitCode", -1) == 0 &&
          strcmp(jx_str(s_cst(g, "log"), "state.terminated.reason", ""), "Completed") == 0 &&
          !jx_bool(s_cst(g, "log"), "started", true));
    json_decref(g);

    /* B: restartPolicy Always: a second container and a sidecar exit and restart with the
     * doubling back-off, CrashLoopBackOff meanwhile, lastState the exit. */
    pod = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:[{s:s,s:s,s:s}],s:[{s:s,s:s},{s:s,s:s}]}}",
                    "metadata", "name", "b", "annotations", "sim.rayfleet.io/exit.side", "3@1",
                    "sim.rayfleet.io/exit.sc", "0@2.5", "spec", "initContainers", "name", "sc",
                    "image", "i", "restartPolicy", "Always", "containers", "name", "main", "image",
                    "i", "name", "side", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 300);
    g = s_test_get(s, "default", "b");
    const char *uid = jx_str(g, "metadata.uid", "");
    char want[512];
    snprintf(want, sizeof(want), "back-off 1s restarting failed container=side pod=b_default(%s)",
             uid);
    CHECK(strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "True") == 0);
    json_decref(g);
    s_advance(k, &clk, 1000); /* side exits at start + 1 s */
    g = s_test_get(s, "default", "b");
    const json_t *sc = s_cst(g, "side");
    CHECK(strcmp(jx_str(sc, "state.waiting.reason", ""), "CrashLoopBackOff") == 0);
    CHECK(strcmp(jx_str(sc, "state.waiting.message", ""), want) == 0);
    CHECK(jx_int(sc, "restartCount", 0) == 1 &&
          jx_int(sc, "lastState.terminated.exitCode", 0) == 3 &&
          strcmp(jx_str(sc, "lastState.terminated.reason", ""), "Error") == 0);
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Running") == 0);
    CHECK(strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "False") == 0 &&
          strcmp(jx_str(s_tcond(g, "Ready"), "message", ""),
                 "containers with unready status: [side]") == 0);
    CHECK(jx_bool(s_cst(g, "main"), "ready", false)); /* the others keep running */
    json_decref(g);
    s_advance(k, &clk, 300); /* back-off over: running again */
    g = s_test_get(s, "default", "b");
    CHECK(jx_get(s_cst(g, "side"), "state.running") &&
          jx_int(s_cst(g, "side"), "restartCount", 0) == 1);
    CHECK(strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "True") == 0);
    json_decref(g);
    s_advance(k, &clk, 1100); /* the sidecar exits 0 at 2.5 s: restarted all the same */
    g = s_test_get(s, "default", "b");
    sc = s_cst(g, "sc");
    CHECK(strcmp(jx_str(sc, "state.waiting.reason", ""), "CrashLoopBackOff") == 0 &&
          jx_int(sc, "restartCount", 0) == 1 &&
          strcmp(jx_str(sc, "lastState.terminated.reason", ""), "Completed") == 0);
    CHECK(strcmp(jx_str(s_tcond(g, "Ready"), "message", ""),
                 "containers with unready status: [sc side]") == 0); /* side's 2nd exit too */
    CHECK(jx_int(s_cst(g, "side"), "restartCount", 0) == 2); /* 600 ms back-off now */
    json_decref(g);
    s_advance(k, &clk, 300);
    g = s_test_get(s, "default", "b");
    CHECK(jx_get(s_cst(g, "sc"), "state.running") && !jx_get(s_cst(g, "side"), "state.running"));
    json_decref(g);

    /* C: restartPolicy Never: a second container that fails stays terminated, the pod Running
     * but unready; when the first container ends, the pod is Failed. */
    pod = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:s,s:[{s:s,s:s},{s:s,s:s}]}}", "metadata", "name",
                    "c", "annotations", "sim.rayfleet.io/exit.side", "2@0.5",
                    "sim.rayfleet.io/exit.main", "0@2", "spec", "restartPolicy", "Never",
                    "containers", "name", "main", "image", "i", "name", "side", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 1000);
    g = s_test_get(s, "default", "c");
    CHECK(jx_int(s_cst(g, "side"), "state.terminated.exitCode", 0) == 2 &&
          strcmp(jx_str(s_cst(g, "side"), "state.terminated.reason", ""), "Error") == 0 &&
          jx_int(s_cst(g, "side"), "restartCount", -1) == 0);
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Running") == 0 &&
          strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "False") == 0);
    json_decref(g);
    s_advance(k, &clk, 1500);
    g = s_test_get(s, "default", "c");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Failed") == 0);
    CHECK(jx_int(s_cst(g, "main"), "state.terminated.exitCode", -1) == 0);
    json_decref(g);

    /* D: kubelet_set_exit (pod-fault Exit) on a running pod (OnFailure: a clean exit is not
     * restarted), and its refusals. */
    pod = json_pack("{s:{s:s},s:{s:s,s:[{s:s,s:s},{s:s,s:s}]}}", "metadata", "name", "d", "spec",
                    "restartPolicy", "OnFailure", "containers", "name", "main", "image", "i",
                    "name", "side", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 300);
    CHECK(kubelet_set_exit(k, "default", "d", "side", 0, 0.5) == 0);
    CHECK(kubelet_set_exit(k, "default", "d", "main", 0, 0.5) == ERR_INVAL); /* started */
    CHECK(kubelet_set_exit(k, "default", "d", "nope", 0, 0.5) == ERR_INVAL);
    CHECK(kubelet_set_exit(k, "default", "d", "side", 256, 0.5) == ERR_INVAL);
    CHECK(kubelet_set_exit(k, "default", "none", "side", 0, 0.5) == ERR_NOTFOUND);
    s_advance(k, &clk, 700);
    g = s_test_get(s, "default", "d");
    CHECK(strcmp(jx_str(s_cst(g, "side"), "state.terminated.reason", ""), "Completed") == 0);
    json_decref(g);

    /* F: exit.<first container> on a Job's pod is the pod's script (instead of job_run_ms). */
    pod = json_pack("{s:{s:s,s:[{s:s,s:s,s:s,s:s}],s:{s:s}},s:{s:s,s:[{s:s,s:s}]}}", "metadata",
                    "name", "f", "ownerReferences", "apiVersion", "batch/v1", "kind", "Job", "name",
                    "j", "uid", "u-j", "annotations", "sim.rayfleet.io/exit.main", "4@0.3", "spec",
                    "restartPolicy", "Never", "containers", "name", "main", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 600);
    g = s_test_get(s, "default", "f");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Failed") == 0 &&
          jx_int(s_cst(g, "main"), "state.terminated.exitCode", 0) == 4);
    json_decref(g);

    /* G: scripted init containers run in order before the containers (a sidecar before them
     * starts and keeps running); restartPolicy Never: a failed one fails the pod. */
    pod = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:s,s:[{s:s,s:s},{s:s,s:s,s:s},{s:s,s:s}],"
                    "s:[{s:s,s:s}]}}",
                    "metadata", "name", "g", "annotations", "sim.rayfleet.io/exit.a", "0@0.5",
                    "sim.rayfleet.io/exit.b", "2@0.5", "spec", "restartPolicy", "Never",
                    "initContainers", "name", "a", "image", "i", "name", "sc", "image", "i",
                    "restartPolicy", "Always", "name", "b", "image", "i", "containers", "name",
                    "main", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 300);
    g = s_test_get(s, "default", "g");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Pending") == 0);
    CHECK(jx_get(s_cst(g, "a"), "state.running") &&
          strcmp(jx_str(s_cst(g, "sc"), "state.waiting.reason", ""), "PodInitializing") == 0 &&
          strcmp(jx_str(s_cst(g, "b"), "state.waiting.reason", ""), "PodInitializing") == 0 &&
          strcmp(jx_str(s_cst(g, "main"), "state.waiting.reason", ""), "PodInitializing") == 0);
    CHECK(strcmp(jx_str(s_tcond(g, "Initialized"), "status", ""), "False") == 0 &&
          strcmp(jx_str(s_tcond(g, "Initialized"), "reason", ""), "ContainersNotInitialized") ==
              0 &&
          strcmp(jx_str(s_tcond(g, "Initialized"), "message", ""),
                 "containers with incomplete status: [a b]") == 0);
    json_decref(g);
    s_advance(k, &clk, 500);
    g = s_test_get(s, "default", "g");
    CHECK(jx_int(s_cst(g, "a"), "state.terminated.exitCode", -1) == 0 &&
          jx_get(s_cst(g, "sc"), "state.running") && jx_bool(s_cst(g, "sc"), "started", false) &&
          jx_bool(s_cst(g, "sc"), "ready", false) && jx_get(s_cst(g, "b"), "state.running"));
    CHECK(strcmp(jx_str(s_tcond(g, "Initialized"), "message", ""),
                 "containers with incomplete status: [b]") == 0);
    json_decref(g);
    s_advance(k, &clk, 500);
    g = s_test_get(s, "default", "g");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Failed") == 0);
    CHECK(jx_int(s_cst(g, "b"), "state.terminated.exitCode", 0) == 2 &&
          strcmp(jx_str(s_cst(g, "b"), "state.terminated.reason", ""), "Error") == 0 &&
          strcmp(jx_str(s_cst(g, "main"), "state.waiting.reason", ""), "PodInitializing") == 0 &&
          strcmp(jx_str(s_cst(g, "sc"), "state.terminated.reason", ""), "Completed") == 0);
    json_decref(g);

    /* G2: restartPolicy Always: a failing init container is restarted with the back-off
     * (Init:CrashLoopBackOff), the pod stays Pending. */
    pod = json_pack("{s:{s:s,s:{s:s}},s:{s:[{s:s,s:s}],s:[{s:s,s:s}]}}", "metadata", "name", "g2",
                    "annotations", "sim.rayfleet.io/exit.a", "1@0.3", "spec", "initContainers",
                    "name", "a", "image", "i", "containers", "name", "main", "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 600);
    g = s_test_get(s, "default", "g2");
    snprintf(want, sizeof(want), "back-off 1s restarting failed container=a pod=g2_default(%s)",
             jx_str(g, "metadata.uid", ""));
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Pending") == 0 &&
          strcmp(jx_str(s_cst(g, "a"), "state.waiting.reason", ""), "CrashLoopBackOff") == 0 &&
          strcmp(jx_str(s_cst(g, "a"), "state.waiting.message", ""), want) == 0 &&
          jx_int(s_cst(g, "a"), "restartCount", 0) == 1 &&
          jx_int(s_cst(g, "a"), "lastState.terminated.exitCode", 0) == 1);
    json_decref(g);

    /* G3: an init container that exits 0, then the containers run to Succeeded. */
    pod = json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:s,s:[{s:s,s:s}],s:[{s:s,s:s}]}}", "metadata", "name",
                    "g3", "annotations", "sim.rayfleet.io/exit.a", "0@0.3",
                    "sim.rayfleet.io/exit.main", "0@0.3", "spec", "restartPolicy", "Never",
                    "initContainers", "name", "a", "image", "i", "containers", "name", "main",
                    "image", "i");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 1200);
    g = s_test_get(s, "default", "g3");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Succeeded") == 0 &&
          strcmp(jx_str(s_cst(g, "a"), "state.terminated.reason", ""), "Completed") == 0 &&
          strcmp(jx_str(s_tcond(g, "Initialized"), "status", ""), "True") == 0);
    json_decref(g);

    /* E: the serve-proxy control fails a /-/healthz readiness probe (KubeRay's workers). */
    pod = json_pack("{s:{s:s,s:{s:s}},s:{s:[{s:s,s:s,s:{s:{s:[s,s]}}}]}}", "metadata", "name", "e",
                    "annotations", RAYSIM_ANN_SERVE_PROXY, "down", "spec", "containers", "name",
                    "ray-worker", "image", "i", "readinessProbe", "exec", "command", "bash",
                    "wget -q -O- http://localhost:8000/-/healthz | grep success");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 400);
    g = s_test_get(s, "default", "e");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Running") == 0 &&
          strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "False") == 0 &&
          strcmp(jx_str(s_tcond(g, "Ready"), "message", ""),
                 "containers with unready status: [ray-worker]") == 0);
    json_t *up = json_deep_copy(g);
    json_decref(g);
    json_object_del(jx_get(up, "metadata.annotations"), RAYSIM_ANN_SERVE_PROXY);
    objstore_update_opts_t uo = {.precond = OBJSTORE_PRECOND_NONE};
    CHECK(objstore_update(s, rp, "default", "e", &up, &uo, NULL, NULL, &st) == 0);
    s_advance(k, &clk, 50);
    g = s_test_get(s, "default", "e");
    CHECK(strcmp(jx_str(s_tcond(g, "Ready"), "status", ""), "True") == 0);
    json_decref(g);

    kubelet_destroy(&k);
    objstore_destroy(&s);
    (void)verbose;
    return failed;
}

int kubelet_test(bool verbose)
{
    int failed = 0;
    int64_t q = 0;
    CHECK(kubelet_parse_quantity("100m", &q) == 0 && q == 100);
    CHECK(kubelet_parse_quantity("1", &q) == 0 && q == 1000);
    CHECK(kubelet_parse_quantity("1.5", &q) == 0 && q == 1500);
    CHECK(kubelet_parse_quantity("2Gi", &q) == 0 && q == 2147483648LL * 1000);
    CHECK(kubelet_parse_quantity("1G", &q) == 0 && q == 1000000000LL * 1000);
    CHECK(kubelet_parse_quantity("512Mi", &q) == 0 && q == 536870912LL * 1000);
    CHECK(kubelet_parse_quantity("1e3", &q) == 0 && q == 1000000);
    CHECK(kubelet_parse_quantity("0.1", &q) == 0 && q == 100);
    CHECK(kubelet_parse_quantity("1k", &q) == 0 && q == 1000000);
    CHECK(kubelet_parse_quantity("", &q) == ERR_INVAL);
    CHECK(kubelet_parse_quantity("abc", &q) == ERR_INVAL);
    CHECK(kubelet_parse_quantity("1Xi", &q) == ERR_INVAL);
    CHECK(kubelet_parse_quantity("-1", &q) == ERR_INVAL);
    CHECK(kubelet_parse_quantity("100Ei", &q) == ERR_TOOBIG);
    CHECK(kubelet_fail_parse("oom") == KUBELET_FAIL_OOM);
    CHECK(kubelet_fail_parse("x") == 0);

    s_clock_t clk = {.now = 1700000000000LL};
    objstore_t *s = s_test_store(&clk);
    CHECK(s != NULL);
    objstore_res_t *rp = objstore_find(s, "", "pods");
    objstore_status_t st;
    kubelet_opts_t o;
    kubelet_opts_default(&o);
    o.nodes = 2;
    o.node_cpu = "2";
    o.node_memory = "4Gi";
    o.node_pods = "3";
    o.jitter_ms = 0;
    o.create_ms = 100;
    o.ready_ms = 100;
    o.job_run_ms = 500;
    o.backoff_ms = 300;
    o.pod_cidr = "bad";
    CHECK(kubelet_new(NULL, s, &o) == NULL);
    o.pod_cidr = "10.244.0.0/16";
    kubelet_t *k = kubelet_new(NULL, s, &o);
    CHECK(k != NULL);
    CHECK(kubelet_node_count(k) == 2);
    json_t *node = s_test_get(s, NULL, "kubesim-node-0");
    CHECK(s_ready_true(node));
    CHECK(strcmp(jx_str(node, "status.allocatable.cpu", ""), "2") == 0);
    json_decref(node);
    kubelet_tick(k);
    json_t *lease = NULL;
    CHECK(objstore_get(s, objstore_find(s, "coordination.k8s.io", "leases"), S_LEASE_NS,
                       "kubesim-node-1", &lease, &st) == 0);
    json_decref(lease);

    /* A pod is bound, accepted, Running, then Ready with IPs. */
    json_t *pod = s_test_pod("p1", "500m", "1Gi");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    kubelet_tick(k);
    json_t *g = s_test_get(s, "default", "p1");
    CHECK(*jx_str(g, "spec.nodeName", "") != '\0');
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Pending") == 0);
    CHECK(strcmp(s_c0(g, "state.waiting.reason"), "ContainerCreating") == 0);
    json_decref(g);
    s_advance(k, &clk, 120);
    g = s_test_get(s, "default", "p1");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Running") == 0);
    CHECK(strncmp(jx_str(g, "status.podIP", ""), "10.244.", 7) == 0);
    CHECK(strncmp(jx_str(g, "status.hostIP", ""), "10.1.", 5) == 0);
    CHECK(!jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", true));
    json_decref(g);
    s_advance(k, &clk, 120);
    g = s_test_get(s, "default", "p1");
    CHECK(jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", false));
    json_t *c;
    size_t i;
    int ready_true = 0;
    json_array_foreach(jx_get(g, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "status", ""), "True") == 0)
            ready_true++;
    }
    CHECK(ready_true == 5);
    json_decref(g);

    /* Too big: Unschedulable with kube's message; a new node makes it fit. */
    pod = s_test_pod("big", "3", "1Gi");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 100);
    g = s_test_get(s, "default", "big");
    json_t *c0 = json_array_get(jx_get(g, "status.conditions"), 0);
    CHECK(strcmp(jx_str(c0, "reason", ""), "Unschedulable") == 0);
    CHECK(strcmp(jx_str(c0, "message", ""),
                 "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are "
                 "available: 2 No preemption victims found for incoming pod.") == 0);
    if (verbose)
        printf("unschedulable: %s\n", jx_str(c0, "message", ""));
    json_decref(g);
    CHECK(kubelet_pending_count(k) == 1);
    CHECK(kubelet_add_node(k, "huge", "8", "16Gi", "10") == 0);
    CHECK(kubelet_add_node(k, "huge", NULL, NULL, NULL) == ERR_EXISTS);
    CHECK(kubelet_add_node(k, "bad", "x", NULL, NULL) == ERR_INVAL);
    s_advance(k, &clk, 300);
    g = s_test_get(s, "default", "big");
    CHECK(strcmp(jx_str(g, "spec.nodeName", ""), "huge") == 0);
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Running") == 0);
    json_decref(g);
    CHECK(kubelet_pending_count(k) == 0);

    /* nodeSelector honoured. */
    pod = s_test_pod("sel", "100m", "1Mi");
    json_object_set_new(json_object_get(pod, "spec"), "nodeSelector",
                        json_pack("{s:s}", "kubernetes.io/hostname", "kubesim-node-1"));
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 50);
    g = s_test_get(s, "default", "sel");
    CHECK(strcmp(jx_str(g, "spec.nodeName", ""), "kubesim-node-1") == 0);
    json_decref(g);

    /* Job-like pods complete with their scripted exit code. */
    pod = s_test_pod("ok", "100m", "1Mi");
    json_object_set_new(json_object_get(pod, "spec"), "restartPolicy", json_string("Never"));
    json_object_set_new(json_object_get(pod, "metadata"), "annotations",
                        json_pack("{s:s}", KUBELET_ANN_RUN_SECONDS, "0.3"));
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    pod = s_test_pod("bad", "100m", "1Mi");
    json_object_set_new(json_object_get(pod, "spec"), "restartPolicy", json_string("Never"));
    json_object_set_new(
        json_object_get(pod, "metadata"), "annotations",
        json_pack("{s:s,s:s}", KUBELET_ANN_RUN_SECONDS, "0.3", KUBELET_ANN_EXIT_CODE, "3"));
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 800);
    g = s_test_get(s, "default", "ok");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Succeeded") == 0);
    CHECK(strcmp(s_c0(g, "state.terminated.reason"), "Completed") == 0);
    json_decref(g);
    g = s_test_get(s, "default", "bad");
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Failed") == 0);
    CHECK(jx_int(json_array_get(jx_get(g, "status.containerStatuses"), 0),
                 "state.terminated.exitCode", 0) == 3);
    json_decref(g);

    /* Injected failures. */
    CHECK(kubelet_inject(k, "default", "nope", KUBELET_FAIL_CRASH) == ERR_NOTFOUND);
    CHECK(kubelet_inject(k, "default", "ok", KUBELET_FAIL_CRASH) == ERR_STATE);
    CHECK(kubelet_inject(k, "default", "p1", 99) == ERR_INVAL);
    CHECK(kubelet_inject(k, "default", "p1", KUBELET_FAIL_CRASH) == 0);
    kubelet_tick(k);
    g = s_test_get(s, "default", "p1");
    CHECK(strcmp(s_c0(g, "state.waiting.reason"), "CrashLoopBackOff") == 0);
    CHECK(jx_int(json_array_get(jx_get(g, "status.containerStatuses"), 0), "restartCount", 0) == 1);
    CHECK(strcmp(s_c0(g, "lastState.terminated.reason"), "Error") == 0);
    json_decref(g);
    s_advance(k, &clk, 500);
    g = s_test_get(s, "default", "p1");
    CHECK(jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", false));
    json_decref(g);
    CHECK(kubelet_inject(k, "default", "p1", KUBELET_FAIL_OOM) == 0);
    kubelet_tick(k);
    g = s_test_get(s, "default", "p1");
    CHECK(strcmp(s_c0(g, "lastState.terminated.reason"), "OOMKilled") == 0);
    CHECK(jx_int(json_array_get(jx_get(g, "status.containerStatuses"), 0),
                 "lastState.terminated.exitCode", 0) == 137);
    json_decref(g);
    pod = s_test_pod("pull", "100m", "1Mi");
    json_object_set_new(json_object_get(pod, "metadata"), "annotations",
                        json_pack("{s:s}", KUBELET_ANN_FAIL, "ImagePull"));
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 200);
    g = s_test_get(s, "default", "pull");
    CHECK(strcmp(s_c0(g, "state.waiting.reason"), "ErrImagePull") == 0);
    CHECK(strcmp(jx_str(g, "status.phase", ""), "Pending") == 0);
    json_decref(g);
    s_advance(k, &clk, 600);
    g = s_test_get(s, "default", "pull");
    CHECK(strcmp(s_c0(g, "state.waiting.reason"), "ImagePullBackOff") == 0);
    json_decref(g);

    /* Graceful deletion ends in the final delete after terminate_ms. */
    objstore_delete_opts_t dopt = {0};
    bool deleted = true;
    CHECK(objstore_delete(s, rp, "default", "sel", &dopt, NULL, &deleted, &st) == 0);
    CHECK(!deleted);
    s_advance(k, &clk, 500);
    g = s_test_get(s, "default", "sel");
    CHECK(g != NULL);
    json_decref(g);
    s_advance(k, &clk, 600);
    g = s_test_get(s, "default", "sel");
    CHECK(g == NULL);

    /* Node loss: Ready Unknown, pods not ready, evicted later; restore. */
    g = s_test_get(s, "default", "p1");
    char nodename[OBJSTORE_NAME_MAX];
    snprintf(nodename, sizeof(nodename), "%s", jx_str(g, "spec.nodeName", ""));
    json_decref(g);
    CHECK(kubelet_fail_node(k, "nope") == ERR_NOTFOUND);
    CHECK(kubelet_fail_node(k, nodename) == 0);
    CHECK(kubelet_fail_node(k, nodename) == ERR_STATE);
    node = s_test_get(s, NULL, nodename);
    CHECK(!s_ready_true(node));
    CHECK(json_array_size(jx_get(node, "spec.taints")) == 2);
    json_decref(node);
    g = s_test_get(s, "default", "p1");
    CHECK(!jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", true));
    json_decref(g);
    CHECK(kubelet_restore_node(k, nodename) == 0);
    CHECK(kubelet_restore_node(k, nodename) == ERR_STATE);
    s_advance(k, &clk, 300);
    node = s_test_get(s, NULL, nodename);
    CHECK(s_ready_true(node));
    CHECK(json_array_size(jx_get(node, "spec.taints")) == 0);
    json_decref(node);
    g = s_test_get(s, "default", "p1");
    CHECK(jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", false));
    json_decref(g);
    /* Lost again past the eviction timeout: the pod is deleted and stays Terminating. */
    k->o.eviction_ms = 1000;
    CHECK(kubelet_fail_node(k, nodename) == 0);
    s_advance(k, &clk, 1200);
    g = s_test_get(s, "default", "p1");
    CHECK(g && jx_get(g, "metadata.deletionTimestamp") != NULL);
    json_decref(g);
    /* Deleting the Node force-deletes its pods. */
    objstore_res_t *rn = objstore_find(s, "", "nodes");
    CHECK(objstore_delete(s, rn, NULL, nodename, NULL, NULL, NULL, &st) == 0);
    s_advance(k, &clk, 100);
    g = s_test_get(s, "default", "p1");
    CHECK(g == NULL);
    CHECK(kubelet_node_count(k) == 2);

    /* Deleting a pending pod frees it from the queue. */
    pod = s_test_pod("huge2", "100", "1Gi");
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 100);
    CHECK(kubelet_pending_count(k) == 1);
    CHECK(objstore_delete(s, rp, "default", "huge2", NULL, NULL, NULL, &st) == 0);
    s_advance(k, &clk, 100);
    CHECK(kubelet_pending_count(k) == 0);
    /* An extended resource no node has: Unschedulable "Insufficient nvidia.com/gpu" (limits
     * stand in for requests); once a device plugin puts it in a node's allocatable (kept by the
     * kubelet's own status writes), that node takes the pod. */
    pod = s_test_pod("gpu", "100m", "1Mi");
    json_object_set_new(
        json_object_get(json_array_get(jx_get(pod, "spec.containers"), 0), "resources"), "limits",
        json_pack("{s:s}", "nvidia.com/gpu", "1"));
    CHECK(objstore_create(s, rp, "default", &pod, NULL, &st) == 0);
    s_advance(k, &clk, 50);
    g = s_test_get(s, "default", "gpu");
    c0 = json_array_get(jx_get(g, "status.conditions"), 0);
    CHECK(strcmp(jx_str(c0, "reason", ""), "Unschedulable") == 0);
    CHECK(strcmp(jx_str(c0, "message", ""),
                 "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes "
                 "are available: 2 No preemption victims found for incoming pod.") == 0);
    if (verbose)
        printf("unschedulable: %s\n", jx_str(c0, "message", ""));
    json_decref(g);
    CHECK(kubelet_add_node(k, "gpu-node", "4", "8Gi", "10") == 0);
    g = s_test_get(s, NULL, "gpu-node");
    json_t *gn = json_copy(g);
    json_decref(g);
    json_object_set_new(jx_get(gn, "status.allocatable"), "nvidia.com/gpu", json_string("2"));
    objstore_update_opts_t guo = {.precond = OBJSTORE_PRECOND_NONE, .status = true};
    CHECK(objstore_update(s, rn, NULL, "gpu-node", &gn, &guo, NULL, NULL, &st) == 0);
    s_advance(k, &clk, 300);
    g = s_test_get(s, "default", "gpu");
    CHECK(strcmp(jx_str(g, "spec.nodeName", ""), "gpu-node") == 0);
    json_decref(g);
    kubelet_destroy(&k);
    CHECK(k == NULL);
    kubelet_destroy(&k);
    objstore_destroy(&s);

    /* Scale and the real loop: 100 nodes x 5,000 pods, driven by the timer. */
    s = s_test_store(&clk);
    objstore_set_clock(s, NULL, NULL);
    loop_t *loop = loop_new();
    kubelet_opts_default(&o);
    o.nodes = 100;
    o.create_ms = 5;
    o.ready_ms = 5;
    o.jitter_ms = 5;
    k = kubelet_new(loop, s, &o);
    CHECK(k != NULL);
    rp = objstore_find(s, "", "pods");
    int64_t t0 = loop_clock_ms();
    for (int n = 0; n < 5000; n++) {
        char name[32];
        snprintf(name, sizeof(name), "s%d", n);
        pod = s_test_pod(name, "100m", "100Mi");
        objstore_create(s, rp, "default", &pod, NULL, &st);
    }
    int64_t t1 = loop_clock_ms();
    for (int it = 0; it < 2000 && loop_clock_ms() - t0 < 10000; it++) {
        loop_run_once(loop, 20);
        g = s_test_get(s, "default", "s4999");
        bool done =
            g && jx_get(g, "status.podIP") &&
            jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", false);
        json_decref(g);
        if (done)
            break;
    }
    int64_t t2 = loop_clock_ms();
    g = s_test_get(s, "default", "s4999");
    CHECK(g && jx_bool(json_array_get(jx_get(g, "status.containerStatuses"), 0), "ready", false));
    json_decref(g);
    if (verbose)
        printf("kubelet: 5000 pods created in %lld ms, all Ready %lld ms later\n",
               (long long)(t1 - t0), (long long)(t2 - t1));
    kubelet_destroy(&k);
    loop_destroy(&loop);
    objstore_destroy(&s);
    failed += s_test_containers(verbose);
    return SELFTEST_RESULT("kubelet", verbose);
}

#endif /* RF_SELFTEST */
