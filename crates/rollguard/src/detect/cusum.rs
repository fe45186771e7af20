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
//!
//! The default ARL0 is 10⁷ samples: a bake of an hour at 20 samples a second is
//! 72 000 samples, and the run length to a false alarm is close to exponential, so
//! 1 − exp(−72 000/10⁷) ≈ 0.7 % of healthy versions are rolled back in that hour
//! (at 10⁵, the former default, 51 %).
//!
//! Three things make the Gaussian ARL0 wrong for real streams, and the chart guards
//! against each (`detect/charts` in the detection benchmark; the tests below):
//!
//! - **The reference is an estimate.** Learned from n samples, its mean is off by
//!   about 1/√n reference deviations, and that error acts as a persistent shift for
//!   the whole phase: at n = 200 and ARL0 10⁷, 3.7 % of Gaussian A/A streams alarmed
//!   within 72 000 samples instead of 0.7 %. A learned reference's threshold is
//!   therefore derived for data whose mean is `GUARD` = 2.5 standard errors of the
//!   reference mean above it (k − 2.5/√n in place of k in Siegmund's formula: the
//!   chart keeps its ARL0 unless the reference mean is off by more, a one-sided
//!   0.6 % chance). That raises h (14.3 to 21.3 at n = 200) rather than k, which
//!   would cost far more at shifts near k (0.5σ: a median 1 700 samples instead of
//!   530 in simulation). A larger `samples_min` shrinks the guard. It is at most
//!   k/2 (the chart must still drift down in control): below (5/shift)² samples,
//!   25 at the default shift, the reference's error is only partly allowed for.
//! - **Serial correlation.** Latency is correlated from one request to the next; for
//!   an AR(1) stream with lag-1 autocorrelation ρ the sum of n samples has variance
//!   nσ²(1 + ρ)/(1 − ρ), three times nσ² at ρ = ½, and a chart standardised by σ
//!   alarms on every hour-long A/A stream. With `autocorrelation: adjust` (the
//!   default) the learned reference deviation is widened by that factor, with ρ from
//!   the reference samples' lag-1 co-moment exactly as `sequential_mean` estimates it
//!   (bias-corrected, clipped to [0, 0.9]). A `reference_sd` given in the rule is
//!   taken as the deviation to standardise by, as given.
//! - **Heavy tails.** Siegmund's formula assumes Gaussian increments; a Student-t₃ or
//!   lognormal stream has single samples of 5 to 10 deviations often enough to alarm
//!   on most hour-long A/A streams. With `clip` (default 3) each standardised sample
//!   is winsorised at ±3 before it enters the sum (a Huber-type CUSUM; Hawkins and
//!   Olwell, 1998, §5): one sample then adds at most 3 − k. On Gaussian data clipping
//!   only removes upward excursions beyond 3, so the real ARL0 is above Siegmund's
//!   and the guarantee stays conservative (tested); the cost is a slightly longer
//!   delay (in simulation with the guard, 1σ: a median 38 samples unclipped, 40
//!   clipped at 2.5). The bound is never below 2k, where the chart could no longer
//!   rise.
//!
//! In the detection benchmark (1 000 hour-long A/A runs at 20 samples a second,
//! reference learned from 200 samples) the defaults rolled back 0.0 % of Gaussian,
//! 0.6 % of AR(1) φ = ½, 0.1 % of Student-t₃ and 0.0 % of lognormal (s = 1)
//! candidates (the former defaults: 55 %, 100 %, 99.6 %, 100 %), and found a 1σ change
//! after a median 54 samples (26 before), a 0.5σ one after 436 (120 before). A
//! change of level the version's load brings to both arms is still a change to a
//! self-referenced chart (98–100 % of such hours): it cannot tell the environment
//! from a regression.

use serde::{Deserialize, Serialize};

use super::mean::{Lag, Moments};
use crate::time::Timestamp;

