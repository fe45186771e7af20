//! `kayenta_score` by simulation: Kayenta's composite judgement over three
//! `mann_whitney` members, on a healthy candidate and on one regressed in one metric.
//!
//! Each member is a fixed-horizon test per interval whose false High has probability at
//! most (1 − confidence)/2; the composite fails an interval only if some member is
//! classified High (or Low), so its per-interval false-failure rate is at most the sum
//! of its members' (the union bound). That is the guarantee Kayenta's judge carries, and
//! what this test checks; over a whole rollout the intervals add up, as for
//! `mann_whitney` alone (`tests/mann_whitney.rs`).

mod common;

use common::Rng;
use rollguard::{EventKind, Evidence, Verdict};

const CONFIDENCE: f64 = 0.98;
const INTERVALS: u64 = 20;
const PER_INTERVAL: u64 = 30;
const METRICS: [&str; 3] = ["latency_ms", "cpu", "memory_mb"];

/// One rollout of `INTERVALS` 10 s intervals, `PER_INTERVAL` samples per arm and metric
/// in each; `draw(rng, metric, judged)` gives a sample. Returns the score gate's
/// verdict and score at each interval.
fn rollout(
    rng: &mut Rng,
    mut draw: impl FnMut(&mut Rng, usize, bool) -> f64,
) -> Vec<(Verdict, f64)> {
    let members = METRICS
        .iter()
        .map(|m| {
            format!(
                r#"{{"name": "{m}_mw", "metric": "{m}", "stat": "mean", "dry_run": true,
                     "rule": {{"kind": "mann_whitney", "confidence": {CONFIDENCE}}}}}"#
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let config = format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "latency_ms", "kind": "value"}}, {{"name": "cpu", "kind": "value"}},
                  {{"name": "memory_mb", "kind": "value"}}],
      "gates": [{members},
        {{"name": "score", "metric": "latency_ms", "stat": "mean", "dry_run": true,
          "rule": {{"kind": "kayenta_score", "pass": 95, "marginal": 75,
                    "group_weights": {{"latency": 50, "system": 50}},
                    "members": [{{"gate": "latency_ms_mw", "groups": ["latency"]}},
                                {{"gate": "cpu_mw", "groups": ["system"]}},
                                {{"gate": "memory_mb_mw", "groups": ["system"]}}]}}}}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 50, "duration_ms": {}}}]}},
      "analysis": {{"interval_ms": 10000}}
    }}"#,
        INTERVALS * 10_000 + 5_000
    );
    let mut p = common::rolled_out(&config);
    let mut out = Vec::new();
    for i in 0..INTERVALS {
        let t0 = i * 10_000;
        for k in 0..PER_INTERVAL {
            let at = t0 + 100 + k * 300;
            for (m, metric) in METRICS.iter().enumerate() {
                let _ = p
                    .observe_value(at, "v1", metric, draw(rng, m, false))
                    .expect("v1");
                let _ = p
                    .observe_value(at, "v2", metric, draw(rng, m, true))
                    .expect("v2");
            }
        }
        let step = p.tick(t0 + 10_000).expect("tick");
        for e in &step.events {
            if let EventKind::Analysis { reports, .. } = &e.kind {
                for r in reports.iter().filter(|r| r.gate == "score") {
                    let Evidence::Score {
                        score: Some(score), ..
                    } = r.evidence
                    else {
                        panic!("no score: {r:?}");
                    };
                    out.push((r.verdict, score));
                }
            }
        }
    }
    assert_eq!(out.len() as u64, INTERVALS);
    out
}

/// The share of intervals whose score failed, over `runs` rollouts.
fn failed_share(runs: u32, seed: u64, draw: impl Fn(&mut Rng, usize, bool) -> f64) -> f64 {
    let mut rng = Rng(seed);
    let mut failed = 0u64;
    for _ in 0..runs {
        for (verdict, score) in rollout(&mut rng, &draw) {
            // A failing interval is one at or below marginal, and nothing else.
            assert_eq!(
                verdict == Verdict::Fail,
                score <= 75.0,
                "{verdict:?} at {score}"
            );
            failed += u64::from(verdict == Verdict::Fail);
        }
    }
    failed as f64 / (f64::from(runs) * INTERVALS as f64)
}

#[test]
fn identical_arms_fail_an_interval_at_most_as_often_as_the_members_together() {
    // Three skewed metrics, identical arms.
    let lognormal = |rng: &mut Rng, _m: usize, _judged: bool| 100.0 * libm::exp(0.5 * rng.normal());
    let runs = 500;
    let share = failed_share(runs, 11, lognormal);
    // Any High or Low fails this score (one in latency leaves 50, one in system 75), so
    // the union bound is the members' sum: 3 × (1 − confidence)/2 = 3 %, with room for
    // the binomial noise of 10 000 intervals (3 standard errors of 3 % is 0.5 %).
    let union = METRICS.len() as f64 * (1.0 - CONFIDENCE) / 2.0;
    eprintln!(
        "null, {runs} rollouts of {INTERVALS} intervals: {:.2} % of intervals scored at or \
         below marginal (union bound {:.0} %)",
        share * 100.0,
        union * 100.0
    );
    assert!(share <= union + 0.005, "{share}");
}

#[test]
fn a_regression_in_one_metric_fails_most_intervals() {
    // cpu one deviation higher on the candidate; latency and memory unchanged.
    let cpu_up = |rng: &mut Rng, m: usize, judged: bool| {
        100.0 + 10.0 * rng.normal() + if judged && m == 1 { 10.0 } else { 0.0 }
    };
    let share = failed_share(50, 12, cpu_up);
    eprintln!("cpu +1σ: {:.1} % of intervals failed", share * 100.0);
    assert!(share >= 0.6, "{share}");
}
