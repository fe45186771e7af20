//! Inputs: metric samples, ticks, acknowledgements and operator commands.
//!
//! Every input carries its own time. In JSON an input is an object tagged by `kind`:
//!
//! ```json
//! {"kind": "observe", "at": 60000, "arm": "v2", "metric": "latency_ms", "value": 212.5}
//! {"kind": "observe", "at": 60000, "arm": "v2", "metric": "errors", "events": 3, "total": 400}
//! {"kind": "tick", "at": 120000}
//! {"kind": "ack", "at": 61000, "action_id": 1}
//! {"kind": "revert_now", "at": 90000, "target": "golden"}
//! {"kind": "record_effect", "at": 95000, "version": "v2",
//!  "effect": {"id": "refund-81", "undo": {"op": "charge", "order": 81}}}
//! ```

use serde::{Deserialize, Serialize};

use crate::config::VersionSpec;
use crate::error::{Error, ErrorCode, parse_json};
use crate::time::Timestamp;

/// One observation of one metric on one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// When it was observed.
    pub at: Timestamp,
    /// The version that produced it.
    pub arm: String,
    /// The metric name.
    pub metric: String,
    /// For value metrics: latency, a quality score, a cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// For count metrics: events (errors) out of `total`. Signed so that a negative
    /// count from any binding is reported as `negative_count`, not a type error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<i64>,
    /// For count metrics: the number of requests `events` is out of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Tenant label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Tenant tier label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Agent label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl Sample {
    /// A value sample.
    pub fn value(at: Timestamp, arm: &str, metric: &str, value: f64) -> Self {
        Self {
            at,
            arm: arm.into(),
            metric: metric.into(),
            value: Some(value),
            events: None,
            total: None,
            tenant: None,
            tier: None,
            agent: None,
        }
    }

    /// Parses one sample (the object of an `observe` input, without `kind`) from JSON.
    ///
    /// # Errors
    /// `invalid_json` or `duplicate_key`, with the field's path.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        parse_json(text)
    }

    /// A count sample: `events` out of `total`.
    pub fn count(at: Timestamp, arm: &str, metric: &str, events: i64, total: i64) -> Self {
        Self {
            value: None,
            events: Some(events),
            total: Some(total),
            ..Self::value(at, arm, metric, 0.0)
        }
    }
}

/// The rollback target an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The stable version (drops the candidate; before promotion only).
    Stable,
    /// The version that was stable before the current one.
    Previous,
    /// The most recently human-validated version.
    Golden,
    /// A version named explicitly.
    Version,
}

/// A side effect a version caused outside the system (a sent notification, a written
/// record, a submitted request), with how to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectSpec {
    /// Unique among the version's recorded effects.
    pub id: String,
    /// The undo descriptor: any JSON object, opaque to the policy, handed back in the
    /// `compensate` decision. At most `limits.text_len_max` bytes as compact JSON.
    pub undo: serde_json::Map<String, serde_json::Value>,
}

/// Everything a policy accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Input {
    /// One sample.
    Observe(Sample),
    /// Several samples, in time order, applied atomically: all or none.
    ObserveBatch {
        /// The samples.
        samples: Vec<Sample>,
    },
    /// Time passes; timers due at or before `at` fire.
    Tick {
        /// Now.
        at: Timestamp,
    },
    /// The caller executed the action `action_id`.
    Ack {
        /// Now.
        at: Timestamp,
        /// The id from the decision.
        action_id: u64,
    },
    /// The caller could not execute the action `action_id`.
    ActionFailed {
        /// Now.
        at: Timestamp,
        /// The id from the decision.
        action_id: u64,
        /// What went wrong, for the escalation.
        #[serde(default)]
        reason: String,
    },
    /// Add a version bundle to the registry.
    RegisterVersion {
        /// Now.
        at: Timestamp,
        /// The bundle.
        version: VersionSpec,
    },
    /// Start rolling out a registered version.
    StartRollout {
        /// Now.
        at: Timestamp,
        /// Its id.
        version: String,
    },
    /// Operator: stop advancing (gates still run and can still roll back).
    Pause {
        /// Now.
        at: Timestamp,
    },
    /// Operator: continue after a pause, approve an approval pause, or retry the
    /// action that failed or timed out.
    Resume {
        /// Now.
        at: Timestamp,
    },
    /// Operator: abort the rollout and send traffic back.
    Abort {
        /// Now.
        at: Timestamp,
    },
    /// Operator: roll back now, skipping gates, cooldown and breaker.
    RevertNow {
        /// Now.
        at: Timestamp,
        /// Where to (default: stable before promotion, previous after).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<TargetKind>,
        /// The version, when `target` is `version`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// Operator: skip the remaining steps and promote the candidate.
    ForcePromote {
        /// Now.
        at: Timestamp,
    },
    /// Operator: mark a version validated by a human; it becomes golden.
    MarkValidated {
        /// Now.
        at: Timestamp,
        /// Its id.
        version: String,
    },
    /// Operator: close an open circuit breaker and resume automation.
    ClearBreaker {
        /// Now.
        at: Timestamp,
    },
    /// The caller: `version` caused a side effect. A rollback away from the version
    /// compensates it (a `compensate` decision, in reverse order of recording); a
    /// promotion that replaces the version commits it (it is forgotten).
    RecordEffect {
        /// Now.
        at: Timestamp,
        /// The version that caused it: the stable version or the rollout's candidate.
        version: String,
        /// The effect.
        effect: EffectSpec,
    },
}

