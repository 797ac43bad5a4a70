//! Linear relaxations of the nonlinearities: for a pre-activation interval `[l, u]`, sound lower
//! and upper lines `slope · x + intercept` of the activation over `[l, u]`.
//!
//! The lines are computed in floating point, so their soundness is checked the way it is
//! argued: a convex piece (ReLU, LeakyReLU with `alpha ≤ 1`) lies below its chord iff it does at
//! both ends, so the upper line's intercept is rounded up until the line is above the function
//! at `l` and at `u` in exact terms (`rounding` helpers). A lower line through the origin with a
//! slope between the two pieces' slopes is below the function everywhere, in real arithmetic,
//! whatever slope the float happens to hold.

mod sshape;

pub use sshape::SShape;

use super::rounding::{div_down, mul_down, mul_up, sub_up};

/// A line `slope · x + intercept`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub slope: f64,
    pub intercept: f64,
}

impl Line {
    pub const ZERO: Line = Line {
        slope: 0.0,
        intercept: 0.0,
    };
    pub const IDENTITY: Line = Line {
        slope: 1.0,
        intercept: 0.0,
    };
}

/// The relaxation of one neuron: `lower(x) ≤ f(x) ≤ upper(x)` for `x ∈ [l, u]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NeuronRelaxation {
    pub lower: Line,
    pub upper: Line,
    /// Whether the lower slope is free (an alpha-CROWN parameter in `[lo_slope, hi_slope]`).
    pub free_lower: bool,
}

/// The piecewise-linear activation `f(x) = x` for `x ≥ 0`, `alpha · x` otherwise, with
/// `alpha ≤ 1` so that `f` is convex (ReLU is `alpha = 0`; a negative `alpha` is allowed and
/// makes `f` non-monotone). `alpha > 1` (concave) is refused by the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    pub alpha: f64,
}

impl LeakyRelu {
    pub fn apply(&self, x: f64) -> f64 {
        if x >= 0.0 {
            x
        } else {
            self.alpha * x
        }
    }

    /// Sound enclosure of `{ f(x) : x ∈ [l, u] }` (`f` is convex: its minimum over an
    /// interval containing 0 is `min(f(l), f(u), 0)`); products rounded outward.
    pub fn image(&self, l: f64, u: f64) -> (f64, f64) {
        let lo_at = |x: f64| if x >= 0.0 { x } else { mul_down(self.alpha, x) };
        let hi_at = |x: f64| if x >= 0.0 { x } else { mul_up(self.alpha, x) };
        let mut lo = lo_at(l).min(lo_at(u));
        if l < 0.0 && u > 0.0 {
            lo = lo.min(0.0);
        }
        (lo, hi_at(l).max(hi_at(u)))
    }

    /// The range of lower slopes that keep `slope · x` below `f` everywhere.
    pub fn slope_range(&self) -> (f64, f64) {
        (self.alpha, 1.0)
    }

    /// CROWN's relaxation on `[l, u]`; `lower_slope` picks the lower line through the origin
    /// for unstable neurons (`None`: CROWN's adaptive choice, 1 if `u > −l` else `alpha`).
    pub fn relax(&self, l: f64, u: f64, lower_slope: Option<f64>) -> NeuronRelaxation {
        if l >= 0.0 {
            return NeuronRelaxation {
                lower: Line::IDENTITY,
                upper: Line::IDENTITY,
                free_lower: false,
            };
        }
        let a = self.alpha;
        if u <= 0.0 {
            let line = Line {
                slope: a,
                intercept: 0.0,
            };
            return NeuronRelaxation {
                lower: line,
                upper: line,
                free_lower: false,
            };
        }
        // Unstable: l < 0 < u. Chord from (l, a l) to (u, u): slope (u − a l) / (u − l).
        let slope = if u.is_finite() && l.is_finite() {
            ((u - a * l) / (u - l)).clamp(a, 1.0)
        } else {
            1.0
        };
        let intercept = self.chord_intercept(l, u, slope);
        let (lo_s, hi_s) = self.slope_range();
        let lower = lower_slope
            .unwrap_or(if u > -l { 1.0 } else { a })
            .clamp(lo_s, hi_s);
        NeuronRelaxation {
            lower: Line {
                slope: lower,
                intercept: 0.0,
            },
            upper: Line { slope, intercept },
            free_lower: true,
        }
    }

    /// The smallest intercept (rounded up) such that `slope · x + t ≥ f(x)` at `x = l` and
    /// `x = u`, hence on all of `[l, u]` since `f` is convex.
    fn chord_intercept(&self, l: f64, u: f64, slope: f64) -> f64 {
        if !l.is_finite() || !u.is_finite() {
            return f64::INFINITY;
        }
        // at l: t ≥ a l − s l ; at u: t ≥ u − s u.
        let at_l = sub_up(mul_up(self.alpha, l), mul_down(slope, l));
        let at_u = sub_up(u, mul_down(slope, u));
        at_l.max(at_u).max(0.0)
    }
}

/// CROWN's adaptive ReLU upper slope `u / (u − l)` rounded down (only used by tests to compare
/// with the chord).
pub fn relu_chord_slope(l: f64, u: f64) -> f64 {
    div_down(u, u - l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_rational::BigRational;
    use num_traits::FromPrimitive;
    use proptest::prelude::*;

    fn q(x: f64) -> BigRational {
        BigRational::from_f64(x).unwrap()
    }

    proptest! {
        #[test]
        fn lines_enclose_the_activation_exactly(
            l in -1e6f64..1e6, w in 0f64..2e6, t in 0f64..=1.0, alpha in prop_oneof![Just(0.0), -2f64..=1.0],
            slope in prop_oneof![Just(None), (0f64..=1.0).prop_map(Some)],
        ) {
            let u = l + w;
            let f = LeakyRelu { alpha };
            let r = f.relax(l, u, slope.map(|s: f64| alpha + s * (1.0 - alpha)));
            let (ilo, ihi) = f.image(l, u);
            // Check at the ends and a point inside, in exact rational arithmetic.
            for x in [l, u, l + t * (u - l)] {
                let fx = if x >= 0.0 { q(x) } else { q(alpha) * q(x) };
                let lo = q(r.lower.slope) * q(x) + q(r.lower.intercept);
                let hi = q(r.upper.slope) * q(x) + q(r.upper.intercept);
                prop_assert!(lo <= fx, "lower line above f at {x}");
                prop_assert!(hi >= fx, "upper line below f at {x}");
                prop_assert!(q(ilo) <= fx && fx <= q(ihi), "image misses f({x})");
            }
        }
    }

    #[test]
    fn adaptive_lower_slope_follows_crown() {
        let f = LeakyRelu { alpha: 0.0 };
        assert_eq!(f.relax(-1.0, 2.0, None).lower.slope, 1.0);
        assert_eq!(f.relax(-2.0, 1.0, None).lower.slope, 0.0);
        assert_eq!(f.relax(1.0, 2.0, None).upper, Line::IDENTITY);
        assert_eq!(f.relax(-2.0, -1.0, None).upper, Line::ZERO);
        let r = f.relax(-1.0, 3.0, None);
        assert!((r.upper.slope - 0.75).abs() < 1e-15);
        assert!((r.upper.intercept - 0.75).abs() < 1e-12);
        assert!((relu_chord_slope(-1.0, 3.0) - 0.75).abs() < 1e-15);
    }
}
