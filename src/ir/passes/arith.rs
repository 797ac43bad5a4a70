//! The two arithmetics merged parameters are computed in.
//!
//! A rewrite that merges layers computes its new weights by one generic formula over [`Num`]:
//!
//! - [`Exact`] computes in rationals (`BigRational`) and `finish`es only when the result is
//!   exactly an `f64`. A rewrite computed this way changes no number: it is allowed at
//!   `Level::Exact`.
//! - [`Ball`] computes in `f64` and carries a rigorous radius: the exact real result lies
//!   within `rad` of `mid`. Inputs may already carry a radius (weights of a layer that an
//!   earlier rewrite rounded). This is how `Level::Full` bounds the rounding it introduces.
//!
//! Ball soundness argument. With round-to-nearest and u = 2⁻⁵³, every float operation
//! satisfies |fl(x ∘ y) − x ∘ y| ≤ u·|fl(x ∘ y)| + η/2 with η = 2⁻¹⁰⁷⁴ (the η term only for
//! underflowing products and quotients; sums are exact when subnormal). Each radius below is
//! the first-order-exact propagation formula (no terms dropped) plus u·|mid| for the rounding
//! of `mid`. The radius formula itself is evaluated in `f64` with at most five operations on
//! non-negative numbers, so its computed value is at most a factor (1 + u)⁵ and a few η
//! below the true value; [`up`] multiplies by 1 + 8u and adds 4η, which covers both.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

const U: f64 = f64::EPSILON / 2.0;
/// The smallest positive subnormal, 2⁻¹⁰⁷⁴.
const ETA: f64 = f64::from_bits(1);

/// `x` (a computed non-negative radius) enlarged to cover the rounding in computing it.
fn up(x: f64) -> f64 {
    x * (1.0 + 8.0 * U) + 4.0 * ETA
}

/// A number system for merged parameters. Every operation may refuse (`None`): division by
/// something that may be zero, a square root `Exact` cannot represent, overflow.
pub(crate) trait Num: Sized + Clone {
    /// A stored parameter `x` known to be within `err` of the exact value it stands for.
    fn param(x: f64, err: f64) -> Option<Self>;
    fn add(&self, o: &Self) -> Option<Self>;
    fn mul(&self, o: &Self) -> Option<Self>;
    fn div(&self, o: &Self) -> Option<Self>;
    fn sqrt(&self) -> Option<Self>;
    fn neg(&self) -> Self;
    /// The `f64` to store and a bound on its distance from the exact value.
    fn finish(&self) -> Option<(f64, f64)>;

    fn sub(&self, o: &Self) -> Option<Self> {
        self.add(&o.neg())
    }
    fn zero() -> Self {
        Self::param(0.0, 0.0).unwrap_or_else(|| unreachable!("0 is finite"))
    }
    fn one() -> Self {
        Self::param(1.0, 0.0).unwrap_or_else(|| unreachable!("1 is finite"))
    }
}

/// Exact rational arithmetic; `finish` succeeds only on values that are exactly an `f64`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Exact(pub BigRational);

impl Num for Exact {
    fn param(x: f64, err: f64) -> Option<Self> {
        if err != 0.0 {
            return None;
        }
        BigRational::from_float(x).map(Exact)
    }
    fn add(&self, o: &Self) -> Option<Self> {
        Some(Exact(&self.0 + &o.0))
    }
    fn mul(&self, o: &Self) -> Option<Self> {
        Some(Exact(&self.0 * &o.0))
    }
    fn div(&self, o: &Self) -> Option<Self> {
        (!o.0.is_zero()).then(|| Exact(&self.0 / &o.0))
    }
    fn sqrt(&self) -> Option<Self> {
        None
    }
    fn neg(&self) -> Self {
        Exact(-self.0.clone())
    }
    fn finish(&self) -> Option<(f64, f64)> {
        exact_f64(&self.0).map(|f| (f, 0.0))
    }
}

/// `q` as an `f64` if it is exactly one.
pub(crate) fn exact_f64(q: &BigRational) -> Option<f64> {
    if q.is_zero() {
        return Some(0.0);
    }
    // A nonzero f64 is m·2^e with an odd m; its denominator is a power of two.
    let d: &BigInt = q.denom();
    if d.magnitude().count_ones() != 1 {
        return None;
    }
    let f = q.to_f64()?;
    (f.is_finite() && BigRational::from_float(f).as_ref() == Some(q)).then_some(f)
}

/// `f64` ball arithmetic: the exact value lies in `[mid − rad, mid + rad]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ball {
    pub mid: f64,
    pub rad: f64,
}

fn ball(mid: f64, rad: f64) -> Option<Ball> {
    (mid.is_finite() && rad.is_finite()).then_some(Ball { mid, rad })
}

