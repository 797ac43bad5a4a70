//! Per-operator bound rules: the interval image of an op (`interval`) and one backward step of
//! linear-bound propagation (`backward`).
//!
//! Backward convention: a *lower* bound is being built for every row `i` of a coefficient
//! matrix `lam` (rows × scalars of the node's output): the invariant is
//! `objective_i ≥ lam_i · z + bias_i − err_i` for every reachable `z` of the current value.
//! A step rewrites `lam_i · z_out` in terms of the node's inputs, adding to `bias` and to the
//! non-negative rounding allowance `err` (see `rounding`). Upper bounds are lower bounds of the
//! negated rows. Ops the engine cannot bound yet are reported as errors, never skipped.

use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};

mod smooth;
mod window;

pub use window::{dense_conv, DenseConv};

use super::relax::{LeakyRelu, NeuronRelaxation};
use super::rounding::{
    abs_matvec_up, add_down, add_up, div_down, div_up, dot_error, gamma, inflate_sum,
    matvec_with_error, mul_down, mul_up, sub_down, sub_up, SumBound, ETA, UNIT_ROUNDOFF,
};
use super::Interval;
use crate::error::{Error, Result};
use crate::ir::{Graph, Node, Op};

/// Per-row accumulators of a backward pass: `bias` (round-to-nearest) and `err` (an upper
/// bound on every rounding error committed so far, to be subtracted at the end).
#[derive(Clone, Debug)]
pub struct Accum {
    pub bias: Vec<f64>,
    pub err: Vec<f64>,
}

impl Accum {
    pub fn new(rows: usize) -> Accum {
        Accum {
            bias: vec![0.0; rows],
            err: vec![0.0; rows],
        }
    }

    /// `bias_i += v` where `v` approximates the exact term with error at most `v_err`.
    pub fn add(&mut self, i: usize, v: f64, v_err: f64) {
        let b = self.bias[i] + v;
        // fl(a + b) is within u·|result| (relative to the result, ≤ 2u·|fl|) of a + b.
        let add_err = add_up(mul_up(2.0 * UNIT_ROUNDOFF, b.abs()), ETA);
        self.bias[i] = b;
        self.err[i] = add_up(self.err[i], add_up(v_err, add_err));
    }

    /// `err_i += e`.
    pub fn charge(&mut self, i: usize, e: f64) {
        self.err[i] = add_up(self.err[i], e);
    }
}

pub(crate) fn unsupported(node: &Node, why: &str) -> Error {
    Error::Invalid(format!(
        "the bound engine cannot handle node `{}` ({}): {why}",
        node.name,
        node.op.kind()
    ))
}

/// Flattened constant broadcast to `shape` (numpy rules).
fn broadcast_const(node: &Node, c: &ndarray::ArrayD<f64>, shape: &[usize]) -> Result<Vec<f64>> {
    let v = c
        .broadcast(ndarray::IxDyn(shape))
        .ok_or_else(|| unsupported(node, "constant does not broadcast to the value"))?;
    Ok(v.iter().copied().collect())
}

fn same_shape_io(graph: &Graph, node: &Node) -> Result<()> {
    for v in &node.inputs {
        if graph.value(*v).shape != graph.value(node.output).shape {
            return Err(unsupported(
                node,
                "broadcasting that changes an input's shape is not supported yet",
            ));
        }
    }
    Ok(())
}

/// Centre/radius form of a box.
pub fn centre_radius(x: &Interval) -> (Vec<f64>, Vec<f64>) {
    x.lo.iter()
        .zip(&x.hi)
        .map(|(&l, &h)| super::rounding::centre_radius(l, h))
        .unzip()
}

