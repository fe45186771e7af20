//! Property tests of the policy's invariants (see the crate docs, "Invariants").
//!
//! Each test generates a small valid config and a stream of abstract operations. An
//! operation becomes a concrete call only when it is applied, because some of them
//! depend on the policy's state. For example, "acknowledge the pending action" needs
//! `status().pending_action`, and "start a rollout of version #i" picks from the
//! registry as it stands. The same seed therefore replays to the same calls.
//!
//! The streams contain samples of every metric for the stable and candidate arms
//! (healthy or regressed, and now and then an extreme but finite value), batches,
//! ticks, acks that are prompt, late, wrong or missing, `action_failed`, every operator
//! command, and bad inputs (NaN, negative counts, unknown names, times that go
//! backwards or out of range, labels that are too long).
//!
//! There is one `proptest!` test per property. No test catches panics, so "nothing
//! reachable from input panics" is checked by all of them. The `pinned_*` tests at
//! the end are the smallest reproductions of what the properties found. The counts
//! keep each test well under 20 s in a debug build. For a deeper run set
//! `PROPTEST_CASES`, e.g. `PROPTEST_CASES=5000 cargo test --release -p rollguard --test
//! properties`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use rollguard::{
    Action, Error, ErrorCode, EventKind, Input, Policy, PolicyConfig, Reason, Sample, Snapshot,
    Step, TIME_MAX, TargetKind, VersionSpec,
};
use serde_json::{Value, json};

// ------------------------------------------------------------------ configs

/// The metric names every generated config declares, in this order.
const METRICS: [&str; 3] = ["latency_ms", "errors", "quality"];

prop_compose! {
    /// A gate's persistence block.
    fn persistence()(
        consecutive in 1u32..=3,
        for_ms in prop_oneof![3 => Just(0u64), 1 => 0u64..4_000],
        clear_after in 1u32..=2,
        keep_failing_ms in prop_oneof![3 => Just(0u64), 1 => 0u64..4_000],
    ) -> Value {
        json!({"consecutive": consecutive, "for_ms": for_ms,
               "clear_after": clear_after, "keep_failing_ms": keep_failing_ms})
    }
}

fn on_no_data() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just("inconclusive"), 1 => Just("fail"), 1 => Just("pass")]
}

prop_compose! {
    /// Between one and four gates: a p95 latency gate against the baseline (always; its
    /// `max_ratio` is now and then huge, which the config allows),
    /// and optionally an error-rate gate, a quality threshold (sometimes dry-run), a
    /// steady-phase latency threshold, an error_attribution gate, a sequential_mean gate,
    /// a cusum chart, an ewma chart, a drift gate, a rate_slo gate, a sequential_quantile
    /// gate and a mann_whitney gate.
    fn gates()(
        p95 in (persistence(), 1u64..=4, on_no_data(),
                prop_oneof![8 => Just(1.3f64), 1 => Just(2.0), 1 => Just(1e300)]),
        errors in proptest::option::weighted(0.7, (persistence(), 1u64..=200, on_no_data())),
        quality in proptest::option::weighted(0.5, (persistence(), 1u64..=4, any::<bool>())),
        steady in proptest::option::weighted(0.35, (persistence(), 1u64..=4)),
        attributed in proptest::option::weighted(0.4, (0.01f64..0.5, 0.0f64..1.0, 0.5f64..50.0)),
        mean_test in proptest::option::weighted(0.4, (0.01f64..0.5, any::<bool>(), 0.0f64..0.3, 1u64..=20)),
        cusum in proptest::option::weighted(0.4, (0.2f64..3.0, 2.0f64..1e6, 1u64..=20, any::<bool>())),
        slo in proptest::option::weighted(0.4, (0.001f64..0.5, 0.01f64..0.5)),
        // A given limit mostly: deriving one from arl0 solves a Markov chain.
        ewma in proptest::option::weighted(0.3, (0.05f64..=1.0, prop_oneof![
            3 => (0.5f64..6.0).prop_map(|l| json!({"limit": l})),
            1 => (2.0f64..1e4).prop_map(|a| json!({"arl0": a})),
        ], 1u64..=20)),
        quantile_test in proptest::option::weighted(
            0.4, (0.01f64..0.5, any::<bool>(), 0.0f64..0.5, 1u64..=20, any::<bool>())),
        rank in proptest::option::weighted(0.4, (0u8..3, 0.5f64..0.999, 3u32..=50, 1u64..=3)),
        drift in proptest::option::weighted(0.3, (any::<bool>(), prop_oneof![
            (2u32..=8).prop_map(|k| json!({"categories": k})),
            (1u32..=16).prop_map(|n| json!({"bins": {"min": 50.0, "max": 250.0, "count": n}})),
        ], 1u64..=20)),
    ) -> Vec<Value> {
        let mut gates = vec![json!({
            "name": "p95_vs_stable", "metric": "latency_ms", "stat": "p95",
            "rule": {"kind": "vs_baseline", "max_ratio": p95.3},
            "samples_min": p95.1, "on_no_data": p95.2, "persistence": p95.0,
        })];
        if let Some((p, min, nd)) = errors {
            gates.push(json!({
                "name": "error_rate", "metric": "errors", "stat": "rate",
                "rule": {"kind": "vs_baseline", "max_increase": 0.02},
                "samples_min": min, "on_no_data": nd, "persistence": p,
            }));
        }
        if let Some((p, min, dry)) = quality {
            gates.push(json!({
                "name": "quality", "metric": "quality", "stat": "mean",
                "rule": {"kind": "threshold", "min": 0.8},
                "samples_min": min, "dry_run": dry, "persistence": p,
            }));
        }
        if let Some((alpha, margin, k)) = attributed {
            gates.push(json!({
                "name": "errors_attributed", "metric": "errors", "stat": "rate",
                "rule": {"kind": "error_attribution", "alpha": alpha,
                         "margin": {"relative": margin}, "mixing_events": k},
            }));
        }
        if let Some((alpha, lower, margin, burn_in)) = mean_test {
            gates.push(json!({
                "name": "mean_latency", "metric": "latency_ms", "stat": "mean",
                "rule": {"kind": "sequential_mean", "alpha": alpha,
                         "worse": if lower { "lower" } else { "higher" },
                         "margin": {"relative": margin}},
                "samples_min": burn_in,
            }));
        }
        if let Some((alpha, lower, margin, burn_in, absolute)) = quantile_test {
            let margin = if absolute {
                json!({"absolute": margin * 100.0})
            } else {
                json!({"relative": margin})
            };
            gates.push(json!({
                "name": "p99_latency", "metric": "latency_ms", "stat": "p99",
                "rule": {"kind": "sequential_quantile", "alpha": alpha,
                         "worse": if lower { "lower" } else { "higher" },
                         "margin": margin, "mixing_events": 1.0 + 20.0 * alpha},
                "samples_min": burn_in,
            }));
        }
        if let Some((max_rate, alpha)) = slo {
            gates.push(json!({
                "name": "error_slo", "metric": "errors", "stat": "rate",
                "rule": {"kind": "rate_slo", "max_rate": max_rate, "alpha": alpha},
                "phases": ["canary", "bake", "steady"],
            }));
        }
        if let Some((worse, confidence, samples_max, min)) = rank {
            let worse = ["higher", "lower", "either"][usize::from(worse)];
            gates.push(json!({
                "name": "latency_kayenta", "metric": "latency_ms", "stat": "mean",
                "rule": {"kind": "mann_whitney",
                         "worse": worse,
                         "confidence": confidence, "samples_max": samples_max},
                "samples_min": min,
            }));
        }
        if let Some((shift, arl0, learn, given)) = cusum {
            let mut rule = json!({"kind": "cusum", "shift": shift, "arl0": arl0});
            if given {
                rule["reference_mean"] = json!(100.0);
                rule["reference_sd"] = json!(20.0);
            }
            // The other settings of the samples, by the shift's range: no clip and
            // samples taken as independent, or a clip near the shift.
            if shift > 2.0 {
                rule["clip"] = Value::Null;
                rule["autocorrelation"] = json!("ignore");
            } else if shift > 1.0 {
                rule["clip"] = json!(shift);
            }
            gates.push(json!({
                "name": "latency_cusum", "metric": "latency_ms", "stat": "mean",
                "rule": rule, "samples_min": learn,
                "phases": ["canary", "bake", "steady"],
            }));
        }
        if let Some((lambda, limit, learn)) = ewma {
            let mut rule = json!({"kind": "ewma", "lambda": lambda});
            rule.as_object_mut().unwrap().extend(limit.as_object().unwrap().clone());
            gates.push(json!({
                "name": "latency_ewma", "metric": "latency_ms", "stat": "mean",
                "rule": rule, "samples_min": learn,
                "phases": ["canary", "bake", "steady"],
            }));
        }
        if let Some((js, bins, min)) = drift {
            let mut rule = json!({"kind": "drift", "measure": if js { "js" } else { "psi" }});
            rule.as_object_mut().unwrap().extend(bins.as_object().unwrap().clone());
            gates.push(json!({
                "name": "latency_drift", "metric": "latency_ms", "stat": "mean",
                "rule": rule, "samples_min": min,
            }));
        }
        if let Some((p, min)) = steady {
            gates.push(json!({
                "name": "steady_latency", "metric": "latency_ms", "stat": "mean",
                "rule": {"kind": "threshold", "max": 180.0},
                "samples_min": min, "persistence": p,
                "phases": ["steady", "canary", "bake"],
            }));
        }
        gates
    }
}

