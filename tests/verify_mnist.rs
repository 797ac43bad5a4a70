//! `beacons verify` on a fixed subset of VNN-COMP mnist_fc instances (784 inputs: no input
//! splitting; one CROWN bound, then ReLU splitting), both answers: the verdict must equal the
//! `expected` column of `mnist_fc/expected.csv`, and every counterexample must violate the
//! property under the exact evaluator and under `tract-onnx` running the ONNX file in `f32`.

mod common;

use std::path::Path;
use std::process::Command;

use beacons::verify::result_file;
use beacons::verify::Verdict;
use num_rational::BigRational;
use tract_onnx::prelude::*;

/// (network, property, expected): one proved by one bound, one only by ReLU splitting, and
/// violations on two networks.
const SUBSET: &[(&str, &str, &str)] = &[
    ("256x2", "prop_2_0.03", "holds"),
    ("256x2", "prop_6_0.05", "holds"),
    ("256x2", "prop_5_0.05", "violated"),
    ("256x2", "prop_7_0.03", "violated"),
    ("256x4", "prop_2_0.03", "violated"),
];

fn check_counterexample(model: &Path, property: &Path, x: &[f64]) {
    let spec = beacons::spec::load(property).expect("property");
    let mut g = beacons::ir::load_model(model).expect("model").graph;
    beacons::ir::passes::canonicalize(&mut g, beacons::ir::passes::Level::Exact);
    let exact = beacons::eval::exact::forward_f64_point(&g, x).expect("exact evaluation");
    let xq: Vec<BigRational> = x
        .iter()
        .map(|&v| BigRational::from_float(v).unwrap())
        .collect();
    let yq: Vec<BigRational> = exact.iter().map(|v| v.lo.clone()).collect();
    assert!(
        spec.evaluate_exact(&xq, &yq),
        "{}: the counterexample does not violate the property exactly",
        property.display()
    );
    let shape = g.value(g.inputs[0]).shape.clone();
    let plan = tract_onnx::onnx()
        .model_for_path(model)
        .and_then(|mut m| {
            m.set_input_fact(0, f32::fact(&shape).into())?;
            m.into_optimized()?.into_runnable()
        })
        .expect("tract");
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    assert!(
        xs.iter().zip(x).all(|(a, b)| f64::from(*a) == *b),
        "not an f32 point"
    );
    let t = Tensor::from_shape(&shape, &xs).expect("tensor");
    let out = plan.run(tvec![t.into()]).expect("tract run");
    let yt: Vec<f64> = out[0]
        .cast_to::<f32>()
        .expect("f32")
        .to_plain_array_view::<f32>()
        .expect("view")
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    assert!(
        spec.evaluate_f64(x, &yt),
        "{}: safe under tract: {yt:?}",
        property.display()
    );
}

#[test]
fn mnist_fc_subset_is_decided_correctly() {
    let Some(bench) = common::benchmarks("verify_mnist") else {
        return;
    };
    let dir = bench.join("mnist_fc");
    let expected = std::fs::read_to_string(dir.join("expected.csv")).expect("expected.csv");
    let tmp = tempfile::tempdir().expect("tempdir");
    for (net, prop, want) in SUBSET {
        let onnx = format!("onnx/mnist-net_{net}.onnx");
        let vnnlib = format!("vnnlib/{prop}.vnnlib");
        // The shared reference agrees with this list.
        assert!(
            expected.contains(&format!("{onnx},{vnnlib},{want},")),
            "{onnx},{vnnlib} is not `{want}` in expected.csv"
        );
        let rf = tmp.path().join(format!("{net}_{prop}.txt"));
        let out = Command::new(env!("CARGO_BIN_EXE_beacons"))
            .args(["verify", "--timeout", "60", "--result-file"])
            .arg(&rf)
            .arg(dir.join(&onnx))
            .arg(dir.join(&vnnlib))
            .output()
            .expect("run beacons");
        let parsed = result_file::parse(&std::fs::read_to_string(&rf).expect("result file"))
            .expect("parses");
        assert_eq!(
            parsed.verdict.name(),
            *want,
            "{onnx},{vnnlib}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        match parsed.verdict {
            Verdict::Holds => assert_eq!(out.status.code(), Some(0)),
            Verdict::Violated => {
                assert_eq!(out.status.code(), Some(1));
                check_counterexample(&dir.join(&onnx), &dir.join(&vnnlib), &parsed.inputs);
            }
            other => panic!("{onnx},{vnnlib}: {other:?}"),
        }
    }
}
