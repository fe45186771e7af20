//! Gradual rollback (config `safety.gradual_rollback`, issue 10 item 3): when gates
//! trip during a live canary, step the candidate's weight down with a bake per step
//! instead of switching all traffic back at once.
//!
//! The episode, on the rollout's `gradual` field:
//!
//! 1. An automated gate-failure rollback of a live canary (phase `canary`, before
//!    promotion) whose weight is above a configured step, that would be issued now (no
//!    pending action, halt, open breaker or cooldown) and would not trip the breaker,
//!    becomes a `set_weight` to the first step below the weight (reason
//!    `gradual_rollback`, detail `gradual rollback, step i of n`), and one escalation.
//!    The stage's timer stops and an approval pause in effect is dropped: the rollout
//!    never advances while rolling back.
//! 2. The step's acknowledgement sets the weight and starts its bake
//!    (`gradual_step_started`); analysis runs as in any stage.
//! 3. A gate tripping during the bake that was not tripped when the episode began
//!    (overall, or in any scope for a gate tripped in none) rolls back fully at once.
//! 4. At the bake's end, a gate still tripped (overall or in a scope) takes the next
//!    step, or after the last one rolls back fully (`gate_failed`, the episode's
//!    onset kept). No gate tripped: the rollout stops at the weight and pauses for
//!    approval; `resume` (or an approval timeout set to `continue`) enters the current
//!    stage again, an approval timeout set to `rollback` rolls back.
//! 5. One episode per rollout: once resumed from, the next gate failure rolls back at
//!    once (it keeps failing), which also bounds the weight history of session pins.
//!
//! `action_failed` on a step rolls back fully; an ack timeout halts as for any action.

use super::*;
use crate::config::GradualRollbackConfig;

/// A gradual rollback under way, or stopped at a weight with gates passing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Gradual {
    /// The candidate's weight when it began.
    pub(super) from_weight: u32,
    /// Index into `safety.gradual_rollback.steps` of the step in effect, or of the one
    /// whose `set_weight` waits for its acknowledgement.
    pub(super) step: u32,
    /// When the step's bake ends: `None` while its `set_weight` is pending, while an
    /// operator pause holds the bake (its `remaining_ms` keeps it), and once stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) bake_ends_at: Option<Timestamp>,
    /// The gates tripped overall when it began, by name, in config order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tripped: Vec<String>,
    /// The gates tripped only in scopes when it began, by name, in config order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tripped_in_scopes: Vec<String>,
    /// When the degradation began, as the immediate rollback would have said: the full
    /// rollback keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) onset: Option<Timestamp>,
    /// No gate was tripped at a bake's end: the rollout stopped at the step's weight
    /// and waits for approval.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub(super) stopped: bool,
}

/// A gradual rollback as [`Policy::status`](crate::Policy::status) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GradualRollbackStatus {
    /// The step in effect, or whose `set_weight` waits for its acknowledgement, from 1.
    pub step: u32,
    /// The steps below the weight it began at.
    pub steps: u32,
    /// The candidate's weight when it began.
    pub from_weight: u32,
    /// The step's weight.
    pub weight: u32,
    /// When the step's bake ends (absent while its `set_weight` is pending, while an
    /// operator pause holds it, and once stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_ends_at: Option<Timestamp>,
    /// Stopped at the step's weight with gates passing, waiting for approval.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub stopped: bool,
}

impl Gradual {
    /// The status of this rollback under `cfg`.
    pub(super) fn status(&self, cfg: &GradualRollbackConfig) -> GradualRollbackStatus {
        let (step, steps) = self.position(cfg);
        GradualRollbackStatus {
            step,
            steps,
            from_weight: self.from_weight,
            weight: cfg.steps.get(self.step as usize).copied().unwrap_or(0),
            bake_ends_at: self.bake_ends_at,
            stopped: self.stopped,
        }
    }

    /// "step i of n", counting only the steps below the weight it began at.
    fn position(&self, cfg: &GradualRollbackConfig) -> (u32, u32) {
        let first = first_below(cfg, self.from_weight).unwrap_or(0);
        let n = cfg.steps.len() as u32 - first;
        (self.step.saturating_sub(first) + 1, n)
    }
}

