//! The drill library against a small policy: each failure mode is played, caught or
//! skipped with its reason; the second bad candidate starts when the first ends.

use rollguard::{PolicyConfig, Reason, Sample};
use rollguard_backtest::{BacktestSpec, Recording, backtest, drills, run_drills};

fn policy(versions: u32) -> PolicyConfig {
    let versions: Vec<serde_json::Value> = (1..=versions)
        .map(|i| serde_json::json!({"id": format!("v{i}"), "digest": format!("sha256:{i}"), "validated": i == 1}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "format_version": 1,
        "versions": versions,
        "stable": "v1",
        "metrics": [
            {"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6},
            {"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6}
        ],
        "gates": [
            {"name": "latency", "metric": "latency_ms", "stat": "mean",
             "rule": {"kind": "threshold", "max": 130.0}, "samples_min": 20,
             "persistence": {"consecutive": 2}},
            {"name": "errors", "metric": "errors", "stat": "rate",
             "rule": {"kind": "vs_baseline", "max_increase": 0.03}, "samples_min": 200,
             "persistence": {"consecutive": 2}}
        ],
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 50, "duration_ms": 900000}]},
        "analysis": {"interval_ms": 10000},
        "safety": {"cooldown_ms": 600000}
    }))
    .unwrap()
}

/// Forty minutes: latency 100 ± 5 and 2 % errors of 10 requests, every 200 ms.
fn recording() -> Recording {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut samples = Vec::new();
    for i in 0..12_000u64 {
        let at = i * 200;
        samples.push(Sample::value(
            at,
            "v1",
            "latency_ms",
            95.0 + 10.0 * uniform(),
        ));
        let errors = (0..10).filter(|_| uniform() < 0.02).count() as i64;
        samples.push(Sample::count(at, "v1", "errors", errors, 10));
    }
    Recording::new(samples).unwrap()
}

fn base() -> BacktestSpec {
    BacktestSpec::from_json(r#"{"candidate": "v2", "replications": 2}"#).unwrap()
}

#[test]
fn the_library_plays_each_failure_mode_the_policy_can_be_asked_about() {
    let rec = recording();
    let results = run_drills(&policy(3), &rec, &base()).unwrap();
    let names: Vec<&str> = results.iter().map(|r| r.drill.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "latency_regression",
            "error_burst",
            "quality_drift",
            "silent_candidate",
            "bad_candidate_twice"
        ]
    );
    let by = |n: &str| results.iter().find(|r| r.drill.name == n).unwrap();
    // Onset a quarter into the recording (just under 40 minutes), at most 10 minutes.
    let spec = by("latency_regression").drill.spec.as_ref().unwrap();
    assert_eq!(
        spec.inject.as_ref().unwrap().onset_ms,
        (rec.end() - rec.start()) / 4
    );
    for caught in ["latency_regression", "error_burst"] {
        let r = by(caught);
        assert_eq!(r.caught.unwrap().count, 2, "{caught}: {r:?}");
        assert!(
            r.onset_to_rollback_ms.unwrap().max <= 120_000,
            "{caught}: {r:?}"
        );
        assert_eq!(r.targets.len(), 1, "{r:?}");
        assert!(
            r.targets[0].0.starts_with("v1 (stable, gate_failed"),
            "{r:?}"
        );
    }
    // No gate where lower is worse: nothing can drift down.
    let drift = by("quality_drift");
    assert!(drift.drill.spec.is_none() && drift.report.is_none());
    assert!(
        drift
            .drill
            .skipped
            .as_ref()
            .unwrap()
            .contains("lower is worse")
    );
    // The second bad candidate starts as the first is restored, fails at the same
    // offset from its own start, and its rollback (the second automated one in the
    // breaker's window) trips the circuit breaker: back to golden.
    let twice = by("bad_candidate_twice");
    let offset = (rec.end() - rec.start()) / 4;
    for o in &twice.report.as_ref().unwrap().outcomes {
        let first = o.rollback.as_ref().unwrap();
        let then = o.then.as_ref().expect("the second rollout started");
        assert_eq!(
            (then.candidate.as_str(), then.started_at),
            ("v3", first.restored_at.unwrap())
        );
        let second = then
            .rollback
            .as_ref()
            .expect("the second is rolled back too");
        assert!(second.at >= then.started_at + offset, "{then:?}");
        assert_eq!(
            (second.reason, second.to.as_str()),
            (Reason::BreakerTripped, "v1")
        );
    }
    assert_eq!(
        twice.second,
        [("rolled back to v1 (breaker_tripped)".to_string(), 2)]
    );
}

