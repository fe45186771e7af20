//! `rollguard`: replay scenarios and recorded metrics against a rollback policy, tell
//! the bundled demo's story, and validate policy files.
//!
//! Exit codes: 0 success, 2 bad input (JSON, CSV, config; clap's usage errors too;
//! with `replay --strict`, any refused input), 1 I/O failure. Errors print as `error: <code> at <path>: <message>` on stderr.

mod backtest;
mod demo;
mod error;
mod narrative;
mod replay;
mod samples;
mod scenario;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::CliError;
use crate::replay::ReplayOptions;
use crate::samples::{DEFAULT_MAX_INPUT_BYTES, Format};

/// Deterministic rollback policy for model and agent rollouts: replay, explain, validate,
/// backtest, calibrate, drill.
#[derive(Debug, Parser)]
#[command(
    name = "rollguard",
    version,
    after_help = "Examples:\n  \
        rollguard demo                                  watch a regression get caught and rolled back\n  \
        rollguard explain incident.json                 the same story for any scenario\n  \
        rollguard replay incident.json --summary        replay a scenario, trace as JSON lines\n  \
        rollguard replay --policy policy.json --samples metrics.csv\n  \
        rollguard validate policy.json\n  \
        rollguard backtest --policy policy.json --samples metrics.csv --replications 200 --block-ms 600000\n  \
        rollguard calibrate --policy policy.json --samples metrics.csv --gate p95 --target 0.01\n  \
        rollguard drill --scenario examples/scenarios/demo.json --candidate v2 --traffic duplicate\n\n\
        Exit codes: 0 ok, 2 bad input (with replay --strict: any refused input), 1 I/O failure."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a scenario, or recorded metrics against a policy, and print the trace as
    /// JSON lines
    #[command(
        long_about = "Replay inputs through a policy and print the trace to stdout as \
        JSON lines, one rollguard TraceEntry ({index, input, step | error}) per line.\n\n\
        Two modes:\n  \
        rollguard replay SCENARIO.json\n      \
        a scenario: {format_version, name, description, config, start, inputs: [...]}. It is \
        streamed: with format_version, config and start before inputs (the order rollguard \
        writes), each input is replayed as it is read; otherwise the inputs are held until \
        the end of the file, then replayed.\n  \
        rollguard replay --policy POLICY.json --samples FILE\n      \
        recorded metrics against a policy file (a bare PolicyConfig). FILE is JSON lines (an \
        input with \"kind\", or a bare sample object meaning observe) or, for a .csv file, \
        CSV with a header naming columns among at,arm,metric,value,events,total,tenant,tier,agent \
        (an empty cell is an absent field). The file is streamed.\n\n\
        One input (a line of FILE, an element of a scenario's inputs or any other field) is \
        read up to --max-input-bytes (1 MiB): a longer one stops the replay with \
        input_too_long (exit code 2) rather than taking gigabytes to parse.\n\n\
        Refused inputs are part of the trace (an entry with \"error\"); at the end, \
        `warning: N of M inputs refused, the first: …` on stderr says how many, and with \
        --strict the replay fails instead (exit code 2). A line of FILE or an input of \
        SCENARIO that does not parse stops the replay with its line number or path (exit code \
        2), after the trace of the inputs before it."
    )]
    Replay(ReplayArgs),
    /// Backtest a policy on recorded traffic: false rollbacks, detection delay, exposure
    #[command(
        long_about = "Replay recorded traffic through fresh policies, as a router obeying \
        them would route it, and report what the policy would have done: the realised \
        false-rollback rate with its 95 % Wilson interval, and with --inject the share of \
        regressions caught, the delay from onset to rollback and to restored traffic, the \
        exposure (units the bad version served) and the error of the policy's onset estimate.\n\n\
        The recording is one population by default (each sample goes to the candidate with \
        the probability of its current weight: without --inject an A/A null); with \
        --recorded-candidate ARM it holds both arms of a recorded canary. --block-ms resamples \
        it for each replication (a moving-block bootstrap); --seed makes every replication \
        reproducible anywhere.\n\n\
        Prints a Markdown table, or JSON with every replication's outcome with --json. A \
        progress bar shows on a terminal."
    )]
    Backtest(backtest::BacktestArgs),
    /// Calibrate a gate on recorded traffic: the bound that meets a false-rollback target
    #[command(
        long_about = "Backtest the null (no injection) with one setting of one gate varied, \
        and find the tightest value that keeps the share of replications rolled back by that \
        gate at or under --target: a threshold rule's bound (bracketed, then bisected) or its \
        persistence's consecutive (counted up). A statistical gate is checked instead: its \
        realised false-rollback rate, with its 95 % interval, against its nominal alpha.\n\n\
        Takes every argument of backtest but --inject."
    )]
    Calibrate(backtest::CalibrateArgs),
    /// Drill a policy: the seeds' failure modes injected into recorded traffic
    #[command(
        long_about = "Run the drill library against a policy on recorded traffic: a \
        latency regression (× 1.5), an error burst (rate × 5 for 5 minutes), a quality drift \
        (down 20 % of its mean per hour), a silent candidate (stops reporting) and a bad \
        candidate twice in a row (the next version started as soon as the first is rolled \
        back). Metrics are chosen from the policy's gates; the onset is a quarter into the \
        recording, at most 10 minutes. For each: how many replications rolled back, onset to \
        rollback and to restored traffic, to which version, and what became of the second \
        candidate.\n\nTakes every argument of backtest but --inject."
    )]
    Drill(backtest::BacktestArgs),
    /// Replay the bundled demo and tell its story: a regression caught and rolled back
    #[command(
        long_about = "Replay the bundled demo scenario (three rollouts of a support \
        agent: a healthy one, a latency regression that is rolled back, and an error \
        regression held by the cooldown and then rolled back by the circuit breaker) and print \
        what happened, moment by moment, with the gates' evidence."
    )]
    Demo(DemoArgs),
    /// Replay a scenario and tell its story, as `demo` does for the bundled one
    #[command(
        long_about = "Replay a scenario file ({format_version, name, description, config, \
        start, inputs: [...]}, as `rollguard replay` takes it, `rollguard demo \
        --print-scenario` prints it, or the examples' generators write it) and print what \
        happened, moment by moment: each rollout, every decision with its reason, the gates' \
        evidence when one trips (each statistical kind's e-value against its boundary, \
        statistic against its threshold, score or divergence), refused inputs, and the \
        final status. The whole file is read first, up to --max-input-bytes."
    )]
    Explain {
        /// The scenario; `-` reads stdin
        #[arg(value_name = "SCENARIO.json")]
        scenario: PathBuf,

        /// The longest file read; a longer one is refused with `input_too_long` (exit
        /// code 2) before it is parsed
        #[arg(long, value_name = "BYTES", default_value_t = EXPLAIN_MAX_INPUT_BYTES)]
        max_input_bytes: u64,
    },
    /// Check a policy file: print `ok` and its worst-case state size and work per
    /// input, or the first error with its JSON path
    #[command(
        long_about = "Check a policy file. A valid one prints `ok`, then its worst case \
        against its limits: the most bytes of state it can hold (limits.state_bytes_max) \
        and the most window reads by gates (limits.evaluations_per_input_max) and window \
        cells (limits.cells_read_per_input_max) one input can cause. An invalid one prints \
        the first error with its JSON path (exit code 2)."
    )]
    Validate {
        /// The policy file (a PolicyConfig document); `-` reads stdin
        #[arg(value_name = "POLICY.json")]
        policy: PathBuf,

        /// Print the result as one JSON object: {"ok": true, "footprint": {...},
        /// "limits": {...}}
        #[arg(long)]
        json: bool,

        /// The longest policy file read; a longer one is refused with `input_too_long`
        /// (exit code 2) before it is parsed
        #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT_BYTES)]
        max_input_bytes: u64,
    },
    /// Convert a Kayenta canary config into rollguard metrics and gates
    #[command(
        name = "import-kayenta",
        long_about = "Read a Kayenta canary config (NetflixACAJudge-v1.0) and print the \
        equivalent rollguard pieces as one JSON object: {\"metrics\": [...], \"gates\": \
        [...], \"warnings\": [...]}: a value metric and a dry-run mann_whitney gate per \
        Kayenta metric (names 1:1) and a kayenta_score gate with the classifier's group \
        weights and score thresholds. Provider queries and other fields rollguard does not \
        use are listed in warnings, also printed on stderr. A value rollguard cannot carry \
        over is an error with its JSON path (exit code 2)."
    )]
    ImportKayenta {
        /// The Kayenta canary config; `-` reads stdin
        #[arg(value_name = "CANARY-CONFIG.json")]
        config: PathBuf,

        /// The longest file read; a longer one is refused with `input_too_long` (exit
        /// code 2) before it is parsed
        #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT_BYTES)]
        max_input_bytes: u64,
    },
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The scenario to replay; `-` reads stdin
    #[arg(
        value_name = "SCENARIO.json",
        required_unless_present = "policy",
        conflicts_with_all = ["policy", "samples", "start", "format"]
    )]
    scenario: Option<PathBuf>,

    /// The policy to replay recorded samples against (a bare PolicyConfig)
    #[arg(long, value_name = "POLICY.json", requires = "samples")]
    policy: Option<PathBuf>,

    /// Recorded inputs: JSON lines, or CSV for a `.csv` file; `-` reads stdin
    #[arg(long, value_name = "FILE", requires = "policy")]
    samples: Option<PathBuf>,

    /// The samples file's format [default: csv for a .csv file, jsonl otherwise]
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// The policy's creation time in ms [default: the first input's time, a batch's first
    /// sample's]
    #[arg(long, value_name = "MS")]
    start: Option<u64>,

    /// Acknowledge every action the moment it is issued, as a caller that executes
    /// instantly would; the acks appear in the trace. On by default with --samples
    #[arg(long, overrides_with = "no_auto_ack")]
    auto_ack: bool,

    /// Do not acknowledge actions (with --samples, the first action then times out)
    #[arg(long, overrides_with = "auto_ack")]
    no_auto_ack: bool,

    /// Print every trace entry, not only those with decisions, events or an error
    #[arg(long)]
    all: bool,

    /// Print a short summary to stderr at the end: inputs, refusals, decisions, final
    /// aliases and status
    #[arg(long)]
    summary: bool,

    /// The longest input read: the policy file, a line of the samples file, or the JSON
    /// text of one of a scenario's inputs (or of any other scenario field). A longer one stops the replay
    /// with `input_too_long` (exit code 2) instead of taking gigabytes of memory to parse
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,

    /// Fail (exit code 2, `inputs_refused`) if the policy refused any input; the trace
    /// is printed in full first. Without it a refusal is only a warning on stderr
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Print the trace as JSON lines instead of the story
    #[arg(long)]
    json: bool,

    /// With --json: print every trace entry, not only those with decisions, events or
    /// an error
    #[arg(long, requires = "json")]
    all: bool,

    /// Print the bundled scenario itself (to save it and replay it with `rollguard
    /// replay`)
    #[arg(long, conflicts_with_all = ["json", "all"])]
    print_scenario: bool,

    /// The second bundled scenario: one gate of every statistical kind (v2 rolled back
    /// in its bake by cusum, v3 from its canary by error_attribution)
    #[arg(long)]
    statistical: bool,

    /// The third bundled scenario: eight tenants judged per tenant (a silver tenant's
    /// failure held below the impact rule, a gold tenant's rolled back)
    #[arg(long, conflicts_with = "statistical")]
    tenants: bool,
}

