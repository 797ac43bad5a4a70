#!/usr/bin/env python3
"""Side-by-side comparison of `beacons verify` and the peer verifier nnenum on VNN-COMP instances.

Optional; never needed by CI. Needs a release build of beacons and a copy of nnenum
(Stanley Bak's star-set verifier, Python, GPL-3.0) that this repository does not ship.

Installing nnenum by hand: fetch the nnenum repository (github stanleybak/nnenum) and install
the Python requirements listed in its pyproject.toml (numpy, scipy, threadpoolctl, onnx,
onnxruntime, skl2onnx, swiglpk, termcolor) into a venv of its own; nnenum itself need not be
installed, it is imported from its `src` folder (pass that folder as --nnenum-path; it goes on
PYTHONPATH). Then, from the repository root:

    cargo build --release
    python3 benches/compare_nnenum.py --nnenum-python VENV/bin/python \\
        --nnenum-path NNENUM/src --out-dir /tmp/compare-nnenum
    # options: --instances CSV --expected CSV --filter REGEX --exclude REGEX
    #          --timeout-cap S --threads N --grace S --resume --beacons PATH

Defaults: --instances and --expected are $BEACONS_BENCHMARKS/acasxu/{instances,expected}.csv
(BEACONS_BENCHMARKS defaults to ../shared/benchmarks); instances.csv has no header (onnx,
vnnlib,timeout, paths relative to its folder); expected.csv has a header with onnx, vnnlib and
`resolved` (holds / violated).

For each instance, in the CSV's order, it runs beacons and then nnenum back to back, so that
the machine's load at that moment weighs on both alike:
- beacons: `BEACONS verify ONNX VNNLIB --timeout T --result-file F` with
  RAYON_NUM_THREADS=N (--threads, default 2);
- nnenum: `PYTHON -m nnenum.nnenum ONNX VNNLIB T F N` with PYTHONPATH=--nnenum-path and
  OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1, the settings of nnenum's own VNN-COMP
  run_instance.sh; the fifth argument is nnenum's number of worker processes (N, the same as
  beacons' threads); its settings are nnenum's "auto" (the control settings for inputs < 700).
T is the instance's timeout, capped by --timeout-cap. Each run is wall-timed from start to exit
(process start, model loading and parsing included, for both) and killed, with its whole
process group, at T + --grace seconds (default 10); a killed run counts as `timeout`. The
verdict is the first line of the result file: unsat / sat / timeout / unknown / error
(nnenum writes holds / violated, read as unsat / sat; a missing or empty file is `error`).
correct is `yes` when a decided verdict (unsat = holds, sat = violated) agrees with
expected.csv's `resolved`, `no` when it contradicts it, empty when undecided or unresolved.

beacons is run as a copy of --beacons made at the start in --out-dir (beacons.bin; its mtime
and sha256 are printed), so that a rebuild during the run cannot mix two versions.
Output in --out-dir: results.csv (instance, tool, verdict, seconds, correct, expected,
timeout, threads, load1, rc), summary.txt (also printed), logs/ (each run's stdout+stderr).
--resume keeps the rows already in results.csv and runs only the instances missing there.
The summary counts, per tool, decided / wrong / timeouts / other (unknown, error) / total, the
total and median wall seconds over all instances, the same over the instances both decided, and
the ratios (beacons over nnenum: < 1 means beacons is faster), and lists every instance where
the two tools' verdicts differ or either is wrong.
"""

import argparse
import csv
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIELDS = ["instance", "tool", "verdict", "seconds", "correct", "expected", "timeout",
          "threads", "load1", "rc"]
TOOLS = ["beacons", "nnenum"]


def read_instances(path):
    base = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip():
                continue
            onnx, vnnlib, timeout = row[0].strip(), row[1].strip(), float(row[2])
            out.append((onnx, vnnlib, timeout, base))
    return out


def read_expected(path):
    exp = {}
    if not path or not os.path.exists(path):
        return exp
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            exp[instance_name(row["onnx"], row["vnnlib"])] = (row.get("resolved") or "").strip()
    return exp


def instance_name(onnx, vnnlib):
    return f"{onnx},{vnnlib}"


def read_verdict(path):
    try:
        with open(path) as f:
            first = f.readline().strip().lower()
    except OSError:
        return "error"
    if not first:
        return "error"
    return {"holds": "unsat", "violated": "sat", "safe": "unsat", "unsafe": "sat"}.get(
        first, first)


def judge(verdict, expected):
    if verdict not in ("sat", "unsat") or expected not in ("holds", "violated"):
        return ""
    want = "unsat" if expected == "holds" else "sat"
    return "yes" if verdict == want else "no"


