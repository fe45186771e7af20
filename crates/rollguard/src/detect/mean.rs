//! `sequential_mean`: an anytime-valid two-sample test of the difference of means
//! (the mixture SPRT of Robbins, as Optimizely's Stats Engine runs it; Johari et al.,
//! "Always valid inference", OR 2022), one-sided with a non-inferiority margin.
//!
//! With n and m samples, the difference of the arms' means d (judged minus baseline,
//! signed so that positive is worse) is close to N(θ, V), V = s₁²/n + s₂²/m with the
//! arms' sample variances plugged in. On the information scale I = 1/V the score
//! S = (d − θ0)·I is a Brownian motion with drift θ − θ0 in time I, and
//!
//!   M = 2·√(ρ/(I + ρ)) · exp(S²/(2(I + ρ))) · Φ(S/√(I + ρ)),  ρ = 1/τ²,
//!
//! is its mixture martingale over a half-normal prior of scale τ on θ − θ0 > 0 (the
//! one-sided normal mixture of Howard et al., AoS 2021; confseq's
//! `normal_log_mixture(is_one_sided=True)`). For every θ ≤ θ0 it is a supermartingale,
//! so P(ever M ≥ 1/α) ≤ α: with the variance plugged in the guarantee is asymptotic
//! (the time-uniform central limit theorem of Waudby-Smith et al., 2021).
//!
//! The null θ0 is the margin (a relative margin is taken of the baseline's mean when
//! both arms first reach `samples_min`, and then kept); the mixing scale τ is the
//! margin, or if that is 0 half the pooled standard deviation at the same moment.
//! State: count, mean and sum of squared deviations per arm (Welford), the frozen null
//! and scale, and the running extremes of ln M at evaluations.

use serde::{Deserialize, Serialize};

use crate::stats::special::ln_normal_cdf;
use crate::time::Timestamp;

/// Counts saturate here (and stop moving the moments): every count stays exact as an
/// `f64`.
pub(crate) const COUNT_MAX: u64 = 1 << 53;

/// Running moments of one arm (Welford's algorithm: no cancellation, one division).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Moments {
    pub(crate) n: u64,
    pub(crate) mean: f64,
    /// Sum of squared deviations from the mean.
    pub(crate) m2: f64,
}

impl Moments {
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        if self.n >= COUNT_MAX {
            return;
        }
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The sample variance (n − 1 in the denominator); 0 below two samples.
    pub(crate) fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }
}

/// The state of one `sequential_mean` gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeanTest {
    pub(crate) judged: Moments,
    pub(crate) baseline: Moments,
    /// The null difference θ0 and the mixing scale τ, fixed when both arms first
    /// reach the burn-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) null: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scale: Option<f64>,
    /// The largest ln M at an evaluation: the always-valid p-value is exp(−this).
    #[serde(default)]
    pub(crate) ln_e_max: f64,
    /// The smallest ln M at an evaluation, and when (the onset estimate).
    #[serde(default)]
    pub(crate) ln_e_min: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) low_at: Option<Timestamp>,
}

/// The test's settings, from the gate's rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    pub(crate) alpha: f64,
    /// Whether higher values are worse (latency, cost) or lower ones (quality).
    pub(crate) higher_is_worse: bool,
    /// The margin: an amount, or a fraction of the baseline's mean.
    pub(crate) margin: f64,
    pub(crate) relative: bool,
    /// The mixing scale τ, if the rule sets it.
    pub(crate) scale: Option<f64>,
    /// Samples each arm needs before the test starts.
    pub(crate) burn_in: u64,
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    /// Whether the burn-in is over (the test is running).
    pub(crate) started: bool,
    pub(crate) ln_e: f64,
    pub(crate) rejected: bool,
    pub(crate) p_value: f64,
    /// The difference of means, worse-positive.
    pub(crate) effect: Option<f64>,
    pub(crate) effect_lower: Option<f64>,
    pub(crate) judged: u64,
    pub(crate) baseline: u64,
    pub(crate) onset: Option<Timestamp>,
}

/// Largest |z-score| the test computes with: beyond it the evidence is decisive either
/// way, and its square stays finite.
const Z_MAX: f64 = 1e150;
/// Smallest ratio V/τ² (a constant stream has V = 0).
const RATIO_MIN: f64 = 1e-300;
/// Bisection steps of the confidence bound.
const BISECTIONS: u32 = 60;

