//! The safety machines: each owns its piece of the state and says when it next needs
//! the clock, and the policy keeps one table of timers over them (quinn-proto's
//! `TimerTable` is the model).
//!
//! - [`ack`]: the action waiting for its acknowledgement (its ack deadline), and the
//!   halt that a failed or timed-out action leaves;
//! - [`cooldown`]: no automated rollback for a while after one;
//! - [`breaker`]: too many automated rollbacks in a window open it (no timer: an
//!   operator closes it);
//! - [`approval`]: a paused rollout, and the approval's timeout.
//!
//! The rollout's own timers (kickoff, stage entry, stage end) and the analysis timer
//! are in the same [`Timer`] table. `Policy::deadline(timer)` says when a timer is due
//! *and* whether the policy would act on it then; `Policy::next_deadline` is the
//! minimum over the table, and firing walks the same table in [`Timer::ALL`]'s order,
//! so the two cannot disagree.

pub(crate) mod ack;
pub(crate) mod approval;
pub(crate) mod breaker;
pub(crate) mod cooldown;

/// Every timer of a policy, in the order timers due at the same time fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The config's candidate starts rolling out at the first input.
    Kickoff,
    /// The pending action was not acknowledged in time: halt.
    AckDeadline,
    /// The cooldown after an automated rollback ends.
    Cooldown,
    /// Gates are evaluated (only while no action is pending).
    Analysis,
    /// A gradual rollback's step has baked (while the rollout runs).
    GradualBake,
    /// The current stage's bake is over (while the rollout runs: no pending action,
    /// no halt).
    StageEnd,
    /// An approval was not given in time (while the rollout runs).
    ApprovalTimeout,
    /// The next stage is entered (while the rollout runs).
    StageEntry,
}

impl Timer {
    /// The table, in firing order: the ack deadline and cooldown before an analysis
    /// at the same time, the analysis (which may roll back) before a gradual
    /// rollback's step is judged on it, and both before the rollout moves on.
    pub(crate) const ALL: [Self; 8] = [
        Self::Kickoff,
        Self::AckDeadline,
        Self::Cooldown,
        Self::Analysis,
        Self::GradualBake,
        Self::StageEnd,
        Self::ApprovalTimeout,
        Self::StageEntry,
    ];
}
