//! CROWN over a batch of sub-boxes at once, for input-splitting branch-and-bound.
//!
//! In: a graph (one input, one output), a specification matrix `C`, and sub-boxes of the input,
//! each optionally with the pre-activation enclosures *inherited* from a box that contains it
//! (its parent in the split tree). Out: per sub-box, sound lower bounds of every row of `C`
//! applied to the output, the input coefficients of every row's linear bound (the exact
//! sensitivities of the bound, which steer the split), an enclosure of the output, and its own
//! pre-activation enclosures for its children.
//!
//! The algorithm is `engine::crown` (auto_LiRPA's default): in topological order, an interval
//! step gives every value an enclosure; at the inputs of relaxed nodes (pre-activations below
//! another relaxed node) the neurons it leaves unstable get CROWN bounds by a backward pass to
//! the input. Two things differ, both to do less work per box:
//!
//! - **Inheritance.** A parent's pre-activation enclosure is sound on every sub-box, so a
//!   child's interval step is intersected with it before deciding which neurons are unstable,
//!   and CROWN bounds are intersected with what is known (never replace it). Neurons the
//!   parent already proved stable cost nothing. An inherited enclosure may also be *narrower*
//!   than the parent's: ReLU splitting (`relu_bab`) bounds the sub-domain where a neuron is
//!   active (its enclosure cut to `[0, u]`) or inactive (`[l, 0]`); every bound is then sound
//!   on that sub-domain, and the two cover the box.
//! - **Stacking.** The rows of all boxes of a batch (the unstable neurons of every box, or the
//!   rows of `C` for every box) go through each backward step together. Steps whose rule uses
//!   the enclosure of their input only through its magnitude `m` in the rounding allowance
//!   (Linear, the constant ops, Add/Sub, Reshape, Transpose; see `bounds::ops::backward`) run
//!   once on the stacked rows with the *hull* of the boxes' enclosures: its magnitude dominates
//!   each box's, so each row's allowance still bounds its rounding error (the allowance is
//!   monotone in `m`), and the weight product becomes one large matrix product. Relaxed steps
//!   (ReLU family: `ops::backward_leaky_blocks`; any other op, one box at a time) use each
//!   box's own enclosure, row for row the same arithmetic as `engine::crown`.
//!
//! Final rows are also bounded by the interval enclosure of the output (`C` applied to it), and
//! the better of the two is kept.
//!
//! The interval steps, the stacked backward steps and the concretisations go through the
//! plan's [`Backend`] (the process's backend, the CPU unless `--device` chose another, or
//! the one given to [`Plan::with_backend`]); the per-box steps of other ops run on the host.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{s, Array2};

use crate::backend::{AnyBackend, Backend};
use crate::bounds::ops::{self, Accum};
use crate::bounds::rounding::{add_down, sub_down};
use crate::bounds::Interval;
use crate::engine::target_of;
use crate::error::Result;
use crate::ir::{Graph, Op, ValueId};

/// Pre-activation enclosures of a box, indexed by value (`None` where CROWN does not refine).
pub type Inherited = Arc<Vec<Option<Interval>>>;

/// A ReLU split: on the sub-domain, input `neuron` of value `value` (a ReLU's input) is
/// `≥ 0` (`active`) or `≤ 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub value: ValueId,
    pub neuron: usize,
    pub active: bool,
}

/// One sub-box to bound.
pub struct Job {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    /// Enclosures known on a box containing this one.
    pub inherited: Option<Inherited>,
}

/// What bounding one sub-box gives.
pub struct BoxBound {
    /// Sound lower bound of each row of `C` applied to the output.
    pub rows: Vec<f64>,
    /// Enclosure of the output.
    pub output: Interval,
    /// Rows × input size: the coefficients on the input of each row's linear lower bound.
    pub input_coeffs: Array2<f64>,
    /// The constant of each row's linear lower bound, rounded down: row `i` of `C` applied
    /// to the output is `≥ input_coeffs_i · x + consts_i` for every `x` of the box (`None`
    /// when some coefficients hang on values other than the input).
    pub consts: Option<Vec<f64>>,
    /// This box's own pre-activation enclosures (for its sub-boxes).
    pub inherited: Inherited,
    /// Per split of the job (see [`Plan::bound_with`]), a linear function `g·x + k` of the
    /// input with `g·x + k ≤ 0` on the split's sub-domain: `(g, k)` (`None` when it could
    /// not be formed).
    pub constraints: Vec<Option<Constraint>>,
}

