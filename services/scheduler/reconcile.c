/*
 * reconcile: the RayCluster reconciler (see reconcile.h).
 */
#include "reconcile.h"

#include "batchsched.h"
#include "bounds.h"
#include "err.h"
#include "hash.h"
#include "jproj.h"
#include "json.h"
#include "log.h"
#include "mtls.h"
#include "names.h"
#include "netpol.h"
#include "objbuild.h"
#include "rcstatus.h"
#include "rftime.h"
#include "yaml.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_NAME_MAX RECONCILE_KEY_MAX /* longest object name handled */
#define S_RAND_CHARS "bcdfghjklmnpqrstvwxz2456789" /* k8s rand.String alphabet */
#define S_RAND_LEN 5 /* multi-host replica name suffix */
#define S_MS_PER_S 1000 /* milliseconds per second */
#define S_SET_TEXT_MAX ((size_t)64 << 20) /* longest text hashed for a desired set */

/* Stages of a pass, in KubeRay's order (s_stages). */
enum {
    S_MTLS_API = 0,
    S_SA,
    S_ROLE,
    S_ROLE_BINDING,
    S_INGRESS,
    S_AUTH_SECRET,
    S_HEAD_SVC,
    S_HEADLESS_SVC,
    S_SERVE_SVC,
    S_GCS_PVC,
    S_MTLS,
    S_PODGROUP,
    S_HEAD_POD,
    S_PODS,
    S_NETPOL,
    S_STATUS,
    S_STAGES
};

/* The children of a RayCluster (observed.db rows, s_load_children()) are parsed keeping only
 * these paths (jproj.h; arrays are transparent, so "spec.containers.name" keeps each container's
 * name). They list EVERY field the pass reads from a child, directly or through a helper:
 *   pods: s_label() (ray.io/node-type, ray.io/group, worker-group-replica-name/-index),
 *         s_ann() (kuberay-version, recreate hash: annotation keys contain dots, so the whole
 *         map), metadata.name, metadata.deletionTimestamp, metadata.resourceVersion (the status
 *         stage's reload reuses unchanged rows), spec.restartPolicy, status.phase (s_head);
 *         rcstatus_should_delete_pod() (status.phase, spec.containers[0].name,
 *         status.containerStatuses[].name/state, spec.restartPolicy); rcstatus_calculate()
 *         (labels, status.phase, status.conditions, status.podIP, metadata.name,
 *         status.containerStatuses[0].name/state.waiting/state.terminated of the head);
 *         rcstatus_scale_group() (metadata.name, the should-delete fields).
 *   services: s_label() (ray.io/cluster, node-type, identifier), metadata.name (s_has_service),
 *         rcstatus_calculate() (spec.ports[].name/nodePort/targetPort, spec.clusterIP,
 *         metadata.name).
 *   jobs: s_label() (ray.io/cluster, node-type), status.conditions (s_job_finished).
 * A new read of a child field (here, in rcstatus.c or any helper given p->pods, p->svcs, p->jobs
 * or one of their elements) MUST add its path here, or it silently reads nothing; the self-test
 * (s_t_children) checks that the decisions and the status from projected children equal those
 * from the full objects over every upstream RayCluster sample. */
static const char *const s_keep_pod[] = {"metadata.name",
                                         "metadata.resourceVersion",
                                         "metadata.labels",
                                         "metadata.annotations",
                                         "metadata.deletionTimestamp",
                                         "spec.restartPolicy",
                                         "spec.containers.name",
                                         "status.phase",
                                         "status.podIP",
                                         "status.conditions",
                                         "status.containerStatuses.name",
                                         "status.containerStatuses.state",
                                         NULL};
static const char *const s_keep_svc[] = {"metadata.name",   "metadata.resourceVersion",
                                         "metadata.labels", "spec.ports",
                                         "spec.clusterIP",  NULL};
static const char *const s_keep_job[] = {"metadata.name", "metadata.resourceVersion",
                                         "metadata.labels", "status.conditions", NULL};
/* NetworkPolicies (s_stage_netpol): compared with the built ones (labels, spec) and updated from
 * the live object (name, namespace, resourceVersion, annotations, owner references kept). */
static const char *const s_keep_netpol[] = {"metadata.name",
                                            "metadata.namespace",
                                            "metadata.resourceVersion",
                                            "metadata.labels",
                                            "metadata.annotations",
                                            "metadata.ownerReferences",
                                            "spec",
                                            NULL};

/* Child kinds, indexes of reconciler_t.proj. */
enum { S_CHILD_POD = 0, S_CHILD_SVC, S_CHILD_JOB, S_CHILD_NETPOL, S_CHILD_KINDS };

typedef struct pass pass_t;

struct reconciler {
    loop_t *loop; /* the event loop (borrowed) */
    reconcile_config_t cfg; /* settings (pointers borrowed) */
    char cluster[S_NAME_MAX]; /* member cluster name (copy) */
    podbuild_opts_t pod_opts; /* pod builder settings */
    validate_gates_t gates; /* feature gates */
    ctrl_t *ctrl; /* the controller runtime running the passes */
    jproj_t *proj[S_CHILD_KINDS]; /* projections of the child kinds (s_keep_pod, ...) */
    uint64_t rand_seq; /* self-test only (capture): deterministic replica name suffixes */
    uint64_t invalid; /* passes stopped by validation */
};

/* The RayCluster state of a pass (the runtime's ctrl_pass_t.data). */
struct pass {
    ctrl_pass_t *cp; /* the runtime's pass: key, namespace, name, flags, failure */
    reconciler_t *r; /* owner */
    json_t *rc; /* observed RayCluster (borrowed from cp->obj) */
    json_t *rcd; /* defaulted copy used for decisions */
    json_t *pods; /* observed pods */
    json_t *svcs; /* observed services */
    json_t *names; /* {pod name: true} of observed pods */
    json_t *jobs; /* observed batch Jobs owned by the RayCluster */
    json_t *netpols; /* observed NetworkPolicies owned by the RayCluster */
    char hash[RECONCILE_HASH_LEN + 1]; /* Recreate hash of the defaulted spec (s_hash()) */
    bool hash_done; /* hash computed (or taken from the memo) */
    bool memo_ok; /* validated clean: the memo may keep the hash at (uid, resourceVersion) */
    bool mtls_on; /* tlsOptions.enabled with gate RayClusterMTLS: pod creation waits (s_mtls_*) */
    bool pods_done; /* s_stage_head_pod ended reconcilePods (suspend, Recreate): no workers */
    bool mtls_cert[2]; /* head / worker leaf Certificate Ready at its generation, SANs current */
    bool mtls_secret[2]; /* head / worker Secret holds tls.crt, tls.key and ca.crt */
    char was_wl_uid[CTRL_RV_MAX]; /* uid of the live Workload read (Kubernetes WAS) */
};

/* ---------- small helpers ---------- */

static const char *s_label(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.labels"), k));
}

static const char *s_ann(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.annotations"), k));
}

static bool s_cond_true(const json_t *rc, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(rc, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), type) == 0)
            return strcmp(jx_str(c, "status", ""), "True") == 0;
    }
    return false;
}

/* ---------- the Recreate hash ---------- */

/* The Recreate hash of the pass's defaulted spec ("" when it cannot be computed), computed on
 * first use: most passes create no head pod and use no Recreate strategy, so they never need it.
 * Once computed it joins the pass's memo (s_begin()). */
static const char *s_hash(pass_t *p)
{
    if (p->hash_done)
        return p->hash;
    p->hash_done = true;
    if (reconcile_spec_hash(jx_get(p->rcd, "spec"), p->hash, sizeof(p->hash)) != 0)
        p->hash[0] = '\0';
    if (p->memo_ok && p->hash[0])
        ctrl_memo_put(p->cp, jx_str(p->rc, "metadata.uid", ""),
                      jx_str(p->rc, "metadata.resourceVersion", ""), p->hash);
    return p->hash;
}

static void s_strip_template(json_t *tmpl_spec)
{
    json_object_del(tmpl_spec, "tolerations");
    json_object_del(tmpl_spec, "schedulingGates");
}

/* The object under `key` in `parent` replaced by a shallow copy of it (json_copy()), so keys can
 * be deleted from the copy without touching the original tree; NULL when there is no object
 * there. On out of memory, sets *oom. */
static json_t *s_own(json_t *parent, const char *key, bool *oom)
{
    json_t *v = json_object_get(parent, key);
    if (!json_is_object(v))
        return NULL;
    json_t *c = json_copy(v);
    if (!c || json_object_set_new(parent, key, c) != 0) {
        *oom = true;
        return NULL;
    }
    return c;
}

/* The template spec of the group object `g` (shallow-copied along the path, s_own()), stripped. */
static void s_strip_group(json_t *g, bool *oom)
{
    json_t *tmpl = s_own(g, "template", oom);
    s_strip_template(s_own(tmpl, "spec", oom));
}

int reconcile_spec_hash(const json_t *spec, char *out, size_t size)
{
    if (!json_is_object(spec) || !out)
        return ERR_INVAL;
    if (size < RECONCILE_HASH_LEN + 1)
        return ERR_TOOBIG;
    /* spec' shares every value of `spec` but the objects on the paths it deletes from, which are
     * shallow copies: the same text as a deep copy with the same deletions, without copying the
     * templates */
    json_t *s = json_copy((json_t *)spec);
    if (!s)
        return ERR_NOMEM;
    bool oom = false;
    json_object_del(s, "upgradeStrategy");
    s_strip_group(s_own(s, "headGroupSpec", &oom), &oom);
    json_t *wgs = json_object_get(s, "workerGroupSpecs");
    if (json_is_array(wgs)) {
        wgs = json_copy(wgs);
        if (!wgs || json_object_set_new(s, "workerGroupSpecs", wgs) != 0)
            oom = true;
    }
    size_t i;
    json_t *wg;
    json_array_foreach(oom ? NULL : wgs, i, wg)
    {
        if (!json_is_object(wg))
            continue;
        wg = json_copy(wg);
        if (!wg || json_array_set_new(wgs, i, wg) != 0) {
            oom = true;
            break;
        }
        json_object_del(wg, "replicas");
        json_object_del(wg, "minReplicas");
        json_object_del(wg, "maxReplicas");
        json_object_del(s_own(wg, "scaleStrategy", &oom), "workersToDelete");
        s_strip_group(wg, &oom);
    }
    char *text = oom ? NULL : json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(s);
    if (!text)
        return ERR_NOMEM;
    int rc = hash_sha1_b32hex(text, strlen(text), HASH_UPPER, out, size);
    free(text);
    return rc;
}

/* ---------- sub-reconcilers ---------- */

static bool s_autoscaling(const pass_t *p)
{
    return jx_bool(p->rcd, "spec.enableInTreeAutoscaling", false);
}

/* Starts a GET of ns/name for the pass; `fn` handles the answer. */
static void s_get_for(pass_t *p, const char *group, const char *version, const char *resource,
                      const char *kind, const char *name,
                      void (*fn)(ctrl_pass_t *cp, const k8s_result_t *res))
{
    ctrl_send(p->cp,
              &(ctrl_req_t){.verb = CTRL_GET,
                            .group = group,
                            .version = version,
                            .resource = resource,
                            .kind = kind,
                            .name = name,
                            .on_get = fn},
              NULL);
}

static void s_sa_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    const char *sa = jx_str(p->rcd, "spec.headGroupSpec.template.spec.serviceAccountName", "");
    if (res->err == ERR_NOTFOUND) {
        ctrl_event(p->cp, true, "AutoscalerServiceAccountNotFound", "Create",
                   "If users specify ServiceAccountName for the head Pod, they need to create a "
                   "ServiceAccount themselves. However, ServiceAccount %s is not found. Please "
                   "create one. See the PR description of #1128 for more details.",
                   sa);
        ctrl_fail(p->cp, NULL, "ServiceAccount %s/%s not found", p->cp->ns, sa);
    } else if (res->err) {
        ctrl_fail(p->cp, NULL, "failed to get ServiceAccount %s/%s, %s", p->cp->ns, sa,
                  res->message[0] ? res->message : err_str(res->err));
    }
}

static void s_stage_sa(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!s_autoscaling(p))
        return;
    /* a user-named ServiceAccount is the user's to create; KubeRay checks it exists */
    const char *user = jx_str(p->rcd, "spec.headGroupSpec.template.spec.serviceAccountName", "");
    if (user[0]) {
        s_get_for(p, "", "v1", "serviceaccounts", "ServiceAccount", user, s_sa_got);
        return;
    }
    ctrl_create_once(p->cp, objbuild_service_account(p->rcd), "", "v1", "serviceaccounts",
                     "service account", "CreatedServiceAccount", "FailedToCreateServiceAccount", 0);
}

static void s_stage_role(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (s_autoscaling(p))
        ctrl_create_once(p->cp, objbuild_role(p->rcd), "rbac.authorization.k8s.io", "v1", "roles",
                         "role", "CreatedRole", "FailedToCreateRole", 0);
}

static void s_stage_role_binding(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (s_autoscaling(p))
        ctrl_create_once(p->cp, objbuild_role_binding(p->rcd), "rbac.authorization.k8s.io", "v1",
                         "rolebindings", "role binding", "CreatedRoleBinding",
                         "FailedToCreateRoleBinding", 0);
}

static bool s_owned_by_rc(const json_t *o, const json_t *rc)
{
    size_t i;
    json_t *ref;
    json_array_foreach(jx_get(o, "metadata.ownerReferences"), i, ref)
    {
        if (jx_bool(ref, "controller", false) &&
            !strcmp(jx_str(ref, "uid", ""), jx_str(rc, "metadata.uid", "-")))
            return true;
    }
    return false;
}

/* Creates (CTRL_CREATE) or updates the Ingress `name` with `body` (borrowed). */
static void s_send_ingress(pass_t *p, ctrl_verb_t verb, const char *name, const json_t *body)
{
    bool create = verb == CTRL_CREATE;
    ctrl_send(
        p->cp,
        &(ctrl_req_t){.verb = verb,
                      .group = "networking.k8s.io",
                      .version = "v1",
                      .resource = "ingresses",
                      .kind = "Ingress",
                      .name = name,
                      .noun = "ingress",
                      .ok_reason = create ? "CreatedIngress" : "UpdatedIngress",
                      .fail_reason = create ? "FailedToCreateIngress" : "FailedToUpdateIngress"},
        body);
}

/* reconcileIngress: create when absent; an owned Ingress whose labels, annotations or spec
 * differ is updated (a desired ingressClassName left unset adopts the live one); an Ingress of
 * that name not owned by the RayCluster is left alone with a Warning. */
static void s_ingress_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    json_t *want = objbuild_ingress(p->rcd);
    if (!want) {
        ctrl_fail(p->cp, NULL, "failed to build the ingress");
        return;
    }
    const char *name = jx_str(want, "metadata.name", "");
    if (res->err == ERR_NOTFOUND) {
        s_send_ingress(p, CTRL_CREATE, name, want);
        json_decref(want);
        return;
    }
    if (res->err || !res->body) {
        ctrl_fail(p->cp, NULL, "failed to get ingress %s/%s, %s", p->cp->ns, name,
                  res->message[0] ? res->message : err_str(res->err ? res->err : ERR_PROTO));
        json_decref(want);
        return;
    }
    const json_t *live = res->body;
    if (!s_owned_by_rc(live, p->rc)) {
        ctrl_event(p->cp, true, "FailedToCreateIngress", "Create",
                   "Failed to create ingress %s/%s: an Ingress with that name exists and is not "
                   "owned by RayCluster %s",
                   p->cp->ns, name, p->cp->name);
        json_decref(want);
        return;
    }
    json_t *wspec = json_object_get(want, "spec");
    const json_t *lspec = jx_get(live, "spec");
    if (wspec && !json_object_get(wspec, "ingressClassName") &&
        json_object_get(lspec, "ingressClassName"))
        json_object_set(wspec, "ingressClassName", json_object_get(lspec, "ingressClassName"));
    const json_t *wl = jx_get(want, "metadata.labels"), *wa = jx_get(want, "metadata.annotations");
    const json_t *ll = jx_get(live, "metadata.labels"), *la = jx_get(live, "metadata.annotations");
    bool same_l = json_object_size(wl) == 0 ? json_object_size(ll) == 0 : json_equal(wl, ll);
    bool same_a = json_object_size(wa) == 0 ? json_object_size(la) == 0 : json_equal(wa, la);
    if (same_l && same_a && json_equal(wspec, lspec)) {
        json_decref(want);
        return;
    }
    json_t *upd = json_deep_copy(live);
    if (!upd) {
        json_decref(upd);
        json_decref(want);
        ctrl_fail(p->cp, NULL, "out of memory");
        return;
    }
    json_t *meta = json_object_get(upd, "metadata");
    json_object_set(meta, "labels", wl ? (json_t *)wl : json_object());
    json_object_set(meta, "annotations", wa ? (json_t *)wa : json_object());
    json_object_set(upd, "spec", wspec);
    s_send_ingress(p, CTRL_UPDATE, name, upd);
    json_decref(upd);
    json_decref(want);
}

static void s_stage_ingress(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!jx_bool(p->rcd, "spec.headGroupSpec.enableIngress", false))
        return;
    json_t *want = objbuild_ingress(p->rcd);
    if (!want) {
        ctrl_fail(p->cp, NULL, "failed to build the ingress");
        return;
    }
    char name[S_NAME_MAX];
    snprintf(name, sizeof(name), "%s", jx_str(want, "metadata.name", ""));
    json_decref(want);
    s_get_for(p, "networking.k8s.io", "v1", "ingresses", "Ingress", name, s_ingress_got);
}

static int s_rand(void *ctx, unsigned char *out, size_t n)
{
    return getrandom(out, n, 0) == (ssize_t)n ? 0 : ERR_IO;
}

