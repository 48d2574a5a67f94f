/*
 * yaml: YAML (libyaml) to and from jansson trees, resolving scalars the way kubectl does.
 *
 * kubectl reads manifests with sigs.k8s.io/yaml, which decodes with go-yaml v2 (YAML 1.1 rules)
 * into Go values and marshals them to JSON. yaml_load_* reproduce the JSON kubectl would send, so
 * a manifest means the same thing to rayfleet as to kubectl. The rules, taken from go-yaml v2
 * resolve.go (checked against the copy vendored in kubernetes/kubernetes):
 *
 *   - Quoted ('...', "...") and block (|, >) scalars are always strings, kept as written.
 *   - A plain scalar is looked up in a table first:
 *       y Y yes Yes YES true True TRUE on On ON          -> true
 *       n N no No NO false False FALSE off Off OFF       -> false
 *       (empty) ~ null Null NULL                         -> null
 *       .inf .Inf .INF +.inf ... -.inf ... .nan .NaN .NAN -> float infinity / NaN (JSON cannot
 *                                                           hold them: load error, as kubectl)
 *       <<                                               -> merge key (in key position)
 *     Other spellings (yEs, TRUE1, nan, Infinity) are strings.
 *   - Only a plain scalar whose first character is a digit, '+', '-' or '.' can be a number:
 *       '.' first: .5, .5e3 -> float.
 *       digit or sign: remove every '_', then parse as a Go integer with base prefix: 0x/0X hex,
 *       0o/0O octal, 0b/0B binary, a leading 0 is octal (010 -> 8), optional sign; values beyond
 *       int64 up to 2^64-1 are accepted (stored as JSON reals here, since jansson integers are
 *       int64). Else, when it matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$,
 *       a float (08 -> 8.0, 1e3 -> 1000.0, 1_000.5 -> 1000.5); out-of-range floats (1e400) stay
 *       strings. Timestamps (2024-01-02) stay strings, as go-yaml v2 does when decoding to
 *       interface{}.
 *   - Everything else is a string.
 *   - JSON numbers: kubectl marshals a Go float64 holding an integral value without a decimal
 *     point (1e3 -> 1000, 1.0 -> 1), so an integral float within int64 range becomes a JSON
 *     integer here too; other floats are JSON reals.
 *   - Explicit tags are honoured: !!str (and !!binary, kept as its base64 text) forces a string;
 *     !!int, !!bool, !!null, !!float require the scalar to resolve to that type (an int is
 *     accepted as !!float) or loading fails "cannot decode !!str `abc` as a !!int". A value
 *     tagged !!float stays a JSON real even when integral (yaml_dump relies on this). Unknown
 *     tags (!foo) leave the scalar a string; tags on collections are ignored.
 *   - Mapping keys become JSON object keys: strings as they are, integers in decimal, booleans
 *     as "true"/"false", floats in their shortest form; a null or a collection as key is an
 *     error. Duplicate keys are an error naming the second one's position.
 *   - Anchors (&a) and aliases (*a) are expanded by copying. Merge keys (<<: *base, or a
 *     sequence of maps) merge per YAML 1.1: keys written in the mapping win over merged ones,
 *     and earlier merge sources win over later ones.
 *   - Documents separated by '---' become the elements of the returned array; empty (null)
 *     documents are skipped, as kubectl skips them.
 *
 * Bounds: input size (max_bytes for files), nesting depth YAML_MAX_DEPTH, and total output size
 * counted across alias expansion (YAML_MAX_NODES values, YAML_MAX_EXPANDED_BYTES of scalar
 * text), which defeats "billion laughs" inputs with ERR_TOOBIG before anything large is copied.
 *
 * Errors: one line "file:line:column: problem" (1-based) is appended to the caller's `err`
 * (may be NULL), e.g. "raycluster.yaml:12:5: mapping values are not allowed in this context".
 */
#ifndef RF_YAML_H
#define RF_YAML_H

