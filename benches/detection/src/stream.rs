//! Seeded request streams for the two arms of a canary, second by second.
//!
//! Every scenario has a noise model for per-request latency, a load model shared by
//! both arms (traffic, latency and error rate move together), and an effect on the
//! candidate arm only (none for a null). Latency of one request is
//!
//! ```text
//! max(1 ms, lat_mult(t) · (MEAN + SD · (ε + δ)))        ε: standardized noise, δ: mean shift in σ
//! ```
//!
//! times the tail factor `g(z)` for the p99 regression; an error happens with probability
//! `ERROR_RATE · err_mult(t)` (times the ratio on the candidate for error regressions).
//! The same seed gives the same stream on the same target (`rand_distr` uses the platform's
//! math, so not necessarily bit for bit on another target).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal, StudentT};
use serde::Serialize;

/// Mean per-request latency of a healthy arm at nominal load, in ms.
pub const LATENCY_MEAN_MS: f64 = 200.0;
/// Standard deviation of per-request latency at nominal load, in ms: a shift of 1σ is
/// +50 ms (+25 %).
pub const LATENCY_SD_MS: f64 = 50.0;
/// Per-request error probability of a healthy arm at nominal load.
pub const ERROR_RATE: f64 = 0.005;
/// Log-scale σ of the lognormal noise (a right tail: p99 of ε is about 3.9σ).
pub const LOGNORMAL_SIGMA: f64 = 1.0;
/// Standard normal quantile at 0.95: the tail regression starts above it.
pub const Z95: f64 = 1.644_853_626_951_472_2;
/// Standard normal quantile at 0.99: the tail regression is full above it.
pub const Z99: f64 = 2.326_347_874_040_841;

/// Arm index of the stable version in [`Second::arms`].
pub const STABLE: usize = 0;
/// Arm index of the candidate in [`Second::arms`].
pub const CANDIDATE: usize = 1;

/// Per-request latency noise, standardized to mean 0 and variance 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Noise {
    /// Independent N(0, 1).
    Gaussian,
    /// Student-t with 3 degrees of freedom, divided by √3 (infinite fourth moment).
    StudentT3,
    /// exp(s·Z), centred and scaled; s = [`LOGNORMAL_SIGMA`].
    LogNormal,
    /// AR(1) in each arm's request order: ε_i = φ ε_{i−1} + √(1−φ²) z_i.
    Ar1 {
        /// The autocorrelation at lag one.
        phi: f64,
    },
}

/// Load shared by both arms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Load {
    /// Constant traffic, latency and error rate.
    Constant,
    /// A compressed day: load ℓ(t) = (1 + amplitude · sin(2πt/period + random phase)),
    /// doubled during bursts (Poisson arrivals, 30–120 s each). Traffic scales with ℓ,
    /// latency with (1 + ℓ)/2 and the error rate with ℓ².
    Diurnal {
        /// Relative amplitude of the sinusoid (0.5: ±50 %).
        amplitude: f64,
        /// Period in seconds.
        period_s: u64,
        /// Expected bursts per hour.
        bursts_per_hour: f64,
        /// Load multiplier during a burst.
        burst_factor: f64,
    },
    /// An incident that hits both arms alike: for `duration_s`, starting uniformly between
    /// 5 minutes in and 10 minutes before the horizon, latency is multiplied by
    /// `latency_factor` and the error rate by `error_factor`; traffic is unchanged.
    Incident {
        /// Length of the incident in seconds.
        duration_s: u64,
        /// Latency multiplier during the incident.
        latency_factor: f64,
        /// Error-rate multiplier during the incident.
        error_factor: f64,
    },
}

/// What the candidate does differently (nothing, for a null).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// An A/A null: both arms alike.
    None,
    /// Every candidate request is slower by `sigmas` · [`LATENCY_SD_MS`].
    MeanShift {
        /// The shift in per-request standard deviations.
        sigmas: f64,
    },
    /// The latency of requests above the median's 95th percentile is multiplied by a
    /// factor that rises linearly in z from 1 at z₀.₉₅ to `factor` at z₀.₉₉ and stays
    /// there: p99 × `factor`, median and p95 unchanged.
    TailP99 {
        /// The p99 multiplier.
        factor: f64,
    },
    /// The candidate's error probability is `ratio` times the stable's.
    ErrorRatio {
        /// The error-rate ratio.
        ratio: f64,
    },
}

