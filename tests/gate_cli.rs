//! `beacons gate` and `beacons report` on the command line: the four exit codes, the files
//! written, re-rendering byte for byte, the JUnit and SARIF structure, snapshots of report.md
//! and report.json (times, durations, commit and machine redacted), and the HTML report in
//! headless Chromium when it is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn beacons(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_beacons"))
        .args(args)
        .current_dir(ROOT)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn abs(rel: &str) -> String {
    format!("{ROOT}/{rel}")
}

/// A policy in `dir` over the shipped dose–response model with the given property files
/// (name, VNN-LIB text, timeout) and extra TOML.
fn policy(dir: &Path, props: &[(&str, &str, f64)], extra: &str) -> PathBuf {
    let mut s = format!(
        "name = \"test\"\nmodel = \"{}\"\n",
        abs("models/dose_response.onnx")
    );
    for (name, text, timeout) in props {
        let f = dir.join(format!("{name}.vnnlib"));
        std::fs::write(&f, text).unwrap();
        s += &format!(
            "\n[[properties]]\nname = \"{name}\"\nvnnlib = \"{}\"\ntimeout = {timeout}\n",
            f.display()
        );
    }
    s += extra;
    let p = dir.join("policy.toml");
    std::fs::write(&p, s).unwrap();
    p
}

