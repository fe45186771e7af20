//! `sequential_quantile`: an anytime-valid two-sample test of a quantile (p50 … p99),
//! from Howard and Ramdas's confidence sequences for quantiles ("Sequential estimation
//! of quantiles with applications to A/B-testing and best-arm identification",
//! Bernoulli 2022; confseq's `quantile_ab_p_value`).
//!
//! For a fixed value v, whether a sample exceeds v is a Bernoulli trial. If an arm's
//! p-quantile q is at most v, a sample exceeds v with probability at most 1 − p; if q
//! is at least v, a sample falls below v with probability at most p. Either count is
//! tested with the one-sided Beta-binomial mixture of
//! [`attribution::beta_mixture_ln_e`](super::attribution::beta_mixture_ln_e), with a
//! prior worth `mixing_events` samples beyond the quantile; each is an e-process, and a
//! count past v never exceeds the count past the quantile itself, so one e-process per
//! arm bounds the evidence at every v at once (the argument of Howard and Ramdas's
//! Theorem 1). That gives each arm a confidence sequence for its quantile at level
//! α/2 per side.
//!
//! The null is "the judged quantile is at most g(baseline quantile)", g(x) = (1 + m)x
//! for a relative margin, x + m for an absolute one (mirrored when lower is worse).
//! For every v, either v ≥ q_judged (the judged arm's exceedance count above v is
//! dominated by an e-process) or g⁻¹(v) < q_baseline (the baseline's count below
//! g⁻¹(v) is): so M = sup_v min(E_judged(v), E_baseline(g⁻¹(v))) is at most the larger
//! of two e-processes, and P(ever M ≥ 2/α) ≤ α by Ville's inequality, however often it
//! is evaluated. The reported ln E is ln(M/2): the gate fails once it reaches ln(1/α),
//! which is when the judged arm's lower confidence bound passes g of the baseline's
//! upper one.
//!
//! The samples are counted in the metric's quantile histogram (log-linear bins from
//! the IEEE-754 bits, 1/64 relative error): counts of samples beyond a bin edge are
//! exact, so v runs over the bin edges and each count is rounded the safe way (a bin
//! counts below a value only when all of it is below). The histogram's resolution
//! widens the bounds by at most one bin and never breaks the guarantee.
//!
//! State: per arm the histogram since the phase began, the count, min and max; the
//! running extremes of ln E at evaluations.

use serde::{Deserialize, Serialize};

use super::attribution::beta_mixture_ln_e;
use crate::stats::histogram::HistShape;
use crate::stats::{lower, upper};
use crate::time::Timestamp;

/// Counts stop here: every count stays exact as an `f64` and in JSON.
pub(crate) const COUNT_MAX: u64 = 1 << 53;

/// One arm's samples since the phase began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Arm {
    pub(crate) n: u64,
    /// Smallest and largest sample (0 before any).
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Samples per bin of the metric's histogram; empty before the first sample.
    #[serde(with = "sparse", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) bins: Vec<u64>,
}

impl Arm {
    #[inline]
    pub(crate) fn add(&mut self, h: HistShape, x: f64) {
        if self.n >= COUNT_MAX {
            return;
        }
        if self.bins.is_empty() {
            self.bins = vec![0; h.len() as usize];
        }
        if let Some(c) = self.bins.get_mut(h.bin(x)) {
            *c += 1;
        } else {
            return;
        }
        if self.n == 0 {
            (self.min, self.max) = (x, x);
        } else {
            (self.min, self.max) = (lower(self.min, x), upper(self.max, x));
        }
        self.n += 1;
    }

    /// `prefix[b]`: samples in the bins below `b` (`len + 1` entries).
    fn prefix(&self, len: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(len + 1);
        let mut sum = 0u64;
        out.push(0);
        for b in 0..len {
            sum = sum.saturating_add(self.bins.get(b).copied().unwrap_or(0));
            out.push(sum);
        }
        out
    }

