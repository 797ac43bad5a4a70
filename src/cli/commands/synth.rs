//! `beacons synth SCENARIO --out data.{csv,npy} [--n N] [--seed S]`: draw a cohort from a
//! scenario's `[generator]` and write it with its ground truth.
//!
//! Reads only the top-level `samples` and `seed` keys and the `[generator]` table of the
//! scenario (other tables belong to `beacons stress` and are ignored here); `--n` and `--seed`
//! override them (defaults 1000 and 0).
//!
//! Output, chosen by the extension of `--out`:
//! - `.csv`: a header of feature names followed by `label`, `target`, `batch` for the ground
//!   truth the generator provides; one row per sample.
//! - `.npy`: the samples × features matrix as NPY v1.0 (`<f8`, C order), and next to it
//!   `STEM.labels.npy` (`<i8`, one per sample), `STEM.targets.npy` (`<f8`) and
//!   `STEM.batch.npy` (`<i8`) for the ground truth the generator provides.
//!
//! Both also write `STEM.meta.json`: the generator spec, seed, sample count, feature names,
//! units, layout, class names and the files written. The output is a function of the
//! scenario, `n` and `seed` only.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::SeedableRng;

use crate::cli::args::SynthArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Location, Result};
use crate::stress::generators::GeneratorSpec;
use crate::stress::{Cohort, Layout};

/// The part of a scenario file `synth` needs; every other key is ignored.
#[derive(Debug, serde::Deserialize)]
struct SynthScenario {
    generator: Option<GeneratorSpec>,
    samples: Option<usize>,
    seed: Option<u64>,
}

#[derive(serde::Serialize)]
struct Meta<'a> {
    generator: &'a GeneratorSpec,
    seed: u64,
    samples: usize,
    feature_names: &'a [String],
    units: &'a [String],
    layout: &'a Layout,
    class_names: &'a [String],
    files: Vec<String>,
}

/// Reads the generator, sample count and seed of a scenario file.
pub fn read_scenario(path: &Path) -> Result<(GeneratorSpec, Option<usize>, Option<u64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file: SynthScenario = toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        Error::parse(
            path,
            Location::of_offset(&text, at),
            e.message().trim().to_string(),
        )
    })?;
    let Some(spec) = file.generator else {
        return Err(Error::parse(
            path,
            Location { line: 1, column: 1 },
            "no [generator] table; add one, e.g. `[generator]` then `kind = \"vitals\"` \
             (kinds: single_cell, cell_image, ecg, vitals, pk)",
        ));
    };
    if let Err(msg) = spec.validate() {
        return Err(Error::parse(path, key_location(&text, &msg), msg));
    }
    Ok((spec, file.samples, file.seed))
}

/// Where the key named first in backticks after the generator's kind is set, if it is
/// written in the file (else the `[generator]` header).
fn key_location(text: &str, msg: &str) -> Location {
    let key = msg.split('`').nth(3).unwrap_or("");
    let header = text.find("[generator]").unwrap_or(0);
    let mut offset = header;
    for (k, line) in text[header..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if k > 0 && t.starts_with('[') {
            break;
        }
        if k > 0
            && !key.is_empty()
            && t.starts_with(key)
            && t[key.len()..].trim_start().starts_with('=')
        {
            return Location::of_offset(text, offset + line.len() - t.len());
        }
        offset += line.len();
    }
    Location::of_offset(text, header)
}