impl MeanTest {
    #[inline]
    pub(crate) fn observe(&mut self, judged: bool, x: f64) {
        if judged {
            self.judged.add(x);
        } else {
            self.baseline.add(x);
        }
    }

    /// Evaluates the test at `now`.
    pub(crate) fn judge(&mut self, set: Settings, now: Timestamp) -> Finding {
        let burn_in = set.burn_in.max(2);
        let started = self.judged.n >= burn_in && self.baseline.n >= burn_in;
        if started && self.null.is_none() {
            let null = if set.relative {
                set.margin * self.baseline.mean.abs()
            } else {
                set.margin
            };
            let pooled = 0.5 * (self.judged.variance() + self.baseline.variance());
            let scale = match set.scale {
                Some(s) => s,
                None if null > 0.0 => null,
                None => 0.5 * libm::sqrt(pooled),
            };
            self.null = Some(null);
            // A constant stream has no spread to take a scale from.
            self.scale = Some(if scale > 0.0 { scale } else { 1.0 });
        }
        let sign = if set.higher_is_worse { 1.0 } else { -1.0 };
        let effect = (self.judged.n > 0 && self.baseline.n > 0)
            .then_some(sign * (self.judged.mean - self.baseline.mean));
        let threshold = -libm::log(set.alpha);
        let (ln_e, lower) = match (self.null, self.scale, effect) {
            (Some(null), Some(scale), Some(d)) => {
                let v = self.variance();
                let r = upper_of(v / (scale * scale), RATIO_MIN);
                let se = libm::sqrt(v);
                let z = (d - null) / se;
                let u = if z.is_nan() {
                    0.0
                } else {
                    z.clamp(-Z_MAX, Z_MAX)
                };
                let bound = d - z_bound(r, threshold) * se;
                (ln_mixture(u, r), bound.is_finite().then_some(bound))
            }
            _ => (0.0, None),
        };
        if ln_e > self.ln_e_max {
            self.ln_e_max = ln_e;
        }
        if started && (ln_e < self.ln_e_min || self.low_at.is_none()) {
            if ln_e < self.ln_e_min {
                self.ln_e_min = ln_e;
            }
            self.low_at = Some(now);
        }
        Finding {
            started,
            ln_e,
            rejected: self.ln_e_max >= threshold,
            p_value: libm::exp(-self.ln_e_max).min(1.0),
            effect,
            effect_lower: lower,
            judged: self.judged.n,
            baseline: self.baseline.n,
            onset: self.low_at,
        }
    }

    /// V = s₁²/n + s₂²/m, the variance of the difference of means.
    pub(crate) fn variance(&self) -> f64 {
        self.judged.variance() / self.judged.n as f64
            + self.baseline.variance() / self.baseline.n as f64
    }
}

fn upper_of(x: f64, floor: f64) -> f64 {
    if x > floor { x } else { floor }
}

/// ln M of the one-sided normal mixture (see the module docs) in scale-free terms: the
/// z-score u = (d − θ0)/√V and the ratio r = V/τ² (with s = u·√I, I = 1/V, ρ = 1/τ²:
/// r = ρ/I). Every term stays finite for finite u and r > 0.
pub(crate) fn ln_mixture(u: f64, r: f64) -> f64 {
    let w = 1.0 + r;
    core::f64::consts::LN_2 - 0.5 * libm::log1p(1.0 / r)
        + u * u / (2.0 * w)
        + ln_normal_cdf(u / libm::sqrt(w))
}

