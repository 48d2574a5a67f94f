/*
 * loop: the single-threaded event loop of every rayfleet process, built on zmq_poll.
 *
 * One iteration, in the order of Redis's ae and nginx: run the before-sleep hooks (flush batched
 * SQLite writes, send queued messages), poll ZeroMQ sockets and raw fds with a timeout that
 * ends at the nearest timer, dispatch ready sockets and fds, deliver caught signals, then fire
 * due timers (nearest first). Times are monotonic milliseconds; the wall clock is never used.
 *
 * Handlers return 0 to go on, or a negative value to stop the loop: loop_run() then returns that
 * value. A handler may add or remove any handler or timer, including itself, while running.
 *
 * Signals: loop_watch_signal() installs a handler that only writes the signal number to a
 * self-pipe; the loop reads it and calls your function on the loop thread. This is the only
 * process-wide state here (signals are process-wide), so the signal functions are meant for one
 * loop per process.
 */
#ifndef RF_LOOP_H
#define RF_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct loop loop_t;

enum {
    LOOP_READ = 1, /* readable (ZMQ_POLLIN) */
    LOOP_WRITE = 2, /* writable (ZMQ_POLLOUT) */
    LOOP_ERROR = 4 /* error or hang-up on a raw fd (reported, never requested) */
};

/* Called when a raw fd is ready; `revents` is a LOOP_* mask. */
typedef int(loop_fd_fn)(loop_t *loop, int fd, int revents, void *arg);
/* Called when a ZeroMQ socket is ready. */
typedef int(loop_socket_fn)(loop_t *loop, void *socket, int revents, void *arg);
/* Called when a timer is due. Return the next delay in ms to fire again, LOOP_TIMER_DONE to end
 * the timer, or a value below LOOP_TIMER_DONE to stop the loop with it. */
typedef int64_t(loop_timer_fn)(loop_t *loop, int64_t timer_id, void *arg);
/* Called before each poll. */
typedef int(loop_hook_fn)(loop_t *loop, void *arg);
/* Called on the loop thread after signal `signo` was caught. */
typedef int(loop_signal_fn)(loop_t *loop, int signo, void *arg);

#define LOOP_TIMER_DONE (-1)

/* A new loop, or NULL when out of memory. */
loop_t *loop_new(void);

/* Destroys the loop (handlers and timers are dropped; fds and sockets are not closed) and sets
 * *loop_p to NULL. NULL-safe. Restores the default action of watched signals. */
void loop_destroy(loop_t **loop_p);

/* Watches a raw fd for `events` (LOOP_READ and/or LOOP_WRITE). One handler per fd: adding an fd
 * that is watched already replaces its handler. Returns 0 or ERR_NOMEM/ERR_INVAL. */
int loop_add_fd(loop_t *loop, int fd, int events, loop_fd_fn *fn, void *arg);

/* Changes the events watched on fd. Returns 0 or ERR_NOTFOUND. */
int loop_set_fd_events(loop_t *loop, int fd, int events);

/* Stops watching fd. Returns 0 or ERR_NOTFOUND. */
int loop_remove_fd(loop_t *loop, int fd);

/* Watches a ZeroMQ socket. Same rules as loop_add_fd(). */
int loop_add_socket(loop_t *loop, void *socket, int events, loop_socket_fn *fn, void *arg);
int loop_remove_socket(loop_t *loop, void *socket);

/* Arms a timer `delay_ms` from now (0 fires on the next iteration). Returns its id (> 0), or a
 * negative err_t. */
int64_t loop_add_timer(loop_t *loop, int64_t delay_ms, loop_timer_fn *fn, void *arg);

/* Cancels a timer. Returns 0, or ERR_NOTFOUND when it fired already or never existed. */
int loop_cancel_timer(loop_t *loop, int64_t timer_id);

/* A coalesced deferred call: the work a burst of callbacks asks for (a simulated controller's
 * tick after watch events) runs once, from a 0 ms timer, never inside the callbacks that asked.
 * The owner embeds one, sets `running` while its work runs (a request then is ignored: the work
 * sees the change) and cancels it before it is freed. */
typedef struct {
    loop_t *loop; /* NULL: loop_soon() does nothing (the owner runs the work by hand) */
    void (*fn)(void *arg); /* the work */
    void *arg; /* handed to fn */
    int64_t timer; /* the pending timer's id, 0 = none */
    bool running; /* set by the owner while the work runs */
} loop_soon_t;

/* Sets up s for fn(arg) on loop (NULL allowed, see above). */
void loop_soon_init(loop_soon_t *s, loop_t *loop, void (*fn)(void *arg), void *arg);

/* Asks for fn to run on the next iteration, unless it is already asked for or running. */
void loop_soon(loop_soon_t *s);

/* Cancels a pending run (NULL-safe). */
void loop_soon_cancel(loop_soon_t *s);

/* Adds a hook run before every poll, in the order added. Returns 0 or ERR_NOMEM. */
int loop_add_before_sleep(loop_t *loop, loop_hook_fn *fn, void *arg);

/* Removes the first hook added with this (fn, arg). Returns 0 or ERR_NOTFOUND. Safe to call
 * from inside a hook. */
int loop_remove_before_sleep(loop_t *loop, loop_hook_fn *fn, void *arg);

/* Catches `signo` (SIGTERM, SIGINT, SIGHUP, SIGCHLD, ...) and calls fn on the loop thread.
 * Returns 0, ERR_IO or ERR_NOMEM. */
int loop_watch_signal(loop_t *loop, int signo, loop_signal_fn *fn, void *arg);

/* Runs until loop_stop() or a handler returns a negative value. Returns 0 after loop_stop(), the
 * handler's value, or ERR_IO if polling failed. */
int loop_run(loop_t *loop);

/* Runs one iteration, waiting at most `max_wait_ms` (-1: until the nearest timer or forever).
 * Returns 0, or as loop_run(). Useful in tests and benchmarks. */
int loop_run_once(loop_t *loop, int64_t max_wait_ms);

/* Makes loop_run() return 0 after the current iteration. Safe to call from any handler. */
void loop_stop(loop_t *loop);

/* Monotonic time in ms, read at the start of this iteration (cheap). */
int64_t loop_now(const loop_t *loop);

/* Monotonic time in ms, read now. */
int64_t loop_clock_ms(void);

/* Number of timers armed (for tests and metrics). */
size_t loop_timer_count(const loop_t *loop);

#endif
