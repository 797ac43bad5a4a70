//! Outward rounding: the one place where beacons argues that its floating-point bounds are
//! sound. Every bound engine uses these helpers and nothing else to leave round-to-nearest.
//!
//! # The argument
//!
//! beacons computes in IEEE-754 binary64 with the default rounding (to nearest, ties to even),
//! because Rust gives no portable control of the rounding mode and LLVM assumes the default.
//! Soundness comes from two facts about round-to-nearest:
//!
//! 1. **One operation.** For a single correctly rounded operation (`+ − × ÷ sqrt`) with exact
//!    result `z` and computed `fl(z)`, `next_down(fl(z)) ≤ z ≤ next_up(fl(z))` whenever the
//!    result is finite (this includes underflow: the distance to the exact value is at most half
//!    a subnormal ulp). The `*_up` / `*_down` functions below rely on this alone.
//!
//! 2. **Sums of products** (dot products, matrix products). For `s = Σ_{i<n} a_i b_i` computed
//!    in any order, `|fl(s) − s| ≤ γ_n · Σ |a_i b_i| + n · η`, where `u = 2^-53`,
//!    `γ_n = n u / (1 − n u)` (Higham, *Accuracy and Stability of Numerical Algorithms*,
//!    2nd ed., §3.1 and the underflow remark in §3.4) and `η = 2^-1074`, the smallest
//!    subnormal, accounts for products that underflow. Engines therefore compute a matrix product
//!    with an ordinary fast kernel and add an a-posteriori error term built from the product of
//!    absolute values, which they bound *from above* with [`abs_sum_up`]-style inflation.
//!
//!    The bound holds for *any* order of the additions and with or without fused multiply-add
//!    (every product and partial sum is one correctly rounded operation, and no term passes
//!    through more than `n` of them), so the products may come from a blocked matrix kernel
//!    (`ndarray`'s `dot`, `matrixmultiply`) as well as from a plain loop. This is what lets the
//!    error terms of a whole layer be computed at once: for a coefficient matrix `Λ` and a
//!    magnitude vector `m ≥ 0`, the row sums `Σ_j |λ_ij| m_j` are *one matrix-vector product*
//!    `|Λ| · m` in round-to-nearest (each entry a sum of `n` non-negative products), turned into
//!    true upper bounds entry by entry with [`inflate_sum`] ([`abs_matvec_up`]); a signed
//!    product `Λ · b` likewise gets the per-row error [`dot_error`] of the round-to-nearest
//!    `|Λ| · |b|` ([`matvec_with_error`]).
//!
//! Both facts need finite values: any NaN or infinity that appears turns the affected bound
//! into the trivial bound (−∞ for a lower bound, +∞ for an upper one), never into a number.
//!
//! Stored weights are taken as exact: an `f32` in the file widens to `f64` without error, so
//! no error is introduced before the arithmetic above.

use ndarray::{ArrayView1, ArrayView2};

/// Unit roundoff of binary64, `2^-53`.
pub const UNIT_ROUNDOFF: f64 = 1.0 / 9_007_199_254_740_992.0;

/// Smallest positive subnormal binary64, `2^-1074`.
pub const ETA: f64 = f64::from_bits(1);

/// `γ_n = n u / (1 − n u)`, rounded up, for error bounds of `n`-term sums of products.
/// Returns +∞ when `n u ≥ 1/2` (no useful bound; never the case for real networks).
pub fn gamma(n: usize) -> f64 {
    let nu = n as f64 * UNIT_ROUNDOFF; // exact for n < 2^53: a power-of-two scaling
    if nu >= 0.5 {
        return f64::INFINITY;
    }
    div_up(nu, sub_down(1.0, nu))
}

/// An upper bound on `a + b`.
#[inline]
pub fn add_up(a: f64, b: f64) -> f64 {
    up(a + b)
}

/// A lower bound on `a + b`.
#[inline]
pub fn add_down(a: f64, b: f64) -> f64 {
    down(a + b)
}

/// An upper bound on `a − b`.
#[inline]
pub fn sub_up(a: f64, b: f64) -> f64 {
    up(a - b)
}

/// A lower bound on `a − b`.
#[inline]
pub fn sub_down(a: f64, b: f64) -> f64 {
    down(a - b)
}

/// An upper bound on `a · b` (exact when a factor is zero).
#[inline]
pub fn mul_up(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        return 0.0;
    }
    up(a * b)
}

/// A lower bound on `a · b` (exact when a factor is zero).
#[inline]
pub fn mul_down(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        return 0.0;
    }
    down(a * b)
}

