//! Gemm and MatMul → `Op::Linear`.
//!
//! `MatMul(x, W)` with a constant 2-D `W` becomes `Linear` with weight `Wᵀ` on the last axis
//! (a constant 1-D `W` adds a Reshape dropping that axis). When the MatMul's result is read only
//! by an `Add` of a constant 1-D bias — the "MatMul + Add" shape PyTorch and MATLAB export — the
//! Add completes the same Linear with that bias (see `elementwise`).
//!
//! `Gemm(A, B, C) = alpha · A'·B' + beta · C` with a computed `A` (transposed first if `transA`)
//! and constant `B`, `C`. Exactness policy for alpha and beta ≠ 1: a scale is folded into the
//! weights (or bias) only when every product is exact in `f64`, checked per entry with a fused
//! multiply-add (`fma(a, w, −a·w) == 0` and the product is normal or an exact zero). Products of
//! two `f32` numbers are always exact in `f64`, so ordinary models fold; otherwise the scale
//! stays a `MulConst` node and `beta·C` is built as `((y / beta) + C) · beta`, which equals the
//! ONNX definition in real arithmetic. Either way the graph computes exactly the file's function.

use ndarray::{Array1, Array2, ArrayD, Ix2};

use super::context::{Ctx, NodeRef, Val};
use super::tensor::Const;
use crate::error::Result;
use crate::ir::Op;

/// `scale · a` for every entry, if all the products are exact in `f64`.
pub fn exact_scale(a: &ArrayD<f64>, scale: f64) -> Option<ArrayD<f64>> {
    if scale == 1.0 {
        return Some(a.clone());
    }
    let mut out = a.clone();
    for v in out.iter_mut() {
        let p = scale * *v;
        let exact = p.is_finite()
            && scale.mul_add(*v, -p) == 0.0
            && (p.is_normal() || (p == 0.0 && (scale == 0.0 || *v == 0.0)));
        if !exact {
            return None;
        }
        *v = p;
    }
    Some(out)
}

fn scalar(v: f64) -> ArrayD<f64> {
    ArrayD::from_elem(ndarray::IxDyn(&[]), v)
}

fn matrix(ctx: &Ctx, node: &NodeRef, c: &Const, what: &str) -> Result<Array2<f64>> {
    c.to_f64()
        .map_err(|e| ctx.err(node, e))?
        .into_dimensionality::<Ix2>()
        .map_err(|_| {
            ctx.err(
                node,
                format!("{what} must be a 2-D constant, got shape {:?}", c.shape()),
            )
        })
}

pub fn gemm(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    if let Some(Val::Dyn(_)) = ctx.input(node, 1)? {
        return Err(ctx.err(
            node,
            "Gemm with a computed B operand is not supported (B must be a constant weight)",
        ));
    }
    let mut x = ctx.dynamic(node, 0)?;
    let b = ctx.required_constant(node, 1)?;
    let c = ctx.constant(node, 2)?;
    let alpha = ctx.float_or(node, "alpha", 1.0)?;
    let beta = ctx.float_or(node, "beta", 1.0)?;
    let trans_a = ctx.int_or(node, "transA", 0)? != 0;
    let trans_b = ctx.int_or(node, "transB", 0)? != 0;
    let xs = ctx.graph.value(x).shape.clone();
    if xs.len() != 2 {
        return Err(ctx.err(
            node,
            format!("Gemm needs a 2-D A operand, got shape {xs:?}"),
        ));
    }
    if trans_a {
        let op = Op::Transpose { perm: vec![1, 0] };
        x = ctx.push(node, op, vec![x], &node.temp("transA"))?;
    }
    let b = matrix(ctx, node, &b, "B")?;
    // Linear wants [out, in]; B' is [in, out].
    let w = if trans_b { b } else { b.reversed_axes() };
    let n_out = w.nrows();
    let (w, alpha_left) = match exact_scale(&w.clone().into_dyn(), alpha) {
        Some(s) => (s, None),
        None => (w.into_dyn(), Some(alpha)),
    };
    let weight = w
        .into_dimensionality::<Ix2>()
        .map_err(|e| ctx.err(node, e.to_string()))?
        .as_standard_layout()
        .to_owned();
    let c = match (&c, beta) {
        (None, _) | (_, 0.0) => None,
        (Some(c), _) => Some(c.to_f64().map_err(|e| ctx.err(node, e))?),
    };
    // beta·C, exactly, if possible.
    let (c, beta_left) = match c {
        None => (None, None),
        Some(c) => match exact_scale(&c, beta) {
            Some(s) => (Some(s), None),
            None => (Some(c), Some(beta)),
        },
    };
    let row_bias = |c: &ArrayD<f64>| -> Option<Array1<f64>> {
        let s = c.shape();
        let row_like = s.len() <= 1 || (s.len() == 2 && s[0] == 1);
        let len = c.len();
        if !row_like || (len != n_out && len != 1) {
            return None;
        }
        let flat: Vec<f64> = c.iter().copied().collect();
        Some(Array1::from_shape_fn(n_out, |i| {
            flat[if len == 1 { 0 } else { i }]
        }))
    };
    let bias = match (&c, alpha_left, beta_left) {
        (Some(c), None, None) => row_bias(c),
        _ => None,
    };
    let out = node.output(0).to_string();
    let bias_used = bias.is_some();
    let mut steps: Vec<(Op, &str)> = vec![(Op::Linear { weight, bias }, "linear")];
    if let Some(a) = alpha_left {
        steps.push((Op::MulConst(scalar(a)), "alpha"));
    }
    if let (Some(c), false) = (c, bias_used) {
        match beta_left {
            None => steps.push((Op::AddConst(c), "bias")),
            Some(bt) => {
                steps.push((Op::DivConst(scalar(bt)), "div_beta"));
                steps.push((Op::AddConst(c), "add_c"));
                steps.push((Op::MulConst(scalar(bt)), "mul_beta"));
            }
        }
    }
    let last = steps.len() - 1;
    for (i, (op, suffix)) in steps.into_iter().enumerate() {
        let name = if i == last {
            out.clone()
        } else {
            node.temp(suffix)
        };
        x = ctx.push(node, op, vec![x], &name)?;
    }
    ctx.set(node, 0, Val::Dyn(x));
    Ok(())
}

