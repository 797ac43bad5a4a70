//! Perturbations: realistic damage to a cohort, each parameterised by a severity in [0, 1].
//!
//! In: a cohort's sample matrix in physical units, its [`Context`] (layout, column names and
//! units, technical batches, valid ranges from the model binding), a severity and an RNG.
//! Out: the same matrix, damaged in place. Severity 0 is the identity for every perturbation.
//!
//! Every perturbation draws the same random variates at every severity and scales their
//! effect by the severity (noise `s·sd·z`, dropout when `u < s·rate`, a unit mistake for the
//! samples whose `u < s·fraction`), so for one seed the damage grows monotonically with the
//! severity. That coupling is what lets the runner bisect a failure down to its threshold
//! severity and makes a replay token (seed, severity) reproduce the damage bit for bit.
//!
//! | kind | parameters (defaults) | effect at severity `s` |
//! | --- | --- | --- |
//! | `gaussian_noise` | `sd` (1), `relative` (false), `features` | `x + s·sd·z` (`·|x|` if relative) |
//! | `poisson_noise` | `gain` (1) | shot noise: `Poisson(x / g)·g`, `g = s·gain` |
//! | `batch_effect` | `log_sd` (0.5) | per batch and column: `x·exp(s·log_sd·z)` |
//! | `dropout` | `rate` (0.5) | entries set to 0 with probability `s·rate` |
//! | `intensity_shift` | `shift` (1), `features` | `x + s·shift` (sensor offset, brightness) |
//! | `contrast` | `factor` (0.5) | per sample: `m + (x − m)·(1 − s·factor)` |
//! | `stain_shift` | `shift` (0.2) | images: per image and channel `x·(1 + s·a) + s·b·σ`, `a, b ~ U(±shift)` |
//! | `blur` | `sigma_px` (2) | images: Gaussian point spread, `σ = s·sigma_px`; signals: along time |
//! | `motion_blur` | `length_px` (9) | images: a line kernel of `1 + s·(length − 1)` px at a random angle |
//! | `baseline_wander` | `amplitude` (0.5), `freq_hz` (0.3) | signals: `+ s·A·sin(2πft + φ)` |
//! | `powerline` | `amplitude` (0.2), `freq_hz` (50) | signals: `+ s·A·sin(2πft + φ)` |
//! | `missing_values` | `rate` (0.5), `impute` (mean), `features` | missing with probability `s·rate`, imputed by mean, median, zero or last observation |
//! | `unit_mistake` | `feature`, `reported_unit` or `factor`, `fraction` (1) | samples with `u < s·fraction` read in the wrong unit |
//! | `out_of_range` | `features`, `fraction` (0.2), `margin` (0.5) | samples with `u < s·fraction` set beyond the valid range |
//! | `saturation` | `drop` (0.5), `features` | clipped at `hi − s·drop·(hi − lo)` |

mod image;
mod signal;
mod tabular;
#[cfg(test)]
mod tests;
pub mod units;

use ndarray::Array2;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::cohort::{Cohort, Layout};

/// How missing values are filled in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The column's mean over the observed values of the cohort.
    #[default]
    Mean,
    /// The column's median over the observed values.
    Median,
    Zero,
    /// The last observed value before it: the previous time point of the same lead for
    /// signals, the previous sample's value of the same column for tables and images; the
    /// column mean when there is none.
    LastObservation,
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}

