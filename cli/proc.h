/*
 * proc: the child processes rayfleetctl starts and stops, and the pid file that remembers them.
 *
 * Children run in their own session (setsid), so a Ctrl-C on the terminal reaches rayfleetctl
 * alone, which then stops them in order; with `up --detach` they outlive it. Each child's stdin is
 * /dev/null and its stdout and stderr go to one log file. The pid file (one "name pid starttime"
 * line per process, in start order) records the kernel's start time of each process too, so a pid
 * reused by an unrelated process after a crash is never signalled.
 */
#ifndef RF_CLI_PROC_H
#define RF_CLI_PROC_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define PROC_NAME_MAX 32 /* longest process name in the pid file, with its NUL */
#define PROC_MAX 48 /* most processes in one pid file (up --members 8: 37) */
#define PROC_PIDFILE_MAX 4096 /* largest pid file read */
#define PROC_POLL_MS 50 /* period at which stop/wait loops look again */
#define PROC_CAPTURE_MAX (256u * 1024) /* most bytes of a captured --help output */
#define PROC_CAPTURE_TIMEOUT_MS 5000 /* a --help run longer than this is killed */

/* One started process. */
typedef struct {
    char name[PROC_NAME_MAX]; /* "kubesim", "bus", "watcher", ... */
    pid_t pid; /* its pid */
    unsigned long long start; /* its start time in clock ticks since boot (/proc/PID/stat) */
} proc_entry_t;

/* Starts argv[0] (a path) with argv, in a new session, signals unblocked and default, stdin from
 * /dev/null, stdout and stderr appended to `log_path`. Fills *out (name copied, cut to fit).
 * Returns 0, or ERR_IO (fork failed). A failed exec shows as a quick exit with status 127 and a
 * line in the log. */
int proc_spawn(const char *name, char *const argv[], const char *log_path, proc_entry_t *out);

/* Reads the start time of `pid` from /proc. Returns 0 or ERR_NOTFOUND (no such process). */
int proc_start_time(pid_t pid, unsigned long long *out);

/* Whether the process of `e` still runs: it exists, is not a zombie, and (when e->start is not 0)
 * has the same start time. Reaps it when it is our child and has exited. */
bool proc_alive(const proc_entry_t *e);

/* Whether the process is alive and stopped by a signal (SIGSTOP: `rayfleetctl member stop`). */
bool proc_paused(const proc_entry_t *e);

/* When `e` is our child and has exited, reaps it, stores its wait status in *status and returns
 * true; otherwise false. */
bool proc_exited(const proc_entry_t *e, int *status);

/* Describes a wait status ("exited with status 1", "killed by signal 9") into `out`. */
void proc_describe_status(int status, char *out, size_t size);

/* Stops the `n` processes: SIGTERM to each alive one, from last to first, each waited for up to
 * `timeout_ms`, then SIGKILL. Prints one line per process to `report` when not NULL. Returns the
 * number of processes that had to be killed with SIGKILL. */
int proc_stop_all(const proc_entry_t *e, size_t n, int64_t timeout_ms, FILE *report);

/* Writes `len` bytes to the file at `path` atomically (a temporary file of exactly mode `mode`
 * beside it, whatever the umask (privfs.h), then rename). Returns 0 or ERR_IO. */
int proc_write_file(const char *path, const char *data, size_t len, mode_t mode);

/* Writes the pid file at `path` atomically (proc_write_file, mode 0600). Returns 0 or ERR_IO. */
int proc_pidfile_write(const char *path, const proc_entry_t *e, size_t n);

/* Reads the pid file at `path` into e[0..max-1]. Returns 0, ERR_NOTFOUND (no file), ERR_PARSE
 * (malformed line) or ERR_IO. */
int proc_pidfile_read(const char *path, proc_entry_t *e, size_t max, size_t *n);

/* Prints the last `lines` lines of the file at `path` to `out`, each prefixed with `prefix`.
 * Reads at most the file's last 64 KiB. Returns 0 or ERR_IO. */
int proc_tail(const char *path, int lines, const char *prefix, FILE *out);

/* Makes a close-on-exec pipe in fds (read end, write end) and forks, stdio flushed first. Returns
 * the child's pid in the parent, 0 in the child, or -1 (nothing left open) when either fails. */
pid_t proc_fork_pipe(int fds[2]);

/* Runs argv[0] with argv, stdin /dev/null, stderr discarded, and appends its stdout (at most
 * PROC_CAPTURE_MAX bytes) to `out`; killed after PROC_CAPTURE_TIMEOUT_MS. Returns 0 when it exited
 * with status 0, ERR_IO (cannot run), ERR_TIMEOUT, or ERR_STATE (non-zero exit). */
int proc_capture(char *const argv[], buf_t *out);

/* Sleeps `ms` milliseconds unless SIGINT or SIGTERM (which the caller has blocked) arrives: then
 * returns that signal number at once; else 0. */
int proc_sleep(int64_t ms);

#endif
