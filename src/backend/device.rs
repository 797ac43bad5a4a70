//! A backend over a set of device kernels: the host side shared by CUDA and its emulation.
//!
//! What comes in: the primitives of [`Backend`]. What goes out: the same bounds, with the
//! heavy loops done by [`Kernels`] — one method per entry point of `kernels/*.cu`, on flat
//! row-major `f64` arrays — and everything small (relaxation lines per neuron, the `Accum`
//! bookkeeping, the constants of the error terms) on the host, by the same code the CPU uses.
//! A Conv's backward step is Linear's with the convolution as a dense matrix
//! (`bounds::ops::dense_conv`, up to [`MAX_DENSE_CONV`] entries). Ops without a kernel (the
//! constant ops, Add/Sub, Reshape, Transpose, pooling, BatchNorm, smooth activations, and every
//! interval step but Linear's) run the host rule of `bounds::ops`.
//!
//! # Soundness
//!
//! The kernels keep the argument of `bounds::rounding`, with directed rounding where the CPU
//! rounds to nearest and adds an error term:
//!
//! - an interval affine map sums `w·x_lo` or `w·x_hi` (the corner each weight's sign selects)
//!   with `__fma_rd` for the lower end and `__fma_ru` for the upper one: every partial sum is
//!   rounded the right way, so the result encloses the exact image;
//! - a weight product `Λ W` is computed in round-to-nearest (any order, fused or not), and its
//!   error is charged as on the CPU, `γ_k Σ_o |λ_io| (|W| m)_o` plus the underflow term
//!   `k η Σ_j m_j`, with `|W| m` and `|Λ| · (|W| m)` summed upward (`__fma_ru` of non-negative
//!   terms: true upper bounds without inflation). `k` bounds the non-zero terms of an entry:
//!   `out` for Linear; for a dense convolution the most taps on one input (a zero weight adds
//!   an exact zero, whatever the order);
//! - a signed dot product (bias terms) is summed three times, to nearest, down and up; the
//!   distance of the nearest value to either directed one bounds its error;
//! - a relaxed coefficient `λ·s` is rounded to nearest and charged `(ru(λs) − rd(λs))·m`;
//! - a concretisation sums the selected corner products with `__fma_rd`.
//!
//! A NaN anywhere turns the affected bound into the trivial one (−∞ below, +∞ above).

use ndarray::{s, Array2, ArrayView2};

use super::{Backend, Cpu, InputBlock, RowBlock};
use crate::bounds::ops::{self, Accum};
use crate::bounds::relax::NeuronRelaxation;
use crate::bounds::rounding::{add_up, gamma, inflate_sum, mul_up, ETA};
use crate::bounds::Interval;
use crate::error::{Error, Result};
use crate::ir::{Graph, Node, Op};

/// Per-box relaxation lines of a ReLU-family layer (`boxes × n`, row-major) and the
/// magnitude of each box's enclosure of the layer's input.
pub struct Lines {
    pub lo_slope: Vec<f64>,
    pub lo_int: Vec<f64>,
    pub up_slope: Vec<f64>,
    pub up_int: Vec<f64>,
    pub mag: Vec<f64>,
}

/// What [`Kernels::relax_rows`] gives per row: the new coefficients (`rows × n`), the bias
/// term `v` with an error bound `v_err`, and the rounding charge of the coefficients.
pub struct Relaxed {
    pub res: Vec<f64>,
    pub v: Vec<f64>,
    pub v_err: Vec<f64>,
    pub charge: Vec<f64>,
}

/// The device entry points (`kernels/*.cu`), on flat row-major arrays. Errors are device
/// failures (out of memory, a failed launch), never numerical.
pub trait Kernels: Send + Sync {
    fn name(&self) -> &'static str;

    /// `affine_interval_f64`: for each of the `xlo.len() / n_in` vectors, an enclosure of
    /// `W x + b` over the box `[xlo, xhi]` (`w` is `n_out × n_in`).
    fn affine_interval(
        &self,
        w: &[f64],
        bias: Option<&[f64]>,
        n_out: usize,
        n_in: usize,
        xlo: &[f64],
        xhi: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)>;

