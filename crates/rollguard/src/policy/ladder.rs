//! The graduated-response ladder (config `scopes.ladder`): what the policy does when
//! gates trip in scopes and not overall.
//!
//! - The rungs in force are the config's ladder, or without one the one-rung ladder
//!   `[{rollback, when: impact}]` (any tripped scope without `impact`).
//! - At each evaluation where gates are tripped only in scopes, the most severe rung
//!   whose `when` is met applies. A trip that meets no rung holds and escalates once
//!   (`scoped_failure`), as below an impact rule.
//! - Rungs only escalate within a rollout: the most severe one taken is kept
//!   ([`Ladder::rung`]); a rung met at or below it is not taken again (the rollout
//!   holds, `graduated_response`), except `route_back`, which routes back the scopes
//!   newly tripped each time.
//! - `pause_onboarding` and `route_back` act on the split before promotion; after it
//!   (and without a rollout) they do not apply, and `freeze` needs a rollout.
//! - Each rung but `rollback` is a routing change with an action id and an ack
//!   deadline ([`Policy::issue`]); its state is set when it is decided, as a pending
//!   rollback's is (the routing table shows it at once). `rollback` is the automated
//!   rollback, naming the scopes.

use serde::{Deserialize, Serialize};

use super::*;
use crate::config::{Impact, Rung};
use crate::scope::ScopeKey;

/// A rollout's progress on the ladder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Ladder {
    /// The most severe rung taken in this rollout (`rollback` is never recorded: it
    /// ends the rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rung: Option<Rung>,
    /// `pause_onboarding` holds: tenants new to the candidate stay off it.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub(super) onboarding_paused: bool,
    /// `freeze` holds, until an operator's `resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) frozen: Option<Frozen>,
}

impl Ladder {
    pub(super) fn is_idle(&self) -> bool {
        *self == Self::default()
    }
}

/// A frozen rollout: its stage timer stopped, as an operator's pause stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Frozen {
    /// When the freeze was decided: an approval pause's deadline moves on by the time
    /// spent frozen.
    pub(super) since: Timestamp,
    /// The stage's bake time left when its timer stopped (none when none ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) remaining_ms: Option<u64>,
}

/// The rule of the one-rung ladder without `impact`: any tripped scope.
static ANY_SCOPE: Impact = Impact {
    tiers: Vec::new(),
    scopes_min: None,
    traffic_min: None,
};

impl Policy {
    /// The rungs in force, least severe first: the config's ladder, or the one-rung
    /// ladder of the impact rule.
    fn rungs(&self) -> Vec<(Rung, &Impact)> {
        let scopes = self.config.scopes.as_ref();
        if let Some(ladder) = scopes.and_then(|s| s.ladder.as_ref()) {
            return ladder.iter().map(|r| (r.rung, &r.when)).collect();
        }
        let impact = scopes.and_then(|s| s.impact.as_ref());
        vec![(Rung::Rollback, impact.unwrap_or(&ANY_SCOPE))]
    }

    /// Whether `rung` can act now: `pause_onboarding` and `route_back` on a rollout
    /// before its promotion, `freeze` on a rollout, `rollback` always.
    fn applies(&self, rung: Rung) -> bool {
        let r = self.state.rollout.as_ref();
        match rung {
            Rung::PauseOnboarding | Rung::RouteBack => r.is_some_and(|r| r.promoted_at.is_none()),
            Rung::Freeze => r.is_some(),
            Rung::Rollback => true,
        }
    }

