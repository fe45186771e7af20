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
//!
//! The three generators share their machinery here: [`Router`], the simulated traffic
//! router; [`drive`], the virtual-clock loop that feeds a policy its inputs and records
//! them; [`render_scenario`], the scenario file's layout; and [`generator_main`], the
//! `--check` / write / replay-and-verify main.

use std::collections::VecDeque;
use std::process::ExitCode;

use rollguard::{Action, Error, Input, Policy, PolicyConfig, Sample, Scenario, Step, TraceEntry};

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

/// A simulated traffic router: the stable version, and the candidate with the percent
/// of traffic it serves. It executes the policy's actions when they are acknowledged.
#[derive(Debug, Clone)]
pub struct Router {
    /// The version serving what the candidate does not.
    pub stable: String,
    /// The candidate and its weight in percent, during a canary.
    pub candidate: Option<(String, u64)>,
}

impl Router {
    /// A router sending all traffic to `stable`.
    pub fn new(stable: &str) -> Self {
        Self {
            stable: stable.into(),
            candidate: None,
        }
    }

    /// Executes an action: a weight moves the candidate's share; a promotion or a
    /// rollback leaves one version serving everything. Other actions change nothing.
    pub fn execute(&mut self, action: &Action) {
        match action {
            Action::SetWeight {
                version, weight, ..
            } => self.candidate = Some((version.clone(), u64::from(*weight))),
            Action::Promote { version, .. } => {
                self.stable = version.clone();
                self.candidate = None;
            }
            Action::Rollback { to, .. } => {
                self.stable = to.clone();
                self.candidate = None;
            }
            _ => {}
        }
    }

    /// Each live version with its share of traffic, in percent.
    pub fn arms(&self) -> Vec<(String, u64)> {
        match &self.candidate {
            None => vec![(self.stable.clone(), 100)],
            Some((v, w)) => vec![(self.stable.clone(), 100 - w), (v.clone(), *w)],
        }
    }
}

/// The simulated world a generator's policy runs in.
pub trait World {
    /// The router executes an action, at the moment it is acknowledged.
    fn execute(&mut self, action: &Action);
    /// One scrape of the metrics pipeline at `at`.
    fn scrape(&mut self, at: u64) -> Vec<Sample>;
    /// Called after every input with what the policy answered (to print the story as
    /// it happens, say). Does nothing by default.
    fn observe(&mut self, _input: &Input, _step: Option<&Step>, _error: Option<&Error>) {}
}

/// A [`World`] made of a [`Router`], a seeded generator, and a scrape function that
/// reads both (the metrics of the traffic the router sends to each version).
pub struct Simulation<F> {
    /// The router the policy's actions drive.
    pub router: Router,
    /// The generator the scrapes draw from.
    pub rng: SplitMix64,
    /// One scrape at a time: `scrape(rng, router, at)`.
    pub scrape: F,
}

impl<F: FnMut(&mut SplitMix64, &Router, u64) -> Vec<Sample>> World for Simulation<F> {
    fn execute(&mut self, action: &Action) {
        self.router.execute(action);
    }

    fn scrape(&mut self, at: u64) -> Vec<Sample> {
        (self.scrape)(&mut self.rng, &self.router, at)
    }
}

/// An operator script that starts a rollout of each `(at, version)`, in the order given.
pub fn rollouts(starts: &[(u64, &str)]) -> VecDeque<(u64, Input)> {
    starts
        .iter()
        .map(|&(at, version)| {
            (
                at,
                Input::StartRollout {
                    at,
                    version: version.into(),
                },
            )
        })
        .collect()
}

/// The clock of a [`drive`]: how often the metrics are scraped, how long the router
/// takes to acknowledge an action, and the time of the last scrape.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The metrics pipeline scrapes every live version this often.
    pub scrape_ms: u64,
    /// How long the router takes to execute an action before acknowledging it.
    pub ack_delay_ms: u64,
    /// Nothing later than this is sent.
    pub end_ms: u64,
}

