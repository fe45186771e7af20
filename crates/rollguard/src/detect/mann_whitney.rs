//! `mann_whitney`: the per-interval classification of Kayenta's NetflixACAJudge
//! (`MannWhitneyClassifier`), so that a Kayenta canary config's metrics can be brought
//! over as gates.
//!
//! At each evaluation the detector compares the samples each arm sent since the
//! previous evaluation (the analysis interval; at most `samples_max` per arm, the most
//! recent kept) and forgets them:
//!
//! - the two-sided Mann-Whitney U test, normal approximation with the tie correction
//!   and the continuity correction: U of the judged arm and the p-value are those of
//!   `scipy.stats.mannwhitneyu(judged, baseline)` (Kayenta's Apache Commons call has
//!   neither correction; its p-value never enters the classification);
//! - the location shift judged − baseline with Kayenta's confidence interval: the roots
//!   in μ of Z(μ) = (W(μ) − ½·sign W(μ)) / σ(μ) ∓ z, where W(μ) is the rank sum of
//!   (judged − μ) among the baseline minus its mean and σ(μ) its tie-corrected
//!   deviation (R's asymptotic `wilcox.test` interval, which Kayenta ports). Z is a
//!   step function of μ that jumps at the pairwise differences, so Kayenta's Brent
//!   solver converges to one of them; this computes that difference exactly (the
//!   k-th smallest, k from the step heights), with Kayenta's end-point checks. The
//!   estimate is the Hodges-Lehmann median of the differences, which lies in the set
//!   where Kayenta's Z(μ) = 0 (Brent returns some point of it);
//! - optionally first, Kayenta's outlier removal (`IQRDetector(factor, reduceSensitivity
//!   = true)`): each arm loses the samples beyond the wider of Tukey's fences
//!   (Q1 − factor·IQR, Q3 + factor·IQR) and its 1st / 99th percentiles, all with
//!   Commons Math's default percentile (position p·(n + 1), linear between order
//!   statistics; NumPy's `method="weibull"`);
//! - Kayenta's classification: High when the interval's lower end is above
//!   `tolerance` × |estimate| and the effect size (the ratio of means, or the
//!   common-language effect size U / (n·m)) is at least `allowed_increase`;
//!   Low symmetrically; otherwise Pass; identical samples, or all values equal, Pass;
//!   an empty arm, Nodata. Two constant arms (Kayenta adds Gaussian noise of scale
//!   1e-5 × value to them) give the noise-free limit: the interval is the difference.
//!
//! This is a fixed-horizon test repeated every interval: it is Kayenta-compatible, not
//! anytime-valid. Its false-failure rate per evaluation is small (about 0.2 % on
//! identical arms at the defaults) but adds up over a rollout's evaluations.

use serde::{Deserialize, Serialize};

pub(crate) use crate::config::EffectSize;
pub(crate) use crate::output::Classification;

/// One arm's samples of the current interval: the most recent `samples_max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Buffer {
    /// The samples kept, a ring once full.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) values: Vec<f64>,
    /// Where the next sample goes once the ring is full.
    #[serde(default)]
    pub(crate) next: u32,
    /// Samples seen this interval, kept or not.
    #[serde(default)]
    pub(crate) seen: u64,
}

impl Buffer {
    #[inline]
    fn push(&mut self, x: f64, cap: u32) {
        self.seen = self.seen.saturating_add(1);
        if (self.values.len() as u64) < u64::from(cap) {
            self.values.push(x);
        } else if let Some(slot) = self.values.get_mut(self.next as usize) {
            *slot = x;
            self.next = if self.next + 1 >= cap {
                0
            } else {
                self.next + 1
            };
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.next = 0;
        self.seen = 0;
    }
}

/// The state of one `mann_whitney` gate: both arms' samples of the interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RankTest {
    /// The rule's `samples_max` (restore checks it still matches the config).
    pub(crate) samples_max: u32,
    #[serde(default)]
    pub(crate) judged: Buffer,
    #[serde(default)]
    pub(crate) baseline: Buffer,
}

