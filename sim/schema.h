/*
 * schema: a CRD's structural OpenAPI v3 schema applied to custom resources the way
 * kube-apiserver (k8s.io/apiextensions-apiserver) does on create and update. Pure functions over
 * jansson trees, no I/O.
 *
 * The order is kube's: (1) null values of fields that are not `nullable` are dropped, unless the
 * field has a `default`; (2) `default`s are applied, deep, to missing fields of objects that
 * exist (a default is copied as written, it is not itself defaulted); (3) unknown fields are
 * pruned; (4) the result is validated and every error is collected.
 *
 * Pruning keeps: fields listed in `properties`; every field when `additionalProperties` is
 * given (each then checked against it) or when `x-kubernetes-preserve-unknown-fields: true`;
 * at the root and in `x-kubernetes-embedded-resource` objects also `apiVersion`, `kind` and
 * `metadata`, where metadata is cut to the ObjectMeta fields (name, generateName, namespace,
 * selfLink, uid, resourceVersion, generation, creationTimestamp, deletionTimestamp,
 * deletionGracePeriodSeconds, labels, annotations, ownerReferences, finalizers, managedFields)
 * whatever the schema says of it.
 *
 * Validation covers type (integer, number, string, boolean, object, array; integer-or-string
 * for `x-kubernetes-int-or-string`; null only when `nullable`), required, enum, minimum and
 * maximum (and exclusiveMinimum/exclusiveMaximum), minLength and maxLength (in characters),
 * pattern (POSIX extended regex via regcomp; a pattern regcomp cannot compile is skipped),
 * minItems/maxItems and minProperties/maxProperties.
 *
 * Validation rules (`x-kubernetes-validations`, CEL, sim/cel.h) are compiled once per CRD version
 * (schema_rules_compile()) and evaluated after the structural validation
 * (schema_rules_validate()), as kube-apiserver 1.32 does: each rule at its schema node for every
 * value there (each element of arrays and maps), null values skipped; a transition rule (one
 * that reads `oldSelf`) only on update and only where the old value exists (properties by name,
 * additionalProperties by key, items of `x-kubernetes-list-type: map` lists by their keys), unless
 * `optionalOldSelf`; a failed non-transition rule on a value equal to its old value is ratcheted
 * (dropped: kube sends a Warning header instead); nothing is evaluated when the structural
 * validation found a type or unsupported-value error (kube's "some validation rules were not
 * checked" cause instead). A failed rule gives kube's cause, the value printed as the schema
 * type (kube 1.32's field error, e.g. `spec.managedBy: Invalid value: "string": the managedBy
 * field is immutable`), at the rule's fieldPath when it has one, with its reason
 * (FieldValueInvalid, FieldValueForbidden, FieldValueRequired, FieldValueDuplicate) and its
 * message, messageExpression's result, or `failed rule: <rule>`. At CRD creation/update
 * schema_crd_rules_check() refuses what kube refuses (empty rule, bad message, unsupported
 * reason, bad fieldPath, oldSelf below a list that cannot be correlated) and every rule this
 * evaluator cannot compile, naming the rule and why.
 *
 * NOT covered, and the README says so: rules under allOf/anyOf/oneOf/not are not evaluated;
 * rules are not evaluated on writes to the status subresource; of kube's static type check of
 * rules against the schema only field names are checked (`self.a.b` where an object schema does
 * not declare `b` is cel-go's "undefined field 'b'" at CRD creation), not types (a wrong type is
 * found when evaluated, `no such overload`), and there is no static cost estimate; `format` is not
 * checked; `x-kubernetes-list-type` uniqueness and map keys, `oneOf`/`anyOf`/ `allOf`/`not` value
 * constraints are not checked; ObjectMeta itself (name syntax etc.) is the store's job.
 *
 * Errors are written as kube words them, one cause each, e.g.
 *   spec.workerGroupSpecs[0].replicas: Invalid value: -1: spec.workerGroupSpecs[0].replicas in
 *     body should be greater than or equal to 0                     (FieldValueInvalid)
 *   spec.headGroupSpec: Required value                               (FieldValueRequired)
 *   spec.upgradeStrategy.type: Unsupported value: "Foo": supported values: "Recreate", "None"
 *                                                                    (FieldValueNotSupported)
 *   spec.suspend: Invalid value: "string": spec.suspend in body must be of type boolean:
 *     "string"                                                       (FieldValueTypeInvalid)
 *   spec.x: Too long: may not be more than 5 bytes                   (FieldValueTooLong)
 *   spec.l: Too many: 4: must have at most 3 items                   (FieldValueTooMany)
 * A cause is a JSON object {"reason", "message", "field"} exactly as in a Status's
 * details.causes, where message is the text after "<field>: ".
 *
 * Unknown fields and fieldValidation=Strict: schema_prune() can report what it removed; kube
 * then answers 400 BadRequest `strict decoding error: unknown field "spec.foo", unknown field
 * "spec.bar"` instead of pruning silently.
 */
