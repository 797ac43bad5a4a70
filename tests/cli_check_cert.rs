//! `beacons verify --certificate` and `beacons check-cert` as a user sees them (snapshots):
//! an accepted certificate (text and JSON; the counts that depend on the search redacted),
//! rejections (a claim the network does not meet, a gap in the leaves), and input errors (a
//! certificate for another model, a malformed file). Runs on ACAS Xu 2_1 prop_4, copied into
//! a temporary folder so that the commands use short relative paths.

mod common;

use std::path::Path;
use std::process::Command;

use beacons::cert::{sha256_hex, Certificate, Claim, Leaf, Num, RegionCert};
use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn beacons(dir: &Path) -> Command {
    let mut c = Command::new(get_cargo_bin("beacons"));
    c.current_dir(dir);
    c
}

/// A temporary folder with `model.onnx`, `prop.vnnlib` and the verified `cert.json`.
fn setup() -> Option<tempfile::TempDir> {
    let bench = common::benchmarks("cli_check_cert")?.join("acasxu");
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::copy(
        bench.join("onnx/ACASXU_run2a_2_1_batch_2000.onnx"),
        d.join("model.onnx"),
    )
    .expect("copy model");
    std::fs::copy(bench.join("vnnlib/prop_4.vnnlib"), d.join("prop.vnnlib")).expect("copy");
    let st = beacons(d)
        .args([
            "verify",
            "model.onnx",
            "prop.vnnlib",
            "--certificate",
            "cert.json",
        ])
        .status()
        .expect("run verify");
    assert_eq!(st.code(), Some(0), "2_1 prop_4 holds");
    Some(tmp)
}

fn redacted<R>(f: impl FnOnce() -> R) -> R {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r", [0-9]+ leaves cover", ", [n] leaves cover");
    s.add_filter(
        r"\([0-9]+ leaves bisected, [0-9]+ boxes",
        "([n] leaves bisected, [n] boxes",
    );
    s.add_filter(r#""(boxes|leaves|subdivided)":[0-9]+"#, r#""$1":"[n]""#);
    s.bind(f)
}

/// A certificate of the region's box as one leaf claiming `bound` for atom 0.
fn one_leaf(dir: &Path, halves: bool, bound: f64) -> Certificate {
    let spec = beacons::spec::load(&dir.join("prop.vnnlib")).expect("spec");
    let r = &spec.regions[0];
    let (lo, mut hi) = (r.input.lower.clone(), r.input.upper.clone());
    if halves {
        hi[0] = lo[0] + 0.5 * (hi[0] - lo[0]);
    }
    let leaf = Leaf {
        lo: lo.into_iter().map(Num).collect(),
        hi: hi.into_iter().map(Num).collect(),
        method: "crown".into(),
        claims: vec![Claim {
            atom: 0,
            bound: Num(bound),
            weights: None,
        }],
    };
    let mut c = Certificate::new(vec![RegionCert::new(
        &r.input.lower,
        &r.input.upper,
        vec![leaf],
    )]);
    let bytes = |f: &str| std::fs::read(dir.join(f)).expect("read");
    c.model_sha256 = sha256_hex(&bytes("model.onnx"));
    c.spec_sha256 = sha256_hex(&bytes("prop.vnnlib"));
    c
}

