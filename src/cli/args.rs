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
    /// Decide a VNN-LIB property (holds / violated with a counterexample / unknown / timeout),
    /// or run a VNN-COMP instances.csv with --instances.
    Verify(VerifyArgs),
    /// Combine the results files of suite shards into the results of the whole list.
    Merge(MergeArgs),
    /// Certified worst-case error of a surrogate network against a closed-form reference
    /// model over a region (specs/references/*.toml).
    ErrorBound(ErrorBoundArgs),
    /// Stress-test a model in a synthetic world: perturbation severity sweeps, property
    /// search and shrinking, replayable failures (scenario TOML; see README).
    Stress(StressArgs),
    /// Draw a synthetic cohort from a scenario's `[generator]` and write it with its ground
    /// truth (CSV, or NPY plus sidecars).
    Synth(SynthArgs),
    /// Check the certificate of a `holds` verdict (written by `verify --certificate`) with
    /// an independent checker: exit 0 accepted, 1 rejected, 2 input error.
    CheckCert(CheckCertArgs),
    /// The release gate: run every property and stress scenario of a policy, write the
    /// reports, exit 0 release allowed, 1 blocked, 3 inconclusive, 2 input error.
    Gate(GateArgs),
    /// Re-render a gate's report.json as HTML, Markdown, JUnit XML, SARIF or JSON.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The release policy (TOML; see specs/policies/).
    #[arg(long)]
    pub policy: PathBuf,
    /// The model to gate (ONNX or NNet; default: the policy's `model`). Its properties and
    /// scenarios then run on this file, through the policy's bindings (a retrained model with
    /// the same inputs and outputs).
    pub model: Option<PathBuf>,
    /// The report folder (default: reports/<model>-<first 12 hex digits of its SHA-256>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the proofs' branch-and-bound bounds its sub-boxes: cpu, cuda (an NVIDIA GPU;
    /// exit 2 without one), or auto (CUDA when a driver and a GPU are present, else the CPU;
    /// says which on stderr).
    #[arg(long, value_enum, default_value_t = crate::backend::Device::Cpu)]
    pub device: crate::backend::Device,
    /// Print the report JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// The formats `beacons report` renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
    Junit,
    Sarif,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report.json written by `beacons gate`.
    pub report: PathBuf,
    /// What to render.
    #[arg(long, value_enum)]
    pub format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckCertArgs {
    /// The model the certificate was made for (ONNX or NNet).
    pub model: PathBuf,
    /// The property (VNN-LIB).
    pub spec: PathBuf,
    /// The certificate (JSON).
    pub cert: PathBuf,
    /// Print stable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ErrorBoundArgs {
    /// The model: an ONNX (.onnx) or NNet (.nnet) file.
    pub model: std::path::PathBuf,
    /// The reference model (TOML: name, inputs, output, expression, `[region]`).
    pub reference: std::path::PathBuf,
    /// Stop when upper - lower <= T * lower.
    #[arg(long, default_value_t = 0.05, value_name = "T")]
    pub tolerance: f64,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub timeout: f64,
    /// Decide `sup |N - f| <= E`: exit 0 holds, 1 violated (witness), 3 undecided.
    #[arg(long, value_name = "E")]
    pub max_error: Option<f64>,
    /// Write the certificate (the leaf boxes and the bound each proves) to this file.
    #[arg(long, value_name = "FILE", conflicts_with = "check_certificate")]
    pub certificate: Option<std::path::PathBuf>,
    /// Check a certificate written by --certificate instead of searching (exit 0 accepted,
    /// 1 rejected).
    #[arg(long, value_name = "FILE")]
    pub check_certificate: Option<std::path::PathBuf>,
    /// Print stable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The scenario file (TOML); only its `[generator]`, `samples` and `seed` are read.
    pub scenario: PathBuf,
    /// Output file: .csv (header, then label/target/batch columns) or .npy (plus
    /// STEM.labels.npy, STEM.targets.npy, STEM.batch.npy); STEM.meta.json is written too.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of samples (default: the scenario's `samples`, else 1000).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed (default: the scenario's `seed`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The model: an ONNX (.onnx) or NNet (.nnet) file.
    #[arg(required_unless_present = "instances", conflicts_with = "instances")]
    pub model: Option<PathBuf>,
    /// The property (VNN-LIB).
    #[arg(required_unless_present = "instances", conflicts_with = "instances")]
    pub spec: Option<PathBuf>,
    /// Wall-clock limit in seconds for one property.
    #[arg(long, default_value_t = 60.0, conflicts_with = "instances")]
    pub timeout: f64,
    /// Write the VNN-COMP result file (unsat / sat + counterexample / unknown / timeout / error).
    #[arg(long, conflicts_with = "instances")]
    pub result_file: Option<PathBuf>,
    /// Run every instance of a VNN-COMP instances.csv (onnx,vnnlib,timeout; no header; paths
    /// relative to the CSV's folder).
    #[arg(long)]
    pub instances: Option<PathBuf>,
    /// With --instances: cap every instance's timeout at this many seconds.
    #[arg(long, requires = "instances")]
    pub timeout_cap: Option<f64>,
    /// With --instances: write onnx,vnnlib,verdict,seconds per instance to this file.
    #[arg(long, requires = "instances")]
    pub out: Option<PathBuf>,
    /// With --instances: run only shard K of N (every instance whose 0-based index i has
    /// i mod N = K-1).
    #[arg(long, requires = "instances", value_name = "K/N")]
    pub shard: Option<String>,
    /// Most sub-boxes allowed to wait in the branch-and-bound queue (memory cap; beyond it
    /// the verdict is unknown).
    #[arg(long, default_value_t = 2_000_000)]
    pub max_domains: usize,
    /// Seed of the attacks' random choices.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// When the property holds, write its certificate (JSON) to this file
    /// (check it with `beacons check-cert`).
    #[arg(long, value_name = "FILE", conflicts_with = "instances")]
    pub certificate: Option<PathBuf>,
    /// Where branch-and-bound bounds its sub-boxes: cpu, cuda (an NVIDIA GPU; exit 2 without
    /// one), or auto (CUDA when a driver and a GPU are present, else the CPU; says which on
    /// stderr).
    #[arg(long, value_enum, default_value_t = crate::backend::Device::Cpu)]
    pub device: crate::backend::Device,
    /// Print stable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StressArgs {
    /// The scenario file (TOML): generator, model binding, perturbations, properties.
    pub scenario: PathBuf,
    /// Reproduce one failure from the replay token printed with it.
    #[arg(long, value_name = "TOKEN")]
    pub replay: Option<String>,
    /// Run on this model instead of the one the scenario's binding names (a retrained model
    /// with the same inputs and outputs).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write the JSON results to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the JSON results instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Results files of the shards (written by `beacons verify --instances --shard K/N --out`).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Check the rows against this instances.csv too.
    #[arg(long)]
    pub instances: Option<PathBuf>,
    /// Write the merged results here (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BoundsArgs {
    /// The model: an ONNX (.onnx) or NNet (.nnet) file.
    pub model: PathBuf,
    /// The property (VNN-LIB): its input boxes and the atoms whose margins are bounded.
    pub spec: PathBuf,
    /// Bound method: ibp (interval), crown (backward linear relaxation), alpha-crown (CROWN
    /// with relaxation slopes optimised for each bound, 20 iterations), lp (the triangle-relaxation
    /// LP over CROWN's intermediate bounds, one LP per bound, made sound from the solver's duals;
    /// never looser than crown, slower).
    #[arg(long, value_enum, default_value_t = BoundMethod::Crown)]
    pub method: BoundMethod,
    /// Where the bounds are computed: cpu, cuda (an NVIDIA GPU; exit 2 without one), or
    /// auto (CUDA when a driver and a GPU are present, else the CPU; says which on stderr).
    /// On CUDA, `--method crown` is the batched CROWN of `verify`; other methods need the CPU.
    #[arg(long, value_enum, default_value_t = crate::backend::Device::Cpu)]
    pub device: crate::backend::Device,
    /// Print stable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BoundMethod {
    Ibp,
    Crown,
    AlphaCrown,
    Lp,
}

impl From<BoundMethod> for crate::engine::Method {
    fn from(m: BoundMethod) -> Self {
        match m {
            BoundMethod::Ibp => crate::engine::Method::Ibp,
            BoundMethod::Crown => crate::engine::Method::Crown,
            BoundMethod::AlphaCrown => crate::engine::Method::AlphaCrown,
            BoundMethod::Lp => crate::engine::Method::Lp,
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
