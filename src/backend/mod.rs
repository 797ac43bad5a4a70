//! Backends: the few heavy primitives of the bound engines, behind one trait.
//!
//! What comes in: coefficient matrices, enclosures (boxes) and a node of the graph. What goes
//! out: the same results `bounds::ops` gives, computed wherever the backend runs. The CPU
//! backend ([`Cpu`]) *is* `bounds::ops`: every method calls the rule the engines used before
//! backends existed, so its numbers are bit-identical and it costs no copy. A device backend
//! ([`device::DeviceBackend`]) runs the primitives it has kernels for (`kernels/*.cu`: interval
//! affine maps, the weight product and error terms of a backward step through Linear, the ReLU
//! family's relaxation step, concretisation over boxes) and the exact host rule for every other
//! op; its bounds follow the soundness argument of `bounds::rounding` with directed rounding
//! (`__fma_rd`, `__dadd_ru`, …) where the CPU adds error terms.
//!
//! The primitives are batched the way `verify::batch` needs them: many sub-boxes of one
//! branch-and-bound round, their rows stacked in one coefficient matrix, each block of rows
//! over its own box.
//!
//! Which backend runs is chosen once, from `--device cpu|cuda|auto` ([`Device`], [`select`]).
//! CUDA (`backend::cuda`, feature `cuda`) is loaded at run time (the driver and NVRTC through
//! cudarc's dynamic loading): the binary builds and runs where CUDA is absent.

use std::ops::Range;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::bounds::ops::Accum;
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::{Graph, Node};

mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
pub mod kernels;
mod select;

pub use cpu::Cpu;
pub use select::{select, Device, Selection};

/// The backend of this process: the CPU unless the command line installed another
/// ([`set_process_backend`], from `--device`). `verify::batch::Plan::new` uses it, so the
/// branch-and-bound code needs no backend argument of its own.
static PROCESS_BACKEND: std::sync::RwLock<Option<AnyBackend>> = std::sync::RwLock::new(None);

/// Installs the backend every later [`process_backend`] returns (the CLI, once, before any
/// work).
pub fn set_process_backend(backend: AnyBackend) {
    let mut slot = PROCESS_BACKEND.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(backend);
}

/// The backend of this process (see [`set_process_backend`]); the CPU by default.
pub fn process_backend() -> AnyBackend {
    let slot = PROCESS_BACKEND.read().unwrap_or_else(|e| e.into_inner());
    slot.clone().unwrap_or_default()
}

/// Rows `range` of a stacked coefficient matrix, over the box `bounds` (its enclosure of the
/// value the rows act on).
pub type RowBlock<'a> = (Range<usize>, &'a Interval);

/// Rows `range` of a stacked coefficient matrix, over a box's enclosures of every input of
/// the node being stepped through.
pub type InputBlock<'a> = (Range<usize>, Vec<&'a Interval>);

/// The hot primitives of batched bound propagation (see the module notes). Every method must
/// return bounds that are sound in real arithmetic, as `bounds::ops` argues for its own.
pub trait Backend: Send + Sync {
    /// A short name for messages (`cpu`, `cuda`, `emulated-cuda`).
    fn name(&self) -> &'static str;

    /// The interval image of `node` for each box of a batch: `inputs[d]` holds box `d`'s
    /// enclosures of the node's inputs ([`crate::bounds::ops::interval`] per box).
    fn interval_batch(
        &self,
        graph: &Graph,
        node: &Node,
        inputs: &[Vec<&Interval>],
    ) -> Result<Vec<Interval>>;

    /// One backward step through a node whose rule uses its input enclosures only through
    /// their magnitude (Linear, the constant ops, Add/Sub, Reshape, Transpose), on stacked rows
    /// ([`crate::bounds::ops::backward`] with no slopes).
    fn backward_affine(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        inputs: &[&Interval],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>>;

    /// One backward step through any other node (Conv, pooling, BatchNorm, smooth
    /// activations), each block of rows over its own box's enclosures of the node's inputs
    /// ([`crate::bounds::ops::backward`] per block, its accumulators the block's rows of `acc`).
    fn backward_blocks(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[InputBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>>;

    /// One backward step through a ReLU-family node, each block of rows relaxed over its own
    /// box ([`crate::bounds::ops::backward_leaky_blocks`]).
    fn backward_leaky_blocks(
        &self,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Array2<f64>>;

    /// Sound lower bounds of `lam_i · x + bias_i − err_i` for every row, `x` ranging over the
    /// box of the row's block ([`crate::bounds::ops::concretize_rows`] per block; `acc` holds
    /// one entry per row of `lam`). The blocks cover every row once, in order.
    fn concretize_blocks(
        &self,
        lam: ArrayView2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &Accum,
    ) -> Result<Vec<f64>>;
}

/// The backend a computation runs on: the CPU (calls `bounds::ops` directly, statically
/// dispatched) or a shared device backend.
#[derive(Clone, Default)]
pub enum AnyBackend {
    #[default]
    Cpu,
    Shared(Arc<dyn Backend>),
}

impl AnyBackend {
    pub fn name(&self) -> &'static str {
        match self {
            AnyBackend::Cpu => Cpu.name(),
            AnyBackend::Shared(b) => b.name(),
        }
    }
}

impl std::fmt::Debug for AnyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyBackend({})", self.name())
    }
}

impl Backend for AnyBackend {
    fn name(&self) -> &'static str {
        AnyBackend::name(self)
    }

    fn interval_batch(
        &self,
        graph: &Graph,
        node: &Node,
        inputs: &[Vec<&Interval>],
    ) -> Result<Vec<Interval>> {
        match self {
            AnyBackend::Cpu => Cpu.interval_batch(graph, node, inputs),
            AnyBackend::Shared(b) => b.interval_batch(graph, node, inputs),
        }
    }

    fn backward_affine(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        inputs: &[&Interval],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>> {
        match self {
            AnyBackend::Cpu => Cpu.backward_affine(graph, node, lam, inputs, acc),
            AnyBackend::Shared(b) => b.backward_affine(graph, node, lam, inputs, acc),
        }
    }

    fn backward_blocks(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[InputBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>> {
        match self {
            AnyBackend::Cpu => Cpu.backward_blocks(graph, node, lam, blocks, acc),
            AnyBackend::Shared(b) => b.backward_blocks(graph, node, lam, blocks, acc),
        }
    }

    fn backward_leaky_blocks(
        &self,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Array2<f64>> {
        match self {
            AnyBackend::Cpu => Cpu.backward_leaky_blocks(node, lam, blocks, acc),
            AnyBackend::Shared(b) => b.backward_leaky_blocks(node, lam, blocks, acc),
        }
    }

    fn concretize_blocks(
        &self,
        lam: ArrayView2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &Accum,
    ) -> Result<Vec<f64>> {
        match self {
            AnyBackend::Cpu => Cpu.concretize_blocks(lam, blocks, acc),
            AnyBackend::Shared(b) => b.concretize_blocks(lam, blocks, acc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_backend_is_the_cpu_by_default() {
        assert!(matches!(AnyBackend::default(), AnyBackend::Cpu));
        assert_eq!(process_backend().name(), "cpu");
        assert_eq!(format!("{:?}", AnyBackend::Cpu), "AnyBackend(cpu)");
    }
}
