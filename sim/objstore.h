/*
 * objstore: kubesim's in-memory Kubernetes object database (no HTTP).
 *
 * Holds every object of every registered resource as an immutable jansson tree and implements the
 * storage semantics of kube-apiserver (see ../shared/spec/k8s-api-semantics.md §2, §3, §5, §12):
 * one global resourceVersion (RV) counter, uid / creationTimestamp / generation / generateName,
 * optimistic concurrency, status subresources, no-op writes (same RV, no event), finalizers,
 * deletionTimestamp, graceful pod deletion, namespace lifecycle, ownerReference garbage
 * collection (background, foreground, orphan), list with snapshot-pinned pagination, and watch
 * with replay from a bounded event history and 410 "too old resource version".
 *
 * Design.
 * - Resources are registered by the caller with a descriptor (objstore_resdesc_t) and addressed
 *   through the returned handle. The core resource "namespaces" (group "") is special: when it is
 *   registered, namespaced creates require the namespace object to exist and not be terminating.
 * - Stored trees are IMMUTABLE and shared: every write builds a new top-level object and a new
 *   "metadata" object and may share every other subtree with the previous version, the event
 *   history and callers. Trees handed out (get, list, events) must never be modified; copy them
 *   first (json_copy for a shallow copy of the top level, json_deep_copy otherwise). A tree handed
 *   in (create, update) may share subtrees with stored trees; the store never writes into them.
 * - Every committed change appends an event (ADDED, MODIFIED, DELETED) to a ring of the last
 *   `history` events and is delivered synchronously, in commit order, to the watches of that
 *   resource before the writing call returns. A watch callback may call back into the store
 *   (even write): the nested event is queued and delivered after the current one, so every watch
 *   still sees events in RV order.
 * - Lookups are O(1) (open-addressing hash tables: per resource "ns/name", global uid, owner uid
 *   to dependents). Lists collect the matching objects and sort them by namespace/name on each
 *   call (O(n log n); lists are rare compared with watches). A list with a limit that does not
 *   return everything pins a snapshot (the sorted references, cheap because trees are shared):
 *   every continue page comes from that snapshot, so all pages share the first page's RV.
 *   Snapshots are kept for OBJSTORE_SNAPSHOT_TTL_MS and at most OBJSTORE_SNAPSHOTS_MAX of them;
 *   an evicted, expired or compacted token gets 410 Expired.
 * - Garbage collection runs in objstore_gc_run() (kube-controller-manager's job in a real
 *   cluster): deletions and ownerReference changes enqueue work items, so a run costs what
 *   changed, not a scan of the store.
 * - Time comes from an injectable clock (ms since the epoch) so tests can move time.
 * - Memory: a stored pod of ~1 KB JSON costs ~8.7 KB (jansson trees, entry, indexes; measured by
 *   `simtest -v objstore`); 100,000 pods ≈ 0.9 GB. Measured on the 2-core box: ~15,000 creates/s
 *   and ~20,000 status writes/s with 10 watches (~200,000 events/s delivered and serialised).
 * Single-threaded: one store belongs to one thread (kubesim's event loop). Watch callbacks may
 * read and write objects and start/stop watches, but must not call objstore_unregister() or
 * objstore_destroy().
 */
#ifndef RF_OBJSTORE_H
#define RF_OBJSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define OBJSTORE_HISTORY_DEFAULT 100000 /* events kept for watch replay by default */
#define OBJSTORE_SNAPSHOTS_MAX 16 /* pinned list snapshots kept at once */
#define OBJSTORE_SNAPSHOT_TTL_MS (5 * 60 * 1000) /* a continue token's lifetime (etcd's ~5 min) */
#define OBJSTORE_GRACE_DEFAULT 30 /* pods' default terminationGracePeriodSeconds */
#define OBJSTORE_GENERATE_ATTEMPTS 8 /* generateName tries before 409 */
#define OBJSTORE_GENERATE_PREFIX_MAX 58 /* generateName prefix is truncated to this */
#define OBJSTORE_GENERATE_SUFFIX_LEN 5 /* random characters appended to generateName */
#define OBJSTORE_GC_QUEUE_MAX (1u << 20) /* pending GC items before falling back to a scan */
#define OBJSTORE_MSG_MAX 1024 /* bytes of a status message, NUL included */
#define OBJSTORE_NAME_MAX 256 /* bytes of a name / group in a status, NUL incl. */
#define OBJSTORE_CONTINUE_MAX 96 /* bytes of a continue token, NUL included */

