//! Traffic assignment inside the policy (`Policy::assign`, `Policy::assign_session`,
//! docs/assignment.md): the policy's answer is the pure `assign` with the rollout's salt
//! and routed weight, monotone as the rollout raises the weight, pinned sessions, old
//! snapshots that carry no salt, and refusals that change nothing.

use proptest::prelude::*;
use rollguard::{Arm, AssignReason, ErrorCode, Input, Policy, TIME_MAX, assign, bucket, salt_for};
use serde_json::{Value, json};

fn config(name: &str, w1: u32, w2: u32, pin_max_ms: u64) -> Value {
    json!({
        "format_version": 1,
        "name": name,
        "versions": [
            {"id": "v1", "digest": "sha256:v1", "validated": true},
            {"id": "v2", "digest": "sha256:v2"}
        ],
        "stable": "v1",
        "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10}],
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": w1, "duration_ms": 10000},
            {"kind": "set_weight", "weight": w2, "duration_ms": 10000}
        ]},
        "analysis": {"interval_ms": 10000},
        "assignment": {"pin_max_ms": pin_max_ms}
    })
}

fn step_of(p: &mut Policy, input: Value) -> rollguard::Step {
    let input = Input::from_json(&input.to_string()).expect("an input");
    p.handle(&input).expect("accepted")
}

fn feed(p: &mut Policy, input: Value) {
    let _ = step_of(p, input);
}

/// A policy at the first weight stage (acknowledged at 1 s) of a rollout started at 1 s.
fn at_first_weight(name: &str, w1: u32, w2: u32, pin_max_ms: u64) -> Policy {
    let mut p = Policy::from_json(&config(name, w1, w2, pin_max_ms).to_string(), 0).expect("ok");
    feed(
        &mut p,
        json!({"kind": "start_rollout", "at": 1000, "version": "v2"}),
    );
    feed(&mut p, json!({"kind": "ack", "at": 1000, "action_id": 1}));
    p
}

/// Moves to the second weight stage: its decision at 11 s, acknowledged at 11 s.
fn to_second_weight(p: &mut Policy) {
    let step = step_of(p, json!({"kind": "tick", "at": 11000}));
    assert_eq!(step.decisions.len(), 1, "{step:?}");
    feed(p, json!({"kind": "ack", "at": 11000, "action_id": 2}));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_policy_assigns_as_the_pure_function_and_raising_keeps_keys(
        name in "[a-z]{0,8}",
        a in 1u32..=99,
        b in 1u32..=99,
        keys in proptest::collection::vec(".{0,24}", 1..24),
    ) {
        let (w1, w2) = (a.min(b), a.max(b));
        let mut p = at_first_weight(&name, w1, w2, 60_000);
        let salt = salt_for(&name, "v2", 1000);
        let mut first = Vec::new();
        for key in &keys {
            let got = p.assign(key);
            prop_assert_eq!(got.salt, Some(salt));
            prop_assert_eq!(got.weight_bp, w1 * 100);
            prop_assert_eq!(got.arm, assign(salt, key, w1 * 100).unwrap());
            prop_assert_eq!(got.pinned, false);
            let (version, reason) = match got.arm {
                Arm::Candidate => ("v2", AssignReason::Candidate),
                Arm::Stable => ("v1", AssignReason::Stable),
            };
            prop_assert_eq!((got.version.as_str(), got.reason), (version, reason));
            first.push(got.arm);
        }
        to_second_weight(&mut p);
        for (key, before) in keys.iter().zip(&first) {
            let got = p.assign(key);
            prop_assert_eq!(got.arm, assign(salt, key, w2 * 100).unwrap());
            // Monotone: the first stage's candidates stay on the candidate.
            if *before == Arm::Candidate {
                prop_assert_eq!(got.arm, Arm::Candidate);
            }
            // A session from the first stage keeps its arm; one from the second gets
            // the current one; one from before the rollout is on stable.
            let pinned = p.assign_session(key, 5000, 20_000).unwrap();
            prop_assert_eq!((pinned.arm, pinned.weight_bp, pinned.pinned), (*before, w1 * 100, true));
            let fresh = p.assign_session(key, 11_000, 20_000).unwrap();
            prop_assert_eq!(fresh.arm, got.arm);
            let early = p.assign_session(key, 500, 20_000).unwrap();
            prop_assert_eq!((early.arm, early.weight_bp), (Arm::Stable, 0));
            // Once the pin has lasted pin_max_ms, the session gets the current weight.
            let expired = p.assign_session(key, 5000, 65_000).unwrap();
            prop_assert_eq!((expired.arm, expired.pinned), (got.arm, false));
        }
    }
}

