/*
 * ctrl: the controller runtime. A service registers a kind (ctrl_kind_t: group, version, kind,
 * resource, Event component, its stages) and gets what every rayfleet controller needs around
 * them; nothing here names a Ray kind.
 *
 * One pass for one key ("cluster/namespace/name"), started by the work queue (common/workq.h)
 * through ctrl_fn():
 *   1. the object is read from observed.db (read-only; the watcher is its only writer).
 *      NotFound: the key's state (cause, expectations, ensured children, status guard, memo)
 *      is forgotten and its desired rows deleted; the pass ends.
 *   2. the cause of the pass is the last bus ObjectChanged noted for the key (ctrl_note_change()),
 *      else the observed object's generation and resourceVersion; every action of the pass is
 *      audited with it and with the pass's correlation id.
 *   3. the kind's begin() decides (validation, finalizers, ...): run the stages, or end.
 *   4. the stages run in order; each issues its API requests asynchronously (ctrl_send()) and the
 *      pass moves to the next stage when they have all answered. After a failure only the stages
 *      marked `always` (status) run.
 *   5. the pass ends with workq_done(): fenced -> done; failed -> rate-limited requeue; the kind's
 *      requeue_ms -> that; an unmet expectation or a status write -> the short requeue; else the
 *      configured period.
 *
 * Writes. At most CTRL_PASS_WINDOW requests of one pass are in flight; the rest wait in the pass
 * (FIFO) and go as earlier ones answer, so one huge scale-up never queues more than the window
 * ahead of other keys' writes in the client. Right before each write the fence (cfg.fence) is
 * asked whether this replica still owns the key's shard; if not the write is withheld (unsent,
 * unaudited, counted) and the pass ends quietly. Every answered write, Kubernetes Events
 * included, leaves one audit row (actlog.h); a write with an ok/fail reason also emits that
 * Event about the pass's object.
 *
 * Intent before the write (with cfg.audit): a write of a pass is not sent when the stage asks
 * for it. Its audit row is queued with the result pending (actlog_intent()) and the request held;
 * a before-sleep hook of the loop commits every row of the turn in one transaction and only then
 * sends the held requests, oldest first (a commit that fails keeps them held: no write without
 * its durable row). The answer is written over the row. Events keep one row after the answer.
 *
 * Logs. Every log line about a pass carries its correlation id as the field "correlation_id"
 * (the audit rows' correlation_id: `rayfleetctl audit --correlation ID` lists that pass's actions).
 * A failed write
 * ("write failed", with the key, verb, kind, object, HTTP status and the audit row's message) and
 * a failed pass ("reconcile failed") are logged at error level. The kinds' stages log with
 * p->corr under the same name.
 *
 * Per-key state is typed (one struct per key in a keytab): the cause, the ensured children
 * (objects created once or found existing), the status guard (the status last sent and the
 * observed resourceVersion it was sent against, so a lagging observed copy never causes the
 * same status write twice), the hash of the desired set last written, and a memo the kind may
 * keep for an object version (e.g. "validated clean, with this hash"). Expectations (expect.h)
 * are kept by name per (key, group).
 */
#ifndef RF_CTRL_H
#define RF_CTRL_H

#include "actlog.h"
#include "buf.h"
#include "envwire.h"
#include "expect.h"
#include "k8s.h"
#include "loop.h"
#include "store.h"
#include "workq.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTRL_KEY_MAX 512 /* longest key, and longest namespace or name handled */
#define CTRL_MSG_MAX 4096 /* longest error or event message */
#define CTRL_REQUEUE_MS (300 * 1000) /* default period after a clean pass */
#define CTRL_SHORT_REQUEUE_MS (2 * 1000) /* after a status write or an unmet expectation */
/* Requests of one pass in flight at once; the rest wait in the pass and go as earlier ones answer,
 * so a pass never queues more than this ahead of other keys' writes in the client (8 connections
 * per host, FIFO): a scale-up by thousands costs other keys at most 16 requests of waiting, and
 * with 64 concurrent passes the client holds at most 1,024 requests. */
