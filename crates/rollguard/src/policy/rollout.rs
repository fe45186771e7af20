//! The rollout's stages: entering them, their timers, approval pauses, completion.

use super::*;

impl Policy {
    pub(super) fn begin_rollout(&mut self, version: &str, now: Timestamp, out: &mut Out) {
        let reg = &mut self.state.registry;
        reg.aliases.candidate = Some(version.to_string());
        reg.set_stage(version, Lifecycle::RollingOut);
        let stable = reg.aliases.stable.clone();
        self.keep_only_arm(&stable, out);
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
            salt: Some(crate::assign::salt_for(&self.config.name, version, now)),
            weights: Vec::new(),
            ladder: ladder::Ladder::default(),
            gradual: None,
            gradual_spent: false,
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

    /// Drops every arm but `version`'s, into `out` (see [`State::undo`]).
    pub(super) fn keep_only_arm(&mut self, version: &str, out: &mut Out) {
        let (keep, drop) = core::mem::take(&mut self.state.arms)
            .into_iter()
            .partition(|a| a.version == version);
        self.state.arms = keep;
        out.dropped_arms.extend::<Vec<Arm>>(drop);
    }

    pub(super) fn new_arm(&self, version: &str) -> Arm {
        Arm {
            version: version.to_string(),
            windows: (self.plan.shapes.iter())
                .map(|s| Window::new_dense(*s))
                .collect(),
            scoped: Vec::new(),
        }
    }

    pub(super) fn reset_gates(&mut self) {
        for (g, fresh) in self.state.gates.iter_mut().zip(&self.plan.fresh) {
            *g = GateState::new(fresh);
        }
        if let Some(plan) = &self.plan.scopes {
            for scope in &mut self.state.scopes {
                // Gates start afresh when a rollout begins, is promoted or ends: so do
                // the scopes the ladder routed back from the candidate.
                scope.routed_back = false;
                let fresh = &plan.judging(scope.tier.as_deref()).fresh;
                for (g, fresh) in scope.gates.iter_mut().zip(fresh) {
                    *g = GateState::new(fresh);
                }
            }
        }
        self.state.blocked = None;
    }

    pub(super) fn stage(&self) -> Option<Stage> {
        let r = self.state.rollout.as_ref()?;
        self.plan.stages.get(r.stage as usize).copied()
    }

    /// Issues the current stage's entry decision. `reason` is why the rollout moved
    /// here (`None` for the first stage).
    pub(super) fn enter_stage(&mut self, now: Timestamp, reason: Option<Reason>, out: &mut Out) {
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
    pub(super) fn start_timers(&mut self, now: Timestamp, duration_ms: u64, out: &mut Out) {
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.stage_ends_at = (duration_ms > 0).then(|| later(now, duration_ms));
        if let Some(pause) = r.pause.as_mut().filter(|p| p.kind == PauseKind::Operator) {
            // Paused while the action was pending: the bake starts frozen.
            pause.remaining_ms = r.stage_ends_at.take().map(|_| duration_ms);
        } else if let Some(frozen) = r.ladder.frozen.as_mut() {
            // Frozen by the ladder (an operator forced the promotion): likewise.
            frozen.remaining_ms = r.stage_ends_at.take().map(|_| duration_ms);
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
        self.state.analysis_at = analysed.then(|| self.plan.next_evaluation(now)).flatten();
        if duration_ms == 0 {
            // No bake: move on as soon as the traffic change is in place (Argo's
            // `setWeight` without `pause`), unless an operator paused the rollout.
            if self
                .state
                .rollout
                .as_ref()
                .is_some_and(|r| r.pause.is_none() && r.ladder.frozen.is_none())
            {
                self.next_stage(now, Reason::StagePassed, out);
            } else if let Some(r) = self.state.rollout.as_mut() {
                r.stage_done = true;
            }
        }
    }

    pub(super) fn pause_for_approval(&mut self, now: Timestamp, reason: Reason, out: &mut Out) {
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
    pub(super) fn stage_end(&mut self, now: Timestamp, out: &mut Out) {
        let s = &self.state;
        let Some(r) = &s.rollout else { return };
        if !r.stage_done
            || r.gradual.is_some()
            || r.pause.is_some()
            || r.ladder.frozen.is_some()
            || s.pending.is_some()
            || s.halt.is_some()
            || s.breaker.is_open()
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
        // A scope's gates hold the stage as the overall ones do while they trip or
        // fail; a scope without a verdict (too few samples) does not.
        let scoped = s
            .scopes
            .iter()
            .flat_map(|sc| live.iter().map(move |(i, _)| &sc.gates[*i]));
        let states = || live.iter().map(|(_, g)| *g).chain(scoped.clone());
        if states().any(GateState::tripped) {
            return; // the rollback (or the hold that blocks it) is decided by analysis
        }
        if states().any(|g| g.consecutive_failures > 0) {
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

    pub(super) fn next_stage(&mut self, now: Timestamp, reason: Reason, out: &mut Out) {
        if self.hold_promotion(now, reason, out) {
            return;
        }
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.stage = r.stage.saturating_add(1);
        r.entered = false;
        r.stage_done = false;
        r.stage_ends_at = None;
        r.pause = None;
        self.enter_stage(now, Some(reason), out);
    }

    pub(super) fn approval_timeout(&mut self, now: Timestamp, out: &mut Out) {
        let on_timeout = self.config.approval.on_timeout;
        out.event(now, EventKind::ApprovalTimedOut { on_timeout });
        match on_timeout {
            OnTimeout::Rollback => {
                self.auto_rollback(now, Reason::ApprovalTimeout, Vec::new(), None, out);
                // Blocked by the cooldown: try again when it ends.
                let retry = self
                    .state
                    .cooldown_until
                    .until()
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
                if self.gradual_stopped() {
                    self.gradual_resume(now, Reason::ApprovalTimeoutContinue, out);
                } else {
                    self.next_stage(now, Reason::ApprovalTimeoutContinue, out);
                }
            }
            OnTimeout::Hold => {
                out.escalate(now, Reason::ApprovalTimeoutHold, String::new(), Vec::new())
            }
        }
    }

    pub(super) fn complete(&mut self, now: Timestamp, out: &mut Out) {
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
        self.state.breaker.forget_run();
        let stable = self.state.registry.aliases.stable.clone();
        self.keep_only_arm(&stable, out);
        self.reset_gates();
        self.state.analysis_at = self.steady_analysis(now);
    }
}
