#!/usr/bin/env python3
"""Write the 6x512 ReLU MLP benchmark model and its VNN-LIB box (deterministic).

    python3 benches/make_mlp.py [--out target/bench-models] [--inputs 784] [--eps 0.002]

Needs numpy and onnx (any venv with both). Writes, under --out
(default target/bench-models, not committed):

- mlp_6x512.onnx: input "x" of shape [1, INPUTS]; six hidden layers of 512 ReLU neurons and an
  output layer of 10 logits, each a Gemm (transB=1, weights [out, in]) as PyTorch exports
  nn.Linear; float32 weights drawn He-normal (std sqrt(2/fan_in)) and biases N(0, 0.01^2) with
  numpy's PCG64 generator seeded 2024, so every run writes the same file.
- mlp_6x512_eps<EPS>.vnnlib: the L-inf box of radius EPS around a fixed point c (uniform in
  [0, 1]^INPUTS, same seed), clipped to [0, 1], and the robustness property of mnist_fc's
  files: unsafe if some logit Y_j (j != label) is >= Y_label, label = argmax of the network at c
  (computed in float64) -- one disjunct per j, 9 atoms in all.

The box radius sets how many neurons are unstable. With 0.002 (the default) CROWN's bounds
leave 33 to 105 of each layer's 512 neurons unstable and prove every atom, but the interval
step leaves most unstable, so CROWN still bounds almost every neuron (dense products); with
0.01 the deep layers are entirely unstable and nothing is provable. The comparison harness
uses both.
Prints the two paths.
"""

import argparse
import os

import numpy as np

HIDDEN = [512] * 6
OUTPUTS = 10
SEED = 2024


def build(inputs):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.Generator(np.random.PCG64(SEED))
    sizes = [inputs] + HIDDEN + [OUTPUTS]
    weights, biases, nodes, inits = [], [], [], []
    prev = "x"
    for k in range(len(sizes) - 1):
        fan_in, fan_out = sizes[k], sizes[k + 1]
        w = (rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        weights.append(w)
        biases.append(b)
        inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(b, f"B{k}")]
        out = f"z{k}" if k < len(sizes) - 2 else "y"
        nodes.append(helper.make_node("Gemm", [prev, f"W{k}", f"B{k}"], [out], transB=1))
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [out], [f"h{k}"]))
            prev = f"h{k}"
    graph = helper.make_graph(
        nodes,
        "mlp_6x512",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUTPUTS])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.producer_name = "beacons benches/make_mlp.py"
    model.ir_version = 8
    onnx.checker.check_model(model)
    centre = rng.uniform(0.0, 1.0, inputs)
    return model, weights, biases, centre


def forward(weights, biases, x):
    h = x
    for k, (w, b) in enumerate(zip(weights, biases)):
        h = w.astype(np.float64) @ h + b.astype(np.float64)
        if k < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h


def vnnlib(centre, eps, label):
    lines = [f"; 6x512 ReLU MLP robustness box, eps {eps}, label {label} (benches/make_mlp.py)"]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(centre))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(OUTPUTS)]
    for i, c in enumerate(centre):
        lo, hi = float(max(0.0, c - eps)), float(min(1.0, c + eps))
        lines.append(f"(assert (<= X_{i} {hi!r}))")
        lines.append(f"(assert (>= X_{i} {lo!r}))")
    atoms = [f"    (and (>= Y_{j} Y_{label}))" for j in range(OUTPUTS) if j != label]
    lines.append("(assert (or\n" + "\n".join(atoms) + "\n))")
    return "\n".join(lines) + "\n"


def make(out_dir, inputs=784, eps=0.002):
    """Writes the model and the box under out_dir when missing; returns (onnx, vnnlib) paths."""
    import onnx

    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, "mlp_6x512.onnx" if inputs == 784 else f"mlp_6x512_in{inputs}.onnx")
    spec_path = os.path.join(out_dir, f"{os.path.basename(onnx_path)[:-5]}_eps{eps}.vnnlib")
    if os.path.exists(onnx_path) and os.path.exists(spec_path):
        return onnx_path, spec_path
    model, weights, biases, centre = build(inputs)
    label = int(np.argmax(forward(weights, biases, centre)))
    tmp = onnx_path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, onnx_path)
    with open(spec_path + ".tmp", "w") as f:
        f.write(vnnlib(centre, eps, label))
    os.replace(spec_path + ".tmp", spec_path)
    return onnx_path, spec_path


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "target", "bench-models"))
    ap.add_argument("--inputs", type=int, default=784)
    ap.add_argument("--eps", type=float, default=0.002)
    a = ap.parse_args()
    for p in make(a.out, a.inputs, a.eps):
        print(p)


if __name__ == "__main__":
    main()
