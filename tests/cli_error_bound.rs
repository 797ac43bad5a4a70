//! `beacons error-bound` as a user sees it: human and JSON output (snapshots, durations
//! redacted), exit codes of `--max-error`, input errors with locations, and certificates.

mod common;

use std::process::Command;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

const MODEL: &str = "models/dose_response.onnx";
const REFERENCE: &str = "specs/references/dose_response.toml";

fn beacons() -> Command {
    let mut c = Command::new(get_cargo_bin("beacons"));
    c.current_dir(common::root());
    c
}

fn redacted<R>(f: impl FnOnce() -> R) -> R {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r#""seconds":[0-9.e+-]+"#, r#""seconds":"[seconds]""#);
    s.add_filter(r"[0-9]+\.[0-9]{3} s,", "[seconds] s,");
    s.bind(f)
}

#[test]
fn error_bound_text() {
    redacted(|| {
        assert_cmd_snapshot!(beacons().args([
            "error-bound",
            MODEL,
            REFERENCE,
            "--tolerance",
            "0.5"
        ]));
    });
}

#[test]
fn error_bound_json() {
    redacted(|| {
        assert_cmd_snapshot!(beacons().args([
            "error-bound",
            MODEL,
            REFERENCE,
            "--tolerance",
            "0.5",
            "--json"
        ]));
    });
}

fn code(args: &[&str]) -> Option<i32> {
    beacons().args(args).output().unwrap().status.code()
}

#[test]
fn max_error_exit_codes() {
    let base = ["error-bound", MODEL, REFERENCE];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        code(&a)
    };
    assert_eq!(with(&["--max-error", "2"]), Some(0), "holds");
    assert_eq!(with(&["--max-error", "0.5"]), Some(1), "violated");
    assert_eq!(
        with(&["--max-error", "0.9005", "--timeout", "0.3"]),
        Some(3),
        "undecided"
    );
}

#[test]
fn reference_errors_exit_2_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"bad\"\ninputs = [\"dose_mg\", \"t_h\"]\noutput = 0\nexpression = \"dose_mg / 20.0 * exp(-0.1 * t_h\"\n[region]\ndose_mg = [50.0, 200.0]\nt_h = [0.0, 24.0]\n",
    )
    .unwrap();
    let out = beacons()
        .args(["error-bound", MODEL])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4:46: key `expression`: expected `,` or `)`"),
        "{err}"
    );
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"(?m)^error: .*bad\.toml", "error: [dir]/bad.toml");
    s.bind(|| insta::assert_snapshot!(err));
}

#[test]
fn certificate_round_trip_and_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("cert.json");
    let out = beacons()
        .args([
            "error-bound",
            MODEL,
            REFERENCE,
            "--tolerance",
            "0.5",
            "--certificate",
        ])
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let check = |path: &std::path::Path| {
        beacons()
            .args(["error-bound", MODEL, REFERENCE, "--check-certificate"])
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = check(&c);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("certificate accepted"));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&c).unwrap()).unwrap();
    v["leaves"].as_array_mut().unwrap().pop();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let rejected = check(&bad);
    assert_eq!(rejected.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rejected.stderr).contains("certificate rejected"));
}
