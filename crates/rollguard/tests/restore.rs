//! Restoring hand-edited snapshots: every state the code could not have reached is
//! refused with `snapshot_corrupt` and the path of the offending field, and counters at
//! their limit refuse the input that would overflow them.

use rollguard::{ErrorCode, Input, Policy, Sample, TIME_MAX, TargetKind};
use serde_json::{Value, json};

const CONFIG: &str = r#"{"format_version": 1,
    "versions": [{"id": "v1", "digest": "d1", "validated": true},
                 {"id": "v2", "digest": "d2"}],
    "stable": "v1",
    "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 2},
                {"name": "errors", "kind": "count", "window_ms": 10000, "buckets": 2}],
    "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
               "rule": {"kind": "vs_baseline", "max_ratio": 1.3}}],
    "strategy": {"kind": "canary",
                 "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 60000}]},
    "analysis": {"interval_ms": 1000}}"#;

/// The policy of `config` with v2's rollout started and its first weight acknowledged.
fn rolled_out(config: &str) -> Policy {
    let mut p = Policy::from_json(config, 0).unwrap();
    let step = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let id = step.decisions[0].action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap();
    p
}

/// `CONFIG` with `gate` (a gate's JSON) added first, rolled out.
fn rolled_out_with(gate: &str) -> Policy {
    rolled_out(&CONFIG.replace(r#""gates": ["#, &format!(r#""gates": [{gate},"#)))
}

/// A rollout of v2 at 10 %, with samples of both arms in both buckets (arms[0] is v1,
/// arms[1] is v2; slot 0 holds epoch 0, slot 1 epoch 1).
fn canary() -> Policy {
    let mut p = rolled_out(CONFIG);
    for t in [100, 200, 5_100, 5_200] {
        for arm in ["v1", "v2"] {
            let _ = p
                .observe_value(t, arm, "latency_ms", 80.0 + t as f64 / 1000.0)
                .unwrap();
            let _ = p.observe_count(t, arm, "errors", 1, 10).unwrap();
        }
    }
    p
}

/// The canary with an operator's rollback to v1 pending (action 2).
fn rolling_back() -> Policy {
    let mut p = canary();
    let _ = p
        .handle(&Input::RevertNow {
            at: 5_300,
            target: Some(TargetKind::Stable),
            version: None,
        })
        .unwrap();
    assert_eq!(p.status().pending_action, Some(2));
    p
}

/// The same rollback failed: automation halts, and `resume` would retry it.
fn halted() -> Policy {
    let mut p = rolling_back();
    let _ = p
        .handle(&Input::ActionFailed {
            at: 5_400,
            action_id: 2,
            reason: "router down".into(),
        })
        .unwrap();
    assert!(p.status().halted.is_some());
    p
}

fn snapshot(p: &Policy) -> Value {
    serde_json::from_str(&p.snapshot().to_json()).unwrap()
}

/// Restores `doc`, expecting `snapshot_corrupt` at `path`.
#[track_caller]
fn refused_at(doc: &Value, path: &str) {
    match Policy::restore_json(&doc.to_string()) {
        Ok(_) => panic!("restored a snapshot corrupt at {path}"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::SnapshotCorrupt, "{e}");
            assert_eq!(e.path, path, "{e}");
        }
    }
}

#[test]
fn reachable_states_validate_and_restore() {
    for p in [canary(), rolling_back(), halted()] {
        assert_eq!(p.validate(), Ok(()));
        let q = Policy::restore_json(&p.snapshot().to_json()).unwrap();
        assert!(q == p);
    }
}

#[test]
fn a_slot_whose_min_is_above_its_max_is_refused() {
    // Restored, it panicked at the next analysis (`f64::clamp`), release builds too.
    let mut doc = snapshot(&canary());
    let slot = &mut doc["state"]["arms"][1]["windows"]["latency_ms"][1];
    assert_eq!(slot["count"], 2);
    slot["min"] = json!(500.0);
    refused_at(&doc, "state.arms[1].windows.latency_ms[1].min");
}

#[test]
fn buckets_of_the_other_kind_of_metric_are_refused() {
    // Counts in a value metric's buckets, values in a count metric's: each refused at
    // a field. (Counts alone read as a count metric's window, which has no histogram
    // for the p95 gate.)
    let mut doc = snapshot(&canary());
    let slot = &mut doc["state"]["arms"][1]["windows"]["latency_ms"][1];
    (slot["events"], slot["total"]) = (json!(1), json!(10));
    slot["sum"] = json!(0.0);
    let mut values = doc.clone();
    for slot in values["state"]["arms"][1]["windows"]["latency_ms"]
        .as_array_mut()
        .unwrap()
    {
        for key in ["sum", "min", "max"] {
            slot[key] = json!(0.0);
        }
        slot["hist"] = json!({"len": 0, "bins": []});
    }
    refused_at(&values, "state.arms[1].windows.latency_ms[0].hist");
    // With values beside the counts, the window is neither kind: refused as a whole.
    match Policy::restore_json(&doc.to_string()) {
        Ok(_) => panic!("restored a window of values and counts"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::SnapshotCorrupt, "{e}");
            assert!(e.message.contains("both values and counts"), "{e}");
        }
    }
    let mut doc = snapshot(&canary());
    for slot in doc["state"]["arms"][1]["windows"]["errors"]
        .as_array_mut()
        .unwrap()
    {
        (slot["events"], slot["total"]) = (json!(0), json!(0));
    }
    doc["state"]["arms"][1]["windows"]["errors"][0]["sum"] = json!(3.0);
    refused_at(&doc, "state.arms[1].windows.errors[0].sum");
}

