//! Reverse-mode input gradients through the IR, for the attacks and the split heuristic.
//!
//! In: a graph with one input and one output made of the ops a gradient is written for
//! (Linear, AddConst/MulConst/DivConst, Add/Sub, Relu/LeakyRelu, Sigmoid/Tanh,
//! Reshape/Transpose), and a batch of inputs (rows are samples). [`Tape::forward`] keeps every
//! intermediate value (`eval::forward_all_f64`); [`Tape::backward`] takes a cotangent row per
//! sample on the flattened output and returns `∂(cot · N(x))/∂x` per sample. Any other op is an
//! error from [`check_supported`], before any work. Gradients are plain `f64`: they steer a
//! search and never enter a soundness argument.

use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn};

use crate::bounds::Interval;
use crate::error::{Error, Result};
use crate::eval::forward_all_f64;
use crate::ir::{Graph, Op};
use crate::tensor::pad_rank;

/// Whether every op of `graph` has a gradient here and the graph has one input and one output.
pub fn check_supported(graph: &Graph) -> Result<()> {
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(Error::Invalid(format!(
            "input gradients need one model input and one output; this model has {} and {}",
            graph.inputs.len(),
            graph.outputs.len()
        )));
    }
    for node in &graph.nodes {
        let ok = matches!(
            node.op,
            Op::Linear { .. }
                | Op::AddConst(_)
                | Op::MulConst(_)
                | Op::DivConst(_)
                | Op::Add
                | Op::Sub
                | Op::Relu
                | Op::LeakyRelu { .. }
                | Op::Sigmoid
                | Op::Tanh
                | Op::Reshape { .. }
                | Op::Transpose { .. }
        );
        if !ok {
            return Err(Error::Invalid(format!(
                "no input gradient for operator {} (node `{}`)",
                node.op.kind(),
                node.name
            )));
        }
    }
    Ok(())
}

/// The forward values of a batch, ready for any number of backward passes.
pub struct Tape<'g> {
    graph: &'g Graph,
    values: Vec<ArrayD<f64>>,
    rows: usize,
    /// Relaxed mode ([`linear_coefficients`]): the enclosure of every value.
    relaxed: Option<&'g [Option<Interval>]>,
}

/// The input coefficients of CROWN's linear lower bound of `cot · N(x)` (a single row),
/// recomputed in plain `f64` from the intermediate enclosures `bounds` (indexed by value, as
/// `engine::crown::State::bounds`): a ReLU with `l < 0 < u` passes a non-negative coefficient
/// through the adaptive lower line (slope 1 if `u ≥ −l`, else 0) and a negative one through the
/// upper line (slope `u / (u − l)`); smooth activations use their slope at the interval's
/// midpoint. A heuristic for choosing splits (`|A_i| · width_i`), never a bound.
pub fn linear_coefficients(
    graph: &Graph,
    bounds: &[Option<Interval>],
    cot: &[f64],
) -> Result<Vec<f64>> {
    check_supported(graph)?;
    let tape = Tape {
        graph,
        values: Vec::new(),
        rows: 1,
        relaxed: Some(bounds),
    };
    let cot = ArrayView2::from_shape((1, cot.len()), cot)
        .map_err(|e| Error::Invalid(format!("coefficient row: {e}")))?;
    Ok(tape.backward(cot)?.into_raw_vec_and_offset().0)
}

/// The relaxed slope of an activation at one element, for a coefficient of sign `positive`.
fn relaxed_slope(op: &Op, l: f64, u: f64, positive: bool) -> f64 {
    match op {
        Op::Relu | Op::LeakyRelu { .. } => {
            let alpha = match op {
                Op::LeakyRelu { alpha } => *alpha,
                _ => 0.0,
            };
            if l >= 0.0 {
                1.0
            } else if u <= 0.0 {
                alpha
            } else if positive {
                if u >= -l {
                    1.0
                } else {
                    alpha
                }
            } else {
                (u - alpha * l) / (u - l)
            }
        }
        Op::Sigmoid => {
            let s = 1.0 / (1.0 + (-(0.5 * (l + u))).exp());
            s * (1.0 - s)
        }
        Op::Tanh => {
            let t = (0.5 * (l + u)).tanh();
            1.0 - t * t
        }
        _ => 1.0,
    }
}

