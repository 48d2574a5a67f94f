/*
 * member: building a member cluster's capacity from its Node and Pod objects. See member.h.
 */
#include "member.h"

#include "batchsched.h"
#include "err.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

#define S_NODES_MIN 8 /* first allocation of a member's node array */

int fleet_member_init(fleet_member_t *m, const char *name, const json_t *labels)
{
    memset(m, 0, sizeof(*m));
    if (!name || !name[0])
        return ERR_INVAL;
    m->name = strdup(name);
    m->labels = json_is_object(labels) ? json_deep_copy(labels) : json_object();
    m->by_name = json_object();
    m->healthy = true;
    if (!m->name || !m->labels || !m->by_name) {
        fleet_member_free(m);
        return ERR_NOMEM;
    }
    return 0;
}

fleet_node_t *fleet_member_node(const fleet_member_t *m, const char *name)
{
    if (!name)
        return NULL;
    if (m->by_name) {
        json_t *ix = json_object_get(m->by_name, name);
        size_t i = json_is_integer(ix) ? (size_t)json_integer_value(ix) : m->nnodes;
        return i < m->nnodes ? &m->nodes[i] : NULL;
    }
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0)
            return &m->nodes[i];
    return NULL;
}

/* Whether the node's Ready condition is True (a node without one is not Ready, as the
 * kube-scheduler's node lifecycle would taint it). */
static bool s_ready(const json_t *node)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(node, "status.conditions"), i, c)
    {
        if (strcmp(jx_str(c, "type", ""), "Ready") == 0)
            return strcmp(jx_str(c, "status", ""), "True") == 0;
    }
    return false;
}

int fleet_member_add_node(fleet_member_t *m, const json_t *node, buf_t *err)
{
    const char *name = jx_str(node, "metadata.name", NULL);
    if (!name || !name[0]) {
        if (err)
            (void)buf_puts(err, "node: metadata.name: required");
        return ERR_INVAL;
    }
    if (fleet_member_node(m, name)) {
        if (err)
            (void)buf_printf(err, "node %s: metadata.name: already added", name);
        return ERR_EXISTS;
    }
    const json_t *labels = jx_get(node, "metadata.labels");
    if (labels && !json_is_object(labels)) {
        if (err)
            (void)buf_printf(err, "node %s: metadata.labels: must be a map", name);
        return ERR_INVAL;
    }
    fleet_node_t n = {0};
    if (fleet_res_add_list(&n.alloc, jx_get(node, "status.allocatable"), err) != 0) {
        if (err)
            (void)buf_printf(err, " (node %s: status.allocatable)", name);
        return ERR_INVAL;
    }
    if (m->nnodes % S_NODES_MIN == 0) {
        fleet_node_t *grown = realloc(m->nodes, (m->nnodes + S_NODES_MIN) * sizeof(*grown));
        if (!grown)
            return ERR_NOMEM;
        m->nodes = grown;
    }
    n.name = strdup(name);
    n.labels = labels ? json_deep_copy(labels) : json_object();
    if (!n.name || !n.labels) {
        free(n.name);
        json_decref(n.labels);
        return ERR_NOMEM;
    }
    static const char *const gpu_labels[] = FLEET_GPU_TYPE_LABELS;
    for (size_t i = 0; gpu_labels[i] && !n.gpu_type; i++) {
        const char *v = json_string_value(json_object_get(n.labels, gpu_labels[i]));
        if (v && v[0])
            n.gpu_type = v;
    }
    n.schedulable = !jx_bool(node, "spec.unschedulable", false) && s_ready(node);
    if (m->by_name &&
        json_object_set_new_nocheck(m->by_name, n.name, json_integer((json_int_t)m->nnodes)) != 0) {
        free(n.name);
        json_decref(n.labels);
        return ERR_NOMEM;
    }
    m->nodes[m->nnodes++] = n;
    return 0;
}

int fleet_member_add_pod(fleet_member_t *m, const json_t *pod, buf_t *err)
{
    const char *phase = jx_str(pod, "status.phase", "");
    if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)
        return 0;
    fleet_node_t *n = fleet_member_node(m, jx_str(pod, "spec.nodeName", NULL));
    if (!n)
        return 0;
    json_t *acc = json_object();
    if (!acc)
        return ERR_NOMEM;
    fleet_res_t req = {{0}};
    int rc = batchsched_add_pod_resources(acc, json_object_get(pod, "spec"), 1, BATCHSCHED_RES_KUBE,
                                          err);
    if (rc == 0)
        rc = fleet_res_add_list(&req, acc, err);
    json_decref(acc);
    if (rc != 0) {
        if (err)
            (void)buf_printf(err, " (pod %s/%s: spec.containers[].resources)",
                             jx_str(pod, "metadata.namespace", ""),
                             jx_str(pod, "metadata.name", ""));
        return rc;
    }
    req.v[FLEET_RES_PODS] = 1;
    fleet_res_add(&n->used, &req);
    return 0;
}

