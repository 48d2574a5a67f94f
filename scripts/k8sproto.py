#!/usr/bin/env python3
"""k8sproto: writes kubesim's Kubernetes protobuf schemas (sim/proto/k8s/*.proto) from the
published wire format of the Kubernetes API at one version, or checks the committed ones.

The facts are read from the Go module cache (k8s.io/api and k8s.io/apimachinery at --version,
fetched with `go mod download`): each package's generated.proto gives the messages, field
numbers and types; its Go types give what JSON needs and protobuf does not say. Nothing else is
taken: the files written hold messages and fields only, no comments and no options.

Field names are the JSON names (upstream names a few otherwise, e.g. BoundObjectReference
uID for JSON uid). Three conventions of ours (sim/pbjson.h reads them):
  - _HH (two lower-case hex digits) in a field name stands for the byte 0xHH of a JSON name that
    is no identifier: apiextensions JSONSchemaProps `$ref` is _24ref, `x-kubernetes-list-type`
    is x_2dkubernetes_2dlist_2dtype.
  - inline_NAME: a Go embedded struct with `json:",inline"` (Volume.volumeSource,
    Probe.handler, ...): its JSON members are merged into the parent object. A named-slice
    wrapper (meta Verbs, authentication ExtraValue) has its one field renamed `inline_items`:
    the message's JSON is that array.
  - [default = ZERO] on a scalar: keep the zero value when it is on the wire (a Go pointer
    scalar such as Deployment spec.replicas, or a field whose JSON tag has no omitempty);
    without it a zero scalar or empty string decodes as absent (JSON omitempty).

usage: k8sproto.py [--check] [--version v0.32.0] [--out sim/proto/k8s] [FILE.proto ...]
"""
import argparse
import os
import re
import subprocess
import sys

# our file -> (module, package dir, proto package)
FILES = {
    "meta.proto": ("apimachinery", "pkg/apis/meta/v1"),
    "runtime.proto": ("apimachinery", "pkg/runtime"),
    "resource.proto": ("apimachinery", "pkg/api/resource"),
    "intstr.proto": ("apimachinery", "pkg/util/intstr"),
    "core_v1.proto": ("api", "core/v1"),
    "apps_v1.proto": ("api", "apps/v1"),
    "batch_v1.proto": ("api", "batch/v1"),
    "rbac_v1.proto": ("api", "rbac/v1"),
    "networking_v1.proto": ("api", "networking/v1"),
    "discovery_v1.proto": ("api", "discovery/v1"),
    "coordination_v1.proto": ("api", "coordination/v1"),
    "events_v1.proto": ("api", "events/v1"),
    "storage_v1.proto": ("api", "storage/v1"),
    "authentication_v1.proto": ("api", "authentication/v1"),
    "autoscaling_v1.proto": ("api", "autoscaling/v1"),
    "apiextensions_v1.proto": ("apiextensions-apiserver", "pkg/apis/apiextensions/v1"),
}
# Files written by others (pbcore writes core_v1.proto): checked, never written.
NOT_WRITTEN = {"core_v1.proto"}

SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float",
           "sint32", "sint64", "fixed32", "fixed64"}
ZERO = {"string": '""', "bool": "false", "double": "0", "float": "0"}


def import_name(path):
    """upstream import path -> our file name, or None when it brings no message."""
    if path.endswith("runtime/schema/generated.proto"):
        return None
    for ours, (mod, d) in FILES.items():
        if path == "k8s.io/%s/%s/generated.proto" % (mod, d):
            return ours
    raise SystemExit("k8sproto: import %s has no file of ours; add it to FILES" % path)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def go_fields(pkgdir):
    """{struct: {field number: (go type, json tag)}} from every Go file of the package."""
    out = {}
    for fn in sorted(os.listdir(pkgdir)):
        if not fn.endswith(".go") or fn.endswith("_test.go") or fn.startswith("zz_"):
            continue
        if fn.startswith("generated"):
            continue
        src = open(os.path.join(pkgdir, fn), encoding="utf-8").read()
        for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", src, flags=re.S | re.M):
            fields = {}
            for line in m.group(2).splitlines():
                line = line.strip()
                t = re.match(r"^(?:(\w+)\s+)?(\S+)\s+`(.*)`$", line)
                if not t:
                    continue
                tag = t.group(3)
                pb = re.search(r'protobuf:"(\w+),(\d+),', tag)
                if not pb:
                    continue
                js = re.search(r'json:"([^"]*)"', tag)
                fields[int(pb.group(2))] = (t.group(2), js.group(1) if js else "")
            out[m.group(1)] = fields
    return out


