//! The circuit breaker over automated rollbacks: `max_rollbacks` of them within
//! `window_ms` open it; the last one goes to the golden version, and while it is open
//! automation only holds and escalates. It has no timer: an operator closes it
//! (`clear_breaker`), and a rollout that completes cleanly ends the run it counts.

use serde::{Deserialize, Serialize};

use crate::config::BreakerConfig;
use crate::time::Timestamp;

/// The circuit breaker over automated rollbacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Breaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) open_since: Option<Timestamp>,
    /// Times of recent automated rollbacks, at most `max_rollbacks` of them.
    pub(crate) rollbacks: Vec<Timestamp>,
}

impl Breaker {
    /// Whether it is open.
    pub(crate) fn is_open(&self) -> bool {
        self.open_since.is_some()
    }

    /// Automated rollbacks within the window before `now`.
    pub(crate) fn recent(&self, now: Timestamp, cfg: &BreakerConfig) -> u32 {
        let since = now.saturating_sub(cfg.window_ms);
        let recent = self.rollbacks.iter().filter(|t| **t > since).count();
        u32::try_from(recent).unwrap_or(u32::MAX)
    }

    /// Whether one more automated rollback at `now` opens it.
    pub(crate) fn trips_at(&self, now: Timestamp, cfg: &BreakerConfig) -> bool {
        self.recent(now, cfg).saturating_add(1) >= cfg.max_rollbacks
    }

    /// Records an automated rollback at `now`, forgetting those out of the window and
    /// keeping at most `max_rollbacks`; opens if it trips. Returns the rollbacks in
    /// the window, this one included, if it opened.
    pub(crate) fn record(&mut self, now: Timestamp, cfg: &BreakerConfig) -> Option<u32> {
        let trips = self.trips_at(now, cfg);
        let count = self.recent(now, cfg).saturating_add(1);
        let since = now.saturating_sub(cfg.window_ms);
        self.rollbacks.retain(|t| *t > since);
        self.rollbacks.push(now);
        let keep = cfg.max_rollbacks as usize;
        if self.rollbacks.len() > keep {
            self.rollbacks.drain(..self.rollbacks.len() - keep);
        }
        if trips {
            self.open_since = Some(now);
        }
        trips.then_some(count)
    }

    /// A rollout completed cleanly: the run of rollbacks it counts is over.
    pub(crate) fn forget_run(&mut self) {
        self.rollbacks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: BreakerConfig = BreakerConfig {
        max_rollbacks: 3,
        window_ms: 1_000,
    };

    #[test]
    fn opens_at_max_rollbacks_within_the_window() {
        let mut b = Breaker::default();
        assert_eq!(b.record(100, &CFG), None);
        assert_eq!(b.record(200, &CFG), None);
        assert!(b.trips_at(300, &CFG));
        assert_eq!(b.record(300, &CFG), Some(3));
        assert!(b.is_open());
    }

    #[test]
    fn rollbacks_out_of_the_window_do_not_count_and_are_forgotten() {
        let mut b = Breaker::default();
        assert_eq!(b.record(0, &CFG), None);
        assert_eq!(b.record(500, &CFG), None);
        // At 1 000 the first is exactly window_ms old: out.
        assert_eq!(b.recent(1_000, &CFG), 1);
        assert_eq!(b.record(1_000, &CFG), None);
        assert_eq!(b.rollbacks, [500, 1_000]);
        assert!(!b.is_open());
    }

    #[test]
    fn keeps_at_most_max_rollbacks() {
        let cfg = BreakerConfig {
            max_rollbacks: 2,
            window_ms: 1_000_000,
        };
        let mut b = Breaker::default();
        for t in 0..5 {
            let _ = b.record(t, &cfg);
            assert!(b.rollbacks.len() <= 2);
        }
    }
}
