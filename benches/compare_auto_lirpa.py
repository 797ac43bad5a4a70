#!/usr/bin/env python3
"""Side-by-side comparison of beacons and auto_LiRPA: bound widths, margins and compute time.

Optional; never needed by CI. Needs a venv with auto_LiRPA (see benches/README.md; PyTorch 2.8.0 CPU,
onnx, numpy, auto_LiRPA at commit a050a3d) and a release build of beacons:

    cargo build --release
    /work/venv-lirpa/bin/python benches/compare_auto_lirpa.py [--json out.json]
    /work/venv-lirpa/bin/python benches/compare_auto_lirpa.py --problem M.onnx S.vnnlib ...

Problems (one ONNX model + one VNN-LIB file each; every input box of the file is bounded):
by default a sample of ACAS Xu (one instance per property, prop_1 .. prop_10; --acas N) and of
mnist_fc (two per network; --mnist N) from $BEACONS_BENCHMARKS (default ../shared/benchmarks),
and the 6x512 ReLU MLP of benches/make_mlp.py on two boxes, radius 0.002 and 0.01 (--mlp-eps;
written under target/bench-models when missing; --no-mlp skips it). --problem adds pairs; --only-given bounds only those.

For each problem and each method (IBP, CROWN, alpha-CROWN; --methods):
- auto_LiRPA exactly as ../shared/benchmarks/reference/README.md describes: the ONNX graph
  translated node by node to torch (Sub, Flatten, Gemm, MatMul, Add, Relu; a constant MatMul
  followed by a bias Add fused into one F.linear), float64 (float32 weights widened exactly),
  one thread (torch.set_num_threads(1)), BoundedModule(..., bound_opts={'optimize_bound_args':
  {'iteration': 20}}), every box: an outputs call compute_bounds(method=M) and a margins call
  with C = every atom row of the box (bound_upper=False); margin = lower(C y) - b. Methods
  'IBP', 'backward', 'CROWN-Optimized'. Timed: the compute_bounds calls only (perf_counter),
  after one untimed warm-up of the same method on the first box of each network.
- beacons: `target/release/beacons bounds MODEL SPEC --method M --json` with
  RAYON_NUM_THREADS=1; its JSON `seconds` (the in-process time of the bound computation, all
  boxes, outputs and margins; not loading or parsing). The first run is a warm-up (file cache)
  and not counted.
--repeat N times both sides N times and takes the median (default 1).

Printed per problem and method:
- width ratio = mean output width of beacons / mean output width of auto_LiRPA (< 1: tighter);
- margins: how many atoms beacons' margin lower bound is tighter / equal / looser than
  auto_LiRPA's, equal meaning |ours - theirs| <= max(1e-5, 1e-4 |theirs|) (the reference
  README's tolerance), and the largest gain and loss;
- time ratio = auto_LiRPA seconds / beacons seconds (> 1: beacons faster).
Then a summary per family and method: median time ratio, median width ratio, margin counts.

For every problem it also reports both sides' achieved GFLOP/s on CROWN, with the flop count of
the backward passes (see `crown_flops`; printed for the MLP, whose work is dense products, and
in the JSON for all), against this machine's float64 GEMM rate measured with numpy (OpenBLAS,
one thread) and torch (one thread) on 512x512 products; `cargo bench --bench engines -- gemm`
gives the rate of ndarray's product (matrixmultiply), which beacons uses.

--json FILE writes everything (per problem, per method: both sides' bounds summary, times,
ratios; the summary; the GEMM rates; machine facts).
"""

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = {"ibp": "IBP", "crown": "backward", "alpha-crown": "CROWN-Optimized"}
LABEL = {"ibp": "IBP", "crown": "CROWN", "alpha-crown": "alpha-CROWN"}


# ----------------------------------------------------------------------------- VNN-LIB