/// One seeded scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scenario {
    /// Short name, used in tables and files.
    pub name: &'static str,
    /// One line for the table's legend.
    pub description: &'static str,
    /// Latency noise.
    pub noise: Noise,
    /// Shared load.
    pub load: Load,
    /// The candidate's regression.
    pub effect: Effect,
    /// Seconds from the canary's start at which the regression begins: 0 for the nulls
    /// and the regressions present from the start; a change-point alternative (for the
    /// change detectors, which learn the candidate's own reference from its first
    /// samples) starts later. Delay, samples, errors and exposure count from here.
    pub onset_s: u64,
}

impl Scenario {
    /// Whether the candidate is as good as the stable (every rollback is a false one).
    pub fn is_null(&self) -> bool {
        self.effect == Effect::None
    }
}

/// The scenarios of the benchmark: six nulls, then the alternatives.
pub fn scenarios() -> Vec<Scenario> {
    use Effect::*;
    let diurnal = Load::Diurnal {
        amplitude: 0.5,
        period_s: 3600,
        bursts_per_hour: 6.0,
        burst_factor: 2.0,
    };
    let incident = Load::Incident {
        duration_s: 300,
        latency_factor: 2.0,
        error_factor: 10.0,
    };
    let s = |name, description, noise, load, effect| Scenario {
        name,
        description,
        noise,
        load,
        effect,
        onset_s: 0,
    };
    let change = |name, description, sigmas| Scenario {
        onset_s: CHANGE_ONSET_S,
        ..s(
            name,
            description,
            Noise::Gaussian,
            Load::Constant,
            MeanShift { sigmas },
        )
    };
    vec![
        s(
            "null_stationary",
            "A/A, Gaussian latency, constant load",
            Noise::Gaussian,
            Load::Constant,
            None,
        ),
        s(
            "null_diurnal_bursts",
            "A/A, load ±50 % over a 1 h cycle plus 2× bursts (6/h), shared by both arms",
            Noise::Gaussian,
            diurnal,
            None,
        ),
        s(
            "null_incident",
            "A/A, a 5 min incident (latency ×2, errors ×10) on both arms",
            Noise::Gaussian,
            incident,
            None,
        ),
        s(
            "null_student_t3",
            "A/A, Student-t3 latency noise",
            Noise::StudentT3,
            Load::Constant,
            None,
        ),
        s(
            "null_lognormal",
            "A/A, lognormal latency noise (s = 1)",
            Noise::LogNormal,
            Load::Constant,
            None,
        ),
        s(
            "null_ar1",
            "A/A, AR(1) latency noise, φ = 0.5 in request order",
            Noise::Ar1 { phi: 0.5 },
            Load::Constant,
            None,
        ),
        s(
            "mean_shift_0.25",
            "every candidate request +0.25σ (+12.5 ms)",
            Noise::Gaussian,
            Load::Constant,
            MeanShift { sigmas: 0.25 },
        ),
        s(
            "mean_shift_0.5",
            "every candidate request +0.5σ (+25 ms)",
            Noise::Gaussian,
            Load::Constant,
            MeanShift { sigmas: 0.5 },
        ),
        s(
            "mean_shift_1",
            "every candidate request +1σ (+50 ms)",
            Noise::Gaussian,
            Load::Constant,
            MeanShift { sigmas: 1.0 },
        ),
        s(
            "mean_shift_2",
            "every candidate request +2σ (+100 ms)",
            Noise::Gaussian,
            Load::Constant,
            MeanShift { sigmas: 2.0 },
        ),
        s(
            "p99_plus_50pct",
            "lognormal latency, candidate p99 ×1.5, median and p95 unchanged",
            Noise::LogNormal,
            Load::Constant,
            TailP99 { factor: 1.5 },
        ),
        s(
            "error_ratio_1.5",
            "candidate error rate 0.75 % vs 0.5 %",
            Noise::Gaussian,
            Load::Constant,
            ErrorRatio { ratio: 1.5 },
        ),
        s(
            "error_ratio_2",
            "candidate error rate 1 % vs 0.5 %",
            Noise::Gaussian,
            Load::Constant,
            ErrorRatio { ratio: 2.0 },
        ),
        s(
            "error_ratio_5",
            "candidate error rate 2.5 % vs 0.5 %",
            Noise::Gaussian,
            Load::Constant,
            ErrorRatio { ratio: 5.0 },
        ),
        change(
            "change_mean_0.5_at_10min",
            "every candidate request +0.5σ (+25 ms) from 10 min in, healthy before",
            0.5,
        ),
        change(
            "change_mean_1_at_10min",
            "every candidate request +1σ (+50 ms) from 10 min in, healthy before",
            1.0,
        ),
    ]
}

