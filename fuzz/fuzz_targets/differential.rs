//! One config and one input sequence, run several ways that must agree:
//!
//! - **reference**: every input through `handle`, one by one (the driver checks the
//!   invariants after each, and `common::check_assignment` queries `assign`,
//!   `assign_session` and the routing table);
//! - **text and restarts**: every input through `handle_json` (when its JSON text
//!   parses back to the same input), and at points picked by the bytes the policy is
//!   replaced by the restore of its own snapshot: the same trace and the same policy;
//! - **refused ≡ absent**: only the inputs the reference accepted: the same steps and
//!   the same policy;
//! - **rows ≡ batch ≡ columns**: each batch's samples, and runs of single samples
//!   (lengths picked by the bytes), one by one, as one `observe_batch`, and, when they
//!   share an arm and a metric, as the columns `observe_values`/`observe_values_f64` or
//!   `observe_counts`/`observe_counts_f64`: all accepted exactly when every row is,
//!   with the rows' decisions and events and the same policy after; a refusal names
//!   the first refused row's code and leaves the policy as it was.
//!
//! The scenario comes from the bytes in two ways. Mode byte ≡ 0 (mod 4): 8 control
//! bytes, then a JSON scenario `{"config": …, "start": …, "inputs": […]}` (the seed
//! corpus holds the conformance vectors in this form, and the dictionary its
//! keywords). Otherwise: a fixed config, mutated now and then, and a stream of calls
//! decoded as the `inputs` target decodes them.
#![no_main]

mod common;

use std::hint::black_box;

use common::{
    Bytes, CONFIGS, Call, Driver, assert_round_trip, check_assignment, mutate, next_call,
};
use libfuzzer_sys::fuzz_target;
use rollguard::{Error, Input, Policy, Sample, Step};
use serde_json::Value;

/// At most this many inputs per scenario, so that one run stays fast.
const INPUTS_MAX: usize = 256;

/// A scenario: a policy at its start and the inputs to apply.
struct Scenario {
    policy: Policy,
    inputs: Vec<Input>,
}

/// The scenario of a JSON document, if it has a valid config.
fn from_json(text: &[u8]) -> Option<Scenario> {
    let doc: Value = serde_json::from_slice(text).ok()?;
    let config = doc.get("config")?.to_string();
    let start = doc.get("start").and_then(Value::as_u64).unwrap_or(0);
    let policy = Policy::from_json(&config, start).ok()?;
    let inputs = doc
        .get("inputs")?
        .as_array()?
        .iter()
        .filter_map(|v| Input::from_value(v.clone()).ok())
        .take(INPUTS_MAX)
        .collect();
    Some(Scenario { policy, inputs })
}

/// The scenario decoded from the bytes: a fixed config (mutated when `mutated`), and
/// calls decoded against a scratch policy that takes them as they come.
fn from_bytes(b: &mut Bytes<'_>, mode: u8) -> Option<Scenario> {
    let config = CONFIGS[usize::from(mode / 4) % CONFIGS.len()];
    let config = if mode % 4 == 3 {
        let mut doc: Value = serde_json::from_str(config).expect("fixed config");
        mutate(&mut doc, b);
        doc.to_string()
    } else {
        config.to_string()
    };
    let policy = Policy::from_json(&config, 0).ok()?;
    let mut scratch = policy.clone();
    let mut inputs = Vec::new();
    while !b.is_empty() && inputs.len() < INPUTS_MAX {
        let call: Call = next_call(b, &scratch);
        black_box(call.apply(&mut scratch).ok());
        inputs.extend(call.inputs());
    }
    Some(Scenario { policy, inputs })
}

/// The bits that pick where to restart and how to cut runs of samples.
struct Control(u64);

impl Control {
    fn bit(&self, i: usize) -> bool {
        self.0 >> (i % 64) & 1 == 1
    }

