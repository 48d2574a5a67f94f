/*
 * supervise: see supervise.h.
 */
#include "supervise.h"

#include "err.h"
#include "json.h"
#include "loop.h"
#include "privfs.h"
#include "rftime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void supervise_init(supervise_t *sv, proc_entry_t *procs, size_t *nprocs, const char *state,
                    const char *pidfile, bool detached)
{
    memset(sv, 0, sizeof(*sv));
    sv->procs = procs;
    sv->nprocs = nprocs;
    sv->detached = detached;
    snprintf(sv->pidfile, sizeof(sv->pidfile), "%s", pidfile);
    snprintf(sv->statefile, sizeof(sv->statefile), "%s/%s", state, SUPERVISE_FILE);
}

static void s_free_argv(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

int supervise_track(supervise_t *sv, size_t index, char *const argv[], const char *log,
                    int health_port, bool fatal)
{
    if (index >= PROC_MAX || strlen(log) >= PATH_MAX)
        return ERR_TOOBIG;
    size_t n = 0;
    while (argv[n])
        if (++n > SUPERVISE_MAX_ARGS)
            return ERR_TOOBIG;
    char **copy = calloc(n + 1, sizeof(char *));
    if (!copy)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(copy[i] = strdup(argv[i]))) {
            s_free_argv(copy);
            return ERR_NOMEM;
        }
    }
    supervise_slot_t *s = &sv->slot[index];
    s_free_argv(s->argv);
    memset(s, 0, sizeof(*s));
    s->tracked = true;
    s->fatal = fatal;
    s->argv = copy;
    snprintf(s->log, sizeof(s->log), "%s", log);
    s->health_port = health_port;
    s->state = SUPERVISE_RUNNING;
    s->started_ms = loop_clock_ms();
    s->started_wall_ms = rftime_now_ms();
    return 0;
}

void supervise_free(supervise_t *sv)
{
    for (size_t i = 0; i < PROC_MAX; i++) {
        s_free_argv(sv->slot[i].argv);
        sv->slot[i].argv = NULL;
    }
}

