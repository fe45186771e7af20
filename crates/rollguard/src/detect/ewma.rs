//! `ewma`: an exponentially weighted moving average chart against the version's own
//! reference, for the bake after a promotion and the steady phase (as `cusum`).
//!
//! Each sample is standardised against the reference (μ0, σ0: given in the rule or
//! learned from the version's first `samples_min` samples) and signed so that worse is
//! positive; then
//!
//!   z ← max(0, (1 − λ)·z + λ·x),  alarm when z > h = L·sqrt(λ / (2 − λ))
//!
//! the one-sided EWMA with a reflecting barrier at the target (Crowder and Hamilton,
//! 1992), which does not build up "credit" during good stretches that would slow the
//! detection of a later regression. Small λ averages many samples: it finds small,
//! lasting shifts and shrugs off isolated outliers that would trip a CUSUM tuned for
//! large ones. The limit L is derived from the target in-control average run length
//! ARL0 by the Markov-chain method of Brook and Evans (1972) as Lucas and Saccucci
//! (1990) apply it to the EWMA: the statistic's range [0, h] is cut into cells, the
//! barrier is a state of its own, and the run length from 0 solves (I − Q)·ARL = 1.
//! The same chain, two-sided and without the barrier, reproduces the published ARL
//! table (tests). The last time z left the barrier is the onset estimate.
//!
//! The default ARL0 (10⁷ samples), the guard against a learned reference's own error,
//! the adjustment for serial correlation and the winsorising `clip` are `cusum`'s (see
//! there); the guard's limit is the one whose run length is the target on data
//! shifted by 2.5 standard errors of the reference mean (at most `GUARD_MAX`), from the
//! same chain. The clip is never below 2h: z is an average of clipped samples, and
//! with λ near 1 (a Shewhart chart, h ≈ 5 at 10⁷) a bound of 3 would leave it unable
//! to alarm. In the detection benchmark (as for `cusum`; λ 0.05) the defaults rolled
//! back 0.1 % of Gaussian, Student-t₃ and lognormal and 0.9 % of AR(1) φ = ½ A/A
//! hours (the former defaults: 54 %, 99.3 %, 99.9 %, 100 %); a 1σ change is found
//! after a median 61 samples (27 before), a 0.5σ one far later, 4 001 samples and 13 %
//! not within the hour (99 before): λ 0.05 at ARL0 10⁷ has a limit near 1σ of the
//! standardised sample.

use serde::{Deserialize, Serialize};

use super::cusum::{Finding, Reference, is_empty, is_false, learn, standardise};
use super::mean::{COUNT_MAX, Lag, Moments};
use crate::time::Timestamp;

/// Cells of the chain over the statistic's range when deriving L from ARL0, for
/// λ = 1; smaller weights need more (`cells_for`).
const CELLS_MIN: u32 = 24;
/// Most cells: at the smallest λ the config allows (0.05), the run length is short of
/// what a 600-cell chain gives by 0.8 % at ARL0 10⁵ and 3.5 % at the largest ARL0
/// (10⁹), short in the safe direction: the limit comes out slightly high, so false
/// alarms come slightly rarer than the target (tests).
const CELLS_MAX: u32 = 120;
/// Largest limit L the ARL0 search considers.
const L_MAX: f64 = 12.0;
/// The step of the search for a bracket of L.
const BRACKET_STEP: f64 = 0.5;
/// Most chain solves the search for L spends.
const SOLVES_MAX: u32 = 60;
/// The search stops when L is bracketed this tightly.
const TOLERANCE: f64 = 1e-9;

/// The largest shift a learned reference's limit allows for, in reference deviations
/// (`cusum`'s guard at its default shift, half of its k).
pub(crate) const GUARD_MAX: f64 = 0.25;

/// The state of one `ewma` gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ewma {
    /// The chart's settings, derived from the gate's config when the gate starts (L
    /// takes a search; restore checks they still match the config).
    pub(crate) chart: Settings,
    /// The reference samples while it is being learned.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub(crate) learning: Moments,
    /// The reference samples' lag-1 co-moment while it is being learned (as `cusum`).
    #[serde(default, skip_serializing_if = "Lag::is_empty")]
    pub(crate) learning_lag: Lag,
    /// The reference mean and deviation, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<Reference>,
    /// The statistic z (in reference deviations, worse positive).
    #[serde(default)]
    pub(crate) z: f64,
    /// Samples judged against the reference.
    #[serde(default)]
    pub(crate) used: u64,
    /// When z last left the barrier: the onset estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<Timestamp>,
    /// When z first crossed the limit (an alarm holds for the phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alarm_at: Option<Timestamp>,
    /// The onset of the alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) onset: Option<Timestamp>,
}

