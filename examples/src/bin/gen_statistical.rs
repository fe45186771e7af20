//! Generates `examples/scenarios/statistical.json`, the dashboard's second scenario: one
//! gate of every statistical kind, so that its evidence panels show real data.
//!
//! ```text
//! cargo run -p rollguard-examples --bin gen-statistical            # (re)write the file
//! cargo run -p rollguard-examples --bin gen-statistical -- --check # fail if it is stale
//! cargo run -p rollguard-examples --bin gen-statistical -- OUT.json
//! ```
//!
//! Like `gen-demo`, it scripts no decision: a virtual clock advances to the next event
//! (a 10 s scrape, an operator command, a router acknowledging an action 2 s after it
//! was issued, or the policy's own deadline), and every input sent is recorded. The
//! story: v2 passes its canary (the sequential tests' e-values stay low and their
//! effects' confidence bands straddle the margin), is promoted, and 7 minutes into its
//! bake its latency rises 12 %: the cusum gate trips and v2 is rolled back. Later v3,
//! with twice the errors, a slower mean, a heavier tail and a different tool
//! choice, is rolled back from its canary by the first test to conclude (the dry-run
//! Kayenta score would have failed it at its first interval). Then it
//! replays the file and checks those beats happened.

use std::process::ExitCode;

use rollguard::{Action, Error, EventKind, Input, PolicyConfig, Reason, Sample, TraceEntry};
use rollguard_examples::{
    Generator, Router, Simulation, SplitMix64, Timing, drive, generator_main, render_scenario,
    rollouts, round_to,
};

/// The policy: every statistical gate kind, on three metrics. The two-arm tests run in
/// the canary; `cusum` and `ewma` (their defaults) in the bake and the steady phase;
/// `rate_slo` in the canary and the bake. The two `mann_whitney` gates (fixed-horizon
/// tests every interval: Kayenta's defaults, and a strict tolerance of 2 % of the mean),
/// the `kayenta_score` over them and `ewma` are dry run: reported, never acted on.
const CONFIG: &str = r#"{
    "format_version": 1,
    "name": "agent-statistical-gates",
    "versions": [
      {"id": "v1", "digest": "sha256:7a01c2", "validated": true,
       "components": {"model": "agent-llm@2025-09", "prompt_template": "router-v3"}},
      {"id": "v2", "digest": "sha256:b4e915",
       "components": {"model": "agent-llm@2025-11", "prompt_template": "router-v3"}},
      {"id": "v3", "digest": "sha256:0c77d3",
       "components": {"model": "agent-llm@2025-11", "prompt_template": "router-v4"}}
    ],
    "stable": "v1",
    "metrics": [
      {"name": "latency_ms", "kind": "value", "histogram_range": {"min": 1, "max": 100000}},
      {"name": "errors", "kind": "count"},
      {"name": "tool", "kind": "value"}
    ],
    "gates": [
      {"name": "errors_attributed", "metric": "errors", "stat": "rate",
       "rule": {"kind": "error_attribution", "alpha": 0.01}},
      {"name": "errors_slo", "metric": "errors", "stat": "rate",
       "rule": {"kind": "rate_slo", "max_rate": 0.01, "alpha": 0.01},
       "phases": ["canary", "bake"]},
      {"name": "latency_mean", "metric": "latency_ms", "stat": "mean",
       "rule": {"kind": "sequential_mean", "alpha": 0.01, "margin": {"absolute": 5}},
       "samples_min": 20, "phases": ["canary"]},
      {"name": "latency_p99", "metric": "latency_ms", "stat": "p99",
       "rule": {"kind": "sequential_quantile", "alpha": 0.01, "margin": {"relative": 0.1}},
       "samples_min": 50, "phases": ["canary"]},
      {"name": "latency_kayenta", "metric": "latency_ms", "stat": "mean",
       "rule": {"kind": "mann_whitney"}, "samples_min": 10, "phases": ["canary"],
       "dry_run": true},
      {"name": "latency_kayenta_strict", "metric": "latency_ms", "stat": "mean",
       "rule": {"kind": "mann_whitney", "confidence": 0.95, "tolerance": 0.02},
       "samples_min": 10, "phases": ["canary"], "dry_run": true},
      {"name": "canary_score", "metric": "latency_ms", "stat": "mean",
       "rule": {"kind": "kayenta_score", "pass": 95, "marginal": 75,
                "members": [{"gate": "latency_kayenta", "groups": ["latency"]},
                            {"gate": "latency_kayenta_strict", "groups": ["latency"]}]},
       "phases": ["canary"], "dry_run": true},
      {"name": "tool_drift", "metric": "tool", "stat": "mean",
       "rule": {"kind": "drift", "categories": 4, "measure": "psi"},
       "samples_min": 200, "phases": ["canary"]},
      {"name": "latency_cusum", "metric": "latency_ms", "stat": "mean",
       "rule": {"kind": "cusum", "reference_mean": 120, "reference_sd": 12, "shift": 1}},
      {"name": "latency_ewma", "metric": "latency_ms", "stat": "mean",
       "rule": {"kind": "ewma", "reference_mean": 120, "reference_sd": 12, "lambda": 0.1},
       "dry_run": true}
    ],
    "strategy": {"kind": "canary", "steps": [
      {"kind": "set_weight", "weight": 10, "duration_ms": 300000},
      {"kind": "set_weight", "weight": 25, "duration_ms": 300000},
      {"kind": "set_weight", "weight": 50, "duration_ms": 300000}
    ], "post_promotion_bake_ms": 900000},
    "analysis": {"interval_ms": 30000},
    "safety": {"cooldown_ms": 600000, "ack_timeout_ms": 600000,
               "breaker": {"max_rollbacks": 3, "window_ms": 86400000}}
  }"#;