#[test]
fn empty_windows_restore_whatever_kind_their_metric() {
    // An empty bucket reads the same for either kind: a fresh policy's windows, and a
    // count metric's window whose buckets are all empty, restore to equal policies.
    let p = rolled_out(CONFIG);
    let q = Policy::restore_json(&p.snapshot().to_json()).unwrap();
    assert!(q == p);
    assert_eq!(q.snapshot().to_json(), p.snapshot().to_json());
    let _ = q.clone().observe_count(100, "v2", "errors", 1, 10).unwrap();
}

#[test]
fn counters_at_u64_max_are_refused() {
    let mut doc = snapshot(&canary());
    doc["state"]["arms"][0]["windows"]["latency_ms"][0]["count"] = json!(u64::MAX);
    refused_at(&doc, "state.arms[0].windows.latency_ms[0].count");

    let mut doc = snapshot(&canary());
    doc["state"]["next_action_id"] = json!(u64::MAX);
    refused_at(&doc, "state.next_action_id");

    let mut doc = snapshot(&canary());
    doc["state"]["registry"]["next_seq"] = json!(u64::MAX);
    refused_at(&doc, "state.registry.next_seq");
}

#[test]
fn rollbacks_to_unknown_versions_are_refused() {
    let mut doc = snapshot(&rolling_back());
    doc["state"]["pending"]["action"]["to"] = json!("ghost");
    refused_at(&doc, "state.pending.action.to");

    let mut doc = snapshot(&halted());
    doc["state"]["halt"]["retry"]["action"]["to"] = json!("ghost");
    refused_at(&doc, "state.halt.retry.action.to");

    // Known, but not a target: v2 was never validated.
    let mut doc = snapshot(&halted());
    doc["state"]["halt"]["retry"]["action"]["to"] = json!("v2");
    doc["state"]["halt"]["retry"]["action"]["from"] = json!("v1");
    refused_at(&doc, "state.halt.retry.action.to");
}

#[test]
fn a_rollout_of_the_stable_version_is_refused() {
    let mut doc = snapshot(&canary());
    doc["state"]["rollout"]["version"] = json!("v1");
    refused_at(&doc, "state.rollout.version");
}

#[test]
fn a_missing_candidate_arm_is_refused() {
    let mut doc = snapshot(&canary());
    doc["state"]["arms"].as_array_mut().unwrap().pop();
    refused_at(&doc, "state.arms");
}

#[test]
fn duplicated_bucket_epochs_are_refused() {
    // Slot 1 holds epoch 1; a copy of it in slot 0 would be counted twice.
    let mut doc = snapshot(&canary());
    let windows = &mut doc["state"]["arms"][1]["windows"]["latency_ms"];
    windows[0] = windows[1].clone();
    refused_at(&doc, "state.arms[1].windows.latency_ms[0].epoch");
}

#[test]
fn version_labels_a_command_could_not_register_are_refused() {
    // register_version refuses these; a restored registry must not hold them either.
    let mut doc = snapshot(&canary());
    doc["state"]["registry"]["versions"][1]["digest"] = json!("d".repeat(5_000));
    refused_at(&doc, "state.registry.versions[1].digest");

    let mut doc = snapshot(&canary());
    doc["state"]["registry"]["versions"][0]["components"] = json!({"model": ""});
    refused_at(&doc, "state.registry.versions[0].components.model");
}

#[test]
fn gate_states_the_persistence_machine_cannot_reach_are_refused() {
    let doc = snapshot(&canary());
    assert_eq!(doc["state"]["gates"]["p95"]["consecutive_failures"], 0);

    // Failing in a row, but no streak start.
    let mut bad = doc.clone();
    bad["state"]["gates"]["p95"]["consecutive_failures"] = json!(2);
    refused_at(&bad, "state.gates.p95.failing_since");

    // Passing and failing in a row at once.
    let mut bad = doc.clone();
    bad["state"]["gates"]["p95"]["consecutive_failures"] = json!(1);
    bad["state"]["gates"]["p95"]["consecutive_passes"] = json!(1);
    bad["state"]["gates"]["p95"]["failing_since"] = json!(1_000);
    bad["state"]["gates"]["p95"]["last_failure"] = json!(1_000);
    refused_at(&bad, "state.gates.p95.consecutive_passes");

    // Tripped, with no onset to report in the rollback.
    let mut bad = doc.clone();
    bad["state"]["gates"]["p95"]["tripped_at"] = json!(1_000);
    bad["state"]["gates"]["p95"]["last_failure"] = json!(1_000);
    refused_at(&bad, "state.gates.p95.onset");
}

