//! [`Policy`]: versions, windows, gates, the rollout machine, cooldown, breaker and
//! the reversion protocol, composed into one deterministic state machine.
//!
//! This file holds the state and the public API; the behaviour is split by concern:
//! `inputs` (validating and recording), `columns` (samples as arrays, with label
//! columns), `timers` (what fires when), `analysis` (gate evaluation), `rollout`
//! (stages), `actions` (issuing and acknowledging, automated rollbacks), `environment`
//! (holding instead of rolling back when the stable version is degraded too), `ladder`
//! (the graduated response to gates tripped in scopes), `gradual`
//! (stepping the weight down instead of rolling back at once),
//! `commands` (operator inputs) and `validate` (the state's invariants).

mod actions;
mod analysis;
mod assignment;
mod columns;
mod commands;
mod compensation;
mod environment;
#[cfg(test)]
mod footprint_tests;
mod gradual;
#[cfg(test)]
mod gradual_tests;
mod inputs;
mod ladder;
#[cfg(test)]
mod observe_tests;
mod rollout;
mod scopes;
mod timers;
mod undo;
mod validate;

use serde::{Deserialize, Serialize};

pub use assignment::{AssignReason, Assignment, RoutingMode, RoutingTable, WeightChange};
pub use columns::{LabelCodes, LabelColumn, Labels};
pub use gradual::GradualRollbackStatus;
pub(crate) use undo::Applied;

use crate::config::limits::{ANALYSIS_CATCHUP_MAX, VALUE_ABS_MAX};
use crate::config::{
    GateConfig, OnTimeout, Phase, PolicyConfig, RollbackTo, Rule, check_label, check_text,
};
use crate::detect::{Detector, Readings, Role, Side};
use crate::error::{Error, ErrorCode, ensure};
use crate::gate::{GateState, Transition};
use crate::input::{Input, Sample, TargetKind};
use crate::machines::Timer;
use crate::machines::ack::{Halt, Pending};
use crate::machines::approval::Pause;
use crate::machines::breaker::Breaker;
use crate::machines::cooldown::Cooldown;
use crate::output::{
    Action, Decision, Event, EventKind, GateReport, PauseKind, Reason, Step, Verdict,
};
use crate::plan::{Plan, Stage};
use crate::registry::{Aliases, Registry, Stage as Lifecycle, Validator};
use crate::snapshot::Snapshot;
use crate::stats::window::{Reading, Window};
use crate::time::{TIME_MAX, Timestamp, check_time, later};
pub(crate) use compensation::Effect;

/// Windows of one live version: one per metric, in config order (`W` is
/// `Vec<Window>`); a snapshot keys them by metric name (see [`crate::snapshot`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArmOf<W> {
    pub(crate) version: String,
    pub(crate) windows: W,
    /// Per scope id (see [`crate::scope`]), the windows of the arm's samples in that
    /// scope: `None` for a scope with no sample on this arm since it went live.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub(crate) scoped: Vec<Option<W>>,
}

/// An arm as the policy holds it.
pub(crate) type Arm = ArmOf<Vec<Window>>;

/// The rollout in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The traffic assignment's salt: `salt_for(config name, version, started_at)`. A
    /// snapshot written before assignment has none; restore derives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<crate::assign::Salt>,
    /// The acknowledged weight changes, in time order, for session pins: at most one per
    /// weight stage of the strategy, and with a gradual rollback one per step and one
    /// more for the stage entered again after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    weights: Vec<WeightChange>,
    /// The graduated-response ladder's progress (`scopes.ladder`; see `ladder`).
    #[serde(default, skip_serializing_if = "ladder::Ladder::is_idle")]
    ladder: ladder::Ladder,
    /// A gradual rollback under way, or stopped at a weight (config
    /// `safety.gradual_rollback`; see `gradual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gradual: Option<gradual::Gradual>,
    /// This rollout had its gradual rollback and carried on after it: the next gate
    /// failure rolls back at once.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    gradual_spent: bool,
}

/// Everything that changes, with the gates' states (`G`) and each arm's windows (`W`)
/// in config order as the policy holds them ([`State`]), or keyed by name as a
/// [`Snapshot`] writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateOf<G, W> {
    now: Timestamp,
    registry: Registry,
    pub(crate) arms: Vec<ArmOf<W>>,
    pub(crate) gates: G,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    halt: Option<Halt>,
    #[serde(default, skip_serializing_if = "Cooldown::is_none")]
    cooldown_until: Cooldown,
    breaker: Breaker,
    /// Next gate evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    analysis_at: Option<Timestamp>,
    /// The reason automation is currently blocked from acting, so that it escalates
    /// once per episode rather than at every evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<Reason>,
    /// While holding for the environment (`blocked` is `environment_suspected`): the
    /// evaluations in a row at which the stable version no longer failed a tripped gate
    /// that the candidate still fails (see `environment`).
    #[serde(default, skip_serializing_if = "environment::is_zero")]
    environment_clear: u32,
    next_action_id: u64,
    /// The config's candidate, until its rollout starts at the first input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kickoff: Option<String>,
    /// Recorded side effects, in recording order (see `compensation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    effects: Vec<Effect>,
    /// The scopes seen, in the order of their ids, with their gates' states (see
    /// `scopes`).
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub(crate) scopes: Vec<ScopeOf<G>>,
}

