//! Vital signs and laboratory values of adult ward patients, with physiological correlations,
//! physiological ranges and a deterioration label from the NEWS2 early-warning score.
//!
//! # Model
//!
//! Each patient has an age `A ~ U(age_min, age_max)` and a latent severity
//!
//! ```text
//! s = shift·D + sd·ε₀ + 0.3·(A − 55)/20,   D ~ Bernoulli(deteriorating_fraction), ε₀ ~ N(0, 1)
//! ```
//!
//! Eleven measurements share a residual vector `z = L·ε`, `ε ~ N(0, I₁₁)`, where `L` is the
//! Cholesky factor of a fixed residual correlation matrix `R` (blood pressures 0.65, heart rate
//! with respiratory rate and with temperature 0.3, respiratory rate with the SpO2 deficit 0.3,
//! lactate with glucose 0.2, …; see `RESIDUAL_CORR`). Feature `j` on its own scale is
//! `u_j = λ_j·s + noise_scale·z_j` with a loading `λ_j` (in standard deviations per unit of
//! severity; signs follow sepsis physiology: tachycardia, hypotension, tachypnoea, fever,
//! desaturation, confusion, raised lactate, creatinine, white cells and glucose) and maps to
//! physical units as
//!
//! - normal: `μ_j + σ_j·u_j` (heart rate, blood pressures, respiratory rate, temperature);
//! - log-normal: `median_j·exp(σ_j·u_j)` (lactate, creatinine, WBC, glucose);
//! - deficit below a ceiling: `top − median_j·exp(σ_j·u_j)` (SpO2 below 100 %, GCS below 15).
//!
//! Values are rounded as charted (integers for heart rate, pressures, respiratory rate, SpO2
//! and GCS; 0.1 °C) and clipped to the physiological limits in `FEATURES`.
//!
//! # Label
//!
//! The NEWS2 score (Royal College of Physicians, *National Early Warning Score (NEWS) 2*,
//! London 2017) on room air from respiratory rate, SpO2 (scale 1), systolic pressure, pulse,
//! consciousness (GCS < 15 scores as new confusion, 3 points) and temperature. The probability
//! of deterioration (e.g. sepsis, ICU transfer within 24 h) is
//!
//! ```text
//! logit p = label_intercept + label_slope·NEWS2 + label_lactate·max(0, lactate − 2 mmol/L)
//! ```
//!
//! and the label is `Bernoulli(p)`: the score explains most but not all of the outcome, as in
//! Smith et al. 2013 (*Resuscitation* 84:465), where NEWS ≥ 7 carries most of the risk.
//!
//! Columns (units): age (years), heart_rate (beats/min), systolic_bp (mmHg), diastolic_bp
//! (mmHg), respiratory_rate (breaths/min), temperature (°C), spo2 (%), gcs (points), lactate
//! (mmol/L), creatinine (mg/dL), wbc (10^9/L), glucose (mg/dL). Labels: 0 stable,
//! 1 deteriorating. With the defaults about 16 % of patients are labelled 1.

use std::sync::OnceLock;

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use super::util::{check, check_nonneg, check_range};
use crate::stress::cohort::{Cohort, Generator, Layout};

/// Parameters of the vitals/labs world. Every key is optional.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Share of patients on a deteriorating course (default 0.2).
    pub deteriorating_fraction: f64,
    /// Severity shift of deteriorating patients, in loading units (default 2.0).
    pub severity_shift: f64,
    /// Spread of the latent severity (default 0.7).
    pub severity_sd: f64,
    /// Multiplier of the residual (non-severity) variation (default 1.0).
    pub noise_scale: f64,
    /// Youngest and oldest age in years (defaults 18 and 90).
    pub age_min: f64,
    pub age_max: f64,
    /// Logistic risk model of the label (defaults −4.5, 0.55, 0.5).
    pub label_intercept: f64,
    pub label_slope: f64,
    pub label_lactate: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            deteriorating_fraction: 0.2,
            severity_shift: 2.0,
            severity_sd: 0.7,
            noise_scale: 1.0,
            age_min: 18.0,
            age_max: 90.0,
            label_intercept: -4.5,
            label_slope: 0.55,
            label_lactate: 0.5,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), String> {
        check_range(
            self.deteriorating_fraction,
            "deteriorating_fraction",
            0.0,
            1.0,
        )?;
        check_range(self.severity_shift, "severity_shift", -10.0, 10.0)?;
        check_range(self.severity_sd, "severity_sd", 0.0, 10.0)?;
        check_range(self.noise_scale, "noise_scale", 0.0, 10.0)?;
        check_range(self.age_min, "age_min", 0.0, 120.0)?;
        check_range(self.age_max, "age_max", 0.0, 120.0)?;
        check(
            self.age_min <= self.age_max,
            "age_max",
            "must be >= age_min",
        )?;
        for (v, k) in [
            (self.label_intercept, "label_intercept"),
            (self.label_slope, "label_slope"),
        ] {
            check(v.is_finite(), k, "must be a finite number")?;
        }
        check_nonneg(self.label_lactate, "label_lactate")
    }
}