#[test]
fn unknown_fields_inside_the_state_are_refused() {
    // (the object's path in errors, its JSON pointer)
    let objects = [
        ("state", "/state"),
        ("state.rollout", "/state/rollout"),
        ("state.registry", "/state/registry"),
        ("state.registry.versions[0]", "/state/registry/versions/0"),
        ("state.arms[0]", "/state/arms/0"),
        (
            "state.arms[0].windows.latency_ms[0]",
            "/state/arms/0/windows/latency_ms/0",
        ),
        ("state.gates.p95", "/state/gates/p95"),
        ("state.gates.p95.detector", "/state/gates/p95/detector"),
        ("state.pending.action", "/state/pending/action"),
    ];
    for (path, pointer) in objects {
        let mut doc = snapshot(&rolling_back());
        let object = doc
            .pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap();
        object.insert("bogus".into(), json!(1));
        let e = Policy::restore_json(&doc.to_string()).unwrap_err();
        assert_eq!(e.code, ErrorCode::SnapshotCorrupt, "{path}: {e}");
        assert!(
            e.path == path || e.path == format!("{path}.bogus"),
            "{path}: {e}"
        );
    }
}

#[test]
fn an_input_that_would_overflow_a_counter_is_refused() {
    // Action ids at the limit: the next action could not get an id any binding can
    // represent, so inputs are refused and the policy stays as it was.
    let mut doc = snapshot(&canary());
    doc["state"]["next_action_id"] = json!(TIME_MAX);
    let mut p = Policy::restore_json(&doc.to_string()).unwrap();
    let before = p.clone();
    let e = p.tick(70_000).unwrap_err();
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{e}");
    assert!(p == before);

    // A bucket holding 2^53 - 1 samples takes no more.
    let mut doc = snapshot(&canary());
    doc["state"]["arms"][0]["windows"]["latency_ms"][1]["count"] = json!(TIME_MAX);
    let mut p = Policy::restore_json(&doc.to_string()).unwrap();
    let before = p.clone();
    let e = p.observe_value(5_300, "v1", "latency_ms", 1.0).unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::CountOutOfRange, "at")
    );
    let e = p
        .observe_values("v1", "latency_ms", &[5_300], &[1.0])
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::CountOutOfRange, "{e}");
    assert!(p == before);
    // Another bucket (a new epoch in slot 0) still does.
    let _ = p.observe_value(10_000, "v1", "latency_ms", 1.0).unwrap();
}

/// `doc` (format 2) as format 1 wrote it: gate states and windows as arrays in config
/// order.
fn as_format_1(doc: &Value) -> Value {
    let mut old = doc.clone();
    old["format_version"] = json!(1);
    let gates = ["p95"];
    let metrics = ["latency_ms", "errors"];
    old["state"]["gates"] = gates
        .iter()
        .map(|g| doc["state"]["gates"][g].clone())
        .collect();
    for arm in old["state"]["arms"].as_array_mut().unwrap() {
        let keyed = arm["windows"].clone();
        arm["windows"] = metrics.iter().map(|m| keyed[m].clone()).collect();
    }
    old
}

#[test]
fn snapshots_key_gate_states_and_windows_by_name() {
    let doc = snapshot(&canary());
    assert_eq!(doc["format_version"], rollguard::SNAPSHOT_FORMAT_VERSION);
    assert_eq!(rollguard::SNAPSHOT_FORMAT_VERSION, 2);
    let gates: Vec<&String> = doc["state"]["gates"].as_object().unwrap().keys().collect();
    assert_eq!(gates, ["p95"]);
    for arm in doc["state"]["arms"].as_array().unwrap() {
        let windows: Vec<&String> = arm["windows"].as_object().unwrap().keys().collect();
        assert_eq!(windows, ["errors", "latency_ms"]);
    }
}

#[test]
fn a_format_1_snapshot_restores_to_the_same_policy_and_upgrades() {
    for p in [canary(), rolling_back(), halted()] {
        let old = as_format_1(&snapshot(&p));
        let q = Policy::restore_json(&old.to_string()).unwrap();
        assert!(q == p);
        // Its own snapshots are in the current format.
        assert_eq!(snapshot(&q), snapshot(&p));
        // A parsed format 1 snapshot writes itself back unchanged.
        let parsed = rollguard::Snapshot::from_json(&old.to_string()).unwrap();
        assert_eq!(parsed.format_version, 1);
        let back: Value = serde_json::from_str(&parsed.to_json()).unwrap();
        assert_eq!(back, old);
    }
}

#[test]
fn each_format_has_its_own_form() {
    let doc = snapshot(&canary());
    let mut lists = as_format_1(&doc);
    lists["format_version"] = json!(2);
    refused_at(&lists, "state.gates");

    let mut keyed = doc.clone();
    keyed["format_version"] = json!(1);
    refused_at(&keyed, "state.gates");

    let mut mixed = as_format_1(&doc);
    mixed["state"]["arms"][1]["windows"] = doc["state"]["arms"][1]["windows"].clone();
    refused_at(&mixed, "state.arms[1].windows");

    for v in [0, 3, 99] {
        let mut other = doc.clone();
        other["format_version"] = json!(v);
        let e = Policy::restore_json(&other.to_string()).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedFormatVersion, "{v}: {e}");
    }
}

