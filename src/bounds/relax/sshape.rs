//! Sound linear relaxations of the S-shaped activations, Sigmoid and Tanh.
//!
//! Both are increasing, convex on `(−∞, 0]` and concave on `[0, ∞)`. The relaxation of a neuron
//! with pre-activation bounds `[l, u]` is built in two steps:
//!
//! 1. **Slopes** are chosen as CROWN does: on a convex piece the upper line is the secant and
//!    the lower line the tangent at the midpoint (mirrored on a concave piece); across 0, the
//!    upper line is the tangent from the concave side that passes through `(l, f(l))` and the
//!    lower line the tangent from the convex side through `(u, f(u))`, each falling back to the
//!    secant when no such tangent exists. These choices are computed in plain floating point;
//!    they affect tightness, never soundness.
//! 2. **Intercepts** are then derived rigorously for the chosen slope `a`: the upper intercept
//!    is an upper bound of `max_{x∈[l,u]} f(x) − a x`, the lower one a lower bound of
//!    `min f(x) − a x`. Where `f(x) − a x` is convex (a convex piece of `f` for the upper line)
//!    its maximum is at an end of the piece; where it is concave, for any point `d` of the
//!    piece, `g(x) ≤ g(d) + g'(d)(x − d)`, which is evaluated at the critical point
//!    (`f'(d) = a`, solved in closed form) so the bound is tight. Every value of `f` and `f'`
//!    comes from the rigorous enclosures of `rounding` (the one libm assumption is stated there)
//!    and every operation is rounded outward.

use super::{Line, NeuronRelaxation};
use crate::bounds::rounding::{
    add_up, mul_down, mul_up, sigmoid_enclosure, sub_down, sub_up, tanh_enclosure,
};

/// An S-shaped activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SShape {
    Sigmoid,
    Tanh,
}

impl SShape {
    /// `f(x)` in plain floating point (for choosing slopes only).
    fn f(self, x: f64) -> f64 {
        match self {
            SShape::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            SShape::Tanh => x.tanh(),
        }
    }

    /// `f'(x)` in plain floating point (for choosing slopes only).
    fn df(self, x: f64) -> f64 {
        let y = self.f(x);
        match self {
            SShape::Sigmoid => y * (1.0 - y),
            SShape::Tanh => 1.0 - y * y,
        }
    }

    /// A rigorous enclosure of `f(x)`.
    pub fn enclose(self, x: f64) -> (f64, f64) {
        match self {
            SShape::Sigmoid => sigmoid_enclosure(x),
            SShape::Tanh => tanh_enclosure(x),
        }
    }

    /// A rigorous enclosure of `f'(x)`.
    fn df_enclose(self, x: f64) -> (f64, f64) {
        let (lo, hi) = self.enclose(x);
        match self {
            SShape::Tanh => {
                // 1 − t² over t ∈ [lo, hi].
                let small = if lo <= 0.0 && hi >= 0.0 {
                    0.0
                } else {
                    lo.abs().min(hi.abs())
                };
                let big = lo.abs().max(hi.abs());
                (
                    sub_down(1.0, mul_up(big, big)).max(0.0),
                    sub_up(1.0, mul_down(small, small)).min(1.0),
                )
            }
            SShape::Sigmoid => {
                // s(1 − s) over s ∈ [lo, hi] ⊆ [0, 1]: concave, peak 1/4 at s = 1/2.
                let at_lo = |s: f64| mul_down(s, sub_down(1.0, s)).max(0.0);
                let at_hi = |s: f64| mul_up(s, sub_up(1.0, s));
                let low = at_lo(lo).min(at_lo(hi));
                let high = if lo <= 0.5 && hi >= 0.5 {
                    0.25
                } else {
                    at_hi(lo).max(at_hi(hi))
                };
                (low, high.min(0.25))
            }
        }
    }

    /// The point of the positive (`x ≥ 0`) or negative side where `f'(x) = a`, if any.
    fn critical(self, a: f64, positive: bool) -> Option<f64> {
        let x = match self {
            SShape::Tanh if a > 0.0 && a < 1.0 => (1.0 - a).sqrt().atanh(),
            SShape::Sigmoid if a > 0.0 && a < 0.25 => {
                let s = 0.5 * (1.0 + (1.0 - 4.0 * a).sqrt());
                (s / (1.0 - s)).ln()
            }
            _ => return None,
        };
        x.is_finite().then_some(if positive { x } else { -x })
    }

