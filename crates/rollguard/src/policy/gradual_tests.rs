//! Gradual rollback: the steps in order with their acknowledgements, the full rollback
//! after the last failing bake or at a new trip, stopping when gates clear, operator
//! commands and the protocol mid-way, and snapshots of a rollback under way.

use super::*;

/// A canary at 50 % for 10 minutes, judged every 10 s on an error rate (`err`) and a
/// latency (`lat`), each tripping at its first failure; a gradual rollback through
/// 25, 10 and 5 % with 30 s per step.
fn config(gradual: bool) -> String {
    let safety = if gradual {
        r#""safety": {"gradual_rollback": {"steps": [25, 10, 5], "bake_ms": 30000}},"#
    } else {
        ""
    };
    format!(
        r#"{{"format_version": 1,
    "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
    "stable": "v1",
    "metrics": [{{"name": "errors", "kind": "count", "window_ms": 10000, "buckets": 10}},
                {{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10}}],
    "gates": [{{"name": "err", "metric": "errors", "stat": "rate",
                "rule": {{"kind": "threshold", "max": 0.1}}, "persistence": {{"consecutive": 1}}}},
              {{"name": "lat", "metric": "latency_ms", "stat": "mean",
                "rule": {{"kind": "threshold", "max": 500}}, "persistence": {{"consecutive": 1}}}}],
    "strategy": {{"kind": "canary",
                 "steps": [{{"kind": "set_weight", "weight": 50, "duration_ms": 600000}},
                           {{"kind": "set_weight", "weight": 100, "duration_ms": 600000}}]}},
    {safety}
    "analysis": {{"interval_ms": 10000}}}}"#
    )
}

/// A policy and what it decided, acknowledging every action at once unless told not to.
struct Run {
    p: Policy,
    decisions: Vec<Decision>,
    events: Vec<Event>,
    auto_ack: bool,
}

/// Health of the candidate at a time: (error rate bad, latency bad).
type Health = fn(Timestamp) -> (bool, bool);

impl Run {
    fn new(gradual: bool) -> Self {
        let p = Policy::from_json(&config(gradual), 0).unwrap();
        let mut run = Self {
            p,
            decisions: Vec::new(),
            events: Vec::new(),
            auto_ack: true,
        };
        run.input(Input::StartRollout {
            at: 0,
            version: "v2".into(),
        });
        run
    }

    fn take(&mut self, step: Step) {
        let acks: Vec<u64> = step.actions().filter_map(|d| d.action_id).collect();
        let at = step.at;
        self.decisions.extend(step.decisions);
        self.events.extend(step.events);
        if self.auto_ack {
            for id in acks {
                self.input(Input::Ack { at, action_id: id });
            }
        }
    }

    fn input(&mut self, input: Input) {
        let step = self.p.handle(&input).unwrap();
        self.take(step);
    }

    /// Samples of both arms every second of `[from, to)` (the candidate's as `health`
    /// says), ticking every 10 s and at `to`.
    fn feed(&mut self, from: Timestamp, to: Timestamp, health: Health) {
        let mut t = from;
        while t < to {
            if t.is_multiple_of(10_000) {
                // Evaluations (and bake ends) fire on their own time, so that actions
                // are acknowledged then.
                let step = self.p.tick(t).unwrap();
                self.take(step);
            }
            let (err_bad, lat_bad) = health(t);
            let mut samples = Vec::new();
            for arm in ["v1", "v2"] {
                let events = if arm == "v2" && err_bad { 50 } else { 1 };
                samples.push(Sample::count(t + 1, arm, "errors", events, 100));
            }
            for arm in ["v1", "v2"] {
                let value = if arm == "v2" && lat_bad { 900.0 } else { 100.0 };
                samples.push(Sample::value(t + 2, arm, "latency_ms", value));
            }
            for s in samples {
                if self.p.state.arms.iter().any(|a| a.version == s.arm) {
                    let step = self.p.observe(&s).unwrap();
                    self.take(step);
                }
            }
            t += 1000;
        }
        let step = self.p.tick(to).unwrap();
        self.take(step);
    }

