//! Rigorous enclosures of a reference expression over a box: its range and the range of its
//! gradient (forward-mode automatic differentiation in interval arithmetic).
//!
//! [`eval`] returns `D { v, g }` with `f(x) ∈ v` and `∂f/∂x_i (x) ∈ g[i]` for every `x` of the
//! box. Each rule is the interval extension of the chain rule, so the gradient enclosure holds
//! pointwise; where the formula is not differentiable (`abs`, `min`, `max` at a tie) the
//! enclosure holds the whole Clarke generalised gradient, which is what the mean-value theorem
//! for Lipschitz functions needs. The monotone functions (`exp log sqrt tanh sigmoid`, `hill`
//! in `x`) are evaluated at the interval ends, which is exact up to outward rounding.
//!
//! [`range`] combines the natural enclosure with the mean-value (centred) form
//! `f(c) + Σ g_i(B) · (B_i − c_i)`, whose excess over the true range shrinks quadratically
//! with the box: this is what lets branch-and-bound close the gap to a few percent.
//!
//! A formula that is undefined somewhere on the box (`log` of a non-positive number, a
//! division by an interval holding 0, ...) gives [`Undefined`]: callers treat the box's bound
//! as unknown (+∞) and split it, or report the point when a single point is undefined.

use super::expr::{Expr, Func};
use super::interval::{Iv, ENTIRE};

/// The value and gradient enclosures of an expression over a box.
#[derive(Clone, Debug, PartialEq)]
pub struct D {
    pub v: Iv,
    /// Empty when the gradient was not asked for.
    pub g: Vec<Iv>,
}

/// Where the formula is undefined (or may be, on the box).
#[derive(Clone, Debug, PartialEq)]
pub struct Undefined(pub String);

type R = Result<D, Undefined>;

fn undefined(what: &str) -> R {
    Err(Undefined(what.to_string()))
}

impl D {
    fn constant(v: Iv, n: usize) -> D {
        D {
            v,
            g: vec![Iv::zero(); n],
        }
    }

    /// `g_out = factor · g` for a unary function with derivative in `factor`.
    fn chain(&self, v: Iv, factor: Iv) -> D {
        D {
            v,
            g: self
                .g
                .iter()
                .map(|g| if g.is_zero() { *g } else { factor.mul(*g) })
                .collect(),
        }
    }

    fn has_grad(&self) -> bool {
        self.g.iter().any(|g| !g.is_zero())
    }
}

/// Encloses `e` and (with `grad`) its gradient over the box `x`.
pub fn eval(e: &Expr, x: &[Iv], grad: bool) -> R {
    let n = if grad { x.len() } else { 0 };
    ev(e, x, n)
}

