//! The network intermediate representation and the ways into it.
//!
//! `graph` and `op` define the IR; `onnx` and `nnet` import model files into it; `passes`
//! rewrite it into canonical form while preserving the function it computes.
//! `load_model` picks the importer from the file extension.

pub mod graph;
pub mod nnet;
pub mod onnx;
pub mod op;
pub mod passes;
pub mod random;

pub use graph::{Graph, Node, Value, ValueId};
pub use op::{Conv2d, Op, Pool2d};

use std::path::Path;

use crate::error::{Error, Result};

/// A loaded network together with facts about where it came from.
#[derive(Clone, Debug)]
pub struct Model {
    pub graph: Graph,
    /// "onnx" or "nnet".
    pub format: &'static str,
    /// Histogram of the operator types as written in the file (before translation).
    pub source_ops: std::collections::BTreeMap<String, usize>,
    /// Free-form facts worth showing (producer, opset, a final softmax, NNet normalisation).
    pub notes: Vec<String>,
}

/// Loads an ONNX (`.onnx`) or NNet (`.nnet`) model.
pub fn load_model(path: &Path) -> Result<Model> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("onnx") => onnx::load(path),
        Some("nnet") => nnet::load(path),
        _ => Err(Error::model(
            path,
            "file name",
            "unknown model format: expected a `.onnx` or `.nnet` file",
        )),
    }
}
