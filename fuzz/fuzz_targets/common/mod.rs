//! Shared by the fuzz targets: a compact byte decoder that turns fuzzer bytes into
//! structurally valid calls of every entry point of a [`Policy`], a driver that applies
//! them and checks the invariants after each one, and a byte-driven mutator of JSON
//! documents (so that configs and snapshots can be fuzzed from a valid start, with no
//! seed corpus).
//!
//! Each target uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::hint::black_box;

use rollguard::{
    Decision, Error, EventKind, Input, Policy, Sample, Step, TIME_MAX, TargetKind, VersionSpec,
};
use serde_json::{Value, json};

/// Whether some object of `text` holds a key twice (false for text that is not JSON):
/// the core's own check.
pub fn has_repeated_key(text: &str) -> bool {
    rollguard::repeated_key(text).is_some()
}

/// The configs the stream targets drive, picked by the first byte.
pub const CONFIGS: [&str; 2] = [
    include_str!("../../configs/canary.json"),
    include_str!("../../configs/blue_green.json"),
];

/// Metric names of both configs, in order, plus one that does not exist.
const METRICS: [&str; 4] = ["latency_ms", "errors", "quality", "no_such_metric"];

/// A reader that never fails: past the end it yields zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// The time of the next input, relative to the policy's `now`. Mostly small steps
    /// forward (so that streams walk through stages), sometimes long ones, backwards
    /// ones, and times around the 2^53 − 1 ms limit.
    pub fn time(&mut self, now: u64) -> u64 {
        let b = self.u8();
        match b % 64 {
            0..=39 => now + u64::from(b / 64) * 250,
            40..=51 => now + u64::from(self.u16()),
            52..=55 => now + u64::from(self.u32()),
            56..=61 => now.saturating_sub(u64::from(self.u8()) + 1),
            62 => TIME_MAX - u64::from(self.u8()),
            _ => TIME_MAX + 1 + u64::from(self.u8()),
        }
    }

    /// A sample value: mostly plausible ones, then the awkward ones (non-finite,
    /// signed zero, subnormal, huge, not exactly representable), then any bit pattern.
    pub fn value(&mut self) -> f64 {
        const SPECIAL: [f64; 12] = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            5e-324,
            f64::MIN_POSITIVE,
            1e308,
            f64::MAX,
            -1e308,
            0.1 + 0.2,
            0.9 + 0.236,
        ];
        let b = self.u8();
        match b {
            0..=159 => 60.0 + f64::from(b) * 2.5,
            160..=199 => f64::from(self.u16()) / 64.0,
            200..=239 => SPECIAL[usize::from(b - 200) % SPECIAL.len()],
            _ => f64::from_bits(self.u64()),
        }
    }

    /// `events` out of `total`: mostly valid, sometimes negative or inconsistent.
    pub fn counts(&mut self) -> (i64, i64) {
        let b = self.u8();
        match b % 8 {
            0..=4 => {
                let total = i64::from(self.u8()) + 1;
                (i64::from(self.u8()) % (total + 1), total)
            }
            5 => (i64::from(self.u16()), i64::from(self.u16())),
            6 => (i64::MAX, i64::MAX),
            _ => (i64::from(self.u8() as i8), i64::from(self.u8() as i8)),
        }
    }

    /// A label: a short one, the empty one, or one over the configs' length limits.
    pub fn label(&mut self) -> String {
        match self.u8() % 8 {
            0 => String::new(),
            1 => "x".repeat(300),
            2 => "é".repeat(20),
            n => format!("l{n}"),
        }
    }
}

/// Resolves an arm selector against the policy: stable, candidate, previous, any
/// registered version, or something unregistered.
fn arm(p: &Policy, sel: u8) -> String {
    let status = p.status();
    let versions = p.versions();
    match sel % 8 {
        0..=2 => status.aliases.stable,
        3 | 4 => status.aliases.candidate.unwrap_or(status.aliases.stable),
        5 => status.aliases.previous.unwrap_or_else(|| "v1".into()),
        6 => versions[usize::from(sel / 8) % versions.len()].id.clone(),
        _ => "ghost".into(),
    }
}

fn version(p: &Policy, sel: u8) -> String {
    let versions = p.versions();
    if sel == 255 {
        return "ghost".into();
    }
    versions[usize::from(sel) % versions.len()].id.clone()
}

fn metric(sel: u8) -> &'static str {
    // The unknown metric only rarely.
    METRICS[if sel >= 250 { 3 } else { usize::from(sel) % 3 }]
}

