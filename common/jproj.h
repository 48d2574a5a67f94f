/*
 * jproj: a single-pass JSON scanner that validates a whole text but builds a jansson tree of only
 * the parts a caller keeps (a projection), and can report where the elements of one array lie in
 * the text.
 *
 * Why. A watch event or a list page carries complete Kubernetes objects, but a cache that only
 * routes changes needs a handful of fields. Parsing everything with json_loadb() allocates a node
 * per value and frees it again; jproj scans the bytes once, allocates only what is kept, and lets
 * the caller keep the exact text of each item (for storing it without serializing a tree again).
 *
 * Validation matches jx_parse() (json_loadb with JSON_DECODE_ANY | JSON_REJECT_DUPLICATES after a
 * nesting check): the text is rejected for bad structure, bad strings or escapes (control
 * characters, unknown escapes, \u0000, unpaired surrogates), invalid UTF-8 (overlong forms,
 * surrogates, above U+10FFFF), bad numbers (leading zeros, missing digits, integers outside
 * 64 bits, reals that overflow), duplicate keys in any object, anything but whitespace after the
 * value, or nesting deeper than JPROJ_MAX_DEPTH. A value is accepted exactly when jx_parse()
 * accepts it.
 *
 * Kept paths. A dotted path names object keys from the top ("metadata", "status.conditions").
 * Keeping a path keeps that whole subtree; the objects along the way are kept with only the kept
 * members (an object on the way is kept even when none of its kept members is present). Arrays are
 * transparent: keeping "items.metadata" keeps, for each element of the array "items", its
 * "metadata". Precisely, the projection P(v, node) of a value v under a node of the path trie:
 *   - the node ends a kept path: v itself, whole;
 *   - v is an object: an object of P(v[k], child k) for each child key k present and defined;
 *   - v is an array: an array of P(e, node) per element e, JSON null where undefined (so indexes
 *     stay aligned with the text's elements);
 *   - otherwise (a scalar on the way to a deeper path): undefined.
 * With no kept paths at all (keep NULL) the whole value is kept (a full parse).
 *
 * Spans. With a span path ("items"), the byte offsets and lengths of the elements of the array at
 * that path (object keys from the top) are reported; when the value at the path is not an array,
 * its own span is reported as the one span ("object" of a watch event line).
 */
#ifndef RF_JPROJ_H
#define RF_JPROJ_H

#include "buf.h"
#include "json.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define JPROJ_MAX_DEPTH JX_MAX_DEPTH /* deepest nesting accepted, as jx_parse() */
#define JPROJ_MAX_PATHS 64 /* kept paths at most */
#define JPROJ_MAX_SEGMENTS 16 /* segments of one path at most */
#define JPROJ_LINEAR_KEYS 16 /* objects up to this many keys check duplicates pairwise */
#define JPROJ_STACK_KEYS 512 /* key records held without allocating */

typedef struct jproj jproj_t;

/* Where one value lies in the text. */
typedef struct {
    size_t off; /* byte offset of its first byte */
    size_t len; /* its length in bytes */
} jproj_span_t;

/* The result of one parse. */
typedef struct {
    json_t *value; /* the projection (a new reference), or NULL when undefined (a scalar text
                    * under kept paths) */
    jproj_span_t *spans; /* spans of the elements at the span path (malloc'd), or NULL */
    size_t n_spans; /* how many */
    bool span_found; /* the span path was present in the text */
} jproj_result_t;

/* A compiled projection: `keep` a NULL-terminated list of dotted paths, or NULL to keep the whole
 * value; `span_path` a dotted path or NULL. Strings are copied. Returns NULL on out of memory or a
 * bad path (empty, an empty segment, more than JPROJ_MAX_PATHS paths or JPROJ_MAX_SEGMENTS
 * segments). */
jproj_t *jproj_new(const char *const *keep, const char *span_path);

/* Frees the projection and NULLs *p. NULL-safe. */
void jproj_destroy(jproj_t **p);

/* Validates the `len` bytes at `data` (need not be NUL-terminated) and fills *out (zeroed first)
 * with the projection and spans. Returns 0, ERR_PARSE after appending "name: byte N: problem" to
 * `err` (may be NULL; name NULL means "<input>"), ERR_NOMEM, or ERR_INVAL (NULL arguments). On
 * error *out holds nothing. Free the result with jproj_result_free(). */
int jproj_parse(const jproj_t *p, const char *data, size_t len, const char *name,
                jproj_result_t *out, buf_t *err);

/* Releases the value and spans of a result and zeroes it. NULL-safe. */
void jproj_result_free(jproj_result_t *res);

/* Self-test: equality with "jx_parse then prune" over the upstream samples, generated trees and
 * crafted invalid texts; spans; speed against json_loadb in verbose mode. */
int jproj_test(bool verbose);

#endif
