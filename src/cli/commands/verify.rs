//! `beacons verify MODEL SPEC [--timeout S] [--result-file F] [--certificate F] [--json]`:
//! decide a property (with `--certificate`, write the proof of a `holds` verdict, `cert`);
//! `beacons verify --instances LIST.csv [--timeout-cap S] [--shard K/N] [--out F]`: run a
//! VNN-COMP suite.
//!
//! One property: exit 0 holds, 1 violated (the counterexample is printed), 3 unknown or
//! timeout, 2 input error (the result file, if asked for, then says `error`). JSON:
//! `{"verdict", "seconds", "domains", "reason", "counterexample": {"region", "input",
//! "output"} | null}`. A suite prints one line per instance (a progress bar instead on a
//! terminal), writes the results file incrementally, prints the summary (JSON: the summary
//! object) and exits 0 once every instance has a row; a list that cannot be read exits 2.
//!
//! `--device cuda|auto` puts branch-and-bound's batched bounds (`verify::batch`) on the CUDA
//! backend (`backend::set_process_backend`); the attack and the other engines stay on the CPU.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::args::VerifyArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::verify::results::{Results, Row, Summary};
use crate::verify::suite::{fingerprint, load_instances, run_instance, verify_files, Shard};
use crate::verify::{result_file, Options, Outcome, Verdict};

pub fn run(args: &VerifyArgs) -> Result<ExitStatus> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Error::Usage(format!(
            "--timeout {} must be a positive number of seconds",
            args.timeout
        )));
    }
    // The device, decided once: branch-and-bound's plans run on the process's backend.
    let selection = crate::backend::select(args.device)?;
    if let Some(notice) = &selection.notice {
        eprintln!("{notice}");
    }
    crate::backend::set_process_backend(selection.backend);
    let opts = Options {
        timeout: Duration::from_secs_f64(args.timeout),
        max_domains: args.max_domains.max(1),
        seed: args.seed,
        ..Options::default()
    };
    if let Some(list) = &args.instances {
        return run_suite(args, list, &opts);
    }
    let (Some(model), Some(spec)) = (&args.model, &args.spec) else {
        return Err(Error::Usage(
            "give MODEL and SPEC, or --instances LIST.csv".into(),
        ));
    };
    let outcome = match verify_files(model, spec, &opts) {
        Ok(o) => o,
        Err(e) => {
            if let Some(f) = &args.result_file {
                // The harness still wants a result file; the error itself exits with 2.
                let _ = std::fs::write(f, result_file::render(Verdict::Error, None));
            }
            return Err(e);
        }
    };
    if let Some(f) = &args.result_file {
        let text = result_file::render(outcome.verdict, outcome.counterexample.as_ref());
        std::fs::write(f, text).map_err(|e| Error::io(f, e))?;
    }
    if let (Some(f), Some(cert)) = (&args.certificate, &outcome.certificate) {
        let mut cert = cert.clone();
        let model_bytes = std::fs::read(model).map_err(|e| Error::io(model, e))?;
        let spec_bytes = std::fs::read(spec).map_err(|e| Error::io(spec, e))?;
        cert.stamp(&model_bytes, &spec_bytes);
        cert.write(f)?;
    }
    let text = if args.json {
        serde_json::to_string(&outcome).map_err(|e| Error::Invalid(e.to_string()))? + "\n"
    } else {
        render_text(&outcome)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(match outcome.verdict {
        Verdict::Holds => ExitStatus::Success,
        Verdict::Violated => ExitStatus::Violated,
        Verdict::Unknown | Verdict::Timeout => ExitStatus::Inconclusive,
        Verdict::Error => ExitStatus::InputError,
    })
}

fn render_text(o: &Outcome) -> String {
    let mut s = format!("{} ({:.3} s", o.verdict.name(), o.seconds);
    if o.domains > 0 {
        s += &format!(", {} sub-boxes bounded", o.domains);
    }
    s += ")\n";
    if !o.reason.is_empty() {
        s += &format!("  {}\n", o.reason);
    }
    if let Some(c) = &o.counterexample {
        s += &format!("counterexample in input box {}:\n", c.region);
        for (i, v) in c.input.iter().enumerate() {
            s += &format!("  X_{i} = {v:?}\n");
        }
        for (j, v) in c.output.iter().enumerate() {
            s += &format!("  Y_{j} = {v:?}\n");
        }
    }
    s
}

fn run_suite(args: &VerifyArgs, list: &Path, opts: &Options) -> Result<ExitStatus> {
    if let Some(c) = args.timeout_cap {
        if !(c.is_finite() && c > 0.0) {
            return Err(Error::Usage(format!(
                "--timeout-cap {c} must be a positive number of seconds"
            )));
        }
    }
    let shard = match &args.shard {
        Some(s) => Shard::parse(s).map_err(Error::Usage)?,
        None => Shard { index: 1, count: 1 },
    };
    let instances = load_instances(list)?;
    let base = list
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let chosen = shard.select(instances.len());
    let fp = fingerprint(&instances);
    let mut out = match &args.out {
        Some(p) => {
            let mut f = std::fs::File::create(p).map_err(|e| Error::io(p, e))?;
            f.write_all(Results::header(&fp, instances.len(), shard).as_bytes())
                .map_err(|e| Error::io(p, e))?;
            Some((p, f))
        }
        None => None,
    };
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let b = ProgressBar::new(chosen.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}")
        {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let mut rows: Vec<Row> = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let inst = &instances[i];
        bar.set_message(format!("{} {}", inst.onnx, inst.vnnlib));
        let mut report = |e: &Error| {
            bar.suspend(|| eprintln!("error: instance {}: {e}", i + 1));
        };
        let row = run_instance(&base, inst, args.timeout_cap, opts, &mut report);
        if let Some((p, f)) = &mut out {
            f.write_all(Results::row_line(&row).as_bytes())
                .and_then(|_| f.flush())
                .map_err(|e| Error::io(p.as_path(), e))?;
        }
        if !tty && !args.json {
            eprintln!(
                "[{}/{}] {},{} {} {:.3} s",
                rows.len() + 1,
                chosen.len(),
                row.onnx,
                row.vnnlib,
                row.verdict.name(),
                row.seconds
            );
        }
        bar.inc(1);
        rows.push(row);
    }
    bar.finish_and_clear();
    let summary = Summary::of(&rows);
    let text = if args.json {
        serde_json::to_string(&summary).map_err(|e| Error::Invalid(e.to_string()))? + "\n"
    } else {
        format!("{summary}\n")
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitStatus::Success)
}
