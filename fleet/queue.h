/*
 * queue: the tenants' admission state and decisions, after Kueue: queues with a weight, a
 * nominal quota, a cohort and a borrowing limit; workloads (a RayJob, RayCluster or RayService
 * and what it needs) waiting in a queue or admitted.
 *
 * Decisions:
 *
 *   - Which next (fleet_queue_next): fair share by dominant resource (DRF). Each queue with
 *     waiting work offers its candidate: its first waiting workload (higher priority first, then
 *     FIFO by creation order) that its quota admits and the caller's `fits` says some member has
 *     room for. The candidate of the queue whose dominant share (its admitted use plus the
 *     candidate's need, over the fleet's capacity) divided by its weight is lowest goes first;
 *     ties go to the queue first in the configuration. Counting the candidate is Kueue's
 *     DominantResourceShareWith: without it a queue of small weight overshoots by about half a
 *     workload each time (measured: queue of weight 1 of 1:2:3 got 6.2% more than its weight
 *     with the share before admission, 1.5% less with the candidate counted; the self-test's
 *     simulation). Queues are visited by their share before admission, which bounds the share
 *     with a candidate from below, so the search stops at the first queue that cannot win.
 *     BestEffortFIFO, as Kueue's queueing strategy of that name: a workload that cannot be
 *     admitted does not block the ones behind it in its queue, nor other queues. (StrictFIFO would
 *     hold the whole queue behind its head; a large workload may wait long under BestEffortFIFO
 *     while smaller ones pass it: that is the trade Kueue documents.)
 *   - Quota (fleet_queue_admissible), per dimension, as Kueue's ClusterQueue with a cohort:
 *     used + need <= quota, or, in a cohort, used + need <= quota + borrowingLimit and the
 *     cohort's total use + need <= the cohort's total nominal quota (so a queue borrows only what
 *     other queues of its cohort leave unused, and a queue within its quota still waits when
 *     others borrowed its share: it reclaims it by preemption). Dimensions without a quota are
 *     unlimited. Quotas are never exceeded: fleet_queue_admit() refuses what the quota does not
 *     admit, and fleet_queues_check() verifies the invariants.
 *   - Preemption (fleet_queue_preempt): for a waiting workload that cannot be admitted, the
 *     admitted workloads of strictly lower priority to suspend so that it can: candidates are the
 *     workloads of other queues of its cohort that borrow (only when its own queue stays within
 *     its nominal quota: it reclaims what it lent, it never preempts to borrow), and those of its
 *     own queue; ordered as Kueue's CandidatesOrdering: other queues first, lower priority first,
 *     most recently admitted first. They are taken in that order until the workload fits (quota,
 *     and the caller's `fits_after` for room on members once the victims are gone), then every
 *     victim whose suspension turns out not to be needed is given back, newest choice first
 *     (Kueue's minimal preemption). The caller suspends the victims (spec.suspend), calls
 *     fleet_queue_evict() for each (they wait again, keeping their creation order, and resume
 *     when admitted again), then fleet_queue_admit() for the preemptor.
 *
 * Workloads are owned by the fleet_queues_t; the pointers handed out stay valid until the
 * workload is finished or removed. Bounds: FLEET_QUEUE_MAX_WORKLOADS, FLEET_QUEUE_KEY_MAX.
 *
 * Purity: no I/O, no clock, no globals.
 */
#ifndef RF_FLEET_QUEUE_H
#define RF_FLEET_QUEUE_H

#include "buf.h"
#include "fedcfg.h"
#include "res.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most workloads (waiting and admitted) one fleet_queues_t holds. */
#define FLEET_QUEUE_MAX_WORKLOADS (1u << 20)
/* The longest workload key ("cluster/namespace/name"). */
#define FLEET_QUEUE_KEY_MAX 512

typedef enum {
    FLEET_WL_WAITING = 0, /* in its queue, not admitted */
    FLEET_WL_ADMITTED, /* admitted: counted in its queue's use */
} fleet_wlstate_t;

typedef struct {
    char *key; /* "cluster/namespace/name" (owned) */
    size_t queue; /* its queue's index */
    int32_t priority; /* higher goes first and may preempt lower */
    int64_t order; /* creation order (e.g. creationTimestamp in ms): FIFO within a priority */
    fleet_res_t need; /* what it needs (fleet_demand_t.total) */
    fleet_wlstate_t state;
    uint64_t admitted_at; /* admission sequence number of its last admission (0: never) */
    unsigned evictions; /* times it was preempted */
    size_t slot; /* private: its index in its queue's waiting or admitted list */
    uint64_t seq; /* private: insertion number, the last tie-break */
} fleet_workload_t;

typedef struct {
    char *name; /* owned */
    double weight; /* > 0 */
    int cohort; /* index of its cohort, or -1 */
    fleet_res_t quota; /* nominal quota; FEDCFG_UNLIMITED per dimension without one */
    fleet_res_t borrowing_limit; /* FEDCFG_UNLIMITED: up to the cohort's unused quota */
    fleet_res_t used; /* the sum of its admitted workloads' needs */
    fleet_workload_t **waiting; /* private: priority desc, order asc, seq asc */
    size_t nwaiting, capwaiting;
    fleet_workload_t **admitted; /* private: unordered */
    size_t nadmitted, capadmitted;
    bool unlimited; /* private: no quota in any dimension and no cohort */
    uint64_t scan_epoch; /* private: waiting[0..scan_pos) were found not admissible or not */
    size_t scan_pos; /*    fitting by fleet_queue_next() in that epoch */
} fleet_queue_t;