/// A canary step after the optional leading shadow step.
fn canary_step() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (1u32..=100, prop_oneof![1 => Just(0u64), 3 => 1_000u64..12_000])
            .prop_map(|(w, d)| json!({"kind": "set_weight", "weight": w, "duration_ms": d})),
        1 => Just(json!({"kind": "approval"})),
    ]
}

fn strategy() -> impl Strategy<Value = Value> {
    let bake = prop_oneof![1 => Just(0u64), 2 => 1_000u64..12_000];
    prop_oneof![
        4 => (
            proptest::option::weighted(0.4, 1_000u64..8_000),
            proptest::collection::vec(canary_step(), 1..=4),
            bake.clone(),
        )
            .prop_map(|(shadow, rest, bake)| {
                let mut steps: Vec<Value> = shadow
                    .map(|d| json!({"kind": "shadow", "duration_ms": d}))
                    .into_iter()
                    .collect();
                steps.extend(rest);
                json!({"kind": "canary", "steps": steps, "post_promotion_bake_ms": bake})
            }),
        1 => (0u64..6_000, 0u64..8_000, any::<bool>(), bake).prop_map(|(s, p, auto, bake)| {
            json!({"kind": "blue_green", "shadow_ms": s, "preview_ms": p,
                   "auto_promote": auto, "post_promotion_bake_ms": bake})
        }),
    ]
}

prop_compose! {
    /// A small valid policy config, as JSON.
    fn config()(
        windows in (prop_oneof![Just(500u64), Just(1_000), Just(2_000)], 1u32..=6, 1u32..=6, any::<bool>()),
        interval_ms in 500u64..=3_000,
        gates in gates(),
        strategy in strategy(),
        approval in (1_000u64..20_000, prop_oneof![Just("rollback"), Just("continue"), Just("hold")], any::<bool>()),
        safety in (prop_oneof![1 => Just(0u64), 3 => 1_000u64..30_000], 1u32..=3,
                   10_000u64..1_000_000, 1_000u64..10_000),
        registry in (any::<bool>(), any::<bool>(), prop_oneof![Just(4u32), Just(5), Just(8), Just(16)]),
    ) -> Value {
        let (width, lat_buckets, other_buckets, narrow_hist) = windows;
        let (v3_validated, with_candidate, versions_max) = registry;
        let hist = if narrow_hist {
            json!({"min": 1.0, "max": 4096.0})
        } else {
            json!({"min": 0.001, "max": 1e9})
        };
        let mut cfg = json!({
            "format_version": 1,
            "name": "prop",
            "versions": [
                {"id": "v1", "digest": "sha256:01", "validated": true,
                 "components": {"model": "m-1", "prompt_template": "p-1"}},
                {"id": "v2", "digest": "sha256:02"},
                {"id": "v3", "digest": "sha256:03", "validated": v3_validated},
                {"id": "v4", "digest": "sha256:04"},
            ],
            "stable": "v1",
            "metrics": [
                {"name": METRICS[0], "kind": "value", "window_ms": width * u64::from(lat_buckets),
                 "buckets": lat_buckets, "histogram_range": hist},
                {"name": METRICS[1], "kind": "count", "window_ms": width * u64::from(other_buckets),
                 "buckets": other_buckets},
                {"name": METRICS[2], "kind": "value", "window_ms": width * u64::from(other_buckets),
                 "buckets": other_buckets},
            ],
            "gates": gates,
            "strategy": strategy,
            "analysis": {"interval_ms": interval_ms},
            "approval": {"timeout_ms": approval.0, "on_timeout": approval.1,
                         "pause_on_inconclusive": approval.2},
            "safety": {"cooldown_ms": safety.0,
                       "breaker": {"max_rollbacks": safety.1, "window_ms": safety.2},
                       "ack_timeout_ms": safety.3},
            "limits": {"versions_max": versions_max},
        });
        if with_candidate {
            cfg["candidate"] = json!("v2");
        }
        cfg
    }
}

// ------------------------------------------------------------------ operations

/// How samples are regressed in one stream.
#[derive(Debug, Clone, Copy)]
enum Health {
    /// Nothing regresses.
    Healthy,
    /// About a third of all samples regress.
    Flaky,
    /// The candidate always regresses, the stable never.
    CandidateBad,
    /// Everything regresses (trips steady-phase gates too).
    AllBad,
}

/// Which arm a sample is for, resolved against the aliases at run time.
#[derive(Debug, Clone, Copy)]
enum ArmSel {
    Stable,
    /// The candidate, or the stable when there is none.
    Candidate,
    /// A registered version picked by index: usually not live (accepted, ignored).
    Registered(u8),
    /// Not registered: refused with `unknown_arm`.
    Unknown,
}

