//! Compensating actions: side effects recorded per version, undone newest first, one
//! acknowledged `compensate` at a time, after a rollback away from their version.

use rollguard::{Action, ErrorCode, EventKind, Input, Policy, Reason, Step, TargetKind};
use serde_json::json;

const CONFIG: &str = r#"{
  "format_version": 1,
  "versions": [
    {"id": "v1", "digest": "sha256:01", "validated": true},
    {"id": "v2", "digest": "sha256:02"},
    {"id": "v3", "digest": "sha256:03"}
  ],
  "stable": "v1",
  "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10}],
  "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 10000}],
               "post_promotion_bake_ms": 10000},
  "analysis": {"interval_ms": 10000},
  "safety": {"ack_timeout_ms": 60000}
}"#;

fn record(p: &mut Policy, at: u64, version: &str, id: &str) -> Step {
    let input = json!({"kind": "record_effect", "at": at, "version": version,
                       "effect": {"id": id, "undo": {"undo": id}}});
    p.handle_json(&input.to_string()).expect("recorded")
}

fn ack_all(p: &mut Policy, at: u64, step: &Step) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut ids: Vec<u64> = step.actions().filter_map(|d| d.action_id).collect();
    while let Some(id) = ids.pop() {
        let s = p.handle(&Input::Ack { at, action_id: id }).expect("ack");
        ids.extend(s.actions().filter_map(|d| d.action_id));
        steps.push(s);
    }
    steps
}

/// Starts rolling out `version` at `at` and acknowledges what that asks for.
fn start(p: &mut Policy, at: u64, version: &str) {
    let s = p
        .handle(&Input::StartRollout {
            at,
            version: version.into(),
        })
        .unwrap();
    let _ = ack_all(p, at, &s);
}

/// The `(version, effect_id)` of every `compensate` decision, in order.
fn compensations(steps: &[Step]) -> Vec<(String, String)> {
    steps
        .iter()
        .flat_map(|s| &s.decisions)
        .filter_map(|d| match &d.action {
            Action::Compensate {
                version, effect_id, ..
            } => {
                assert_eq!(d.reason, Reason::Compensation);
                Some((version.clone(), effect_id.clone()))
            }
            _ => None,
        })
        .collect()
}

/// v2 completes its rollout and becomes stable; v3 rolls out. Effects of v1 (recorded
/// while it was stable) are committed by v2's promotion. A revert to golden v1 takes
/// traffic from v3 and from v2: both versions' effects are compensated, newest first
/// across the two, and the policy's gates and commands work again afterwards.
#[test]
fn a_rollback_to_golden_compensates_every_version_it_leaves_newest_first() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    start(&mut p, 0, "v2");
    let _ = record(&mut p, 1000, "v1", "s1");
    let _ = record(&mut p, 2000, "v2", "a1");
    // The stage ends at 10 s: promotion, then a 10 s bake, then completion.
    let mut steps = Vec::new();
    for t in (10_000..=40_000).step_by(1000) {
        let s = p.tick(t).unwrap();
        steps.extend(ack_all(&mut p, t, &s));
        steps.push(s);
    }
    let committed: Vec<_> = steps
        .iter()
        .flat_map(|s| &s.events)
        .filter_map(|e| match &e.kind {
            EventKind::EffectsCommitted { version, effects } => Some((version.clone(), *effects)),
            _ => None,
        })
        .collect();
    assert_eq!(committed, [("v1".to_string(), 1)]);
    assert_eq!(p.status().aliases.stable, "v2");
    assert!(p.status().stage.is_none(), "the rollout completed");

    start(&mut p, 41_000, "v3");
    let _ = record(&mut p, 42_000, "v2", "a2");
    let _ = record(&mut p, 43_000, "v3", "b1");
    let _ = record(&mut p, 44_000, "v2", "a3");
    let s = p
        .handle(&Input::RevertNow {
            at: 45_000,
            target: Some(TargetKind::Golden),
            version: None,
        })
        .unwrap();
    let mut steps = vec![s.clone()];
    steps.extend(ack_all(&mut p, 46_000, &s));
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        compensations(&steps),
        pairs(&[("v2", "a3"), ("v3", "b1"), ("v2", "a2"), ("v2", "a1")])
    );
    let undone = steps
        .iter()
        .flat_map(|s| &s.events)
        .filter(|e| matches!(e.kind, EventKind::EffectCompensated { .. }))
        .count();
    assert_eq!(undone, 4);
    assert_eq!(p.status().aliases.stable, "v1");
    assert_eq!(p.status().pending_action, None);
    // Nothing is left: a later rollback compensates nothing more.
    let _ = record(&mut p, 47_000, "v1", "c1");
    let e = p
        .handle_json(
            &json!({"kind": "record_effect", "at": 47_000, "version": "v1",
                    "effect": {"id": "c1", "undo": {}}})
            .to_string(),
        )
        .unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::DuplicateEffect, "effect.id")
    );
}

