//! Model bindings (`specs/models/NAME.toml`): what a network's inputs and outputs mean.
//!
//! In: a binding file. Out: a validated [`Binding`] that maps a [`Cohort`] (physical units)
//! to the network's input matrix (`f32`, normalised as the network expects) and the
//! network's outputs back to predictions (class probabilities or a regression value).
//!
//! ```toml
//! model = "../../models/dose_response.onnx"   # relative to this file
//! description = "effect of an IV bolus"        # optional
//!
//! # Tabular models: one [[features]] entry per network input column, in network order.
//! [[features]]
//! name = "dose_mg"            # must match a cohort column
//! unit = "mg"                 # must match the cohort's unit for that column
//! range = [50.0, 200.0]       # valid physiological range (out_of_range, saturation use it)
//! normalise = { kind = "standard", mean = 125.0, std = 43.3 }  # or min_max {min, max}; default none
//!
//! # A numbered panel binds many columns at once: 200 columns gene0000 ... gene0199, in order.
//! [[features]]
//! name = "gene{0000..0199}"
//! unit = "counts"
//!
//! # Image models instead: [image] channels, height, width, channel_names, unit, range, normalise
//! # Signal models instead: [signal] channels, len, sample_rate_hz, lead_names, unit, range, normalise
//!
//! [output]
//! kind = "regression"         # target, unit, range (optional)
//! target = "effect"
//! unit = "% of Emax"
//! # or: kind = "classification", classes = ["low", "high"], scores = "logits" | "probabilities"
//! ```
//!
//! A classifier has one output per class, or a single output for two classes (the score of
//! the second class: a logit, or a probability). Logits are turned into probabilities with a
//! softmax (a sigmoid for a single output). Errors name the file, the key and its line.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use serde::Deserialize;

use super::cohort::{Cohort, Layout};
use super::toml_span;
use crate::error::{Error, Result};
use crate::ir::Graph;

/// How a physical value is normalised before the network sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalise {
    /// The network takes physical units.
    #[default]
    None,
    /// `(x − mean) / std`.
    Standard { mean: f64, std: f64 },
    /// `(x − min) / (max − min)`.
    MinMax { min: f64, max: f64 },
}

