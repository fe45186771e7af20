//! Outputs: the [`Step`] each input returns, its [`Decision`]s and [`Event`]s.
//!
//! Decisions are imperatives for the caller; the ones with an `action_id` change
//! routing and must be acknowledged (`ack`) or reported failed (`action_failed`).
//! Events are past-tense facts for logs, dashboards and audits.

use serde::{Deserialize, Serialize};

use crate::config::{OnTimeout, Phase, Stat};
use crate::input::TargetKind;
use crate::registry::{Aliases, Validator};
use crate::time::Timestamp;

/// What one input produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[must_use = "a step may carry decisions the caller must act on"]
pub struct Step {
    /// The input's time.
    pub at: Timestamp,
    /// What the caller should do, in order.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// What happened, in order.
    #[serde(default)]
    pub events: Vec<Event>,
}

impl Step {
    /// True when the step carries neither decisions nor events.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty() && self.events.is_empty()
    }

    /// The actions in this step the caller must execute and acknowledge.
    pub fn actions(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.action_id.is_some())
    }
}

/// Why a decision was taken. Stable snake_case codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// A rollout began.
    RolloutStarted,
    /// The previous stage passed its gates and bake time.
    StagePassed,
    /// An approval pause was approved by an operator.
    ApprovalGranted,
    /// An approval pause timed out and the config says to carry on.
    ApprovalTimeoutContinue,
    /// The strategy has an approval step here.
    ApprovalStep,
    /// A stage ended with a gate that could not reach a verdict.
    Inconclusive,
    /// A gate tripped.
    GateFailed,
    /// A stage ended while a gate is failing but not yet tripped.
    GateFailing,
    /// An approval pause timed out and the config says to roll back.
    ApprovalTimeout,
    /// An approval pause timed out and the config says to hold.
    ApprovalTimeoutHold,
    /// The operator asked to revert.
    OperatorRevert,
    /// The operator aborted the rollout.
    OperatorAbort,
    /// The operator forced promotion.
    OperatorForcePromote,
    /// The operator asked to retry a failed or timed-out action.
    OperatorRetry,
    /// The breaker tripped: rolled back to golden, automation stopped.
    BreakerTripped,
    /// The breaker is open: automation is stopped.
    BreakerOpen,
    /// An automated rollback is due but the cooldown forbids it.
    CooldownActive,
    /// Automation is halted after a failed or unacknowledged action.
    Halted,
    /// An action was not acknowledged by its deadline.
    AckTimeout,
    /// The caller reported an action failed.
    ActionFailed,
    /// A rollback is due but no validated, non-failed version is available.
    NoRollbackTarget,
    /// An automated rollback was issued (escalations tell a human about it).
    AutomatedRollback,
    /// A rollback took traffic away from the version that caused a side effect.
    Compensation,
    /// Gates tripped in some scopes, below the impact rule (`scopes.impact`): the
    /// rollout holds at its step and a human is told which scopes.
    ScopedFailure,
    /// Every tripped gate judges the candidate alone and finds the stable version
    /// degraded too (`environment.check`): the policy holds instead of rolling back.
    EnvironmentSuspected,
    /// A rung of the graduated-response ladder (`scopes.ladder`) for gates tripped in
    /// scopes: its action (`pause_onboarding`, `route_back`, `freeze`), the freeze's
    /// escalation, the hold while a rung already taken still applies, and the approval
    /// pause instead of promoting a candidate that scopes were routed back from. The
    /// detail names the rung and the scopes.
    GraduatedResponse,
    /// Gates failed a live canary and `safety.gradual_rollback` is on: the weight is
    /// stepped down (each step a `set_weight`), or stopped at a step with gates
    /// passing (a pause for approval); escalations tell a human it began.
    GradualRollback,
}

/// A verdict of one gate evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within bounds.
    Pass,
    /// Out of bounds.
    Fail,
    /// Not enough evidence.
    Inconclusive,
}