    /// Upper bound of `sign · (f(x) − a x)` at one point.
    fn g_hi(self, sign: f64, a: f64, x: f64) -> f64 {
        let (lo, hi) = self.enclose(x);
        if sign > 0.0 {
            sub_up(hi, mul_down(a, x))
        } else {
            sub_up(mul_up(a, x), lo)
        }
    }

    /// Enclosure of the derivative of `sign · (f(x) − a x)` at one point.
    fn dg(self, sign: f64, a: f64, x: f64) -> (f64, f64) {
        let (lo, hi) = self.df_enclose(x);
        if sign > 0.0 {
            (sub_down(lo, a), sub_up(hi, a))
        } else {
            (sub_down(a, hi), sub_up(a, lo))
        }
    }

    /// Upper bound of the concave function `g = sign · (f − a x)` on `[p, q]`, from its
    /// tangent at `d ∈ [p, q]`.
    fn concave_max(self, sign: f64, a: f64, p: f64, q: f64, d: f64) -> f64 {
        let d = d.clamp(p, q);
        let (dlo, dhi) = self.dg(sign, a, d);
        let right = mul_up(dhi.max(0.0), sub_up(q, d));
        let left = mul_up((-dlo).max(0.0), sub_up(d, p));
        add_up(self.g_hi(sign, a, d), right.max(left))
    }

    /// A rigorous upper bound of `max_{x∈[l,u]} sign · (f(x) − a x)`.
    fn max_on(self, sign: f64, a: f64, l: f64, u: f64) -> f64 {
        let mut best = f64::NEG_INFINITY;
        if l < 0.0 {
            // Convex piece of f: g convex for sign +1 (ends), concave for sign −1.
            let (p, q) = (l, u.min(0.0));
            best = best.max(if sign > 0.0 {
                self.g_hi(sign, a, p).max(self.g_hi(sign, a, q))
            } else {
                let d = self
                    .critical(a, false)
                    .unwrap_or(if a <= 0.0 { p } else { q });
                self.concave_max(sign, a, p, q, d)
            });
        }
        if u > 0.0 {
            // Concave piece of f: g concave for sign +1, convex for sign −1 (ends).
            let (p, q) = (l.max(0.0), u);
            best = best.max(if sign > 0.0 {
                let d = self
                    .critical(a, true)
                    .unwrap_or(if a <= 0.0 { q } else { p });
                self.concave_max(sign, a, p, q, d)
            } else {
                self.g_hi(sign, a, p).max(self.g_hi(sign, a, q))
            });
        }
        if l == 0.0 && u == 0.0 {
            best = self.g_hi(sign, a, 0.0);
        }
        best
    }

    /// The tangent point in `[lo, hi]` whose tangent passes through `(x0, f(x0))`, found by
    /// bisection on the monotone `h(d) = f(d) + f'(d)(x0 − d) − f(x0)`; `rising` says whether
    /// the wanted side is where `h ≥ 0` lies to the right.
    fn tangent_through(self, x0: f64, lo: f64, hi: f64) -> f64 {
        let h = |d: f64| self.f(d) + self.df(d) * (x0 - d) - self.f(x0);
        let (mut a, mut b) = (lo, hi);
        let a_sign = h(a) >= 0.0;
        for _ in 0..48 {
            let m = 0.5 * (a + b);
            if (h(m) >= 0.0) == a_sign {
                a = m;
            } else {
                b = m;
            }
        }
        // The side of the root that keeps the tangent on the correct side of (x0, f(x0)).
        if x0 < lo {
            b
        } else {
            a
        }
    }

    fn secant(self, l: f64, u: f64) -> f64 {
        (self.f(u) - self.f(l)) / (u - l)
    }

