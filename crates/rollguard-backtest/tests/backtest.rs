//! Backtests of small policies on synthetic recordings: what the report says agrees
//! with what the replications did.

use rollguard::{PolicyConfig, Sample, TargetKind};
use rollguard_backtest::{
    BacktestSpec, Outcome, Recording, Report, Traffic, backtest, check, run_replication,
};

/// A policy judging mean latency (threshold `max`) and the error rate on a 50 %
/// canary of ten minutes, then promoting.
fn policy(max: f64, ack_timeout_ms: u64) -> PolicyConfig {
    serde_json::from_value(serde_json::json!({
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "sha256:aa", "validated": true},
                     {"id": "v2", "digest": "sha256:bb"}],
        "stable": "v1",
        "metrics": [
            {"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6},
            {"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6}
        ],
        "gates": [
            {"name": "mean", "metric": "latency_ms", "stat": "mean",
             "rule": {"kind": "threshold", "max": max}, "samples_min": 20,
             "persistence": {"consecutive": 2}},
            {"name": "error_rate", "metric": "errors", "stat": "rate",
             "rule": {"kind": "threshold", "max": 0.05}, "samples_min": 200,
             "persistence": {"consecutive": 2}}
        ],
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 50, "duration_ms": 600000}]},
        "analysis": {"interval_ms": 10000},
        "safety": {"ack_timeout_ms": ack_timeout_ms}
    }))
    .unwrap()
}

/// Forty minutes of production traffic on `arm`: a latency sample and an error count
/// (of 10 requests, 2 % failing) every 200 ms, latency 100 ms ± noise.
fn traffic(seed: u64, arm: &str) -> Vec<Sample> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::new();
    for i in 0..12_000u64 {
        let at = i * 200;
        let noise: f64 = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
        out.push(Sample::value(at, arm, "latency_ms", 100.0 + 20.0 * noise));
        let errors = (0..10).filter(|_| uniform() < 0.02).count() as i64;
        out.push(Sample::count(at, arm, "errors", errors, 10));
    }
    out
}

fn recording() -> Recording {
    Recording::new(traffic(1, "v1")).unwrap()
}

fn spec(json: serde_json::Value) -> BacktestSpec {
    let mut base = serde_json::json!({"candidate": "v2"});
    base.as_object_mut()
        .unwrap()
        .extend(json.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

#[test]
fn a_healthy_candidate_on_its_own_traffic_is_promoted_every_time() {
    let report = backtest(
        &policy(150.0, 60_000),
        &recording(),
        &spec(serde_json::json!({
            "replications": 8, "resample": {"block_ms": 120000}
        })),
    )
    .unwrap();
    assert_eq!(report.replications, 8);
    assert_eq!(report.promoted, 8);
    assert_eq!(report.false_rollbacks.count, 0);
    assert!(report.false_rollbacks.high > 0.0 && report.false_rollbacks.high < 0.5);
    assert!(!report.injected && report.detected.is_none() && report.exposure.is_none());
}

#[test]
fn a_threshold_inside_the_noise_rolls_good_versions_back_and_the_report_counts_them() {
    // A mean threshold of 101 over 100 ± noise: the realised false-rollback rate is
    // whatever the noise makes it, which is what a backtest is for.
    let spec = spec(serde_json::json!({"replications": 12, "resample": {"block_ms": 60000}}));
    let report = backtest(&policy(101.0, 60_000), &recording(), &spec).unwrap();
    let rolled = report
        .outcomes
        .iter()
        .filter(|o| o.rollback.as_ref().is_some_and(|r| r.automated))
        .count() as u32;
    assert!(rolled > 0, "{report:?}");
    assert_eq!(report.false_rollbacks.count, rolled);
    assert_eq!(report.promoted + rolled, 12);
    for o in &report.outcomes {
        if let Some(r) = &o.rollback {
            assert_eq!((r.to.as_str(), r.target), ("v1", TargetKind::Stable));
            assert_eq!(r.restored_at, Some(r.at), "acknowledged at once");
        }
    }
}

#[test]
fn an_injected_latency_regression_is_caught_after_its_onset() {
    let spec = spec(serde_json::json!({
        "replications": 6,
        "ack_delay_ms": 2000,
        "inject": {"metric": "latency_ms", "change": {"kind": "ratio", "factor": 1.5},
                   "onset_ms": 60000, "onset_max_ms": 300000}
    }));
    let report = backtest(&policy(130.0, 60_000), &recording(), &spec).unwrap();
    assert!(report.injected);
    assert_eq!(report.detected.unwrap().count, 6);
    assert_eq!(report.false_rollbacks.count, 0);
    let onsets: Vec<u64> = report.outcomes.iter().map(|o| o.onset.unwrap()).collect();
    assert!(onsets.iter().all(|o| (60_000..=300_000).contains(o)));
    assert!(
        onsets.windows(2).any(|w| w[0] != w[1]),
        "onsets are drawn: {onsets:?}"
    );
    let delay = report.detection_delay_ms.unwrap();
    let restored = report.onset_to_restored_ms.unwrap();
    // Two consecutive failing evaluations, 10 s apart, after the window fills.
    assert!(delay.min >= 10_000 && delay.max <= 120_000, "{delay:?}");
    assert_eq!(
        restored.min,
        delay.min + 2_000,
        "restored an ack delay later"
    );
    // The candidate served about half the latency samples from the onset to the
    // restoration, 5 per second.
    for o in &report.outcomes {
        let r = o.rollback.as_ref().unwrap();
        let served = (r.restored_at.unwrap() - o.onset.unwrap()) as f64 / 200.0 * 0.5;
        assert!(
            (o.exposure as f64 - served).abs() < 0.25 * served + 10.0,
            "{o:?}"
        );
    }
}

#[test]
fn an_error_rate_multiplier_rolls_back_on_the_error_gate() {
    let spec = spec(serde_json::json!({
        "replications": 3,
        "inject": {"metric": "errors", "change": {"kind": "error_rate", "multiplier": 5.0},
                   "onset_ms": 120000}
    }));
    let report = backtest(&policy(150.0, 60_000), &recording(), &spec).unwrap();
    assert_eq!(report.detected.unwrap().count, 3);
    // Exposure counts requests (the counts' totals): ten per sample.
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.exposure > 0 && o.exposure % 10 == 0)
    );
}