#include "buf.h"

#include <jansson.h>
#include <stddef.h>

/* yaml.c alone defines RF_YAML_IMPL and includes this header as <yaml.h>; it then needs
 * libyaml's header of the same name, found next on the include path. */
#ifdef RF_YAML_IMPL
#include_next <yaml.h>
#endif

/* The deepest nesting of mappings and sequences accepted. */
#define YAML_MAX_DEPTH 256
/* The most JSON values one load may produce, counting every copy made for an alias. */
#define YAML_MAX_NODES 1000000
/* The most scalar bytes one load may produce, counting every copy made for an alias. */
#define YAML_MAX_EXPANDED_BYTES (64u * 1024u * 1024u)
/* libyaml refuses implicit (simple) keys longer than 1024 characters; yaml_dump writes longer
 * keys in the explicit "? key" form. */
#define YAML_SIMPLE_KEY_MAX 1000

/* Reads the file at `path` (at most `max_bytes` bytes) and loads every document in it. On
 * success returns 0 and stores in *docs_out a new JSON array (caller json_decref()s) holding one
 * element per non-empty document. Errors, each with a line in `err`: ERR_IO (cannot read),
 * ERR_TOOBIG (file larger than max_bytes, or expansion bounds passed), ERR_PARSE (syntax,
 * duplicate key, bad tag, unknown alias, value not representable in JSON), ERR_NOMEM.
 * *docs_out is NULL on failure. */
int yaml_load_file(const char *path, size_t max_bytes, json_t **docs_out, buf_t *err);

/* Loads the `len` bytes at `data` (need not be NUL-terminated); `name` (may be NULL, then
 * "<input>") prefixes error messages. Same results as yaml_load_file(). */
int yaml_load_buf(const char *data, size_t len, const char *name, json_t **docs_out, buf_t *err);

/* sigs.k8s.io/yaml's Unmarshal of one document into a Go `go_type` that is an object
 * (map[string]interface{}, a struct, ...): *out gets a new reference to the mapping, or NULL for
 * an empty or null document; returns 0. A document that does not parse gives ERR_INVAL with Go's
 * cause in `cause` ("error converting YAML to JSON: yaml: line L: <problem>"), one that is not a
 * mapping ERR_INVAL with "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal
 * <string|number|array|bool> into Go value of type <go_type>"; ERR_NOMEM. */
int yaml_go_object(const char *yaml, size_t len, const char *go_type, json_t **out, buf_t *cause);

/* Like yaml_load_buf() / yaml_load_file(), and also stores in *marks_out a new JSON object
 * (caller json_decref()s) giving the position of every value of the FIRST document: its key is
 * the value's dotted path (mapping keys joined by '.', sequence items by their index; the root
 * is ""), its value the array [key line, key column, value line, value column], 1-based, the key
 * pair 0 for sequence items and the root. Used by cfg to name file:line:col in its errors. */
int yaml_load_buf_marks(const char *data, size_t len, const char *name, json_t **docs_out,
                        json_t **marks_out, buf_t *err);
int yaml_load_file_marks(const char *path, size_t max_bytes, json_t **docs_out, json_t **marks_out,
                         buf_t *err);

/* Appends `v` as readable block YAML (two-space indentation, keys in the tree's order, strings
 * quoted only when they would otherwise read back as another type or break the syntax,
 * multi-line strings as | blocks), ending with a newline. yaml_load_buf() of the text gives a
 * tree json_equal() to `v`. Returns 0, ERR_INVAL (NULL v), ERR_TOOBIG (the buffer's bound; the
 * buffer is restored) or ERR_NOMEM. */
int yaml_dump(const json_t *v, buf_t *out);

/* Appends each element of the array `docs` as a document, separated by "---" lines. Same
 * returns as yaml_dump(); ERR_INVAL when docs is not an array. */
int yaml_dump_all(const json_t *docs, buf_t *out);

#endif