/// Each compensate waits for its acknowledgement: while it is pending, commands that
/// would issue another action are refused, and the next compensate comes only with the
/// ack. A snapshot taken between them restores to a policy that continues the same way.
#[test]
fn compensations_go_one_at_a_time_and_survive_a_snapshot() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    start(&mut p, 0, "v2");
    for (i, id) in ["x", "y", "z"].iter().enumerate() {
        let _ = record(&mut p, 1000 + i as u64, "v2", id);
    }
    let s = p.handle(&Input::Abort { at: 2000 }).unwrap();
    let rollback = s.actions().next().unwrap().action_id.unwrap();
    let s = p
        .handle(&Input::Ack {
            at: 3000,
            action_id: rollback,
        })
        .unwrap();
    assert_eq!(
        compensations(std::slice::from_ref(&s)),
        [("v2".into(), "z".into())]
    );
    let e = p
        .handle(&Input::RevertNow {
            at: 3000,
            target: None,
            version: None,
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ActionPending);

    let mut restored = Policy::restore_json(&p.snapshot().to_json()).unwrap();
    assert_eq!(restored, p);
    let id = p.status().pending_action.unwrap();
    let a = p
        .handle(&Input::Ack {
            at: 4000,
            action_id: id,
        })
        .unwrap();
    let b = restored
        .handle(&Input::Ack {
            at: 4000,
            action_id: id,
        })
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        compensations(std::slice::from_ref(&a)),
        [("v2".into(), "y".into())]
    );
    let undo = a.actions().find_map(|d| match &d.action {
        Action::Compensate { undo, .. } => Some(serde_json::Value::Object(undo.clone())),
        _ => None,
    });
    assert_eq!(undo, Some(json!({"undo": "y"})));
}

/// Restore refuses effects the policy could not have: an undo that is not an object, an
/// effect of a version that serves no traffic and is not being compensated, effects
/// waiting for compensation with nothing pending, and more than `effects_max`.
#[test]
fn restore_refuses_corrupt_effects() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    start(&mut p, 0, "v2");
    let _ = record(&mut p, 1000, "v2", "e1");
    let good: serde_json::Value = serde_json::from_str(&p.snapshot().to_json()).unwrap();
    assert!(Policy::restore_json(&good.to_string()).is_ok());
    let corrupt = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        Policy::restore_json(&v.to_string()).unwrap_err()
    };
    let e = corrupt(&|v| v["state"]["effects"][0]["undo"] = json!("[1]"));
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "state.effects[0].undo")
    );
    let e = corrupt(&|v| v["state"]["effects"][0]["version"] = json!("v3"));
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "state.effects[0].version")
    );
    let e = corrupt(&|v| v["state"]["effects"][0]["compensating"] = json!(true));
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "state.effects")
    );
    let e = corrupt(&|v| {
        v["config"]["limits"] = json!({"effects_max": 0});
    });
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "state.effects")
    );
    // Unknown fields are refused, as everywhere in a snapshot.
    let e = corrupt(&|v| v["state"]["effects"][0]["surprise"] = json!(1));
    assert_eq!(e.code, ErrorCode::SnapshotCorrupt);
}

