//! VNN-LIB properties: parse a `.vnnlib` file into a normalised [`Spec`].
//!
//! In: VNN-LIB text (the VNN-COMP subset of SMT-LIB). Out: a [`Spec`] — a list of input boxes,
//! each with an unsafe DNF of linear atoms `a·Y <= b` over the outputs, every number held both
//! exactly and as an outward-rounded `f64`. The work is split in rooms: [`sexpr`] reads
//! parenthesised text with spans, `declare` checks commands and declarations, [`vnnlib`]
//! classifies atoms, `normalize` expands the asserts into boxes and DNFs, [`model`] holds the
//! result and its evaluation, [`rational`] does exact decimals and directed rounding, and
//! `print` writes a `Spec` back as VNN-LIB. Every failure is an [`Error::Parse`] with file,
//! line and column;
//! no input makes the parser panic or recurse without bound.

mod declare;
pub mod model;
mod normalize;
mod print;
pub mod rational;
pub mod sexpr;
pub mod vnnlib;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use model::{
    Atom, Conjunction, InputBox, InputRange, Region, RegionSummary, Spec, SpecSummary,
};
pub use normalize::{MAX_DISJUNCTS, MAX_LEAF_REFS};
pub use sexpr::MAX_DEPTH;

use crate::error::{Error, Location, Result};

/// A remark about a property that parsed (e.g. a strict `<` read as `<=`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub location: Location,
    pub message: String,
}

/// Reads and parses the VNN-LIB file at `path`.
pub fn load(path: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path)
}

/// Parses VNN-LIB `text`; `path` is only used in error messages. Total on any `&str`: returns
/// `Ok` or `Error::Parse`, never panics (a fuzz target may call it directly).
pub fn parse(text: &str, path: &Path) -> Result<Spec> {
    parse_with_notes(text, path).map(|(spec, _)| spec)
}

/// [`parse`], also returning the remarks a user may want to see (`beacons inspect`).
pub fn parse_with_notes(text: &str, path: &Path) -> Result<(Spec, Vec<Note>)> {
    let located = |e: sexpr::LocatedError| Error::parse(path, location(text, e.offset), e.message);
    let items = sexpr::read_all(text).map_err(located)?;
    let parsed = vnnlib::parse_commands(text, &items).map_err(located)?;
    let spec = normalize::normalize(text, &parsed).map_err(located)?;
    // One note per distinct message, at its first occurrence, with a count of the others.
    let mut notes: Vec<(Note, usize)> = Vec::new();
    for n in &parsed.notes {
        match notes.iter_mut().find(|(note, _)| note.message == n.message) {
            Some((_, count)) => *count += 1,
            None => notes.push((
                Note {
                    location: location(text, n.offset),
                    message: n.message.clone(),
                },
                1,
            )),
        }
    }
    let notes = notes
        .into_iter()
        .map(|(mut note, count)| {
            if count > 1 {
                note.message = format!("{} ({count} occurrences)", note.message);
            }
            note
        })
        .collect();
    Ok((spec, notes))
}

/// The editor position of byte `offset`; a leading byte-order mark is not a column.
pub(crate) fn location(text: &str, offset: usize) -> Location {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => Location::of_offset(rest, offset.saturating_sub(3)),
        None => Location::of_offset(text, offset),
    }
}