/// Runs a policy under a virtual clock from 0 to `timing.end_ms` and returns every input
/// sent with what the policy answered.
///
/// The clock advances to the earliest of the next scrape, the next scripted command,
/// the next acknowledgement and the policy's own deadline. At equal times:
/// acknowledgements, then commands, then samples (which fire any due timer themselves,
/// so a tick is only sent when a deadline comes first). Every action with an id is
/// executed by `world` and acknowledged `timing.ack_delay_ms` after its decision.
pub fn drive(
    config: &PolicyConfig,
    mut script: VecDeque<(u64, Input)>,
    timing: Timing,
    world: &mut impl World,
) -> Result<Vec<TraceEntry>, Error> {
    let mut policy = Policy::new(config.clone(), 0)?;
    let mut trace: Vec<TraceEntry> = Vec::new();
    // Actions issued and not yet acknowledged: (ack time, action id, action).
    let mut acks: VecDeque<(u64, u64, Action)> = VecDeque::new();
    let mut next_scrape = 0;
    loop {
        let ack_at = acks.front().map(|a| a.0);
        let command_at = script.front().map(|c| c.0);
        let deadline = policy.next_deadline();
        let t = [Some(next_scrape), ack_at, command_at, deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_scrape)
            .max(policy.now());
        if t > timing.end_ms {
            break;
        }
        let input = if ack_at.is_some_and(|a| a <= t) {
            let Some((_, id, action)) = acks.pop_front() else {
                continue;
            };
            world.execute(&action);
            Input::Ack {
                at: t,
                action_id: id,
            }
        } else if command_at.is_some_and(|c| c <= t) {
            let Some((_, command)) = script.pop_front() else {
                continue;
            };
            command
        } else if next_scrape <= t {
            next_scrape += timing.scrape_ms;
            Input::ObserveBatch {
                samples: world.scrape(t),
            }
        } else {
            Input::Tick { at: t }
        };
        let tick = matches!(input, Input::Tick { .. });
        let (step, error) = match policy.handle(&input) {
            Ok(step) => (Some(step), None),
            Err(e) => (None, Some(e)),
        };
        for d in step.iter().flat_map(|s| s.actions()) {
            if let Some(id) = d.action_id {
                acks.push_back((d.at + timing.ack_delay_ms, id, d.action.clone()));
            }
        }
        world.observe(&input, step.as_ref(), error.as_ref());
        trace.push(TraceEntry {
            index: trace.len() as u32,
            input,
            step,
            error,
        });
        if tick && policy.next_deadline().is_some_and(|d| d <= t) {
            // A deadline that a tick does not move would spin forever.
            return Err(Error::new(
                rollguard::ErrorCode::InvalidValue,
                "",
                format!("next_deadline stuck at {t}"),
            ));
        }
    }
    Ok(trace)
}

/// Writes a scenario file with one input per line, so the file diffs and greps well.
/// `config_text` is the policy's JSON, written as given (trimmed).
pub fn render_scenario(
    name: &str,
    description: &str,
    config_text: &str,
    inputs: &[Input],
) -> String {
    let mut out = String::new();
    let name = serde_json::to_string(name).unwrap_or_default();
    out.push_str(&format!(
        "{{\n  \"format_version\": 1,\n  \"name\": {name},\n"
    ));
    let description = serde_json::to_string(description).unwrap_or_default();
    out.push_str(&format!("  \"description\": {description},\n"));
    out.push_str("  \"start\": 0,\n");
    out.push_str(&format!("  \"config\": {},\n", config_text.trim()));
    out.push_str("  \"inputs\": [\n");
    for (i, input) in inputs.iter().enumerate() {
        let line = serde_json::to_string(input).unwrap_or_default();
        let comma = if i + 1 < inputs.len() { "," } else { "" };
        out.push_str(&format!("    {line}{comma}\n"));
    }
    out.push_str("  ]\n}\n");
    out
}

