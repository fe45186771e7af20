//! Reference policies for the benches, a prepared sample stream, and a memory
//! footprint estimate.
//!
//! The reference policy is what a typical service would run: three metrics (a latency
//! value with a p95-vs-baseline gate, an error count with a rate gate, a quality score
//! with a mean threshold), persistence 3, the circuit breaker, and canary steps. The
//! helpers put it in the state where the hot path is most expensive and that state
//! lasts: a rollout in its first canary step, so two arms (stable and candidate) keep
//! windows and every gate runs. The first step bakes for 30 days, so that no benchmark
//! moves the rollout on however much policy time it covers.

use rollguard::{Input, Policy, Sample};
use serde_json::Value;

/// The reference config.
pub const REFERENCE_CONFIG: &str = r#"{
  "format_version": 1,
  "name": "bench-reference",
  "versions": [
    {"id": "v1", "digest": "sha256:01", "validated": true,
     "components": {"model": "m-1", "prompt_template": "p-1"}},
    {"id": "v2", "digest": "sha256:02",
     "components": {"model": "m-2", "prompt_template": "p-1"}}
  ],
  "stable": "v1",
  "metrics": [
    {"name": "latency_ms", "kind": "value", "window_ms": 300000, "buckets": 10},
    {"name": "errors", "kind": "count", "window_ms": 300000, "buckets": 10},
    {"name": "quality", "kind": "value", "window_ms": 300000, "buckets": 10}
  ],
  "gates": [
    {"name": "p95_latency", "metric": "latency_ms", "stat": "p95",
     "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 50,
     "persistence": {"consecutive": 3}},
    {"name": "error_rate", "metric": "errors", "stat": "rate",
     "rule": {"kind": "vs_baseline", "max_increase": 0.005}, "samples_min": 500,
     "persistence": {"consecutive": 3}},
    {"name": "quality", "metric": "quality", "stat": "mean",
     "rule": {"kind": "threshold", "min": 0.8}, "samples_min": 50,
     "persistence": {"consecutive": 3}}
  ],
  "strategy": {"kind": "canary", "steps": [
    {"kind": "set_weight", "weight": 5, "duration_ms": 2592000000},
    {"kind": "set_weight", "weight": 25, "duration_ms": 600000},
    {"kind": "approval"},
    {"kind": "set_weight", "weight": 50, "duration_ms": 600000}
  ], "post_promotion_bake_ms": 600000},
  "analysis": {"interval_ms": 10000},
  "safety": {"cooldown_ms": 1800000, "breaker": {"max_rollbacks": 2, "window_ms": 86400000},
             "ack_timeout_ms": 600000}
}"#;

/// The arms samples are for: the stable version and the candidate.
pub const ARMS: [&str; 2] = ["v1", "v2"];

/// The reference config's metrics, in order.
pub const METRICS: [&str; 3] = ["latency_ms", "errors", "quality"];

/// The reference policy at time `start`, with the rollout of `v2` started and its
/// first traffic step acknowledged: two live arms, gates running in the canary phase.
///
/// # Panics
/// If the reference config is refused (a bug in this crate).
pub fn reference_policy(start: u64) -> Policy {
    let mut p = Policy::from_json(REFERENCE_CONFIG, start).expect("the reference config");
    let step = p
        .handle(&Input::StartRollout {
            at: start,
            version: "v2".into(),
        })
        .expect("start the rollout");
    let id = step
        .actions()
        .find_map(|d| d.action_id)
        .expect("a set_weight action");
    let _ = p
        .handle(&Input::Ack {
            at: start,
            action_id: id,
        })
        .expect("acknowledge it");
    p
}

/// [`reference_policy`] with an `error_attribution` gate on `errors` as well: the
/// policy the `detectors` benches compare with the reference one.
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn attribution_policy(start: u64) -> Policy {
    policy_with_gate(
        start,
        serde_json::json!({
            "name": "errors_attributed", "metric": "errors", "stat": "rate",
            "rule": {"kind": "error_attribution", "alpha": 0.01},
            // The bench streams give both arms the same errors whatever the split, which
            // the gate rightly finds: dry run keeps the rollout going.
            "dry_run": true
        }),
    )
}

