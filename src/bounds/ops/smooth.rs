//! Bound rules of the smooth S-shaped activations, Sigmoid and Tanh: the interval image by
//! monotonicity, and the backward step through the per-neuron tangent/secant relaxations of
//! `bounds::relax::SShape` (whose intercepts are rigorous, see there).

use ndarray::Array2;

use super::{backward_relaxed, Accum};
use crate::bounds::relax::{NeuronRelaxation, SShape};
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::{Node, Op};

fn shape_of(node: &Node) -> SShape {
    match node.op {
        Op::Sigmoid => SShape::Sigmoid,
        _ => SShape::Tanh,
    }
}

/// The interval image of Sigmoid or Tanh: both are increasing.
pub fn interval(node: &Node, x: &Interval) -> Result<Interval> {
    let f = shape_of(node);
    let (lo, hi) = x.lo.iter().zip(&x.hi).map(|(&l, &u)| f.image(l, u)).unzip();
    Ok(Interval::new(lo, hi))
}

/// One backward step through Sigmoid or Tanh.
pub fn backward(
    node: &Node,
    lam: &Array2<f64>,
    x: &Interval,
    acc: &mut Accum,
) -> Result<Array2<f64>> {
    let f = shape_of(node);
    let relax: Vec<NeuronRelaxation> =
        x.lo.iter()
            .zip(&x.hi)
            .map(|(&l, &u)| f.relax(l, u))
            .collect();
    Ok(backward_relaxed(lam, &relax, None, &x.magnitude(), acc))
}
