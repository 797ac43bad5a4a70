//! `beacons merge RESULTS... [--instances LIST.csv] [--out F]`: combine the results files of
//! suite shards into the results of the whole list, in instance order, as an unsharded run
//! writes them, and print the summary to stderr.
//!
//! Refuses (exit 2, one line saying which files and why) results made from different instance
//! lists or shardings, a shard given twice, a missing shard, a shard file with missing or extra
//! rows, a repeated instance, and, with `--instances`, rows that do not name the instance at
//! their place in the list.

use std::io::Write;

use crate::cli::args::MergeArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::verify::results::{merge, Results, Summary};
use crate::verify::suite::load_instances;

pub fn run(args: &MergeArgs) -> Result<ExitStatus> {
    let mut parts = Vec::with_capacity(args.results.len());
    for p in &args.results {
        let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
        parts.push((p.display().to_string(), Results::parse(&text, p)?));
    }
    let instances = match &args.instances {
        Some(p) => Some(load_instances(p)?),
        None => None,
    };
    let merged = merge(&parts, instances.as_deref())?;
    let text = merged.render();
    match &args.out {
        Some(p) => std::fs::write(p, &text).map_err(|e| Error::io(p, e))?,
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    eprintln!("{}", Summary::of(&merged.rows));
    Ok(ExitStatus::Success)
}
