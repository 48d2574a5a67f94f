/*
 * benchclock: the clocks the in-process benchmarks read, in seconds: wall (monotonic) and this
 * process's CPU time (user + system, steadier than wall time on a shared machine). Header-only
 * (file-static helpers) for single-file benchmark programs.
 */
#ifndef RF_BENCHCLOCK_H
#define RF_BENCHCLOCK_H

#include <time.h>

static inline double benchclock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Monotonic seconds. */
static inline double benchclock_now(void)
{
    return benchclock_read(CLOCK_MONOTONIC);
}

/* CPU seconds of this process. */
static inline double benchclock_cpu(void)
{
    return benchclock_read(CLOCK_PROCESS_CPUTIME_ID);
}

#endif
