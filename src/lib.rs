//! beacons: prove and stress-test the safety of trained neural networks before release.
//!
//! The module map, in the order data flows:
//!
//! - [`ir`]: the network IR (`Graph`, `Op`), importers for ONNX and NNet, canonicalisation passes.
//! - [`spec`]: VNN-LIB properties: input boxes and the unsafe output region.
//! - [`eval`]: forward evaluation in f32, f64 and exact rational arithmetic.
//! - [`cli`]: the `beacons` command line.
//! - [`error`]: the error type; every input error says where it comes from.

pub mod cli;
pub mod error;
pub mod eval;
pub mod ir;
pub mod spec;
pub mod tensor;

pub use error::{Error, Result};
