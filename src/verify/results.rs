//! Suite results: the CSV `beacons verify --instances` writes, the merge of shard results, and
//! the summary.
//!
//! A results file is one comment line that names the instance list and the shard, a header,
//! and one row per instance in instance order:
//!
//! ```text
//! # beacons-results v1 instances=<fingerprint> count=<instances in the list> shard=<K>/<N>
//! onnx,vnnlib,verdict,seconds
//! onnx/ACASXU_run2a_1_1_batch_2000.onnx,vnnlib/prop_1.vnnlib,holds,0.734
//! ```
//!
//! [`merge`] combines the files of shards `1/N … N/N` into the file an unsharded run writes
//! (`shard=1/1`), refusing duplicate shards, missing shards or rows, and files made from
//! different instance lists.

use std::fmt;
use std::path::Path;

use super::suite::{fingerprint, Instance, Shard};
use super::Verdict;
use crate::error::{Error, Location, Result};

const MAGIC: &str = "# beacons-results v1";
const HEADER: &str = "onnx,vnnlib,verdict,seconds";

/// One instance's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub onnx: String,
    pub vnnlib: String,
    pub verdict: Verdict,
    pub seconds: f64,
}

/// A results file: which list and shard it covers, and its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    pub fingerprint: String,
    pub count: usize,
    pub shard: Shard,
    pub rows: Vec<Row>,
}

impl Results {
    /// The header lines, before any row.
    pub fn header(fingerprint: &str, count: usize, shard: Shard) -> String {
        format!("{MAGIC} instances={fingerprint} count={count} shard={shard}\n{HEADER}\n")
    }

    /// One row as written.
    pub fn row_line(r: &Row) -> String {
        format!(
            "{},{},{},{:.3}\n",
            r.onnx,
            r.vnnlib,
            r.verdict.name(),
            r.seconds
        )
    }

    pub fn render(&self) -> String {
        let mut s = Results::header(&self.fingerprint, self.count, self.shard);
        for r in &self.rows {
            s += &Results::row_line(r);
        }
        s
    }

    /// Reads a results file written by [`Results::render`] (or row by row by a suite run).
    pub fn parse(text: &str, path: &Path) -> Result<Results> {
        let err = |line: usize, m: String| Error::parse(path, Location { line, column: 1 }, m);
        let mut lines = text.lines().enumerate();
        let (_, first) = lines.next().unwrap_or((0, ""));
        let meta = first.strip_prefix(MAGIC).ok_or_else(|| {
            err(
                1,
                format!("not a beacons results file (expected `{MAGIC} ...`)"),
            )
        })?;
        let field = |name: &str| -> Result<&str> {
            meta.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .ok_or_else(|| err(1, format!("the first line has no `{name}=`")))
        };
        let fingerprint = field("instances")?.to_string();
        let count: usize = field("count")?
            .parse()
            .map_err(|_| err(1, "`count=` is not a number".into()))?;
        let shard = Shard::parse(field("shard")?).map_err(|m| err(1, m))?;
        match lines.next() {
            Some((_, h)) if h.trim() == HEADER => {}
            _ => return Err(err(2, format!("expected the header `{HEADER}`"))),
        }
        let mut rows = Vec::new();
        for (i, line) in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split(',').collect();
            let [onnx, vnnlib, verdict, seconds] = parts[..] else {
                return Err(err(
                    i + 1,
                    format!("expected 4 fields, found {}", parts.len()),
                ));
            };
            let verdict = Verdict::parse(verdict)
                .ok_or_else(|| err(i + 1, format!("unknown verdict `{verdict}`")))?;
            let seconds: f64 = seconds
                .parse()
                .map_err(|_| err(i + 1, format!("`{seconds}` is not a number of seconds")))?;
            rows.push(Row {
                onnx: onnx.into(),
                vnnlib: vnnlib.into(),
                verdict,
                seconds,
            });
        }
        Ok(Results {
            fingerprint,
            count,
            shard,
            rows,
        })
    }
}

