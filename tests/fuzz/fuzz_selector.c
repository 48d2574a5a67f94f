/*
 * fuzz_selector: libFuzzer harness for the label and field selector parsers (common/selector.c;
 * the labelSelector= and fieldSelector= query parameters, and the LabelSelector objects of
 * specs). The input is parsed as a label selector, as a field selector over a fixed field list,
 * and (when it is JSON) as a metav1.LabelSelector and as a matchLabels map. Properties: a parsed
 * selector prints (selector_to_string) to text that parses again to a selector printing the same
 * and matching the same fixed labels / object; the validators and matchers never crash. Built by
 * -DRF_FUZZ=ON (scripts/fuzz.sh).
 */
#include "buf.h"
#include "err.h"
#include "selector.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const FIELDS[] = {"metadata.name", "metadata.namespace", "status.phase",
                                     "spec.nodeName"};

static json_t *s_labels, *s_obj;

static void s_check(selector_t *s, bool fields)
{
    buf_t text, again;
    buf_init(&text, 1u << 20);
    buf_init(&again, 1u << 20);
    if (selector_to_string(s, &text) != 0)
        abort();
    selector_t *back = NULL;
    int rc = fields ? selector_parse_fields(buf_str(&text), FIELDS, 4, &back, NULL)
                    : selector_parse_labels(buf_str(&text), &back, NULL);
    if (rc != 0 || selector_to_string(back, &again) != 0 || strcmp(buf_str(&text), buf_str(&again)))
        abort(); // the printed selector does not parse back to itself
    if (fields ? selector_matches_fields(s, s_obj) != selector_matches_fields(back, s_obj)
               : selector_matches_labels(s, s_labels) != selector_matches_labels(back, s_labels))
        abort();
    if (selector_is_empty(s) != selector_is_empty(back))
        abort();
    (void)selector_exact_value(s, fields ? "metadata.name" : "app");
    selector_destroy(&back);
    buf_free(&text);
    buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_labels) {
        s_labels = json_pack("{s:s, s:s, s:s, s:s}", "app", "ray", "ray.io/node-type", "worker",
                             "tier", "", "x.y/z", "a-b_c.d");
        s_obj =
            json_pack("{s:{s:s, s:s}, s:{s:s}, s:{s:s}}", "metadata", "name", "p-1", "namespace",
                      "default", "status", "phase", "Running", "spec", "nodeName", "n1");
        if (!s_labels || !s_obj)
            abort();
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    selector_t *s = NULL;
    if (selector_parse_labels(text, &s, NULL) == 0) {
        s_check(s, false);
        selector_destroy(&s);
    }
    if (selector_parse_fields(text, FIELDS, 4, &s, NULL) == 0) {
        s_check(s, true);
        selector_destroy(&s);
    }
    // A metav1.LabelSelector or a matchLabels map (JSON input) prints to a label selector text
    // that parses back to the same matcher.
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_null(j) && selector_from_label_selector(j, &s, NULL) == 0) {
        s_check(s, false);
        selector_destroy(&s);
    }
    if (j && selector_labels_from_map(j, &s, NULL) == 0) {
        s_check(s, false);
        selector_destroy(&s);
    }
    json_decref(j);
    (void)selector_validate_label_key(text, NULL);
    (void)selector_validate_label_value(text, NULL);
    free(text);
    return 0;
}
