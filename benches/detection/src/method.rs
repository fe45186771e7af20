//! Methods: named gate configurations, run side by side on the same streams.
//!
//! A method is the part of a policy config that decides: its metrics (windows), its gates
//! and its analysis interval. The harness wraps it in a fixed rollout (stable `v1`,
//! candidate `v2`, one canary step at the benchmark's weight that outlasts the horizon),
//! so the only way a method differs from another is how it judges. A new detector kind is
//! one more entry in [`methods`], with its gate `rule.kind` and defaults.

use serde::Serialize;
use serde_json::{Value, json};

/// The candidate's version id in every benchmark policy.
pub const CANDIDATE_VERSION: &str = "v2";
/// The stable version id in every benchmark policy.
pub const STABLE_VERSION: &str = "v1";
/// The latency metric's name (a value metric, ms per request).
pub const LATENCY: &str = "latency_ms";
/// The error metric's name (a count metric: failed requests out of requests).
pub const ERRORS: &str = "errors";

/// A named gate configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    /// Short name, used in tables and files.
    pub name: String,
    /// Where the settings come from.
    pub description: String,
    /// The config's `metrics` array.
    pub metrics: Value,
    /// The config's `gates` array.
    pub gates: Value,
    /// `analysis.interval_ms`.
    pub interval_ms: u64,
    /// Whether `--quick` runs it. False for a method whose evaluations would dominate
    /// the quick run's time (a 1 s grid judges 60 times as often as the others; Kayenta's
    /// judge sorts and searches 1000 samples per arm at each one).
    pub quick: bool,
}

impl Method {
    /// The full policy config for a canary at `weight` percent that lasts past the horizon.
    pub fn config(&self, weight: u32) -> Value {
        json!({
            "format_version": 1,
            "name": format!("detection-{}", self.name),
            "versions": [
                {"id": STABLE_VERSION, "digest": "sha256:01", "validated": true},
                {"id": CANDIDATE_VERSION, "digest": "sha256:02"}
            ],
            "stable": STABLE_VERSION,
            "metrics": self.metrics,
            "gates": self.gates,
            "strategy": {"kind": "canary", "steps": [
                {"kind": "set_weight", "weight": weight, "duration_ms": 2_592_000_000u64}
            ]},
            "analysis": {"interval_ms": self.interval_ms}
        })
    }

    /// Whether the method reads metric `name` (only those are fed to it).
    pub fn reads(&self, name: &str) -> bool {
        self.metrics
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["name"] == name))
    }
}

/// The latency metric as the README's example config declares it: a 60 s window in
/// 10 buckets.
fn latency_metric() -> Value {
    json!({"name": LATENCY, "kind": "value", "window_ms": 60000, "buckets": 10,
           "histogram_range": {"min": 0.001, "max": 1e9}})
}

/// The error metric as the README declares it: the window defaults to the interval.
fn error_metric() -> Value {
    json!({"name": ERRORS, "kind": "count", "buckets": 10})
}