pub fn matmul(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let (x, w) =
        match (ctx.required(node, 0)?, ctx.required(node, 1)?) {
            (Val::Dyn(x), Val::Const(w)) => (x, w),
            (Val::Const(_), Val::Dyn(_)) => return Err(ctx.err(
                node,
                "MatMul with a constant left operand is not supported (only x · W with constant W)",
            )),
            (Val::Dyn(_), Val::Dyn(_)) => {
                return Err(ctx.err(
                    node,
                    "MatMul of two computed tensors is not supported (not a linear layer)",
                ))
            }
            (Val::Const(_), Val::Const(_)) => {
                return Err(ctx.err(node, "MatMul of two constants is not supported"))
            }
        };
    let out = node.output(0).to_string();
    let xs = ctx.graph.value(x).shape.clone();
    if xs.is_empty() {
        return Err(ctx.err(node, "MatMul of a scalar"));
    }
    match w.shape().len() {
        2 => {
            let weight = matrix(ctx, node, &w, "the MatMul weight")?
                .reversed_axes()
                .as_standard_layout()
                .to_owned();
            let y = ctx.push(node, Op::Linear { weight, bias: None }, vec![x], &out)?;
            ctx.fusable.insert(y);
            ctx.set(node, 0, Val::Dyn(y));
        }
        1 => {
            let v = w.to_f64().map_err(|e| ctx.err(node, e))?;
            let k = v.len();
            let weight = Array2::from_shape_vec((1, k), v.iter().copied().collect())
                .map_err(|e| ctx.err(node, e.to_string()))?;
            let y = ctx.push(
                node,
                Op::Linear { weight, bias: None },
                vec![x],
                &node.temp("dot"),
            )?;
            let shape = xs[..xs.len() - 1].to_vec();
            let y = ctx.push(node, Op::Reshape { shape }, vec![y], &out)?;
            ctx.set(node, 0, Val::Dyn(y));
        }
        r => {
            return Err(ctx.err(
                node,
                format!(
                    "MatMul with a rank-{r} constant weight is not supported (only 1-D or 2-D)"
                ),
            ))
        }
    }
    Ok(())
}

