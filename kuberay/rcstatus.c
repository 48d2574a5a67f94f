/* rcstatus: KubeRay's RayCluster status and scaling decisions (see rcstatus.h). */
#include "rcstatus.h"

#include "conds.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "labels.h"
#include "names.h"

/* ---- quantities ---- */

int rcstatus_parse_quantity(const char *s, int64_t *milli, bool *binary)
{
    static const struct {
        const char *suf;
        long double mult;
        bool bin;
    } sufs[] = {{"Ki", 1024.0L, true},
                {"Mi", 1048576.0L, true},
                {"Gi", 1073741824.0L, true},
                {"Ti", 1099511627776.0L, true},
                {"Pi", 1125899906842624.0L, true},
                {"Ei", 1152921504606846976.0L, true},
                {"m", 1e-3L, false},
                {"k", 1e3L, false},
                {"M", 1e6L, false},
                {"G", 1e9L, false},
                {"T", 1e12L, false},
                {"P", 1e15L, false},
                {"E", 1e18L, false},
                {"", 1.0L, false}};
    if (!s || !*s || !milli)
        return ERR_INVAL;
    char *end = NULL;
    long double v = strtold(s, &end);
    if (end == s || !isfinite((double)v))
        return ERR_INVAL;
    bool bin = false;
    if (*end == 'e' || *end == 'E') {
        /* exponent already consumed by strtold unless it was the E suffix */
    }
    size_t i;
    for (i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
        if (strcmp(end, sufs[i].suf) == 0)
            break;
    if (i == sizeof(sufs) / sizeof(sufs[0]))
        return ERR_INVAL;
    v *= sufs[i].mult;
    bin = sufs[i].bin;
    long double m = ceill(v * 1000.0L - 1e-9L);
    if (m > 9.2e18L || m < -9.2e18L)
        return ERR_INVAL;
    *milli = (int64_t)m;
    if (binary)
        *binary = bin;
    return 0;
}

void rcstatus_format_quantity(int64_t milli, bool binary, char *out, size_t n)
{
    if (milli == 0) {
        snprintf(out, n, "0");
        return;
    }
    if (milli % 1000 != 0) {
        snprintf(out, n, "%lldm", (long long)milli);
        return;
    }
    int64_t v = milli / 1000;
    if (binary && (v >= 1024 || v <= -1024)) {
        static const char *const bs[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
        int k = 0;
        while (k < 6 && v % 1024 == 0) {
            v /= 1024;
            k++;
        }
        snprintf(out, n, "%lld%s", (long long)v, bs[k]);
        return;
    }
    static const char *const ds[] = {"", "k", "M", "G", "T", "P", "E"};
    int k = 0;
    while (k < 6 && v % 1000 == 0) {
        v /= 1000;
        k++;
    }
    snprintf(out, n, "%lld%s", (long long)v, ds[k]);
}

/* Saturating int64 arithmetic: specs may hold any int64 (kube-apiserver does not check
 * `format: int32` on custom resources), so sums and products clamp at INT64_MIN/INT64_MAX. */
static int64_t s_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t s_sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

/* A resource sum keeping the format of the first non-zero summand (Quantity.Add). */
typedef struct {
    int64_t milli;
    bool binary;
    bool set;
} s_sum_t;

static void s_add(s_sum_t *s, const char *q, int64_t times)
{
    int64_t m;
    bool bin;
    if (rcstatus_parse_quantity(q, &m, &bin) != 0)
        return;
    if (!s->set && m != 0) {
        s->binary = bin;
        s->set = true;
    }
    s->milli = s_sat_add(s->milli, s_sat_mul(m, times));
}

static bool s_is_gpu(const char *k)
{
    size_t n = strlen(k);
    return (n >= 3 && strcmp(k + n - 3, "gpu") == 0) || strncmp(k, "nvidia.com/mig-", 15) == 0;
}

/* Adds one pod template's resources (requests, else limits, per key, all containers) x times. */
static void s_add_pod(const json_t *tmpl, int64_t times, s_sum_t *cpu, s_sum_t *mem, s_sum_t *gpu,
                      s_sum_t *tpu)
{
    size_t i;
    json_t *c;
    json_array_foreach(jx_get(tmpl, "spec.containers"), i, c)
    {
        const json_t *req = jx_get(c, "resources.requests");
        const json_t *lim = jx_get(c, "resources.limits");
        json_t *merged = json_object();
        if (!merged)
            return;
        json_object_update(merged, (json_t *)lim);
        json_object_update(merged, (json_t *)req);
        const char *k;
        json_t *v;
        json_object_foreach(merged, k, v)
        {
            const char *q = json_string_value(v);
            char num[64];
            if (!q && json_is_number(v)) {
                snprintf(num, sizeof(num), "%g", json_number_value(v));
                q = num;
            }
            if (!q)
                continue;
            if (strcmp(k, "cpu") == 0)
                s_add(cpu, q, times);
            else if (strcmp(k, "memory") == 0)
                s_add(mem, q, times);
            else if (strcmp(k, "google.com/tpu") == 0)
                s_add(tpu, q, times);
            else if (s_is_gpu(k))
                s_add(gpu, q, times);
        }
        json_decref(merged);
    }
}

/* ---- pods ---- */

static const char *s_label(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(jx_get(o, "metadata.labels"), key));
}

static const json_t *s_pod_cond(const json_t *pod, const char *type)
{
    return jx_array_find(jx_get(pod, "status.conditions"), "type", type);
}

static bool s_running(const json_t *pod)
{
    return strcmp(jx_str(pod, "status.phase", ""), "Running") == 0;
}

static bool s_running_ready(const json_t *pod)
{
    return s_running(pod) && strcmp(jx_str(s_pod_cond(pod, "Ready"), "status", ""), "True") == 0;
}

/* CheckAllPodsRunning: at least one pod, every pod Running with Ready not False. */
static bool s_all_running(const json_t *pods)
{
    if (json_array_size(pods) == 0)
        return false;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        if (!s_running(p))
            return false;
        const json_t *rc = s_pod_cond(p, "Ready");
        if (rc && strcmp(jx_str(rc, "status", ""), "False") == 0)
            return false;
    }
    return true;
}

