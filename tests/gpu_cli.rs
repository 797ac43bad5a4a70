//! `--device` on a machine without a GPU (as CI is): `cuda` says so and exits 2 (snapshot of
//! the message), `auto` falls back to the CPU with a one-line notice and the same numbers as
//! `cpu`. On a machine where CUDA is usable these tests print SKIPPED (they describe the
//! machine without one).

mod common;

use std::process::Command;

use beacons::backend::{select, Device};
use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn beacons() -> Command {
    let mut c = Command::new(get_cargo_bin("beacons"));
    c.current_dir(common::root());
    c
}

fn no_gpu(test: &str) -> bool {
    if select(Device::Cuda).is_ok() {
        eprintln!("SKIPPED {test}: CUDA is usable on this machine");
        return false;
    }
    true
}

const BOUNDS: [&str; 3] = [
    "bounds",
    "models/dose_response.onnx",
    "specs/dose_response_range.vnnlib",
];

#[test]
fn bounds_device_cuda_without_a_gpu_exits_2() {
    if !no_gpu("bounds_device_cuda_without_a_gpu_exits_2") {
        return;
    }
    assert_cmd_snapshot!(beacons().args(BOUNDS).args(["--device", "cuda"]));
}

#[test]
fn verify_device_cuda_without_a_gpu_exits_2() {
    if !no_gpu("verify_device_cuda_without_a_gpu_exits_2") {
        return;
    }
    let out = beacons()
        .args([
            "verify",
            "models/sepsis_risk.onnx",
            "specs/sepsis_high_lactate.vnnlib",
            "--device",
            "cuda",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: --device cuda: no CUDA device is usable"),
        "{err}"
    );
}

fn without_seconds(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(s).to_string();
    text.lines()
        .map(|l| {
            if l.starts_with("method ") {
                "method"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bounds_device_auto_falls_back_to_the_cpu_with_the_same_numbers() {
    if !no_gpu("bounds_device_auto_falls_back_to_the_cpu_with_the_same_numbers") {
        return;
    }
    for method in ["crown", "ibp", "alpha-crown"] {
        let cpu = beacons()
            .args(BOUNDS)
            .args(["--method", method, "--device", "cpu", "--json"])
            .output()
            .unwrap();
        let auto = beacons()
            .args(BOUNDS)
            .args(["--method", method, "--device", "auto", "--json"])
            .output()
            .unwrap();
        assert_eq!(cpu.status.code(), Some(0));
        assert_eq!(auto.status.code(), Some(0));
        let strip = |o: &[u8]| {
            let mut v: serde_json::Value = serde_json::from_slice(o).unwrap();
            v["seconds"] = serde_json::Value::Null;
            v
        };
        assert_eq!(strip(&cpu.stdout), strip(&auto.stdout), "--method {method}");
        assert!(cpu.stderr.is_empty());
        let notice = String::from_utf8_lossy(&auto.stderr);
        assert_eq!(notice.lines().count(), 1, "one line: {notice}");
        assert!(
            notice.starts_with("device: cpu (no CUDA device: "),
            "{notice}"
        );
    }
}

#[test]
fn bounds_device_auto_text_and_notice() {
    if !no_gpu("bounds_device_auto_text_and_notice") {
        return;
    }
    let cpu = beacons().args(BOUNDS).output().unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\(\d+\.\d+ s\)", "([SECONDS] s)");
    settings.bind(|| {
        assert_cmd_snapshot!(beacons().args(BOUNDS).args(["--device", "auto"]));
    });
    let auto = beacons()
        .args(BOUNDS)
        .args(["--device", "auto"])
        .output()
        .unwrap();
    assert_eq!(without_seconds(&cpu.stdout), without_seconds(&auto.stdout));
}

#[test]
fn verify_device_auto_gives_the_cpu_verdict() {
    if !no_gpu("verify_device_auto_gives_the_cpu_verdict") {
        return;
    }
    for (model, code) in [
        ("models/sepsis_risk.onnx", 0),
        ("models/sepsis_risk_flawed.onnx", 1),
    ] {
        let out = beacons()
            .args([
                "verify",
                model,
                "specs/sepsis_high_lactate.vnnlib",
                "--device",
                "auto",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{model}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("device: cpu (no CUDA device"));
    }
}

#[test]
fn gate_device_cuda_without_a_gpu_exits_2_before_any_work() {
    if !no_gpu("gate_device_cuda_without_a_gpu_exits_2_before_any_work") {
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = beacons()
        .args([
            "gate",
            "--policy",
            "specs/policies/sepsis_risk.toml",
            "--device",
            "cuda",
        ])
        .arg("--out")
        .arg(out_dir.path().join("report"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: --device cuda: no CUDA device is usable"),
        "{err}"
    );
    assert!(
        !out_dir.path().join("report").exists(),
        "no report is written"
    );
}
