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
//! Latency and cost streams are serially correlated (a slow minute makes neighbouring
//! requests slow together), and then s²/n understates the variance of a mean: for an
//! AR(1) stream with lag-1 autocorrelation ρ the long-run variance is s²(1 + ρ)/(1 − ρ),
//! three times s² at ρ = ½, where the plain test rejects ten times too often. With
//! `autocorrelation: adjust` (the default) each arm's variance is widened by that
//! factor with ρ estimated from the arm's consecutive samples (a streaming
//! co-moment of each sample with the one before it, as Welford's), corrected for its
//! small-sample bias (Marriott and Pope, 1954: E ρ̂ ≈ ρ − (1 + 3ρ)/n, so ρ̂ + (1 + 3ρ̂)/n
//! is used) and clipped to [0, `RHO_MAX`]: negative correlation never narrows it. This
//! is the effective sample size n(1 − ρ)/(1 + ρ); it corrects AR(1)-like dependence
//! and shorter-range dependence conservatively, not long-range dependence.
//! Simulated at alpha 5 % with a 10-sample burn-in and evaluations every 10 samples
//! (`tests/sequential_mean.rs`, 300 rollouts each), AR(1) streams at φ = ½ were rolled
//! back in 3.0 % of rollouts with the adjustment and 33 % without, independent
//! Gaussian ones in 3.0 %, and a 1σ shift was still found after a median 20 samples
//! per arm.
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

/// The lag-1 co-moment of one arm's consecutive samples (Welford's online covariance
/// over the pairs (previous sample, sample)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lag {
    /// The arm's most recent sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last: Option<f64>,
    /// Pairs seen (one fewer than the samples since the state began).
    pub(crate) n: u64,
    /// Means of the pairs' first and second members.
    pub(crate) mean_prev: f64,
    pub(crate) mean_next: f64,
    /// Σ (previous − mean_prev)(sample − mean_next).
    pub(crate) c: f64,
}

/// The largest lag-1 autocorrelation the variance is widened for: a factor of at most
/// (1 + 0.9)/(1 − 0.9) = 19.
pub(crate) const RHO_MAX: f64 = 0.9;

