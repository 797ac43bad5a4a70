//! The expression language of reference models: a parsed formula `f(x)` over named inputs.
//!
//! Grammar (precedence from loose to tight; `^` is right-associative and binds tighter than
//! unary minus, so `-x^2 = -(x^2)` and `2^-1 = 0.5`):
//!
//! ```text
//! expr  := term (('+' | '-') term)*
//! term  := unary (('*' | '/') unary)*
//! unary := ('-' | '+') unary | power
//! power := atom ('^' unary)?
//! atom  := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//!
//! Functions: `exp log sqrt tanh sigmoid abs` (one argument), `min max` (two), and
//! `hill(x, emax, ec50, n) = emax · xⁿ / (ec50ⁿ + xⁿ)` (defined for `x ≥ 0`, `ec50 > 0`).
//! A number literal stands for the exact decimal it spells: when that decimal is not an `f64`
//! (`0.1`), the literal is the interval between its two neighbouring `f64`s, so enclosures hold
//! for the real-number formula the user wrote. [`parse`] reports every error with a byte
//! offset into the text (the caller turns it into a file line and column) and never panics;
//! nesting deeper than [`MAX_DEPTH`] is an error, not a stack overflow.

mod parse;

pub use parse::{parse, ParseError, MAX_DEPTH};

use super::interval::Iv;

/// A function of the expression language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Exp,
    Log,
    Sqrt,
    Tanh,
    Sigmoid,
    Abs,
    Min,
    Max,
    Hill,
}

impl Func {
    pub const ALL: [Func; 9] = [
        Func::Exp,
        Func::Log,
        Func::Sqrt,
        Func::Tanh,
        Func::Sigmoid,
        Func::Abs,
        Func::Min,
        Func::Max,
        Func::Hill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Sqrt => "sqrt",
            Func::Tanh => "tanh",
            Func::Sigmoid => "sigmoid",
            Func::Abs => "abs",
            Func::Min => "min",
            Func::Max => "max",
            Func::Hill => "hill",
        }
    }

    pub fn arity(self) -> usize {
        match self {
            Func::Min | Func::Max => 2,
            Func::Hill => 4,
            _ => 1,
        }
    }

    pub fn by_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A parsed expression. Variables are indices into the reference model's input list.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal: a point when the decimal is an `f64`, else its two neighbouring `f64`s.
    Num(Iv),
    Var(usize),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    /// `base ^ k` with an integer literal exponent.
    PowI(Box<Expr>, i64),
    /// `base ^ exponent` in general (`exp(exponent · ln base)`, base ≥ 0).
    Pow(Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// Plain `f64` evaluation (round-to-nearest, libm): fast screening of candidate points,
    /// never a bound. NaN where the formula is undefined.
    pub fn eval_f64(&self, x: &[f64]) -> f64 {
        match self {
            Expr::Num(v) => {
                if v.is_point() {
                    v.lo
                } else {
                    v.lo + 0.5 * (v.hi - v.lo)
                }
            }
            Expr::Var(i) => x.get(*i).copied().unwrap_or(f64::NAN),
            Expr::Neg(a) => -a.eval_f64(x),
            Expr::Add(a, b) => a.eval_f64(x) + b.eval_f64(x),
            Expr::Sub(a, b) => a.eval_f64(x) - b.eval_f64(x),
            Expr::Mul(a, b) => a.eval_f64(x) * b.eval_f64(x),
            Expr::Div(a, b) => a.eval_f64(x) / b.eval_f64(x),
            Expr::PowI(a, k) => a.eval_f64(x).powi((*k).clamp(-1 << 30, 1 << 30) as i32),
            Expr::Pow(a, b) => {
                let base = a.eval_f64(x);
                if base < 0.0 {
                    f64::NAN
                } else {
                    base.powf(b.eval_f64(x))
                }
            }
            Expr::Call(f, args) => {
                let v: Vec<f64> = args.iter().map(|a| a.eval_f64(x)).collect();
                let a = v.first().copied().unwrap_or(f64::NAN);
                match f {
                    Func::Exp => a.exp(),
                    Func::Log => a.ln(),
                    Func::Sqrt => a.sqrt(),
                    Func::Tanh => a.tanh(),
                    Func::Sigmoid => 1.0 / (1.0 + (-a).exp()),
                    Func::Abs => a.abs(),
                    Func::Min => a.min(v[1]),
                    Func::Max => a.max(v[1]),
                    Func::Hill => {
                        let (emax, ec50, n) = (v[1], v[2], v[3]);
                        if a < 0.0 || ec50 <= 0.0 {
                            f64::NAN
                        } else if a == 0.0 {
                            0.0
                        } else {
                            emax / (1.0 + (ec50 / a).powf(n))
                        }
                    }
                }
            }
        }
    }
}
