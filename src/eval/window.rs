//! Batched float kernels for the windowed operators: Conv2d, AveragePool, MaxPool and
//! GlobalAveragePool.
//!
//! Inputs have shape `[batch, N, C, H, W]` (the per-sample shape is `[N, C, H, W]`, usually
//! with `N = 1`); batch and `N` are merged into one image axis. Convolution is im2col per
//! image and group followed by one matrix product; images run in parallel with rayon.
//! Window geometry (strides, `[top, left, bottom, right]` pads, dilations, ceil mode) follows
//! ONNX; output sizes come from [`window_output_len`], the same function shape inference uses.

use ndarray::{
    s, Array2, Array4, ArrayD, ArrayView3, ArrayViewMut3, Axis, CowArray, Ix4, IxDyn, Zip,
};

use super::Scalar;
use crate::ir::op::window_output_len;
use crate::ir::{Conv2d, Pool2d};

type R<T> = Result<T, String>;

/// Views a `[batch, N, C, H, W]` tensor as `[batch·N, C, H, W]` images.
fn images<'a, T: Scalar>(x: &'a ArrayD<T>, what: &str) -> R<CowArray<'a, T, Ix4>> {
    let sh = x.shape();
    if sh.len() != 5 {
        return Err(format!(
            "{what} needs a [N, C, H, W] sample, got {:?}",
            &sh[1..]
        ));
    }
    let dim = (sh[0] * sh[1], sh[2], sh[3], sh[4]);
    if x.is_standard_layout() {
        // A view: no copy of the batch.
        let v = x
            .view()
            .into_shape_with_order(dim)
            .map_err(|e| e.to_string())?;
        return Ok(CowArray::from(v));
    }
    let owned = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(dim)
        .map_err(|e| e.to_string())?;
    Ok(CowArray::from(owned))
}

/// Back from `[batch·N, C, H, W]` to `[batch, N, C, H, W]`.
fn unimages<T: Scalar>(y: Array4<T>, batch: usize, n: usize) -> R<ArrayD<T>> {
    let (_, c, h, w) = y.dim();
    y.into_shape_with_order(IxDyn(&[batch, n, c, h, w]))
        .map_err(|e| e.to_string())
}

/// The input coordinate of kernel tap `k` for output position `o`, if inside `0..len`
/// (`Err(inside_padding)` otherwise, telling whether it lies in the padded extent).
#[inline]
fn tap(
    o: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    len: usize,
    pad_end: usize,
) -> Result<usize, bool> {
    let p = (o * stride + k * dil) as isize - pad as isize;
    if p >= 0 && (p as usize) < len {
        Ok(p as usize)
    } else {
        Err(p >= -(pad as isize) && p < (len + pad_end) as isize)
    }
}