#[derive(Clone, Copy)]
enum Scale {
    Normal { mean: f64 },
    LogNormal { median: f64 },
    Deficit { top: f64, median: f64 },
}

struct Feature {
    name: &'static str,
    unit: &'static str,
    scale: Scale,
    /// SD on the feature's own scale (units, or log units).
    sd: f64,
    /// Loading on the latent severity, in SDs per unit severity.
    loading: f64,
    lo: f64,
    hi: f64,
    /// Rounding step as charted.
    step: f64,
}

#[allow(clippy::too_many_arguments)]
const fn f(
    name: &'static str,
    unit: &'static str,
    scale: Scale,
    sd: f64,
    loading: f64,
    lo: f64,
    hi: f64,
    step: f64,
) -> Feature {
    Feature {
        name,
        unit,
        scale,
        sd,
        loading,
        lo,
        hi,
        step,
    }
}

/// The eleven correlated measurements (age is column 0 and not in this table).
const FEATURES: [Feature; 11] = [
    f(
        "heart_rate",
        "beats/min",
        Scale::Normal { mean: 78.0 },
        12.0,
        1.0,
        25.0,
        220.0,
        1.0,
    ),
    f(
        "systolic_bp",
        "mmHg",
        Scale::Normal { mean: 125.0 },
        16.0,
        -0.9,
        50.0,
        250.0,
        1.0,
    ),
    f(
        "diastolic_bp",
        "mmHg",
        Scale::Normal { mean: 75.0 },
        10.0,
        -0.8,
        20.0,
        150.0,
        1.0,
    ),
    f(
        "respiratory_rate",
        "breaths/min",
        Scale::Normal { mean: 16.0 },
        3.0,
        1.2,
        4.0,
        60.0,
        1.0,
    ),
    f(
        "temperature",
        "degC",
        Scale::Normal { mean: 36.9 },
        0.45,
        0.8,
        32.0,
        42.5,
        0.1,
    ),
    f(
        "spo2",
        "%",
        Scale::Deficit {
            top: 100.0,
            median: 2.8,
        },
        0.45,
        1.0,
        60.0,
        100.0,
        1.0,
    ),
    f(
        "gcs",
        "points",
        Scale::Deficit {
            top: 15.0,
            median: 0.3,
        },
        0.8,
        1.2,
        3.0,
        15.0,
        1.0,
    ),
    f(
        "lactate",
        "mmol/L",
        Scale::LogNormal { median: 1.1 },
        0.35,
        0.9,
        0.3,
        20.0,
        0.1,
    ),
    f(
        "creatinine",
        "mg/dL",
        Scale::LogNormal { median: 0.9 },
        0.3,
        0.6,
        0.2,
        15.0,
        0.01,
    ),
    f(
        "wbc",
        "10^9/L",
        Scale::LogNormal { median: 7.5 },
        0.3,
        0.7,
        0.5,
        60.0,
        0.1,
    ),
    f(
        "glucose",
        "mg/dL",
        Scale::LogNormal { median: 105.0 },
        0.2,
        0.5,
        30.0,
        600.0,
        1.0,
    ),
];

