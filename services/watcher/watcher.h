/*
 * watcher: the only reader of the Kubernetes API. For each member cluster it keeps list+watch
 * reflectors (common/reflector) on the Ray custom resources (rayclusters, rayjobs, rayservices,
 * raycronjobs) and on the Pods, Services, batch Jobs and EndpointSlices that carry KubeRay's
 * labels (KubeRay's cache filters, spec/kuberay-behavior.md §6), and on the NetworkPolicies and
 * PersistentVolumeClaims labelled `ray.io/cluster` (a RayCluster's policies of the gate
 * RayClusterNetworkPolicy and its GCS PVC), writes every change into the
 * observed_objects table (common/store) and publishes an ObjectChanged (common/bus) under the
 * key and shard of the owning Ray object.
 *
 * Selectors: Pods `ray.io/node-type in (head,worker,redis-cleanup)` (WATCHER_POD_SELECTOR); Jobs
 * `app.kubernetes.io/created-by=kuberay-operator`; Services and EndpointSlices by two reflectors
 * each, the same created-by selector and `ray.io/originated-from-crd,app.kubernetes.io/created-by
 * !=kuberay-operator`: the Services KubeRay labels by origin and not created-by (a RayService's
 * `<rs>-head-svc` and `<rs>-serve-svc`, a RayJob's `<rayjob>-head-svc`, a RayCluster's serve
 * Service) and their EndpointSlices (which carry their Service's labels). A label selector cannot
 * say "A or B", and watching every Service of a cluster would cache the whole cluster's, so the
 * second selector is the complement of the first within the origin-labelled objects: no object is
 * selected by both. The two reflectors of a kind are twins: they write rows of the same kind in
 * the same format, an EndpointSlice's Service is looked up in both Service caches (its twin's
 * first), and an object whose labels move it from one twin to the other (the API server sends
 * DELETED to one watch and ADDED to the other, in either order) keeps its row: a DELETED of an
 * object its twin caches writes and publishes nothing. Stale rows of a kind with twins are
 * deleted when the last twin syncs, from what neither holds.
 *
 * Owner of a changed object:
 *   - a Ray custom resource owns itself;
 *   - a Pod, Service or Job: its controller ownerReference when that is a ray.io kind, else the
 *     ray.io/cluster label names a RayCluster in the same namespace;
 *   - an EndpointSlice: the owner of the Service named by its kubernetes.io/service-name label
 *     (looked up in the two Services reflectors' caches), else its own ray.io/cluster label.
 *     A RayService's serve Service is owned by the RayService, so a change of one of its slices
 *     is published under the RayService's key (the slice as the child).
 * The owner's uid (when the reference does not give it) and generation come from the Ray
 * reflectors' caches when the owner is cached; otherwise they are left empty / 0.
 *
 * Top owner: a Ray object can itself be owned by another Ray object (a RayCluster created by a
 * RayJob or RayService: its controller ownerReference has apiVersion ray.io/...). The chain of
 * such references is followed through the Ray reflectors' caches, from the owner above, to its
 * end, the top owner; when that is not the owner itself, the change is published a second time
 * under the top owner's key and shard (the object that changed as the child), so the parent's
 * controller wakes up too: a pod of a RayJob's RayCluster is published under the RayCluster and
 * under the RayJob. The chain ends at an owner that is not cached (its name and uid as the
 * reference gives them, generation 0). A chain longer than WATCHER_OWNER_DEPTH references or with
 * a cycle publishes under the owner's key only (counted in owner_chains_cut).
 *
 * Memory: the reflectors run in compact mode (common/reflector): per object they keep one
 * allocation with its key, uid, resourceVersion and a small record of what the watcher looks up
 * later (a Ray object: its generation; a child: its owner as the controller ownerReference or the
 * ray.io/cluster label gives it, the owner uid as 16 bytes, and an EndpointSlice's service-name
 * label), no JSON trees. Events are parsed by common/jproj into projections of what the row needs
 * (metadata, labels, ownerReferences, the kind's phase, conditions' type and status), freed after
 * the event; rows hold the complete object, copied from the text of the watch event or list page (a
 * refused row keeps that text for its retry), with its secret values replaced by common/redact's
 * rule (env literals of secret-looking names, credential objects such as redisPassword, Secret
 * data, the last-applied annotation): observed.db holds no secret. Only a text in which one of
 * the rule's words occurs is parsed and redacted (redact_text_may_hold()); KubeRay's ordinary pods
 * are copied as they are. A controller whose object had values replaced reads it from the API
 * server (ctrl.h, ctrl_pass_t.live). The owner of an object deleted while a relist was
 * needed, or re-delivered by RESYNC, comes from the cached record. RESYNC rewrites no row. After
 * each first list the heap is trimmed (malloc_trim), since parsing pages of big objects leaves it
 * fragmented.
 *
 * Order: a subscriber that receives an event must find its row in SQLite. Reflector callbacks
 * queue the row write (store_observed_upsert / _delete, batched) and the event; a before-sleep
 * hook flushes the store (store_flush) and publishes the queued events only once the flush has
 * committed. Under load a loop turn reads only a few events, so committing every turn would pay a
 * transaction per handful of rows: the hook commits once WATCHER_FLUSH_BATCH rows are queued or
 * the oldest queued row has waited flush_delay_ms, whichever comes first (a timer wakes the loop
 * for the latter). A flush that fails (ERR_BUSY: another connection holds the lock) keeps both
 * queues and is retried WATCHER_RETRY_MS later. A row write the store refuses (its queue full while
 * the database stays locked) marks the object dirty; dirty objects are written again, from the
 * reflector's cache, after the next successful flush. Publishing never blocks: an event refused
 * at the bus high-water mark is counted as a drop and logged at most once per
 * WATCHER_LOG_INTERVAL_MS; reconcilers' periodic resync repairs what a lost event hid.
 *
 * Event ids increase and never go back, even across restarts, without persisting anything: ids
 * are a hybrid logical clock, id = max(last id + 1, wall-clock microseconds at the flush).
 * A restart therefore starts above every id of the previous run unless that run published more
 * than a million events per second on average or the wall clock went backwards.
 *
 * Stale rows: when a reflector's first list is applied, rows of the same (cluster, kind[,
 * namespace]) that the list did not contain (objects deleted while the watcher was down) are
 * deleted and published as DELETED.
 *
 * Capacity (federation, issue 16; only with watcher_config_t.watch_nodes, --watch.nodes, so the
 * single-cluster path is unchanged). Per cluster two more reflectors: every Node, and every pod
 * the Ray pod reflector does not watch (WATCHER_PODUSE_SELECTOR, the negation of
 * WATCHER_POD_SELECTOR), each cached and stored as a projection only: a Node row (kind "Node")
 * holds metadata.name/labels, spec.unschedulable, status.allocatable and the conditions' type and
 * status; a pod row (kind WATCHER_PODUSE_KIND) its name, namespace, spec.nodeName,
 * spec.overhead, the containers' and init containers' resources (and restartPolicy) and
 * status.phase (rewritten only when the spec part or the phase changed: a label or status patch
 * writes nothing): what fleet/member.c needs to count a node's requests, no env, volumes or
 * secrets. The Ray pods' PodUsage rows are written by the Ray pod reflector, which then also keeps
 * those paths and a hash of them in its record: each pod event is received and decoded once. The
 * rows are the same whoever writes them (same projection, identity and rewrite rule); the two
 * reflectors are twins for them (a pod whose node-type label changes moves from one watch to the
 * other and keeps its row), and their stale rows are deleted when both have listed. These rows
 * publish no event (no controller reconciles them). And every WATCHER_PROBE_MS
 * the watcher lists one Node of each cluster (WATCHER_PROBE_PATH, one attempt,
 * WATCHER_PROBE_TIMEOUT_MS) and writes a row of kind WATCHER_HEALTH_KIND named after the cluster
 * (namespace ""): {"lastOkMs": wall ms of the last answer (0: none yet), "checkedMs": wall ms of
 * the last probe, "lastError": the last failure or ""}. A cluster whose lastOkMs is old, or without
 * that row, does not answer as the watcher sees it: `rayfleetctl members` calls it unhealthy.
 *
 * Readiness: every reflector of every cluster must have applied its first list. A resource whose
 * list fails (a CRD not installed answers 404) is retried by the reflector with backoff; the
 * watcher logs it once per resource as not ready, and once more when it syncs.
 */
