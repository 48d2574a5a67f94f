/*
 * placer: federation's admission and placement, run by rayfleet-scheduler on the management
 * cluster (`--federation.config FILE`, the file's `federation:` section: fleet/fedcfg.h).
 *
 * Users apply unchanged KubeRay manifests (RayJob, RayCluster, RayService) to the management
 * cluster. There the scheduler does not reconcile them: it places each on one member cluster and
 * mirrors the member copy's status back. Three controllers on the runtime (ctrl.h), one per kind,
 * each with ctrl_kind_t.any_cluster (a change of the copy on a member wakes the management key of
 * the same namespace and name), share one placer_t:
 *
 * Admission round (a loop timer: PLACER_ROUND_MS after something changed, and every
 * PLACER_PERIOD_MS while work waits; a pass asks for one when a key no round has seen appears,
 * a RayJob's copy ends or a deleted object lets go of its copy). Rebuilt from observed.db each
 * time, so a restart loses nothing: the members' capacity (fleet/member.c: the watcher's Node and
 * PodUsage rows of each member, `--watch.nodes`; Ray pods left out, their clusters being counted by
 * their demand below), their health (the watcher's ClusterHealth rows: an answer at most
 * FLEET_HEALTHY_MS ago), then every management object of the three kinds: one already placed
 * (annotation FLEET_ANN_PLACED_ON, or decided and not yet observed) is admitted in its queue and
 * its demand (fleet/demand.c) reserved on its member while it is active (a RayJob stops being
 * active once it is terminal and its RayCluster is gone); the others wait in their tenant's queue
 * (fleet/queue.c: the kueue.x-k8s.io/queue-name label or the namespace; priority from
 * kueue.x-k8s.io/priority-class; DRF fair share, quotas, cohorts). fleet_queue_next() then admits
 * what fits, each on the member fleet_place() chooses (policy: the configuration's strategy, the
 * object's annotations rayfleet.io/member and rayfleet.io/member-selector), at most
 * PLACER_MAX_PER_ROUND per round, and queues the object's key. A RayJob with a clusterSelector
 * goes where its RayCluster was placed.
 *
 * The pass of a management object (stages in order):
 *   place: a decision not yet recorded is written on the object first (a merge patch with the
 *          resourceVersion precondition: the annotations FLEET_ANN_PLACED_ON and
 *          FLEET_ANN_PLACEMENT_REASON, and the finalizer FLEET_FINALIZER_PLACEMENT), audited as a
 * "place" row with the reason and announced by a Normal Event `Placed`. Recorded before anything is
 *          created, so a crash at any point never places an object twice.
 *   configmaps: the ConfigMaps the object refers to (volumes, projected sources, env, envFrom)
 *          are read from the management cluster and created on the member when missing (once,
 *          with FLEET_ANN_PLACED_FROM; never updated or deleted there: other objects may share
 *          them). Secrets are not copied between clusters.
 *   sync:  the copy on the member (same namespace and name; labels, annotations and spec of the
 *          management object, annotations FLEET_ANN_PLACED_FROM and FLEET_ANN_PLACED_GENERATION
 * added) is created when missing, its spec replaced when the management object's generation
 *          changed, and deleted when the management object is being deleted (the finalizer is
 *          removed once the copy is gone). A copy of the same object left on another member
 *          (placed there before a fault moved it) is deleted.
 *   status: the copy's status is written as the management object's (the status guard: once per
 *          change).
 * Faults: a member that does not answer gets no new placement. An object placed there whose copy
 * was never observed and that has no status yet (not started) is moved: its decision is removed
 * (Warning Event `MemberUnreachable`, audit row) and the next round places it elsewhere. One that
 * runs there keeps its place, with a Warning Event, never a second copy. A RayJob whose copy
 * vanished after it started is not recreated (it could run twice); a RayCluster or RayService is.
 *
 * Not done (said in the README): preemption is decided by fleet/queue.c but not carried out; Ray
 * pods on a member that the placer did not place are not counted as used; the placement is
 * annotations and Events, not a condition (RayJob's CRD has no status.conditions; a real API
 * server prunes unknown status fields).
 */
#ifndef RF_PLACER_H
#define RF_PLACER_H

#include "buf.h"
#include "ctrl.h"
#include "ctrlsvc.h"
#include "place.h"

#include <stdbool.h>
#include <stdint.h>

#define PLACER_ROUND_MS 100 /* a round this long after a change */
#define PLACER_PERIOD_MS 1000 /* and this often while work waits (capacity may have grown) */
#define PLACER_MAX_PER_ROUND 2000 /* admissions per round */
#define PLACER_REASON_MAX 512 /* the reason annotation's longest text */
#define PLACER_MEMBER_TIMEOUT_MS 3000 /* one attempt of a request to a member, no retry */
#define PLACER_MAX_CONFIGMAPS 32 /* ConfigMaps of one object copied to its member */

typedef struct placer placer_t;

/* The kinds placed, in the order of placer_ctrl(). */
typedef enum {
    PLACER_RAYCLUSTER = 0,
    PLACER_RAYJOB,
    PLACER_RAYSERVICE,
    PLACER_NKINDS
} placer_kind_t;

/* Loads the federation file `path` (fedcfg_load), checks that env->cluster is its management
 * cluster, makes a client per member (its kubeconfig, or the set's, and its context) and the
 * three controllers. Returns NULL with the reason in err. */
placer_t *placer_new(const ctrlsvc_env_t *env, const char *path, buf_t *err);

/* The controller of kind k (the service hosts all three). */
ctrl_t *placer_ctrl(placer_t *pl, placer_kind_t k);

/* Frees everything; *pl_p NULL after. NULL-safe. */
void placer_destroy(placer_t **pl_p);

/* Self-test: the copy's body, the active rule, the reason bound. */
int placer_test(bool verbose);

#endif
