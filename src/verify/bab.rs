//! Branch-and-bound by input splitting (the regime of low-dimensional inputs such as ACAS Xu).
//!
//! In: a graph, one [`Region`] and its root margins. Out: [`BabOutcome`]. Sub-boxes wait in a
//! priority queue, the least proved first (the most negative "best margin of the worst
//! unproved disjunct"). Each round pops a batch, bisects every box along the input with the
//! largest smear `|∂(a·Y)/∂x_i| · width_i` (gradient at the box centre of the atom closest to
//! being proved), bounds the children in parallel with CROWN (`engine::crown::State`,
//! `Intermediate::Replace`), and checks every unproved child's centre for a counterexample; a
//! short PGD runs on the worst box now and then. A box is closed when every disjunct has an
//! atom with a margin lower bound `> 0`. The region holds only when the queue empties; the
//! deadline is checked between rounds, whose size adapts to take about a quarter of a second,
//! and a queue longer than `max_domains` gives up with an unknown verdict.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use ndarray::Array2;
use num_rational::BigRational;
use num_traits::Signed;
use rand::rngs::StdRng;
use rayon::prelude::*;

use super::attack::{self, AttackConfig, Counterexample, Objective};
use super::grad;
use super::Deadline;
use crate::bounds::rounding::{abs_dot_up, sub_down};
use crate::bounds::Interval;
use crate::engine::crown::{Intermediate, State};
use crate::error::Result;
use crate::eval::exact::round_up_f64;
use crate::ir::Graph;
use crate::spec::Region;

/// What branch-and-bound concluded about one region.
#[derive(Clone, Debug, PartialEq)]
pub enum BabOutcome {
    /// Every sub-box is proved.
    Proved,
    Violated(Counterexample),
    Timeout,
    /// Gave up for the reason given (domain limit, unsplittable box).
    Unknown(String),
}

/// The bound problem of one region: its specification matrix and rounding slack.
pub struct Problem<'a> {
    pub graph: &'a Graph,
    pub region: &'a Region,
    pub index: usize,
    c: Array2<f64>,
    /// `(disjunct, atom)` of every row of `c`.
    rows: Vec<(usize, usize)>,
    /// For atoms whose coefficients are not exact `f64` numbers, `|a − ã|` rounded up.
    slack: Vec<Option<Vec<f64>>>,
}

impl<'a> Problem<'a> {
    pub fn new(graph: &'a Graph, region: &'a Region, index: usize) -> Problem<'a> {
        let mut rows = Vec::new();
        let mut slack = Vec::new();
        for (d, conj) in region.unsafe_outputs.iter().enumerate() {
            for (a, atom) in conj.atoms.iter().enumerate() {
                rows.push((d, a));
                slack.push((!atom.is_exact_in_f64()).then(|| {
                    atom.coeffs_exact
                        .iter()
                        .zip(&atom.coeffs)
                        .map(|(e, f)| match BigRational::from_float(*f) {
                            Some(q) => round_up_f64(&(e - q).abs()),
                            None => f64::INFINITY,
                        })
                        .collect()
                }));
            }
        }
        let n_out = graph.output_size();
        let c = Array2::from_shape_fn((rows.len(), n_out), |(i, j)| {
            let (d, a) = rows[i];
            region.unsafe_outputs[d].atoms[a].coeffs[j]
        });
        Problem {
            graph,
            region,
            index,
            c,
            rows,
            slack,
        }
    }

    /// Sound lower bounds of every atom's margin `a·Y − b` over the box `[lo, hi]`, and,
    /// when the box is not proved and `coefficients` is set, the input coefficients of the
    /// steering atom's linear bound (see [`grad::linear_coefficients`]).
    pub fn bound(&self, lo: &[f64], hi: &[f64], coefficients: bool) -> Result<Bounded> {
        let input = Interval::new(lo.to_vec(), hi.to_vec());
        let state = State::new(self.graph, &input, Intermediate::Replace)?;
        let b = state.bounds(Some(&self.c))?;
        let magnitude = b.outputs.magnitude();
        let mut margins: Vec<Vec<f64>> = self
            .region
            .unsafe_outputs
            .iter()
            .map(|c| vec![f64::NEG_INFINITY; c.atoms.len()])
            .collect();
        for (k, &(d, a)) in self.rows.iter().enumerate() {
            let atom = &self.region.unsafe_outputs[d].atoms[a];
            let mut m = sub_down(b.rows[k], atom.rhs);
            if let Some(s) = &self.slack[k] {
                m = sub_down(m, abs_dot_up(s, &magnitude));
            }
            margins[d][a] = m;
        }
        let steer = unproved(&margins);
        let coeffs = match steer {
            Some((d, a, _)) if coefficients => {
                let row = &self.region.unsafe_outputs[d].atoms[a].coeffs;
                grad::linear_coefficients(self.graph, &state.bounds, row).ok()
            }
            _ => None,
        };
        Ok(Bounded { steer, coeffs })
    }
}