#[test]
fn a_policy_with_two_versions_skips_the_second_candidate() {
    let d = drills(&policy(2), &recording(), &base());
    let twice = d.iter().find(|d| d.name == "bad_candidate_twice").unwrap();
    assert!(twice.spec.is_none());
    assert!(twice.skipped.as_ref().unwrap().contains("third version"));
}

#[test]
fn a_silent_candidate_sends_nothing_after_its_onset() {
    let spec = BacktestSpec::from_json(
        r#"{"candidate": "v2", "inject": {"metric": "*", "change": {"kind": "silence"}, "onset_ms": 60000}}"#,
    )
    .unwrap();
    let report = backtest(&policy(2), &recording(), &spec).unwrap();
    let o = &report.outcomes[0];
    // The canary cannot conclude without the candidate's data: no promotion.
    assert_eq!(o.promoted_at, None, "{o:?}");
    if let Some(r) = &o.rollback {
        assert_ne!(
            r.reason,
            Reason::GateFailed,
            "no data is not a failing gate: {r:?}"
        );
    }
}

#[test]
fn a_burst_ends_and_a_drift_grows() {
    let burst = BacktestSpec::from_json(
        r#"{"candidate": "v2", "inject": {"metric": "latency_ms", "change": {"kind": "shift", "delta": 100},
            "onset_ms": 60000, "duration_ms": 5000}}"#,
    )
    .unwrap();
    // Five seconds of +100 ms moves a minute's mean by ~8 ms: under the threshold.
    let r = backtest(&policy(2), &recording(), &burst).unwrap();
    assert_eq!(r.detected.unwrap().count, 0);
    assert!(
        r.outcomes[0].exposure > 0 && r.outcomes[0].exposure < 30,
        "{:?}",
        r.outcomes[0]
    );
    let drift = BacktestSpec::from_json(
        r#"{"candidate": "v2", "inject": {"metric": "latency_ms", "change": {"kind": "drift", "per_hour": 240},
            "onset_ms": 0}}"#,
    )
    .unwrap();
    // +4 ms a minute takes the mean of 100 past 130 after 7.5 minutes, and the
    // minute-long window's mean (lagging 30 s) past it after 8; two evaluations 10 s
    // apart then trip the gate, inside the 15-minute canary.
    let r = backtest(&policy(2), &recording(), &drift).unwrap();
    let delay = r.detection_delay_ms.expect("caught").p50;
    assert!((450_000..=560_000).contains(&delay), "{delay}");
}

#[test]
fn new_injection_fields_are_checked() {
    let err = |inject: &str| {
        let spec =
            BacktestSpec::from_json(&format!(r#"{{"candidate": "v2", "inject": {inject}}}"#))
                .unwrap();
        spec.check().unwrap_err().path
    };
    assert_eq!(
        err(r#"{"metric": "*", "change": {"kind": "shift", "delta": 1}}"#),
        "inject.metric"
    );
    assert_eq!(
        err(
            r#"{"metric": "latency_ms", "change": {"kind": "shift", "delta": 1}, "duration_ms": 0}"#
        ),
        "inject.duration_ms"
    );
    let spec =
        BacktestSpec::from_json(r#"{"candidate": "v2", "then": {"candidate": "v2"}}"#).unwrap();
    assert_eq!(
        backtest(&policy(3), &recording(), &spec).unwrap_err().path,
        "then.candidate"
    );
}
