/*
 * pbkube: decodes the Kubernetes protobuf encoding ("k8s\0" + runtime.Unknown{typeMeta, raw})
 * of the few built-in kinds kubectl's typed commands send to kubesim, into the JSON objects the
 * API server stores: v1 Namespace and ServiceAccount (`kubectl create ns|sa`),
 * authentication.k8s.io/v1 TokenRequest (`kubectl create token`), and rbac.authorization.k8s.io/v1
 * Role, ClusterRole, RoleBinding and ClusterRoleBinding (`kubectl create role|clusterrole|
 * rolebinding|clusterrolebinding`). Only the fields those commands set are read (ObjectMeta's
 * name, generateName, namespace, labels, annotations, finalizers; the kinds' own fields); others
 * are skipped, as are empty strings (JSON's omitempty). Any other kind is refused, so the API
 * server keeps answering 415 for it.
 */
#ifndef RF_PBKUBE_H
#define RF_PBKUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PBKUBE_MAX_DEPTH 8 /* nesting bound */

/* Decodes `len` bytes. Returns 0 and *out (a new object with apiVersion and kind), ERR_NOTFOUND
 * for a kind it does not decode (kind named in *kind_out when not NULL, up to 127 bytes), or
 * ERR_PARSE for malformed bytes. */
int pbkube_decode(const void *data, size_t len, json_t **out, char *kind_out);

/* Self-test. */
int pbkube_test(bool verbose);

#endif
