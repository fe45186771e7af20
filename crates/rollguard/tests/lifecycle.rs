//! End-to-end behaviour of the rollout machine, driven as a service would drive it.

use rollguard::{Action, EventKind, Input, Policy, Reason, Sample, Step, TargetKind};

const CONFIG: &str = r#"{
  "format_version": 1,
  "versions": [
    {"id": "v1", "digest": "sha256:01", "validated": true,
     "components": {"model": "m-1", "prompt_template": "p-1"}},
    {"id": "v2", "digest": "sha256:02"},
    {"id": "v3", "digest": "sha256:03"}
  ],
  "stable": "v1",
  "metrics": [
    {"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6},
    {"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6}
  ],
  "gates": [
    {"name": "p95_vs_stable", "metric": "latency_ms", "stat": "p95",
     "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 20},
    {"name": "error_rate", "metric": "errors", "stat": "rate",
     "rule": {"kind": "vs_baseline", "max_increase": 0.005}, "samples_min": 100}
  ],
  "strategy": {"kind": "canary", "steps": [
    {"kind": "shadow", "duration_ms": 120000},
    {"kind": "set_weight", "weight": 10, "duration_ms": 180000},
    {"kind": "set_weight", "weight": 50, "duration_ms": 180000}
  ], "post_promotion_bake_ms": 180000},
  "analysis": {"interval_ms": 30000},
  "safety": {"cooldown_ms": 600000, "ack_timeout_ms": 60000}
}"#;

/// Drives the policy with samples every second from `from` to `to`, acknowledging
/// every action at once; `latency` gives each arm's latency at a time.
fn drive(
    p: &mut Policy,
    from: u64,
    to: u64,
    latency: impl Fn(&str, u64) -> f64,
    steps: &mut Vec<Step>,
) {
    let mut t = from;
    while t < to {
        let arms = [p.status().aliases.stable.clone()]
            .into_iter()
            .chain(p.status().aliases.candidate.clone())
            .collect::<Vec<_>>();
        for arm in &arms {
            let s = p
                .observe(&Sample::value(t, arm, "latency_ms", latency(arm, t)))
                .unwrap();
            steps.push(s);
            let s = p.observe(&Sample::count(t, arm, "errors", 0, 10)).unwrap();
            steps.push(s);
        }
        let s = p.tick(t).unwrap();
        steps.push(s);
        let ids: Vec<u64> = steps
            .last()
            .unwrap()
            .actions()
            .filter_map(|d| d.action_id)
            .collect();
        for s in steps.iter().rev().take(8).collect::<Vec<_>>() {
            let _ = s;
        }
        for id in ids {
            steps.push(
                p.handle(&Input::Ack {
                    at: t,
                    action_id: id,
                })
                .unwrap(),
            );
        }
        // Actions decided during observe calls.
        let pending = p.status().pending_action;
        if let Some(id) = pending {
            steps.push(
                p.handle(&Input::Ack {
                    at: t,
                    action_id: id,
                })
                .unwrap(),
            );
        }
        t += 1000;
    }
}

fn decisions(steps: &[Step]) -> Vec<(u64, Action, Reason)> {
    steps
        .iter()
        .flat_map(|s| s.decisions.iter())
        .map(|d| (d.at, d.action.clone(), d.reason))
        .collect()
}

#[test]
fn healthy_candidate_walks_every_stage_and_completes() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let mut steps = vec![
        p.handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap(),
    ];
    let id = steps[0].decisions[0].action_id.unwrap();
    steps.push(
        p.handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap(),
    );
    drive(&mut p, 0, 900_000, |_, _| 100.0, &mut steps);
    let kinds: Vec<String> = decisions(&steps)
        .iter()
        .map(|(_, a, _)| {
            serde_json::to_value(a).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["start_shadow", "set_weight", "set_weight", "promote"],
        "{kinds:?}"
    );
    let completed = steps
        .iter()
        .flat_map(|s| &s.events)
        .any(|e| matches!(&e.kind, EventKind::RolloutCompleted { version } if version == "v2"));
    assert!(completed);
    assert_eq!(p.status().aliases.stable, "v2");
    assert_eq!(p.status().aliases.previous.as_deref(), Some("v1"));
}

#[test]
fn latency_regression_rolls_back_after_persistence_with_onset() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let mut steps = vec![
        p.handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap(),
    ];
    let id = steps[0].decisions[0].action_id.unwrap();
    steps.push(
        p.handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap(),
    );
    // v2 regresses from t = 200 s, during the 10 % step.
    let onset = 200_000;
    drive(
        &mut p,
        0,
        600_000,
        |arm, t| {
            if arm == "v2" && t >= onset {
                250.0
            } else {
                100.0
            }
        },
        &mut steps,
    );
    let rollbacks: Vec<_> = steps
        .iter()
        .flat_map(|s| &s.decisions)
        .filter(|d| matches!(d.action, Action::Rollback { .. }))
        .collect();
    assert_eq!(rollbacks.len(), 1, "{rollbacks:#?}");
    let d = rollbacks[0];
    assert_eq!(d.reason, Reason::GateFailed);
    let Action::Rollback {
        from,
        to,
        target,
        automated,
        degradation_started_at,
    } = &d.action
    else {
        unreachable!()
    };
    assert_eq!(
        (from.as_str(), to.as_str(), *target, *automated),
        ("v2", "v1", TargetKind::Stable, true)
    );
    // Three failing evaluations 30 s apart: the first failure comes within a window of
    // the onset and the rollback 60 s after it.
    let onset_estimate = degradation_started_at.unwrap();
    assert!(
        onset_estimate <= onset + 10_000 && onset_estimate + 10_000 >= onset,
        "{onset_estimate}"
    );
    assert!(
        d.at > onset && d.at <= onset + 120_000,
        "rollback at {}",
        d.at
    );
    assert_eq!(d.gates[0].gate, "p95_vs_stable");
    assert!(d.gates[0].evidence.observed().unwrap() > d.gates[0].evidence.bounds_of().1.unwrap());
    assert_eq!(p.status().aliases.stable, "v1");
    assert!(p.status().cooldown_until.is_some());
    let escalations = decisions(&steps)
        .into_iter()
        .filter(|(_, a, _)| matches!(a, Action::Escalate {}))
        .count();
    assert_eq!(escalations, 1);
}

#[test]
fn a_very_late_tick_does_bounded_work_and_stays_idempotent() {
    use rollguard::limits::ANALYSIS_CATCHUP_MAX;
    let config = r#"{"format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": true}],
        "stable": "v1", "metrics": [{"name": "m", "kind": "value", "window_ms": 10000}],
        "gates": [{"name": "g", "metric": "m", "stat": "mean", "phases": ["steady"],
                   "rule": {"kind": "threshold", "max": 10}}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 5}]},
        "analysis": {"interval_ms": 1000}}"#;
    let mut p = Policy::from_json(config, 0).unwrap();
    // Evaluations are due every second from 1 s; the tick comes 500 s late.
    let step = p.tick(500_000).unwrap();
    let skipped: Vec<_> = step
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AnalysisSkipped {
                evaluations,
                resumes_at,
            } => Some((evaluations, resumes_at)),
            _ => None,
        })
        .collect();
    let analyses = step
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Analysis { .. }))
        .count() as u64;
    assert_eq!(analyses, ANALYSIS_CATCHUP_MAX);
    assert_eq!(
        skipped,
        [(
            500 - ANALYSIS_CATCHUP_MAX,
            (501 - ANALYSIS_CATCHUP_MAX) * 1000
        )]
    );
    assert_eq!(p.next_deadline(), Some(501_000));
    let again = p.tick(500_000).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn column_batches_are_atomic_and_equal_to_single_samples() {
    let mut columns = Policy::from_json(CONFIG, 0).unwrap();
    let mut singles = columns.clone();
    let at = [1_000, 2_000, 2_000, 3_000];
    let values = [101.0, 99.5, 120.25, 80.0];
    let _ = columns
        .observe_values("v1", "latency_ms", &at, &values)
        .unwrap();
    let _ = columns
        .observe_counts("v1", "errors", &[3_000, 3_000], &[1, 0], &[10, 10])
        .unwrap();
    for (t, x) in at.iter().zip(values) {
        let _ = singles.observe_value(*t, "v1", "latency_ms", x).unwrap();
    }
    let _ = singles.observe_count(3_000, "v1", "errors", 1, 10).unwrap();
    let _ = singles.observe_count(3_000, "v1", "errors", 0, 10).unwrap();
    assert_eq!(columns, singles);

    // One bad row refuses the whole column and names the row.
    let before = columns.clone();
    let err = columns
        .observe_values("v1", "latency_ms", &[4_000, 5_000], &[1.0, f64::NAN])
        .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_str()),
        (rollguard::ErrorCode::NonFiniteValue, "value[1]")
    );
    let err = columns
        .observe_counts("v1", "errors", &[4_000, 3_999], &[0, 0], &[1, 1])
        .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_str()),
        (rollguard::ErrorCode::TimeWentBackwards, "at[1]")
    );
    let err = columns
        .observe_values("v9", "latency_ms", &[4_000], &[1.0])
        .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_str()),
        (rollguard::ErrorCode::UnknownArm, "arm")
    );
    let err = columns
        .observe_values("v1", "latency_ms", &[4_000], &[])
        .unwrap_err();
    assert_eq!(
        (err.code, err.path.as_str()),
        (rollguard::ErrorCode::InvalidValue, "value")
    );
    assert_eq!(columns, before);
}

