//! Environment or model? (`environment.check`, issue 10 item 5.) With the check on, a
//! gate that judges the candidate alone and trips while the stable version fails it too
//! holds and escalates `environment_suspected` instead of rolling back; without it, or
//! when the stable version is fine, the rollback happens as before.

mod common;

use common::Rng;
use rollguard::{
    Action, Decision, ErrorCode, EventKind, Evidence, Input, Policy, PolicyConfig, Reason, Step,
};

/// A mean-latency threshold (max 300, one failure trips) and an errors vs_baseline gate
/// in a 10 % canary of `duration_ms`, with `extra` appended to the config object.
fn config(extra: &str, duration_ms: u64) -> String {
    format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10}},
                  {{"name": "errors", "kind": "count", "window_ms": 10000, "buckets": 10}}],
      "gates": [{{"name": "latency", "metric": "latency_ms", "stat": "mean",
                  "rule": {{"kind": "threshold", "max": 300}}, "persistence": {{"consecutive": 1}}}},
                {{"name": "errors_vs_stable", "metric": "errors", "stat": "rate", "samples_min": 10,
                  "rule": {{"kind": "vs_baseline", "max_increase": 0.05}},
                  "persistence": {{"consecutive": 1}}}}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 10, "duration_ms": {duration_ms}}}],
                    "post_promotion_bake_ms": 30000}},
      "analysis": {{"interval_ms": 10000}}{extra}
    }}"#
    )
}

const ON: &str = r#", "environment": {"check": true}"#;

/// Latency `stable` and `candidate` for both arms in `[t, t + 10 s)` (and no errors),
/// then the evaluation at `t + 10 s`.
fn interval(p: &mut Policy, t: u64, stable: f64, candidate: f64) -> Step {
    for at in [t + 2_000, t + 6_000] {
        for (arm, x) in [("v1", stable), ("v2", candidate)] {
            let _ = p.observe_value(at, arm, "latency_ms", x).unwrap();
            let _ = p.observe_count(at, arm, "errors", 0, 10).unwrap();
        }
    }
    p.tick(t + 10_000).unwrap()
}

fn rollback(step: &Step) -> Option<&Decision> {
    step.decisions
        .iter()
        .find(|d| matches!(d.action, Action::Rollback { .. }))
}

fn with(step: &Step, action: fn(&Action) -> bool, reason: Reason) -> Vec<&Decision> {
    step.decisions
        .iter()
        .filter(|d| action(&d.action) && d.reason == reason)
        .collect()
}

fn is_hold(a: &Action) -> bool {
    matches!(a, Action::Hold {})
}

fn is_escalate(a: &Action) -> bool {
    matches!(a, Action::Escalate {})
}

#[test]
fn a_shared_slowdown_holds_and_escalates_once_with_both_readings() {
    let mut p = common::rolled_out(&config(ON, 600_000));
    let first = interval(&mut p, 0, 490.0, 500.0);
    assert!(rollback(&first).is_none(), "{first:#?}");
    assert_eq!(with(&first, is_hold, Reason::EnvironmentSuspected).len(), 1);
    let esc = with(&first, is_escalate, Reason::EnvironmentSuspected);
    assert_eq!(esc.len(), 1);
    let e = esc[0];
    assert!(
        e.detail.contains("v1 490") && e.detail.contains("v2 500"),
        "{}",
        e.detail
    );
    let report = &e.gates[0];
    assert_eq!(report.gate, "latency");
    assert_eq!(report.arm, "v2");
    assert_eq!(report.baseline_samples, Some(2));
    match &report.evidence {
        Evidence::Bounds {
            observed, baseline, ..
        } => assert_eq!((*observed, *baseline), (Some(500.0), Some(490.0))),
        other => panic!("{other:?}"),
    }
    assert!(
        !first
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::CooldownStarted { .. })),
        "a hold starts no cooldown"
    );
    // Still degraded on both: hold again, no second escalation.
    for t in [10_000, 20_000, 30_000] {
        let s = interval(&mut p, t, 480.0, 500.0);
        assert!(rollback(&s).is_none());
        assert_eq!(with(&s, is_hold, Reason::EnvironmentSuspected).len(), 1);
        assert!(with(&s, is_escalate, Reason::EnvironmentSuspected).is_empty());
    }
    assert_eq!(p.status().aliases.candidate.as_deref(), Some("v2"));
}

