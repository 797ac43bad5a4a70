//! The certificate checker's own bound of a network over a box: a backward linear relaxation
//! (CROWN-style) written from scratch, in `f64` with rigorous rounding. It shares no code with
//! the bound engines (`bounds`, `engine`, `verify`); only the model loader and the IR are
//! shared.
//!
//! In: a canonical [`Graph`] that is a chain of `Linear`, `Conv` (unrolled here to a dense
//! matrix), `BatchNorm` (subtract the mean, scale by an outward enclosure of
//! `scale/√(var+ε)`, add the bias), `Relu`, `Tanh`, `Sigmoid` (parallel lines of the slope
//! `min(f'(l), f'(u))`, valid because `f'` is unimodal), `Reshape`, `AddConst`, `MulConst`, `DivConst`
//! nodes ([`Net::new`] rejects anything else), a box, and rows `c`
//! over the outputs. Out: for each row, a number `m` with `c·N(x) ≥ m` for every real `x` of
//! the box, and the input coefficients of the linear bound behind it ([`Net::lower_rows`]).
//!
//! The method: interval bounds of every value, forward; then, for every ReLU whose input
//! interval contains 0, that layer's neurons bounded again by a backward pass (rows `±e_j`)
//! and the tighter kept; finally the backward pass of the rows `c`. A backward pass keeps
//! `Λ·v_k + acc ≤ c·N(x)` (plus the row's constant) for the current value `v_k`: through
//! `v = W h + b` it becomes `(ΛW)·h + Λb`; through `h = relu(z)` with `z ∈ [l, u]`, a
//! nonnegative multiplier uses `relu(z) ≥ αz` (`α = 1` when `u ≥ −l`, else 0; exact on stable
//! neurons) and a negative one `relu(z) ≤ s(z − l)` with `s ≥ u/(u − l)`; at the input,
//! `min Λ·x` over the box.
//!
//! ## Rounding (the whole argument)
//!
//! Multipliers `Λ` are any doubles: the inequality chain holds for whatever multipliers are
//! used, provided every *product* is accounted for exactly. So each new `Λ' = fl(ΛW)` is
//! computed in round-to-nearest (any summation order, with or without FMA) and the difference
//! to the real `ΛW` is bounded by Higham's `|fl(Σ a_i b_i) − Σ a_i b_i| ≤ γ_n Σ |a_i b_i|`
//! (`γ_n = nu/(1 − nu)`, `u = 2⁻⁵³`), with the computed `fl(Σ|a_i||b_i|)` enlarged by
//! `1/(1 − γ_n)` (taken as a factor 2 on `γ_n`) and an underflow term `n·2⁻¹⁰⁷⁴`; the error,
//! times the largest magnitude of the value it multiplies, is subtracted from `acc`. Scalar
//! steps use [`up`] and [`down`]: a double result `r` of one operation differs from the real
//! one `t` by at most half an ulp, so `next_down(r) ≤ t ≤ next_up(r)` (also at binade edges,
//! in the subnormal range, and at overflow, where `r` is infinite). An interval product is
//! rounded outward the same way. A NaN or infinity anywhere makes the final comparison
//! `bound ≥ claim` false, so it can only cause a rejection.

use ndarray::{Array1, Array2, ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::ir::{Graph, Op};

/// The smallest double `≥ x` that is not `x` (`x` itself for ±∞ and NaN).
#[inline]
pub fn up(x: f64) -> f64 {
    x.next_up()
}

/// The largest double `≤ x` that is not `x`.
#[inline]
pub fn down(x: f64) -> f64 {
    x.next_down()
}

/// `γ_n = n·u/(1 − n·u)` rounded up, doubled (module docs), for dot products of length `n`.
pub(super) fn gamma2(n: usize) -> f64 {
    let nu = up(n as f64 * f64::EPSILON * 0.5);
    up(2.0 * up(nu / down(1.0 - nu)))
}

/// Underflow allowance of a dot product of length `n`.
pub(super) fn eta(n: usize) -> f64 {
    up(n as f64 * 5e-324)
}

/// An outward enclosure of the product of the intervals `[a, b]` and `[c, d]`.
fn imul(a: f64, b: f64, c: f64, d: f64) -> (f64, f64) {
    let p = [a * c, a * d, b * c, b * d];
    let lo = p.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if p.iter().any(|v| v.is_nan()) {
        return (f64::NAN, f64::NAN);
    }
    (down(lo), up(hi))
}

/// The S-shaped activations: increasing, with a derivative that increases up to 0 and
/// decreases after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Squash {
    Tanh,
    Sigmoid,
}

/// Relative error assumed of the platform's `tanh` and `exp` (the one assumption beyond
/// IEEE-754, stated in the README: accurate to 2⁻⁵⁰; widened here to 2⁻⁴⁵).
const LIBM_REL: f64 = 1.0 / (1u64 << 45) as f64;

/// `[lo, hi] ∋ f(x)` for the real function, from the platform's value widened by
/// [`LIBM_REL`] relative plus 2⁻¹⁰⁷⁰ absolute.
fn libm_widen(v: f64) -> (f64, f64) {
    let w = up(up(v.abs() * LIBM_REL) + f64::MIN_POSITIVE / (1u64 << 48) as f64);
    (down(v - w), up(v + w))
}

