//! Branch-and-bound by input splitting (the regime of low-dimensional inputs such as ACAS Xu).
//!
//! In: a graph, one [`Region`] and its root margins. Out: [`BabOutcome`]. Sub-boxes wait in a
//! priority queue, the least proved first (the most negative "best margin of the worst
//! unproved disjunct"). Each round pops a batch and, per box, bounds both halves of every
//! candidate input (strong branching: all inputs up to [`STRONG_CANDIDATES`], else the
//! relatively widest ones and the smear choice `|A_i| · width_i` from the steering atom's
//! CROWN input coefficients `A`), keeping the split with the most proved halves, then the best
//! worse half, then the best better half. Children are bounded in parallel chunks by the
//! batched CROWN of [`batch`](super::batch) (stacked rows, pre-activation enclosures of
//! stable neurons inherited from the parent), and their margins are intersected with the
//! parent's (both sound; CROWN is not monotone under splitting). A box is closed when every
//! disjunct has an atom with a margin lower bound `> 0`, or when the atoms' linear lower
//! bounds refute the conjunction together ([`joint`](super::joint): an LP over the box picks
//! the weights, the bound is evaluated with outward rounding; the certificate's claim then
//! carries the weights).
//!
//! **Hard regions** (opt-in, `BEACONS_BAB_ALPHA=on`: the certificate checker cannot yet
//! reproduce alpha-CROWN margins). A region still open after [`ALPHA_AFTER`] seconds is one
//! whose true margin is small somewhere (the hard ACAS Xu instances: about 0.002). From then on, children
//! CROWN leaves unproved but whose samples look safe ([`worth_alpha`]) also get alpha-CROWN
//! margins: about twenty times the cost of a CROWN bound, and a several times smaller gap on
//! small boxes (3_3 prop_2, a box of widths 0.25/0.008/0.008/0.03/0.5 of the region's:
//! CROWN −0.0150, alpha-CROWN −0.0027, LP −0.0025, true minimum about +0.0019). ReLU splits
//! with their constraints in that LP (beta-CROWN's Lagrangian, exact over a low-dimensional
//! box) can compete with the input splits (`BEACONS_BAB_RELU=1` with alpha on; experimental: no better than
//! alpha-CROWN alone there, and such sub-domains are no box leaves, so no certificate).
//!
//! **Counterexamples.** Every unproved child's centre and the vertex minimising its steering
//! atom's linear bound are checked; every couple of seconds a short PGD runs, alternately on
//! the least proved box and on the box whose samples came closest to violating the property
//! (a tiny unsafe region is rarely where the bounds are worst). The region holds only when
//! the queue empties; the deadline is checked between rounds, whose size adapts to take about
//! a quarter of a second, and a queue longer than `max_domains` gives up with an unknown
//! verdict (enclosures are no longer kept once the queue exceeds [`INHERIT_LIMIT`], bounding
//! memory). `BEACONS_BAB_DEBUG=1` prints one progress line per round to stderr;
//! `BEACONS_BAB_ALPHA=off|always|SECONDS` and `BEACONS_BAB_JOINT=off` are for experiments.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::time::Instant;

use ndarray::Array2;
use num_rational::BigRational;
use num_traits::Signed;
use rand::rngs::StdRng;
use rayon::prelude::*;

use super::attack::{self, AttackConfig, Counterexample, Objective};
use super::batch::{Inherited, Job, Plan, Split};
use super::Deadline;
use crate::bounds::rounding::{abs_dot_up, sub_down};
use crate::cert::Leaf;
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
    /// The batched CROWN engine's view of the graph (`Err` text: why it cannot bound it).
    plan: std::result::Result<Plan, String>,
    /// Whether conjunctions are also refuted jointly ([`joint`](super::joint));
    /// `BEACONS_BAB_JOINT=off` turns it off for experiments.
    joint: bool,
}