#[test]
fn states_are_matched_to_gates_and_metrics_by_name() {
    let doc = snapshot(&canary());

    // A state for a gate the config does not have: refused at its key.
    let mut extra = doc.clone();
    extra["state"]["gates"]["p99"] = doc["state"]["gates"]["p95"].clone();
    refused_at(&extra, "state.gates.p99");

    // A gate of the config without its state.
    let mut missing = doc.clone();
    missing["state"]["gates"] = json!({});
    refused_at(&missing, "state.gates");

    // Windows are found by name, whatever their order in the document.
    let mut renamed = doc.clone();
    let windows = renamed["state"]["arms"][0]["windows"]
        .as_object_mut()
        .unwrap();
    let w = windows.remove("errors").unwrap();
    windows.insert("error_count".into(), w);
    refused_at(&renamed, r#"state.arms[0].windows.error_count"#);

    // A repeated key is refused as in every other document.
    let text = doc.to_string().replacen(
        r#""gates":{"p95":"#,
        &format!(r#""gates":{{"p95":{},"p95":"#, doc["state"]["gates"]["p95"]),
        1,
    );
    let e = Policy::restore_json(&text).unwrap_err();
    assert_eq!(e.code, ErrorCode::DuplicateKey, "{e}");
}

#[test]
fn a_snapshot_of_an_unread_format_is_refused_however_it_was_built() {
    // Edited in Rust rather than parsed: restore itself checks the format.
    let mut s = canary().snapshot();
    s.format_version = 99;
    let e = Policy::restore(s).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedFormatVersion, "{e}");
    assert_eq!(e.path, "format_version");
}

#[test]
fn a_keyed_snapshot_parses_the_same_whatever_the_order_of_its_keys() {
    let p = canary();
    let doc = snapshot(&p);
    // The windows of arm 0 written latency_ms first (not in name order).
    let w = &doc["state"]["arms"][0]["windows"];
    let reordered = format!(
        r#"{{"latency_ms":{},"errors":{}}}"#,
        w["latency_ms"], w["errors"]
    );
    let mut marked = doc.clone();
    marked["state"]["arms"][0]["windows"] = json!("@windows@");
    let text = marked.to_string().replace(r#""@windows@""#, &reordered);
    let from_text = rollguard::Snapshot::from_json(&text).unwrap();
    let from_value = rollguard::Snapshot::from_value(doc.clone()).unwrap();
    assert!(from_text == from_value);
    assert_eq!(from_text.to_json(), p.snapshot().to_json());
}

#[test]
fn errors_in_a_format_1_snapshot_point_into_its_arrays() {
    let mut old = as_format_1(&snapshot(&canary()));
    old["state"]["arms"][1]["windows"][0][1]["min"] = json!(500.0);
    refused_at(&old, "state.arms[1].windows[0][1].min");

    let mut old = as_format_1(&snapshot(&canary()));
    old["state"]["gates"][0]["consecutive_failures"] = json!(2);
    refused_at(&old, "state.gates[0].failing_since");
}

#[test]
fn an_empty_gate_list_reads_alike_as_an_array_or_an_object() {
    let config = r#"{"format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": true}],
        "stable": "v1", "metrics": [{"name": "m", "kind": "value"}], "gates": [],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10}]}}"#;
    let p = Policy::from_json(config, 0).unwrap();
    let doc = snapshot(&p);
    assert_eq!(doc["state"]["gates"], json!({}));
    for (format, gates) in [(2, json!([])), (1, json!({})), (1, json!([]))] {
        let mut d = doc.clone();
        d["format_version"] = json!(format);
        d["state"]["gates"] = gates;
        if format == 1 {
            let windows = d["state"]["arms"][0]["windows"]["m"].clone();
            d["state"]["arms"][0]["windows"] = json!([windows]);
        }
        let q = Policy::restore_json(&d.to_string()).unwrap();
        assert!(q == p);
    }
}

#[test]
fn a_stable_version_no_rollback_could_go_to_is_refused() {
    // Before a promotion, rollbacks go to the stable version: it must be a target.
    let mut doc = snapshot(&canary());
    let v1 = doc["state"]["registry"]["versions"][0]
        .as_object_mut()
        .unwrap();
    assert_eq!(v1["id"], "v1");
    v1.remove("validated");
    refused_at(&doc, "state.registry.aliases.stable");

    // Golden is only ever a validated version.
    let mut doc = snapshot(&canary());
    doc["state"]["registry"]["aliases"]["golden"] = json!("v2");
    refused_at(&doc, "state.registry.aliases.golden");
}

#[test]
fn a_pending_action_of_another_stage_is_refused() {
    // The first stage's set_weight is pending; a promote there was never issued.
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let _ = p
        .handle(&Input::StartRollout {
            at: 0,
            version: "v2".into(),
        })
        .unwrap();
    let doc = snapshot(&p);
    assert_eq!(doc["state"]["pending"]["action"]["kind"], "set_weight");
    let mut bad = doc.clone();
    bad["state"]["pending"]["action"] = json!({"kind": "promote", "version": "v2", "from": "v1"});
    refused_at(&bad, "state.pending.action");
    let mut bad = doc.clone();
    bad["state"]["pending"]["action"]["weight"] = json!(50);
    refused_at(&bad, "state.pending.action");
}

#[test]
fn a_column_is_refused_exactly_when_its_rows_would_be() {
    // A bucket of another epoch at the limit: rows into an empty bucket still fit, in a
    // batch and as a column alike.
    let mut doc = snapshot(&canary());
    doc["state"]["arms"][0]["windows"]["latency_ms"][1]["count"] = json!(TIME_MAX);
    let p = Policy::restore_json(&doc.to_string()).unwrap();
    let (at, values) = ([10_100, 10_200], [1.0, 2.0]);
    let rows: Vec<Sample> = at
        .iter()
        .zip(values)
        .map(|(t, x)| Sample::value(*t, "v1", "latency_ms", x))
        .collect();
    let mut batch = p.clone();
    let mut column = p.clone();
    assert!(batch.observe_batch(&rows).is_ok());
    assert!(
        column
            .observe_values("v1", "latency_ms", &at, &values)
            .is_ok()
    );
    assert!(batch == column);

    // Into the full bucket (epoch 1, 5 000..10 000), both refuse, at the same row.
    let mut p2 = p.clone();
    let e = p2
        .observe_values("v1", "latency_ms", &[5_300, 5_400], &[1.0, 2.0])
        .unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::CountOutOfRange, "at[0]")
    );
    assert!(p2 == p);
}

