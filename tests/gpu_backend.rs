//! The backend test suite, run against every backend without a GPU: the CPU (the reference)
//! and the emulated CUDA backend (the kernels of `kernels/*.cu` compiled for the host by
//! `beacons-emu`, launched with the CUDA backend's grid and block shapes).
//!
//! - `backend_suite!` instantiates each soundness test once per backend: batched CROWN
//!   (`verify::batch::Plan`) over generated networks (MLP, CNN, residual Add/Sub, elementwise
//!   blocks) never excludes the exact value (`eval::exact`) of a point of a box or sub-box.
//! - Parity: every kernel's output agrees with the CPU backend's within the rounding
//!   allowance (the two differ only in how rounding errors are bounded), primitive by
//!   primitive and for whole plans.
//! - The directed-rounding intrinsics of the emulator are exact (checked against rationals).

mod common;

use beacons::backend::{AnyBackend, Backend, Cpu};
use beacons::bounds::ops::{self, Accum};
use beacons::bounds::Interval;
use beacons::engine::BoxBounds;
use beacons::eval::exact::forward_f64_point;
use beacons::ir::random::{random_graph, Family, RandomGraphConfig};
use beacons::ir::Op;
use beacons::verify::batch::{Job, Plan};
use beacons_emu::{intrinsic, Intrinsic};
use common::emulated::emulated;
use common::soundness::{check_inside, points, q};
use ndarray::Array2;
use num_rational::BigRational;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn halves(lo: &[f64], hi: &[f64], i: usize) -> [(Vec<f64>, Vec<f64>); 2] {
    let mid = lo[i] + 0.5 * (hi[i] - lo[i]);
    let mut left_hi = hi.to_vec();
    left_hi[i] = mid;
    let mut right_lo = lo.to_vec();
    right_lo[i] = mid;
    [(lo.to_vec(), left_hi), (right_lo, hi.to_vec())]
}

fn config(families: Vec<Family>, exp: i32) -> RandomGraphConfig {
    RandomGraphConfig {
        families,
        max_width: 6,
        max_layers: 4,
        weight_scale: 10f64.powi(exp),
        smooth_activations: false,
        extra_output_prob: 0.0,
        ..RandomGraphConfig::default()
    }
}

/// A random box of the graph's input, and three specification rows.
fn problem(rng: &mut StdRng, n: usize, m: usize, radius: f64) -> (Vec<f64>, Vec<f64>, Array2<f64>) {
    let centre: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let lo = centre
        .iter()
        .map(|c| c - radius * rng.random::<f64>())
        .collect();
    let hi = centre
        .iter()
        .map(|c| c + radius * rng.random::<f64>())
        .collect();
    let c = Array2::from_shape_fn((3, m), |_| rng.random_range(-2.0..2.0));
    (lo, hi, c)
}

/// The root box and its four quarter boxes (one batch, inheriting from the root) are bounded
/// on `backend`; no bound excludes an exact value of its box.
fn batched_bounds_contain_exact_values(
    backend: AnyBackend,
    seed: u64,
    exp: i32,
    width_exp: i32,
    families: Vec<Family>,
) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let g = random_graph(&mut rng, &config(families, exp));
    let (n, m) = (g.input_size(), g.output_size());
    let (lo, hi, c) = problem(&mut rng, n, m, 10f64.powi(width_exp));
    let Ok(plan) = Plan::with_backend(&g, backend) else {
        return Ok(());
    };
    let root = Job {
        lo: lo.clone(),
        hi: hi.clone(),
        inherited: None,
    };
    let root_b = match plan.bound(&g, &c, std::slice::from_ref(&root)) {
        Ok(mut b) => b.remove(0),
        Err(e) => {
            prop_assert!(
                e.to_string().contains("not supported"),
                "unexpected error: {e}"
            );
            return Ok(());
        }
    };
    let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
    let mut quarters = Vec::new();
    for (l, h) in halves(&lo, &hi, i) {
        for (l2, h2) in halves(&l, &h, j) {
            quarters.push(Job {
                lo: l2,
                hi: h2,
                inherited: Some(root_b.inherited.clone()),
            });
        }
    }
    let qb = plan.bound(&g, &c, &quarters).expect("bounded once");
    for (job, b) in std::iter::once((&root, &root_b)).chain(quarters.iter().zip(&qb)) {
        let bb = BoxBounds {
            outputs: b.output.clone(),
            rows: b.rows.clone(),
        };
        let boxed = Interval::new(job.lo.clone(), job.hi.clone());
        for p in points(&mut rng, &boxed, 12, 8) {
            let ys = forward_f64_point(&g, &p).expect("exact evaluation");
            check_inside(&ys, &bb, &c, plan_name(&plan))?;
        }
    }
    Ok(())
}

