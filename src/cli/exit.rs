//! Exit codes, shared by every subcommand (like ripgrep and the VNN-COMP tools):
//! 0 holds / success / gate passes, 1 violated / gate fails, 2 usage or input error,
//! 3 unknown or timeout.

/// What a finished command tells the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did its job (and, for verdicts, the property holds).
    Success,
    /// A property is violated or a gate blocks the release.
    Violated,
    /// The input or the command line is wrong.
    InputError,
    /// No verdict: unknown or timeout.
    Inconclusive,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Violated => 1,
            ExitStatus::InputError => 2,
            ExitStatus::Inconclusive => 3,
        }
    }
}
