//! The VNN-COMP result file: what `run_instance.sh` leaves for the competition harness.
//!
//! In: a [`Verdict`] and, for `violated`, its [`Counterexample`]. Out: the text
//! `unsat` (holds), `sat` followed by the assignment `((X_0 v)\n (X_1 v)\n ... (Y_m v))`
//! (violated), `unknown`, `timeout` or `error`, each ending with a newline. Numbers are
//! printed with Rust's shortest round-trip representation, so reading them back as `f64`
//! gives the very numbers that were checked. [`parse`] reads such a file back (tests and
//! tools that re-check a counterexample use it).

use super::{Counterexample, Verdict};
use crate::error::{Error, Result};

/// The result file's text for a verdict.
pub fn render(verdict: Verdict, counterexample: Option<&Counterexample>) -> String {
    match verdict {
        Verdict::Holds => "unsat\n".into(),
        Verdict::Violated => {
            let mut s = String::from("sat\n");
            if let Some(c) = counterexample {
                let entries: Vec<String> = c
                    .input
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("(X_{i} {})", number(*v)))
                    .chain(
                        c.output
                            .iter()
                            .enumerate()
                            .map(|(j, v)| format!("(Y_{j} {})", number(*v))),
                    )
                    .collect();
                s += &format!("({})\n", entries.join("\n "));
            }
            s
        }
        Verdict::Unknown => "unknown\n".into(),
        Verdict::Timeout => "timeout\n".into(),
        Verdict::Error => "error\n".into(),
    }
}

/// Shortest round-trip text of a finite `f64` (`{:?}`: `0.5`, `-3.0`, `1e-7`).
fn number(v: f64) -> String {
    format!("{v:?}")
}

/// A result file read back: the verdict and, for `sat`, the `X_i` and `Y_j` values.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedResult {
    pub verdict: Verdict,
    pub inputs: Vec<f64>,
    pub outputs: Vec<f64>,
}

/// Reads a result file (`unsat`/`holds`, `sat`/`violated` with an optional assignment,
/// `unknown`, `timeout`, `error`). Variables must be numbered densely from 0.
pub fn parse(text: &str) -> Result<ParsedResult> {
    let bad = |m: String| Error::Invalid(format!("result file: {m}"));
    let mut lines = text.lines();
    let first = lines.next().map(str::trim).unwrap_or("");
    let verdict = match first {
        "unsat" | "holds" => Verdict::Holds,
        "sat" | "violated" => Verdict::Violated,
        "unknown" => Verdict::Unknown,
        "timeout" => Verdict::Timeout,
        "error" => Verdict::Error,
        other => return Err(bad(format!("unexpected first line `{other}`"))),
    };
    let rest: String = lines.collect::<Vec<_>>().join(" ");
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let cleaned = rest.replace(['(', ')'], " ");
    let tokens: Vec<&str> = cleaned.split_whitespace().collect();
    if !tokens.len().is_multiple_of(2) {
        return Err(bad("an assignment without a value".into()));
    }
    for pair in tokens.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let v: f64 = value
            .parse()
            .map_err(|_| bad(format!("`{value}` is not a number (for {name})")))?;
        let (list, idx) = if let Some(i) = name.strip_prefix("X_") {
            (&mut inputs, i)
        } else if let Some(j) = name.strip_prefix("Y_") {
            (&mut outputs, j)
        } else {
            return Err(bad(format!("unexpected variable `{name}`")));
        };
        let idx: usize = idx
            .parse()
            .map_err(|_| bad(format!("bad variable `{name}`")))?;
        if idx != list.len() {
            return Err(bad(format!("variable `{name}` out of order")));
        }
        list.push(v);
    }
    Ok(ParsedResult {
        verdict,
        inputs,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cex() -> Counterexample {
        Counterexample {
            region: 0,
            input: vec![0.6, -0.5, 1e-7, 0.1 + 0.2, -3.0],
            output: vec![-0.01953125, 1234.5678, 5e300],
        }
    }

    #[test]
    fn every_verdict_renders_in_vnncomp_format() {
        let c = cex();
        let all = [
            render(Verdict::Holds, None),
            render(Verdict::Violated, Some(&c)),
            render(Verdict::Unknown, None),
            render(Verdict::Timeout, None),
            render(Verdict::Error, None),
        ]
        .join("---\n");
        insta::assert_snapshot!(all);
    }

    #[test]
    fn counterexamples_round_trip_exactly() {
        let c = cex();
        let p = parse(&render(Verdict::Violated, Some(&c))).unwrap();
        assert_eq!(p.verdict, Verdict::Violated);
        assert_eq!(p.inputs, c.input);
        assert_eq!(p.outputs, c.output);
        assert_eq!(parse("unsat\n").unwrap().verdict, Verdict::Holds);
        assert!(parse("maybe\n").is_err());
        assert!(parse("sat\n((X_1 0.5))\n").is_err());
    }
}