#ifndef RF_SCHEMA_H
#define RF_SCHEMA_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>

/* The deepest object nesting followed; deeper input gives one FieldValueInvalid cause. */
#define SCHEMA_MAX_DEPTH 128

/* The openAPIV3Schema of `version` in the CRD object `crd` (spec.versions[].schema
 * .openAPIV3Schema), borrowed from `crd`; NULL when absent. A NULL version takes the storage
 * version. */
const json_t *schema_for_version(const json_t *crd, const char *version);

/* Steps (1) and (2): drops non-nullable nulls and applies defaults to `obj` in place. Returns 0
 * or ERR_NOMEM. */
int schema_default(const json_t *schema, json_t *obj);

/* Step (3): prunes unknown fields of the object `obj` in place (treated as the root: apiVersion,
 * kind and metadata are handled as the file comment says). When `pruned` is not NULL, appends
 * the dotted path of each removed field to that JSON array. Returns 0 or ERR_NOMEM. */
int schema_prune(const json_t *schema, json_t *obj, json_t *pruned);

/* Step (4): validates `obj` against `schema`, appending one cause object per error to the JSON
 * array `causes`. Returns 0 when valid, ERR_INVAL when at least one cause was added, ERR_NOMEM. */
int schema_validate(const json_t *schema, const json_t *obj, json_t *causes);

/* All four steps, in kube's order, on `obj` in place. `pruned` and `causes` as above (`causes`
 * must be an array). Returns 0, ERR_INVAL or ERR_NOMEM. */
int schema_apply(const json_t *schema, json_t *obj, json_t *pruned, json_t *causes);

/* Appends the 422 message for `causes` to `out`: `<Kind>.<group> "<name>" is invalid: <err>`
 * for one error, `... is invalid: [<err1>, <err2>]` for several (identical errors once), where
 * each err is "<field>: <message>". An empty `group` gives just the Kind (core types). Returns 0
 * or the buffer's error. */
int schema_invalid_message(const char *kind, const char *group, const char *name,
                           const json_t *causes, buf_t *out);

/* The whole 422 Status object for `causes` (kind Status, reason Invalid, code 422, message as
 * schema_invalid_message(), details {name, group, kind, causes}). New reference or NULL when out
 * of memory. */
json_t *schema_invalid_status(const char *kind, const char *group, const char *name,
                              const json_t *causes);

/* The compiled validation rules of one schema. */
typedef struct schema_rules schema_rules_t;

/* Compiles every x-kubernetes-validations rule under `schema` into *out (NULL when there is
 * none). A rule that does not compile is kept as such (it fails every object it applies to with
 * kube's "rule compile error" cause). `path` names the schema in causes (e.g.
 * "spec.versions[0].schema.openAPIV3Schema"); when `causes` is not NULL one cause per bad rule is
 * appended, as kube words it. Returns 0, ERR_INVAL when at least one rule is bad, ERR_NOMEM. */
int schema_rules_compile(const json_t *schema, const char *path, schema_rules_t **out,
                         json_t *causes);

/* Frees compiled rules; NULL is fine. */
void schema_rules_free(schema_rules_t *r);

/* The number of rules compiled (the bad ones included). */
size_t schema_rules_count(const schema_rules_t *r);

/* Evaluates the rules against the custom resource `obj` (after schema_apply()); `old` is the
 * stored object on update, NULL on create. Appends one cause per failed rule to `causes`; when
 * `causes` already holds a FieldValueTypeInvalid or FieldValueNotSupported cause, evaluates
 * nothing and appends kube's "some validation rules were not checked" cause. NULL `r` is
 * fine. Returns 0 when nothing was added, ERR_INVAL, ERR_NOMEM. */
int schema_rules_validate(const schema_rules_t *r, const json_t *obj, const json_t *old,
                          json_t *causes);

/* Checks the validation rules of every version of the CRD object `crd` as kube does when a CRD
 * is created or updated, appending a cause per problem (fields like
 * "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule").
 * Returns 0, ERR_INVAL when a cause was added, ERR_NOMEM. */
int schema_crd_rules_check(const json_t *crd, json_t *causes);

#endif
