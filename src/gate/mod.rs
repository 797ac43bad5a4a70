//! The release gate: a policy (`specs/policies/*.toml`) names a model, formal properties
//! (VNN-LIB files, each with a time budget) and stress scenarios; [`run`] checks them all and
//! decides whether the model may be released.
//!
//! In: a policy file. Out: a [`Report`] (what was checked, every verdict and stress result,
//! the decision), and the proof certificate of every property that holds, written next to the
//! report. The decision: **blocked** when a property is violated or a stress property fails,
//! else **inconclusive** when a property is unknown or timed out and the policy's rules count
//! that as failure, else **release allowed**. Any error in the policy, the model, a property
//! or a scenario is an input error (exit 2), never a verdict.
//!
//! Policy format (TOML, paths relative to the policy file):
//!
//! ```toml
//! name = "dose_response"
//! description = "…"                 # optional
//! model = "../../models/dose_response.onnx"
//!
//! [[properties]]                    # any number
//! name = "effect_in_range"
//! vnnlib = "../dose_response_range.vnnlib"
//! timeout = 60                      # seconds (default 60)
//!
//! [[properties]]                    # a template beacons writes as VNN-LIB itself
//! name = "early_effect_band"        # (needs `binding = "../models/x.toml"` at the top)
//! kind = "output_range"             # inputs in physical units; others span their range
//! inputs = { dose = [100, 200], time = [0, 6] }
//! output = 0
//! min = 20.0                        # and/or max
//!
//! [[properties]]                    # L∞ robustness of the model's own prediction
//! name = "robust"                   # one property per point: robust[0], robust[1], …
//! kind = "robustness"
//! points = [[55.0, 78.0]]           # physical units, network input order
//! epsilon = 0.5                     # or one radius per input
//! # or, instead of `points`, a reference cohort drawn from a scenario's synthetic world
//! # (its binding maps the samples to the network's inputs):
//! # reference = { scenario = "../../scenarios/x.toml", samples = 5, seed = 1 }
//!
//! [[scenarios]]                     # any number
//! path = "../../scenarios/dose_response_pk.toml"
//!
//! [rules]
//! unknown_is_failure = true         # unknown or timeout blocks as inconclusive (default)
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cert::{check, sha256_hex};
use crate::error::{Error, Result};
use crate::ir::passes::{canonicalize, Level};
use crate::report::{
    Counterexample, Decision, FileId, ImageShape, Machine, ModelId, Outcome, PropertyReport,
    Report, ScenarioReport, Tool,
};
use crate::stress::binding::{Binding, InputBinding, Normalise};
use crate::stress::runner::Prepared;
use crate::stress::scenario::Scenario;
use crate::stress::toml_span;
use crate::verify::{self, Verdict};

/// A policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    #[serde(default)]
    description: String,
    model: String,
    /// The model binding (specs/models/*.toml): feature names, ranges and normalisation for
    /// the property templates.
    binding: Option<String>,
    #[serde(default)]
    properties: Vec<PropertyFile>,
    #[serde(default)]
    scenarios: Vec<ScenarioFile>,
    #[serde(default)]
    rules: Rules,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PropertyFile {
    name: String,
    /// A VNN-LIB file, or `kind` for a template.
    vnnlib: Option<String>,
    kind: Option<String>,
    /// `robustness`: the centres (physical units, network input order) and the radius (one
    /// number for every input, or one per input).
    #[serde(default)]
    points: Vec<Vec<f64>>,
    /// `robustness`: centres drawn from a scenario's synthetic world instead of `points`.
    reference: Option<ReferenceFile>,
    epsilon: Option<Epsilon>,
    /// `output_range`: input intervals by feature name (others span their binding range),
    /// the output index and the allowed interval.
    #[serde(default)]
    inputs: std::collections::BTreeMap<String, [f64; 2]>,
    #[serde(default)]
    output: usize,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(default = "default_timeout")]
    timeout: f64,
}

