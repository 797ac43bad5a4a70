//! Unit tests of the float evaluators: hand-computed cases for every operator, f32/f64
//! agreement, chunked vs row-by-row evaluation, and f64 vs exact agreement on random
//! networks.

use ndarray::{array, Array1, Array2, Array4, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::ir::{Conv2d, Graph, Op, Pool2d};

/// A one-input, one-output chain of ops on a sample of shape `shape`.
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

fn run1(g: &Graph, x: &[f64]) -> Vec<f64> {
    let inp = Array2::from_shape_vec((1, x.len()), x.to_vec()).unwrap();
    forward_f64(g, inp.view()).unwrap().row(0).to_vec()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

fn conv(
    weight: Array4<f64>,
    bias: Option<Array1<f64>>,
    stride: usize,
    pad: usize,
    dil: usize,
    group: usize,
) -> Op {
    Op::Conv(Conv2d {
        weight,
        bias,
        strides: [stride; 2],
        pads: [pad; 4],
        dilations: [dil; 2],
        group,
    })
}

fn pool(k: usize, stride: usize, pad: usize, dil: usize, ceil: bool, include: bool) -> Pool2d {
    Pool2d {
        kernel: [k; 2],
        strides: [stride; 2],
        pads: [pad; 4],
        dilations: [dil; 2],
        ceil_mode: ceil,
        count_include_pad: include,
    }
}

const IMG: [f64; 9] = [1., 2., 3., 4., 5., 6., 7., 8., 9.];

#[test]
fn linear_with_bias_on_a_batch() {
    let g = chain(
        &[1, 2],
        vec![Op::Linear {
            weight: array![[1., 2.], [-1., 0.5], [0., 3.]],
            bias: Some(array![0.5, 0., -1.]),
        }],
    );
    let y = forward_f64(&g, array![[1., 2.], [-2., 4.]].view()).unwrap();
    assert_eq!(y, array![[5.5, 0., 5.], [6.5, 4., 11.]]);
    let empty = forward_f64(&g, Array2::zeros((0, 2)).view()).unwrap();
    assert_eq!(empty.dim(), (0, 3));
}

#[test]
fn conv_padding_stride_dilation_groups() {
    let ones = Array4::ones((1, 1, 2, 2));
    let g = chain(&[1, 1, 3, 3], vec![conv(ones.clone(), None, 2, 1, 1, 1)]);
    assert_eq!(run1(&g, &IMG), vec![1., 5., 11., 28.]);
    let g = chain(
        &[1, 1, 3, 3],
        vec![conv(ones, Some(array![0.5]), 1, 0, 2, 1)],
    );
    assert_eq!(run1(&g, &IMG), vec![20.5]);
    // Two groups of one channel each: channel 0 ·2 + 1, channel 1 ·3 − 1.
    let w = Array4::from_shape_vec((2, 1, 1, 1), vec![2., 3.]).unwrap();
    let g = chain(
        &[1, 2, 1, 2],
        vec![conv(w, Some(array![1., -1.]), 1, 0, 1, 2)],
    );
    assert_eq!(run1(&g, &[1., 2., 3., 4.]), vec![3., 5., 8., 11.]);
    // Two groups, two output channels each, 2x2 kernel over a 2x2 image: dot products.
    let w = Array4::from_shape_vec((4, 1, 2, 2), (0..16).map(f64::from).collect()).unwrap();
    let g = chain(&[1, 2, 2, 2], vec![conv(w, None, 1, 0, 1, 2)]);
    let x = [1., 0., 0., 1., 0., 1., 1., 0.];
    assert_eq!(run1(&g, &x), vec![3., 11., 19., 27.]);
}

#[test]
fn pools_with_ceil_mode_padding_and_dilation() {
    let mx = |p| chain(&[1, 1, 3, 3], vec![Op::MaxPool(p)]);
    let avg = |p| chain(&[1, 1, 3, 3], vec![Op::AveragePool(p)]);
    assert_eq!(
        run1(&mx(pool(2, 2, 0, 1, true, false)), &IMG),
        vec![5., 6., 8., 9.]
    );
    assert_eq!(run1(&mx(pool(2, 2, 0, 1, false, false)), &IMG), vec![5.]);
    assert_eq!(
        run1(&avg(pool(2, 2, 0, 1, true, false)), &IMG),
        vec![3., 4.5, 7.5, 9.]
    );
    assert_eq!(
        run1(&avg(pool(2, 2, 0, 1, true, true)), &IMG),
        vec![3., 4.5, 7.5, 9.]
    );
    // Padding 1: corner windows see one real cell.
    assert_eq!(
        run1(&avg(pool(2, 2, 1, 1, false, true)), &IMG),
        vec![0.25, 1.25, 2.75, 7.]
    );
    assert_eq!(
        run1(&avg(pool(2, 2, 1, 1, false, false)), &IMG),
        vec![1., 2.5, 5.5, 7.]
    );
    // Max over padding: padding is −∞, so negative inputs survive.
    let neg: Vec<f64> = IMG.iter().map(|v| -v).collect();
    assert_eq!(
        run1(&mx(pool(2, 2, 1, 1, false, false)), &neg),
        vec![-1., -2., -4., -5.]
    );
    // Dilation 2 skips the centre.
    let x = [1., 2., 3., 4., 50., 6., 7., 8., 9.];
    assert_eq!(run1(&mx(pool(2, 1, 0, 2, false, false)), &x), vec![9.]);
    assert_eq!(run1(&mx(pool(3, 1, 0, 1, false, false)), &x), vec![50.]);
    let g = chain(&[1, 1, 3, 3], vec![Op::GlobalAveragePool]);
    assert_eq!(run1(&g, &IMG), vec![5.]);
}

#[test]
fn constants_broadcast_numpy_style() {
    let c = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1., 2., 3.]).unwrap();
    let g = chain(&[1, 2, 3], vec![Op::AddConst(c.clone())]);
    assert_eq!(
        run1(&g, &[0., 0., 0., 10., 10., 10.]),
        vec![1., 2., 3., 11., 12., 13.]
    );
    let c2 = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![2., -1.]).unwrap();
    let g = chain(&[1, 2, 3], vec![Op::MulConst(c2.clone())]);
    assert_eq!(
        run1(&g, &[1., 2., 3., 4., 5., 6.]),
        vec![2., 4., 6., -4., -5., -6.]
    );
    // The constant can grow the sample: [1, 1, 3] / [2, 1] -> [1, 2, 3].
    let g = chain(&[1, 1, 3], vec![Op::DivConst(c2)]);
    assert_eq!(g.value(g.outputs[0]).shape, vec![1, 2, 3]);
    assert_eq!(run1(&g, &[2., 4., 6.]), vec![1., 2., 3., -2., -4., -6.]);
}

