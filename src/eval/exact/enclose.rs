//! Rigorous enclosures of the irrational operators: `sqrt` (BatchNorm), Sigmoid, Tanh,
//! Softmax, and the outward `f64` rounding that keeps rationals small afterwards.
//!
//! The argument: a libm result `e` for `exp(d)` (or `tanh(d)`) at an `f64` point `d` is
//! assumed within relative error 2⁻⁵⁰ of the true value (see the parent module docs).
//! [`exp_down`] / [`exp_up`] widen it by 2⁻⁴⁵ relative plus 2⁻¹⁰⁷⁰ absolute and step one
//! more `f64` outward, so `exp_down(d) ≤ exp(d) ≤ exp_up(d)`. Every other step (the
//! rational arithmetic of `1 / (1 + E)`, the outward rounding of arguments) is exact or
//! exactly checked. The functions are increasing in their argument, so enclosures at
//! outward-rounded interval ends enclose the whole interval.

use ndarray::{ArrayD, Axis, Zip};
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

use super::{round_down_f64, round_up_f64, XT};

type Q = BigRational;

/// Relative widening of a libm result.
const REL: f64 = 1.0 / (1u64 << 45) as f64;
/// Absolute widening, covering the lost relative accuracy of subnormal results (2⁻¹⁰⁷⁰).
const TINY: f64 = f64::MIN_POSITIVE / (1u64 << 48) as f64;

/// The next `f64` above `x` (identity on NaN and +∞).
pub fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// The next `f64` below `x` (identity on NaN and −∞).
pub fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

fn qf(v: f64) -> Q {
    BigRational::from_float(v).unwrap_or_default()
}

/// `[lo, hi]` widened to `f64` ends (kept as they are when they lie beyond the `f64` range).
pub(super) fn round_outward(lo: &Q, hi: &Q) -> (Q, Q) {
    let l = BigRational::from_float(round_down_f64(lo)).unwrap_or_else(|| lo.clone());
    let h = BigRational::from_float(round_up_f64(hi)).unwrap_or_else(|| hi.clone());
    (l, h)
}

/// `f64` numbers `s_lo ≤ sqrt(v) ≤ s_hi`, checked exactly (`s_lo == s_hi` iff exact).
pub(super) fn sqrt_enclosure(v: &Q) -> Result<(Q, Q), String> {
    if v.is_negative() {
        return Err("BatchNorm variance + epsilon is negative".into());
    }
    if v.is_zero() {
        return Err("BatchNorm variance + epsilon is 0 (division by zero)".into());
    }
    let approx = round_down_f64(v).sqrt();
    if !approx.is_finite() || approx <= 0.0 {
        return Err(format!(
            "BatchNorm variance + epsilon ({approx}²) is out of range"
        ));
    }
    let sq = |s: f64| {
        let r = qf(s);
        &r * &r
    };
    let mut lo = approx;
    while lo > 0.0 && &sq(lo) > v {
        lo = next_down(lo);
    }
    while &sq(next_up(lo)) <= v {
        lo = next_up(lo);
    }
    if lo <= 0.0 {
        return Err("BatchNorm variance + epsilon is too small".into());
    }
    let hi = if &sq(lo) == v { lo } else { next_up(lo) };
    Ok((qf(lo), qf(hi)))
}

/// A lower bound on `exp(d)`.
pub(super) fn exp_down(d: f64) -> f64 {
    let e = d.exp();
    if e.is_infinite() {
        return f64::MAX;
    }
    next_down(e - e * REL - TINY).max(0.0)
}

/// An upper bound on `exp(d)` (possibly +∞).
pub(super) fn exp_up(d: f64) -> f64 {
    let e = d.exp();
    if e.is_infinite() {
        return e;
    }
    next_up(e + e * REL + TINY)
}

/// `1 / (1 + s)` for `s ≥ 0` given as a sum of `f64` terms (any +∞ gives 0).
fn recip_one_plus(terms: &[f64]) -> Q {
    if terms.iter().any(|t| t.is_infinite()) {
        return Q::zero();
    }
    let s: Q = terms.iter().map(|&t| qf(t)).fold(Q::one(), |a, b| a + b);
    s.recip()
}

fn sigmoid_lower(x: &Q) -> Q {
    let e = exp_up(round_up_f64(&-x));
    qf(round_down_f64(&recip_one_plus(&[e])))
}

fn sigmoid_upper(x: &Q) -> Q {
    let e = exp_down(round_down_f64(&-x));
    qf(round_up_f64(&recip_one_plus(&[e])))
}

fn tanh_lower(x: &Q) -> Q {
    let t = round_down_f64(x).tanh();
    qf(next_down(t - t.abs() * REL - TINY).max(-1.0))
}

fn tanh_upper(x: &Q) -> Q {
    let t = round_up_f64(x).tanh();
    qf(next_up(t + t.abs() * REL + TINY).min(1.0))
}

/// Applies an increasing function given by lower/upper bounds; `at_zero` is its exact value
/// at 0, used when the input is exactly 0.
fn increasing(x: &XT, lower: fn(&Q) -> Q, upper: fn(&Q) -> Q, at_zero: Q) -> XT {
    let hi = x.hi();
    let mut los = Vec::with_capacity(x.lo.len());
    let mut his = Vec::with_capacity(x.lo.len());
    for (l, h) in x.lo.iter().zip(hi.iter()) {
        if l.is_zero() && h.is_zero() {
            los.push(at_zero.clone());
            his.push(at_zero.clone());
        } else {
            los.push(lower(l));
            his.push(upper(h));
        }
    }
    let shape = x.lo.raw_dim();
    XT {
        lo: ArrayD::from_shape_vec(shape.clone(), los).unwrap_or_else(|_| x.lo.clone()),
        hi: ArrayD::from_shape_vec(shape, his).ok(),
    }
}

pub(super) fn sigmoid(x: &XT) -> XT {
    increasing(x, sigmoid_lower, sigmoid_upper, Q::new(1.into(), 2.into()))
}

pub(super) fn tanh(x: &XT) -> XT {
    increasing(x, tanh_lower, tanh_upper, Q::zero())
}

/// Softmax along `axis` through `y_i = 1 / (1 + Σ_{j≠i} exp(x_j − x_i))`.
pub(super) fn softmax(x: &XT, axis: usize) -> Result<XT, String> {
    if axis >= x.lo.ndim() {
        return Err(format!("Softmax axis {axis} for shape {:?}", x.lo.shape()));
    }
    let hi = x.hi();
    let mut out_lo = x.lo.clone();
    let mut out_hi = x.lo.clone();
    Zip::from(out_lo.lanes_mut(Axis(axis)))
        .and(out_hi.lanes_mut(Axis(axis)))
        .and(x.lo.lanes(Axis(axis)))
        .and(hi.lanes(Axis(axis)))
        .for_each(|mut ol, mut oh, l, h| {
            let n = l.len();
            for i in 0..n {
                let mut up_terms = Vec::with_capacity(n);
                let mut down_terms = Vec::with_capacity(n);
                for j in (0..n).filter(|&j| j != i) {
                    up_terms.push(exp_up(round_up_f64(&(&h[j] - &l[i]))));
                    down_terms.push(exp_down(round_down_f64(&(&l[j] - &h[i]))));
                }
                ol[i] = qf(round_down_f64(&recip_one_plus(&up_terms)));
                oh[i] = qf(round_up_f64(&recip_one_plus(&down_terms)));
            }
        });
    Ok(XT {
        lo: out_lo,
        hi: Some(out_hi),
    })
}
