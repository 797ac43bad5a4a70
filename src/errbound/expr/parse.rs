//! The tokenizer and recursive-descent parser of the expression language (grammar in the
//! parent module). Errors carry the byte offset of the offending token.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Pow, Zero};

use super::{Expr, Func};
use crate::errbound::interval::Iv;

/// Deepest nesting of parentheses, unary operators and calls accepted.
pub const MAX_DEPTH: usize = 200;

/// A parse error at a byte offset of the expression text.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(Iv),
    Name(String),
    Op(char),
    End,
}

struct Lexer<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize)>,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        offset,
        message: message.into(),
    })
}

impl<'a> Lexer<'a> {
    fn run(text: &'a str) -> Result<Vec<(Tok, usize)>, ParseError> {
        let mut lx = Lexer {
            text,
            toks: Vec::new(),
        };
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
            } else if c.is_ascii_digit() || c == b'.' {
                i = lx.number(i)?;
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                lx.toks.push((Tok::Name(text[start..i].to_string()), start));
            } else if b"+-*/^(),".contains(&c) {
                lx.toks.push((Tok::Op(c as char), i));
                i += 1;
            } else {
                let ch = text[i..].chars().next().unwrap_or('?');
                return err(
                    i,
                    format!("unexpected character `{ch}` (expected a number, a name, an operator + - * / ^, or a parenthesis)"),
                );
            }
        }
        lx.toks.push((Tok::End, text.len()));
        Ok(lx.toks)
    }

    /// Reads `digits [. digits] [(e|E) [+-] digits]` starting at `start`.
    fn number(&mut self, start: usize) -> Result<usize, ParseError> {
        let b = self.text.as_bytes();
        let mut i = start;
        let digits = |mut i: usize| {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            i
        };
        let int_end = digits(i);
        let (frac_start, mut frac_end) = (int_end, int_end);
        i = int_end;
        if i < b.len() && b[i] == b'.' {
            frac_end = digits(i + 1);
            i = frac_end;
        }
        let mantissa_digits =
            (int_end - start) + frac_end.saturating_sub(frac_start).saturating_sub(1);
        if mantissa_digits == 0 {
            return err(start, "a number needs at least one digit");
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            let neg = j < b.len() && b[j] == b'-';
            if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
                j += 1;
            }
            let e_end = digits(j);
            if e_end == j {
                return err(i, "an exponent needs digits after `e`");
            }
            let e: i64 = self.text[j..e_end]
                .parse::<i64>()
                .ok()
                .filter(|e| *e <= 100_000)
                .ok_or(ParseError {
                    offset: j,
                    message: "exponent out of range".into(),
                })?;
            exp = if neg { -e } else { e };
            i = e_end;
        }
        if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_' || b[i] == b'.') {
            return err(i, "unexpected character after a number");
        }
        let lit = &self.text[start..i];
        let value: f64 = lit.parse().map_err(|_| ParseError {
            offset: start,
            message: format!("`{lit}` is not a number"),
        })?;
        if !value.is_finite() {
            return err(start, format!("`{lit}` is too large for a 64-bit float"));
        }
        // The exact decimal: digits · 10^(exp − fraction digits).
        let mut all = self.text[start..int_end].to_string();
        if frac_end > frac_start {
            all.push_str(&self.text[frac_start + 1..frac_end]);
        }
        let frac_digits = frac_end.saturating_sub(frac_start + 1) as i64;
        let iv = match all.parse::<BigInt>() {
            Ok(m) if (exp - frac_digits).abs() <= 400 => {
                let e = exp - frac_digits;
                let ten = BigInt::from(10);
                let exact = if e >= 0 {
                    BigRational::from_integer(m * ten.pow(e as u32))
                } else {
                    BigRational::new(m, ten.pow((-e) as u32))
                };
                match BigRational::from_float(value) {
                    Some(v) if v == exact => Iv::point(value),
                    _ if exact.is_zero() => Iv::point(0.0),
                    _ => Iv::new(value.next_down(), value.next_up()),
                }
            }
            // Huge exponents or digit strings: the neighbours still enclose the decimal,
            // since `parse` rounds correctly.
            _ => Iv::new(value.next_down(), value.next_up()),
        };
        self.toks.push((Tok::Num(iv), start));
        Ok(i)
    }
}