/// One kind of damage and its parameters (the scenario's `[[perturbations]]` table, minus
/// `name` and `severity`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Perturbation {
    GaussianNoise {
        #[serde(default = "one")]
        sd: f64,
        #[serde(default)]
        relative: bool,
        #[serde(default)]
        features: Vec<String>,
    },
    PoissonNoise {
        #[serde(default = "one")]
        gain: f64,
        #[serde(default)]
        features: Vec<String>,
    },
    BatchEffect {
        #[serde(default = "half")]
        log_sd: f64,
        #[serde(default)]
        features: Vec<String>,
    },
    Dropout {
        #[serde(default = "half")]
        rate: f64,
        #[serde(default)]
        features: Vec<String>,
    },
    IntensityShift {
        #[serde(default = "one")]
        shift: f64,
        #[serde(default)]
        features: Vec<String>,
    },
    Contrast {
        #[serde(default = "half")]
        factor: f64,
    },
    StainShift {
        #[serde(default = "image::default_stain")]
        shift: f64,
    },
    Blur {
        #[serde(default = "image::default_sigma")]
        sigma_px: f64,
    },
    MotionBlur {
        #[serde(default = "image::default_length")]
        length_px: f64,
    },
    BaselineWander {
        #[serde(default = "half")]
        amplitude: f64,
        #[serde(default = "signal::default_wander_hz")]
        freq_hz: f64,
    },
    Powerline {
        #[serde(default = "signal::default_powerline_amp")]
        amplitude: f64,
        #[serde(default = "signal::default_powerline_hz")]
        freq_hz: f64,
    },
    MissingValues {
        #[serde(default = "half")]
        rate: f64,
        #[serde(default)]
        impute: Impute,
        #[serde(default)]
        features: Vec<String>,
    },
    UnitMistake {
        feature: String,
        /// The unit the value is wrongly reported in (looked up in [`units`] with the
        /// cohort's unit of `feature` and `analyte`).
        reported_unit: Option<String>,
        /// The analyte for the factor table (default: the feature's name).
        analyte: Option<String>,
        /// An explicit multiplicative factor instead of the table.
        factor: Option<f64>,
        #[serde(default = "one")]
        fraction: f64,
    },
    OutOfRange {
        #[serde(default)]
        features: Vec<String>,
        #[serde(default = "tabular::default_oor_fraction")]
        fraction: f64,
        #[serde(default = "half")]
        margin: f64,
    },
    Saturation {
        #[serde(default = "half")]
        drop: f64,
        #[serde(default)]
        features: Vec<String>,
    },
}

/// What a perturbation may know about the cohort it damages.
#[derive(Clone, Debug)]
pub struct Context {
    pub layout: Layout,
    pub feature_names: Vec<String>,
    pub units: Vec<String>,
    pub batch: Option<Vec<usize>>,
    /// Valid range of each column (from the model binding), when known.
    pub ranges: Vec<Option<(f64, f64)>>,
}

impl Context {
    /// The context of `cohort`, with valid ranges per column (empty: none known).
    pub fn of(cohort: &Cohort, ranges: Vec<Option<(f64, f64)>>) -> Context {
        let ranges = if ranges.len() == cohort.width() {
            ranges
        } else {
            vec![None; cohort.width()]
        };
        Context {
            layout: cohort.layout.clone(),
            feature_names: cohort.feature_names.clone(),
            units: cohort.units.clone(),
            batch: cohort.batch.clone(),
            ranges,
        }
    }

    /// Column indices of named features; all columns when `names` is empty.
    pub fn columns(&self, names: &[String]) -> Result<Vec<usize>, String> {
        if names.is_empty() {
            return Ok((0..self.feature_names.len()).collect());
        }
        names
            .iter()
            .map(|n| {
                self.feature_names
                    .iter()
                    .position(|f| f == n)
                    .ok_or_else(|| {
                        format!(
                            "the cohort has no feature `{n}`{}",
                            if self.feature_names.len() <= 40 {
                                format!(" (it has: {})", self.feature_names.join(", "))
                            } else {
                                String::new()
                            }
                        )
                    })
            })
            .collect()
    }
}

