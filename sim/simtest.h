/*
 * simtest.h: what kubesim's module self-tests share (included only under RF_SELFTEST): a fake
 * clock for the object store, a store with the core resources every simulated controller needs
 * and the namespace "default", and the step that advances the clock while the kubelet and the
 * Job/EndpointSlice controllers tick.
 */
#ifndef RF_SIMTEST_H
#define RF_SIMTEST_H

#include "controllers.h"
#include "kubelet.h"
#include "objstore.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SIMTEST_T0 1700000000000LL /* the fake clock's start, Unix ms */
#define SIMTEST_TICK_MS 50 /* simtest_step()'s tick */

typedef struct {
    int64_t now; /* Unix ms */
} simtest_clock_t;

static inline int64_t simtest_clock(void *arg)
{
    return ((simtest_clock_t *)arg)->now;
}

/* Sets store s's clock to clk and registers the core resources (namespaces, pods, nodes,
 * services, endpoints, endpointslices, batch jobs), then `extra` (n descriptions, may be NULL),
 * and creates the namespace "default". Returns the registrations that failed. */
static inline int simtest_core(objstore_t *s, simtest_clock_t *clk, const objstore_resdesc_t *extra,
                               size_t n)
{
    static const objstore_resdesc_t core[] = {
        {.group = "", .version = "v1", .resource = "namespaces", .kind = "Namespace"},
        {.group = "",
         .version = "v1",
         .resource = "pods",
         .kind = "Pod",
         .namespaced = true,
         .has_status = true,
         .graceful = true},
        {.group = "", .version = "v1", .resource = "nodes", .kind = "Node", .has_status = true},
        {.group = "",
         .version = "v1",
         .resource = "services",
         .kind = "Service",
         .namespaced = true,
         .has_status = true},
        {.group = "",
         .version = "v1",
         .resource = "endpoints",
         .kind = "Endpoints",
         .namespaced = true},
        {.group = "discovery.k8s.io",
         .version = "v1",
         .resource = "endpointslices",
         .kind = "EndpointSlice",
         .namespaced = true},
        {.group = "batch",
         .version = "v1",
         .resource = "jobs",
         .kind = "Job",
         .namespaced = true,
         .has_status = true},
    };
    int failed = 0;
    objstore_set_clock(s, simtest_clock, clk);
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
        failed += objstore_register(s, &core[i]) == NULL;
    for (size_t i = 0; i < n; i++)
        failed += objstore_register(s, &extra[i]) == NULL;
    objstore_status_t st;
    json_t *o = json_pack("{s:{s:s}}", "metadata", "name", "default");
    objstore_create(s, objstore_find(s, "", "namespaces"), NULL, &o, NULL, &st);
    return failed;
}

/* Registers the volume and policy resources kubesim serves (sim/storage.h): PVCs, PVs,
 * StorageClasses, NetworkPolicies. Returns the registrations that failed. */
static inline int simtest_storage(objstore_t *s)
{
    static const objstore_resdesc_t res[] = {
        {.group = "",
         .version = "v1",
         .resource = "persistentvolumeclaims",
         .kind = "PersistentVolumeClaim",
         .namespaced = true,
         .has_status = true},
        {.group = "",
         .version = "v1",
         .resource = "persistentvolumes",
         .kind = "PersistentVolume",
         .has_status = true},
        {.group = "storage.k8s.io",
         .version = "v1",
         .resource = "storageclasses",
         .kind = "StorageClass"},
        {.group = "networking.k8s.io",
         .version = "v1",
         .resource = "networkpolicies",
         .kind = "NetworkPolicy",
         .namespaced = true},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++)
        failed += objstore_register(s, &res[i]) == NULL;
    return failed;
}

/* Advances clk by ms in SIMTEST_TICK_MS ticks, the kubelet and the controllers ticking after each,
 * and once more at the end. */
static inline void simtest_step(kubelet_t *k, controllers_t *c, simtest_clock_t *clk, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += SIMTEST_TICK_MS) {
        clk->now += SIMTEST_TICK_MS;
        kubelet_tick(k);
        controllers_tick(c);
    }
    kubelet_tick(k);
    controllers_tick(c);
}

#endif
