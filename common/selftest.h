/*
 * selftest.h: the two macros every module's self-test uses.
 *
 * A self-test declares `int failed = 0;`, calls CHECK(cond) for each assertion (which prints the
 * module, line and expression when it fails and counts it, and goes on), and ends with
 * `return SELFTEST_RESULT(name, verbose);`.
 */
#ifndef RF_SELFTEST_H
#define RF_SELFTEST_H

#include <stdio.h>

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

#endif
