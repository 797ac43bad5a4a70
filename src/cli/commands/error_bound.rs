//! `beacons error-bound MODEL REFERENCE [--tolerance T] [--timeout S] [--max-error E]
//! [--certificate FILE] [--check-certificate FILE] [--json]`: a certified bound on the worst
//! error of a surrogate network against a closed-form reference model over a region
//! (see `errbound`).
//!
//! Exit codes: without `--max-error`, 0 when the bound converged to the tolerance and 3 on a
//! timeout; with `--max-error E`, 0 when `upper ≤ E` (holds), 1 when `lower > E` (violated,
//! witness reported), 3 when undecided; 2 on input errors. With `--check-certificate` the
//! certificate is checked instead of searching: 0 accepted, 1 rejected.
//! JSON: `{"upper", "lower", "witness": {"input", "network", "reference"}, "leaves", "seconds"}`
//! plus `"stop"`, `"verdict"` (with `--max-error`) and `"reference"`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde::Serialize;

use crate::cli::args::ErrorBoundArgs;
use crate::cli::exit::ExitStatus;
use crate::errbound::{self, cert, Options, Stop, Witness};
use crate::error::{Error, Result};
use crate::ir::load_model;
use crate::ir::passes::{canonicalize, Level};

#[derive(Serialize)]
struct Report<'a> {
    upper: f64,
    lower: f64,
    witness: Option<&'a Witness>,
    leaves: usize,
    seconds: f64,
    stop: Stop,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    reference: &'a str,
}

pub fn run(args: &ErrorBoundArgs) -> Result<ExitStatus> {
    if !(args.tolerance >= 0.0 && args.tolerance.is_finite()) {
        return Err(Error::Usage(format!(
            "--tolerance {} must be a finite number ≥ 0",
            args.tolerance
        )));
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(Error::Usage(format!(
            "--timeout {} must be positive",
            args.timeout
        )));
    }
    if let Some(e) = args.max_error {
        if !(e >= 0.0 && e.is_finite()) {
            return Err(Error::Usage(format!(
                "--max-error {e} must be a finite number ≥ 0"
            )));
        }
    }
    let model = load_model(&args.model)?;
    let mut graph = model.graph;
    canonicalize(&mut graph, Level::Exact);
    let reference = errbound::reference::load(&args.reference)?;
    errbound::check_fits(&graph, &reference, &args.model)?;
    if let Some(path) = &args.check_certificate {
        let c = cert::Certificate::read(path)?;
        return match cert::check(&graph, &reference, &c) {
            Ok(ok) => {
                let text = if args.json {
                    serde_json::to_string(&ok).map_err(|e| Error::Invalid(e.to_string()))? + "\n"
                } else {
                    format!(
                        "certificate accepted: sup |N - f| <= {:e} over the region ({} leaves, {} re-derived by bisection)\n",
                        ok.upper, ok.leaves, ok.subdivided
                    )
                };
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                Ok(ExitStatus::Success)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitStatus::Violated)
            }
        };
    }
    let opts = Options {
        tolerance: args.tolerance,
        timeout: Duration::from_secs_f64(args.timeout.min(1e9)),
        max_error: args.max_error,
        progress: std::io::stderr().is_terminal() && !args.json,
        keep_leaves: args.certificate.is_some(),
    };
    let outcome = errbound::run(&graph, &reference, &opts)?;
    if let Some(path) = &args.certificate {
        cert::Certificate::new(&reference, &outcome).write(path)?;
    }
    let (verdict, status) = match args.max_error {
        Some(e) if outcome.upper <= e => (Some("holds"), ExitStatus::Success),
        Some(e) if outcome.lower > e => (Some("violated"), ExitStatus::Violated),
        Some(_) => (Some("undecided"), ExitStatus::Inconclusive),
        None if matches!(outcome.stop, Stop::Timeout | Stop::Exhausted) => {
            (None, ExitStatus::Inconclusive)
        }
        None => (None, ExitStatus::Success),
    };
    let text = if args.json {
        let r = Report {
            upper: outcome.upper,
            lower: outcome.lower,
            witness: outcome.witness.as_ref(),
            leaves: outcome.leaves,
            seconds: outcome.seconds,
            stop: outcome.stop,
            verdict,
            reference: &reference.name,
        };
        serde_json::to_string(&r).map_err(|e| Error::Invalid(e.to_string()))? + "\n"
    } else {
        human(&reference, &outcome, args, verdict)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(status)
}

fn human(
    r: &errbound::Reference,
    o: &errbound::Outcome,
    args: &ErrorBoundArgs,
    verdict: Option<&str>,
) -> String {
    let mut s = format!("reference {}: {}\n", r.name, r.expression);
    s += "region:";
    for (n, i) in r.inputs.iter().zip(&r.region) {
        s += &format!(" {n} in [{}, {}]", i.lo, i.hi);
    }
    s += &format!("\noutput {} of the model\n\n", r.output);
    s += &format!(
        "  upper  {:.6e}   certified bound on sup |N(x) - f(x)| over the region\n",
        o.upper
    );
    s += &format!(
        "  lower  {:.6e}   error re-evaluated exactly at the witness\n",
        o.lower
    );
    if let Some(w) = &o.witness {
        let inputs: Vec<String> = r
            .inputs
            .iter()
            .zip(&w.input)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        s += &format!(
            "  witness {}: network {:.9e}, reference {:.9e}\n",
            inputs.join(", "),
            w.network,
            w.reference
        );
    }
    let gap = if o.lower > 0.0 {
        format!("{:.2}%", 100.0 * (o.upper - o.lower) / o.lower)
    } else {
        "n/a".into()
    };
    s += &format!(
        "  leaves {}, {:.3} s, gap {gap} ({})\n",
        o.leaves,
        o.seconds,
        match o.stop {
            Stop::Converged => format!("within the tolerance {}", args.tolerance),
            Stop::Decided => "decided".to_string(),
            Stop::Timeout => "timeout".to_string(),
            Stop::Exhausted => "boxes too small to split further".to_string(),
        }
    );
    if let Some(p) = &args.certificate {
        s += &format!("  certificate written to {}\n", p.display());
    }
    if let (Some(v), Some(e)) = (verdict, args.max_error) {
        s += &format!("\nmax error {e:e}: {v}\n");
    }
    s
}
