//! ONNX import: protobuf bytes → [`Model`] (a `Graph` of beacons `Op`s plus provenance).
//!
//! In: a `.onnx` file (opsets 8 to 21 of the default domain). Out: a validated, pruned
//! `Graph` whose constants are the file's exact numbers widened to `f64`, the histogram of the
//! ONNX operators as written, and notes (producer, opset, IR version, a recognised final
//! Softmax). This file decodes the protobuf and handles the model level; `walk` walks the graph
//! in topological order and dispatches each node to its op family: `linear` (Gemm, MatMul),
//! `elementwise` (arithmetic with constants, residual Add/Sub, activations, Softmax, Identity,
//! Dropout), `conv` (Conv, BatchNormalization), `pool`, `shape` (Reshape, Flatten,
//! Squeeze, Unsqueeze, Transpose, Shape) and `fold` (the rest of the shape plumbing PyTorch
//! emits, constant-folded at import). `tensor` reads `TensorProto`s.
//!
//! Nothing is ever silently dropped: an operator outside [`SUPPORTED`] is an
//! `Error::UnsupportedOp`, and a supported operator used in a way beacons cannot represent
//! exactly (a computed weight, a 1-D convolution, a Softmax that is not the last layer) is an
//! `Error::Model` naming the node. No byte input makes the importer panic: protobuf decoding
//! errors carry prost's field path, and every index, dimension and length read from the file
//! is checked.

mod context;
mod conv;
mod elementwise;
mod fold;
mod linear;
mod pool;
mod shape;
mod tensor;
mod walk;

use std::path::Path;

use prost::Message;

use crate::error::{Error, Result};
use crate::ir::Model;

/// The prost-generated ONNX schema types (from `proto/onnx.proto`).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// The default-domain opsets this importer understands.
pub const OPSETS: std::ops::RangeInclusive<i64> = 8..=21;

/// The ONNX operators this importer translates (some only in particular forms; see the module
/// docs of each family).
pub const SUPPORTED: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// Loads an ONNX model file.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    load_bytes(&bytes, path)
}

/// Imports ONNX bytes; `path` is only used in error messages.
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
    let model = pb::ModelProto::decode(bytes).map_err(|e| decode_error(path, &e))?;
    let opset = default_opset(&model, path)?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::model(path, "ModelProto.graph", "the model has no graph"))?;
    let mut notes = Vec::new();
    let producer = format!("{} {}", model.producer_name, model.producer_version);
    let producer = producer.trim();
    notes.push(format!(
        "ONNX model from {}, opset {opset}, IR version {}",
        if producer.is_empty() {
            "an unnamed producer"
        } else {
            producer
        },
        model.ir_version
    ));
    let imported = walk::import_graph(graph, opset, path)?;
    notes.extend(imported.notes);
    Ok(Model {
        graph: imported.graph,
        format: "onnx",
        source_ops: imported.source_ops,
        notes,
    })
}

/// Turns a prost decoding error into a model error whose context is the protobuf field path
/// (outermost first), e.g. `protobuf ModelProto.graph > GraphProto.node > NodeProto.name`.
fn decode_error(path: &Path, e: &prost::DecodeError) -> Error {
    let text = e.to_string();
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let mut fields = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        let is_field = head.split_once('.').is_some_and(|(m, f)| {
            !m.is_empty()
                && !f.is_empty()
                && head
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        });
        if !is_field {
            break;
        }
        fields.push(head);
        rest = tail;
    }
    fields.reverse();
    let context = if fields.is_empty() {
        "protobuf ModelProto".to_string()
    } else {
        format!("protobuf {}", fields.join(" > "))
    };
    Error::model(
        path,
        context,
        format!("malformed ONNX protobuf: {rest} (is this an ONNX model file?)"),
    )
}

/// The version of the default (`""` / `ai.onnx`) operator set, which must be in [`OPSETS`].
fn default_opset(model: &pb::ModelProto, path: &Path) -> Result<i64> {
    let found = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);
    match found {
        None => Err(Error::model(
            path,
            "ModelProto.opset_import",
            "the model imports no default-domain opset",
        )),
        Some(v) if !OPSETS.contains(&v) => Err(Error::model(
            path,
            "ModelProto.opset_import",
            format!(
                "opset {v} is not supported; beacons reads opsets {} to {} (convert the model with onnx.version_converter)",
                OPSETS.start(),
                OPSETS.end()
            ),
        )),
        Some(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_name_the_field_path() {
        // Field 7 (graph), length 3, then a node field (1) whose length runs past the end.
        let bytes = [0x3a, 0x03, 0x0a, 0x05, 0x00];
        let err = load_bytes(&bytes, Path::new("m.onnx")).unwrap_err();
        let Error::Model { context, .. } = &err else {
            panic!("model error expected, got {err}")
        };
        assert!(
            context.starts_with("protobuf ModelProto.graph"),
            "{context}"
        );
    }

    #[test]
    fn empty_input_has_no_opset() {
        let err = load_bytes(&[], Path::new("m.onnx")).unwrap_err();
        assert!(err.to_string().contains("opset"), "{err}");
    }
}