impl<'g> Tape<'g> {
    /// Evaluates `graph` on the rows of `x`, keeping every value.
    pub fn forward(graph: &'g Graph, x: ArrayView2<f64>) -> Result<Tape<'g>> {
        check_supported(graph)?;
        let values = forward_all_f64(graph, x)?;
        Ok(Tape {
            graph,
            values,
            rows: x.nrows(),
            relaxed: None,
        })
    }

    /// The flattened output, one row per sample.
    pub fn outputs(&self) -> Result<Array2<f64>> {
        let out = self
            .values
            .get(self.graph.outputs[0].0)
            .ok_or_else(|| Error::Invalid("a relaxed tape has no values".into()))?;
        flat(out, self.rows)
    }

    /// `∂(cot_b · N(x_b))/∂x_b` for every sample `b`; `cot` has one row per sample and one
    /// column per output scalar.
    pub fn backward(&self, cot: ArrayView2<f64>) -> Result<Array2<f64>> {
        let g = self.graph;
        let out = g.outputs[0];
        if cot.nrows() != self.rows || cot.ncols() != g.value(out).size() {
            return Err(Error::Invalid(format!(
                "cotangent of shape {:?}, expected [{}, {}]",
                cot.shape(),
                self.rows,
                g.value(out).size()
            )));
        }
        let mut grads: Vec<Option<ArrayD<f64>>> = vec![None; g.values.len()];
        grads[out.0] = Some(batched(
            cot.to_owned().into_dyn(),
            self.rows,
            &g.value(out).shape,
        )?);
        for node in g.nodes.iter().rev() {
            let Some(dy) = grads[node.output.0].take() else {
                continue;
            };
            let ins: Vec<(usize, ArrayD<f64>)> = self
                .node_backward(node, &dy)
                .map_err(|e| Error::Invalid(format!("gradient of node `{}`: {e}", node.name)))?;
            for (v, d) in ins {
                match &mut grads[v] {
                    Some(acc) => *acc += &d,
                    slot @ None => *slot = Some(d),
                }
            }
        }
        let x = g.inputs[0];
        match grads[x.0].take() {
            Some(d) => flat(&d, self.rows),
            // The output does not depend on the input.
            None => Ok(Array2::zeros((self.rows, g.value(x).size()))),
        }
    }

    /// The cotangents of a node's inputs given the cotangent `dy` of its output.
    fn node_backward(
        &self,
        node: &crate::ir::Node,
        dy: &ArrayD<f64>,
    ) -> std::result::Result<Vec<(usize, ArrayD<f64>)>, String> {
        let g = self.graph;
        let rows = self.rows;
        let in_shape = |k: usize| -> Vec<usize> {
            let mut s = vec![rows];
            s.extend_from_slice(&g.value(node.inputs[k]).shape);
            s
        };
        let x0 = node.inputs[0].0;
        let one = |d: ArrayD<f64>| vec![(x0, d)];
        if let (Some(bounds), true) = (self.relaxed, node.op.is_activation()) {
            let b = bounds[x0]
                .as_ref()
                .ok_or_else(|| format!("no enclosure of the input of `{}`", node.name))?;
            let d = dy.as_standard_layout();
            if d.len() != b.len() {
                return Err(format!(
                    "enclosure of {} values for a gradient of {}",
                    b.len(),
                    d.len()
                ));
            }
            let dx: Vec<f64> = d
                .iter()
                .zip(b.lo.iter().zip(&b.hi))
                .map(|(&v, (&l, &u))| v * relaxed_slope(&node.op, l, u, v >= 0.0))
                .collect();
            return Ok(one(
                ArrayD::from_shape_vec(d.shape(), dx).map_err(|e| e.to_string())?
            ));
        }
        Ok(match &node.op {
            Op::Linear { weight, .. } => {
                let (out, inp) = weight.dim();
                let n = dy.len() / out.max(1);
                let d2 = dy
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((n, out))
                    .map_err(|e| e.to_string())?;
                let dx = d2.dot(weight);
                let mut s = in_shape(0);
                if let Some(last) = s.last_mut() {
                    *last = inp;
                }
                one(dx
                    .into_shape_with_order(IxDyn(&s))
                    .map_err(|e| e.to_string())?)
            }
            Op::AddConst(_) => one(unbroadcast(dy, &in_shape(0))?),
            Op::MulConst(c) => one(unbroadcast(
                &(dy * &const_view(c, dy.ndim())?),
                &in_shape(0),
            )?),
            Op::DivConst(c) => one(unbroadcast(
                &(dy / &const_view(c, dy.ndim())?),
                &in_shape(0),
            )?),
            Op::Add | Op::Sub => {
                let a = unbroadcast(dy, &in_shape(0))?;
                let mut b = unbroadcast(dy, &in_shape(1))?;
                if matches!(node.op, Op::Sub) {
                    b.mapv_inplace(|v| -v);
                }
                vec![(x0, a), (node.inputs[1].0, b)]
            }
            Op::Relu => {
                let x = &self.values[x0];
                one(ndarray::Zip::from(dy)
                    .and(x)
                    .map_collect(|&d, &v| if v > 0.0 { d } else { 0.0 }))
            }
            Op::LeakyRelu { alpha } => {
                let x = &self.values[x0];
                one(ndarray::Zip::from(dy)
                    .and(x)
                    .map_collect(|&d, &v| if v >= 0.0 { d } else { alpha * d }))
            }
            Op::Sigmoid => {
                let y = &self.values[node.output.0];
                one(ndarray::Zip::from(dy)
                    .and(y)
                    .map_collect(|&d, &s| d * s * (1.0 - s)))
            }
            Op::Tanh => {
                let y = &self.values[node.output.0];
                one(ndarray::Zip::from(dy)
                    .and(y)
                    .map_collect(|&d, &t| d * (1.0 - t * t)))
            }
            Op::Reshape { .. } => one(dy
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(&in_shape(0)))
                .map_err(|e| e.to_string())?),
            Op::Transpose { perm } => {
                // y = x.permuted_axes([0] ++ perm + 1), so x = y.permuted_axes(inverse).
                let mut inverse = vec![0; perm.len() + 1];
                for (i, &p) in perm.iter().enumerate() {
                    inverse[p + 1] = i + 1;
                }
                one(dy
                    .view()
                    .permuted_axes(IxDyn(&inverse))
                    .as_standard_layout()
                    .into_owned())
            }
            other => return Err(format!("no gradient for {}", other.kind())),
        })
    }
}