/// The chart's settings, from the gate's rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    pub(crate) higher_is_worse: bool,
    /// The weight λ of each new sample, in (0, 1].
    pub(crate) lambda: f64,
    /// The control limit h of z, in reference deviations.
    pub(crate) h: f64,
    /// A reference given in the rule, or `None` to learn it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reference: Option<Reference>,
    /// Samples to learn the reference from.
    pub(crate) learn: u64,
    /// Whether the learned deviation is widened for serial correlation (as `cusum`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) serial: bool,
    /// The bound standardised samples are winsorised at (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clip: Option<f64>,
}

impl Ewma {
    /// A chart with these settings, before any sample.
    pub(crate) fn new(chart: Settings) -> Self {
        Self {
            chart,
            learning: Moments::default(),
            learning_lag: Lag::default(),
            reference: chart.reference,
            z: 0.0,
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
        if self.alarm_at.is_some() || self.used >= COUNT_MAX {
            return;
        }
        self.used += 1;
        let d = standardise(&r, x, set.higher_is_worse, set.serial, set.clip);
        let next = (1.0 - set.lambda) * self.z + set.lambda * d;
        if next > 0.0 {
            if self.z == 0.0 {
                self.since = Some(at);
            }
            self.z = next;
            if next > set.h {
                self.alarm_at = Some(at);
                self.onset = self.since;
            }
        } else {
            self.z = 0.0;
            self.since = None;
        }
    }

    pub(crate) fn judge(&self) -> Finding {
        Finding {
            ready: self.reference.is_some(),
            alarm: self.alarm_at.is_some(),
            statistic: self.z,
            reference: self.reference,
            used: self.used,
            onset: self.onset,
        }
    }
}

/// The asymptotic standard deviation of z, in sample deviations: sqrt(λ / (2 − λ)).
pub(crate) fn sd_factor(lambda: f64) -> f64 {
    libm::sqrt(lambda / (2.0 - lambda))
}

/// Φ, the standard normal distribution function.
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * core::f64::consts::FRAC_1_SQRT_2)
}

/// Which chart a run length is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sides {
    /// One-sided, reflected at 0: the chart as the gate runs it.
    Reflected,
    /// The textbook two-sided chart with limits ±h (for the published tables).
    #[cfg_attr(not(test), allow(dead_code))]
    Two,
}

/// The average run length from z = 0 of an EWMA with weight λ and limit h (in sample
/// deviations) on N(shift, 1) data, by a Markov chain over `cells` cells.
pub(crate) fn average_run_length(lambda: f64, h: f64, shift: f64, sides: Sides, cells: u32) -> f64 {
    let n = cells as usize;
    // States: for `Reflected`, 0 is the barrier and 1..=n the cells of (0, h]; for
    // `Two`, 0..n the cells of [−h, h] (n odd, so that 0 is a cell's middle).
    let (lo, width, states) = match sides {
        Sides::Reflected => (0.0, h / cells as f64, n + 1),
        Sides::Two => (-h, 2.0 * h / cells as f64, n),
    };
    let value = |i: usize| match sides {
        Sides::Reflected if i == 0 => 0.0,
        Sides::Reflected => lo + (i as f64 - 0.5) * width,
        Sides::Two => lo + (i as f64 + 0.5) * width,
    };
    // P(next ≤ y | z) for next = (1 − λ)z + λX, X ~ N(shift, 1).
    let below = |y: f64, z: f64| normal_cdf((y - (1.0 - lambda) * z) / lambda - shift);
    // The linear system (I − Q)·arl = 1, row-major, with the right side appended.
    let cols = states + 1;
    let mut m = vec![0.0; states * cols];
    for i in 0..states {
        let z = value(i);
        for j in 0..states {
            let p = match sides {
                Sides::Reflected if j == 0 => below(0.0, z),
                Sides::Reflected => {
                    below(lo + j as f64 * width, z) - below(lo + (j - 1) as f64 * width, z)
                }
                Sides::Two => {
                    below(lo + (j + 1) as f64 * width, z) - below(lo + j as f64 * width, z)
                }
            };
            m[i * cols + j] = if i == j { 1.0 - p } else { -p };
        }
        m[i * cols + states] = 1.0;
    }
    // Gaussian elimination with partial pivoting (the matrix is diagonally dominant
    // in practice; pivoting costs nothing here).
    for k in 0..states {
        let pivot = (k..states)
            .max_by(|&a, &b| m[a * cols + k].abs().total_cmp(&m[b * cols + k].abs()))
            .unwrap_or(k);
        if pivot != k {
            for c in 0..cols {
                m.swap(k * cols + c, pivot * cols + c);
            }
        }
        let d = m[k * cols + k];
        if d == 0.0 {
            return f64::INFINITY;
        }
        for r in k + 1..states {
            let f = m[r * cols + k] / d;
            if f != 0.0 {
                for c in k..cols {
                    m[r * cols + c] -= f * m[k * cols + c];
                }
            }
        }
    }
    let mut arl = vec![0.0; states];
    for k in (0..states).rev() {
        let mut s = m[k * cols + states];
        for c in k + 1..states {
            s -= m[k * cols + c] * arl[c];
        }
        arl[k] = s / m[k * cols + k];
    }
    let start = match sides {
        Sides::Reflected => 0,
        Sides::Two => n / 2,
    };
    arl[start]
}