fn plan_name(_plan: &Plan) -> &'static str {
    "batched crown"
}

/// Instantiates every soundness test of the suite once per backend.
macro_rules! backend_suite {
    ($($module:ident => $backend:expr, $cases:expr;)*) => {$(
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: $cases, ..ProptestConfig::default() })]

                #[test]
                fn mlp_bounds_contain_exact_values(seed in any::<u64>(), exp in -2i32..=2, w in -3i32..=1) {
                    batched_bounds_contain_exact_values($backend, seed, exp, w, vec![Family::Mlp])?;
                }

                #[test]
                fn cnn_and_residual_bounds_contain_exact_values(seed in any::<u64>(), exp in -1i32..=1, w in -2i32..=0) {
                    batched_bounds_contain_exact_values(
                        $backend, seed, exp, w, vec![Family::Cnn, Family::Residual, Family::Elementwise],
                    )?;
                }
            }
        }
    )*};
}

backend_suite! {
    cpu => AnyBackend::Cpu, 48;
    emulated_cuda => emulated(), 32;
}

/// Whole plans: the emulated backend's rows and output enclosures agree with the CPU's to
/// within a relative 1e-9 (both are sound; they differ in how rounding is bounded), on every
/// problem where both backends relax the same neurons. (Where a pre-activation bound is
/// within rounding of 0 one backend may prove the neuron stable and the other not, e.g. a
/// directed-rounding interval step giving exactly 0 where the CPU's centre-radius step gives
/// -1e-13; CROWN's choices, and so its bounds, then differ by more than rounding.)
#[test]
fn plans_agree_with_the_cpu() {
    let cpu = AnyBackend::Cpu;
    let emu = emulated();
    let mut compared = 0;
    for seed in 0..24u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let fam = if seed % 2 == 0 {
            Family::Mlp
        } else {
            Family::Residual
        };
        let g = random_graph(&mut rng, &config(vec![fam], 0));
        let (lo, hi, c) = problem(&mut rng, g.input_size(), g.output_size(), 0.5);
        let (Ok(pc), Ok(pe)) = (
            Plan::with_backend(&g, cpu.clone()),
            Plan::with_backend(&g, emu.clone()),
        ) else {
            continue;
        };
        let jobs = [Job {
            lo,
            hi,
            inherited: None,
        }];
        let (Ok(bc), Ok(be)) = (pc.bound(&g, &c, &jobs), pe.bound(&g, &c, &jobs)) else {
            continue;
        };
        let unstable = |b: &Interval| -> Vec<bool> {
            (0..b.len())
                .map(|j| b.lo[j] < 0.0 && b.hi[j] > 0.0)
                .collect()
        };
        let same_relaxation =
            bc[0]
                .inherited
                .iter()
                .zip(be[0].inherited.iter())
                .all(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) => unstable(x) == unstable(y),
                    (None, None) => true,
                    _ => false,
                });
        if !same_relaxation {
            continue;
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        for (x, y) in bc[0].rows.iter().zip(&be[0].rows) {
            assert!(close(*x, *y), "seed {seed}: cpu row {x} vs emulated {y}");
        }
        for (x, y) in bc[0].output.lo.iter().zip(&be[0].output.lo) {
            assert!(
                close(*x, *y),
                "seed {seed}: cpu output lower {x} vs emulated {y}"
            );
        }
        compared += 1;
    }
    assert!(compared >= 12, "only {compared} plans compared");
}

/// A random Linear node's graph, from the generator (the first Linear of an MLP).
fn linear_graph(rng: &mut StdRng) -> Option<(beacons::ir::Graph, usize)> {
    let g = random_graph(rng, &config(vec![Family::Mlp], 0));
    let k = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::Linear { .. }))?;
    Some((g, k))
}

