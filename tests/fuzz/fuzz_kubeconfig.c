/*
 * fuzz_kubeconfig: libFuzzer harness for the kubeconfig loader (common/kubeconfig.c): the input
 * is loaded as a kubeconfig file (kubeconfig_load_buf, relative paths against a directory that
 * does not exist), as an ExecCredential (kubeconfig_cred_parse) and as base64
 * (kubeconfig_base64_decode). Properties: a loaded kubeconfig has a server; an error leaves
 * nothing behind and says why in one line naming the file; decoded base64 is NUL-terminated and
 * no longer than 3/4 of the input; a parsed credential has a token or a certificate. Built by
 * -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "buf.h"
#include "err.h"
#include "kubeconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    buf_t err;
    buf_init(&err, 1u << 16);
    kubeconfig_t *kc = NULL;
    int rc = kubeconfig_load_buf(text, size, "/nonexistent-fuzz/config", NULL, &kc, &err);
    if (rc == 0) {
        if (!kc || !kc->server || !kc->server[0])
            abort();
        http_tls_t tls;
        kubeconfig_tls(kc, &tls);
        kubeconfig_destroy(&kc);
    } else if (kc || err.len == 0 || !strstr(buf_str(&err), "/nonexistent-fuzz/config")) {
        abort(); // an error must leave nothing and name the file
    }
    buf_reset(&err);
    kubeconfig_cred_t cred;
    if (kubeconfig_cred_parse(text, size, &cred, &err) == 0) {
        if (!cred.token && !cred.cert_data)
            abort();
        kubeconfig_cred_free(&cred);
    }
    char *nul = malloc(size + 1);
    if (nul) {
        memcpy(nul, data, size);
        nul[size] = '\0';
        unsigned char *out = NULL;
        size_t n = 0;
        if (kubeconfig_base64_decode(nul, &out, &n) == 0) {
            if (!out || out[n] != '\0' || n > (strlen(nul) / 4 + 1) * 3)
                abort();
            free(out);
        }
        free(nul);
    }
    buf_free(&err);
    return 0;
}
