//! The command-line grammar (clap derive). Each subcommand's arguments are one struct, handed
//! to its module under `commands/` after clap has validated them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Prove and stress-test the safety of trained neural networks before release.
#[derive(Debug, Parser)]
#[command(name = "beacons", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a model's inputs, outputs, operators, parameters and canonical graph
    /// (and, with --spec, a summary of a VNN-LIB property).
    Inspect(InspectArgs),
    /// Evaluate a model on inputs from a JSON file: {"inputs": [[...], ...]}.
    Eval(EvalArgs),
    /// Sound bounds on the outputs and on the margins of every atom of a VNN-LIB property.
    Bounds(BoundsArgs),
}

#[derive(Debug, Args)]
pub struct BoundsArgs {
    /// The model: an ONNX (.onnx) or NNet (.nnet) file.
    pub model: PathBuf,
    /// The property (VNN-LIB): its input boxes and the atoms whose margins are bounded.
    pub spec: PathBuf,
    /// Bound method: ibp (interval), crown (backward linear relaxation).
    #[arg(long, value_enum, default_value_t = BoundMethod::Crown)]
    pub method: BoundMethod,
    /// Print stable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BoundMethod {
    Ibp,
    Crown,
}

impl From<BoundMethod> for crate::engine::Method {
    fn from(m: BoundMethod) -> Self {
        match m {
            BoundMethod::Ibp => crate::engine::Method::Ibp,
            BoundMethod::Crown => crate::engine::Method::Crown,
        }
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model: an ONNX (.onnx) or NNet (.nnet) file.
    pub model: PathBuf,
    /// A VNN-LIB property to summarise against the model.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Print stable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model: an ONNX (.onnx) or NNet (.nnet) file.
    pub model: PathBuf,
    /// JSON file {"inputs": [[...], ...]}: one array per sample, all model inputs flattened
    /// row-major and concatenated in the model's input order.
    #[arg(long)]
    pub input: PathBuf,
    /// Arithmetic used for the forward pass.
    #[arg(long, value_enum, default_value_t = Precision::F64)]
    pub precision: Precision,
    /// Print stable JSON ({"outputs": [[...], ...]}) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    F32,
    F64,
}
