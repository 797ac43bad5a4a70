//! Joint refutation of a conjunction: atoms that no single margin excludes on a box, but whose
//! linear lower bounds together do.
//!
//! In: the linear lower bounds `M_j(x) ≥ A_j·x + k_j` (valid on a box `[lo, hi]`) of the
//! margins `M_j = a_j·Y − b_j` of the atoms of one unsafe conjunction. Out: weights `λ ≥ 0`
//! and a sound lower bound of `min_x Σ_j λ_j (A_j·x + k_j)` over the box. When that bound is
//! positive, at every `x` of the box some atom has a positive margin, so the conjunction (all
//! margins `≤ 0`) is infeasible there, even when every single `min_x M_j` is negative: near
//! the boundary between the parts of a box where different atoms are positive, input
//! splitting alone needs ever smaller boxes, the combination does not.
//!
//! The weights come from a small LP (microlp): maximise `Σ_i s_i + Σ_j λ_j k_j` over
//! `Σ_j λ_j = 1`, `λ ≥ 0`, `s_i ≤ lo_i μ_i`, `s_i ≤ hi_i μ_i` with `μ = Σ_j λ_j A_j` (its
//! optimum is `min_x max_j (A_j·x + k_j)`, by LP duality). The solver's answer is only a
//! choice; [`bound_of`] evaluates the combination it names with outward rounding
//! (`bounds::rounding`), so the result is sound whatever the solver returned.

use microlp::{ComparisonOp, LinearExpr, OptimizationDirection, Problem};

use crate::bounds::rounding::{add_down, dot_error, mul_down, mul_up, sub_down};

/// A combination of the atoms of one conjunction and its sound lower bound on a box.
#[derive(Clone, Debug, PartialEq)]
pub struct Joint {
    /// One non-negative weight per atom (not all zero).
    pub weights: Vec<f64>,
    /// A lower bound of `Σ_j weights_j · M_j(x)` over the box.
    pub bound: f64,
    /// `Σ_j weights_j A_j` (rounded to nearest): the combination's input sensitivities.
    pub coeffs: Vec<f64>,
}

/// Most weight a constraint gets in [`combine`].
const CONSTRAINT_WEIGHT: f64 = 1e4;

/// The best combination of the linear bounds `a[j]·x + k[j]` over `[lo, hi]`, when the LP
/// solves and the weights it names are usable (see the module notes); with constraints, on
/// the sub-domain of the box where the linear functions `g[i]·x + h[i]` are all `≤ 0` (ReLU split constraints, see `batch::Plan::bound_with`): each may be added with
/// a weight `β_i ∈ [0, 10⁴]`, which only lowers the combination on the sub-domain, so the
/// bound of `Σ_j λ_j (a_j·x + k_j) + Σ_i β_i (g_i·x + h_i)` over the box bounds the
/// combination of margins on the sub-domain (beta-CROWN's Lagrangian, solved exactly here as
/// an LP over the input box). The weights returned are `λ` followed by `β`.
pub fn combine(
    a: &[&[f64]],
    k: &[f64],
    g: &[&[f64]],
    h: &[f64],
    lo: &[f64],
    hi: &[f64],
) -> Option<Joint> {
    let n = lo.len();
    if a.is_empty() || a.len() + g.len() < 2 || k.iter().chain(h).any(|v| !v.is_finite()) {
        return None;
    }
    let mut p = Problem::new(OptimizationDirection::Maximize);
    let mut lam: Vec<_> = k.iter().map(|&kj| p.add_var(kj, (0.0, 1.0))).collect();
    let atoms = lam.len();
    lam.extend(h.iter().map(|&hi| p.add_var(hi, (0.0, CONSTRAINT_WEIGHT))));
    let rows: Vec<&[f64]> = a.iter().chain(g).copied().collect();
    let consts: Vec<f64> = k.iter().chain(h).copied().collect();
    let s: Vec<_> = (0..n)
        .map(|_| p.add_var(1.0, (f64::NEG_INFINITY, f64::INFINITY)))
        .collect();
    let mut sum = LinearExpr::empty();
    for &l in &lam[..atoms] {
        sum.add(l, 1.0);
    }
    p.add_constraint(sum, ComparisonOp::Eq, 1.0);
    for i in 0..n {
        let corners: &[f64] = if lo[i] == hi[i] {
            &lo[i..=i]
        } else {
            &[lo[i], hi[i]]
        };
        for &x in corners {
            // s_i − x Σ_j A_ji λ_j ≤ 0
            let mut e = LinearExpr::empty();
            e.add(s[i], 1.0);
            for (j, &l) in lam.iter().enumerate() {
                let c = rows[j][i] * x;
                if c != 0.0 {
                    e.add(l, -c);
                }
            }
            p.add_constraint(e, ComparisonOp::Le, 0.0);
        }
    }
    let sol = p.solve().ok()?.into_solution().ok()?;
    let weights: Vec<f64> = lam.iter().map(|&l| sol[l].max(0.0)).collect();
    if weights[..atoms].iter().all(|&w| w == 0.0) || weights.iter().any(|w| !w.is_finite()) {
        return None;
    }
    let (bound, coeffs) = bound_of(&weights, &rows, &consts, lo, hi);
    Some(Joint {
        weights,
        bound,
        coeffs,
    })
}

