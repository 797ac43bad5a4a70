//! Forward evaluation of a [`Graph`]: batched `f32` and `f64`, and exact rationals.
//!
//! In: a graph and a matrix whose rows are samples and whose columns are all graph inputs,
//! each flattened row-major, concatenated in `graph.inputs` order. Out: a matrix with one
//! row per sample and all graph outputs flattened and concatenated in `graph.outputs` order.
//! Internally every value is an `ndarray` tensor of shape `[batch] ++ per-sample shape`.
//!
//! The float evaluators are one generic implementation over [`Scalar`] (`f32`, `f64`);
//! constants stored as `f64` are rounded to `f32` for `forward_f32`. Large batches are split
//! into row chunks evaluated in parallel with rayon. [`forward_all`] keeps every
//! intermediate value (bound engines and attacks want activations).
//! The exact evaluator in [`exact`] is the ground truth for soundness tests.
//!
//! Operator semantics follow ONNX; the one convention worth stating is `AveragePool` with
//! padding: with `count_include_pad` the divisor counts window cells inside the padded
//! extent (input plus pads, like PyTorch and onnxruntime), otherwise only cells inside the
//! input.

mod dense;
pub mod exact;
mod ops;
mod window;

#[cfg(test)]
mod tests;

use ndarray::{Array, Array2, ArrayD, ArrayView2, Axis, CowArray, Dimension, IxDyn};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ir::{Graph, Node, Op};

/// The float types the evaluator runs in.
pub trait Scalar:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::ops::AddAssign
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// `x` rounded to this type (to nearest).
    fn from_f64(x: f64) -> Self;
    /// A stored `f64` constant as an array of this type (borrowed when no rounding is needed).
    fn cast<D: Dimension>(a: &Array<f64, D>) -> CowArray<'_, Self, D>;
    /// A dedicated dense-layer kernel for this type (`x` row-major `rows × in`, see
    /// [`dense`]; with `relu`, the following ReLU fused), or `None` to use the general matrix
    /// product.
    fn linear_kernel(
        _x: &[Self],
        _rows: usize,
        _w: &ndarray::Array2<f64>,
        _b: Option<&ndarray::Array1<f64>>,
        _relu: bool,
    ) -> Option<Vec<Self>> {
        None
    }
}

impl Scalar for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn cast<D: Dimension>(a: &Array<f64, D>) -> CowArray<'_, f64, D> {
        CowArray::from(a.view())
    }
}

impl Scalar for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn cast<D: Dimension>(a: &Array<f64, D>) -> CowArray<'_, f32, D> {
        CowArray::from(a.mapv(|v| v as f32))
    }
    fn linear_kernel(
        x: &[f32],
        rows: usize,
        w: &ndarray::Array2<f64>,
        b: Option<&ndarray::Array1<f64>>,
        relu: bool,
    ) -> Option<Vec<f32>> {
        Some(dense::linear_f32(x, rows, w, b, relu))
    }
}

/// Evaluates `graph` in `f64` on a batch (rows are samples; see the module docs for columns).
pub fn forward_f64(graph: &Graph, inputs: ArrayView2<f64>) -> Result<Array2<f64>> {
    forward(graph, inputs)
}

/// Evaluates `graph` in `f32` on a batch; the stored `f64` constants are rounded to `f32`.
pub fn forward_f32(graph: &Graph, inputs: ArrayView2<f32>) -> Result<Array2<f32>> {
    forward(graph, inputs)
}

/// Every value of the graph in `f64`, indexed by `ValueId`, each of shape
/// `[batch] ++ per-sample shape`.
pub fn forward_all_f64(graph: &Graph, inputs: ArrayView2<f64>) -> Result<Vec<ArrayD<f64>>> {
    forward_all(graph, inputs)
}

/// Generic batched evaluation returning the concatenated, flattened graph outputs.
pub fn forward<T: Scalar>(graph: &Graph, inputs: ArrayView2<T>) -> Result<Array2<T>> {
    check_columns(graph, inputs.ncols())?;
    let rows = inputs.nrows();
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 || rows < 64 {
        return forward_chunk(graph, inputs);
    }
    // Enough chunks to keep every thread busy, small enough to bound memory per chunk.
    let chunk = rows.div_ceil(2 * threads).clamp(16, 1024);
    let parts: Vec<Array2<T>> = inputs
        .axis_chunks_iter(Axis(0), chunk)
        .into_par_iter()
        .map(|part| forward_chunk(graph, part))
        .collect::<Result<_>>()?;
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Invalid(format!("eval: {e}")))
}