fn ev(e: &Expr, x: &[Iv], n: usize) -> R {
    Ok(match e {
        Expr::Num(v) => D::constant(*v, n),
        Expr::Var(i) => {
            let Some(xi) = x.get(*i) else {
                return undefined("an input the box does not have");
            };
            let mut d = D::constant(*xi, n);
            if let Some(g) = d.g.get_mut(*i) {
                *g = Iv::point(1.0);
            }
            d
        }
        Expr::Neg(a) => {
            let a = ev(a, x, n)?;
            D {
                v: a.v.neg(),
                g: a.g.iter().map(|g| g.neg()).collect(),
            }
        }
        Expr::Add(a, b) => {
            let (a, b) = (ev(a, x, n)?, ev(b, x, n)?);
            D {
                v: a.v.add(b.v),
                g: a.g.iter().zip(&b.g).map(|(p, q)| p.add(*q)).collect(),
            }
        }
        Expr::Sub(a, b) => {
            let (a, b) = (ev(a, x, n)?, ev(b, x, n)?);
            D {
                v: a.v.sub(b.v),
                g: a.g.iter().zip(&b.g).map(|(p, q)| p.sub(*q)).collect(),
            }
        }
        Expr::Mul(a, b) => {
            let (a, b) = (ev(a, x, n)?, ev(b, x, n)?);
            D {
                v: a.v.mul(b.v),
                g: a.g
                    .iter()
                    .zip(&b.g)
                    .map(|(p, q)| p.mul(b.v).add(a.v.mul(*q)))
                    .collect(),
            }
        }
        Expr::Div(a, b) => {
            let (a, b) = (ev(a, x, n)?, ev(b, x, n)?);
            if b.v.contains(0.0) {
                return undefined("a division by zero");
            }
            let v = a.v.div(b.v);
            D {
                v,
                // (a/b)' = (a' − (a/b) b') / b
                g: a.g
                    .iter()
                    .zip(&b.g)
                    .map(|(p, q)| p.sub(v.mul(*q)).div(b.v))
                    .collect(),
            }
        }
        Expr::PowI(a, k) => {
            let a = ev(a, x, n)?;
            if *k < 0 && a.v.contains(0.0) {
                return undefined("a negative power of zero");
            }
            let v = a.v.powi(*k);
            let factor = Iv::point(*k as f64).mul(a.v.powi(k - 1));
            a.chain(v, factor)
        }
        Expr::Pow(a, b) => {
            let (a, b) = (ev(a, x, n)?, ev(b, x, n)?);
            pow(&a, &b)?
        }
        Expr::Call(f, args) => {
            let a = ev(&args[0], x, n)?;
            match f {
                Func::Exp => {
                    let v = a.v.exp();
                    a.chain(v, v)
                }
                Func::Log => {
                    if a.v.lo <= 0.0 {
                        return undefined("the log of a non-positive number");
                    }
                    a.chain(a.v.ln(), Iv::point(1.0).div(a.v))
                }
                Func::Sqrt => {
                    if a.v.lo < 0.0 {
                        return undefined("the square root of a negative number");
                    }
                    let v = a.v.sqrt();
                    let factor = if a.has_grad() {
                        Iv::point(1.0).div(Iv::point(2.0).mul(v))
                    } else {
                        Iv::zero()
                    };
                    a.chain(v, factor)
                }
                Func::Tanh => {
                    let v = a.v.tanh();
                    a.chain(v, Iv::point(1.0).sub(v.sqr()).max(Iv::zero()))
                }
                Func::Sigmoid => {
                    let v = a.v.sigmoid();
                    a.chain(v, v.mul(Iv::point(1.0).sub(v)).max(Iv::zero()))
                }
                Func::Abs => {
                    let factor = if a.v.lo >= 0.0 {
                        Iv::point(1.0)
                    } else if a.v.hi <= 0.0 {
                        Iv::point(-1.0)
                    } else {
                        Iv::new(-1.0, 1.0)
                    };
                    a.chain(a.v.abs(), factor)
                }
                Func::Min | Func::Max => {
                    let b = ev(&args[1], x, n)?;
                    min_max(&a, &b, *f == Func::Max)
                }
                Func::Hill => {
                    let emax = ev(&args[1], x, n)?;
                    let ec50 = ev(&args[2], x, n)?;
                    let hn = ev(&args[3], x, n)?;
                    hill(&a, &emax, &ec50, &hn)?
                }
            }
        }
    })
}

fn min_max(a: &D, b: &D, max: bool) -> D {
    // Which argument is selected everywhere on the box, if one is.
    let (a_wins, b_wins) = if max {
        (a.v.lo >= b.v.hi, b.v.lo >= a.v.hi)
    } else {
        (a.v.hi <= b.v.lo, b.v.hi <= a.v.lo)
    };
    if a_wins {
        return a.clone();
    }
    if b_wins {
        return b.clone();
    }
    D {
        v: if max { a.v.max(b.v) } else { a.v.min(b.v) },
        g: a.g.iter().zip(&b.g).map(|(p, q)| p.hull(*q)).collect(),
    }
}