/// The canary with an error_attribution gate that has counted errors at the 10 % split.
fn attributing() -> Policy {
    let mut p = rolled_out_with(
        r#"{"name": "attributed", "metric": "errors", "stat": "rate",
                      "rule": {"kind": "error_attribution"}}"#,
    );
    for (t, arm, events) in [(100, "v1", 9), (100, "v2", 1), (1_500, "v2", 2)] {
        let _ = p.observe_count(t, arm, "errors", events, 100).unwrap();
    }
    let _ = p.tick(2_000).unwrap();
    p
}

#[test]
fn an_error_attribution_state_restores_and_its_impossible_variants_are_refused() {
    let p = attributing();
    let doc = snapshot(&p);
    let at = "state.gates.attributed.detector";
    let split = &doc["state"]["gates"]["attributed"]["detector"]["splits"][0];
    assert_eq!(split, &json!({"share": 0.1, "judged": 3, "baseline": 9}));
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);

    // A share the strategy never sets (20 %), or one that appears twice.
    let mut bad = doc.clone();
    bad["state"]["gates"]["attributed"]["detector"]["splits"][0]["share"] = json!(0.2);
    refused_at(&bad, &format!("{at}.splits[0].share"));
    let mut twice = doc.clone();
    twice["state"]["gates"]["attributed"]["detector"]["splits"] = json!([
        {"share": 0.1, "judged": 1, "baseline": 1},
        {"share": 0.1, "judged": 1, "baseline": 1}
    ]);
    refused_at(&twice, &format!("{at}.splits[1].share"));
    // Counts beyond what the detector keeps, and a split it would not keep.
    let mut huge = doc.clone();
    huge["state"]["gates"]["attributed"]["detector"]["splits"][0]["judged"] = json!(u64::MAX);
    refused_at(&huge, &format!("{at}.splits[0]"));
    let mut empty = doc.clone();
    empty["state"]["gates"]["attributed"]["detector"]["splits"][0] =
        json!({"share": 0.1, "judged": 0, "baseline": 0});
    refused_at(&empty, &format!("{at}.splits[0]"));
    // Extremes of ln E on the wrong side of 0 (E starts at 1).
    let mut high = doc.clone();
    high["state"]["gates"]["attributed"]["detector"]["ln_e_max"] = json!(-1.0);
    refused_at(&high, &format!("{at}.ln_e_max"));
    let mut low = doc.clone();
    low["state"]["gates"]["attributed"]["detector"]["ln_e_min"] = json!(0.5);
    refused_at(&low, &format!("{at}.ln_e_min"));
    // The state of another kind.
    let mut other = doc;
    other["state"]["gates"]["p95"]["detector"] = json!({"kind": "error_attribution"});
    refused_at(&other, "state.gates.p95.detector");
}

/// The canary with a sequential_mean gate past its burn-in (null and scale fixed).
fn testing_means() -> Policy {
    let mut p = rolled_out_with(
        r#"{"name": "mean", "metric": "latency_ms", "stat": "mean",
                      "rule": {"kind": "sequential_mean"}, "samples_min": 3}"#,
    );
    for (i, x) in [90.0, 100.0, 110.0, 95.0].into_iter().enumerate() {
        let t = 100 * (i as u64 + 1);
        let _ = p.observe_value(t, "v1", "latency_ms", x).unwrap();
        let _ = p.observe_value(t + 1, "v2", "latency_ms", x + 1.0).unwrap();
    }
    let _ = p.tick(1_000).unwrap();
    p
}

