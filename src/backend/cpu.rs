//! The CPU backend: `bounds::ops` itself (ndarray, with rayon inside its products). The
//! reference every other backend is tested against, and the default.

use ndarray::{s, Array2, ArrayView2};

use super::{Backend, RowBlock};
use crate::bounds::ops::{self, Accum};
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::{Graph, Node};

/// The reference backend (see the module notes).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn interval_batch(
        &self,
        graph: &Graph,
        node: &Node,
        inputs: &[Vec<&Interval>],
    ) -> Result<Vec<Interval>> {
        inputs
            .iter()
            .map(|ins| ops::interval(graph, node, ins))
            .collect()
    }

    fn backward_affine(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        inputs: &[&Interval],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>> {
        ops::backward(graph, node, lam, inputs, None, acc)
    }

    fn backward_leaky_blocks(
        &self,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Array2<f64>> {
        ops::backward_leaky_blocks(node, lam, blocks, acc)
    }

    fn concretize_blocks(
        &self,
        lam: ArrayView2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &Accum,
    ) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(lam.nrows());
        for (r, x) in blocks {
            out.extend(ops::concretize_rows(
                lam.slice(s![r.clone(), ..]),
                x,
                acc,
                r.start,
            ));
        }
        Ok(out)
    }
}