#ifndef RF_WATCHER_H
#define RF_WATCHER_H

#include "buf.h"
#include "bus.h"
#include "labels.h"
#include "loop.h"
#include "metrics.h"
#include "names.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATCHER_DEFAULT_SHARDS 256 /* shards when the config says 0 */
/* The pods watched: every node type KubeRay creates (spec §6). */
#define WATCHER_POD_SELECTOR                                                                       \
    LABEL_NODE_TYPE " in (" NAMES_NODE_HEAD "," NAMES_NODE_WORKER "," NAMES_NODE_REDIS_CLEANUP ")"
/* --watch.nodes: the pods of WATCHER_PODUSE_KIND's own reflector, every pod the Ray pod
 * reflector does not watch (`notin` also selects the pods without the label). */
#define WATCHER_PODUSE_SELECTOR                                                                    \
    LABEL_NODE_TYPE " notin (" NAMES_NODE_HEAD "," NAMES_NODE_WORKER "," NAMES_NODE_REDIS_CLEANUP  \
                    ")"
#define WATCHER_MAX_CLUSTERS 64 /* member clusters at most */
#define WATCHER_MAX_NAMESPACES 256 /* watched namespaces at most (0 = all) */
#define WATCHER_CLUSTER_NAME_MAX 63 /* longest member cluster name */
#define WATCHER_PENDING_MAX 500000 /* events waiting for a flush at most (more are dropped) */
#define WATCHER_ARENA_MAX (256u * 1024 * 1024) /* bytes of their strings at most */
#define WATCHER_PENDING_KEEP 4096 /* event queue slots kept allocated after a publish */
#define WATCHER_ARENA_KEEP (1024u * 1024) /* arena bytes kept allocated after a publish */
#define WATCHER_JBUF_KEEP (256u * 1024) /* row text buffer bytes kept after a flush */
#define WATCHER_RETRY_MS 10 /* delay before retrying a busy flush */
#define WATCHER_FLUSH_DELAY_MS 5 /* longest a queued row waits for its commit by default */
#define WATCHER_FLUSH_BATCH 1000 /* queued rows that commit at once, without waiting */
#define WATCHER_LOG_INTERVAL_MS 10000 /* rate limit of repeated warnings */
#define WATCHER_CONDITIONS_MAX 1024 /* longest conditions summary stored */
#define WATCHER_READY_CHECK_MS 2000 /* period of the not-ready check (logging) */
#define WATCHER_DEFAULT_BACKOFF_MAX_MS 30000 /* reflector backoff cap by default */
#define WATCHER_OWNER_DEPTH 8 /* Ray owner references followed to the top owner at most */
#define WATCHER_PODUSE_KIND STORE_KIND_POD_USAGE /* every pod's projection (--watch.nodes) */
#define WATCHER_HEALTH_KIND STORE_KIND_CLUSTER_HEALTH /* a cluster's probe (--watch.nodes) */
#define WATCHER_PROBE_MS 1000 /* period of the clusters' health probe (--watch.nodes) */
#define WATCHER_PROBE_TIMEOUT_MS 2000 /* one probe's timeout */
#define WATCHER_PROBE_PATH "/api/v1/nodes?limit=1" /* the probe: a real (small) list */