/// A sound lower bound of `min_{x ∈ [lo, hi]} Σ_j w_j (a[j]·x + k[j])` for weights `w ≥ 0`,
/// and the rounded combined coefficients `μ̃ = Σ_j w_j a[j]`.
///
/// `μ̃_i` is within `e_i = dot_error(Σ_j |w_j a_ji|, m)` of the exact `μ_i`, so
/// `μ_i x_i ≥ μ̃_i x_i − e_i |x_i|`; each `min(μ̃_i lo_i, μ̃_i hi_i)` is rounded down, each
/// `e_i max(|lo_i|, |hi_i|)` up, and `Σ_j w_j k_j` down.
pub fn bound_of(w: &[f64], a: &[&[f64]], k: &[f64], lo: &[f64], hi: &[f64]) -> (f64, Vec<f64>) {
    let m = w.len();
    let mut total = 0.0;
    let mut coeffs = Vec::with_capacity(lo.len());
    for i in 0..lo.len() {
        let mut mu = 0.0;
        let mut abs = 0.0;
        for j in 0..m {
            let p = w[j] * a[j][i];
            mu += p;
            abs += p.abs();
        }
        let e = dot_error(abs, m);
        let term = if mu >= 0.0 {
            mul_down(mu, lo[i])
        } else {
            mul_down(mu, hi[i])
        };
        let term = if mu == 0.0 { 0.0 } else { term };
        let reach = lo[i].abs().max(hi[i].abs());
        total = sub_down(add_down(total, term), mul_up(e, reach));
        coeffs.push(mu);
    }
    for j in 0..m {
        if w[j] != 0.0 {
            total = add_down(total, mul_down(w[j], k[j]));
        }
    }
    if total.is_nan() {
        total = f64::NEG_INFINITY;
    }
    (total, coeffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_atoms_that_split_a_box_are_refuted_together() {
        // On x ∈ [-1, 1]: M_0 ≥ x + 0.1 and M_1 ≥ −x + 0.1. Each alone has minimum −0.9, but
        // max(M_0, M_1) ≥ 0.1 everywhere: λ = (½, ½) gives 0.1.
        let a0 = [1.0];
        let a1 = [-1.0];
        let j = combine(&[&a0, &a1], &[0.1, 0.1], &[], &[], &[-1.0], &[1.0]).unwrap();
        assert!((j.weights[0] - 0.5).abs() < 1e-9 && (j.weights[1] - 0.5).abs() < 1e-9);
        assert!(j.bound > 0.0999 && j.bound <= 0.1, "{}", j.bound);
    }

    #[test]
    fn an_uncovered_point_leaves_the_bound_negative() {
        // M_0 ≥ x − 0.5, M_1 ≥ −x − 0.5: at x = 0 both are −0.5, so no combination is positive.
        let j = combine(&[&[1.0], &[-1.0]], &[-0.5, -0.5], &[], &[], &[-1.0], &[1.0]).unwrap();
        assert!(j.bound <= -0.5 + 1e-9);
    }

    #[test]
    fn a_constraint_restricts_the_box() {
        // M ≥ x on x ∈ [−1, 1] (minimum −1), on the sub-domain where −x + 0.5 ≤ 0 (x ≥ 0.5):
        // weight 1 on the constraint gives min_x (x − x + 0.5) = 0.5, the true minimum there.
        let j = combine(&[&[1.0]], &[0.0], &[&[-1.0]], &[0.5], &[-1.0], &[1.0]).unwrap();
        assert!(j.bound > 0.4999 && j.bound <= 0.5, "{}", j.bound);
        assert_eq!(j.weights.len(), 2);
        // Without the constraint a single atom is no combination at all.
        assert!(combine(&[&[1.0]], &[0.0], &[], &[], &[-1.0], &[1.0]).is_none());
    }

    proptest! {
        /// The bound of any combination is below the combination's value at every sampled
        /// point and vertex of the box (evaluated exactly in rationals).
        #[test]
        fn bound_of_is_below_every_point(
            a in proptest::collection::vec(proptest::collection::vec(-10.0f64..10.0, 3), 2..5),
            k in proptest::collection::vec(-5.0f64..5.0, 4),
            w in proptest::collection::vec(0.0f64..1.0, 4),
            lo in proptest::collection::vec(-3.0f64..0.0, 3),
            width in proptest::collection::vec(0.0f64..3.0, 3),
            t in proptest::collection::vec(0.0f64..=1.0, 3),
        ) {
            use num_rational::BigRational;
            use num_traits::Zero;
            let m = a.len();
            let hi: Vec<f64> = lo.iter().zip(&width).map(|(l, w)| l + w).collect();
            let rows: Vec<&[f64]> = a.iter().map(|r| r.as_slice()).collect();
            let (b, _) = bound_of(&w[..m], &rows, &k[..m], &lo, &hi);
            let q = |v: f64| BigRational::from_float(v).unwrap();
            let value = |x: &[f64]| {
                let mut s = BigRational::zero();
                for j in 0..m {
                    let mut r = q(k[j]);
                    for i in 0..3 {
                        r += q(a[j][i]) * q(x[i]);
                    }
                    s += q(w[j]) * r;
                }
                s
            };
            let inside: Vec<f64> = (0..3).map(|i| lo[i] + t[i] * (hi[i] - lo[i])).collect();
            let inside: Vec<f64> = inside.iter().enumerate().map(|(i, v)| v.clamp(lo[i], hi[i])).collect();
            prop_assert!(q(b) <= value(&inside));
            for corner in 0..8 {
                let x: Vec<f64> = (0..3).map(|i| if corner >> i & 1 == 1 { hi[i] } else { lo[i] }).collect();
                prop_assert!(q(b) <= value(&x));
            }
        }
    }
}