#define CTRL_PASS_WINDOW 16
#define CTRL_MAX_CAUSES 100000 /* keys whose last bus event is remembered; cleared whole beyond */
/* Keys whose memo is kept (about 200 bytes each); cleared whole when reached, which costs the
 * kind one recomputation per key. */
#define CTRL_MAX_MEMOS 20000
#define CTRL_MEMO_MAX                                                                              \
    64 /* longest memo and longest uid/resourceVersion it is kept for, NUL incl. */
#define CTRL_RV_MAX 64 /* longest resourceVersion kept */

typedef struct ctrl ctrl_t;
typedef struct ctrl_pass ctrl_pass_t;

/* What a request does. */
typedef enum {
    CTRL_CREATE = 1,
    CTRL_DELETE,
    CTRL_STATUS, /* a JSON patch of /status (ctrl_status_write()) */
    CTRL_EVENT,
    CTRL_PATCH, /* a merge patch */
    CTRL_GET, /* a read: not audited, its answer handed to on_get */
    CTRL_UPDATE,
    CTRL_JSON_PATCH /* a JSON patch (RFC 6902), e.g. appending a finalizer */
} ctrl_verb_t;

/* What begin() decided. */
typedef enum {
    CTRL_BEGIN_STAGES = 0, /* run the stages */
    CTRL_BEGIN_END, /* run no stage: end once the requests begin() sent have answered */
    CTRL_BEGIN_OK, /* end now (nothing sent by begin is waited for), done */
    CTRL_BEGIN_ERROR /* end now with an error (rate-limited requeue) */
} ctrl_begin_t;

/* One stage of a pass. */
typedef struct {
    void (*fn)(ctrl_pass_t *p); /* issues the stage's requests (ctrl_send()) */
    bool always; /* runs even after the pass failed (e.g. status) */
} ctrl_stage_t;

/* The kind a controller reconciles. Strings and arrays are borrowed for the ctrl_t's life. */
typedef struct {
    const char *group; /* API group of the kind ("example.com"; "" core) */
    const char *version; /* API version ("v1") */
    const char *kind; /* kind, as observed.db rows and bus events name it */
    const char *resource; /* resource (plural) */
    const char *component; /* Event source component ("widget-controller") */
    const char *instance; /* Event reportingInstance ("rayfleet-<service>") */
    size_t pass_size; /* bytes of the kind's per-pass state (ctrl_pass_t.data, zeroed) */
    /* After the object was read (p->obj set): defaults, validation, ... Returns what to do. */
    ctrl_begin_t (*begin)(ctrl_pass_t *p);
    const ctrl_stage_t *stages; /* the stages, in order */
    size_t nstages; /* how many */
    void (*pass_free)(ctrl_pass_t *p); /* releases the kind's pass state (p->data), or NULL */
    /* ctrl_status_write() also tests the observed metadata.resourceVersion, so a status computed
     * from a lagging observed copy is refused (409/422) instead of landing: for kinds whose status
     * records decisions that must be made once (a generated id). The pass then fails and is
     * retried once the watcher has caught up. */
    bool status_precondition;
    /* Optional: true when a bus ObjectChanged for the kind must not wait behind the ordinary
     * backlog (e.g. a child whose change can end the object's run): ctrl_queue_change() then
     * queues the key in the work queue's urgent lane (workq_add_urgent()). */
    bool (*urgent)(const envwire_object_changed_t *oc);
    /* The watch echo of the runtime's own /status write (the object itself, at exactly the
     * resourceVersion that write returned) queues nothing: KubeRay's RayCluster controller
     * watches its kind through GenerationChanged/LabelChanged/AnnotationChanged predicates, so
     * a status-only change is no cause (a failed pass's requeue is then its rate-limited one,
     * not an immediate pass on its own write). */
    bool status_echo_quiet;
    /* A bus ObjectChanged about an object of the kind itself (not a child) in ANOTHER cluster
     * wakes the key of the same namespace and name in the runtime's cluster: a federation's
     * placer, whose management object is woken by its member copy's changes. */
    bool any_cluster;
    /* (With status_precondition, a pass whose observed copy is still the one an own write of
     * the object succeeded against is not run: it would be refused; see stale_skips.) */
} ctrl_kind_t;

