/*
 * procstat: what Linux's /proc says about a process: from /proc/<pid>/stat its state, CPU ticks
 * (utime, stime), start time and resident pages; from /proc/<pid>/status VmRSS and VmHWM.
 *
 * The stat line is parsed after the LAST ')' so a command name holding spaces or parentheses
 * cannot shift the fields (proc(5)). Reads are bounded (PROCSTAT_TEXT_MAX); pid 0 means this
 * process (/proc/self).
 */
#ifndef RF_PROCSTAT_H
#define RF_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCSTAT_TEXT_MAX 4096 /* largest /proc/<pid>/stat or /status read */

/* The fields of /proc/<pid>/stat rayfleet reads. */
typedef struct {
    char state; /* field 3: R, S, D, Z, T, ... */
    uint64_t utime; /* field 14: user CPU, clock ticks */
    uint64_t stime; /* field 15: system CPU, clock ticks */
    uint64_t starttime; /* field 22: start, clock ticks since boot */
    int64_t rss_pages; /* field 24: resident pages */
} procstat_t;

/* Memory lines of /proc/<pid>/status, in KiB; -1 when the line is missing (kernel threads,
 * zombies). */
typedef struct {
    int64_t vm_rss_kb; /* VmRSS: resident now */
    int64_t vm_hwm_kb; /* VmHWM: peak resident */
} procstat_mem_t;

/* Reads /proc/<pid>/stat (pid 0: this process). Returns 0, ERR_NOTFOUND (no such process) or
 * ERR_PARSE. */
int procstat_read(pid_t pid, procstat_t *out);

/* Parses the text of a /proc/<pid>/stat file. Returns 0, ERR_INVAL or ERR_PARSE. */
int procstat_parse(const char *text, procstat_t *out);

/* CPU seconds (user + system) of st. */
double procstat_cpu_s(const procstat_t *st);

/* CPU seconds (user + system) used so far by pid (0: this process), or -1 when unknown. */
double procstat_cpu_of(pid_t pid);

/* Reads VmRSS and VmHWM from /proc/<pid>/status (pid 0: this process). Returns 0 or
 * ERR_NOTFOUND. */
int procstat_mem(pid_t pid, procstat_mem_t *out);

/* Parses the text of a /proc/<pid>/status file. Returns 0 or ERR_INVAL. */
int procstat_mem_parse(const char *text, procstat_mem_t *out);

/* VmRSS of pid (0: this process) in bytes, or -1 when unknown. */
int64_t procstat_rss_bytes(pid_t pid);

/* Self-test: synthetic stat lines (a command with spaces and ')', short and garbled lines),
 * status texts, and this process's own files. */
int procstat_test(bool verbose);

#endif