/// A concrete call of one entry point.
#[derive(Debug, Clone)]
pub enum Call {
    Handle(Input),
    Observe(Sample),
    Batch(Vec<Sample>),
    Value(u64, String, String, f64),
    Count(u64, String, String, i64, i64),
    Tick(u64),
    /// A JSON text through `handle_json` (may not parse).
    Json(String),
    /// A value column through `observe_values`.
    Values(String, String, Vec<u64>, Vec<f64>),
    /// The same column with its times as JavaScript numbers, through
    /// `observe_values_f64` (the decoder adds fractions and NaN now and then).
    ValuesF64(String, String, Vec<f64>, Vec<f64>),
    /// A count column through `observe_counts` (and, compared, `observe_counts_f64`).
    Counts(String, String, Vec<u64>, Vec<i64>, Vec<i64>),
}

impl Call {
    pub fn apply(&self, p: &mut Policy) -> Result<Step, Error> {
        match self {
            Call::Handle(input) => p.handle(input),
            Call::Observe(s) => p.observe(s),
            Call::Batch(samples) => p.observe_batch(samples),
            Call::Value(at, arm, metric, v) => p.observe_value(*at, arm, metric, *v),
            Call::Count(at, arm, metric, e, t) => p.observe_count(*at, arm, metric, *e, *t),
            Call::Tick(at) => p.tick(*at),
            Call::Json(text) => p.handle_json(text),
            Call::Values(arm, metric, at, v) => p.observe_values(arm, metric, at, v),
            Call::ValuesF64(arm, metric, at, v) => p.observe_values_f64(arm, metric, at, v),
            Call::Counts(arm, metric, at, e, t) => p.observe_counts(arm, metric, at, e, t),
        }
    }

    /// The same samples one call per row, when this is a column call: the column must
    /// be accepted exactly when every row is, and then leave the same policy.
    pub fn rows(&self) -> Option<Vec<Call>> {
        let rows = match self {
            Call::Values(arm, metric, at, v) => at
                .iter()
                .zip(v)
                .map(|(t, x)| Call::Value(*t, arm.clone(), metric.clone(), *x))
                .collect(),
            Call::Counts(arm, metric, at, e, t) => at
                .iter()
                .zip(e.iter().zip(t))
                .map(|(at, (e, t))| Call::Count(*at, arm.clone(), metric.clone(), *e, *t))
                .collect(),
            _ => return None,
        };
        Some(rows)
    }
}

impl Call {
    /// The same call as canonical inputs: one per sample for the fast paths and the
    /// columns (a column row whose time is not a whole number is dropped, and a JSON
    /// text that does not parse gives nothing).
    pub fn inputs(&self) -> Vec<Input> {
        match self {
            Call::Handle(input) => vec![input.clone()],
            Call::Observe(s) => vec![Input::Observe(s.clone())],
            Call::Batch(samples) => vec![Input::ObserveBatch {
                samples: samples.clone(),
            }],
            Call::Value(at, arm, metric, v) => {
                vec![Input::Observe(Sample::value(*at, arm, metric, *v))]
            }
            Call::Count(at, arm, metric, e, t) => {
                vec![Input::Observe(Sample::count(*at, arm, metric, *e, *t))]
            }
            Call::Tick(at) => vec![Input::Tick { at: *at }],
            Call::Json(text) => Input::from_json(text).into_iter().collect(),
            Call::ValuesF64(arm, metric, at, v) => at
                .iter()
                .zip(v)
                .filter(|(t, _)| t.fract() == 0.0 && (0.0..=TIME_MAX as f64).contains(*t))
                .map(|(t, x)| Input::Observe(Sample::value(*t as u64, arm, metric, *x)))
                .collect(),
            Call::Values(..) | Call::Counts(..) => self
                .rows()
                .unwrap_or_default()
                .iter()
                .flat_map(Call::inputs)
                .collect(),
        }
    }
}

/// A column of up to 40 rows, times in order from `at` (sometimes one going back).
fn column(b: &mut Bytes<'_>, at: u64) -> (Vec<u64>, usize) {
    let n = usize::from(b.u8() % 41);
    let mut t = at;
    let at = (0..n)
        .map(|_| {
            t = match b.u8() {
                0 => t.saturating_sub(1),
                255 => TIME_MAX + 1,
                g => t.saturating_add(u64::from(g) * 8),
            };
            t
        })
        .collect();
    (at, n)
}

