/*
 * supervise: keeps the processes of `rayfleetctl up` running (issue 17).
 *
 * The `up` process is the parent of every process it starts: in the foreground it is the command
 * the user ran; with --detach, `up` forks before it starts anything (supervise_detach) and the
 * child, which stays behind as the supervisor, does the work, tells the waiting parent its exit
 * code once everything is ready, and moves its own output to STATE/logs/supervise.log. Either way
 * supervise_run() watches the children:
 *
 * - A service that exits is restarted with the same arguments (same health port, its log
 *   appended to) after a delay: SUPERVISE_BACKOFF_MIN_MS, doubled at every death in a row up to
 *   SUPERVISE_BACKOFF_MAX_MS, where it stays for as long as the service keeps dying, as the
 *   kubelet's CrashLoopBackOff does. A run that lasted SUPERVISE_STABLE_MS (twice the cap)
 *   forgets the earlier deaths: the next delay is the minimum again.
 * - After SUPERVISE_CRASHLOOP_AFTER deaths in a row (no stable run between) the service is
 *   "crash-looping"; before that "restarting". Each death is logged with the name, pid, exit
 *   status or signal, restart count and next delay, and the service's last log lines.
 * - A process tracked as fatal ends supervision instead: kubesim under --sim. A new kubesim
 *   would be an empty cluster (no CRDs, no objects) on another port, which the services'
 *   kubeconfig does not name, while the services' databases still describe the old one; so its
 *   death stops the whole set (the caller does it), with that reason in the state file.
 * - SIGINT or SIGTERM ends supervision at once, before any pending restart: the caller stops
 *   every child, so `rayfleetctl down` (which signals the supervisor first) races no restart.
 *
 * State: STATE/supervise.json (SUPERVISE_FILE), rewritten atomically with mode 0600 at every
 * change; `rayfleetctl status` reads it. Its form:
 *   {"supervisor": {"pid", "start", "detached"}, "updated_ms", "ended": "" or why supervision
 *    ended, "backoff": {"min_ms", "max_ms", "stable_ms", "crashloop_after"},
 *    "services": [{"name", "pid", "start", "state": "running"|"restarting"|"crash-looping"|
 *    "stopped", "restarts", "streak", "delay_ms", "next_restart_ms", "started_ms",
 *    "last_exit", "last_exit_ms", "health_port", "fatal"}]}
 * Times ending in _ms are wall-clock milliseconds since the epoch (0: none); "start" is the
 * kernel's start time of the pid (proc.h), so a reader can tell a reused pid.
 */
#ifndef RF_CLI_SUPERVISE_H
#define RF_CLI_SUPERVISE_H

#include "proc.h"

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SUPERVISE_FILE "supervise.json" /* the state file in the state dir */
#define SUPERVISE_LOG "supervise.log" /* the detached supervisor's log, in STATE/logs */
#define SUPERVISE_BACKOFF_MIN_MS 1000 /* first restart delay */
#define SUPERVISE_BACKOFF_MAX_MS 60000 /* the delay's cap */
#define SUPERVISE_STABLE_MS (2 * SUPERVISE_BACKOFF_MAX_MS) /* a run this long resets the delay */
#define SUPERVISE_CRASHLOOP_AFTER 3 /* deaths in a row that make a crash loop */
#define SUPERVISE_TICK_MS 200 /* how often the children are looked at */
#define SUPERVISE_TAIL_LINES 5 /* log lines shown for a death */
#define SUPERVISE_MAX_ARGS 64 /* most arguments kept for a restart */
#define SUPERVISE_FILE_MAX (64u * 1024) /* largest state file read */
#define SUPERVISE_EXIT_MAX 128 /* longest exit description */

/* Where one tracked process is. */
typedef enum {
    SUPERVISE_RUNNING, /* started, not seen dead */
    SUPERVISE_WAITING, /* dead, a restart is due at next_ms */
    SUPERVISE_STOPPED, /* stopped with the set, or never to be restarted */
} supervise_state_t;

