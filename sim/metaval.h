/*
 * metaval: object metadata validation as kube-apiserver 1.32 does it (apimachinery's
 * ValidateObjectMeta / ValidateObjectMetaUpdate and the util/validation predicates), for every
 * kind kubesim serves, built-in and custom.
 *
 * Rules (k8s.io/apimachinery/pkg/util/validation, .../api/validation/objectmeta.go,
 * .../apis/meta/v1/validation; messages byte for byte, values quoted as Go's %q):
 * - metadata.name (create only; updates cannot change it): per kind, as the kind's registry
 *   strategy picks its ValidateNameFunc: Namespace: IsDNS1123Label; Service: IsDNS1035Label
 *   (must start with a letter); rbac.authorization.k8s.io kinds: path segment names (`may not be
 *   '.'`, `may not contain '/'`); every other kind, custom resources included: IsDNS1123Subdomain.
 *   Each failed predicate is one cause `metadata.name: Invalid value: "<name>": <msg>`, so a name
 *   both too long and malformed gives two, as kube does.
 * - metadata.generateName (create only): the same function with prefix=true (maskTrailingDash:
 *   a trailing '-' is masked, kube's exact quirk `name[:len-2]+"a"`).
 * - metadata.labels: keys IsQualifiedName (optional DNS-1123 subdomain prefix + '/' + name of
 *   at most 63 matching `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`), values IsValidLabelValue
 *   (at most 63, empty or the same pattern); field `metadata.labels`.
 * - metadata.annotations: keys IsQualifiedName of the lower-cased key (the value shown is the
 *   key as sent), total size of keys and values at most 262144 bytes
 *   (`metadata.annotations: Too long: may not be more than 262144 bytes`, FieldValueTooLong).
 * - metadata.finalizers: IsQualifiedName each, field `metadata.finalizers`; `orphan` and
 *   `foregroundDeletion` together refused; for built-in kinds (`builtin`: pkg/apis/core
 *   validation's wrapper) a name without '/' must be a standard one (`kubernetes`, `orphan`,
 *   `foregroundDeletion`), field `metadata.finalizers[<i>]`.
 * - ConfigMap data/binaryData and Secret data/stringData keys: IsConfigMapKey, field
 *   `data[<key>]` (`binaryData[<key>]`).
 * Causes are schema.h's {"reason","field","message"} form, in kube's order (generateName, name,
 * labels, annotations, finalizers, then the data keys); map keys are taken in sorted order (kube
 * walks Go maps, whose order is random, so only the set of causes is comparable when several
 * keys fail).
 *
 * Not done (documented): ownerReferences, managedFields, and the name kube generates from
 * generateName before validating (objstore checks the generated name itself).
 */
#ifndef RF_METAVAL_H
#define RF_METAVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define METAVAL_DNS1123_LABEL_MAX 63
#define METAVAL_DNS1123_SUBDOMAIN_MAX 253
#define METAVAL_QNAME_MAX 63 /* name part of a qualified name, and a label value */
#define METAVAL_ANNOTATIONS_MAX 262144 /* TotalAnnotationSizeLimitB */

/* apimachinery's RegexError texts for the DNS-1123 names (shared with objstore's name check). */
#define METAVAL_MSG_SUBDOMAIN                                                                      \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "  \
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define METAVAL_MSG_LABEL                                                                          \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "   \
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "     \
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

/* The pattern part of IsDNS1123Label (n bytes of p, length not checked beyond n > 0). */
bool metaval_dns1123_label(const char *p, size_t n);

/* The pattern part of IsDNS1123Subdomain (length not checked beyond > 0). */
bool metaval_dns1123_subdomain(const char *p, size_t n);

/* Validates the metadata of `obj` (a kind served under group/resource; group "" = core;
 * `builtin`: not a custom resource) as kube-apiserver does on a create (`create`: name and
 * generateName checked too) or an update,
 * appending one cause per error to the JSON array `causes`. Returns the number of causes added,
 * or ERR_NOMEM. A non-object metadata or non-string values are left to other checks. */
int metaval_check(const char *group, const char *resource, const json_t *obj, bool create,
                  bool builtin, json_t *causes);

/* Self-test. */
int metaval_test(bool verbose);

#endif