/// [`reference_policy`] with a `sequential_quantile` gate on the p99 of `latency_ms` as
/// well (dry run).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn quantile_test_policy(start: u64) -> Policy {
    policy_with_gate(
        start,
        serde_json::json!({
            "name": "p99_latency", "metric": "latency_ms", "stat": "p99",
            "rule": {"kind": "sequential_quantile", "alpha": 0.01},
            "samples_min": 20, "dry_run": true
        }),
    )
}

/// [`reference_policy`] with a `sequential_mean` gate on `latency_ms` as well (dry run).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn mean_test_policy(start: u64) -> Policy {
    policy_with_gate(
        start,
        serde_json::json!({
            "name": "mean_latency", "metric": "latency_ms", "stat": "mean",
            "rule": {"kind": "sequential_mean", "alpha": 0.01},
            "samples_min": 20, "dry_run": true
        }),
    )
}

/// [`reference_policy`] with a `mann_whitney` gate on `latency_ms` as well (dry run;
/// Kayenta's defaults, at most 1000 samples per arm and interval).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn kayenta_policy(start: u64) -> Policy {
    policy_with_gate(
        start,
        serde_json::json!({
            "name": "kayenta_latency", "metric": "latency_ms", "stat": "mean",
            "rule": {"kind": "mann_whitney", "samples_max": 1000},
            "samples_min": 50, "dry_run": true
        }),
    )
}

/// The `cusum` gate of [`cusum_policy`]: the candidate's latency mean against a given
/// reference (the bench stream's latencies: mean about 140 ms, sd about 80), run in the
/// canary phase (its default is the bake and the steady phase) so that the reference
/// policy's two live arms are what it watches. Dry run.
fn cusum_gate() -> Value {
    serde_json::json!({
        "name": "latency_cusum", "metric": "latency_ms", "stat": "mean",
        "rule": {"kind": "cusum", "reference_mean": 140.0, "reference_sd": 80.0,
                 "threshold": 8.0},
        "phases": ["canary"], "dry_run": true
    })
}

/// The `ewma` gate of [`ewma_policy`]: as [`cusum_gate`], with lambda 0.05 (the
/// default) and a given limit (no Markov-chain solve when the policy is built).
fn ewma_gate() -> Value {
    serde_json::json!({
        "name": "latency_ewma", "metric": "latency_ms", "stat": "mean",
        "rule": {"kind": "ewma", "reference_mean": 140.0, "reference_sd": 80.0,
                 "limit": 3.0},
        "phases": ["canary"], "dry_run": true
    })
}

/// The `drift` gate of [`drift_policy`]: the latency's distribution in 16 equal bins
/// over [60, 380) ms (plus one below and one above), PSI. Dry run.
fn drift_gate() -> Value {
    serde_json::json!({
        "name": "latency_drift", "metric": "latency_ms", "stat": "mean",
        "rule": {"kind": "drift", "bins": {"min": 60.0, "max": 380.0, "count": 16}},
        "samples_min": 50, "dry_run": true
    })
}

/// [`reference_policy`] with a `cusum` gate on the mean of `latency_ms` as well (run in
/// the canary phase against a given reference; dry run).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn cusum_policy(start: u64) -> Policy {
    policy_with_gates(start, vec![cusum_gate()])
}

/// [`reference_policy`] with an `ewma` gate on the mean of `latency_ms` as well (run in
/// the canary phase against a given reference; dry run).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn ewma_policy(start: u64) -> Policy {
    policy_with_gates(start, vec![ewma_gate()])
}

/// [`reference_policy`] with a `drift` gate on the distribution of `latency_ms` as
/// well (dry run).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn drift_policy(start: u64) -> Policy {
    policy_with_gates(start, vec![drift_gate()])
}

