//! `error_attribution` keeps its promise by simulation: under continuous monitoring,
//! with load swings, bursts and error surges that hit both arms alike, a candidate
//! exactly as good as stable is rolled back in at most `alpha` of rollouts, and one
//! twice as error-prone is rolled back in nearly all of them.
//!
//! Each run is a two-stage canary (10 %, then 50 %) over 30 minutes of traffic, judged
//! every minute. Seeded, so every run of the test sees the same streams.

mod common;

use common::Rng;
use rollguard::{Action, Input, Policy};

const ALPHA: f64 = 0.05;

fn config() -> String {
    format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "errors", "kind": "count"}}],
      "gates": [{{"name": "attributed", "metric": "errors", "stat": "rate",
                  "rule": {{"kind": "error_attribution", "alpha": {ALPHA}}}}}],
      "strategy": {{"kind": "canary", "steps": [
        {{"kind": "set_weight", "weight": 10, "duration_ms": 600000}},
        {{"kind": "set_weight", "weight": 50, "duration_ms": 1200000}}]}},
      "analysis": {{"interval_ms": 60000}}
    }}"#
    )
}

/// Load (requests per 10 s, both arms together) and the per-request error rate at
/// time `t` ms: a triangle-wave daily cycle compressed to 10 minutes (±50 %), a burst
/// (×4 traffic) and an incident (×5 errors) at the run's own random times.
fn conditions(t: u64, burst_at: u64, incident_at: u64) -> (u64, f64) {
    let phase = (t % 600_000) as f64 / 600_000.0;
    let tri = if phase < 0.5 {
        phase * 2.0
    } else {
        2.0 - phase * 2.0
    };
    let mut load = 0.5 + tri;
    if (burst_at..burst_at + 60_000).contains(&t) {
        load *= 4.0;
    }
    let mut p = 0.004 * load;
    if (incident_at..incident_at + 120_000).contains(&t) {
        p *= 5.0;
    }
    ((400.0 * load) as u64, p)
}

/// Runs one rollout; `ratio` multiplies the candidate's per-request error rate.
/// Returns whether it was rolled back.
fn rolled_back(rng: &mut Rng, ratio: f64) -> bool {
    let mut p = Policy::from_json(&config(), 0).expect("valid config");
    let ack = |p: &mut Policy, step: rollguard::Step| {
        let mut rolled = false;
        for d in step.actions() {
            rolled |= matches!(d.action, Action::Rollback { .. });
            if let Some(id) = d.action_id {
                let _ = p
                    .handle(&Input::Ack {
                        at: step.at,
                        action_id: id,
                    })
                    .expect("ack");
            }
        }
        rolled
    };
    let step = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .expect("starts");
    ack(&mut p, step);
    let burst_at = rng.next() % 1_500_000;
    let incident_at = rng.next() % 1_500_000;
    let mut weight = 10;
    for t in (10_000..=1_800_000).step_by(10_000) {
        let (load, rate) = conditions(t, burst_at, incident_at);
        let candidate = load * weight / 100;
        let stable = load - candidate;
        let ec = rng.binomial(candidate, (rate * ratio).min(1.0));
        let es = rng.binomial(stable, rate);
        let _ = p
            .observe_count(t - 5_000, "v2", "errors", ec as i64, candidate as i64)
            .expect("v2");
        let _ = p
            .observe_count(t - 5_000, "v1", "errors", es as i64, stable as i64)
            .expect("v1");
        let step = p.tick(t).expect("tick");
        for d in step.actions() {
            if let Action::SetWeight { weight: w, .. } = d.action {
                weight = u64::from(w);
            }
        }
        if ack(&mut p, step) {
            return true;
        }
        if p.status().aliases.candidate.is_none() {
            return false;
        }
    }
    false
}

fn rate(seed: u64, runs: u32, ratio: f64) -> f64 {
    let mut rng = Rng(seed);
    let hits = (0..runs).filter(|_| rolled_back(&mut rng, ratio)).count();
    hits as f64 / f64::from(runs)
}

#[test]
fn a_candidate_as_good_as_stable_is_rarely_rolled_back_under_shared_swings() {
    let realised = rate(1, 1000, 1.0);
    eprintln!("false rollbacks: {realised}");
    assert!(
        realised <= ALPHA,
        "false rollbacks {realised} > alpha {ALPHA}"
    );
}

#[test]
fn a_candidate_with_twice_the_errors_is_rolled_back() {
    let power = rate(2, 100, 2.0);
    eprintln!("rolled back: {power}");
    assert!(power >= 0.9, "rolled back only {power} of bad candidates");
}
