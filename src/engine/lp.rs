//! `lp`: the triangle-relaxation linear program of a piecewise-linear network, made sound.
//!
//! # The relaxation
//!
//! Every scalar of every value the output depends on is an LP variable, boxed by the best known
//! enclosure of that value (CROWN's intermediate bounds and alpha-CROWN's optimised ones,
//! intersected; see [`super::crown::State`] and [`super::alpha::optimised_state`]). Affine ops (Linear, Conv expanded to dense rows,
//! AddConst, MulConst, DivConst, Add, Sub) are equality rows whose coefficients are the stored
//! numbers themselves (`y − Σ w x = b`, `c·y − x = 0` for a division), so they hold exactly in
//! real arithmetic;
//! Reshape and Transpose only rename variables. A ReLU / LeakyReLU (slope `α`) with
//! pre-activation bounds `[l, u]` is an equality when stable (`y = x` or `y = αx`) and otherwise
//! the triangle: for `α ≤ 1` (convex) `y ≥ x`, `y ≥ αx` and the chord `y ≤ s x + t`, for `α > 1`
//! (concave) the mirror image. The chord's slope `s` is any float near `(u − αl)/(u − l)`; its
//! intercept `t` is computed with directed rounding so that the line lies on the correct side of
//! the activation at both `l` and `u`, hence (by convexity or concavity) on all of `[l, u]`.
//! So every row `a·z (≤ or =) b`, read with its float coefficients as exact reals, holds at the
//! exact values `z` the network takes on any input of the box. BatchNorm, pooling and the
//! smooth activations are refused with an error naming the node.
//!
//! # Why the result is sound although the solver is not
//!
//! The LP is solved in floating point (Clarabel, a pure-Rust interior-point solver, by default;
//! HiGHS with the cargo feature `highs`), and its optimum proves nothing. Only its *dual
//! solution* is used, as a guess, in the bound of Neumaier and Shcherbina ("Safe bounds in
//! linear and mixed-integer programming", Math. Program. 99, 2004): for `min c·z` subject to
//! `A z ≤ b`, `E z = d`, `z ∈ [lo, hi]`, and *any* `y ≥ 0`, `μ`,
//!
//! ```text
//! c·z ≥ c·z + yᵀ(Az − b) + μᵀ(Ez − d) = rᵀz − bᵀy − dᵀμ ≥ Σ_k min(r_k lo_k, r_k hi_k) − bᵀy − dᵀμ
//! ```
//!
//! with `r = c + Aᵀy + Eᵀμ`, for every feasible `z`, in particular for the network's exact
//! values. Nothing about `y, μ` needs to be optimal or even accurate: a poor guess only gives a
//! weaker bound. beacons clamps `y` to `≥ 0` (and NaN to 0), computes each `r_k` in round to
//! nearest together with a rigorous bound `e_k ≥ |r_k − fl(r_k)|` (the sum-of-products error
//! term of [`crate::bounds::rounding`]), charges `e_k · max(|lo_k|, |hi_k|)`, and adds up the
//! terms and `bᵀy + dᵀμ` with outward rounding ([`add_down`], [`dot_up`]). The box of every
//! variable is a sound enclosure, and the rows hold exactly (above), so the number is a
//! rigorous lower bound of `c·Y` over the input box. When the solver fails the row keeps
//! CROWN's bound.
//!
//! Finally the result is intersected with `alpha-crown`'s on the same intermediate bounds (the
//! tighter bound per row wins), so `lp` is never looser than `alpha-crown` or `crown`.

use good_lp::{variable, Expression, ProblemVariables, SolverModel, Variable};
use ndarray::{Array2, ArrayD, IxDyn};
use rayon::prelude::*;

use super::crown::{Intermediate, State};
use super::{target_of, BoxBounds};
use crate::bounds::rounding::{add_down, dot_error, dot_up, mul_down, mul_up, sub_down, sub_up};
use crate::bounds::Interval;
use crate::error::{Error, Result};
use crate::ir::{Graph, Node, Op};

/// The operators the LP (and MILP) encodings cover.
pub const SUPPORTED: &[&str] = &[
    "Linear",
    "Conv",
    "AddConst",
    "MulConst",
    "DivConst",
    "Add",
    "Sub",
    "Relu",
    "LeakyRelu",
    "Reshape",
    "Transpose",
];

