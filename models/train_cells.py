#!/usr/bin/env python3
"""Trains and exports the two cell-biology examples beacons ships (PyTorch, CPU, deterministic):

  models/cell_type.onnx   cell-type classifier on single-cell expression: an MLP with BatchNorm
                          200 gene counts -> BN(200) -> Gemm 64 -> BN(64) -> Relu -> Gemm 32
                          -> BN(32) -> Relu -> Gemm 3 (logits of type0, type1, type2)
  models/cell_image.onnx  nucleus-shape classifier on 28x28 fluorescence crops: a small CNN
                          Div 255 -> Conv 8@3x3/2 -> Relu -> Conv 16@3x3/2 -> Relu -> Flatten
                          -> Gemm 32 -> Relu -> Gemm 3 (logits of round, elongated, multilobed)

Data comes from `beacons synth`: `scenarios/synth_single_cell.toml` (Splatter-style counts of
200 genes, three cell types, two technical batches; 6,000 training cells with seed 31 and 2,000
held out with seed 32) and `scenarios/synth_cell_image.toml` (Poisson-Gaussian camera images of
round, elongated and multilobed nuclei; 6,000 with seed 41, 2,000 held out with seed 42). Both
networks take physical units (counts, camera ADU): the count standardisation is the first
BatchNorm, the image scaling the Div node, so bindings need no normalisation.

Training: Adam, fixed seeds, one thread, `torch.use_deterministic_algorithms(True)`. The ONNX
files are written by this script with the `onnx` helpers (not `torch.onnx.export`), so the
graph is exactly the one documented above: BatchNormalization nodes stay in the graph (in
inference mode), nothing is fused, and the bytes are reproducible for a given torch version.

The cell-type model is trained with batch-effect augmentation (each gene scaled by
exp(0.3 z) per batch and sample group), as a careful analyst would, so that it stays accurate
on a new sequencing batch; the image model sees random brightness and contrast changes.

Usage: python3 models/train_cells.py [--beacons target/release/beacons] [--force]
(requires torch, numpy and onnx; `pip install torch numpy onnx`).
"""
import argparse
import csv
import os
import subprocess
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cohort(beacons, scenario, n, seed):
    """Samples (physical units), integer labels and batch indices (or None) from beacons synth."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "c.csv")
        subprocess.run([beacons, "synth", os.path.join(ROOT, "scenarios", scenario),
                        "--out", out, "--n", str(n), "--seed", str(seed)],
                       check=True, capture_output=True)
        with open(out) as f:
            r = csv.reader(f)
            header = next(r)
            rows = [[float(v) for v in row] for row in r]
    a = np.array(rows)
    lab = header.index("label")
    batch = a[:, header.index("batch")].astype(int) if "batch" in header else None
    return a[:, :lab], a[:, lab].astype(int), batch


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def fit(model, x, y, epochs, seed, augment=None, lr=2e-3, batch=128):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.tensor(f32(x)), torch.tensor(y)
    n = len(xt)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb = xt[idx]
            if augment is not None:
                xb = augment(xb, g)
            loss = torch.nn.functional.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(torch.tensor(f32(x))).argmax(1).numpy() == y).mean())


def save(graph, path, doc, producer):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name=producer)
    model.ir_version = 8
    model.doc_string = doc
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


# ---------------------------------------------------------------- cell types (MLP with BatchNorm)

def cell_type_net():
    return torch.nn.Sequential(
        torch.nn.BatchNorm1d(200),
        torch.nn.Linear(200, 64), torch.nn.BatchNorm1d(64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
        torch.nn.Linear(32, 3))


def batch_effect(xb, g):
    """Each gene scaled by exp(0.3 z), one z per gene shared by a group of 32 cells, and every
    count moved by up to one (uniform), so that no call hinges on a single read."""
    z = torch.randn((1 + (len(xb) - 1) // 32, xb.shape[1]), generator=g) * 0.3
    jitter = 2.0 * torch.rand(xb.shape, generator=g) - 1.0
    return xb * torch.exp(z).repeat_interleave(32, 0)[:len(xb)] + jitter


def export_cell_type(net, path, doc):
    bn0, l1, bn1, _, l2, bn2, _, l3 = net
    inits, nodes = [], []

    def bn(m, x, out, name):
        inits.extend([numpy_helper.from_array(f32(m.weight.detach()), f"{name}_scale"),
                      numpy_helper.from_array(f32(m.bias.detach()), f"{name}_bias"),
                      numpy_helper.from_array(f32(m.running_mean), f"{name}_mean"),
                      numpy_helper.from_array(f32(m.running_var), f"{name}_var")])
        nodes.append(helper.make_node(
            "BatchNormalization",
            [x, f"{name}_scale", f"{name}_bias", f"{name}_mean", f"{name}_var"], [out],
            epsilon=m.eps))

    def gemm(m, x, out, name):
        inits.extend([numpy_helper.from_array(f32(m.weight.detach()), f"{name}_w"),
                      numpy_helper.from_array(f32(m.bias.detach()), f"{name}_b")])
        nodes.append(helper.make_node("Gemm", [x, f"{name}_w", f"{name}_b"], [out], transB=1))

    bn(bn0, "counts", "standardised", "bn0")
    gemm(l1, "standardised", "z1", "fc1")
    bn(bn1, "z1", "n1", "bn1")
    nodes.append(helper.make_node("Relu", ["n1"], ["a1"]))
    gemm(l2, "a1", "z2", "fc2")
    bn(bn2, "z2", "n2", "bn2")
    nodes.append(helper.make_node("Relu", ["n2"], ["a2"]))
    gemm(l3, "a2", "logits", "fc3")
    g = helper.make_graph(nodes, "cell_type",
                          [helper.make_tensor_value_info("counts", TensorProto.FLOAT, [1, 200])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
                          inits)
    save(g, path, doc, "beacons/models/train_cells.py")


# ------------------------------------------------------------------------- cell images (CNN)

def cell_image_net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 6 * 6, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 3))


class Scaled(torch.nn.Module):
    """ADU in, the network on ADU / 255."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.reshape(-1, 1, 28, 28) / 255.0)