typedef struct objstore objstore_t; /* the database (opaque) */
typedef struct objstore_res objstore_res_t; /* one registered resource (opaque) */
typedef struct objstore_watch objstore_watch_t; /* one watch (opaque) */

/* Describes a resource at registration. Strings are copied. */
typedef struct {
    const char *group; /* API group, "" for core */
    const char *version; /* version stamped in apiVersion when absent, e.g. "v1" */
    const char *resource; /* plural lower-case name, e.g. "rayclusters" */
    const char *kind; /* Kind, e.g. "RayCluster" */
    bool namespaced; /* true for namespace-scoped resources */
    bool has_status; /* has a /status subresource (status dropped on create, kept on PUT) */
    bool is_custom; /* a CRD-defined resource (PUT without resourceVersion gets 422) */
    bool graceful; /* pod-like graceful deletion (deletionTimestamp = now + grace) */
    bool create_on_update; /* PUT of a missing object creates it (events, a few built-ins) */
} objstore_resdesc_t;

/* A Kubernetes Status for a failed call, filled by every operation that takes one (the HTTP
 * layer turns it into the JSON body with objstore_status_json()). */
typedef struct {
    int code; /* HTTP status code; 0 when the call succeeded */
    const char *reason; /* static: "NotFound", "AlreadyExists", "Conflict", ... */
    char message[OBJSTORE_MSG_MAX]; /* kube-apiserver's exact wording */
    char name[OBJSTORE_NAME_MAX]; /* details.name ("" = omit) */
    char group[OBJSTORE_NAME_MAX]; /* details.group ("" = omit) */
    char kind[OBJSTORE_NAME_MAX]; /* details.kind: the plural resource, or Kind for Invalid */
    char uid[40]; /* details.uid ("" = omit) */
    int retry_after; /* details.retryAfterSeconds (0 = omit) */
    const char *cause_reason; /* details.causes[0].reason (NULL = no causes) */
    char cause_message[OBJSTORE_MSG_MAX]; /* details.causes[0].message */
    char cause_field[OBJSTORE_NAME_MAX]; /* details.causes[0].field */
} objstore_status_t;

/* How an update checks metadata.resourceVersion of the body against the stored object. */
typedef enum {
    OBJSTORE_PRECOND_PUT = 0, /* PUT: body RV must equal stored (409); missing → 422 for custom
                                 resources, unconditional for built-ins */
    OBJSTORE_PRECOND_PATCH, /* PATCH (get → patch → update): body RV, when present, must equal
                               stored (409); missing → unconditional */
    OBJSTORE_PRECOND_NONE /* unconditional, whatever the body says (server-internal writes) */
} objstore_precond_t;

/* Options of objstore_update(). Zero-initialised = PUT to the main endpoint. */
typedef struct {
    objstore_precond_t precond; /* resourceVersion check mode */
    bool status; /* write to the /status subresource: only status changes */
} objstore_update_opts_t;

/* DeleteOptions.propagationPolicy. */
typedef enum {
    OBJSTORE_PROPAGATE_DEFAULT = 0, /* not given: Background, keeping finalizers already set */
    OBJSTORE_PROPAGATE_BACKGROUND, /* owner goes now; GC deletes dependents afterwards */
    OBJSTORE_PROPAGATE_FOREGROUND, /* adds finalizer foregroundDeletion; dependents go first */
    OBJSTORE_PROPAGATE_ORPHAN /* adds finalizer orphan; dependents lose the ownerReference */
} objstore_propagation_t;

/* DeleteOptions. Zero-initialised = no preconditions, default propagation, default grace. */
typedef struct {
    const char *precond_uid; /* preconditions.uid (NULL = none) */
    const char *precond_rv; /* preconditions.resourceVersion (NULL = none) */
    objstore_propagation_t propagation; /* propagationPolicy */
    bool grace_set; /* gracePeriodSeconds was given */
    int64_t grace_seconds; /* gracePeriodSeconds (negative is treated as 1) */
} objstore_delete_opts_t;

/* Options of objstore_list(). Zero-initialised = every object of the resource. */
typedef struct {
    const char *ns; /* namespace; NULL or "" = all namespaces */
    bool (*filter)(const json_t *obj, void *arg); /* NULL or selector: true = keep the object */
    void *filter_arg; /* passed to filter */
    size_t limit; /* at most this many items; 0 = all */
    const char *continue_token; /* NULL/"" = first page, else a token we gave */
} objstore_list_opts_t;

