//! Conv and BatchNormalization → `Op::Conv` and `Op::BatchNorm`.
//!
//! Conv is accepted in its 2-D form (input `[N, C, H, W]`, constant weight
//! `[M, C/group, kH, kW]`, optional constant bias) with strides, pads, dilations, group and
//! every `auto_pad` mode; the padding of `SAME_UPPER` / `SAME_LOWER` is resolved here against
//! the static input shape (see `pool::window`). BatchNormalization is accepted in inference
//! form: constant scale, bias, mean and variance over axis 1 and the `epsilon` attribute
//! (widened from `f32` exactly); training mode and the pre-opset-9 `spatial = 0` are refused.

use ndarray::{Array1, Ix1, Ix4};

use super::context::{bounded, Ctx, NodeRef, Val};
use super::pool::{window, MAX_WINDOW};
use super::tensor::Const;
use crate::error::Result;
use crate::ir::{Conv2d, Op};

fn vector(ctx: &Ctx, node: &NodeRef, c: &Const, what: &str) -> Result<Array1<f64>> {
    c.to_f64()
        .map_err(|e| ctx.err(node, e))?
        .into_dimensionality::<Ix1>()
        .map_err(|_| {
            ctx.err(
                node,
                format!("{what} must be a 1-D constant, got shape {:?}", c.shape()),
            )
        })
}

pub fn conv(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let x = ctx.dynamic(node, 0)?;
    if let Some(Val::Dyn(_)) = ctx.input(node, 1)? {
        return Err(ctx.err(node, "Conv with a computed weight is not supported"));
    }
    let w = ctx.required_constant(node, 1)?;
    let xs = ctx.graph.value(x).shape.clone();
    if xs.len() != 4 || w.shape().len() != 4 {
        return Err(ctx.err(
            node,
            format!(
                "only 2-D convolutions are supported (input [N, C, H, W] and a 4-D weight); got input {xs:?}, weight {:?}",
                w.shape()
            ),
        ));
    }
    let weight = w
        .to_f64()
        .map_err(|e| ctx.err(node, e))?
        .into_dimensionality::<Ix4>()
        .map_err(|e| ctx.err(node, e.to_string()))?;
    let bias = match ctx.constant(node, 2)? {
        Some(b) => Some(vector(ctx, node, &b, "the Conv bias")?),
        None => None,
    };
    let ws = weight.shape().to_vec();
    if let Some(k) = ctx.ints_attr(node, "kernel_shape")? {
        if k.len() != 2 || k[0] as u64 != ws[2] as u64 || k[1] as u64 != ws[3] as u64 {
            return Err(ctx.err(
                node,
                format!("kernel_shape {k:?} disagrees with the weight shape {ws:?}"),
            ));
        }
    }
    let group = bounded(ctx.int_or(node, "group", 1)?, MAX_WINDOW, "group")
        .map_err(|e| ctx.err(node, e))?;
    let win = window(ctx, node, [xs[2], xs[3]], [ws[2], ws[3]])?;
    let op = Op::Conv(Conv2d {
        weight,
        bias,
        strides: win.strides,
        pads: win.pads,
        dilations: win.dilations,
        group,
    });
    let y = ctx.push(node, op, vec![x], node.output(0))?;
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}

pub fn batch_norm(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let x = ctx.dynamic(node, 0)?;
    if ctx.int_or(node, "training_mode", 0)? != 0 {
        return Err(ctx.err(node, "BatchNormalization in training mode is not supported"));
    }
    if ctx.int_or(node, "spatial", 1)? == 0 {
        return Err(ctx.err(
            node,
            "BatchNormalization with spatial = 0 (per-activation statistics) is not supported",
        ));
    }
    let mut params = Vec::with_capacity(4);
    for (i, what) in [(1, "scale"), (2, "B"), (3, "mean"), (4, "var")] {
        let c = ctx.required_constant(node, i)?;
        params.push(vector(ctx, node, &c, what)?);
    }
    let epsilon = ctx.float_or(node, "epsilon", 1e-5)?;
    let mut it = params.into_iter();
    let (Some(scale), Some(bias), Some(mean), Some(var)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(ctx.err(node, "BatchNormalization needs scale, B, mean and var"));
    };
    let op = Op::BatchNorm {
        scale,
        bias,
        mean,
        var,
        epsilon,
    };
    let y = ctx.push(node, op, vec![x], node.output(0))?;
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}