/// Merges shard results into the results of the whole list (in instance order). With
/// `instances`, every row must name the instance at its place in that list.
pub fn merge(parts: &[(String, Results)], instances: Option<&[Instance]>) -> Result<Results> {
    let bad = |m: String| Error::Invalid(format!("merge: {m}"));
    let (name0, first) = parts
        .first()
        .ok_or_else(|| bad("no results files given".into()))?;
    let n = first.shard.count;
    for (name, p) in parts {
        if p.fingerprint != first.fingerprint || p.count != first.count {
            return Err(bad(format!(
                "{name} was made from a different instance list ({} instances, fingerprint {}) \
                 than {name0} ({} instances, fingerprint {})",
                p.count, p.fingerprint, first.count, first.fingerprint
            )));
        }
        if p.shard.count != n {
            return Err(bad(format!(
                "{name} is shard {} but {name0} is shard {}: the files come from different \
                 shardings",
                p.shard, first.shard
            )));
        }
    }
    if let Some(list) = instances {
        let fp = fingerprint(list);
        if fp != first.fingerprint || list.len() != first.count {
            return Err(bad(format!(
                "the results were made from a different instance list ({} instances, \
                 fingerprint {}) than --instances ({} instances, fingerprint {fp})",
                first.count,
                first.fingerprint,
                list.len()
            )));
        }
    }
    let mut slots: Vec<Option<Row>> = vec![None; first.count];
    let mut seen: Vec<Option<&str>> = vec![None; n];
    for (name, p) in parts {
        let k = p.shard.index - 1;
        if let Some(other) = seen[k] {
            return Err(bad(format!(
                "shard {} appears twice ({other} and {name})",
                p.shard
            )));
        }
        seen[k] = Some(name);
        let wanted = p.shard.select(first.count);
        if p.rows.len() != wanted.len() {
            return Err(bad(format!(
                "{name} has {} rows, but shard {} of {} instances has {}",
                p.rows.len(),
                p.shard,
                first.count,
                wanted.len()
            )));
        }
        for (row, &i) in p.rows.iter().zip(&wanted) {
            if let Some(inst) = instances.and_then(|l| l.get(i)) {
                if inst.onnx != row.onnx || inst.vnnlib != row.vnnlib {
                    return Err(bad(format!(
                        "{name}: instance {} should be {},{} but the row is {},{}",
                        i + 1,
                        inst.onnx,
                        inst.vnnlib,
                        row.onnx,
                        row.vnnlib
                    )));
                }
            }
            slots[i] = Some(row.clone());
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(k, _)| format!("{}/{n}", k + 1))
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!("missing shard(s) {}", missing.join(", "))));
    }
    let rows: Vec<Row> = slots
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| bad(format!("no result for instance {}", i + 1))))
        .collect::<Result<_>>()?;
    if instances.is_none() {
        // Without the list, a repeated instance can only be a duplicated row.
        let mut pairs: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.onnx.as_str(), r.vnnlib.as_str()))
            .collect();
        pairs.sort_unstable();
        if let Some(w) = pairs.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(format!(
                "instance {},{} appears twice (pass --instances if the list repeats it)",
                w[0].0, w[0].1
            )));
        }
    }
    Ok(Results {
        fingerprint: first.fingerprint.clone(),
        count: first.count,
        shard: Shard { index: 1, count: 1 },
        rows,
    })
}

/// Counts over a suite's rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    pub instances: usize,
    pub decided: usize,
    pub holds: usize,
    pub violated: usize,
    pub unknown: usize,
    pub timeouts: usize,
    pub errors: usize,
    pub total_seconds: f64,
    pub median_seconds: f64,
}

