//! Gates: a rule over one window statistic, judged with a minimum of evidence, and a
//! persistence machine that turns verdicts into trips and clears.
//!
//! Gate kinds are an open set. A kind is a [`Rule`] variant (config) plus, when it keeps
//! state between evaluations, a [`Detector`] variant here; [`Detector::observe`] sees
//! every sample of the gate's metric and [`Detector::judge`] gives a verdict at each
//! evaluation. The persistence machine, reports and the policy do not change when a
//! kind is added.

use serde::{Deserialize, Serialize};

use crate::config::{GateConfig, NoData, Persistence, Rule};
use crate::output::Verdict;
use crate::stats::window::Reading;
use crate::time::Timestamp;

/// Per-gate state kept between evaluations by stateful gate kinds (sequential tests,
/// CUSUM). The built-in rules read windows and keep none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Detector {
    /// Threshold and vs_baseline rules.
    #[default]
    Stateless,
}

/// The result of judging one gate once, before persistence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Judgement {
    pub(crate) verdict: Verdict,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
}

impl Detector {
    /// Judges the judged arm's reading against the rule (and the baseline's reading).
    pub(crate) fn judge(
        &mut self,
        gate: &GateConfig,
        subject: Reading,
        baseline: Option<Reading>,
    ) -> Judgement {
        let enough = |r: &Reading| r.value.is_some() && r.evidence >= gate.samples_min;
        let no_data = Judgement {
            verdict: match gate.on_no_data {
                NoData::Inconclusive => Verdict::Inconclusive,
                NoData::Fail => Verdict::Fail,
                NoData::Pass => Verdict::Pass,
            },
            min: None,
            max: None,
        };
        if !enough(&subject) {
            return no_data;
        }
        let (min, max) = match gate.rule {
            Rule::Threshold { min, max } => (min, max),
            Rule::VsBaseline {
                max_ratio,
                min_ratio,
                max_increase,
                max_decrease,
                baseline_min,
            } => {
                let Some(b) = baseline.filter(enough).and_then(|b| b.value) else {
                    return no_data;
                };
                // Ratios are taken of the floored baseline; of a zero baseline, with no
                // floor, they are left out (see `Rule::VsBaseline::baseline_min`).
                let base = match baseline_min {
                    Some(floor) if b < floor => Some(floor),
                    _ => Some(b).filter(|b| *b != 0.0),
                };
                let ratio = |r: Option<f64>| r.zip(base).map(|(r, base)| base * r);
                let upper = [ratio(max_ratio), max_increase.map(|d| b + d)];
                let lower = [ratio(min_ratio), max_decrease.map(|d| b - d)];
                // A bound that overflows (a huge baseline times a ratio) bounds nothing.
                let finite = |x: &f64| x.is_finite();
                let bounds = (
                    lower.into_iter().flatten().filter(finite).reduce(f64::max),
                    upper.into_iter().flatten().filter(finite).reduce(f64::min),
                );
                if bounds == (None, None) {
                    return Judgement {
                        verdict: Verdict::Inconclusive,
                        min: None,
                        max: None,
                    };
                }
                bounds
            }
        };
        let x = subject.value.unwrap_or(0.0);
        let out = min.is_some_and(|lo| x < lo) || max.is_some_and(|hi| x > hi);
        Judgement {
            verdict: if out { Verdict::Fail } else { Verdict::Pass },
            min,
            max,
        }
    }
}

/// The persistence machine of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateState {
    #[serde(deserialize_with = "crate::tagged::strict")]
    pub(crate) detector: Detector,
    /// Failing evaluations in a row (inconclusive ones neither count nor reset).
    pub(crate) consecutive_failures: u32,
    /// Passing evaluations in a row.
    pub(crate) consecutive_passes: u32,
    /// Time of the first failure of the current streak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failing_since: Option<Timestamp>,
    /// Estimated onset of the current streak's degradation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) onset: Option<Timestamp>,
    /// Time of the latest failing evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_failure: Option<Timestamp>,
    /// Tripped, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tripped_at: Option<Timestamp>,
    /// The latest verdict, if the gate has been evaluated in this rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last: Option<Verdict>,
}