fn sample(b: &mut Bytes<'_>, p: &Policy, at: u64) -> Sample {
    let arm = arm(p, b.u8());
    let metric = metric(b.u8());
    let mut s = match b.u8() % 4 {
        // Mostly the field the metric expects; sometimes the other one (refused).
        0..=2 if metric == "errors" => {
            let (e, t) = b.counts();
            Sample::count(at, &arm, metric, e, t)
        }
        0..=2 => Sample::value(at, &arm, metric, b.value()),
        _ => {
            let (e, t) = b.counts();
            let mut s = Sample::count(at, &arm, metric, e, t);
            s.value = Some(b.value());
            s
        }
    };
    if b.u8().is_multiple_of(8) {
        s.tenant = Some(b.label());
        s.tier = Some(b.label());
        s.agent = Some(b.label());
    }
    s
}

/// Decodes the next call, against the policy's current state.
pub fn next_call(b: &mut Bytes<'_>, p: &Policy) -> Call {
    let now = p.now();
    let op = b.u8();
    let at = b.time(now);
    match op % 32 {
        // Samples, through every entry point.
        0..=3 => {
            let arm = arm(p, b.u8());
            Call::Value(at, arm, metric(b.u8()).into(), b.value())
        }
        // Columns.
        4 | 5 => {
            let arm = arm(p, b.u8());
            let metric = metric(b.u8()).to_string();
            let (times, n) = column(b, at);
            let values = (0..n).map(|_| b.value()).collect();
            if op % 32 == 4 {
                Call::Values(arm, metric, times, values)
            } else {
                let mut times: Vec<f64> = times.iter().map(|t| *t as f64).collect();
                if let Some(t) = times.get_mut(usize::from(b.u8())) {
                    *t = if b.u8().is_multiple_of(2) {
                        *t + 0.5
                    } else {
                        f64::NAN
                    };
                }
                Call::ValuesF64(arm, metric, times, values)
            }
        }
        8 if op % 64 >= 32 => {
            let arm = arm(p, b.u8());
            let (times, n) = column(b, at);
            let (events, totals) = (0..n).map(|_| b.counts()).unzip();
            Call::Counts(arm, "errors".into(), times, events, totals)
        }
        6..=8 => {
            let arm = arm(p, b.u8());
            let (e, t) = b.counts();
            let m = if b.u8() < 240 {
                "errors"
            } else {
                metric(b.u8())
            };
            Call::Count(at, arm, m.into(), e, t)
        }
        9 | 10 => Call::Observe(sample(b, p, at)),
        11 => Call::Handle(Input::Observe(sample(b, p, at))),
        12 | 13 => {
            // A batch in time order from `at` (the decoder may still put one sample
            // before the policy's time: then the whole batch is refused).
            let n = usize::from(b.u8() % 24);
            let mut t = at;
            let samples: Vec<Sample> = (0..n)
                .map(|_| {
                    t = t.saturating_add(u64::from(b.u8()) * 4);
                    sample(b, p, t)
                })
                .collect();
            if b.u8().is_multiple_of(2) {
                Call::Batch(samples)
            } else {
                Call::Handle(Input::ObserveBatch { samples })
            }
        }
        14..=16 => Call::Tick(at),
        17 => Call::Handle(Input::Tick { at }),
        // Acknowledge the pending action (most of the time its real id).
        18..=20 => {
            let pending = p.status().pending_action;
            let id = match (pending, b.u8() % 8) {
                (Some(id), 0..=6) => id,
                (Some(id), _) => id.wrapping_add(1),
                (None, n) => u64::from(n),
            };
            Call::Handle(Input::Ack { at, action_id: id })
        }
        21 => Call::Handle(Input::ActionFailed {
            at,
            action_id: p.status().pending_action.unwrap_or(0),
            reason: b.label(),
        }),
        22 => Call::Handle(Input::Pause { at }),
        23 => Call::Handle(Input::Resume { at }),
        24 => Call::Handle(Input::Abort { at }),
        25 => {
            let target = match b.u8() % 6 {
                0 => None,
                1 => Some(TargetKind::Stable),
                2 => Some(TargetKind::Previous),
                3 => Some(TargetKind::Golden),
                _ => Some(TargetKind::Version),
            };
            let v = b.u8();
            let version = (!v.is_multiple_of(4)).then(|| version(p, v));
            Call::Handle(Input::RevertNow {
                at,
                target,
                version,
            })
        }
        26 => Call::Handle(Input::ForcePromote { at }),
        27 => Call::Handle(Input::MarkValidated {
            at,
            version: version(p, b.u8()),
        }),
        28 => Call::Handle(Input::ClearBreaker { at }),
        29 => Call::Handle(Input::StartRollout {
            at,
            version: version(p, b.u8()),
        }),
        30 => {
            let k = b.u8();
            let id = if k.is_multiple_of(16) {
                b.label()
            } else {
                format!("n{}", k % 32)
            };
            let digest = if k % 16 == 1 {
                "other".into()
            } else {
                format!("sha256:{id}")
            };
            let mut components = BTreeMap::new();
            for i in 0..(b.u8() % 4) {
                components.insert(format!("c{i}"), b.label());
            }
            Call::Handle(Input::RegisterVersion {
                at,
                version: VersionSpec {
                    id,
                    digest,
                    components,
                    validated: b.u8().is_multiple_of(2),
                },
            })
        }
        // Through the JSON entry point: a valid input, or the text cut short.
        _ => {
            let input = match b.u8() % 4 {
                0 => Input::Tick { at },
                1 => Input::Observe(sample(b, p, at)),
                2 => Input::Ack {
                    at,
                    action_id: p.status().pending_action.unwrap_or(1),
                },
                // A side effect of a live version (or of another), ids from a small set
                // so that duplicates and the `effects_max` limit are reached.
                _ => {
                    let mut undo = serde_json::Map::new();
                    undo.insert("op".into(), b.label().into());
                    Input::RecordEffect {
                        at,
                        version: version(p, b.u8()),
                        effect: rollguard::EffectSpec {
                            id: format!("e{}", b.u8() % 16),
                            undo,
                        },
                    }
                }
            };
            let mut text = serde_json::to_string(&input).unwrap_or_default();
            let cut = usize::from(b.u8());
            if cut < text.len() && text.is_char_boundary(cut) && b.u8().is_multiple_of(4) {
                text.truncate(cut);
            }
            Call::Json(text)
        }
    }
}

