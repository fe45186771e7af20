//! Per-agent versions: `Agents`, one policy per agent.

use rollguard::{
    Action, AgentInput, Agents, AgentsSnapshot, AgentsStep, ErrorCode, Input, Sample, Stage,
    TargetKind,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Two agents on one default policy (stable v2, a p95 threshold of 300 ms); the
/// negotiator is held to 200 ms and falls back to its golden version.
fn config() -> Value {
    json!({
      "format_version": 1,
      "name": "ops",
      "policy": {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "sha256:01", "validated": true},
                     {"id": "v2", "digest": "sha256:02", "validated": true}],
        "stable": "v2",
        "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
        "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
                   "rule": {"kind": "threshold", "max": 300}, "samples_min": 5}],
        "strategy": {"kind": "canary",
                     "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 120000}]},
        "analysis": {"interval_ms": 30000},
        "safety": {"cooldown_ms": 60000, "ack_timeout_ms": 60000}
      },
      "agents": {
        "negotiator": {
          "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
                     "rule": {"kind": "threshold", "max": 200}, "samples_min": 5}],
          "safety": {"rollback_to": "golden"}
        },
        "notifier": {}
      }
    })
}

fn agents() -> Agents {
    Agents::from_json(&config().to_string(), 0).unwrap()
}

fn input(v: Value) -> AgentInput {
    AgentInput::from_value(v).unwrap()
}

fn v3() -> Value {
    json!({"id": "v3", "digest": "sha256:03"})
}

/// Acknowledges every action of a step, per agent.
fn ack_all(a: &mut Agents, step: &AgentsStep) -> Vec<AgentsStep> {
    let mut out = Vec::new();
    for s in &step.agents {
        for d in s.step.actions() {
            let id = d.action_id.unwrap();
            let ack = a
                .handle(&AgentInput::to(
                    &s.agent,
                    Input::Ack {
                        at: step.at,
                        action_id: id,
                    },
                ))
                .unwrap();
            out.extend(ack_all(a, &ack));
            out.push(ack);
        }
    }
    out
}

/// Every second from `from` to `to`: a tick, every action acknowledged, and one sample
/// per agent and live arm with the latency `latency(agent, arm)`. Returns every step.
fn drive(
    a: &mut Agents,
    from: u64,
    to: u64,
    latency: impl Fn(&str, &str) -> f64,
) -> Vec<AgentsStep> {
    let mut steps = Vec::new();
    for t in (from..to).step_by(1000) {
        let step = a.tick(t).unwrap();
        steps.extend(ack_all(a, &step));
        steps.push(step);
        let names: Vec<String> = a.agents().map(str::to_string).collect();
        for agent in names {
            let s = a.policy(&agent).unwrap().status();
            let arms = std::iter::once(s.aliases.stable).chain(s.aliases.candidate);
            for arm in arms {
                let mut sample = Sample::value(t, &arm, "latency_ms", latency(&agent, &arm));
                sample.agent = Some(agent.clone());
                let step = a.handle(&AgentInput::all(Input::Observe(sample))).unwrap();
                steps.extend(ack_all(a, &step));
                steps.push(step);
            }
        }
    }
    steps
}

/// Registers v3 everywhere and starts its rollout everywhere, acknowledging.
fn roll_out_v3(a: &mut Agents) -> Vec<AgentsStep> {
    let mut steps = vec![
        a.handle(&input(
            json!({"kind": "register_version", "at": 0, "version": v3()}),
        ))
        .unwrap(),
    ];
    let start = a
        .handle(&input(
            json!({"kind": "start_rollout", "at": 0, "version": "v3"}),
        ))
        .unwrap();
    assert_eq!(start.agents.len(), 2, "{start:?}");
    steps.extend(ack_all(a, &start));
    steps.push(start);
    steps
}

fn rollbacks(steps: &[AgentsStep], agent: &str) -> Vec<(String, String, TargetKind)> {
    steps
        .iter()
        .filter_map(|s| s.get(agent))
        .flat_map(|s| &s.decisions)
        .filter_map(|d| match &d.action {
            Action::Rollback {
                from, to, target, ..
            } => Some((from.clone(), to.clone(), *target)),
            _ => None,
        })
        .collect()
}