crate::tagged::kind_tagged!(Input);

impl Input {
    /// The input's time (for a batch, its last sample's; `None` for an empty batch).
    pub fn at(&self) -> Option<Timestamp> {
        Some(match self {
            Self::Observe(s) => s.at,
            Self::ObserveBatch { samples } => return samples.last().map(|s| s.at),
            Self::Tick { at }
            | Self::Ack { at, .. }
            | Self::ActionFailed { at, .. }
            | Self::RegisterVersion { at, .. }
            | Self::StartRollout { at, .. }
            | Self::Pause { at }
            | Self::Resume { at }
            | Self::Abort { at }
            | Self::RevertNow { at, .. }
            | Self::ForcePromote { at }
            | Self::MarkValidated { at, .. }
            | Self::ClearBreaker { at }
            | Self::RecordEffect { at, .. } => *at,
        })
    }

    /// Parses one input from canonical JSON.
    ///
    /// # Errors
    /// `invalid_json` with the failing field's path.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        parse_json(text)
    }

    /// Converts one input from a JSON value (a binding's native object).
    ///
    /// # Errors
    /// `invalid_json` with the failing field's path.
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        crate::error::parse_value(value)
    }
}

/// 2^63 as a double: the first double above every `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A count given as a JavaScript number: an integer, or the error for it at `path`.
/// Fractions, infinities and NaN are `invalid_json`; integers beyond ±2^63 are
/// `count_out_of_range`. Sign and magnitude below that are judged with the sample
/// (`negative_count`, `count_out_of_range`), as for an `i64`.
///
/// # Errors
/// As above.
pub fn count_from_number(x: f64, path: &str) -> Result<i64, Error> {
    let fraction = x.abs() < (1u64 << 52) as f64 && !crate::time::integer(x.abs());
    if !x.is_finite() || fraction {
        return Err(Error::new(
            ErrorCode::InvalidJson,
            path,
            format!("a count must be an integer, not {x}"),
        ));
    }
    if x.abs() >= TWO_POW_63 {
        return Err(Error::new(
            ErrorCode::CountOutOfRange,
            path,
            format!("count {x} is beyond 2^53"),
        ));
    }
    Ok(x as i64)
}

/// A count in a column of samples: `i64`, or `f64` as JavaScript numbers carry it.
pub(crate) trait Count: Copy {
    /// Branch-free (it vectorizes): `events` and `total` are integers with
    /// `0 <= events <= total <= 2^53 - 1`. It may refuse a good pair (then the row is
    /// checked on its own), never accept a bad one.
    fn pair_fine(events: Self, total: Self) -> bool;
    /// This count as an integer, or why it is not one.
    fn exact(self, path: &str) -> Result<i64, Error>;
    /// This count, once it is known to be [`Count::exact`] and not negative.
    fn get(self) -> u64;
}

impl Count for i64 {
    #[inline]
    fn pair_fine(events: Self, total: Self) -> bool {
        (events >= 0) & (events <= total) & (total <= crate::time::TIME_MAX as i64)
    }

    fn exact(self, _path: &str) -> Result<i64, Error> {
        Ok(self)
    }

    fn get(self) -> u64 {
        self as u64
    }
}

impl Count for f64 {
    #[inline]
    fn pair_fine(events: Self, total: Self) -> bool {
        use crate::time::integer;
        integer(events)
            & integer(total)
            & (events >= 0.0)
            & (events <= total)
            & (total <= crate::time::TIME_MAX as f64)
    }

    fn exact(self, path: &str) -> Result<i64, Error> {
        count_from_number(self, path)
    }

    fn get(self) -> u64 {
        self as u64
    }
}