impl Lag {
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        if let Some(prev) = self.last
            && self.n < COUNT_MAX
        {
            self.n += 1;
            let k = 1.0 / self.n as f64;
            let d_prev = prev - self.mean_prev;
            self.mean_prev += d_prev * k;
            self.mean_next += (x - self.mean_next) * k;
            self.c += d_prev * (x - self.mean_next);
        }
        self.last = Some(x);
    }

    /// Whether no sample has been seen.
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0 && self.last.is_none()
    }

    /// The long-run variance factor (1 + ρ)/(1 − ρ) of an arm with these moments:
    /// ρ = lag-1 autocovariance / variance plus its bias correction, clipped to
    /// [0, `RHO_MAX`]; 1 below two pairs or without spread.
    pub(crate) fn factor(&self, m: &Moments) -> f64 {
        if self.n < 2 || m.n < 3 || m.m2 <= 0.0 {
            return 1.0;
        }
        let rho = (self.c / self.n as f64) / (m.m2 / m.n as f64);
        let rho = rho + (1.0 + 3.0 * rho.max(0.0)) / self.n as f64;
        let rho = if rho > 0.0 { rho.min(RHO_MAX) } else { 0.0 };
        (1.0 + rho) / (1.0 - rho)
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
    /// Each arm's lag-1 co-moment (kept whatever the setting: it costs a few
    /// operations per sample and a snapshot stays valid if the setting changes).
    #[serde(default)]
    pub(crate) judged_lag: Lag,
    #[serde(default)]
    pub(crate) baseline_lag: Lag,
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
    /// Whether each arm's variance is widened for its serial correlation.
    pub(crate) serial: bool,
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
    /// V over the variance of independent samples, when serial correlation is
    /// adjusted for and the test has started.
    pub(crate) inflation: Option<f64>,
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
            self.judged_lag.add(x);
        } else {
            self.baseline.add(x);
            self.baseline_lag.add(x);
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
        let independent = self.variance();
        let v = if set.serial {
            self.serial_variance()
        } else {
            independent
        };
        let (ln_e, lower) = match (self.null, self.scale, effect) {
            (Some(null), Some(scale), Some(d)) => {
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
            inflation: (set.serial && started).then(|| {
                if independent > 0.0 {
                    v / independent
                } else {
                    1.0
                }
            }),
        }
    }

    /// V = s₁²/n + s₂²/m, the variance of the difference of means of independent
    /// samples.
    pub(crate) fn variance(&self) -> f64 {
        self.judged.variance() / self.judged.n as f64
            + self.baseline.variance() / self.baseline.n as f64
    }

    /// V with each arm's term widened by its long-run factor (1 + ρ)/(1 − ρ).
    pub(crate) fn serial_variance(&self) -> f64 {
        self.judged_lag.factor(&self.judged) * self.judged.variance() / self.judged.n as f64
            + self.baseline_lag.factor(&self.baseline) * self.baseline.variance()
                / self.baseline.n as f64
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
        serial: false,
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

    /// ρ̂ by two passes: the lag-1 sample autocovariance over the variance, each with
    /// its own means as the streaming version keeps them.
    fn two_pass_rho(x: &[f64]) -> f64 {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let pairs = x.len() - 1;
        let p = pairs as f64;
        let mp = x[..pairs].iter().sum::<f64>() / p;
        let mn = x[1..].iter().sum::<f64>() / p;
        let cov = x.windows(2).map(|w| (w[0] - mp) * (w[1] - mn)).sum::<f64>() / p;
        cov / var
    }

    #[test]
    fn the_lag_factor_is_the_bias_corrected_long_run_factor() {
        // A slow wave: strongly correlated neighbours.
        let wave: Vec<f64> = (0..400).map(|i| libm::sin(f64::from(i) / 15.0)).collect();
        // A fast alternation: negative correlation never narrows the variance.
        let alternating: Vec<f64> = (0..400).map(|i| [-1.0, 1.0][i % 2]).collect();
        // Mildly correlated: a moving sum of a fixed pseudo-random sequence.
        let base: Vec<f64> = (0..401)
            .map(|i| libm::sin(f64::from(i) * 12.9898) * 43_758.545_3 % 1.0)
            .collect();
        let mild: Vec<f64> = base.windows(2).map(|w| w[0] + w[1]).collect();
        for (x, expected_rho) in [(&wave, None), (&alternating, Some(0.0)), (&mild, None)] {
            let mut m = Moments::default();
            let mut lag = Lag::default();
            for &v in x.iter() {
                m.add(v);
                lag.add(v);
            }
            let raw = two_pass_rho(x);
            let corrected = raw + (1.0 + 3.0 * raw.max(0.0)) / (x.len() - 1) as f64;
            let rho = expected_rho.unwrap_or(corrected.clamp(0.0, RHO_MAX));
            let want = (1.0 + rho) / (1.0 - rho);
            let got = lag.factor(&m);
            assert!((got - want).abs() < 1e-9 * want, "{got} against {want}");
        }
        let mut m = Moments::default();
        let mut lag = Lag::default();
        for &v in &wave {
            m.add(v);
            lag.add(v);
        }
        assert_eq!(lag.factor(&m), (1.0 + RHO_MAX) / (1.0 - RHO_MAX), "clipped");
        assert!(two_pass_rho(&mild) > 0.3, "the moving sum is correlated");
        assert_eq!(Lag::default().factor(&Moments::default()), 1.0);
    }

    #[test]
    fn serial_correlation_widens_the_variance_and_weakens_the_evidence() {
        // The same two slow waves, one shifted: taken as independent the shift is
        // decisive; adjusted, the same data are much weaker evidence.
        let wave = |shift: f64| -> Vec<f64> {
            (0..200)
                .map(|i| shift + libm::sin(f64::from(i) / 4.0))
                .collect()
        };
        let mut t = fed(&wave(0.3), &wave(0.0));
        let plain = t.judge(SET, 1000);
        let mut t = fed(&wave(0.3), &wave(0.0));
        let adjusted = t.judge(
            Settings {
                serial: true,
                ..SET
            },
            1000,
        );
        assert_eq!(plain.inflation, None);
        let inflation = adjusted.inflation.expect("reported");
        assert!(inflation > 5.0, "{inflation}");
        assert!(adjusted.ln_e < plain.ln_e, "{adjusted:?} {plain:?}");
        assert!(adjusted.effect_lower.unwrap() < plain.effect_lower.unwrap());
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