/* Settings; pointers are borrowed and must outlive the ctrl_t. */
typedef struct {
    const ctrl_kind_t *kind; /* the kind (required) */
    const char *cluster; /* member cluster name used in keys and rows (required) */
    store_t *observed; /* observed.db, read-only (required unless capture) */
    k8s_client_t *client; /* the member cluster's API client (required unless capture) */
    actlog_t *audit; /* audit writer, or NULL */
    store_t *desired; /* the writable database for desired_objects rows, or NULL: none */
    bool events; /* emit Kubernetes Events (true in production) */
    int64_t requeue_ms; /* period after a clean pass; 0: CTRL_REQUEUE_MS */
    /* Checked right before every API write of a pass: false (this replica no longer owns the
     * key's shard) fails the write unsent and ends the pass. NULL: always owned. */
    bool (*fence)(const char *key, void *arg);
    void *fence_arg; /* handed to fence */
    void *arg; /* the kind's context (ctrl_arg()) */
    /* Self-tests only: requests and Events are appended here ({"what", "kind", "name", "group",
     * "body"} and {"event", "msg"}) instead of being sent; no client or store is needed, and
     * passes are made with ctrl_test_pass() only. */
    json_t *capture;
} ctrl_config_t;

/* Counters of the runtime. */
typedef struct {
    uint64_t passes; /* passes started */
    uint64_t not_found; /* passes whose object was gone */
    uint64_t creates; /* create requests sent */
    uint64_t deletes; /* delete requests sent */
    uint64_t status_writes; /* /status writes sent */
    uint64_t updates; /* other updates and patches sent */
    uint64_t events; /* Events created (sent) */
    uint64_t events_patched; /* Event patches sent: a repeat patches count and lastTimestamp */
    uint64_t events_dropped; /* Events dropped by the correlator's spam filter */
    uint64_t fenced; /* writes withheld because the fence said the shard was lost */
    uint64_t creates_dropped; /* creates not sent: an earlier create of the pass had failed */
    uint64_t write_errors; /* writes that failed (AlreadyExists and delete NotFound excluded) */
    uint64_t errors; /* passes that ended with an error */
    uint64_t skipped_groups; /* expectation groups skipped as unmet */
    uint64_t stale_skips; /* passes not run: observed.db had not caught up with our own write */
    uint64_t echo_skips; /* bus events not queued: the echo of our own status write */
    uint64_t live_reads; /* objects read from the API server: their row had secrets replaced */
    uint64_t passes_inflight; /* passes running now */
    uint64_t requests_inflight; /* requests sent and not answered now (Events included) */
    uint64_t keys; /* keys holding state */
    uint64_t expect_keys; /* keys holding expectations */
} ctrl_stats_t;

/* One pass. The fields up to `data` are the stages' to read (and the flags to set); the rest
 * belong to the runtime. */
