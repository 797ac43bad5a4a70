//! `beacons inspect MODEL [--spec SPEC] [--json]`: what a model is made of, as beacons sees it.
//!
//! Shows the inputs and outputs with their shapes, the operators as written in the file, the
//! parameter count and the canonical graph (exact level: the graph the verifier works on); with
//! `--spec`, also the property summary, after checking it fits the model.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::cli::args::InspectArgs;
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};
use crate::ir::passes::{canonicalize, Level};
use crate::ir::{load_model, Graph};
use crate::spec;

#[derive(Debug, Serialize)]
struct TensorInfo {
    name: String,
    shape: Vec<usize>,
}

#[derive(Debug, Serialize)]
struct Inspection {
    model: String,
    format: &'static str,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    parameters: usize,
    source_ops: BTreeMap<String, usize>,
    canonical_ops: BTreeMap<&'static str, usize>,
    canonical_graph: Vec<String>,
    notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<spec::SpecSummary>,
}

fn tensors(g: &Graph, ids: &[crate::ir::ValueId]) -> Vec<TensorInfo> {
    ids.iter()
        .map(|&v| TensorInfo {
            name: g.value(v).name.clone(),
            shape: g.value(v).shape.clone(),
        })
        .collect()
}

pub fn run(args: &InspectArgs) -> Result<ExitStatus> {
    let model = load_model(&args.model)?;
    let mut graph = model.graph.clone();
    canonicalize(&mut graph, Level::Exact);
    let spec = match &args.spec {
        Some(path) => {
            let s = spec::load(path)?;
            check_spec_fits(&s, &model.graph, path)?;
            Some(s.summary())
        }
        None => None,
    };
    let report = Inspection {
        model: args.model.display().to_string(),
        format: model.format,
        inputs: tensors(&model.graph, &model.graph.inputs),
        outputs: tensors(&model.graph, &model.graph.outputs),
        parameters: model.graph.parameter_count(),
        source_ops: model.source_ops.clone(),
        canonical_ops: graph.op_histogram(),
        canonical_graph: graph.to_string().lines().map(str::to_owned).collect(),
        notes: model.notes.clone(),
        spec,
    };
    let mut out = std::io::stdout().lock();
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| Error::Invalid(e.to_string()))? + "\n"
    } else {
        render_text(&report)
    };
    // A closed pipe (e.g. `| head`) is not an error worth reporting.
    let _ = out.write_all(text.as_bytes());
    Ok(ExitStatus::Success)
}

/// The property must talk about exactly the model's input and output scalars.
pub fn check_spec_fits(s: &spec::Spec, g: &Graph, path: &std::path::Path) -> Result<()> {
    if s.num_inputs != g.input_size() || s.num_outputs != g.output_size() {
        return Err(Error::Invalid(format!(
            "{}: the property declares {} inputs and {} outputs, but the model has {} input and {} output scalars",
            path.display(),
            s.num_inputs,
            s.num_outputs,
            g.input_size(),
            g.output_size()
        )));
    }
    Ok(())
}

fn histogram<K: std::fmt::Display>(h: impl IntoIterator<Item = (K, usize)>) -> String {
    h.into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_text(r: &Inspection) -> String {
    let mut s = String::new();
    let shape = |t: &TensorInfo| format!("{} {:?}", t.name, t.shape);
    s += &format!("model       {} ({})\n", r.model, r.format);
    for t in &r.inputs {
        s += &format!("input       {}\n", shape(t));
    }
    for t in &r.outputs {
        s += &format!("output      {}\n", shape(t));
    }
    s += &format!("parameters  {}\n", r.parameters);
    s += &format!(
        "file ops    {}\n",
        histogram(r.source_ops.iter().map(|(k, v)| (k, *v)))
    );
    s += &format!(
        "beacons ops {}\n",
        histogram(r.canonical_ops.iter().map(|(k, v)| (k, *v)))
    );
    for n in &r.notes {
        s += &format!("note        {n}\n");
    }
    s += "\ncanonical graph:\n";
    for l in &r.canonical_graph {
        s += &format!("  {l}\n");
    }
    if let Some(spec) = &r.spec {
        s += &format!(
            "\nproperty    {} inputs, {} outputs, {} input box(es){}\n",
            spec.num_inputs,
            spec.num_outputs,
            spec.num_regions,
            if spec.exact_coefficients {
                ""
            } else {
                ", some coefficients not exact in f64"
            }
        );
        for (k, r) in spec.regions.iter().enumerate() {
            s += &format!(
                "  box {k}: {} unsafe disjunct(s), {} atom(s)\n",
                r.disjuncts, r.atoms
            );
        }
        for (i, r) in spec.input_ranges.iter().enumerate() {
            s += &format!("  X_{i:<4} in [{}, {}]\n", r.lower, r.upper);
        }
    }
    s
}