    /// `matmul_f64`: `a · b` (`m × k` times `k × n`) in round-to-nearest.
    fn matmul(&self, a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Result<Vec<f64>>;

    /// `abs_matvec_up_f64`: `y_i ≥ Σ_j |a_ij| x_j` exactly, for `x ≥ 0` (`a` is `rows × cols`).
    fn abs_matvec_up(&self, a: &[f64], rows: usize, cols: usize, x: &[f64]) -> Result<Vec<f64>>;

    /// `dot_with_error_f64`: `v_i ≈ Σ_j a_ij b_j` and `e_i ≥ |v_i − Σ_j a_ij b_j|`.
    fn dot_with_error(
        &self,
        a: &[f64],
        rows: usize,
        cols: usize,
        b: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)>;

    /// `relax_rows_f64`: row `i` of `lam` (`rows × n`) through the lines of box `row_box[i]`.
    fn relax_rows(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lines: &Lines,
        row_box: &[u32],
    ) -> Result<Relaxed>;

    /// `concretize_f64`: a lower bound of `lam_i · x + bias_i − err_i` over the box
    /// `row_box[i]` of `lo`/`hi` (`boxes × n`).
    #[allow(clippy::too_many_arguments)]
    fn concretize(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lo: &[f64],
        hi: &[f64],
        row_box: &[u32],
        bias: &[f64],
        err: &[f64],
    ) -> Result<Vec<f64>>;
}

/// [`Backend`] over a [`Kernels`] implementation (see the module notes).
pub struct DeviceBackend<K> {
    pub kernels: K,
}

impl<K: Kernels> DeviceBackend<K> {
    pub fn new(kernels: K) -> DeviceBackend<K> {
        DeviceBackend { kernels }
    }
}

fn contiguous(a: ArrayView2<f64>) -> Vec<f64> {
    match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().copied().collect(),
    }
}

fn row_boxes(blocks: &[RowBlock<'_>], rows: usize) -> Result<Vec<u32>> {
    let mut rb = vec![u32::MAX; rows];
    for (b, (r, _)) in blocks.iter().enumerate() {
        rb[r.clone()].fill(b as u32);
    }
    if rb.contains(&u32::MAX) {
        return Err(Error::Invalid(
            "device backend: the row blocks do not cover every row".into(),
        ));
    }
    Ok(rb)
}

/// Entries of the dense matrix of a convolution above which its backward step stays on the
/// host (2^24 entries: 128 MiB of `f64`).
pub const MAX_DENSE_CONV: usize = 1 << 24;

/// A dense affine map `z_out = A z_in + b` for one backward step (`a` is `n_out × n_in`);
/// `terms` bounds the non-zero terms of any entry of `lam · a` (see the module notes).
struct Dense<'a> {
    a: &'a [f64],
    n_out: usize,
    n_in: usize,
    bias: Option<&'a [f64]>,
    terms: usize,
}

impl<K: Kernels> DeviceBackend<K> {
    /// `lam · a` on the device, with the rounding charged and the bias added per row; the
    /// rows of each block use the magnitude `m` of their own box's input enclosure.
    fn dense_step(
        &self,
        d: &Dense<'_>,
        lam: ArrayView2<f64>,
        blocks: &[(std::ops::Range<usize>, &[f64])],
        acc: &mut Accum,
    ) -> Result<Array2<f64>> {
        let rows = lam.nrows();
        let mut next = 0;
        for (r, _) in blocks {
            if r.start != next {
                break;
            }
            next = r.end;
        }
        if next != rows {
            return Err(Error::Invalid(
                "device backend: the row blocks do not cover every row in order".into(),
            ));
        }
        let lam_c = contiguous(lam);
        let product = self.kernels.matmul(&lam_c, d.a, rows, d.n_out, d.n_in)?;
        let g = gamma(d.terms);
        for (r, m) in blocks {
            let sum_m = inflate_sum(m.iter().sum(), d.n_in);
            let wm = self.kernels.abs_matvec_up(d.a, d.n_out, d.n_in, m)?;
            let lam_b = &lam_c[r.start * d.n_out..r.end * d.n_out];
            let lw = self.kernels.abs_matvec_up(lam_b, r.len(), d.n_out, &wm)?;
            let under = mul_up(d.terms as f64 * ETA, sum_m);
            for (i, e) in r.clone().zip(&lw) {
                acc.charge(i, add_up(mul_up(g, *e), under));
            }
        }
        if let Some(b) = d.bias {
            let (v, err) = self.kernels.dot_with_error(&lam_c, rows, d.n_out, b)?;
            for i in 0..rows {
                acc.add(i, v[i], err[i]);
            }
        }
        Array2::from_shape_vec((rows, d.n_in), product)
            .map_err(|e| Error::Invalid(format!("device backend: {e}")))
    }
}

