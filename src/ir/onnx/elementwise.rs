//! Elementwise ONNX operators: arithmetic, activations, Identity/Dropout and a final Softmax.
//!
//! Add, Sub, Mul and Div with one constant operand become `AddConst`, `MulConst`, `DivConst`
//! (`Sub(x, c)` → `AddConst(−c)`, exact since negation is; `Sub(c, x)` → `MulConst(−1)` then
//! `AddConst(c)`); `Add(MatMul(x, W), b)` completes the MatMul's Linear with bias `b` when
//! nothing else reads the product. Add and Sub of two computed tensors become `Op::Add` /
//! `Op::Sub` (residual connections); Mul and Div of two computed tensors, and a constant divided
//! by a computed tensor, are refused. Arithmetic on two constants is folded at import.
//! Relu, LeakyRelu (alpha default 0.01), Sigmoid and Tanh map one to one. Identity and Dropout
//! (inference) vanish: their output name is bound to their input. Softmax is accepted only as a
//! final layer and recorded in the model notes.

use ndarray::{ArrayD, IxDyn};

use super::context::{Ctx, NodeRef, Val};
use super::linear::fuse_bias;
use super::tensor::{Const, MAX_COMPUTED_ELEMENTS};
use crate::error::Result;
use crate::ir::Op;
use crate::tensor::broadcast_shapes;

pub fn arithmetic(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let op = node.node.op_type.as_str();
    let a = ctx.required(node, 0)?;
    let b = ctx.required(node, 1)?;
    let out = node.output(0).to_string();
    let y = match (a, b) {
        (Val::Const(a), Val::Const(b)) => {
            let c = fold_binary(op, &a, &b).map_err(|e| ctx.err(node, e))?;
            ctx.set_const(node, c);
            return Ok(());
        }
        (Val::Dyn(x), Val::Const(c)) => {
            if op == "Add" && fuse_bias(ctx, node, x, &node.node.input[0], &c)? {
                return Ok(());
            }
            let c = fitted(ctx, node, x, &c)?;
            let op = match op {
                "Add" => Op::AddConst(c),
                "Sub" => Op::AddConst(-c),
                "Mul" => Op::MulConst(c),
                _ => Op::DivConst(c),
            };
            ctx.push(node, op, vec![x], &out)?
        }
        (Val::Const(c), Val::Dyn(x)) => {
            if op == "Add" && fuse_bias(ctx, node, x, &node.node.input[1], &c)? {
                return Ok(());
            }
            let c = fitted(ctx, node, x, &c)?;
            match op {
                "Add" => ctx.push(node, Op::AddConst(c), vec![x], &out)?,
                "Mul" => ctx.push(node, Op::MulConst(c), vec![x], &out)?,
                "Sub" => {
                    let minus = ArrayD::from_elem(IxDyn(&[]), -1.0);
                    let neg = ctx.push(node, Op::MulConst(minus), vec![x], &node.temp("neg"))?;
                    ctx.push(node, Op::AddConst(c), vec![neg], &out)?
                }
                _ => {
                    return Err(ctx.err(
                        node,
                        "dividing a constant by a computed tensor is not supported",
                    ))
                }
            }
        }
        (Val::Dyn(a), Val::Dyn(b)) => match op {
            "Add" => ctx.push(node, Op::Add, vec![a, b], &out)?,
            "Sub" => ctx.push(node, Op::Sub, vec![a, b], &out)?,
            _ => {
                return Err(ctx.err(
                    node,
                    format!("{op} of two computed tensors is not supported (only with a constant)"),
                ))
            }
        },
    };
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}

/// The constant as `f64`, with leading unit axes dropped while it has more axes than `x`.
fn fitted(ctx: &Ctx, node: &NodeRef, x: crate::ir::ValueId, c: &Const) -> Result<ArrayD<f64>> {
    let mut a = c.to_f64().map_err(|e| ctx.err(node, e))?;
    let rank = ctx.graph.value(x).shape.len();
    while a.ndim() > rank && a.shape()[0] == 1 {
        a = a.index_axis_move(ndarray::Axis(0), 0);
    }
    Ok(a)
}

