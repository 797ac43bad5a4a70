//! alpha-CROWN: CROWN whose free relaxation slopes are optimised for the bound itself.
//!
//! The lower-line slope of every unstable ReLU-family neuron is a parameter in its valid range
//! (`[alpha, 1]` for LeakyReLU, `[0, 1]` for ReLU), one per neuron *and per objective row*, as
//! in auto_LiRPA. Intermediate bounds are fixed (CROWN's); only the final backward pass is
//! optimised, by projected gradient ascent (Adam, learning rate 0.5 decaying by 0.98, as
//! auto_LiRPA) for a fixed number of iterations, keeping the best bound of every row. Every
//! iterate is a sound bound (any slope in the range gives a valid lower line), so the result
//! is never looser than CROWN's.
//!
//! **Exact gradients.** For a fixed choice of lines, the backward pass computes row `i` of
//! the relaxed linear network evaluated at the minimising box vertex `x*_i`; changing the slope
//! of neuron `j` of node `k` changes that value by `lam_kij · h_kij`, where `lam_kij` is the
//! coefficient reaching the node's output and `h_kij` the pre-activation of the relaxed network
//! at `x*_i`. One recorded backward pass and one batched relaxed forward pass (rows are batch
//! entries) give every partial derivative. (MaxPool, whose relaxation is not per-neuron, is
//! evaluated exactly in that forward pass, so gradients through it are approximate; soundness
//! does not depend on gradients.)

use std::collections::HashMap;

use ndarray::{Array2, ArrayD, IxDyn};

use super::crown::{Intermediate, State};
use super::{BoxBounds, Method};
use crate::bounds::ops::{is_relaxed, leaky};
use crate::bounds::relax::{NeuronRelaxation, SShape};
use crate::bounds::Interval;
use crate::error::{Error, Result};
use crate::ir::{Graph, Op};

/// Optimisation iterations when none are given (auto_LiRPA's default).
pub const DEFAULT_ITERATIONS: usize = 20;

/// Per relaxed node (by position): per-neuron relaxations and, for ReLU-family nodes, the
/// valid slope range.
struct Relaxed {
    neurons: Vec<NeuronRelaxation>,
    range: Option<(f64, f64)>,
}

fn relaxations(st: &State, upto: usize) -> Result<HashMap<usize, Relaxed>> {
    let g = st.graph;
    let mut out = HashMap::new();
    for (idx, node) in g.nodes[..=upto].iter().enumerate() {
        if !is_relaxed(&node.op) {
            continue;
        }
        let x = st.bounds[node.inputs[0].0].as_ref().expect("computed");
        let r = match node.op {
            Op::Relu | Op::LeakyRelu { .. } => {
                let f = leaky(node)?;
                Relaxed {
                    neurons: (0..x.len())
                        .map(|j| f.relax(x.lo[j], x.hi[j], None))
                        .collect(),
                    range: Some(f.slope_range()),
                }
            }
            Op::Sigmoid | Op::Tanh => {
                let f = if matches!(node.op, Op::Sigmoid) {
                    SShape::Sigmoid
                } else {
                    SShape::Tanh
                };
                Relaxed {
                    neurons: (0..x.len()).map(|j| f.relax(x.lo[j], x.hi[j])).collect(),
                    range: None,
                }
            }
            _ => continue,
        };
        out.insert(idx, r);
    }
    Ok(out)
}

/// alpha-CROWN bounds of the outputs and of the rows of `c`, never looser than `crown`.
pub fn bounds(
    graph: &Graph,
    input: &Interval,
    c: Option<&Array2<f64>>,
    iterations: usize,
) -> Result<BoxBounds> {
    let mut best = super::compute(graph, Method::Crown, input, c)?;
    for mode in [Intermediate::Replace, Intermediate::Intersect] {
        let st = State::new(graph, input, mode)?;
        if let Some(b) = optimise(&st, c, iterations)? {
            best = BoxBounds::tighter(best, b);
        }
    }
    Ok(best)
}