/* The result of objstore_list(). Free with objstore_list_free(). */
typedef struct {
    json_t *items; /* JSON array of the (shared, read-only) objects */
    uint64_t rv; /* the list's resourceVersion (snapshot RV) */
    char continue_token[OBJSTORE_CONTINUE_MAX]; /* "" when this is the last page */
    long remaining; /* remainingItemCount, -1 when not applicable */
} objstore_list_t;

/* Watch event types. */
typedef enum {
    OBJSTORE_ADDED = 0, /* "ADDED" */
    OBJSTORE_MODIFIED, /* "MODIFIED" */
    OBJSTORE_DELETED /* "DELETED": the object's last state, metadata.resourceVersion = the
                        deletion's RV (or, for a filtered watch, the object left the filter) */
} objstore_evtype_t;

/* One event handed to a watch callback. Valid only during the callback. */
typedef struct {
    objstore_evtype_t type; /* ADDED / MODIFIED / DELETED */
    const json_t *obj; /* the object (read-only, borrowed; json_incref to keep) */
    uint64_t rv; /* the event's resourceVersion */
    const objstore_res_t *res; /* the resource */
    void *priv_; /* private to objstore (serialisation cache) */
} objstore_event_t;

/* A watch callback. Return 0 to continue; non-zero stops deliveries to this watch (the handle
 * stays valid and must still be released with objstore_watch_stop()). */
typedef int (*objstore_watch_fn)(const objstore_event_t *ev, void *arg);

/* The filter (label/field selector) callback: true when the object matches. */
typedef bool (*objstore_filter_fn)(const json_t *obj, void *arg);

/* The clock: milliseconds since the Unix epoch (wall time). */
typedef int64_t (*objstore_clock_fn)(void *arg);

/* An admission hook run by objstore_create() on every create, after the name (generateName
 * included) is set and before anything is stored, as kube's validating admission runs after the
 * name is generated: it may change `obj`; returning false refuses the create, with *st filled
 * (sim/quota: LimitRanger and ResourceQuota, 403 Forbidden). */
typedef bool (*objstore_admit_fn)(objstore_t *s, objstore_res_t *r, const char *ns, json_t *obj,
                                  objstore_status_t *st, void *arg);

/* ---- lifetime ---- */

/* Creates an empty store keeping `history` events for watch replay (0 = OBJSTORE_HISTORY_DEFAULT).
 * Uses the real-time clock until objstore_set_clock(). Returns NULL when out of memory. */
objstore_t *objstore_new(size_t history);

/* Frees the store, every object, resource, snapshot and watch handle still open (their callbacks
 * are not called). NULL-safe; sets *sp to NULL. */
void objstore_destroy(objstore_t **sp);

/* Replaces the clock (NULL restores the real-time clock). */
void objstore_set_clock(objstore_t *s, objstore_clock_fn fn, void *arg);

/* The clock's current value in ms since the epoch. */
int64_t objstore_now_ms(const objstore_t *s);

/* Sets the store's create admission hook (NULL = none); one per store. */
void objstore_set_admit(objstore_t *s, objstore_admit_fn fn, void *arg);

/* Test hook: reseeds the random generator used for generateName suffixes and uids. */
void objstore_seed(objstore_t *s, uint64_t seed);

/* ---- resources ---- */

/* Registers a resource. Returns the handle (owned by the store, valid until unregistered or the
 * store is destroyed) or NULL when out of memory, the descriptor is incomplete, or group+resource
 * is already registered. */
objstore_res_t *objstore_register(objstore_t *s, const objstore_resdesc_t *desc);

/* Finds a registered resource by group ("" = core) and plural name; NULL when unknown. */
objstore_res_t *objstore_find(const objstore_t *s, const char *group, const char *resource);

/* Finds a registered resource by group and Kind (e.g. to resolve ownerReferences); NULL if none. */
objstore_res_t *objstore_find_kind(const objstore_t *s, const char *group, const char *kind);

/* The descriptor the resource was registered with (strings owned by the store). */
const objstore_resdesc_t *objstore_res_desc(const objstore_res_t *r);

/* Number of objects stored for the resource. */
size_t objstore_res_count(const objstore_res_t *r);

