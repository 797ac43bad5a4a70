//! CROWN: backward linear relaxation with CROWN intermediate bounds.
//!
//! The pre-activation bounds (the inputs of ReLU-family nodes) are computed in topological
//! order, as auto_LiRPA's default does: first an interval step from the current bounds of the
//! node's inputs; the neurons it leaves unstable (`l < 0 < u`) then get CROWN bounds, a backward
//! pass from each of them to the input, which replace the interval step for those neurons
//! ([`Intermediate::Replace`]). A neuron is thus treated as stable when either the interval
//! step or CROWN proves it so. auto_LiRPA on a fresh module gives every neuron of a layer a
//! CROWN bound when more than 90% are unstable ([`Intermediate::ReplaceDense`]); CROWN is not
//! monotone in its intermediate bounds, so neither rule is uniformly tighter, and `crown`
//! (engine/mod.rs) also runs the dense rule when it would differ. A value whose ancestors hold
//! no relaxed node is an affine image of the box and its interval is already exact, so no
//! backward pass is spent on it.
//!
//! The final bounds come from one backward pass from the output rows (identity, negated
//! identity, and the specification rows), and are intersected with the interval step through
//! the last layer and with plain IBP, so `crown` is never looser than `ibp`.

use std::collections::HashMap;

use ndarray::Array2;

use super::{ibp, target_of, BoxBounds};
use crate::bounds::ops::{self, Accum};
use crate::bounds::rounding::add_down;
use crate::bounds::Interval;
use crate::error::Result;
use crate::ir::{Graph, Op, ValueId};

/// Share of unstable neurons above which [`Intermediate::ReplaceDense`] gives every neuron
/// of a layer a CROWN bound.
const DENSE_FRACTION: f64 = 0.9;

/// How CROWN bounds of a pre-activation combine with the interval step before them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intermediate {
    /// CROWN bounds of the neurons the interval step leaves unstable replace the step
    /// (auto_LiRPA's default rule with sparse intermediate bounds).
    Replace,
    /// As `Replace`, but when more than 90% of a layer is unstable every neuron of the layer
    /// gets its CROWN bound (auto_LiRPA's default on a module without sparse alphas).
    ReplaceDense,
    /// The intersection of both (tighter per neuron, though a tighter neuron bound can flip
    /// CROWN's adaptive slope and loosen a later bound).
    Intersect,
}

/// What one backward pass yields.
pub struct Pass {
    /// Sound lower bound of every row.
    pub lower: Vec<f64>,
    /// With recording: the coefficients on the graph input (rows × input size).
    pub input_lam: Option<Array2<f64>>,
    /// With recording: for each relaxed node (by position), the coefficients on its output.
    pub relaxed: HashMap<usize, Array2<f64>>,
}

/// Per-problem engine state: the best known enclosure of every value.
pub struct State<'g> {
    pub(crate) graph: &'g Graph,
    pub(crate) input: ValueId,
    pub(crate) output: ValueId,
    /// Enclosures of every value (interval steps, refined by CROWN at pre-activations).
    pub bounds: Vec<Option<Interval>>,
    /// Whether some layer had more than 90% but not all of its neurons unstable, so that
    /// [`Intermediate::ReplaceDense`] would have computed different bounds than `Replace`.
    pub(crate) dense_differs: bool,
}

