/*
 * rbac: kubesim's authorizer, Kubernetes' RBAC semantics (kube-apiserver 1.32) over the Roles,
 * ClusterRoles, RoleBindings and ClusterRoleBindings held in the objstore.
 *
 * - Request attributes as kube's RequestInfoFactory derives them from method, path and query:
 *   /api/v1/... and /apis/<group>/<version>/... are resource requests (namespace, resource, name,
 *   subresource; verb get/list/watch/create/update/patch/delete/deletecollection, `watch=true`
 *   or /watch/ lists are watch, a nameless DELETE is deletecollection, a fieldSelector
 *   metadata.name=N names the object); everything else (/api, /apis, /apis/<g>, /version,
 *   /healthz, ...) is a non-resource request whose verb is the lower-cased method.
 * - A request is allowed when the identity is in system:masters, or when a rule of a role bound to
 *   it allows it: ClusterRoles through ClusterRoleBindings (any namespace and the cluster scope),
 *   Roles and ClusterRoles through RoleBindings (their namespace only). A rule matches on verbs,
 *   apiGroups, resources (`res`, `res/sub`, `*`, `*\/sub`), resourceNames, or nonResourceURLs
 *   (exact or `prefix*`), `*` being a wildcard everywhere. Subjects: User, Group, ServiceAccount
 *   (namespace defaulting to the RoleBinding's).
 * - The bootstrap rules every authenticated user has (system:discovery, system:basic-user,
 *   system:public-info-viewer) are built in; they are not objects in the store.
 * - A refusal's message is the API server's: `pods is forbidden: User "u" cannot list resource
 *   "pods" in API group "" in the namespace "ns"`, `... at the cluster scope`, `forbidden: User
 *   "u" cannot get path "/x"`, followed by `: RBAC: <errors>` when a binding named a missing role.
 * - Refusals are counted by user, verb and resource (rbac_denied_json).
 * Aggregated ClusterRoles (aggregationRule) are not expanded.
 */
#ifndef RF_RBAC_H
#define RF_RBAC_H

#include "objstore.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define RBAC_USER_MAX 320 /* user name bound */
#define RBAC_GROUPS_MAX 8 /* groups of one identity */
#define RBAC_FIELD_MAX 256 /* namespace, resource, name ... bound */
#define RBAC_PATH_MAX 1024 /* non-resource path bound */
#define RBAC_MSG_MAX 2048 /* refusal message bound */

/* An authenticated identity. */
typedef struct {
    char name[RBAC_USER_MAX]; /* user name, e.g. system:serviceaccount:ns:sa */
    char groups[RBAC_GROUPS_MAX][RBAC_USER_MAX]; /* its groups */
    int ngroups; /* their number */
} rbac_user_t;

/* A request's attributes (kube's RequestInfo). */
typedef struct {
    bool resource_request; /* false: a non-resource path */
    char verb[24]; /* kube verb, or the lower-cased method for non-resource paths */
    char path[RBAC_PATH_MAX]; /* the request path (non-resource requests) */
    char group[RBAC_FIELD_MAX]; /* API group ("" = core) */
    char version[64]; /* API version */
    char ns[RBAC_FIELD_MAX]; /* namespace ("" = cluster scope) */
    char resource[RBAC_FIELD_MAX]; /* plural resource */
    char subresource[RBAC_FIELD_MAX]; /* subresource ("" = none) */
    char name[RBAC_FIELD_MAX]; /* object name ("" = none) */
} rbac_attrs_t;

typedef struct rbac rbac_t; /* the authorizer's counters (opaque) */

/* Fills the identity of a service account: system:serviceaccount:<ns>:<name>, groups
 * system:serviceaccounts, system:serviceaccounts:<ns>, system:authenticated. */
void rbac_user_serviceaccount(rbac_user_t *u, const char *ns, const char *name);

/* True when the identity is in system:masters (everything allowed). */
bool rbac_user_is_master(const rbac_user_t *u);

/* Derives the attributes of a request: method, the percent-decoded path, the raw query (may be
 * NULL). Returns 0, or ERR_INVAL when a resource path cannot be parsed (e.g. /api/v1/watch). */
int rbac_request_info(const char *method, const char *path, const char *query, rbac_attrs_t *out);

/* Decides: true when allowed. When refused, `msg` (may be NULL) receives the API server's
 * message (see above). Reads the RBAC objects from `store`. */
bool rbac_authorize(objstore_t *store, const rbac_user_t *u, const rbac_attrs_t *at, char *msg,
                    size_t msg_len);

/* Kube's escalation prevention for a write of a Role/ClusterRole (`rules`) or a
 * RoleBinding/ClusterRoleBinding (the rules of the role it references) in namespace `ns` ("" for
 * the cluster-scoped kinds): allowed when the identity holds every permission granted (each
 * rule broken down to one verb, group, resource and name), or may `escalate` (roles) / `bind`
 * (bindings) that role. `resource` is the written resource ("roles", "clusterroles",
 * "rolebindings", "clusterrolebindings"), `name` the object's, `role_kind`/`role_name` the
 * binding's roleRef (NULL for roles). When refused, `msg` receives kube's message:
 * `<resource>.rbac.authorization.k8s.io "<name>" is forbidden: user "u" (groups=["g" ...]) is
 * attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["pods"],
 * Verbs:["get"]}...`. */
bool rbac_escalation_ok(objstore_t *store, const rbac_user_t *u, const char *resource,
                        const char *ns, const char *name, const json_t *rules,
                        const char *role_kind, const char *role_name, char *msg, size_t msg_len);

/* Counters of refused requests. */
rbac_t *rbac_new(void);
void rbac_destroy(rbac_t **rp);

/* Counts one refusal of (user, verb, resource[/subresource] or path). */
void rbac_count_denied(rbac_t *r, const rbac_user_t *u, const rbac_attrs_t *at);

/* The refusals so far: {"total": N, "denied": [{"user","verb","resource","group","namespace",
 * "count"}...]} (a non-resource refusal has "path" instead of resource/group). New reference. */
json_t *rbac_denied_json(const rbac_t *r);

/* Forgets every counted refusal. */
void rbac_reset(rbac_t *r);

/* Self-test. */
int rbac_test(bool verbose);

#endif
