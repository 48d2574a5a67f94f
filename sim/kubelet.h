/*
 * kubelet: kubesim's simulated nodes, scheduler and kubelets (kwok-like), over objstore.
 *
 * What it plays (../shared/spec/k8s-api-semantics.md §5.4, §10, §12 items 37, 44-46):
 * - Nodes. kubelet_new() creates `nodes` Node objects (<prefix>-0..N-1) unless they exist, and
 *   adopts every Node in the store (existing and future): a Node without Ready=True gets the kwok
 *   "node-initialize" status (conditions, addresses, capacity/allocatable, nodeInfo, phase
 *   Running). Liveness is a Lease per node in kube-node-lease renewed every `lease_ms` (kwok's
 *   node-heartbeat-with-lease model; node status itself is written once), skipped when the
 *   leases resource or that namespace does not exist.
 * - Scheduler stand-in. A pod without spec.nodeName is bound (one write of spec.nodeName) to the
 *   first node, from a rotating cursor, that is Ready, matches spec.nodeSelector and has room for
 *   the pod's requests (max(sum of containers, largest init container) of cpu and memory, with
 *   limits standing in for missing requests, plus one pod) and, when the pod asks an extended
 *   resource (nvidia.com/gpu, google.com/tpu), lists at least that much of it in its
 *   status.allocatable (kubesim's own nodes list none, so such a pod stays Unschedulable with
 *   "N Insufficient nvidia.com/gpu"; extended resources are not charged per pod: a
 *   simplification). Per-node allocated totals are kept, so a bind costs O(nodes) at worst and
 *   never O(pods). When nothing fits the pod gets
 *   PodScheduled=False reason Unschedulable with kube-scheduler's message, e.g.
 *   "0/4 nodes are available: 4 Insufficient cpu. preemption: 0/4 nodes are available: 4 No
 *   preemption victims found for incoming pod." and is retried whenever capacity frees or a
 *   node appears. Terminal (Succeeded/Failed) pods no longer count against their node.
 * - Pod lifecycle, one status write per stage: accepted (Pending, PodScheduled/Initialized True,
 *   containers Waiting ContainerCreating, hostIP, startTime) after `schedule_ms`; Running
 *   (containers running, podIP from `pod_cidr`, Ready False) after `create_ms`; Ready (Ready and
 *   ContainersReady True) after `ready_ms` (Running and Ready are one write when ready_ms is 0).
 *   Every delay gets a uniform random jitter in [0, jitter_ms).
 * - Completion. A pod owned by a Job, or carrying annotation KUBELET_ANN_RUN_SECONDS, runs for
 *   that many seconds (decimal; default `job_run_ms` for Job pods), then its containers
 *   terminate with the exit code in KUBELET_ANN_EXIT_CODE (default 0): phase Succeeded (reason
 *   Completed) or Failed (reason Error). restartPolicy Always restarts the container instead
 *   (restartCount+1, CrashLoopBackOff when the exit code is non-zero); OnFailure is treated as
 *   Never (documented simplification).
 * - KubeRay submitters (raysubmit.h), once kubelet_set_raysim() gave the Ray side: a container
 *   whose command runs `ray job submit` (a K8sJobMode Job pod's, or the `ray-job-submitter`
 *   container of a SidecarMode head pod) is RUN against the simulated heads from its start: it
 *   exits when the script would (health wait, `ray job status`, submission, `ray job logs
 *   --follow`), each running submitter being one item of the due heap re-armed every
 *   `submit_poll_ms`. Its exit code ends the container: the first container ends the pod as
 *   above (Succeeded / Failed, or a restart); another container is terminated alone (exitCode,
 *   reason Completed / Error, finishedAt) while the pod stays Running (its Ready condition goes
 *   False, as Kubernetes reports a pod with a terminated container) -- unless that container
 *   has `restartPolicy: OnFailure` (Kubernetes 1.35 container restart rules, KubeRay's
 *   SidecarSubmitterRestart): a non-zero exit then restarts it alone after backoff_ms
 *   (restartCount+1, lastState.terminated the exit; shown Running meanwhile, not Waiting
 *   CrashLoopBackOff: a simplification), the pod staying Ready. The annotations
 *   KUBELET_ANN_RUN_SECONDS, KUBELET_ANN_EXIT_CODE and KUBELET_ANN_FAIL win: a pod carrying one
 *   is scripted as before and its submitter is not run.
 * - One container's exit (annotation KUBELET_ANN_EXIT_PREFIX<container> = "<code>@<seconds>",
 *   or kubelet_set_exit(), kubesim's pod-fault kind Exit, which writes it): for the first
 *   container it is the pod's scripted run (as KUBELET_ANN_EXIT_CODE + KUBELET_ANN_RUN_SECONDS,
 *   read at creation). Any other container, or a native sidecar, exits with <code> <seconds>
 *   after each of its starts (after the annotation appears, for a running one) and the kubelet
 *   applies kube's rules: a sidecar always restarts; another container as the pod's
 *   restartPolicy says (Always; OnFailure after a non-zero exit; Never: it stays terminated,
 *   reason Completed/Error, and the pod stays Running but not Ready). A restart shows Waiting
 *   CrashLoopBackOff ("back-off Ns restarting failed container=C pod=NAME_NS(UID)") for
 *   backoff_ms doubled per restart (at most 300 s), then Running with restartCount+1 and
 *   lastState.terminated the exit. When the pod ends, it Succeeds only if every container that
 *   terminated on its own exited 0.
 * - Init containers: unscripted ones complete at once when the containers would start. A
 *   scripted regular init container (exit.<name>) makes an init phase: the scripted ones run in
 *   spec order (phase Pending, Initialized False reason ContainersNotInitialized "containers
 *   with incomplete status: [...]", the containers Waiting PodInitializing; sidecars declared
 *   before the running one are Running, started and ready, later ones wait); exit 0 moves on;
 *   a non-zero exit fails the pod under restartPolicy Never (phase Failed, the containers never
 *   started), else restarts that init container with the back-off (Init:CrashLoopBackOff).
 * - Native sidecars (init containers with restartPolicy Always, SidecarContainers, on in 1.32):
 *   in initContainerStatuses they are Waiting PodInitializing until the pod's containers start,
 *   then Running (started true, ready with the pod) beside them, and terminated (exit 0,
 *   Completed) when the pod ends: they never hold a pod's completion (a Job pod Succeeds when its
 *   first container exits 0). Their requests count as the scheduler counts them. Unready
 *   sidecars are named first in the Ready condition's "containers with unready status".
 *   SIMPLIFICATION: without scripted init containers, init containers take no time (they all
 *   complete, and the sidecars start, at the containers' start); sidecars stop at the same
 *   instant; a scripted sidecar's own exits start with the containers.
 * - Failures (kubelet_inject() or annotation KUBELET_ANN_FAIL = ImagePull|Crash|OOM):
 *   ImagePull: the first container waits ErrImagePull, then ImagePullBackOff, and the pod stays
 *   Pending (the annotation makes it permanent; an injection on a running pod restarts the
 *   container into the same state, retried after backoff_ms and succeeding next time).
 *   Crash / OOM: the first container terminates (exit 1 reason Error / exit 137 reason
 *   OOMKilled), restartCount+1; restartPolicy Always: Waiting CrashLoopBackOff for backoff_ms
 *   then running again (the annotation makes it crash again `crash_after_ms` after each start);
 *   Never/OnFailure: phase Failed.
 * - Node loss (kubelet_fail_node()), as the node lifecycle controller does: the node's Lease
 *   stops, its conditions go Unknown (reason NodeStatusUnknown, "Kubelet stopped posting node
 *   status."), it gets the taints node.kubernetes.io/unreachable NoSchedule and NoExecute, every
 *   pod on it gets Ready=False, and after `eviction_ms` (kube's default tolerationSeconds 300)
 *   the pods are deleted (gracefully: with no kubelet they stay Terminating, as in Kubernetes,
 *   until the node comes back or the Node is deleted). kubelet_restore_node() brings it back.
 *   A deleted Node has its pods force-deleted (the pod GC controller).
 * - Graceful deletion: a pod with deletionTimestamp is stopped and finally deleted (grace 0,
 *   uid precondition) after min(grace, terminate_ms) (default 1 s, not the full 30 s).
 *
 * Timing: all due work sits in one min-heap (pods' next stage, Lease renewals) served by ONE loop
 * timer armed at the earliest due time; time is objstore_now_ms() (so a test may inject the clock
 * and call kubelet_tick()). Watch callbacks only record what happened and schedule work; every
 * write happens from the timer (or kubelet_tick()), never nested in a delivery.
 */