pub fn conv<T: Scalar>(x: &ArrayD<T>, c: &Conv2d) -> R<ArrayD<T>> {
    let (batch, n) = (x.shape()[0], *x.shape().get(1).unwrap_or(&1));
    let xi = images(x, "Conv")?;
    let (imgs, ch, h, w) = xi.dim();
    let (oc, cg, kh, kw) = c.weight.dim();
    let g = c.group;
    if g == 0 || ch != cg * g || oc % g != 0 {
        return Err(format!(
            "weight {:?} with group {g} on {ch} input channels",
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
    // Per group, the kernel as an [og, cg·kh·kw] matrix.
    let wt = T::cast(&c.weight);
    let kernels: Vec<Array2<T>> = (0..g)
        .map(|gi| {
            wt.slice(s![gi * og..(gi + 1) * og, .., .., ..])
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((og, cg * kh * kw))
                .map_err(|e| e.to_string())
        })
        .collect::<R<_>>()?;
    let bias = c.bias.as_ref().map(T::cast);
    let mut y = Array4::<T>::zeros((imgs, oc, ho, wo));
    // Input row (column) of every kernel tap and output row (column), computed once.
    let rows_of = taps(kh, ho, c.strides[0], c.dilations[0], c.pads[0], h, 0);
    let cols_of = taps(kw, wo, c.strides[1], c.dilations[1], c.pads[1], w, 0);
    // With stride 1, per column tap: the run `lo..hi` of outputs inside, from input `b` on.
    let spans: Vec<Option<(usize, usize, usize)>> = cols_of
        .iter()
        .map(|t| {
            let lo = t.iter().position(|v| v.is_ok())?;
            let hi = lo + t[lo..].iter().take_while(|v| v.is_ok()).count();
            let b = *t[lo].as_ref().ok()?;
            let contiguous =
                t[hi..].iter().all(|v| v.is_err()) && (lo..hi).all(|o| t[o] == Ok(b + o - lo));
            (c.strides[1] == 1 && contiguous).then_some((lo, hi, b))
        })
        .collect();
    let run = |mut yo: ArrayViewMut3<T>, xo: ArrayView3<T>| {
        let mut cols = Array2::<T>::zeros((cg * kh * kw, ho * wo));
        let xo = xo.as_standard_layout();
        for gi in 0..g {
            for ci in 0..cg {
                let plane = xo.index_axis(Axis(0), gi * cg + ci);
                let plane = plane.as_slice().expect("standard layout");
                for (ki, rows_k) in rows_of.iter().enumerate() {
                    for kj in 0..kw {
                        let mut row = cols.row_mut((ci * kh + ki) * kw + kj);
                        let row = row.as_slice_mut().expect("standard layout");
                        for (oi, dst) in row.chunks_exact_mut(wo).enumerate() {
                            match rows_k[oi] {
                                Ok(a) => {
                                    let src = &plane[a * w..(a + 1) * w];
                                    match spans[kj] {
                                        // Stride 1: the inside taps are one contiguous run.
                                        Some((lo, hi, b)) => {
                                            dst[..lo].fill(T::zero());
                                            dst[lo..hi].copy_from_slice(&src[b..b + hi - lo]);
                                            dst[hi..].fill(T::zero());
                                        }
                                        None => {
                                            for (d, t) in dst.iter_mut().zip(&cols_of[kj]) {
                                                *d = t.map_or(T::zero(), |b| src[b]);
                                            }
                                        }
                                    }
                                }
                                Err(_) => dst.fill(T::zero()),
                            }
                        }
                    }
                }
            }
            let prod = kernels[gi].dot(&cols);
            let prod = prod.as_standard_layout();
            let prod = prod.as_slice().expect("standard layout");
            let yo = yo.as_slice_mut().expect("fresh array");
            let planes = yo[gi * og * ho * wo..(gi + 1) * og * ho * wo].chunks_exact_mut(ho * wo);
            for (o, (dst, src)) in planes.zip(prod.chunks_exact(ho * wo)).enumerate() {
                let b = bias.as_ref().map_or(T::zero(), |b| b[gi * og + o]);
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = v + b;
                }
            }
        }
    };
    if imgs > 1 {
        Zip::from(y.outer_iter_mut())
            .and(xi.outer_iter())
            .par_for_each(run);
    } else {
        Zip::from(y.outer_iter_mut())
            .and(xi.outer_iter())
            .for_each(run);
    }
    unimages(y, batch, n)
}

/// MaxPool (`max = true`; padding cells are −∞) or AveragePool.
pub fn pool<T: Scalar>(x: &ArrayD<T>, p: &Pool2d, max: bool) -> R<ArrayD<T>> {
    let (batch, n) = (x.shape()[0], *x.shape().get(1).unwrap_or(&1));
    let xi = images(x, if max { "MaxPool" } else { "AveragePool" })?;
    let (imgs, ch, h, w) = xi.dim();
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
    let mut y = Array4::<T>::zeros((imgs, ch, ho, wo));
    let rows_of = taps(
        kh,
        ho,
        p.strides[0],
        p.dilations[0],
        p.pads[0],
        h,
        p.pads[2],
    );
    let cols_of = taps(
        kw,
        wo,
        p.strides[1],
        p.dilations[1],
        p.pads[1],
        w,
        p.pads[3],
    );
    let xi = xi.as_standard_layout();
    let planes = xi.as_slice().expect("standard layout").chunks_exact(h * w);
    let outs = y
        .as_slice_mut()
        .expect("fresh array")
        .chunks_exact_mut(ho * wo);
    let inside = |t: &Vec<Vec<Result<usize, bool>>>| t.iter().flatten().all(|v| v.is_ok());
    if max
        && p.kernel == [2, 2]
        && p.strides == [2, 2]
        && p.dilations == [1, 1]
        && p.pads == [0; 4]
        && 2 * ho <= h
        && 2 * wo <= w
    {
        // The common 2×2, stride-2 pool without padding.
        for (plane, out) in planes.zip(outs) {
            for (oi, dst) in out.chunks_exact_mut(wo).enumerate() {
                let r0 = &plane[2 * oi * w..(2 * oi + 1) * w];
                let r1 = &plane[(2 * oi + 1) * w..(2 * oi + 2) * w];
                for (oj, d) in dst.iter_mut().enumerate() {
                    let j = 2 * oj;
                    *d = T::neg_infinity()
                        .max(r0[j])
                        .max(r0[j + 1])
                        .max(r1[j])
                        .max(r1[j + 1]);
                }
            }
        }
        return unimages(y, batch, n);
    }
    if max && inside(&rows_of) && inside(&cols_of) {
        // No window reaches into padding: the plain maximum over the taps.
        let ri: Vec<Vec<usize>> = (0..ho)
            .map(|oi| rows_of.iter().map(|t| t[oi].unwrap_or(0) * w).collect())
            .collect();
        let cj: Vec<Vec<usize>> = (0..wo)
            .map(|oj| cols_of.iter().map(|t| t[oj].unwrap_or(0)).collect())
            .collect();
        for (plane, out) in planes.zip(outs) {
            for (oi, dst) in out.chunks_exact_mut(wo).enumerate() {
                for (d, cols) in dst.iter_mut().zip(&cj) {
                    let mut acc = T::neg_infinity();
                    for &r in &ri[oi] {
                        for &c in cols {
                            acc = acc.max(plane[r + c]);
                        }
                    }
                    *d = acc;
                }
            }
        }
        return unimages(y, batch, n);
    }
    for (plane, out) in planes.zip(outs) {
        for oi in 0..ho {
            for oj in 0..wo {
                let mut acc = if max { T::neg_infinity() } else { T::zero() };
                let (mut inside, mut padded) = (0usize, 0usize);
                for taps_i in &rows_of {
                    let yi = taps_i[oi];
                    for taps_j in &cols_of {
                        match (yi, taps_j[oj]) {
                            (Ok(a), Ok(b)) => {
                                let v = plane[a * w + b];
                                acc = if max { acc.max(v) } else { acc + v };
                                inside += 1;
                                padded += 1;
                            }
                            (Ok(_), Err(pb)) => padded += pb as usize,
                            (Err(pa), Ok(_)) => padded += pa as usize,
                            (Err(pa), Err(pb)) => padded += (pa && pb) as usize,
                        }
                    }
                }
                if !max {
                    let d = if p.count_include_pad { padded } else { inside };
                    acc = acc / T::from_f64(d as f64);
                }
                out[oi * wo + oj] = acc;
            }
        }
    }
    unimages(y, batch, n)
}

/// [`tap`] for every kernel offset `k < kernel` (outer) and output position `o < out`.
fn taps(
    kernel: usize,
    out: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    len: usize,
    pad_end: usize,
) -> Vec<Vec<Result<usize, bool>>> {
    (0..kernel)
        .map(|k| {
            (0..out)
                .map(|o| tap(o, k, stride, dil, pad, len, pad_end))
                .collect()
        })
        .collect()
}

/// The mean over each channel's `H × W` plane.
pub fn global_average_pool<T: Scalar>(x: &ArrayD<T>) -> R<ArrayD<T>> {
    let (batch, n) = (x.shape()[0], *x.shape().get(1).unwrap_or(&1));
    let xi = images(x, "GlobalAveragePool")?;
    let (imgs, ch, h, w) = xi.dim();
    let count = T::from_f64((h * w) as f64);
    let sums = xi.sum_axis(Axis(3)).sum_axis(Axis(2));
    let y = sums
        .mapv(|v| v / count)
        .into_shape_with_order((imgs, ch, 1, 1))
        .map_err(|e| e.to_string())?;
    unimages(y, batch, n)
}
