//! The VNN-LIB parser: S-expressions in, a formula tree over classified atoms out.
//!
//! Input: the trees of [`super::sexpr`]. Output: [`Parsed`], the declared dimensions and one
//! formula tree per `assert`, whose leaves are already classified as *input bounds*
//! (`X_i <= c`, `X_i >= c`) or *output atoms* (`a·Y <= b`, exact rationals). Commands and
//! declarations are checked first (in `declare`); every check that concerns a single atom
//! happens here, so errors point at the offending text: unknown variables, malformed numbers,
//! nonlinear terms, constraints that combine several inputs or mix inputs with outputs,
//! numbers beyond the `f64` range.
//!
//! Supported (the VNN-COMP subset): `declare-const` (and `declare-fun` with no arguments) of
//! `X_i`/`Y_j` of sort `Real` in any order; `assert` of `and`, `or`, `true`, `false`, and
//! comparisons `<=`, `>=`, `<`, `>`, `=` (chains like `(<= a b c)` too) between linear terms
//! built with `+`, `-` (unary and n-ary), `*` (at most one non-constant factor) and `/` (by a
//! constant). Strict `<` and `>` are read as `<=` and `>=`, the closure of the region, with a
//! note: proving the closed unsafe region empty proves the open one empty too. `set-logic`,
//! `set-info`, `set-option`, `check-sat`, `get-model` and `exit` are ignored.

use std::collections::{BTreeMap, HashMap};

use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::declare::{check_commands, declarations};
use super::rational;
use super::sexpr::{shorten, LocatedError, Sexp, SexpKind, Span};

/// A variable of the property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    X(usize),
    Y(usize),
}

impl std::fmt::Display for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Var::X(i) => write!(f, "X_{i}"),
            Var::Y(j) => write!(f, "Y_{j}"),
        }
    }
}

/// A classified leaf of a formula.
#[derive(Clone, Debug)]
pub enum Leaf {
    /// `X_var <= value` (upper) or `X_var >= value` (lower).
    Bound {
        var: usize,
        upper: bool,
        value: BigRational,
        span: Span,
    },
    /// `Σ coeffs[k].1 · Y_{coeffs[k].0} <= rhs`, sparse, no zero coefficients.
    Output {
        coeffs: Vec<(usize, BigRational)>,
        rhs: BigRational,
    },
}

/// A formula tree; leaves index [`Parsed::leaves`].
#[derive(Clone, Debug)]
pub enum Node {
    Leaf(u32, Span),
    Const(bool, Span),
    And(Vec<Node>, Span),
    Or(Vec<Node>, Span),
}

impl Node {
    pub fn span(&self) -> Span {
        match self {
            Node::Leaf(_, s) | Node::Const(_, s) | Node::And(_, s) | Node::Or(_, s) => *s,
        }
    }
}

/// A remark that does not stop parsing (e.g. a strict inequality read as non-strict).
#[derive(Clone, Debug, PartialEq)]
pub struct RawNote {
    pub offset: usize,
    pub message: String,
}

/// What the parser hands to normalisation.
#[derive(Debug)]
pub struct Parsed {
    pub num_inputs: usize,
    pub num_outputs: usize,
    /// Where each input `X_i` is declared.
    pub input_decls: Vec<Span>,
    pub asserts: Vec<Node>,
    pub leaves: Vec<Leaf>,
    pub notes: Vec<RawNote>,
}

fn err<T>(span: Span, message: impl Into<String>) -> Result<T, LocatedError> {
    Err(LocatedError {
        offset: span.start,
        message: message.into(),
    })
}

