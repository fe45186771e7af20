//! Drills: the seeds' failure modes, run against a user's policy on the user's own
//! traffic. Each drill is a backtest with one injected failure; the report says, for
//! each, whether and when the policy rolled back, to what, and how long from the onset
//! until traffic was restored.

use rollguard::{MetricKind, PolicyConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backtest;
use crate::error::{BacktestError, snake_name as code};
use crate::recording::Recording;
use crate::report::{Rate, Report, Spread};
use crate::spec::{BacktestSpec, Change, FollowUp, Injection};

/// One drill: a named failure and the backtest that plays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// `latency_regression`, `error_burst`, `quality_drift`, `silent_candidate` or
    /// `bad_candidate_twice`.
    pub name: String,
    /// What fails, in words, with the metric and the numbers.
    pub description: String,
    /// The backtest that plays it; `None` when the policy or the recording has nothing
    /// the drill can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<BacktestSpec>,
    /// Why it cannot be played, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What one drill found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillResult {
    /// The drill.
    pub drill: Drill,
    /// Replications rolled back automatically at or after the onset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught: Option<Rate>,
    /// Onset to rollback decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset_to_rollback_ms: Option<Spread>,
    /// Onset to restored traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset_to_restored_ms: Option<Spread>,
    /// The rollbacks, as `to (target kind, reason)`, with how many replications each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<(String, u32)>,
    /// For `bad_candidate_twice`: what became of the second candidate, as
    /// `rolled back to X (reason)`, `promoted`, `refused (code)` or `escalated
    /// (reasons)`, with how many replications each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub second: Vec<(String, u32)>,
    /// The whole backtest report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// The drill library for `config` on `recording`, each drill built on `base` (its
/// candidate, traffic, replications, seed, resampling): the metrics are chosen from
/// the policy's gates, the onset is a quarter into the recording (at most 10 minutes
/// in), and a drill the policy cannot be asked (no count metric for an error burst, no
/// second version for a second bad candidate) says why it is skipped.
pub fn drills(config: &PolicyConfig, recording: &Recording, base: &BacktestSpec) -> Vec<Drill> {
    let onset_ms = ((recording.end() - recording.start()) / 4).min(600_000);
    let minutes = |ms: u64| ms as f64 / 60_000.0;
    let with = |inject: Injection| BacktestSpec {
        inject: Some(inject),
        ..base.clone()
    };
    let gated = gated_metrics(config);
    let value_worse = |higher: bool| {
        gated
            .iter()
            .find(|(m, kind, h)| {
                *kind == MetricKind::Value && *h == higher && has_values(recording, m)
            })
            .map(|(m, _, _)| m.clone())
    };
    let count = gated
        .iter()
        .find(|(m, kind, _)| {
            *kind == MetricKind::Count
                && recording.event_rate(m).is_some_and(|r| r > 0.0 && r < 0.2)
        })
        .map(|(m, _, _)| m.clone());
    let skip = |name: &str, description: String, why: &str| Drill {
        name: name.into(),
        description,
        spec: None,
        skipped: Some(why.into()),
    };
    let mut out = Vec::new();
    let latency = value_worse(true);
    out.push(match &latency {
        Some(m) => Drill {
            name: "latency_regression".into(),
            description: format!(
                "{m} × 1.5 on the candidate from {:.0} min into the rollout",
                minutes(onset_ms)
            ),
            spec: Some(with(Injection {
                metric: m.clone(),
                change: Change::Ratio { factor: 1.5 },
                onset_ms,
                onset_max_ms: None,
                duration_ms: None,
            })),
            skipped: None,
        },
        None => skip(
            "latency_regression",
            "a value metric × 1.5".into(),
            "no gated value metric where higher is worse has values in the recording",
        ),
    });
    out.push(match &count {
        Some(m) => Drill {
            name: "error_burst".into(),
            description: format!(
                "the rate of {m} × 5 for 5 min from {:.0} min",
                minutes(onset_ms)
            ),
            spec: Some(with(Injection {
                metric: m.clone(),
                change: Change::ErrorRate { multiplier: 5.0 },
                onset_ms,
                onset_max_ms: None,
                duration_ms: Some(300_000),
            })),
            skipped: None,
        },
        None => skip(
            "error_burst",
            "a count metric's rate × 5 for 5 min".into(),
            "no gated count metric with a recorded rate between 0 and 20 %",
        ),
    });
    out.push(match value_worse(false) {
        Some(m) => {
            let mean = mean_value(recording, &m);
            let per_hour = -0.2 * mean.abs();
            Drill {
                name: "quality_drift".into(),
                description: format!(
                    "{m} drifting down 20 % of its mean ({per_hour:.3}) per hour from {:.0} min",
                    minutes(onset_ms)
                ),
                spec: Some(with(Injection {
                    metric: m,
                    change: Change::Drift { per_hour },
                    onset_ms,
                    onset_max_ms: None,
                    duration_ms: None,
                })),
                skipped: None,
            }
        }
        None => skip(
            "quality_drift",
            "a value metric drifting down".into(),
            "no gated value metric where lower is worse has values in the recording",
        ),
    });
    out.push(Drill {
        name: "silent_candidate".into(),
        description: format!(
            "the candidate stops reporting every metric from {:.0} min",
            minutes(onset_ms)
        ),
        spec: Some(with(Injection {
            metric: "*".into(),
            change: Change::Silence {},
            onset_ms,
            onset_max_ms: None,
            duration_ms: None,
        })),
        skipped: None,
    });
    let candidate = base.candidate.clone().or_else(|| config.candidate.clone());
    let second = config
        .versions
        .iter()
        .map(|v| &v.id)
        .find(|v| **v != config.stable && Some(*v) != candidate.as_ref());
    out.push(match (&latency, second) {
        (Some(m), Some(second)) => Drill {
            name: "bad_candidate_twice".into(),
            description: format!(
                "{m} × 1.5 from {:.0} min, then the same failure in {second} started as soon as the first is rolled back",
                minutes(onset_ms)
            ),
            spec: Some(BacktestSpec {
                then: Some(FollowUp {
                    candidate: second.clone(),
                    after_ms: 0,
                }),
                ..with(Injection {
                    metric: m.clone(),
                    change: Change::Ratio { factor: 1.5 },
                    onset_ms,
                    onset_max_ms: None,
                    duration_ms: None,
                })
            }),
            skipped: None,
        },
        (None, _) => skip("bad_candidate_twice", "two bad candidates in a row".into(), "no gated value metric where higher is worse"),
        (_, None) => skip("bad_candidate_twice", "two bad candidates in a row".into(), "the policy has no third version to roll out second"),
    });
    out
}

/// Runs every drill of [`drills`] and sums each up.
///
/// # Errors
/// A backtest's error (a config the policy refuses, a candidate it does not know).
pub fn run_drills(
    config: &PolicyConfig,
    recording: &Recording,
    base: &BacktestSpec,
) -> Result<Vec<DrillResult>, BacktestError> {
    drills(config, recording, base)
        .into_iter()
        .map(|drill| {
            let Some(spec) = &drill.spec else {
                return Ok(DrillResult {
                    drill,
                    caught: None,
                    onset_to_rollback_ms: None,
                    onset_to_restored_ms: None,
                    targets: Vec::new(),
                    second: Vec::new(),
                    report: None,
                });
            };
            let report = backtest(config, recording, spec)?;
            let mut targets: Vec<(String, u32)> = Vec::new();
            let mut second: Vec<(String, u32)> = Vec::new();
            for o in &report.outcomes {
                if let Some(r) = o
                    .rollback
                    .as_ref()
                    .filter(|r| o.onset.is_some_and(|on| r.at >= on))
                {
                    tally(
                        &mut targets,
                        format!("{} ({}, {})", r.to, code(&r.target), code(&r.reason)),
                    );
                }
                if let Some(t) = &o.then {
                    let what = match (&t.refused, &t.rollback, t.promoted_at) {
                        (Some(code), _, _) => format!("refused ({code})"),
                        (None, Some(r), _) => {
                            format!("rolled back to {} ({})", r.to, code(&r.reason))
                        }
                        (None, None, Some(_)) => "promoted".into(),
                        (None, None, None) if !t.escalations.is_empty() => {
                            let mut reasons: Vec<String> = t.escalations.iter().map(code).collect();
                            reasons.dedup();
                            format!("held, escalated ({})", reasons.join(", "))
                        }
                        _ => "still running at the end".into(),
                    };
                    tally(&mut second, what);
                }
            }
            Ok(DrillResult {
                caught: report.detected,
                onset_to_rollback_ms: report.detection_delay_ms,
                onset_to_restored_ms: report.onset_to_restored_ms,
                targets,
                second,
                report: Some(report),
                drill,
            })
        })
        .collect()
}

/// The drills' results as a Markdown table.
pub fn drills_markdown(results: &[DrillResult]) -> String {
    let secs = |s: &Option<Spread>| match s {
        Some(s) => format!(
            "{:.0} s (p90 {:.0} s)",
            s.p50 as f64 / 1e3,
            s.p90 as f64 / 1e3
        ),
        None => "–".into(),
    };
    let counts = |v: &[(String, u32)]| {
        v.iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut out = String::from(
        "| drill | what fails | caught | onset → rollback | onset → restored | rolled back to | second candidate |\n|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let caught = match (&r.caught, &r.drill.skipped) {
            (_, Some(why)) => format!("skipped: {why}"),
            (Some(c), None) => format!("{} of {}", c.count, c.of),
            (None, None) => "–".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.drill.name,
            r.drill.description,
            caught,
            secs(&r.onset_to_rollback_ms),
            secs(&r.onset_to_restored_ms),
            if r.targets.is_empty() {
                "–".into()
            } else {
                counts(&r.targets)
            },
            if r.second.is_empty() {
                "–".into()
            } else {
                counts(&r.second)
            },
        ));
    }
    out
}

