//! The `lp` method and the exact MILP encoding.
//!
//! (a) On random piecewise-linear networks, `lp` bounds contain the exact (rational) values at
//! random points and box vertices, and are never looser than `alpha-crown`'s or `crown`'s.
//! (b) The MILP optimum (float, test ground truth) is attained — exact evaluation at its
//! minimiser reproduces it — lies below every sampled point, and above the `lp` lower bound.
//! (c) On ACAS Xu instances, `lp` is never looser than `crown` on any output or margin and
//! strictly tighter on at least one; the figures are printed.

mod common;

use std::time::Instant;

use beacons::engine::property::region_bounds;
use beacons::engine::{self, lp, milp, Method};
use beacons::eval::exact::forward_f64_point;
use beacons::ir::passes::{canonicalize, Level};
use beacons::ir::random::{random_graph, Family, RandomGraphConfig};
use beacons::ir::{load_model, Graph};
use common::soundness::{check_inside, check_nested, points, q, random_box};
use ndarray::Array2;
use num_traits::ToPrimitive;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn network(seed: u64, families: Vec<Family>, width: usize, layers: usize, scale: f64) -> Graph {
    let mut rng = StdRng::seed_from_u64(seed);
    let cfg = RandomGraphConfig {
        families,
        max_width: width,
        max_layers: layers,
        weight_scale: scale,
        smooth_activations: false,
        extra_output_prob: 0.0,
        ..RandomGraphConfig::default()
    };
    random_graph(&mut rng, &cfg)
}

/// The exact value of `row · Y` at `ys` as a float (the midpoint of its enclosure).
fn row_value(row: &[f64], ys: &[beacons::eval::exact::RatInterval]) -> f64 {
    let mut v = q(0.0);
    for (a, y) in row.iter().zip(ys) {
        v += q(*a) * (&y.lo + &y.hi) / q(2.0);
    }
    v.to_f64().expect("finite")
}

#[test]
fn lp_contains_exact_values_and_is_inside_crown() {
    let mut tried = 0;
    let mut tighter = 0;
    let mut lps = 0;
    let mut lp_seconds = 0.0;
    let mut refused = Vec::new();
    let families = [
        vec![Family::Mlp],
        vec![Family::Mlp],
        vec![Family::Residual, Family::Elementwise],
    ];
    for seed in 0..120u64 {
        let fam = families[seed as usize % families.len()].clone();
        let scale = 10f64.powi((seed % 7) as i32 - 3);
        let g = network(seed, fam, 6, 4, scale);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x1b);
        let b = random_box(
            &mut rng,
            g.input_size(),
            [0.05, 0.5, 2.0][seed as usize % 3],
        );
        let m = g.output_size();
        let c = Array2::from_shape_fn((3, m), |_| rng.random_range(-2.0..2.0));
        let crown = engine::compute(&g, Method::Crown, &b, Some(&c)).expect("crown");
        let alpha = engine::compute(&g, Method::AlphaCrown, &b, Some(&c));
        let t = Instant::now();
        let (out, stats) = match lp::bounds_with_stats(&g, &b, Some(&c)) {
            Ok(r) => r,
            Err(e) => {
                assert!(e.to_string().contains("not supported"), "seed {seed}: {e}");
                refused.push(e.to_string().split('`').nth(1).unwrap_or("?").to_string());
                continue;
            }
        };
        lp_seconds += t.elapsed().as_secs_f64();
        lps += stats.solved;
        assert_eq!(
            stats.failed, 0,
            "seed {seed}: the LP solver failed: {:?} ({stats:?})",
            stats.failure
        );
        assert_eq!(
            engine::compute(&g, Method::Lp, &b, Some(&c)).expect("lp"),
            out,
            "seed {seed}: Method::Lp dispatches to lp::bounds"
        );
        tried += 1;
        for p in points(&mut rng, &b, 32, 40) {
            let ys = forward_f64_point(&g, &p).expect("exact evaluation");
            check_inside(&ys, &out, &c, "lp").unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        // lp ⊆ alpha-crown ⊆ crown, and count where lp is strictly tighter than crown.
        let alpha = alpha.expect("alpha-crown bounds what lp bounds");
        check_nested(&out, &alpha, "lp in alpha-crown")
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let mut strictly = false;
        for j in 0..m {
            assert!(out.outputs.lo[j] >= crown.outputs.lo[j], "seed {seed}");
            assert!(out.outputs.hi[j] <= crown.outputs.hi[j], "seed {seed}");
            strictly |=
                out.outputs.lo[j] > crown.outputs.lo[j] + 1e-9 * (1.0 + crown.outputs.lo[j].abs());
            strictly |=
                out.outputs.hi[j] < crown.outputs.hi[j] - 1e-9 * (1.0 + crown.outputs.hi[j].abs());
        }
        for i in 0..c.nrows() {
            assert!(out.rows[i] >= crown.rows[i], "seed {seed}");
            strictly |= out.rows[i] > crown.rows[i] + 1e-9 * (1.0 + crown.rows[i].abs());
        }
        tighter += strictly as usize;
    }
    eprintln!(
        "lp on random networks: {tried} bounded, strictly tighter than crown on {tighter}; \
         {lps} LPs, {:.2} ms per LP; refused (op): {refused:?}",
        1e3 * lp_seconds / lps.max(1) as f64
    );
    assert!(tried >= 80, "only {tried}/120 random networks were bounded");
    assert!(
        tighter >= 5,
        "lp tighter than crown on only {tighter}/{tried}"
    );
}