/// The sense of a constraint row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sense {
    /// `a·z ≤ b`.
    Le,
    /// `a·z = b`.
    Eq,
}

/// One constraint row `Σ a_k z_k (≤ | =) rhs` over the encoding's variables.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub terms: Vec<(usize, f64)>,
    pub sense: Sense,
    pub rhs: f64,
}

/// How an unstable activation is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relaxation {
    /// The triangle (convex hull over `[l, u]`): an LP, sound as argued in the module docs.
    Triangle,
    /// The triangle plus the exact big-M disjunction with one binary per unstable neuron (a
    /// MILP; its rows are *not* rounded soundly and serve as test ground truth only).
    BigM,
}

/// Which variable boxes the solver's model carries (see [`Encoding::problem`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Boxes {
    Exact,
    Widened,
    InputOnly,
}

/// A network over an input box as linear constraints on boxed variables.
pub(crate) struct Encoding {
    /// Box of every variable (a sound enclosure of the value it stands for).
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    /// Whether the variable is a 0/1 integer (big-M encoding only).
    pub binary: Vec<bool>,
    pub rows: Vec<Row>,
    /// Variables of the graph input, flattened row-major.
    pub input: Vec<usize>,
    /// Variables of the bounded output, flattened row-major.
    pub output: Vec<usize>,
    /// Number of unstable activations (relaxed, not exact).
    pub unstable: usize,
}

fn refuse(node: &Node, why: &str) -> Error {
    Error::Invalid(format!(
        "operator `{}` in node `{}` is not supported by the lp/milp encoding: {why} \
         (supported: {})",
        node.op.kind(),
        node.name,
        SUPPORTED.join(", ")
    ))
}

impl Encoding {
    /// Encodes the part of `graph` the bounded output depends on, with `bounds[v]` a sound
    /// enclosure of every value `v` (as computed by [`State`]).
    pub fn new(graph: &Graph, bounds: &[Option<Interval>], relax: Relaxation) -> Result<Encoding> {
        let (x, out) = target_of(graph)?;
        let mut needed = vec![false; graph.values.len()];
        needed[out.0] = true;
        for node in graph.nodes.iter().rev() {
            if needed[node.output.0] {
                for i in &node.inputs {
                    needed[i.0] = true;
                }
            }
        }
        let mut enc = Encoding {
            lo: Vec::new(),
            hi: Vec::new(),
            binary: Vec::new(),
            rows: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
            unstable: 0,
        };
        let mut vals: Vec<Option<ArrayD<usize>>> = vec![None; graph.values.len()];
        vals[x.0] = Some(enc.fresh(graph, bounds, x.0)?);
        for node in &graph.nodes {
            if !needed[node.output.0] {
                continue;
            }
            let v = enc.node(graph, node, bounds, &vals, relax)?;
            vals[node.output.0] = Some(v);
        }
        enc.input = vals[x.0].as_ref().expect("input").iter().copied().collect();
        enc.output = vals[out.0]
            .as_ref()
            .ok_or_else(|| Error::Invalid("the output does not depend on the input".into()))?
            .iter()
            .copied()
            .collect();
        Ok(enc)
    }

