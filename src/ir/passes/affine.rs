//! Per-channel affine maps and their folding into a neighbouring Linear or Conv layer.
//!
//! A [`ChannelAffine`] is `y = s ⊙ x + t` along one axis (the last axis next to a Linear,
//! axis 1 next to a Conv): an `AddConst`/`MulConst`/`DivConst` whose constant varies along that
//! axis only, or a `BatchNorm` (`s = scale/√(var+ε)`, `t = bias − mean·s`).
//!
//! Folding *after* a layer scales its output rows: `W'[o,·] = s[o]·W[o,·]`,
//! `b'[o] = s[o]·b[o] + t[o]`. Folding *before* a layer scales its input columns and moves the
//! shift into the bias: `W'[o,j] = W[o,j]·s[ch(o,j)]`, `b'[o] = b[o] + Σ_j W[o,j]·t[ch(o,j)]`,
//! where `ch` maps a weight column to its input channel (groups, kernel taps). A shift before a
//! Conv with padding does not fold (see the module docs of `passes`).
//!
//! The formulas are generic over [`Num`], so the same code checks exactness (`Exact`) or
//! bounds the rounding (`Ball`).

use ndarray::{Array1, Array2, Array4, ArrayD};

use super::arith::Num;
use super::ParamError;
use crate::ir::op::{Conv2d, Op};

/// An elementwise affine map along one axis, as given by the op it comes from.
pub(crate) enum ChannelAffine {
    Add(Vec<f64>),
    Mul(Vec<f64>),
    Div(Vec<f64>),
    BatchNorm {
        scale: Vec<f64>,
        bias: Vec<f64>,
        mean: Vec<f64>,
        var: Vec<f64>,
        epsilon: f64,
    },
}

/// The constant `c` as a vector along `axis` of `shape`, if it broadcasts against `shape`
/// without growing it and is constant along every other axis.
fn along(c: &ArrayD<f64>, shape: &[usize], axis: usize) -> Option<Vec<f64>> {
    let r = shape.len();
    if c.ndim() > r || axis >= r {
        return None;
    }
    let padded: Vec<usize> = std::iter::repeat_n(1, r - c.ndim())
        .chain(c.shape().iter().copied())
        .collect();
    let n = shape[axis];
    for (k, &d) in padded.iter().enumerate() {
        let allowed = d == 1 || (k == axis && d == n);
        if !allowed {
            return None;
        }
    }
    let flat: Vec<f64> = c.iter().copied().collect();
    Some(if flat.len() == n {
        flat
    } else {
        vec![*flat.first()?; n]
    })
}

impl ChannelAffine {
    /// `op` applied to inputs of `shape`, seen as an affine map along `axis`.
    pub(crate) fn of(op: &Op, shape: &[usize], axis: usize) -> Option<ChannelAffine> {
        Some(match op {
            Op::AddConst(c) => ChannelAffine::Add(along(c, shape, axis)?),
            Op::MulConst(c) => ChannelAffine::Mul(along(c, shape, axis)?),
            Op::DivConst(c) => ChannelAffine::Div(along(c, shape, axis)?),
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                epsilon,
            } if axis == 1 && shape.len() >= 2 => ChannelAffine::BatchNorm {
                scale: scale.to_vec(),
                bias: bias.to_vec(),
                mean: mean.to_vec(),
                var: var.to_vec(),
                epsilon: *epsilon,
            },
            _ => return None,
        })
    }

    /// Whether the shift `t` is exactly zero.
    pub(crate) fn shift_is_zero(&self) -> bool {
        match self {
            ChannelAffine::Mul(_) | ChannelAffine::Div(_) => true,
            ChannelAffine::Add(t) => t.iter().all(|&v| v == 0.0),
            ChannelAffine::BatchNorm { bias, mean, .. } => {
                bias.iter().chain(mean).all(|&v| v == 0.0)
            }
        }
    }

    /// `(s, t)` in the arithmetic `N`.
    fn eval<N: Num>(&self) -> Option<(Vec<N>, Vec<N>)> {
        let p = |v: &[f64]| {
            v.iter()
                .map(|&x| N::param(x, 0.0))
                .collect::<Option<Vec<N>>>()
        };
        Some(match self {
            ChannelAffine::Add(t) => (vec![N::one(); t.len()], p(t)?),
            ChannelAffine::Mul(s) => (p(s)?, vec![N::zero(); s.len()]),
            ChannelAffine::Div(c) => (
                p(c)?
                    .iter()
                    .map(|c| N::one().div(c))
                    .collect::<Option<_>>()?,
                vec![N::zero(); c.len()],
            ),
            ChannelAffine::BatchNorm {
                scale,
                bias,
                mean,
                var,
                epsilon,
            } => {
                let eps = N::param(*epsilon, 0.0)?;
                let mut s = Vec::with_capacity(scale.len());
                let mut t = Vec::with_capacity(scale.len());
                for k in 0..scale.len() {
                    let sd = N::param(var[k], 0.0)?.add(&eps)?.sqrt()?;
                    let sk = N::param(scale[k], 0.0)?.div(&sd)?;
                    let tk = N::param(bias[k], 0.0)?.sub(&N::param(mean[k], 0.0)?.mul(&sk)?)?;
                    s.push(sk);
                    t.push(tk);
                }
                (s, t)
            }
        })
    }

    /// Number of multiply-adds a fold costs (budget for exact rational arithmetic).
    pub(crate) fn len(&self) -> usize {
        match self {
            ChannelAffine::Add(v) | ChannelAffine::Mul(v) | ChannelAffine::Div(v) => v.len(),
            ChannelAffine::BatchNorm { scale, .. } => scale.len(),
        }
    }
}

