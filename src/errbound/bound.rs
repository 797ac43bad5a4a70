//! The bound of one sub-box: a sound upper bound on `sup_{x ∈ B} |N(x) − f(x)|`.
//!
//! The network side comes from one CROWN backward pass (the bound engine,
//! `engine::crown::State`) from the rows `+e_out` and `−e_out`: linear functions with
//! `l·(x − c) + K_l ≤ N(x) ≤ u·(x − c) + K_u` on `B`, `c` the box centre. The pass gives each
//! row's sound lower bound `L` over the box and its input coefficients `λ`; the constant of the
//! linear bound is recovered soundly as `K ≥ L − min_B λ·(x − c)`, with the minimum bounded
//! from above in outward-rounded interval arithmetic. Then
//!
//! ```text
//! sup (N − f) ≤ K_u − f(c) + Σ_i sup (u_i − G_i(B)) · (x_i − c_i)
//! sup (f − N) ≤ f(c) − K_l + Σ_i sup (G_i(B) − l_i) · (x_i − c_i)
//! ```
//!
//! by the mean-value theorem applied to `u·(x − c) − f(x)` (resp. `f(x) − l·(x − c)`), with
//! `G(B)` the interval gradient of `f` ([`super::enclose`]). Both are intersected with the plain
//! interval bounds (`N_hi − f_lo`, `f_hi − N_lo`) and with the certificate checker's own
//! mean-value form ([`super::cert::net`]), so a box's bound is never worse than any of them.

use ndarray::Array2;

use super::cert::net;
use super::enclose;
use super::expr::Expr;
use super::interval::Iv;
use crate::bounds::rounding::{sub_down, sub_up};
use crate::bounds::Interval;
use crate::engine::crown::{Intermediate, State};
use crate::error::Result;
use crate::ir::Graph;

/// What bounding one box yields.
#[derive(Clone, Debug)]
pub struct BoxBound {
    /// Sound upper bound of `sup |N − f|` on the box (+∞ when `f` may be undefined there).
    pub upper: f64,
    /// The checker's own bound (what a certificate leaf can be re-derived with cheaply).
    pub checker: f64,
    /// Points worth evaluating for a large error: where the linear models peak.
    pub candidates: Vec<Vec<f64>>,
    /// The input dimension whose splitting should help most.
    pub split_dim: usize,
}

/// Bounds `|N_out − f|` over the box `b` (one `[lo, hi]` per network input).
pub fn bound_box(graph: &Graph, out: usize, expr: &Expr, b: &[Iv]) -> Result<BoxBound> {
    let d = b.len();
    let c: Vec<f64> = b.iter().map(|i| enclose::mid(*i)).collect();
    let checker = net::error_bound(graph, out, expr, b)?;
    let widest = widest(b);
    let (fv, fg, fc) = match (
        enclose::range(expr, b),
        enclose::eval(
            expr,
            &c.iter().map(|&v| Iv::point(v)).collect::<Vec<_>>(),
            false,
        ),
    ) {
        (Ok((fv, fg)), Ok(fc)) => (fv, fg, fc.v),
        _ => {
            return Ok(BoxBound {
                upper: checker,
                checker,
                candidates: vec![c],
                split_dim: widest,
            })
        }
    };
    let input = Interval::new(
        b.iter().map(|i| i.lo).collect(),
        b.iter().map(|i| i.hi).collect(),
    );
    let st = State::new(graph, &input, Intermediate::Replace)?;
    let n_out = graph.value(st.output).size();
    let mut rows = Array2::zeros((2, n_out));
    rows[(0, out)] = 1.0;
    rows[(1, out)] = -1.0;
    let k = graph.producer(st.output);
    let (lin, n_iv) = match k {
        Some(k) => {
            let pass = st.backward_pass(k, st.output, rows, None, true)?;
            let lam = pass.input_lam.unwrap_or_else(|| Array2::zeros((2, d)));
            let step = st.bounds[st.output.0]
                .as_ref()
                .map(|i| Iv::new(i.lo[out], i.hi[out]));
            let n_iv = Iv::new(pass.lower[0], -pass.lower[1]);
            let n_iv = step.and_then(|s| s.meet(n_iv)).unwrap_or(n_iv);
            // K ≥ L − min_B λ·(x − c), for each row.
            let consts: Vec<f64> = (0..2)
                .map(|r| {
                    let mut m = Iv::zero();
                    for i in 0..d {
                        let l = lam[(r, i)];
                        let end = if l >= 0.0 { b[i].lo } else { b[i].hi };
                        m = m.add(Iv::point(l).mul(Iv::point(end).sub(Iv::point(c[i]))));
                    }
                    sub_down(pass.lower[r], m.hi)
                })
                .collect();
            (Some((lam, consts)), n_iv)
        }
        None => (None, Iv::new(input.lo[out], input.hi[out])),
    };
    let offsets: Vec<Iv> = (0..d).map(|i| b[i].sub(Iv::point(c[i]))).collect();
    // Interval bounds first.
    let mut pos = sub_up(n_iv.hi, fv.lo);
    let mut neg = sub_up(fv.hi, n_iv.lo);
    let mut candidates = vec![c.clone()];
    let mut excess = vec![0.0; d];
    if let Some((lam, consts)) = &lin {
        // Upper linear bound of N: u = −λ_1, K_u = −K_1.
        let mut p = Iv::point(-consts[1]).sub(fc);
        let mut q = fc.sub(Iv::point(consts[0]));
        let mut corner_p = c.clone();
        let mut corner_q = c.clone();
        for i in 0..d {
            let u = Iv::point(-lam[(1, i)]);
            let l = Iv::point(lam[(0, i)]);
            let sp = u.sub(fg[i]);
            let sq = fg[i].sub(l);
            p = p.add(sp.mul(offsets[i]));
            q = q.add(sq.mul(offsets[i]));
            corner_p[i] = if mid_of(sp) >= 0.0 { b[i].hi } else { b[i].lo };
            corner_q[i] = if mid_of(sq) >= 0.0 { b[i].hi } else { b[i].lo };
            // What the gradient's spread and the relaxation gap cost along dimension i.
            let gap = (lam[(0, i)] + lam[(1, i)]).abs();
            excess[i] = ((fg[i].hi - fg[i].lo).min(1e300) + gap) * (b[i].hi - b[i].lo);
        }
        pos = pos.min(p.hi);
        neg = neg.min(q.hi);
        candidates.push(corner_p);
        candidates.push(corner_q);
    }
    let upper = pos.max(neg).min(checker);
    let upper = if upper.is_nan() { f64::INFINITY } else { upper };
    let split_dim = (0..d)
        .filter(|&i| b[i].hi > b[i].lo)
        .max_by(|&i, &j| excess[i].total_cmp(&excess[j]))
        .filter(|&i| excess[i] > 0.0)
        .unwrap_or(widest);
    Ok(BoxBound {
        upper,
        checker,
        candidates,
        split_dim,
    })
}

fn mid_of(i: Iv) -> f64 {
    if i.lo.is_finite() && i.hi.is_finite() {
        0.5 * (i.lo + i.hi)
    } else {
        0.0
    }
}

/// The dimension of largest width.
pub fn widest(b: &[Iv]) -> usize {
    (0..b.len())
        .max_by(|&i, &j| (b[i].hi - b[i].lo).total_cmp(&(b[j].hi - b[j].lo)))
        .unwrap_or(0)
}