static void s_stage_auth_secret(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (objbuild_needs_auth_secret(p->rcd))
        ctrl_create_once(p->cp, objbuild_auth_secret(p->rcd, s_rand, NULL), "", "v1", "secrets",
                         "secret", NULL, NULL, 0);
}

static void s_stage_head_svc(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    int n = 0;
    size_t i;
    json_t *s;
    char *ident = names_identifier(p->cp->name, NAMES_NODE_HEAD);
    json_array_foreach(p->svcs, i, s)
    {
        const char *c = s_label(s, LABEL_CLUSTER), *t = s_label(s, LABEL_NODE_TYPE);
        const char *id = s_label(s, LABEL_IDENTIFIER);
        if (c && t && id && ident && !strcmp(c, p->cp->name) && !strcmp(t, NAMES_NODE_HEAD) &&
            !strcmp(id, ident))
            n++;
    }
    free(ident);
    if (n > 1) {
        ctrl_fail(p->cp, NULL, "%d head service found", n);
        return;
    }
    if (n == 1)
        return;
    buf_t err;
    buf_init(&err, RECONCILE_MSG_MAX);
    json_t *svc = objbuild_head_service(
        p->rcd, &(objbuild_opts_t){.head_cluster_ip = p->r->cfg.head_cluster_ip}, &err);
    if (!svc) {
        ctrl_fail(p->cp, NULL, "%s", err.len ? buf_str(&err) : "failed to build the head service");
        buf_free(&err);
        return;
    }
    buf_free(&err);
    ctrl_create_once(p->cp, svc, "", "v1", "services", "service", "CreatedService",
                     "FailedToCreateService", RECONCILE_CREATE_EXPECT_MS);
}

static bool s_has_service(pass_t *p, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(p->svcs, i, s)
    {
        if (!strcmp(jx_str(s, "metadata.name", ""), name))
            return true;
    }
    return false;
}

static void s_stage_headless(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!objbuild_needs_headless(p->rcd))
        return;
    char *n = names_headless_service(p->cp->name);
    bool have = n && s_has_service(p, n);
    free(n);
    if (!have)
        ctrl_create_once(p->cp, objbuild_headless_service(p->rcd), "", "v1", "services", "service",
                         "CreatedService", "FailedToCreateService", 0);
}

static void s_stage_serve_svc(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!objbuild_needs_serve_service(p->rcd))
        return;
    char *n = names_serve_service(p->cp->name);
    bool have = n && s_has_service(p, n);
    free(n);
    if (have)
        return;
    buf_t err;
    buf_init(&err, RECONCILE_MSG_MAX);
    json_t *svc = objbuild_serve_service(p->rcd, &err);
    if (!svc)
        ctrl_fail(p->cp, NULL, "%s", buf_str(&err));
    else
        ctrl_create_once(p->cp, svc, "", "v1", "services", "service", "CreatedService",
                         "FailedToCreateService", 0);
    buf_free(&err);
}

static void s_stage_gcs_pvc(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (objbuild_needs_gcs_pvc(p->rcd))
        ctrl_create_once(p->cp, objbuild_gcs_pvc(p->rcd), "", "v1", "persistentvolumeclaims", "PVC",
                         "CreatedPVC", "FailedToCreatePVC", 0);
}

/* ---------- NetworkPolicies (gate RayClusterNetworkPolicy; KubeRay's networkpolicy controller) */

/* Creates or updates (CTRL_CREATE / CTRL_UPDATE) or deletes (CTRL_DELETE, body NULL) policy `name`.
 */
static void s_send_netpol(pass_t *p, ctrl_verb_t verb, const char *name, const json_t *body)
{
    ctrl_send(p->cp,
              &(ctrl_req_t){.verb = verb,
                            .group = "networking.k8s.io",
                            .version = "v1",
                            .resource = "networkpolicies",
                            .kind = "NetworkPolicy",
                            .name = name,
                            .noun = "NetworkPolicy",
                            .ok_reason = verb == CTRL_CREATE   ? NETPOL_REASON_CREATED
                                         : verb == CTRL_UPDATE ? NETPOL_REASON_UPDATED
                                                               : NETPOL_REASON_DELETED,
                            .fail_reason = verb == CTRL_CREATE   ? NETPOL_REASON_FAILED_CREATE
                                           : verb == CTRL_UPDATE ? NETPOL_REASON_FAILED_UPDATE
                                                                 : NETPOL_REASON_FAILED_DELETE},
              body);
}

/* The answer to the GET of a wanted policy that is not a child: create it when absent; one that
 * exists and is not controlled by the RayCluster is KubeRay's name collision (Warning, error). */
static void s_netpol_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    const char *name = res->err == ERR_NOTFOUND ? jx_str(res->body, "details.name", "")
                                                : jx_str(res->body, "metadata.name", "");
    if (res->err && res->err != ERR_NOTFOUND) {
        ctrl_fail(p->cp, NULL, "failed to get NetworkPolicy %s/%s, %s", p->cp->ns, name,
                  res->message[0] ? res->message : err_str(res->err));
        return;
    }
    if (!res->err && s_owned_by_rc(res->body, p->rc))
        return; /* ours; the watcher has not delivered it yet: the next pass compares it */
    if (!res->err) {
        ctrl_event(p->cp, true, NETPOL_REASON_COLLISION, "Validate",
                   "NetworkPolicy %s/%s already exists and is not owned by this RayCluster, "
                   "network isolation will not be applied. Rename the existing NetworkPolicy or "
                   "use a different RayCluster name to avoid the collision",
                   p->cp->ns, name);
        ctrl_fail(p->cp, NULL,
                  "NetworkPolicy %s/%s already exists and is not owned by this RayCluster",
                  p->cp->ns, name);
        return;
    }
    json_t *want = netpol_build(p->rcd);
    size_t i;
    json_t *w;
    bool sent = false;
    json_array_foreach(want, i, w)
    {
        if (!sent && name[0] && !strcmp(jx_str(w, "metadata.name", ""), name)) {
            s_send_netpol(p, CTRL_CREATE, name, w);
            sent = true;
        }
    }
    json_decref(want);
    if (!sent)
        ctrl_fail(p->cp, NULL, "NetworkPolicy %s/%s: the answer names no wanted policy", p->cp->ns,
                  name);
}

/* The head's and each worker group's policy is created when absent and updated when its labels
 * or spec differ; an owned policy no longer wanted (group removed, networkPolicy removed) is
 * deleted. A wanted policy that is not a child is read first (s_netpol_got). */
static void s_stage_netpol(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!p->r->gates.network_policy)
        return; /* KubeRay registers no NetworkPolicy controller without the gate */
    json_t *want = netpol_build(p->rcd);
    if (!want) {
        ctrl_fail(p->cp, NULL, "failed to build the NetworkPolicies");
        return;
    }
    size_t i, j;
    json_t *w, *live;
    json_array_foreach(want, i, w)
    {
        const char *name = jx_str(w, "metadata.name", "");
        json_t *found = NULL;
        json_array_foreach(p->netpols, j, live)
        {
            if (!strcmp(jx_str(live, "metadata.name", ""), name))
                found = live;
        }
        if (!found) {
            /* not a child: absent, or a policy of that name someone else owns (a GET tells) */
            s_get_for(p, "networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", name,
                      s_netpol_got);
            continue;
        }
        if (netpol_same(w, found))
            continue;
        json_t *upd = json_deep_copy(found);
        json_t *meta = upd ? json_object_get(upd, "metadata") : NULL;
        if (!meta) {
            json_decref(upd);
            ctrl_fail(p->cp, NULL, "out of memory");
            break;
        }
        json_object_set_new(upd, "apiVersion", json_string("networking.k8s.io/v1"));
        json_object_set_new(upd, "kind", json_string("NetworkPolicy"));
        json_object_set(meta, "labels", jx_get(w, "metadata.labels"));
        json_object_set(upd, "spec", jx_get(w, "spec"));
        s_send_netpol(p, CTRL_UPDATE, name, upd);
        json_decref(upd);
    }
    json_array_foreach(p->netpols, j, live)
    {
        const char *name = jx_str(live, "metadata.name", "");
        bool wanted = false;
        json_array_foreach(want, i, w)
        {
            if (!strcmp(jx_str(w, "metadata.name", ""), name))
                wanted = true;
        }
        if (!wanted && s_owned_by_rc(live, p->rc) && !jx_get(live, "metadata.deletionTimestamp"))
            s_send_netpol(p, CTRL_DELETE, name, NULL);
    }
    json_decref(want);
}

/* ---------- mTLS (gate RayClusterMTLS, §4.5) ----------
 * KubeRay runs a separate `raycluster-mtls` controller; here it is a stage of the RayCluster pass
 * right before the pods, because pod creation must wait on what it reads and the pass already
 * holds the pods whose IPs go into the leaf certificates. The Issuers and the CA Certificate are
 * created once (ensured); the leaf Certificates and their Secrets are read with CTRL_GET each pass
 * (the watcher does not observe cert-manager kinds), a missing leaf is created and one whose
 * dnsNames / ipAddresses differ from the pods' is patched. Until both leaves are Ready at their
 * generation and both Secrets are complete, s_create_pod() creates nothing and the pass asks for
 * the short requeue. */

static bool s_mtls_ready(const pass_t *p)
{
    return p->mtls_cert[0] && p->mtls_cert[1] && p->mtls_secret[0] && p->mtls_secret[1];
}

static json_t *s_mtls_leaf(pass_t *p, mtls_node_t node)
{
    buf_t fqdn;
    buf_init(&fqdn, S_NAME_MAX * 2);
    json_t *ips = mtls_pod_ips(p->pods, node);
    json_t *want = NULL;
    if (ips && (node == MTLS_WORKER || podbuild_head_fqdn(p->rcd, &p->r->pod_opts, &fqdn) == 0))
        want = mtls_leaf_certificate(p->rcd, node, buf_str(&fqdn), ips);
    json_decref(ips);
    buf_free(&fqdn);
    return want;
}

static void s_mtls_cert_got(ctrl_pass_t *cp, const k8s_result_t *res, mtls_node_t node)
{
    pass_t *p = cp->data;
    json_t *want = s_mtls_leaf(p, node);
    if (!want) {
        ctrl_fail(cp, NULL, "failed to build the %s certificate",
                  node == MTLS_HEAD ? "head" : "worker");
        return;
    }
    const char *name = jx_str(want, "metadata.name", "");
    ctrl_req_t rq = {.group = MTLS_GROUP,
                     .version = MTLS_VERSION,
                     .resource = "certificates",
                     .kind = "Certificate",
                     .name = name,
                     .noun = "certificate"};
    if (res->err == ERR_NOTFOUND) {
        rq.verb = CTRL_CREATE;
        ctrl_send(cp, &rq, want);
    } else if (res->err || !res->body) {
        ctrl_fail(cp, NULL, "failed to get certificate %s/%s, %s", cp->ns, name,
                  res->message[0] ? res->message : err_str(res->err ? res->err : ERR_PROTO));
    } else if (mtls_leaf_differs(res->body, want)) {
        /* the pods' IPs changed: cert-manager issues again (a new generation) */
        json_t *patch =
            json_pack("{s:{s:O, s:O}}", "spec", "dnsNames", jx_get(want, "spec.dnsNames"),
                      "ipAddresses", jx_get(want, "spec.ipAddresses"));
        rq.verb = CTRL_PATCH;
        if (patch)
            ctrl_send(cp, &rq, patch);
        json_decref(patch);
    } else {
        p->mtls_cert[node] = mtls_cert_ready(res->body);
    }
    json_decref(want);
}

static void s_mtls_head_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    s_mtls_cert_got(cp, res, MTLS_HEAD);
}

static void s_mtls_worker_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    s_mtls_cert_got(cp, res, MTLS_WORKER);
}

static void s_mtls_head_secret_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    p->mtls_secret[MTLS_HEAD] = res->err == 0 && mtls_secret_complete(res->body);
}

static void s_mtls_worker_secret_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    p->mtls_secret[MTLS_WORKER] = res->err == 0 && mtls_secret_complete(res->body);
}

/* Pipeline step 7: with TLS enabled and the cert-manager API absent, KubeRay's Warning and no
 * further step. A 404 without details.name (kube-apiserver: "404 page not found", kubesim: "the
 * server could not find the requested resource") is the API missing; one naming the object is
 * only the CA Certificate not made yet. */
static void s_mtls_api_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    if (res->err != ERR_NOTFOUND || jx_str(res->body, "details.name", NULL))
        return;
    ctrl_event(cp, true, VALIDATE_REASON_SPEC, "Validate", "%s",
               "tlsOptions requires cert-manager, but cert-manager is not installed");
    ctrl_fail(cp, NULL, "tlsOptions requires cert-manager, but cert-manager is not installed");
}

static void s_stage_mtls_api(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!p->r->gates.mtls || !mtls_enabled(p->rcd))
        return;
    char name[MTLS_NAME_MAX];
    mtls_ca_cert_name(cp->name, name);
    s_get_for(p, MTLS_GROUP, MTLS_VERSION, "certificates", "Certificate", name, s_mtls_api_got);
}

static void s_stage_mtls(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (!p->r->gates.mtls || !mtls_enabled(p->rcd))
        return;
    p->mtls_on = true;
    ctrl_create_once(cp, mtls_selfsigned_issuer(p->rcd), MTLS_GROUP, MTLS_VERSION, "issuers",
                     "issuer", NULL, NULL, 0);
    ctrl_create_once(cp, mtls_ca_certificate(p->rcd), MTLS_GROUP, MTLS_VERSION, "certificates",
                     "certificate", NULL, NULL, 0);
    ctrl_create_once(cp, mtls_ca_issuer(p->rcd), MTLS_GROUP, MTLS_VERSION, "issuers", "issuer",
                     NULL, NULL, 0);
    char name[MTLS_NAME_MAX];
    mtls_cert_name(cp->name, MTLS_HEAD, name);
    s_get_for(p, MTLS_GROUP, MTLS_VERSION, "certificates", "Certificate", name, s_mtls_head_got);
    mtls_cert_name(cp->name, MTLS_WORKER, name);
    s_get_for(p, MTLS_GROUP, MTLS_VERSION, "certificates", "Certificate", name, s_mtls_worker_got);
    mtls_secret_name(cp->name, MTLS_HEAD, name);
    s_get_for(p, "", "v1", "secrets", "Secret", name, s_mtls_head_secret_got);
    mtls_secret_name(cp->name, MTLS_WORKER, name);
    s_get_for(p, "", "v1", "secrets", "Secret", name, s_mtls_worker_secret_got);
}

/* ---------- pods ---------- */

static void s_delete_pod(pass_t *p, const char *name, const char *group, const char *noun,
                         const char *ok_reason, const char *fail_reason, const char *rcs_reason)
{
    ctrl_send(p->cp,
              &(ctrl_req_t){.verb = CTRL_DELETE,
                            .version = "v1",
                            .resource = "pods",
                            .kind = "Pod",
                            .name = name,
                            .noun = noun,
                            .ok_reason = ok_reason,
                            .fail_reason = fail_reason,
                            .rcs_reason = rcs_reason,
                            .exp_group = group},
              NULL);
}

/* Creates `pod` (stolen) in expectation group `group`. */
static void s_create_pod(pass_t *p, json_t *pod, const char *group, bool head)
{
    if (p->mtls_on && !s_mtls_ready(p)) {
        /* (TLS: wait for cert secrets) */
        json_decref(pod);
        p->cp->short_requeue = true;
        return;
    }
    const char *gn = jx_str(pod, "metadata.generateName", "");
    const char *nm = jx_str(pod, "metadata.name", "");
    /* KubeRay's Warning Events: the head's names the pod object it sent (its Name is empty when
     * the API server was to generate it), the worker's names the cluster */
    char fev[2 * CTRL_KEY_MAX + 64];
    if (head)
        snprintf(fev, sizeof(fev), "Failed to create head Pod %s/%s", p->cp->ns, nm);
    else
        snprintf(fev, sizeof(fev), "Failed to create worker Pod for the cluster %s/%s", p->cp->ns,
                 p->cp->name);
    ctrl_send(
        p->cp,
        &(ctrl_req_t){.verb = CTRL_CREATE,
                      .version = "v1",
                      .resource = "pods",
                      .kind = "Pod",
                      .name = nm[0] ? nm : gn,
                      .noun = head ? "head Pod" : "worker Pod",
                      .ok_reason = head ? "CreatedHeadPod" : "CreatedWorkerPod",
                      .fail_reason = head ? "FailedToCreateHeadPod" : "FailedToCreateWorkerPod",
                      .rcs_reason = head ? "FailedCreateHeadPod" : "FailedCreateWorkerPod",
                      .fail_event = fev,
                      .exp_group = group},
        pod);
    json_decref(pod);
}

/* True when pod `name` is in observed.db (expect.h's seen predicate over the pass's pods). */
static bool s_pod_seen(const char *name, void *arg)
{
    return json_object_get(arg, name) != NULL;
}

static bool s_group_satisfied(pass_t *p, const char *group)
{
    return ctrl_expect_satisfied(p->cp, group, s_pod_seen, p->names);
}

