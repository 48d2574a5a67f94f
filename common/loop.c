/*
 * loop: a zmq_poll reactor with a timer heap, before-sleep hooks and a signal self-pipe.
 *
 * Poll items (sockets and fds) live in one array handed to zmq_poll as is. Removing an item while
 * dispatching only clears its handler; the array is compacted before the next poll, so handlers
 * may add and remove freely. Timers live in a binary min-heap ordered by (due time, id), so the
 * nearest timer is found in O(1) and fired in order; cancellation is lazy (the entry is marked
 * and skipped when it reaches the top), with the heap rebuilt when dead entries dominate.
 */
#include "loop.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define LOOP_MAX_SIGNALS 65

typedef struct {
    loop_fd_fn *fd_fn; /* for raw fds */
    loop_socket_fn *socket_fn; /* for ZeroMQ sockets */
    void *arg; /* handed back to the handler */
    bool removed; /* taken out during dispatch; compacted before the next poll */
} poll_handler_t;

typedef struct {
    int64_t due; /* monotonic ms */
    int64_t seq; /* arming order; ties on `due` fire in this order */
    int64_t id; /* the timer's id, stable across re-arming */
} timer_key_t;

typedef struct {
    loop_timer_fn *fn; /* NULL once cancelled or fired */
    void *arg; /* handed back to fn */
    int64_t id; /* the id loop_add_timer returned */
} timer_slot_t;

typedef struct {
    loop_hook_fn *fn; /* run before every poll */
    void *arg; /* handed back to fn */
} hook_t;

typedef struct {
    loop_signal_fn *fn; /* NULL when the signal is not watched */
    void *arg; /* handed back to fn */
} signal_handler_t;

struct loop {
    zmq_pollitem_t *items; /* what zmq_poll watches */
    poll_handler_t *handlers; /* parallel to items */
    size_t n_items; /* used entries */
    size_t cap_items; /* allocated entries */
    bool need_compact; /* some handler was removed */
    timer_key_t *heap; /* min-heap of armed timers (may hold cancelled ones) */
    size_t n_heap; /* entries in the heap */
    size_t cap_heap; /* allocated heap entries */
    timer_slot_t *slots; /* timer callbacks, open-addressed by id */
    size_t cap_slots; /* power of two */
    size_t n_live; /* timers armed and not cancelled */
    int64_t next_timer_id; /* last id handed out */
    int64_t next_seq; /* last arming sequence number */
    hook_t *hooks; /* before-sleep hooks */
    size_t n_hooks; /* hooks in use */
    bool in_hooks; /* running the hooks: a removal leaves a NULL fn, compacted after */
    signal_handler_t signals[LOOP_MAX_SIGNALS]; /* by signal number */
    int sig_pipe[2]; /* self-pipe: the handler writes the signal number */
    int64_t now; /* monotonic ms at the start of this iteration */
    bool stop; /* loop_stop() was called */
};

/* The one self-pipe write end the async-signal handler uses (signals are process-wide). */
static volatile sig_atomic_t s_sig_fd = -1;

int64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

loop_t *loop_new(void)
{
    loop_t *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->sig_pipe[0] = -1;
    loop->sig_pipe[1] = -1;
    loop->cap_slots = 64;
    loop->slots = calloc(loop->cap_slots, sizeof *loop->slots);
    if (!loop->slots) {
        free(loop);
        return NULL;
    }
    loop->now = loop_clock_ms();
    return loop;
}

