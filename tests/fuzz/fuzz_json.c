/*
 * fuzz_json: libFuzzer harness for jx_parse() (common/json.c). Each input is parsed; when it
 * parses, its canonical dump must parse back to an equal tree with the same hash. jansson itself
 * is not instrumented (Debian's build): coverage is of the wrapper; fuzz_jproj checks the parser's
 * verdicts against jproj's. Built by -DRF_FUZZ=ON (scripts/fuzz.sh, make fuzz-smoke).
 */
#include "buf.h"
#include "json.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t err, canon;
    buf_init(&err, 4096);
    buf_init(&canon, 64u * 1024 * 1024);
    json_t *j = NULL;
    if (jx_parse((const char *)data, size, "fuzz", &j, &err) == 0 &&
        jx_dump_canonical(j, &canon) == 0) {
        json_t *back = NULL;
        uint64_t h1 = 0, h2 = 0;
        if (jx_parse(buf_str(&canon), canon.len, "canon", &back, &err) != 0 ||
            !json_equal(back, j) || jx_hash(j, &h1) != 0 || jx_hash(back, &h2) != 0 || h1 != h2)
            abort();
        json_decref(back);
    }
    json_decref(j);
    buf_free(&err);
    buf_free(&canon);
    return 0;
}
