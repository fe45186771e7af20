//! `cusum`: Page's cumulative sum against the version's own reference, for the bake
//! after a promotion and the steady phase, where there is no second arm to compare
//! with and the change time is unknown.
//!
//! Each sample is standardised against the reference (its mean μ0 and deviation σ0,
//! given in the rule or learned from the version's first `samples_min` samples), then
//!
//!   S ← max(0, S + z − k),  k = shift / 2,  alarm when S > h
//!
//! (one-sided: z is signed so that worse is positive). CUSUM is the fastest detector of
//! a shift of the size it is tuned for at a given false-alarm rate (Lorden 1971;
//! Moustakides 1986). The threshold h comes from the target in-control average run
//! length ARL0 (samples between false alarms) through Siegmund's approximation
//! ARL0 ≈ (e^{2kb} − 2kb − 1)/(2k²), b = h + 1.166, within 1 % of the Markov-chain
//! values at the usual settings (k = ½: h = 4 gives 338 against 335.4, h = 5 gives 938
//! against 930.9). The point where S last left 0 is the onset estimate.

use serde::{Deserialize, Serialize};

use super::mean::Moments;
use crate::time::Timestamp;

/// Highest threshold h the ARL0 search considers (ARL0 beyond 10^40 samples).
const H_MAX: f64 = 100.0;
/// Bisection steps for h (exact to 100 / 2^60).
const BISECTIONS: u32 = 60;
/// Smallest reference deviation, relative to the reference mean's size: a constant
/// reference stream would otherwise make every later sample infinitely surprising.
const SD_FLOOR: f64 = 1e-9;

/// The state of one `cusum` gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cusum {
    /// The chart's settings, derived from the gate's config when the gate starts (h
    /// takes a search; restore checks they still match the config).
    pub(crate) chart: Settings,
    /// The reference samples while it is being learned.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub(crate) learning: Moments,
    /// The reference mean and deviation, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<Reference>,
    /// The cumulative sum S (in reference deviations).
    #[serde(default)]
    pub(crate) sum: f64,
    /// Samples judged against the reference.
    #[serde(default)]
    pub(crate) used: u64,
    /// When S last left 0: the onset estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<Timestamp>,
    /// When S first crossed the threshold (an alarm holds for the phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alarm_at: Option<Timestamp>,
    /// The onset of the alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) onset: Option<Timestamp>,
}

pub(crate) fn is_empty(m: &Moments) -> bool {
    m.n == 0
}

/// A reference mean and standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reference {
    pub(crate) mean: f64,
    pub(crate) sd: f64,
}

impl Reference {
    /// The reference the samples in `m` give (their mean and standard deviation, the
    /// deviation floored at `SD_FLOOR` of the mean's size).
    pub(crate) fn learned(m: &Moments) -> Self {
        let floor = SD_FLOOR * m.mean.abs().max(1.0);
        let sd = libm::sqrt(m.variance());
        Self {
            mean: m.mean,
            sd: if sd > floor { sd } else { floor },
        }
    }
}

/// The chart's settings, from the gate's rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    pub(crate) higher_is_worse: bool,
    /// k, in reference deviations.
    pub(crate) k: f64,
    /// h, in reference deviations.
    pub(crate) h: f64,
    /// A reference given in the rule, or `None` to learn it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<Reference>,
    /// Samples to learn the reference from.
    pub(crate) learn: u64,
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    pub(crate) ready: bool,
    pub(crate) alarm: bool,
    /// The chart's statistic: the cumulative sum, or the EWMA z.
    pub(crate) statistic: f64,
    pub(crate) reference: Option<Reference>,
    pub(crate) used: u64,
    pub(crate) onset: Option<Timestamp>,
}

impl Cusum {
    /// A chart with these settings, before any sample.
    pub(crate) fn new(chart: Settings) -> Self {
        Self {
            chart,
            learning: Moments::default(),
            reference: chart.reference,
            sum: 0.0,
            used: 0,
            since: None,
            alarm_at: None,
            onset: None,
        }
    }

    /// One sample of the judged arm at `at`.
    #[inline]
    pub(crate) fn observe(&mut self, at: Timestamp, x: f64) {
        let set = self.chart;
        let Some(r) = self.reference else {
            self.learning.add(x);
            if self.learning.n >= set.learn.max(2) {
                self.reference = Some(Reference::learned(&self.learning));
                self.learning = Moments::default();
            }
            return;
        };
        if self.alarm_at.is_some() || self.used >= super::mean::COUNT_MAX {
            return;
        }
        self.used += 1;
        let z = (x - r.mean) / r.sd;
        let z = if set.higher_is_worse { z } else { -z };
        let next = self.sum + z - set.k;
        if next > 0.0 {
            if self.sum == 0.0 {
                self.since = Some(at);
            }
            self.sum = next;
            if next > set.h {
                self.alarm_at = Some(at);
                self.onset = self.since;
            }
        } else {
            self.sum = 0.0;
            self.since = None;
        }
    }

    pub(crate) fn judge(&self) -> Finding {
        Finding {
            ready: self.reference.is_some(),
            alarm: self.alarm_at.is_some(),
            statistic: self.sum,
            reference: self.reference,
            used: self.used,
            onset: self.onset,
        }
    }
}

