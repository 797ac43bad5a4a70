//! Unit tests of the windowed-op rules: hand-computed cases, and random geometries whose
//! interval and backward bounds must contain the exact (rational) values at vertices and random
//! points of the box, and agree with each other for the linear ops.

use ndarray::{array, Array1, Array2, Array4};
use num_rational::BigRational;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{backward, bn_channels, interval};
use crate::bounds::ops::{concretize_lower, Accum};
use crate::bounds::Interval;
use crate::eval::exact::forward_f64_point;
use crate::ir::{Conv2d, Graph, Op, Pool2d};

fn q(x: f64) -> BigRational {
    BigRational::from_float(x).expect("finite")
}

fn single(op: Op, shape: Vec<usize>) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", shape);
    let y = g.add_node("n", op, vec![x], "y").expect("valid node");
    g.add_output(y);
    g
}

/// Concretised backward bound of the rows of `lam` (lower bounds) over `b`.
fn backward_rows(g: &Graph, b: &Interval, lam: &Array2<f64>) -> (Vec<f64>, Accum) {
    let mut acc = Accum::new(lam.nrows());
    let li = backward(g, &g.nodes[0], lam, b, &mut acc).expect("backward");
    (concretize_lower(&li, b, &acc), acc)
}

/// The interval rule and the backward rule (identity and negated identity rows) over `b`.
fn both(g: &Graph, b: &Interval) -> (Interval, Interval) {
    let iv = interval(g, &g.nodes[0], b).expect("interval");
    let n = iv.len();
    let mut lam = Array2::zeros((2 * n, n));
    for j in 0..n {
        lam[(j, j)] = 1.0;
        lam[(n + j, j)] = -1.0;
    }
    let (low, _) = backward_rows(g, b, &lam);
    let bw = Interval::new(low[..n].to_vec(), low[n..].iter().map(|v| -v).collect());
    (iv, bw)
}

/// Both bounds contain the exact values at vertices and random points of `b`.
fn check(g: &Graph, b: &Interval, rng: &mut StdRng) -> (Interval, Interval) {
    let (iv, bw) = both(g, b);
    let n = b.len();
    for s in 0..40 {
        let p: Vec<f64> = (0..n)
            .map(|i| match s % 3 {
                0 if rng.random_bool(0.5) => b.lo[i],
                0 => b.hi[i],
                _ => (b.lo[i] + rng.random::<f64>() * (b.hi[i] - b.lo[i])).min(b.hi[i]),
            })
            .collect();
        let ys = forward_f64_point(g, &p).expect("exact evaluation");
        for (j, y) in ys.iter().enumerate() {
            for (name, bd) in [("interval", &iv), ("backward", &bw)] {
                assert!(
                    q(bd.lo[j]) <= y.lo && q(bd.hi[j]) >= y.hi,
                    "{name} bound [{}, {}] of output {j} misses the exact value {:?}",
                    bd.lo[j],
                    bd.hi[j],
                    y
                );
            }
        }
    }
    (iv, bw)
}

/// For a linear op the two rules compute the same enclosure up to rounding.
fn assert_close(a: &Interval, b: &Interval) {
    for j in 0..a.len() {
        let tol = 1e-9 * (a.lo[j].abs() + a.hi[j].abs()) + 1e-300;
        assert!(
            (a.lo[j] - b.lo[j]).abs() <= tol,
            "{j}: {} vs {}",
            a.lo[j],
            b.lo[j]
        );
        assert!(
            (a.hi[j] - b.hi[j]).abs() <= tol,
            "{j}: {} vs {}",
            a.hi[j],
            b.hi[j]
        );
    }
}

fn random_box(rng: &mut StdRng, n: usize, radius: f64) -> Interval {
    let c: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Interval::new(
        c.iter().map(|c| c - radius * rng.random::<f64>()).collect(),
        c.iter().map(|c| c + radius * rng.random::<f64>()).collect(),
    )
}

fn pool(
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    ceil: bool,
    incl: bool,
) -> Pool2d {
    Pool2d {
        kernel,
        strides,
        pads,
        dilations: [1, 1],
        ceil_mode: ceil,
        count_include_pad: incl,
    }
}

