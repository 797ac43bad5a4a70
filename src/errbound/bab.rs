//! The branch-and-bound loop: split the box whose bound is worst until the certified upper
//! bound is within the tolerance of the largest error found, the property is decided, or the
//! time is up. Anytime: whenever it stops, `upper` is sound and `lower` is a certified error
//! at a concrete point.
//!
//! Every box in the queue is a leaf of the partition of the region (children share their
//! splitting face, so the leaves cover the region exactly); `upper` is the largest leaf bound.
//! Each bounded box proposes a few points (its centre and the corners where its linear models
//! peak); their errors are screened in `f64`, and the best one is re-evaluated rigorously
//! ([`certify`]) before it is reported or used to stop.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use num_rational::BigRational;

use super::bound::{bound_box, BoxBound};
use super::enclose;
use super::expr::Expr;
use super::interval::Iv;
use crate::error::{Error, Result};
use crate::eval::exact::{self, round_down_f64};
use crate::eval::forward_f64;
use crate::ir::Graph;

/// How the search runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop when `upper − lower ≤ tolerance · lower`.
    pub tolerance: f64,
    pub timeout: Duration,
    /// Stop as soon as `upper ≤ E` or `lower > E` is proved.
    pub max_error: Option<f64>,
    /// Draw a progress line on stderr.
    pub progress: bool,
    /// Keep the leaves (for a certificate).
    pub keep_leaves: bool,
}

/// A concrete input and the two values compared there.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Witness {
    pub input: Vec<f64>,
    /// The network in `f64`.
    pub network: f64,
    /// The reference expression (midpoint of its rigorous enclosure, width ~1e-15 relative).
    pub reference: f64,
}

/// A leaf of the final partition and the bound proved on it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Leaf {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub bound: f64,
}

/// Why the search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// `upper − lower ≤ tolerance · lower`.
    Converged,
    /// `--max-error` is decided.
    Decided,
    Timeout,
    /// Every remaining box is too small to split in `f64` and the gap is still open.
    Exhausted,
}

/// The result of a search.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub upper: f64,
    pub lower: f64,
    pub witness: Option<Witness>,
    pub leaves: usize,
    pub seconds: f64,
    pub stop: Stop,
    /// Present with `keep_leaves`.
    pub leaf_boxes: Vec<Leaf>,
}

struct Node {
    b: Vec<Iv>,
    bb: BoxBound,
}

