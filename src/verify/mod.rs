//! Complete verification of a VNN-LIB property: attacks plus branch-and-bound → [`Verdict`].
//!
//! In: a graph (exact canonical level, one input, one output) and a [`Spec`]. Out: an
//! [`Outcome`]: `holds` only when every unsafe disjunct of every region is excluded on every
//! sub-box by sound CROWN margins; `violated` only with a [`Counterexample`] that the exact
//! evaluator confirms inside the exact input box; otherwise `unknown` (with the reason) or
//! `timeout`. The phases, each under one deadline:
//!
//! 1. a quick attack on every region ([`attack`]: random samples, then PGD with restarts);
//! 2. one CROWN bound (both intermediate-bound variants) per region;
//! 3. for regions still open: input-splitting branch-and-bound ([`bab`]) when the input has at
//!    most [`Options::max_split_inputs`] dimensions, otherwise a longer attack and ReLU-splitting
//!    branch-and-bound ([`relu_bab`]; its proofs carry no certificate).
//!
//! Around it: [`result_file`] writes the VNN-COMP result file, [`suite`] runs a VNN-COMP
//! `instances.csv` (sharded), and [`results`] reads, writes and merges suite results.

pub mod attack;
pub mod bab;
pub mod batch;
pub mod grad;
pub mod joint;
pub mod relu_bab;
pub mod result_file;
pub mod results;
pub mod suite;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

pub use attack::Counterexample;

use crate::cert::{Certificate, Leaf, RegionCert};
use crate::engine::{self, property};
use crate::error::{Error, Result};
use crate::ir::{Graph, Op};
use crate::spec::{Region, Spec};

/// The answer about a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Holds,
    Violated,
    Unknown,
    Timeout,
    /// The instance could not be run (a model or property error); [`verify`] itself returns
    /// `Err` instead, suites and result files record this.
    Error,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "violated",
            Verdict::Unknown => "unknown",
            Verdict::Timeout => "timeout",
            Verdict::Error => "error",
        }
    }

    /// The verdict named `s` (as [`Verdict::name`] writes it).
    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::Holds,
            Verdict::Violated,
            Verdict::Unknown,
            Verdict::Timeout,
            Verdict::Error,
        ]
        .into_iter()
        .find(|v| v.name() == s)
    }

    /// Whether the property was decided (holds or violated).
    pub fn decided(self) -> bool {
        matches!(self, Verdict::Holds | Verdict::Violated)
    }
}

/// Limits and knobs of one verification.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wall-clock budget; honoured to within about a second.
    pub timeout: Duration,
    /// Most sub-boxes allowed to wait in a branch-and-bound queue (memory cap).
    pub max_domains: usize,
    /// Seed of every random choice (runs are reproducible up to timing).
    pub seed: u64,
    /// Input splitting is used only up to this many input dimensions.
    pub max_split_inputs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(60),
            max_domains: 2_000_000,
            seed: 0,
            max_split_inputs: 16,
        }
    }
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Present exactly when the verdict is `violated`.
    pub counterexample: Option<Counterexample>,
    /// Why the verdict is `unknown` (empty otherwise).
    pub reason: String,
    pub seconds: f64,
    /// Sub-boxes bounded by branch-and-bound.
    pub domains: u64,
    /// Present exactly when the verdict is `holds`: the leaves of every region (not stamped
    /// with the files' hashes; see [`Certificate::stamp`]). Not part of the JSON output.
    #[serde(skip)]
    pub certificate: Option<Certificate>,
}

/// A point in time after which work stops.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            at: now
                .checked_add(d)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        }
    }
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// The quick attack of phase 1.
const QUICK_ATTACK: attack::AttackConfig = attack::AttackConfig {
    samples: 512,
    restarts: 16,
    steps: 60,
};

/// The longer attack for regions no split search will decide.
/// Most open ReLU-split domains (each keeps its pre-activation enclosures).
const RELU_MAX_DOMAINS: usize = 20_000;

const LONG_ATTACK: attack::AttackConfig = attack::AttackConfig {
    samples: 2048,
    restarts: 64,
    steps: 200,
};

