//! [`Policy`]: versions, windows, gates, the rollout machine, cooldown, breaker and
//! the reversion protocol, composed into one deterministic state machine.

use serde::{Deserialize, Serialize};

use crate::config::limits::{ANALYSIS_CATCHUP_MAX, VALUE_ABS_MAX};
use crate::config::{OnTimeout, Phase, PolicyConfig, Rule, check_label};
use crate::error::{Error, ErrorCode, ensure, parse_json};
use crate::gate::{GateState, Transition};
use crate::input::{Input, Sample, TargetKind};
use crate::output::{
    Action, Decision, Event, EventKind, GateReport, PauseKind, Reason, Step, Verdict,
};
use crate::plan::{Plan, Stage};
use crate::registry::{Aliases, Registry, Stage as Lifecycle, Validator};
use crate::time::{TIME_MAX, Timestamp, check_time, later, next_period};
use crate::window::{Reading, Window};

/// Windows of one live version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Arm {
    version: String,
    windows: Vec<Window>,
}

/// A pause of the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pause {
    kind: PauseKind,
    since: Timestamp,
    /// Approval timeout, if still armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<Timestamp>,
    /// Bake time left when an operator paused a running stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remaining_ms: Option<u64>,
}

/// The rollout in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rollout {
    version: String,
    started_at: Timestamp,
    /// Index into the compiled stages.
    stage: u32,
    /// Whether the stage's entry decision was issued.
    entered: bool,
    /// The phase gates run in; `None` until the first traffic action is acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<Phase>,
    /// Candidate traffic percent.
    weight: u32,
    /// When the current stage's bake ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stage_ends_at: Option<Timestamp>,
    /// The stage's bake is over; it advances once its gates allow.
    stage_done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pause: Option<Pause>,
    /// When the candidate was promoted: the bake's baseline falls back to the previous
    /// version's window as it stood then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promoted_at: Option<Timestamp>,
}

/// An action waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    id: u64,
    action: Action,
    deadline: Timestamp,
    /// For rollbacks: the lifecycle stage the rolled-back version gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mark: Option<Lifecycle>,
}

/// Automation halted until an operator acts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Halt {
    reason: Reason,
    /// The action that failed or timed out; `resume` issues it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<Pending>,
}

/// The circuit breaker over automated rollbacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Breaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open_since: Option<Timestamp>,
    /// Times of recent automated rollbacks, at most `max_rollbacks` of them.
    rollbacks: Vec<Timestamp>,
}

/// Everything that changes. Serialized as the `state` of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    now: Timestamp,
    registry: Registry,
    arms: Vec<Arm>,
    gates: Vec<GateState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    halt: Option<Halt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cooldown_until: Option<Timestamp>,
    breaker: Breaker,
    /// Next gate evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    analysis_at: Option<Timestamp>,
    /// The reason automation is currently blocked from acting, so that it escalates
    /// once per episode rather than at every evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<Reason>,
    next_action_id: u64,
    /// The config's candidate, until its rollout starts at the first input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kickoff: Option<String>,
}

/// The whole state of a policy, with its config: restore it anywhere, in any binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Must equal [`FORMAT_VERSION`](crate::FORMAT_VERSION).
    pub format_version: u32,
    /// The policy's config.
    pub config: PolicyConfig,
    state: State,
}

impl Snapshot {
    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a snapshot.
    ///
    /// # Errors
    /// `unsupported_format_version` for another format, `snapshot_corrupt` with the
    /// failing field's path for anything else that does not parse.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let corrupt = |e: Error| Error {
            code: ErrorCode::SnapshotCorrupt,
            ..e
        };
        Self::from_value(parse_json(text).map_err(corrupt)?)
    }

    /// Converts a snapshot from a JSON value (a binding's native object).
    ///
    /// # Errors
    /// As [`Snapshot::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if let Some(v) = version.filter(|v| *v != u64::from(crate::FORMAT_VERSION)) {
            return Err(Error::new(
                ErrorCode::UnsupportedFormatVersion,
                "format_version",
                format!(
                    "snapshot format_version {v} is not {}",
                    crate::FORMAT_VERSION
                ),
            ));
        }
        let corrupt = |e: Error| Error {
            code: ErrorCode::SnapshotCorrupt,
            ..e
        };
        crate::error::parse_value(value).map_err(corrupt)
    }
}

/// A read-only summary of where a policy stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The policy's current time.
    pub now: Timestamp,
    /// The aliases.
    pub aliases: Aliases,
    /// The phase gates run in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Candidate traffic percent (0 without a rollout).
    pub weight: u32,
    /// The rollout's stage index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<u32>,
    /// The action waiting for acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_action: Option<u64>,
    /// Paused, and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PauseKind>,
    /// Halted, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted: Option<Reason>,
    /// Whether the breaker is open.
    pub breaker_open: bool,
    /// End of the cooldown, if one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_until: Option<Timestamp>,
    /// Gates currently tripped.
    pub tripped_gates: Vec<String>,
}

/// Decisions and events collected during one input.
#[derive(Default)]
struct Out {
    decisions: Vec<Decision>,
    events: Vec<Event>,
}

impl Out {
    fn event(&mut self, at: Timestamp, kind: EventKind) {
        self.events.push(Event { at, kind });
    }

    fn decide(&mut self, at: Timestamp, action: Action, reason: Reason, gates: Vec<GateReport>) {
        self.decisions.push(Decision {
            at,
            action,
            reason,
            action_id: None,
            ack_deadline: None,
            detail: String::new(),
            gates,
        });
    }

    fn escalate(&mut self, at: Timestamp, reason: Reason, detail: String, gates: Vec<GateReport>) {
        self.decisions.push(Decision {
            at,
            action: Action::Escalate {},
            reason,
            action_id: None,
            ack_deadline: None,
            detail,
            gates,
        });
    }

    fn into_step(self, at: Timestamp) -> Step {
        Step {
            at,
            decisions: self.decisions,
            events: self.events,
        }
    }
}

/// A rollback policy.
///
/// Build it from a validated config and a start time, then feed it inputs. Each input
/// returns a [`Step`]; act on its decisions, acknowledge the ones that carry an
/// `action_id`, and call [`Policy::tick`] when [`Policy::next_deadline`] comes.
///
/// Every method that takes an input either applies it completely or returns an
/// [`Error`] and leaves the policy exactly as it was.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    plan: Plan,
    state: State,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.state == other.state
    }
}

impl Policy {
    /// Creates a policy at time `now`. If the config names a `candidate`, its rollout
    /// starts at the first input (or tick) at or after `now`.
    ///
    /// # Errors
    /// A config error with the offending field's path, or `time_out_of_range`.
    pub fn new(config: PolicyConfig, now: Timestamp) -> Result<Self, Error> {
        config.validate()?;
        check_time(now, "now")?;
        let plan = Plan::new(&config);
        let registry = Registry::new(&config.versions, &config.stable, now);
        let mut policy = Self {
            state: State {
                now,
                registry,
                arms: Vec::new(),
                gates: vec![GateState::default(); config.gates.len()],
                rollout: None,
                pending: None,
                halt: None,
                cooldown_until: None,
                breaker: Breaker::default(),
                analysis_at: None,
                blocked: None,
                next_action_id: 1,
                kickoff: None,
            },
            plan,
            config,
        };
        policy
            .state
            .arms
            .push(policy.new_arm(&policy.config.stable.clone()));
        policy.state.analysis_at = policy.steady_analysis(now);
        // The config's candidate starts rolling out at the first input, so that the
        // trace shows it like any `start_rollout`.
        policy.state.kickoff = policy.config.candidate.clone();
        Ok(policy)
    }