#[test]
fn one_agent_falls_back_to_its_golden_while_the_other_promotes() {
    let mut a = agents();
    // The negotiator's golden is v1, known good under load; its stable is v2 as the
    // notifier's.
    let step = a
        .handle(&input(
            json!({"kind": "mark_validated", "at": 0, "version": "v1", "agent": "negotiator"}),
        ))
        .unwrap();
    assert_eq!(step.agents.len(), 1);
    assert_eq!(
        a.policy("negotiator").unwrap().status().aliases.golden,
        "v1"
    );
    assert_eq!(a.policy("notifier").unwrap().status().aliases.golden, "v2");
    let mut steps = roll_out_v3(&mut a);
    // v3 answers in 250 ms everywhere: within the notifier's 300, over the negotiator's
    // 200.
    steps.extend(drive(&mut a, 1000, 400_000, |_, arm| {
        if arm == "v3" { 250.0 } else { 100.0 }
    }));
    assert_eq!(
        rollbacks(&steps, "negotiator"),
        [("v3".into(), "v1".into(), TargetKind::Golden)]
    );
    assert!(rollbacks(&steps, "notifier").is_empty());
    let status = a.status();
    assert_eq!(status["negotiator"].aliases.stable, "v1");
    assert_eq!(status["notifier"].aliases.stable, "v3");
    let stage = |agent: &str, id: &str| {
        let p = a.policy(agent).unwrap();
        p.versions().iter().find(|v| v.id == id).unwrap().stage
    };
    assert_eq!(stage("negotiator", "v3"), Stage::Failed);
    assert_ne!(stage("notifier", "v3"), Stage::Failed);
    // Steps list only agents with something to say, in name order.
    for s in &steps {
        let names: Vec<&str> = s.agents.iter().map(|x| x.agent.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert!(s.agents.iter().all(|x| !x.step.is_empty()));
    }
}

#[test]
fn without_rollback_to_golden_the_agent_returns_to_its_stable() {
    let mut c = config();
    c["agents"]["negotiator"]["safety"] = Value::Null;
    let mut a = Agents::new(rollguard::AgentsConfig::from_value(c).unwrap(), 0).unwrap();
    a.handle(&input(
        json!({"kind": "mark_validated", "at": 0, "version": "v1", "agent": "negotiator"}),
    ))
    .unwrap();
    let mut steps = roll_out_v3(&mut a);
    steps.extend(drive(&mut a, 1000, 400_000, |_, arm| {
        if arm == "v3" { 250.0 } else { 100.0 }
    }));
    assert_eq!(
        rollbacks(&steps, "negotiator"),
        [("v3".into(), "v2".into(), TargetKind::Stable)]
    );
}

#[test]
fn a_broadcast_one_agent_refuses_changes_no_agent() {
    let mut a = agents();
    // Only the negotiator knows v3; a broadcast start reaches it first (name order).
    a.handle(&input(
        json!({"kind": "register_version", "at": 0, "version": v3(), "agent": "negotiator"}),
    ))
    .unwrap();
    let before = a.clone();
    let e = a
        .handle(&input(
            json!({"kind": "start_rollout", "at": 5, "version": "v3"}),
        ))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownVersion);
    assert_eq!(e.path, "version");
    assert!(e.message.contains("notifier"), "{e}");
    assert_eq!(a, before);
    assert_eq!(a.snapshot(), before.snapshot());
    // For the negotiator alone it is fine.
    let step = a
        .handle(&input(
            json!({"kind": "start_rollout", "at": 5, "version": "v3", "agent": "negotiator"}),
        ))
        .unwrap();
    assert_eq!(step.agents.len(), 1);
    assert_eq!(step.agents[0].agent, "negotiator");
}

