//! Merges chains of elementwise constants when the merged constant is exactly an `f64`:
//! `(x + a) + b → x + (a + b)`, `(x · a) · b → x · (a · b)`, `(x / a) / b → x / (a · b)`,
//! and `x / c → x · (1/c)` when every `1/c` is exactly an `f64` (powers of two). Exactness
//! is checked in rationals, so the rewritten graph stores only numbers real arithmetic gives;
//! the pass runs at every level and never rounds. Constants broadcast numpy-style; the merged
//! constant has the broadcast shape of the two, which leaves the output shape unchanged
//! (broadcasting is associative).

use ndarray::{ArrayD, IxDyn, Zip};

use super::arith::{Exact, Num};
use super::rewrite::{chains, fuse};
use super::{Changed, Ctx};
use crate::ir::graph::Graph;
use crate::ir::op::Op;
use crate::tensor::broadcast_shapes;

pub const NAME: &str = "const_merge";

/// `f(a, b)` elementwise over the broadcast shape, if every result is exactly an `f64`.
fn combine(
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    f: impl Fn(&Exact, &Exact) -> Option<Exact>,
) -> Option<ArrayD<f64>> {
    let shape = broadcast_shapes(a.shape(), b.shape()).ok()?;
    let av = a.broadcast(IxDyn(&shape))?;
    let bv = b.broadcast(IxDyn(&shape))?;
    let mut out = ArrayD::zeros(IxDyn(&shape));
    let mut ok = true;
    Zip::from(&mut out).and(&av).and(&bv).for_each(|o, &x, &y| {
        if !ok {
            return;
        }
        match (Exact::param(x, 0.0), Exact::param(y, 0.0)) {
            (Some(x), Some(y)) => match f(&x, &y).and_then(|r| r.finish()) {
                Some((v, _)) => *o = v,
                None => ok = false,
            },
            _ => ok = false,
        }
    });
    ok.then_some(out)
}

/// `1/c` elementwise, if every entry is exactly an `f64`.
fn reciprocal(c: &ArrayD<f64>) -> Option<ArrayD<f64>> {
    let one = ArrayD::ones(IxDyn(&[]));
    combine(&one, c, |o, x| o.div(x)).and_then(|r| r.into_shape_with_order(IxDyn(c.shape())).ok())
}

pub fn run(g: &mut Graph, ctx: &mut Ctx) -> Changed {
    let mut changed = false;
    'scan: loop {
        for i in 0..g.nodes.len() {
            if let Op::DivConst(c) = &g.nodes[i].op {
                if let Some(r) = reciprocal(c) {
                    let what =
                        format!("DivConst `{}` by powers of two → MulConst", g.nodes[i].name);
                    g.nodes[i].op = Op::MulConst(r);
                    ctx.record(NAME, what, None);
                    changed = true;
                    continue 'scan;
                }
            }
        }
        for (i, j) in chains(g) {
            let (a, b) = (&g.nodes[i], &g.nodes[j]);
            let op = match (&a.op, &b.op) {
                (Op::AddConst(p), Op::AddConst(q)) => combine(p, q, Num::add).map(Op::AddConst),
                (Op::MulConst(p), Op::MulConst(q)) => combine(p, q, Num::mul).map(Op::MulConst),
                (Op::DivConst(p), Op::DivConst(q)) => combine(p, q, Num::mul).map(Op::DivConst),
                _ => None,
            };
            let Some(op) = op else { continue };
            let what = format!("merged {} `{}` ∘ `{}`", b.op.kind(), b.name, a.name);
            let name = b.name.clone();
            if fuse(g, i, j, name, op) {
                ctx.record(NAME, what, None);
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
    use ndarray::arr1;

    fn two(first: Op, second: Op, shared: bool) -> Graph {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let a = g.add_node("a", first, vec![x], "a").unwrap();
        let b = g.add_node("b", second, vec![a], "b").unwrap();
        g.add_output(b);
        if shared {
            g.add_output(a);
        }
        g
    }

    fn d(v: &[f64]) -> ArrayD<f64> {
        arr1(v).into_dyn()
    }

    #[test]
    fn merges_exact_constants_only() {
        let mut g = two(
            Op::MulConst(d(&[-1.0, 3.0])),
            Op::MulConst(d(&[-1.0])),
            false,
        );
        assert!(run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.nodes[0].op, Op::MulConst(d(&[1.0, -3.0])));

        let mut g = two(
            Op::AddConst(d(&[0.5, 0.25])),
            Op::AddConst(d(&[1.0, 2.0])),
            false,
        );
        assert!(run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes[0].op, Op::AddConst(d(&[1.5, 2.25])));

        // 0.1 + 0.2 is not a double: not merged, even at Full.
        let mut g = two(Op::AddConst(d(&[0.1])), Op::AddConst(d(&[0.2])), false);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));
        assert_eq!(g.nodes.len(), 2);

        // A shared intermediate value blocks the merge.
        let mut g = two(Op::AddConst(d(&[1.0])), Op::AddConst(d(&[1.0])), true);
        assert!(!run(&mut g, &mut Ctx::new(Level::Exact)));
    }

    #[test]
    fn divisions() {
        let mut g = two(Op::DivConst(d(&[3.0])), Op::DivConst(d(&[5.0, 7.0])), false);
        assert!(run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.nodes[0].op, Op::DivConst(d(&[15.0, 21.0])));

        let mut g = two(Op::DivConst(d(&[4.0, -0.5])), Op::Relu, false);
        assert!(run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes[0].op, Op::MulConst(d(&[0.25, -2.0])));
    }
}