/// `a^b` for a base `≥ 0`: `exp(b ln a)`, and `[0, hi^b]` on bases touching 0 with `b > 0`.
fn pow(a: &D, b: &D) -> R {
    if a.v.lo < 0.0 {
        return undefined("a power of a negative number with a non-integer exponent");
    }
    if a.v.lo > 0.0 {
        let la = a.v.ln();
        let v = b.v.mul(la).exp();
        let g =
            a.g.iter()
                .zip(&b.g)
                .map(|(p, q)| {
                    // (a^b)' = a^b (b' ln a + b a'/a)
                    let mut t = Iv::zero();
                    if !q.is_zero() {
                        t = t.add(q.mul(la));
                    }
                    if !p.is_zero() {
                        t = t.add(b.v.mul(*p).div(a.v));
                    }
                    if t.is_zero() {
                        t
                    } else {
                        v.mul(t)
                    }
                })
                .collect();
        return Ok(D { v, g });
    }
    // The base touches 0: only constant positive exponents (x^p increasing in x ≥ 0).
    if b.has_grad() || b.v.lo <= 0.0 {
        return undefined("a power of zero with a non-positive or varying exponent");
    }
    let hi = if a.v.hi == 0.0 {
        Iv::zero()
    } else {
        b.v.mul(Iv::point(a.v.hi).ln()).exp()
    };
    let v = Iv::new(0.0, hi.hi);
    // d/dx x^p = p x^(p−1): bounded on [0, h] only for p ≥ 1.
    let factor = if !a.has_grad() {
        Iv::zero()
    } else if b.v.lo >= 1.0 {
        let pm1 = b.v.sub(Iv::point(1.0));
        let top = if a.v.hi == 0.0 {
            Iv::zero()
        } else {
            pm1.mul(Iv::point(a.v.hi).ln()).exp()
        };
        // x^(p−1) on [0, h] lies in [0, max(1, h^(p−1))] (1 covers p − 1 = 0).
        b.v.mul(Iv::new(0.0, top.hi.max(1.0)))
    } else {
        ENTIRE
    };
    Ok(a.chain(v, factor))
}

/// `emax · t / (E + t)` with `t = xⁿ`, `E = ec50ⁿ`: increasing in `t`, decreasing in `E`.
fn hill(x: &D, emax: &D, ec50: &D, hn: &D) -> R {
    if x.v.lo < 0.0 {
        return undefined("hill(x, ...) of a negative x");
    }
    if ec50.v.lo <= 0.0 {
        return undefined("hill(..., ec50, ...) with ec50 ≤ 0");
    }
    if hn.v.lo <= 0.0 {
        return undefined("hill(..., n) with n ≤ 0");
    }
    let t = match integer_point(hn) {
        Some(k) => x.chain(
            x.v.powi(k),
            Iv::point(k as f64).mul(x.v.powi(k - 1)).max(Iv::zero()),
        ),
        None => pow(x, hn)?,
    };
    let e = pow(ec50, hn)?;
    // Range of r = t/(E+t) = 1/(1 + E/t) at the monotone corners, rounded outward.
    let r_at = |t: f64, big_e: f64, up: bool| -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        if t == f64::INFINITY {
            return 1.0;
        }
        let ratio = Iv::point(big_e).div(Iv::point(t));
        let r = Iv::point(1.0).div(Iv::point(1.0).add(ratio));
        if up {
            r.hi.min(1.0)
        } else {
            r.lo.max(0.0)
        }
    };
    let r = Iv::new(r_at(t.v.lo, e.v.hi, false), r_at(t.v.hi, e.v.lo, true));
    let v = emax.v.mul(r);
    // dr = (E dt − t dE) / (E + t)²
    let den = e.v.add(t.v).sqr();
    let g = (0..x.g.len())
        .map(|i| {
            let dr = e.v.mul(t.g[i]).sub(t.v.mul(e.g[i])).div(den);
            let dr = if t.g[i].is_zero() && e.g[i].is_zero() {
                Iv::zero()
            } else {
                dr
            };
            let mut s = Iv::zero();
            if !emax.g[i].is_zero() {
                s = s.add(emax.g[i].mul(r));
            }
            if !dr.is_zero() {
                s = s.add(emax.v.mul(dr));
            }
            s
        })
        .collect();
    Ok(D { v, g })
}

fn integer_point(d: &D) -> Option<i64> {
    (d.v.is_point() && !d.has_grad() && d.v.lo.fract() == 0.0 && d.v.lo.abs() <= 64.0)
        .then_some(d.v.lo as i64)
}

