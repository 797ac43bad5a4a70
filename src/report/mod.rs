//! The gate's report: a versioned serde schema ([`Report`]) and its renderings — JSON, Markdown
//! (a CI step summary), self-contained HTML with inline SVG plots, JUnit XML and SARIF 2.1.0.
//!
//! Determinism: everything in a report follows from the policy, the files it names and their
//! seeds, except the fields that say when and how long (`generated_at`, `duration_seconds`,
//! every `seconds`), the machine and the tool's commit. Vectors keep the policy's order; no
//! hash maps. [`SCHEMA_VERSION`] changes with any incompatible change of the schema.

mod html;
mod junit;
mod markdown;
mod sarif;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gate::Rules;
use crate::stress::results::StressResults;

pub use html::render as html;
pub use junit::render as junit;
pub use markdown::render as markdown;
pub use sarif::render as sarif;

/// Version of the [`Report`] schema.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a gate run checked and decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// When the run finished, UTC, RFC 3339.
    pub generated_at: String,
    pub duration_seconds: f64,
    pub policy_name: String,
    pub policy_description: String,
    pub policy: FileId,
    pub rules: Rules,
    pub model: ModelId,
    pub machine: Machine,
    pub decision: Decision,
    pub properties: Vec<PropertyReport>,
    pub scenarios: Vec<ScenarioReport>,
    /// The command that reproduces the run.
    pub reproduce: String,
}

/// beacons itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// The git commit beacons was built from ("unknown" outside a git checkout).
    pub commit: String,
}

impl Tool {
    pub fn current() -> Tool {
        Tool {
            name: "beacons".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit: option_env!("BEACONS_GIT_COMMIT")
                .unwrap_or("unknown")
                .into(),
        }
    }
}

/// A file and the SHA-256 of its bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileId {
    pub path: String,
    pub sha256: String,
}

/// The model under test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelId {
    pub file: FileId,
    /// "onnx" or "nnet".
    pub format: String,
    /// `name [shape]` of every input and output.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// For image models (an `[image]` binding): the layout of one input, so counterexamples
    /// can be drawn. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageShape>,
}

/// The layout of an image input: values flattened channel-major (`c, y, x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Where the checks ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub gpu: String,
    pub os: String,
}

impl Machine {
    pub fn current() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            gpu: "none (the CPU backend computed every bound)".into(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The gate's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    ReleaseAllowed,
    Blocked,
    Inconclusive,
}

impl Outcome {
    /// The process exit code (0 allowed, 1 blocked, 3 inconclusive).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::ReleaseAllowed => 0,
            Outcome::Blocked => 1,
            Outcome::Inconclusive => 3,
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Outcome::ReleaseAllowed => "RELEASE ALLOWED",
            Outcome::Blocked => "RELEASE BLOCKED",
            Outcome::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// The decision and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub exit_code: i32,
    /// Each failing or undecided check, in policy order.
    pub reasons: Vec<String>,
}

/// One formal property.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyReport {
    pub name: String,
    pub spec: FileId,
    pub timeout_seconds: f64,
    /// holds, violated, unknown or timeout.
    pub verdict: String,
    /// Why the verdict is unknown (empty otherwise).
    pub reason: String,
    pub seconds: f64,
    /// Sub-boxes bounded by branch-and-bound.
    pub domains: u64,
    pub counterexample: Option<Counterexample>,
    /// The proof certificate of a `holds` verdict, relative to the report folder
    /// (`beacons check-cert MODEL SPEC FILE` re-checks it).
    pub certificate: Option<String>,
    /// What the independent checker (`cert::check`) said of the certificate: accepted, or
    /// why it was not checked. (A rejected certificate turns the verdict into `unknown`.)
    pub certificate_check: String,
}

/// A concrete input violating a property, re-evaluated exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The input box of the property it lies in.
    pub region: usize,
    pub input: Vec<f64>,
    pub output: Vec<f64>,
    /// For a robustness property: the centre of its box (network input units), so the report
    /// can show what changed. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre: Option<Vec<f64>>,
}

/// One stress scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub file: FileId,
    pub seconds: f64,
    pub results: StressResults,
}

/// The methods a report rests on, with what each one establishes.
pub const METHODS: &[(&str, &str)] = &[
    (
        "Formal verification (beacons verify)",
        "Proven: for every input in the property's box, the outputs avoid the unsafe set. Sound \
         bounds (interval, CROWN, alpha-CROWN) computed in f64 with every rounding error bounded \
         outward; branch-and-bound over input boxes (up to 16 inputs) or over ReLU activation \
         patterns (wider inputs); `holds` comes with a certificate that an independent checker \
         (beacons check-cert, sharing no bound code) re-proves, except for proofs by ReLU \
         splitting, which the report marks as not re-checked. `violated` comes with a \
         counterexample re-evaluated in f64 and exactly.",
    ),
    (
        "Stress testing (beacons stress)",
        "Tested, not proven: a synthetic cohort from a published generative model, perturbed at \
         swept severities; property-based search (proptest) shrinks each failure to the smallest \
         severity and sample set and gives a replay token that reproduces it bit for bit. The \
         network runs in f32, as deployed.",
    ),
];

/// What a report does not establish.
pub const LIMITATIONS: &[&str] = &[
    "Formal properties hold only on the input boxes they state, for the model file whose SHA-256 \
     is given; nothing is claimed outside those boxes.",
    "Proofs assume IEEE-754 double arithmetic and a platform exp/tanh accurate to 2^-50 relative; \
     the deployed model may run in f32, whose rounding is not covered by the proofs.",
    "Stress results describe the synthetic worlds of the scenarios; they are evidence, not a \
     guarantee, about real patients.",
    "An `unknown` or `timeout` verdict decides nothing; the policy's rules say whether it blocks.",
];

/// The report as pretty JSON (trailing newline).
pub fn json(r: &Report) -> Result<String> {
    serde_json::to_string_pretty(r)
        .map(|s| s + "\n")
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Reads a report written by [`json`].
pub fn from_json(path: &std::path::Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let r: Report = serde_json::from_str(&text).map_err(|e| {
        Error::parse(
            path,
            crate::error::Location {
                line: e.line().max(1),
                column: e.column().max(1),
            },
            format!("not a beacons report: {e}"),
        )
    })?;
    if r.schema_version != SCHEMA_VERSION {
        return Err(Error::Invalid(format!(
            "{}: report schema version {} (this beacons reads version {SCHEMA_VERSION})",
            path.display(),
            r.schema_version
        )));
    }
    Ok(r)
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Escapes text for XML and HTML.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => o.push(c),
        }
    }
    o
}

/// A number for people: up to 6 significant digits.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        return "n/a".into();
    }
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        return format!("{v:.4e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(2.0e-5), "2.0000e-5");
    }
}