/// Decides `spec` on `graph`. Errors are input errors (sizes that do not match, operators
/// the engines do not support); every verdict is sound.
pub fn verify(graph: &Graph, spec: &Spec, opts: &Options) -> Result<Outcome> {
    let start = Instant::now();
    let deadline = Deadline::after(opts.timeout);
    check_fits(graph, spec)?;
    let use_gradient = grad::check_supported(graph).is_ok();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut outcome = Outcome {
        verdict: Verdict::Holds,
        counterexample: None,
        reason: String::new(),
        seconds: 0.0,
        domains: 0,
        certificate: None,
    };
    let mut leaves: Vec<Vec<Leaf>> = vec![Vec::new(); spec.regions.len()];
    let finish = |mut o: Outcome, v: Verdict| {
        o.verdict = v;
        o.seconds = start.elapsed().as_secs_f64();
        Ok(o)
    };
    let live: Vec<(usize, &Region)> = spec
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| !vacuous(r))
        .collect();
    // Phase 1: a quick attack everywhere.
    for &(k, r) in &live {
        if deadline.passed() {
            return finish(outcome, Verdict::Timeout);
        }
        let (lo, hi) = (&r.input.lower, &r.input.upper);
        let cfg = QUICK_ATTACK;
        if let Some(c) =
            attack::search(graph, r, k, lo, hi, cfg, use_gradient, &mut rng, &deadline)?
        {
            outcome.counterexample = Some(c);
            return finish(outcome, Verdict::Violated);
        }
    }
    // Phase 2: one bound per region.
    let mut open = Vec::new();
    for &(k, r) in &live {
        if deadline.passed() {
            return finish(outcome, Verdict::Timeout);
        }
        let b =
            property::region_bounds_by(graph, r, |input, c| engine::crown_tight(graph, input, c))?;
        if b.proved() {
            let (lo, hi) = (&r.input.lower, &r.input.upper);
            leaves[k].extend(Leaf::proved(lo, hi, "crown", &b.margins));
        } else {
            open.push((k, r, b.margins));
        }
    }
    // Phase 3: split what is left.
    let mut unknown = Vec::new();
    let mut relu_proved = Vec::new();
    let mut timed_out = false;
    for (k, r, margins) in open {
        if deadline.passed() {
            timed_out = true;
            break;
        }
        if r.input.dim() > opts.max_split_inputs {
            let (lo, hi) = (&r.input.lower, &r.input.upper);
            let cfg = LONG_ATTACK;
            if let Some(c) =
                attack::search(graph, r, k, lo, hi, cfg, use_gradient, &mut rng, &deadline)?
            {
                outcome.counterexample = Some(c);
                return finish(outcome, Verdict::Violated);
            }
            // Too many inputs to split: split ReLUs instead.
            let problem = bab::Problem::new(graph, r, k);
            let mut stats = bab::BabStats::default();
            let res = relu_bab::run(
                &problem,
                opts.max_domains.min(RELU_MAX_DOMAINS),
                use_gradient,
                &mut rng,
                &deadline,
                &mut stats,
            );
            outcome.domains += stats.bounded;
            match res? {
                bab::BabOutcome::Proved => relu_proved.push(k),
                bab::BabOutcome::Violated(c) => {
                    outcome.counterexample = Some(c);
                    return finish(outcome, Verdict::Violated);
                }
                bab::BabOutcome::Timeout => {
                    timed_out = true;
                    break;
                }
                bab::BabOutcome::Unknown(why) => unknown.push(format!(
                    "region {k}: {why} (ReLU splitting; input splitting is used up to {} \
                     inputs, this one has {})",
                    opts.max_split_inputs,
                    r.input.dim()
                )),
            }
            continue;
        }
        let problem = bab::Problem::new(graph, r, k);
        let cfg = bab::BabConfig {
            max_domains: opts.max_domains,
            use_gradient,
        };
        let mut stats = bab::BabStats::default();
        let res = bab::run(
            &problem,
            &margins,
            cfg,
            &mut rng,
            &deadline,
            &mut stats,
            &mut leaves[k],
        );
        outcome.domains += stats.bounded;
        match res? {
            bab::BabOutcome::Proved if stats.relu_leaves > 0 => relu_proved.push(k),
            bab::BabOutcome::Proved => {}
            bab::BabOutcome::Violated(c) => {
                outcome.counterexample = Some(c);
                return finish(outcome, Verdict::Violated);
            }
            bab::BabOutcome::Timeout => {
                timed_out = true;
                break;
            }
            bab::BabOutcome::Unknown(why) => unknown.push(format!("region {k}: {why}")),
        }
    }
    if timed_out {
        return finish(outcome, Verdict::Timeout);
    }
    if !unknown.is_empty() {
        outcome.reason = unknown.join("; ");
        return finish(outcome, Verdict::Unknown);
    }
    if !relu_proved.is_empty() {
        // Activation-pattern domains are not boxes: no certificate the checker takes.
        outcome.reason = format!(
            "proved by ReLU splitting (region(s) {:?}); no certificate: check-cert takes \
             box leaves only",
            relu_proved
        );
        return finish(outcome, Verdict::Holds);
    }
    outcome.certificate = Some(Certificate::new(
        spec.regions
            .iter()
            .zip(leaves)
            .map(|(r, l)| RegionCert::new(&r.input.lower, &r.input.upper, l))
            .collect(),
    ));
    finish(outcome, Verdict::Holds)
}

/// Whether a region can hold no counterexample: its exact box is empty or its unsafe
/// DNF has no disjunct.
fn vacuous(r: &Region) -> bool {
    r.unsafe_outputs.is_empty()
        || r.input
            .lower_exact
            .iter()
            .zip(&r.input.upper_exact)
            .any(|(l, h)| l > h)
}

/// The property's sizes match the model, and the model is one the engines bound as it is.
fn check_fits(graph: &Graph, spec: &Spec) -> Result<()> {
    let (_, out) = engine::target_of(graph)?;
    if graph.outputs.first() != Some(&out) {
        let name = graph
            .producer(graph.outputs[0])
            .map_or("?", |k| graph.nodes[k].op.kind());
        return Err(Error::Invalid(format!(
            "the model ends in {name}; the property refers to its outputs, but the bound \
             engines bound the values before it. Export the model without the final {name}."
        )));
    }
    if graph
        .nodes
        .iter()
        .any(|n| matches!(n.op, Op::Softmax { .. }))
    {
        return Err(Error::Invalid(
            "Softmax inside a model is not supported by the verifier".into(),
        ));
    }
    if spec.num_inputs != graph.input_size() || spec.num_outputs != graph.output_size() {
        return Err(Error::Invalid(format!(
            "the property declares {} inputs and {} outputs, but the model has {} input and \
             {} output scalars",
            spec.num_inputs,
            spec.num_outputs,
            graph.input_size(),
            graph.output_size()
        )));
    }
    for (k, r) in spec.regions.iter().enumerate() {
        if r.input.dim() != graph.input_size() {
            return Err(Error::Invalid(format!(
                "input box {k} has {} dimensions, the model {}",
                r.input.dim(),
                graph.input_size()
            )));
        }
    }
    Ok(())
}