const SEED: u64 = 0x5EED_0009;
const MIN: u64 = 60_000;
/// The metrics pipeline scrapes every live version this often.
const SCRAPE_MS: u64 = 10_000;
/// How long the router takes to execute an action before acknowledging it.
const ACK_DELAY_MS: u64 = 2_000;
/// Requests per scrape interval (300 requests per second).
const REQUESTS: u64 = 3_000;
/// Latency samples (traced requests) and tool choices recorded per live version and scrape.
const TRACED: usize = 8;
/// v2's latency rises 12 % from here (7 minutes into its bake).
const V2_LATENCY_ONSET: u64 = 22 * MIN;
/// The operator starts v3's rollout.
const V3_START: u64 = 34 * MIN;
/// The last scrape.
const END: u64 = 46 * MIN;

/// A version's health: mean latency, the share of slow requests (×2.5: only v3 has a
/// tail, which a cusum or ewma against a normal reference would rightly flag at once),
/// the error rate, and its shares of the four tools.
struct Health {
    latency_ms: f64,
    slow: f64,
    error_rate: f64,
    tools: [f64; 4],
}

fn health(version: &str, at: u64) -> Health {
    let usual = [0.5, 0.3, 0.1, 0.1];
    match version {
        "v2" if at >= V2_LATENCY_ONSET => Health {
            latency_ms: 134.0,
            slow: 0.0,
            error_rate: 0.005,
            tools: usual,
        },
        "v3" => Health {
            latency_ms: 128.0,
            slow: 0.06,
            error_rate: 0.01,
            tools: [0.35, 0.3, 0.1, 0.25],
        },
        _ => Health {
            latency_ms: 120.0,
            slow: 0.0,
            error_rate: 0.005,
            tools: usual,
        },
    }
}

/// One scrape per live version: its error count over its requests, and `TRACED`
/// latencies and tool choices.
fn scrape(rng: &mut SplitMix64, router: &Router, at: u64) -> Vec<Sample> {
    let mut samples = Vec::new();
    for (version, percent) in router.arms() {
        let requests = REQUESTS * percent / 100;
        let h = health(&version, at);
        let errors = rng.binomial(requests, h.error_rate) as i64;
        samples.push(Sample::count(
            at,
            &version,
            "errors",
            errors,
            requests as i64,
        ));
        for _ in 0..TRACED {
            let slow = if rng.next_f64() < h.slow { 2.5 } else { 1.0 };
            let latency = (h.latency_ms + 12.0 * rng.normal()) * slow;
            samples.push(Sample::value(
                at,
                &version,
                "latency_ms",
                round_to(latency, 1),
            ));
        }
        for _ in 0..TRACED {
            let u = rng.next_f64();
            let mut acc = 0.0;
            let mut tool = 3;
            for (k, share) in h.tools.iter().enumerate() {
                acc += share;
                if u < acc {
                    tool = k;
                    break;
                }
            }
            samples.push(Sample::value(at, &version, "tool", tool as f64));
        }
    }
    samples
}

