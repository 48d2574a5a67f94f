/*
 * patch: the four PATCH flavours of kube-apiserver, as pure functions over jansson trees.
 *
 * - patch_merge():      JSON merge patch, RFC 7386 (application/merge-patch+json).
 * - patch_json():       JSON patch, RFC 6902 (application/json-patch+json), atomic.
 * - patch_strategic():  strategic merge patch for built-in kinds
 *                       (application/strategic-merge-patch+json).
 * - patch_apply_approx(): server-side apply (application/apply-patch+yaml), APPROXIMATED as a
 *                       merge: maps merge, keyed lists merge by their key where the strategic
 *                       table knows it, other lists are replaced. There is no managedFields
 *                       ownership tracking, so no 409 field-manager conflicts and no removal of
 *                       fields a manager stopped applying.
 *
 * Every function leaves its inputs untouched and returns a new tree.
 *
 * The strategic merge table. Lists are merged by key only where the kube type says
 * `patchStrategy:"merge"`; every other list is replaced wholesale. The table is keyed by the
 * field path from the object root with list items contributing no component (so the env of a
 * container of a Pod is "spec.containers.env"). Pod spec entries are written once, relative to the
 * pod spec, and apply under the pod spec prefix of each kind: Pod "spec", Deployment, ReplicaSet,
 * StatefulSet, DaemonSet and Job "spec.template.spec", CronJob
 * "spec.jobTemplate.spec.template.spec". Entries for every kind: metadata.ownerReferences by uid,
 * metadata.finalizers as a set of primitives, status.conditions by type. Service: spec.ports by
 * port. Node: status.addresses by type. A kind not listed still gets the common entries.
 *
 * Directives: `$patch: replace` (map or list element) replaces, `$patch: delete` deletes the map
 * or the list element with that key, `$patch: merge` is the default; `$retainKeys` clears the
 * fields of the original map that it does not list; `$deleteFromPrimitiveList/<f>` removes values
 * from a primitive list; `$setElementOrder/<f>` orders the merged list (items it names first, in
 * its order, then the others in their original order). The result never contains a `$` key.
 */
#ifndef RF_PATCH_H
#define RF_PATCH_H

#include "buf.h"

#include <jansson.h>

/* The most operations in one JSON patch, as kube-apiserver enforces (more: HTTP 413). */
#define PATCH_JSON_MAX_OPS 10000
/* The deepest nesting the merge functions follow; deeper input fails with ERR_TOOBIG. */
#define PATCH_MAX_DEPTH 200

/* RFC 7386 merge of `patch` into `target` (either may be NULL, meaning null). Returns a new
 * reference the caller owns, or NULL when out of memory. A non-object patch replaces the target;
 * null values delete keys; arrays replace. */
json_t *patch_merge(const json_t *target, const json_t *patch);

/* RFC 6902: applies the operation array `ops` to `target`, all or nothing. On success stores a
 * new tree in *out (caller owns) and returns 0. Returns ERR_PARSE when the patch cannot be
 * decoded (not an array, an element not an object, `op` missing or unknown, `path`/`from`
 * missing or not a JSON pointer, `value` missing) — kube answers 400; ERR_INVAL when an
 * operation fails (missing path, failed test) — kube answers 422 with reason Invalid, message
 * "the server rejected our request due to an error in our request" and this text as the cause;
 * ERR_TOOBIG past PATCH_JSON_MAX_OPS (413); ERR_NOMEM. The reason is appended to `err` (may be
 * NULL), e.g. "testing value /spec/x failed: test failed". *out is NULL on failure. */
int patch_json(const json_t *target, const json_t *ops, json_t **out, buf_t *err);

/* Strategic merge of `patch` into `target` for the built-in `kind` (e.g. "Pod", "Deployment";
 * NULL or unknown: common entries only). On success stores a new tree in *out and returns 0.
 * Returns ERR_PARSE for a patch that is not an object or a malformed directive (kube: 400),
 * ERR_INVAL for a keyed-list element without its merge key, ERR_TOOBIG, ERR_NOMEM; reason in
 * `err`. */
int patch_strategic(const json_t *target, const json_t *patch, const char *kind, json_t **out,
                    buf_t *err);

/* Server-side apply, approximated (see the file comment): merges the applied configuration
 * `patch` into `target` (NULL when the object does not exist yet). Same returns as
 * patch_strategic(). */
int patch_apply_approx(const json_t *target, const json_t *patch, const char *kind, json_t **out,
                       buf_t *err);

#endif
