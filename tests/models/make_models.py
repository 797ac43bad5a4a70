#!/usr/bin/env python3
"""Builds the small ONNX test models in this folder (and bad/ for error tests).

Only needed to REGENERATE the committed .onnx files; the Rust tests never run it.
Requires the `onnx` and `numpy` Python packages:  python3 tests/models/make_models.py

Every model is deterministic (fixed seeds, float32 weights) and a few KB at most. Together
they cover every operator the importer supports, both PyTorch exporter shapes (Flatten + Gemm
and MatMul + Add), opsets 8/9/11/13/21 where attributes moved to inputs, and symbolic batches.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")
IR_FOR_OPSET = {8: 3, 9: 4, 11: 6, 13: 7, 21: 10}


class Builder:
    """Collects nodes and initializers for one graph."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.count = 0

    def weight(self, name, *shape, scale=0.5):
        a = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(a, name))
        return name

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, n_out=1, name=None, **attrs):
        self.count += 1
        outs = [f"{op.lower()}{self.count}" + (f"_{i}" if i else "") for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name or "", **attrs))
        return outs[0] if n_out == 1 else outs


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def save(b, fname, inputs, outputs, opset, producer="beacons-make_models", folder=HERE, check=True):
    if IR_FOR_OPSET.get(opset, 7) < 4:
        # IR version 3 (MATLAB, old exporters) lists every initializer as a graph input too.
        inputs = inputs + [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in b.inits]
    graph = helper.make_graph(b.nodes, os.path.splitext(fname)[0], inputs, outputs, b.inits)
    model = helper.make_model(
        graph,
        producer_name=producer,
        producer_version="1",
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=IR_FOR_OPSET.get(opset, 7),
    )
    if check:
        onnx.checker.check_model(model, full_check=True)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, fname), "wb") as f:
        f.write(model.SerializeToString())
    return model


def fc_gemm_relu():
    """(a) PyTorch nn.Sequential(Flatten, Linear, ReLU, Linear), opset 9, input [1, 6, 1]."""
    b = Builder(1)
    f = b.node("Flatten", ["x"], axis=1)
    h = b.node("Gemm", [f, b.weight("l0.weight", 5, 6), b.weight("l0.bias", 5)], alpha=1.0, beta=1.0, transB=1)
    h = b.node("Relu", [h])
    y = b.node("Gemm", [h, b.weight("l2.weight", 3, 5), b.weight("l2.bias", 3)], alpha=1.0, beta=1.0, transB=1)
    save(b, "fc_gemm_relu.onnx", [tensor("x", [1, 6, 1])], [tensor(y, [1, 3])], 9, producer="pytorch")


def matmul_add_relu():
    """(b) MATLAB / PyTorch "MatMul + Add" shape with input normalisation, opset 8."""
    b = Builder(2)
    s = b.node("Sub", ["x", b.weight("avg", 1, 1, 1, 4)])
    f = b.node("Flatten", [s], axis=1)
    h = b.node("MatMul", [f, b.weight("W1", 4, 6)])
    h = b.node("Add", [h, b.weight("B1", 6)])
    h = b.node("Relu", [h])
    h = b.node("MatMul", [h, b.weight("W2", 6, 3)])
    y = b.node("Add", [b.weight("B2", 3), h])  # bias first, as some exporters write it
    save(b, "matmul_add_relu.onnx", [tensor("x", [1, 1, 1, 4])], [tensor(y, [1, 3])], 8, producer="MATLAB")


def gemm_alpha_beta():
    """(c) Gemm with alpha, beta != 1 and transA; a row bias C and a full C."""
    b = Builder(3)
    h = b.node("Gemm", ["x", b.weight("B", 3, 4, scale=2), b.weight("C", 1, 4)], alpha=0.3, beta=2.5, transA=1)
    h = b.node("Relu", [h])
    y = b.node("Gemm", [h, b.weight("B2", 2, 4, scale=2), b.weight("C2", 1, 2)], alpha=-1.75, beta=0.1, transB=1)
    y = b.node("Gemm", [y, b.weight("B3", 2, 2, scale=2)], alpha=1.0)  # no C at all
    save(b, "gemm_alpha_beta.onnx", [tensor("x", [3, 1])], [tensor(y, [1, 2])], 13)


