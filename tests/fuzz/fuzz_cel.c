/*
 * fuzz_cel: libFuzzer harness for kubesim's CEL subset (sim/cel.c, CRD x-kubernetes-validations
 * rules, written by users): the input is compiled and, when it compiles, evaluated against a
 * small fixed object as self, with and without oldSelf, and as an optional oldSelf. Properties:
 * compile and eval return only their documented codes; an error always has a message; the cost
 * stays within a bounded overshoot of the limit; a result string or list stays within
 * CEL_MAX_VALUE; evaluating twice gives the same answer. Built by -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "buf.h"
#include "cel.h"
#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 100000

static int s_field(const char *const *names, const size_t *pos, size_t n, void *arg)
{
    const char *src = arg;
    for (size_t i = 0; i < n; i++)
        if (!names[i] || pos[i] >= strlen(src))
            abort();
    return 0;
}

static void s_eval(const cel_prog_t *p, const json_t *self, const json_t *old, bool optional)
{
    int rc[2];
    json_t *res[2] = {NULL, NULL};
    for (int round = 0; round < 2; round++) {
        buf_t err;
        buf_init(&err, 1u << 16);
        cel_env_t env = {
            .self = self, .old_self = old, .optional_old_self = optional, .limit = LIMIT};
        rc[round] = cel_eval(p, &env, &res[round], &err);
        if (rc[round] != 0 && rc[round] != ERR_INVAL && rc[round] != ERR_RANGE &&
            rc[round] != ERR_NOMEM)
            abort();
        if ((rc[round] == 0) != (res[round] != NULL) || (rc[round] != 0 && err.len == 0))
            abort();
        // Every step is bounded, so a run ends soon after the limit is passed.
        if (env.cost < 0 || env.cost > LIMIT + 2 * (int64_t)CEL_MAX_VALUE + 1000)
            abort();
        if (json_is_string(res[round]) && json_string_length(res[round]) > CEL_MAX_VALUE)
            abort();
        if (json_is_array(res[round]) && json_array_size(res[round]) > CEL_MAX_VALUE)
            abort();
        buf_free(&err);
    }
    if (rc[0] != rc[1] || (rc[0] == 0 && !json_equal(res[0], res[1])))
        abort(); // an evaluation is deterministic
    json_decref(res[0]);
    json_decref(res[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *self, *old;
    if (!self) {
        self = json_loads("{\"replicas\":3,\"minReplicas\":1,\"maxReplicas\":10,\"name\":\"head\","
                          "\"ratio\":0.5,\"enabled\":true,\"tags\":[\"a\",\"b\",\"c\"],"
                          "\"groups\":[{\"name\":\"g\",\"replicas\":2}],\"labels\":{\"app\":"
                          "\"ray\"},\"nothing\":null}",
                          0, NULL);
        old = json_loads("{\"replicas\":2,\"name\":\"head\",\"tags\":[]}", 0, NULL);
        if (!self || !old)
            abort();
    }
    char *src = malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = '\0';
    buf_t err;
    buf_init(&err, 1u << 16);
    cel_prog_t *p = NULL;
    int rc = cel_compile(src, &p, &err);
    if (rc != 0 && rc != ERR_INVAL && rc != ERR_TOOBIG && rc != ERR_NOMEM)
        abort();
    if ((rc == 0) != (p != NULL) || (rc != 0 && err.len == 0))
        abort();
    if (p) {
        (void)cel_uses_old_self(p);
        (void)cel_fields(p, s_field, src);
        s_eval(p, self, NULL, false);
        s_eval(p, self, old, false);
        s_eval(p, self, NULL, true);
        s_eval(p, self, old, true);
        cel_free(p);
    }
    buf_free(&err);
    free(src);
    return 0;
}
