//! TOML loading with located errors: every message names the file, the key and its line.
//!
//! In: a file's text and a serde type. Out: the value, or an [`Error::Parse`] whose location
//! is the offending value (serde errors carry toml's span; semantic errors found after
//! deserialisation name a key path such as `perturbations[2].severity`, which [`locate`]
//! resolves against the document's spanned tree).

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Location};

/// Deserialises `text` (the contents of `path`) into `T`, mapping toml's errors to a location.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
    toml::from_str::<T>(text).map_err(|e| {
        let message = e.message().trim().to_string();
        let location = e
            .span()
            .map(|s| Location::of_offset(text, refine(text, s, &message)))
            .unwrap_or(Location { line: 1, column: 1 });
        Error::parse(path, location, message)
    })
}

/// Serde reports unknown keys and variants of flattened or tagged tables at the table; point
/// at the offending key (`unknown field `k``) or value (`unknown variant `v``) inside it.
fn refine(text: &str, span: std::ops::Range<usize>, message: &str) -> usize {
    let quoted = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?;
        let end = rest.find('`')?;
        Some(rest[..end].to_string())
    };
    // The table's own lines: from the span to the next table header (spans of tagged and
    // flattened tables may cover only their header).
    let Some(tail) = text.get(span.start..) else {
        return span.start;
    };
    let mut end = tail.len();
    let mut offset = 0;
    for (k, line) in tail.split_inclusive('\n').enumerate() {
        if k > 0 && line.trim_start().starts_with('[') {
            end = offset;
            break;
        }
        offset += line.len();
    }
    let region = &tail[..end];
    let found = if let Some(key) = quoted("unknown field `") {
        let mut offset = 0;
        let mut hit = None;
        for line in region.split_inclusive('\n') {
            let t = line.trim_start();
            if t.strip_prefix(key.as_str())
                .is_some_and(|r| r.trim_start().starts_with('='))
            {
                hit = Some(offset + line.len() - t.len());
                break;
            }
            offset += line.len();
        }
        hit
    } else if let Some(v) = quoted("unknown variant `") {
        region
            .find(&format!("\"{v}\""))
            .or_else(|| region.find(&format!("'{v}'")))
    } else {
        None
    };
    found.map(|o| span.start + o).unwrap_or(span.start)
}

/// A semantic error at key path `key` (e.g. `features[1].range`) of the TOML file `path`.
pub fn invalid(path: &Path, text: &str, key: &str, message: impl AsRef<str>) -> Error {
    let location = locate(text, key).unwrap_or(Location { line: 1, column: 1 });
    Error::parse(path, location, format!("`{key}`: {}", message.as_ref()))
}

/// One step of a key path.
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into steps; `None` when the path is malformed.
fn steps(key: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Step::Field(name));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            out.push(Step::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
    }
    Some(out)
}

/// The location of the value at key path `key` in `text`, or of its deepest existing ancestor.
pub fn locate(text: &str, key: &str) -> Option<Location> {
    let root = DeTable::parse(text).ok()?;
    let steps = steps(key)?;
    let mut span = root.span();
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for step in steps {
        let next = match (step, table, value) {
            (Step::Field(name), Some(t), _) => t
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == name)
                .map(|(k, v)| (k.span(), v)),
            (Step::Index(i), _, Some(DeValue::Array(a))) => a.get(i).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((key_span, v)) = next else { break };
        // Point at the value for scalars and inline values, at the key for tables.
        span = if v.span().start < v.span().end && !matches!(v.get_ref(), DeValue::Table(_)) {
            v.span()
        } else {
            key_span
        };
        value = Some(v.get_ref());
        table = match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    Some(Location::of_offset(text, span.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys() {
        let text = "seed = 1\n\n[[p]]\nkind = \"a\"\n\n[[p]]\nkind = \"b\"\nseverity = [0, 2]\n";
        assert_eq!(locate(text, "seed").map(|l| l.line), Some(1));
        assert_eq!(locate(text, "p[1].severity").map(|l| l.line), Some(8));
        assert_eq!(locate(text, "p[0].kind").map(|l| l.line), Some(4));
        // A missing key falls back to its deepest ancestor (the table's header).
        assert_eq!(locate(text, "p[1].missing").map(|l| l.line), Some(6));
    }
}
