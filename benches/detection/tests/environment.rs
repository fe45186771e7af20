//! `environment.check` on the benchmark's streams (issue 10, item 5): under the shared
//! incident null (latency ×2 and errors ×10 on both arms for 5 minutes), gates that judge
//! the candidate alone roll back healthy candidates; with the check on they hold
//! instead. A candidate with five times the errors is still rolled back, and the check
//! leaves the README's example policy (whose incident false rollbacks come from a
//! `vs_baseline` gate, a comparison) as it was. Counts only, no timing.

use rollguard::{Action, Input, Policy};
use rollguard_detection::method::{CANDIDATE_VERSION, ERRORS, LATENCY, STABLE_VERSION, methods};
use rollguard_detection::stream::{
    CANDIDATE, STABLE, Second, Stream, Traffic, replication_seed, scenarios,
};
use serde_json::{Value, json};

const TRAFFIC: Traffic = Traffic {
    requests_per_s: 40.0,
    weight: 50,
};
const HORIZON_S: u64 = 1800;
/// Replications per cell: a few dozen in the test suite (debug builds; the README's
/// quantile gates cost seconds per replication there); `ROLLGUARD_ENV_REPS=1000` with
/// `--release` is the measurement the README quotes.
fn reps(default: u64) -> u64 {
    std::env::var("ROLLGUARD_ENV_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
const SEED: u64 = 20_261_206;

/// An SLO policy of gates that judge the candidate alone: mean latency ≤ 300 ms (the
/// nominal mean is 200 ms) and at most 1 % errors (nominal 0.5 %) as a `rate_slo`,
/// on the benchmark's 60 s grid.
fn slo_gates() -> (Value, Value) {
    (
        json!([
            {"name": LATENCY, "kind": "value", "window_ms": 60000, "buckets": 10},
            {"name": ERRORS, "kind": "count", "buckets": 10}
        ]),
        json!([
            {"name": "latency_slo", "metric": LATENCY, "stat": "mean", "samples_min": 50,
             "rule": {"kind": "threshold", "max": 300}},
            {"name": "error_slo", "metric": ERRORS, "stat": "rate", "samples_min": 500,
             "rule": {"kind": "rate_slo", "max_rate": 0.01, "alpha": 0.05}}
        ]),
    )
}

fn config(metrics: &Value, gates: &Value, check: bool) -> String {
    let mut c = json!({
        "format_version": 1,
        "versions": [
            {"id": STABLE_VERSION, "digest": "sha256:01", "validated": true},
            {"id": CANDIDATE_VERSION, "digest": "sha256:02"}
        ],
        "stable": STABLE_VERSION,
        "metrics": metrics,
        "gates": gates,
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": TRAFFIC.weight, "duration_ms": 2_592_000_000u64}
        ]},
        "analysis": {"interval_ms": 60000}
    });
    if check {
        c["environment"] = json!({"check": true});
    }
    c.to_string()
}

/// What one replication ended with.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Ended {
    rolled_back: bool,
    suspected: bool,
}