#[test]
fn two_input_add_and_sub_broadcast_and_concatenate_columns() {
    let mut g = Graph::new();
    let x = g.add_input("x", vec![1, 2, 3]);
    let y = g.add_input("y", vec![3]);
    let s = g.add_node("add", Op::Add, vec![x, y], "s").unwrap();
    let d = g.add_node("sub", Op::Sub, vec![y, x], "d").unwrap();
    g.add_output(s);
    g.add_output(d);
    let out = run1(&g, &[1., 2., 3., 4., 5., 6., 10., 20., 30.]);
    assert_eq!(out[..6], [11., 22., 33., 14., 25., 36.]);
    assert_eq!(out[6..], [9., 18., 27., 6., 15., 24.]);
    let err = forward_f64(&g, Array2::zeros((1, 8)).view()).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)));
    assert!(err.to_string().contains("9 input values"), "{err}");
}

#[test]
fn batch_norm_and_activations() {
    let bn = Op::BatchNorm {
        scale: array![2., 3.],
        bias: array![0.5, -1.],
        mean: array![1., 2.],
        var: array![3., 0.],
        epsilon: 1.0,
    };
    let g = chain(&[1, 2, 1, 1], vec![bn]);
    assert_eq!(run1(&g, &[5., 4.]), vec![4.5, 5.]);
    let x = [-2., 0., 3.0f64.ln()];
    assert_eq!(run1(&chain(&[3], vec![Op::Relu]), &x), vec![0., 0., x[2]]);
    assert_eq!(
        run1(&chain(&[3], vec![Op::LeakyRelu { alpha: 0.25 }]), &x),
        vec![-0.5, 0., x[2]]
    );
    assert_close(
        &run1(&chain(&[3], vec![Op::Sigmoid]), &x),
        &[1. / (1. + 2f64.exp()), 0.5, 0.75],
        1e-15,
    );
    assert_close(
        &run1(&chain(&[3], vec![Op::Tanh]), &x),
        &[(-2f64).tanh(), 0., 0.8],
        1e-15,
    );
    let sm = run1(
        &chain(&[1, 3], vec![Op::Softmax { axis: 1 }]),
        &[0., 2f64.ln(), 0.],
    );
    assert_close(&sm, &[0.25, 0.5, 0.25], 1e-15);
}

