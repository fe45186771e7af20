//! The reversion protocol's waiting side: every traffic action has an id and a
//! deadline; until it is acknowledged nothing else moves, and an action that fails or
//! times out halts automation until an operator resumes (which issues it again).

use serde::{Deserialize, Serialize};

use crate::output::{Action, Reason};
use crate::registry::Stage as Lifecycle;
use crate::time::Timestamp;

/// An action waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pending {
    pub(crate) id: u64,
    #[serde(deserialize_with = "crate::tagged::strict")]
    pub(crate) action: Action,
    pub(crate) deadline: Timestamp,
    /// For rollbacks: the lifecycle stage the rolled-back version gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mark: Option<Lifecycle>,
}

/// Automation halted until an operator acts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Halt {
    pub(crate) reason: Reason,
    /// The action that failed or timed out; `resume` issues it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry: Option<Pending>,
}

impl Pending {
    /// When the action times out if not acknowledged.
    pub(crate) fn deadline(&self) -> Timestamp {
        self.deadline
    }
}
