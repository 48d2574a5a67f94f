/*
 * fuzz_http: libFuzzer harness for the HTTP response header parsing of common/http.c: the input
 * is a response head as libcurl hands it over, one line at a time (split after each '\n').
 * Properties: every header span lies inside its line, its name is not empty and holds no colon,
 * its value has no surrounding blanks; a status line starts a new header block (as s_curl_header
 * does); http_header_get() finds the first header of a name case-insensitively; and
 * http_retry_after_ms() is -1 or a whole number of seconds. Built by -DRF_FUZZ=ON
 * (scripts/fuzz.sh).
 */
#include "err.h"
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HDRS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char store[MAX_HDRS][2][256];
    http_header_t hdrs[MAX_HDRS];
    size_t n_hdrs = 0;
    const char *p = (const char *)data;
    const char *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        // An exact-size copy, so that ASan catches a read past the line.
        char *line = malloc(n ? n : 1);
        if (!line)
            return 0;
        memcpy(line, p, n);
        http_header_span_t h;
        int kind = http_header_line(line, n, &h);
        if (kind == HTTP_LINE_STATUS) {
            n_hdrs = 0;
        } else if (kind == HTTP_LINE_HEADER) {
            if (h.name_len == 0 || h.name_len >= n || memchr(line, ':', h.name_len) ||
                h.value_off > n || h.value_len > n - h.value_off)
                abort();
            const char *v = line + h.value_off;
            if (h.value_len && (v[0] == ' ' || v[0] == '\t' || v[h.value_len - 1] == ' ' ||
                                v[h.value_len - 1] == '\t' || memchr(v, '\n', h.value_len)))
                abort();
            if (n_hdrs < MAX_HDRS && h.name_len < 256 && h.value_len < 256) {
                memcpy(store[n_hdrs][0], line, h.name_len);
                store[n_hdrs][0][h.name_len] = '\0';
                memcpy(store[n_hdrs][1], v, h.value_len);
                store[n_hdrs][1][h.value_len] = '\0';
                hdrs[n_hdrs] = (http_header_t){store[n_hdrs][0], store[n_hdrs][1]};
                n_hdrs++;
            }
        } else if (kind != HTTP_LINE_IGNORED && kind != ERR_PROTO) {
            abort();
        } else if (kind == ERR_PROTO && !memchr(line, '\0', n)) {
            abort();
        }
        free(line);
        p += n;
    }
    http_response_t resp = {.status = 200, .headers = hdrs, .n_headers = n_hdrs};
    for (size_t i = 0; i < n_hdrs; i++) {
        const char *got = http_header_get(&resp, hdrs[i].name);
        size_t first = 0;
        while (strcasecmp(hdrs[first].name, hdrs[i].name) != 0)
            first++;
        if (got != hdrs[first].value)
            abort();
    }
    int64_t ms = http_retry_after_ms(&resp);
    if (ms < -1 || (ms >= 0 && ms % 1000 != 0))
        abort();
    return 0;
}