/// An upper bound on `a / b`.
#[inline]
pub fn div_up(a: f64, b: f64) -> f64 {
    up(a / b)
}

/// A lower bound on `a / b`.
#[inline]
pub fn div_down(a: f64, b: f64) -> f64 {
    down(a / b)
}

/// The next float above a round-to-nearest result: an upper bound of the exact result of the
/// one operation that produced `x`. NaN becomes +∞ (the trivial upper bound).
#[inline]
pub fn up(x: f64) -> f64 {
    if x.is_nan() {
        f64::INFINITY
    } else {
        x.next_up()
    }
}

/// The next float below a round-to-nearest result. NaN becomes −∞ (the trivial lower bound).
#[inline]
pub fn down(x: f64) -> f64 {
    if x.is_nan() {
        f64::NEG_INFINITY
    } else {
        x.next_down()
    }
}

/// [`inflate_sum`] and [`dot_error`] for one fixed term count `n`, with the constants
/// (`γ_n`, `1 + 2γ_n`, `n η`) computed once: the same numbers, for loops over many rows.
#[derive(Clone, Copy, Debug)]
pub struct SumBound {
    gamma: f64,
    factor: f64,
    n_eta: f64,
}

impl SumBound {
    pub fn new(n: usize) -> SumBound {
        let gamma = gamma(n);
        SumBound {
            gamma,
            factor: add_up(1.0, 2.0 * gamma),
            n_eta: n as f64 * ETA,
        }
    }

    /// [`inflate_sum`]`(s, n)`.
    #[inline]
    pub fn inflate(&self, s: f64) -> f64 {
        mul_up(add_up(s, self.n_eta), self.factor)
    }

    /// [`dot_error`]`(abs_sum, n)`.
    #[inline]
    pub fn error(&self, abs_sum: f64) -> f64 {
        add_up(mul_up(self.gamma, self.inflate(abs_sum)), self.n_eta)
    }
}

/// Upper bound on the exact value of a sum of `n` non-negative products whose round-to-nearest
/// value is `s`. From `|s − S| ≤ γ_n S + n η`: `S ≤ (s + n η) / (1 − γ_n) ≤ (s + n η)(1 + 2γ_n)`
/// for `γ_n ≤ 1/2`; every operation rounded up.
#[inline]
pub fn inflate_sum(s: f64, n: usize) -> f64 {
    mul_up(add_up(s, n as f64 * ETA), add_up(1.0, 2.0 * gamma(n)))
}

/// Upper bound on the rounding error of an `n`-term sum of products whose absolute values sum
/// (computed in round-to-nearest) to `abs_sum`: `γ_n · inflate_sum(abs_sum) + n η`, rounded up.
#[inline]
pub fn dot_error(abs_sum: f64, n: usize) -> f64 {
    add_up(mul_up(gamma(n), inflate_sum(abs_sum, n)), n as f64 * ETA)
}

/// `Σ |a_i| |b_i|` computed in round-to-nearest and rounded up to a true upper bound.
pub fn abs_dot_up(a: &[f64], b: &[f64]) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    inflate_sum(s, a.len())
}

/// For every row `i` of `a` (`rows × n`) and `m ≥ 0` (length `n`): an upper bound of the exact
/// `Σ_j |a_ij| · m_j`. One round-to-nearest matrix-vector product `|a| · m` (whatever the
/// summation order, each entry is a sum of `n` non-negative products), each entry inflated by
/// [`inflate_sum`]. NaN or infinite entries give +∞ or NaN, which callers' `*_up`/`*_down`
/// steps turn into trivial bounds.
pub fn abs_matvec_up(a: ArrayView2<f64>, m: ArrayView1<f64>) -> Vec<f64> {
    let sb = SumBound::new(a.ncols());
    let m_slice = m.as_slice();
    a.rows()
        .into_iter()
        .map(|row| {
            let s = match (row.as_slice(), m_slice) {
                (Some(r), Some(m)) => abs_dot_rn(r, m),
                _ => row.iter().zip(m.iter()).map(|(x, y)| x.abs() * y).sum(),
            };
            sb.inflate(s)
        })
        .collect()
}

/// The round-to-nearest `Σ |a_i| b_i` (`b ≥ 0`) in four interleaved partial sums (so that it
/// vectorises; any order is covered by the argument above).
#[inline]
fn abs_dot_rn(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k].abs() * y[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x.abs() * y;
    }
    s
}

