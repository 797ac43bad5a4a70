//! `beacons stress SCENARIO [--replay TOKEN] [--out FILE] [--json]`: stress-test a model in a
//! synthetic world (see `stress::scenario` for the file format).
//!
//! Without `--replay`: sweeps every perturbation's severities, searches and shrinks failures,
//! prints a summary (or the JSON results with `--json`) and writes the JSON results to
//! `--out`. Exit 0 when every property holds, 1 when one fails, 2 on an input error.
//! With `--replay TOKEN`: re-runs one failure; exit 1 when it still fails, 0 when it passes.

use std::io::Write;

use crate::cli::args::StressArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::stress::replay::Token;
use crate::stress::results::{ReplayResult, StressResults};
use crate::stress::runner::Prepared;
use crate::stress::scenario::Scenario;

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Error::Invalid(e.to_string()))
}

fn short(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:.3}")
    }
}

/// The human summary of a run.
pub fn summary(r: &StressResults) -> String {
    let mut s = format!(
        "scenario {} ({}): {} samples from `{}`, seed {}, model {}\n",
        r.scenario, r.scenario_file, r.samples, r.generator, r.seed, r.model
    );
    s += "\nclean cohort:\n";
    for b in &r.baseline {
        s += &format!(
            "  {:<28} {:>8}  {}\n",
            b.property,
            short(b.metric),
            if b.pass { "pass" } else { "FAIL" }
        );
    }
    let mut last = "";
    for c in &r.curves {
        if c.perturbation != last {
            last = &c.perturbation;
            s += &format!(
                "\n{} ({}), pass rate at severity {}:\n",
                c.perturbation,
                c.perturbation_kind,
                c.severity
                    .iter()
                    .map(|v| format!("{v:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        s += &format!(
            "  {:<28} {}\n",
            c.property,
            c.pass_rate
                .iter()
                .map(|v| format!("{v:>4.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    s += "\n";
    for p in &r.properties {
        if p.passed {
            s += &format!("PASS {} ({})\n", p.name, p.kind);
            continue;
        }
        s += &format!("FAIL {} ({})\n", p.name, p.kind);
        for f in &p.failures {
            let samples = if f.samples.len() == r.samples {
                "the whole cohort".to_string()
            } else if f.samples.len() <= 8 {
                format!(
                    "{} sample{} {:?}",
                    f.samples.len(),
                    if f.samples.len() == 1 { "" } else { "s" },
                    f.samples
                )
            } else {
                format!("{} samples", f.samples.len())
            };
            s += &format!(
                "  under {}: fails from severity {:.4} on {samples} (metric {}; found by {} at {:.3})\n    replay: {}\n",
                f.perturbation,
                f.severity,
                short(f.metric),
                f.found_by,
                f.found_at_severity,
                f.replay
            );
        }
    }
    let failed = r.properties.iter().filter(|p| !p.passed).count();
    s += &format!(
        "\n{} of {} properties hold{}\n",
        r.properties.len() - failed,
        r.properties.len(),
        if failed > 0 {
            format!("; {failed} fail")
        } else {
            String::new()
        }
    );
    s
}

/// The human account of a replay.
pub fn replay_summary(r: &ReplayResult) -> String {
    let mut s = format!(
        "replay {} × {} at severity {} (seed {}) on {} sample(s)\n",
        r.property,
        r.perturbation,
        r.severity,
        r.seed,
        r.samples.len()
    );
    s += &format!(
        "property {}: metric {}\n",
        if r.fails { "fails" } else { "passes" },
        short(r.metric)
    );
    s += &format!(
        "network inputs and outputs {} (digest {}, token {})\n",
        if r.bit_for_bit {
            "reproduced bit for bit"
        } else {
            "DIFFER from the recorded run"
        },
        r.digest,
        r.expected_digest
    );
    for d in &r.details {
        s += &format!(
            "  sample {}: inputs {:?}\n    outputs clean {:?} -> perturbed {:?}\n",
            d.index, d.inputs, d.clean_outputs, d.perturbed_outputs
        );
    }
    s
}

pub fn run(args: &StressArgs) -> Result<ExitStatus> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(m) = &args.model {
        scenario.use_model(m);
    }
    let prepared = Prepared::load(scenario)?;
    let mut stdout = std::io::stdout().lock();
    if let Some(text) = &args.replay {
        let token = Token::decode(text).map_err(|e| Error::Usage(format!("--replay: {e}")))?;
        let r = prepared.replay(&token)?;
        let out = if args.json {
            json(&r)?
        } else {
            replay_summary(&r)
        };
        if let Some(path) = &args.out {
            std::fs::write(path, json(&r)?).map_err(|e| Error::io(path, e))?;
        }
        let _ = stdout.write_all(out.as_bytes());
        return Ok(if r.fails {
            ExitStatus::Violated
        } else {
            ExitStatus::Success
        });
    }
    let results = prepared.run(!args.json)?;
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::write(path, json(&results)?).map_err(|e| Error::io(path, e))?;
    }
    let out = if args.json {
        json(&results)?
    } else {
        summary(&results)
    };
    let _ = stdout.write_all(out.as_bytes());
    Ok(if results.passed {
        ExitStatus::Success
    } else {
        ExitStatus::Violated
    })
}
