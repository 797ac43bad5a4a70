//! The declarations of a VNN-LIB file: which commands exist and which variables are declared.
//!
//! In: the top-level S-expressions. Out: the variable table — `X_i` and `Y_j` of sort `Real`,
//! declared with `declare-const` (or `declare-fun` with no arguments) in any order, each once,
//! numbered contiguously from 0 — and the span of each input's declaration, which later errors
//! about missing bounds point at. Unknown commands are refused here, before anything else.

use std::collections::{BTreeMap, HashMap};

use super::sexpr::{shorten, LocatedError, Sexp, SexpKind, Span};
use super::vnnlib::Var;

fn err<T>(span: Span, message: impl Into<String>) -> Result<T, LocatedError> {
    Err(LocatedError {
        offset: span.start,
        message: message.into(),
    })
}

/// Every top-level item must be a known command.
pub fn check_commands(items: &[Sexp<'_>]) -> Result<(), LocatedError> {
    for item in items {
        match (&item.kind, item.head()) {
            (SexpKind::Atom(_), _) => {
                return err(
                    item.span,
                    format!("expected `(` to start a command, found {}", item.describe()),
                )
            }
            (
                SexpKind::List(_),
                Some(
                    "declare-const" | "declare-fun" | "assert" | "set-logic" | "set-info"
                    | "set-option" | "check-sat" | "get-model" | "exit",
                ),
            ) => {}
            (SexpKind::List(_), _) => {
                return err(
                    item.span,
                    format!(
                        "unknown command {}; expected `(declare-const` or `(assert`",
                        item.describe()
                    ),
                )
            }
        }
    }
    Ok(())
}

pub struct Declarations<'a> {
    pub by_name: HashMap<&'a str, Var>,
    pub input_decls: Vec<Span>,
    pub num_outputs: usize,
}

/// `X_12` → `Var::X(12)`; only the canonical spelling (no leading zeros, no sign).
fn var_of_name(name: &str) -> Option<Var> {
    let (kind, digits) = if let Some(d) = name.strip_prefix("X_") {
        (true, d)
    } else {
        (false, name.strip_prefix("Y_")?)
    };
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    let index: usize = digits.parse().ok()?;
    Some(if kind { Var::X(index) } else { Var::Y(index) })
}

pub fn declarations<'a>(text: &str, items: &[Sexp<'a>]) -> Result<Declarations<'a>, LocatedError> {
    let mut by_name: HashMap<&'a str, Var> = HashMap::new();
    let mut spans: BTreeMap<Var, Span> = BTreeMap::new();
    for item in items {
        let SexpKind::List(parts) = &item.kind else {
            continue;
        };
        let (name, sort) = match (item.head(), parts.len()) {
            (Some("declare-const"), 3) => (&parts[1], &parts[2]),
            (Some("declare-fun"), 4) if parts[2].kind == SexpKind::List(Vec::new()) => {
                (&parts[1], &parts[3])
            }
            (Some("declare-const"), _) => {
                return err(item.span, "expected `(declare-const <name> Real)`")
            }
            (Some("declare-fun"), _) => {
                return err(item.span, "expected `(declare-fun <name> () Real)`")
            }
            _ => continue,
        };
        let Some(name_text) = name.atom() else {
            return err(name.span, "expected a variable name such as `X_0` or `Y_0`");
        };
        let Some(var) = var_of_name(name_text) else {
            return err(
                name.span,
                format!(
                    "cannot declare `{}`: VNN-LIB variables are named `X_<i>` (inputs) and \
                     `Y_<j>` (outputs), numbered from 0",
                    shorten(name_text)
                ),
            );
        };
        if sort.atom() != Some("Real") {
            return err(
                sort.span,
                format!("expected sort `Real` for {var}, found {}", sort.describe()),
            );
        }
        if let Some(first) = spans.get(&var) {
            let at = super::location(text, first.start);
            return err(
                item.span,
                format!("{var} is declared twice (first at {at})"),
            );
        }
        spans.insert(var, item.span);
        by_name.insert(name_text, var);
    }
    let inputs: Vec<(usize, Span)> = spans
        .iter()
        .filter_map(|(v, s)| match v {
            Var::X(i) => Some((*i, *s)),
            Var::Y(_) => None,
        })
        .collect();
    let outputs: Vec<(usize, Span)> = spans
        .iter()
        .filter_map(|(v, s)| match v {
            Var::Y(j) => Some((*j, *s)),
            Var::X(_) => None,
        })
        .collect();
    for (kind, decls, role) in [("X", &inputs, "input"), ("Y", &outputs, "output")] {
        if decls.is_empty() {
            return err(
                Span {
                    start: text.len(),
                    end: text.len(),
                },
                format!("no {role} variables declared; expected `(declare-const {kind}_0 Real)`"),
            );
        }
        // Sorted by index: the first position whose index differs from it is the gap.
        if let Some(pos) = decls.iter().enumerate().position(|(k, (i, _))| k != *i) {
            let (index, span) = decls[pos];
            return err(
                span,
                format!(
                    "{kind}_{index} is declared but {kind}_{pos} is not; {role} variables must \
                     be numbered {kind}_0, {kind}_1, … without gaps"
                ),
            );
        }
    }
    Ok(Declarations {
        by_name,
        input_decls: inputs.into_iter().map(|(_, s)| s).collect(),
        num_outputs: outputs.len(),
    })
}