/// Applies calls and checks, after each, what must hold whatever the input:
///
/// - a refused call leaves the policy exactly as it was;
/// - an accepted call moves the policy's time to the call's time, and its step's
///   decisions and events are dated between the previous time and that time;
/// - `next_deadline()` is not before the policy's time, is representable, and one tick
///   moves it past the policy's time, so the run loop (`tick(next_deadline)`) always
///   makes progress;
/// - the ack protocol: a new action is issued only when none is pending or the pending
///   one was resolved (acknowledged, failed, timed out) in the same step; ids grow.
pub struct Driver {
    pub policy: Policy,
    last_action_id: u64,
}

impl Driver {
    pub fn new(policy: Policy) -> Self {
        let last_action_id = policy.status().pending_action.unwrap_or(0);
        Self {
            policy,
            last_action_id,
        }
    }

    /// Applies one call and checks it; see [`Driver::apply_traced`].
    pub fn apply(&mut self, call: &Call) {
        let _ = black_box(self.apply_traced(call));
    }

    /// Applies one call, checks everything listed on [`Driver`], and returns what the
    /// call returned.
    pub fn apply_traced(&mut self, call: &Call) -> Result<Step, Error> {
        let before = self.policy.clone();
        let result = call.apply(&mut self.policy);
        if let Some(rows) = call.rows() {
            // Row by row on a copy: all accepted exactly when the column is, with the
            // same policy after (the column's atomicity is checked below as for any call).
            let mut one = before.clone();
            let all = rows.iter().all(|r| r.apply(&mut one).is_ok());
            assert_eq!(
                all,
                result.is_ok(),
                "column and rows disagree: {call:?} {result:?}"
            );
            if all {
                assert!(
                    one == self.policy,
                    "column and rows leave different policies: {call:?}"
                );
            }
        }
        if let Call::Json(text) = call {
            same_parse(text, Input::from_json, Input::from_value);
        }
        if let Call::Counts(arm, metric, at, e, n) = call {
            // The same column as JavaScript numbers makes the same policy.
            let exact = at.iter().all(|t| *t <= 1 << 53)
                && e.iter().chain(n).all(|c| c.unsigned_abs() <= 1 << 53);
            let f = |xs: &[i64]| xs.iter().map(|x| *x as f64).collect::<Vec<_>>();
            let at: Vec<f64> = at.iter().map(|t| *t as f64).collect();
            let mut numbers = before.clone();
            let r = numbers.observe_counts_f64(arm, metric, &at, &f(e), &f(n));
            if exact {
                assert_eq!(r.is_ok(), result.is_ok(), "f64 counts disagree: {call:?}");
                assert!(numbers == self.policy, "f64 counts differ: {call:?}");
            }
        }
        if let Call::Values(arm, metric, at, v) = call {
            // The same column with its times as numbers makes the same policy.
            let mut numbers = before.clone();
            let exact = at.iter().all(|t| *t <= 1 << 53); // each an exact double
            let at: Vec<f64> = at.iter().map(|t| *t as f64).collect();
            let r = numbers.observe_values_f64(arm, metric, &at, v);
            if exact {
                assert_eq!(r.is_ok(), result.is_ok(), "f64 times disagree: {call:?}");
                assert!(numbers == self.policy, "f64 times differ: {call:?}");
            }
        }
        match &result {
            Err(e) => {
                assert!(
                    self.policy == before,
                    "refused with {e} but the policy changed: {call:?}"
                );
            }
            Ok(step) => self.check_step(&before, call, step),
        }
        result
    }