typedef struct fleet_queues fleet_queues_t;

/* Whether some member has room for `w` now (placement's answer; queue.c does not place). */
typedef bool (*fleet_fits_fn)(void *arg, const fleet_workload_t *w);
/* Whether some member would have room for `w` once the `n` workloads `victims` are suspended. */
typedef bool (*fleet_fits_after_fn)(void *arg, const fleet_workload_t *w,
                                    fleet_workload_t *const *victims, size_t n);

/* The queues of `cfg` (copied: cfg may be freed after) over a fleet of total `capacity` (the
 * denominator of shares; may be NULL, then zero until fleet_queues_set_capacity()). Returns 0 and
 * *out (fleet_queues_destroy() it), ERR_INVAL or ERR_NOMEM. */
int fleet_queues_new(const fedcfg_t *cfg, const fleet_res_t *capacity, fleet_queues_t **out);

/* Frees the queues and every workload; sets *pq to NULL. NULL-safe. */
void fleet_queues_destroy(fleet_queues_t **pq);

/* The fleet's total capacity changed (members came or went). */
void fleet_queues_set_capacity(fleet_queues_t *q, const fleet_res_t *capacity);

size_t fleet_queues_count(const fleet_queues_t *q);
/* Queue i (borrowed), or NULL. */
const fleet_queue_t *fleet_queues_get(const fleet_queues_t *q, size_t i);
/* The dominant share of queue i's use over the capacity (unweighted; 0 when idle). */
double fleet_queue_share(const fleet_queues_t *q, size_t i);
/* Workloads held (waiting and admitted). */
size_t fleet_queues_workloads(const fleet_queues_t *q);

/* Adds a waiting workload. Returns 0 and *out (may be NULL), ERR_EXISTS (key already held),
 * ERR_INVAL (bad queue index, empty key, negative need), ERR_TOOBIG (key longer than
 * FLEET_QUEUE_KEY_MAX, or FLEET_QUEUE_MAX_WORKLOADS held), ERR_NOMEM. */
int fleet_queue_add(fleet_queues_t *q, const char *key, size_t queue, int32_t priority,
                    int64_t order, const fleet_res_t *need, fleet_workload_t **out);

/* The workload of `key`, or NULL. */
fleet_workload_t *fleet_queue_find(const fleet_queues_t *q, const char *key);

/* True when w's queue's quota (and its cohort's) admits w now. */
bool fleet_queue_admissible(const fleet_queues_t *q, const fleet_workload_t *w);

/* The next workload to admit (see above), or NULL when no waiting workload is admissible and
 * fits. `fits` may be NULL (quota alone). Changes no workload or use; it remembers, per queue,
 * how far its waiting workloads were found not admissible or not fitting, and starts there next
 * time, until room may have grown: a workload finished or evicted, the capacity set, or
 * fleet_queues_changed() called. So each waiting workload is judged about once per change of
 * room, not once per call (Kueue's inadmissible workloads, requeued on a cluster event, do the
 * same). The caller's `fits` must therefore only turn from no to yes through such a change. */
fleet_workload_t *fleet_queue_next(fleet_queues_t *q, fleet_fits_fn fits, void *arg);

/* Room may have grown outside this module's sight (a member came back or gained nodes, pods
 * not tracked here ended): fleet_queue_next() judges every waiting workload again. */
void fleet_queues_changed(fleet_queues_t *q);

/* Admits the waiting w: its queue's use grows by its need. Returns 0, ERR_STATE (not waiting) or
 * ERR_RANGE (its quota does not admit it; nothing changes). */
int fleet_queue_admit(fleet_queues_t *q, fleet_workload_t *w);

/* The admitted w was suspended by preemption: it waits again (same creation order), its queue's
 * use shrinks. Returns 0 or ERR_STATE (not admitted). */
int fleet_queue_evict(fleet_queues_t *q, fleet_workload_t *w);

/* w finished or was deleted: its use (when admitted) is returned and it is freed. Returns 0 or
 * ERR_INVAL. */
int fleet_queue_finish(fleet_queues_t *q, fleet_workload_t *w);

/* The minimal set (see above) of admitted workloads to suspend so that the waiting w can be
 * admitted: 0 with the victims in victims[0..*n) (*n may be 0 when w can be admitted as things
 * are); ERR_NOTFOUND when no set of preemptible workloads makes room (*n = 0); ERR_STATE (w not
 * waiting); ERR_TOOBIG (more than `max` victims needed). `fits_after` may be NULL (quota alone).
 * Changes nothing. */
int fleet_queue_preempt(fleet_queues_t *q, const fleet_workload_t *w,
                        fleet_fits_after_fn fits_after, void *arg, fleet_workload_t **victims,
                        size_t max, size_t *n);

/* Checks the invariants: each queue's use is the sum of its admitted needs and within its quota
 * (plus its borrowing limit in a cohort), and each cohort's use within its nominal quota.
 * Returns 0, or ERR_STATE with the first violation in `err`. */
int fleet_queues_check(const fleet_queues_t *q, buf_t *err);

#endif
