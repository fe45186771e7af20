//! Traffic assignment inside the policy: [`Policy::assign`] and
//! [`Policy::assign_session`] apply `rollguard-assign-v1` ([`crate::assign`]) with the
//! rollout's salt and the weight the policy routes. `docs/assignment.md` specifies it.
//!
//! - The salt is `salt_for(config name, candidate version, rollout start time)`: fixed
//!   for a rollout (and kept in its snapshot), new for the next rollout.
//! - The weight is the acknowledged one, lowered at once by a pending decision that
//!   lowers it: a pending `set_weight` to less, or a pending rollback (everyone on the
//!   rollback's target; also while a rollback that failed or timed out waits for
//!   `resume`). A raise takes effect when the router acknowledges it.
//! - A session keeps the weight in effect when it started, for at most
//!   `assignment.pin_max_ms`, from the rollout's acknowledged weight changes (at most one
//!   per weight stage, dropped with the rollout). A pin only ever holds a session back on
//!   the stable version: its weight is the lower of the session's and the current one.
//! - [`Policy::routing_table`] exports all of the above (mode, versions, salt, routed
//!   weight, history, `pin_max_ms`) so that a router answers every key and session
//!   itself ([`RoutingTable::assign`], [`RoutingTable::assign_session`]).
//! - The graduated-response ladder (`scopes.ladder`) acts on tenants, not keys: the
//!   table says whether onboarding to the candidate is paused and which scopes are
//!   routed back, and a router applies both before it assigns a key (see
//!   [`RoutingTable::routed_back`]); the hash and the answers for a key are unchanged.

use serde::{Deserialize, Serialize};

use super::{Policy, Rollout};
use crate::assign::{Arm, Salt, bucket, salt_for};
use crate::error::{Error, ErrorCode};
use crate::output::Action;
use crate::time::{Timestamp, check_time};

/// An acknowledged change of the candidate's weight during a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightChange {
    /// When its acknowledgement arrived.
    pub at: Timestamp,
    /// The weight from then on, in basis points.
    pub weight_bp: u32,
}

/// Why a key is assigned where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssignReason {
    /// No rollout: every key is on the stable version.
    NoRollout,
    /// A rollout splits traffic and the key's bucket is at or above the weight.
    Stable,
    /// A rollout splits traffic and the key's bucket is below the weight.
    Candidate,
    /// A rollback is decided (waiting for its acknowledgement, or failed or timed out
    /// and waiting for `resume` to issue it again): every key, pinned or not, is on its
    /// target.
    RolledBack,
    /// The candidate was promoted and bakes as the stable version: every key is on it.
    Promoted,
}

impl AssignReason {
    /// The reason's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRollout => "no_rollout",
            Self::Stable => "stable",
            Self::Candidate => "candidate",
            Self::RolledBack => "rolled_back",
            Self::Promoted => "promoted",
        }
    }
}

/// Where a routing key goes: [`Policy::assign`], [`Policy::assign_session`].
///
/// `arm` is always `assign(salt, key, weight_bp)` of [`crate::assign`] (with weight 0
/// when there is no salt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Assignment {
    /// The arm.
    pub arm: Arm,
    /// The version id to serve.
    pub version: String,
    /// Why.
    pub reason: AssignReason,
    /// The candidate weight the answer used, in basis points: the session's pinned one,
    /// or the one the policy routes now.
    pub weight_bp: u32,
    /// The rollout's salt (none without a rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
    /// Whether a session pin decided the weight (the session is within
    /// `assignment.pin_max_ms` of its start and the rollout still splits traffic).
    pub pinned: bool,
}

/// What a rollout does with traffic now: [`RoutingTable::mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoutingMode {
    /// No rollout: every key is on `stable` (reason `no_rollout`).
    NoRollout,
    /// A rollout splits traffic: a key is on `candidate` iff its bucket is below the
    /// weight (reasons `candidate` and `stable`), and sessions are pinned.
    Split,
    /// A rollback is decided: every key, pinned or not, is on `stable`, the rollback's
    /// target (reason `rolled_back`).
    RolledBack,
    /// The candidate was promoted and bakes as the stable version: every key is on
    /// `stable` (reason `promoted`).
    Promoted,
}