    /// Gates are tripped in scopes only (`tripped`, every one a scope's report, none of
    /// a scope routed back), with the same evaluation's `overall` reports: the most
    /// severe rung met applies (see the module docs).
    pub(super) fn respond_to_scopes(
        &mut self,
        now: Timestamp,
        tripped: Vec<GateReport>,
        overall: &[GateReport],
        onset: Option<Timestamp>,
        out: &mut Out,
    ) {
        let met = self
            .rungs()
            .into_iter()
            .rev()
            .filter(|(rung, _)| self.applies(*rung))
            .find(|(_, when)| self.rule_met(when, &tripped, overall))
            .map(|(rung, _)| rung);
        let laddered = self
            .config
            .scopes
            .as_ref()
            .is_some_and(|s| s.ladder.is_some());
        let Some(rung) = met else {
            let below = if laddered {
                "meeting no rung of the ladder"
            } else {
                "below the impact rule"
            };
            self.hold_for_scopes(now, tripped, below, out);
            return;
        };
        if rung == Rung::Rollback {
            let decided = out.decisions.len();
            self.gate_rollback(now, tripped, onset, out);
            if laddered {
                // The rollback names its rung, as the ladder's other actions do.
                for d in &mut out.decisions[decided..] {
                    if matches!(d.action, Action::Rollback { .. }) {
                        d.detail = format!("rung rollback: {}", Self::scope_names(&d.gates));
                    }
                }
            }
            return;
        }
        let taken = self.state.rollout.as_ref().and_then(|r| r.ladder.rung);
        // Scopes route_back would send back now: tripped, and not the overflow scope
        // (a router cannot tell its tenants from the others).
        let mut fresh: Vec<ScopeKey> = tripped
            .iter()
            .filter_map(|r| r.scope.clone())
            .filter(|k| !k.overflow)
            .collect();
        fresh.sort();
        fresh.dedup();
        let again = rung == Rung::RouteBack && taken == Some(Rung::RouteBack);
        let new = taken.is_none_or(|t| rung > t) || again;
        if !new || (rung == Rung::RouteBack && fresh.is_empty()) {
            let at = taken.unwrap_or(rung).as_str();
            let detail = format!("at rung {at}: {}", Self::scope_names(&tripped));
            out.notify(
                now,
                Action::Hold {},
                Reason::GraduatedResponse,
                detail,
                tripped,
            );
            return;
        }
        if self.state.pending.is_some() {
            return;
        }
        if self.state.halt.is_some() {
            let why = Reason::Halted;
            out.decide(now, Action::Hold {}, why, tripped.clone());
            if self.state.blocked != Some(why) {
                self.state.blocked = Some(why);
                out.escalate(now, why, String::new(), tripped);
            }
            return;
        }
        self.take_rung(now, rung, tripped, fresh, out);
    }

    /// Issues `rung` (not `rollback`) and sets its state; `fresh` are the scopes a
    /// `route_back` sends back.
    fn take_rung(
        &mut self,
        now: Timestamp,
        rung: Rung,
        tripped: Vec<GateReport>,
        fresh: Vec<ScopeKey>,
        out: &mut Out,
    ) {
        let stable = self.state.registry.aliases.stable.clone();
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        r.ladder.rung = Some(rung);
        let version = r.version.clone();
        let (action, named) = match rung {
            Rung::PauseOnboarding => {
                r.ladder.onboarding_paused = true;
                (Action::PauseOnboarding { version }, tripped.clone())
            }
            Rung::Freeze => {
                let remaining_ms = r.stage_ends_at.take().map(|t| t.saturating_sub(now));
                r.ladder.frozen = Some(Frozen {
                    since: now,
                    remaining_ms,
                });
                (Action::Freeze { version }, tripped.clone())
            }
            Rung::RouteBack | Rung::Rollback => {
                for key in &fresh {
                    let Some(&id) = self.scope_ids.get(key) else {
                        continue;
                    };
                    self.route_back(id);
                }
                let named = tripped
                    .iter()
                    .filter(|g| g.scope.as_ref().is_some_and(|k| fresh.contains(k)))
                    .cloned()
                    .collect();
                let action = Action::RouteBack {
                    version,
                    to: stable,
                    scopes: fresh,
                };
                (action, named)
            }
        };
        let detail = format!("rung {}: {}", rung.as_str(), Self::scope_names(&named));
        self.issue(
            now,
            action,
            Reason::GraduatedResponse,
            None,
            tripped.clone(),
            out,
        );
        if let Some(d) = out.decisions.last_mut() {
            d.detail.clone_from(&detail);
        }
        if rung == Rung::Freeze {
            out.escalate(now, Reason::GraduatedResponse, detail, tripped);
        }
        self.state.blocked = None;
    }