    /// Parses and validates a config, then creates the policy.
    ///
    /// # Errors
    /// `invalid_json` or a config error, with the field's path.
    pub fn from_json(config: &str, now: Timestamp) -> Result<Self, Error> {
        Self::new(PolicyConfig::from_json(config)?, now)
    }

    /// The config.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The policy's current time: the latest input's.
    pub fn now(&self) -> Timestamp {
        self.state.now
    }

    /// When the policy next needs a [`tick`](Policy::tick), if ever. Ticking earlier or
    /// more often is harmless; ticking late delays decisions until the tick (every
    /// other input also fires due timers first).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        // Mirrors `fire`: a timer counts only when `fire` would act on it.
        let s = &self.state;
        let mut timers = [
            s.kickoff.as_ref().map(|_| s.now),
            s.pending.as_ref().map(|p| p.deadline),
            s.cooldown_until,
            None,
            None,
            None,
            None,
        ];
        if s.pending.is_none() {
            timers[3] = s.analysis_at;
            if let (Some(r), None) = (&s.rollout, &s.halt) {
                timers[4] = r.stage_ends_at;
                timers[5] = r.pause.as_ref().and_then(|p| p.deadline);
                timers[6] = (!r.entered).then_some(s.now);
            }
        }
        timers.into_iter().flatten().min()
    }

    /// The aliases and the state of the rollout, breaker and cooldown.
    pub fn status(&self) -> Status {
        let s = &self.state;
        let r = s.rollout.as_ref();
        Status {
            now: s.now,
            aliases: s.registry.aliases.clone(),
            phase: r
                .and_then(|r| r.phase)
                .or_else(|| self.plan.steady.then_some(Phase::Steady)),
            weight: r.map_or(0, |r| r.weight),
            stage: r.map(|r| r.stage),
            pending_action: s.pending.as_ref().map(|p| p.id),
            paused: r.and_then(|r| r.pause.as_ref()).map(|p| p.kind),
            halted: s.halt.as_ref().map(|h| h.reason),
            breaker_open: s.breaker.open_since.is_some(),
            cooldown_until: s.cooldown_until,
            tripped_gates: self
                .config
                .gates
                .iter()
                .zip(&s.gates)
                .filter(|(_, g)| g.tripped())
                .map(|(c, _)| c.name.clone())
                .collect(),
        }
    }

    /// The registered versions.
    pub fn versions(&self) -> &[crate::registry::Version] {
        &self.state.registry.versions
    }

    /// A snapshot of the whole state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format_version: crate::FORMAT_VERSION,
            config: self.config.clone(),
            state: self.state.clone(),
        }
    }

    /// Recreates a policy from a snapshot; it continues exactly as the original would.
    ///
    /// # Errors
    /// `unsupported_format_version`, a config error, or `snapshot_corrupt` when the
    /// state does not fit the config.
    pub fn restore(snapshot: Snapshot) -> Result<Self, Error> {
        ensure(
            snapshot.format_version == crate::FORMAT_VERSION,
            ErrorCode::UnsupportedFormatVersion,
            "format_version",
            || {
                format!(
                    "snapshot format_version {} is not {}",
                    snapshot.format_version,
                    crate::FORMAT_VERSION
                )
            },
        )?;
        snapshot.config.validate().map_err(|e| e.within("config"))?;
        let plan = Plan::new(&snapshot.config);
        let policy = Self {
            plan,
            config: snapshot.config,
            state: snapshot.state,
        };
        policy.check_state().map_err(|what| {
            Error::new(
                ErrorCode::SnapshotCorrupt,
                "state",
                format!("inconsistent state: {what}"),
            )
        })?;
        Ok(policy)
    }

    /// Parses a snapshot's JSON and restores it.
    ///
    /// # Errors
    /// As [`Snapshot::from_json`] and [`Policy::restore`].
    pub fn restore_json(text: &str) -> Result<Self, Error> {
        Self::restore(Snapshot::from_json(text)?)
    }

    fn check_state(&self) -> Result<(), &'static str> {
        let s = &self.state;
        let times = [
            Some(s.now),
            s.cooldown_until,
            s.analysis_at,
            s.pending.as_ref().map(|p| p.deadline),
            s.breaker.open_since,
        ];
        check(
            times.iter().flatten().all(|t| *t <= TIME_MAX),
            "time out of range",
        )?;
        check(
            s.registry.check(self.config.limits.versions_max),
            "registry",
        )?;
        check(s.gates.len() == self.config.gates.len(), "gate count")?;
        check(s.arms.len() <= 3, "too many arms")?;
        for arm in &s.arms {
            check(
                s.registry.contains(&arm.version),
                "arm of an unknown version",
            )?;
            check(arm.windows.len() == self.plan.shapes.len(), "window count")?;
            check(
                arm.windows
                    .iter()
                    .zip(&self.plan.shapes)
                    .all(|(w, sh)| w.fits(*sh)),
                "window shape",
            )?;
        }
        check(
            s.breaker.rollbacks.len() as u64 <= u64::from(self.config.safety.breaker.max_rollbacks),
            "breaker history",
        )?;
        if let Some(k) = &s.kickoff {
            check(s.registry.contains(k) && s.rollout.is_none(), "kickoff")?;
        }
        if let Some(r) = &s.rollout {
            check((r.stage as usize) < self.plan.stages.len(), "stage index")?;
            check(
                s.registry.contains(&r.version),
                "rollout of an unknown version",
            )?;
            check(r.weight <= 100, "weight")?;
        }
        check(
            s.next_action_id > s.pending.as_ref().map_or(0, |p| p.id),
            "action ids",
        )?;
        Ok(())
    }

    // ------------------------------------------------------------------ inputs

    /// Applies any input.
    ///
    /// # Errors
    /// An input error; the policy is unchanged.
    pub fn handle(&mut self, input: &Input) -> Result<Step, Error> {
        match input {
            Input::Observe(sample) => self.observe(sample),
            Input::ObserveBatch { samples } => self.observe_batch(samples),
            Input::Tick { at } => self.tick(*at),
            other => {
                let at = other.at().unwrap_or(self.state.now);
                self.check_now(at, "at")?;
                let mut next = self.clone();
                let mut out = Out::default();
                next.advance(at, &mut out);
                next.command(other, at, &mut out)?;
                *self = next;
                Ok(out.into_step(at))
            }
        }
    }

    /// Parses one input from JSON and applies it.
    ///
    /// # Errors
    /// `invalid_json`, or an input error; the policy is unchanged.
    pub fn handle_json(&mut self, input: &str) -> Result<Step, Error> {
        self.handle(&Input::from_json(input)?)
    }

    /// Time passes: fires every timer due at or before `now`.
    ///
    /// # Errors
    /// `time_went_backwards` or `time_out_of_range`; the policy is unchanged.
    pub fn tick(&mut self, now: Timestamp) -> Result<Step, Error> {
        self.check_now(now, "at")?;
        let mut out = Out::default();
        self.advance(now, &mut out);
        Ok(out.into_step(now))
    }

    /// Records one sample (after firing timers due by its time).
    ///
    /// # Errors
    /// A sample error (`non_finite_value`, `negative_count`, `events_exceed_total`,
    /// `metric_kind_mismatch`, `unknown_arm`, `unknown_metric`, `label_too_long`,
    /// `time_went_backwards`, `time_out_of_range`); the policy is unchanged.
    pub fn observe(&mut self, sample: &Sample) -> Result<Step, Error> {
        let metric = self.check_sample(sample, self.state.now)?;
        let mut out = Out::default();
        self.record(sample, metric, &mut out);
        Ok(out.into_step(sample.at))
    }

    /// Records samples in time order, atomically: if any is refused, none is recorded.
    ///
    /// # Errors
    /// The first sample error, its path prefixed with `samples[i]`.
    pub fn observe_batch(&mut self, samples: &[Sample]) -> Result<Step, Error> {
        let mut metrics = Vec::with_capacity(samples.len());
        let mut t = self.state.now;
        for (i, s) in samples.iter().enumerate() {
            metrics.push(
                self.check_sample(s, t)
                    .map_err(|e| e.within(format!("samples[{i}]")))?,
            );
            t = s.at;
        }
        let mut out = Out::default();
        for (s, m) in samples.iter().zip(metrics) {
            self.record(s, m, &mut out);
        }
        Ok(out.into_step(t))
    }

    /// The fast path for one value sample, without building a [`Sample`].
    ///
    /// # Errors
    /// As [`Policy::observe`].
    pub fn observe_value(
        &mut self,
        at: Timestamp,
        arm: &str,
        metric: &str,
        value: f64,
    ) -> Result<Step, Error> {
        let m = self.check_parts(at, self.state.now, arm, metric, Some(value), None, None)?;
        let mut out = Out::default();
        self.record_parts(at, arm, m, Some(value), 0, 0, &mut out);
        Ok(out.into_step(at))
    }

    /// The fast path for one count sample.
    ///
    /// # Errors
    /// As [`Policy::observe`].
    pub fn observe_count(
        &mut self,
        at: Timestamp,
        arm: &str,
        metric: &str,
        events: i64,
        total: i64,
    ) -> Result<Step, Error> {
        let m = self.check_parts(
            at,
            self.state.now,
            arm,
            metric,
            None,
            Some(events),
            Some(total),
        )?;
        let mut out = Out::default();
        self.record_parts(at, arm, m, None, events as u64, total as u64, &mut out);
        Ok(out.into_step(at))
    }

    /// Records a column of value samples of one metric on one arm (the numpy or typed
    /// array path of the bindings), atomically: if any is refused, none is recorded.
    /// Times must not decrease.
    ///
    /// # Errors
    /// The first sample error; its path names the column and row (`value[3]`, `at[0]`),
    /// or `arm` / `metric`. Columns of different lengths are `invalid_value` at `value`.
    pub fn observe_values(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        values: &[f64],
    ) -> Result<Step, Error> {
        same_length(at.len(), values.len(), "value")?;
        let mut t = self.state.now;
        let mut m = 0;
        for (i, (&a, &v)) in at.iter().zip(values).enumerate() {
            m = self
                .check_parts(a, t, arm, metric, Some(v), None, None)
                .map_err(|e| row(e, i))?;
            t = a;
        }
        let mut out = Out::default();
        for (&a, &v) in at.iter().zip(values) {
            self.record_parts(a, arm, m, Some(v), 0, 0, &mut out);
        }
        Ok(out.into_step(t))
    }

    /// Records a column of count samples (`events` out of `totals`) of one metric on one
    /// arm, atomically, as [`Policy::observe_values`] does.
    ///
    /// # Errors
    /// As [`Policy::observe_values`] (`events[3]`, `total[3]`, …).
    pub fn observe_counts(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        events: &[i64],
        totals: &[i64],
    ) -> Result<Step, Error> {
        same_length(at.len(), events.len(), "events")?;
        same_length(at.len(), totals.len(), "total")?;
        let mut t = self.state.now;
        let mut m = 0;
        for (i, ((&a, &e), &n)) in at.iter().zip(events).zip(totals).enumerate() {
            m = self
                .check_parts(a, t, arm, metric, None, Some(e), Some(n))
                .map_err(|err| row(err, i))?;
            t = a;
        }
        let mut out = Out::default();
        for ((&a, &e), &n) in at.iter().zip(events).zip(totals) {
            self.record_parts(a, arm, m, None, e as u64, n as u64, &mut out);
        }
        Ok(out.into_step(t))
    }

    fn check_now(&self, at: Timestamp, path: &str) -> Result<(), Error> {
        check_time(at, path)?;
        ensure(
            at >= self.state.now,
            ErrorCode::TimeWentBackwards,
            path,
            || format!("time {at} is before the policy's time {}", self.state.now),
        )
    }

    fn check_sample(&self, s: &Sample, not_before: Timestamp) -> Result<usize, Error> {
        let label_max = self.config.limits.label_len_max;
        for (name, label) in [
            ("tenant", &s.tenant),
            ("tier", &s.tier),
            ("agent", &s.agent),
        ] {
            if let Some(l) = label {
                check_label(l, label_max, name, true)?;
            }
        }
        self.check_parts(
            s.at, not_before, &s.arm, &s.metric, s.value, s.events, s.total,
        )
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn check_parts(
        &self,
        at: Timestamp,
        not_before: Timestamp,
        arm: &str,
        metric: &str,
        value: Option<f64>,
        events: Option<i64>,
        total: Option<i64>,
    ) -> Result<usize, Error> {
        check_time(at, "at")?;
        if at < not_before {
            return Err(Error::new(
                ErrorCode::TimeWentBackwards,
                "at",
                format!("time {at} is before {not_before}"),
            ));
        }
        if !self.state.arms.iter().any(|a| a.version == arm) && !self.state.registry.contains(arm) {
            return Err(Error::new(
                ErrorCode::UnknownArm,
                "arm",
                format!("no version {arm:?}"),
            ));
        }
        let m = self.config.metric_index(metric).ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownMetric,
                "metric",
                format!("no metric {metric:?}"),
            )
        })?;
        let kind = self.plan.shapes[m].kind;
        match (kind, value, events, total) {
            (crate::config::MetricKind::Value, Some(v), None, None) => {
                ensure(v.is_finite(), ErrorCode::NonFiniteValue, "value", || {
                    format!("{v} is not finite")
                })?;
                ensure(
                    v.abs() <= VALUE_ABS_MAX,
                    ErrorCode::ValueOutOfRange,
                    "value",
                    || format!("{v:e} is beyond ±{VALUE_ABS_MAX:e}"),
                )?;
            }
            (crate::config::MetricKind::Count, None, Some(e), Some(t)) => {
                ensure(e >= 0, ErrorCode::NegativeCount, "events", || {
                    format!("{e} is negative")
                })?;
                ensure(t >= 0, ErrorCode::NegativeCount, "total", || {
                    format!("{t} is negative")
                })?;
                ensure(
                    t <= TIME_MAX as i64,
                    ErrorCode::CountOutOfRange,
                    "total",
                    || format!("{t} is above 2^53-1"),
                )?;
                ensure(e <= t, ErrorCode::EventsExceedTotal, "events", || {
                    format!("events {e} exceed total {t}")
                })?;
            }
            (crate::config::MetricKind::Value, ..) => {
                return Err(Error::new(
                    ErrorCode::MetricKindMismatch,
                    "value",
                    format!("metric {metric:?} takes exactly one `value`"),
                ));
            }
            (crate::config::MetricKind::Count, ..) => {
                return Err(Error::new(
                    ErrorCode::MetricKindMismatch,
                    "events",
                    format!("metric {metric:?} takes `events` and `total`"),
                ));
            }
        }
        Ok(m)
    }

    fn record(&mut self, s: &Sample, metric: usize, out: &mut Out) {
        let events = s.events.unwrap_or(0) as u64;
        let total = s.total.unwrap_or(0) as u64;
        self.record_parts(s.at, &s.arm, metric, s.value, events, total, out);
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn record_parts(
        &mut self,
        at: Timestamp,
        arm: &str,
        metric: usize,
        value: Option<f64>,
        events: u64,
        total: u64,
        out: &mut Out,
    ) {
        if self.next_deadline().is_some_and(|d| d <= at) {
            self.advance(at, out);
        }
        self.state.now = at;
        let shape = self.plan.shapes[metric];
        // Samples from registered versions that are not live are accepted and ignored.
        if let Some(a) = self.state.arms.iter_mut().find(|a| a.version == arm) {
            if let Some(w) = a.windows.get_mut(metric) {
                match value {
                    Some(x) => w.add_value(shape, at, x),
                    None => w.add_count(shape, at, events, total),
                }
            }
        }
    }

    // ------------------------------------------------------------------ timers

    /// Fires every timer due at or before `t`, in time order, then sets the time to `t`.
    fn advance(&mut self, t: Timestamp, out: &mut Out) {
        // Each firing clears its timer or moves it strictly later, and analyses lagging
        // far behind are skipped (see `analysis_due`), so this ends after a bounded
        // number of firings; the bound is a second guard against a bug becoming a hang.
        for _ in 0..10_000 + 4 * ANALYSIS_CATCHUP_MAX {
            match self.next_deadline() {
                Some(d) if d <= t => {
                    self.state.now = self.state.now.max(d);
                    self.fire(self.state.now, t, out);
                }
                _ => break,
            }
        }
        self.state.now = t;
    }

    /// Acts on every timer due at `now`, in a fixed order, on the way to `until`.
    fn fire(&mut self, now: Timestamp, until: Timestamp, out: &mut Out) {
        if let Some(candidate) = self.state.kickoff.take() {
            self.begin_rollout(&candidate, now, out);
        }
        if let Some(p) = self.state.pending.take_if(|p| p.deadline <= now) {
            out.event(now, EventKind::AckTimedOut { action_id: p.id });
            self.halt(now, Reason::AckTimeout, Some(p), String::new(), out);
        }
        if self.state.cooldown_until.is_some_and(|c| c <= now) {
            self.state.cooldown_until = None;
            out.event(now, EventKind::CooldownEnded {});
        }
        // From here on each timer may issue an action; while one is pending nothing else
        // moves, and while automation is halted the rollout does not progress.
        let idle = |p: &Self| p.state.pending.is_none();
        if idle(self) && self.state.analysis_at.is_some_and(|a| a <= now) {
            self.analysis_due(now, until, out);
        }
        if !idle(self) || self.state.halt.is_some() {
            return;
        }
        if let Some(r) = self
            .state
            .rollout
            .as_mut()
            .filter(|r| r.stage_ends_at.is_some_and(|e| e <= now))
        {
            r.stage_ends_at = None;
            r.stage_done = true;
            self.stage_end(now, out);
        }
        let timed_out = self
            .state
            .rollout
            .as_mut()
            .and_then(|r| r.pause.as_mut())
            .is_some_and(|p| p.deadline.take_if(|d| *d <= now).is_some());
        if idle(self) && timed_out {
            self.approval_timeout(now, out);
        }
        if idle(self) && self.state.rollout.as_ref().is_some_and(|r| !r.entered) {
            self.enter_stage(now, None, out);
        }
    }

    /// An evaluation is due at `now`. Evaluations lagging more than
    /// [`ANALYSIS_CATCHUP_MAX`] intervals behind `until` (a tick long after its
    /// deadline) are skipped and reported, so one input does bounded work.
    fn analysis_due(&mut self, now: Timestamp, until: Timestamp, out: &mut Out) {
        let interval = self.config.analysis.interval_ms;
        let behind = until.saturating_sub(now) / interval;
        if behind >= ANALYSIS_CATCHUP_MAX {
            let evaluations = behind - ANALYSIS_CATCHUP_MAX + 1;
            let resumes_at = later(now, evaluations.saturating_mul(interval));
            self.state.analysis_at = Some(resumes_at).filter(|t| *t > now);
            out.event(
                now,
                EventKind::AnalysisSkipped {
                    evaluations,
                    resumes_at,
                },
            );
            return;
        }
        self.state.analysis_at = next_period(now, interval);
        self.analyse(now, out);
    }

    fn steady_analysis(&self, now: Timestamp) -> Option<Timestamp> {
        self.plan
            .steady
            .then(|| next_period(now, self.config.analysis.interval_ms))
            .flatten()
    }

    // ------------------------------------------------------------------ analysis

    /// The version judged and its baseline, in the current phase.
    fn arms_in(&self, phase: Phase) -> (String, Option<String>) {
        let a = &self.state.registry.aliases;
        match (phase, &self.state.rollout) {
            (Phase::Steady, _) | (_, None) => (a.stable.clone(), None),
            (Phase::Bake, Some(r)) => (r.version.clone(), a.previous.clone()),
            (_, Some(r)) => (r.version.clone(), Some(a.stable.clone())),
        }
    }

    fn current_phase(&self) -> Option<Phase> {
        match &self.state.rollout {
            Some(r) => r.phase,
            None => self.plan.steady.then_some(Phase::Steady),
        }
    }

    fn reading(&self, version: &str, metric: usize, gate: usize, now: Timestamp) -> Reading {
        let stat = self.config.gates[gate].stat;
        self.state
            .arms
            .iter()
            .find(|a| a.version == version)
            .and_then(|a| a.windows.get(metric))
            .map_or(
                Reading {
                    value: None,
                    evidence: 0,
                },
                |w| w.read(self.plan.shapes[metric], stat, now),
            )
    }

    /// The baseline's reading. After promotion the previous version usually serves
    /// nothing, so unless it still gets enough samples (mirrored or kept warm), the
    /// bake compares with its window as it stood at promotion.
    fn baseline_reading(
        &self,
        version: &str,
        metric: usize,
        gate: usize,
        now: Timestamp,
    ) -> Reading {
        let live = self.reading(version, metric, gate, now);
        let frozen_at = self.state.rollout.as_ref().and_then(|r| r.promoted_at);
        match frozen_at {
            Some(at) if live.evidence < self.config.gates[gate].samples_min => {
                self.reading(version, metric, gate, at)
            }
            _ => live,
        }
    }

    /// Estimates when a degradation began: the start of the oldest bucket in the
    /// window whose own statistic breaks the bounds, or the window start.
    fn onset(
        &self,
        version: &str,
        metric: usize,
        gate: usize,
        min: Option<f64>,
        max: Option<f64>,
        now: Timestamp,
    ) -> Timestamp {
        let shape = self.plan.shapes[metric];
        let stat = self.config.gates[gate].stat;
        let start = Window::start(shape, now);
        let floor = self.state.rollout.as_ref().map_or(0, |r| r.started_at);
        let breaks = |x: f64| min.is_some_and(|lo| x < lo) || max.is_some_and(|hi| x > hi);
        let first = self
            .state
            .arms
            .iter()
            .find(|a| a.version == version)
            .and_then(|a| a.windows.get(metric))
            .and_then(|w| {
                w.read_buckets(shape, stat, now)
                    .into_iter()
                    .find(|(_, r)| r.value.is_some_and(breaks))
                    .map(|(t, _)| t)
            });
        first.unwrap_or(start).max(floor)
    }

    fn analyse(&mut self, now: Timestamp, out: &mut Out) {
        let Some(phase) = self.current_phase() else {
            return;
        };
        let (subject, baseline) = self.arms_in(phase);
        let mut reports = Vec::new();
        for i in 0..self.config.gates.len() {
            let gate = &self.config.gates[i];
            if !gate.phases.contains(&phase) {
                continue;
            }
            let m = self.plan.gate_metric[i];
            let observed = self.reading(&subject, m, i, now);
            let base = match (&gate.rule, &baseline) {
                (Rule::VsBaseline { .. }, Some(b)) => Some(self.baseline_reading(b, m, i, now)),
                _ => None,
            };
            let judgement = self.state.gates[i].detector.judge(gate, observed, base);
            let st = &self.state.gates[i];
            let first_failure =
                judgement.verdict == Verdict::Fail && st.failing_since.is_none() && !st.tripped();
            let onset = if first_failure {
                self.onset(&subject, m, i, judgement.min, judgement.max, now)
            } else {
                now
            };
            let gate = &self.config.gates[i];
            let st = &mut self.state.gates[i];
            let transition = st.record(&gate.persistence, judgement.verdict, now, || onset);
            match transition {
                Transition::Tripped => out.event(
                    now,
                    EventKind::GateTripped {
                        gate: gate.name.clone(),
                        dry_run: gate.dry_run,
                    },
                ),
                Transition::Cleared => out.event(
                    now,
                    EventKind::GateCleared {
                        gate: gate.name.clone(),
                        dry_run: gate.dry_run,
                    },
                ),
                Transition::None => {}
            }
            reports.push(GateReport {
                gate: gate.name.clone(),
                metric: gate.metric.clone(),
                stat: gate.stat,
                verdict: judgement.verdict,
                arm: subject.clone(),
                observed: observed.value,
                baseline: base.and_then(|b| b.value),
                min: judgement.min,
                max: judgement.max,
                samples: observed.evidence,
                baseline_samples: base.map(|b| b.evidence),
                window_start: Window::start(self.plan.shapes[m], now),
                window_end: now,
                consecutive_failures: st.consecutive_failures,
                tripped: st.tripped(),
                dry_run: gate.dry_run,
            });
        }
        if reports.is_empty() {
            return;
        }
        let tripped: Vec<GateReport> = reports
            .iter()
            .filter(|r| r.tripped && !r.dry_run)
            .cloned()
            .collect();
        out.event(now, EventKind::Analysis { phase, reports });
        if tripped.is_empty() {
            self.state.blocked = None;
            if self.state.rollout.as_ref().is_some_and(|r| r.stage_done) {
                self.stage_end(now, out);
            }
            return;
        }
        let onset = self
            .config
            .gates
            .iter()
            .zip(&self.state.gates)
            .filter(|(c, g)| g.tripped() && !c.dry_run)
            .filter_map(|(_, g)| g.onset)
            .min();
        self.auto_rollback(now, Reason::GateFailed, tripped, onset, out);
    }

    // ------------------------------------------------------------------ the rollout

    fn begin_rollout(&mut self, version: &str, now: Timestamp, out: &mut Out) {
        let reg = &mut self.state.registry;
        reg.aliases.candidate = Some(version.to_string());
        reg.set_stage(version, Lifecycle::RollingOut);
        let stable = reg.aliases.stable.clone();
        self.state.arms.retain(|a| a.version == stable);
        self.state.arms.push(self.new_arm(version));
        self.reset_gates();
        self.state.analysis_at = None;
        self.state.rollout = Some(Rollout {
            version: version.to_string(),
            started_at: now,
            stage: 0,
            entered: false,
            phase: None,
            weight: 0,
            stage_ends_at: None,
            stage_done: false,
            pause: None,
            promoted_at: None,
        });
        out.event(
            now,
            EventKind::RolloutStarted {
                version: version.to_string(),
            },
        );
        out.event(
            now,
            EventKind::AliasesChanged(self.state.registry.aliases.clone()),
        );
    }

    fn new_arm(&self, version: &str) -> Arm {
        Arm {
            version: version.to_string(),
            windows: self.plan.shapes.iter().map(|s| Window::new(*s)).collect(),
        }
    }

    fn reset_gates(&mut self) {
        for g in &mut self.state.gates {
            *g = GateState::default();
        }
        self.state.blocked = None;
    }

    fn stage(&self) -> Option<Stage> {
        let r = self.state.rollout.as_ref()?;
        self.plan.stages.get(r.stage as usize).copied()
    }

    /// Issues the current stage's entry decision. `reason` is why the rollout moved
    /// here (`None` for the first stage).
    fn enter_stage(&mut self, now: Timestamp, reason: Option<Reason>, out: &mut Out) {
        let Some(stage) = self.stage() else {
            self.complete(now, out);
            return;
        };
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.entered = true;
        r.stage_done = false;
        let version = r.version.clone();
        let reason = reason.unwrap_or(if r.stage == 0 {
            Reason::RolloutStarted
        } else {
            Reason::StagePassed
        });
        match stage {
            Stage::Shadow { .. } => self.issue(
                now,
                Action::StartShadow { version },
                reason,
                None,
                Vec::new(),
                out,
            ),
            Stage::Preview { .. } => self.issue(
                now,
                Action::StartPreview { version },
                reason,
                None,
                Vec::new(),
                out,
            ),
            Stage::Weight { weight, step, .. } => self.issue(
                now,
                Action::SetWeight {
                    version,
                    weight,
                    step,
                },
                reason,
                None,
                Vec::new(),
                out,
            ),
            Stage::Promote => {
                let from = self.state.registry.aliases.stable.clone();
                self.issue(
                    now,
                    Action::Promote { version, from },
                    reason,
                    None,
                    Vec::new(),
                    out,
                )
            }
            Stage::Approval => {
                let reason = if reason == Reason::StagePassed || reason == Reason::RolloutStarted {
                    Reason::ApprovalStep
                } else {
                    reason
                };
                self.pause_for_approval(now, reason, out);
            }
            Stage::Bake { duration_ms } => {
                r.phase = Some(Phase::Bake);
                self.start_timers(now, duration_ms, out);
            }
        }
    }

    /// Starts the current stage's bake timer and the analysis grid.
    fn start_timers(&mut self, now: Timestamp, duration_ms: u64, out: &mut Out) {
        let interval = self.config.analysis.interval_ms;
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.stage_ends_at = (duration_ms > 0).then(|| later(now, duration_ms));
        if let Some(pause) = r.pause.as_mut().filter(|p| p.kind == PauseKind::Operator) {
            // Paused while the action was pending: the bake starts frozen.
            pause.remaining_ms = r.stage_ends_at.take().map(|_| duration_ms);
        }
        let phase = r.phase.unwrap_or(Phase::Canary);
        out.event(
            now,
            EventKind::StageStarted {
                stage: r.stage,
                phase,
                weight: r.weight,
                ends_at: r.stage_ends_at,
            },
        );
        let analysed = self.config.gates.iter().any(|g| g.phases.contains(&phase));
        self.state.analysis_at = analysed.then(|| next_period(now, interval)).flatten();
        if duration_ms == 0 {
            // No bake: move on as soon as the traffic change is in place (Argo's
            // `setWeight` without `pause`), unless an operator paused the rollout.
            if self
                .state
                .rollout
                .as_ref()
                .is_some_and(|r| r.pause.is_none())
            {
                self.next_stage(now, Reason::StagePassed, out);
            } else if let Some(r) = self.state.rollout.as_mut() {
                r.stage_done = true;
            }
        }
    }

    fn pause_for_approval(&mut self, now: Timestamp, reason: Reason, out: &mut Out) {
        let timeout = self.config.approval;
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        let deadline = later(now, timeout.timeout_ms);
        r.pause = Some(Pause {
            kind: PauseKind::Approval,
            since: now,
            deadline: Some(deadline),
            remaining_ms: None,
        });
        let version = r.version.clone();
        out.event(
            now,
            EventKind::Paused {
                by: PauseKind::Approval,
            },
        );
        out.decide(
            now,
            Action::PauseForApproval {
                version,
                deadline,
                on_timeout: timeout.on_timeout,
            },
            reason,
            Vec::new(),
        );
    }

    /// The bake time of the current stage is over: advance if the gates allow.
    fn stage_end(&mut self, now: Timestamp, out: &mut Out) {
        let s = &self.state;
        let Some(r) = &s.rollout else { return };
        if !r.stage_done
            || r.pause.is_some()
            || s.pending.is_some()
            || s.halt.is_some()
            || s.breaker.open_since.is_some()
        {
            return;
        }
        let phase = r.phase;
        let live: Vec<(usize, &GateState)> = self
            .config
            .gates
            .iter()
            .zip(&s.gates)
            .enumerate()
            .filter(|(_, (c, _))| !c.dry_run && phase.is_some_and(|p| c.phases.contains(&p)))
            .map(|(i, (_, g))| (i, g))
            .collect();
        if live.iter().any(|(_, g)| g.tripped()) {
            return; // the rollback (or the hold that blocks it) is decided by analysis
        }
        if live.iter().any(|(_, g)| g.consecutive_failures > 0) {
            out.decide(now, Action::Hold {}, Reason::GateFailing, Vec::new());
            return;
        }
        if live.iter().any(|(_, g)| g.last != Some(Verdict::Pass)) {
            if self.config.approval.pause_on_inconclusive {
                self.pause_for_approval(now, Reason::Inconclusive, out);
            } else {
                out.decide(now, Action::Hold {}, Reason::Inconclusive, Vec::new());
            }
            return;
        }
        self.next_stage(now, Reason::StagePassed, out);
    }

    fn next_stage(&mut self, now: Timestamp, reason: Reason, out: &mut Out) {
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.stage += 1;
        r.entered = false;
        r.stage_done = false;
        r.stage_ends_at = None;
        r.pause = None;
        self.enter_stage(now, Some(reason), out);
    }

    fn approval_timeout(&mut self, now: Timestamp, out: &mut Out) {
        let on_timeout = self.config.approval.on_timeout;
        out.event(now, EventKind::ApprovalTimedOut { on_timeout });
        match on_timeout {
            OnTimeout::Rollback => {
                self.auto_rollback(now, Reason::ApprovalTimeout, Vec::new(), None, out);
                // Blocked by the cooldown: try again when it ends.
                let retry = self
                    .state
                    .cooldown_until
                    .filter(|_| self.state.pending.is_none());
                if let Some(pause) = self.state.rollout.as_mut().and_then(|r| r.pause.as_mut()) {
                    pause.deadline = retry;
                }
            }
            OnTimeout::Continue => {
                out.event(
                    now,
                    EventKind::Resumed {
                        by: PauseKind::Approval,
                    },
                );
                self.next_stage(now, Reason::ApprovalTimeoutContinue, out);
            }
            OnTimeout::Hold => {
                out.escalate(now, Reason::ApprovalTimeoutHold, String::new(), Vec::new())
            }
        }
    }

    fn complete(&mut self, now: Timestamp, out: &mut Out) {
        let Some(r) = self.state.rollout.take() else {
            return;
        };
        let reg = &mut self.state.registry;
        reg.set_stage(&r.version, Lifecycle::Stable);
        reg.validate(&r.version, now, Validator::Rollout);
        out.event(
            now,
            EventKind::VersionValidated {
                version: r.version.clone(),
                by: Validator::Rollout,
            },
        );
        out.event(
            now,
            EventKind::RolloutCompleted {
                version: r.version.clone(),
            },
        );
        // A clean rollout ends a run of rollbacks: the breaker counts consecutive ones.
        self.state.breaker.rollbacks.clear();
        let stable = self.state.registry.aliases.stable.clone();
        self.state.arms.retain(|a| a.version == stable);
        self.reset_gates();
        self.state.analysis_at = self.steady_analysis(now);
    }

    // ------------------------------------------------------------------ actions

    /// Issues an action the caller must execute and acknowledge.
    fn issue(
        &mut self,
        now: Timestamp,
        action: Action,
        reason: Reason,
        mark: Option<Lifecycle>,
        gates: Vec<GateReport>,
        out: &mut Out,
    ) {
        let id = self.state.next_action_id;
        self.state.next_action_id += 1;
        debug_assert!(
            self.state.pending.is_none(),
            "an action would replace a pending one"
        );
        let deadline = later(now, self.config.safety.ack_timeout_ms);
        // Gates pause until the switch is in place; the acknowledgement restarts them.
        self.state.analysis_at = None;
        self.state.pending = Some(Pending {
            id,
            action: action.clone(),
            deadline,
            mark,
        });
        out.decisions.push(Decision {
            at: now,
            action,
            reason,
            action_id: Some(id),
            ack_deadline: Some(deadline),
            detail: String::new(),
            gates,
        });
    }

    fn halt(
        &mut self,
        now: Timestamp,
        reason: Reason,
        retry: Option<Pending>,
        detail: String,
        out: &mut Out,
    ) {
        self.state.halt = Some(Halt { reason, retry });
        out.event(now, EventKind::Halted { reason });
        out.escalate(now, reason, detail, Vec::new());
    }

    /// An automated rollback is due: issue it unless the halt, breaker or cooldown
    /// forbids it, in which case hold and escalate (once per episode).
    fn auto_rollback(
        &mut self,
        now: Timestamp,
        reason: Reason,
        gates: Vec<GateReport>,
        onset: Option<Timestamp>,
        out: &mut Out,
    ) {
        let blocked = if self.state.pending.is_some() {
            return;
        } else if self.state.halt.is_some() {
            Some(Reason::Halted)
        } else if self.state.breaker.open_since.is_some() {
            Some(Reason::BreakerOpen)
        } else if self.state.cooldown_until.is_some_and(|c| c > now) {
            Some(Reason::CooldownActive)
        } else {
            None
        };
        if let Some(why) = blocked {
            out.decide(now, Action::Hold {}, why, gates.clone());
            if self.state.blocked != Some(why) {
                self.state.blocked = Some(why);
                out.escalate(now, why, String::new(), gates);
            }
            return;
        }
        let safety = self.config.safety;
        let since = now.saturating_sub(safety.breaker.window_ms);
        let recent = self
            .state
            .breaker
            .rollbacks
            .iter()
            .filter(|t| **t > since)
            .count() as u32;
        let trips = recent + 1 >= safety.breaker.max_rollbacks;
        let from = self.judged_version();
        let (to, target) = if trips {
            (self.state.registry.golden_target(), TargetKind::Golden)
        } else {
            self.default_target(&from)
        };
        let Some(to) = to.filter(|to| *to != from) else {
            out.decide(
                now,
                Action::Hold {},
                Reason::NoRollbackTarget,
                gates.clone(),
            );
            if self.state.blocked != Some(Reason::NoRollbackTarget) {
                self.state.blocked = Some(Reason::NoRollbackTarget);
                out.escalate(now, Reason::NoRollbackTarget, String::new(), gates);
            }
            return;
        };
        let reason = if trips {
            Reason::BreakerTripped
        } else {
            reason
        };
        let action = Action::Rollback {
            from,
            to,
            target,
            automated: true,
            degradation_started_at: onset,
        };
        self.issue(
            now,
            action,
            reason,
            Some(Lifecycle::Failed),
            gates.clone(),
            out,
        );
        let until = later(now, safety.cooldown_ms);
        self.state.cooldown_until = Some(until);
        out.event(now, EventKind::CooldownStarted { until });
        let rollbacks = &mut self.state.breaker.rollbacks;
        rollbacks.retain(|t| *t > since);
        rollbacks.push(now);
        let keep = safety.breaker.max_rollbacks as usize;
        if rollbacks.len() > keep {
            rollbacks.drain(..rollbacks.len() - keep);
        }
        if trips {
            self.state.breaker.open_since = Some(now);
            out.event(
                now,
                EventKind::BreakerTripped {
                    rollbacks: recent + 1,
                },
            );
        }
        out.escalate(
            now,
            if trips {
                Reason::BreakerTripped
            } else {
                Reason::AutomatedRollback
            },
            String::new(),
            gates,
        );
        self.state.blocked = None;
    }

    /// The version a rollback would take traffic from.
    fn judged_version(&self) -> String {
        match &self.state.rollout {
            Some(r) => r.version.clone(),
            None => self.state.registry.aliases.stable.clone(),
        }
    }

    /// The default rollback target: the stable before promotion, the previous
    /// validated version after it (or without a rollout).
    fn default_target(&self, from: &str) -> (Option<String>, TargetKind) {
        let reg = &self.state.registry;
        match &self.state.rollout {
            Some(r) if r.promoted_at.is_none() => {
                (Some(reg.aliases.stable.clone()), TargetKind::Stable)
            }
            _ => match reg.previous_target(from) {
                Some(previous) => (Some(previous), TargetKind::Previous),
                None => (reg.golden_target(), TargetKind::Golden),
            },
        }
    }

    fn acknowledge(&mut self, now: Timestamp, id: u64, out: &mut Out) -> Result<(), Error> {
        let p = self.take_pending(id)?;
        out.event(now, EventKind::ActionAcknowledged { action_id: id });
        self.state.halt = None;
        match p.action {
            Action::StartShadow { .. } | Action::StartPreview { .. } | Action::SetWeight { .. } => {
                let Some(stage) = self.stage() else {
                    return Ok(());
                };
                let Some(r) = self.state.rollout.as_mut() else {
                    return Ok(());
                };
                let duration = match stage {
                    Stage::Shadow { duration_ms } => {
                        r.phase = Some(Phase::Shadow);
                        duration_ms
                    }
                    Stage::Preview { duration_ms } => {
                        r.phase = Some(Phase::Preview);
                        duration_ms
                    }
                    Stage::Weight {
                        weight,
                        duration_ms,
                        ..
                    } => {
                        r.phase = Some(Phase::Canary);
                        r.weight = weight;
                        duration_ms
                    }
                    _ => 0,
                };
                self.start_timers(now, duration, out);
            }
            Action::Promote { version, from } => {
                let reg = &mut self.state.registry;
                reg.set_stage(&from, Lifecycle::Retired);
                reg.set_stable(&version, Lifecycle::Baking);
                reg.aliases.previous = Some(from.clone());
                reg.aliases.candidate = None;
                out.event(
                    now,
                    EventKind::Promoted {
                        version,
                        previous: from,
                    },
                );
                out.event(now, EventKind::AliasesChanged(reg.aliases.clone()));
                self.reset_gates();
                if let Some(r) = self.state.rollout.as_mut() {
                    r.promoted_at = Some(now);
                    r.weight = 100;
                }
                self.next_stage(now, Reason::StagePassed, out);
            }
            Action::Rollback { from, to, .. } => {
                self.apply_rollback(now, &from, &to, p.mark.unwrap_or(Lifecycle::Failed), out);
            }
            Action::PauseForApproval { .. } | Action::Hold {} | Action::Escalate {} => {}
        }
        Ok(())
    }

    fn take_pending(&mut self, id: u64) -> Result<Pending, Error> {
        match self.state.pending.take() {
            Some(p) if p.id == id => Ok(p),
            other => {
                self.state.pending = other;
                Err(Error::new(
                    ErrorCode::UnknownAction,
                    "action_id",
                    format!("action {id} is not pending"),
                ))
            }
        }
    }

    fn apply_rollback(
        &mut self,
        now: Timestamp,
        from: &str,
        to: &str,
        mark: Lifecycle,
        out: &mut Out,
    ) {
        let reg = &mut self.state.registry;
        let old_stable = reg.aliases.stable.clone();
        reg.set_stage(from, mark);
        if old_stable != to && old_stable != from {
            reg.set_stage(&old_stable, Lifecycle::Retired);
        }
        reg.set_stable(to, Lifecycle::Stable);
        reg.aliases.candidate = None;
        reg.aliases.previous = reg.previous_target(to);
        out.event(
            now,
            EventKind::RolledBack {
                from: from.to_string(),
                to: to.to_string(),
            },
        );
        out.event(now, EventKind::AliasesChanged(reg.aliases.clone()));
        self.state.rollout = None;
        self.state.arms.retain(|a| a.version == to);
        if self.state.arms.is_empty() {
            self.state.arms.push(self.new_arm(to));
        }
        self.reset_gates();
        self.state.analysis_at = self.steady_analysis(now);
    }

    // ------------------------------------------------------------------ commands

    fn command(&mut self, input: &Input, at: Timestamp, out: &mut Out) -> Result<(), Error> {
        let emitted = (out.events.len(), out.decisions.len());
        let kind = match input {
            Input::Ack { action_id, .. } => return self.acknowledge(at, *action_id, out),
            Input::ActionFailed {
                action_id, reason, ..
            } => {
                let p = self.take_pending(*action_id)?;
                out.event(
                    at,
                    EventKind::ActionFailed {
                        action_id: *action_id,
                        reason: reason.clone(),
                    },
                );
                self.halt(at, Reason::ActionFailed, Some(p), reason.clone(), out);
                return Ok(());
            }
            Input::RegisterVersion { version, .. } => {
                version
                    .validate(self.config.limits.label_len_max)
                    .map_err(|e| e.within("version"))?;
                let before: Vec<String> = self
                    .state
                    .registry
                    .versions
                    .iter()
                    .map(|v| v.id.clone())
                    .collect();
                if self
                    .state
                    .registry
                    .register(version, self.config.limits.versions_max)?
                {
                    let evicted = before
                        .into_iter()
                        .find(|id| !self.state.registry.contains(id));
                    out.event(
                        at,
                        EventKind::VersionRegistered {
                            version: version.id.clone(),
                            evicted,
                        },
                    );
                    // Registered as validated: validated by whoever registers it, so it
                    // becomes golden like any operator validation.
                    if version.validated {
                        self.validated_by_operator(&version.id, at, out);
                    }
                    return Ok(());
                }
                "register_version"
            }
            Input::StartRollout { version, .. } => {
                self.no_pending()?;
                self.require_no_rollout()?;
                ensure(
                    self.state.halt.is_none(),
                    ErrorCode::InvalidCommand,
                    "",
                    || "automation is halted; resume or revert first".into(),
                )?;
                ensure(
                    self.state.breaker.open_since.is_none(),
                    ErrorCode::BreakerOpen,
                    "",
                    || "the breaker is open; clear it first".into(),
                )?;
                self.state.registry.require(version, "version")?;
                ensure(
                    *version != self.state.registry.aliases.stable,
                    ErrorCode::InvalidCommand,
                    "version",
                    || format!("{version:?} is already stable"),
                )?;
                self.begin_rollout(version, at, out);
                self.enter_stage(at, None, out);
                "start_rollout"
            }
            Input::Pause { .. } => {
                let r = self.require_rollout()?;
                ensure(r.pause.is_none(), ErrorCode::InvalidCommand, "", || {
                    "already paused".into()
                })?;
                let Some(r) = self.state.rollout.as_mut() else {
                    return Ok(());
                };
                let remaining_ms = r.stage_ends_at.take().map(|e| e.saturating_sub(at));
                r.pause = Some(Pause {
                    kind: PauseKind::Operator,
                    since: at,
                    deadline: None,
                    remaining_ms,
                });
                out.event(
                    at,
                    EventKind::Paused {
                        by: PauseKind::Operator,
                    },
                );
                "pause"
            }
            Input::Resume { .. } => {
                self.resume(at, out)?;
                "resume"
            }
            Input::Abort { .. } => {
                self.no_pending()?;
                self.require_rollout()?;
                let from = self.judged_version();
                let (to, target) = self.default_target(&from);
                let to = to.filter(|t| *t != from).ok_or_else(|| {
                    Error::new(
                        ErrorCode::InvalidRollbackTarget,
                        "",
                        "no validated version to go back to",
                    )
                })?;
                self.operator_rollback(at, from, (to, target), Reason::OperatorAbort, out);
                return Ok(());
            }
            Input::RevertNow {
                target, version, ..
            } => {
                self.no_pending()?;
                let from = self.judged_version();
                let (to, target) = self.revert_target(&from, *target, version.as_deref())?;
                self.operator_rollback(at, from, (to, target), Reason::OperatorRevert, out);
                return Ok(());
            }
            Input::ForcePromote { .. } => {
                self.no_pending()?;
                ensure(
                    self.require_rollout()?.promoted_at.is_none(),
                    ErrorCode::InvalidCommand,
                    "",
                    || "the candidate is already promoted".into(),
                )?;
                out.event(
                    at,
                    EventKind::CommandAccepted {
                        command: "force_promote".into(),
                    },
                );
                self.state.halt = None;
                let promote = self.plan.promote_index();
                if let Some(r) = self.state.rollout.as_mut() {
                    r.stage = promote;
                    r.pause = None;
                    r.stage_ends_at = None;
                }
                self.enter_stage(at, Some(Reason::OperatorForcePromote), out);
                return Ok(());
            }
            Input::MarkValidated { version, .. } => {
                self.state.registry.require(version, "version")?;
                self.validated_by_operator(version, at, out);
                return Ok(());
            }
            Input::ClearBreaker { .. } => {
                ensure(
                    self.state.breaker.open_since.is_some(),
                    ErrorCode::InvalidCommand,
                    "",
                    || "the breaker is not open".into(),
                )?;
                self.state.breaker = Breaker::default();
                self.state.blocked = None;
                out.event(at, EventKind::BreakerCleared {});
                return Ok(());
            }
            Input::Observe(_) | Input::ObserveBatch { .. } | Input::Tick { .. } => return Ok(()),
        };
        // Commands that emitted nothing of their own still show up in the trace.
        if (out.events.len(), out.decisions.len()) == emitted {
            out.event(
                at,
                EventKind::CommandAccepted {
                    command: kind.into(),
                },
            );
        }
        Ok(())
    }

    /// Issues a rollback an operator asked for (`abort` or `revert_now`): it skips gates,
    /// cooldown and breaker, ends a halt, and counts as no automated rollback.
    fn operator_rollback(
        &mut self,
        at: Timestamp,
        from: String,
        (to, target): (String, TargetKind),
        reason: Reason,
        out: &mut Out,
    ) {
        let (command, mark) = match reason {
            Reason::OperatorAbort => ("abort", Lifecycle::Aborted),
            _ => ("revert_now", Lifecycle::Failed),
        };
        out.event(
            at,
            EventKind::CommandAccepted {
                command: command.into(),
            },
        );
        self.state.halt = None;
        let action = Action::Rollback {
            from,
            to,
            target,
            automated: false,
            degradation_started_at: None,
        };
        self.issue(at, action, reason, Some(mark), Vec::new(), out);
    }

    fn validated_by_operator(&mut self, version: &str, at: Timestamp, out: &mut Out) {
        self.state
            .registry
            .validate(version, at, Validator::Operator);
        let by = Validator::Operator;
        out.event(
            at,
            EventKind::VersionValidated {
                version: version.to_string(),
                by,
            },
        );
        out.event(
            at,
            EventKind::AliasesChanged(self.state.registry.aliases.clone()),
        );
    }

    fn no_pending(&self) -> Result<(), Error> {
        match &self.state.pending {
            Some(p) => Err(Error::new(
                ErrorCode::ActionPending,
                "",
                format!("action {} is waiting for its acknowledgement", p.id),
            )),
            None => Ok(()),
        }
    }

    fn require_rollout(&self) -> Result<&Rollout, Error> {
        self.state
            .rollout
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidCommand, "", "no rollout is in progress"))
    }

    fn require_no_rollout(&self) -> Result<(), Error> {
        match &self.state.rollout {
            Some(r) => Err(Error::new(
                ErrorCode::InvalidCommand,
                "",
                format!("a rollout of {:?} is in progress", r.version),
            )),
            None => Ok(()),
        }
    }

    fn resume(&mut self, at: Timestamp, out: &mut Out) -> Result<(), Error> {
        if let Some(halt) = self.state.halt.take() {
            out.event(
                at,
                EventKind::CommandAccepted {
                    command: "resume".into(),
                },
            );
            if let Some(p) = halt.retry {
                self.issue(at, p.action, Reason::OperatorRetry, p.mark, Vec::new(), out);
            }
            return Ok(());
        }
        let r = self.require_rollout()?;
        let Some(pause) = r.pause.clone() else {
            return Err(Error::new(
                ErrorCode::InvalidCommand,
                "",
                "nothing is paused or halted",
            ));
        };
        if pause.kind == PauseKind::Approval {
            // Approving moves the rollout on, which must wait for a pending rollback.
            self.no_pending()?;
        }
        out.event(at, EventKind::Resumed { by: pause.kind });
        match pause.kind {
            PauseKind::Approval => self.next_stage(at, Reason::ApprovalGranted, out),
            PauseKind::Operator => {
                if let Some(r) = self.state.rollout.as_mut() {
                    r.pause = None;
                    r.stage_ends_at = pause.remaining_ms.map(|ms| later(at, ms));
                }
                self.stage_end(at, out);
            }
        }
        Ok(())
    }

    fn revert_target(
        &self,
        from: &str,
        target: Option<TargetKind>,
        version: Option<&str>,
    ) -> Result<(String, TargetKind), Error> {
        let reg = &self.state.registry;
        let pre_promotion = self
            .state
            .rollout
            .as_ref()
            .is_some_and(|r| r.promoted_at.is_none());
        let target = match (target, version) {
            (None | Some(TargetKind::Version), Some(_)) => TargetKind::Version,
            (Some(TargetKind::Version), None) => {
                return Err(Error::new(
                    ErrorCode::InvalidCommand,
                    "version",
                    "target \"version\" needs a version",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorCode::InvalidCommand,
                    "version",
                    "a version goes with target \"version\" only",
                ));
            }
            (Some(t), None) => t,
            (None, None) if pre_promotion => TargetKind::Stable,
            (None, None) => TargetKind::Previous,
        };
        let to = match target {
            TargetKind::Stable => {
                ensure(pre_promotion, ErrorCode::InvalidCommand, "target", || {
                    "target \"stable\" needs a rollout before promotion".into()
                })?;
                Some(reg.aliases.stable.clone())
            }
            TargetKind::Previous => reg.previous_target(from),
            TargetKind::Golden => Some(reg.aliases.golden.clone()),
            TargetKind::Version => Some(version.unwrap_or_default().to_string()),
        };
        let to = to.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidRollbackTarget,
                "target",
                "no validated version to go back to",
            )
        })?;
        let v = reg.require(
            &to,
            if target == TargetKind::Version {
                "version"
            } else {
                "target"
            },
        )?;
        ensure(
            v.is_target(),
            ErrorCode::InvalidRollbackTarget,
            "version",
            || format!("{to:?} is failed or not validated"),
        )?;
        ensure(
            to != from,
            ErrorCode::InvalidRollbackTarget,
            "target",
            || format!("{to:?} is already serving"),
        )?;
        Ok((to, target))
    }
}

/// Columns of one batch must have the same length.
fn same_length(rows: usize, len: usize, column: &str) -> Result<(), Error> {
    ensure(rows == len, ErrorCode::InvalidValue, column, || {
        format!("{len} {column} for {rows} times")
    })
}

/// Points a per-sample error at its row of a column (`value` → `value[3]`); errors about
/// the whole column (`arm`, `metric`) keep their path.
fn row(mut e: Error, i: usize) -> Error {
    if !matches!(e.path.as_str(), "arm" | "metric") {
        e.path = format!("{}[{i}]", e.path);
    }
    e
}

fn check(cond: bool, what: &'static str) -> Result<(), &'static str> {
    if cond { Ok(()) } else { Err(what) }
}
