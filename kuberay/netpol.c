/*
 * netpol: KubeRay's NetworkPolicies of a RayCluster. See netpol.h.
 */
#include "netpol.h"

#include "json.h"
#include "labels.h"
#include "names.h"
#include "objbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DASHBOARD_PORT_PARAM "dashboard-port" /* rayStartParams key */

bool netpol_wanted(const json_t *rc)
{
    return json_is_object(jx_get(rc, "spec.networkPolicy"));
}

/* Sets protocol TCP on every port of the rules in `rules` without one. */
static void s_default_ports(json_t *rules)
{
    size_t i, j;
    json_t *r, *p;
    json_array_foreach(rules, i, r)
    {
        json_array_foreach(json_object_get(r, "ports"), j, p)
        {
            if (json_is_object(p) && !json_object_get(p, "protocol"))
                json_object_set_new(p, "protocol", json_string("TCP"));
        }
    }
}

/* {"<dir>": [{podSelector: {matchLabels: {ray.io/cluster: c}}}]}: the intra-cluster rule. */
static json_t *s_base_rule(const char *dir, const char *cluster)
{
    return json_pack("{s:[{s:{s:{s:s}}}]}", dir, "podSelector", "matchLabels", LABEL_CLUSTER,
                     cluster);
}

/* KubeRay's getHeadPort: rayStartParams[dashboard-port] when it parses as an int32, else 8265. */
static long s_dashboard_port(const json_t *rc)
{
    const char *v =
        jx_str(jx_get(rc, "spec.headGroupSpec.rayStartParams"), S_DASHBOARD_PORT_PARAM, NULL);
    if (v && v[0]) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*end && n >= -2147483647L - 1 && n <= 2147483647L)
            return n;
    }
    return OBJ_PORT_DASHBOARD;
}

/* The owning RayJob's name (buildRayJobPeer), or NULL when the rule does not apply. */
static const char *s_rayjob_owner(const json_t *rc)
{
    const char *mode = json_string_value(
        json_object_get(jx_get(rc, "metadata.labels"), LABEL_JOB_SUBMISSION_MODE));
    if (!mode || strcmp(mode, "K8sJobMode") != 0)
        return NULL;
    size_t i;
    json_t *ref;
    json_array_foreach(jx_get(rc, "metadata.ownerReferences"), i, ref)
    {
        if (!strcmp(jx_str(ref, "kind", ""), LABEL_CRD_RAYJOB) &&
            jx_bool(ref, "controller", false) &&
            !strncmp(jx_str(ref, "apiVersion", ""), "ray.io/", 7))
            return jx_str(ref, "name", "");
    }
    return NULL;
}

/* Appends a deep copy of each rule of `user` (may be NULL) to `rules`. */
static int s_append_user(json_t *rules, const json_t *user)
{
    size_t i;
    json_t *r;
    json_array_foreach(user, i, r)
    {
        if (json_array_append_new(rules, json_deep_copy(r)) < 0)
            return -1;
    }
    return 0;
}