/// Most unstable neurons (binaries) a MILP of the ground-truth test may have.
const MAX_BINARIES: usize = 16;

#[test]
fn milp_optimum_is_attained_and_above_the_lp_bound() {
    let mut checked = 0;
    let mut binaries = 0;
    let mut gap = 0.0f64;
    let mut other_families = 0;
    let mut skipped = 0;
    for seed in 0..60u64 {
        // Two in three: ReLU MLPs; else convolutional and residual networks (the exact
        // evaluation at the minimiser then also checks the dense expansion of Conv, Add, ...).
        let fam = if seed % 3 == 2 {
            vec![Family::Cnn, Family::Residual, Family::Elementwise]
        } else {
            vec![Family::Mlp]
        };
        let width = if seed % 3 == 2 { 4 } else { 6 };
        let g = network(1000 + seed, fam, width, 3, 1.0);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x7e);
        let b = random_box(&mut rng, g.input_size(), 1.0);
        let m = g.output_size();
        let c = Array2::from_shape_fn((2, m), |_| rng.random_range(-2.0..2.0));
        let (lpb, stats) = match lp::bounds_with_stats(&g, &b, Some(&c)) {
            Ok(r) => r,
            Err(e) if seed % 3 == 2 && e.to_string().contains("not supported") => continue,
            Err(e) => panic!("seed {seed}: {e}"),
        };
        // Branch and bound is exponential in the unstable neurons: small problems only.
        if stats.unstable > MAX_BINARIES {
            skipped += 1;
            continue;
        }
        other_families += usize::from(seed % 3 == 2);
        let samples = points(&mut rng, &b, 32, 60);
        let exact: Vec<_> = samples
            .iter()
            .map(|p| forward_f64_point(&g, p).expect("exact evaluation"))
            .collect();
        for (i, row) in c.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let opt = milp::minimize(&g, &b, &row).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            binaries += opt.binaries;
            let tol = 1e-6 * (1.0 + opt.value.abs());
            // Attained: exact evaluation at the minimiser gives the optimum.
            let at = row_value(&row, &forward_f64_point(&g, &opt.input).expect("exact"));
            assert!(
                (at - opt.value).abs() <= 1e2 * tol,
                "seed {seed} row {i}: MILP optimum {} but {at} at its minimiser",
                opt.value
            );
            // A minimum: no sampled point is below it.
            for ys in &exact {
                let v = row_value(&row, ys);
                assert!(
                    v >= opt.value - tol,
                    "seed {seed} row {i}: point value {v} below the MILP optimum {}",
                    opt.value
                );
            }
            // The LP relaxation's sound bound is below the true minimum.
            assert!(
                lpb.rows[i] <= opt.value + tol,
                "seed {seed} row {i}: lp bound {} above the MILP optimum {}",
                lpb.rows[i],
                opt.value
            );
            gap = gap.max(opt.value - lpb.rows[i]);
            checked += 1;
        }
    }
    eprintln!(
        "milp: {checked} optima checked ({other_families} conv/residual networks), \
         {binaries} binaries in all, largest gap to lp {gap:.3e}; {skipped} networks with \
         over {MAX_BINARIES} unstable neurons skipped"
    );
    assert!(
        other_families >= 5,
        "only {other_families} conv/residual networks"
    );
    assert!(
        binaries > 0,
        "no unstable neuron: the MILP was never exercised"
    );
}

