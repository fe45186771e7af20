//! Arbitrary states, built structure-aware: a real snapshot (a fixed config driven by a
//! decoded input stream) whose JSON values are perturbed by type (numbers to nearby,
//! boundary or cross-referenced numbers, strings to other strings of the snapshot,
//! array lengths, optional fields, unknown fields), mostly inside `state`.
//!
//! Every state that restore accepts must be a state the policy could hold: it passes
//! `Policy::validate`, its snapshot round-trips (snapshot → JSON → restore → an equal
//! policy, and the `Snapshot` itself is unchanged through JSON), text and
//! `serde_json::Value` restore alike, and it takes more inputs and the run loop with
//! every invariant of the driver holding, after which it passes both checks again.
#![no_main]

mod common;

use std::hint::black_box;

use common::{Bytes, CONFIGS, Driver, assert_round_trip, next_call, perturb, same_parse};
use libfuzzer_sys::fuzz_target;
use rollguard::{Policy, Snapshot};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let config = CONFIGS[usize::from(b.u8()) % CONFIGS.len()];
    let mut p = Policy::from_json(config, 0).expect("the fixed config is valid");
    for _ in 0..(b.u8() % 96) {
        let call = next_call(&mut b, &p);
        black_box(call.apply(&mut p).ok());
    }
    let mut doc: Value = serde_json::from_str(&p.snapshot().to_json()).expect("snapshots are JSON");
    perturb(&mut doc, "state", &mut b);
    let text = doc.to_string();
    same_parse(&text, Snapshot::from_json, Snapshot::from_value);
    let restored = match Policy::restore_json(&text) {
        Ok(q) => q,
        Err(e) => {
            black_box(e);
            return;
        }
    };
    assert_round_trip(&restored, "an accepted state");

    let mut d = Driver::new(restored);
    for _ in 0..16 {
        if b.is_empty() {
            break;
        }
        let call = next_call(&mut b, &d.policy);
        d.apply(&call);
    }
    let until = d.policy.now().saturating_add(60_000);
    d.run_loop(until, 128);
    assert_round_trip(&d.policy, "an accepted state after more inputs");
});
