//! VNN-COMP suites: the `instances.csv` list, shard selection, and running one instance.
//!
//! In: an `instances.csv` in the VNN-COMP layout (`onnx,vnnlib,timeout` per line, no header,
//! paths relative to the CSV's folder). Out: [`Instance`]s, a deterministic [`Shard`] of them,
//! and per instance a [`Row`] (verdict and wall-clock seconds, model loading included).
//!
//! **Sharding.** Shard `K/N` (1-based) takes every instance whose 0-based index `i` satisfies
//! `i mod N = K − 1`. Interleaving spreads the expensive properties of a list (ACAS Xu lists
//! them property by property) across the shards, and the union of shards `1/N … N/N` is the
//! whole list, each instance exactly once.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::results::Row;
use super::{verify, Options, Outcome, Verdict};
use crate::error::{Error, Location, Result};
use crate::ir::load_model;
use crate::ir::passes::{canonicalize, Level};
use crate::spec;

/// One line of an `instances.csv`, with its paths as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub onnx: String,
    pub vnnlib: String,
    /// Seconds allowed by the list.
    pub timeout: f64,
}

/// Reads an `instances.csv`; blank lines are skipped, anything else malformed is an error
/// naming the line.
pub fn load_instances(path: &Path) -> Result<Vec<Instance>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_instances(&text, path)
}

/// [`load_instances`] on text; `path` is for messages.
pub fn parse_instances(text: &str, path: &Path) -> Result<Vec<Instance>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |m: String| {
            Error::parse(
                path,
                Location {
                    line: i + 1,
                    column: 1,
                },
                m,
            )
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(',').map(str::trim).collect();
        let [onnx, vnnlib, timeout] = parts[..] else {
            return Err(err(format!(
                "expected `onnx,vnnlib,timeout`, found {} field(s)",
                parts.len()
            )));
        };
        let t: f64 = timeout
            .parse()
            .map_err(|_| err(format!("timeout `{timeout}` is not a number")))?;
        if !(t.is_finite() && t > 0.0) {
            return Err(err(format!(
                "timeout `{timeout}` must be a positive number"
            )));
        }
        if onnx.is_empty() || vnnlib.is_empty() {
            return Err(err("empty model or property path".into()));
        }
        out.push(Instance {
            onnx: onnx.into(),
            vnnlib: vnnlib.into(),
            timeout: t,
        });
    }
    if out.is_empty() {
        return Err(Error::parse(
            path,
            Location { line: 1, column: 1 },
            "the instance list is empty",
        ));
    }
    Ok(out)
}

/// A stable fingerprint of an instance list (FNV-1a, 64 bits, over the normalised lines).
pub fn fingerprint(list: &[Instance]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for inst in list {
        let line = format!("{},{},{}\n", inst.onnx, inst.vnnlib, inst.timeout);
        for b in line.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Shard `index/count` of a list (both 1-based, `1 ≤ index ≤ count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N`.
    pub fn parse(s: &str) -> std::result::Result<Shard, String> {
        let msg = || format!("shard `{s}` is not K/N with 1 ≤ K ≤ N (e.g. 2/3)");
        let (k, n) = s.split_once('/').ok_or_else(msg)?;
        let index: usize = k.trim().parse().map_err(|_| msg())?;
        let count: usize = n.trim().parse().map_err(|_| msg())?;
        if index == 0 || count == 0 || index > count {
            return Err(msg());
        }
        Ok(Shard { index, count })
    }

    /// The 0-based indices this shard takes from a list of `len` instances.
    pub fn select(self, len: usize) -> Vec<usize> {
        (0..len)
            .filter(|i| i % self.count == self.index - 1)
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Runs one instance from a list in folder `base`, its timeout capped at `cap` seconds.
/// Errors of the instance (a model that does not load, a property that does not parse)
/// become an `error` row, reported through `on_error`.
pub fn run_instance(
    base: &Path,
    inst: &Instance,
    cap: Option<f64>,
    opts: &Options,
    on_error: &mut dyn FnMut(&Error),
) -> Row {
    let start = Instant::now();
    let timeout = cap.map_or(inst.timeout, |c| c.min(inst.timeout)).max(0.0);
    let opts = Options {
        timeout: Duration::from_secs_f64(timeout),
        ..opts.clone()
    };
    let verdict = match verify_files(&base.join(&inst.onnx), &base.join(&inst.vnnlib), &opts) {
        Ok(o) => o.verdict,
        Err(e) => {
            on_error(&e);
            Verdict::Error
        }
    };
    Row {
        onnx: inst.onnx.clone(),
        vnnlib: inst.vnnlib.clone(),
        verdict,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Loads a model (canonicalised at the exact level) and a property and verifies it.
pub fn verify_files(model: &Path, property: &Path, opts: &Options) -> Result<Outcome> {
    let mut graph = load_model(model)?.graph;
    canonicalize(&mut graph, Level::Exact);
    let spec = spec::load(property)?;
    verify(&graph, &spec, opts).map_err(|e| match e {
        Error::Invalid(m) => Error::Invalid(format!(
            "{} with {}: {m}",
            model.display(),
            property.display()
        )),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_list() {
        for n in 1..7 {
            let mut all: Vec<usize> = (1..=n)
                .flat_map(|k| Shard { index: k, count: n }.select(20))
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..20).collect::<Vec<_>>(), "N = {n}");
        }
        assert_eq!(Shard::parse("2/3").unwrap().select(8), vec![1, 4, 7]);
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instance_lists_parse_with_located_errors() {
        let p = Path::new("i.csv");
        let l = parse_instances("a.onnx,b.vnnlib,116\n\nc.onnx,d.vnnlib,5.5\r\n", p).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].timeout, 5.5);
        let e = parse_instances("a.onnx,b.vnnlib,116\nc.onnx,d.vnnlib\n", p).unwrap_err();
        assert!(e.to_string().starts_with("i.csv:2:1:"), "{e}");
        assert!(parse_instances("a,b,-1\n", p).is_err());
        assert!(parse_instances("\n", p).is_err());
        assert_ne!(fingerprint(&l), fingerprint(&l[..1]));
    }
}
