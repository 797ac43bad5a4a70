//! Criterion benches of the bound engines: `ibp`, `crown` and `alpha-crown` (20 iterations),
//! each computing what `beacons bounds MODEL SPEC --method M` computes (output bounds and every
//! atom margin of every input box), timed without loading or canonicalising the model.
//!
//! Problems: the shipped `models/dose_response.onnx` with `specs/dose_response_range.vnnlib`
//! (always present), and from the VNN-COMP benchmarks (`BEACONS_BENCHMARKS`, default
//! `../shared/benchmarks`; skipped with a message when absent) ACAS Xu network 1_1 with
//! `prop_1` and `prop_3`, and mnist_fc 256x2 with `prop_0_0.03`.
//!
//! Also `gemm_f64`: this machine's float64 matrix-product rate through ndarray (the floor the
//! CROWN backward passes are measured against).
//!
//! `cargo bench --bench engines` (add `-- crown` to run only names containing `crown`). Set
//! `RAYON_NUM_THREADS=1` for the single-threaded figures compared with auto_LiRPA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use beacons::engine::property::spec_bounds;
use beacons::engine::Method;
use beacons::ir::passes::{canonicalize, Level};
use beacons::ir::{load_model, Graph};
use beacons::spec::{self, Spec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn benchmarks() -> Option<PathBuf> {
    let dir = std::env::var_os("BEACONS_BENCHMARKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/benchmarks"));
    if dir.join("acasxu").is_dir() && dir.join("mnist_fc").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "engines bench: no VNN-COMP benchmarks at {} (set BEACONS_BENCHMARKS); \
             benching the shipped model only",
            dir.display()
        );
        None
    }
}

fn load(model: &Path, property: &Path) -> (Graph, Spec) {
    let mut graph = load_model(model)
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()))
        .graph;
    canonicalize(&mut graph, Level::Exact);
    let spec = spec::load(property).unwrap_or_else(|e| panic!("{}: {e}", property.display()));
    (graph, spec)
}

fn problems() -> Vec<(String, Graph, Spec)> {
    let r = root();
    let mut out = vec![{
        let (g, s) = load(
            &r.join("models/dose_response.onnx"),
            &r.join("specs/dose_response_range.vnnlib"),
        );
        ("dose_response".to_string(), g, s)
    }];
    if let Some(b) = benchmarks() {
        let acas = b.join("acasxu");
        for prop in ["prop_1", "prop_3"] {
            let (g, s) = load(
                &acas.join("onnx/ACASXU_run2a_1_1_batch_2000.onnx"),
                &acas.join(format!("vnnlib/{prop}.vnnlib")),
            );
            out.push((format!("acasxu_1_1_{prop}"), g, s));
        }
        let mnist = b.join("mnist_fc");
        let (g, s) = load(
            &mnist.join("onnx/mnist-net_256x2.onnx"),
            &mnist.join("vnnlib/prop_0_0.03.vnnlib"),
        );
        out.push(("mnist_256x2_prop_0_0.03".to_string(), g, s));
    }
    out
}

fn engines(c: &mut Criterion) {
    let problems = problems();
    for method in [Method::Ibp, Method::Crown, Method::AlphaCrown] {
        let mut group = c.benchmark_group(method.name());
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for (name, graph, spec) in &problems {
            group.bench_function(name.as_str(), |b| {
                b.iter(|| spec_bounds(graph, method, spec).expect("bounds"))
            });
        }
        group.finish();
    }
}

/// The machine's float64 GEMM rate through the matrix product the engines use (ndarray's `dot`,
/// backed by `matrixmultiply`): a 512×512 by 512×512 product, with the throughput counted in
/// flops (2 per multiply-add), so criterion's "elem/s" reads as FLOP/s. The comparison harness
/// reports the CROWN backward passes' achieved rate against this (and numpy's).
fn gemm(c: &mut Criterion) {
    let n = 512;
    let a = Array2::from_shape_fn((n, n), |(i, j)| {
        ((i * 31 + j * 17) % 97) as f64 / 97.0 - 0.5
    });
    let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 13 + j * 7) % 89) as f64 / 89.0 - 0.5);
    let mut group = c.benchmark_group("gemm_f64");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    group.bench_function("ndarray_dot_512", |bch| bch.iter(|| a.dot(&b)));
    group.finish();
}

criterion_group!(benches, engines, gemm);
criterion_main!(benches);