def sexprs(text):
    tokens = []
    for line in text.splitlines():
        line = line.split(";", 1)[0]
        tokens += line.replace("(", " ( ").replace(")", " ) ").split()
    stack, out = [[]], None
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            out = stack.pop()
            stack[-1].append(out)
        else:
            stack[-1].append(t)
    return stack[0]


def linear(e):
    """A term over X_/Y_ variables as ({var: coeff}, const)."""
    if isinstance(e, str):
        try:
            return {}, float(e)
        except ValueError:
            return {e: 1.0}, 0.0
    op, args = e[0], [linear(a) for a in e[1:]]
    if op == "+":
        d, c = {}, 0.0
        for ad, ac in args:
            for k, v in ad.items():
                d[k] = d.get(k, 0.0) + v
            c += ac
        return d, c
    if op == "-":
        if len(args) == 1:
            return {k: -v for k, v in args[0][0].items()}, -args[0][1]
        d, c = dict(args[0][0]), args[0][1]
        for ad, ac in args[1:]:
            for k, v in ad.items():
                d[k] = d.get(k, 0.0) - v
            c -= ac
        return d, c
    if op == "*":
        (ad, ac), (bd, bc) = args
        if not ad:
            return {k: ac * v for k, v in bd.items()}, ac * bc
        if not bd:
            return {k: bc * v for k, v in ad.items()}, ac * bc
    raise ValueError(f"non-linear term {e}")


def dnf(e):
    """Disjunctive normal form of an and/or formula of atoms: list of lists of atoms."""
    if e[0] == "and":
        out = [[]]
        for a in e[1:]:
            out = [x + y for x in out for y in dnf(a)]
        return out
    if e[0] == "or":
        return [c for a in e[1:] for c in dnf(a)]
    if e[0] in ("<=", ">=", "<", ">"):
        (ld, lc), (rd, rc) = linear(e[1]), linear(e[2])
        if e[0] in (">=", ">"):
            (ld, lc), (rd, rc) = (rd, rc), (ld, lc)
        d = dict(ld)
        for k, v in rd.items():
            d[k] = d.get(k, 0.0) - v
        return [[(d, rc - lc)]]  # sum d_k v_k <= rc - lc
    raise ValueError(f"unsupported {e[0]}")


def read_vnnlib(path, n_in, n_out):
    """[(lower, upper, disjuncts)] per input box; disjuncts: lists of (a (n_out,), b) for a.Y <= b."""
    conj = [[]]
    with open(path) as f:
        text = f.read()
    for e in sexprs(text):
        if e[0] == "assert":
            conj = [x + y for x in conj for y in dnf(e[1])]
    boxes = []
    for c in conj:
        lo, hi = np.full(n_in, -np.inf), np.full(n_in, np.inf)
        atoms = []
        for d, b in c:
            if all(k.startswith("X_") for k in d):
                ((k, v),) = d.items()
                i = int(k[2:])
                if v > 0:
                    hi[i] = min(hi[i], b / v)
                else:
                    lo[i] = max(lo[i], b / v)
            else:
                a = np.zeros(n_out)
                for k, v in d.items():
                    a[int(k[2:])] += v
                atoms.append((a, b))
        key = (lo.tobytes(), hi.tobytes())
        for bx in boxes:
            if bx[0] == key:
                bx[3].append(atoms)
                break
        else:
            boxes.append((key, lo, hi, [atoms]))
    return [(lo, hi, ds) for _, lo, hi, ds in boxes]


# ----------------------------------------------------------------------------- ONNX -> torch