#[test]
fn overrides_merge_into_the_default_policy() {
    let a = agents();
    let n = a.policy("negotiator").unwrap().config();
    let o = a.policy("notifier").unwrap().config();
    assert_eq!(n.name, "ops/negotiator");
    assert_eq!(o.name, "ops/notifier");
    assert_eq!(n.safety.rollback_to, rollguard::RollbackTo::Golden);
    assert_eq!(o.safety.rollback_to, rollguard::RollbackTo::Default);
    // Objects merge key by key: the negotiator keeps the default cooldown.
    assert_eq!(n.safety.cooldown_ms, 60_000);
    assert_eq!(
        serde_json::to_value(&n.gates[0].rule).unwrap()["max"],
        json!(200.0)
    );
    assert_eq!(
        serde_json::to_value(&o.gates[0].rule).unwrap()["max"],
        json!(300.0)
    );
    // `null` removes a key: with the default's candidate, one agent opts out.
    let mut c = config();
    c["policy"]["versions"].as_array_mut().unwrap().push(v3());
    c["policy"]["candidate"] = json!("v3");
    c["agents"]["notifier"] = json!({"candidate": null});
    let mut a = Agents::new(rollguard::AgentsConfig::from_value(c).unwrap(), 0).unwrap();
    let step = a.tick(0).unwrap();
    let names: Vec<&str> = step.agents.iter().map(|s| s.agent.as_str()).collect();
    assert_eq!(names, ["negotiator"]);
    // Every agent's assignment has its own salt.
    let salt = |agent: &str| a.routing_table(agent).unwrap().salt;
    assert!(salt("negotiator").is_some());
    assert!(salt("notifier").is_none());
    assert_eq!(
        a.assign("nobody", "k").unwrap_err().code,
        ErrorCode::UnknownAgent
    );
}

#[test]
fn config_errors_name_the_agent() {
    let err = |c: Value| Agents::from_json(&c.to_string(), 0).unwrap_err();
    let mut c = config();
    c["agents"]["negotiator"]["gates"][0]["rule"]["max"] = json!(-1);
    c["agents"]["negotiator"]["gates"][0]["rule"]["min"] = json!(5);
    let e = err(c);
    assert_eq!(e.code, ErrorCode::MinAboveMax, "{e}");
    assert!(e.path.starts_with("agents.negotiator.gates[0]"), "{e}");

    let mut c = config();
    c["agents"]["notifier"] = json!({"stable": "v9"});
    let e = err(c);
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::UnknownReference, "agents.notifier.stable"),
        "{e}"
    );

    let mut c = config();
    c["agents"]["notifier"] = json!({"stabel": "v1"});
    let e = err(c);
    assert_eq!(e.code, ErrorCode::InvalidJson, "{e}");
    assert!(e.path.starts_with("agents.notifier"), "{e}");

    let mut c = config();
    c["agents"]["a b"] = json!({"name": "x"});
    let e = err(c);
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::InvalidValue, "agents[\"a b\"].name")
    );

    let mut c = config();
    c["agents"]["notifier"] = json!(3);
    assert_eq!(err(c).code, ErrorCode::InvalidJson);

    let mut c = config();
    c["agents_max"] = json!(1);
    let e = err(c);
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::LimitExceeded, "agents")
    );

    let mut c = config();
    c["agents"] = json!({});
    assert_eq!(err(c).path, "agents");

    let mut c = config();
    c["policy"]["strategy"]["steps"] = json!([]);
    let e = err(c);
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::NoSteps, "policy.strategy.steps")
    );

    let text =
        config()
            .to_string()
            .replacen("\"notifier\": {}", "\"notifier\": {}, \"notifier\": {}", 1);
    let text = text.replacen("\"notifier\":{}", "\"notifier\":{},\"notifier\":{}", 1);
    let e = Agents::from_json(&text, 0).unwrap_err();
    assert_eq!(e.code, ErrorCode::DuplicateKey, "{e}");
}

