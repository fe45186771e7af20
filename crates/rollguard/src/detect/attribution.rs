//! `error_attribution`: which arm each error came from, given the traffic split
//! (Lindon and Malek, "Anytime-valid inference for multinomial count data", NeurIPS
//! 2022; the count test of Netflix's canary analysis).
//!
//! Model: each arm's errors are a Poisson process whose intensity is a shared,
//! arbitrary load λ(t) times the arm's traffic share times its per-request error
//! rate. Given that an error happened, it came from the judged arm with probability
//! p = sθ / (sθ + 1 − s), where s is the judged arm's share of traffic and θ the ratio
//! of per-request error rates. The load cancels: diurnal swings, bursts and incidents
//! that hit both arms alike do not move p. The null "θ ≤ 1 + margin" is p ≤ p0.
//!
//! The e-process is, per traffic split, the one-sided Beta-binomial mixture of Howard
//! et al. (AoS 2021; confseq's `beta_binomial_log_mixture` with `is_one_sided`): a
//! Beta(k·p0, k·(1 − p0)) prior truncated to p ≥ p0,
//!
//!   E = B(a + x, b + y)·U(a + x, b + y) / (B(a, b)·U(a, b)) / (p0^x (1 − p0)^y),
//!
//! with x and y the errors of the judged and the baseline arm at that split, and U the
//! Beta upper tail above p0. Each truncated component is a supermartingale under every
//! p ≤ p0, so the mixture is too. Splits change only when the policy changes weights;
//! the e-process is the product over the splits seen (each factor a supermartingale
//! in its own events), so the test keeps its guarantee across canary steps. By
//! Ville's inequality P(ever E ≥ 1/α) ≤ α under the null, evaluated as often as you
//! like.
//!
//! State: two counts per split, and the running extremes of ln E at evaluations.

use serde::{Deserialize, Serialize};

use crate::stats::special::{ln_beta, ln_beta_upper};
use crate::time::Timestamp;

/// Counts saturate here: every count stays exact as an `f64`.
pub(crate) const COUNT_MAX: u64 = 1 << 53;

/// Errors seen at one traffic split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Split {
    /// The judged arm's share of traffic, in (0, 1).
    pub(crate) share: f64,
    /// Errors on the judged arm.
    pub(crate) judged: u64,
    /// Errors on the baseline arm.
    pub(crate) baseline: u64,
}

/// The state of one `error_attribution` gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attribution {
    /// One entry per distinct split seen, in the order first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) splits: Vec<Split>,
    /// The largest ln E at an evaluation: the always-valid p-value is exp(−this).
    #[serde(default)]
    pub(crate) ln_e_max: f64,
    /// The smallest ln E at an evaluation, and when: evidence against the candidate
    /// built up after it, so it is the onset estimate.
    #[serde(default)]
    pub(crate) ln_e_min: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) low_at: Option<Timestamp>,
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    pub(crate) ln_e: f64,
    pub(crate) rejected: bool,
    pub(crate) p_value: f64,
    pub(crate) ratio: Option<f64>,
    pub(crate) ratio_lower: Option<f64>,
    pub(crate) judged: u64,
    pub(crate) baseline: u64,
    pub(crate) onset: Option<Timestamp>,
}

/// The test's settings, from the gate's rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    pub(crate) alpha: f64,
    /// The null ratio of error rates, 1 + margin.
    pub(crate) ratio: f64,
    /// The prior's weight k, in events.
    pub(crate) mixing_events: f64,
}

/// Lowest and highest ratio the confidence bound is searched in, and the bisection
/// steps (the bound is exact to a factor 1e6^(2^-30), about 1.3e-8 relative).
const RATIO_MIN: f64 = 1e-3;
const RATIO_MAX: f64 = 1e3;
const BISECTIONS: u32 = 30;

