//! Soundness of the bound engines, by property tests over generated networks and boxes:
//! exact (rational) evaluation of random points and box vertices never falls outside any bound
//! of any method, for outputs and for specification rows, with weights scaled from 1e-6 to 1e6;
//! and the tighter method's bounds lie inside the looser one's (alpha-crown ⊆ crown ⊆ ibp). ReLU, LeakyReLU,
//! Sigmoid and Tanh networks, residual and elementwise blocks.

mod common;

use beacons::bounds::Interval;
use beacons::engine::{self, Method};
use beacons::eval::exact::forward_f64_point;
use beacons::ir::random::{random_graph, Family, RandomGraphConfig};
use beacons::ir::Graph;
use common::soundness::{check_inside, check_nested, points, random_box};
use ndarray::Array2;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random network the engines support (ReLU family, affine, residual, elementwise).
fn network(seed: u64, scale: f64) -> Graph {
    let mut rng = StdRng::seed_from_u64(seed);
    let cfg = RandomGraphConfig {
        families: vec![Family::Mlp, Family::Residual, Family::Elementwise],
        max_width: 6,
        max_layers: 4,
        weight_scale: scale,
        smooth_activations: true,
        extra_output_prob: 0.0,
        ..RandomGraphConfig::default()
    };
    random_graph(&mut rng, &cfg)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_method_contains_exact_values(seed in any::<u64>(), exp in -6i32..=6, width_exp in -4i32..=1) {
        let scale = 10f64.powi(exp);
        let g = network(seed, scale);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let n = g.input_size();
        let m = g.output_size();
        let radius = 10f64.powi(width_exp);
        let b = random_box(&mut rng, n, radius);
        let c = Array2::from_shape_fn((3, m), |_| rng.random_range(-2.0..2.0));
        let ibp = engine::compute(&g, Method::Ibp, &b, Some(&c));
        let crown = engine::compute(&g, Method::Crown, &b, Some(&c));
        let alpha = engine::compute(&g, Method::AlphaCrown, &b, Some(&c));
        let (ibp, crown, alpha) = match (ibp, crown, alpha) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                // Only ops the engine does not cover yet may be refused, and then clearly.
                prop_assert!(e.to_string().contains("not supported"), "unexpected error: {e}");
                return Ok(());
            }
        };
        for p in points(&mut rng, &b, 32, 40) {
            let ys = forward_f64_point(&g, &p).expect("exact evaluation");
            check_inside(&ys, &ibp, &c, "ibp")?;
            check_inside(&ys, &crown, &c, "crown")?;
            check_inside(&ys, &alpha, &c, "alpha-crown")?;
        }
        check_nested(&alpha, &crown, "alpha-crown in crown")?;
        check_nested(&crown, &ibp, "crown in ibp")?;
    }
}

/// The engine must have handled most generated networks, or the property above proves little.
#[test]
fn most_generated_networks_are_supported() {
    let mut ok = 0;
    for seed in 0..200u64 {
        let g = network(seed, 1.0);
        let n = g.input_size();
        let b = Interval::new(vec![-0.1; n], vec![0.1; n]);
        if engine::compute(&g, Method::Crown, &b, None).is_ok() {
            ok += 1;
        }
    }
    assert!(
        ok >= 150,
        "only {ok}/200 generated networks are supported by the engine"
    );
}

/// CROWN is strictly tighter than IBP on a deep random MLP over a small box.
#[test]
fn crown_is_tighter_than_ibp_on_mlps() {
    let mut tighter = 0;
    for seed in 0..50u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let cfg = RandomGraphConfig {
            families: vec![Family::Mlp],
            max_width: 8,
            max_layers: 5,
            smooth_activations: false,
            extra_output_prob: 0.0,
            ..RandomGraphConfig::default()
        };
        let g = random_graph(&mut rng, &cfg);
        let n = g.input_size();
        let b = Interval::new(vec![-0.5; n], vec![0.5; n]);
        let (Ok(i), Ok(c)) = (
            engine::compute(&g, Method::Ibp, &b, None),
            engine::compute(&g, Method::Crown, &b, None),
        ) else {
            continue;
        };
        let wi: f64 = i
            .outputs
            .hi
            .iter()
            .zip(&i.outputs.lo)
            .map(|(h, l)| h - l)
            .sum();
        let wc: f64 = c
            .outputs
            .hi
            .iter()
            .zip(&c.outputs.lo)
            .map(|(h, l)| h - l)
            .sum();
        if wc < 0.999 * wi {
            tighter += 1;
        }
    }
    assert!(
        tighter >= 10,
        "CROWN tighter than IBP on only {tighter}/50 MLPs"
    );
}