static void s_head(pass_t *p)
{
    json_t *heads = json_array();
    size_t i;
    json_t *pod;
    json_array_foreach(p->pods, i, pod)
    {
        const char *t = s_label(pod, LABEL_NODE_TYPE);
        if (t && !strcmp(t, NAMES_NODE_HEAD))
            json_array_append(heads, pod);
    }
    size_t n = json_array_size(heads);
    if (!s_group_satisfied(p, RECONCILE_HEAD_GROUP)) {
        json_decref(heads);
        return;
    }
    if (n == 1) {
        json_t *h = json_array_get(heads, 0);
        if (rcstatus_should_delete_pod(h)) {
            const char *hn = jx_str(h, "metadata.name", "");
            s_delete_pod(p, hn, RECONCILE_HEAD_GROUP, "head Pod", "DeletedHeadPod",
                         "FailedToDeleteHeadPod", "FailedDeleteHeadPod");
            ctrl_fail(p->cp, NULL,
                      "The head Pod %s will be deleted; Pod status: %s; Pod restart policy: %s", hn,
                      jx_str(h, "status.phase", ""), jx_str(h, "spec.restartPolicy", ""));
        }
    } else if (n == 0) {
        const char *dis = s_ann(p->rc, ANN_DISABLE_HEAD_RESTART);
        if (!(s_cond_true(p->rc, RCS_COND_PROVISIONED) && dis && !strcmp(dis, "true"))) {
            json_t *hp = NULL;
            buf_t err;
            buf_init(&err, RECONCILE_MSG_MAX);
            podbuild_opts_t o = p->r->pod_opts;
            o.recreate_hash = s_hash(p)[0] ? p->hash : NULL;
            int brc = podbuild_head(p->rcd, &o, &hp, &err);
            if (brc == 0)
                s_create_pod(p, hp, RECONCILE_HEAD_GROUP, true);
            else
                ctrl_fail(p->cp, "FailedCreateHeadPod", "%s",
                          err.len ? buf_str(&err) : err_str(brc));
            buf_free(&err);
        }
    } else {
        buf_t names;
        buf_init(&names, RECONCILE_MSG_MAX);
        json_array_foreach(heads, i, pod)
            buf_printf(&names, "%s%s", i ? " " : "", jx_str(pod, "metadata.name", ""));
        ctrl_fail(p->cp, NULL, "%zu head pods found [%s]", n, buf_str(&names));
        buf_free(&names);
    }
    json_decref(heads);
}

/* The lowest replica index not in `used` (an object of index strings); marks it used. */
static int s_next_index(json_t *used)
{
    for (int i = 0;; i++) {
        char k[24];
        snprintf(k, sizeof(k), "%d", i);
        if (!json_object_get(used, k)) {
            json_object_set_new(used, k, json_true());
            return i;
        }
    }
}

static void s_rand_suffix(reconciler_t *r, char out[S_RAND_LEN + 1])
{
    unsigned char b[S_RAND_LEN];
    if (ctrl_capturing(r->ctrl)) {
        uint64_t v = ++r->rand_seq;
        for (int i = 0; i < S_RAND_LEN; i++, v /= 7)
            b[i] = (unsigned char)(v % 7);
    } else if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        memset(b, (int)(loop_clock_ms() & 0xff), sizeof(b));
    }
    size_t n = strlen(S_RAND_CHARS);
    for (int i = 0; i < S_RAND_LEN; i++)
        out[i] = S_RAND_CHARS[b[i] % n];
    out[S_RAND_LEN] = '\0';
}

/* reconcileMultiHostWorkerGroup (spec §1.9). Returns true when the pass must stop. */
static bool s_multihost(pass_t *p, int gi, const json_t *wg, const json_t *gpods)
{
    const char *gname = jx_str(wg, "groupName", "");
    int64_t hosts = jx_int(wg, "numOfHosts", 1);
    int64_t desired = rcstatus_group_desired(wg);
    json_t *reps = json_object(); /* replica name -> [pods] */
    json_t *used = json_object();
    size_t i;
    json_t *pod;
    json_array_foreach(gpods, i, pod)
    {
        const char *rn = s_label(pod, LABEL_REPLICA_NAME);
        const char *ri = s_label(pod, LABEL_REPLICA_INDEX);
        if (ri)
            json_object_set_new(used, ri, json_true());
        json_t *arr = json_object_get(reps, rn ? rn : "");
        if (!arr) {
            arr = json_array();
            json_object_set_new(reps, rn ? rn : "", arr);
        }
        json_array_append(arr, pod);
    }
    const json_t *wtd = jx_get(wg, "scaleStrategy.workersToDelete");
    int deleted = 0;
    const char *rn;
    json_t *arr;
    bool stop = false;
    json_object_foreach(reps, rn, arr)
    {
        bool kill = (int64_t)json_array_size(arr) < hosts;
        json_array_foreach(arr, i, pod)
        {
            if (rcstatus_should_delete_pod(pod))
                kill = true;
            size_t k;
            json_t *w;
            json_array_foreach(
                wtd, k, w) if (json_is_string(w) &&
                               !strcmp(json_string_value(w), jx_str(pod, "metadata.name", "")))
                kill = true;
        }
        if (!kill)
            continue;
        json_array_foreach(arr, i, pod)
        {
            s_delete_pod(p, jx_str(pod, "metadata.name", ""), gname, "worker Pod",
                         "DeletedWorkerPod", "FailedToDeleteWorkerPod", "FailedDeleteWorkerPod");
            deleted++;
        }
    }
    if (deleted) {
        ctrl_fail(p->cp, NULL, "delete %d worker Pods of incomplete, unhealthy or named replicas",
                  deleted);
        stop = true;
        goto out;
    }
    if (desired % hosts != 0) {
        ctrl_fail(p->cp, NULL,
                  "desired worker pods (%lld) is not a multiple of NumOfHosts (%lld) for "
                  "group %s",
                  (long long)desired, (long long)hosts, gname);
        stop = true;
        goto out;
    }
    int64_t want = desired / hosts, have = (int64_t)json_object_size(reps);
    for (int64_t k = have; k < want && k - have < RECONCILE_MAX_CREATES_PER_GROUP; k++) {
        char suffix[S_RAND_LEN + 1], rname[S_NAME_MAX];
        s_rand_suffix(p->r, suffix);
        snprintf(rname, sizeof(rname), "%s-%s", gname, suffix);
        podbuild_replica_t rep = {.replica_index = s_next_index(used), .replica_name = rname};
        for (int64_t h = 0; h < hosts; h++) {
            rep.host_index = (int)h;
            json_t *wp = NULL;
            buf_t err;
            buf_init(&err, RECONCILE_MSG_MAX);
            int brc = podbuild_worker_ex(p->rcd, gi, &rep, &p->r->pod_opts, &wp, &err);
            if (brc == 0)
                s_create_pod(p, wp, gname, false);
            else
                ctrl_fail(p->cp, "FailedCreateWorkerPod", "%s",
                          err.len ? buf_str(&err) : err_str(brc));
            buf_free(&err);
        }
    }
    if (have > want && (!s_autoscaling(p) || p->r->cfg.random_delete)) {
        int64_t extra = have - want;
        json_object_foreach(reps, rn, arr)
        {
            if (extra-- <= 0)
                break;
            json_array_foreach(arr, i, pod) s_delete_pod(
                p, jx_str(pod, "metadata.name", ""), gname, "worker Pod", "DeletedWorkerPod",
                "FailedToDeleteWorkerPod", "FailedDeleteWorkerPod");
        }
    }
out:
    json_decref(reps);
    json_decref(used);
    return stop;
}

/* One worker group. Returns true when the pass must stop (unhealthy pods deleted). */
static bool s_worker_group(pass_t *p, int gi, const json_t *wg)
{
    const char *gname = jx_str(wg, "groupName", "");
    json_t *gpods = json_array();
    size_t i;
    json_t *pod;
    json_array_foreach(p->pods, i, pod)
    {
        const char *t = s_label(pod, LABEL_NODE_TYPE), *g = s_label(pod, LABEL_GROUP);
        if (t && g && !strcmp(t, NAMES_NODE_WORKER) && !strcmp(g, gname))
            json_array_append(gpods, pod);
    }
    bool stop = false;
    if (!s_group_satisfied(p, gname))
        goto out;
    if (jx_int(wg, "numOfHosts", 1) > 1 && !jx_bool(wg, "suspend", false) &&
        p->r->pod_opts.gate_multihost_indexing) {
        stop = s_multihost(p, gi, wg, gpods);
        goto out;
    }
    rcstatus_scale_t sc;
    if (rcstatus_scale_group(wg, gpods, s_autoscaling(p), p->r->cfg.random_delete, &sc) != 0) {
        ctrl_fail(p->cp, NULL, "out of memory");
        stop = true;
        goto out;
    }
    json_t *nm;
    json_array_foreach(sc.delete_names, i, nm)
        s_delete_pod(p, json_string_value(nm), gname, "worker Pod", "DeletedWorkerPod",
                     "FailedToDeleteWorkerPod", "FailedDeleteWorkerPod");
    if (sc.unhealthy) {
        ctrl_fail(p->cp, NULL, "delete %zu unhealthy worker Pods",
                  json_array_size(sc.delete_names));
        stop = true;
    }
    if (!stop && sc.create > 0) {
        json_t *used = json_object();
        json_array_foreach(gpods, i, pod)
        {
            const char *ri = s_label(pod, LABEL_REPLICA_INDEX);
            if (ri && used)
                json_object_set_new(used, ri, json_true());
        }
        for (int64_t k = 0; used && k < sc.create && k < RECONCILE_MAX_CREATES_PER_GROUP; k++) {
            podbuild_replica_t rep = {.replica_index = s_next_index(used)};
            json_t *wp = NULL;
            buf_t err;
            buf_init(&err, RECONCILE_MSG_MAX);
            int brc = podbuild_worker_ex(p->rcd, gi, &rep, &p->r->pod_opts, &wp, &err);
            if (brc == 0)
                s_create_pod(p, wp, gname, false);
            else
                ctrl_fail(p->cp, "FailedCreateWorkerPod", "%s",
                          err.len ? buf_str(&err) : err_str(brc));
            buf_free(&err);
        }
        json_decref(used);
    }
    rcstatus_scale_free(&sc);
out:
    json_decref(gpods);
    return stop;
}

/* ---------- Recreate upgrade (spec §1.10) ---------- */

/* Deletes every pod of the pass that is not terminating (head and workers, or only those of
 * node type `only` when not NULL), in their expectation groups. Returns how many. */
static size_t s_delete_all_pods(pass_t *p, const char *only, const char *fail_reason,
                                const char *rcs_reason)
{
    size_t i, n = 0;
    json_t *pod;
    json_array_foreach(p->pods, i, pod)
    {
        const char *t = s_label(pod, LABEL_NODE_TYPE);
        bool head = t && !strcmp(t, NAMES_NODE_HEAD);
        if (jx_get(pod, "metadata.deletionTimestamp") || (only && (!t || strcmp(t, only))))
            continue;
        const char *g = head ? RECONCILE_HEAD_GROUP : s_label(pod, LABEL_GROUP);
        s_delete_pod(p, jx_str(pod, "metadata.name", ""), g ? g : "", head ? "head Pod" : "Pod",
                     NULL, fail_reason, rcs_reason);
        n++;
    }
    return n;
}

/* shouldRecreatePodsForUpgrade + its handling. Returns true when the pods stage must stop. */
static bool s_recreate(pass_t *p)
{
    if (strcmp(jx_str(p->rcd, "spec.upgradeStrategy.type", ""), "Recreate") != 0 || !s_hash(p)[0])
        return false;
    const json_t *head = NULL;
    size_t i, n = 0;
    json_t *pod;
    json_array_foreach(p->pods, i, pod)
    {
        const char *t = s_label(pod, LABEL_NODE_TYPE);
        if (t && !strcmp(t, NAMES_NODE_HEAD)) {
            head = pod;
            n++;
        }
    }
    if (n != 1)
        return false;
    const char *want =
        p->r->pod_opts.kuberay_version ? p->r->pod_opts.kuberay_version : PODBUILD_KUBERAY_VERSION;
    const char *ver = s_ann(head, ANN_KUBERAY_VERSION);
    const char *hn = jx_str(head, "metadata.name", "");
    if (ver && ver[0] && strcmp(ver, want) != 0) {
        /* pods of another operator version: refresh the head's annotations, recreate nothing */
        json_t *patch = json_pack("{s:{s:{s:s, s:s}}}", "metadata", "annotations",
                                  ANN_RECREATE_HASH, p->hash, ANN_KUBERAY_VERSION, want);
        if (!patch) {
            ctrl_fail(p->cp, NULL, "out of memory");
            return true;
        }
        ctrl_send(p->cp,
                  &(ctrl_req_t){.verb = CTRL_PATCH,
                                .version = "v1",
                                .resource = "pods",
                                .kind = "Pod",
                                .name = hn,
                                .noun = "head Pod"},
                  patch);
        json_decref(patch);
        return false;
    }
    const char *have = s_ann(head, ANN_RECREATE_HASH);
    if (have && !strcmp(have, p->hash))
        return false;
    log_info("RayCluster spec changed with Recreate upgrade strategy; deleting all pods", "key",
             p->cp->key, "hash", p->hash, "head_hash", have ? have : "", "correlation_id",
             p->cp->corr, NULL);
    if (s_delete_all_pods(p, NULL, "FailedToDeletePodCollection", "FailedDeleteAllPods") > 0)
        ctrl_event(p->cp, false, "DeletedPod", "Delete",
                   "Deleted all pods for RayCluster %s/%s due to spec change with Recreate Upgrade "
                   "Strategy",
                   p->cp->ns, p->cp->name);
    return true;
}

/* ---------- GCS fault tolerance: the Redis cleanup finalizer (spec §1.11) ---------- */

static bool s_job_finished(const json_t *job)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(job, "status.conditions"), i, c)
    {
        const char *t = jx_str(c, "type", "");
        if ((!strcmp(t, "Complete") || !strcmp(t, "Failed") || !strcmp(t, "FailureTarget")) &&
            !strcmp(jx_str(c, "status", ""), "True"))
            return true;
    }
    return false;
}