/// `reference = { scenario = "…", samples = 5, seed = 1 }`: a reference cohort of `samples`
/// individuals drawn (with `seed`) from the scenario's generator, mapped through the
/// scenario's binding to the network's inputs in physical units.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceFile {
    scenario: String,
    #[serde(default = "default_reference_samples")]
    samples: usize,
    #[serde(default)]
    seed: u64,
}

fn default_reference_samples() -> usize {
    5
}

/// Most centres one reference cohort may give (each is a verification problem).
const MAX_REFERENCE: usize = 1000;

/// The centres of a robustness template's reference cohort, in network input order and
/// physical units.
fn reference_points(dir: &Path, r: &ReferenceFile) -> std::result::Result<Vec<Vec<f64>>, String> {
    use rand::SeedableRng;
    if r.samples == 0 || r.samples > MAX_REFERENCE {
        return Err(format!(
            "reference.samples must be 1 to {MAX_REFERENCE} (got {})",
            r.samples
        ));
    }
    let path = tidy(&dir.join(&r.scenario));
    let scenario = Scenario::load(&path).map_err(|e| e.to_string())?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(r.seed);
    let cohort = scenario.generator.build().generate(r.samples, &mut rng);
    let columns = scenario
        .binding
        .columns(&cohort)
        .map_err(|e| e.to_string())?;
    Ok(cohort
        .x
        .rows()
        .into_iter()
        .map(|row| columns.iter().map(|&j| row[j]).collect())
        .collect())
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Epsilon {
    All(f64),
    Each(Vec<f64>),
}

fn default_timeout() -> f64 {
    60.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    path: String,
}

/// How the decision treats undecided properties.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// `unknown` and `timeout` make the gate inconclusive (exit 3); otherwise they are
    /// reported and ignored.
    #[serde(default = "yes")]
    pub unknown_is_failure: bool,
}

fn yes() -> bool {
    true
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            unknown_is_failure: true,
        }
    }
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub model: PathBuf,
    pub properties: Vec<PropertyEntry>,
    pub scenarios: Vec<PathBuf>,
    pub rules: Rules,
    /// The binding's per-input normalisation (identity without a binding).
    pub normalise: Vec<Normalise>,
    /// The input layout, when the binding describes images.
    pub image: Option<ImageShape>,
    /// The model was given on the command line: scenarios run on it (through their
    /// bindings) instead of the model their bindings name.
    pub model_overridden: bool,
    text: String,
}

/// One formal property of a policy.
#[derive(Clone, Debug)]
pub struct PropertyEntry {
    pub name: String,
    pub source: Source,
    pub timeout: f64,
}

/// Where a property comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A VNN-LIB file.
    File(PathBuf),
    /// L∞ robustness around `point` (physical units): the model's own prediction there may
    /// not change within `epsilon` of it (per input).
    Robustness { point: Vec<f64>, epsilon: Vec<f64> },
    /// Output `output` stays within `[min, max]` (either may be open) over the input box
    /// `lower..upper` (physical units).
    OutputRange {
        lower: Vec<f64>,
        upper: Vec<f64>,
        output: usize,
        min: Option<f64>,
        max: Option<f64>,
    },
}