struct ctrl_pass {
    ctrl_t *c; /* the runtime */
    char key[CTRL_KEY_MAX]; /* the key */
    char ns[CTRL_KEY_MAX]; /* namespace of the object */
    char name[CTRL_KEY_MAX]; /* name of the object */
    char corr[ACTLOG_CORR_LEN]; /* correlation id */
    actlog_cause_t cause; /* the cause */
    /* the object (owned by the pass): its observed row, or, when the watcher replaced secret
     * values in that row (redact_marked()), the object as the API server returns it: observed.db
     * holds no secret (a RayCluster's env literals and redisPassword), the pass reads them live */
    json_t *obj;
    bool live; /* obj was read from the API server */
    bool failed; /* the pass failed (ctrl_fail()) */
    const char *fail_reason; /* the failure's ReplicaFailure-style reason, or NULL */
    buf_t fail_msg; /* the failure's message */
    bool fenced; /* a write was withheld: this replica lost the key's shard */
    bool short_requeue; /* an expectation is unmet or the status changed */
    bool status_error; /* the status could not be calculated or written */
    bool sent; /* a request of this pass was sent (children may have changed since loaded) */
    bool urgent; /* started from the work queue's urgent lane: its API requests are urgent too
                  * (k8s_opts_t.urgent), ahead of other passes' in the client's FIFO */
    int64_t requeue_ms; /* > 0: requeue period of a clean end (e.g. a finalizer added) */
    uint64_t events_sent; /* Events this pass emitted */
    void *data; /* the kind's per-pass state (ctrl_kind_t.pass_size bytes, zeroed) */
    /* the runtime's */
    ctrl_pass_t *next, *prev; /* list links */
    workq_t *q; /* the queue to report to, NULL for a test pass */
    char cause_rv[CTRL_RV_MAX]; /* storage of cause.resource_version */
    size_t stage; /* next stage */
    int pending; /* requests of the current stage not answered yet */
    int inflight; /* requests sent and not answered (<= CTRL_PASS_WINDOW) */
    struct ctrl_req *wait_head, *wait_tail; /* requests waiting behind the window (FIFO) */
    bool pumping; /* the window is being pumped (no re-entry) */
    /* Creates start slowly (as the ReplicaSet controller's slowStartBatch, and KubeRay, which
     * creates one pod at a time and returns on the first failure): until a create of the pass
     * succeeds, one create is in flight at a time; once one failed, the creates not sent yet are
     * dropped. A create that keeps failing costs one request per pass, and the pass's backoff. */
    bool create_ok; /* a create of the pass succeeded (the window is open to creates) */
    bool create_failed; /* a create of the pass failed */
    int creates_inflight; /* creates sent and not answered */
    bool in_stage; /* a stage function is running (ctrl_release() must not advance) */
    int holds; /* ctrl_hold()s not released */
    bool reading; /* the live read of obj is in flight: begin() runs once it answers */
    int read_err; /* that read's error, 0 none */
};

/* A request of a pass (ctrl_send()). Strings are copied. */
typedef struct {
    ctrl_verb_t verb; /* what it does (not CTRL_EVENT: ctrl_event()) */
    const char *group; /* API group of the target (NULL or "" core) */
    const char *version; /* API version of the target */
    const char *resource; /* resource (plural) of the target */
    const char *subresource; /* subresource, or NULL */
    const char *kind; /* kind of the target, for the audit row */
    /* The target: named in the URL for every verb but CTRL_CREATE, where it is the name (or the
     * generateName prefix) the audit row shows until the answer names the object. */
    const char *name;
    const char *noun; /* "head Pod", "service", ... for messages; NULL: kind */
    const char *ok_reason; /* Event reason emitted on success, or NULL */
    const char *fail_reason; /* Warning Event reason emitted on failure, or NULL */
    /* the pass's failure reason when the write fails, or NULL; its message is then KubeRay's
     * errors.Join(marker, err): "<rcs_reason>\n<the API server's message>" */
    const char *rcs_reason;
    /* the Warning Event's text before ", <error>" when the write fails (KubeRay's own wording,
     * e.g. "Failed to create worker Pod for the cluster ns/name"), or NULL: "Failed to <verb>
     * <noun> <ns>/<name>" */
    const char *fail_event;
    /* Expectation group (expect.h), NULL none: a successful create records the created name; a
     * delete records its name when sent (taken back if it fails or is withheld). */
    const char *exp_group;
    const char *ensure; /* ensured entry recorded on success (ctrl_ensured()), NULL none */
    void (*on_get)(ctrl_pass_t *p, const k8s_result_t *res); /* CTRL_GET: the answer */
    /* Any other verb: called with the answer once it is audited (before the pass moves on), or
     * NULL (e.g. a federation's placer noting that a member did not answer) */
    void (*on_result)(ctrl_pass_t *p, const k8s_result_t *res);
    const char *propagation; /* CTRL_DELETE: propagationPolicy (Background, ...), or NULL */
    /* CTRL_DELETE: preconditions.uid (only that incarnation of the name is deleted; another
     * answers 409), or NULL */
    const char *uid;
    /* Another cluster's API client (a federation's placer writing to a member cluster): the
     * request is sent there and its audit row names `cluster`. NULL: the runtime's own client
     * and cluster. */
    k8s_client_t *client;
    const char *cluster; /* with client: the member cluster's name (at most 63 characters) */
} ctrl_req_t;