impl Normalise {
    /// The normalised value of `x`.
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Normalise::None => x,
            Normalise::Standard { mean, std } => (x - mean) / std,
            Normalise::MinMax { min, max } => (x - min) / (max - min),
        }
    }

    /// An enclosure `[lo, hi]` of the real normalised values of every real `x ∈ [a, b]`
    /// (`a ≤ b`), rounded outward after every floating-point step (all three maps are
    /// increasing). What a proof over a box in network units needs to cover a physical box.
    pub fn enclose(&self, a: f64, b: f64) -> (f64, f64) {
        // a·/d for a in [n_lo, n_hi] over a divisor d in [d_lo, d_hi] > 0, outward.
        let div = |n_lo: f64, n_hi: f64, d_lo: f64, d_hi: f64| {
            let lo = if n_lo >= 0.0 {
                n_lo / d_hi
            } else {
                n_lo / d_lo
            };
            let hi = if n_hi >= 0.0 {
                n_hi / d_lo
            } else {
                n_hi / d_hi
            };
            (lo.next_down(), hi.next_up())
        };
        match *self {
            Normalise::None => (a, b),
            Normalise::Standard { mean, std } => {
                div((a - mean).next_down(), (b - mean).next_up(), std, std)
            }
            Normalise::MinMax { min, max } => {
                let (d_lo, d_hi) = ((max - min).next_down(), (max - min).next_up());
                div((a - min).next_down(), (b - min).next_up(), d_lo, d_hi)
            }
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        match *self {
            Normalise::None => Ok(()),
            Normalise::Standard { mean, std } => {
                if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                    Err(format!(
                        "needs a finite mean and a positive std (got mean {mean}, std {std})"
                    ))
                } else {
                    Ok(())
                }
            }
            Normalise::MinMax { min, max } => {
                if !(min.is_finite() && max.is_finite() && max > min) {
                    Err(format!("needs finite min < max (got {min}, {max})"))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// How the network's scores are expressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scores {
    #[default]
    Logits,
    Probabilities,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFile {
    model: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    features: Vec<FeatureFile>,
    image: Option<GridFile>,
    signal: Option<GridFile>,
    output: OutputFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFile {
    name: String,
    #[serde(default)]
    unit: String,
    range: Option<[f64; 2]>,
    #[serde(default)]
    normalise: Normalise,
}

/// `[image]` and `[signal]`: a grid of values with one unit, range and normalisation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    channels: usize,
    #[serde(default)]
    height: usize,
    #[serde(default)]
    width: usize,
    #[serde(default)]
    len: usize,
    #[serde(default)]
    sample_rate_hz: f64,
    #[serde(default, alias = "lead_names")]
    channel_names: Vec<String>,
    #[serde(default)]
    unit: String,
    range: Option<[f64; 2]>,
    #[serde(default)]
    normalise: Normalise,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum OutputFile {
    Classification {
        classes: Vec<String>,
        #[serde(default)]
        scores: Scores,
    },
    Regression {
        target: String,
        #[serde(default)]
        unit: String,
        range: Option<[f64; 2]>,
    },
}

/// One tabular input column.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    pub name: String,
    pub unit: String,
    /// Valid physiological range, when given.
    pub range: Option<(f64, f64)>,
    pub normalise: Normalise,
}

/// What the network's input means.
#[derive(Clone, Debug, PartialEq)]
pub enum InputBinding {
    /// Named features, one per network input column, in network order.
    Tabular(Vec<Feature>),
    /// Images flattened (channels, height, width), one unit, range and normalisation.
    Image {
        channels: usize,
        height: usize,
        width: usize,
        channel_names: Vec<String>,
        unit: String,
        range: Option<(f64, f64)>,
        normalise: Normalise,
    },
    /// Signals flattened lead-major, one unit, range and normalisation.
    Signal {
        channels: usize,
        len: usize,
        sample_rate_hz: f64,
        lead_names: Vec<String>,
        unit: String,
        range: Option<(f64, f64)>,
        normalise: Normalise,
    },
}

/// What the network's output means.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputBinding {
    Classification {
        classes: Vec<String>,
        scores: Scores,
    },
    Regression {
        target: String,
        unit: String,
        range: Option<(f64, f64)>,
    },
}

/// A validated model binding.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The binding file.
    pub path: PathBuf,
    /// The model file, resolved relative to the binding file.
    pub model: PathBuf,
    pub description: String,
    pub input: InputBinding,
    pub output: OutputBinding,
    text: String,
}

/// The network's answers on a batch, in the binding's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum Predictions {
    /// Samples × classes probabilities.
    Classes(Array2<f64>),
    /// One value per sample, in the target's unit.
    Values(Vec<f64>),
}

impl Predictions {
    pub fn len(&self) -> usize {
        match self {
            Predictions::Classes(p) => p.nrows(),
            Predictions::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The predicted class of each sample (argmax; NaN scores lose), for classifiers.
    pub fn classes(&self) -> Option<Vec<usize>> {
        match self {
            Predictions::Classes(p) => Some(
                p.rows()
                    .into_iter()
                    .map(|r| {
                        let mut best = 0;
                        for (j, &v) in r.iter().enumerate() {
                            if v > r[best] || r[best].is_nan() {
                                best = j;
                            }
                        }
                        best
                    })
                    .collect(),
            ),
            Predictions::Values(_) => None,
        }
    }
}

/// `a/b/../c` as `a/c`: a lexical clean-up for messages (symlinks are not resolved).
pub fn clean_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Most features a numbered range `{A..B}` may stand for.
const MAX_RANGE: usize = 1_000_000;

/// A feature name, or a numbered panel `prefix{A..B}suffix` (`gene{0000..0199}`: 200 names,
/// zero-padded to the width of `A`), as the list of names it stands for, in order.
fn expand_name(name: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = name.find('{') else {
        return if name.contains('}') {
            Err(format!("`{name}` has a `}}` without `{{`"))
        } else {
            Ok(vec![name.to_string()])
        };
    };
    let usage = "a numbered range is written `prefix{A..B}suffix` with decimal A <= B, \
                 e.g. `gene{0000..0199}`";
    let rest = &name[open + 1..];
    let Some(close) = rest.find('}') else {
        return Err(format!("`{name}` has a `{{` without `}}`: {usage}"));
    };
    let (prefix, inner, suffix) = (&name[..open], &rest[..close], &rest[close + 1..]);
    if suffix.contains(['{', '}']) {
        return Err(format!("`{name}` has more than one range: {usage}"));
    }
    let Some((a, b)) = inner.split_once("..") else {
        return Err(format!("`{name}`: {usage}"));
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    let (Some(lo), Some(hi)) = (
        digits(a).then(|| a.parse::<usize>().ok()).flatten(),
        digits(b).then(|| b.parse::<usize>().ok()).flatten(),
    ) else {
        return Err(format!("`{name}`: {usage}"));
    };
    if lo > hi {
        return Err(format!("`{name}`: the range {lo}..{hi} is empty; {usage}"));
    }
    if hi - lo >= MAX_RANGE {
        return Err(format!(
            "`{name}` stands for {} features, more than {MAX_RANGE}",
            hi - lo + 1
        ));
    }
    let width = a.len();
    Ok((lo..=hi)
        .map(|k| format!("{prefix}{k:0width$}{suffix}"))
        .collect())
}

fn range_of(r: Option<[f64; 2]>) -> Option<(f64, f64)> {
    r.map(|[a, b]| (a, b))
}

fn check_range(r: Option<[f64; 2]>) -> std::result::Result<(), String> {
    match r {
        Some([a, b]) if !(a.is_finite() && b.is_finite() && a < b) => Err(format!(
            "must be [low, high] with finite low < high (got [{a}, {b}])"
        )),
        _ => Ok(()),
    }
}

impl Binding {
    /// Reads and validates a binding file.
    pub fn load(path: &Path) -> Result<Binding> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Binding::parse(path, &text)
    }

    /// Validates binding text as if read from `path` (the model path is resolved against it).
    pub fn parse(path: &Path, text: &str) -> Result<Binding> {
        let file: BindingFile = toml_span::parse(path, text)?;
        let bad = |key: &str, msg: String| toml_span::invalid(path, text, key, msg);
        let kinds = [
            !file.features.is_empty(),
            file.image.is_some(),
            file.signal.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(bad(
                "features",
                "give exactly one of [[features]] (tabular), [image] or [signal]".into(),
            ));
        }
        if file.model.trim().is_empty() {
            return Err(bad("model", "is empty; give the model file's path".into()));
        }
        let input = if let Some(g) = file.image {
            if g.channels == 0 || g.height == 0 || g.width == 0 {
                return Err(bad(
                    "image",
                    "channels, height and width must all be positive".into(),
                ));
            }
            if !g.channel_names.is_empty() && g.channel_names.len() != g.channels {
                return Err(bad(
                    "image.channel_names",
                    format!(
                        "has {} names for {} channels",
                        g.channel_names.len(),
                        g.channels
                    ),
                ));
            }
            check_range(g.range).map_err(|m| bad("image.range", m))?;
            g.normalise.check().map_err(|m| bad("image.normalise", m))?;
            InputBinding::Image {
                channels: g.channels,
                height: g.height,
                width: g.width,
                channel_names: g.channel_names,
                unit: g.unit,
                range: range_of(g.range),
                normalise: g.normalise,
            }
        } else if let Some(g) = file.signal {
            if g.channels == 0
                || g.len == 0
                || g.sample_rate_hz.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            {
                return Err(bad(
                    "signal",
                    "channels, len and sample_rate_hz must all be positive".into(),
                ));
            }
            if !g.channel_names.is_empty() && g.channel_names.len() != g.channels {
                return Err(bad(
                    "signal.lead_names",
                    format!(
                        "has {} names for {} leads",
                        g.channel_names.len(),
                        g.channels
                    ),
                ));
            }
            check_range(g.range).map_err(|m| bad("signal.range", m))?;
            g.normalise
                .check()
                .map_err(|m| bad("signal.normalise", m))?;
            InputBinding::Signal {
                channels: g.channels,
                len: g.len,
                sample_rate_hz: g.sample_rate_hz,
                lead_names: g.channel_names,
                unit: g.unit,
                range: range_of(g.range),
                normalise: g.normalise,
            }
        } else {
            let mut features = Vec::with_capacity(file.features.len());
            for (i, f) in file.features.into_iter().enumerate() {
                if f.name.trim().is_empty() {
                    return Err(bad(&format!("features[{i}].name"), "is empty".into()));
                }
                let names =
                    expand_name(&f.name).map_err(|m| bad(&format!("features[{i}].name"), m))?;
                check_range(f.range).map_err(|m| bad(&format!("features[{i}].range"), m))?;
                f.normalise
                    .check()
                    .map_err(|m| bad(&format!("features[{i}].normalise"), m))?;
                for name in names {
                    if features.iter().any(|g: &Feature| g.name == name) {
                        return Err(bad(
                            &format!("features[{i}].name"),
                            format!("feature `{name}` is bound twice"),
                        ));
                    }
                    features.push(Feature {
                        name,
                        unit: f.unit.clone(),
                        range: range_of(f.range),
                        normalise: f.normalise,
                    });
                }
            }
            InputBinding::Tabular(features)
        };
        let output = match file.output {
            OutputFile::Classification { classes, scores } => {
                if classes.len() < 2 {
                    return Err(bad(
                        "output.classes",
                        "needs at least two class names".into(),
                    ));
                }
                for (i, c) in classes.iter().enumerate() {
                    if classes[..i].contains(c) {
                        return Err(bad("output.classes", format!("class `{c}` is named twice")));
                    }
                }
                OutputBinding::Classification { classes, scores }
            }
            OutputFile::Regression {
                target,
                unit,
                range,
            } => {
                check_range(range).map_err(|m| bad("output.range", m))?;
                OutputBinding::Regression {
                    target,
                    unit,
                    range: range_of(range),
                }
            }
        };
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Ok(Binding {
            path: path.to_path_buf(),
            model: clean_path(&base.join(&file.model)),
            description: file.description,
            input,
            output,
            text: text.to_string(),
        })
    }

    /// The binding file's text (part of a scenario's hash).
    pub fn source_text(&self) -> &str {
        &self.text
    }

    /// A semantic error located at key `key` of this binding file.
    pub fn error(&self, key: &str, message: impl AsRef<str>) -> Error {
        toml_span::invalid(&self.path, &self.text, key, message)
    }

    /// Number of network input columns.
    pub fn width(&self) -> usize {
        match &self.input {
            InputBinding::Tabular(f) => f.len(),
            InputBinding::Image {
                channels,
                height,
                width,
                ..
            } => channels * height * width,
            InputBinding::Signal { channels, len, .. } => channels * len,
        }
    }

    /// Number of classes (classifiers) or 0 (regression).
    pub fn classes(&self) -> usize {
        match &self.output {
            OutputBinding::Classification { classes, .. } => classes.len(),
            OutputBinding::Regression { .. } => 0,
        }
    }

    /// Checks that the network takes and produces what this binding says.
    pub fn check_model(&self, graph: &Graph) -> Result<()> {
        if graph.input_size() != self.width() {
            return Err(self.error(
                "model",
                format!(
                    "the network takes {} input values per sample, the binding describes {}",
                    graph.input_size(),
                    self.width()
                ),
            ));
        }
        let out = graph.output_size();
        let ok = match &self.output {
            OutputBinding::Classification { classes, .. } => {
                out == classes.len() || (out == 1 && classes.len() == 2)
            }
            OutputBinding::Regression { .. } => out == 1,
        };
        if !ok {
            return Err(self.error(
                "output",
                format!(
                    "the network has {out} outputs per sample; a classifier needs one per class \
                     (or one for two classes), a regression model one"
                ),
            ));
        }
        Ok(())
    }

    /// The cohort column feeding each network input column, checking names, units and layout.
    pub fn columns(&self, cohort: &Cohort) -> Result<Vec<usize>> {
        match &self.input {
            InputBinding::Tabular(features) => features
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let j = cohort
                        .feature_names
                        .iter()
                        .position(|n| *n == f.name)
                        .ok_or_else(|| {
                            self.error(
                                &format!("features[{i}].name"),
                                format!(
                                    "the scenario's cohort has no feature `{}` (it has: {})",
                                    f.name,
                                    cohort.feature_names.join(", ")
                                ),
                            )
                        })?;
                    let unit = cohort.units.get(j).map(String::as_str).unwrap_or("");
                    if unit != f.unit {
                        return Err(self.error(
                            &format!("features[{i}].unit"),
                            format!(
                                "the cohort gives `{}` in `{unit}`, the binding says `{}`",
                                f.name, f.unit
                            ),
                        ));
                    }
                    Ok(j)
                })
                .collect(),
            InputBinding::Image {
                channels,
                height,
                width,
                ..
            } => {
                let expected = Layout::Image {
                    channels: *channels,
                    height: *height,
                    width: *width,
                };
                if cohort.layout != expected {
                    return Err(self.error(
                        "image",
                        format!("the cohort's layout is {:?}, the binding expects {expected:?}", cohort.layout),
                    ));
                }
                Ok((0..cohort.width()).collect())
            }
            InputBinding::Signal { channels, len, .. } => match &cohort.layout {
                Layout::Signal {
                    channels: c,
                    len: l,
                    ..
                } if c == channels && l == len => Ok((0..cohort.width()).collect()),
                other => Err(self.error(
                    "signal",
                    format!("the cohort's layout is {other:?}, the binding expects {channels} leads of {len} samples"),
                )),
            },
        }
    }

    /// The valid range of each cohort column this binding reads (by cohort column index).
    pub fn cohort_ranges(&self, cohort: &Cohort, columns: &[usize]) -> Vec<Option<(f64, f64)>> {
        let mut out = vec![None; cohort.width()];
        match &self.input {
            InputBinding::Tabular(features) => {
                for (f, &j) in features.iter().zip(columns) {
                    out[j] = f.range;
                }
            }
            InputBinding::Image { range, .. } | InputBinding::Signal { range, .. } => {
                out.iter_mut().for_each(|r| *r = *range);
            }
        }
        out
    }

    fn normalise_of(&self, k: usize) -> Normalise {
        match &self.input {
            InputBinding::Tabular(f) => f[k].normalise,
            InputBinding::Image { normalise, .. } | InputBinding::Signal { normalise, .. } => {
                *normalise
            }
        }
    }

    /// The network's input matrix: the bound columns of `x`, normalised, in `f32`.
    pub fn network_input(&self, x: ArrayView2<f64>, columns: &[usize]) -> Array2<f32> {
        let norms: Vec<Normalise> = (0..columns.len()).map(|k| self.normalise_of(k)).collect();
        let mut out = Array2::<f32>::zeros((x.nrows(), columns.len()));
        for (mut o, r) in out.rows_mut().into_iter().zip(x.rows()) {
            for (k, (&j, n)) in columns.iter().zip(&norms).enumerate() {
                o[k] = n.apply(r[j]) as f32;
            }
        }
        out
    }

    /// The network's outputs as predictions (probabilities for classifiers).
    pub fn predictions(&self, out: ArrayView2<f32>) -> Predictions {
        match &self.output {
            OutputBinding::Regression { .. } => {
                Predictions::Values(out.column(0).iter().map(|&v| f64::from(v)).collect())
            }
            OutputBinding::Classification { classes, scores } => {
                let k = classes.len();
                let mut p = Array2::<f64>::zeros((out.nrows(), k));
                for (mut pr, r) in p.rows_mut().into_iter().zip(out.rows()) {
                    if r.len() == 1 {
                        let s = f64::from(r[0]);
                        let q = match scores {
                            Scores::Logits => 1.0 / (1.0 + (-s).exp()),
                            Scores::Probabilities => s,
                        };
                        pr[0] = 1.0 - q;
                        pr[1] = q;
                    } else {
                        match scores {
                            Scores::Probabilities => {
                                pr.iter_mut().zip(r).for_each(|(a, &b)| *a = f64::from(b))
                            }
                            Scores::Logits => {
                                let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                                let m = f64::from(m);
                                let mut z = 0.0;
                                for (a, &b) in pr.iter_mut().zip(r) {
                                    *a = (f64::from(b) - m).exp();
                                    z += *a;
                                }
                                pr.iter_mut().for_each(|a| *a /= z);
                            }
                        }
                    }
                }
                Predictions::Classes(p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Binding> {
        Binding::parse(Path::new("specs/models/m.toml"), text)
    }

    #[test]
    fn normalised_boxes_enclose_the_real_image() {
        // Exact cases (small integers, power-of-two divisors): the result is representable, so
        // the enclosure must hold it strictly inside.
        for (a, b, mean, std) in [
            (1.0, 3.0, 2.0, 4.0),
            (-7.0, 9.0, 0.5, 0.25),
            (0.0, 0.0, 0.0, 1.0),
        ] {
            let n = Normalise::Standard { mean, std };
            let (lo, hi) = n.enclose(a, b);
            assert!(
                lo < (a - mean) / std && (b - mean) / std < hi,
                "{a} {b}: [{lo}, {hi}]"
            );
        }
        // Cancellation: the error of fl(0.1 + 0.2) is all that is left of a − mean.
        let n = Normalise::Standard {
            mean: 0.1 + 0.2,
            std: 3.0,
        };
        let (lo, hi) = n.enclose(0.3, 0.3);
        // Real value: (0.3 − fl(0.1+0.2))/3 = −2⁻⁵⁴/3 ≈ −1.85e-17 (the doubles, exactly).
        let v = -(2f64.powi(-54)) / 3.0;
        assert!(lo < v && v < hi && hi < 0.0 && lo > -1e-16, "[{lo}, {hi}]");
        let m = Normalise::MinMax {
            min: -1.0,
            max: 3.0,
        };
        let (lo, hi) = m.enclose(-1.0, 3.0);
        assert!(lo < 0.0 && hi > 1.0 && lo > -1e-15 && hi < 1.0 + 1e-15);
        assert_eq!(Normalise::None.enclose(2.0, 5.0), (2.0, 5.0));
        // Against apply(): never inside the rounded values.
        let n = Normalise::Standard {
            mean: 97.3,
            std: 13.7,
        };
        for k in 0..1000 {
            let a = 50.0 + 0.137 * k as f64;
            let (lo, hi) = n.enclose(a, a + 0.5);
            assert!(lo < n.apply(a) && n.apply(a + 0.5) < hi, "{a}");
        }
    }

    #[test]
    fn numbered_panels_expand_in_order() {
        let b = parse(
            "model = \"m.onnx\"\n[[features]]\nname = \"age\"\n[[features]]\n\
             name = \"gene{0008..0011}\"\nunit = \"counts\"\n\
             [output]\nkind = \"regression\"\ntarget = \"y\"\n",
        )
        .unwrap();
        let InputBinding::Tabular(f) = &b.input else {
            panic!("not tabular")
        };
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["age", "gene0008", "gene0009", "gene0010", "gene0011"]
        );
        assert!(f[1..].iter().all(|f| f.unit == "counts"));
        assert_eq!(expand_name("p{1..3}_x").unwrap(), ["p1_x", "p2_x", "p3_x"]);
        assert_eq!(expand_name("{7..7}").unwrap(), ["7"]);
    }

    #[test]
    fn malformed_panels_are_located_errors() {
        for (name, want) in [
            ("gene{3..1}", "is empty"),
            ("gene{a..b}", "numbered range"),
            ("gene{1..2", "without `}`"),
            ("gene1..2}", "without `{`"),
            ("g{1..2}{3..4}", "more than one range"),
            ("g{1-2}", "numbered range"),
            ("g{0..99999999999999999999999}", "numbered range"),
            ("g{0..2000000}", "more than 1000000"),
        ] {
            let text = format!(
                "model = \"m.onnx\"\n[[features]]\nname = \"{name}\"\n\
                 [output]\nkind = \"regression\"\ntarget = \"y\"\n"
            );
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
            assert!(e.contains("m.toml:3:"), "{name}: not located: {e}");
        }
        let e = parse(
            "model = \"m.onnx\"\n[[features]]\nname = \"g1\"\n[[features]]\n\
             name = \"g{0..2}\"\n[output]\nkind = \"regression\"\ntarget = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("feature `g1` is bound twice"), "{e}");
    }

    #[test]
    fn tabular_binding_normalises() {
        let b = parse(
            "model = \"m.onnx\"\n[[features]]\nname = \"a\"\nunit = \"mg\"\nnormalise = { kind = \"standard\", mean = 1.0, std = 2.0 }\n\
             [[features]]\nname = \"b\"\nnormalise = { kind = \"min_max\", min = 0.0, max = 4.0 }\n\
             [output]\nkind = \"regression\"\ntarget = \"y\"\n",
        )
        .unwrap();
        assert_eq!(b.width(), 2);
        assert_eq!(b.model, Path::new("specs/models/m.onnx"));
        let x = ndarray::array![[5.0, 1.0, 2.0]];
        let n = b.network_input(x.view(), &[0, 2]);
        assert_eq!(n.row(0).to_vec(), vec![2.0, 0.5]);
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = parse("model = \"m.onnx\"\n[[features]]\nname = \"a\"\nrange = [3.0, 1.0]\n[output]\nkind = \"regression\"\ntarget = \"y\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("specs/models/m.toml:4:9: `features[0].range`"),
            "{e}"
        );
    }

    #[test]
    fn single_logit_gives_two_class_probabilities() {
        let b = parse("model = \"m.onnx\"\n[[features]]\nname = \"a\"\n[output]\nkind = \"classification\"\nclasses = [\"no\", \"yes\"]\n").unwrap();
        let p = b.predictions(ndarray::array![[0.0f32], [10.0]].view());
        assert_eq!(p.classes(), Some(vec![0, 1]));
        let Predictions::Classes(p) = p else { panic!() };
        assert!((p[[0, 1]] - 0.5).abs() < 1e-12);
    }
}