/// Siegmund's approximation of the one-sided CUSUM's in-control ARL for N(0, 1) data.
pub(crate) fn arl0(k: f64, h: f64) -> f64 {
    let b = h + 1.166;
    if k == 0.0 {
        return b * b;
    }
    let a = 2.0 * k * b;
    (libm::exp(a) - a - 1.0) / (2.0 * k * k)
}

/// The threshold h whose ARL0 is `target` samples, for the reference value `k`.
pub(crate) fn threshold_for(k: f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, H_MAX);
    for _ in 0..BISECTIONS {
        let mid = 0.5 * (lo + hi);
        if arl0(k, mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(h: f64) -> Settings {
        Settings {
            higher_is_worse: true,
            k: 0.5,
            h,
            reference: Some(Reference { mean: 0.0, sd: 1.0 }),
            learn: 2,
        }
    }

    #[test]
    fn siegmund_is_within_one_percent_of_the_markov_chain_values() {
        // Brook-Evans, 400 states (STATISTICS.md): one-sided ARL0 at k = 1/2.
        for (h, want) in [(4.0, 335.4), (5.0, 930.9)] {
            let got = arl0(0.5, h);
            assert!((got / want - 1.0).abs() < 0.01, "h = {h}: {got}");
        }
        let h = threshold_for(0.5, 335.4);
        assert!((arl0(0.5, h) - 335.4).abs() < 1e-9);
    }

    /// SplitMix64 and Box-Muller: N(0, 1) draws for the run-length check.
    struct Normal(u64);

    impl Normal {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn draw(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            libm::sqrt(-2.0 * libm::log(u)) * libm::cos(core::f64::consts::TAU * v)
        }
    }

    /// The mean run length of the chart to its alarm on N(shift, 1) data, over `runs`.
    fn average_run_length(h: f64, shift: f64, runs: u32, seed: u64) -> (f64, f64) {
        let mut rng = Normal(seed);
        let lengths: Vec<f64> = (0..runs)
            .map(|_| {
                let mut c = Cusum::new(set(h));
                let mut t = 0;
                while c.alarm_at.is_none() {
                    t += 1;
                    c.observe(t, shift + rng.draw());
                }
                t as f64
            })
            .collect();
        let n = f64::from(runs);
        let mean = lengths.iter().sum::<f64>() / n;
        let var = lengths.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / (n - 1.0);
        (mean, libm::sqrt(var / n))
    }

    /// The published run lengths of the one-sided CUSUM at k = 1/2 (Montgomery,
    /// "Introduction to Statistical Quality Control", table of ARLs for k = 0.5: h = 4
    /// gives 168 two-sided, 336 one-sided, and 8.38 at a 1σ shift; h = 5 gives 465
    /// two-sided, 930 one-sided, and 10.4; the one-sided in-control values are
    /// Brook-Evans Markov-chain results, 335.4 and 930.9): the chart as implemented
    /// runs that long, within four standard errors of a simulation.
    #[test]
    fn run_lengths_match_the_published_table() {
        for (h, arl0, arl1) in [(4.0, 335.4, 8.38), (5.0, 930.9, 10.38)] {
            let (mean, se) = average_run_length(h, 0.0, 20000, 9);
            eprintln!("h = {h}: ARL0 {mean:.1} ± {se:.1}");
            assert!(
                (mean - arl0).abs() < 4.0 * se,
                "h = {h}: ARL0 {mean} ± {se}"
            );
            let (mean, se) = average_run_length(h, 1.0, 3000, 8);
            eprintln!("h = {h}: ARL1 {mean:.2} ± {se:.2}");
            assert!(
                (mean - arl1).abs() < 4.0 * se,
                "h = {h}: ARL1 {mean} ± {se}"
            );
        }
    }

    #[test]
    fn the_sum_resets_at_zero_and_alarms_past_the_threshold() {
        let s = set(4.0);
        let mut c = Cusum::new(s);
        for (t, x) in [(1, -3.0), (2, 1.5), (3, 2.5), (4, 2.5)] {
            c.observe(t, x);
        }
        // -3 → 0; +1.0 (since 2); +2.0 → 3.0; +2.0 → 5.0 > 4: alarm at 4, onset 2.
        assert_eq!(c.sum, 5.0);
        assert_eq!(c.alarm_at, Some(4));
        assert_eq!(c.onset, Some(2));
        c.observe(5, -100.0);
        assert!(c.judge().alarm, "an alarm holds");
    }

    #[test]
    fn lower_is_worse_mirrors_the_sum() {
        let s = Settings {
            higher_is_worse: false,
            ..set(4.0)
        };
        let mut c = Cusum::new(s);
        for t in 1..=3 {
            c.observe(t, -3.0);
        }
        assert_eq!(c.alarm_at, Some(2));
    }

    #[test]
    fn the_reference_is_learned_from_the_first_samples() {
        let s = Settings {
            reference: None,
            learn: 4,
            ..set(4.0)
        };
        let mut c = Cusum::new(s);
        for (t, x) in [(1, 9.0), (2, 11.0), (3, 9.0), (4, 11.0)] {
            c.observe(t, x);
        }
        let r = c.reference.unwrap();
        assert_eq!(r.mean, 10.0);
        assert!((r.sd - libm::sqrt(4.0 / 3.0)).abs() < 1e-12);
        assert_eq!(c.used, 0);
        assert_eq!(c.learning, Moments::default());
        c.observe(5, 20.0);
        assert_eq!(c.used, 1);
        assert!(c.judge().alarm);
    }
}