size_t fleet_member_finish(fleet_member_t *m)
{
    size_t ok = 0;
    memset(&m->alloc, 0, sizeof(m->alloc));
    memset(&m->used, 0, sizeof(m->used));
    for (size_t i = 0; i < m->nnodes; i++) {
        if (!m->nodes[i].schedulable)
            continue;
        ok++;
        fleet_res_add(&m->alloc, &m->nodes[i].alloc);
        fleet_res_add(&m->used, &m->nodes[i].used);
    }
    return ok;
}

void fleet_member_free(fleet_member_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nnodes; i++) {
        free(m->nodes[i].name);
        json_decref(m->nodes[i].labels);
    }
    free(m->nodes);
    free(m->name);
    json_decref(m->labels);
    json_decref(m->by_name);
    memset(m, 0, sizeof(*m));
}

#ifdef RF_SELFTEST
#include "selftest.h"

#include <stdio.h>

static json_t *s_j(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        printf("member test: bad JSON at %d: %s\n", e.position, e.text);
    return v;
}

int member_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);
    fleet_member_t m;
    json_t *ml = s_j("{\"region\":\"us-east\"}");
    CHECK(fleet_member_init(&m, "member-1", ml) == 0);
    json_decref(ml);
    CHECK(m.healthy && m.nnodes == 0 && strcmp(jx_str(m.labels, "region", ""), "us-east") == 0);
    CHECK(fleet_member_init(&(fleet_member_t){0}, "", NULL) == ERR_INVAL);

    /* three nodes: a Ready GPU node, a cordoned one, a not-Ready one */
    json_t *n1 = s_j("{\"metadata\":{\"name\":\"n1\",\"labels\":{\"node.kubernetes.io/"
                     "instance-type\":\"p4d\",\"nvidia.com/gpu.product\":\"A100\"}},"
                     "\"status\":{\"allocatable\":{\"cpu\":\"8\",\"memory\":\"32Gi\","
                     "\"nvidia.com/gpu\":\"4\",\"pods\":\"110\",\"ephemeral-storage\":\"1Ti\"},"
                     "\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},"
                     "{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    json_t *n2 = s_j("{\"metadata\":{\"name\":\"n2\"},\"spec\":{\"unschedulable\":true},"
                     "\"status\":{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"8Gi\",\"pods\":"
                     "110},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    json_t *n3 = s_j("{\"metadata\":{\"name\":\"n3\",\"labels\":{\"node.kubernetes.io/"
                     "instance-type\":\"m5\"}},\"status\":{\"allocatable\":{\"cpu\":\"2\"},"
                     "\"conditions\":[{\"type\":\"Ready\",\"status\":\"Unknown\"}]}}");
    CHECK(fleet_member_add_node(&m, n1, &err) == 0);
    CHECK(fleet_member_add_node(&m, n2, &err) == 0);
    CHECK(fleet_member_add_node(&m, n3, &err) == 0);
    CHECK(fleet_member_add_node(&m, n1, &err) == ERR_EXISTS && strstr(buf_str(&err), "n1"));
    buf_reset(&err);
    CHECK(m.nnodes == 3);
    fleet_node_t *a = fleet_member_node(&m, "n1");
    CHECK(a && a->schedulable && a->gpu_type && strcmp(a->gpu_type, "A100") == 0);
    CHECK(a && a->alloc.v[FLEET_RES_CPU] == 8000 && a->alloc.v[FLEET_RES_GPU] == 4 &&
          a->alloc.v[FLEET_RES_PODS] == 110 && a->alloc.v[FLEET_RES_MEMORY] == 32LL << 30);
    CHECK(!fleet_member_node(&m, "n2")->schedulable && !fleet_member_node(&m, "n2")->gpu_type);
    CHECK(!fleet_member_node(&m, "n3")->schedulable);
    CHECK(strcmp(fleet_member_node(&m, "n3")->gpu_type, "m5") == 0);
    CHECK(fleet_member_node(&m, "nope") == NULL);

    /* pods: kube's rule (max of containers + sidecars and of the largest init container, a limit
     * filling a missing request, plus overhead); terminal and unbound pods count nothing */
    json_t *p1 =
        s_j("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"p1\"},\"spec\":{\"nodeName\":\"n1\","
            "\"overhead\":{\"cpu\":\"100m\"},"
            "\"initContainers\":[{\"name\":\"i1\",\"resources\":{\"requests\":{\"cpu\":\"3\","
            "\"memory\":\"1Gi\"}}},{\"name\":\"side\",\"restartPolicy\":\"Always\",\"resources\":"
            "{\"requests\":{\"cpu\":\"500m\"}}},{\"name\":\"i2\",\"resources\":{\"requests\":"
            "{\"cpu\":\"2\"}}}],"
            "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":"
            "\"2Gi\"},\"limits\":{\"nvidia.com/gpu\":\"1\"}}},{\"name\":\"b\",\"resources\":"
            "{\"limits\":{\"cpu\":\"500m\",\"memory\":\"1Gi\"}}}]},\"status\":{\"phase\":"
            "\"Running\"}}");
    CHECK(fleet_member_add_pod(&m, p1, &err) == 0);
    /* cpu: containers 1.5 + sidecar 0.5 = 2; init i1 3, i2 2 + 0.5 = 2.5; max 3; + 0.1 */
    CHECK(a->used.v[FLEET_RES_CPU] == 3100);
    CHECK(a->used.v[FLEET_RES_MEMORY] == 3LL << 30);
    CHECK(a->used.v[FLEET_RES_GPU] == 1 && a->used.v[FLEET_RES_PODS] == 1);
    json_t *done = s_j("{\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"resources\":"
                       "{\"requests\":{\"cpu\":\"4\"}}}]},\"status\":{\"phase\":\"Succeeded\"}}");
    json_t *failedp = s_j("{\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"resources\":"
                          "{\"requests\":{\"cpu\":\"4\"}}}]},\"status\":{\"phase\":\"Failed\"}}");
    json_t *pending = s_j("{\"spec\":{\"containers\":[{\"resources\":{\"requests\":"
                          "{\"cpu\":\"4\"}}}]},\"status\":{\"phase\":\"Pending\"}}");
    json_t *other = s_j("{\"spec\":{\"nodeName\":\"elsewhere\",\"containers\":[{\"resources\":"
                        "{\"requests\":{\"cpu\":\"4\"}}}]}}");
    json_t *cordoned = s_j("{\"spec\":{\"nodeName\":\"n2\",\"containers\":[{\"resources\":"
                           "{\"requests\":{\"cpu\":\"1\"}}}]},\"status\":{\"phase\":"
                           "\"Pending\"}}");
    CHECK(fleet_member_add_pod(&m, done, &err) == 0);
    CHECK(fleet_member_add_pod(&m, failedp, &err) == 0);
    CHECK(fleet_member_add_pod(&m, pending, &err) == 0);
    CHECK(fleet_member_add_pod(&m, other, &err) == 0);
    CHECK(fleet_member_add_pod(&m, cordoned, &err) == 0);
    CHECK(a->used.v[FLEET_RES_CPU] == 3100 && a->used.v[FLEET_RES_PODS] == 1);
    CHECK(fleet_member_node(&m, "n2")->used.v[FLEET_RES_CPU] == 1000);
    /* a bad quantity names the pod and the field */
    json_t *bad = s_j("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"bad\"},\"spec\":"
                      "{\"nodeName\":\"n1\",\"containers\":[{\"resources\":{\"requests\":"
                      "{\"cpu\":\"lots\"}}}]}}");
    CHECK(fleet_member_add_pod(&m, bad, &err) == ERR_INVAL && strstr(buf_str(&err), "ns/bad") &&
          strstr(buf_str(&err), "cpu"));
    buf_reset(&err);
    CHECK(a->used.v[FLEET_RES_CPU] == 3100);

    /* sums only over schedulable nodes */
    CHECK(fleet_member_finish(&m) == 1);
    CHECK(m.alloc.v[FLEET_RES_CPU] == 8000 && m.used.v[FLEET_RES_CPU] == 3100);
    CHECK(m.alloc.v[FLEET_RES_PODS] == 110 && m.used.v[FLEET_RES_PODS] == 1);

    /* bad nodes: no name, a bad allocatable */
    json_t *nn = s_j("{\"status\":{\"allocatable\":{\"cpu\":\"1\"}}}");
    json_t *nb = s_j("{\"metadata\":{\"name\":\"nb\"},\"status\":{\"allocatable\":{\"cpu\":"
                     "\"-1\"}}}");
    CHECK(fleet_member_add_node(&m, nn, &err) == ERR_INVAL &&
          strstr(buf_str(&err), "metadata.name"));
    buf_reset(&err);
    CHECK(fleet_member_add_node(&m, nb, &err) == ERR_INVAL && strstr(buf_str(&err), "nb") &&
          strstr(buf_str(&err), "status.allocatable"));
    CHECK(m.nnodes == 3);

    /* many nodes grow the array */
    for (int i = 0; i < 40; i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"metadata\":{\"name\":\"x%d\"},\"status\":{\"allocatable\":{\"cpu\":\"1\"},"
                 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
                 i);
        json_t *x = s_j(text);
        CHECK(fleet_member_add_node(&m, x, &err) == 0);
        json_decref(x);
    }
    CHECK(m.nnodes == 43 && fleet_member_finish(&m) == 41 && m.alloc.v[FLEET_RES_CPU] == 48000);
    CHECK(strcmp(fleet_member_node(&m, "n1")->gpu_type, "A100") == 0);

    /* many nodes and pods: each pod lands on its own node through the name index (the array
     * moved as it grew), a pod of an unknown node counts nothing */
    fleet_member_t big;
    CHECK(fleet_member_init(&big, "big", NULL) == 0);
    enum { BIG_NODES = 5000, BIG_PODS = 20000 };
    for (int i = 0; i < BIG_NODES; i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"metadata\":{\"name\":\"node-%d\"},\"status\":{\"allocatable\":{\"cpu\":"
                 "\"64\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
                 i);
        json_t *x = s_j(text);
        CHECK(fleet_member_add_node(&big, x, &err) == 0);
        json_decref(x);
    }
    json_t *dupn = s_j("{\"metadata\":{\"name\":\"node-4321\"},\"status\":{}}");
    CHECK(fleet_member_add_node(&big, dupn, &err) == ERR_EXISTS && big.nnodes == BIG_NODES);
    json_decref(dupn);
    buf_reset(&err);
    for (int i = 0; i < BIG_PODS + 1; i++) {
        char text[256];
        /* pod i on node (i * 7) % BIG_NODES, requesting (1 + i % 3) hundred millicores; the
         * last one on a node the member does not have */
        snprintf(text, sizeof(text),
                 "{\"spec\":{\"nodeName\":\"node-%d\",\"containers\":[{\"resources\":"
                 "{\"requests\":{\"cpu\":\"%dm\"}}}]},\"status\":{\"phase\":\"Running\"}}",
                 i < BIG_PODS ? (i * 7) % BIG_NODES : BIG_NODES, 100 * (1 + i % 3));
        json_t *x = s_j(text);
        CHECK(fleet_member_add_pod(&big, x, &err) == 0);
        json_decref(x);
    }
    long long want_cpu[3] = {0};
    for (int i = 0; i < BIG_PODS; i++)
        if ((i * 7) % BIG_NODES < 3)
            want_cpu[(i * 7) % BIG_NODES] += 100 * (1 + i % 3);
    CHECK(fleet_member_node(&big, "node-0")->used.v[FLEET_RES_CPU] == want_cpu[0] &&
          fleet_member_node(&big, "node-1")->used.v[FLEET_RES_CPU] == want_cpu[1] &&
          fleet_member_node(&big, "node-2")->used.v[FLEET_RES_CPU] == want_cpu[2]);
    CHECK(fleet_member_node(&big, "node-4999") == &big.nodes[4999] &&
          fleet_member_node(&big, "node-5000") == NULL);
    CHECK(fleet_member_finish(&big) == BIG_NODES && big.used.v[FLEET_RES_PODS] == BIG_PODS &&
          big.alloc.v[FLEET_RES_CPU] == 64000LL * BIG_NODES);
    long long sum = 0;
    for (int i = 0; i < BIG_PODS; i++)
        sum += 100 * (1 + i % 3);
    CHECK(big.used.v[FLEET_RES_CPU] == sum);
    fleet_member_free(&big);
    CHECK(big.by_name == NULL);

    json_t *all[] = {n1, n2, n3, p1, done, failedp, pending, other, cordoned, bad, nn, nb};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        json_decref(all[i]);
    fleet_member_free(&m);
    CHECK(m.name == NULL && m.nodes == NULL);
    fleet_member_free(&m);
    buf_free(&err);
    return SELFTEST_RESULT("member", verbose);
}
#endif /* RF_SELFTEST */