fn tally(v: &mut Vec<(String, u32)>, key: String) {
    match v.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => v.push((key, 1)),
    }
}

/// The metrics the policy's gates read, in gate order, each once, with its kind and
/// whether higher values are worse (a `max` bound, or `worse: higher`; a `min` bound or
/// `worse: lower` is the other way).
fn gated_metrics(config: &PolicyConfig) -> Vec<(String, MetricKind, bool)> {
    let mut out: Vec<(String, MetricKind, bool)> = Vec::new();
    for g in &config.gates {
        let Some(m) = config.metrics.iter().find(|m| m.name == g.metric) else {
            continue;
        };
        let rule = serde_json::to_value(&g.rule).unwrap_or_default();
        let lower = rule.get("min").is_some()
            || rule.get("min_ratio").is_some()
            || rule.get("max_decrease").is_some()
            || rule.get("worse").and_then(Value::as_str) == Some("lower");
        let higher = !lower;
        if !out.iter().any(|(n, _, h)| *n == m.name && *h == higher) {
            out.push((m.name.clone(), m.kind, higher));
        }
    }
    out
}

fn has_values(recording: &Recording, metric: &str) -> bool {
    recording
        .samples()
        .iter()
        .any(|s| s.metric == metric && s.value.is_some())
}

fn mean_value(recording: &Recording, metric: &str) -> f64 {
    let (sum, n) = recording
        .samples()
        .iter()
        .filter(|s| s.metric == metric)
        .filter_map(|s| s.value)
        .fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}
