//! `drift`: how far the judged arm's distribution of a categorical or binned output
//! has moved from the baseline's, as the population stability index or the
//! Jensen-Shannon distance, against a threshold.
//!
//! Each arm keeps a count per bin since the phase began: a category id (0..K, any
//! other value in an "other" bin) or an equal-width bin over [min, max) with one bin
//! below and one above. At an evaluation both arms need `samples_min` samples; then
//!
//!   PSI = Σ (p − q)·ln(p / q)                       over bins seen in either arm,
//!         p = (n_i + ½) / (n + ½·B)                 (Jeffreys smoothing: no empty bin
//!                                                    makes it infinite)
//!   JS  = sqrt(½·KL(p ‖ m) + ½·KL(q ‖ m)) / ln 2,   m = (p + q) / 2, raw shares
//!
//! (JS in base 2, so in [0, 1], as SciPy's `jensenshannon(p, q, base=2)`.) Both are
//! sizes of change, not tests: between two samples of one distribution over B bins PSI
//! is about (B − 1)·(1/n + 1/m) on average, so `samples_min` is what keeps the false
//! rate down (the README gives the numbers). The bin contributing most is reported, so
//! the report says which category moved.

use serde::{Deserialize, Serialize};

use super::mean::COUNT_MAX;
use crate::config::{Bins, Divergence, Rule};

/// The state of one `drift` gate: its bins and a count per bin for each arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Drift {
    /// How samples fall into bins (from the config; restore checks they match).
    pub(crate) binning: Binning,
    /// The judged arm's samples per bin since the phase began.
    pub(crate) judged: Vec<u64>,
    /// The baseline's.
    pub(crate) baseline: Vec<u64>,
}

/// How a gate's samples fall into bins (from its rule).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Binning {
    Categories(u32),
    Equal(Bins),
}

impl Binning {
    pub(crate) fn of(rule: &Rule) -> Option<Self> {
        match *rule {
            Rule::Drift {
                categories: Some(k),
                ..
            } => Some(Self::Categories(k)),
            Rule::Drift { bins: Some(b), .. } => Some(Self::Equal(b)),
            _ => None,
        }
    }

    /// How many bins, with "other" or the two outer ones.
    pub(crate) fn len(self) -> u32 {
        match self {
            Self::Categories(k) => k + 1,
            Self::Equal(b) => b.count + 2,
        }
    }

    /// The bin of a value.
    #[inline]
    pub(crate) fn bin(self, x: f64) -> u32 {
        match self {
            Self::Categories(k) => {
                // Category ids are whole numbers below k; NaN fails both tests.
                if x >= 0.0 && x < f64::from(k) && x == libm::floor(x) {
                    x as u32
                } else {
                    k
                }
            }
            Self::Equal(b) => {
                if x < b.min {
                    0
                } else if x >= b.max || x.is_nan() {
                    b.count + 1
                } else {
                    let i = ((x - b.min) / (b.max - b.min) * f64::from(b.count)) as u32;
                    // Rounding can put a value just below max into bin `count`.
                    1 + i.min(b.count - 1)
                }
            }
        }
    }
}

/// What one evaluation found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finding {
    /// The divergence, once both arms have a sample.
    pub(crate) divergence: Option<f64>,
    pub(crate) used: u64,
    pub(crate) baseline_used: u64,
    /// The bin contributing most, with each arm's raw share of it.
    pub(crate) bin: Option<(u32, f64, f64)>,
}

impl Drift {
    /// A gate's state before any sample: zero counts over its bins.
    pub(crate) fn new(binning: Binning) -> Self {
        let n = binning.len() as usize;
        Self {
            binning,
            judged: vec![0; n],
            baseline: vec![0; n],
        }
    }

    /// One sample of an arm.
    #[inline]
    pub(crate) fn observe(&mut self, judged: bool, x: f64) {
        let bin = self.binning.bin(x);
        let counts = if judged {
            &mut self.judged
        } else {
            &mut self.baseline
        };
        if let Some(c) = counts.get_mut(bin as usize) {
            // Both arms stop at 2^53 per bin, where counts stop being exact in f64.
            if *c < COUNT_MAX {
                *c += 1;
            }
        }
    }

    pub(crate) fn judge(&self, measure: Divergence) -> Finding {
        let n: u64 = self.judged.iter().sum();
        let m: u64 = self.baseline.iter().sum();
        let mut found = Finding {
            divergence: None,
            used: n,
            baseline_used: m,
            bin: None,
        };
        if n == 0 || m == 0 {
            return found;
        }
        let (nf, mf) = (n as f64, m as f64);
        let seen = self
            .judged
            .iter()
            .zip(&self.baseline)
            .filter(|&(a, b)| a + b > 0)
            .count() as f64;
        let mut total = 0.0;
        let mut worst = (0u32, -1.0f64);
        for (i, (&a, &b)) in self.judged.iter().zip(&self.baseline).enumerate() {
            if a + b == 0 {
                continue;
            }
            let term = match measure {
                Divergence::Psi => {
                    let p = (a as f64 + 0.5) / (nf + 0.5 * seen);
                    let q = (b as f64 + 0.5) / (mf + 0.5 * seen);
                    (p - q) * libm::log(p / q)
                }
                Divergence::Js => {
                    let (p, q) = (a as f64 / nf, b as f64 / mf);
                    let mid = 0.5 * (p + q);
                    0.5 * (kl_term(p, mid) + kl_term(q, mid))
                }
            };
            total += term;
            if term > worst.1 {
                worst = (i as u32, term);
            }
        }
        found.divergence = Some(match measure {
            Divergence::Psi => total,
            // Rounding can leave a hair below 0 for equal distributions.
            Divergence::Js => libm::sqrt(total.max(0.0) / core::f64::consts::LN_2),
        });
        let i = worst.0 as usize;
        found.bin = Some((
            worst.0,
            self.judged[i] as f64 / nf,
            self.baseline[i] as f64 / mf,
        ));
        found
    }
}

