//! Generates `examples/scenarios/tenants.json`, the third bundled scenario: a
//! multi-tenant support-agent platform whose gates are judged per tenant.
//!
//! ```text
//! cargo run -p rollguard-examples --bin gen-tenants            # (re)write the file
//! cargo run -p rollguard-examples --bin gen-tenants -- --check # fail if it is stale
//! cargo run -p rollguard-examples --bin gen-tenants -- OUT.json
//! ```
//!
//! Like `gen-demo` and `gen-statistical`, it scripts no decision: a virtual clock
//! advances to the next event (a 15 s scrape, an operator command, a router
//! acknowledging an action 2 s after it was issued, or the policy's own deadline), and
//! every input sent is recorded. The story: eight tenants, three of them gold, share
//! one support agent; scopes are formed by tenant, gold tenants are held to a tighter
//! error rate, and the impact rule rolls back for any gold tenant or three tenants at
//! once. v2 changes the arguments of the `crm_lookup` tool call, which globex's
//! self-hosted CRM rejects: a fifth of globex's conversations on v2 fail while the
//! fleet's error rate stays under the gate. globex's scope trips alone (silver, below
//! the impact rule): the rollout holds and escalates once, naming `tenant=globex`;
//! the on-call engineer asks globex to update its connector rather than roll back seven
//! healthy tenants, globex ships the fix, its scope clears, the rollout continues and v2
//! is promoted. Then v3 fails 2 % of acme's conversations (acme is gold): inside the fleet's
//! 5 % but over the gold tier's 1 %, and v3 is rolled back at once naming
//! `tenant=acme`. Then it replays the file and checks those beats happened.

use std::process::ExitCode;

use rollguard::{
    Action, Error, EventKind, Input, PolicyConfig, Reason, Sample, ScopeKey, TraceEntry,
};
use rollguard_examples::{
    Generator, Router, Simulation, SplitMix64, Timing, drive, generator_main, render_scenario,
    rollouts,
};

/// The policy: one error-rate gate (failed conversations), judged overall and per
/// tenant, with a gold-tier override and an impact rule.
const CONFIG: &str = r#"{
    "format_version": 1,
    "name": "support-agent-tenants",
    "versions": [
      {"id": "v1", "digest": "sha256:51a0e2", "validated": true,
       "components": {"model": "support-llm@2025-09", "prompt_template": "support-v7", "tools": "crm-tools@3"}},
      {"id": "v2", "digest": "sha256:93bd41",
       "components": {"model": "support-llm@2025-09", "prompt_template": "support-v7", "tools": "crm-tools@4"}},
      {"id": "v3", "digest": "sha256:e27c08",
       "components": {"model": "support-llm@2025-11", "prompt_template": "support-v8", "tools": "crm-tools@4"}}
    ],
    "stable": "v1",
    "metrics": [
      {"name": "failed_conversations", "kind": "count"}
    ],
    "gates": [
      {"name": "failure_rate", "metric": "failed_conversations", "stat": "rate",
       "rule": {"kind": "threshold", "max": 0.05},
       "persistence": {"consecutive": 2}, "samples_min": 200}
    ],
    "strategy": {"kind": "canary", "steps": [
      {"kind": "set_weight", "weight": 10, "duration_ms": 300000},
      {"kind": "set_weight", "weight": 25, "duration_ms": 300000},
      {"kind": "set_weight", "weight": 50, "duration_ms": 300000}
    ], "post_promotion_bake_ms": 300000},
    "analysis": {"interval_ms": 60000},
    "safety": {"cooldown_ms": 600000, "ack_timeout_ms": 600000,
               "breaker": {"max_rollbacks": 3, "window_ms": 86400000}},
    "scopes": {"by": ["tenant"], "samples_min": 200,
               "tiers": {"gold": {"gates": {"failure_rate": {"rule": {"kind": "threshold", "max": 0.01}}}}},
               "impact": {"tiers": ["gold"], "scopes_min": 3}},
    "limits": {"scopes_max": 16}
  }"#;

const SEED: u64 = 0x5EED_0010;
const MIN: u64 = 60_000;
/// The metrics pipeline scrapes every live version this often.
const SCRAPE_MS: u64 = 15_000;
/// How long the router takes to execute an action before acknowledging it.
const ACK_DELAY_MS: u64 = 2_000;
/// Conversations per scrape interval over all tenants (200 per second).
const CONVERSATIONS: u64 = 3_000;
/// The tenants: name, tier, share of the platform's conversations.
const TENANTS: [(&str, &str, f64); 8] = [
    ("acme", "gold", 0.25),
    ("initech", "silver", 0.15),
    ("hooli", "silver", 0.14),
    ("umbrella", "gold", 0.12),
    ("stark", "gold", 0.10),
    ("wayne", "silver", 0.10),
    ("wonka", "silver", 0.06),
    ("globex", "silver", 0.08),
];
/// globex ships a connector that accepts v2's `crm_lookup` arguments.
const GLOBEX_FIX: u64 = 9 * MIN;
/// The operator starts v3's rollout.
const V3_START: u64 = 30 * MIN;
/// The last scrape.
const END: u64 = 40 * MIN;

/// The share of a tenant's conversations that fail on a version.
fn failure_rate(version: &str, tenant: &str, at: u64) -> f64 {
    match (version, tenant) {
        // v2's crm_lookup arguments are refused by globex's CRM until it updates.
        ("v2" | "v3", "globex") if at < GLOBEX_FIX => 0.2,
        // v3's new model and prompt mishandle acme's refund workflow.
        ("v3", "acme") => 0.02,
        _ => 0.003,
    }
}