impl Attribution {
    /// `events` errors on an arm whose role is `judged` or not, while the judged arm
    /// gets `share` of the traffic. Splits where one arm gets nothing carry no
    /// information and are skipped.
    #[inline]
    pub(crate) fn observe(&mut self, judged: bool, share: f64, events: u64) {
        if events == 0 || !(share > 0.0 && share < 1.0) {
            return;
        }
        let i = match self.splits.iter().rposition(|s| s.share == share) {
            Some(i) => i,
            None => {
                self.splits.push(Split {
                    share,
                    judged: 0,
                    baseline: 0,
                });
                self.splits.len() - 1
            }
        };
        let s = &mut self.splits[i];
        let n = if judged {
            &mut s.judged
        } else {
            &mut s.baseline
        };
        *n = n.saturating_add(events).min(COUNT_MAX);
    }

    /// Evaluates the test at `now`.
    pub(crate) fn judge(&mut self, set: Settings, now: Timestamp) -> Finding {
        let ln_e = self.ln_e(set.ratio, set.mixing_events);
        if ln_e > self.ln_e_max {
            self.ln_e_max = ln_e;
        }
        if ln_e < self.ln_e_min || self.low_at.is_none() {
            if ln_e < self.ln_e_min {
                self.ln_e_min = ln_e;
            }
            self.low_at = Some(now);
        }
        let threshold = -libm::log(set.alpha);
        let (judged, baseline) = self.splits.iter().fold((0u64, 0u64), |(j, b), s| {
            (j.saturating_add(s.judged), b.saturating_add(s.baseline))
        });
        Finding {
            ln_e,
            rejected: self.ln_e_max >= threshold,
            p_value: libm::exp(-self.ln_e_max).min(1.0),
            ratio: self.ratio_estimate(),
            ratio_lower: self.ratio_lower(threshold, set.mixing_events),
            judged,
            baseline,
            onset: self.low_at,
        }
    }

    /// ln E against the null ratio `ratio`: the sum over splits.
    pub(crate) fn ln_e(&self, ratio: f64, k: f64) -> f64 {
        self.splits
            .iter()
            .map(|s| split_ln_e(s, ratio, k))
            .fold(0.0, |sum, v| sum + v)
    }

    /// The ratio of error rates estimated from all splits (a Mantel–Haenszel-style
    /// pooled estimate: judged errors over baseline errors scaled by the split).
    fn ratio_estimate(&self) -> Option<f64> {
        let (num, den) = self.splits.iter().fold((0.0, 0.0), |(n, d), s| {
            (
                n + s.judged as f64,
                d + s.baseline as f64 * s.share / (1.0 - s.share),
            )
        });
        (den > 0.0).then(|| num / den)
    }