/// Onset of the change-point alternatives: 10 min into the canary (12 000 candidate
/// samples at 20 req/s, far past a change detector's learned reference).
pub const CHANGE_ONSET_S: u64 = 600;

/// Traffic: requests per second over both arms, split by the canary weight.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Traffic {
    /// Requests per second over both arms at nominal load.
    pub requests_per_s: f64,
    /// Percent of traffic on the candidate (the policy's `set_weight`).
    pub weight: u32,
}

impl Traffic {
    /// Expected requests per second on each arm at nominal load, `[stable, candidate]`.
    pub fn per_arm(&self) -> [f64; 2] {
        let w = f64::from(self.weight) / 100.0;
        [self.requests_per_s * (1.0 - w), self.requests_per_s * w]
    }
}

/// One arm's requests in one second.
#[derive(Debug, Clone, Default)]
pub struct ArmSecond {
    /// Latency of each request, ms.
    pub latency: Vec<f64>,
    /// Requests that failed.
    pub errors: u64,
    /// Requests whose outcome the candidate's regression changed (slower, or an error
    /// that the stable would not have made): the exposure.
    pub affected: u64,
}

impl ArmSecond {
    /// Requests in this second.
    pub fn requests(&self) -> u64 {
        self.latency.len() as u64
    }
}

/// Both arms' requests in one second, `[stable, candidate]`.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Seconds since the canary started.
    pub t_s: u64,
    /// The arms, indexed by [`STABLE`] and [`CANDIDATE`].
    pub arms: [ArmSecond; 2],
}

/// Load conditions in one second.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Conditions {
    traffic: f64,
    latency: f64,
    errors: f64,
}

/// A seeded generator of one replication of a scenario.
#[derive(Debug)]
pub struct Stream {
    rng: StdRng,
    scenario: Scenario,
    rates: [f64; 2],
    t_s: u64,
    phase: f64,
    bursts: Vec<(u64, u64)>,
    incident: (u64, u64),
    ar: [f64; 2],
    t3: StudentT<f64>,
    lognormal_mean: f64,
    lognormal_sd: f64,
}