    /// The decisions with an action id or of one kind, as (time, kind, weight, reason).
    fn actions(&self) -> Vec<(Timestamp, &'static str, u32, Reason)> {
        self.decisions
            .iter()
            .filter(|d| {
                d.action_id.is_some() || matches!(d.action, Action::PauseForApproval { .. })
            })
            .map(|d| match &d.action {
                Action::SetWeight { weight, .. } => (d.at, "set_weight", *weight, d.reason),
                Action::Rollback { .. } => (d.at, "rollback", 0, d.reason),
                Action::Promote { .. } => (d.at, "promote", 100, d.reason),
                Action::StartPreview { .. } => (d.at, "start_preview", 0, d.reason),
                Action::PauseForApproval { .. } => (d.at, "pause_for_approval", 0, d.reason),
                other => panic!("unexpected action {other:?}"),
            })
            .collect()
    }

    fn last_rollback(&self) -> &Decision {
        self.decisions
            .iter()
            .rev()
            .find(|d| matches!(d.action, Action::Rollback { .. }))
            .expect("a rollback")
    }

    fn gradual(&self) -> Option<&gradual::Gradual> {
        self.p.state.rollout.as_ref()?.gradual.as_ref()
    }
}

fn always_bad(_: Timestamp) -> (bool, bool) {
    (true, false)
}

#[test]
fn without_the_option_a_gate_failure_rolls_back_at_once() {
    let mut run = Run::new(false);
    run.feed(0, 10_000, always_bad);
    assert_eq!(
        run.actions(),
        [
            (0, "set_weight", 50, Reason::RolloutStarted),
            (10_000, "rollback", 0, Reason::GateFailed)
        ]
    );
}

#[test]
fn steps_down_in_order_with_acks_then_rolls_back_fully() {
    let mut run = Run::new(true);
    run.feed(0, 100_000, always_bad);
    assert_eq!(
        run.actions(),
        [
            (0, "set_weight", 50, Reason::RolloutStarted),
            (10_000, "set_weight", 25, Reason::GradualRollback),
            (40_000, "set_weight", 10, Reason::GradualRollback),
            (70_000, "set_weight", 5, Reason::GradualRollback),
            (100_000, "rollback", 0, Reason::GateFailed),
        ]
    );
    // Every step has its own action id, acknowledged before the next one.
    let ids: Vec<u64> = run.decisions.iter().filter_map(|d| d.action_id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let acked: Vec<u64> = run
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ActionAcknowledged { action_id } => Some(action_id),
            _ => None,
        })
        .collect();
    assert_eq!(acked, [1, 2, 3, 4, 5]);
    let details: Vec<&str> = run
        .decisions
        .iter()
        .filter(|d| d.reason == Reason::GradualRollback && d.action_id.is_some())
        .map(|d| d.detail.as_str())
        .collect();
    assert_eq!(
        details,
        [
            "gradual rollback, step 1 of 3",
            "gradual rollback, step 2 of 3",
            "gradual rollback, step 3 of 3"
        ]
    );
    // Each acknowledged step starts its bake.
    let started: Vec<(u32, u32, u32, Option<Timestamp>)> = run
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::GradualStepStarted {
                step,
                steps,
                weight,
                ends_at,
            } => Some((step, steps, weight, ends_at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [
            (1, 3, 25, Some(40_000)),
            (2, 3, 10, Some(70_000)),
            (3, 3, 5, Some(100_000))
        ]
    );
    // One escalation when it began; the full rollback keeps the original onset.
    let began: Vec<&Decision> = run
        .decisions
        .iter()
        .filter(|d| matches!(d.action, Action::Escalate {}) && d.reason == Reason::GradualRollback)
        .collect();
    assert_eq!(began.len(), 1);
    assert_eq!(
        began[0].detail,
        "gradual rollback from 50% through 25%, 10%, 5%, 30000 ms per step"
    );
    let rollback = run.last_rollback();
    assert!(
        rollback.detail.contains("after step 3 of 3 at 5%"),
        "{}",
        rollback.detail
    );
    match &rollback.action {
        Action::Rollback {
            to,
            automated,
            degradation_started_at,
            ..
        } => {
            assert_eq!(to, "v1");
            assert!(*automated);
            // The first failing bucket of the first failing window, not the last bake's.
            assert_eq!(*degradation_started_at, Some(0));
        }
        _ => unreachable!(),
    }
    // The stage never advanced: weight 100 was never set.
    assert!(run.p.state.rollout.is_none());
    assert_eq!(run.p.state.registry.aliases.stable, "v1");
}