/// A constant broadcast like the evaluator does: `[1] ++ pad_rank(c, rank − 1)`.
fn const_view(c: &ArrayD<f64>, rank: usize) -> std::result::Result<ArrayD<f64>, String> {
    let mut s = vec![1];
    s.extend(pad_rank(c.shape(), rank.saturating_sub(1)));
    c.to_shape(IxDyn(&s))
        .map(|v| v.into_owned())
        .map_err(|e| e.to_string())
}

/// Sums `d` (shape `[batch] ++ out`) down to `[batch] ++ input` after numpy broadcasting.
fn unbroadcast(d: &ArrayD<f64>, target: &[usize]) -> std::result::Result<ArrayD<f64>, String> {
    if d.shape() == target {
        return Ok(d.clone());
    }
    let rank = d.ndim();
    let mut padded = vec![target[0]];
    padded.extend(pad_rank(&target[1..], rank - 1));
    if padded.len() != rank {
        return Err(format!(
            "cannot reduce a gradient of shape {:?} to {target:?}",
            d.shape()
        ));
    }
    let mut r = d.clone();
    for (axis, &p) in padded.iter().enumerate().skip(1) {
        if p == 1 && r.shape()[axis] != 1 {
            r = r.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    r.into_shape_with_order(IxDyn(target))
        .map_err(|e| e.to_string())
}

fn batched(a: ArrayD<f64>, rows: usize, shape: &[usize]) -> Result<ArrayD<f64>> {
    let mut s = vec![rows];
    s.extend_from_slice(shape);
    a.into_shape_with_order(IxDyn(&s))
        .map_err(|e| Error::Invalid(format!("gradient shape: {e}")))
}

fn flat(a: &ArrayD<f64>, rows: usize) -> Result<Array2<f64>> {
    let n = a.len() / rows.max(1);
    a.as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, n))
        .map_err(|e| Error::Invalid(format!("gradient shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::random::{random_graph, Family, RandomGraphConfig};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Central finite differences of `cot · N(x)` agree with the reverse-mode gradient on
    /// random smooth-or-piecewise-linear networks (points near a kink are rare and tolerated
    /// only through the relative tolerance; the seeds are fixed).
    #[test]
    fn gradient_matches_finite_differences() {
        let mut checked = 0;
        for seed in 0..200u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let cfg = RandomGraphConfig {
                families: vec![Family::Mlp, Family::Elementwise, Family::Residual],
                max_width: 5,
                max_layers: 4,
                extra_output_prob: 0.0,
                ..RandomGraphConfig::default()
            };
            let mut g = random_graph(&mut rng, &cfg);
            crate::ir::passes::canonicalize(&mut g, crate::ir::passes::Level::Exact);
            if check_supported(&g).is_err() {
                continue;
            }
            let n = g.input_size();
            let m = g.output_size();
            let x = Array2::from_shape_fn((2, n), |_| rng.random_range(-1.0..1.0));
            let cot = Array2::from_shape_fn((2, m), |_| rng.random_range(-1.0..1.0));
            let tape = match Tape::forward(&g, x.view()) {
                Ok(t) => t,
                Err(e) => {
                    let plain = crate::eval::forward_f64(&g, x.view());
                    panic!("seed {seed}: {e}; forward_f64: {:?}\n{g}", plain.err());
                }
            };
            let grad = tape.backward(cot.view()).unwrap();
            let h = 1e-6;
            for b in 0..2 {
                for i in 0..n {
                    let mut p = Array2::from_shape_vec((1, n), x.row(b).to_vec()).unwrap();
                    let mut q = p.clone();
                    p[(0, i)] += h;
                    q[(0, i)] -= h;
                    let fp = Tape::forward(&g, p.view()).unwrap().outputs().unwrap();
                    let fq = Tape::forward(&g, q.view()).unwrap().outputs().unwrap();
                    let fd: f64 = (0..m)
                        .map(|j| cot[(b, j)] * (fp[(0, j)] - fq[(0, j)]) / (2.0 * h))
                        .sum();
                    let scale = 1.0 + fd.abs().max(grad[(b, i)].abs());
                    assert!(
                        (fd - grad[(b, i)]).abs() <= 1e-4 * scale,
                        "seed {seed}: d/dx{i} finite difference {fd} vs gradient {}",
                        grad[(b, i)]
                    );
                }
            }
            checked += 1;
        }
        assert!(checked >= 50, "only {checked} random networks were checked");
    }

    #[test]
    fn unsupported_ops_are_errors() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 4]);
        let y = g
            .add_node("sm", Op::Softmax { axis: 1 }, vec![x], "y")
            .unwrap();
        g.add_output(y);
        let e = check_supported(&g).unwrap_err().to_string();
        assert!(e.contains("Softmax"), "{e}");
    }
}
