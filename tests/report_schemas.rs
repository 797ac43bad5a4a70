//! The gate's `junit.xml` validates against the JUnit XSD (Jenkins/xunit `junit-10.xsd`) and its
//! `report.sarif` against the official SARIF 2.1.0 JSON schema, for a released and a blocked
//! model; deliberately broken copies are rejected, so the validators are really run. The
//! schemas and validators come from `scripts/fetch_schemas.sh` (called by `scripts/test.sh`),
//! in `BEACONS_SCHEMAS` (default `target/schemas`); without them the tests skip loudly, or fail
//! when `BEACONS_REQUIRE_SCHEMAS` is set (CI).

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The schema folder, or `None` (skipped) when a schema or validator is missing.
fn schemas(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BEACONS_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join("target/schemas"));
    let mut missing = Vec::new();
    for f in ["junit-10.xsd", "sarif-2.1.0.json"] {
        if !dir.join(f).exists() {
            missing.push(format!(
                "{} (run scripts/fetch_schemas.sh)",
                dir.join(f).display()
            ));
        }
    }
    if Command::new("xmllint").arg("--version").output().is_err() {
        missing.push("xmllint (apt-get install libxml2-utils)".into());
    }
    let py = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output();
    if !py.is_ok_and(|o| o.status.success()) {
        missing.push("Python's jsonschema (pip install jsonschema)".into());
    }
    if missing.is_empty() {
        return Some(dir);
    }
    if std::env::var_os("BEACONS_REQUIRE_SCHEMAS").is_some() {
        panic!(
            "{test}: BEACONS_REQUIRE_SCHEMAS is set but missing: {}",
            missing.join(", ")
        );
    }
    eprintln!("SKIPPED {test}: missing {}", missing.join(", "));
    None
}

/// `Ok(())` or the validator's complaint.
fn xmllint(xsd: &Path, xml: &Path) -> Result<(), String> {
    let o = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .args([xsd, xml])
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

const VALIDATE_JSON: &str = "import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
errors = sorted(Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)
for e in errors[:5]:
    print(list(e.absolute_path), e.message)
sys.exit(1 if errors else 0)";

fn json_schema(schema: &Path, doc: &Path) -> Result<(), String> {
    let o = Command::new("python3")
        .args(["-c", VALIDATE_JSON])
        .args([schema, doc])
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn gate(policy: &str, out: &Path, want: i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_beacons"))
        .args(["gate", "--policy", policy, "--out"])
        .arg(out)
        .current_dir(ROOT)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(want),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn junit_and_sarif_reports_validate_against_the_official_schemas() {
    let Some(dir) = schemas("junit_and_sarif_reports_validate_against_the_official_schemas") else {
        return;
    };
    let (xsd, sarif) = (dir.join("junit-10.xsd"), dir.join("sarif-2.1.0.json"));
    let tmp = tempfile::tempdir().unwrap();
    // A released model (only passes) and the blocked planted-flaw model (a violated property
    // with its counterexample, a failing stress property with its replay token).
    for (policy, want) in [
        ("specs/policies/dose_response.toml", 0),
        ("specs/policies/sepsis_risk_flawed.toml", 1),
    ] {
        let out = tmp.path().join(want.to_string());
        gate(policy, &out, want);
        xmllint(&xsd, &out.join("junit.xml"))
            .unwrap_or_else(|e| panic!("{policy}: junit.xml: {e}"));
        json_schema(&sarif, &out.join("report.sarif"))
            .unwrap_or_else(|e| panic!("{policy}: report.sarif: {e}"));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.sarif")).unwrap())
                .unwrap();
        let results = s["runs"][0]["results"].as_array().unwrap().len();
        assert_eq!(results > 0, want == 1, "{policy}: {results} SARIF results");
    }

    // The validators do reject: a test case without its name, a result of an unknown level.
    let blocked = tmp.path().join("1");
    let junit = std::fs::read_to_string(blocked.join("junit.xml")).unwrap();
    let broken = junit.replacen("<testcase name=", "<testcase nom=", 1);
    assert_ne!(broken, junit);
    let bad = tmp.path().join("bad.xml");
    std::fs::write(&bad, broken).unwrap();
    assert!(
        xmllint(&xsd, &bad).is_err(),
        "a testcase without a name validated"
    );

    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(blocked.join("report.sarif")).unwrap())
            .unwrap();
    s["runs"][0]["results"][0]["level"] = "fatal".into();
    let bad = tmp.path().join("bad.sarif");
    std::fs::write(&bad, serde_json::to_string(&s).unwrap()).unwrap();
    let e = json_schema(&sarif, &bad).expect_err("level `fatal` validated");
    assert!(e.contains("fatal"), "{e}");
}
