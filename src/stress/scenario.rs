//! Scenario files (`scenarios/*.toml`): the world, the model, the damage and the claims.
//!
//! In: a scenario file. Out: a validated [`Scenario`] (its binding loaded too). Paths are
//! relative to the scenario file. Errors name the file, the key and its line.
//!
//! ```toml
//! name = "dose_response_pk"            # default: the file's stem
//! description = "..."                  # optional
//! binding = "../specs/models/dose_response.toml"
//! samples = 2000                       # cohort size
//! seed = 7                             # cohort, perturbation and search seeds derive from it
//!
//! [generator]                          # a generator and its parameters (see stress::generators)
//! kind = "pk"
//!
//! [sweep]                              # optional
//! steps = 11                           # severities per perturbation, evenly spaced over its range
//! replicates = 4                       # perturbation seeds per severity (pass rate = share passing)
//!
//! [search]                             # optional: proptest search and shrinking
//! cases = 64                           # random (seed, severity, samples) cases per pair
//! max_shrink_iters = 2000
//!
//! [[perturbations]]                    # zero or more; see stress::perturbations for kinds
//! name = "dose_noise"                  # default: the kind
//! kind = "gaussian_noise"
//! severity = [0.0, 0.5]                # the range over which every property must hold
//! sd = 10.0
//! features = ["dose_mg"]
//!
//! [[properties]]                       # one or more; see stress::properties for kinds
//! name = "stable_under_noise"          # default: the kind
//! kind = "invariance"
//! tolerance = 5.0
//! perturbations = ["dose_noise"]       # default: every perturbation
//! ```
//!
//! A property holds when it passes on the cohort for every perturbation it applies to, at
//! every severity in that perturbation's range and for every perturbation seed tried (the
//! sweep's replicates and the search's cases). Without perturbations, properties are judged
//! on the clean cohort.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::binding::Binding;
use super::generators::GeneratorSpec;
use super::perturbations::Perturbation;
use super::properties::Property;
use super::toml_span;
use crate::error::{Error, Result};

fn default_steps() -> usize {
    11
}
fn default_replicates() -> usize {
    4
}
fn default_cases() -> u32 {
    64
}
fn default_shrink() -> u32 {
    2000
}
fn full_range() -> [f64; 2] {
    [0.0, 1.0]
}

/// `[sweep]`: the severity grid.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default = "default_replicates")]
    pub replicates: usize,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            steps: default_steps(),
            replicates: default_replicates(),
        }
    }
}

/// `[search]`: the proptest search.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    #[serde(default = "default_cases")]
    pub cases: u32,
    #[serde(default = "default_shrink")]
    pub max_shrink_iters: u32,
}

impl Default for Search {
    fn default() -> Self {
        Search {
            cases: default_cases(),
            max_shrink_iters: default_shrink(),
        }
    }
}

/// One `[[perturbations]]` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PerturbationEntry {
    #[serde(default)]
    pub name: String,
    #[serde(default = "full_range")]
    pub severity: [f64; 2],
    #[serde(flatten)]
    pub perturbation: Perturbation,
}

/// One `[[properties]]` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PropertyEntry {
    #[serde(default)]
    pub name: String,
    /// Names of the perturbations it applies to (empty: all).
    #[serde(default)]
    pub perturbations: Vec<String>,
    #[serde(flatten)]
    pub property: Property,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    binding: String,
    samples: usize,
    seed: u64,
    generator: GeneratorSpec,
    #[serde(default)]
    sweep: Sweep,
    #[serde(default)]
    search: Search,
    #[serde(default)]
    perturbations: Vec<PerturbationEntry>,
    #[serde(default)]
    properties: Vec<PropertyEntry>,
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub binding: Binding,
    pub samples: usize,
    pub seed: u64,
    pub generator: GeneratorSpec,
    pub sweep: Sweep,
    pub search: Search,
    pub perturbations: Vec<PerturbationEntry>,
    pub properties: Vec<PropertyEntry>,
    /// FNV-1a of the scenario and binding texts: replay tokens are bound to it.
    pub hash: u64,
    /// The model was given on the command line (`--model`), replacing the binding's.
    pub model_override: bool,
    text: String,
}