    fn check_step(&mut self, before: &Policy, call: &Call, step: &Step) {
        let p = &self.policy;
        let now = p.now();
        assert_eq!(
            step.at, now,
            "the step's time is not the policy's: {call:?}"
        );
        assert!(now >= before.now(), "time went backwards: {call:?}");
        for t in step
            .decisions
            .iter()
            .map(|d| d.at)
            .chain(step.events.iter().map(|e| e.at))
        {
            assert!(
                (before.now()..=now).contains(&t),
                "an output dated {t} outside {}..={now}: {call:?}",
                before.now()
            );
        }
        if let Some(d) = p.next_deadline() {
            assert!(d >= now, "next_deadline {d} is before now {now}: {call:?}");
            assert!(
                d <= TIME_MAX,
                "next_deadline {d} cannot be ticked: {call:?}"
            );
            if d == now {
                // Legitimate only after an input that fires no timers (an empty batch):
                // then one tick at `now` must move the deadline on, or the caller's
                // loop `tick(next_deadline)` would spin.
                let mut q = p.clone();
                let _ = black_box(q.tick(now));
                assert!(
                    q.next_deadline().is_none_or(|d| d > now),
                    "tick({now}) leaves next_deadline at {now}: the run loop spins ({call:?})"
                );
            }
        }
        self.check_actions(before, step);
    }

    fn check_actions(&mut self, before: &Policy, step: &Step) {
        let resolved: Vec<u64> = step
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::ActionAcknowledged { action_id }
                | EventKind::ActionFailed { action_id, .. }
                | EventKind::AckTimedOut { action_id } => Some(action_id),
                _ => None,
            })
            .collect();
        let mut open = before.status().pending_action;
        let issued: Vec<&Decision> = step.actions().collect();
        for d in issued {
            let id = d.action_id.unwrap_or_default();
            if let Some(prev) = open {
                assert!(
                    resolved.contains(&prev),
                    "action {id} issued while action {prev} is pending: {d:?}"
                );
            }
            assert!(id > self.last_action_id, "action id {id} reused");
            self.last_action_id = id;
            open = Some(id);
        }
        let want = open.filter(|id| !resolved.contains(id));
        assert_eq!(self.policy.status().pending_action, want);
    }

    /// The run loop: tick at every deadline up to `until`, at most `max` times.
    pub fn run_loop(&mut self, until: u64, max: usize) {
        for _ in 0..max {
            match self.policy.next_deadline() {
                Some(d) if d <= until => self.apply(&Call::Tick(d)),
                _ => break,
            }
        }
    }
}

// ------------------------------------------------------------------ JSON mutation

/// Values a mutation can put anywhere in a document.
fn replacement(b: &mut Bytes<'_>) -> Value {
    match b.u8() % 24 {
        0 => json!(0),
        1 => json!(1),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(TIME_MAX),
        5 => json!(TIME_MAX + 1),
        6 => json!(u32::MAX),
        7 => json!(1e308),
        8 => json!(-0.0),
        9 => json!(0.5),
        10 => json!(""),
        11 => json!("x".repeat(5000)),
        12 => Value::Null,
        13 => json!(true),
        14 => json!([]),
        15 => json!({}),
        16 => json!("v1"),
        17 => json!("v2"),
        18 => json!(i64::MIN),
        19 => json!(1025),
        20 => json!(b.u8()),
        21 => json!(b.u16()),
        22 => json!(b.u64()),
        _ => json!(f64::from(b.u16()) / 7.0),
    }
}

/// Every path (as a list of keys and indexes) in `v`, containers included.
pub fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(json!(k));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(json!(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'v>(v: &'v mut Value, path: &[Value]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, k| match k {
        Value::String(k) => v.get_mut(k.as_str()),
        Value::Number(i) => v.get_mut(i.as_u64()? as usize),
        _ => None,
    })
}

