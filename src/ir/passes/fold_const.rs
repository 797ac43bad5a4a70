//! Folds elementwise constants into a neighbouring Linear or Conv layer.
//!
//! `AddConst`/`MulConst`/`DivConst` whose constant varies only along the layer's channel axis
//! (the last axis next to a Linear, axis 1 next to a Conv) fold into the layer: after it into
//! its rows and bias, before it into its columns and bias. Input normalisation — constants
//! applied directly to a graph input — is the "before" case on the first affine layer.
//! A shift before a padded Conv is left alone (see the `passes` module docs).
//!
//! At `Level::Exact` a fold happens only when every new weight and bias is exactly an `f64`
//! (e.g. scaling by −1 or a power of two); at `Level::Full` it always happens and the rounding
//! is bounded and recorded. The driver `fold_affine` is shared with `fold_batchnorm`.

use super::affine::{fold_after, fold_before, ChannelAffine, Rows};
use super::arith::{Ball, Exact};
use super::rewrite::{chains, fuse};
use super::{compute, Changed, Ctx};
use crate::ir::graph::Graph;
use crate::ir::op::Op;

pub const NAME: &str = "fold_const";

fn is_const(op: &Op) -> bool {
    matches!(op, Op::AddConst(_) | Op::MulConst(_) | Op::DivConst(_))
}

/// The channel axis a layer's neighbours are folded along, for a value of `shape`.
fn axis_for(layer: &Op, shape: &[usize]) -> Option<usize> {
    match layer {
        Op::Linear { .. } => shape.len().checked_sub(1),
        Op::Conv(_) if shape.len() == 4 => Some(1),
        _ => None,
    }
}

pub fn run(g: &mut Graph, ctx: &mut Ctx) -> Changed {
    fold_affine(g, ctx, NAME, is_const)
}

