//! Removes operators that compute the identity: `AddConst` of zeros, `MulConst`/`DivConst`
//! of ones, a `Reshape` to the input's own shape, a `Transpose` by the identity permutation.
//!
//! All are exact in real arithmetic (x + 0 = x, x·1 = x/1 = x) and change no stored number,
//! so this pass runs at every level. An op whose constant broadcasts the input to a *larger*
//! shape is not an identity and is kept.

use super::rewrite::bypass;
use super::{Changed, Ctx};
use crate::ir::graph::Graph;
use crate::ir::op::Op;

pub const NAME: &str = "identity";

/// Whether `op` is the identity on inputs of shape `shape`.
pub fn is_identity(op: &Op, shape: &[usize]) -> bool {
    match op {
        Op::AddConst(c) => c.iter().all(|&v| v == 0.0),
        Op::MulConst(c) | Op::DivConst(c) => c.iter().all(|&v| v == 1.0),
        Op::Reshape { shape: s } => s == shape,
        Op::Transpose { perm } => perm.iter().enumerate().all(|(i, &p)| i == p),
        _ => false,
    }
}

pub fn run(g: &mut Graph, ctx: &mut Ctx) -> Changed {
    let mut changed = false;
    'scan: loop {
        for i in 0..g.nodes.len() {
            let n = &g.nodes[i];
            let [x] = n.inputs.as_slice() else { continue };
            let same_shape = g.value(*x).shape == g.value(n.output).shape;
            if !same_shape || !is_identity(&n.op, &g.value(*x).shape) {
                continue;
            }
            let what = format!("removed identity {} `{}`", n.op.kind(), n.name);
            if bypass(g, i) {
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
    use ndarray::{arr1, ArrayD, IxDyn};

    #[test]
    fn removes_identities_but_not_broadcasts() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 3]);
        let a = g
            .add_node(
                "z",
                Op::AddConst(arr1(&[0.0, -0.0, 0.0]).into_dyn()),
                vec![x],
                "a",
            )
            .unwrap();
        let b = g
            .add_node("one", Op::MulConst(ArrayD::ones(IxDyn(&[1]))), vec![a], "b")
            .unwrap();
        let c = g
            .add_node("r", Op::Reshape { shape: vec![1, 3] }, vec![b], "c")
            .unwrap();
        let d = g
            .add_node("t", Op::Transpose { perm: vec![0, 1] }, vec![c], "d")
            .unwrap();
        // Broadcasting [1,3] against [2,1] grows the shape: not an identity.
        let e = g
            .add_node(
                "grow",
                Op::AddConst(ArrayD::zeros(IxDyn(&[2, 1]))),
                vec![d],
                "e",
            )
            .unwrap();
        let f = g
            .add_node("div", Op::DivConst(ArrayD::ones(IxDyn(&[]))), vec![e], "f")
            .unwrap();
        g.add_output(f);
        let mut ctx = Ctx::new(Level::Exact);
        assert!(run(&mut g, &mut ctx));
        assert_eq!(g.nodes.len(), 1, "{g}");
        assert_eq!(g.nodes[0].name, "grow");
        assert_eq!(g.value(g.outputs[0]).name, "f");
        assert_eq!(ctx.rewrites.len(), 5);
        assert!(!run(&mut g, &mut ctx));
    }

    #[test]
    fn keeps_identity_between_input_and_output() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![2]);
        let y = g
            .add_node("z", Op::MulConst(ArrayD::ones(IxDyn(&[2]))), vec![x], "y")
            .unwrap();
        g.add_output(y);
        assert!(!run(&mut g, &mut Ctx::new(Level::Full)));
        assert_eq!(g.nodes.len(), 1);
    }
}
