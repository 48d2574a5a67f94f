/*
 * members: federation's member clusters as `rayfleetctl up --sim --members N` runs them
 * (issue 16).
 *
 * `rayfleetctl members`: a row per member of STATE/federation.yaml, built with fleet/member.c
 * from the watcher's rows in STATE/observed.db (--watch.nodes: Node, PodUsage, ClusterHealth;
 * services/watcher/watcher.h, "Capacity"): nodes schedulable/total, CPU, memory, GPU and pods
 * used/allocatable (used = the requests of the non-terminal pods bound to schedulable nodes, by
 * kube's rule), the RayClusters observed there, and HEALTHY: "yes" when the watcher's last
 * successful list of that member is at most MEMBERS_HEALTHY_MS old, else "no" with the age and
 * the last error ("no (never answered)" without a row, "unknown" when the watcher's own probe row
 * is stale, i.e. the watcher is not running).
 *
 * `rayfleetctl member ACTION NAME`: faults of a simulated member, each undoable:
 *   stop / start   SIGSTOP / SIGCONT of the member's kubesim process: it keeps its objects and
 *                  its port but answers nothing (a kill would lose the in-memory cluster and a
 *                  restart would come back empty on another port);
 *   partition/heal every API request answered 503 ServiceUnavailable (kubesim's fault rule
 *                  verb "*", resource "*", rate 1) and every open watch dropped / all fault rules
 *                  and latency removed (POST/DELETE /kubesim/faults);
 *   slow / fast    --latency-ms N (default MEMBERS_SLOW_MS) added to every API request / none.
 * The management cluster can be named too.
 */
#ifndef RF_CLI_MEMBERS_H
#define RF_CLI_MEMBERS_H

#include "place.h"

#define MEMBERS_HEALTHY_MS                                                                         \
    FLEET_HEALTHY_MS /* a member answered the watcher this recently (place.h) */
#define MEMBERS_SLOW_MS 2000 /* `member slow` default latency */

int members_main(int argc, char **argv);
int member_main(int argc, char **argv);

#endif
