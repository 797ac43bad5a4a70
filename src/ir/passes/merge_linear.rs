//! Merges consecutive Linear layers: `W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂)`.
//!
//! Exact in real arithmetic; the merged numbers are sums of products, so at `Level::Exact`
//! the merge happens only when every one of them is exactly an `f64` (checked in rationals,
//! within a work budget), and at `Level::Full` always, with the rounding bounded in ball
//! arithmetic (including any rounding the two layers already carried). A merge that would
//! store more weights than the two layers together (a bottleneck, `out·in > out·mid + mid·in`)
//! is not made.

use ndarray::{Array1, Array2};

use super::arith::{Ball, Exact, Num};
use super::rewrite::{chains, fuse};
use super::{compute, Changed, Ctx, ParamError};
use crate::ir::graph::Graph;
use crate::ir::op::Op;

pub const NAME: &str = "merge_linear";

type Layer<'a> = (&'a Array2<f64>, Option<&'a Array1<f64>>, ParamError);

fn merge<N: Num>(first: Layer, second: Layer) -> Option<(Op, ParamError)> {
    let had_bias = second.1.is_some();
    let (w1, b1, e1) = first;
    let (w2, b2, e2) = second;
    let (out, mid) = w2.dim();
    let inp = w1.ncols();
    let p = |a: &Array2<f64>, e: f64| a.map(|&x| N::param(x, e));
    let (w1, w2) = (p(w1, e1.weight), p(w2, e2.weight));
    let bias = |b: Option<&Array1<f64>>, e: f64, n: usize| -> Option<Vec<N>> {
        match b {
            Some(b) => b.iter().map(|&x| N::param(x, e)).collect(),
            None => Some(vec![N::zero(); n]),
        }
    };
    let (b1, b2) = (bias(b1, e1.bias, mid)?, bias(b2, e2.bias, out)?);
    let get = |a: &Array2<Option<N>>, r: usize, c: usize| a[[r, c]].clone();
    let mut w = Vec::with_capacity(out * inp);
    let mut werr = 0f64;
    for o in 0..out {
        for i in 0..inp {
            let mut acc = N::zero();
            for m in 0..mid {
                acc = acc.add(&get(&w2, o, m)?.mul(&get(&w1, m, i)?)?)?;
            }
            let (v, e) = acc.finish()?;
            werr = werr.max(e);
            w.push(v);
        }
    }
    let mut b = Vec::with_capacity(out);
    let mut berr = 0f64;
    for (o, b2o) in b2.iter().enumerate() {
        let mut acc = b2o.clone();
        for (m, b1m) in b1.iter().enumerate() {
            acc = acc.add(&get(&w2, o, m)?.mul(b1m)?)?;
        }
        let (v, e) = acc.finish()?;
        berr = berr.max(e);
        b.push(v);
    }
    let keep_bias = had_bias || b.iter().any(|&v| v != 0.0);
    Some((
        Op::Linear {
            weight: Array2::from_shape_vec((out, inp), w).ok()?,
            bias: keep_bias.then(|| Array1::from(b)),
        },
        ParamError {
            weight: werr,
            bias: berr,
        },
    ))
}

pub fn run(g: &mut Graph, ctx: &mut Ctx) -> Changed {
    let mut changed = false;
    'scan: loop {
        for (i, j) in chains(g) {
            let (a, b) = (&g.nodes[i], &g.nodes[j]);
            let (
                Op::Linear {
                    weight: w1,
                    bias: b1,
                },
                Op::Linear {
                    weight: w2,
                    bias: b2,
                },
            ) = (&a.op, &b.op)
            else {
                continue;
            };
            let (out, mid, inp) = (w2.nrows(), w2.ncols(), w1.ncols());
            if out * inp > out * mid + mid * inp {
                continue;
            }
            let (e1, e2) = (ctx.error_of(&a.name), ctx.error_of(&b.name));
            let first = (w1, b1.as_ref(), e1);
            let second = (w2, b2.as_ref(), e2);
            let result = compute(
                ctx,
                e1.is_zero() && e2.is_zero(),
                out * mid * (inp + 1),
                || merge::<Exact>(first, second),
                || merge::<Ball>(first, second),
            );
            let Some((op, err)) = result else { continue };
            let name = b.name.clone();
            let what = format!("merged Linear `{}` ∘ `{}`", b.name, a.name);
            if fuse(g, i, j, name.clone(), op) {
                ctx.record(NAME, what, Some((&name, err)));
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
    use crate::ir::passes::Level;
    use ndarray::{arr1, arr2};

    fn two(w1: Array2<f64>, w2: Array2<f64>, shared: bool) -> Graph {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, w1.ncols()]);
        let op1 = Op::Linear {
            weight: w1,
            bias: Some(arr1(&[1.0, 0.5])),
        };
        let h = g.add_node("fc1", op1, vec![x], "h").unwrap();
        let op2 = Op::Linear {
            weight: w2,
            bias: None,
        };
        let y = g.add_node("fc2", op2, vec![h], "y").unwrap();
        if shared {
            g.add_node("other", Op::Relu, vec![h], "z").unwrap();
            g.add_output(g.nodes[2].output);
        }
        g.add_output(y);
        g
    }

    #[test]
    fn merges_exactly_when_exact() {
        let mut g = two(arr2(&[[1.0, 2.0], [0.5, -1.0]]), arr2(&[[2.0, 4.0]]), false);
        let mut ctx = Ctx::new(Level::Exact);
        assert!(run(&mut g, &mut ctx));
        assert_eq!(g.nodes.len(), 1);
        let want = Op::Linear {
            weight: arr2(&[[4.0, 0.0]]),
            bias: Some(arr1(&[4.0])),
        };
        assert_eq!(g.nodes[0].op, want);
        assert!(ctx.errors.is_empty());
    }

    #[test]
    fn inexact_merges_only_at_full() {
        let mut g = two(arr2(&[[0.1, 0.2], [0.3, 0.7]]), arr2(&[[0.3, 0.1]]), false);
        assert!(!run(&mut g, &mut Ctx::new(Level::Exact)));
        let mut ctx = Ctx::new(Level::Full);
        assert!(run(&mut g, &mut ctx));
        let e = ctx.error_of("fc2");
        assert!(e.weight > 0.0 && e.weight < 1e-15, "{e:?}");
    }

    #[test]
    fn shared_intermediate_blocks_the_merge() {
        let mut g = two(arr2(&[[1.0, 2.0], [0.5, -1.0]]), arr2(&[[2.0, 4.0]]), true);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));
        assert_eq!(g.nodes.len(), 3);
    }
}