/// Highest threshold h the ARL0 search considers (ARL0 beyond 10^40 samples).
const H_MAX: f64 = 100.0;
/// Bisection steps for h (exact to 100 / 2^60).
const BISECTIONS: u32 = 60;
/// Smallest reference deviation, relative to the reference mean's size: a constant
/// reference stream would otherwise make every later sample infinitely surprising.
const SD_FLOOR: f64 = 1e-9;
/// Standard errors of the learned reference mean the threshold allows for (see the
/// module docs).
pub(crate) const GUARD: f64 = 2.5;

/// The shift, in reference deviations, that a learned reference's threshold is
/// derived for: `GUARD` standard errors of a mean of `learn` samples, at most `cap`
/// (0 for a reference given in the rule).
pub(crate) fn reference_error(learn: u64, given: bool, cap: f64) -> f64 {
    if given {
        0.0
    } else {
        (GUARD / libm::sqrt(learn.max(2) as f64)).min(cap)
    }
}

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
    /// The reference samples' lag-1 co-moment while it is being learned (absent in
    /// snapshots from before it was kept: the reference then takes them as
    /// independent).
    #[serde(default, skip_serializing_if = "Lag::is_empty")]
    pub(crate) learning_lag: Lag,
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
    /// The long-run variance factor (1 + ρ)/(1 − ρ) of the reference samples (1 for a
    /// given reference, and in snapshots from before it was learned).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub(crate) inflation: f64,
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

impl Reference {
    /// A reference given in the rule.
    pub(crate) fn given(mean: f64, sd: f64) -> Self {
        Self {
            mean,
            sd,
            inflation: 1.0,
        }
    }

    /// The reference the samples in `m` give (their mean and standard deviation, the
    /// deviation floored at `SD_FLOOR` of the mean's size), with the long-run factor
    /// of their lag-1 co-moment `lag`.
    pub(crate) fn learned(m: &Moments, lag: &Lag) -> Self {
        let floor = SD_FLOOR * m.mean.abs().max(1.0);
        let sd = libm::sqrt(m.variance());
        Self {
            mean: m.mean,
            sd: if sd > floor { sd } else { floor },
            inflation: lag.factor(m),
        }
    }

    /// The deviation samples are standardised by: σ, or σ·sqrt((1 + ρ)/(1 − ρ)) when
    /// serial correlation is adjusted for.
    pub(crate) fn scale(&self, serial: bool) -> f64 {
        if serial && self.inflation > 1.0 {
            self.sd * libm::sqrt(self.inflation)
        } else {
            self.sd
        }
    }
}

/// Learns the reference from the first samples: returns it once `learn` samples are
/// in (and resets the learning state).
#[inline]
pub(crate) fn learn(m: &mut Moments, lag: &mut Lag, learn: u64, x: f64) -> Option<Reference> {
    m.add(x);
    lag.add(x);
    if m.n >= learn.max(2) {
        let r = Reference::learned(m, lag);
        *m = Moments::default();
        *lag = Lag::default();
        Some(r)
    } else {
        None
    }
}

