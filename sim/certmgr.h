/*
 * certmgr: kubesim's simulated cert-manager (cert-manager.io/v1), over objstore (no HTTP).
 *
 * It acts only once a user has installed the cert-manager CRDs (certificates, and issuers and/or
 * clusterissuers of group cert-manager.io, e.g. tests/crds/cert-manager.yaml); until then a tick
 * costs one lookup. Real X.509 through OpenSSL (sim/tls: tls_issue()).
 *
 * - Issuer / ClusterIssuer: spec.selfSigned → status Ready True (reason IsReady); spec.ca
 *   (secretName, in the Issuer's namespace, for a ClusterIssuer in CERTMGR_CLUSTER_NS) → Ready
 *   True (KeyPairVerified, "Signing CA verified") once that Secret holds tls.crt and tls.key,
 *   else Ready False (ErrGetKeyPair, "Error getting keypair for CA issuer: secrets \"x\" not
 *   found"); any other type → Ready False (ErrConfigUnsupported). observedGeneration is set.
 * - Certificate: issued into spec.secretName (type kubernetes.io/tls, data tls.crt, tls.key and
 *   ca.crt: the CA certificate for a CA issuer, the certificate itself when self-signed) with
 *   commonName, dnsNames, ipAddresses, isCA, duration (default 2160h), renewBefore (default a
 *   third of duration), privateKey.algorithm RSA (default, size 2048) / ECDSA (256|384);
 *   secretTemplate labels and annotations are copied to the Secret, plus cert-manager's label
 *   controller.cert-manager.io/fao and annotations cert-manager.io/{certificate-name,
 *   issuer-name, issuer-kind, issuer-group, common-name, alt-names, ip-sans, uri-sans}.
 *   Status: conditions Ready True (reason Ready, "Certificate is up to date and has not expired",
 *   observedGeneration), notBefore, notAfter, renewalTime, revision. While its issuer is missing
 *   or not Ready: Ready False (DoesNotExist, "Issuing certificate as Secret does not exist") and
 *   Issuing True. It is issued again when the Secret is missing or lacks a key, when the
 *   Certificate's generation differs from the Ready condition's observedGeneration (a spec
 *   change), when its issuer changed, and at renewalTime.
 *   Not modelled: CertificateRequests / Orders, ACME/Vault/Venafi issuers, usages, keystores,
 *   revisionHistoryLimit, the owner reference option, private key rotation policy (always a new
 *   key), and Secrets edited by hand (a changed tls.crt is not compared against the spec).
 *
 * The controller runs on a periodic CERTMGR_TICK_MS timer that skips work unless the store's
 * resourceVersion moved or a renewal is due.
 */
#ifndef RF_CERTMGR_H
#define RF_CERTMGR_H

#include "loop.h"
#include "objstore.h"

#include <stdbool.h>

#define CERTMGR_GROUP "cert-manager.io"
#define CERTMGR_TICK_MS 100 /* period of the polling timer */
#define CERTMGR_CLUSTER_NS "cert-manager" /* --cluster-resource-namespace of ClusterIssuers */
#define CERTMGR_DEFAULT_DURATION_S (2160LL * 3600) /* cert-manager's default 90 days */
#define CERTMGR_READY_MESSAGE "Certificate is up to date and has not expired"

typedef struct certmgr certmgr_t;

/* Starts the simulated cert-manager on `store` and `loop` (NULL = the caller drives
 * certmgr_tick()). Returns NULL when out of memory. */
certmgr_t *certmgr_new(loop_t *loop, objstore_t *store);

/* Stops the timer and frees everything (objects stay). NULL-safe; NULLs *cp. */
void certmgr_destroy(certmgr_t **cp);

/* Syncs Issuers, ClusterIssuers and Certificates now (when the store moved or a renewal is due).
 * Returns the number of store writes (>= 0). */
int certmgr_tick(certmgr_t *c);

/* Self-test. */
int certmgr_test(bool verbose);

#endif
