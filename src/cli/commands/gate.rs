//! `beacons gate --policy P [MODEL] [--out DIR] [--json]`: the release gate (see `gate`). Writes
//! report.json, report.md, report.html, junit.xml, report.sarif and the certificates of the
//! properties that hold into the report folder; under GitHub Actions also prints `::error`
//! annotations and appends the Markdown to `$GITHUB_STEP_SUMMARY`.

use std::io::Write;
use std::path::Path;

use crate::cli::args::GateArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::gate::{self, GateOptions, Policy};
use crate::report::{self, Outcome, Report};

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
}

/// Writes every rendering of `r` into `dir`.
pub fn write_all(r: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write(dir, "report.json", &report::json(r)?)?;
    write(dir, "report.md", &report::markdown(r))?;
    write(dir, "report.html", &report::html(r))?;
    write(dir, "junit.xml", &report::junit(r))?;
    write(dir, "report.sarif", &report::sarif(r))?;
    Ok(())
}

/// `::error` lines for GitHub Actions, one per failing or undecided check.
fn github_annotations(r: &Report) -> String {
    let mut s = String::new();
    for p in &r.properties {
        if p.verdict != "holds" {
            s += &format!(
                "::error file={},title=beacons gate::property {} is {}\n",
                p.spec.path, p.name, p.verdict
            );
        }
    }
    for sc in &r.scenarios {
        for p in sc.results.properties.iter().filter(|p| !p.passed) {
            s += &format!(
                "::error file={},title=beacons gate::stress property {} fails in scenario {}\n",
                sc.file.path, p.name, sc.results.scenario
            );
        }
    }
    s
}

pub fn run(args: &GateArgs) -> Result<ExitStatus> {
    // The device, decided once: the proofs' branch-and-bound runs on the process's backend.
    let selection = crate::backend::select(args.device)?;
    if let Some(notice) = &selection.notice {
        eprintln!("{notice}");
    }
    crate::backend::set_process_backend(selection.backend);
    let mut policy = Policy::load(&args.policy)?;
    if let Some(m) = &args.model {
        policy.use_model(m);
    }
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => gate::default_out_dir(&policy.model)?,
    };
    let mut command = format!("beacons gate --policy {}", args.policy.display());
    if let Some(m) = &args.model {
        command += &format!(" {}", m.display());
    }
    if let Some(d) = &args.out {
        command += &format!(" --out {}", d.display());
    }
    eprintln!(
        "gate {}: {} properties, {} scenarios, model {}",
        policy.name,
        policy.properties.len(),
        policy.scenarios.len(),
        policy.model.display()
    );
    let opts = GateOptions {
        out_dir: out_dir.clone(),
        progress: true,
        command,
    };
    let r = gate::run(&policy, &opts)?;
    write_all(&r, &out_dir)?;
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        print!("{}", github_annotations(&r));
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .map_err(|e| Error::io(Path::new(&summary), e))?;
            let _ = f.write_all(report::markdown(&r).as_bytes());
        }
    }
    let text = if args.json {
        report::json(&r)?
    } else {
        let mut s = r.decision.outcome.title().to_string();
        for reason in &r.decision.reasons {
            s += &format!("\n  {reason}");
        }
        s + &format!("\nreports in {}\n", out_dir.display())
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(match r.decision.outcome {
        Outcome::ReleaseAllowed => ExitStatus::Success,
        Outcome::Blocked => ExitStatus::Violated,
        Outcome::Inconclusive => ExitStatus::Inconclusive,
    })
}
