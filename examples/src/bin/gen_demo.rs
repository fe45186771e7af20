//! Generates `examples/scenarios/demo.json`, the scenario `rollguard demo` replays.
//!
//! ```text
//! cargo run -p rollguard-examples --bin gen-demo            # (re)write the file
//! cargo run -p rollguard-examples --bin gen-demo -- --check # fail if it is stale
//! cargo run -p rollguard-examples --bin gen-demo -- OUT.json
//! ```
//!
//! It does not script decisions. It drives a real [`Policy`] the way a service would:
//! a virtual clock advances to the next event (a 10 s metrics scrape, an operator
//! command, a router acknowledging an action, or the policy's own deadline), a
//! simulated router executes every action and acknowledges it 2 s later, and a
//! simulated metric source produces samples for whichever versions the router sends
//! traffic to. Every input sent is recorded, so the file replays to the same trace.
//!
//! Then it replays the file and checks that each beat of the story really happened;
//! if the policy behaves otherwise it exits non-zero and says which beat is missing.

use std::collections::VecDeque;
use std::process::ExitCode;

use rollguard::{
    Action, EffectSpec, Error, EventKind, Input, PolicyConfig, Reason, Sample, Step, TargetKind,
    TraceEntry, Validator,
};
use rollguard_examples::{
    Generator, SplitMix64, Timing, World, clock, drive, generator_main, render_scenario, round_to,
};

/// The policy under test: three metrics, three gates that act and one dry-run gate, a
/// four-step canary with a post-promotion bake. Timings and safety settings are
/// spelled out although most equal the defaults, so the file documents itself.
const CONFIG: &str = r#"{
    "format_version": 1,
    "name": "support-agent",
    "versions": [
      {"id": "v1", "digest": "sha256:5d1f0c", "validated": true,
       "components": {"model": "support-llm@2025-09", "prompt_template": "triage-v7"}},
      {"id": "v2", "digest": "sha256:9a27e4",
       "components": {"model": "support-llm@2025-11", "prompt_template": "triage-v7"}},
      {"id": "v3", "digest": "sha256:c30b18",
       "components": {"model": "support-llm@2025-11", "prompt_template": "triage-v8"}},
      {"id": "v4", "digest": "sha256:e84d72",
       "components": {"model": "support-llm@2025-11", "prompt_template": "triage-v8",
                      "tool_schema": "crm-tools-v5"}}
    ],
    "stable": "v1",
    "metrics": [
      {"name": "latency_ms", "kind": "value", "histogram_range": {"min": 1, "max": 100000}},
      {"name": "errors", "kind": "count"},
      {"name": "quality", "kind": "value"}
    ],
    "gates": [
      {"name": "p95_latency_vs_stable", "metric": "latency_ms", "stat": "p95",
       "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 5},
      {"name": "error_rate_vs_stable", "metric": "errors", "stat": "rate",
       "rule": {"kind": "vs_baseline", "max_increase": 0.005}, "samples_min": 1000},
      {"name": "quality_floor", "metric": "quality", "stat": "mean",
       "rule": {"kind": "threshold", "min": 0.8}, "samples_min": 5},
      {"name": "p99_latency_budget", "metric": "latency_ms", "stat": "p99",
       "rule": {"kind": "threshold", "max": 180}, "samples_min": 5, "dry_run": true}
    ],
    "strategy": {"kind": "canary", "steps": [
      {"kind": "shadow", "duration_ms": 600000},
      {"kind": "set_weight", "weight": 5, "duration_ms": 600000},
      {"kind": "set_weight", "weight": 25, "duration_ms": 600000},
      {"kind": "set_weight", "weight": 50, "duration_ms": 600000}
    ], "post_promotion_bake_ms": 1200000},
    "analysis": {"interval_ms": 60000},
    "safety": {"cooldown_ms": 1800000, "ack_timeout_ms": 600000,
               "breaker": {"max_rollbacks": 2, "window_ms": 86400000}}
  }"#;