#[test]
fn conv_by_hand() {
    let conv = Op::Conv(Conv2d {
        weight: Array4::from_shape_vec((1, 1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]).expect("shape"),
        bias: Some(array![0.5]),
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    });
    let g = single(conv, vec![1, 1, 3, 3]);
    let pt: Vec<f64> = (1..=9).map(f64::from).collect();
    let (iv, bw) = both(&g, &Interval::new(pt.clone(), pt));
    for (j, want) in [37.5, 47.5, 67.5, 77.5].into_iter().enumerate() {
        for v in [iv.lo[j], iv.hi[j], bw.lo[j], bw.hi[j]] {
            assert!((v - want).abs() < 1e-12, "output {j}: {v} vs {want}");
        }
        assert!(iv.lo[j] <= want && want <= iv.hi[j] && bw.lo[j] <= want && want <= bw.hi[j]);
    }
    // x ∈ [0, 1]⁹ with positive weights: every output ranges over [0.5, 10.5].
    let (iv, bw) = both(&g, &Interval::new(vec![0.0; 9], vec![1.0; 9]));
    assert_close(&iv, &Interval::new(vec![0.5; 4], vec![10.5; 4]));
    assert_close(&bw, &iv);
}

/// Input shape, out channels, kernel, strides, pads, dilations, group.
type ConvCase = (
    [usize; 4],
    usize,
    [usize; 2],
    [usize; 2],
    [usize; 4],
    [usize; 2],
    usize,
);

#[test]
fn conv_geometries_are_sound_and_agree() {
    let mut rng = StdRng::seed_from_u64(7);
    let cases: [ConvCase; 4] = [
        ([1, 2, 5, 4], 3, [2, 3], [2, 1], [1, 0, 1, 1], [1, 1], 1),
        ([1, 2, 6, 6], 4, [3, 2], [1, 2], [0, 1, 1, 0], [2, 1], 2),
        ([1, 3, 4, 5], 3, [1, 1], [1, 1], [1, 1, 1, 1], [1, 1], 3),
        ([2, 1, 4, 4], 2, [3, 3], [1, 1], [1; 4], [1, 1], 1),
    ];
    for (k, (shape, oc, kern, strides, pads, dil, group)) in cases.into_iter().enumerate() {
        for exp in [-6, 0, 6] {
            let scale = 10f64.powi(exp);
            let nw = oc * shape[1] / group * kern[0] * kern[1];
            let w: Vec<f64> = (0..nw)
                .map(|_| f64::from(rng.random_range(-1.0f32..1.0)) * scale)
                .collect();
            let weight =
                Array4::from_shape_vec((oc, shape[1] / group, kern[0], kern[1]), w).expect("shape");
            let bias =
                (k % 2 == 0).then(|| Array1::from_shape_fn(oc, |_| rng.random_range(-1.0..1.0)));
            let op = Op::Conv(Conv2d {
                weight,
                bias,
                strides,
                pads,
                dilations: dil,
                group,
            });
            let g = single(op, shape.to_vec());
            let b = random_box(&mut rng, shape.iter().product(), 0.3);
            let (iv, bw) = check(&g, &b, &mut rng);
            assert_close(&iv, &bw);
        }
    }
}

#[test]
fn conv_backward_charges_rounding() {
    let conv = Op::Conv(Conv2d {
        weight: Array4::from_elem((2, 1, 2, 2), 0.1),
        bias: Some(array![0.1, 0.2]),
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    });
    let g = single(conv, vec![1, 1, 3, 3]);
    let b = Interval::new(vec![0.3; 9], vec![0.7; 9]);
    let lam = Array2::from_elem((2, 8), 0.3);
    let (_, acc) = backward_rows(&g, &b, &lam);
    assert!(
        acc.err.iter().all(|&e| e > 0.0 && e < 1e-12),
        "{:?}",
        acc.err
    );
}

#[test]
fn average_pools_by_hand() {
    let pt: Vec<f64> = (1..=6).map(f64::from).collect();
    let b = Interval::new(pt.clone(), pt);
    for (incl, last) in [(true, 2.25), (false, 4.5)] {
        let g = single(
            Op::AveragePool(pool([2, 2], [1, 1], [0, 0, 0, 1], false, incl)),
            vec![1, 1, 2, 3],
        );
        let (iv, bw) = both(&g, &b);
        for (j, want) in [3.0, 4.0, last].into_iter().enumerate() {
            for v in [iv.lo[j], iv.hi[j], bw.lo[j], bw.hi[j]] {
                assert!(
                    (v - want).abs() < 1e-12,
                    "include_pad {incl}, output {j}: {v}"
                );
            }
        }
    }
    // 1/3 is not a float: the mean of [0, 1]³ must still enclose [0, 1] exactly.
    let g = single(Op::GlobalAveragePool, vec![1, 1, 1, 3]);
    let b = Interval::new(vec![0.0; 3], vec![1.0; 3]);
    let mut rng = StdRng::seed_from_u64(1);
    let (iv, bw) = check(&g, &b, &mut rng);
    assert!(iv.lo[0] <= 0.0 && iv.hi[0] >= 1.0 && bw.lo[0] <= 0.0 && bw.hi[0] >= 1.0);
    assert_close(&iv, &bw);
}

