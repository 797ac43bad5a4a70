//! `Op`: the closed set of operators a beacons network is made of.
//!
//! Importers translate file formats into these; evaluators and bound engines match on them
//! exhaustively, so adding a variant makes the compiler list every place that must learn it.
//! Ops are plain data: their parameters are the exact numbers stored in the model file,
//! widened to `f64` (every `f32` is exactly an `f64`). They never hold bounds or engine state.
//!
//! Shapes are *per-sample* shapes: the model's declared input shape with any symbolic (batch)
//! dimension pinned to 1. Batched evaluation prepends its own batch axis.

use ndarray::{Array1, Array2, Array4, ArrayD};

use crate::tensor::broadcast_shapes;

/// A 2-D convolution (ONNX `Conv` with two spatial dimensions), input `[N, C, H, W]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    /// `[out_channels, in_channels / group, kernel_h, kernel_w]`.
    pub weight: Array4<f64>,
    pub bias: Option<Array1<f64>>,
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]` (ONNX order: all begins, then all ends).
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
}

impl Conv2d {
    pub fn out_channels(&self) -> usize {
        self.weight.shape()[0]
    }
    pub fn kernel(&self) -> [usize; 2] {
        [self.weight.shape()[2], self.weight.shape()[3]]
    }
}

/// A 2-D pooling window (ONNX `AveragePool` / `MaxPool`), input `[N, C, H, W]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub ceil_mode: bool,
    /// AveragePool only: whether padded cells count in the divisor.
    pub count_include_pad: bool,
}

/// Output length of a strided, dilated, padded window along one axis (ONNX formula).
pub fn window_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_begin: usize,
    pad_end: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Result<usize, String> {
    let effective = dilation * (kernel.max(1) - 1) + 1;
    let padded = input + pad_begin + pad_end;
    if padded < effective {
        return Err(format!(
            "window of extent {effective} does not fit an axis of length {input} padded by {pad_begin}+{pad_end}"
        ));
    }
    if stride == 0 {
        return Err("stride 0".into());
    }
    let span = padded - effective;
    let mut len = if ceil_mode {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    // ONNX (like PyTorch) drops a last window that would start inside the end padding.
    if ceil_mode && (len - 1) * stride >= input + pad_begin {
        len -= 1;
    }
    Ok(len)
}

/// The operators of the beacons IR. See the module docs for the shape convention.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `y[..., o] = Σ_i weight[o, i] · x[..., i] + bias[o]`, over the last axis.
    /// Gemm, MatMul with a constant right operand, and NNet layers become this.
    Linear {
        /// `[out, in]`.
        weight: Array2<f64>,
        bias: Option<Array1<f64>>,
    },
    Conv(Conv2d),
    /// `x + c`, `c` broadcast (numpy rules) against the input.
    AddConst(ArrayD<f64>),
    /// `x · c`, `c` broadcast against the input.
    MulConst(ArrayD<f64>),
    /// `x / c`, `c` broadcast against the input. Kept apart from `MulConst` because `1/c` is
    /// generally not a float: evaluating `x / c` keeps the file's exact meaning.
    DivConst(ArrayD<f64>),
    /// `a + b` of two computed tensors (residual connections), broadcast.
    Add,
    /// `a − b` of two computed tensors, broadcast.
    Sub,
    /// Inference batch normalisation over axis 1:
    /// `y = (x − mean) / sqrt(var + epsilon) · scale + bias`.
    BatchNorm {
        scale: Array1<f64>,
        bias: Array1<f64>,
        mean: Array1<f64>,
        var: Array1<f64>,
        epsilon: f64,
    },
    Relu,
    /// `x` for `x ≥ 0`, `alpha · x` otherwise.
    LeakyRelu {
        alpha: f64,
    },
    Sigmoid,
    Tanh,
    /// Row-major reshape to a static shape (ONNX Reshape and Flatten become this).
    Reshape {
        shape: Vec<usize>,
    },
    Transpose {
        perm: Vec<usize>,
    },
    AveragePool(Pool2d),
    MaxPool(Pool2d),
    /// `[N, C, H, W] → [N, C, 1, 1]`, the mean over each channel.
    GlobalAveragePool,
    /// Softmax along `axis`; only recognised as the final layer of a classifier.
    Softmax {
        axis: usize,
    },
}