    /// The nearest-rank p-quantile (rank ⌈p·n⌉): the midpoint of its bin, clamped to
    /// the arm's min and max (which stand for the end bins).
    fn estimate(&self, h: HistShape, p: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = libm::ceil(p * self.n as f64).max(1.0);
        let last = h.len() as usize - 1;
        let mut seen = 0u64;
        for (b, &c) in self.bins.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen as f64 >= rank {
                let x = if b == 0 {
                    self.min
                } else if b == last {
                    self.max
                } else {
                    h.midpoint(b)
                };
                return Some(x.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

/// The state of one `sequential_quantile` gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuantileTest {
    pub(crate) judged: Arm,
    pub(crate) baseline: Arm,
    /// The largest ln E at an evaluation: the always-valid p-value is exp(−this).
    #[serde(default)]
    pub(crate) ln_e_max: f64,
    /// The smallest ln E at an evaluation after the burn-in, and when (the onset).
    #[serde(default)]
    pub(crate) ln_e_min: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) low_at: Option<Timestamp>,
}

/// The test's settings, from the gate's rule and stat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    pub(crate) alpha: f64,
    /// The quantile, in (0, 1).
    pub(crate) p: f64,
    pub(crate) higher_is_worse: bool,
    /// The margin: a fraction of the baseline's quantile, or an amount.
    pub(crate) margin: f64,
    pub(crate) relative: bool,
    /// Each prior's weight, in samples beyond the quantile.
    pub(crate) mixing_events: f64,
    /// Samples each arm needs before the test starts.
    pub(crate) burn_in: u64,
}

/// An arm's quantile: the estimate and its confidence bounds (each at α/2).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Estimate {
    pub(crate) value: Option<f64>,
    pub(crate) lower: Option<f64>,
    pub(crate) upper: Option<f64>,
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    /// Whether the burn-in is over (the test is running).
    pub(crate) started: bool,
    pub(crate) ln_e: f64,
    pub(crate) rejected: bool,
    pub(crate) p_value: f64,
    pub(crate) judged: Estimate,
    pub(crate) baseline: Estimate,
    /// The judged quantile over the baseline's (relative margin) or their difference
    /// (absolute), with the bounds the arms' bounds give.
    pub(crate) effect: Estimate,
    pub(crate) judged_n: u64,
    pub(crate) baseline_n: u64,
    pub(crate) onset: Option<Timestamp>,
}

/// The counts and e-values of one arm on one histogram shape.
struct Counts<'a> {
    h: HistShape,
    prefix: &'a [u64],
    n: u64,
    /// The quantile p, the tail 1 − p and the prior's weight k.
    p: f64,
    k: f64,
}

impl Counts<'_> {
    fn len(&self) -> usize {
        self.h.len() as usize
    }

    /// ln E against "the quantile is at most v" from the samples in bins ≥ `j`
    /// (all at least v = lower_edge(j)): evidence that more than 1 − p of the samples
    /// exceed values just below v.
    fn ln_e_above(&self, above: u64) -> f64 {
        let x = above as f64;
        beta_mixture_ln_e(x, self.n as f64 - x, 1.0 - self.p, self.k)
    }

    /// ln E against "the quantile is at least v" from `below` samples all below v.
    fn ln_e_below(&self, below: u64) -> f64 {
        let x = below as f64;
        beta_mixture_ln_e(x, self.n as f64 - x, self.p, self.k)
    }

    /// Samples in bins ≥ `j`.
    fn at_or_above_bin(&self, j: usize) -> u64 {
        self.n
            .saturating_sub(self.prefix.get(j).copied().unwrap_or(self.n))
    }

    /// Samples in bins ≤ `j`.
    fn up_to_bin(&self, j: usize) -> u64 {
        self.prefix.get(j + 1).copied().unwrap_or(self.n)
    }

    /// Samples surely below `t`, where `t` is a computed g⁻¹(v): the bins that end at
    /// or below it. `t` may be rounded up to a bin's end from a value just below it, so
    /// a bin ending exactly at `t` counts only when `t` is `exact` (no rounding).
    fn below(&self, t: f64, exact: bool) -> u64 {
        let c = self.h.bin(t);
        let c = if c > 0 && !exact && self.h.lower_edge(c) == t {
            c - 1
        } else {
            c
        };
        self.prefix.get(c).copied().unwrap_or(0)
    }

    /// Samples surely above `t`: in the bins whose lower edge is above `t` (a computed
    /// h⁻¹(v) rounded down past an edge would still be at or above it: rounding keeps
    /// order with every representable value).
    fn above(&self, t: f64) -> u64 {
        self.at_or_above_bin(self.h.bin(t) + 1)
    }

    /// The confidence bounds of the quantile at `threshold` (per side): the highest
    /// lower edge it is shown to be at least, the lowest upper edge it is shown to be
    /// below. `None` past the histogram's ends.
    fn bounds(&self, threshold: f64) -> (Option<f64>, Option<f64>) {
        let len = self.len();
        if self.n == 0 {
            return (None, None);
        }
        // Lower: the largest j in 1..len with ln_e_above(at_or_above_bin(j)) ≥ threshold
        // (non-increasing in j).
        let lower = last_true(1, len, |j| {
            self.ln_e_above(self.at_or_above_bin(j)) >= threshold
        })
        .map(|j| self.h.lower_edge(j));
        // Upper: the smallest j in 0..len−1 with ln_e_below(up_to_bin(j)) ≥ threshold
        // (non-decreasing in j); the overflow bin has no finite upper edge.
        let upper = first_true(0, len - 1, |j| {
            self.ln_e_below(self.up_to_bin(j)) >= threshold
        })
        .map(|j| self.h.upper_edge(j));
        (lower, upper)
    }
}

