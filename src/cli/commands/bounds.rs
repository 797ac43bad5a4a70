//! `beacons bounds MODEL SPEC [--method ibp|crown|alpha-crown|lp] [--json]`: sound bounds on a
//! model's outputs and on the margins `a·Y − b` of every atom of a VNN-LIB property, per input box.
//!
//! A margin lower bound above 0 proves its atom (and so its disjunct) infeasible on the box.
//! JSON: `{"method", "seconds", "outputs": {"lower", "upper"}, "margins": [[...], ...]}` for the
//! first input box, and `"regions"` with the same fields for every box.

use std::io::Write;
use std::time::Instant;

use serde::Serialize;

use crate::cli::args::BoundsArgs;
use crate::cli::commands::inspect::check_spec_fits;
use crate::cli::exit::ExitStatus;
use crate::engine::property::{spec_bounds, RegionBounds};
use crate::error::{Error, Result};
use crate::ir::load_model;
use crate::ir::passes::{canonicalize, Level};
use crate::spec;

#[derive(Serialize)]
struct Outputs<'a> {
    lower: &'a [f64],
    upper: &'a [f64],
}

#[derive(Serialize)]
struct Report<'a> {
    method: &'static str,
    seconds: f64,
    outputs: Outputs<'a>,
    margins: &'a [Vec<f64>],
    proved: bool,
    regions: &'a [RegionBounds],
}

pub fn run(args: &BoundsArgs) -> Result<ExitStatus> {
    let model = load_model(&args.model)?;
    let mut graph = model.graph;
    canonicalize(&mut graph, Level::Exact);
    let spec = spec::load(&args.spec)?;
    check_spec_fits(&spec, &graph, &args.spec)?;
    let method = args.method.into();
    let start = Instant::now();
    let regions = spec_bounds(&graph, method, &spec)?;
    let seconds = start.elapsed().as_secs_f64();
    let first = regions.first().ok_or_else(|| {
        Error::Invalid(format!(
            "{}: the property has no input box",
            args.spec.display()
        ))
    })?;
    let proved = regions.iter().all(RegionBounds::proved);
    let text = if args.json {
        let r = Report {
            method: method.name(),
            seconds,
            outputs: Outputs {
                lower: &first.lower,
                upper: &first.upper,
            },
            margins: &first.margins,
            proved,
            regions: &regions,
        };
        serde_json::to_string(&r).map_err(|e| Error::Invalid(e.to_string()))? + "\n"
    } else {
        let mut s = format!("method {} ({seconds:.3} s)\n", method.name());
        for (k, r) in regions.iter().enumerate() {
            s += &format!(
                "\ninput box {k}:\n  output  {:>24} {:>24}\n",
                "lower", "upper"
            );
            for (j, (l, u)) in r.lower.iter().zip(&r.upper).enumerate() {
                s += &format!("  Y_{j:<5} {l:>24.12e} {u:>24.12e}\n");
            }
            for (d, ms) in r.margins.iter().enumerate() {
                let shown: Vec<String> = ms.iter().map(|m| format!("{m:.6e}")).collect();
                let verdict = if ms.iter().any(|m| *m > 0.0) {
                    "infeasible"
                } else {
                    "not excluded"
                };
                s += &format!(
                    "  disjunct {d}: margins [{}] -> {verdict}\n",
                    shown.join(", ")
                );
            }
        }
        s += if proved {
            "\nevery unsafe disjunct is excluded on every box: the property holds\n"
        } else {
            "\nsome unsafe disjunct is not excluded by these bounds (this is not a counterexample)\n"
        };
        s
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitStatus::Success)
}
