#!/usr/bin/env python3
"""integration.samples-apply: every upstream KubeRay sample file applies unchanged to kubesim.

    samples_apply.py KUBESIM SAMPLES_DIR REPO_ROOT TABLE_OUT

Starts kubesim, installs the ray.io CRDs (deploy/crds) and the third-party CRDs a user installs
first (tests/integration/samples/crds: Volcano and KAI Queues, agent-sandbox), then for every
*.yaml / *.yml under SAMPLES_DIR (recursively, sorted) creates a namespace of its own and runs
`kubectl apply -f FILE -n NS`. Every file must apply. A file refused only because kubesim does
not serve NetworkPolicy or PersistentVolumeClaim yet (the wt-netpol work) is listed as
"needs wt-netpol" and does not fail the test while kubesim does not serve that kind; once it
does, the file must apply like any other. rayfleet does not run: the RayClusters are stored, not
reconciled; the apps/v1 workloads some samples bring (Redis) are run by kubesim, and the test
waits for them to be Ready. Writes a markdown table (one row per file) to TABLE_OUT and prints it.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

NETPOL_KINDS = {"NetworkPolicy": "networkpolicies", "PersistentVolumeClaim": "persistentvolumeclaims",
                "PersistentVolume": "persistentvolumes", "StorageClass": "storageclasses"}


def main():
    kubesim, samples, root, out = sys.argv[1:5]
    work = tempfile.mkdtemp(prefix="samples-apply.")
    kc = os.path.join(work, "kc")
    ready = os.path.join(work, "ready")
    log = open(os.path.join(work, "kubesim.log"), "w")
    ks = subprocess.Popen([kubesim, "--port", "0", "--nodes", "4", "--kubeconfig-out", kc,
                           "--ready-file", ready, "--pod-start-ms", "50", "--pod-ready-ms", "50"],
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        rc = run(work, kc, ready, samples, root, out)
    finally:
        ks.terminate()
        ks.wait()
        log.close()
    # under ASan/UBSan, kubesim's log holds any report once it stopped
    text = open(os.path.join(work, "kubesim.log")).read()
    m = re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", text)
    if m:
        print("FAIL: sanitizer report in kubesim's log:\n" + text[m.start():m.start() + 4000])
        rc = 1
    shutil.rmtree(work, ignore_errors=True)
    return rc


def kubectl(kc, work, *args, stdin=None):
    p = subprocess.run(["kubectl", "--kubeconfig", kc, "--cache-dir", os.path.join(work, "cache"),
                        *args], input=stdin, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def run(work, kc, ready, samples, root, out):
    t0 = time.monotonic()
    for _ in range(100):
        if os.path.exists(ready) and os.path.getsize(ready) > 0:
            break
        time.sleep(0.1)
    k = lambda *a, **kw: kubectl(kc, work, *a, **kw)
    rc, o, e = k("create", "-f", os.path.join(root, "deploy", "crds"))
    rc2, o2, e2 = k("apply", "-f", os.path.join(root, "tests", "integration", "samples", "crds"))
    if rc or rc2:
        print("FATAL: CRDs:", e, e2)
        return 1
    k("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    served = set(k("api-resources", "-o", "name")[1].split())

    files = []
    for d, _, names in os.walk(samples):
        for n in names:
            if n.endswith((".yaml", ".yml")):
                files.append(os.path.relpath(os.path.join(d, n), samples))
    files.sort()
    rows = []
    nss = []
    for i, f in enumerate(files):
        base = re.sub(r"[^a-z0-9-]+", "-", os.path.splitext(os.path.basename(f))[0].lower())
        ns = ("s%02d-%s" % (i, base))[:63].rstrip("-")
        nss.append(ns)
        docs = [d for d in yaml.safe_load_all(open(os.path.join(samples, f))) if d]
        kinds = []
        for d in docs:
            kd = d.get("kind", "?")
            if kd not in kinds:
                kinds.append(kd)
        hard = sorted({d["metadata"]["namespace"] for d in docs
                       if isinstance(d.get("metadata"), dict) and d["metadata"].get("namespace")})
        rows.append({"file": f, "ns": ns, "kinds": kinds, "docs": docs, "hard_ns": hard})
    # all namespaces in one call (one kubectl process instead of one per namespace)
    nsdoc = "".join("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n" % n for n in nss)
    rc, o, e = k("apply", "-f", "-", stdin=nsdoc)
    if rc:
        print("FATAL: namespaces:", e)
        return 1

    for r in rows:
        # generateName objects cannot be applied (kubectl refuses them client-side, whatever
        # the cluster): those files are made for `kubectl create -f`, as their docs say.
        gen = any(isinstance(d.get("metadata"), dict) and d["metadata"].get("generateName")
                  and not d["metadata"].get("name") for d in r["docs"])
        r["verb"] = "create" if gen else "apply"
        rc, o, e = k(r["verb"], "-f", os.path.join(samples, r["file"]), "-n", r["ns"])
        r["rc"] = rc
        errs = [l.strip().replace(samples.rstrip("/") + "/", "samples/")
                for l in e.splitlines() if l.strip()]
        r["errors"] = errs
        missing = set()
        for l in errs:
            m = re.search(r'no matches for kind "([^"]+)"', l)
            if m:
                missing.add(m.group(1))
            elif l.startswith("error") or l.startswith("Error"):
                missing.add("?")
        r["missing"] = missing
        if rc == 0:
            r["result"] = "yes" if not gen else "yes (`kubectl create`: generateName)"
        elif missing and all(kd in NETPOL_KINDS and NETPOL_KINDS[kd] not in served
                             for kd in missing):
            r["result"] = "needs wt-netpol"
        else:
            r["result"] = "NO"
    t_apply = time.monotonic() - t0

    # The apps/v1 workloads the samples bring: kubesim runs them; wait for Ready.
    deadline = time.monotonic() + 30
    for r in rows:
        r["workloads"] = ""
        want = [(d["kind"], d["metadata"]["name"]) for d in r["docs"]
                if d.get("kind") in ("Deployment", "StatefulSet") and d.get("apiVersion") == "apps/v1"]
        if not want or r["rc"] and r["result"] != "needs wt-netpol":
            continue
        states = []
        for kd, name in want:
            got = ""
            while True:
                rc, o, _ = k("get", kd.lower(), name, "-n", r["ns"], "-o", "json")
                obj = json.loads(o) if rc == 0 else {}
                spec_n = obj.get("spec", {}).get("replicas", 1)
                ready_n = obj.get("status", {}).get("readyReplicas", 0)
                got = "%s/%s %d/%d Ready" % (kd, name, ready_n, spec_n)
                if (rc == 0 and ready_n == spec_n) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            states.append(got)
        r["workloads"] = ", ".join(states)

    # the table
    lines = ["| # | sample file | kinds | applied | error | apps/v1 workloads run by kubesim |",
             "|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        err = "; ".join(r["errors"]).replace("|", "\\|") if r["rc"] else ""
        lines.append("| %d | `%s` | %s | %s | %s | %s |" % (
            i + 1, r["file"], ", ".join(r["kinds"]), r["result"], err, r["workloads"]))
    n_yes = sum(r["result"].startswith("yes") for r in rows)
    n_net = sum(r["result"] == "needs wt-netpol" for r in rows)
    n_no = sum(r["result"] == "NO" for r in rows)
    hard = [(r["file"], r["hard_ns"]) for r in rows if r["hard_ns"]]
    rcs = [r for r in rows if "RayCluster" in r["kinds"]]
    rc_yes = sum(r["result"].startswith("yes") for r in rcs)
    bad_wl = [r["file"] for r in rows if r["workloads"] and "Ready" in r["workloads"] and
              any(not re.search(r" (\d+)/\1 Ready$", s) for s in r["workloads"].split(", "))]
    summary = ("%d files: %d applied, %d need wt-netpol (NetworkPolicy/PVC not served yet), "
               "%d refused (RayCluster files: %d of %d applied); files hardcoding a namespace: "
               "%s; apply phase %.1f s"
               % (len(rows), n_yes, n_net, n_no, rc_yes, len(rcs),
                  ", ".join("%s (%s)" % (f, ",".join(n)) for f, n in hard) or "none", t_apply))
    text = "\n".join(lines) + "\n\n" + summary + "\n"
    with open(out, "w") as fh:
        fh.write(text)
    print(text)
    failed = 0
    if n_no:
        print("FAIL: %d sample files refused" % n_no)
        failed = 1
    if bad_wl:
        print("FAIL: apps/v1 workloads not Ready:", bad_wl)
        failed = 1
    if len(rows) < 80:
        print("FAIL: only %d sample files found under the samples folder" % len(rows))
        failed = 1
    print("PASS" if not failed else "FAILED", "(%.1f s)" % (time.monotonic() - t0))
    return failed


if __name__ == "__main__":
    sys.exit(main())