pub fn run(args: &SynthArgs) -> Result<ExitStatus> {
    let ext = args.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext != "csv" && ext != "npy" {
        return Err(Error::Usage(format!(
            "--out {}: the extension must be .csv or .npy",
            args.out.display()
        )));
    }
    let (spec, samples, seed) = read_scenario(&args.scenario)?;
    let n = args.n.or(samples).unwrap_or(1000);
    let seed = args.seed.or(seed).unwrap_or(0);
    let cohort = spec
        .build()
        .generate(n, &mut rand::rngs::StdRng::seed_from_u64(seed));
    let files = if ext == "csv" {
        write_csv(&args.out, &cohort)?;
        vec![args.out.display().to_string()]
    } else {
        write_npy_set(&args.out, &cohort)?
    };
    let meta_path = sidecar(&args.out, "meta.json");
    let meta = Meta {
        generator: &spec,
        seed,
        samples: n,
        feature_names: &cohort.feature_names,
        units: &cohort.units,
        layout: &cohort.layout,
        class_names: &cohort.class_names,
        files,
    };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(&meta_path, json + "\n").map_err(|e| Error::io(&meta_path, e))?;
    println!(
        "wrote {n} samples x {} columns ({} world, seed {seed}) to {} (+ {})",
        cohort.width(),
        spec.kind(),
        args.out.display(),
        meta_path.display()
    );
    Ok(ExitStatus::Success)
}

/// `dir/STEM.SUFFIX` for `dir/STEM.ext`.
fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
    out.with_file_name(format!("{stem}.{suffix}"))
}

fn write_csv(path: &Path, c: &Cohort) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    let mut header: Vec<&str> = c.feature_names.iter().map(String::as_str).collect();
    if c.labels.is_some() {
        header.push("label");
    }
    if c.targets.is_some() {
        header.push("target");
    }
    if c.batch.is_some() {
        header.push("batch");
    }
    let io = |e| Error::io(path, e);
    writeln!(w, "{}", header.join(",")).map_err(io)?;
    let mut line = String::new();
    for (i, row) in c.x.rows().into_iter().enumerate() {
        line.clear();
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            line.push_str(&v.to_string());
        }
        if let Some(l) = &c.labels {
            line.push_str(&format!(",{}", l[i]));
        }
        if let Some(t) = &c.targets {
            line.push_str(&format!(",{}", t[i]));
        }
        if let Some(b) = &c.batch {
            line.push_str(&format!(",{}", b[i]));
        }
        line.push('\n');
        w.write_all(line.as_bytes()).map_err(io)?;
    }
    w.flush().map_err(io)
}

fn write_npy_set(out: &Path, c: &Cohort) -> Result<Vec<String>> {
    let data: Vec<u8> = c.x.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(out, "<f8", &[c.len(), c.width()], &data)?;
    let mut files = vec![out.display().to_string()];
    let mut side = |suffix: &str, descr: &str, bytes: Vec<u8>| -> Result<()> {
        let p = sidecar(out, suffix);
        write_npy(&p, descr, &[c.len()], &bytes)?;
        files.push(p.display().to_string());
        Ok(())
    };
    if let Some(l) = &c.labels {
        side(
            "labels.npy",
            "<i8",
            l.iter().flat_map(|v| (*v as i64).to_le_bytes()).collect(),
        )?;
    }
    if let Some(t) = &c.targets {
        side(
            "targets.npy",
            "<f8",
            t.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )?;
    }
    if let Some(b) = &c.batch {
        side(
            "batch.npy",
            "<i8",
            b.iter().flat_map(|v| (*v as i64).to_le_bytes()).collect(),
        )?;
    }
    Ok(files)
}

/// The NPY v1.0 header for a C-order array: magic, version, header length, and the dict
/// padded with spaces and a newline so that the data starts at a multiple of 64 bytes.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    let total = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - total % 64) % 64));
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) -> Result<()> {
    let mut bytes = npy_header(descr, shape);
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_well_formed() {
        let h = npy_header("<f8", &[3, 4]);
        assert_eq!(h.len() % 64, 0);
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"));
        assert!(text.ends_with('\n'));
        assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
        assert!(std::str::from_utf8(&npy_header("<i8", &[5])[10..])
            .unwrap()
            .contains("(5,)"));
    }

    #[test]
    fn validation_errors_point_at_the_key() {
        let text = "samples = 10\n[generator]\nkind = \"pk\"\n  t_max = -1\n[other]\nt_max = 3\n";
        let spec: GeneratorSpec = toml::from_str::<SynthScenario>(text)
            .unwrap()
            .generator
            .unwrap();
        let msg = spec.validate().unwrap_err();
        assert_eq!(key_location(text, &msg), Location { line: 4, column: 3 });
    }
}