#[test]
fn off_by_default_the_same_slowdown_rolls_back() {
    let cfg: PolicyConfig = serde_json::from_str(&config("", 600_000)).unwrap();
    assert!(!cfg.environment.check);
    assert_eq!(cfg.environment.ratio, 0.8);
    let mut p = common::rolled_out(&config("", 600_000));
    let s = interval(&mut p, 0, 490.0, 500.0);
    assert_eq!(rollback(&s).map(|d| d.reason), Some(Reason::GateFailed));
}

#[test]
fn the_candidate_alone_or_clearly_worse_rolls_back() {
    for (stable, candidate) in [(200.0, 500.0), (450.0, 700.0)] {
        let mut p = common::rolled_out(&config(ON, 600_000));
        let s = interval(&mut p, 0, stable, candidate);
        assert_eq!(
            rollback(&s).map(|d| d.reason),
            Some(Reason::GateFailed),
            "stable {stable}, candidate {candidate}"
        );
        assert!(
            !s.decisions
                .iter()
                .any(|d| d.reason == Reason::EnvironmentSuspected)
        );
    }
}

#[test]
fn the_ratio_sets_how_much_of_the_degradation_the_stable_version_must_share() {
    // 150 past the bound against 400: 0.375 of it.
    for (ratio, holds) in [
        (0.0, true),
        (0.3, true),
        (0.375, true),
        (0.4, false),
        (1.0, false),
    ] {
        let extra = format!(r#", "environment": {{"check": true, "ratio": {ratio}}}"#);
        let mut p = common::rolled_out(&config(&extra, 600_000));
        let s = interval(&mut p, 0, 450.0, 700.0);
        assert_eq!(rollback(&s).is_none(), holds, "ratio {ratio}");
    }
}

#[test]
fn when_the_stable_version_recovers_a_failing_candidate_is_rolled_back() {
    let mut p = common::rolled_out(&config(ON, 600_000));
    let s = interval(&mut p, 0, 490.0, 500.0);
    assert!(rollback(&s).is_none());
    let s = interval(&mut p, 10_000, 200.0, 500.0);
    let d = rollback(&s).expect("rolls back");
    assert_eq!(d.reason, Reason::GateFailed);
    assert_eq!(
        with(&s, is_escalate, Reason::AutomatedRollback).len(),
        1,
        "{s:#?}"
    );
}

#[test]
fn a_recovered_stable_version_must_stay_recovered_for_consecutive_evaluations() {
    // The latency gate trips after 2 failures here: the stable version, seen recovered
    // once, may be a window straddling the end of the incident.
    let two = config(ON, 600_000).replacen(
        r#""max": 300}, "persistence": {"consecutive": 1}"#,
        r#""max": 300}, "persistence": {"consecutive": 2}"#,
        1,
    );
    assert_ne!(two, config(ON, 600_000));
    let mut p = common::rolled_out(&two);
    let _ = interval(&mut p, 0, 490.0, 500.0);
    let s = interval(&mut p, 10_000, 490.0, 500.0);
    assert_eq!(with(&s, is_escalate, Reason::EnvironmentSuspected).len(), 1);
    let s = interval(&mut p, 20_000, 290.0, 310.0);
    assert!(rollback(&s).is_none(), "{s:#?}");
    assert_eq!(with(&s, is_hold, Reason::EnvironmentSuspected).len(), 1);
    let s = interval(&mut p, 30_000, 200.0, 500.0);
    assert_eq!(rollback(&s).map(|d| d.reason), Some(Reason::GateFailed));
    // A stable version that fails again in between starts the count over.
    let mut p = common::rolled_out(&two);
    let _ = interval(&mut p, 0, 490.0, 500.0);
    let _ = interval(&mut p, 10_000, 490.0, 500.0);
    for (t, stable) in [(20_000, 200.0), (30_000, 490.0), (40_000, 200.0)] {
        let s = interval(&mut p, t, stable, 500.0);
        assert!(rollback(&s).is_none(), "at {t}");
    }
    let s = interval(&mut p, 50_000, 200.0, 500.0);
    assert!(rollback(&s).is_some());
}

#[test]
fn when_the_environment_recovers_the_rollout_continues() {
    let mut p = common::rolled_out(&config(ON, 30_000));
    let s = interval(&mut p, 0, 490.0, 500.0);
    assert!(rollback(&s).is_none());
    let s = interval(&mut p, 10_000, 200.0, 200.0);
    assert!(
        s.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::GateCleared { .. }))
    );
    let s = interval(&mut p, 20_000, 200.0, 200.0);
    assert!(
        s.decisions
            .iter()
            .any(|d| matches!(d.action, Action::Promote { .. })),
        "{s:#?}"
    );
}