/// What bounding a box tells branch-and-bound.
pub struct Bounded {
    /// `None` when the box is proved; otherwise the steering atom (see [`unproved`]).
    pub steer: Option<(usize, usize, f64)>,
    /// The steering atom's linear-bound coefficients over the input, when asked for.
    pub coeffs: Option<Vec<f64>>,
}

/// Whether the margins close the box, and otherwise the unproved atom to steer by: the best
/// atom of the worst unproved disjunct, and that atom's margin (the queue priority).
pub fn unproved(margins: &[Vec<f64>]) -> Option<(usize, usize, f64)> {
    let mut worst: Option<(usize, usize, f64)> = None;
    for (d, ms) in margins.iter().enumerate() {
        let best =
            ms.iter()
                .enumerate()
                .fold(None, |acc: Option<(usize, f64)>, (a, &m)| match acc {
                    Some((_, bm)) if bm >= m => acc,
                    _ => Some((a, m)),
                });
        let (a, m) = best.unwrap_or((0, f64::NEG_INFINITY));
        if m > 0.0 {
            continue;
        }
        if worst.is_none_or(|w| m < w.2) {
            worst = Some((d, a, m));
        }
    }
    worst
}

/// A sub-box waiting to be split.
struct Domain {
    lo: Vec<f64>,
    hi: Vec<f64>,
    priority: f64,
    split: usize,
}

impl PartialEq for Domain {
    fn eq(&self, other: &Self) -> bool {
        self.priority.total_cmp(&other.priority) == Ordering::Equal
    }
}
impl Eq for Domain {}
impl PartialOrd for Domain {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Domain {
    /// The max-heap pops the lowest priority (least proved) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.priority.total_cmp(&self.priority)
    }
}

/// Limits of one branch-and-bound run.
#[derive(Clone, Copy, Debug)]
pub struct BabConfig {
    /// Most sub-boxes allowed to wait in the queue.
    pub max_domains: usize,
    /// Whether input gradients are available (otherwise split the relatively widest input).
    pub use_gradient: bool,
}

/// Counters for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct BabStats {
    /// Sub-boxes bounded.
    pub bounded: u64,
    /// Largest queue length seen.
    pub peak_queue: usize,
}

/// A box as its lower and upper corners.
type SubBox = (Vec<f64>, Vec<f64>);

/// An unproved sub-box and the atom `(disjunct, atom, margin)` that steers it.
struct Open {
    lo: Vec<f64>,
    hi: Vec<f64>,
    atom: (usize, usize, f64),
    coeffs: Option<Vec<f64>>,
}