/// What one evaluation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Tripped,
    Cleared,
}

impl GateState {
    pub(crate) fn tripped(&self) -> bool {
        self.tripped_at.is_some()
    }

    /// Feeds one verdict at `now`. `onset` is called at the first failure of a streak
    /// to estimate when the degradation began.
    pub(crate) fn record(
        &mut self,
        p: &Persistence,
        verdict: Verdict,
        now: Timestamp,
        onset: impl FnOnce() -> Timestamp,
    ) -> Transition {
        self.last = Some(verdict);
        match verdict {
            Verdict::Inconclusive => {}
            Verdict::Fail => {
                self.consecutive_passes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_failure = Some(now);
                if self.failing_since.is_none() {
                    self.failing_since = Some(now);
                    if !self.tripped() {
                        self.onset = Some(onset());
                    }
                }
            }
            Verdict::Pass => {
                self.consecutive_failures = 0;
                self.consecutive_passes = self.consecutive_passes.saturating_add(1);
                self.failing_since = None;
            }
        }
        if self.tripped() {
            let held = self
                .last_failure
                .is_none_or(|t| now.saturating_sub(t) >= p.keep_failing_ms);
            if self.consecutive_passes >= p.clear_after && held {
                self.tripped_at = None;
                self.onset = None;
                return Transition::Cleared;
            }
            return Transition::None;
        }
        let long_enough = self
            .failing_since
            .is_some_and(|t| now.saturating_sub(t) >= p.for_ms);
        if self.consecutive_failures >= p.consecutive && long_enough {
            self.tripped_at = Some(now);
            return Transition::Tripped;
        }
        Transition::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(consecutive: u32, for_ms: u64, clear_after: u32, keep_failing_ms: u64) -> Persistence {
        Persistence {
            consecutive,
            for_ms,
            clear_after,
            keep_failing_ms,
        }
    }

    #[test]
    fn trips_only_on_consecutive_failures_not_cumulative() {
        let p = p(3, 0, 1, 0);
        let mut g = GateState::default();
        let seq = [
            Verdict::Fail,
            Verdict::Fail,
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Fail,
        ];
        for (i, v) in seq.into_iter().enumerate() {
            assert_eq!(
                g.record(&p, v, i as u64 * 10, || 0),
                Transition::None,
                "at {i}"
            );
        }
        // Four failures in total, but never three in a row.
        assert!(!g.tripped());
        assert_eq!(g.record(&p, Verdict::Fail, 50, || 0), Transition::Tripped);
    }

    #[test]
    fn inconclusive_neither_counts_nor_resets() {
        let p = p(2, 0, 1, 0);
        let mut g = GateState::default();
        g.record(&p, Verdict::Fail, 0, || 0);
        g.record(&p, Verdict::Inconclusive, 10, || 0);
        assert_eq!(g.consecutive_failures, 1);
        assert_eq!(g.record(&p, Verdict::Fail, 20, || 0), Transition::Tripped);
    }

    #[test]
    fn for_ms_requires_the_breach_to_be_held() {
        let p = p(1, 100, 1, 0);
        let mut g = GateState::default();
        assert_eq!(g.record(&p, Verdict::Fail, 1_000, || 900), Transition::None);
        assert_eq!(g.record(&p, Verdict::Fail, 1_050, || 0), Transition::None);
        assert_eq!(
            g.record(&p, Verdict::Fail, 1_100, || 0),
            Transition::Tripped
        );
        assert_eq!(g.onset, Some(900));
    }

    #[test]
    fn clear_needs_passes_and_keep_failing_time() {
        let p = p(1, 0, 2, 100);
        let mut g = GateState::default();
        assert_eq!(g.record(&p, Verdict::Fail, 0, || 0), Transition::Tripped);
        assert_eq!(g.record(&p, Verdict::Pass, 10, || 0), Transition::None);
        // Two passes, but only 20 ms after the last failure.
        assert_eq!(g.record(&p, Verdict::Pass, 20, || 0), Transition::None);
        assert_eq!(g.record(&p, Verdict::Pass, 100, || 0), Transition::Cleared);
        assert!(!g.tripped());
    }
}