const SEED: u64 = 0x5EED_0001;
const MIN: u64 = 60_000;
/// The metrics pipeline scrapes every live version this often.
const SCRAPE_MS: u64 = 10_000;
/// How long the router takes to execute an action before acknowledging it.
const ACK_DELAY_MS: u64 = 2_000;
/// Requests per scrape interval (500 requests per second).
const REQUESTS: u64 = 5_000;
/// Percent of traffic mirrored to a version in shadow.
const SHADOW_MIRROR_PERCENT: u64 = 20;
/// v3's latency regresses ×1.8 from here (during its 25 % step).
const V3_LATENCY_ONSET: u64 = 94 * MIN; // 1:34:00
/// v4's error rate regresses from 0.2 % to 3 % from here (during its 5 % step).
const V4_ERRORS_ONSET: u64 = 118 * MIN; // 1:58:00
/// The last scrape.
const END: u64 = 138 * MIN; // 2:18:00

/// The operator's commands, in time order.
fn operator_script() -> Vec<(u64, Input)> {
    let start = |at, v: &str| Input::StartRollout {
        at,
        version: v.into(),
    };
    vec![
        (5 * MIN, start(5 * MIN, "v2")),
        (70 * MIN, start(70 * MIN, "v3")),
        (105 * MIN, start(105 * MIN, "v4")),
        // The breaker is open by now: this is refused with `breaker_open`.
        (135 * MIN, start(135 * MIN, "v2")),
        (136 * MIN, Input::ClearBreaker { at: 136 * MIN }),
        (
            137 * MIN,
            Input::MarkValidated {
                at: 137 * MIN,
                version: "v2".into(),
            },
        ),
    ]
}

/// Side effects v3 causes outside the system while it serves traffic, as the agent
/// platform reports them (`record_effect`), each with the descriptor that undoes it:
/// the policy hands these back, newest first, when v3 is rolled back.
fn agent_effects() -> Vec<(u64, Input)> {
    let effect = |at, id: &str, undo: serde_json::Value| Input::RecordEffect {
        at,
        version: "v3".into(),
        effect: EffectSpec {
            id: id.into(),
            undo: undo.as_object().cloned().unwrap_or_default(),
        },
    };
    vec![
        (
            86 * MIN,
            effect(
                86 * MIN,
                "email-batch-7",
                serde_json::json!({"op": "recall_email", "batch": 7}),
            ),
        ),
        (
            95 * MIN,
            effect(
                95 * MIN,
                "crm-note-1042",
                serde_json::json!({"op": "delete_note", "ticket": 1042}),
            ),
        ),
    ]
}

/// The operator's commands and the agent's effects, in time order.
fn script() -> VecDeque<(u64, Input)> {
    let mut all = operator_script();
    all.extend(agent_effects());
    all.sort_by_key(|(at, _)| *at);
    all.into()
}

fn description() -> String {
    format!(
        "One policy, three rollouts, 2h18m of recorded traffic (500 req/s, scraped every 10 s).\n\
         - v2 rolls out healthy (shadow 10m, 5% 10m, 25% 10m, 50% 10m, promote, 20m bake) and completes.\n\
         - v3 rolls out; during its 25% step its p95 latency regresses x1.8. The p95 gate fails three \
         evaluations in a row and the policy rolls v3 back to the stable v2, starting a 30-minute cooldown. \
         v3 had sent an email batch (1:26:00) and written a CRM note (1:35:00), recorded as effects with \
         undo descriptors: once the rollback is acknowledged the policy compensates them newest first \
         (delete the note, then recall the emails), one acknowledged compensate action at a time.\n\
         - v4 starts inside that cooldown; during its 5% step its error rate goes from 0.2% to 3%. The \
         error gate trips, but the cooldown forbids another automated rollback: the policy holds and \
         escalates (cooldown_active). When the cooldown ends it rolls back; that is the 2nd automated \
         rollback in 24h, so the circuit breaker trips and traffic is pinned to the golden version: v1, \
         the last version a human validated (v2 was validated only by its rollout).\n\
         - An operator tries to roll v2 out again while the breaker is open (refused: breaker_open), \
         clears the breaker, then marks v2 validated, which makes v2 golden.\n\
         Every action is acknowledged by the router 2 s after it is issued.\n\
         Known regression onsets (version, metric, ms from start):\n\
         - onset v3 latency_ms {V3_LATENCY_ONSET} ({}): p95 latency x1.8\n\
         - onset v4 errors {V4_ERRORS_ONSET} ({}): error rate 0.2% -> 3%\n\
         Generated by `cargo run -p rollguard-examples --bin gen-demo`; do not edit by hand.",
        clock(V3_LATENCY_ONSET),
        clock(V4_ERRORS_ONSET),
    )
}

