//! Composes chains of layout operators: `Reshape ∘ Reshape` becomes one `Reshape` (row-major
//! reshapes compose to the last one), `Transpose(q) ∘ Transpose(p)` becomes one `Transpose`
//! with permutation `r[i] = p[q[i]]`. Pure data movement: exact at every level. A composed
//! transpose that is the identity is removed by the `identity` pass afterwards.

use super::rewrite::{chains, fuse};
use super::{Changed, Ctx};
use crate::ir::graph::Graph;
use crate::ir::op::Op;

pub const NAME: &str = "shape_chain";

pub fn run(g: &mut Graph, ctx: &mut Ctx) -> Changed {
    let mut changed = false;
    'scan: loop {
        for (i, j) in chains(g) {
            let (a, b) = (&g.nodes[i], &g.nodes[j]);
            let op = match (&a.op, &b.op) {
                (Op::Reshape { .. }, Op::Reshape { shape }) => Op::Reshape {
                    shape: shape.clone(),
                },
                (Op::Transpose { perm: p }, Op::Transpose { perm: q })
                    if p.len() == q.len() && q.iter().all(|&k| k < p.len()) =>
                {
                    Op::Transpose {
                        perm: q.iter().map(|&k| p[k]).collect(),
                    }
                }
                _ => continue,
            };
            let what = format!("composed {} `{}` ∘ `{}`", b.op.kind(), b.name, a.name);
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

    #[test]
    fn composes_reshapes_and_transposes() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![2, 3, 4]);
        let a = g
            .add_node(
                "t1",
                Op::Transpose {
                    perm: vec![1, 2, 0],
                },
                vec![x],
                "a",
            )
            .unwrap();
        let b = g
            .add_node(
                "t2",
                Op::Transpose {
                    perm: vec![2, 0, 1],
                },
                vec![a],
                "b",
            )
            .unwrap();
        let c = g
            .add_node("r1", Op::Reshape { shape: vec![24] }, vec![b], "c")
            .unwrap();
        let d = g
            .add_node("r2", Op::Reshape { shape: vec![4, 6] }, vec![c], "d")
            .unwrap();
        let e = g
            .add_node("r3", Op::Reshape { shape: vec![6, 4] }, vec![d], "e")
            .unwrap();
        g.add_output(e);
        assert!(run(&mut g, &mut Ctx::new(Level::Exact)));
        assert_eq!(g.nodes.len(), 2, "{g}");
        // Transpose(p=[1,2,0]) then (q=[2,0,1]): r = [p[2], p[0], p[1]] = [0, 1, 2].
        assert_eq!(
            g.nodes[0].op,
            Op::Transpose {
                perm: vec![0, 1, 2]
            }
        );
        assert_eq!(g.nodes[1].op, Op::Reshape { shape: vec![6, 4] });
        assert_eq!(g.value(g.outputs[0]).name, "e");
    }

    #[test]
    fn does_not_merge_through_a_shared_value() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![2, 3]);
        let a = g
            .add_node("r1", Op::Reshape { shape: vec![6] }, vec![x], "a")
            .unwrap();
        let b = g
            .add_node("r2", Op::Reshape { shape: vec![3, 2] }, vec![a], "b")
            .unwrap();
        let c = g.add_node("act", Op::Relu, vec![a], "c").unwrap();
        g.add_output(b);
        g.add_output(c);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));
        assert_eq!(g.nodes.len(), 3);
    }
}
