//! The stress tester: synthetic biological worlds, realistic perturbations and property tests
//! with shrinking (`beacons stress`, `beacons synth`).
//!
//! Data flows: a scenario file ([`scenario`]) names a generator ([`generators`]) that draws a
//! [`Cohort`] in physical units with its ground truth; perturbations ([`perturbations`]) damage
//! it at a severity in [0, 1]; the model binding maps the cohort to the network's inputs; the
//! properties ([`properties`]) judge the network's answers; the runner ([`runner`]) sweeps
//! severities, searches and shrinks failures with `proptest`, and writes JSON results.
//!
//! Module ownership while the tester is being built: `generators/` (and `cohort.rs`'s
//! generator-facing types) is one workstream; everything else is the other.

pub mod binding;
pub mod cohort;
pub mod generators;
pub mod perturbations;
pub mod properties;
pub mod replay;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod search;
pub(crate) mod toml_span;

pub use cohort::{Cohort, Layout};
