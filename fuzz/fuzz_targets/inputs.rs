//! A fixed config (picked by the first byte) driven by a stream of inputs decoded from
//! the bytes: structurally valid samples, batches, ticks, acks, failures and every
//! operator command, with arbitrary numbers and times, through every entry point
//! (`handle`, `handle_json`, `observe`, `observe_batch`, `observe_value`,
//! `observe_count`, the columns `observe_values`, `observe_values_f64` and
//! `observe_counts`, `tick`). The driver checks the invariants after every call, and
//! that a column does what its rows do one by one; between calls, `assign`,
//! `assign_session` and the routing table are queried with keys and times from the
//! bytes ahead (`common::check_assignment`).
#![no_main]

mod common;

use std::hint::black_box;

use common::{Bytes, CONFIGS, Driver, check_assignment, next_call};
use libfuzzer_sys::fuzz_target;
use rollguard::{Policy, TIME_MAX};

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let config = CONFIGS[usize::from(b.u8()) % CONFIGS.len()];
    // Mostly 0 or a Unix-epoch time; rarely near the 2^53 − 1 ms limit, where every
    // timer saturates (a rare start keeps that edge from drowning everything else).
    let start = match b.u8() % 32 {
        0..=19 => 0,
        20..=30 => 1_700_000_000_000,
        _ => TIME_MAX - u64::from(b.u16()),
    };
    let policy = Policy::from_json(config, start).expect("the fixed config is valid");
    let mut d = Driver::new(policy);
    for _ in 0..1024 {
        if b.is_empty() {
            break;
        }
        let call = next_call(&mut b, &d.policy);
        d.apply(&call);
        // Assignment queries between inputs, keys and times from the bytes ahead.
        check_assignment(&d.policy, b.rest());
    }
    // Then the caller's run loop for another minute of policy time.
    let until = d.policy.now().saturating_add(60_000);
    d.run_loop(until, 512);
    check_assignment(&d.policy, data);
    black_box(d.policy.status());
});
