//! Arbitrary bytes as a config: raw JSON text, or one of the fixed configs with
//! byte-driven mutations (so that the fuzzer reaches the validator's deep checks with
//! no seed corpus). A config that validates must re-serialize to a config that
//! validates to the same thing, and a policy built from it must run.
#![no_main]

mod common;

use std::hint::black_box;

use common::{Bytes, CONFIGS, Call, Driver, mutate, same_parse};
use libfuzzer_sys::fuzz_target;
use rollguard::{MetricKind, Policy, PolicyConfig};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let mode = b.u8();
    let text = if mode.is_multiple_of(4) {
        String::from_utf8_lossy(b.rest()).into_owned()
    } else {
        let mut doc: Value =
            serde_json::from_str(CONFIGS[usize::from(mode) % CONFIGS.len()]).expect("fixed config");
        mutate(&mut doc, &mut b);
        doc.to_string()
    };
    same_parse(&text, PolicyConfig::from_json, PolicyConfig::from_value);
    let policy = match Policy::from_json(&text, 0) {
        Ok(p) => p,
        Err(e) => {
            black_box(e);
            return;
        }
    };
    let canonical = policy.config().to_json();
    let again = Policy::from_json(&canonical, 0)
        .unwrap_or_else(|e| panic!("the canonical JSON of a valid config is refused: {e}"));
    assert!(
        again.config() == policy.config(),
        "the canonical JSON of a config parses to another config"
    );

    // Drive it: a sample of every metric on the stable and candidate arms, then tick
    // to the next deadline and acknowledge whatever was issued, a few dozen times.
    let metrics: Vec<(String, MetricKind)> = policy
        .config()
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.kind))
        .collect();
    let mut d = Driver::new(policy);
    for round in 0..32u64 {
        let status = d.policy.status();
        let now = d.policy.now();
        let arms = [Some(status.aliases.stable), status.aliases.candidate];
        for arm in arms.into_iter().flatten() {
            for (name, kind) in &metrics {
                let (arm, m) = (arm.clone(), name.clone());
                let call = match kind {
                    MetricKind::Value => Call::Value(now, arm, m, 100.0 + round as f64),
                    MetricKind::Count => Call::Count(now, arm, m, 1, 100),
                };
                d.apply(&call);
            }
        }
        if let Some(id) = d.policy.status().pending_action {
            d.apply(&Call::Handle(rollguard::Input::Ack {
                at: now,
                action_id: id,
            }));
        }
        match d.policy.next_deadline() {
            Some(t) => d.apply(&Call::Tick(t)),
            None => break,
        }
    }
    black_box(d.policy.status());
});
