//! # rollguard
//!
//! A sans-IO, deterministic rollback-policy engine for model and agent rollouts.
//!
//! A [`Policy`] takes metric [`Sample`]s, timer ticks, acknowledgements and operator
//! commands, and returns a [`Step`] of [`Decision`]s (advance a canary step, promote,
//! hold, roll back, pause for approval, escalate) and [`Event`]s, each with its
//! reason. It never reads a clock, a file or the network, and never draws a random
//! number: time is an input (`u64` milliseconds), so the same config and inputs give
//! the same trace, byte for byte, natively, in WebAssembly and through every binding.
//!
//! ```text
//!   samples ──┐                          ┌──► decisions ──► you act (route traffic, page)
//!   ticks ────┼──► Policy::handle(input) ┤
//!   commands ─┤        (pure, sync)      └──► events ─────► logs, dashboards, audit
//!   acks ─────┘              ▲
//!                            └── next_deadline(): when to tick
//! ```
//!
//! ## The run loop
//!
//! ```
//! use rollguard::{Action, Policy, Sample};
//!
//! let config = r#"{
//!   "format_version": 1,
//!   "versions": [{"id": "v1", "digest": "sha256:aa", "validated": true},
//!                {"id": "v2", "digest": "sha256:bb"}],
//!   "stable": "v1", "candidate": "v2",
//!   "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
//!   "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
//!              "rule": {"kind": "threshold", "max": 300}, "samples_min": 20}],
//!   "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 300000}]}
//! }"#;
//! let mut policy = Policy::from_json(config, 0)?;
//! let mut now = 0;
//! while let Some(deadline) = policy.next_deadline() {
//!     if deadline > 1_800_000 { break; }
//!     // A real service sleeps until the deadline or the next sample, whichever is first.
//!     while now < deadline {
//!         let arm = if now % 10 == 0 { "v2" } else { "v1" };
//!         let _ = policy.observe(&Sample::value(now, arm, "latency_ms", 120.0))?;
//!         now += 500;
//!     }
//!     let step = policy.tick(deadline.max(now))?;
//!     for decision in &step.decisions {
//!         // Execute the decision (route traffic, page someone), then acknowledge it.
//!         if let Some(id) = decision.action_id {
//!             policy.handle(&rollguard::Input::Ack { at: step.at, action_id: id })?;
//!         }
//!         if let Action::Promote { version, .. } = &decision.action {
//!             assert_eq!(version, "v2");
//!         }
//!     }
//! }
//! assert_eq!(policy.status().aliases.stable, "v2");
//! # Ok::<(), rollguard::Error>(())
//! ```
//!
//! ## Invariants
//!
//! - Every input either applies completely or returns an [`Error`] with a stable
//!   [`ErrorCode`] and leaves the policy exactly as it was. Nothing reachable from
//!   input panics.
//! - Every input first fires the timers due at or before its time, so a caller that
//!   ticks late still gets every decision, in time order.
//! - A repeated `tick` at the same time is a no-op.
//! - `restore(snapshot())` continues exactly as the original would.
//! - Memory is fixed by the config: windows are fixed buckets, lists have limits.
//! - No automated rollback inside a cooldown; none at all while the breaker is open;
//!   a rollback target is always a validated, non-failed version.
//! - No platform math: floats use IEEE basic operations only, and any transcendental
//!   function goes through the pure-Rust `libm` crate.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod agents;
mod assign;
mod config;
mod detect;
mod error;
mod gate;
mod input;
mod json;
mod lint;
mod machines;
mod output;
mod plan;
mod policy;
mod registry;
mod scenario;
mod scope;
mod snapshot;
mod stats;
mod tagged;
mod time;

pub use agents::{
    AGENTS_SNAPSHOT_FORMAT_VERSION, AgentInput, AgentStep, Agents, AgentsConfig, AgentsSnapshot,
    AgentsStep,
};
pub use assign::{
    ASSIGN_VERSION, Arm, Salt, WEIGHT_BP_MAX, assign, bucket, rollout_seq_from_number, salt_for,
    weight_bp_from_i64, weight_bp_from_number,
};
pub use config::footprint::Footprint;
pub use config::kayenta::{ImportWarning, KayentaImport, import_kayenta};
pub use config::{
    AnalysisConfig, ApprovalConfig, AssignmentConfig, Autocorrelation, Bins, BreakerConfig,
    CanaryStep, Direction, Divergence, EffectSize, EnvironmentConfig, FORMAT_VERSION, GateConfig,
    GateOverride, GradualRollbackConfig, HistogramRange, Impact, KayentaMember, LadderRung, Limits,
    Margin, MetricConfig, MetricKind, NoData, OnTimeout, OutlierStrategy, Outliers, Persistence,
    Phase, PolicyConfig, RollbackTo, Rule, Rung, SafetyConfig, ScopesConfig, Stat, Strategy,
    TierOverride, VersionSpec, Worse, limits,
};
pub use error::{Error, ErrorCode};
pub use input::{EffectSpec, Input, Sample, TargetKind, count_from_number};
pub use json::{key_path, repeated_key};
pub use lint::{ConfigWarning, WarningCode};
pub use output::{
    Action, Chart, Classification, Decision, Event, EventKind, Evidence, GateReport, KayentaLabel,
    PauseKind, Reason, ScoreGroup, ScoreMetric, ScoreReason, Step, Verdict,
};
pub use policy::{
    AssignReason, Assignment, GradualRollbackStatus, LabelCodes, LabelColumn, Labels, Policy,
    RoutingMode, RoutingTable, Status, WeightChange,
};
pub use registry::{Aliases, Stage, Validation, Validator, Version};
pub use scenario::{Scenario, TraceEntry, replay, replay_with};
pub use scope::{ScopeKey, ScopeLabel};
pub use snapshot::{SNAPSHOT_FORMAT_VERSION, Snapshot};
pub use time::{TIME_MAX, Timestamp, time_from_number};