#[test]
fn check_cert_accepts_a_verified_certificate() {
    let Some(tmp) = setup() else { return };
    let d = tmp.path();
    redacted(|| {
        assert_cmd_snapshot!(
            "accepted_text",
            beacons(d).args(["check-cert", "model.onnx", "prop.vnnlib", "cert.json"])
        );
        assert_cmd_snapshot!(
            "accepted_json",
            beacons(d).args([
                "check-cert",
                "model.onnx",
                "prop.vnnlib",
                "cert.json",
                "--json"
            ])
        );
    });
    // The certificate names its model and property and is deterministic JSON.
    let text = std::fs::read_to_string(d.join("cert.json")).expect("cert");
    assert!(text.starts_with(r#"{"version":1,"kind":"beacons-holds","tool":"beacons "#));
    let c = Certificate::parse(&text, Path::new("cert.json")).expect("parses");
    assert_eq!(c.to_json().expect("json"), text);
}

#[test]
fn check_cert_rejects_with_the_reason() {
    let Some(tmp) = setup() else { return };
    let d = tmp.path();
    one_leaf(d, false, 1e9)
        .write(&d.join("claim.json"))
        .expect("write");
    one_leaf(d, true, 1e-9)
        .write(&d.join("gap.json"))
        .expect("write");
    assert_cmd_snapshot!(
        "rejected_claim_text",
        beacons(d).args(["check-cert", "model.onnx", "prop.vnnlib", "claim.json"])
    );
    assert_cmd_snapshot!(
        "rejected_claim_json",
        beacons(d).args([
            "check-cert",
            "model.onnx",
            "prop.vnnlib",
            "claim.json",
            "--json"
        ])
    );
    assert_cmd_snapshot!(
        "rejected_gap_text",
        beacons(d).args(["check-cert", "model.onnx", "prop.vnnlib", "gap.json"])
    );
}

#[test]
fn check_cert_input_errors_exit_2() {
    let Some(tmp) = setup() else { return };
    let d = tmp.path();
    let mut other = one_leaf(d, false, 1e-9);
    other.model_sha256 = sha256_hex(b"another model");
    other.write(&d.join("other.json")).expect("write");
    let text = std::fs::read_to_string(d.join("cert.json")).expect("cert");
    std::fs::write(d.join("truncated.json"), &text[..40]).expect("write");
    std::fs::write(d.join("wrong.json"), "{\"version\": 1,\n \"kind\": 7}\n").expect("write");
    assert_cmd_snapshot!(
        "other_model",
        beacons(d).args(["check-cert", "model.onnx", "prop.vnnlib", "other.json"])
    );
    assert_cmd_snapshot!(
        "truncated",
        beacons(d).args(["check-cert", "model.onnx", "prop.vnnlib", "truncated.json"])
    );
    assert_cmd_snapshot!(
        "wrong_type",
        beacons(d).args(["check-cert", "model.onnx", "prop.vnnlib", "wrong.json"])
    );
}

#[test]
fn malformed_certificates_are_parse_errors_not_panics() {
    for text in [
        "",
        "null",
        "[]",
        "{\"version\":1}",
        "{\"version\":1,\"kind\":\"beacons-holds\",\"tool\":\"x\",\"model_sha256\":\"\",\
         \"spec_sha256\":\"\",\"regions\":[{\"lower\":[1.0],\"upper\":[\"2\"],\"leaves\":[]}]}",
        "{\"version\":1,\"kind\":\"beacons-holds\",\"tool\":\"x\",\"model_sha256\":\"\",\
         \"spec_sha256\":\"\",\"regions\":[{\"lower\":[\"abc\"],\"upper\":[\"2\"],\"leaves\":[]}]}",
    ] {
        let e = Certificate::parse(text, Path::new("c.json")).expect_err(text);
        assert!(matches!(e, beacons::Error::Parse { .. }), "{text}: {e}");
    }
}

/// Every shipped example property that holds (ReLU, tanh, BatchNorm and CNN models): its
/// certificate is accepted, and the same certificate with its claims raised far above what
/// the network reaches is rejected. The cell models' properties are the gate's
/// robustness templates over their reference cohorts.
#[test]
fn shipped_examples_certificates_are_accepted_and_mutations_rejected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let mut cases: Vec<(std::path::PathBuf, std::path::PathBuf)> = [
        (
            "models/dose_response.onnx",
            "specs/dose_response_range.vnnlib",
        ),
        (
            "models/dose_response.onnx",
            "specs/dose_response_high_dose.vnnlib",
        ),
        (
            "models/sepsis_risk.onnx",
            "specs/sepsis_high_lactate.vnnlib",
        ),
    ]
    .iter()
    .map(|(m, s)| (root.join(m), root.join(s)))
    .collect();
    for (name, eps) in [("cell_type", 0.15), ("cell_image", 1.0)] {
        let policy = d.join(format!("{name}.toml"));
        std::fs::write(
            &policy,
            format!(
                "name = \"{name}\"\nmodel = \"{m}\"\nbinding = \"{b}\"\n[[properties]]\n\
                 name = \"r\"\nkind = \"robustness\"\nepsilon = {eps}\n\
                 reference = {{ scenario = \"{s}\", samples = 2, seed = 1 }}\n",
                m = root.join(format!("models/{name}.onnx")).display(),
                b = root.join(format!("specs/models/{name}.toml")).display(),
                s = root.join(format!("scenarios/{name}.toml")).display(),
            ),
        )
        .expect("write policy");
        let out = d.join(format!("gate-{name}"));
        let st = beacons(d)
            .args(["gate", "--policy"])
            .arg(&policy)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("gate");
        assert_eq!(
            st.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        for k in 0..2 {
            cases.push((
                root.join(format!("models/{name}.onnx")),
                out.join(format!("specs/r[{k}].vnnlib")),
            ));
        }
    }
    for (i, (model, spec)) in cases.iter().enumerate() {
        let cert = d.join(format!("c{i}.json"));
        let st = beacons(d)
            .arg("verify")
            .args([model, spec])
            .arg("--certificate")
            .arg(&cert)
            .status()
            .expect("verify");
        assert_eq!(st.code(), Some(0), "{} holds", spec.display());
        let check = |c: &Path| {
            let o = beacons(d)
                .arg("check-cert")
                .args([model, spec])
                .arg(c)
                .output()
                .expect("check-cert");
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        };
        let (code, out) = check(&cert);
        assert_eq!(code, Some(0), "{}: {out}", spec.display());
        let mut c =
            Certificate::parse(&std::fs::read_to_string(&cert).unwrap(), &cert).expect("parses");
        for leaf in c.regions.iter_mut().flat_map(|r| r.leaves.iter_mut()) {
            for claim in &mut leaf.claims {
                claim.bound = Num(1e6);
            }
        }
        let bad = d.join(format!("c{i}-raised.json"));
        c.write(&bad).expect("write");
        let (code, out) = check(&bad);
        assert_eq!(
            code,
            Some(1),
            "{}: raised claims accepted: {out}",
            spec.display()
        );
    }
}