#ifndef RF_KUBELET_H
#define RF_KUBELET_H

#include "loop.h"
#include "objstore.h"
#include "raysim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KUBELET_ANN_FAIL "sim.rayfleet.io/fail" /* ImagePull | Crash | OOM */
#define KUBELET_ANN_EXIT_CODE "sim.rayfleet.io/exit-code" /* completion exit code (integer) */
#define KUBELET_ANN_RUN_SECONDS "sim.rayfleet.io/run-seconds" /* run time before exiting */
#define KUBELET_ANN_EXIT_PREFIX "sim.rayfleet.io/exit." /* + container: "<code>@<seconds>" */
#define KUBELET_NODE_PREFIX "kubesim-node" /* default node name prefix */
#define KUBELET_NODE_CPU "32" /* default node capacity */
#define KUBELET_NODE_MEMORY "128Gi"
#define KUBELET_NODE_PODS "110"
#define KUBELET_POD_CIDR "10.244.0.0/14" /* default pod CIDR (262,144 addresses) */
#define KUBELET_POD_CIDR_MIN_BITS 8 /* widest pod CIDR accepted (/8) */
#define KUBELET_SCHEDULE_MS 0 /* default delays */
#define KUBELET_CREATE_MS 200
#define KUBELET_READY_MS 200
#define KUBELET_JITTER_MS 100
#define KUBELET_TERMINATE_MS 1000 /* simulated termination, capped by the grace period */
#define KUBELET_JOB_RUN_MS 2000 /* Job pods' default run time */
#define KUBELET_BACKOFF_MS 1000 /* CrashLoopBackOff / ImagePullBackOff before a retry */
#define KUBELET_CRASH_AFTER_MS 1000 /* annotation Crash/OOM: time from start to the crash */
#define KUBELET_PULL_BACKOFF_MS 500 /* ErrImagePull -> ImagePullBackOff */
#define KUBELET_LEASE_MS 10000 /* Lease renewal period (0 = no leases) */
#define KUBELET_LEASE_DURATION_S 40 /* Lease spec.leaseDurationSeconds */
#define KUBELET_EVICTION_MS 300000 /* node loss -> pods deleted (tolerationSeconds 300) */
#define KUBELET_SUBMIT_POLL_MS 200 /* a running submitter's poll period (simulated) */
#define KUBELET_SUBMIT_DNS_FAIL_MS 10000 /* submitter: NXDOMAIN this long -> exit 1 */
#define KUBELET_TICK_BUDGET 20000 /* due items processed per timer run before yielding */
#define KUBELET_SCHED_BUDGET 20000 /* pending pods tried per scheduling pass */
#define KUBELET_NAME_MAX 320 /* bytes of "namespace/name" */

