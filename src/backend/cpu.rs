//! The CPU backend: `bounds::ops` itself (ndarray, with rayon inside its products). The
//! reference every other backend is tested against, and the default.

use ndarray::{s, Array2, ArrayView2};

use super::{Backend, InputBlock, RowBlock};
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

    fn backward_blocks(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[InputBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>> {
        let rows = lam.nrows();
        let mut outs: Vec<Array2<f64>> = node
            .inputs
            .iter()
            .map(|&i| Array2::zeros((rows, graph.value(i).size())))
            .collect();
        for (r, ins) in blocks {
            let sub = lam.slice(s![r.clone(), ..]).to_owned();
            let mut sub_acc = Accum {
                bias: acc.bias[r.clone()].to_vec(),
                err: acc.err[r.clone()].to_vec(),
            };
            let o = ops::backward(graph, node, &sub, ins, None, &mut sub_acc)?;
            for (dst, part) in outs.iter_mut().zip(o) {
                dst.slice_mut(s![r.clone(), ..]).assign(&part);
            }
            acc.bias[r.clone()].copy_from_slice(&sub_acc.bias);
            acc.err[r.clone()].copy_from_slice(&sub_acc.err);
        }
        Ok(outs)
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
