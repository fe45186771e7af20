//! A paused rollout: paused by an operator (the stage's remaining bake kept), or
//! waiting at an approval step until approved or timed out.

use serde::{Deserialize, Serialize};

use crate::output::PauseKind;
use crate::time::Timestamp;

/// A pause of the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pause {
    pub(crate) kind: PauseKind,
    pub(crate) since: Timestamp,
    /// Approval timeout, if still armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deadline: Option<Timestamp>,
    /// Bake time left when an operator paused a running stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remaining_ms: Option<u64>,
}

impl Pause {
    /// When an approval times out, if one is armed.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }
}