void loop_destroy(loop_t **loop_p)
{
    if (!loop_p || !*loop_p)
        return;
    loop_t *loop = *loop_p;
    for (int s = 1; s < LOOP_MAX_SIGNALS; s++) {
        if (loop->signals[s].fn)
            signal(s, SIG_DFL);
    }
    if (loop->sig_pipe[0] >= 0) {
        s_sig_fd = -1;
        close(loop->sig_pipe[0]);
        close(loop->sig_pipe[1]);
    }
    free(loop->items);
    free(loop->handlers);
    free(loop->heap);
    free(loop->slots);
    free(loop->hooks);
    free(loop);
    *loop_p = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Poll items
 */

static short s_zmq_events(int events)
{
    short e = 0;
    if (events & LOOP_READ)
        e |= ZMQ_POLLIN;
    if (events & LOOP_WRITE)
        e |= ZMQ_POLLOUT;
    return e;
}

static int s_loop_events(short revents)
{
    int e = 0;
    if (revents & ZMQ_POLLIN)
        e |= LOOP_READ;
    if (revents & ZMQ_POLLOUT)
        e |= LOOP_WRITE;
    if (revents & ZMQ_POLLERR)
        e |= LOOP_ERROR;
    return e;
}

/* Index of the live item for (socket, fd), or -1. */
static ssize_t s_find_item(const loop_t *loop, void *socket, int fd)
{
    for (size_t i = 0; i < loop->n_items; i++) {
        if (loop->handlers[i].removed)
            continue;
        if (socket ? loop->items[i].socket == socket
                   : (!loop->items[i].socket && loop->items[i].fd == fd))
            return (ssize_t)i;
    }
    return -1;
}

static int s_add_item(loop_t *loop, void *socket, int fd, int events, loop_fd_fn *fd_fn,
                      loop_socket_fn *socket_fn, void *arg)
{
    if ((!socket && fd < 0) || (!fd_fn && !socket_fn))
        return ERR_INVAL;
    ssize_t at = s_find_item(loop, socket, fd);
    if (at < 0) {
        if (loop->n_items == loop->cap_items) {
            size_t cap = loop->cap_items ? loop->cap_items * 2 : 16;
            zmq_pollitem_t *items = realloc(loop->items, cap * sizeof *items);
            if (!items)
                return ERR_NOMEM;
            loop->items = items;
            poll_handler_t *handlers = realloc(loop->handlers, cap * sizeof *handlers);
            if (!handlers)
                return ERR_NOMEM;
            loop->handlers = handlers;
            loop->cap_items = cap;
        }
        at = (ssize_t)loop->n_items++;
    }
    loop->items[at] =
        (zmq_pollitem_t){.socket = socket, .fd = socket ? 0 : fd, .events = s_zmq_events(events)};
    loop->handlers[at] = (poll_handler_t){.fd_fn = fd_fn, .socket_fn = socket_fn, .arg = arg};
    return 0;
}

static int s_remove_item(loop_t *loop, void *socket, int fd)
{
    ssize_t at = s_find_item(loop, socket, fd);
    if (at < 0)
        return ERR_NOTFOUND;
    loop->handlers[at].removed = true;
    loop->items[at].events = 0;
    loop->need_compact = true;
    return 0;
}

static void s_compact(loop_t *loop)
{
    size_t w = 0;
    for (size_t r = 0; r < loop->n_items; r++) {
        if (loop->handlers[r].removed)
            continue;
        loop->items[w] = loop->items[r];
        loop->handlers[w] = loop->handlers[r];
        w++;
    }
    loop->n_items = w;
    loop->need_compact = false;
}

int loop_add_fd(loop_t *loop, int fd, int events, loop_fd_fn *fn, void *arg)
{
    return s_add_item(loop, NULL, fd, events, fn, NULL, arg);
}

int loop_set_fd_events(loop_t *loop, int fd, int events)
{
    ssize_t at = s_find_item(loop, NULL, fd);
    if (at < 0)
        return ERR_NOTFOUND;
    loop->items[at].events = s_zmq_events(events);
    return 0;
}

int loop_remove_fd(loop_t *loop, int fd)
{
    return s_remove_item(loop, NULL, fd);
}

int loop_add_socket(loop_t *loop, void *socket, int events, loop_socket_fn *fn, void *arg)
{
    if (!socket)
        return ERR_INVAL;
    return s_add_item(loop, socket, -1, events, NULL, fn, arg);
}

int loop_remove_socket(loop_t *loop, void *socket)
{
    if (!socket)
        return ERR_INVAL;
    return s_remove_item(loop, socket, -1);
}

/* ---------------------------------------------------------------------------------------------
 * Timers: a min-heap of (due, id) plus an open-addressed table id -> callback.
 */

static bool s_key_less(timer_key_t a, timer_key_t b)
{
    return a.due < b.due || (a.due == b.due && a.seq < b.seq);
}

static void s_heap_up(timer_key_t *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_key_less(h[i], h[parent]))
            break;
        timer_key_t t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

static void s_heap_down(timer_key_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        if (l < n && s_key_less(h[l], h[m]))
            m = l;
        if (r < n && s_key_less(h[r], h[m]))
            m = r;
        if (m == i)
            return;
        timer_key_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Pushes a key, growing the heap as needed. Returns 0 or ERR_NOMEM. */
static int s_heap_push(loop_t *loop, timer_key_t key)
{
    if (loop->n_heap == loop->cap_heap) {
        size_t cap = loop->cap_heap ? loop->cap_heap * 2 : 16;
        timer_key_t *heap = realloc(loop->heap, cap * sizeof *heap);
        if (!heap)
            return ERR_NOMEM;
        loop->heap = heap;
        loop->cap_heap = cap;
    }
    loop->heap[loop->n_heap] = key;
    s_heap_up(loop->heap, loop->n_heap);
    loop->n_heap++;
    return 0;
}

static void s_heap_pop(loop_t *loop)
{
    loop->heap[0] = loop->heap[--loop->n_heap];
    s_heap_down(loop->heap, loop->n_heap, 0);
}

/* The slot of timer `id`, or NULL. */
static timer_slot_t *s_slot_find(loop_t *loop, int64_t id)
{
    size_t mask = loop->cap_slots - 1;
    for (size_t i = (size_t)id & mask, probes = 0; probes < loop->cap_slots;
         i = (i + 1) & mask, probes++) {
        if (loop->slots[i].id == id)
            return &loop->slots[i];
        if (loop->slots[i].id == 0)
            return NULL;
    }
    return NULL;
}

/* Removes a slot, re-placing the entries of its probe run (backward-shift deletion). */
static void s_slot_erase(loop_t *loop, timer_slot_t *slot)
{
    size_t mask = loop->cap_slots - 1;
    size_t hole = (size_t)(slot - loop->slots);
    loop->slots[hole] = (timer_slot_t){0};
    for (size_t i = (hole + 1) & mask; loop->slots[i].id != 0; i = (i + 1) & mask) {
        size_t home = (size_t)loop->slots[i].id & mask;
        bool movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i);
        if (movable) {
            loop->slots[hole] = loop->slots[i];
            loop->slots[i] = (timer_slot_t){0};
            hole = i;
        }
    }
}

static int s_slot_insert(loop_t *loop, timer_slot_t slot);

static int s_slots_grow(loop_t *loop)
{
    size_t old_cap = loop->cap_slots;
    timer_slot_t *old = loop->slots;
    timer_slot_t *slots = calloc(old_cap * 2, sizeof *slots);
    if (!slots)
        return ERR_NOMEM;
    loop->slots = slots;
    loop->cap_slots = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].id != 0)
            s_slot_insert(loop, old[i]);
    }
    free(old);
    return 0;
}