/// Generic batched evaluation returning every value of the graph (see [`forward_all_f64`]).
pub fn forward_all<T: Scalar>(graph: &Graph, inputs: ArrayView2<T>) -> Result<Vec<ArrayD<T>>> {
    check_columns(graph, inputs.ncols())?;
    let values = run(graph, inputs, true)?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| {
                Error::Invalid(format!(
                    "value #{i} (`{}`) is neither an input nor computed by any node",
                    graph.values[i].name
                ))
            })
        })
        .collect()
}

fn check_columns(graph: &Graph, cols: usize) -> Result<()> {
    let expected = graph.input_size();
    if cols != expected {
        let shapes: Vec<String> = graph
            .inputs
            .iter()
            .map(|&v| format!("`{}` {:?}", graph.value(v).name, graph.value(v).shape))
            .collect();
        return Err(Error::Invalid(format!(
            "the network takes {expected} input values per sample ({}), but {cols} columns were given",
            shapes.join(", ")
        )));
    }
    Ok(())
}

fn forward_chunk<T: Scalar>(graph: &Graph, inputs: ArrayView2<T>) -> Result<Array2<T>> {
    let rows = inputs.nrows();
    let values = run(graph, inputs, false)?;
    let mut out = Array2::zeros((rows, graph.output_size()));
    let mut col = 0;
    for &o in &graph.outputs {
        let v = values[o.0]
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("output #{} is never computed", o.0)))?;
        let size = graph.value(o).size();
        let flat = v
            .as_standard_layout()
            .into_shape_with_order((rows, size))
            .map_err(|e| Error::Invalid(format!("eval output: {e}")))?
            .to_owned();
        out.slice_mut(ndarray::s![.., col..col + size])
            .assign(&flat);
        col += size;
    }
    Ok(out)
}