/// p·ln(p / m), 0 where p is 0.
fn kl_term(p: f64, m: f64) -> f64 {
    if p > 0.0 { p * libm::log(p / m) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(counts_a: &[u64], counts_b: &[u64]) -> Drift {
        Drift {
            binning: Binning::Categories(counts_a.len() as u32 - 1),
            judged: counts_a.to_vec(),
            baseline: counts_b.to_vec(),
        }
    }

    #[test]
    fn categories_and_equal_bins_place_values() {
        let c = Binning::Categories(3);
        assert_eq!(
            [0.0, 1.0, 2.0, 3.0, -1.0, 1.5, f64::NAN].map(|x| c.bin(x)),
            [0, 1, 2, 3, 3, 3, 3]
        );
        let e = Binning::Equal(Bins {
            min: 0.0,
            max: 1.0,
            count: 4,
        });
        assert_eq!(e.len(), 6);
        assert_eq!(
            [-0.1, 0.0, 0.24, 0.25, 0.99, 1.0, f64::NAN].map(|x| e.bin(x)),
            [0, 1, 1, 2, 4, 5, 5]
        );
    }

    #[test]
    fn psi_matches_the_formula_by_hand() {
        // Shares with smoothing (3 bins seen): p = (10.5, 20.5, 70.5)/101.5,
        // q = (30.5, 30.5, 40.5)/101.5.
        let d = fill(&[10, 20, 70, 0], &[30, 30, 40, 0]);
        let f = d.judge(Divergence::Psi);
        let p: [f64; 3] = [10.5 / 101.5, 20.5 / 101.5, 70.5 / 101.5];
        let q = [30.5 / 101.5, 30.5 / 101.5, 40.5 / 101.5];
        let want: f64 = (0..3).map(|i| (p[i] - q[i]) * libm::log(p[i] / q[i])).sum();
        assert!((f.divergence.unwrap() - want).abs() < 1e-15);
        assert_eq!(f.used, 100);
        assert_eq!(f.baseline_used, 100);
        // Bin 0 moved most (0.1 against 0.3).
        assert_eq!(f.bin, Some((0, 0.1, 0.3)));
    }

    #[test]
    fn js_is_zero_for_equal_shares_and_one_for_disjoint_ones() {
        let same = fill(&[5, 10, 0], &[50, 100, 0]).judge(Divergence::Js);
        assert!(same.divergence.unwrap() < 1e-7, "{same:?}");
        let apart = fill(&[5, 0], &[0, 7]).judge(Divergence::Js);
        assert!((apart.divergence.unwrap() - 1.0).abs() < 1e-15);
        let psi = fill(&[5, 10, 0], &[50, 100, 0]).judge(Divergence::Psi);
        assert!(psi.divergence.unwrap() < 1e-3);
    }

    #[test]
    fn nothing_is_judged_before_both_arms_have_samples() {
        let f = fill(&[3, 0], &[0, 0]).judge(Divergence::Psi);
        assert_eq!(f.divergence, None);
        assert_eq!(f.bin, None);
        let mut d = Drift::new(Binning::Categories(2));
        d.observe(true, 1.0);
        d.observe(false, 0.0);
        d.observe(false, 7.0); // not a category: "other"
        assert_eq!(d.judged, [0, 1, 0]);
        assert_eq!(d.baseline, [1, 0, 1]);
    }

    /// Between two samples of one distribution, PSI averages about (B − 1)(1/n + 1/m):
    /// the noise floor `samples_min` must lift the threshold above.
    #[test]
    fn the_null_psi_is_near_its_noise_floor() {
        let shares = [0.4, 0.3, 0.2, 0.1];
        let mut state = 7u64;
        let mut draw = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            let mut acc = 0.0;
            for (i, s) in shares.iter().enumerate() {
                acc += s;
                if u < acc {
                    return i as f64;
                }
            }
            3.0
        };
        let (n, runs) = (400, 300);
        let mut mean = 0.0;
        for _ in 0..runs {
            let mut d = Drift::new(Binning::Categories(4));
            for _ in 0..n {
                d.observe(true, draw());
                d.observe(false, draw());
            }
            mean += d.judge(Divergence::Psi).divergence.unwrap() / f64::from(runs);
        }
        // Four categories seen (the fifth bin, "other", stays empty).
        let floor = 3.0 * 2.0 / f64::from(n);
        assert!((mean / floor - 1.0).abs() < 0.15, "{mean} against {floor}");
    }
}