/// Which entry point a single sample goes through.
#[derive(Debug, Clone, Copy)]
enum Via {
    Handle,
    Observe,
    Fast,
}

/// A refused (or borderline) input.
#[derive(Debug, Clone, Copy)]
enum Bad {
    NanValue,
    InfiniteValue,
    NegativeCount,
    EventsExceedTotal,
    KindMismatch,
    UnknownMetric,
    TimeOutOfRange,
    LabelTooLong,
    /// A batch with one refused sample in the middle: all or nothing.
    PoisonedBatch,
    AckUnknown,
    /// A config-invalid version bundle.
    EmptyVersionId,
    /// Same id as a registered version, other contents.
    DuplicateVersion,
    /// `revert_now` with target `version` but no version.
    RevertWithoutVersion,
    /// A tick 1..=1000 ms before the policy's time.
    Backwards(u16),
}

/// An operator command (or a registration).
#[derive(Debug, Clone, Copy)]
enum Cmd {
    Pause,
    Resume,
    Abort,
    RevertNow(Option<TargetKind>, u8),
    ForcePromote,
    MarkValidated(u8),
    ClearBreaker,
    StartRollout(u8),
    /// A new bundle `n<k>` (validated or not).
    Register(u8, bool),
}

/// One abstract operation; `dt` is how far it moves time past the policy's time.
#[derive(Debug, Clone)]
enum Op {
    Sample {
        dt: u16,
        arm: ArmSel,
        metric: u8,
        roll: u8,
        extreme: bool,
        via: Via,
    },
    /// `n` rounds of every metric on both live arms, as one `observe_batch`.
    Burst {
        dt: u16,
        n: u8,
        roll: u8,
    },
    Tick {
        dt: u32,
        via_handle: bool,
    },
    /// Acknowledge the pending action (if any). `late` adds the ack timeout to `dt`.
    Ack {
        dt: u16,
        late: bool,
    },
    ActionFailed {
        dt: u16,
    },
    Cmd {
        dt: u16,
        cmd: Cmd,
    },
    Bad {
        dt: u16,
        bad: Bad,
    },
}

fn arm_sel() -> impl Strategy<Value = ArmSel> {
    prop_oneof![
        8 => Just(ArmSel::Stable),
        8 => Just(ArmSel::Candidate),
        1 => any::<u8>().prop_map(ArmSel::Registered),
        1 => Just(ArmSel::Unknown),
    ]
}

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![Just(Via::Handle), Just(Via::Observe), Just(Via::Fast)]
}

fn target_kind() -> impl Strategy<Value = Option<TargetKind>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(TargetKind::Stable)),
        1 => Just(Some(TargetKind::Previous)),
        1 => Just(Some(TargetKind::Golden)),
        1 => Just(Some(TargetKind::Version)),
    ]
}

/// Operator commands; `churn` makes registrations, validations and reverts to a chosen
/// version common, so that registries fill up while actions are pending.
fn cmd(churn: bool) -> impl Strategy<Value = Cmd> {
    let c = u32::from(churn);
    prop_oneof![
        2 => Just(Cmd::Pause),
        3 => Just(Cmd::Resume),
        1 => Just(Cmd::Abort),
        2 + 4 * c => (target_kind(), any::<u8>()).prop_map(|(t, v)| Cmd::RevertNow(t, v)),
        1 => Just(Cmd::ForcePromote),
        1 + 4 * c => any::<u8>().prop_map(Cmd::MarkValidated),
        2 => Just(Cmd::ClearBreaker),
        4 => any::<u8>().prop_map(Cmd::StartRollout),
        2 + 8 * c => (0u8..24, any::<bool>()).prop_map(|(k, v)| Cmd::Register(k, v)),
    ]
}

fn bad() -> impl Strategy<Value = Bad> {
    prop_oneof![
        Just(Bad::NanValue),
        Just(Bad::InfiniteValue),
        Just(Bad::NegativeCount),
        Just(Bad::EventsExceedTotal),
        Just(Bad::KindMismatch),
        Just(Bad::UnknownMetric),
        Just(Bad::TimeOutOfRange),
        Just(Bad::LabelTooLong),
        Just(Bad::PoisonedBatch),
        Just(Bad::AckUnknown),
        Just(Bad::EmptyVersionId),
        Just(Bad::DuplicateVersion),
        Just(Bad::RevertWithoutVersion),
        (1u16..=1_000).prop_map(Bad::Backwards),
    ]
}

/// One operation (see [`cmd`] for `churn`).
fn op(churn: bool) -> impl Strategy<Value = Op> {
    let c = u32::from(churn);
    prop_oneof![
        20 => (0u16..800, arm_sel(), prop_oneof![40 => 0u8..3, 1 => Just(3)], any::<u8>(),
               proptest::bool::weighted(0.05), via())
            .prop_map(|(dt, arm, metric, roll, extreme, via)| Op::Sample {
                dt, arm, metric, roll, extreme, via
            }),
        12 => (0u16..1_500, 1u8..=6, any::<u8>()).prop_map(|(dt, n, roll)| Op::Burst { dt, n, roll }),
        8 => (prop_oneof![3 => 0u32..3_000, 1 => 0u32..40_000], any::<bool>())
            .prop_map(|(dt, via_handle)| Op::Tick { dt, via_handle }),
        8 => (0u16..1_000, proptest::bool::weighted(0.1)).prop_map(|(dt, late)| Op::Ack { dt, late }),
        1 => (0u16..1_000).prop_map(|dt| Op::ActionFailed { dt }),
        6 + 12 * c => (0u16..1_000, cmd(churn)).prop_map(|(dt, cmd)| Op::Cmd { dt, cmd }),
        3 => (0u16..500, bad()).prop_map(|(dt, bad)| Op::Bad { dt, bad }),
    ]
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        1 => Just(Health::Healthy),
        1 => Just(Health::Flaky),
        2 => Just(Health::CandidateBad),
        1 => Just(Health::AllBad),
    ]
}

/// A whole case: a config, a start time, how samples regress, and the operations.
#[derive(Debug, Clone)]
struct Case {
    config: Value,
    start: u64,
    health: Health,
    ops: Vec<Op>,
}

fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    case_from(max_ops, false)
}

/// Cases that also start near the 2^53 − 1 ms limit, where every deadline saturates.
/// Only the repeated-tick property uses them: while ticks at the limit are costly (see
/// `pinned_repeated_tick_at_time_max_is_a_no_op`), they would slow every property down.
fn case_near_time_max(max_ops: usize) -> impl Strategy<Value = Case> {
    case_from(max_ops, true)
}

fn case_from(max_ops: usize, near_time_max: bool) -> impl Strategy<Value = Case> {
    let near = if near_time_max { 1 } else { 0 };
    (
        config(),
        prop_oneof![
            6 => Just(0u64),
            2 => Just(1_700_000_000_000u64),
            2 => 0u64..1_000_000,
            near => (TIME_MAX - 60_000)..=TIME_MAX,
        ],
        health(),
        prop_oneof![
            3 => proptest::collection::vec(op(false), 1..max_ops),
            1 => proptest::collection::vec(op(true), 1..max_ops),
        ],
    )
        .prop_map(|(config, start, health, ops)| Case {
            config,
            start,
            health,
            ops,
        })
}

