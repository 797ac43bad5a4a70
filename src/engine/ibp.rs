//! Interval bound propagation (IBP): the interval image of every value, node by node.
//!
//! Specification rows are folded into the last affine layer (one backward step through the
//! node producing the output, then the interval of its input), as auto_LiRPA does; the result
//! is also intersected with `C` applied to the output interval, so it is never looser than either.

use ndarray::Array2;

use super::{target_of, BoxBounds};
use crate::bounds::ops::{self, Accum};
use crate::bounds::rounding::add_down;
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::Graph;

/// Interval enclosures of every value of the graph (indexed by `ValueId`), over `input`.
pub fn all_values(graph: &Graph, input: &Interval) -> Result<Vec<Option<Interval>>> {
    let mut vals: Vec<Option<Interval>> = vec![None; graph.values.len()];
    vals[graph.inputs[0].0] = Some(input.clone());
    for node in &graph.nodes {
        let ins: Vec<&Interval> = node
            .inputs
            .iter()
            .map(|v| vals[v.0].as_ref().expect("topological order"))
            .collect();
        vals[node.output.0] = Some(ops::interval(graph, node, &ins)?);
    }
    Ok(vals)
}

/// Lower bound of each row of `c` over the output, from one backward step through the output's
/// producer concretised over the intervals of its inputs, intersected with `c` applied to the
/// output interval.
pub fn folded_rows(
    graph: &Graph,
    vals: &[Option<Interval>],
    out: crate::ir::ValueId,
    c: &Array2<f64>,
) -> Result<Vec<f64>> {
    let out_box = vals[out.0].as_ref().expect("computed");
    let direct = ops::concretize_lower(c, out_box, &Accum::new(c.nrows()));
    let Some(k) = graph.producer(out) else {
        return Ok(direct);
    };
    let node = &graph.nodes[k];
    let ins: Vec<&Interval> = node
        .inputs
        .iter()
        .map(|v| vals[v.0].as_ref().expect("computed"))
        .collect();
    let mut acc = Accum::new(c.nrows());
    let lams = match ops::backward(graph, node, c, &ins, None, &mut acc) {
        Ok(l) => l,
        Err(_) => return Ok(direct),
    };
    let mut folded = vec![0.0; c.nrows()];
    for (idx, (lam, x)) in lams.iter().zip(&ins).enumerate() {
        let zero = Accum::new(c.nrows());
        let part = ops::concretize_lower(lam, x, if idx == 0 { &acc } else { &zero });
        for (f, p) in folded.iter_mut().zip(part) {
            *f = add_down(*f, p);
        }
    }
    Ok(folded
        .into_iter()
        .zip(direct)
        .map(|(a, b)| a.max(b))
        .collect())
}

/// IBP bounds of the outputs and of the rows of `c`.
pub fn bounds(graph: &Graph, input: &Interval, c: Option<&Array2<f64>>) -> Result<BoxBounds> {
    let (_, out) = target_of(graph)?;
    let vals = all_values(graph, input)?;
    let outputs = vals[out.0].clone().expect("computed");
    let rows = match c {
        Some(c) => folded_rows(graph, &vals, out, c)?,
        None => Vec::new(),
    };
    Ok(BoxBounds { outputs, rows })
}
