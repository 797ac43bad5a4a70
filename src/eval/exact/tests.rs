//! Unit tests of the exact evaluator: outward rounding, the enclosures, exactness of the
//! piecewise-linear operators, interval propagation, and the errors.

use ndarray::{array, ArrayD, IxDyn};
use num_rational::BigRational;

use super::enclose::{exp_down, exp_up, sqrt_enclosure};
use super::*;
use crate::ir::{Graph, Op};

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(n.into(), d.into())
}

fn f(v: f64) -> BigRational {
    BigRational::from_float(v).unwrap()
}

fn chain(shape: &[usize], ops: Vec<Op>) -> Graph {
    let mut g = Graph::new();
    let mut v = g.add_input("x", shape.to_vec());
    for (i, op) in ops.into_iter().enumerate() {
        v = g
            .add_node(format!("n{i}"), op, vec![v], format!("v{i}"))
            .unwrap();
    }
    g.add_output(v);
    g
}

fn f64_of(g: &Graph, x: &[f64]) -> Vec<f64> {
    let a = ndarray::Array2::from_shape_vec((1, x.len()), x.to_vec()).unwrap();
    crate::eval::forward_f64(g, a.view())
        .unwrap()
        .row(0)
        .to_vec()
}

#[test]
fn outward_rounding_is_tight_and_checked() {
    let tenth = q(1, 10);
    let (lo, hi) = (round_down_f64(&tenth), round_up_f64(&tenth));
    assert!(f(lo) < tenth && tenth < f(hi));
    assert_eq!(next_up(lo), hi);
    assert_eq!(round_down_f64(&f(0.1)), 0.1);
    assert_eq!(round_up_f64(&f(-3.5)), -3.5);
    let huge = f(f64::MAX) * q(2, 1);
    assert_eq!(round_down_f64(&huge), f64::MAX);
    assert_eq!(round_up_f64(&huge), f64::INFINITY);
    assert_eq!(round_down_f64(&-huge), f64::NEG_INFINITY);
    let tiny = q(1, 3) * f(f64::from_bits(1));
    assert_eq!(round_down_f64(&tiny), 0.0);
    assert_eq!(round_up_f64(&tiny), f64::from_bits(1));
    assert_eq!(next_down(0.0), -f64::from_bits(1));
}

#[test]
fn sqrt_enclosures_bracket_exactly() {
    assert_eq!(sqrt_enclosure(&q(9, 4)).unwrap(), (q(3, 2), q(3, 2)));
    let (lo, hi) = sqrt_enclosure(&q(2, 1)).unwrap();
    assert!(&lo * &lo < q(2, 1) && q(2, 1) < &hi * &hi);
    assert_eq!(next_up(round_down_f64(&lo)), round_down_f64(&hi));
    assert!(sqrt_enclosure(&q(0, 1)).is_err());
    assert!(sqrt_enclosure(&q(-1, 1)).is_err());
}

#[test]
fn exp_bounds_bracket_libm() {
    for d in [-800.0, -30.0, -1.0, 0.0, 1e-300, 0.5, 20.0, 709.0, 710.0] {
        let e: f64 = f64::exp(d);
        assert!(exp_down(d) <= e && e <= exp_up(d), "{d}");
        if e.is_finite() && e > 1e-300 {
            assert!((exp_up(d) - exp_down(d)) / e < 1e-12, "{d}");
        }
    }
}

#[test]
fn piecewise_linear_ops_are_exact() {
    // x / 3 · 3 = x exactly, and a thirds-valued output stays a point.
    let c3 = ArrayD::from_shape_vec(IxDyn(&[1]), vec![3.0]).unwrap();
    let g = chain(
        &[2],
        vec![Op::DivConst(c3.clone()), Op::Relu, Op::MulConst(c3)],
    );
    let out = forward(&g, &[q(1, 1), q(-5, 7)]).unwrap();
    assert_eq!(
        out,
        vec![RatInterval::point(q(1, 1)), RatInterval::point(q(0, 1))]
    );
    let g = chain(
        &[1, 2],
        vec![
            Op::Linear {
                weight: array![[1.0, 1.0]],
                bias: Some(array![0.5]),
            },
            Op::LeakyRelu { alpha: 0.25 },
        ],
    );
    let out = forward(&g, &[q(-1, 3), q(-1, 3)]).unwrap();
    assert_eq!(out, vec![RatInterval::point(q(-1, 24))]);
}

