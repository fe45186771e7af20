//! # rollguard-backtest
//!
//! "With this policy, how many good versions would we have rolled back last quarter,
//! and how fast would it have caught the incidents we had?" A backtest replays recorded
//! traffic through fresh [`rollguard::Policy`]s, as a router obeying them would route
//! it, optionally injects a regression into the candidate's share, and resamples the
//! recording (a moving-block bootstrap) for many seeded replications. The [`Report`]
//! gives the realised false-rollback rate with its confidence interval, the detection
//! delay, the time from onset to restored traffic, the exposure, and the error of the
//! policy's onset estimate.
//!
//! Deterministic like the core: replication `r` of seed `s` is the same outcome in
//! every process and on every platform, so replications may be split across workers
//! and joined with [`Report::from_outcomes`].
//!
//! ```
//! use rollguard::{PolicyConfig, Sample};
//! use rollguard_backtest::{backtest, BacktestSpec, Recording};
//!
//! let config: PolicyConfig = serde_json::from_str(r#"{
//!   "format_version": 1,
//!   "versions": [{"id": "v1", "digest": "sha256:aa", "validated": true},
//!                {"id": "v2", "digest": "sha256:bb"}],
//!   "stable": "v1", "candidate": "v2",
//!   "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
//!   "gates": [{"name": "mean", "metric": "latency_ms", "stat": "mean",
//!              "rule": {"kind": "threshold", "max": 150}, "samples_min": 20}],
//!   "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 600000}]}
//! }"#)?;
//! // Half an hour of production latency, one request every 100 ms.
//! let samples = (0..18_000u64)
//!     .map(|i| Sample::value(i * 100, "v1", "latency_ms", 100.0 + (i % 7) as f64))
//!     .collect();
//! let recording = Recording::new(samples)?;
//! let spec = BacktestSpec::from_json(r#"{"replications": 4,
//!   "inject": {"metric": "latency_ms", "change": {"kind": "ratio", "factor": 2.0},
//!              "onset_ms": 120000}}"#)?;
//! let report = backtest(&config, &recording, &spec)?;
//! assert_eq!(report.detected.unwrap().count, 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod calibrate;
mod drill;
mod error;
mod recording;
mod report;
mod rng;
mod run;
mod spec;

pub use calibrate::{CalibrateSpec, Calibration, Trial, calibrate, check_calibration};
pub use drill::{Drill, DrillResult, drills, drills_markdown, run_drills};
pub use error::BacktestError;
pub use recording::Recording;
pub use report::{Rate, Report, Spread};
pub use run::{FollowUpOutcome, Outcome, RollbackOutcome, check, run_replication};
pub use spec::{BacktestSpec, Change, FollowUp, Injection, Resample, Traffic};

use rollguard::PolicyConfig;

/// Runs every replication of `spec` in order and sums them up. To split the work,
/// call [`run_replication`] for any subset and join with [`Report::from_outcomes`]:
/// the report is the same.
///
/// # Errors
/// As [`run_replication`].
pub fn backtest(
    config: &PolicyConfig,
    recording: &Recording,
    spec: &BacktestSpec,
) -> Result<Report, BacktestError> {
    spec.check()?;
    let outcomes = (0..spec.replications)
        .map(|r| run_replication(config, recording, spec, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report::from_outcomes(outcomes))
}
