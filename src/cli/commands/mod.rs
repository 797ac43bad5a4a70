//! One module per subcommand; each exposes `run(&Args) -> Result<ExitStatus>`.

pub mod bounds;
pub mod check_cert;
pub mod error_bound;
pub mod eval;
pub mod gate;
pub mod inspect;
pub mod merge;
pub mod report;
pub mod stress;
pub mod synth;
pub mod verify;
