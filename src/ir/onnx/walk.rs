//! The graph walk of the ONNX importer: `GraphProto` → `Graph`.
//!
//! In: the decoded graph and its opset. It reads the initializers as constants, declares the
//! graph inputs that are not initializers (symbolic dimensions pinned to 1), orders the nodes
//! topologically (refusing unknown input names, names written twice and cycles), translates
//! each node through its op family, binds the graph outputs, and finally prunes and validates
//! the IR. Out: the graph, the histogram of ONNX operator types, and notes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use super::context::{Ctx, NodeRef, Val};
use super::pb::{
    tensor_shape_proto::dimension::Value as Dim, type_proto, GraphProto, ValueInfoProto,
};
use super::tensor::{checked_product, dtype, dtype_name, read_tensor};
use super::{conv, elementwise, fold, linear, pool, shape, SUPPORTED};
use crate::error::{Error, Result};
use crate::ir::Graph;

/// Largest dimension and element count accepted for a graph input.
const MAX_DIM: usize = 1 << 31;
const MAX_INPUT_ELEMENTS: usize = 1 << 32;

/// The result of importing a graph.
pub struct Imported {
    pub graph: Graph,
    pub source_ops: BTreeMap<String, usize>,
    pub notes: Vec<String>,
}

pub fn import_graph(g: &GraphProto, opset: i64, path: &Path) -> Result<Imported> {
    let mut ctx = Ctx {
        path,
        opset,
        graph: Graph::new(),
        env: HashMap::new(),
        readers: HashMap::new(),
        graph_outputs: g.output.iter().map(|o| o.name.clone()).collect(),
        fusable: HashSet::new(),
        notes: Vec::new(),
    };
    for (i, t) in g.initializer.iter().enumerate() {
        let context = format!("initializer #{i} `{}`", t.name);
        if t.name.is_empty() {
            return Err(Error::model(path, context, "initializer without a name"));
        }
        let c = read_tensor(t).map_err(|e| Error::model(path, &context, e))?;
        if ctx
            .env
            .insert(t.name.clone(), Val::Const(Rc::new(c)))
            .is_some()
        {
            return Err(Error::model(
                path,
                context,
                "two initializers share this name",
            ));
        }
    }
    for vi in &g.input {
        if ctx.env.contains_key(&vi.name) {
            continue; // an initializer listed as an input (IR version < 4 style): a constant
        }
        let context = format!("graph input `{}`", vi.name);
        let shape = input_shape(vi).map_err(|e| Error::model(path, &context, e))?;
        let id = ctx.graph.add_input(vi.name.clone(), shape);
        ctx.env.insert(vi.name.clone(), Val::Dyn(id));
    }
    let order = topological_order(g, &ctx.env, path)?;
    // Shape reads only the static shape of its input, so it does not count as a reader (a
    // MatMul whose result is also measured by Shape may still take the following Add's bias).
    for node in g.node.iter().filter(|n| n.op_type != "Shape") {
        for name in node.input.iter().filter(|n| !n.is_empty()) {
            *ctx.readers.entry(name.clone()).or_insert(0) += 1;
        }
    }
    let mut source_ops = BTreeMap::new();
    for index in order {
        let node = NodeRef {
            node: &g.node[index],
            index,
        };
        let op = qualified_op(node.node);
        *source_ops.entry(op.clone()).or_insert(0) += 1;
        translate(&mut ctx, &node, &op)?;
    }
    if g.output.is_empty() {
        return Err(Error::model(
            path,
            "GraphProto.output",
            "the graph has no outputs",
        ));
    }
    for o in &g.output {
        let context = format!("graph output `{}`", o.name);
        match ctx.env.get(&o.name) {
            Some(Val::Dyn(v)) => ctx.graph.add_output(*v),
            Some(Val::Const(_)) => {
                return Err(Error::model(
                    path,
                    context,
                    "the output is a constant that does not depend on any input",
                ))
            }
            None => {
                return Err(Error::model(
                    path,
                    context,
                    "no node, initializer or graph input produces this output",
                ))
            }
        }
    }
    ctx.graph.prune();
    ctx.graph
        .validate()
        .map_err(|e| Error::model(path, "imported graph", e))?;
    Ok(Imported {
        graph: ctx.graph,
        source_ops,
        notes: ctx.notes,
    })
}

/// The op type, prefixed by its domain when that is not the default one.
fn qualified_op(node: &super::pb::NodeProto) -> String {
    if node.domain.is_empty() || node.domain == "ai.onnx" {
        node.op_type.clone()
    } else {
        format!("{}.{}", node.domain, node.op_type)
    }
}

