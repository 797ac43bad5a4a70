//! `Iv`: a closed real interval `[lo, hi]` with outward-rounded arithmetic, the number type of
//! the reference-model enclosures.
//!
//! Every operation returns an interval that contains every exact real result for operands in
//! the argument intervals: the basic operations round each end outward with the helpers of
//! `bounds::rounding` (one correctly rounded operation, then one step outward), and the
//! transcendental functions use the libm enclosures argued there (`exp_enclosure`,
//! `log_enclosure`, `tanh_enclosure`, `sigmoid_enclosure`), applied at the ends because the
//! functions are monotone. Ends may be infinite (an unbounded enclosure is still sound); a NaN
//! end is never produced: anything undefined becomes the whole line.

// `add`, `sub`, `mul`, `div`, `neg` are named methods, not operator traits, on purpose: every
// use reads as an explicit outward-rounded operation.
#![allow(clippy::should_implement_trait)]

use crate::bounds::rounding::{
    add_down, add_up, div_down, div_up, down, exp_enclosure, log_enclosure, mul_down, mul_up,
    sigmoid_enclosure, sub_down, sub_up, tanh_enclosure, up,
};

/// A closed interval, `lo ≤ hi` (ends may be infinite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Iv {
    pub lo: f64,
    pub hi: f64,
}

/// The whole real line (the trivial enclosure).
pub const ENTIRE: Iv = Iv {
    lo: f64::NEG_INFINITY,
    hi: f64::INFINITY,
};

impl Iv {
    pub fn new(lo: f64, hi: f64) -> Iv {
        let lo = if lo.is_nan() { f64::NEG_INFINITY } else { lo };
        let hi = if hi.is_nan() { f64::INFINITY } else { hi };
        Iv { lo, hi }
    }

    pub fn point(x: f64) -> Iv {
        Iv::new(x, x)
    }

    pub fn zero() -> Iv {
        Iv::point(0.0)
    }

    pub fn is_point(&self) -> bool {
        self.lo == self.hi
    }

    pub fn is_zero(&self) -> bool {
        self.lo == 0.0 && self.hi == 0.0
    }

    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// `max(|lo|, |hi|)`.
    pub fn mag(&self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }

    /// The smallest interval holding both.
    pub fn hull(self, o: Iv) -> Iv {
        Iv::new(self.lo.min(o.lo), self.hi.max(o.hi))
    }

    /// The intersection of two enclosures of the same quantity (`None` when they are
    /// disjoint, which two sound enclosures never are).
    pub fn meet(self, o: Iv) -> Option<Iv> {
        let (lo, hi) = (self.lo.max(o.lo), self.hi.min(o.hi));
        (lo <= hi).then_some(Iv { lo, hi })
    }

    pub fn neg(self) -> Iv {
        Iv::new(-self.hi, -self.lo)
    }

    pub fn add(self, o: Iv) -> Iv {
        Iv::new(add_down(self.lo, o.lo), add_up(self.hi, o.hi))
    }

    pub fn sub(self, o: Iv) -> Iv {
        Iv::new(sub_down(self.lo, o.hi), sub_up(self.hi, o.lo))
    }

    pub fn mul(self, o: Iv) -> Iv {
        if self.is_zero() || o.is_zero() {
            return Iv::zero();
        }
        let ends = [
            (self.lo, o.lo),
            (self.lo, o.hi),
            (self.hi, o.lo),
            (self.hi, o.hi),
        ];
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for (a, b) in ends {
            // 0 · ∞ stands for 0 · (a bounded factor): it contributes 0.
            let (l, h) = if a == 0.0 || b == 0.0 {
                (0.0, 0.0)
            } else {
                (mul_down(a, b), mul_up(a, b))
            };
            lo = lo.min(l);
            hi = hi.max(h);
        }
        Iv::new(lo, hi)
    }

    /// `self / o`; the whole line when `o` contains 0.
    pub fn div(self, o: Iv) -> Iv {
        if o.contains(0.0) {
            return ENTIRE;
        }
        if self.is_zero() {
            return Iv::zero();
        }
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for (a, b) in [
            (self.lo, o.lo),
            (self.lo, o.hi),
            (self.hi, o.lo),
            (self.hi, o.hi),
        ] {
            let (l, h) = if a == 0.0 || b.is_infinite() && a.is_finite() {
                (0.0, 0.0)
            } else {
                (div_down(a, b), div_up(a, b))
            };
            lo = lo.min(l);
            hi = hi.max(h);
        }
        Iv::new(lo, hi)
    }

    /// `self²` (tighter than `self · self` when the interval holds 0).
    pub fn sqr(self) -> Iv {
        let m = self.mag();
        let hi = mul_up(m, m);
        let lo = if self.contains(0.0) {
            0.0
        } else {
            let n = self.lo.abs().min(self.hi.abs());
            mul_down(n, n).max(0.0)
        };
        Iv::new(lo, hi)
    }

    /// `self^k` for an integer `k` (the whole line for `k < 0` when 0 is inside).
    pub fn powi(self, k: i64) -> Iv {
        if k == 0 {
            return Iv::point(1.0);
        }
        if k < 0 {
            return Iv::point(1.0).div(self.powi(-k));
        }
        // Square-and-multiply on intervals is sound; even powers use `sqr` so the result
        // is never negative.
        let half = self.powi(k / 2).sqr();
        if k % 2 == 0 {
            half
        } else {
            half.mul(self)
        }
    }