static int s_slot_insert(loop_t *loop, timer_slot_t slot)
{
    if ((loop->n_live + 1) * 2 > loop->cap_slots) {
        int rc = s_slots_grow(loop);
        if (rc)
            return rc;
    }
    size_t mask = loop->cap_slots - 1;
    size_t i = (size_t)slot.id & mask;
    while (loop->slots[i].id != 0)
        i = (i + 1) & mask;
    loop->slots[i] = slot;
    return 0;
}

int64_t loop_add_timer(loop_t *loop, int64_t delay_ms, loop_timer_fn *fn, void *arg)
{
    if (!fn || delay_ms < 0)
        return ERR_INVAL;
    int64_t id = ++loop->next_timer_id;
    timer_key_t key = {.due = loop_clock_ms() + delay_ms, .seq = ++loop->next_seq, .id = id};
    int rc = s_heap_push(loop, key);
    if (rc)
        return rc;
    rc = s_slot_insert(loop, (timer_slot_t){.fn = fn, .arg = arg, .id = id});
    if (rc)
        return rc; // the heap entry has no slot and is skipped as cancelled
    loop->n_live++;
    return id;
}

/* Drops cancelled entries from the heap when they are most of it, so it cannot grow unbounded
 * under arm/cancel churn. */
static void s_heap_rebuild_if_sparse(loop_t *loop)
{
    if (loop->n_heap < 64 || loop->n_heap < 4 * loop->n_live)
        return;
    size_t w = 0;
    for (size_t r = 0; r < loop->n_heap; r++) {
        if (s_slot_find(loop, loop->heap[r].id))
            loop->heap[w++] = loop->heap[r];
    }
    loop->n_heap = w;
    for (size_t i = w / 2; i-- > 0;)
        s_heap_down(loop->heap, w, i);
}

int loop_cancel_timer(loop_t *loop, int64_t timer_id)
{
    timer_slot_t *slot = timer_id > 0 ? s_slot_find(loop, timer_id) : NULL;
    if (!slot)
        return ERR_NOTFOUND;
    s_slot_erase(loop, slot);
    loop->n_live--;
    s_heap_rebuild_if_sparse(loop);
    return 0;
}