/// A Linear or Conv layer seen as rows: `out` rows of `k` weights each, a bias per row, and
/// the input channel each weight column reads.
pub(crate) struct Rows<'a> {
    op: &'a Op,
    out: usize,
    k: usize,
    weight: Vec<f64>,
    bias: Option<Vec<f64>>,
}

impl<'a> Rows<'a> {
    pub(crate) fn of(op: &'a Op) -> Option<Rows<'a>> {
        let (weight, bias, out) = match op {
            Op::Linear { weight, bias } => (
                weight.iter().copied().collect::<Vec<f64>>(),
                bias.as_ref(),
                weight.nrows(),
            ),
            Op::Conv(c) => (
                c.weight.iter().copied().collect(),
                c.bias.as_ref(),
                c.out_channels(),
            ),
            _ => return None,
        };
        let k = weight.len().checked_div(out)?;
        Some(Rows {
            op,
            out,
            k,
            weight,
            bias: bias.map(|b| b.to_vec()),
        })
    }

    /// The number of weights.
    pub(crate) fn size(&self) -> usize {
        self.out * self.k
    }

    /// The input channel read by weight column `j` of row `o`.
    fn channel(&self, o: usize, j: usize) -> usize {
        match self.op {
            Op::Conv(c) => {
                let ws = c.weight.shape();
                let per_group_out = (ws[0] / c.group.max(1)).max(1);
                (o / per_group_out) * ws[1] + j / (ws[2] * ws[3]).max(1)
            }
            _ => j,
        }
    }

    /// Number of input channels the layer reads.
    fn in_channels(&self) -> usize {
        match self.op {
            Op::Conv(c) => c.weight.shape()[1] * c.group,
            _ => self.k,
        }
    }

    /// Whether the layer zero-pads its input (a Conv with nonzero pads).
    pub(crate) fn pads(&self) -> bool {
        matches!(self.op, Op::Conv(c) if c.pads.iter().any(|&p| p != 0))
    }

    fn params<N: Num>(&self, err: ParamError) -> Option<(Vec<N>, Vec<N>)> {
        let w = self
            .weight
            .iter()
            .map(|&x| N::param(x, err.weight))
            .collect::<Option<Vec<N>>>()?;
        let b = match &self.bias {
            Some(b) => b
                .iter()
                .map(|&x| N::param(x, err.bias))
                .collect::<Option<_>>()?,
            None => vec![N::zero(); self.out],
        };
        Some((w, b))
    }
}

/// Rounds `w` and `b` into a copy of `layer` (same geometry); `None` if a value is refused.
fn finish_layer<N: Num>(layer: &Op, w: &[N], b: &[N], keep_bias: bool) -> Option<(Op, ParamError)> {
    let mut err = ParamError::default();
    let mut wv = Vec::with_capacity(w.len());
    for x in w {
        let (v, e) = x.finish()?;
        err.weight = err.weight.max(e);
        wv.push(v);
    }
    let mut bv = Vec::with_capacity(b.len());
    for x in b {
        let (v, e) = x.finish()?;
        err.bias = err.bias.max(e);
        bv.push(v);
    }
    let keep_bias = keep_bias || bv.iter().any(|&v| v != 0.0);
    let bias = keep_bias.then(|| Array1::from(bv));
    let op = match layer {
        Op::Linear { weight, .. } => Op::Linear {
            weight: Array2::from_shape_vec(weight.raw_dim(), wv).ok()?,
            bias,
        },
        Op::Conv(c) => Op::Conv(Conv2d {
            weight: Array4::from_shape_vec(c.weight.raw_dim(), wv).ok()?,
            bias,
            ..c.clone()
        }),
        _ => return None,
    };
    Some((op, err))
}

/// `affine ∘ layer`: the affine map applied to the layer's output channels.
pub(crate) fn fold_after<N: Num>(
    layer: &Rows,
    err: ParamError,
    aff: &ChannelAffine,
) -> Option<(Op, ParamError)> {
    let (s, t) = aff.eval::<N>()?;
    if s.len() != layer.out {
        return None;
    }
    let (w, b) = layer.params::<N>(err)?;
    let mut nw = Vec::with_capacity(w.len());
    for (idx, x) in w.iter().enumerate() {
        nw.push(s[idx / layer.k].mul(x)?);
    }
    let mut nb = Vec::with_capacity(b.len());
    for o in 0..layer.out {
        nb.push(s[o].mul(&b[o])?.add(&t[o])?);
    }
    finish_layer(layer.op, &nw, &nb, layer.bias.is_some())
}

/// `layer ∘ affine`: the affine map applied to the layer's input channels. The caller
/// checks that a nonzero shift does not meet padding.
pub(crate) fn fold_before<N: Num>(
    layer: &Rows,
    err: ParamError,
    aff: &ChannelAffine,
) -> Option<(Op, ParamError)> {
    let (s, t) = aff.eval::<N>()?;
    if s.len() != layer.in_channels() {
        return None;
    }
    let shift = !aff.shift_is_zero();
    let (w, b) = layer.params::<N>(err)?;
    let mut nw = Vec::with_capacity(w.len());
    let mut nb = Vec::with_capacity(b.len());
    for o in 0..layer.out {
        let mut acc = b[o].clone();
        for j in 0..layer.k {
            let x = &w[o * layer.k + j];
            let ch = layer.channel(o, j);
            nw.push(x.mul(&s[ch])?);
            if shift {
                acc = acc.add(&x.mul(&t[ch])?)?;
            }
        }
        nb.push(acc);
    }
    finish_layer(layer.op, &nw, &nb, layer.bias.is_some())
}
