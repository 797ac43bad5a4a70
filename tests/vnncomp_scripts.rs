//! The VNN-COMP tool scripts (`vnncomp/prepare_instance.sh`, `run_instance.sh`) as the
//! competition harness calls them, on the shipped sepsis models: `unsat` for the sound model,
//! `sat` with a counterexample for the flawed one (re-evaluated here with tract, an
//! independent implementation, to violate the property), `error` for a file that does not
//! load. The scripts use this test's binary through `BEACONS_BIN`.

use std::path::Path;
use std::process::Command;

use tract_onnx::prelude::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn script(name: &str, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(Path::new(ROOT).join("vnncomp").join(name))
        .args(args)
        .env("BEACONS_BIN", env!("CARGO_BIN_EXE_beacons"))
        .current_dir(ROOT)
        .output()
        .unwrap()
}

#[test]
fn competition_scripts_write_result_files() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = "specs/sepsis_high_lactate.vnnlib";
    for model in ["models/sepsis_risk.onnx", "models/sepsis_risk_flawed.onnx"] {
        let o = script("prepare_instance.sh", &["v1", "sepsis", model, spec]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let sound = tmp.path().join("sound.txt");
    let o = script(
        "run_instance.sh",
        &[
            "v1",
            "sepsis",
            "models/sepsis_risk.onnx",
            spec,
            sound.to_str().unwrap(),
            "60",
        ],
    );
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&sound).unwrap().trim(), "unsat");

    let flawed = tmp.path().join("flawed.txt");
    let o = script(
        "run_instance.sh",
        &[
            "v1",
            "sepsis",
            "models/sepsis_risk_flawed.onnx",
            spec,
            flawed.to_str().unwrap(),
            "60",
        ],
    );
    assert!(o.status.success());
    let text = std::fs::read_to_string(&flawed).unwrap();
    assert!(text.starts_with("sat\n("), "{text}");
    // ((X_0 v) ... (Y_0 v) (Y_1 v)): the inputs re-evaluated by tract must be classified low
    // risk (Y_0 >= Y_1), which is what the property's unsafe set says.
    let mut x = Vec::new();
    for cap in text.split('(').filter(|t| t.starts_with("X_")) {
        let v: f64 = cap
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches(')')
            .parse()
            .unwrap();
        x.push(v as f32);
    }
    assert_eq!(x.len(), 12, "{text}");
    let plan = tract_onnx::onnx()
        .model_for_path(Path::new(ROOT).join("models/sepsis_risk_flawed.onnx"))
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = tract_ndarray::Array2::from_shape_vec((1, 12), x).unwrap();
    let y = plan.run(tvec!(Tensor::from(input).into())).unwrap();
    let y = y[0].to_plain_array_view::<f32>().unwrap();
    assert!(y[[0, 0]] >= y[[0, 1]], "not a violation under tract: {y:?}");

    // A model that does not load: prepare fails, run writes `error`.
    let bad = tmp.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    let bad = bad.to_str().unwrap();
    assert!(!script("prepare_instance.sh", &["v1", "x", bad, spec])
        .status
        .success());
    let res = tmp.path().join("bad.txt");
    script(
        "run_instance.sh",
        &["v1", "x", bad, spec, res.to_str().unwrap(), "10"],
    );
    assert_eq!(std::fs::read_to_string(&res).unwrap().trim(), "error");
}
