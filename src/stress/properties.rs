//! Properties: what the network's answers must satisfy on a (perturbed) cohort.
//!
//! In: the network's predictions on the clean cohort and on the perturbed one (and, for
//! monotonicity, on the perturbed cohort with one feature stepped up), the ground truth, and
//! a set of sample indices. Out: an [`Outcome`] — the property's metric on those samples and
//! whether it passes its threshold.
//!
//! | kind | parameters (defaults) | metric, passes when |
//! | --- | --- | --- |
//! | `invariance` | `threshold` (1), `tolerance` (regression) | share of samples whose prediction (class; value within `tolerance`) agrees with the clean one ≥ threshold |
//! | `monotonicity` | `feature`, `step`, `direction` (increasing), `output`, `tolerance` (0), `threshold` (1) | share of samples whose output does not move against `direction` when `feature` grows by `step` ≥ threshold |
//! | `output_range` | `min`, `max` (default: the binding's output range), `output`, `threshold` (1) | share of samples whose output lies in [min, max] ≥ threshold |
//! | `finite` | `threshold` (1) | share of samples whose outputs are all finite ≥ threshold |
//! | `accuracy` | `threshold` | accuracy against the ground-truth labels ≥ threshold |
//! | `auroc` | `threshold`, `positive` (the last class) | AUROC of the positive class (macro one-vs-rest when `positive = "macro"`) ≥ threshold |
//! | `calibration` | `max_ece`, `bins` (10) | expected calibration error of the top-class confidence ≤ max_ece |
//! | `rmse` | `max` | root-mean-square error against the ground-truth targets ≤ max |
//!
//! The first four are *per-sample*: they fail on a set of samples, and the runner shrinks a
//! failure to the smallest such set. The others are *aggregate* metrics over the cohort.
//! "Output" is the regression value, or the probability of the class named by `output`
//! (default: the last class).

use serde::{Deserialize, Serialize};

use super::binding::{Binding, OutputBinding, Predictions};
use super::cohort::Cohort;

fn one() -> f64 {
    1.0
}
fn ten() -> usize {
    10
}

/// Direction of a monotonicity property.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Increasing,
    Decreasing,
}

/// One property and its thresholds (the scenario's `[[properties]]` table, minus `name` and
/// `perturbations`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Property {
    Invariance {
        #[serde(default = "one")]
        threshold: f64,
        tolerance: Option<f64>,
    },
    Monotonicity {
        feature: String,
        step: f64,
        #[serde(default)]
        direction: Direction,
        output: Option<String>,
        #[serde(default)]
        tolerance: f64,
        #[serde(default = "one")]
        threshold: f64,
    },
    OutputRange {
        min: Option<f64>,
        max: Option<f64>,
        output: Option<String>,
        #[serde(default = "one")]
        threshold: f64,
    },
    Finite {
        #[serde(default = "one")]
        threshold: f64,
    },
    Accuracy {
        threshold: f64,
    },
    Auroc {
        threshold: f64,
        positive: Option<String>,
    },
    Calibration {
        max_ece: f64,
        #[serde(default = "ten")]
        bins: usize,
    },
    Rmse {
        max: f64,
    },
}

/// A property's verdict on one set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The metric (a share of samples, an accuracy, an AUROC, an ECE, an RMSE).
    pub metric: f64,
    pub pass: bool,
}

/// What a property judges: predictions on the same cohort rows, clean and perturbed.
pub struct Evidence<'a> {
    pub clean: &'a Predictions,
    pub perturbed: &'a Predictions,
    /// Predictions on the perturbed cohort with the monotonicity feature stepped.
    pub stepped: Option<&'a Predictions>,
    pub labels: Option<&'a [usize]>,
    pub targets: Option<&'a [f64]>,
}