    /// The lower confidence bound of the ratio: the smallest null ratio the test does
    /// not reject now (ln E falls as the null ratio rises). `None` below 1e-3.
    fn ratio_lower(&self, threshold: f64, k: f64) -> Option<f64> {
        let rejects = |ln_ratio: f64| self.ln_e(libm::exp(ln_ratio), k) >= threshold;
        let (mut lo, mut hi) = (libm::log(RATIO_MIN), libm::log(RATIO_MAX));
        if !rejects(lo) {
            return None;
        }
        if rejects(hi) {
            return Some(RATIO_MAX);
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

/// The chance an error came from the judged arm if its per-request error rate were
/// `ratio` times the baseline's, at a split giving it `share` of the traffic.
pub(crate) fn null_share(share: f64, ratio: f64) -> f64 {
    let judged = share * ratio;
    judged / (judged + (1.0 - share))
}

/// ln E of one split against the null ratio `ratio`, with a prior of weight `k`.
fn split_ln_e(s: &Split, ratio: f64, k: f64) -> f64 {
    beta_mixture_ln_e(
        s.judged as f64,
        s.baseline as f64,
        null_share(s.share, ratio),
        k,
    )
}

/// ln E of `x` successes and `y` failures against "the success probability is at most
/// p0": the Beta(k·p0, k·(1 − p0)) mixture truncated to p ≥ p0 (confseq's one-sided
/// `beta_binomial_log_mixture` with g = p0, h = 1 − p0 and r = k·p0·(1 − p0)).
pub(crate) fn beta_mixture_ln_e(x: f64, y: f64, p0: f64, k: f64) -> f64 {
    if x == 0.0 && y == 0.0 {
        return 0.0;
    }
    let (a, b) = (k * p0, k * (1.0 - p0));
    ln_beta(a + x, b + y) - ln_beta(a, b) + ln_beta_upper(a + x, b + y, p0)
        - ln_beta_upper(a, b, p0)
        - x * libm::log(p0)
        - y * libm::log1p(-p0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: Settings = Settings {
        alpha: 0.01,
        ratio: 1.0,
        mixing_events: 10.0,
    };

    fn with(share: f64, judged: u64, baseline: u64) -> Attribution {
        let mut a = Attribution::default();
        a.observe(true, share, judged);
        a.observe(false, share, baseline);
        a
    }

    #[test]
    fn no_errors_is_no_evidence() {
        let mut a = Attribution::default();
        let f = a.judge(SET, 1000);
        assert_eq!(f.ln_e, 0.0);
        assert_eq!(f.p_value, 1.0);
        assert!(!f.rejected);
        assert_eq!(f.ratio, None);
    }

    #[test]
    fn errors_in_proportion_to_traffic_are_not_evidence_against_the_candidate() {
        // 10 % of traffic, 10 % of the errors.
        let f = with(0.1, 100, 900).judge(SET, 1000);
        assert!(f.ln_e < 0.0, "{f:?}");
        assert!(!f.rejected);
        let ratio = f.ratio.unwrap();
        assert!((ratio - 1.0).abs() < 1e-12, "{ratio}");
    }

    #[test]
    fn twice_the_errors_per_request_is_found() {
        // 50/50 split, 2:1 errors: 100 against 50.
        let f = with(0.5, 100, 50).judge(SET, 1000);
        assert!(f.rejected, "{f:?}");
        assert!(f.p_value <= 0.01);
        assert!((f.ratio.unwrap() - 2.0).abs() < 1e-12);
        let lower = f.ratio_lower.unwrap();
        assert!(lower > 1.0 && lower < 2.0, "{lower}");
    }

    #[test]
    fn the_margin_raises_the_bar() {
        let a = with(0.5, 100, 50);
        let strict = a.ln_e(1.0, 10.0);
        let loose = a.ln_e(1.5, 10.0);
        assert!(loose < strict);
    }

    #[test]
    fn the_same_errors_mean_more_at_a_small_split() {
        // 20 candidate errors out of 60: at a 50/50 split that is fewer than its
        // share; at a 5 % split it is six times its share.
        assert!(with(0.5, 20, 40).ln_e(1.0, 10.0) < 0.0);
        assert!(with(0.05, 20, 40).ln_e(1.0, 10.0) > libm::log(100.0));
    }

    #[test]
    fn splits_are_kept_apart_and_their_evidence_adds_up() {
        let mut a = with(0.05, 10, 50);
        a.observe(true, 0.25, 30);
        a.observe(false, 0.25, 40);
        assert_eq!(a.splits.len(), 2);
        let sum = with(0.05, 10, 50).ln_e(1.0, 10.0) + with(0.25, 30, 40).ln_e(1.0, 10.0);
        assert_eq!(a.ln_e(1.0, 10.0), sum);
    }

    #[test]
    fn a_split_with_all_traffic_on_one_arm_is_ignored() {
        let mut a = Attribution::default();
        a.observe(true, 1.0, 10);
        a.observe(false, 0.0, 10);
        assert!(a.splits.is_empty());
    }

    #[test]
    fn the_p_value_never_rises_and_onset_is_the_low_point() {
        let mut a = with(0.5, 10, 30);
        let first = a.judge(SET, 1000);
        a.observe(true, 0.5, 200);
        let second = a.judge(SET, 2000);
        assert!(second.p_value <= first.p_value);
        assert_eq!(second.onset, Some(1000));
        a.observe(false, 0.5, 10_000);
        let third = a.judge(SET, 3000);
        assert_eq!(third.p_value, second.p_value, "the running maximum is kept");
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut a = with(0.5, u64::MAX, 0);
        a.observe(true, 0.5, u64::MAX);
        assert_eq!(a.splits[0].judged, COUNT_MAX);
        assert!(a.ln_e(1.0, 10.0).is_finite());
    }
}