#[test]
fn refused_inputs_leave_every_agent_as_it_was() {
    let mut a = agents();
    roll_out_v3(&mut a);
    drive(&mut a, 1000, 20_000, |_, _| 100.0);
    let refused = [
        (
            json!({"kind": "observe", "at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1}),
            ErrorCode::UnknownAgent,
            "agent",
        ),
        (
            json!({"kind": "observe", "at": 20000, "arm": "v2", "metric": "latency_ms",
                   "value": 1, "agent": "nobody"}),
            ErrorCode::UnknownAgent,
            "agent",
        ),
        (
            json!({"kind": "ack", "at": 20000, "action_id": 1}),
            ErrorCode::UnknownAgent,
            "agent",
        ),
        (
            json!({"kind": "pause", "at": 20000, "agent": "nobody"}),
            ErrorCode::UnknownAgent,
            "agent",
        ),
        (
            json!({"kind": "tick", "at": 100}),
            ErrorCode::TimeWentBackwards,
            "at",
        ),
        (
            // The sample is fine for its agent, but another agent has seen later times.
            json!({"kind": "observe", "at": 18500, "arm": "v2", "metric": "latency_ms",
                   "value": 1, "agent": "notifier"}),
            ErrorCode::TimeWentBackwards,
            "at",
        ),
        (
            json!({"kind": "observe_batch", "agent": "notifier", "samples": [
                {"at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1},
                {"at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1, "agent": "negotiator"}]}),
            ErrorCode::UnknownAgent,
            "samples[1].agent",
        ),
        (
            json!({"kind": "observe_batch", "samples": [
                {"at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1, "agent": "notifier"},
                {"at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1, "agent": "negotiator"},
                {"at": 20000, "arm": "v9", "metric": "latency_ms", "value": 1, "agent": "notifier"}]}),
            ErrorCode::UnknownArm,
            "samples[2].arm",
        ),
        (
            json!({"kind": "observe_batch", "samples": [
                {"at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1, "agent": "notifier"},
                {"at": 19999, "arm": "v2", "metric": "latency_ms", "value": 1, "agent": "negotiator"}]}),
            ErrorCode::TimeWentBackwards,
            "samples[1].at",
        ),
        (
            json!({"kind": "resume", "at": 20000}),
            ErrorCode::InvalidCommand,
            "",
        ),
    ];
    for (i, (v, code, path)) in refused.into_iter().enumerate() {
        let before = a.clone();
        let e = a.handle(&input(v.clone())).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (code, path), "{i}: {v} → {e}");
        assert_eq!(a, before, "{i}: {v}");
    }
    // A batch across agents is split between them.
    let step = a
        .handle(&input(json!({"kind": "observe_batch", "samples": [
            {"at": 20000, "arm": "v2", "metric": "latency_ms", "value": 1, "agent": "notifier"},
            {"at": 20000, "arm": "v3", "metric": "latency_ms", "value": 1, "agent": "negotiator"}]})))
        .unwrap();
    assert_eq!(step.at, 20_000);
}

#[test]
fn a_restored_snapshot_continues_as_the_original() {
    let mut a = agents();
    a.handle(&input(
        json!({"kind": "mark_validated", "at": 0, "version": "v1", "agent": "negotiator"}),
    ))
    .unwrap();
    roll_out_v3(&mut a);
    let latency = |_: &str, arm: &str| if arm == "v3" { 250.0 } else { 100.0 };
    drive(&mut a, 1000, 90_000, latency);
    let snapshot = a.snapshot();
    let text = snapshot.to_json();
    let mut b = Agents::restore_json(&text).unwrap();
    assert_eq!(a, b);
    assert_eq!(b.snapshot().to_json(), text);
    let sa = drive(&mut a, 90_000, 400_000, latency);
    let sb = drive(&mut b, 90_000, 400_000, latency);
    assert_eq!(
        serde_json::to_string(&sa).unwrap(),
        serde_json::to_string(&sb).unwrap()
    );
    assert_eq!(a, b);
    assert!(!rollbacks(&sa, "negotiator").is_empty());

    // Restore checks the agent set and each agent's config.
    let mut missing: Value = serde_json::from_str(&text).unwrap();
    missing["agents"]
        .as_object_mut()
        .unwrap()
        .remove("notifier");
    let e = Agents::restore(AgentsSnapshot::from_value(missing).unwrap()).unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "agents.notifier")
    );
    let mut extra: Value = serde_json::from_str(&text).unwrap();
    extra["agents"]["x"] = extra["agents"]["notifier"].clone();
    let e = Agents::restore(AgentsSnapshot::from_value(extra).unwrap()).unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "agents.x")
    );
    let mut swapped: Value = serde_json::from_str(&text).unwrap();
    swapped["agents"]["notifier"] = swapped["agents"]["negotiator"].clone();
    let e = Agents::restore(AgentsSnapshot::from_value(swapped).unwrap()).unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "agents.notifier.config")
    );
    let mut early: Value = serde_json::from_str(&text).unwrap();
    early["now"] = json!(1000);
    let e = Agents::restore(AgentsSnapshot::from_value(early).unwrap()).unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::SnapshotCorrupt, "now")
    );
    let mut version: Value = serde_json::from_str(&text).unwrap();
    version["format_version"] = json!(9);
    let e = Agents::restore(AgentsSnapshot::from_value(version).unwrap()).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedFormatVersion);
}