/* ---- conditions ---- */

/* HeadPodReady from the head pod (spec §1.12). */
static void s_head_ready(json_t *conds, const json_t *head, const char *now)
{
    const json_t *rc = s_pod_cond(head, "Ready");
    if (!rc) {
        conds_set(conds, RCS_COND_HEAD_READY, "False", RCS_REASON_UNKNOWN, "", now, -1);
        return;
    }
    const char *status = jx_str(rc, "status", "False");
    const char *reason = jx_str(rc, "reason", "");
    buf_t msg;
    buf_init(&msg, 1u << 16);
    buf_puts(&msg, jx_str(rc, "message", ""));
    char rbuf[256];
    if (strcmp(reason, "ContainersNotReady") == 0) {
        const json_t *cs = json_array_get(jx_get(head, "status.containerStatuses"), 0);
        const json_t *st = jx_get(cs, "state.waiting") ? jx_get(cs, "state.waiting")
                                                       : jx_get(cs, "state.terminated");
        if (st) {
            snprintf(rbuf, sizeof(rbuf), "%s", jx_str(st, "reason", reason));
            reason = rbuf;
            buf_printf(&msg, "; %s: %s", jx_str(cs, "name", ""), jx_str(st, "message", ""));
        }
    }
    if (strcmp(status, "True") == 0 && !reason[0])
        reason = RCS_REASON_HEAD_READY;
    if (!reason[0])
        reason = RCS_REASON_UNKNOWN;
    conds_set(conds, RCS_COND_HEAD_READY, status, reason, buf_str(&msg), now, -1);
    buf_free(&msg);
}

/* ---- replicas ---- */

int64_t rcstatus_group_replicas(const json_t *wg)
{
    int64_t mn = jx_int(wg, "minReplicas", 0), mx = jx_int(wg, "maxReplicas", RCS_MAX_REPLICAS);
    const json_t *r = json_object_get(wg, "replicas");
    if (mn > mx)
        return mx;
    if (!json_is_integer(r) || json_integer_value(r) < mn)
        return mn;
    if (json_integer_value(r) > mx)
        return mx;
    return json_integer_value(r);
}

int64_t rcstatus_group_desired(const json_t *wg)
{
    if (jx_bool(wg, "suspend", false))
        return 0;
    return s_sat_mul(rcstatus_group_replicas(wg), jx_int(wg, "numOfHosts", 1));
}

int64_t rcstatus_group_wanted(const json_t *rc, const json_t *wg)
{
    return jx_bool(rc, "spec.suspend", false) ? 0 : rcstatus_group_desired(wg);
}

int64_t rcstatus_head_wanted(const json_t *rc)
{
    return jx_bool(rc, "spec.suspend", false) ? 0 : 1;
}

