//! End-to-end tests of the stress runner: a deliberately flawed vitals model is caught and
//! its failure shrunk to within 10% of the true threshold severity; a sound model passes the
//! same scenario; replay tokens reproduce failures bit for bit; runs are deterministic.

use std::path::{Path, PathBuf};

use beacons::ir::{Graph, Op};
use beacons::stress::replay::Token;
use beacons::stress::runner::Prepared;
use beacons::stress::scenario::Scenario;
use ndarray::{array, Array1, Array2};

/// Creatinine (mg/dL) above which the flawed model's answer flips to "deteriorating".
const FLAW_AT: f64 = 6.0;
/// The creatinine offset at severity 1 (a miscalibrated analyser).
const SHIFT: f64 = 8.0;

const BINDING: &str = r#"
model = "unused.onnx"
[[features]]
name = "lactate"
unit = "mmol/L"
range = [0.3, 20.0]
[[features]]
name = "heart_rate"
unit = "beats/min"
range = [25.0, 250.0]
[[features]]
name = "creatinine"
unit = "mg/dL"
range = [0.2, 15.0]
[output]
kind = "classification"
classes = ["stable", "deteriorating"]
"#;

const SCENARIO: &str = r#"
binding = "vitals_model.toml"
samples = 600
seed = 11

[generator]
kind = "vitals"

[search]
cases = 48

[[perturbations]]
name = "creatinine_offset"
kind = "intensity_shift"
features = ["creatinine"]
shift = 8.0
severity = [0.0, 1.0]

[[perturbations]]
name = "creatinine_in_umol"
kind = "unit_mistake"
feature = "creatinine"
reported_unit = "umol/L"
severity = [0.0, 0.5]

[[properties]]
name = "same_answer"
kind = "invariance"

[[properties]]
kind = "finite"
"#;

/// The linear score both models share: logit of "deteriorating" before any flaw.
fn base_logit(lactate: f64, hr: f64) -> f64 {
    0.8 * lactate + 0.03 * hr - 5.0
}

/// `logit1 = relu(b) − relu(−b) + flaw·relu(creatinine − FLAW_AT)`, `logit0 = 0`.
fn model(flaw: f64) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", vec![3]);
    let w1: Array2<f64> = array![[0.8, 0.03, 0.0], [-0.8, -0.03, 0.0], [0.0, 0.0, 1.0]];
    let b1: Array1<f64> = array![-5.0, 5.0, -FLAW_AT];
    let h = g
        .add_node(
            "hidden",
            Op::Linear {
                weight: w1,
                bias: Some(b1),
            },
            vec![x],
            "h",
        )
        .unwrap();
    let r = g.add_node("relu", Op::Relu, vec![h], "r").unwrap();
    let w2: Array2<f64> = array![[0.0, 0.0, 0.0], [1.0, -1.0, flaw]];
    let y = g
        .add_node(
            "logits",
            Op::Linear {
                weight: w2,
                bias: None,
            },
            vec![r],
            "y",
        )
        .unwrap();
    g.add_output(y);
    g
}

fn write_files(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("vitals_model.toml"), BINDING).unwrap();
    let path = dir.join("vitals_flaw.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    path
}

fn prepared(dir: &Path, flaw: f64) -> Prepared {
    let scenario = Scenario::load(&write_files(dir)).unwrap();
    Prepared::with_graph(scenario, model(flaw)).unwrap()
}

/// The true threshold severity of the offset: the smallest shift that flips a sample the
/// flawed model calls stable on the clean cohort.
fn true_threshold(p: &Prepared, flaw: f64) -> f64 {
    let names = &p.cohort.feature_names;
    let col = |n: &str| names.iter().position(|f| f == n).unwrap();
    let (l, h, c) = (col("lactate"), col("heart_rate"), col("creatinine"));
    let mut best = f64::INFINITY;
    for r in p.cohort.x.rows() {
        let b = base_logit(r[l], r[h]);
        let clean = b + flaw * (r[c] - FLAW_AT).max(0.0);
        if clean > 0.0 {
            continue;
        }
        // Flips when flaw·(c + d − FLAW_AT) > −b.
        let d = FLAW_AT - b / flaw - r[c];
        best = best.min(d / SHIFT);
    }
    best
}

