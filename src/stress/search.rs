//! Search and shrinking with `proptest`: the strategy over (severity, perturbation seed,
//! cohort members) and the value tree that shrinks a failing case to the smallest failing
//! severity and then to the smallest failing set of samples.
//!
//! The tree shrinks in two phases. Severity: bisection between the lowest severity of the
//! perturbation's range (tried first) and the failing one, down to `1e-4` of the range
//! (perturbations are coupled across severities for a fixed seed, so failure is close to
//! monotone in severity). Samples: delta debugging — remove halves, then quarters, ... of the
//! kept samples while the property still fails. The seed never shrinks: it names the noise
//! realisation that fails. `simplify`/`complicate` follow proptest's protocol: `simplify`
//! after a failure, `complicate` after a pass (which here restores the last failing value).

use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One candidate failure.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub severity: f64,
    pub seed: u64,
    /// Cohort indices, sorted.
    pub samples: Vec<usize>,
}

/// Random cases: severity uniform in `[lo, hi]`, any seed, and (when `subsets`) the whole
/// cohort half of the time, otherwise a random subset keeping each sample with a probability
/// drawn in [0.3, 1].
#[derive(Clone, Debug)]
pub struct CaseStrategy {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    pub subsets: bool,
}

impl Strategy for CaseStrategy {
    type Tree = CaseTree;
    type Value = Case;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let u = (0.0..=1.0f64).new_tree(runner)?.current();
        let seed = proptest::num::u64::ANY.new_tree(runner)?.current();
        let pick = proptest::num::u64::ANY.new_tree(runner)?.current();
        let severity = self.lo + u * (self.hi - self.lo);
        let mut rng = StdRng::seed_from_u64(pick);
        let samples: Vec<usize> = if !self.subsets || rng.random::<bool>() {
            (0..self.n).collect()
        } else {
            let keep: f64 = rng.random_range(0.3..=1.0);
            let s: Vec<usize> = (0..self.n).filter(|_| rng.random::<f64>() < keep).collect();
            if s.is_empty() {
                vec![rng.random_range(0..self.n.max(1))]
            } else {
                s
            }
        };
        Ok(CaseTree::new(
            Case {
                severity,
                seed,
                samples,
            },
            self.lo,
            self.hi,
            true,
            self.subsets,
        ))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Severity,
    Samples,
    Done,
}

/// The shrinking state of one case (see the module docs).
#[derive(Clone, Debug)]
pub struct CaseTree {
    current: Case,
    phase: Phase,
    shrink_samples: bool,
    /// Severity bisection: `lo` passes (or is the floor, untried), `hi` fails.
    lo: f64,
    hi: f64,
    floor_tried: bool,
    eps: f64,
    /// Sample removal: chunk size and position in the kept list, and the last removal.
    chunk: usize,
    pos: usize,
    removed: Option<(usize, Vec<usize>)>,
}

impl CaseTree {
    /// A tree starting at the failing `case`, severity floor `lo`; `shrink_severity` and
    /// `shrink_samples` switch the phases on.
    pub fn new(case: Case, lo: f64, hi: f64, shrink_severity: bool, shrink_samples: bool) -> Self {
        let chunk = (case.samples.len() / 2).max(1);
        CaseTree {
            lo,
            hi: case.severity,
            floor_tried: false,
            eps: ((hi - lo) * 1e-4).max(1e-12),
            phase: if shrink_severity {
                Phase::Severity
            } else if shrink_samples {
                Phase::Samples
            } else {
                Phase::Done
            },
            shrink_samples,
            chunk,
            pos: 0,
            removed: None,
            current: case,
        }
    }

    fn next_phase(&mut self) {
        self.current.severity = self.hi;
        self.phase = if self.shrink_samples && self.phase == Phase::Severity {
            Phase::Samples
        } else {
            Phase::Done
        };
    }

    fn simplify_severity(&mut self) -> bool {
        self.hi = self.current.severity;
        if !self.floor_tried {
            self.floor_tried = true;
            if self.hi > self.lo {
                self.current.severity = self.lo;
                return true;
            }
        }
        if self.hi - self.lo <= self.eps {
            return false;
        }
        self.current.severity = 0.5 * (self.lo + self.hi);
        true
    }

    fn simplify_samples(&mut self) -> bool {
        // The last removal failed too: keep it.
        self.removed = None;
        loop {
            let len = self.current.samples.len();
            if len <= 1 {
                return false;
            }
            if self.pos >= len {
                if self.chunk == 1 {
                    return false;
                }
                self.chunk = (self.chunk / 2).max(1);
                self.pos = 0;
                continue;
            }
            let end = (self.pos + self.chunk).min(len);
            if end - self.pos == len {
                self.chunk = (len / 2).max(1);
                continue;
            }
            let gone: Vec<usize> = self.current.samples.drain(self.pos..end).collect();
            self.removed = Some((self.pos, gone));
            return true;
        }
    }
}

impl ValueTree for CaseTree {
    type Value = Case;

    fn current(&self) -> Case {
        self.current.clone()
    }

    fn simplify(&mut self) -> bool {
        if self.phase == Phase::Severity {
            if self.simplify_severity() {
                return true;
            }
            self.next_phase();
        }
        if self.phase == Phase::Samples {
            if self.simplify_samples() {
                return true;
            }
            self.phase = Phase::Done;
        }
        false
    }

    fn complicate(&mut self) -> bool {
        match self.phase {
            Phase::Severity => {
                // The tried severity passed.
                self.lo = self.current.severity;
                if self.hi - self.lo <= self.eps {
                    // Back to the last failing severity; the next simplify moves on.
                    self.next_phase();
                    if self.phase == Phase::Samples {
                        // Stay in the sample phase without a pending removal.
                        self.removed = None;
                    }
                    return true;
                }
                self.current.severity = 0.5 * (self.lo + self.hi);
                true
            }
            Phase::Samples => match self.removed.take() {
                Some((pos, gone)) => {
                    let k = gone.len();
                    let tail = self.current.samples.split_off(pos);
                    self.current.samples.extend(gone);
                    self.current.samples.extend(tail);
                    self.pos = pos + k;
                    true
                }
                None => false,
            },
            Phase::Done => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::{Config, TestCaseError, TestError};

    /// A property failing when severity > 0.37 and sample 11 or 40 is present.
    fn fails(c: &Case) -> bool {
        c.severity > 0.37 && (c.samples.contains(&11) || c.samples.contains(&40))
    }

    #[test]
    fn shrinks_to_threshold_and_one_sample() {
        let config = Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(
            config,
            proptest::test_runner::TestRng::deterministic_rng(
                proptest::test_runner::RngAlgorithm::ChaCha,
            ),
        );
        let s = CaseStrategy {
            lo: 0.1,
            hi: 0.9,
            n: 100,
            subsets: true,
        };
        let r = runner.run(&s, |c| {
            if fails(&c) {
                Err(TestCaseError::fail("x"))
            } else {
                Ok(())
            }
        });
        let Err(TestError::Fail(_, c)) = r else {
            panic!("{r:?}")
        };
        assert!((c.severity - 0.37).abs() < 1e-3, "{c:?}");
        assert_eq!(c.samples.len(), 1);
        assert!(fails(&c));
    }
}