/// What bounding one sub-box of a batch tells branch-and-bound.
pub struct Scored {
    /// `None` when the box is proved; otherwise the steering atom (see [`unproved`]).
    pub steer: Option<(usize, usize, f64)>,
    /// The input coefficients of the steering atom's linear lower bound (when not proved).
    pub coeffs: Option<Vec<f64>>,
    /// The box's pre-activation enclosures, for its sub-boxes.
    pub inherited: Inherited,
    /// Lower bounds of every atom's margin (`margins[d][a]`); a disjunct with a joint
    /// refutation ([`joint`](super::joint)) has one more entry, the bound of the combination.
    pub margins: Vec<Vec<f64>>,
    /// Per disjunct, the weights of that combination (present exactly when `margins[d]` has
    /// the extra entry).
    pub joint: Vec<Option<Vec<f64>>>,
    /// Per disjunct, the combination's input coefficients (for steering).
    joint_coeffs: Vec<Option<Vec<f64>>>,
    /// Input coefficients of every row's linear lower bound.
    input_coeffs: Array2<f64>,
    /// The ReLU splits of the sub-domain (empty: the whole box).
    pub splits: Vec<Split>,
    /// How far the box's own bound (before [`Problem::tighten`]) is from proving it: the sum
    /// over disjuncts of the best atom margin where it is not positive (0 when proved). It is
    /// how much a split itself helped, which is what strong branching compares; summing over
    /// disjuncts credits a split that advances any of them, not only the worst.
    raw: f64,
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
            plan: Plan::new(graph).map_err(|e| e.to_string()),
            joint: !std::env::var("BEACONS_BAB_JOINT").is_ok_and(|v| v == "off"),
        }
    }

    /// Sound lower bounds of every atom's margin `a·Y − b` over the box `[lo, hi]`, and,
    /// when the box is not proved and `coefficients` is set, the input coefficients of the
    /// steering atom's linear lower bound.
    pub fn bound(&self, lo: &[f64], hi: &[f64], coefficients: bool) -> Result<Bounded> {
        let job = Job {
            lo: lo.to_vec(),
            hi: hi.to_vec(),
            inherited: None,
        };
        let s = self.bound_jobs(std::slice::from_ref(&job))?.remove(0);
        Ok(Bounded {
            steer: s.steer,
            coeffs: if coefficients { s.coeffs } else { None },
        })
    }

    /// [`Problem::bound`] for a batch of sub-boxes at once (see [`batch`](super::batch)),
    /// each with the enclosures inherited from a box containing it.
    pub fn bound_jobs(&self, jobs: &[Job]) -> Result<Vec<Scored>> {
        self.bound_jobs_split(jobs, &[])
    }

    /// [`Problem::bound_jobs`] where job `d` is the sub-domain of its box with the ReLU splits
    /// `splits[d]` (missing: none): the split constraints join the joint refutation of every
    /// unproved disjunct ([`joint::combine`](super::joint::combine)).
    pub fn bound_jobs_split(&self, jobs: &[Job], splits: &[Vec<Split>]) -> Result<Vec<Scored>> {
        let plan = self
            .plan
            .as_ref()
            .map_err(|e| crate::error::Error::Invalid(e.clone()))?;
        let bounded = plan.bound_with(self.graph, &self.c, jobs, splits)?;
        Ok(bounded
            .into_iter()
            .zip(jobs)
            .enumerate()
            .map(|(n, (b, job))| {
                let job_splits = splits.get(n).cloned().unwrap_or_default();
                let magnitude = b.output.magnitude();
                let n_disj = self.region.unsafe_outputs.len();
                let mut margins = self.by_disjunct(&self.row_margins(&b.rows, &magnitude));
                // The constant of each margin's linear lower bound (see `batch::BoxBound`).
                let kappa = b
                    .consts
                    .as_ref()
                    .map(|c| self.row_margins(c, &magnitude))
                    .unwrap_or_default();
                let mut joint = vec![None; n_disj];
                let mut joint_coeffs = vec![None; n_disj];
                // The split constraints, `g·x + h ≤ 0` on the sub-domain.
                let cons: Vec<&(Vec<f64>, f64)> = b.constraints.iter().flatten().collect();
                let g: Vec<&[f64]> = cons.iter().map(|c| c.0.as_slice()).collect();
                let h: Vec<f64> = cons.iter().map(|c| c.1).collect();
                if b.consts.is_some() && self.joint {
                    for d in 0..n_disj {
                        let best = margins[d].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        if margins[d].len() + g.len() < 2 || best > 0.0 {
                            continue;
                        }
                        let ks: Vec<usize> = (0..self.rows.len())
                            .filter(|&k| self.rows[k].0 == d)
                            .collect();
                        let rows: Vec<&[f64]> = ks
                            .iter()
                            .map(|&k| b.input_coeffs.row(k).to_slice().unwrap_or(&[]))
                            .collect();
                        let kap: Vec<f64> = ks.iter().map(|&k| kappa[k]).collect();
                        if let Some(j) =
                            super::joint::combine(&rows, &kap, &g, &h, &job.lo, &job.hi)
                        {
                            margins[d].push(j.bound);
                            joint[d] = Some(j.weights);
                            joint_coeffs[d] = Some(j.coeffs);
                        }
                    }
                }
                let mut s = Scored {
                    steer: None,
                    coeffs: None,
                    inherited: b.inherited,
                    margins,
                    joint,
                    joint_coeffs,
                    input_coeffs: b.input_coeffs,
                    splits: job_splits,
                    raw: 0.0,
                };
                self.resteer(&mut s);
                s.raw = deficit(&s.margins);
                s
            })
            .collect())
    }

    /// Tightens a sub-box's margins by those of a box containing it (both are sound on it;
    /// CROWN is not monotone under splitting) and chooses its steering atom again. A joint
    /// refutation of the parent holds on the sub-box too (its linear bounds do); the better
    /// of the two is kept, with its weights.
    pub fn tighten(&self, s: &mut Scored, parent: &[Vec<f64>], parent_joint: &[Option<Vec<f64>>]) {
        for (d, ps) in parent.iter().enumerate() {
            let Some(ms) = s.margins.get_mut(d) else {
                break;
            };
            let atoms = self.region.unsafe_outputs[d].atoms.len();
            for (m, p) in ms.iter_mut().zip(ps).take(atoms) {
                *m = m.max(*p);
            }
            if let (Some(&p), Some(w)) =
                (ps.get(atoms), parent_joint.get(d).and_then(|w| w.as_ref()))
            {
                match ms.get(atoms).copied() {
                    Some(m) if m >= p => {}
                    Some(_) => {
                        ms[atoms] = p;
                        s.joint[d] = Some(w.clone());
                        s.joint_coeffs[d] = None;
                    }
                    None => {
                        ms.push(p);
                        s.joint[d] = Some(w.clone());
                        s.joint_coeffs[d] = None;
                    }
                }
            }
        }
        self.resteer(s);
    }

    /// Sound lower bounds of every atom's margin over `[lo, hi]` by alpha-CROWN.
    pub fn alpha_margins(&self, lo: &[f64], hi: &[f64]) -> Result<Vec<Vec<f64>>> {
        let input = crate::bounds::Interval::new(lo.to_vec(), hi.to_vec());
        // (Optimising the final pass only, on CROWN's intermediate bounds, costs less but
        // stalled near CROWN's margin on 3_3 prop_2: the intermediate bounds matter.)
        let b = crate::engine::alpha::bounds(self.graph, &input, Some(&self.c), ALPHA_ITERATIONS)?;
        let magnitude = b.outputs.magnitude();
        Ok(self.by_disjunct(&self.row_margins(&b.rows, &magnitude)))
    }

    /// Per row of `c`, `value − b` minus the slack of an inexact atom (`|a − ã|·|Y|` with the
    /// output magnitudes), rounded down: from a lower bound of `ã·Y` (or of the constant of
    /// its linear bound), a lower bound of the atom's margin `a·Y − b` (or of that constant).
    fn row_margins(&self, values: &[f64], magnitude: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .enumerate()
            .map(|(k, &(d, a))| {
                let m = sub_down(values[k], self.region.unsafe_outputs[d].atoms[a].rhs);
                match &self.slack[k] {
                    Some(s) => sub_down(m, abs_dot_up(s, magnitude)),
                    None => m,
                }
            })
            .collect()
    }

    /// Row values arranged as `[disjunct][atom]`.
    fn by_disjunct(&self, rows: &[f64]) -> Vec<Vec<f64>> {
        let mut out: Vec<Vec<f64>> = self
            .region
            .unsafe_outputs
            .iter()
            .map(|c| vec![f64::NEG_INFINITY; c.atoms.len()])
            .collect();
        for (k, &(d, a)) in self.rows.iter().enumerate() {
            out[d][a] = rows[k];
        }
        out
    }

    fn resteer(&self, s: &mut Scored) {
        s.steer = unproved(&s.margins);
        s.coeffs = s.steer.and_then(|(d, a, _)| {
            if a == self.region.unsafe_outputs[d].atoms.len() {
                return s.joint_coeffs[d].clone();
            }
            let k = self.rows.iter().position(|&r| r == (d, a))?;
            Some(s.input_coeffs.row(k).to_vec())
        });
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

/// Sum over disjuncts of their best atom margin where it is `<= 0` (0 when every disjunct is
/// refuted).
pub(crate) fn deficit(margins: &[Vec<f64>]) -> f64 {
    margins
        .iter()
        .map(|ms| {
            let best = ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if best > 0.0 {
                0.0
            } else {
                best
            }
        })
        .sum()
}

/// A sub-box waiting to be split.
struct Domain {
    lo: Vec<f64>,
    hi: Vec<f64>,
    priority: f64,
    split: usize,
    /// Its pre-activation enclosures, inherited by its halves (dropped when the queue is long).
    inherited: Option<Inherited>,
    /// Its margin lower bounds, which hold on its halves too.
    margins: Vec<Vec<f64>>,
    /// The weights of its joint refutations (see [`Scored::joint`]).
    joint: Vec<Option<Vec<f64>>>,
    /// Its ReLU splits (empty: the whole box).
    splits: Vec<Split>,
    /// The smallest objective value seen at its sample points (centre, steering corner): how
    /// close it looks to holding a counterexample.
    sample: f64,
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
    /// Sub-boxes also bounded by alpha-CROWN.
    pub alpha: u64,
    /// Sub-domains with ReLU splits that were proved (no box leaf; no certificate).
    pub relu_leaves: u64,
}

/// When children get alpha-CROWN margins (`BEACONS_BAB_ALPHA=off|always|SECONDS`; default
/// off). Off by default because the certificate checker's own relaxation cannot reproduce
/// alpha-CROWN margins (3_3 prop_9's certificate was rejected when alpha-CROWN had closed
/// some of its leaves), and it decided no additional ACAS Xu instance within 116 s.
#[derive(Clone, Copy, Debug)]
enum AlphaMode {
    Never,
    After(f64),
}

impl AlphaMode {
    fn from_env() -> AlphaMode {
        match std::env::var("BEACONS_BAB_ALPHA").as_deref() {
            Ok("always") => AlphaMode::After(0.0),
            Ok("on") => AlphaMode::After(ALPHA_AFTER),
            Ok(v) => v.parse().map_or(AlphaMode::Never, AlphaMode::After),
            Err(_) => AlphaMode::Never,
        }
    }

    fn on(self, elapsed: f64) -> bool {
        match self {
            AlphaMode::Never => false,
            AlphaMode::After(t) => elapsed >= t,
        }
    }
}

/// Whether a box whose CROWN margin is `m < 0` is worth alpha-CROWN: its samples' objective
/// value `v` (an upper bound of its true minimum margin) is positive, so it may hold, and
/// `m > −κ v` with κ = [`ALPHA_REACH`]: alpha-CROWN leaves a fraction of CROWN's gap, so a
/// box far from proved relative to how safe it looks (the wide boxes of 1_9 prop_7: margins
/// near −6) is split instead. κ = 3 was tried and kept alpha-CROWN off the tight boxes of
/// 3_3 prop_2 (ratios 3 to 7; the worst margin stalled at CROWN's −0.0145 instead of
/// alpha-CROWN's −0.0058 after 60 s).
fn worth_alpha(m: f64, v: f64) -> bool {
    v > 0.0 && m > -ALPHA_REACH * v
}

/// κ of [`worth_alpha`].
const ALPHA_REACH: f64 = 10.0;

/// The smaller objective value (`min_d max_a` margin, see [`Objective`]) at the centre and at
/// the corner minimising the steering atom's linear bound, of every box.
fn centre_values(problem: &Problem, obj: &Objective, boxes: &[(Job, Scored)]) -> Result<Vec<f64>> {
    let n = problem.region.input.dim();
    let items: Vec<SampleBox> = boxes
        .iter()
        .map(|(j, s)| (j.lo.as_slice(), j.hi.as_slice(), s.coeffs.as_deref()))
        .collect();
    let points = sample_points(n, &items);
    let out = crate::eval::forward_f64(problem.graph, points.view())?;
    let v = |r: usize| obj.value(out.row(r).as_slice().unwrap_or(&[])).0;
    Ok((0..boxes.len())
        .map(|b| v(2 * b).min(v(2 * b + 1)))
        .collect())
}

/// A box's corners and its steering atom's input coefficients, for [`sample_points`].
type SampleBox<'a> = (&'a [f64], &'a [f64], Option<&'a [f64]>);