/* One member cluster. Strings are copied by watcher_new(). */
typedef struct {
    const char *name; /* name used in rows and events (required, no '/') */
    const char *kubeconfig; /* kubeconfig path; NULL: $KUBECONFIG / ~/.kube/config */
    const char *context; /* context; NULL: current-context */
    bool in_cluster; /* use the in-cluster service account instead of a kubeconfig */
} watcher_cluster_t;

/* Settings. Zero numeric fields take defaults. */
typedef struct {
    const watcher_cluster_t *clusters; /* the member clusters (1 .. WATCHER_MAX_CLUSTERS) */
    size_t nclusters; /* how many */
    const char *const *namespaces; /* watched namespaces; none: all namespaces */
    size_t nnamespaces; /* how many */
    uint32_t shards; /* shard count of bus_shard_of(); 0: WATCHER_DEFAULT_SHARDS */
    store_t *store; /* observed state (borrowed; the watcher is its only writer) */
    bus_pub_t *pub; /* publisher (borrowed); NULL: rows only, nothing published */
    int64_t resync_ms; /* reflectors' RESYNC period (rows rewritten, RESYNC events); 0: off */
    double qps; /* client rate limit per cluster; 0: k8s default */
    int burst; /* client burst; 0: k8s default */
    int64_t backoff_base_ms; /* reflector backoff base; 0: reflector default */
    int64_t backoff_max_ms; /* reflector backoff cap; 0: WATCHER_DEFAULT_BACKOFF_MAX_MS */
    int64_t page_size; /* list page size; 0: reflector default */
    int64_t stats_ms; /* period of the stats log line; 0: none */
    int64_t flush_delay_ms; /* longest a row waits for its commit; 0: WATCHER_FLUSH_DELAY_MS;
                             * < 0: commit at the end of every loop turn */
    bool watch_nodes; /* federation's capacity: Nodes, every pod's requests and each cluster's
                       * health probe (see "Capacity" above) */
} watcher_config_t;