impl RoutingMode {
    /// The mode's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRollout => "no_rollout",
            Self::Split => "split",
            Self::RolledBack => "rolled_back",
            Self::Promoted => "promoted",
        }
    }

    /// The reason of every answer in a mode that does not split (`split` answers
    /// `stable` or `candidate` by key).
    fn reason(self) -> AssignReason {
        match self {
            Self::NoRollout => AssignReason::NoRollout,
            Self::RolledBack => AssignReason::RolledBack,
            Self::Promoted => AssignReason::Promoted,
            Self::Split => AssignReason::Stable,
        }
    }
}

/// Everything a router needs to reproduce [`Policy::assign`] and
/// [`Policy::assign_session`] on its own: [`Policy::routing_table`].
///
/// Its JSON (snake_case, like every rollguard document) is what the Python binding
/// returns as a dict and the JavaScript one as an object; `docs/assignment.md` specifies
/// how to assign from it, and [`RoutingTable::assign`] and
/// [`RoutingTable::assign_session`] do it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RoutingTable {
    /// What the rollout does with traffic.
    pub mode: RoutingMode,
    /// The version of every key that is not on the candidate: the stable version, or
    /// while a rollback is decided, its target.
    pub stable: String,
    /// The rollout's candidate (none without a rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// The rollout's salt (none without a rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<Salt>,
    /// The candidate's routed weight in basis points (0 unless the mode is `split`).
    pub weight_bp: u32,
    /// The rollout's acknowledged weight changes, in time order, for session pins.
    #[serde(default)]
    pub weights: Vec<WeightChange>,
    /// `assignment.pin_max_ms`: how long a session keeps the weight of its start.
    pub pin_max_ms: u64,
    /// The ladder's `pause_onboarding` rung holds (mode `split` only): a tenant the
    /// router has not sent to the candidate yet goes to `stable` whatever its key's
    /// bucket; tenants already on the candidate are assigned as usual. Absent from the
    /// JSON when false.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub onboarding_paused: bool,
    /// The scopes the ladder's `route_back` rung sent back, in key order (mode `split`
    /// only). A request whose labels match one of them (every label the key names has
    /// the key's value) goes to `stable`, before and whatever [`RoutingTable::assign`]
    /// says for its routing key. Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routed_back: Vec<crate::scope::ScopeKey>,
}

impl RoutingTable {
    /// The acknowledged weight at time `t`, in basis points: the last change at or
    /// before `t`, or 0 before the first.
    pub fn weight_at(&self, t: Timestamp) -> u32 {
        self.weights
            .iter()
            .take_while(|w| w.at <= t)
            .last()
            .map_or(0, |w| w.weight_bp)
    }

    /// [`Policy::assign`] from the table: the same answer for every key, as long as the
    /// policy took no input since the table was taken.
    pub fn assign(&self, key: impl AsRef<[u8]>) -> Assignment {
        self.answer(key.as_ref(), None)
    }

    /// [`Policy::assign_session`] from the table.
    ///
    /// # Errors
    /// As [`Policy::assign_session`].
    pub fn assign_session(
        &self,
        key: impl AsRef<[u8]>,
        session_started_at: Timestamp,
        now: Timestamp,
    ) -> Result<Assignment, Error> {
        let session = session_pin(session_started_at, now, self.pin_max_ms)?;
        Ok(self.answer(key.as_ref(), session))
    }

