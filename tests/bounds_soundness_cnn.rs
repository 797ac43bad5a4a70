//! Soundness of the bound engines on convolutional and residual networks (Conv, BatchNorm,
//! AveragePool, MaxPool, GlobalAveragePool, then flatten and linear layers), by property tests
//! over generated networks and boxes: the exact (rational) evaluation of box vertices and random
//! points never falls outside any bound of IBP or CROWN, for outputs and for specification
//! rows, with weights scaled from 1e-6 to 1e6; and crown ⊆ ibp.
//!
//! BatchNorm's `sqrt` makes the exact evaluator return a tight *enclosure* of the true value
//! (a point whenever no irrational factor is involved). The true value lies somewhere in it, so
//! a bound is refuted exactly when it excludes the whole enclosure: that is what is checked
//! (for a point, this is plain containment).

mod common;

use beacons::bounds::Interval;
use beacons::engine::{self, Method};
use beacons::eval::exact::forward_f64_point;
use beacons::ir::random::{random_graph, Family, RandomGraphConfig};
use beacons::ir::{Conv2d, Graph, Op, Pool2d, ValueId};
use common::soundness::{check_inside, check_nested, points, random_box};
use ndarray::{Array1, Array2, Array4};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn config(families: Vec<Family>, scale: f64) -> RandomGraphConfig {
    RandomGraphConfig {
        families,
        max_width: 4,
        max_layers: 4,
        weight_scale: scale,
        smooth_activations: false,
        extra_output_prob: 0.0,
        ..RandomGraphConfig::default()
    }
}

/// A random CNN or residual network (convolutional input half of the time for residuals).
fn network(seed: u64, scale: f64) -> Graph {
    let mut rng = StdRng::seed_from_u64(seed);
    random_graph(
        &mut rng,
        &config(vec![Family::Cnn, Family::Residual], scale),
    )
}

/// Appends `op` if its geometry fits the current shape (otherwise keeps `x`).
fn push(g: &mut Graph, op: Op, x: ValueId) -> ValueId {
    let k = g.nodes.len();
    g.add_node(format!("n{k}"), op, vec![x], format!("v{k}"))
        .unwrap_or(x)
}

fn pool2d(rng: &mut StdRng) -> Pool2d {
    let kernel = [rng.random_range(1..=3), rng.random_range(1..=3)];
    Pool2d {
        kernel,
        strides: [rng.random_range(1..=2), rng.random_range(1..=2)],
        pads: [0, 1, 0, 1].map(|a| rng.random_range(0..kernel[a]).min(1)),
        dilations: [1, 1],
        ceil_mode: rng.random_bool(0.3),
        count_include_pad: rng.random_bool(0.5),
    }
}

/// A network dense in the windowed ops: conv (random stride, padding, dilation, groups),
/// maybe batch norm, an activation, a max or average pool (overlapping windows, padding, ceil
/// mode), maybe a second conv block and pool, then a global average pool or a flatten and a
/// linear head.
fn window_network(seed: u64, scale: f64) -> Graph {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = Graph::new();
    let c = rng.random_range(1..=3);
    let mut x = g.add_input(
        "x",
        vec![1, c, rng.random_range(4..=7), rng.random_range(4..=7)],
    );
    let f32s = |rng: &mut StdRng, n: usize, s: f64| -> Vec<f64> {
        (0..n)
            .map(|_| f64::from(rng.random_range(-1.0f32..1.0)) * s)
            .collect()
    };
    for block in 0..rng.random_range(1..=2) {
        let ch = g.value(x).shape[1];
        let group = if ch.is_multiple_of(2) && rng.random_bool(0.5) {
            2
        } else {
            1
        };
        let oc = group * rng.random_range(1..=2);
        let k = [rng.random_range(1..=3), rng.random_range(1..=3)];
        let weight = Array4::from_shape_vec(
            (oc, ch / group, k[0], k[1]),
            f32s(&mut rng, oc * ch / group * k[0] * k[1], scale),
        )
        .expect("shape");
        let bias = rng
            .random_bool(0.7)
            .then(|| Array1::from(f32s(&mut rng, oc, scale)));
        let conv = Conv2d {
            weight,
            bias,
            strides: [rng.random_range(1..=2), rng.random_range(1..=2)],
            pads: [0; 4].map(|_| rng.random_range(0..=1)),
            dilations: [rng.random_range(1..=2), rng.random_range(1..=2)],
            group,
        };
        x = push(&mut g, Op::Conv(conv), x);
        if rng.random_bool(0.5) {
            let ch = g.value(x).shape[1];
            let bn = Op::BatchNorm {
                scale: Array1::from(f32s(&mut rng, ch, 2.0)),
                bias: Array1::from(f32s(&mut rng, ch, 1.0)),
                mean: Array1::from(f32s(&mut rng, ch, 1.0)),
                var: Array1::from(f32s(&mut rng, ch, 2.0)).mapv(|v| v.abs() + 0.125),
                epsilon: if rng.random_bool(0.5) { 1e-5 } else { 0.0 },
            };
            x = push(&mut g, bn, x);
        }
        let act = if rng.random_bool(0.7) {
            Op::Relu
        } else {
            Op::LeakyRelu { alpha: 0.125 }
        };
        x = push(&mut g, act, x);
        if block == 0 || rng.random_bool(0.5) {
            let p = pool2d(&mut rng);
            let op = if rng.random_bool(0.6) {
                Op::MaxPool(p)
            } else {
                Op::AveragePool(p)
            };
            x = push(&mut g, op, x);
        }
    }
    if rng.random_bool(0.3) {
        x = push(&mut g, Op::GlobalAveragePool, x);
    }
    let n = g.value(x).size();
    x = push(&mut g, Op::Reshape { shape: vec![1, n] }, x);
    let out = rng.random_range(1..=3);
    let weight = Array2::from_shape_vec((out, n), f32s(&mut rng, out * n, scale)).expect("shape");
    let y = push(
        &mut g,
        Op::Linear {
            weight,
            bias: Some(Array1::from(f32s(&mut rng, out, scale))),
        },
        x,
    );
    g.add_output(y);
    g
}