/// One scrape: per live version and tenant, its failed conversations out of its
/// conversations, labelled with the tenant and its tier.
fn scrape(rng: &mut SplitMix64, router: &Router, at: u64) -> Vec<Sample> {
    let mut samples = Vec::new();
    for (version, percent) in router.arms() {
        for (tenant, tier, share) in TENANTS {
            let conversations = (CONVERSATIONS as f64 * share) as u64 * percent / 100;
            if conversations == 0 {
                continue;
            }
            let failed = rng.binomial(conversations, failure_rate(&version, tenant, at));
            let mut s = Sample::count(
                at,
                &version,
                "failed_conversations",
                failed as i64,
                conversations as i64,
            );
            s.tenant = Some(tenant.into());
            s.tier = Some(tier.into());
            samples.push(s);
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
    "A support agent shared by eight tenants (acme, umbrella and stark gold; initech, hooli, \
     wayne, wonka and globex silver), 200 conversations/s scraped every 15 s, each tenant's \
     failed conversations labelled with its tenant and tier. The failure_rate gate is judged \
     overall and per tenant (scopes by tenant); gold tenants are held to 1 % instead of 5 %, \
     and the impact rule rolls back when a gold tenant or three tenants trip. v2 changes the \
     crm_lookup tool's arguments, which globex's self-hosted CRM rejects: 20 % of globex's \
     conversations on v2 fail while the fleet stays under 5 %. globex's scope trips alone, \
     below the impact rule: the rollout holds and escalates once naming tenant=globex. At \
     0:09:00 globex ships a connector that accepts the new arguments, its scope clears, the \
     rollout continues and v2 is promoted. At 0:30:00 v3 fails 2 % of acme's conversations \
     (a gold tenant): v3 is rolled back at once, naming tenant=acme. Generated by `cargo run \
     -p rollguard-examples --bin gen-tenants`."
}

/// Writes the scenario file.
fn render(inputs: &[Input]) -> String {
    render_scenario(
        "tenants: a scoped failure held, a gold tenant protected",
        description(),
        CONFIG,
        inputs,
    )
}

fn tenant(name: &str) -> Option<ScopeKey> {
    Some(ScopeKey {
        tenant: Some(name.into()),
        ..ScopeKey::default()
    })
}

/// Checks the story's beats against the replayed trace; returns what is missing.
fn check_story(trace: &[TraceEntry]) -> Vec<String> {
    let steps = || trace.iter().filter_map(|e| e.step.as_ref());
    let decisions: Vec<_> = steps().flat_map(|s| s.decisions.iter()).collect();
    let events: Vec<_> = steps().flat_map(|s| s.events.iter()).collect();
    let globex = tenant("globex");
    let acme = tenant("acme");
    let mut missing = Vec::new();
    let mut expect = |ok: bool, beat: &str| {
        if !ok {
            missing.push(beat.to_string());
        }
    };
    let tripped: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::GateTripped { scope, .. } => Some((e.at, scope.clone())),
            _ => None,
        })
        .collect();
    expect(
        tripped
            .iter()
            .any(|(at, s)| *s == globex && *at < GLOBEX_FIX),
        "globex's scope trips on v2",
    );
    expect(
        tripped.iter().all(|(_, s)| *s == globex || *s == acme),
        "no other scope trips, and the gate never trips overall",
    );
    let holds: Vec<_> = decisions
        .iter()
        .filter(|d| d.action == Action::Hold {} && d.reason == Reason::ScopedFailure)
        .collect();
    expect(
        !holds.is_empty()
            && holds
                .iter()
                .all(|d| d.gates.iter().any(|g| g.scope == globex && g.tripped)),
        "the rollout holds with scoped_failure and globex's tripped report",
    );
    let escalations: Vec<_> = decisions
        .iter()
        .filter(|d| d.action == Action::Escalate {} && d.reason == Reason::ScopedFailure)
        .collect();
    expect(
        escalations.len() == 1 && escalations[0].detail.contains("tenant=globex"),
        "one scoped_failure escalation, naming tenant=globex",
    );
    expect(
        events.iter().any(|e| {
            matches!(&e.kind, EventKind::GateCleared { scope, .. } if *scope == globex)
                && e.at >= GLOBEX_FIX
        }),
        "globex's scope clears after its fix",
    );
    expect(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Promoted { version, .. } if version == "v2")),
        "v2 is promoted after the hold",
    );
    expect(
        !decisions
            .iter()
            .any(|d| matches!(&d.action, Action::Rollback { from, .. } if from == "v2")),
        "v2 is never rolled back",
    );
    let v3_rollbacks: Vec<_> = decisions
        .iter()
        .filter(|d| matches!(&d.action, Action::Rollback { from, .. } if from == "v3"))
        .collect();
    expect(
        v3_rollbacks.len() == 1
            && v3_rollbacks[0].reason == Reason::GateFailed
            && v3_rollbacks[0]
                .gates
                .iter()
                .any(|g| g.scope == acme && g.tripped)
            && v3_rollbacks[0]
                .gates
                .iter()
                .all(|g| g.scope.is_some() || !g.tripped),
        "v3 is rolled back for acme's scope alone (gate_failed, acme's tripped report)",
    );
    expect(
        decisions.iter().any(|d| {
            d.action == Action::Escalate {}
                && d.reason == Reason::AutomatedRollback
                && d.detail.contains("tenant=acme")
        }),
        "the rollback's escalation names tenant=acme",
    );
    missing
}

fn main() -> ExitCode {
    generator_main(&Generator {
        bin: "gen-tenants",
        file: "tenants.json",
        generate: &|_| generate(),
        render: &render,
        check_story: &check_story,
    })
}