#[test]
fn a_bucket_on_the_boundary_moves_exactly_when_the_weight_passes_it() {
    // Keys whose bucket is 500 (on the candidate from 5.01 %) and 499.
    let salt = salt_for("b", "v2", 1000);
    let find = |want: u32| {
        (0..1_000_000)
            .map(|i| format!("k{i}"))
            .find(|k| bucket(salt, k) == want)
            .expect("a key with that bucket")
    };
    let (on, below) = (find(500), find(499));
    let mut p = at_first_weight("b", 5, 6, 0);
    assert_eq!(p.assign(&on).arm, Arm::Stable);
    assert_eq!(p.assign(&below).arm, Arm::Candidate);
    to_second_weight(&mut p);
    assert_eq!(p.assign(&on).arm, Arm::Candidate);
}

#[test]
fn pin_max_0_turns_pinning_off() {
    let mut p = at_first_weight("x", 10, 90, 0);
    to_second_weight(&mut p);
    let a = p.assign_session("k", 5000, 11_000).expect("ok");
    assert!(!a.pinned);
    assert_eq!(a.weight_bp, 9000);
    assert_eq!(a, p.assign("k"));
}

#[test]
fn a_pending_raise_waits_for_its_ack_and_a_pending_rollback_moves_everyone() {
    let mut p = at_first_weight("x", 10, 90, 60_000);
    feed(&mut p, json!({"kind": "tick", "at": 11000}));
    assert_eq!(
        p.assign("k").weight_bp,
        1000,
        "the raise is not acknowledged yet"
    );
    feed(&mut p, json!({"kind": "ack", "at": 11000, "action_id": 2}));
    assert_eq!(p.assign("k").weight_bp, 9000);
    feed(&mut p, json!({"kind": "abort", "at": 12000}));
    for key in ["a", "b", "c", "d", "e"] {
        let a = p.assign(key);
        assert_eq!(
            (a.arm, a.version.as_str(), a.reason, a.weight_bp),
            (Arm::Stable, "v1", AssignReason::RolledBack, 0)
        );
        let s = p.assign_session(key, 5000, 12_000).expect("ok");
        assert_eq!((s.reason, s.pinned), (AssignReason::RolledBack, false));
    }
    // The rollback fails: the policy halts and would issue it again on resume; the
    // decision stands.
    feed(
        &mut p,
        json!({"kind": "action_failed", "at": 12000, "action_id": 3, "reason": "x"}),
    );
    assert_eq!(p.status().pending_action, None);
    assert_eq!(p.assign("a").reason, AssignReason::RolledBack);
    let step = step_of(&mut p, json!({"kind": "resume", "at": 12000}));
    let id = step
        .decisions
        .iter()
        .find_map(|d| d.action_id)
        .expect("reissued");
    feed(&mut p, json!({"kind": "ack", "at": 12000, "action_id": id}));
    let a = p.assign("a");
    assert_eq!(
        (a.reason, a.salt, a.version.as_str()),
        (AssignReason::NoRollout, None, "v1")
    );
}

#[test]
fn a_new_rollout_gets_a_new_salt_and_a_restart_keeps_it() {
    let p = at_first_weight("x", 10, 90, 60_000);
    let salt = p.assign("k").salt.expect("a salt");
    let restored = Policy::restore_json(&p.snapshot().to_json()).expect("restores");
    assert_eq!(restored.assign("k").salt, Some(salt));
    assert_eq!(
        restored.assign_session("k", 5000, 9000),
        p.assign_session("k", 5000, 9000)
    );
    // The same version rolled out again at another time: another salt.
    let mut q = Policy::from_json(&config("x", 10, 90, 60_000).to_string(), 0).expect("ok");
    feed(
        &mut q,
        json!({"kind": "start_rollout", "at": 2000, "version": "v2"}),
    );
    assert_eq!(q.assign("k").salt, Some(salt_for("x", "v2", 2000)));
    assert_ne!(q.assign("k").salt, Some(salt));
}