    /// The length of the run of samples that starts at input `i`: 1 to 8.
    fn run(&self, i: usize) -> usize {
        1 + (self.0.rotate_right((i % 64) as u32) & 7) as usize
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let control = Control(b.u64());
    let scenario = if mode.is_multiple_of(4) {
        from_json(b.rest())
    } else {
        from_bytes(&mut b, mode)
    };
    let Some(Scenario { policy, inputs }) = scenario else {
        return;
    };

    // Reference: one by one through `handle`, with assignment queries after each
    // input (keys and times from the bytes; the scenarios of the
    // corpus reach canary stages with acknowledged weights, which the `inputs` target's
    // short random streams seldom do).
    let mut reference = Driver::new(policy.clone());
    let trace: Vec<Result<Step, Error>> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let r = reference.apply_traced(&Call::Handle(input.clone()));
            check_assignment(
                &reference.policy,
                data.get(1 + i % 64..).unwrap_or_default(),
            );
            r
        })
        .collect();
    assert_round_trip(&reference.policy, "the reference run");

    text_and_restarts(&policy, &inputs, &trace, &reference.policy, &control);
    refused_is_absent(&policy, &inputs, &trace, &reference.policy);
    rows_batch_columns(policy, &inputs, &control);
});

/// Through `handle_json`, replacing the policy by its restored snapshot at the
/// control's points: the reference trace and policy.
fn text_and_restarts(
    start: &Policy,
    inputs: &[Input],
    trace: &[Result<Step, Error>],
    end: &Policy,
    control: &Control,
) {
    let mut p = start.clone();
    for (i, (input, want)) in inputs.iter().zip(trace).enumerate() {
        let restarted = control.bit(i);
        if restarted {
            let text = p.snapshot().to_json();
            let q = Policy::restore_json(&text)
                .unwrap_or_else(|e| panic!("snapshot before input {i} refused: {e}"));
            assert!(
                q == p,
                "snapshot before input {i} restores to another policy"
            );
            p = q;
        }
        let text = serde_json::to_string(input).expect("inputs serialize");
        let got = if Input::from_json(&text).is_ok_and(|back| &back == input) {
            p.handle_json(&text)
        } else {
            p.handle(input)
        };
        assert!(
            same_result(&got, want),
            "input {i} (restarted before: {restarted}) gives {got:?}, the reference {want:?}: {input:?}"
        );
    }
    assert!(&p == end, "text and restarts end in another policy");
}

/// Only the inputs the reference accepted: the same steps, the same policy.
fn refused_is_absent(
    start: &Policy,
    inputs: &[Input],
    trace: &[Result<Step, Error>],
    end: &Policy,
) {
    let mut p = start.clone();
    for (i, (input, want)) in inputs.iter().zip(trace).enumerate() {
        let Ok(want) = want else { continue };
        let got = p.handle(input);
        assert!(
            got.as_ref() == Ok(want),
            "input {i} without the refused ones gives {got:?}, with them {want:?}: {input:?}"
        );
    }
    assert!(
        &p == end,
        "a run without the refused inputs ends in another policy"
    );
}

/// Equal results: the same step, or the same error code and path.
fn same_result(a: &Result<Step, Error>, b: &Result<Step, Error>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => (a.code, &a.path) == (b.code, &b.path),
        _ => false,
    }
}