json_t *rcstatus_calculate(const json_t *rc, const json_t *pods, const json_t *head_services,
                           const rcstatus_err_t *err, const char *now, buf_t *errbuf)
{
    const json_t *old = jx_get(rc, "status");
    json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
    if (!st)
        return NULL;
    if (!json_is_array(json_object_get(st, "conditions")))
        json_object_set_new(st, "conditions", json_array());
    json_t *conds = json_object_get(st, "conditions");
    const char *cname = jx_str(rc, "metadata.name", "");
    if (err && err->reason && err->reason[0])
        conds_set(conds, RCS_COND_REPLICA_FAILURE, "True", err->reason, err->message, now, -1);
    else if (!err)
        conds_remove(conds, RCS_COND_REPLICA_FAILURE);
    json_object_set_new(st, "observedGeneration",
                        json_integer(jx_int(rc, "metadata.generation", 0)));

    int64_t ready = 0, avail = 0, desired = 0, mn = 0, mx = 0;
    const json_t *head = NULL;
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p)
    {
        const char *nt = s_label(p, LABEL_NODE_TYPE);
        if (nt && strcmp(nt, NAMES_NODE_WORKER) == 0) {
            if (s_running_ready(p))
                ready++;
            if (s_running(p))
                avail++;
        } else if (nt && strcmp(nt, NAMES_NODE_HEAD) == 0 && !head) {
            head = p;
        }
    }
    s_sum_t cpu = {0}, mem = {0}, gpu = {0}, tpu = {0};
    s_add_pod(jx_get(rc, "spec.headGroupSpec.template"), 1, &cpu, &mem, &gpu, &tpu);
    json_t *wg;
    json_array_foreach(jx_get(rc, "spec.workerGroupSpecs"), i, wg)
    {
        desired = s_sat_add(desired, rcstatus_group_desired(wg));
        if (jx_bool(wg, "suspend", false))
            continue;
        int64_t hosts = jx_int(wg, "numOfHosts", 1);
        mn = s_sat_add(mn, s_sat_mul(jx_int(wg, "minReplicas", 0), hosts));
        mx = s_sat_add(mx, s_sat_mul(jx_int(wg, "maxReplicas", RCS_MAX_REPLICAS), hosts));
        s_add_pod(jx_get(wg, "template"), s_sat_mul(jx_int(wg, "replicas", 0), hosts), &cpu, &mem,
                  &gpu, &tpu);
    }
    if (mx > RCS_MAX_REPLICAS)
        mx = RCS_MAX_REPLICAS;
    json_object_set_new(st, "readyWorkerReplicas", json_integer(ready));
    json_object_set_new(st, "availableWorkerReplicas", json_integer(avail));
    json_object_set_new(st, "desiredWorkerReplicas", json_integer(desired));
    json_object_set_new(st, "minWorkerReplicas", json_integer(mn));
    json_object_set_new(st, "maxWorkerReplicas", json_integer(mx));
    char q[64];
    rcstatus_format_quantity(cpu.milli, cpu.binary, q, sizeof(q));
    json_object_set_new(st, "desiredCPU", json_string(q));
    rcstatus_format_quantity(mem.milli, mem.binary, q, sizeof(q));
    json_object_set_new(st, "desiredMemory", json_string(q));
    rcstatus_format_quantity(gpu.milli, gpu.binary, q, sizeof(q));
    json_object_set_new(st, "desiredGPU", json_string(q));
    rcstatus_format_quantity(tpu.milli, tpu.binary, q, sizeof(q));
    json_object_set_new(st, "desiredTPU", json_string(q));

    size_t npods = json_array_size(pods);
    if (!err && desired < INT64_MAX && (int64_t)npods == desired + 1 && s_all_running(pods)) {
        json_object_set_new(st, "state", json_string(RCS_STATE_READY));
        json_object_set_new(st, "reason", json_string(""));
    }
    /* conditions (gate RayClusterStatusConditions on) */
    if (!head)
        conds_set(conds, RCS_COND_HEAD_READY, "False", RCS_REASON_HEAD_NOT_FOUND,
                  RCS_MSG_HEAD_NOT_FOUND, now, -1);
    else
        s_head_ready(conds, head, now);
    const char *susp = conds_true(conds, RCS_COND_SUSPENDING)  ? RCS_COND_SUSPENDING
                       : conds_true(conds, RCS_COND_SUSPENDED) ? RCS_COND_SUSPENDED
                                                               : "";
    if (!conds_true(conds, RCS_COND_PROVISIONED) && strcmp(susp, RCS_COND_SUSPENDED) != 0) {
        if (s_all_running(pods))
            conds_set(conds, RCS_COND_PROVISIONED, "True", RCS_REASON_FIRST_READY,
                      RCS_MSG_FIRST_READY, now, -1);
        else
            conds_set(conds, RCS_COND_PROVISIONED, "False", RCS_REASON_PROVISIONING,
                      RCS_MSG_PROVISIONING, now, -1);
    }
    const json_t *spec_suspend = jx_get(rc, "spec.suspend");
    if (strcmp(susp, RCS_COND_SUSPENDING) == 0) {
        if (npods == 0) {
            conds_set(conds, RCS_COND_PROVISIONED, "False", RCS_REASON_PROVISIONING,
                      RCS_MSG_SUSPENDED, now, -1);
            conds_set(conds, RCS_COND_SUSPENDING, "False", RCS_COND_SUSPENDING, "", now, -1);
            conds_set(conds, RCS_COND_SUSPENDED, "True", RCS_COND_SUSPENDED, "", now, -1);
        }
    } else if (strcmp(susp, RCS_COND_SUSPENDED) == 0) {
        if (json_is_false(spec_suspend))
            conds_set(conds, RCS_COND_SUSPENDED, "False", RCS_COND_SUSPENDED, "", now, -1);
    } else {
        conds_set(conds, RCS_COND_SUSPENDED, "False", RCS_COND_SUSPENDED, "", now, -1);
        conds_set(conds, RCS_COND_SUSPENDING, json_is_true(spec_suspend) ? "True" : "False",
                  RCS_COND_SUSPENDING, "", now, -1);
    }
    if (json_is_true(spec_suspend) && npods == 0)
        json_object_set_new(st, "state", json_string(RCS_STATE_SUSPENDED));

    /* endpoints from the first head service */
    const json_t *svc = json_array_get(head_services, 0);
    if (svc) {
        if (!json_is_object(json_object_get(st, "endpoints")))
            json_object_set_new(st, "endpoints", json_object());
        json_t *ep = json_object_get(st, "endpoints");
        json_t *port;
        json_array_foreach(jx_get(svc, "spec.ports"), i, port)
        {
            const char *n = jx_str(port, "name", "");
            const json_t *tp = json_object_get(port, "targetPort");
            char v[32];
            if (!n[0])
                continue;
            if (jx_int(port, "nodePort", 0) != 0) {
                snprintf(v, sizeof(v), "%lld", (long long)jx_int(port, "nodePort", 0));
                json_object_set_new(ep, n, json_string(v));
            } else if (json_is_integer(tp) && json_integer_value(tp) != 0) {
                snprintf(v, sizeof(v), "%lld", (long long)json_integer_value(tp));
                json_object_set_new(ep, n, json_string(v));
            } else if (json_is_string(tp) && json_string_value(tp)[0]) {
                json_object_set_new(ep, n, json_string(json_string_value(tp)));
            }
        }
    }
    /* head info */
    json_t *hi = json_pack("{s:s,s:s}", "podIP", head ? jx_str(head, "status.podIP", "") : "",
                           "podName", head ? jx_str(head, "metadata.name", "") : "");
    const char *fail = NULL;
    if (json_array_size(head_services) < 1)
        fail = "unable to find head service";
    else if (json_array_size(head_services) > 1)
        fail = "found multiple head services";
    else if (!jx_str(svc, "spec.clusterIP", "")[0])
        fail = "head service IP is empty";
    if (fail) {
        if (errbuf)
            buf_printf(errbuf,
                       "%s. cluster name %s, filter labels [map[" LABEL_CLUSTER
                       ":%s " LABEL_IDENTIFIER ":%s-head " LABEL_NODE_TYPE ":" NAMES_NODE_HEAD "]]",
                       fail, cname, cname, cname);
        json_decref(hi);
        json_decref(st);
        return NULL;
    }
    const char *cip = jx_str(svc, "spec.clusterIP", "");
    json_object_set_new(hi, "serviceIP",
                        json_string(strcmp(cip, "None") == 0
                                        ? (head ? jx_str(head, "status.podIP", "") : "")
                                        : cip));
    json_object_set_new(hi, "serviceName", json_string(jx_str(svc, "metadata.name", "")));
    json_object_set_new(st, "head", hi);
    json_object_set_new(st, "lastUpdateTime", json_string(now));
    const char *old_state = jx_str(old, "state", "");
    const char *new_state = jx_str(st, "state", "");
    if (strcmp(old_state, new_state) != 0) {
        if (!json_is_object(json_object_get(st, "stateTransitionTimes")))
            json_object_set_new(st, "stateTransitionTimes", json_object());
        json_object_set_new(json_object_get(st, "stateTransitionTimes"), new_state,
                            json_string(now));
    }
    return st;
}