    fn value_box(bounds: &[Option<Interval>], v: usize) -> Result<&Interval> {
        bounds[v]
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("no bounds for value #{v}")))
    }

    fn push_var(&mut self, lo: f64, hi: f64, binary: bool) -> usize {
        self.lo.push(lo);
        self.hi.push(hi);
        self.binary.push(binary);
        self.lo.len() - 1
    }

    /// New variables for every scalar of value `v`, boxed by its bounds.
    fn fresh(
        &mut self,
        graph: &Graph,
        bounds: &[Option<Interval>],
        v: usize,
    ) -> Result<ArrayD<usize>> {
        let b = Self::value_box(bounds, v)?;
        let shape = graph.values[v].shape.clone();
        let ids: Vec<usize> = (0..b.len())
            .map(|j| self.push_var(b.lo[j], b.hi[j], false))
            .collect();
        ArrayD::from_shape_vec(IxDyn(&shape), ids)
            .map_err(|e| Error::Invalid(format!("value #{v}: {e}")))
    }

    /// Renamed variables (Reshape, Transpose): their boxes also get the new value's bounds.
    fn alias(
        &mut self,
        bounds: &[Option<Interval>],
        v: usize,
        ids: ArrayD<usize>,
    ) -> Result<ArrayD<usize>> {
        let b = Self::value_box(bounds, v)?;
        for (j, &k) in ids.iter().enumerate() {
            self.lo[k] = self.lo[k].max(b.lo[j]);
            self.hi[k] = self.hi[k].min(b.hi[j]);
        }
        Ok(ids)
    }

    fn row(&mut self, terms: Vec<(usize, f64)>, sense: Sense, rhs: f64) {
        let terms = terms.into_iter().filter(|(_, a)| *a != 0.0).collect();
        self.rows.push(Row { terms, sense, rhs });
    }

    fn node(
        &mut self,
        graph: &Graph,
        node: &Node,
        bounds: &[Option<Interval>],
        vals: &[Option<ArrayD<usize>>],
        relax: Relaxation,
    ) -> Result<ArrayD<usize>> {
        let ins: Vec<&ArrayD<usize>> = node
            .inputs
            .iter()
            .map(|i| vals[i.0].as_ref().expect("topological order"))
            .collect();
        let v = node.output.0;
        let out_shape = graph.values[v].shape.clone();
        let broadcast = |a: &ArrayD<usize>| -> Result<Vec<usize>> {
            a.broadcast(IxDyn(&out_shape))
                .map(|b| b.iter().copied().collect())
                .ok_or_else(|| refuse(node, "an input does not broadcast to the output"))
        };
        let constant = |c: &ArrayD<f64>| -> Result<Vec<f64>> {
            c.broadcast(IxDyn(&out_shape))
                .map(|b| b.iter().copied().collect())
                .ok_or_else(|| refuse(node, "the constant does not broadcast to the output"))
        };
        match &node.op {
            Op::Linear { weight, bias } => {
                let xs: Vec<usize> = ins[0].iter().copied().collect();
                let y = self.fresh(graph, bounds, v)?;
                let ys: Vec<usize> = y.iter().copied().collect();
                let (n_out, n_in) = weight.dim();
                for r in 0..xs.len() / n_in.max(1) {
                    for o in 0..n_out {
                        let mut terms = Vec::with_capacity(n_in + 1);
                        terms.push((ys[r * n_out + o], 1.0));
                        for i in 0..n_in {
                            terms.push((xs[r * n_in + i], -weight[(o, i)]));
                        }
                        self.row(terms, Sense::Eq, bias.as_ref().map_or(0.0, |b| b[o]));
                    }
                }
                Ok(y)
            }
            Op::AddConst(c) | Op::MulConst(c) | Op::DivConst(c) => {
                let xs = broadcast(ins[0])?;
                let cs = constant(c)?;
                let y = self.fresh(graph, bounds, v)?;
                for ((&yk, &xk), &ck) in y.iter().zip(&xs).zip(&cs) {
                    match node.op {
                        // y − x = c
                        Op::AddConst(_) => self.row(vec![(yk, 1.0), (xk, -1.0)], Sense::Eq, ck),
                        // y − c·x = 0
                        Op::MulConst(_) => self.row(vec![(yk, 1.0), (xk, -ck)], Sense::Eq, 0.0),
                        // c·y − x = 0, exact although 1/c is not a float
                        _ => {
                            if ck == 0.0 || !ck.is_finite() {
                                return Err(refuse(node, "division by zero"));
                            }
                            self.row(vec![(yk, ck), (xk, -1.0)], Sense::Eq, 0.0)
                        }
                    }
                }
                Ok(y)
            }
            Op::Add | Op::Sub => {
                let a = broadcast(ins[0])?;
                let b = broadcast(ins[1])?;
                let sign = if matches!(node.op, Op::Add) {
                    -1.0
                } else {
                    1.0
                };
                let y = self.fresh(graph, bounds, v)?;
                for ((&yk, &ak), &bk) in y.iter().zip(&a).zip(&b) {
                    // y − a ∓ b = 0 (a variable may appear twice: the terms add up exactly,
                    // as every coefficient is ±1).
                    let terms = if ak == bk {
                        vec![(yk, 1.0), (ak, -1.0 + sign)]
                    } else {
                        vec![(yk, 1.0), (ak, -1.0), (bk, sign)]
                    };
                    self.row(terms, Sense::Eq, 0.0);
                }
                Ok(y)
            }
            Op::Relu | Op::LeakyRelu { .. } => {
                let alpha = match node.op {
                    Op::LeakyRelu { alpha } => alpha,
                    _ => 0.0,
                };
                if !alpha.is_finite() {
                    return Err(refuse(node, "non-finite slope"));
                }
                let xs: Vec<usize> = ins[0].iter().copied().collect();
                let pre = Self::value_box(bounds, node.inputs[0].0)?.clone();
                let y = self.fresh(graph, bounds, v)?;
                for (j, (&yk, &xk)) in y.iter().zip(&xs).enumerate() {
                    self.activation(node, yk, xk, alpha, pre.lo[j], pre.hi[j], relax)?;
                }
                Ok(y)
            }
            Op::Reshape { shape } => {
                let x = ins[0].as_standard_layout().into_owned();
                let ids = x
                    .into_shape_with_order(IxDyn(shape))
                    .map_err(|e| refuse(node, &e.to_string()))?;
                self.alias(bounds, v, ids)
            }
            Op::Transpose { perm } => {
                let ids = ins[0]
                    .view()
                    .permuted_axes(IxDyn(perm))
                    .as_standard_layout()
                    .into_owned();
                self.alias(bounds, v, ids)
            }
            Op::Conv(conv) => {
                // Expanded to dense rows: y[n,o,i,j] − Σ w[o,c,a,b] x[n, g·C_g + c, h, w] = bias[o]
                // with h = i·stride − pad_top + a·dilation (cross-correlation, as ONNX).
                let x = ins[0].as_standard_layout().into_owned();
                let y = self.fresh(graph, bounds, v)?;
                let (xs, ys) = (x.shape().to_vec(), y.shape().to_vec());
                if xs.len() != 4 || ys.len() != 4 {
                    return Err(refuse(node, "a convolution needs [N, C, H, W] values"));
                }
                let (n_out, c_g, kh, kw) = conv.weight.dim();
                let out_per_group = (n_out / conv.group.max(1)).max(1);
                for n in 0..ys[0] {
                    for o in 0..ys[1] {
                        let g = o / out_per_group;
                        for i in 0..ys[2] {
                            for j in 0..ys[3] {
                                let mut terms = vec![(y[[n, o, i, j]], 1.0)];
                                for c in 0..c_g {
                                    for a in 0..kh {
                                        for b in 0..kw {
                                            let h = (i * conv.strides[0] + a * conv.dilations[0])
                                                .checked_sub(conv.pads[0]);
                                            let w = (j * conv.strides[1] + b * conv.dilations[1])
                                                .checked_sub(conv.pads[1]);
                                            let (Some(h), Some(w)) = (h, w) else {
                                                continue;
                                            };
                                            if h < xs[2] && w < xs[3] {
                                                let k = x[[n, g * c_g + c, h, w]];
                                                terms.push((k, -conv.weight[[o, c, a, b]]));
                                            }
                                        }
                                    }
                                }
                                let bias = conv.bias.as_ref().map_or(0.0, |b| b[o]);
                                self.row(terms, Sense::Eq, bias);
                            }
                        }
                    }
                }
                Ok(y)
            }
            _ => Err(refuse(node, "not piecewise linear")),
        }
    }

    /// Rows for `y = f(x)`, `f(x) = x` for `x ≥ 0` and `αx` otherwise, `x ∈ [l, u]`.
    #[allow(clippy::too_many_arguments)]
    fn activation(
        &mut self,
        node: &Node,
        y: usize,
        x: usize,
        alpha: f64,
        l: f64,
        u: f64,
        relax: Relaxation,
    ) -> Result<()> {
        if u <= 0.0 {
            self.row(vec![(y, 1.0), (x, -alpha)], Sense::Eq, 0.0);
            return Ok(());
        }
        if l >= 0.0 {
            self.row(vec![(y, 1.0), (x, -1.0)], Sense::Eq, 0.0);
            return Ok(());
        }
        self.unstable += 1;
        // Any float slope will do; the intercept makes the chord valid at both ends.
        let s = (u - alpha * l) / (u - l);
        if alpha <= 1.0 {
            // Convex: y ≥ x, y ≥ αx, y ≤ s x + t with s l + t ≥ α l and s u + t ≥ u.
            self.row(vec![(x, 1.0), (y, -1.0)], Sense::Le, 0.0);
            self.row(vec![(x, alpha), (y, -1.0)], Sense::Le, 0.0);
            let t = sub_up(mul_up(alpha, l), mul_down(s, l)).max(sub_up(u, mul_down(s, u)));
            if s.is_finite() && t.is_finite() {
                self.row(vec![(y, 1.0), (x, -s)], Sense::Le, t);
            }
        } else {
            // Concave: y ≤ x, y ≤ αx, y ≥ s x + t with s l + t ≤ α l and s u + t ≤ u.
            self.row(vec![(y, 1.0), (x, -1.0)], Sense::Le, 0.0);
            self.row(vec![(y, 1.0), (x, -alpha)], Sense::Le, 0.0);
            let t = sub_down(mul_down(alpha, l), mul_up(s, l)).min(sub_down(u, mul_up(s, u)));
            if s.is_finite() && t.is_finite() {
                self.row(vec![(x, s), (y, -1.0)], Sense::Le, -t);
            }
        }
        if relax == Relaxation::BigM {
            if alpha >= 1.0 {
                return Err(refuse(
                    node,
                    "the MILP encoding needs a LeakyReLU slope below 1",
                ));
            }
            // δ = 1: active (y = x); δ = 0: inactive (y = αx). Float rows: test ground truth.
            let d = self.push_var(0.0, 1.0, true);
            let k = 1.0 - alpha;
            // y ≤ x − (1−α) l (1 − δ)
            self.row(vec![(y, 1.0), (x, -1.0), (d, -k * l)], Sense::Le, -k * l);
            // y ≤ αx + (1−α) u δ
            self.row(vec![(y, 1.0), (x, -alpha), (d, -k * u)], Sense::Le, 0.0);
        }
        Ok(())
    }

    /// For every variable, the rows it appears in with its coefficient.
    fn columns(&self) -> Vec<Vec<(usize, f64)>> {
        let mut cols = vec![Vec::new(); self.lo.len()];
        for (i, r) in self.rows.iter().enumerate() {
            for &(k, a) in &r.terms {
                cols[k].push((i, a));
            }
        }
        cols
    }

    /// The good_lp model of `min objective·z` over this encoding.
    ///
    /// `boxes` says which variable boxes the solver sees: the exact ones (for the MILP), or,
    /// for the LP, slightly widened ones or only the input's. The solver's LP may be any
    /// relaxation: the bound rests only on the Neumaier–Shcherbina step, which uses the true
    /// boxes. Widening keeps interior-point solvers away from empty interiors (boxes as tight
    /// as rounding, degenerate input dimensions), which they report as infeasible.
    pub(crate) fn problem(
        &self,
        objective: &[(usize, f64)],
        boxes: Boxes,
    ) -> (ProblemVariables, Vec<Variable>, Expression) {
        let mut pv = ProblemVariables::new();
        let is_input = {
            let mut v = vec![false; self.lo.len()];
            for &k in &self.input {
                v[k] = true;
            }
            v
        };
        let vars: Vec<Variable> = (0..self.lo.len())
            .map(|k| {
                let (lo, hi) = (self.lo[k], self.hi[k]);
                let w = 1e-7 * (1.0 + lo.abs().max(hi.abs()));
                let mut d = match boxes {
                    Boxes::Exact => variable().min(lo).max(hi),
                    Boxes::Widened => variable().min(lo - w).max(hi + w),
                    Boxes::InputOnly if is_input[k] => variable().min(lo - w).max(hi + w),
                    Boxes::InputOnly => variable(),
                };
                if self.binary[k] {
                    d = d.integer();
                }
                pv.add(d)
            })
            .collect();
        let mut obj = Expression::with_capacity(objective.len());
        for &(k, a) in objective {
            obj.add_mul(a, vars[k]);
        }
        (pv, vars, obj)
    }

    pub(crate) fn constraint(row: &Row, vars: &[Variable]) -> good_lp::Constraint {
        let mut e = Expression::with_capacity(row.terms.len());
        for &(k, a) in &row.terms {
            e.add_mul(a, vars[k]);
        }
        match row.sense {
            Sense::Le => e.leq(row.rhs),
            Sense::Eq => e.eq(row.rhs),
        }
    }

    /// A rigorous lower bound of `objective·z` from the multipliers of one or two solver runs
    /// (widened boxes, then, unless the first run claimed optimality, the input box only; the
    /// better bound wins, both being valid), and whether a run claimed optimality.
    fn lower_bound(
        &self,
        cols: &[Vec<(usize, f64)>],
        objective: &[(usize, f64)],
    ) -> std::result::Result<(f64, bool), String> {
        let mut best: Option<(f64, bool)> = None;
        let mut error = String::new();
        for boxes in [Boxes::Widened, Boxes::InputOnly] {
            match self.multipliers(objective, boxes) {
                Ok((y, optimal)) => {
                    let b = self.rigorous_lower(cols, objective, &y);
                    best = Some(match best {
                        Some((a, o)) => (a.max(b), o || optimal),
                        None => (b, optimal),
                    });
                    if optimal {
                        break;
                    }
                }
                Err(e) => error = e,
            }
        }
        best.ok_or(error)
    }

    /// Lagrange multipliers of the rows for `min objective·z` (`y ≥ 0` on `≤` rows in the
    /// convention of the module docs) from the LP solver's dual solution, whatever the solver's
    /// status (any multipliers give a valid bound), and whether the solver claims optimality.
    #[cfg(not(feature = "highs"))]
    fn multipliers(
        &self,
        objective: &[(usize, f64)],
        boxes: Boxes,
    ) -> std::result::Result<(Vec<f64>, bool), String> {
        use clarabel::solver::{IPSolver, SolverStatus};
        let (pv, vars, obj) = self.problem(objective, boxes);
        // good_lp's Clarabel model puts one row per finite variable bound first, then the
        // constraints in the order they are added.
        let offset: usize = pv
            .iter_variables_with_def()
            .map(|(_, d)| {
                usize::from(d.get_min() > f64::NEG_INFINITY)
                    + usize::from(d.get_max() < f64::INFINITY)
            })
            .sum();
        let mut model = pv.minimise(obj).using(good_lp::clarabel);
        for r in &self.rows {
            model.add_constraint(Self::constraint(r, &vars));
        }
        let mut solver = model.try_into_solver().map_err(|e| e.to_string())?;
        solver.solve();
        let sol = &solver.solution;
        // Clarabel solves min qᵀz s.t. Az + s = b, s ≥ 0 (or = 0), with dual z and
        // q + Aᵀz = 0 at optimality: z are exactly the multipliers y of the module docs.
        let y = sol
            .z
            .get(offset..offset + self.rows.len())
            .ok_or("the solver returned no dual solution")?
            .to_vec();
        Ok((y, sol.status == SolverStatus::Solved))
    }

    /// As above, with HiGHS (cargo feature `highs`) through good_lp's dual values.
    #[cfg(feature = "highs")]
    fn multipliers(
        &self,
        objective: &[(usize, f64)],
        boxes: Boxes,
    ) -> std::result::Result<(Vec<f64>, bool), String> {
        use good_lp::{DualValues, SolutionWithDual};
        let (pv, vars, obj) = self.problem(objective, boxes);
        let mut model = pv.minimise(obj).using(good_lp::highs);
        let refs: Vec<_> = self
            .rows
            .iter()
            .map(|r| model.add_constraint(Self::constraint(r, &vars)))
            .collect();
        let mut sol = model.solve().map_err(|e| e.to_string())?;
        let duals = sol.compute_dual();
        // good_lp reports shadow prices d(optimum)/d(rhs), the negated multipliers.
        Ok((refs.into_iter().map(|r| -duals.dual(r)).collect(), true))
    }

    /// The Neumaier–Shcherbina bound: a rigorous lower bound of `objective·z` over the
    /// encoding's feasible set, valid for any multipliers (see the module docs).
    fn rigorous_lower(
        &self,
        cols: &[Vec<(usize, f64)>],
        objective: &[(usize, f64)],
        multipliers: &[f64],
    ) -> f64 {
        let y: Vec<f64> = multipliers
            .iter()
            .zip(&self.rows)
            .map(|(&m, r)| {
                if !m.is_finite() || (r.sense == Sense::Le && m < 0.0) {
                    0.0
                } else {
                    m
                }
            })
            .collect();
        let mut obj: Vec<Vec<f64>> = vec![Vec::new(); self.lo.len()];
        for &(k, a) in objective {
            obj[k].push(a);
        }
        let mut total = 0.0;
        for (k, col) in cols.iter().enumerate() {
            // r_k = c_k + Σ_i y_i a_ik in round to nearest, with its error bound.
            let mut s = 0.0;
            let mut abs = 0.0;
            let mut n = 0;
            for &a in &obj[k] {
                s += a;
                abs += a.abs();
                n += 1;
            }
            for &(i, a) in col {
                let p = y[i] * a;
                s += p;
                abs += p.abs();
                n += 1;
            }
            if n == 0 {
                continue;
            }
            let err = dot_error(abs, n);
            let (lo, hi) = (self.lo[k], self.hi[k]);
            let least = mul_down(s, lo).min(mul_down(s, hi));
            let mag = lo.abs().max(hi.abs());
            total = add_down(total, sub_down(least, mul_up(err, mag)));
        }
        let rhs: Vec<f64> = self.rows.iter().map(|r| r.rhs).collect();
        sub_down(total, dot_up(&y, &rhs))
    }
}