/// The index of the first step below `weight`.
pub(super) fn first_below(cfg: &GradualRollbackConfig, weight: u32) -> Option<u32> {
    cfg.steps.iter().position(|&w| w < weight).map(|i| i as u32)
}

impl Policy {
    /// Gates tripped and the rollback is due (the last word of [`Policy::analyse`]):
    /// start a gradual rollback where it applies, else roll back as always.
    pub(super) fn gate_rollback(
        &mut self,
        now: Timestamp,
        tripped: Vec<GateReport>,
        onset: Option<Timestamp>,
        out: &mut Out,
    ) {
        match self.gradual_first_step(now) {
            Some(first) => self.start_gradual(now, first, tripped, onset, out),
            None => self.auto_rollback(now, Reason::GateFailed, tripped, onset, out),
        }
    }

    /// The first step of a gradual rollback that applies now, if one does.
    fn gradual_first_step(&self, now: Timestamp) -> Option<u32> {
        let cfg = self.config.safety.gradual_rollback.as_ref()?;
        let s = &self.state;
        let r = s.rollout.as_ref()?;
        let immediate = s.pending.is_some()
            || s.halt.is_some()
            || s.breaker.is_open()
            || s.cooldown_until.active(now)
            || s.breaker.trips_at(now, &self.config.safety.breaker)
            || r.gradual.is_some()
            || r.gradual_spent
            || r.promoted_at.is_some()
            || r.phase != Some(Phase::Canary);
        if immediate {
            return None;
        }
        first_below(cfg, r.weight)
    }

    fn start_gradual(
        &mut self,
        now: Timestamp,
        first: u32,
        tripped: Vec<GateReport>,
        onset: Option<Timestamp>,
        out: &mut Out,
    ) {
        let names = |scoped: bool| -> Vec<String> {
            let overall: Vec<&str> = tripped
                .iter()
                .filter(|r| r.scope.is_none())
                .map(|r| r.gate.as_str())
                .collect();
            self.config
                .gates
                .iter()
                .map(|g| g.name.as_str())
                .filter(|name| {
                    let here = tripped
                        .iter()
                        .any(|r| r.gate == *name && r.scope.is_some() == scoped);
                    here && !(scoped && overall.contains(name))
                })
                .map(str::to_string)
                .collect()
        };
        let (overall, in_scopes) = (names(false), names(true));
        let step = self.weight_step();
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        // The stage's timer stops; the stage is entered again if the rollback stops.
        r.stage_ends_at = None;
        r.stage_done = false;
        match &mut r.pause {
            // An approval waited for is superseded: entering the stage again asks again.
            Some(p) if p.kind == PauseKind::Approval => r.pause = None,
            Some(p) => p.remaining_ms = None,
            None => {}
        }
        let g = Gradual {
            from_weight: r.weight,
            step: first,
            bake_ends_at: None,
            tripped: overall,
            tripped_in_scopes: in_scopes,
            onset,
            stopped: false,
        };
        let from_weight = g.from_weight;
        r.gradual = Some(g);
        let version = r.version.clone();
        self.state.blocked = None;
        let Some(cfg) = self.config.safety.gradual_rollback.clone() else {
            return;
        };
        let weight = cfg.steps[first as usize];
        let action = Action::SetWeight {
            version,
            weight,
            step,
        };
        self.issue(
            now,
            action,
            Reason::GradualRollback,
            None,
            tripped.clone(),
            out,
        );
        let n = cfg.steps.len() as u32 - first;
        set_detail(out, format!("gradual rollback, step 1 of {n}"));
        let steps: Vec<String> = cfg.steps[first as usize..]
            .iter()
            .map(|w| format!("{w}%"))
            .collect();
        let mut detail = format!(
            "gradual rollback from {from_weight}% through {}, {} ms per step",
            steps.join(", "),
            cfg.bake_ms
        );
        let scopes = Self::scope_names(&tripped);
        if !scopes.is_empty() {
            detail = format!("{detail}; {scopes}");
        }
        out.escalate(now, Reason::GradualRollback, detail, tripped);
    }

