//! Scenarios and replay: a config, a start time and a list of inputs, replayed into a
//! trace. The CLI, the conformance vectors and every binding share this one function,
//! so a recorded incident replays identically everywhere.

use serde::{Deserialize, Serialize};

use crate::config::PolicyConfig;
use crate::error::{Error, parse_json};
use crate::input::Input;
use crate::output::Step;
use crate::policy::Policy;
use crate::time::Timestamp;

/// A replayable scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Must equal [`FORMAT_VERSION`](crate::FORMAT_VERSION).
    pub format_version: u32,
    /// Short name.
    #[serde(default)]
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// The policy.
    pub config: PolicyConfig,
    /// The policy's creation time.
    #[serde(default)]
    pub start: Timestamp,
    /// The inputs, in order.
    pub inputs: Vec<Input>,
}

impl Scenario {
    /// Parses a scenario.
    ///
    /// # Errors
    /// `invalid_json` with the path, or `unsupported_format_version`.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        Self::checked(parse_json(text)?)
    }

    /// Converts a scenario from a JSON value (a binding's native object).
    ///
    /// # Errors
    /// As [`Scenario::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        Self::checked(crate::error::parse_value(value)?)
    }

    fn checked(s: Self) -> Result<Self, Error> {
        crate::error::check_format_version(s.format_version)?;
        Ok(s)
    }
}

/// One line of a trace: an input and what it produced, or why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEntry {
    /// Index of the input in the scenario.
    pub index: u32,
    /// The input.
    pub input: Input,
    /// What it produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// Why it was refused (the policy is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// Replays a scenario, calling `each` with every trace entry as it is produced (for
/// streaming output and progress), and returns the policy at the end.
///
/// Refused inputs are part of the trace, not a failure of the replay.
///
/// # Errors
/// A config error, or `time_out_of_range` for `start`.
pub fn replay_with(
    config: PolicyConfig,
    start: Timestamp,
    inputs: impl IntoIterator<Item = Input>,
    mut each: impl FnMut(TraceEntry),
) -> Result<Policy, Error> {
    let mut policy = Policy::new(config, start)?;
    for (i, input) in inputs.into_iter().enumerate() {
        let (step, error) = match policy.handle(&input) {
            Ok(step) => (Some(step), None),
            Err(e) => (None, Some(e)),
        };
        each(TraceEntry {
            index: i as u32,
            input,
            step,
            error,
        });
    }
    Ok(policy)
}

/// Replays a scenario into its whole trace.
///
/// # Errors
/// As [`replay_with`].
pub fn replay(scenario: &Scenario) -> Result<Vec<TraceEntry>, Error> {
    let mut trace = Vec::with_capacity(scenario.inputs.len());
    replay_with(
        scenario.config.clone(),
        scenario.start,
        scenario.inputs.iter().cloned(),
        |e| trace.push(e),
    )?;
    Ok(trace)
}
