//! Bound rules of the windowed and per-channel ops: Conv, BatchNorm, AveragePool, MaxPool,
//! GlobalAveragePool (being written).

use ndarray::Array2;

use super::{unsupported, Accum};
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::{Graph, Node};

/// The interval image of a windowed op.
pub fn interval(_graph: &Graph, node: &Node, _x: &Interval) -> Result<Interval> {
    Err(unsupported(node, "not supported by the bound engine yet"))
}

/// One backward step through a windowed op.
pub fn backward(
    _graph: &Graph,
    node: &Node,
    _lam: &Array2<f64>,
    _x: &Interval,
    _acc: &mut Accum,
) -> Result<Array2<f64>> {
    Err(unsupported(node, "not supported by the bound engine yet"))
}