#[test]
fn next_deadline_includes_the_bake_end() {
    let mut run = Run::new(true);
    run.feed(0, 20_000, always_bad);
    assert_eq!(run.p.deadline(Timer::GradualBake), Some(40_000));
    // Without the analysis grid, the bake's end is the next deadline, and a tick then
    // takes the next step.
    run.p.state.analysis_at = None;
    assert_eq!(run.p.next_deadline(), Some(40_000));
    let step = run.p.tick(40_000).unwrap();
    assert!(matches!(
        step.decisions[0].action,
        Action::SetWeight { weight: 10, .. }
    ));
}

#[test]
fn the_stage_timer_is_suspended_while_rolling_back() {
    // A stage of 10 s would end during the first bake; it does not advance.
    let mut run = Run::new(true);
    run.p.plan.stages[0] = Stage::Weight {
        weight: 50,
        duration_ms: 20_000,
        step: 0,
    };
    run.feed(0, 70_000, always_bad);
    let weights: Vec<u32> = run
        .actions()
        .iter()
        .filter(|a| a.1 == "set_weight")
        .map(|a| a.2)
        .collect();
    assert_eq!(weights, [50, 25, 10, 5]);
    assert_eq!(run.p.state.rollout.as_ref().map(|r| r.stage), Some(0));
}

#[test]
fn a_new_trip_during_a_bake_rolls_back_fully_at_once() {
    let mut run = Run::new(true);
    // Errors throughout; latency goes bad in the second step's bake (40 s to 70 s),
    // and its first window all bad is judged at 50 s.
    run.feed(0, 60_000, |t| (true, t >= 40_000));
    assert_eq!(
        run.actions().last(),
        Some(&(50_000, "rollback", 0, Reason::GateFailed))
    );
    let rollback = run.last_rollback();
    assert_eq!(
        rollback.detail,
        "gradual rollback: lat tripped during step 2 of 3; rolling back fully"
    );
    assert!(matches!(
        rollback.action,
        Action::Rollback {
            degradation_started_at: Some(0),
            ..
        }
    ));
    assert_eq!(run.p.state.registry.aliases.stable, "v1");
}

