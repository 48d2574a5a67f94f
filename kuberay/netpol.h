/*
 * netpol: KubeRay's NetworkPolicies of a RayCluster (gate RayClusterNetworkPolicy, spec §4.6,
 * KubeRay's networkpolicy_controller.go). Pure builders: RayCluster in, NetworkPolicies out.
 *
 * With spec.networkPolicy set, one policy for the head, "<cluster>-head" (podSelector
 * ray.io/cluster=<c>, ray.io/node-type=head), and one per worker group, "<cluster>-workers-<group>"
 * (podSelector adds ray.io/node-type=worker and ray.io/group=<group>). Labels ray.io/cluster,
 * ray.io/group ("headgroup" for the head), app.kubernetes.io/name=kuberay,
 * app.kubernetes.io/created-by=kuberay-operator; a controller owner reference to the RayCluster.
 * Mode (default DenyAll): DenyAll and DenyAllIngress add policyType Ingress with the base rule
 * "from pods with ray.io/cluster=<c>" (the head also: from the owning RayJob's submitter pods,
 * ray.io/originated-from-cr-name=<job> and ray.io/originated-from-crd=RayJob, on TCP to the
 * dashboard port (rayStartParams dashboard-port, else 8265), only when the RayCluster carries
 * ray.io/job-submission-mode=K8sJobMode and a controller owner reference to a ray.io RayJob), then
 * the user's ingressRules; DenyAll and DenyAllEgress add policyType Egress with "to pods with
 * ray.io/cluster=<c>", then the user's egressRules. The head takes networkPolicy.head's rules; a
 * worker group takes its networkPolicy.workerGroups entry when there is one (it replaces, never
 * merges), else networkPolicy.worker. Ports without a protocol get TCP (KubeRay's
 * normalizeNetworkPolicyPorts, the API server's default), so a built spec compares equal to the
 * stored one. DNS and API-server egress are never added.
 */
#ifndef RF_NETPOL_H
#define RF_NETPOL_H

#include <jansson.h>
#include <stdbool.h>

#define NETPOL_MODE_DENY_ALL "DenyAll"
#define NETPOL_MODE_DENY_INGRESS "DenyAllIngress"
#define NETPOL_MODE_DENY_EGRESS "DenyAllEgress"

/* Event reasons (KubeRay's utils constants). */
#define NETPOL_REASON_CREATED "CreatedNetworkPolicy"
#define NETPOL_REASON_UPDATED "UpdatedNetworkPolicy"
#define NETPOL_REASON_DELETED "DeletedNetworkPolicy"
#define NETPOL_REASON_FAILED_CREATE "FailedToCreateNetworkPolicy"
#define NETPOL_REASON_FAILED_UPDATE "FailedToUpdateNetworkPolicy"
#define NETPOL_REASON_FAILED_DELETE "FailedToDeleteNetworkPolicy"
#define NETPOL_REASON_COLLISION "NetworkPolicyNameCollision"

/* True when the RayCluster `rc` asks for NetworkPolicies (spec.networkPolicy is an object). */
bool netpol_wanted(const json_t *rc);

/* The desired NetworkPolicies of `rc` (a new array: the head's first, then one per worker group
 * in spec order); an empty array when netpol_wanted() is false; NULL when out of memory. */
json_t *netpol_build(const json_t *rc);

/* True when the live policy `live` already is `want` (labels and spec equal, after the port
 * protocol default on both sides): no update needed. */
bool netpol_same(const json_t *want, const json_t *live);

/* Self-test. */
int netpol_test(bool verbose);

#endif