/// The z-score at which ln M reaches `threshold` for the ratio `r`: the confidence
/// bound is d minus this many standard errors. ln M rises with u, and at u = 0 it is
/// ½ ln(r/(1 + r)) < 0 < threshold.
fn z_bound(r: f64, threshold: f64) -> f64 {
    let mut hi = 1.0;
    while ln_mixture(hi, r) < threshold && hi < Z_MAX {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..BISECTIONS {
        let mid = 0.5 * (lo + hi);
        if ln_mixture(mid, r) >= threshold {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: Settings = Settings {
        alpha: 0.01,
        higher_is_worse: true,
        margin: 0.0,
        relative: false,
        scale: Some(1.0),
        burn_in: 5,
    };

    fn fed(judged: &[f64], baseline: &[f64]) -> MeanTest {
        let mut t = MeanTest::default();
        for &x in judged {
            t.observe(true, x);
        }
        for &x in baseline {
            t.observe(false, x);
        }
        t
    }

    /// A deterministic, zero-mean, unit-variance-ish sequence.
    fn wiggle(n: usize, shift: f64) -> Vec<f64> {
        (0..n)
            .map(|i| shift + [-1.5, -0.5, 0.5, 1.5][i % 4] * 0.9)
            .collect()
    }

    #[test]
    fn welford_moments_are_the_sample_mean_and_variance() {
        let mut m = Moments::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            m.add(x);
        }
        assert_eq!(m.mean, 5.0);
        assert!((m.variance() - 32.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn the_mixture_grows_with_evidence_and_is_below_one_without_it() {
        assert!(ln_mixture(0.0, 1.0) < 0.0);
        assert!(ln_mixture(5.0, 0.1) > ln_mixture(3.0, 0.1));
        assert!(
            ln_mixture(-5.0, 0.1) < ln_mixture(0.0, 0.1),
            "evidence the other way"
        );
        // No data (V/τ² → ∞): M = 1.
        assert!(ln_mixture(0.0, 1e300).abs() < 1e-15);
    }

    #[test]
    fn nothing_is_judged_before_the_burn_in() {
        let mut t = fed(&wiggle(4, 5.0), &wiggle(100, 0.0));
        let f = t.judge(SET, 1000);
        assert!(!f.started);
        assert_eq!(f.ln_e, 0.0);
        assert!(!f.rejected);
        assert_eq!(t.null, None);
    }

    #[test]
    fn a_shift_of_several_deviations_is_found_and_bounded() {
        let mut t = fed(&wiggle(40, 3.0), &wiggle(40, 0.0));
        let f = t.judge(SET, 1000);
        assert!(f.rejected, "{f:?}");
        assert!((f.effect.unwrap() - 3.0).abs() < 1e-12);
        let lower = f.effect_lower.unwrap();
        assert!(lower > 0.0 && lower < 3.0, "{lower}");
        // At its lower bound the test is exactly at its threshold.
        let v = t.variance();
        let at = ln_mixture((3.0 - lower) / libm::sqrt(v), v);
        assert!((at - libm::log(100.0)).abs() < 1e-6, "{at}");
    }

    #[test]
    fn equal_arms_are_no_evidence_and_better_is_not_worse() {
        let mut same = fed(&wiggle(200, 0.0), &wiggle(200, 0.0));
        assert!(same.judge(SET, 1000).ln_e < 0.0);
        let mut better = fed(&wiggle(200, -1.0), &wiggle(200, 0.0));
        assert!(!better.judge(SET, 1000).rejected);
        let lower_is_worse = Settings {
            higher_is_worse: false,
            ..SET
        };
        let mut t = fed(&wiggle(200, -1.0), &wiggle(200, 0.0));
        assert!(
            t.judge(lower_is_worse, 1000).rejected,
            "lower is worse here"
        );
    }

    #[test]
    fn a_relative_margin_is_taken_of_the_baseline_at_burn_in_and_kept() {
        let set = Settings {
            margin: 0.1,
            relative: true,
            scale: None,
            ..SET
        };
        let mut t = fed(&wiggle(12, 100.0), &wiggle(12, 100.0));
        let _ = t.judge(set, 1000);
        assert_eq!(t.null, Some(10.0));
        assert_eq!(t.scale, Some(10.0), "the scale defaults to the margin");
        for _ in 0..100 {
            t.observe(false, 500.0);
        }
        let _ = t.judge(set, 2000);
        assert_eq!(t.null, Some(10.0));
    }

    #[test]
    fn a_constant_stream_does_not_divide_by_zero() {
        let mut t = fed(&[1.0; 10], &[1.0; 10]);
        let f = t.judge(SET, 1000);
        assert!(f.ln_e.is_finite());
        let mut t = fed(&[2.0; 10], &[1.0; 10]);
        let f = t.judge(SET, 1000);
        assert!(f.ln_e.is_finite() && f.rejected);
        let mut t = fed(&[1e100; 10], &[-1e100; 10]);
        let f = t.judge(SET, 1000);
        assert!(f.ln_e.is_finite() && f.rejected);
        let mut t = fed(&[-1e100; 10], &[1e100; 10]);
        let f = t.judge(SET, 1000);
        assert!(f.ln_e.is_finite() && !f.rejected);
    }
}