def run(cmd, env, limit, log_path, result_path):
    """Runs cmd in its own session; kills its process group at `limit` s. (verdict, s, rc)."""
    if os.path.exists(result_path):
        os.remove(result_path)
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        killed = False
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            killed = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rc = proc.wait()
        secs = time.perf_counter() - t0
        # multiprocessing workers left behind (nnenum) belong to the same group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if killed:
        with open(log_path, "a") as log:
            log.write(f"\n[compare_nnenum] killed after {secs:.1f} s\n")
        return "timeout", secs, "killed"
    return read_verdict(result_path), secs, str(rc)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return a / b if b else float("nan")


def summarize(rows, instances_order):
    by = {}
    for r in rows:
        by.setdefault(r["instance"], {})[r["tool"]] = r
    names = [n for n in instances_order if n in by and all(t in by[n] for t in TOOLS)]
    lines = []
    stats = {}
    both = [n for n in names
            if all(by[n][t]["verdict"] in ("sat", "unsat") for t in TOOLS)]
    for t in TOOLS:
        rs = [by[n][t] for n in names]
        secs = [float(r["seconds"]) for r in rs]
        bsecs = [float(by[n][t]["seconds"]) for n in both]
        stats[t] = dict(
            decided=sum(r["verdict"] in ("sat", "unsat") for r in rs),
            wrong=sum(r["correct"] == "no" for r in rs),
            timeouts=sum(r["verdict"] == "timeout" for r in rs),
            other=sum(r["verdict"] not in ("sat", "unsat", "timeout") for r in rs),
            total=len(rs), tsum=sum(secs), tmed=median(secs),
            bsum=sum(bsecs), bmed=median(bsecs),
            threads=rs[0]["threads"] if rs else "")
    lines.append(f"instances compared: {len(names)} (both tools run); both decided: {len(both)}")
    hdr = (f"{'tool':8} {'thr':>3} {'decided':>7} {'wrong':>5} {'timeouts':>8} {'other':>5} "
           f"{'total':>5} {'sum s':>9} {'median s':>9} {'sum s (both)':>12} "
           f"{'median s (both)':>15}")
    lines.append(hdr)
    for t in TOOLS:
        s = stats[t]
        lines.append(f"{t:8} {s['threads']:>3} {s['decided']:>7} {s['wrong']:>5} "
                     f"{s['timeouts']:>8} {s['other']:>5} {s['total']:>5} {s['tsum']:>9.2f} "
                     f"{s['tmed']:>9.3f} {s['bsum']:>12.2f} {s['bmed']:>15.3f}")
    b, n = stats["beacons"], stats["nnenum"]
    for label, kb, kn in (("total seconds, all instances", "tsum", "tsum"),
                          ("median seconds, all instances", "tmed", "tmed"),
                          ("total seconds, both decided", "bsum", "bsum"),
                          ("median seconds, both decided", "bmed", "bmed")):
        r = ratio(b[kb], n[kn])
        faster = "beacons faster" if r < 1 else ("nnenum faster" if r > 1 else "equal")
        lines.append(f"ratio beacons/nnenum, {label}: {r:.4f} ({faster}; "
                     f"nnenum/beacons = {ratio(n[kn], b[kb]):.2f})")
    lines.append("disagreements or wrong verdicts (instance: beacons / nnenum / expected):")
    count = 0
    for name in names:
        vb, vn = by[name]["beacons"]["verdict"], by[name]["nnenum"]["verdict"]
        wrong = any(by[name][t]["correct"] == "no" for t in TOOLS)
        if vb != vn or wrong:
            count += 1
            lines.append(f"  {name}: {vb} ({float(by[name]['beacons']['seconds']):.2f} s) / "
                         f"{vn} ({float(by[name]['nnenum']['seconds']):.2f} s) / "
                         f"{by[name]['beacons']['expected'] or '?'}"
                         + ("  WRONG" if wrong else ""))
    if count == 0:
        lines.append("  none")
    return "\n".join(lines)


