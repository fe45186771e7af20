//! `rollguard backtest`: recorded traffic through fresh policies, with an optional
//! injected regression and resampling, summed up as Markdown or JSON.

use std::path::{Path, PathBuf};

use rollguard::{Input, PolicyConfig, Sample};
use rollguard_backtest::{
    BacktestSpec, CalibrateSpec, Recording, Report, Resample, Traffic, Trial, run_replication,
};

use crate::error::CliError;
use crate::replay::{finish_bar, open, progress_bar, read_text};
use crate::samples::{Format, SampleReader};

/// What `backtest` was asked, flags over the `--spec` file.
#[derive(Debug, clap::Args)]
pub(crate) struct BacktestArgs {
    /// The policy (a PolicyConfig JSON file)
    #[arg(long, required_unless_present = "scenario", requires = "samples")]
    policy: Option<PathBuf>,
    /// Recorded samples: JSON lines or CSV, as `replay --samples` reads them
    /// (inputs other than samples are skipped)
    #[arg(long, requires = "policy")]
    samples: Option<PathBuf>,
    /// A scenario instead of --policy and --samples: its policy (without its
    /// `candidate`), and as the recording the traffic its stable version served
    /// (each sample of the version that was stable when it came)
    #[arg(long, conflicts_with_all = ["policy", "samples"])]
    scenario: Option<PathBuf>,
    /// How a recording of one population reaches the arms: `split` routes each sample
    /// by the candidate's weight (per-request samples), `duplicate` gives each arm all
    /// of it, the candidate an independently resampled copy (aggregated samples, such
    /// as a scrape's p95 or error count)
    #[arg(long, value_enum, conflicts_with = "recorded_candidate")]
    traffic: Option<TrafficArg>,
    /// The samples file's format (default: from its extension)
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// A BacktestSpec JSON file: {candidate, traffic, replications, seed, resample,
    /// inject, ack_delay_ms}; the flags below override its fields
    #[arg(long)]
    spec: Option<PathBuf>,
    /// The version rolled out (default: the policy's candidate)
    #[arg(long)]
    candidate: Option<String>,
    /// The regression to inject, as JSON, e.g. '{"metric": "latency_ms", "change":
    /// {"kind": "ratio", "factor": 1.3}, "onset_ms": 600000}'
    #[arg(long)]
    inject: Option<String>,
    /// Independent replications
    #[arg(long)]
    replications: Option<u32>,
    /// The seed every replication's draws derive from
    #[arg(long)]
    seed: Option<u64>,
    /// Resample the recording in blocks of this many milliseconds (a moving-block
    /// bootstrap) for each replication
    #[arg(long)]
    block_ms: Option<u64>,
    /// The recording holds both arms: samples whose arm is ARM are the candidate's
    /// (default: one population; see --traffic)
    #[arg(long, value_name = "ARM")]
    recorded_candidate: Option<String>,
    /// How long the router takes to acknowledge an action
    #[arg(long)]
    ack_delay_ms: Option<u64>,
    /// Print the report as JSON (with every replication's outcome) instead of Markdown
    #[arg(long)]
    json: bool,
    /// The longest line of the samples file, and of the policy and spec files, read
    #[arg(long, default_value_t = crate::samples::DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
}

/// `--traffic`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TrafficArg {
    Split,
    Duplicate,
}

/// What `calibrate` was asked: a backtest's arguments, and the gate and target.
#[derive(Debug, clap::Args)]
pub(crate) struct CalibrateArgs {
    #[command(flatten)]
    backtest: BacktestArgs,
    /// The gate, by name
    #[arg(long)]
    gate: String,
    /// The false-rollback rate to meet: the share of null replications rolled back
    /// naming the gate
    #[arg(long, default_value_t = 0.05)]
    target: f64,
    /// The setting searched: a bound of the gate's rule (max, min, max_ratio,
    /// min_ratio, max_increase, max_decrease) or consecutive (default: the rule's one
    /// bound)
    #[arg(long)]
    parameter: Option<String>,
}

/// Runs the drill library against the policy and prints what each found.
pub(crate) fn drill(args: &BacktestArgs) -> Result<(), CliError> {
    let spec = spec(args)?;
    if spec.inject.is_some() {
        return Err(CliError::bad_input(
            "invalid_value",
            "--inject",
            "each drill injects its own failure",
        ));
    }
    let (config, recording) = source(args)?;
    let results =
        rollguard_backtest::run_drills(&config, &recording, &spec).map_err(backtest_error)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    } else {
        print!("{}", rollguard_backtest::drills_markdown(&results));
    }
    Ok(())
}

