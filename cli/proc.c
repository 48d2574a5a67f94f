/*
 * proc: see proc.h.
 */
#include "proc.h"

#include "err.h"
#include "loop.h"
#include "privfs.h"
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_TAIL_BYTES 65536 /* most bytes of a log read by proc_tail */
#define PROC_EXEC_FAILED 127 /* exit status of a child whose exec failed */

static void s_copy_name(char *dst, const char *src)
{
    size_t len = strlen(src);
    if (len >= PROC_NAME_MAX)
        len = PROC_NAME_MAX - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void s_child_setup(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
}

int proc_spawn(const char *name, char *const argv[], const char *log_path, proc_entry_t *out)
{
    memset(out, 0, sizeof(*out));
    s_copy_name(out->name, name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return ERR_IO;
    if (pid == 0) {
        s_child_setup();
        setsid();
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int log = privfs_open(log_path, O_WRONLY | O_APPEND, PRIVFS_FILE_MODE);
        if (in < 0 || log < 0)
            _exit(PROC_EXEC_FAILED);
        dup2(in, STDIN_FILENO);
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        execv(argv[0], argv);
        dprintf(STDERR_FILENO, "rayfleetctl: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(PROC_EXEC_FAILED);
    }
    out->pid = pid;
    if (proc_start_time(pid, &out->start) != 0)
        out->start = 0;
    return 0;
}

/* Reads /proc/PID/stat: the state letter and the start time. */
static int s_stat(pid_t pid, char *state, unsigned long long *start)
{
    procstat_t st;
    if (pid <= 0 || procstat_read(pid, &st) != 0)
        return ERR_NOTFOUND;
    if (state)
        *state = st.state;
    if (start)
        *start = st.starttime;
    return 0;
}

int proc_start_time(pid_t pid, unsigned long long *out)
{
    return s_stat(pid, NULL, out);
}

bool proc_exited(const proc_entry_t *e, int *status)
{
    int st = 0;
    pid_t r = waitpid(e->pid, &st, WNOHANG);
    if (r == e->pid) {
        if (status)
            *status = st;
        return true;
    }
    return false;
}

bool proc_alive(const proc_entry_t *e)
{
    if (e->pid <= 0)
        return false;
    (void)proc_exited(e, NULL);
    char state = 0;
    unsigned long long start = 0;
    if (s_stat(e->pid, &state, &start) != 0)
        return false;
    if (state == 'Z' || state == 'X')
        return false;
    return e->start == 0 || start == e->start;
}

bool proc_paused(const proc_entry_t *e)
{
    char state = 0;
    unsigned long long start = 0;
    return proc_alive(e) && s_stat(e->pid, &state, &start) == 0 && (state == 'T' || state == 't');
}

void proc_describe_status(int status, char *out, size_t size)
{
    if (WIFEXITED(status))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "ended (wait status %d)", status);
}

static bool s_wait_gone(const proc_entry_t *e, int64_t timeout_ms)
{
    int64_t deadline = loop_clock_ms() + timeout_ms;
    while (proc_alive(e)) {
        if (loop_clock_ms() >= deadline)
            return false;
        struct timespec ts = {0, PROC_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

int proc_stop_all(const proc_entry_t *e, size_t n, int64_t timeout_ms, FILE *report)
{
    int killed = 0;
    for (size_t k = n; k-- > 0;) {
        if (!proc_alive(&e[k]))
            continue;
        kill(e[k].pid, SIGTERM);
        kill(e[k].pid, SIGCONT); /* a member kubesim stopped by `rayfleetctl member stop` */
        if (s_wait_gone(&e[k], timeout_ms)) {
            if (report)
                fprintf(report, "rayfleetctl: stopped %s (pid %d)\n", e[k].name, (int)e[k].pid);
            continue;
        }
        kill(e[k].pid, SIGKILL);
        killed++;
        (void)s_wait_gone(&e[k], timeout_ms);
        if (report)
            fprintf(report, "rayfleetctl: %s (pid %d) ignored SIGTERM for %" PRId64 " ms; killed\n",
                    e[k].name, (int)e[k].pid, timeout_ms);
    }
    return killed;
}

int proc_write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    return privfs_write_atomic(path, data, len, mode) == 0 ? 0 : ERR_IO;
}

int proc_pidfile_write(const char *path, const proc_entry_t *e, size_t n)
{
    char text[PROC_PIDFILE_MAX];
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        int w = snprintf(text + len, sizeof(text) - len, "%s %d %llu\n", e[k].name, (int)e[k].pid,
                         e[k].start);
        if (w < 0 || (size_t)w >= sizeof(text) - len)
            return ERR_IO;
        len += (size_t)w;
    }
    return proc_write_file(path, text, len, PRIVFS_FILE_MODE);
}

int proc_pidfile_read(const char *path, proc_entry_t *e, size_t max, size_t *n)
{
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
    char text[PROC_PIDFILE_MAX + 1];
    ssize_t len = read(fd, text, PROC_PIDFILE_MAX);
    close(fd);
    if (len < 0)
        return ERR_IO;
    text[len] = '\0';
    char *line = text;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line) {
            if (*n >= max)
                return ERR_PARSE;
            char *sp1 = strchr(line, ' ');
            char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
            if (!sp1 || !sp2)
                return ERR_PARSE;
            *sp1 = '\0';
            char *end = NULL;
            long pid = strtol(sp1 + 1, &end, 10);
            if (end != sp2 || pid <= 0)
                return ERR_PARSE;
            unsigned long long start = strtoull(sp2 + 1, &end, 10);
            if (*end != '\0')
                return ERR_PARSE;
            proc_entry_t *p = &e[(*n)++];
            memset(p, 0, sizeof(*p));
            s_copy_name(p->name, line);
            p->pid = (pid_t)pid;
            p->start = start;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return 0;
}

int proc_tail(const char *path, int lines, const char *prefix, FILE *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ERR_IO;
    }
    off_t from = st.st_size > PROC_TAIL_BYTES ? st.st_size - PROC_TAIL_BYTES : 0;
    char *text = malloc(PROC_TAIL_BYTES + 1);
    if (!text) {
        close(fd);
        return ERR_NOMEM;
    }
    ssize_t n = pread(fd, text, PROC_TAIL_BYTES, from);
    close(fd);
    if (n < 0) {
        free(text);
        return ERR_IO;
    }
    text[n] = '\0';
    /* Walk back over `lines` newlines (ignoring a final one). */
    ssize_t i = n;
    if (i > 0 && text[i - 1] == '\n')
        i--;
    int seen = 0;
    while (i > 0) {
        if (text[i - 1] == '\n' && ++seen == lines)
            break;
        i--;
    }
    char *p = text + i;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        fprintf(out, "%s%s\n", prefix, p);
        if (!nl)
            break;
        p = nl + 1;
    }
    free(text);
    return 0;
}

pid_t proc_fork_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return pid;
}

int proc_capture(char *const argv[], buf_t *out)
{
    int fds[2];
    pid_t pid = proc_fork_pipe(fds);
    if (pid < 0)
        return ERR_IO;
    if (pid == 0) {
        s_child_setup();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDERR_FILENO);
        }
        dup2(fds[1], STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(PROC_EXEC_FAILED);
    }
    close(fds[1]);
    int rc = 0;
    int64_t deadline = loop_clock_ms() + PROC_CAPTURE_TIMEOUT_MS;
    char chunk[4096];
    for (;;) {
        int64_t left = deadline - loop_clock_ms();
        if (left <= 0) {
            rc = ERR_TIMEOUT;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out->len + (size_t)n <= PROC_CAPTURE_MAX)
            (void)buf_append(out, chunk, (size_t)n);
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        rc = WIFEXITED(st) && WEXITSTATUS(st) == PROC_EXEC_FAILED ? ERR_IO : ERR_STATE;
    return rc;
}

int proc_sleep(int64_t ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(&set, NULL, &ts);
    return sig > 0 ? sig : 0;
}
