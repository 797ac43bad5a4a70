//! Bound engines: drive the per-op rules of `crate::bounds` over a whole graph.
//!
//! In: a graph (single input, single output, exact canonical level), an input box, and
//! optionally a specification matrix `C` (one row `a` per atom `a·Y ≤ b`). Out: sound lower and
//! upper bounds of every output, and sound lower bounds of every row `a·Y` (the C-matrix trick:
//! rows are propagated directly, which is far tighter than combining output bounds).
//!
//! Methods: `ibp` (interval propagation; the last affine layer is folded with `C` as auto_LiRPA
//! does), `crown` (backward linear relaxation, intermediate bounds by CROWN on the neurons an
//! interval step leaves unstable, as auto_LiRPA's default), `alpha-crown`, and `lp` (the
//! triangle-relaxation LP over CROWN's intermediate bounds, made sound from the solver's duals,
//! see [`lp`]; [`milp`] is the exact encoding, test ground truth only). Engine state
//! (pre-activation bounds) lives in [`crown::State`], never in the ops.

pub mod alpha;
pub mod crown;
pub mod ibp;
pub mod lp;
pub mod milp;
pub mod property;

use ndarray::Array2;

use crate::bounds::Interval;
use crate::error::{Error, Result};
use crate::ir::{Graph, Op, ValueId};

/// A bound method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Ibp,
    Crown,
    AlphaCrown,
    Lp,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Ibp => "ibp",
            Method::Crown => "crown",
            Method::AlphaCrown => "alpha-crown",
            Method::Lp => "lp",
        }
    }
}

/// Bounds over one input box.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxBounds {
    /// Lower and upper bound of every output scalar.
    pub outputs: Interval,
    /// Lower bound of every row of `C` applied to the outputs (empty without `C`).
    pub rows: Vec<f64>,
}

impl BoxBounds {
    /// The elementwise tighter of two sound bounds of the same quantities.
    pub fn tighter(a: BoxBounds, b: BoxBounds) -> BoxBounds {
        BoxBounds {
            outputs: a.outputs.intersect(&b.outputs),
            rows: a.rows.iter().zip(&b.rows).map(|(x, y)| x.max(*y)).collect(),
        }
    }
}

/// The graph the engines accept: one input, one output, and a final Softmax stripped (bounds
/// then refer to the logits). Returns the output value to bound.
pub fn target_of(graph: &Graph) -> Result<(ValueId, ValueId)> {
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(Error::Invalid(format!(
            "the bound engines need a model with one input and one output; this one has {} and {}",
            graph.inputs.len(),
            graph.outputs.len()
        )));
    }
    let mut out = graph.outputs[0];
    if let Some(k) = graph.producer(out) {
        if let Op::Softmax { .. } = graph.nodes[k].op {
            out = graph.nodes[k].inputs[0];
        }
    }
    Ok((graph.inputs[0], out))
}

/// Computes bounds with `method` over `input`, for the outputs and the rows of `c`.
pub fn compute(
    graph: &Graph,
    method: Method,
    input: &Interval,
    c: Option<&Array2<f64>>,
) -> Result<BoxBounds> {
    let (x, _) = target_of(graph)?;
    if input.len() != graph.value(x).size() {
        return Err(Error::Invalid(format!(
            "the input box has {} dimensions, the model input has {}",
            input.len(),
            graph.value(x).size()
        )));
    }
    if let Some((i, _)) = input
        .lo
        .iter()
        .zip(&input.hi)
        .enumerate()
        .find(|(_, (l, h))| !(l.is_finite() && h.is_finite() && l <= h))
    {
        return Err(Error::Invalid(format!(
            "input dimension {i} has no finite, non-empty range [{}, {}]",
            input.lo[i], input.hi[i]
        )));
    }
    match method {
        Method::Ibp => ibp::bounds(graph, input, c),
        Method::Crown => {
            // auto_LiRPA's rule (sparse intermediate bounds); where a layer is more than 90%
            // unstable, auto_LiRPA on a fresh module bounds every neuron of it instead, and
            // since CROWN is not monotone in its intermediate bounds neither is uniformly
            // tighter, so that variant runs too and the better bound of each row is kept.
            let a = crown::State::new(graph, input, crown::Intermediate::Replace)?;
            let bounds = a.bounds(c)?;
            if !a.dense_differs {
                return Ok(bounds);
            }
            let b = crown::State::new(graph, input, crown::Intermediate::ReplaceDense)?;
            Ok(BoxBounds::tighter(bounds, b.bounds(c)?))
        }
        Method::AlphaCrown => alpha::bounds(graph, input, c, alpha::DEFAULT_ITERATIONS),
        Method::Lp => lp::bounds(graph, input, c),
    }
}

/// CROWN made tighter for verification: [`Method::Crown`]'s bounds intersected with those of
/// a state whose intermediate bounds intersect CROWN with the interval step
/// ([`crown::Intermediate::Intersect`]; far tighter on most problems, looser on a few, since
/// CROWN is not monotone in its intermediate bounds). About twice the cost of `crown`.
pub fn crown_tight(graph: &Graph, input: &Interval, c: Option<&Array2<f64>>) -> Result<BoxBounds> {
    let a = compute(graph, Method::Crown, input, c)?;
    let b = crown::State::new(graph, input, crown::Intermediate::Intersect)?.bounds(c)?;
    Ok(BoxBounds::tighter(a, b))
}
