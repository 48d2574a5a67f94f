/*
 * reflector: keeps a local cache of one resource type equal to the server's, and tells a consumer
 * about every change (client-go's Reflector + the informer's event distribution, in C).
 *
 * Algorithm (../shared/spec/k8s-api-semantics.md §2.4):
 *   1. LIST (paged with `page_size`, consistent read: resourceVersion unset). Each page is
 *      applied to the cache as it arrives, as differences: new objects ADDED, objects with
 *      another resourceVersion MODIFIED, another uid under the same name DELETED (the old one)
 *      then ADDED. When the last page has been applied, cached objects the list did not contain
 *      become DELETED. On the first list this gives one ADDED per object; after a 410 gap it gives
 *      exactly what changed, so a consumer that applies events ends equal to the server. An
 *      expired continue token (410) restarts the list (a new snapshot; the deletions are judged
 *      against it). Pages are not held: memory stays that of the cache.
 *   2. WATCH from the list's resourceVersion with allowWatchBookmarks and timeoutSeconds random
 *      in [REFLECTOR_WATCH_MIN_S, 2*REFLECTOR_WATCH_MIN_S) (or watch_timeout_s). Each event
 *      updates the cache and the last resourceVersion; BOOKMARK only the resourceVersion.
 *   3. Stream ended normally: watch again from the last resourceVersion at once.
 *   4. 410 (HTTP, or an ERROR event with code 410, reason Expired or Gone): relist (step 1).
 *   5. Any other failure: exponential backoff with jitter (base .. max), then watch again (or
 *      list again when the list failed). The backoff resets after a success.
 * Periodic resync (resync_ms > 0): RESYNC for every cached object, without contacting the server.
 *
 * The cache is an open-addressing hash table (linear probing, backward-shift deletion) keyed
 * "namespace/name" ("/name" when cluster-scoped). Each cached object is ONE allocation holding its
 * key, uid (16 bytes when it is a canonical lowercase UUID), resourceVersion and, when the config
 * gives an `extra` function, a small record of the consumer's own (at most REFLECTOR_MAX_EXTRA
 * bytes, computed from each object received), which is all the list diff after a 410 needs. In the
 * default (full) mode the entry also holds a reference to the object tree (whole, or projected to
 * the `keep` paths: metadata name, namespace, uid and resourceVersion are always kept), handed out
 * by reflector_get() and as `old`. With `compact` set no tree is kept: events still carry the
 * object received (parsed for the event, freed after the callback), while `old` and the objects of
 * DELETED-after-a-relist and RESYNC events are skeletons built for the call from the entry
 * ({"metadata": {namespace, name, uid, resourceVersion}}); the consumer reads the rest of what it
 * cached from the extra record (reflector_event_extra(), reflector_lookup()). The complete text of
 * the object of an event stays available during its callback (reflector_event_raw()). Objects
 * handed to the event callback are borrowed for the call; json_incref() them to keep them.
 * Callbacks run on the loop thread; they may read the cache and use the k8s client, but must not
 * destroy the reflector.
 */
#ifndef RF_REFLECTOR_H
#define RF_REFLECTOR_H

#include "k8s.h"
#include "loop.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REFLECTOR_DEFAULT_PAGE 500 /* list page size */
#define REFLECTOR_WATCH_MIN_S 300 /* watch timeoutSeconds drawn from [min, 2*min) */
#define REFLECTOR_BACKOFF_BASE_MS 500 /* first delay after a failure */
#define REFLECTOR_BACKOFF_MAX_MS 30000 /* largest delay */
#define REFLECTOR_MAX_KEY 512 /* longest "namespace/name" key */
#define REFLECTOR_MAX_FIELD 255 /* longest uid or resourceVersion cached (longer: not cached) */
#define REFLECTOR_MAX_EXTRA 1024 /* longest consumer extra record */
#define REFLECTOR_UID_TEXT 37 /* bytes of a canonical UUID text with its NUL */

typedef struct reflector reflector_t;

/* What happened to an object. */
typedef enum {
    REFLECTOR_ADDED, /* new in the cache */
    REFLECTOR_MODIFIED, /* changed; old holds the previous state */
    REFLECTOR_DELETED, /* gone; obj is its last known state */
    REFLECTOR_RESYNC /* periodic re-delivery of an unchanged cached object */
} reflector_event_t;

/* One change: obj (borrowed) is the object now (DELETED: its last state); old (borrowed) is the
 * previous cached state for MODIFIED and DELETED (a skeleton in compact mode; NULL with no_old,
 * except for DELETED after a relist where old is obj), NULL otherwise. */
typedef void(reflector_event_fn)(reflector_t *r, reflector_event_t type, json_t *obj, json_t *old,
                                 void *arg);

/* The first list has been applied (runs once). */
typedef void(reflector_synced_fn)(reflector_t *r, void *arg);

/* The consumer's extra record of obj (an object received from the server): writes at most `cap`
 * bytes at `out` and returns how many (0: none), or a negative value to store none. */
typedef int(reflector_extra_fn)(reflector_t *r, const json_t *obj, void *out, size_t cap,
                                void *arg);