#[test]
fn a_tick_moves_the_clock_of_every_agent() {
    let mut a = agents();
    assert!(a.tick(50_000).unwrap().is_empty());
    assert_eq!(a.now(), 50_000);
    // Nothing was due, yet a later input for any agent must not go back in time.
    let e = a
        .handle(&input(
            json!({"kind": "pause", "at": 40000, "agent": "notifier"}),
        ))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TimeWentBackwards);
    let restored = Agents::restore_json(&a.snapshot().to_json()).unwrap();
    assert_eq!(restored.now(), 50_000);
    assert_eq!(restored, a);
}

#[test]
fn next_deadline_is_the_earliest_agents() {
    let mut a = agents();
    roll_out_v3(&mut a);
    let earliest = a
        .agents()
        .filter_map(|x| a.policy(x).unwrap().next_deadline())
        .min();
    assert_eq!(a.next_deadline(), earliest);
    assert!(earliest.is_some());
    // Pausing one agent moves only its deadlines.
    a.handle(&input(
        json!({"kind": "pause", "at": 10, "agent": "notifier"}),
    ))
    .unwrap();
    assert!(a.policy("notifier").unwrap().status().paused.is_some());
    assert!(a.policy("negotiator").unwrap().status().paused.is_none());
}

/// A small deterministic generator (an LCG), so the loop needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Random inputs, good and bad: nothing panics, a refused input changes nothing, an
/// accepted one survives a snapshot round trip.
#[test]
fn random_inputs_never_panic_and_refusals_change_nothing() {
    let agents_ = ["negotiator", "notifier", "nobody"];
    let arms = ["v1", "v2", "v3", "v9"];
    let kinds = [
        "tick",
        "observe",
        "observe",
        "observe",
        "observe_batch",
        "ack",
        "action_failed",
        "register_version",
        "start_rollout",
        "pause",
        "resume",
        "abort",
        "revert_now",
        "force_promote",
        "mark_validated",
        "clear_breaker",
    ];
    let (mut accepted, mut refused) = (0, 0);
    for seed in 0..12u64 {
        let mut r = Lcg(seed);
        let mut a = agents();
        let mut t = 0u64;
        for _ in 0..400 {
            t += r.next(4000);
            let at = if r.next(20) == 0 {
                t.saturating_sub(5000)
            } else {
                t
            };
            let kind = kinds[r.next(kinds.len() as u64) as usize];
            let mut v = json!({"kind": kind, "at": at});
            let agent = (r.next(3) != 0).then(|| agents_[r.next(3) as usize]);
            let sample = |r: &mut Lcg| {
                let mut s = json!({"at": at, "arm": arms[r.next(4) as usize],
                                   "metric": "latency_ms", "value": r.next(400)});
                if r.next(2) == 0 {
                    s["agent"] = json!(agents_[r.next(3) as usize]);
                }
                s
            };
            match kind {
                "observe" => {
                    v = sample(&mut r);
                    v["kind"] = json!("observe");
                }
                "observe_batch" => {
                    let n = r.next(4);
                    v = json!({"kind": kind, "samples": (0..n).map(|_| sample(&mut r)).collect::<Vec<_>>()});
                }
                "ack" | "action_failed" => v["action_id"] = json!(r.next(6)),
                "register_version" => v["version"] = v3(),
                "start_rollout" | "mark_validated" => {
                    v["version"] = json!(arms[r.next(4) as usize])
                }
                "revert_now" if r.next(2) == 0 => v["target"] = json!("golden"),
                _ => {}
            }
            if let (Some(ag), false) = (agent, kind == "observe") {
                v["agent"] = json!(ag);
            }
            let before = a.clone();
            match a.handle(&input(v)) {
                Ok(step) => {
                    accepted += 1;
                    assert!(step.agents.iter().all(|s| !s.step.is_empty()));
                }
                Err(_) => {
                    refused += 1;
                    assert_eq!(a, before);
                }
            }
            t = t.max(a.now());
            // The derived clock and deadline index agree with the agents.
            let earliest = a
                .agents()
                .filter_map(|x| a.policy(x).unwrap().next_deadline())
                .min();
            assert_eq!(a.next_deadline(), earliest);
            let latest = a.agents().map(|x| a.policy(x).unwrap().now()).max();
            assert!(Some(a.now()) >= latest);
        }
        let restored = Agents::restore_json(&a.snapshot().to_json()).unwrap();
        assert_eq!(restored, a);
    }
    assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
}