/// A well-mixed 64-bit seed from the run seed, scenario index and replication (SplitMix64).
pub fn replication_seed(seed: u64, scenario: usize, rep: u64) -> u64 {
    let mut z = seed
        ^ (scenario as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ rep.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Stream {
    /// A replication of `scenario` over `horizon_s` seconds, from `seed`.
    ///
    /// # Panics
    /// If a tail regression is asked of a noise model without a normal driver (Student-t
    /// or AR(1)): the scenario list never does.
    pub fn new(scenario: Scenario, traffic: Traffic, horizon_s: u64, seed: u64) -> Self {
        if matches!(scenario.effect, Effect::TailP99 { .. }) {
            assert!(
                matches!(scenario.noise, Noise::Gaussian | Noise::LogNormal),
                "a tail regression needs Gaussian or lognormal noise"
            );
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut phase = 0.0;
        let mut bursts = Vec::new();
        let mut incident = (u64::MAX, u64::MAX);
        match scenario.load {
            Load::Constant => {}
            Load::Diurnal {
                bursts_per_hour, ..
            } => {
                phase = rng.random::<f64>() * std::f64::consts::TAU;
                // Poisson burst arrivals over the horizon, each 30–120 s long.
                let mut t = 0.0;
                loop {
                    let u: f64 = rng.random();
                    t += -libm::log(1.0 - u) * 3600.0 / bursts_per_hour;
                    if t >= horizon_s as f64 {
                        break;
                    }
                    let len = rng.random_range(30..=120u64);
                    bursts.push((t as u64, t as u64 + len));
                }
            }
            Load::Incident { duration_s, .. } => {
                let lo = 300.min(horizon_s);
                let hi = horizon_s.saturating_sub(600).max(lo + 1);
                let start = rng.random_range(lo..hi);
                incident = (start, start + duration_s);
            }
        }
        let s = LOGNORMAL_SIGMA;
        let lognormal_mean = libm::exp(s * s / 2.0);
        let lognormal_sd = libm::sqrt((libm::exp(s * s) - 1.0) * libm::exp(s * s));
        Self {
            rng,
            scenario,
            rates: traffic.per_arm(),
            t_s: 0,
            phase,
            bursts,
            incident,
            ar: [0.0; 2],
            t3: StudentT::new(3.0).expect("3 degrees of freedom"),
            lognormal_mean,
            lognormal_sd,
        }
    }

    fn conditions(&self, t: u64) -> Conditions {
        match self.scenario.load {
            Load::Constant => Conditions {
                traffic: 1.0,
                latency: 1.0,
                errors: 1.0,
            },
            Load::Diurnal {
                amplitude,
                period_s,
                burst_factor,
                ..
            } => {
                let angle = std::f64::consts::TAU * t as f64 / period_s as f64 + self.phase;
                let mut load = 1.0 + amplitude * libm::sin(angle);
                if self.bursts.iter().any(|&(a, b)| a <= t && t < b) {
                    load *= burst_factor;
                }
                Conditions {
                    traffic: load,
                    latency: (1.0 + load) / 2.0,
                    errors: load * load,
                }
            }
            Load::Incident {
                latency_factor,
                error_factor,
                ..
            } => {
                let on = self.incident.0 <= t && t < self.incident.1;
                Conditions {
                    traffic: 1.0,
                    latency: if on { latency_factor } else { 1.0 },
                    errors: if on { error_factor } else { 1.0 },
                }
            }
        }
    }

    /// Standardized noise ε and its normal driver z (0 where there is none).
    fn noise(&mut self, arm: usize) -> (f64, f64) {
        match self.scenario.noise {
            Noise::Gaussian => {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                (z, z)
            }
            Noise::StudentT3 => {
                let t = self.t3.sample(&mut self.rng);
                (t / libm::sqrt(3.0), 0.0)
            }
            Noise::LogNormal => {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                let e = (libm::exp(LOGNORMAL_SIGMA * z) - self.lognormal_mean) / self.lognormal_sd;
                (e, z)
            }
            Noise::Ar1 { phi } => {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                let e = phi * self.ar[arm] + libm::sqrt(1.0 - phi * phi) * z;
                self.ar[arm] = e;
                (e, 0.0)
            }
        }
    }

    /// The next second of both arms' requests, into `out` (its buffers are reused).
    pub fn next_second(&mut self, out: &mut Second) {
        let t = self.t_s;
        self.t_s += 1;
        let c = self.conditions(t);
        out.t_s = t;
        for arm in [STABLE, CANDIDATE] {
            let a = &mut out.arms[arm];
            a.latency.clear();
            a.errors = 0;
            a.affected = 0;
            let rate = self.rates[arm] * c.traffic;
            let n = if rate > 0.0 {
                Poisson::new(rate)
                    .expect("a positive rate")
                    .sample(&mut self.rng) as u64
            } else {
                0
            };
            let effect = if arm == CANDIDATE && t >= self.scenario.onset_s {
                self.scenario.effect
            } else {
                Effect::None
            };
            let p = (ERROR_RATE * c.errors).min(1.0);
            for _ in 0..n {
                let (e, z) = self.noise(arm);
                let shift = match effect {
                    Effect::MeanShift { sigmas } => sigmas,
                    _ => 0.0,
                };
                let mut x = c.latency * (LATENCY_MEAN_MS + LATENCY_SD_MS * (e + shift));
                let mut hit = shift != 0.0;
                if let Effect::TailP99 { factor } = effect
                    && z > Z95
                {
                    x *= tail_factor(z, factor);
                    hit = true;
                }
                let u: f64 = self.rng.random();
                let failed = match effect {
                    Effect::ErrorRatio { ratio } => {
                        let failed = u < (p * ratio).min(1.0);
                        hit = failed && u >= p;
                        failed
                    }
                    _ => u < p,
                };
                a.latency.push(x.max(1.0));
                a.errors += u64::from(failed);
                a.affected += u64::from(hit);
            }
        }
    }
}

/// The tail regression's latency multiplier at normal driver `z`: 1 up to z₀.₉₅, then
/// linear in z up to `factor` at z₀.₉₉, then `factor`.
pub fn tail_factor(z: f64, factor: f64) -> f64 {
    if z <= Z95 {
        1.0
    } else if z >= Z99 {
        factor
    } else {
        1.0 + (factor - 1.0) * (z - Z95) / (Z99 - Z95)
    }
}
