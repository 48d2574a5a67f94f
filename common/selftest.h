/*
 * selftest.h: the two macros every module's self-test uses, and where the shared samples are.
 *
 * A self-test declares `int failed = 0;`, calls CHECK(cond) for each assertion (which prints the
 * module, line and expression when it fails and counts it, and goes on), and ends with
 * `return SELFTEST_RESULT(name, verbose);`.
 */
#ifndef RF_SELFTEST_H
#define RF_SELFTEST_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                        \
            fflush(stdout);                                                                        \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)

#define SELFTEST_RESULT(name, verbose)                                                             \
    ((verbose) ? printf("%s: %d failure(s)\n", (name), failed) : 0, failed ? -1 : 0)

/* The shared reference directory (../shared): $RF_SHARED_DIR when set and not empty, else the
 * one the build was configured with, else NULL. */
static inline const char *selftest_shared_dir(void)
{
    const char *dir = getenv("RF_SHARED_DIR");
#ifdef RF_SHARED_DIR
    if (!dir || !*dir)
        dir = RF_SHARED_DIR;
#endif
    return dir && *dir ? dir : NULL;
}

#endif
