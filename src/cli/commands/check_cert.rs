//! `beacons check-cert MODEL SPEC CERT [--json]`: checks the certificate of a `holds`
//! verdict with the independent checker (`cert::check`).
//!
//! Exit 0 accepted, 1 rejected (the region, leaf and reason, or the uncovered box), 2 input
//! error (a file that cannot be read or parsed, a certificate for other files). Text: one
//! line `accepted: …` or `rejected: …`. JSON: `{"accepted": true, "regions", "leaves",
//! "subdivided", "boxes"}` or `{"accepted": false, "region", "leaf", "reason"}`. A progress
//! bar on a terminal while the leaves are checked.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cert::check::{check, Decision};
use crate::cert::{sha256_hex, Certificate};
use crate::cli::args::CheckCertArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::ir::load_model;
use crate::ir::passes::{canonicalize, Level};

pub fn run(args: &CheckCertArgs) -> Result<ExitStatus> {
    let model_bytes = std::fs::read(&args.model).map_err(|e| Error::io(&args.model, e))?;
    let spec_bytes = std::fs::read(&args.spec).map_err(|e| Error::io(&args.spec, e))?;
    let cert = Certificate::read(&args.cert)?;
    let mut graph = load_model(&args.model)?.graph;
    canonicalize(&mut graph, Level::Exact);
    let spec = crate::spec::load(&args.spec)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(cert.leaf_count() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} leaves {elapsed}") {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let tick = |n: usize| {
        if n.is_multiple_of(64) {
            bar.set_position(n as u64);
        }
    };
    let decision = check(
        &graph,
        &spec,
        &cert,
        &sha256_hex(&model_bytes),
        &sha256_hex(&spec_bytes),
        &tick,
    )
    .map_err(|e| match e {
        Error::Invalid(m) => Error::Invalid(format!("{}: {m}", args.cert.display())),
        other => other,
    })?;
    bar.finish_and_clear();
    let (text, status) = match &decision {
        Decision::Accepted(c) => (
            if args.json {
                json!({"accepted": true, "regions": c.regions, "leaves": c.leaves,
                       "subdivided": c.subdivided, "boxes": c.boxes})
                .to_string()
            } else {
                format!(
                    "accepted: {} regions, {} leaves cover the input boxes and every claimed \
                     margin is reproduced ({} leaves bisected, {} boxes bounded)",
                    c.regions, c.leaves, c.subdivided, c.boxes
                )
            },
            ExitStatus::Success,
        ),
        Decision::Rejected(r) => (
            if args.json {
                json!({"accepted": false, "region": r.region, "leaf": r.leaf,
                       "reason": r.reason})
                .to_string()
            } else {
                format!("rejected: {r}")
            },
            ExitStatus::Violated,
        ),
    };
    let _ = std::io::stdout().lock().write_all((text + "\n").as_bytes());
    Ok(status)
}
