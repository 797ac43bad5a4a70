//! `milp`: the exact mixed-integer encoding of a piecewise-linear network, as ground truth for
//! tests on small networks.
//!
//! Same variables and rows as the `lp` triangle relaxation (see [`super::lp`]), plus, for every
//! unstable ReLU / LeakyReLU (slope `α < 1`) with pre-activation bounds `l < 0 < u`, a binary
//! `δ` and the big-M rows `y ≤ x − (1−α) l (1−δ)` and `y ≤ αx + (1−α) u δ`: with `y ≥ x` and
//! `y ≥ αx` they force `y = x, x ≥ 0` when `δ = 1` and `y = αx, x ≤ 0` when `δ = 0`, so the
//! feasible set projected on the input is exactly the input box and the optimum is the true
//! minimum of the objective over the box. The intermediate bounds that make the big-M rows valid
//! are CROWN's (sound).
//!
//! **Not a sound bound.** The MILP is solved in floating point by `microlp` (pure Rust, branch
//! and bound on a simplex) and its big-M rows are not rounded outward: the optimum is an
//! approximation of the true minimum, good to solver tolerance, and the returned input point is
//! an approximate minimiser. Tests use it as ground truth (an LP lower bound must not exceed it
//! beyond tolerance, and exact evaluation at the minimiser must reproduce it); no verdict may
//! rest on it. Branch and bound is exponential in the number of unstable neurons: keep it to
//! small networks.

use good_lp::{Solution, SolverModel};

use super::lp::{intermediate_bounds, Boxes, Encoding, Relaxation};
use crate::bounds::Interval;
use crate::error::{Error, Result};
use crate::ir::Graph;

/// An (approximate) optimum of the MILP.
#[derive(Clone, Debug, PartialEq)]
pub struct MilpOptimum {
    /// The optimal objective value, as the solver computed it.
    pub value: f64,
    /// The minimiser's input, clamped into the box.
    pub input: Vec<f64>,
    /// The solver's values of the outputs there.
    pub output: Vec<f64>,
    /// Binary variables (unstable activations) of the encoding.
    pub binaries: usize,
}

/// Minimises `row · Y` over the input box with the exact MILP encoding (test ground truth, not
/// a sound bound: see the module docs).
pub fn minimize(graph: &Graph, input: &Interval, row: &[f64]) -> Result<MilpOptimum> {
    let (_, _, inter) = intermediate_bounds(graph, input)?;
    let enc = Encoding::new(graph, &inter, Relaxation::BigM)?;
    if row.len() != enc.output.len() {
        return Err(Error::Invalid(format!(
            "the objective has {} coefficients, the output {} scalars",
            row.len(),
            enc.output.len()
        )));
    }
    let objective: Vec<(usize, f64)> = row
        .iter()
        .zip(&enc.output)
        .filter(|(a, _)| **a != 0.0)
        .map(|(a, k)| (*k, *a))
        .collect();
    let (pv, vars, obj) = enc.problem(&objective, Boxes::Exact);
    let mut model = pv.minimise(obj.clone()).using(good_lp::microlp);
    for r in &enc.rows {
        model.add_constraint(Encoding::constraint(r, &vars));
    }
    let sol = model
        .solve()
        .map_err(|e| Error::Invalid(format!("the MILP solver failed: {e}")))?;
    Ok(MilpOptimum {
        value: sol.eval(&obj),
        input: enc
            .input
            .iter()
            .zip(input.lo.iter().zip(&input.hi))
            .map(|(&k, (&l, &h))| sol.value(vars[k]).clamp(l, h))
            .collect(),
        output: enc.output.iter().map(|&k| sol.value(vars[k])).collect(),
        binaries: enc.binary.iter().filter(|b| **b).count(),
    })
}
