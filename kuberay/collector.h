/*
 * collector: the History Server collector sidecar KubeRay injects into every Ray pod of a
 * RayCluster with spec.historyServerOptions.collectorOptions (gate RayClusterHistoryServer,
 * alpha, off by default). ../shared/spec/kuberay-behavior.md §4.9, §1.5 (template step 7 and the
 * shared /tmp/ray volume), §1.7 item 11 (the Ray container's event-export env).
 *
 * Pure: no I/O, no globals; inputs borrowed, results new trees the caller owns. podbuild calls
 * collector_container() at the end of the head/worker template steps (after auth and TLS),
 * mounts the shared `ray-logs` emptyDir at /tmp/ray in both containers, and appends
 * collector_ray_env() after §1.7 item 10.
 */
#ifndef RF_COLLECTOR_H
#define RF_COLLECTOR_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>

/* The collector container's name (KubeRay recognises the collector by it). */
#define COLLECTOR_CONTAINER "ray-history-collector"
/* The port the collector receives Ray events on (EVENTS_PORT). */
#define COLLECTOR_EVENTS_PORT "8084"
/* Where the Ray dashboard aggregator pushes events (§1.7 item 11). */
#define COLLECTOR_EVENTS_ADDR "http://localhost:8084/v1/events"
/* The head collector's RAY_DASHBOARD_ADDRESS. */
#define COLLECTOR_DASHBOARD_ADDR "http://localhost:8265"
/* The directory the collector shares with the Ray container. */
#define COLLECTOR_RAY_DIR "/tmp/ray"
/* Resources when collectorOptions.resources is absent (§4.9). */
#define COLLECTOR_REQ_CPU "50m"
#define COLLECTOR_REQ_MEM "64Mi"
#define COLLECTOR_LIM_CPU "200m"
#define COLLECTOR_LIM_MEM "256Mi"
/* The event types exported to the collector (both ..._EXPOSABLE_EVENT_TYPES variables). */
#define COLLECTOR_EVENT_TYPES                                                                      \
    "TASK_DEFINITION_EVENT,TASK_LIFECYCLE_EVENT,ACTOR_TASK_DEFINITION_EVENT,TASK_PROFILE_EVENT,"   \
    "DRIVER_JOB_DEFINITION_EVENT,DRIVER_JOB_LIFECYCLE_EVENT,ACTOR_DEFINITION_EVENT,"               \
    "ACTOR_LIFECYCLE_EVENT,NODE_DEFINITION_EVENT,NODE_LIFECYCLE_EVENT"

/* What the collector needs to know about the pod it goes into. All strings borrowed. */
typedef struct {
    bool head; /* RAY_ROLE=Head (and RAY_DASHBOARD_ADDRESS) or Worker */
    const char *cluster; /* RayCluster name (RAY_CLUSTER_NAME) */
    const char *ns; /* its namespace (RAY_CLUSTER_NAMESPACE) */
    const char *fqdn; /* head service FQDN (FQ_RAY_IP) */
    const char *owner_kind; /* RayCluster | RayJob | RayService (OWNER_KIND) */
    const char *owner_name; /* the owning CR's name (OWNER_NAME) */
} collector_pod_t;

/* The collectorOptions of a RayCluster spec when historyServerOptions.collectorOptions is set
 * (borrowed), else NULL. */
const json_t *collector_options(const json_t *spec);

/* The owner of a RayCluster for OWNER_KIND/OWNER_NAME: its ray.io/originated-from-crd and
 * ray.io/originated-from-cr-name labels when the CRD is RayJob or RayService, else "RayCluster"
 * and the cluster's own name. Borrowed pointers into `raycluster`. */
void collector_owner(const json_t *raycluster, const char **kind, const char **name);

/* Builds the `ray-history-collector` container: image and imagePullPolicy (IfNotPresent when
 * unset) from the options, resources (the options', else requests 50m/64Mi limits 200m/256Mi),
 * env POD_IP (fieldRef status.podIP), RAY_CLUSTER_NAME, RAY_CLUSTER_NAMESPACE, RAY_ROLE,
 * EVENTS_PORT, FQ_RAY_IP, OWNER_KIND, OWNER_NAME, head RAY_DASHBOARD_ADDRESS, then the user's
 * env copied. The /tmp/ray mount is podbuild's. NULL on ERR_NOMEM or bad input
 * (a line in err). */
json_t *collector_container(const json_t *opts, const collector_pod_t *pod, buf_t *err);

/* Appends §1.7 item 11 to the Ray container's env, each name only if absent. 0 or ERR_NOMEM. */
int collector_ray_env(json_t *ray);

int collector_test(bool verbose);

#endif
