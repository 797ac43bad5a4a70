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
    Counterexample, Decision, FileId, Machine, ModelId, Outcome, PropertyReport, Report,
    ScenarioReport, Tool,
};
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
    vnnlib: String,
    #[serde(default = "default_timeout")]
    timeout: f64,
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
    text: String,
}

/// One formal property of a policy.
#[derive(Clone, Debug)]
pub struct PropertyEntry {
    pub name: String,
    pub vnnlib: PathBuf,
    pub timeout: f64,
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
            properties.push(PropertyEntry {
                name: p.name.clone(),
                vnnlib: tidy(&dir.join(&p.vnnlib)),
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
            text,
        })
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
    for p in &policy.properties {
        let spec = crate::spec::load(&p.vnnlib)?;
        specs.push((spec, file_id(&p.vnnlib)?));
    }
    let mut scenarios = Vec::new();
    for path in &policy.scenarios {
        let sc = Scenario::load(path)?;
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
    for (p, (spec, spec_id)) in policy.properties.iter().zip(specs) {
        let vopts = verify::Options {
            timeout: Duration::from_secs_f64(p.timeout),
            ..verify::Options::default()
        };
        let mut o = verify::verify(graph, &spec, &vopts)?;
        let mut certificate = None;
        let mut certificate_check = String::new();
        if let (Some(cert), Verdict::Holds) = (&o.certificate, o.verdict) {
            let mut cert = cert.clone();
            let spec_bytes = std::fs::read(&p.vnnlib).map_err(|e| Error::io(&p.vnnlib, e))?;
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
        },
        machine: Machine::current(),
        decision,
        properties,
        scenarios: scenario_reports,
        reproduce: opts.command.clone(),
    })
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
