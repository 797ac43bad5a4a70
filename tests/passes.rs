//! Canonicalisation passes preserve the function on randomly generated networks, judged by
//! the exact evaluator.
//!
//! For every pass alone and for `canonicalize` at both levels: a random graph (seeded from
//! proptest) and random input points are evaluated exactly before and after.
//!
//! - `Level::Exact`: piecewise-linear results must be equal rationals. Where the evaluator
//!   returns enclosures (Sigmoid, Tanh, BatchNorm), a rewrite may legitimately change the
//!   enclosure's width (merging two Linear layers removes an interval-arithmetic dependency),
//!   so the two enclosures must intersect: both contain the one true value.
//! - `Level::Full`: the rewritten graph holds rounded weights, with per-layer bounds δW, δb
//!   from the `Report`. [`tolerance`] propagates them through the rewritten graph in the
//!   ∞-norm (derivation at the function), and results must agree within it.

use std::collections::BTreeMap;

use beacons::eval::exact::{forward_f64_point, RatInterval};
use beacons::ir::passes::{canonicalize, Ctx, Level, ParamError, Pass, PASSES};
use beacons::ir::random::{random_graph, Family, RandomGraphConfig};
use beacons::ir::{Graph, Op};
use num_rational::BigRational;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random graph and a few input points, from one seed.
fn case(seed: u64) -> (Graph, Vec<Vec<f64>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let exp = rng.random_range(-6i32..=6);
    let cfg = RandomGraphConfig {
        weight_scale: 10f64.powi(exp),
        max_width: 4,
        max_layers: 4,
        ..RandomGraphConfig::default()
    };
    let g = random_graph(&mut rng, &cfg);
    let n = g.input_size();
    let points = (0..2)
        .map(|_| {
            (0..n)
                .map(|_| f64::from(rng.random_range(-2.0f32..2.0)))
                .collect()
        })
        .collect();
    (g, points)
}

