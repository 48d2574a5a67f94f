/*
 * fuzz_yaml: libFuzzer harness for the YAML loader and dumper (common/yaml.c). Each input is
 * loaded; when it loads, every document is dumped and loaded again and must give an equal tree
 * (the round-trip promise of yaml.h). Built by -DRF_FUZZ=ON (scripts/fuzz.sh, make fuzz-smoke).
 */
#include "buf.h"
#include "yaml.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t err;
    buf_init(&err, 4096);
    json_t *docs = NULL;
    if (yaml_load_buf((const char *)data, size, "fuzz", &docs, &err) == 0) {
        size_t i;
        json_t *d;
        json_array_foreach(docs, i, d)
        {
            buf_t out;
            buf_init(&out, 64u * 1024 * 1024);
            json_t *again = NULL;
            if (yaml_dump(d, &out) == 0 &&
                yaml_load_buf(buf_str(&out), out.len, "dump", &again, &err) == 0 &&
                !json_equal(json_array_get(again, 0), d))
                abort();
            json_decref(again);
            buf_free(&out);
        }
    }
    json_decref(docs);
    buf_free(&err);
    return 0;
}
