//! Operator commands and acknowledgements.

use super::*;

impl Policy {
    pub(super) fn command(
        &mut self,
        input: &Input,
        at: Timestamp,
        out: &mut Out,
    ) -> Result<(), Error> {
        let emitted = (out.events.len(), out.decisions.len());
        self.check_texts(input)?;
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
                match p.action {
                    // A step of a gradual rollback: roll back fully instead.
                    Action::SetWeight { weight, .. } if self.gradual_stepping() => {
                        self.gradual_action_failed(at, weight, out);
                    }
                    _ => self.halt(at, Reason::ActionFailed, Some(p), reason.clone(), out),
                }
                return Ok(());
            }
            Input::RegisterVersion { version, .. } => {
                version
                    .validate(self.config.limits.label_len_max)
                    .map_err(|e| e.within("version"))?;
                let pinned = self.switch_targets();
                let pinned: Vec<&str> = pinned.iter().map(String::as_str).collect();
                let registered = self.state.registry.register(
                    version,
                    self.config.limits.versions_max,
                    &pinned,
                )?;
                if let Some(evicted) = registered {
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
                    !self.state.breaker.is_open(),
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
                // The bake that runs: a gradual rollback's step, or the stage's.
                let ends_at = match r.gradual.as_mut() {
                    Some(g) => g.bake_ends_at.take(),
                    None => r.stage_ends_at.take(),
                };
                let remaining_ms = ends_at.map(|e| e.saturating_sub(at));
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
                self.end_gradual();
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
                    self.state.breaker.is_open(),
                    ErrorCode::InvalidCommand,
                    "",
                    || "the breaker is not open".into(),
                )?;
                self.state.breaker = Breaker::default();
                self.state.blocked = None;
                out.event(at, EventKind::BreakerCleared {});
                return Ok(());
            }
            Input::RecordEffect {
                version, effect, ..
            } => return self.record_effect(at, version, effect, out),
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

    /// Refuses a command's free text and names longer than the limits allow, before they
    /// are looked up, copied into events or echoed in errors.
    fn check_texts(&self, input: &Input) -> Result<(), Error> {
        let l = &self.config.limits;
        match input {
            Input::ActionFailed { reason, .. } => check_text(reason, l.text_len_max, "reason"),
            Input::StartRollout { version, .. }
            | Input::MarkValidated { version, .. }
            | Input::RecordEffect { version, .. } => {
                check_label(version, l.label_len_max, "version", true)
            }
            Input::RevertNow {
                version: Some(version),
                ..
            } => check_label(version, l.label_len_max, "version", true),
            _ => Ok(()),
        }
    }

    /// Issues a rollback an operator asked for (`abort` or `revert_now`): it skips gates,
    /// cooldown and breaker, ends a halt, and counts as no automated rollback.
    pub(super) fn operator_rollback(
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

    pub(super) fn validated_by_operator(&mut self, version: &str, at: Timestamp, out: &mut Out) {
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

    pub(super) fn no_pending(&self) -> Result<(), Error> {
        match &self.state.pending {
            Some(p) => Err(Error::new(
                ErrorCode::ActionPending,
                "",
                format!("action {} is waiting for its acknowledgement", p.id),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn require_rollout(&self) -> Result<&Rollout, Error> {
        self.state
            .rollout
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidCommand, "", "no rollout is in progress"))
    }

    pub(super) fn require_no_rollout(&self) -> Result<(), Error> {
        match &self.state.rollout {
            Some(r) => Err(Error::new(
                ErrorCode::InvalidCommand,
                "",
                format!("a rollout of {:?} is in progress", r.version),
            )),
            None => Ok(()),
        }
    }

    pub(super) fn resume(&mut self, at: Timestamp, out: &mut Out) -> Result<(), Error> {
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
        if self.frozen() {
            // Frozen by the ladder: `resume` unfreezes (a pause, if any, stays).
            self.unfreeze(at, out);
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
            PauseKind::Approval if self.gradual_stopped() => {
                self.gradual_resume(at, Reason::ApprovalGranted, out);
            }
            PauseKind::Approval => self.next_stage(at, Reason::ApprovalGranted, out),
            PauseKind::Operator => {
                if let Some(r) = self.state.rollout.as_mut() {
                    r.pause = None;
                    let ends_at = pause.remaining_ms.map(|ms| later(at, ms));
                    match r.gradual.as_mut() {
                        Some(g) => g.bake_ends_at = ends_at,
                        None => r.stage_ends_at = ends_at,
                    }
                }
                self.stage_end(at, out);
            }
        }
        Ok(())
    }

    pub(super) fn revert_target(
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
