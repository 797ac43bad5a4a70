//! Bound rules of the smooth S-shaped activations, Sigmoid and Tanh (being written).

use ndarray::Array2;

use super::{unsupported, Accum};
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::Node;

/// The interval image of Sigmoid or Tanh.
pub fn interval(node: &Node, _x: &Interval) -> Result<Interval> {
    Err(unsupported(node, "not supported by the bound engine yet"))
}

/// One backward step through Sigmoid or Tanh.
pub fn backward(
    node: &Node,
    _lam: &Array2<f64>,
    _x: &Interval,
    _acc: &mut Accum,
) -> Result<Array2<f64>> {
    Err(unsupported(node, "not supported by the bound engine yet"))
}
