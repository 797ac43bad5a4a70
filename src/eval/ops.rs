//! Batched float kernels for the non-windowed operators.
//!
//! Every tensor here has shape `[batch] ++ per-sample shape`; per-sample axis `k` is tensor
//! axis `k + 1`. Constants are stored as `f64` and cast with [`Scalar::cast`]. Broadcasting
//! follows numpy: a per-sample shape is left-padded with ones to the common sample rank and
//! the batch axis is prepended. Errors are plain strings; the caller adds the node name.

use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn};

use super::Scalar;
use crate::tensor::pad_rank;

type R<T> = Result<T, String>;

/// `[batch] ++ pad_rank(sample, rank)` for a batched shape.
fn batched_padded(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut s = vec![shape[0]];
    s.extend(pad_rank(&shape[1..], rank));
    s
}

/// `y[..., o] = Σ_i w[o, i] x[..., i] + b[o]` over the last axis, one matrix product.
pub fn linear<T: Scalar>(x: &ArrayD<T>, w: &Array2<f64>, b: Option<&Array1<f64>>) -> R<ArrayD<T>> {
    let (out, inp) = w.dim();
    let shape = x.shape().to_vec();
    if shape.len() < 2 || shape[shape.len() - 1] != inp {
        return Err(format!(
            "Linear expects a last axis of {inp}, got {shape:?}"
        ));
    }
    let rows: usize = shape[..shape.len() - 1].iter().product();
    let mut oshape = shape.clone();
    *oshape.last_mut().ok_or("empty shape")? = out;
    if let Some(xs) = x.as_slice() {
        if let Some(y) = T::linear_kernel(xs, rows, w, b, false) {
            return ArrayD::from_shape_vec(IxDyn(&oshape), y).map_err(|e| e.to_string());
        }
    }
    let x2 = x
        .as_standard_layout()
        .into_shape_with_order((rows, inp))
        .map_err(|e| e.to_string())?;
    let wt = T::cast(w);
    let mut y = x2.dot(&wt.t());
    if let Some(b) = b {
        y += &T::cast(b);
    }
    // The product may come out column-major (ndarray picks the layout from its operands).
    let y = if y.is_standard_layout() {
        y
    } else {
        y.as_standard_layout().into_owned()
    };
    y.into_shape_with_order(IxDyn(&oshape))
        .map_err(|e| e.to_string())
}

/// `relu(linear(x))` in one pass, when `T` has a dense kernel (`None` otherwise).
pub fn linear_fused_relu<T: Scalar>(
    x: &ArrayD<T>,
    w: &Array2<f64>,
    b: Option<&Array1<f64>>,
) -> Option<R<ArrayD<T>>> {
    let (out, inp) = w.dim();
    let shape = x.shape();
    if shape.len() < 2 || shape[shape.len() - 1] != inp {
        return None; // the unfused path reports the error
    }
    let rows: usize = shape[..shape.len() - 1].iter().product();
    let y = T::linear_kernel(x.as_slice()?, rows, w, b, true)?;
    let mut oshape = shape.to_vec();
    *oshape.last_mut()? = out;
    Some(ArrayD::from_shape_vec(IxDyn(&oshape), y).map_err(|e| e.to_string()))
}

/// `f(x, c)` elementwise with the constant `c` broadcast against the samples.
pub fn with_const<T: Scalar>(
    x: &ArrayD<T>,
    c: &ArrayD<f64>,
    f: impl Fn(T, T) -> T,
) -> R<ArrayD<T>> {
    let rank = (x.ndim() - 1).max(c.ndim());
    let xs = batched_padded(x.shape(), rank);
    let mut cs = vec![1];
    cs.extend(pad_rank(c.shape(), rank));
    let c = T::cast(c);
    let c = c.to_shape(IxDyn(&cs)).map_err(|e| e.to_string())?;
    let x = x.to_shape(IxDyn(&xs)).map_err(|e| e.to_string())?;
    zip_broadcast(&x.view(), &c.view(), f)
}