/// Runs the backtest and prints its report.
pub(crate) fn run(args: &BacktestArgs) -> Result<(), CliError> {
    let spec = spec(args)?;
    let (config, recording) = source(args)?;
    let bar = progress_bar(
        u64::from(spec.replications),
        2,
        "{elapsed_precise} [{wide_bar}] {pos}/{len} replications",
    );
    let mut outcomes = Vec::with_capacity(spec.replications as usize);
    for r in 0..spec.replications {
        outcomes.push(run_replication(&config, &recording, &spec, r).map_err(backtest_error)?);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    finish_bar(bar);
    let report = Report::from_outcomes(outcomes);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Runs the calibration and prints what it found.
pub(crate) fn calibrate(args: &CalibrateArgs) -> Result<(), CliError> {
    let spec = spec(&args.backtest)?;
    let (config, recording) = source(&args.backtest)?;
    let what = CalibrateSpec {
        gate: args.gate.clone(),
        target: args.target,
        parameter: args.parameter.clone(),
    };
    let c =
        rollguard_backtest::calibrate(&config, &recording, &spec, &what).map_err(backtest_error)?;
    if args.backtest.json {
        println!("{}", serde_json::to_string_pretty(&c).unwrap_or_default());
        return Ok(());
    }
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let rate = |t: &Trial| {
        format!(
            "{} (95 % CI {} – {}, {} of {})",
            pct(t.rate.rate),
            pct(t.rate.low),
            pct(t.rate.high),
            t.rate.count,
            t.rate.of
        )
    };
    let (gate, p) = (&c.gate, &c.parameter);
    if p == "alpha" {
        println!(
            "{gate}: a statistical gate at alpha {}: realised false-rollback rate {} on the null: {}",
            c.result.value,
            rate(&c.result),
            if c.met {
                "within its alpha"
            } else {
                "ABOVE its alpha"
            }
        );
    } else {
        println!(
            "{gate}.{p} as configured: {} → {}",
            c.configured.value,
            rate(&c.configured)
        );
        println!(
            "{gate}.{p} = {} meets the target {}: {} ({} values tried)",
            c.result.value,
            pct(c.target),
            rate(&c.result),
            c.trials.len()
        );
    }
    Ok(())
}

/// The policy and the recording the arguments name.
fn source(args: &BacktestArgs) -> Result<(PolicyConfig, Recording), CliError> {
    match (&args.scenario, &args.policy, &args.samples) {
        (Some(path), _, _) => from_scenario(path),
        (None, Some(policy), Some(samples)) => Ok((
            PolicyConfig::from_json(&read_text(policy, args.max_input_bytes)?)?,
            read_recording(samples, args.format, args.max_input_bytes)?,
        )),
        // clap's `required_unless_present` and `requires` rule this out.
        _ => Err(CliError::bad_input(
            "usage",
            "",
            "give --scenario, or --policy and --samples",
        )),
    }
}

fn backtest_error(e: rollguard_backtest::BacktestError) -> CliError {
    CliError::bad_input(e.code, e.path, e.message)
}

/// The spec file's, with the flags' fields over it.
fn spec(args: &BacktestArgs) -> Result<BacktestSpec, CliError> {
    let mut spec = match &args.spec {
        Some(path) => BacktestSpec::from_json(&read_text(path, args.max_input_bytes)?)
            .map_err(backtest_error)?,
        None => BacktestSpec::default(),
    };
    if let Some(c) = &args.candidate {
        spec.candidate = Some(c.clone());
    }
    if let Some(text) = &args.inject {
        spec.inject = Some(
            serde_json::from_str(text)
                .map_err(|e| CliError::bad_input("invalid_json", "--inject", e.to_string()))?,
        );
    }
    if let Some(n) = args.replications {
        spec.replications = n;
    }
    if let Some(s) = args.seed {
        spec.seed = s;
    }
    if let Some(b) = args.block_ms {
        spec.resample = Some(Resample { block_ms: b });
    }
    match args.traffic {
        Some(TrafficArg::Split) => spec.traffic = Traffic::Split,
        Some(TrafficArg::Duplicate) => spec.traffic = Traffic::Duplicate,
        None => {}
    }
    if let Some(arm) = &args.recorded_candidate {
        spec.traffic = Traffic::Recorded {
            candidate_arm: arm.clone(),
        };
    }
    if let Some(d) = args.ack_delay_ms {
        spec.ack_delay_ms = d;
    }
    spec.check().map_err(backtest_error)?;
    Ok(spec)
}

/// Every sample in a samples file; commands and ticks in it are skipped (the backtest
/// drives its own rollout).
fn read_recording(path: &Path, format: Option<Format>, max: u64) -> Result<Recording, CliError> {
    let format = format.unwrap_or_else(|| Format::for_path(path));
    let (reader, _) = open(path)?;
    let mut samples: Vec<Sample> = Vec::new();
    for item in SampleReader::new(reader, format, path, max) {
        match item?.1 {
            Input::Observe(s) => samples.push(s),
            Input::ObserveBatch { samples: batch } => samples.extend(batch),
            _ => {}
        }
    }
    Recording::new(samples)
        .map_err(|e| CliError::bad_input(e.code, path.display().to_string(), e.message))
}

/// A scenario's policy, without its `candidate` (the backtest chooses what it rolls
/// out), and the traffic its stable version served ([`Recording::from_scenario`]).
fn from_scenario(path: &Path) -> Result<(PolicyConfig, Recording), CliError> {
    let text = read_text(path, crate::EXPLAIN_MAX_INPUT_BYTES)?;
    let scenario = rollguard::Scenario::from_json(&text)?;
    let recording = Recording::from_scenario(&scenario)
        .map_err(|e| CliError::bad_input(e.code, path.display().to_string(), e.message))?;
    let config = PolicyConfig {
        candidate: None,
        ..scenario.config
    };
    Ok((config, recording))
}