impl<K: Kernels> Backend for DeviceBackend<K> {
    fn name(&self) -> &'static str {
        self.kernels.name()
    }

    fn interval_batch(
        &self,
        graph: &Graph,
        node: &Node,
        inputs: &[Vec<&Interval>],
    ) -> Result<Vec<Interval>> {
        let Op::Linear { weight, bias } = &node.op else {
            return Cpu.interval_batch(graph, node, inputs);
        };
        let (n_out, n_in) = weight.dim();
        let mut xlo = Vec::new();
        let mut xhi = Vec::new();
        for ins in inputs {
            xlo.extend_from_slice(&ins[0].lo);
            xhi.extend_from_slice(&ins[0].hi);
        }
        if n_in == 0 || xlo.len() % n_in != 0 {
            return Cpu.interval_batch(graph, node, inputs);
        }
        let w = contiguous(weight.view());
        let b = bias.as_ref().map(|b| b.to_vec());
        let (lo, hi) = self
            .kernels
            .affine_interval(&w, b.as_deref(), n_out, n_in, &xlo, &xhi)?;
        let mut out = Vec::with_capacity(inputs.len());
        let mut at = 0;
        for ins in inputs {
            let len = ins[0].len() / n_in * n_out;
            out.push(Interval::new(
                lo[at..at + len].to_vec(),
                hi[at..at + len].to_vec(),
            ));
            at += len;
        }
        Ok(out)
    }

    fn backward_affine(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        inputs: &[&Interval],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>> {
        let Op::Linear { weight, bias } = &node.op else {
            return Cpu.backward_affine(graph, node, lam, inputs, acc);
        };
        let m = inputs[0].magnitude();
        let (out, inp) = weight.dim();
        let lead = m.len() / inp;
        let w = contiguous(weight.view());
        let b = bias.as_ref().map(|b| b.to_vec());
        let mut res = Array2::zeros((lam.nrows(), lead * inp));
        for l in 0..lead {
            let lam_l = lam.slice(s![.., l * out..(l + 1) * out]);
            let dense = Dense {
                a: &w,
                n_out: out,
                n_in: inp,
                bias: b.as_deref(),
                terms: out,
            };
            let whole = [(0..lam.nrows(), &m[l * inp..(l + 1) * inp])];
            let product = self.dense_step(&dense, lam_l, &whole, acc)?;
            res.slice_mut(s![.., l * inp..(l + 1) * inp])
                .assign(&product);
        }
        Ok(vec![res])
    }

    fn backward_blocks(
        &self,
        graph: &Graph,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[InputBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Vec<Array2<f64>>> {
        let n_in = graph.value(node.inputs[0]).size();
        let Some(conv) = ops::dense_conv(graph, node, n_in, MAX_DENSE_CONV)? else {
            return Cpu.backward_blocks(graph, node, lam, blocks, acc);
        };
        if lam.ncols() != conv.n_out {
            return Cpu.backward_blocks(graph, node, lam, blocks, acc);
        }
        let mags: Vec<Vec<f64>> = blocks.iter().map(|(_, ins)| ins[0].magnitude()).collect();
        let per: Vec<(std::ops::Range<usize>, &[f64])> = blocks
            .iter()
            .zip(&mags)
            .map(|((r, _), m)| (r.clone(), m.as_slice()))
            .collect();
        let dense = Dense {
            a: &conv.a,
            n_out: conv.n_out,
            n_in: conv.n_in,
            bias: conv.bias.as_deref(),
            terms: conv.max_taps,
        };
        Ok(vec![self.dense_step(&dense, lam.view(), &per, acc)?])
    }

    fn backward_leaky_blocks(
        &self,
        node: &Node,
        lam: &Array2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &mut Accum,
    ) -> Result<Array2<f64>> {
        let f = ops::leaky(node)?;
        let (rows, n) = lam.dim();
        let cap = blocks.len() * n;
        let mut lines = Lines {
            lo_slope: Vec::with_capacity(cap),
            lo_int: Vec::with_capacity(cap),
            up_slope: Vec::with_capacity(cap),
            up_int: Vec::with_capacity(cap),
            mag: Vec::with_capacity(cap),
        };
        for (_, x) in blocks {
            for j in 0..n {
                let r: NeuronRelaxation = f.relax(x.lo[j], x.hi[j], None);
                lines.lo_slope.push(r.lower.slope);
                lines.lo_int.push(r.lower.intercept);
                lines.up_slope.push(r.upper.slope);
                lines.up_int.push(r.upper.intercept);
            }
            lines.mag.extend(x.magnitude());
        }
        let rb = row_boxes(blocks, rows)?;
        let r = self
            .kernels
            .relax_rows(&contiguous(lam.view()), rows, n, &lines, &rb)?;
        for i in 0..rows {
            acc.add(i, r.v[i], r.v_err[i]);
            acc.charge(i, r.charge[i]);
        }
        Array2::from_shape_vec((rows, n), r.res)
            .map_err(|e| Error::Invalid(format!("device backend: {e}")))
    }

    fn concretize_blocks(
        &self,
        lam: ArrayView2<f64>,
        blocks: &[RowBlock<'_>],
        acc: &Accum,
    ) -> Result<Vec<f64>> {
        let (rows, n) = lam.dim();
        let mut lo = Vec::with_capacity(blocks.len() * n);
        let mut hi = Vec::with_capacity(blocks.len() * n);
        for (_, x) in blocks {
            lo.extend_from_slice(&x.lo);
            hi.extend_from_slice(&x.hi);
        }
        let rb = row_boxes(blocks, rows)?;
        self.kernels.concretize(
            &contiguous(lam),
            rows,
            n,
            &lo,
            &hi,
            &rb,
            &acc.bias[..rows],
            &acc.err[..rows],
        )
    }
}

/// Threads per block of the one-dimensional kernels (one thread per row or entry).
pub const BLOCK_1D: u32 = 128;

/// Tile side of `matmul_f64` (`BEACONS_TILE` in `kernels/affine.cu`).
pub const TILE: u32 = 16;

/// Grid and block of a one-dimensional kernel over `threads` threads.
pub fn shape_1d(threads: usize) -> ([u32; 3], [u32; 3]) {
    let blocks = threads.div_ceil(BLOCK_1D as usize).max(1);
    ([blocks as u32, 1, 1], [BLOCK_1D, 1, 1])
}

/// Grid and block of `matmul_f64` for an `m × n` result.
pub fn shape_tiles(m: usize, n: usize) -> ([u32; 3], [u32; 3]) {
    let t = TILE as usize;
    (
        [n.div_ceil(t).max(1) as u32, m.div_ceil(t).max(1) as u32, 1],
        [TILE, TILE, 1],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_shapes_cover_every_thread() {
        for n in [0, 1, 127, 128, 129, 10_000] {
            let (g, b) = shape_1d(n);
            assert!((g[0] * b[0]) as usize >= n && g[0] >= 1);
        }
        let (g, b) = shape_tiles(33, 17);
        assert_eq!((g, b), ([2, 3, 1], [16, 16, 1]));
    }

    #[test]
    fn row_blocks_must_cover_every_row() {
        let x = Interval::new(vec![0.0], vec![1.0]);
        let blocks = [(0..2, &x), (2..3, &x)];
        assert_eq!(row_boxes(&blocks, 3).unwrap(), vec![0, 0, 1]);
        assert!(row_boxes(&blocks[..1], 3).is_err());
    }
}
