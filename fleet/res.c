/*
 * res: resource vectors. See res.h.
 */
#include "res.h"

#include "err.h"
#include "rcstatus.h"

#include <stdio.h>
#include <string.h>

static const char *const s_names[FLEET_RES_N] = {"cpu", "memory", "gpu", "pods"};

const char *fleet_res_name(fleet_resname_t r)
{
    return (unsigned)r < FLEET_RES_N ? s_names[r] : "?";
}

int fleet_res_of(const char *k8s_name)
{
    if (!k8s_name)
        return -1;
    if (strcmp(k8s_name, "cpu") == 0)
        return FLEET_RES_CPU;
    if (strcmp(k8s_name, "memory") == 0)
        return FLEET_RES_MEMORY;
    if (strcmp(k8s_name, "pods") == 0)
        return FLEET_RES_PODS;
    size_t n = strlen(k8s_name);
    if ((n > 4 && strcmp(k8s_name + n - 4, "/gpu") == 0) || strcmp(k8s_name, "google.com/tpu") == 0)
        return FLEET_RES_GPU;
    return -1;
}

static int64_t s_sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* The quantity `v` (a string or an integer) in the dimension's unit: CPU in milli, memory in
 * bytes (rounded up), devices and pods whole (rounded up). */
static int s_quantity(const json_t *v, int dim, int64_t *out)
{
    int64_t milli = 0;
    bool binary = false;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > INT64_MAX / 1000)
            return ERR_INVAL;
        milli = (int64_t)i * 1000;
    } else if (json_is_string(v)) {
        if (rcstatus_parse_quantity(json_string_value(v), &milli, &binary) != 0)
            return ERR_INVAL;
    } else {
        return ERR_INVAL;
    }
    if (milli < 0)
        return ERR_INVAL;
    *out = dim == FLEET_RES_CPU ? milli : milli / 1000 + (milli % 1000 != 0);
    return 0;
}

int fleet_res_add_list(fleet_res_t *out, const json_t *list, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_object(list)) {
        if (err)
            (void)buf_puts(err, "resources: must be a map of resource names to quantities");
        return ERR_INVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)list, k, v)
    {
        int dim = fleet_res_of(k);
        if (dim < 0)
            continue;
        int64_t q;
        if (s_quantity(v, dim, &q) != 0) {
            if (err)
                (void)buf_printf(err, "resources: %s: not a non-negative quantity", k);
            return ERR_INVAL;
        }
        out->v[dim] = s_sat_add(out->v[dim], q);
    }
    return 0;
}

int fleet_res_parse_quota(const json_t *map, fleet_res_t *out, buf_t *err)
{
    if (!out)
        return ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (!map || json_is_null(map))
        return 0;
    if (!json_is_object(map)) {
        if (err)
            (void)buf_puts(err, "quota: must be a map of cpu, memory, gpu, pods to quantities");
        return ERR_INVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        int dim = strcmp(k, "gpu") == 0 ? FLEET_RES_GPU : fleet_res_of(k);
        if (dim < 0) {
            if (err)
                (void)buf_printf(err,
                                 "quota: unknown resource \"%s\" (want cpu, memory, gpu, pods)", k);
            return ERR_INVAL;
        }
        int64_t q;
        if (s_quantity(v, dim, &q) != 0) {
            if (err)
                (void)buf_printf(err, "quota: %s: not a non-negative quantity", k);
            return ERR_INVAL;
        }
        out->v[dim] = s_sat_add(out->v[dim], q);
    }
    return 0;
}

void fleet_res_add(fleet_res_t *a, const fleet_res_t *b)
{
    for (int i = 0; i < FLEET_RES_N; i++)
        a->v[i] = s_sat_add(a->v[i], b->v[i]);
}

void fleet_res_sub(fleet_res_t *a, const fleet_res_t *b)
{
    for (int i = 0; i < FLEET_RES_N; i++)
        a->v[i] = b->v[i] == INT64_MIN ? s_sat_add(s_sat_add(a->v[i], INT64_MAX), 1)
                                       : s_sat_add(a->v[i], -b->v[i]);
}

void fleet_res_scale(fleet_res_t *a, int64_t k)
{
    if (k < 0)
        k = 0;
    for (int i = 0; i < FLEET_RES_N; i++) {
        int64_t x = a->v[i];
        if (k != 0 && x != 0 && (x > INT64_MAX / k || x < INT64_MIN / k))
            a->v[i] = x > 0 ? INT64_MAX : INT64_MIN;
        else
            a->v[i] = x * k;
    }
}

bool fleet_res_fits(const fleet_res_t *need, const fleet_res_t *avail)
{
    for (int i = 0; i < FLEET_RES_N; i++)
        if (need->v[i] > avail->v[i])
            return false;
    return true;
}

bool fleet_res_is_zero(const fleet_res_t *a)
{
    for (int i = 0; i < FLEET_RES_N; i++)
        if (a->v[i] != 0)
            return false;
    return true;
}

double fleet_res_dominant_share(const fleet_res_t *use, const fleet_res_t *total, int *which)
{
    double best = 0;
    int w = -1;
    for (int i = 0; i < FLEET_RES_N; i++) {
        double s;
        if (use->v[i] <= 0)
            continue;
        s = total->v[i] > 0 ? (double)use->v[i] / (double)total->v[i] : 1e9;
        if (s > best) {
            best = s;
            w = i;
        }
    }
    if (which)
        *which = w;
    return best;
}

