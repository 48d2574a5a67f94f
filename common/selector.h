/*
 * selector: Kubernetes label selectors and field selectors, parsed and matched over jansson
 * trees. Pure functions, no I/O.
 *
 * Label selectors follow k8s.io/apimachinery/pkg/labels: requirements separated by commas are
 * ANDed; each is `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does
 * not exist), or `k>n` / `k<n` (integer comparison). Whitespace around tokens is ignored. Keys
 * are validated as qualified names and values as label values, and a bad selector yields the
 * same message kube-apiserver puts in its 400 body, e.g.
 *   unable to parse requirement: <nil>: Invalid value: "a b": name part must consist of ...
 *
 * Field selectors follow k8s.io/apimachinery/pkg/fields: terms `f=v`, `f==v`, `f!=v` separated
 * by commas (a backslash escapes `,`, `=`, `!` and `\` in values). The caller names the field
 * paths its resource supports; any other field gives `field label not supported: <field>`. A
 * field's value is read from the object by its dotted path and rendered as kube does: strings
 * as they are, booleans as "true"/"false", integers in decimal, a missing field as "".
 *
 * A selector_t is immutable once built and may be shared by several watchers.
 */
#ifndef RF_SELECTOR_H
#define RF_SELECTOR_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The longest selector text accepted; a longer one fails with ERR_TOOBIG. */
#define SELECTOR_MAX_TEXT 65536
/* The most requirements (terms) in one selector; more fail with ERR_TOOBIG. */
#define SELECTOR_MAX_TERMS 1024
/* The longest label value and label name part (kube's DNS-1123 label bound). */
#define SELECTOR_LABEL_MAX 63
/* The longest label key prefix (kube's DNS-1123 subdomain bound). */
#define SELECTOR_PREFIX_MAX 253

typedef struct selector selector_t;

/* Parses a label selector string (the `labelSelector` query parameter). An empty or NULL text
 * gives the empty selector, which matches everything. On success stores a new selector in *out
 * (caller destroys it) and returns 0. Returns ERR_INVAL for a malformed selector and appends
 * kube's message to `err` (may be NULL), ERR_TOOBIG past the bounds above, ERR_NOMEM. */
int selector_parse_labels(const char *text, selector_t **out, buf_t *err);

/* Parses a field selector string (the `fieldSelector` query parameter). `fields` lists the
 * `nfields` dotted paths the resource supports (e.g. "metadata.name", "status.phase"). Same
 * returns as selector_parse_labels(); an unsupported field gives ERR_INVAL with the message
 * `field label not supported: <field>`. */
int selector_parse_fields(const char *text, const char *const *fields, size_t nfields,
                          selector_t **out, buf_t *err);

/* Builds the selector that matches exactly the labels of `match_labels` (a JSON object of string
 * values, as in a Service's spec.selector); NULL or {} gives the empty selector. Keys and values
 * are validated. Returns 0, ERR_INVAL (message in `err`) or ERR_NOMEM. */
int selector_labels_from_map(const json_t *match_labels, selector_t **out, buf_t *err);

/* Builds a selector from a metav1.LabelSelector object ({matchLabels, matchExpressions} with
 * operators In, NotIn, Exists, DoesNotExist), as metav1.LabelSelectorAsSelector does: NULL or
 * JSON null gives a selector that matches nothing, {} one that matches everything. Returns 0,
 * ERR_INVAL (message in `err`, e.g. `"Foo" is not a valid label selector operator`), ERR_NOMEM. */
int selector_from_label_selector(const json_t *label_selector, selector_t **out, buf_t *err);

/* True when the label selector `s` matches `labels` (a JSON object of strings; NULL counts as
 * no labels). A field selector given here compares against `labels` keys as well. */
bool selector_matches_labels(const selector_t *s, const json_t *labels);

/* True when the field selector `s` matches the object `obj`, each field read by
 * selector_field_value(). */
bool selector_matches_fields(const selector_t *s, const json_t *obj);

/* Appends to `out` the value at dotted path `path` of `obj`, rendered as a field selector sees
 * it ("" when missing or not a scalar). Returns 0 or ERR_TOOBIG/ERR_NOMEM from the buffer. */
int selector_field_value(const json_t *obj, const char *path, buf_t *out);

/* True when `s` selects everything (no requirement). */
bool selector_is_empty(const selector_t *s);

/* When `s` requires `key` to equal one value (`key=v`, `key==v` or `key in (v)`), returns that
 * value (borrowed from `s`); else NULL. Lets a store answer metadata.name=x from an index. */
const char *selector_exact_value(const selector_t *s, const char *key);

/* Appends the canonical text of `s` (requirements sorted by key, as kube prints them, e.g.
 * "app=x,tier in (a,b)"; field selector values escaped as fields.EscapeValue does) to `out`. A
 * selector that matches nothing has no text form and gives ERR_INVAL. Returns 0, ERR_INVAL,
 * ERR_TOOBIG, ERR_NOMEM. */
int selector_to_string(const selector_t *s, buf_t *out);

/* Frees the selector and sets *s to NULL. NULL-safe. */
void selector_destroy(selector_t **s);

/* Validates a label key (a qualified name). Returns 0, or ERR_INVAL after appending kube's
 * reason (without field path) to `err` (may be NULL). */
int selector_validate_label_key(const char *key, buf_t *err);

/* Validates a label value. Returns 0, or ERR_INVAL after appending kube's reason to `err`. */
int selector_validate_label_value(const char *value, buf_t *err);

#endif