// ------------------------------------------------------------------ calls

/// A concrete call of one of the policy's entry points.
#[derive(Debug, Clone)]
enum Call {
    Handle(Input),
    Observe(Sample),
    Value {
        at: u64,
        arm: String,
        metric: String,
        value: f64,
    },
    Count {
        at: u64,
        arm: String,
        metric: String,
        events: i64,
        total: i64,
    },
    Tick(u64),
}

impl Call {
    fn apply(&self, p: &mut Policy) -> Result<Step, Error> {
        match self {
            Call::Handle(input) => p.handle(input),
            Call::Observe(s) => p.observe(s),
            Call::Value {
                at,
                arm,
                metric,
                value,
            } => p.observe_value(*at, arm, metric, *value),
            Call::Count {
                at,
                arm,
                metric,
                events,
                total,
            } => p.observe_count(*at, arm, metric, *events, *total),
            Call::Tick(at) => p.tick(*at),
        }
    }

    /// The same call as an [`Input`] (what a binding would send as JSON).
    fn to_input(&self) -> Input {
        match self {
            Call::Handle(input) => input.clone(),
            Call::Observe(s) => Input::Observe(s.clone()),
            Call::Value {
                at,
                arm,
                metric,
                value,
            } => Input::Observe(Sample::value(*at, arm, metric, *value)),
            Call::Count {
                at,
                arm,
                metric,
                events,
                total,
            } => Input::Observe(Sample::count(*at, arm, metric, *events, *total)),
            Call::Tick(at) => Input::Tick { at: *at },
        }
    }
}

/// A regressed-or-healthy sample of metric `m` for `arm` at `at`.
fn sample(at: u64, arm: &str, m: usize, regressed: bool, jitter: u8, extreme: bool) -> Sample {
    let j = f64::from(jitter);
    match m {
        0 => {
            let v = if extreme {
                // Valid (finite) but extreme values: overflow, underflow, zero, negative.
                // ±1e100 is the largest magnitude accepted; beyond it is refused.
                [1e100, -1e100, 0.0, 5e-324, f64::MAX, 1e100, 1.5e100][usize::from(jitter) % 7]
            } else if regressed {
                300.0 + j
            } else {
                80.0 + j / 4.0
            };
            Sample::value(at, arm, METRICS[0], v)
        }
        1 => {
            let total = 50 + i64::from(jitter % 51);
            let events = if regressed {
                10 + i64::from(jitter % 20)
            } else {
                i64::from(jitter % 2)
            };
            if extreme {
                Sample::count(at, arm, METRICS[1], i64::MAX, i64::MAX)
            } else {
                Sample::count(at, arm, METRICS[1], events, total)
            }
        }
        _ => {
            let v = if extreme {
                [1e100, -1e100, f64::MIN_POSITIVE, 1e308][usize::from(jitter) % 4]
            } else if regressed {
                0.3 + j / 1000.0
            } else {
                0.9 + j / 1000.0
            };
            Sample::value(at, arm, METRICS[2], v)
        }
    }
}

/// Turns abstract operations into calls, against the policy's current state.
struct Materializer {
    health: Health,
    ack_timeout_ms: u64,
}

impl Materializer {
    fn new(case: &Case) -> Self {
        Self {
            health: case.health,
            ack_timeout_ms: case.config["safety"]["ack_timeout_ms"]
                .as_u64()
                .unwrap_or(0),
        }
    }

    fn regressed(&self, candidate: bool, roll: u8) -> bool {
        match self.health {
            Health::Healthy => false,
            Health::Flaky => roll < 85,
            Health::CandidateBad => candidate,
            Health::AllBad => true,
        }
    }