/// Two sample points per box (rows `2b` and `2b + 1`): its centre, and the corner that
/// minimises the linear function with coefficients `a` (the centre's coordinate where
/// `a_i = 0` or `a` is unknown).
fn sample_points(n: usize, boxes: &[SampleBox]) -> Array2<f64> {
    Array2::from_shape_fn((2 * boxes.len(), n), |(r, i)| {
        let (lo, hi, a) = boxes[r / 2];
        let centre = lo[i] + 0.5 * (hi[i] - lo[i]);
        if r % 2 == 0 {
            return centre;
        }
        match a.map(|a| a[i]) {
            Some(a) if a > 0.0 => lo[i],
            Some(a) if a < 0.0 => hi[i],
            _ => centre,
        }
    })
}

/// ReLU split candidates per box in strong branching (hard regions only).
const RELU_CANDIDATES: usize = 2;

/// Seconds of plain-CROWN branch-and-bound on a region before alpha-CROWN joins in.
const ALPHA_AFTER: f64 = 2.0;

/// alpha-CROWN iterations per layer for branch-and-bound children.
const ALPHA_ITERATIONS: usize = 10;

/// A box as its lower and upper corners.
type SubBox = (Vec<f64>, Vec<f64>);

/// The candidate halves of one popped box (a range of the round's jobs), with the box's
/// margins and joint weights.
type Group = (Range<usize>, Vec<Vec<f64>>, Vec<Option<Vec<f64>>>);