    /// Sound lower and upper lines of `f` over `[l, u]`.
    pub fn relax(self, l: f64, u: f64) -> NeuronRelaxation {
        if !(l.is_finite() && u.is_finite()) || l > u {
            let lo = self.enclose(l).0;
            let hi = self.enclose(u).1;
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let (lo, hi) = if lo.is_nan() || hi.is_nan() {
                (-1.0, 1.0)
            } else {
                (lo, hi)
            };
            return NeuronRelaxation {
                lower: Line {
                    slope: 0.0,
                    intercept: lo,
                },
                upper: Line {
                    slope: 0.0,
                    intercept: hi,
                },
                free_lower: false,
            };
        }
        let m = 0.5 * (l + u);
        let narrow = u - l <= 1e-9 * (1.0 + l.abs().max(u.abs()));
        let (upper_slope, lower_slope) = if narrow {
            (self.df(m), self.df(m))
        } else if u <= 0.0 {
            (self.secant(l, u), self.df(m))
        } else if l >= 0.0 {
            (self.df(m), self.secant(l, u))
        } else {
            // Upper: tangent on [0, u] through (l, f(l)), if the one at u still passes above it.
            let up = if self.f(u) + self.df(u) * (l - u) >= self.f(l) {
                self.df(self.tangent_through(l, 0.0, u))
            } else {
                self.secant(l, u)
            };
            // Lower: tangent on [l, 0] through (u, f(u)), if the one at l passes below it.
            let low = if self.f(l) + self.df(l) * (u - l) <= self.f(u) {
                self.df(self.tangent_through(u, l, 0.0))
            } else {
                self.secant(l, u)
            };
            (up, low)
        };
        let clean = |a: f64| if a.is_finite() { a.max(0.0) } else { 0.0 };
        let (au, al) = (clean(upper_slope), clean(lower_slope));
        NeuronRelaxation {
            upper: Line {
                slope: au,
                intercept: self.max_on(1.0, au, l, u),
            },
            lower: Line {
                slope: al,
                intercept: -self.max_on(-1.0, al, l, u),
            },
            free_lower: false,
        }
    }

    /// Sound enclosure of `f([l, u])` (f is increasing).
    pub fn image(self, l: f64, u: f64) -> (f64, f64) {
        (self.enclose(l).0, self.enclose(u).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_rational::BigRational;
    use proptest::prelude::*;

    fn q(x: f64) -> BigRational {
        BigRational::from_float(x).expect("finite")
    }

    /// Both lines, evaluated exactly, against the platform's f (accurate to an ulp or so; the
    /// relaxation carries a 2^-45 relative allowance, so a real error cannot hide here).
    fn check(f: SShape, l: f64, u: f64) -> Result<(), TestCaseError> {
        let r = f.relax(l, u);
        for k in 0..=64 {
            let x = l + (u - l) * k as f64 / 64.0;
            let fx = q(f.f(x));
            let upper = q(r.upper.slope) * q(x) + q(r.upper.intercept);
            let lower = q(r.lower.slope) * q(x) + q(r.lower.intercept);
            prop_assert!(upper >= fx, "upper line below f at {x}");
            prop_assert!(lower <= fx, "lower line above f at {x}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn lines_enclose_sigmoid_and_tanh(l in -30f64..30.0, w in 0f64..40.0) {
            check(SShape::Sigmoid, l, l + w)?;
            check(SShape::Tanh, l, l + w)?;
        }

        #[test]
        fn narrow_intervals_are_sound(l in -10f64..10.0, w in 0f64..1e-6) {
            check(SShape::Sigmoid, l, l + w)?;
            check(SShape::Tanh, l, l + w)?;
        }
    }

    #[test]
    fn relaxations_are_tight_on_small_intervals() {
        // Over [0.5, 0.6] both lines are within 1e-3 of tanh everywhere.
        let r = SShape::Tanh.relax(0.5, 0.6);
        for x in [0.5, 0.55, 0.6] {
            let t: f64 = f64::tanh(x);
            assert!(r.upper.slope * x + r.upper.intercept - t < 1e-3);
            assert!(t - (r.lower.slope * x + r.lower.intercept) < 1e-3);
        }
        // Across 0 the gap stays moderate.
        let r = SShape::Sigmoid.relax(-1.0, 1.0);
        let gap =
            (r.upper.slope - r.lower.slope).abs() + (r.upper.intercept - r.lower.intercept).abs();
        assert!(gap < 0.2, "gap {gap}");
    }
}
