/*
 * strfmt: the string `format`s kube-apiserver checks on custom resources (CRD schemas), as
 * apiextensions-apiserver's validation/formats.go keeps them and kube-openapi's
 * pkg/validation/strfmt validates them.
 *
 * kube-apiserver strips every format not in its supported list before it validates a custom
 * resource (StripUnsupportedFormatsPostProcess: the name with '-' removed must be one of
 * bsonobjectid uri email hostname ipv4 ipv6 cidr mac uuid uuid3 uuid4 uuid5 isbn isbn10 isbn13
 * creditcard ssn hexcolor rgbcolor byte password date duration datetime). So `int32`, `int64`,
 * `float`, `double` and every unknown format are IGNORED on custom resources: an integer field
 * with `format: int32` accepts 99999999999 on a real cluster (only the default int64 range is
 * checked, which JSON decoding already enforces here). kubesim does the same.
 *
 * Checked here: date-time (kube-openapi's IsDateTime: a valid full-date, 't' (any case), then
 * `^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$` with hour <= 23,
 * minute and second <= 59), date (Go's time.Parse "2006-01-02"), byte (standard base64 with
 * padding), uuid/uuid3/uuid4/uuid5 (strfmt's case-insensitive regexes, dashes optional),
 * ipv4, ipv6 (inet_pton; Go's net.ParseIP also accepts an IPv4 for ipv6, so do we), cidr, mac
 * (Go's net.ParseMAC: 6, 8 or 20 octets separated by ':' or '-', or dotted 4-hex groups),
 * bsonobjectid (24 hex digits), hexcolor, password (anything).
 * NOT checked (accepted): uri, email, hostname, isbn*, creditcard, ssn, rgbcolor, duration.
 *
 * The error is kube-openapi's InvalidType (typeFailWithData `%s in %s must be of type %s: %q`)
 * turned into a field error by apiextensions' ValidateCustomResource:
 *   spec.t: Invalid value: "x": spec.t in body must be of type date-time: "x"   (FieldValueInvalid)
 * with the format written as in the schema.
 */
#ifndef RF_STRFMT_H
#define RF_STRFMT_H

#include <stdbool.h>

/* True when `s` is valid for `format` or the format is not one kube checks (see above). */
bool strfmt_valid(const char *format, const char *s);

/* True when kube-apiserver keeps `format` on a CRD schema (its supported list). */
bool strfmt_supported(const char *format);

#endif