/// Residual correlations (upper triangle, by index into `FEATURES`).
const RESIDUAL_CORR: [(usize, usize, f64); 9] = [
    (1, 2, 0.65), // systolic–diastolic
    (0, 3, 0.3),  // heart rate–respiratory rate
    (0, 4, 0.3),  // heart rate–temperature
    (3, 5, 0.3),  // respiratory rate–SpO2 deficit
    (7, 10, 0.2), // lactate–glucose
    (0, 7, 0.15), // heart rate–lactate
    (4, 9, 0.2),  // temperature–WBC
    (7, 8, 0.1),  // lactate–creatinine
    (5, 6, 0.1),  // SpO2 deficit–GCS deficit
];

/// Column index of each measurement in the cohort (age is 0).
pub const HEART_RATE: usize = 1;
pub const SYSTOLIC_BP: usize = 2;
pub const DIASTOLIC_BP: usize = 3;
pub const RESPIRATORY_RATE: usize = 4;
pub const TEMPERATURE: usize = 5;
pub const SPO2: usize = 6;
pub const GCS: usize = 7;
pub const LACTATE: usize = 8;
pub const CREATININE: usize = 9;
pub const WBC: usize = 10;
pub const GLUCOSE: usize = 11;

fn cholesky_factor() -> &'static [f64] {
    static L: OnceLock<Vec<f64>> = OnceLock::new();
    L.get_or_init(|| {
        let n = FEATURES.len();
        let mut r = vec![0.0; n * n];
        for i in 0..n {
            r[i * n + i] = 1.0;
        }
        for (i, j, c) in RESIDUAL_CORR {
            r[i * n + j] = c;
            r[j * n + i] = c;
        }
        // RESIDUAL_CORR is a fixed, diagonally dominant table: positive definite (unit-tested).
        super::util::cholesky(&r, n).expect("RESIDUAL_CORR is positive definite")
    })
}

/// Physiological limits `(lo, hi)` of every column, age first.
pub fn ranges() -> Vec<(f64, f64)> {
    std::iter::once((0.0, 120.0))
        .chain(FEATURES.iter().map(|f| (f.lo, f.hi)))
        .collect()
}

/// The NEWS2 score (room air, SpO2 scale 1) of one row of a vitals cohort.
pub fn news2(row: &[f64]) -> u32 {
    let rr = row[RESPIRATORY_RATE];
    let spo2 = row[SPO2];
    let sbp = row[SYSTOLIC_BP];
    let hr = row[HEART_RATE];
    let temp = row[TEMPERATURE];
    let mut s = 0;
    s += match rr {
        r if r <= 8.0 => 3,
        r if r <= 11.0 => 1,
        r if r <= 20.0 => 0,
        r if r <= 24.0 => 2,
        _ => 3,
    };
    s += match spo2 {
        v if v <= 91.0 => 3,
        v if v <= 93.0 => 2,
        v if v <= 95.0 => 1,
        _ => 0,
    };
    s += match sbp {
        v if v <= 90.0 => 3,
        v if v <= 100.0 => 2,
        v if v <= 110.0 => 1,
        v if v < 220.0 => 0,
        _ => 3,
    };
    s += match hr {
        v if v <= 40.0 => 3,
        v if v <= 50.0 => 1,
        v if v <= 90.0 => 0,
        v if v <= 110.0 => 1,
        v if v <= 130.0 => 2,
        _ => 3,
    };
    s += if row[GCS] < 15.0 { 3 } else { 0 };
    s += match temp {
        v if v <= 35.0 => 3,
        v if v <= 36.0 => 1,
        v if v <= 38.0 => 0,
        v if v <= 39.0 => 1,
        _ => 2,
    };
    s
}

/// The vitals/labs generator.
#[derive(Clone, Debug)]
pub struct Vitals {
    pub params: Params,
}

impl Vitals {
    pub fn new(params: Params) -> Self {
        Vitals { params }
    }

    /// Probability of the deterioration label for one row (the documented risk model).
    pub fn risk(&self, row: &[f64]) -> f64 {
        let p = &self.params;
        let eta = p.label_intercept
            + p.label_slope * f64::from(news2(row))
            + p.label_lactate * (row[LACTATE] - 2.0).max(0.0);
        1.0 / (1.0 + (-eta).exp())
    }
}