// ------------------------------------------------------------------ columns

/// [`config`] with a count metric `errors` (an error-rate gate of 20 %) as well.
fn config_with_errors() -> Value {
    let mut c = config();
    let policy = &mut c["policy"];
    policy["metrics"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6}));
    policy["gates"].as_array_mut().unwrap().push(json!(
        {"name": "error_rate", "metric": "errors", "stat": "rate",
         "rule": {"kind": "threshold", "max": 0.2}, "samples_min": 5}));
    c
}

/// Every decision and event per agent, in order, over a run of steps.
fn per_agent(steps: &[AgentsStep]) -> BTreeMap<String, (Vec<Value>, Vec<Value>)> {
    let mut out: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for s in steps {
        for a in &s.agents {
            let entry = out.entry(a.agent.clone()).or_default();
            entry.0.extend(
                a.step
                    .decisions
                    .iter()
                    .map(|d| serde_json::to_value(d).unwrap()),
            );
            entry.1.extend(
                a.step
                    .events
                    .iter()
                    .map(|e| serde_json::to_value(e).unwrap()),
            );
        }
    }
    out
}

/// Two containers in the same state: v3 rolling out to both agents (acknowledged).
fn two_rolling_out(config: &Value) -> (Agents, Agents) {
    let mut a = Agents::from_json(&config.to_string(), 0).unwrap();
    roll_out_v3(&mut a);
    let b = a.clone();
    (a, b)
}

#[test]
fn a_value_column_for_one_agent_is_its_rows_one_by_one() {
    let (mut column, mut rows) = two_rolling_out(&config());
    // Four minutes of the negotiator's candidate, its p95 crossing its 200 ms threshold
    // after 42 s: it rolls back, and the other agent's analyses fall due inside the
    // column.
    let at: Vec<u64> = (1..=340u64).map(|i| i * 700).collect();
    let values: Vec<f64> = (0..340u64)
        .map(|i| {
            if i < 60 {
                120.0 + (i % 7) as f64
            } else {
                260.0 + (i % 5) as f64
            }
        })
        .collect();
    let mut one_by_one = Vec::new();
    for (&t, &x) in at.iter().zip(&values) {
        let sample = Sample::value(t, "v3", "latency_ms", x);
        one_by_one.push(
            rows.handle(&AgentInput::to("negotiator", Input::Observe(sample)))
                .unwrap(),
        );
    }
    let labels = rollguard::Labels::<&str>::default();
    let step = column
        .observe_values("negotiator", "v3", "latency_ms", &at, &values, &labels)
        .unwrap();
    assert_eq!(step.at, *at.last().unwrap());
    let want = per_agent(&one_by_one);
    assert_eq!(per_agent(std::slice::from_ref(&step)), want);
    // The other agent's timers fired inside the column, and the negotiator rolled back.
    assert!(!want["notifier"].1.is_empty(), "{want:?}");
    assert_eq!(rollbacks(&[step], "negotiator").len(), 1);
    assert_eq!(column, rows);
    assert_eq!(column.snapshot().to_json(), rows.snapshot().to_json());
}