#[test]
fn a_sequential_mean_state_restores_and_its_impossible_variants_are_refused() {
    let p = testing_means();
    let doc = snapshot(&p);
    let at = "state.gates.mean.detector";
    let detector = &doc["state"]["gates"]["mean"]["detector"];
    assert_eq!(detector["judged"]["n"], json!(4));
    assert!(detector["null"].is_number() && detector["scale"].is_number());
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);

    let edit = |field: &[&str], value: Value| {
        let mut d = doc.clone();
        let mut v = &mut d["state"]["gates"]["mean"]["detector"];
        for f in field {
            v = &mut v[*f];
        }
        *v = value;
        d
    };
    refused_at(
        &edit(&["judged", "m2"], json!(-1.0)),
        &format!("{at}.judged.m2"),
    );
    refused_at(
        &edit(&["baseline", "mean"], json!(1e300)),
        &format!("{at}.baseline.mean"),
    );
    refused_at(
        &edit(&["judged", "n"], json!(u64::MAX)),
        &format!("{at}.judged.n"),
    );
    // One sample has no spread; no samples have no mean.
    let mut one = edit(&["judged", "n"], json!(1));
    one["state"]["gates"]["mean"]["detector"]["judged"]["m2"] = json!(5.0);
    refused_at(&one, &format!("{at}.judged.m2"));
    let none = edit(&["baseline"], json!({"n": 0, "mean": 3.0, "m2": 0.0}));
    refused_at(&none, &format!("{at}.baseline.mean"));
    // The null and scale are fixed together, after the burn-in, and the scale is positive.
    let mut half = doc.clone();
    half["state"]["gates"]["mean"]["detector"]
        .as_object_mut()
        .unwrap()
        .remove("null");
    refused_at(&half, &format!("{at}.scale"));
    refused_at(&edit(&["scale"], json!(0.0)), &format!("{at}.scale"));
    let early = edit(&["baseline"], json!({"n": 2, "mean": 95.0, "m2": 50.0}));
    refused_at(&early, &format!("{at}.null"));
    // The lag-1 co-moment: one pair fewer than the samples, a last sample once there
    // are pairs; a snapshot written before it was kept restores and starts it afresh.
    assert_eq!(detector["judged_lag"]["n"], json!(3));
    refused_at(
        &edit(&["judged_lag", "n"], json!(4)),
        &format!("{at}.judged_lag.n"),
    );
    let mut lost = doc.clone();
    lost["state"]["gates"]["mean"]["detector"]["baseline_lag"]
        .as_object_mut()
        .unwrap()
        .remove("last");
    refused_at(&lost, &format!("{at}.baseline_lag.last"));
    refused_at(
        &edit(&["judged_lag", "mean_prev"], json!(1e300)),
        &format!("{at}.judged_lag.mean_prev"),
    );
    let mut older = doc.clone();
    for lag in ["judged_lag", "baseline_lag"] {
        older["state"]["gates"]["mean"]["detector"]
            .as_object_mut()
            .unwrap()
            .remove(lag);
    }
    let mut restored = Policy::restore_json(&older.to_string()).expect("an older state");
    let _ = restored
        .observe_value(1_100, "v2", "latency_ms", 99.0)
        .unwrap();
    assert_eq!(
        snapshot(&restored)["state"]["gates"]["mean"]["detector"]["judged_lag"]["n"],
        json!(0),
        "its first sample after the restore has no predecessor"
    );
}

#[test]
fn a_cusum_state_restores_and_its_impossible_variants_are_refused() {
    let mut p = rolled_out_with(
        r#"{"name": "chart", "metric": "latency_ms", "stat": "mean",
                      "phases": ["canary"], "samples_min": 3,
                      "rule": {"kind": "cusum", "threshold": 4, "autocorrelation": "ignore"}}"#,
    );
    for (i, x) in [90.0, 100.0, 110.0, 112.0].into_iter().enumerate() {
        let _ = p
            .observe_value(100 * (i as u64 + 1), "v2", "latency_ms", x)
            .unwrap();
    }
    let doc = snapshot(&p);
    let at = "state.gates.chart.detector";
    let chart = &doc["state"]["gates"]["chart"]["detector"];
    assert_eq!(chart["used"], json!(1));
    assert!(chart["sum"].as_f64().unwrap() > 0.0);
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);

    let edit = |field: &str, value: Value| {
        let mut d = doc.clone();
        d["state"]["gates"]["chart"]["detector"][field] = value;
        d
    };
    // A chart other than the config's (its threshold), a sum past the threshold without
    // an alarm, a negative sum, a run start while the sum is 0.
    let mut other = doc.clone();
    other["state"]["gates"]["chart"]["detector"]["chart"]["h"] = json!(5.0);
    refused_at(&other, "state.gates.chart.detector");
    refused_at(&edit("sum", json!(4.5)), &format!("{at}.sum"));
    refused_at(&edit("sum", json!(-1.0)), &format!("{at}.sum"));
    let mut zero = edit("sum", json!(0.0));
    zero["state"]["gates"]["chart"]["detector"]["since"] = json!(300);
    refused_at(&zero, &format!("{at}.since"));
    // Samples judged before the reference was learned.
    let mut early = doc.clone();
    early["state"]["gates"]["chart"]["detector"]
        .as_object_mut()
        .unwrap()
        .remove("reference");
    refused_at(&early, &format!("{at}.used"));
    refused_at(
        &edit("reference", json!({"mean": 100.0, "sd": 0.0})),
        &format!("{at}.reference.sd"),
    );
    // The long-run factor of the learned reference: between 1 and (1 + 0.9)/(1 − 0.9).
    let sd = chart["reference"]["sd"].clone();
    refused_at(
        &edit(
            "reference",
            json!({"mean": 100.0, "sd": sd, "inflation": 0.5}),
        ),
        &format!("{at}.reference.inflation"),
    );
    refused_at(
        &edit(
            "reference",
            json!({"mean": 100.0, "sd": sd, "inflation": 20.0}),
        ),
        &format!("{at}.reference.inflation"),
    );
    // A chart the former defaults gave (no clip, samples independent) still restores:
    // a snapshot from before them keeps the chart it started with.
    let mut legacy = doc.clone();
    let c = legacy["state"]["gates"]["chart"]["detector"]["chart"]
        .as_object_mut()
        .unwrap();
    assert_eq!(c.remove("clip"), Some(json!(3.0)));
    // (The three reference samples rise in a line: their lag-1 factor is the largest,
    // 19, and would leave the sum at 0; this gate takes samples as independent.)
    assert_eq!(c.get("serial"), None);
    let restored = Policy::restore_json(&legacy.to_string()).unwrap();
    assert!(restored != p, "the restored gate runs its own chart");
    // But a chart with the former settings and a different threshold does not.
    legacy["state"]["gates"]["chart"]["detector"]["chart"]["h"] = json!(5.0);
    refused_at(&legacy, at);
}

