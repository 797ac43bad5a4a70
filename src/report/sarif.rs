//! `report.sarif`: SARIF 2.1.0 for code-scanning dashboards — one result per violated or
//! undecided property (located at its VNN-LIB file) and per failing stress property (located
//! at its scenario file).

use serde_json::{json, Value};

use super::{num, Report};

fn result(rule: &str, level: &str, text: String, uri: &str) -> Value {
    json!({
        "ruleId": rule,
        "level": level,
        "message": { "text": text },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri },
                "region": { "startLine": 1 }
            }
        }]
    })
}

pub fn render(r: &Report) -> String {
    let mut results = Vec::new();
    for p in &r.properties {
        match p.verdict.as_str() {
            "holds" => {}
            "violated" => {
                let ce = p.counterexample.as_ref().map_or(String::new(), |c| {
                    let x: Vec<String> = c.input.iter().map(|v| num(*v)).collect();
                    format!(": counterexample X = [{}]", x.join(", "))
                });
                results.push(result(
                    "property-violated",
                    "error",
                    format!(
                        "Property `{}` is violated by model {}{ce}",
                        p.name, r.model.file.path
                    ),
                    &p.spec.path,
                ));
            }
            v => results.push(result(
                "property-undecided",
                if r.rules.unknown_is_failure {
                    "error"
                } else {
                    "warning"
                },
                format!("Property `{}` is {v}: {}", p.name, p.reason),
                &p.spec.path,
            )),
        }
    }
    for sc in &r.scenarios {
        for p in sc.results.properties.iter().filter(|p| !p.passed) {
            let how: Vec<String> = p
                .failures
                .iter()
                .map(|f| {
                    format!(
                        "under {} from severity {} (replay: {})",
                        f.perturbation,
                        num(f.severity),
                        f.replay
                    )
                })
                .collect();
            results.push(result(
                "stress-property-failed",
                "error",
                format!(
                    "Stress scenario `{}`: property `{}` ({}) fails {}",
                    sc.results.scenario,
                    p.name,
                    p.kind,
                    how.join("; ")
                ),
                &sc.file.path,
            ));
        }
    }
    let rules = [
        (
            "property-violated",
            "A formal property has a counterexample.",
        ),
        (
            "property-undecided",
            "A formal property was neither proven nor refuted in its time budget.",
        ),
        (
            "stress-property-failed",
            "A stress-test property fails under a realistic perturbation.",
        ),
    ];
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "beacons",
                    "version": r.tool.version,
                    "rules": rules.iter().map(|(id, text)| json!({
                        "id": id,
                        "shortDescription": { "text": text }
                    })).collect::<Vec<_>>()
                }
            },
            "results": results
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
