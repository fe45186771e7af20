//! Gate evaluation: readings, baselines, onset estimates and verdicts.

use super::*;

impl Policy {
    /// The version judged and its baseline, in the current phase.
    pub(super) fn arms_in(&self, phase: Phase) -> (String, Option<String>) {
        let (subject, baseline) = self.roles_in(phase);
        (subject.to_string(), baseline.map(str::to_string))
    }

    /// [`Policy::arms_in`], borrowed.
    fn roles_in(&self, phase: Phase) -> (&str, Option<&str>) {
        let a = &self.state.registry.aliases;
        match (phase, &self.state.rollout) {
            (Phase::Steady, _) | (_, None) => (&a.stable, None),
            (Phase::Bake, Some(r)) => (&r.version, a.previous.as_deref()),
            (_, Some(r)) => (&r.version, Some(&a.stable)),
        }
    }

    /// Hands accepted samples of `arm` to the detectors of the gates that observe
    /// `metric` and run in the current phase, with the arm's role in their comparison;
    /// `feed` gives one detector its samples. Arms in no role are not fed.
    pub(super) fn observe_samples(
        &mut self,
        arm: &str,
        metric: usize,
        scope: Option<u32>,
        mut feed: impl FnMut(&mut Detector, Side),
    ) {
        let Some((phase, side)) = self.detector_side(arm, metric) else {
            return;
        };
        let mut scoped = scope.and_then(|s| self.state.scopes.get_mut(s as usize));
        for &g in &self.plan.observers[metric] {
            if self.config.gates[g].phases.contains(&phase) {
                feed(&mut self.state.gates[g].detector, side);
                if let Some(scope) = scoped.as_mut() {
                    feed(&mut scope.gates[g].detector, side);
                }
            }
        }
    }

    /// The current phase and the side `arm`'s samples of `metric` take in the detectors
    /// of the gates running in it; `None` for an arm in no role (its samples feed no
    /// detector).
    pub(super) fn detector_side(&self, arm: &str, metric: usize) -> Option<(Phase, Side)> {
        let phase = self.current_phase()?;
        let role = match self.roles_in(phase) {
            (subject, _) if subject == arm => Role::Judged,
            (_, Some(baseline)) if baseline == arm => Role::Baseline,
            _ => return None,
        };
        let side = Side {
            role,
            share: self.judged_share(phase),
            hist: self.plan.shapes.get(metric).and_then(|s| s.hist),
        };
        Some((phase, side))
    }

    /// The judged arm's share of traffic as the policy set it in `phase`: the
    /// acknowledged canary weight, or one half while both arms see mirrored traffic.
    /// 0 where the policy does not set it (preview, bake, steady).
    fn judged_share(&self, phase: Phase) -> f64 {
        match (phase, &self.state.rollout) {
            (Phase::Shadow, Some(_)) => 0.5,
            (Phase::Canary, Some(r)) => f64::from(r.weight) / 100.0,
            _ => 0.0,
        }
    }

    pub(super) fn current_phase(&self) -> Option<Phase> {
        match &self.state.rollout {
            Some(r) => r.phase,
            None => self.plan.steady.then_some(Phase::Steady),
        }
    }

    /// A gate's config as `scope` (or, for `None`, the overall verdict) judges it.
    pub(super) fn judged(&self, scope: Option<u32>, gate: usize) -> &GateConfig {
        judged_at(&self.plan, scope.is_some(), self.tier_index(scope), gate)
    }

    /// The index of `scope`'s tier among the plan's tiers with overrides, if it has
    /// one (see [`crate::plan::ScopePlan::tier_index`]).
    fn tier_index(&self, scope: Option<u32>) -> Option<u32> {
        let tier = self.state.scopes.get(scope? as usize)?.tier.as_deref();
        self.plan.scopes.as_ref()?.tier_index(tier)
    }

    /// A gate's state overall or in `scope`.
    fn gate_state(&self, scope: Option<u32>, gate: usize) -> &GateState {
        match scope {
            Some(s) => &self.state.scopes[s as usize].gates[gate],
            None => &self.state.gates[gate],
        }
    }

    /// [`Policy::gate_state`], to change.
    fn gate_state_mut(&mut self, scope: Option<u32>, gate: usize) -> &mut GateState {
        match scope {
            Some(s) => &mut self.state.scopes[s as usize].gates[gate],
            None => &mut self.state.gates[gate],
        }
    }

