/*
 * procstat: /proc/<pid>/stat and /proc/<pid>/status (see procstat.h).
 */
#include "procstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

#define S_FIELD_STATE 3 /* proc(5) field numbers, counting pid as 1 and comm as 2 */
#define S_FIELD_UTIME 14
#define S_FIELD_STIME 15
#define S_FIELD_START 22
#define S_FIELD_RSS 24
#define S_KIB 1024

/* Reads /proc/<pid>/<what> (pid 0: self) into text[PROCSTAT_TEXT_MAX]. Returns 0 or
 * ERR_NOTFOUND. */
static int s_slurp(pid_t pid, const char *what, char *text)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    else
        snprintf(path, sizeof(path), "/proc/self/%s", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_NOTFOUND;
    size_t len = 0;
    ssize_t n;
    while (len < PROCSTAT_TEXT_MAX - 1 &&
           (n = read(fd, text + len, PROCSTAT_TEXT_MAX - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    text[len] = '\0';
    return len > 0 ? 0 : ERR_NOTFOUND;
}

int procstat_parse(const char *text, procstat_t *out)
{
    if (!text || !out)
        return ERR_INVAL;
    const char *p = strrchr(text, ')');
    if (!p)
        return ERR_PARSE;
    p++;
    procstat_t st = {0};
    for (int field = S_FIELD_STATE; field <= S_FIELD_RSS; field++) {
        if (*p != ' ')
            return ERR_PARSE;
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return ERR_PARSE;
        const char *end = p;
        while (*end && *end != ' ' && *end != '\n')
            end++;
        if (field == S_FIELD_STATE) {
            if (end - p != 1)
                return ERR_PARSE;
            st.state = *p;
        } else if (field == S_FIELD_UTIME || field == S_FIELD_STIME || field == S_FIELD_START ||
                   field == S_FIELD_RSS) {
            char *stop = NULL;
            long long v = strtoll(p, &stop, 10);
            if (stop != end || (v < 0 && field != S_FIELD_RSS))
                return ERR_PARSE;
            if (field == S_FIELD_UTIME)
                st.utime = (uint64_t)v;
            else if (field == S_FIELD_STIME)
                st.stime = (uint64_t)v;
            else if (field == S_FIELD_START)
                st.starttime = (uint64_t)v;
            else
                st.rss_pages = v;
        }
        p = end;
    }
    *out = st;
    return 0;
}

int procstat_read(pid_t pid, procstat_t *out)
{
    char text[PROCSTAT_TEXT_MAX];
    if (!out)
        return ERR_INVAL;
    int rc = s_slurp(pid, "stat", text);
    return rc ? rc : procstat_parse(text, out);
}

double procstat_cpu_s(const procstat_t *st)
{
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)(st->utime + st->stime) / (double)hz : -1;
}

double procstat_cpu_of(pid_t pid)
{
    procstat_t st;
    return procstat_read(pid, &st) == 0 ? procstat_cpu_s(&st) : -1;
}

/* The KiB number after `key` at the start of a line of text, or -1. */
static int64_t s_kb_line(const char *text, const char *key)
{
    size_t kn = strlen(key);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, kn) != 0)
            continue;
        char *end = NULL;
        long long v = strtoll(line + kn, &end, 10);
        return end != line + kn && v >= 0 ? v : -1;
    }
    return -1;
}

int procstat_mem_parse(const char *text, procstat_mem_t *out)
{
    if (!text || !out)
        return ERR_INVAL;
    out->vm_rss_kb = s_kb_line(text, "VmRSS:");
    out->vm_hwm_kb = s_kb_line(text, "VmHWM:");
    return 0;
}

int procstat_mem(pid_t pid, procstat_mem_t *out)
{
    char text[PROCSTAT_TEXT_MAX];
    if (!out)
        return ERR_INVAL;
    int rc = s_slurp(pid, "status", text);
    return rc ? rc : procstat_mem_parse(text, out);
}

