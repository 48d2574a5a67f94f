/*
 * bounds: rayfleet's own limits on a RayCluster spec, checked before anything is created (KubeRay
 * has none of them; it trusts its Go types and the API server). A spec over a bound gets one
 * Warning Event naming the field and the limit (audited like every Event), a log line, and nothing
 * else: no pod, no Service, no status write for that version of the object.
 *
 *  - int32: replicas, minReplicas, maxReplicas and numOfHosts of every worker group must fit in a
 *    32-bit signed integer (KubeRay's Go types are int32; kube-apiserver does not check `format:
 *    int32` on custom resources, so 99999999999 reaches the controller). Reason InvalidInt32Field:
 *      spec.workerGroupSpecs[0].replicas: Invalid value: 99999999999: must be a 32-bit integer
 *      (KubeRay's int32 field; -2147483648..2147483647)
 *  - pods per cluster: 1 (head) + every group's replicas after minReplicas/maxReplicas clamping
 *    times numOfHosts (suspended groups 0) must not exceed max_pods. Reason TooManyPods:
 *      spec.workerGroupSpecs[0].replicas: 1000000 replicas x 1 hosts bring the cluster to 1000001
 *      pods, over the per-cluster cap of 10000 (--max-pods-per-cluster)
 *  - pod size: the head pod and one pod of every group must build within podbuild's text bound
 *    (PODBUILD_MAX_TEXT bytes for a command, e.g. the `ray start` line holding rayStartParams).
 *    Reason PodTooLarge, the field named is the largest rayStartParams value of that group:
 *      spec.workerGroupSpecs[0].rayStartParams.big: 1048576 bytes: the worker Pod's ray start
 *      command would exceed 262144 bytes (rayfleet's bound on a container command)
 */
#ifndef RF_BOUNDS_H
#define RF_BOUNDS_H

#include "buf.h"
#include "podbuild.h"

#include <jansson.h>
#include <stdint.h>

#define BOUNDS_MAX_PODS_DEFAULT 10000 /* --max-pods-per-cluster */

#define BOUNDS_REASON_INT32 "InvalidInt32Field"
#define BOUNDS_REASON_PODS "TooManyPods"
#define BOUNDS_REASON_SIZE "PodTooLarge"

/* Checks the defaulted RayCluster `rc` against the bounds. Returns 0 when within them; 1 with
 * *reason (static) set and the message in `msg` when not; ERR_NOMEM. `opts` as podbuild's. */
int bounds_check(const json_t *rc, int64_t max_pods, const podbuild_opts_t *opts,
                 const char **reason, buf_t *msg);

#endif