/// The interval image of `node` given intervals of its inputs.
pub fn interval(graph: &Graph, node: &Node, inputs: &[&Interval]) -> Result<Interval> {
    let x = inputs[0];
    let n = x.len();
    match &node.op {
        Op::Linear { weight, bias } => {
            let (out, inp) = weight.dim();
            let lead = n / inp;
            let mut lo = Vec::with_capacity(lead * out);
            let mut hi = Vec::with_capacity(lead * out);
            let abs_w = weight.mapv(f64::abs);
            for l in 0..lead {
                let chunk = Interval::new(
                    x.lo[l * inp..(l + 1) * inp].to_vec(),
                    x.hi[l * inp..(l + 1) * inp].to_vec(),
                );
                let (c, r) = centre_radius(&chunk);
                // `W c` with its rounding error, and the radius `|W| r`, one product each.
                let (wc, err) = matvec_with_error(weight.view(), ArrayView1::from(&c));
                let rad = abs_w.dot(&ArrayView1::from(&r));
                for o in 0..out {
                    let b = bias.as_ref().map_or(0.0, |b| b[o]);
                    let rad = inflate_sum(rad[o], inp);
                    let (dlo, dhi) = (sub_down(wc[o], err[o]), add_up(wc[o], err[o]));
                    lo.push(add_down(sub_down(dlo, rad), b));
                    hi.push(add_up(add_up(dhi, rad), b));
                }
            }
            Ok(Interval::new(lo, hi))
        }
        Op::AddConst(c) => {
            same_shape_io(graph, node)?;
            let c = broadcast_const(node, c, &graph.value(node.output).shape)?;
            Ok(Interval::new(
                x.lo.iter().zip(&c).map(|(a, b)| add_down(*a, *b)).collect(),
                x.hi.iter().zip(&c).map(|(a, b)| add_up(*a, *b)).collect(),
            ))
        }
        Op::MulConst(c) | Op::DivConst(c) => {
            same_shape_io(graph, node)?;
            let divide = matches!(node.op, Op::DivConst(_));
            let c = broadcast_const(node, c, &graph.value(node.output).shape)?;
            let mut lo = Vec::with_capacity(n);
            let mut hi = Vec::with_capacity(n);
            for (i, &k) in c.iter().enumerate().take(n) {
                if divide && k == 0.0 {
                    return Err(unsupported(node, "division by zero"));
                }
                let (a, b) = if divide {
                    (div_down(x.lo[i], k), div_up(x.lo[i], k))
                } else {
                    (mul_down(x.lo[i], k), mul_up(x.lo[i], k))
                };
                let (a2, b2) = if divide {
                    (div_down(x.hi[i], k), div_up(x.hi[i], k))
                } else {
                    (mul_down(x.hi[i], k), mul_up(x.hi[i], k))
                };
                lo.push(a.min(a2));
                hi.push(b.max(b2));
            }
            Ok(Interval::new(lo, hi))
        }
        Op::Add | Op::Sub => {
            same_shape_io(graph, node)?;
            let y = inputs[1];
            let sub = matches!(node.op, Op::Sub);
            Ok(Interval::new(
                (0..n)
                    .map(|i| {
                        if sub {
                            sub_down(x.lo[i], y.hi[i])
                        } else {
                            add_down(x.lo[i], y.lo[i])
                        }
                    })
                    .collect(),
                (0..n)
                    .map(|i| {
                        if sub {
                            sub_up(x.hi[i], y.lo[i])
                        } else {
                            add_up(x.hi[i], y.hi[i])
                        }
                    })
                    .collect(),
            ))
        }
        Op::Relu | Op::LeakyRelu { .. } => {
            let f = leaky(node)?;
            let (lo, hi) = x.lo.iter().zip(&x.hi).map(|(&l, &h)| f.image(l, h)).unzip();
            Ok(Interval::new(lo, hi))
        }
        Op::Reshape { .. } => Ok(x.clone()),
        Op::Transpose { perm } => {
            let src = transpose_sources(&graph.value(node.inputs[0]).shape, perm);
            Ok(Interval::new(
                src.iter().map(|&j| x.lo[j]).collect(),
                src.iter().map(|&j| x.hi[j]).collect(),
            ))
        }
        Op::Conv(_)
        | Op::BatchNorm { .. }
        | Op::AveragePool(_)
        | Op::MaxPool(_)
        | Op::GlobalAveragePool => window::interval(graph, node, x),
        Op::Sigmoid | Op::Tanh => smooth::interval(node, x),
        Op::Softmax { .. } => Err(unsupported(
            node,
            "Softmax is only supported as the final layer (bounds refer to the logits)",
        )),
    }
}

/// The ReLU-family activation of a node (ReLU is LeakyReLU with alpha 0).
pub fn leaky(node: &Node) -> Result<LeakyRelu> {
    match node.op {
        Op::LeakyRelu { alpha } if alpha > 1.0 || alpha.is_nan() => Err(unsupported(
            node,
            "LeakyRelu with alpha > 1 is concave; its relaxation is not supported",
        )),
        Op::LeakyRelu { alpha } => Ok(LeakyRelu { alpha }),
        _ => Ok(LeakyRelu { alpha: 0.0 }),
    }
}

/// Whether the bound engine relaxes this op (it needs pre-activation bounds of its input).
pub fn is_relaxed(op: &Op) -> bool {
    matches!(
        op,
        Op::Relu | Op::LeakyRelu { .. } | Op::Sigmoid | Op::Tanh | Op::MaxPool(_)
    )
}

