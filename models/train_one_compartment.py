#!/usr/bin/env python3
"""Trains and exports models/one_compartment.onnx, a surrogate of a one-compartment PK model.

What it learns: the plasma concentration (mg/L) after an IV bolus in a one-compartment model
with first-order elimination, over three inputs:

    C(dose, t, k) = dose / V * exp(-k t)          V = 20 L

dose_mg in [50, 200], t_h in [0, 24], k_per_h in [0.05, 0.2]. The closed form is the reference
model specs/references/one_compartment_iv_bolus.toml, against which `beacons error-bound`
certifies the network's worst-case error.
Network: Sub/Div input normalisation, Gemm 3->16, Tanh, Gemm 16->16, Tanh, Gemm 16->1.
Training: full-batch Adam on 4,096 points drawn uniformly from the region, fixed seed, so the
output file is deterministic for a given numpy version.

Only needed to regenerate the model (requires `pip install numpy onnx`); beacons and its
tests use the committed .onnx file.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

V = 20.0
LO = np.array([50.0, 0.0, 0.05])
HI = np.array([200.0, 24.0, 0.2])
SCALE_OUT = 10.0  # targets are learned in units of 10 mg/L, folded back into the last layer


def concentration(x):
    return x[:, 0] / V * np.exp(-x[:, 2] * x[:, 1])


def main():
    rng = np.random.default_rng(20261123)
    x = LO + (HI - LO) * rng.random((4096, 3))
    y = concentration(x)[:, None]
    mean, scale = (LO + HI) / 2, (HI - LO) / 2
    xn = (x - mean) / scale
    sizes = [3, 16, 16, 1]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(0, np.sqrt(1.0 / a), (b, a)), np.zeros(b)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1, b2 = 3e-3, 0.9, 0.999
    for step in range(1, 6001):
        acts = [xn]
        for i in range(0, len(params), 2):
            z = acts[-1] @ params[i].T + params[i + 1]
            acts.append(np.tanh(z) if i + 2 < len(params) else z)
        err = acts[-1] - y / SCALE_OUT
        grad = 2 * err / len(x)
        grads = [None] * len(params)
        for i in range(len(params) - 2, -1, -2):
            grads[i] = grad.T @ acts[i // 2]
            grads[i + 1] = grad.sum(0)
            if i > 0:
                grad = (grad @ params[i]) * (1 - acts[i // 2] ** 2)
        for j, (p, g) in enumerate(zip(params, grads)):
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            p -= lr * (m[j] / (1 - b1**step)) / (np.sqrt(v[j] / (1 - b2**step)) + 1e-8)
    params[-2] = params[-2] * SCALE_OUT
    params[-1] = params[-1] * SCALE_OUT
    rmse = np.sqrt(np.mean((predict(params, xn) - y) ** 2))
    print(f"training RMSE: {rmse:.4f} mg/L")

    f32 = lambda a: np.asarray(a, dtype=np.float32)
    inits = [
        numpy_helper.from_array(f32(mean), "input_mean"),
        numpy_helper.from_array(f32(scale), "input_scale"),
    ]
    nodes = [
        helper.make_node("Sub", ["input", "input_mean"], ["centred"], name="normalise_sub"),
        helper.make_node("Div", ["centred", "input_scale"], ["normalised"], name="normalise_div"),
    ]
    prev = "normalised"
    for li, i in enumerate(range(0, len(params), 2)):
        inits += [
            numpy_helper.from_array(f32(params[i]), f"layers.{li}.weight"),
            numpy_helper.from_array(f32(params[i + 1]), f"layers.{li}.bias"),
        ]
        out = f"gemm_{li}" if i + 2 < len(params) else "concentration_mg_per_l"
        nodes.append(
            helper.make_node(
                "Gemm", [prev, f"layers.{li}.weight", f"layers.{li}.bias"], [out],
                name=f"Gemm_{li}", alpha=1.0, beta=1.0, transB=1,
            )
        )
        if i + 2 < len(params):
            nodes.append(helper.make_node("Tanh", [out], [f"tanh_{li}"], name=f"Tanh_{li}"))
            prev = f"tanh_{li}"
    graph = helper.make_graph(
        nodes,
        "one_compartment",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("concentration_mg_per_l", TensorProto.FLOAT, ["batch", 1])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="beacons/models/train_one_compartment.py"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    here = os.path.dirname(os.path.abspath(__file__))
    onnx.save(model, os.path.join(here, "one_compartment.onnx"))


def predict(params, xn):
    a = xn
    for i in range(0, len(params), 2):
        a = a @ params[i].T + params[i + 1]
        if i + 2 < len(params):
            a = np.tanh(a)
    return a


if __name__ == "__main__":
    main()
