//! The state of one ONNX import: what every op family's translator reads and writes.
//!
//! [`Ctx`] maps ONNX value names to what they are at import time ([`Val`]: a computed graph
//! value or a constant), owns the `Graph` being built, and offers the checked accessors the
//! translators use: node inputs by position (computed or constant), attributes by name with
//! type checks and opset-independent defaults, and `push` to append an IR node. Every error
//! it produces names the node it happened in.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use super::pb::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use super::tensor::{checked_product, read_tensor, Const};
use crate::error::{Error, Result};
use crate::ir::{Graph, Op, ValueId};

/// Largest number of elements per sample any computed value may have.
pub const MAX_VALUE_ELEMENTS: usize = 1 << 36;

/// What an ONNX value name stands for during import.
#[derive(Clone, Debug)]
pub enum Val {
    /// A value computed by the graph.
    Dyn(ValueId),
    /// A constant: an initializer, a `Constant` node, or folded shape plumbing.
    Const(Rc<Const>),
}

/// The import state.
pub struct Ctx<'a> {
    pub path: &'a Path,
    /// The default-domain opset version the model imports.
    pub opset: i64,
    pub graph: Graph,
    pub env: HashMap<String, Val>,
    /// How many nodes read each ONNX value name.
    pub readers: HashMap<String, usize>,
    /// The ONNX names of the graph outputs.
    pub graph_outputs: HashSet<String>,
    /// `Linear` nodes (by output value) made from a bias-less MatMul, which a following
    /// `Add` of a constant bias may complete.
    pub fusable: HashSet<ValueId>,
    pub notes: Vec<String>,
}

/// A node being translated, with its position for messages.
pub struct NodeRef<'a> {
    pub node: &'a NodeProto,
    pub index: usize,
}

impl NodeRef<'_> {
    /// How the node is named in messages: its name, or its position and first output.
    pub fn label(&self) -> String {
        if self.node.name.is_empty() {
            let out = self.node.output.first().map(String::as_str).unwrap_or("");
            format!("#{} (output `{out}`)", self.index)
        } else {
            self.node.name.clone()
        }
    }

    /// The error context naming this node.
    pub fn context(&self) -> String {
        format!("node `{}` ({})", self.label(), self.node.op_type)
    }

    /// The name of output `i`, or "" if there is none.
    pub fn output(&self, i: usize) -> &str {
        self.node.output.get(i).map(String::as_str).unwrap_or("")
    }

    /// A name for an intermediate value created while translating this node.
    pub fn temp(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.output(0))
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }
}

