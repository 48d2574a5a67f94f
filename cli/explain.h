/*
 * explain: `rayfleetctl explain KIND/NAME` (why does this object exist, or why was it deleted)
 * and `rayfleetctl drift` (the children each RayCluster's spec asks for versus those observed).
 *
 * explain reads, through one read-only query connection (store_query_open()), the audit table of
 * STATE/scheduler.db (and of STATE/submitter.db, the RayJob controller's; fleetdb.h) and, ATTACHed
 * read-only as schema `observed`, STATE/observed.db (the watcher's observed_objects). With
 * scheduler replicas, the audit and desired_objects tables are those of every replica's file as one
 * (fleetdb.h: scheduler-<i>.db ATTACHed read-only, each statement prefixed with a WITH clause
 * naming their union), so explain and drift see the rows of whichever replica reconciled the
 * object. For the object it:
 *   1. lists the audit rows whose target is that object (create, delete, patch, status, ...),
 *      oldest first, each with its reason (KubeRay's event reason and sentence), actor and result;
 *   2. follows each row's cause: the Ray object named by cause_key ("cluster/namespace/name"),
 *      looked up in observed.db (kind, current generation, resourceVersion, state), with the
 *      generation, resourceVersion and bus event id that triggered the reconcile. When the
 *      observed generation still equals the cause's generation, the current spec IS the one acted
 *      on, and the wanted worker count of the pod's group is derived from it (replicas clamped to
 *      [minReplicas, maxReplicas] times numOfHosts, 0 when suspended); otherwise it says the spec
 *      of that generation is not kept;
 *   3. lists the other actions of the same reconcile (same correlation id);
 *   4. says what is true now: still observed, gone after a rayfleet delete, or gone WITHOUT a
 *      rayfleet delete row (deleted outside rayfleet: a user, kubectl, the garbage collector), and
 *      for a worker pod gone that way, the pods the scheduler created later in the same group.
 * A delete row does not record which rule chose the pod; explain infers it from what it can see
 * (scaleStrategy.workersToDelete naming it, a smaller wanted count) and says when it cannot tell.
 * For Ray objects (raycluster/NAME, rayjob/NAME, rayservice/NAME) it lists everything done for the
 * object, grouped by reconcile (correlation id): the rows whose cause_key is the object and the
 * rows targeting it. For a RayJob it first says where the RayJob is and why: "why:" is the
 * sentence of one kuberay/rjstate step over the observed RayJob, its RayCluster and submitter Job
 * (KubeRay's default settings; where the step would ask the dashboard, the job status the RayJob
 * recorded stands for the answer); then its status (deployment and job status, reason, message,
 * job id, cluster, dashboard URL, start, end), the objects it owns (its RayCluster, the submitter
 * Job, the head Service <rayjob>-head-svc: observed state and conditions, or the newest audit row
 * when not observed), the newest EXPLAIN_RAYJOB_LAST audit rows about it and those children
 * (scheduler and submitter, including the submitter's submit/stop rows), and its Events (from the
 * audit rows that created them: type, reason, message).
 * For a RayService (audit rows of STATE/serve-upgrade.db, actor_service "serve-upgrade", in the
 * same union) it says which cluster serves and why: "why:" is the sentence of one kuberay/rsstate
 * step over the observed RayService, the RayClusters it originated (named <rs>-..., labelled
 * originated-from it, as serve-upgrade finds them), the active and pending clusters' head pods,
 * its head and serve Services and the serve Service's ready endpoints (its EndpointSlices,
 * rayservice_serve_endpoints()), with KubeRay's default settings and NO Serve probe (explain calls
 * no Ray head: the sentence says "Serve state not probed by explain"; the deletion deadline of a
 * dangling cluster is taken as its schedule-delete row's time plus the deletion delay); "serves:"
 * is the cluster the serve Service's selector names (ray.io/cluster, as observed) with the active
 * and pending clusters of the status; then its status (serviceStatus, numServeEndpoints, the
 * clusters, observedGeneration, the Ready and UpgradeInProgress conditions with reason and message,
 * the rollback and suspend conditions when set), what the step would do next when anything, the
 * objects it owns (each RayCluster it has or had: active, pending or dangling, with its state; the
 * head and serve Services with the cluster each selects), the newest EXPLAIN_RAYJOB_LAST audit
 * rows about it, its clusters and Services (scheduler and serve-upgrade: creates, patches,
 * serve-push, schedule-delete), and its Events. --output json carries each section under
 * "rayjob" / "rayservice". NOTE: cause_key has no index in the audit table, so these listings scan
 * the table (bounded by EXPLAIN_TIMEOUT_MS).
 *
 * Federation (`rayfleetctl up --sim --members N`): --context member-<i> reads that member's audit
 * files only (STATE/member-<i>.*.db, fleetdb_select()) and looks for the object in that cluster
 * (--cluster defaults to it); --context management the management set's. Without --context every
 * cluster's files that fit in one connection are read (a note names the members left out), the
 * clusters looked in are those of observed.db plus those members, and each reconcile line of a
 * Ray object names its cluster. drift still reads the management set only (fleetdb_find()).
 *
 * Exit codes: 0 the object has audit rows; 1 no audit row (not created or touched by rayfleet),
 * or a database error; 2 usage error.
 *
 * drift compares what the scheduler decided (desired_objects in scheduler.db: one row per pod
 * group with its wanted count, one per named child such as the head Service, each with the reason
 * and the reconcile's correlation id) with what the watcher observed (observed.db, pods counted by
 * group and not being deleted, Services and Jobs by name), and prints want, have and the drift;
 * kinds the watcher does not list (Secrets, RBAC, Ingress, PVC) show as unobserved. Without desired
 * rows (a RayCluster the scheduler has not reconciled yet, or an older scheduler) it falls back to
 * the counts the spec asks for, and says so.
 */
#ifndef RF_CLI_EXPLAIN_H
#define RF_CLI_EXPLAIN_H

#define EXPLAIN_MAX_ROWS 10000 /* most audit rows one explain reads for one object */
#define EXPLAIN_MAX_SIBLINGS 1000 /* most rows of one reconcile read */
#define EXPLAIN_TIMEOUT_MS 30000 /* bound on each query's wall time */
#define EXPLAIN_OBJECT_MAX (16u * 1024u * 1024u) /* longest observed JSON parsed */
#define EXPLAIN_TEXT_MAX (1024u * 1024u) /* longest explanation text of one row */
#define EXPLAIN_DEFAULT_NS "default" /* -n default */
#define EXPLAIN_RAYJOB_LAST 20 /* newest audit rows shown about a RayJob/RayService, children */

/* `rayfleetctl explain ARGS`; returns the exit code (0 found, 1 not found or error, 2 usage). */
int explain_main(int argc, char **argv);

/* `rayfleetctl drift ARGS`; returns the exit code (0, 1 error, 2 usage). */
int drift_main(int argc, char **argv);

#endif
