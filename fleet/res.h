/*
 * res: a resource vector, the unit of federation's arithmetic (what a Ray cluster needs, what a
 * member has free, what a tenant uses and may use).
 *
 * Four dimensions: CPU in millicores, memory in bytes, accelerators in devices (every resource
 * name ending in "/gpu", e.g. nvidia.com/gpu and amd.com/gpu, and google.com/tpu, summed), and
 * pods. Other extended resources are ignored by federation (the member's own scheduler still
 * honours them). Quantities are parsed by rcstatus_parse_quantity (Kubernetes' rules); sums
 * saturate at INT64_MAX instead of overflowing.
 *
 * Purity: no I/O, no clock, no globals.
 */
#ifndef RF_FLEET_RES_H
#define RF_FLEET_RES_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    FLEET_RES_CPU = 0, /* millicores */
    FLEET_RES_MEMORY, /* bytes */
    FLEET_RES_GPU, /* accelerator devices */
    FLEET_RES_PODS, /* pods */
    FLEET_RES_N
} fleet_resname_t;

typedef struct {
    int64_t v[FLEET_RES_N];
} fleet_res_t;

/* The dimension's name as users write it in quotas: "cpu", "memory", "gpu", "pods". */
const char *fleet_res_name(fleet_resname_t r);

/* The dimension a Kubernetes resource name counts in ("cpu", "memory", "nvidia.com/gpu", ...,
 * "pods"), or -1 when federation ignores it. */
int fleet_res_of(const char *k8s_name);

/* Adds the Kubernetes ResourceList `list` ({"cpu":"500m","memory":"1Gi","nvidia.com/gpu":1};
 * values strings or integers) to *out. NULL or {} adds nothing. Returns 0, or ERR_INVAL with one
 * line in `err` naming the resource and its value when a quantity does not parse or is
 * negative. */
int fleet_res_add_list(fleet_res_t *out, const json_t *list, buf_t *err);

/* Parses a quota written by a user: a map of "cpu", "memory", "gpu" (or any accelerator
 * resource name), "pods" to quantities. An unknown key is an error naming it. */
int fleet_res_parse_quota(const json_t *map, fleet_res_t *out, buf_t *err);

void fleet_res_add(fleet_res_t *a, const fleet_res_t *b); /* a += b, saturating */
void fleet_res_sub(fleet_res_t *a, const fleet_res_t *b); /* a -= b, saturating */
void fleet_res_scale(fleet_res_t *a, int64_t k); /* a *= k (k >= 0), saturating */
bool fleet_res_fits(const fleet_res_t *need, const fleet_res_t *avail); /* need <= avail, each */
bool fleet_res_is_zero(const fleet_res_t *a);

/* The largest use[i]/total[i] over the dimensions where total[i] > 0 (DRF's dominant share);
 * a dimension with use > 0 and total 0 counts as share 1e9 (never satisfiable). `which`, when
 * not NULL, receives the dominant dimension. */
double fleet_res_dominant_share(const fleet_res_t *use, const fleet_res_t *total, int *which);

/* "cpu=1500m,memory=4Gi,gpu=1,pods=3" (zero dimensions left out; "0" when all are zero) into
 * out[n]; returns the length written (truncated text ends in "..."). */
size_t fleet_res_format(const fleet_res_t *r, char *out, size_t n);

#endif