/* The deleting RayCluster with Redis GCS FT: pods, then the cleanup Job, then the finalizer. */
static void s_gcs_ft_deleting(pass_t *p)
{
    log_info("The RayCluster with GCS enabled is being deleted. Start to handle the Redis "
             "cleanup finalizer.",
             "key", p->cp->key, "correlation_id", p->cp->corr, NULL);
    s_delete_all_pods(p, NAMES_NODE_HEAD, NULL, NULL);
    s_delete_all_pods(p, NAMES_NODE_WORKER, NULL, NULL);
    size_t i, heads = 0;
    json_t *o;
    json_array_foreach(p->pods, i, o)
    {
        const char *t = s_label(o, LABEL_NODE_TYPE);
        if (t && !strcmp(t, NAMES_NODE_HEAD))
            heads++;
    }
    if (heads > 0) {
        /* wait for the head Pod to be deleted before creating the Redis cleanup Job */
        p->cp->requeue_ms = RECONCILE_HEAD_GONE_REQUEUE_MS;
        return;
    }
    int64_t timeout = RECONCILE_FT_TIMEOUT_S;
    const char *ts = s_ann(p->rc, ANN_FT_DELETION_TIMEOUT);
    if (ts && ts[0]) {
        char *end = NULL;
        long long v = strtoll(ts, &end, 10);
        if (end && !*end && v > 0)
            timeout = v;
    }
    int64_t since = -1;
    if (rftime_parse_sec(jx_str(p->rc, "metadata.deletionTimestamp", ""), &since) != 0)
        since = -1;
    int64_t now = rftime_now_ms() / S_MS_PER_S;
    if (since >= 0 && now - since >= timeout) {
        char d[RFTIME_DURATION_BUF];
        rftime_duration_format(timeout * RFTIME_NS_PER_S, d, sizeof(d));
        const char *sns =
            jx_str(p->rcd, "spec.gcsFaultToleranceOptions.externalStorageNamespace", NULL);
        if (!sns || !sns[0])
            sns = s_ann(p->rc, ANN_EXTERNAL_STORAGE_NS);
        if (!sns || !sns[0])
            sns = jx_str(p->rc, "metadata.uid", "");
        ctrl_event(p->cp, true, "ForceDeletedStuckCluster", "Cleanup",
                   "Force-removed GCS FT finalizer after %s due to Redis cleanup timeout; Redis "
                   "storage namespace \"%s\" may need manual cleanup",
                   d, sns);
        ctrl_finalizer(p->cp, FINALIZER_GCS_FT_REDIS_CLEANUP, false);
        return;
    }
    const json_t *job = NULL;
    json_array_foreach(p->jobs, i, o)
    {
        const char *c = s_label(o, LABEL_CLUSTER), *t = s_label(o, LABEL_NODE_TYPE);
        if (c && t && !strcmp(c, p->cp->name) && !strcmp(t, NAMES_NODE_REDIS_CLEANUP))
            job = o;
    }
    if (job) {
        if (s_job_finished(job))
            ctrl_finalizer(p->cp, FINALIZER_GCS_FT_REDIS_CLEANUP, false);
        else
            p->cp->requeue_ms = RECONCILE_SHORT_REQUEUE_MS;
        return;
    }
    json_t *hp = NULL;
    buf_t err;
    buf_init(&err, RECONCILE_MSG_MAX);
    if (podbuild_head(p->rcd, &p->r->pod_opts, &hp, &err) != 0) {
        ctrl_fail(p->cp, NULL, "%s", buf_str(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    json_t *jobobj = objbuild_redis_cleanup_job(p->rcd, hp);
    json_decref(hp);
    ctrl_create_once(p->cp, jobobj, "batch", "v1", "jobs", "Redis cleanup Job",
                     "CreatedRedisCleanupJob", "FailedToCreateRedisCleanupJob",
                     RECONCILE_CREATE_EXPECT_MS);
    p->cp->requeue_ms = RECONCILE_SHORT_REQUEUE_MS;
}

/* Pipeline step 10. Returns true when the pass ends here (after its writes). */
static bool s_gcs_ft(pass_t *p)
{
    const char *fa = s_ann(p->rc, ANN_FT_ENABLED);
    const json_t *opts = jx_get(p->rcd, "spec.gcsFaultToleranceOptions");
    bool ft = (fa && !strcmp(fa, "true")) || json_is_object(opts);
    const char *backend = jx_str(opts, "backend", "");
    bool redis = !backend[0] || !strcmp(backend, "redis");
    bool deleting = jx_get(p->rc, "metadata.deletionTimestamp") != NULL;
    if (ft && redis && !p->r->cfg.no_redis_cleanup) {
        if (!deleting) {
            if (ctrl_has_finalizer(p->rc, FINALIZER_GCS_FT_REDIS_CLEANUP))
                return false;
            log_info("Add a finalizer", "key", p->cp->key, "finalizer",
                     FINALIZER_GCS_FT_REDIS_CLEANUP, "correlation_id", p->cp->corr, NULL);
            ctrl_finalizer(p->cp, FINALIZER_GCS_FT_REDIS_CLEANUP, true);
            /* only start the RayCluster reconciliation after the finalizer is added */
            p->cp->requeue_ms = RECONCILE_SHORT_REQUEUE_MS;
            return true;
        }
        s_gcs_ft_deleting(p);
        return true;
    }
    if (deleting && ft && !strcmp(backend, "rocksdb") &&
        ctrl_has_finalizer(p->rc, FINALIZER_GCS_FT_REDIS_CLEANUP))
        ctrl_finalizer(p->cp, FINALIZER_GCS_FT_REDIS_CLEANUP, false);
    return deleting;
}

/* ---------- Kubernetes WAS (kubernetes-was-v1alpha2, gate KubernetesWAS) ----------
 *
 * KubeRay's DoBatchSchedulingOnSubmission of the v1alpha2 plugin, one GET at a time as its
 * synchronous calls go: a gang-scheduled RayCluster gets the Workload <cluster> and then the
 * PodGroup <cluster>-cluster (kuberay/batchsched builds both); both are immutable, so a stale one
 * is deleted (the PodGroup first, its protection finalizer removed) and the pass fails with
 * KubeRay's "will retry" message: the retry recreates them. A skipped cluster (no gang label,
 * autoscaling) has both deleted. An object of that name not controlled by the RayCluster fails
 * the pass (getOwnedSchedulingResource). Without the scheduling.k8s.io/v1alpha2 API the create
 * fails each pass before pods are made (KubeRay refuses to start). */

/* An ensured entry (the name of a RayCluster is at most 63 characters: it fits CTRL_KEY_MAX). */
#define S_WAS_ENTRY_MAX (CTRL_KEY_MAX + 64)

/* A request on a Workload (`workload`) or PodGroup of the pass; a delete is preconditioned on
 * `uid` (KubeRay's deleteWithUIDPrecondition). */
static void s_was_req(pass_t *p, ctrl_verb_t verb, bool workload, const char *name,
                      const json_t *body, const char *ensure, const char *uid)
{
    ctrl_send(p->cp,
              &(ctrl_req_t){.verb = verb,
                            .group = BATCHSCHED_WAS_GROUP,
                            .version = BATCHSCHED_WAS_VERSION,
                            .resource = workload ? "workloads" : "podgroups",
                            .kind = workload ? "Workload" : "PodGroup",
                            .name = name,
                            .ensure = ensure,
                            .uid = uid,
                            /* as the other plugins' PodGroups: a missing API shows as an Event */
                            .fail_reason = verb != CTRL_CREATE ? NULL
                                           : workload          ? "FailedToCreateWorkload"
                                                               : "FailedToCreatePodGroup"},
              body);
}

static void s_was_get(pass_t *p, bool workload, const char *name,
                      void (*fn)(ctrl_pass_t *cp, const k8s_result_t *res))
{
    s_get_for(p, BATCHSCHED_WAS_GROUP, BATCHSCHED_WAS_VERSION, workload ? "workloads" : "podgroups",
              workload ? "Workload" : "PodGroup", name, fn);
}

/* The ensured entry of a written object: "<Kind>/<name>#<minCount>" (`min` < 0: the prefix). */
static void s_was_entry(pass_t *p, bool workload, int64_t min, char *out, size_t n)
{
    if (min < 0)
        snprintf(out, n, "%s/%s%s#", workload ? "Workload" : "PodGroup", p->cp->name,
                 workload ? "" : "-" BATCHSCHED_WAS_TEMPLATE);
    else
        snprintf(out, n, "%s/%s%s#%lld", workload ? "Workload" : "PodGroup", p->cp->name,
                 workload ? "" : "-" BATCHSCHED_WAS_TEMPLATE, (long long)min);
}

/* The ensured entry of a skipped cluster found without a Workload or PodGroup: not read again for
 * BATCHSCHED_REREAD_MS (KubeRay reads both from its informer cache at every reconcile). */
static void s_was_off_entry(pass_t *p, char *out, size_t n)
{
    snprintf(out, n, "Workload/%s#off", p->cp->name);
}

/* The answer of a GET: the live object (NULL: NotFound); false after failing the pass (another
 * error, or an object the RayCluster does not control). */
static bool s_was_live(pass_t *p, const k8s_result_t *res, bool workload, const char *name,
                       const json_t **live)
{
    const char *kind = workload ? "Workload" : "PodGroup";
    *live = NULL;
    if (res->err == ERR_NOTFOUND)
        return true;
    if (res->err) {
        ctrl_fail(p->cp, NULL, "failed to get %s %s/%s: %s", kind, p->cp->ns, name,
                  res->message[0] ? res->message : err_str(res->err));
        return false;
    }
    if (!batchsched_was_controlled(res->body, p->rc)) {
        ctrl_fail(p->cp, NULL, "%s %s/%s is not controlled by RayCluster %s/%s", kind, p->cp->ns,
                  name, p->cp->ns, p->cp->name);
        return false;
    }
    *live = res->body;
    if (workload)
        snprintf(p->was_wl_uid, sizeof(p->was_wl_uid), "%s", jx_str(res->body, "metadata.uid", ""));
    return true;
}

/* deletePodGroup: the protection finalizer removed (an update), then a delete unless the
 * PodGroup is being deleted already. The entries ensured for it are forgotten. */
static void s_was_delete_pg(pass_t *p, const json_t *live)
{
    bool nomem = false;
    char entry[S_WAS_ENTRY_MAX];
    const char *name = jx_str(live, "metadata.name", "");
    json_t *un = batchsched_was_unprotected(live, &nomem);
    if (nomem) {
        ctrl_fail(p->cp, NULL, "out of memory");
        return;
    }
    s_was_entry(p, false, -1, entry, sizeof(entry));
    ctrl_unensure(p->cp, entry);
    if (un)
        s_was_req(p, CTRL_UPDATE, false, name, un, NULL, NULL);
    json_decref(un);
    if (!jx_get(live, "metadata.deletionTimestamp"))
        s_was_req(p, CTRL_DELETE, false, name, NULL, NULL, jx_str(live, "metadata.uid", NULL));
}

/* Deletes the pass's Workload, the one read (p->was_wl_uid), forgetting its ensured entries. */
static void s_was_delete_wl(pass_t *p)
{
    char entry[S_WAS_ENTRY_MAX];
    s_was_entry(p, true, -1, entry, sizeof(entry));
    ctrl_unensure(p->cp, entry);
    s_was_req(p, CTRL_DELETE, true, p->cp->name, NULL, NULL,
              p->was_wl_uid[0] ? p->was_wl_uid : NULL);
}

/* The pass's built Workload and PodGroup (NULL both: out of memory, the pass failed). */
static bool s_was_build(pass_t *p, json_t **w, json_t **pg)
{
    if (batchsched_was_objects(p->rcd, w, pg) == 0)
        return true;
    ctrl_fail(p->cp, NULL,
              "failed to build scheduling resources for RayCluster %s/%s: out of "
              "memory",
              p->cp->ns, p->cp->name);
    return false;
}

/* cleanup, second step: the Workload, once no PodGroup is left */
static void s_was_cleanup_wl_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    const json_t *live;
    char entry[S_WAS_ENTRY_MAX];
    if (!s_was_live(p, res, true, p->cp->name, &live))
        return;
    if (!live) {
        s_was_off_entry(p, entry, sizeof(entry));
        ctrl_ensure(p->cp, entry);
        return;
    }
    if (jx_get(live, "metadata.deletionTimestamp")) {
        ctrl_fail(p->cp, NULL, "Workload %s/%s is being deleted, will retry", p->cp->ns,
                  p->cp->name);
        return;
    }
    s_was_delete_wl(p);
}

/* cleanup, first step: the PodGroup; while one is there the pass waits for its deletion */
static void s_was_cleanup_pg_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    char name[CTRL_KEY_MAX + 16];
    snprintf(name, sizeof(name), "%s-%s", p->cp->name, BATCHSCHED_WAS_TEMPLATE);
    const json_t *live;
    if (!s_was_live(p, res, false, name, &live))
        return;
    if (!live) {
        s_was_get(p, true, p->cp->name, s_was_cleanup_wl_got);
        return;
    }
    s_was_delete_pg(p, live);
    ctrl_fail(p->cp, NULL, "waiting for PodGroup %s/%s to finish deleting", p->cp->ns, name);
}

/* syncPodGroup */
static void s_was_pg_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    json_t *w = NULL, *pg = NULL;
    const json_t *live;
    if (!s_was_build(p, &w, &pg))
        return;
    const char *name = jx_str(pg, "metadata.name", "");
    char entry[S_WAS_ENTRY_MAX];
    if (!s_was_live(p, res, false, name, &live)) {
    } else if (!live) {
        s_was_entry(p, false, batchsched_was_min_count(p->rcd), entry, sizeof(entry));
        s_was_req(p, CTRL_CREATE, false, name, pg, entry, NULL);
    } else if (jx_get(live, "metadata.deletionTimestamp")) {
        s_was_delete_pg(p, live);
        ctrl_fail(p->cp, NULL, "PodGroup %s/%s is being deleted, will retry", p->cp->ns, name);
    } else if (batchsched_was_podgroup_stale(live, pg)) {
        s_was_delete_pg(p, live);
        ctrl_fail(p->cp, NULL, "deleted stale PodGroup %s/%s, will retry after deletion completes",
                  p->cp->ns, name);
    }
    json_decref(w);
    json_decref(pg);
}

/* a stale Workload: its PodGroup goes first, then the Workload */
static void s_was_stale_pg_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    char name[CTRL_KEY_MAX + 16];
    snprintf(name, sizeof(name), "%s-%s", p->cp->name, BATCHSCHED_WAS_TEMPLATE);
    const json_t *live;
    if (!s_was_live(p, res, false, name, &live))
        return;
    if (live) {
        s_was_delete_pg(p, live);
        ctrl_fail(p->cp, NULL,
                  "deleted PodGroup %s/%s before replacing stale Workload, will retry after "
                  "deletion completes",
                  p->cp->ns, name);
        return;
    }
    s_was_delete_wl(p);
    ctrl_fail(p->cp, NULL, "deleted stale Workload %s/%s, will retry after deletion completes",
              p->cp->ns, p->cp->name);
}

/* syncWorkload, then syncPodGroup */
static void s_was_wl_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    json_t *w = NULL, *pg = NULL;
    const json_t *live;
    if (!s_was_build(p, &w, &pg))
        return;
    char entry[S_WAS_ENTRY_MAX];
    char pgname[CTRL_KEY_MAX + 16];
    snprintf(pgname, sizeof(pgname), "%s", jx_str(pg, "metadata.name", ""));
    if (!s_was_live(p, res, true, p->cp->name, &live)) {
    } else if (!live) {
        /* created, then the PodGroup (whose create waits for this one: one create at a time
         * until one succeeded, none after a failure) */
        s_was_off_entry(p, entry, sizeof(entry));
        ctrl_unensure(p->cp, entry);
        s_was_entry(p, true, batchsched_was_min_count(p->rcd), entry, sizeof(entry));
        s_was_req(p, CTRL_CREATE, true, p->cp->name, w, entry, NULL);
        s_was_get(p, false, pgname, s_was_pg_got);
    } else if (jx_get(live, "metadata.deletionTimestamp")) {
        ctrl_fail(p->cp, NULL, "Workload %s/%s is being deleted, will retry", p->cp->ns,
                  p->cp->name);
    } else if (batchsched_was_workload_stale(live, w)) {
        s_was_get(p, false, pgname, s_was_stale_pg_got);
    } else {
        s_was_get(p, false, pgname, s_was_pg_got);
    }
    json_decref(w);
    json_decref(pg);
}

/* The stage with the plugin kubernetes-was-v1alpha2. */
static void s_stage_was(pass_t *p)
{
    const char *skip = batchsched_was_skip_reason(p->rcd);
    char name[CTRL_KEY_MAX + 16], off[S_WAS_ENTRY_MAX];
    s_was_off_entry(p, off, sizeof(off));
    if (skip) {
        log_debug("Skipping Kubernetes workload-aware scheduling", "key", p->cp->key, "reason",
                  skip, "correlation_id", p->cp->corr, NULL);
        if (ctrl_ensured(p->cp, off, BATCHSCHED_REREAD_MS))
            return;
        snprintf(name, sizeof(name), "%s-%s", p->cp->name, BATCHSCHED_WAS_TEMPLATE);
        s_was_get(p, false, name, s_was_cleanup_pg_got);
        return;
    }
    /* gang scheduled now: a later skip reads again */
    ctrl_unensure(p->cp, off);
    /* not read again while both were written for this gang a moment ago */
    char we[S_WAS_ENTRY_MAX], pe[S_WAS_ENTRY_MAX];
    int64_t min = batchsched_was_min_count(p->rcd);
    s_was_entry(p, true, min, we, sizeof(we));
    s_was_entry(p, false, min, pe, sizeof(pe));
    if (ctrl_ensured(p->cp, we, BATCHSCHED_REREAD_MS) &&
        ctrl_ensured(p->cp, pe, BATCHSCHED_REREAD_MS))
        return;
    s_was_get(p, true, p->cp->name, s_was_wl_got);
}

/* ---------- batch scheduler PodGroup (DoBatchSchedulingOnSubmission) ---------- */

static void s_send_pg(pass_t *p, ctrl_verb_t verb, const json_t *pg)
{
    char group[128], version[64];
    buf_t entry;
    buf_init(&entry, CTRL_KEY_MAX - 1);
    if (batchsched_podgroup_api(pg, group, sizeof(group), version, sizeof(version)) != 0 ||
        batchsched_podgroup_key(pg, &entry) != 0) {
        ctrl_fail(p->cp, NULL, "PodGroup %s: bad apiVersion or too long",
                  jx_str(pg, "metadata.name", ""));
        buf_free(&entry);
        return;
    }
    bool create = verb == CTRL_CREATE;
    ctrl_send(
        p->cp,
        &(ctrl_req_t){.verb = verb,
                      .group = group,
                      .version = version,
                      .resource = "podgroups",
                      .kind = "PodGroup",
                      .name = jx_str(pg, "metadata.name", ""),
                      .noun = "PodGroup",
                      .ensure = buf_str(&entry),
                      .fail_reason = create ? "FailedToCreatePodGroup" : "FailedToUpdatePodGroup"},
        pg);
    buf_free(&entry);
}

/* syncPodGroup: create when absent; Volcano updates minMember/minResources of an existing one
 * when they differ (scheduler-plugins creates only). */
static void s_pg_got(ctrl_pass_t *cp, const k8s_result_t *res)
{
    pass_t *p = cp->data;
    json_t *want = NULL, *upd = NULL;
    batchsched_t b = p->r->pod_opts.batch_scheduler;
    if (batchsched_podgroup(b, p->rcd, &want, NULL) != 0 || !want)
        return; /* the stage checked it builds */
    const char *name = jx_str(want, "metadata.name", "");
    if (res->err && res->err != ERR_NOTFOUND) {
        ctrl_fail(p->cp, NULL, "failed to get PodGroup %s/%s, %s", p->cp->ns, name,
                  res->message[0] ? res->message : err_str(res->err));
    } else {
        const json_t *live = res->err == ERR_NOTFOUND ? NULL : res->body;
        switch (batchsched_podgroup_sync(live, want, b == BATCHSCHED_VOLCANO, &upd)) {
        case BATCHSCHED_SYNC_CREATE:
            s_send_pg(p, CTRL_CREATE, want);
            break;
        case BATCHSCHED_SYNC_UPDATE:
            if (upd)
                s_send_pg(p, CTRL_UPDATE, upd);
            else
                ctrl_fail(p->cp, NULL, "out of memory");
            break;
        case BATCHSCHED_SYNC_NONE:
            break;
        }
    }
    json_decref(upd);
    json_decref(want);
}

static void s_stage_podgroup(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    batchsched_t b = p->r->pod_opts.batch_scheduler;
    if (b == BATCHSCHED_NONE || s_cond_true(p->rc, RCS_COND_SUSPENDING) ||
        s_cond_true(p->rc, RCS_COND_SUSPENDED))
        return;
    if (b == BATCHSCHED_KUBERNETES_WAS) {
        s_stage_was(p);
        return;
    }
    buf_t err, entry;
    buf_init(&err, 4096);
    buf_init(&entry, CTRL_KEY_MAX - 1);
    json_t *want = NULL;
    char group[128], version[64];
    if (batchsched_podgroup(b, p->rcd, &want, &err) != 0)
        ctrl_fail(p->cp, NULL, "%s", err.len ? buf_str(&err) : "out of memory");
    /* not read again while written for this gang a moment ago */
    bool fresh = want && batchsched_podgroup_key(want, &entry) == 0 &&
                 ctrl_ensured(p->cp, buf_str(&entry), BATCHSCHED_REREAD_MS);
    if (want && !fresh &&
        batchsched_podgroup_api(want, group, sizeof(group), version, sizeof(version)) == 0)
        s_get_for(p, group, version, "podgroups", "PodGroup", jx_str(want, "metadata.name", ""),
                  s_pg_got);
    json_decref(want);
    buf_free(&err);
    buf_free(&entry);
}

/* reconcilePods up to the head Pod. KubeRay creates the head synchronously and returns when that
 * fails, before any worker: the workers are the next stage, which a failed pass skips. */