/// A scenario generator, for [`generator_main`].
pub struct Generator<'a> {
    /// The binary's name, for the "stale" message (`gen-demo`).
    pub bin: &'a str,
    /// The scenario's file name under `examples/scenarios/` (`demo.json`).
    pub file: &'a str,
    /// Runs the story live, given whether to print it as it goes.
    pub generate: &'a dyn Fn(bool) -> Result<(PolicyConfig, Vec<TraceEntry>), Error>,
    /// Writes the scenario file for the inputs of the live run.
    pub render: &'a dyn Fn(&[Input]) -> String,
    /// Checks the story's beats against the replayed trace; returns what is missing.
    pub check_story: &'a dyn Fn(&[TraceEntry]) -> Vec<String>,
}

/// The main of a scenario generator. Arguments: `--check` (fail if the file is stale
/// instead of writing it) and an optional output path (default:
/// `examples/scenarios/<file>`). It runs the story, renders the file, checks that the
/// file parses back to the same config and inputs and replays to exactly the live
/// run's trace, checks the story's beats and the 1 MB size limit, then compares or
/// writes the file. The story is printed as it goes only when writing.
pub fn generator_main(g: &Generator) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| format!("{}/scenarios/{}", env!("CARGO_MANIFEST_DIR"), g.file));
    let (config, live) = match (g.generate)(!check) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let inputs: Vec<Input> = live.iter().map(|e| e.input.clone()).collect();
    let text = (g.render)(&inputs);
    let scenario = match Scenario::from_json(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the rendered scenario does not parse: {e}");
            return ExitCode::FAILURE;
        }
    };
    let replayed = match rollguard::replay(&scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: the scenario does not replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    if scenario.config != config || scenario.inputs != inputs || replayed != live {
        eprintln!("error: the scenario does not replay to the live run's trace");
        return ExitCode::FAILURE;
    }
    let missing = (g.check_story)(&replayed);
    for beat in &missing {
        eprintln!("story beat missing: {beat}");
    }
    if !missing.is_empty() {
        return ExitCode::FAILURE;
    }
    if text.len() > 1_000_000 {
        eprintln!("error: the scenario is {} bytes, over 1 MB", text.len());
        return ExitCode::FAILURE;
    }
    if check {
        match std::fs::read_to_string(&path) {
            Ok(old) if old == text => {
                eprintln!("{path} is up to date ({} inputs)", inputs.len());
                ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "{path} is stale: run `cargo run -p rollguard-examples --bin {}`",
                    g.bin
                );
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {path}: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match std::fs::write(&path, &text) {
            Ok(()) => {
                eprintln!(
                    "wrote {path}: {} inputs, {} bytes; every story beat checked",
                    inputs.len(),
                    text.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {path}: {e}");
                ExitCode::FAILURE
            }
        }
    }
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

    #[test]
    fn router_follows_weights_promotions_and_rollbacks() {
        let action = |json: &str| -> Action { serde_json::from_str(json).unwrap() };
        let mut r = Router::new("v1");
        assert_eq!(r.arms(), vec![("v1".to_string(), 100)]);
        r.execute(&action(
            r#"{"kind": "set_weight", "version": "v2", "weight": 25, "step": 0}"#,
        ));
        assert_eq!(
            r.arms(),
            vec![("v1".to_string(), 75), ("v2".to_string(), 25)]
        );
        r.execute(&action(
            r#"{"kind": "promote", "version": "v2", "from": "v1"}"#,
        ));
        assert_eq!(r.arms(), vec![("v2".to_string(), 100)]);
        r.execute(&action(
            r#"{"kind": "set_weight", "version": "v3", "weight": 10, "step": 0}"#,
        ));
        r.execute(&action(
            r#"{"kind": "rollback", "from": "v3", "to": "v2", "target": "stable", "automated": true}"#,
        ));
        assert_eq!(r.arms(), vec![("v2".to_string(), 100)]);
    }

    /// A two-step canary, healthy or slow, for the driver tests.
    const CONFIG: &str = r#"{
      "format_version": 1,
      "versions": [
        {"id": "v1", "digest": "sha256:a1", "validated": true},
        {"id": "v2", "digest": "sha256:b2"},
        {"id": "v3", "digest": "sha256:c3"}
      ],
      "stable": "v1",
      "metrics": [{"name": "latency_ms", "kind": "value"}],
      "gates": [
        {"name": "p95_latency", "metric": "latency_ms", "stat": "p95",
         "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 20}
      ],
      "strategy": {"kind": "canary", "steps": [
        {"kind": "set_weight", "weight": 10, "duration_ms": 300000},
        {"kind": "set_weight", "weight": 50, "duration_ms": 300000}
      ], "post_promotion_bake_ms": 300000},
      "analysis": {"interval_ms": 30000}
    }"#;

    fn slow_v3(rng: &mut SplitMix64, router: &Router, at: u64) -> Vec<Sample> {
        let mut samples = Vec::new();
        for (version, _) in router.arms() {
            let mean = if version == "v3" { 240.0 } else { 120.0 };
            for _ in 0..10 {
                let latency = round_to(mean * (1.0 + 0.05 * rng.normal()), 1);
                samples.push(Sample::value(at, &version, "latency_ms", latency));
            }
        }
        samples
    }

    #[test]
    fn drive_acknowledges_every_action_after_the_delay_and_replays() {
        let config = PolicyConfig::from_json(CONFIG).unwrap();
        let timing = Timing {
            scrape_ms: 10_000,
            ack_delay_ms: 2_000,
            end_ms: 3_600_000,
        };
        let mut sim = Simulation {
            router: Router::new(&config.stable),
            rng: SplitMix64::new(3),
            scrape: slow_v3,
        };
        let script = rollouts(&[(0, "v2"), (1_800_000, "v3")]);
        let trace = drive(&config, script, timing, &mut sim).unwrap();
        // Every action with an id is acknowledged once, the delay after its decision.
        let issued: Vec<(u64, u64)> = trace
            .iter()
            .filter_map(|e| e.step.as_ref())
            .flat_map(|s| s.actions())
            .filter_map(|d| d.action_id.map(|id| (id, d.at + 2_000)))
            .collect();
        let acked: Vec<(u64, u64)> = trace
            .iter()
            .filter_map(|e| match e.input {
                Input::Ack { at, action_id } => Some((action_id, at)),
                _ => None,
            })
            .collect();
        assert!(!issued.is_empty());
        assert_eq!(issued, acked);
        // v2 is promoted, v3 rolled back: the router ends on v2 alone.
        assert_eq!(sim.router.arms(), vec![("v2".to_string(), 100)]);
        // The trace is numbered in order and nothing after the end is sent.
        assert!(trace.iter().enumerate().all(|(i, e)| e.index == i as u32));
        assert!(
            trace
                .iter()
                .all(|e| e.input.at().is_none_or(|at| at <= 3_600_000))
        );
        // The rendered file parses back and replays to the same trace.
        let inputs: Vec<Input> = trace.iter().map(|e| e.input.clone()).collect();
        let text = render_scenario("a \"test\"", "two rollouts", CONFIG, &inputs);
        let scenario = Scenario::from_json(&text).unwrap();
        assert_eq!(scenario.inputs, inputs);
        assert_eq!(rollguard::replay(&scenario).unwrap(), trace);
        // One input per line.
        let listed = text
            .lines()
            .skip_while(|l| *l != "  \"inputs\": [")
            .skip(1)
            .take_while(|l| *l != "  ]")
            .count();
        assert_eq!(listed, inputs.len());
    }
}