/// The longest scenario `explain` reads whole (a scenario `replay` streams has no such
/// limit but its per-input one).
pub(crate) const EXPLAIN_MAX_INPUT_BYTES: u64 = 256 << 20;

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Replay(args) => {
            let options = ReplayOptions {
                all: args.all,
                summary: args.summary,
                strict: args.strict,
            };
            match (args.scenario, args.policy, args.samples) {
                (Some(path), _, _) => replay::replay_scenario_file(
                    &path,
                    args.max_input_bytes,
                    args.auto_ack,
                    options,
                ),
                (None, Some(policy), Some(samples)) => replay::replay_samples(
                    &policy,
                    &samples,
                    args.format,
                    args.start,
                    args.max_input_bytes,
                    !args.no_auto_ack,
                    options,
                ),
                // clap's `requires` and `required_unless_present` rule this out.
                _ => Err(CliError::bad_input(
                    "usage",
                    "",
                    "give a SCENARIO, or --policy and --samples",
                )),
            }
        }
        Command::Backtest(args) => backtest::run(&args),
        Command::Calibrate(args) => backtest::calibrate(&args),
        Command::Drill(args) => backtest::drill(&args),
        Command::Demo(args) => demo::run(
            if args.statistical {
                demo::STATISTICAL_JSON
            } else if args.tenants {
                demo::TENANTS_JSON
            } else {
                demo::DEMO_JSON
            },
            args.json,
            args.all,
            args.print_scenario,
        ),
        Command::Explain {
            scenario,
            max_input_bytes,
        } => {
            let text = replay::read_text(&scenario, max_input_bytes)?;
            let path = scenario.display();
            print!(
                "{}",
                demo::story(
                    &rollguard::Scenario::from_json(&text)?,
                    &format!("rollguard explain {path}"),
                    &format!("rollguard replay {path} --all"),
                )?
            );
            Ok(())
        }
        Command::Validate {
            policy,
            json,
            max_input_bytes,
        } => {
            let text = replay::read_text(&policy, max_input_bytes)?;
            let config = rollguard::PolicyConfig::from_json(&text)?;
            config.validate()?;
            println!("{}", validate_report(&config, json));
            Ok(())
        }
        Command::ImportKayenta {
            config,
            max_input_bytes,
        } => {
            let text = replay::read_text(&config, max_input_bytes)?;
            let imported = rollguard::import_kayenta(&text)?;
            for w in &imported.warnings {
                eprintln!("warning: {}: {}", w.path, w.message);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&imported).unwrap_or_default()
            );
            Ok(())
        }
    }
}