/// For every row `i` of `a` (`rows × n`) and a vector `b`: the round-to-nearest `Σ_j a_ij b_j`
/// and an upper bound of its rounding error, [`dot_error`] of the round-to-nearest
/// `Σ_j |a_ij| |b_j|` (both are matrix-vector products; see the module argument).
pub fn matvec_with_error(a: ArrayView2<f64>, b: ArrayView1<f64>) -> (Vec<f64>, Vec<f64>) {
    let sb = SumBound::new(a.ncols());
    let v = a.dot(&b).to_vec();
    let abs_b = b.mapv(f64::abs);
    let b_slice = abs_b.as_slice();
    let err = a
        .rows()
        .into_iter()
        .map(|row| {
            let s = match (row.as_slice(), b_slice) {
                (Some(r), Some(m)) => abs_dot_rn(r, m),
                _ => row.iter().zip(abs_b.iter()).map(|(x, y)| x.abs() * y).sum(),
            };
            sb.error(s)
        })
        .collect();
    (v, err)
}

/// A rigorous lower bound of `Σ a_i b_i`.
pub fn dot_down(a: &[f64], b: &[f64]) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let abs: f64 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    sub_down(s, dot_error(abs, a.len()))
}

/// A rigorous upper bound of `Σ a_i b_i`.
pub fn dot_up(a: &[f64], b: &[f64]) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let abs: f64 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    add_up(s, dot_error(abs, a.len()))
}

/// Relative error assumed of the platform's `exp` and `tanh` (glibc documents at most a few
/// ulps; 2^-50 is far above that), widened to 2^-45 by [`exp_enclosure`] / [`tanh_enclosure`].
///
/// This is the one assumption beacons makes beyond IEEE-754: the platform's `exp` and `tanh`
/// are accurate to 2^-50 relative (about 8 ulps) on finite arguments. The exact evaluator
/// (`eval::exact`) rests on the same assumption.
const LIBM_REL: f64 = 1.0 / (1u64 << 45) as f64;

/// Absolute widening covering subnormal results (2^-1070).
const LIBM_TINY: f64 = f64::MIN_POSITIVE / (1u64 << 48) as f64;

fn widen(e: f64) -> (f64, f64) {
    let w = add_up(mul_up(e.abs(), LIBM_REL), LIBM_TINY);
    (sub_down(e, w), add_up(e, w))
}

