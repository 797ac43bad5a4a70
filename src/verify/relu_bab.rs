//! Branch-and-bound by ReLU splitting, for inputs too high-dimensional to split (mnist_fc and
//! the image models): the sub-domains are *activation patterns*, not boxes.
//!
//! In: a [`Problem`] (graph, region, specification rows), its deadline and a domain cap. Out:
//! [`BabOutcome`]. A domain is the region's box together with the sign of some ReLU inputs
//! (`z_j ≥ 0`: active, `z_j ≤ 0`: inactive). It is bounded by the batched CROWN of
//! [`batch`](super::batch) with its pre-activation enclosures *inherited* and cut by the
//! split: `[max(l, 0), u]` or `[l, min(u, 0)]`. Every bound computed that way holds for every
//! input of the box that has the domain's signs, because each enclosure used does; and the
//! two children of a split cover their parent (every input has `z_j ≥ 0` or `z_j ≤ 0`), so
//! when every domain is proved the property holds on the whole box. (The split constraints are
//! not propagated back into the linear bounds, as beta-CROWN does with Lagrange multipliers;
//! they act through the intermediate bounds only. Sound, less tight.)
//!
//! Branching: the unstable neuron (`l < 0 < u`) with the largest gap of the triangle
//! relaxation, `u·(−l)/(u − l)`, over all ReLU layers. The queue serves the least proved
//! domain first; domains are bounded in parallel batches sized to take about a quarter of a
//! second (the deadline is checked between them); a periodic attack on the region
//! looks for counterexamples meanwhile. More than `max_domains` open domains (each keeps its
//! enclosures) gives up with `unknown`, as does a domain whose every ReLU is fixed and which
//! is still not proved. Proofs found this way have no box-leaf certificate (`verify` says so).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rayon::prelude::*;

use super::attack::{self, AttackConfig};
use super::bab::{deficit, unproved, BabOutcome, BabStats, Problem};
use super::batch::{Inherited, Job};
use super::Deadline;
use crate::error::Result;
use crate::ir::{Op, ValueId};

/// Domains per parallel task (stacked matrix products pay off from a few dozen rows).
const CHUNK: usize = 16;

/// An attack on the whole region every this many seconds.
const ATTACK_EVERY: f64 = 3.0;

const PERIODIC_ATTACK: AttackConfig = AttackConfig {
    samples: 256,
    restarts: 8,
    steps: 50,
};

/// One open domain: the box's enclosures under its split signs, and its margins.
struct Domain {
    inherited: Inherited,
    margins: Vec<Vec<f64>>,
    /// Sum over unproved disjuncts of their best margin (≤ 0; the larger, the closer).
    deficit: f64,
    splits: usize,
}

impl PartialEq for Domain {
    fn eq(&self, o: &Self) -> bool {
        self.deficit.total_cmp(&o.deficit) == Ordering::Equal
    }
}
impl Eq for Domain {}
impl PartialOrd for Domain {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Domain {
    /// The heap pops the least proved (most negative deficit) first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.deficit.total_cmp(&self.deficit)
    }
}

/// The ReLU inputs of the graph (the values a split may cut).
pub(super) fn relu_inputs(graph: &crate::ir::Graph) -> Vec<ValueId> {
    let mut v: Vec<ValueId> = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Relu))
        .map(|n| n.inputs[0])
        .collect();
    v.dedup();
    v
}

/// The `count` unstable ReLU inputs (`l < 0 < u` in the enclosures) with the largest gap of
/// the triangle relaxation, `u·(−l)/(u − l)`, largest first (empty when every ReLU input is
/// stable).
pub(super) fn candidates(
    inherited: &Inherited,
    relus: &[ValueId],
    count: usize,
) -> Vec<(ValueId, usize)> {
    let mut all: Vec<(f64, ValueId, usize)> = Vec::new();
    for &v in relus {
        let Some(b) = inherited.get(v.0).and_then(|b| b.as_ref()) else {
            continue;
        };
        for j in 0..b.len() {
            let (l, u) = (b.lo[j], b.hi[j]);
            if l < 0.0 && u > 0.0 {
                all.push((u * (-l) / (u - l), v, j));
            }
        }
    }
    // Stable: among equal gaps the first in graph order, as the single choice always was.
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.into_iter()
        .take(count)
        .map(|(_, v, j)| (v, j))
        .collect()
}

