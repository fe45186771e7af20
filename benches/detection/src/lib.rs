//! The rollguard detection benchmark (issue 9 §3): how often each method rolls back a
//! healthy candidate, and how fast it rolls back a bad one, on seeded canary streams.
//!
//! - [`stream`]: the scenarios (nulls and alternatives) and their seeded generator;
//! - [`method`]: the methods, each a named gate configuration;
//! - [`run`]: one replication, driving every method's [`rollguard::Policy`] through its
//!   public API on the same stream;
//! - [`summary`]: false-rollback and detection rates with Wilson intervals, delays;
//! - [`report`] and [`plot`]: the Markdown table, the JSON file and the PNG plots.
//!
//! Run it with `cargo run --release -p rollguard-detection -- [--quick] [--out DIR]`.

pub mod method;
pub mod plot;
pub mod report;
pub mod run;
pub mod stream;
pub mod summary;

use method::Method;
use report::Report;
use run::{Prepared, replicate};
use stream::{Scenario, Traffic};
use summary::Summary;

/// How much to run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// `quick` or `full`, for the report.
    pub mode: String,
    /// The run seed.
    pub seed: u64,
    /// Replications per null scenario.
    pub null_reps: u64,
    /// Replications per alternative scenario.
    pub alternative_reps: u64,
    /// Horizon of one replication, seconds.
    pub horizon_s: u64,
    /// Traffic and canary weight.
    pub traffic: Traffic,
}

/// Runs every scenario × method and summarizes it; `progress` is called after each
/// scenario with its name and cells.
///
/// # Errors
/// A method whose config is refused.
pub fn run(
    settings: &Settings,
    scenarios: &[Scenario],
    methods: &[Method],
    mut progress: impl FnMut(&Scenario, &[Summary]),
) -> Result<Report, String> {
    let prepared = methods
        .iter()
        .map(|m| Prepared::new(m, settings.traffic))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let reps = if scenario.is_null() {
            settings.null_reps
        } else {
            settings.alternative_reps
        };
        let mut outcomes = vec![Vec::with_capacity(reps as usize); methods.len()];
        for rep in 0..reps {
            let out = replicate(
                scenario,
                index,
                &prepared,
                settings.traffic,
                settings.horizon_s,
                settings.seed,
                rep,
            );
            for (all, o) in outcomes.iter_mut().zip(out) {
                all.push(o);
            }
        }
        let cells: Vec<Summary> = methods
            .iter()
            .zip(&outcomes)
            .map(|(m, o)| Summary::new(scenario.name, &m.name, scenario.is_null(), o))
            .collect();
        progress(scenario, &cells);
        results.extend(cells);
    }
    Ok(Report {
        settings: settings.clone(),
        runtime_s: 0.0,
        scenarios: scenarios.to_vec(),
        methods: methods.to_vec(),
        results,
    })
}
