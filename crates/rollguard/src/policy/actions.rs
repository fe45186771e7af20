//! Actions and the reversion protocol: issuing, acknowledging, automated rollbacks.

use super::*;

impl Policy {
    /// Issues an action the caller must execute and acknowledge.
    pub(super) fn issue(
        &mut self,
        now: Timestamp,
        action: Action,
        reason: Reason,
        mark: Option<Lifecycle>,
        gates: Vec<GateReport>,
        out: &mut Out,
    ) {
        // Inputs are refused before the ids run out (see `check_counters`).
        let id = self.state.next_action_id;
        self.state.next_action_id = id.saturating_add(1);
        debug_assert!(
            self.state.pending.is_none(),
            "an action would replace a pending one"
        );
        let deadline = later(now, self.config.safety.ack_timeout_ms);
        // Gates pause until the switch is in place; the acknowledgement restarts them.
        self.state.analysis_at = None;
        if matches!(action, Action::Rollback { .. }) {
            self.end_gradual();
        }
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

    pub(super) fn halt(
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
    pub(super) fn auto_rollback(
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
        } else if self.state.breaker.is_open() {
            Some(Reason::BreakerOpen)
        } else if self.state.cooldown_until.active(now) {
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
        let (breaker, cooldown_ms) = (self.config.safety.breaker, self.config.safety.cooldown_ms);
        let trips = self.state.breaker.trips_at(now, &breaker);
        let from = self.judged_version();
        let golden = self.state.registry.golden_target();
        let (to, target) = match golden {
            // The breaker tripping always goes to golden (or to no target at all).
            _ if trips => (golden, TargetKind::Golden),
            Some(g) if self.config.safety.rollback_to == RollbackTo::Golden && g != from => {
                (Some(g), TargetKind::Golden)
            }
            _ => self.default_target(&from),
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
        let until = self.state.cooldown_until.start(now, cooldown_ms);
        out.event(now, EventKind::CooldownStarted { until });
        if let Some(rollbacks) = self.state.breaker.record(now, &breaker) {
            out.event(now, EventKind::BreakerTripped { rollbacks });
        }
        out.escalate(
            now,
            if trips {
                Reason::BreakerTripped
            } else {
                Reason::AutomatedRollback
            },
            Self::scope_names(&gates),
            gates,
        );
        self.state.blocked = None;
    }

    /// Versions besides the aliases that the policy may still switch traffic to or mark:
    /// those of the pending action and of the action a `resume` would retry, the
    /// rollout's and the config's candidate before its rollout starts. The registry
    /// never evicts them.
    pub(super) fn switch_targets(&self) -> Vec<String> {
        let s = &self.state;
        let actions = [
            s.pending.as_ref(),
            s.halt.as_ref().and_then(|h| h.retry.as_ref()),
        ];
        actions
            .into_iter()
            .flatten()
            .flat_map(|p| action_versions(&p.action))
            .flatten()
            .chain(s.rollout.as_ref().map(|r| r.version.as_str()))
            .chain(s.kickoff.as_deref())
            .map(str::to_string)
            .collect()
    }

    /// The version a rollback would take traffic from.
    pub(super) fn judged_version(&self) -> String {
        match &self.state.rollout {
            Some(r) => r.version.clone(),
            None => self.state.registry.aliases.stable.clone(),
        }
    }

    /// The default rollback target: the stable before promotion, the previous
    /// validated version after it (or without a rollout).
    pub(super) fn default_target(&self, from: &str) -> (Option<String>, TargetKind) {
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

    pub(super) fn acknowledge(
        &mut self,
        now: Timestamp,
        id: u64,
        out: &mut Out,
    ) -> Result<(), Error> {
        let p = self.take_pending(id)?;
        out.event(now, EventKind::ActionAcknowledged { action_id: id });
        self.state.halt = None;
        match p.action {
            Action::SetWeight { weight, .. } if self.gradual_stepping() => {
                self.gradual_acked(now, weight, out);
            }
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
                        r.record_weight(now);
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
                        previous: from.clone(),
                    },
                );
                out.event(now, EventKind::AliasesChanged(reg.aliases.clone()));
                self.commit_effects(now, &from, out);
                self.reset_gates();
                if let Some(r) = self.state.rollout.as_mut() {
                    r.promoted_at = Some(now);
                    r.weight = 100;
                    // Every tenant is on the candidate now: nothing left to pause.
                    r.ladder.onboarding_paused = false;
                }
                self.next_stage(now, Reason::StagePassed, out);
            }
            Action::Rollback { from, to, .. } => {
                self.apply_rollback(now, &from, &to, p.mark.unwrap_or(Lifecycle::Failed), out);
            }
            Action::Compensate {
                version, effect_id, ..
            } => self.compensated(now, version, effect_id, out),
            Action::PauseOnboarding { .. } | Action::RouteBack { .. } | Action::Freeze { .. } => {
                self.ladder_acknowledged(now);
            }
            Action::PauseForApproval { .. } | Action::Hold {} | Action::Escalate {} => {}
        }
        Ok(())
    }

    pub(super) fn take_pending(&mut self, id: u64) -> Result<Pending, Error> {
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

    pub(super) fn apply_rollback(
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
        self.keep_only_arm(to, out);
        if self.state.arms.is_empty() {
            self.state.arms.push(self.new_arm(to));
        }
        self.reset_gates();
        self.state.analysis_at = self.steady_analysis(now);
        self.start_compensation(now, to, out);
    }
}

/// The versions an action names: the one it switches to, and the one it switches from.
pub(super) fn action_versions(action: &Action) -> [Option<&str>; 2] {
    match action {
        Action::StartShadow { version }
        | Action::StartPreview { version }
        | Action::SetWeight { version, .. }
        | Action::PauseOnboarding { version }
        | Action::Freeze { version }
        | Action::PauseForApproval { version, .. } => [Some(version), None],
        Action::RouteBack { version, to, .. } => [Some(to), Some(version)],
        Action::Promote { version, from } => [Some(version), Some(from)],
        Action::Rollback { from, to, .. } => [Some(to), Some(from)],
        // The effect's version need not stay registered: the action carries its undo.
        Action::Compensate { .. } | Action::Hold {} | Action::Escalate {} => [None, None],
    }
}