bool rcstatus_changed(const json_t *o, const json_t *n)
{
    static const char *const scalar[] = {"state",
                                         "reason",
                                         "readyWorkerReplicas",
                                         "availableWorkerReplicas",
                                         "desiredWorkerReplicas",
                                         "minWorkerReplicas",
                                         "maxWorkerReplicas",
                                         "endpoints",
                                         "head",
                                         "conditions"};
    for (size_t i = 0; i < sizeof(scalar) / sizeof(scalar[0]); i++) {
        const json_t *a = json_object_get(o, scalar[i]);
        const json_t *b = json_object_get(n, scalar[i]);
        bool ea = !a || json_is_null(a) || (json_is_string(a) && !json_string_value(a)[0]) ||
                  (json_is_integer(a) && json_integer_value(a) == 0) ||
                  ((json_is_object(a) || json_is_array(a)) &&
                   json_object_size(a) + json_array_size(a) == 0);
        bool eb = !b || json_is_null(b) || (json_is_string(b) && !json_string_value(b)[0]) ||
                  (json_is_integer(b) && json_integer_value(b) == 0) ||
                  ((json_is_object(b) || json_is_array(b)) &&
                   json_object_size(b) + json_array_size(b) == 0);
        if (ea && eb)
            continue;
        if (ea != eb || !json_equal(a, b))
            return true;
    }
    return false;
}

/* ---- scaling ---- */

bool rcstatus_should_delete_pod(const json_t *pod)
{
    const char *phase = jx_str(pod, "status.phase", "");
    if (strcmp(phase, "Failed") == 0 || strcmp(phase, "Succeeded") == 0)
        return true;
    if (strcmp(phase, "Running") != 0)
        return false;
    const char *ray = jx_str(json_array_get(jx_get(pod, "spec.containers"), 0), "name", "");
    size_t i;
    json_t *cs;
    json_array_foreach(jx_get(pod, "status.containerStatuses"), i, cs)
    {
        if (strcmp(jx_str(cs, "name", ""), ray) == 0 && jx_get(cs, "state.terminated"))
            return strcmp(jx_str(pod, "spec.restartPolicy", ""), "Never") == 0;
    }
    return false;
}

static bool s_in(const json_t *names, const char *n)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), n) == 0)
            return true;
    }
    return false;
}

int rcstatus_scale_group(const json_t *wg, const json_t *pods, bool autoscaling, bool random_delete,
                         rcstatus_scale_t *out)
{
    memset(out, 0, sizeof(*out));
    out->delete_names = json_array();
    if (!out->delete_names)
        return ERR_NOMEM;
    int64_t desired = rcstatus_group_desired(wg);
    size_t i;
    json_t *p;
    if (jx_bool(wg, "suspend", false)) {
        json_array_foreach(pods, i, p)
            json_array_append_new(out->delete_names, json_string(jx_str(p, "metadata.name", "")));
        return 0;
    }
    json_array_foreach(pods, i, p)
    {
        if (rcstatus_should_delete_pod(p))
            json_array_append_new(out->delete_names, json_string(jx_str(p, "metadata.name", "")));
    }
    if (json_array_size(out->delete_names) > 0) {
        out->unhealthy = true;
        return 0;
    }
    const json_t *wtd = jx_get(wg, "scaleStrategy.workersToDelete");
    json_array_foreach(wtd, i, p)
    {
        if (json_is_string(p) && !s_in(out->delete_names, json_string_value(p)))
            json_array_append_new(out->delete_names, json_string(json_string_value(p)));
    }
    int64_t remaining = 0;
    json_array_foreach(pods, i, p)
    {
        if (!s_in(wtd, jx_str(p, "metadata.name", "")))
            remaining++;
    }
    int64_t diff = s_sat_add(desired, -remaining);
    if (diff > 0) {
        out->create = diff;
    } else if (diff < 0 && (!autoscaling || random_delete)) {
        int64_t left = diff == INT64_MIN ? INT64_MAX : -diff;
        json_array_foreach(pods, i, p)
        {
            if (left == 0)
                break;
            const char *n = jx_str(p, "metadata.name", "");
            if (s_in(wtd, n))
                continue;
            json_array_append_new(out->delete_names, json_string(n));
            left--;
        }
    }
    return 0;
}

