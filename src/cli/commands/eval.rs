//! `beacons eval MODEL --input FILE [--precision f32|f64] [--json]`: the forward pass on
//! given inputs, as the verifier computes it.
//!
//! FILE is JSON `{"inputs": [[...], ...]}`: one array per sample, all model inputs flattened
//! row-major and concatenated in the model's input order. With `--json` the result is
//! `{"outputs": [[...], ...]}` in the same layout.

use std::io::Write;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::cli::args::{EvalArgs, Precision};
use crate::cli::exit::ExitStatus;
use crate::error::{Error, Location, Result};
use crate::eval;
use crate::ir::load_model;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFile {
    inputs: Vec<Vec<f64>>,
}

#[derive(Debug, Serialize)]
struct OutputFile {
    outputs: Vec<Vec<f64>>,
}

/// Reads and checks an input file against the expected number of scalars per sample.
pub fn read_inputs(path: &std::path::Path, width: usize) -> Result<Array2<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file: InputFile = serde_json::from_str(&text).map_err(|e| {
        Error::parse(
            path,
            Location {
                line: e.line(),
                column: e.column(),
            },
            format!("{e}; expected {{\"inputs\": [[number, ...], ...]}}")
                .replace(&format!(" at line {} column {}", e.line(), e.column()), ""),
        )
    })?;
    if file.inputs.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: \"inputs\" is empty; give at least one sample",
            path.display()
        )));
    }
    let mut data = Vec::with_capacity(file.inputs.len() * width);
    for (i, row) in file.inputs.iter().enumerate() {
        if row.len() != width {
            return Err(Error::Invalid(format!(
                "{}: sample {i} has {} values, the model takes {width} (all inputs flattened row-major)",
                path.display(),
                row.len()
            )));
        }
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "{}: sample {i}, value {j} is not a finite number",
                path.display()
            )));
        }
        data.extend_from_slice(row);
    }
    Array2::from_shape_vec((file.inputs.len(), width), data)
        .map_err(|e| Error::Invalid(e.to_string()))
}

pub fn run(args: &EvalArgs) -> Result<ExitStatus> {
    let model = load_model(&args.model)?;
    let graph = &model.graph;
    let inputs = read_inputs(&args.input, graph.input_size())?;
    let outputs: Array2<f64> = match args.precision {
        Precision::F64 => eval::forward_f64(graph, inputs.view())?,
        Precision::F32 => {
            eval::forward_f32(graph, inputs.mapv(|v| v as f32).view())?.mapv(f64::from)
        }
    };
    let rows: Vec<Vec<f64>> = outputs.rows().into_iter().map(|r| r.to_vec()).collect();
    let text = if args.json {
        serde_json::to_string(&OutputFile { outputs: rows })
            .map_err(|e| Error::Invalid(e.to_string()))?
            + "\n"
    } else {
        let mut s = String::new();
        for (i, r) in rows.iter().enumerate() {
            let vals: Vec<String> = r.iter().map(|v| format!("{v}")).collect();
            s += &format!("sample {i}: {}\n", vals.join(" "));
        }
        s
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitStatus::Success)
}