/// The evidence of one gate evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// Gate name.
    pub gate: String,
    /// Metric name.
    pub metric: String,
    /// Statistic.
    pub stat: Stat,
    /// Verdict of this evaluation.
    pub verdict: Verdict,
    /// The version judged.
    pub arm: String,
    /// The scope judged, for a scope's report (config `scopes`); absent overall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::scope::ScopeKey>,
    /// What this gate's kind judged on; its fields sit in the report itself.
    #[serde(flatten)]
    pub evidence: Evidence,
    /// Samples (or `total`) of the judged arm behind the verdict.
    pub samples: u64,
    /// Samples (or `total`) of the baseline arm, for gates that compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_samples: Option<u64>,
    /// Start of the window read.
    pub window_start: Timestamp,
    /// End of the window read (the evaluation time).
    pub window_end: Timestamp,
    /// Failing evaluations in a row.
    pub consecutive_failures: u32,
    /// Whether the gate is tripped after this evaluation.
    pub tripped: bool,
    /// Dry-run gates are reported, never acted on.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub dry_run: bool,
    /// With `scopes` in the config, the level an anytime-valid gate was judged at:
    /// its share of the gate's `alpha` (see [`ScopesConfig`](crate::ScopesConfig)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
}

/// The change-detection chart behind an [`Evidence::Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Chart {
    /// Page's cumulative sum (`cusum`).
    Cusum,
    /// The exponentially weighted moving average (`ewma`).
    Ewma,
}