#[test]
fn a_chart_learning_its_reference_keeps_a_consistent_lag() {
    let mut p = rolled_out_with(
        r#"{"name": "chart", "metric": "latency_ms", "stat": "mean",
                      "phases": ["canary"], "samples_min": 10,
                      "rule": {"kind": "cusum"}}"#,
    );
    for (i, x) in [90.0, 100.0, 110.0].into_iter().enumerate() {
        let _ = p
            .observe_value(100 * (i as u64 + 1), "v2", "latency_ms", x)
            .unwrap();
    }
    let doc = snapshot(&p);
    let at = "state.gates.chart.detector";
    let lag = &doc["state"]["gates"]["chart"]["detector"]["learning_lag"];
    assert_eq!(lag["n"], json!(2));
    assert_eq!(lag["last"], json!(110.0));
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);
    // As many pairs as samples, and a snapshot from before the lag was kept (which
    // restores: the reference then starts its co-moment late).
    let mut more = doc.clone();
    more["state"]["gates"]["chart"]["detector"]["learning_lag"]["n"] = json!(3);
    refused_at(&more, &format!("{at}.learning_lag.n"));
    let mut before = doc.clone();
    before["state"]["gates"]["chart"]["detector"]
        .as_object_mut()
        .unwrap()
        .remove("learning_lag");
    assert!(Policy::restore_json(&before.to_string()).is_ok());
}

#[test]
fn an_ewma_state_restores_and_its_impossible_variants_are_refused() {
    let mut p = rolled_out_with(
        r#"{"name": "chart", "metric": "latency_ms", "stat": "mean",
                      "phases": ["canary"], "samples_min": 3,
                      "rule": {"kind": "ewma", "lambda": 0.2, "limit": 3}}"#,
    );
    for (i, x) in [90.0, 100.0, 110.0, 112.0].into_iter().enumerate() {
        let _ = p
            .observe_value(100 * (i as u64 + 1), "v2", "latency_ms", x)
            .unwrap();
    }
    let doc = snapshot(&p);
    let at = "state.gates.chart.detector";
    let chart = &doc["state"]["gates"]["chart"]["detector"];
    assert_eq!(chart["used"], json!(1));
    let z = chart["z"].as_f64().unwrap();
    assert!(z > 0.0 && z < 1.0, "{z}");
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);

    let edit = |field: &str, value: Value| {
        let mut d = doc.clone();
        d["state"]["gates"]["chart"]["detector"][field] = value;
        d
    };
    // A chart other than the config's (its weight), z past the limit without an
    // alarm, a negative z, a run start while z is 0.
    let mut other = doc.clone();
    other["state"]["gates"]["chart"]["detector"]["chart"]["lambda"] = json!(0.3);
    refused_at(&other, "state.gates.chart.detector");
    refused_at(&edit("z", json!(1.5)), &format!("{at}.z"));
    refused_at(&edit("z", json!(-0.1)), &format!("{at}.z"));
    let mut zero = edit("z", json!(0.0));
    zero["state"]["gates"]["chart"]["detector"]["since"] = json!(300);
    refused_at(&zero, &format!("{at}.since"));
    let mut early = doc.clone();
    early["state"]["gates"]["chart"]["detector"]
        .as_object_mut()
        .unwrap()
        .remove("reference");
    refused_at(&early, &format!("{at}.used"));
}

#[test]
fn a_drift_state_restores_and_its_impossible_variants_are_refused() {
    let mut p = rolled_out_with(
        r#"{"name": "classes", "metric": "latency_ms", "stat": "mean",
                      "rule": {"kind": "drift", "categories": 3}}"#,
    );
    for (i, (arm, x)) in [("v2", 0.0), ("v1", 1.0), ("v2", 2.0), ("v2", 7.5)]
        .into_iter()
        .enumerate()
    {
        let _ = p
            .observe_value(100 * (i as u64 + 1), arm, "latency_ms", x)
            .unwrap();
    }
    let doc = snapshot(&p);
    let at = "state.gates.classes.detector";
    let d = &doc["state"]["gates"]["classes"]["detector"];
    assert_eq!(d["judged"], json!([1, 0, 1, 1]));
    assert_eq!(d["baseline"], json!([0, 1, 0, 0]));
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);

    let edit = |field: &str, value: Value| {
        let mut d = doc.clone();
        d["state"]["gates"]["classes"]["detector"][field] = value;
        d
    };
    // Other bins than the config's, counts for fewer bins, a count past 2^53.
    refused_at(&edit("binning", json!({"categories": 4})), at);
    refused_at(&edit("judged", json!([1, 0, 1])), &format!("{at}.judged"));
    refused_at(
        &edit("baseline", json!([0, 1, 0, 9_007_199_254_740_993u64])),
        &format!("{at}.baseline"),
    );
}