/// How a version behaves at a time: its mean latency, error rate and quality score.
struct Health {
    latency_ms: f64,
    error_rate: f64,
    quality: f64,
}

fn health(version: &str, at: u64) -> Health {
    let (latency_ms, error_rate, quality) = match version {
        "v1" => (120.0, 0.002, 0.90),
        "v2" => (110.0, 0.002, 0.91),
        "v3" if at >= V3_LATENCY_ONSET => (118.0 * 1.8, 0.002, 0.90),
        "v3" => (118.0, 0.002, 0.90),
        "v4" if at >= V4_ERRORS_ONSET => (115.0, 0.03, 0.90),
        _ => (115.0, 0.002, 0.90),
    };
    Health {
        latency_ms,
        error_rate,
        quality,
    }
}

/// What the simulated router does with traffic.
#[derive(Debug, Clone)]
enum Route {
    /// The candidate sees a mirrored copy of some traffic.
    Shadow(String),
    /// The candidate serves this percent.
    Weight(String, u64),
}

/// The simulated router: it executes the policy's actions.
struct Router {
    stable: String,
    candidate: Option<Route>,
}

impl Router {
    fn execute(&mut self, action: &Action) {
        match action {
            Action::StartShadow { version } => {
                self.candidate = Some(Route::Shadow(version.clone()))
            }
            Action::SetWeight {
                version, weight, ..
            } => self.candidate = Some(Route::Weight(version.clone(), u64::from(*weight))),
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

    /// The versions receiving requests in one scrape interval, and how many each.
    fn traffic(&self) -> Vec<(String, u64)> {
        match &self.candidate {
            None => vec![(self.stable.clone(), REQUESTS)],
            Some(Route::Shadow(v)) => vec![
                (self.stable.clone(), REQUESTS),
                (v.clone(), REQUESTS * SHADOW_MIRROR_PERCENT / 100),
            ],
            Some(Route::Weight(v, w)) => vec![
                (self.stable.clone(), REQUESTS * (100 - w) / 100),
                (v.clone(), REQUESTS * w / 100),
            ],
        }
    }
}

/// One scrape: a latency, an error count and a quality score per live version.
fn scrape(rng: &mut SplitMix64, router: &Router, at: u64) -> Vec<Sample> {
    let mut samples = Vec::new();
    for (version, requests) in router.traffic() {
        let h = health(&version, at);
        let latency = h.latency_ms * (1.0 + 0.05 * rng.normal());
        samples.push(Sample::value(
            at,
            &version,
            "latency_ms",
            round_to(latency, 1),
        ));
        let errors = rng.binomial(requests, h.error_rate) as i64;
        samples.push(Sample::count(
            at,
            &version,
            "errors",
            errors,
            requests as i64,
        ));
        let quality = (h.quality + 0.02 * rng.normal()).clamp(0.0, 1.0);
        samples.push(Sample::value(at, &version, "quality", round_to(quality, 3)));
    }
    samples
}

/// The simulated world: the router, the metrics scraped from the traffic it routes,
/// and whether to print the story as it happens.
struct Sim {
    router: Router,
    rng: SplitMix64,
    verbose: bool,
}

impl World for Sim {
    fn execute(&mut self, action: &Action) {
        self.router.execute(action);
    }

    fn scrape(&mut self, at: u64) -> Vec<Sample> {
        scrape(&mut self.rng, &self.router, at)
    }

    /// Prints the decisions and refusals, so that a run of the generator shows the story.
    fn observe(&mut self, input: &Input, step: Option<&Step>, error: Option<&Error>) {
        if !self.verbose {
            return;
        }
        for d in step.iter().flat_map(|s| s.decisions.iter()) {
            let action = serde_json::to_value(&d.action).unwrap_or_default();
            eprintln!("{}  {} {:?}", clock(d.at), action, d.reason);
        }
        if let Some(e) = error {
            eprintln!(
                "{}  refused {}: {e}",
                clock(input.at().unwrap_or(0)),
                kind(input)
            );
        }
    }
}

fn kind(input: &Input) -> String {
    serde_json::to_value(input).unwrap_or_default()["kind"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// Runs the story and returns the scenario with every input sent.
fn generate(verbose: bool) -> Result<(PolicyConfig, Vec<TraceEntry>), Error> {
    let config = PolicyConfig::from_json(CONFIG)?;
    let timing = Timing {
        scrape_ms: SCRAPE_MS,
        ack_delay_ms: ACK_DELAY_MS,
        end_ms: END,
    };
    let mut sim = Sim {
        router: Router {
            stable: config.stable.clone(),
            candidate: None,
        },
        rng: SplitMix64::new(SEED),
        verbose,
    };
    let trace = drive(&config, script(), timing, &mut sim)?;
    Ok((config, trace))
}

/// Writes the scenario file.
fn render(inputs: &[Input]) -> String {
    render_scenario(
        "a regression caught and rolled back",
        &description(),
        CONFIG,
        inputs,
    )
}

/// Checks every beat of the story against the replayed trace; returns what is missing.
fn check_story(trace: &[TraceEntry]) -> Vec<String> {
    let decisions: Vec<_> = trace
        .iter()
        .filter_map(|e| e.step.as_ref())
        .flat_map(|s| &s.decisions)
        .collect();
    let events: Vec<_> = trace
        .iter()
        .filter_map(|e| e.step.as_ref())
        .flat_map(|s| &s.events)
        .collect();
    let mut missing = Vec::new();
    let mut expect = |ok: bool, beat: &str| {
        if !ok {
            missing.push(beat.to_string());
        }
    };

    expect(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Promoted { version, .. } if version == "v2"))
            && events.iter().any(
                |e| matches!(&e.kind, EventKind::RolloutCompleted { version } if version == "v2"),
            ),
        "v2 is promoted and completes",
    );

    let rollbacks: Vec<_> = decisions
        .iter()
        .filter_map(|d| match &d.action {
            Action::Rollback {
                from,
                to,
                target,
                automated: true,
                degradation_started_at,
            } => Some((d, from, to, *target, *degradation_started_at)),
            _ => None,
        })
        .collect();
    expect(
        rollbacks.len() == 2,
        "exactly two automated rollbacks (v3, then v4)",
    );
    let v3 = rollbacks.iter().find(|r| r.1 == "v3");
    expect(
        v3.is_some_and(|(d, _, to, target, onset)| {
            d.reason == Reason::GateFailed
                && *to == "v2"
                && *target == TargetKind::Stable
                && d.gates.iter().any(|g| g.gate == "p95_latency_vs_stable")
                && onset.is_some_and(|o| o.abs_diff(V3_LATENCY_ONSET) <= MIN)
                && d.at > V3_LATENCY_ONSET
                && d.at <= V3_LATENCY_ONSET + 5 * MIN
        }),
        "v3 is rolled back to the stable v2 for p95 latency within 5 min of its onset, onset estimated within 1 min",
    );
    let weight_at_v3_onset = decisions
        .iter()
        .filter(|d| d.at <= V3_LATENCY_ONSET)
        .filter_map(|d| match &d.action {
            Action::SetWeight {
                version, weight, ..
            } if version == "v3" => Some(*weight),
            _ => None,
        })
        .next_back();
    expect(
        weight_at_v3_onset == Some(25),
        "v3's regression starts during its 25% step",
    );
    let v3_rollback_at = v3.map_or(0, |r| r.0.at);
    let compensated: Vec<(&str, u64)> = decisions
        .iter()
        .filter_map(|d| match &d.action {
            Action::Compensate {
                version, effect_id, ..
            } if version == "v3" && d.reason == Reason::Compensation => {
                Some((effect_id.as_str(), d.at))
            }
            _ => None,
        })
        .collect();
    let acknowledged = events
        .iter()
        .filter(
            |e| matches!(&e.kind, EventKind::EffectCompensated { version, .. } if version == "v3"),
        )
        .count();
    expect(
        compensated
            .iter()
            .map(|c| c.0)
            .eq(["crm-note-1042", "email-batch-7"])
            && compensated
                .iter()
                .all(|c| c.1 > v3_rollback_at && c.1 < v3_rollback_at + MIN)
            && acknowledged == 2,
        "v3's two effects are compensated newest first right after its rollback, each acknowledged",
    );
    let v4_started = trace.iter().any(|e| {
        matches!(&e.input, Input::StartRollout { at, version }
            if version == "v4" && *at > v3_rollback_at && *at < v3_rollback_at + 30 * MIN)
            && e.error.is_none()
    });
    expect(v4_started, "v4 starts inside v3's cooldown");
    expect(
        decisions.iter().any(|d| {
            matches!(d.action, Action::Hold {})
                && d.reason == Reason::CooldownActive
                && d.gates.iter().any(|g| g.gate == "error_rate_vs_stable")
        }) && decisions
            .iter()
            .any(|d| matches!(d.action, Action::Escalate {}) && d.reason == Reason::CooldownActive),
        "v4's error gate trips inside the cooldown: hold and escalate (cooldown_active)",
    );
    let v4 = rollbacks.iter().find(|r| r.1 == "v4");
    expect(
        v4.is_some_and(|(d, _, to, target, onset)| {
            d.reason == Reason::BreakerTripped
                && *to == "v1"
                && *target == TargetKind::Golden
                && d.at >= v3_rollback_at + 30 * MIN
                && onset.is_some_and(|o| o.abs_diff(V4_ERRORS_ONSET) <= MIN)
        }),
        "v4 is rolled back to golden v1 after the cooldown, tripping the breaker",
    );
    expect(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::BreakerTripped { rollbacks: 2 })),
        "the breaker trips on the 2nd automated rollback",
    );
    expect(
        trace.iter().any(|e| {
            matches!(&e.input, Input::StartRollout { .. })
                && e.error
                    .as_ref()
                    .is_some_and(|x| x.code == rollguard::ErrorCode::BreakerOpen)
        }),
        "start_rollout is refused with breaker_open",
    );
    expect(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::BreakerCleared {})),
        "the operator clears the breaker",
    );
    expect(
        events.iter().any(|e| {
            matches!(&e.kind, EventKind::VersionValidated { version, by: Validator::Operator } if version == "v2")
        }) && events.iter().any(|e| {
            matches!(&e.kind, EventKind::AliasesChanged(a) if a.golden == "v2")
        }),
        "the operator marks v2 validated and golden moves to v2",
    );
    expect(
        trace.iter().filter(|e| e.error.is_some()).count() == 1,
        "the only refused input is the start_rollout during the open breaker",
    );
    missing
}

fn main() -> ExitCode {
    generator_main(&Generator {
        bin: "gen-demo",
        file: "demo.json",
        generate: &generate,
        render: &render,
        check_story: &check_story,
    })
}