/* One policy. `group` NULL = the head; `custom` the user's rules object (may be NULL). */
static json_t *s_policy(const json_t *rc, const char *mode, const char *group, const json_t *custom)
{
    const char *c = jx_str(rc, "metadata.name", "");
    bool ingress = !strcmp(mode, NETPOL_MODE_DENY_ALL) || !strcmp(mode, NETPOL_MODE_DENY_INGRESS);
    bool egress = !strcmp(mode, NETPOL_MODE_DENY_ALL) || !strcmp(mode, NETPOL_MODE_DENY_EGRESS);
    char *name = group ? names_netpol_workers(c, group) : names_netpol_head(c);
    json_t *o =
        name ? json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:s,s:s}}}", "apiVersion",
                         "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata", "name", name,
                         "namespace", jx_str(rc, "metadata.namespace", ""), "labels", LABEL_CLUSTER,
                         c, LABEL_GROUP, group ? group : LABEL_GROUP_HEAD, LABEL_APP_NAME,
                         LABEL_APP_NAME_KUBERAY, LABEL_CREATED_BY, LABEL_CREATED_BY_KUBERAY)
             : NULL;
    free(name);
    if (!o)
        return NULL;
    json_t *sel = group ? json_pack("{s:s,s:s,s:s}", LABEL_CLUSTER, c, LABEL_NODE_TYPE, "worker",
                                    LABEL_GROUP, group)
                        : json_pack("{s:s,s:s}", LABEL_CLUSTER, c, LABEL_NODE_TYPE, "head");
    json_t *spec = json_pack("{s:{s:o},s:[]}", "podSelector", "matchLabels", sel, "policyTypes");
    if (!spec || jx_set_path(o, "metadata.ownerReferences", objbuild_owner_refs(rc)) != 0 ||
        json_object_set_new(o, "spec", spec) < 0)
        goto fail;
    json_t *types = json_object_get(spec, "policyTypes");
    if (ingress) {
        json_t *rules = json_array();
        json_array_append_new(rules, s_base_rule("from", c));
        const char *job = group ? NULL : s_rayjob_owner(rc);
        if (job)
            json_array_append_new(
                rules, json_pack("{s:[{s:{s:{s:s,s:s}}}],s:[{s:s,s:I}]}", "from", "podSelector",
                                 "matchLabels", LABEL_ORIGINATED_FROM_CR_NAME, job,
                                 LABEL_ORIGINATED_FROM_CRD, LABEL_CRD_RAYJOB, "ports", "protocol",
                                 "TCP", "port", (json_int_t)s_dashboard_port(rc)));
        if (s_append_user(rules, json_object_get(custom, "ingressRules")) < 0) {
            json_decref(rules);
            goto fail;
        }
        s_default_ports(rules);
        json_array_append_new(types, json_string("Ingress"));
        json_object_set_new(spec, "ingress", rules);
    }
    if (egress) {
        json_t *rules = json_array();
        json_array_append_new(rules, s_base_rule("to", c));
        if (s_append_user(rules, json_object_get(custom, "egressRules")) < 0) {
            json_decref(rules);
            goto fail;
        }
        s_default_ports(rules);
        json_array_append_new(types, json_string("Egress"));
        json_object_set_new(spec, "egress", rules);
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* workerGroupCustomRules: the group's workerGroups entry, else networkPolicy.worker. */
static const json_t *s_group_rules(const json_t *np, const char *group)
{
    size_t i;
    json_t *wg;
    json_array_foreach(json_object_get(np, "workerGroups"), i, wg)
    {
        if (!strcmp(jx_str(wg, "groupName", ""), group))
            return wg;
    }
    return json_object_get(np, "worker");
}

json_t *netpol_build(const json_t *rc)
{
    json_t *out = json_array();
    if (!out || !netpol_wanted(rc))
        return out;
    const json_t *np = jx_get(rc, "spec.networkPolicy");
    const char *mode = jx_str(np, "mode", NETPOL_MODE_DENY_ALL);
    json_t *head = s_policy(rc, mode, NULL, json_object_get(np, "head"));
    if (!head || json_array_append_new(out, head) < 0)
        goto fail;
    size_t i;
    json_t *wg;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, wg)
    {
        const char *g = jx_str(wg, "groupName", "");
        json_t *p = s_policy(rc, mode, g, s_group_rules(np, g));
        if (!p || json_array_append_new(out, p) < 0)
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

bool netpol_same(const json_t *want, const json_t *live)
{
    const json_t *wl = jx_get(want, "metadata.labels"), *ll = jx_get(live, "metadata.labels");
    if (!json_equal(wl, ll) && !(json_object_size(wl) == 0 && json_object_size(ll) == 0))
        return false;
    json_t *ls = json_deep_copy(jx_get(live, "spec"));
    if (!ls)
        return false;
    s_default_ports(json_object_get(ls, "ingress"));
    s_default_ports(json_object_get(ls, "egress"));
    bool same = json_equal(jx_get(want, "spec"), ls);
    json_decref(ls);
    return same;
}

/* ---- self-test -------------------------------------------------------------------------- */

#ifdef RF_SELFTEST
#include "selftest.h"
#include "yaml.h"

#undef CHECK /* this test stops at the first failure */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "netpol_test: %s:%d: %s\n", __FILE__, __LINE__, #c);                   \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static json_t *t_yaml(const char *text)
{
    json_t *docs = NULL;
    if (yaml_load_buf(text, strlen(text), "t", &docs, NULL) < 0)
        return NULL;
    json_t *o = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return o;
}

static bool t_eq_yaml(const json_t *got, const char *want_yaml)
{
    json_t *w = t_yaml(want_yaml);
    bool eq = w && json_equal(got, w);
    if (!eq) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1));
        char *x = w ? json_dumps(w, JSON_SORT_KEYS | JSON_INDENT(1)) : NULL;
        fprintf(stderr, "got:  %s\nwant: %s\n", g ? g : "?", x ? x : "?");
        free(g);
        free(x);
    }
    json_decref(w);
    return eq;
}