impl Num for Ball {
    fn param(x: f64, err: f64) -> Option<Self> {
        (err >= 0.0).then_some(())?;
        ball(x, err)
    }
    fn add(&self, o: &Self) -> Option<Self> {
        let m = self.mid + o.mid;
        ball(m, up(self.rad + o.rad + U * m.abs()))
    }
    fn mul(&self, o: &Self) -> Option<Self> {
        let m = self.mid * o.mid;
        let r = self.mid.abs() * o.rad + o.mid.abs() * self.rad + self.rad * o.rad;
        ball(m, up(r + U * m.abs() + ETA))
    }
    fn div(&self, o: &Self) -> Option<Self> {
        // |a/b − a₀/b₀| ≤ (ra·|b₀| + |a₀|·rb) / ((|b₀| − rb)·|b₀|) on the whole ball.
        let b = o.mid.abs();
        let den = (b - o.rad) * b * (1.0 - 4.0 * U) - ETA;
        if den.is_nan() || den <= 0.0 {
            return None;
        }
        let m = self.mid / o.mid;
        let r = (self.rad * b + self.mid.abs() * o.rad) / den;
        ball(m, up(r + U * m.abs() + ETA))
    }
    fn sqrt(&self) -> Option<Self> {
        // |√a − √a₀| ≤ ra / √a₀ for a ≥ 0; √a₀ ≥ fl(√a₀)·(1 − u).
        let lo = self.mid - self.rad;
        if lo.is_nan() || lo <= 0.0 {
            return None;
        }
        let s = self.mid.sqrt();
        let r = self.rad / (s * (1.0 - 2.0 * U));
        ball(s, up(r + U * s))
    }
    fn neg(&self) -> Self {
        Ball {
            mid: -self.mid,
            rad: self.rad,
        }
    }
    fn finish(&self) -> Option<(f64, f64)> {
        ball(self.mid, self.rad).map(|b| (b.mid, b.rad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: f64) -> BigRational {
        BigRational::from_float(x).unwrap()
    }

    #[test]
    fn exact_finishes_only_representable_values() {
        let a = Exact::param(0.1, 0.0).unwrap();
        let b = Exact::param(0.2, 0.0).unwrap();
        // 0.1 + 0.2 (as the stored doubles) is not a double.
        assert!(a.add(&b).unwrap().finish().is_none());
        let c = Exact::param(3.0, 0.0).unwrap();
        let d = Exact::param(0.75, 0.0).unwrap();
        assert_eq!(c.mul(&d).unwrap().finish(), Some((2.25, 0.0)));
        assert_eq!(d.div(&c).unwrap().finish(), Some((0.25, 0.0)));
        assert!(Exact::one().div(&c).unwrap().finish().is_none());
        assert!(c.div(&Exact::zero()).is_none());
        assert!(Exact::param(1.0, 1e-3).is_none());
    }

    #[test]
    fn balls_contain_the_exact_result() {
        let xs = [0.1, -3.7, 1e-300, 7e300, 2.5, -1e-10, 123456.789];
        for &x in &xs {
            for &y in &xs {
                let (a, b) = (Ball::param(x, 0.0).unwrap(), Ball::param(y, 0.0).unwrap());
                let checks: [(Option<Ball>, BigRational); 3] = [
                    (a.add(&b), q(x) + q(y)),
                    (a.mul(&b), q(x) * q(y)),
                    (a.div(&b), q(x) / q(y)),
                ];
                for (got, exact) in checks {
                    if let Some(r) = got {
                        let dist = (q(r.mid) - exact).abs();
                        assert!(dist <= q(r.rad), "{x} {y}: {r:?}");
                    }
                }
            }
            if x > 0.0 {
                let s = Ball::param(x, 0.0).unwrap().sqrt().unwrap();
                // (mid ± rad)² must bracket x.
                let lo = q(s.mid - s.rad);
                let hi = q(s.mid + s.rad);
                assert!(&lo * &lo <= q(x) && q(x) <= &hi * &hi, "{x}: {s:?}");
            }
        }
    }

    use num_traits::Signed;

    #[test]
    fn radii_propagate() {
        let a = Ball::param(2.0, 0.5).unwrap();
        let b = Ball::param(3.0, 0.25).unwrap();
        let p = a.mul(&b).unwrap();
        // True range of the product is [1.5·2.75, 2.5·3.25] = [4.125, 8.125].
        assert!(p.mid - p.rad <= 4.125 && p.mid + p.rad >= 8.125);
        assert!(Ball::param(1.0, 2.0).unwrap().sqrt().is_none());
        assert!(a.div(&Ball::param(0.1, 0.2).unwrap()).is_none());
    }
}