def cnn():
    """(d) Conv (stride 2, padding, dilation, groups) + BatchNormalization + pools + Gemm."""
    b = Builder(4)
    c = b.node("Conv", ["x", b.weight("c1.w", 4, 3, 3, 3), b.weight("c1.b", 4)], strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    bn = b.node("BatchNormalization", [c, b.weight("bn.s", 4), b.weight("bn.b", 4), b.weight("bn.m", 4),
                                       b.const("bn.v", np.abs(b.rng.standard_normal(4)).astype(np.float32) + 0.5)], epsilon=1e-3)
    h = b.node("Relu", [bn])
    c = b.node("Conv", [h, b.weight("c2.w", 4, 2, 3, 3)], dilations=[2, 2], group=2, pads=[1, 1, 1, 1])
    h = b.node("Relu", [c])
    h = b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[1, 1])
    h = b.node("AveragePool", [h], kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)
    h = b.node("GlobalAveragePool", [h])
    f = b.node("Flatten", [h])
    y = b.node("Gemm", [f, b.weight("fc.w", 3, 4), b.weight("fc.b", 3)], transB=1)
    save(b, "cnn.onnx", [tensor("x", ["N", 3, 9, 9])], [tensor(y, ["N", 3])], 13)


def cnn_same():
    """(d') auto_pad SAME_UPPER / SAME_LOWER / VALID, MaxPool ceil_mode, AveragePool without pad counting."""
    b = Builder(5)
    c = b.node("Conv", ["x", b.weight("w1", 2, 1, 3, 3)], strides=[2, 2], auto_pad="SAME_UPPER")
    h = b.node("Relu", [c])
    c = b.node("Conv", [h, b.weight("w2", 2, 2, 2, 2), b.weight("b2", 2)], auto_pad="SAME_LOWER")
    h = b.node("Tanh", [c])
    h = b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    h = b.node("AveragePool", [h], kernel_shape=[2, 2], pads=[0, 0, 1, 1], count_include_pad=0)
    c = b.node("Conv", [h, b.weight("w3", 1, 2, 1, 1)], auto_pad="VALID")
    f = b.node("Flatten", [c])
    save(b, "cnn_same.onnx", [tensor("x", [1, 1, 7, 7])], [tensor(f, [1, 4])], 11)


def residual():
    """(e) A residual block: Add and Sub of two computed tensors."""
    b = Builder(6)
    h = b.node("Gemm", ["x", b.weight("w1", 6, 6), b.weight("b1", 6)], transB=1)
    h = b.node("Relu", [h])
    h = b.node("Gemm", [h, b.weight("w2", 6, 6), b.weight("b2", 6)], transB=1)
    r = b.node("Add", ["x", h])
    r = b.node("Relu", [r])
    g = b.node("MatMul", [r, b.weight("w3", 6, 6)])
    d = b.node("Sub", [g, r])
    y = b.node("Gemm", [d, b.weight("w4", 2, 6), b.weight("b4", 2)], transB=1)
    save(b, "residual.onnx", [tensor("x", ["batch", 6])], [tensor(y, ["batch", 2])], 13)


def elementwise():
    """(f) LeakyRelu / Sigmoid / Tanh and Add / Sub / Mul / Div with constants on either side."""
    b = Builder(7)
    h = b.node("Mul", ["x", b.weight("m", 5)])
    h = b.node("Add", [b.weight("a", 1, 5), h])
    h = b.node("Sub", [h, b.const("s", np.float32(0.25))])
    h = b.node("LeakyRelu", [h], alpha=0.2)
    h = b.node("Sub", [b.weight("s2", 5), h])
    h = b.node("Div", [h, b.const("d", np.array([2.0, -4.0, 0.5, 3.0, 10.0], np.float32))])
    h = b.node("Sigmoid", [h])
    h = b.node("Mul", [b.const("m2", np.float32(3.0)), h])
    h = b.node("Tanh", [h])
    h = b.node("LeakyRelu", [h])  # default alpha 0.01
    y = b.node("Add", [h, h])
    save(b, "elementwise.onnx", [tensor("x", [1, 5])], [tensor(y, [1, 5])], 13)