#[test]
fn gates_clearing_stop_at_the_weight_and_pause_then_resume_reenters_the_stage() {
    let mut run = Run::new(true);
    // Bad until 20 s, then healthy: the gate clears during the first bake.
    run.feed(0, 45_000, |t| (t < 20_000, false));
    assert_eq!(
        run.actions(),
        [
            (0, "set_weight", 50, Reason::RolloutStarted),
            (10_000, "set_weight", 25, Reason::GradualRollback),
            (40_000, "pause_for_approval", 0, Reason::GradualRollback),
        ]
    );
    let pause = run.decisions.last().unwrap();
    assert_eq!(
        pause.detail,
        "gradual rollback stopped: gates passing at 25%"
    );
    assert_eq!(run.p.status().paused, Some(PauseKind::Approval));
    assert_eq!(run.p.status().weight, 25);
    assert!(run.gradual().is_some_and(|g| g.stopped));
    assert!(run.p.status().gradual_rollback.is_some_and(|g| g.stopped));
    // Resume: the current stage again (its weight and its bake), not the next one.
    run.input(Input::Resume { at: 45_000 });
    assert_eq!(
        run.actions().last(),
        Some(&(45_000, "set_weight", 50, Reason::ApprovalGranted))
    );
    let r = run.p.state.rollout.as_ref().unwrap();
    assert_eq!((r.stage, r.weight), (0, 50));
    assert_eq!(r.stage_ends_at, Some(645_000));
    assert!(r.gradual.is_none() && r.gradual_spent);
    assert_eq!(run.p.status().gradual_rollback, None);
    // A second failure in this rollout rolls back at once, at the first evaluation
    // of the stage entered again (10 s after its ack).
    run.feed(45_000, 60_000, always_bad);
    assert_eq!(
        run.actions().last(),
        Some(&(55_000, "rollback", 0, Reason::GateFailed))
    );
}

#[test]
fn a_stopped_rollback_follows_the_approval_timeout() {
    let mut run = Run::new(true);
    run.feed(0, 45_000, |t| (t < 20_000, false));
    assert!(run.gradual().is_some_and(|g| g.stopped));
    // approval.timeout_ms defaults to an hour, on_timeout to rollback.
    run.feed(45_000, 40_000 + 3_600_000, |_| (false, false));
    assert_eq!(
        run.actions().last(),
        Some(&(3_640_000, "rollback", 0, Reason::ApprovalTimeout))
    );
}

#[test]
fn abort_mid_way_rolls_back_fully_now() {
    let mut run = Run::new(true);
    run.feed(0, 50_000, always_bad);
    assert_eq!(run.p.status().weight, 10);
    run.input(Input::Abort { at: 50_000 });
    let rollback = run.last_rollback();
    assert_eq!(rollback.reason, Reason::OperatorAbort);
    assert!(matches!(
        rollback.action,
        Action::Rollback {
            automated: false,
            ..
        }
    ));
    assert!(run.p.state.rollout.is_none());
}

#[test]
fn an_operator_pause_freezes_the_bake() {
    let mut run = Run::new(true);
    run.feed(0, 50_000, always_bad); // step 2 bakes until 70 s
    let status = run.p.status().gradual_rollback.unwrap();
    assert_eq!(
        (status.step, status.steps, status.from_weight, status.weight),
        (2, 3, 50, 10)
    );
    assert_eq!((status.bake_ends_at, status.stopped), (Some(70_000), false));
    run.input(Input::Pause { at: 50_000 });
    assert_eq!(
        run.p.status().gradual_rollback.and_then(|g| g.bake_ends_at),
        None
    );
    run.feed(50_000, 90_000, always_bad);
    assert_eq!(run.p.status().weight, 10);
    run.input(Input::Resume { at: 90_000 });
    assert_eq!(run.gradual().and_then(|g| g.bake_ends_at), Some(110_000));
    run.feed(90_000, 110_000, always_bad);
    assert_eq!(
        run.actions().last(),
        Some(&(110_000, "set_weight", 5, Reason::GradualRollback))
    );
}

#[test]
fn action_failed_on_a_step_rolls_back_fully() {
    let mut run = Run::new(true);
    run.feed(0, 10_000, always_bad);
    run.auto_ack = false;
    run.feed(10_000, 40_000, always_bad);
    let id = run
        .decisions
        .iter()
        .rev()
        .find_map(|d| d.action_id)
        .unwrap();
    assert_eq!(
        run.actions().last(),
        Some(&(40_000, "set_weight", 10, Reason::GradualRollback))
    );
    run.input(Input::ActionFailed {
        at: 41_000,
        action_id: id,
        reason: "router refused".into(),
    });
    let rollback = run.last_rollback();
    assert_eq!(rollback.reason, Reason::ActionFailed);
    assert_eq!(
        rollback.detail,
        "gradual rollback: set_weight to 10% failed; rolling back fully"
    );
    assert!(run.p.state.halt.is_none());
    assert!(run.gradual().is_none());
}

