//! The backtest's random numbers.
//!
//! SplitMix64 (Steele, Lea and Flood 2014) written out rather than taken from `rand`:
//! a replication must draw the same numbers in every release, on every platform and in
//! every process of a Ray fleet, and `rand`'s generators and distributions do not
//! promise value stability across versions. Ten lines keep that promise here.

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// A generator for one purpose (`stream`) of one replication of a seeded backtest.
    /// Each purpose draws from its own stream, so a change in how often one of them
    /// draws does not move the others.
    pub(crate) fn for_stream(seed: u64, replication: u32, stream: u64) -> Self {
        let mut base = Self(seed);
        let a = base.next_u64();
        let mut r = Self(a ^ u64::from(replication).wrapping_mul(GAMMA));
        let b = r.next_u64();
        Self(b ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        if span == 0 {
            return self.next_u64();
        }
        // Lemire's multiply-shift; the bias is below 2^-64 per draw for these spans.
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// A binomial draw: the number of successes in `n` trials of probability `p`.
    /// Exact (one Bernoulli per trial) up to 1 000 trials, the normal approximation
    /// (rounded, clamped to `0..=n`) beyond.
    pub(crate) fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if n <= 1_000 {
            return (0..n).filter(|_| self.next_f64() < p).count() as u64;
        }
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        let z = libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * core::f64::consts::PI * u2);
        let nf = n as f64;
        let x = libm::round(nf * p + z * libm::sqrt(nf * p * (1.0 - p)));
        x.clamp(0.0, nf) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // The first outputs of SplitMix64 seeded with 0, as printed by the reference C
        // implementation (Vigna, prng.di.unimi.it/splitmix64.c).
        let mut r = Rng(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn streams_and_replications_differ() {
        let a = Rng::for_stream(7, 0, 1).next_u64();
        assert_ne!(a, Rng::for_stream(7, 1, 1).next_u64());
        assert_ne!(a, Rng::for_stream(7, 0, 2).next_u64());
        assert_ne!(a, Rng::for_stream(8, 0, 1).next_u64());
        assert_eq!(a, Rng::for_stream(7, 0, 1).next_u64());
    }

    #[test]
    fn between_stays_in_range_and_reaches_both_ends() {
        let mut r = Rng(3);
        let draws: Vec<u64> = (0..2_000).map(|_| r.between(5, 8)).collect();
        assert!(draws.iter().all(|d| (5..=8).contains(d)));
        assert!(draws.contains(&5) && draws.contains(&8));
        assert_eq!(r.between(9, 9), 9);
    }

    #[test]
    fn binomial_means_are_near_n_p() {
        let mut r = Rng(11);
        for (n, p) in [(50u64, 0.2), (5_000, 0.01)] {
            let reps = 400;
            let sum: u64 = (0..reps).map(|_| r.binomial(n, p)).sum();
            let mean = sum as f64 / f64::from(reps);
            let sd = (n as f64 * p * (1.0 - p) / f64::from(reps)).sqrt();
            assert!(
                (mean - n as f64 * p).abs() < 5.0 * sd,
                "n={n} p={p} mean={mean}"
            );
        }
    }
}