static void s_stage_head_pod(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    p->pods_done = true;
    /* suspend (gate RayClusterStatusConditions, on) */
    if (s_cond_true(p->rc, RCS_COND_SUSPENDING)) {
        size_t i, n = 0;
        json_t *pod;
        json_array_foreach(p->pods, i, pod)
        {
            if (jx_get(pod, "metadata.deletionTimestamp"))
                continue;
            const char *t = s_label(pod, LABEL_NODE_TYPE);
            const char *g =
                t && !strcmp(t, NAMES_NODE_HEAD) ? RECONCILE_HEAD_GROUP : s_label(pod, LABEL_GROUP);
            s_delete_pod(p, jx_str(pod, "metadata.name", ""), g ? g : "", "Pod", NULL,
                         "FailedToDeletePodCollection", "FailedDeleteAllPods");
            n++;
        }
        if (n)
            ctrl_event(p->cp, false, "DeletedPod", "Delete",
                       "Deleted Pods for RayCluster %s/%s due to suspension", p->cp->ns,
                       p->cp->name);
        return;
    }
    if (s_cond_true(p->rc, RCS_COND_SUSPENDED))
        return;
    if (s_recreate(p))
        return;
    if (p->mtls_on && s_mtls_ready(p) && json_array_size(p->pods) == 0) /* the first pods */
        ctrl_event(p->cp, false, "MTLSPKIReady", "Reconcile",
                   "mTLS PKI is ready for RayCluster %s/%s: the CA, head and worker certificates "
                   "are issued",
                   p->cp->ns, p->cp->name);
    s_head(p);
    p->pods_done = false;
}

/* reconcilePods' worker groups. */
static void s_stage_pods(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    if (p->pods_done || p->cp->failed)
        return;
    size_t gi;
    json_t *wg;
    json_array_foreach(jx_get(p->rcd, "spec.workerGroupSpecs"), gi, wg)
    {
        if (s_worker_group(p, (int)gi, wg))
            break;
    }
}

/* ---------- status ---------- */

static int s_load_children(pass_t *p);

/* calculateStatus of the pass at time `now` from its children (rcstatus_calculate() with the
 * head services among p->svcs). Returns the new status, or NULL with the error in `err`. */
static json_t *s_status_calc(pass_t *p, const char *now, buf_t *err)
{
    json_t *heads = json_array();
    if (!heads)
        return NULL;
    char *ident = names_identifier(p->cp->name, NAMES_NODE_HEAD);
    size_t i;
    json_t *s;
    json_array_foreach(p->svcs, i, s)
    {
        const char *c = s_label(s, LABEL_CLUSTER), *t = s_label(s, LABEL_NODE_TYPE);
        const char *id = s_label(s, LABEL_IDENTIFIER);
        if (c && t && id && ident && !strcmp(c, p->cp->name) && !strcmp(t, NAMES_NODE_HEAD) &&
            !strcmp(id, ident))
            json_array_append(heads, s);
    }
    free(ident);
    rcstatus_err_t e = {.reason = p->cp->fail_reason, .message = buf_str(&p->cp->fail_msg)};
    json_t *st = rcstatus_calculate(p->rcd, p->pods, heads, p->cp->failed ? &e : NULL, now, err);
    json_decref(heads);
    return st;
}

static void s_stage_status(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    /* calculateStatus reads the cache again; when this pass sent no request, nothing it did can
     * have changed the children since they were loaded at its start (a pass without requests runs
     * in one go), so the list loaded then is what KubeRay's second cache list would see */
    if (p->cp->sent && s_load_children(p) != 0) {
        p->cp->status_error = true;
        return;
    }
    char now[RFTIME_BUF];
    rftime_now(RFTIME_SEC, now, sizeof(now));
    buf_t err;
    buf_init(&err, RECONCILE_MSG_MAX);
    json_t *st = s_status_calc(p, now, &err);
    if (!st) {
        log_error("status not calculated", "key", p->cp->key, "error", buf_str(&err),
                  "correlation_id", p->cp->corr, NULL);
        p->cp->status_error = true;
        buf_free(&err);
        return;
    }
    buf_free(&err);
    ctrl_status_write(p->cp, st, rcstatus_changed);
}

/* ---------- desired objects (desired_objects rows, issue 6) ---------- */

/* The hash of a JSON value's compact sorted form into out; "" when it cannot be dumped. */
static void s_json_hash(const json_t *v, char out[RECONCILE_HASH_LEN + 1])
{
    out[0] = '\0';
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    if (text && hash_sha1_b32hex(text, strlen(text), HASH_UPPER, out, RECONCILE_HASH_LEN + 1) != 0)
        out[0] = '\0';
    free(text);
}

/* Appends one wanted child {"group", "kind", "name", "json", "reason"[, "hash"]} to `set`.
 * `name` (from names.h) and `obj` are stolen; obj NULL stands for {"want": 1}. Returns 0 or
 * ERR_NOMEM. */
static int s_want(json_t *set, const char *group, const char *kind, char *name, json_t *obj,
                  const char *hash, const char *reason)
{
    if (!obj)
        obj = json_pack("{s:i}", "want", 1);
    json_t *row = name && obj ? json_pack("{s:s, s:s, s:s, s:O, s:s}", "group", group, "kind", kind,
                                          "name", name, "json", obj, "reason", reason)
                              : NULL;
    free(name);
    json_decref(obj);
    if (row && hash && hash[0])
        json_object_set_new(row, "hash", json_string(hash));
    return row && json_array_append_new(set, row) == 0 ? 0 : ERR_NOMEM;
}

/* A copy of a C string, for s_want(). */
static char *s_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* One pod group row: want = desired pods, with numOfHosts and the template's hash. */
static int s_want_pods(json_t *set, const char *group, int64_t want, int64_t hosts,
                       const json_t *tmpl, const char *reason)
{
    char h[RECONCILE_HASH_LEN + 1];
    s_json_hash(tmpl, h);
    json_t *o = json_pack("{s:I, s:I, s:s}", "want", (json_int_t)want, "numOfHosts",
                          (json_int_t)hosts, "template_hash", h);
    return o ? s_want(set, "", "Pod", s_dup(group), o, h, reason) : ERR_NOMEM;
}

/* The children wanted for the defaulted RayCluster `rcd` named `name`: an array of
 * s_want() rows, in the order of the pass's stages. Returns NULL on out of memory. */
static json_t *s_desired_set(const json_t *rcd, const char *name)
{
    json_t *set = json_array();
    const json_t *spec = jx_get(rcd, "spec");
    int rc = set ? 0 : ERR_NOMEM;
    char why[RECONCILE_MSG_MAX];
    if (!rc && jx_bool(rcd, "spec.enableInTreeAutoscaling", false)) {
        const char *user = jx_str(rcd, "spec.headGroupSpec.template.spec.serviceAccountName", "");
        rc = s_want(set, "", "ServiceAccount", names_autoscaler_sa(name, spec), NULL, NULL,
                    user[0] ? "spec.headGroupSpec.template.spec.serviceAccountName names it "
                              "(the user creates it; the autoscaler needs it)"
                            : "spec.enableInTreeAutoscaling=true: the autoscaler's "
                              "ServiceAccount");
        if (!rc)
            rc = s_want(set, "rbac.authorization.k8s.io", "Role", names_autoscaler_role(name), NULL,
                        NULL, "spec.enableInTreeAutoscaling=true: the autoscaler's Role");
        if (!rc)
            rc = s_want(set, "rbac.authorization.k8s.io", "RoleBinding",
                        names_autoscaler_role(name), NULL, NULL,
                        "spec.enableInTreeAutoscaling=true: the autoscaler's RoleBinding");
    }
    if (!rc && jx_bool(rcd, "spec.headGroupSpec.enableIngress", false))
        rc = s_want(set, "networking.k8s.io", "Ingress", names_ingress(name), NULL, NULL,
                    "spec.headGroupSpec.enableIngress=true");
    if (!rc && objbuild_needs_auth_secret(rcd))
        rc = s_want(set, "", "Secret", names_check_name(name), NULL, NULL,
                    "spec.authOptions.mode=token without a secretName: the auth token Secret");
    if (!rc)
        rc = s_want(set, "", "Service", names_head_service(name, spec), NULL, NULL,
                    "every RayCluster has a head Service (spec.headGroupSpec)");
    if (!rc && objbuild_needs_headless(rcd))
        rc = s_want(set, "", "Service", names_headless_service(name), NULL, NULL,
                    "a worker group has numOfHosts > 1: the headless worker Service");
    if (!rc && objbuild_needs_serve_service(rcd))
        rc = s_want(set, "", "Service", names_serve_service(name), NULL, NULL,
                    "annotation " ANN_ENABLE_SERVE_SERVICE "=true: the serve Service");
    if (!rc && objbuild_needs_gcs_pvc(rcd))
        rc = s_want(set, "", "PersistentVolumeClaim", names_gcs_pvc(name), NULL, NULL,
                    "spec.gcsFaultToleranceOptions.backend=rocksdb without a claimName");
    if (!rc && netpol_wanted(rcd)) {
        json_t *nps = netpol_build(rcd);
        size_t k;
        json_t *np;
        rc = nps ? 0 : ERR_NOMEM;
        json_array_foreach(nps, k, np)
        {
            if (!rc)
                rc = s_want(set, "networking.k8s.io", "NetworkPolicy",
                            s_dup(jx_str(np, "metadata.name", "")), NULL, NULL,
                            k ? "spec.networkPolicy: the worker group's NetworkPolicy"
                              : "spec.networkPolicy: the head's NetworkPolicy");
        }
        json_decref(nps);
    }
    bool susp = jx_bool(rcd, "spec.suspend", false);
    if (!rc)
        rc = s_want_pods(set, RECONCILE_HEAD_GROUP, rcstatus_head_wanted(rcd), 1,
                         jx_get(rcd, "spec.headGroupSpec.template"),
                         susp ? "spec.suspend=true: no head pod"
                              : "spec.headGroupSpec: one head pod");
    size_t i;
    json_t *wg;
    json_array_foreach(jx_get(rcd, "spec.workerGroupSpecs"), i, wg)
    {
        if (rc)
            break;
        int64_t hosts = jx_int(wg, "numOfHosts", 1);
        int64_t want = rcstatus_group_wanted(rcd, wg);
        const json_t *raw = json_object_get(wg, "replicas");
        if (susp)
            snprintf(why, sizeof(why), "spec.suspend=true: no worker pods");
        else if (jx_bool(wg, "suspend", false))
            snprintf(why, sizeof(why), "spec.workerGroupSpecs[%zu].suspend=true", i);
        else if (json_is_integer(raw) && hosts > 0 && json_integer_value(raw) * hosts == want)
            snprintf(why, sizeof(why), "spec.workerGroupSpecs[%zu].replicas=%lld x numOfHosts %lld",
                     i, (long long)json_integer_value(raw), (long long)hosts);
        else
            snprintf(why, sizeof(why),
                     "spec.workerGroupSpecs[%zu].replicas=%s clamped to [minReplicas %lld, "
                     "maxReplicas %lld] = %lld x numOfHosts %lld",
                     i, json_is_integer(raw) ? "set" : "unset",
                     (long long)jx_int(wg, "minReplicas", 0),
                     (long long)jx_int(wg, "maxReplicas", INT32_MAX),
                     (long long)(hosts > 0 ? want / hosts : 0), (long long)hosts);
        rc =
            s_want_pods(set, jx_str(wg, "groupName", ""), want, hosts, jx_get(wg, "template"), why);
    }
    if (rc) {
        json_decref(set);
        return NULL;
    }
    return set;
}

/* The hash of the desired set `set` (s_desired_set()) of the RayCluster with uid `uid` into out,
 * "" when out of memory: sha1 of the uid and of every row's group, kind, name, reason, hash and
 * canonical json (jx_dump_canonical()), each ended by a NUL (no field holds one), so two texts are
 * equal exactly when the uids and the sets are. ctrl_desired_record() only compares it with the
 * hash it last wrote (in memory), so this needs no tree of the whole set dumped sorted. */
static void s_set_hash(const char *uid, const json_t *set, char out[RECONCILE_HASH_LEN + 1])
{
    static const char *const fields[] = {"group", "kind", "name", "reason", "hash"};
    out[0] = '\0';
    if (!set)
        return;
    buf_t b;
    buf_init(&b, S_SET_TEXT_MAX);
    int rc = buf_append(&b, uid, strlen(uid) + 1);
    size_t i;
    json_t *w;
    json_array_foreach(set, i, w)
    {
        for (size_t f = 0; rc == 0 && f < sizeof(fields) / sizeof(fields[0]); f++) {
            const char *v = jx_str(w, fields[f], "");
            rc = buf_append(&b, v, strlen(v) + 1);
        }
        if (rc == 0)
            rc = jx_dump_canonical(json_object_get(w, "json"), &b);
        if (rc == 0)
            rc = buf_append(&b, "", 1);
    }
    if (rc == 0 && hash_sha1_b32hex(b.data, b.len, HASH_UPPER, out, RECONCILE_HASH_LEN + 1) != 0)
        out[0] = '\0';
    buf_free(&b);
}

/* Records the children the pass wants in desired_objects (ctrl_desired_record(): rewritten only
 * when the set, with the RayCluster's uid, hashes differently from the one last written). */
static void s_desired_record(pass_t *p)
{
    if (!p->r->cfg.desired)
        return;
    json_t *set = s_desired_set(p->rcd, p->cp->name);
    char h[RECONCILE_HASH_LEN + 1];
    s_set_hash(jx_str(p->rc, "metadata.uid", ""), set, h);
    ctrl_desired_record(p->cp, set, h);
    json_decref(set);
}

/* ---------- the pass ---------- */

static const ctrl_stage_t s_stages[S_STAGES] = {
    [S_MTLS_API] = {s_stage_mtls_api, false},
    [S_SA] = {s_stage_sa, false},
    [S_ROLE] = {s_stage_role, false},
    [S_ROLE_BINDING] = {s_stage_role_binding, false},
    [S_INGRESS] = {s_stage_ingress, false},
    [S_AUTH_SECRET] = {s_stage_auth_secret, false},
    [S_HEAD_SVC] = {s_stage_head_svc, false},
    [S_HEADLESS_SVC] = {s_stage_headless, false},
    [S_SERVE_SVC] = {s_stage_serve_svc, false},
    [S_GCS_PVC] = {s_stage_gcs_pvc, false},
    [S_MTLS] = {s_stage_mtls, false},
    [S_PODGROUP] = {s_stage_podgroup, false},
    [S_HEAD_POD] = {s_stage_head_pod, false},
    [S_PODS] = {s_stage_pods, false},
    [S_NETPOL] = {s_stage_netpol, false},
    [S_STATUS] = {s_stage_status, true}, /* the status is written after a failure too */
};

static void s_pass_free(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    json_decref(p->rcd);
    json_decref(p->pods);
    json_decref(p->svcs);
    json_decref(p->names);
    json_decref(p->jobs);
    json_decref(p->netpols);
}

/* Adds the objects of `arr` to `map` under "<kind>/<name>" (the status stage's reload reuses them).
 */
static void s_index_children(json_t *map, const char *kind, json_t *arr)
{
    size_t i;
    json_t *o;
    char k[S_NAME_MAX + 16];
    json_array_foreach(arr, i, o)
    {
        snprintf(k, sizeof(k), "%s/%s", kind, jx_str(o, "metadata.name", ""));
        json_object_set(map, k, o);
    }
}

/* Compiles the child projections of `r` (s_keep_pod, ...). Returns 0 or ERR_NOMEM. */
static int s_proj_init(reconciler_t *r)
{
    static const char *const *const keep[S_CHILD_KINDS] = {s_keep_pod, s_keep_svc, s_keep_job,
                                                           s_keep_netpol};
    for (int k = 0; k < S_CHILD_KINDS; k++) {
        if (!r->proj[k] && !(r->proj[k] = jproj_new(keep[k], NULL)))
            return ERR_NOMEM;
    }
    return 0;
}

static void s_proj_free(reconciler_t *r)
{
    for (int k = 0; k < S_CHILD_KINDS; k++)
        jproj_destroy(&r->proj[k]);
}

/* The projection (see s_keep_pod) of the child row text `json` of kind S_CHILD_*, or NULL (out of
 * memory, not JSON). A text jproj rejects but json_loads() accepts (duplicate keys: jproj
 * validates like jx_parse) is loaded whole, as before projections. */
static json_t *s_child_parse(const reconciler_t *r, int kind, const char *json)
{
    jproj_result_t res;
    int rc = jproj_parse(r->proj[kind], json, strlen(json), NULL, &res, NULL);
    if (rc == ERR_PARSE)
        return json_loads(json, 0, NULL);
    if (rc != 0)
        return NULL;
    json_t *o = res.value;
    res.value = NULL;
    jproj_result_free(&res);
    return o;
}

/* Reads the pods, services and Jobs of the pass's RayCluster from observed.db. A reload in the
 * same pass (the status stage) parses only the rows whose resourceVersion changed since the
 * first load: an unchanged row is the object already parsed. */
