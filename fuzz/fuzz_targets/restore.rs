//! Bytes as a snapshot: raw JSON text, or a real snapshot (a fixed config driven by a
//! decoded input stream) with byte-driven mutations. An unmutated snapshot must
//! restore to an equal policy. A snapshot that restores, however it was made, must
//! give a policy that runs: it takes more inputs (the driver checks the invariants),
//! and its own snapshot restores to an equal policy.
#![no_main]

mod common;

use std::hint::black_box;

use common::{Bytes, CONFIGS, Driver, mutate, next_call, same_parse};
use libfuzzer_sys::fuzz_target;
use rollguard::{Policy, Snapshot};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let text = if mode.is_multiple_of(8) {
        String::from_utf8_lossy(b.rest()).into_owned()
    } else {
        let config = CONFIGS[usize::from(mode) % CONFIGS.len()];
        let mut p = Policy::from_json(config, 0).expect("the fixed config is valid");
        for _ in 0..(b.u8() % 96) {
            let call = next_call(&mut b, &p);
            black_box(call.apply(&mut p).ok());
        }
        let snapshot = p.snapshot().to_json();
        let q = Policy::restore_json(&snapshot)
            .unwrap_or_else(|e| panic!("a snapshot the policy wrote is refused: {e}"));
        assert!(
            q == p,
            "a restored snapshot differs from the policy that wrote it"
        );
        let mut doc: Value = serde_json::from_str(&snapshot).expect("snapshots are JSON");
        mutate(&mut doc, &mut b);
        doc.to_string()
    };
    same_parse(&text, Snapshot::from_json, Snapshot::from_value);
    let policy = match Policy::restore_json(&text) {
        Ok(p) => p,
        Err(e) => {
            black_box(e);
            return;
        }
    };
    let mut d = Driver::new(policy);
    for _ in 0..64 {
        if b.is_empty() {
            break;
        }
        let call = next_call(&mut b, &d.policy);
        d.apply(&call);
    }
    let until = d.policy.now().saturating_add(30_000);
    d.run_loop(until, 128);
    let snapshot = d.policy.snapshot().to_json();
    let again = Policy::restore_json(&snapshot)
        .unwrap_or_else(|e| panic!("the snapshot of a restored policy is refused: {e}"));
    assert!(again == d.policy, "a re-restored snapshot differs");
});