/// The per-kind part of a [`GateReport`]: what the gate's detector judged on. Its
/// fields are written into the report object itself (each kind has its own names, so
/// the kind is plain from them and from the gate's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Evidence {
    /// `sequential_quantile`: the two arms' quantiles with their confidence sequences,
    /// and the anytime-valid test between them. (First: untagged reports are matched
    /// in order, and its fields include those of `Sequential`; the conformance runner
    /// checks that every report in the vectors parses back as itself.)
    Quantile {
        /// The quantile tested (0.99 for `p99`).
        quantile: f64,
        /// The judged arm's quantile since the phase began (from its histogram).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judged_quantile: Option<f64>,
        /// Its confidence sequence's lower bound, at alpha/2 (absent below the
        /// histogram's range).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judged_lower: Option<f64>,
        /// Its upper bound, at alpha/2 (absent above the histogram's range).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judged_upper: Option<f64>,
        /// The baseline arm's quantile since the phase began.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline_quantile: Option<f64>,
        /// Its confidence sequence's lower bound, at alpha/2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline_lower: Option<f64>,
        /// Its upper bound, at alpha/2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline_upper: Option<f64>,
        /// The judged quantile over the baseline's (relative margin) or minus it
        /// (absolute margin).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect: Option<f64>,
        /// The effect's lower bound, from the judged lower and the baseline upper
        /// bound (at level alpha; the one the gate fails on when higher is worse).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect_lower: Option<f64>,
        /// The effect's upper bound, from the judged upper and the baseline lower
        /// bound (the one the gate fails on when lower is worse).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect_upper: Option<f64>,
        /// ln of the e-value against the null (no regression beyond the margin) now.
        log_e_value: f64,
        /// The always-valid p-value: 1 / the largest e-value so far, at most 1.
        p_value: f64,
        /// Samples of the judged arm counted since the phase began.
        used: u64,
        /// Samples of the baseline arm counted since the phase began.
        baseline_used: u64,
    },
    /// The sequential kinds (`error_attribution`, `sequential_mean`): an anytime-valid
    /// test's state.
    Sequential {
        /// The effect estimate: for `error_attribution` the ratio of the judged arm's
        /// per-request error rate to the baseline's (absent before any baseline error);
        /// for `sequential_mean` the difference of means, positive when worse; for
        /// `rate_slo` the observed error rate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect: Option<f64>,
        /// The confidence sequence's lower bound of the effect at the gate's alpha
        /// (absent when it is below every value searched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect_lower: Option<f64>,
        /// The confidence sequence's upper bound, for kinds with a two-sided one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect_upper: Option<f64>,
        /// ln of the e-value against the null (no effect beyond the margin) now.
        log_e_value: f64,
        /// The always-valid p-value: 1 / the largest e-value so far, at most 1. The
        /// gate fails once it is at most alpha.
        p_value: f64,
        /// Observations the test has used on the judged arm (errors, for
        /// `error_attribution`; samples, for `sequential_mean`; requests, for
        /// `rate_slo`).
        used: u64,
        /// Observations it has used on the baseline arm (kinds that compare two arms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline_used: Option<u64>,
        /// `sequential_mean` with `autocorrelation: adjust`: how many times wider the
        /// variance of the difference of means is for the arms' serial correlation
        /// than for independent samples (1 when none shows).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        variance_inflation: Option<f64>,
    },
    /// `cusum` and `ewma`: a change detector against the version's own reference.
    Change {
        /// Which chart: `cusum` (the statistic is the cumulative sum) or `ewma` (the
        /// weighted average).
        chart: Chart,
        /// The chart's statistic, in reference standard deviations (worse positive).
        statistic: f64,
        /// The threshold it alarms past.
        threshold: f64,
        /// The reference mean, once known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_mean: Option<f64>,
        /// The reference standard deviation, once known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_sd: Option<f64>,
        /// Samples judged against the reference.
        used: u64,
    },
    /// `mann_whitney`: Kayenta's classification of the interval's samples.
    Rank {
        /// Kayenta's classification (`no_data` when an arm had too few samples).
        classification: Classification,
        /// U of the judged arm: pairs of samples where it is higher, plus half the
        /// ties (`scipy.stats.mannwhitneyu(judged, baseline).statistic`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        u_statistic: Option<f64>,
        /// The two-sided p-value, normal approximation with tie and continuity
        /// corrections (SciPy's `method="asymptotic"`). Not anytime-valid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p_value: Option<f64>,
        /// The Hodges-Lehmann estimate of the shift judged − baseline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect: Option<f64>,
        /// The lower end of Kayenta's confidence interval of the shift.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect_lower: Option<f64>,
        /// Its upper end.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effect_upper: Option<f64>,
        /// mean(judged) / mean(baseline), 1 when the baseline's mean is 0 (the effect
        /// size `allowed_increase` and `allowed_decrease` apply to); absent when it is
        /// not finite (a baseline mean so near 0 that the ratio overflows).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mean_ratio: Option<f64>,
        /// The common-language effect size U / (n·m): the chance that a judged sample
        /// is above a baseline one, ties counting half (the effect size the
        /// allowances apply to when `effect_size` is `cles`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cles: Option<f64>,
        /// Samples of the judged arm compared (those kept of the interval, less the
        /// outliers removed).
        used: u64,
        /// Samples of the baseline arm compared.
        baseline_used: u64,
        /// Outliers removed from the judged arm's samples (`outliers.strategy`
        /// `remove`).
        #[serde(default, skip_serializing_if = "is_zero")]
        outliers_removed: u64,
        /// Outliers removed from the baseline arm's samples.
        #[serde(default, skip_serializing_if = "is_zero")]
        baseline_outliers_removed: u64,
    },
    /// `kayenta_score`: Kayenta's composite judgement of the interval over its member
    /// `mann_whitney` gates.
    Score {
        /// 0..=100, rounded to two decimals; absent when no scored member was
        /// evaluated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<f64>,
        /// Fail at or below this score (each interim judgement must be above it).
        marginal: f64,
        /// Pass at or above it (the judgement at a stage's end must be).
        pass: f64,
        /// Why the score is what it is.
        reason: ScoreReason,
        /// The critical member that failed, for `reason` `critical`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        critical_metric: Option<String>,
        /// Each group's counts, score and weight, by name.
        groups: Vec<ScoreGroup>,
        /// Each evaluated member's Kayenta label, in config order.
        metrics: Vec<ScoreMetric>,
    },
    /// `drift`: how far the judged arm's distribution moved from the baseline's.
    Drift {
        /// `psi` or `js`.
        measure: crate::config::Divergence,
        /// The divergence, once both arms have a sample.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        divergence: Option<f64>,
        /// The gate fails above it.
        threshold: f64,
        /// Samples binned on the judged arm since the phase began.
        used: u64,
        /// Samples binned on the baseline arm.
        baseline_used: u64,
        /// The bin that contributes most to the divergence: a category id, or for
        /// equal bins 0 below `min`, 1..=count inside, count + 1 above (the last
        /// category id + 1 is "other").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bin: Option<u32>,
        /// The judged arm's share of that bin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        share: Option<f64>,
        /// The baseline's share of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline_share: Option<f64>,
    },
    /// `threshold` and `vs_baseline`: a window statistic against bounds.
    Bounds {
        /// The statistic on the judged arm.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observed: Option<f64>,
        /// The statistic on the baseline arm (`vs_baseline` rules).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline: Option<f64>,
        /// The effective lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// The effective upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
}

