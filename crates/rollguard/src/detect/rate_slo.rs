//! `rate_slo`: an anytime-valid test of a version's error rate against an absolute
//! objective (the beta-binomial confidence sequence of Howard et al., AoS 2021).
//!
//! Requests are Bernoulli trials; the null is "the per-request error rate is at most
//! `max_rate`". The e-process is the one-sided Beta-binomial mixture of
//! [`attribution::beta_mixture_ln_e`](super::attribution::beta_mixture_ln_e) on the
//! errors and the requests without one, with a prior worth `mixing_events` errors at the
//! objective (k = mixing_events / max_rate). Unlike a threshold on a window's rate, its
//! false-failure probability over the whole phase is at most alpha, however often it is
//! evaluated; unlike `error_attribution`, it needs no second arm, so it also guards the
//! steady phase and the bake.
//!
//! State: errors and requests since the phase began, and the running extremes of ln E;
//! with `environment.check` on, the same test run on the stable version's requests
//! (`stable`), which the policy reads before a rollback (`policy/environment.rs`).

use serde::{Deserialize, Serialize};

use super::attribution::{COUNT_MAX, beta_mixture_ln_e};
use crate::time::Timestamp;

/// The state of one `rate_slo` gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateTest {
    /// Errors, and requests, of the judged arm since the phase began.
    pub(crate) events: u64,
    pub(crate) total: u64,
    #[serde(default)]
    pub(crate) ln_e_max: f64,
    #[serde(default)]
    pub(crate) ln_e_min: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) low_at: Option<Timestamp>,
    /// The same test on the baseline arm's requests (the stable version in the shadow
    /// and canary phases), kept only with `environment.check` on (boxed: absent, it
    /// costs a pointer). Never judged by the gate: the policy compares it with the
    /// judged arm's before rolling back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stable: Option<Box<RateTest>>,
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    pub(crate) ln_e: f64,
    pub(crate) rejected: bool,
    pub(crate) p_value: f64,
    pub(crate) rate: Option<f64>,
    pub(crate) rate_lower: Option<f64>,
    pub(crate) total: u64,
    pub(crate) onset: Option<Timestamp>,
}

/// Bisection steps of the confidence bound (on the log of the rate, from 1e-12 to 1).
const BISECTIONS: u32 = 50;
const RATE_MIN: f64 = 1e-12;

impl RateTest {
    #[inline]
    pub(crate) fn observe(&mut self, events: u64, total: u64) {
        // A sample's events never exceed its total (inputs are checked); the counts
        // stop together at 2^53 so that they stay exact and ordered.
        if self.total.saturating_add(total) > COUNT_MAX {
            return;
        }
        self.events += events;
        self.total += total;
    }

    /// One count sample of the baseline arm: counted by the shadow test, if kept.
    #[inline]
    pub(crate) fn observe_stable(&mut self, events: u64, total: u64) {
        if let Some(s) = self.stable.as_mut() {
            s.observe(events, total);
        }
    }

    /// ln E against "the rate is at most `p0`", with the prior weight k.
    fn ln_e(&self, p0: f64, k: f64) -> f64 {
        let x = self.events as f64;
        beta_mixture_ln_e(x, self.total as f64 - x, p0, k)
    }

    /// Evaluates the test at `now` against `max_rate`.
    pub(crate) fn judge(&mut self, max_rate: f64, alpha: f64, k: f64, now: Timestamp) -> Finding {
        let ln_e = self.ln_e(max_rate, k);
        if ln_e > self.ln_e_max {
            self.ln_e_max = ln_e;
        }
        if ln_e < self.ln_e_min || self.low_at.is_none() {
            if ln_e < self.ln_e_min {
                self.ln_e_min = ln_e;
            }
            self.low_at = Some(now);
        }
        let threshold = -libm::log(alpha);
        Finding {
            ln_e,
            rejected: self.ln_e_max >= threshold,
            p_value: libm::exp(-self.ln_e_max).min(1.0),
            rate: (self.total > 0).then(|| self.events as f64 / self.total as f64),
            rate_lower: self.rate_lower(threshold, k),
            total: self.total,
            onset: self.low_at,
        }
    }

    /// The confidence sequence's lower bound of the rate: the smallest objective the
    /// test does not reject now (with the same prior weight). `None` below 1e-12.
    fn rate_lower(&self, threshold: f64, k: f64) -> Option<f64> {
        let x = self.events as f64;
        if self.total == 0 || x == 0.0 {
            return None;
        }
        let observed = x / self.total as f64;
        let rejects = |ln_p: f64| self.ln_e(libm::exp(ln_p), k) >= threshold;
        let (mut lo, mut hi) = (libm::log(RATE_MIN), libm::log(observed));
        if !rejects(lo) {
            return None;
        }
        for _ in 0..BISECTIONS {
            let mid = 0.5 * (lo + hi);
            if rejects(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(libm::exp(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_at_the_objective_are_no_evidence() {
        let mut t = RateTest::default();
        t.observe(10, 10_000);
        let f = t.judge(0.001, 0.01, 10_000.0, 1000);
        assert!(f.ln_e < 0.0 && !f.rejected, "{f:?}");
        assert_eq!(f.rate, Some(0.001));
    }

    #[test]
    fn three_times_the_objective_fails_and_the_bound_explains_it() {
        let mut t = RateTest::default();
        t.observe(60, 20_000);
        let f = t.judge(0.001, 0.01, 10_000.0, 1000);
        assert!(f.rejected, "{f:?}");
        let lower = f.rate_lower.unwrap();
        assert!(lower > 0.001 && lower < 0.003, "{lower}");
    }

    #[test]
    fn no_requests_no_evidence_and_counts_stop_at_the_limit() {
        let mut t = RateTest::default();
        let f = t.judge(0.01, 0.01, 1000.0, 1);
        assert_eq!((f.ln_e, f.rate, f.rate_lower), (0.0, None, None));
        t.observe(1, COUNT_MAX);
        t.observe(1, 1);
        assert_eq!((t.events, t.total), (1, COUNT_MAX));
    }
}