/// What `validate` prints for a valid config: `ok`, the worst-case figures against
/// their limits and the config's warnings, as text or as one JSON object.
fn validate_report(config: &rollguard::PolicyConfig, json: bool) -> String {
    let f = config.footprint();
    let l = &config.limits;
    let warnings = config.warnings();
    if json {
        return serde_json::json!({
            "ok": true,
            "warnings": warnings,
            "footprint": f,
            "limits": {
                "state_bytes_max": l.state_bytes_max,
                "evaluations_per_input_max": l.evaluations_per_input_max,
                "cells_read_per_input_max": l.cells_read_per_input_max,
            },
        })
        .to_string();
    }
    let percent = |x: u64, max: u64| x.saturating_mul(100) / max.max(1);
    let figures = [
        ("state_bytes_max", f.state_bytes_max, l.state_bytes_max),
        (
            "evaluations_per_input_max",
            f.evaluations_per_input_max,
            l.evaluations_per_input_max,
        ),
        (
            "cells_read_per_input_max",
            f.cells_read_per_input_max,
            l.cells_read_per_input_max,
        ),
    ]
    .iter()
    .fold("ok".to_string(), |text, (name, x, max)| {
        format!("{text}\n{name}: {x} (limit {max}, {}%)", percent(*x, *max))
    });
    warnings.iter().fold(figures, |text, w| {
        let code = serde_json::to_value(w.code).unwrap_or_default();
        let code = code.as_str().unwrap_or_default();
        format!("{text}\nwarning: {code} at {}: {}", w.path, w.message)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn replay_takes_a_scenario_or_a_policy_with_samples() {
        assert!(Cli::try_parse_from(["rollguard", "replay", "s.json"]).is_ok());
        assert!(
            Cli::try_parse_from(["rollguard", "replay", "--policy", "p", "--samples", "f"]).is_ok()
        );
        assert!(Cli::try_parse_from(["rollguard", "replay"]).is_err());
        assert!(Cli::try_parse_from(["rollguard", "replay", "--policy", "p"]).is_err());
        assert!(Cli::try_parse_from(["rollguard", "replay", "s.json", "--policy", "p"]).is_err());
        assert!(Cli::try_parse_from(["rollguard", "replay", "s.json", "--start", "5"]).is_err());
    }

    #[test]
    fn auto_ack_flags_override_each_other() {
        let parse = |args: &[&str]| {
            let mut all = vec!["rollguard", "replay", "--policy", "p", "--samples", "f"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all).unwrap().command {
                Command::Replay(a) => (a.auto_ack, a.no_auto_ack),
                _ => unreachable!(),
            }
        };
        assert_eq!(parse(&[]), (false, false));
        assert_eq!(parse(&["--no-auto-ack"]), (false, true));
        assert_eq!(parse(&["--no-auto-ack", "--auto-ack"]), (true, false));
    }
}