#[test]
fn a_comparison_gate_failing_alongside_still_rolls_back() {
    let mut p = common::rolled_out(&config(ON, 600_000));
    let _ = p.observe_count(1_000, "v1", "errors", 0, 100).unwrap();
    let _ = p.observe_count(1_000, "v2", "errors", 50, 100).unwrap();
    let s = interval(&mut p, 0, 490.0, 500.0);
    let d = rollback(&s).expect("rolls back");
    assert_eq!(d.gates.len(), 2, "both tripped gates are reported");
}

#[test]
fn the_stage_does_not_end_while_suspected() {
    // The step's bake time is over at 20 s while both versions are slow: no promotion.
    let mut p = common::rolled_out(&config(ON, 20_000));
    let _ = interval(&mut p, 0, 490.0, 500.0);
    let s = interval(&mut p, 10_000, 490.0, 500.0);
    assert!(
        !s.decisions
            .iter()
            .any(|d| matches!(d.action, Action::Promote { .. }) || d.action_id.is_some()),
        "{s:#?}"
    );
    assert_eq!(with(&s, is_hold, Reason::EnvironmentSuspected).len(), 1);
}

#[test]
fn in_the_bake_there_is_no_concurrent_arm_and_the_gate_rolls_back() {
    let mut p = common::rolled_out(&config(ON, 10_000));
    let s = interval(&mut p, 0, 200.0, 200.0);
    let promote = s
        .decisions
        .iter()
        .find(|d| matches!(d.action, Action::Promote { .. }))
        .expect("promotes");
    let _ = p
        .handle(&Input::Ack {
            at: 10_000,
            action_id: promote.action_id.unwrap(),
        })
        .unwrap();
    // Baking v2; v1, the previous version, still serves a little and is slow too.
    let s = interval(&mut p, 10_000, 490.0, 500.0);
    let d = rollback(&s).expect("rolls back in the bake");
    assert_eq!(d.reason, Reason::GateFailed);
}

#[test]
fn a_shared_error_spike_holds_a_rate_slo_gate_and_survives_a_snapshot() {
    let cfg = r#"{
      "format_version": 1,
      "versions": [{"id": "v1", "digest": "d1", "validated": true}, {"id": "v2", "digest": "d2"}],
      "stable": "v1",
      "metrics": [{"name": "errors", "kind": "count"}],
      "gates": [{"name": "slo", "metric": "errors", "stat": "rate", "samples_min": 100,
                 "rule": {"kind": "rate_slo", "max_rate": 0.01, "alpha": 0.05}}],
      "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 600000}]},
      "analysis": {"interval_ms": 10000},
      "environment": {"check": true}
    }"#;
    let mut p = common::rolled_out(cfg);
    let _ = p.observe_count(1_000, "v1", "errors", 180, 900).unwrap();
    let _ = p.observe_count(1_000, "v2", "errors", 20, 100).unwrap();
    let s = p.tick(10_000).unwrap();
    assert!(rollback(&s).is_none(), "{s:#?}");
    let esc = with(&s, is_escalate, Reason::EnvironmentSuspected);
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].gates[0].baseline_samples, Some(900));
    assert!(
        esc[0].detail.contains("v1 0.2 (900 requests)"),
        "{}",
        esc[0].detail
    );
    let text = p.snapshot().to_json();
    assert!(
        text.contains("\"stable\""),
        "the shadow test is in the snapshot"
    );
    let mut p = Policy::restore_json(&text).unwrap();
    // v1 recovers, v2 does not: 189/1800 against 40/200 is 0.525 of it.
    let _ = p.observe_count(11_000, "v1", "errors", 9, 900).unwrap();
    let _ = p.observe_count(11_000, "v2", "errors", 20, 100).unwrap();
    let s = p.tick(20_000).unwrap();
    assert_eq!(rollback(&s).map(|d| d.reason), Some(Reason::GateFailed));
}

