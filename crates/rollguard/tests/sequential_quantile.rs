//! `sequential_quantile` keeps its promise by simulation: evaluated every 10 s for 20
//! minutes, a candidate whose latency distribution equals stable's is rolled back in at
//! most `alpha` of rollouts (lognormal and Pareto latencies, and a load cycle that
//! scales both arms alike), and a candidate whose p99 is 50 % higher with the median
//! and p90 unchanged is caught, after some hundreds of samples per arm.

mod common;

use common::Rng;
use rollguard::{Action, EventKind, Evidence, Input, Sample};

#[derive(Clone, Copy, Debug)]
enum Latency {
    /// 100 ms · exp(N(0, 0.5²)).
    Lognormal,
    /// Pareto with shape 2.5 from 50 ms (a heavy tail).
    Pareto,
    /// Lognormal, scaled by a triangle-wave load cycle of 10 minutes (0.5× to 1.5×),
    /// the same on both arms.
    Cycle,
}

const ALPHA: f64 = 0.05;
/// Samples per arm per second; evaluations every 10 s (200 samples per arm); 20 minutes.
const PER_SECOND: u64 = 20;
const INTERVAL_MS: u64 = 10_000;
const HORIZON_MS: u64 = 1_200_000;

fn config() -> String {
    format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "latency_ms", "kind": "value"}}],
      "gates": [{{"name": "p99_latency", "metric": "latency_ms", "stat": "p99",
                  "rule": {{"kind": "sequential_quantile", "alpha": {ALPHA}}}, "samples_min": 100}}],
      "strategy": {{"kind": "canary", "steps": [
        {{"kind": "set_weight", "weight": 50, "duration_ms": {HORIZON_MS}}}]}},
      "analysis": {{"interval_ms": {INTERVAL_MS}}}
    }}"#
    )
}

/// z-scores of the 90th and 99th percentiles of N(0, 1).
const Z90: f64 = 1.281_551_565_544_600_5;
const Z99: f64 = 2.326_347_874_040_840_8;

fn draw(rng: &mut Rng, latency: Latency, t: u64) -> f64 {
    match latency {
        Latency::Lognormal => 100.0 * libm::exp(0.5 * rng.normal()),
        Latency::Pareto => 50.0 * libm::pow(rng.uniform(), -1.0 / 2.5),
        Latency::Cycle => {
            let phase = (t % 600_000) as f64 / 600_000.0;
            let tri = if phase < 0.5 {
                phase * 2.0
            } else {
                2.0 - phase * 2.0
            };
            (0.5 + tri) * 100.0 * libm::exp(0.5 * rng.normal())
        }
    }
}

/// The candidate's regression: values above the stable version's p90 stretched so
/// that its p99 is 1.5 times stable's (the median and p90 unchanged). Lognormal only.
fn stretched(x: f64) -> f64 {
    let q90 = 100.0 * libm::exp(0.5 * Z90);
    let q99 = 100.0 * libm::exp(0.5 * Z99);
    let f = (1.5 * q99 - q90) / (q99 - q90);
    if x > q90 { q90 + (x - q90) * f } else { x }
}

/// One rollout; returns the candidate's samples when the gate rejected, if it did.
fn detected_after(rng: &mut Rng, latency: Latency, regressed: bool) -> Option<u64> {
    let mut p = common::rolled_out(&config());
    for t in (INTERVAL_MS..=HORIZON_MS).step_by(INTERVAL_MS as usize) {
        // Both arms' samples of the interval as one batch, interleaved 1 ms apart.
        let n = INTERVAL_MS / 1000 * PER_SECOND;
        let step_ms = INTERVAL_MS / n;
        let mut samples = Vec::with_capacity(2 * n as usize);
        for k in 0..n {
            for (half, arm) in [(0, "v1"), (1, "v2")] {
                let at = t - INTERVAL_MS + k * step_ms + half;
                let x = draw(rng, latency, at);
                let x = if regressed && half == 1 {
                    stretched(x)
                } else {
                    x
                };
                samples.push(Sample::value(at, arm, "latency_ms", x));
            }
        }
        let _ = p.handle(&Input::ObserveBatch { samples }).expect("samples");
        let step = p.tick(t).expect("tick");
        if step
            .actions()
            .any(|d| matches!(d.action, Action::Rollback { .. }))
        {
            let used = step.events.iter().find_map(|e| match &e.kind {
                EventKind::Analysis { reports, .. } => {
                    reports.iter().find_map(|r| match r.evidence {
                        Evidence::Quantile { used, .. } => Some(used),
                        _ => None,
                    })
                }
                _ => None,
            });
            return Some(used.expect("the gate's report"));
        }
    }
    None
}

#[test]
fn a_candidate_with_the_same_distribution_is_rarely_rolled_back() {
    for (seed, latency) in [
        (1, Latency::Lognormal),
        (2, Latency::Pareto),
        (3, Latency::Cycle),
    ] {
        let mut rng = Rng(seed);
        let runs = 100;
        let hits = (0..runs)
            .filter(|_| detected_after(&mut rng, latency, false).is_some())
            .count();
        let realised = hits as f64 / f64::from(runs);
        eprintln!("{latency:?}: false rollbacks {hits}/{runs}");
        assert!(
            realised <= ALPHA,
            "{latency:?}: false rollbacks {realised} > alpha {ALPHA}"
        );
    }
}

#[test]
fn a_p99_half_again_as_high_is_caught() {
    let mut rng = Rng(4);
    let runs = 41;
    let mut used: Vec<u64> = (0..runs)
        .map(|_| detected_after(&mut rng, Latency::Lognormal, true).expect("caught"))
        .collect();
    used.sort_unstable();
    let median = used[used.len() / 2];
    eprintln!(
        "p99 +50 %: caught {runs}/{runs}, samples per arm at rejection: median {median}, max {}",
        used[used.len() - 1]
    );
    // 200 samples per arm per evaluation; a tail 50 % longer shows in about 1 % of
    // the samples, so it takes thousands, not tens.
    assert!(median <= 6_000, "median {median} samples per arm");
}