def escape(jname):
    """A JSON name as a proto field name: a byte that is no identifier's (or a "_") as _HH."""
    out = "".join(c if re.match(r"[A-Za-z0-9]", c) else "_%02x" % ord(c) for c in jname)
    if not re.match(r"^[A-Za-z_]\w*$", out) or not jname.isascii():
        raise SystemExit("k8sproto: JSON name %s has no proto name" % jname)
    return out


def convert(src, gofields, pkgs):
    text = strip_comments(src)
    pkg = re.search(r"^package ([\w.]+);", text, flags=re.M).group(1)
    imports = []
    for imp in re.findall(r'^import "([^"]+)";', text, flags=re.M):
        name = import_name(imp)
        if name and ("." + pkgs[name] + ".") in text:
            imports.append(name)
    lines = ['// Kubernetes API wire format (%s), as kubesim speaks it: messages and' % pkg,
             "// fields only. Written by scripts/k8sproto.py; conventions in sim/pbjson.h.",
             'syntax = "proto2";', "", "package %s;" % pkg, ""]
    for name in imports:
        lines.append('import "k8s/%s";' % name)
    if imports:
        lines.append("")
    for m in re.finditer(r"^message (\w+) \{(.*?)^\}", text, flags=re.S | re.M):
        msg, body = m.group(1), m.group(2)
        fields = []
        for f in re.finditer(r"^\s*(optional|repeated|required)?\s*(map<[^>]+>|[\w.]+)\s+(\w+)"
                             r"\s*=\s*(\d+)\s*;", body, flags=re.M):
            label, typ, fname_, num = f.group(1), f.group(2), f.group(3), int(f.group(4))
            fields.append([label or "", typ, fname_, num, ""])
        gf = gofields.get(msg, {})
        wrapper = (len(fields) == 1 and fields[0][0] == "repeated" and fields[0][2] == "items"
                   and not gf)
        for f in fields:
            label, typ, name, num, _ = f
            if label == "required":
                f[0] = label = "optional"
            if wrapper:
                f[2] = "inline_items"
                continue
            gotype, js = gf.get(num, ("", ""))
            jname = js.split(",")[0]
            if js.startswith(",") and "inline" in js.split(","):
                f[2] = "inline_" + name
                continue
            if gf and num in gf and jname and jname not in (name, "-"):
                f[2] = name = escape(jname)
            if label == "optional" and typ in SCALARS and typ != "bytes" and gotype:
                pointer = gotype.startswith("*")
                omitempty = "omitempty" in js.split(",")[1:]
                if pointer or not omitempty:
                    f[4] = " [default = %s]" % ZERO.get(typ, "0")
        lines.append("message %s {" % msg)
        for label, typ, name, num, opt in fields:
            if typ.startswith("map<"):
                lines.append("  %s %s = %d;" % (typ, name, num))
            else:
                lines.append("  %s %s %s = %d%s;" % (label, typ, name, num, opt))
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    ap.add_argument("--version", default="v0.32.0")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "sim",
                                                  "proto", "k8s"))
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    dirs = {}
    for mod in sorted({m for m, _ in FILES.values()}):
        r = subprocess.run(["go", "mod", "download", "-json", "k8s.io/%s@%s" % (mod, a.version)],
                           capture_output=True, text=True, cwd="/tmp")
        d = re.search(r'"Dir": "([^"]+)"', r.stdout)
        if not d:
            raise SystemExit("k8sproto: go mod download k8s.io/%s@%s failed: %s" %
                             (mod, a.version, r.stderr or r.stdout))
        dirs[mod] = d.group(1)
    pkgs = {}
    for fname, (mod, d) in FILES.items():
        src = open(os.path.join(dirs[mod], d, "generated.proto"), encoding="utf-8").read()
        pkgs[fname] = re.search(r"^package ([\w.]+);", src, flags=re.M).group(1)
    bad = 0
    for fname in a.files or sorted(FILES):
        mod, d = FILES[fname]
        pkgdir = os.path.join(dirs[mod], d)
        out = convert(open(os.path.join(pkgdir, "generated.proto"), encoding="utf-8").read(),
                      go_fields(pkgdir), pkgs)
        path = os.path.join(a.out, fname)
        if a.check:
            have = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if have != out:
                print("k8sproto: %s differs from %s at %s" % (path, a.version, d))
                bad = 1
            continue
        if fname in NOT_WRITTEN and not a.files:
            continue
        with open(path, "w", encoding="utf-8") as fp:
            fp.write(out)
    return bad


if __name__ == "__main__":
    sys.exit(main())