#[test]
fn lp_is_never_looser_than_crown_on_acasxu() {
    let Some(dir) = common::benchmarks("lp_is_never_looser_than_crown_on_acasxu") else {
        return;
    };
    let dir = dir.join("acasxu");
    // A handful of instances across properties and networks.
    let instances = [
        (
            "onnx/ACASXU_run2a_1_1_batch_2000.onnx",
            "vnnlib/prop_1.vnnlib",
        ),
        (
            "onnx/ACASXU_run2a_2_3_batch_2000.onnx",
            "vnnlib/prop_2.vnnlib",
        ),
        (
            "onnx/ACASXU_run2a_3_4_batch_2000.onnx",
            "vnnlib/prop_3.vnnlib",
        ),
        (
            "onnx/ACASXU_run2a_4_5_batch_2000.onnx",
            "vnnlib/prop_4.vnnlib",
        ),
        (
            "onnx/ACASXU_run2a_1_1_batch_2000.onnx",
            "vnnlib/prop_5.vnnlib",
        ),
        (
            "onnx/ACASXU_run2a_1_9_batch_2000.onnx",
            "vnnlib/prop_7.vnnlib",
        ),
    ];
    let mut tried = 0;
    let mut tighter_instances = 0;
    let mut bounds_total = 0;
    let mut bounds_tighter = 0;
    let mut lps = 0;
    let mut lp_seconds = 0.0;
    let mut crown_seconds = 0.0;
    let (mut proved_lp, mut proved_crown) = (0, 0);
    let (mut width_lp, mut width_crown) = (0.0, 0.0);
    for (onnx, vnnlib) in instances {
        let mut g = load_model(&dir.join(onnx)).expect("model loads").graph;
        canonicalize(&mut g, Level::Exact);
        let spec = beacons::spec::load(&dir.join(vnnlib)).expect("spec parses");
        for region in &spec.regions {
            let t = Instant::now();
            let crown = region_bounds(&g, Method::Crown, region).expect("crown");
            crown_seconds += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let lpb = region_bounds(&g, Method::Lp, region).expect("lp");
            lp_seconds += t.elapsed().as_secs_f64();
            // The number of LPs behind it (outputs × 2 + atoms), for the per-LP time.
            let atoms: usize = region.unsafe_outputs.iter().map(|c| c.atoms.len()).sum();
            lps += 2 * crown.lower.len() + atoms;
            let mut any = false;
            let mut cmp = |ours: f64, theirs: f64, what: &str| {
                assert!(
                    ours >= theirs,
                    "{onnx} {vnnlib}: lp {what} {ours} looser than crown {theirs}"
                );
                bounds_total += 1;
                if ours > theirs + 1e-9 * (1.0 + theirs.abs()) {
                    bounds_tighter += 1;
                    any = true;
                }
            };
            for j in 0..crown.lower.len() {
                cmp(lpb.lower[j], crown.lower[j], "lower");
                cmp(-lpb.upper[j], -crown.upper[j], "upper");
            }
            for (d, e) in lpb.margins.iter().zip(&crown.margins) {
                for (a, b) in d.iter().zip(e) {
                    cmp(*a, *b, "margin");
                    proved_lp += usize::from(*a > 0.0);
                    proved_crown += usize::from(*b > 0.0);
                }
            }
            for j in 0..crown.lower.len() {
                width_crown += crown.upper[j] - crown.lower[j];
                width_lp += lpb.upper[j] - lpb.lower[j];
            }
            tried += 1;
            tighter_instances += any as usize;
        }
    }
    eprintln!(
        "ACAS Xu: lp strictly tighter than crown on {tighter_instances}/{tried} problems and \
         {bounds_tighter}/{bounds_total} bounds; crown {:.3} s, lp {:.3} s in all, \
         {:.1} ms per LP ({lps} LPs); output widths {:.1}% of crown's; atoms proved: \
         lp {proved_lp}, crown {proved_crown}",
        crown_seconds,
        lp_seconds,
        1e3 * lp_seconds / lps.max(1) as f64,
        100.0 * width_lp / width_crown
    );
    assert!(
        tighter_instances >= 1,
        "lp never tighter than crown on ACAS Xu"
    );
}

#[test]
fn cli_bounds_method_lp() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("p.vnnlib");
    let mut text = String::new();
    for i in 0..6 {
        text += &format!("(declare-const X_{i} Real)\n");
    }
    for j in 0..3 {
        text += &format!("(declare-const Y_{j} Real)\n");
    }
    for i in 0..6 {
        text += &format!("(assert (>= X_{i} -1.0))\n(assert (<= X_{i} 1.0))\n");
    }
    text += "(assert (or (and (<= Y_0 Y_1)) (and (>= Y_2 0.5) (<= Y_0 -0.5))))\n";
    std::fs::write(&spec, text).unwrap();
    let model = common::root().join("tests/models/fc_gemm_relu.onnx");
    let run = |method: &str| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_beacons"))
            .args(["bounds", "--json", "--method", method])
            .arg(&model)
            .arg(&spec)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (crown, lp) = (run("crown"), run("lp"));
    assert_eq!(lp["method"], "lp");
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    for j in 0..3 {
        assert!(f(&lp["outputs"]["lower"][j]) >= f(&crown["outputs"]["lower"][j]));
        assert!(f(&lp["outputs"]["upper"][j]) <= f(&crown["outputs"]["upper"][j]));
    }
    let margins = |v: &serde_json::Value| -> Vec<f64> {
        v["margins"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d.as_array().unwrap().iter().map(f))
            .collect()
    };
    let (ml, mc) = (margins(&lp), margins(&crown));
    assert_eq!(ml.len(), 3);
    assert!(ml.iter().zip(&mc).all(|(a, b)| a >= b));
    // A smooth activation is refused with a message naming the operator.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beacons"))
        .args(["bounds", "--method", "lp"])
        .arg(common::root().join("models/dose_response.onnx"))
        .arg(common::root().join("specs/dose_response_range.vnnlib"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Tanh") && err.contains("not supported"),
        "{err}"
    );
}