def brightness(xb, g):
    """Per image: gain in [0.8, 1.2] and offset in [-10, 10] ADU."""
    n = len(xb)
    gain = 0.8 + 0.4 * torch.rand((n, 1), generator=g)
    off = -10.0 + 20.0 * torch.rand((n, 1), generator=g)
    return xb * gain + off


def export_cell_image(net, path, doc):
    c1, _, c2, _, _, l1, _, l2 = net
    inits = [numpy_helper.from_array(np.array(255.0, dtype=np.float32), "adu_scale"),
             numpy_helper.from_array(np.array([-1, 16 * 6 * 6], dtype=np.int64), "flat")]
    nodes = [helper.make_node("Div", ["image", "adu_scale"], ["x0"])]
    prev = "x0"
    for k, c in enumerate([c1, c2], start=1):
        inits += [numpy_helper.from_array(f32(c.weight.detach()), f"conv{k}_w"),
                  numpy_helper.from_array(f32(c.bias.detach()), f"conv{k}_b")]
        nodes.append(helper.make_node("Conv", [prev, f"conv{k}_w", f"conv{k}_b"], [f"c{k}"],
                                      kernel_shape=[3, 3], strides=[2, 2]))
        nodes.append(helper.make_node("Relu", [f"c{k}"], [f"r{k}"]))
        prev = f"r{k}"
    nodes.append(helper.make_node("Reshape", [prev, "flat"], ["flat_out"]))
    prev = "flat_out"
    for k, l in enumerate([l1, l2], start=1):
        inits += [numpy_helper.from_array(f32(l.weight.detach()), f"fc{k}_w"),
                  numpy_helper.from_array(f32(l.bias.detach()), f"fc{k}_b")]
        out = "logits" if k == 2 else f"z{k}"
        nodes.append(helper.make_node("Gemm", [prev, f"fc{k}_w", f"fc{k}_b"], [out], transB=1))
        prev = out
        if k == 1:
            nodes.append(helper.make_node("Relu", [prev], ["a1"]))
            prev = "a1"
    g = helper.make_graph(
        nodes, "cell_image",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
    save(g, path, doc, "beacons/models/train_cells.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--beacons", default=os.path.join(ROOT, "target/release/beacons"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--only", choices=["cell_type", "cell_image"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    if args.only in (None, "cell_type"):
        path = os.path.join(ROOT, "models", "cell_type.onnx")
        if os.path.exists(path) and not args.force:
            raise SystemExit(f"{path} exists; pass --force to overwrite")
        x, y, _ = cohort(args.beacons, "synth_single_cell.toml", 6000, 31)
        xt, yt, bt = cohort(args.beacons, "synth_single_cell.toml", 2000, 32)
        torch.manual_seed(5)
        net = fit(cell_type_net(), x, y, 30, 6, augment=batch_effect)
        acc = accuracy(net, xt, yt)
        doc = (f"cell_type: 200-gene single-cell expression -> 3 cell types, MLP with "
               f"BatchNorm; held-out accuracy {acc:.3f}")
        export_cell_type(net, path, doc)
        print(doc)

    if args.only in (None, "cell_image"):
        path = os.path.join(ROOT, "models", "cell_image.onnx")
        if os.path.exists(path) and not args.force:
            raise SystemExit(f"{path} exists; pass --force to overwrite")
        x, y, _ = cohort(args.beacons, "synth_cell_image.toml", 6000, 41)
        xt, yt, _ = cohort(args.beacons, "synth_cell_image.toml", 2000, 42)
        torch.manual_seed(7)
        net = cell_image_net()
        fit(Scaled(net), x, y, 20, 8, augment=brightness)
        acc = accuracy(Scaled(net), xt, yt)
        doc = (f"cell_image: 28x28 nucleus crops (ADU) -> round / elongated / multilobed, "
               f"small CNN; held-out accuracy {acc:.3f}")
        export_cell_image(net, path, doc)
        print(doc)


if __name__ == "__main__":
    main()
