//! A rollback policy embedded in a service's event loop.
//!
//! ```text
//! cargo run -p rollguard-examples --bin service-loop
//! ```
//!
//! The policy never reads a clock or does I/O; the service owns time, metrics, traffic
//! and pagers. So the loop is:
//!
//! 1. sleep until the earliest of: the next metrics scrape, the next command from the
//!    deploy pipeline, and `policy.next_deadline()`;
//! 2. hand the policy that input (a batch of samples, a command, or a tick);
//! 3. act on every decision in the returned step (route traffic, page someone) and
//!    acknowledge each action once it is done (`ack` with its `action_id`);
//! 4. persist `policy.snapshot()` so a restart continues where it left off.
//!
//! Time here is virtual (milliseconds since the service started), so the example runs
//! in an instant and prints the same thing every time. The story: v2 is healthy and
//! is promoted; v3 is twice as slow and is rolled back.

use std::collections::VecDeque;

use rollguard::{Action, EventKind, Input, Policy, Sample, Step};
use rollguard_examples::{SplitMix64, clock};

const POLICY: &str = r#"{
  "format_version": 1,
  "versions": [
    {"id": "v1", "digest": "sha256:a1", "validated": true},
    {"id": "v2", "digest": "sha256:b2"},
    {"id": "v3", "digest": "sha256:c3"}
  ],
  "stable": "v1",
  "metrics": [
    {"name": "latency_ms", "kind": "value", "window_ms": 120000, "buckets": 12},
    {"name": "errors", "kind": "count", "window_ms": 120000, "buckets": 12}
  ],
  "gates": [
    {"name": "p95_latency", "metric": "latency_ms", "stat": "p95",
     "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 20},
    {"name": "error_rate", "metric": "errors", "stat": "rate",
     "rule": {"kind": "vs_baseline", "max_increase": 0.01}, "samples_min": 200}
  ],
  "strategy": {"kind": "canary", "steps": [
    {"kind": "set_weight", "weight": 10, "duration_ms": 300000},
    {"kind": "set_weight", "weight": 50, "duration_ms": 300000}
  ], "post_promotion_bake_ms": 300000},
  "analysis": {"interval_ms": 30000}
}"#;

const SCRAPE_MS: u64 = 10_000;
const END_MS: u64 = 3_600_000;

/// The traffic router the policy's actions drive: the stable version, and the
/// candidate with its share of traffic.
struct Router {
    stable: String,
    candidate: Option<(String, u32)>,
}

