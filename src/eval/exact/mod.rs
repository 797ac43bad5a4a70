//! Exact evaluation of one sample in rational arithmetic: the ground truth of soundness tests.
//!
//! In: a graph and one sample (rationals, or `f64` values converted exactly). Out: for each
//! output scalar (all graph outputs flattened and concatenated) a [`RatInterval`] that is
//! guaranteed to contain the real-arithmetic value of the network at that sample, where the
//! network's constants are the exact `f64` numbers stored in its ops.
//!
//! **What is exact.** Every piecewise-linear operator is computed exactly in
//! `BigRational` (Linear, Conv, Add/Sub/Mul/DivConst, Add, Sub, Relu, LeakyRelu,
//! AveragePool, MaxPool, GlobalAveragePool, Reshape, Transpose). As long as only such
//! operators appear, every result interval is a point (`lo == hi`) equal to the true value.
//!
//! **What is enclosed.** Operators with irrational results give rigorous enclosures:
//! - BatchNorm's `sqrt(var + eps)` is bracketed by `f64` numbers `s_lo ≤ s_hi` with
//!   `s_lo² ≤ var + eps ≤ s_hi²` checked exactly (a point when the square root is exact).
//! - Sigmoid and Softmax use `exp` from the platform libm; Tanh uses its `tanh`. Each libm
//!   result is widened outward by a relative margin of 2⁻⁴⁵ plus an absolute 2⁻¹⁰⁷⁰ (for
//!   subnormal results) before the rest of the formula is evaluated exactly in rationals.
//!   **Assumption:** libm's `exp` and `tanh` are within 2⁻⁵⁰ relative error (glibc and musl
//!   document at most a few ulps, i.e. about 2⁻⁵⁰), so the 2⁻⁴⁵ margin dominates it 32-fold.
//!   Sigmoid and Tanh are evaluated at the interval ends rounded outward (they are
//!   increasing); Softmax uses `y_i = 1 / (1 + Σ_{j≠i} exp(x_j − x_i))`, increasing in `x_i`
//!   and decreasing in the other entries.
//!
//! After an enclosure the interval ends are rounded outward to `f64` (exactly checked by
//! [`round_down_f64`] / [`round_up_f64`]) to keep the rationals small, and later operators
//! propagate intervals soundly: sign-split weights for Linear and Conv, monotonicity for
//! Relu, pools and the other increasing maps, endpoint products for Mul/DivConst.
//! `DivConst` by an exact zero, and any NaN or infinite input, are errors.

mod enclose;
mod ops;

use ndarray::{ArrayD, IxDyn};
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive};

use crate::error::{Error, Result};
use crate::ir::{Graph, Op};

pub use enclose::{next_down, next_up};

type Q = BigRational;

/// A closed rational interval `[lo, hi]` known to contain a real value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatInterval {
    pub lo: BigRational,
    pub hi: BigRational,
}

impl RatInterval {
    /// The degenerate interval `[v, v]`.
    pub fn point(v: BigRational) -> RatInterval {
        RatInterval {
            lo: v.clone(),
            hi: v,
        }
    }
    /// Whether the value is known exactly.
    pub fn is_point(&self) -> bool {
        self.lo == self.hi
    }
    /// Whether `v` lies in the interval.
    pub fn contains(&self, v: &BigRational) -> bool {
        &self.lo <= v && v <= &self.hi
    }
    /// Whether the `f64` value `v` lies in the interval (false for NaN and infinities).
    pub fn contains_f64(&self, v: f64) -> bool {
        BigRational::from_float(v).is_some_and(|q| self.contains(&q))
    }
    /// The largest distance from `v` to a point of the interval, in `f64` (rounded up).
    pub fn max_distance_f64(&self, v: f64) -> f64 {
        match BigRational::from_float(v) {
            Some(q) => {
                let a = (&q - &self.lo).abs();
                let b = (&q - &self.hi).abs();
                round_up_f64(if a > b { &a } else { &b })
            }
            None => f64::INFINITY,
        }
    }
}

/// The largest `f64` that is `≤ q` (−∞ if `q` is below `−f64::MAX`). Exactly checked.
pub fn round_down_f64(q: &BigRational) -> f64 {
    let mut c = q.to_f64().unwrap_or(0.0);
    if c.is_nan() {
        c = 0.0;
    }
    c = c.clamp(-f64::MAX, f64::MAX);
    while BigRational::from_float(c).is_some_and(|r| &r > q) {
        c = next_down(c);
    }
    if c.is_infinite() {
        return c;
    }
    loop {
        let n = next_up(c);
        if BigRational::from_float(n).is_some_and(|r| &r <= q) {
            c = n;
        } else {
            return c;
        }
    }
}

/// The smallest `f64` that is `≥ q` (+∞ if `q` is above `f64::MAX`). Exactly checked.
pub fn round_up_f64(q: &BigRational) -> f64 {
    -round_down_f64(&-q)
}