/// Runs the story and returns every input sent with what the policy answered.
fn generate() -> Result<(PolicyConfig, Vec<TraceEntry>), Error> {
    let config = PolicyConfig::from_json(CONFIG)?;
    let timing = Timing {
        scrape_ms: SCRAPE_MS,
        ack_delay_ms: ACK_DELAY_MS,
        end_ms: END,
    };
    let mut sim = Simulation {
        router: Router::new(&config.stable),
        rng: SplitMix64::new(SEED),
        scrape,
    };
    let script = rollouts(&[(0, "v2"), (V3_START, "v3")]);
    let trace = drive(&config, script, timing, &mut sim)?;
    Ok((config, trace))
}

fn description() -> &'static str {
    "One gate of every statistical kind (error_attribution, rate_slo, sequential_mean, \
     sequential_quantile, mann_whitney, kayenta_score, drift, cusum, ewma), 46 minutes at \
     300 req/s scraped every 10 s (8 traced latencies and tool choices per version and \
     scrape). v2 passes its canary and is promoted; 7 minutes into the bake (0:22:00) its \
     latency rises 12 % and the cusum gate rolls it back. At 0:34:00 v3 (twice the errors, \
     a slower mean, a heavier tail, another tool choice) is rolled back from its canary by \
     the first test to conclude. Generated by `cargo run -p rollguard-examples --bin \
     gen-statistical`."
}

/// Writes the scenario file.
fn render(inputs: &[Input]) -> String {
    render_scenario(
        "statistical gates: evidence of every kind",
        description(),
        CONFIG,
        inputs,
    )
}

/// Checks the story's beats against the replayed trace; returns what is missing.
fn check_story(trace: &[TraceEntry]) -> Vec<String> {
    let steps = || trace.iter().filter_map(|e| e.step.as_ref());
    let decisions: Vec<_> = steps().flat_map(|s| s.decisions.iter()).collect();
    let events: Vec<_> = steps().flat_map(|s| s.events.iter()).collect();
    let rollback_by = |version: &str| {
        decisions.iter().find_map(|d| match &d.action {
            Action::Rollback { from, .. } if from == version && d.reason == Reason::GateFailed => {
                Some(
                    d.gates
                        .iter()
                        .filter(|g| g.tripped && !g.dry_run)
                        .map(|g| g.gate.clone()),
                )
            }
            _ => None,
        })
    };
    let mut missing = Vec::new();
    let mut expect = |ok: bool, beat: &str| {
        if !ok {
            missing.push(beat.to_string());
        }
    };
    expect(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Promoted { version, .. } if version == "v2")),
        "v2 passes its canary and is promoted",
    );
    expect(
        rollback_by("v2").is_some_and(|mut g| g.any(|n| n == "latency_cusum")),
        "v2 is rolled back in its bake by latency_cusum",
    );
    expect(
        decisions.iter().any(|d| {
            matches!(&d.action, Action::Rollback { from, .. } if from == "v2")
                && (V2_LATENCY_ONSET..V2_LATENCY_ONSET + 3 * MIN).contains(&d.at)
        }),
        "v2's rollback comes within 3 minutes after its latency rises",
    );
    expect(
        decisions.iter().all(|d| {
            matches!(
                d.action,
                Action::SetWeight { .. } | Action::Promote { .. } | Action::Rollback { .. }
            ) || d.reason == Reason::AutomatedRollback
        }),
        "no other decision: no hold, no escalation but the rollbacks' (v1 stays healthy)",
    );
    expect(
        rollback_by("v3").is_some(),
        "v3 is rolled back from its canary by a gate",
    );
    // Every gate reports at several evaluations.
    let reports: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Analysis { reports, .. } => Some(reports),
            _ => None,
        })
        .flat_map(|r| r.iter())
        .collect();
    for gate in [
        "errors_attributed",
        "errors_slo",
        "latency_mean",
        "latency_p99",
        "latency_kayenta",
        "latency_kayenta_strict",
        "canary_score",
        "tool_drift",
        "latency_cusum",
        "latency_ewma",
    ] {
        expect(
            reports.iter().filter(|r| r.gate == gate).count() >= 10,
            &format!("{gate} reports at 10 evaluations or more"),
        );
    }
    missing
}

fn main() -> ExitCode {
    generator_main(&Generator {
        bin: "gen-statistical",
        file: "statistical.json",
        generate: &|_| generate(),
        render: &render,
        check_story: &check_story,
    })
}