/// Applies up to 8 byte-driven mutations to a JSON document: replace a node, delete a
/// key or an array element, duplicate an array element, or nudge a number by ±1.
pub fn mutate(doc: &mut Value, b: &mut Bytes<'_>) {
    for _ in 0..(b.u8() % 8) {
        if b.is_empty() {
            break;
        }
        let mut all = Vec::new();
        paths(doc, &mut Vec::new(), &mut all);
        let path = all[usize::from(b.u16()) % all.len()].clone();
        let op = b.u8() % 6;
        match op {
            0 | 1 => {
                let new = replacement(b);
                if let Some(node) = at_path(doc, &path) {
                    *node = new;
                }
            }
            2 | 3 => {
                let Some((last, parent)) = path.split_last() else {
                    continue;
                };
                let Some(parent) = at_path(doc, parent) else {
                    continue;
                };
                match (parent, last) {
                    (Value::Object(map), Value::String(k)) if op == 2 => {
                        map.remove(k);
                    }
                    (Value::Array(items), Value::Number(i)) => {
                        let i = i.as_u64().unwrap_or(0) as usize;
                        if op == 2 && i < items.len() {
                            items.remove(i);
                        } else if let Some(item) = items.get(i).cloned() {
                            items.insert(i, item);
                        }
                    }
                    _ => {}
                }
            }
            _ => {
                if let Some(node) = at_path(doc, &path) {
                    if let Some(n) = node.as_u64() {
                        *node = json!(if op == 4 {
                            n.wrapping_add(1)
                        } else {
                            n.wrapping_sub(1)
                        });
                    } else if let Some(x) = node.as_f64() {
                        *node = json!(if op == 4 { x * 2.0 } else { -x });
                    }
                }
            }
        }
    }
}

/// A number for a number node: near the old one, a boundary of the integer types or
/// of time, or one found elsewhere in the document (ids, times and counts refer to
/// each other).
fn number_like(old: &Value, found: &[Value], b: &mut Bytes<'_>) -> Value {
    let n = old.as_u64();
    let x = old.as_f64().unwrap_or(0.0);
    match b.u8() % 16 {
        0 => json!(n.map_or(x + 1.0, |n| n.saturating_add(1) as f64)),
        1 => n.map_or_else(|| json!(x - 1.0), |n| json!(n.wrapping_sub(1))),
        2 => n.map_or_else(|| json!(x * 2.0), |n| json!(n.saturating_mul(2))),
        3 => n.map_or_else(
            || json!(-x),
            |n| json!(n.saturating_add(u64::from(b.u16()))),
        ),
        4 => json!(0),
        5 => json!(u64::MAX),
        6 => json!(u64::MAX - 1),
        7 => json!(i64::MAX),
        8 => json!(TIME_MAX),
        9 => json!(TIME_MAX + 1),
        10 => json!(u32::MAX),
        11 => json!(-1),
        12 => json!([1e308, -1e308, -0.0, 0.5, 5e-324][usize::from(b.u8()) % 5]),
        _ => {
            let numbers: Vec<&Value> = found.iter().filter(|v| v.is_number()).collect();
            if numbers.is_empty() {
                json!(1)
            } else {
                numbers[usize::from(b.u16()) % numbers.len()].clone()
            }
        }
    }
}

/// A string for a string node: another string of the document (version ids, arm and
/// metric names refer to each other), or an unknown, empty or long one.
fn string_like(found: &[Value], b: &mut Bytes<'_>) -> Value {
    match b.u8() % 8 {
        0 => json!(""),
        1 => json!("ghost"),
        2 => json!("x".repeat(300)),
        _ => {
            let strings: Vec<&Value> = found.iter().filter(|v| v.is_string()).collect();
            if strings.is_empty() {
                json!("v1")
            } else {
                strings[usize::from(b.u16()) % strings.len()].clone()
            }
        }
    }
}

