//! `beacons report REPORT.json --format html|md|junit|sarif|json [--out FILE]`: re-renders a
//! gate's report from its JSON (the renderings the gate wrote, byte for byte).

use std::io::Write;

use crate::cli::args::{ReportArgs, ReportFormat};
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::report;

pub fn run(args: &ReportArgs) -> Result<ExitStatus> {
    let r = report::from_json(&args.report)?;
    let text = match args.format {
        ReportFormat::Html => report::html(&r),
        ReportFormat::Md => report::markdown(&r),
        ReportFormat::Junit => report::junit(&r),
        ReportFormat::Sarif => report::sarif(&r),
        ReportFormat::Json => report::json(&r)?,
    };
    match &args.out {
        Some(f) => std::fs::write(f, text).map_err(|e| Error::io(f, e))?,
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(ExitStatus::Success)
}