/// The rule's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    /// Classify High (an increase) at all.
    pub(crate) increase: bool,
    /// Classify Low at all.
    pub(crate) decrease: bool,
    pub(crate) confidence: f64,
    pub(crate) tolerance: f64,
    /// The effect size the allowances apply to.
    pub(crate) measure: EffectSize,
    pub(crate) allowed_increase: f64,
    pub(crate) allowed_decrease: f64,
    /// Remove outliers beyond this many IQRs (and the 1st / 99th percentiles).
    pub(crate) outlier_factor: Option<f64>,
    pub(crate) samples_min: u64,
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    pub(crate) classification: Classification,
    /// The test, when both arms had enough samples.
    pub(crate) test: Option<Comparison>,
    pub(crate) used: u64,
    pub(crate) baseline_used: u64,
    /// Outliers removed from each arm before the comparison.
    pub(crate) removed: u64,
    pub(crate) baseline_removed: u64,
}

/// The Mann-Whitney comparison of two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Comparison {
    /// U of the judged arm: pairs where it is higher, plus half the ties.
    pub(crate) u: f64,
    /// The two-sided p-value (normal approximation, tie and continuity corrected).
    pub(crate) p_value: f64,
    /// The Hodges-Lehmann estimate of judged − baseline.
    pub(crate) estimate: f64,
    /// Kayenta's confidence interval of the shift.
    pub(crate) lower: f64,
    pub(crate) upper: f64,
    /// mean(judged) / mean(baseline), 1 when the baseline's mean is 0 (Kayenta's
    /// `meanRatio` effect size).
    pub(crate) mean_ratio: f64,
    /// The common-language effect size U / (n·m).
    pub(crate) cles: f64,
}

impl RankTest {
    /// A gate keeping at most `samples_max` samples per arm and interval.
    pub(crate) fn new(samples_max: u32) -> Self {
        Self {
            samples_max,
            ..Self::default()
        }
    }

    /// One sample of an arm.
    #[inline]
    pub(crate) fn observe(&mut self, judged: bool, x: f64) {
        if !x.is_finite() {
            return;
        }
        if judged {
            self.judged.push(x, self.samples_max);
        } else {
            self.baseline.push(x, self.samples_max);
        }
    }

    /// Classifies the interval's samples and starts the next interval.
    pub(crate) fn judge(&mut self, set: Settings) -> Finding {
        let finding = classify(&self.judged.values, &self.baseline.values, set);
        self.judged.clear();
        self.baseline.clear();
        finding
    }
}

/// Kayenta's classification of `judged` against `baseline`.
pub(crate) fn classify(judged: &[f64], baseline: &[f64], set: Settings) -> Finding {
    let mut x = judged.to_vec();
    let mut y = baseline.to_vec();
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    // Outlier removal keeps each arm's order for its mean (summed as given).
    let (kept_x, kept_y);
    let (judged_kept, baseline_kept) = match set.outlier_factor {
        Some(f) => {
            kept_x = without_outliers(judged, &mut x, f);
            kept_y = without_outliers(baseline, &mut y, f);
            (&kept_x[..], &kept_y[..])
        }
        None => (judged, baseline),
    };
    let (n, m) = (x.len() as u64, y.len() as u64);
    let need = set.samples_min.max(1);
    let mut finding = Finding {
        classification: Classification::NoData,
        test: None,
        used: n,
        baseline_used: m,
        removed: judged.len() as u64 - n,
        baseline_removed: baseline.len() as u64 - m,
    };
    if n < need || m < need {
        return finding;
    }
    let test = compare_sorted(
        &x,
        &y,
        set.confidence,
        mean(judged_kept),
        mean(baseline_kept),
    );
    finding.test = Some(test);
    // Identical samples, or one value throughout: Pass (Kayenta checks these first).
    if x == y || (x[0] == x[x.len() - 1] && y[0] == y[y.len() - 1] && x[0] == y[0]) {
        finding.classification = Classification::Pass;
        return finding;
    }
    let bound = set.tolerance * test.estimate.abs();
    let effect = match set.measure {
        EffectSize::MeanRatio => test.mean_ratio,
        EffectSize::Cles => test.cles,
    };
    finding.classification = if set.increase && test.lower > bound && effect >= set.allowed_increase
    {
        Classification::High
    } else if set.decrease && test.upper < -bound && effect <= set.allowed_decrease {
        Classification::Low
    } else {
        Classification::Pass
    };
    finding
}

