//! AveragePool, MaxPool and GlobalAveragePool → `Op::AveragePool`, `Op::MaxPool`,
//! `Op::GlobalAveragePool`, plus the window attributes shared with Conv.
//!
//! Pools are accepted in 2-D form (input `[N, C, H, W]`) with `kernel_shape`, `strides`,
//! `pads`, `dilations`, `ceil_mode`, `count_include_pad` and every `auto_pad` mode. A MaxPool
//! whose second (indices) output is requested is refused. [`window`] reads and bounds the
//! strides, pads and dilations of a 2-D window and resolves `auto_pad` against the static input.

use super::context::{bounded, Ctx, NodeRef, Val};
use crate::error::Result;
use crate::ir::{Op, Pool2d};

/// Largest kernel extent, stride, dilation, pad or group accepted from a file.
pub const MAX_WINDOW: usize = 1 << 20;

/// The geometry of a 2-D window.
pub struct Window {
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
}

fn pair(ctx: &Ctx, node: &NodeRef, name: &str, min: usize) -> Result<[usize; 2]> {
    let Some(v) = ctx.ints_attr(node, name)? else {
        return Ok([1, 1]);
    };
    let checked = |x: i64| -> Result<usize> {
        match bounded(x, MAX_WINDOW, name) {
            Ok(u) if u >= min => Ok(u),
            Ok(u) => Err(ctx.err(node, format!("{name} {u} must be at least {min}"))),
            Err(e) => Err(ctx.err(node, e)),
        }
    };
    match v.as_slice() {
        [a, b] => Ok([checked(*a)?, checked(*b)?]),
        _ => Err(ctx.err(
            node,
            format!("{name} {v:?} must have two entries for a 2-D window"),
        )),
    }
}

/// Strides, pads and dilations of a 2-D window over an input of spatial size `hw`.
pub fn window(ctx: &Ctx, node: &NodeRef, hw: [usize; 2], kernel: [usize; 2]) -> Result<Window> {
    for k in kernel {
        if k == 0 || k > MAX_WINDOW {
            return Err(ctx.err(
                node,
                format!("kernel extent {k} is outside 1..={MAX_WINDOW}"),
            ));
        }
    }
    let strides = pair(ctx, node, "strides", 1)?;
    let dilations = pair(ctx, node, "dilations", 1)?;
    let auto_pad = ctx
        .string_attr(node, "auto_pad")?
        .unwrap_or_else(|| "NOTSET".into());
    let pads = match auto_pad.as_str() {
        "NOTSET" | "" => match ctx.ints_attr(node, "pads")? {
            None => [0; 4],
            Some(p) if p.len() == 4 => {
                let mut out = [0; 4];
                for (o, v) in out.iter_mut().zip(&p) {
                    *o = bounded(*v, MAX_WINDOW, "pad").map_err(|e| ctx.err(node, e))?;
                }
                out
            }
            Some(p) => {
                return Err(ctx.err(
                    node,
                    format!("pads {p:?} must have four entries for a 2-D window"),
                ))
            }
        },
        "VALID" => [0; 4],
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut begin = [0; 2];
            let mut end = [0; 2];
            for i in 0..2 {
                let out = hw[i].div_ceil(strides[i]);
                let extent = (kernel[i] - 1) * dilations[i] + 1;
                let total = ((out - 1) * strides[i] + extent).saturating_sub(hw[i]);
                let small = total / 2;
                (begin[i], end[i]) = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
            }
            [begin[0], begin[1], end[0], end[1]]
        }
        other => return Err(ctx.err(node, format!("unknown auto_pad `{other}`"))),
    };
    Ok(Window {
        strides,
        pads,
        dilations,
    })
}

pub fn pool(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    let is_max = node.node.op_type == "MaxPool";
    if is_max && !node.output(1).is_empty() {
        return Err(ctx.err(node, "MaxPool with an indices output is not supported"));
    }
    ctx.single_output(node)?;
    let x = ctx.dynamic(node, 0)?;
    let xs = ctx.graph.value(x).shape.clone();
    if xs.len() != 4 {
        return Err(ctx.err(
            node,
            format!("only 2-D pooling (input [N, C, H, W]) is supported; got input {xs:?}"),
        ));
    }
    let kernel = match ctx.ints_attr(node, "kernel_shape")?.as_deref() {
        Some([a, b]) => [
            bounded(*a, MAX_WINDOW, "kernel extent").map_err(|e| ctx.err(node, e))?,
            bounded(*b, MAX_WINDOW, "kernel extent").map_err(|e| ctx.err(node, e))?,
        ],
        other => {
            return Err(ctx.err(
                node,
                format!("kernel_shape must have two entries, got {other:?}"),
            ))
        }
    };
    let ceil_mode = ctx.int_or(node, "ceil_mode", 0)? != 0;
    let win = window(ctx, node, [xs[2], xs[3]], kernel)?;
    let p = Pool2d {
        kernel,
        strides: win.strides,
        pads: win.pads,
        dilations: win.dilations,
        ceil_mode,
        count_include_pad: !is_max && ctx.int_or(node, "count_include_pad", 0)? != 0,
    };
    let op = if is_max {
        Op::MaxPool(p)
    } else {
        Op::AveragePool(p)
    };
    let y = ctx.push(node, op, vec![x], node.output(0))?;
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}

pub fn global_average(ctx: &mut Ctx, node: &NodeRef) -> Result<()> {
    ctx.single_output(node)?;
    let x = ctx.dynamic(node, 0)?;
    let y = ctx.push(node, Op::GlobalAveragePool, vec![x], node.output(0))?;
    ctx.set(node, 0, Val::Dyn(y));
    Ok(())
}
