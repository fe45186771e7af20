//! Scopes (config `scopes`): the dictionary of scope keys, and each sample's share of
//! its scope's windows and detectors. Judging a scope is the overall judgement
//! (`analysis`) over the scope's windows and gate states.

use super::*;
use crate::scope::ScopeKey;

impl Policy {
    /// The id of the scope of a sample with these labels, giving a new key the next id
    /// while there is room and the overflow scope after; `None` without `scopes` in the
    /// config or for a sample lacking one of the `by` labels.
    pub(super) fn scope_of(
        &mut self,
        tenant: Option<&str>,
        tier: Option<&str>,
        agent: Option<&str>,
    ) -> Option<u32> {
        let plan = self.plan.scopes.as_ref()?;
        let key = ScopeKey::of(&plan.by, tenant, tier, agent)?;
        if let Some(&id) = self.scope_ids.get(&key) {
            return Some(id);
        }
        let overflow = ScopeKey::overflow();
        let full = self.scope_ids.contains_key(&overflow)
            || self.state.scopes.len() as u64 + 1 >= u64::from(plan.max);
        let key = if full { overflow } else { key };
        if let Some(&id) = self.scope_ids.get(&key) {
            return Some(id);
        }
        let id = self.state.scopes.len() as u32;
        // A scope's tier is fixed when it is created: it picks its gates' settings.
        let tier = match (&key.tier, key.overflow) {
            (_, true) => None,
            (Some(t), _) => Some(t.clone()),
            (None, _) => tier.map(str::to_string),
        };
        let fresh = &plan.judging(tier.as_deref()).fresh;
        self.state.scopes.push(ScopeOf {
            key: key.clone(),
            tier,
            gates: fresh.iter().map(GateState::new).collect(),
            routed_back: false,
        });
        self.scope_ids.insert(key, id);
        Some(id)
    }

    /// The window of `metric` for `version`'s samples in scope `scope`, made when its
    /// first sample comes.
    pub(super) fn scoped_window_mut(
        &mut self,
        version: &str,
        scope: u32,
        metric: usize,
    ) -> Option<&mut Window> {
        let shapes = &self.plan.shapes;
        let arm = self.state.arms.iter_mut().find(|a| a.version == version)?;
        let s = scope as usize;
        if arm.scoped.len() <= s {
            arm.scoped.resize(s + 1, None);
        }
        let windows =
            arm.scoped[s].get_or_insert_with(|| shapes.iter().map(|s| Window::new(*s)).collect());
        windows.get_mut(metric)
    }

    /// Whether gates tripped in scopes (`tripped`, every one a scope's report) meet
    /// one of the conditions of `rule` (an impact rule, or a ladder rung's `when`),
    /// given the same evaluation's `overall` reports (whose samples a traffic share is
    /// of). See [`Policy::rule_met`] for a rule with none.
    pub(super) fn impact_met(
        &self,
        rule: &crate::config::Impact,
        tripped: &[GateReport],
        overall: &[GateReport],
    ) -> bool {
        let tier_of = |key: &ScopeKey| {
            let id = *self.scope_ids.get(key)?;
            self.state.scopes.get(id as usize)?.tier.as_deref()
        };
        let by_tier = tripped.iter().any(|r| {
            r.scope
                .as_ref()
                .and_then(tier_of)
                .is_some_and(|t| rule.tiers.iter().any(|x| x == t))
        });
        let mut scopes: Vec<&ScopeKey> = tripped.iter().filter_map(|r| r.scope.as_ref()).collect();
        scopes.sort();
        scopes.dedup();
        let by_count = rule
            .scopes_min
            .is_some_and(|k| scopes.len() as u64 >= u64::from(k));
        let by_traffic = rule.traffic_min.is_some_and(|x| {
            overall.iter().any(|o| {
                let share: u64 = tripped
                    .iter()
                    .filter(|r| r.gate == o.gate)
                    .map(|r| r.samples)
                    .sum();
                o.samples > 0 && share as f64 >= x * o.samples as f64
            })
        });
        by_tier || by_count || by_traffic
    }

