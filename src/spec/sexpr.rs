//! The S-expression reader under the VNN-LIB parser: text in, a list of spanned trees out.
//!
//! VNN-LIB is SMT-LIB syntax: parentheses, atoms separated by whitespace, and comments from
//! `;` to the end of the line. Every tree carries the byte span of its source text so that the
//! parser above can point at it. The reader is iterative (an explicit stack, no recursion) and
//! refuses nesting deeper than [`MAX_DEPTH`], so everything downstream may recurse safely.

/// Deepest nesting of parentheses accepted. Real properties nest a handful of levels.
pub const MAX_DEPTH: usize = 1000;

/// A half-open byte range `start..end` of the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// One S-expression: an atom (a symbol or a number, as written) or a parenthesised list.
#[derive(Clone, Debug, PartialEq)]
pub struct Sexp<'a> {
    pub kind: SexpKind<'a>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SexpKind<'a> {
    Atom(&'a str),
    List(Vec<Sexp<'a>>),
}

impl<'a> Sexp<'a> {
    pub fn atom(&self) -> Option<&'a str> {
        match self.kind {
            SexpKind::Atom(s) => Some(s),
            SexpKind::List(_) => None,
        }
    }

    /// The head symbol of a list, e.g. `assert` for `(assert ...)`.
    pub fn head(&self) -> Option<&'a str> {
        match &self.kind {
            SexpKind::List(items) => items.first().and_then(|h| h.atom()),
            SexpKind::Atom(_) => None,
        }
    }

    /// A short description for error messages: `` `(assert` `` or `` `X_0` ``.
    pub fn describe(&self) -> String {
        match &self.kind {
            SexpKind::Atom(s) => format!("`{}`", shorten(s)),
            SexpKind::List(_) => match self.head() {
                Some(h) => format!("`({}`", shorten(h)),
                None => "`(`".to_string(),
            },
        }
    }
}

/// Long atoms (a fuzzer's favourite) are cut in messages.
pub fn shorten(s: &str) -> String {
    const LIMIT: usize = 40;
    if s.chars().count() <= LIMIT {
        s.to_string()
    } else {
        let cut: String = s.chars().take(LIMIT).collect();
        format!("{cut}…")
    }
}

/// An error at a byte offset of the source text (turned into `Error::Parse` by the caller).
#[derive(Debug, PartialEq)]
pub struct LocatedError {
    pub offset: usize,
    pub message: String,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b'(' || b == b')' || b == b';'
}

/// Reads every top-level S-expression of `text`.
pub fn read_all(text: &str) -> Result<Vec<Sexp<'_>>, LocatedError> {
    let bytes = text.as_bytes();
    // Open lists: (offset of `(`, items so far). The bottom entry collects top-level items.
    let mut stack: Vec<(usize, Vec<Sexp<'_>>)> = vec![(0, Vec::new())];
    // A UTF-8 byte-order mark, as some editors write, is skipped.
    let mut i = if text.starts_with('\u{feff}') { 3 } else { 0 };
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b';' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if b == b'(' {
            if stack.len() > MAX_DEPTH {
                return Err(LocatedError {
                    offset: i,
                    message: format!("parentheses nested deeper than {MAX_DEPTH} levels"),
                });
            }
            stack.push((i, Vec::new()));
            i += 1;
        } else if b == b')' {
            if stack.len() == 1 {
                return Err(LocatedError {
                    offset: i,
                    message: "unexpected `)` with no matching `(`".to_string(),
                });
            }
            let (start, items) = stack.pop().unwrap_or_default();
            let list = Sexp {
                kind: SexpKind::List(items),
                span: Span { start, end: i + 1 },
            };
            if let Some((_, parent)) = stack.last_mut() {
                parent.push(list);
            }
            i += 1;
        } else {
            let start = i;
            while i < bytes.len() && !is_delimiter(bytes[i]) {
                i += 1;
            }
            // Delimiters are ASCII, so `start..i` lies on character boundaries.
            let atom = Sexp {
                kind: SexpKind::Atom(&text[start..i]),
                span: Span { start, end: i },
            };
            if let Some((_, top)) = stack.last_mut() {
                top.push(atom);
            }
        }
    }
    if stack.len() > 1 {
        let (start, items) = stack.pop().unwrap_or_default();
        let opened = Sexp {
            kind: SexpKind::List(items),
            span: Span {
                start,
                end: text.len(),
            },
        };
        let at = super::location(text, start);
        return Err(LocatedError {
            offset: text.len(),
            message: format!(
                "expected `)` to close {} opened at {at}, found end of file",
                opened.describe()
            ),
        });
    }
    Ok(stack.pop().map(|(_, items)| items).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_atoms_and_spans() {
        let text = "; comment\n(assert (<= X_0 0.5)) ; trailing\n(x)";
        let items = read_all(text).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].head(), Some("assert"));
        assert_eq!(
            &text[items[0].span.start..items[0].span.end],
            "(assert (<= X_0 0.5))"
        );
        let SexpKind::List(inner) = &items[0].kind else {
            panic!("not a list")
        };
        assert_eq!(inner[1].describe(), "`(<=`");
        assert_eq!(items[1].head(), Some("x"));
    }

    #[test]
    fn unclosed_list_names_its_opener() {
        let err = read_all("(declare-const X_0 Real)\n\n(assert (<= X_0 1)").unwrap_err();
        assert_eq!(
            err.message,
            "expected `)` to close `(assert` opened at 3:1, found end of file"
        );
        assert_eq!(err.offset, 44);
    }

    #[test]
    fn stray_close_paren_is_reported() {
        let err = read_all("(a))").unwrap_err();
        assert_eq!(err.offset, 3);
        assert_eq!(err.message, "unexpected `)` with no matching `(`");
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let ok = format!("{}{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(read_all(&ok).is_ok());
        let deep = "(".repeat(100_000);
        let err = read_all(&deep).unwrap_err();
        assert_eq!(err.offset, MAX_DEPTH);
        assert!(err.message.contains("deeper than 1000"));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let items = read_all("\u{feff}(a)").unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].span, Span { start: 3, end: 6 });
    }

    #[test]
    fn non_ascii_atoms_are_kept_whole() {
        let items = read_all("(é ∀x)").unwrap();
        let SexpKind::List(inner) = &items[0].kind else {
            panic!("not a list")
        };
        assert_eq!(inner[1].atom(), Some("∀x"));
    }
}