    fn call(&self, op: &Op, p: &Policy) -> Call {
        let now = p.now();
        let status = p.status();
        let stable = status.aliases.stable.clone();
        let candidate = status.aliases.candidate.clone();
        let versions: Vec<String> = p.versions().iter().map(|v| v.id.clone()).collect();
        let pick = |i: u8| versions[usize::from(i) % versions.len()].clone();
        let at = |dt: u64| (now + dt).min(TIME_MAX);
        match *op {
            Op::Sample {
                dt,
                arm,
                metric,
                roll,
                extreme,
                via,
            } => {
                let at = at(u64::from(dt));
                let (arm, is_candidate) = match arm {
                    ArmSel::Stable => (stable, false),
                    ArmSel::Candidate => match candidate {
                        Some(c) => (c, true),
                        None => (stable, false),
                    },
                    ArmSel::Registered(i) => (pick(i), false),
                    ArmSel::Unknown => ("ghost".to_string(), false),
                };
                if metric >= 3 {
                    return Call::Observe(Sample::value(at, &arm, "no_such_metric", 1.0));
                }
                let s = sample(
                    at,
                    &arm,
                    usize::from(metric),
                    self.regressed(is_candidate, roll),
                    roll,
                    extreme,
                );
                match via {
                    Via::Handle => Call::Handle(Input::Observe(s)),
                    Via::Observe => Call::Observe(s),
                    Via::Fast => match (s.value, s.events, s.total) {
                        (Some(value), ..) => Call::Value {
                            at,
                            arm,
                            metric: s.metric,
                            value,
                        },
                        (None, Some(events), Some(total)) => Call::Count {
                            at,
                            arm,
                            metric: s.metric,
                            events,
                            total,
                        },
                        _ => Call::Observe(s),
                    },
                }
            }
            Op::Burst { dt, n, roll } => {
                let mut samples = Vec::new();
                let arms: Vec<(String, bool)> = std::iter::once((stable, false))
                    .chain(candidate.map(|c| (c, true)))
                    .collect();
                for round in 0..u64::from(n) {
                    // Spread the rounds evenly over `dt`.
                    let t = at(u64::from(dt) * (round + 1) / u64::from(n));
                    for (arm, is_candidate) in &arms {
                        for m in 0..METRICS.len() {
                            let r = roll.wrapping_add((round as u8).wrapping_mul(37));
                            let bad = self.regressed(*is_candidate, r);
                            samples.push(sample(t, arm, m, bad, r, false));
                        }
                    }
                }
                Call::Handle(Input::ObserveBatch { samples })
            }
            Op::Tick { dt, via_handle } => {
                let at = at(u64::from(dt));
                if via_handle {
                    Call::Handle(Input::Tick { at })
                } else {
                    Call::Tick(at)
                }
            }
            Op::Ack { dt, late } => {
                let extra = if late { self.ack_timeout_ms } else { 0 };
                Call::Handle(Input::Ack {
                    at: at(u64::from(dt) + extra),
                    action_id: status.pending_action.unwrap_or(1),
                })
            }
            Op::ActionFailed { dt } => Call::Handle(Input::ActionFailed {
                at: at(u64::from(dt)),
                action_id: status.pending_action.unwrap_or(1),
                reason: "router refused".into(),
            }),
            Op::Cmd { dt, cmd } => {
                let at = at(u64::from(dt));
                Call::Handle(match cmd {
                    Cmd::Pause => Input::Pause { at },
                    Cmd::Resume => Input::Resume { at },
                    Cmd::Abort => Input::Abort { at },
                    Cmd::RevertNow(target, v) => {
                        let version = (target == Some(TargetKind::Version)).then(|| pick(v));
                        Input::RevertNow {
                            at,
                            target,
                            version,
                        }
                    }
                    Cmd::ForcePromote => Input::ForcePromote { at },
                    Cmd::MarkValidated(v) => Input::MarkValidated {
                        at,
                        version: pick(v),
                    },
                    Cmd::ClearBreaker => Input::ClearBreaker { at },
                    Cmd::StartRollout(v) => Input::StartRollout {
                        at,
                        version: pick(v),
                    },
                    Cmd::Register(k, validated) => Input::RegisterVersion {
                        at,
                        version: VersionSpec {
                            id: format!("n{k}"),
                            digest: format!("sha256:n{k}"),
                            components: BTreeMap::from([("model".into(), format!("m-n{k}"))]),
                            validated,
                        },
                    },
                })
            }
            Op::Bad { dt, bad } => {
                let at = at(u64::from(dt));
                match bad {
                    Bad::NanValue => Call::Value {
                        at,
                        arm: stable,
                        metric: METRICS[0].into(),
                        value: f64::NAN,
                    },
                    Bad::InfiniteValue => {
                        Call::Observe(Sample::value(at, &stable, METRICS[2], f64::INFINITY))
                    }
                    Bad::NegativeCount => Call::Count {
                        at,
                        arm: stable,
                        metric: METRICS[1].into(),
                        events: -1,
                        total: 10,
                    },
                    Bad::EventsExceedTotal => Call::Handle(Input::Observe(Sample::count(
                        at, &stable, METRICS[1], 11, 10,
                    ))),
                    Bad::KindMismatch => Call::Value {
                        at,
                        arm: stable,
                        metric: METRICS[1].into(),
                        value: 1.0,
                    },
                    Bad::UnknownMetric => Call::Count {
                        at,
                        arm: stable,
                        metric: "nope".into(),
                        events: 0,
                        total: 1,
                    },
                    Bad::TimeOutOfRange => Call::Tick(TIME_MAX + 1 + u64::from(dt)),
                    Bad::LabelTooLong => {
                        let mut s = Sample::value(at, &stable, METRICS[0], 100.0);
                        s.tenant = Some("t".repeat(300));
                        Call::Observe(s)
                    }
                    Bad::PoisonedBatch => {
                        let mut samples: Vec<Sample> = (0..4)
                            .map(|i| sample(at, &stable, i % 3, false, 7, false))
                            .collect();
                        samples.insert(2, Sample::count(at, &stable, METRICS[1], 5, 1));
                        Call::Handle(Input::ObserveBatch { samples })
                    }
                    Bad::AckUnknown => Call::Handle(Input::Ack {
                        at,
                        action_id: status.pending_action.map_or(999, |id| id + 1000),
                    }),
                    Bad::EmptyVersionId => Call::Handle(Input::RegisterVersion {
                        at,
                        version: VersionSpec {
                            id: String::new(),
                            digest: "sha256:x".into(),
                            components: BTreeMap::new(),
                            validated: false,
                        },
                    }),
                    Bad::DuplicateVersion => Call::Handle(Input::RegisterVersion {
                        at,
                        version: VersionSpec {
                            id: stable,
                            digest: "sha256:other".into(),
                            components: BTreeMap::new(),
                            validated: true,
                        },
                    }),
                    Bad::RevertWithoutVersion => Call::Handle(Input::RevertNow {
                        at,
                        target: Some(TargetKind::Version),
                        version: None,
                    }),
                    Bad::Backwards(back) => Call::Handle(Input::Tick {
                        at: now.saturating_sub(u64::from(back)),
                    }),
                }
            }
        }
    }
}

// ------------------------------------------------------------------ driving

fn new_policy(case: &Case) -> Policy {
    Policy::from_json(&case.config.to_string(), case.start)
        .unwrap_or_else(|e| panic!("the generator made an invalid config: {e}\n{}", case.config))
}

/// Every call of a case with what it returned.
type Trace = Vec<(Call, Result<Step, Error>)>;

/// Runs a case, calling `check(before, call, result, after)` for every call; `check`
/// returns an error message to fail the case with.
fn run(
    case: &Case,
    mut check: impl FnMut(&Policy, &Call, &Result<Step, Error>, &Policy) -> Result<(), String>,
) -> Result<Trace, TestCaseError> {
    let mut p = new_policy(case);
    let m = Materializer::new(case);
    let mut trace = Vec::with_capacity(case.ops.len());
    for (i, op) in case.ops.iter().enumerate() {
        let call = m.call(op, &p);
        let before = p.clone();
        let result = call.apply(&mut p);
        check(&before, &call, &result, &p)
            .map_err(|e| TestCaseError::fail(format!("at op {i} ({call:?}): {e}")))?;
        trace.push((call, result));
    }
    Ok(trace)
}

fn no_check(_: &Policy, _: &Call, _: &Result<Step, Error>, _: &Policy) -> Result<(), String> {
    Ok(())
}

fn decisions(result: &Result<Step, Error>) -> &[rollguard::Decision] {
    result.as_ref().map_or(&[], |s| &s.decisions)
}

/// The operator-driven reasons: decisions with these are not automation's.
fn by_operator(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::OperatorRevert
            | Reason::OperatorAbort
            | Reason::OperatorForcePromote
            | Reason::OperatorRetry
            | Reason::ApprovalGranted
    )
}

