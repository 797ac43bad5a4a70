//! `report.md`: the decision and every check in a few tables (fits a CI step summary).

use super::{num, Outcome, Report};

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report) -> String {
    let icon = match r.decision.outcome {
        Outcome::ReleaseAllowed => "✅",
        Outcome::Blocked => "⛔",
        Outcome::Inconclusive => "❔",
    };
    let mut s = format!(
        "# {icon} {}: `{}`\n\nPolicy **{}** (`{}`) on model `{}` (SHA-256 `{}`), beacons {} ({}).\n\n",
        r.decision.outcome.title(),
        r.policy_name,
        r.policy_name,
        r.policy.path,
        r.model.file.path,
        &r.model.file.sha256,
        r.tool.version,
        r.tool.commit
    );
    if !r.decision.reasons.is_empty() {
        s += "Why:\n\n";
        for reason in &r.decision.reasons {
            s += &format!("- {reason}\n");
        }
        s += "\n";
    }
    if !r.properties.is_empty() {
        s += "## Formal properties (proven or refuted)\n\n";
        s += "| property | verdict | seconds | evidence |\n| --- | --- | ---: | --- |\n";
        for p in &r.properties {
            let evidence = if let Some(c) = &p.certificate {
                format!("certificate `{c}` ({})", p.certificate_check)
            } else if let Some(ce) = &p.counterexample {
                let x: Vec<String> = ce.input.iter().map(|v| num(*v)).collect();
                let y: Vec<String> = ce.output.iter().map(|v| num(*v)).collect();
                format!(
                    "counterexample X = [{}], Y = [{}]",
                    x.join(", "),
                    y.join(", ")
                )
            } else {
                p.reason.clone()
            };
            s += &format!(
                "| {} (`{}`) | **{}** | {:.2} | {} |\n",
                cell(&p.name),
                cell(&p.spec.path),
                p.verdict,
                p.seconds,
                cell(&evidence)
            );
        }
        s += "\n";
    }
    for sc in &r.scenarios {
        let res = &sc.results;
        s += &format!(
            "## Stress scenario `{}` (tested, not proven): {}\n\n{} samples from `{}`, seed {}.\n\n",
            res.scenario,
            if res.passed { "pass" } else { "**FAIL**" },
            res.samples,
            res.generator,
            res.seed
        );
        s += "| property | result | smallest failing severity | replay |\n| --- | --- | --- | --- |\n";
        for p in &res.properties {
            if p.failures.is_empty() {
                s += &format!("| {} ({}) | pass | | |\n", cell(&p.name), p.kind);
            }
            for f in &p.failures {
                s += &format!(
                    "| {} ({}) | **FAIL** | {} {} on {} sample(s) | `{}` |\n",
                    cell(&p.name),
                    p.kind,
                    cell(&f.perturbation),
                    num(f.severity),
                    f.samples.len(),
                    cell(&f.replay)
                );
            }
        }
        s += "\n";
    }
    s += &format!("Reproduce: `{}`\n", r.reproduce);
    s
}
