//! End-to-end tests of the NNet importer.
//!
//! (a) Malformed text never panics: truncations and random byte mutations of a valid NNet
//!     file give a model or a located error. (b) The acceptance test: an NNet file written
//!     from the ONNX ACAS Xu network 1_1 with the published normalisation constants computes
//!     the same function as the ONNX network wrapped in that normalisation, on 1,000 random
//!     inputs of the ACAS Xu domain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use beacons::error::Error;
use beacons::eval::{exact, forward_f64};
use beacons::ir::{nnet, Graph, Op};
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SMALL: &str = "// a tiny network\n// second comment\n2,2,1,3,\n2,3,1,\n0,\n-1.0,-2.0,\n1.0,2.0,\n0.5,0.0,1.5,\n2.0,4.0,10.0,\n1.0,-1.0,\n0.5,0.25,\n-2.0,1.0,\n0.0,\n0.5,\n-1.0,\n1.0,1.0,-1.0,\n0.25,\n";

/// Parses and checks the outcome is a model or an error that says where.
fn parse_is_located(text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count() + 1;
    match nnet::parse(text, Path::new("mutated.nnet")) {
        Ok(m) => prop_assert!(m.graph.validate().is_ok()),
        Err(Error::Parse {
            location, message, ..
        }) => {
            prop_assert!(
                location.line >= 1 && location.line <= lines,
                "{location} of {lines}"
            );
            prop_assert!(location.column >= 1);
            prop_assert!(
                message.contains("expected")
                    || message.contains("must")
                    || message.contains("unexpected")
                    || message.contains("range")
                    || message.contains("too large"),
                "{message}"
            );
        }
        Err(Error::Model { context, .. }) => prop_assert!(!context.is_empty()),
        Err(e) => prop_assert!(false, "unexpected error kind: {e}"),
    }
    Ok(())
}

#[test]
fn small_file_loads_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.nnet");
    std::fs::write(&path, SMALL).unwrap();
    let m = nnet::load(&path).unwrap();
    assert_eq!(m.format, "nnet");
    assert!(m.graph.validate().is_ok());
    let err = nnet::load(&dir.path().join("missing.nnet")).unwrap_err();
    assert!(err.to_string().contains("missing.nnet"), "{err}");
    assert!(beacons::ir::load_model(&path).is_ok());
}

proptest! {
    // No regression files: this integration test has no lib.rs beside it to anchor them.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn truncations_never_panic(cut in 0usize..SMALL.len()) {
        parse_is_located(&SMALL[..cut])?;
    }

    #[test]
    fn byte_mutations_never_panic(
        edits in proptest::collection::vec(
            (0usize..SMALL.len(), prop_oneof![
                Just(b','), Just(b'\n'), Just(b'-'), Just(b'.'), Just(b'e'), Just(b' '),
                Just(b'/'), Just(b'N'), b'0'..=b'9', any::<u8>()
            ], any::<bool>()),
            1..6,
        )
    ) {
        let mut bytes = SMALL.as_bytes().to_vec();
        for (at, b, insert) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            if insert { bytes.insert(at, b) } else { bytes[at] = b }
        }
        parse_is_located(&String::from_utf8_lossy(&bytes))?;
    }
}

// The published ACAS Xu normalisation constants.
const MEANS: [f64; 6] = [19791.091, 0.0, 0.0, 650.0, 600.0, 7.5188840201005975];
#[allow(clippy::approx_constant)] // the published decimals, not a stand-in for TAU
const RANGES: [f64; 6] = [
    60261.0,
    6.28318530718,
    6.28318530718,
    1100.0,
    1200.0,
    373.94992,
];
#[allow(clippy::approx_constant)] // the published decimals, not a stand-in for PI
const MINS: [f64; 5] = [0.0, -3.141593, -3.141593, 100.0, 0.0];
#[allow(clippy::approx_constant)]
const MAXES: [f64; 5] = [60760.0, 3.141593, 3.141593, 1200.0, 1200.0];

fn benchmarks() -> PathBuf {
    match std::env::var_os("BEACONS_BENCHMARKS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks"),
    }
}

/// The affine layers of an imported MLP: each Linear (a following AddConst is its bias),
/// separated by Relu; Reshapes are shape plumbing and an all-zero input shift is skipped.
fn affine_layers(g: &Graph) -> Vec<(Array2<f64>, Array1<f64>)> {
    let mut layers: Vec<(Array2<f64>, Array1<f64>)> = Vec::new();
    let mut relus = 0;
    for n in &g.nodes {
        match &n.op {
            Op::Linear { weight, bias } => {
                let b = bias
                    .clone()
                    .unwrap_or_else(|| Array1::zeros(weight.nrows()));
                layers.push((weight.clone(), b));
            }
            // The MATLAB export subtracts a zero "mean" from the input: an identity.
            Op::AddConst(c) if layers.is_empty() => {
                assert!(
                    c.iter().all(|&v| v == 0.0),
                    "non-zero input shift in `{}`",
                    n.name
                )
            }
            Op::AddConst(c) => {
                let last = layers.last_mut().expect("a Linear before");
                assert_eq!(c.len(), last.1.len(), "bias of node `{}`", n.name);
                last.1 += &Array1::from_iter(c.iter().copied());
            }
            Op::Relu => relus += 1,
            Op::Reshape { .. } => {}
            other => panic!("unexpected {} in the ACAS Xu network", other.kind()),
        }
    }
    assert_eq!(relus + 1, layers.len());
    layers
}