/// A linear function of the input, `(g, k)` for `g·x + k`.
pub type Constraint = (Vec<f64>, f64);

/// The per-graph facts the batches need.
pub struct Plan {
    x: ValueId,
    out: ValueId,
    /// Values CROWN refines: inputs of relaxed nodes with a relaxed node above them.
    refine: Vec<bool>,
    /// Values whose enclosures are inherited: the inputs of relaxed nodes (the refined ones,
    /// and the first layer's, which ReLU splitting narrows; see `relu_bab`).
    inherit: Vec<bool>,
    /// Where the heavy primitives run.
    backend: AnyBackend,
}

/// Rows `range` of a stacked matrix belong to box `box_index`.
type Block = (Range<usize>, usize);

impl Plan {
    /// The plan on the process's backend (`backend::process_backend`: the CPU unless
    /// `--device` chose another).
    pub fn new(graph: &Graph) -> Result<Plan> {
        Plan::with_backend(graph, crate::backend::process_backend())
    }

    /// [`Plan::new`] with the primitives on `backend`.
    pub fn with_backend(graph: &Graph, backend: AnyBackend) -> Result<Plan> {
        let (x, out) = target_of(graph)?;
        let n = graph.values.len();
        let mut feeds_relaxed = vec![false; n];
        let mut relaxed_above = vec![false; n];
        for node in &graph.nodes {
            if ops::is_relaxed(&node.op) {
                feeds_relaxed[node.inputs[0].0] = true;
            }
        }
        for node in &graph.nodes {
            relaxed_above[node.output.0] =
                ops::is_relaxed(&node.op) || node.inputs.iter().any(|i| relaxed_above[i.0]);
        }
        let refine = (0..n)
            .map(|v| feeds_relaxed[v] && relaxed_above[v])
            .collect();
        Ok(Plan {
            x,
            out,
            refine,
            inherit: feeds_relaxed,
            backend,
        })
    }

    /// Bounds every job (see the module notes); `c` has one row per objective.
    pub fn bound(&self, graph: &Graph, c: &Array2<f64>, jobs: &[Job]) -> Result<Vec<BoxBound>> {
        self.bound_with(graph, c, jobs, &[])
    }