/// An unproved sub-box and the atom `(disjunct, atom, margin)` that steers it.
struct Open {
    lo: Vec<f64>,
    hi: Vec<f64>,
    atom: (usize, usize, f64),
    coeffs: Option<Vec<f64>>,
    inherited: Option<Inherited>,
    margins: Vec<Vec<f64>>,
    joint: Vec<Option<Vec<f64>>>,
    splits: Vec<Split>,
}

/// Queue length above which new domains no longer keep their enclosures (memory).
const INHERIT_LIMIT: usize = 200_000;

/// Sub-boxes per parallel task: large enough for efficient stacked matrix products.
const CHUNK: usize = 24;

/// Runs branch-and-bound on `problem` from the root box's `margins`. Every sub-box it closes
/// is pushed to `leaves` (with its margins, for the certificate); when the outcome is
/// [`BabOutcome::Proved`] they cover the region's box.
pub fn run(
    problem: &Problem,
    root_margins: &[Vec<f64>],
    cfg: BabConfig,
    rng: &mut StdRng,
    deadline: &Deadline,
    stats: &mut BabStats,
    leaves: &mut Vec<Leaf>,
) -> Result<BabOutcome> {
    let region = problem.region;
    let (root_lo, root_hi) = (&region.input.lower, &region.input.upper);
    if unproved(root_margins).is_none() {
        leaves.extend(Leaf::proved(root_lo, root_hi, "crown", root_margins));
        return Ok(BabOutcome::Proved);
    }
    let root_width: Vec<f64> = (region.input.lower.iter().zip(&region.input.upper))
        .map(|(l, h)| h - l)
        .collect();
    let obj = Objective::new(region);
    let mut queue = BinaryHeap::new();
    let (lo, hi) = (region.input.lower.clone(), region.input.upper.clone());
    let job = Job {
        lo,
        hi,
        inherited: None,
    };
    let b = problem.bound_jobs(std::slice::from_ref(&job))?.remove(0);
    stats.bounded += 1;
    let Some(atom) = b.steer else {
        leaves.extend(Leaf::proved_joint(
            &job.lo, &job.hi, METHOD, &b.margins, &b.joint,
        ));
        return Ok(BabOutcome::Proved);
    };
    let root = vec![Open {
        lo: job.lo,
        hi: job.hi,
        atom,
        coeffs: b.coeffs,
        inherited: Some(b.inherited),
        margins: b.margins,
        joint: b.joint,
        splits: Vec::new(),
    }];
    let (found, splits, samples) = examine(problem, &obj, &root, &root_width, cfg.use_gradient)?;
    if let Some(c) = found {
        return Ok(BabOutcome::Violated(c));
    }
    enqueue(&mut queue, root, splits, samples);
    let mut batch = 8usize;
    let mut last_attack = Instant::now();
    let mut attacks = 0usize;
    let threads = rayon::current_num_threads().max(1);
    let debug = std::env::var_os("BEACONS_BAB_DEBUG").is_some();
    // Strong branching (bound both halves of every candidate input, keep the best split):
    // worth its cost for low-dimensional inputs, where it shrinks the tree by orders of
    // magnitude on ACAS Xu. `BEACONS_SPLIT=smear` selects the plain smear heuristic.
    let strong = !std::env::var("BEACONS_SPLIT").is_ok_and(|v| v == "smear");
    let alpha_mode = AlphaMode::from_env();
    let relus = super::relu_bab::relu_inputs(problem.graph);
    // Experimental: ReLU splits with their constraints in the input-space LP
    // (`BEACONS_BAB_RELU=1`); measured no better than alpha-CROWN alone on the hard ACAS Xu
    // instances, so off by default.
    let relu_hybrid = std::env::var("BEACONS_BAB_RELU").is_ok_and(|v| v == "1");
    let bab_started = Instant::now();
    while !queue.is_empty() {
        if deadline.passed() {
            return Ok(BabOutcome::Timeout);
        }
        // Now and then, a short PGD on the least proved box.
        if last_attack.elapsed().as_secs_f64() > 2.0 {
            // Alternately the least proved box and the one whose samples came closest to a
            // counterexample (where a tiny unsafe region hides, the bound ordering alone
            // rarely leads there).
            attacks += 1;
            let target = if attacks.is_multiple_of(2) {
                queue.iter().min_by(|a, b| a.sample.total_cmp(&b.sample))
            } else {
                queue.peek()
            };
            if let Some(top) = target {
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
        // Each popped box: the candidate splits (input, halves) to bound.
        let mut jobs = Vec::with_capacity(2 * batch);
        let mut job_splits: Vec<Vec<Split>> = Vec::with_capacity(2 * batch);
        let mut groups: Vec<Group> = Vec::with_capacity(batch);
        let hard = alpha_mode.on(bab_started.elapsed().as_secs_f64());
        for _ in 0..batch {
            let Some(d) = queue.pop() else { break };
            let dims = if strong {
                candidates(&d, &root_width)
            } else {
                vec![d.split]
            };
            let start = jobs.len();
            for i in dims {
                if let Some((a, b)) = bisect_at(&d, i) {
                    jobs.push(Job {
                        lo: a.0,
                        hi: a.1,
                        inherited: d.inherited.clone(),
                    });
                    jobs.push(Job {
                        lo: b.0,
                        hi: b.1,
                        inherited: d.inherited.clone(),
                    });
                    job_splits.push(d.splits.clone());
                    job_splits.push(d.splits.clone());
                }
            }
            // On hard regions, ReLU splits compete with the input splits (same box, one
            // neuron's sign fixed on each side).
            if hard && strong && relu_hybrid {
                if let Some(inh) = &d.inherited {
                    for (v, j) in super::relu_bab::candidates(inh, &relus, RELU_CANDIDATES) {
                        let halves = super::relu_bab::children(inh, v, j);
                        for (e, active) in halves.into_iter().zip([true, false]) {
                            jobs.push(Job {
                                lo: d.lo.clone(),
                                hi: d.hi.clone(),
                                inherited: Some(e),
                            });
                            let mut sp = d.splits.clone();
                            sp.push(Split {
                                value: v,
                                neuron: j,
                                active,
                            });
                            job_splits.push(sp);
                        }
                    }
                }
            }
            if jobs.len() == start {
                match bisect(&d) {
                    Some((a, b)) => {
                        jobs.push(Job {
                            lo: a.0,
                            hi: a.1,
                            inherited: d.inherited.clone(),
                        });
                        jobs.push(Job {
                            lo: b.0,
                            hi: b.1,
                            inherited: d.inherited,
                        });
                        job_splits.push(d.splits.clone());
                        job_splits.push(d.splits.clone());
                    }
                    None => {
                        return Ok(BabOutcome::Unknown(
                            "a sub-box too small to split could not be proved".into(),
                        ))
                    }
                }
            }
            groups.push((start..jobs.len(), d.margins, d.joint));
        }
        // Chunks big enough for efficient products, and at least one per thread.
        let chunk = CHUNK.min(jobs.len().div_ceil(threads)).max(1);
        let bounded: Vec<Result<Vec<Scored>>> = jobs
            .par_chunks(chunk)
            .zip(job_splits.par_chunks(chunk))
            .map(|(jobs, splits)| problem.bound_jobs_split(jobs, splits))
            .collect();
        stats.bounded += jobs.len() as u64;
        let mut scored: Vec<Option<Scored>> = bounded
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .map(Some)
            .collect();
        let mut jobs: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
        // Per box, the split whose worse half is best proved (ties: the better sum).
        let mut children = Vec::with_capacity(2 * groups.len());
        for (g, parent, parent_joint) in groups {
            for s in scored[g.clone()].iter_mut().flatten() {
                problem.tighten(s, &parent, &parent_joint);
            }
            let margin = |s: &Option<Scored>| {
                s.as_ref()
                    .and_then(|s| s.steer)
                    .map_or(f64::INFINITY, |a| a.2)
            };
            // Per candidate split: proved halves, then the worse and the better half's margin
            // (equal within `TIE`, as splits that change nothing differ by rounding noise),
            // then the split input's width relative to the root box.
            let raw = |s: &Option<Scored>| s.as_ref().map_or(0.0, |s| s.raw);
            let key = |k: usize| {
                let (l, r) = (margin(&scored[k]), margin(&scored[k + 1]));
                let proved = usize::from(l > 0.0) + usize::from(r > 0.0);
                let (l, r) = (raw(&scored[k]), raw(&scored[k + 1]));
                let i = split_input(&jobs[k], &jobs[k + 1]);
                let rel = jobs[k].as_ref().map_or(0.0, |j| {
                    if root_width[i] > 0.0 {
                        (j.hi[i] - j.lo[i]) / root_width[i]
                    } else {
                        0.0
                    }
                });
                (proved, l.min(r), l.max(r), rel)
            };
            let close =
                |a: f64, b: f64| a == b || (a - b).abs() <= TIE * (1.0 + a.abs().max(b.abs()));
            // (Infinite margins, proved halves, are only equal to each other.)
            let close = |a: f64, b: f64| {
                if a.is_finite() && b.is_finite() {
                    close(a, b)
                } else {
                    a == b
                }
            };
            let cmp = |a: &(usize, f64, f64, f64), b: &(usize, f64, f64, f64)| {
                a.0.cmp(&b.0)
                    .then(if close(a.1, b.1) {
                        Ordering::Equal
                    } else {
                        a.1.total_cmp(&b.1)
                    })
                    .then(if close(a.2, b.2) {
                        Ordering::Equal
                    } else {
                        a.2.total_cmp(&b.2)
                    })
                    .then(a.3.total_cmp(&b.3))
            };
            let best = (g.start..g.end)
                .step_by(2)
                .map(|k| (k, key(k)))
                .reduce(|a, b| {
                    if cmp(&b.1, &a.1) == Ordering::Greater {
                        b
                    } else {
                        a
                    }
                })
                .map(|(k, _)| k);
            if let Some(k) = best {
                for j in [k, k + 1] {
                    if let (Some(job), Some(s)) = (jobs[j].take(), scored[j].take()) {
                        children.push((job, s));
                    }
                }
            }
        }
        // On hard regions (still open after ALPHA_AFTER seconds), children CROWN leaves
        // unproved get alpha-CROWN margins too: about twenty times the cost of a CROWN bound,
        // and often a several times smaller gap, which saves far more splits.
        if alpha_mode.on(bab_started.elapsed().as_secs_f64()) {
            let centre = centre_values(problem, &obj, &children)?;
            let refined: Vec<Result<Option<Vec<Vec<f64>>>>> = children
                .par_iter()
                .zip(&centre)
                .map(|((job, s), &v)| match s.steer {
                    Some(a) if s.splits.is_empty() && worth_alpha(a.2, v) => {
                        problem.alpha_margins(&job.lo, &job.hi).map(Some)
                    }
                    _ => Ok(None),
                })
                .collect();
            for ((_, s), r) in children.iter_mut().zip(refined) {
                if let Some(m) = r? {
                    stats.alpha += 1;
                    problem.tighten(s, &m, &[]);
                }
            }
        }
        let keep = queue.len() < INHERIT_LIMIT;
        let mut open = Vec::new();
        for (job, b) in children {
            if let Some(atom) = b.steer {
                open.push(Open {
                    lo: job.lo,
                    hi: job.hi,
                    atom,
                    coeffs: b.coeffs,
                    inherited: keep.then_some(b.inherited),
                    margins: b.margins,
                    joint: b.joint,
                    splits: b.splits,
                });
            } else if b.splits.is_empty() {
                leaves.extend(Leaf::proved_joint(
                    &job.lo, &job.hi, METHOD, &b.margins, &b.joint,
                ));
            } else {
                // A sub-domain of a box is no box leaf: the region's proof has no certificate.
                stats.relu_leaves += 1;
            }
        }
        if !open.is_empty() {
            let (found, splits, samples) =
                examine(problem, &obj, &open, &root_width, cfg.use_gradient)?;
            if let Some(c) = found {
                return Ok(BabOutcome::Violated(c));
            }
            enqueue(&mut queue, open, splits, samples);
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
        if debug {
            eprintln!(
                "bab: bounded {} (alpha {}) queue {} worst {:?} batch {batch} round {secs:.3}s",
                stats.bounded,
                stats.alpha,
                queue.len(),
                queue.peek().map(|d| d.priority)
            );
            if let Some(d) = queue.peek() {
                let rel: Vec<String> = (0..d.lo.len())
                    .map(|i| format!("{:.1e}", (d.hi[i] - d.lo[i]) / root_width[i].max(1e-300)))
                    .collect();
                eprintln!(
                    "  least proved box: relative widths {rel:?} margins {:?}",
                    d.margins
                );
                eprintln!("  box lo {:?} hi {:?} splits {:?}", d.lo, d.hi, d.splits);
            }
        }
        if secs < 0.1 && batch < 4096 {
            batch *= 2;
        } else if secs > 0.4 && batch > 1 {
            batch /= 2;
        }
    }
    Ok(BabOutcome::Proved)
}

/// The method named in the certificate's leaves.
const METHOD: &str = "bab-crown";

/// The PGD run on the least proved box, every couple of seconds.
const PERIODIC_ATTACK: AttackConfig = AttackConfig {
    samples: 64,
    restarts: 8,
    steps: 30,
};

fn enqueue(queue: &mut BinaryHeap<Domain>, open: Vec<Open>, splits: Vec<usize>, samples: Vec<f64>) {
    for ((o, split), sample) in open.into_iter().zip(splits).zip(samples) {
        queue.push(Domain {
            sample,
            lo: o.lo,
            hi: o.hi,
            priority: o.atom.2,
            split,
            inherited: o.inherited,
            margins: o.margins,
            joint: o.joint,
            splits: o.splits,
        });
    }
}

/// Checks the open boxes for counterexamples (each box's centre and the corner that minimises
/// its steering atom's linear lower bound, where the bound is least likely to be loose) and
/// chooses each box's split input: the largest smear `|A_i| · width_i` with the steering
/// atom's linear-bound coefficients `A` (the exact sensitivities of the bound), or (where they
/// vanish, or when `smear` is off) the widest input relative to the root box.
fn examine(
    problem: &Problem,
    obj: &Objective,
    open: &[Open],
    root_width: &[f64],
    smear: bool,
) -> Result<(Option<Counterexample>, Vec<usize>, Vec<f64>)> {
    let n = root_width.len();
    let items: Vec<SampleBox> = open
        .iter()
        .map(|o| (o.lo.as_slice(), o.hi.as_slice(), o.coeffs.as_deref()))
        .collect();
    let points = sample_points(n, &items);
    let outputs = crate::eval::forward_f64(problem.graph, points.view())?;
    let values: Vec<f64> = (0..points.nrows())
        .map(|r| obj.value(outputs.row(r).as_slice().unwrap_or(&[])).0)
        .collect();
    let samples: Vec<f64> = (0..open.len())
        .map(|b| values[2 * b].min(values[2 * b + 1]))
        .collect();
    let mut candidates: Vec<(f64, usize)> = (0..points.nrows())
        .map(|r| (values[r], r))
        .filter(|(v, _)| *v <= 0.0)
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    for &(_, r) in candidates.iter().take(4) {
        let x = points.row(r).to_vec();
        if let Some(c) = attack::confirm(problem.graph, problem.region, problem.index, &x)? {
            return Ok((Some(c), Vec::new(), Vec::new()));
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
            let smear_of = |i: usize| match &o.coeffs {
                Some(a) if smear => a[i].abs() * width(i),
                _ => 0.0,
            };
            let by = |f: &dyn Fn(usize) -> f64| {
                (0..n).max_by(|&a, &b| f(a).total_cmp(&f(b))).unwrap_or(0)
            };
            let best = by(&smear_of);
            if smear_of(best) > 0.0 {
                best
            } else {
                by(&relative)
            }
        })
        .collect();
    Ok((None, splits, samples))
}

/// Inputs strong branching tries on a box: every halvable one when there are at most
/// [`STRONG_CANDIDATES`], otherwise the heuristic's choice and the relatively widest others.
fn candidates(d: &Domain, root_width: &[f64]) -> Vec<usize> {
    let relative = |i: usize| {
        if root_width[i] > 0.0 {
            (d.hi[i] - d.lo[i]) / root_width[i]
        } else {
            0.0
        }
    };
    let mut dims: Vec<usize> = (0..d.lo.len())
        .filter(|&i| halvable(d, i).is_some())
        .collect();
    // An input already far narrower (relative to the root box) than the widest one is not a
    // candidate: halving it changes the bounds by rounding noise only, and such a split can
    // win the comparison below forever while the box never shrinks.
    let widest = dims.iter().map(|&i| relative(i)).fold(0.0, f64::max);
    dims.retain(|&i| relative(i) >= NARROW * widest);
    if dims.len() > STRONG_CANDIDATES {
        dims.sort_by(|&a, &b| relative(b).total_cmp(&relative(a)));
        dims.truncate(STRONG_CANDIDATES - 1);
        if !dims.contains(&d.split) && halvable(d, d.split).is_some() {
            dims.push(d.split);
        }
    }
    dims
}

/// Relative width (against the widest input, both relative to the root box) below which an
/// input is not a strong-branching candidate.
const NARROW: f64 = 1e-3;

/// Relative difference below which two candidate splits' margins count as equal.
const TIE: f64 = 1e-9;

/// The input along which two halves of one box differ.
fn split_input(a: &Option<Job>, b: &Option<Job>) -> usize {
    match (a, b) {
        (Some(a), Some(b)) => (0..a.lo.len())
            .find(|&i| a.lo[i] != b.lo[i] || a.hi[i] != b.hi[i])
            .unwrap_or(0),
        _ => 0,
    }
}

/// Most inputs strong branching bounds both halves of, per box.
const STRONG_CANDIDATES: usize = 6;

/// The midpoint of input `i` of a box, when it can still be halved in `f64`.
fn halvable(d: &Domain, i: usize) -> Option<f64> {
    let mid = d.lo[i] + 0.5 * (d.hi[i] - d.lo[i]);
    (mid > d.lo[i] && mid < d.hi[i]).then_some(mid)
}

/// The two halves of a box along input `i`, when it can be halved.
fn bisect_at(d: &Domain, i: usize) -> Option<(SubBox, SubBox)> {
    let mid = halvable(d, i)?;
    let mut left_hi = d.hi.clone();
    left_hi[i] = mid;
    let mut right_lo = d.lo.clone();
    right_lo[i] = mid;
    Some(((d.lo.clone(), left_hi), (right_lo, d.hi.clone())))
}

/// The two halves of a box along its split input (or, when that input can no longer be
/// halved in `f64`, along the widest one that can); `None` when no input can be halved.
fn bisect(d: &Domain) -> Option<(SubBox, SubBox)> {
    if let Some(h) = bisect_at(d, d.split) {
        return Some(h);
    }
    let i = (0..d.lo.len())
        .filter(|&i| halvable(d, i).is_some())
        .max_by(|&a, &b| (d.hi[a] - d.lo[a]).total_cmp(&(d.hi[b] - d.lo[b])))?;
    bisect_at(d, i)
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
            inherited: None,
            margins: Vec::new(),
            joint: Vec::new(),
            splits: Vec::new(),
            sample: 0.0,
        };
        let ((l0, h0), (l1, h1)) = bisect(&d).unwrap();
        assert_eq!((l0, h0), (vec![0.0, 1.0], vec![0.5, 1.0]));
        assert_eq!((l1, h1), (vec![0.5, 1.0], vec![1.0, 1.0]));
        let point = Domain {
            lo: vec![1.0],
            hi: vec![1.0],
            priority: -1.0,
            split: 0,
            inherited: None,
            margins: Vec::new(),
            joint: Vec::new(),
            splits: Vec::new(),
            sample: 0.0,
        };
        assert!(bisect(&point).is_none());
    }
}