/// One scope: its key and its gates' states (`G`, as [`StateOf`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeOf<G> {
    pub(crate) key: crate::scope::ScopeKey,
    /// The scope's tier: its key's, or the `tier` label of the sample that created it
    /// (it picks the tier's overrides, `scopes.tiers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tier: Option<String>,
    pub(crate) gates: G,
    /// Routed back to the stable version by the ladder's `route_back` rung, until the
    /// rollout ends or the candidate is promoted: its samples are ignored and its
    /// gates (kept fresh) not judged. A flag on the scope rather than a list of keys in
    /// the rollout, so that every sample checks it by id.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub(crate) routed_back: bool,
}

/// The state as the policy holds it.
pub(crate) type State = StateOf<Vec<GateState>, Vec<Window>>;

impl<G, W> StateOf<G, W> {
    /// The same state with the gates' states and the arms' windows converted (to and
    /// from their keyed form in snapshots); the first error of `windows` names its arm.
    pub(crate) fn map<G2, W2, E>(
        self,
        mut gates: impl FnMut(Option<usize>, G) -> Result<G2, E>,
        mut windows: impl FnMut(usize, Option<usize>, W) -> Result<W2, E>,
    ) -> Result<StateOf<G2, W2>, E> {
        let arms = self
            .arms
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let scoped = a
                    .scoped
                    .into_iter()
                    .enumerate()
                    .map(|(s, w)| w.map(|w| windows(i, Some(s), w)).transpose())
                    .collect::<Result<Vec<_>, E>>()?;
                Ok(ArmOf {
                    version: a.version,
                    windows: windows(i, None, a.windows)?,
                    scoped,
                })
            })
            .collect::<Result<Vec<_>, E>>()?;
        let scopes = self
            .scopes
            .into_iter()
            .enumerate()
            .map(|(s, sc)| {
                Ok(ScopeOf {
                    key: sc.key,
                    tier: sc.tier,
                    gates: gates(Some(s), sc.gates)?,
                    routed_back: sc.routed_back,
                })
            })
            .collect::<Result<Vec<_>, E>>()?;
        Ok(StateOf {
            now: self.now,
            registry: self.registry,
            arms,
            gates: gates(None, self.gates)?,
            rollout: self.rollout,
            pending: self.pending,
            halt: self.halt,
            cooldown_until: self.cooldown_until,
            breaker: self.breaker,
            analysis_at: self.analysis_at,
            blocked: self.blocked,
            environment_clear: self.environment_clear,
            next_action_id: self.next_action_id,
            kickoff: self.kickoff,
            effects: self.effects,
            scopes,
        })
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
    /// Side effects held (`record_effect`): recorded, and neither compensated nor
    /// committed yet, the ones waiting to be compensated included. Absent from the JSON
    /// when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub effects_held: u32,
    /// Of those, the ones a rollback marked for compensation that are not acknowledged
    /// yet (the one whose `compensate` is pending included). Absent from the JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub compensations_waiting: u32,
    /// The ladder's `pause_onboarding` rung holds: tenants new to the candidate are not
    /// sent to it. Absent from the JSON when false.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub onboarding_paused: bool,
    /// The scopes the ladder's `route_back` rung sent back to the stable version, in key
    /// order. Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routed_back: Vec<crate::scope::ScopeKey>,
    /// The ladder's `freeze` rung holds: the weight stays and the stage timers are
    /// stopped until `resume`. Absent from the JSON when false.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub frozen: bool,
    /// A gradual rollback under way or stopped (config `safety.gradual_rollback`);
    /// absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradual_rollback: Option<GradualRollbackStatus>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Decisions and events collected during one input, and the arms it dropped (kept
/// until the input is done, so that a refused command can put them back).
#[derive(Default)]
struct Out {
    decisions: Vec<Decision>,
    events: Vec<Event>,
    dropped_arms: Vec<Arm>,
}

impl Out {
    fn event(&mut self, at: Timestamp, kind: EventKind) {
        self.events.push(Event { at, kind });
    }

    /// A decision the caller need not acknowledge.
    fn decide(&mut self, at: Timestamp, action: Action, reason: Reason, gates: Vec<GateReport>) {
        self.notify(at, action, reason, String::new(), gates);
    }

    fn escalate(&mut self, at: Timestamp, reason: Reason, detail: String, gates: Vec<GateReport>) {
        self.notify(at, Action::Escalate {}, reason, detail, gates);
    }