    /// Gates tripped in scopes below the impact rule (or meeting no rung of the
    /// ladder, as `below` says): the rollout holds at its step, and escalates once per
    /// episode, naming the scopes.
    pub(super) fn hold_for_scopes(
        &mut self,
        now: Timestamp,
        tripped: Vec<GateReport>,
        below: &str,
        out: &mut Out,
    ) {
        let why = Reason::ScopedFailure;
        out.decide(now, Action::Hold {}, why, tripped.clone());
        if self.state.blocked != Some(why) {
            self.state.blocked = Some(why);
            let detail = format!("{}, {below}", Self::scope_names(&tripped));
            out.escalate(now, why, detail, tripped);
        }
    }

    /// The scopes that reports name, for an escalation's detail: `failing in scopes
    /// tenant=acme, tenant=globex` (empty when none does).
    pub(super) fn scope_names(reports: &[GateReport]) -> String {
        let mut names: Vec<String> = reports
            .iter()
            .filter_map(|r| r.scope.as_ref().map(ScopeKey::label))
            .collect();
        if names.is_empty() {
            return String::new();
        }
        names.sort();
        names.dedup();
        format!("failing in scopes {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Sample;

    /// Ten tenants on a 50 % canary; the candidate is slow for one of them only.
    fn config(scopes_max: u32) -> String {
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
          "scopes": {{"by": ["tenant"]}},
          "limits": {{"scopes_max": {scopes_max}}}
        }}"#
        )
    }

    /// Runs ten minutes of traffic from `tenants` tenants, `slow` of them slow on v2;
    /// returns every step.
    fn run(p: &mut Policy, tenants: u32, slow: &[u32]) -> Vec<Step> {
        let mut steps = vec![p.tick(0).unwrap()];
        for i in 0..6000u64 {
            let t = i * 100;
            let tenant = (i % u64::from(tenants)) as u32;
            for arm in ["v1", "v2"] {
                let x = if arm == "v2" && slow.contains(&tenant) {
                    400.0
                } else {
                    100.0
                };
                let mut s = Sample::value(t, arm, "latency_ms", x);
                s.tenant = Some(format!("t{tenant}"));
                steps.push(p.observe(&s).unwrap());
            }
            let acks: Vec<u64> = steps
                .last()
                .into_iter()
                .chain(steps.first())
                .flat_map(|s| s.decisions.iter().filter_map(|d| d.action_id))
                .filter(|id| p.status().pending_action == Some(*id))
                .collect();
            for id in acks {
                steps.push(
                    p.handle(&Input::Ack {
                        at: t,
                        action_id: id,
                    })
                    .unwrap(),
                );
            }
        }
        steps
    }

    fn rollbacks(steps: &[Step]) -> Vec<&Decision> {
        steps
            .iter()
            .flat_map(|s| &s.decisions)
            .filter(|d| matches!(d.action, Action::Rollback { .. }))
            .collect()
    }

    fn with_impact(impact: &str) -> Policy {
        let text = config(64).replace(
            r#""scopes": {"by": ["tenant"]},"#,
            &format!(r#""scopes": {{"by": ["tenant"], "impact": {impact}}},"#),
        );
        Policy::from_json(&text, 0).unwrap()
    }

    fn scoped_failures(steps: &[Step]) -> (usize, usize) {
        let decisions = steps.iter().flat_map(|s| &s.decisions);
        let (mut holds, mut escalations) = (0, 0);
        for d in decisions.filter(|d| d.reason == Reason::ScopedFailure) {
            match d.action {
                Action::Hold {} => holds += 1,
                Action::Escalate {} => escalations += 1,
                _ => panic!("{d:?}"),
            }
        }
        (holds, escalations)
    }

    #[test]
    fn below_the_impact_rule_the_rollout_holds_and_escalates_once() {
        // One slow tenant of ten, under "at least 3 scopes": held, not rolled back.
        let mut p = with_impact(r#"{"scopes_min": 3}"#);
        let steps = run(&mut p, 10, &[3]);
        assert!(rollbacks(&steps).is_empty());
        let (holds, escalations) = scoped_failures(&steps);
        assert_eq!(escalations, 1);
        assert!(holds >= 5, "{holds}");
        let escalation = steps
            .iter()
            .flat_map(|s| &s.decisions)
            .find(|d| d.reason == Reason::ScopedFailure && d.action == Action::Escalate {})
            .unwrap();
        assert_eq!(
            escalation.detail,
            "failing in scopes tenant=t3, below the impact rule"
        );
        // The held rollout does not advance past its 10-minute step: not promoted.
        let later = p.tick(700_000).unwrap();
        assert!(
            later
                .decisions
                .iter()
                .all(|d| d.reason == Reason::ScopedFailure)
        );
        assert_eq!(p.status().aliases.stable, "v1");
        assert_eq!(p.status().stage, Some(0));
        // Three slow tenants meet it (the candidate still passes overall: 190 ms).
        let mut p = with_impact(r#"{"scopes_min": 3}"#);
        let steps = run(&mut p, 10, &[3, 4, 5]);
        assert_eq!(rollbacks(&steps).len(), 1);
    }

    #[test]
    fn a_traffic_share_rule_counts_the_tripped_scopes_samples() {
        let mut p = with_impact(r#"{"traffic_min": 0.25}"#);
        assert!(rollbacks(&run(&mut p, 10, &[3, 4])).is_empty());
        let mut p = with_impact(r#"{"traffic_min": 0.25}"#);
        assert_eq!(rollbacks(&run(&mut p, 10, &[3, 4, 5])).len(), 1);
    }

    #[test]
    fn impact_rules_are_validated() {
        let err = |impact: &str| {
            let text = config(64).replace(
                r#""scopes": {"by": ["tenant"]},"#,
                &format!(r#""scopes": {{"by": ["tenant"], "impact": {impact}}},"#),
            );
            let e = Policy::from_json(&text, 0).unwrap_err();
            (e.code, e.path)
        };
        assert_eq!(err("{}"), (ErrorCode::InvalidValue, "scopes.impact".into()));
        assert_eq!(
            err(r#"{"traffic_min": 0}"#),
            (ErrorCode::InvalidValue, "scopes.impact.traffic_min".into())
        );
        assert_eq!(
            err(r#"{"scopes_min": 0}"#),
            (ErrorCode::InvalidValue, "scopes.impact.scopes_min".into())
        );
        assert_eq!(
            err(r#"{"tiers": [""]}"#),
            (ErrorCode::InvalidValue, "scopes.impact.tiers[0]".into())
        );
    }

    #[test]
    fn one_slow_tenant_rolls_back_and_is_named() {
        let mut p = Policy::from_json(&config(64), 0).unwrap();
        let steps = run(&mut p, 10, &[3]);
        let rb = rollbacks(&steps);
        assert_eq!(rb.len(), 1, "{rb:?}");
        let tripped: Vec<_> = rb[0].gates.iter().map(|g| g.scope.clone()).collect();
        let acme = ScopeKey {
            tenant: Some("t3".into()),
            ..ScopeKey::default()
        };
        assert_eq!(tripped, vec![Some(acme.clone())]);
        // Overall the candidate passes: its mean is 130 ms.
        let analyses: Vec<_> = steps
            .iter()
            .flat_map(|s| &s.events)
            .filter_map(|e| match &e.kind {
                EventKind::Analysis {
                    reports, scoped, ..
                } => Some((reports, scoped)),
                _ => None,
            })
            .collect();
        assert!(analyses.iter().all(|(r, _)| r[0].verdict == Verdict::Pass));
        // Only the slow tenant is ever listed, failing.
        assert!(
            analyses
                .iter()
                .all(|(_, s)| s.iter().all(|r| r.scope == Some(acme.clone())))
        );
        assert!(analyses.iter().any(|(_, s)| !s.is_empty()));
        let escalation = steps
            .iter()
            .flat_map(|s| &s.decisions)
            .find(|d| d.reason == Reason::AutomatedRollback)
            .unwrap();
        assert_eq!(escalation.detail, "failing in scopes tenant=t3");
    }

    #[test]
    fn without_scopes_the_slow_tenant_goes_unseen() {
        let text = config(64).replace(r#""scopes": {"by": ["tenant"]},"#, "");
        let mut p = Policy::from_json(&text, 0).unwrap();
        assert!(rollbacks(&run(&mut p, 10, &[3])).is_empty());
    }

    #[test]
    fn tenants_beyond_scopes_max_fold_into_the_overflow_scope() {
        let mut p = Policy::from_json(&config(4), 0).unwrap();
        // t0, t1, t2 get scopes; t3..t9 share the overflow scope, where t7 alone is
        // slow: 1 in 7 of its samples at 400 ms keeps it at about 143 ms, passing.
        let steps = run(&mut p, 10, &[7]);
        let keys: Vec<String> = p.state.scopes.iter().map(|s| s.key.label()).collect();
        assert_eq!(keys, ["tenant=t0", "tenant=t1", "tenant=t2", "(overflow)"]);
        assert!(rollbacks(&steps).is_empty());
        // Three slow tenants in the overflow scope fail it (about 229 ms) while the
        // candidate passes overall (190 ms).
        let mut p = Policy::from_json(&config(4), 0).unwrap();
        let rb = rollbacks(&run(&mut p, 10, &[5, 6, 7]))
            .into_iter()
            .flat_map(|d| d.gates.iter().map(|g| g.scope.clone()))
            .collect::<Vec<_>>();
        assert_eq!(rb, vec![Some(ScopeKey::overflow())]);
    }

    #[test]
    fn snapshots_keep_scopes_and_restore_continues_alike() {
        let mut p = Policy::from_json(&config(4), 0).unwrap();
        let _ = run(&mut p, 10, &[]);
        let text = p.snapshot().to_json();
        assert!(
            text.contains(r#""scopes":[{"key":{"tenant":"t0"}"#),
            "{text}"
        );
        let mut q = Policy::restore_json(&text).unwrap();
        assert_eq!(q, p);
        assert_eq!(q.scope_ids, p.scope_ids);
        let mut s = Sample::value(600_000, "v2", "latency_ms", 150.0);
        s.tenant = Some("t8".into());
        assert_eq!(q.observe(&s).unwrap(), p.observe(&s).unwrap());
        assert_eq!(q, p);
    }
}

#[cfg(test)]
mod tier_tests {
    use super::*;
    use crate::input::Sample;

    const CONFIG: &str = r#"{
      "format_version": 1,
      "versions": [{"id": "v1", "digest": "d1", "validated": true}, {"id": "v2", "digest": "d2"}],
      "stable": "v1", "candidate": "v2",
      "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
      "gates": [{"name": "mean", "metric": "latency_ms", "stat": "mean",
                 "rule": {"kind": "threshold", "max": 200}, "samples_min": 5}],
      "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 600000}]},
      "scopes": {"by": ["tenant"],
                 "tiers": {"gold": {"gates": {"mean": {"rule": {"kind": "threshold", "max": 150}}}}}}
    }"#;

    /// Ten minutes of v2 at 180 ms for every tenant; acme is gold.
    fn run(config: &str) -> (Policy, Vec<Decision>) {
        let mut p = Policy::from_json(config, 0).unwrap();
        let mut decisions = p.tick(0).unwrap().decisions;
        for i in 0..3000u64 {
            let t = i * 200;
            let tenant = ["acme", "globex", "initech"][(i % 3) as usize];
            for (arm, x) in [("v1", 100.0), ("v2", 180.0)] {
                let mut s = Sample::value(t, arm, "latency_ms", x);
                s.tenant = Some(tenant.into());
                s.tier = Some(if tenant == "acme" { "gold" } else { "silver" }.into());
                decisions.extend(p.observe(&s).unwrap().decisions);
            }
            if let Some(id) = p.status().pending_action
                && !decisions
                    .iter()
                    .any(|d| matches!(d.action, Action::Rollback { .. }))
            {
                let step = p
                    .handle(&Input::Ack {
                        at: t,
                        action_id: id,
                    })
                    .unwrap();
                decisions.extend(step.decisions);
            }
        }
        (p, decisions)
    }

    #[test]
    fn a_gold_tenant_is_held_to_its_tier_s_threshold() {
        let (p, decisions) = run(CONFIG);
        let tiers: Vec<Option<&str>> = p.state.scopes.iter().map(|s| s.tier.as_deref()).collect();
        assert_eq!(tiers, [Some("gold"), Some("silver"), Some("silver")]);
        let rollback = decisions
            .iter()
            .find(|d| matches!(d.action, Action::Rollback { .. }))
            .expect("a rollback");
        let scopes: Vec<String> = rollback
            .gates
            .iter()
            .map(|g| g.scope.as_ref().map_or("overall".into(), ScopeKey::label))
            .collect();
        assert_eq!(scopes, ["tenant=acme"]);
        let crate::output::Evidence::Bounds { max, .. } = rollback.gates[0].evidence else {
            panic!("{:?}", rollback.gates[0].evidence);
        };
        assert_eq!(max, Some(150.0));
        // Without the override, 180 ms passes everywhere.
        let plain = CONFIG.replace(r#""gold""#, r#""platinum""#);
        let (_, decisions) = run(&plain);
        assert!(
            !decisions
                .iter()
                .any(|d| matches!(d.action, Action::Rollback { .. }))
        );
    }

    #[test]
    fn an_impact_rule_by_tier_acts_on_gold_scopes_only() {
        let gold = CONFIG.replace(
            r#""by": ["tenant"],"#,
            r#""by": ["tenant"], "impact": {"tiers": ["gold"]},"#,
        );
        let (_, decisions) = run(&gold);
        assert!(
            decisions
                .iter()
                .any(|d| matches!(d.action, Action::Rollback { .. }))
        );
        // The same override on silver: globex and initech fail, below the rule.
        let silver = gold.replace(r#""tiers": {"gold""#, r#""tiers": {"silver""#);
        let (p, decisions) = run(&silver);
        assert!(
            !decisions
                .iter()
                .any(|d| matches!(d.action, Action::Rollback { .. }))
        );
        let held: Vec<&Decision> = decisions
            .iter()
            .filter(|d| d.reason == Reason::ScopedFailure && d.action == Action::Escalate {})
            .collect();
        assert_eq!(held.len(), 1);
        assert_eq!(
            held[0].detail,
            "failing in scopes tenant=globex, tenant=initech, below the impact rule"
        );
        assert_eq!(p.status().stage, Some(0));
    }

    #[test]
    fn tier_overrides_are_checked_against_the_gates() {
        let err = |from: &str, to: &str| {
            let e = Policy::from_json(&CONFIG.replace(from, to), 0).unwrap_err();
            (e.code, e.path)
        };
        assert_eq!(
            err(r#"{"mean": {"rule""#, r#"{"p95": {"rule""#),
            (
                ErrorCode::UnknownReference,
                "scopes.tiers.gold.gates.p95".into()
            )
        );
        assert_eq!(
            err(
                r#"{"kind": "threshold", "max": 150}"#,
                r#"{"kind": "rate_slo", "max_rate": 0.1}"#
            ),
            (
                ErrorCode::InvalidValue,
                "scopes.tiers.gold.gates.mean.rule".into()
            )
        );
        assert_eq!(
            err(r#""max": 150"#, r#""max": 150, "min": 300"#),
            (
                ErrorCode::MinAboveMax,
                "scopes.tiers.gold.gates.mean.rule.min".into()
            )
        );
        assert_eq!(
            err(r#"{"gold": {"gates""#, r#"{"": {"gates""#),
            (ErrorCode::InvalidValue, "scopes.tiers[\"\"]".into())
        );
    }
}