#[test]
fn a_snapshot_without_salt_or_history_restores_with_them_derived() {
    let mut p = at_first_weight("old", 10, 90, 60_000);
    to_second_weight(&mut p);
    let mut doc: Value = serde_json::from_str(&p.snapshot().to_json()).expect("json");
    let rollout = doc["state"]["rollout"].as_object_mut().expect("a rollout");
    assert!(rollout.remove("salt").is_some());
    assert_eq!(
        rollout.remove("weights"),
        Some(json!([{"at": 1000, "weight_bp": 1000}, {"at": 11000, "weight_bp": 9000}]))
    );
    let old = Policy::restore_json(&doc.to_string()).expect("restores");
    assert_eq!(old.assign("k"), p.assign("k"));
    assert_eq!(old.assign("k").salt, Some(salt_for("old", "v2", 1000)));
    // Without the history, a session from the rollout's start gets the current weight.
    let s = old.assign_session("k", 5000, 20_000).expect("ok");
    assert_eq!((s.weight_bp, s.pinned), (9000, true));
    // Restored once, it writes both, and restores to itself.
    let text = old.snapshot().to_json();
    assert!(text.contains("\"salt\":") && text.contains("\"weights\":"));
    assert_eq!(Policy::restore_json(&text).expect("restores"), old);
}

#[test]
fn a_history_that_does_not_fit_is_snapshot_corrupt() {
    let mut p = at_first_weight("x", 10, 90, 60_000);
    to_second_weight(&mut p);
    let doc: Value = serde_json::from_str(&p.snapshot().to_json()).expect("json");
    for (weights, path) in [
        (
            json!([{"at": 11000, "weight_bp": 9000}, {"at": 1000, "weight_bp": 1000}]),
            "state.rollout.weights[1].at",
        ),
        (
            json!([{"at": 500, "weight_bp": 1000}]),
            "state.rollout.weights[0].at",
        ),
        (
            json!([{"at": 99000, "weight_bp": 1000}]),
            "state.rollout.weights[0].at",
        ),
        (
            json!([{"at": 1000, "weight_bp": 10001}]),
            "state.rollout.weights[0].weight_bp",
        ),
        (
            json!(vec![json!({"at": 1000, "weight_bp": 1}); 9]),
            "state.rollout.weights",
        ),
    ] {
        let mut d = doc.clone();
        d["state"]["rollout"]["weights"] = weights;
        let e = Policy::restore_json(&d.to_string()).expect_err("refused");
        assert_eq!(
            (e.code, e.path.as_str()),
            (ErrorCode::SnapshotCorrupt, path)
        );
    }
    let mut d = doc.clone();
    d["state"]["rollout"]["salt"] = json!("ABC");
    let e = Policy::restore_json(&d.to_string()).expect_err("refused");
    assert_eq!(e.code, ErrorCode::SnapshotCorrupt);
}

#[test]
fn bad_session_times_are_refused_and_change_nothing() {
    let p = at_first_weight("x", 10, 90, 60_000);
    let before = p.snapshot().to_json();
    for (started, now, code, path) in [
        (3000, 2000, ErrorCode::InvalidValue, "session_started_at"),
        (
            TIME_MAX + 1,
            TIME_MAX + 1,
            ErrorCode::TimeOutOfRange,
            "session_started_at",
        ),
        (0, TIME_MAX + 1, ErrorCode::TimeOutOfRange, "now"),
        (u64::MAX, 0, ErrorCode::TimeOutOfRange, "session_started_at"),
    ] {
        let e = p.assign_session("k", started, now).expect_err("refused");
        assert_eq!((e.code, e.path.as_str()), (code, path));
    }
    assert_eq!(p.snapshot().to_json(), before);
    // The largest times are fine.
    assert!(p.assign_session("k", TIME_MAX, TIME_MAX).is_ok());
    assert!(p.assign_session("k", 0, TIME_MAX).is_ok());
}