size_t loop_timer_count(const loop_t *loop)
{
    return loop->n_live;
}

/* Fires due timers in order. Returns 0 or the negative value a callback asked to stop with. */
static int s_fire_timers(loop_t *loop)
{
    // A timer re-armed during this pass waits for the next iteration, or a 0 ms periodic timer
    // would spin here forever: only entries armed before the pass began may fire.
    int64_t limit_seq = loop->next_seq;
    int64_t now = loop_clock_ms();
    while (loop->n_heap > 0 && loop->heap[0].due <= now && loop->heap[0].seq <= limit_seq) {
        timer_key_t top = loop->heap[0];
        s_heap_pop(loop);
        timer_slot_t *slot = s_slot_find(loop, top.id);
        if (!slot)
            continue; // cancelled
        timer_slot_t t = *slot;
        int64_t next = t.fn(loop, t.id, t.arg);
        if (!s_slot_find(loop, t.id))
            continue; // the callback cancelled its own timer
        if (next >= 0) {
            int rc = s_heap_push(
                loop, (timer_key_t){.due = now + next, .seq = ++loop->next_seq, .id = t.id});
            if (rc)
                return rc;
        } else {
            s_slot_erase(loop, s_slot_find(loop, t.id));
            loop->n_live--;
            if (next < LOOP_TIMER_DONE)
                return (int)next;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Hooks and signals
 */

int loop_add_before_sleep(loop_t *loop, loop_hook_fn *fn, void *arg)
{
    if (!fn)
        return ERR_INVAL;
    hook_t *hooks = realloc(loop->hooks, (loop->n_hooks + 1) * sizeof *hooks);
    if (!hooks)
        return ERR_NOMEM;
    loop->hooks = hooks;
    loop->hooks[loop->n_hooks++] = (hook_t){.fn = fn, .arg = arg};
    return 0;
}

int loop_remove_before_sleep(loop_t *loop, loop_hook_fn *fn, void *arg)
{
    for (size_t i = 0; i < loop->n_hooks; i++) {
        if (loop->hooks[i].fn == fn && loop->hooks[i].arg == arg) {
            if (loop->in_hooks) {
                loop->hooks[i].fn = NULL;
                return 0;
            }
            memmove(&loop->hooks[i], &loop->hooks[i + 1],
                    (loop->n_hooks - i - 1) * sizeof loop->hooks[0]);
            loop->n_hooks--;
            return 0;
        }
    }
    return ERR_NOTFOUND;
}

static void s_on_signal(int signo)
{
    int saved = errno;
    int fd = s_sig_fd;
    if (fd >= 0) {
        unsigned char b = (unsigned char)signo;
        ssize_t w = write(fd, &b, 1); // a full pipe drops the byte: the signal is pending anyway
        (void)w;
    }
    errno = saved;
}

static int s_on_sig_pipe(loop_t *loop, int fd, int revents, void *arg)
{
    unsigned char sigs[64];
    ssize_t n;
    while ((n = read(fd, sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            signal_handler_t *h = sigs[i] < LOOP_MAX_SIGNALS ? &loop->signals[sigs[i]] : NULL;
            if (h && h->fn) {
                int rc = h->fn(loop, sigs[i], h->arg);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

int loop_watch_signal(loop_t *loop, int signo, loop_signal_fn *fn, void *arg)
{
    if (signo <= 0 || signo >= LOOP_MAX_SIGNALS || !fn)
        return ERR_INVAL;
    if (loop->sig_pipe[0] < 0) {
        if (pipe2(loop->sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
            return ERR_IO;
        int rc = loop_add_fd(loop, loop->sig_pipe[0], LOOP_READ, s_on_sig_pipe, NULL);
        if (rc) {
            close(loop->sig_pipe[0]);
            close(loop->sig_pipe[1]);
            loop->sig_pipe[0] = loop->sig_pipe[1] = -1;
            return rc;
        }
        s_sig_fd = loop->sig_pipe[1];
    }
    loop->signals[signo] = (signal_handler_t){.fn = fn, .arg = arg};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) != 0)
        return ERR_IO;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Running
 */

void loop_stop(loop_t *loop)
{
    loop->stop = true;
}

int64_t loop_now(const loop_t *loop)
{
    return loop->now;
}

/* Milliseconds until the nearest live timer: 0 if due, -1 if none. */
static int64_t s_nearest_timer_ms(loop_t *loop)
{
    while (loop->n_heap > 0 && !s_slot_find(loop, loop->heap[0].id))
        s_heap_pop(loop); // drop cancelled entries from the top
    if (loop->n_heap == 0)
        return -1;
    int64_t wait = loop->heap[0].due - loop_clock_ms();
    return wait > 0 ? wait : 0;
}

int loop_run_once(loop_t *loop, int64_t max_wait_ms)
{
    loop->now = loop_clock_ms();
    loop->in_hooks = true;
    int hook_rc = 0;
    for (size_t i = 0; i < loop->n_hooks && hook_rc >= 0; i++) {
        if (loop->hooks[i].fn)
            hook_rc = loop->hooks[i].fn(loop, loop->hooks[i].arg);
    }
    loop->in_hooks = false;
    size_t kept = 0;
    for (size_t i = 0; i < loop->n_hooks; i++) {
        if (loop->hooks[i].fn)
            loop->hooks[kept++] = loop->hooks[i];
    }
    loop->n_hooks = kept;
    if (hook_rc < 0)
        return hook_rc;
    if (loop->need_compact)
        s_compact(loop);

    int64_t wait = s_nearest_timer_ms(loop);
    if (max_wait_ms >= 0 && (wait < 0 || wait > max_wait_ms))
        wait = max_wait_ms;
    if (loop->stop)
        wait = 0;
    int n = zmq_poll(loop->items, (int)loop->n_items, (long)wait);
    if (n < 0 && errno != EINTR && errno != EAGAIN)
        return ERR_IO;
    loop->now = loop_clock_ms();

    // Dispatch over the entries present before any handler ran; new ones wait a turn.
    size_t count = loop->n_items;
    for (size_t i = 0; n > 0 && i < count; i++) {
        short revents = loop->items[i].revents;
        if (!revents || loop->handlers[i].removed)
            continue;
        loop->items[i].revents = 0;
        poll_handler_t h = loop->handlers[i];
        int rc = h.socket_fn
                     ? h.socket_fn(loop, loop->items[i].socket, s_loop_events(revents), h.arg)
                     : h.fd_fn(loop, loop->items[i].fd, s_loop_events(revents), h.arg);
        if (rc < 0)
            return rc;
    }
    return s_fire_timers(loop);
}

int loop_run(loop_t *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        int rc = loop_run_once(loop, -1);
        if (rc < 0)
            return rc;
        if (loop->n_items == 0 && loop->n_live == 0 && loop->n_hooks == 0)
            return 0; // nothing could ever wake us
    }
    return 0;
}

/* ---------- coalesced deferred calls ---------- */

void loop_soon_init(loop_soon_t *s, loop_t *loop, void (*fn)(void *arg), void *arg)
{
    if (s)
        *s = (loop_soon_t){.loop = loop, .fn = fn, .arg = arg};
}

static int64_t s_soon_fire(loop_t *loop, int64_t id, void *arg)
{
    (void)loop;
    (void)id;
    loop_soon_t *s = arg;
    s->timer = 0;
    s->fn(s->arg);
    return LOOP_TIMER_DONE;
}

void loop_soon(loop_soon_t *s)
{
    if (!s || !s->loop || !s->fn || s->running || s->timer > 0)
        return;
    int64_t id = loop_add_timer(s->loop, 0, s_soon_fire, s);
    s->timer = id > 0 ? id : 0;
}

void loop_soon_cancel(loop_soon_t *s)
{
    if (s && s->loop && s->timer > 0)
        loop_cancel_timer(s->loop, s->timer);
    if (s)
        s->timer = 0;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------------------------------------------------------------------------------------------
 * Self-test
 */

typedef struct {
    int fired[16]; /* ids of fired timers, in order */
    int n_fired; /* entries used */
    int periodic; /* times the periodic timer ran */
    int hooks; /* before-sleep hook runs */
    int reads; /* pipe reads */
    int zmq_reads; /* zmq messages received */
    int signals; /* signals delivered */
    int64_t cancel; /* a timer id the next timer cancels */
    loop_t *loop; /* for handlers that need it */
} s_probe_t;

static int64_t s_t_record(loop_t *loop, int64_t id, void *arg)
{
    s_probe_t *p = arg;
    if (p->n_fired < 16)
        p->fired[p->n_fired++] = (int)id;
    if (p->cancel) {
        loop_cancel_timer(loop, p->cancel);
        p->cancel = 0;
    }
    return LOOP_TIMER_DONE;
}

static int64_t s_t_periodic(loop_t *loop, int64_t id, void *arg)
{
    s_probe_t *p = arg;
    return ++p->periodic >= 5 ? LOOP_TIMER_DONE : 0;
}

static int64_t s_t_stop(loop_t *loop, int64_t id, void *arg)
{
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static int64_t s_t_fail(loop_t *loop, int64_t id, void *arg)
{
    return ERR_PROTO;
}

static int s_h_hook(loop_t *loop, void *arg)
{
    ((s_probe_t *)arg)->hooks++;
    return 0;
}

static int s_h_pipe(loop_t *loop, int fd, int revents, void *arg)
{
    s_probe_t *p = arg;
    char b[16];
    if (read(fd, b, sizeof b) > 0)
        p->reads++;
    loop_remove_fd(loop, fd); // removal from inside its own handler
    return 0;
}

static int s_h_zmq(loop_t *loop, void *socket, int revents, void *arg)
{
    s_probe_t *p = arg;
    char b[16];
    while (zmq_recv(socket, b, sizeof b, ZMQ_DONTWAIT) >= 0)
        p->zmq_reads++;
    return 0;
}

static int s_h_signal(loop_t *loop, int signo, void *arg)
{
    ((s_probe_t *)arg)->signals++;
    return 0;
}

static int64_t s_t_count(loop_t *loop, int64_t id, void *arg)
{
    int64_t *last_due = arg;
    (*last_due)++;
    return LOOP_TIMER_DONE;
}

static void s_soon_count(void *arg)
{
    (*(int *)arg)++;
}

int loop_test(bool verbose)
{
    int failed = 0;
    loop_t *loop = loop_new();
    CHECK(loop != NULL);

    // A coalesced deferred call runs once for many requests, never while running, and a
    // cancelled one not at all.
    int soon_runs = 0;
    loop_soon_t soon;
    loop_soon_init(&soon, loop, s_soon_count, &soon_runs);
    loop_soon(&soon);
    loop_soon(&soon);
    loop_soon(&soon);
    CHECK(soon_runs == 0 && soon.timer > 0);
    CHECK(loop_run_once(loop, 0) == 0 && soon_runs == 1 && soon.timer == 0);
    soon.running = true;
    loop_soon(&soon);
    CHECK(soon.timer == 0);
    soon.running = false;
    loop_soon(&soon);
    loop_soon_cancel(&soon);
    CHECK(loop_run_once(loop, 0) == 0 && soon_runs == 1);
    loop_soon_t idle;
    loop_soon_init(&idle, NULL, s_soon_count, &soon_runs);
    loop_soon(&idle);
    CHECK(idle.timer == 0);
    s_probe_t p = {.loop = loop};

    // Timers fire nearest first; equal due times fire in arming order; a cancelled one never.
    // (start is read before arming: the 30 ms timer is due 30 ms after its arming, which a
    // loaded machine may delay past a clock read taken afterwards)
    int64_t start = loop_clock_ms();
    int64_t a = loop_add_timer(loop, 30, s_t_record, &p);
    int64_t b = loop_add_timer(loop, 10, s_t_record, &p);
    int64_t c = loop_add_timer(loop, 10, s_t_record, &p);
    int64_t d = loop_add_timer(loop, 20, s_t_record, &p);
    CHECK(a > 0 && b > a && c > b && d > c);
    CHECK(loop_cancel_timer(loop, d) == 0);
    CHECK(loop_cancel_timer(loop, d) == ERR_NOTFOUND);
    CHECK(loop_cancel_timer(loop, 9999) == ERR_NOTFOUND);
    CHECK(loop_timer_count(loop) == 3);
    CHECK(loop_add_before_sleep(loop, s_h_hook, &p) == 0);
    while (p.n_fired < 3 && loop_clock_ms() - start < 2000)
        loop_run_once(loop, 100);
    CHECK(p.n_fired == 3);
    CHECK(p.fired[0] == b && p.fired[1] == c && p.fired[2] == a);
    CHECK(loop_clock_ms() - start >= 30);
    CHECK(p.hooks >= 1);
    CHECK(loop_timer_count(loop) == 0);
    CHECK(loop_remove_before_sleep(loop, s_h_hook, &p) == 0);
    CHECK(loop_remove_before_sleep(loop, s_h_hook, &p) == ERR_NOTFOUND);
    int hooks_before = p.hooks;
    loop_run_once(loop, 0);
    CHECK(p.hooks == hooks_before);
    CHECK(loop_add_before_sleep(loop, s_h_hook, &p) == 0);

    // A timer may cancel another that is due in the same pass.
    p.n_fired = 0;
    int64_t e = loop_add_timer(loop, 0, s_t_record, &p);
    int64_t f = loop_add_timer(loop, 0, s_t_record, &p);
    p.cancel = f;
    usleep(2000);
    loop_run_once(loop, 0);
    CHECK(p.n_fired == 1 && p.fired[0] == e);
    CHECK(loop_timer_count(loop) == 0);

    // A 0 ms periodic timer fires once per iteration, not in a tight loop.
    CHECK(loop_add_timer(loop, 0, s_t_periodic, &p) > 0);
    loop_run_once(loop, 0);
    CHECK(p.periodic == 1);
    for (int i = 0; i < 10; i++)
        loop_run_once(loop, 0);
    CHECK(p.periodic == 5 && loop_timer_count(loop) == 0);

    // Raw fd readiness, and removal from inside the handler.
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(loop_add_fd(loop, fds[0], LOOP_READ, s_h_pipe, &p) == 0);
    CHECK(write(fds[1], "x", 1) == 1);
    loop_run_once(loop, 100);
    CHECK(p.reads == 1);
    CHECK(loop_remove_fd(loop, fds[0]) == ERR_NOTFOUND);
    CHECK(write(fds[1], "y", 1) == 1);
    loop_run_once(loop, 10);
    CHECK(p.reads == 1);
    close(fds[0]);
    close(fds[1]);
    CHECK(loop_add_fd(loop, -1, LOOP_READ, s_h_pipe, &p) == ERR_INVAL);

    // ZeroMQ socket readiness.
    void *ctx = zmq_ctx_new();
    void *rx = zmq_socket(ctx, ZMQ_PAIR);
    void *tx = zmq_socket(ctx, ZMQ_PAIR);
    CHECK(zmq_bind(rx, "inproc://loop-test") == 0 && zmq_connect(tx, "inproc://loop-test") == 0);
    CHECK(loop_add_socket(loop, rx, LOOP_READ, s_h_zmq, &p) == 0);
    zmq_send(tx, "hi", 2, 0);
    zmq_send(tx, "ho", 2, 0);
    for (int i = 0; i < 5 && p.zmq_reads < 2; i++)
        loop_run_once(loop, 100);
    CHECK(p.zmq_reads == 2);
    CHECK(loop_remove_socket(loop, rx) == 0);
    int linger = 0;
    zmq_setsockopt(rx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(tx, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(rx);
    zmq_close(tx);
    zmq_ctx_term(ctx);

    // Signals arrive on the loop thread.
    CHECK(loop_watch_signal(loop, SIGUSR1, s_h_signal, &p) == 0);
    raise(SIGUSR1);
    loop_run_once(loop, 100);
    CHECK(p.signals == 1);

    // loop_stop() from a timer ends loop_run() with 0; a negative timer result ends it with that.
    CHECK(loop_add_timer(loop, 5, s_t_stop, NULL) > 0);
    CHECK(loop_run(loop) == 0);
    CHECK(loop_add_timer(loop, 5, s_t_fail, NULL) > 0);
    CHECK(loop_run(loop) == ERR_PROTO);

    // Ten thousand timers with churn: cancelled ones never fire, the rest all do.
    int64_t fired = 0;
    int64_t ids[10000];
    for (int i = 0; i < 10000; i++)
        ids[i] = loop_add_timer(loop, i % 7, s_t_count, &fired);
    for (int i = 0; i < 10000; i += 2)
        CHECK(loop_cancel_timer(loop, ids[i]) == 0);
    CHECK(loop_timer_count(loop) == 5000);
    start = loop_clock_ms();
    while (loop_timer_count(loop) > 0 && loop_clock_ms() - start < 2000)
        loop_run_once(loop, 10);
    CHECK(fired == 5000);

    loop_destroy(&loop);
    CHECK(loop == NULL);
    loop_destroy(&loop);
    return SELFTEST_RESULT("loop", verbose);
}

#endif /* RF_SELFTEST */
