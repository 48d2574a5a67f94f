#!/usr/bin/env python3
"""The sample conformance table: every upstream KubeRay sample file and what rayfleet did with it.

    scripts/sample-table.py BUILD_DIR [--jobs N] [--rerun-apply]

Runs, from BUILD_DIR (a configured and built tree), the programs of the tests that take the
upstream samples (../shared/kuberay/samples, or $RF_SHARED_DIR/kuberay/samples) through rayfleet:

  integration.samples-apply        samples_apply.py: every file applied unchanged with kubectl
                                   (BUILD_DIR/samples-apply.md is read instead when it is newer
                                   than kubesim, the CRDs and samples_apply.py; --rerun-apply runs
                                   it anyway)
  integration.conformance          conformance_it -v: every RayCluster (and the cluster spec of
                                   every RayJob and RayService) reconciled, pods and services
                                   checked rule by rule; gated samples rejected with KubeRay's Event
  integration.conformance-gates    conformance_it -v -g GATES (GATES read from that test's
                                   CMakeLists.txt): the gated samples reconciled instead
  integration.rayjob-samples       samples_it -v: every RayJob sample to its expected end
  integration.rayservice-samples   rs_samples_it -v: every RayService sample to Ready

and prints ONE markdown table on stdout, a row per sample file sorted by path. The RayCronJob
samples are checked by integration.raycronjob (a shell test of the real processes); this script
does not run it and states what it asserts. Exit 0 with the table when every program passed and
every file has a result; non-zero (the failing program and its output tail on stderr) otherwise.
Standard library only.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT_S = 600  # per program
GATE_NAMES = ("RayClusterNetworkPolicy", "GCSFaultToleranceEmbeddedStorage", "RayClusterMTLS",
              "RayClusterHistoryServer", "SidecarSubmitterRestart", "KubernetesWAS", "RayCronJob",
              "RayServiceIncrementalUpgrade", "RayMultiHostIndexing", "RayJobDeletionPolicy")
# The tests that run a gated sample's feature end to end, by the gate it needs.
GATE_TESTS = {"RayClusterNetworkPolicy": ["integration.gates", "integration.gates-off"],
              "RayClusterHistoryServer": ["integration.gated-pods"]}
CRONJOB_END = "**accepted**: stored, no refusal Event (gate RayCronJob on)"


def shared_dir():
    d = os.environ.get("RF_SHARED_DIR")
    if d:
        return os.path.abspath(d)
    return os.path.abspath(os.path.join(ROOT, "..", "shared"))


def conformance_gates():
    """The -g argument of integration.conformance-gates, from its CMakeLists.txt."""
    text = open(os.path.join(ROOT, "tests", "integration", "conformance", "CMakeLists.txt")).read()
    m = re.search(r'conformance_it\s+-v\s+-g\s*"([^"]+)"', text)
    if not m:
        raise SystemExit("sample-table: no -g GATES in tests/integration/conformance/CMakeLists.txt")
    return m.group(1)


def run(name, argv, env):
    """Runs argv; returns (name, rc, output, seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=TIMEOUT_S, errors="replace")
        return name, p.returncode, p.stdout, time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        return name, -1, out + "\n(timed out after %d s)" % TIMEOUT_S, time.monotonic() - t0
    except OSError as e:
        return name, -1, "cannot run %s: %s" % (argv[0], e), time.monotonic() - t0


def apply_fresh(build, md):
    """BUILD_DIR/samples-apply.md exists and is newer than what it depends on."""
    if not os.path.exists(md):
        return False
    deps = [os.path.join(build, "bin", "kubesim"),
            os.path.join(ROOT, "tests", "integration", "samples", "samples_apply.py")]
    for d in (os.path.join(ROOT, "deploy", "crds"),
              os.path.join(ROOT, "tests", "integration", "samples", "crds")):
        for n in os.listdir(d) if os.path.isdir(d) else []:
            deps.append(os.path.join(d, n))
    t = os.path.getmtime(md)
    return all(not os.path.exists(d) or os.path.getmtime(d) <= t for d in deps)