/// The largest i in lo..hi where `f` holds, for `f` true then false.
fn last_true(lo: usize, hi: usize, f: impl Fn(usize) -> bool) -> Option<usize> {
    let (mut a, mut b) = (lo, hi);
    // Invariant: f holds below a (from lo), fails at b and above.
    while a < b {
        let mid = a + (b - a) / 2;
        if f(mid) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    (a > lo).then(|| a - 1)
}

/// The smallest i in lo..hi where `f` holds, for `f` false then true.
fn first_true(lo: usize, hi: usize, f: impl Fn(usize) -> bool) -> Option<usize> {
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a) / 2;
        if f(mid) {
            b = mid;
        } else {
            a = mid + 1;
        }
    }
    (a < hi).then_some(a)
}

/// max over i in lo..hi of min(rise(i), fall(i)), for `rise` non-decreasing and
/// `fall` non-increasing in i: at the crossing. −∞ for an empty range.
fn max_min(lo: usize, hi: usize, rise: impl Fn(usize) -> f64, fall: impl Fn(usize) -> f64) -> f64 {
    if lo >= hi {
        return f64::NEG_INFINITY;
    }
    // The first i where rise ≥ fall; the optimum is there or just before.
    let at = first_true(lo, hi, |i| rise(i) >= fall(i)).unwrap_or(hi - 1);
    let value = |i: usize| {
        let (r, f) = (rise(i), fall(i));
        if r < f { r } else { f }
    };
    let here = value(at);
    if at > lo {
        let before = value(at - 1);
        if before > here {
            return before;
        }
    }
    here
}

impl QuantileTest {
    #[inline]
    pub(crate) fn observe(&mut self, judged: bool, h: HistShape, x: f64) {
        if judged {
            self.judged.add(h, x);
        } else {
            self.baseline.add(h, x);
        }
    }

    /// Evaluates the test at `now` on the metric's histogram shape `h`.
    pub(crate) fn judge(&mut self, set: Settings, h: HistShape, now: Timestamp) -> Finding {
        let len = h.len() as usize;
        let burn_in = set.burn_in.max(1);
        let started = self.judged.n >= burn_in && self.baseline.n >= burn_in;
        let k = set.mixing_events / (1.0 - set.p);
        let (pj, pb) = (self.judged.prefix(len), self.baseline.prefix(len));
        let judged = Counts {
            h,
            prefix: &pj,
            n: self.judged.n,
            p: set.p,
            k,
        };
        let baseline = Counts {
            h,
            prefix: &pb,
            n: self.baseline.n,
            p: set.p,
            k,
        };
        let ln_m = if started {
            self.ln_m(&judged, &baseline, set)
        } else {
            f64::NEG_INFINITY
        };
        // M/2 is dominated by the mean of the two arms' e-processes.
        let ln_e = if started {
            let v = ln_m - core::f64::consts::LN_2;
            if v.is_finite() { v } else { 0.0 }
        } else {
            0.0
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
        let threshold = -libm::log(set.alpha);
        let per_arm = libm::log(2.0 / set.alpha);
        let estimate = |arm: &Arm, c: &Counts<'_>| {
            let (lower, upper) = c.bounds(per_arm);
            Estimate {
                value: arm.estimate(h, set.p),
                lower,
                upper,
            }
        };
        let (ej, eb) = (
            estimate(&self.judged, &judged),
            estimate(&self.baseline, &baseline),
        );
        Finding {
            started,
            ln_e,
            rejected: self.ln_e_max >= threshold,
            p_value: libm::exp(-self.ln_e_max).min(1.0),
            judged: ej,
            baseline: eb,
            effect: effect(ej, eb, set.relative),
            judged_n: self.judged.n,
            baseline_n: self.baseline.n,
            onset: self.low_at,
        }
    }

