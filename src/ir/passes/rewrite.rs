//! Graph surgery shared by the passes: fusing two adjacent nodes into one, and bypassing a
//! node that computes the identity. Both keep topological order, graph inputs and outputs
//! (with their value names), check shapes before committing, and prune what they leave dead.

use crate::ir::graph::{Graph, Node, ValueId};
use crate::ir::op::Op;

/// The node that is the *only* reader of `v`, if `v` is read exactly once, by a node, and is
/// not a graph output. Merging through `v` is allowed only then.
pub(crate) fn sole_reader(g: &Graph, v: ValueId) -> Option<usize> {
    if g.outputs.contains(&v) {
        return None;
    }
    let mut reader = None;
    for (i, n) in g.nodes.iter().enumerate() {
        for &x in &n.inputs {
            if x == v {
                if reader.is_some() {
                    return None;
                }
                reader = Some(i);
            }
        }
    }
    reader
}

/// Pairs `(first, second)` of node indices where `second` is the sole reader of `first`'s
/// output, in graph order.
pub(crate) fn chains(g: &Graph) -> Vec<(usize, usize)> {
    let uses = g.use_counts();
    let readers = g.consumers();
    g.nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let v = n.output.0;
            // One use in total that is a node's (not a graph output's): a sole reader.
            (uses[v] == 1 && readers[v].len() == 1).then(|| (i, readers[v][0]))
        })
        .collect()
}

/// Replaces the chain `first → second` (where `second` is the sole reader of `first`'s
/// output and has no other input) by one node `name: op` reading `first`'s inputs and
/// writing `second`'s output value. Returns false, changing nothing, if the pair is not such
/// a chain or `op` would not produce `second`'s output shape.
pub(crate) fn fuse(g: &mut Graph, first: usize, second: usize, name: String, op: Op) -> bool {
    let (a, b) = (&g.nodes[first], &g.nodes[second]);
    if first >= second || b.inputs != [a.output] || sole_reader(g, a.output) != Some(second) {
        return false;
    }
    let inputs = a.inputs.clone();
    let shapes: Vec<&[usize]> = inputs
        .iter()
        .map(|v| g.value(*v).shape.as_slice())
        .collect();
    match op.output_shape(&shapes) {
        Ok(s) if s == g.value(b.output).shape => {}
        _ => return false,
    }
    let output = b.output;
    g.nodes[second] = Node {
        name,
        op,
        inputs,
        output,
    };
    g.prune();
    true
}

/// Removes node `idx`, which must compute the identity of its single input (same shape), by
/// letting its readers read the input instead. When its output is a graph output, the
/// input's producer writes that output value instead, if nothing else reads the input.
/// Returns false, changing nothing, when neither is possible.
pub(crate) fn bypass(g: &mut Graph, idx: usize) -> bool {
    let n = &g.nodes[idx];
    let (x, y) = match n.inputs.as_slice() {
        [x] => (*x, n.output),
        _ => return false,
    };
    if g.value(x).shape != g.value(y).shape {
        return false;
    }
    if !g.outputs.contains(&y) {
        for m in &mut g.nodes {
            for v in &mut m.inputs {
                if *v == y {
                    *v = x;
                }
            }
        }
        g.nodes.remove(idx);
        g.prune();
        return true;
    }
    // `y` is an output: keep its value (and name), produced by x's producer instead.
    if g.inputs.contains(&x) || sole_reader(g, x) != Some(idx) {
        return false;
    }
    let Some(p) = g.producer(x) else {
        return false;
    };
    g.nodes[p].output = y;
    g.nodes.remove(idx);
    g.prune();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain3(out_mid: bool) -> Graph {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let a = g.add_node("a", Op::Relu, vec![x], "a").unwrap();
        let b = g.add_node("b", Op::Tanh, vec![a], "b").unwrap();
        if out_mid {
            g.add_output(a);
        }
        g.add_output(b);
        g
    }

    #[test]
    fn fuse_respects_other_readers() {
        let mut g = chain3(true);
        assert!(!fuse(&mut g, 0, 1, "ab".into(), Op::Sigmoid));
        let mut g = chain3(false);
        assert!(fuse(&mut g, 0, 1, "ab".into(), Op::Sigmoid));
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.value(g.outputs[0]).name, "b");
        assert!(g.validate().is_ok());
    }

    #[test]
    fn bypass_keeps_output_names() {
        let mut g = chain3(false);
        assert!(bypass(&mut g, 1));
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.value(g.outputs[0]).name, "b");
        assert_eq!(g.nodes[0].op, Op::Relu);
        // Both a and b are outputs: removing b would lose a value name.
        let mut g = chain3(true);
        assert!(!bypass(&mut g, 1));
        // Input straight to output: nothing can produce it instead.
        let mut g = Graph::new();
        let x = g.add_input("x", vec![3]);
        let y = g.add_node("id", Op::Relu, vec![x], "y").unwrap();
        g.add_output(y);
        assert!(!bypass(&mut g, 0));
    }
}
