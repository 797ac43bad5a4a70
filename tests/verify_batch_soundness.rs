//! Soundness of the batched CROWN of input-splitting branch-and-bound (`verify::batch`): over
//! generated networks (ReLU family, smooth activations, residual and elementwise blocks) and
//! boxes, the root box and its sub-boxes two levels down (bounded together in one batch, each
//! with the enclosures inherited from its parent) never exclude the exact value of any point
//! of the sub-box, for the output enclosure and every specification row; and the linear
//! functions it returns for ReLU split constraints are `≤ 0` (exactly, in rationals) at every
//! sampled point of the split's sub-domain.

mod common;

use beacons::bounds::Interval;
use beacons::engine::BoxBounds;
use beacons::eval::exact::forward_f64_point;
use beacons::ir::random::{random_graph, Family, RandomGraphConfig};
use beacons::verify::batch::{Job, Plan, Split};
use common::soundness::{check_inside, points};
use ndarray::Array2;
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn sub_boxes_contain_exact_values(seed in any::<u64>(), exp in -3i32..=3, width_exp in -3i32..=1) {
        let mut rng = StdRng::seed_from_u64(seed);
        let cfg = RandomGraphConfig {
            families: vec![Family::Mlp, Family::Residual, Family::Elementwise],
            max_width: 6,
            max_layers: 4,
            weight_scale: 10f64.powi(exp),
            smooth_activations: true,
            extra_output_prob: 0.0,
            ..RandomGraphConfig::default()
        };
        let g = random_graph(&mut rng, &cfg);
        let n = g.input_size();
        let m = g.output_size();
        let radius = 10f64.powi(width_exp);
        let centre: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let lo: Vec<f64> = centre.iter().map(|c| c - radius * rng.random::<f64>()).collect();
        let hi: Vec<f64> = centre.iter().map(|c| c + radius * rng.random::<f64>()).collect();
        let c = Array2::from_shape_fn((3, m), |_| rng.random_range(-2.0..2.0));
        let plan = match Plan::new(&g) {
            Ok(p) => p,
            Err(_) => return Ok(()),
        };
        let root = Job { lo: lo.clone(), hi: hi.clone(), inherited: None };
        let root_b = match plan.bound(&g, &c, std::slice::from_ref(&root)) {
            Ok(mut b) => b.remove(0),
            Err(e) => {
                prop_assert!(e.to_string().contains("not supported"), "unexpected error: {e}");
                return Ok(());
            }
        };
        // Level one: halves along a random input, inheriting from the root.
        let i = rng.random_range(0..n);
        let level1: Vec<Job> = halves(&lo, &hi, i)
            .into_iter()
            .map(|(l, h)| Job { lo: l, hi: h, inherited: Some(root_b.inherited.clone()) })
            .collect();
        let b1 = plan.bound(&g, &c, &level1).expect("bounded once");
        // Level two: every level-one box halved along another input, all in one batch.
        let j = rng.random_range(0..n);
        let mut level2 = Vec::new();
        for (job, b) in level1.iter().zip(&b1) {
            for (l, h) in halves(&job.lo, &job.hi, j) {
                level2.push(Job { lo: l, hi: h, inherited: Some(b.inherited.clone()) });
            }
        }
        let b2 = plan.bound(&g, &c, &level2).expect("bounded once");
        let all = std::iter::once((&root, &root_b))
            .chain(level1.iter().zip(&b1))
            .chain(level2.iter().zip(&b2));
        for (job, b) in all {
            let bb = BoxBounds { outputs: b.output.clone(), rows: b.rows.clone() };
            let boxed = Interval::new(job.lo.clone(), job.hi.clone());
            for p in points(&mut rng, &boxed, 16, 12) {
                let ys = forward_f64_point(&g, &p).expect("exact evaluation");
                check_inside(&ys, &bb, &c, "batched crown")?;
            }
        }
    }
}

/// A generated ReLU MLP, a box, `rows` random specification rows, the plan, the root's bound
/// and the root's unstable ReLU input neurons `(value, index)`.
struct Split0 {
    g: beacons::ir::Graph,
    lo: Vec<f64>,
    hi: Vec<f64>,
    c: Array2<f64>,
    plan: Plan,
    rb: beacons::verify::batch::BoxBound,
    cuts: Vec<(usize, usize)>,
}

