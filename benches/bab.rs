//! Criterion bench of branch-and-bound throughput: sub-boxes ("domains") bounded per second.
//!
//! Uses the public API the verifier's input-splitting branch-and-bound runs on
//! (`beacons::verify::bab::Problem::bound`: CROWN margins of every atom plus, for a box it does
//! not prove, the steering atom's input coefficients used to choose the split). A batch of
//! sub-boxes of an ACAS Xu box (network 1_1; `prop_1` and `prop_3`), made by bisecting the box
//! `DEPTH` times along its widest inputs in turn, is bounded one after the other (`serial`) and
//! with rayon as branch-and-bound does (`parallel`; `RAYON_NUM_THREADS` sets the threads).
//! Criterion reports the throughput in elements (domains) per second.
//!
//! Needs the VNN-COMP benchmarks (`BEACONS_BENCHMARKS`, default `../shared/benchmarks`); without
//! them the bench prints a message and uses the shipped `models/dose_response.onnx` box instead.
//! `cargo bench --bench bab`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use beacons::ir::passes::{canonicalize, Level};
use beacons::ir::{load_model, Graph};
use beacons::spec::{self, Spec};
use beacons::verify::bab::Problem;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;

/// Bisections of the root box: `2^DEPTH` domains per batch.
const DEPTH: usize = 6;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(model: &Path, property: &Path) -> (Graph, Spec) {
    let mut graph = load_model(model)
        .unwrap_or_else(|e| panic!("{}: {e}", model.display()))
        .graph;
    canonicalize(&mut graph, Level::Exact);
    let spec = spec::load(property).unwrap_or_else(|e| panic!("{}: {e}", property.display()));
    (graph, spec)
}

/// `2^depth` sub-boxes of `[lo, hi]`: each bisection level splits every box along the input
/// that is widest relative to the root box (ties to the lowest index), as input splitting does.
fn sub_boxes(lo: &[f64], hi: &[f64], depth: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let root_width: Vec<f64> = lo.iter().zip(hi).map(|(l, h)| h - l).collect();
    let mut boxes = vec![(lo.to_vec(), hi.to_vec())];
    for _ in 0..depth {
        boxes = boxes
            .into_iter()
            .flat_map(|(l, h)| {
                let mut best = 0;
                let mut best_rel = -1.0;
                for i in 0..l.len() {
                    let rel = if root_width[i] > 0.0 {
                        (h[i] - l[i]) / root_width[i]
                    } else {
                        0.0
                    };
                    if rel > best_rel {
                        best_rel = rel;
                        best = i;
                    }
                }
                let mid = 0.5 * (l[best] + h[best]);
                let (mut h1, mut l2) = (h.clone(), l.clone());
                h1[best] = mid;
                l2[best] = mid;
                [(l, h1), (l2, h)]
            })
            .collect();
    }
    boxes
}

fn problems() -> Vec<(String, Graph, Spec)> {
    let dir = std::env::var_os("BEACONS_BENCHMARKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/benchmarks"));
    let acas = dir.join("acasxu");
    if !acas.is_dir() {
        eprintln!(
            "bab bench: no ACAS Xu benchmark at {} (set BEACONS_BENCHMARKS); \
             bounding sub-boxes of the shipped dose-response model instead",
            acas.display()
        );
        let r = root();
        let (g, s) = load(
            &r.join("models/dose_response.onnx"),
            &r.join("specs/dose_response_range.vnnlib"),
        );
        return vec![("dose_response".to_string(), g, s)];
    }
    ["prop_1", "prop_3"]
        .into_iter()
        .map(|prop| {
            let (g, s) = load(
                &acas.join("onnx/ACASXU_run2a_1_1_batch_2000.onnx"),
                &acas.join(format!("vnnlib/{prop}.vnnlib")),
            );
            (format!("acasxu_1_1_{prop}"), g, s)
        })
        .collect()
}

fn bab(c: &mut Criterion) {
    let problems = problems();
    let mut group = c.benchmark_group("bab_domains");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (name, graph, spec) in &problems {
        let region = &spec.regions[0];
        let problem = Problem::new(graph, region, 0);
        let boxes = sub_boxes(&region.input.lower, &region.input.upper, DEPTH);
        group.throughput(Throughput::Elements(boxes.len() as u64));
        group.bench_function(format!("{name}/serial"), |b| {
            b.iter(|| {
                boxes
                    .iter()
                    .map(|(lo, hi)| problem.bound(lo, hi, true).expect("bound"))
                    .filter(|r| r.steer.is_none())
                    .count()
            })
        });
        group.bench_function(format!("{name}/parallel"), |b| {
            b.iter(|| {
                boxes
                    .par_iter()
                    .map(|(lo, hi)| problem.bound(lo, hi, true).expect("bound"))
                    .filter(|r| r.steer.is_none())
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bab);
criterion_main!(benches);
