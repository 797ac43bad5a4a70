//! End-to-end tests of the `beacons` binary: what a user sees (insta snapshots) and the exit
//! codes, for `inspect` and `eval` on the shipped example and on broken inputs.

mod common;

use std::process::Command;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn beacons() -> Command {
    let mut c = Command::new(get_cargo_bin("beacons"));
    c.current_dir(common::root());
    c
}

fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn inspect_example_with_spec() {
    assert_cmd_snapshot!(beacons().args([
        "inspect",
        "models/dose_response.onnx",
        "--spec",
        "specs/dose_response_range.vnnlib"
    ]));
}

#[test]
fn inspect_example_json() {
    assert_cmd_snapshot!(beacons().args(["inspect", "models/dose_response.onnx", "--json"]));
}

#[test]
fn eval_example_json() {
    assert_cmd_snapshot!(beacons().args([
        "eval",
        "models/dose_response.onnx",
        "--input",
        "models/dose_response_inputs.json",
        "--json"
    ]));
}

#[test]
fn eval_example_text_f32() {
    assert_cmd_snapshot!(beacons().args([
        "eval",
        "models/dose_response.onnx",
        "--input",
        "models/dose_response_inputs.json",
        "--precision",
        "f32"
    ]));
}

#[test]
fn eval_outputs_are_plausible_effects() {
    // The example model approximates an Emax effect in percent: a large early dose is near
    // the top of the curve, a small late one near the bottom.
    let out = beacons()
        .args([
            "eval",
            "models/dose_response.onnx",
            "--input",
            "models/dose_response_inputs.json",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 4);
    let effect = |i: usize| outs[i][0].as_f64().unwrap();
    // Closed form: C = dose/20*exp(-0.1 t), E = 100 C^1.5/(4^1.5 + C^1.5).
    let truth = |dose: f64, t: f64| {
        let c = dose / 20.0 * (-0.1 * t).exp();
        100.0 * c.powf(1.5) / (4f64.powf(1.5) + c.powf(1.5))
    };
    for (i, (d, t)) in [(50.0, 0.0), (100.0, 6.0), (200.0, 24.0), (150.0, 12.0)]
        .into_iter()
        .enumerate()
    {
        assert!(
            (effect(i) - truth(d, t)).abs() < 1.0,
            "sample {i}: {} vs {}",
            effect(i),
            truth(d, t)
        );
    }
}

#[test]
fn input_errors_exit_2_with_location() {
    let (dir, _) = write_temp("in.json", "{\"inputs\": [[1.0, 2.0],\n  [3.0,]]}");
    let model = common::root().join("models/dose_response.onnx");
    let mut cmd = beacons();
    cmd.current_dir(dir.path())
        .arg("eval")
        .arg(&model)
        .args(["--input", "in.json"]);
    assert_cmd_snapshot!(cmd);
}

#[test]
fn wrong_sample_width_exits_2() {
    let (_d, p) = write_temp("in.json", "{\"inputs\": [[1.0, 2.0, 3.0]]}");
    let out = beacons()
        .args(["eval", "models/dose_response.onnx", "--input"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sample 0 has 3 values, the model takes 2"),
        "{err}"
    );
}

#[test]
fn missing_model_exits_2() {
    let out = beacons()
        .args(["inspect", "models/no_such_model.onnx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_model.onnx"));
}

#[test]
fn unknown_format_exits_2() {
    let (_d, p) = write_temp("model.txt", "hello");
    let out = beacons().arg("inspect").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a `.onnx` or `.nnet` file"));
}

#[test]
fn spec_that_does_not_fit_exits_2() {
    let (_d, p) = write_temp(
        "p.vnnlib",
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= Y_0 0))\n",
    );
    let out = beacons()
        .args(["inspect", "models/dose_response.onnx", "--spec"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("declares 1 inputs and 1 outputs, but the model has 2 input"),
        "{err}"
    );
}

#[test]
fn usage_error_exits_2() {
    let out = beacons()
        .args(["eval", "models/dose_response.onnx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input"));
}

#[test]
fn bounds_example_text() {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\(\d+\.\d+ s\)", "([SECONDS] s)");
    settings.bind(|| {
        assert_cmd_snapshot!(beacons().args([
            "bounds",
            "models/dose_response.onnx",
            "specs/dose_response_range.vnnlib",
            "--method",
            "crown"
        ]));
    });
}

#[test]
fn bounds_json_contains_sampled_outputs_and_orders_methods() {
    let run = |method: &str| -> serde_json::Value {
        let out = beacons()
            .args([
                "bounds",
                "models/dose_response.onnx",
                "specs/dose_response_range.vnnlib",
                "--json",
                "--method",
                method,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (ibp, crown, alpha) = (run("ibp"), run("crown"), run("alpha-crown"));
    let lo = |v: &serde_json::Value| v["outputs"]["lower"][0].as_f64().unwrap();
    let hi = |v: &serde_json::Value| v["outputs"]["upper"][0].as_f64().unwrap();
    assert_eq!(crown["method"], "crown");
    assert!(lo(&ibp) <= lo(&crown) && lo(&crown) <= lo(&alpha));
    assert!(hi(&ibp) >= hi(&crown) && hi(&crown) >= hi(&alpha));
    // Every output the example input file produces lies inside the bounds of every method.
    let out = beacons()
        .args([
            "eval",
            "models/dose_response.onnx",
            "--input",
            "models/dose_response_inputs.json",
            "--json",
        ])
        .output()
        .unwrap();
    let y: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in y["outputs"].as_array().unwrap() {
        let v = row[0].as_f64().unwrap();
        for b in [&ibp, &crown, &alpha] {
            assert!(
                lo(b) <= v && v <= hi(b),
                "{v} outside [{}, {}]",
                lo(b),
                hi(b)
            );
        }
    }
    assert_eq!(crown["margins"].as_array().unwrap().len(), 2);
}

#[test]
fn verify_example_holds() {
    let out = beacons()
        .args([
            "verify",
            "models/dose_response.onnx",
            "specs/dose_response_range.vnnlib",
            "--timeout",
            "60",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("holds"), "{stdout}");
}
