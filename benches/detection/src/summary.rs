//! Summaries of many replications: rates with Wilson intervals, censored quantiles.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::run::Outcome;

/// The standard normal quantile at 0.975 (a two-sided 95 % interval).
pub const Z_975: f64 = 1.959_963_984_540_054;

/// The Wilson score interval for `k` successes in `n` trials at normal quantile `z`.
/// `(0, 1)` when `n` is 0.
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let z2 = z * z;
    let centre = (k + z2 / 2.0) / (n + z2);
    let half = z / (n + z2) * (k * (n - k) / n + z2 / 4.0).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The nearest-rank `q`-quantile (the ⌈q·n⌉-th smallest) of values where `None` is a
/// run that never stopped within the horizon (larger than every value). `None` when the
/// quantile falls on such a run (or there are no runs).
pub fn censored_quantile(values: &[Option<f64>], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1]).filter(|x| x.is_finite())
}

/// Median and 90th percentile over all replications, censored at the horizon: `None`
/// when more than half (a tenth) of the runs did not roll back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// The median, or `None` (beyond the horizon).
    pub median: Option<f64>,
    /// The 90th percentile, or `None` (beyond the horizon).
    pub p90: Option<f64>,
}

impl Quantiles {
    fn of(values: &[Option<f64>]) -> Self {
        Self {
            median: censored_quantile(values, 0.5),
            p90: censored_quantile(values, 0.9),
        }
    }
}

/// One scenario × method cell of the benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Method name.
    pub method: String,
    /// Whether the scenario is a null (every rollback is false).
    pub null: bool,
    /// Replications.
    pub reps: u64,
    /// Replications rolled back at or before a later onset (a change-point
    /// alternative's false alarms on healthy data; 0 when the onset is the start).
    pub early_rollbacks: u64,
    /// Replications with a rollback after the onset, within the horizon.
    pub rollbacks: u64,
    /// `rollbacks / (reps − early_rollbacks)`: the false-rollback rate of a null, the
    /// detection rate of an alternative among the runs that reached its onset.
    pub rate: f64,
    /// Wilson 95 % interval of the rate.
    pub rate_ci95: (f64, f64),
    /// Seconds from the onset (the canary's start unless the scenario has a later
    /// one) to the rollback, over the runs that reached the onset.
    pub delay_s: Quantiles,
    /// Candidate requests served before the rollback (samples per arm).
    pub candidate_samples: Quantiles,
    /// Errors on both arms before the rollback.
    pub error_events: Quantiles,
    /// Candidate requests the regression changed before the rollback.
    pub exposure: Quantiles,
    /// Median time of the rollbacks that happened (for nulls: when false alarms come).
    pub median_rollback_s_when_rolled_back: Option<f64>,
    /// How often each gate was among the tripped ones in a rollback.
    pub tripped_by: BTreeMap<String, u64>,
}

impl Summary {
    /// Summarizes the outcomes of one method on one scenario.
    pub fn new(scenario: &str, method: &str, null: bool, outcomes: &[Outcome]) -> Self {
        let reps = outcomes.len() as u64;
        let early_rollbacks = outcomes.iter().filter(|o| o.early).count() as u64;
        let rollbacks = outcomes.iter().filter(|o| o.delay_s.is_some()).count() as u64;
        let reached = reps - early_rollbacks;
        // Delays and counts over the runs that reached the onset (the conditional delay
        // of change detection; every run when the onset is the start).
        let when_stopped = |f: &dyn Fn(&Outcome) -> f64| -> Vec<Option<f64>> {
            outcomes
                .iter()
                .filter(|o| !o.early)
                .map(|o| o.delay_s.map(|_| f(o)))
                .collect()
        };
        let mut tripped_by = BTreeMap::new();
        for g in outcomes.iter().flat_map(|o| &o.tripped) {
            *tripped_by.entry(g.clone()).or_insert(0) += 1;
        }
        let times: Vec<Option<f64>> = outcomes
            .iter()
            .filter_map(|o| o.rollback_s)
            .map(Some)
            .collect();
        Self {
            scenario: scenario.into(),
            method: method.into(),
            null,
            reps,
            early_rollbacks,
            rollbacks,
            rate: if reached == 0 {
                0.0
            } else {
                rollbacks as f64 / reached as f64
            },
            rate_ci95: wilson(rollbacks, reached, Z_975),
            delay_s: Quantiles::of(&when_stopped(&|o| o.delay_s.unwrap_or(0.0))),
            candidate_samples: Quantiles::of(&when_stopped(&|o| o.candidate_requests as f64)),
            error_events: Quantiles::of(&when_stopped(&|o| o.error_events as f64)),
            exposure: Quantiles::of(&when_stopped(&|o| o.exposure as f64)),
            median_rollback_s_when_rolled_back: censored_quantile(&times, 0.5),
            tripped_by,
        }
    }
}