impl Policy {
    /// Reads and validates `path`; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: PolicyFile = toml_span::parse(path, &text)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let located = |key: &str, msg: String| toml_span::invalid(path, &text, key, msg);
        if file.name.trim().is_empty() {
            return Err(located("name", "the policy needs a non-empty name".into()));
        }
        let binding = match &file.binding {
            Some(b) => Some(Binding::load(&tidy(&dir.join(b)))?),
            None => None,
        };
        let features = match binding.as_ref().map(|b| &b.input) {
            Some(InputBinding::Tabular(f)) => Some(f.clone()),
            _ => None,
        };
        let normalise = match binding.as_ref().map(|b| (&b.input, b.width())) {
            Some((InputBinding::Tabular(f), _)) => f.iter().map(|f| f.normalise).collect(),
            Some((
                InputBinding::Image { normalise, .. } | InputBinding::Signal { normalise, .. },
                n,
            )) => vec![*normalise; n],
            None => Vec::new(),
        };
        let width = binding.as_ref().map(|b| b.width());
        let image = match binding.as_ref().map(|b| &b.input) {
            Some(InputBinding::Image {
                channels,
                height,
                width,
                ..
            }) => Some(ImageShape {
                channels: *channels,
                height: *height,
                width: *width,
            }),
            _ => None,
        };
        let mut names = std::collections::BTreeSet::new();
        let mut properties = Vec::new();
        for (i, p) in file.properties.iter().enumerate() {
            if !(p.timeout.is_finite() && p.timeout > 0.0) {
                return Err(located(
                    &format!("properties[{i}].timeout"),
                    format!("timeout {} must be a positive number of seconds", p.timeout),
                ));
            }
            if !names.insert(p.name.clone()) {
                return Err(located(
                    &format!("properties[{i}].name"),
                    format!("two properties are called `{}`", p.name),
                ));
            }
            let key = |k: &str| format!("properties[{i}].{k}");
            let source = match (&p.vnnlib, p.kind.as_deref()) {
                (Some(f), None) => Source::File(tidy(&dir.join(f))),
                (None, Some("robustness")) => {
                    let n = width;
                    let Some(eps) = &p.epsilon else {
                        return Err(located(
                            &key("kind"),
                            "a robustness property needs `epsilon`".into(),
                        ));
                    };
                    let points = match (&p.reference, p.points.is_empty()) {
                        (Some(r), true) => {
                            reference_points(dir, r).map_err(|m| located(&key("reference"), m))?
                        }
                        (None, false) => p.points.clone(),
                        (Some(_), false) => {
                            return Err(located(
                                &key("reference"),
                                "give `points` or `reference`, not both".into(),
                            ))
                        }
                        (None, true) => {
                            return Err(located(
                                &key("kind"),
                                "a robustness property needs `points` or `reference`".into(),
                            ))
                        }
                    };
                    // One property per point: NAME[k].
                    for (k, point) in points.iter().enumerate() {
                        if n.is_some_and(|n| n != point.len()) {
                            return Err(located(
                                &key("points"),
                                format!(
                                    "point {k} has {} values; the binding has {} inputs",
                                    point.len(),
                                    n.unwrap_or(0)
                                ),
                            ));
                        }
                        let epsilon = match eps {
                            Epsilon::All(e) => vec![*e; point.len()],
                            Epsilon::Each(v) => v.clone(),
                        };
                        if epsilon.len() != point.len()
                            || epsilon.iter().any(|e| !(e.is_finite() && *e >= 0.0))
                        {
                            return Err(located(
                                &key("epsilon"),
                                "epsilon must be one non-negative number or one per input".into(),
                            ));
                        }
                        let name = if points.len() == 1 {
                            p.name.clone()
                        } else {
                            format!("{}[{k}]", p.name)
                        };
                        properties.push(PropertyEntry {
                            name,
                            source: Source::Robustness {
                                point: point.clone(),
                                epsilon,
                            },
                            timeout: p.timeout,
                        });
                    }
                    continue;
                }
                (None, Some("output_range")) => {
                    let Some(feats) = &features else {
                        return Err(located(&key("kind"), "an output_range property needs the policy's `binding` (feature names and ranges)".into()));
                    };
                    let mut lower = Vec::new();
                    let mut upper = Vec::new();
                    for f in feats {
                        let (lo, hi) = match p.inputs.get(&f.name) {
                            Some([lo, hi]) => (*lo, *hi),
                            None => f.range.ok_or_else(|| {
                                located(&key("inputs"), format!("feature `{}` has no range in the binding: give it in `inputs`", f.name))
                            })?,
                        };
                        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                            return Err(located(
                                &key("inputs"),
                                format!("`{}`: [{lo}, {hi}] is not an interval", f.name),
                            ));
                        }
                        lower.push(lo);
                        upper.push(hi);
                    }
                    if let Some(unknown) = p
                        .inputs
                        .keys()
                        .find(|k| !feats.iter().any(|f| &f.name == *k))
                    {
                        return Err(located(
                            &key("inputs"),
                            format!("the binding has no feature `{unknown}`"),
                        ));
                    }
                    if p.min.is_none() && p.max.is_none() {
                        return Err(located(
                            &key("kind"),
                            "an output_range property needs `min`, `max` or both".into(),
                        ));
                    }
                    Source::OutputRange {
                        lower,
                        upper,
                        output: p.output,
                        min: p.min,
                        max: p.max,
                    }
                }
                (None, Some(other)) => {
                    return Err(located(&key("kind"), format!("unknown property kind `{other}` (robustness, output_range; or give `vnnlib`)")));
                }
                _ => {
                    return Err(located(
                        &key("name"),
                        "give either `vnnlib` (a file) or `kind` (a template)".into(),
                    ));
                }
            };
            properties.push(PropertyEntry {
                name: p.name.clone(),
                source,
                timeout: p.timeout,
            });
        }
        if properties.is_empty() && file.scenarios.is_empty() {
            return Err(located(
                "name",
                "the policy checks nothing: add [[properties]] or [[scenarios]]".into(),
            ));
        }
        Ok(Policy {
            path: path.to_path_buf(),
            name: file.name,
            description: file.description,
            model: tidy(&dir.join(&file.model)),
            properties,
            scenarios: file
                .scenarios
                .iter()
                .map(|s| tidy(&dir.join(&s.path)))
                .collect(),
            rules: file.rules,
            normalise,
            image,
            model_overridden: false,
            text,
        })
    }

    /// Gates `model` instead of the policy's: every property and scenario runs on it.
    pub fn use_model(&mut self, model: &Path) {
        self.model = model.to_path_buf();
        self.model_overridden = true;
    }

    /// A point in physical units (network input order) in the network's input units.
    pub fn to_network(&self, point: &[f64]) -> Vec<f64> {
        point
            .iter()
            .enumerate()
            .map(|(k, &v)| self.normalise.get(k).map_or(v, |n| n.apply(v)))
            .collect()
    }
}