    /// [`Plan::bound`], where job `d` also lies on the sub-domain of the ReLU splits
    /// `splits[d]` (missing entries: none). For every split it returns a linear function of
    /// the input that is `≤ 0` on the sub-domain: the linear lower bound of `z_j` (inactive:
    /// `z_j ≤ 0` and `z_j ≥ ℓ(x)`, so `ℓ(x) ≤ 0`) or of `−z_j` (active), from a backward pass
    /// over the box's enclosures of the layers below (sound on the job's domain).
    pub fn bound_with(
        &self,
        graph: &Graph,
        c: &Array2<f64>,
        jobs: &[Job],
        splits: &[Vec<Split>],
    ) -> Result<Vec<BoxBound>> {
        let nb = jobs.len();
        let mut cons: Vec<Vec<Option<Constraint>>> = (0..nb)
            .map(|d| vec![None; splits.get(d).map_or(0, |s| s.len())])
            .collect();
        let nv = graph.values.len();
        let mut vals: Vec<Vec<Option<Interval>>> = vec![vec![None; nv]; nb];
        for (d, job) in jobs.iter().enumerate() {
            vals[d][self.x.0] = Some(Interval::new(job.lo.clone(), job.hi.clone()));
        }
        for (k, node) in graph.nodes.iter().enumerate() {
            let v = node.output;
            let ins: Vec<Vec<&Interval>> = vals
                .iter()
                .map(|val| {
                    node.inputs
                        .iter()
                        .map(|i| val[i.0].as_ref().expect("topological order"))
                        .collect()
                })
                .collect();
            let images = self.backend.interval_batch(graph, node, &ins)?;
            drop(ins);
            for ((d, job), mut b) in jobs.iter().enumerate().zip(images) {
                if self.inherit[v.0] {
                    if let Some(p) = job.inherited.as_ref().and_then(|p| p[v.0].as_ref()) {
                        b = b.intersect(p);
                    }
                }
                vals[d][v.0] = Some(b);
            }
            // The split constraints on this value.
            let mut blocks: Vec<Block> = Vec::new();
            let mut which: Vec<(usize, usize)> = Vec::new();
            for (d, sp) in splits.iter().enumerate() {
                let start = which.len();
                for (n, s) in sp.iter().enumerate() {
                    if s.value == v {
                        which.push((d, n));
                    }
                }
                if which.len() > start {
                    blocks.push((start..which.len(), d));
                }
            }
            if !which.is_empty() {
                let width = graph.value(v).size();
                let mut cm = Array2::zeros((which.len(), width));
                for (r, &(d, n)) in which.iter().enumerate() {
                    let s = splits[d][n];
                    cm[(r, s.neuron)] = if s.active { -1.0 } else { 1.0 };
                }
                let (_, lam, consts) = self.backward(graph, k, v, cm, &blocks, &vals, true)?;
                if let (Some(lam), Some(consts)) = (lam, consts) {
                    for (r, &(d, n)) in which.iter().enumerate() {
                        cons[d][n] = Some((lam.row(r).to_vec(), consts[r]));
                    }
                }
            }
            if !self.refine[v.0] {
                continue;
            }
            // CROWN lower and upper bounds of every unstable neuron of every box.
            let mut blocks: Vec<Block> = Vec::new();
            let mut chosen: Vec<Vec<usize>> = Vec::with_capacity(nb);
            let mut rows = 0;
            for (d, val) in vals.iter().enumerate() {
                let b = val[v.0].as_ref().expect("just computed");
                let idx: Vec<usize> = (0..b.len())
                    .filter(|&j| b.lo[j] < 0.0 && b.hi[j] > 0.0)
                    .collect();
                if !idx.is_empty() {
                    blocks.push((rows..rows + 2 * idx.len(), d));
                    rows += 2 * idx.len();
                }
                chosen.push(idx);
            }
            if rows == 0 {
                continue;
            }
            let width = graph.value(v).size();
            let mut cm = Array2::zeros((rows, width));
            for (range, d) in &blocks {
                let idx = &chosen[*d];
                for (r, &j) in idx.iter().enumerate() {
                    cm[(range.start + r, j)] = 1.0;
                    cm[(range.start + idx.len() + r, j)] = -1.0;
                }
            }
            let (lower, _, _) = self.backward(graph, k, v, cm, &blocks, &vals, false)?;
            for (range, d) in &blocks {
                let idx = &chosen[*d];
                let b = vals[*d][v.0].as_mut().expect("just computed");
                for (r, &j) in idx.iter().enumerate() {
                    b.lo[j] = b.lo[j].max(lower[range.start + r]);
                    b.hi[j] = b.hi[j].min(-lower[range.start + idx.len() + r]);
                }
            }
        }
        // The objective rows, stacked per box.
        let r = c.nrows();
        let n_out = c.ncols();
        let n_in = graph.value(self.x).size();
        let mut all = Array2::zeros((r * nb, n_out));
        let blocks: Vec<Block> = (0..nb).map(|d| (d * r..(d + 1) * r, d)).collect();
        for (range, _) in &blocks {
            all.slice_mut(s![range.clone(), ..]).assign(c);
        }
        let (lower, input_lam, consts) = match graph.producer(self.out) {
            Some(k) => self.backward(graph, k, self.out, all, &blocks, &vals, true)?,
            None => {
                // The output is the input itself.
                let mut lower = Vec::with_capacity(r * nb);
                for (d, val) in vals.iter().enumerate() {
                    let b = val[self.out.0].as_ref().expect("input");
                    lower.extend(ops::concretize_lower(c, b, &Accum::new(r)));
                    let _ = d;
                }
                let lam = Array2::from_shape_fn((r * nb, n_in), |(i, j)| c[(i % r, j)]);
                (lower, Some(lam), Some(vec![0.0; r * nb]))
            }
        };
        let zero = Accum::new(r);
        let mut res = Vec::with_capacity(nb);
        for (d, (mut val, constraints)) in vals.into_iter().zip(cons).enumerate() {
            let output = val[self.out.0].clone().expect("computed");
            let direct = ops::concretize_lower(c, &output, &zero);
            let rows = (0..r).map(|i| lower[d * r + i].max(direct[i])).collect();
            let input_coeffs = match &input_lam {
                Some(l) => l.slice(s![d * r..(d + 1) * r, ..]).to_owned(),
                None => Array2::zeros((r, n_in)),
            };
            for (v, keep) in val.iter_mut().zip(&self.inherit) {
                if !keep {
                    *v = None;
                }
            }
            let consts = consts.as_ref().map(|k| k[d * r..(d + 1) * r].to_vec());
            res.push(BoxBound {
                rows,
                output,
                input_coeffs,
                consts,
                inherited: Arc::new(val),
                constraints,
            });
        }
        Ok(res)
    }

