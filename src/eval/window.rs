//! Batched float kernels for the windowed operators: Conv2d, AveragePool, MaxPool and
//! GlobalAveragePool.
//!
//! Inputs have shape `[batch, N, C, H, W]` (the per-sample shape is `[N, C, H, W]`, usually
//! with `N = 1`); batch and `N` are merged into one image axis. Convolution is im2col per
//! image and group followed by one matrix product; images run in parallel with rayon.
//! Window geometry (strides, `[top, left, bottom, right]` pads, dilations, ceil mode) follows
//! ONNX; output sizes come from [`window_output_len`], the same function shape inference uses.

use ndarray::{s, Array2, Array4, ArrayD, ArrayView3, ArrayViewMut3, Axis, IxDyn, Zip};

use super::Scalar;
use crate::ir::op::window_output_len;
use crate::ir::{Conv2d, Pool2d};

type R<T> = Result<T, String>;

/// Views a `[batch, N, C, H, W]` tensor as `[batch·N, C, H, W]` images.
fn images<T: Scalar>(x: &ArrayD<T>, what: &str) -> R<Array4<T>> {
    let sh = x.shape();
    if sh.len() != 5 {
        return Err(format!(
            "{what} needs a [N, C, H, W] sample, got {:?}",
            &sh[1..]
        ));
    }
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order((sh[0] * sh[1], sh[2], sh[3], sh[4]))
        .map_err(|e| e.to_string())
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
    let run = |mut yo: ArrayViewMut3<T>, xo: ArrayView3<T>| {
        let mut cols = Array2::<T>::zeros((cg * kh * kw, ho * wo));
        for gi in 0..g {
            for ci in 0..cg {
                let plane = xo.index_axis(Axis(0), gi * cg + ci);
                for ki in 0..kh {
                    for kj in 0..kw {
                        let mut row = cols.row_mut((ci * kh + ki) * kw + kj);
                        for oi in 0..ho {
                            let yi = tap(oi, ki, c.strides[0], c.dilations[0], c.pads[0], h, 0);
                            for oj in 0..wo {
                                let xj = tap(oj, kj, c.strides[1], c.dilations[1], c.pads[1], w, 0);
                                row[oi * wo + oj] = match (yi, xj) {
                                    (Ok(a), Ok(b)) => plane[(a, b)],
                                    _ => T::zero(),
                                };
                            }
                        }
                    }
                }
            }
            let prod = kernels[gi].dot(&cols);
            for o in 0..og {
                let mut dst = yo.index_axis_mut(Axis(0), gi * og + o);
                let b = bias.as_ref().map_or(T::zero(), |b| b[gi * og + o]);
                for (d, &v) in dst.iter_mut().zip(prod.row(o).iter()) {
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
    for img in 0..imgs {
        for c in 0..ch {
            let plane = xi.slice(s![img, c, .., ..]);
            for oi in 0..ho {
                for oj in 0..wo {
                    let mut acc = if max { T::neg_infinity() } else { T::zero() };
                    let (mut inside, mut padded) = (0usize, 0usize);
                    for ki in 0..kh {
                        let yi = tap(
                            oi,
                            ki,
                            p.strides[0],
                            p.dilations[0],
                            p.pads[0],
                            h,
                            p.pads[2],
                        );
                        for kj in 0..kw {
                            let xj = tap(
                                oj,
                                kj,
                                p.strides[1],
                                p.dilations[1],
                                p.pads[1],
                                w,
                                p.pads[3],
                            );
                            match (yi, xj) {
                                (Ok(a), Ok(b)) => {
                                    let v = plane[(a, b)];
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
                    y[(img, c, oi, oj)] = acc;
                }
            }
        }
    }
    unimages(y, batch, n)
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