/// Optimises the slopes on one fixed set of intermediate bounds; `None` when the output does
/// not depend on any free slope.
fn optimise(st: &State, c: Option<&Array2<f64>>, iterations: usize) -> Result<Option<BoxBounds>> {
    let g = st.graph;
    let out = st.output;
    let Some(k) = g.producer(out) else {
        return Ok(None);
    };
    let relaxed = relaxations(st, k)?;
    let n = g.value(out).size();
    let spec_rows = c.map_or(0, |c| c.nrows());
    let rows = 2 * n + spec_rows;
    let mut all = Array2::zeros((rows, n));
    for j in 0..n {
        all[(j, j)] = 1.0;
        all[(n + j, j)] = -1.0;
    }
    if let Some(c) = c {
        all.slice_mut(ndarray::s![2 * n.., ..]).assign(c);
    }
    // Initial slopes: CROWN's adaptive choice, for every row.
    let mut alpha: HashMap<usize, Array2<f64>> = HashMap::new();
    for (&idx, r) in &relaxed {
        if r.range.is_some() && r.neurons.iter().any(|nr| nr.free_lower) {
            let init: Vec<f64> = r.neurons.iter().map(|nr| nr.lower.slope).collect();
            alpha.insert(
                idx,
                Array2::from_shape_fn((rows, init.len()), |(_, j)| init[j]),
            );
        }
    }
    if alpha.is_empty() {
        return Ok(None);
    }
    let mut adam: HashMap<usize, (Array2<f64>, Array2<f64>)> = alpha
        .iter()
        .map(|(&i, a)| (i, (Array2::zeros(a.raw_dim()), Array2::zeros(a.raw_dim()))))
        .collect();
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    let mut lr = 0.5;
    let mut best = vec![f64::NEG_INFINITY; rows];
    let x = st.bounds[st.input.0].as_ref().expect("input box");
    for t in 0..iterations.max(1) {
        let pass = st.backward_pass(k, out, all.clone(), Some(&alpha), true)?;
        for (b, l) in best.iter_mut().zip(&pass.lower) {
            *b = b.max(*l);
        }
        if t + 1 == iterations.max(1) {
            break;
        }
        let lam0 = pass.input_lam.ok_or_else(|| {
            Error::Invalid("alpha-CROWN: no coefficients reached the input".into())
        })?;
        let xstar = Array2::from_shape_fn(lam0.raw_dim(), |(i, j)| {
            if lam0[(i, j)] >= 0.0 {
                x.lo[j]
            } else {
                x.hi[j]
            }
        });
        let pre = relaxed_forward(st, k, &relaxed, &alpha, &pass.relaxed, xstar)?;
        let step = t as i32 + 1;
        for (idx, a) in alpha.iter_mut() {
            let (Some(lam), Some(h), Some(r)) =
                (pass.relaxed.get(idx), pre.get(idx), relaxed.get(idx))
            else {
                continue;
            };
            let (lo, hi) = r.range.unwrap_or((0.0, 1.0));
            let (m, v) = adam.get_mut(idx).expect("adam state");
            for ((i, j), aij) in a.indexed_iter_mut() {
                let grad = if r.neurons[j].free_lower && lam[(i, j)] >= 0.0 {
                    lam[(i, j)] * h[(i, j)]
                } else {
                    0.0
                };
                let mij = &mut m[(i, j)];
                let vij = &mut v[(i, j)];
                *mij = b1 * *mij + (1.0 - b1) * grad;
                *vij = b2 * *vij + (1.0 - b2) * grad * grad;
                let mhat = *mij / (1.0 - f64::powi(b1, step));
                let vhat = *vij / (1.0 - f64::powi(b2, step));
                *aij = (*aij + lr * mhat / (vhat.sqrt() + eps)).clamp(lo, hi);
            }
        }
        lr *= 0.98;
    }
    Ok(Some(BoxBounds {
        outputs: Interval::new(
            best[..n].to_vec(),
            best[n..2 * n].iter().map(|v| -v).collect(),
        ),
        rows: best[2 * n..].to_vec(),
    }))
}