/// `path` with `.` and `name/..` folded away lexically (for readable reports).
pub fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
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

/// Options of one gate run.
#[derive(Clone, Debug)]
pub struct GateOptions {
    /// Where certificates go (the report folder).
    pub out_dir: PathBuf,
    /// Progress lines on stderr.
    pub progress: bool,
    /// The command line, recorded as the way to reproduce the run.
    pub command: String,
}

fn file_id(path: &Path) -> Result<FileId> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(FileId {
        path: path.display().to_string(),
        sha256: sha256_hex(&bytes),
    })
}

/// The folder name `reports/<model stem>-<first 12 hex digits of the model's SHA-256>`.
pub fn default_out_dir(model: &Path) -> Result<PathBuf> {
    let id = file_id(model)?;
    let stem = model
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    Ok(PathBuf::from("reports").join(format!("{stem}-{}", &id.sha256[..12])))
}

/// Checks everything `policy` names and decides.
pub fn run(policy: &Policy, opts: &GateOptions) -> Result<Report> {
    let start = Instant::now();
    let model = crate::ir::load_model(&policy.model)?;
    let model_id = file_id(&policy.model)?;
    let graph = &model.graph;
    let io = |ids: &[crate::ir::ValueId]| -> Vec<String> {
        ids.iter()
            .map(|&v| {
                let val = graph.value(v);
                format!("{} {:?}", val.name, val.shape)
            })
            .collect()
    };
    let (inputs, outputs) = (io(&graph.inputs), io(&graph.outputs));
    let model_bytes = std::fs::read(&policy.model).map_err(|e| Error::io(&policy.model, e))?;
    let mut exact_graph = graph.clone();
    canonicalize(&mut exact_graph, Level::Exact);
    // Load everything first: a configuration error must not wait for minutes of checks.
    let mut specs = Vec::new();
    let mut paths = Vec::new();
    for p in &policy.properties {
        let path = match &p.source {
            Source::File(f) => f.clone(),
            template => {
                // Written into the report folder, so check-cert and people can read it.
                let text = template_vnnlib(policy, p, template, graph)?;
                let f = opts
                    .out_dir
                    .join("specs")
                    .join(format!("{}.vnnlib", p.name));
                std::fs::create_dir_all(opts.out_dir.join("specs"))
                    .map_err(|e| Error::io(&f, e))?;
                std::fs::write(&f, text).map_err(|e| Error::io(&f, e))?;
                f
            }
        };
        let spec = crate::spec::load(&path)?;
        specs.push((spec, file_id(&path)?));
        paths.push(path);
    }
    let mut scenarios = Vec::new();
    for path in &policy.scenarios {
        let mut sc = Scenario::load(path)?;
        if policy.model_overridden {
            sc.use_model(&policy.model);
        }
        let bound = file_id(&sc.binding.model)?;
        if bound.sha256 != model_id.sha256 {
            return Err(Error::Invalid(format!(
                "{}: the scenario tests {} (via its binding {}), not the policy's model {}",
                path.display(),
                sc.binding.model.display(),
                sc.binding.path.display(),
                policy.model.display()
            )));
        }
        scenarios.push((sc, file_id(path)?));
    }
    let total = policy.properties.len() + scenarios.len();
    let mut step = 0;
    let mut say = |what: String| {
        step += 1;
        if opts.progress {
            eprintln!("[{step}/{total}] {what}");
        }
    };

    let mut properties = Vec::new();
    for ((p, (spec, spec_id)), vnnlib) in policy.properties.iter().zip(specs).zip(&paths) {
        let vopts = verify::Options {
            timeout: Duration::from_secs_f64(p.timeout),
            ..verify::Options::default()
        };
        let mut o = verify::verify(graph, &spec, &vopts)?;
        let mut certificate = None;
        let mut certificate_check = String::new();
        if let (Some(cert), Verdict::Holds) = (&o.certificate, o.verdict) {
            let mut cert = cert.clone();
            let spec_bytes = std::fs::read(vnnlib).map_err(|e| Error::io(vnnlib, e))?;
            cert.stamp(&model_bytes, &spec_bytes);
            let rel = PathBuf::from("certificates").join(format!("{}.json", p.name));
            let full = opts.out_dir.join(&rel);
            std::fs::create_dir_all(full.parent().unwrap_or(&opts.out_dir))
                .map_err(|e| Error::io(&full, e))?;
            cert.write(&full)?;
            certificate = Some(rel.display().to_string());
            // The independent re-check (`beacons check-cert`), on the exact canonical graph.
            let checked = check::check(
                &exact_graph,
                &spec,
                &cert,
                &model_id.sha256,
                &sha256_hex(&spec_bytes),
                &|_| {},
            );
            certificate_check = match checked {
                Ok(check::Decision::Accepted(c)) => {
                    format!("accepted by the independent checker ({} leaves)", c.leaves)
                }
                Ok(check::Decision::Rejected(r)) => {
                    o.verdict = Verdict::Unknown;
                    o.reason = format!("the proof certificate was rejected: {r}");
                    format!("REJECTED: {r}")
                }
                Err(e) => format!("not re-checked: {e}"),
            };
        } else if o.verdict == Verdict::Holds {
            certificate_check = format!("not re-checked: {}", o.reason);
        }
        say(format!(
            "property {}: {} ({:.2} s)",
            p.name,
            o.verdict.name(),
            o.seconds
        ));
        properties.push(PropertyReport {
            name: p.name.clone(),
            spec: spec_id,
            timeout_seconds: p.timeout,
            verdict: o.verdict.name().to_string(),
            reason: o.reason.clone(),
            seconds: o.seconds,
            domains: o.domains,
            counterexample: o.counterexample.as_ref().map(|c| Counterexample {
                region: c.region,
                input: c.input.clone(),
                output: c.output.clone(),
                centre: match &p.source {
                    Source::Robustness { point, .. } => Some(policy.to_network(point)),
                    _ => None,
                },
            }),
            certificate,
            certificate_check,
        });
    }

    let mut scenario_reports = Vec::new();
    for (sc, id) in scenarios {
        let t = Instant::now();
        let name = sc.name.clone();
        let results = Prepared::load(sc)?.run(false)?;
        let failed = results.properties.iter().filter(|p| !p.passed).count();
        say(format!(
            "scenario {name}: {} ({} of {} properties fail, {:.2} s)",
            if results.passed { "pass" } else { "FAIL" },
            failed,
            results.properties.len(),
            t.elapsed().as_secs_f64()
        ));
        scenario_reports.push(ScenarioReport {
            file: id,
            seconds: t.elapsed().as_secs_f64(),
            results,
        });
    }

    let decision = decide(&properties, &scenario_reports, policy.rules);
    Ok(Report {
        schema_version: crate::report::SCHEMA_VERSION,
        tool: Tool::current(),
        generated_at: crate::report::utc_now(),
        duration_seconds: start.elapsed().as_secs_f64(),
        policy_name: policy.name.clone(),
        policy_description: policy.description.clone(),
        policy: FileId {
            path: policy.path.display().to_string(),
            sha256: sha256_hex(policy.text.as_bytes()),
        },
        rules: policy.rules,
        model: ModelId {
            file: model_id,
            format: model.format.to_string(),
            inputs,
            outputs,
            image: policy.image,
        },
        machine: Machine::current(),
        decision,
        properties,
        scenarios: scenario_reports,
        reproduce: opts.command.clone(),
    })
}

