//! `beacons bounds MODEL SPEC [--method ibp|crown|alpha-crown|lp] [--json]`: sound bounds on a
//! model's outputs and on the margins `a·Y − b` of every atom of a VNN-LIB property, per input box.
//!
//! A margin lower bound above 0 proves its atom (and so its disjunct) infeasible on the box.
//! JSON: `{"method", "seconds", "outputs": {"lower", "upper"}, "margins": [[...], ...]}` for the
//! first input box, and `"regions"` with the same fields for every box.
//!
//! `--device cuda` (or `auto` on a machine with a GPU) computes `--method crown` with the
//! batched CROWN of `verify` (`verify::batch::Plan`) on the CUDA backend, the outputs as rows
//! of `±I` beside the atoms; other methods run on the CPU only (`cuda`: a usage error; `auto`:
//! the CPU, with a notice).

use std::io::Write;
use std::time::Instant;

use serde::Serialize;

use ndarray::{s, Array2};

use crate::backend::{select, AnyBackend, Device};
use crate::bounds::Interval;
use crate::cli::args::BoundsArgs;
use crate::cli::commands::inspect::check_spec_fits;
use crate::cli::exit::ExitStatus;
use crate::engine::property::{region_bounds_by, spec_bounds, RegionBounds};
use crate::engine::{BoxBounds, Method};
use crate::error::{Error, Result};
use crate::ir::passes::{canonicalize, Level};
use crate::ir::{load_model, Graph};
use crate::spec::{self, Spec};
use crate::verify::batch::{Job, Plan};

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
    let method: Method = args.method.into();
    let mut selection = select(args.device)?;
    if !matches!(selection.backend, AnyBackend::Cpu) && method != Method::Crown {
        if args.device == Device::Cuda {
            return Err(Error::Usage(format!(
                "--device cuda computes --method crown only; use --device cpu for --method {}",
                method.name()
            )));
        }
        selection.backend = AnyBackend::Cpu;
        selection.notice = Some(format!(
            "device: cpu (--method {} runs on the CPU only)",
            method.name()
        ));
    }
    if let Some(notice) = &selection.notice {
        eprintln!("{notice}");
    }
    let start = Instant::now();
    let regions = match &selection.backend {
        AnyBackend::Cpu => spec_bounds(&graph, method, &spec)?,
        device => crown_on(&graph, &spec, device)?,
    };
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

/// CROWN bounds of every region on a device backend: one batched-CROWN plan, the atoms'
/// rows and the rows of `I` and `−I` (the outputs) bounded together.
pub fn crown_on(graph: &Graph, spec: &Spec, backend: &AnyBackend) -> Result<Vec<RegionBounds>> {
    let plan = Plan::with_backend(graph, backend.clone())?;
    let n = graph.output_size();
    spec.regions
        .iter()
        .map(|region| {
            region_bounds_by(graph, region, |input: &Interval, c| {
                let r = c.map_or(0, |c| c.nrows());
                let mut all = Array2::zeros((r + 2 * n, n));
                if let Some(c) = c {
                    all.slice_mut(s![..r, ..]).assign(c);
                }
                for j in 0..n {
                    all[(r + j, j)] = 1.0;
                    all[(r + n + j, j)] = -1.0;
                }
                let job = Job {
                    lo: input.lo.clone(),
                    hi: input.hi.clone(),
                    inherited: None,
                };
                let b = plan.bound(graph, &all, &[job])?.remove(0);
                // A lower bound L of −y_j is the upper bound −L of y_j (negation is exact).
                let lo = (0..n).map(|j| b.output.lo[j].max(b.rows[r + j])).collect();
                let hi = (0..n)
                    .map(|j| b.output.hi[j].min(-b.rows[r + n + j]))
                    .collect();
                Ok(BoxBounds {
                    outputs: Interval::new(lo, hi),
                    rows: b.rows[..r].to_vec(),
                })
            })
        })
        .collect()
}
