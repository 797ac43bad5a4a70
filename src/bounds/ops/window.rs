//! Bound rules of the windowed and per-channel ops: Conv, AveragePool, GlobalAveragePool,
//! MaxPool and BatchNorm (inference). In: the op, the enclosure `x` of its input (flattened
//! row-major over the per-sample shape) and, backward, the coefficients `lam` on its output.
//! Out: the interval image, or the coefficients on the input plus bias and rounding allowance
//! in `Accum` (convention in `ops`). Every step is sound by the two facts of `rounding`.
//!
//! - **Conv** is a sparse linear map: per output scalar a *stencil* of (input, weight) taps.
//!   Interval: centre/radius, `w·c` enclosed by `dot_down`/`dot_up`, radius `abs_dot_up(w, r)`.
//!   Backward: the transposed convolution `lam_in[i, j] = Σ lam[i, o] w_t`, one recursive sum
//!   of at most `k` products per entry (`k` = most taps landing on one input), so its error is
//!   `≤ γ_k Σ |lam_io| |w_t| + k η`; against `|x_j| ≤ m_j` that is at most
//!   `γ_k Σ_o |lam_io| (|W| m)_o + η Σ_o Σ_t m_j` per row, charged to `err`. The bias enters
//!   with `acc.add` and the γ-bound of its dot product.
//! - **AveragePool / GlobalAveragePool** (ONNX divisor, `count_include_pad`): increasing maps,
//!   so the interval is `[fl↓(Σ lo) ÷↓ d, fl↑(Σ hi) ÷↑ d]`. Backward uses `lam / d` (no `1/d`
//!   is formed: a quotient has the same error model as a product), charged as for Conv with
//!   `(|W| m)_o` replaced by an upper bound of `Σ m_j / d_o`.
//! - **MaxPool** (padding ignored): interval `[max lo, max hi]`, exact. Backward per window: if
//!   the input `k` with the largest lower bound has `lo_k ≥ hi_j` for every other tap, then
//!   `y = x_k` on the box; otherwise `x_k ≤ y ≤ max_j hi_j` (the max is at least any element
//!   and at most the largest upper bound). A lower-bound row takes the lower line where
//!   `lam ≥ 0` and the constant upper line where `lam < 0`. Overlapping windows add slopes of 1
//!   (a sum of `k` floats, error `γ_{k−1} Σ|terms|`); constants go through `acc.add`.
//! - **BatchNorm**: `y = κ (x − μ) + β` with `κ = scale / sqrt(var + eps)` irrational. A
//!   rigorous `[κ_lo, κ_hi]` comes from directed `var + eps`, `next_down`/`next_up` of the
//!   correctly rounded `sqrt`, and directed division. Interval: exact interval product with
//!   outward rounding. Backward: coefficient `r = fl(lam · κ̃)` for the midpoint `κ̃`, constant
//!   `Σ (−r μ + lam β)` via `acc.add`; the exact term `lam κ (x − μ)` differs from
//!   `r (x − μ)` by at most `(|lam| ρ + 2u|r| + η) · D_j`, where `ρ ≥ |κ − κ̃|` and
//!   `D_j ≥ |x_j − μ|` from the enclosure of `x`, charged to `err`.

use ndarray::Array2;

use super::{unsupported, Accum};
use crate::bounds::rounding::{
    abs_dot_up, add_down, add_up, centre_radius, div_down, div_up, dot_down, dot_error, dot_up,
    down, gamma, inflate_sum, mul_down, mul_up, sub_down, sub_up, up, ETA, UNIT_ROUNDOFF,
};
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::op::window_output_len;
use crate::ir::{Conv2d, Graph, Node, Op, Pool2d};

/// A windowed op as a sparse map: for every output scalar (row-major), its taps
/// `(input index, weight index)`; for average pools, the divisor of each output.
struct Stencil {
    taps: Vec<Vec<(usize, usize)>>,
    divisor: Vec<f64>,
    n_in: usize,
    /// Output scalars per output channel (to find an output's channel).
    plane: usize,
}