impl Summary {
    pub fn of(rows: &[Row]) -> Summary {
        let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
        let mut secs: Vec<f64> = rows.iter().map(|r| r.seconds).collect();
        secs.sort_by(f64::total_cmp);
        let median = match secs.len() {
            0 => 0.0,
            n if n % 2 == 1 => secs[n / 2],
            n => 0.5 * (secs[n / 2 - 1] + secs[n / 2]),
        };
        Summary {
            instances: rows.len(),
            decided: rows.iter().filter(|r| r.verdict.decided()).count(),
            holds: count(Verdict::Holds),
            violated: count(Verdict::Violated),
            unknown: count(Verdict::Unknown),
            timeouts: count(Verdict::Timeout),
            errors: count(Verdict::Error),
            total_seconds: secs.iter().sum(),
            median_seconds: median,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} instances: {} decided ({} holds, {} violated), {} unknown, {} timeouts, {} errors",
            self.instances,
            self.decided,
            self.holds,
            self.violated,
            self.unknown,
            self.timeouts,
            self.errors
        )?;
        write!(
            f,
            "{:.1} s in total, median {:.3} s per instance",
            self.total_seconds, self.median_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> Vec<Instance> {
        (0..n)
            .map(|i| Instance {
                onnx: format!("net{i}.onnx"),
                vnnlib: "p.vnnlib".into(),
                timeout: 10.0,
            })
            .collect()
    }

    /// The results file of shard `k/n` of `l`, with verdicts that depend on the index.
    fn shard(l: &[Instance], k: usize, n: usize) -> (String, Results) {
        let s = Shard { index: k, count: n };
        let rows = s
            .select(l.len())
            .into_iter()
            .map(|i| Row {
                onnx: l[i].onnx.clone(),
                vnnlib: l[i].vnnlib.clone(),
                verdict: if i % 2 == 0 {
                    Verdict::Holds
                } else {
                    Verdict::Violated
                },
                seconds: i as f64,
            })
            .collect();
        let r = Results {
            fingerprint: fingerprint(l),
            count: l.len(),
            shard: s,
            rows,
        };
        // Through the text form, as `beacons merge` reads it.
        let text = r.render();
        (
            format!("s{k}.csv"),
            Results::parse(&text, Path::new("s.csv")).unwrap(),
        )
    }

    #[test]
    fn shards_merge_into_the_unsharded_results() {
        let l = list(7);
        let whole = shard(&l, 1, 1).1;
        let parts: Vec<_> = [3, 1, 2].iter().map(|&k| shard(&l, k, 3)).collect();
        assert_eq!(merge(&parts, None).unwrap(), whole);
        assert_eq!(merge(&parts, Some(&l)).unwrap(), whole);
        let s = Summary::of(&whole.rows);
        assert_eq!((s.decided, s.holds, s.violated), (7, 4, 3));
        assert_eq!(s.median_seconds, 3.0);
    }

    #[test]
    fn merge_refuses_duplicates_gaps_and_mismatches() {
        let l = list(7);
        let err = |parts: &[(String, Results)], inst: Option<&[Instance]>| {
            merge(parts, inst).unwrap_err().to_string()
        };
        let e = err(&[shard(&l, 1, 3), shard(&l, 1, 3), shard(&l, 2, 3)], None);
        assert!(e.contains("appears twice"), "{e}");
        let e = err(&[shard(&l, 1, 3), shard(&l, 3, 3)], None);
        assert!(e.contains("missing shard(s) 2/3"), "{e}");
        let e = err(&[shard(&l, 1, 2), shard(&l, 2, 3)], None);
        assert!(e.contains("different shardings"), "{e}");
        let other = list(8);
        let e = err(&[shard(&l, 1, 2), shard(&other, 2, 2)], None);
        assert!(e.contains("different instance list"), "{e}");
        let e = err(&[shard(&l, 1, 1)], Some(&other));
        assert!(e.contains("--instances"), "{e}");
        // A truncated shard file.
        let mut short = shard(&l, 2, 2);
        short.1.rows.pop();
        let e = err(&[shard(&l, 1, 2), short], None);
        assert!(e.contains("has 2 rows"), "{e}");
        // A row that names another instance.
        let mut wrong = shard(&l, 2, 2);
        wrong.1.rows[0].onnx = "net0.onnx".into();
        let e = err(&[shard(&l, 1, 2), wrong.clone()], Some(&l));
        assert!(e.contains("should be net1.onnx"), "{e}");
        let e = err(&[shard(&l, 1, 2), wrong], None);
        assert!(e.contains("appears twice"), "{e}");
        assert!(err(&[], None).contains("no results"));
    }

    #[test]
    fn malformed_results_files_are_located_errors() {
        let p = Path::new("r.csv");
        assert!(Results::parse("onnx,vnnlib,verdict,seconds\n", p).is_err());
        let head = "# beacons-results v1 instances=ab count=1 shard=1/1\n";
        assert!(Results::parse(&format!("{head}a,b,c\n"), p).is_err());
        let e = Results::parse(&format!("{head}{HEADER}\na,b,maybe,1.0\n"), p).unwrap_err();
        assert!(e.to_string().starts_with("r.csv:3:1:"), "{e}");
        let e = Results::parse(&format!("{head}{HEADER}\na,b,holds\n"), p).unwrap_err();
        assert!(e.to_string().contains("4 fields"), "{e}");
    }
}