/// The VNN-LIB text of a template property, in the network's input units (the binding's
/// normalisation applied to the physical bounds; both kinds are increasing maps).
fn template_vnnlib(
    policy: &Policy,
    p: &PropertyEntry,
    source: &Source,
    graph: &crate::ir::Graph,
) -> Result<String> {
    let n_in = graph.input_size();
    let n_out = graph.output_size();
    let to_net = |k: usize, v: f64| policy.normalise.get(k).map_or(v, |nz| nz.apply(v));
    let mut s = format!(
        "; Generated by beacons gate from policy {} (property `{}`).\n",
        policy.path.display(),
        p.name
    );
    let declare = |s: &mut String| {
        for i in 0..n_in {
            *s += &format!("(declare-const X_{i} Real)\n");
        }
        for j in 0..n_out {
            *s += &format!("(declare-const Y_{j} Real)\n");
        }
    };
    // The box in network units encloses the image of the physical box: each end rounded
    // outward through the normalisation (`Normalise::enclose`).
    let bounds = |s: &mut String, lo: &[f64], hi: &[f64]| {
        for i in 0..n_in {
            let (l, h) = policy
                .normalise
                .get(i)
                .map_or((lo[i], hi[i]), |nz| nz.enclose(lo[i], hi[i]));
            *s += &format!("(assert (>= X_{i} {l:?}))\n(assert (<= X_{i} {h:?}))\n");
        }
    };
    let misfit = |what: &str| {
        Error::Invalid(format!(
            "{}: property `{}`: {what}",
            policy.path.display(),
            p.name
        ))
    };
    match source {
        Source::File(_) => return Err(misfit("a VNN-LIB file is read, not generated")),
        Source::Robustness { point, epsilon } => {
            if point.len() != n_in {
                return Err(misfit(&format!(
                    "the point has {} values; the model takes {n_in}",
                    point.len()
                )));
            }
            if n_out < 2 {
                return Err(misfit(
                    "robustness needs a classifier (two or more outputs)",
                ));
            }
            let x: Vec<f64> = (0..n_in).map(|i| to_net(i, point[i])).collect();
            let view = ndarray::ArrayView2::from_shape((1, n_in), &x)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let y = crate::eval::forward_f64(graph, view)?;
            let label = (0..n_out)
                .max_by(|&a, &b| y[[0, a]].total_cmp(&y[[0, b]]))
                .unwrap_or(0);
            s += &format!(
                "; L-infinity robustness: within the box below (physical radius {epsilon:?}) every\n; input keeps the model's prediction at the centre, class {label}.\n"
            );
            declare(&mut s);
            // Rounded outward by one ulp, so the written box contains the whole ball asked for.
            let lo: Vec<f64> = point
                .iter()
                .zip(epsilon)
                .map(|(c, e)| (c - e).next_down())
                .collect();
            let hi: Vec<f64> = point
                .iter()
                .zip(epsilon)
                .map(|(c, e)| (c + e).next_up())
                .collect();
            bounds(&mut s, &lo, &hi);
            s += "(assert (or\n";
            for j in (0..n_out).filter(|&j| j != label) {
                s += &format!("  (and (>= Y_{j} Y_{label}))\n");
            }
            s += "))\n";
        }
        Source::OutputRange {
            lower,
            upper,
            output,
            min,
            max,
        } => {
            if lower.len() != n_in {
                return Err(misfit(&format!(
                    "the binding has {} inputs; the model takes {n_in}",
                    lower.len()
                )));
            }
            if *output >= n_out {
                return Err(misfit(&format!(
                    "output {output} does not exist ({n_out} outputs)"
                )));
            }
            s += &format!(
                "; Output {output} stays within [{}, {}] over the box below.\n",
                min.map_or("-inf".into(), |v| format!("{v}")),
                max.map_or("inf".into(), |v| format!("{v}"))
            );
            declare(&mut s);
            bounds(&mut s, lower, upper);
            s += "(assert (or\n";
            if let Some(v) = min {
                s += &format!("  (and (<= Y_{output} {v:?}))\n");
            }
            if let Some(v) = max {
                s += &format!("  (and (>= Y_{output} {v:?}))\n");
            }
            s += "))\n";
        }
    }
    Ok(s)
}

