/*
 * names: KubeRay's object-name and label-value rules, as pure string functions.
 *
 * Every RayCluster child object is named exactly as KubeRay names it (ray-operator/controllers/ray/
 * utils/util.go): CheckName shortens to the LAST 50 bytes and replaces a leading digit, then a
 * leading punctuation character, by 'r'; CheckLabel keeps the last 63 bytes and replaces a leading
 * punctuation character; PodName truncates the prefix to its FIRST 50 bytes, appends "-head" or
 * "-worker", lowercases and adds "-" for generateName. "Punctuation" is Go's unicode.IsPunct on
 * ASCII: ! " # % & ' ( ) * , - . / : ; ? @ [ \ ] _ { } (not $ + < = > ^ ` | ~, which are symbols).
 *
 * Every function returns a new malloc'd NUL-terminated string the caller free()s, or NULL when an
 * argument is NULL or an allocation fails. Empty input gives an empty string (Go would panic).
 */
#ifndef RF_NAMES_H
#define RF_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* CheckName: the most bytes an object name keeps (63 - ("-worker-" + 5 random chars)). */
#define NAMES_MAX_NAME 50
/* CheckLabel: the most bytes a label value keeps. */
#define NAMES_MAX_LABEL 63
/* PodName: the most bytes of the prefix kept (first bytes, unlike CheckName). */
#define NAMES_MAX_POD_PREFIX 50
/* ValidateRayClusterMetadata: the longest RayCluster name accepted. */
#define NAMES_MAX_CLUSTER_NAME 53
/* The most bytes a composed name may have before shortening (bounds the work buffers). */
#define NAMES_MAX_INPUT (64u * 1024u)

/* Node types used in names, identifiers and the ray.io/node-type label. */
#define NAMES_NODE_HEAD "head"
#define NAMES_NODE_WORKER "worker"
#define NAMES_NODE_REDIS_CLEANUP "redis-cleanup"

/* True when Go's unicode.IsPunct would be true for the ASCII byte `c`. */
bool names_is_punct(unsigned char c);

/* CheckName(s): last NAMES_MAX_NAME bytes; leading digit -> 'r'; then leading punctuation -> 'r'.
 */
char *names_check_name(const char *s);

/* CheckLabel(s) (and TrimJobName): last NAMES_MAX_LABEL bytes; leading punctuation -> 'r'. */
char *names_check_label(const char *s);

/* TrimJobName(s) == CheckLabel(s). */
char *names_trim_job_name(const char *s);

/* utils.PodName: lower(prefix[:50] + "-" + node_type) + ("-" if generate). `node_type` is
 * NAMES_NODE_HEAD or NAMES_NODE_WORKER. */
char *names_pod_name(const char *prefix, const char *node_type, bool generate);

/* Head pod generateName "<cluster>-head-" (generate=true) or fixed name "<cluster>-head". */
char *names_head_pod(const char *cluster, bool generate);

/* Worker pod generateName "<cluster>-<group>-worker-" (prefix "<cluster>-<group>" truncated). */
char *names_worker_pod(const char *cluster, const char *group, bool generate);

/* GenerateHeadServiceName for a RayCluster: spec.headGroupSpec.headService.metadata.name when
 * `spec` (the RayCluster .spec, may be NULL) sets it non-empty, else "<cluster>-head-svc"
 * (not shortened, as in KubeRay). */
char *names_head_service(const char *cluster, const json_t *spec);

/* Headless worker service "<cluster>-headless". */
char *names_headless_service(const char *cluster);

/* Serve service "<cluster>-serve-svc" (GenerateServeServiceName). */
char *names_serve_service(const char *cluster);

/* Serve selector label value "<cluster>-serve" (GenerateServeServiceLabel). */
char *names_serve_label(const char *cluster);

/* Ingress name CheckName("<cluster>-head-ingress"). */
char *names_ingress(const char *cluster);

/* Route name: "<cluster>-head-route" truncated to its first 51-len(namespace) bytes, then
 * CheckName (CheckRouteName). */
char *names_route(const char *cluster, const char *ns);

/* Identifier label value CheckLabel("<cluster>-<node_type>") (ray.io/identifier). */
char *names_identifier(const char *cluster, const char *node_type);

/* Redis cleanup Job name TrimJobName("<cluster>-redis-cleanup"). */
char *names_redis_cleanup_job(const char *cluster);

/* Operator-managed GCS PVC "<cluster>-gcs-pvc". */
char *names_gcs_pvc(const char *cluster);

/* NetworkPolicy of the head "<cluster>-head" (gate RayClusterNetworkPolicy, §4.6). */
char *names_netpol_head(const char *cluster);

/* NetworkPolicy of a worker group "<cluster>-workers-<group>". */
char *names_netpol_workers(const char *cluster, const char *group);

/* Autoscaler ServiceAccount CheckName(head template serviceAccountName, else cluster). `spec` is
 * the RayCluster .spec (may be NULL). */
char *names_autoscaler_sa(const char *cluster, const json_t *spec);

/* Autoscaler Role and RoleBinding name CheckName(<cluster>); auth Secret name likewise. */
char *names_autoscaler_role(const char *cluster);

/* Self-test. */
int names_test(bool verbose);

#endif