/// The gate kinds [`all_kinds_policy`] adds, one gate each, in its order.
pub const ALL_KINDS: [&str; 8] = [
    "error_attribution",
    "rate_slo",
    "sequential_mean",
    "sequential_quantile",
    "cusum",
    "ewma",
    "mann_whitney",
    "drift",
];

/// [`reference_policy`] with one gate of every statistical kind as well ([`ALL_KINDS`],
/// all dry run): the two on `errors` and the six on `latency_ms` of the other helpers,
/// plus a `rate_slo` gate (objective 1 %).
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn all_kinds_policy(start: u64) -> Policy {
    policy_with_gates(
        start,
        vec![
            serde_json::json!({
                "name": "errors_attributed", "metric": "errors", "stat": "rate",
                "rule": {"kind": "error_attribution", "alpha": 0.01}, "dry_run": true
            }),
            serde_json::json!({
                "name": "errors_slo", "metric": "errors", "stat": "rate",
                "rule": {"kind": "rate_slo", "max_rate": 0.01}, "dry_run": true
            }),
            serde_json::json!({
                "name": "mean_latency", "metric": "latency_ms", "stat": "mean",
                "rule": {"kind": "sequential_mean", "alpha": 0.01},
                "samples_min": 20, "dry_run": true
            }),
            serde_json::json!({
                "name": "p99_latency", "metric": "latency_ms", "stat": "p99",
                "rule": {"kind": "sequential_quantile", "alpha": 0.01},
                "samples_min": 20, "dry_run": true
            }),
            cusum_gate(),
            ewma_gate(),
            serde_json::json!({
                "name": "kayenta_latency", "metric": "latency_ms", "stat": "mean",
                "rule": {"kind": "mann_whitney", "samples_max": 1000},
                "samples_min": 50, "dry_run": true
            }),
            drift_gate(),
        ],
    )
}

/// [`reference_policy`] with one more gate.
fn policy_with_gate(start: u64, gate: Value) -> Policy {
    policy_with_gates(start, vec![gate])
}

/// [`reference_policy`] with more gates.
fn policy_with_gates(start: u64, gates: Vec<Value>) -> Policy {
    let mut config: serde_json::Value =
        serde_json::from_str(REFERENCE_CONFIG).expect("the reference config");
    config["gates"].as_array_mut().expect("gates").extend(gates);
    started(&config, start)
}

/// [`reference_policy`] with analyses every `analysis_interval_ms` (the reference's is
/// 10 s) and scopes by tenant, room for `tenants` of them (and the
/// overflow scope), and the state and work limits raised to fit their windows (a scope
/// keeps the p95 gate's histograms on each arm) and their evaluations.
///
/// # Panics
/// If the config is refused (a bug in this crate).
pub fn scoped_policy(start: u64, tenants: u32, analysis_interval_ms: u64) -> Policy {
    scoped_policy_by(start, &["tenant"], tenants, analysis_interval_ms)
}

/// [`scoped_policy`] with scopes formed by the labels `by` (`"tenant"`, `"tier"`,
/// `"agent"`), room for `scopes` of them.
///
/// # Panics
/// If the config is refused (a bug in this crate, or an unknown label).
pub fn scoped_policy_by(start: u64, by: &[&str], scopes: u32, analysis_interval_ms: u64) -> Policy {
    let mut config: serde_json::Value =
        serde_json::from_str(REFERENCE_CONFIG).expect("the reference config");
    config["analysis"] = serde_json::json!({"interval_ms": analysis_interval_ms});
    config["scopes"] = serde_json::json!({ "by": by });
    config["limits"] = serde_json::json!({
        "scopes_max": scopes + 1,
        "state_bytes_max": 1u64 << 30,
        "evaluations_per_input_max": 1_000_000,
        "cells_read_per_input_max": 1u64 << 40,
    });
    started(&config, start)
}

