//! The CLI's one error type: a stable snake_case code, a path and a message, and the
//! exit code it maps to (2 for bad input, 1 for I/O failures).

use std::fmt;
use std::path::Path;

/// Exit code for input the CLI or the policy refused (bad JSON, CSV, config).
pub(crate) const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a file that could not be read or an output that could not be written.
pub(crate) const EXIT_IO: u8 = 1;

/// An error the CLI reports as `error: <code> at <path>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliError {
    /// Stable snake_case code: the core's codes, plus `io`, `invalid_csv`,
    /// `invalid_utf8`, `input_too_long` and `inputs_refused` from the CLI itself.
    pub(crate) code: String,
    /// Where: a file, a line, a JSON path in a document; empty for "everywhere".
    pub(crate) path: String,
    /// What went wrong, for a person.
    pub(crate) message: String,
    /// The process exit code.
    pub(crate) exit: u8,
}

impl CliError {
    /// Input that was refused.
    pub(crate) fn bad_input(
        code: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code: code.into(),
            path: path.into(),
            message: message.into(),
            exit: EXIT_BAD_INPUT,
        }
    }

    /// A file that could not be read or written.
    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        Self {
            code: "io".into(),
            path: path.display().to_string(),
            message: err.to_string(),
            exit: EXIT_IO,
        }
    }

    /// A core error, its path placed under `parent` (e.g. `config` for a scenario's
    /// config, or `line 12` for a samples file).
    pub(crate) fn core_within(err: &rollguard::Error, parent: &str) -> Self {
        let path = match (parent.is_empty(), err.path.is_empty()) {
            (true, _) => err.path.clone(),
            (false, true) => parent.to_string(),
            (false, false) => format!("{parent}.{}", err.path),
        };
        Self::bad_input(err.code.as_str(), path, err.message.clone())
    }
}

impl From<rollguard::Error> for CliError {
    fn from(err: rollguard::Error) -> Self {
        Self::core_within(&err, "")
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "error: {}: {}", self.code, self.message)
        } else {
            write!(f, "error: {} at {}: {}", self.code, self.path, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_code_path_and_message() {
        let e = CliError::bad_input("invalid_json", "line 3", "expected value");
        assert_eq!(
            e.to_string(),
            "error: invalid_json at line 3: expected value"
        );
        let e = CliError::bad_input("invalid_json", "", "EOF");
        assert_eq!(e.to_string(), "error: invalid_json: EOF");
    }

    #[test]
    fn core_errors_keep_their_code_under_a_parent_path() {
        let core = rollguard::Error::new(rollguard::ErrorCode::NoSteps, "strategy.steps", "none");
        let e = CliError::core_within(&core, "config");
        assert_eq!(
            (e.code.as_str(), e.path.as_str(), e.exit),
            ("no_steps", "config.strategy.steps", EXIT_BAD_INPUT)
        );
        assert_eq!(CliError::from(core).path, "strategy.steps");
    }
}
