/*
 * krmetrics: KubeRay's own metrics (controllers/ray/metrics/ (Go), KubeRay 1.5, with the uid
 * label), computed from the objects themselves, as KubeRay computes its info and condition
 * gauges by listing its CRs at scrape time.
 *
 * A handle serves one kind and registers its families in a metrics registry:
 *   RayCluster  kuberay_cluster_info{name,namespace,uid,owner_kind} 1 (owner_kind: the
 *               ray.io/originated-from-crd label, else "None");
 *               kuberay_cluster_condition_provisioned{name,namespace,uid,condition} 1
 *               (condition "true"/"false": RayClusterProvisioned is True);
 *               kuberay_cluster_provisioned_duration_seconds{name,namespace,uid}: the
 *               RayClusterProvisioned=True condition's lastTransitionTime minus
 *               creationTimestamp (KubeRay sets the gauge once, in the reconcile that first sees
 *               the condition True, to now - creationTimestamp; the condition keeps that moment,
 *               at second precision, and Provisioned never goes back to False).
 *   RayJob      kuberay_job_info{name,namespace,uid} 1;
 *               kuberay_job_deployment_status{name,namespace,uid,deployment_status} 1;
 *               kuberay_job_execution_duration_seconds{name,namespace,uid,job_deployment_status,
 *               retry_count}: for a RayJob whose status is Complete or Failed, status.endTime
 *               minus status.startTime, retry_count status.failed (0 when unset). KubeRay also
 *               keeps a Retrying sample in memory until the next transition; an object carries
 *               no trace of it, so rayfleet does not export it.
 *   RayService  kuberay_service_info{name,namespace,uid} 1;
 *               kuberay_service_condition_ready{name,namespace,uid,condition} 1;
 *               kuberay_service_condition_upgrade_in_progress{name,namespace,uid,condition} 1
 *               (condition "true"/"false": Ready, UpgradeInProgress is True).
 *
 * Use: krmetrics_begin() empties the families, then krmetrics_object() once per object (the
 * caller filters, e.g. a replica passes only the keys it owns). Families hold at most
 * KRMETRICS_MAX_OBJECTS series each; past that the registry counts the refusals in
 * rayfleet_metrics_series_dropped_total{metric} (common/metrics).
 *
 * The signatures take the handle as void * so a controller service can hand them to ctrlsvc as
 * they are (ctrlsvc_scrape_t).
 */
#ifndef RF_KRMETRICS_H
#define RF_KRMETRICS_H

#include "metrics.h"

#include <stdbool.h>

#define KRMETRICS_MAX_OBJECTS 100000 /* series per family: objects of one kind per replica */

/* A handle for `kind` ("RayCluster", "RayJob" or "RayService") with its families registered in
 * reg. NULL for another kind, a family already registered, or out of memory. */
void *krmetrics_open(metrics_t *reg, const char *kind);

/* Empties the families (start of a scrape). */
void krmetrics_begin(void *km);

/* Adds the series of one object from its JSON text (the fields read are projected, not the whole
 * object parsed). Returns 0, ERR_PARSE (not JSON; nothing added) or ERR_NOMEM. A series refused at
 * the bound is counted by the registry, not an error. */
int krmetrics_object(void *km, const char *ns, const char *name, const char *uid, const char *json);

/* Frees the handle (the families stay in the registry). NULL-safe. */
void krmetrics_close(void *km);

/* Self-test. */
int krmetrics_test(bool verbose);

#endif