#[test]
fn pool_geometries_are_sound() {
    let mut rng = StdRng::seed_from_u64(11);
    let geos = [
        pool([2, 2], [2, 2], [0; 4], false, false),
        pool([2, 2], [1, 1], [1, 1, 1, 1], false, true),
        pool([2, 1], [2, 1], [1, 0, 1, 0], true, false),
        pool([3, 2], [2, 2], [1, 1, 0, 1], true, true),
        pool([1, 2], [1, 1], [0; 4], false, false),
    ];
    for (k, p) in geos.into_iter().enumerate() {
        for shape in [vec![1, 2, 4, 5], vec![1, 1, 5, 3]] {
            let n = shape.iter().product();
            for op in [
                Op::AveragePool(p.clone()),
                Op::MaxPool(p.clone()),
                Op::GlobalAveragePool,
            ] {
                let linear = !matches!(op, Op::MaxPool(_));
                let g = single(op, shape.clone());
                for radius in [1e-3, 1.0] {
                    let b = random_box(&mut rng, n, radius * (k + 1) as f64);
                    let (iv, bw) = check(&g, &b, &mut rng);
                    if linear {
                        assert_close(&iv, &bw);
                    }
                }
            }
        }
    }
}

#[test]
fn max_pool_by_hand() {
    // Overlapping windows {x0, x1} and {x1, x2}.
    let g = single(
        Op::MaxPool(pool([1, 2], [1, 1], [0; 4], false, false)),
        vec![1, 1, 1, 3],
    );
    let b = Interval::new(vec![0.0, 2.0, -1.0], vec![1.0, 3.0, 2.5]);
    let mut rng = StdRng::seed_from_u64(3);
    let (iv, bw) = check(&g, &b, &mut rng);
    assert_eq!(iv, Interval::new(vec![2.0, 2.0], vec![3.0, 3.0]));
    // Concretisation rounds outward, so the backward bounds are the same up to rounding.
    assert_close(&bw, &iv);
    assert!(bw.lo.iter().all(|&v| v <= 2.0) && bw.hi.iter().all(|&v| v >= 3.0));
    // y0 = x1 exactly; y1 ≥ x1 and y1 ≤ 3: y0 + y1 ≥ 2 x1 ≥ 4, y0 − y1 ≥ x1 − 3 ≥ −1.
    let lam = array![[1.0, 1.0], [1.0, -1.0], [0.0, -1.0]];
    let mut acc = Accum::new(3);
    let li = backward(&g, &g.nodes[0], &lam, &b, &mut acc).expect("backward");
    assert_eq!(
        li,
        array![[0.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    );
    assert_eq!(acc.bias, vec![0.0, -3.0, -3.0]);
    let low = concretize_lower(&li, &b, &acc);
    assert!(low[0] <= 4.0 && low[0] > 4.0 - 1e-12);
    assert!(low[1] <= -1.0 && low[1] > -1.0 - 1e-12);
}

#[test]
fn a_window_inside_the_padding_is_refused() {
    let g = single(
        Op::MaxPool(pool([1, 1], [1, 1], [1, 0, 0, 0], false, false)),
        vec![1, 1, 2, 2],
    );
    let b = Interval::new(vec![0.0; 4], vec![1.0; 4]);
    let e = interval(&g, &g.nodes[0], &b).expect_err("window in the padding");
    assert!(e.to_string().contains("padding"), "{e}");
}

fn batch_norm(scale: Array1<f64>, var: Array1<f64>, eps: f64) -> Op {
    let c = scale.len();
    Op::BatchNorm {
        scale,
        bias: Array1::from_shape_fn(c, |i| 0.5 - i as f64),
        mean: Array1::from_shape_fn(c, |i| 1.0 + 0.25 * i as f64),
        var,
        epsilon: eps,
    }
}

#[test]
fn batch_norm_by_hand() {
    // var 0.25: sqrt is exact, y = 2 (x − 1) + 0.5; over [0, 2]: [−1.5, 2.5].
    let g = single(batch_norm(array![1.0], array![0.25], 0.0), vec![1, 1, 1, 1]);
    let (iv, bw) = both(&g, &Interval::new(vec![0.0], vec![2.0]));
    assert_close(&iv, &Interval::new(vec![-1.5], vec![2.5]));
    assert_close(&bw, &iv);
    assert!(iv.lo[0] <= -1.5 && iv.hi[0] >= 2.5 && bw.lo[0] <= -1.5 && bw.hi[0] >= 2.5);
}

#[test]
fn batch_norm_channels_are_sound_and_agree() {
    let mut rng = StdRng::seed_from_u64(5);
    let ops = [
        batch_norm(array![1.0, -3.0, 0.0], array![0.25, 2.0, 1.0], 1e-5),
        batch_norm(array![0.1, 7.5, -0.3], array![0.1, 1e-3, 4.0], 0.0),
    ];
    for op in ops {
        for shape in [vec![1, 3, 2, 2], vec![1, 3], vec![2, 3, 1, 2]] {
            let g = single(op.clone(), shape.clone());
            for radius in [1e-6, 1.0, 1e3] {
                let b = random_box(&mut rng, shape.iter().product(), radius);
                let (iv, bw) = check(&g, &b, &mut rng);
                assert_close(&iv, &bw);
            }
        }
    }
}

/// The charged `err` covers the actual rounding of `lam_in` against the input magnitudes:
/// `Σ_j |(lam A)_ij − fl(lam A)_ij| m_j ≤ err_i`, with `A` recovered exactly column by column
/// from the exact evaluator (no bias, so `A e_j` is column `j`).
#[test]
fn linear_backward_charge_covers_the_rounding() {
    let mut rng = StdRng::seed_from_u64(13);
    let conv = Op::Conv(Conv2d {
        weight: Array4::from_shape_fn((2, 2, 2, 2), |_| f64::from(rng.random_range(-1.0f32..1.0))),
        bias: None,
        strides: [1, 1],
        pads: [1, 0, 0, 1],
        dilations: [1, 1],
        group: 1,
    });
    let avg = Op::AveragePool(pool([2, 2], [1, 1], [1, 1, 0, 0], false, false));
    for op in [conv, avg] {
        let g = single(op, vec![1, 2, 3, 3]);
        let n = 18;
        let b = random_box(&mut rng, n, 1.0);
        let cols: Vec<_> = (0..n)
            .map(|j| {
                let e: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i == j))).collect();
                forward_f64_point(&g, &e).expect("exact evaluation")
            })
            .collect();
        let m_out = cols[0].len();
        let lam = Array2::from_shape_fn((4, m_out), |_| rng.random_range(-1.0..1.0) / 3.0);
        let mut acc = Accum::new(4);
        let li = backward(&g, &g.nodes[0], &lam, &b, &mut acc).expect("backward");
        let mag = b.magnitude();
        for i in 0..4 {
            let mut needed = q(0.0);
            for j in 0..n {
                let exact = (0..m_out).fold(q(0.0), |s, o| s + q(lam[(i, o)]) * &cols[j][o].lo);
                let d = exact - q(li[(i, j)]);
                needed += if d < q(0.0) { -d } else { d } * q(mag[j]);
            }
            assert!(
                needed > q(0.0),
                "no rounding happened: the test proves nothing"
            );
            assert!(
                needed <= q(acc.err[i]),
                "row {i}: err {} too small",
                acc.err[i]
            );
        }
    }
}

