/*
 * pbjson: the Kubernetes protobuf encoding (application/vnd.kubernetes.protobuf) of every
 * built-in kind kubesim serves (CustomResourceDefinitions included), transcoded to and from the
 * JSON objects kubesim stores. Driven by the protoc-c descriptors of our schemas
 * (sim/proto/k8s/NAME.proto, written by scripts/k8sproto.py from Kubernetes 1.32's published field
 * numbers); the wire bytes are walked directly, never unpacked to C structs.
 *
 * JSON from the wire, field by field (names are the JSON names):
 *   - string, int32/int64, bool, double as JSON values; bytes as base64 (Secret.data);
 *   - map<string, V> as an object; repeated as an array (packed numbers accepted);
 *   - a field named inline_NAME (a Go `json:",inline"` struct: Volume's volumeSource, Probe's
 *     handler, EphemeralContainer's common part, ...) has its members merged into the parent
 *     object; a message whose only field is `repeated ... inline_items` (meta Verbs,
 *     authentication ExtraValue) is that JSON array;
 *   - a scalar with an explicit `[default = ZERO]` keeps its zero value when the wire has it (Go
 *     pointers such as Deployment spec.replicas, and JSON fields without omitempty); any other
 *     zero scalar, empty string or empty bytes decodes as absent (omitempty);
 *   - _HH (two lower-case hex digits) in a field name is the byte 0xHH of a JSON name that is no
 *     identifier: apiextensions JSONSchemaProps `_24ref` is "$ref", `x_2dkubernetes_2dlist_2dtype`
 *     is "x-kubernetes-list-type" (inline_ fields excepted);
 *   - a double with an integral value decodes as a JSON integer, as Go writes it ("maximum": 5);
 *   - the special messages by name: meta Time (RFC 3339 seconds, "" on the wire = absent),
 *     MicroTime (six fractional digits), Duration (Go duration string), resource Quantity (its
 *     string), intstr IntOrString (a number or a string), runtime RawExtension (embedded JSON, or
 *     an embedded "k8s\0" object), meta FieldsV1 and apiextensions JSON (raw JSON: a schema's
 *     default, enum values, example); the apiextensions either messages JSONSchemaPropsOrBool,
 *     -OrArray and -OrStringArray are one of their fields, as Go's MarshalJSON picks it (a
 *     non-empty repeated field, else the message field, else the scalar, OrBool's false when
 *     unset) and by JSON type on encode (array, object, scalar; an object also sets OrBool's
 *     allows, as Go's UnmarshalJSON does).
 * Encoding writes what the JSON has, fields in number order, map keys sorted; members the schema
 * does not know are left out (as a typed Go object would).
 *
 * Errors name the message (full protobuf name) and the field: an unknown field number is an
 * error ("proto: k8s.io.api.core.v1.Pod: unknown field number 99"), never skipped.
 *
 * The object envelope: "k8s\0" + runtime.Unknown{typeMeta{apiVersion, kind}, raw = the object's
 * message}. Watch streams (application/vnd.kubernetes.protobuf;stream=watch): each frame is a
 * 4-byte big-endian length then a meta.v1.WatchEvent{type, object: RawExtension{raw = the object
 * in the envelope}} (k8s.io/apimachinery's protobuf RawSerializer + LengthDelimitedFramer for the
 * event, its prefixed Serializer for the embedded object).
 */
#ifndef RF_PBJSON_H
#define RF_PBJSON_H

#include "buf.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define PBJSON_MAX_DEPTH 40 /* message nesting bound (a Pod nests about 12 deep) */
#define PBJSON_ERR_MAX 512 /* bound of an error message buffer */
#define PBJSON_MEDIA "application/vnd.kubernetes.protobuf"
#define PBJSON_MEDIA_WATCH "application/vnd.kubernetes.protobuf;stream=watch"

/* The message named `full_name` ("k8s.io.api.apps.v1.Deployment"), or NULL. */
const ProtobufCMessageDescriptor *pbjson_message(const char *full_name);

/* The message of a kind ("apps/v1", "Deployment"; "v1", "Status" is meta's), or NULL. */
const ProtobufCMessageDescriptor *pbjson_kind(const char *api_version, const char *kind);

/* Decodes the wire bytes data[len] of message d into *out (a new JSON value). Returns 0, or
 * ERR_PARSE with the reason in err (malformed, unknown field, depth), ERR_NOMEM. */
int pbjson_decode(const ProtobufCMessageDescriptor *d, const void *data, size_t len, json_t **out,
                  buf_t *err);

/* Appends the wire bytes of JSON value v as message d to out. Returns 0, ERR_INVAL (v does not
 * fit the schema; named in err), ERR_TOOBIG (out's bound) or ERR_NOMEM. */
int pbjson_encode(const ProtobufCMessageDescriptor *d, const json_t *v, buf_t *out, buf_t *err);

/* Decodes an object in the envelope into *out (apiVersion and kind set from typeMeta). Returns 0,
 * ERR_NOTFOUND when the kind has no schema here (kind_out, up to n bytes, names it "apiVersion,
 * Kind=..."; err says so too), or ERR_PARSE (err: the reason). */
int pbjson_decode_object(const void *data, size_t len, json_t **out, buf_t *err);

/* Reads only the envelope's typeMeta into av[avn] and kind[kn]. Returns 0 or ERR_PARSE. */
int pbjson_peek_kind(const void *data, size_t len, char *av, size_t avn, char *kind, size_t kn);

/* Appends object obj (its apiVersion and kind choose the message) in the envelope to out.
 * Returns 0, ERR_NOTFOUND (no schema for its kind), ERR_INVAL, ERR_TOOBIG or ERR_NOMEM. */
int pbjson_encode_object(const json_t *obj, buf_t *out, buf_t *err);

/* Appends one watch frame (length + WatchEvent) of event `type` about object obj to out. */
int pbjson_encode_watch_frame(const char *type, const json_t *obj, buf_t *out, buf_t *err);

/* Decodes one WatchEvent (a frame without its length) into its type (*type_out, up to n bytes)
 * and object (*obj, decoded from the envelope). Returns 0 or an error as pbjson_decode_object. */
int pbjson_decode_watch_event(const void *data, size_t len, char *type_out, size_t n, json_t **obj,
                              buf_t *err);

/* Content negotiation on an Accept header as kube-apiserver does it (clauses by q, then by
 * specificity, then in order; a clause with parameters such as as=Table is not plain protobuf):
 * PBJSON_WANT_PROTO when the best clause the server can answer is protobuf (only offered when
 * proto_ok: built-in kinds and CRDs, not custom resources or Tables), PBJSON_WANT_JSON otherwise,
 * and PBJSON_WANT_NONE when the header asks for protobuf, proto_ok is false and nothing else it
 * names is acceptable (the 406 case). */
enum { PBJSON_WANT_NONE = -1, PBJSON_WANT_JSON = 0, PBJSON_WANT_PROTO = 1 };
int pbjson_negotiate(const char *accept, bool proto_ok);

/* Self-test. */
int pbjson_test(bool verbose);

#endif