/* Unregisters a resource (CRD deletion): deletes all its objects, emitting a DELETED event for
 * each, then detaches its watches (they receive nothing more; the caller still stops them) and
 * frees the handle; *rp is set to NULL. NULL-safe. Not from inside a watch callback. */
void objstore_unregister(objstore_t *s, objstore_res_t **rp);

/* ---- objects ---- */

/* The current global resourceVersion (the RV of the last committed change; for lists/bookmarks). */
uint64_t objstore_rv(const objstore_t *s);

/* Gets ns/name (ns ignored for cluster-scoped resources). On success *out is a NEW reference to
 * the stored read-only tree (json_decref it). Errors: ERR_NOTFOUND (404 in *st). */
int objstore_get(objstore_t *s, objstore_res_t *r, const char *ns, const char *name, json_t **out,
                 objstore_status_t *st);

/* Creates an object. Takes ownership of *objp (sets it to NULL, also on error). `ns` is the
 * namespace from the URL (NULL/"" for cluster-scoped; a differing metadata.namespace in the body
 * gets 400). Assigns uid, creationTimestamp, resourceVersion, generation 1, name from
 * generateName; drops status when the resource has a status subresource; stamps apiVersion/kind.
 * On success *out (may be NULL) receives a new reference to the stored tree.
 * Errors, each with *st filled: ERR_EXISTS (409 AlreadyExists), ERR_NOTFOUND (404: namespace
 * missing), ERR_FORBIDDEN (403: namespace terminating), ERR_INVAL (422 Invalid: no name, bad
 * name; 400 BadRequest: namespace mismatch, not an object), ERR_NOMEM (500). */
int objstore_create(objstore_t *s, objstore_res_t *r, const char *ns, json_t **objp, json_t **out,
                    objstore_status_t *st);

/* A simulated controller's status write: `status` (ownership taken) becomes the status of the
 * stored object `obj` (by its namespace and name; no precondition) unless it equals obj's status.
 * Returns 1 after a write, 0 when equal (or status NULL), or a negative err_t with *st filled. */
int objstore_put_status(objstore_t *s, objstore_res_t *r, const json_t *obj, json_t *status,
                        objstore_status_t *st);

/* Replaces ns/name with *objp (ownership taken, *objp set to NULL). Main endpoint: keeps the
 * stored status when the resource has a status subresource and bumps generation when anything
 * outside metadata (and status) changed. opts->status: only status is taken from the body.
 * Server-owned metadata (uid, creationTimestamp, generation, deletionTimestamp,
 * deletionGracePeriodSeconds, resourceVersion) is preserved. Identical result = no-op (same RV,
 * no event). Adding a finalizer to an object being deleted → 422; removing the last finalizer of
 * an object being deleted (with no grace period pending) deletes it (one DELETED event).
 * `opts` may be NULL (= PUT). On success *out (may be NULL) receives a new reference to the
 * stored tree (the final state if the write deleted the object) and *deleted (may be NULL) tells
 * whether it did. Errors: ERR_NOTFOUND (404), ERR_CONFLICT (409), ERR_INVAL (422 / 400),
 * ERR_NOMEM. */
int objstore_update(objstore_t *s, objstore_res_t *r, const char *ns, const char *name,
                    json_t **objp, const objstore_update_opts_t *opts, json_t **out, bool *deleted,
                    objstore_status_t *st);

/* Deletes ns/name with DeleteOptions `opts` (NULL = defaults). The object goes at once when no
 * finalizer holds it and no grace period applies; *deleted = true and *out is its final state
 * (DELETED event at a new RV). Otherwise it gets deletionTimestamp (now + grace for graceful
 * resources), deletionGracePeriodSeconds, generation + 1 and any propagation finalizer;
 * *deleted = false and *out is the updated object (MODIFIED event). Pods: grace = opts, else
 * spec.terminationGracePeriodSeconds, else 30; 0 when unscheduled (no spec.nodeName) or
 * Succeeded/Failed. A repeated delete only shortens the grace period or adds finalizers; the
 * kubelet's final delete is grace_set=true, grace_seconds=0 (with a uid precondition).
 * Namespaces: phase Terminating; objstore_gc_run() deletes the contents, then the namespace.
 * `out` and `deleted` may be NULL. Errors: ERR_NOTFOUND (404), ERR_CONFLICT (409, preconditions),
 * ERR_NOMEM. */