/// Exact (or rigorously enclosed) outputs of `graph` at one sample.
pub fn forward(graph: &Graph, input: &[BigRational]) -> Result<Vec<RatInterval>> {
    let expected = graph.input_size();
    if input.len() != expected {
        return Err(Error::Invalid(format!(
            "the network takes {expected} input values, but {} were given",
            input.len()
        )));
    }
    let mut values: Vec<Option<XT>> = vec![None; graph.values.len()];
    let mut at = 0;
    for &v in &graph.inputs {
        let value = graph.value(v);
        let size = value.size();
        let lo = ArrayD::from_shape_vec(IxDyn(&value.shape), input[at..at + size].to_vec())
            .map_err(|e| Error::Invalid(format!("exact input `{}`: {e}", value.name)))?;
        values[v.0] = Some(XT { lo, hi: None });
        at += size;
    }
    let mut remaining = graph.use_counts();
    for node in &graph.nodes {
        let args: Vec<&XT> = node
            .inputs
            .iter()
            .map(|v| {
                values[v.0].as_ref().ok_or_else(|| {
                    Error::Invalid(format!(
                        "node `{}` reads value #{} before it is computed",
                        node.name, v.0
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let out = eval_node(&node.op, &args).map_err(|e| {
            Error::Invalid(format!(
                "exact evaluation of node `{}` ({}): {e}",
                node.name,
                node.op.kind()
            ))
        })?;
        if out.lo.shape() != graph.value(node.output).shape.as_slice() {
            return Err(Error::Invalid(format!(
                "node `{}` produced shape {:?}, the graph says {:?}",
                node.name,
                out.lo.shape(),
                graph.value(node.output).shape
            )));
        }
        values[node.output.0] = Some(out);
        for v in &node.inputs {
            remaining[v.0] = remaining[v.0].saturating_sub(1);
            if remaining[v.0] == 0 {
                values[v.0] = None;
            }
        }
    }
    let mut out = Vec::with_capacity(graph.output_size());
    for &o in &graph.outputs {
        let v = values[o.0]
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("output #{} is never computed", o.0)))?;
        let hi = v.hi();
        for (l, h) in v.lo.iter().zip(hi.iter()) {
            out.push(RatInterval {
                lo: l.clone(),
                hi: h.clone(),
            });
        }
    }
    Ok(out)
}

/// [`forward`] at an `f64` sample, each value converted exactly. NaN or ±∞ is an error.
pub fn forward_f64_point(graph: &Graph, input: &[f64]) -> Result<Vec<RatInterval>> {
    let q: Vec<Q> = input
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            BigRational::from_float(v)
                .ok_or_else(|| Error::Invalid(format!("input #{i} is {v}, not a finite number")))
        })
        .collect::<Result<_>>()?;
    forward(graph, &q)
}

/// A per-sample tensor of intervals; `hi == None` means a point (`hi == lo`).
#[derive(Clone, Debug)]
pub(crate) struct XT {
    pub lo: ArrayD<Q>,
    pub hi: Option<ArrayD<Q>>,
}

impl XT {
    fn hi(&self) -> &ArrayD<Q> {
        self.hi.as_ref().unwrap_or(&self.lo)
    }

    /// Applies an increasing map to both ends.
    fn monotone(&self, f: impl Fn(&ArrayD<Q>) -> Result<ArrayD<Q>, String>) -> Result<XT, String> {
        Ok(XT {
            lo: f(&self.lo)?,
            hi: self.hi.as_ref().map(f).transpose()?,
        })
    }
}

fn eval_node(op: &Op, args: &[&XT]) -> Result<XT, String> {
    let x = args.first().ok_or("missing input")?;
    let second = || args.get(1).copied().ok_or("missing 2nd input");
    match op {
        Op::Linear { weight, bias } => ops::linear(x, weight, bias.as_ref()),
        Op::Conv(c) => ops::conv(x, c),
        Op::AddConst(c) => ops::add_const(x, c),
        Op::MulConst(c) => ops::mul_const(x, c, false),
        Op::DivConst(c) => ops::mul_const(x, c, true),
        Op::Add => ops::add_sub(x, second()?, false),
        Op::Sub => ops::add_sub(x, second()?, true),
        Op::BatchNorm {
            scale,
            bias,
            mean,
            var,
            epsilon,
        } => ops::batch_norm(x, scale, bias, mean, var, *epsilon),
        Op::Relu => x.monotone(|a| Ok(a.mapv(|v| if v > Q::default() { v } else { Q::default() }))),
        Op::LeakyRelu { alpha } => ops::leaky_relu(x, *alpha),
        Op::Sigmoid => Ok(enclose::sigmoid(x)),
        Op::Tanh => Ok(enclose::tanh(x)),
        Op::Reshape { shape } => x.monotone(|a| {
            a.as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(shape))
                .map_err(|e| e.to_string())
        }),
        Op::Transpose { perm } => x.monotone(|a| {
            let mut seen = vec![false; a.ndim()];
            for &p in perm {
                if p >= a.ndim() || std::mem::replace(&mut seen[p], true) {
                    return Err(format!("perm {perm:?} is not a permutation"));
                }
            }
            if perm.len() != a.ndim() {
                return Err(format!("perm {perm:?} for shape {:?}", a.shape()));
            }
            Ok(a.view()
                .permuted_axes(IxDyn(perm))
                .as_standard_layout()
                .into_owned())
        }),
        Op::AveragePool(p) => x.monotone(|a| ops::pool(a, p, false)),
        Op::MaxPool(p) => x.monotone(|a| ops::pool(a, p, true)),
        Op::GlobalAveragePool => x.monotone(ops::global_average_pool),
        Op::Softmax { axis } => enclose::softmax(x, *axis),
    }
}

#[cfg(test)]
mod tests;