struct Parser<'n> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    names: &'n [String],
    depth: usize,
}

/// Parses `text` into an expression over the inputs `names` (a name's index is its variable).
pub fn parse(text: &str, names: &[String]) -> Result<Expr, ParseError> {
    let toks = Lexer::run(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        names,
        depth: 0,
    };
    if matches!(p.peek(), Tok::End) {
        return err(0, "the expression is empty");
    }
    let e = p.expr()?;
    match p.peek() {
        Tok::End => Ok(e),
        Tok::Op(')') => err(p.offset(), "unmatched `)`"),
        _ => err(
            p.offset(),
            "expected an operator (+ - * / ^) or the end of the expression",
        ),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn offset(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if *self.peek() == Tok::Op(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.offset(),
                format!("the expression is nested more than {MAX_DEPTH} levels deep"),
            );
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut e = self.term()?;
        loop {
            if self.eat('+') {
                e = Expr::Add(Box::new(e), Box::new(self.term()?));
            } else if self.eat('-') {
                e = Expr::Sub(Box::new(e), Box::new(self.term()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(e)
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        loop {
            if self.eat('*') {
                e = Expr::Mul(Box::new(e), Box::new(self.unary()?));
            } else if self.eat('/') {
                e = Expr::Div(Box::new(e), Box::new(self.unary()?));
            } else {
                break;
            }
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = if self.eat('-') {
            Expr::Neg(Box::new(self.unary()?))
        } else if self.eat('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        if !self.eat('^') {
            return Ok(base);
        }
        let exponent = self.unary()?;
        Ok(match integer_literal(&exponent) {
            Some(k) => Expr::PowI(Box::new(base), k),
            None => Expr::Pow(Box::new(base), Box::new(exponent)),
        })
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let (tok, at) = self.bump();
        match tok {
            Tok::Num(v) => Ok(Expr::Num(v)),
            Tok::Op('(') => {
                let e = self.expr()?;
                if !self.eat(')') {
                    return err(
                        self.offset(),
                        format!("expected `)` to close the `(` at byte {at}"),
                    );
                }
                Ok(e)
            }
            Tok::Name(name) => {
                if let Some(f) = Func::by_name(&name) {
                    if !self.eat('(') {
                        return err(
                            self.offset(),
                            format!("expected `(` after the function `{name}`"),
                        );
                    }
                    self.enter()?;
                    let mut args = vec![self.expr()?];
                    while self.eat(',') {
                        args.push(self.expr()?);
                    }
                    if !self.eat(')') {
                        return err(
                            self.offset(),
                            format!("expected `,` or `)` in the arguments of `{name}`"),
                        );
                    }
                    self.depth -= 1;
                    if args.len() != f.arity() {
                        return err(
                            at,
                            format!(
                                "`{name}` takes {} argument{}, {} given",
                                f.arity(),
                                if f.arity() == 1 { "" } else { "s" },
                                args.len()
                            ),
                        );
                    }
                    return Ok(Expr::Call(f, args));
                }
                match self.names.iter().position(|n| *n == name) {
                    Some(i) => Ok(Expr::Var(i)),
                    None => err(
                        at,
                        format!(
                            "unknown name `{name}`: the inputs are {} and the functions {}",
                            list(self.names.iter().map(String::as_str)),
                            list(Func::ALL.iter().map(|f| f.name()))
                        ),
                    ),
                }
            }
            Tok::Op(')') => err(at, "expected a value before `)`"),
            Tok::Op(c) => err(at, format!("expected a value, found `{c}`")),
            Tok::End => err(at, "the expression ends where a value is expected"),
        }
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.map(|s| format!("`{s}`")).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// The integer an exponent literal spells (`3`, `-2`, `(2)`), if it is one of modest size.
fn integer_literal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Num(v) if v.is_point() && v.lo.fract() == 0.0 && v.lo.abs() <= 64.0 => {
            Some(v.lo as i64)
        }
        Expr::Neg(a) => integer_literal(a).map(|k| -k),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names() -> Vec<String> {
        vec!["dose_mg".into(), "t_h".into()]
    }

    #[test]
    fn parses_the_issue_example() {
        let e = parse("dose_mg / 20.0 * exp(-0.1 * t_h)", &names()).unwrap();
        let v = e.eval_f64(&[100.0, 10.0]);
        assert!((v - 5.0 * (-1.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn precedence_and_associativity() {
        let n = names();
        let ev = |s: &str| parse(s, &n).unwrap().eval_f64(&[2.0, 3.0]);
        assert_eq!(ev("-dose_mg^2"), -4.0);
        assert_eq!(ev("2^3^2"), 512.0);
        assert_eq!(ev("2^-1"), 0.5);
        assert_eq!(ev("1 - 2 - 3"), -4.0);
        assert_eq!(ev("8 / 4 / 2"), 1.0);
        assert_eq!(ev("1 + 2 * 3"), 7.0);
        assert_eq!(ev("(1 + 2) * 3"), 9.0);
        assert_eq!(ev("min(t_h, dose_mg) + max(1, 2)"), 4.0);
        assert_eq!(ev("hill(4, 100, 4, 1.5)"), 50.0);
        assert_eq!(ev("abs(-3) + sqrt(4) + 1e1 + .5"), 15.5);
    }

    #[test]
    fn decimal_literals_that_are_not_floats_become_intervals() {
        match parse("0.1", &names()).unwrap() {
            Expr::Num(v) => assert!(v.lo < 0.1 && 0.1 < v.hi),
            e => panic!("{e:?}"),
        }
        assert_eq!(parse("0.5", &names()).unwrap(), Expr::Num(Iv::point(0.5)));
        assert_eq!(parse("20.0", &names()).unwrap(), Expr::Num(Iv::point(20.0)));
        assert_eq!(
            parse("25e-2", &names()).unwrap(),
            Expr::Num(Iv::point(0.25))
        );
    }

    #[test]
    fn errors_have_offsets() {
        let n = names();
        let e = |s: &str| parse(s, &n).unwrap_err();
        assert_eq!(e("dose_mg +").offset, 9);
        assert_eq!(e("dose_mg + x").offset, 10);
        assert!(e("dose_mg + x").message.contains("unknown name `x`"));
        assert_eq!(e("exp(1, 2)").offset, 0);
        assert_eq!(e("(1 + 2").offset, 6);
        assert_eq!(e("1 + 2)").offset, 5);
        assert_eq!(e("1 $ 2").offset, 2);
        assert_eq!(e("exp 2").offset, 4);
        assert_eq!(e("").offset, 0);
        assert_eq!(e("1e").offset, 1);
        assert_eq!(e("1.2.3").offset, 3);
        let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
        assert!(e(&deep).message.contains("nested"));
    }

    fn valid() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("dose_mg".to_string()),
            Just("t_h".to_string()),
            (0u32..1000).prop_map(|v| format!("{}.{}", v / 10, v % 10)),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone(), 0usize..5)
                    .prop_map(|(a, b, k)| format!("({a} {} {b})", ["+", "-", "*", "/", "^"][k])),
                (inner.clone(), 0usize..6).prop_map(|(a, k)| format!(
                    "{}({a})",
                    ["exp", "log", "sqrt", "tanh", "sigmoid", "abs"][k]
                )),
                inner.clone().prop_map(|a| format!("-{a}")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("hill({a}, 100, {b}, 1.5)")),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(s in "[ -~]{0,40}") {
            if let Err(e) = parse(&s, &names()) {
                prop_assert!(e.offset <= s.len());
                prop_assert!(!e.message.is_empty());
            }
        }

        #[test]
        fn valid_expressions_parse(s in valid()) {
            prop_assert!(parse(&s, &names()).is_ok(), "{s}");
        }

        #[test]
        fn mutated_expressions_never_panic(
            s in valid(), at in 0usize..200, c in "[ -~]", cut in any::<bool>(),
        ) {
            let mut b: Vec<char> = s.chars().collect();
            let at = at % (b.len() + 1);
            if cut && at < b.len() {
                b.remove(at);
            } else {
                b.insert(at, c.chars().next().unwrap());
            }
            let m: String = b.into_iter().collect();
            if let Err(e) = parse(&m, &names()) {
                prop_assert!(e.offset <= m.len());
            }
        }
    }
}