fn rand_box(rng: &mut StdRng, n: usize) -> Interval {
    common::soundness::random_box(rng, n, 0.7)
}

fn rel_close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + scale)
}

/// Each device primitive against the CPU's on the same inputs.
#[test]
fn every_kernel_agrees_with_the_cpu() {
    let emu = emulated();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..12 {
        let Some((g, k)) = linear_graph(&mut rng) else {
            continue;
        };
        let node = &g.nodes[k];
        let n_in = g.value(node.inputs[0]).size();
        let boxes: Vec<Interval> = (0..3).map(|_| rand_box(&mut rng, n_in)).collect();
        // affine_interval_f64: both enclose, and the ends agree closely.
        let ins: Vec<Vec<&Interval>> = boxes.iter().map(|b| vec![b]).collect();
        let ic = Cpu.interval_batch(&g, node, &ins).unwrap();
        let ie = emu.interval_batch(&g, node, &ins).unwrap();
        for (a, b) in ic.iter().zip(&ie) {
            for j in 0..a.len() {
                let s = a.hi[j].abs().max(a.lo[j].abs());
                assert!(rel_close(a.lo[j], b.lo[j], s) && rel_close(a.hi[j], b.hi[j], s));
            }
        }
        // matmul_f64, abs_matvec_up_f64, dot_with_error_f64 (Linear's backward step).
        let n_out = g.value(node.output).size();
        let rows = 5;
        let lam = Array2::from_shape_fn((rows, n_out), |_| rng.random_range(-3.0..3.0));
        let (mut ac, mut ae) = (Accum::new(rows), Accum::new(rows));
        let refs = [&boxes[0]];
        let lc = Cpu.backward_affine(&g, node, &lam, &refs, &mut ac).unwrap();
        let le = emu.backward_affine(&g, node, &lam, &refs, &mut ae).unwrap();
        for (x, y) in lc[0].iter().zip(le[0].iter()) {
            assert!(rel_close(*x, *y, x.abs()), "product {x} vs {y}");
        }
        for i in 0..rows {
            assert!(rel_close(ac.bias[i], ae.bias[i], ac.bias[i].abs()));
            // Both allowances are tiny and of the same order.
            assert!(ae.err[i] > 0.0 && ae.err[i] <= 4.0 * ac.err[i] + 1e-300);
        }
        // relax_rows_f64: ReLU relaxation per box, rows stacked in three blocks.
        let relu = beacons::ir::Node {
            name: "relu".into(),
            op: Op::Relu,
            inputs: vec![node.output],
            output: node.output,
        };
        let pre: Vec<Interval> = (0..3).map(|_| rand_box(&mut rng, n_out)).collect();
        let lam = Array2::from_shape_fn((6, n_out), |_| rng.random_range(-3.0..3.0));
        let blocks: Vec<(std::ops::Range<usize>, &Interval)> =
            (0..3).map(|b| (2 * b..2 * b + 2, &pre[b])).collect();
        let (mut ac, mut ae) = (Accum::new(6), Accum::new(6));
        let rc = Cpu
            .backward_leaky_blocks(&relu, &lam, &blocks, &mut ac)
            .unwrap();
        let re = emu
            .backward_leaky_blocks(&relu, &lam, &blocks, &mut ae)
            .unwrap();
        for (x, y) in rc.iter().zip(re.iter()) {
            assert!(rel_close(*x, *y, x.abs()), "relaxed {x} vs {y}");
        }
        for i in 0..6 {
            assert!(rel_close(ac.bias[i], ae.bias[i], ac.bias[i].abs()));
            assert!(ae.err[i] <= 4.0 * ac.err[i] + 1e-300);
        }
        // concretize_f64.
        let cc = Cpu.concretize_blocks(rc.view(), &blocks, &ac).unwrap();
        let ce = emu.concretize_blocks(rc.view(), &blocks, &ac).unwrap();
        for (x, y) in cc.iter().zip(&ce) {
            assert!(rel_close(*x, *y, x.abs()), "concretised {x} vs {y}");
        }
        let direct = ops::concretize_rows(rc.slice(ndarray::s![0..2, ..]), &pre[0], &ac, 0);
        assert_eq!(direct, cc[0..2].to_vec());
    }
}