impl<'g> State<'g> {
    /// Computes every intermediate bound for the box `input`.
    pub fn new(graph: &'g Graph, input: &Interval, mode: Intermediate) -> Result<State<'g>> {
        State::build(graph, input, mode, |st, k, v, idx, n| {
            st.crown_neurons(k, v, idx, n)
        })
    }

    /// Computes every intermediate bound in topological order: an interval step for every
    /// value, and for pre-activations that depend on a relaxed node, `refine(state, k, v,
    /// neurons, size)` (sound lower and upper bounds of the listed neurons of `v`, produced by
    /// node `k`, from the bounds computed so far) for the neurons the step leaves unstable
    /// (every neuron when more than 90% are). `mode` says how the refined bounds combine with
    /// the step.
    pub(crate) fn build<F>(
        graph: &'g Graph,
        input: &Interval,
        mode: Intermediate,
        mut refine: F,
    ) -> Result<State<'g>>
    where
        F: FnMut(&State<'g>, usize, ValueId, &[usize], usize) -> Result<(Vec<f64>, Vec<f64>)>,
    {
        let (x, out) = target_of(graph)?;
        let mut st = State {
            graph,
            input: x,
            output: out,
            bounds: vec![None; graph.values.len()],
            dense_differs: false,
        };
        st.bounds[x.0] = Some(input.clone());
        let mut needs_crown = vec![false; graph.values.len()];
        let mut relaxed_above = vec![false; graph.values.len()];
        for node in &graph.nodes {
            if ops::is_relaxed(&node.op) {
                needs_crown[node.inputs[0].0] = true;
            }
        }
        for (k, node) in graph.nodes.iter().enumerate() {
            let ins: Vec<&Interval> = node
                .inputs
                .iter()
                .map(|v| st.bounds[v.0].as_ref().expect("topological order"))
                .collect();
            let mut b = ops::interval(graph, node, &ins)?;
            let v = node.output;
            relaxed_above[v.0] =
                ops::is_relaxed(&node.op) || node.inputs.iter().any(|i| relaxed_above[i.0]);
            if needs_crown[v.0] && relaxed_above[v.0] {
                let unstable: Vec<usize> = (0..b.len())
                    .filter(|&j| b.lo[j] < 0.0 && b.hi[j] > 0.0)
                    .collect();
                let dense = unstable.len() as f64 > DENSE_FRACTION * b.len() as f64;
                if dense && unstable.len() < b.len() {
                    st.dense_differs = true;
                }
                let chosen: Vec<usize> = if dense && mode == Intermediate::ReplaceDense {
                    (0..b.len()).collect()
                } else {
                    unstable
                };
                if !chosen.is_empty() {
                    let (lo, hi) = refine(&st, k, v, &chosen, b.len())?;
                    for (n, &j) in chosen.iter().enumerate() {
                        if mode == Intermediate::Intersect {
                            b.lo[j] = b.lo[j].max(lo[n]);
                            b.hi[j] = b.hi[j].min(hi[n]);
                        } else {
                            b.lo[j] = lo[n];
                            b.hi[j] = hi[n];
                        }
                    }
                }
            }
            st.bounds[v.0] = Some(b);
        }
        Ok(st)
    }

    /// CROWN lower and upper bounds of the neurons `idx` of value `v` (produced by node `k`).
    pub(crate) fn crown_neurons(
        &self,
        k: usize,
        v: ValueId,
        idx: &[usize],
        n: usize,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let r = idx.len();
        let lower = self.backward_lower(k, v, neuron_rows(idx, n))?;
        let lo = lower[..r].to_vec();
        let hi = lower[r..].iter().map(|x| -x).collect();
        Ok((lo, hi))
    }

    /// Sound lower bounds of `c_i · v` for each row, by a full backward pass from node `k`
    /// (the producer of `v`) to the graph input.
    pub fn backward_lower(&self, k: usize, v: ValueId, c: Array2<f64>) -> Result<Vec<f64>> {
        Ok(self.backward_pass(k, v, c, None, false)?.lower)
    }

    /// The backward pass behind [`State::backward_lower`], optionally with alpha slopes per
    /// relaxed node (indexed by node position) and recording what alpha-CROWN needs: the
    /// coefficients reaching each relaxed node's output and the graph input.
    pub fn backward_pass(
        &self,
        k: usize,
        v: ValueId,
        c: Array2<f64>,
        alpha: Option<&HashMap<usize, Array2<f64>>>,
        record: bool,
    ) -> Result<Pass> {
        let g = self.graph;
        let rows = c.nrows();
        let mut lams: HashMap<usize, Array2<f64>> = HashMap::new();
        let mut relaxed = HashMap::new();
        let mut acc = Accum::new(rows);
        // Rows that pick single neurons (`±e_j`, as intermediate bounds use) through a Linear
        // node are a gather of its weight rows, exact with no product; the pass then starts
        // below that node.
        let mut top = k + 1;
        match &g.nodes[k].op {
            Op::Linear { weight, bias } if g.nodes[k].output == v => {
                if let Some(picks) = signed_picks(&c) {
                    let mut lam = Array2::zeros((rows, weight.ncols()));
                    for (i, &(j, sign)) in picks.iter().enumerate() {
                        lam.row_mut(i).assign(&weight.row(j));
                        if sign < 0.0 {
                            lam.row_mut(i).mapv_inplace(|w| -w);
                        }
                        if let Some(b) = bias {
                            acc.add(i, sign * b[j], 0.0);
                        }
                    }
                    lams.insert(g.nodes[k].inputs[0].0, lam);
                    top = k;
                } else {
                    lams.insert(v.0, c);
                }
            }
            _ => {
                lams.insert(v.0, c);
            }
        }
        for (idx, node) in g.nodes[..top].iter().enumerate().rev() {
            let Some(lam) = lams.remove(&node.output.0) else {
                continue;
            };
            let ins: Vec<&Interval> = node
                .inputs
                .iter()
                .map(|i| self.bounds[i.0].as_ref().expect("computed before"))
                .collect();
            let slopes = alpha.and_then(|a| a.get(&idx));
            let outs = ops::backward(g, node, &lam, &ins, slopes, &mut acc)?;
            if record && ops::is_relaxed(&node.op) {
                relaxed.insert(idx, lam);
            }
            for (inp, l) in node.inputs.iter().zip(outs) {
                match lams.get_mut(&inp.0) {
                    Some(existing) => {
                        *existing += &l;
                        // The sum is rounded: charge 2u Σ |sum| m per row.
                        let m = self.bounds[inp.0].as_ref().expect("computed").magnitude();
                        ops::charge_elementwise(existing, &m, &mut acc);
                    }
                    None => {
                        lams.insert(inp.0, l);
                    }
                }
            }
        }
        let input_lam = if record {
            lams.get(&self.input.0).cloned()
        } else {
            None
        };
        // Everything left hangs on graph inputs (or on values no node produces).
        let mut total = vec![0.0; rows];
        let mut first = true;
        let zero = Accum::new(rows);
        for (vid, lam) in lams {
            let b = self.bounds[vid].as_ref().expect("input bounds");
            debug_assert!(vid == self.input.0 || g.producer(ValueId(vid)).is_none());
            let part = ops::concretize_lower(&lam, b, if first { &acc } else { &zero });
            first = false;
            for (t, p) in total.iter_mut().zip(part) {
                *t = add_down(*t, p);
            }
        }
        if first {
            // No coefficient reached the input: the objective is a constant.
            let part = ops::concretize_lower(
                &Array2::zeros((rows, 0)),
                &Interval::new(vec![], vec![]),
                &acc,
            );
            total = part;
        }
        Ok(Pass {
            lower: total,
            input_lam,
            relaxed,
        })
    }

    /// Final bounds of the outputs and of the rows of `c`.
    pub fn bounds(&self, c: Option<&Array2<f64>>) -> Result<BoxBounds> {
        let g = self.graph;
        let out = self.output;
        let n = g.value(out).size();
        let all = output_rows(n, c);
        let crown = match g.producer(out) {
            Some(k) => self.backward_lower(k, out, all.clone())?,
            // The output is the input itself.
            None => ops::concretize_lower(
                &all,
                self.bounds[out.0].as_ref().expect("input"),
                &Accum::new(all.nrows()),
            ),
        };
        // Intersect with the interval step on CROWN's intermediate bounds and with plain IBP,
        // so the result is never looser than either (both are cheap next to the backward pass).
        let step = ibp::folded_rows(g, &self.bounds, out, &all)?;
        let input = self.bounds[self.input.0].as_ref().expect("input box");
        let plain_vals = ibp::all_values(g, input)?;
        let plain = ibp::folded_rows(g, &plain_vals, out, &all)?;
        let mut best: Vec<f64> = crown
            .iter()
            .zip(&step)
            .zip(&plain)
            .map(|((a, b), c)| a.max(*b).max(*c))
            .collect();
        // The output intervals themselves (no rounding spent on the identity rows).
        for src in [&self.bounds, &plain_vals] {
            let o = src[out.0].as_ref().expect("computed");
            for j in 0..n {
                best[j] = best[j].max(o.lo[j]);
                best[n + j] = best[n + j].max(-o.hi[j]);
            }
        }
        let outputs = Interval::new(
            best[..n].to_vec(),
            best[n..2 * n].iter().map(|x| -x).collect(),
        );
        Ok(BoxBounds {
            outputs,
            rows: best[2 * n..].to_vec(),
        })
    }
}

/// For rows that are each `±1` at one column and zero elsewhere, the column and sign per row.
fn signed_picks(c: &Array2<f64>) -> Option<Vec<(usize, f64)>> {
    c.rows()
        .into_iter()
        .map(|row| {
            let mut pick = None;
            for (j, &x) in row.iter().enumerate() {
                if x == 0.0 {
                    continue;
                }
                if pick.is_some() || (x != 1.0 && x != -1.0) {
                    return None;
                }
                pick = Some((j, x));
            }
            pick
        })
        .collect()
}

/// The rows of a final pass: `e_j` (lower bounds of the outputs), `−e_j` (negated upper
/// bounds), then the rows of `c`.
pub(crate) fn output_rows(n: usize, c: Option<&Array2<f64>>) -> Array2<f64> {
    let spec_rows = c.map_or(0, |c| c.nrows());
    let mut all = Array2::zeros((2 * n + spec_rows, n));
    for j in 0..n {
        all[(j, j)] = 1.0;
        all[(n + j, j)] = -1.0;
    }
    if let Some(c) = c {
        all.slice_mut(ndarray::s![2 * n.., ..]).assign(c);
    }
    all
}

/// The rows bounding the neurons `idx` of an `n`-wide value: `e_j` for each (lower bounds),
/// then `−e_j` for each (negated upper bounds).
pub(crate) fn neuron_rows(idx: &[usize], n: usize) -> Array2<f64> {
    let r = idx.len();
    let mut c = Array2::zeros((2 * r, n));
    for (row, &j) in idx.iter().enumerate() {
        c[(row, j)] = 1.0;
        c[(r + row, j)] = -1.0;
    }
    c
}
