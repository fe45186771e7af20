//! Calibration on a synthetic null: the value found meets the target and the next
//! tighter value tried does not; a statistical gate is checked against its alpha.

use rollguard::{PolicyConfig, Sample};
use rollguard_backtest::{BacktestSpec, CalibrateSpec, Recording, calibrate, check_calibration};

fn policy(rule: serde_json::Value, consecutive: u32) -> PolicyConfig {
    serde_json::from_value(serde_json::json!({
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "sha256:aa", "validated": true},
                     {"id": "v2", "digest": "sha256:bb"}],
        "stable": "v1", "candidate": "v2",
        "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
        "gates": [{"name": "mean", "metric": "latency_ms", "stat": "mean", "rule": rule,
                   "samples_min": 20, "persistence": {"consecutive": consecutive}}],
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 50, "duration_ms": 600000}]},
        "analysis": {"interval_ms": 10000}
    }))
    .unwrap()
}

/// Twenty minutes of latency around 100 ms, one sample every 200 ms.
fn recording() -> Recording {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let samples = (0..6_000u64)
        .map(|i| {
            let noise: f64 = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
            Sample::value(i * 200, "v1", "latency_ms", 100.0 + 20.0 * noise)
        })
        .collect();
    Recording::new(samples).unwrap()
}

fn spec() -> BacktestSpec {
    BacktestSpec::from_json(r#"{"replications": 16, "resample": {"block_ms": 60000}}"#).unwrap()
}

#[test]
fn a_max_threshold_inside_the_noise_is_loosened_to_meet_the_target() {
    let config = policy(serde_json::json!({"kind": "threshold", "max": 100.5}), 1);
    let what = CalibrateSpec {
        gate: "mean".into(),
        target: 0.1,
        parameter: None,
    };
    let c = calibrate(&config, &recording(), &spec(), &what).unwrap();
    assert_eq!(c.parameter, "max");
    assert_eq!(c.configured.value, 100.5);
    assert!(
        c.configured.rate.rate > 0.1,
        "the configured value misses: {c:?}"
    );
    assert!(c.met && c.result.rate.rate <= 0.1);
    assert!(c.result.value > 100.5);
    // A value within the bisection's last step below the result fails the target:
    // the result is the tightest that meets it.
    let tighter_failing = c
        .trials
        .iter()
        .filter(|t| t.value < c.result.value && t.rate.rate > 0.1)
        .map(|t| t.value)
        .fold(f64::MIN, f64::max);
    assert!(c.result.value - tighter_failing < 0.01, "{c:?}");
}

#[test]
fn a_loose_min_threshold_is_tightened_upwards() {
    // A floor far below the noise never fires: calibration tightens it (upwards, for
    // a min) until it would.
    let config = policy(serde_json::json!({"kind": "threshold", "min": 80.0}), 1);
    let what = CalibrateSpec {
        gate: "mean".into(),
        target: 0.05,
        parameter: None,
    };
    let c = calibrate(&config, &recording(), &spec(), &what).unwrap();
    assert_eq!(c.configured.rate.count, 0);
    assert!(
        c.met && c.result.value > 80.0 && c.result.value < 100.0,
        "{c:?}"
    );
    assert!(
        c.trials
            .iter()
            .any(|t| t.value > c.result.value && t.rate.rate > 0.05)
    );
}

#[test]
fn consecutive_is_raised_to_the_smallest_that_meets_the_target() {
    let config = policy(serde_json::json!({"kind": "threshold", "max": 100.8}), 1);
    let what = CalibrateSpec {
        gate: "mean".into(),
        target: 0.05,
        parameter: Some("consecutive".into()),
    };
    let c = calibrate(&config, &recording(), &spec(), &what).unwrap();
    let n = c.result.value as u64;
    assert!(c.met && n > 1, "{c:?}");
    let at = |k: u64| {
        c.trials
            .iter()
            .find(|t| t.value == k as f64)
            .unwrap()
            .rate
            .rate
    };
    assert!(at(n - 1) > 0.05, "{c:?}");
}

#[test]
fn a_statistical_gate_is_checked_against_its_alpha() {
    let config = policy(
        serde_json::json!({"kind": "sequential_mean", "alpha": 0.05}),
        1,
    );
    let what = CalibrateSpec {
        gate: "mean".into(),
        target: 0.05,
        parameter: None,
    };
    let c = calibrate(&config, &recording(), &spec(), &what).unwrap();
    assert_eq!((c.parameter.as_str(), c.result.value), ("alpha", 0.05));
    assert_eq!(c.trials.len(), 1);
    assert_eq!(c.met, c.result.rate.low <= 0.05);
    assert!(c.met, "an A/A null stays within alpha: {c:?}");
}

#[test]
fn calibration_refuses_what_it_cannot_search() {
    let config = policy(
        serde_json::json!({"kind": "threshold", "min": 50.0, "max": 150.0}),
        1,
    );
    let rec = recording();
    let err = |gate: &str, parameter: Option<&str>, spec: &BacktestSpec| {
        let what = CalibrateSpec {
            gate: gate.into(),
            target: 0.05,
            parameter: parameter.map(str::to_string),
        };
        let e = calibrate(&config, &rec, spec, &what).unwrap_err();
        // check_calibration refuses it before any backtest, alike.
        let checked = check_calibration(&config, &rec, spec, &what).unwrap_err();
        assert_eq!((&checked.code, &checked.path), (&e.code, &e.path));
        e
    };
    assert_eq!(err("nope", None, &spec()).code, "unknown_reference");
    assert!(
        err("mean", None, &spec())
            .message
            .contains("several bounds")
    );
    assert_eq!(err("mean", Some("max_ratio"), &spec()).path, "parameter");
    let injected = BacktestSpec::from_json(
        r#"{"inject": {"metric": "latency_ms", "change": {"kind": "shift", "delta": 1}}}"#,
    )
    .unwrap();
    assert_eq!(err("mean", Some("max"), &injected).path, "inject");
}