impl Squash {
    /// An enclosure of `f(x)`.
    fn enclose(self, x: f64) -> (f64, f64) {
        if x.is_nan() {
            return (f64::NAN, f64::NAN);
        }
        match self {
            Squash::Tanh => {
                let (lo, hi) = libm_widen(x.tanh());
                (lo.max(-1.0), hi.min(1.0))
            }
            Squash::Sigmoid => {
                let (elo, ehi) = libm_widen((-x).exp());
                let lo = if ehi.is_finite() {
                    down(1.0 / up(1.0 + ehi))
                } else {
                    0.0
                };
                let hi = up(1.0 / down(1.0 + elo.max(0.0)));
                (lo.max(0.0), hi.min(1.0))
            }
        }
    }

    /// A lower bound `≥ 0` of `f'(x)` (`1 − tanh²`, `σ(1 − σ)`).
    fn slope_below(self, x: f64) -> f64 {
        let (lo, hi) = self.enclose(x);
        let d = match self {
            Squash::Tanh => {
                let t = lo.abs().max(hi.abs());
                down(1.0 - up(t * t))
            }
            // σ(1 − σ) is concave in σ: its minimum over [lo, hi] is at an end.
            Squash::Sigmoid => down(lo * down(1.0 - lo)).min(down(hi * down(1.0 - hi))),
        };
        if d > 0.0 {
            d
        } else {
            0.0
        }
    }

    /// The relaxation on `[l, u]`: a slope `λ ≥ 0` below `f'` everywhere on `[l, u]`, and
    /// constants with `λz + c_lo ≤ f(z) ≤ λz + c_hi` there. Since `f'` is unimodal,
    /// `min f' = min(f'(l), f'(u))` on `[l, u]`, so `f(z) − λz` is non-decreasing and lies
    /// between its values at `l` and `u`.
    fn relax(self, l: f64, u: f64) -> (f64, f64, f64) {
        let lam = self.slope_below(l).min(self.slope_below(u));
        let (fl, _) = self.enclose(l);
        let (_, fu) = self.enclose(u);
        if lam == 0.0 || !(l.is_finite() && u.is_finite()) {
            return (0.0, fl, fu);
        }
        let (_, ql) = imul(lam, lam, l, l);
        let (pu, _) = imul(lam, lam, u, u);
        (lam, down(fl - ql), up(fu - pu))
    }
}

/// Most weights a convolution may unroll to (a dense matrix of `f64`: 400 MB).
const MAX_CONV_DENSE: usize = 50_000_000;

/// A convolution over one sample as the dense matrix and bias of the same linear map,
/// `[out_channels·H_out·W_out] × [in_channels·H·W]`, row-major in NCHW order (the checker's
/// own unrolling: every output position sums the kernel taps that land inside the input,
/// padding contributes zero).
fn conv_dense(
    c: &crate::ir::op::Conv2d,
    in_shape: &[usize],
    out_shape: &[usize],
    node: &str,
) -> Result<(Array2<f64>, Array1<f64>)> {
    let bad = |m: String| Error::Invalid(format!("node `{node}`: {m}"));
    let ([1, ci, h, w], [1, co, ho, wo]) = (in_shape, out_shape) else {
        return Err(bad(format!(
            "check-cert takes convolutions of one NCHW sample, not {in_shape:?} -> {out_shape:?}"
        )));
    };
    let (ci, h, w, co, ho, wo) = (*ci, *h, *w, *co, *ho, *wo);
    let wt = &c.weight;
    let (kh, kw) = (wt.shape()[2], wt.shape()[3]);
    let group = c.group.max(1);
    let cig = wt.shape()[1];
    if wt.shape()[0] != co || cig * group != ci || co % group != 0 {
        return Err(bad(
            "convolution weights do not match its input and output".into()
        ));
    }
    let (rows, cols) = (co * ho * wo, ci * h * w);
    if rows.saturating_mul(cols) > MAX_CONV_DENSE {
        return Err(bad(format!(
            "the convolution unrolls to {rows}x{cols} weights, more than check-cert takes"
        )));
    }
    let mut m = Array2::<f64>::zeros((rows, cols));
    let cog = co / group;
    for oc in 0..co {
        let g = oc / cog;
        for oy in 0..ho {
            for ox in 0..wo {
                let r = (oc * ho + oy) * wo + ox;
                for icg in 0..cig {
                    let ic = g * cig + icg;
                    for ky in 0..kh {
                        let iy =
                            (oy * c.strides[0] + ky * c.dilations[0]) as isize - c.pads[0] as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * c.strides[1] + kx * c.dilations[1]) as isize
                                - c.pads[1] as isize;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let col = (ic * h + iy as usize) * w + ix as usize;
                            m[[r, col]] += wt[[oc, icg, ky, kx]];
                        }
                    }
                }
            }
        }
    }
    let b = match &c.bias {
        Some(b) if b.len() == co => Array1::from_shape_fn(rows, |r| b[r / (ho * wo)]),
        Some(_) => {
            return Err(bad(
                "the convolution bias does not match its channels".into()
            ))
        }
        None => Array1::zeros(rows),
    };
    Ok((m, b))
}

