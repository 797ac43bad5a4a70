//! Small helpers shared by the generators: parameter checks that name the bad key, categorical
//! draws, a Poisson draw that accepts a zero mean, and Cholesky factors of fixed correlation
//! matrices.

use ndarray::{Array2, ArrayViewMut1, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, Poisson};
use rayon::prelude::*;

/// `Err("KEY: WHY")` unless `ok`.
pub(crate) fn check(ok: bool, key: &str, why: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("`{key}` {why}"))
    }
}

/// A finite number in `[lo, hi]`.
pub(crate) fn check_range(v: f64, key: &str, lo: f64, hi: f64) -> Result<(), String> {
    check(
        v.is_finite() && v >= lo && v <= hi,
        key,
        &format!("must be in [{lo}, {hi}] (got {v})"),
    )
}

/// A finite number > 0.
pub(crate) fn check_positive(v: f64, key: &str) -> Result<(), String> {
    check(
        v.is_finite() && v > 0.0,
        key,
        &format!("must be a finite number > 0 (got {v})"),
    )
}

/// A finite number >= 0.
pub(crate) fn check_nonneg(v: f64, key: &str) -> Result<(), String> {
    check(
        v.is_finite() && v >= 0.0,
        key,
        &format!("must be a finite number >= 0 (got {v})"),
    )
}

/// Non-empty, non-negative, finite weights with a positive sum (normalised when drawn).
pub(crate) fn check_probs(p: &[f64], key: &str) -> Result<(), String> {
    check(!p.is_empty(), key, "must list at least one weight")?;
    check(
        p.iter().all(|v| v.is_finite() && *v >= 0.0) && p.iter().sum::<f64>() > 0.0,
        key,
        "must be finite weights >= 0 with a positive sum",
    )
}

/// Index drawn with probability proportional to `weights`.
pub(crate) fn categorical(weights: &[f64], rng: &mut StdRng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// Poisson(`lambda`) as f64; 0 for `lambda <= 0`.
pub(crate) fn poisson(lambda: f64, rng: &mut StdRng) -> f64 {
    if lambda > 0.0 && lambda.is_finite() {
        match Poisson::new(lambda) {
            Ok(d) => d.sample(rng),
            Err(_) => lambda,
        }
    } else {
        0.0
    }
}

/// Gamma with the given shape and scale; the mean `shape*scale` when the parameters are
/// degenerate (scale 0).
pub(crate) fn gamma(shape: f64, scale: f64, rng: &mut StdRng) -> f64 {
    match Gamma::new(shape, scale) {
        Ok(d) => d.sample(rng),
        Err(_) => shape * scale,
    }
}

/// Fills the rows of `x` on all cores: row i is drawn by `f` from its own RNG, seeded by the
/// i-th `u64` drawn from `rng`, so the result does not depend on the thread count. Returns
/// `f`'s results in row order.
pub(crate) fn par_rows<T: Send>(
    x: &mut Array2<f64>,
    rng: &mut StdRng,
    f: impl Fn(ArrayViewMut1<'_, f64>, &mut StdRng) -> T + Sync,
) -> Vec<T> {
    let seeds: Vec<u64> = (0..x.nrows()).map(|_| rng.random()).collect();
    x.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(seeds)
        .map(|(row, seed)| f(row, &mut StdRng::seed_from_u64(seed)))
        .collect()
}

/// Lower-triangular Cholesky factor of a symmetric positive-definite matrix (row-major n×n);
/// `None` when it is not positive definite.
pub(crate) fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn cholesky_reproduces_the_matrix() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((s - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn categorical_follows_weights() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[categorical(&[1.0, 0.0, 3.0], &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        // Binomial SD of the share of class 0 is ~0.0025; 0.01 is 4 SD.
        assert!((counts[0] as f64 / 30_000.0 - 0.25).abs() < 0.01);
    }
}