/// Runs branch-and-bound on `problem` from the root box's `margins`.
pub fn run(
    problem: &Problem,
    root_margins: &[Vec<f64>],
    cfg: BabConfig,
    rng: &mut StdRng,
    deadline: &Deadline,
    stats: &mut BabStats,
) -> Result<BabOutcome> {
    let region = problem.region;
    if unproved(root_margins).is_none() {
        return Ok(BabOutcome::Proved);
    }
    let root_width: Vec<f64> = (region.input.lower.iter().zip(&region.input.upper))
        .map(|(l, h)| h - l)
        .collect();
    let obj = Objective::new(region);
    let mut queue = BinaryHeap::new();
    let (lo, hi) = (region.input.lower.clone(), region.input.upper.clone());
    let b = problem.bound(&lo, &hi, cfg.use_gradient)?;
    stats.bounded += 1;
    let Some(atom) = b.steer else {
        return Ok(BabOutcome::Proved);
    };
    let root = vec![Open {
        lo,
        hi,
        atom,
        coeffs: b.coeffs,
    }];
    let (found, splits) = examine(problem, &obj, &root, &root_width)?;
    if let Some(c) = found {
        return Ok(BabOutcome::Violated(c));
    }
    enqueue(&mut queue, root, splits);
    let mut batch = 8usize;
    let mut last_attack = Instant::now();
    while !queue.is_empty() {
        if deadline.passed() {
            return Ok(BabOutcome::Timeout);
        }
        // Now and then, a short PGD on the least proved box.
        if last_attack.elapsed().as_secs_f64() > 2.0 {
            if let Some(top) = queue.peek() {
                let found = attack::search(
                    problem.graph,
                    region,
                    problem.index,
                    &top.lo,
                    &top.hi,
                    PERIODIC_ATTACK,
                    cfg.use_gradient,
                    rng,
                    deadline,
                )?;
                if let Some(c) = found {
                    return Ok(BabOutcome::Violated(c));
                }
            }
            last_attack = Instant::now();
        }
        let started = Instant::now();
        let mut children = Vec::with_capacity(2 * batch);
        for _ in 0..batch {
            let Some(d) = queue.pop() else { break };
            match bisect(&d) {
                Some((a, b)) => {
                    children.push(a);
                    children.push(b);
                }
                None => {
                    return Ok(BabOutcome::Unknown(
                        "a sub-box too small to split could not be proved".into(),
                    ))
                }
            }
        }
        let bounded: Vec<Result<Bounded>> = children
            .par_iter()
            .map(|(lo, hi)| problem.bound(lo, hi, cfg.use_gradient))
            .collect();
        stats.bounded += children.len() as u64;
        let mut open = Vec::new();
        for ((lo, hi), b) in children.into_iter().zip(bounded) {
            let b = b?;
            if let Some(atom) = b.steer {
                open.push(Open {
                    lo,
                    hi,
                    atom,
                    coeffs: b.coeffs,
                });
            }
        }
        if !open.is_empty() {
            let (found, splits) = examine(problem, &obj, &open, &root_width)?;
            if let Some(c) = found {
                return Ok(BabOutcome::Violated(c));
            }
            enqueue(&mut queue, open, splits);
        }
        stats.peak_queue = stats.peak_queue.max(queue.len());
        if queue.len() > cfg.max_domains {
            return Ok(BabOutcome::Unknown(format!(
                "more than {} sub-boxes wait to be proved (the domain limit)",
                cfg.max_domains
            )));
        }
        // Rounds of about a quarter of a second keep the deadline honoured.
        let secs = started.elapsed().as_secs_f64();
        if secs < 0.1 && batch < 4096 {
            batch *= 2;
        } else if secs > 0.4 && batch > 1 {
            batch /= 2;
        }
    }
    Ok(BabOutcome::Proved)
}

/// The PGD run on the least proved box, every couple of seconds.
const PERIODIC_ATTACK: AttackConfig = AttackConfig {
    samples: 64,
    restarts: 8,
    steps: 30,
};

fn enqueue(queue: &mut BinaryHeap<Domain>, open: Vec<Open>, splits: Vec<usize>) {
    for (o, split) in open.into_iter().zip(splits) {
        queue.push(Domain {
            lo: o.lo,
            hi: o.hi,
            priority: o.atom.2,
            split,
        });
    }
}