#[test]
fn an_ack_timeout_on_a_step_halts_and_resume_retries_it() {
    let mut run = Run::new(true);
    run.feed(0, 10_000, always_bad);
    run.auto_ack = false;
    run.feed(10_000, 40_000, always_bad);
    // ack_timeout_ms defaults to 10 minutes.
    run.feed(40_000, 640_000, always_bad);
    assert_eq!(run.p.status().halted, Some(Reason::AckTimeout));
    run.auto_ack = true;
    run.input(Input::Resume { at: 640_000 });
    assert_eq!(
        run.actions().last(),
        Some(&(640_000, "set_weight", 10, Reason::OperatorRetry))
    );
    assert_eq!(run.p.status().weight, 10);
    assert_eq!(run.gradual().and_then(|g| g.bake_ends_at), Some(670_000));
}

/// A run of `config(true)` with another strategy.
fn with_strategy(strategy: &str) -> Run {
    let text = config(true);
    let from = text.find(r#""strategy""#).unwrap();
    let to = text.find(r#""safety""#).unwrap();
    let text = format!(
        "{}\"strategy\": {strategy},\n    {}",
        &text[..from],
        &text[to..]
    );
    let mut run = Run {
        p: Policy::from_json(&text, 0).unwrap(),
        decisions: Vec::new(),
        events: Vec::new(),
        auto_ack: true,
    };
    run.input(Input::StartRollout {
        at: 0,
        version: "v2".into(),
    });
    run
}

#[test]
fn a_blue_green_preview_rolls_back_at_once() {
    let mut run = with_strategy(r#"{"kind": "blue_green", "preview_ms": 60000}"#);
    run.feed(0, 10_000, always_bad);
    assert_eq!(
        run.actions(),
        [
            (0, "start_preview", 0, Reason::RolloutStarted),
            (10_000, "rollback", 0, Reason::GateFailed)
        ]
    );
    assert!(run.p.state.rollout.is_none());
}

#[test]
fn the_post_promotion_bake_rolls_back_at_once() {
    let mut run = with_strategy(
        r#"{"kind": "canary", "post_promotion_bake_ms": 600000,
            "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 10000}]}"#,
    );
    // Healthy through the canary and the promotion at 10 s; bad in the bake.
    run.feed(0, 30_000, |t| (t >= 10_000, false));
    let kinds: Vec<&str> = run.actions().iter().map(|a| a.1).collect();
    assert_eq!(kinds, ["set_weight", "promote", "rollback"]);
    assert!(
        run.decisions
            .iter()
            .all(|d| d.reason != Reason::GradualRollback)
    );
}

#[test]
fn a_rollback_that_trips_the_breaker_stays_immediate() {
    let mut run = Run::new(true);
    run.p.config.safety.breaker.max_rollbacks = 1;
    run.feed(0, 10_000, always_bad);
    assert_eq!(
        run.actions().last(),
        Some(&(10_000, "rollback", 0, Reason::BreakerTripped))
    );
}

#[test]
fn a_snapshot_mid_way_restores_and_continues_alike() {
    let mut run = Run::new(true);
    run.feed(0, 50_000, always_bad);
    let g = run.gradual().cloned().unwrap();
    assert_eq!(
        (g.step, g.from_weight, g.bake_ends_at),
        (1, 50, Some(70_000))
    );
    assert_eq!(g.tripped, ["err"]);
    let json = run.p.snapshot().to_json();
    assert!(json.contains("\"gradual\""), "{json}");
    let mut copy = Run {
        p: Policy::restore_json(&json).unwrap(),
        decisions: Vec::new(),
        events: Vec::new(),
        auto_ack: true,
    };
    assert_eq!(copy.p, run.p);
    let before = run.decisions.len();
    run.feed(50_000, 100_000, always_bad);
    copy.feed(50_000, 100_000, always_bad);
    assert_eq!(run.decisions[before..], copy.decisions[..]);
    assert_eq!(copy.last_rollback().reason, Reason::GateFailed);
}

#[test]
fn restore_checks_the_gradual_fields() {
    let mut run = Run::new(true);
    run.feed(0, 50_000, always_bad);
    let snapshot: serde_json::Value = serde_json::from_str(&run.p.snapshot().to_json()).unwrap();
    let corrupt = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut s = snapshot.clone();
        f(&mut s);
        let e = Policy::restore_json(&s.to_string()).unwrap_err();
        assert_eq!(e.code, ErrorCode::SnapshotCorrupt, "{e}");
        e.path
    };
    let g = "/state/rollout/gradual";
    let set = |path: &'static str, v: serde_json::Value| {
        move |s: &mut serde_json::Value| *s.pointer_mut(path).unwrap() = v.clone()
    };
    assert_eq!(
        corrupt(&|s| set("/state/rollout/gradual/step", 7.into())(s)),
        "state.rollout.gradual.step"
    );
    assert_eq!(
        corrupt(&|s| set("/state/rollout/gradual/from_weight", 10.into())(s)),
        "state.rollout.gradual.step"
    );
    assert_eq!(
        corrupt(&|s| set(
            "/state/rollout/gradual/tripped",
            serde_json::json!(["nope"])
        )(s)),
        "state.rollout.gradual.tripped[0]"
    );
    assert_eq!(
        corrupt(&|s| {
            s.pointer_mut(g).unwrap()["stopped"] = true.into();
        }),
        "state.rollout.gradual.bake_ends_at"
    );
    assert_eq!(
        corrupt(&|s| {
            s.pointer_mut("/config/safety")
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove("gradual_rollback");
        }),
        "state.rollout.gradual"
    );
    // A snapshot written without the fields (before gradual rollback) restores.
    let mut old = Run::new(false);
    old.feed(0, 5_000, always_bad);
    let json = old.p.snapshot().to_json();
    assert!(!json.contains("gradual"));
    assert_eq!(Policy::restore_json(&json).unwrap(), old.p);
}

#[test]
fn config_errors_have_codes_and_paths() {
    let with = |gradual: serde_json::Value| {
        let mut c: serde_json::Value = serde_json::from_str(&config(false)).unwrap();
        c["safety"] = serde_json::json!({ "gradual_rollback": gradual });
        let e = PolicyConfig::from_json(&c.to_string())
            .and_then(|c| c.validate())
            .unwrap_err();
        (e.code, e.path)
    };
    let case = |steps: serde_json::Value, bake: u64| {
        with(serde_json::json!({"steps": steps, "bake_ms": bake}))
    };
    let at = |p: &str| format!("safety.gradual_rollback.{p}");
    assert_eq!(
        case(serde_json::json!([]), 1),
        (ErrorCode::NoSteps, at("steps"))
    );
    assert_eq!(
        case(serde_json::json!([50, 100]), 1),
        (ErrorCode::WeightOutOfRange, at("steps[1]"))
    );
    assert_eq!(
        case(serde_json::json!([0]), 1),
        (ErrorCode::WeightOutOfRange, at("steps[0]"))
    );
    assert_eq!(
        case(serde_json::json!([50, 50]), 1),
        (ErrorCode::InvalidValue, at("steps[1]"))
    );
    assert_eq!(
        case(serde_json::json!([10, 20]), 1),
        (ErrorCode::InvalidValue, at("steps[1]"))
    );
    assert_eq!(
        case(serde_json::json!([10]), 0),
        (ErrorCode::ZeroDuration, at("bake_ms"))
    );
    let many: Vec<u32> = (1..=65).rev().collect();
    assert_eq!(
        case(serde_json::json!(many), 1),
        (ErrorCode::LimitExceeded, at("steps"))
    );
}