/// One replication of `scenario` (its index in `scenarios()`) under `config`, as the
/// benchmark's harness runs it: every action acknowledged at once, the first rollback
/// ends it.
fn replicate(config: &str, scenario: usize, rep: u64, latency: bool) -> Ended {
    let s = scenarios()[scenario];
    let mut p = Policy::from_json(config, 0).expect("config");
    let step = p
        .handle(&Input::StartRollout {
            at: 0,
            version: CANDIDATE_VERSION.into(),
        })
        .expect("start");
    let id = step
        .actions()
        .next()
        .and_then(|d| d.action_id)
        .expect("set_weight");
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .expect("ack");
    let mut stream = Stream::new(s, TRAFFIC, HORIZON_S, replication_seed(SEED, scenario, rep));
    let mut second = Second::default();
    let mut ended = Ended::default();
    for t in 0..=HORIZON_S {
        let now = t * 1000;
        while let Some(d) = p.next_deadline().filter(|d| *d <= now) {
            let step = p.tick(d).expect("tick");
            for dec in &step.decisions {
                ended.suspected |= dec.reason == rollguard::Reason::EnvironmentSuspected;
                if matches!(dec.action, Action::Rollback { .. }) {
                    ended.rolled_back = true;
                    return ended;
                }
                if let Some(id) = dec.action_id {
                    let _ = p
                        .handle(&Input::Ack {
                            at: d,
                            action_id: id,
                        })
                        .expect("ack");
                }
            }
        }
        if t == HORIZON_S {
            break;
        }
        stream.next_second(&mut second);
        for (arm, version) in [(STABLE, STABLE_VERSION), (CANDIDATE, CANDIDATE_VERSION)] {
            let a = &second.arms[arm];
            if a.latency.is_empty() {
                continue;
            }
            if latency {
                let at = vec![now; a.latency.len()];
                let _ = p
                    .observe_values(version, LATENCY, &at, &a.latency)
                    .expect("latency");
            }
            let _ = p
                .observe_counts(
                    version,
                    ERRORS,
                    &[now],
                    &[a.errors as i64],
                    &[a.requests() as i64],
                )
                .expect("errors");
        }
    }
    ended
}

fn index(name: &str) -> usize {
    scenarios()
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// Rollbacks and holds of `reps` replications without and with the check.
fn rates(
    metrics: &Value,
    gates: &Value,
    scenario: &str,
    reps: u64,
    latency: bool,
) -> [(u64, u64); 2] {
    let i = index(scenario);
    [false, true].map(|check| {
        let c = config(metrics, gates, check);
        (0..reps).fold((0, 0), |(rb, sus), rep| {
            let e = replicate(&c, i, rep, latency);
            (rb + u64::from(e.rolled_back), sus + u64::from(e.suspected))
        })
    })
}

#[test]
fn under_a_shared_incident_single_arm_gates_hold_instead_of_rolling_back() {
    let (metrics, gates) = slo_gates();
    let reps = reps(60);
    let [(off, _), (on, held)] = rates(&metrics, &gates, "null_incident", reps, true);
    eprintln!(
        "null_incident, {reps} healthy candidates: rolled back {off} without the check, \
         {on} with it ({held} held for the environment)"
    );
    // Without the check nearly every incident rolls a healthy candidate back.
    assert!(off >= reps * 9 / 10, "{off}");
    // With it, at most a few per cent (a noisy window where one arm's excess is below
    // 0.8 of the other's, or a rate_slo rejection on the candidate's share alone).
    assert!(on * 10 <= off, "{on} of {off}");
    assert!(held >= reps * 9 / 10, "{held}");

    // On a quiet stream nothing trips either way.
    let [(off, _), (on, _)] = rates(&metrics, &gates, "null_stationary", reps / 3, true);
    assert_eq!((off, on), (0, 0));
}

#[test]
fn a_candidate_with_five_times_the_errors_is_still_rolled_back() {
    let (metrics, gates) = slo_gates();
    let reps = reps(20);
    let [(off, _), (on, held)] = rates(&metrics, &gates, "error_ratio_5", reps, true);
    eprintln!("error_ratio_5: rolled back {off} / {on} of {reps} (held {held})");
    assert_eq!(off, reps);
    assert_eq!(on, reps);
    assert_eq!(held, 0);
}

#[test]
fn the_readme_policy_is_unchanged_its_incident_rollbacks_come_from_a_comparison() {
    let m = methods()
        .into_iter()
        .find(|m| m.name == "readme_gates")
        .expect("readme_gates");
    let reps = reps(20);
    let [(off, _), (on, held)] = rates(&m.metrics, &m.gates, "null_incident", reps, true);
    eprintln!("readme_gates under null_incident: {off} without, {on} with the check ({held} held)");
    // Its p99 threshold (800 ms) is not reached by the incident's doubled latency; its
    // false rollbacks are the error vs_baseline gate's, which the check leaves alone.
    assert_eq!(off, on);
    assert_eq!(held, 0);
}
