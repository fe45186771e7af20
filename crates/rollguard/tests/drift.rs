//! `drift` by simulation: an agent's answer class (5 classes, one of them "refused")
//! under load that swings fivefold. Two versions with the same class shares rarely
//! trip the gate once each arm has `samples_min` samples, at the default thresholds
//! (PSI 0.25, JS 0.1) with the default persistence; a version that refuses 25 % of
//! requests instead of 5 % is caught. `drift` is a size of change, not a test: what
//! keeps the false rate down is a `samples_min` that puts the noise floor well below
//! the threshold (about (B − 1)(1/n + 1/m) for PSI, the square root of that over
//! 8 ln 2 for JS).

mod common;

use common::Rng;
use rollguard::Action;

/// A class drawn with these shares.
fn class(rng: &mut Rng, shares: &[f64; 5]) -> f64 {
    let u = rng.uniform();
    let mut acc = 0.0;
    for (i, s) in shares.iter().enumerate() {
        acc += s;
        if u < acc {
            return i as f64;
        }
    }
    4.0
}

const STABLE: [f64; 5] = [0.45, 0.25, 0.15, 0.10, 0.05];
const REFUSING: [f64; 5] = [0.35, 0.20, 0.12, 0.08, 0.25];

fn rolled_back(rng: &mut Rng, measure: &str, samples_min: u64, candidate: &[f64; 5]) -> bool {
    let config = format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [{{"name": "answer", "kind": "value"}}],
      "gates": [{{"name": "answers", "metric": "answer", "stat": "mean", "samples_min": {samples_min},
                  "rule": {{"kind": "drift", "measure": "{measure}", "categories": 5}}}}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 50, "duration_ms": 900000}}]}},
      "analysis": {{"interval_ms": 10000}}
    }}"#
    );
    let mut p = common::rolled_out(&config);
    for t in (10_000..=900_000).step_by(10_000) {
        // 20 to 100 answers per arm in these 10 s.
        let n = 20 + rng.next() % 81;
        for i in 0..n {
            let at = t - 10_000 + 1 + i;
            let _ = p.observe_value(at, "v1", "answer", class(rng, &STABLE));
            let _ = p.observe_value(at, "v2", "answer", class(rng, candidate));
        }
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

fn rate(runs: u32, mut f: impl FnMut() -> bool) -> f64 {
    f64::from((0..runs).filter(|_| f()).count() as u32) / f64::from(runs)
}

#[test]
fn equal_shares_rarely_trip_and_a_refusing_version_is_caught() {
    let mut rng = Rng(5);
    for (measure, samples_min) in [("psi", 200), ("js", 1000)] {
        let false_rate = rate(200, || rolled_back(&mut rng, measure, samples_min, &STABLE));
        let power = rate(40, || {
            rolled_back(&mut rng, measure, samples_min, &REFUSING)
        });
        eprintln!("{measure}, samples_min {samples_min}: false {false_rate}, caught {power}");
        assert!(
            false_rate <= 0.01,
            "{measure}: false rollbacks {false_rate}"
        );
        assert!(power >= 0.95, "{measure}: caught {power}");
    }
}

/// Too few samples for the threshold: the noise floor of JS is about 0.22 at 30
/// samples per arm and 0.11 at 120, above or near the default 0.1, so equal versions
/// trip in their first minute far more often than the 1 % above (15 % measured). The
/// test shows why the documentation asks for enough `samples_min`; it would fail if
/// `drift` were a test with a guarantee of its own.
#[test]
fn too_small_a_samples_min_trips_equal_versions() {
    let mut rng = Rng(9);
    let false_rate = rate(40, || rolled_back(&mut rng, "js", 30, &STABLE));
    eprintln!("js, samples_min 30: false {false_rate}");
    assert!(false_rate >= 0.05, "{false_rate}");
}
