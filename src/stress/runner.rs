//! The runner: from a scenario to results.
//!
//! In: a validated [`Scenario`]. It loads the model, draws the cohort from the generator
//! (seeded by the scenario's seed), and checks binding, perturbations and properties against
//! both ([`Prepared`]). Then, for every perturbation:
//!
//! 1. **Sweep** — `steps` severities evenly spaced over the perturbation's range × `replicates`
//!    perturbation seeds; every property that applies is judged on the whole cohort, giving a
//!    pass-rate-versus-severity curve per property.
//! 2. **Search** — per property, `proptest` draws random (severity, seed, cohort subset) cases;
//!    a failing case (or, if the search finds none, the sweep's first failing one) is shrunk
//!    by [`search::CaseTree`]: first re-bisected on the whole cohort to the smallest failing
//!    severity for its seed, then reduced to the smallest failing set of samples.
//! 3. Each failure gets a replay token ([`replay`](super::replay)).
//!
//! Forward passes are batched through `eval::forward_f32` (row chunks in parallel with
//! rayon); sweep cases run in parallel too. Every evaluation perturbs and evaluates the whole
//! cohort, so a replayed case computes exactly the same arithmetic as the search did.

use std::cell::RefCell;
use std::io::IsTerminal;

use ndarray::{Array2, Axis};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use super::binding::Predictions;
use super::cohort::Cohort;
use super::perturbations::{Context, Perturbation};
use super::properties::{Evidence, Outcome, Property};
use super::replay::Token;
use super::results::{
    Baseline, Curve, Failure, PropertyResult, ReplayResult, SampleDetail, StressResults,
    SCHEMA_VERSION,
};
use super::scenario::{fnv1a, PerturbationEntry, Scenario, FNV_START};
use super::search::{Case, CaseStrategy, CaseTree};
use crate::error::{Error, Result};
use crate::eval;
use crate::ir::{load_model, Graph};

/// A scenario with its model loaded, its cohort drawn, and everything checked.
pub struct Prepared {
    pub scenario: Scenario,
    pub graph: Graph,
    pub cohort: Cohort,
    /// The cohort column feeding each network input.
    pub columns: Vec<usize>,
    pub context: Context,
    /// The scenario's perturbations (an identity "clean" one when it has none).
    pub perturbations: Vec<PerturbationEntry>,
    clean: Evaluated,
}

/// The network on one (perturbed) cohort.
pub struct Evaluated {
    /// The perturbed cohort, physical units.
    pub x: Array2<f64>,
    /// The network's input (bound columns, normalised, f32).
    pub input: Array2<f32>,
    /// The network's raw outputs.
    pub raw: Array2<f32>,
    pub predictions: Predictions,
    /// Predictions with a monotonicity property's feature stepped, per property index.
    pub stepped: Vec<Option<Predictions>>,
}

/// A shrunk failure of one (perturbation, property) pair.
#[derive(Clone, Debug)]
pub struct FoundFailure {
    pub case: Case,
    pub outcome: Outcome,
    pub found_by: &'static str,
    pub found_at_severity: f64,
}

