//! Warnings about valid configs that probably do not do what their author meant.
//!
//! A warning never refuses a config; `rollguard validate` prints them, and a binding or
//! a CI check can read them from [`PolicyConfig::warnings`].

use serde::{Deserialize, Serialize};

use crate::config::{PolicyConfig, Rule, Stat};
use crate::plan::Plan;

/// A stable snake_case code of a [`ConfigWarning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningCode {
    /// One short burst can trip the gate alone: its window is so much longer than the
    /// analysis interval that the burst stays in `consecutive` evaluations in a row.
    BurstCanTrip,
    /// The gated metrics' bucket widths have no common boundary within one analysis
    /// interval, so evaluations cannot all fall on bucket boundaries and a window read
    /// between boundaries ends with a bucket in progress.
    WindowsNotAligned,
    /// A ratio bound on a rate or a count without `baseline_min`: while the baseline
    /// is 0 the ratio bound is left out (the gate may be inconclusive).
    RatioWithoutBaselineMin,
}

/// A warning about a valid config, with the path of the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConfigWarning {
    /// What kind of problem.
    pub code: WarningCode,
    /// The field it is about, as in errors (`gates[1].persistence.consecutive`).
    pub path: String,
    /// A sentence for people.
    pub message: String,
}

impl PolicyConfig {
    /// Warnings about this config, in field order. Call on a config that
    /// [validates](PolicyConfig::validate); on others the result is unspecified.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut out = Vec::new();
        let interval = self.analysis.interval_ms.max(1);
        for (i, g) in self.gates.iter().enumerate() {
            let Some(metric) = self.metrics.iter().find(|m| m.name == g.metric) else {
                continue;
            };
            let window = self.window_ms(metric);
            // One instant burst is inside the windows of the evaluations in
            // (burst, burst + window]: up to ⌈window / interval⌉ of them, spanning
            // (n − 1) intervals, all failing if the burst is bad enough.
            let seen_by = window.div_ceil(interval);
            let p = &g.persistence;
            let span = (seen_by - 1).saturating_mul(interval);
            if p.consecutive >= 2 && seen_by >= u64::from(p.consecutive) && span >= p.for_ms {
                out.push(ConfigWarning {
                    code: WarningCode::BurstCanTrip,
                    path: format!("gates[{i}].persistence.consecutive"),
                    message: format!(
                        "gate {:?}: a burst shorter than one interval stays in the {window} ms \
                         window of {:?} for up to {seen_by} evaluations {interval} ms apart, so \
                         it alone can make {} failing evaluations in a row; leave window_ms \
                         out (it defaults to the interval) or make it at most {} ms",
                        g.name,
                        g.metric,
                        p.consecutive,
                        u64::from(p.consecutive - 1).saturating_mul(interval),
                    ),
                });
            }
            if let Rule::VsBaseline {
                max_ratio,
                min_ratio,
                baseline_min: None,
                ..
            } = g.rule
            {
                let counted = matches!(g.stat, Stat::Rate | Stat::Count);
                if counted && (max_ratio.is_some() || min_ratio.is_some()) {
                    out.push(ConfigWarning {
                        code: WarningCode::RatioWithoutBaselineMin,
                        path: format!("gates[{i}].rule"),
                        message: format!(
                            "gate {:?}: a ratio of a {} that can be 0 has no baseline_min; while \
                             the baseline is 0 the ratio bound is left out (inconclusive unless \
                             another bound judges): set baseline_min to the smallest {} worth \
                             comparing with",
                            g.name,
                            if g.stat == Stat::Rate {
                                "rate"
                            } else {
                                "count"
                            },
                            if g.stat == Stat::Rate {
                                "rate"
                            } else {
                                "count"
                            },
                        ),
                    });
                }
            }
        }
        let plan = Plan::new(self);
        if plan.grid_ms == 1 && plan.shapes.iter().any(|s| s.width_ms > 1) && !self.gates.is_empty()
        {
            out.push(ConfigWarning {
                code: WarningCode::WindowsNotAligned,
                path: "analysis.interval_ms".into(),
                message: format!(
                    "the bucket widths of the gated metrics share no boundary within one \
                     interval ({interval} ms): evaluations cannot fall on bucket boundaries, \
                     so windows read between them end with a bucket in progress; give the \
                     metrics windows whose bucket widths divide {interval} ms"
                ),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(metrics: &str, gates: &str, interval: u64) -> PolicyConfig {
        let text = format!(
            r#"{{"format_version": 1,
              "versions": [{{"id": "v1", "digest": "d", "validated": true}}],
              "stable": "v1", "metrics": {metrics}, "gates": {gates},
              "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 50}}]}},
              "analysis": {{"interval_ms": {interval}}}}}"#
        );
        let c = PolicyConfig::from_json(&text).unwrap();
        c.validate().unwrap();
        c
    }

    fn codes(c: &PolicyConfig) -> Vec<(WarningCode, String)> {
        c.warnings().into_iter().map(|w| (w.code, w.path)).collect()
    }

    const LATENCY_5M: &str = r#"[{"name": "lat", "kind": "value", "window_ms": 300000}]"#;
    const LATENCY: &str = r#"[{"name": "lat", "kind": "value"}]"#;
    const P99: &str = r#"[{"name": "g", "metric": "lat", "stat": "p99",
                           "rule": {"kind": "threshold", "max": 1}}]"#;

    #[test]
    fn a_window_longer_than_the_streak_warns_that_one_burst_can_trip() {
        // 5-minute windows read every minute: a spike is in 5 evaluations, ≥ 3.
        assert_eq!(
            codes(&config(LATENCY_5M, P99, 60_000)),
            [(
                WarningCode::BurstCanTrip,
                "gates[0].persistence.consecutive".into()
            )]
        );
        // The default window (one interval) never lets one burst count twice.
        assert_eq!(codes(&config(LATENCY, P99, 60_000)), []);
        // Two intervals with consecutive 3: a burst is seen at most twice.
        let two = r#"[{"name": "lat", "kind": "value", "window_ms": 120000}]"#;
        assert_eq!(codes(&config(two, P99, 60_000)), []);
        // consecutive 1 trips on one evaluation by design: no warning.
        let once = r#"[{"name": "g", "metric": "lat", "stat": "p99", "persistence": {"consecutive": 1},
                        "rule": {"kind": "threshold", "max": 1}}]"#;
        assert_eq!(codes(&config(LATENCY_5M, once, 60_000)), []);
        // for_ms longer than the burst's span keeps it from tripping alone.
        let held = r#"[{"name": "g", "metric": "lat", "stat": "p99", "persistence": {"for_ms": 300000},
                        "rule": {"kind": "threshold", "max": 1}}]"#;
        assert_eq!(codes(&config(LATENCY_5M, held, 60_000)), []);
    }

    #[test]
    fn ratio_rules_on_rates_want_a_baseline_floor() {
        let errors = r#"[{"name": "err", "kind": "count"}]"#;
        let ratio = r#"[{"name": "g", "metric": "err", "stat": "rate",
                         "rule": {"kind": "vs_baseline", "max_ratio": 2}}]"#;
        assert_eq!(
            codes(&config(errors, ratio, 60_000)),
            [(WarningCode::RatioWithoutBaselineMin, "gates[0].rule".into())]
        );
        let floored = r#"[{"name": "g", "metric": "err", "stat": "rate",
                         "rule": {"kind": "vs_baseline", "max_ratio": 2, "baseline_min": 0.001}}]"#;
        assert_eq!(codes(&config(errors, floored, 60_000)), []);
        let increase = r#"[{"name": "g", "metric": "err", "stat": "rate",
                         "rule": {"kind": "vs_baseline", "max_increase": 0.01}}]"#;
        assert_eq!(codes(&config(errors, increase, 60_000)), []);
    }

    #[test]
    fn bucket_widths_without_a_common_boundary_warn() {
        let metrics = r#"[{"name": "lat", "kind": "value", "window_ms": 70000, "buckets": 1},
                          {"name": "err", "kind": "count", "window_ms": 60000, "buckets": 10}]"#;
        let gates = r#"[{"name": "a", "metric": "lat", "stat": "mean", "persistence": {"consecutive": 1},
                         "rule": {"kind": "threshold", "max": 1}},
                        {"name": "b", "metric": "err", "stat": "rate",
                         "rule": {"kind": "threshold", "max": 1}}]"#;
        assert_eq!(
            codes(&config(metrics, gates, 60_000)),
            [(
                WarningCode::WindowsNotAligned,
                "analysis.interval_ms".into()
            )]
        );
    }
}
