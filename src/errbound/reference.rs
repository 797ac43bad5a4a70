//! Reference model files (`specs/references/*.toml`): the closed-form model a surrogate network
//! stands in for, and the region over which the two are compared.
//!
//! ```toml
//! name = "one_compartment_iv_bolus"
//! inputs = ["dose_mg", "t_h"]          # network input order
//! output = 0                            # network output index compared with the expression
//! expression = "dose_mg / 20.0 * exp(-0.1 * t_h)"
//! [region]
//! dose_mg = [50.0, 200.0]
//! t_h = [0.0, 24.0]
//! ```
//!
//! Every error names the file, the line and column, and the key. Expression errors point at
//! the offending character inside the string (exactly for plain one-line strings; for strings
//! with escapes, at the string's start with the column inside the expression). Region ends
//! are the `f64` numbers the TOML reader produces; the certified bound is over that box.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::expr::{self, Expr, Func};
use super::interval::Iv;
use crate::error::{Error, Location, Result};

/// A loaded, validated reference model.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub name: String,
    /// Input names in network input order.
    pub inputs: Vec<String>,
    /// Index of the network output compared with the expression.
    pub output: usize,
    /// The expression as written.
    pub expression: String,
    pub expr: Expr,
    /// The region, one `[lo, hi]` per input, in input order.
    pub region: Vec<Iv>,
    pub path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    inputs: Spanned<Vec<Spanned<String>>>,
    output: Spanned<i64>,
    expression: Spanned<String>,
    region: Spanned<BTreeMap<Spanned<String>, Spanned<Vec<f64>>>>,
}

/// Reads and validates a reference file.
pub fn load(path: &Path) -> Result<Reference> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path)
}

/// Validates the text of a reference file (`path` is only used in messages).
pub fn parse(text: &str, path: &Path) -> Result<Reference> {
    let at =
        |offset: usize, msg: String| Error::parse(path, Location::of_offset(text, offset), msg);
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim_end().to_string())
    })?;
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(at(
            raw.name.span().start,
            "key `name`: must not be empty".into(),
        ));
    }
    let mut inputs: Vec<String> = Vec::new();
    for n in raw.inputs.get_ref() {
        let s = n.get_ref();
        let ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(at(
                n.span().start,
                format!("key `inputs`: `{s}` is not a name (letters, digits and `_`, not starting with a digit)"),
            ));
        }
        if Func::by_name(s).is_some() {
            return Err(at(
                n.span().start,
                format!("key `inputs`: `{s}` is a function of the expression language; rename the input"),
            ));
        }
        if inputs.contains(s) {
            return Err(at(
                n.span().start,
                format!("key `inputs`: `{s}` is listed twice"),
            ));
        }
        inputs.push(s.clone());
    }
    if inputs.is_empty() {
        return Err(at(
            raw.inputs.span().start,
            "key `inputs`: list at least one input".into(),
        ));
    }
    let output = *raw.output.get_ref();
    if output < 0 {
        return Err(at(
            raw.output.span().start,
            format!("key `output`: {output} is not an output index (0, 1, ...)"),
        ));
    }
    let mut region = vec![None; inputs.len()];
    for (k, v) in raw.region.get_ref() {
        let Some(i) = inputs.iter().position(|n| n == k.get_ref()) else {
            return Err(at(
                k.span().start,
                format!(
                    "key `region.{}`: not one of the inputs ({})",
                    k.get_ref(),
                    inputs.join(", ")
                ),
            ));
        };
        let r = v.get_ref();
        let key = format!("region.{}", k.get_ref());
        if r.len() != 2 {
            return Err(at(
                v.span().start,
                format!("key `{key}`: expected [lo, hi], found {} numbers", r.len()),
            ));
        }
        if !(r[0].is_finite() && r[1].is_finite() && r[0] <= r[1]) {
            return Err(at(
                v.span().start,
                format!(
                    "key `{key}`: expected finite numbers with lo ≤ hi, found [{}, {}]",
                    r[0], r[1]
                ),
            ));
        }
        region[i] = Some(Iv::new(r[0], r[1]));
    }
    let region: Vec<Iv> = region
        .into_iter()
        .zip(&inputs)
        .map(|(r, n)| {
            r.ok_or_else(|| {
                at(
                    raw.region.span().start,
                    format!("key `region`: no range for the input `{n}` (add `{n} = [lo, hi]`)"),
                )
            })
        })
        .collect::<Result<_>>()?;
    let expression = raw.expression.get_ref().clone();
    let expr = expr::parse(&expression, &inputs).map_err(|e| {
        let span = raw.expression.span();
        let (offset, note) = expression_offset(text, span.start, &expression, e.offset);
        at(offset, format!("key `expression`: {}{note}", e.message))
    })?;
    Ok(Reference {
        name,
        inputs,
        output: output as usize,
        expression,
        expr,
        region,
        path: path.to_path_buf(),
    })
}