#[test]
fn a_tail_only_regression_that_leaves_the_mean_under_the_threshold_goes_unseen() {
    // One sample in a hundred 1.5 × slower raises the mean by 0.5 %: a mean gate at
    // 130 cannot see it, and the report says so rather than hiding it.
    let spec = spec(serde_json::json!({
        "replications": 3,
        "inject": {"metric": "latency_ms", "change": {"kind": "tail", "share": 0.01, "factor": 1.5},
                   "onset_ms": 0}
    }));
    let report = backtest(&policy(130.0, 60_000), &recording(), &spec).unwrap();
    assert_eq!(report.detected.unwrap().count, 0);
    assert_eq!(report.promoted, 3);
    assert!(report.detection_delay_ms.is_none());
    // Exposure runs to the end: the whole canary plus everything after promotion.
    assert!(report.exposure.unwrap().min > 6_000);
}

#[test]
fn replications_split_across_workers_give_the_same_report() {
    let config = policy(101.0, 60_000);
    let rec = recording();
    let spec = spec(serde_json::json!({
        "replications": 6, "seed": 42, "resample": {"block_ms": 60000},
        "inject": {"metric": "latency_ms", "change": {"kind": "shift", "delta": 5.0},
                   "onset_ms": 0, "onset_max_ms": 600000}
    }));
    let whole = backtest(&config, &rec, &spec).unwrap();
    let mut parts: Vec<Outcome> = (3..6)
        .chain(0..3)
        .map(|r| run_replication(&config, &rec, &spec, r).unwrap())
        .collect();
    parts.reverse();
    assert_eq!(Report::from_outcomes(parts), whole);
    let json = serde_json::to_string(&whole).unwrap();
    assert_eq!(
        json,
        serde_json::to_string(&backtest(&config, &rec, &spec).unwrap()).unwrap()
    );
    let other = BacktestSpec { seed: 43, ..spec };
    assert_ne!(
        backtest(&config, &rec, &other).unwrap().outcomes,
        whole.outcomes
    );
}

#[test]
fn a_recorded_canary_keeps_its_arms_and_drops_the_candidate_after_a_rollback() {
    let mut samples = traffic(1, "v1");
    let mut bad = traffic(2, "canary");
    for s in &mut bad {
        if s.at >= 300_000 {
            s.value = s.value.map(|v| v * 2.0);
        }
    }
    samples.extend(bad);
    let rec = Recording::new(samples).unwrap();
    let spec =
        spec(serde_json::json!({"traffic": {"kind": "recorded", "candidate_arm": "canary"}}));
    let report = backtest(&policy(130.0, 60_000), &rec, &spec).unwrap();
    let o = &report.outcomes[0];
    let r = o
        .rollback
        .as_ref()
        .expect("the recorded regression is caught");
    assert!(r.at > 300_000 && r.at < 420_000, "{r:?}");
    // Not injected by the backtest: the rollback counts as a false one, which is
    // what it is from the backtest's point of view (no onset was declared).
    assert_eq!(report.false_rollbacks.count, 1);
    assert_eq!(o.refused, 0);
    assert!(matches!(spec.traffic, Traffic::Recorded { .. }));
}

#[test]
fn specs_that_do_not_fit_are_refused_with_a_path() {
    let config = policy(150.0, 60_000);
    let rec = recording();
    // `check` refuses each without running a replication, with the same code and path.
    let err = |json: serde_json::Value| {
        let spec = spec(json);
        let e = backtest(&config, &rec, &spec).unwrap_err();
        let checked = check(&config, &rec, &spec).unwrap_err();
        assert_eq!((&checked.code, &checked.path), (&e.code, &e.path));
        e
    };
    assert!(check(&config, &rec, &spec(serde_json::json!({}))).is_ok());
    let e = err(serde_json::json!({"replications": 0}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_value", "replications")
    );
    let e = err(serde_json::json!({"candidate": "v9"}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("unknown_reference", "candidate")
    );
    let e = err(
        serde_json::json!({"inject": {"metric": "cost", "change": {"kind": "shift", "delta": 1}}}),
    );
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_value", "inject.metric")
    );
    let e = err(serde_json::json!({"inject": {"metric": "latency_ms",
        "change": {"kind": "error_rate", "multiplier": 2}}}));
    assert_eq!(e.path, "inject.metric", "latency has values, not counts");
    let e = err(serde_json::json!({"inject": {"metric": "errors",
        "change": {"kind": "error_rate", "multiplier": 80}}}));
    assert_eq!(e.path, "inject.change.multiplier", "2 % × 80 is over 100 %");
    let e = err(serde_json::json!({"resample": {"block_ms": 0}}));
    assert_eq!(e.path, "resample.block_ms");
    let e = BacktestSpec::from_json(r#"{"replications": 1, "replicatons": 2}"#).unwrap_err();
    assert_eq!(e.code, "invalid_json");
}