/// Folds every op accepted by `which` (and expressible as a `ChannelAffine`) into an adjacent
/// Linear/Conv, preferring the preceding layer.
pub(crate) fn fold_affine(
    g: &mut Graph,
    ctx: &mut Ctx,
    pass: &'static str,
    which: fn(&Op) -> bool,
) -> Changed {
    let mut changed = false;
    'scan: loop {
        for (i, j) in chains(g) {
            let (a, b) = (&g.nodes[i], &g.nodes[j]);
            let mid_shape = &g.value(a.output).shape;
            // After: layer a, then affine b (survivor named after the layer).
            let after = Rows::of(&a.op).is_some() && which(&b.op);
            // Before: affine a, then layer b.
            let before = which(&a.op) && Rows::of(&b.op).is_some();
            let (layer_node, aff_op, is_after) = match (after, before) {
                (true, _) => (a, &b.op, true),
                (false, true) => (b, &a.op, false),
                _ => continue,
            };
            let Some(axis) = axis_for(&layer_node.op, mid_shape) else {
                continue;
            };
            let Some(aff) = ChannelAffine::of(aff_op, mid_shape, axis) else {
                continue;
            };
            let Some(rows) = Rows::of(&layer_node.op) else {
                continue;
            };
            if !is_after {
                // The affine op must not broadcast its input to a larger shape, and a shift
                // must not meet zero padding.
                let x = a.inputs.first().map(|v| &g.value(*v).shape);
                if x != Some(mid_shape) || (rows.pads() && !aff.shift_is_zero()) {
                    continue;
                }
            }
            let err = ctx.error_of(&layer_node.name);
            let cost = 2 * rows.size() + aff.len();
            let result = if is_after {
                compute(
                    ctx,
                    err.is_zero(),
                    cost,
                    || fold_after::<Exact>(&rows, err, &aff),
                    || fold_after::<Ball>(&rows, err, &aff),
                )
            } else {
                compute(
                    ctx,
                    err.is_zero(),
                    cost,
                    || fold_before::<Exact>(&rows, err, &aff),
                    || fold_before::<Ball>(&rows, err, &aff),
                )
            };
            let Some((op, new_err)) = result else {
                continue;
            };
            let name = layer_node.name.clone();
            let what = if !is_after && g.inputs.contains(&a.inputs[0]) {
                format!(
                    "folded input normalisation {} `{}` into `{name}`",
                    a.op.kind(),
                    a.name
                )
            } else if is_after {
                format!(
                    "folded {} `{}` into preceding `{name}`",
                    b.op.kind(),
                    b.name
                )
            } else {
                format!(
                    "folded {} `{}` into following `{name}`",
                    a.op.kind(),
                    a.name
                )
            };
            if fuse(g, i, j, name.clone(), op) {
                ctx.record(pass, what, Some((&name, new_err)));
                changed = true;
                continue 'scan;
            }
        }
        return changed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::Conv2d;
    use crate::ir::passes::Level;
    use ndarray::{arr1, arr2, Array4, ArrayD, IxDyn};

    fn lin(w: ndarray::Array2<f64>, b: &[f64]) -> Op {
        Op::Linear {
            weight: w,
            bias: Some(arr1(b)),
        }
    }

    fn d(v: &[f64]) -> ArrayD<f64> {
        arr1(v).into_dyn()
    }

    #[test]
    fn exact_folds_negation_and_powers_of_two() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let n = g
            .add_node("neg", Op::MulConst(d(&[-1.0])), vec![x], "n")
            .unwrap();
        let h = g
            .add_node("fc", lin(arr2(&[[1.5, 2.0]]), &[0.5]), vec![n], "h")
            .unwrap();
        let y = g
            .add_node("half", Op::DivConst(d(&[2.0])), vec![h], "y")
            .unwrap();
        g.add_output(y);
        let mut ctx = Ctx::new(Level::Exact);
        assert!(run(&mut g, &mut ctx));
        assert_eq!(g.nodes.len(), 1, "{g}");
        assert_eq!(g.nodes[0].op, lin(arr2(&[[-0.75, -1.0]]), &[0.25]));
        assert!(ctx.errors.is_empty());
        assert_eq!(g.value(g.outputs[0]).name, "y");
        assert!(ctx.rewrites[0].what.contains("input normalisation"));
    }

    #[test]
    fn inexact_folds_wait_for_full_and_record_rounding() {
        let build = || {
            let mut g = Graph::new();
            let x = g.add_input("x", vec![1, 2]);
            let m = g
                .add_node("sub", Op::AddConst(d(&[-0.1, 0.3])), vec![x], "m")
                .unwrap();
            let s = g
                .add_node("std", Op::DivConst(d(&[3.0, 0.7])), vec![m], "s")
                .unwrap();
            let y = g
                .add_node(
                    "fc",
                    lin(arr2(&[[1.0, 1.0], [2.0, -1.0]]), &[0.0, 1.0]),
                    vec![s],
                    "y",
                )
                .unwrap();
            g.add_output(y);
            g
        };
        let mut g = build();
        assert!(!run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes.len(), 3);
        let mut ctx = Ctx::new(Level::Full);
        assert!(run(&mut g, &mut ctx));
        assert_eq!(g.nodes.len(), 1);
        let e = ctx.error_of("fc");
        assert!(
            e.weight > 0.0 && e.weight < 1e-15 && e.bias > 0.0 && e.bias < 1e-14,
            "{e:?}"
        );
    }

    #[test]
    fn shared_values_and_padding_block_folds() {
        // The Linear's output is also a graph output: the AddConst may not fold into it.
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let h = g
            .add_node("fc", lin(arr2(&[[1.0, 2.0]]), &[0.5]), vec![x], "h")
            .unwrap();
        let y = g
            .add_node("add", Op::AddConst(d(&[1.0])), vec![h], "y")
            .unwrap();
        g.add_output(h);
        g.add_output(y);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));

        // A shift before a padded conv does not fold; a scale does.
        let conv = Op::Conv(Conv2d {
            weight: Array4::from_elem((1, 1, 2, 2), 1.0),
            bias: None,
            strides: [1, 1],
            pads: [1, 0, 0, 0],
            dilations: [1, 1],
            group: 1,
        });
        let shift = ArrayD::from_elem(IxDyn(&[1, 1, 1]), 1.0);
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 1, 3, 3]);
        let s = g
            .add_node("shift", Op::AddConst(shift), vec![x], "s")
            .unwrap();
        let y = g.add_node("conv", conv.clone(), vec![s], "y").unwrap();
        g.add_output(y);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));
        let scale = ArrayD::from_elem(IxDyn(&[1, 1, 1, 1]), -2.0);
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 1, 3, 3]);
        let s = g
            .add_node("scale", Op::MulConst(scale), vec![x], "s")
            .unwrap();
        let y = g.add_node("conv", conv, vec![s], "y").unwrap();
        g.add_output(y);
        assert!(run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes.len(), 1);
    }
}