/// FNV-1a, 64 bit: a small stable hash for tokens and digests (not cryptographic).
pub fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The FNV-1a offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The first backquoted word of `message` (the key a nested validator complains about).
fn quoted_key(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

impl Scenario {
    /// Reads and validates a scenario file and its binding.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Scenario::parse(path, &text)
    }

    /// Validates scenario text as if read from `path` (the binding is loaded from disk).
    pub fn parse(path: &Path, text: &str) -> Result<Scenario> {
        let file: ScenarioFile = toml_span::parse(path, text)?;
        let bad = |key: &str, msg: String| toml_span::invalid(path, text, key, msg);
        if file.samples == 0 || file.samples > 50_000_000 {
            return Err(bad(
                "samples",
                format!("must be within [1, 50000000] (got {})", file.samples),
            ));
        }
        if let Err(e) = file.generator.validate() {
            // "generator `kind`: `key` must be ..." names the key after the kind.
            let key = e
                .split_once(": ")
                .and_then(|(_, rest)| quoted_key(rest))
                .map(|k| format!("generator.{k}"))
                .unwrap_or_else(|| "generator".into());
            return Err(bad(&key, e));
        }
        if file.sweep.steps < 2 {
            return Err(bad("sweep.steps", "must be at least 2".into()));
        }
        if file.sweep.replicates == 0 {
            return Err(bad("sweep.replicates", "must be at least 1".into()));
        }
        let mut perturbations = file.perturbations;
        for (i, p) in perturbations.iter_mut().enumerate() {
            let [lo, hi] = p.severity;
            if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
                return Err(bad(
                    &format!("perturbations[{i}].severity"),
                    format!("must be [low, high] with 0 <= low <= high <= 1 (got [{lo}, {hi}])"),
                ));
            }
            if let Err((key, m)) = p.perturbation.validate() {
                return Err(bad(&format!("perturbations[{i}].{key}"), m));
            }
            if p.name.is_empty() {
                p.name = p.perturbation.kind().to_string();
            }
        }
        for i in 0..perturbations.len() {
            if perturbations[..i]
                .iter()
                .any(|q| q.name == perturbations[i].name)
            {
                return Err(bad(
                    &format!("perturbations[{i}].name"),
                    format!(
                        "two perturbations are named `{}`; give each a distinct `name`",
                        perturbations[i].name
                    ),
                ));
            }
        }
        let mut properties = file.properties;
        if properties.is_empty() {
            return Err(bad(
                "properties",
                "give at least one [[properties]] entry".into(),
            ));
        }
        for (i, p) in properties.iter_mut().enumerate() {
            if p.name.is_empty() {
                p.name = p.property.kind().to_string();
            }
            for (k, name) in p.perturbations.iter().enumerate() {
                if !perturbations.iter().any(|q| q.name == *name) {
                    return Err(bad(
                        &format!("properties[{i}].perturbations[{k}]"),
                        format!("no perturbation is named `{name}`"),
                    ));
                }
            }
        }
        for i in 0..properties.len() {
            if properties[..i].iter().any(|q| q.name == properties[i].name) {
                return Err(bad(
                    &format!("properties[{i}].name"),
                    format!(
                        "two properties are named `{}`; give each a distinct `name`",
                        properties[i].name
                    ),
                ));
            }
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let binding_path = super::binding::clean_path(&base.join(&file.binding));
        let binding = match std::fs::read_to_string(&binding_path) {
            Ok(t) => Binding::parse(&binding_path, &t)?,
            Err(e) => {
                return Err(bad(
                    "binding",
                    format!("cannot read `{}`: {e}", binding_path.display()),
                ))
            }
        };
        let mut hash = fnv1a(FNV_START, text.as_bytes());
        hash = fnv1a(hash, &[0xff]);
        hash = fnv1a(hash, binding.source_text().as_bytes());
        let name = if file.name.is_empty() {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        } else {
            file.name
        };
        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            description: file.description,
            binding,
            samples: file.samples,
            seed: file.seed,
            generator: file.generator,
            sweep: file.sweep,
            search: file.search,
            perturbations,
            properties,
            hash,
            model_override: false,
            text: text.to_string(),
        })
    }

    /// Runs the scenario on `model` instead of the model its binding names (a retrained
    /// model with the same inputs and outputs); replay commands then name it.
    pub fn use_model(&mut self, model: &Path) {
        self.binding.model = model.to_path_buf();
        self.model_override = true;
    }

    /// A semantic error located at key `key` of this scenario file.
    pub fn error(&self, key: &str, message: impl AsRef<str>) -> Error {
        toml_span::invalid(&self.path, &self.text, key, message)
    }

    /// Whether property `q` applies to perturbation `p`.
    pub fn applies(&self, q: usize, p: usize) -> bool {
        let names = &self.properties[q].perturbations;
        names.is_empty() || names.contains(&self.perturbations[p].name)
    }
}
