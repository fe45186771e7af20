//! What a backtest runs: how traffic reaches the arms, what regression is injected,
//! how the recording is resampled, how many replications.

use serde::{Deserialize, Serialize};

use crate::error::BacktestError;

/// A backtest's settings. Every field has a default but `inject`'s absence is
/// meaningful: without it the backtest is a null run, and every automated rollback is
/// a false one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSpec {
    /// The version rolled out (default: the policy's `candidate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// How recorded samples reach the arms.
    #[serde(default)]
    pub traffic: Traffic,
    /// Independent replications (default 1).
    #[serde(default = "one")]
    pub replications: u32,
    /// The seed every replication's draws derive from (default 0). Replication `r` of
    /// seed `s` draws the same numbers however the replications are split across
    /// processes.
    #[serde(default)]
    pub seed: u64,
    /// Resample the recording for each replication (a moving-block bootstrap); without
    /// it every replication replays the recording as it is and differs only in its
    /// routing and injection draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resample: Option<Resample>,
    /// The regression injected into the candidate's traffic, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<Injection>,
    /// How long the router takes to execute an action before acknowledging it
    /// (default 0).
    #[serde(default)]
    pub ack_delay_ms: u64,
    /// A second rollout once the first has ended (its rollback or promotion
    /// acknowledged): "a bad candidate twice in a row". The injection applies to it
    /// too, at the same offset from its own start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<FollowUp>,
}

/// A rollout started after the first one ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// The version rolled out.
    pub candidate: String,
    /// How long after the first rollout ended (default 0).
    #[serde(default)]
    pub after_ms: u64,
}

fn one() -> u32 {
    1
}

impl Default for BacktestSpec {
    fn default() -> Self {
        Self {
            candidate: None,
            traffic: Traffic::default(),
            replications: 1,
            seed: 0,
            resample: None,
            inject: None,
            ack_delay_ms: 0,
            then: None,
        }
    }
}

/// How recorded samples reach the arms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Traffic {
    /// The recording is one population (production traffic on the stable version,
    /// whatever its `arm`): each sample goes to the candidate with the probability of
    /// the candidate's current weight, and to the stable version otherwise, as a router
    /// would send it. In shadow and preview the candidate gets a copy of every sample
    /// and serves none. Without an injection this is an A/A null: both arms see the
    /// same traffic.
    #[default]
    Split,
    /// The recording is one population, and each arm gets all of it: the stable
    /// version the recording itself, the candidate (while it is live or mirrored) a
    /// second copy, which with `resample` is resampled on its own (its own blocks), so
    /// that the two arms differ as two independent draws of the same traffic would.
    /// The A/A null for recordings of aggregated samples (a p95 per scrape, counts per
    /// minute), which cannot be split request by request. Exposure counts the
    /// candidate's share of each copy by its weight.
    Duplicate,
    /// The recording has both arms already (a recorded canary): samples whose `arm` is
    /// `candidate_arm` go to the candidate while it is live, the others to the stable
    /// version; after a rollback the candidate's samples are dropped (nobody is served
    /// by it any more).
    Recorded {
        /// The `arm` the recording gives the candidate's samples.
        candidate_arm: String,
    },
}

/// A moving-block bootstrap: the replication's recording is made of blocks of
/// `block_ms`, each copied from a uniformly drawn start in the recording and laid end
/// to end until it is as long as the original. Blocks keep the autocorrelation and
/// the daily shape within them; choose a block longer than the policy's windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resample {
    /// The length of a block.
    pub block_ms: u64,
}

/// A regression injected into the candidate's samples of one metric from an onset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// The metric changed; `*` (with `silence` only) for every metric.
    pub metric: String,
    /// How.
    pub change: Change,
    /// The onset, in milliseconds after the rollout starts.
    #[serde(default)]
    pub onset_ms: u64,
    /// When given, the onset is drawn uniformly from `onset_ms..=onset_max_ms` in each
    /// replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset_max_ms: Option<u64>,
    /// When given, the change lasts this long from the onset (a burst); otherwise to
    /// the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A change to the candidate's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Adds `delta` to every value.
    Shift {
        /// The amount.
        delta: f64,
    },
    /// Multiplies every value by `factor`.
    Ratio {
        /// The factor.
        factor: f64,
    },
    /// Multiplies a share of the values by `factor`: a tail-only regression (one
    /// request in twenty three times slower, say) that leaves the median alone.
    Tail {
        /// The share of samples changed, in (0, 1].
        share: f64,
        /// The factor.
        factor: f64,
    },
    /// Adds `per_hour × hours since the onset` to every value: a gradual drift (a
    /// quality score eroding, say, with a negative `per_hour`).
    Drift {
        /// The change per hour, in the metric's unit.
        per_hour: f64,
    },
    /// Drops the candidate's samples: a candidate that stops reporting (a crashed
    /// exporter, a silent failure).
    Silence {},
    /// Multiplies a count metric's event rate by `multiplier` (≥ 1): each non-event is
    /// turned into an event with the probability that takes the recording's overall
    /// rate `r` to `multiplier × r`.
    ErrorRate {
        /// The multiplier.
        multiplier: f64,
    },
}

impl BacktestSpec {
    /// Parses a spec from JSON.
    ///
    /// # Errors
    /// `invalid_json` with the path.
    pub fn from_json(text: &str) -> Result<Self, BacktestError> {
        serde_json::from_str(text).map_err(|e| BacktestError::json("spec", &e))
    }

    /// Checks the numbers a type cannot: positive counts and lengths, finite changes.
    ///
    /// # Errors
    /// `invalid_value` naming the field.
    pub fn check(&self) -> Result<(), BacktestError> {
        let bad = |path: &str, what: &str| Err(BacktestError::invalid(path, what));
        if self.replications == 0 {
            return bad("replications", "must be at least 1");
        }
        if self.resample.is_some_and(|r| r.block_ms == 0) {
            return bad("resample.block_ms", "must be positive");
        }
        if let Traffic::Recorded { candidate_arm } = &self.traffic
            && candidate_arm.is_empty()
        {
            return bad("traffic.candidate_arm", "must not be empty");
        }
        let Some(inject) = &self.inject else {
            return Ok(());
        };
        if inject.duration_ms == Some(0) {
            return bad("inject.duration_ms", "must be positive");
        }
        if inject.metric == "*" && !matches!(inject.change, Change::Silence {}) {
            return bad("inject.metric", "`*` (every metric) goes with silence only");
        }
        if inject.onset_max_ms.is_some_and(|m| m < inject.onset_ms) {
            return bad("inject.onset_max_ms", "must not be below onset_ms");
        }
        let finite = |x: f64| x.is_finite() && x.abs() <= 1e100;
        match inject.change {
            Change::Shift { delta } if !finite(delta) => {
                bad("inject.change.delta", "must be finite")
            }
            Change::Ratio { factor } if !(finite(factor) && factor >= 0.0) => {
                bad("inject.change.factor", "must be finite and not negative")
            }
            Change::Tail { share, .. } if !(share > 0.0 && share <= 1.0) => {
                bad("inject.change.share", "must be in (0, 1]")
            }
            Change::Tail { factor, .. } if !(finite(factor) && factor >= 0.0) => {
                bad("inject.change.factor", "must be finite and not negative")
            }
            Change::Drift { per_hour } if !finite(per_hour) => {
                bad("inject.change.per_hour", "must be finite")
            }
            Change::ErrorRate { multiplier } if !(finite(multiplier) && multiplier >= 1.0) => {
                bad("inject.change.multiplier", "must be finite and at least 1")
            }
            _ => Ok(()),
        }
    }
}