/// Cells for weight λ: the chain's error in the run length falls as 1/(λ·cells²).
fn cells_for(lambda: f64) -> u32 {
    let cells = 26.0 / libm::sqrt(lambda);
    (cells as u32).clamp(CELLS_MIN, CELLS_MAX)
}

/// The limit h (in sample deviations) whose run length is `target` samples on
/// N(`shift`, 1) data (0 in control; a learned reference's guard, see `cusum`), for
/// the reflected one-sided chart with weight λ. ln ARL is close to linear in the
/// limit, so regula falsi (the Illinois variant) on it converges in a few solves
/// where bisection would take forty.
pub(crate) fn limit_for(lambda: f64, target: f64, shift: f64) -> f64 {
    let factor = sd_factor(lambda);
    let cells = cells_for(lambda);
    let goal = libm::log(target);
    let f = |l: f64| {
        libm::log(average_run_length(
            lambda,
            l * factor,
            shift,
            Sides::Reflected,
            cells,
        )) - goal
    };
    // Bracket the limit in half steps from 0: ln ARL is far from the target only
    // by a few units at the bracket's ends, where the solve is well conditioned (the
    // chain's error grows with the run length: arl0 is capped for this).
    let (mut a, mut fa) = (0.0, f(0.0));
    if fa >= 0.0 {
        return 0.0;
    }
    let (mut b, mut fb);
    loop {
        b = a + BRACKET_STEP;
        fb = f(b);
        // NaN: a run length too long for the chain to resolve, so past the target.
        if fb > 0.0 || fb.is_nan() {
            break;
        }
        if b >= L_MAX {
            return L_MAX * factor;
        }
        (a, fa) = (b, fb);
    }
    let mut side = 0i8;
    for _ in 0..SOLVES_MAX {
        let c = (a * fb - b * fa) / (fb - fa);
        if !(c > a && c < b) || b - a < TOLERANCE {
            break;
        }
        let fc = f(c);
        if fc == 0.0 {
            return c * factor;
        }
        if fc > 0.0 {
            (b, fb) = (c, fc);
            if side == 1 {
                fa *= 0.5;
            }
            side = 1;
        } else {
            (a, fa) = (c, fc);
            if side == -1 {
                fb *= 0.5;
            }
            side = -1;
        }
    }
    b * factor
}

#[cfg(test)]
mod tests {
    use super::super::cusum::sim::{Noise, Normal, run};
    use super::super::cusum::{clip_bound, reference_error};
    use super::*;

    /// The published two-sided ARLs (STATISTICS.md, Lucas and Saccucci 1990; N(0, 1)
    /// data, asymptotic limits): (λ, L) → ARL0, ARL at 0.5σ, at 1σ, at 2σ.
    const TABLE: [(f64, f64, [f64; 4]); 3] = [
        (0.05, 2.490, [370.4, 26.5, 10.74, 4.98]),
        (0.10, 2.702, [370.4, 28.2, 9.74, 4.18]),
        (0.20, 2.859, [370.4, 36.2, 9.80, 3.59]),
    ];

    #[test]
    fn the_chain_reproduces_the_published_two_sided_table() {
        for (lambda, l, want) in TABLE {
            let h = l * sd_factor(lambda);
            for (shift, want) in [0.0, 0.5, 1.0, 2.0].into_iter().zip(want) {
                let got = average_run_length(lambda, h, shift, Sides::Two, 301);
                assert!(
                    (got / want - 1.0).abs() < 0.01,
                    "λ {lambda}, shift {shift}: {got} against {want}"
                );
            }
        }
    }

