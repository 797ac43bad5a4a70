//! Folds inference batch normalisation into a neighbouring Conv or Linear layer.
//!
//! `BatchNorm` is the per-channel affine map `x·s + t` with `s = scale/√(var+ε)` and
//! `t = bias − mean·s` (over axis 1, which is the last axis when the value is `[1, C]`). It
//! folds into the preceding Conv/Linear (preferred: always valid), or into the following one —
//! for a Conv only when its pads are zero or `t` is zero (see the `passes` module docs).
//!
//! The square root makes the folded weights irrational in general, so this is a
//! `Level::Full` rewrite: it is computed in ball arithmetic and its rounding is recorded. At
//! `Level::Exact` it never fires (exact rationals have no square root).

use super::fold_const::fold_affine;
use super::{Changed, Ctx};
use crate::ir::graph::Graph;
use crate::ir::op::Op;

pub const NAME: &str = "fold_batchnorm";

pub fn run(g: &mut Graph, ctx: &mut Ctx) -> Changed {
    fold_affine(g, ctx, NAME, |op| matches!(op, Op::BatchNorm { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::Conv2d;
    use crate::ir::passes::Level;
    use ndarray::{arr1, Array1, Array4};

    fn bn(c: usize) -> Op {
        Op::BatchNorm {
            scale: Array1::from_elem(c, 2.0),
            bias: Array1::from_elem(c, 0.5),
            mean: Array1::from_elem(c, 0.25),
            var: Array1::from_elem(c, 3.0),
            epsilon: 1e-5,
        }
    }

    fn conv(pads: [usize; 4]) -> Op {
        Op::Conv(Conv2d {
            weight: Array4::from_elem((2, 1, 2, 2), 0.5),
            bias: Some(arr1(&[1.0, -1.0])),
            strides: [1, 1],
            pads,
            dilations: [1, 1],
            group: 2,
        })
    }

    #[test]
    fn folds_into_preceding_conv_at_full_only() {
        let build = || {
            let mut g = Graph::new();
            let x = g.add_input("x", vec![1, 2, 3, 3]);
            let c = g
                .add_node("conv", conv([1, 1, 1, 1]), vec![x], "c")
                .unwrap();
            let y = g.add_node("bn", bn(2), vec![c], "y").unwrap();
            g.add_output(y);
            g
        };
        let mut g = build();
        assert!(!run(&mut g, &mut Ctx::new(Level::Exact)));
        let mut ctx = Ctx::new(Level::Full);
        assert!(run(&mut g, &mut ctx));
        assert_eq!(g.nodes.len(), 1);
        let Op::Conv(c) = &g.nodes[0].op else {
            panic!("{g}")
        };
        let s = 2.0 / (3.0f64 + 1e-5).sqrt();
        assert!((c.weight[[0, 0, 0, 0]] - 0.5 * s).abs() < 1e-15);
        let e = ctx.error_of("conv");
        assert!(e.weight > 0.0 && e.weight < 1e-14, "{e:?}");
    }

    #[test]
    fn folds_into_following_conv_only_without_padding() {
        for (pads, fires) in [([0; 4], true), ([0, 1, 0, 0], false)] {
            let mut g = Graph::new();
            let x = g.add_input("x", vec![1, 2, 3, 3]);
            let b = g.add_node("bn", bn(2), vec![x], "b").unwrap();
            let y = g.add_node("conv", conv(pads), vec![b], "y").unwrap();
            g.add_output(y);
            assert_eq!(run(&mut g, &mut Ctx::new(Level::Full)), fires, "{pads:?}");
            assert_eq!(g.nodes.len(), if fires { 1 } else { 2 });
        }
    }

    #[test]
    fn folds_into_following_linear_on_flat_values_only() {
        let lin = Op::Linear {
            weight: ndarray::Array2::from_elem((1, 3), 1.0),
            bias: None,
        };
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 3]);
        let b = g.add_node("bn", bn(3), vec![x], "b").unwrap();
        let y = g.add_node("fc", lin.clone(), vec![b], "y").unwrap();
        g.add_output(y);
        assert!(run(&mut g, &mut Ctx::new(Level::Full)));
        assert_eq!(g.nodes.len(), 1);
        // [1, 3, 3]: BatchNorm's axis 1 is not the Linear's last axis.
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 3, 3]);
        let b = g.add_node("bn", bn(3), vec![x], "b").unwrap();
        let y = g.add_node("fc", lin, vec![b], "y").unwrap();
        g.add_output(y);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));
    }
}
