//! ONNX import (being written): protobuf → `Graph`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ir::Model;

/// The prost-generated ONNX schema types (from `proto/onnx.proto`).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// Loads an ONNX model file.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_bytes(&bytes, path)
}

/// Imports ONNX bytes; `path` is only used in error messages.
pub fn load_bytes(_bytes: &[u8], path: &Path) -> Result<Model> {
    Err(Error::model(
        path,
        "import",
        "ONNX import is not implemented yet",
    ))
}