/// ∞-norm propagation of parameter perturbations through `g` at input `x`.
///
/// For each value v: `m[v]` bounds |x̃_v| (the exact value in `g`), `e[v]` bounds |x̃_v − x_v|
/// where x_v is the same value computed with the exact (unrounded) parameters. For a layer
/// `y = W̃x̃ + b̃` standing for `Wx + b` with |W̃ − W| ≤ δW, |b̃ − b| ≤ δb entrywise:
/// `ỹ − y = W(x̃ − x) + (W̃ − W)x̃ + (b̃ − b)`, so
/// `e_y ≤ (‖W̃‖∞ + n·δW)·e_x + n·δW·m_x + δb` with n the fan-in. Every other op is
/// Lipschitz in the ∞-norm with the constant used below, and its magnitude bound follows
/// from its formula. The f64 evaluation of these few-term bounds is covered by a 1e-9 slack.
fn tolerance(g: &Graph, rounding: &BTreeMap<String, ParamError>, x: &[f64]) -> Vec<f64> {
    let nv = g.values.len();
    let (mut m, mut e) = (vec![0.0f64; nv], vec![0.0f64; nv]);
    let xmax = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    for v in &g.inputs {
        m[v.0] = xmax;
    }
    let amax = |it: &mut dyn Iterator<Item = f64>| it.fold(0.0f64, |a, v| a.max(v.abs()));
    for n in &g.nodes {
        let (mi, ei) = (m[n.inputs[0].0], e[n.inputs[0].0]);
        let d = rounding.get(&n.name).copied().unwrap_or_default();
        let (mo, eo) = match &n.op {
            Op::Linear { weight, bias } => {
                let norm = amax(
                    &mut weight
                        .rows()
                        .into_iter()
                        .map(|r| r.iter().map(|w| w.abs()).sum()),
                );
                let bmax = bias.as_ref().map_or(0.0, |b| amax(&mut b.iter().copied()));
                let fan = weight.ncols() as f64;
                affine(norm, bmax, fan, d, mi, ei)
            }
            Op::Conv(c) => {
                let ws = c.weight.shape();
                let rows = c
                    .weight
                    .view()
                    .into_shape_with_order((ws[0], ws[1] * ws[2] * ws[3]));
                let rows = rows.expect("conv weight is contiguous");
                let norm = amax(
                    &mut rows
                        .rows()
                        .into_iter()
                        .map(|r| r.iter().map(|w| w.abs()).sum()),
                );
                let bmax = c
                    .bias
                    .as_ref()
                    .map_or(0.0, |b| amax(&mut b.iter().copied()));
                affine(norm, bmax, (ws[1] * ws[2] * ws[3]) as f64, d, mi, ei)
            }
            Op::AddConst(c) => (mi + amax(&mut c.iter().copied()), ei),
            Op::MulConst(c) => {
                let k = amax(&mut c.iter().copied());
                (k * mi, k * ei)
            }
            Op::DivConst(c) => {
                let k = amax(&mut c.iter().map(|v| 1.0 / v));
                (k * mi, k * ei)
            }
            Op::Add | Op::Sub => {
                let b = n.inputs[1].0;
                (mi + m[b], ei + e[b])
            }
            Op::BatchNorm {
                scale,
                bias,
                mean,
                var,
                epsilon,
            } => {
                let s: Vec<f64> = (0..scale.len())
                    .map(|k| scale[k] / (var[k] + epsilon).sqrt())
                    .collect();
                let smax = amax(&mut s.iter().copied());
                let tmax = amax(&mut (0..s.len()).map(|k| bias[k] - mean[k] * s[k]));
                (smax * mi + tmax, smax * ei)
            }
            Op::LeakyRelu { alpha } => {
                let k = alpha.abs().max(1.0);
                (k * mi, k * ei)
            }
            Op::Sigmoid => (1.0, 0.25 * ei),
            Op::Tanh => (1.0, ei),
            Op::Softmax { .. } => (1.0, ei),
            Op::Relu
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::AveragePool(_)
            | Op::MaxPool(_)
            | Op::GlobalAveragePool => (mi, ei),
        };
        m[n.output.0] = mo * (1.0 + 1e-9);
        e[n.output.0] = eo * (1.0 + 1e-9);
    }
    g.outputs
        .iter()
        .flat_map(|v| std::iter::repeat_n(e[v.0], g.value(*v).size()))
        .collect()
}

fn affine(norm: f64, bmax: f64, fan: f64, d: ParamError, mi: f64, ei: f64) -> (f64, f64) {
    let mo = norm * mi + bmax;
    let eo = (norm + fan * d.weight) * ei + fan * d.weight * mi + d.bias;
    (mo, eo)
}

fn q(x: f64) -> BigRational {
    BigRational::from_float(x).expect("finite")
}

/// Checks `after` against `before` at `x`; `tol` per output scalar (None: exact level).
fn compare(before: &Graph, after: &Graph, x: &[f64], tol: Option<&[f64]>) -> Result<(), String> {
    after.validate()?;
    let a = forward_f64_point(before, x).map_err(|e| e.to_string())?;
    let b = forward_f64_point(after, x).map_err(|e| e.to_string())?;
    if a.len() != b.len() {
        return Err(format!("{} outputs became {}", a.len(), b.len()));
    }
    for (k, (ya, yb)) in a.iter().zip(&b).enumerate() {
        let ok = match tol {
            None if ya.is_point() && yb.is_point() => ya == yb,
            None => intersect(ya, yb, &q(0.0)),
            Some(t) => intersect(ya, yb, &q(t[k])),
        };
        if !ok {
            return Err(format!(
                "output {k}: before {} .. {}, after {} .. {} (tolerance {:?})",
                ya.lo,
                ya.hi,
                yb.lo,
                yb.hi,
                tol.map(|t| t[k])
            ));
        }
    }
    Ok(())
}

/// Whether the intervals come within `t` of each other.
fn intersect(a: &RatInterval, b: &RatInterval, t: &BigRational) -> bool {
    b.lo <= &a.hi + t && a.lo <= &b.hi + t
}