#[test]
fn pin_max_beyond_time_max_is_a_config_error() {
    let mut c = config("x", 10, 90, 0);
    c["assignment"]["pin_max_ms"] = json!(TIME_MAX + 1);
    let e = Policy::from_json(&c.to_string(), 0).expect_err("refused");
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::InvalidValue, "assignment.pin_max_ms")
    );
    c["assignment"] = json!({"pin_max": 5});
    let e = Policy::from_json(&c.to_string(), 0).expect_err("refused");
    assert_eq!(e.code, ErrorCode::InvalidJson);
}

#[test]
fn without_a_rollout_everyone_is_on_stable_and_a_promotion_ends_the_split() {
    let mut c = config("x", 10, 90, 60_000);
    c["strategy"]["steps"] = json!([{"kind": "set_weight", "weight": 50, "duration_ms": 10000}]);
    c["strategy"]["post_promotion_bake_ms"] = json!(10000);
    let mut p = Policy::from_json(&c.to_string(), 0).expect("ok");
    let a = p.assign("k");
    assert_eq!(
        (a.reason, a.version.as_str(), a.salt),
        (AssignReason::NoRollout, "v1", None)
    );
    feed(
        &mut p,
        json!({"kind": "start_rollout", "at": 1000, "version": "v2"}),
    );
    feed(&mut p, json!({"kind": "ack", "at": 1000, "action_id": 1}));
    let step = step_of(&mut p, json!({"kind": "tick", "at": 11000}));
    assert_eq!(step.decisions.len(), 1, "promote: {step:?}");
    feed(&mut p, json!({"kind": "ack", "at": 11000, "action_id": 2}));
    for key in ["a", "b", "c"] {
        let a = p.assign_session(key, 5000, 11_000).expect("ok");
        assert_eq!(
            (a.arm, a.version.as_str(), a.reason, a.pinned),
            (Arm::Stable, "v2", AssignReason::Promoted, false)
        );
        assert_eq!(a.salt, Some(salt_for("x", "v2", 1000)));
    }
    // The bake passes: the rollout is complete, v2 is the stable version.
    feed(&mut p, json!({"kind": "tick", "at": 21000}));
    let a = p.assign("a");
    assert_eq!(
        (a.reason, a.version.as_str(), a.salt),
        (AssignReason::NoRollout, "v2", None)
    );
}

#[test]
fn a_pending_lower_weight_counts_at_once_and_pins_never_raise() {
    // A strategy that lowers the weight (50 % then 10 %): the lowering counts from its
    // decision, before the ack; a session from the 50 % stage gets no more than 10 %.
    let mut p = at_first_weight("x", 50, 10, 60_000);
    feed(&mut p, json!({"kind": "tick", "at": 11000}));
    assert_eq!(p.status().pending_action, Some(2));
    assert_eq!(p.assign("k").weight_bp, 1000);
    feed(&mut p, json!({"kind": "ack", "at": 11000, "action_id": 2}));
    let s = p.assign_session("k", 5000, 20_000).expect("ok");
    assert_eq!((s.weight_bp, s.pinned), (1000, true));
}

/// One step of a random rollout history, for the routing-table property.
#[derive(Debug, Clone)]
enum Op {
    /// Time passes by this many ms (timers fire: stages, bakes, ack timeouts).
    Tick(u64),
    /// The pending action is acknowledged.
    Ack,
    /// The pending action fails.
    Fail,
    Abort,
    Resume,
    RevertNow,
    ForcePromote,
    StartRollout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..=15_000).prop_map(Op::Tick),
        4 => Just(Op::Ack),
        1 => Just(Op::Fail),
        1 => Just(Op::Abort),
        1 => Just(Op::Resume),
        1 => Just(Op::RevertNow),
        1 => Just(Op::ForcePromote),
        1 => Just(Op::StartRollout),
    ]
}

