/*
 * conds: metav1.Condition lists as apimachinery's meta.SetStatusCondition and friends keep them,
 * on jansson arrays: one entry per type; lastTransitionTime moves only when status changes;
 * reason and message always follow. Shared by the RayCluster, RayService status calculations.
 */
#ifndef RF_CONDS_H
#define RF_CONDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The condition of `type` in conds (borrowed), or NULL; *idx gets its index when idx is set. */
json_t *conds_find(const json_t *conds, const char *type, size_t *idx);

/* True when the condition of `type` has status "True". */
bool conds_true(const json_t *conds, const char *type);

/* meta.SetStatusCondition: adds or updates the condition of `type` (msg NULL: ""); `now` is the
 * RFC 3339 time used when it is added or its status changes. generation >= 0 also sets
 * observedGeneration. Returns 0 or ERR_NOMEM. */
int conds_set(json_t *conds, const char *type, const char *status, const char *reason,
              const char *msg, const char *now, int64_t generation);

/* meta.RemoveStatusCondition. */
void conds_remove(json_t *conds, const char *type);

int conds_test(bool verbose);

#endif