int64_t supervise_delay_ms(unsigned streak)
{
    int64_t d = SUPERVISE_BACKOFF_MIN_MS;
    for (unsigned i = 1; i < streak && d < SUPERVISE_BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < SUPERVISE_BACKOFF_MAX_MS ? d : SUPERVISE_BACKOFF_MAX_MS;
}

/* The state word of a slot, as the state file and status say it. */
static const char *s_state_word(const supervise_slot_t *s)
{
    switch (s->state) {
    case SUPERVISE_RUNNING:
        return "running";
    case SUPERVISE_WAITING:
        return s->streak >= SUPERVISE_CRASHLOOP_AFTER ? "crash-looping" : "restarting";
    case SUPERVISE_STOPPED:
        break;
    }
    return "stopped";
}

int supervise_save(const supervise_t *sv)
{
    json_t *root = json_object(), *list = json_array();
    json_t *me = json_pack("{s:i, s:I, s:b}", "pid", (int)getpid(), "start", (json_int_t)0,
                           "detached", sv->detached);
    json_t *backoff =
        json_pack("{s:I, s:I, s:I, s:i}", "min_ms", (json_int_t)SUPERVISE_BACKOFF_MIN_MS, "max_ms",
                  (json_int_t)SUPERVISE_BACKOFF_MAX_MS, "stable_ms",
                  (json_int_t)SUPERVISE_STABLE_MS, "crashloop_after", SUPERVISE_CRASHLOOP_AFTER);
    int rc = ERR_NOMEM;
    if (!root || !list || !me || !backoff)
        goto out;
    unsigned long long start = 0;
    if (proc_start_time(getpid(), &start) == 0)
        json_object_set_new(me, "start", json_integer((json_int_t)start));
    for (size_t i = 0; i < *sv->nprocs && i < PROC_MAX; i++) {
        const supervise_slot_t *s = &sv->slot[i];
        if (!s->tracked)
            continue;
        const proc_entry_t *e = &sv->procs[i];
        json_t *o = json_pack(
            "{s:s, s:i, s:I, s:s, s:i, s:i, s:I, s:I, s:I, s:s, s:I, s:i, s:b}", "name", e->name,
            "pid", s->state == SUPERVISE_RUNNING ? (int)e->pid : 0, "start",
            (json_int_t)(s->state == SUPERVISE_RUNNING ? e->start : 0), "state", s_state_word(s),
            "restarts", (int)s->restarts, "streak", (int)s->streak, "delay_ms",
            (json_int_t)s->delay_ms, "next_restart_ms",
            (json_int_t)(s->state == SUPERVISE_WAITING ? s->next_wall_ms : 0), "started_ms",
            (json_int_t)s->started_wall_ms, "last_exit", s->last_exit, "last_exit_ms",
            (json_int_t)s->last_exit_wall_ms, "health_port", s->health_port, "fatal", s->fatal);
        if (!o || json_array_append_new(list, o) != 0)
            goto out;
    }
    json_object_set_new(root, "supervisor", me);
    me = NULL;
    json_object_set_new(root, "backoff", backoff);
    backoff = NULL;
    json_object_set_new(root, "updated_ms", json_integer((json_int_t)rftime_now_ms()));
    json_object_set_new(root, "ended", json_string(sv->ended));
    json_object_set_new(root, "services", list);
    list = NULL;
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    size_t len = strlen(text);
    rc = proc_write_file(sv->statefile, text, len, 0600);
    free(text);
out:
    json_decref(root);
    json_decref(list);
    json_decref(me);
    json_decref(backoff);
    return rc;
}

static void s_save(supervise_t *sv, FILE *report)
{
    if (supervise_save(sv) != 0 && report)
        fprintf(report, "rayfleetctl: warning: cannot write %s: %s\n", sv->statefile,
                strerror(errno));
}

/* procs[i] ended with wait status `status`: schedule its restart, or end supervision. Returns
 * true when supervision ends. */
static bool s_died(supervise_t *sv, size_t i, int status, FILE *report)
{
    supervise_slot_t *s = &sv->slot[i];
    proc_entry_t *e = &sv->procs[i];
    int64_t now = loop_clock_ms();
    char how[SUPERVISE_EXIT_MAX - 16];
    proc_describe_status(status, how, sizeof(how));
    snprintf(s->last_exit, sizeof(s->last_exit), "%s", how);
    s->last_exit_wall_ms = rftime_now_ms();
    if (now - s->started_ms >= SUPERVISE_STABLE_MS)
        s->streak = 0;
    s->streak++;
    if (s->fatal) {
        s->state = SUPERVISE_STOPPED;
        snprintf(sv->ended, sizeof(sv->ended),
                 "%s (pid %d) %s: the simulated cluster's state is lost (a new one would start "
                 "empty, on another port), so the set was stopped; run 'rayfleetctl up' again",
                 e->name, (int)e->pid, how);
        if (report) {
            fprintf(report, "rayfleetctl: %s; the last lines of %s:\n", sv->ended, s->log);
            proc_tail(s->log, SUPERVISE_TAIL_LINES, "  | ", report);
        }
        s_save(sv, report);
        return true;
    }
    s->delay_ms = supervise_delay_ms(s->streak);
    s->next_ms = now + s->delay_ms;
    s->next_wall_ms = rftime_now_ms() + s->delay_ms;
    s->state = SUPERVISE_WAITING;
    if (report) {
        fprintf(report,
                "rayfleetctl: %s (pid %d) %s after %" PRId64 " ms; restart %u in %" PRId64
                " ms%s; the last lines of %s:\n",
                e->name, (int)e->pid, how, now - s->started_ms, s->restarts + 1, s->delay_ms,
                s->streak >= SUPERVISE_CRASHLOOP_AFTER ? " (crash-looping)" : "", s->log);
        proc_tail(s->log, SUPERVISE_TAIL_LINES, "  | ", report);
    }
    s_save(sv, report);
    return false;
}

/* Starts procs[i] again from its kept arguments. */
static void s_restart(supervise_t *sv, size_t i, FILE *report)
{
    supervise_slot_t *s = &sv->slot[i];
    proc_entry_t *e = &sv->procs[i];
    char name[PROC_NAME_MAX];
    snprintf(name, sizeof(name), "%s", e->name);
    s->restarts++;
    s->started_ms = loop_clock_ms();
    s->started_wall_ms = rftime_now_ms();
    if (proc_spawn(name, s->argv, s->log, e) != 0) {
        /* No process: count it as a death at once (the next delay grows). */
        if (report)
            fprintf(report, "rayfleetctl: cannot restart %s: %s\n", name, strerror(errno));
        s->state = SUPERVISE_RUNNING;
        e->pid = 0;
        (void)s_died(sv, i, 127 << 8, report);
        return;
    }
    s->state = SUPERVISE_RUNNING;
    if (report)
        fprintf(report, "rayfleetctl: restarted %s (pid %d, restart %u)\n", name, (int)e->pid,
                s->restarts);
    if (proc_pidfile_write(sv->pidfile, sv->procs, *sv->nprocs) != 0 && report)
        fprintf(report, "rayfleetctl: warning: cannot write %s: %s\n", sv->pidfile,
                strerror(errno));
    s_save(sv, report);
}

int supervise_run(supervise_t *sv, FILE *report)
{
    s_save(sv, report);
    for (;;) {
        int sig = proc_sleep(SUPERVISE_TICK_MS);
        if (sig)
            return sig;
        for (size_t i = 0; i < *sv->nprocs && i < PROC_MAX; i++) {
            supervise_slot_t *s = &sv->slot[i];
            if (!s->tracked)
                continue;
            int status = 0;
            if (s->state == SUPERVISE_RUNNING && proc_exited(&sv->procs[i], &status)) {
                if (s_died(sv, i, status, report))
                    return ERR_CLOSED;
            } else if (s->state == SUPERVISE_WAITING && loop_clock_ms() >= s->next_ms) {
                s_restart(sv, i, report);
            }
        }
    }
}

void supervise_stopped(supervise_t *sv, const char *why)
{
    if (why)
        snprintf(sv->ended, sizeof(sv->ended), "%s", why);
    for (size_t i = 0; i < PROC_MAX; i++)
        if (sv->slot[i].tracked)
            sv->slot[i].state = SUPERVISE_STOPPED;
    (void)supervise_save(sv);
}

int supervise_load(const char *path, json_t **out)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
    if (st.st_size > (off_t)SUPERVISE_FILE_MAX)
        return ERR_TOOBIG;
    buf_t err;
    buf_init(&err, 256);
    json_t *j = jx_load_file(path, SUPERVISE_FILE_MAX, &err);
    buf_free(&err);
    if (!j)
        return ERR_PARSE;
    if (!json_is_object(j) || !json_is_array(json_object_get(j, "services"))) {
        json_decref(j);
        return ERR_PARSE;
    }
    *out = j;
    return 0;
}