/// A mixing function for derived seeds (splitmix64).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Prepared {
    /// Loads the scenario's model and draws its cohort.
    pub fn load(scenario: Scenario) -> Result<Prepared> {
        let model = load_model(&scenario.binding.model)?;
        Prepared::with_graph(scenario, model.graph)
    }

    /// Uses `graph` as the model (tests build networks in code) and draws the cohort.
    pub fn with_graph(scenario: Scenario, graph: Graph) -> Result<Prepared> {
        let generator = scenario.generator.build();
        let mut rng = StdRng::seed_from_u64(scenario.seed);
        let cohort = generator.generate(scenario.samples, &mut rng);
        Prepared::with_cohort(scenario, graph, cohort)
    }

    /// Uses `graph` as the model and `cohort` as the cohort.
    pub fn with_cohort(scenario: Scenario, graph: Graph, cohort: Cohort) -> Result<Prepared> {
        let binding = &scenario.binding;
        binding.check_model(&graph)?;
        if cohort.is_empty() {
            return Err(scenario.error("samples", "the generator drew no samples"));
        }
        let columns = binding.columns(&cohort)?;
        let context = Context::of(&cohort, binding.cohort_ranges(&cohort, &columns));
        let mut perturbations = scenario.perturbations.clone();
        for (i, p) in perturbations.iter().enumerate() {
            if let Err((key, m)) = p.perturbation.check(&context) {
                return Err(scenario.error(&format!("perturbations[{i}].{key}"), m));
            }
        }
        for (i, p) in scenario.properties.iter().enumerate() {
            if let Err((key, m)) = p.property.check(binding, &cohort) {
                return Err(scenario.error(&format!("properties[{i}].{key}"), m));
            }
        }
        if perturbations.is_empty() {
            perturbations.push(PerturbationEntry {
                name: "clean".into(),
                severity: [0.0, 0.0],
                perturbation: Perturbation::IntensityShift {
                    shift: 0.0,
                    features: vec![],
                },
            });
        }
        let mut prepared = Prepared {
            clean: Evaluated {
                x: Array2::zeros((0, 0)),
                input: Array2::zeros((0, 0)),
                raw: Array2::zeros((0, 0)),
                predictions: Predictions::Values(vec![]),
                stepped: vec![],
            },
            scenario,
            graph,
            cohort,
            columns,
            context,
            perturbations,
        };
        prepared.clean = prepared.network(prepared.cohort.x.clone())?;
        Ok(prepared)
    }

    /// The network's answers on a cohort matrix (physical units), with stepped copies for
    /// the monotonicity properties.
    pub fn network(&self, x: Array2<f64>) -> Result<Evaluated> {
        let binding = &self.scenario.binding;
        let input = binding.network_input(x.view(), &self.columns);
        let raw = eval::forward_f32(&self.graph, input.view())?;
        let predictions = binding.predictions(raw.view());
        let mut stepped = Vec::with_capacity(self.scenario.properties.len());
        for q in &self.scenario.properties {
            stepped.push(match q.property.step() {
                Some((feature, step)) => {
                    let j = self
                        .context
                        .columns(&[feature.to_string()])
                        .map_err(Error::Invalid)?[0];
                    let mut xs = x.clone();
                    xs.column_mut(j).mapv_inplace(|v| v + step);
                    let input = binding.network_input(xs.view(), &self.columns);
                    let raw = eval::forward_f32(&self.graph, input.view())?;
                    Some(binding.predictions(raw.view()))
                }
                None => None,
            });
        }
        Ok(Evaluated {
            x,
            input,
            raw,
            predictions,
            stepped,
        })
    }

    /// The cohort damaged by perturbation `p` at `severity` with `seed`, and the network on it.
    pub fn evaluate(&self, p: usize, seed: u64, severity: f64) -> Result<Evaluated> {
        let mut x = self.cohort.x.clone();
        let mut rng = StdRng::seed_from_u64(seed);
        self.perturbations[p]
            .perturbation
            .apply(&mut x, &self.context, severity, &mut rng);
        self.network(x)
    }

    /// Property `q` on the samples `idx` of an evaluation.
    pub fn judge(&self, q: usize, ev: &Evaluated, idx: &[usize]) -> Outcome {
        let evidence = Evidence {
            clean: &self.clean.predictions,
            perturbed: &ev.predictions,
            stepped: ev.stepped[q].as_ref(),
            labels: self.cohort.labels.as_deref(),
            targets: self.cohort.targets.as_deref(),
        };
        self.scenario.properties[q]
            .property
            .judge(&self.scenario.binding, &evidence, idx)
    }

    /// Whether property `q` applies to perturbation `p` (every property applies to "clean").
    fn applies(&self, q: usize, p: usize) -> bool {
        self.scenario.perturbations.is_empty() || self.scenario.applies(q, p)
    }

    fn severities(&self, p: usize) -> Vec<f64> {
        let [lo, hi] = self.perturbations[p].severity;
        let steps = if hi > lo {
            self.scenario.sweep.steps
        } else {
            1
        };
        (0..steps)
            .map(|k| {
                if steps == 1 {
                    lo
                } else {
                    lo + (hi - lo) * k as f64 / (steps - 1) as f64
                }
            })
            .collect()
    }

    /// The seed of sweep replicate `r` of perturbation `p`.
    pub fn replicate_seed(&self, p: usize, r: usize) -> u64 {
        mix(mix(self.scenario.seed, 0x5eed_0000 + p as u64), r as u64)
    }

    /// Digest of the network's inputs and outputs on `samples` (in order).
    pub fn digest(ev: &Evaluated, samples: &[usize]) -> u64 {
        let mut h = FNV_START;
        for &i in samples {
            for v in ev.input.row(i) {
                h = fnv1a(h, &v.to_bits().to_le_bytes());
            }
            for v in ev.raw.row(i) {
                h = fnv1a(h, &v.to_bits().to_le_bytes());
            }
        }
        h
    }

    fn all(&self) -> Vec<usize> {
        (0..self.cohort.len()).collect()
    }

    /// The sweep of perturbation `p`: per severity, per replicate, the outcome of every
    /// property (`None` where it does not apply).
    pub fn sweep(
        &self,
        p: usize,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Vec<Vec<Vec<Option<Outcome>>>>> {
        let sev = self.severities(p);
        let reps = self.scenario.sweep.replicates;
        let all = self.all();
        let cases: Vec<(usize, usize)> = (0..sev.len())
            .flat_map(|k| (0..reps).map(move |r| (k, r)))
            .collect();
        let outcomes: Vec<Vec<Option<Outcome>>> = cases
            .par_iter()
            .map(|&(k, r)| {
                let ev = self.evaluate(p, self.replicate_seed(p, r), sev[k])?;
                let out = (0..self.scenario.properties.len())
                    .map(|q| self.applies(q, p).then(|| self.judge(q, &ev, &all)))
                    .collect();
                tick();
                Ok(out)
            })
            .collect::<Result<_>>()?;
        let mut grid = vec![Vec::with_capacity(reps); sev.len()];
        for ((k, _), o) in cases.into_iter().zip(outcomes) {
            grid[k].push(o);
        }
        Ok(grid)
    }

    /// Proptest search and shrinking of property `q` under perturbation `p`; `hint` is a
    /// failing (seed, severity) from the sweep, used when the search finds nothing.
    pub fn search(
        &self,
        p: usize,
        q: usize,
        hint: Option<(u64, f64)>,
    ) -> Result<Option<FoundFailure>> {
        let [lo, hi] = self.perturbations[p].severity;
        let per_sample = self.scenario.properties[q].property.per_sample();
        let n = self.cohort.len();
        let error: RefCell<Option<Error>> = RefCell::new(None);
        let cache: RefCell<Option<((u64, u64), Evaluated)>> = RefCell::new(None);
        let last_fail: RefCell<Option<(Case, Outcome)>> = RefCell::new(None);
        let first_fail: RefCell<Option<f64>> = RefCell::new(None);
        let test = |c: Case| -> std::result::Result<(), TestCaseError> {
            let key = (c.seed, c.severity.to_bits());
            let mut cache = cache.borrow_mut();
            if cache.as_ref().map(|(k, _)| *k) != Some(key) {
                match self.evaluate(p, c.seed, c.severity) {
                    Ok(ev) => *cache = Some((key, ev)),
                    Err(e) => {
                        *error.borrow_mut() = Some(e);
                        return Ok(());
                    }
                }
            }
            let Some((_, ev)) = cache.as_ref() else {
                return Ok(());
            };
            let outcome = self.judge(q, ev, &c.samples);
            if outcome.pass {
                Ok(())
            } else {
                first_fail.borrow_mut().get_or_insert(c.severity);
                *last_fail.borrow_mut() = Some((c, outcome));
                Err(TestCaseError::fail("property fails"))
            }
        };
        let search = &self.scenario.search;
        let config = Config {
            cases: search.cases,
            max_shrink_iters: search.max_shrink_iters,
            failure_persistence: None,
            max_global_rejects: 0,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        for (k, chunk) in seed.chunks_mut(8).enumerate() {
            let v = mix(
                mix(self.scenario.seed, (p as u64) << 32 | q as u64),
                k as u64,
            );
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        let mut runner = TestRunner::new_with_rng(
            config.clone(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        // 1. Search (and a first shrink) over random cases.
        let strategy = CaseStrategy {
            lo,
            hi,
            n,
            subsets: per_sample,
        };
        let (start, found_by) = match runner.run(&strategy, test) {
            Err(TestError::Fail(_, c)) => (Some(c), "search"),
            _ => match hint {
                Some((seed, severity)) => (
                    Some(Case {
                        severity,
                        seed,
                        samples: self.all(),
                    }),
                    "sweep",
                ),
                None => (None, "search"),
            },
        };
        if let Some(e) = error.borrow_mut().take() {
            return Err(e);
        }
        let Some(start) = start else { return Ok(None) };
        let found_at_severity = first_fail.borrow().unwrap_or(start.severity);
        // 2. Re-shrink from the whole cohort at that seed: the smallest failing severity of
        // the cohort, then the smallest failing set of samples.
        let all_fail = {
            let full = Case {
                samples: self.all(),
                ..start.clone()
            };
            test(full.clone()).is_err().then_some(full)
        };
        let base = all_fail.unwrap_or(start);
        *last_fail.borrow_mut() = None;
        let tree = CaseTree::new(base.clone(), lo, hi, true, per_sample);
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        let shrunk = match runner.run_one(tree, test) {
            Err(TestError::Fail(_, c)) => c,
            _ => base,
        };
        if let Some(e) = error.borrow_mut().take() {
            return Err(e);
        }
        // The recorded outcome of the final case (re-judged to be exact).
        let ev = self.evaluate(p, shrunk.seed, shrunk.severity)?;
        let outcome = self.judge(q, &ev, &shrunk.samples);
        if outcome.pass {
            // Shrinking never ends on a passing case; keep the last failure seen to be safe.
            if let Some((c, o)) = last_fail.borrow().clone() {
                return Ok(Some(FoundFailure {
                    case: c,
                    outcome: o,
                    found_by,
                    found_at_severity,
                }));
            }
        }
        Ok(Some(FoundFailure {
            case: shrunk,
            outcome,
            found_by,
            found_at_severity,
        }))
    }

    /// The replay token of a failure.
    pub fn token(&self, p: usize, q: usize, f: &FoundFailure) -> Result<Token> {
        let ev = self.evaluate(p, f.case.seed, f.case.severity)?;
        let whole = f.case.samples.len() == self.cohort.len();
        Ok(Token {
            scenario_hash: self.scenario.hash,
            perturbation: p,
            property: q,
            seed: f.case.seed,
            severity: f.case.severity,
            samples: (!whole).then(|| f.case.samples.clone()),
            digest: Prepared::digest(&ev, &f.case.samples),
        })
    }

    /// Runs the whole scenario. `progress` shows a bar on stderr (when it is a terminal).
    pub fn run(&self, progress: bool) -> Result<StressResults> {
        let props = &self.scenario.properties;
        let sweep_units: usize = (0..self.perturbations.len())
            .map(|p| self.severities(p).len() * self.scenario.sweep.replicates)
            .sum();
        let search_units: usize = (0..self.perturbations.len())
            .map(|p| (0..props.len()).filter(|&q| self.applies(q, p)).count())
            .sum();
        let bar = if progress && std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new((sweep_units + search_units) as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>24} [{bar:40}] {pos}/{len} {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let all = self.all();
        let baseline: Vec<Baseline> = (0..props.len())
            .map(|q| {
                let o = self.judge(q, &self.clean, &all);
                Baseline {
                    property: props[q].name.clone(),
                    metric: o.metric,
                    pass: o.pass,
                }
            })
            .collect();
        let mut curves = Vec::new();
        let mut failures: Vec<Vec<Failure>> = vec![Vec::new(); props.len()];
        for (p, entry) in self.perturbations.iter().enumerate() {
            bar.set_message(format!("sweep {}", entry.name));
            let tick = || bar.inc(1);
            let grid = self.sweep(p, &tick)?;
            let sev = self.severities(p);
            for q in (0..props.len()).filter(|&q| self.applies(q, p)) {
                let lower_is_better = matches!(
                    props[q].property,
                    Property::Calibration { .. } | Property::Rmse { .. }
                );
                let mut curve = Curve {
                    perturbation: entry.name.clone(),
                    perturbation_kind: entry.perturbation.kind().into(),
                    property: props[q].name.clone(),
                    severity: sev.clone(),
                    pass_rate: vec![],
                    metric_mean: vec![],
                    metric_worst: vec![],
                };
                let mut hint = None;
                for (k, reps) in grid.iter().enumerate() {
                    let o: Vec<Outcome> = reps.iter().filter_map(|r| r[q]).collect();
                    let n = o.len().max(1) as f64;
                    curve
                        .pass_rate
                        .push(o.iter().filter(|x| x.pass).count() as f64 / n);
                    curve
                        .metric_mean
                        .push(o.iter().map(|x| x.metric).sum::<f64>() / n);
                    let worst = o.iter().map(|x| x.metric).fold(
                        if lower_is_better {
                            f64::NEG_INFINITY
                        } else {
                            f64::INFINITY
                        },
                        |a, b| if lower_is_better { a.max(b) } else { a.min(b) },
                    );
                    curve.metric_worst.push(worst);
                    if hint.is_none() {
                        if let Some(r) = reps.iter().position(|r| r[q].is_some_and(|x| !x.pass)) {
                            hint = Some((self.replicate_seed(p, r), sev[k]));
                        }
                    }
                }
                curves.push(curve);
                bar.set_message(format!("search {}", props[q].name));
                if let Some(f) = self.search(p, q, hint)? {
                    let token = self.token(p, q, &f)?.encode();
                    let ev = self.evaluate(p, f.case.seed, f.case.severity)?;
                    failures[q].push(Failure {
                        perturbation: entry.name.clone(),
                        severity: f.case.severity,
                        seed: f.case.seed,
                        samples: f.case.samples.clone(),
                        metric: f.outcome.metric,
                        found_by: f.found_by.into(),
                        found_at_severity: f.found_at_severity,
                        digest: format!("{:016x}", Prepared::digest(&ev, &f.case.samples)),
                        replay: if self.scenario.model_override {
                            format!(
                                "beacons stress {} --model {} --replay {token}",
                                self.scenario.path.display(),
                                self.scenario.binding.model.display()
                            )
                        } else {
                            format!(
                                "beacons stress {} --replay {token}",
                                self.scenario.path.display()
                            )
                        },
                        token,
                    });
                }
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let properties: Vec<PropertyResult> = props
            .iter()
            .zip(failures)
            .zip(&baseline)
            .map(|((q, f), b)| PropertyResult {
                name: q.name.clone(),
                kind: q.property.kind().into(),
                passed: f.is_empty() && b.pass,
                failures: f,
            })
            .collect();
        Ok(StressResults {
            schema_version: SCHEMA_VERSION,
            scenario: self.scenario.name.clone(),
            scenario_file: self.scenario.path.display().to_string(),
            scenario_hash: format!("{:016x}", self.scenario.hash),
            model: self.scenario.binding.model.display().to_string(),
            binding: self.scenario.binding.path.display().to_string(),
            generator: self.scenario.generator.kind().into(),
            samples: self.cohort.len(),
            seed: self.scenario.seed,
            passed: properties.iter().all(|p| p.passed),
            baseline,
            properties,
            curves,
        })
    }

    /// Re-runs the failure a token describes.
    pub fn replay(&self, token: &Token) -> Result<ReplayResult> {
        if token.scenario_hash != self.scenario.hash {
            return Err(Error::Usage(format!(
                "{}: the replay token was made for another version of this scenario or its binding \
                 (token hash {:016x}, file hash {:016x}); run the scenario again for a fresh token",
                self.scenario.path.display(),
                token.scenario_hash,
                self.scenario.hash
            )));
        }
        let (p, q) = (token.perturbation, token.property);
        if p >= self.perturbations.len() || q >= self.scenario.properties.len() {
            return Err(Error::Usage(
                "the replay token names a perturbation or property this scenario does not have"
                    .into(),
            ));
        }
        let samples = token.samples.clone().unwrap_or_else(|| self.all());
        if samples.iter().any(|&i| i >= self.cohort.len()) {
            return Err(Error::Usage(
                "the replay token names samples beyond the cohort".into(),
            ));
        }
        let ev = self.evaluate(p, token.seed, token.severity)?;
        let outcome = self.judge(q, &ev, &samples);
        let digest = Prepared::digest(&ev, &samples);
        let details = samples
            .iter()
            .take(20)
            .map(|&i| SampleDetail {
                index: i,
                inputs: self.columns.iter().map(|&j| ev.x[[i, j]]).collect(),
                clean_outputs: self.clean.raw.row(i).to_vec(),
                perturbed_outputs: ev.raw.row(i).to_vec(),
            })
            .collect();
        Ok(ReplayResult {
            schema_version: SCHEMA_VERSION,
            scenario: self.scenario.name.clone(),
            perturbation: self.perturbations[p].name.clone(),
            property: self.scenario.properties[q].name.clone(),
            severity: token.severity,
            seed: token.seed,
            samples,
            metric: outcome.metric,
            fails: !outcome.pass,
            bit_for_bit: digest == token.digest,
            digest: format!("{digest:016x}"),
            expected_digest: format!("{:016x}", token.digest),
            details,
        })
    }

    /// The clean cohort's evaluation.
    pub fn clean(&self) -> &Evaluated {
        &self.clean
    }

    /// Rows of the clean network input (for benchmarks: the bound, normalised cohort).
    pub fn clean_input_rows(&self, rows: usize) -> Array2<f32> {
        self.clean.input.select(
            Axis(0),
            &(0..rows.min(self.cohort.len())).collect::<Vec<_>>(),
        )
    }
}