    #[test]
    fn the_gate_s_chain_is_close_to_a_fine_one() {
        for lambda in [0.05, 0.1, 0.2, 0.3, 0.5, 1.0] {
            for target in [100.0, 1e5, 1e7, crate::config::limits::EWMA_ARL0_MAX] {
                let h = limit_for(lambda, target, 0.0);
                let cells = cells_for(lambda);
                let coarse = average_run_length(lambda, h, 0.0, Sides::Reflected, cells);
                let fine = average_run_length(lambda, h, 0.0, Sides::Reflected, 600);
                eprintln!(
                    "λ {lambda}, ARL0 {target}: {cells} cells, {:.4}",
                    coarse / fine - 1.0
                );
                assert!((coarse / target - 1.0).abs() < 1e-6, "λ {lambda}: {coarse}");
                // Short, and by little: the realised ARL0 is at least the target.
                assert!(coarse <= fine * 1.0001, "λ {lambda}: {coarse} vs {fine}");
                assert!(coarse / fine > 0.96, "λ {lambda}: {coarse} vs {fine}");
            }
        }
    }

    fn set(lambda: f64, h: f64) -> Settings {
        Settings {
            higher_is_worse: true,
            lambda,
            h,
            reference: Some(Reference::given(0.0, 1.0)),
            serial: false,
            clip: None,
            learn: 2,
        }
    }