    /// Sound lower bounds of the stacked rows of `c` on value `v` (produced by node `k`), each
    /// block of rows over its own box, and (when `record`) the coefficients reaching the input
    /// and, when nothing else is left, the constants of the linear bounds (rounded down).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn backward(
        &self,
        graph: &Graph,
        k: usize,
        v: ValueId,
        c: Array2<f64>,
        blocks: &[Block],
        vals: &[Vec<Option<Interval>>],
        record: bool,
    ) -> Result<(Vec<f64>, Option<Array2<f64>>, Option<Vec<f64>>)> {
        let rows = c.nrows();
        let mut lams: HashMap<usize, Array2<f64>> = HashMap::new();
        lams.insert(v.0, c);
        let mut acc = Accum::new(rows);
        let enclosure = |d: usize, i: ValueId| vals[d][i.0].as_ref().expect("computed before");
        let hull = |i: ValueId| {
            let mut h = enclosure(blocks[0].1, i).clone();
            for (_, d) in &blocks[1..] {
                let b = enclosure(*d, i);
                for j in 0..h.len() {
                    h.lo[j] = h.lo[j].min(b.lo[j]);
                    h.hi[j] = h.hi[j].max(b.hi[j]);
                }
            }
            h
        };
        for node in graph.nodes[..=k].iter().rev() {
            let Some(lam) = lams.remove(&node.output.0) else {
                continue;
            };
            let outs = match node.op {
                Op::Linear { .. }
                | Op::AddConst(_)
                | Op::MulConst(_)
                | Op::DivConst(_)
                | Op::Add
                | Op::Sub
                | Op::Reshape { .. }
                | Op::Transpose { .. } => {
                    let hulls: Vec<Interval> = node.inputs.iter().map(|&i| hull(i)).collect();
                    let refs: Vec<&Interval> = hulls.iter().collect();
                    self.backend
                        .backward_affine(graph, node, &lam, &refs, &mut acc)?
                }
                Op::Relu | Op::LeakyRelu { .. } => {
                    let per: Vec<(Range<usize>, &Interval)> = blocks
                        .iter()
                        .map(|(r, d)| (r.clone(), enclosure(*d, node.inputs[0])))
                        .collect();
                    vec![self
                        .backend
                        .backward_leaky_blocks(node, &lam, &per, &mut acc)?]
                }
                _ => {
                    // One box at a time, with its own enclosures.
                    let per: Vec<(Range<usize>, Vec<&Interval>)> = blocks
                        .iter()
                        .map(|(r, d)| {
                            let ins = node.inputs.iter().map(|&i| enclosure(*d, i)).collect();
                            (r.clone(), ins)
                        })
                        .collect();
                    self.backend
                        .backward_blocks(graph, node, &lam, &per, &mut acc)?
                }
            };
            for (inp, l) in node.inputs.iter().zip(outs) {
                match lams.get_mut(&inp.0) {
                    Some(existing) => {
                        *existing += &l;
                        // The sum is rounded: charge 2u Σ |sum| m per row (hull magnitude).
                        let m = hull(*inp).magnitude();
                        ops::charge_elementwise(existing, &m, &mut acc);
                    }
                    None => {
                        lams.insert(inp.0, l);
                    }
                }
            }
        }
        let input_lam = if record {
            lams.get(&self.x.0).cloned()
        } else {
            None
        };
        let consts = (record && lams.len() == 1 && lams.contains_key(&self.x.0)).then(|| {
            (0..rows)
                .map(|i| sub_down(acc.bias[i], acc.err[i]))
                .collect()
        });
        // Everything left hangs on the graph input (or on values no node produces).
        let mut total = vec![0.0; rows];
        let zero = Accum::new(rows);
        let mut first = true;
        for (vid, lam) in &lams {
            let per: Vec<(Range<usize>, &Interval)> = blocks
                .iter()
                .map(|(r, d)| (r.clone(), enclosure(*d, ValueId(*vid))))
                .collect();
            let part = self.backend.concretize_blocks(
                lam.view(),
                &per,
                if first { &acc } else { &zero },
            )?;
            for (t, p) in total.iter_mut().zip(part) {
                *t = if first { p } else { add_down(*t, p) };
            }
            first = false;
        }
        if first {
            // No coefficient reached the input: the objective is a constant.
            let empty = Interval::new(vec![], vec![]);
            total = ops::concretize_lower(&Array2::zeros((rows, 0)), &empty, &acc);
        }
        Ok((total, input_lam, consts))
    }
}
