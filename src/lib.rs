//! beacons: prove and stress-test the safety of trained neural networks before release.
//!
//! The module map, in the order data flows:
//!
//! - [`ir`]: the network IR (`Graph`, `Op`), importers for ONNX and NNet, canonicalisation passes.
//! - [`spec`]: VNN-LIB properties: input boxes and the unsafe output region.
//! - [`eval`]: forward evaluation in f32, f64 and exact rational arithmetic.
//! - [`bounds`]: per-operator sound bound rules and relaxations; `bounds::rounding` holds the
//!   floating-point soundness argument.
//! - [`backend`]: the hot primitives of batched bound propagation behind one trait (CPU
//!   reference; CUDA kernels from `kernels/*.cu`, feature `cuda`).
//! - [`engine`]: bound engines (IBP, CROWN) over a whole graph and box.
//! - [`errbound`]: certified worst-case error of a surrogate network against a closed-form
//!   reference model (`beacons error-bound`), with certificates and their checker.
//! - [`cert`]: certificates of `holds` verdicts and their independent checker
//!   (`beacons check-cert`).
//! - [`stress`]: synthetic cohorts, perturbations and property tests with shrinking.
//! - [`gate`]: release policies: every property and scenario checked, one decision.
//! - [`report`]: the gate's versioned report and its renderings (JSON, Markdown, HTML, JUnit,
//!   SARIF).
//! - [`cli`]: the `beacons` command line.
//! - [`error`]: the error type; every input error says where it comes from.

pub mod backend;
pub mod bounds;
pub mod cert;
pub mod cli;
pub mod engine;
pub mod errbound;
pub mod error;
pub mod eval;
pub mod gate;
pub mod ir;
pub mod report;
pub mod spec;
pub mod stress;
pub mod tensor;
pub mod verify;

pub use error::{Error, Result};

/// Keeps large freed blocks in the heap (glibc `mallopt`); the `beacons` binary calls this
/// first thing, and benchmarks that stand for a command do too.
///
/// The bound engines allocate and free coefficient matrices of a few megabytes many times per
/// bound, and the stress tester's batched forward passes activations of hundreds of
/// kilobytes per layer. glibc serves such blocks with `mmap` and returns freed memory to the
/// system at once, so every allocation page-faults afresh (measured: about a quarter of
/// alpha-CROWN's time on mnist_fc 256x6, a tenth of the stress MLP benchmark). Keeping them
/// in the heap instead costs only the peak memory the work uses anyway.
///
/// # Safety
/// Call it before any other thread exists (`mallopt` is not synchronised).
pub unsafe fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; the caller guarantees no other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