/// Applies 1 to 8 structure-aware mutations to a JSON document, mostly under the key
/// `focus` when there is one (a snapshot's `state`): a number becomes a nearby,
/// boundary or cross-referenced number; a string another string of the document; a
/// boolean flips; a `null` takes a value of another node; an array loses, duplicates,
/// swaps or empties elements; an object loses a key, gains an unknown one, or a member
/// takes a copy of another node of the same JSON type.
pub fn perturb(doc: &mut Value, focus: &str, b: &mut Bytes<'_>) {
    for _ in 0..=(b.u8() % 8) {
        if b.is_empty() {
            break;
        }
        let mut all = Vec::new();
        paths(doc, &mut Vec::new(), &mut all);
        let focused: Vec<Vec<Value>> = all
            .iter()
            .filter(|p| p.first().and_then(Value::as_str) == Some(focus))
            .cloned()
            .collect();
        let pool = if !focused.is_empty() && !b.u8().is_multiple_of(4) {
            &focused
        } else {
            &all
        };
        let path = pool[usize::from(b.u16()) % pool.len()].clone();
        let leaves: Vec<Value> = all
            .iter()
            .filter_map(|p| at_path(doc, p).map(|v| v.clone()))
            .filter(|v| v.is_number() || v.is_string())
            .collect();
        let twin = {
            let p = &all[usize::from(b.u16()) % all.len()];
            at_path(doc, p).map(|v| v.clone()).unwrap_or(Value::Null)
        };
        let op = b.u8();
        let Some(node) = at_path(doc, &path) else {
            continue;
        };
        match node {
            Value::Number(_) => *node = number_like(node, &leaves, b),
            Value::String(_) => *node = string_like(&leaves, b),
            Value::Bool(x) => *x = !*x,
            Value::Null => *node = twin,
            Value::Array(items) if !items.is_empty() => {
                let i = usize::from(op / 8) % items.len();
                let j = usize::from(b.u8()) % items.len();
                match op % 8 {
                    0 | 1 => {
                        items.remove(i);
                    }
                    2 | 3 => items.insert(i, items[i].clone()),
                    4 => items.swap(i, j),
                    5 => items.clear(),
                    6 => items.truncate(i),
                    _ => {
                        if std::mem::discriminant(&items[i]) == std::mem::discriminant(&twin) {
                            items[i] = twin;
                        }
                    }
                }
            }
            Value::Array(items) => {
                if twin.is_object() || twin.is_number() || twin.is_string() {
                    items.push(twin);
                }
            }
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(usize::from(op / 4) % map.len()).cloned();
                let key = key.unwrap_or_default();
                match op % 4 {
                    0 => {
                        map.remove(&key);
                    }
                    1 => {
                        map.insert("unknown_field".into(), json!(0));
                    }
                    _ => {
                        if let Some(v) = map.get_mut(&key)
                            && std::mem::discriminant(v) == std::mem::discriminant(&twin)
                        {
                            *v = twin;
                        }
                    }
                }
            }
            Value::Object(map) => {
                map.insert("unknown_field".into(), twin);
            }
        }
    }
}

