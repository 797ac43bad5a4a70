//! Exact rational kernels for the piecewise-linear operators (and BatchNorm's enclosure).
//!
//! Tensors are per-sample `ArrayD<BigRational>` (no batch axis). Points stay points; an
//! interval input is propagated soundly: sign-split weights for Linear and Conv, endpoint
//! products for Mul/DivConst, `[a.lo − b.hi, a.hi − b.lo]` for Sub. Pools and
//! GlobalAveragePool are increasing maps and are applied to each end by the caller.

use ndarray::{Array1, Array2, Array4, ArrayD, Axis, IxDyn, Zip};
use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::enclose::{round_outward, sqrt_enclosure};
use super::XT;
use crate::ir::op::window_output_len;
use crate::ir::{Conv2d, Pool2d};
use crate::tensor::pad_rank;

type Q = BigRational;
type R<T> = Result<T, String>;

pub(super) fn q(v: f64) -> R<Q> {
    BigRational::from_float(v).ok_or_else(|| format!("constant {v} is not a finite number"))
}

fn qs<'a>(a: impl IntoIterator<Item = &'a f64>) -> R<Vec<Q>> {
    a.into_iter().map(|&v| q(v)).collect()
}

fn min_max(a: Q, b: Q) -> (Q, Q) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// `bias + Σ w·x` over `terms = (weight index, input index)`, sign-split for intervals.
fn affine(
    w: &[Q],
    terms: impl Iterator<Item = (usize, usize)>,
    bias: Q,
    lo: &[&Q],
    hi: Option<&[&Q]>,
) -> (Q, Option<Q>) {
    let mut acc_lo = bias.clone();
    match hi {
        None => {
            for (wi, xi) in terms {
                if !w[wi].is_zero() {
                    acc_lo += &w[wi] * lo[xi];
                }
            }
            (acc_lo, None)
        }
        Some(hi) => {
            let mut acc_hi = bias;
            for (wi, xi) in terms {
                let wv = &w[wi];
                if wv.is_positive() {
                    acc_lo += wv * lo[xi];
                    acc_hi += wv * hi[xi];
                } else if wv.is_negative() {
                    acc_lo += wv * hi[xi];
                    acc_hi += wv * lo[xi];
                }
            }
            (acc_lo, Some(acc_hi))
        }
    }
}

fn assemble(shape: &[usize], parts: Vec<(Q, Option<Q>)>, point: bool) -> R<XT> {
    let (lo, hi): (Vec<Q>, Vec<Option<Q>>) = parts.into_iter().unzip();
    let lo = ArrayD::from_shape_vec(IxDyn(shape), lo).map_err(|e| e.to_string())?;
    let hi = if point {
        None
    } else {
        let h: Vec<Q> = hi.into_iter().map(|h| h.unwrap_or_default()).collect();
        Some(ArrayD::from_shape_vec(IxDyn(shape), h).map_err(|e| e.to_string())?)
    };
    Ok(XT { lo, hi })
}

pub fn linear(x: &XT, w: &Array2<f64>, b: Option<&Array1<f64>>) -> R<XT> {
    let (out, inp) = w.dim();
    let mut shape = x.lo.shape().to_vec();
    if shape.last() != Some(&inp) {
        return Err(format!(
            "Linear expects a last axis of {inp}, got {shape:?}"
        ));
    }
    let wq = qs(w.iter())?; // logical (row-major) order: index o·inp + i
    let bq = match b {
        Some(b) => qs(b.iter())?,
        None => vec![Q::zero(); out],
    };
    let lo: Vec<&Q> = x.lo.iter().collect();
    let hi: Option<Vec<&Q>> = x.hi.as_ref().map(|h| h.iter().collect());
    let rows = lo.len() / inp.max(1);
    let mut parts = Vec::with_capacity(rows * out);
    for r in 0..rows {
        for (o, bo) in bq.iter().enumerate() {
            let terms = (0..inp).map(|i| (o * inp + i, r * inp + i));
            parts.push(affine(&wq, terms, bo.clone(), &lo, hi.as_deref()));
        }
    }
    if let Some(l) = shape.last_mut() {
        *l = out;
    }
    assemble(&shape, parts, x.hi.is_none())
}

/// Input index of kernel tap `k` for output `o` along an axis of length `len`, if inside.
fn tap(o: usize, k: usize, stride: usize, dil: usize, pad: usize, len: usize) -> Option<usize> {
    let p = (o * stride + k * dil).checked_sub(pad)?;
    (p < len).then_some(p)
}