/// Sample `x` standardised against `r`, signed so that worse is positive and
/// winsorised at ±`clip`.
#[inline]
pub(crate) fn standardise(
    r: &Reference,
    x: f64,
    higher_is_worse: bool,
    serial: bool,
    clip: Option<f64>,
) -> f64 {
    let z = (x - r.mean) / r.scale(serial);
    let z = if higher_is_worse { z } else { -z };
    match clip {
        Some(c) => z.clamp(-c, c),
        None => z,
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
    /// Whether the learned deviation is widened for serial correlation (absent in
    /// snapshots from before the option: off).
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) serial: bool,
    /// The bound standardised samples are winsorised at (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clip: Option<f64>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// The winsorising bound a chart uses for the rule's `clip`: never below twice the
/// level a standardised sample must pass for the statistic to rise towards the alarm
/// (cusum's k, ewma's limit), where the chart could no longer alarm.
pub(crate) fn clip_bound(clip: Option<f64>, level: f64) -> Option<f64> {
    clip.map(|c| c.max(2.0 * level))
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
            learning_lag: Lag::default(),
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
            self.reference = learn(&mut self.learning, &mut self.learning_lag, set.learn, x);
            return;
        };
        if self.alarm_at.is_some() || self.used >= super::mean::COUNT_MAX {
            return;
        }
        self.used += 1;
        let z = standardise(&r, x, set.higher_is_worse, set.serial, set.clip);
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

/// Simulated streams for the charts' tests (seeded, deterministic).
#[cfg(test)]
pub(crate) mod sim {
    use crate::time::Timestamp;

    /// SplitMix64 and Box-Muller: N(0, 1) draws.
    pub(crate) struct Normal(pub(crate) u64);

    impl Normal {
        pub(crate) fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        pub(crate) fn draw(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            libm::sqrt(-2.0 * libm::log(u)) * libm::cos(core::f64::consts::TAU * v)
        }
    }

    /// Noise with mean 0 and variance 1, as the detection benchmark's nulls draw it.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Noise {
        Gaussian,
        /// AR(1) with this lag-1 autocorrelation.
        Ar1(f64),
        /// Student-t with 3 degrees of freedom over √3.
        StudentT3,
        /// exp(Z), centred and scaled.
        LogNormal,
    }

    pub(crate) struct Stream {
        rng: Normal,
        noise: Noise,
        ar: f64,
    }

    impl Stream {
        pub(crate) fn new(noise: Noise, seed: u64) -> Self {
            let mut rng = Normal(seed);
            // An AR(1) stream starts in its stationary distribution.
            let ar = rng.draw();
            Self { rng, noise, ar }
        }

        pub(crate) fn next(&mut self) -> f64 {
            match self.noise {
                Noise::Gaussian => self.rng.draw(),
                Noise::Ar1(phi) => {
                    self.ar = phi * self.ar + libm::sqrt(1.0 - phi * phi) * self.rng.draw();
                    self.ar
                }
                Noise::StudentT3 => {
                    let z = self.rng.draw();
                    let chi2: f64 = (0..3).map(|_| libm::pow(self.rng.draw(), 2.0)).sum();
                    z / libm::sqrt(chi2 / 3.0) / libm::sqrt(3.0)
                }
                Noise::LogNormal => {
                    let e = core::f64::consts::E;
                    let (mean, sd) = (libm::sqrt(e), libm::sqrt((e - 1.0) * e));
                    (libm::exp(self.rng.draw()) - mean) / sd
                }
            }
        }
    }

    /// A chart under simulation.
    pub(crate) trait Chart {
        fn step(&mut self, at: Timestamp, x: f64);
        fn alarmed(&self) -> bool;
    }

    impl Chart for super::Cusum {
        fn step(&mut self, at: Timestamp, x: f64) {
            self.observe(at, x);
        }
        fn alarmed(&self) -> bool {
            self.alarm_at.is_some()
        }
    }

    impl Chart for super::super::ewma::Ewma {
        fn step(&mut self, at: Timestamp, x: f64) {
            self.observe(at, x);
        }
        fn alarmed(&self) -> bool {
            self.alarm_at.is_some()
        }
    }

    /// Over `runs` streams, the share on which the chart (learning its reference from
    /// the first `learn` samples) alarms within `budget` samples, and the median delay
    /// (samples from the change to the alarm, among the runs that alarmed after it)
    /// when `shift` deviations are added from sample `onset` on.
    pub(crate) fn run<C: Chart>(
        new: impl Fn() -> C,
        noise: Noise,
        runs: u64,
        budget: u64,
        (shift, onset): (f64, u64),
        seed: u64,
    ) -> (f64, Option<f64>) {
        let mut alarms = 0;
        let mut delays = Vec::new();
        for r in 0..runs {
            let mut stream = Stream::new(noise, seed.wrapping_mul(1_000_003).wrapping_add(r));
            let mut c = new();
            for t in 0..budget {
                let x = stream.next() + if t >= onset { shift } else { 0.0 };
                c.step(t, x);
                if c.alarmed() {
                    alarms += 1;
                    if t >= onset {
                        delays.push((t - onset) as f64);
                    }
                    break;
                }
            }
        }
        delays.sort_by(f64::total_cmp);
        let median = (!delays.is_empty()).then(|| delays[delays.len() / 2]);
        (alarms as f64 / runs as f64, median)
    }
}