#[test]
fn reshape_and_transpose() {
    let x = [1., 2., 3., 4., 5., 6.];
    let g = chain(
        &[1, 2, 3],
        vec![Op::Transpose {
            perm: vec![0, 2, 1],
        }],
    );
    assert_eq!(run1(&g, &x), vec![1., 4., 2., 5., 3., 6.]);
    let g = chain(
        &[1, 2, 3],
        vec![
            Op::Reshape { shape: vec![3, 2] },
            Op::Transpose { perm: vec![1, 0] },
        ],
    );
    assert_eq!(run1(&g, &x), vec![1., 3., 5., 2., 4., 6.]);
    let all = forward_all_f64(
        &g,
        Array2::from_shape_vec((1, 6), x.to_vec()).unwrap().view(),
    )
    .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].shape(), &[1, 3, 2]);
    assert_eq!(all[2].shape(), &[1, 2, 3]);
}

fn rand_array(rng: &mut StdRng, shape: &[usize], scale: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(-scale..scale))
}

/// A random dense network: Linear, Relu, LeakyRelu, Add/Sub, constants.
pub(crate) fn random_mlp(rng: &mut StdRng) -> Graph {
    let mut g = Graph::new();
    let n = rng.random_range(2..6);
    let mut v = g.add_input("x", vec![1, n]);
    let x0 = v;
    let mut width = n;
    for layer in 0..3 {
        let out = rng.random_range(2..7);
        let w = rand_array(rng, &[out, width], 1.0)
            .into_dimensionality()
            .unwrap();
        let b = rand_array(rng, &[out], 1.0).into_dimensionality().unwrap();
        v = g
            .add_node(
                format!("fc{layer}"),
                Op::Linear {
                    weight: w,
                    bias: Some(b),
                },
                vec![v],
                format!("h{layer}"),
            )
            .unwrap();
        let act = if layer % 2 == 0 {
            Op::Relu
        } else {
            Op::LeakyRelu { alpha: -0.3 }
        };
        v = g
            .add_node(format!("act{layer}"), act, vec![v], format!("a{layer}"))
            .unwrap();
        width = out;
    }
    let back = g
        .add_node(
            "back",
            Op::Linear {
                weight: rand_array(rng, &[n, width], 1.0)
                    .into_dimensionality()
                    .unwrap(),
                bias: None,
            },
            vec![v],
            "back",
        )
        .unwrap();
    let r = g.add_node("res", Op::Sub, vec![back, x0], "res").unwrap();
    let c = g
        .add_node(
            "div",
            Op::DivConst(rand_array(rng, &[n], 3.0)),
            vec![r],
            "div",
        )
        .unwrap();
    let m = g
        .add_node(
            "mul",
            Op::MulConst(rand_array(rng, &[1], 2.0)),
            vec![c],
            "mul",
        )
        .unwrap();
    let a = g
        .add_node(
            "add",
            Op::AddConst(rand_array(rng, &[1, n], 1.0)),
            vec![m],
            "out",
        )
        .unwrap();
    g.add_output(a);
    g
}

/// A random small CNN: Conv (groups, padding, dilation), pools, BatchNorm, Reshape,
/// Transpose, Linear, Sigmoid, Tanh, Softmax.
pub(crate) fn random_cnn(rng: &mut StdRng) -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", vec![1, 2, 6, 5]);
    let w = rand_array(rng, &[4, 1, 3, 2], 1.0)
        .into_dimensionality()
        .unwrap();
    let c = conv(
        w,
        Some(rand_array(rng, &[4], 1.0).into_dimensionality().unwrap()),
        1,
        1,
        1,
        2,
    );
    let mut v = g.add_node("conv", c, vec![x], "c").unwrap();
    v = g.add_node("tanh", Op::Tanh, vec![v], "t").unwrap();
    let bn = Op::BatchNorm {
        scale: rand_array(rng, &[4], 2.0).into_dimensionality().unwrap(),
        bias: rand_array(rng, &[4], 1.0).into_dimensionality().unwrap(),
        mean: rand_array(rng, &[4], 1.0).into_dimensionality().unwrap(),
        var: rand_array(rng, &[4], 1.0)
            .mapv(f64::abs)
            .into_dimensionality()
            .unwrap(),
        epsilon: 1e-5,
    };
    v = g.add_node("bn", bn, vec![v], "bn").unwrap();
    let w2 = rand_array(rng, &[3, 4, 2, 2], 1.0)
        .into_dimensionality()
        .unwrap();
    v = g
        .add_node("conv2", conv(w2, None, 1, 0, 2, 1), vec![v], "c2")
        .unwrap();
    v = g.add_node("relu", Op::Relu, vec![v], "r").unwrap();
    let mut p = pool(2, 2, 1, 1, true, false);
    p.pads = [1, 0, 0, 1];
    v = g
        .add_node("max", Op::MaxPool(p.clone()), vec![v], "m")
        .unwrap();
    p.count_include_pad = true;
    p.kernel = [2, 1];
    p.strides = [1, 1];
    v = g.add_node("avg", Op::AveragePool(p), vec![v], "a").unwrap();
    let shape = g.value(v).shape.clone();
    let flat: usize = shape.iter().product();
    v = g
        .add_node(
            "flat",
            Op::Reshape {
                shape: vec![1, flat],
            },
            vec![v],
            "f",
        )
        .unwrap();
    let w3 = rand_array(rng, &[4, flat], 1.0)
        .into_dimensionality()
        .unwrap();
    v = g
        .add_node(
            "fc",
            Op::Linear {
                weight: w3,
                bias: None,
            },
            vec![v],
            "fc",
        )
        .unwrap();
    v = g.add_node("sig", Op::Sigmoid, vec![v], "s").unwrap();
    v = g
        .add_node("tr", Op::Transpose { perm: vec![1, 0] }, vec![v], "tr")
        .unwrap();
    v = g
        .add_node("sm", Op::Softmax { axis: 0 }, vec![v], "sm")
        .unwrap();
    g.add_output(v);
    let gap_in = g
        .add_node("gap", Op::GlobalAveragePool, vec![x], "gap")
        .unwrap();
    g.add_output(gap_in);
    g
}

