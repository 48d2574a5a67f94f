/*
 * redact: secret-free, bounded summaries of Kubernetes objects and text, for audit request
 * summaries and log lines.
 *
 * The rule (what counts as secret):
 * - A NAME LOOKS SECRET when, compared case-insensitively, it contains one of TOKEN, PASSWORD,
 *   PASSWD, SECRET, KEY, CREDENTIAL, AUTH, COOKIE, PRIVATE (so DB_PASSWORD, api-key,
 *   Authorization). Deliberately broad: KEY also matches MONKEY; a false positive costs a value
 *   in a summary, a false negative leaks a secret.
 * - name/value pairs (container env entries, httpGet httpHeaders): an object with a string "name"
 *   that looks secret has its literal string "value" replaced by REDACT_MARK. A valueFrom
 *   (secretKeyRef, configMapKeyRef, fieldRef) is a reference, not a secret: it is kept (the
 *   Secret's name and key only).
 * - Any other object member whose key looks secret and whose value is a string is replaced
 *   (annotations like "my-token", a headers map's "Authorization"), except the reference fields
 *   "name", "key" and "secretName". When its value is an object (a credential object, such as
 *   KubeRay's gcsFaultToleranceOptions.redisPassword {value, valueFrom}), that object's string
 *   "value" is replaced (its valueFrom, a reference, is kept).
 * - A Secret (top-level kind "Secret"): every value of data and stringData is replaced.
 * - The annotation kubectl.kubernetes.io/last-applied-configuration (a copy of the object, secrets
 *   included) is replaced.
 * - In every remaining string (and in redact_text()): after a word that looks secret followed by
 *   '=' or ':' (--redis-password=x, token: x, password=x), and after "Bearer " or "Basic ", the
 *   value up to the next blank, quote, comma, ';' or '&' is replaced.
 *
 * Bounding: redact_summary() writes compact JSON of at most `max` bytes. When the whole redacted
 * object is longer, it writes instead {"truncated":true,"kind":..,"namespace":..,"name":..,
 * "head":"<the first bytes of the redacted JSON>"}, still valid JSON and within `max`.
 * Cost: the summary is dumped by a redacting writer that applies the rule value by value and
 * stops once the output passes `max` (a string running past the bound is cut BEFORE the
 * free-text rule reads it), so a summary reads and writes O(max) bytes of the object, never the
 * whole of a large one, and no secret can straddle the cut. Its output is byte for byte the
 * compact dump of redact_object() whenever that fits in `max` (a bare top-level string also gets
 * the free-text rule, which redact_object() leaves alone).
 */
#ifndef RF_REDACT_H
#define RF_REDACT_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define REDACT_MARK "[redacted]" /* what replaces a secret value */
#define REDACT_SUMMARY_MAX_DEFAULT 2048 /* a good summary bound for audit rows */
#define REDACT_SUMMARY_MIN 256 /* the smallest `max` redact_summary() accepts */
#define REDACT_DEPTH_MAX 64 /* deeper JSON is cut (replaced by REDACT_MARK) */

/* Whether `name` looks secret by the rule above (NULL: false). */
bool redact_name_is_secret(const char *name);

/* A quick pre-filter on the JSON text s[0..n-1] of an object: false only when the object holds
 * nothing the rule replaces (none of the secret words, "Bearer ", "Basic ", the last-applied
 * annotation or a \u escape occurs in it, case-insensitively; redact_object() would change
 * nothing but cut nesting deeper than REDACT_DEPTH_MAX), so a caller can skip parsing and
 * redacting it. True says only "maybe". */
bool redact_text_may_hold(const char *s, size_t n);

/* A deep copy of `obj` with the secrets replaced by REDACT_MARK (the caller json_decref()s it).
 * Returns NULL when obj is NULL or out of memory. */
json_t *redact_object(const json_t *obj);

/* True when `obj` (an object as redact_object() left it) holds REDACT_MARK anywhere but in the
 * last-applied annotation, a copy of the object that no reconciler reads: a value it may need was
 * replaced, so a reader that needs values reads the object from its source instead. (A user's
 * own "[redacted]" text also says true: a harmless extra read.) False for NULL. */
bool redact_marked(const json_t *obj);

/* Appends to `out` the redacted summary of `obj`: compact JSON, at most `max` bytes
 * (REDACT_SUMMARY_MIN .. ), cut as described above. Returns 0, ERR_INVAL (NULL arguments or max
 * too small), ERR_NOMEM or ERR_TOOBIG (`out`'s own bound); on error `out` is unchanged. */
int redact_summary(const json_t *obj, size_t max, buf_t *out);

/* Appends `in` to `out` with the values after secret-looking "word=" / "word:" and after
 * "Bearer " / "Basic " replaced. Returns 0, ERR_INVAL, ERR_NOMEM or ERR_TOOBIG. */
int redact_text(const char *in, buf_t *out);

/* The self-test. */
int redact_test(bool verbose);

#endif
