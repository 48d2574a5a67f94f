/*
 * fuzz_patch: libFuzzer harness for the PATCH flavours of common/patch.c. The input is JSON: an
 * array [target, patch] (anything else is used as the patch of a fixed Pod-like target). Every
 * flavour runs (merge, JSON patch, strategic for Pod and Deployment, apply). Properties: inputs
 * are never modified; an RFC 7386 merge is idempotent (merging the patch again into the result
 * changes nothing); a strategic or apply result never holds a "$" directive key; a successful
 * JSON patch that consists only of "test" operations returns the target unchanged. Built by
 * -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "buf.h"
#include "err.h"
#include "json.h"
#include "patch.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when some object key in v (at any depth) starts with '$'. */
static bool s_has_directive(const json_t *v, int depth)
{
    if (depth > PATCH_MAX_DEPTH + 10)
        return false;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            if (k[0] == '$' || s_has_directive(c, depth + 1))
                return true;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            if (s_has_directive(c, depth + 1))
                return true;
        }
    }
    return false;
}

static bool s_only_tests(const json_t *ops)
{
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        if (!json_is_string(json_object_get(op, "op")) ||
            strcmp(json_string_value(json_object_get(op, "op")), "test") != 0)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *pod;
    if (!pod) {
        pod =
            json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
                       "\"labels\":{\"a\":\"1\"},\"finalizers\":[\"x\"],\"ownerReferences\":"
                       "[{\"uid\":\"u1\",\"name\":\"o\"}]},\"spec\":{\"containers\":[{\"name\":"
                       "\"c\",\"image\":\"i\",\"env\":[{\"name\":\"E\",\"value\":\"v\"}],"
                       "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}]}],\"volumes\":"
                       "[{\"name\":\"v\",\"emptyDir\":{}}]},\"status\":{\"conditions\":[{\"type\":"
                       "\"Ready\",\"status\":\"True\"}]}}",
                       0, NULL);
        if (!pod)
            abort();
    }
    json_t *in = NULL;
    if (jx_parse((const char *)data, size, "fuzz", &in, NULL) != 0)
        return 0;
    const json_t *target = pod, *patch = in;
    if (json_is_array(in) && json_array_size(in) == 2) {
        target = json_array_get(in, 0);
        patch = json_array_get(in, 1);
    }
    json_t *target_copy = json_deep_copy(target), *patch_copy = json_deep_copy(patch);
    if (!target_copy || !patch_copy)
        abort();

    json_t *m = patch_merge(target, patch);
    if (m) {
        json_t *m2 = patch_merge(m, patch);
        if (!m2 || !json_equal(m, m2))
            abort(); // RFC 7386: merging the same patch twice changes nothing more
        json_decref(m2);
    }
    json_decref(m);

    buf_t err;
    buf_init(&err, 1u << 16);
    json_t *out = NULL;
    int rc = patch_json(target, patch, &out, &err);
    if ((rc == 0) != (out != NULL))
        abort();
    if (rc == 0 && json_is_array(patch) && s_only_tests(patch) && !json_equal(out, target))
        abort();
    json_decref(out);
    static const char *const kinds[] = {"Pod", "Deployment", NULL};
    for (size_t k = 0; kinds[k]; k++) {
        buf_reset(&err);
        out = NULL;
        rc = patch_strategic(target, patch, kinds[k], &out, &err);
        if ((rc == 0) != (out != NULL) ||
            (out && s_has_directive(out, 0) && !s_has_directive(target, 0)))
            abort();
        json_decref(out);
        buf_reset(&err);
        out = NULL;
        rc = patch_apply_approx(target, patch, kinds[k], &out, &err);
        if ((rc == 0) != (out != NULL))
            abort();
        json_decref(out);
    }
    if (!json_equal(target, target_copy) || !json_equal(patch, patch_copy))
        abort(); // a patch function modified its input
    json_decref(target_copy);
    json_decref(patch_copy);
    buf_free(&err);
    json_decref(in);
    return 0;
}