/// Checks the centres of the open boxes for counterexamples and chooses each box's split
/// input: the largest smear `|A_i| · width_i` with the steering atom's linear-bound
/// coefficients `A`, or (without them, or where they vanish) the widest input relative to the
/// root box.
fn examine(
    problem: &Problem,
    obj: &Objective,
    open: &[Open],
    root_width: &[f64],
) -> Result<(Option<Counterexample>, Vec<usize>)> {
    let n = root_width.len();
    let centres = Array2::from_shape_fn((open.len(), n), |(r, i)| {
        open[r].lo[i] + 0.5 * (open[r].hi[i] - open[r].lo[i])
    });
    let outputs = crate::eval::forward_f64(problem.graph, centres.view())?;
    let mut candidates: Vec<(f64, usize)> = (0..open.len())
        .map(|r| (obj.value(outputs.row(r).as_slice().unwrap_or(&[])).0, r))
        .filter(|(v, _)| *v <= 0.0)
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    for &(_, r) in candidates.iter().take(4) {
        let x = centres.row(r).to_vec();
        if let Some(c) = attack::confirm(problem.graph, problem.region, problem.index, &x)? {
            return Ok((Some(c), Vec::new()));
        }
    }
    let splits = open
        .iter()
        .map(|o| {
            let width = |i: usize| o.hi[i] - o.lo[i];
            let relative = |i: usize| {
                if root_width[i] > 0.0 {
                    width(i) / root_width[i]
                } else {
                    0.0
                }
            };
            let smear = |i: usize| {
                o.coeffs
                    .as_ref()
                    .and_then(|a| a.get(i))
                    .map_or(0.0, |a| a.abs() * width(i))
            };
            let by = |f: &dyn Fn(usize) -> f64| {
                (0..n).max_by(|&a, &b| f(a).total_cmp(&f(b))).unwrap_or(0)
            };
            let best = by(&smear);
            if smear(best) > 0.0 {
                best
            } else {
                by(&relative)
            }
        })
        .collect();
    Ok((None, splits))
}

/// The two halves of a box along its split input (or, when that input can no longer be
/// halved in `f64`, along the widest one that can); `None` when no input can be halved.
fn bisect(d: &Domain) -> Option<(SubBox, SubBox)> {
    let halvable = |i: usize| {
        let mid = d.lo[i] + 0.5 * (d.hi[i] - d.lo[i]);
        (mid > d.lo[i] && mid < d.hi[i]).then_some(mid)
    };
    let (i, mid) = match halvable(d.split) {
        Some(m) => (d.split, m),
        None => (0..d.lo.len())
            .filter_map(|i| halvable(i).map(|m| (i, m)))
            .max_by(|a, b| (d.hi[a.0] - d.lo[a.0]).total_cmp(&(d.hi[b.0] - d.lo[b.0])))?,
    };
    let mut left_hi = d.hi.clone();
    left_hi[i] = mid;
    let mut right_lo = d.lo.clone();
    right_lo[i] = mid;
    Some(((d.lo.clone(), left_hi), (right_lo, d.hi.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unproved_picks_the_worst_disjunct_and_its_best_atom() {
        assert_eq!(unproved(&[vec![1.0, -2.0], vec![0.5]]), None);
        assert_eq!(
            unproved(&[vec![-1.0, -3.0], vec![-0.5, -4.0], vec![2.0]]),
            Some((0, 0, -1.0))
        );
        // An empty conjunction (every output unsafe) is never proved.
        assert_eq!(unproved(&[vec![]]), Some((0, 0, f64::NEG_INFINITY)));
    }

    #[test]
    fn bisect_halves_the_split_input_or_falls_back() {
        let d = Domain {
            lo: vec![0.0, 1.0],
            hi: vec![1.0, 1.0],
            priority: -1.0,
            split: 1,
        };
        let ((l0, h0), (l1, h1)) = bisect(&d).unwrap();
        assert_eq!((l0, h0), (vec![0.0, 1.0], vec![0.5, 1.0]));
        assert_eq!((l1, h1), (vec![0.5, 1.0], vec![1.0, 1.0]));
        let point = Domain {
            lo: vec![1.0],
            hi: vec![1.0],
            priority: -1.0,
            split: 0,
        };
        assert!(bisect(&point).is_none());
    }
}