impl PartialEq for Node {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Node {}
impl PartialOrd for Node {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Node {
    fn cmp(&self, o: &Self) -> Ordering {
        self.bb.upper.total_cmp(&o.bb.upper)
    }
}

/// The best point found: its `f64` screening error and, once computed, its certified error.
struct Best {
    point: Vec<f64>,
    estimate: f64,
    certified: Option<(f64, Witness)>,
}

/// A rigorous lower bound of `|N(x) − f(x)|` at `x` (the network evaluated exactly in
/// rationals, `f` enclosed in interval arithmetic), and the witness record.
pub fn certify(graph: &Graph, out: usize, expr: &Expr, x: &[f64]) -> Result<(f64, Witness)> {
    let network = forward_f64(
        graph,
        Array2::from_shape_vec((1, x.len()), x.to_vec())
            .map_err(|e| Error::Invalid(e.to_string()))?
            .view(),
    )?[(0, out)];
    let n = exact::forward_f64_point(graph, x)?;
    let n = n
        .get(out)
        .ok_or_else(|| Error::Invalid(format!("the network has no output {out}")))?;
    let p: Vec<Iv> = x.iter().map(|&v| Iv::point(v)).collect();
    let f = enclose::eval(expr, &p, false)
        .map_err(|u| Error::Invalid(format!("the reference is undefined at {x:?}: {}", u.0)))?
        .v;
    let q = |v: f64| BigRational::from_float(v);
    let lower = match (q(f.lo), q(f.hi)) {
        (Some(flo), Some(fhi)) => {
            round_down_f64(&(&n.lo - fhi)).max(round_down_f64(&(flo - &n.hi)))
        }
        _ => 0.0,
    }
    .max(0.0);
    Ok((
        lower,
        Witness {
            input: x.to_vec(),
            network,
            reference: enclose::mid(f),
        },
    ))
}

/// Searches `region` for the worst error of output `out` against `expr`.
pub fn run(
    graph: &Graph,
    out: usize,
    expr: &Expr,
    region: &[Iv],
    opts: &Options,
) -> Result<Outcome> {
    let start = Instant::now();
    let deadline = start + opts.timeout.min(Duration::from_secs(86_400 * 365));
    let bar = if opts.progress {
        let b = ProgressBar::new_spinner();
        if let Ok(s) = ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}") {
            b.set_style(s);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let mut best = Best {
        point: region.iter().map(|i| enclose::mid(*i)).collect(),
        estimate: -1.0,
        certified: None,
    };
    screen(graph, out, expr, &grid(region, 1024), &mut best)?;
    let mut heap = BinaryHeap::new();
    let mut frozen: Vec<Node> = Vec::new();
    let root = bound_box(graph, out, expr, region)?;
    screen(graph, out, expr, &root.candidates, &mut best)?;
    heap.push(Node {
        b: region.to_vec(),
        bb: root,
    });
    let mut last_draw = Instant::now();
    let stop = loop {
        let top = heap.peek().map_or(f64::NEG_INFINITY, |n| n.bb.upper);
        let upper = frozen
            .iter()
            .map(|n| n.bb.upper)
            .fold(top, f64::max)
            .max(0.0);
        let gap_ok = |lower: f64| upper - lower <= opts.tolerance * lower;
        let decided = |lower: f64| opts.max_error.is_some_and(|e| upper <= e || lower > e);
        if gap_ok(best.estimate.max(0.0)) || decided(best.estimate.max(0.0)) {
            let lower = certified(graph, out, expr, &mut best)?;
            if gap_ok(lower) {
                break Stop::Converged;
            }
            if decided(lower) {
                break Stop::Decided;
            }
        }
        if opts.max_error.is_some_and(|e| upper <= e) {
            break Stop::Decided;
        }
        if Instant::now() >= deadline {
            break Stop::Timeout;
        }
        if last_draw.elapsed() > Duration::from_millis(100) {
            bar.set_message(format!(
                "upper {upper:.6e}  lower {:.6e}  leaves {}",
                best.estimate.max(0.0),
                heap.len() + frozen.len()
            ));
            bar.tick();
            last_draw = Instant::now();
        }
        let Some(node) = heap.pop() else {
            break Stop::Exhausted;
        };
        let Some((left, right)) = split(&node.b, node.bb.split_dim) else {
            frozen.push(node);
            continue;
        };
        for child in [left, right] {
            let bb = bound_box(graph, out, expr, &child)?;
            screen(graph, out, expr, &bb.candidates, &mut best)?;
            // A child bound above the parent's is still sound; keep the tighter one.
            let bb = BoxBound {
                upper: bb.upper.min(node.bb.upper),
                ..bb
            };
            heap.push(Node { b: child, bb });
        }
    };
    bar.finish_and_clear();
    let lower = certified(graph, out, expr, &mut best)?;
    let top = heap.peek().map_or(f64::NEG_INFINITY, |n| n.bb.upper);
    let upper = frozen
        .iter()
        .map(|n| n.bb.upper)
        .fold(top, f64::max)
        .max(0.0);
    let leaves = heap.len() + frozen.len();
    let leaf_boxes = if opts.keep_leaves {
        heap.into_iter()
            .chain(frozen)
            .map(|n| Leaf {
                lo: n.b.iter().map(|i| i.lo).collect(),
                hi: n.b.iter().map(|i| i.hi).collect(),
                // What the checker re-derives in one step when it can, never above `upper`.
                bound: n.bb.upper.max(n.bb.checker.min(upper)),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Outcome {
        upper,
        lower,
        witness: best.certified.map(|(_, w)| w),
        leaves,
        seconds: start.elapsed().as_secs_f64(),
        stop,
        leaf_boxes,
    })
}

/// The certified error of the best point (computed once per point).
fn certified(graph: &Graph, out: usize, expr: &Expr, best: &mut Best) -> Result<f64> {
    if best.certified.is_none() {
        best.certified = Some(certify(graph, out, expr, &best.point)?);
    }
    Ok(best.certified.as_ref().map_or(0.0, |c| c.0))
}

/// Screens points in `f64`; a better one replaces the best (its certificate is recomputed).
fn screen(graph: &Graph, out: usize, expr: &Expr, pts: &[Vec<f64>], best: &mut Best) -> Result<()> {
    if pts.is_empty() {
        return Ok(());
    }
    let d = pts[0].len();
    let flat: Vec<f64> = pts.iter().flatten().copied().collect();
    let x =
        Array2::from_shape_vec((pts.len(), d), flat).map_err(|e| Error::Invalid(e.to_string()))?;
    let y = forward_f64(graph, x.view())?;
    for (i, p) in pts.iter().enumerate() {
        let e = (y[(i, out)] - expr.eval_f64(p)).abs();
        if e > best.estimate {
            best.estimate = e;
            best.point = p.clone();
            best.certified = None;
        }
    }
    Ok(())
}

/// About `n` points on a regular grid of the region (ends included).
fn grid(region: &[Iv], n: usize) -> Vec<Vec<f64>> {
    let d = region.len().max(1);
    let k = ((n as f64).powf(1.0 / d as f64).floor() as usize).max(2);
    let total = k.pow(d as u32);
    (0..total)
        .map(|mut idx| {
            region
                .iter()
                .map(|r| {
                    let j = idx % k;
                    idx /= k;
                    let t = j as f64 / (k - 1) as f64;
                    (r.lo + t * (r.hi - r.lo)).clamp(r.lo, r.hi)
                })
                .collect()
        })
        .collect()
}

/// Bisects `b` along `dim` (or the widest side if that one cannot be split).
fn split(b: &[Iv], dim: usize) -> Option<(Vec<Iv>, Vec<Iv>)> {
    let try_dim = |i: usize| {
        let m = enclose::mid(b[i]);
        (m > b[i].lo && m < b[i].hi).then(|| {
            let mut l = b.to_vec();
            let mut r = b.to_vec();
            l[i] = Iv::new(b[i].lo, m);
            r[i] = Iv::new(m, b[i].hi);
            (l, r)
        })
    };
    try_dim(dim).or_else(|| try_dim(super::bound::widest(b)))
}