/// The BatchNorm factor enclosure holds exactly: `κ_lo ≤ scale / sqrt(var + eps) ≤ κ_hi`
/// (compared through squares), and the midpoint ± radius covers it.
#[test]
fn batch_norm_factor_encloses_the_irrational_factor() {
    let scale = array![1.0, -3.0, 0.1, 7.5, 1e-3, -1e3];
    let var = array![2.0, 0.1, 1e-3, 3.0, 1e5, 0.7];
    for eps in [0.0, 1e-5, 1e-3] {
        let g = single(
            batch_norm(scale.clone(), var.clone(), eps),
            vec![1, 6, 1, 1],
        );
        let (chs, _) = bn_channels(&g, &g.nodes[0]).expect("channels");
        for (c, ch) in chs.iter().enumerate() {
            // |κ| = |scale| / sqrt(v): |κ|² v = scale², and κ has the sign of scale.
            let v = q(var[c]) + q(eps);
            let s2 = q(scale[c]) * q(scale[c]);
            let [lo, hi] = if scale[c] > 0.0 {
                ch.k
            } else {
                [-ch.k[1], -ch.k[0]]
            };
            assert!(
                lo > 0.0 && q(lo) * q(lo) * &v <= s2,
                "channel {c}: κ_lo {lo} too high"
            );
            assert!(q(hi) * q(hi) * &v >= s2, "channel {c}: κ_hi {hi} too low");
            assert!(q(ch.mid) - q(ch.rad) <= q(ch.k[0]) && q(ch.mid) + q(ch.rad) >= q(ch.k[1]));
            assert!(
                ch.k[1] - ch.k[0] <= 1e-14 * ch.k[1].abs(),
                "channel {c}: enclosure too wide"
            );
        }
    }
}