/// Runs one pass (or all, `None`) at `level` on a random case and checks it.
fn check(seed: u64, pass: Option<&dyn Pass>, level: Level) -> Result<(), TestCaseError> {
    let (g, points) = case(seed);
    let mut h = g.clone();
    let rounding = match pass {
        Some(p) => {
            let mut ctx = Ctx::new(level);
            p.run(&mut h, &mut ctx);
            ctx.errors
        }
        None => {
            let report = canonicalize(&mut h, level);
            prop_assert!(h.nodes.len() <= g.nodes.len());
            prop_assert_eq!(report.nodes_after, h.nodes.len());
            if level == Level::Exact {
                prop_assert!(report.rounding.is_empty());
            }
            report.rounding
        }
    };
    if level == Level::Exact {
        prop_assert!(rounding.is_empty(), "exact level rounded: {rounding:?}");
    }
    // Inputs and outputs keep their names and shapes.
    let names = |g: &Graph, vs: &[beacons::ir::ValueId]| -> Vec<(String, Vec<usize>)> {
        vs.iter()
            .map(|v| (g.value(*v).name.clone(), g.value(*v).shape.clone()))
            .collect()
    };
    prop_assert_eq!(names(&g, &g.inputs), names(&h, &h.inputs));
    prop_assert_eq!(names(&g, &g.outputs), names(&h, &h.outputs));
    for x in &points {
        let tol = (level == Level::Full).then(|| tolerance(&h, &rounding, x));
        if let Err(e) = compare(&g, &h, x, tol.as_deref()) {
            return Err(TestCaseError::fail(format!(
                "seed {seed}: {e}\nbefore:\n{g}\nafter:\n{h}"
            )));
        }
    }
    Ok(())
}

fn pass(name: &str) -> &'static dyn Pass {
    PASSES
        .iter()
        .find(|p| p.name == name)
        .map(|p| p as &dyn Pass)
        .expect("pass exists")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn identity_preserves_the_function(seed in any::<u64>()) {
        check(seed, Some(pass("identity")), Level::Exact)?;
    }

    #[test]
    fn shape_chain_preserves_the_function(seed in any::<u64>()) {
        check(seed, Some(pass("shape_chain")), Level::Exact)?;
    }

    #[test]
    fn const_merge_preserves_the_function(seed in any::<u64>()) {
        check(seed, Some(pass("const_merge")), Level::Exact)?;
    }

    #[test]
    fn fold_const_preserves_the_function(seed in any::<u64>()) {
        check(seed, Some(pass("fold_const")), Level::Exact)?;
        check(seed, Some(pass("fold_const")), Level::Full)?;
    }

    #[test]
    fn fold_batchnorm_preserves_the_function(seed in any::<u64>()) {
        check(seed, Some(pass("fold_batchnorm")), Level::Exact)?;
        check(seed, Some(pass("fold_batchnorm")), Level::Full)?;
    }

    #[test]
    fn merge_linear_preserves_the_function(seed in any::<u64>()) {
        check(seed, Some(pass("merge_linear")), Level::Exact)?;
        check(seed, Some(pass("merge_linear")), Level::Full)?;
    }

    #[test]
    fn canonicalize_exact_preserves_the_function(seed in any::<u64>()) {
        check(seed, None, Level::Exact)?;
    }

    #[test]
    fn canonicalize_full_stays_within_the_reported_rounding(seed in any::<u64>()) {
        check(seed, None, Level::Full)?;
    }
}

/// The passes fire on the random graphs often enough for the properties above to mean
/// something, and Full does strictly more than Exact somewhere.
#[test]
fn rewrites_fire_on_random_graphs() {
    let mut counts: BTreeMap<(Level, &str), usize> = BTreeMap::new();
    for seed in 0..300 {
        for level in [Level::Exact, Level::Full] {
            let (mut g, _) = case(seed);
            for (k, n) in canonicalize(&mut g, level).counts() {
                *counts.entry((level, k)).or_insert(0) += n;
            }
        }
    }
    for p in PASSES {
        assert!(
            counts.get(&(Level::Full, p.name)).is_some_and(|&n| n >= 10),
            "{} rarely fires: {counts:?}",
            p.name
        );
    }
    for p in [
        "identity",
        "shape_chain",
        "const_merge",
        "fold_const",
        "merge_linear",
    ] {
        assert!(
            counts.contains_key(&(Level::Exact, p)),
            "{p} never fires exactly: {counts:?}"
        );
    }
    assert!(!counts.contains_key(&(Level::Exact, "fold_batchnorm")));
}