/// A document parsed from text (serde_json alone, the path tracked only on failure) and
/// from its `serde_json::Value` (the path always tracked, as for a binding's objects)
/// gives the same result, or the same error code; and the same path as the text of
/// that value (its keys in sorted order).
///
/// Not the path of the original text: with two bad fields, text reports the first in
/// document order and a value the first in key order (reported to the lead; the input
/// is `regressions/config/text-and-value-name-different-first-errors`). Comparing them
/// would stop every campaign on the first document with two errors.
pub fn same_parse<T: PartialEq + std::fmt::Debug>(
    text: &str,
    from_json: impl Fn(&str) -> Result<T, Error>,
    from_value: impl Fn(Value) -> Result<T, Error>,
) {
    // The core refuses a repeated key in text (`duplicate_key`, or the first error met
    // before it); the text's Value kept only the last one, so it is another document.
    if has_repeated_key(text) {
        assert!(
            from_json(text).is_err(),
            "a repeated key was accepted: {text}"
        );
        return;
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let sorted = value.to_string();
    match (from_json(text), from_value(value)) {
        (Ok(a), Ok(b)) => assert!(a == b, "text and value parse differently: {text}"),
        (Err(a), Err(b)) => {
            assert_eq!(a.code, b.code, "text and value refuse differently: {text}");
            let c = from_json(&sorted).err().map(|c| (c.code, c.path));
            assert_eq!(
                c,
                Some((b.code, b.path)),
                "text in key order and value refuse differently: {sorted}"
            );
        }
        (a, b) => panic!("text {:?} but value {:?}: {text}", a.is_ok(), b.is_ok()),
    }
}

// ------------------------------------------------------------------ whole-state checks

/// What every policy, however it was reached, must satisfy: it passes
/// [`Policy::validate`], and its snapshot survives the JSON text (as a `Snapshot` and
/// as a policy) and restores to an equal policy.
///
/// `what` names the policy in the panic message.
pub fn assert_round_trip(p: &Policy, what: &str) {
    if let Err(e) = p.validate() {
        panic!("{what} fails validate: {e}");
    }
    let snapshot = p.snapshot();
    let text = snapshot.to_json();
    let parsed = rollguard::Snapshot::from_json(&text)
        .unwrap_or_else(|e| panic!("the snapshot of {what} does not parse: {e}\n{text}"));
    assert!(
        parsed == snapshot,
        "the snapshot of {what} changes through JSON"
    );
    let q = Policy::restore_json(&text)
        .unwrap_or_else(|e| panic!("the snapshot of {what} is refused: {e}\n{text}"));
    assert!(
        &q == p,
        "the snapshot of {what} restores to another policy\n{text}"
    );
}

/// Traffic assignment on the policy as it stands, with keys and times read from `seed`
/// (fuzzer bytes that are not consumed, so that adding the check did not change how the
/// committed corpus decodes) and the edges of the rollout's weight history. What must
/// hold, whatever the state:
///
/// - nothing panics; every weight is at most 10 000 bp; the routing table's history is
///   in time order and not in the future, and outside a split its weight is 0;
/// - `assign(key)`'s arm is the pure function of its salt and weight (weight 0: stable),
///   its version and reason follow the arm (the candidate's version iff the candidate),
///   it is never pinned, and the routing table answers the same;
/// - `assign_session` refuses exactly a start after `now` or a time from 2^53 ms, and
///   otherwise answers as the routing table does; a pin only holds a session back (its
///   weight is at most the plain one, and a session on the candidate is there unpinned
///   too); an expired session is the plain answer; a session asked at its own start, at
///   or after the policy's time, is the plain answer, pinned iff pinning is on and the
///   rollout splits traffic.
pub fn check_assignment(p: &Policy, seed: &[u8]) {
    use rollguard::{Arm, AssignReason, RoutingMode, WEIGHT_BP_MAX, assign};
    let table = p.routing_table();
    let now = p.now();
    let split = table.mode == RoutingMode::Split;
    assert!(table.weight_bp <= WEIGHT_BP_MAX, "{table:?}");
    assert!(split || table.weight_bp == 0, "{table:?}");
    assert!(
        table.weights.windows(2).all(|w| w[0].at <= w[1].at)
            && table
                .weights
                .iter()
                .all(|w| w.at <= now && w.weight_bp <= WEIGHT_BP_MAX),
        "history out of order or in the future at {now}: {table:?}"
    );
    let word = |i: usize| {
        let mut b = [0u8; 8];
        for (j, x) in b.iter_mut().enumerate() {
            *x = seed.get(1 + i * 8 + j).copied().unwrap_or(0);
        }
        u64::from_le_bytes(b)
    };
    let n = usize::from(seed.first().copied().unwrap_or(0) % 24).min(seed.len().saturating_sub(1));
    let keys: [&[u8]; 3] = [seed.get(1..1 + n).unwrap_or_default(), b"", b"user-42"];
    let pin = table.pin_max_ms;
    let mut starts = vec![
        0,
        now,
        now.saturating_sub(word(0) % (1 << 24)),
        word(1),
        word(2) % (TIME_MAX + 2),
        TIME_MAX,
    ];
    for w in &table.weights {
        starts.extend([w.at.saturating_sub(1), w.at, w.at + 1]);
    }
    for key in keys {
        let a = p.assign(key);
        assert!(a.weight_bp <= WEIGHT_BP_MAX && !a.pinned, "{a:?}");
        assert_eq!(a.salt, table.salt);
        assert_eq!(
            a.arm,
            assign(a.salt.unwrap_or_default(), key, a.weight_bp).expect("a weight in range"),
            "{a:?}"
        );
        assert!(a.weight_bp > 0 || a.arm == Arm::Stable, "{a:?}");
        match a.arm {
            Arm::Candidate => {
                assert_eq!(a.reason, AssignReason::Candidate);
                assert_eq!(Some(&a.version), table.candidate.as_ref());
            }
            Arm::Stable => {
                assert_ne!(a.reason, AssignReason::Candidate);
                assert_eq!(a.version, table.stable);
            }
        }
        assert_eq!(table.assign(key), a);
        for &started in &starts {
            for asked in [
                started,
                started.saturating_add(pin.saturating_sub(1)),
                started.saturating_add(pin),
                started.saturating_add(word(3) % (1 << 32)),
                now,
                started.wrapping_sub(1),
            ] {
                let s = p.assign_session(key, started, asked);
                assert_eq!(s, table.assign_session(key, started, asked));
                let refused = started > asked || started > TIME_MAX || asked > TIME_MAX;
                let Ok(s) = s else {
                    assert!(refused, "{started} {asked}: {s:?}");
                    continue;
                };
                assert!(!refused, "{started} {asked} accepted: {s:?}");
                assert!(
                    s.weight_bp <= a.weight_bp,
                    "a pin raised the weight: {s:?} {a:?}"
                );
                assert!(
                    s.arm == Arm::Stable || a.arm == Arm::Candidate,
                    "{s:?} {a:?}"
                );
                assert!(!s.pinned || split, "pinned outside a split: {s:?}");
                if asked - started >= pin {
                    assert_eq!(s, a, "an expired session is the plain answer");
                }
                if started == asked && started >= now {
                    let mut plain = a.clone();
                    plain.pinned = pin > 0 && split;
                    assert_eq!(
                        s, plain,
                        "a session asked at its start ({started}, now {now})"
                    );
                }
            }
        }
    }
}