/// An enclosure `[lo, hi]` of the real BatchNorm factor `scale/√(var + ε)` that does not
/// straddle 0, or `None` when `var + ε` may be ≤ 0 or a parameter is not finite.
fn bn_factor(scale: f64, var: f64, eps: f64) -> Option<(f64, f64)> {
    if !(scale.is_finite() && var.is_finite() && eps.is_finite()) {
        return None;
    }
    let s = var + eps;
    let (slo, shi) = (down(s), up(s));
    if slo.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !shi.is_finite() {
        return None;
    }
    // sqrt is correctly rounded: one step outward encloses the real root.
    let (rlo, rhi) = (down(slo.sqrt()), up(shi.sqrt()));
    if rlo.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    Some(if scale == 0.0 {
        (0.0, 0.0)
    } else if scale > 0.0 {
        (down(scale / rhi).max(0.0), up(scale / rlo))
    } else {
        (down(scale / rlo), up(scale / rhi).min(0.0))
    })
}

/// Interval bounds of a value, elementwise.
#[derive(Clone, Debug)]
struct Bounds {
    lo: Vec<f64>,
    hi: Vec<f64>,
}

/// Interval bounds of every value of the network over a box (index 0: the input; `k`: the
/// output of layer `k − 1`). Those of a box hold on every box inside it.
#[derive(Clone, Debug)]
pub struct Enclosure(Vec<Bounds>);

impl Enclosure {
    /// The largest magnitude of each output.
    pub fn output_magnitude(&self) -> Vec<f64> {
        self.0.last().map_or(Vec::new(), |b| b.magnitude().to_vec())
    }
}

impl Bounds {
    /// Intersects with other bounds of the same value (a NaN end is replaced).
    fn intersect(&mut self, o: &Bounds) {
        for (a, b) in self.lo.iter_mut().zip(&o.lo) {
            if a.is_nan() || *a < *b {
                *a = *b;
            }
        }
        for (a, b) in self.hi.iter_mut().zip(&o.hi) {
            if a.is_nan() || *a > *b {
                *a = *b;
            }
        }
    }

    /// The largest magnitude of each scalar.
    fn magnitude(&self) -> Array1<f64> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(l, h)| l.abs().max(h.abs()))
            .collect()
    }
}

/// One layer of the checker's network.
enum Layer {
    /// `y = W x + b`.
    Linear {
        w: Array2<f64>,
        b: Array1<f64>,
    },
    Relu,
    /// `tanh` or the logistic sigmoid, elementwise.
    Squash(Squash),
    /// Elementwise `y = x + c`.
    Add(Vec<f64>),
    /// Elementwise `y = x · [sl, sh]` (an enclosure of the real factor, never straddling 0).
    Scale(Vec<(f64, f64)>),
}

/// The network as the checker sees it.
pub struct Net {
    layers: Vec<Layer>,
    pub inputs: usize,
    pub outputs: usize,
}

fn broadcast(c: &ArrayD<f64>, shape: &[usize], node: &str) -> Result<Vec<f64>> {
    let b = c.broadcast(IxDyn(shape)).ok_or_else(|| {
        Error::Invalid(format!(
            "node `{node}`: a constant does not broadcast to its value"
        ))
    })?;
    Ok(b.iter().copied().collect())
}

