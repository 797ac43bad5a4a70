//! Column-wise perturbations: noise, batch effects, dropout, missing values with imputation,
//! unit mistakes, out-of-range values and sensor saturation. They act on any layout (an
//! image's pixels and a signal's samples are columns too) unless a feature list narrows them.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

use super::{units, Context, Impute, Layout, Perturbation};

pub(super) fn default_oor_fraction() -> f64 {
    0.2
}

/// `x + sd·z` (`sd·|x|·z` when relative), z standard normal, one draw per entry.
pub fn gaussian(x: &mut Array2<f64>, cols: &[usize], sd: f64, relative: bool, rng: &mut StdRng) {
    for mut r in x.rows_mut() {
        for &j in cols {
            let z: f64 = StandardNormal.sample(rng);
            let scale = if relative { r[j].abs() } else { 1.0 };
            r[j] += sd * scale * z;
        }
    }
}

/// Shot noise: `Poisson(x / g)·g` for `g > 0` (negative values count as 0 photons).
pub fn poisson(x: &mut Array2<f64>, cols: &[usize], g: f64, rng: &mut StdRng) {
    for mut r in x.rows_mut() {
        for &j in cols {
            // One uniform per entry even at g = 0 keeps the stream aligned across severities.
            let u: u64 = rng.random();
            if g <= 0.0 {
                continue;
            }
            let lambda = (r[j] / g).max(0.0);
            let mut sub = <StdRng as rand::SeedableRng>::seed_from_u64(u);
            r[j] = if lambda > 0.0 && lambda < 1e15 {
                Poisson::new(lambda)
                    .map(|p| p.sample(&mut sub))
                    .unwrap_or(lambda)
                    * g
            } else {
                lambda * g
            };
        }
    }
}

/// Multiplicative batch effect: one factor `exp(log_sd·z)` per (batch, column); a cohort
/// without batches is one batch (a new site).
pub fn batch_effect(
    x: &mut Array2<f64>,
    cols: &[usize],
    batch: Option<&[usize]>,
    log_sd: f64,
    rng: &mut StdRng,
) {
    let batches = batch
        .map(|b| b.iter().copied().max().unwrap_or(0) + 1)
        .unwrap_or(1);
    let width = x.ncols();
    let z: Vec<f64> = (0..batches * width)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    for (i, mut r) in x.rows_mut().into_iter().enumerate() {
        let b = batch.and_then(|b| b.get(i).copied()).unwrap_or(0);
        for &j in cols {
            r[j] *= (log_sd * z[b * width + j]).exp();
        }
    }
}