/// The file offset of byte `inner` of a string value starting (at its quote) at `start`.
/// Exact when the string is written verbatim; otherwise the string's start and a note.
fn expression_offset(text: &str, start: usize, value: &str, inner: usize) -> (usize, String) {
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        let body = start + quote.len();
        if text.get(start..body) == Some(quote) && text.get(body..body + value.len()) == Some(value)
        {
            return (body + inner, String::new());
        }
    }
    (
        start,
        format!(
            " (at character {} of the expression)",
            value[..inner.min(value.len())].chars().count() + 1
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: &str = r#"name = "one_compartment_iv_bolus"
inputs = ["dose_mg", "t_h"]          # network input order
output = 0                            # network output index compared with the expression
expression = "dose_mg / 20.0 * exp(-0.1 * t_h)"
[region]
dose_mg = [50.0, 200.0]
t_h = [0.0, 24.0]
"#;

    fn err(text: &str) -> String {
        parse(text, Path::new("ref.toml")).unwrap_err().to_string()
    }

    proptest::proptest! {
        #[test]
        fn mutated_files_never_panic(at in 0usize..400, c in "[ -~\n]", cut in proptest::bool::ANY) {
            let mut b: Vec<char> = ISSUE.chars().collect();
            let at = at % (b.len() + 1);
            if cut && at < b.len() {
                b.remove(at);
            } else {
                b.insert(at, c.chars().next().unwrap());
            }
            let text: String = b.into_iter().collect();
            if let Err(e) = parse(&text, Path::new("ref.toml")) {
                proptest::prop_assert!(e.to_string().starts_with("ref.toml:"), "{e}");
            }
        }
    }

    #[test]
    fn the_issue_example_loads() {
        let r = parse(ISSUE, Path::new("ref.toml")).unwrap();
        assert_eq!(r.inputs, ["dose_mg", "t_h"]);
        assert_eq!(r.output, 0);
        assert_eq!(r.region, vec![Iv::new(50.0, 200.0), Iv::new(0.0, 24.0)]);
    }

    #[test]
    fn errors_name_file_line_column_and_key() {
        let e = err(&ISSUE.replace("exp(-0.1", "exq(-0.1"));
        assert!(
            e.starts_with("ref.toml:4:32: key `expression`: unknown name `exq`"),
            "{e}"
        );
        let e = err(&ISSUE.replace("t_h = [0.0, 24.0]", "t_h = [24.0, 0.0]"));
        assert!(e.starts_with("ref.toml:7:7: key `region.t_h`"), "{e}");
        let e = err(&ISSUE.replace("t_h = [0.0, 24.0]", "t_x = [0.0, 24.0]"));
        assert!(e.starts_with("ref.toml:7:1: key `region.t_x`"), "{e}");
        let e = err(&ISSUE.replace("output = 0", "output = -1"));
        assert!(e.starts_with("ref.toml:3:10: key `output`"), "{e}");
        let e = err(&ISSUE.replace("output = 0 ", "outptu = 0 "));
        assert!(
            e.starts_with("ref.toml:3:1:") && e.contains("outptu"),
            "{e}"
        );
        let e = err(&ISSUE.replace("[\"dose_mg\", \"t_h\"]", "[\"dose_mg\", \"dose_mg\"]"));
        assert!(e.starts_with("ref.toml:2:22: key `inputs`"), "{e}");
    }
}