    pub fn exp(self) -> Iv {
        let lo = if self.lo == f64::NEG_INFINITY {
            0.0
        } else {
            exp_enclosure(self.lo).0
        };
        let hi = if self.hi == f64::INFINITY {
            f64::INFINITY
        } else {
            exp_enclosure(self.hi).1
        };
        Iv::new(lo.max(0.0), hi)
    }

    /// `ln` of an interval with `lo > 0` (callers check the domain).
    pub fn ln(self) -> Iv {
        let lo = if self.lo <= 0.0 {
            f64::NEG_INFINITY
        } else {
            log_enclosure(self.lo).0
        };
        let hi = if self.hi == f64::INFINITY {
            f64::INFINITY
        } else if self.hi <= 0.0 {
            f64::NEG_INFINITY
        } else {
            log_enclosure(self.hi).1
        };
        Iv::new(lo, hi)
    }

    /// `sqrt` of an interval with `lo ≥ 0` (callers check the domain). IEEE `sqrt` is correctly
    /// rounded, so one step outward encloses the exact root.
    pub fn sqrt(self) -> Iv {
        let lo = if self.lo <= 0.0 {
            0.0
        } else {
            down(self.lo.sqrt()).max(0.0)
        };
        let hi = if self.hi <= 0.0 {
            0.0
        } else {
            up(self.hi.sqrt())
        };
        Iv::new(lo, hi)
    }

    pub fn tanh(self) -> Iv {
        let lo = if self.lo == f64::NEG_INFINITY {
            -1.0
        } else {
            tanh_enclosure(self.lo).0
        };
        let hi = if self.hi == f64::INFINITY {
            1.0
        } else {
            tanh_enclosure(self.hi).1
        };
        Iv::new(lo, hi)
    }

    pub fn sigmoid(self) -> Iv {
        let lo = if self.lo == f64::NEG_INFINITY {
            0.0
        } else {
            sigmoid_enclosure(self.lo).0
        };
        let hi = if self.hi == f64::INFINITY {
            1.0
        } else {
            sigmoid_enclosure(self.hi).1
        };
        Iv::new(lo, hi)
    }

    pub fn abs(self) -> Iv {
        if self.lo >= 0.0 {
            self
        } else if self.hi <= 0.0 {
            self.neg()
        } else {
            Iv::new(0.0, self.mag())
        }
    }

    pub fn min(self, o: Iv) -> Iv {
        Iv::new(self.lo.min(o.lo), self.hi.min(o.hi))
    }

    pub fn max(self, o: Iv) -> Iv {
        Iv::new(self.lo.max(o.lo), self.hi.max(o.hi))
    }

    /// `sup_{d ∈ self, t ∈ [a, b]} d · t`, rounded up: the largest term `d·(x − c)` of a
    /// mean-value form, with `[a, b]` the offsets of a box side from its centre.
    pub fn sup_times(self, t: Iv) -> f64 {
        self.mul(t).hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_rational::BigRational;
    use proptest::prelude::*;

    fn q(x: f64) -> BigRational {
        BigRational::from_float(x).unwrap()
    }

    fn inside(v: &BigRational, i: Iv) -> bool {
        (i.lo == f64::NEG_INFINITY || &q(i.lo) <= v) && (i.hi == f64::INFINITY || v <= &q(i.hi))
    }

    proptest! {
        #[test]
        fn arithmetic_encloses_exact_results(
            a in -1e6f64..1e6, w1 in 0f64..10.0, b in -1e6f64..1e6, w2 in 0f64..10.0,
            s in 0f64..1.0, t in 0f64..1.0,
        ) {
            let x = Iv::new(a, a + w1);
            let y = Iv::new(b, b + w2);
            let xa = a + s * w1;
            let yb = b + t * w2;
            prop_assume!(x.contains(xa) && y.contains(yb));
            let (qx, qy) = (q(xa), q(yb));
            prop_assert!(inside(&(&qx + &qy), x.add(y)));
            prop_assert!(inside(&(&qx - &qy), x.sub(y)));
            prop_assert!(inside(&(&qx * &qy), x.mul(y)));
            prop_assert!(inside(&(&qx * &qx), x.sqr()));
            prop_assert!(inside(&(&qx * &qx * &qx), x.powi(3)));
            if yb != 0.0 {
                prop_assert!(inside(&(&qx / &qy), x.div(y)));
            }
        }

        #[test]
        fn functions_enclose_libm_values(a in -30f64..30.0, w in 0f64..3.0, s in 0f64..1.0) {
            let x = Iv::new(a, a + w);
            let v = a + s * w;
            prop_assume!(x.contains(v));
            prop_assert!(x.exp().contains(v.exp()));
            prop_assert!(x.tanh().contains(v.tanh()));
            prop_assert!(x.sigmoid().contains(1.0 / (1.0 + (-v).exp())));
            prop_assert!(x.abs().contains(v.abs()));
            if a > 0.0 {
                prop_assert!(x.ln().contains(v.ln()));
                prop_assert!(x.sqrt().contains(v.sqrt()));
            }
        }
    }

    #[test]
    fn division_by_an_interval_holding_zero_is_entire() {
        assert_eq!(Iv::point(1.0).div(Iv::new(-1.0, 1.0)), ENTIRE);
        assert_eq!(Iv::new(-2.0, 3.0).sqr().lo, 0.0);
        assert_eq!(Iv::new(-2.0, 3.0).powi(2).lo, 0.0);
    }
}