/// The best enclosure of `f` over the box `x`: the natural enclosure intersected with the
/// mean-value form around the box centre. Also returns the gradient enclosure.
pub fn range(e: &Expr, x: &[Iv]) -> Result<(Iv, Vec<Iv>), Undefined> {
    let d = eval(e, x, true)?;
    let c: Vec<f64> = x.iter().map(|i| mid(*i)).collect();
    let at_c = eval(
        e,
        &c.iter().map(|&v| Iv::point(v)).collect::<Vec<_>>(),
        false,
    )?;
    let mut mv = at_c.v;
    for ((g, xi), ci) in d.g.iter().zip(x).zip(&c) {
        mv = mv.add(g.mul(xi.sub(Iv::point(*ci))));
    }
    let v = d.v.meet(mv).unwrap_or(d.v);
    Ok((v, d.g))
}

/// A representable point of `[lo, hi]` near its middle.
pub fn mid(i: Iv) -> f64 {
    let m = i.lo + 0.5 * (i.hi - i.lo);
    if m.is_finite() {
        m.clamp(i.lo, i.hi)
    } else {
        0.5 * i.lo + 0.5 * i.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errbound::expr::parse;
    use proptest::prelude::*;

    fn names() -> Vec<String> {
        vec!["x".into(), "y".into()]
    }

    const FORMULAS: [&str; 8] = [
        "x / 20.0 * exp(-0.1 * y)",
        "hill(x, 100, 4, 1.5)",
        "hill(x * exp(-0.1 * y) / 20, 100, 4, 2)",
        "log(1 + x) * sqrt(y + 0.5) - tanh(x - y)",
        "min(x, y) + max(x, 2 * y) - abs(x - 3)",
        "sigmoid(x - y) ^ 2 + x ^ 0.7 + (y + 1) ^ -2",
        "x ^ y",
        "exp(-x) * (1 + y) / (2 + x)",
    ];

    proptest! {
        #[test]
        fn enclosures_hold_values_and_gradients(
            k in 0usize..8, x0 in 0f64..20.0, y0 in 0f64..5.0, wx in 0f64..2.0, wy in 0f64..2.0,
            s in 0f64..1.0, t in 0f64..1.0,
        ) {
            let e = parse(FORMULAS[k], &names()).unwrap();
            let b = [Iv::new(x0, x0 + wx), Iv::new(y0, y0 + wy)];
            let p = [x0 + s * wx, y0 + t * wy];
            prop_assume!(b[0].contains(p[0]) && b[1].contains(p[1]));
            let fp = e.eval_f64(&p);
            let Ok((v, g)) = range(&e, &b) else { return Ok(()); };
            let slack = 1e-9 * fp.abs().max(1.0);
            prop_assert!(v.lo - slack <= fp && fp <= v.hi + slack, "{} {v:?} {fp}", FORMULAS[k]);
            // Finite differences lie in the gradient enclosure (up to their own error).
            for i in 0..2 {
                let h = 1e-6;
                let mut q = p;
                q[i] += h;
                if !b[i].contains(q[i]) { continue; }
                let fd = (e.eval_f64(&q) - fp) / h;
                let tol = 1e-3 * fd.abs().max(1.0);
                prop_assert!(g[i].lo - tol <= fd && fd <= g[i].hi + tol,
                    "{} d{i} {:?} {fd}", FORMULAS[k], g[i]);
            }
        }
    }

    #[test]
    fn mean_value_form_is_tight_on_small_boxes() {
        let e = parse("x / 20.0 * exp(-0.1 * y)", &names()).unwrap();
        let b = [Iv::new(100.0, 100.01), Iv::new(5.0, 5.01)];
        let (v, _) = range(&e, &b).unwrap();
        let lo = e.eval_f64(&[100.0, 5.01]);
        let hi = e.eval_f64(&[100.01, 5.0]);
        assert!(v.lo <= lo && v.hi >= hi);
        assert!((v.hi - v.lo) < 1.0001 * (hi - lo));
    }

    #[test]
    fn undefined_points_are_reported() {
        let e = parse("log(x - 1)", &names()).unwrap();
        assert!(eval(&e, &[Iv::new(0.0, 2.0), Iv::zero()], true).is_err());
        assert!(eval(&e, &[Iv::new(1.5, 2.0), Iv::zero()], true).is_ok());
    }
}