/// Runs of samples (each batch, and runs of single samples) one by one, as a batch and
/// as columns; other inputs as they are.
fn rows_batch_columns(mut p: Policy, inputs: &[Input], control: &Control) {
    let mut i = 0;
    while i < inputs.len() {
        let run: Vec<Sample> = match &inputs[i] {
            Input::ObserveBatch { samples } if !samples.is_empty() => {
                i += 1;
                samples.clone()
            }
            _ => {
                let run: Vec<Sample> = inputs[i..]
                    .iter()
                    .take(control.run(i))
                    .map_while(|input| match input {
                        Input::Observe(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                if run.is_empty() {
                    black_box(p.handle(&inputs[i]).ok());
                    i += 1;
                    continue;
                }
                i += run.len();
                run
            }
        };
        let rows = rows(&p, &run);
        check_batch(&p, &run, &rows);
        check_columns(&p, &run, &rows);
        // Go on with the batch (the rows' policy when all are accepted).
        black_box(p.observe_batch(&run).ok());
    }
}

/// What the rows do one by one: the first refusal (with its row), or the step that
/// joins their steps, and the policy after.
struct Rows {
    result: Result<Step, (usize, Error)>,
    after: Policy,
}

fn rows(p: &Policy, run: &[Sample]) -> Rows {
    let mut after = p.clone();
    let mut joined = Step {
        at: p.now(),
        ..Step::default()
    };
    for (k, s) in run.iter().enumerate() {
        match after.observe(s) {
            Ok(step) => {
                joined.at = step.at;
                joined.decisions.extend(step.decisions);
                joined.events.extend(step.events);
            }
            Err(e) => {
                return Rows {
                    result: Err((k, e)),
                    after,
                };
            }
        }
    }
    Rows {
        result: Ok(joined),
        after,
    }
}

fn check_batch(p: &Policy, run: &[Sample], rows: &Rows) {
    let mut q = p.clone();
    let got = q.observe_batch(run);
    match (&got, &rows.result) {
        (Ok(step), Ok(want)) => {
            assert!(step == want, "batch and rows step differently: {run:?}");
            assert!(
                q == rows.after,
                "batch and rows leave different policies: {run:?}"
            );
        }
        (Err(e), Err((k, want))) => {
            assert_eq!(
                e.code, want.code,
                "batch and rows refuse differently: {run:?}"
            );
            let prefix = format!("samples[{k}]");
            assert!(
                e.path.starts_with(&prefix),
                "batch refusal at {:?}, rows at {k}: {run:?}",
                e.path
            );
            assert!(&q == p, "a refused batch changed the policy: {run:?}");
        }
        _ => panic!(
            "batch {:?} but rows {:?}: {run:?}",
            got.is_ok(),
            rows.result.is_ok()
        ),
    }
}

/// A column result against the rows'.
fn check_column(name: &str, p: &Policy, q: &Policy, got: &Result<Step, Error>, rows: &Rows) {
    match (got, &rows.result) {
        (Ok(step), Ok(want)) => {
            assert!(
                step.decisions == want.decisions && step.events == want.events,
                "{name} and rows output differently"
            );
            assert!(step.at == q.now(), "{name} step not at the policy's time");
            assert!(*q == rows.after, "{name} and rows leave different policies");
        }
        (Err(e), Err((_, want))) => {
            assert_eq!(e.code, want.code, "{name} and rows refuse differently");
            assert!(q == p, "a refused {name} changed the policy");
        }
        _ => panic!(
            "{name} {:?} but rows {:?}",
            got.is_ok(),
            rows.result.is_ok()
        ),
    }
}

fn check_columns(p: &Policy, run: &[Sample], rows: &Rows) {
    let first = &run[0];
    let plain = |s: &Sample| {
        s.arm == first.arm
            && s.metric == first.metric
            && s.tenant.is_none()
            && s.tier.is_none()
            && s.agent.is_none()
    };
    if !run.iter().all(plain) {
        return;
    }
    let at: Vec<u64> = run.iter().map(|s| s.at).collect();
    let at_f64: Vec<f64> = at.iter().map(|t| *t as f64).collect();
    let exact = at.iter().all(|t| *t <= 1 << 53);
    let (arm, metric) = (first.arm.as_str(), first.metric.as_str());
    let values: Option<Vec<f64>> = run
        .iter()
        .map(|s| match (s.value, s.events, s.total) {
            (Some(v), None, None) => Some(v),
            _ => None,
        })
        .collect();
    if let Some(values) = values {
        let mut q = p.clone();
        let got = q.observe_values(arm, metric, &at, &values);
        check_column("observe_values", p, &q, &got, rows);
        if exact {
            let mut q = p.clone();
            let got = q.observe_values_f64(arm, metric, &at_f64, &values);
            check_column("observe_values_f64", p, &q, &got, rows);
        }
        return;
    }
    let counts: Option<Vec<(i64, i64)>> = run
        .iter()
        .map(|s| match (s.value, s.events, s.total) {
            (None, Some(e), Some(t)) => Some((e, t)),
            _ => None,
        })
        .collect();
    if let Some(counts) = counts {
        let (events, totals): (Vec<i64>, Vec<i64>) = counts.into_iter().unzip();
        let mut q = p.clone();
        let got = q.observe_counts(arm, metric, &at, &events, &totals);
        check_column("observe_counts", p, &q, &got, rows);
        let small = events
            .iter()
            .chain(&totals)
            .all(|c| c.unsigned_abs() <= 1 << 53);
        if exact && small {
            let f = |xs: &[i64]| xs.iter().map(|x| *x as f64).collect::<Vec<_>>();
            let mut q = p.clone();
            let got = q.observe_counts_f64(arm, metric, &at_f64, &f(&events), &f(&totals));
            check_column("observe_counts_f64", p, &q, &got, rows);
        }
    }
}