/// Dispatches one node to its op family.
fn translate(ctx: &mut Ctx, node: &NodeRef, op: &str) -> Result<()> {
    match op {
        "" => Err(ctx.err(node, "the node has no op_type")),
        "Gemm" => linear::gemm(ctx, node),
        "MatMul" => linear::matmul(ctx, node),
        "Add" | "Sub" | "Mul" | "Div" => elementwise::arithmetic(ctx, node),
        "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" => elementwise::activation(ctx, node),
        "Identity" | "Dropout" => elementwise::passthrough(ctx, node),
        "Softmax" => elementwise::softmax(ctx, node),
        "Conv" => conv::conv(ctx, node),
        "BatchNormalization" => conv::batch_norm(ctx, node),
        "AveragePool" | "MaxPool" => pool::pool(ctx, node),
        "GlobalAveragePool" => pool::global_average(ctx, node),
        "Reshape" => shape::reshape(ctx, node),
        "Flatten" => shape::flatten(ctx, node),
        "Transpose" => shape::transpose(ctx, node),
        "Squeeze" | "Unsqueeze" => shape::squeeze(ctx, node),
        "Constant" => fold::constant(ctx, node),
        "Shape" => shape::shape(ctx, node),
        "Gather" => fold::gather(ctx, node),
        "Concat" => fold::concat(ctx, node),
        "Cast" => fold::cast(ctx, node),
        "ConstantOfShape" => fold::constant_of_shape(ctx, node),
        "Slice" => fold::slice(ctx, node),
        _ => Err(Error::UnsupportedOp {
            path: ctx.path.to_path_buf(),
            op_type: op.to_string(),
            node: node.label(),
            supported: SUPPORTED.to_vec(),
        }),
    }
}

/// The per-sample shape of a graph input: declared dimensions, symbolic ones pinned to 1.
fn input_shape(vi: &ValueInfoProto) -> std::result::Result<Vec<usize>, String> {
    let tensor = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        None => return Err("the input has no tensor type".into()),
    };
    if tensor.elem_type != dtype::FLOAT && tensor.elem_type != dtype::DOUBLE {
        return Err(format!(
            "element type {} is not supported; inputs must be FLOAT or DOUBLE",
            dtype_name(tensor.elem_type)
        ));
    }
    let dims = &tensor
        .shape
        .as_ref()
        .ok_or("the input has no declared shape; beacons needs a static per-sample shape")?
        .dim;
    let shape = dims
        .iter()
        .map(|d| match &d.value {
            Some(Dim::DimValue(v)) if *v >= 1 && (*v as u64) <= MAX_DIM as u64 => Ok(*v as usize),
            Some(Dim::DimValue(v)) => Err(format!("dimension {v} is not in 1..={MAX_DIM}")),
            Some(Dim::DimParam(_)) | None => Ok(1),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    match checked_product(&shape) {
        Ok(n) if n <= MAX_INPUT_ELEMENTS => Ok(shape),
        _ => Err(format!("input shape {shape:?} is too large")),
    }
}

/// Node indices in a topological order, as close to file order as possible.
fn topological_order(
    g: &GraphProto,
    known: &HashMap<String, Val>,
    path: &Path,
) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            let ctx = || NodeRef { node: n, index: i }.context();
            if known.contains_key(o) {
                return Err(Error::model(
                    path,
                    ctx(),
                    format!("output `{o}` redefines a graph input or initializer"),
                ));
            }
            if producer.insert(o, i).is_some() {
                return Err(Error::model(
                    path,
                    ctx(),
                    format!("output `{o}` is written by two nodes"),
                ));
            }
        }
    }
    let mut pending = vec![0usize; g.node.len()];
    let mut dependents = vec![Vec::new(); g.node.len()];
    for (i, n) in g.node.iter().enumerate() {
        for name in n.input.iter().filter(|s| !s.is_empty()) {
            if let Some(&p) = producer.get(name.as_str()) {
                pending[i] += 1;
                dependents[p].push(i);
            } else if !known.contains_key(name) {
                return Err(Error::model(
                    path,
                    NodeRef { node: n, index: i }.context(),
                    format!(
                        "input `{name}` is not produced by any node, initializer or graph input"
                    ),
                ));
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..g.node.len())
        .filter(|&i| pending[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(g.node.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if let Some(i) = (0..g.node.len()).find(|&i| pending[i] > 0) {
        return Err(Error::model(
            path,
            NodeRef {
                node: &g.node[i],
                index: i,
            }
            .context(),
            "the node is on a cycle of node dependencies (or reads from one)",
        ));
    }
    Ok(order)
}