/// A property over 150–200 mg given 1–4 h earlier: the unsafe set is `Y_0 <= bound`.
fn high_dose(bound: f64) -> String {
    format!(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n\
         (assert (>= X_0 150.0))\n(assert (<= X_0 200.0))\n(assert (>= X_1 1.0))\n\
         (assert (<= X_1 4.0))\n(assert (<= Y_0 {bound}))\n"
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Replaces the values of run-dependent JSON keys with "[redacted]".
fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(
                    k.as_str(),
                    "generated_at"
                        | "duration_seconds"
                        | "seconds"
                        | "domains"
                        | "commit"
                        | "machine"
                        | "reproduce"
                ) {
                    *x = serde_json::Value::String("[redacted]".into());
                } else {
                    redact(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[test]
fn shipped_policy_allows_release_and_reports_render_identically() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("reports");
    let (code, stdout, stderr) = beacons(&[
        "gate",
        "--policy",
        "specs/policies/dose_response.toml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("RELEASE ALLOWED"), "{stdout}");
    assert!(
        stderr.contains("[4/4] scenario dose_response_release: pass"),
        "{stderr}"
    );
    for f in [
        "report.json",
        "report.md",
        "report.html",
        "junit.xml",
        "report.sarif",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // The output_range template became a VNN-LIB file in the report folder.
    assert!(dir.join("specs/early_effect_band.vnnlib").is_file());
    for c in ["effect_in_range", "high_dose_efficacy", "early_effect_band"] {
        assert!(dir.join(format!("certificates/{c}.json")).is_file());
    }
    // `beacons report` re-renders every file byte for byte from the JSON.
    let json = dir.join("report.json");
    for (format, file) in [
        ("md", "report.md"),
        ("html", "report.html"),
        ("junit", "junit.xml"),
        ("sarif", "report.sarif"),
        ("json", "report.json"),
    ] {
        let (code, text, err) = beacons(&["report", json.to_str().unwrap(), "--format", format]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(text, read(&dir.join(file)), "{format} differs from {file}");
    }
    // JUnit: 3 properties + 5 scenario properties, no failures.
    let junit = read(&dir.join("junit.xml"));
    assert_eq!(junit.matches("<testcase ").count(), 8, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    // SARIF: a valid 2.1.0 log with no results.
    let sarif: serde_json::Value = serde_json::from_str(&read(&dir.join("report.sarif"))).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["name"], "beacons");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 0);
    // HTML: self-contained, one plot per perturbation (2), no scripts, nothing fetched.
    let html = read(&dir.join("report.html"));
    assert_eq!(html.matches("<svg ").count(), 2);
    let fetched = html
        .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
        .contains("http");
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    assert!(!fetched, "the report refers to the network");

    // Snapshots (run-dependent values redacted; the temp folder replaced).
    let md = read(&dir.join("report.md"))
        .replace(dir.to_str().unwrap(), "[out]")
        .lines()
        .map(|l| {
            // Seconds column of the property table and the commit.
            let mut cells: Vec<String> = l.split(" | ").map(str::to_string).collect();
            if cells.len() == 4 && cells[1].starts_with("**") {
                cells[2] = "[s]".into();
            }
            cells.join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let commit = env!("CARGO_PKG_VERSION");
    let md = md.replace(&format!("beacons {commit} ("), "beacons [version] (");
    let md = match md.find("beacons [version] (") {
        Some(i) => {
            let end = md[i..].find(')').map_or(md.len(), |e| i + e);
            format!("{}beacons [version] ([commit]{}", &md[..i], &md[end..])
        }
        None => md,
    };
    insta::assert_snapshot!("report_md", md);
    let mut v: serde_json::Value = serde_json::from_str(&read(&json)).unwrap();
    redact(&mut v);
    let text = serde_json::to_string_pretty(&v)
        .unwrap()
        .replace(dir.to_str().unwrap(), "[out]");
    insta::assert_snapshot!("report_json", text);
}

#[test]
fn a_violated_property_blocks_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    // The network's minimum effect on this box is about 58 %: a 60 % claim is false.
    let p = policy(tmp.path(), &[("claims_60", &high_dose(60.0), 30.0)], "");
    let out = tmp.path().join("out");
    let (code, stdout, stderr) = beacons(&[
        "gate",
        "--policy",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("RELEASE BLOCKED"), "{stdout}");
    assert!(
        stdout.contains("property `claims_60` is violated"),
        "{stdout}"
    );
    let r: serde_json::Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    let ce = &r["properties"][0]["counterexample"];
    assert!(ce["output"][0].as_f64().unwrap() <= 60.0, "{ce}");
    let sarif: serde_json::Value = serde_json::from_str(&read(&out.join("report.sarif"))).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "property-violated");
    let junit = read(&out.join("junit.xml"));
    assert_eq!(junit.matches("<failure ").count(), 1, "{junit}");
    assert!(read(&out.join("report.md")).starts_with("# ⛔ RELEASE BLOCKED"));
}

#[test]
fn an_undecided_property_is_inconclusive_unless_the_rules_allow_it() {
    let tmp = tempfile::tempdir().unwrap();
    // True (the minimum is about 58 %) but needs branch-and-bound: 100 µs is not enough.
    let props = [("tight_58", high_dose(58.0), 0.0001)];
    let props: Vec<(&str, &str, f64)> =
        props.iter().map(|(a, b, c)| (*a, b.as_str(), *c)).collect();
    let p = policy(tmp.path(), &props, "");
    let (code, stdout, stderr) = beacons(&[
        "gate",
        "--policy",
        p.to_str().unwrap(),
        "--out",
        tmp.path().join("a").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("INCONCLUSIVE"), "{stdout}");
    let p = policy(
        tmp.path(),
        &props,
        "\n[rules]\nunknown_is_failure = false\n",
    );
    let (code, stdout, _) = beacons(&[
        "gate",
        "--policy",
        p.to_str().unwrap(),
        "--out",
        tmp.path().join("b").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("allowed by the policy's rules"), "{stdout}");
}

#[test]
fn configuration_errors_exit_2_with_a_location() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"x\"\nmodel = \"m.onnx\"\n\n[[properties]]\nname = \"a\"\nvnnlib = \"a.vnnlib\"\ntimout = 5\n",
    )
    .unwrap();
    let (code, _, stderr) = beacons(&["gate", "--policy", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    let shown = stderr.replace(tmp.path().to_str().unwrap(), "[tmp]");
    insta::assert_snapshot!("policy_unknown_key", shown);
    // A scenario of another model is refused before anything runs.
    let p = policy(
        tmp.path(),
        &[],
        &format!(
            "\n[[scenarios]]\npath = \"{}\"\n",
            abs("scenarios/synth_vitals.toml")
        ),
    );
    let (code, _, stderr) = beacons(&["gate", "--policy", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    // A missing report file for `beacons report`.
    let (code, _, stderr) = beacons(&["report", "no/such/report.json", "--format", "md"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no/such/report.json"), "{stderr}");
}

/// The HTML report in headless Chromium: it renders without console errors and the
/// screenshot (kept as a test artefact under target/) is a real picture.
#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        if std::env::var_os("BEACONS_REQUIRE_CHROMIUM").is_some() {
            panic!("BEACONS_REQUIRE_CHROMIUM is set but Chromium is not installed");
        }
        eprintln!("SKIPPED: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let (code, _, err) = beacons(&[
        "gate",
        "--policy",
        "specs/policies/dose_response.toml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let artefacts = Path::new(ROOT).join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tmp.path().join("profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1280,2400",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", dir.join("report.html").display()),
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed:\n{log}");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "screenshot of {} bytes: blank?",
        png.len()
    );
    eprintln!("screenshot of the HTML report: {}", shot.display());
}

/// A robustness template over a reference cohort: the centres come from the scenario's world,
/// mapped through its binding (a 200-gene panel here), one property per sample; both forms
/// (`points` and `reference`) together, or an empty cohort, are located errors.
#[test]
fn robustness_template_takes_a_reference_cohort() {
    let dir = tempfile::tempdir().unwrap();
    let write = |extra: &str| {
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            format!(
                "name = \"ct\"\nmodel = \"{}\"\nbinding = \"{}\"\n\n[[properties]]\n\
                 name = \"robust\"\nkind = \"robustness\"\nepsilon = 0.1\n{extra}",
                abs("models/cell_type.onnx"),
                abs("specs/models/cell_type.toml")
            ),
        )
        .unwrap();
        p
    };
    let reference = format!(
        "reference = {{ scenario = \"{}\", samples = 3, seed = 9 }}\n",
        abs("scenarios/cell_type.toml")
    );
    let p = beacons::gate::Policy::load(&write(&reference)).unwrap();
    assert_eq!(p.properties.len(), 3);
    let mut centres = Vec::new();
    for (k, prop) in p.properties.iter().enumerate() {
        assert_eq!(prop.name, format!("robust[{k}]"));
        let beacons::gate::Source::Robustness { point, epsilon } = &prop.source else {
            panic!("not a robustness property")
        };
        assert_eq!(point.len(), 200);
        assert_eq!(epsilon, &vec![0.1; 200]);
        // Counts: non-negative integers, not all zero.
        assert!(point.iter().all(|v| *v >= 0.0 && v.fract() == 0.0));
        assert!(point.iter().sum::<f64>() > 100.0);
        centres.push(point.clone());
    }
    assert_ne!(centres[0], centres[1]);
    // The same seed draws the same cohort.
    let again = beacons::gate::Policy::load(&write(&reference)).unwrap();
    let beacons::gate::Source::Robustness { point, .. } = &again.properties[0].source else {
        panic!()
    };
    assert_eq!(point, &centres[0]);

    let both = format!("{reference}points = [[1.0]]\n");
    let e = beacons::gate::Policy::load(&write(&both))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not both") && e.contains("p.toml:"), "{e}");
    let none = format!(
        "reference = {{ scenario = \"{}\", samples = 0 }}\n",
        abs("scenarios/cell_type.toml")
    );
    let e = beacons::gate::Policy::load(&write(&none))
        .unwrap_err()
        .to_string();
    assert!(e.contains("reference.samples must be 1"), "{e}");
    let missing = "reference = { scenario = \"nowhere.toml\" }\n";
    let e = beacons::gate::Policy::load(&write(missing))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nowhere.toml"), "{e}");
}

/// An image model's counterexample is drawn in report.html (reference, counterexample and
/// difference, one pixel per SVG rect), and report.json records the layout and the centre.
#[test]
fn image_counterexamples_are_pictures_in_the_html_report() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("wide.toml");
    // 40 ADU per pixel: far more than the model withstands.
    std::fs::write(
        &policy,
        format!(
            "name = \"cell_image_wide\"\nmodel = \"{}\"\nbinding = \"{}\"\n\n[[properties]]\n\
             name = \"robust_wide\"\nkind = \"robustness\"\nepsilon = 40.0\ntimeout = 30\n\
             reference = {{ scenario = \"{}\", samples = 1, seed = 1 }}\n",
            abs("models/cell_image.onnx"),
            abs("specs/models/cell_image.toml"),
            abs("scenarios/cell_image.toml")
        ),
    )
    .unwrap();
    let out = tmp.path().join("r");
    let (code, _, err) = beacons(&[
        "gate",
        "--policy",
        policy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    let json: serde_json::Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    assert_eq!(
        json["model"]["image"],
        serde_json::json!({"channels": 1, "height": 28, "width": 28})
    );
    let ce = &json["properties"][0]["counterexample"];
    let (x, c) = (
        ce["input"].as_array().unwrap(),
        ce["centre"].as_array().unwrap(),
    );
    assert_eq!((x.len(), c.len()), (784, 784));
    // Inside the box: no pixel moved by more than 40 ADU (plus the box's outward ulp).
    for (a, b) in x.iter().zip(c) {
        let d = (a.as_f64().unwrap() - b.as_f64().unwrap()).abs();
        assert!(d <= 40.0 + 1e-9, "{d}");
    }
    let html = read(&out.join("report.html"));
    assert_eq!(
        html.matches("class=\"ce-image\"").count(),
        3,
        "three pictures"
    );
    assert_eq!(html.matches("<rect x=").count(), 3 * 784);
    assert!(
        !html.contains("X = ["),
        "an image's 784 numbers are not printed"
    );
    // Re-rendered from the JSON, byte for byte.
    let again = tmp.path().join("again.html");
    let (code, _, err) = beacons(&[
        "report",
        out.join("report.json").to_str().unwrap(),
        "--format",
        "html",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(&again), html);
    // Keep it for people reading CI artefacts.
    let artefacts = Path::new(ROOT).join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    std::fs::write(artefacts.join("report-image-counterexample.html"), &html).unwrap();
}

/// `beacons gate --policy P MODEL` gates another model file against the same policy: the
/// flawed sepsis model under the sound model's policy is blocked, the report names it, and
/// its stress replay command carries `--model` and reproduces the failure.
#[test]
fn a_candidate_model_is_gated_against_a_fixed_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let (code, _, err) = beacons(&[
        "gate",
        "--policy",
        "specs/policies/sepsis_risk.toml",
        "models/sepsis_risk_flawed.onnx",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    let json: serde_json::Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    assert_eq!(
        json["model"]["file"]["path"],
        "models/sepsis_risk_flawed.onnx"
    );
    assert!(json["reproduce"]
        .as_str()
        .unwrap()
        .contains("sepsis_risk.toml models/sepsis_risk_flawed.onnx"));
    let replay = json["scenarios"][0]["results"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["failures"].as_array().cloned().unwrap_or_default())
        .map(|f| f["replay"].as_str().unwrap().to_string())
        .next()
        .expect("a stress failure");
    assert!(
        replay.starts_with(
            "beacons stress scenarios/sepsis_risk.toml --model models/sepsis_risk_flawed.onnx --replay "
        ),
        "{replay}"
    );
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let (code, stdout, err) = beacons(&args);
    assert_eq!(code, 1, "{err}");
    assert!(stdout.contains("reproduced bit for bit"), "{stdout}");
    // A model that does not fit the policy's binding is an input error.
    let (code, _, err) = beacons(&[
        "gate",
        "--policy",
        "specs/policies/sepsis_risk.toml",
        "models/dose_response.onnx",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
}