impl Op {
    /// A short stable name, used in histograms, error messages and the canonical graph listing.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Linear { .. } => "Linear",
            Op::Conv(_) => "Conv",
            Op::AddConst(_) => "AddConst",
            Op::MulConst(_) => "MulConst",
            Op::DivConst(_) => "DivConst",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::BatchNorm { .. } => "BatchNorm",
            Op::Relu => "Relu",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::AveragePool(_) => "AveragePool",
            Op::MaxPool(_) => "MaxPool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::Softmax { .. } => "Softmax",
        }
    }

    /// How many computed (non-constant) inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Add | Op::Sub => 2,
            _ => 1,
        }
    }

    /// Whether the op is elementwise and has no parameters that mix elements.
    pub fn is_activation(&self) -> bool {
        matches!(
            self,
            Op::Relu | Op::LeakyRelu { .. } | Op::Sigmoid | Op::Tanh
        )
    }

    /// Number of stored parameters (weights, biases, constants).
    pub fn parameter_count(&self) -> usize {
        match self {
            Op::Linear { weight, bias } => weight.len() + bias.as_ref().map_or(0, |b| b.len()),
            Op::Conv(c) => c.weight.len() + c.bias.as_ref().map_or(0, |b| b.len()),
            Op::AddConst(c) | Op::MulConst(c) | Op::DivConst(c) => c.len(),
            Op::BatchNorm { scale, .. } => 4 * scale.len(),
            _ => 0,
        }
    }

    /// The per-sample output shape for the given per-sample input shapes, or why there is none.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        if inputs.len() != self.arity() {
            return Err(format!(
                "{} takes {} input(s), got {}",
                self.kind(),
                self.arity(),
                inputs.len()
            ));
        }
        let x = inputs[0];
        match self {
            Op::Linear { weight, bias } => {
                let (out, inp) = weight.dim();
                let last = x.last().copied().ok_or("Linear of a scalar")?;
                if last != inp {
                    return Err(format!(
                        "Linear expects a last axis of {inp}, input shape is {x:?}"
                    ));
                }
                if let Some(b) = bias {
                    if b.len() != out {
                        return Err(format!(
                            "Linear bias has {} entries for {out} outputs",
                            b.len()
                        ));
                    }
                }
                let mut s = x.to_vec();
                *s.last_mut().expect("non-empty") = out;
                Ok(s)
            }
            Op::Conv(c) => {
                let [n, ch, h, w] = rank4(x, "Conv")?;
                let ws = c.weight.shape();
                if c.group == 0 || ch % c.group != 0 || ws[0] % c.group != 0 {
                    return Err(format!(
                        "Conv group {} does not divide {ch} input and {} output channels",
                        c.group, ws[0]
                    ));
                }
                if ws[1] * c.group != ch {
                    return Err(format!(
                        "Conv weight expects {} input channels, input has {ch}",
                        ws[1] * c.group
                    ));
                }
                if let Some(b) = &c.bias {
                    if b.len() != ws[0] {
                        return Err(format!(
                            "Conv bias has {} entries for {} channels",
                            b.len(),
                            ws[0]
                        ));
                    }
                }
                let ho = window_output_len(
                    h,
                    ws[2],
                    c.strides[0],
                    c.pads[0],
                    c.pads[2],
                    c.dilations[0],
                    false,
                )?;
                let wo = window_output_len(
                    w,
                    ws[3],
                    c.strides[1],
                    c.pads[1],
                    c.pads[3],
                    c.dilations[1],
                    false,
                )?;
                Ok(vec![n, ws[0], ho, wo])
            }
            Op::AddConst(c) | Op::MulConst(c) | Op::DivConst(c) => {
                if c.ndim() > x.len() {
                    return Err(format!(
                        "constant of shape {:?} has more axes than the input {x:?}",
                        c.shape()
                    ));
                }
                broadcast_shapes(x, c.shape())
            }
            Op::Add | Op::Sub => broadcast_shapes(x, inputs[1]),
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                ..
            } => {
                let ch = *x.get(1).ok_or("BatchNorm needs a channel axis (axis 1)")?;
                for (name, p) in [
                    ("scale", scale),
                    ("bias", bias),
                    ("mean", mean),
                    ("var", var),
                ] {
                    if p.len() != ch {
                        return Err(format!(
                            "BatchNorm {name} has {} entries for {ch} channels",
                            p.len()
                        ));
                    }
                }
                Ok(x.to_vec())
            }
            Op::Relu | Op::LeakyRelu { .. } | Op::Sigmoid | Op::Tanh => Ok(x.to_vec()),
            Op::Reshape { shape } => {
                let a: usize = x.iter().product();
                let b: usize = shape.iter().product();
                if a != b {
                    return Err(format!(
                        "cannot reshape {x:?} ({a} elements) to {shape:?} ({b} elements)"
                    ));
                }
                Ok(shape.clone())
            }
            Op::Transpose { perm } => {
                let mut seen = vec![false; x.len()];
                if perm.len() != x.len() {
                    return Err(format!(
                        "Transpose perm {perm:?} for a rank-{} input",
                        x.len()
                    ));
                }
                for &p in perm {
                    if p >= x.len() || seen[p] {
                        return Err(format!("Transpose perm {perm:?} is not a permutation"));
                    }
                    seen[p] = true;
                }
                Ok(perm.iter().map(|&p| x[p]).collect())
            }
            Op::AveragePool(p) | Op::MaxPool(p) => {
                let [n, ch, h, w] = rank4(x, self.kind())?;
                let ho = window_output_len(
                    h,
                    p.kernel[0],
                    p.strides[0],
                    p.pads[0],
                    p.pads[2],
                    p.dilations[0],
                    p.ceil_mode,
                )?;
                let wo = window_output_len(
                    w,
                    p.kernel[1],
                    p.strides[1],
                    p.pads[1],
                    p.pads[3],
                    p.dilations[1],
                    p.ceil_mode,
                )?;
                Ok(vec![n, ch, ho, wo])
            }
            Op::GlobalAveragePool => {
                let [n, ch, _, _] = rank4(x, "GlobalAveragePool")?;
                Ok(vec![n, ch, 1, 1])
            }
            Op::Softmax { axis } => {
                if *axis >= x.len() {
                    return Err(format!("Softmax axis {axis} for a rank-{} input", x.len()));
                }
                Ok(x.to_vec())
            }
        }
    }
}