/// `f(a, b)` elementwise for two batched tensors with the same batch size.
pub fn binary<T: Scalar>(a: &ArrayD<T>, b: &ArrayD<T>, f: impl Fn(T, T) -> T) -> R<ArrayD<T>> {
    if a.shape()[0] != b.shape()[0] {
        return Err(format!(
            "batch sizes differ: {} and {}",
            a.shape()[0],
            b.shape()[0]
        ));
    }
    let rank = (a.ndim() - 1).max(b.ndim() - 1);
    let a = a
        .to_shape(IxDyn(&batched_padded(a.shape(), rank)))
        .map_err(|e| e.to_string())?;
    let b = b
        .to_shape(IxDyn(&batched_padded(b.shape(), rank)))
        .map_err(|e| e.to_string())?;
    zip_broadcast(&a.view(), &b.view(), f)
}

fn zip_broadcast<T: Scalar>(
    a: &ndarray::ArrayViewD<T>,
    b: &ndarray::ArrayViewD<T>,
    f: impl Fn(T, T) -> T,
) -> R<ArrayD<T>> {
    let shape = crate::tensor::broadcast_shapes(a.shape(), b.shape())?;
    let a = a
        .broadcast(IxDyn(&shape))
        .ok_or_else(|| format!("cannot broadcast {:?} to {shape:?}", a.shape()))?;
    let b = b
        .broadcast(IxDyn(&shape))
        .ok_or_else(|| format!("cannot broadcast {:?} to {shape:?}", b.shape()))?;
    Ok(ndarray::Zip::from(&a).and(&b).map_collect(|&p, &q| f(p, q)))
}

/// `y = (x − mean) / sqrt(var + eps) · scale + bias` per channel (sample axis 1).
pub fn batch_norm<T: Scalar>(
    x: &ArrayD<T>,
    scale: &Array1<f64>,
    bias: &Array1<f64>,
    mean: &Array1<f64>,
    var: &Array1<f64>,
    eps: f64,
) -> R<ArrayD<T>> {
    if x.ndim() < 3 || x.shape()[2] != scale.len() {
        return Err(format!(
            "BatchNorm with {} channels on shape {:?}",
            scale.len(),
            &x.shape()[1..]
        ));
    }
    let mut y = x.clone();
    let eps = T::from_f64(eps);
    for (c, mut lane) in y.axis_iter_mut(Axis(2)).enumerate() {
        let m = T::from_f64(mean[c]);
        let d = (T::from_f64(var[c]) + eps).sqrt();
        let s = T::from_f64(scale[c]);
        let b = T::from_f64(bias[c]);
        lane.mapv_inplace(|v| (v - m) / d * s + b);
    }
    Ok(y)
}

/// Row-major reshape of each sample.
pub fn reshape<T: Scalar>(x: &ArrayD<T>, shape: &[usize]) -> R<ArrayD<T>> {
    let mut s = vec![x.shape()[0]];
    s.extend_from_slice(shape);
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&s))
        .map_err(|e| format!("cannot reshape {:?} to {shape:?}: {e}", &x.shape()[1..]))
}

/// Permutes the sample axes; the batch axis stays first.
pub fn transpose<T: Scalar>(x: &ArrayD<T>, perm: &[usize]) -> R<ArrayD<T>> {
    if perm.len() + 1 != x.ndim() {
        return Err(format!("perm {perm:?} for a rank-{} sample", x.ndim() - 1));
    }
    let mut p = vec![0];
    p.extend(perm.iter().map(|&a| a + 1));
    let mut seen = vec![false; p.len()];
    for &a in &p {
        if a >= p.len() || seen[a] {
            return Err(format!("perm {perm:?} is not a permutation"));
        }
        seen[a] = true;
    }
    Ok(x.view()
        .permuted_axes(IxDyn(&p))
        .as_standard_layout()
        .into_owned())
}

/// Softmax along sample axis `axis`, computed as `exp(x − max) / Σ exp(x − max)`.
pub fn softmax<T: Scalar>(x: &ArrayD<T>, axis: usize) -> R<ArrayD<T>> {
    if axis + 1 >= x.ndim() {
        return Err(format!("axis {axis} for a rank-{} sample", x.ndim() - 1));
    }
    let mut y = x.clone();
    for mut lane in y.lanes_mut(Axis(axis + 1)) {
        let m = lane.fold(T::neg_infinity(), |m, &v| m.max(v));
        lane.mapv_inplace(|v| (v - m).exp());
        let s = lane.fold(T::zero(), |s, &v| s + v);
        lane.mapv_inplace(|v| v / s);
    }
    Ok(y)
}