/// The policy of `config` at `start` with the rollout of `v2` started and its first
/// traffic step acknowledged, as [`reference_policy`].
fn started(config: &Value, start: u64) -> Policy {
    let mut p = Policy::from_json(&config.to_string(), start).expect("a valid config");
    let step = p
        .handle(&Input::StartRollout {
            at: start,
            version: "v2".into(),
        })
        .expect("start the rollout");
    let id = step
        .actions()
        .find_map(|d| d.action_id)
        .expect("a set_weight action");
    let _ = p
        .handle(&Input::Ack {
            at: start,
            action_id: id,
        })
        .expect("acknowledge it");
    p
}

/// One prepared observation, without its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Item {
    /// Index into [`ARMS`].
    pub arm: usize,
    /// Index into [`METRICS`].
    pub metric: usize,
    /// The value, for the value metrics.
    pub value: f64,
    /// Errors out of `total`, for the count metric.
    pub events: i64,
    /// Requests.
    pub total: i64,
}

impl Item {
    /// The item as a [`Sample`] at `at`.
    pub fn sample(&self, at: u64) -> Sample {
        let (arm, metric) = (ARMS[self.arm], METRICS[self.metric]);
        if self.metric == 1 {
            Sample::count(at, arm, metric, self.events, self.total)
        } else {
            Sample::value(at, arm, metric, self.value)
        }
    }

    /// Feeds the item at `at` through the fast entry points.
    ///
    /// # Errors
    /// As [`Policy::observe_value`] and [`Policy::observe_count`].
    pub fn observe_fast(
        &self,
        p: &mut Policy,
        at: u64,
    ) -> Result<rollguard::Step, rollguard::Error> {
        let (arm, metric) = (ARMS[self.arm], METRICS[self.metric]);
        if self.metric == 1 {
            p.observe_count(at, arm, metric, self.events, self.total)
        } else {
            p.observe_value(at, arm, metric, self.value)
        }
    }
}

/// A deterministic stream of healthy observations that cycles through the arms and
/// metrics: (v1, latency), (v2, latency), (v1, errors), (v2, errors), (v1, quality), …
/// Latencies spread over 60–380 ms, so that the p95 histograms fill many bins.
pub fn stream(len: usize, seed: u64) -> Vec<Item> {
    let mut x = seed | 1;
    let mut next = move || {
        // xorshift64*: no dependency, and the same numbers on every platform.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..len)
        .map(|i| {
            let r = next();
            let (arm, metric) = (i % 2, (i / 2) % 3);
            let (value, events, total) = match metric {
                // A skewed latency: most around 100 ms, a tail to 380 ms.
                0 => {
                    let u = (r % 1000) as f64 / 1000.0;
                    (60.0 + 320.0 * u * u * u + (r >> 40) as f64 / 1e6, 0, 0)
                }
                // 0 or 1 error out of 100 requests: a steady 0.3 % on both arms.
                1 => (0.0, ((r >> 20) % 3 == 0) as i64, 100),
                _ => (0.85 + (r % 100) as f64 / 1000.0, 0, 0),
            };
            Item {
                arm,
                metric,
                value,
                events,
                total,
            }
        })
        .collect()
}

/// The time of the `i`-th sample of a stream arriving at `per_second` samples per
/// second from `start`.
pub fn time_of(start: u64, i: u64, per_second: u64) -> u64 {
    start + i * 1000 / per_second
}

/// Feeds `n` samples of `items` (cycling) at `per_second` through the fast path and
/// ticks at every deadline on the way, as a service would.
///
/// # Panics
/// If the policy refuses a sample or a tick (a bug in this crate or the core).
pub fn feed(p: &mut Policy, items: &[Item], n: u64, per_second: u64) {
    let start = p.now();
    for i in 0..n {
        let at = time_of(start, i, per_second);
        while let Some(d) = p.next_deadline().filter(|d| *d <= at) {
            let _ = p.tick(d).expect("tick");
        }
        let item = &items[(i % items.len() as u64) as usize];
        let _ = item.observe_fast(p, at).expect("observe");
    }
}

/// An estimate of a policy's memory, from its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of the snapshot's JSON text.
    pub snapshot_bytes: usize,
    /// Live arms.
    pub arms: usize,
    /// Window buckets over all arms and metrics.
    pub buckets: usize,
    /// Histogram bins over all buckets.
    pub histogram_bins: usize,
    /// Estimated heap bytes of the windows: see [`footprint`].
    pub window_bytes: usize,
    /// Estimated bytes of everything else: see [`footprint`].
    pub other_bytes: usize,
}