    fn answer(&self, key: &[u8], session: Option<Timestamp>) -> Assignment {
        let stable = |reason| Assignment {
            arm: Arm::Stable,
            version: self.stable.clone(),
            reason,
            weight_bp: 0,
            salt: self.salt,
            pinned: false,
        };
        let (RoutingMode::Split, Some(candidate)) = (self.mode, &self.candidate) else {
            return stable(self.mode.reason());
        };
        let weight_bp = match session {
            Some(t) => self.weight_bp.min(self.weight_at(t)),
            None => self.weight_bp,
        };
        let (arm, version, reason) = if bucket(self.salt.unwrap_or_default(), key) < weight_bp {
            (Arm::Candidate, candidate.clone(), AssignReason::Candidate)
        } else {
            (Arm::Stable, self.stable.clone(), AssignReason::Stable)
        };
        Assignment {
            arm,
            version,
            reason,
            weight_bp,
            salt: self.salt,
            pinned: session.is_some(),
        }
    }
}

/// Checks a session's times; the session's start when its pin holds
/// (`now − start < pin_max_ms`), `None` when it has expired or pinning is off.
fn session_pin(
    session_started_at: Timestamp,
    now: Timestamp,
    pin_max_ms: u64,
) -> Result<Option<Timestamp>, Error> {
    check_time(session_started_at, "session_started_at")?;
    check_time(now, "now")?;
    if session_started_at > now {
        return Err(Error::new(
            ErrorCode::InvalidValue,
            "session_started_at",
            format!("the session starts at {session_started_at}, after now ({now})"),
        ));
    }
    Ok((now - session_started_at < pin_max_ms).then_some(session_started_at))
}

impl Rollout {
    /// Appends the acknowledged weight at `now` to the history, unless it is unchanged.
    pub(super) fn record_weight(&mut self, now: Timestamp) {
        let bp = self.weight.saturating_mul(100);
        if self.weights.last().map_or(0, |w| w.weight_bp) != bp {
            self.weights.push(WeightChange {
                at: now,
                weight_bp: bp,
            });
        }
    }

    /// The acknowledged weight at time `t`, in basis points: 0 before the rollout started
    /// and before its first acknowledged weight.
    fn weight_at(&self, t: Timestamp) -> u32 {
        if t < self.started_at {
            return 0;
        }
        self.weights
            .iter()
            .take_while(|w| w.at <= t)
            .last()
            .map_or(0, |w| w.weight_bp)
    }

    /// Fills what a snapshot written before assignment lacks: the salt, and a history
    /// holding the current weight from the rollout's start.
    pub(super) fn fill_assignment(&mut self, policy_name: &str) {
        if self.salt.is_none() {
            self.salt = Some(salt_for(policy_name, &self.version, self.started_at));
        }
        if self.weights.is_empty() && self.weight > 0 && self.promoted_at.is_none() {
            self.weights.push(WeightChange {
                at: self.started_at,
                weight_bp: self.weight.saturating_mul(100),
            });
        }
    }
}

impl Policy {
    /// The arm and version a routing key goes to now, with the rollout's salt and the
    /// weight the policy routes (see the module docs and `docs/assignment.md`).
    ///
    /// A query: it changes nothing and fires no timer (it answers from the state as of
    /// the last input). A key is any bytes; a string key is its UTF-8 bytes.
    pub fn assign(&self, key: impl AsRef<[u8]>) -> Assignment {
        self.assignment(key.as_ref(), None)
    }

    /// As [`Policy::assign`], for a session that started at `session_started_at`,
    /// asked at `now`: while `now − session_started_at < assignment.pin_max_ms`, the
    /// weight is the lower of the one acknowledged when the session started and the one
    /// routed now, so that a raise does not move the session to the candidate. A
    /// rollback overrides every pin; a promotion ends them.
    ///
    /// # Errors
    /// `time_out_of_range` at `session_started_at` or `now` from 2^53 ms;
    /// `invalid_value` at `session_started_at` when it is after `now`.
    pub fn assign_session(
        &self,
        key: impl AsRef<[u8]>,
        session_started_at: Timestamp,
        now: Timestamp,
    ) -> Result<Assignment, Error> {
        let pin = self.config.assignment.pin_max_ms;
        let session = session_pin(session_started_at, now, pin)?;
        Ok(self.assignment(key.as_ref(), session))
    }