/// A hand-built network with every pattern: what each level does, and the report.
#[test]
fn canonicalize_levels_on_a_hand_built_network() {
    use ndarray::{arr1, arr2, ArrayD, IxDyn};
    let build = || {
        let mut g = Graph::new();
        let x = g.add_input("x", vec![1, 2]);
        let a = g
            .add_node(
                "norm",
                Op::AddConst(arr1(&[-0.5, 0.1]).into_dyn()),
                vec![x],
                "a",
            )
            .unwrap();
        let b = g
            .add_node(
                "std",
                Op::DivConst(arr1(&[0.3, 2.0]).into_dyn()),
                vec![a],
                "b",
            )
            .unwrap();
        let c = g
            .add_node(
                "fc1",
                Op::Linear {
                    weight: arr2(&[[1.0, 2.0], [0.25, -1.0]]),
                    bias: None,
                },
                vec![b],
                "c",
            )
            .unwrap();
        let d = g
            .add_node(
                "neg",
                Op::MulConst(ArrayD::from_elem(IxDyn(&[1]), -1.0)),
                vec![c],
                "d",
            )
            .unwrap();
        let e = g
            .add_node("r", Op::Reshape { shape: vec![1, 2] }, vec![d], "e")
            .unwrap();
        let f = g.add_node("relu", Op::Relu, vec![e], "f").unwrap();
        let h = g
            .add_node(
                "fc2",
                Op::Linear {
                    weight: arr2(&[[0.1, 0.2]]),
                    bias: Some(arr1(&[0.3])),
                },
                vec![f],
                "h",
            )
            .unwrap();
        let y = g
            .add_node(
                "fc3",
                Op::Linear {
                    weight: arr2(&[[3.0], [0.7]]),
                    bias: None,
                },
                vec![h],
                "y",
            )
            .unwrap();
        g.add_output(y);
        g
    };
    let (g0, mut ge, mut gf) = (build(), build(), build());
    let re = canonicalize(&mut ge, Level::Exact);
    let rf = canonicalize(&mut gf, Level::Full);
    // Exact: the reshape goes, −1 folds into fc1, 2 = 2^1 division becomes a product
    // (and cannot fold: 1/0.3 is not a double); fc2∘fc3 and 0.1 shifts are inexact.
    assert_eq!(ge.op_histogram().get("Reshape"), None, "{ge}");
    assert_eq!(ge.op_histogram().get("MulConst"), None, "{ge}");
    assert!(re.rounding.is_empty() && re.max_weight_error == 0.0);
    // Full: everything affine merges into two Linear layers around the Relu.
    assert_eq!(gf.nodes.len(), 3, "{gf}");
    assert!(
        rf.max_weight_error > 0.0 && rf.max_weight_error < 1e-13,
        "{rf:?}"
    );
    assert!(rf
        .rounding
        .keys()
        .all(|k| gf.nodes.iter().any(|n| &n.name == k)));
    for x in [[0.3, -1.7], [2.0, 0.5], [-1.0, -1.0]] {
        compare(&g0, &ge, &x, None).unwrap();
        compare(&g0, &gf, &x, Some(&tolerance(&gf, &rf.rounding, &x))).unwrap();
    }
    // The family list is public and usable for focused tests.
    let cfg = RandomGraphConfig {
        families: vec![Family::Chains],
        ..RandomGraphConfig::default()
    };
    assert!(random_graph(&mut StdRng::seed_from_u64(1), &cfg)
        .validate()
        .is_ok());
}