/// Completes a bias-less Linear from a MatMul with the constant `bias` of an `Add`, when the
/// MatMul result is read only by that Add and the bias is a 1-D vector (or has only leading
/// ones) of the Linear's output size that does not widen the shape. Returns whether it did.
pub fn fuse_bias(
    ctx: &mut Ctx,
    node: &NodeRef,
    x: crate::ir::ValueId,
    x_name: &str,
    bias: &Const,
) -> Result<bool> {
    if !ctx.fusable.contains(&x) || !ctx.read_once(x_name) {
        return Ok(false);
    }
    let Some(pos) = ctx.graph.nodes.iter().position(|n| n.output == x) else {
        return Ok(false);
    };
    let rank = ctx.graph.value(x).shape.len();
    let s = bias.shape();
    let leading_ones = !s.is_empty() && s[..s.len() - 1].iter().all(|&d| d == 1);
    let Op::Linear { weight, bias: None } = &ctx.graph.nodes[pos].op else {
        return Ok(false);
    };
    if !leading_ones || s.len() > rank || s[s.len() - 1] != weight.nrows() {
        return Ok(false);
    }
    let v = bias.to_f64().map_err(|e| ctx.err(node, e))?;
    if let Op::Linear { bias: b, .. } = &mut ctx.graph.nodes[pos].op {
        *b = Some(Array1::from_iter(v.iter().copied()));
    }
    ctx.fusable.remove(&x);
    ctx.graph.values[x.0].name = node.output(0).to_string();
    ctx.set(node, 0, Val::Dyn(x));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::onnx::pb;
    use prost::Message;

    #[test]
    fn exact_scale_folds_only_exact_products() {
        let a = ArrayD::from_shape_vec(ndarray::IxDyn(&[2]), vec![0.1f32 as f64, 3.0]).unwrap();
        assert!(
            exact_scale(&a, 0.3f32 as f64).is_some(),
            "f32 × f32 is exact in f64"
        );
        let d = ArrayD::from_shape_vec(ndarray::IxDyn(&[1]), vec![0.1]).unwrap();
        assert!(exact_scale(&d, 0.1).is_none(), "0.1 × 0.1 rounds in f64");
        let tiny = ArrayD::from_shape_vec(ndarray::IxDyn(&[1]), vec![1e-300]).unwrap();
        assert!(
            exact_scale(&tiny, 1e-10).is_none(),
            "an underflowing product is not exact"
        );
    }

    /// A DOUBLE Gemm whose alpha·B and beta·C round: the scales must stay separate nodes and the
    /// graph must still compute alpha·x·B + beta·C.
    #[test]
    fn inexact_scales_stay_nodes() {
        let b = [0.1, 0.7, -0.3, 1e-3];
        let c = [0.2, -0.9];
        let tensor = |name: &str, dims: Vec<i64>, data: &[f64]| pb::TensorProto {
            name: name.into(),
            dims,
            data_type: 11,
            double_data: data.to_vec(),
            ..Default::default()
        };
        let float_attr = |name: &str, f: f32| pb::AttributeProto {
            name: name.into(),
            r#type: pb::attribute_proto::AttributeType::Float as i32,
            f,
            ..Default::default()
        };
        let info = |name: &str, dims: &[i64]| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: 11,
                    shape: Some(pb::TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| pb::tensor_shape_proto::Dimension {
                                value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
        };
        let model = pb::ModelProto {
            ir_version: 7,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(pb::GraphProto {
                node: vec![pb::NodeProto {
                    input: vec!["x".into(), "B".into(), "C".into()],
                    output: vec!["y".into()],
                    op_type: "Gemm".into(),
                    attribute: vec![float_attr("alpha", 0.1), float_attr("beta", 0.3)],
                    ..Default::default()
                }],
                initializer: vec![tensor("B", vec![2, 2], &b), tensor("C", vec![2], &c)],
                input: vec![info("x", &[1, 2])],
                output: vec![info("y", &[1, 2])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = crate::ir::onnx::load_bytes(&model.encode_to_vec(), std::path::Path::new("g.onnx"))
            .unwrap();
        let h = m.graph.op_histogram();
        assert_eq!(h["MulConst"], 2, "{}", m.graph);
        assert_eq!(h["DivConst"], 1);
        let x = [0.5, -2.0];
        let (alpha, beta) = (0.1f32 as f64, 0.3f32 as f64);
        let want: Vec<f64> = (0..2)
            .map(|j| alpha * (x[0] * b[j] + x[1] * b[2 + j]) + beta * c[j])
            .collect();
        let got = crate::eval::forward_f64(
            &m.graph,
            ndarray::Array2::from_shape_vec((1, 2), x.to_vec())
                .unwrap()
                .view(),
        )
        .unwrap();
        for j in 0..2 {
            assert!((got[[0, j]] - want[j]).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }
}