impl Net {
    /// The chain of layers of `graph`, or an error naming the first node it cannot take.
    pub fn new(graph: &Graph) -> Result<Net> {
        if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
            return Err(Error::Invalid(
                "check-cert needs a model with one input and one output".into(),
            ));
        }
        let mut cur = graph.inputs[0];
        let mut layers = Vec::new();
        for node in &graph.nodes {
            let name = &node.name;
            if node.inputs.len() != 1 || node.inputs[0] != cur {
                return Err(Error::Invalid(format!(
                    "check-cert supports chains of layers; node `{name}` ({}) does not read \
                     the previous node's output",
                    node.op.kind()
                )));
            }
            let shape = &graph.value(node.output).shape;
            let size = graph.value(node.output).size();
            let insize = graph.value(cur).size();
            match &node.op {
                Op::Linear { weight, bias } => {
                    if weight.ncols() != insize || weight.nrows() != size {
                        return Err(Error::Invalid(format!(
                            "check-cert supports Linear layers on one sample; node `{name}` \
                             is {}x{} on a value of {insize} scalars",
                            weight.nrows(),
                            weight.ncols()
                        )));
                    }
                    layers.push(Layer::Linear {
                        w: weight.clone(),
                        b: bias.clone().unwrap_or_else(|| Array1::zeros(size)),
                    });
                }
                Op::Relu => layers.push(Layer::Relu),
                Op::Tanh => layers.push(Layer::Squash(Squash::Tanh)),
                Op::Sigmoid => layers.push(Layer::Squash(Squash::Sigmoid)),
                Op::Reshape { .. } => {}
                Op::AddConst(c) => layers.push(Layer::Add(broadcast(c, shape, name)?)),
                Op::MulConst(c) => layers.push(Layer::Scale(
                    broadcast(c, shape, name)?
                        .into_iter()
                        .map(|v| (v, v))
                        .collect(),
                )),
                Op::DivConst(c) => {
                    let mut s = Vec::with_capacity(size);
                    for v in broadcast(c, shape, name)? {
                        if !(v != 0.0 && v.is_finite()) {
                            return Err(Error::Invalid(format!("node `{name}` divides by {v}")));
                        }
                        let r = 1.0 / v;
                        s.push((down(r), up(r)));
                    }
                    layers.push(Layer::Scale(s));
                }
                Op::Conv(c) => {
                    let (w, b) = conv_dense(c, &graph.value(cur).shape, shape, name)?;
                    layers.push(Layer::Linear { w, b });
                }
                Op::BatchNorm {
                    scale,
                    bias,
                    mean,
                    var,
                    epsilon,
                } => {
                    // y = κ·(x − mean) + bias per channel (axis 1), κ = scale/√(var + ε)
                    // enclosed: three exact-in-structure layers.
                    let channel = |i: usize| -> usize {
                        let inner: usize = shape.get(2..).map_or(1, |s| s.iter().product());
                        (i / inner.max(1)) % shape.get(1).copied().unwrap_or(1).max(1)
                    };
                    let c = shape.get(1).copied().unwrap_or(0);
                    if shape.len() < 2 || [scale, bias, mean, var].iter().any(|a| a.len() != c) {
                        return Err(Error::Invalid(format!(
                            "node `{name}`: BatchNorm parameters do not match the {c} channels \
                             of its value"
                        )));
                    }
                    let mut kappa = Vec::with_capacity(c);
                    for ch in 0..c {
                        kappa.push(bn_factor(scale[ch], var[ch], *epsilon).ok_or_else(|| {
                            Error::Invalid(format!(
                                "node `{name}`: BatchNorm channel {ch} has var + epsilon <= 0 \
                                 or a non-finite parameter"
                            ))
                        })?);
                    }
                    layers.push(Layer::Add((0..size).map(|i| -mean[channel(i)]).collect()));
                    layers.push(Layer::Scale((0..size).map(|i| kappa[channel(i)]).collect()));
                    layers.push(Layer::Add((0..size).map(|i| bias[channel(i)]).collect()));
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "check-cert supports Linear, Conv, BatchNorm, Relu, Tanh, Sigmoid, \
                         Reshape, AddConst, MulConst and DivConst layers; node `{name}` is {}",
                        other.kind()
                    )))
                }
            }
            if size != insize && !matches!(node.op, Op::Linear { .. } | Op::Conv(_)) {
                return Err(Error::Invalid(format!(
                    "node `{name}` changes the number of scalars"
                )));
            }
            cur = node.output;
        }
        if graph.outputs[0] != cur {
            return Err(Error::Invalid(
                "check-cert needs the model's output to be the last node's".into(),
            ));
        }
        Ok(Net {
            layers,
            inputs: graph.input_size(),
            outputs: graph.output_size(),
        })
    }

    /// Interval bounds of every value (index 0: the input; `k`: after layer `k − 1`), with
    /// the pre-activation bounds of every ReLU tightened by backward passes.
    pub fn bounds(&self, lo: &[f64], hi: &[f64], inherited: Option<&Enclosure>) -> Enclosure {
        let mut vals = vec![Bounds {
            lo: lo.to_vec(),
            hi: hi.to_vec(),
        }];
        for (k, layer) in self.layers.iter().enumerate() {
            let x = &vals[k];
            let mut next = match layer {
                Layer::Linear { w, b } => {
                    let (mut l, mut h) = (Vec::with_capacity(w.nrows()), Vec::new());
                    for (row, &bias) in w.rows().into_iter().zip(b) {
                        let (mut sl, mut sh) = (bias, bias);
                        for ((&wv, &xl), &xh) in row.iter().zip(&x.lo).zip(&x.hi) {
                            let (p, q) = imul(wv, wv, xl, xh);
                            sl = down(sl + p);
                            sh = up(sh + q);
                        }
                        l.push(sl);
                        h.push(sh);
                    }
                    Bounds { lo: l, hi: h }
                }
                Layer::Relu => Bounds {
                    lo: x.lo.iter().map(|v| v.max(0.0)).collect(),
                    hi: x.hi.iter().map(|v| v.max(0.0)).collect(),
                },
                // Increasing: the ends map to the ends.
                Layer::Squash(f) => Bounds {
                    lo: x.lo.iter().map(|&v| f.enclose(v).0).collect(),
                    hi: x.hi.iter().map(|&v| f.enclose(v).1).collect(),
                },
                Layer::Add(c) => Bounds {
                    lo: x.lo.iter().zip(c).map(|(v, c)| down(v + c)).collect(),
                    hi: x.hi.iter().zip(c).map(|(v, c)| up(v + c)).collect(),
                },
                Layer::Scale(s) => {
                    let p: Vec<(f64, f64)> = (0..s.len())
                        .map(|j| imul(x.lo[j], x.hi[j], s[j].0, s[j].1))
                        .collect();
                    Bounds {
                        lo: p.iter().map(|q| q.0).collect(),
                        hi: p.iter().map(|q| q.1).collect(),
                    }
                }
            };
            // Bounds over a box containing this one hold here too.
            if let Some(e) = inherited {
                next.intersect(&e.0[k + 1]);
            }
            // A layer feeding a ReLU (a Linear, or the last step of a BatchNorm or elementwise
            // constant after one): its unstable neurons again, backward.
            let feeds = self.layers.get(k + 1);
            let activation = !matches!(layer, Layer::Relu | Layer::Squash(_));
            if activation && matches!(feeds, Some(Layer::Relu | Layer::Squash(_))) {
                // ReLU: the neurons whose sign is open; tanh/sigmoid: every neuron (the
                // relaxation's slope and constants depend on both ends).
                let squash = matches!(feeds, Some(Layer::Squash(_)));
                let unstable: Vec<usize> = (0..next.lo.len())
                    .filter(|&j| squash || (next.lo[j] < 0.0 && next.hi[j] > 0.0))
                    .collect();
                if !unstable.is_empty() {
                    let n = next.lo.len();
                    let m = unstable.len();
                    let mut rows = Array2::zeros((2 * m, n));
                    for (r, &j) in unstable.iter().enumerate() {
                        rows[[r, j]] = 1.0;
                        rows[[m + r, j]] = -1.0;
                    }
                    let (b, _) = self.backward(&vals, k + 1, rows);
                    for (r, &j) in unstable.iter().enumerate() {
                        if b[r] > next.lo[j] {
                            next.lo[j] = b[r];
                        }
                        if -b[m + r] < next.hi[j] {
                            next.hi[j] = -b[m + r];
                        }
                    }
                }
            }
            vals.push(next);
        }
        Enclosure(vals)
    }

    /// Lower bounds of `rows · v_end` over the box, where `v_end = vals[end]`, from the
    /// bounds `vals[..end]`, and each row's input coefficients (module docs).
    fn backward(&self, vals: &[Bounds], end: usize, rows: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
        let m = rows.nrows();
        let mut lam = rows;
        let mut acc = vec![0.0f64; m];
        for k in (0..end).rev() {
            let below = &vals[k];
            match &self.layers[k] {
                Layer::Linear { w, b } => {
                    // Λ·b, rigorously from below.
                    let n_out = w.nrows();
                    let lb = lam.dot(b);
                    let lab = lam.mapv(f64::abs).dot(&b.mapv(f64::abs));
                    let (g, e) = (gamma2(n_out), eta(n_out));
                    for i in 0..m {
                        acc[i] = down(acc[i] + down(lb[i] - up(up(g * lab[i]) + e)));
                    }
                    // Λ' = fl(ΛW); its error times the magnitude of h.
                    let next = lam.dot(w);
                    let abs = lam.mapv(f64::abs).dot(&w.mapv(f64::abs));
                    let mag = below.magnitude();
                    let err = abs.dot(&mag);
                    for i in 0..m {
                        let t = up(up(g * err[i]) + up(e * mag.sum()));
                        // The product `abs · mag` itself, rounded: enlarged the same way.
                        let t = up(t + up(gamma2(mag.len()) * t) + eta(mag.len()));
                        acc[i] = down(acc[i] - t);
                    }
                    lam = next;
                }
                Layer::Relu => {
                    let (l, u) = (&below.lo, &below.hi);
                    for i in 0..m {
                        for j in 0..l.len() {
                            let lv = lam[[i, j]];
                            if lv == 0.0 || l[j] >= 0.0 {
                                continue;
                            }
                            if u[j] <= 0.0 {
                                lam[[i, j]] = 0.0;
                            } else if lv > 0.0 {
                                if u[j] < -l[j] {
                                    lam[[i, j]] = 0.0;
                                }
                            } else {
                                // λ·relu(z) ≥ λ·s·(z − l), λ < 0, s ≥ u/(u − l).
                                let s = up(u[j] / down(u[j] - l[j]));
                                let (p, q) = imul(lv, lv, s, s);
                                let pick = lv * s;
                                // (λs − pick)·z ≥ −(q − p)·|z|max; −λ s l ≥ p·(−l).
                                let zmax = l[j].abs().max(u[j].abs());
                                let err = up(up(q - p) * zmax);
                                let konst = down(p * -l[j]);
                                acc[i] = down(down(acc[i] + konst) - err);
                                lam[[i, j]] = pick;
                            }
                        }
                    }
                }
                Layer::Squash(f) => {
                    let (l, u) = (&below.lo, &below.hi);
                    let relax: Vec<(f64, f64, f64)> =
                        (0..l.len()).map(|j| f.relax(l[j], u[j])).collect();
                    for i in 0..m {
                        for (j, &(slope, c_lo, c_hi)) in relax.iter().enumerate() {
                            let lv = lam[[i, j]];
                            if lv == 0.0 {
                                continue;
                            }
                            // λ·f(z) ≥ λ·slope·z + λ·c, c = c_lo for λ > 0, c_hi for λ < 0.
                            let c = if lv > 0.0 { c_lo } else { c_hi };
                            let (konst, _) = imul(lv, lv, c, c);
                            if slope == 0.0 {
                                acc[i] = down(acc[i] + konst);
                                lam[[i, j]] = 0.0;
                                continue;
                            }
                            let (p, q) = imul(lv, lv, slope, slope);
                            let pick = lv * slope;
                            let zmax = l[j].abs().max(u[j].abs());
                            let err = if q == p { 0.0 } else { up(up(q - p) * zmax) };
                            acc[i] = down(down(acc[i] + konst) - err);
                            lam[[i, j]] = pick;
                        }
                    }
                }
                Layer::Add(c) => {
                    for i in 0..m {
                        let mut s = acc[i];
                        for (j, &cv) in c.iter().enumerate() {
                            let (p, _) = imul(lam[[i, j]], lam[[i, j]], cv, cv);
                            s = down(s + p);
                        }
                        acc[i] = s;
                    }
                }
                Layer::Scale(sc) => {
                    let mag = below.magnitude();
                    for i in 0..m {
                        for (j, &(sl, sh)) in sc.iter().enumerate() {
                            let lv = lam[[i, j]];
                            let (p, q) = imul(lv, lv, sl, sh);
                            acc[i] = down(acc[i] - up(up(q - p) * mag[j]));
                            lam[[i, j]] = p;
                        }
                    }
                }
            }
        }
        let x = &vals[0];
        for i in 0..m {
            let mut s = acc[i];
            for j in 0..x.lo.len() {
                let a = lam[[i, j]];
                let t = if a >= 0.0 {
                    down(a * x.lo[j])
                } else {
                    down(a * x.hi[j])
                };
                s = down(s + t);
            }
            acc[i] = s;
        }
        (acc, lam)
    }

    /// For every row `c` of `rows` (over the outputs), a lower bound of `c·N(x)` over the box
    /// `[lo, hi]` and the input coefficients of the linear bound behind it.
    pub fn lower_rows(&self, lo: &[f64], hi: &[f64], rows: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
        let e = self.bounds(lo, hi, None);
        self.lower_rows_in(&e, rows)
    }

    /// [`Net::lower_rows`] from the enclosure of the box computed by [`Net::bounds`].
    pub fn lower_rows_in(&self, e: &Enclosure, rows: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
        self.backward(&e.0, self.layers.len(), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_steps_are_strict() {
        assert!(up(1.0) > 1.0 && down(1.0) < 1.0);
        assert!(up(0.0) > 0.0 && down(0.0) < 0.0);
        assert_eq!(up(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn bounds_enclose_a_tiny_relu_net() {
        // y = relu(x0 - x1) - relu(x1) + 0.5, on [-1, 1]^2.
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let w1 = ndarray::arr2(&[[1.0, -1.0], [0.0, 1.0]]);
        let lin = |weight, bias| Op::Linear { weight, bias };
        let h = g.add_node("l1", lin(w1, None), vec![x], "h").unwrap();
        let r = g.add_node("r", Op::Relu, vec![h], "r").unwrap();
        let w2 = ndarray::arr2(&[[1.0, -1.0]]);
        let b2 = Some(ndarray::arr1(&[0.5]));
        let y = g.add_node("l2", lin(w2, b2), vec![r], "y").unwrap();
        g.add_output(y);
        let net = Net::new(&g).unwrap();
        let (lo, hi) = ([-1.0, -1.0], [1.0, 1.0]);
        let (b, _) = net.lower_rows(&lo, &hi, ndarray::arr2(&[[1.0], [-1.0]]));
        for i in 0..=20 {
            for j in 0..=20 {
                let (a, c) = (-1.0 + 0.1 * i as f64, -1.0 + 0.1 * j as f64);
                let v = (a - c).max(0.0) - c.max(0.0) + 0.5;
                assert!(b[0] <= v && v <= -b[1], "{v} not in [{}, {}]", b[0], -b[1]);
            }
        }
        // The true range is [-0.5, 2.5]; the relaxation is not absurdly loose.
        assert!(b[0] > -3.0 && -b[1] < 6.0, "{b:?}");
    }

    /// A random chain `Linear (ReLU Linear)*` with an AddConst and a DivConst in front.
    fn random_mlp(rng: &mut rand::rngs::StdRng, widths: &[usize]) -> Graph {
        use rand::Rng;
        let mut g = Graph::new();
        let mut v = g.add_input("x", vec![1, widths[0]]);
        let c = ndarray::Array1::from_shape_fn(widths[0], |_| rng.random_range(-1.0..1.0));
        v = g
            .add_node("add", Op::AddConst(c.into_dyn()), vec![v], "a")
            .unwrap();
        let c = ndarray::Array1::from_shape_fn(widths[0], |_| rng.random_range(0.5..3.0));
        v = g
            .add_node("div", Op::DivConst(c.into_dyn()), vec![v], "d")
            .unwrap();
        for (k, w) in widths.windows(2).enumerate() {
            if k > 0 {
                v = g
                    .add_node(format!("r{k}"), Op::Relu, vec![v], format!("r{k}"))
                    .unwrap();
            }
            let weight = Array2::from_shape_fn((w[1], w[0]), |_| rng.random_range(-1.0..1.0));
            let bias = Some(Array1::from_shape_fn(w[1], |_| rng.random_range(-0.5..0.5)));
            let op = Op::Linear { weight, bias };
            v = g
                .add_node(format!("l{k}"), op, vec![v], format!("l{k}"))
                .unwrap();
        }
        g.add_output(v);
        g
    }

    /// `[1,2,6,5] → Conv(3, 3x3, stride (2,1), pads, group) → BatchNorm → Relu → Reshape →
    /// Linear 2`, random weights.
    fn random_cnn(rng: &mut rand::rngs::StdRng, group: usize, pads: [usize; 4]) -> Graph {
        use rand::Rng;
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2, 6, 5]);
        let co = 2 * group;
        let conv = crate::ir::Conv2d {
            weight: ndarray::Array4::from_shape_fn((co, 2 / group, 3, 3), |_| {
                rng.random_range(-1.0..1.0)
            }),
            bias: Some(Array1::from_shape_fn(co, |_| rng.random_range(-0.5..0.5))),
            strides: [2, 1],
            pads,
            dilations: [1, 1],
            group,
        };
        let c = g.add_node("conv", Op::Conv(conv), vec![x], "c").unwrap();
        let bn = Op::BatchNorm {
            scale: Array1::from_shape_fn(co, |_| rng.random_range(-2.0..2.0)),
            bias: Array1::from_shape_fn(co, |_| rng.random_range(-0.5..0.5)),
            mean: Array1::from_shape_fn(co, |_| rng.random_range(-0.5..0.5)),
            var: Array1::from_shape_fn(co, |_| rng.random_range(0.1..3.0)),
            epsilon: 1e-5,
        };
        let b = g.add_node("bn", bn, vec![c], "b").unwrap();
        let r = g.add_node("relu", Op::Relu, vec![b], "r").unwrap();
        let n = g.value(r).size();
        let f = g
            .add_node("flat", Op::Reshape { shape: vec![1, n] }, vec![r], "f")
            .unwrap();
        let weight = Array2::from_shape_fn((2, n), |_| rng.random_range(-1.0..1.0));
        let y = g
            .add_node("fc", Op::Linear { weight, bias: None }, vec![f], "y")
            .unwrap();
        g.add_output(y);
        g
    }

    #[test]
    fn conv_and_batchnorm_bounds_contain_sampled_outputs() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..24 {
            let (group, pads) = match case % 3 {
                0 => (1, [0, 0, 0, 0]),
                1 => (1, [1, 0, 1, 2]),
                _ => (2, [1, 1, 1, 1]),
            };
            let g = random_cnn(&mut rng, group, pads);
            let net = Net::new(&g).unwrap();
            let d = g.input_size();
            let lo: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..0.5)).collect();
            let hi: Vec<f64> = lo.iter().map(|l| l + rng.random_range(0.0..0.3)).collect();
            // Point boxes: the bound is (nearly) the exact value, so a wrong unrolling fails.
            let x = Array2::from_shape_fn((300, d), |(r, i)| match r {
                0 => lo[i],
                1 => hi[i],
                _ => rng.random_range(lo[i]..=hi[i]),
            });
            let y = crate::eval::forward_f64(&g, x.view()).unwrap();
            let rows = ndarray::arr2(&[[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]);
            let (b, _) = net.lower_rows(&lo, &hi, rows.clone());
            for (r, yr) in y.rows().into_iter().enumerate() {
                for (k, row) in rows.rows().into_iter().enumerate() {
                    let v: f64 = row.iter().zip(yr.iter()).map(|(c, y)| c * y).sum();
                    assert!(
                        b[k] <= v + 1e-9 * (1.0 + v.abs()),
                        "case {case}: {} > {v}",
                        b[k]
                    );
                }
                if r < 2 {
                    let pt: Vec<f64> = x.row(r).to_vec();
                    let (bp, _) = net.lower_rows(&pt, &pt, rows.clone());
                    for (k, row) in rows.rows().into_iter().enumerate() {
                        let v: f64 = row.iter().zip(yr.iter()).map(|(c, y)| c * y).sum();
                        let tol = 1e-9 * (1.0 + v.abs());
                        assert!(
                            bp[k] <= v + tol && bp[k] >= v - 1e-6 * (1.0 + v.abs()),
                            "case {case} point {r}: bound {} vs value {v}",
                            bp[k]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tanh_and_sigmoid_bounds_contain_sampled_outputs() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for case in 0..40 {
            let mut g = random_mlp(&mut rng, &[3, 8, 8, 2]);
            // Replace the ReLUs by tanh / sigmoid.
            for node in g.nodes.iter_mut() {
                if matches!(node.op, Op::Relu) {
                    node.op = if case % 2 == 0 { Op::Tanh } else { Op::Sigmoid };
                }
            }
            let net = Net::new(&g).unwrap();
            let lo: Vec<f64> = (0..3).map(|_| rng.random_range(-2.0..1.0)).collect();
            let w = if case < 20 { 0.05 } else { 1.5 };
            let hi: Vec<f64> = lo.iter().map(|l| l + rng.random_range(0.0..w)).collect();
            let rows = ndarray::arr2(&[[1.0, 0.0], [-1.0, 0.0], [1.0, -1.0], [0.0, -1.0]]);
            let (b, _) = net.lower_rows(&lo, &hi, rows.clone());
            let x = Array2::from_shape_fn((400, 3), |(r, i)| match r {
                0 => lo[i],
                1 => hi[i],
                _ => rng.random_range(lo[i]..=hi[i]),
            });
            let y = crate::eval::forward_f64(&g, x.view()).unwrap();
            let mut gap = f64::INFINITY;
            for yr in y.rows() {
                for (k, row) in rows.rows().into_iter().enumerate() {
                    let v: f64 = row.iter().zip(yr.iter()).map(|(c, y)| c * y).sum();
                    assert!(
                        b[k] <= v + 1e-9 * (1.0 + v.abs()),
                        "case {case}: {} > {v}",
                        b[k]
                    );
                    gap = gap.min(v - b[k]);
                }
            }
            // On narrow boxes the relaxation is tight: the closest sample is near the bound.
            if case < 20 {
                assert!(gap < 0.05, "case {case}: loose by {gap}");
            }
        }
    }

    #[test]
    fn squash_relaxation_holds_at_the_ends_and_between() {
        for f in [Squash::Tanh, Squash::Sigmoid] {
            for &(l, u) in &[
                (-3.0, -1.0),
                (-1.0, 2.0),
                (0.5, 4.0),
                (-30.0, 30.0),
                (1.0, 1.0),
            ] {
                let (slope, c_lo, c_hi) = f.relax(l, u);
                assert!(slope >= 0.0);
                for k in 0..=100 {
                    let z = l + (u - l) * k as f64 / 100.0;
                    let v = match f {
                        Squash::Tanh => z.tanh(),
                        Squash::Sigmoid => 1.0 / (1.0 + (-z).exp()),
                    };
                    assert!(
                        slope * z + c_lo <= v && v <= slope * z + c_hi,
                        "{f:?} [{l}, {u}] at {z}"
                    );
                }
            }
        }
    }

    #[test]
    fn batchnorm_factor_encloses_the_real_value() {
        for &(scale, var, eps) in &[
            (2.0, 3.0, 1e-5),
            (-0.7, 0.25, 0.0),
            (1.0, 1e-300, 1e-300),
            (0.0, 1.0, 1e-5),
            (3.0, 4.0, 0.0),
        ] {
            let (lo, hi) = bn_factor(scale, var, eps).unwrap();
            let k = scale / (var + eps).sqrt();
            assert!(
                lo <= k && k <= hi,
                "{scale} {var} {eps}: {k} not in [{lo}, {hi}]"
            );
            assert!(lo >= 0.0 || hi <= 0.0, "straddles 0: [{lo}, {hi}]");
        }
        assert!(bn_factor(1.0, -1.0, 0.5).is_none());
        assert!(bn_factor(1.0, 0.0, 0.0).is_none());
        assert!(bn_factor(f64::NAN, 1.0, 0.0).is_none());
    }

    #[test]
    fn bounds_contain_sampled_outputs_of_random_networks() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..40 {
            let g = random_mlp(&mut rng, &[3, 8, 8, 8, 2]);
            let net = Net::new(&g).unwrap();
            let lo: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..0.5)).collect();
            let hi: Vec<f64> = lo.iter().map(|l| l + rng.random_range(0.0..0.8)).collect();
            let rows = ndarray::arr2(&[[1.0, 0.0], [-1.0, 0.0], [1.0, -1.0], [0.0, -1.0]]);
            let e = net.bounds(&lo, &hi, None);
            let (b, _) = net.lower_rows_in(&e, rows.clone());
            // A sub-box with the enclosure inherited is at least as tight and still sound.
            let mid: Vec<f64> = lo.iter().zip(&hi).map(|(l, h)| l + 0.5 * (h - l)).collect();
            let ec = net.bounds(&lo, &mid, Some(&e));
            let (bc, _) = net.lower_rows_in(&ec, rows.clone());
            let x = Array2::from_shape_fn((400, 3), |(_, i)| {
                if rng.random_bool(0.2) {
                    if rng.random_bool(0.5) {
                        lo[i]
                    } else {
                        hi[i]
                    }
                } else {
                    rng.random_range(lo[i]..=hi[i])
                }
            });
            let y = crate::eval::forward_f64(&g, x.view()).unwrap();
            for (r, yr) in y.rows().into_iter().enumerate() {
                let inside_half = (0..3).all(|i| x[[r, i]] <= mid[i]);
                for (k, row) in rows.rows().into_iter().enumerate() {
                    let v: f64 = row.iter().zip(yr.iter()).map(|(c, y)| c * y).sum();
                    let slack = 1e-9 * (1.0 + v.abs());
                    assert!(b[k] <= v + slack, "case {case} row {k}: {} > {v}", b[k]);
                    if inside_half {
                        assert!(
                            bc[k] <= v + slack,
                            "case {case} half row {k}: {} > {v}",
                            bc[k]
                        );
                    }
                }
            }
        }
    }
}