def parse_apply(md_text):
    """{file: (kinds, result)} from samples-apply.md's table."""
    rows = {}
    for line in md_text.splitlines():
        m = re.match(r"\| \d+ \| `([^`]+)` \| ([^|]*) \| ([^|]*) \|", line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return rows


def parse_conformance(out):
    """{file: [sample]} from conformance_it -v; a sample is a dict."""
    files = {}
    last = None
    for line in out.splitlines():
        m = re.match(r"  (ok|FAIL)\s+(\S+)\s+(RayCluster|RayJob|RayService)\s+(cf-\d+)\s+"
                     r"(rejected\s+)?pods\s+(\d+) checks\s+(\d+) failures\s+(\d+)", line)
        if m:
            last = {"ok": m.group(1) == "ok", "kind": m.group(3), "rejected": bool(m.group(5)),
                    "pods": int(m.group(6)), "checks": int(m.group(7)),
                    "failures": int(m.group(8)), "reason": "", "gate": ""}
            files.setdefault(m.group(2), []).append(last)
            continue
        m = re.match(r"       expected (\S+): (.*)$", line)
        if m and last is not None:
            last["reason"] = m.group(1)
            last["gate"] = next((g for g in GATE_NAMES if g in m.group(2)), "")
    return files


def cluster_result(samples):
    """The RayCluster cell of one file from its conformance samples."""
    if not samples:
        return "—"
    rej = [s for s in samples if s["rejected"]]
    parts = []
    if rej:
        for s in rej:
            gate = " (gate %s)" % s["gate"] if s["gate"] else ""
            bad = "" if s["ok"] else ", FAILED"
            parts.append("rejected: %s%s, %s%s" % (s["reason"], gate, pods(s["pods"]), bad))
    run = [s for s in samples if not s["rejected"]]
    if run:
        npods = sum(s["pods"] for s in run)
        checks = sum(s["checks"] for s in run)
        fails = sum(s["failures"] for s in run)
        n = "%d clusters: " % len(run) if len(run) > 1 else ""
        if fails:
            parts.append("%s%s, %d of %d checks FAILED" % (n, pods(npods), fails, checks))
        else:
            parts.append("%s%s, %d checks ok" % (n, pods(npods), checks))
    return "; ".join(parts)


def parse_ends(out, pattern):
    """{file: (ok, end, why)} from the per-sample lines of samples_it / rs_samples_it -v (a
    result line, then "  why: ..." under it)."""
    ends = {}
    last = None
    for line in out.splitlines():
        m = re.match(pattern, line)
        if m:
            last = m.group(1)
            ends[last] = (m.group(2) == "ok", m.group(3), "")
            continue
        m = re.match(r"  why: (.*)$", line)
        if m and last in ends:
            ends[last] = ends[last][:2] + (m.group(1),)
            last = None
    return ends


def pods(n):
    return "%d pod%s" % (n, "" if n == 1 else "s")


def main():
    ap = argparse.ArgumentParser(description="The sample conformance table (markdown on stdout).")
    ap.add_argument("build", metavar="BUILD_DIR")
    ap.add_argument("--jobs", type=int, default=2, help="programs run at once (default 2)")
    ap.add_argument("--rerun-apply", action="store_true",
                    help="run samples_apply.py even when BUILD_DIR/samples-apply.md is fresh")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    bindir = os.path.join(build, "bin")
    shared = shared_dir()
    samples = os.path.join(shared, "kuberay", "samples")
    env = dict(os.environ, RF_SHARED_DIR=shared)
    md = os.path.join(build, "samples-apply.md")
    t0 = time.monotonic()

    progs = []
    apply_note = "integration.samples-apply: BUILD_DIR/samples-apply.md read (fresh)"
    if a.rerun_apply or not apply_fresh(build, md):
        apply_note = ""
        progs.append(("integration.samples-apply",
                      [sys.executable,
                       os.path.join(ROOT, "tests", "integration", "samples", "samples_apply.py"),
                       os.path.join(bindir, "kubesim"), samples, ROOT, md]))
    gates = conformance_gates()
    progs += [
        ("integration.conformance", [os.path.join(bindir, "conformance_it"), "-v"]),
        ("integration.conformance-gates", [os.path.join(bindir, "conformance_it"), "-v", "-g",
                                           gates]),
        ("integration.rayjob-samples", [os.path.join(bindir, "samples_it"), "-v"]),
        ("integration.rayservice-samples", [os.path.join(bindir, "rs_samples_it"), "-v"]),
    ]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for name, rc, out, secs in ex.map(lambda p: run(p[0], p[1], env), progs):
            results[name] = (rc, out, secs)
            print("sample-table: %s: exit %d, %.1f s" % (name, rc, secs), file=sys.stderr)
    failed = [n for n, (rc, _, _) in results.items() if rc != 0]
    for n in failed:
        print("sample-table: %s FAILED; the end of its output:\n%s" % (
            n, "\n".join(results[n][1].splitlines()[-40:])), file=sys.stderr)

    apply_rows = parse_apply(open(md).read()) if os.path.exists(md) else {}
    conf = parse_conformance(results["integration.conformance"][1])
    confg = parse_conformance(results["integration.conformance-gates"][1])
    rj = parse_ends(results["integration.rayjob-samples"][1],
                    r"^(\S+\.ya?ml): (ok|FAILED) \((\S+)\)$")
    rs = parse_ends(results["integration.rayservice-samples"][1],
                    r"^(\S+\.ya?ml): (ok|FAILED) \((Ready), held\)$")

    files = []
    for d, _, names in os.walk(samples):
        for n in names:
            if n.endswith((".yaml", ".yml")):
                files.append(os.path.relpath(os.path.join(d, n), samples))
    files.sort()

    lines = ["| sample file | kinds | applies unchanged | RayCluster, KubeRay's default gates | "
             "alpha gates on (`%s`) | RayJob / RayService / RayCronJob end | checked by |"
             % gates.replace(",", ", "),
             "|---|---|---|---|---|---|---|"]
    missing = []
    counts = {"files": len(files), "apply": 0, "clusters": 0, "rejected": 0, "ends": 0}
    for f in files:
        kinds, applied = apply_rows.get(f, ("?", "?"))
        if f not in apply_rows:
            missing.append("%s: not in samples-apply.md" % f)
        elif applied.startswith("yes"):
            counts["apply"] += 1
        applied = "yes (`kubectl apply`)" if applied == "yes" else applied
        kl = [k.strip() for k in kinds.split(",")]
        tests = ["integration.samples-apply"]
        cs = conf.get(f, [])
        cell = cluster_result(cs)
        gcell = "—"
        if cs:
            tests.append("integration.conformance")
            counts["clusters"] += 1
            if any(s["rejected"] for s in cs):
                counts["rejected"] += 1
                gs = confg.get(f, [])
                gcell = cluster_result(gs) if gs else "not run"
                tests.append("integration.conformance-gates")
                for s in cs:
                    for t in GATE_TESTS.get(s["gate"], []):
                        if t not in tests:
                            tests.append(t)
            else:
                gs = confg.get(f, [])
                gcell = "same" if gs and cluster_result(gs) == cell else (
                    cluster_result(gs) if gs else "not run")
        elif any(k in ("RayCluster", "RayJob", "RayService") for k in kl):
            missing.append("%s: a Ray object but no conformance result" % f)
        ends = []
        if "RayJob" in kl:
            if f in rj:
                ends.append("RayJob **%s**%s%s" % (rj[f][1].replace("/-", ""),
                                                  "" if rj[f][0] else " FAILED",
                                                  ": " + rj[f][2] if rj[f][2] else ""))
                tests.append("integration.rayjob-samples")
            else:
                missing.append("%s: RayJob not run by samples_it" % f)
        if "RayService" in kl:
            if f in rs:
                ends.append("RayService **%s**%s%s" % (rs[f][1], "" if rs[f][0] else " FAILED",
                                                      ": " + rs[f][2] if rs[f][2] else ""))
                tests.append("integration.rayservice-samples")
            else:
                missing.append("%s: RayService not run by rs_samples_it" % f)
        if "RayCronJob" in kl:
            ends.append("RayCronJob " + CRONJOB_END)
            tests.append("integration.raycronjob")
        counts["ends"] += bool(ends)
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s |" % (
            f, kinds, applied, cell, gcell, "; ".join(ends).replace("|", "\\|") or "—",
            ", ".join(tests)))
    print("\n".join(lines))
    print()
    print("%d files: %d apply unchanged; %d hold a RayCluster (or the cluster spec of a RayJob or "
          "RayService) reconciled and checked, %d of them rejected with KubeRay's gates and run "
          "with the alpha gates on; %d hold a RayJob, RayService or RayCronJob run to its end. "
          "Programs: %s; %.0f s in all." % (
              counts["files"], counts["apply"], counts["clusters"], counts["rejected"],
              counts["ends"], ", ".join(["%s %.0f s" % (n, results[n][2]) for n in results] +
                                        ([apply_note] if apply_note else [])),
              time.monotonic() - t0))
    for m in missing:
        print("sample-table: %s" % m, file=sys.stderr)
    if failed or missing or counts["apply"] != counts["files"]:
        print("sample-table: FAILED (%s)" % ", ".join(failed + missing[:3] or ["not every file "
                                                                               "applies"]),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