impl Property {
    pub fn kind(&self) -> &'static str {
        match self {
            Property::Invariance { .. } => "invariance",
            Property::Monotonicity { .. } => "monotonicity",
            Property::OutputRange { .. } => "output_range",
            Property::Finite { .. } => "finite",
            Property::Accuracy { .. } => "accuracy",
            Property::Auroc { .. } => "auroc",
            Property::Calibration { .. } => "calibration",
            Property::Rmse { .. } => "rmse",
        }
    }

    /// Whether the property fails on sets of samples (and a failure shrinks to fewer samples).
    pub fn per_sample(&self) -> bool {
        matches!(
            self,
            Property::Invariance { .. }
                | Property::Monotonicity { .. }
                | Property::OutputRange { .. }
                | Property::Finite { .. }
        )
    }

    /// The (feature, step) whose stepped predictions a monotonicity property needs.
    pub fn step(&self) -> Option<(&str, f64)> {
        match self {
            Property::Monotonicity { feature, step, .. } => Some((feature, *step)),
            _ => None,
        }
    }

    /// Checks the property against the binding and the cohort (key, message).
    pub fn check(&self, binding: &Binding, cohort: &Cohort) -> Result<(), (&'static str, String)> {
        let share = |v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(("threshold", format!("must be within [0, 1] (got {v})")))
            }
        };
        let classifier = matches!(binding.output, OutputBinding::Classification { .. });
        let need_classifier = |what: &str| {
            if classifier {
                Ok(())
            } else {
                Err((
                    "kind",
                    format!("{what} needs a classifier; the binding's output is a regression"),
                ))
            }
        };
        let need_labels = || {
            if cohort.labels.is_some() {
                Ok(())
            } else {
                Err((
                    "kind",
                    "needs ground-truth labels; the scenario's generator gives none".into(),
                ))
            }
        };
        let output_ok = |o: &Option<String>| match (o, &binding.output) {
            (Some(name), OutputBinding::Classification { classes, .. })
                if !classes.contains(name) =>
            {
                Err((
                    "output",
                    format!("no class `{name}` (classes: {})", classes.join(", ")),
                ))
            }
            (Some(_), OutputBinding::Regression { .. }) => Err((
                "output",
                "a regression model has one output; leave `output` out".into(),
            )),
            _ => Ok(()),
        };
        match self {
            Property::Invariance {
                threshold,
                tolerance,
            } => {
                share(*threshold)?;
                match (classifier, tolerance) {
                    (false, None) => Err((
                        "tolerance",
                        "a regression model's invariance needs `tolerance` (the largest allowed change, in the target's unit)".into(),
                    )),
                    (_, Some(t)) if !(t.is_finite() && *t >= 0.0) => {
                        Err(("tolerance", format!("must be >= 0 (got {t})")))
                    }
                    _ => Ok(()),
                }
            }
            Property::Monotonicity {
                feature,
                step,
                output,
                threshold,
                tolerance,
                ..
            } => {
                share(*threshold)?;
                output_ok(output)?;
                if !cohort.feature_names.contains(feature) {
                    return Err(("feature", format!("the cohort has no feature `{feature}`")));
                }
                if !(step.is_finite() && *step > 0.0) {
                    return Err(("step", format!("must be a positive number (got {step})")));
                }
                if !(tolerance.is_finite() && *tolerance >= 0.0) {
                    return Err(("tolerance", format!("must be >= 0 (got {tolerance})")));
                }
                Ok(())
            }
            Property::OutputRange {
                min,
                max,
                output,
                threshold,
            } => {
                share(*threshold)?;
                output_ok(output)?;
                let (lo, hi) = self.range(binding);
                if lo.is_none() && hi.is_none() {
                    return Err((
                        "max",
                        "give min and/or max (or an output range in the binding)".into(),
                    ));
                }
                if let (Some(a), Some(b)) = (min.or(lo), max.or(hi)) {
                    if a > b {
                        return Err(("min", format!("min {a} is above max {b}")));
                    }
                }
                Ok(())
            }
            Property::Finite { threshold } => share(*threshold),
            Property::Accuracy { threshold } => {
                share(*threshold)?;
                need_classifier("accuracy")?;
                need_labels()
            }
            Property::Auroc {
                threshold,
                positive,
            } => {
                share(*threshold)?;
                need_classifier("auroc")?;
                need_labels()?;
                match positive.as_deref() {
                    None | Some("macro") => Ok(()),
                    p => output_ok(&p.map(String::from)).map_err(|(_, m)| ("positive", m)),
                }
            }
            Property::Calibration { max_ece, bins } => {
                if !(0.0..=1.0).contains(max_ece) {
                    return Err(("max_ece", format!("must be within [0, 1] (got {max_ece})")));
                }
                if *bins == 0 {
                    return Err(("bins", "must be at least 1".into()));
                }
                need_classifier("calibration")?;
                need_labels()
            }
            Property::Rmse { max } => {
                if !(max.is_finite() && *max >= 0.0) {
                    return Err(("max", format!("must be >= 0 (got {max})")));
                }
                if classifier {
                    return Err(("kind", "rmse needs a regression model".into()));
                }
                if cohort.targets.is_none() {
                    return Err((
                        "kind",
                        "needs ground-truth targets; the scenario's generator gives none".into(),
                    ));
                }
                Ok(())
            }
        }
    }

    fn range(&self, binding: &Binding) -> (Option<f64>, Option<f64>) {
        let (blo, bhi) = match (&binding.output, self) {
            (
                OutputBinding::Regression {
                    range: Some((a, b)),
                    ..
                },
                _,
            ) => (Some(*a), Some(*b)),
            (OutputBinding::Classification { .. }, _) => (Some(0.0), Some(1.0)),
            _ => (None, None),
        };
        match self {
            Property::OutputRange { min, max, .. } => (min.or(blo), max.or(bhi)),
            _ => (blo, bhi),
        }
    }

    /// The scalar output a property reads for sample `i`.
    fn scalar(p: &Predictions, output: Option<usize>, i: usize) -> f64 {
        match p {
            Predictions::Values(v) => v[i],
            Predictions::Classes(c) => c[[i, output.unwrap_or(c.ncols() - 1)]],
        }
    }

    /// Judges the property on the samples `idx` (row indices into the evidence).
    pub fn judge(&self, binding: &Binding, ev: &Evidence, idx: &[usize]) -> Outcome {
        let class_index = |o: &Option<String>| match (&binding.output, o) {
            (OutputBinding::Classification { classes, .. }, Some(name)) => {
                classes.iter().position(|c| c == name)
            }
            _ => None,
        };
        let share = |ok: &dyn Fn(usize) -> bool, threshold: f64| {
            let good = idx.iter().filter(|&&i| ok(i)).count();
            let metric = if idx.is_empty() {
                1.0
            } else {
                good as f64 / idx.len() as f64
            };
            Outcome {
                metric,
                pass: metric >= threshold,
            }
        };
        let at_least = |metric: f64, t: f64| Outcome {
            metric,
            pass: metric >= t,
        };
        let at_most = |metric: f64, t: f64| Outcome {
            metric,
            pass: metric <= t,
        };
        match self {
            Property::Invariance {
                threshold,
                tolerance,
            } => {
                let (c, p) = (ev.clean, ev.perturbed);
                match (c.classes(), p.classes()) {
                    (Some(a), Some(b)) => share(&|i| a[i] == b[i], *threshold),
                    _ => {
                        let t = tolerance.unwrap_or(0.0);
                        share(
                            &|i| (Self::scalar(p, None, i) - Self::scalar(c, None, i)).abs() <= t,
                            *threshold,
                        )
                    }
                }
            }
            Property::Monotonicity {
                direction,
                output,
                tolerance,
                threshold,
                ..
            } => {
                let k = class_index(output);
                let Some(st) = ev.stepped else {
                    return Outcome {
                        metric: f64::NAN,
                        pass: false,
                    };
                };
                share(
                    &|i| {
                        let d = Self::scalar(st, k, i) - Self::scalar(ev.perturbed, k, i);
                        match direction {
                            Direction::Increasing => d >= -tolerance,
                            Direction::Decreasing => d <= *tolerance,
                        }
                    },
                    *threshold,
                )
            }
            Property::OutputRange {
                output, threshold, ..
            } => {
                let (lo, hi) = self.range(binding);
                let (lo, hi) = (lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY));
                let k = class_index(output);
                share(
                    &|i| {
                        let v = Self::scalar(ev.perturbed, k, i);
                        v >= lo && v <= hi
                    },
                    *threshold,
                )
            }
            Property::Finite { threshold } => share(
                &|i| match ev.perturbed {
                    Predictions::Values(v) => v[i].is_finite(),
                    Predictions::Classes(c) => c.row(i).iter().all(|v| v.is_finite()),
                },
                *threshold,
            ),
            Property::Accuracy { threshold } => {
                let (Some(pred), Some(labels)) = (ev.perturbed.classes(), ev.labels) else {
                    return at_least(f64::NAN, *threshold);
                };
                let good = idx.iter().filter(|&&i| pred[i] == labels[i]).count();
                at_least(good as f64 / idx.len().max(1) as f64, *threshold)
            }
            Property::Auroc {
                threshold,
                positive,
            } => {
                let (Predictions::Classes(p), Some(labels)) = (ev.perturbed, ev.labels) else {
                    return at_least(f64::NAN, *threshold);
                };
                let k = p.ncols();
                let one_vs_rest = |c: usize| {
                    let s: Vec<f64> = idx.iter().map(|&i| p[[i, c]]).collect();
                    let y: Vec<bool> = idx.iter().map(|&i| labels[i] == c).collect();
                    auroc(&s, &y)
                };
                let metric = match positive.as_deref() {
                    Some("macro") => {
                        let v: Vec<f64> = (0..k).filter_map(one_vs_rest).collect();
                        if v.is_empty() {
                            f64::NAN
                        } else {
                            v.iter().sum::<f64>() / v.len() as f64
                        }
                    }
                    _ => one_vs_rest(class_index(positive).unwrap_or(k - 1)).unwrap_or(f64::NAN),
                };
                // An AUROC undefined on these samples (one class only) does not fail.
                if metric.is_nan() {
                    Outcome { metric, pass: true }
                } else {
                    at_least(metric, *threshold)
                }
            }
            Property::Calibration { max_ece, bins } => {
                let (Predictions::Classes(p), Some(labels)) = (ev.perturbed, ev.labels) else {
                    return at_most(f64::NAN, *max_ece);
                };
                let pred = ev.perturbed.classes().unwrap_or_default();
                let conf: Vec<(f64, bool)> = idx
                    .iter()
                    .map(|&i| (p[[i, pred[i]]], pred[i] == labels[i]))
                    .collect();
                at_most(ece(&conf, *bins), *max_ece)
            }
            Property::Rmse { max } => {
                let (Predictions::Values(v), Some(t)) = (ev.perturbed, ev.targets) else {
                    return at_most(f64::NAN, *max);
                };
                let se: f64 = idx.iter().map(|&i| (v[i] - t[i]) * (v[i] - t[i])).sum();
                at_most((se / idx.len().max(1) as f64).sqrt(), *max)
            }
        }
    }
}

