//! Detectors that observe samples see every accepted sample of the arms their gate
//! compares, with each arm's role, alike on the single, batch and column paths.

use super::*;
use crate::detect::Seen;

const CONFIG: &str = r#"{"format_version": 1,
    "versions": [{"id": "v1", "digest": "d1", "validated": true},
                 {"id": "v2", "digest": "d2"}, {"id": "v3", "digest": "d3"}],
    "stable": "v1",
    "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 2},
                {"name": "errors", "kind": "count", "window_ms": 10000, "buckets": 2}],
    "gates": [{"name": "mean", "metric": "latency_ms", "stat": "mean",
               "rule": {"kind": "vs_baseline", "max_ratio": 1.3}},
              {"name": "err", "metric": "errors", "stat": "rate",
               "rule": {"kind": "threshold", "max": 0.5}}],
    "strategy": {"kind": "canary",
                 "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 600000}]},
    "analysis": {"interval_ms": 1000}}"#;

/// A canary of v2 with both gates' detectors replaced by recorders.
fn recording() -> Policy {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let step = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let id = step.decisions[0].action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap();
    for (gate, metric) in [(0, 0), (1, 1)] {
        p.plan.observers[metric] = vec![gate];
        p.state.gates[gate].detector = Detector::Recorder {
            seen: Box::default(),
        };
    }
    p
}

fn seen(p: &Policy, gate: usize) -> &[Seen] {
    match &p.state.gates[gate].detector {
        Detector::Recorder { seen } => seen,
        other => panic!("not a recorder: {other:?}"),
    }
}

/// An arm, its sample times and values, and its events and totals.
type ArmSamples = (&'static str, Vec<u64>, Vec<f64>, Vec<i64>, Vec<i64>);

/// Each arm's counts come this long after its values, so that every path can take an
/// arm's values, then its counts, in time order.
const COUNTS_LATER: u64 = 500;

/// Per arm (stable v1, candidate v2, the registered but not live v3): times and
/// values, and times with counts. Arms take turns in time so that every path can take
/// them in one order.
fn samples() -> Vec<ArmSamples> {
    ["v1", "v2", "v3"]
        .into_iter()
        .enumerate()
        .map(|(i, arm)| {
            let at: Vec<u64> = (0..7).map(|k| 1_000 * (i as u64 + 1) + 37 * k).collect();
            let values = at.iter().map(|t| *t as f64 / 7.0).collect();
            let events = (0..7).map(|k| k % 3).collect();
            let totals = (0..7).map(|k| 5 + k).collect();
            (arm, at, values, events, totals)
        })
        .collect()
}

#[test]
fn every_sample_path_feeds_observing_detectors_alike() {
    // One sample at a time.
    let mut single = recording();
    for (arm, at, values, events, totals) in samples() {
        for k in 0..at.len() {
            let _ = single
                .observe_value(at[k], arm, "latency_ms", values[k])
                .unwrap();
        }
        for k in 0..at.len() {
            let t = at[k] + COUNTS_LATER;
            let _ = single
                .observe_count(t, arm, "errors", events[k], totals[k])
                .unwrap();
        }
    }
    // One batch.
    let mut batch = recording();
    let mut rows = Vec::new();
    for (arm, at, values, events, totals) in samples() {
        for k in 0..at.len() {
            rows.push(Sample::value(at[k], arm, "latency_ms", values[k]));
        }
        for k in 0..at.len() {
            let t = at[k] + COUNTS_LATER;
            rows.push(Sample::count(t, arm, "errors", events[k], totals[k]));
        }
    }
    let _ = batch.observe_batch(&rows).unwrap();
    // Columns, one per arm and metric (values first, so per gate the order is the same).
    let mut columns = recording();
    for (arm, at, values, events, totals) in samples() {
        let _ = columns
            .observe_values(arm, "latency_ms", &at, &values)
            .unwrap();
        let later: Vec<u64> = at.iter().map(|t| t + COUNTS_LATER).collect();
        let _ = columns
            .observe_counts(arm, "errors", &later, &events, &totals)
            .unwrap();
    }

    for gate in [0, 1] {
        let want = seen(&single, gate);
        // The stable arm is the baseline, the candidate is judged, v3 is no arm.
        assert_eq!(want.len(), 14, "gate {gate}: {want:?}");
        assert!(want[..7].iter().all(|s| s.role == Role::Baseline));
        assert!(want[7..].iter().all(|s| s.role == Role::Judged));
        assert_eq!(seen(&batch, gate), want, "batch, gate {gate}");
        assert_eq!(seen(&columns, gate), want, "columns, gate {gate}");
    }
    assert_eq!(seen(&single, 0)[8].value, Some(2_037.0 / 7.0));
    assert_eq!(seen(&single, 1)[8].counts, (1, 6));
}

#[test]
fn refused_samples_are_not_fed() {
    let mut p = recording();
    let rows = [
        Sample::value(1_000, "v2", "latency_ms", 1.0),
        Sample::value(900, "v2", "latency_ms", 1.0),
    ];
    assert!(p.observe_batch(&rows).is_err());
    assert!(
        p.observe_values("v2", "latency_ms", &[1_000, 1_001], &[1.0, f64::NAN])
            .is_err()
    );
    assert!(seen(&p, 0).is_empty());
}