/// Runs the nodes in order. Without `keep_all`, values are dropped after their last reader.
fn run<T: Scalar>(
    graph: &Graph,
    inputs: ArrayView2<T>,
    keep_all: bool,
) -> Result<Vec<Option<ArrayD<T>>>> {
    let rows = inputs.nrows();
    let mut values: Vec<Option<ArrayD<T>>> = vec![None; graph.values.len()];
    let mut col = 0;
    for &v in &graph.inputs {
        let value = graph.value(v);
        let size = value.size();
        let mut shape = vec![rows];
        shape.extend_from_slice(&value.shape);
        let part = inputs
            .slice(ndarray::s![.., col..col + size])
            .to_owned()
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| Error::Invalid(format!("eval input `{}`: {e}", value.name)))?;
        values[v.0] = Some(part);
        col += size;
    }
    let mut remaining = graph.use_counts();
    let mut fused = false;
    for (idx, node) in graph.nodes.iter().enumerate() {
        if std::mem::take(&mut fused) {
            continue; // a ReLU already applied by the layer before it
        }
        // A Linear layer whose one reader is the ReLU right after it: both in one kernel
        // pass where the type has a dense kernel (the same arithmetic as the two nodes).
        if let (false, Op::Linear { weight, bias }, Some(next)) =
            (keep_all, &node.op, graph.nodes.get(idx + 1))
        {
            let out = node.output.0;
            if matches!(next.op, Op::Relu) && next.inputs == [node.output] && remaining[out] == 1 {
                let src = node.inputs[0].0;
                let x = values[src].as_ref().ok_or_else(|| {
                    Error::Invalid(format!("node `{}` reads a value not computed", node.name))
                })?;
                if let Some(y) = ops::linear_fused_relu(x, weight, bias.as_ref()) {
                    let y = y.map_err(|e| {
                        Error::Invalid(format!("node `{}` ({}): {e}", node.name, node.op.kind()))
                    })?;
                    values[next.output.0] = Some(y);
                    remaining[out] = 0;
                    remaining[src] = remaining[src].saturating_sub(1);
                    if remaining[src] == 0 {
                        values[src] = None;
                    }
                    fused = true;
                    continue;
                }
            }
        }
        // An activation that is the last reader of its input works on it in place (one
        // allocation and one pass fewer per layer; the same arithmetic).
        let src = node.inputs.first().map_or(usize::MAX, |v| v.0);
        if !keep_all && node.inputs.len() == 1 && remaining[src] == 1 {
            if let Some(mut x) = values[src].take() {
                if activation_in_place(&node.op, &mut x) {
                    remaining[src] = 0;
                    values[node.output.0] = Some(x);
                    continue;
                }
                values[src] = Some(x);
            }
        }
        let args: Vec<&ArrayD<T>> = node
            .inputs
            .iter()
            .map(|v| {
                values[v.0].as_ref().ok_or_else(|| {
                    Error::Invalid(format!(
                        "node `{}` reads value #{} before it is computed",
                        node.name, v.0
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let out = eval_node(node, &args).map_err(|e| {
            Error::Invalid(format!("node `{}` ({}): {e}", node.name, node.op.kind()))
        })?;
        let expected = &graph.value(node.output).shape;
        if out.shape()[1..] != expected[..] {
            return Err(Error::Invalid(format!(
                "node `{}` ({}) produced shape {:?}, the graph says {expected:?}",
                node.name,
                node.op.kind(),
                &out.shape()[1..]
            )));
        }
        values[node.output.0] = Some(out);
        if !keep_all {
            for v in &node.inputs {
                remaining[v.0] = remaining[v.0].saturating_sub(1);
                if remaining[v.0] == 0 {
                    values[v.0] = None;
                }
            }
        }
    }
    Ok(values)
}

/// Applies an elementwise activation to `x` in place; `false` (and `x` untouched) for any
/// other operator. The one definition of these activations' arithmetic.
fn activation_in_place<T: Scalar>(op: &Op, x: &mut ArrayD<T>) -> bool {
    match op {
        Op::Relu => x.mapv_inplace(|v| if v > T::zero() { v } else { T::zero() }),
        Op::LeakyRelu { alpha } => {
            let a = T::from_f64(*alpha);
            x.mapv_inplace(|v| if v >= T::zero() { v } else { a * v })
        }
        Op::Sigmoid => x.mapv_inplace(|v| T::one() / (T::one() + (-v).exp())),
        Op::Tanh => x.mapv_inplace(|v| v.tanh()),
        _ => return false,
    }
    true
}

/// One node on batched arguments (`args[i]` has shape `[batch] ++ per-sample shape`).
pub(crate) fn eval_node<T: Scalar>(
    node: &Node,
    args: &[&ArrayD<T>],
) -> std::result::Result<ArrayD<T>, String> {
    let x = args.first().ok_or("missing input")?;
    Ok(match &node.op {
        Op::Linear { weight, bias } => ops::linear(x, weight, bias.as_ref())?,
        Op::Conv(c) => window::conv(x, c)?,
        Op::AddConst(c) => ops::with_const(x, c, |a, b| a + b)?,
        Op::MulConst(c) => ops::with_const(x, c, |a, b| a * b)?,
        Op::DivConst(c) => ops::with_const(x, c, |a, b| a / b)?,
        Op::Add => ops::binary(x, args.get(1).ok_or("missing 2nd input")?, |a, b| a + b)?,
        Op::Sub => ops::binary(x, args.get(1).ok_or("missing 2nd input")?, |a, b| a - b)?,
        Op::BatchNorm {
            scale,
            bias,
            mean,
            var,
            epsilon,
        } => ops::batch_norm(x, scale, bias, mean, var, *epsilon)?,
        Op::Relu | Op::LeakyRelu { .. } | Op::Sigmoid | Op::Tanh => {
            let mut y = (*x).clone();
            activation_in_place(&node.op, &mut y);
            y
        }
        Op::Reshape { shape } => ops::reshape(x, shape)?,
        Op::Transpose { perm } => ops::transpose(x, perm)?,
        Op::AveragePool(p) => window::pool(x, p, false)?,
        Op::MaxPool(p) => window::pool(x, p, true)?,
        Op::GlobalAveragePool => window::global_average_pool(x)?,
        Op::Softmax { axis } => ops::softmax(x, *axis)?,
    })
}
