//! The importer's acceptance test: for every ONNX model under the shared benchmarks and every
//! committed test model, beacons' import evaluated by `beacons::eval::forward_f64` agrees with
//! `tract-onnx` running the same file in `f32`, on a few random inputs each:
//! `|ours − tract| ≤ 1e-6 + 1e-5 · |tract|` for every output scalar.
//!
//! Inputs are random `f32` numbers, so both sides see exactly the same values. Per-sample input
//! shapes (symbolic batch dimensions pinned to 1) are given to tract as concrete input facts.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tract_onnx::prelude::*;

const ABS_TOL: f64 = 1e-6;
const REL_TOL: f64 = 1e-5;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

fn benchmarks_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BEACONS_BENCHMARKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: benchmark models not found at {} (set BEACONS_BENCHMARKS); \
             the tract cross-check ran on the committed test models only",
            dir.display()
        );
        None
    }
}

fn onnx_files(dir: &Path, recursive: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && recursive {
            out.extend(onnx_files(&p, true));
        } else if p.extension().is_some_and(|x| x == "onnx") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Runs the model in tract on one sample (all inputs concatenated) and returns the
/// concatenated, flattened outputs.
fn tract_forward(
    plan: &std::sync::Arc<TypedRunnableModel>,
    shapes: &[Vec<usize>],
    sample: &[f32],
) -> TractResult<Vec<f64>> {
    let mut inputs: TVec<TValue> = tvec![];
    let mut at = 0;
    for s in shapes {
        let n: usize = s.iter().product();
        let t = Tensor::from_shape(s, &sample[at..at + n])?;
        inputs.push(t.into());
        at += n;
    }
    let outputs = plan.run(inputs)?;
    let mut flat = Vec::new();
    for o in outputs {
        let o = o.cast_to::<f32>()?;
        flat.extend(o.to_plain_array_view::<f32>()?.iter().map(|&v| v as f64));
    }
    Ok(flat)
}

/// Compares beacons and tract on `samples` random inputs; returns the largest violation ratio
/// `|a − b| / (ABS_TOL + REL_TOL·|b|)` (≤ 1 passes).
fn crosscheck(path: &Path, samples: usize, seed: u64) -> f64 {
    let model = beacons::ir::onnx::load(path).unwrap_or_else(|e| panic!("{e}"));
    let g = &model.graph;
    let shapes: Vec<Vec<usize>> = g.inputs.iter().map(|&v| g.value(v).shape.clone()).collect();
    let mut tract_model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap_or_else(|e| panic!("tract cannot load {}: {e:?}", path.display()));
    for (i, s) in shapes.iter().enumerate() {
        tract_model
            .set_input_fact(i, f32::fact(s).into())
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    }
    let plan = tract_model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract cannot optimise {}: {e:?}", path.display()));

    let mut rng = StdRng::seed_from_u64(seed);
    let width = g.input_size();
    let data: Vec<f32> = (0..samples * width)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let ours = beacons::eval::forward_f64(
        g,
        Array2::from_shape_vec((samples, width), data.iter().map(|&v| v as f64).collect())
            .unwrap()
            .view(),
    )
    .unwrap_or_else(|e| panic!("beacons cannot evaluate {}: {e}", path.display()));
    let mut worst: f64 = 0.0;
    for (row, sample) in data.chunks(width).enumerate() {
        let theirs = tract_forward(&plan, &shapes, sample)
            .unwrap_or_else(|e| panic!("tract cannot run {}: {e:?}", path.display()));
        assert_eq!(
            theirs.len(),
            ours.ncols(),
            "{}: output sizes differ",
            path.display()
        );
        for (j, (&a, &b)) in ours.row(row).iter().zip(&theirs).enumerate() {
            let ratio = (a - b).abs() / (ABS_TOL + REL_TOL * b.abs());
            assert!(
                ratio <= 1.0,
                "{}: sample {row}, output {j}: beacons {a} vs tract {b}",
                path.display()
            );
            worst = worst.max(ratio);
        }
    }
    worst
}

#[test]
fn test_models_agree_with_tract() {
    let files = onnx_files(&models_dir(), false);
    assert!(files.len() >= 15);
    for (i, p) in files.iter().enumerate() {
        let worst = crosscheck(p, 5, 100 + i as u64);
        eprintln!("{}: worst error ratio {worst:.3}", p.display());
    }
}

/// The example models shipped in `models/` (sepsis, cell type with BatchNorm, cell image CNN,
/// dose-response, one-compartment surrogate).
#[test]
fn shipped_models_agree_with_tract() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let files = onnx_files(&dir, false);
    assert!(files.len() >= 6, "{files:?}");
    for (i, p) in files.iter().enumerate() {
        let worst = crosscheck(p, 5, 500 + i as u64);
        eprintln!("{}: worst error ratio {worst:.3}", p.display());
    }
}

#[test]
fn benchmark_models_agree_with_tract() {
    let Some(dir) = benchmarks_dir() else { return };
    let files = onnx_files(&dir, true);
    assert!(files.len() >= 48, "expected 45 ACAS Xu + 3 mnist_fc models");
    for (i, p) in files.iter().enumerate() {
        let worst = crosscheck(p, 3, 1000 + i as u64);
        eprintln!("{}: worst error ratio {worst:.3}", p.display());
    }
}