impl Ctx<'_> {
    /// A model error located at `node`.
    pub fn err(&self, node: &NodeRef, message: impl Into<String>) -> Error {
        Error::model(self.path, node.context(), message)
    }

    /// Input `i` of the node, or `None` when absent or the empty name (an omitted optional).
    pub fn input(&self, node: &NodeRef, i: usize) -> Result<Option<Val>> {
        match node.node.input.get(i) {
            None => Ok(None),
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => match self.env.get(name) {
                Some(v) => Ok(Some(v.clone())),
                None => Err(self.err(
                    node,
                    format!(
                        "input `{name}` is not produced by any node, initializer or graph input"
                    ),
                )),
            },
        }
    }

    /// Input `i`, which must be present.
    pub fn required(&self, node: &NodeRef, i: usize) -> Result<Val> {
        self.input(node, i)?
            .ok_or_else(|| self.err(node, format!("missing required input #{i}")))
    }

    /// Input `i`, which must be a computed value.
    pub fn dynamic(&self, node: &NodeRef, i: usize) -> Result<ValueId> {
        match self.required(node, i)? {
            Val::Dyn(v) => Ok(v),
            Val::Const(_) => Err(self.err(
                node,
                format!("input #{i} is a constant where beacons expects a computed tensor"),
            )),
        }
    }

    /// Input `i`, if present, which must be a constant.
    pub fn constant(&self, node: &NodeRef, i: usize) -> Result<Option<Rc<Const>>> {
        match self.input(node, i)? {
            None => Ok(None),
            Some(Val::Const(c)) => Ok(Some(c)),
            Some(Val::Dyn(_)) => Err(self.err(
                node,
                format!(
                    "input #{i} (`{}`) must be a constant (an initializer or computable at import)",
                    node.node.input[i]
                ),
            )),
        }
    }

    /// Input `i`, which must be present and constant.
    pub fn required_constant(&self, node: &NodeRef, i: usize) -> Result<Rc<Const>> {
        self.constant(node, i)?
            .ok_or_else(|| self.err(node, format!("missing required input #{i}")))
    }

    /// Appends an IR node; its output is named `out`.
    pub fn push(
        &mut self,
        node: &NodeRef,
        op: Op,
        inputs: Vec<ValueId>,
        out: &str,
    ) -> Result<ValueId> {
        let label = node.label();
        let v = self
            .graph
            .add_node(label, op, inputs, out)
            .map_err(|e| Error::model(self.path, node.context(), e))?;
        // Keep every later shape product far from overflow, and refuse empty tensors.
        let shape = &self.graph.value(v).shape;
        match checked_product(shape) {
            Ok(n) if n > 0 && n <= MAX_VALUE_ELEMENTS => Ok(v),
            _ => Err(self.err(
                node,
                format!("the result has shape {shape:?}, which is empty or too large"),
            )),
        }
    }

    /// Binds output `i` of the node to `v`.
    pub fn set(&mut self, node: &NodeRef, i: usize, v: Val) {
        let name = node.output(i).to_string();
        if !name.is_empty() {
            self.env.insert(name, v);
        }
    }

    /// Binds output 0 to a constant.
    pub fn set_const(&mut self, node: &NodeRef, c: Const) {
        self.set(node, 0, Val::Const(Rc::new(c)));
    }

    /// The shape of a computed value or constant.
    pub fn shape_of(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Dyn(id) => self.graph.value(*id).shape.clone(),
            Val::Const(c) => c.shape().to_vec(),
        }
    }

    /// Errors unless only the first output of the node is used.
    pub fn single_output(&self, node: &NodeRef) -> Result<()> {
        if node.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(self.err(
                node,
                format!(
                    "only the first output is supported, but the node declares {} outputs",
                    node.node.output.len()
                ),
            ));
        }
        Ok(())
    }

    fn typed<'n>(
        &self,
        node: &'n NodeRef,
        name: &str,
        ty: AttributeType,
    ) -> Result<Option<&'n AttributeProto>> {
        match node.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == ty as i32 || a.r#type == AttributeType::Undefined as i32 => {
                Ok(Some(a))
            }
            Some(a) => Err(self.err(
                node,
                format!(
                    "attribute `{name}` has type {:?}, expected {:?}",
                    AttributeType::try_from(a.r#type).unwrap_or(AttributeType::Undefined),
                    ty
                ),
            )),
        }
    }

    /// An integer attribute.
    pub fn int_attr(&self, node: &NodeRef, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(node, name, AttributeType::Int)?.map(|a| a.i))
    }

    pub fn int_or(&self, node: &NodeRef, name: &str, default: i64) -> Result<i64> {
        Ok(self.int_attr(node, name)?.unwrap_or(default))
    }

    /// A float attribute, widened exactly from `f32`.
    pub fn float_or(&self, node: &NodeRef, name: &str, default: f32) -> Result<f64> {
        Ok(self
            .typed(node, name, AttributeType::Float)?
            .map_or(default, |a| a.f) as f64)
    }

    pub fn ints_attr(&self, node: &NodeRef, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .typed(node, name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub fn floats_attr(&self, node: &NodeRef, name: &str) -> Result<Option<Vec<f64>>> {
        Ok(self
            .typed(node, name, AttributeType::Floats)?
            .map(|a| a.floats.iter().map(|&v| v as f64).collect()))
    }

    pub fn string_attr(&self, node: &NodeRef, name: &str) -> Result<Option<String>> {
        Ok(self
            .typed(node, name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    pub fn tensor_attr(&self, node: &NodeRef, name: &str) -> Result<Option<Const>> {
        match self.typed(node, name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                let t = a
                    .t
                    .as_ref()
                    .ok_or_else(|| self.err(node, format!("attribute `{name}` has no tensor")))?;
                read_tensor(t)
                    .map(Some)
                    .map_err(|e| self.err(node, format!("attribute `{name}`: {e}")))
            }
        }
    }

    /// Resolves a possibly negative axis against `rank`.
    pub fn axis(&self, node: &NodeRef, axis: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        if axis < -r || axis >= r {
            return Err(self.err(node, format!("axis {axis} is out of range for rank {rank}")));
        }
        Ok(if axis < 0 { axis + r } else { axis } as usize)
    }

    /// Whether the ONNX value `name` is read exactly once by a node and is not a graph output.
    pub fn read_once(&self, name: &str) -> bool {
        self.readers.get(name).copied() == Some(1) && !self.graph_outputs.contains(name)
    }
}

/// A non-negative attribute or shape number bounded by `max`, as `usize`.
pub fn bounded(v: i64, max: usize, what: &str) -> std::result::Result<usize, String> {
    match usize::try_from(v) {
        Ok(u) if u <= max => Ok(u),
        _ => Err(format!("{what} {v} is outside 0..={max}")),
    }
}
