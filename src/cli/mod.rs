//! The `beacons` command line: one file per subcommand under `commands/`.
//!
//! `main` parses the arguments (clap), runs the subcommand, and turns its outcome into an exit
//! code (`exit.rs`): results go to stdout, diagnostics to stderr, input errors exit with 2 and
//! print one helpful line, never a backtrace.

pub mod args;
pub mod commands;
pub mod exit;

use clap::Parser;

use args::{Cli, Command};
use exit::ExitStatus;

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return e.exit_code();
        }
    };
    let outcome = match cli.command {
        Command::Inspect(a) => commands::inspect::run(&a),
        Command::Eval(a) => commands::eval::run(&a),
        Command::Bounds(a) => commands::bounds::run(&a),
        Command::Verify(a) => commands::verify::run(&a),
        Command::Merge(a) => commands::merge::run(&a),
        Command::ErrorBound(a) => commands::error_bound::run(&a),
        Command::Stress(a) => commands::stress::run(&a),
        Command::Synth(a) => commands::synth::run(&a),
        Command::CheckCert(a) => commands::check_cert::run(&a),
        Command::Gate(a) => commands::gate::run(&a),
        Command::Report(a) => commands::report::run(&a),
    };
    match outcome {
        Ok(status) => status.code(),
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::InputError.code()
        }
    }
}