    /// A gate's reading of the live arm at index `arm` (see [`Policy::arm_of`]).
    pub(super) fn reading(
        &self,
        arm: Option<usize>,
        scope: Option<u32>,
        metric: usize,
        gate: usize,
        now: Timestamp,
    ) -> Reading {
        let stat = self.config.gates[gate].stat;
        self.window_at(arm, scope, metric).map_or(
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
    pub(super) fn baseline_reading(
        &self,
        arm: Option<usize>,
        scope: Option<u32>,
        metric: usize,
        gate: usize,
        now: Timestamp,
    ) -> Reading {
        let live = self.reading(arm, scope, metric, gate, now);
        let frozen_at = self.state.rollout.as_ref().and_then(|r| r.promoted_at);
        match frozen_at {
            Some(at) if live.evidence < self.judged(scope, gate).samples_min => {
                self.reading(arm, scope, metric, gate, at)
            }
            _ => live,
        }
    }

    /// Estimates when a degradation began: the start of the oldest bucket in the
    /// window whose own statistic breaks the bounds, or the window start.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn onset(
        &self,
        version: &str,
        scope: Option<u32>,
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
        let breaks = |x: f64| crate::detect::breaks(min, max, x);
        let first = self.window_in(version, scope, metric).and_then(|w| {
            w.read_buckets(shape, stat, now)
                .into_iter()
                .find(|(_, r)| r.value.is_some_and(breaks))
                .map(|(t, _)| t)
        });
        first.unwrap_or(start).max(floor)
    }

    pub(super) fn analyse(&mut self, now: Timestamp, out: &mut Out) {
        let Some(phase) = self.current_phase() else {
            return;
        };
        let (subject, baseline) = self.arms_in(phase);
        let reports = self.judge_gates(phase, None, &subject, baseline.as_deref(), now, out);
        if reports.is_empty() {
            return;
        }
        // Each scope's gates, over its own windows; its reports are shown when they
        // fail, are tripped, or pass after failing (a fleet of passing scopes would
        // drown the event).
        let mut scoped = Vec::new();
        for s in 0..self.state.scopes.len() as u32 {
            // A scope routed back (`scopes.ladder`) is not judged: it left the candidate.
            if self.is_routed_back(s) {
                continue;
            }
            let judged = self.judge_gates(phase, Some(s), &subject, baseline.as_deref(), now, out);
            scoped.extend(judged);
        }
        let tripped: Vec<GateReport> = reports
            .iter()
            .chain(&scoped)
            .filter(|r| r.tripped && !r.dry_run)
            .cloned()
            .collect();
        let scoped_only = tripped.iter().all(|r| r.scope.is_some());
        // The overall reports a ladder rung's traffic share is of.
        let overall = match scoped_only && !tripped.is_empty() {
            true => reports.clone(),
            false => Vec::new(),
        };
        out.event(
            now,
            EventKind::Analysis {
                phase,
                reports,
                scoped,
            },
        );
        if self.gradual_analysis(now, &tripped, out) {
            return;
        }
        if tripped.is_empty() {
            self.state.blocked = None;
            if self.state.rollout.as_ref().is_some_and(|r| r.stage_done) {
                self.stage_end(now, out);
            }
            return;
        }
        let scopes = self.state.scopes.iter().map(|s| &s.gates);
        let onset = core::iter::once(&self.state.gates)
            .chain(scopes)
            .flat_map(|gates| self.config.gates.iter().zip(gates))
            .filter(|(c, g)| g.tripped() && !c.dry_run)
            .filter_map(|(_, g)| g.onset)
            .min();
        if scoped_only {
            // Tripped in scopes only: the ladder (or the impact rule) decides.
            self.respond_to_scopes(now, tripped, &overall, onset, out);
            return;
        }
        // Environment or model? Asked of the overall verdicts only: a scope's trip is
        // judged by the ladder above.
        if tripped.iter().all(|r| r.scope.is_none())
            && let Some((gates, detail)) = self.environment_suspected(phase, now, &tripped)
        {
            self.hold_for_environment(now, gates, detail, out);
            return;
        }
        self.gate_rollback(now, tripped, onset, out);
    }

    /// Evaluates the gates of `phase` overall (`scope` `None`) or in one scope, records
    /// their verdicts and returns their reports, in config order: every one overall, and
    /// in a scope those that fail, are tripped or pass after failing (the others are
    /// not built at all: with thousands of scopes, building them is most of the work).
    fn judge_gates(
        &mut self,
        phase: Phase,
        scope: Option<u32>,
        subject: &str,
        baseline: Option<&str>,
        now: Timestamp,
        out: &mut Out,
    ) -> Vec<GateReport> {
        // The scope's tier, if its tier judges differently: found once, by index.
        let tier = self.tier_index(scope);
        let mut key = None;
        let (subject_arm, baseline_arm) = (self.arm_of(subject), baseline.map(|b| self.arm_of(b)));
        let mut reports = Vec::new();
        // Reports built only for a `kayenta_score` gate of this evaluation to read.
        let mut unlisted = Vec::new();
        for i in 0..self.config.gates.len() {
            let gate = judged_at(&self.plan, scope.is_some(), tier, i);
            if !gate.phases.contains(&phase) {
                continue;
            }
            let m = self.plan.gate_metric[i];
            let observed = self.reading(subject_arm, scope, m, i, now);
            let base = match (&gate.rule, baseline_arm) {
                (Rule::VsBaseline { .. }, Some(b)) => {
                    Some(self.baseline_reading(b, scope, m, i, now))
                }
                _ => None,
            };
            let readings = Readings {
                subject: observed,
                baseline: base,
            };
            let hist = self.plan.shapes.get(m).and_then(|s| s.hist);
            let judgement = if let Rule::KayentaScore {
                members,
                group_weights,
                pass,
                marginal,
            } = &gate.rule
            {
                // Its members are earlier gates: their reports of this evaluation.
                let found: Vec<Option<crate::output::Classification>> = members
                    .iter()
                    .map(|mb| {
                        reports
                            .iter()
                            .chain(&unlisted)
                            .find(|r: &&GateReport| r.gate == mb.gate)
                            .and_then(|r| match r.evidence {
                                crate::output::Evidence::Rank { classification, .. } => {
                                    Some(classification)
                                }
                                _ => None,
                            })
                    })
                    .collect();
                crate::detect::kayenta::judge(
                    gate,
                    &found,
                    members,
                    group_weights,
                    *pass,
                    *marginal,
                )
            } else {
                let st = match scope {
                    Some(s) => &mut self.state.scopes[s as usize].gates[i],
                    None => &mut self.state.gates[i],
                };
                st.detector.judge(gate, readings, hist, now)
            };
            let alpha = self.plan.scopes.as_ref().and(crate::plan::alpha_of(gate));
            let st = self.gate_state(scope, i);
            let first_failure =
                judgement.verdict == Verdict::Fail && st.failing_since.is_none() && !st.tripped();
            let onset = match judgement.onset {
                _ if !first_failure => now,
                Some(at) => at.min(now),
                None => {
                    let (min, max) = judgement.evidence.bounds_of();
                    self.onset(subject, scope, m, i, min, max, now)
                }
            };
            let persistence = self.config.gates[i].persistence;
            let st = self.gate_state_mut(scope, i);
            let was_failing = st.tripped() || st.consecutive_failures > 0;
            let transition = st.record(&persistence, judgement.verdict, now, || onset);
            let (consecutive_failures, tripped) = (st.consecutive_failures, st.tripped());
            let verdict = judgement.verdict;
            let listed = scope.is_none()
                || verdict == Verdict::Fail
                || tripped
                || (was_failing && verdict == Verdict::Pass);
            if !listed && !self.plan.kayenta_members[i] {
                continue;
            }
            if key.is_none() {
                key = scope.map(|s| self.state.scopes[s as usize].key.clone());
            }
            let gate = &self.config.gates[i];
            match transition {
                Transition::Tripped => out.event(
                    now,
                    EventKind::GateTripped {
                        gate: gate.name.clone(),
                        dry_run: gate.dry_run,
                        scope: key.clone(),
                    },
                ),
                Transition::Cleared => out.event(
                    now,
                    EventKind::GateCleared {
                        gate: gate.name.clone(),
                        dry_run: gate.dry_run,
                        scope: key.clone(),
                    },
                ),
                Transition::None => {}
            }
            let report = GateReport {
                gate: gate.name.clone(),
                metric: gate.metric.clone(),
                stat: gate.stat,
                verdict: judgement.verdict,
                arm: subject.to_string(),
                scope: key.clone(),
                evidence: judgement.evidence,
                samples: observed.evidence,
                baseline_samples: base.map(|b| b.evidence),
                window_start: Window::start(self.plan.shapes[m], now),
                window_end: now,
                consecutive_failures,
                tripped,
                dry_run: gate.dry_run,
                alpha,
            };
            if listed {
                reports.push(report);
            } else {
                unlisted.push(report);
            }
        }
        reports
    }
}

/// [`Policy::judged`], borrowing only the plan: overall, or in a scope of the tier at
/// `tier` in the plan's tiers with overrides (see [`ScopePlan::tier_index`]).
///
/// [`ScopePlan::tier_index`]: crate::plan::ScopePlan::tier_index
fn judged_at(plan: &Plan, scoped: bool, tier: Option<u32>, gate: usize) -> &GateConfig {
    match (scoped, &plan.scopes) {
        (true, Some(scopes)) => &scopes.judging_at(tier).gates[gate],
        _ => &plan.gates[gate],
    }
}