/// What the `lp` method did, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LpStats {
    /// LPs solved (one per output bound and specification row).
    pub solved: usize,
    /// LPs the solver failed on (those rows keep CROWN's bound), and the first failure.
    pub failed: usize,
    pub failure: Option<String>,
    /// LPs whose solver runs never claimed optimality (their multipliers still give valid,
    /// possibly weak, bounds).
    pub unconverged: usize,
    /// Unstable activations in the relaxation (0: the network is affine on the box and no LP
    /// is solved).
    pub unstable: usize,
    /// LP variables and rows.
    pub variables: usize,
    pub rows: usize,
}

/// The enclosures of every value the LP and MILP encodings are boxed by: CROWN's intermediate
/// bounds and alpha-CROWN's optimised ones, intersected (both are sound).
pub(crate) fn intermediate_bounds<'g>(
    graph: &'g Graph,
    input: &Interval,
) -> Result<(State<'g>, State<'g>, Vec<Option<Interval>>)> {
    let a = State::new(graph, input, Intermediate::Replace)?;
    let b = super::alpha::optimised_state(graph, input, super::alpha::DEFAULT_ITERATIONS)?;
    let both = a
        .bounds
        .iter()
        .zip(&b.bounds)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Some(x.intersect(y)),
            (x, y) => x.clone().or_else(|| y.clone()),
        })
        .collect();
    Ok((a, b, both))
}

