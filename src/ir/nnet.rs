//! NNet import (being written).

use std::path::Path;

use crate::error::{Error, Result};
use crate::ir::Model;

/// Loads an NNet file.
pub fn load(path: &Path) -> Result<Model> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path)
}

/// Parses NNet text; `path` is only used in error messages.
pub fn parse(_text: &str, path: &Path) -> Result<Model> {
    Err(Error::model(
        path,
        "import",
        "NNet import is not implemented yet",
    ))
}