impl Perturbation {
    /// The scenario name of this kind (`gaussian_noise`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Perturbation::GaussianNoise { .. } => "gaussian_noise",
            Perturbation::PoissonNoise { .. } => "poisson_noise",
            Perturbation::BatchEffect { .. } => "batch_effect",
            Perturbation::Dropout { .. } => "dropout",
            Perturbation::IntensityShift { .. } => "intensity_shift",
            Perturbation::Contrast { .. } => "contrast",
            Perturbation::StainShift { .. } => "stain_shift",
            Perturbation::Blur { .. } => "blur",
            Perturbation::MotionBlur { .. } => "motion_blur",
            Perturbation::BaselineWander { .. } => "baseline_wander",
            Perturbation::Powerline { .. } => "powerline",
            Perturbation::MissingValues { .. } => "missing_values",
            Perturbation::UnitMistake { .. } => "unit_mistake",
            Perturbation::OutOfRange { .. } => "out_of_range",
            Perturbation::Saturation { .. } => "saturation",
        }
    }

    /// Checks the parameters on their own (key, message).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let nonneg = |key: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((key, format!("must be a finite number >= 0 (got {v})")))
            }
        };
        let prob = |key: &'static str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("must be within [0, 1] (got {v})")))
            }
        };
        match self {
            Perturbation::GaussianNoise { sd, .. } => nonneg("sd", *sd),
            Perturbation::PoissonNoise { gain, .. } => nonneg("gain", *gain),
            Perturbation::BatchEffect { log_sd, .. } => nonneg("log_sd", *log_sd),
            Perturbation::Dropout { rate, .. } => prob("rate", *rate),
            Perturbation::IntensityShift { shift, .. } => {
                if shift.is_finite() {
                    Ok(())
                } else {
                    Err(("shift", "must be finite".into()))
                }
            }
            Perturbation::Contrast { factor } => prob("factor", *factor),
            Perturbation::StainShift { shift } => prob("shift", *shift),
            Perturbation::Blur { sigma_px } => nonneg("sigma_px", *sigma_px),
            Perturbation::MotionBlur { length_px } => {
                nonneg("length_px", *length_px)?;
                if *length_px < 1.0 || *length_px > 1000.0 {
                    return Err((
                        "length_px",
                        format!("must be within [1, 1000] (got {length_px})"),
                    ));
                }
                Ok(())
            }
            Perturbation::BaselineWander { amplitude, freq_hz }
            | Perturbation::Powerline { amplitude, freq_hz } => {
                nonneg("amplitude", *amplitude)?;
                nonneg("freq_hz", *freq_hz)
            }
            Perturbation::MissingValues { rate, .. } => prob("rate", *rate),
            Perturbation::UnitMistake {
                reported_unit,
                factor,
                fraction,
                ..
            } => {
                prob("fraction", *fraction)?;
                match (reported_unit, factor) {
                    (None, None) => Err((
                        "reported_unit",
                        "give the unit the value is wrongly reported in (reported_unit) or a factor".into(),
                    )),
                    (Some(_), Some(_)) => Err(("factor", "give reported_unit or factor, not both".into())),
                    (_, Some(f)) if !(f.is_finite() && *f > 0.0) => {
                        Err(("factor", format!("must be a positive number (got {f})")))
                    }
                    _ => Ok(()),
                }
            }
            Perturbation::OutOfRange {
                fraction, margin, ..
            } => {
                prob("fraction", *fraction)?;
                nonneg("margin", *margin)
            }
            Perturbation::Saturation { drop, .. } => prob("drop", *drop),
        }
    }

    /// Checks the perturbation against the cohort it will damage (key, message): named
    /// features exist, image and signal perturbations meet images and signals, unit
    /// mistakes have a factor, out-of-range values have a valid range.
    pub fn check(&self, ctx: &Context) -> Result<(), (&'static str, String)> {
        let cols = |f: &[String]| ctx.columns(f).map_err(|m| ("features", m));
        let needs = |what: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err((
                    "kind",
                    format!(
                        "`{}` needs a cohort of {what}, this one is {:?}",
                        self.kind(),
                        ctx.layout
                    ),
                ))
            }
        };
        let image = matches!(ctx.layout, Layout::Image { .. });
        let signal = matches!(ctx.layout, Layout::Signal { .. });
        match self {
            Perturbation::GaussianNoise { features, .. }
            | Perturbation::PoissonNoise { features, .. }
            | Perturbation::BatchEffect { features, .. }
            | Perturbation::Dropout { features, .. }
            | Perturbation::IntensityShift { features, .. }
            | Perturbation::MissingValues { features, .. }
            | Perturbation::Saturation { features, .. } => cols(features).map(|_| ()),
            Perturbation::StainShift { .. } | Perturbation::MotionBlur { .. } => {
                needs("images", image)
            }
            Perturbation::Blur { .. } => needs("images or signals", image || signal),
            Perturbation::BaselineWander { .. } | Perturbation::Powerline { .. } => {
                needs("signals", signal)
            }
            Perturbation::Contrast { .. } => Ok(()),
            Perturbation::UnitMistake { feature, .. } => {
                let j = ctx
                    .columns(std::slice::from_ref(feature))
                    .map_err(|m| ("feature", m))?[0];
                tabular::unit_factor(self, ctx, j).map(|_| ())
            }
            Perturbation::OutOfRange { features, .. } => {
                for j in cols(features)? {
                    if ctx.ranges[j].is_none() {
                        return Err((
                            "features",
                            format!(
                                "`{}` has no valid range in the model binding; out_of_range needs one",
                                ctx.feature_names[j]
                            ),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Damages `x` (samples × columns, physical units) at `severity` in [0, 1]. Assumes
    /// [`Perturbation::check`] passed for `ctx`; columns it cannot resolve are left alone.
    pub fn apply(&self, x: &mut Array2<f64>, ctx: &Context, severity: f64, rng: &mut StdRng) {
        let s = severity.clamp(0.0, 1.0);
        let cols = |f: &[String]| ctx.columns(f).unwrap_or_default();
        match self {
            Perturbation::GaussianNoise {
                sd,
                relative,
                features,
            } => tabular::gaussian(x, &cols(features), s * sd, *relative, rng),
            Perturbation::PoissonNoise { gain, features } => {
                tabular::poisson(x, &cols(features), s * gain, rng)
            }
            Perturbation::BatchEffect { log_sd, features } => {
                tabular::batch_effect(x, &cols(features), ctx.batch.as_deref(), s * log_sd, rng)
            }
            Perturbation::Dropout { rate, features } => {
                tabular::dropout(x, &cols(features), s * rate, rng)
            }
            Perturbation::IntensityShift { shift, features } => {
                let c = cols(features);
                let d = s * shift;
                for mut r in x.rows_mut() {
                    for &j in &c {
                        r[j] += d;
                    }
                }
            }
            Perturbation::Contrast { factor } => image::contrast(x, &ctx.layout, s * factor),
            Perturbation::StainShift { shift } => image::stain(x, &ctx.layout, s, *shift, rng),
            Perturbation::Blur { sigma_px } => image::blur(x, &ctx.layout, s * sigma_px),
            Perturbation::MotionBlur { length_px } => {
                image::motion_blur(x, &ctx.layout, 1.0 + s * (length_px - 1.0), rng)
            }
            Perturbation::BaselineWander { amplitude, freq_hz }
            | Perturbation::Powerline { amplitude, freq_hz } => {
                signal::sinusoid(x, &ctx.layout, s * amplitude, *freq_hz, rng)
            }
            Perturbation::MissingValues {
                rate,
                impute,
                features,
            } => tabular::missing(x, ctx, &cols(features), s * rate, *impute, rng),
            Perturbation::UnitMistake {
                feature, fraction, ..
            } => {
                let Some(&j) = cols(std::slice::from_ref(feature)).first() else {
                    return;
                };
                if let Ok(f) = tabular::unit_factor(self, ctx, j) {
                    tabular::unit_mistake(x, j, f, s * fraction, rng)
                }
            }
            Perturbation::OutOfRange {
                features,
                fraction,
                margin,
            } => tabular::out_of_range(x, ctx, &cols(features), s * fraction, *margin, rng),
            Perturbation::Saturation { drop, features } => {
                tabular::saturation(x, ctx, &cols(features), s * drop)
            }
        }
    }
}
