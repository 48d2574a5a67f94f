/*
 * fuzz_jproj: differential libFuzzer harness for jproj_parse() (common/jproj.c) against
 * jx_parse() (common/json.c), as jproj.h promises: "A value is accepted exactly when jx_parse()
 * accepts it". The input is parsed by both from a block of exactly its size; they must agree on
 * acceptance and, for a full parse, on the value (json_equal). A second projection (kept paths
 * "metadata.name" and "items.metadata", spans of "items", as the reflector uses it) must also
 * agree on acceptance, and each reported span must lie inside the text and parse (jx_parse) to
 * the element of "items" it stands for. Built by -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "err.h"
#include "jproj.h"
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jproj_t *full, *proj;
    if (!full) {
        static const char *const keep[] = {"metadata.name", "items.metadata", NULL};
        full = jproj_new(NULL, NULL);
        proj = jproj_new(keep, "items");
        if (!full || !proj)
            abort();
    }
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    json_t *want = NULL;
    int jx = jx_parse(text, size, "fuzz", &want, NULL);
    jproj_result_t res;
    int rc = jproj_parse(full, text, size, "fuzz", &res, NULL);
    if ((rc == 0) != (jx == 0) || (rc != 0 && rc != ERR_PARSE && rc != ERR_NOMEM))
        abort(); // jproj and jx_parse disagree on whether the text is JSON
    if (rc == 0 && !json_equal(res.value, want))
        abort();
    jproj_result_free(&res);
    rc = jproj_parse(proj, text, size, "fuzz", &res, NULL);
    if ((rc == 0) != (jx == 0))
        abort();
    if (rc == 0 && res.span_found) {
        const json_t *items = json_object_get(want, "items");
        if (!items)
            abort();
        for (size_t i = 0; i < res.n_spans; i++) {
            const jproj_span_t *s = &res.spans[i];
            json_t *el = NULL;
            if (s->off > size || s->len > size - s->off ||
                jx_parse(text + s->off, s->len, "span", &el, NULL) != 0)
                abort();
            const json_t *expect = json_is_array(items) ? json_array_get(items, i) : items;
            if (!json_equal(el, expect))
                abort();
            json_decref(el);
        }
        if (json_is_array(items) ? res.n_spans != json_array_size(items) : res.n_spans != 1)
            abort();
    }
    jproj_result_free(&res);
    json_decref(want);
    free(text);
    return 0;
}