fn dims4(shape: &[usize], what: &str) -> R<[usize; 4]> {
    match shape {
        [n, c, h, w] => Ok([*n, *c, *h, *w]),
        _ => Err(format!("{what} needs a [N, C, H, W] sample, got {shape:?}")),
    }
}

pub fn conv(x: &XT, c: &Conv2d) -> R<XT> {
    let [n, ch, h, w] = dims4(x.lo.shape(), "Conv")?;
    let (oc, cg, kh, kw) = c.weight.dim();
    let g = c.group;
    if g == 0 || ch != cg * g || oc % g != 0 {
        return Err(format!(
            "weight {:?} with group {g} on {ch} channels",
            c.weight.shape()
        ));
    }
    let og = oc / g;
    let ho = window_output_len(
        h,
        kh,
        c.strides[0],
        c.pads[0],
        c.pads[2],
        c.dilations[0],
        false,
    )?;
    let wo = window_output_len(
        w,
        kw,
        c.strides[1],
        c.pads[1],
        c.pads[3],
        c.dilations[1],
        false,
    )?;
    let wq = qs(c.weight.iter())?;
    let bq = match &c.bias {
        Some(b) => qs(b.iter())?,
        None => vec![Q::zero(); oc],
    };
    let lo: Vec<&Q> = x.lo.iter().collect();
    let hi: Option<Vec<&Q>> = x.hi.as_ref().map(|a| a.iter().collect());
    let mut parts = Vec::with_capacity(n * oc * ho * wo);
    for img in 0..n {
        for (o, bo) in bq.iter().enumerate() {
            let gi = o / og;
            for oi in 0..ho {
                for oj in 0..wo {
                    let mut terms = Vec::with_capacity(cg * kh * kw);
                    for ci in 0..cg {
                        let xc = gi * cg + ci;
                        for ki in 0..kh {
                            let Some(a) = tap(oi, ki, c.strides[0], c.dilations[0], c.pads[0], h)
                            else {
                                continue;
                            };
                            for kj in 0..kw {
                                if let Some(b) =
                                    tap(oj, kj, c.strides[1], c.dilations[1], c.pads[1], w)
                                {
                                    let wi = ((o * cg + ci) * kh + ki) * kw + kj;
                                    let xi = ((img * ch + xc) * h + a) * w + b;
                                    terms.push((wi, xi));
                                }
                            }
                        }
                    }
                    parts.push(affine(
                        &wq,
                        terms.into_iter(),
                        bo.clone(),
                        &lo,
                        hi.as_deref(),
                    ));
                }
            }
        }
    }
    assemble(&[n, oc, ho, wo], parts, x.hi.is_none())
}