/// Entries set to zero with probability `p` (extra dropout of counts).
pub fn dropout(x: &mut Array2<f64>, cols: &[usize], p: f64, rng: &mut StdRng) {
    for mut r in x.rows_mut() {
        for &j in cols {
            let u: f64 = rng.random();
            if u < p {
                r[j] = 0.0;
            }
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Entries go missing with probability `p` and are imputed by `impute`.
pub fn missing(
    x: &mut Array2<f64>,
    ctx: &Context,
    cols: &[usize],
    p: f64,
    impute: Impute,
    rng: &mut StdRng,
) {
    let (n, w) = x.dim();
    let mut miss = vec![false; n * w];
    for i in 0..n {
        for &j in cols {
            let u: f64 = rng.random();
            miss[i * w + j] = u < p;
        }
    }
    if !miss.iter().any(|m| *m) {
        return;
    }
    // Column statistics over the observed values.
    let stat = |x: &Array2<f64>, j: usize, med: bool| {
        let mut obs: Vec<f64> = (0..n)
            .filter(|&i| !miss[i * w + j])
            .map(|i| x[[i, j]])
            .collect();
        if med {
            median(&mut obs)
        } else {
            mean(&obs)
        }
    };
    match impute {
        Impute::Zero => {
            for i in 0..n {
                for &j in cols {
                    if miss[i * w + j] {
                        x[[i, j]] = 0.0;
                    }
                }
            }
        }
        Impute::Mean | Impute::Median => {
            for &j in cols {
                let v = stat(x, j, impute == Impute::Median);
                for i in 0..n {
                    if miss[i * w + j] {
                        x[[i, j]] = v;
                    }
                }
            }
        }
        Impute::LastObservation => match ctx.layout {
            Layout::Signal { channels, len, .. } if channels * len == w => {
                for i in 0..n {
                    for c in 0..channels {
                        let mut last: Option<f64> = None;
                        for t in 0..len {
                            let j = c * len + t;
                            if miss[i * w + j] {
                                if let Some(v) = last {
                                    x[[i, j]] = v;
                                }
                            } else {
                                last = Some(x[[i, j]]);
                            }
                        }
                    }
                }
                // A lead that starts missing takes its first observed value (or 0).
                for i in 0..n {
                    for c in 0..channels {
                        let first = (0..len)
                            .map(|t| c * len + t)
                            .find(|&j| !miss[i * w + j])
                            .map(|j| x[[i, j]])
                            .unwrap_or(0.0);
                        for t in 0..len {
                            let j = c * len + t;
                            if !miss[i * w + j] {
                                break;
                            }
                            x[[i, j]] = first;
                        }
                    }
                }
            }
            _ => {
                for &j in cols {
                    let fallback = stat(x, j, false);
                    let mut last: Option<f64> = None;
                    for i in 0..n {
                        if miss[i * w + j] {
                            x[[i, j]] = last.unwrap_or(fallback);
                        } else {
                            last = Some(x[[i, j]]);
                        }
                    }
                }
            }
        },
    }
}

/// The `(scale, offset)` a unit mistake applies to column `j`, or why there is none.
pub fn unit_factor(
    p: &Perturbation,
    ctx: &Context,
    j: usize,
) -> Result<(f64, f64), (&'static str, String)> {
    let Perturbation::UnitMistake {
        feature,
        reported_unit,
        analyte,
        factor,
        ..
    } = p
    else {
        return Err(("kind", "not a unit mistake".into()));
    };
    if let Some(f) = factor {
        return Ok((*f, 0.0));
    }
    let to = reported_unit.as_deref().unwrap_or("");
    let from = ctx.units.get(j).map(String::as_str).unwrap_or("");
    let analyte = analyte.as_deref().unwrap_or(feature);
    units::conversion(analyte, from, to).ok_or_else(|| {
        let known = units::known_targets(analyte, from);
        (
            "reported_unit",
            format!(
                "no conversion from `{from}` to `{to}` for analyte `{analyte}` in the unit table{}; give `factor` instead",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (known: {})", known.join(", "))
                }
            ),
        )
    })
}

/// For the samples with `u < fraction`, column `j` is read in the wrong unit.
pub fn unit_mistake(
    x: &mut Array2<f64>,
    j: usize,
    (scale, offset): (f64, f64),
    fraction: f64,
    rng: &mut StdRng,
) {
    for mut r in x.rows_mut() {
        let u: f64 = rng.random();
        if u < fraction {
            r[j] = r[j] * scale + offset;
        }
    }
}

/// For the samples with `u < fraction`, the named columns are set beyond their valid range
/// by `margin·(hi − lo)·v`, `v ~ U(0.1, 1)`, on a random side.
pub fn out_of_range(
    x: &mut Array2<f64>,
    ctx: &Context,
    cols: &[usize],
    fraction: f64,
    margin: f64,
    rng: &mut StdRng,
) {
    for mut r in x.rows_mut() {
        let u: f64 = rng.random();
        for &j in cols {
            let v: f64 = rng.random_range(0.1..1.0);
            let high: bool = rng.random();
            if u >= fraction {
                continue;
            }
            if let Some((lo, hi)) = ctx.ranges.get(j).copied().flatten() {
                let d = margin * (hi - lo) * v;
                r[j] = if high { hi + d } else { lo - d };
            }
        }
    }
}

/// Values clipped at a ceiling `hi − drop·(hi − lo)`; `[lo, hi]` is the column's valid range,
/// or the cohort's observed range (over all selected columns for images and signals).
pub fn saturation(x: &mut Array2<f64>, ctx: &Context, cols: &[usize], drop: f64) {
    if drop <= 0.0 || x.nrows() == 0 {
        return;
    }
    let observed = |cs: &[usize]| {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for r in x.rows() {
            for &j in cs {
                lo = lo.min(r[j]);
                hi = hi.max(r[j]);
            }
        }
        (lo, hi)
    };
    let pooled = !matches!(ctx.layout, Layout::Tabular);
    let whole = if pooled { Some(observed(cols)) } else { None };
    let ceilings: Vec<(usize, f64)> = cols
        .iter()
        .map(|&j| {
            let (lo, hi) = ctx.ranges[j]
                .or(whole)
                .unwrap_or_else(|| observed(std::slice::from_ref(&j)));
            (j, hi - drop * (hi - lo))
        })
        .collect();
    for mut r in x.rows_mut() {
        for &(j, c) in &ceilings {
            if r[j] > c {
                r[j] = c;
            }
        }
    }
}
