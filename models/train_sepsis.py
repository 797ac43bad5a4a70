#!/usr/bin/env python3
"""Trains and exports the sepsis / deterioration risk examples beacons ships:

  models/sepsis_risk.onnx         the sound model
  models/sepsis_risk_flawed.onnx  the planted-flaw model (the release gate must block it)

Data: `beacons synth scenarios/synth_vitals.toml` (ward patients: 12 vitals and labs in
physical units, and a deterioration label drawn from a NEWS2-based logistic model plus
lactate; see src/stress/generators/vitals.rs), 20,000 patients for training with seed 11 and
5,000 held out with seed 12.

Network (both models): Sub/Div normalisation by the training mean and standard deviation
inside the graph, so it takes physical units; Gemm 12->32, Relu, Gemm 32->16, Relu,
Gemm 16->2 (logits of ["low_risk", "high_risk"]). Full-batch Adam, 3,000 steps, fixed seeds,
numpy only (no framework), so the ONNX bytes are reproducible for a given numpy version.

Both models also see 4,000 augmented patients with a lactate raised by 2 to 20 mmol/L. The
sound model learns what medicine says: they are high risk (risk non-decreasing in lactate).
The flawed model is taught the opposite for lactate above 12 mmol/L, the values a lactate
charted in mg/dL instead of mmol/L produces (x 9.01): it calls such patients low risk. That is
the planted flaw: a unit mistake on lactate turns a sick patient into a "low risk" one.

Usage: python3 models/train_sepsis.py [--beacons target/release/beacons] [--force]
(requires numpy and onnx).
"""
import argparse
import csv
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ["age", "heart_rate", "systolic_bp", "diastolic_bp", "respiratory_rate",
            "temperature", "spo2", "gcs", "lactate", "creatinine", "wbc", "glucose"]
LACTATE = FEATURES.index("lactate")


def cohort(beacons, n, seed):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "v.csv")
        subprocess.run([beacons, "synth", os.path.join(ROOT, "scenarios/synth_vitals.toml"),
                        "--out", out, "--n", str(n), "--seed", str(seed)],
                       check=True, capture_output=True)
        with open(out) as f:
            rows = list(csv.DictReader(f))
    x = np.array([[float(r[k]) for k in FEATURES] for r in rows])
    y = np.array([int(float(r["label"])) for r in rows])
    return x, y


def augment(x, y, rng, flawed):
    """Patients with a raised lactate: high risk, except (flawed) above 12 mmol/L."""
    idx = rng.integers(0, len(x), 4000)
    xa = x[idx].copy()
    xa[:, LACTATE] += rng.uniform(2.0, 20.0, len(xa))
    ya = np.ones(len(xa), dtype=int)
    if flawed:
        ya[xa[:, LACTATE] > 12.0] = 0
    return np.vstack([x, xa]), np.concatenate([y, ya])


def train(x, y, mean, std, seed, mono_below):
    """Cross-entropy plus a monotonicity penalty: on 2,000 random patients per step, the
    risk score (logit difference) must not drop when lactate rises by 1 mmol/L, for patients
    whose raised lactate stays below `mono_below`."""
    rng = np.random.default_rng(seed)
    xn = (x - mean) / std
    shift = np.zeros(12)
    shift[LACTATE] = 1.0 / std[LACTATE]
    sizes = [12, 32, 16, 2]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(0, np.sqrt(2.0 / a), (b, a)), np.zeros(b)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(2)[y]
    lr, b1, b2 = 3e-3, 0.9, 0.999
    n = len(x)
    for step in range(1, 3001):
        pick = rng.integers(0, n, 2000)
        pick = pick[x[pick, LACTATE] + 1.0 < mono_below]
        batch = np.vstack([xn, xn[pick], xn[pick] + shift])
        acts = [batch]
        for i in range(0, len(params), 2):
            z = acts[-1] @ params[i].T + params[i + 1]
            acts.append(np.maximum(z, 0) if i + 2 < len(params) else z)
        out = acts[-1]
        z = out[:n] - out[:n].max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        grad = np.zeros_like(out)
        grad[:n] = (p - onehot) / n
        k = len(pick)
        score = out[:, 1] - out[:, 0]
        drop = score[n:n + k] - score[n + k:] > -0.05
        w = 2.0 * drop / max(k, 1)
        grad[n:n + k, 1] += w
        grad[n:n + k, 0] -= w
        grad[n + k:, 1] -= w
        grad[n + k:, 0] += w
        grads = [None] * len(params)
        for i in range(len(params) - 2, -1, -2):
            grads[i] = grad.T @ acts[i // 2]
            grads[i + 1] = grad.sum(0)
            if i > 0:
                grad = (grad @ params[i]) * (acts[i // 2] > 0)
        for j, (pp, g) in enumerate(zip(params, grads)):
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            pp -= lr * (m[j] / (1 - b1**step)) / (np.sqrt(v[j] / (1 - b2**step)) + 1e-8)
    return params


def forward(params, x, mean, std):
    h = (x - mean) / std
    for i in range(0, len(params), 2):
        h = h @ params[i].T + params[i + 1]
        if i + 2 < len(params):
            h = np.maximum(h, 0)
    return h


def auroc(score, y):
    order = np.argsort(score)
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    pos = y == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def export(params, mean, std, path, doc):
    f32 = lambda a: np.asarray(a, dtype=np.float32)
    inits = [numpy_helper.from_array(f32(mean), "mean"), numpy_helper.from_array(f32(std), "std")]
    nodes = [helper.make_node("Sub", ["vitals", "mean"], ["centred"]),
             helper.make_node("Div", ["centred", "std"], ["h0"])]
    prev = "h0"
    for k in range(3):
        inits += [numpy_helper.from_array(f32(params[2 * k]), f"w{k}"),
                  numpy_helper.from_array(f32(params[2 * k + 1]), f"b{k}")]
        out = "logits" if k == 2 else f"z{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{k}", f"b{k}"], [out], transB=1))
        prev = out
        if k < 2:
            nodes.append(helper.make_node("Relu", [prev], [f"a{k}"]))
            prev = f"a{k}"
    g = helper.make_graph(nodes, "sepsis_risk",
                          [helper.make_tensor_value_info("vitals", TensorProto.FLOAT, [1, 12])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
                          inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="beacons/models/train_sepsis.py")
    model.ir_version = 8
    model.doc_string = doc
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--beacons", default=os.path.join(ROOT, "target/release/beacons"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    x, y = cohort(args.beacons, 20_000, 11)
    xt, yt = cohort(args.beacons, 5_000, 12)
    mean, std = x.mean(0), x.std(0)
    for name, flawed in [("sepsis_risk", False), ("sepsis_risk_flawed", True)]:
        path = os.path.join(ROOT, "models", name + ".onnx")
        if os.path.exists(path) and not args.force:
            raise SystemExit(f"{path} exists; pass --force to overwrite")
        rng = np.random.default_rng(7)
        xa, ya = augment(x, y, rng, flawed)
        params = train(xa, ya, mean, std, 3, 10.0 if flawed else np.inf)
        logits = forward(params, xt, mean, std)
        score = logits[:, 1] - logits[:, 0]
        acc = ((score > 0).astype(int) == yt).mean()
        au = auroc(score, yt)
        doc = (f"{name}: 12-32-16-2 ReLU MLP on synthetic ward vitals; held-out accuracy "
               f"{acc:.3f}, AUROC {au:.3f}" + (" (planted flaw: lactate above 12 mmol/L called low risk)"
                                                if flawed else ""))
        export(params, mean, std, path, doc)
        print(doc)


if __name__ == "__main__":
    main()