def onnx_to_torch(path):
    """A torch module (float64) for an ONNX graph of Sub/Flatten/Gemm/MatMul/Add/Relu, with a
    constant MatMul whose result feeds only a constant bias Add fused into one F.linear. Also
    returns the input shape and the affine layer sizes [(n_in, n_out), ...]."""
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper

    m = onnx.load(path)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            inits[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    inp = [i for i in g.input if i.name not in inits][0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    uses = {}
    for n in g.node:
        for x in n.input:
            uses.setdefault(x, []).append(n)
    steps, layers, skip = [], [], set()
    for n in g.node:
        if n.op_type == "Constant" or id(n) in skip:
            continue
        t = n.op_type
        attr = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if t == "MatMul" and n.input[1] in inits:
            w = inits[n.input[1]]
            us = uses.get(n.output[0], [])
            if len(us) == 1 and us[0].op_type == "Add" and w.ndim == 2:
                add = us[0]
                other = [x for x in add.input if x != n.output[0]][0]
                if other in inits and inits[other].ndim == 1:
                    steps.append(("linear", n.input[0], add.output[0], w.T, inits[other]))
                    layers.append(w.shape)
                    skip.add(id(add))
                    continue
            steps.append(("linear", n.input[0], n.output[0], w.T, None))
            layers.append(w.shape)
        elif t == "Gemm":
            w = inits[n.input[1]] * attr.get("alpha", 1.0)
            if not attr.get("transB", 0):
                w = w.T
            if attr.get("transA", 0):
                raise ValueError("Gemm transA unsupported")
            b = inits[n.input[2]] * attr.get("beta", 1.0) if len(n.input) > 2 else None
            steps.append(("linear", n.input[0], n.output[0], w, b))
            layers.append((w.shape[1], w.shape[0]))
        elif t in ("Sub", "Add") and n.input[1] in inits:
            steps.append((t.lower(), n.input[0], n.output[0], inits[n.input[1]], None))
        elif t == "Flatten":
            steps.append(("flatten", n.input[0], n.output[0], attr.get("axis", 1), None))
        elif t == "Relu":
            steps.append(("relu", n.input[0], n.output[0], None, None))
        else:
            raise ValueError(f"{path}: operator {t} not translated")
    out_name = g.output[0].name

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = torch.nn.ParameterList()
            self.plan = []
            self.linears = [(np.asarray(a, np.float64), np.zeros(np.asarray(a).shape[0]) if b is None else np.asarray(b, np.float64))
                            for kind, _, _, a, b in steps if kind == "linear"]
            for kind, i, o, a, b in steps:
                ia = ib = None
                if a is not None and kind != "flatten":
                    self.ps.append(torch.nn.Parameter(torch.tensor(np.asarray(a, np.float64)), requires_grad=False))
                    ia = len(self.ps) - 1
                if b is not None:
                    self.ps.append(torch.nn.Parameter(torch.tensor(np.asarray(b, np.float64)), requires_grad=False))
                    ib = len(self.ps) - 1
                self.plan.append((kind, i, o, ia, ib, a if kind == "flatten" else None))

        def forward(self, x):
            env = {inp.name: x}
            for kind, i, o, ia, ib, axis in self.plan:
                v = env[i]
                if kind == "linear":
                    b = self.ps[ib] if ib is not None else None
                    env[o] = F.linear(v, self.ps[ia], b)
                elif kind == "sub":
                    env[o] = v - self.ps[ia]
                elif kind == "add":
                    env[o] = v + self.ps[ia]
                elif kind == "flatten":
                    env[o] = torch.flatten(v, axis)
                elif kind == "relu":
                    env[o] = F.relu(v)
            return env[out_name]

    return Net(), shape, layers


# ----------------------------------------------------------------------------- auto_LiRPA side


class Lirpa:
    def __init__(self, model_path):
        import torch
        from auto_LiRPA import BoundedModule

        self.torch = torch
        net, self.shape, self.layers = onnx_to_torch(model_path)
        self.weights = [(p[0], p[1]) for p in net.linears]
        self.n_in = int(np.prod(self.shape))
        with torch.no_grad():
            self.n_out = int(np.prod(net(torch.zeros(self.shape)).shape))
        self.model = BoundedModule(
            net,
            torch.zeros(self.shape),
            bound_opts={"optimize_bound_args": {"iteration": 20}},
            device="cpu",
        )
        self.warm = set()

    def bounded(self, lo, hi):
        from auto_LiRPA import BoundedTensor
        from auto_LiRPA.perturbations import PerturbationLpNorm

        t = self.torch
        xl = t.tensor(lo).reshape(self.shape)
        xu = t.tensor(hi).reshape(self.shape)
        return BoundedTensor((xl + xu) / 2, PerturbationLpNorm(norm=np.inf, x_L=xl, x_U=xu))

    def unstable(self):
        """Per ReLU layer, after the last call: (neurons unstable under the final pre-activation
        bounds, neurons a CROWN intermediate pass propagates). The second follows the rule of
        auto_LiRPA's default and of beacons: the neurons the interval step from the previous
        layer's final bounds leaves unstable, or the whole layer when that is over 90 %; the
        first layer's bounds are exact intervals (no pass, 0)."""
        pres = []
        for node in self.model.nodes():
            if type(node).__name__ == "BoundRelu":
                pre = node.inputs[0]
                pres.append((pre.lower.detach().reshape(-1).numpy(), pre.upper.detach().reshape(-1).numpy()))
        final = [int(((lo < 0) & (up > 0)).sum()) for lo, up in pres]
        rows = [0]
        for j in range(1, len(pres)):
            w, b = self.weights[j]
            lo, up = np.maximum(pres[j - 1][0], 0), np.maximum(pres[j - 1][1], 0)
            c, r = (lo + up) / 2, (up - lo) / 2
            t_lo, t_up = w @ c + b - np.abs(w) @ r, w @ c + b + np.abs(w) @ r
            k = int(((t_lo < 0) & (t_up > 0)).sum())
            rows.append(len(t_lo) if k > 0.9 * len(t_lo) else k)
        return final, rows

    def run(self, method, lo, hi, disjuncts):
        t = self.torch
        m = METHODS[method]
        x = self.bounded(lo, hi)
        atoms = [a for d in disjuncts for a in d]
        C = t.tensor(np.array([a for a, _ in atoms])).reshape(1, len(atoms), self.n_out)
        quiet = contextlib.redirect_stdout(io.StringIO())  # auto_LiRPA prints early stops
        quiet.__enter__()
        start = time.perf_counter()
        cpu = time.process_time()
        lb, ub = self.model.compute_bounds(x=(x,), method=m)
        t_out = time.perf_counter() - start
        cpu = time.process_time() - cpu
        unstable = self.unstable() if method == "crown" else None
        start = time.perf_counter()
        cpu2 = time.process_time()
        mlb, _ = self.model.compute_bounds(x=(x,), C=C, method=m, bound_upper=False)
        t_margins = time.perf_counter() - start
        cpu += time.process_time() - cpu2
        quiet.__exit__(None, None, None)
        rows = mlb.detach().reshape(-1).numpy()
        margins, k = [], 0
        for d in disjuncts:
            margins.append([float(rows[k + i] - d[i][1]) for i in range(len(d))])
            k += len(d)
        return {
            "lower": lb.detach().reshape(-1).numpy().tolist(),
            "upper": ub.detach().reshape(-1).numpy().tolist(),
            "margins": margins,
            "seconds": t_out + t_margins,
            "seconds_outputs": t_out,
            "cpu_seconds": cpu,
            "unstable": unstable,
        }


# ----------------------------------------------------------------------------- beacons side


def beacons(exe, model, spec, method):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    p = subprocess.run(
        [exe, "bounds", model, spec, "--method", method, "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    if p.returncode != 0:
        raise RuntimeError(f"beacons bounds {model} {spec} --method {method}: {p.stderr.strip()}")
    return json.loads(p.stdout)


# ----------------------------------------------------------------------------- problems


def sample_problems(bench, n_acas, n_mnist):
    out = []
    acas = os.path.join(bench, "acasxu")
    if n_acas and os.path.isdir(acas):
        with open(os.path.join(acas, "instances.csv")) as f:
            rows = list(csv.reader(f))
        by_prop = {}
        for r in rows:
            by_prop.setdefault(r[1].strip(), []).append(r[0].strip())
        props = sorted(by_prop, key=lambda p: int(p.split("_")[-1].split(".")[0]))
        picks = []
        for k, p in enumerate(props):
            nets = by_prop[p]
            picks.append((nets[(7 * k + 3 * (k // 4)) % len(nets)], p))
        k = 0
        while len(picks) < n_acas:  # more than one per property: cycle through the big ones
            p = props[k % 4]
            nets = by_prop[p]
            picks.append((nets[(11 * (len(picks) + 1)) % len(nets)], p))
            k += 1
        for m, s in picks[:n_acas]:
            out.append(("acasxu", os.path.join(acas, m), os.path.join(acas, s)))
    mnist = os.path.join(bench, "mnist_fc")
    if n_mnist and os.path.isdir(mnist):
        with open(os.path.join(mnist, "instances.csv")) as f:
            rows = list(csv.reader(f))
        nets = sorted({r[0].strip() for r in rows})
        per = max(1, -(-n_mnist // len(nets)))
        picks = []
        for i, net in enumerate(nets):
            rs = [r for r in rows if r[0].strip() == net]
            for j in range(per):
                picks.append((net, rs[(7 * i + 11 * j + 2) % len(rs)][1].strip()))
        for m, s in picks[:n_mnist]:
            fam = "mnist_fc " + os.path.basename(m).split("_")[-1].split(".")[0]
            out.append((fam, os.path.join(mnist, m), os.path.join(mnist, s)))
    return out


# ----------------------------------------------------------------------------- GEMM rate and flops


def gemm_rates(n=512, reps=20):
    """float64 GFLOP/s of an n x n x n product, best of reps, one thread: numpy and torch."""
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    rates = {}
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    cfg = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {}) if hasattr(np.__config__, "CONFIG") else {}
    rates["numpy"] = {"gflops": 2 * n**3 / best / 1e9, "blas": cfg.get("name", "?")}
    ta, tb = torch.tensor(a), torch.tensor(b)
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        ta @ tb
        best = min(best, time.perf_counter() - t)
    rates["torch"] = {"gflops": 2 * n**3 / best / 1e9, "threads": torch.get_num_threads()}
    return rates


def crown_flops(layers, unstable, n_out, n_atoms):
    """Flops (2 per multiply-add) of the CROWN backward passes of an MLP, by call.

    layers: affine sizes [(n_in, n_out), ...] in order; unstable[j]: the neurons of the
    pre-activation after affine layer j (ReLU layer j) that get a CROWN pass (see
    Lirpa.unstable: those the interval step leaves unstable, or all of them above 90 %; entry 0
    unused: the first layer's bounds are exact intervals). With c_i = 2 n_in n_out of layer i, a backward pass of m
    rows from the output of layer j to the input costs m (c_0 + ... + c_j); relaxations and the
    box concretisation (lower order) are not counted. Per CROWN computation:
      I = sum over hidden j >= 1 of 2 m_j (c_0 + ... + c_j)   (lower and upper bound of each of
          the m_j = unstable[j] neurons that must be propagated; stable ones are skipped)
      F = (2 n_out + n_atoms) (c_0 + ... + c_L)             (lower+upper of every output, lower
          of every atom row)
    Returns {"intermediate": I, "final": F, "dense_intermediate": I with m_j = layer width}.
    auto_LiRPA's outputs + margins calls do 2 I + F (intermediates are recomputed per call);
    beacons' crown runs two CROWN computations (intermediate bounds replaced, and intersected
    with the interval step) and keeps the tighter: about 2 (I + F).
    """
    cost = [2 * a * b for a, b in layers]
    inter = dense = 0
    for j in range(1, len(layers) - 1):
        inter += 2 * unstable[j] * sum(cost[: j + 1])
        dense += 2 * layers[j][1] * sum(cost[: j + 1])
    return {"intermediate": inter, "final": (2 * n_out + n_atoms) * sum(cost), "dense_intermediate": dense}


# ----------------------------------------------------------------------------- comparison


def tol(ref):
    return max(1e-5, 1e-4 * abs(ref))


def compare(ours, theirs):
    """Width ratio and margin counts of one box."""
    w_o = np.mean(np.array(ours["upper"]) - np.array(ours["lower"]))
    w_t = np.mean(np.array(theirs["upper"]) - np.array(theirs["lower"]))
    t = e = l = 0
    gain, loss = 0.0, 0.0
    for mo, mt in zip(sum(ours["margins"], []), sum(theirs["margins"], [])):
        d = mo - mt
        if abs(d) <= tol(mt):
            e += 1
        elif d > 0:
            t += 1
        else:
            l += 1
        gain, loss = max(gain, d), min(loss, d)
    return {"width_ours": w_o, "width_theirs": w_t, "tighter": t, "equal": e, "looser": l,
            "max_gain": gain, "max_loss": loss}


def fmt_ratio(x):
    return f"{x:.3g}" if np.isfinite(x) else "-"


def main():
    ap = argparse.ArgumentParser(description="beacons vs auto_LiRPA: bound widths, margins, time")
    ap.add_argument("--beacons", default=os.path.join(ROOT, "target", "release", "beacons"))
    ap.add_argument("--benchmarks", default=os.environ.get("BEACONS_BENCHMARKS", os.path.join(ROOT, "..", "shared", "benchmarks")))
    ap.add_argument("--acas", type=int, default=10, help="ACAS Xu instances (default 10)")
    ap.add_argument("--mnist", type=int, default=6, help="mnist_fc instances (default 6)")
    ap.add_argument("--no-mlp", action="store_true", help="skip the 6x512 MLP")
    ap.add_argument("--mlp-eps", default="0.002,0.01",
                    help="box radii of the 6x512 MLP problems (default 0.002: most neurons stable; "
                         "0.01: deep layers all unstable, the dense regime)")
    ap.add_argument("--problem", nargs=2, action="append", default=[], metavar=("ONNX", "VNNLIB"))
    ap.add_argument("--only-given", action="store_true", help="only the --problem pairs")
    ap.add_argument("--methods", default="ibp,crown,alpha-crown")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    import auto_LiRPA

    if not os.path.exists(a.beacons):
        sys.exit(f"{a.beacons} not found: run `cargo build --release` first")
    methods = a.methods.split(",")
    problems = [] if a.only_given else sample_problems(a.benchmarks, a.acas, a.mnist)
    if not a.only_given and not a.no_mlp:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import make_mlp

        for eps in a.mlp_eps.split(","):
            m, s = make_mlp.make(os.path.join(ROOT, "target", "bench-models"), 784, float(eps))
            problems.append(("mlp 6x512", m, s))
    problems += [("given", m, s) for m, s in a.problem]
    if not problems:
        sys.exit("no problems (benchmarks missing? see --benchmarks, --problem)")

    gemm = gemm_rates()
    load0 = os.getloadavg()
    print(f"auto_LiRPA {auto_LiRPA.__version__}, torch {torch.__version__} ({torch.get_num_threads()} thread), "
          f"beacons {a.beacons} (RAYON_NUM_THREADS=1), float64, {os.cpu_count()} cores, "
          f"load {load0[0]:.1f}")
    print(f"float64 GEMM 512^3, one thread: numpy ({gemm['numpy']['blas']}) {gemm['numpy']['gflops']:.2f} GFLOP/s, "
          f"torch {gemm['torch']['gflops']:.2f} GFLOP/s\n")
    hdr = f"{'problem':<44} {'method':<11} {'width ours/theirs':>17} {'margins t/e/l':>13} {'max gain':>9} {'max loss':>9} {'theirs s':>9} {'ours s':>9} {'time ratio':>10}"
    print(hdr)
    print("-" * len(hdr))
    results = []
    nets = {}
    for fam, model, spec in problems:
        if model not in nets:
            nets[model] = Lirpa(model)
        L = nets[model]
        boxes = read_vnnlib(spec, L.n_in, L.n_out)
        name = f"{os.path.basename(model).replace('ACASXU_run2a_', '').replace('_batch_2000', '').replace('.onnx', '')} {os.path.basename(spec).replace('.vnnlib', '')}"
        prob = {"family": fam, "onnx": model, "vnnlib": spec, "name": name, "methods": {}}
        for method in methods:
            if method not in L.warm:
                L.run(method, *boxes[0])
                L.warm.add(method)
            t_runs = [[L.run(method, lo, hi, ds) for lo, hi, ds in boxes] for _ in range(a.repeat)]
            theirs = t_runs[-1]
            t_sec = statistics.median(sum(r["seconds"] for r in run) for run in t_runs)
            beacons(a.beacons, model, spec, method)  # warm-up (file cache)
            o_runs = [beacons(a.beacons, model, spec, method) for _ in range(a.repeat)]
            ours = o_runs[-1]
            o_sec = statistics.median(r["seconds"] for r in o_runs)
            cmp = [compare(o, t) for o, t in zip(ours["regions"], theirs)]
            w_o = np.mean([c["width_ours"] for c in cmp])
            w_t = np.mean([c["width_theirs"] for c in cmp])
            counts = {k: sum(c[k] for c in cmp) for k in ("tighter", "equal", "looser")}
            gain, loss = max(c["max_gain"] for c in cmp), min(c["max_loss"] for c in cmp)
            entry = {
                "width_ours": w_o, "width_theirs": w_t,
                "width_ratio": w_o / w_t if w_t > 0 else float("nan"),
                "margins": counts, "max_gain": gain, "max_loss": loss,
                "seconds_theirs": t_sec, "seconds_ours": o_sec,
                "cpu_seconds_theirs": sum(r["cpu_seconds"] for r in theirs),
                "time_ratio": t_sec / o_sec if o_sec > 0 else float("inf"),
                "theirs": [{k: r[k] for k in ("lower", "upper", "margins")} for r in theirs],
                "ours": [{k: r[k] for k in ("lower", "upper", "margins")} for r in ours["regions"]],
            }
            if method == "crown":
                n_atoms = sum(len(d) for d in boxes[0][2])
                final_unstable, unstable = theirs[0]["unstable"]
                fl = crown_flops(L.layers, unstable, L.n_out, n_atoms)
                fl["final_unstable"] = final_unstable
                ours_fl = 2 * (fl["intermediate"] + fl["final"])
                theirs_fl = 2 * fl["intermediate"] + fl["final"]
                entry["flops"] = dict(fl, unstable=unstable, beacons_flops=ours_fl,
                                      auto_lirpa_flops=theirs_fl,
                                      beacons_gflops=ours_fl / o_sec / 1e9,
                                      auto_lirpa_gflops=theirs_fl / t_sec / 1e9)
            prob["methods"][method] = entry
            print(f"{name[:44]:<44} {LABEL[method]:<11} {fmt_ratio(entry['width_ratio']):>17} "
                  f"{counts['tighter']:>4}/{counts['equal']}/{counts['looser']:<4} {gain:>9.2g} {loss:>9.2g} "
                  f"{t_sec:>9.4f} {o_sec:>9.4f} {entry['time_ratio']:>10.2f}", flush=True)
        results.append(prob)

    # summary
    print("\nSummary (medians over problems; time ratio = auto_LiRPA s / beacons s, > 1: beacons faster;"
          " width ratio = beacons / auto_LiRPA mean output width, < 1: beacons tighter)\n")
    hdr = f"{'family':<16} {'method':<11} {'problems':>8} {'median time ratio':>17} {'min':>6} {'max':>6} {'median width ratio':>18} {'margins tighter/equal/looser':>28}"
    print(hdr)
    print("-" * len(hdr))
    summary = []
    fams = []
    for p in results:
        f = "mnist_fc" if p["family"].startswith("mnist_fc") else p["family"]
        if f not in fams:
            fams.append(f)
    for f in fams:
        ps = [p for p in results if (("mnist_fc" if p["family"].startswith("mnist_fc") else p["family"]) == f)]
        for method in methods:
            es = [p["methods"][method] for p in ps]
            tr = [e["time_ratio"] for e in es]
            wr = [e["width_ratio"] for e in es if np.isfinite(e["width_ratio"])]
            c = {k: sum(e["margins"][k] for e in es) for k in ("tighter", "equal", "looser")}
            row = {"family": f, "method": method, "problems": len(es),
                   "median_time_ratio": statistics.median(tr), "min_time_ratio": min(tr),
                   "max_time_ratio": max(tr),
                   "median_width_ratio": statistics.median(wr) if wr else float("nan"),
                   "margins": c}
            summary.append(row)
            print(f"{f:<16} {LABEL[method]:<11} {len(es):>8} {row['median_time_ratio']:>17.2f} {min(tr):>6.2f} {max(tr):>6.2f} "
                  f"{fmt_ratio(row['median_width_ratio']):>18} {c['tighter']:>12}/{c['equal']}/{c['looser']}")
    flops_rows = [(p["name"], p["methods"]["crown"]["flops"], p["methods"]["crown"]) for p in results
                  if "crown" in p["methods"] and p["family"] not in ("acasxu",) and not p["family"].startswith("mnist_fc")]
    if flops_rows:
        floor = max(gemm["numpy"]["gflops"], gemm["torch"]["gflops"])
        print(f"\nCROWN backward-pass flops (formula: crown_flops) against the float64 GEMM rate {floor:.2f} GFLOP/s")
        for name, fl, e in flops_rows:
            print(f"{name}: neurons unstable per ReLU layer {fl['final_unstable']}, propagated {fl['unstable']}; one CROWN computation "
                  f"{(fl['intermediate'] + fl['final']) / 1e9:.2f} GFLOP (all-neuron intermediates: "
                  f"{(fl['dense_intermediate'] + fl['final']) / 1e9:.2f})")
            print(f"  beacons   {e['seconds_ours']:.3f} s for {fl['beacons_flops'] / 1e9:.2f} GFLOP (2 CROWN computations) = "
                  f"{fl['beacons_gflops']:.2f} GFLOP/s = {100 * fl['beacons_gflops'] / floor:.0f}% of GEMM")
            print(f"  auto_LiRPA {e['seconds_theirs']:.3f} s for {fl['auto_lirpa_flops'] / 1e9:.2f} GFLOP (outputs + margins calls) = "
                  f"{fl['auto_lirpa_gflops']:.2f} GFLOP/s = {100 * fl['auto_lirpa_gflops'] / floor:.0f}% of GEMM")
    for f in fams:
        es = [p["methods"]["crown"]["flops"] for p in results if "crown" in p["methods"]
              and ("mnist_fc" if p["family"].startswith("mnist_fc") else p["family"]) == f]
        if es and f in ("acasxu", "mnist_fc"):
            print(f"{f}: CROWN median {statistics.median(e['beacons_gflops'] for e in es):.2f} GFLOP/s beacons, "
                  f"{statistics.median(e['auto_lirpa_gflops'] for e in es):.2f} GFLOP/s auto_LiRPA (same formula)")
    load1 = os.getloadavg()
    print(f"\nload average {load0[0]:.1f} at start, {load1[0]:.1f} at end (2-core machine: > 1 means contention)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                                   "processor": platform.processor(), "load_start": load0, "load_end": load1,
                                   "date": time.strftime("%Y-%m-%d")},
                       "software": {"auto_LiRPA": auto_LiRPA.__version__, "torch": torch.__version__,
                                    "numpy": np.__version__, "python": platform.python_version()},
                       "gemm": gemm, "repeat": a.repeat, "problems": results, "summary": summary}, f, indent=1)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