def main():
    bench = os.environ.get("BEACONS_BENCHMARKS", os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnenum-python", required=True,
                    help="python of the venv holding nnenum's requirements")
    ap.add_argument("--nnenum-path", default="",
                    help="folder put on PYTHONPATH so that `import nnenum` works (nnenum's src)")
    ap.add_argument("--beacons", default=os.path.join(ROOT, "target", "release", "beacons"))
    ap.add_argument("--instances", default=os.path.join(bench, "acasxu", "instances.csv"))
    ap.add_argument("--expected", default=None,
                    help="expected.csv (default: beside --instances)")
    ap.add_argument("--filter", default=None,
                    help="regex (or substring) an instance's 'onnx,vnnlib' must match")
    ap.add_argument("--exclude", default=None, help="regex of instances to skip")
    ap.add_argument("--timeout-cap", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2,
                    help="beacons' RAYON_NUM_THREADS and nnenum's worker processes")
    ap.add_argument("--grace", type=float, default=10.0,
                    help="seconds past the timeout before a run is killed")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "target", "compare-nnenum"))
    ap.add_argument("--resume", action="store_true",
                    help="keep results.csv's rows and run only the missing instances")
    ap.add_argument("--summary-only", action="store_true",
                    help="run nothing; summarise results.csv")
    args = ap.parse_args()

    expected_path = args.expected or os.path.join(os.path.dirname(
        os.path.abspath(args.instances)), "expected.csv")
    expected = read_expected(expected_path)
    instances = read_instances(args.instances)
    pat = re.compile(args.filter) if args.filter else None
    exc = re.compile(args.exclude) if args.exclude else None
    selected = [i for i in instances
                if (pat is None or pat.search(instance_name(i[0], i[1])))
                and (exc is None or not exc.search(instance_name(i[0], i[1])))]
    order = [instance_name(i[0], i[1]) for i in selected]

    os.makedirs(os.path.join(args.out_dir, "logs"), exist_ok=True)
    csv_path = os.path.join(args.out_dir, "results.csv")
    rows = []
    if (args.resume or args.summary_only) and os.path.exists(csv_path):
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    done = {(r["instance"], r["tool"]) for r in rows}

    if not args.summary_only:
        if not os.path.exists(args.beacons):
            sys.exit(f"no beacons binary at {args.beacons}: cargo build --release")
        # run a private copy, so that a rebuild during the run cannot mix two versions;
        # --resume goes on with the copy already there
        snap = os.path.join(args.out_dir, "beacons.bin")
        if not (args.resume and os.path.exists(snap)):
            shutil.copy2(args.beacons, snap)
        mtime = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.stat(snap).st_mtime))
        with open(snap, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        print(f"beacons: {args.beacons}, run as its copy {snap} (mtime {mtime}, "
              f"sha256 {digest[:16]})")
        args.beacons = snap
        print(f"nnenum: {args.nnenum_python} -m nnenum.nnenum (PYTHONPATH={args.nnenum_path})")
        print(f"threads: {args.threads}; {len(selected)} instances", flush=True)
        env_b = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        env_n = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        if args.nnenum_path:
            env_n["PYTHONPATH"] = os.path.abspath(args.nnenum_path) + (
                os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
        write_header = not (args.resume and os.path.exists(csv_path))
        mode = "a" if not write_header else "w"
        if write_header:
            rows = []
            done = set()
        with open(csv_path, mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if write_header:
                w.writeheader()
            for k, (onnx, vnnlib, t, base) in enumerate(selected):
                name = instance_name(onnx, vnnlib)
                if all((name, tool) in done for tool in TOOLS):
                    continue
                tmo = min(t, args.timeout_cap) if args.timeout_cap else t
                model, spec = os.path.join(base, onnx), os.path.join(base, vnnlib)
                stem = re.sub(r"[^A-Za-z0-9_.-]+", "_",
                              os.path.basename(onnx).replace(".onnx", "") + "__"
                              + os.path.basename(vnnlib).replace(".vnnlib", ""))
                exp = expected.get(name, "")
                for tool in TOOLS:
                    if (name, tool) in done:
                        continue
                    res = os.path.join(args.out_dir, "logs", f"{stem}.{tool}.result")
                    log = os.path.join(args.out_dir, "logs", f"{stem}.{tool}.log")
                    fmt_t = f"{tmo:g}"
                    if tool == "beacons":
                        cmd = [args.beacons, "verify", model, spec, "--timeout", fmt_t,
                               "--result-file", res]
                        env = env_b
                    else:
                        cmd = [args.nnenum_python, "-m", "nnenum.nnenum", model, spec, fmt_t,
                               res, str(args.threads)]
                        env = env_n
                    load1 = os.getloadavg()[0]
                    verdict, secs, rc = run(cmd, env, tmo + args.grace, log, res)
                    row = dict(instance=name, tool=tool, verdict=verdict,
                               seconds=f"{secs:.3f}", correct=judge(verdict, exp),
                               expected=exp, timeout=fmt_t, threads=args.threads,
                               load1=f"{load1:.2f}", rc=rc)
                    w.writerow(row)
                    f.flush()
                    rows.append(row)
                    print(f"[{k + 1}/{len(selected)}] {name} {tool}: {verdict} {secs:.2f} s "
                          f"(expected {exp or '?'}; load {load1:.2f})", flush=True)

    text = summarize(rows, order)
    print(text)
    with open(os.path.join(args.out_dir, "summary.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
