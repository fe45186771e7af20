//! `rate_slo` keeps its promise by simulation: a version whose per-request error rate
//! is exactly the objective, under load that swings tenfold, fails in at most `alpha` of
//! 30-minute canaries evaluated every 10 s; one at twice the objective nearly always
//! fails.

mod common;

use common::Rng;
use rollguard::Action;

const ALPHA: f64 = 0.05;
const OBJECTIVE: f64 = 0.01;

fn rolled_back(rng: &mut Rng, rate: f64) -> bool {
    let config = format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "errors", "kind": "count"}}],
      "gates": [{{"name": "slo", "metric": "errors", "stat": "rate",
                  "rule": {{"kind": "rate_slo", "max_rate": {OBJECTIVE}, "alpha": {ALPHA}}}}}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 10, "duration_ms": 1800000}}]}},
      "analysis": {{"interval_ms": 10000}}
    }}"#
    );
    let mut p = common::rolled_out(&config);
    for t in (10_000..=1_800_000).step_by(10_000) {
        // 20 to 200 requests in these 10 s.
        let n = 20 + rng.next() % 181;
        let e = rng.binomial(n, rate);
        let _ = p
            .observe_count(t - 5_000, "v2", "errors", e as i64, n as i64)
            .expect("count");
        let step = p.tick(t).expect("tick");
        if step
            .actions()
            .any(|d| matches!(d.action, Action::Rollback { .. }))
        {
            return true;
        }
    }
    false
}

#[test]
fn a_version_at_its_objective_rarely_fails_and_one_at_twice_it_does() {
    let mut rng = Rng(11);
    let runs = 1000;
    let false_rate = (0..runs)
        .filter(|_| rolled_back(&mut rng, OBJECTIVE))
        .count() as f64
        / runs as f64;
    eprintln!("false rollbacks: {false_rate}");
    assert!(
        false_rate <= ALPHA,
        "false rollbacks {false_rate} > alpha {ALPHA}"
    );
    let power = (0..200)
        .filter(|_| rolled_back(&mut rng, 2.0 * OBJECTIVE))
        .count() as f64
        / 200.0;
    eprintln!("rolled back at twice the objective: {power}");
    assert!(power >= 0.9, "{power}");
}