fn exact(op: Intrinsic, a: f64, b: f64, c: f64) -> BigRational {
    use Intrinsic::*;
    match op {
        DaddRn | DaddRd | DaddRu => q(a) + q(b),
        DsubRn | DsubRd | DsubRu => q(a) - q(b),
        DmulRn | DmulRd | DmulRu => q(a) * q(b),
        DdivRd | DdivRu => q(a) / q(b),
        FmaRn | FmaRd | FmaRu => q(a) * q(b) + q(c),
    }
}

fn any_finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |x| x.is_finite()),
        -10.0f64..10.0,
        (-1.0f64..1.0).prop_map(|x| x * 1e-300),
        (-1.0f64..1.0).prop_map(|x| x * 1e-320),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// `__dadd_rd` & co. of the emulator round exactly: a downward result is the largest float
    /// at or below the exact value, an upward one the smallest at or above, a nearest one is
    /// within half an ulp (checked as: the exact value lies between its neighbours).
    #[test]
    fn emulated_intrinsics_round_exactly(a in any_finite(), b in any_finite(), c in any_finite()) {
        use Intrinsic::*;
        for op in [DaddRn, DaddRd, DaddRu, DsubRn, DsubRd, DsubRu, DmulRn, DmulRd, DmulRu,
                   DdivRd, DdivRu, FmaRn, FmaRd, FmaRu] {
            if matches!(op, DdivRd | DdivRu) && b == 0.0 {
                continue;
            }
            let r = intrinsic(op, a, b, c);
            if !(r.is_finite() && r.next_up().is_finite() && r.next_down().is_finite()) {
                continue; // overflow: the exact value is not a rational to compare with
            }
            let x = exact(op, a, b, c);
            match op {
                DaddRd | DsubRd | DmulRd | DdivRd | FmaRd => {
                    prop_assert!(q(r) <= x && q(r.next_up()) > x, "{op:?}({a:e}, {b:e}, {c:e}) = {r:e}");
                }
                DaddRu | DsubRu | DmulRu | DdivRu | FmaRu => {
                    prop_assert!(q(r) >= x && q(r.next_down()) < x, "{op:?}({a:e}, {b:e}, {c:e}) = {r:e}");
                }
                _ => {
                    let half_up = (q(r) + q(r.next_up())) / BigRational::from_integer(2.into());
                    let half_down = (q(r) + q(r.next_down())) / BigRational::from_integer(2.into());
                    prop_assert!(half_down <= x && x <= half_up, "{op:?}({a:e}, {b:e}, {c:e}) = {r:e}");
                }
            }
        }
    }
}

/// Directed rounding differs from nearest where it must: 1 + 2^-60 rounds down to 1 and up
/// to the next float above 1.
#[test]
fn emulated_intrinsics_round_in_their_direction() {
    let t = 2f64.powi(-60);
    assert_eq!(intrinsic(Intrinsic::DaddRd, 1.0, t, 0.0), 1.0);
    assert_eq!(intrinsic(Intrinsic::DaddRu, 1.0, t, 0.0), 1.0f64.next_up());
    assert_eq!(intrinsic(Intrinsic::DaddRn, 1.0, t, 0.0), 1.0);
    let e = 1.0 + 2f64.powi(-52);
    assert_eq!(
        intrinsic(Intrinsic::DmulRd, e, e, 0.0),
        1.0 + 2f64.powi(-51)
    );
    assert_eq!(
        intrinsic(Intrinsic::DmulRu, e, e, 0.0),
        (1.0 + 2f64.powi(-51)).next_up()
    );
    assert_eq!(
        intrinsic(Intrinsic::FmaRd, e, e, -1.0),
        2f64.powi(-51) + 2f64.powi(-104)
    );
    assert_eq!(
        intrinsic(Intrinsic::DsubRd, 0.0, f64::from_bits(1), 0.0),
        -f64::from_bits(1)
    );
}