    /// ln M = ln sup_v min(E_judged(v), E_baseline(g⁻¹(v))) over the bin edges v (see
    /// the module docs), for the direction the settings give.
    fn ln_m(&self, judged: &Counts<'_>, baseline: &Counts<'_>, set: Settings) -> f64 {
        let len = judged.len();
        let m = set.margin;
        if set.higher_is_worse {
            // v just below the lower edge e_j of bin j (j in 1..len): the judged
            // samples in bins ≥ j exceed v; the baseline's bins ending below g⁻¹(e_j)
            // are below g⁻¹(v).
            let inv = |v: f64| if set.relative { v / (1.0 + m) } else { v - m };
            // With no margin g⁻¹(v) = v exactly.
            let exact = m == 0.0;
            max_min(
                1,
                len,
                |j| baseline.ln_e_below(baseline.below(inv(judged.h.lower_edge(j)), exact)),
                |j| judged.ln_e_above(judged.at_or_above_bin(j)),
            )
        } else {
            // Lower is worse; the null is q_judged ≥ h(q_baseline), h(x) = (1 − m)x or
            // x − m. v = the upper edge u_j of bin j (j in 0..len−1): the judged samples
            // in bins ≤ j are below v; the baseline's bins starting above h⁻¹(u_j)
            // exceed it.
            let inv = |v: f64| if set.relative { v / (1.0 - m) } else { v + m };
            max_min(
                0,
                len - 1,
                |j| judged.ln_e_below(judged.up_to_bin(j)),
                |j| baseline.ln_e_above(baseline.above(inv(judged.h.upper_edge(j)))),
            )
        }
    }
}

/// The effect and its bounds from the arms' estimates: a ratio for a relative margin
/// (where both quantiles are positive), a difference for an absolute one.
fn effect(j: Estimate, b: Estimate, relative: bool) -> Estimate {
    let combine = |x: Option<f64>, y: Option<f64>| -> Option<f64> {
        let (x, y) = (x?, y?);
        let v = if relative {
            if !(x > 0.0 && y > 0.0) {
                return None;
            }
            x / y
        } else {
            x - y
        };
        v.is_finite().then_some(v)
    };
    Estimate {
        value: combine(j.value, b.value),
        lower: combine(j.lower, b.upper),
        upper: combine(j.upper, b.lower),
    }
}

/// The histograms are mostly zeros: serialize them as `{"len": n, "bins": [[bin,
/// count], …]}`.
mod sparse {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::COUNT_MAX;
    use crate::config::limits::OCTAVES_MAX;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sparse {
        len: u32,
        bins: Vec<(u32, u64)>,
    }