/// An enclosure `[lo, hi] ∋ exp(x)` (see [`LIBM_REL`] for the assumption).
pub fn exp_enclosure(x: f64) -> (f64, f64) {
    if x.is_nan() {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let (lo, hi) = widen(x.exp());
    (lo.max(0.0), hi)
}

/// An enclosure `[lo, hi] ∋ ln(x)` for `x > 0` (NaN or `x ≤ 0`: the trivial enclosure).
/// Same assumption as [`exp_enclosure`] for the platform's `ln` (glibc documents at most 1 ulp).
/// The relative widening is of the *result*, which is exactly what a relative-error bound of
/// `ln` states, also near `x = 1` where `ln(x)` is small.
pub fn log_enclosure(x: f64) -> (f64, f64) {
    if x.is_nan() || x <= 0.0 {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    if x == 1.0 {
        return (0.0, 0.0);
    }
    widen(x.ln())
}

/// An enclosure `[lo, hi] ∋ tanh(x)`, within `[-1, 1]`.
pub fn tanh_enclosure(x: f64) -> (f64, f64) {
    if x.is_nan() {
        return (-1.0, 1.0);
    }
    let (lo, hi) = widen(x.tanh());
    (lo.max(-1.0), hi.min(1.0))
}

/// An enclosure `[lo, hi] ∋ 1 / (1 + exp(−x))`, within `[0, 1]`.
pub fn sigmoid_enclosure(x: f64) -> (f64, f64) {
    let (elo, ehi) = exp_enclosure(-x);
    let lo = if ehi.is_infinite() {
        0.0
    } else {
        div_down(1.0, add_up(1.0, ehi))
    };
    let hi = div_up(1.0, add_down(1.0, elo));
    (lo.max(0.0), hi.min(1.0))
}

/// Centre and radius of `[lo, hi]` with `[c − r, c + r] ⊇ [lo, hi]` (both finite), computed so
/// that the enclosure holds in floating point.
pub fn centre_radius(lo: f64, hi: f64) -> (f64, f64) {
    let c = lo + 0.5 * (hi - lo);
    let c = if c.is_finite() {
        c
    } else {
        0.5 * lo + 0.5 * hi
    };
    let r = sub_up(hi, c).max(sub_up(c, lo)).max(0.0);
    (c, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_rational::BigRational;
    use num_traits::{FromPrimitive, Signed};
    use proptest::prelude::*;

    fn q(x: f64) -> BigRational {
        BigRational::from_f64(x).unwrap()
    }

    #[test]
    fn gamma_is_monotone_and_small() {
        assert!(gamma(1) > UNIT_ROUNDOFF);
        assert!(gamma(10) < gamma(11));
        assert!(gamma(1_000_000) < 1e-9);
        assert_eq!(gamma(1 << 53), f64::INFINITY);
    }

    #[test]
    fn nan_becomes_trivial_bound() {
        assert_eq!(up(f64::NAN), f64::INFINITY);
        assert_eq!(down(f64::NAN), f64::NEG_INFINITY);
    }

    proptest! {
        #[test]
        fn single_ops_enclose_the_exact_result(a in -1e30f64..1e30, b in -1e30f64..1e30) {
            prop_assert!(q(add_down(a, b)) <= q(a) + q(b));
            prop_assert!(q(add_up(a, b)) >= q(a) + q(b));
            prop_assert!(q(mul_down(a, b)) <= q(a) * q(b));
            prop_assert!(q(mul_up(a, b)) >= q(a) * q(b));
            if b != 0.0 {
                prop_assert!(q(div_down(a, b)) <= q(a) / q(b));
                prop_assert!(q(div_up(a, b)) >= q(a) / q(b));
            }
        }

        #[test]
        fn dots_enclose_the_exact_dot(
            v in proptest::collection::vec((-1e6f64..1e6, -1e6f64..1e6, -8i32..8), 1..64)
        ) {
            // Mixed magnitudes provoke cancellation.
            let a: Vec<f64> = v.iter().map(|(x, _, e)| x * 10f64.powi(*e)).collect();
            let b: Vec<f64> = v.iter().map(|(_, y, _)| *y).collect();
            let exact = a.iter().zip(&b).fold(q(0.0), |s, (x, y)| s + q(*x) * q(*y));
            prop_assert!(q(dot_down(&a, &b)) <= exact);
            prop_assert!(q(dot_up(&a, &b)) >= exact);
            let abs_exact = a.iter().zip(&b).fold(q(0.0), |s, (x, y)| s + (q(*x) * q(*y)).abs());
            prop_assert!(q(abs_dot_up(&a, &b)) >= abs_exact);
        }

        #[test]
        fn matvecs_enclose_the_exact_row_sums(
            v in proptest::collection::vec((-1e6f64..1e6, -1e6f64..1e6, -8i32..8), 1..40),
            rows in 1usize..4,
        ) {
            let n = v.len();
            let a = ndarray::Array2::from_shape_fn((rows, n), |(i, j)| {
                let (x, _, e) = v[(j + i) % n];
                x * 10f64.powi(e) * if i % 2 == 0 { 1.0 } else { -0.75 }
            });
            let b: Vec<f64> = v.iter().map(|(_, y, _)| *y).collect();
            let m: Vec<f64> = b.iter().map(|y| y.abs()).collect();
            let up = abs_matvec_up(a.view(), ArrayView1::from(&m));
            let (val, err) = matvec_with_error(a.view(), ArrayView1::from(&b));
            for i in 0..rows {
                let abs_exact = (0..n).fold(q(0.0), |s, j| s + q(a[(i, j)]).abs() * q(m[j]));
                prop_assert!(q(up[i]) >= abs_exact);
                let exact = (0..n).fold(q(0.0), |s, j| s + q(a[(i, j)]) * q(b[j]));
                prop_assert!(q(sub_down(val[i], err[i])) <= exact.clone());
                prop_assert!(q(add_up(val[i], err[i])) >= exact);
            }
        }

        #[test]
        fn transcendental_enclosures_are_ordered_and_tight(x in -40f64..40.0) {
            for (lo, hi, v) in [
                { let (a, b) = exp_enclosure(x); (a, b, x.exp()) },
                { let (a, b) = tanh_enclosure(x); (a, b, x.tanh()) },
                { let (a, b) = sigmoid_enclosure(x); (a, b, 1.0 / (1.0 + (-x).exp())) },
                { let (a, b) = log_enclosure(x.abs() + 1e-300); (a, b, (x.abs() + 1e-300).ln()) },
            ] {
                prop_assert!(lo <= v && v <= hi);
                prop_assert!(hi - lo <= 1e-12 * v.abs() + 1e-300);
            }
        }

        #[test]
        fn centre_radius_encloses(lo in -1e300f64..1e300, w in 0f64..1e300) {
            let hi = lo + w;
            prop_assume!(hi.is_finite());
            let (c, r) = centre_radius(lo, hi);
            prop_assert!(q(c) - q(r) <= q(lo));
            prop_assert!(q(c) + q(r) >= q(hi));
        }
    }
}