#[test]
fn a_rate_slo_state_restores_and_its_impossible_variants_are_refused() {
    let mut p = rolled_out_with(
        r#"{"name": "slo", "metric": "errors", "stat": "rate",
                      "rule": {"kind": "rate_slo", "max_rate": 0.05}}"#,
    );
    let _ = p.observe_count(100, "v2", "errors", 3, 40).unwrap();
    let _ = p.tick(1_000).unwrap();
    let doc = snapshot(&p);
    let at = "state.gates.slo.detector";
    assert_eq!(doc["state"]["gates"]["slo"]["detector"]["events"], json!(3));
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);
    let edit = |field: &str, value: Value| {
        let mut d = doc.clone();
        d["state"]["gates"]["slo"]["detector"][field] = value;
        d
    };
    refused_at(&edit("events", json!(41)), &format!("{at}.events"));
    refused_at(&edit("total", json!(u64::MAX)), &format!("{at}.events"));
    refused_at(&edit("ln_e_max", json!(-0.5)), &format!("{at}.ln_e_max"));
    refused_at(&edit("low_at", json!(5_000)), &format!("{at}.low_at"));
}

#[test]
fn a_sequential_quantile_state_restores_and_its_impossible_variants_are_refused() {
    let mut p = rolled_out_with(
        r#"{"name": "tail", "metric": "latency_ms", "stat": "p99",
                      "rule": {"kind": "sequential_quantile"}, "samples_min": 2}"#,
    );
    for (t, x) in [(100, 80.0), (200, 120.0), (300, 95.0)] {
        let _ = p.observe_value(t, "v1", "latency_ms", x).unwrap();
        let _ = p.observe_value(t, "v2", "latency_ms", 2.0 * x).unwrap();
    }
    let _ = p.tick(1_000).unwrap();
    let doc = snapshot(&p);
    let at = "state.gates.tail.detector";
    let judged = &doc["state"]["gates"]["tail"]["detector"]["judged"];
    assert_eq!(judged["n"], json!(3));
    assert_eq!(judged["bins"]["bins"].as_array().unwrap().len(), 3);
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);
    let edit = |path: &[&str], value: Value| {
        let mut d = doc.clone();
        let mut v = &mut d["state"]["gates"]["tail"]["detector"];
        for k in path {
            v = &mut v[*k];
        }
        *v = value;
        d
    };
    refused_at(
        &edit(&["judged", "n"], json!(4)),
        &format!("{at}.judged.bins"),
    );
    refused_at(
        &edit(&["judged", "n"], json!(1u64 << 54)),
        &format!("{at}.judged.n"),
    );
    refused_at(
        &edit(&["baseline", "bins", "len"], json!(2000)),
        &format!("{at}.baseline.bins"),
    );
    refused_at(
        &edit(&["baseline", "max"], json!(1000.0)),
        &format!("{at}.baseline.min"),
    );
    refused_at(
        &edit(&["baseline", "min"], json!(500.0)),
        &format!("{at}.baseline.min"),
    );
    refused_at(&edit(&["ln_e_max"], json!(-0.5)), &format!("{at}.ln_e_max"));
    refused_at(&edit(&["low_at"], json!(5_000)), &format!("{at}.low_at"));
    // Bins beyond any histogram, and counts beyond 2^53, do not even parse.
    let mut d = doc.clone();
    d["state"]["gates"]["tail"]["detector"]["judged"]["bins"]["bins"][0][1] = json!(1u64 << 54);
    assert!(Policy::restore_json(&d.to_string()).is_err());
}

#[test]
fn a_mann_whitney_state_restores_and_its_impossible_variants_are_refused() {
    let mut p = rolled_out_with(
        r#"{"name": "kayenta", "metric": "latency_ms", "stat": "mean",
                      "rule": {"kind": "mann_whitney", "samples_max": 4}}"#,
    );
    for i in 0..6u32 {
        let _ = p
            .observe_value(100 + u64::from(i), "v2", "latency_ms", f64::from(i))
            .unwrap();
    }
    let _ = p.observe_value(200, "v1", "latency_ms", 3.0).unwrap();
    let doc = snapshot(&p);
    let at = "state.gates.kayenta.detector";
    let detector = &doc["state"]["gates"]["kayenta"]["detector"];
    assert_eq!(detector["judged"]["values"], json!([4.0, 5.0, 2.0, 3.0]));
    assert_eq!(detector["judged"]["next"], json!(2));
    assert_eq!(detector["judged"]["seen"], json!(6));
    assert!(Policy::restore_json(&doc.to_string()).unwrap() == p);
    let edit = |path: &[&str], value: Value| {
        let mut d = doc.clone();
        let mut v = &mut d["state"]["gates"]["kayenta"]["detector"];
        for k in path {
            v = &mut v[*k];
        }
        *v = value;
        d
    };
    // A ring position outside the ring, or one before it is full.
    refused_at(
        &edit(&["judged", "next"], json!(4)),
        &format!("{at}.judged.next"),
    );
    refused_at(
        &edit(&["baseline", "next"], json!(1)),
        &format!("{at}.baseline.next"),
    );
    // Fewer seen than kept, or more seen than kept before the ring is full.
    refused_at(
        &edit(&["judged", "seen"], json!(3)),
        &format!("{at}.judged.seen"),
    );
    refused_at(
        &edit(&["baseline", "seen"], json!(2)),
        &format!("{at}.baseline.seen"),
    );
    // Samples beyond the value bound.
    refused_at(
        &edit(&["baseline", "values"], json!([1e300])),
        &format!("{at}.baseline.values"),
    );
    // More samples than samples_max, or a samples_max the config does not give.
    refused_at(
        &edit(&["baseline", "values"], json!([1.0, 2.0, 3.0, 4.0, 5.0])),
        &format!("{at}.baseline.values"),
    );
    refused_at(&edit(&["samples_max"], json!(5)), at);
}