/// Kayenta's percentile (Commons Math's default estimator) of a sorted, non-empty
/// sample: position p·(n + 1)/100, the order statistics at its floor and above,
/// linearly between them; the extremes outside 1..n.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let pos = p * (n as f64 + 1.0) / 100.0;
    let floor = libm::floor(pos);
    if pos < 1.0 {
        return sorted[0];
    }
    if pos >= n as f64 {
        return sorted[n - 1];
    }
    // 1 <= floor < n here.
    let at = floor as usize;
    let (lower, upper) = (sorted[at - 1], sorted[at]);
    lower + (pos - floor) * (upper - lower)
}

/// Drops from `sorted` (and returns `values` without) the samples outside Kayenta's
/// fences: the wider of [Q1 − factor·IQR, Q3 + factor·IQR] and [P1, P99]
/// (`IQRDetector(factor, reduceSensitivity = true)`).
fn without_outliers(values: &[f64], sorted: &mut Vec<f64>, factor: f64) -> Vec<f64> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let (q1, q3) = (percentile(sorted, 25.0), percentile(sorted, 75.0));
    let iqr = q3 - q1;
    let low = percentile(sorted, 1.0).min(q1 - factor * iqr);
    let high = percentile(sorted, 99.0).max(q3 + factor * iqr);
    let inside = |x: &f64| *x >= low && *x <= high;
    sorted.retain(inside);
    values.iter().copied().filter(inside).collect()
}