    /// Routes scope `id` back: its gates start afresh and stop counting.
    fn route_back(&mut self, id: u32) {
        let Some(plan) = &self.plan.scopes else {
            return;
        };
        let Some(scope) = self.state.scopes.get_mut(id as usize) else {
            return;
        };
        let fresh = &plan.judging(scope.tier.as_deref()).fresh;
        for (g, fresh) in scope.gates.iter_mut().zip(fresh) {
            *g = GateState::new(fresh);
        }
        scope.routed_back = true;
    }

    /// Whether scope `id` is routed back (its samples and gates do not count).
    #[inline]
    pub(super) fn is_routed_back(&self, id: u32) -> bool {
        self.state
            .scopes
            .get(id as usize)
            .is_some_and(|s| s.routed_back)
    }

    /// The scopes routed back, in key order.
    pub(super) fn routed_back(&self) -> Vec<ScopeKey> {
        let mut keys: Vec<ScopeKey> = self
            .state
            .scopes
            .iter()
            .filter(|s| s.routed_back)
            .map(|s| s.key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// A ladder action was acknowledged: the gates run again.
    pub(super) fn ladder_acknowledged(&mut self, now: Timestamp) {
        let phase = self.current_phase();
        let analysed = self
            .config
            .gates
            .iter()
            .any(|g| phase.is_some_and(|p| g.phases.contains(&p)));
        self.state.analysis_at = analysed.then(|| self.plan.next_evaluation(now)).flatten();
    }

    /// Instead of promoting on its own (`reason` `stage_passed`) a candidate that scopes
    /// were routed back from, the rollout pauses for approval, naming them. True when
    /// it did.
    pub(super) fn hold_promotion(&mut self, now: Timestamp, reason: Reason, out: &mut Out) -> bool {
        let Some(r) = self.state.rollout.as_ref() else {
            return false;
        };
        let next = self.plan.stages.get(r.stage as usize + 1);
        if reason != Reason::StagePassed
            || r.promoted_at.is_some()
            || !matches!(next, Some(Stage::Promote))
        {
            return false;
        }
        let keys = self.routed_back();
        if keys.is_empty() {
            return false;
        }
        self.pause_for_approval(now, Reason::GraduatedResponse, out);
        if let Some(d) = out.decisions.last_mut() {
            let names: Vec<String> = keys.iter().map(ScopeKey::label).collect();
            d.detail = format!(
                "routed back from the candidate: scopes {}; resume to promote",
                names.join(", ")
            );
        }
        true
    }

    /// Whether the ladder froze the rollout.
    pub(super) fn frozen(&self) -> bool {
        self.state
            .rollout
            .as_ref()
            .is_some_and(|r| r.ladder.frozen.is_some())
    }

    /// `resume` of a frozen rollout: the stage timer runs on with the time it had left
    /// (into an operator's pause, if one holds), an approval pause's deadline moves on
    /// by the time spent frozen, and the stage ends if it is due to.
    pub(super) fn unfreeze(&mut self, at: Timestamp, out: &mut Out) {
        let Some(r) = self.state.rollout.as_mut() else {
            return;
        };
        let Some(f) = r.ladder.frozen.take() else {
            return;
        };
        match r.pause.as_mut() {
            Some(p) if p.kind == PauseKind::Operator => {
                p.remaining_ms = p.remaining_ms.or(f.remaining_ms);
            }
            pause => {
                if let Some(p) = pause {
                    p.deadline = p.deadline.map(|d| later(d, at.saturating_sub(f.since)));
                }
                r.stage_ends_at = f.remaining_ms.map(|ms| later(at, ms));
            }
        }
        self.stage_end(at, out);
    }
}

impl Policy {
    /// Whether gates tripped in scopes (`tripped`, every one a scope's report) meet
    /// `rule`, given the same evaluation's `overall` reports (whose samples a traffic
    /// share is of): a rule with no condition is met by any tripped scope.
    pub(super) fn rule_met(
        &self,
        rule: &Impact,
        tripped: &[GateReport],
        overall: &[GateReport],
    ) -> bool {
        if rule.tiers.is_empty() && rule.scopes_min.is_none() && rule.traffic_min.is_none() {
            return !tripped.is_empty();
        }
        self.impact_met(rule, tripped, overall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Sample;

    /// Ten tenants on a 50 % canary for ten minutes, then promotion; `ladder` is the
    /// `scopes.ladder` JSON.
    fn policy(ladder: &str) -> Policy {
        let scopes = format!(r#""scopes": {{"by": ["tenant"], "ladder": {ladder}}},"#);
        Policy::from_json(&config(&scopes), 0).unwrap()
    }

    /// The config of [`policy`] with `scopes` (a key and a comma) for its scopes.
    fn config(scopes: &str) -> String {
        format!(
            r#"{{
          "format_version": 1,
          "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
          "stable": "v1", "candidate": "v2",
          "metrics": [{{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}}],
          "gates": [{{"name": "mean", "metric": "latency_ms", "stat": "mean",
                     "rule": {{"kind": "threshold", "max": 200}}, "samples_min": 5}}],
          "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 50, "duration_ms": 600000}}]}},
          "analysis": {{"interval_ms": 60000}},
          "safety": {{"ack_timeout_ms": 60000}},
          {scopes}
          "limits": {{"scopes_max": 64}}
        }}"#
        )
    }

    /// Traffic from ten tenants every 100 ms in `[from, to)`, on both arms, the
    /// tenants `slow(t)` slow on v2 (400 ms against 100 ms); every action is
    /// acknowledged at once. Returns the decisions.
    fn drive(p: &mut Policy, from: u64, to: u64, slow: impl Fn(u64) -> Vec<u32>) -> Vec<Decision> {
        let mut decisions = Vec::new();
        let keep = |p: &mut Policy, step: Step, t: u64, decisions: &mut Vec<Decision>| {
            decisions.extend(step.decisions.iter().cloned());
            for id in step.actions().filter_map(|d| d.action_id) {
                let ack = p
                    .handle(&Input::Ack {
                        at: t,
                        action_id: id,
                    })
                    .unwrap();
                decisions.extend(ack.decisions);
            }
        };
        for t in (from..to).step_by(100) {
            let tenant = ((t / 100) % 10) as u32;
            for arm in ["v1", "v2"] {
                let x = if arm == "v2" && slow(t).contains(&tenant) {
                    400.0
                } else {
                    100.0
                };
                let mut s = Sample::value(t, arm, "latency_ms", x);
                s.tenant = Some(format!("t{tenant}"));
                let step = p.observe(&s).unwrap();
                keep(p, step, t, &mut decisions);
            }
        }
        let step = p.tick(to).unwrap();
        keep(p, step, to, &mut decisions);
        decisions
    }

    fn kinds(decisions: &[Decision]) -> Vec<(&'static str, Reason)> {
        decisions
            .iter()
            .filter(|d| !matches!(d.action, Action::SetWeight { .. }))
            .map(|d| {
                let kind = match d.action {
                    Action::PauseOnboarding { .. } => "pause_onboarding",
                    Action::RouteBack { .. } => "route_back",
                    Action::Freeze { .. } => "freeze",
                    Action::Rollback { .. } => "rollback",
                    Action::Hold {} => "hold",
                    Action::Escalate {} => "escalate",
                    Action::PauseForApproval { .. } => "pause_for_approval",
                    Action::Promote { .. } => "promote",
                    _ => "other",
                };
                (kind, d.reason)
            })
            .collect()
    }

    fn tenant(name: &str) -> ScopeKey {
        ScopeKey {
            tenant: Some(name.into()),
            ..ScopeKey::default()
        }
    }

    fn first<'d>(decisions: &'d [Decision], kind: &str) -> &'d Decision {
        let i = kinds(decisions)
            .iter()
            .position(|(k, _)| *k == kind)
            .unwrap();
        decisions
            .iter()
            .filter(|d| !matches!(d.action, Action::SetWeight { .. }))
            .nth(i)
            .unwrap()
    }

    #[test]
    fn pause_onboarding_is_taken_once_then_the_rollout_holds() {
        let mut p = policy(
            r#"[{"rung": "pause_onboarding"}, {"rung": "rollback", "when": {"scopes_min": 3}}]"#,
        );
        let d = drive(&mut p, 0, 300_000, |_| vec![3]);
        let k = kinds(&d);
        let pauses = k.iter().filter(|(k, _)| *k == "pause_onboarding").count();
        assert_eq!(pauses, 1, "{k:?}");
        assert!(k.iter().all(|(k, _)| *k != "rollback"), "{k:?}");
        let pause = first(&d, "pause_onboarding");
        assert_eq!(pause.reason, Reason::GraduatedResponse);
        assert!(pause.action_id.is_some() && pause.ack_deadline.is_some());
        assert_eq!(
            pause.detail,
            "rung pause_onboarding: failing in scopes tenant=t3"
        );
        // Later evaluations hold at the rung, naming it, and never escalate.
        let holds: Vec<_> = d.iter().filter(|d| d.action == Action::Hold {}).collect();
        assert!(!holds.is_empty());
        assert!(holds.iter().all(|h| h.reason == Reason::GraduatedResponse
            && h.detail == "at rung pause_onboarding: failing in scopes tenant=t3"));
        assert!(p.status().onboarding_paused);
        assert!(p.routing_table().onboarding_paused);
        assert!(p.routing_table().routed_back.is_empty());
        // The tripped scope holds the stage: no promotion at its end.
        let d = drive(&mut p, 300_000, 700_000, |_| vec![3]);
        assert!(
            kinds(&d).iter().all(|(k, _)| *k == "hold"),
            "{:?}",
            kinds(&d)
        );
        assert_eq!(p.status().stage, Some(0));
    }

    #[test]
    fn route_back_names_new_scopes_each_time_and_promotion_waits_for_approval() {
        let mut p = policy(r#"[{"rung": "route_back"}]"#);
        // t3 is slow from the start, t5 from 200 s.
        let slow = |t: u64| if t < 200_000 { vec![3] } else { vec![3, 5] };
        let d = drive(&mut p, 0, 590_000, slow);
        let backs: Vec<&Decision> = d
            .iter()
            .filter(|d| matches!(d.action, Action::RouteBack { .. }))
            .collect();
        assert_eq!(backs.len(), 2, "{:?}", kinds(&d));
        for (b, name) in backs.iter().zip(["t3", "t5"]) {
            assert_eq!(
                b.action,
                Action::RouteBack {
                    version: "v2".into(),
                    to: "v1".into(),
                    scopes: vec![tenant(name)],
                }
            );
            assert_eq!(b.reason, Reason::GraduatedResponse);
            assert_eq!(
                b.detail,
                format!("rung route_back: failing in scopes tenant={name}")
            );
        }
        assert!(
            kinds(&d).iter().all(|(k, _)| *k == "route_back"),
            "{:?}",
            kinds(&d)
        );
        let routed = vec![tenant("t3"), tenant("t5")];
        assert_eq!(p.routing_table().routed_back, routed);
        assert_eq!(p.status().routed_back, routed);
        // Routed back, their gates stop counting: the stage ends at 600 s, where the
        // rollout would promote; it pauses for approval instead, naming them.
        let d = drive(&mut p, 590_000, 700_000, slow);
        assert_eq!(
            kinds(&d),
            [("pause_for_approval", Reason::GraduatedResponse)]
        );
        assert_eq!(
            d[0].detail,
            "routed back from the candidate: scopes tenant=t3, tenant=t5; resume to promote"
        );
        assert_eq!(p.status().paused, Some(PauseKind::Approval));
        assert_eq!(p.status().aliases.stable, "v1");
        // Approving promotes; the promotion ends the routing back.
        let step = p.handle(&Input::Resume { at: 700_000 }).unwrap();
        let promote = step.actions().next().unwrap();
        assert!(matches!(promote.action, Action::Promote { .. }));
        assert_eq!(promote.reason, Reason::ApprovalGranted);
        let id = promote.action_id.unwrap();
        let _ = p
            .handle(&Input::Ack {
                at: 700_000,
                action_id: id,
            })
            .unwrap();
        assert!(p.status().routed_back.is_empty());
        assert!(p.state.scopes.iter().all(|s| !s.routed_back));
    }

    #[test]
    fn a_routed_back_scope_ignores_its_samples() {
        let mut p = policy(r#"[{"rung": "route_back"}]"#);
        let _ = drive(&mut p, 0, 300_000, |_| vec![3]);
        let id = p.scope_ids[&tenant("t3")] as usize;
        assert!(p.state.scopes[id].routed_back);
        let mean = |p: &Policy| {
            p.reading(p.arm_of("v2"), Some(id as u32), 0, 0, p.now())
                .evidence
        };
        let before = mean(&p);
        let mut s = Sample::value(300_100, "v2", "latency_ms", 900.0);
        s.tenant = Some("t3".into());
        let _ = p.observe(&s).unwrap();
        assert_eq!(mean(&p), before);
        let fresh = &p.plan.scopes.as_ref().unwrap().judging(None).fresh;
        assert_eq!(p.state.scopes[id].gates[0], GateState::new(&fresh[0]));
    }

    #[test]
    fn rungs_escalate_and_without_a_rollback_rung_scopes_never_roll_back() {
        let ladder = r#"[{"rung": "pause_onboarding"}, {"rung": "freeze", "when": {"scopes_min": 2}},
                         {"rung": "rollback", "when": {"scopes_min": 3}}]"#;
        let mut p = policy(ladder);
        let slow = |t: u64| match t {
            0..200_000 => vec![3],
            200_000..400_000 => vec![3, 4],
            _ => vec![3, 4, 5],
        };
        let d = drive(&mut p, 0, 600_000, slow);
        let acts: Vec<_> = kinds(&d)
            .into_iter()
            .filter(|(k, _)| *k != "hold")
            .collect();
        assert_eq!(
            acts,
            [
                ("pause_onboarding", Reason::GraduatedResponse),
                ("freeze", Reason::GraduatedResponse),
                ("escalate", Reason::GraduatedResponse),
                ("rollback", Reason::GateFailed),
                ("escalate", Reason::AutomatedRollback),
            ]
        );
        let freeze = first(&d, "freeze");
        assert_eq!(
            freeze.detail,
            "rung freeze: failing in scopes tenant=t3, tenant=t4"
        );
        assert_eq!(
            first(&d, "rollback").detail,
            "rung rollback: failing in scopes tenant=t3, tenant=t4, tenant=t5"
        );
        // The same three slow tenants without a rollback rung: frozen, never rolled back.
        let mut p = policy(
            r#"[{"rung": "pause_onboarding"}, {"rung": "freeze", "when": {"scopes_min": 2}}]"#,
        );
        let d = drive(&mut p, 0, 600_000, slow);
        assert!(kinds(&d).iter().all(|(k, _)| *k != "rollback"));
        assert!(p.status().frozen);
        // Every tenant slow fails the candidate overall: that always rolls back.
        let mut p = policy(r#"[{"rung": "pause_onboarding"}]"#);
        let d = drive(&mut p, 0, 300_000, |_| (0..10).collect());
        assert_eq!(
            kinds(&d).iter().filter(|(k, _)| *k == "rollback").count(),
            1
        );
    }

    #[test]
    fn freeze_stops_the_stage_timer_until_resume() {
        let mut p = policy(r#"[{"rung": "freeze"}]"#);
        // t3 is slow until 250 s: frozen by then, and its gate clears later.
        let d = drive(&mut p, 0, 250_000, |_| vec![3]);
        let freeze = first(&d, "freeze");
        assert_eq!(
            freeze.action,
            Action::Freeze {
                version: "v2".into()
            }
        );
        let escalation = first(&d, "escalate");
        assert_eq!(escalation.reason, Reason::GraduatedResponse);
        assert_eq!(
            escalation.detail,
            "rung freeze: failing in scopes tenant=t3"
        );
        assert!(p.status().frozen);
        let frozen_at = freeze.at;
        let remaining = p
            .state
            .rollout
            .as_ref()
            .unwrap()
            .ladder
            .frozen
            .unwrap()
            .remaining_ms;
        assert_eq!(remaining, Some(600_000 - frozen_at));
        // Healthy from now on, far past the stage's end: no promotion while frozen.
        let d = drive(&mut p, 250_000, 1_500_000, |_| vec![]);
        assert!(
            kinds(&d).iter().all(|(k, _)| *k == "hold"),
            "{:?}",
            kinds(&d)
        );
        assert_eq!(p.status().stage, Some(0));
        assert_eq!(p.next_deadline(), Some(1_560_000)); // the next analysis only
        // An operator's resume unfreezes; the stage runs out its remaining time.
        let step = p.handle(&Input::Resume { at: 1_500_000 }).unwrap();
        assert!(step.decisions.is_empty(), "{step:?}");
        assert!(!p.status().frozen);
        assert_eq!(
            p.state.rollout.as_ref().unwrap().stage_ends_at,
            Some(1_500_000 + 600_000 - frozen_at)
        );
        // A second resume finds nothing to resume.
        let e = p.handle(&Input::Resume { at: 1_500_000 }).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidCommand);
        let d = drive(
            &mut p,
            1_500_000,
            1_500_000 + 600_000 - frozen_at + 1,
            |_| vec![],
        );
        assert!(
            kinds(&d).iter().any(|(k, _)| *k == "promote"),
            "{:?}",
            kinds(&d)
        );
    }

    #[test]
    fn an_unacknowledged_rung_times_out_and_halts() {
        let mut p = policy(r#"[{"rung": "pause_onboarding"}]"#);
        let mut issued = None;
        for t in (0..200_000u64).step_by(100) {
            let tenant = ((t / 100) % 10) as u32;
            for arm in ["v1", "v2"] {
                let x = if arm == "v2" && tenant == 3 {
                    400.0
                } else {
                    100.0
                };
                let mut s = Sample::value(t, arm, "latency_ms", x);
                s.tenant = Some(format!("t{tenant}"));
                let step = p.observe(&s).unwrap();
                for d in step.actions() {
                    match d.action {
                        Action::PauseOnboarding { .. } => issued = Some(d.clone()),
                        _ => {
                            let id = d.action_id.unwrap();
                            let _ = p
                                .handle(&Input::Ack {
                                    at: t,
                                    action_id: id,
                                })
                                .unwrap();
                        }
                    }
                }
            }
        }
        let issued = issued.unwrap();
        let step = p.tick(issued.ack_deadline.unwrap()).unwrap();
        assert_eq!(p.status().halted, Some(Reason::AckTimeout));
        assert!(
            step.decisions
                .iter()
                .any(|d| d.reason == Reason::AckTimeout)
        );
        // Resume issues it again.
        let step = p
            .handle(&Input::Resume {
                at: issued.ack_deadline.unwrap(),
            })
            .unwrap();
        let again = step.actions().next().unwrap();
        assert_eq!(again.action, issued.action);
        assert_eq!(again.reason, Reason::OperatorRetry);
    }

    #[test]
    fn ladders_are_validated() {
        let err = |scopes: &str| {
            let e = Policy::from_json(&config(&format!("{scopes},")), 0).unwrap_err();
            (e.code, e.path)
        };
        let ladder = |rungs: &str| format!(r#""scopes":{{"by":["tenant"],"ladder":{rungs}}}"#);
        assert_eq!(
            err(&ladder(r#"[{"rung":"freeze"},{"rung":"route_back"}]"#)),
            (ErrorCode::InvalidValue, "scopes.ladder[1].rung".into())
        );
        assert_eq!(
            err(&ladder(r#"[{"rung":"freeze"},{"rung":"freeze"}]"#)),
            (ErrorCode::DuplicateName, "scopes.ladder[1].rung".into())
        );
        assert_eq!(
            err(&ladder("[]")),
            (ErrorCode::InvalidValue, "scopes.ladder".into())
        );
        assert_eq!(
            err(
                r#""scopes":{"by":["tenant"],"impact":{"scopes_min":2},"ladder":[{"rung":"rollback"}]}"#
            ),
            (ErrorCode::InvalidValue, "scopes.ladder".into())
        );
        assert_eq!(
            err(&ladder(r#"[{"rung":"freeze","when":{"scopes_min":0}}]"#)),
            (
                ErrorCode::InvalidValue,
                "scopes.ladder[0].when.scopes_min".into()
            )
        );
        assert_eq!(
            err(&ladder(r#"[{"rung":"freeze","when":{"traffic_min":1.5}}]"#)),
            (
                ErrorCode::InvalidValue,
                "scopes.ladder[0].when.traffic_min".into()
            )
        );
        assert_eq!(
            err(&ladder(r#"[{"rung":"freeze","when":{"tiers":[""]}}]"#)),
            (
                ErrorCode::InvalidValue,
                "scopes.ladder[0].when.tiers[0]".into()
            )
        );
        assert_eq!(
            err(&ladder(r#"[{"rung":"halt"}]"#)).0,
            ErrorCode::InvalidJson
        );
    }

    #[test]
    fn a_snapshot_mid_ladder_restores_and_continues_alike() {
        let ladder = r#"[{"rung": "pause_onboarding"}, {"rung": "route_back", "when": {"scopes_min": 2}},
                         {"rung": "freeze", "when": {"scopes_min": 4}}]"#;
        let mut p = policy(ladder);
        let _ = drive(&mut p, 0, 200_000, |_| vec![3]);
        let _ = drive(&mut p, 200_000, 400_000, |_| vec![3, 4, 5]);
        assert!(p.status().onboarding_paused);
        let routed = [tenant("t3"), tenant("t4"), tenant("t5")];
        assert_eq!(p.status().routed_back, routed);
        let text = p.snapshot().to_json();
        assert!(
            text.contains(r#""ladder":{"rung":"route_back","onboarding_paused":true}"#),
            "{text}"
        );
        let mut q = Policy::restore_json(&text).unwrap();
        assert_eq!(q, p);
        let slow = |_| vec![3, 6, 7];
        assert_eq!(
            drive(&mut q, 400_000, 600_000, slow),
            drive(&mut p, 400_000, 600_000, slow)
        );
        assert_eq!(q, p);
        // Restore refuses a ladder state the config cannot reach.
        let corrupt = |from: &str, to: &str| {
            assert!(text.contains(from), "{from}");
            let e = Policy::restore_json(&text.replacen(from, to, 1)).unwrap_err();
            (e.code, e.path)
        };
        assert_eq!(
            corrupt(
                r#""ladder":{"rung":"route_back","#,
                r#""ladder":{"rung":"rollback","#
            ),
            (
                ErrorCode::SnapshotCorrupt,
                "state.rollout.ladder.rung".into()
            )
        );
        assert_eq!(
            corrupt(r#""ladder":{"rung":"route_back","#, r#""ladder":{"#),
            (
                ErrorCode::SnapshotCorrupt,
                "state.rollout.ladder.onboarding_paused".into()
            )
        );
        assert_eq!(
            corrupt(
                r#""onboarding_paused":true"#,
                r#""onboarding_paused":true,"frozen":{"since":0}"#
            ),
            (
                ErrorCode::SnapshotCorrupt,
                "state.rollout.ladder.frozen".into()
            )
        );
        // t2 (healthy, judged, not routed back) marked routed back: its gates are not
        // fresh.
        assert_eq!(p.status().routed_back.len(), 5);
        let e = {
            let mut p2 = p.clone();
            let id = p2.scope_ids[&tenant("t2")] as usize;
            assert_eq!(p2.state.scopes[id].gates[0].last, Some(Verdict::Pass));
            p2.state.scopes[id].routed_back = true;
            Policy::restore_json(&p2.snapshot().to_json()).unwrap_err()
        };
        assert_eq!(e.code, ErrorCode::SnapshotCorrupt);
        let t2 = p.scope_ids[&tenant("t2")];
        assert_eq!(e.path, format!("state.scopes[{t2}].gates.mean"));
        // A scope routed back once the rollout is over.
        let e = {
            let mut p2 = policy(ladder);
            let _ = drive(&mut p2, 0, 700_000, |_| vec![]);
            assert_eq!(p2.status().aliases.stable, "v2");
            assert!(p2.state.rollout.is_none());
            p2.state.scopes[0].routed_back = true;
            Policy::restore_json(&p2.snapshot().to_json()).unwrap_err()
        };
        assert_eq!(
            (e.code, e.path),
            (
                ErrorCode::SnapshotCorrupt,
                "state.scopes[0].routed_back".into()
            )
        );
    }
}