/// MaxPool or AveragePool of one rational tensor (an increasing map).
pub fn pool(a: &ArrayD<Q>, p: &Pool2d, max: bool) -> R<ArrayD<Q>> {
    let [n, ch, h, w] = dims4(a.shape(), if max { "MaxPool" } else { "AveragePool" })?;
    let [kh, kw] = p.kernel;
    let ho = window_output_len(
        h,
        kh,
        p.strides[0],
        p.pads[0],
        p.pads[2],
        p.dilations[0],
        p.ceil_mode,
    )?;
    let wo = window_output_len(
        w,
        kw,
        p.strides[1],
        p.pads[1],
        p.pads[3],
        p.dilations[1],
        p.ceil_mode,
    )?;
    // Taps along one axis: (input index if inside, whether inside the padded extent).
    let taps = |o: usize, k: usize, ax: usize, len: usize| -> (Option<usize>, bool) {
        let pos = (o * p.strides[ax] + k * p.dilations[ax]) as isize - p.pads[ax] as isize;
        let inside = pos >= 0 && (pos as usize) < len;
        let padded = pos >= -(p.pads[ax] as isize) && pos < (len + p.pads[ax + 2]) as isize;
        (inside.then_some(pos as usize), padded)
    };
    let a4 = a
        .view()
        .into_shape_with_order((n, ch, h, w))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(n * ch * ho * wo);
    for img in 0..n {
        for c in 0..ch {
            for oi in 0..ho {
                for oj in 0..wo {
                    let mut best: Option<&Q> = None;
                    let mut sum = Q::zero();
                    let (mut inside, mut padded) = (0usize, 0usize);
                    for ki in 0..kh {
                        let (yi, py) = taps(oi, ki, 0, h);
                        for kj in 0..kw {
                            let (xj, px) = taps(oj, kj, 1, w);
                            padded += (py && px) as usize;
                            if let (Some(y), Some(x)) = (yi, xj) {
                                let v = &a4[(img, c, y, x)];
                                inside += 1;
                                if max {
                                    best = Some(best.map_or(v, |b| if v > b { v } else { b }));
                                } else {
                                    sum += v;
                                }
                            }
                        }
                    }
                    out.push(if max {
                        best.cloned()
                            .ok_or("a MaxPool window lies entirely in the padding")?
                    } else {
                        let d = if p.count_include_pad { padded } else { inside };
                        if d == 0 {
                            return Err("an AveragePool window covers no cell".into());
                        }
                        sum / Q::from_integer(d.into())
                    });
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[n, ch, ho, wo]), out).map_err(|e| e.to_string())
}

pub fn global_average_pool(a: &ArrayD<Q>) -> R<ArrayD<Q>> {
    let [n, ch, h, w] = dims4(a.shape(), "GlobalAveragePool")?;
    let a4: Array4<Q> = a
        .view()
        .into_shape_with_order((n, ch, h, w))
        .map_err(|e| e.to_string())?
        .to_owned();
    let count = Q::from_integer((h * w).into());
    let sums = a4.map_axis(Axis(3), |l| l.iter().fold(Q::zero(), |s, v| s + v));
    let sums = sums.map_axis(Axis(2), |l| l.iter().fold(Q::zero(), |s, v| s + v));
    let mean = sums.mapv(|s| s / &count);
    mean.into_shape_with_order(IxDyn(&[n, ch, 1, 1]))
        .map_err(|e| e.to_string())
}

/// Numpy broadcasting of two rational tensors through `f`.
fn bcast(a: &ArrayD<Q>, b: &ArrayD<Q>, f: impl Fn(&Q, &Q) -> Q) -> R<ArrayD<Q>> {
    let rank = a.ndim().max(b.ndim());
    let a = a
        .to_shape(IxDyn(&pad_rank(a.shape(), rank)))
        .map_err(|e| e.to_string())?;
    let b = b
        .to_shape(IxDyn(&pad_rank(b.shape(), rank)))
        .map_err(|e| e.to_string())?;
    let shape = crate::tensor::broadcast_shapes(a.shape(), b.shape())?;
    let a = a
        .broadcast(IxDyn(&shape))
        .ok_or("shapes do not broadcast")?;
    let b = b
        .broadcast(IxDyn(&shape))
        .ok_or("shapes do not broadcast")?;
    Ok(Zip::from(&a).and(&b).map_collect(f))
}

fn const_q(c: &ArrayD<f64>) -> R<ArrayD<Q>> {
    let v = qs(c.iter())?;
    ArrayD::from_shape_vec(IxDyn(c.shape()), v).map_err(|e| e.to_string())
}

pub fn add_const(x: &XT, c: &ArrayD<f64>) -> R<XT> {
    let c = const_q(c)?;
    x.monotone(|a| bcast(a, &c, |p, q| p + q))
}

/// `x · c`, or `x / c` when `divide`; endpoint products for intervals.
pub fn mul_const(x: &XT, c: &ArrayD<f64>, divide: bool) -> R<XT> {
    let mut c = const_q(c)?;
    if divide {
        if c.iter().any(|v| v.is_zero()) {
            return Err("division by a constant that is exactly 0".into());
        }
        c.mapv_inplace(|v| v.recip());
    }
    let lo = bcast(&x.lo, &c, |p, q| p * q)?;
    let Some(xh) = &x.hi else {
        return Ok(XT { lo, hi: None });
    };
    let hi = bcast(xh, &c, |p, q| p * q)?;
    // A negative factor swaps the ends.
    let (lo, hi): (Vec<Q>, Vec<Q>) = lo
        .iter()
        .zip(hi.iter())
        .map(|(l, h)| min_max(l.clone(), h.clone()))
        .unzip();
    let shape = crate::tensor::broadcast_shapes(x.lo.shape(), c.shape())?;
    Ok(XT {
        lo: ArrayD::from_shape_vec(IxDyn(&shape), lo).map_err(|e| e.to_string())?,
        hi: Some(ArrayD::from_shape_vec(IxDyn(&shape), hi).map_err(|e| e.to_string())?),
    })
}

/// `a + b` (or `a − b` when `sub`), broadcast.
pub fn add_sub(a: &XT, b: &XT, sub: bool) -> R<XT> {
    if !sub {
        let lo = bcast(&a.lo, &b.lo, |p, q| p + q)?;
        let hi = match (&a.hi, &b.hi) {
            (None, None) => None,
            _ => Some(bcast(a.hi(), b.hi(), |p, q| p + q)?),
        };
        return Ok(XT { lo, hi });
    }
    let lo = bcast(&a.lo, b.hi(), |p, q| p - q)?;
    let hi = match (&a.hi, &b.hi) {
        (None, None) => None,
        _ => Some(bcast(a.hi(), &b.lo, |p, q| p - q)?),
    };
    Ok(XT { lo, hi })
}

pub fn leaky_relu(x: &XT, alpha: f64) -> R<XT> {
    let a = q(alpha)?;
    let f = |v: &Q| if v.is_negative() { &a * v } else { v.clone() };
    let lo = x.lo.map(f);
    let Some(xh) = &x.hi else {
        return Ok(XT { lo, hi: None });
    };
    // Range of f over [l, h]: the ends, plus the kink at 0 when it lies inside.
    let (lo, hi): (Vec<Q>, Vec<Q>) =
        x.lo.iter()
            .zip(xh.iter())
            .map(|(l, h)| {
                let (mut mn, mut mx) = min_max(f(l), f(h));
                if l.is_negative() && h.is_positive() {
                    let z = Q::zero();
                    if z < mn {
                        mn = z;
                    } else if z > mx {
                        mx = z;
                    }
                }
                (mn, mx)
            })
            .unzip();
    let shape = x.lo.shape();
    Ok(XT {
        lo: ArrayD::from_shape_vec(IxDyn(shape), lo).map_err(|e| e.to_string())?,
        hi: Some(ArrayD::from_shape_vec(IxDyn(shape), hi).map_err(|e| e.to_string())?),
    })
}

/// `(x − mean) / sqrt(var + eps) · scale + bias` per channel (axis 1). Exact when every
/// `var + eps` is a perfect square; otherwise an enclosure rounded outward to `f64`.
pub fn batch_norm(
    x: &XT,
    scale: &Array1<f64>,
    bias: &Array1<f64>,
    mean: &Array1<f64>,
    var: &Array1<f64>,
    eps: f64,
) -> R<XT> {
    let shape = x.lo.shape().to_vec();
    let ch = *shape.get(1).ok_or("BatchNorm needs a channel axis")?;
    let eps = q(eps)?;
    // Per channel: the factor scale / sqrt(var + eps) as an interval, and mean and bias.
    let mut per = Vec::with_capacity(ch);
    for c in 0..ch {
        let (s_lo, s_hi) = sqrt_enclosure(&(q(var[c])? + &eps))?;
        let sc = q(scale[c])?;
        let (k_lo, k_hi) = min_max(&sc / &s_hi, &sc / &s_lo);
        per.push((k_lo, k_hi, q(mean[c])?, q(bias[c])?));
    }
    let exact = x.hi.is_none() && per.iter().all(|p| p.0 == p.1);
    let hi = x.hi();
    let mut lo_out = Vec::with_capacity(x.lo.len());
    let mut hi_out = Vec::with_capacity(x.lo.len());
    for ((idx, l), h) in x.lo.indexed_iter().zip(hi.iter()) {
        let (k_lo, k_hi, m, b) = &per[idx[1]];
        let (d_lo, d_hi) = (l - m, h - m);
        if exact {
            lo_out.push(&d_lo * k_lo + b);
        } else {
            let cands = [&d_lo * k_lo, &d_lo * k_hi, &d_hi * k_lo, &d_hi * k_hi];
            let mn = cands.iter().min().cloned().unwrap_or_default();
            let mx = cands.iter().max().cloned().unwrap_or_default();
            let (y_lo, y_hi) = round_outward(&(mn + b), &(mx + b));
            lo_out.push(y_lo);
            hi_out.push(y_hi);
        }
    }
    Ok(XT {
        lo: ArrayD::from_shape_vec(IxDyn(&shape), lo_out).map_err(|e| e.to_string())?,
        hi: if exact {
            None
        } else {
            Some(ArrayD::from_shape_vec(IxDyn(&shape), hi_out).map_err(|e| e.to_string())?)
        },
    })
}