impl Evidence {
    /// Window readings against bounds.
    pub(crate) fn bounds(
        subject: crate::stats::window::Reading,
        baseline: Option<crate::stats::window::Reading>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Self {
        Self::Bounds {
            observed: subject.value,
            baseline: baseline.and_then(|b| b.value),
            min,
            max,
        }
    }

    /// The statistic on the judged arm, for kinds that read one.
    pub fn observed(&self) -> Option<f64> {
        match self {
            Self::Bounds { observed, .. } => *observed,
            Self::Sequential { .. }
            | Self::Change { .. }
            | Self::Quantile { .. }
            | Self::Rank { .. }
            | Self::Drift { .. }
            | Self::Score { .. } => None,
        }
    }

    /// The effective (lower, upper) bounds, for kinds that judge against bounds.
    pub fn bounds_of(&self) -> (Option<f64>, Option<f64>) {
        match self {
            Self::Bounds { min, max, .. } => (*min, *max),
            Self::Sequential { .. }
            | Self::Change { .. }
            | Self::Quantile { .. }
            | Self::Rank { .. }
            | Self::Drift { .. }
            | Self::Score { .. } => (None, None),
        }
    }
}

/// Why a `kayenta_score` gate's score is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScoreReason {
    /// The weighted sum of the group scores.
    Score,
    /// A critical member was not classified pass: 0.
    Critical,
    /// Half the scored members or more had no data: 0 (or no member was evaluated).
    NoData,
}

/// A member's label in Kayenta's scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KayentaLabel {
    /// Classified high.
    High,
    /// Classified low.
    Low,
    /// Classified pass.
    Pass,
    /// No data (counts toward the no-data threshold, not in its groups).
    NoData,
    /// No data on a `must_have_data` member (Kayenta's `NodataFailMetric`): counts as
    /// a failure in its groups.
    NoDataFail,
}

/// One group of a `kayenta_score` judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreGroup {
    /// The group's name.
    pub name: String,
    /// pass / (pass + high + low + no_data_fail) × 100; absent when that is 0 (the
    /// group then counts 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Its weight in the score (0 when the score is 0 for a critical member or no
    /// data).
    pub weight: f64,
    /// Members classified pass.
    pub pass: u32,
    /// Members classified high.
    pub high: u32,
    /// Members classified low.
    pub low: u32,
    /// Members without data.
    pub no_data: u32,
    /// `must_have_data` members without data.
    pub no_data_fail: u32,
}

/// One member of a `kayenta_score` judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreMetric {
    /// The member gate.
    pub gate: String,
    /// Its label.
    pub classification: KayentaLabel,
    /// A critical member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Reported, not scored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
}

/// Kayenta's classification of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Classification {
    /// Significantly higher than the baseline, by more than the tolerances.
    High,
    /// Significantly lower.
    Low,
    /// Neither.
    Pass,
    /// An arm sent no sample (or fewer than `samples_min`) this interval.
    NoData,
}