void rcstatus_scale_free(rcstatus_scale_t *s)
{
    if (s) {
        json_decref(s->delete_names);
        s->delete_names = NULL;
    }
}

#ifdef RF_SELFTEST
#include "selftest.h"

/* ---- self-test ---- */

static json_t *s_pod(const char *name, const char *type, const char *phase, const char *ready)
{
    json_t *p =
        json_pack("{s:{s:s,s:{s:s,s:s}},s:{s:[{s:s}]},s:{s:s,s:s,s:[]}}", "metadata", "name", name,
                  "labels", "ray.io/cluster", "rc", "ray.io/node-type", type, "spec", "containers",
                  "name", "ray", "status", "phase", phase, "podIP", "10.0.0.1", "conditions");
    if (p && ready)
        json_array_append_new(jx_get(p, "status.conditions"),
                              json_pack("{s:s,s:s}", "type", "Ready", "status", ready));
    return p;
}

static const char *s_cond_field(const json_t *st, const char *type, const char *field)
{
    return jx_str(conds_find(json_object_get(st, "conditions"), type, NULL), field, "(none)");
}

static bool s_names_are(const json_t *arr, const char *want)
{
    buf_t b;
    buf_init(&b, 4096);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) buf_printf(&b, "%s%s", i ? "," : "", json_string_value(v));
    bool ok = strcmp(buf_str(&b), want) == 0;
    if (!ok)
        printf("rcstatus: names '%s' want '%s'\n", buf_str(&b), want);
    buf_free(&b);
    return ok;
}

