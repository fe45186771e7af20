//! `mann_whitney` by simulation: what Kayenta's per-interval judgement does on a
//! healthy candidate and on a regressed one.
//!
//! It is a fixed-horizon test repeated every interval, so its guarantee is per
//! interval: the chance of a false High in one interval is at most (1 − confidence)/2
//! asymptotically (the 0.25 × |estimate| tolerance only lowers it). Over a rollout the
//! chances add up, and nothing bounds them by a rollout-wide alpha: the test checks
//! the per-interval bound, and the per-rollout rate is reported, not promised (it is
//! below the union bound, the only thing that holds). The gates are dry runs, so every
//! interval of a rollout is judged and counted.

mod common;

use common::Rng;
use rollguard::{EventKind, Evidence, Verdict};

const CONFIDENCE: f64 = 0.98;
const INTERVALS: u64 = 20;
const PER_INTERVAL: u64 = 30;

/// One rollout of `INTERVALS` 10 s intervals, `PER_INTERVAL` samples per arm in each;
/// `draw(rng, judged)` gives a sample. Returns each interval's verdict.
fn rollout(rng: &mut Rng, mut draw: impl FnMut(&mut Rng, bool) -> f64) -> Vec<Verdict> {
    let config = format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "latency_ms", "kind": "value"}}],
      "gates": [{{"name": "kayenta", "metric": "latency_ms", "stat": "mean", "dry_run": true,
                  "rule": {{"kind": "mann_whitney", "confidence": {CONFIDENCE}}}}}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 50, "duration_ms": {}}}]}},
      "analysis": {{"interval_ms": 10000}}
    }}"#,
        INTERVALS * 10_000 + 5_000
    );
    let mut p = common::rolled_out(&config);
    let mut verdicts = Vec::new();
    for i in 0..INTERVALS {
        let t0 = i * 10_000;
        for k in 0..PER_INTERVAL {
            let at = t0 + 100 + k * 300;
            let _ = p
                .observe_value(at, "v1", "latency_ms", draw(rng, false))
                .expect("v1");
            let _ = p
                .observe_value(at + 1, "v2", "latency_ms", draw(rng, true))
                .expect("v2");
        }
        let step = p.tick(t0 + 10_000).expect("tick");
        for e in &step.events {
            if let EventKind::Analysis { reports, .. } = &e.kind {
                for r in reports {
                    assert!(matches!(r.evidence, Evidence::Rank { used: 30, .. }));
                    verdicts.push(r.verdict);
                }
            }
        }
    }
    assert_eq!(verdicts.len() as u64, INTERVALS);
    verdicts
}

/// (per-interval failure rate, per-rollout failure rate).
fn rates(runs: u32, seed: u64, draw: impl Fn(&mut Rng, bool) -> f64) -> (f64, f64) {
    let mut rng = Rng(seed);
    let (mut failed_intervals, mut failed_rollouts) = (0u64, 0u32);
    for _ in 0..runs {
        let v = rollout(&mut rng, &draw);
        let f = v.iter().filter(|v| **v == Verdict::Fail).count() as u64;
        failed_intervals += f;
        failed_rollouts += u32::from(f > 0);
    }
    (
        failed_intervals as f64 / (f64::from(runs) * INTERVALS as f64),
        f64::from(failed_rollouts) / f64::from(runs),
    )
}

#[test]
fn identical_arms_fail_an_interval_rarely_but_a_rollout_more_often() {
    // Lognormal latency (skewed, as latencies are), identical arms.
    let lognormal = |rng: &mut Rng, _judged: bool| 100.0 * libm::exp(0.5 * rng.normal());
    let runs = 1500;
    let (per_interval, per_rollout) = rates(runs, 7, lognormal);
    eprintln!(
        "null, {runs} rollouts of {INTERVALS} intervals of {PER_INTERVAL} samples per arm: \
         {:.2} % of intervals failed, {:.1} % of rollouts",
        per_interval * 100.0,
        per_rollout * 100.0
    );
    // Per interval: at most (1 − confidence)/2 = 1 %, with room for the binomial
    // noise of 30 000 intervals (3 standard errors of 1 % is 0.17 %).
    let nominal = (1.0 - CONFIDENCE) / 2.0;
    assert!(per_interval <= nominal + 0.0017, "{per_interval}");
    // Per rollout: only the union bound holds (1 − 0.99^20 = 18 %).
    let union = 1.0 - libm::pow(1.0 - nominal, INTERVALS as f64);
    assert!(per_rollout <= union, "{per_rollout} > {union}");
}

#[test]
fn a_shift_of_one_deviation_is_classified_high_in_most_intervals() {
    let shifted =
        |rng: &mut Rng, judged: bool| 100.0 + 10.0 * rng.normal() + if judged { 10.0 } else { 0.0 };
    let (per_interval, per_rollout) = rates(50, 9, shifted);
    eprintln!(
        "+1σ, {PER_INTERVAL} samples per arm: High in {:.1} % of intervals, {:.0} % of rollouts",
        per_interval * 100.0,
        per_rollout * 100.0
    );
    assert!(per_interval >= 0.6, "{per_interval}");
    assert!(per_rollout >= 0.99, "{per_rollout}");
    // The wrong direction never fails a `higher` gate.
    let faster =
        |rng: &mut Rng, judged: bool| 100.0 + 10.0 * rng.normal() - if judged { 10.0 } else { 0.0 };
    let (per_interval, _) = rates(10, 10, faster);
    assert_eq!(per_interval, 0.0);
}