fn rank4(x: &[usize], what: &str) -> Result<[usize; 4], String> {
    match x {
        [n, c, h, w] => Ok([*n, *c, *h, *w]),
        _ => Err(format!(
            "{what} needs a [N, C, H, W] input, got shape {x:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn window_lengths_follow_onnx() {
        // 5 wide, kernel 3, stride 2, no pad: windows at 0, 2 -> 2.
        assert_eq!(window_output_len(5, 3, 2, 0, 0, 1, false).unwrap(), 2);
        // 6 wide, kernel 3, stride 2: floor 2, ceil 3 (last window starts at 4 < 6).
        assert_eq!(window_output_len(6, 3, 2, 0, 0, 1, false).unwrap(), 2);
        assert_eq!(window_output_len(6, 3, 2, 0, 0, 1, true).unwrap(), 3);
        // Dilation 2 makes a 3-kernel span 5.
        assert_eq!(window_output_len(5, 3, 1, 0, 0, 2, false).unwrap(), 1);
        assert!(window_output_len(2, 3, 1, 0, 0, 1, false).is_err());
    }

    #[test]
    fn linear_shapes() {
        let op = Op::Linear {
            weight: Array2::zeros((3, 5)),
            bias: Some(array![1.0, 2.0, 3.0]),
        };
        assert_eq!(op.output_shape(&[&[1, 5]]).unwrap(), vec![1, 3]);
        assert!(op.output_shape(&[&[1, 4]]).is_err());
    }

    #[test]
    fn transpose_rejects_non_permutations() {
        let op = Op::Transpose { perm: vec![0, 0] };
        assert!(op.output_shape(&[&[2, 3]]).is_err());
        let op = Op::Transpose { perm: vec![1, 0] };
        assert_eq!(op.output_shape(&[&[2, 3]]).unwrap(), vec![3, 2]);
    }
}