/// The property for one network: exact values inside every method's bounds; crown ⊆ ibp.
fn sound_on(g: &Graph, seed: u64, width_exp: i32) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc0de);
    let n = g.input_size();
    let m = g.output_size();
    let radius = 10f64.powi(width_exp);
    let b = random_box(&mut rng, n, radius);
    let c = Array2::from_shape_fn((3, m), |_| rng.random_range(-2.0..2.0));
    let ibp = engine::compute(g, Method::Ibp, &b, Some(&c));
    let crown = engine::compute(g, Method::Crown, &b, Some(&c));
    let alpha = engine::compute(g, Method::AlphaCrown, &b, Some(&c));
    let (ibp, crown, alpha) = match (ibp, crown, alpha) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            // Only ops the engine does not cover may be refused, and then clearly.
            prop_assert!(
                e.to_string().contains("not supported"),
                "unexpected error: {e}"
            );
            return Ok(());
        }
    };
    for p in points(&mut rng, &b, 12, 12) {
        let ys = forward_f64_point(g, &p).expect("exact evaluation");
        check_inside(&ys, &ibp, &c, "ibp")?;
        check_inside(&ys, &crown, &c, "crown")?;
        check_inside(&ys, &alpha, &c, "alpha-crown")?;
    }
    check_nested(&crown, &ibp, "crown in ibp")?;
    check_nested(&alpha, &crown, "alpha-crown in crown")?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_method_contains_exact_values_on_cnns(
        seed in any::<u64>(),
        exp in -6i32..=6,
        width_exp in -5i32..=1,
    ) {
        sound_on(&network(seed, 10f64.powi(exp)), seed, width_exp)?;
    }

    #[test]
    fn every_method_contains_exact_values_on_pooling_networks(
        seed in any::<u64>(),
        exp in -6i32..=6,
        width_exp in -5i32..=1,
    ) {
        sound_on(&window_network(seed, 10f64.powi(exp)), seed, width_exp)?;
    }
}

/// The engines must handle most generated CNNs, or the property above proves little.
#[test]
fn most_generated_cnns_are_supported() {
    let mut ok = 0;
    let mut errors = Vec::new();
    for seed in 0..200u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let g = random_graph(&mut rng, &config(vec![Family::Cnn], 1.0));
        let n = g.input_size();
        let b = Interval::new(vec![-0.1; n], vec![0.1; n]);
        match engine::compute(&g, Method::Crown, &b, None) {
            Ok(_) => ok += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    assert!(
        ok >= 160,
        "only {ok}/200 generated CNNs are supported; first errors: {:?}",
        &errors[..errors.len().min(5)]
    );
}

/// On CNNs over small boxes CROWN is often strictly tighter than IBP (the windowed rules'
/// backward steps are not merely sound but useful).
#[test]
fn crown_is_tighter_than_ibp_on_cnns() {
    let mut tighter = 0;
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let g = random_graph(&mut rng, &config(vec![Family::Cnn], 1.0));
        let n = g.input_size();
        let b = Interval::new(vec![-0.5; n], vec![0.5; n]);
        let (Ok(i), Ok(c)) = (
            engine::compute(&g, Method::Ibp, &b, None),
            engine::compute(&g, Method::Crown, &b, None),
        ) else {
            continue;
        };
        let width = |x: &Interval| x.hi.iter().zip(&x.lo).map(|(h, l)| h - l).sum::<f64>();
        if width(&c.outputs) < 0.999 * width(&i.outputs) {
            tighter += 1;
        }
    }
    assert!(
        tighter >= 8,
        "CROWN tighter than IBP on only {tighter}/40 CNNs"
    );
}
