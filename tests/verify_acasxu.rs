//! `beacons verify` on a fixed subset of VNN-COMP ACAS Xu instances with both answers.
//!
//! Each instance runs through the binary with `--result-file`. The verdict must equal the
//! `resolved` column of `acasxu/expected.csv` (an unknown or timeout fails too), the exit code
//! must match it, and every counterexample in a result file must lie in the property's exact
//! input box and violate the property both under the exact rational evaluator and under
//! `tract-onnx` running the ONNX file in `f32`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use beacons::verify::result_file;
use beacons::verify::Verdict;
use num_rational::BigRational;
use tract_onnx::prelude::*;

/// (network, property): fast instances, both verdicts, several properties.
const SUBSET: &[(&str, &str)] = &[
    ("1_1", "prop_1"),
    ("1_5", "prop_1"),
    ("1_9", "prop_1"),
    ("1_1", "prop_2"),
    ("2_1", "prop_4"),
    ("3_1", "prop_3"),
    ("1_2", "prop_2"),
    ("1_7", "prop_3"),
    ("1_8", "prop_3"),
    ("1_7", "prop_4"),
    ("1_9", "prop_4"),
    ("2_1", "prop_2"),
    // Formerly timeouts, now decided in about a second (strong branching, batched CROWN).
    ("2_4", "prop_1"),
    ("3_2", "prop_2"),
    ("2_1", "prop_3"),
    ("4_5", "prop_10"),
    // Timeouts until strong branching stopped splitting inputs already far narrower than the
    // widest (1_1 prop_3) and compared splits over all disjuncts (3_3 prop_9): about 8 s each.
    ("1_1", "prop_3"),
    ("3_3", "prop_9"),
];

fn resolved(dir: &Path) -> HashMap<(String, String), String> {
    let text = std::fs::read_to_string(dir.join("expected.csv")).expect("expected.csv");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[0].to_string(), f[1].to_string()), f[3].to_string())
        })
        .collect()
}

/// The model's outputs at `x` under tract, in `f32`.
fn tract_outputs(model: &Path, x: &[f64]) -> Vec<f64> {
    let plan = tract_onnx::onnx()
        .model_for_path(model)
        .and_then(|mut m| {
            m.set_input_fact(0, f32::fact([1, 1, 1, 5]).into())?;
            m.into_optimized()?.into_runnable()
        })
        .unwrap_or_else(|e| panic!("tract cannot run {}: {e:?}", model.display()));
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    // The counterexample is an f32 point, so tract sees exactly the same input.
    assert!(
        xs.iter().zip(x).all(|(a, b)| f64::from(*a) == *b),
        "counterexample {x:?} is not an f32 point"
    );
    let t = Tensor::from_shape(&[1, 1, 1, 5], &xs).expect("tensor");
    let out = plan.run(tvec![t.into()]).expect("tract run");
    let o = out[0].cast_to::<f32>().expect("f32 output");
    let view = o.to_plain_array_view::<f32>().expect("array view");
    view.iter().map(|&v| f64::from(v)).collect()
}

fn check_counterexample(model: &Path, property: &Path, x: &[f64], y: &[f64]) {
    let spec = beacons::spec::load(property).expect("property");
    let mut g = beacons::ir::load_model(model).expect("model").graph;
    beacons::ir::passes::canonicalize(&mut g, beacons::ir::passes::Level::Exact);
    assert_eq!((x.len(), y.len()), (5, 5), "counterexample sizes");
    // Exact: the point is in the exact box and its exact outputs are unsafe.
    let exact = beacons::eval::exact::forward_f64_point(&g, x).expect("exact evaluation");
    assert!(exact.iter().all(|v| v.is_point()));
    let xq: Vec<BigRational> = x
        .iter()
        .map(|&v| BigRational::from_float(v).unwrap())
        .collect();
    let yq: Vec<BigRational> = exact.iter().map(|v| v.lo.clone()).collect();
    assert!(
        spec.evaluate_exact(&xq, &yq),
        "{}: counterexample {x:?} does not violate the property exactly",
        property.display()
    );
    // The printed outputs are the exact outputs (to f64 precision).
    for (e, p) in exact.iter().zip(y) {
        assert!(
            e.max_distance_f64(*p) <= 1e-9 * (1.0 + p.abs()),
            "Y {p} vs exact"
        );
    }
    // tract, in f32.
    let yt = tract_outputs(model, x);
    assert!(
        spec.evaluate_f64(x, &yt),
        "{}: counterexample {x:?} gives {yt:?} under tract, which is safe",
        property.display()
    );
}

#[test]
fn acasxu_subset_is_decided_correctly() {
    let Some(bench) = common::benchmarks("verify_acasxu") else {
        return;
    };
    let dir = bench.join("acasxu");
    let answers = resolved(&dir);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut seen = HashMap::new();
    for (net, prop) in SUBSET {
        let onnx = format!("onnx/ACASXU_run2a_{net}_batch_2000.onnx");
        let vnnlib = format!("vnnlib/{prop}.vnnlib");
        let want = answers
            .get(&(onnx.clone(), vnnlib.clone()))
            .unwrap_or_else(|| panic!("{onnx},{vnnlib} is not in expected.csv"));
        let rf = tmp.path().join(format!("{net}_{prop}.txt"));
        let out = Command::new(env!("CARGO_BIN_EXE_beacons"))
            .args(["verify", "--timeout", "60", "--result-file"])
            .arg(&rf)
            .arg(dir.join(&onnx))
            .arg(dir.join(&vnnlib))
            .output()
            .expect("run beacons");
        let text = std::fs::read_to_string(&rf).expect("result file");
        let parsed = result_file::parse(&text).expect("result file parses");
        let got = parsed.verdict.name();
        eprintln!(
            "{net} {prop}: {got} (expected {want}): {}",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
        );
        assert_eq!(got, want, "{onnx},{vnnlib}");
        let code = out.status.code();
        match parsed.verdict {
            Verdict::Holds => assert_eq!(code, Some(0)),
            Verdict::Violated => {
                assert_eq!(code, Some(1));
                check_counterexample(
                    &dir.join(&onnx),
                    &dir.join(&vnnlib),
                    &parsed.inputs,
                    &parsed.outputs,
                );
            }
            other => panic!("{onnx},{vnnlib}: {other:?}"),
        }
        *seen.entry(got.to_string()).or_insert(0) += 1;
    }
    assert!(seen.get("holds").copied().unwrap_or(0) >= 4, "{seen:?}");
    assert!(seen.get("violated").copied().unwrap_or(0) >= 4, "{seen:?}");
}