int supervise_detach(int *notify, int *code)
{
    int fds[2];
    *notify = -1;
    *code = 1;
    pid_t pid = proc_fork_pipe(fds);
    if (pid < 0)
        return ERR_IO;
    if (pid == 0) {
        close(fds[0]);
        *notify = fds[1];
        return 0;
    }
    close(fds[1]);
    unsigned char c = 1;
    ssize_t n;
    while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR) {
    }
    close(fds[0]);
    *code = n == 1 ? c : 1;
    return 1;
}

void supervise_detached_ready(int *notify, int code, const char *log)
{
    if (*notify < 0)
        return;
    if (log) {
        fflush(NULL);
        (void)setsid();
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out = privfs_open(log, O_WRONLY | O_APPEND, PRIVFS_FILE_MODE);
        if (out < 0) /* never keep the caller's pipe open: it would wait for the supervisor */
            out = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (in >= 0)
            dup2(in, STDIN_FILENO);
        if (out >= 0) {
            dup2(out, STDOUT_FILENO);
            dup2(out, STDERR_FILENO);
        }
        if (in > STDERR_FILENO)
            close(in);
        if (out > STDERR_FILENO)
            close(out);
    }
    unsigned char c = (unsigned char)code;
    while (write(*notify, &c, 1) < 0 && errno == EINTR) {
    }
    close(*notify);
    *notify = -1;
}
