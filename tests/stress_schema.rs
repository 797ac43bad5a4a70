//! Scenario and binding validation: every error names the file, the key and its line
//! (snapshots), and no malformed input makes a loader panic (proptest).

use std::path::Path;

use beacons::stress::binding::Binding;
use beacons::stress::replay::Token;
use beacons::stress::scenario::Scenario;
use proptest::prelude::*;

const GOOD_BINDING: &str = r#"model = "m.onnx"
[[features]]
name = "dose"
unit = "mg"
range = [50.0, 200.0]
[[features]]
name = "time"
unit = "h"
[output]
kind = "regression"
target = "effect"
"#;

const GOOD_SCENARIO: &str = r#"binding = "../specs/models/dose_response.toml"
samples = 100
seed = 1

[generator]
kind = "pk"

[[perturbations]]
kind = "gaussian_noise"
severity = [0.0, 0.5]
sd = 1.0

[[properties]]
kind = "finite"
"#;

fn binding_error(text: &str) -> String {
    Binding::parse(Path::new("specs/models/bad.toml"), text)
        .unwrap_err()
        .to_string()
}

/// Scenario errors, parsed as if the file sat in `scenarios/` of the repository (so the
/// shipped binding resolves).
fn scenario_error(text: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Scenario::parse(&root.join("scenarios/bad.toml"), text)
        .unwrap_err()
        .to_string()
        .replace(&format!("{}/", root.display()), "")
}

#[test]
fn good_files_load() {
    Binding::parse(Path::new("b.toml"), GOOD_BINDING).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = Scenario::parse(&root.join("scenarios/x.toml"), GOOD_SCENARIO).unwrap();
    assert_eq!(s.perturbations[0].name, "gaussian_noise");
    for entry in std::fs::read_dir(root.join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".toml") && !name.starts_with("synth_") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn binding_errors_name_file_key_and_line() {
    let cases = [
        ("no inputs", "model = \"m.onnx\"\n[output]\nkind = \"regression\"\ntarget = \"y\"\n"),
        ("bad range", &GOOD_BINDING.replace("[50.0, 200.0]", "[200.0, 50.0]")),
        ("duplicate feature", &GOOD_BINDING.replace("name = \"time\"", "name = \"dose\"")),
        ("unknown key", &GOOD_BINDING.replace("unit = \"h\"", "units = \"h\"")),
        ("wrong type", &GOOD_BINDING.replace("range = [50.0, 200.0]", "range = \"50-200\"")),
        ("bad normalise", &GOOD_BINDING.replace("unit = \"h\"", "unit = \"h\"\nnormalise = { kind = \"standard\", mean = 0.0, std = 0.0 }")),
        ("unknown output kind", &GOOD_BINDING.replace("kind = \"regression\"", "kind = \"ranking\"")),
        ("one class", "model = \"m.onnx\"\n[[features]]\nname = \"a\"\n[output]\nkind = \"classification\"\nclasses = [\"only\"]\n"),
        ("image shape", "model = \"m.onnx\"\n[image]\nchannels = 1\nheight = 0\nwidth = 8\n[output]\nkind = \"classification\"\nclasses = [\"a\", \"b\"]\n"),
        ("not toml", "model = \n"),
    ];
    let text: Vec<String> = cases
        .iter()
        .map(|(what, t)| format!("{what}:\n  {}", binding_error(t)))
        .collect();
    insta::assert_snapshot!(text.join("\n"));
}

#[test]
fn scenario_errors_name_file_key_and_line() {
    let g = GOOD_SCENARIO;
    let cases = [
        ("missing seed", g.replace("seed = 1\n", "")),
        ("zero samples", g.replace("samples = 100", "samples = 0")),
        ("severity above 1", g.replace("[0.0, 0.5]", "[0.2, 1.5]")),
        (
            "unknown perturbation",
            g.replace("gaussian_noise", "gaussian_nose"),
        ),
        (
            "unknown perturbation key",
            g.replace("sd = 1.0", "sdd = 1.0"),
        ),
        ("negative sd", g.replace("sd = 1.0", "sd = -1.0")),
        (
            "unknown property",
            g.replace("kind = \"finite\"", "kind = \"fairness\""),
        ),
        (
            "property names a missing perturbation",
            g.replace(
                "kind = \"finite\"",
                "kind = \"finite\"\nperturbations = [\"noise\"]",
            ),
        ),
        (
            "no properties",
            g.replace("[[properties]]\nkind = \"finite\"\n", ""),
        ),
        (
            "bad generator parameter",
            g.replace("kind = \"pk\"", "kind = \"pk\"\nt_max = -3.0"),
        ),
        (
            "unknown generator",
            g.replace("kind = \"pk\"", "kind = \"pkpd\""),
        ),
        (
            "missing binding file",
            g.replace("../specs/models/dose_response.toml", "nowhere.toml"),
        ),
        (
            "unit mistake without unit",
            g.replace(
                "kind = \"gaussian_noise\"\nseverity = [0.0, 0.5]\nsd = 1.0",
                "kind = \"unit_mistake\"\nfeature = \"dose\"",
            ),
        ),
        (
            "duplicate names",
            format!("{g}\n[[properties]]\nkind = \"finite\"\n"),
        ),
    ];
    let text: Vec<String> = cases
        .iter()
        .map(|(what, t)| format!("{what}:\n  {}", scenario_error(t)))
        .collect();
    insta::assert_snapshot!(text.join("\n"));
}

/// Text near a valid file: characters deleted, duplicated or replaced by TOML punctuation.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            0..base.len(),
            0u8..4,
            prop::sample::select(vec!['[', ']', '"', '=', '\n', '.', '-', '1', 'x', '{']),
        ),
        1..6,
    )
    .prop_map(move |edits| {
        let mut s: Vec<char> = base.chars().collect();
        for (pos, op, c) in edits {
            let pos = pos.min(s.len().saturating_sub(1));
            match op {
                0 if !s.is_empty() => {
                    s.remove(pos);
                }
                1 => s.insert(pos, c),
                2 if !s.is_empty() => s[pos] = c,
                _ => s.insert(pos, s.get(pos).copied().unwrap_or(' ')),
            }
        }
        s.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn binding_loader_never_panics(text in prop_oneof![mutated(GOOD_BINDING), ".{0,200}"]) {
        let _ = Binding::parse(Path::new("b.toml"), &text);
    }

    #[test]
    fn scenario_loader_never_panics(text in prop_oneof![mutated(GOOD_SCENARIO), ".{0,200}"]) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let _ = Scenario::parse(&root.join("scenarios/p.toml"), &text);
    }

    #[test]
    fn token_decoder_never_panics(text in "[0-9a-z]{0,90}") {
        let _ = Token::decode(&text);
    }
}
