/*
 * mtls: KubeRay's mTLS for a RayCluster (spec.tlsOptions.enabled, gate RayClusterMTLS, alpha), as
 * pure functions (../shared/spec/kuberay-behavior.md §4.5, §1.7, §1.8; KubeRay
 * raycluster_mtls_controller.go and common/pod.go configureTLS / SetContainerTLSConfig).
 *
 * cert-manager objects (cert-manager.io/v1) in the RayCluster's namespace, each with a controller
 * ownerReference to the RayCluster and the labels ray.io/cluster=<c> and
 * app.kubernetes.io/created-by=kuberay-operator:
 *   Issuer ray-selfsigned-issuer-<c> (selfSigned),
 *   Certificate ray-ca-certificate-<c> (isCA, commonName ray-ca-<c>, duration 87600h = 10 years,
 *     renewBefore 720h = 30 days, secret <c>-ca-secret-<uid[:8]>, issued by the self-signed
 * Issuer), Issuer ray-ca-issuer-<c> (ca.secretName = the CA secret), Certificate ray-head-cert-<c>
 * → Secret ray-head-secret-<c>: dnsNames localhost and the head Service FQDN, ipAddresses 127.0.0.1
 * and the head pods' IPs; Certificate ray-worker-cert-<c> → Secret ray-worker-secret-<c>: dnsNames
 * localhost, ipAddresses 127.0.0.1 and every worker pod IP; leaf duration 2160h, renewBefore 360h,
 * issuer ray-ca-issuer-<c>. Every Certificate carries secretTemplate.labels ray.io/cluster=<c>, so
 * its Secret is labelled for the cluster too. (The CA commonName and the secretTemplate are
 * rayfleet's choices; the names, durations, SANs and issuers are KubeRay's.)
 *
 * Pod parts (mtls_configure_pod(), called by podbuild after token auth): volume `ray-tls` (the
 * head or worker leaf Secret), mounted read-only at /etc/ray/tls in the Ray container and in
 * `wait-gcs-ready`, with the env RAY_USE_TLS=1, RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY and
 * RAY_TLS_CA_CERT (each only when absent, in that order); and the init container
 * `wait-for-tls-ip-san` PREPENDED: the Ray container's image, imagePullPolicy and securityContext,
 * `sh -c` with KubeRay's openssl loop (every 5 s until the certificate lists the pod IP), env
 * POD_IP (fieldRef status.podIP), the `ray-tls` mount, requests = limits = cpu 50m, memory 64Mi.
 *
 * Readiness (the reconciler holds pod creation until it holds): both leaf Certificates Ready True
 * with the condition's observedGeneration equal to metadata.generation, and both Secrets holding
 * non-empty tls.crt, tls.key and ca.crt.
 *
 * Purity: no I/O, no clock, no globals; inputs borrowed, results are new trees.
 */
#ifndef RF_MTLS_H
#define RF_MTLS_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>

#define MTLS_GROUP "cert-manager.io"
#define MTLS_VERSION "v1"
#define MTLS_VOLUME "ray-tls"
#define MTLS_MOUNT_PATH "/etc/ray/tls"
#define MTLS_INIT_CONTAINER "wait-for-tls-ip-san"
#define MTLS_CA_DURATION "87600h" /* 10 years */
#define MTLS_CA_RENEW_BEFORE "720h" /* 30 days */
#define MTLS_LEAF_DURATION "2160h"
#define MTLS_LEAF_RENEW_BEFORE "360h"
#define MTLS_LOOPBACK_IP "127.0.0.1" /* in every leaf certificate */
#define MTLS_NAME_MAX 320 /* buffer for any name below */

/* Which leaf certificate. */
typedef enum { MTLS_HEAD = 0, MTLS_WORKER = 1 } mtls_node_t;

/* spec.tlsOptions.enabled of a RayCluster (or of its spec when given the spec itself). */
bool mtls_enabled(const json_t *raycluster);

/* Names (written to out[MTLS_NAME_MAX]; the CA secret needs metadata.uid). */
void mtls_selfsigned_issuer_name(const char *cluster, char *out);
void mtls_ca_issuer_name(const char *cluster, char *out);
void mtls_ca_cert_name(const char *cluster, char *out);
void mtls_ca_secret_name(const json_t *raycluster, char *out);
void mtls_cert_name(const char *cluster, mtls_node_t node, char *out);
void mtls_secret_name(const char *cluster, mtls_node_t node, char *out);

/* The objects (new trees; NULL when out of memory or without metadata.name). */
json_t *mtls_selfsigned_issuer(const json_t *raycluster);
json_t *mtls_ca_issuer(const json_t *raycluster);
json_t *mtls_ca_certificate(const json_t *raycluster);
/* `fqdn` is the head Service FQDN (head only; NULL for workers); `ips` the pods' IPs (array of
 * strings, any order, duplicates allowed, may be NULL): the certificate lists 127.0.0.1 then
 * the sorted unique IPs. */
json_t *mtls_leaf_certificate(const json_t *raycluster, mtls_node_t node, const char *fqdn,
                              const json_t *ips);

/* The pod IPs (status.podIP, not terminating) of the head (node MTLS_HEAD) or worker pods in
 * `pods` (array of Pods labelled ray.io/node-type), as a new array. */
json_t *mtls_pod_ips(const json_t *pods, mtls_node_t node);

/* True when the observed Certificate's spec lacks what `want` (a built leaf) asks for: its
 * dnsNames or ipAddresses differ. */
bool mtls_leaf_differs(const json_t *have, const json_t *want);

/* Certificate Ready True at its current generation. */
bool mtls_cert_ready(const json_t *cert);

/* Secret data holds non-empty tls.crt, tls.key and ca.crt. */
bool mtls_secret_complete(const json_t *secret);

/* SetContainerTLSConfig: the TLS env (when absent) and the ray-tls mount (unless a mount has that
 * name or path). Returns 0 or ERR_NOMEM. */
int mtls_container(json_t *container);

/* configureTLS on a pod spec being built (containers[0] is the Ray container): nothing when
 * tlsOptions is not enabled. Returns 0, ERR_INVAL (no container) or ERR_NOMEM. */
int mtls_configure_pod(const json_t *raycluster, mtls_node_t node, json_t *pod_spec);

/* Self-test. */
int mtls_test(bool verbose);

#endif