typedef struct kubelet kubelet_t;

/* Construction options. Fill with kubelet_opts_default(), then override. */
typedef struct {
    int nodes; /* Node objects created at start (those that exist are adopted) */
    const char *node_prefix; /* node names <prefix>-<i> (borrowed during kubelet_new) */
    const char *node_cpu; /* capacity of created nodes, as quantities */
    const char *node_memory; /* e.g. "128Gi" */
    const char *node_pods; /* max pods per node */
    int64_t schedule_ms; /* pod created -> bound and accepted */
    int64_t create_ms; /* accepted -> Running */
    int64_t ready_ms; /* Running -> Ready */
    int64_t jitter_ms; /* uniform random [0, jitter) added to every delay */
    int64_t terminate_ms; /* deletionTimestamp -> final delete (capped by the grace) */
    int64_t job_run_ms; /* default run time of Job pods */
    int64_t backoff_ms; /* back-off before a crashed / failed-pull container retries */
    int64_t crash_after_ms; /* annotation Crash/OOM: start -> crash */
    int64_t lease_ms; /* Lease renewal period; 0 = no leases */
    int64_t eviction_ms; /* node loss -> its pods deleted */
    const char *pod_cidr; /* pod IP range "a.b.c.d/n", n >= 8 (borrowed during kubelet_new) */
    int64_t submit_poll_ms; /* submitter containers: health / follow poll period */
    int64_t submit_dns_fail_ms; /* submitter containers: NXDOMAIN time before exit 1 */
    uint64_t seed; /* random seed (jitter, container ids); 0 = fixed default */
} kubelet_opts_t;