/// For a transpose of an input of shape `in_shape` by `perm`: for each output flat index, the
/// input flat index it reads.
pub fn transpose_sources(in_shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    let in_strides = crate::tensor::strides(in_shape);
    let total: usize = in_shape.iter().product();
    let mut src = Vec::with_capacity(total);
    let mut idx = vec![0usize; out_shape.len()];
    for _ in 0..total {
        src.push(idx.iter().zip(perm).map(|(&i, &p)| i * in_strides[p]).sum());
        for a in (0..idx.len()).rev() {
            idx[a] += 1;
            if idx[a] < out_shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    src
}

/// One backward step through `node`: `lam` holds the coefficients on the node's output; the
/// result holds coefficients on each of its inputs (same order as `node.inputs`). `bounds`
/// gives, for each input, a sound enclosure (used for error terms and relaxations);
/// `relax` gives, for relaxed ops, the per-row lower slopes chosen (alpha) if any.
pub fn backward(
    graph: &Graph,
    node: &Node,
    lam: &Array2<f64>,
    bounds: &[&Interval],
    slopes: Option<&Array2<f64>>,
    acc: &mut Accum,
) -> Result<Vec<Array2<f64>>> {
    let rows = lam.nrows();
    let x = bounds[0];
    let m = x.magnitude();
    match &node.op {
        Op::Linear { weight, bias } => {
            let (out, inp) = weight.dim();
            let lead = m.len() / inp;
            let mut res = Array2::zeros((rows, lead * inp));
            let abs_w = weight.mapv(f64::abs);
            let g = gamma(out);
            for l in 0..lead {
                let m_l = ArrayView1::from(&m[l * inp..(l + 1) * inp]);
                let sum_m = inflate_sum(m_l.sum(), inp);
                let lam_l = lam.slice(s![.., l * out..(l + 1) * out]);
                // Columns of `lam` that are exactly zero (inactive ReLUs, rows that never
                // reach a neuron) add exactly zero to every product: skip them when that saves
                // more than the copy costs. The sum then has fewer terms, still within `γ_out`.
                let live: Vec<usize> = (0..out)
                    .filter(|&o| lam_l.column(o).iter().any(|&v| v != 0.0))
                    .collect();
                let product = if live.len() < out && rows * (out - live.len()) > 2 * live.len() {
                    lam_l
                        .select(Axis(1), &live)
                        .dot(&weight.select(Axis(0), &live))
                } else {
                    lam_l.dot(weight)
                };
                res.slice_mut(s![.., l * inp..(l + 1) * inp])
                    .assign(&product);
                // Error of the product: γ_out · Σ_o |lam_io| (|W| m)_o, for all rows at once:
                // `wm ≥ |W| m`, then `|Λ| · wm` (both upward-inflated matrix-vector products).
                let wm: Vec<f64> = abs_w
                    .dot(&m_l)
                    .iter()
                    .map(|&v| inflate_sum(v, inp))
                    .collect();
                let lw = abs_matvec_up(lam_l, ArrayView1::from(&wm));
                // Underflow: each entry of the product is off by at most `out·η` absolute,
                // which moves the bound by `out·η·Σ_j m_j`.
                let under = mul_up(out as f64 * ETA, sum_m);
                for (i, e) in lw.iter().enumerate() {
                    acc.charge(i, add_up(mul_up(g, *e), under));
                }
                if let Some(b) = bias {
                    let (v, err) = matvec_with_error(lam_l, b.view());
                    for i in 0..rows {
                        acc.add(i, v[i], err[i]);
                    }
                }
            }
            Ok(vec![res])
        }
        Op::AddConst(c) => {
            same_shape_io(graph, node)?;
            let c = broadcast_const(node, c, &graph.value(node.output).shape)?;
            let (v, err) = matvec_with_error(lam.view(), ArrayView1::from(&c));
            for i in 0..rows {
                acc.add(i, v[i], err[i]);
            }
            Ok(vec![lam.clone()])
        }
        Op::MulConst(c) | Op::DivConst(c) => {
            same_shape_io(graph, node)?;
            let divide = matches!(node.op, Op::DivConst(_));
            let c = broadcast_const(node, c, &graph.value(node.output).shape)?;
            let mut res = lam.clone();
            for mut row in res.rows_mut() {
                for (v, k) in row.iter_mut().zip(&c) {
                    *v = if divide { *v / k } else { *v * k };
                }
            }
            charge_elementwise(&res, &m, acc);
            Ok(vec![res])
        }
        Op::Add => {
            same_shape_io(graph, node)?;
            Ok(vec![lam.clone(), lam.clone()])
        }
        Op::Sub => {
            same_shape_io(graph, node)?;
            Ok(vec![lam.clone(), lam.mapv(|v| -v)])
        }
        Op::Reshape { .. } => Ok(vec![lam.clone()]),
        Op::Transpose { perm } => {
            let src = transpose_sources(&graph.value(node.inputs[0]).shape, perm);
            let mut res = Array2::zeros((rows, src.len()));
            for (o, &j) in src.iter().enumerate() {
                res.column_mut(j).assign(&lam.column(o));
            }
            Ok(vec![res])
        }
        Op::Relu | Op::LeakyRelu { .. } => {
            let f = leaky(node)?;
            let relax: Vec<NeuronRelaxation> = (0..m.len())
                .map(|j| f.relax(x.lo[j], x.hi[j], None))
                .collect();
            let range = f.slope_range();
            Ok(vec![backward_relaxed(
                lam,
                &relax,
                slopes.map(|s| (s, range)),
                &m,
                acc,
            )])
        }
        Op::Conv(_)
        | Op::BatchNorm { .. }
        | Op::AveragePool(_)
        | Op::MaxPool(_)
        | Op::GlobalAveragePool => window::backward(graph, node, lam, x, acc).map(|l| vec![l]),
        Op::Sigmoid | Op::Tanh => smooth::backward(node, lam, x, acc).map(|l| vec![l]),
        Op::Softmax { .. } => Err(unsupported(
            node,
            "Softmax is only supported as the final layer (bounds refer to the logits)",
        )),
    }
}

/// Backward step through an elementwise activation relaxed per neuron: for a lower-bound row,
/// a non-negative coefficient takes the lower line and a negative one the upper line.
/// `slopes` optionally overrides the free lower slopes per row and neuron (alpha-CROWN), clamped
/// to the given valid range.
pub(crate) fn backward_relaxed(
    lam: &Array2<f64>,
    relax: &[NeuronRelaxation],
    slopes: Option<(&Array2<f64>, (f64, f64))>,
    m: &[f64],
    acc: &mut Accum,
) -> Array2<f64> {
    let mut res = Array2::zeros(lam.raw_dim());
    relaxed_rows(lam.view(), res.view_mut(), relax, slopes, m, acc, 0);
    res
}

/// [`backward_relaxed`] on the rows `row0..row0 + lam.nrows()` of a larger problem: `res`
/// (zero on entry) receives the new coefficients, `acc` rows are offset by `row0`.
fn relaxed_rows(
    lam: ArrayView2<f64>,
    mut res: ArrayViewMut2<f64>,
    relax: &[NeuronRelaxation],
    slopes: Option<(&Array2<f64>, (f64, f64))>,
    m: &[f64],
    acc: &mut Accum,
    row0: usize,
) {
    let n = relax.len();
    let sb = SumBound::new(n);
    // The lines as columns; a row then picks per neuron by the sign of its coefficient
    // without branches: exactly one of `max(l, 0)`, `min(l, 0)` is non-zero (or both are
    // zero), so `pos·a + neg·b` is the one product `l·a` or `l·b`, rounded once.
    let mut lo_slope: Vec<f64> = relax.iter().map(|r| r.lower.slope).collect();
    let mut lo_int: Vec<f64> = relax.iter().map(|r| r.lower.intercept).collect();
    let up_slope: Vec<f64> = relax.iter().map(|r| r.upper.slope).collect();
    let up_int: Vec<f64> = relax.iter().map(|r| r.upper.intercept).collect();
    let free: Vec<usize> = (0..n).filter(|&j| relax[j].free_lower).collect();
    let finite = relax.iter().all(|r| {
        r.lower.slope.is_finite()
            && r.lower.intercept.is_finite()
            && r.upper.slope.is_finite()
            && r.upper.intercept.is_finite()
    }) && slopes.is_none_or(|(s, _)| s.iter().all(|v| v.is_finite()));
    for (i, (lrow, mut rrow)) in lam
        .axis_iter(Axis(0))
        .zip(res.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        if let Some((s, (lo, hi))) = slopes {
            // alpha-CROWN: the free lower lines pass through the origin with this row's slope.
            for &j in &free {
                lo_slope[j] = s[(i, j)].clamp(lo, hi);
                lo_int[j] = 0.0;
            }
        }
        let mut v = 0.0;
        let mut abs = 0.0;
        let lines = lrow
            .iter()
            .zip(rrow.iter_mut())
            .zip(lo_slope.iter().zip(&lo_int))
            .zip(up_slope.iter().zip(&up_int));
        // (A NaN coefficient would vanish in `max`/`min`; such rows take the branchy path.)
        if finite && !lrow.iter().any(|x| x.is_nan()) {
            for (((&l, out), (&ls, &li)), (&us, &ui)) in lines {
                let (pos, neg) = (l.max(0.0), l.min(0.0));
                *out = pos * ls + neg * us;
                let t = pos * li + neg * ui;
                v += t;
                abs += t.abs();
            }
        } else {
            // Some line is infinite: only the line a coefficient selects may be touched.
            for (((&l, out), (&ls, &li)), (&us, &ui)) in lines {
                if l == 0.0 {
                    continue;
                }
                let (slope, intercept) = if l >= 0.0 { (ls, li) } else { (us, ui) };
                *out = l * slope;
                if intercept != 0.0 {
                    let t = l * intercept;
                    v += t;
                    abs += t.abs();
                }
            }
        }
        acc.add(row0 + i, v, sb.error(abs));
    }
    charge_rows(res.view(), m, acc, row0);
}

/// One backward step through a ReLU-family node for the stacked rows of several boxes: the
/// rows `range` of `lam` belong to a box on which the node's input lies in `bounds` (its own
/// relaxation), for each `(range, bounds)` of `blocks` (the ranges cover every row once).
/// Row for row the same arithmetic as [`backward`], so the same argument applies.
pub fn backward_leaky_blocks(
    node: &Node,
    lam: &Array2<f64>,
    blocks: &[(std::ops::Range<usize>, &Interval)],
    acc: &mut Accum,
) -> Result<Array2<f64>> {
    let f = leaky(node)?;
    let mut res = Array2::zeros(lam.raw_dim());
    for (range, x) in blocks {
        let relax: Vec<NeuronRelaxation> = (0..x.len())
            .map(|j| f.relax(x.lo[j], x.hi[j], None))
            .collect();
        relaxed_rows(
            lam.slice(s![range.clone(), ..]),
            res.slice_mut(s![range.clone(), ..]),
            &relax,
            None,
            &x.magnitude(),
            acc,
            range.start,
        );
    }
    Ok(res)
}

/// Error allowance of an elementwise product/quotient `res = fl(lam ∘ k)`: each entry is within
/// `2u |res| + η` of the exact one, so the bound moves by at most
/// `2u Σ_j |res_ij| m_j + η Σ_j m_j` per row.
pub(crate) fn charge_elementwise(res: &Array2<f64>, m: &[f64], acc: &mut Accum) {
    charge_rows(res.view(), m, acc, 0);
}

/// [`charge_elementwise`] for rows `row0..` of the accumulators.
fn charge_rows(res: ArrayView2<f64>, m: &[f64], acc: &mut Accum, row0: usize) {
    // Underflow: each entry is off by at most η absolute, moving the bound by η·Σ_j m_j.
    let underflow = mul_up(ETA, inflate_sum(m.iter().sum(), m.len()));
    let sums = abs_matvec_up(res, ArrayView1::from(m));
    for (i, s) in sums.iter().enumerate() {
        acc.charge(row0 + i, add_up(mul_up(2.0 * UNIT_ROUNDOFF, *s), underflow));
    }
}

/// Sound lower bound of `lam_i · x + bias_i − err_i` over the box `x`, for every row.
pub fn concretize_lower(lam: &Array2<f64>, x: &Interval, acc: &Accum) -> Vec<f64> {
    concretize_rows(lam.view(), x, acc, 0)
}

/// [`concretize_lower`] for the rows of `lam`, whose accumulators are rows `row0..` of `acc`.
pub fn concretize_rows(lam: ArrayView2<f64>, x: &Interval, acc: &Accum, row0: usize) -> Vec<f64> {
    let n = lam.ncols();
    lam.axis_iter(Axis(0))
        .enumerate()
        .map(|(i, row)| {
            // `dot_down` of the row with the box corner it selects, without temporaries.
            let mut sum = 0.0;
            let mut abs = 0.0;
            for ((&a, &lo), &hi) in row.iter().zip(&x.lo).zip(&x.hi) {
                // Zero coefficients contribute nothing even against infinite bounds.
                if a == 0.0 {
                    continue;
                }
                let p = a * if a >= 0.0 { lo } else { hi };
                sum += p;
                abs += p.abs();
            }
            let d = sub_down(sum, dot_error(abs, n));
            sub_down(add_down(d, acc.bias[row0 + i]), acc.err[row0 + i])
        })
        .collect()
}