/* One tracked process (index i of the caller's process array). */
typedef struct {
    bool tracked; /* supervise_track() was called for it */
    bool fatal; /* its death ends supervision (kubesim) */
    char **argv; /* owned NULL-terminated copy of its arguments */
    char log[PATH_MAX]; /* its log file */
    int health_port; /* its /readyz port, 0 when none */
    supervise_state_t state; /* where it is */
    unsigned restarts; /* restarts done */
    unsigned streak; /* deaths since its last stable run */
    int64_t started_ms; /* loop_clock_ms() of its last start */
    int64_t started_wall_ms; /* wall clock of its last start */
    int64_t delay_ms; /* the pending (or last) restart's delay */
    int64_t next_ms; /* loop_clock_ms() of the pending restart */
    int64_t next_wall_ms; /* wall clock of the pending restart */
    char last_exit[SUPERVISE_EXIT_MAX]; /* how it last ended ("" never) */
    int64_t last_exit_wall_ms; /* wall clock of that */
} supervise_slot_t;

/* The supervisor of one `up`. */
typedef struct {
    proc_entry_t *procs; /* the caller's processes, in pid file order; pids change on restart */
    size_t *nprocs; /* how many */
    char pidfile[PATH_MAX]; /* rewritten on every restart */
    char statefile[PATH_MAX]; /* STATE/supervise.json */
    bool detached; /* the supervisor is the detached `up` */
    char ended[512]; /* why supervision ended ("" while it runs) */
    supervise_slot_t slot[PROC_MAX]; /* parallel to procs */
} supervise_t;

/* Prepares `sv` for the processes procs[0..*nprocs-1] of the state dir `state` (absolute). */
void supervise_init(supervise_t *sv, proc_entry_t *procs, size_t *nprocs, const char *state,
                    const char *pidfile, bool detached);

/* Tracks procs[index], just started from `argv` with its output appended to `log`; `health_port`
 * is its /readyz port (0: none); `fatal` makes its death end supervision. Returns 0, ERR_TOOBIG
 * (index or argv too large) or ERR_NOMEM. */
int supervise_track(supervise_t *sv, size_t index, char *const argv[], const char *log,
                    int health_port, bool fatal);

/* Watches the tracked processes, restarting the dead (see above), until SIGINT or SIGTERM (which
 * the caller has blocked) arrives, then returns that signal number; or until a fatal process
 * dies: returns ERR_CLOSED (sv->ended says which and how). Log lines go to `report`. */
int supervise_run(supervise_t *sv, FILE *report);

/* The delay before the restart that follows `streak` deaths in a row (1 = the first): the
 * minimum doubled streak-1 times, at most the cap. */
int64_t supervise_delay_ms(unsigned streak);

/* Marks every tracked process stopped, with `why` as the reason supervision ended (NULL keeps
 * sv->ended), and writes the state file. */
void supervise_stopped(supervise_t *sv, const char *why);

/* Writes the state file. Returns 0 or ERR_IO. */
int supervise_save(const supervise_t *sv);

/* Frees the kept arguments. */
void supervise_free(supervise_t *sv);

/* Reads the state file at `path` (at most SUPERVISE_FILE_MAX bytes). Returns 0 and a new
 * reference in *out, ERR_NOTFOUND (no file), ERR_TOOBIG, ERR_PARSE (not JSON, or not an object
 * with a "services" array) or ERR_IO. */
int supervise_load(const char *path, json_t **out);

/* --detach: forks the supervisor before anything is started. In the child (the supervisor to
 * be) returns 0 and sets *notify, the pipe on which supervise_detached_ready() answers; in the
 * parent waits for that answer and returns 1 with the exit code in *code (1 when the child died
 * without answering). Returns ERR_IO when the fork fails. */
int supervise_detach(int *notify, int *code);

/* Gives the waiting parent `code` and closes *notify (then -1; nothing when it is already -1).
 * With `log` (code 0: ready), first leaves the terminal's session and moves stdin to /dev/null and
 * stdout and stderr to `log` (appended), so the parent's caller sees the end of its output. */
void supervise_detached_ready(int *notify, int code, const char *log);

#endif