/// The mean, summed in order.
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The comparison of two sorted, non-empty, finite samples.
pub(crate) fn compare_sorted(
    x: &[f64],
    y: &[f64],
    confidence: f64,
    mean_x: f64,
    mean_y: f64,
) -> Comparison {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let nm = n * m;
    // U and the tie term at μ = 0.
    let (u, ties) = rank_counts(x, y, 0.0);
    let sigma = tie_sigma(n, m, ties);
    let p_value = if sigma > 0.0 {
        let z = (u.max(nm - u) - nm / 2.0 - 0.5) / sigma;
        (2.0 * normal_sf(z)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let mean_ratio = if mean_y == 0.0 { 1.0 } else { mean_x / mean_y };
    let cles = u / nm;
    let d_min = x[0] - y[y.len() - 1];
    let d_max = x[x.len() - 1] - y[0];
    let pairs = x.len() as u64 * y.len() as u64;
    let estimate = if pairs % 2 == 1 {
        kth_difference(x, y, pairs / 2 + 1)
    } else {
        0.5 * (kth_difference(x, y, pairs / 2) + kth_difference(x, y, pairs / 2 + 1))
    };
    if d_min == d_max {
        return Comparison {
            u,
            p_value,
            estimate,
            lower: d_min,
            upper: d_max,
            mean_ratio,
            cles,
        };
    }
    // Within-arm ties only: σ between the differences (no judged − μ equals a
    // baseline value there).
    let within = run_ties(x) + run_ties(y);
    let sigma0 = tie_sigma(n, m, within);
    let z = normal_quantile(0.5 + 0.5 * confidence);
    let root = |q: f64| -> f64 {
        // Kayenta's end-point checks, evaluated as it does (with ties at μ).
        if kayenta_z(x, y, d_min, q) <= 0.0 {
            return d_min;
        }
        if kayenta_z(x, y, d_max, q) >= 0.0 {
            return d_max;
        }
        // Between the differences, Z depends only on how many lie below μ (k):
        // Z = (nm/2 − k − ½·sign) / σ0 − q, non-increasing in k. The sign changes
        // at the smallest k where it is ≤ 0, i.e. at the k-th smallest difference.
        let step = |k: u64| {
            let w = nm / 2.0 - k as f64;
            (w - 0.5 * sign(w)) / sigma0 - q
        };
        let (mut lo, mut hi) = (0u64, pairs);
        if step(hi) > 0.0 {
            return d_max;
        }
        // Invariant: step(hi) <= 0; find the smallest such k in 0..=pairs.
        if step(0) <= 0.0 {
            hi = 0;
        } else {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if step(mid) <= 0.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
        }
        kth_difference(x, y, hi.clamp(1, pairs))
    };
    Comparison {
        u,
        p_value,
        estimate,
        lower: root(z),
        upper: root(-z),
        mean_ratio,
        cles,
    }
}

fn sign(w: f64) -> f64 {
    if w > 0.0 {
        1.0
    } else if w < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// σ of U (or of the rank sum) with the tie term Σ(t³ − t).
fn tie_sigma(n: f64, m: f64, ties: f64) -> f64 {
    let big = n + m;
    let v = n * m / 12.0 * ((big + 1.0) - ties / (big * (big - 1.0)));
    if v > 0.0 { libm::sqrt(v) } else { 0.0 }
}

/// Σ(t³ − t) over the runs of equal values of a sorted sample.
fn run_ties(v: &[f64]) -> f64 {
    let mut total = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i + 1;
        while j < v.len() && v[j] == v[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        total += t * t * t - t;
        i = j;
    }
    total
}

/// For sorted x and y: U of (x − μ) against y (pairs above, plus half the ties) and the
/// tie term Σ(t³ − t) of the pooled sample, with x − μ computed in floating point as
/// Kayenta shifts the sample before ranking it.
fn rank_counts(x: &[f64], y: &[f64], mu: f64) -> (f64, f64) {
    let (mut i, mut j) = (0usize, 0usize);
    let mut u = 0.0;
    let mut ties = 0.0;
    while i < x.len() || j < y.len() {
        // The next value of the pooled sample, and how many of each arm hold it.
        let xv = x.get(i).map(|v| v - mu);
        let v = match (xv, y.get(j)) {
            (Some(a), Some(&b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let mut tx = 0usize;
        while i < x.len() && x[i] - mu == v {
            i += 1;
            tx += 1;
        }
        let mut ty = 0usize;
        while j < y.len() && y[j] == v {
            j += 1;
            ty += 1;
        }
        // x values here are above the j − ty baseline values below v.
        u += tx as f64 * ((j - ty) as f64 + 0.5 * ty as f64);
        let t = (tx + ty) as f64;
        ties += t * t * t - t;
    }
    (u, ties)
}

/// Kayenta's `wilcoxonDiff(μ, q)` at a point: (W − ½·sign W)/σ − q with the ranks and
/// ties of (x − μ) pooled with y.
fn kayenta_z(x: &[f64], y: &[f64], mu: f64, q: f64) -> f64 {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let (u, ties) = rank_counts(x, y, mu);
    let w = u - n * m / 2.0;
    let sigma = tie_sigma(n, m, ties);
    if sigma > 0.0 {
        (w - 0.5 * sign(w)) / sigma - q
    } else {
        -q
    }
}

/// Pairwise differences x_i − y_j at most `v` (x, y sorted).
fn count_at_most(x: &[f64], y: &[f64], v: f64) -> u64 {
    // For each x_i (rising), the differences at most v are those with y_j at least
    // some index, which only moves right as x_i rises.
    let mut j = 0usize;
    let mut count = 0u64;
    for &xi in x {
        while j < y.len() && xi - y[j] > v {
            j += 1;
        }
        count += (y.len() - j) as u64;
    }
    count
}

/// A total order of finite floats as integers.
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The k-th smallest (1-based) pairwise difference x_i − y_j of sorted samples:
/// bisection on the floats' bit order (at most 64 halvings) until few differences are
/// left in the bracket, then those are listed and sorted.
fn kth_difference(x: &[f64], y: &[f64], k: u64) -> f64 {
    let d_min = x[0] - y[y.len() - 1];
    let d_max = x[x.len() - 1] - y[0];
    // Invariant: count_at_most(lo) < k <= count_at_most(hi).
    let (mut lo, mut hi) = (key(d_min) - 1, key(d_max));
    let (mut below, mut upto) = (0u64, x.len() as u64 * y.len() as u64);
    let few = (x.len() + y.len()) as u64;
    while hi - lo > 1 && upto - below > few {
        let mid = lo + (hi - lo) / 2;
        let c = count_at_most(x, y, unkey(mid));
        if c >= k {
            hi = mid;
            upto = c;
        } else {
            lo = mid;
            below = c;
        }
    }
    if hi - lo <= 1 {
        return unkey(hi);
    }
    // List the differences in (lo, hi]: per x_i a contiguous run of y.
    let (lo_v, hi_v) = (unkey(lo), unkey(hi));
    let mut left = Vec::with_capacity((upto - below) as usize);
    let (mut a, mut b) = (0usize, 0usize);
    for &xi in x {
        while a < y.len() && xi - y[a] > hi_v {
            a += 1;
        }
        while b < y.len() && xi - y[b] > lo_v {
            b += 1;
        }
        left.extend(y[a..b].iter().map(|&yj| xi - yj));
    }
    left.sort_by(f64::total_cmp);
    let at = (k - below - 1) as usize;
    left.get(at).copied().unwrap_or(unkey(hi))
}

/// P(Z > z) for a standard normal, as SciPy's `ndtr(−z)` computes it.
pub(crate) fn normal_sf(z: f64) -> f64 {
    let x = -z;
    let t = x * core::f64::consts::FRAC_1_SQRT_2;
    if t.abs() < core::f64::consts::FRAC_1_SQRT_2 {
        0.5 + 0.5 * libm::erf(t)
    } else {
        let y = 0.5 * libm::erfc(t.abs());
        if t > 0.0 { 1.0 - y } else { y }
    }
}

/// The standard normal quantile for p in (0, 1): Acklam's rational approximation,
/// then one Halley step on `erfc` (to within a few ulps).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < P_LOW {
        tail(libm::sqrt(-2.0 * libm::log(p)))
    } else if p > 1.0 - P_LOW {
        -tail(libm::sqrt(-2.0 * libm::log(1.0 - p)))
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    for _ in 0..2 {
        let e = 0.5 * libm::erfc(-x * core::f64::consts::FRAC_1_SQRT_2) - p;
        let u = e * libm::sqrt(2.0 * core::f64::consts::PI) * libm::exp(0.5 * x * x);
        x -= u / (1.0 + 0.5 * x * u);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Settings {
        Settings {
            increase: true,
            decrease: true,
            confidence: 0.95,
            tolerance: 0.25,
            measure: EffectSize::MeanRatio,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            outlier_factor: None,
            samples_min: 1,
        }
    }

    fn compare(x: &[f64], y: &[f64], confidence: f64) -> Comparison {
        let (mut a, mut b) = (x.to_vec(), y.to_vec());
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        compare_sorted(&a, &b, confidence, mean(x), mean(y))
    }

    /// Brute force: every pairwise difference, sorted.
    fn differences(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    #[test]
    fn kayentas_own_example() {
        // MannWhitneySuite "returns expected values": control 1..4, experiment
        // 10..40, 95 %: interval (6, 39), estimate 22.5.
        let c = compare(&[10.0, 20.0, 30.0, 40.0], &[1.0, 2.0, 3.0, 4.0], 0.95);
        assert_eq!((c.lower, c.upper, c.estimate), (6.0, 39.0, 22.5));
        assert_eq!(c.u, 16.0);
    }

    #[test]
    fn the_kth_difference_is_the_sorted_pairwise_one() {
        let x = [3.0, -1.5, 7.25, 7.25, 0.0, 12.0, 2.0];
        let y = [1.0, 1.0, 4.5, -3.0, 9.0];
        let (mut a, mut b) = (x.to_vec(), y.to_vec());
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let d = differences(&x, &y);
        for k in 1..=d.len() as u64 {
            assert_eq!(kth_difference(&a, &b, k), d[k as usize - 1], "k = {k}");
        }
    }

    #[test]
    fn u_counts_pairs_above_plus_half_the_ties() {
        let (u, ties) = rank_counts(&[1.0, 2.0, 2.0, 5.0], &[2.0, 3.0], 0.0);
        // 1: 0; 2: ½ each; 5: 2.
        assert_eq!(u, 3.0);
        // The pooled runs: 1, 2×3, 3, 5.
        assert_eq!(ties, 24.0);
    }

    #[test]
    fn quantiles_invert_the_tail() {
        for p in [1e-10, 0.001, 0.01, 0.025, 0.3, 0.5, 0.9, 0.99, 0.999_999] {
            let z = normal_quantile(p);
            let back = normal_sf(-z);
            assert!((back / p - 1.0).abs() < 1e-13, "{p}: {back}");
        }
        assert!((normal_quantile(0.99) - 2.326_347_874_040_841).abs() < 1e-14);
    }

    #[test]
    fn a_clear_shift_is_high_and_the_reverse_low() {
        let y: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i % 7)).collect();
        let x: Vec<f64> = y.iter().map(|v| v + 20.0).collect();
        let f = classify(&x, &y, set());
        assert_eq!(f.classification, Classification::High);
        let f = classify(&y, &x, set());
        assert_eq!(f.classification, Classification::Low);
        // Only the directions asked for.
        let up = Settings {
            decrease: false,
            ..set()
        };
        assert_eq!(classify(&y, &x, up).classification, Classification::Pass);
    }

    #[test]
    fn the_effect_size_filter_can_hold_a_significant_shift() {
        let y: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i % 7)).collect();
        let x: Vec<f64> = y.iter().map(|v| v + 20.0).collect();
        let strict = Settings {
            allowed_increase: 1.5,
            ..set()
        };
        assert_eq!(
            classify(&x, &y, strict).classification,
            Classification::Pass
        );
    }

    #[test]
    fn empty_identical_and_constant_samples() {
        assert_eq!(
            classify(&[], &[1.0], set()).classification,
            Classification::NoData
        );
        let two = Settings {
            samples_min: 3,
            ..set()
        };
        assert_eq!(
            classify(&[1.0, 2.0], &[1.0, 2.0, 3.0], two).classification,
            Classification::NoData
        );
        let f = classify(&[3.0, 1.0, 2.0], &[1.0, 2.0, 3.0], set());
        assert_eq!(f.classification, Classification::Pass);
        let f = classify(&[5.0; 4], &[5.0; 6], set());
        assert_eq!(f.classification, Classification::Pass);
        assert_eq!(f.test.map(|t| t.p_value), Some(1.0));
        // Two constant arms: the noise-free limit of Kayenta's jitter.
        let f = classify(&[7.0; 4], &[5.0; 6], set());
        assert_eq!(f.classification, Classification::High);
        let t = f.test.unwrap();
        assert_eq!((t.lower, t.estimate, t.upper), (2.0, 2.0, 2.0));
    }

    #[test]
    fn the_ring_keeps_the_most_recent_samples_and_judging_clears_it() {
        let mut t = RankTest::new(4);
        for i in 0..10 {
            t.observe(true, f64::from(i));
        }
        let mut kept = t.judged.values.clone();
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, [6.0, 7.0, 8.0, 9.0]);
        assert_eq!(t.judged.seen, 10);
        t.observe(false, 1.0);
        let f = t.judge(set());
        assert_eq!((f.used, f.baseline_used), (4, 1));
        assert_eq!(t, RankTest::new(4));
    }

    #[test]
    fn percentiles_are_commons_maths() {
        // IQRDetector's StatUtils.percentile (Commons Math's legacy estimator, not
        // the R-7 one of Kayenta's DescriptiveStatistics): on 0, 0.5, .., 3.5 P5 is
        // the minimum (position 0.45 < 1), P50 1.75, P100 the maximum; on the NIST
        // sample of Commons Math's tests P90 lies 0.7 of the way from the 11th to the
        // 12th value (position 11.7), where R-7 gives 95.19568.
        let v: Vec<f64> = (0..8).map(|i| f64::from(i) * 0.5).collect();
        assert_eq!(percentile(&v, 50.0), 1.75);
        assert_eq!(percentile(&v, 100.0), 3.5);
        assert_eq!(percentile(&v, 5.0), 0.0);
        let mut nist = [
            95.1772, 95.1567, 95.1937, 95.1959, 95.1442, 95.0610, 95.1591, 95.1195, 95.1772,
            95.0925, 95.1990, 95.1682,
        ];
        nist.sort_by(f64::total_cmp);
        assert!((percentile(&nist, 90.0) - (95.1959 + 0.7 * (95.1990 - 95.1959))).abs() < 1e-12);
    }

    #[test]
    fn outliers_beyond_both_fences_are_removed_and_counted() {
        let mut base: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 10)).collect();
        base.push(10_000.0);
        let mut judged = base.clone();
        judged[0] = -5_000.0;
        let trim = Settings {
            outlier_factor: Some(3.0),
            ..set()
        };
        let f = classify(&judged, &base, trim);
        assert_eq!((f.removed, f.baseline_removed), (2, 1));
        assert_eq!((f.used, f.baseline_used), (199, 200));
        // Kept: the outlier no longer moves the mean ratio.
        let t = f.test.unwrap();
        assert!((t.mean_ratio - 1.0).abs() < 0.01, "{t:?}");
        let kept = classify(&judged, &base, set());
        assert_eq!((kept.removed, kept.used), (0, 201));
    }

    #[test]
    fn cles_is_u_over_pairs_and_can_hold_a_shift() {
        // Kayenta's StatisticSuite: identical samples 0.5, no overlap 0.
        let c = compare(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 2.0, 3.0, 4.0, 5.0], 0.98);
        assert_eq!(c.cles, 0.5);
        let c = compare(&[1.0, 2.0, 3.0], &[10.0, 11.0], 0.98);
        assert_eq!(c.cles, 0.0);
        let y: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i % 7)).collect();
        let x: Vec<f64> = y.iter().map(|v| v + 20.0).collect();
        let cles = Settings {
            measure: EffectSize::Cles,
            allowed_increase: 0.5,
            allowed_decrease: 0.5,
            ..set()
        };
        assert_eq!(classify(&x, &y, cles).classification, Classification::High);
        let strict = Settings {
            allowed_increase: 1.0 + f64::EPSILON,
            ..cles
        };
        assert_eq!(
            classify(&x, &y, strict).classification,
            Classification::Pass
        );
    }

    #[test]
    fn the_interval_brackets_the_estimate() {
        let x: Vec<f64> = (0..37).map(|i| f64::from((i * 17) % 23) * 1.5).collect();
        let y: Vec<f64> = (0..29).map(|i| f64::from((i * 11) % 19)).collect();
        for conf in [0.8, 0.95, 0.98] {
            let c = compare(&x, &y, conf);
            assert!(c.lower <= c.estimate && c.estimate <= c.upper, "{c:?}");
            let d = differences(&x, &y);
            assert!(d.contains(&c.lower) && d.contains(&c.upper));
        }
    }
}