/// Parses the top-level commands.
pub fn parse_commands(text: &str, items: &[Sexp<'_>]) -> Result<Parsed, LocatedError> {
    check_commands(items)?;
    let vars = declarations(text, items)?;
    let mut parser = Parser {
        vars: &vars.by_name,
        leaves: Vec::new(),
        notes: Vec::new(),
    };
    let mut asserts = Vec::new();
    for item in items {
        let SexpKind::List(parts) = &item.kind else {
            continue;
        };
        if item.head() == Some("assert") {
            if parts.len() != 2 {
                return err(
                    item.span,
                    format!(
                        "`(assert` takes exactly one formula, found {}",
                        parts.len() - 1
                    ),
                );
            }
            asserts.push(parser.formula(&parts[1])?);
        }
    }
    Ok(Parsed {
        num_inputs: vars.input_decls.len(),
        num_outputs: vars.num_outputs,
        input_decls: vars.input_decls,
        asserts,
        leaves: parser.leaves,
        notes: parser.notes,
    })
}

/// A linear term `Σ coeff·var + constant`, exact; no zero coefficients are kept.
#[derive(Clone, Debug, Default)]
struct Lin {
    terms: BTreeMap<Var, BigRational>,
    constant: BigRational,
}

impl Lin {
    fn constant(c: BigRational) -> Lin {
        Lin {
            terms: BTreeMap::new(),
            constant: c,
        }
    }

    fn add(&mut self, other: &Lin, sign: &BigRational) {
        for (v, c) in &other.terms {
            let entry = self.terms.entry(*v).or_insert_with(BigRational::zero);
            *entry += c * sign;
            if entry.is_zero() {
                self.terms.remove(v);
            }
        }
        self.constant += &other.constant * sign;
    }

    fn scale(&mut self, k: &BigRational) {
        if k.is_zero() {
            self.terms.clear();
        }
        for c in self.terms.values_mut() {
            *c *= k;
        }
        self.constant *= k;
    }
}

struct Parser<'v, 'a> {
    vars: &'v HashMap<&'a str, Var>,
    leaves: Vec<Leaf>,
    notes: Vec<RawNote>,
}

impl Parser<'_, '_> {
    fn formula(&mut self, e: &Sexp<'_>) -> Result<Node, LocatedError> {
        let parts = match &e.kind {
            SexpKind::Atom("true") => return Ok(Node::Const(true, e.span)),
            SexpKind::Atom("false") => return Ok(Node::Const(false, e.span)),
            SexpKind::Atom(_) => {
                return err(
                    e.span,
                    format!(
                        "expected a formula such as `(<= Y_0 Y_1)`, found {}",
                        e.describe()
                    ),
                )
            }
            SexpKind::List(parts) => parts,
        };
        let op = e.head().unwrap_or("");
        match op {
            "and" | "or" => {
                let children = parts[1..]
                    .iter()
                    .map(|c| self.formula(c))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" {
                    Node::And(children, e.span)
                } else {
                    Node::Or(children, e.span)
                })
            }
            "<=" | ">=" | "<" | ">" | "=" => self.comparison(op, e.span, &parts[1..]),
            "not" | "=>" | "xor" | "ite" | "distinct" => err(
                e.span,
                format!(
                    "`({op}` is not supported in VNN-LIB properties; use `and`, `or` and the \
                     comparisons `<=`, `>=`, `<`, `>`, `=`"
                ),
            ),
            _ => err(
                e.span,
                format!(
                    "expected a formula (`and`, `or`, `<=`, `>=`, `<`, `>`, `=`), found {}",
                    e.describe()
                ),
            ),
        }
    }

    fn comparison(
        &mut self,
        op: &str,
        span: Span,
        args: &[Sexp<'_>],
    ) -> Result<Node, LocatedError> {
        if args.len() < 2 {
            return err(
                span,
                format!("`({op}` needs at least two terms, found {}", args.len()),
            );
        }
        if op == "<" || op == ">" {
            self.notes.push(RawNote {
                offset: span.start,
                message: format!(
                    "strict `{op}` is read as `{op}=` (the closed region); this is sound for \
                     proving the property, and counterexamples are checked against the closed \
                     region"
                ),
            });
        }
        let terms = args
            .iter()
            .map(|a| self.term(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut conj = Vec::new();
        for pair in terms.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            // Each entry `d` stands for `d <= 0`.
            let mut diffs = Vec::new();
            if matches!(op, "<=" | "<" | "=") {
                diffs.push(difference(a, b));
            }
            if matches!(op, ">=" | ">" | "=") {
                diffs.push(difference(b, a));
            }
            for d in diffs {
                conj.push(self.classify(d, span)?);
            }
        }
        Ok(if conj.len() == 1 {
            conj.remove(0)
        } else {
            Node::And(conj, span)
        })
    }

    /// Turns `d <= 0` into a constant, an input bound or an output atom.
    fn classify(&mut self, d: Lin, span: Span) -> Result<Node, LocatedError> {
        let inputs: Vec<Var> = d
            .terms
            .keys()
            .copied()
            .filter(|v| matches!(v, Var::X(_)))
            .collect();
        let has_outputs = d.terms.keys().any(|v| matches!(v, Var::Y(_)));
        let list = |vs: &[Var]| {
            vs.iter()
                .take(4)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !inputs.is_empty() && has_outputs {
            let all: Vec<Var> = d.terms.keys().copied().collect();
            return err(
                span,
                format!(
                    "this constraint mixes input and output variables ({}); a VNN-LIB property \
                     bounds the inputs and constrains the outputs separately",
                    list(&all)
                ),
            );
        }
        if inputs.len() > 1 {
            return err(
                span,
                format!(
                    "this constraint combines several input variables ({}); only bounds on \
                     single inputs such as `(<= X_0 0.5)` are supported",
                    list(&inputs)
                ),
            );
        }
        let leaf = if let Some((&Var::X(var), k)) = d.terms.iter().next().filter(|_| !has_outputs) {
            // k·X + c <= 0  ⇔  X <= -c/k (k > 0)  or  X >= -c/k (k < 0).
            let value = -&d.constant / k;
            check_range(&value, span, || format!("the bound on X_{var}"))?;
            Leaf::Bound {
                var,
                upper: k.is_positive(),
                value,
                span,
            }
        } else if has_outputs {
            let mut coeffs = Vec::with_capacity(d.terms.len());
            for (v, c) in d.terms {
                if let Var::Y(j) = v {
                    check_range(&c, span, || format!("the coefficient of Y_{j}"))?;
                    coeffs.push((j, c));
                }
            }
            let rhs = -d.constant;
            check_range(&rhs, span, || "the constant of this constraint".to_string())?;
            Leaf::Output { coeffs, rhs }
        } else {
            return Ok(Node::Const(!d.constant.is_positive(), span));
        };
        let id = self.leaves.len() as u32;
        self.leaves.push(leaf);
        Ok(Node::Leaf(id, span))
    }

    fn term(&mut self, e: &Sexp<'_>) -> Result<Lin, LocatedError> {
        let parts = match &e.kind {
            SexpKind::Atom(s) => return self.atom_term(s, e.span),
            SexpKind::List(parts) => parts,
        };
        let op = e.head().unwrap_or("");
        let args = if parts.is_empty() { parts } else { &parts[1..] };
        let one = BigRational::from_integer(1.into());
        match op {
            "+" | "-" if !args.is_empty() => {
                let mut acc = self.term(&args[0])?;
                if op == "-" && args.len() == 1 {
                    acc.scale(&-one);
                    return Ok(acc);
                }
                let sign = if op == "-" { -one } else { one };
                for a in &args[1..] {
                    acc.add(&self.term(a)?, &sign);
                }
                Ok(acc)
            }
            "*" if !args.is_empty() => {
                let mut factors = args
                    .iter()
                    .map(|a| Ok((self.term(a)?, a.span)))
                    .collect::<Result<Vec<_>, LocatedError>>()?;
                let variable: Vec<usize> = (0..factors.len())
                    .filter(|&k| !factors[k].0.terms.is_empty())
                    .collect();
                if variable.len() > 1 {
                    return err(
                        factors[variable[1]].1,
                        "nonlinear term: at most one factor of `(*` may contain variables",
                    );
                }
                let mut acc = match variable.first() {
                    Some(&k) => factors.swap_remove(k).0,
                    None => Lin::constant(one),
                };
                for (f, _) in &factors {
                    acc.scale(&f.constant);
                }
                Ok(acc)
            }
            "/" if args.len() >= 2 => {
                let mut acc = self.term(&args[0])?;
                for a in &args[1..] {
                    let d = self.term(a)?;
                    if !d.terms.is_empty() {
                        return err(a.span, "nonlinear term: `(/` divides by a constant only");
                    }
                    if d.constant.is_zero() {
                        return err(a.span, "division by zero");
                    }
                    acc.scale(&d.constant.recip());
                }
                Ok(acc)
            }
            "+" | "-" | "*" | "/" => err(
                e.span,
                format!(
                    "`({op}` needs {} argument",
                    if op == "/" { "a second" } else { "an" }
                ),
            ),
            _ => err(
                e.span,
                format!(
                    "expected a term (a number, a variable, or `+`, `-`, `*`, `/`), found {}",
                    e.describe()
                ),
            ),
        }
    }

    fn atom_term(&self, s: &str, span: Span) -> Result<Lin, LocatedError> {
        if let Some(var) = self.vars.get(s) {
            let mut terms = BTreeMap::new();
            terms.insert(*var, BigRational::from_integer(1.into()));
            return Ok(Lin {
                terms,
                constant: BigRational::zero(),
            });
        }
        let first = s.as_bytes().first().copied().unwrap_or(b' ');
        let numeric = first.is_ascii_digit()
            || (matches!(first, b'-' | b'+' | b'.') && s.len() > 1 && !s.contains('_'));
        if numeric {
            return match rational::from_decimal(s) {
                Some(q) => Ok(Lin::constant(q)),
                None => err(
                    span,
                    format!(
                        "malformed number `{}`; expected a decimal such as `0.5`, `-1` or \
                         `1e-3` (exponents up to ±{})",
                        shorten(s),
                        rational::MAX_EXPONENT
                    ),
                ),
            };
        }
        err(
            span,
            format!(
                "unknown variable `{}`; declare it with `(declare-const {} Real)`",
                shorten(s),
                shorten(s)
            ),
        )
    }
}

/// `a - b`.
fn difference(a: &Lin, b: &Lin) -> Lin {
    let mut d = a.clone();
    d.add(b, &-BigRational::from_integer(1.into()));
    d
}

/// Every number that reaches the `Spec` must have a finite `f64` view.
fn check_range(
    q: &BigRational,
    span: Span,
    what: impl FnOnce() -> String,
) -> Result<(), LocatedError> {
    static MAX: std::sync::OnceLock<BigRational> = std::sync::OnceLock::new();
    let max = MAX.get_or_init(|| rational::from_f64(f64::MAX).unwrap_or_default());
    if q.abs() > *max {
        return err(
            span,
            format!(
                "{} is {}, beyond the range of f64",
                what(),
                shorten(&rational::to_decimal(q))
            ),
        );
    }
    Ok(())
}