impl Router {
    /// Executes an action (a real router would call the mesh or load balancer here).
    fn execute(&mut self, action: &Action) {
        match action {
            Action::SetWeight {
                version, weight, ..
            } => self.candidate = Some((version.clone(), *weight)),
            Action::StartShadow { version } => self.candidate = Some((version.clone(), 0)),
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
}

/// The simulated metrics source: five request latencies and an error count per live
/// version per scrape. v3 is twice as slow as the others.
fn scrape(rng: &mut SplitMix64, router: &Router, at: u64) -> Vec<Sample> {
    let mut live = vec![router.stable.clone()];
    live.extend(router.candidate.as_ref().map(|(v, _)| v.clone()));
    let mut samples = Vec::new();
    for version in &live {
        let mean = if version == "v3" { 240.0 } else { 120.0 };
        for _ in 0..5 {
            let latency = mean * (1.0 + 0.1 * rng.normal());
            samples.push(Sample::value(at, version, "latency_ms", latency));
        }
        let errors = rng.binomial(100, 0.002) as i64;
        samples.push(Sample::count(at, version, "errors", errors, 100));
    }
    samples
}

/// Acts on a step: logs what happened, executes and acknowledges its actions, and
/// pages on escalations. An acknowledgement returns a step of its own (the next stage
/// may start at once), which is handled the same way.
fn act(policy: &mut Policy, router: &mut Router, step: Step) -> Result<(), rollguard::Error> {
    let mut pending = VecDeque::from([step]);
    while let Some(step) = pending.pop_front() {
        for e in &step.events {
            match &e.kind {
                EventKind::RolloutCompleted { version } => {
                    println!("[{}] policy: rollout of {version} completed", clock(e.at))
                }
                EventKind::GateTripped { gate, .. } => {
                    println!("[{}] policy: gate {gate} tripped", clock(e.at))
                }
                _ => {}
            }
        }
        for d in &step.decisions {
            let t = clock(d.at);
            match &d.action {
                Action::SetWeight {
                    version, weight, ..
                } => println!("[{t}] router: send {weight}% of traffic to {version}"),
                Action::Promote { version, from } => {
                    println!("[{t}] router: send all traffic to {version} (keep {from} warm)")
                }
                Action::Rollback {
                    from,
                    to,
                    degradation_started_at,
                    ..
                } => {
                    println!("[{t}] router: ROLL BACK {from} -> {to} ({:?})", d.reason);
                    for g in &d.gates {
                        let (min, max) = g.evidence.bounds_of();
                        println!(
                            "          {} observed {:.1}, bound {:.1}",
                            g.gate,
                            g.evidence.observed().unwrap_or(f64::NAN),
                            max.or(min).unwrap_or(f64::NAN)
                        );
                    }
                    if let Some(onset) = degradation_started_at {
                        println!(
                            "          reprocess {from}'s requests since {}",
                            clock(*onset)
                        );
                    }
                }
                Action::Escalate {} => println!("[{t}] pager: {:?}", d.reason),
                Action::Hold {} => println!("[{t}] policy: hold ({:?})", d.reason),
                other => println!("[{t}] {other:?} ({:?})", d.reason),
            }
            // Actions change routing: execute, then acknowledge. Without the ack the
            // stage never starts, and after `ack_timeout_ms` the policy escalates.
            if let Some(action_id) = d.action_id {
                router.execute(&d.action);
                pending.push_back(policy.handle(&Input::Ack {
                    at: step.at,
                    action_id,
                })?);
            }
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut policy = Policy::from_json(POLICY, 0)?;
    let mut router = Router {
        stable: "v1".into(),
        candidate: None,
    };
    let mut rng = SplitMix64::new(42);
    // What the deploy pipeline asks for, and when.
    let mut commands = VecDeque::from([
        (
            60_000,
            Input::StartRollout {
                at: 60_000,
                version: "v2".into(),
            },
        ),
        (
            1_800_000,
            Input::StartRollout {
                at: 1_800_000,
                version: "v3".into(),
            },
        ),
    ]);
    let mut next_scrape = 0;

    loop {
        // Sleep until the earliest thing that needs doing. (A real service would
        // `select!` on a timer for this instant and on its queues.)
        let now = [
            Some(next_scrape),
            commands.front().map(|c| c.0),
            policy.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(next_scrape)
        .max(policy.now());
        if now > END_MS {
            break;
        }
        let step = if commands.front().is_some_and(|c| c.0 <= now) {
            let (_, command) = commands.pop_front().ok_or("no command")?;
            policy.handle(&command)?
        } else if next_scrape <= now {
            next_scrape += SCRAPE_MS;
            let samples = scrape(&mut rng, &router, now);
            policy.handle(&Input::ObserveBatch { samples })?
        } else {
            // Nothing arrived before the deadline: tell the policy time has passed.
            policy.tick(now)?
        };
        act(&mut policy, &mut router, step)?;
    }

    // Persistence: the snapshot is plain JSON. Store it anywhere; restoring it gives
    // a policy that continues exactly as this one would.
    let snapshot = policy.snapshot().to_json();
    let mut restored = Policy::restore_json(&snapshot)?;
    // `restored == policy` should hold as well, but does not yet: without serde_json's
    // `float_roundtrip` feature some floats in the windows parse back 1 ULP off
    // (reported against the core). Compare what a service sees instead: the status and
    // the decisions that follow.
    let status = restored.status();
    assert_eq!(status, policy.status());
    let later = policy.now() + 60_000;
    assert_eq!(restored.tick(later)?, policy.tick(later)?);
    println!(
        "snapshot: {} bytes; restored at {}: stable {}, golden {}, cooldown until {}",
        snapshot.len(),
        clock(status.now),
        status.aliases.stable,
        status.aliases.golden,
        status.cooldown_until.map_or("-".into(), clock),
    );

    // The example doubles as a check in CI: v2 was promoted, v3 rolled back.
    assert_eq!(status.aliases.stable, "v2");
    assert_eq!(router.stable, "v2");
    assert!(
        status.cooldown_until.is_some(),
        "v3's rollback started a cooldown"
    );
    Ok(())
}