/// The relaxed network evaluated at one point per row (rows are batch entries): relaxed nodes
/// apply, per row, the line the backward pass chose (lower line with the row's slope where the
/// coefficient is non-negative, upper line otherwise). Returns each relaxed node's
/// pre-activation values (rows × neurons).
fn relaxed_forward(
    st: &State,
    k: usize,
    relaxed: &HashMap<usize, Relaxed>,
    alpha: &HashMap<usize, Array2<f64>>,
    lams: &HashMap<usize, Array2<f64>>,
    xstar: Array2<f64>,
) -> Result<HashMap<usize, Array2<f64>>> {
    let g = st.graph;
    let rows = xstar.nrows();
    let mut values: Vec<Option<ArrayD<f64>>> = vec![None; g.values.len()];
    let mut shape = vec![rows];
    shape.extend_from_slice(&g.value(st.input).shape);
    values[st.input.0] = Some(
        xstar
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|e| Error::Invalid(format!("alpha-CROWN: {e}")))?,
    );
    let mut pre = HashMap::new();
    for (idx, node) in g.nodes[..=k].iter().enumerate() {
        let args: Vec<&ArrayD<f64>> = node
            .inputs
            .iter()
            .map(|v| {
                values[v.0]
                    .as_ref()
                    .ok_or_else(|| Error::Invalid("alpha-CROWN: value not computed".into()))
            })
            .collect::<Result<_>>()?;
        let out = match (relaxed.get(&idx), lams.get(&idx)) {
            (Some(r), Some(lam)) => {
                let x = args[0];
                let flat = x
                    .to_shape((rows, r.neurons.len()))
                    .map_err(|e| Error::Invalid(format!("alpha-CROWN: {e}")))?
                    .to_owned();
                let slopes = alpha.get(&idx);
                let y = Array2::from_shape_fn(flat.raw_dim(), |(i, j)| {
                    let nr = &r.neurons[j];
                    let line = if lam[(i, j)] >= 0.0 {
                        match slopes {
                            Some(s) if nr.free_lower => crate::bounds::relax::Line {
                                slope: s[(i, j)],
                                intercept: 0.0,
                            },
                            _ => nr.lower,
                        }
                    } else {
                        nr.upper
                    };
                    line.slope * flat[(i, j)] + line.intercept
                });
                pre.insert(idx, flat);
                y.into_shape_with_order(x.raw_dim())
                    .map_err(|e| Error::Invalid(format!("alpha-CROWN: {e}")))?
            }
            _ => crate::eval::eval_node(node, &args).map_err(|e| {
                Error::Invalid(format!("alpha-CROWN forward at `{}`: {e}", node.name))
            })?,
        };
        values[node.output.0] = Some(out);
    }
    Ok(pre)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::random::{random_graph, Family, RandomGraphConfig};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The analytic gradient of each row's bound matches finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        let mut checked = 0;
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let cfg = RandomGraphConfig {
                families: vec![Family::Mlp],
                max_width: 6,
                max_layers: 4,
                smooth_activations: false,
                extra_output_prob: 0.0,
                ..RandomGraphConfig::default()
            };
            let g = random_graph(&mut rng, &cfg);
            let n = g.input_size();
            let b = Interval::new(vec![-1.0; n], vec![1.0; n]);
            let st = State::new(&g, &b, Intermediate::Replace).unwrap();
            let Some(k) = g.producer(st.output) else {
                continue;
            };
            let relaxed = relaxations(&st, k).unwrap();
            let m = g.value(st.output).size();
            let c = Array2::from_shape_fn((2, m), |_| rng.random_range(-1.0..1.0));
            let mut alpha: HashMap<usize, Array2<f64>> = HashMap::new();
            // Sorted, so the random slopes do not depend on hash order; strictly inside the
            // valid range, where the bound is differentiable in the slope.
            let mut idxs: Vec<usize> = relaxed.keys().copied().collect();
            idxs.sort_unstable();
            for idx in idxs {
                let r = &relaxed[&idx];
                if let (Some((lo, hi)), true) = (r.range, r.neurons.iter().any(|nr| nr.free_lower))
                {
                    alpha.insert(
                        idx,
                        Array2::from_shape_fn((2, r.neurons.len()), |_| {
                            lo + (hi - lo) * rng.random_range(0.1..0.9)
                        }),
                    );
                }
            }
            if alpha.is_empty() {
                continue;
            }
            let pass = st
                .backward_pass(k, st.output, c.clone(), Some(&alpha), true)
                .unwrap();
            let lam0 = pass.input_lam.clone().unwrap();
            let xstar = Array2::from_shape_fn(lam0.raw_dim(), |(i, j)| {
                if lam0[(i, j)] >= 0.0 {
                    b.lo[j]
                } else {
                    b.hi[j]
                }
            });
            let pre = relaxed_forward(&st, k, &relaxed, &alpha, &pass.relaxed, xstar).unwrap();
            for (&idx, a) in &alpha {
                for ((i, j), _) in a.indexed_iter() {
                    if !relaxed[&idx].neurons[j].free_lower || pass.relaxed[&idx][(i, j)] < 0.0 {
                        continue;
                    }
                    let grad = pass.relaxed[&idx][(i, j)] * pre[&idx][(i, j)];
                    let h = 1e-6;
                    let mut a2 = alpha.clone();
                    a2.get_mut(&idx).unwrap()[(i, j)] += h;
                    let p2 = st
                        .backward_pass(k, st.output, c.clone(), Some(&a2), false)
                        .unwrap();
                    let fd = (p2.lower[i] - pass.lower[i]) / h;
                    assert!(
                        (fd - grad).abs() <= 1e-4 * (1.0 + grad.abs()),
                        "seed {seed} node {idx} ({i},{j}): fd {fd} vs grad {grad}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "only {checked} partial derivatives checked");
    }
}