/* The upstream sample ray-cluster.network-policy-deny-all.yaml, read in place. */
static json_t *t_sample(void)
{
    const char *shared = selftest_shared_dir();
    char path[1024];
    snprintf(path, sizeof(path), "%s/kuberay/samples/ray-cluster.network-policy-deny-all.yaml",
             shared ? shared : ".");
    json_t *docs = NULL;
    if (yaml_load_file(path, 1u << 22, &docs, NULL) < 0)
        return NULL;
    json_t *o = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return o;
}

static const char t_dns_rule[] = "  - to:\n"
                                 "    - namespaceSelector:\n"
                                 "        matchLabels: {kubernetes.io/metadata.name: kube-system}\n"
                                 "      podSelector:\n"
                                 "        matchLabels: {k8s-app: kube-dns}\n"
                                 "    ports:\n"
                                 "    - {port: 53, protocol: UDP}\n"
                                 "    - {port: 53, protocol: TCP}\n";

int netpol_test(bool verbose)
{
    int rc = 1;
    json_t *rcobj = t_sample(), *out = NULL, *want = NULL;
    CHECK(rcobj);
    jx_set_path(rcobj, "metadata.namespace", json_string("ns1"));
    jx_set_path(rcobj, "metadata.uid", json_string("u-1"));
    CHECK(netpol_wanted(rcobj));
    out = netpol_build(rcobj);
    CHECK(out && json_array_size(out) == 2);
    /* the head policy of the deny-all sample, field by field */
    char head[2048];
    snprintf(head, sizeof(head),
             "apiVersion: networking.k8s.io/v1\n"
             "kind: NetworkPolicy\n"
             "metadata:\n"
             "  name: raycluster-deny-all-head\n"
             "  namespace: ns1\n"
             "  labels: {ray.io/cluster: raycluster-deny-all, ray.io/group: headgroup,\n"
             "           app.kubernetes.io/name: kuberay,\n"
             "           app.kubernetes.io/created-by: kuberay-operator}\n"
             "  ownerReferences:\n"
             "  - {apiVersion: ray.io/v1, kind: RayCluster, name: raycluster-deny-all, uid: u-1,\n"
             "     controller: true, blockOwnerDeletion: true}\n"
             "spec:\n"
             "  podSelector:\n"
             "    matchLabels: {ray.io/cluster: raycluster-deny-all, ray.io/node-type: head}\n"
             "  policyTypes: [Ingress, Egress]\n"
             "  ingress:\n"
             "  - from:\n"
             "    - podSelector: {matchLabels: {ray.io/cluster: raycluster-deny-all}}\n"
             "  egress:\n"
             "  - to:\n"
             "    - podSelector: {matchLabels: {ray.io/cluster: raycluster-deny-all}}\n"
             "%s",
             t_dns_rule);
    CHECK(t_eq_yaml(json_array_get(out, 0), head));
    char worker[2048];
    snprintf(worker, sizeof(worker),
             "apiVersion: networking.k8s.io/v1\n"
             "kind: NetworkPolicy\n"
             "metadata:\n"
             "  name: raycluster-deny-all-workers-workergroup\n"
             "  namespace: ns1\n"
             "  labels: {ray.io/cluster: raycluster-deny-all, ray.io/group: workergroup,\n"
             "           app.kubernetes.io/name: kuberay,\n"
             "           app.kubernetes.io/created-by: kuberay-operator}\n"
             "  ownerReferences:\n"
             "  - {apiVersion: ray.io/v1, kind: RayCluster, name: raycluster-deny-all, uid: u-1,\n"
             "     controller: true, blockOwnerDeletion: true}\n"
             "spec:\n"
             "  podSelector:\n"
             "    matchLabels: {ray.io/cluster: raycluster-deny-all, ray.io/node-type: worker,\n"
             "                  ray.io/group: workergroup}\n"
             "  policyTypes: [Ingress, Egress]\n"
             "  ingress:\n"
             "  - from:\n"
             "    - podSelector: {matchLabels: {ray.io/cluster: raycluster-deny-all}}\n"
             "  egress:\n"
             "  - to:\n"
             "    - podSelector: {matchLabels: {ray.io/cluster: raycluster-deny-all}}\n"
             "%s",
             t_dns_rule);
    CHECK(t_eq_yaml(json_array_get(out, 1), worker));
    /* the same policy as stored (protocol defaulted by the API server) is the same */
    CHECK(netpol_same(json_array_get(out, 0), json_array_get(out, 0)));
    json_decref(out);

    /* DenyAllIngress: ingress only, user ingress rules appended with TCP defaulted; a
     * workerGroups entry replaces worker's rules; the RayJob submitter rule on the head with the
     * rayStartParams dashboard port */
    json_t *np = jx_get(rcobj, "spec.networkPolicy");
    json_object_set_new(np, "mode", json_string(NETPOL_MODE_DENY_INGRESS));
    json_object_del(np, "head");
    json_object_set_new(np, "worker", t_yaml("ingressRules: [{ports: [{port: 9000}]}]\n"));
    jx_set_path(rcobj, "spec.headGroupSpec.rayStartParams",
                json_pack("{s:s}", "dashboard-port", "8266"));
    jx_set_path(rcobj, "metadata.labels",
                json_pack("{s:s}", LABEL_JOB_SUBMISSION_MODE, "K8sJobMode"));
    jx_set_path(rcobj, "metadata.ownerReferences",
                json_pack("[{s:s,s:s,s:s,s:s,s:b}]", "apiVersion", "ray.io/v1", "kind", "RayJob",
                          "name", "job1", "uid", "j", "controller", 1));
    out = netpol_build(rcobj);
    CHECK(out && json_array_size(out) == 2);
    const json_t *hs = jx_get(json_array_get(out, 0), "spec");
    CHECK(t_eq_yaml(hs, "podSelector:\n"
                        "  matchLabels: {ray.io/cluster: raycluster-deny-all, ray.io/node-type: "
                        "head}\n"
                        "policyTypes: [Ingress]\n"
                        "ingress:\n"
                        "- from:\n"
                        "  - podSelector: {matchLabels: {ray.io/cluster: raycluster-deny-all}}\n"
                        "- from:\n"
                        "  - podSelector: {matchLabels: {ray.io/originated-from-cr-name: job1,\n"
                        "                                ray.io/originated-from-crd: RayJob}}\n"
                        "  ports: [{protocol: TCP, port: 8266}]\n"));
    const json_t *ws = jx_get(json_array_get(out, 1), "spec");
    CHECK(t_eq_yaml(ws, "podSelector:\n"
                        "  matchLabels: {ray.io/cluster: raycluster-deny-all, ray.io/node-type: "
                        "worker, ray.io/group: workergroup}\n"
                        "policyTypes: [Ingress]\n"
                        "ingress:\n"
                        "- from:\n"
                        "  - podSelector: {matchLabels: {ray.io/cluster: raycluster-deny-all}}\n"
                        "- ports: [{port: 9000, protocol: TCP}]\n"));
    json_decref(out);
    /* a workerGroups entry replaces; not K8sJobMode: no submitter rule */
    json_object_set_new(np, "workerGroups",
                        t_yaml("- {groupName: workergroup, ingressRules: [{ports: [{port: 1}]}]}"));
    jx_set_path(rcobj, "metadata.labels",
                json_pack("{s:s}", LABEL_JOB_SUBMISSION_MODE, "HTTPMode"));
    out = netpol_build(rcobj);
    CHECK(out && json_array_size(jx_get(json_array_get(out, 0), "spec.ingress")) == 1);
    CHECK(json_integer_value(json_object_get(
              json_array_get(
                  json_object_get(json_array_get(jx_get(json_array_get(out, 1), "spec.ingress"), 1),
                                  "ports"),
                  0),
              "port")) == 1);
    json_decref(out);
    /* DenyAllEgress: egress only */
    json_object_set_new(np, "mode", json_string(NETPOL_MODE_DENY_EGRESS));
    json_object_del(np, "worker");
    json_object_del(np, "workerGroups");
    out = netpol_build(rcobj);
    CHECK(out && t_eq_yaml(jx_get(json_array_get(out, 1), "spec.policyTypes"), "[Egress]") &&
          !jx_get(json_array_get(out, 1), "spec.ingress") &&
          json_array_size(jx_get(json_array_get(out, 1), "spec.egress")) == 1);
    /* a changed label or rule is not the same */
    want = json_deep_copy(json_array_get(out, 1));
    jx_set_path(want, "metadata.labels.x", json_string("y"));
    CHECK(!netpol_same(json_array_get(out, 1), want));
    json_decref(out);
    /* no networkPolicy: nothing */
    json_object_del(jx_get(rcobj, "spec"), "networkPolicy");
    out = netpol_build(rcobj);
    CHECK(out && json_array_size(out) == 0 && !netpol_wanted(rcobj));
    rc = 0;
    if (verbose)
        fprintf(stderr, "netpol_test: ok\n");
done:
    json_decref(rcobj);
    json_decref(out);
    json_decref(want);
    return rc;
}
#endif