def shape_plumbing(opset):
    """(g) PyTorch `x.view(x.size(0), -1)` plumbing plus Cast, Squeeze, Identity, Dropout,
    Constant, ConstantOfShape, Slice and Transpose; axes as attributes before 13, inputs after."""
    b = Builder(8)
    x = b.node("Identity", ["x"])
    x = b.node("Dropout", [x], **({"ratio": 0.5} if opset < 12 else {}))
    s = b.node("Shape", [x])
    n = b.node("Gather", [s, b.node("Constant", [], value=numpy_helper.from_array(np.array(0, np.int64)))], axis=0)
    if opset < 13:
        n = b.node("Unsqueeze", [n], axes=[0])
    else:
        n = b.node("Unsqueeze", [n, b.const("ax0", np.array([0], np.int64))])
    minus = b.node("Constant", [], value_ints=[-1]) if opset >= 12 else b.const("minus1", np.array([-1], np.int64))
    shp = b.node("Concat", [n, minus], axis=0)
    shp = b.node("Cast", [shp], to=TensorProto.INT64)
    h = b.node("Reshape", [x, shp])  # [1, 24]
    if opset < 13:
        h = b.node("Unsqueeze", [h], axes=[1])
        h = b.node("Squeeze", [h], axes=[1])
    else:
        h = b.node("Unsqueeze", [h, b.const("ax1", np.array([1], np.int64))])
        h = b.node("Squeeze", [h, b.const("ax1b", np.array([1], np.int64))])
    h = b.node("Cast", [h], to=TensorProto.FLOAT)
    h = b.node("MatMul", [h, b.weight("w", 24, 4)])
    # A bias built by constant folding: ConstantOfShape(Slice(Shape(h))) + Constant floats.
    hs = b.node("Shape", [h])
    if opset < 10:
        last = b.node("Slice", [hs], starts=[1], ends=[2], axes=[0])
    else:
        last = b.node("Slice", [hs, b.const("st", np.array([-1], np.int64)), b.const("en", np.array([100], np.int64))])
    ones = b.node("ConstantOfShape", [last], value=numpy_helper.from_array(np.array([0.5], np.float32)))
    fl = [0.1, -0.2, 0.3, -0.4]
    fl = b.node("Constant", [], value_floats=fl) if opset >= 12 else b.const("fl", np.array(fl, np.float32))
    bias = b.node("Add", [ones, fl])
    h = b.node("Add", [h, bias])
    h = b.node("Relu", [h])
    t = b.node("Transpose", [h], perm=[1, 0])
    t = b.node("Mul", [t, b.node("Constant", [], value_float=1.5) if opset >= 12 else b.const("k", np.float32(1.5))])
    y = b.node("Transpose", [t])
    save(b, f"shape_plumbing_opset{opset}.onnx", [tensor("x", ["N", 2, 3, 4])], [tensor(y, ["N", 4])], opset, producer="pytorch")


def reshape_variants(opset):
    """(i) The same small network in opsets 9, 13 and 21: Reshape with 0 and -1 (allowzero=0
    written explicitly from 14), Unsqueeze with a negative axis, Squeeze (without axes from
    13), Dropout (ratio attribute before 12)."""
    b = Builder(9)
    h = b.node("Reshape", ["x", b.const("s1", np.array([0, 2, -1], np.int64))], **({"allowzero": 0} if opset >= 14 else {}))
    if opset < 13:
        h = b.node("Unsqueeze", [h], axes=[-1])
    else:
        h = b.node("Unsqueeze", [h, b.const("ax", np.array([-1], np.int64))])
    if opset < 13:
        # tract 0.23 insists on `axes` before opset 13 (ONNX does not), so spell them out here.
        h = b.node("Squeeze", [h], axes=[0, 3])
    else:
        h = b.node("Squeeze", [h])  # all unit axes: [1, 2, 3, 1] -> [2, 3]
    h = b.node("Dropout", [h], **({"ratio": 0.1} if opset < 12 else {}))
    h = b.node("Gemm", [h, b.weight("w", 3, 4), b.weight("c", 4)])
    h = b.node("Reshape", [h, b.const("s2", np.array([1, -1], np.int64))])
    y = b.node("Sigmoid", [h])
    save(b, f"reshape_opset{opset}.onnx", [tensor("x", [1, 6])], [tensor(y, [1, 8])], opset)


def softmax_final(opset):
    """(h) A classifier ending in Softmax (default axis differs before and after opset 13)."""
    b = Builder(10)
    h = b.node("Gemm", ["x", b.weight("w", 4, 5), b.weight("b", 4)], transB=1)
    y = b.node("Softmax", [h])
    save(b, f"softmax_opset{opset}.onnx", [tensor("x", ["N", 5])], [tensor(y, ["N", 4])], opset)


