//! Helpers of the soundness property tests: points of a box to evaluate exactly, and the
//! check that a bound does not exclude an exact value.
#![allow(dead_code)]

use beacons::bounds::Interval;
use beacons::engine;
use beacons::eval::exact::RatInterval;
use ndarray::Array2;
use num_rational::BigRational;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::Rng;

/// A random box around a centre in `[-1, 1]^n`, each side at most `radius` from it.
pub fn random_box(rng: &mut StdRng, n: usize, radius: f64) -> Interval {
    let centre: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Interval::new(
        centre
            .iter()
            .map(|c| c - radius * rng.random::<f64>())
            .collect(),
        centre
            .iter()
            .map(|c| c + radius * rng.random::<f64>())
            .collect(),
    )
}

/// Fails unless every bound of `tight` lies inside the matching bound of `loose`.
pub fn check_nested(
    tight: &engine::BoxBounds,
    loose: &engine::BoxBounds,
    what: &str,
) -> Result<(), TestCaseError> {
    for j in 0..tight.outputs.len() {
        prop_assert!(
            tight.outputs.lo[j] >= loose.outputs.lo[j]
                && tight.outputs.hi[j] <= loose.outputs.hi[j],
            "{what}: output {j} [{}, {}] not inside [{}, {}]",
            tight.outputs.lo[j],
            tight.outputs.hi[j],
            loose.outputs.lo[j],
            loose.outputs.hi[j]
        );
    }
    for (i, (t, l)) in tight.rows.iter().zip(&loose.rows).enumerate() {
        prop_assert!(t >= l, "{what}: row {i} lower bound {t} below {l}");
    }
    Ok(())
}

pub fn q(x: f64) -> BigRational {
    BigRational::from_float(x).expect("finite")
}

/// Points of the box: every vertex when there are at most 64, else `vertices` random ones;
/// the centre; and `samples` uniform points (clamped into the box).
pub fn points(rng: &mut StdRng, b: &Interval, vertices: usize, samples: usize) -> Vec<Vec<f64>> {
    let n = b.len();
    let mut pts: Vec<Vec<f64>> = if n <= 6 {
        (0..(1u32 << n))
            .map(|mask| {
                (0..n)
                    .map(|i| if mask >> i & 1 == 1 { b.hi[i] } else { b.lo[i] })
                    .collect()
            })
            .collect()
    } else {
        (0..vertices)
            .map(|_| {
                (0..n)
                    .map(|i| {
                        if rng.random_bool(0.5) {
                            b.hi[i]
                        } else {
                            b.lo[i]
                        }
                    })
                    .collect()
            })
            .collect()
    };
    pts.push(
        (0..n)
            .map(|i| b.lo[i] + 0.5 * (b.hi[i] - b.lo[i]))
            .collect(),
    );
    for _ in 0..samples {
        pts.push(
            (0..n)
                .map(|i| (b.lo[i] + rng.random::<f64>() * (b.hi[i] - b.lo[i])).min(b.hi[i]))
                .collect(),
        );
    }
    pts
}

/// Fails when a bound excludes the exact enclosure `ys` of the true outputs.
pub fn check_inside(
    ys: &[RatInterval],
    out: &engine::BoxBounds,
    c: &Array2<f64>,
    what: &str,
) -> Result<(), TestCaseError> {
    for (j, y) in ys.iter().enumerate() {
        prop_assert!(
            q(out.outputs.lo[j]) <= y.hi,
            "{what}: output {j} lower bound {} above the exact value {:?}",
            out.outputs.lo[j],
            y
        );
        prop_assert!(
            q(out.outputs.hi[j]) >= y.lo,
            "{what}: output {j} upper bound {} below the exact value {:?}",
            out.outputs.hi[j],
            y
        );
    }
    for (i, row) in c.rows().into_iter().enumerate() {
        // The largest a·y over the enclosure: the row's lower bound may not exceed it.
        let mut v = BigRational::from_integer(0.into());
        for (a, y) in row.iter().zip(ys) {
            v += q(*a) * if *a >= 0.0 { &y.hi } else { &y.lo };
        }
        prop_assert!(
            q(out.rows[i]) <= v,
            "{what}: row {i} lower bound {} above the exact value",
            out.rows[i]
        );
    }
    Ok(())
}