/// Sound bounds of the outputs and of the rows of `c` by the triangle LP, intersected with
/// `crown`'s.
pub fn bounds(graph: &Graph, input: &Interval, c: Option<&Array2<f64>>) -> Result<BoxBounds> {
    Ok(bounds_with_stats(graph, input, c)?.0)
}

/// [`bounds`], with what it did.
pub fn bounds_with_stats(
    graph: &Graph,
    input: &Interval,
    c: Option<&Array2<f64>>,
) -> Result<(BoxBounds, LpStats)> {
    let (a, b, inter) = intermediate_bounds(graph, input)?;
    // The baseline is alpha-crown's bound (itself never looser than crown's), so `lp` is
    // never looser than either.
    let crown = super::alpha::finish(&b, a.bounds(c)?, c, super::alpha::DEFAULT_ITERATIONS)?;
    let enc = Encoding::new(graph, &inter, Relaxation::Triangle)?;
    let mut stats = LpStats {
        unstable: enc.unstable,
        variables: enc.lo.len(),
        rows: enc.rows.len(),
        ..LpStats::default()
    };
    if enc.unstable == 0 {
        // Affine on the box: CROWN is already exact up to rounding.
        return Ok((crown, stats));
    }
    let n = enc.output.len();
    let mut objectives: Vec<Vec<(usize, f64)>> = Vec::with_capacity(2 * n);
    for sign in [1.0, -1.0] {
        for &k in &enc.output {
            objectives.push(vec![(k, sign)]);
        }
    }
    if let Some(c) = c {
        for row in c.rows() {
            objectives.push(
                row.iter()
                    .zip(&enc.output)
                    .filter(|(a, _)| **a != 0.0)
                    .map(|(a, k)| (*k, *a))
                    .collect(),
            );
        }
    }
    let cols = enc.columns();
    let results: Vec<std::result::Result<(f64, bool), String>> = objectives
        .par_iter()
        .map(|obj| enc.lower_bound(&cols, obj))
        .collect();
    stats.solved = results.iter().filter(|r| r.is_ok()).count();
    stats.failed = results.len() - stats.solved;
    stats.unconverged = results
        .iter()
        .filter(|r| matches!(r, Ok((_, false))))
        .count();
    stats.failure = results.iter().find_map(|r| r.clone().err());
    let lower: Vec<f64> = results
        .into_iter()
        .map(|r| r.map_or(f64::NEG_INFINITY, |(b, _)| b))
        .collect();
    let lp = BoxBounds {
        outputs: Interval::new(
            lower[..n].to_vec(),
            lower[n..2 * n].iter().map(|v| -v).collect(),
        ),
        rows: lower[2 * n..].to_vec(),
    };
    Ok((BoxBounds::tighter(crown, lp), stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = relu(x), x ∈ [-1, 2]: the LP's bound of `y − x/3` is attained by the triangle.
    #[test]
    fn triangle_bound_of_one_relu() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1]);
        let y = g.add_node("r", Op::Relu, vec![x], "y").unwrap();
        g.add_output(y);
        let b = Interval::new(vec![-1.0], vec![2.0]);
        let c = Array2::from_shape_vec((1, 1), vec![1.0]).unwrap();
        let (out, stats) = bounds_with_stats(&g, &b, Some(&c)).unwrap();
        assert_eq!(stats.unstable, 1);
        assert!(out.outputs.lo[0] <= 0.0 && out.outputs.lo[0] > -1e-6);
        assert!(out.outputs.hi[0] >= 2.0 && out.outputs.hi[0] < 2.0 + 1e-6);
    }

    /// Any multipliers give a bound below the true minimum, even absurd ones.
    #[test]
    fn neumaier_shcherbina_is_valid_for_any_multipliers() {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![2]);
        let w = Array2::from_shape_vec((2, 2), vec![1.0, -1.0, 0.5, 2.0]).unwrap();
        let h = g
            .add_node(
                "l",
                Op::Linear {
                    weight: w,
                    bias: None,
                },
                vec![x],
                "h",
            )
            .unwrap();
        let y = g.add_node("r", Op::Relu, vec![h], "y").unwrap();
        g.add_output(y);
        let b = Interval::new(vec![-1.0, -1.0], vec![1.0, 1.0]);
        let (_, _, inter) = intermediate_bounds(&g, &b).unwrap();
        let enc = Encoding::new(&g, &inter, Relaxation::Triangle).unwrap();
        let cols = enc.columns();
        let obj = vec![(enc.output[0], 1.0), (enc.output[1], 1.0)];
        // min relu(x0 − x1) + relu(x0/2 + 2 x1) over the box is 0.
        for seed in 0..50u64 {
            let y: Vec<f64> = (0..enc.rows.len())
                .map(|i| ((seed * 31 + i as u64 * 17) % 13) as f64 - 6.0)
                .collect();
            assert!(enc.rigorous_lower(&cols, &obj, &y) <= 0.0);
        }
        let (best, optimal) = enc.lower_bound(&cols, &obj).unwrap();
        assert!(optimal);
        assert!(best <= 0.0 && best > -1e-6, "{best}");
    }
}