    fn notify(
        &mut self,
        at: Timestamp,
        action: Action,
        reason: Reason,
        detail: String,
        gates: Vec<GateReport>,
    ) {
        let (action_id, ack_deadline) = (None, None);
        let d = Decision {
            at,
            action,
            reason,
            action_id,
            ack_deadline,
            detail,
            gates,
        };
        self.decisions.push(d);
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
    /// Scope ids by key: the index of `state.scopes`, derived from it.
    scope_ids: std::collections::BTreeMap<crate::scope::ScopeKey, u32>,
    /// Scope ids of the last scope column's categories, derived from `scope_ids`.
    columns: columns::CategoryCache,
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
                gates: plan.fresh.iter().map(GateState::new).collect(),
                rollout: None,
                pending: None,
                halt: None,
                cooldown_until: Cooldown::default(),
                breaker: Breaker::default(),
                analysis_at: None,
                blocked: None,
                environment_clear: 0,
                next_action_id: 1,
                kickoff: None,
                effects: Vec::new(),
                scopes: Vec::new(),
            },
            plan,
            config,
            scope_ids: Default::default(),
            columns: Default::default(),
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

    /// The window of `metric` for a live `version` (none for a version that is not).
    fn window(&self, version: &str, metric: usize) -> Option<&Window> {
        self.window_in(version, None, metric)
    }

    /// The window of `metric` for a live `version`, overall or in a scope (none for a
    /// version that is not live or a scope it has no samples in).
    fn window_in(&self, version: &str, scope: Option<u32>, metric: usize) -> Option<&Window> {
        self.window_at(self.arm_of(version), scope, metric)
    }

    /// The index of the live arm of `version`, if it is live.
    fn arm_of(&self, version: &str) -> Option<usize> {
        self.state.arms.iter().position(|a| a.version == version)
    }

    /// [`Policy::window_in`] for the live arm at index `arm` (found once for many
    /// reads: a scoped analysis reads thousands of windows).
    fn window_at(&self, arm: Option<usize>, scope: Option<u32>, metric: usize) -> Option<&Window> {
        let arm = self.state.arms.get(arm?)?;
        match scope {
            None => arm.windows.get(metric),
            Some(s) => arm.scoped.get(s as usize)?.as_ref()?.get(metric),
        }
    }

    fn window_mut(&mut self, version: &str, metric: usize) -> Option<&mut Window> {
        let arm = self.state.arms.iter_mut().find(|a| a.version == version)?;
        arm.windows.get_mut(metric)
    }

    /// The config.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The policy's current time: the latest input's.
    pub fn now(&self) -> Timestamp {
        self.state.now
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
            breaker_open: s.breaker.is_open(),
            cooldown_until: s.cooldown_until.until(),
            tripped_gates: self
                .config
                .gates
                .iter()
                .zip(&s.gates)
                .filter(|(_, g)| g.tripped())
                .map(|(c, _)| c.name.clone())
                .collect(),
            effects_held: s.effects.len() as u32,
            compensations_waiting: s.effects.iter().filter(|e| e.compensating).count() as u32,
            onboarding_paused: r.is_some_and(|r| r.ladder.onboarding_paused),
            routed_back: self.routed_back(),
            frozen: r.is_some_and(|r| r.ladder.frozen.is_some()),
            gradual_rollback: r
                .and_then(|r| r.gradual.as_ref())
                .zip(self.config.safety.gradual_rollback.as_ref())
                .map(|(g, cfg)| g.status(cfg)),
        }
    }

    /// The registered versions.
    pub fn versions(&self) -> &[crate::registry::Version] {
        &self.state.registry.versions
    }

    /// A snapshot of the whole state, in the current snapshot format.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.config, self.state.clone())
    }

    /// Recreates a policy from a snapshot; it continues exactly as the original would.
    ///
    /// # Errors
    /// `unsupported_format_version` for a snapshot format this build does not read, a
    /// config error (at `config....`), or `snapshot_corrupt` when the state does not fit
    /// the config, with the offending field's path in the snapshot's own format.
    pub fn restore(snapshot: Snapshot) -> Result<Self, Error> {
        let format = snapshot.format_version;
        snapshot.config.validate().map_err(|e| e.within("config"))?;
        let (config, mut state) = snapshot.into_parts()?;
        if let Some(r) = state.rollout.as_mut() {
            r.fill_assignment(&config.name);
        }
        let plan = Plan::new(&config);
        // Windows of their metric's kind; an arm's overall windows (the first of each
        // arm) keep dense bins, scopes' stay sparse while small.
        for arm in &mut state.arms {
            let scoped = arm.scoped.iter_mut().flatten();
            for (k, ws) in std::iter::once(&mut arm.windows).chain(scoped).enumerate() {
                for (w, shape) in ws.iter_mut().zip(&plan.shapes) {
                    w.fit(shape.kind);
                    if k == 0 {
                        w.keep_dense();
                    }
                }
            }
        }
        let scope_ids = state
            .scopes
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), i as u32))
            .collect();
        let policy = Self {
            plan,
            config,
            state,
            scope_ids,
            columns: Default::default(),
        };
        policy.validate().map_err(|e| Error {
            path: crate::snapshot::path_in_format(e.path, format, &policy.config),
            ..e
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