/// The methods of the benchmark: four threshold+N rules (a statistic of a one-interval
/// window against a bound, three failing evaluations in a row), then the statistical
/// gate kinds at their defaults: each alone on the 60 s grid, `sequential_mean` also on
/// a 1 s grid (full mode only), `sequential_quantile`, Kayenta's judge (`mann_whitney`,
/// full mode only), `error_attribution` and `sequential_mean` together.
pub fn methods() -> Vec<Method> {
    vec![
        Method {
            name: "readme_gates".into(),
            description: "the README's example policy gates, verbatim: p99 ≤ 800 ms, \
                          p95 ≤ 1.3 × stable, error rate ≤ stable + 0.5 pp; 60 s windows \
                          and interval, 3 consecutive failures"
                .into(),
            metrics: json!([latency_metric(), error_metric()]),
            gates: json!([
                {"name": "p99_sla", "metric": LATENCY, "stat": "p99",
                 "rule": {"kind": "threshold", "max": 800}, "samples_min": 50},
                {"name": "p95_vs_stable", "metric": LATENCY, "stat": "p95",
                 "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 50,
                 "persistence": {"consecutive": 3, "for_ms": 0, "clear_after": 1,
                                 "keep_failing_ms": 0}},
                {"name": "error_rate", "metric": ERRORS, "stat": "rate",
                 "rule": {"kind": "vs_baseline", "max_increase": 0.005}, "samples_min": 500,
                 "on_no_data": "inconclusive", "dry_run": false,
                 "phases": ["shadow", "preview", "canary", "bake"]}
            ]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "mean_vs_stable".into(),
            description: "latency mean ≤ 1.1 × stable, 60 s windows, 3 consecutive \
                          failures (the same threshold+N family on the mean)"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([
                {"name": "latency_mean_vs_stable", "metric": LATENCY, "stat": "mean",
                 "rule": {"kind": "vs_baseline", "max_ratio": 1.1}, "samples_min": 50}
            ]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "p99_vs_stable".into(),
            description: "latency p99 ≤ 1.3 × stable, 60 s windows, 3 consecutive failures \
                          (the README's p95 rule moved to the tail)"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([
                {"name": "p99_vs_stable", "metric": LATENCY, "stat": "p99",
                 "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 50}
            ]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "error_ratio_vs_stable".into(),
            description: "error rate ≤ 2 × max(stable, 0.5 %), the README's recommended \
                          error-rate ratio; 3 consecutive failures"
                .into(),
            metrics: json!([error_metric()]),
            gates: json!([
                {"name": "error_ratio_vs_stable", "metric": ERRORS, "stat": "rate",
                 "rule": {"kind": "vs_baseline", "max_ratio": 2, "baseline_min": 0.005},
                 "samples_min": 500}
            ]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "error_attribution".into(),
            description: "`error_attribution` at its defaults with alpha 1 %: which arm each \
                          error came from given the policy's split (an anytime-valid e-value, \
                          no margin, mixing_events 10), evaluated every 60 s, trips at its \
                          first failure"
                .into(),
            metrics: json!([error_metric()]),
            gates: json!([attribution_gate()]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "sequential_mean".into(),
            description: "`sequential_mean` at its defaults with alpha 1 %: the mixture SPRT \
                          on the difference of latency means, every sample since the canary's \
                          start, burn-in 20 samples per arm (worse: higher, no margin, mixing \
                          scale half the pooled standard deviation at the end of the burn-in), \
                          evaluated every 60 s, trips at its first failure"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([mean_gate()]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "sequential_mean_1s".into(),
            description: "the same `sequential_mean` gate evaluated every second (a 1 s \
                          window in 1 bucket, which the gate does not read): the test's own \
                          delay, without the 60 s evaluation grid"
                .into(),
            metrics: json!([
                {"name": LATENCY, "kind": "value", "window_ms": 1000, "buckets": 1,
                 "histogram_range": {"min": 0.001, "max": 1e9}}
            ]),
            gates: json!([mean_gate()]),
            interval_ms: 1_000,
            quick: false,
        },
        Method {
            name: "sequential_quantile".into(),
            description: "`sequential_quantile` on the latency p99 at its defaults with alpha \
                          1 %: each arm's quantile confidence sequence (alpha/2 each) from its \
                          histogram of every sample since the canary's start, burn-in 20 \
                          samples per arm (worse: higher, no margin, prior weight 10 samples \
                          past the p99), evaluated every 60 s, trips at its first failure"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([quantile_gate()]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "kayenta".into(),
            description: "`mann_whitney` at its defaults, Kayenta's NetflixACAJudge \
                          classification of latency: every 60 s the interval's samples of \
                          each arm (the most recent 1000), the Mann-Whitney test with the \
                          Hodges-Lehmann shift and its 98 % interval, High beyond 0.25 × the \
                          shift; at least 50 samples per arm (Kayenta warns below 50), trips \
                          at the first High interval. Not anytime-valid"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([kayenta_gate()]),
            interval_ms: 60_000,
            // Full mode only: a classification of 1000 samples against 1000 costs about
            // 0.3 ms, and one per minute of every replication tripled --quick's time.
            quick: false,
        },
        Method {
            name: "statistical_gates".into(),
            description: "what a user would deploy: `error_attribution` and `sequential_mean` \
                          together, each at its defaults with alpha 1 %, evaluated every 60 s"
                .into(),
            metrics: json!([latency_metric(), error_metric()]),
            gates: json!([attribution_gate(), mean_gate()]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "cusum".into(),
            description: "`cusum` at its defaults (arl0 10 000 000 samples, shift 1σ: k = ½, \
                          samples clipped at ±3σ, σ widened for serial correlation) on \
                          the candidate's latency against its own reference, learned from its \
                          first 200 samples; run in the canary phase, which stands in for the \
                          bake here (the harness never promotes); evaluated every 60 s, the \
                          alarm holds for the phase. Finds a change after its reference, not a \
                          candidate that is bad from the start"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([cusum_gate()]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "ewma".into(),
            description: "`ewma` at its defaults (arl0 10 000 000 samples, lambda 0.05, \
                          one-sided, samples clipped at ±3σ, σ widened for serial \
                          correlation) on the candidate's latency against its own reference, \
                          learned from its first 200 samples; canary phase standing in for the \
                          bake, evaluated every 60 s, the alarm holds for the phase"
                .into(),
            metrics: json!([latency_metric()]),
            gates: json!([ewma_gate()]),
            interval_ms: 60_000,
            quick: true,
        },
        Method {
            name: "cusum_1s".into(),
            description: "the same `cusum` gate evaluated every second (a 1 s window in 1 \
                          bucket, which the gate does not read): the chart's own delay, \
                          without the 60 s evaluation grid"
                .into(),
            metrics: json!([one_second_latency_metric()]),
            gates: json!([cusum_gate()]),
            interval_ms: 1_000,
            quick: false,
        },
        Method {
            name: "ewma_1s".into(),
            description: "the same `ewma` gate evaluated every second: the chart's own delay"
                .into(),
            metrics: json!([one_second_latency_metric()]),
            gates: json!([ewma_gate()]),
            interval_ms: 1_000,
            quick: false,
        },
    ]
}

/// The latency metric on a 1 s window in 1 bucket, for a method evaluated every second
/// (its gates read every sample, not the window).
fn one_second_latency_metric() -> Value {
    json!({"name": LATENCY, "kind": "value", "window_ms": 1000, "buckets": 1,
           "histogram_range": {"min": 0.001, "max": 1e9}})
}

/// The `cusum` gate on the latency mean at its defaults, its reference learned from the
/// judged version's first 200 samples of the phase, run in the canary phase (its own
/// defaults are the bake and the steady phase).
fn cusum_gate() -> Value {
    json!({"name": "latency_cusum", "metric": LATENCY, "stat": "mean",
           "rule": {"kind": "cusum"}, "samples_min": 200, "phases": ["canary"]})
}

/// The `ewma` gate on the latency mean at its defaults, otherwise as [`cusum_gate`].
fn ewma_gate() -> Value {
    json!({"name": "latency_ewma", "metric": LATENCY, "stat": "mean",
           "rule": {"kind": "ewma"}, "samples_min": 200, "phases": ["canary"]})
}

/// The `sequential_quantile` gate on the latency p99 at its defaults, alpha 1 %, with a
/// burn-in of 20 samples per arm.
fn quantile_gate() -> Value {
    json!({"name": "p99_latency", "metric": LATENCY, "stat": "p99",
           "rule": {"kind": "sequential_quantile", "alpha": 0.01}, "samples_min": 20})
}

/// The `error_attribution` gate at its defaults, alpha 1 %.
fn attribution_gate() -> Value {
    json!({"name": "errors_attributed", "metric": ERRORS, "stat": "rate",
           "rule": {"kind": "error_attribution", "alpha": 0.01}})
}

/// The `mann_whitney` gate on latency at Kayenta's defaults, worse higher, with Kayenta's
/// 50-sample minimum per arm.
fn kayenta_gate() -> Value {
    json!({"name": "kayenta_latency", "metric": LATENCY, "stat": "mean",
           "rule": {"kind": "mann_whitney"}, "samples_min": 50})
}

/// The `sequential_mean` gate on the latency mean at its defaults, alpha 1 %, with a
/// burn-in of 20 samples per arm.
fn mean_gate() -> Value {
    json!({"name": "mean_latency", "metric": LATENCY, "stat": "mean",
           "rule": {"kind": "sequential_mean", "alpha": 0.01}, "samples_min": 20})
}
