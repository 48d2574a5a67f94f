/*
 * selftest.h: the two macros every module's self-test uses, and where the shared samples are.
 *
 * A self-test declares `int failed = 0;`, calls CHECK(cond) for each assertion (which prints the
 * module, line and expression when it fails and counts it, and goes on), and ends with
 * `return SELFTEST_RESULT(name, verbose);`.
 *
 * selftest_samples() walks the upstream KubeRay samples (../shared/kuberay/samples, read in
 * place) for the self-tests that check something on every sample of a kind.
 */
#ifndef RF_SELFTEST_H
#define RF_SELFTEST_H

#include "buf.h"
#include "json.h"
#include "yaml.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Called for one sample document: `file` is its file name, `doc` the document (owned by the
 * walk; the callee may modify it). Returns the failures it counted. */
typedef int (*selftest_sample_fn)(const char *file, json_t *doc, void *arg);

/* Calls fn for every document whose kind is `kind` (NULL: every document) of every
 * <shared>/kuberay/samples/<prefix>*.yaml, files in name order. A file that does not load is a
 * failure (printed with its error). Returns the failures, fn's included; 0 when ../shared is not
 * there. *count (may be NULL) is increased by the documents handed to fn. */
static inline int selftest_samples(const char *prefix, const char *kind, selftest_sample_fn fn,
                                   void *arg, int *count)
{
    const char *shared = selftest_shared_dir();
    if (!shared)
        return 0;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/kuberay/samples", shared);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        printf("selftest: cannot open %s\n", dir);
        return 1;
    }
    int failed = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    for (int k = 0; k < n; k++) {
        const char *file = names[k]->d_name;
        size_t l = strlen(file);
        if (l < 6 || strcmp(file + l - 5, ".yaml") != 0 ||
            (plen && strncmp(file, prefix, plen) != 0))
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        json_t *docs = NULL;
        buf_t err;
        buf_init(&err, 4096);
        if (yaml_load_file(path, 16u << 20, &docs, &err) != 0) {
            printf("selftest: %s: %s\n", path, buf_str(&err));
            failed++;
        }
        buf_free(&err);
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc)
        {
            if (kind && strcmp(jx_str(doc, "kind", ""), kind) != 0)
                continue;
            if (count)
                (*count)++;
            failed += fn(file, doc, arg);
        }
        json_decref(docs);
    }
    for (int k = 0; k < n; k++)
        free(names[k]);
    free(names);
    return failed;
}

#endif