static int s_load_children(pass_t *p)
{
    store_observed_list_t l = {0};
    int rc = store_observed_list_owner(p->r->cfg.observed, p->r->cluster, p->cp->ns, "RayCluster",
                                       p->cp->name, NULL, &l);
    if (rc != 0)
        return rc;
    json_t *old = NULL;
    if (p->pods || p->svcs || p->jobs) {
        old = json_object();
        if (old) {
            s_index_children(old, "Pod", p->pods);
            s_index_children(old, "Service", p->svcs);
            s_index_children(old, "Job", p->jobs);
            s_index_children(old, "NetworkPolicy", p->netpols);
        }
    }
    json_decref(p->pods);
    json_decref(p->svcs);
    json_decref(p->names);
    json_decref(p->jobs);
    json_decref(p->netpols);
    p->pods = json_array();
    p->svcs = json_array();
    p->names = json_object();
    p->jobs = json_array();
    p->netpols = json_array();
    for (size_t i = 0; i < l.n; i++) {
        const store_observed_t *row = l.rows[i];
        bool pod = !strcmp(row->kind, "Pod"), svc = !strcmp(row->kind, "Service");
        bool job = !strcmp(row->kind, "Job"), np = !strcmp(row->kind, "NetworkPolicy");
        if ((!pod && !svc && !job && !np) || !row->json)
            continue;
        json_t *o = NULL;
        if (old && row->resource_version) {
            char k[S_NAME_MAX + 16];
            snprintf(k, sizeof(k), "%s/%s", row->kind, row->name);
            json_t *prev = json_object_get(old, k);
            if (prev &&
                !strcmp(jx_str(prev, "metadata.resourceVersion", ""), row->resource_version))
                o = json_incref(prev);
        }
        if (!o)
            o = s_child_parse(p->r,
                              pod   ? S_CHILD_POD
                              : job ? S_CHILD_JOB
                              : np  ? S_CHILD_NETPOL
                                    : S_CHILD_SVC,
                              row->json);
        if (!o)
            continue;
        if (pod) {
            json_object_set_new(p->names, row->name, json_true());
            json_array_append_new(p->pods, o);
        } else if (job) {
            json_array_append_new(p->jobs, o);
        } else if (np) {
            json_array_append_new(p->netpols, o);
        } else {
            json_array_append_new(p->svcs, o);
        }
    }
    json_decref(old);
    store_observed_list_free(&l);
    return p->pods && p->svcs && p->names && p->jobs && p->netpols ? 0 : ERR_NOMEM;
}

/* Validation (pipeline steps 3-9). Returns 0 to go on, 1 to stop with no requeue, 2 to stop
 * with an error requeue. */
static int s_validate(pass_t *p)
{
    buf_t m;
    buf_init(&m, RECONCILE_MSG_MAX);
    int out = 0;
    const json_t *spec = jx_get(p->rcd, "spec");
    if (validate_metadata(p->rcd, &m) != 0) {
        ctrl_event(p->cp, true, VALIDATE_REASON_METADATA, "Validate", "%s %s/%s: %s",
                   VALIDATE_PREFIX_METADATA, p->cp->ns, p->cp->name, buf_str(&m));
        out = 1;
        goto done;
    }
    if (validate_spec(spec, jx_get(p->rcd, "metadata.annotations"), &p->r->gates, &m) != 0) {
        ctrl_event(p->cp, true, VALIDATE_REASON_SPEC, "Validate", "%s %s/%s: %s",
                   VALIDATE_PREFIX_SPEC, p->cp->ns, p->cp->name, buf_str(&m));
        out = 1;
        goto done;
    }
    buf_reset(&m);
    if (validate_autoscaler_v1_warning(spec, &m) == 1)
        ctrl_event(p->cp, true, VALIDATE_REASON_SPEC, "Validate", "%s", buf_str(&m));
    buf_reset(&m);
    if (validate_upgrade_options(p->rcd, &m) != 0) {
        ctrl_event(p->cp, true, VALIDATE_REASON_SPEC, "Validate", "%s %s/%s: %s",
                   VALIDATE_PREFIX_UPGRADE, p->cp->ns, p->cp->name, buf_str(&m));
        out = 1;
        goto done;
    }
    buf_reset(&m);
    const char *breason = NULL;
    int b = bounds_check(p->rcd, p->r->cfg.max_pods, &p->r->pod_opts, &breason, &m);
    if (b != 0) {
        if (b == 1) { /* rayfleet's bounds: the Event (audited), a log line, nothing else */
            ctrl_event(p->cp, true, breason, "Validate", "%s", buf_str(&m));
            log_warn("spec over a bound", "key", p->cp->key, "reason", breason, "message",
                     buf_str(&m), "correlation_id", p->cp->corr, NULL);
        }
        out = b == 1 ? 1 : 2;
        goto done;
    }
    buf_reset(&m);
    if (validate_status(p->rcd, &m) != 0) {
        ctrl_event(p->cp, true, VALIDATE_REASON_STATUS, "Validate", "%s", buf_str(&m));
        out = 2;
    }
done:
    if (out)
        p->r->invalid++;
    buf_free(&m);
    return out;
}

/* The pass's start once the runtime has read the RayCluster (pipeline steps 2-10). */
static ctrl_begin_t s_begin(ctrl_pass_t *cp)
{
    pass_t *p = cp->data;
    reconciler_t *r = ctrl_arg(cp->c);
    p->cp = cp;
    p->r = r;
    p->rc = cp->obj;
    /* 2. managedBy */
    const char *mb = jx_str(p->rc, "spec.managedBy", "");
    if (mb[0] && strcmp(mb, RECONCILE_MANAGED_BY) != 0) {
        if (ctrl_desired_written(cp))
            ctrl_desired_forget(cp);
        return CTRL_BEGIN_OK;
    }
    /* 3-9. defaults and validation. The defaults only fill spec fields (rayStartParams, replicas,
     * min/max, numOfHosts) that no step reads from p->rc, so they are applied in place and p->rcd
     * is the same object. An object already validated clean (no event, no error) at the same
     * (uid, resourceVersion) is not validated again and keeps its Recreate hash once computed
     * (the runtime's memo; "" until a pass needs the hash, s_hash()): validation and the hash are
     * functions of the object and the reconciler's fixed gates only, and a clean validation emits
     * nothing, so what KubeRay shows (events on invalid specs each reconcile, the autoscaler v1
     * warning each reconcile) is unchanged. */
    if (validate_apply_defaults(p->rc) != 0)
        return CTRL_BEGIN_ERROR;
    p->rcd = json_incref(p->rc);
    const char *uid = jx_str(p->rc, "metadata.uid", "");
    const char *orv = jx_str(p->rc, "metadata.resourceVersion", "");
    const char *memo = ctrl_memo_get(cp, uid, orv);
    if (memo) {
        /* "": validated clean, the hash not computed yet */
        snprintf(p->hash, sizeof(p->hash), "%s", memo);
        p->hash_done = memo[0] != '\0';
        p->memo_ok = true;
    } else {
        uint64_t ev0 = cp->events_sent;
        int v = s_validate(p);
        if (v == 1)
            return CTRL_BEGIN_OK;
        if (v == 2)
            return CTRL_BEGIN_ERROR;
        p->memo_ok = cp->events_sent == ev0 && orv[0];
        if (p->memo_ok)
            ctrl_memo_put(cp, uid, orv, "");
    }
    if (s_load_children(p) != 0)
        return CTRL_BEGIN_ERROR;
    /* 10. GCS FT Redis finalizer and deletion; a deleting RayCluster goes no further */
    if (s_gcs_ft(p))
        return CTRL_BEGIN_END;
    s_desired_record(p);
    return CTRL_BEGIN_STAGES;
}

/* The RayCluster kind on the controller runtime. */
static const ctrl_kind_t s_kind = {.group = RECONCILE_GROUP,
                                   .version = RECONCILE_VERSION,
                                   .kind = RECONCILE_KIND,
                                   .resource = RECONCILE_RESOURCE,
                                   .component = RECONCILE_COMPONENT,
                                   .instance = RECONCILE_INSTANCE,
                                   .pass_size = sizeof(pass_t),
                                   .begin = s_begin,
                                   .stages = s_stages,
                                   .nstages = S_STAGES,
                                   .pass_free = s_pass_free,
                                   /* For(RayCluster) with KubeRay's predicates */
                                   .status_echo_quiet = true};

void reconcile_fn(workq_t *q, const char *key, void *arg)
{
    reconciler_t *r = arg;
    ctrl_fn(q, key, r->ctrl);
}

int reconcile_note_change(reconciler_t *r, const envwire_object_changed_t *oc, char *out,
                          size_t size)
{
    return r ? ctrl_note_change(r->ctrl, oc, out, size) : ERR_INVAL;
}

/* A reconciler for `cfg` whose runtime captures its requests into `capture` (self-tests) when
 * not NULL. */
static reconciler_t *s_new(loop_t *loop, const reconcile_config_t *cfg, json_t *capture)
{
    if (!loop || !cfg || !cfg->cluster || !cfg->cluster[0] ||
        ((!cfg->observed || !cfg->client) && !capture) || strlen(cfg->cluster) >= S_NAME_MAX)
        return NULL;
    reconciler_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->cfg = *cfg;
    snprintf(r->cluster, sizeof(r->cluster), "%s", cfg->cluster);
    r->cfg.cluster = r->cluster;
    if (cfg->pod_opts)
        r->pod_opts = *cfg->pod_opts;
    else
        podbuild_opts_init(&r->pod_opts);
    if (cfg->gates)
        r->gates = *cfg->gates;
    else
        validate_gates_default(&r->gates);
    r->ctrl = ctrl_new(loop, &(ctrl_config_t){.kind = &s_kind,
                                              .cluster = r->cluster,
                                              .observed = cfg->observed,
                                              .client = cfg->client,
                                              .audit = cfg->audit,
                                              .desired = cfg->desired,
                                              .events = cfg->events,
                                              .requeue_ms = cfg->requeue_ms,
                                              .fence = cfg->fence,
                                              .fence_arg = cfg->fence_arg,
                                              .arg = r,
                                              .capture = capture});
    if (!r->ctrl || s_proj_init(r) != 0) {
        reconcile_destroy(&r);
        return NULL;
    }
    return r;
}

reconciler_t *reconcile_new(loop_t *loop, const reconcile_config_t *cfg)
{
    return s_new(loop, cfg, NULL);
}

void reconcile_destroy(reconciler_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    reconciler_t *r = *r_p;
    ctrl_destroy(&r->ctrl);
    s_proj_free(r);
    free(r);
    *r_p = NULL;
}

void reconcile_stats(const reconciler_t *r, reconcile_stats_t *out)
{
    if (!r || !out)
        return;
    ctrl_stats_t cs;
    ctrl_stats(r->ctrl, &cs);
    *out = (reconcile_stats_t){.passes = cs.passes,
                               .not_found = cs.not_found,
                               .invalid = r->invalid,
                               .creates = cs.creates,
                               .deletes = cs.deletes,
                               .status_writes = cs.status_writes,
                               .updates = cs.updates,
                               .events = cs.events,
                               .fenced = cs.fenced,
                               .write_errors = cs.write_errors,
                               .errors = cs.errors,
                               .skipped_groups = cs.skipped_groups};
}

ctrl_t *reconcile_ctrl(const reconciler_t *r)
{
    return r ? r->ctrl : NULL;
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---------- self-test ---------- */

/* parent[k], made an empty object when it is not one. */
static json_t *s_t_obj_child(json_t *parent, const char *k)
{
    json_t *o = json_object_get(parent, k);
    if (!json_is_object(o)) {
        o = json_object();
        if (!o || json_object_set_new(parent, k, o) != 0)
            return NULL;
    }
    return o;
}

/* ---------- self-test: projected children decide as the full objects ---------- */

/* Gives the built `pod` (named `name`, n-th) the metadata and the status of variant `v` (0..5);
 * variant 5 has a stale Recreate hash, and another operator's version when `old_version`. */
static void s_t_pod_status(json_t *pod, int v, const char *name, int n, bool old_version)
{
    char rv[32];
    snprintf(rv, sizeof(rv), "%d", 1000 + n);
    jx_set_path(pod, "metadata.name", json_string(name));
    jx_set_path(pod, "metadata.namespace", json_string("default"));
    jx_set_path(pod, "metadata.uid", json_string(name));
    jx_set_path(pod, "metadata.resourceVersion", json_string(rv));
    jx_set_path(pod, "metadata.creationTimestamp", json_string("2024-01-01T00:00:00Z"));
    jx_set_path(pod, "metadata.managedFields",
                json_pack("[{s:s, s:s, s:{s:{}}}]", "manager", "kubelet", "operation", "Update",
                          "fieldsV1", "f:status"));
    jx_set_path(pod, "spec.nodeName", json_string("node-1"));
    const char *c0 = jx_str(json_array_get(jx_get(pod, "spec.containers"), 0), "name", "ray");
    const char *phase[] = {"Running", "Pending", "Failed", "Running", "Running", "Running"};
    json_t *st = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "phase", phase[v],
                           "podIP", v == 1 ? "" : "10.1.0.7", "hostIP", "10.0.0.1", "startTime",
                           "2024-01-01T00:00:01Z", "conditions", "type", "PodScheduled", "status",
                           "True", "type", "Initialized", "status", "True");
    json_t *conds = json_object_get(st, "conditions");
    json_t *cs = NULL;
    if (v == 0 || v >= 4) {
        json_array_append_new(conds, json_pack("{s:s, s:s}", "type", "Ready", "status", "True"));
        cs = json_pack("{s:s, s:b, s:i, s:{s:{s:s}}}", "name", c0, "ready", 1, "restartCount", 0,
                       "state", "running", "startedAt", "2024-01-01T00:00:02Z");
    } else if (v == 1 || v == 3) {
        json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s}", "type", "Ready", "status",
                                               "False", "reason", "ContainersNotReady", "message",
                                               "containers with unready status"));
        cs = v == 1
                 ? json_pack("{s:s, s:b, s:{s:{s:s, s:s}}}", "name", c0, "ready", 0, "state",
                             "waiting", "reason", "ImagePullBackOff", "message", "back-off")
                 : json_pack("{s:s, s:b, s:{s:{s:i, s:s, s:s}}}", "name", c0, "ready", 0, "state",
                             "terminated", "exitCode", 1, "reason", "Error", "message", "boom");
        if (v == 3)
            jx_set_path(pod, "spec.restartPolicy", json_string("Never"));
    }
    if (cs)
        json_object_set_new(st, "containerStatuses", json_pack("[o]", cs));
    json_object_set_new(pod, "status", st);
    if (v == 4)
        jx_set_path(pod, "metadata.deletionTimestamp", json_string("2024-01-01T00:00:09Z"));
    if (v == 5) {
        json_t *ann = s_t_obj_child(json_object_get(pod, "metadata"), "annotations");
        json_object_set_new(ann, ANN_RECREATE_HASH, json_string("stale"));
        if (old_version)
            json_object_set_new(ann, ANN_KUBERAY_VERSION, json_string("v0.0.1"));
    }
}

/* The decisions of the stages that read children (GCS FT deletion, services, pods) and the status
 * of RayCluster `rc` (hash `hash`) over the children texts `kids` ({"Pod": [text], "Service",
 * "Job"}) parsed whole (project false) or projected. Returns a new summary object. */
static json_t *s_t_decide(loop_t *loop, json_t *rc, const char *hash, const json_t *kids,
                          bool project)
{
    json_t *capture = json_array();
    reconciler_t *r = capture ? s_new(loop, &(reconcile_config_t){.cluster = "c1"}, capture) : NULL;
    char key[CTRL_KEY_MAX];
    snprintf(key, sizeof(key), "c1/default/%.400s", jx_str(rc, "metadata.name", ""));
    ctrl_pass_t *cp = r ? ctrl_test_pass(r->ctrl, key, rc) : NULL;
    pass_t *p = cp ? cp->data : NULL;
    json_t *out = NULL;
    if (!p)
        goto done;
    p->cp = cp;
    p->r = r;
    p->rc = rc;
    p->rcd = json_incref(rc);
    snprintf(p->hash, sizeof(p->hash), "%s", hash);
    p->pods = json_array();
    p->svcs = json_array();
    p->jobs = json_array();
    p->netpols = json_array();
    p->names = json_object();
    if (!p->pods || !p->svcs || !p->jobs || !p->netpols || !p->names)
        goto done;
    static const char *const kinds[S_CHILD_KINDS] = {"Pod", "Service", "Job", "NetworkPolicy"};
    for (int k = 0; k < S_CHILD_KINDS; k++) {
        size_t i;
        json_t *t;
        json_t *arr = k == S_CHILD_POD   ? p->pods
                      : k == S_CHILD_SVC ? p->svcs
                      : k == S_CHILD_JOB ? p->jobs
                                         : p->netpols;
        json_array_foreach(json_object_get(kids, kinds[k]), i, t)
        {
            const char *text = json_string_value(t);
            json_t *o = project ? s_child_parse(r, k, text) : json_loads(text, 0, NULL);
            if (k == S_CHILD_POD)
                json_object_set_new(p->names, jx_str(o, "metadata.name", ""), json_true());
            json_array_append_new(arr, o);
        }
    }
    if (!s_gcs_ft(p)) {
        void (*const stages[])(ctrl_pass_t *) = {s_stage_head_svc, s_stage_headless,
                                                 s_stage_serve_svc, s_stage_head_pod, s_stage_pods};
        for (size_t s = 0; s < sizeof(stages) / sizeof(stages[0]) && !cp->failed; s++)
            stages[s](cp);
    }
    buf_t err;
    buf_init(&err, RECONCILE_MSG_MAX);
    json_t *st = s_status_calc(p, "2024-01-01T00:00:10Z", &err);
    out = json_pack("{s:O, s:b, s:s, s:s, s:I, s:b, s:o?, s:s}", "requests", capture, "failed",
                    cp->failed, "reason", cp->fail_reason ? cp->fail_reason : "", "message",
                    buf_str(&cp->fail_msg), "requeue", (json_int_t)cp->requeue_ms, "short",
                    cp->short_requeue, "status", st, "status_error", buf_str(&err));
    buf_free(&err);
done:
    ctrl_test_pass_free(&cp);
    reconcile_destroy(&r);
    json_decref(capture);
    return out;
}

/* Appends the text of `o` (stolen) to kids[kind]. */
static void s_t_kid(json_t *kids, const char *kind, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!json_is_array(json_object_get(kids, kind)))
        json_object_set_new(kids, kind, json_array());
    if (text)
        json_array_append_new(json_object_get(kids, kind), json_string(text));
    free(text);
    json_decref(o);
}