#[test]
fn flawed_model_is_caught_near_the_true_threshold_and_sound_model_passes() {
    let dir = tempfile::tempdir().unwrap();
    let flawed = prepared(dir.path(), 1000.0);
    let truth = true_threshold(&flawed, 1000.0);
    assert!(truth > 0.05 && truth < 0.95, "true threshold {truth}");
    let results = flawed.run(false).unwrap();
    assert!(!results.passed);
    let inv = &results.properties[0];
    assert_eq!(inv.name, "same_answer");
    assert!(!inv.passed);
    let offset = inv
        .failures
        .iter()
        .find(|f| f.perturbation == "creatinine_offset")
        .expect("the offset failure");
    let rel = (offset.severity - truth).abs() / truth;
    eprintln!(
        "true threshold {truth:.6}, shrunk severity {:.6} (relative error {rel:.2e}), samples {:?}, found at {:.4}",
        offset.severity, offset.samples, offset.found_at_severity
    );
    assert!(rel < 0.10, "shrunk {} vs true {truth}", offset.severity);
    assert_eq!(offset.samples.len(), 1, "shrunk to one sample");
    // The unit mistake (×88.4) is caught too, and shrunk to one sample.
    let unit = inv
        .failures
        .iter()
        .find(|f| f.perturbation == "creatinine_in_umol")
        .expect("the unit-mistake failure");
    assert_eq!(unit.samples.len(), 1);
    assert!(unit.severity < 0.05, "{}", unit.severity);
    // The curve shows the collapse: full pass rate at severity 0, none at 1.
    let curve = results
        .curves
        .iter()
        .find(|c| c.perturbation == "creatinine_offset" && c.property == "same_answer")
        .unwrap();
    assert_eq!(curve.pass_rate[0], 1.0);
    assert_eq!(*curve.pass_rate.last().unwrap(), 0.0);
    assert!(results.properties[1].passed, "outputs stay finite");

    let sound = prepared(dir.path(), 0.0);
    let results = sound.run(false).unwrap();
    assert!(results.passed, "{:#?}", results.properties);
    assert!(results
        .curves
        .iter()
        .all(|c| c.pass_rate.iter().all(|&r| r == 1.0)));
}

#[test]
fn replay_tokens_reproduce_failures_bit_for_bit_and_runs_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let a = prepared(dir.path(), 1000.0).run(false).unwrap();
    // A second run from scratch gives the same results, byte for byte.
    let b = prepared(dir.path(), 1000.0).run(false).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let fresh = prepared(dir.path(), 1000.0);
    let mut replayed = 0;
    for f in a.properties.iter().flat_map(|p| &p.failures) {
        let token = Token::decode(&f.token).unwrap();
        let r = fresh.replay(&token).unwrap();
        assert!(r.fails, "{}: replay passes", f.perturbation);
        assert!(r.bit_for_bit, "{} vs {}", r.digest, r.expected_digest);
        assert_eq!(r.digest, f.digest);
        assert_eq!(r.severity.to_bits(), f.severity.to_bits());
        assert_eq!(r.samples, f.samples);
        replayed += 1;
    }
    assert!(replayed >= 2);
    // The sound model no longer fails on the flawed model's failure, and says the network
    // outputs differ from the recorded ones.
    let sound = prepared(dir.path(), 0.0);
    let token = Token::decode(&a.properties[0].failures[0].token).unwrap();
    let r = sound.replay(&token).unwrap();
    assert!(!r.fails && !r.bit_for_bit);
    // A token of another scenario is refused.
    let other = Token {
        scenario_hash: token.scenario_hash ^ 1,
        ..token
    };
    assert!(sound.replay(&other).is_err());
}