    /// The mean run length of the gate's chart on N(shift, 1) data, over `runs`.
    fn simulated_run_length(s: Settings, shift: f64, runs: u32, seed: u64) -> (f64, f64) {
        let mut rng = Normal(seed);
        let lengths: Vec<f64> = (0..runs)
            .map(|_| {
                let mut c = Ewma::new(s);
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

    /// The chart as implemented runs as long as the chain says, in control and at a
    /// 1σ shift, within four standard errors of a simulation.
    #[test]
    fn the_chart_runs_as_long_as_its_chain_says() {
        for lambda in [0.1, 0.25] {
            let h = limit_for(lambda, 500.0, 0.0);
            let s = set(lambda, h);
            for (shift, runs) in [(0.0, 6000), (1.0, 4000)] {
                let want = average_run_length(lambda, h, shift, Sides::Reflected, 600);
                let (mean, se) = simulated_run_length(s, shift, runs, 11);
                eprintln!("λ {lambda} shift {shift}: {mean:.1} ± {se:.1} (chain {want:.1})");
                assert!(
                    (mean - want).abs() < 4.0 * se,
                    "λ {lambda}, shift {shift}: {mean} ± {se} vs {want}"
                );
            }
        }
    }

    #[test]
    fn z_reflects_at_zero_and_alarms_past_the_limit() {
        let mut c = Ewma::new(set(0.5, 1.0));
        for (t, x) in [(1, -3.0), (2, 1.0), (3, 1.0), (4, 2.0)] {
            c.observe(t, x);
        }
        // -3 → 0; 0.5 (since 2); 0.75; 1.375 > 1: alarm at 4, onset 2.
        assert_eq!(c.z, 1.375);
        assert_eq!(c.alarm_at, Some(4));
        assert_eq!(c.onset, Some(2));
        c.observe(5, -100.0);
        assert!(c.judge().alarm, "an alarm holds");
    }

    #[test]
    fn lower_is_worse_mirrors_the_statistic() {
        let mut c = Ewma::new(Settings {
            higher_is_worse: false,
            ..set(0.5, 1.0)
        });
        for t in 1..=3 {
            c.observe(t, -3.0);
        }
        assert_eq!(c.alarm_at, Some(1));
    }

    #[test]
    fn the_reference_is_learned_from_the_first_samples() {
        let mut c = Ewma::new(Settings {
            reference: None,
            learn: 4,
            ..set(0.5, 1.0)
        });
        for (t, x) in [(1, 9.0), (2, 11.0), (3, 9.0), (4, 11.0)] {
            c.observe(t, x);
        }
        let r = c.reference.unwrap();
        assert_eq!(r.mean, 10.0);
        assert_eq!(c.used, 0);
        c.observe(5, 20.0);
        assert_eq!(c.used, 1);
        assert!(c.judge().alarm);
    }

    #[test]
    fn a_larger_target_gives_a_higher_limit() {
        let a = limit_for(0.1, 1e3, 0.0);
        let b = limit_for(0.1, 1e6, 0.0);
        assert!(a < b, "{a} {b}");
    }

    /// The chart a gate runs with a learned reference (λ 0.05, the default).
    fn learned(arl0: f64, learn: u64, serial: bool, clip: Option<f64>) -> Settings {
        let lambda = 0.05;
        let h = limit_for(lambda, arl0, reference_error(learn, false, GUARD_MAX));
        Settings {
            higher_is_worse: true,
            lambda,
            h,
            reference: None,
            learn,
            serial,
            clip: clip_bound(clip, h),
        }
    }

    /// As in `cusum`'s tests: 10 000 samples after a reference of 200 at ARL0 10⁵,
    /// 9.5 % of A/A streams for an exponential run length.
    const LEARN: u64 = 200;
    const BUDGET: u64 = LEARN + 10_000;
    const ARL0: f64 = 1e5;
    const NOMINAL: f64 = 0.095;

    #[test]
    fn serial_correlation_is_adjusted_for() {
        let rate = |serial| {
            let s = learned(ARL0, LEARN, serial, None);
            run(
                || Ewma::new(s),
                Noise::Ar1(0.5),
                300,
                BUDGET,
                (0.0, BUDGET),
                31,
            )
            .0
        };
        let (adjusted, ignored) = (rate(true), rate(false));
        eprintln!("AR(1) ½: adjust {adjusted:.3}, ignore {ignored:.3} (nominal {NOMINAL})");
        assert!(adjusted < NOMINAL + 0.035, "adjust: {adjusted}");
        assert!(ignored > 4.0 * NOMINAL, "ignore: {ignored}");
    }

    #[test]
    fn clipping_keeps_heavy_tails_honest() {
        for noise in [Noise::StudentT3, Noise::LogNormal] {
            let rate = |clip| {
                let s = learned(ARL0, LEARN, true, clip);
                run(|| Ewma::new(s), noise, 300, BUDGET, (0.0, BUDGET), 32).0
            };
            let (clipped, raw) = (rate(Some(3.0)), rate(None));
            eprintln!("{noise:?}: clip 3 {clipped:.3}, none {raw:.3}");
            assert!(clipped < NOMINAL + 0.035, "{noise:?} clipped: {clipped}");
            assert!(raw > 3.0 * NOMINAL, "{noise:?} unclipped: {raw}");
        }
    }

    #[test]
    fn a_clipped_chart_is_conservative_on_gaussian_data() {
        let h = limit_for(0.25, 500.0, 0.0);
        for (clip, margin) in [(3.0, 2.0), (1.5, -4.0)] {
            let s = Settings {
                clip: clip_bound(Some(clip), h),
                ..set(0.25, h)
            };
            let (mean, se) = simulated_run_length(s, 0.0, 6000, 12);
            eprintln!("clip {clip}: ARL0 {mean:.1} ± {se:.1} (chain 500)");
            assert!(mean > 500.0 - margin * se, "clip {clip}: {mean} ± {se}");
        }
    }

    #[test]
    fn a_one_sigma_shift_is_still_found() {
        let onset = LEARN + 1000;
        let before = Settings {
            h: limit_for(0.05, 1e5, 0.0),
            ..learned(1e5, LEARN, false, None)
        };
        let after = learned(1e7, LEARN, true, Some(3.0));
        let found = |s: Settings| {
            run(
                || Ewma::new(s),
                Noise::Gaussian,
                300,
                onset + 3000,
                (1.0, onset),
                33,
            )
        };
        let ((_, d0), (share, d1)) = (found(before), found(after));
        let (d0, d1) = (d0.unwrap(), d1.unwrap());
        eprintln!("1σ: median delay {d0} samples before, {d1} after ({share:.3} alarmed)");
        assert!(share > 0.98, "{share}");
        assert!(d1 < 70.0 && d1 < 3.0 * d0, "{d0} → {d1}");
    }

    /// The guard's limit is the one whose run length on data shifted by the guard is
    /// the target: higher than the plain one.
    #[test]
    fn the_guard_raises_the_limit_for_a_learned_reference() {
        let e = reference_error(200, false, GUARD_MAX);
        let (plain, guarded) = (limit_for(0.05, 1e7, 0.0), limit_for(0.05, 1e7, e));
        let cells = cells_for(0.05);
        let arl = average_run_length(0.05, guarded, e, Sides::Reflected, cells);
        assert!((arl / 1e7 - 1.0).abs() < 1e-6, "{arl}");
        assert!(guarded > plain * 1.1, "{plain} {guarded}");
    }

    #[test]
    fn a_large_lambda_keeps_a_clip_it_can_alarm_past() {
        let h = limit_for(1.0, 1e7, 0.0);
        assert!(h > 5.0, "{h}");
        let mut c = Ewma::new(Settings {
            clip: clip_bound(Some(3.0), h),
            ..set(1.0, h)
        });
        c.observe(1, 100.0);
        assert!(c.judge().alarm);
        // Clipped at 3 it could never pass h.
        let mut c = Ewma::new(Settings {
            clip: Some(3.0),
            ..set(1.0, h)
        });
        c.observe(1, 100.0);
        assert!(!c.judge().alarm);
    }
}