/// Bytes of one bucket without its histogram: epoch, count, sum, min, max, events and
/// total (7 × 8 bytes) and the histogram's `Vec` header (3 × 8 bytes).
pub const BUCKET_FIXED_BYTES: usize = 7 * 8 + 3 * 8;

/// Estimates a policy's memory from its snapshot (the state is private, so its layout
/// is read from the snapshot, which mirrors it field for field).
///
/// - Windows dominate. Each bucket holds seven 8-byte fields and a histogram `Vec`
///   header ([`BUCKET_FIXED_BYTES`] = 80 bytes). When a quantile gate reads the metric,
///   it also holds a dense `Vec<u32>` of `hist.len` bins (4 bytes each, allocated at
///   creation, whether or not the bins are used; the snapshot stores them sparsely but
///   gives `len`). Each window and arm adds a `Vec` header (24 bytes), and each arm its
///   version string.
/// - Everything else (config, registry, gate states, timers) is counted as the length
///   of its JSON text. That is a rough proxy for the strings and small structs it holds.
///   It does not grow with samples.
///
/// Allocator overhead is not counted.
///
/// # Panics
/// If the snapshot does not have the expected shape.
pub fn footprint(p: &Policy) -> Footprint {
    let text = p.snapshot().to_json();
    let mut doc: Value = serde_json::from_str(&text).expect("snapshot JSON");
    let arms = doc["state"]["arms"].take();
    let arms = arms.as_array().expect("arms");
    let (mut buckets, mut bins, mut window_bytes) = (0, 0, 0);
    for arm in arms {
        // Keyed by metric name (snapshot format 2).
        let windows = arm["windows"].as_object().expect("windows");
        window_bytes += 24 + 24 + arm["version"].as_str().map_or(0, str::len);
        for w in windows.values() {
            let slots = w.as_array().expect("slots");
            window_bytes += 24;
            for slot in slots {
                let len = slot["hist"]["len"].as_u64().expect("hist.len") as usize;
                buckets += 1;
                bins += len;
                window_bytes += BUCKET_FIXED_BYTES + 4 * len;
            }
        }
    }
    Footprint {
        snapshot_bytes: text.len(),
        arms: arms.len(),
        buckets,
        histogram_bins: bins,
        window_bytes,
        other_bytes: doc.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_policy_runs_a_canary_with_two_arms() {
        let mut p = reference_policy(0);
        let status = p.status();
        assert_eq!(status.weight, 5);
        assert_eq!(status.pending_action, None);
        let items = stream(600, 7);
        feed(&mut p, &items, 20_000, 100);
        // Still in the first step, nothing tripped, both arms live.
        let status = p.status();
        assert_eq!((status.stage, status.weight), (Some(0), 5));
        assert!(status.tripped_gates.is_empty(), "{status:?}");
        assert_eq!(footprint(&p).arms, 2);
    }

    #[test]
    fn the_memory_estimate_does_not_grow_with_samples_or_their_rate() {
        let items = stream(600, 7);
        let mut sizes = Vec::new();
        for (n, rate) in [(1_000, 10), (30_000, 10), (30_000, 10_000)] {
            let mut p = reference_policy(0);
            feed(&mut p, &items, n, rate);
            sizes.push((footprint(&p).window_bytes, footprint(&p).buckets));
        }
        assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
    }
}