/// Numpy-broadcast `f(a, b)` of two arrays, with a size limit.
pub fn broadcast_with<A: Clone, B: Clone, T>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    mut f: impl FnMut(&A, &B) -> Result<T, String>,
) -> Result<ArrayD<T>, String> {
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let n = super::tensor::checked_product(&shape)?;
    if n > MAX_COMPUTED_ELEMENTS {
        return Err(format!("folded constant of shape {shape:?} is too large"));
    }
    let (Some(av), Some(bv)) = (a.broadcast(IxDyn(&shape)), b.broadcast(IxDyn(&shape))) else {
        return Err(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        ));
    };
    let v = av
        .iter()
        .zip(bv.iter())
        .map(|(x, y)| f(x, y))
        .collect::<Result<Vec<T>, String>>()?;
    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| e.to_string())
}

/// Add, Sub, Mul or Div of two constants (integer division truncates, as in ONNX).
fn fold_binary(op: &str, a: &Const, b: &Const) -> Result<Const, String> {
    match (a, b) {
        (Const::Int(a), Const::Int(b)) => {
            let r = broadcast_with(a, b, |&x, &y| {
                match op {
                    "Add" => x.checked_add(y),
                    "Sub" => x.checked_sub(y),
                    "Mul" => x.checked_mul(y),
                    _ => x.checked_div(y),
                }
                .ok_or_else(|| format!("integer {op} of {x} and {y} overflows or divides by zero"))
            })?;
            Ok(Const::Int(r))
        }
        _ => {
            let (a, b) = (a.to_f64()?, b.to_f64()?);
            let r = broadcast_with(&a, &b, |&x, &y| {
                Ok(match op {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    _ => x / y,
                })
            })?;
            Ok(Const::Float(r))
        }
    }
}

pub fn activation(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let x = ctx.dynamic(node, 0)?;
    let op = match node.node.op_type.as_str() {
        "Relu" => Op::Relu,
        "LeakyRelu" => Op::LeakyRelu {
            alpha: ctx.float_or(node, "alpha", 0.01)?,
        },
        "Sigmoid" => Op::Sigmoid,
        _ => Op::Tanh,
    };
    let y = ctx.push(node, op, vec![x], node.output(0))?;
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}

/// Identity and inference-mode Dropout: the output is the input.
pub fn passthrough(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    let x = ctx.required(node, 0)?;
    if node.node.op_type == "Dropout" {
        if let Some(t) = ctx.constant(node, 2)? {
            if t.to_i64_vec()
                .map_err(|e| ctx.err(node, e))?
                .iter()
                .any(|&v| v != 0)
            {
                return Err(ctx.err(node, "Dropout in training mode is not supported"));
            }
        }
        let mask = node.output(1);
        if !mask.is_empty()
            && (ctx.readers.get(mask).is_some_and(|&n| n > 0) || ctx.graph_outputs.contains(mask))
        {
            return Err(ctx.err(node, "the Dropout mask output is not supported"));
        }
    } else {
        ctx.single_output(node)?;
    }
    ctx.set(node, 0, x);
    Ok(())
}

/// Softmax, accepted only when its result is a graph output that no node reads.
pub fn softmax(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let x = ctx.dynamic(node, 0)?;
    let out = node.output(0).to_string();
    if ctx.readers.get(&out).is_some_and(|&n| n > 0) || !ctx.graph_outputs.contains(&out) {
        return Err(ctx.err(
            node,
            "Softmax is supported only as the final layer (its result must be a graph output read by no other node)",
        ));
    }
    let shape = ctx.graph.value(x).shape.clone();
    let default = if ctx.opset < 13 { 1 } else { -1 };
    let axis = ctx.int_or(node, "axis", default)?;
    let mut axis = ctx.axis(node, axis, shape.len())?;
    if ctx.opset < 13 {
        // Before opset 13 Softmax normalises over all axes from `axis` on (flattened); that is
        // a single-axis softmax when at most one of those axes is longer than 1.
        let long: Vec<usize> = (axis..shape.len()).filter(|&i| shape[i] > 1).collect();
        match long.as_slice() {
            [] => {}
            [i] => axis = *i,
            _ => {
                return Err(ctx.err(
                    node,
                    format!(
                    "Softmax over the flattened axes {axis}.. of shape {shape:?} is not supported"
                ),
                ))
            }
        }
    }
    let y = ctx.push(node, Op::Softmax { axis }, vec![x], &out)?;
    ctx.set(node, 0, Val::Dyn(y));
    ctx.notes.push(format!(
        "final Softmax (node `{}`) on output `{out}`: bounds and verdicts refer to the logits before it",
        node.label()
    ));
    Ok(())
}
