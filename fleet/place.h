/*
 * place: whether a demand fits a member, node by node, and which member a demand goes to.
 *
 * Fit: every pod of the demand must find a schedulable node at once, as the kube-scheduler would
 * bind them one after the other: pods in decreasing order of their dominant share of the member's
 * allocatable (ties: group name, then position), each on the first node (in the member's node
 * order) whose free room (allocatable minus used minus what earlier pods of the demand took) holds
 * its whole request (cpu, memory, accelerators, one pod) and whose labels match its nodeSelector
 * (the accelerator type, taken from the nodeSelector, is matched with it). Room summed over the
 * member is not enough: a pod needs one node (fragmentation). Not modelled: taints and
 * tolerations, affinity and topology spread, extended resources other than accelerators.
 *
 * Placement: among the members that are healthy, that are the required member (policy.member)
 * when one is named, whose labels match policy.selector when one is given, and that fit, `spread`
 * picks the one with the lowest dominant share of its allocatable used after the placement (most
 * room left), `pack` the highest (least room that fits). Ties go to the member whose name sorts
 * first, so the same input always gives the same answer. The reason text names the choice and,
 * member by member in name order, why each other one was or was not chosen; it is bounded by
 * FLEET_REASON_MAX (a longer text ends in "...").
 *
 * Commit: reserves the demand on the member node by node exactly as fit placed it, so the next
 * decision sees it used.
 *
 * Purity: no I/O, no clock, no globals; fleet_fit and fleet_place do not modify the members.
 */
#ifndef RF_FLEET_PLACE_H
#define RF_FLEET_PLACE_H

#include "member.h"
#include "selector.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_REASON_MAX 1024 /* the reason text, NUL included */

/* What users write on a Ray object applied to the management cluster (fleet_policy_t): */
#define FLEET_ANN_MEMBER "rayfleet.io/member" /* the member it must go to */
#define FLEET_ANN_MEMBER_SELECTOR                                                                  \
    "rayfleet.io/member-selector" /* a selector over member labels                                 \
                                   */
/* What the placer (services/scheduler/placer.h) writes: on the management object, where it was
 * placed and why, and its finalizer; on the member's copy, what it is a copy of and the
 * management object's generation its spec was last synced from. */
#define FLEET_ANN_PLACED_ON "rayfleet.io/placed-on"
#define FLEET_ANN_PLACEMENT_REASON "rayfleet.io/placement-reason"
#define FLEET_FINALIZER_PLACEMENT "rayfleet.io/placement"
#define FLEET_ANN_PLACED_FROM "rayfleet.io/placed-from" /* cluster/namespace/name/uid */
#define FLEET_ANN_PLACED_GENERATION "rayfleet.io/placed-generation"
/* On a management object the placer suspended to make room for higher-priority work (why; the
 * placer resumes it, and removes this, once its queue admits it again). */
#define FLEET_ANN_PREEMPTED "rayfleet.io/preempted"
#define FLEET_WHY_MAX 256 /* one member's part of it */

typedef enum {
    FLEET_SPREAD = 0, /* most room left, by dominant share */
    FLEET_PACK, /* least room that fits */
} fleet_strategy_t;

/* "spread" or "pack" into *out: 0, or ERR_INVAL for anything else. */
int fleet_strategy_parse(const char *text, fleet_strategy_t *out);
const char *fleet_strategy_name(fleet_strategy_t s);

typedef struct {
    const char *member; /* the required member (annotation rayfleet.io/member); NULL: any */
    const selector_t *selector; /* over member labels (rayfleet.io/member-selector); NULL: any */
    fleet_strategy_t strategy;
} fleet_policy_t;

typedef struct {
    int index; /* the chosen member's index in the array, or -1 */
    double share; /* its dominant share after the placement (0..1) */
    int fits; /* how many members were eligible and had room */
    char reason[FLEET_REASON_MAX];
} fleet_choice_t;

/* Whether every pod of d fits on m's schedulable nodes at once (see above). When it does not and
 * `why` is not NULL, why[n] receives one line naming the first pod that does not fit and what is
 * short, e.g. "worker group gpu: 2 of 4 pods do not fit: gpu short by 2 on every node".
 * An empty demand fits. m is not modified. */
bool fleet_fit(const fleet_member_t *m, const fleet_demand_t *d, char *why, size_t n);

/* Chooses a member of members[0..n) for d under policy p (NULL: spread, no constraint). Returns
 * the index (also in out->index) or -1 when none is eligible and fits; out->reason says why. A
 * demand flagged FLEET_DEMAND_EXISTING_CLUSTER is never placed (-1): it goes with its cluster. */
int fleet_place(const fleet_member_t *members, size_t n, const fleet_demand_t *d,
                const fleet_policy_t *p, fleet_choice_t *out);

/* Reserves d on m node by node as fleet_fit places it (nodes' and the member's `used` grow).
 * Returns 0, ERR_INVAL when d does not fit (m unchanged), ERR_NOMEM. */
int fleet_commit(fleet_member_t *m, const fleet_demand_t *d);

/* A member answers when the watcher's last successful probe of it (wall ms, 0 never) is at most
 * FLEET_HEALTHY_MS before now_ms. */
#define FLEET_HEALTHY_MS 5000
bool fleet_member_answering(int64_t last_ok_ms, int64_t now_ms);

/* Self-test: fragmentation, accelerator type, nodeSelector, health, required member, selector,
 * spread and pack, determinism, commit. */
int place_test(bool verbose);

#endif