/// A compensation that failed halts automation; an operator's `revert_now` overrides the
/// retry, and after its rollback the effects still waiting are compensated with those
/// of the version it leaves, newest first. (`resume` then `ack` is how an operator gives
/// up on one undone by hand.)
#[test]
fn a_revert_after_a_failed_compensation_still_compensates_what_waits() {
    let config = CONFIG.replace(
        r#"{"id": "v3", "digest": "sha256:03"}"#,
        r#"{"id": "v0", "digest": "sha256:00", "validated": true}"#,
    );
    let mut p = Policy::from_json(&config, 0).unwrap();
    start(&mut p, 0, "v2");
    let _ = record(&mut p, 500, "v1", "s1");
    let _ = record(&mut p, 1000, "v2", "e1");
    let _ = record(&mut p, 2000, "v2", "e2");
    let s = p.handle(&Input::Abort { at: 3000 }).unwrap();
    let rollback = s.actions().next().unwrap().action_id.unwrap();
    let s = p
        .handle(&Input::Ack {
            at: 3000,
            action_id: rollback,
        })
        .unwrap();
    let first = compensations(std::slice::from_ref(&s));
    assert_eq!(first, [("v2".into(), "e2".into())]);
    let failed = p
        .handle(&Input::ActionFailed {
            at: 4000,
            action_id: s.actions().next().unwrap().action_id.unwrap(),
            reason: "gateway down".into(),
        })
        .unwrap();
    assert!(
        failed
            .decisions
            .iter()
            .any(|d| d.action == Action::Escalate {} && d.reason == Reason::ActionFailed)
    );
    assert_eq!(p.status().halted, Some(Reason::ActionFailed));
    let s = p
        .handle(&Input::RevertNow {
            at: 5000,
            target: Some(TargetKind::Version),
            version: Some("v0".into()),
        })
        .unwrap();
    let mut steps = vec![s.clone()];
    steps.extend(ack_all(&mut p, 6000, &s));
    assert_eq!(
        compensations(&steps),
        [
            ("v2".to_string(), "e2".to_string()),
            ("v2".into(), "e1".into()),
            ("v1".into(), "s1".into())
        ]
    );
    assert_eq!(p.status().aliases.stable, "v0");
    assert_eq!(p.status().halted, None);
    assert_eq!(p.status().pending_action, None);
}

/// The status counts the effects held and, after a rollback, how many still wait to be
/// compensated, down to none; the counts are absent from its JSON when 0, as before
/// effects existed.
#[test]
fn status_counts_effects_held_and_compensations_waiting() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let counts = |p: &Policy| {
        let s = p.status();
        (s.effects_held, s.compensations_waiting)
    };
    let json = |p: &Policy| serde_json::to_value(p.status()).unwrap();
    assert_eq!(counts(&p), (0, 0));
    assert!(json(&p).get("effects_held").is_none());
    assert!(json(&p).get("compensations_waiting").is_none());
    start(&mut p, 0, "v2");
    let _ = record(&mut p, 1000, "v1", "s1");
    let _ = record(&mut p, 1001, "v2", "x");
    let _ = record(&mut p, 1002, "v2", "y");
    assert_eq!(counts(&p), (3, 0));
    assert_eq!(json(&p)["effects_held"], 3);
    assert!(json(&p).get("compensations_waiting").is_none());
    // The rollback is decided: nothing waits until it is acknowledged.
    let s = p.handle(&Input::Abort { at: 2000 }).unwrap();
    assert_eq!(counts(&p), (3, 0));
    let rollback = s.actions().next().unwrap().action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 3000,
            action_id: rollback,
        })
        .unwrap();
    // v2's two effects wait (the first one's compensate is pending); v1's stays held.
    assert_eq!(counts(&p), (3, 2));
    assert_eq!(json(&p)["compensations_waiting"], 2);
    let restored = Policy::restore_json(&p.snapshot().to_json()).unwrap();
    assert_eq!(restored.status(), p.status());
    for (at, left) in [(4000, 1), (5000, 0)] {
        let id = p.status().pending_action.unwrap();
        let _ = p.handle(&Input::Ack { at, action_id: id }).unwrap();
        assert_eq!(counts(&p), (1 + left, left));
    }
    assert_eq!(p.status().pending_action, None);
    assert!(json(&p).get("compensations_waiting").is_none());
}