/// `v` rounded to a multiple of `step` (1, 0.1 or 0.01), as the nearest double to the decimal
/// (dividing by 1/step: 7 / 10 is 0.7, while 7 × 0.1 is 0.7000000000000001).
fn round_to(v: f64, step: f64) -> f64 {
    let per_unit = step.recip().round();
    (v * per_unit).round() / per_unit
}

impl Generator for Vitals {
    fn generate(&self, n: usize, rng: &mut StdRng) -> Cohort {
        let p = &self.params;
        let m = FEATURES.len();
        let l = cholesky_factor();
        let mut x = Array2::zeros((n, m + 1));
        let mut labels = Vec::with_capacity(n);
        let mut eps = vec![0.0; m];
        for i in 0..n {
            let age = p.age_min + (p.age_max - p.age_min) * rng.random::<f64>();
            let deteriorating = rng.random::<f64>() < p.deteriorating_fraction;
            let e0: f64 = rng.sample(StandardNormal);
            let s = if deteriorating { p.severity_shift } else { 0.0 }
                + p.severity_sd * e0
                + 0.3 * (age - 55.0) / 20.0;
            for e in eps.iter_mut() {
                *e = rng.sample(StandardNormal);
            }
            let mut row = x.row_mut(i);
            row[0] = age.round();
            for (j, ft) in FEATURES.iter().enumerate() {
                let z: f64 = (0..=j).map(|k| l[j * m + k] * eps[k]).sum();
                let u = ft.loading * s + p.noise_scale * z;
                let v = match ft.scale {
                    Scale::Normal { mean } => mean + ft.sd * u,
                    Scale::LogNormal { median } => median * (ft.sd * u).exp(),
                    Scale::Deficit { top, median } => {
                        let d = median * (ft.sd * u).exp();
                        // GCS loses whole points; SpO2 is charted as an integer below.
                        if ft.step >= 1.0 {
                            top - d.floor()
                        } else {
                            top - d
                        }
                    }
                };
                row[j + 1] = round_to(v, ft.step).clamp(ft.lo, ft.hi);
            }
            let risk = self.risk(row.as_slice().unwrap_or(&[]));
            labels.push(usize::from(rng.random::<f64>() < risk));
        }
        let mut feature_names = vec!["age".to_string()];
        let mut units = vec!["years".to_string()];
        for ft in &FEATURES {
            feature_names.push(ft.name.to_string());
            units.push(ft.unit.to_string());
        }
        Cohort {
            x,
            feature_names,
            units,
            layout: Layout::Tabular,
            labels: Some(labels),
            class_names: vec!["stable".into(), "deteriorating".into()],
            targets: None,
            batch: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn residual_correlation_is_positive_definite() {
        assert_eq!(cholesky_factor().len(), 121);
    }

    #[test]
    fn news2_scores_the_published_bands() {
        let mut row = [
            60.0, 75.0, 125.0, 75.0, 16.0, 37.0, 98.0, 15.0, 1.0, 0.9, 7.0, 100.0,
        ];
        assert_eq!(news2(&row), 0);
        row[RESPIRATORY_RATE] = 25.0; // 3
        row[SPO2] = 93.0; // 2
        row[SYSTOLIC_BP] = 100.0; // 2
        row[HEART_RATE] = 111.0; // 2
        row[GCS] = 14.0; // 3
        row[TEMPERATURE] = 39.1; // 2
        assert_eq!(news2(&row), 14);
    }

    #[test]
    fn rows_are_rounded_and_in_range() {
        let c = Vitals::new(Params::default()).generate(2000, &mut StdRng::seed_from_u64(3));
        let r = ranges();
        for row in c.x.rows() {
            for (j, v) in row.iter().enumerate() {
                assert!(*v >= r[j].0 && *v <= r[j].1, "column {j} = {v}");
            }
            assert_eq!(row[HEART_RATE].fract(), 0.0);
            assert_eq!(row[GCS].fract(), 0.0);
            assert_eq!(
                row[TEMPERATURE],
                format!("{:.1}", row[TEMPERATURE]).parse::<f64>().unwrap()
            );
            assert_eq!(
                row[CREATININE],
                format!("{:.2}", row[CREATININE]).parse::<f64>().unwrap()
            );
        }
    }
}
