#!/usr/bin/env python3
"""Stress-tester throughput: beacons' batched f32 forward pass vs onnxruntime's Python API,
on the same networks and the same input batches, measured in one run.

1. Runs `cargo bench --bench stress_throughput -- --export DIR --json` (release): beacons
   generates 1,000,000 vitals samples and 100,000 cell images, times `eval::forward_f32` on
   a 12-64-64-2 MLP (batches of 10,000) and a small CNN (batches of 1,000), and writes the
   weights, the exact f32 input batches and its first outputs to DIR.
2. Builds the same networks as ONNX from those weights, runs onnxruntime (CPU, all cores,
   graph optimisations on) on the same batches, best of 3 (MLP) / 2 (CNN) runs, and checks
   its outputs against beacons' (max abs difference).

Setup (optional Python): python3 -m venv /work/venv-ort && /work/venv-ort/bin/pip install
onnxruntime onnx numpy; then /work/venv-ort/bin/python benches/compare_onnxruntime.py
[--dir DIR] [--skip-rust] [--rounds N] [--threads N]. Environment: BEACONS_STRESS_MLP_SAMPLES / _CNN_SAMPLES shrink the
workload; CARGO_TARGET_DIR is honoured.
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(d, name):
    return np.load(os.path.join(d, name + ".npy"))


def f32(a):
    return np.asarray(a, dtype=np.float32)


def mlp_model(d):
    inits, nodes, prev = [], [], "x"
    for k in range(3):
        inits += [numpy_helper.from_array(f32(load(d, f"mlp_w{k}")), f"w{k}"),
                  numpy_helper.from_array(f32(load(d, f"mlp_b{k}")), f"b{k}")]
        out = f"h{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{k}", f"b{k}"], [out], transB=1))
        prev = out
        if k < 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{k}"]))
            prev = f"r{k}"
    return graph(nodes, inits, "x", [None, 12], prev, [None, 2])


def cnn_model(d):
    inits, nodes, prev = [], [], "x"
    for k in range(2):
        inits += [numpy_helper.from_array(f32(load(d, f"cnn_c{k}")), f"c{k}"),
                  numpy_helper.from_array(f32(load(d, f"cnn_cb{k}")), f"cb{k}")]
        nodes += [helper.make_node("Conv", [prev, f"c{k}", f"cb{k}"], [f"conv{k}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"conv{k}"], [f"relu{k}"]),
                  helper.make_node("MaxPool", [f"relu{k}"], [f"pool{k}"], kernel_shape=[2, 2], strides=[2, 2])]
        prev = f"pool{k}"
    inits += [numpy_helper.from_array(f32(load(d, "cnn_fw")), "fw"),
              numpy_helper.from_array(f32(load(d, "cnn_fb")), "fb")]
    nodes += [helper.make_node("Flatten", [prev], ["flat"]),
              helper.make_node("Gemm", ["flat", "fw", "fb"], ["logits"], transB=1)]
    return graph(nodes, inits, "x", [None, 1, 28, 28], "logits", [None, 3])


def graph(nodes, inits, inp, ishape, out, oshape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(inp, TensorProto.FLOAT, ishape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, oshape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def time_ort(model, x, batch, reps, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x[:batch]})  # warm-up
    best, outs = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        outs = [sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        best = min(best, time.perf_counter() - t)
    return len(x) / best, np.concatenate(outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "stress-throughput"))
    ap.add_argument("--skip-rust", action="store_true", help="reuse DIR and rust.json from a previous run")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate beacons and onnxruntime this many times and keep each side's best "
                         "(both then see the same machine load)")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads of both sides (RAYON_NUM_THREADS / intra_op_num_threads); 0: all cores")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    rust_json = os.path.join(args.dir, "rust.json")
    env = dict(os.environ)
    if args.threads:
        env["RAYON_NUM_THREADS"] = str(args.threads)
    nets = [("mlp", mlp_model, 10_000, 3), ("cnn", cnn_model, 1_000, 2)]
    best_rust, best_ort, diffs, rust = {}, {}, {}, None
    for rnd in range(max(1, args.rounds)):
        if not args.skip_rust:
            cmd = ["cargo", "bench", "--bench", "stress_throughput", "--"]
            cmd += (["--export", args.dir] if rnd == 0 else []) + ["--json"]
            out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
            line = [l for l in out.splitlines() if l.startswith("{")][-1]
            with open(rust_json, "w") as f:
                f.write(line)
        with open(rust_json) as f:
            rust = json.load(f)
        for name, build, batch, reps in nets:
            best_rust[name] = max(best_rust.get(name, 0.0), rust[name]["samples_per_s"])
            x = load(args.dir, f"{name}_x")
            rate, out = time_ort(build(args.dir), x, batch, reps, args.threads)
            best_ort[name] = max(best_ort.get(name, 0.0), rate)
            ref = load(args.dir, f"{name}_out")
            diffs[name] = float(np.max(np.abs(out[:len(ref)] - ref)))
    rows = []
    for name, _, batch, _ in nets:
        n = len(load(args.dir, f"{name}_x"))
        b, o = best_rust[name], best_ort[name]
        rows.append((name, n, batch, b, o, b / o, diffs[name]))
    ort_threads = args.threads or "default intra-op"
    print(f"threads: beacons {rust['threads']} (rayon), onnxruntime {ort_threads}; onnxruntime {ort.__version__}; "
          f"best of {max(1, args.rounds)} alternating rounds per side")
    print(f"{'net':<4} {'samples':>9} {'batch':>6} {'beacons/s':>12} {'onnxruntime/s':>14} {'ratio':>6} {'max |diff|':>11}")
    for n, s, bt, b, o, r, d in rows:
        print(f"{n:<4} {s:>9} {bt:>6} {b:>12.0f} {o:>14.0f} {r:>6.2f} {d:>11.2e}")
    print(json.dumps({"rows": [dict(zip(["net", "samples", "batch", "beacons_per_s", "onnxruntime_per_s", "ratio", "max_abs_diff"], r)) for r in rows]}))


if __name__ == "__main__":
    main()