#[test]
fn without_the_check_a_rate_slo_gate_keeps_no_shadow() {
    let cfg = r#"{
      "format_version": 1,
      "versions": [{"id": "v1", "digest": "d1", "validated": true}, {"id": "v2", "digest": "d2"}],
      "stable": "v1",
      "metrics": [{"name": "errors", "kind": "count"}],
      "gates": [{"name": "slo", "metric": "errors", "stat": "rate",
                 "rule": {"kind": "rate_slo", "max_rate": 0.01}}],
      "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 600000}]},
      "analysis": {"interval_ms": 10000}
    }"#;
    let mut p = common::rolled_out(cfg);
    let _ = p.observe_count(1_000, "v1", "errors", 180, 900).unwrap();
    let text = p.snapshot().to_json();
    assert!(!text.contains("\"stable\":{"), "{text}");
    assert!(
        !text.contains("environment"),
        "a default section is not written"
    );
}

#[test]
fn the_section_is_validated() {
    let bad = |env: &str| {
        let e = Policy::from_json(&config(&format!(r#", "environment": {env}"#), 60_000), 0)
            .expect_err(env);
        (e.code, e.path)
    };
    assert_eq!(
        bad(r#"{"check": true, "ratio": 1.5}"#),
        (ErrorCode::InvalidValue, "environment.ratio".into())
    );
    assert_eq!(
        bad(r#"{"check": true, "ratio": -0.1}"#),
        (ErrorCode::InvalidValue, "environment.ratio".into())
    );
    assert_eq!(
        bad(r#"{"chek": true}"#),
        (ErrorCode::InvalidJson, "environment.chek".into())
    );
    // Written back when not the default, and read the same.
    let cfg: PolicyConfig = serde_json::from_str(&config(
        r#", "environment": {"check": true, "ratio": 0.5}"#,
        60_000,
    ))
    .unwrap();
    let text = serde_json::to_string(&cfg).unwrap();
    assert!(
        text.contains(r#""environment":{"check":true,"ratio":0.5}"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<PolicyConfig>(&text).unwrap(), cfg);
}

/// Under a shared slowdown of random size and noisy readings, the check holds about as
/// often as the arms' excesses stay within the ratio, and never rolls back a candidate
/// that is 2× worse than the stable version's excess (a seeded sanity check of the
/// ratio rule over many draws, not a rate).
#[test]
fn held_candidates_are_never_much_worse_than_stable() {
    let mut rng = Rng(7);
    let mut held = 0;
    for _ in 0..200 {
        let shared = 100.0 + 300.0 * rng.uniform();
        let noise = |r: &mut Rng| 10.0 * r.normal();
        let stable = 200.0 + shared + noise(&mut rng);
        let worse = rng.uniform() < 0.5;
        let candidate = if worse {
            200.0 + 3.0 * shared
        } else {
            200.0 + shared + noise(&mut rng)
        };
        let mut p = common::rolled_out(&config(ON, 600_000));
        let s = interval(&mut p, 0, stable, candidate);
        let past = |x: f64| x - 300.0;
        let expect_hold =
            candidate > 300.0 && past(stable) > 0.0 && past(stable) >= 0.8 * past(candidate);
        assert_eq!(rollback(&s).is_none(), expect_hold || candidate <= 300.0);
        if worse {
            assert!(
                rollback(&s).is_some(),
                "a candidate three times the shared excess"
            );
        }
        held += usize::from(expect_hold);
    }
    assert!(held > 50, "{held}");
}