/// `beacons bounds --device cuda` (batched CROWN on a device, `crown_on`) run on the emulated
/// device: on the shipped examples its bounds contain every exactly evaluated point and agree
/// with the same computation on the CPU backend.
#[test]
fn bounds_on_a_device_are_sound_and_match_the_cpu_plan() {
    use beacons::cli::commands::bounds::crown_on;
    use beacons::ir::passes::{canonicalize, Level};
    let root = common::root();
    for (model, spec) in [
        (
            "models/dose_response.onnx",
            "specs/dose_response_range.vnnlib",
        ),
        (
            "models/sepsis_risk.onnx",
            "specs/sepsis_high_lactate.vnnlib",
        ),
        (
            "models/dose_response.onnx",
            "specs/dose_response_high_dose.vnnlib",
        ),
    ] {
        let m = beacons::ir::load_model(&root.join(model)).expect("shipped model");
        let spec = beacons::spec::load(&root.join(spec)).expect("shipped property");
        let mut g = m.graph;
        canonicalize(&mut g, Level::Exact);
        let on_emu = crown_on(&g, &spec, &emulated()).expect("bounded on the emulator");
        let on_cpu = crown_on(&g, &spec, &AnyBackend::Cpu).expect("bounded on the cpu");
        let mut rng = StdRng::seed_from_u64(1);
        for ((e, c), region) in on_emu.iter().zip(&on_cpu).zip(&spec.regions) {
            for (a, b) in e
                .lower
                .iter()
                .zip(&c.lower)
                .chain(e.upper.iter().zip(&c.upper))
            {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                    "{model}: {a} vs {b}"
                );
            }
            let boxed = Interval::new(region.input.lower.clone(), region.input.upper.clone());
            for p in points(&mut rng, &boxed, 8, 8) {
                let ys = forward_f64_point(&g, &p).expect("exact evaluation");
                for (j, y) in ys.iter().enumerate() {
                    assert!(
                        q(e.lower[j]) <= y.hi && q(e.upper[j]) >= y.lo,
                        "{model}: output {j}"
                    );
                }
            }
        }
    }
}

/// A Conv's backward step on the device (the convolution as a dense matrix through
/// `matmul_f64` and the error kernels) against the CPU's stencil rule, two blocks of rows over
/// two boxes.
#[test]
fn conv_step_agrees_with_the_cpu() {
    let emu = emulated();
    let mut seen = 0;
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let g = random_graph(&mut rng, &config(vec![Family::Cnn], 0));
        let Some(node) = g.nodes.iter().find(|n| matches!(n.op, Op::Conv(_))) else {
            continue;
        };
        let (n_in, n_out) = (g.value(node.inputs[0]).size(), g.value(node.output).size());
        let boxes = [rand_box(&mut rng, n_in), rand_box(&mut rng, n_in)];
        let lam = Array2::from_shape_fn((7, n_out), |_| rng.random_range(-3.0..3.0));
        let blocks = vec![(0..3, vec![&boxes[0]]), (3..7, vec![&boxes[1]])];
        let (mut ac, mut ae) = (Accum::new(7), Accum::new(7));
        let lc = Cpu
            .backward_blocks(&g, node, &lam, &blocks, &mut ac)
            .unwrap();
        let le = emu
            .backward_blocks(&g, node, &lam, &blocks, &mut ae)
            .unwrap();
        for (x, y) in lc[0].iter().zip(le[0].iter()) {
            assert!(
                rel_close(*x, *y, x.abs()),
                "seed {seed}: conv coefficient {x} vs {y}"
            );
        }
        for i in 0..7 {
            assert!(
                rel_close(ac.bias[i], ae.bias[i], ac.bias[i].abs()),
                "seed {seed}: bias"
            );
            assert!(
                ae.err[i] > 0.0 && ae.err[i] <= 4.0 * ac.err[i] + 1e-300,
                "seed {seed}: err"
            );
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} convolutions compared");
}

/// Counts the kernel launches of the emulated device, to show which primitives a plan runs
/// on it.
#[derive(Default)]
struct Counting {
    calls: std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>,
}

impl Counting {
    fn hit(&self, k: &'static str) {
        *self.calls.lock().unwrap().entry(k).or_default() += 1;
    }
}