/* A runtime for cfg->kind on cfg->cluster. Returns NULL on bad settings or out of memory. */
ctrl_t *ctrl_new(loop_t *loop, const ctrl_config_t *cfg);

/* Frees everything, passes in flight included (destroy the k8s client and the work queue first
 * so no callback can come), and NULLs *c_p. NULL-safe. */
void ctrl_destroy(ctrl_t **c_p);

/* The work queue's reconcile function: `arg` is the ctrl_t. Starts a pass for `key`; the pass
 * calls workq_done() when it ends. */
void ctrl_fn(workq_t *q, const char *key, void *arg);

/* Remembers a bus ObjectChanged as the cause of the next pass of its key and writes that key
 * into out[size]. Returns 0, ERR_INVAL (not about an object of this kind and cluster) or
 * ERR_TOOBIG. */
int ctrl_note_change(ctrl_t *c, const envwire_object_changed_t *oc, char *out, size_t size);

/* ctrl_note_change(), then queues the key in `q`: in the urgent lane when the kind's urgent()
 * says so, else as workq_add(). Returns 0, ctrl_note_change()'s error (nothing queued) or the
 * work queue's. */
int ctrl_queue_change(ctrl_t *c, workq_t *q, const envwire_object_changed_t *oc);

/* Writes "cluster/ns/name" into out[size]. Returns its length or ERR_TOOBIG / ERR_INVAL. */
int ctrl_key(const char *cluster, const char *ns, const char *name, char *out, size_t size);

/* Splits a key into its three parts (copied into the buffers, each CTRL_KEY_MAX bytes). Returns
 * 0 or ERR_INVAL. */
int ctrl_parse_key(const char *key, char *cluster, char *ns, char *name);

/* The kind's context (ctrl_config_t.arg), the loop, the member cluster name, the settings. */
void *ctrl_arg(const ctrl_t *c);
loop_t *ctrl_loop(const ctrl_t *c);
const char *ctrl_cluster(const ctrl_t *c);
const ctrl_config_t *ctrl_config(const ctrl_t *c);

/* Fills *out with the counters. */
void ctrl_stats(const ctrl_t *c, ctrl_stats_t *out);

/* ---------- for the stages ---------- */