/// The gate's decision from the verdicts and stress results.
pub fn decide(props: &[PropertyReport], scenarios: &[ScenarioReport], rules: Rules) -> Decision {
    let mut blocking = Vec::new();
    let mut undecided = Vec::new();
    for p in props {
        match p.verdict.as_str() {
            "violated" => blocking.push(format!(
                "property `{}` is violated (counterexample found)",
                p.name
            )),
            "holds" => {}
            v => undecided.push(format!("property `{}` is {v}", p.name)),
        }
    }
    for s in scenarios {
        for q in s.results.properties.iter().filter(|q| !q.passed) {
            blocking.push(format!(
                "scenario `{}`: property `{}` fails",
                s.results.scenario, q.name
            ));
        }
    }
    let (outcome, mut reasons) = if !blocking.is_empty() {
        (Outcome::Blocked, blocking)
    } else if rules.unknown_is_failure && !undecided.is_empty() {
        (Outcome::Inconclusive, undecided.clone())
    } else {
        (Outcome::ReleaseAllowed, Vec::new())
    };
    if outcome != Outcome::Inconclusive && !undecided.is_empty() {
        reasons.extend(undecided.into_iter().map(|u| {
            if rules.unknown_is_failure {
                u
            } else {
                format!("{u} (allowed by the policy's rules)")
            }
        }));
    }
    Decision {
        exit_code: outcome.exit_code(),
        outcome,
        reasons,
    }
}