/// The proptest config: `n` cases (each test stays well under 20 s in a debug build on
/// the shared 2-core machine), or `PROPTEST_CASES` when set, for deeper runs.
fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        // `cargo test` runs in the package directory: failures are kept in
        // crates/rollguard/proptest-regressions/properties.txt (meant to be committed).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        max_shrink_iters: 2_000,
        max_shrink_time: 10_000,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(cases(512))]

    /// Snapshot → JSON → restore at a random point, then continue, is the same as
    /// just continuing: identical steps (and refusals) and an identical final state.
    #[test]
    fn snapshot_restore_continues_identically(case in case(160), split in 0usize..160) {
        let trace = run(&case, no_check)?;
        // A plain count (not an index scaled by the length) shrinks independently of
        // the operations.
        let k = split.min(trace.len());
        let mut p = new_policy(&case);
        for (call, _) in &trace[..k] {
            let _ = call.apply(&mut p);
        }
        let json = p.snapshot().to_json();
        let mut q = Policy::restore_json(&json)
            .map_err(|e| TestCaseError::fail(format!("restore after {k} calls failed: {e}\n{json}")))?;
        prop_assert!(q == p, "restored policy differs from the original after {} calls", k);
        for (i, (call, want)) in trace[k..].iter().enumerate() {
            let got = call.apply(&mut q);
            let _ = call.apply(&mut p);
            prop_assert_eq!(&got, want, "call {} after the split at {} ({:?})", k + i, k, call);
        }
        prop_assert_eq!(q.snapshot().to_json(), p.snapshot().to_json());
        prop_assert!(q == p);
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Every reachable state passes `validate`, and its snapshot restores to an equal
    /// policy, after every call (accepted or refused). Debug builds also validate after
    /// every accepted input inside the core; this checks release builds and refusals.
    #[test]
    fn every_reachable_state_validates_and_restores(case in case(160)) {
        let check = |p: &Policy| -> Result<(), String> {
            p.validate().map_err(|e| format!("invalid state: {e}\n{}", p.snapshot().to_json()))?;
            let json = p.snapshot().to_json();
            let q = Policy::restore_json(&json).map_err(|e| format!("restore failed: {e}\n{json}"))?;
            if q != *p {
                return Err(format!("restored policy differs\n{json}"));
            }
            Ok(())
        };
        check(&new_policy(&case)).map_err(TestCaseError::fail)?;
        run(&case, |_, _, _, after| check(after))?;
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// `tick(t)` twice is `tick(t)` once: the second returns an empty step and changes
    /// nothing. Checked after every call, at the policy's time plus a varying delay.
    #[test]
    fn second_tick_is_a_no_op(
        case in case_near_time_max(160),
        delays in proptest::collection::vec(0u64..20_000, 1..8),
    ) {
        let mut i = 0usize;
        run(&case, |_, _, _, after| {
            i += 1;
            let t = (after.now() + delays[i % delays.len()]).min(TIME_MAX);
            let mut q = after.clone();
            let first = q.tick(t).map_err(|e| format!("tick({t}) refused: {e}"))?;
            let once = q.clone();
            let once_json = q.snapshot().to_json();
            let second = q.tick(t).map_err(|e| format!("second tick({t}) refused: {e}"))?;
            if !second.is_empty() || second.at != t {
                return Err(format!("second tick({t}) was not empty: {second:?}\nfirst: {first:?}"));
            }
            if q != once || q.snapshot().to_json() != once_json {
                return Err(format!("second tick({t}) changed the state"));
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// No automated rollback inside a cooldown: automated rollback decisions are at
    /// least `cooldown_ms` apart. A `resume` that retries a failed or timed-out
    /// rollback (reason `operator_retry`) re-issues the same decision and is not counted.
    #[test]
    fn automated_rollbacks_respect_the_cooldown(case in case(200)) {
        let cooldown = case.config["safety"]["cooldown_ms"].as_u64().unwrap();
        let mut last: Option<u64> = None;
        run(&case, |_, _, result, _| {
            for d in decisions(result) {
                if let Action::Rollback { automated: true, .. } = d.action {
                    if d.reason == Reason::OperatorRetry {
                        continue;
                    }
                    if let Some(t) = last
                        && d.at < t + cooldown {
                            return Err(format!(
                                "automated rollback at {} only {} ms after the one at {t} \
                                 (cooldown {cooldown} ms): {d:?}", d.at, d.at - t));
                        }
                    last = Some(d.at);
                }
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// After `breaker_tripped` and before an accepted `clear_breaker`: no automated
    /// rollback, no automated traffic action, `start_rollout` is refused (with
    /// `breaker_open` when nothing else stands in its way) and the status says so.
    #[test]
    fn breaker_holds_until_cleared(case in case(200)) {
        let mut open = false;
        run(&case, |before, call, result, after| {
            let Ok(step) = result else {
                if after.status().breaker_open != open {
                    return Err("a refused input changed the breaker".into());
                }
                return Ok(());
            };
            // Within a step, decisions after the one that trips the breaker count too.
            let mut open_now = open;
            for d in &step.decisions {
                let automated = !by_operator(d.reason);
                let bad = match &d.action {
                    Action::Rollback { automated: true, .. } => automated,
                    Action::SetWeight { .. } | Action::StartShadow { .. }
                    | Action::StartPreview { .. } | Action::Promote { .. } => automated,
                    _ => false,
                };
                if open_now && bad {
                    return Err(format!("automation acted while the breaker was open: {d:?}\n\
                                        status before: {:?}", before.status()));
                }
                if d.reason == Reason::BreakerTripped && matches!(d.action, Action::Rollback { .. }) {
                    open_now = true;
                }
            }
            if step.events.iter().any(|e| matches!(e.kind, EventKind::BreakerTripped { .. })) {
                open = true;
            }
            if matches!(call, Call::Handle(Input::ClearBreaker { .. })) {
                open = false;
            }
            let status = after.status();
            if status.breaker_open != open {
                return Err(format!("status().breaker_open is {} but the trace says {open}",
                                   status.breaker_open));
            }
            if open {
                for v in after.versions() {
                    if v.id == status.aliases.stable {
                        continue;
                    }
                    let mut q = after.clone();
                    let r = q.handle(&Input::StartRollout { at: after.now(), version: v.id.clone() });
                    let free = status.pending_action.is_none()
                        && status.stage.is_none()
                        && status.halted.is_none();
                    match r {
                        Ok(step) => return Err(format!(
                            "start_rollout of {} accepted while the breaker is open: {step:?}", v.id)),
                        Err(e) if free && e.code != ErrorCode::BreakerOpen => return Err(format!(
                            "start_rollout refused with {} instead of breaker_open", e.code)),
                        Err(_) => {}
                    }
                }
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Every rollback decision's target was a registered, validated, non-failed version
    /// when the input that produced it arrived, and still is when the rollback is
    /// acknowledged (nothing in between, a registration on a full registry say, may
    /// evict or fail it): the ack leaves it stable, registered, validated, not failed.
    #[test]
    fn rollback_targets_are_validated_and_not_failed(case in case(200)) {
        let target = |p: &Policy, to: &str| match p.versions().iter().find(|v| v.id == to) {
            None => Err(format!("{to:?} is not registered")),
            Some(v) if !v.is_target() => Err(format!(
                "{to:?} is {:?} (validated: {:?})", v.stage, v.validated)),
            Some(_) => Ok(()),
        };
        // Rollbacks issued and not yet resolved, by action id.
        let mut issued: BTreeMap<u64, String> = BTreeMap::new();
        run(&case, |before, _, result, after| {
            let Ok(step) = result else { return Ok(()) };
            for d in &step.decisions {
                if let Action::Rollback { to, .. } = &d.action {
                    target(before, to).map_err(|e| format!("rollback issued to {e}: {d:?}"))?;
                    if let Some(id) = d.action_id {
                        issued.insert(id, to.clone());
                    }
                }
            }
            for e in &step.events {
                let EventKind::ActionAcknowledged { action_id } = e.kind else { continue };
                let Some(to) = issued.remove(&action_id) else { continue };
                target(after, &to).map_err(|e| format!("rollback {action_id} acknowledged \
                                                        to {e}"))?;
                if after.status().aliases.stable != to {
                    return Err(format!("rollback {action_id} to {to:?} acknowledged, but the \
                                        stable version is {:?}", after.status().aliases.stable));
                }
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// The ack protocol: at most one action is pending, and a new action is issued only
    /// once the previous one was acknowledged, reported failed or timed out. Action ids
    /// only grow, and `status().pending_action` is the last unresolved one.
    #[test]
    fn pending_actions_are_never_replaced(case in case(200)) {
        let mut last_id = 0;
        run(&case, |before, _, result, after| {
            let Ok(step) = result else { return Ok(()) };
            let resolved: Vec<u64> = step.events.iter().filter_map(|e| match e.kind {
                EventKind::ActionAcknowledged { action_id }
                | EventKind::ActionFailed { action_id, .. }
                | EventKind::AckTimedOut { action_id } => Some(action_id),
                _ => None,
            }).collect();
            let mut open = before.status().pending_action;
            for d in step.actions() {
                let id = d.action_id.unwrap_or_default();
                if let Some(prev) = open.filter(|p| !resolved.contains(p)) {
                    return Err(format!("action {id} issued while action {prev} was still \
                                        pending: {d:?}\nstep: {step:?}"));
                }
                if id <= last_id {
                    return Err(format!("action id {id} after {last_id}"));
                }
                last_id = id;
                open = Some(id);
            }
            let want = open.filter(|p| !resolved.contains(p));
            if after.status().pending_action != want {
                return Err(format!("pending_action is {:?}, the trace says {want:?}",
                                   after.status().pending_action));
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// A refused input leaves the policy exactly as it was, down to the snapshot bytes.
    #[test]
    fn refused_inputs_change_nothing(case in case(200)) {
        // (How often refusals occur: see `generator_coverage`, about a third of calls.)
        run(&case, |before, _, result, after| {
            if let Err(e) = result {
                if before != after {
                    return Err(format!("refused with {e} but the policy changed"));
                }
                if before.snapshot().to_json() != after.snapshot().to_json() {
                    return Err(format!("refused with {e} but the snapshot changed"));
                }
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(cases(96))]

    /// JSON text → value → text is stable, and parse(print(x)) == x, for configs,
    /// inputs, steps and snapshots (the snapshot after every call).
    #[test]
    fn serde_round_trips_are_the_identity(case in case(120)) {
        let text = case.config.to_string();
        let config = PolicyConfig::from_json(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let canonical = config.to_json();
        let again = PolicyConfig::from_json(&canonical).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &config);
        prop_assert_eq!(again.to_json(), canonical.clone());
        run(&case, |_, call, result, after| {
            let input = call.to_input();
            let text = serde_json::to_string(&input).map_err(|e| e.to_string())?;
            // NaN and infinity have no JSON form (they print as null); those inputs
            // are refused anyway and are left out of the text round trip.
            let finite = !text.contains("null");
            if finite {
                let back = Input::from_json(&text).map_err(|e| format!("{e}: {text}"))?;
                if back != input {
                    return Err(format!("input round trip: {input:?} -> {text} -> {back:?}"));
                }
                if serde_json::to_string(&back).map_err(|e| e.to_string())? != text {
                    return Err(format!("input text unstable: {text}"));
                }
            }
            if let Ok(step) = result {
                let text = serde_json::to_string(step).map_err(|e| e.to_string())?;
                let back: Step = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                if &back != step {
                    return Err(format!("step round trip differs:\n{step:?}\n{text}\n{back:?}"));
                }
                if serde_json::to_string(&back).map_err(|e| e.to_string())? != text {
                    return Err(format!("step text unstable: {text}"));
                }
            }
            let snap = after.snapshot();
            let text = snap.to_json();
            let back = Snapshot::from_json(&text).map_err(|e| format!("{e}\n{text}"))?;
            if back != snap {
                return Err(format!("snapshot round trip differs: {text}"));
            }
            if back.to_json() != text {
                return Err("snapshot text unstable".into());
            }
            // Through the untyped model too (it orders keys, so compare values).
            let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if serde_json::to_value(&snap).map_err(|e| e.to_string())? != value {
                return Err("snapshot differs through serde_json::Value".into());
            }
            Ok(())
        })?;
    }
}

/// Not a property: prints how often the generated streams reach each decision, event
/// and refusal, to check that the generators get deep into the state machine. Run with
/// `cargo test -p rollguard --test properties -- --ignored --nocapture coverage`.
#[test]
#[ignore = "a report, not a check"]
fn generator_coverage() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    let mut count = |key: String| *tally.entry(key).or_default() += 1;
    let cases = 300;
    for _ in 0..cases {
        let case = case(200).new_tree(&mut runner).unwrap().current();
        let trace = run(&case, no_check).unwrap();
        for (_, result) in &trace {
            match result {
                Err(e) => count(format!("error {}", e.code)),
                Ok(step) => {
                    for d in &step.decisions {
                        let kind = serde_json::to_value(&d.action).unwrap()["kind"].clone();
                        count(format!(
                            "decision {} / {:?}",
                            kind.as_str().unwrap(),
                            d.reason
                        ));
                    }
                    for e in &step.events {
                        let kind = serde_json::to_value(&e.kind).unwrap()["kind"].clone();
                        count(format!("event {}", kind.as_str().unwrap()));
                    }
                }
            }
        }
    }
    println!("{cases} cases:");
    for (k, n) in &tally {
        println!("{n:>8}  {k}");
    }
}

// ------------------------------------------------------------------ pinned cases

// The smallest reproductions of what the properties above found, as plain tests so that
// they stay readable and keep failing until the core is fixed (the proptest seeds in
// proptest-regressions/properties.txt replay the generated versions).

/// A one-metric canary config with the given steps and extra top-level fields.
fn small_config(steps: &str, gates: &str, extra: &str) -> String {
    format!(
        r#"{{"format_version": 1,
            "versions": [{{"id": "v1", "digest": "d1", "validated": true}},
                         {{"id": "v2", "digest": "d2"}}],
            "stable": "v1",
            "metrics": [{{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 1}}],
            "gates": {gates},
            "strategy": {{"kind": "canary", "steps": {steps}}},
            "analysis": {{"interval_ms": 1000}}
            {extra}}}"#
    )
}

const P95_GATE: &str = r#"[{"name": "p95", "metric": "latency_ms", "stat": "p95",
                            "rule": {"kind": "vs_baseline", "max_ratio": 1.3}}]"#;

/// Snapshots must keep every bit of a float: 0.9 + 0.236 is 1.1360000000000001, which
/// serde_json without its `float_roundtrip` feature parses back one ulp off.
#[test]
fn pinned_snapshot_keeps_every_float_bit() {
    let config = small_config(r#"[{"kind": "set_weight", "weight": 10}]"#, "[]", "");
    let mut p = Policy::from_json(&config, 0).unwrap();
    let _ = p.observe_value(0, "v1", "latency_ms", 0.9 + 0.236).unwrap();
    let q = Policy::restore_json(&p.snapshot().to_json()).unwrap();
    assert!(q == p, "the restored window sum differs in its last bit");
}

/// Values up to ±1e100 are accepted and keep every window sum finite, so snapshots stay
/// restorable; beyond that they are refused. (Before the value range existed, two
/// samples of 1e308 overflowed a bucket's sum to infinity, which serialized as `null`.)
#[test]
fn pinned_huge_finite_values_keep_snapshots_restorable() {
    let config = small_config(r#"[{"kind": "set_weight", "weight": 10}]"#, "[]", "");
    let mut p = Policy::from_json(&config, 0).unwrap();
    for t in 0..4 {
        let _ = p.observe_value(t, "v1", "latency_ms", 1e100).unwrap();
    }
    let refused = p.observe_value(5, "v1", "latency_ms", 1e308).unwrap_err();
    assert_eq!(refused.code, ErrorCode::ValueOutOfRange);
    let restored = Policy::restore_json(&p.snapshot().to_json());
    assert!(restored.is_ok(), "{:?}", restored.err());
}

/// A bound of baseline × `max_ratio` can overflow: a baseline of 1e100 (the largest
/// accepted value) times a `max_ratio` of 1e300 (the config only requires it finite) is
/// an infinite bound, which a step serializes as `null`, so its JSON no longer says
/// what the gate compared against.
#[test]
fn pinned_gate_reports_stay_finite() {
    let gate = r#"[{"name": "p95", "metric": "latency_ms", "stat": "p95",
                    "rule": {"kind": "vs_baseline", "max_ratio": 1e300}}]"#;
    let config = small_config(
        r#"[{"kind": "set_weight", "weight": 10, "duration_ms": 5000}]"#,
        gate,
        "",
    );
    let mut p = Policy::from_json(&config, 0).unwrap();
    let start = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let id = start.decisions[0].action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap();
    let _ = p.observe_value(10, "v1", "latency_ms", 1e100).unwrap();
    let _ = p.observe_value(10, "v2", "latency_ms", 80.0).unwrap();
    let step = p.tick(1_000).unwrap();
    assert!(!step.events.is_empty(), "no analysis ran");
    let text = serde_json::to_string(&step).unwrap();
    let back: Step = serde_json::from_str(&text).unwrap();
    assert_eq!(back, step, "{text}");
}

/// At the last representable time every deadline saturates to `TIME_MAX`, so the
/// analysis timer never moves past `now`: each `tick(TIME_MAX)` runs the analysis again
/// (until the loop's safety bound) and `next_deadline()` stays at `now`, so a caller's
/// run loop spins.
#[test]
fn pinned_repeated_tick_at_time_max_is_a_no_op() {
    let config = small_config(
        r#"[{"kind": "set_weight", "weight": 10}]"#,
        r#"[{"name": "mean", "metric": "latency_ms", "stat": "mean",
             "rule": {"kind": "threshold", "max": 250}, "phases": ["steady"]}]"#,
        "",
    );
    let mut p = Policy::from_json(&config, TIME_MAX - 500).unwrap();
    let _ = p.tick(TIME_MAX).unwrap();
    let again = p.tick(TIME_MAX).unwrap();
    assert!(
        again.is_empty(),
        "a second tick({TIME_MAX}) produced {} events",
        again.events.len()
    );
    assert!(p.next_deadline().is_none_or(|d| d > p.now()));
}

/// `resume` of an approval pause while an automated rollback waits for its ack
/// replaces the pending rollback with the next stage's action.
#[test]
fn pinned_resume_does_not_replace_a_pending_rollback() {
    let config = small_config(
        r#"[{"kind": "approval"}, {"kind": "set_weight", "weight": 10}]"#,
        P95_GATE,
        r#","approval": {"timeout_ms": 1000, "on_timeout": "rollback"}"#,
    );
    let mut p = Policy::from_json(&config, 0).unwrap();
    let _ = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    // The approval times out: an automated rollback (action 1) is issued.
    let step = p.tick(1_000).unwrap();
    assert!(matches!(step.decisions[0].action, Action::Rollback { .. }));
    assert_eq!(p.status().pending_action, Some(1));
    let resumed = p.handle(&Input::Resume { at: 1_000 });
    assert_eq!(
        p.status().pending_action,
        Some(1),
        "the pending rollback was replaced: {resumed:?}"
    );
}

/// An approval timeout with `on_timeout: continue` issues the next stage's action at
/// the same instant an analysis issued an automated rollback (tripping the breaker),
/// replacing the pending rollback.
#[test]
fn pinned_approval_timeout_does_not_replace_a_pending_rollback() {
    let config = r#"{"format_version": 1,
      "versions": [{"id": "v1", "digest": "d1", "validated": true}, {"id": "v2", "digest": "d2"}],
      "stable": "v1",
      "metrics": [{"name": "errors", "kind": "count", "window_ms": 1437, "buckets": 1}],
      "gates": [{"name": "error_rate", "metric": "errors", "stat": "rate", "on_no_data": "fail",
                 "rule": {"kind": "vs_baseline", "max_increase": 0.02},
                 "persistence": {"consecutive": 1}}],
      "strategy": {"kind": "blue_green", "shadow_ms": 1, "preview_ms": 1, "auto_promote": false},
      "analysis": {"interval_ms": 1437},
      "approval": {"timeout_ms": 1436, "on_timeout": "continue"},
      "safety": {"cooldown_ms": 0, "breaker": {"max_rollbacks": 1, "window_ms": 10000},
                 "ack_timeout_ms": 5460}}"#;
    let mut p = Policy::from_json(config, 0).unwrap();
    let start = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let id = start.decisions[0].action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap();
    // At 1437 the analysis trips the breaker (rollback, action 2) and the approval
    // pause (since 1, timeout 1436) times out with `continue`.
    let step = p.tick(1_437).unwrap();
    let actions: Vec<&Action> = step.actions().map(|d| &d.action).collect();
    assert!(p.status().breaker_open);
    assert_eq!(
        actions.len(),
        1,
        "only the breaker's rollback should be issued: {actions:?}"
    );
    assert_eq!(p.status().pending_action, Some(2));
}

/// An approval timeout with `on_timeout: continue` advances the rollout while automation
/// is halted, here after an operator's `revert_now` timed out: it routes 50 % of the
/// traffic to the candidate the operator wanted gone (and acking that action clears the
/// halt, dropping the revert's retry).
#[test]
fn pinned_approval_timeout_does_not_advance_while_halted() {
    let config = small_config(
        r#"[{"kind": "set_weight", "weight": 10, "duration_ms": 1000}, {"kind": "approval"},
            {"kind": "set_weight", "weight": 50}]"#,
        "[]",
        r#","approval": {"timeout_ms": 5000, "on_timeout": "continue"},
           "safety": {"ack_timeout_ms": 1000}"#,
    );
    let mut p = Policy::from_json(&config, 0).unwrap();
    let start = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let id = start.decisions[0].action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap();
    let _ = p.tick(1_000).unwrap(); // the approval pause starts, deadline 6000
    let _ = p
        .handle(&Input::RevertNow {
            at: 1_000,
            target: None,
            version: None,
        })
        .unwrap();
    let _ = p.tick(2_000).unwrap(); // the revert is not acknowledged: halted
    assert!(p.status().halted.is_some());
    let step = p.tick(6_000).unwrap();
    let actions: Vec<&Action> = step.actions().map(|d| &d.action).collect();
    assert!(
        actions.is_empty(),
        "automation acted while halted: {actions:?}"
    );
}