    /// The strategy step of the weight in effect: that of the current stage, or of the
    /// last weight stage before it (at an approval step).
    fn weight_step(&self) -> u32 {
        let stage = self.state.rollout.as_ref().map_or(0, |r| r.stage as usize);
        self.plan
            .stages
            .iter()
            .take(stage + 1)
            .rev()
            .find_map(|s| match s {
                Stage::Weight { step, .. } => Some(*step),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// A gradual rollback is stepping (not stopped).
    pub(super) fn gradual_stepping(&self) -> bool {
        self.gradual().is_some_and(|g| !g.stopped)
    }

    /// The rollout's gradual rollback, under way or stopped.
    pub(super) fn gradual(&self) -> Option<&Gradual> {
        self.state.rollout.as_ref()?.gradual.as_ref()
    }

    /// Stopped at a weight with gates passing, waiting for approval.
    pub(super) fn gradual_stopped(&self) -> bool {
        self.gradual().is_some_and(|g| g.stopped)
    }

    /// An evaluation while stepping: a gate tripped that was not when the rollback
    /// began rolls back fully now; anything else waits for the bake's end. Returns
    /// whether it handled the evaluation (the caller then does nothing more).
    pub(super) fn gradual_analysis(
        &mut self,
        now: Timestamp,
        tripped: &[GateReport],
        out: &mut Out,
    ) -> bool {
        let Some(g) = self.gradual().filter(|g| !g.stopped) else {
            return false;
        };
        let known = |r: &GateReport| {
            g.tripped.contains(&r.gate)
                || (r.scope.is_some() && g.tripped_in_scopes.contains(&r.gate))
        };
        let mut new: Vec<String> = Vec::new();
        for r in tripped.iter().filter(|r| !known(r)) {
            let name = match &r.scope {
                Some(k) => format!("{} in scope {}", r.gate, k.label()),
                None => r.gate.clone(),
            };
            if !new.contains(&name) {
                new.push(name);
            }
        }
        if new.is_empty() {
            return true;
        }
        let Some(cfg) = self.config.safety.gradual_rollback.as_ref() else {
            return true;
        };
        let (i, n) = g.position(cfg);
        let detail = format!(
            "gradual rollback: {} tripped during step {i} of {n}; rolling back fully",
            new.join(", ")
        );
        self.gradual_full_rollback(now, Reason::GateFailed, tripped.to_vec(), detail, out);
        true
    }

    /// Issues the full rollback that ends a gradual one, with the episode's onset.
    fn gradual_full_rollback(
        &mut self,
        now: Timestamp,
        reason: Reason,
        gates: Vec<GateReport>,
        detail: String,
        out: &mut Out,
    ) {
        let onset = self.gradual().and_then(|g| g.onset);
        let first = out.decisions.len();
        self.auto_rollback(now, reason, gates, onset, out);
        if let Some(d) = out.decisions[first..]
            .iter_mut()
            .find(|d| matches!(d.action, Action::Rollback { .. }))
        {
            d.detail = detail;
        }
    }

    /// A step's `set_weight` is acknowledged: the weight is in place and its bake starts
    /// (frozen if an operator paused meanwhile).
    pub(super) fn gradual_acked(&mut self, now: Timestamp, weight: u32, out: &mut Out) {
        let Some(cfg) = self.config.safety.gradual_rollback.clone() else {
            return;
        };
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.weight = weight;
        r.record_weight(now);
        let ends_at = later(now, cfg.bake_ms);
        let bake_ends_at = match r.pause.as_mut() {
            Some(p) if p.kind == PauseKind::Operator => {
                p.remaining_ms = Some(cfg.bake_ms);
                None
            }
            _ => Some(ends_at),
        };
        let Some(g) = r.gradual.as_mut() else {
            return;
        };
        g.bake_ends_at = bake_ends_at;
        let (step, steps) = g.position(&cfg);
        out.event(
            now,
            EventKind::GradualStepStarted {
                step,
                steps,
                weight,
                ends_at: bake_ends_at,
            },
        );
        let analysed = self
            .config
            .gates
            .iter()
            .any(|g| g.phases.contains(&Phase::Canary));
        self.state.analysis_at = analysed.then(|| self.plan.next_evaluation(now)).flatten();
    }

    /// A step's bake is over: a gate still tripped takes the next step down (or after
    /// the last, the full rollback); none tripped stops the rollback and pauses.
    pub(super) fn gradual_bake_end(&mut self, now: Timestamp, out: &mut Out) {
        let Some(cfg) = self.config.safety.gradual_rollback.clone() else {
            return;
        };
        let failing = self.canary_gates_tripped();
        let step = self.weight_step();
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        let Some(g) = r.gradual.as_mut() else {
            return;
        };
        g.bake_ends_at = None;
        let (i, n) = g.position(&cfg);
        let weight = r.weight;
        if !failing {
            g.stopped = true;
            self.pause_for_approval(now, Reason::GradualRollback, out);
            set_detail(
                out,
                format!("gradual rollback stopped: gates passing at {weight}%"),
            );
            return;
        }
        if i >= n {
            let detail = format!(
                "gradual rollback: gates still tripped after step {n} of {n} at {weight}%; rolling back fully"
            );
            self.gradual_full_rollback(now, Reason::GateFailed, Vec::new(), detail, out);
            return;
        }
        g.step += 1;
        let version = r.version.clone();
        let next = cfg.steps[g.step as usize];
        let action = Action::SetWeight {
            version,
            weight: next,
            step,
        };
        self.issue(now, action, Reason::GradualRollback, None, Vec::new(), out);
        set_detail(out, format!("gradual rollback, step {} of {n}", i + 1));
    }

    /// Whether a gate that acts in the canary phase is tripped, overall or in a scope.
    fn canary_gates_tripped(&self) -> bool {
        let s = &self.state;
        let live: Vec<usize> = self
            .config
            .gates
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.dry_run && c.phases.contains(&Phase::Canary))
            .map(|(i, _)| i)
            .collect();
        core::iter::once(&s.gates)
            .chain(s.scopes.iter().map(|sc| &sc.gates))
            .any(|gates| live.iter().any(|&i| gates[i].tripped()))
    }

    /// The caller could not set a step's weight: roll back fully.
    pub(super) fn gradual_action_failed(&mut self, now: Timestamp, weight: u32, out: &mut Out) {
        let detail =
            format!("gradual rollback: set_weight to {weight}% failed; rolling back fully");
        self.gradual_full_rollback(now, Reason::ActionFailed, Vec::new(), detail, out);
    }

    /// Carrying on after a stopped gradual rollback (`resume`, or an approval timeout
    /// set to `continue`): the current stage is entered again, and the next gate
    /// failure of this rollout rolls back at once.
    pub(super) fn gradual_resume(&mut self, now: Timestamp, reason: Reason, out: &mut Out) {
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.gradual = None;
        r.gradual_spent = true;
        r.pause = None;
        r.entered = false;
        r.stage_done = false;
        r.stage_ends_at = None;
        self.enter_stage(now, Some(reason), out);
    }

    /// A rollback is issued, or the candidate forced through: the episode is over.
    pub(super) fn end_gradual(&mut self) {
        if let Some(r) = self.state.rollout.as_mut()
            && r.gradual.take().is_some()
        {
            r.gradual_spent = true;
        }
    }

    /// The `set_weight` a gradual rollback issues at its current step, for checking a
    /// pending (or halted) action on restore.
    pub(super) fn gradual_action(&self, action: &Action) -> bool {
        let (Some(g), Some(cfg)) = (self.gradual(), &self.config.safety.gradual_rollback) else {
            return false;
        };
        match action {
            Action::SetWeight { weight, step, .. } => {
                !g.stopped
                    && g.bake_ends_at.is_none()
                    && cfg.steps.get(g.step as usize) == Some(weight)
                    && *step == self.weight_step()
            }
            _ => false,
        }
    }
}

/// Puts `detail` on the decision just made.
fn set_detail(out: &mut Out, detail: String) {
    if let Some(d) = out.decisions.last_mut() {
        d.detail = detail;
    }
}
