//! One error type with a stable, snake_case [`ErrorCode`] and a field path.
//!
//! The code is the contract across Rust, Python and JavaScript; the message wording is
//! not. Every error leaves the policy exactly as it was before the call that failed.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The stable machine-readable reason an input, a config or a snapshot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    // ---- documents ----
    /// The JSON text is not well formed, or a field has the wrong type or is missing.
    InvalidJson,
    /// The document declares a `format_version` this build does not read.
    UnsupportedFormatVersion,
    /// An object has the same key twice (`{"at": 1, "at": 2}`), in any document. The
    /// path names the second one.
    DuplicateKey,
    // ---- config ----
    /// A rollout strategy with no steps.
    NoSteps,
    /// A traffic weight outside 1..=100 (percent, in a config) or 0..=10000 (basis
    /// points, for [`assign`](crate::assign)).
    WeightOutOfRange,
    /// A lower bound above its upper bound.
    MinAboveMax,
    /// A duration or window that must be positive is zero.
    ZeroDuration,
    /// A list or count exceeds its limit.
    LimitExceeded,
    /// Two items of a list share a name that must be unique.
    DuplicateName,
    /// A name refers to nothing (a gate's metric, an alias's version).
    UnknownReference,
    /// A number out of its documented range (negative ratio, quantile outside a window, ...).
    InvalidValue,
    /// The config's worst-case state exceeds `limits.state_bytes_max`.
    StateTooLarge,
    /// The config's worst-case work per input exceeds `limits.evaluations_per_input_max`
    /// or `limits.cells_read_per_input_max`.
    TooMuchWork,
    // ---- samples ----
    /// A sample value is NaN or infinite.
    NonFiniteValue,
    /// A sample value beyond ±1e100.
    ValueOutOfRange,
    /// A count is negative.
    NegativeCount,
    /// `events` is greater than `total`.
    EventsExceedTotal,
    /// A count at or above 2^53, which JavaScript cannot represent exactly.
    CountOutOfRange,
    /// A sample carries a value where the metric expects counts, or the reverse.
    MetricKindMismatch,
    /// An input's time is before the policy's current time.
    TimeWentBackwards,
    /// A time is at or above 2^53 ms, which JavaScript cannot represent exactly.
    TimeOutOfRange,
    /// A sample names a version that is not in the registry.
    UnknownArm,
    /// A metric name that the config does not declare.
    UnknownMetric,
    /// A label longer than the configured limit.
    LabelTooLong,
    /// Free text (an `action_failed` reason) longer than `limits.text_len_max`.
    TextTooLong,
    // ---- commands ----
    /// A version id that is not in the registry.
    UnknownVersion,
    /// A version id already registered (bundles are immutable).
    DuplicateVersion,
    /// The command is not valid in the current state.
    InvalidCommand,
    /// An action is waiting for acknowledgement; the command would issue another.
    ActionPending,
    /// An acknowledgement names an action that is not pending.
    UnknownAction,
    /// The circuit breaker is open; automation is stopped until an operator clears it.
    BreakerOpen,
    /// The requested rollback target is failed or not validated.
    InvalidRollbackTarget,
    /// The registry is full and nothing can be evicted.
    RegistryFull,
    /// `record_effect` names an effect id the version already recorded.
    DuplicateEffect,
    /// `record_effect` beyond `limits.effects_max` effects held.
    TooManyEffects,
    // ---- agents ----
    /// An input for [`Agents`](crate::Agents) names an agent the config does not
    /// declare, or names none where it must (a sample, an `ack`, an `action_failed`),
    /// or a sample's `agent` label differs from the input's `agent`.
    UnknownAgent,
    // ---- assignment ----
    /// A salt that is not exactly 16 lowercase hexadecimal digits
    /// ([`Salt::from_hex`](crate::Salt::from_hex)).
    InvalidSalt,
    // ---- snapshots ----
    /// A snapshot that parses but does not describe a state this config can have.
    SnapshotCorrupt,
}