#[test]
fn a_count_column_with_tenant_labels_is_its_rows_one_by_one() {
    let (mut column, mut rows) = two_rolling_out(&config_with_errors());
    let tenants = ["acme", "globex"];
    let at: Vec<u64> = (1..=200u64).map(|i| i * 1100).collect();
    let events: Vec<i64> = (0..200i64)
        .map(|i| if i > 40 { 9 } else { i % 2 })
        .collect();
    let totals: Vec<i64> = vec![20; 200];
    let codes: Vec<i32> = (0..200)
        .map(|i| if i % 5 == 0 { -1 } else { i % 2 })
        .collect();
    let mut one_by_one = Vec::new();
    for i in 0..at.len() {
        let mut s = Sample::count(at[i], "v3", "errors", events[i], totals[i]);
        s.tenant = usize::try_from(codes[i])
            .ok()
            .map(|c| tenants[c].to_string());
        s.agent = Some("notifier".into());
        one_by_one.push(rows.handle(&AgentInput::all(Input::Observe(s))).unwrap());
    }
    // An agent column naming the agent on some rows is accepted.
    let agent_codes: Vec<i32> = (0..200).map(|i| if i % 3 == 0 { 0 } else { -1 }).collect();
    let labels = rollguard::Labels {
        tenant: Some(rollguard::LabelColumn::new(&codes, &tenants)),
        agent: Some(rollguard::LabelColumn::new(&agent_codes, &["notifier"])),
        ..rollguard::Labels::default()
    };
    let step = column
        .observe_counts("notifier", "v3", "errors", &at, &events, &totals, &labels)
        .unwrap();
    assert_eq!(
        per_agent(std::slice::from_ref(&step)),
        per_agent(&one_by_one)
    );
    assert_eq!(rollbacks(&[step], "notifier").len(), 1);
    assert_eq!(column, rows);
}

#[test]
fn a_refused_column_changes_no_agent() {
    let (mut a, _) = two_rolling_out(&config());
    a.tick(5_000).unwrap();
    let before = a.clone();
    let at: Vec<u64> = (0..10u64).map(|i| 6_000 + i * 100).collect();
    let values = vec![100.0; 10];
    let none = rollguard::Labels::<&str>::default();
    let refused =
        |a: &mut Agents, r: Result<AgentsStep, rollguard::Error>, code: ErrorCode, path: &str| {
            let e = r.unwrap_err();
            assert_eq!((e.code, e.path.as_str()), (code, path), "{e}");
            assert_eq!(*a, before);
        };
    let r = a.observe_values("planner", "v3", "latency_ms", &at, &values, &none);
    refused(&mut a, r, ErrorCode::UnknownAgent, "agent");
    let early: Vec<u64> = (0..10u64).map(|i| 4_000 + i * 100).collect();
    let r = a.observe_values("notifier", "v3", "latency_ms", &early, &values, &none);
    refused(&mut a, r, ErrorCode::TimeWentBackwards, "at[0]");
    let mut bad = values.clone();
    bad[7] = f64::NAN;
    let r = a.observe_values("notifier", "v3", "latency_ms", &at, &bad, &none);
    refused(&mut a, r, ErrorCode::NonFiniteValue, "value[7]");
    let codes = [-1, 0, -1, 1, 0, 0, 0, 0, 0, 0];
    let other = rollguard::Labels {
        agent: Some(rollguard::LabelColumn::new(
            &codes,
            &["notifier", "negotiator"],
        )),
        ..rollguard::Labels::default()
    };
    let r = a.observe_values("notifier", "v3", "latency_ms", &at, &values, &other);
    refused(&mut a, r, ErrorCode::UnknownAgent, "agent[3]");
    // An empty column is accepted and changes nothing.
    let step = a
        .observe_values("notifier", "v3", "latency_ms", &[], &[], &none)
        .unwrap();
    assert!(step.agents.is_empty());
    assert_eq!(a, before);
}