    /// [`Policy::assign`], or [`Policy::assign_session`] when the session's start is
    /// given (asked at `now`, by default the policy's time): the one call every binding
    /// and the vector runners make, so that the choice lives here.
    ///
    /// # Errors
    /// As [`Policy::assign_session`].
    pub fn assign_maybe_pinned(
        &self,
        key: impl AsRef<[u8]>,
        session_started_at: Option<Timestamp>,
        now: Option<Timestamp>,
    ) -> Result<Assignment, Error> {
        match session_started_at {
            None => Ok(self.assign(key)),
            Some(started) => self.assign_session(key, started, now.unwrap_or(self.now())),
        }
    }

    /// The table a router needs to answer [`Policy::assign`] and
    /// [`Policy::assign_session`] itself, for any key and time, with
    /// [`RoutingTable::assign`] and [`RoutingTable::assign_session`] (or a
    /// reimplementation of them from `docs/assignment.md`): the answers are the
    /// policy's, as long as the policy takes no input. Take a new table after every step
    /// that carries a routing decision or an acknowledgement.
    pub fn routing_table(&self) -> RoutingTable {
        let (mode, stable, weight_bp) = self.routing();
        let r = self.state.rollout.as_ref();
        RoutingTable {
            mode,
            stable: stable.to_string(),
            candidate: r.map(|r| r.version.clone()),
            salt: r.and_then(|r| r.salt),
            weight_bp,
            weights: r.map(|r| r.weights.clone()).unwrap_or_default(),
            pin_max_ms: self.config.assignment.pin_max_ms,
            onboarding_paused: mode == RoutingMode::Split
                && r.is_some_and(|r| r.ladder.onboarding_paused),
            routed_back: match mode {
                RoutingMode::Split => self.routed_back(),
                _ => Vec::new(),
            },
        }
    }

    /// What the split is now: its mode, the version every key off the candidate is
    /// served, and the weight routed (0 unless the mode is `split`).
    fn routing(&self) -> (RoutingMode, &str, u32) {
        let s = &self.state;
        // A rollback decided and not acknowledged, or one that failed or timed out and
        // that `resume` would issue again: the decision stands.
        let retry = s.halt.as_ref().and_then(|h| h.retry.as_ref());
        for p in s.pending.iter().chain(retry) {
            if let Action::Rollback { to, .. } = &p.action {
                return (RoutingMode::RolledBack, to, 0);
            }
        }
        let stable = s.registry.aliases.stable.as_str();
        let Some(r) = s.rollout.as_ref() else {
            return (RoutingMode::NoRollout, stable, 0);
        };
        if r.promoted_at.is_some() {
            return (RoutingMode::Promoted, stable, 0);
        }
        let mut weight_bp = r.weight.saturating_mul(100);
        if let Some(Action::SetWeight { weight, .. }) = s.pending.as_ref().map(|p| &p.action) {
            weight_bp = weight_bp.min(weight.saturating_mul(100));
        }
        (RoutingMode::Split, stable, weight_bp)
    }

    /// The assignment of `key`, pinned to the weight at `session` when given.
    fn assignment(&self, key: &[u8], session: Option<Timestamp>) -> Assignment {
        let rollout = self.state.rollout.as_ref();
        let salt = rollout.and_then(|r| r.salt);
        let (mode, stable, mut weight_bp) = self.routing();
        let (RoutingMode::Split, Some(r)) = (mode, rollout) else {
            return Assignment {
                arm: Arm::Stable,
                version: stable.to_string(),
                reason: mode.reason(),
                weight_bp: 0,
                salt,
                pinned: false,
            };
        };
        if let Some(t) = session {
            weight_bp = weight_bp.min(r.weight_at(t));
        }
        let salt_value = salt.unwrap_or_default();
        let (arm, version, reason) = if bucket(salt_value, key) < weight_bp {
            (Arm::Candidate, r.version.as_str(), AssignReason::Candidate)
        } else {
            (Arm::Stable, stable, AssignReason::Stable)
        };
        Assignment {
            arm,
            version: version.to_string(),
            reason,
            weight_bp,
            salt,
            pinned: session.is_some(),
        }
    }
}