fn split_setup(rng: &mut StdRng, exp: i32, rows: usize) -> Option<Split0> {
    let cfg = RandomGraphConfig {
        families: vec![Family::Mlp],
        max_width: 8,
        max_layers: 4,
        weight_scale: 10f64.powi(exp),
        smooth_activations: false,
        extra_output_prob: 0.0,
        ..RandomGraphConfig::default()
    };
    let g = random_graph(rng, &cfg);
    let (n, m) = (g.input_size(), g.output_size());
    let centre: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let lo: Vec<f64> = centre.iter().map(|c| c - rng.random::<f64>()).collect();
    let hi: Vec<f64> = centre.iter().map(|c| c + rng.random::<f64>()).collect();
    let c = Array2::from_shape_fn((rows, m), |_| rng.random_range(-2.0..2.0));
    let plan = Plan::new(&g).ok()?;
    let root = Job {
        lo: lo.clone(),
        hi: hi.clone(),
        inherited: None,
    };
    let rb = plan
        .bound(&g, &c, std::slice::from_ref(&root))
        .ok()?
        .remove(0);
    let mut cuts = Vec::new();
    for nd in g
        .nodes
        .iter()
        .filter(|nd| matches!(nd.op, beacons::ir::Op::Relu))
    {
        let v = nd.inputs[0].0;
        if let Some(b) = rb.inherited[v].as_ref() {
            for j in 0..b.len() {
                if b.lo[j] < 0.0 && b.hi[j] > 0.0 {
                    cuts.push((v, j));
                }
            }
        }
    }
    Some(Split0 {
        g,
        lo,
        hi,
        c,
        plan,
        rb,
        cuts,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// ReLU splitting (`verify::relu_bab`): a child bounded with an inherited enclosure cut at
    /// one unstable neuron (`[max(l,0), u]` or `[l, min(u,0)]`) never excludes the exact value
    /// of a point of the box whose neuron has that sign; and every point has one of the signs.
    #[test]
    fn relu_split_children_contain_their_points(seed in any::<u64>(), exp in -1i32..=1) {
        let mut rng = StdRng::seed_from_u64(seed);
        let Some(Split0 { g, lo, hi, c, plan, rb, cuts }) = split_setup(&mut rng, exp, 3) else {
            return Ok(());
        };
        let n = g.input_size();
        // Every unstable ReLU input neuron of the root (up to 3 of them, split in turn).
        for &(v, j) in cuts.iter().take(3) {
            let mut jobs = Vec::new();
            for active in [true, false] {
                let mut e = (*rb.inherited).clone();
                let b = e[v].as_mut().unwrap();
                if active { b.lo[j] = b.lo[j].max(0.0) } else { b.hi[j] = b.hi[j].min(0.0) }
                jobs.push(Job { lo: lo.clone(), hi: hi.clone(), inherited: Some(std::sync::Arc::new(e)) });
            }
            let kids = plan.bound(&g, &c, &jobs).expect("bounded");
            let boxed = Interval::new(lo.clone(), hi.clone());
            for p in points(&mut rng, &boxed, 16, 24) {
                let x = ndarray::Array2::from_shape_vec((1, n), p.clone()).unwrap();
                let vals = beacons::eval::forward_all_f64(&g, x.view()).expect("evaluates");
                let z = vals[v].iter().copied().nth(j).expect("neuron");
                let ys = forward_f64_point(&g, &p).expect("exact evaluation");
                // A point on the boundary (z = 0, up to rounding) belongs to both children.
                for (kid, active) in kids.iter().zip([true, false]) {
                    let inside = if active { z >= -1e-9 } else { z <= 1e-9 };
                    if !inside || z.abs() < 1e-9 {
                        continue;
                    }
                    let bb = BoxBounds { outputs: kid.output.clone(), rows: kid.rows.clone() };
                    check_inside(&ys, &bb, &c, "relu-split child")?;
                }
            }
        }
    }

    #[test]
    fn split_constraints_are_nonpositive_on_their_sub_domains(seed in any::<u64>(), exp in -1i32..=1) {
        use num_rational::BigRational;
        use num_traits::Zero;
        let mut rng = StdRng::seed_from_u64(seed);
        let Some(Split0 { g, lo, hi, c, plan, rb, mut cuts }) = split_setup(&mut rng, exp, 2) else {
            return Ok(());
        };
        let n = g.input_size();
        // Up to two unstable neurons, split together on each of the four sign patterns.
        cuts.truncate(2);
        if cuts.is_empty() {
            return Ok(());
        }
        let patterns: Vec<Vec<Split>> = (0..1usize << cuts.len())
            .map(|bits| {
                cuts.iter()
                    .enumerate()
                    .map(|(k, &(v, j))| Split {
                        value: beacons::ir::ValueId(v),
                        neuron: j,
                        active: bits >> k & 1 == 1,
                    })
                    .collect()
            })
            .collect();
        let jobs: Vec<Job> = patterns
            .iter()
            .map(|sp| {
                let mut e = (*rb.inherited).clone();
                for s in sp {
                    let b = e[s.value.0].as_mut().unwrap();
                    if s.active { b.lo[s.neuron] = b.lo[s.neuron].max(0.0) } else { b.hi[s.neuron] = b.hi[s.neuron].min(0.0) }
                }
                Job { lo: lo.clone(), hi: hi.clone(), inherited: Some(std::sync::Arc::new(e)) }
            })
            .collect();
        let kids = plan.bound_with(&g, &c, &jobs, &patterns).expect("bounded");
        let q = |v: f64| BigRational::from_float(v).unwrap();
        let boxed = Interval::new(lo.clone(), hi.clone());
        for p in points(&mut rng, &boxed, 16, 24) {
            let x = ndarray::Array2::from_shape_vec((1, n), p.clone()).unwrap();
            let vals = beacons::eval::forward_all_f64(&g, x.view()).expect("evaluates");
            for (kid, sp) in kids.iter().zip(&patterns) {
                prop_assert_eq!(kid.constraints.len(), sp.len());
                let on = sp.iter().all(|s| {
                    let z = vals[s.value.0].iter().copied().nth(s.neuron).expect("neuron");
                    if s.active { z > 1e-9 } else { z < -1e-9 }
                });
                if !on {
                    continue;
                }
                for (con, s) in kid.constraints.iter().zip(sp) {
                    // An MLP's coefficients all reach the input: every constraint is formed.
                    let Some((gc, k)) = con else {
                        return Err(TestCaseError::fail(format!("no constraint for {s:?}")));
                    };
                    let mut val = q(*k);
                    for (a, xi) in gc.iter().zip(&p) {
                        val += q(*a) * q(*xi);
                    }
                    prop_assert!(val <= BigRational::zero(), "constraint {:?} is positive at {:?}", s, p);
                }
            }
        }
    }
}