/// The two children of a split: the enclosures with neuron `j` of `v` cut to `[max(l,0), u]`
/// (active) and `[l, min(u,0)]` (inactive).
pub(super) fn children(inherited: &Inherited, v: ValueId, j: usize) -> [Inherited; 2] {
    let cut = |active: bool| {
        let mut e = (**inherited).clone();
        let b = e[v.0].as_mut().expect("chosen from an enclosure");
        if active {
            b.lo[j] = b.lo[j].max(0.0);
        } else {
            b.hi[j] = b.hi[j].min(0.0);
        }
        Arc::new(e)
    };
    [cut(true), cut(false)]
}

/// Runs ReLU-splitting branch-and-bound on `problem`'s region.
pub fn run(
    problem: &Problem,
    max_domains: usize,
    use_gradient: bool,
    rng: &mut StdRng,
    deadline: &Deadline,
    stats: &mut BabStats,
) -> Result<BabOutcome> {
    let region = problem.region;
    let (lo, hi) = (&region.input.lower, &region.input.upper);
    let relus = relu_inputs(problem.graph);
    if relus.is_empty() {
        return Ok(BabOutcome::Unknown(
            "not proved by one bound, and the network has no ReLU to split".into(),
        ));
    }
    let job = |inherited: Option<Inherited>| Job {
        lo: lo.clone(),
        hi: hi.clone(),
        inherited,
    };
    let root = problem.bound_jobs(&[job(None)])?.remove(0);
    stats.bounded += 1;
    if root.steer.is_none() {
        return Ok(BabOutcome::Proved);
    }
    let mut queue = BinaryHeap::new();
    queue.push(Domain {
        deficit: deficit(&root.margins),
        inherited: root.inherited,
        margins: root.margins,
        splits: 0,
    });
    let threads = rayon::current_num_threads().max(1);
    // Domains per round: adapted so that a round takes about a quarter of a second (the
    // deadline is checked between rounds).
    let max_batch = threads * CHUNK / 2;
    let mut batch = 1usize;
    let mut last_attack = Instant::now();
    let debug = std::env::var_os("BEACONS_BAB_DEBUG").is_some();
    while !queue.is_empty() {
        if deadline.passed() {
            return Ok(BabOutcome::Timeout);
        }
        if last_attack.elapsed().as_secs_f64() > ATTACK_EVERY {
            let found = attack::search(
                problem.graph,
                region,
                problem.index,
                lo,
                hi,
                PERIODIC_ATTACK,
                use_gradient,
                rng,
                deadline,
            )?;
            if let Some(c) = found {
                return Ok(BabOutcome::Violated(c));
            }
            last_attack = Instant::now();
        }
        let started = Instant::now();
        // Pop a batch and split each domain once.
        let mut parents = Vec::with_capacity(batch);
        let mut jobs = Vec::with_capacity(2 * batch);
        while parents.len() < batch {
            let Some(d) = queue.pop() else { break };
            let Some(&(v, j)) = candidates(&d.inherited, &relus, 1).first() else {
                return Ok(BabOutcome::Unknown(format!(
                    "a sub-domain with every ReLU fixed ({} splits) is not proved by its \
                     linear bound (the split constraints are not yet used as constraints)",
                    d.splits
                )));
            };
            for e in children(&d.inherited, v, j) {
                jobs.push(job(Some(e)));
            }
            parents.push(d);
        }
        let bounded: Vec<_> = jobs
            .par_chunks(CHUNK)
            .map(|c| problem.bound_jobs(c))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        stats.bounded += bounded.len() as u64;
        for (k, mut s) in bounded.into_iter().enumerate() {
            let parent = &parents[k / 2];
            // The parent's margins hold on the child's sub-domain too.
            problem.tighten(&mut s, &parent.margins, &[]);
            if unproved(&s.margins).is_none() {
                continue;
            }
            queue.push(Domain {
                deficit: deficit(&s.margins),
                inherited: s.inherited,
                margins: s.margins,
                splits: parent.splits + 1,
            });
        }
        let took = started.elapsed().as_secs_f64();
        if took < 0.12 {
            batch = (batch * 2).min(max_batch);
        } else if took > 0.4 {
            batch = (batch / 2).max(1);
        }
        stats.peak_queue = stats.peak_queue.max(queue.len());
        if debug {
            eprintln!(
                "relu-bab: {} bounded, {} open, worst deficit {:.4}",
                stats.bounded,
                queue.len(),
                queue.peek().map_or(0.0, |d| d.deficit)
            );
        }
        if queue.len() > max_domains {
            return Ok(BabOutcome::Unknown(format!(
                "more than {max_domains} open ReLU-split domains (memory cap)"
            )));
        }
    }
    Ok(BabOutcome::Proved)
}
