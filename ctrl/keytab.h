/*
 * keytab: a table from reconcile keys (strings) to values, the typed per-key state of the
 * controller runtime (ctrl.h) and of its expectations (expect.h).
 *
 * Separate chaining over a power-of-two bucket array (FNV-1a hash), grown when the table holds
 * more entries than buckets. Each entry is one allocation holding its key. Values are owned by
 * the table: replacing or deleting one hands it to the free function given at creation.
 */
#ifndef RF_KEYTAB_H
#define RF_KEYTAB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct keytab keytab_t;

/* Releases a value the table owns. */
typedef void(keytab_free_fn)(void *val);

/* Visits one entry (keytab_sweep()); returns true to delete it (its value freed). */
typedef bool(keytab_visit_fn)(const char *key, void *val, void *arg);

/* An empty table whose values are released with `free_fn` (NULL: not released). NULL when out
 * of memory. */
keytab_t *keytab_new(keytab_free_fn *free_fn);

/* Frees every entry and value and NULLs *t_p. NULL-safe. */
void keytab_destroy(keytab_t **t_p);

/* The value of `key`, or NULL. */
void *keytab_get(const keytab_t *t, const char *key);

/* Sets `key` to `val` (owned by the table from now on, also on failure: then released),
 * releasing a value it replaces. Returns 0, ERR_INVAL (NULL key or value) or ERR_NOMEM. */
int keytab_put(keytab_t *t, const char *key, void *val);

/* Deletes `key` and releases its value; an unknown key is ignored. */
void keytab_del(keytab_t *t, const char *key);

/* Number of entries. */
size_t keytab_size(const keytab_t *t);

/* Calls `fn` for every entry (in no particular order); the entries it returns true for are
 * deleted. */
void keytab_sweep(keytab_t *t, keytab_visit_fn *fn, void *arg);

/* Self-test. */
int keytab_test(bool verbose);

#endif