def two_inputs_outputs():
    """(j) Symbolic batch, two graph inputs and two graph outputs."""
    b = Builder(11)
    h = b.node("MatMul", ["a", b.weight("wa", 3, 4)])
    g = b.node("MatMul", ["b", b.weight("wb", 2, 4)])
    s = b.node("Add", [h, g])
    y1 = b.node("Relu", [s])
    y2 = b.node("Gemm", [s, b.weight("w2", 4, 2), b.weight("c2", 2)])
    save(b, "two_io.onnx", [tensor("a", ["N", 3]), tensor("b", ["N", 2])], [tensor(y1, ["N", 4]), tensor(y2, ["N", 2])], 13)


def bad_models():
    """Malformed and unsupported models for the error tests (not passed through the checker)."""
    b = Builder(20)
    h = b.node("Einsum", ["x", b.weight("w", 3, 2)], name="mix", equation="ij,jk->ik")
    save(b, "einsum.onnx", [tensor("x", [1, 3])], [tensor(h, [1, 2])], 13, folder=BAD)

    b = Builder(21)
    h = b.node("MatMul", ["x", "x2"], name="bilinear")
    save(b, "matmul_dynamic.onnx", [tensor("x", [1, 3]), tensor("x2", [3, 3])], [tensor(h, [1, 3])], 13, folder=BAD)

    b = Builder(22)
    h = b.node("Softmax", ["x"], name="early_softmax", axis=1)
    y = b.node("Gemm", [h, b.weight("w", 2, 3)], transB=1)
    save(b, "softmax_middle.onnx", [tensor("x", [1, 3])], [tensor(y, [1, 2])], 13, folder=BAD)

    b = Builder(23)
    h = b.node("Relu", ["nowhere"], name="orphan")
    save(b, "unknown_input.onnx", [tensor("x", [1, 3])], [tensor(h, [1, 3])], 13, folder=BAD, check=False)

    b = Builder(24)
    b.nodes.append(helper.make_node("Relu", ["t2"], ["t1"], name="loop_a"))
    b.nodes.append(helper.make_node("Add", ["x", "t1"], ["t2"], name="loop_b"))
    save(b, "cycle.onnx", [tensor("x", [1, 3])], [tensor("t2", [1, 3])], 13, folder=BAD, check=False)

    b = Builder(25)
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    w.raw_data = w.raw_data[:-4]  # one float short
    b.inits.append(w)
    h = b.node("MatMul", ["x", "w"], name="short")
    save(b, "short_raw_data.onnx", [tensor("x", [1, 3])], [tensor(h, [1, 2])], 13, folder=BAD, check=False)

    b = Builder(26)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 2])
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    b.inits.append(w)
    h = b.node("MatMul", ["x", "w"], name="external")
    save(b, "external_data.onnx", [tensor("x", [1, 3])], [tensor(h, [1, 2])], 13, folder=BAD, check=False)

    b = Builder(27)
    h, idx = b.node("MaxPool", ["x"], n_out=2, name="pool_with_indices", kernel_shape=[2, 2])
    save(b, "maxpool_indices.onnx", [tensor("x", [1, 1, 4, 4])], [tensor(h, [1, 1, 3, 3]), helper.make_tensor_value_info(idx, TensorProto.INT64, [1, 1, 3, 3])], 13, folder=BAD)

    b = Builder(29)
    shp = b.node("Concat", [b.const("a", np.array([1], np.int64)), b.const("b", np.array([[3]], np.int64))], name="ragged", axis=0)
    h = b.node("Reshape", ["x", shp])
    save(b, "concat_ranks.onnx", [tensor("x", [1, 3])], [tensor(h, [1, 3])], 13, folder=BAD, check=False)

    b = Builder(28)
    h = b.node("Relu", ["x"])
    save(b, "opset_7.onnx", [tensor("x", [1, 3])], [tensor(h, [1, 3])], 7, folder=BAD, check=False)


if __name__ == "__main__":
    fc_gemm_relu()
    matmul_add_relu()
    gemm_alpha_beta()
    cnn()
    cnn_same()
    residual()
    elementwise()
    for opset in (9, 11, 13):
        shape_plumbing(opset)
    for opset in (9, 13, 21):
        reshape_variants(opset)
    for opset in (9, 13):
        softmax_final(opset)
    two_inputs_outputs()
    bad_models()
    print("models written to", HERE)