int64_t procstat_rss_bytes(pid_t pid)
{
    procstat_mem_t m;
    if (procstat_mem(pid, &m) != 0 || m.vm_rss_kb < 0)
        return -1;
    return m.vm_rss_kb * S_KIB;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

int procstat_test(bool verbose)
{
    int failed = 0;
    procstat_t st;

    // A command name with spaces and ')' does not shift the fields.
    const char *line = "4242 (a b) (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
                       "120 35 0 0 20 0 3 0 98765 123456789 -7 18446744073709551615\n";
    CHECK(procstat_parse(line, &st) == 0 && st.state == 'S' && st.utime == 120 && st.stime == 35 &&
          st.starttime == 98765 && st.rss_pages == -7);
    const char *zombie = "7 (z) Z 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 55 0 0";
    CHECK(procstat_parse(zombie, &st) == 0 && st.state == 'Z' && st.utime == 3 &&
          st.starttime == 55 && st.rss_pages == 0);
    // Short, garbled or empty texts are errors, never a half-filled struct.
    const char *bad[] = {"",
                         "no parens",
                         "1 (x) S 1 2 3",
                         "1 (x) S 1 0 0 0 -1 0 0 0 0 0 x 0",
                         "1 (x) SS 1 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 0 0",
                         "1 (x) S 1 0 0 0 -1 0 0 0 0 0 -1 2 0 0 20 0 1 0 9 0 0",
                         "1 (x)S 1 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 0 0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st.state = '?';
        if (procstat_parse(bad[i], &st) != ERR_PARSE || st.state != '?') {
            printf("procstat: accepted bad stat '%s'\n", bad[i]);
            failed++;
        }
    }
    CHECK(procstat_parse(NULL, &st) == ERR_INVAL && procstat_parse(line, NULL) == ERR_INVAL);
    st.utime = (uint64_t)sysconf(_SC_CLK_TCK);
    st.stime = st.utime;
    CHECK(procstat_cpu_s(&st) == 2.0);

    // status: VmRSS and VmHWM, missing lines.
    procstat_mem_t m;
    CHECK(procstat_mem_parse("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n", &m) == 0 &&
          m.vm_rss_kb == 1024 && m.vm_hwm_kb == 2048);
    CHECK(procstat_mem_parse("Name:\tkthreadd\nState:\tS\n", &m) == 0 && m.vm_rss_kb == -1 &&
          m.vm_hwm_kb == -1);
    CHECK(procstat_mem_parse("XVmRSS: 5 kB\nVmRSS: x\n", &m) == 0 && m.vm_rss_kb == -1);
    CHECK(procstat_mem_parse(NULL, &m) == ERR_INVAL);

    // This process: running, started, some CPU and memory; self and own pid agree.
    procstat_t me, me2;
    CHECK(procstat_read(0, &me) == 0 && me.state == 'R' && me.starttime > 0 && me.rss_pages > 0);
    CHECK(procstat_read(getpid(), &me2) == 0 && me2.starttime == me.starttime);
    CHECK(procstat_cpu_of(0) >= 0 && procstat_cpu_of(getpid()) >= procstat_cpu_s(&me));
    CHECK(procstat_mem(0, &m) == 0 && m.vm_rss_kb > 0 && m.vm_hwm_kb >= m.vm_rss_kb);
    int64_t rss = procstat_rss_bytes(getpid());
    CHECK(rss > 0 && rss % S_KIB == 0);
    // A pid that cannot exist (above pid_max's ceiling).
    CHECK(procstat_read(4194305 + 7, &st) == ERR_NOTFOUND);
    CHECK(procstat_mem(4194305 + 7, &m) == ERR_NOTFOUND);
    CHECK(procstat_cpu_of(4194305 + 7) == -1 && procstat_rss_bytes(4194305 + 7) == -1);
    return SELFTEST_RESULT("procstat", verbose);
}

#endif /* RF_SELFTEST */
