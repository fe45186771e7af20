//! What the simulation tests share: a seeded generator (the core never draws random
//! numbers) and a policy whose rollout of v2 has started.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use rollguard::{Input, Policy};

/// SplitMix64.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1): never 0, so its logarithm is finite.
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// N(0, 1), by Box-Muller over the pure-Rust libm.
    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        libm::sqrt(-2.0 * libm::log(u)) * libm::cos(core::f64::consts::TAU * v)
    }

    /// Binomial(n, p), one trial at a time.
    pub(crate) fn binomial(&mut self, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| self.uniform() < p).count() as u64
    }
}

/// The policy of `config` at time 0 with v2's rollout started and its first action
/// acknowledged.
pub(crate) fn rolled_out(config: &str) -> Policy {
    let mut p = Policy::from_json(config, 0).expect("valid config");
    let step = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .expect("starts");
    let id = step
        .actions()
        .find_map(|d| d.action_id)
        .expect("an action to acknowledge");
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .expect("ack");
    p
}
