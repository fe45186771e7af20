//! A gate's state: its detector's (see [`crate::detect`]) and the persistence machine
//! that turns the detector's verdicts into trips and clears.

use serde::{Deserialize, Serialize};

use crate::config::Persistence;
use crate::detect::Detector;
use crate::output::Verdict;
use crate::time::Timestamp;

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
    /// A gate as a rollout starts it: no verdict yet, its detector as `fresh` (the
    /// plan's [`Detector::new`] of its config).
    pub(crate) fn new(fresh: &Detector) -> Self {
        Self {
            detector: fresh.clone(),
            ..Self::default()
        }
    }

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