/// Applies an op at the policy's time (plus the tick); refusals are part of the history.
fn apply(p: &mut Policy, op: &Op) {
    let at = p.now();
    let pending = p.status().pending_action.unwrap_or(0);
    let input = match op {
        Op::Tick(dt) => json!({"kind": "tick", "at": at + dt}),
        Op::Ack => json!({"kind": "ack", "at": at, "action_id": pending}),
        Op::Fail => {
            json!({"kind": "action_failed", "at": at, "action_id": pending, "reason": "x"})
        }
        Op::Abort => json!({"kind": "abort", "at": at}),
        Op::Resume => json!({"kind": "resume", "at": at}),
        Op::RevertNow => json!({"kind": "revert_now", "at": at}),
        Op::ForcePromote => json!({"kind": "force_promote", "at": at}),
        Op::StartRollout => json!({"kind": "start_rollout", "at": at, "version": "v2"}),
    };
    let input = Input::from_json(&input.to_string()).expect("an input");
    let _ = p.handle(&input);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A router holding only the exported routing table (through its JSON) answers every
    /// `assign` and `assign_session` as the policy does, at every point of a random
    /// history: raises, lowerings, pending and failed rollbacks, promotions, new rollouts.
    #[test]
    fn assigning_from_the_routing_table_equals_the_policy(
        weights in proptest::collection::vec(1u32..=100, 1..4),
        pin in prop_oneof![Just(0u64), 1u64..=40_000],
        ops in proptest::collection::vec(op(), 1..24),
        keys in proptest::collection::vec(".{0,12}", 1..6),
        times in proptest::collection::vec((0u64..=120_000, 0u64..=60_000), 1..4),
    ) {
        let mut c = config("rt", 10, 20, pin);
        c["strategy"]["steps"] = weights
            .iter()
            .map(|w| json!({"kind": "set_weight", "weight": w, "duration_ms": 10000}))
            .collect();
        c["candidate"] = json!("v2");
        let mut p = Policy::from_json(&c.to_string(), 0).expect("ok");
        for op in &ops {
            apply(&mut p, op);
            let table: rollguard::RoutingTable =
                serde_json::from_str(&serde_json::to_string(&p.routing_table()).unwrap()).unwrap();
            prop_assert_eq!(&table, &p.routing_table());
            for key in &keys {
                prop_assert_eq!(table.assign(key), p.assign(key));
                // Sessions from anywhere in the history (and a little after now), asked
                // now or later; some start after `now` and are refused by both.
                // And sessions on the edges: around each weight change, asked when the
                // pin is about to expire, and just after.
                let mut sessions: Vec<(u64, u64)> =
                    times.iter().map(|&(s, later)| (s, p.now() + later)).collect();
                for w in &table.weights {
                    for started in [w.at.saturating_sub(1), w.at, w.at + 1] {
                        for now in [started + pin.saturating_sub(1), started + pin, p.now()] {
                            sessions.push((started, now));
                        }
                    }
                }
                for (started, now) in sessions {
                    let want = p.assign_session(key, started, now);
                    let got = table.assign_session(key, started, now);
                    match (&got, &want) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                        (Err(a), Err(b)) => {
                            prop_assert_eq!((a.code, &a.path), (b.code, &b.path));
                        }
                        _ => prop_assert!(false, "{:?} vs {:?}", got, want),
                    }
                }
            }
        }
    }
}

#[test]
fn the_routing_table_names_the_split_and_its_history() {
    let mut p = at_first_weight("x", 10, 90, 60_000);
    to_second_weight(&mut p);
    let t = p.routing_table();
    let text = serde_json::to_value(&t).expect("json");
    assert_eq!(
        text,
        json!({
            "mode": "split", "stable": "v1", "candidate": "v2",
            "salt": salt_for("x", "v2", 1000).to_hex(), "weight_bp": 9000,
            "weights": [{"at": 1000, "weight_bp": 1000}, {"at": 11000, "weight_bp": 9000}],
            "pin_max_ms": 60_000
        })
    );
    // A pending rollback: everyone on its target, the history kept for the record.
    feed(&mut p, json!({"kind": "abort", "at": 12000}));
    let t = p.routing_table();
    assert_eq!(
        (t.mode, t.stable.as_str(), t.weight_bp),
        (rollguard::RoutingMode::RolledBack, "v1", 0)
    );
    assert_eq!(t.assign("k"), p.assign("k"));
    // Without a rollout: no candidate, salt or history.
    let q = Policy::from_json(&config("x", 10, 90, 5).to_string(), 0).expect("ok");
    assert_eq!(
        serde_json::to_value(q.routing_table()).expect("json"),
        json!({"mode": "no_rollout", "stable": "v1", "weight_bp": 0, "weights": [], "pin_max_ms": 5})
    );
}