impl beacons::backend::device::Kernels for Counting {
    fn name(&self) -> &'static str {
        "counting-emulated-cuda"
    }
    fn affine_interval(
        &self,
        w: &[f64],
        bias: Option<&[f64]>,
        n_out: usize,
        n_in: usize,
        xlo: &[f64],
        xhi: &[f64],
    ) -> beacons::Result<(Vec<f64>, Vec<f64>)> {
        self.hit("affine_interval_f64");
        common::emulated::Emulated.affine_interval(w, bias, n_out, n_in, xlo, xhi)
    }
    fn matmul(
        &self,
        a: &[f64],
        b: &[f64],
        m: usize,
        k: usize,
        n: usize,
    ) -> beacons::Result<Vec<f64>> {
        self.hit("matmul_f64");
        common::emulated::Emulated.matmul(a, b, m, k, n)
    }
    fn abs_matvec_up(
        &self,
        a: &[f64],
        rows: usize,
        cols: usize,
        x: &[f64],
    ) -> beacons::Result<Vec<f64>> {
        self.hit("abs_matvec_up_f64");
        common::emulated::Emulated.abs_matvec_up(a, rows, cols, x)
    }
    fn dot_with_error(
        &self,
        a: &[f64],
        rows: usize,
        cols: usize,
        b: &[f64],
    ) -> beacons::Result<(Vec<f64>, Vec<f64>)> {
        self.hit("dot_with_error_f64");
        common::emulated::Emulated.dot_with_error(a, rows, cols, b)
    }
    fn relax_rows(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lines: &beacons::backend::device::Lines,
        row_box: &[u32],
    ) -> beacons::Result<beacons::backend::device::Relaxed> {
        self.hit("relax_rows_f64");
        common::emulated::Emulated.relax_rows(lam, rows, n, lines, row_box)
    }
    fn concretize(
        &self,
        lam: &[f64],
        rows: usize,
        n: usize,
        lo: &[f64],
        hi: &[f64],
        row_box: &[u32],
        bias: &[f64],
        err: &[f64],
    ) -> beacons::Result<Vec<f64>> {
        self.hit("concretize_f64");
        common::emulated::Emulated.concretize(lam, rows, n, lo, hi, row_box, bias, err)
    }
}

/// The device really runs the plan: bounding a batch of boxes of a CNN (Conv, ReLU, Linear
/// with biases) launches every kernel family, no primitive silently stays on the host.
#[test]
fn a_cnn_plan_launches_every_kernel() {
    use beacons::backend::device::{DeviceBackend, Kernels};
    use beacons::backend::kernels::FAMILIES;
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let g = random_graph(&mut rng, &config(vec![Family::Cnn], 0));
        let has = |f: fn(&Op) -> bool| g.nodes.iter().any(|n| f(&n.op));
        let conv_bias = |o: &Op| matches!(o, Op::Conv(c) if c.bias.is_some());
        let linear_bias = |o: &Op| matches!(o, Op::Linear { bias: Some(_), .. });
        if !(has(conv_bias) && has(linear_bias) && has(|o| matches!(o, Op::Relu))) {
            continue;
        }
        let counting = std::sync::Arc::new(DeviceBackend::new(Counting::default()));
        let Ok(plan) = Plan::with_backend(&g, AnyBackend::Shared(counting.clone())) else {
            continue;
        };
        let (n, m) = (g.input_size(), g.output_size());
        let (lo, hi, c) = problem(&mut rng, n, m, 0.5);
        let jobs: Vec<Job> = (0..3)
            .map(|_| Job {
                lo: lo.clone(),
                hi: hi.clone(),
                inherited: None,
            })
            .collect();
        if plan.bound(&g, &c, &jobs).is_err() {
            continue;
        }
        let calls = counting.kernels.calls.lock().unwrap().clone();
        if !calls.contains_key("relax_rows_f64") {
            continue; // no unstable neuron on this box: nothing to relax
        }
        assert_eq!(counting.kernels.name(), "counting-emulated-cuda");
        for family in FAMILIES {
            for name in family.entry_points {
                assert!(
                    calls.contains_key(name),
                    "seed {seed}: {name} never launched: {calls:?}"
                );
            }
        }
        return;
    }
    panic!("no generated CNN with biased Conv and Linear layers and unstable ReLUs");
}