/// NNet text for the given layers, every number printed so that it parses back exactly.
fn nnet_text(layers: &[(Array2<f64>, Array1<f64>)]) -> String {
    let mut sizes = vec![layers[0].0.ncols()];
    sizes.extend(layers.iter().map(|(w, _)| w.nrows()));
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:?},")).collect::<String>();
    let mut s = String::from("// ACAS Xu 1_1, written from the ONNX file by tests/nnet.rs\n");
    let max = sizes.iter().max().copied().unwrap_or(0);
    writeln!(
        s,
        "{},{},{},{max},",
        layers.len(),
        sizes[0],
        sizes[layers.len()]
    )
    .unwrap();
    writeln!(
        s,
        "{}",
        sizes.iter().map(|n| format!("{n},")).collect::<String>()
    )
    .unwrap();
    writeln!(s, "0,").unwrap();
    for v in [&MINS[..], &MAXES[..], &MEANS[..], &RANGES[..]] {
        writeln!(s, "{}", list(v)).unwrap();
    }
    for (w, b) in layers {
        for row in w.rows() {
            // Debug of an f64 is its shortest exact round-trip form; the weights are f32
            // values, so this reproduces them exactly (f32 Debug would not, read as f64).
            writeln!(s, "{}", list(&row.to_vec())).unwrap();
        }
        for v in b {
            writeln!(s, "{v:?},").unwrap();
        }
    }
    s
}

#[test]
fn nnet_and_onnx_versions_of_acas_xu_1_1_agree_on_1000_random_inputs() {
    let onnx_path = benchmarks().join("acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx");
    if !onnx_path.exists() {
        eprintln!(
            "SKIPPED: ACAS Xu acceptance test: {} not found (set BEACONS_BENCHMARKS)",
            onnx_path.display()
        );
        return;
    }
    let onnx = beacons::ir::onnx::load(&onnx_path).unwrap_or_else(|e| panic!("ONNX import: {e}"));
    let layers = affine_layers(&onnx.graph);
    assert_eq!(
        layers.len(),
        7,
        "ACAS Xu has 6 hidden layers and an output layer"
    );
    assert_eq!(onnx.graph.input_size(), 5);
    assert_eq!(onnx.graph.output_size(), 5);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ACASXU_run2a_1_1.nnet");
    std::fs::write(&path, nnet_text(&layers)).unwrap();
    let model = nnet::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let g = &model.graph;
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds.len(), 2 + 7 + 6 + 2, "{kinds:?}");
    assert_eq!(&kinds[..2], ["AddConst", "DivConst"]);
    assert_eq!(&kinds[kinds.len() - 2..], ["MulConst", "AddConst"]);
    assert!(
        model.notes.iter().any(|n| n.contains("x0 in [0, 60760]")),
        "{:?}",
        model.notes
    );

    let mut rng = StdRng::seed_from_u64(0xACA5);
    let raw = Array2::from_shape_fn((1000, 5), |(_, j)| rng.random_range(MINS[j]..=MAXES[j]));
    let normalised =
        Array2::from_shape_fn((1000, 5), |(i, j)| (raw[(i, j)] - MEANS[j]) / RANGES[j]);
    let y_nnet = forward_f64(g, raw.view()).unwrap();
    let y_onnx = forward_f64(&onnx.graph, normalised.view())
        .unwrap()
        .mapv(|y| y * RANGES[5] + MEANS[5]);
    assert_eq!(y_nnet.dim(), (1000, 5));
    let mut worst = 0.0f64;
    for (a, b) in y_nnet.iter().zip(y_onnx.iter()) {
        let rel = (a - b).abs() / (1.0 + b.abs());
        worst = worst.max(rel);
        assert!(rel <= 1e-9, "NNet {a} vs ONNX {b}");
    }
    eprintln!("ACAS Xu 1_1: NNet vs ONNX worst relative difference {worst:e} over 1000 inputs");
    // Outputs must actually vary: the comparison is not between two constants.
    let spread = y_nnet.column(0).fold(f64::NEG_INFINITY, |m, &v| m.max(v))
        - y_nnet.column(0).fold(f64::INFINITY, |m, &v| m.min(v));
    assert!(spread > 1e-6, "output 0 is constant over the samples");

    // The exact evaluator agrees with f64 on the NNet graph (all operators exact).
    for i in 0..3 {
        let ex = exact::forward_f64_point(g, &raw.row(i).to_vec()).unwrap();
        for (iv, &v) in ex.iter().zip(y_nnet.row(i)) {
            assert!(iv.is_point());
            assert!(
                iv.max_distance_f64(v) <= 1e-9 * (1.0 + v.abs()),
                "{v} vs {iv:?}"
            );
        }
    }
}