int rcstatus_test(bool verbose)
{
    int failed = 0;
    char q[64];
    int64_t m;
    bool bin;
    /* quantities */
    CHECK(rcstatus_parse_quantity("500m", &m, &bin) == 0 && m == 500 && !bin);
    CHECK(rcstatus_parse_quantity("2Gi", &m, &bin) == 0 && m == 2147483648000LL && bin);
    CHECK(rcstatus_parse_quantity("1.5", &m, &bin) == 0 && m == 1500);
    CHECK(rcstatus_parse_quantity("1e3", &m, &bin) == 0 && m == 1000000);
    CHECK(rcstatus_parse_quantity("abc", &m, &bin) == ERR_INVAL &&
          rcstatus_parse_quantity("1Xi", &m, &bin) == ERR_INVAL);
    rcstatus_format_quantity(1500, false, q, sizeof(q));
    CHECK(strcmp(q, "1500m") == 0);
    rcstatus_format_quantity(3000, false, q, sizeof(q));
    CHECK(strcmp(q, "3") == 0);
    rcstatus_format_quantity(2000000, false, q, sizeof(q));
    CHECK(strcmp(q, "2k") == 0);
    rcstatus_format_quantity(7LL * 1073741824LL * 1000LL, true, q, sizeof(q));
    CHECK(strcmp(q, "7Gi") == 0);
    rcstatus_format_quantity(0, true, q, sizeof(q));
    CHECK(strcmp(q, "0") == 0);

    json_t *rc = json_loads("{\"metadata\":{\"name\":\"rc\",\"namespace\":\"ns\",\"generation\":3},"
                            "\"spec\":{\"headGroupSpec\":{"
                            "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray\","
                            "\"resources\":{\"limits\":{\"cpu\":\"1\","
                            "\"memory\":\"2Gi\"},\"requests\":{\"cpu\":\"500m\"}}}]}}},"
                            "\"workerGroupSpecs\":[{\"groupName\":\"wg\","
                            "\"replicas\":2,\"minReplicas\":1,\"maxReplicas\":4,\"numOfHosts\":1,"
                            "\"template\":{\"spec\":{\"containers\":"
                            "[{\"name\":\"ray\",\"resources\":{\"limits\":{\"cpu\":\"1\","
                            "\"memory\":\"1Gi\",\"nvidia.com/gpu\":\"1\"}}}]}}}]}}",
                            0, NULL);
    json_t *svcs = json_loads(
        "[{\"metadata\":{\"name\":\"rc-head-svc\"},\"spec\":{\"clusterIP\":\"None\",\"ports\":["
        "{\"name\":\"dashboard\",\"port\":8265,\"targetPort\":8265},{\"name\":\"client\","
        "\"port\":10001,\"nodePort\":30001,\"targetPort\":10001}]}}]",
        0, NULL);
    buf_t eb;
    buf_init(&eb, 4096);
    /* head not ready -> not ready */
    json_t *pods =
        json_pack("[o,o,o]", s_pod("rc-head-x", "head", "Running", "False"),
                  s_pod("w1", "worker", "Running", "True"), s_pod("w2", "worker", "Pending", NULL));
    json_t *st = rcstatus_calculate(rc, pods, svcs, NULL, "2024-01-01T00:00:00Z", &eb);
    CHECK(st != NULL);
    CHECK(!json_object_get(st, "state"));
    CHECK(jx_int(st, "readyWorkerReplicas", -1) == 1 &&
          jx_int(st, "availableWorkerReplicas", -1) == 1);
    CHECK(jx_int(st, "desiredWorkerReplicas", -1) == 2 &&
          jx_int(st, "minWorkerReplicas", -1) == 1 && jx_int(st, "maxWorkerReplicas", -1) == 4 &&
          jx_int(st, "observedGeneration", 0) == 3);
    CHECK(strcmp(jx_str(st, "desiredCPU", ""), "2500m") == 0 &&
          strcmp(jx_str(st, "desiredMemory", ""), "4Gi") == 0 &&
          strcmp(jx_str(st, "desiredGPU", ""), "2") == 0 &&
          strcmp(jx_str(st, "desiredTPU", ""), "0") == 0);
    CHECK(strcmp(s_cond_field(st, RCS_COND_HEAD_READY, "status"), "False") == 0);
    CHECK(strcmp(s_cond_field(st, RCS_COND_PROVISIONED, "reason"), RCS_REASON_PROVISIONING) == 0 &&
          strcmp(s_cond_field(st, RCS_COND_PROVISIONED, "message"), RCS_MSG_PROVISIONING) == 0);
    CHECK(strcmp(jx_str(st, "endpoints.dashboard", ""), "8265") == 0 &&
          strcmp(jx_str(st, "endpoints.client", ""), "30001") == 0);
    CHECK(strcmp(jx_str(st, "head.serviceIP", ""), "10.0.0.1") == 0 &&
          strcmp(jx_str(st, "head.serviceName", ""), "rc-head-svc") == 0 &&
          strcmp(jx_str(st, "head.podName", ""), "rc-head-x") == 0);
    /* all ready -> ready, HeadPodReady True, Provisioned True */
    json_t *pods2 = json_pack("[o,o,o]", s_pod("rc-head-x", "head", "Running", "True"),
                              s_pod("w1", "worker", "Running", "True"),
                              s_pod("w2", "worker", "Running", "True"));
    jx_set_path(rc, "status", json_incref(st));
    json_t *st2 = rcstatus_calculate(rc, pods2, svcs, NULL, "2024-01-01T00:00:05Z", &eb);
    CHECK(st2 && strcmp(jx_str(st2, "state", ""), "ready") == 0 &&
          strcmp(jx_str(st2, "stateTransitionTimes.ready", ""), "2024-01-01T00:00:05Z") == 0);
    CHECK(strcmp(s_cond_field(st2, RCS_COND_HEAD_READY, "status"), "True") == 0 &&
          strcmp(s_cond_field(st2, RCS_COND_HEAD_READY, "reason"), RCS_REASON_HEAD_READY) == 0);
    CHECK(strcmp(s_cond_field(st2, RCS_COND_PROVISIONED, "status"), "True") == 0 &&
          strcmp(s_cond_field(st2, RCS_COND_PROVISIONED, "reason"), RCS_REASON_FIRST_READY) == 0 &&
          strcmp(s_cond_field(st2, RCS_COND_PROVISIONED, "message"), RCS_MSG_FIRST_READY) == 0);
    CHECK(strcmp(s_cond_field(st2, RCS_COND_SUSPENDED, "status"), "False") == 0);
    CHECK(rcstatus_changed(st, st2));
    /* recomputation with only lastUpdateTime changing is not a change */
    jx_set_path(rc, "status", json_incref(st2));
    json_t *st3 = rcstatus_calculate(rc, pods2, svcs, NULL, "2024-01-01T00:01:00Z", &eb);
    CHECK(st3 && !rcstatus_changed(st2, st3));
    json_object_set_new(st3, "desiredCPU", json_string("99"));
    CHECK(!rcstatus_changed(st2, st3));
    json_object_set_new(st3, "readyWorkerReplicas", json_integer(7));
    CHECK(rcstatus_changed(st2, st3));
    json_decref(st3);
    /* reconcile error -> ReplicaFailure, no ready transition */
    rcstatus_err_t e = {"FailedCreateWorkerPod", "boom"};
    st3 = rcstatus_calculate(rc, pods2, svcs, &e, "t", &eb);
    CHECK(st3 &&
          strcmp(s_cond_field(st3, RCS_COND_REPLICA_FAILURE, "reason"), "FailedCreateWorkerPod") ==
              0 &&
          strcmp(s_cond_field(st3, RCS_COND_REPLICA_FAILURE, "message"), "boom") == 0);
    jx_set_path(rc, "status", json_incref(st3));
    json_t *st4 = rcstatus_calculate(rc, pods2, svcs, NULL, "t", &eb);
    CHECK(st4 &&
          conds_find(json_object_get(st4, "conditions"), RCS_COND_REPLICA_FAILURE, NULL) == NULL);
    json_decref(st3);
    json_decref(st4);
    /* suspend: Suspending, then Suspended once no pods */
    jx_set_path(rc, "status", json_incref(st2));
    jx_set_path(rc, "spec.suspend", json_true());
    st3 = rcstatus_calculate(rc, pods2, svcs, NULL, "t", &eb);
    CHECK(st3 && strcmp(s_cond_field(st3, RCS_COND_SUSPENDING, "status"), "True") == 0 &&
          strcmp(s_cond_field(st3, RCS_COND_SUSPENDING, "reason"), RCS_COND_SUSPENDING) == 0);
    jx_set_path(rc, "status", json_incref(st3));
    json_t *none = json_array();
    st4 = rcstatus_calculate(rc, none, svcs, NULL, "t", &eb);
    CHECK(st4 && strcmp(s_cond_field(st4, RCS_COND_SUSPENDED, "status"), "True") == 0 &&
          strcmp(s_cond_field(st4, RCS_COND_SUSPENDING, "status"), "False") == 0 &&
          strcmp(s_cond_field(st4, RCS_COND_PROVISIONED, "message"), RCS_MSG_SUSPENDED) == 0 &&
          strcmp(jx_str(st4, "state", ""), "suspended") == 0 &&
          strcmp(s_cond_field(st4, RCS_COND_HEAD_READY, "reason"), RCS_REASON_HEAD_NOT_FOUND) == 0);
    /* resume */
    jx_set_path(rc, "status", json_incref(st4));
    jx_set_path(rc, "spec.suspend", json_false());
    json_t *st5 = rcstatus_calculate(rc, none, svcs, NULL, "t", &eb);
    CHECK(st5 && strcmp(s_cond_field(st5, RCS_COND_SUSPENDED, "status"), "False") == 0);
    json_decref(st3);
    json_decref(st4);
    json_decref(st5);
    /* missing head service -> error */
    json_t *nosvc = json_array();
    buf_reset(&eb);
    CHECK(rcstatus_calculate(rc, pods2, nosvc, NULL, "t", &eb) == NULL &&
          strstr(buf_str(&eb), "unable to find head service") == buf_str(&eb));
    json_decref(nosvc);
    json_decref(none);
    json_decref(st);
    json_decref(st2);
    json_decref(pods);

    /* int64 specs (kube does not check format: int32): sums saturate, no signed overflow */
    json_t *huge = json_loads(
        "{\"metadata\":{\"name\":\"h\"},\"spec\":{\"headGroupSpec\":{\"template\":{}},"
        "\"workerGroupSpecs\":[{\"groupName\":\"a\",\"replicas\":99999999999,\"minReplicas\":"
        "9223372036854775807,\"maxReplicas\":9223372036854775807,\"numOfHosts\":99999999999,"
        "\"template\":{\"spec\":{\"containers\":[{\"name\":\"ray\",\"resources\":{\"limits\":"
        "{\"cpu\":\"9e15\",\"memory\":\"7Ei\"}}}]}}},{\"groupName\":\"b\",\"replicas\":"
        "9223372036854775807,\"maxReplicas\":9223372036854775807,\"numOfHosts\":2,"
        "\"template\":{}},{\"groupName\":\"c\",\"replicas\":5,\"numOfHosts\":"
        "-9223372036854775807,\"suspend\":true,\"template\":{}}]}}",
        0, NULL);
    CHECK(huge != NULL);
    json_t *hsvc = json_loads(
        "[{\"metadata\":{\"name\":\"h-head-svc\"},\"spec\":{\"clusterIP\":\"None\"}}]", 0, NULL);
    json_t *nopods = json_array();
    buf_reset(&eb);
    json_t *hst = rcstatus_calculate(huge, nopods, hsvc, NULL, "t", &eb);
    CHECK(hst && jx_int(hst, "desiredWorkerReplicas", 0) == INT64_MAX &&
          jx_int(hst, "maxWorkerReplicas", 0) == RCS_MAX_REPLICAS &&
          jx_str(hst, "desiredCPU", "-")[0] != '-' && jx_str(hst, "desiredMemory", "-")[0] != '-');
    CHECK(rcstatus_group_desired(json_array_get(jx_get(huge, "spec.workerGroupSpecs"), 0)) ==
          INT64_MAX);
    rcstatus_scale_t hs;
    json_t *neg = json_loads("{\"replicas\":5,\"numOfHosts\":-9223372036854775807}", 0, NULL);
    CHECK(rcstatus_scale_group(neg, nopods, false, false, &hs) == 0 && hs.create == 0);
    json_decref(neg);
    rcstatus_scale_free(&hs);
    json_decref(nopods);
    json_decref(hst);
    json_decref(hsvc);
    json_decref(huge);

    /* scaling */
    json_t *wg = json_array_get(jx_get(rc, "spec.workerGroupSpecs"), 0);
    CHECK(rcstatus_group_desired(wg) == 2);
    rcstatus_scale_t s;
    json_t *p1 = json_pack("[o]", s_pod("w1", "worker", "Running", "True"));
    CHECK(rcstatus_scale_group(wg, p1, false, false, &s) == 0 && s.create == 1 &&
          json_array_size(s.delete_names) == 0);
    rcstatus_scale_free(&s);
    /* failed worker deleted, nothing created this pass */
    json_t *pf = json_pack("[o,o]", s_pod("w1", "worker", "Running", "True"),
                           s_pod("w2", "worker", "Failed", NULL));
    CHECK(rcstatus_scale_group(wg, pf, false, false, &s) == 0 && s.unhealthy && s.create == 0 &&
          s_names_are(s.delete_names, "w2"));
    rcstatus_scale_free(&s);
    /* Running with terminated ray container: Never -> delete; Always -> keep */
    json_t *pt = s_pod("w3", "worker", "Running", "False");
    jx_set_path(pt, "status.containerStatuses",
                json_pack("[{s:s,s:{s:{}}}]", "name", "ray", "state", "terminated"));
    jx_set_path(pt, "spec.restartPolicy", json_string("Never"));
    CHECK(rcstatus_should_delete_pod(pt));
    jx_set_path(pt, "spec.restartPolicy", json_string("Always"));
    CHECK(!rcstatus_should_delete_pod(pt));
    json_decref(pt);
    /* workersToDelete honoured exactly, then replaced to reach desired */
    json_t *p3 = json_pack("[o,o,o]", s_pod("w1", "worker", "Running", "True"),
                           s_pod("w2", "worker", "Running", "True"),
                           s_pod("w3", "worker", "Running", "True"));
    jx_set_path(wg, "scaleStrategy", json_pack("{s:[s,s]}", "workersToDelete", "w2", "gone"));
    CHECK(rcstatus_scale_group(wg, p3, true, false, &s) == 0 &&
          s_names_are(s.delete_names, "w2,gone") && s.create == 0);
    rcstatus_scale_free(&s);
    jx_set_path(wg, "replicas", json_integer(3));
    CHECK(rcstatus_scale_group(wg, p3, true, false, &s) == 0 &&
          s_names_are(s.delete_names, "w2,gone") && s.create == 1);
    rcstatus_scale_free(&s);
    json_object_del(wg, "scaleStrategy");
    /* surplus: deleted only with autoscaling off (first |diff| in list order) */
    jx_set_path(wg, "replicas", json_integer(1));
    CHECK(rcstatus_scale_group(wg, p3, false, false, &s) == 0 &&
          s_names_are(s.delete_names, "w1,w2") && s.create == 0);
    rcstatus_scale_free(&s);
    CHECK(rcstatus_scale_group(wg, p3, true, false, &s) == 0 &&
          json_array_size(s.delete_names) == 0 && s.create == 0);
    rcstatus_scale_free(&s);
    CHECK(rcstatus_scale_group(wg, p3, true, true, &s) == 0 &&
          s_names_are(s.delete_names, "w1,w2"));
    rcstatus_scale_free(&s);
    /* clamping and suspend */
    jx_set_path(wg, "replicas", json_integer(9));
    CHECK(rcstatus_group_desired(wg) == 4);
    jx_set_path(wg, "numOfHosts", json_integer(2));
    CHECK(rcstatus_group_desired(wg) == 8);
    jx_set_path(wg, "suspend", json_true());
    CHECK(rcstatus_group_desired(wg) == 0);
    CHECK(rcstatus_scale_group(wg, p3, false, false, &s) == 0 &&
          s_names_are(s.delete_names, "w1,w2,w3"));
    rcstatus_scale_free(&s);
    /* the wanted counts: every clamping rule, numOfHosts as set (0 hosts want no pod, where
     * rayfleetctl explain once counted one host), group and cluster suspend */
    json_t *g = json_object();
    CHECK(rcstatus_group_replicas(g) == 0 && rcstatus_group_desired(g) == 0);
    jx_set_path(g, "minReplicas", json_integer(2));
    CHECK(rcstatus_group_replicas(g) == 2 && rcstatus_group_desired(g) == 2);
    jx_set_path(g, "replicas", json_integer(1));
    CHECK(rcstatus_group_replicas(g) == 2);
    jx_set_path(g, "replicas", json_integer(7));
    CHECK(rcstatus_group_replicas(g) == 7 && rcstatus_group_desired(g) == 7);
    jx_set_path(g, "maxReplicas", json_integer(5));
    CHECK(rcstatus_group_replicas(g) == 5);
    jx_set_path(g, "minReplicas", json_integer(6));
    CHECK(rcstatus_group_replicas(g) == 5 && rcstatus_group_desired(g) == 5);
    jx_set_path(g, "replicas", json_string("7"));
    CHECK(rcstatus_group_replicas(g) == 5);
    jx_set_path(g, "minReplicas", json_integer(1));
    CHECK(rcstatus_group_replicas(g) == 1);
    jx_set_path(g, "replicas", json_integer(3));
    jx_set_path(g, "numOfHosts", json_integer(0));
    CHECK(rcstatus_group_replicas(g) == 3 && rcstatus_group_desired(g) == 0);
    jx_set_path(g, "numOfHosts", json_integer(4));
    CHECK(rcstatus_group_desired(g) == 12);
    json_t *crc = json_pack("{s:{s:b}}", "spec", "suspend", 0);
    CHECK(rcstatus_group_wanted(crc, g) == 12 && rcstatus_head_wanted(crc) == 1);
    CHECK(rcstatus_group_wanted(NULL, g) == 12 && rcstatus_head_wanted(NULL) == 1);
    jx_set_path(g, "suspend", json_true());
    CHECK(rcstatus_group_replicas(g) == 3 && rcstatus_group_wanted(crc, g) == 0);
    jx_set_path(g, "suspend", json_false());
    jx_set_path(crc, "spec.suspend", json_true());
    CHECK(rcstatus_group_desired(g) == 12 && rcstatus_group_wanted(crc, g) == 0 &&
          rcstatus_head_wanted(crc) == 0);
    json_decref(crc);
    json_decref(g);
    json_decref(p1);
    json_decref(pf);
    json_decref(p3);
    json_decref(pods2);
    json_decref(svcs);
    json_decref(rc);
    buf_free(&eb);
    return SELFTEST_RESULT("rcstatus", verbose);
}

#endif /* RF_SELFTEST */