/// A registration on a full registry must not evict the target of a pending rollback:
/// the ack would make an unregistered version stable, and every later snapshot would be
/// refused on restore. The target is pinned, so another version goes instead (or, with
/// none to spare, the registration is refused with `registry_full`).
#[test]
fn a_pending_rollback_target_is_never_evicted() {
    let config = r#"{"format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": true},
                     {"id": "v2", "digest": "d2", "validated": true},
                     {"id": "v3", "digest": "d3", "validated": true},
                     {"id": "v4", "digest": "d4", "validated": true},
                     {"id": "v5", "digest": "d5", "validated": true}],
        "stable": "v1",
        "metrics": [{"name": "m", "kind": "value", "window_ms": 10000}],
        "gates": [],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 5}]},
        "analysis": {"interval_ms": 1000},
        "limits": {"versions_max": 5}}"#;
    let register = |p: &mut Policy, id: &str| {
        p.handle_json(&format!(
            r#"{{"kind": "register_version", "at": 10,
                 "version": {{"id": "{id}", "digest": "d-{id}"}}}}"#
        ))
    };
    let mut p = Policy::from_json(config, 0).unwrap();
    // v2 is neither an alias nor one of the three latest validated (v3–v5).
    let step = p
        .handle(&Input::RevertNow {
            at: 10,
            target: Some(TargetKind::Version),
            version: Some("v2".into()),
        })
        .unwrap();
    let id = step.decisions[0].action_id.unwrap();
    // Full: something must go, but not v2 (v1 is stable and golden, v3–v5 are kept).
    let err = register(&mut p, "n1").unwrap_err();
    assert_eq!(err.code, rollguard::ErrorCode::RegistryFull);
    assert!(p.versions().iter().any(|v| v.id == "v2"));
    let _ = p
        .handle(&Input::Ack {
            at: 20,
            action_id: id,
        })
        .unwrap();
    assert_eq!(p.status().aliases.stable, "v2");
    let restored = Policy::restore_json(&p.snapshot().to_json());
    assert!(restored.is_ok(), "{:?}", restored.err());
}

#[test]
fn a_huge_failure_reason_is_refused_before_it_is_copied() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let step = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let action_id = step.actions().find_map(|d| d.action_id).unwrap();
    let before = p.clone();
    // One byte over the default limits.text_len_max (1024); the issue sent 20 MB.
    let reason = "x".repeat(1025);
    let e = p
        .handle(&Input::ActionFailed {
            at: 1000,
            action_id,
            reason,
        })
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("text_too_long", "reason")
    );
    assert_eq!(p, before);
    let step = p
        .handle(&Input::ActionFailed {
            at: 1000,
            action_id,
            reason: "x".repeat(1024),
        })
        .unwrap();
    assert!(
        step.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Halted { .. }))
    );
}