/// Window geometry along the two spatial axes (ONNX semantics, as in `eval`).
struct Window {
    kernel: [usize; 2],
    strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pads: [usize; 4],
    dilations: [usize; 2],
    ceil_mode: bool,
}

impl Window {
    fn out_len(&self, node: &Node, ax: usize, len: usize) -> Result<usize> {
        let (k, s, d) = (self.kernel[ax], self.strides[ax], self.dilations[ax]);
        let (pb, pe) = (self.pads[ax], self.pads[ax + 2]);
        window_output_len(len, k, s, pb, pe, d, self.ceil_mode).map_err(|e| unsupported(node, &e))
    }

    /// Along axis `ax`: the input index of tap `k` of output `o` if inside the input, and
    /// whether the tap lies inside the padded extent.
    fn tap(&self, ax: usize, o: usize, k: usize, len: usize) -> (Option<usize>, bool) {
        let pb = self.pads[ax] as isize;
        let p = (o * self.strides[ax] + k * self.dilations[ax]) as isize - pb;
        let inside = p >= 0 && (p as usize) < len;
        let padded = p >= -pb && p < (len + self.pads[ax + 2]) as isize;
        (inside.then_some(p as usize), padded)
    }
}

/// The stencil of a grouped windowed map over a `[n, ch, h, w]` input: `oc` output channels,
/// `cg` input channels per group, `og` output channels per group (a pool is the grouped map
/// with `cg = og = 1`). Also returns, per output, the number of taps in the padded extent.
fn build(
    node: &Node,
    [n, ch, h, w]: [usize; 4],
    win: &Window,
    oc: usize,
    cg: usize,
    og: usize,
) -> Result<(Stencil, Vec<usize>)> {
    let [kh, kw] = win.kernel;
    let (ho, wo) = (win.out_len(node, 0, h)?, win.out_len(node, 1, w)?);
    let mut taps = Vec::with_capacity(n * oc * ho * wo);
    let mut padded = Vec::with_capacity(n * oc * ho * wo);
    for img in 0..n {
        for o in 0..oc {
            for (oi, oj) in (0..ho).flat_map(|i| (0..wo).map(move |j| (i, j))) {
                let mut t = Vec::with_capacity(cg * kh * kw);
                let mut pad_count = 0;
                for ci in 0..cg {
                    let xc = (o / og) * cg + ci;
                    for ki in 0..kh {
                        let (a, pa) = win.tap(0, oi, ki, h);
                        for kj in 0..kw {
                            let (b, pb) = win.tap(1, oj, kj, w);
                            pad_count += (pa && pb) as usize;
                            if let (Some(a), Some(b)) = (a, b) {
                                let wi = ((o * cg + ci) * kh + ki) * kw + kj;
                                t.push((((img * ch + xc) * h + a) * w + b, wi));
                            }
                        }
                    }
                }
                taps.push(t);
                padded.push(pad_count);
            }
        }
    }
    let st = Stencil {
        taps,
        divisor: Vec::new(),
        n_in: n * ch * h * w,
        plane: ho * wo,
    };
    Ok((st, padded))
}

fn dims4(graph: &Graph, node: &Node) -> Result<[usize; 4]> {
    match graph.value(node.inputs[0]).shape[..] {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(unsupported(node, "needs a [N, C, H, W] input")),
    }
}

fn conv_stencil(graph: &Graph, node: &Node, c: &Conv2d) -> Result<Stencil> {
    let dims = dims4(graph, node)?;
    let (oc, cg, kh, kw) = c.weight.dim();
    if c.group == 0 || dims[1] != cg * c.group || oc % c.group != 0 {
        return Err(unsupported(node, "weight shape does not match the groups"));
    }
    let win = Window {
        kernel: [kh, kw],
        strides: c.strides,
        pads: c.pads,
        dilations: c.dilations,
        ceil_mode: false,
    };
    Ok(build(node, dims, &win, oc, cg, oc / c.group)?.0)
}