fn random_inputs(rng: &mut StdRng, rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-2.0..2.0))
}

#[test]
fn f32_agrees_with_f64_and_chunks_agree_with_rows() {
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..10 {
        let g = if i % 2 == 0 {
            random_mlp(&mut rng)
        } else {
            random_cnn(&mut rng)
        };
        let x = random_inputs(&mut rng, 300, g.input_size());
        let y64 = forward_f64(&g, x.view()).unwrap();
        let y32 = forward_f32(&g, x.mapv(|v| v as f32).view()).unwrap();
        for (a, b) in y64.iter().zip(y32.iter()) {
            assert!(
                (a - *b as f64).abs() <= 1e-3 * (1.0 + a.abs()),
                "{a} vs {b}"
            );
        }
        for r in [0, 150, 299] {
            let one = forward_f64(&g, x.slice(ndarray::s![r..r + 1, ..])).unwrap();
            assert_close(&one.row(0).to_vec(), &y64.row(r).to_vec(), 1e-12);
        }
    }
}

#[test]
fn f64_agrees_with_exact_on_random_networks() {
    let mut rng = StdRng::seed_from_u64(11);
    for i in 0..12 {
        let g = if i % 2 == 0 {
            random_mlp(&mut rng)
        } else {
            random_cnn(&mut rng)
        };
        let x = random_inputs(&mut rng, 3, g.input_size());
        let y = forward_f64(&g, x.view()).unwrap();
        for r in 0..3 {
            let ex = exact::forward_f64_point(&g, &x.row(r).to_vec()).unwrap();
            assert_eq!(ex.len(), y.ncols());
            for (iv, &v) in ex.iter().zip(y.row(r)) {
                // The mlp is piecewise linear: exact points. The cnn has enclosures.
                if i % 2 == 0 {
                    assert!(iv.is_point());
                }
                let d = iv.max_distance_f64(v);
                assert!(
                    d <= 1e-12 * (1.0 + v.abs()),
                    "net {i}: {v} vs {iv:?} (distance {d})"
                );
            }
        }
    }
}

/// `forward_f32` fuses a Linear layer with the ReLU after it and runs activations in place;
/// `forward_all` (which keeps every value) does neither. Both must give the same bits, and
/// stay close to the `f64` evaluation.
#[test]
fn f32_fused_and_unfused_paths_agree_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(12);
    for i in 0..16 {
        let g = if i % 4 == 3 {
            random_cnn(&mut rng)
        } else {
            random_mlp(&mut rng)
        };
        let rows = [1, 7, 70, 300][i % 4];
        let x = random_inputs(&mut rng, rows, g.input_size());
        let x32 = x.mapv(|v| v as f32);
        let fused = forward_f32(&g, x32.view()).unwrap();
        let all = forward_all(&g, x32.view()).unwrap();
        // Row by row, the outputs in order (as `forward` concatenates them).
        let mut cols: Vec<f32> = Vec::new();
        for r in 0..rows {
            for &o in &g.outputs {
                let v = all[o.0].as_standard_layout();
                let per = v.len() / rows;
                cols.extend_from_slice(&v.as_slice().unwrap()[r * per..(r + 1) * per]);
            }
        }
        let fused_bits: Vec<u32> = fused.iter().map(|v| v.to_bits()).collect();
        let all_bits: Vec<u32> = cols.iter().map(|v| v.to_bits()).collect();
        assert_eq!(fused_bits, all_bits, "net {i}");
        let y64 = forward_f64(&g, x.view()).unwrap();
        for (a, b) in fused.iter().zip(y64.iter()) {
            assert!(
                ((*a as f64) - b).abs() <= 1e-3 * (1.0 + b.abs()),
                "net {i}: {a} vs {b}"
            );
        }
    }
}