int objstore_delete(objstore_t *s, objstore_res_t *r, const char *ns, const char *name,
                    const objstore_delete_opts_t *opts, json_t **out, bool *deleted,
                    objstore_status_t *st);

/* Lists objects sorted by namespace then name (opts->ns is ignored for cluster-scoped
 * resources; remaining is -1 when a filter is set). `opts` may be NULL. Fills *out (free with
 * objstore_list_free). With a limit smaller than the match count, the first page pins a
 * snapshot and sets out->continue_token; later pages (same resource, token) come from that
 * snapshot with the same RV. Errors: ERR_INVAL (400: malformed token or other resource),
 * ERR_GONE (410 Expired: token evicted, expired or compacted), ERR_NOMEM. */
int objstore_list(objstore_t *s, objstore_res_t *r, const objstore_list_opts_t *opts,
                  objstore_list_t *out, objstore_status_t *st);

/* Releases a list result. NULL-safe and idempotent. */
void objstore_list_free(objstore_list_t *l);

/* ---- watch ---- */

/* Starts a watch on resource r, namespace ns (NULL/"" = all), filtered by `filter` (NULL = all).
 * from_rv NULL, "" or "0": synthetic ADDED (ev->rv = the object's RV, in no particular order)
 * for every current matching object, delivered before
 * this call returns, then live events. from_rv "N": every buffered event with RV > N (before this
 * call returns), then live events. Filtered watches see ADDED when an object starts matching and
 * DELETED (previous state, new RV) when it stops. Returns the handle in *wp (release with
 * objstore_watch_stop). Errors: ERR_GONE (410 Expired, "too old resource version: N (M)") when N
 * is older than the history; ERR_TIMEOUT (504) when N is ahead of the store; ERR_INVAL (400) for
 * a malformed RV; ERR_NOMEM. */
int objstore_watch(objstore_t *s, objstore_res_t *r, const char *ns, const char *from_rv,
                   objstore_filter_fn filter, void *filter_arg, objstore_watch_fn cb, void *cb_arg,
                   objstore_watch_t **wp, objstore_status_t *st);

/* Stops and frees a watch (safe inside its own callback: freed after the delivery). NULL-safe;
 * sets *wp to NULL. */
void objstore_watch_stop(objstore_t *s, objstore_watch_t **wp);

/* The compact JSON text of ev->obj, computed once per event and shared by all watches of it.
 * Valid only during the callback. NULL when out of memory. `len` may be NULL. */
const char *objstore_event_json(const objstore_event_t *ev, size_t *len);

/* The compact JSON text of `obj` when it is the object of the last event delivered (the text a
 * watch built for it, e.g. the tree a write just stored and handed back in *out), else NULL
 * (no watch serialised it, or another event came after). Valid until the next write. Lets the
 * HTTP layer answer a write with the bytes its watchers got instead of encoding them again. */
const char *objstore_obj_json(objstore_t *s, const json_t *obj, size_t *len);

/* "ADDED", "MODIFIED" or "DELETED". */
const char *objstore_evtype_str(objstore_evtype_t t);

/* Test/fault hook: forgets the event history and every list snapshot, so the next watch from an
 * older RV, or continue token, gets 410. */
void objstore_compact(objstore_t *s);

/* ---- background work ---- */

/* Runs the garbage collector and namespace controller for queued work: deletes dependents whose
 * owners are gone, processes foregroundDeletion and orphan finalizers, empties terminating
 * namespaces and removes them. Returns the number of writes made (>= 0); call again while it
 * returns > 0 to reach a fixed point. */
int objstore_gc_run(objstore_t *s);

/* Periodic housekeeping (expired list snapshots) plus objstore_gc_run(). Returns as gc_run. */
int objstore_tick(objstore_t *s);

/* ---- helpers for the HTTP layer ---- */

/* Builds the Status JSON object for *st ({"kind":"Status",...,"code":N}); a new reference or NULL
 * when out of memory. */
json_t *objstore_status_json(const objstore_status_t *st);

/* Builds the success Status a delete of a custom resource returns (details name/group/kind/uid
 * from `obj`). A new reference or NULL. */
json_t *objstore_status_success(const objstore_res_t *r, const json_t *obj);

/* Writes "<resource>" or "<resource>.<group>" (kube's qualified resource name) into buf. */
void objstore_res_qualified(const objstore_res_t *r, char *buf, size_t size);

/* Self-test. */
int objstore_test(bool verbose);

#endif