    pub(super) fn serialize<S: Serializer>(hist: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let bins = hist
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as u32, *c))
            .collect();
        Sparse {
            len: hist.len() as u32,
            bins,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let sparse = Sparse::deserialize(d)?;
        let cap = (OCTAVES_MAX * crate::stats::histogram::SUB) as u32 + 2;
        if sparse.len > cap {
            return Err(D::Error::custom("histogram longer than any config allows"));
        }
        let mut hist = vec![0; sparse.len as usize];
        for (i, c) in sparse.bins {
            if c > COUNT_MAX {
                return Err(D::Error::custom("bin count above 2^53"));
            }
            *hist
                .get_mut(i as usize)
                .ok_or_else(|| D::Error::custom("histogram bin out of range"))? = c;
        }
        Ok(hist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HistogramRange;

    fn shape() -> HistShape {
        HistShape::new(HistogramRange::default())
    }

    const SET: Settings = Settings {
        alpha: 0.01,
        p: 0.9,
        higher_is_worse: true,
        margin: 0.0,
        relative: true,
        mixing_events: 10.0,
        burn_in: 10,
    };

    /// `n` values spread evenly over the quantiles of a log-uniform distribution on
    /// [lo, hi] (a deterministic stand-in for a random sample).
    fn spread(n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let u = (i as f64 * 0.618_033_988_749_895).fract();
                lo * libm::pow(hi / lo, u)
            })
            .collect()
    }

    fn fed(judged: &[f64], baseline: &[f64]) -> QuantileTest {
        let mut t = QuantileTest::default();
        for &x in judged {
            t.observe(true, shape(), x);
        }
        for &x in baseline {
            t.observe(false, shape(), x);
        }
        t
    }

    #[test]
    fn the_histogram_counts_every_sample_and_keeps_the_extremes() {
        let t = fed(&[5.0, -1.0, 1e12, 3.0], &[]);
        assert_eq!(t.judged.n, 4);
        assert_eq!(t.judged.bins.iter().sum::<u64>(), 4);
        assert_eq!((t.judged.min, t.judged.max), (-1.0, 1e12));
        assert!(t.baseline.bins.is_empty());
    }

    #[test]
    fn nothing_is_judged_before_the_burn_in() {
        let mut t = fed(&spread(9, 100.0, 1000.0), &spread(100, 1.0, 2.0));
        let f = t.judge(SET, shape(), 1000);
        assert!(!f.started && !f.rejected);
        assert_eq!(f.ln_e, 0.0);
        assert_eq!(t.low_at, None);
    }

    #[test]
    fn equal_arms_are_no_evidence() {
        let xs = spread(2000, 10.0, 1000.0);
        let mut t = fed(&xs, &xs);
        let f = t.judge(SET, shape(), 1000);
        assert!(f.started && !f.rejected && f.ln_e < 0.0, "{f:?}");
        // The estimates agree with the sample quantile within the histogram's error.
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        let exact = sorted[1799];
        let est = f.judged.value.unwrap();
        assert!(((est - exact) / exact).abs() <= 1.0 / 64.0, "{est} {exact}");
        // Each bound brackets the estimate, and the ratio's band brackets 1.
        let (lo, hi) = (f.judged.lower.unwrap(), f.judged.upper.unwrap());
        assert!(lo < est && est < hi, "{lo} {est} {hi}");
        assert!(f.effect.lower.unwrap() < 1.0 && f.effect.upper.unwrap() > 1.0);
        assert_eq!(f.effect.value, Some(1.0));
    }

    #[test]
    fn a_doubled_tail_is_found_and_the_bounds_explain_it() {
        let base = spread(3000, 10.0, 100.0);
        let worse: Vec<f64> = base.iter().map(|x| x * 2.0).collect();
        let mut t = fed(&worse, &base);
        let f = t.judge(SET, shape(), 1000);
        assert!(f.rejected, "{f:?}");
        // Failing means the judged lower bound passed the baseline's upper bound.
        assert!(f.judged.lower.unwrap() > f.baseline.upper.unwrap(), "{f:?}");
        let ratio = f.effect.value.unwrap();
        assert!((ratio - 2.0).abs() < 0.07, "{ratio}");
        assert!(f.effect.lower.unwrap() > 1.0 && f.effect.lower.unwrap() < ratio);
        assert_eq!(t.low_at, Some(1000));
        // A margin beyond the regression holds it.
        let mut t = fed(&worse, &base);
        let f = t.judge(Settings { margin: 1.5, ..SET }, shape(), 1000);
        assert!(!f.rejected, "{f:?}");
    }

    #[test]
    fn the_decision_is_the_confidence_sequences_parting() {
        // Across regressions around the detection limit, the e-value crosses 1/α
        // exactly when the judged lower bound passes the baseline's upper bound.
        let base = spread(1500, 10.0, 100.0);
        for step in 0..30 {
            let factor = 1.0 + 0.01 * f64::from(step);
            let worse: Vec<f64> = base.iter().map(|x| x * factor).collect();
            let mut t = fed(&worse, &base);
            let f = t.judge(SET, shape(), 1000);
            let parted = match (f.judged.lower, f.baseline.upper) {
                (Some(l), Some(u)) => l >= u,
                _ => false,
            };
            assert_eq!(f.rejected, parted, "factor {factor}: {f:?}");
        }
    }

    #[test]
    fn lower_is_worse_mirrors_it() {
        let base = spread(3000, 10.0, 100.0);
        let worse: Vec<f64> = base.iter().map(|x| x * 0.5).collect();
        let lower = Settings {
            higher_is_worse: false,
            ..SET
        };
        let mut t = fed(&worse, &base);
        let f = t.judge(lower, shape(), 1000);
        assert!(f.rejected, "{f:?}");
        assert!(f.judged.upper.unwrap() <= f.baseline.lower.unwrap());
        let mut t = fed(&base, &worse);
        assert!(
            !t.judge(lower, shape(), 1000).rejected,
            "higher is better here"
        );
        let mut t = fed(&worse, &base);
        assert!(
            !t.judge(SET, shape(), 1000).rejected,
            "lower is better here"
        );
    }

    #[test]
    fn an_absolute_margin_is_in_the_metrics_unit() {
        let base = spread(3000, 10.0, 100.0);
        let worse: Vec<f64> = base.iter().map(|x| x + 20.0).collect();
        let abs = |m: f64| Settings {
            margin: m,
            relative: false,
            ..SET
        };
        let mut t = fed(&worse, &base);
        let f = t.judge(abs(5.0), shape(), 1000);
        assert!(f.rejected, "{f:?}");
        let d = f.effect.value.unwrap();
        assert!((d - 20.0).abs() < 2.0, "{d}");
        let mut t = fed(&worse, &base);
        assert!(!t.judge(abs(40.0), shape(), 1000).rejected);
    }

    #[test]
    fn the_search_helpers_find_the_crossings() {
        assert_eq!(last_true(1, 10, |i| i < 4), Some(3));
        assert_eq!(last_true(1, 10, |_| false), None);
        assert_eq!(last_true(1, 10, |_| true), Some(9));
        assert_eq!(first_true(0, 10, |i| i >= 7), Some(7));
        assert_eq!(first_true(0, 10, |_| false), None);
        let brute = |rise: &dyn Fn(usize) -> f64, fall: &dyn Fn(usize) -> f64| {
            (0..20)
                .map(|i| rise(i).min(fall(i)))
                .fold(f64::NEG_INFINITY, f64::max)
        };
        for shift in 0..25 {
            let rise = |i: usize| i as f64 * 1.5;
            let fall = move |i: usize| shift as f64 - i as f64;
            assert_eq!(max_min(0, 20, rise, fall), brute(&rise, &fall), "{shift}");
        }
    }

    #[test]
    fn counts_below_and_above_a_value_never_overcount() {
        let xs = spread(500, 0.5, 5000.0);
        let t = fed(&xs, &[]);
        let h = shape();
        let prefix = t.judged.prefix(h.len() as usize);
        let c = Counts {
            h,
            prefix: &prefix,
            n: t.judged.n,
            p: 0.5,
            k: 20.0,
        };
        for v in spread(200, 0.1, 10_000.0)
            .into_iter()
            .chain((1..h.len() as usize).map(|b| h.lower_edge(b)))
        {
            let below = xs.iter().filter(|&&x| x < v).count() as u64;
            let above = xs.iter().filter(|&&x| x > v).count() as u64;
            assert!(c.below(v, false) <= below && c.above(v) <= above, "{v}");
            assert!(c.below(v, true) <= below, "{v}");
        }
    }

    #[test]
    fn the_state_round_trips_sparsely() {
        let t = fed(&[1.0, 1.0, 7.0], &[3.0]);
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.len() < 300, "{json}");
        let back: QuantileTest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }
}