/* Failure kinds for kubelet_inject(). */
typedef enum {
    KUBELET_FAIL_IMAGEPULL = 1, /* ErrImagePull / ImagePullBackOff */
    KUBELET_FAIL_CRASH, /* container exits 1 (Error), CrashLoopBackOff */
    KUBELET_FAIL_OOM /* container OOMKilled, exit 137 */
} kubelet_fail_t;

/* Fills `o` with the KUBELET_* defaults (0 nodes). */
void kubelet_opts_default(kubelet_opts_t *o);

/* Starts the simulation on `store` (which must have pods and nodes registered; leases optional)
 * and `loop` (NULL = no timer: the caller drives kubelet_tick()). Creates the configured nodes
 * and adopts existing Nodes and Pods through watches. `opts` may be NULL (defaults). Returns
 * NULL when out of memory, on a bad option (CIDR, quantity) or when a resource is missing. */
kubelet_t *kubelet_new(loop_t *loop, objstore_t *store, const kubelet_opts_t *opts);

/* Stops the watches and the timer, frees everything; objects stay in the store. NULL-safe;
 * sets *kp to NULL. */
void kubelet_destroy(kubelet_t **kp);

/* Runs every piece of work due at objstore_now_ms(): scheduling, stage transitions, deletions,
 * lease renewals (the loop timer calls this). Returns the number of store writes made, >= 0. */
int kubelet_tick(kubelet_t *k);

/* Creates one more Node named `name` with the given capacity (NULL = the configured defaults).
 * Returns 0, ERR_EXISTS, ERR_INVAL (bad quantity) or ERR_NOMEM. */
int kubelet_add_node(kubelet_t *k, const char *name, const char *cpu, const char *memory,
                     const char *pods);

/* Injects a failure into pod ns/name (see the file comment). Returns 0, ERR_NOTFOUND (no such
 * pod), ERR_STATE (terminal or being deleted) or ERR_INVAL. Takes effect at the next tick. */
int kubelet_inject(kubelet_t *k, const char *ns, const char *name, kubelet_fail_t kind);

/* Scripts container `container` of pod ns/name to exit with `code` (0..255) `after_s` seconds
 * (>= 0) after each start, by writing the annotation KUBELET_ANN_EXIT_PREFIX<container> (see
 * the file comment). Returns 0, ERR_NOTFOUND (no such pod), ERR_INVAL (bad arguments, no such
 * container or init container, or the first container or a regular init container of a pod the
 * kubelet has started: those are scripted before the start) or ERR_NOMEM. */
int kubelet_set_exit(kubelet_t *k, const char *ns, const char *name, const char *container,
                     int code, double after_s);

/* Parses "ImagePull", "Crash" or "OOM" (case-insensitive); 0 when unknown. */
kubelet_fail_t kubelet_fail_parse(const char *s);

/* Simulates the loss of node `name` (see the file comment). Returns 0, ERR_NOTFOUND or
 * ERR_STATE (already lost). */
int kubelet_fail_node(kubelet_t *k, const char *name);

/* Brings a lost node back: Ready=True, taints removed, its pods ready again, Terminating pods
 * finished. Returns 0, ERR_NOTFOUND or ERR_STATE (not lost). */
int kubelet_restore_node(kubelet_t *k, const char *name);

/* Parses a Kubernetes quantity ("100m", "1", "1.5", "2Gi", "1G", "512Mi", "1e3") into
 * thousandths of a unit, rounded up. Returns 0, or ERR_INVAL (malformed, negative) /
 * ERR_TOOBIG (overflow). */
int kubelet_parse_quantity(const char *s, int64_t *milli);

/* Counts for admin endpoints and tests: nodes known, pods tracked, pods waiting to be bound. */
size_t kubelet_node_count(const kubelet_t *k);
size_t kubelet_pod_count(const kubelet_t *k);
size_t kubelet_pending_count(const kubelet_t *k);

/* Gives the kubelet the Ray side that submitter containers call (NULL: submitters are scripted
 * like any Job pod). Borrowed: clear it (NULL) before destroying r. Takes effect at the next
 * container start. */
void kubelet_set_raysim(kubelet_t *k, raysim_t *r);

/* Number of submitter containers running now. */
size_t kubelet_submitter_count(const kubelet_t *k);

/* Self-test. */
int kubelet_test(bool verbose);

#endif
