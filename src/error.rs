//! The one error type of beacons.
//!
//! Every error that comes from user input (a model, a property, a JSON input file, a command
//! line) carries where it came from: the file, and for text formats the line and column.
//! `Error::exit_code` maps errors onto the CLI's exit codes (2 for usage and input errors).

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a text file, 1-based like every editor shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte offset `offset` in `text` (columns count characters, not bytes).
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let mut line = 1;
        let mut line_start = 0;
        for (i, b) in text.as_bytes()[..offset].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        // Count characters, tolerating an offset that falls inside a multi-byte character.
        let column = text
            .get(line_start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - line_start)
            + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Every failure beacons reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A text input (VNN-LIB, NNet, JSON, TOML) that does not parse.
    #[error("{}:{location}: {message}", path.display())]
    Parse {
        path: PathBuf,
        location: Location,
        message: String,
    },

    /// A model file that cannot be loaded (malformed protobuf, missing tensor, bad shape).
    /// `context` says where in the model: a node name, a tensor name, a protobuf field path.
    #[error("{}: {context}: {message}", path.display())]
    Model {
        path: PathBuf,
        context: String,
        message: String,
    },

    /// An operator beacons does not support.
    #[error(
        "{}: unsupported operator `{op_type}` in node `{node}`\n  supported operators: {}",
        path.display(),
        supported.join(", ")
    )]
    UnsupportedOp {
        path: PathBuf,
        op_type: String,
        node: String,
        supported: Vec<&'static str>,
    },

    /// A file that cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Inconsistent input to a computation (wrong input length, mismatched shapes).
    #[error("{0}")]
    Invalid(String),

    /// A command line that makes no sense.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The CLI exit code for this error: every input or usage error is 2.
    pub fn exit_code(&self) -> i32 {
        2
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn model(
        path: impl AsRef<Path>,
        context: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error::Model {
            path: path.as_ref().to_path_buf(),
            context: context.into(),
            message: message.into(),
        }
    }

    pub fn parse(path: impl AsRef<Path>, location: Location, message: impl Into<String>) -> Error {
        Error::Parse {
            path: path.as_ref().to_path_buf(),
            location,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters() {
        let text = "ab\ncé d\n";
        assert_eq!(
            Location::of_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset(text, 3),
            Location { line: 2, column: 1 }
        );
        // 'é' is two bytes; the 'd' at byte 7 is the 4th character of line 2.
        assert_eq!(
            Location::of_offset(text, 7),
            Location { line: 2, column: 4 }
        );
        assert_eq!(
            Location::of_offset(text, 100),
            Location { line: 3, column: 1 }
        );
    }
}
