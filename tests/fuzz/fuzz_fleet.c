/*
 * fuzz_fleet: libFuzzer harness for the federation model's input side (fleet/demand.c, and
 * fleet/place.c on what it returns). The input is JSON: a RayJob or RayService object by its
 * "kind", else a RayCluster (its "spec"). Properties: a refused object leaves an empty demand; an
 * accepted one holds at most FLEET_DEMAND_MAX_PODS pods whose sum is its total; on a fixed small
 * member, fleet_fit does not modify the member and agrees with fleet_commit, a commit never takes
 * a node over its allocatable, and fleet_place chooses only a member that fits. Built by
 * -DRF_FUZZ=ON (scripts/fuzz.sh, make fuzz-smoke).
 */
#include "buf.h"
#include "demand.h"
#include "json.h"
#include "place.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NODES 4

/* Member `name`: S_NODES nodes of 8 CPUs, 32 GiB, 110 pods; node 0 with 4 A100 GPUs and zone a. */
static void s_member(fleet_member_t *m, fleet_node_t *nodes, const char *name)
{
    memset(m, 0, sizeof(*m));
    m->name = (char *)name;
    m->nodes = nodes;
    m->nnodes = S_NODES;
    m->healthy = true;
    for (size_t j = 0; j < S_NODES; j++) {
        fleet_node_t *nd = &nodes[j];
        memset(nd, 0, sizeof(*nd));
        nd->name = (char *)"n";
        nd->labels = j == 0 ? json_pack("{s:s,s:s}", "nvidia.com/gpu.product", "A100",
                                        "topology.kubernetes.io/zone", "a")
                            : json_object();
        nd->alloc.v[FLEET_RES_CPU] = 8000;
        nd->alloc.v[FLEET_RES_MEMORY] = 32LL << 30;
        nd->alloc.v[FLEET_RES_GPU] = j == 0 ? 4 : 0;
        nd->alloc.v[FLEET_RES_PODS] = 110;
        nd->schedulable = j != 3;
        if (nd->schedulable)
            fleet_res_add(&m->alloc, &nd->alloc);
    }
}

static void s_member_free(fleet_member_t *m)
{
    for (size_t j = 0; j < m->nnodes; j++)
        json_decref(m->nodes[j].labels);
}

static void s_check_place(const fleet_demand_t *d)
{
    fleet_node_t na[S_NODES], nb[S_NODES], snap[S_NODES];
    fleet_member_t ms[2];
    s_member(&ms[0], na, "a");
    s_member(&ms[1], nb, "b");
    ms[1].healthy = false;
    char why[FLEET_WHY_MAX];
    fleet_member_t before = ms[0];
    memcpy(snap, na, sizeof(snap));
    bool fits = fleet_fit(&ms[0], d, why, sizeof(why));
    if (memcmp(&before, &ms[0], sizeof(before)) != 0 || memcmp(snap, na, sizeof(snap)) != 0)
        abort(); // fit modified the member
    if (!fits && !why[0])
        abort(); // no reason given
    fleet_choice_t c;
    int i = fleet_place(ms, 2, d, NULL, &c);
    if (i != (fits ? 0 : -1) || strlen(c.reason) >= FLEET_REASON_MAX)
        abort(); // chose an unhealthy member or one that does not fit
    int rc = fleet_commit(&ms[0], d);
    if ((rc == 0) != fits)
        abort(); // commit disagrees with fit
    for (size_t j = 0; j < S_NODES; j++)
        for (int r = 0; r < FLEET_RES_N; r++)
            if (na[j].used.v[r] > na[j].alloc.v[r])
                abort(); // a node over its allocatable
    s_member_free(&ms[0]);
    s_member_free(&ms[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t err;
    buf_init(&err, 4096);
    json_t *j = NULL;
    if (jx_parse((const char *)data, size, "fuzz", &j, &err) != 0) {
        buf_free(&err);
        return 0;
    }
    const char *kind = json_string_value(json_object_get(j, "kind"));
    fleet_demand_t d;
    int rc = kind && strcmp(kind, "RayJob") == 0 ? fleet_demand_rayjob(j, &d, &err)
             : kind && strcmp(kind, "RayService") == 0
                 ? fleet_demand_rayservice(j, &d, &err)
                 : fleet_demand_raycluster(json_object_get(j, "spec"), &d, &err);
    if (rc != 0) {
        if (d.npods != 0 || d.pods != NULL || !buf_str(&err)[0])
            abort(); // a refusal left pods behind or said nothing
    } else {
        if (d.npods > FLEET_DEMAND_MAX_PODS)
            abort();
        fleet_res_t sum = {{0}};
        for (size_t i = 0; i < d.npods; i++) {
            if (!d.pods[i].group)
                abort();
            fleet_res_add(&sum, &d.pods[i].req);
        }
        if (memcmp(&sum, &d.total, sizeof(sum)) != 0)
            abort(); // the total is not the sum of the pods
        s_check_place(&d);
    }
    fleet_demand_free(&d);
    json_decref(j);
    buf_free(&err);
    return 0;
}