impl ErrorCode {
    /// The snake_case code, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::UnsupportedFormatVersion => "unsupported_format_version",
            Self::DuplicateKey => "duplicate_key",
            Self::NoSteps => "no_steps",
            Self::WeightOutOfRange => "weight_out_of_range",
            Self::MinAboveMax => "min_above_max",
            Self::ZeroDuration => "zero_duration",
            Self::LimitExceeded => "limit_exceeded",
            Self::DuplicateName => "duplicate_name",
            Self::UnknownReference => "unknown_reference",
            Self::InvalidValue => "invalid_value",
            Self::StateTooLarge => "state_too_large",
            Self::TooMuchWork => "too_much_work",
            Self::NonFiniteValue => "non_finite_value",
            Self::ValueOutOfRange => "value_out_of_range",
            Self::NegativeCount => "negative_count",
            Self::EventsExceedTotal => "events_exceed_total",
            Self::CountOutOfRange => "count_out_of_range",
            Self::MetricKindMismatch => "metric_kind_mismatch",
            Self::TimeWentBackwards => "time_went_backwards",
            Self::TimeOutOfRange => "time_out_of_range",
            Self::UnknownArm => "unknown_arm",
            Self::UnknownMetric => "unknown_metric",
            Self::LabelTooLong => "label_too_long",
            Self::TextTooLong => "text_too_long",
            Self::UnknownVersion => "unknown_version",
            Self::DuplicateVersion => "duplicate_version",
            Self::InvalidCommand => "invalid_command",
            Self::ActionPending => "action_pending",
            Self::UnknownAction => "unknown_action",
            Self::BreakerOpen => "breaker_open",
            Self::InvalidRollbackTarget => "invalid_rollback_target",
            Self::RegistryFull => "registry_full",
            Self::DuplicateEffect => "duplicate_effect",
            Self::TooManyEffects => "too_many_effects",
            Self::UnknownAgent => "unknown_agent",
            Self::InvalidSalt => "invalid_salt",
            Self::SnapshotCorrupt => "snapshot_corrupt",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused input, config or snapshot.
///
/// `path` locates the offending field in the canonical JSON document, for example
/// `gates[2].rule.max`, `samples[17].value` or `command.version`; it is empty when the
/// whole document is at fault. It is unambiguous for every key: identifier keys
/// (`[A-Za-z_][A-Za-z0-9_]*`) are written bare after a `.`, any other key in brackets as
/// a JSON string (`versions[0].components["a.b"]`, `["say \"hi\""]`, `[""]`,
/// `["\u001f"]`), indices as `[3]`; [`key_path`](crate::key_path) writes one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}{}", if path.is_empty() { String::new() } else { format!(" (at {path})") })]
#[non_exhaustive]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// Where in the document, as a JSON path; empty for the whole document.
    pub path: String,
    /// A human-readable explanation. Its wording may change between releases.
    pub message: String,
}

impl Error {
    /// An error with a code, a path and a message.
    pub fn new(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            path: path.into(),
            message: message.into(),
        }
    }

    /// The stable snake_case code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Prefixes the path with a parent segment (`samples[3]` + `value` = `samples[3].value`).
    pub(crate) fn within(mut self, parent: impl fmt::Display) -> Self {
        self.path = crate::json::join(&parent.to_string(), &self.path);
        self
    }

    /// Turns a serde_path_to_error failure into an `invalid_json` error with its path,
    /// or a `duplicate_key` error with the repeated key's path.
    pub(crate) fn from_json(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        use crate::json::{duplicate_of, join, printable, split_marked};
        let path = crate::json::tracked_path(err.path(), 0);
        let message = err.into_inner().to_string();
        // A tagged enum deeper down, or a repeated key, reports its path inside the message.
        let (path, message) = match split_marked(&message) {
            Some((inner, message)) => (join(&path, inner), message),
            None => (path, message.as_str()),
        };
        match duplicate_of(message) {
            Some(key) => Self::new(
                ErrorCode::DuplicateKey,
                join(&path, &key),
                printable(message),
            ),
            None => Self::new(ErrorCode::InvalidJson, path, printable(message)),
        }
    }
}

/// Whether to parse without tracking the path first, and track it only for a document
/// that fails (tracking costs as much as the parse: restoring a snapshot is 6× faster
/// this way). Both parses use the same `Deserialize` impls, so they accept the same
/// documents with the same results (the fuzzers check it); the cost is a second copy of
/// every parser, which wasm builds, where size counts more, leave out (75 KB gzipped).
pub(crate) const UNTRACKED_FIRST: bool = cfg!(not(target_arch = "wasm32"));

/// Parses a JSON document into `T`, reporting the failing field's path.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    if UNTRACKED_FIRST && let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(Error::from_json)?;
    de.end()
        .map_err(|e| Error::new(ErrorCode::InvalidJson, "", e.to_string()))?;
    Ok(value)
}

/// Converts a JSON value (from a binding's native objects) into `T`, reporting the
/// failing field's path exactly as [`parse_json`] does for text.
pub(crate) fn parse_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, Error> {
    if UNTRACKED_FIRST && let Ok(t) = T::deserialize(&value) {
        return Ok(t);
    }
    serde_path_to_error::deserialize(value).map_err(Error::from_json)
}

/// Shorthand for an error-returning check.
pub(crate) fn ensure(
    cond: bool,
    code: ErrorCode,
    path: impl Into<String>,
    message: impl FnOnce() -> String,
) -> Result<(), Error> {
    if cond {
        Ok(())
    } else {
        Err(Error::new(code, path, message()))
    }
}

/// Refuses a document (a config, a scenario) whose `format_version` is not
/// [`FORMAT_VERSION`](crate::FORMAT_VERSION), at `format_version`.
pub(crate) fn check_format_version(v: u32) -> Result<(), Error> {
    ensure(
        v == crate::FORMAT_VERSION,
        ErrorCode::UnsupportedFormatVersion,
        "format_version",
        || format!("format_version {v} is not {}", crate::FORMAT_VERSION),
    )
}