/// Area under the ROC curve of `scores` for the positives `y` (ties count one half);
/// `None` without both classes.
pub fn auroc(scores: &[f64], y: &[bool]) -> Option<f64> {
    let pos = y.iter().filter(|v| **v).count();
    let neg = y.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann–Whitney U from average ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if y[k] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Expected calibration error over equal-width confidence bins: `Σ_b n_b/n · |acc_b − conf_b|`.
pub fn ece(conf: &[(f64, bool)], bins: usize) -> f64 {
    if conf.is_empty() {
        return 0.0;
    }
    let mut n = vec![0usize; bins];
    let mut c = vec![0.0; bins];
    let mut a = vec![0.0; bins];
    for &(p, ok) in conf {
        let b = if p.is_finite() {
            ((p * bins as f64) as usize).min(bins - 1)
        } else {
            0
        };
        n[b] += 1;
        c[b] += p;
        a[b] += f64::from(u8::from(ok));
    }
    (0..bins)
        .filter(|&b| n[b] > 0)
        .map(|b| (a[b] - c[b]).abs())
        .sum::<f64>()
        / conf.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_perfect_random_and_tied_scores() {
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(auroc(&[0.5; 4], &[false, true, false, true]), Some(0.5));
        assert_eq!(auroc(&[0.5; 2], &[true, true]), None);
    }

    #[test]
    fn ece_of_calibrated_and_overconfident_predictions() {
        // 80% confidence, 80% right: calibrated.
        let c: Vec<(f64, bool)> = (0..10).map(|i| (0.8, i < 8)).collect();
        assert!(ece(&c, 10) < 1e-12);
        // 100% confidence, 50% right.
        let c: Vec<(f64, bool)> = (0..10).map(|i| (1.0, i < 5)).collect();
        assert!((ece(&c, 10) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn per_sample_share_against_threshold() {
        use ndarray::array;
        let b = Binding::parse(
            std::path::Path::new("m.toml"),
            "model = \"m.onnx\"\n[[features]]\nname = \"a\"\n[output]\nkind = \"classification\"\nclasses = [\"n\", \"y\"]\n",
        )
        .unwrap();
        let clean = Predictions::Classes(array![[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]);
        let pert = Predictions::Classes(array![[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.3, 0.7]]);
        let labels = [0, 1, 0, 1];
        let ev = Evidence {
            clean: &clean,
            perturbed: &pert,
            stepped: None,
            labels: Some(&labels),
            targets: None,
        };
        let inv = Property::Invariance {
            threshold: 0.75,
            tolerance: None,
        };
        assert_eq!(
            inv.judge(&b, &ev, &[0, 1, 2, 3]),
            Outcome {
                metric: 0.75,
                pass: true
            }
        );
        assert!(!inv.judge(&b, &ev, &[1]).pass);
        assert!(inv.judge(&b, &ev, &[0, 2]).pass);
        let acc = Property::Accuracy { threshold: 0.8 };
        assert_eq!(acc.judge(&b, &ev, &[0, 1, 2, 3]).metric, 0.75);
    }
}