#[test]
fn enclosures_contain_f64_values_and_are_narrow() {
    let xs = [
        -1000.0, -40.0, -3.0, -1e-10, 0.0, 1e-300, 0.7, 5.0, 40.0, 1000.0,
    ];
    for op in [Op::Sigmoid, Op::Tanh] {
        let g = chain(&[xs.len()], vec![op.clone()]);
        let out = forward_f64_point(&g, &xs).unwrap();
        for ((iv, &v), &x) in out.iter().zip(&f64_of(&g, &xs)).zip(&xs) {
            assert!(iv.contains_f64(v), "{op:?}({x}) = {v} not in {iv:?}");
            assert!(
                iv.max_distance_f64(v) <= 1e-13 * v.abs() + 1e-300,
                "{op:?}({x}): {iv:?}"
            );
        }
    }
    assert!(forward_f64_point(&chain(&[1], vec![Op::Tanh]), &[0.0]).unwrap()[0].is_point());
    let g = chain(&[2, 3], vec![Op::Softmax { axis: 1 }]);
    let x = [1.0, -2.0, 30.0, 0.0, 0.0, 0.0];
    let out = forward_f64_point(&g, &x).unwrap();
    for (iv, v) in out.iter().zip(f64_of(&g, &x)) {
        assert!(
            iv.contains_f64(v) && iv.max_distance_f64(v) < 1e-14,
            "{v} {iv:?}"
        );
    }
    let sum_lo = out[3..].iter().fold(q(0, 1), |s, i| s + &i.lo);
    let sum_hi = out[3..].iter().fold(q(0, 1), |s, i| s + &i.hi);
    assert!(sum_lo <= q(1, 1) && q(1, 1) <= sum_hi);
}

#[test]
fn batch_norm_is_enclosed_or_exact() {
    let bn = |var: f64| Op::BatchNorm {
        scale: array![2.0, -0.3],
        bias: array![0.5, 0.1],
        mean: array![0.25, -1.0],
        var: array![var, 2.0],
        epsilon: 1e-5,
    };
    let g = chain(&[1, 2, 1, 2], vec![bn(0.7)]);
    let x = [1.0, -3.0, 0.125, 7.0];
    let out = forward_f64_point(&g, &x).unwrap();
    for (iv, v) in out.iter().zip(f64_of(&g, &x)) {
        assert!(!iv.is_point() && iv.contains_f64(v), "{v} {iv:?}");
        assert!(iv.max_distance_f64(v) < 1e-14);
    }
    // var + eps = 4 exactly in channel 0 (eps 0): exact results there.
    let mut op = bn(4.0);
    if let Op::BatchNorm { epsilon, var, .. } = &mut op {
        *epsilon = 0.0;
        var[1] = 0.25;
    }
    let out = forward_f64_point(&chain(&[1, 2, 1, 2], vec![op]), &x).unwrap();
    assert_eq!(out[0], RatInterval::point(q(3, 4) + q(1, 2)));
    assert!(out.iter().all(RatInterval::is_point));
}

#[test]
fn intervals_propagate_soundly_after_enclosures() {
    // sigmoid → negative weights → sub → relu → leaky(-) → maxpool-free chain.
    let mut g = Graph::new();
    let x = g.add_input("x", vec![1, 3]);
    let s = g.add_node("s", Op::Sigmoid, vec![x], "s").unwrap();
    let l = g
        .add_node(
            "l",
            Op::Linear {
                weight: array![[-1.0, 2.0, 0.5], [3.0, -0.25, 1.0]],
                bias: Some(array![0.1, -2.0]),
            },
            vec![s],
            "l",
        )
        .unwrap();
    let d = g
        .add_node(
            "d",
            Op::DivConst(ArrayD::from_shape_vec(IxDyn(&[2]), vec![-3.0, 0.7]).unwrap()),
            vec![l],
            "d",
        )
        .unwrap();
    let t = g.add_node("t", Op::Tanh, vec![x], "t").unwrap();
    let tl = g
        .add_node(
            "tl",
            Op::Linear {
                weight: array![[1.0, -1.0, 1.0], [0.3, 0.3, -0.3]],
                bias: None,
            },
            vec![t],
            "tl",
        )
        .unwrap();
    let sub = g.add_node("sub", Op::Sub, vec![d, tl], "sub").unwrap();
    let r = g
        .add_node("lr", Op::LeakyRelu { alpha: -0.5 }, vec![sub], "lr")
        .unwrap();
    g.add_output(r);
    g.add_output(sub);
    for x in [[0.3, -1.2, 2.0], [0.0, 0.0, 0.0], [-5.0, 5.0, 1e-3]] {
        let out = forward_f64_point(&g, &x).unwrap();
        for (iv, v) in out.iter().zip(f64_of(&g, &x)) {
            assert!(iv.lo <= iv.hi);
            assert!(iv.max_distance_f64(v) < 1e-13, "{x:?}: {v} vs {iv:?}");
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let zero = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 0.0]).unwrap();
    let g = chain(&[2], vec![Op::DivConst(zero)]);
    let err = forward_f64_point(&g, &[1.0, 2.0]).unwrap_err();
    assert!(err.to_string().contains("exactly 0"), "{err}");
    assert!(forward_f64_point(&g, &[1.0]).is_err());
    assert!(forward_f64_point(&g, &[1.0, f64::NAN]).is_err());
}