#[cfg(test)]
mod tests {
    use super::sim::{Noise, Normal, run};
    use super::*;

    fn set(h: f64) -> Settings {
        Settings {
            higher_is_worse: true,
            k: 0.5,
            h,
            reference: Some(Reference::given(0.0, 1.0)),
            serial: false,
            clip: None,
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

    /// The mean run length of the chart to its alarm on N(shift, 1) data, over `runs`.
    fn average_run_length(h: f64, shift: f64, runs: u32, seed: u64) -> (f64, f64) {
        run_length(set(h), shift, runs, seed)
    }

    /// The mean run length of a chart with these settings, and its standard error.
    fn run_length(s: Settings, shift: f64, runs: u32, seed: u64) -> (f64, f64) {
        let mut rng = Normal(seed);
        let lengths: Vec<f64> = (0..runs)
            .map(|_| {
                let mut c = Cusum::new(s);
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

    /// The chart a gate runs with a learned reference (k = ½).
    fn learned(arl0: f64, learn: u64, serial: bool, clip: Option<f64>) -> Settings {
        let k = 0.5;
        Settings {
            higher_is_worse: true,
            k,
            h: threshold_for(k - reference_error(learn, false, k / 2.0), arl0),
            reference: None,
            learn,
            serial,
            clip: clip_bound(clip, k),
        }
    }

    /// The A/A streams of the simulations: a reference from 200 samples, then 10 000
    /// samples at ARL0 10⁵, where a chart whose run length is exponential with that
    /// mean alarms on 1 − exp(−0.1) = 9.5 % of them.
    const LEARN: u64 = 200;
    const BUDGET: u64 = LEARN + 10_000;
    const ARL0: f64 = 1e5;
    const NOMINAL: f64 = 0.095;

    #[test]
    fn serial_correlation_is_adjusted_for() {
        let noise = Noise::Ar1(0.5);
        let rate = |serial| {
            let s = learned(ARL0, LEARN, serial, None);
            run(|| Cusum::new(s), noise, 300, BUDGET, (0.0, BUDGET), 21).0
        };
        let (adjusted, ignored) = (rate(true), rate(false));
        eprintln!("AR(1) ½: adjust {adjusted:.3}, ignore {ignored:.3} (nominal {NOMINAL})");
        // Near or below the nominal rate with the adjustment (300 runs: ±3.4 points at
        // 2 standard errors), far above it without.
        assert!(adjusted < NOMINAL + 0.035, "adjust: {adjusted}");
        assert!(ignored > 4.0 * NOMINAL, "ignore: {ignored}");
    }

    #[test]
    fn clipping_keeps_heavy_tails_honest() {
        for noise in [Noise::StudentT3, Noise::LogNormal] {
            let rate = |clip| {
                let s = learned(ARL0, LEARN, true, clip);
                run(|| Cusum::new(s), noise, 300, BUDGET, (0.0, BUDGET), 22).0
            };
            let (clipped, raw) = (rate(Some(3.0)), rate(None));
            eprintln!("{noise:?}: clip 3 {clipped:.3}, none {raw:.3}");
            assert!(clipped < NOMINAL + 0.035, "{noise:?} clipped: {clipped}");
            assert!(raw > 4.0 * NOMINAL, "{noise:?} unclipped: {raw}");
        }
    }

    /// Clipping only takes upward excursions beyond the bound away: on Gaussian data the
    /// chart runs longer than Siegmund's run length (and the Markov chain's, 335.4 at
    /// h = 4), never shorter.
    #[test]
    fn a_clipped_chart_is_conservative_on_gaussian_data() {
        for (clip, margin) in [(3.0, 2.0), (2.0, -4.0)] {
            let s = Settings {
                clip: Some(clip),
                ..set(4.0)
            };
            let (mean, se) = run_length(s, 0.0, 20000, 9);
            eprintln!("clip {clip}: ARL0 {mean:.1} ± {se:.1}");
            // At 3 the difference is small (not below by 2 standard errors); at 2 it is
            // clear (above by 4).
            assert!(mean > 335.4 - margin * se, "clip {clip}: {mean} ± {se}");
        }
    }

    /// A 1σ shift ten minutes in at 20 samples a second is still found fast with the
    /// new defaults; the price of an hour's 0.7 % is the delay.
    #[test]
    fn a_one_sigma_shift_is_still_found() {
        let onset = LEARN + 1000;
        let before = Settings {
            h: threshold_for(0.5, 1e5),
            ..learned(1e5, LEARN, false, None)
        };
        let after = learned(1e7, LEARN, true, Some(3.0));
        let found = |s: Settings| {
            run(
                || Cusum::new(s),
                Noise::Gaussian,
                300,
                onset + 3000,
                (1.0, onset),
                23,
            )
        };
        let ((_, d0), (share, d1)) = (found(before), found(after));
        let (d0, d1) = (d0.unwrap(), d1.unwrap());
        eprintln!("1σ: median delay {d0} samples before, {d1} after ({share:.3} alarmed)");
        assert!(share > 0.98, "{share}");
        assert!(d1 < 60.0 && d1 < 3.0 * d0, "{d0} → {d1}");
    }

    #[test]
    fn the_guard_raises_the_threshold_for_a_learned_reference() {
        assert_eq!(reference_error(200, true, 0.25), 0.0);
        // Capped below 100 samples.
        assert_eq!(reference_error(20, false, 0.25), 0.25);
        let e = reference_error(200, false, 0.25);
        assert!((e - 2.5 / libm::sqrt(200.0)).abs() < 1e-15);
        let (plain, guarded) = (threshold_for(0.5, 1e7), threshold_for(0.5 - e, 1e7));
        // Siegmund's ARL at the drift the guard allows for is the target.
        assert!((arl0(0.5 - e, guarded) / 1e7 - 1.0).abs() < 1e-9);
        assert!(guarded > plain + 5.0, "{plain} {guarded}");
    }

    #[test]
    fn the_reference_learns_its_serial_correlation() {
        let mut c = Cusum::new(Settings {
            reference: None,
            learn: 2000,
            serial: true,
            ..set(4.0)
        });
        let mut stream = sim::Stream::new(Noise::Ar1(0.5), 5);
        for t in 0..2000 {
            c.observe(t, stream.next());
        }
        let r = c.reference.unwrap();
        // ρ ≈ ½: (1 + ρ)/(1 − ρ) ≈ 3.
        assert!((r.inflation - 3.0).abs() < 0.6, "{}", r.inflation);
        assert!((r.scale(true) / r.sd - libm::sqrt(r.inflation)).abs() < 1e-12);
        assert_eq!(r.scale(false), r.sd);
        assert!(c.learning_lag.is_empty());
    }

    #[test]
    fn samples_are_winsorised_at_the_clip() {
        let mut c = Cusum::new(Settings {
            clip: Some(3.0),
            ..set(4.0)
        });
        c.observe(1, 100.0);
        // min(100, 3) − ½.
        assert_eq!(c.sum, 2.5);
        c.observe(2, 100.0);
        assert_eq!(c.alarm_at, Some(2));
        assert_eq!(clip_bound(Some(3.0), 2.0), Some(4.0));
        assert_eq!(clip_bound(None, 2.0), None);
    }
}
