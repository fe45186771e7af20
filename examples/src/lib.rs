//! Shared helpers for the examples: a tiny seeded random number generator (so every
//! example is reproducible without an external `rand`) and clock formatting.
//!
//! The binaries:
//!
//! - `service-loop` (`src/bin/service_loop.rs`): a [`rollguard::Policy`] embedded in a
//!   service's event loop, the reference for the README quickstart;
//! - `gen-demo` (`src/bin/gen_demo.rs`): drives a policy through the demo story and
//!   records every input into `examples/scenarios/demo.json`, which `rollguard demo`
//!   replays;
//! - `gen-statistical` (`src/bin/gen_statistical.rs`): the same for
//!   `examples/scenarios/statistical.json`, one gate of every statistical kind, which the
//!   dashboard bundles next to the demo to show each kind's evidence;
//! - `gen-tenants` (`src/bin/gen_tenants.rs`): the same for
//!   `examples/scenarios/tenants.json`, eight tenants judged per tenant with a gold tier
//!   and an impact rule, which `rollguard demo --tenants` tells and the dashboard shows
//!   as a grid of verdicts per scope.

/// SplitMix64: a 64-bit generator with a one-word state. Not cryptographic; chosen
/// because it is tiny, fast, and gives the same stream on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An approximately standard normal number: the Irwin–Hall sum of 12 uniforms
    /// minus 6. It needs no logarithm or square root, so it is bit-identical on every
    /// platform, and its tails stop at ±6, which suits simulated metrics.
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.next_f64()).sum::<f64>() - 6.0
    }

    /// The number of successes in `n` trials of probability `p` (a binomial draw, by
    /// counting; `n` is a request count, small enough for that).
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| self.next_f64() < p).count() as u64
    }
}

/// Formats a duration in milliseconds as `h:mm:ss`.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Rounds `x` to `decimals` decimal places (basic IEEE operations only), to keep
/// recorded samples short and readable.
pub fn round_to(x: f64, decimals: u32) -> f64 {
    let scale = (0..decimals).fold(1.0, |acc, _| acc * 10.0);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_reproducible() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // The reference value of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn uniform_and_normal_stay_in_range() {
        let mut r = SplitMix64::new(1);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
            let z = r.normal();
            assert!((-6.0..=6.0).contains(&z));
            sum += z;
        }
        assert!((sum / 10_000.0).abs() < 0.05);
    }

    #[test]
    fn clock_formats_hours_minutes_seconds() {
        assert_eq!(clock(0), "0:00:00");
        assert_eq!(clock(5_640_000), "1:34:00");
        assert_eq!(clock(36_000_000 + 61_999), "10:01:01");
    }

    #[test]
    fn round_to_keeps_the_requested_decimals() {
        assert_eq!(round_to(123.456, 1), 123.5);
        assert_eq!(round_to(0.91234, 3), 0.912);
    }
}