/* Coverage of the scenarios (what the decisions did, summed over all). */
typedef struct {
    int clusters, runs, equal, creates, deletes, patches, events, failed, statuses;
} s_t_cov_t;

/* One scenario `sc` (0..5) of the RayCluster `base`: its children built, given statuses, and
 * the decisions from full and projected children compared. Returns false on a difference. */
static bool s_t_scenario(loop_t *loop, const json_t *base, int sc, s_t_cov_t *cov, bool verbose)
{
    json_t *rc = json_deep_copy(base);
    json_t *kids = json_object();
    bool ok = false;
    if (!rc || !kids)
        goto out;
    const char *name = jx_str(rc, "metadata.name", "");
    if (sc == 2)
        jx_set_path(rc, "spec.upgradeStrategy", json_pack("{s:s}", "type", "Recreate"));
    if (sc == 2 || sc == 5)
        jx_set_path(rc, "status.conditions",
                    json_pack("[{s:s, s:s}]", "type", RCS_COND_PROVISIONED, "status", "True"));
    if (sc == 3)
        jx_set_path(rc, "status.conditions",
                    json_pack("[{s:s, s:s}]", "type", RCS_COND_SUSPENDING, "status", "True"));
    if (sc >= 4) {
        json_t *ann = s_t_obj_child(json_object_get(rc, "metadata"), "annotations");
        json_object_set_new(ann, ANN_FT_ENABLED, json_string("true"));
        jx_set_path(rc, "metadata.deletionTimestamp", json_string("2099-01-01T00:00:00Z"));
        jx_set_path(rc, "metadata.finalizers", json_pack("[s]", FINALIZER_GCS_FT_REDIS_CLEANUP));
    }
    char hash[RECONCILE_HASH_LEN + 1] = "";
    if (reconcile_spec_hash(jx_get(rc, "spec"), hash, sizeof(hash)) != 0)
        hash[0] = '\0';
    podbuild_opts_t po;
    podbuild_opts_init(&po);
    po.recreate_hash = hash[0] ? hash : NULL;
    int n = 0;
    char pn[S_NAME_MAX];
    json_t *hp = NULL;
    buf_t err;
    buf_init(&err, RECONCILE_MSG_MAX);
    if (podbuild_head(rc, &po, &hp, &err) == 0) {
        json_t *job = objbuild_redis_cleanup_job(rc, hp);
        if (job) {
            jx_set_path(job, "metadata.resourceVersion", json_string("900"));
            jx_set_path(job, "status",
                        json_pack("{s:[{s:s, s:s}]}", "conditions", "type", "Complete", "status",
                                  (cov->clusters % 2) ? "True" : "False"));
        }
        if (sc >= 4)
            s_t_kid(kids, "Job", job);
        else
            json_decref(job);
        if (sc != 5 && sc != 1) {
            snprintf(pn, sizeof(pn), "%s-head-x", name);
            /* Recreate (sc 2): the head's hash current, stale, or stale from another version */
            int v = sc == 0 ? 0 : sc == 2 ? (cov->clusters % 3 ? 5 : 0) : (sc + 3) % 6;
            s_t_pod_status(hp, v, pn, n++, cov->clusters % 3 == 2);
            s_t_kid(kids, "Pod", json_incref(hp));
        }
    }
    json_decref(hp);
    size_t gi;
    json_t *wg;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), gi, wg)
    {
        int64_t hosts = jx_int(wg, "numOfHosts", 1), want = rcstatus_group_desired(wg);
        if (hosts < 1)
            hosts = 1;
        int64_t reps = want / hosts + (sc == 1 ? 1 : 0) - (sc == 4 ? 1 : 0);
        for (int64_t k = 0; k < reps && k < 3; k++) {
            char rname[S_NAME_MAX];
            snprintf(rname, sizeof(rname), "%s-r%lld", jx_str(wg, "groupName", ""), (long long)k);
            for (int64_t h = 0; h < hosts && h < 4; h++) {
                podbuild_replica_t rep = {.replica_index = (int)k,
                                          .replica_name = hosts > 1 ? rname : NULL,
                                          .host_index = (int)h};
                json_t *wp = NULL;
                buf_reset(&err);
                if (podbuild_worker_ex(rc, (int)gi, &rep, &po, &wp, &err) != 0)
                    continue;
                snprintf(pn, sizeof(pn), "%s-%s-worker-%d", name, jx_str(wg, "groupName", ""), n);
                s_t_pod_status(wp, sc == 0 ? 0 : (n + sc) % 6, pn, n, n % 2);
                n++;
                s_t_kid(kids, "Pod", wp);
            }
        }
    }
    if (sc != 2) {
        buf_reset(&err);
        json_t *svc = objbuild_head_service(rc, NULL, &err);
        if (svc) {
            jx_set_path(svc, "metadata.resourceVersion", json_string("800"));
            jx_set_path(svc, "spec.clusterIP", json_string(sc == 3 ? "None" : "10.96.0.10"));
            json_t *ports = jx_get(svc, "spec.ports");
            if (json_array_size(ports) > 0)
                json_object_set_new(json_array_get(ports, 0), "nodePort", json_integer(30001));
        }
        s_t_kid(kids, "Service", svc);
        if (objbuild_needs_headless(rc) && sc != 1)
            s_t_kid(kids, "Service", objbuild_headless_service(rc));
        if (objbuild_needs_serve_service(rc)) {
            buf_reset(&err);
            s_t_kid(kids, "Service", objbuild_serve_service(rc, &err));
        }
    }
    buf_free(&err);
    json_t *full = s_t_decide(loop, rc, hash, kids, false);
    json_t *proj = s_t_decide(loop, rc, hash, kids, true);
    ok = full && proj && json_equal(full, proj);
    cov->runs++;
    if (!ok) {
        char *a = full ? json_dumps(full, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        char *b = proj ? json_dumps(proj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        printf("reconcile: %s scenario %d: full %.2000s\nprojected %.2000s\n", name, sc,
               a ? a : "(null)", b ? b : "(null)");
        free(a);
        free(b);
    } else {
        cov->equal++;
        size_t i;
        json_t *q;
        json_array_foreach(json_object_get(full, "requests"), i, q)
        {
            int w = (int)jx_int(q, "what", 0);
            cov->creates += w == CTRL_CREATE;
            cov->deletes += w == CTRL_DELETE;
            cov->patches += w == CTRL_PATCH;
            cov->events += json_object_get(q, "event") != NULL;
        }
        cov->failed += jx_bool(full, "failed", false);
        cov->statuses += json_is_object(json_object_get(full, "status"));
    }
    json_decref(full);
    json_decref(proj);
out:
    json_decref(rc);
    json_decref(kids);
    return ok;
}

/* True when reconcile_spec_hash() of `spec` equals the hash of a deep copy with the same deletions
 * (the definition in reconcile.h) and leaves `spec` as it was. */
static bool s_t_spec_hash_same(const json_t *spec)
{
    json_t *s = json_deep_copy(spec);
    char *before = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    json_object_del(s, "upgradeStrategy");
    s_strip_template(jx_get(s, "headGroupSpec.template.spec"));
    size_t i;
    json_t *wg;
    json_array_foreach(json_object_get(s, "workerGroupSpecs"), i, wg)
    {
        json_object_del(wg, "replicas");
        json_object_del(wg, "minReplicas");
        json_object_del(wg, "maxReplicas");
        json_object_del(json_object_get(wg, "scaleStrategy"), "workersToDelete");
        s_strip_template(jx_get(wg, "template.spec"));
    }
    char *text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    char want[RECONCILE_HASH_LEN + 1] = "", got[RECONCILE_HASH_LEN + 1] = "";
    bool ok = text && before &&
              hash_sha1_b32hex(text, strlen(text), HASH_UPPER, want, sizeof(want)) == 0 &&
              reconcile_spec_hash(spec, got, sizeof(got)) == 0 && !strcmp(want, got);
    char *after = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    ok = ok && after && !strcmp(before, after);
    free(text);
    free(before);
    free(after);
    json_decref(s);
    return ok;
}

/* Every RayCluster of the upstream samples, each scenario: decisions from projected children
 * equal those from the full objects. */
static int s_t_children(bool verbose)
{
    int failed = 0;
    const char *shared = selftest_shared_dir();
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/kuberay/samples", shared ? shared : ".");
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    loop_t *loop = loop_new();
    CHECK(loop != NULL);
    s_t_cov_t cov = {0};
    struct dirent *de;
    while (d && loop && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".yaml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        json_t *docs = NULL;
        if (yaml_load_file(path, 8u << 20, &docs, NULL) != 0)
            continue;
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc)
        {
            if (strcmp(jx_str(doc, "kind", ""), "RayCluster") != 0 ||
                !jx_str(doc, "metadata.name", NULL))
                continue;
            json_t *rc = json_deep_copy(doc);
            jx_set_path(rc, "metadata.namespace", json_string("default"));
            jx_set_path(rc, "metadata.uid", json_string("uid-rc"));
            jx_set_path(rc, "metadata.resourceVersion", json_string("77"));
            if (rc && validate_apply_defaults(rc) == 0) {
                CHECK(s_t_spec_hash_same(jx_get(rc, "spec")));
                for (int sc = 0; sc < 6; sc++)
                    CHECK(s_t_scenario(loop, rc, sc, &cov, verbose));
                cov.clusters++;
            }
            json_decref(rc);
        }
        json_decref(docs);
    }
    if (d)
        closedir(d);
    loop_destroy(&loop);
    if (verbose)
        printf("reconcile: projected children: %d clusters, %d/%d runs equal; %d creates, %d "
               "deletes, %d patches, %d events, %d failed passes, %d statuses\n",
               cov.clusters, cov.equal, cov.runs, cov.creates, cov.deletes, cov.patches, cov.events,
               cov.failed, cov.statuses);
    /* the scenarios reach every kind of decision */
    CHECK(cov.clusters >= 10 && cov.equal == cov.runs);
    CHECK(cov.creates > 0 && cov.deletes > 0 && cov.patches > 0 && cov.events > 0);
    CHECK(cov.failed > 0 && cov.statuses > 0 && cov.statuses < cov.runs);

    /* the projection keeps what the steps read and drops the rest; a text jproj rejects but
     * json_loads() accepts (duplicate keys) is loaded whole; a bad text is no object */
    reconciler_t r = {0};
    CHECK(s_proj_init(&r) == 0);
    json_t *o = s_child_parse(
        &r, S_CHILD_POD,
        "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"b\"},\"managedFields\":[{}]},"
        "\"spec\":{\"containers\":[{\"name\":\"ray\",\"image\":\"x\"}],\"nodeName\":\"n\"},"
        "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"ray\","
        "\"image\":\"x\",\"state\":{\"terminated\":{\"exitCode\":1}}}]}}");
    CHECK(o && !strcmp(jx_str(o, "metadata.name", ""), "p") && s_label(o, "a"));
    CHECK(!strcmp(jx_str(json_array_get(jx_get(o, "spec.containers"), 0), "name", ""), "ray"));
    CHECK(!json_object_get(json_array_get(jx_get(o, "spec.containers"), 0), "image"));
    CHECK(!jx_get(o, "metadata.managedFields") && !jx_get(o, "spec.nodeName"));
    json_t *cs0 = json_array_get(jx_get(o, "status.containerStatuses"), 0);
    CHECK(jx_get(cs0, "state.terminated") && !json_object_get(cs0, "image"));
    json_decref(o);
    o = s_child_parse(&r, S_CHILD_SVC, "{\"metadata\":{\"name\":\"a\",\"name\":\"b\"}}");
    CHECK(o && !strcmp(jx_str(o, "metadata.name", ""), "b"));
    json_decref(o);
    CHECK(s_child_parse(&r, S_CHILD_JOB, "{\"metadata\":") == NULL);
    s_proj_free(&r);
    return failed;
}

/* The PodGroup stage (capture): a GET of ray-<name>-pg, then on NotFound a create with the built
 * PodGroup; an equal live one: nothing; a differing one: an update keeping the live metadata. */
static int s_t_podgroup(loop_t *loop, bool verbose)
{
    int failed = 0;
    json_t *capture = json_array();
    podbuild_opts_t po;
    podbuild_opts_init(&po);
    po.batch_scheduler = BATCHSCHED_VOLCANO;
    reconciler_t *r = s_new(loop, &(reconcile_config_t){.cluster = "c1", .pod_opts = &po}, capture);
    json_t *rc = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, s:{s:{s:{s:{s:[{s:s, s:{s:{s:s}}}]}}}}}",
        "apiVersion", "ray.io/v1", "kind", "RayCluster", "metadata", "name", "pgc", "namespace",
        "default", "uid", "u9", "labels", "volcano.sh/queue-name", "q", "spec", "headGroupSpec",
        "template", "spec", "containers", "name", "h", "resources", "requests", "cpu", "2");
    ctrl_pass_t *cp = r ? ctrl_test_pass(r->ctrl, "c1/default/pgc", rc) : NULL;
    pass_t *p = cp ? cp->data : NULL;
    CHECK(p != NULL);
    if (p) {
        p->cp = cp;
        p->r = r;
        p->rc = rc;
        p->rcd = json_incref(rc);
        s_stage_podgroup(cp);
        const json_t *get = json_array_get(capture, 0);
        CHECK(json_array_size(capture) == 1 && jx_int(get, "what", -1) == CTRL_GET &&
              strcmp(jx_str(get, "name", ""), "ray-pgc-pg") == 0 &&
              strcmp(jx_str(get, "kind", ""), "PodGroup") == 0);
        k8s_result_t res = {.err = ERR_NOTFOUND, .reason = "NotFound", .message = ""};
        s_pg_got(cp, &res);
        const json_t *cr = json_array_get(capture, 1);
        CHECK(json_array_size(capture) == 2 && jx_int(cr, "what", -1) == CTRL_CREATE &&
              jx_int(cr, "body.spec.minMember", 0) == 1 &&
              strcmp(jx_str(cr, "body.spec.minResources.cpu", ""), "2") == 0 &&
              strcmp(jx_str(cr, "body.spec.queue", ""), "q") == 0);
        json_t *live = json_deep_copy(jx_get(cr, "body"));
        res = (k8s_result_t){.err = 0, .reason = "", .message = "", .body = live};
        s_pg_got(cp, &res);
        CHECK(json_array_size(capture) == 2); /* as wanted: nothing */
        json_object_set_new(json_object_get(live, "spec"), "minMember", json_integer(5));
        json_object_set_new(json_object_get(live, "metadata"), "resourceVersion", json_string("3"));
        s_pg_got(cp, &res);
        const json_t *up = json_array_get(capture, 2);
        CHECK(json_array_size(capture) == 3 && jx_int(up, "what", -1) == CTRL_UPDATE &&
              jx_int(up, "body.spec.minMember", 0) == 1 &&
              strcmp(jx_str(up, "body.metadata.resourceVersion", ""), "3") == 0);
        json_decref(live);
        /* suspended: no PodGroup traffic */
        json_t *conds = json_pack("[{s:s, s:s}]", "type", RCS_COND_SUSPENDED, "status", "True");
        json_object_set_new(rc, "status", json_pack("{s:o}", "conditions", conds));
        s_stage_podgroup(cp);
        CHECK(json_array_size(capture) == 3);
        if (verbose)
            printf("reconcile: PodGroup stage get/create/none/update checked\n");
    }
    ctrl_test_pass_free(&cp);
    reconcile_destroy(&r);
    json_decref(rc);
    json_decref(capture);
    return failed;
}

/* The last captured request: its verb, kind and name. */
static bool s_t_last(const json_t *capture, size_t n, ctrl_verb_t what, const char *kind,
                     const char *name)
{
    const json_t *q = json_array_get(capture, json_array_size(capture) - 1);
    return json_array_size(capture) == n && jx_int(q, "what", -1) == what &&
           strcmp(jx_str(q, "kind", ""), kind) == 0 && strcmp(jx_str(q, "name", ""), name) == 0;
}

/* A failure of the pass whose message contains `msg`; the flag is cleared for the next step. */
static bool s_t_failed(ctrl_pass_t *cp, const char *msg)
{
    bool ok = cp->failed && strstr(buf_str(&cp->fail_msg), msg) != NULL;
    cp->failed = false;
    buf_reset(&cp->fail_msg);
    return ok;
}

/* The Kubernetes WAS stage (capture): the GETs in KubeRay's order and the writes each answer
 * leads to (create, stale replacement with the finalizer removed, foreign and deleting objects,
 * the cleanup of a skipped cluster). */
