/*
 * cel: a subset of the Common Expression Language (github.com/google/cel-spec) for the
 * validation rules of CRDs (`x-kubernetes-validations`), over jansson values.
 *
 * An expression is parsed once into an AST (cel_compile()) and evaluated any number of times
 * (cel_eval()) with `self` bound to a JSON value and, for transition rules, `oldSelf` to the old
 * one. Everything the parser accepts the evaluator implements: a function, method or macro it
 * does not know is a compile error, never a silent `true`.
 *
 * The language: literals int (`1`, `0x1F`), uint (`1u`), double (`1.5`, `1e3`), string (single,
 * double or triple quotes, `r` raw prefix, escapes \a \b \f \n \r \t \v \\ \' \" \` \? \xHH
 * \uHHHH \UHHHHHHHH and octal \ooo), bool, null, lists `[a, b]` and maps `{'k': v}` (string keys
 * only); `self`, `oldSelf`; field selection `a.b`, index `a[0]` and `a['k']`; `has(a.b)`;
 * `size()` as function and method; `in`; `== != < <= > >=` (numbers compare across int, uint and
 * double as in Kubernetes' cel-go); `! && ||` with CEL's commutative error semantics (`false &&
 * error` is false, `true || error` is true); `?:`; `+ - * / %` on ints, uints and doubles, `+` on
 * strings and lists; string methods startsWith, endsWith, contains, matches, lowerAscii,
 * upperAscii, trim; conversions int(), uint(), double(), string(); the macros all, exists,
 * exists_one, map and filter over lists (elements) and maps (keys); with optionalOldSelf,
 * `oldSelf.hasValue()`, `oldSelf.value()` and `oldSelf.orValue(v)`.
 *
 * Differences from cel-go, each a documented limit: there is no static type check here (a
 * wrong type is found when evaluated, as `no such overload`; cel_fields() lets the caller check
 * field names against a schema, as sim/schema.c does); `matches`
 * uses POSIX extended regular expressions (regcomp), not RE2; list and map values are kept as
 * JSON, so a uint or double inside a list literal becomes a JSON number; map keys are strings;
 * bytes, timestamps, durations, `type()` and the Kubernetes library extensions (quantity, url,
 * ip, format...) are not available (compile error).
 *
 * Errors are values while evaluating (`no such key: x`, `index out of bounds: 3`, `integer
 * overflow`, `division by zero`, `no such overload`), with cel-go's wording. Everything is
 * bounded: the source length, the nesting depth, and the evaluation cost (one unit per node
 * evaluated, plus the length of strings and lists compared, copied or searched, plus each
 * iteration of a macro).
 */
#ifndef RF_CEL_H
#define RF_CEL_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The longest expression compiled, in bytes. */
#define CEL_MAX_SOURCE 8192
/* The deepest nesting of sub-expressions the parser follows. */
#define CEL_MAX_DEPTH 64
/* The most comprehension variables in scope at once. */
#define CEL_MAX_VARS 8
/* The cost limit of one evaluation (Kubernetes' PerCallLimit). */
#define CEL_PER_CALL_LIMIT 1000000
/* The longest string or list an expression may build, in bytes or elements. */
#define CEL_MAX_VALUE 1048576

/* A compiled expression. */
typedef struct cel_prog cel_prog_t;

/* What an evaluation sees. */
typedef struct {
    const json_t *self; /* the value `self` is bound to (not NULL) */
    const json_t *old_self; /* the value of `oldSelf`, or NULL when there is none */
    bool optional_old_self; /* oldSelf is an optional value (optionalOldSelf: true) */
    int64_t cost; /* cost spent, increased by cel_eval() */
    int64_t limit; /* the cost the evaluation may reach; 0 means CEL_PER_CALL_LIMIT */
} cel_env_t;

/* Parses `src` into *out. Returns 0; ERR_INVAL with cel-go's report in `err` ("ERROR:
 * <input>:LINE:COL: what\n | source line\n | ...^"); ERR_TOOBIG when longer than
 * CEL_MAX_SOURCE or nested deeper than CEL_MAX_DEPTH; ERR_NOMEM. */
int cel_compile(const char *src, cel_prog_t **out, buf_t *err);

/* Frees a program; NULL is fine. */
void cel_free(cel_prog_t *p);

/* Whether the expression refers to `oldSelf` (a transition rule). */
bool cel_uses_old_self(const cel_prog_t *p);

/* Called for each longest chain of field selections on self or oldSelf (`self.a.b`,
 * `has(oldSelf.a)`): the names in order, the source offset of each selection (its dot), and
 * their number. A non-zero return stops the walk and is returned by cel_fields(). */
typedef int (*cel_field_fn)(const char *const *names, const size_t *pos, size_t n, void *arg);

/* Walks the field selection chains of `p` (for a check against a schema). Returns 0 or what fn
 * returned. */
int cel_fields(const cel_prog_t *p, cel_field_fn fn, void *arg);

/* Writes a compile error as cel-go reports it ("ERROR: <input>:LINE:COL: msg", the source line
 * and a caret under the column) for the offset `pos` of `src`. */
void cel_report(const char *src, size_t pos, const char *msg, buf_t *err);

/* Evaluates `p` in `env`; on success *out is a new reference to the result as JSON (a bool is
 * true/false, an int or uint an integer, a double a real). Returns 0; ERR_INVAL when the result
 * is a CEL error, its message in `err` (e.g. "no such key: spec"); ERR_RANGE when the cost limit
 * was reached, `err` = "operation cancelled: actual cost limit exceeded"; ERR_NOMEM. */
int cel_eval(const cel_prog_t *p, cel_env_t *env, json_t **out, buf_t *err);

#endif
