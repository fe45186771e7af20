//! The backtest's error: a stable snake_case code, a path and a message, as the core's.

use serde::Serialize;

/// Why a backtest could not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code} at {path}: {message}")]
pub struct BacktestError {
    /// Stable code: the core's codes for a policy's errors, else `invalid_json`,
    /// `invalid_value`, `unknown_reference` or `empty_recording`.
    pub code: String,
    /// The field or input at fault.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl BacktestError {
    pub(crate) fn new(code: &str, path: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(path: &str, what: &str) -> Self {
        Self::new("invalid_value", path, what)
    }

    pub(crate) fn json(what: &str, e: &serde_json::Error) -> Self {
        Self::new("invalid_json", what, e.to_string())
    }
}

impl From<rollguard::Error> for BacktestError {
    fn from(e: rollguard::Error) -> Self {
        Self {
            code: e.code.as_str().into(),
            path: e.path,
            message: e.message,
        }
    }
}

/// A serde enum's snake_case name, as its JSON spells it (a reason, a target kind).
pub(crate) fn snake_name<T: Serialize>(x: &T) -> String {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