/// What the caller should do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Mirror traffic to `version`; it serves nothing.
    StartShadow {
        /// The candidate.
        version: String,
    },
    /// Deploy `version` as the blue-green preview (no live traffic).
    StartPreview {
        /// The candidate.
        version: String,
    },
    /// Route `weight` percent of traffic to `version` (step `step` of the strategy).
    SetWeight {
        /// The candidate.
        version: String,
        /// Percent of traffic.
        weight: u32,
        /// Strategy step index (for a gradual rollback's step, that of the weight the
        /// rollout stood at when the rollback began).
        step: u32,
    },
    /// Switch all traffic to `version`; `from` stays warm for the post-promotion bake.
    Promote {
        /// The candidate.
        version: String,
        /// The outgoing stable version.
        from: String,
    },
    /// Switch all traffic from `from` to `to` (and stop any mirroring).
    Rollback {
        /// The version judged bad.
        from: String,
        /// The version that gets all traffic.
        to: String,
        /// How `to` was chosen.
        target: TargetKind,
        /// Whether automation (not an operator) decided it.
        automated: bool,
        /// Estimated start of the degradation (gate failures only): reprocess what
        /// `from` handled since then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        degradation_started_at: Option<Timestamp>,
    },
    /// Stop and wait for an operator's `resume` (or `abort`) until `deadline`.
    PauseForApproval {
        /// The candidate.
        version: String,
        /// When the pause times out.
        deadline: Timestamp,
        /// What happens then.
        on_timeout: OnTimeout,
    },
    /// Undo a side effect `version` caused (recorded by `record_effect`), after a
    /// rollback away from it. Issued one at a time, newest effect first; the next comes
    /// once this one is acknowledged.
    Compensate {
        /// The version that caused it.
        version: String,
        /// The effect's id.
        effect_id: String,
        /// The undo descriptor, as recorded.
        undo: serde_json::Map<String, serde_json::Value>,
    },
    /// Ladder rung `pause_onboarding` (`scopes.ladder`): stop sending tenants new to
    /// `version` to it; tenants it already serves stay on it. Until the rollout ends
    /// (or the candidate is promoted), the routing table says `onboarding_paused`.
    PauseOnboarding {
        /// The candidate.
        version: String,
    },
    /// Ladder rung `route_back`: send the requests of `scopes` to `to` (the stable
    /// version) from now on; the rest of the split stays as it is. The routing table
    /// lists every scope routed back (`routed_back`).
    RouteBack {
        /// The candidate.
        version: String,
        /// The version the scopes go back to.
        to: String,
        /// The scopes newly routed back, in key order.
        scopes: Vec<crate::scope::ScopeKey>,
    },
    /// Ladder rung `freeze`: keep the candidate at its current weight; the stage timers
    /// stop until an operator's `resume`.
    Freeze {
        /// The candidate.
        version: String,
    },
    /// Keep routing as it is.
    Hold {},
    /// Tell a human.
    Escalate {},
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was taken.
    pub at: Timestamp,
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Present when the caller must execute it and then `ack` (or `action_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<u64>,
    /// Acknowledge by then, or the policy escalates and halts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_deadline: Option<Timestamp>,
    /// Free-form detail (a failed action's reason, say).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The gates involved, with observed values, thresholds and windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateReport>,
}

/// Who paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseKind {
    /// An operator's `pause`.
    Operator,
    /// The strategy's approval step, an inconclusive stage, or a blue-green preview
    /// without auto-promotion.
    Approval,
}

/// A fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A version was added to the registry.
    VersionRegistered {
        /// Its id.
        version: String,
        /// Evicted to make room, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evicted: Option<String>,
    },
    /// A version was validated.
    VersionValidated {
        /// Its id.
        version: String,
        /// By whom.
        by: Validator,
    },
    /// The aliases changed.
    AliasesChanged(Aliases),
    /// A rollout began.
    RolloutStarted {
        /// The candidate.
        version: String,
    },
    /// The caller acknowledged an action.
    ActionAcknowledged {
        /// Its id.
        action_id: u64,
    },
    /// The caller reported an action failed.
    ActionFailed {
        /// Its id.
        action_id: u64,
        /// As reported.
        reason: String,
    },
    /// An action was not acknowledged in time.
    AckTimedOut {
        /// Its id.
        action_id: u64,
    },
    /// A stage started (its action was acknowledged).
    StageStarted {
        /// Stage index in the compiled strategy.
        stage: u32,
        /// Phase the gates now run in.
        phase: Phase,
        /// Candidate traffic percent.
        weight: u32,
        /// When its bake ends, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ends_at: Option<Timestamp>,
    },
    /// A gradual rollback's step is in place (its `set_weight` was acknowledged) and
    /// its bake started.
    GradualStepStarted {
        /// The step, from 1, among the steps below the weight it began at.
        step: u32,
        /// Those steps.
        steps: u32,
        /// Candidate traffic percent.
        weight: u32,
        /// When its bake ends (absent while an operator pause holds it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ends_at: Option<Timestamp>,
    },
    /// Gates were evaluated.
    Analysis {
        /// Phase.
        phase: Phase,
        /// One report per gate evaluated.
        reports: Vec<GateReport>,
        /// With `scopes` in the config: the scopes' reports that fail, are tripped, or
        /// pass after failing (other passing and inconclusive scopes are not listed).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scoped: Vec<GateReport>,
    },
    /// Evaluations lagging far behind the input's time were skipped (a tick long after
    /// its deadline); the next one runs at `resumes_at`.
    AnalysisSkipped {
        /// How many.
        evaluations: u64,
        /// When evaluations resume.
        resumes_at: Timestamp,
    },
    /// A gate tripped.
    GateTripped {
        /// Its name.
        gate: String,
        /// Dry-run gates trip without consequence.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        dry_run: bool,
        /// The scope, for a scope's gate (config `scopes`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<crate::scope::ScopeKey>,
    },
    /// A tripped gate cleared.
    GateCleared {
        /// Its name.
        gate: String,
        /// Dry-run gate.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        dry_run: bool,
        /// The scope, for a scope's gate (config `scopes`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<crate::scope::ScopeKey>,
    },
    /// The candidate became stable.
    Promoted {
        /// The new stable.
        version: String,
        /// The old stable, now `previous`.
        previous: String,
    },
    /// Traffic went back.
    RolledBack {
        /// The version rolled back.
        from: String,
        /// The version now stable.
        to: String,
    },
    /// A rollout finished its bake; the version is validated by rollout.
    RolloutCompleted {
        /// The version.
        version: String,
    },
    /// The rollout paused.
    Paused {
        /// Operator or approval.
        by: PauseKind,
    },
    /// The rollout resumed.
    Resumed {
        /// Which pause ended.
        by: PauseKind,
    },
    /// An approval pause timed out.
    ApprovalTimedOut {
        /// What the config said to do.
        on_timeout: OnTimeout,
    },
    /// A cooldown began.
    CooldownStarted {
        /// Its end.
        until: Timestamp,
    },
    /// The cooldown ended.
    CooldownEnded {},
    /// The breaker tripped.
    BreakerTripped {
        /// Automated rollbacks counted in its window.
        rollbacks: u32,
    },
    /// An operator cleared the breaker.
    BreakerCleared {},
    /// Automation halted until an operator acts.
    Halted {
        /// Why.
        reason: Reason,
    },
    /// A side effect was recorded.
    EffectRecorded {
        /// The version that caused it.
        version: String,
        /// Its id.
        effect_id: String,
    },
    /// A `compensate` was acknowledged: the effect is undone and forgotten.
    EffectCompensated {
        /// The version that caused it.
        version: String,
        /// Its id.
        effect_id: String,
    },
    /// A promotion replaced the version that caused these effects: they stay, and are
    /// forgotten.
    EffectsCommitted {
        /// The version.
        version: String,
        /// How many.
        effects: u32,
    },
    /// An operator command was accepted.
    CommandAccepted {
        /// The input kind (`pause`, `revert_now`, …).
        command: String,
    },
}

/// A fact, with its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Serde: leave a zero count out.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}