/* Marks the pass failed with `reason` (may be NULL) and message; the first failure wins. */
void ctrl_fail(ctrl_pass_t *p, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts request `r` of the pass with body `body` (borrowed; kept by reference until the answer,
 * for the audit summary, so it must not be modified afterwards). Out of memory fails the pass. */
void ctrl_send(ctrl_pass_t *p, const ctrl_req_t *r, const json_t *body);

/* True when `entry` ("Kind/name") was created or found existing for the key, less than
 * max_age_ms ago (<= 0: ever). */
bool ctrl_ensured(ctrl_pass_t *p, const char *entry, int64_t max_age_ms);

/* Records `entry` as ensured now without a write (a child read and found as wanted, or found
 * absent as wanted). */
void ctrl_ensure(ctrl_pass_t *p, const char *entry);

/* Forgets the key's ensured entries that start with `prefix` (a child deleted or replaced: the
 * next ctrl_ensured() of any of its versions is false). */
void ctrl_unensure(ctrl_pass_t *p, const char *prefix);

/* Creates `obj` (stolen; NULL fails the pass: the builder failed) in the pass's namespace unless
 * "Kind/name" is ensured (max_age_ms as ctrl_ensured()); AlreadyExists counts as success. */
void ctrl_create_once(ctrl_pass_t *p, json_t *obj, const char *group, const char *version,
                      const char *resource, const char *noun, const char *ok_reason,
                      const char *fail_reason, int64_t max_age_ms);

/* Sends a Normal or Warning Event about the pass's object (audited with the pass's cause). */
void ctrl_event(ctrl_pass_t *p, bool warning, const char *reason, const char *action,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The object an Event is about. */
typedef struct {
    const char *api_version; /* "example.com/v1", "v1", ... */
    const char *kind; /* its kind */
    const char *ns; /* namespace */
    const char *name; /* name */
    const char *uid; /* uid, or NULL */
    const char *resource_version; /* resourceVersion, or NULL */
} ctrl_ref_t;

/* Records a core/v1 Event about any object (fire and forget; audited with `cause` and `corr`,
 * either may be NULL). Nothing when cfg.events is off. It goes through the runtime's Event
 * correlator first (evcorr.h, client-go's): a repeat of a recorded Event patches that object's
 * count and lastTimestamp (audited as a "patch"; created anew should it be gone), similar Events
 * beyond ten in ten minutes are combined, and an object over its spam budget gets none (counted
 * in events_dropped, logged at debug). */
void ctrl_event_about(ctrl_t *c, const ctrl_ref_t *obj, const actlog_cause_t *cause,
                      const char *corr, bool warning, const char *reason, const char *action,
                      const char *msg);

/* Copies `msg` into out[size] with each name the API server generated from `prefix` (the prefix
 * and generateName's five-character random suffix) cut back to the prefix, so messages about
 * failed generateName creates are the same on every attempt. An empty prefix copies msg. */
void ctrl_strip_generated(const char *msg, const char *prefix, char *out, size_t size);

/* Writes a name for generateName `base` as the API server makes one (the base cut to 58
 * characters, then 5 random characters of "bcdfghjklmnpqrstvwxz2456789") into out[size].
 * ctrl_send() names every create of a generateName body so (metadata.generateName kept): a
 * resent create then meets 409 AlreadyExists, which is read back (GET) and counted as created
 * when the object carries the body's controller ownerReference uid (else its labels), and as a
 * failure (a new name on the next pass) when it is someone else's. Returns 0, ERR_INVAL,
 * ERR_TOOBIG or ERR_IO (no randomness). */
int ctrl_generate_name(const char *base, char *out, size_t size);

/* True when `name` is in obj's metadata.finalizers. */
bool ctrl_has_finalizer(const json_t *obj, const char *name);

/* Adds (add) or removes finalizer `name` on the pass's object: a merge patch of the whole
 * metadata.finalizers list with the observed resourceVersion as its precondition, so no other
 * finalizer is lost and ours is never added twice (a lagging observed copy gets 409 and the pass is
 * retried). Nothing is sent when the list already is so. */
void ctrl_finalizer(ctrl_pass_t *p, const char *name, bool add);

/* obj's metadata.finalizers with `name` added at the end (add) or removed, other entries kept in
 * order: a new array, JSON null when none is left (a merge patch's "remove"), NULL when out of
 * memory. For a patch that changes more than the finalizers (ctrl_finalizer() sends only them). */
json_t *ctrl_finalizers_with(const json_t *obj, const char *name, bool add);

/* Holds the current stage open for an asynchronous call that is not a Kubernetes request (a Ray
 * dashboard call): the stage ends when every request and every hold is released. Release exactly
 * once, from the call's callback (or at once when the call could not start). */
void ctrl_hold(ctrl_pass_t *p);
void ctrl_release(ctrl_pass_t *p);

/* Audits an action of the pass that is not a Kubernetes write (a Ray dashboard call): one audit
 * row with the pass's cause and correlation id. `kind`/`name` name the target, `verb` the action
 * ("submit", "stop"), `request` (or NULL) is summarised (redacted), `status` the HTTP status
 * (0 none), `error` NULL on success. */
void ctrl_audit(ctrl_pass_t *p, const char *group, const char *kind, const char *name,
                const char *verb, const char *reason, const char *message, const json_t *request,
                long status, const char *error, int64_t latency_ms);

/* Records that `name` was just created (create true) or deleted in expectation group `group`
 * (ctrl_send() does this itself for requests with exp_group). */
void ctrl_expect(ctrl_pass_t *p, const char *group, const char *name, bool create);

/* True when the expectations of `group` are met given what is observed (`seen`, see expect.h).
 * Unmet: counted as a skipped group and the pass asks for the short requeue. */
bool ctrl_expect_satisfied(ctrl_pass_t *p, const char *group, expect_seen_fn *seen, void *arg);

/* The status-patch guard. Writes `status` (stolen) as the object's /status (a JSON patch: test
 * of metadata.uid, replace of /status, without a resourceVersion precondition, which the lagging
 * observed copy would fail) unless `changed(observed status, status)` says it is the same, or the
 * same status was already sent against the observed resourceVersion. A write asks for the short
 * requeue. Only the owner replica writes a key's status. */
void ctrl_status_write(ctrl_pass_t *p, json_t *status,
                       bool (*changed)(const json_t *old, const json_t *now));

/* The desired-set writer (desired_objects rows). `set` is an array of rows {"group", "kind",
 * "name", "json", "reason"[, "hash"]} (borrowed) and `hash` the caller's digest of it together
 * with the object's uid: when it differs from the one last written for the key, the object's rows
 * are deleted and the set put, in one store batch. Nothing without cfg.desired. */
void ctrl_desired_record(ctrl_pass_t *p, const json_t *set, const char *hash);

/* Deletes the desired rows of the pass's object and forgets their hash. */
void ctrl_desired_forget(ctrl_pass_t *p);

/* True when desired rows were written for the key (and not forgotten). */
bool ctrl_desired_written(ctrl_pass_t *p);

/* The observed object (kind, ns, name) of the runtime's cluster as a tree (the caller owns it),
 * or NULL; with owner_uid set, only when its controller ownerReference is that uid (a namesake
 * the object does not own is not its child). */
json_t *ctrl_observed_get(ctrl_t *c, const char *kind, const char *ns, const char *name,
                          const char *owner_uid);

/* The same for an object of another cluster of observed.db (a federation's member). */
json_t *ctrl_observed_get_in(ctrl_t *c, const char *cluster, const char *kind, const char *ns,
                             const char *name, const char *owner_uid);

/* The work queue the runtime's keys are queued in (ctrlsvc sets it once it has made it). */
void ctrl_set_queue(ctrl_t *c, workq_t *q);

/* Queues `key` for a pass outside any bus event (a decision made elsewhere, e.g. an admission
 * round): in the urgent lane when `urgent`. Returns 0, ERR_STATE (no queue set) or the work
 * queue's error. */
int ctrl_enqueue(ctrl_t *c, const char *key, bool urgent);

/* The head pod (label ray.io/node-type=head, not being deleted) of RayCluster ns/cluster as
 * observed, or NULL (the caller owns it). */
json_t *ctrl_observed_head_pod(ctrl_t *c, const char *ns, const char *cluster);

/* The memo kept for the key at (uid, resourceVersion), or NULL. */
const char *ctrl_memo_get(ctrl_pass_t *p, const char *uid, const char *rv);

/* Keeps `memo` for the key at (uid, resourceVersion); values longer than CTRL_MEMO_MAX - 1 are
 * not kept. */
void ctrl_memo_put(ctrl_pass_t *p, const char *uid, const char *rv, const char *memo);

/* True when requests are captured (self-tests) instead of sent. */
bool ctrl_capturing(const ctrl_t *c);

/* Self-tests of a kind's stages: a pass for `key` over `obj` (a new reference is taken) that no
 * queue started and that nothing ends; free it with ctrl_test_pass_free(). NULL on bad arguments
 * or out of memory. */
ctrl_pass_t *ctrl_test_pass(ctrl_t *c, const char *key, json_t *obj);
void ctrl_test_pass_free(ctrl_pass_t **p_p);

/* Self-test: keys, settings, causes, the per-key state, the status guard, the desired-set
 * writer, expectations and the captured requests (the runtime against an API server is tested by
 * tests/integration/ctrl, a second controller written on it). */
int ctrl_test(bool verbose);

#endif
