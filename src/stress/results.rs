//! The stress tester's results: a versioned, deterministic serde schema (no timestamps), read
//! later by reports. `beacons stress --json` prints it; `--out FILE` writes it.

use serde::{Deserialize, Serialize};

/// Version of the [`StressResults`] schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run of a scenario found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StressResults {
    pub schema_version: u32,
    pub scenario: String,
    pub scenario_file: String,
    /// FNV-1a of the scenario and binding texts, hex (replay tokens carry it).
    pub scenario_hash: String,
    pub model: String,
    pub binding: String,
    pub generator: String,
    pub samples: usize,
    pub seed: u64,
    /// Whether every property held.
    pub passed: bool,
    /// Each property on the clean cohort.
    pub baseline: Vec<Baseline>,
    /// Per property: whether it held, and its failures.
    pub properties: Vec<PropertyResult>,
    /// Pass rate versus severity, per (perturbation, property) pair.
    pub curves: Vec<Curve>,
}

/// A property on the unperturbed cohort.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub property: String,
    pub metric: f64,
    pub pass: bool,
}

/// One property's verdict over all its perturbations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyResult {
    pub name: String,
    pub kind: String,
    pub passed: bool,
    /// One shrunk failure per perturbation under which the property fails.
    pub failures: Vec<Failure>,
}

/// A shrunk failure and how to replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub perturbation: String,
    /// The smallest failing severity found (proptest shrinking, full cohort first).
    pub severity: f64,
    /// The perturbation seed of the failure.
    pub seed: u64,
    /// The smallest failing set of samples (cohort indices); the whole cohort for aggregate
    /// properties.
    pub samples: Vec<usize>,
    /// The property's metric on those samples at that severity.
    pub metric: f64,
    /// How the failure was first found: "search" (proptest) or "sweep".
    pub found_by: String,
    /// The severity of the first failing case before shrinking.
    pub found_at_severity: f64,
    /// Hex digest of the network's inputs and outputs on the failing samples.
    pub digest: String,
    pub token: String,
    /// `beacons stress SCENARIO --replay TOKEN`.
    pub replay: String,
}

/// Pass rate and metric of one property versus the severity of one perturbation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub perturbation: String,
    pub perturbation_kind: String,
    pub property: String,
    pub severity: Vec<f64>,
    /// Share of replicate seeds on which the property held on the whole cohort.
    pub pass_rate: Vec<f64>,
    /// Mean metric over the replicates.
    pub metric_mean: Vec<f64>,
    /// Worst metric over the replicates (minimum for "at least" metrics, maximum for ECE/RMSE).
    pub metric_worst: Vec<f64>,
}

/// What `--replay` found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayResult {
    pub schema_version: u32,
    pub scenario: String,
    pub perturbation: String,
    pub property: String,
    pub severity: f64,
    pub seed: u64,
    pub samples: Vec<usize>,
    pub metric: f64,
    /// Whether the property still fails on those samples.
    pub fails: bool,
    /// Whether the network's inputs and outputs equal, bit for bit, those of the token.
    pub bit_for_bit: bool,
    pub digest: String,
    pub expected_digest: String,
    /// Per failing sample: its cohort index, the bound inputs after perturbation (physical
    /// units), and the network's raw outputs clean and perturbed.
    pub details: Vec<SampleDetail>,
}

/// One sample of a replayed failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleDetail {
    pub index: usize,
    pub inputs: Vec<f64>,
    pub clean_outputs: Vec<f32>,
    pub perturbed_outputs: Vec<f32>,
}