static int s_t_was(loop_t *loop, bool verbose)
{
    int failed = 0;
    json_t *capture = json_array();
    podbuild_opts_t po;
    podbuild_opts_init(&po);
    po.batch_scheduler = BATCHSCHED_KUBERNETES_WAS;
    reconciler_t *r = s_new(loop, &(reconcile_config_t){.cluster = "c1", .pod_opts = &po}, capture);
    json_t *rc = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, s:{s:{s:{s:{s:[{s:s}]}}}, s:[{s:s, s:i}]}}",
        "apiVersion", "ray.io/v1", "kind", "RayCluster", "metadata", "name", "g", "namespace",
        "default", "uid", "u7", "labels", LABEL_GANG_SCHEDULING, "true", "spec", "headGroupSpec",
        "template", "spec", "containers", "name", "h", "workerGroupSpecs", "groupName", "wg",
        "replicas", 2);
    ctrl_pass_t *cp = r ? ctrl_test_pass(r->ctrl, "c1/default/g", rc) : NULL;
    pass_t *p = cp ? cp->data : NULL;
    CHECK(p != NULL);
    if (p) {
        p->cp = cp;
        p->r = r;
        p->rc = rc;
        p->rcd = json_incref(rc);
        k8s_result_t nf = {.err = ERR_NOTFOUND, .reason = "NotFound", .message = ""};
        s_stage_podgroup(cp);
        CHECK(s_t_last(capture, 1, CTRL_GET, "Workload", "g"));
        /* absent: the Workload created, then the PodGroup read and created */
        s_was_wl_got(cp, &nf);
        const json_t *cw = json_array_get(capture, 1);
        CHECK(
            jx_int(cw, "what", -1) == CTRL_CREATE &&
            strcmp(jx_str(cw, "body.apiVersion", ""), "scheduling.k8s.io/v1alpha2") == 0 &&
            strcmp(jx_str(json_array_get(jx_get(cw, "body.spec.podGroupTemplates"), 0), "name", ""),
                   "cluster") == 0 &&
            jx_int(json_array_get(jx_get(cw, "body.spec.podGroupTemplates"), 0),
                   "schedulingPolicy.gang.minCount", 0) == 3);
        CHECK(s_t_last(capture, 3, CTRL_GET, "PodGroup", "g-cluster"));
        s_was_pg_got(cp, &nf);
        CHECK(s_t_last(capture, 4, CTRL_CREATE, "PodGroup", "g-cluster"));
        json_t *lw = json_deep_copy(jx_get(json_array_get(capture, 1), "body"));
        json_t *lp = json_deep_copy(jx_get(json_array_get(capture, 3), "body"));
        CHECK(!cp->failed);
        /* as wanted: the PodGroup read, nothing written */
        k8s_result_t res = {.body = lw, .reason = "", .message = ""};
        s_was_wl_got(cp, &res);
        CHECK(s_t_last(capture, 5, CTRL_GET, "PodGroup", "g-cluster"));
        res.body = lp;
        s_was_pg_got(cp, &res);
        CHECK(json_array_size(capture) == 5 && !cp->failed);
        /* a Workload another owner controls: the pass fails, nothing written */
        json_t *foreign = json_deep_copy(lw);
        json_object_set_new(json_array_get(jx_get(foreign, "metadata.ownerReferences"), 0), "uid",
                            json_string("other"));
        res.body = foreign;
        s_was_wl_got(cp, &res);
        CHECK(json_array_size(capture) == 5 &&
              s_t_failed(cp, "Workload default/g is not controlled by RayCluster default/g"));
        json_decref(foreign);
        /* a Workload being deleted: retry */
        json_t *dying = json_deep_copy(lw);
        json_object_set_new(json_object_get(dying, "metadata"), "deletionTimestamp",
                            json_string("2026-01-01T00:00:00Z"));
        res.body = dying;
        s_was_wl_got(cp, &res);
        CHECK(json_array_size(capture) == 5 &&
              s_t_failed(cp, "Workload default/g is being deleted, will retry"));
        json_decref(dying);
        /* scaled to 3 workers: the stale Workload's PodGroup goes first (finalizer removed) */
        json_object_set_new(json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0), "replicas",
                            json_integer(3));
        res.body = lw;
        s_was_wl_got(cp, &res);
        CHECK(s_t_last(capture, 6, CTRL_GET, "PodGroup", "g-cluster"));
        json_object_set_new(json_object_get(lp, "metadata"), "finalizers",
                            json_pack("[s]", BATCHSCHED_WAS_FINALIZER));
        res.body = lp;
        s_was_stale_pg_got(cp, &res);
        const json_t *un = json_array_get(capture, 6);
        CHECK(jx_int(un, "what", -1) == CTRL_UPDATE &&
              json_array_size(jx_get(un, "body.metadata.finalizers")) == 0);
        CHECK(s_t_last(capture, 8, CTRL_DELETE, "PodGroup", "g-cluster"));
        CHECK(s_t_failed(cp, "deleted PodGroup default/g-cluster before replacing stale Workload, "
                             "will retry after deletion completes"));
        s_was_stale_pg_got(cp, &nf);
        CHECK(s_t_last(capture, 9, CTRL_DELETE, "Workload", "g"));
        CHECK(s_t_failed(cp, "deleted stale Workload default/g, will retry after deletion "
                             "completes"));
        /* a stale PodGroup being deleted: only its finalizer removed, then retry */
        json_object_set_new(json_object_get(lp, "metadata"), "deletionTimestamp",
                            json_string("2026-01-01T00:00:00Z"));
        s_was_pg_got(cp, &res);
        CHECK(s_t_last(capture, 10, CTRL_UPDATE, "PodGroup", "g-cluster"));
        CHECK(s_t_failed(cp, "PodGroup default/g-cluster is being deleted, will retry"));
        /* skipped (label "False"): the PodGroup first, then the Workload */
        json_object_set_new(jx_get(rc, "metadata.labels"), LABEL_GANG_SCHEDULING,
                            json_string("False"));
        s_stage_podgroup(cp);
        CHECK(s_t_last(capture, 11, CTRL_GET, "PodGroup", "g-cluster"));
        json_object_del(json_object_get(lp, "metadata"), "deletionTimestamp");
        json_object_del(json_object_get(lp, "metadata"), "finalizers");
        s_was_cleanup_pg_got(cp, &res);
        CHECK(s_t_last(capture, 12, CTRL_DELETE, "PodGroup", "g-cluster"));
        CHECK(s_t_failed(cp, "waiting for PodGroup default/g-cluster to finish deleting"));
        s_was_cleanup_pg_got(cp, &nf);
        CHECK(s_t_last(capture, 13, CTRL_GET, "Workload", "g"));
        res.body = lw;
        s_was_cleanup_wl_got(cp, &res);
        CHECK(s_t_last(capture, 14, CTRL_DELETE, "Workload", "g") && !cp->failed);
        s_was_cleanup_wl_got(cp, &nf);
        CHECK(json_array_size(capture) == 14 && !cp->failed);
        /* both found absent: not read again for a while, unless gang scheduled again */
        s_stage_podgroup(cp);
        CHECK(json_array_size(capture) == 14);
        json_object_set_new(jx_get(rc, "metadata.labels"), LABEL_GANG_SCHEDULING,
                            json_string("true"));
        s_stage_podgroup(cp);
        CHECK(s_t_last(capture, 15, CTRL_GET, "Workload", "g"));
        json_object_set_new(jx_get(rc, "metadata.labels"), LABEL_GANG_SCHEDULING,
                            json_string("false"));
        s_stage_podgroup(cp);
        CHECK(s_t_last(capture, 16, CTRL_GET, "PodGroup", "g-cluster"));
        json_decref(lw);
        json_decref(lp);
        if (verbose && !failed)
            printf("reconcile: Kubernetes WAS stage create/keep/foreign/deleting/stale/cleanup "
                   "checked\n");
    }
    ctrl_test_pass_free(&cp);
    reconcile_destroy(&r);
    json_decref(rc);
    json_decref(capture);
    return failed;
}

int reconcile_test(bool verbose)
{
    int failed = 0;
    /* keys: ctrl_key() and ctrl_parse_key(), tested by ctrl_test() */

    /* argument errors */
    CHECK(reconcile_new(NULL, &(reconcile_config_t){0}) == NULL);
    loop_t *loop = loop_new();
    CHECK(reconcile_new(loop, &(reconcile_config_t){.cluster = "c1"}) == NULL);
    reconcile_destroy(NULL);
    failed += s_t_podgroup(loop, verbose);
    failed += s_t_was(loop, verbose);

    /* expectations by name, through a capturing reconciler's pass (no client needed) */
    json_t *capture = json_array();
    reconciler_t *fake = s_new(loop, &(reconcile_config_t){.cluster = "c1"}, capture);
    json_t *rco = json_pack("{s:{s:s}}", "metadata", "name", "k");
    ctrl_pass_t *cp = fake ? ctrl_test_pass(fake->ctrl, "c1/default/k", rco) : NULL;
    CHECK(cp != NULL);
    pass_t *tp = cp ? cp->data : NULL;
    if (tp) {
        tp->cp = cp;
        tp->r = fake;
        tp->names = json_object();
        CHECK(s_group_satisfied(tp, "g"));
        ctrl_expect(cp, "g", "p1", true);
        CHECK(!s_group_satisfied(tp, "g") && cp->short_requeue);
        json_object_set_new(tp->names, "p1", json_true());
        CHECK(s_group_satisfied(tp, "g"));
        ctrl_expect(cp, "g", "p1", false);
        CHECK(!s_group_satisfied(tp, "g"));
        CHECK(s_group_satisfied(tp, "other"));
        json_object_del(tp->names, "p1");
        CHECK(s_group_satisfied(tp, "g"));
        reconcile_stats_t rs;
        reconcile_stats(fake, &rs);
        CHECK(rs.skipped_groups == 2);
    }
    ctrl_test_pass_free(&cp);
    json_decref(rco);

    /* replica indexes */
    json_t *used = json_pack("{s:b, s:b}", "0", 1, "2", 1);
    CHECK(s_next_index(used) == 1);
    CHECK(s_next_index(used) == 3);
    json_decref(used);
    char sfx[S_RAND_LEN + 1];
    CHECK(fake != NULL);
    if (fake) {
        s_rand_suffix(fake, sfx);
        CHECK(strlen(sfx) == S_RAND_LEN && strspn(sfx, S_RAND_CHARS) == S_RAND_LEN);
    }
    reconcile_destroy(&fake);
    json_decref(capture);
    loop_destroy(&loop);

    /* SHA-1 (FIPS 180 vectors) and Go's base32 hex encoding */
    unsigned char d[HASH_SHA1_LEN];
    char h32[RECONCILE_HASH_LEN + 1];
    CHECK(hash_sha1("abc", 3, d) == 0 &&
          hash_sha1_b32hex("abc", 3, HASH_UPPER, h32, sizeof(h32)) == 0);
    CHECK(d[0] == 0xa9 && d[1] == 0x99 && d[19] == 0x9d);
    CHECK(!strcmp(h32, "L6CJSDI70Q0MLEHU4LONGK62DIED1M4T"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(hash_sha1(two, strlen(two), d) == 0);
    CHECK(d[0] == 0x84 && d[1] == 0x98 && d[18] == 0x70 && d[19] == 0xf1);
    CHECK(hash_sha1("", 0, d) == 0);
    CHECK(d[0] == 0xda && d[1] == 0x39 && d[19] == 0x09);

    /* the Recreate hash ignores replicas, workersToDelete, tolerations and upgradeStrategy */
    json_t *spec = json_pack(
        "{s:s, s:{s:{s:{s:[{s:s, s:s}]}}}, s:[{s:s, s:i, s:i, s:i, s:{s:[s]}, "
        "s:{s:{s:[{s:s, s:s}], s:[]}}}], s:{s:s}}",
        "rayVersion", "2.46.0", "headGroupSpec", "template", "spec", "containers", "name",
        "ray-head", "image", "rayproject/ray:2.46.0", "workerGroupSpecs", "groupName", "g",
        "replicas", 1, "minReplicas", 0, "maxReplicas", 5, "scaleStrategy", "workersToDelete", "w1",
        "template", "spec", "containers", "name", "ray-worker", "image", "rayproject/ray:2.46.0",
        "tolerations", "upgradeStrategy", "type", "Recreate");
    char h1[RECONCILE_HASH_LEN + 1], h2[RECONCILE_HASH_LEN + 1];
    CHECK(spec && reconcile_spec_hash(spec, h1, sizeof(h1)) == 0 && strlen(h1) == 32);
    CHECK(s_t_spec_hash_same(spec)); /* the deletions land on copies only */
    json_t *wg0 = json_array_get(jx_get(spec, "workerGroupSpecs"), 0);
    json_object_set_new(wg0, "replicas", json_integer(4));
    json_object_del(json_object_get(wg0, "scaleStrategy"), "workersToDelete");
    json_object_del(jx_get(wg0, "template.spec"), "tolerations");
    json_object_set_new(spec, "upgradeStrategy", json_pack("{s:s}", "type", "None"));
    CHECK(reconcile_spec_hash(spec, h2, sizeof(h2)) == 0 && !strcmp(h1, h2));
    jx_set_path(spec, "rayVersion", json_string("2.47.0"));
    CHECK(reconcile_spec_hash(spec, h2, sizeof(h2)) == 0 && strcmp(h1, h2) != 0);
    CHECK(reconcile_spec_hash(spec, h2, 8) == ERR_TOOBIG);
    CHECK(reconcile_spec_hash(NULL, h2, sizeof(h2)) == ERR_INVAL);
    json_decref(spec);

    /* finalizer, times and durations */
    json_t *rcf =
        json_pack("{s:{s:[s, s]}}", "metadata", "finalizers", "x", FINALIZER_GCS_FT_REDIS_CLEANUP);
    CHECK(ctrl_has_finalizer(rcf, FINALIZER_GCS_FT_REDIS_CLEANUP));
    json_array_remove(jx_get(rcf, "metadata.finalizers"), 1);
    CHECK(!ctrl_has_finalizer(rcf, FINALIZER_GCS_FT_REDIS_CLEANUP));
    json_decref(rcf);
    int64_t sec = -1;
    CHECK(rftime_parse_sec("1970-01-01T00:01:40Z", &sec) == 0 && sec == 100);
    CHECK(rftime_parse_sec("2024-02-29T12:00:00.123Z", &sec) == 0 && sec == 1709208000);
    CHECK(rftime_parse_sec("2024-02-29", &sec) != 0 &&
          rftime_parse_sec("2024-0x-29T12:00:00Z", &sec) != 0);
    char dur[RFTIME_DURATION_BUF];
    CHECK(rftime_duration_format(300 * RFTIME_NS_PER_S, dur, sizeof(dur)) == 0 &&
          !strcmp(dur, "5m0s"));
    CHECK(rftime_duration_format(45 * RFTIME_NS_PER_S, dur, sizeof(dur)) == 0 &&
          !strcmp(dur, "45s"));
    CHECK(rftime_duration_format(3661 * RFTIME_NS_PER_S, dur, sizeof(dur)) == 0 &&
          !strcmp(dur, "1h1m1s"));
    json_t *job = json_pack("{s:{s:[{s:s, s:s}]}}", "status", "conditions", "type", "Complete",
                            "status", "True");
    CHECK(s_job_finished(job));
    jx_set_path(job, "status.conditions", json_array());
    CHECK(!s_job_finished(job));
    json_decref(job);

    /* the desired set */
    json_t *drc = json_pack(
        "{s:{s:s}, s:{s:b, s:{s:{s:{}}}, s:[{s:s, s:i, s:i, s:{}}, {s:s, s:i, s:i, s:i, s:{}}]}}",
        "metadata", "name", "rc", "spec", "enableInTreeAutoscaling", 1, "headGroupSpec", "template",
        "spec", "workerGroupSpecs", "groupName", "cpu", "replicas", 3, "numOfHosts", 1, "template",
        "groupName", "tpu", "replicas", 9, "maxReplicas", 2, "numOfHosts", 2, "template");
    json_t *set = drc ? s_desired_set(drc, "rc") : NULL;
    CHECK(set && json_array_size(set) == 8);
    const char *kinds[] = {"ServiceAccount", "Role", "RoleBinding", "Service",
                           "Service",        "Pod",  "Pod",         "Pod"};
    const char *cnames[] = {"rc", "rc", "rc", "rc-head-svc", "rc-headless", "head", "cpu", "tpu"};
    for (size_t i = 0; set && i < json_array_size(set) && i < 8; i++) {
        json_t *w = json_array_get(set, i);
        CHECK(!strcmp(jx_str(w, "kind", ""), kinds[i]) &&
              !strcmp(jx_str(w, "name", ""), cnames[i]));
    }
    json_t *wcpu = json_array_get(set, 6), *wtpu = json_array_get(set, 7);
    CHECK(jx_int(wcpu, "json.want", -1) == 3 && jx_int(wcpu, "json.numOfHosts", -1) == 1);
    CHECK(
        !strcmp(jx_str(wcpu, "reason", ""), "spec.workerGroupSpecs[0].replicas=3 x numOfHosts 1"));
    CHECK(strlen(jx_str(wcpu, "json.template_hash", "")) == RECONCILE_HASH_LEN);
    CHECK(jx_int(wtpu, "json.want", -1) == 4 && strstr(jx_str(wtpu, "reason", ""), "clamped"));
    CHECK(jx_int(json_array_get(set, 5), "json.want", -1) == 1);
    /* its hash: equal for equal sets and uids, different when either differs */
    char sh1[RECONCILE_HASH_LEN + 1], sh2[RECONCILE_HASH_LEN + 1];
    json_t *set2 = drc ? s_desired_set(drc, "rc") : NULL;
    s_set_hash("u1", set, sh1);
    s_set_hash("u1", set2, sh2);
    CHECK(strlen(sh1) == RECONCILE_HASH_LEN && !strcmp(sh1, sh2));
    s_set_hash("u2", set2, sh2);
    CHECK(strlen(sh2) == RECONCILE_HASH_LEN && strcmp(sh1, sh2) != 0);
    json_object_set_new(wtpu, "reason", json_string("other"));
    s_set_hash("u1", set, sh2);
    CHECK(strlen(sh2) == RECONCILE_HASH_LEN && strcmp(sh1, sh2) != 0);
    s_set_hash("u1", NULL, sh2);
    CHECK(sh2[0] == '\0');
    json_decref(set2);
    json_decref(set);
    jx_set_path(drc, "spec.suspend", json_true());
    set = drc ? s_desired_set(drc, "rc") : NULL;
    CHECK(set && jx_int(json_array_get(set, 5), "json.want", -1) == 0 &&
          jx_int(json_array_get(set, 6), "json.want", -1) == 0);
    s_set_hash("u1", set, sh2);
    CHECK(strlen(sh2) == RECONCILE_HASH_LEN && strcmp(sh1, sh2) != 0);
    json_decref(set);
    json_decref(drc);
    char th[RECONCILE_HASH_LEN + 1];
    s_json_hash(NULL, th);
    CHECK(th[0] == '\0');

    /* children parsed with the keep lists decide as the full objects */
    failed += s_t_children(verbose);
    return SELFTEST_RESULT("reconcile", verbose);
}

#endif /* RF_SELFTEST */