size_t fleet_res_format(const fleet_res_t *r, char *out, size_t n)
{
    if (!out || n == 0)
        return 0;
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < FLEET_RES_N; i++) {
        if (r->v[i] == 0)
            continue;
        char q[64];
        if (i == FLEET_RES_CPU)
            rcstatus_format_quantity(r->v[i], false, q, sizeof(q));
        else if (i == FLEET_RES_MEMORY && r->v[i] <= INT64_MAX / 1000 &&
                 r->v[i] >= INT64_MIN / 1000)
            rcstatus_format_quantity(r->v[i] * 1000, r->v[i] % 1024 == 0, q, sizeof(q));
        else
            (void)snprintf(q, sizeof(q), "%lld", (long long)r->v[i]);
        int w = snprintf(out + len, n - len, "%s%s=%s", len ? "," : "", s_names[i], q);
        if (w < 0 || (size_t)w >= n - len) {
            if (n >= 4)
                memcpy(out + n - 4, "...", 4);
            return strlen(out);
        }
        len += (size_t)w;
    }
    if (len == 0) {
        (void)snprintf(out, n, "0");
        len = strlen(out);
    }
    return len;
}

#ifdef RF_SELFTEST
#include "json.h"
#include "selftest.h"

int res_test(bool verbose)
{
    int failed = 0;
    buf_t err;
    buf_init(&err, 4096);
    fleet_res_t r = {{0}};
    json_t *l = json_loads("{\"cpu\":\"1500m\",\"memory\":\"2Gi\",\"nvidia.com/gpu\":1,"
                           "\"amd.com/gpu\":\"2\",\"example.com/foo\":\"3\",\"pods\":4}",
                           0, NULL);
    CHECK(fleet_res_add_list(&r, l, &err) == 0);
    CHECK(r.v[FLEET_RES_CPU] == 1500 && r.v[FLEET_RES_MEMORY] == 2147483648LL);
    CHECK(r.v[FLEET_RES_GPU] == 3 && r.v[FLEET_RES_PODS] == 4);
    CHECK(fleet_res_add_list(&r, l, &err) == 0 && r.v[FLEET_RES_CPU] == 3000);
    char s[128];
    fleet_res_format(&r, s, sizeof(s));
    CHECK(strcmp(s, "cpu=3,memory=4Gi,gpu=6,pods=8") == 0);
    json_decref(l);
    /* a fractional memory quantity rounds up to whole bytes; a bad one names the resource */
    fleet_res_t m = {{0}};
    l = json_loads("{\"memory\":\"1500m\"}", 0, NULL);
    CHECK(fleet_res_add_list(&m, l, &err) == 0 && m.v[FLEET_RES_MEMORY] == 2);
    json_decref(l);
    l = json_loads("{\"cpu\":\"lots\"}", 0, NULL);
    CHECK(fleet_res_add_list(&m, l, &err) == ERR_INVAL && strstr(buf_str(&err), "cpu"));
    json_decref(l);
    buf_reset(&err);
    /* quotas: gpu as a key, unknown keys refused by name */
    fleet_res_t q;
    l = json_loads("{\"cpu\":8,\"memory\":\"32Gi\",\"gpu\":2}", 0, NULL);
    CHECK(fleet_res_parse_quota(l, &q, &err) == 0 && q.v[FLEET_RES_CPU] == 8000 &&
          q.v[FLEET_RES_GPU] == 2);
    json_decref(l);
    l = json_loads("{\"cpus\":8}", 0, NULL);
    CHECK(fleet_res_parse_quota(l, &q, &err) == ERR_INVAL && strstr(buf_str(&err), "\"cpus\""));
    json_decref(l);
    /* arithmetic saturates; fits is per dimension; dominant share */
    fleet_res_t a = {{INT64_MAX - 1, 0, 0, 0}}, b = {{10, 0, 0, 0}};
    fleet_res_add(&a, &b);
    CHECK(a.v[0] == INT64_MAX);
    fleet_res_t need = {{1000, 1024, 1, 1}}, avail = {{2000, 1024, 0, 5}};
    CHECK(!fleet_res_fits(&need, &avail));
    avail.v[FLEET_RES_GPU] = 1;
    CHECK(fleet_res_fits(&need, &avail));
    fleet_res_sub(&avail, &need);
    CHECK(avail.v[0] == 1000 && avail.v[1] == 0 && avail.v[3] == 4);
    fleet_res_t use = {{4000, 1 << 30, 0, 0}}, tot = {{16000, 2LL << 30, 0, 0}};
    int w;
    CHECK(fleet_res_dominant_share(&use, &tot, &w) == 0.5 && w == FLEET_RES_MEMORY);
    use.v[FLEET_RES_GPU] = 1;
    CHECK(fleet_res_dominant_share(&use, &tot, &w) >= 1e9 && w == FLEET_RES_GPU);
    fleet_res_t z = {{0}};
    fleet_res_format(&z, s, sizeof(s));
    CHECK(strcmp(s, "0") == 0 && fleet_res_is_zero(&z));
    fleet_res_scale(&need, 3);
    CHECK(need.v[0] == 3000 && need.v[3] == 3);
    buf_free(&err);
    return SELFTEST_RESULT("res", verbose);
}
#endif /* RF_SELFTEST */
