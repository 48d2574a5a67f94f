/*
 * json: helpers around jansson, the JSON tree type of rayfleet.
 *
 * Why jansson. Every JSON tree in rayfleet (Kubernetes objects, YAML documents, API bodies) is a
 * jansson `json_t *`. Jansson is a small (about 10k lines), dependency-free C library with a
 * stable C API since 2.0 and a long record in Debian, so we link the distribution's package and
 * inherit its security fixes. Its trees are reference counted, which makes ownership explicit
 * (`json_object_set_new` steals, `json_object_get` borrows) and lets a cached object be shared
 * between readers without copying. It parses and dumps fast enough for our object sizes, keeps
 * integers as 64-bit `json_int_t` (Kubernetes resourceVersions and quantities fit), validates
 * UTF-8, and can sort keys on output, which gives us a canonical form for hashing and comparing.
 *
 * This module adds what jansson lacks: bounded loading with "file:line:column: problem" error
 * messages and a nesting-depth limit checked before parsing; lookup by dotted path
 * ("metadata.labels") or by a NULL-terminated list of keys for keys that contain dots
 * (jx_getv(obj, "metadata", "labels", "ray.io/node-type", NULL)); typed getters with defaults;
 * a canonical dump (compact, keys sorted) and its FNV-1a 64-bit hash; and path setters that
 * create intermediate objects.
 *
 * Paths: segments are separated by '.'; a segment that is all digits indexes an array when the
 * current value is an array (and is an ordinary key in an object). A path cannot name a key that
 * contains a '.': use the `v` variants, whose arguments are whole keys.
 *
 * Errors: functions that report a problem in text append one line (no trailing newline) to the
 * caller's `buf_t *err`, which may be NULL.
 */
#ifndef RF_JSON_H
#define RF_JSON_H

#include "buf.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The deepest nesting of arrays and objects jx_load_* accept (jansson's own limit, 2048, is
 * fixed at its compile time; ours is checked before jansson sees the bytes). */
#define JX_MAX_DEPTH 256

/* The most bytes a jx_get path may have, and the most segments it may contain. */
#define JX_PATH_MAX 1024

/* FNV-1a 64-bit parameters. */
#define JX_FNV_OFFSET 14695981039346656037ULL
#define JX_FNV_PRIME 1099511628211ULL

/* Reads the file at `path` (at most `max_bytes` bytes, else ERR_TOOBIG) and parses it as one JSON
 * value. Returns a new reference the caller must json_decref(), or NULL after appending an error
 * such as "obj.json:3:14: unexpected token near '}'" to `err`. */
json_t *jx_load_file(const char *path, size_t max_bytes, buf_t *err);

/* Parses `len` bytes at `data` (need not be NUL-terminated) as one JSON value. `name` (may be
 * NULL, then "<input>") prefixes error messages. Fails on nesting deeper than JX_MAX_DEPTH.
 * Returns a new reference, or NULL after appending an error to `err`. */
json_t *jx_load_buf(const char *data, size_t len, const char *name, buf_t *err);

/* Like jx_load_buf() but also reports why it failed: returns 0 and stores a new reference in
 * *out, or ERR_PARSE (bad syntax or too deep), ERR_NOMEM. */
int jx_parse(const char *data, size_t len, const char *name, json_t **out, buf_t *err);

/* The value at the dotted `path` below `obj`, borrowed (valid while `obj` lives), or NULL when
 * any segment is missing, `obj` is NULL, or the path is empty or longer than JX_PATH_MAX. */
json_t *jx_get(const json_t *obj, const char *path);

/* The value reached by following the keys given as const char * arguments ending with NULL.
 * Each key is used whole (dots are not separators). Borrowed, or NULL when missing. */
json_t *jx_getv(const json_t *obj, ...);
json_t *jx_vgetv(const json_t *obj, va_list ap);

/* Typed getters: the string/integer/boolean at `path`, or `def` when it is missing or has
 * another type. jx_str's result is borrowed from the tree. jx_int accepts only JSON integers. */
const char *jx_str(const json_t *obj, const char *path, const char *def);
json_int_t jx_int(const json_t *obj, const char *path, json_int_t def);
bool jx_bool(const json_t *obj, const char *path, bool def);

/* Appends the canonical form of `obj` to `out`: compact, object keys sorted by byte value, any
 * value allowed at the top. Two trees are json_equal() exactly when their canonical forms are
 * equal (reals compare by their %.17g text). Returns 0, ERR_TOOBIG (the buffer's bound; the
 * buffer is restored), ERR_NOMEM, or ERR_INVAL for a NULL obj. */
int jx_dump_canonical(const json_t *obj, buf_t *out);

/* Appends s[0..n) escaped as the body of a JSON string (no quotes) exactly as jansson's dump
 * escapes it without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH: \" \\ \b \f \n \r \t, other
 * control characters \u00XX (upper-case hex), every other byte as is. Returns 0 or ERR_NOMEM
 * (buf_append()'s error; what was appended stays). */
int jx_escape(buf_t *b, const char *s, size_t n);

/* json_dumps(v, JSON_COMPACT), byte for byte, written several times faster (jansson's own
 * writer only for reals, non-ASCII strings and trees deeper than 512). Free with free(); NULL
 * when out of memory or v is NULL. `len` (may be NULL) receives strlen. */
char *jx_dumps_compact(const json_t *v, size_t *len);

/* Stores in *out the FNV-1a 64-bit hash of the canonical form of `obj`, streamed without a
 * buffer. Returns 0, ERR_INVAL for a NULL obj, or ERR_NOMEM. */
int jx_hash(const json_t *obj, uint64_t *out);

/* Sets the value at dotted `path` in the object `obj` to `value`, creating missing intermediate
 * objects. Always takes ownership of `value` (a new reference), even on failure. Returns 0,
 * ERR_INVAL (obj not an object, empty path, or an intermediate value that exists and is not an
 * object), or ERR_NOMEM. Arrays are not traversed by setters. */
int jx_set_path(json_t *obj, const char *path, json_t *value);

/* The first object of array `arr` whose string member `key` equals `value` (a condition by
 * "type", an env var or container by "name", ...), borrowed; NULL when none or `arr` is not an
 * array. */
json_t *jx_array_find(const json_t *arr, const char *key, const char *value);

/* True when array `arr` holds the string `value` (a finalizer in metadata.finalizers, ...). */
bool jx_array_has_string(const json_t *arr, const char *value);

/* The object (jx_child_obj) or array (jx_child_arr) at obj[key], created when missing and
 * replacing a value of another type; borrowed from obj. NULL when obj is not an object or out of
 * memory. For builders that fill nested fields of a tree they own. */
json_t *jx_child_obj(json_t *obj, const char *key);
json_t *jx_child_arr(json_t *obj, const char *key);

/* Like jx_set_path() with whole keys given as const char * arguments ending with NULL. */
int jx_setv(json_t *obj, json_t *value, ...);

#endif