/// The stencil of a pool (`GlobalAveragePool` is the pool whose window is the whole plane).
fn pool_stencil(graph: &Graph, node: &Node, p: &Pool2d, average: bool) -> Result<Stencil> {
    let dims = dims4(graph, node)?;
    let win = Window {
        kernel: p.kernel,
        strides: p.strides,
        pads: p.pads,
        dilations: p.dilations,
        ceil_mode: p.ceil_mode,
    };
    let (mut st, padded) = build(node, dims, &win, dims[1], 1, 1)?;
    for (t, pc) in st.taps.iter().zip(padded) {
        let d = if p.count_include_pad { pc } else { t.len() };
        if t.is_empty() || d == 0 {
            return Err(unsupported(
                node,
                "a pooling window lies entirely in the padding",
            ));
        }
        if average {
            st.divisor.push(d as f64);
        }
    }
    Ok(st)
}

fn global_pool(graph: &Graph, node: &Node) -> Result<Stencil> {
    let [_, _, h, w] = dims4(graph, node)?;
    let p = Pool2d {
        kernel: [h, w],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    pool_stencil(graph, node, &p, true)
}

/// The stencil of a linear windowed op, checked against the graph's shapes.
fn stencil(graph: &Graph, node: &Node, n_in: usize) -> Result<Stencil> {
    let st = match &node.op {
        Op::Conv(c) => conv_stencil(graph, node, c)?,
        Op::AveragePool(p) => pool_stencil(graph, node, p, true)?,
        Op::MaxPool(p) => pool_stencil(graph, node, p, false)?,
        Op::GlobalAveragePool => global_pool(graph, node)?,
        _ => return Err(unsupported(node, "not a windowed op")),
    };
    if st.n_in != n_in || st.taps.len() != graph.value(node.output).size() {
        return Err(unsupported(
            node,
            "input or output size disagrees with the graph",
        ));
    }
    Ok(st)
}

/// The interval image of a windowed op.
pub fn interval(graph: &Graph, node: &Node, x: &Interval) -> Result<Interval> {
    if let Op::BatchNorm { .. } = node.op {
        return batch_norm_interval(graph, node, x);
    }
    let st = stencil(graph, node, x.len())?;
    let n_out = st.taps.len();
    let (mut lo, mut hi) = (Vec::with_capacity(n_out), Vec::with_capacity(n_out));
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    match &node.op {
        Op::Conv(c) => {
            let wf: Vec<f64> = c.weight.iter().copied().collect();
            let (cen, rad) = super::centre_radius(x);
            for (o, taps) in st.taps.iter().enumerate() {
                a.clear();
                b.clear();
                r.clear();
                for &(j, k) in taps {
                    a.push(wf[k]);
                    b.push(cen[j]);
                    r.push(rad[j]);
                }
                let spread = abs_dot_up(&a, &r);
                let bias = c
                    .bias
                    .as_ref()
                    .map_or(0.0, |bv| bv[(o / st.plane) % bv.len()]);
                lo.push(add_down(sub_down(dot_down(&a, &b), spread), bias));
                hi.push(add_up(add_up(dot_up(&a, &b), spread), bias));
            }
        }
        Op::MaxPool(_) => {
            for taps in &st.taps {
                lo.push(
                    taps.iter()
                        .map(|&(j, _)| x.lo[j])
                        .fold(f64::NEG_INFINITY, f64::max),
                );
                hi.push(
                    taps.iter()
                        .map(|&(j, _)| x.hi[j])
                        .fold(f64::NEG_INFINITY, f64::max),
                );
            }
        }
        _ => {
            // Average: Σ over the window (a dot with ones), divided with directed rounding.
            for (taps, &d) in st.taps.iter().zip(&st.divisor) {
                a.clear();
                a.resize(taps.len(), 1.0);
                b.clear();
                r.clear();
                for &(j, _) in taps {
                    b.push(x.lo[j]);
                    r.push(x.hi[j]);
                }
                lo.push(div_down(dot_down(&a, &b), d));
                hi.push(div_up(dot_up(&a, &r), d));
            }
        }
    }
    Ok(Interval::new(lo, hi))
}

/// One backward step through a windowed op.
pub fn backward(
    graph: &Graph,
    node: &Node,
    lam: &Array2<f64>,
    x: &Interval,
    acc: &mut Accum,
) -> Result<Array2<f64>> {
    if let Op::BatchNorm { .. } = node.op {
        return batch_norm_backward(graph, node, lam, x, acc);
    }
    let st = stencil(graph, node, x.len())?;
    if lam.ncols() != st.taps.len() {
        return Err(unsupported(
            node,
            "coefficient matrix does not match the output size",
        ));
    }
    Ok(match &node.op {
        Op::Conv(c) => {
            let wf: Vec<f64> = c.weight.iter().copied().collect();
            let res = linear_backward(&st, Coef::Weights(&wf), lam, x, acc);
            if let Some(bv) = &c.bias {
                let bb: Vec<f64> = (0..st.taps.len())
                    .map(|o| bv[(o / st.plane) % bv.len()])
                    .collect();
                for (i, row) in lam.rows().into_iter().enumerate() {
                    let li = row.to_vec();
                    let v: f64 = li.iter().zip(&bb).map(|(l, b)| l * b).sum();
                    acc.add(i, v, dot_error(abs_dot_up(&li, &bb), bb.len()));
                }
            }
            res
        }
        Op::MaxPool(_) => max_backward(&st, lam, x, acc),
        _ => linear_backward(&st, Coef::Divide(&st.divisor), lam, x, acc),
    })
}

/// A convolution as a dense matrix, for backends that multiply dense matrices: `a` is
/// `n_out × n_in` (row-major, the weight of every tap, exactly as stored), `bias` the bias of
/// every output scalar, `max_taps` the largest number of non-zero entries of a column (the
/// term count of the rounding-error bound of `lam · a`). `None` when the matrix would exceed
/// `max_entries`, or when two taps of one output read the same input (their weights would
/// have to be added, with a rounding).
pub struct DenseConv {
    pub a: Vec<f64>,
    pub n_out: usize,
    pub n_in: usize,
    pub bias: Option<Vec<f64>>,
    pub max_taps: usize,
}

/// [`DenseConv`] of a Conv node whose input has `n_in` scalars (`None` for other ops).
pub fn dense_conv(
    graph: &Graph,
    node: &Node,
    n_in: usize,
    max_entries: usize,
) -> Result<Option<DenseConv>> {
    let Op::Conv(c) = &node.op else {
        return Ok(None);
    };
    let st = stencil(graph, node, n_in)?;
    let n_out = st.taps.len();
    if n_out.saturating_mul(n_in) > max_entries {
        return Ok(None);
    }
    let wf: Vec<f64> = c.weight.iter().copied().collect();
    let mut a = vec![0.0; n_out * n_in];
    let mut count = vec![0usize; n_in];
    for (o, taps) in st.taps.iter().enumerate() {
        for &(j, k) in taps {
            if a[o * n_in + j] != 0.0 {
                return Ok(None);
            }
            a[o * n_in + j] = wf[k];
            count[j] += (wf[k] != 0.0) as usize;
        }
    }
    let bias = c
        .bias
        .as_ref()
        .map(|bv| (0..n_out).map(|o| bv[(o / st.plane) % bv.len()]).collect());
    Ok(Some(DenseConv {
        a,
        n_out,
        n_in,
        bias,
        max_taps: count.into_iter().max().unwrap_or(0),
    }))
}

/// How a tap's coefficient applies to `lam`: times a weight, or divided by the window's count.
#[derive(Clone, Copy)]
enum Coef<'a> {
    Weights(&'a [f64]),
    Divide(&'a [f64]),
}

/// `lam_in = lam · A` for the stencil's sparse `A`, with the rounding charged (module doc).
fn linear_backward(
    st: &Stencil,
    coef: Coef,
    lam: &Array2<f64>,
    x: &Interval,
    acc: &mut Accum,
) -> Array2<f64> {
    let rows = lam.nrows();
    let m = x.magnitude();
    let lam_t = lam.t().as_standard_layout().into_owned();
    let mut res_t = Array2::<f64>::zeros((st.n_in, rows));
    let mut count = vec![0usize; st.n_in];
    // (|A| m)_o bounded above, and Σ_o Σ_t m_j for the underflow term.
    let mut am = Vec::with_capacity(st.taps.len());
    let mut under = 0.0;
    for (o, taps) in st.taps.iter().enumerate() {
        let lrow = lam_t.row(o);
        let active = lrow.iter().any(|&v| v != 0.0);
        let (mut s_am, mut s_m) = (0.0, 0.0);
        for &(j, k) in taps {
            s_m += m[j];
            match coef {
                Coef::Weights(w) => {
                    s_am += (w[k] * m[j]).abs();
                    if active {
                        res_t.row_mut(j).scaled_add(w[k], &lrow);
                    }
                }
                Coef::Divide(d) => {
                    s_am += m[j];
                    if active {
                        res_t.row_mut(j).zip_mut_with(&lrow, |r, l| *r += l / d[o]);
                    }
                }
            }
            count[j] += active as usize;
        }
        let s_am = inflate_sum(s_am, taps.len());
        am.push(match coef {
            Coef::Weights(_) => s_am,
            Coef::Divide(d) => div_up(s_am, d[o]),
        });
        under = add_up(under, inflate_sum(s_m, taps.len()));
    }
    let g = gamma(count.iter().copied().max().unwrap_or(0));
    let under = mul_up(ETA, under);
    for (i, row) in lam.rows().into_iter().enumerate() {
        acc.charge(i, add_up(mul_up(g, abs_dot_up(&row.to_vec(), &am)), under));
    }
    res_t.t().as_standard_layout().into_owned()
}

/// MaxPool's backward step (relaxation in the module doc).
fn max_backward(st: &Stencil, lam: &Array2<f64>, x: &Interval, acc: &mut Accum) -> Array2<f64> {
    let rows = lam.nrows();
    let m = x.magnitude();
    let lam_t = lam.t().as_standard_layout().into_owned();
    let mut res_t = Array2::<f64>::zeros((st.n_in, rows));
    let mut count = vec![0usize; st.n_in];
    let mut sel_m = Vec::with_capacity(st.taps.len());
    let (mut v, mut abs, mut terms) = (vec![0.0; rows], vec![0.0; rows], 0usize);
    for (o, taps) in st.taps.iter().enumerate() {
        // The tap with the largest lower bound (the first one on ties).
        let mut k = taps[0].0;
        for &(j, _) in taps {
            if x.lo[j] > x.lo[k] {
                k = j;
            }
        }
        let others = taps
            .iter()
            .filter(|t| t.0 != k)
            .map(|t| x.hi[t.0])
            .fold(f64::NEG_INFINITY, f64::max);
        let top = others.max(x.hi[k]);
        let exact = x.lo[k] >= others;
        sel_m.push(m[k]);
        count[k] += 1;
        let lrow = lam_t.row(o);
        let mut dst = res_t.row_mut(k);
        if exact {
            dst += &lrow;
            continue;
        }
        terms += 1;
        for (i, (r, &l)) in dst.iter_mut().zip(lrow).enumerate() {
            if l >= 0.0 {
                *r += l;
            } else {
                let t = l * top;
                v[i] += t;
                abs[i] += t.abs();
            }
        }
    }
    let kmax = count.iter().copied().max().unwrap_or(0);
    let g = if kmax >= 2 { gamma(kmax - 1) } else { 0.0 };
    for (i, row) in lam.rows().into_iter().enumerate() {
        if g > 0.0 {
            acc.charge(i, mul_up(g, abs_dot_up(&row.to_vec(), &sel_m)));
        }
        if terms > 0 {
            acc.add(i, v[i], dot_error(abs[i], terms));
        }
    }
    res_t.t().as_standard_layout().into_owned()
}

/// Per channel of a BatchNorm: `κ ∈ [lo, hi]`, its midpoint and radius, the mean and the bias.
struct BnChannel {
    k: [f64; 2],
    mid: f64,
    rad: f64,
    mean: f64,
    bias: f64,
}

/// The channels of a BatchNorm and the number of scalars per channel and sample (`inner`).
fn bn_channels(graph: &Graph, node: &Node) -> Result<(Vec<BnChannel>, usize)> {
    let Op::BatchNorm {
        scale,
        bias,
        mean,
        var,
        epsilon,
    } = &node.op
    else {
        return Err(unsupported(node, "not a BatchNorm"));
    };
    let shape = &graph.value(node.inputs[0]).shape;
    let inner: usize = shape.iter().skip(2).product();
    if shape.len() < 2 || shape[1] != scale.len() {
        return Err(unsupported(
            node,
            "parameters do not match the channel axis",
        ));
    }
    let mut out = Vec::with_capacity(scale.len());
    for c in 0..scale.len() {
        let v = [add_down(var[c], *epsilon), add_up(var[c], *epsilon)];
        // sqrt is correctly rounded: one step out of fl(sqrt) encloses the exact root.
        let s = [down(v[0].sqrt()), up(v[1].sqrt())];
        if !(v[0] > 0.0 && s[0] > 0.0 && s[1].is_finite()) {
            return Err(unsupported(
                node,
                "a variance + epsilon that is not safely positive is not supported",
            ));
        }
        let sc = scale[c];
        let k = if sc == 0.0 {
            [0.0, 0.0]
        } else if sc > 0.0 {
            [div_down(sc, s[1]), div_up(sc, s[0])]
        } else {
            [div_down(sc, s[0]), div_up(sc, s[1])]
        };
        if !(k[0].is_finite() && k[1].is_finite()) {
            return Err(unsupported(
                node,
                "a BatchNorm factor beyond the f64 range is not supported",
            ));
        }
        let (mid, rad) = centre_radius(k[0], k[1]);
        out.push(BnChannel {
            k,
            mid,
            rad,
            mean: mean[c],
            bias: bias[c],
        });
    }
    Ok((out, inner))
}

fn batch_norm_interval(graph: &Graph, node: &Node, x: &Interval) -> Result<Interval> {
    let (chs, inner) = bn_channels(graph, node)?;
    let (mut lo, mut hi) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
    for j in 0..x.len() {
        let c = &chs[(j / inner.max(1)) % chs.len()];
        let d = [sub_down(x.lo[j], c.mean), sub_up(x.hi[j], c.mean)];
        let mut a = f64::INFINITY;
        let mut b = f64::NEG_INFINITY;
        for k in c.k {
            for dd in d {
                a = a.min(mul_down(k, dd));
                b = b.max(mul_up(k, dd));
            }
        }
        lo.push(add_down(a, c.bias));
        hi.push(add_up(b, c.bias));
    }
    Ok(Interval::new(lo, hi))
}

fn batch_norm_backward(
    graph: &Graph,
    node: &Node,
    lam: &Array2<f64>,
    x: &Interval,
    acc: &mut Accum,
) -> Result<Array2<f64>> {
    let (chs, inner) = bn_channels(graph, node)?;
    let n = x.len();
    if lam.ncols() != n {
        return Err(unsupported(
            node,
            "coefficient matrix does not match the output size",
        ));
    }
    let ch: Vec<&BnChannel> = (0..n)
        .map(|j| &chs[(j / inner.max(1)) % chs.len()])
        .collect();
    // D_j ≥ |x_j − μ| over the box.
    let dm: Vec<f64> = (0..n)
        .map(|j| {
            sub_down(x.lo[j], ch[j].mean)
                .abs()
                .max(sub_up(x.hi[j], ch[j].mean).abs())
        })
        .collect();
    let under = mul_up(ETA, inflate_sum(dm.iter().sum(), n));
    let mut res = Array2::<f64>::zeros(lam.raw_dim());
    let mut e = vec![0.0; n];
    for (i, row) in lam.rows().into_iter().enumerate() {
        let (mut v, mut abs) = (0.0, 0.0);
        for (j, &l) in row.iter().enumerate() {
            let c = ch[j];
            let r = l * c.mid;
            res[(i, j)] = r;
            e[j] = add_up(mul_up(l.abs(), c.rad), mul_up(2.0 * UNIT_ROUNDOFF, r.abs()));
            let (t1, t2) = (-(r * c.mean), l * c.bias);
            v += t1;
            v += t2;
            abs += t1.abs() + t2.abs();
        }
        acc.charge(i, add_up(abs_dot_up(&e, &dm), under));
        acc.add(i, v, dot_error(abs, 2 * n));
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
