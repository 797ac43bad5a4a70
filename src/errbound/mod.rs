//! Certified error bounds: how far a surrogate network `N` can stray from the closed-form
//! reference model `f` it replaces, anywhere in a region (`beacons error-bound`).
//!
//! In: a network (canonical graph, one input of `d` scalars), a [`reference::Reference`]
//! (input names, the output index compared, an expression, the region box). Out: an
//! [`bab::Outcome`] with `upper`, a sound bound on `sup_{x ∈ region} |N(x) − f(x)|`; `lower`,
//! the error at a concrete point (`witness`) re-evaluated rigorously; the number of leaves of
//! the final partition; and, on request, the leaves with the bound each proves (a certificate,
//! [`cert`]).
//!
//! # How the bound is sound
//!
//! - **The network** is bounded on each sub-box by CROWN linear bounds from the bound engine
//!   (`engine::crown`), whose floating-point argument is `bounds::rounding`'s; see
//!   [`bound`] for how the linear bounds are combined with `f`. The checker's independent
//!   mean-value form ([`cert::net`]) is used as well; each box keeps the smaller bound.
//! - **The reference expression** is enclosed in interval arithmetic ([`interval::Iv`]) with
//!   every basic operation rounded outward (next float after a correctly rounded operation),
//!   `sqrt` correctly rounded and stepped outward, and `exp`, `log`, `tanh` (and `sigmoid`, via
//!   `exp`) taken from the platform libm and **widened by a relative 2⁻⁴⁵ plus an absolute
//!   2⁻¹⁰⁷⁰**. This rests on one assumption, the same the exact evaluator makes: libm's
//!   `exp`, `ln` and `tanh` are within 2⁻⁵⁰ relative error of the true value (glibc and musl
//!   document at most a few ulps, i.e. about 2⁻⁵²; the margin dominates that 32-fold).
//!   Monotone functions are evaluated at interval ends; powers `x^p` with non-integer `p` are
//!   `exp(p · ln x)`; decimal literals that are not doubles (`0.1`) are the interval between
//!   their two neighbouring doubles, so the bound is for the formula as written in decimal.
//! - **Tightness** comes from the mean-value form with interval derivatives
//!   ([`enclose`]): `f(x) ∈ f(c) + Σ G_i(B) (x_i − c_i)`, combined with the network's linear
//!   bounds so that `sup (N − f)` is bounded by a linear function minus `f`, whose excess over
//!   the truth shrinks quadratically with the box.
//! - **The witness** is re-evaluated with the network in exact rational arithmetic
//!   (`eval::exact`) and `f` enclosed at the point; `lower` is the smallest error consistent
//!   with both enclosures, so `lower ≤ |N(x) − f(x)|` holds at the witness. The `f64` network
//!   value is reported alongside.
//!
//! # The search
//!
//! [`bab::run`] splits the box with the worst bound (along the side whose gradient spread and
//! relaxation gap cost most) until `upper − lower ≤ T · lower`, until `--max-error E` is
//! decided, or until the timeout (checked before every box, so it is honoured within the time
//! of bounding one box).

pub mod bab;
pub mod bound;
pub mod cert;
pub mod enclose;
pub mod expr;
pub mod interval;
pub mod reference;

pub use bab::{Options, Outcome, Stop, Witness};
pub use reference::Reference;

use crate::error::{Error, Result};
use crate::ir::Graph;

/// Checks that `graph` and `reference` fit together (input count, output index, supported
/// operators). `model` is the model's path, for messages.
pub fn check_fits(graph: &Graph, reference: &Reference, model: &std::path::Path) -> Result<()> {
    cert::net::supported(graph).map_err(|e| Error::model(model, "graph", e.to_string()))?;
    if graph.outputs.len() != 1 {
        return Err(Error::model(
            model,
            "outputs",
            format!(
                "error bounds need one output tensor; the model has {}",
                graph.outputs.len()
            ),
        ));
    }
    let d = graph.input_size();
    if d != reference.inputs.len() {
        return Err(Error::Invalid(format!(
            "{}: the model takes {d} input values, the reference `{}` lists {} inputs ({})",
            reference.path.display(),
            reference.name,
            reference.inputs.len(),
            reference.inputs.join(", ")
        )));
    }
    let n = graph.output_size();
    if reference.output >= n {
        return Err(Error::Invalid(format!(
            "{}: key `output` = {} but the model has {n} output value{} (indices 0..{})",
            reference.path.display(),
            reference.output,
            if n == 1 { "" } else { "s" },
            n.saturating_sub(1)
        )));
    }
    Ok(())
}

/// Bounds `sup |N − f|` over the reference's region (see the module docs).
pub fn run(graph: &Graph, reference: &Reference, opts: &Options) -> Result<Outcome> {
    bab::run(
        graph,
        reference.output,
        &reference.expr,
        &reference.region,
        opts,
    )
}