/* Counters. */
typedef struct {
    uint64_t events_in; /* reflector events handled */
    uint64_t rows_written; /* row upserts and deletes queued */
    uint64_t write_errors; /* row writes the store refused (retried from the cache) */
    uint64_t stale_deleted; /* stale rows deleted at the first sync */
    uint64_t redacted; /* rows whose object was parsed to replace secret values */
    uint64_t events_published; /* ObjectChanged sent */
    uint64_t drops_hwm; /* events refused by the bus at its high-water mark */
    uint64_t drops_queue; /* events dropped because the pending queue was full */
    uint64_t flush_busy; /* flushes that met a locked database */
    uint64_t relists; /* relists after 410 (sum over reflectors) */
    uint64_t list_failures; /* failed lists and watches (sum over reflectors) */
    uint64_t owner_chains_cut; /* owner chains with a cycle or deeper than WATCHER_OWNER_DEPTH */
    uint64_t usage_by_pods; /* PodUsage rows the Ray pod reflector wrote or deleted (not the
                             * PodUsage reflector: its pods' events are not received twice) */
    uint64_t last_event_id; /* the last event id assigned */
    size_t pending; /* events waiting for a flush now */
    size_t objects; /* objects in the reflector caches now */
} watcher_stats_t;

typedef struct watcher watcher_t;

/* Parses a cluster entry "name=kubeconfig-path[@context]" into *out, whose strings point into
 * `scratch` (a copy of `spec`, size `size`). Returns 0, ERR_INVAL (no '=', empty name or path,
 * name with '/' or too long) or ERR_TOOBIG (spec longer than `size`). */
int watcher_parse_cluster(const char *spec, char *scratch, size_t size, watcher_cluster_t *out);

/* Loads every cluster's kubeconfig and creates its client and reflectors on `loop`; nothing is
 * started. Returns NULL (with one line in `err`, may be NULL) on a bad config, an unreadable
 * kubeconfig, or out of memory. */
watcher_t *watcher_new(loop_t *loop, const watcher_config_t *cfg, buf_t *err);

/* Starts every reflector and installs the publish hook. Returns 0, ERR_STATE (started already)
 * or ERR_NOMEM. */
int watcher_start(watcher_t *w);

/* Stops, frees everything (queued events not yet published are dropped; queued rows stay in the
 * store's queue) and NULLs *w_p. NULL-safe. Not from inside a loop callback of the watcher. */
void watcher_destroy(watcher_t **w_p);

/* True once every reflector of every cluster has applied its first list. */
bool watcher_ready(const watcher_t *w);

/* Appends the unsynced resources, one "cluster/group/resource[/namespace]" per line, to out.
 * Returns how many there are (0: ready) or a negative buffer error. */
int watcher_unsynced(const watcher_t *w, buf_t *out);

/* Readiness for common/opsrv (opsrv_ready_fn; w is the watcher_t): watcher_unsynced(). */
int watcher_readiness(void *w, buf_t *why);

/* Registers the counters of watcher_stats() (rayfleet_watcher_*_total, read at each scrape),
 * the pending_events and objects gauges and rayfleet_watcher_ready in `m`; the clusters' clients
 * record client-go's rest_client_* (k8s_client_metrics()) and the store its commit latency
 * (rayfleet_store_commit_duration_seconds{service="watcher"}) into `m` from then on. m NULL
 * detaches the clients and the store (before `m` is destroyed while the watcher lives on; the
 * series reading the watcher still need the watcher). Returns 0, ERR_EXISTS (a name is taken in
 * m), ERR_INVAL or ERR_NOMEM. */
int watcher_metrics(watcher_t *w, metrics_t *m);

/* Fills *out with the counters. */
void watcher_stats(const watcher_t *w, watcher_stats_t *out);

/* Logs the counters at info. */
void watcher_log_stats(const watcher_t *w);

/* Makes publishing happen now, as the before-sleep hook does: flushes the store, then publishes
 * the queued events. Returns 0 or the flush's error (events kept). */
int watcher_flush(watcher_t *w);

#endif