/* Settings. Strings are copied by reflector_new(). */
typedef struct {
    const char *group; /* API group, NULL/"" for core */
    const char *version; /* API version (required) */
    const char *resource; /* plural resource (required) */
    const char *namespace_; /* one namespace, or NULL for all namespaces / cluster-scoped */
    const char *label_selector; /* or NULL */
    const char *field_selector; /* or NULL */
    const char *const *keep; /* dotted paths of each object to cache (jproj.h, NULL-terminated;
                              * copied), or NULL to cache whole objects */
    bool compact; /* keep no object trees, only key, uid, resourceVersion and extra (see above) */
    bool no_old; /* compact mode: `old` of MODIFIED and watch DELETED events is NULL instead of a
                  * skeleton (saves building one per event when the consumer does not read it) */
    reflector_extra_fn *extra; /* the consumer's extra record of each object, or NULL */
    int64_t resync_ms; /* RESYNC period; 0: off */
    int64_t page_size; /* list limit; 0: REFLECTOR_DEFAULT_PAGE */
    int64_t watch_timeout_s; /* fixed watch timeoutSeconds; 0: random (see above) */
    int64_t backoff_base_ms; /* 0: REFLECTOR_BACKOFF_BASE_MS */
    int64_t backoff_max_ms; /* 0: REFLECTOR_BACKOFF_MAX_MS */
    reflector_event_fn *on_event; /* required */
    reflector_synced_fn *on_synced; /* optional */
    void *arg; /* passed to the callbacks */
} reflector_config_t;

/* Counters. */
typedef struct {
    uint64_t lists; /* complete lists applied */
    uint64_t relists; /* of those, after a 410 */
    uint64_t list_pages; /* list requests answered */
    uint64_t watches; /* watch requests started */
    uint64_t failures; /* failed lists or watches (backoff taken) */
    uint64_t events; /* events delivered to on_event (all types) */
    uint64_t bookmarks; /* bookmarks seen */
} reflector_stats_t;

/* A new reflector over `client` (which must outlive it); not started. Returns NULL on bad
 * config (no version/resource/on_event) or out of memory. */
reflector_t *reflector_new(loop_t *loop, k8s_client_t *client, const reflector_config_t *cfg);

/* Starts listing. Returns 0, ERR_STATE (started already) or a k8s_list() error. */
int reflector_start(reflector_t *r);

/* Cancels its requests and timers, frees the cache and NULLs *r_p. NULL-safe. Not from inside
 * one of its callbacks. */
void reflector_destroy(reflector_t **r_p);

/* True once the first list has been applied. */
bool reflector_synced(const reflector_t *r);

/* The last resourceVersion seen (list, event or bookmark), "" before the first list. */
const char *reflector_resource_version(const reflector_t *r);

/* Objects in the cache. */
size_t reflector_count(const reflector_t *r);

/* What the cache holds of one object. Pointers are borrowed from the cache (or from uid_buf): valid
 * until the cache next changes (the next event, list page or reflector_destroy()). */
typedef struct {
    const char *key; /* "namespace/name" */
    const char *uid; /* uid, "" when the object had none */
    const char *resource_version; /* resourceVersion, "" when none */
    const void *extra; /* the consumer's extra record, NULL when none */
    size_t extra_len; /* its length */
    json_t *obj; /* the cached tree (full mode), NULL in compact mode */
    char uid_buf[REFLECTOR_UID_TEXT]; /* storage of a uid cached as 16 bytes */
} reflector_item_t;

/* Looks ns/name up (`ns` NULL or "" for cluster-scoped). Returns true and fills *out (may be NULL)
 * when cached, false otherwise. */
bool reflector_lookup(const reflector_t *r, const char *ns, const char *name,
                      reflector_item_t *out);

/* The cached object (borrowed) or NULL; always NULL in compact mode. `ns` NULL or "" for
 * cluster-scoped. */
json_t *reflector_get(const reflector_t *r, const char *ns, const char *name);

/* A JSON object "namespace/name" -> cached object (full mode; skeletons in compact mode), built
 * for the call: borrowed, valid until the next reflector_cache() or reflector_destroy() (do not
 * modify). NULL when out of memory. Meant for tests and debugging: it costs a tree per object. */
const json_t *reflector_cache(reflector_t *r);

/* Only from inside on_event: the extra record of the event's object (*len its length): of the
 * object received for ADDED, MODIFIED and watch DELETED events, of the cached entry for
 * DELETED-after-a-relist and RESYNC events. NULL (*len 0) when there is none. `len` may be NULL. */
const void *reflector_event_extra(const reflector_t *r, size_t *len);

/* Only from inside on_event of a MODIFIED event: the extra record the cache held for the object
 * before this event (*len its length), so a consumer can tell whether what it records changed.
 * NULL (*len 0) for other events or when there was none. `len` may be NULL. */
const void *reflector_event_old_extra(const reflector_t *r, size_t *len);

/* Only from inside on_event: the JSON text `obj` was parsed from, exactly as the watch event or
 * the list page carried it (not NUL-terminated; *len gets its length), so a consumer can store the
 * complete object without serializing it again (with `keep`, obj is only a projection). NULL (and
 * *len 0) when obj was not just received (DELETED during a relist, RESYNC, the old object of a
 * replaced uid) or the text was not found.
 * Borrowed: valid until the callback returns. `len` may be NULL. */
const char *reflector_event_raw(const reflector_t *r, const json_t *obj, size_t *len);

/* Packs a canonical lowercase UUID text (n characters) into 16 bytes at out. Returns false (out
 * unspecified) when uid is not one. For consumers' extra records. */
bool reflector_uid_pack(const char *uid, size_t n, unsigned char out[16]);

/* Writes the text of a packed UUID (16 bytes at in) and its NUL to out. */
void reflector_uid_unpack(const unsigned char in[16], char out[REFLECTOR_UID_TEXT]);

/* Fills *out with the counters. */
void reflector_stats(const reflector_t *r, reflector_stats_t *out);

/* "ADDED", "MODIFIED", "DELETED", "RESYNC". */
const char *reflector_event_name(reflector_event_t type);

/* Self-test: list diffing and watch-event handling without a server (the end-to-end tests
 * against kubesim are in tests/integration/k8s). */
int reflector_test(bool verbose);

#endif
