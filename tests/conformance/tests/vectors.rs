//! Replays every conformance vector in `tests/vectors` (see its README).
//!
//! `ROLLGUARD_BLESS=1 cargo test -p rollguard-conformance` rewrites the expected
//! outputs of the steps vectors from the actual run instead of comparing them. Read
//! every blessed trace against its vector's description before keeping it.

use rollguard::{ErrorCode, Input, Policy, Sample};
use rollguard_conformance::{
    BLESS_VAR, MIN_VECTORS, find_vectors, relative_name, repeated_key, run_vector, to_pretty,
    vectors_dir,
};
use serde_json::Value;

#[test]
fn vectors() {
    let dir = vectors_dir();
    let bless = std::env::var(BLESS_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    let files = find_vectors(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut blessed = 0;
    for path in &files {
        let name = relative_name(&dir, path);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(key) = repeated_key(&text) {
            failures.push(format!("{name}: an object repeats the key {key}"));
            continue;
        }
        let doc: Value = match serde_json::from_str(&text) {
            Ok(doc) => doc,
            Err(e) => {
                failures.push(format!("{name}: not JSON: {e}"));
                continue;
            }
        };
        match run_vector(&name, &doc, bless) {
            Ok(Some(new_doc)) => {
                let new_text = to_pretty(&new_doc);
                if new_text != text {
                    std::fs::write(path, new_text).unwrap_or_else(|e| panic!("{name}: {e}"));
                    blessed += 1;
                    eprintln!("blessed {name}");
                }
                passed += 1;
            }
            Ok(None) => passed += 1,
            Err(f) => failures.push(format!("{}: {}", f.name, f.message)),
        }
    }
    for f in &failures {
        eprintln!("FAILED {f}\n");
    }
    println!("vectors: {passed} passed, {} failed", failures.len());
    if bless {
        println!("vectors: {blessed} rewritten by {BLESS_VAR}");
    }
    assert!(
        files.len() >= MIN_VECTORS,
        "only {} vectors found under {}; expected at least {MIN_VECTORS}",
        files.len(),
        dir.display()
    );
    assert!(failures.is_empty(), "{} vectors failed", failures.len());
}

// ---------------------------------------------------------------------- non-finite values
//
// JSON has no NaN or infinity, so `non_finite_value` cannot be written as a vector: the
// bindings reach it only from native floats (a Python `float("nan")`, a JS `Infinity`).
// These tests cover it here, and pin what the JSON entry point does with a number too
// large for an f64 (see the README).

const CONFIG: &str = r#"{
  "format_version": 1,
  "versions": [{"id": "v1", "digest": "sha256:01", "validated": true}],
  "stable": "v1",
  "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10}],
  "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10}]}
}"#;

#[test]
fn non_finite_values_are_refused_and_change_nothing() {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let before = p.snapshot();
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = p
            .observe(&Sample::value(5, "v1", "latency_ms", x))
            .unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (ErrorCode::NonFiniteValue, "value")
        );
        let e = p.observe_value(5, "v1", "latency_ms", x).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        // Atomic batches: the good first sample is not recorded either.
        let batch = Input::ObserveBatch {
            samples: vec![
                Sample::value(5, "v1", "latency_ms", 1.0),
                Sample::value(6, "v1", "latency_ms", x),
            ],
        };
        let e = p.handle(&batch).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (ErrorCode::NonFiniteValue, "samples[1].value")
        );
    }
    assert_eq!(p.snapshot(), before);
}

#[test]
fn json_numbers_beyond_f64_are_invalid_json_not_infinity() {
    // serde_json refuses `1e400` ("number out of range") rather than rounding it to
    // infinity, so the core's JSON entry point reports `invalid_json` at the field.
    // Python's `json.loads` and JS's `JSON.parse` both turn it into infinity instead;
    // a binding that parses the JSON itself and passes a native float gets
    // `non_finite_value`. The README tells binding authors to pass the text through.
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
    let e = p
        .handle_json(r#"{"kind":"observe","at":5,"arm":"v1","metric":"latency_ms","value":1e400}"#)
        .unwrap_err();
    assert_eq!((e.code, e.path.as_str()), (ErrorCode::InvalidJson, "value"));
    assert!(serde_json::from_str::<Value>("1e400").is_err());
}

#[test]
fn vector_files_that_repeat_a_key_are_caught() {
    assert_eq!(
        repeated_key(r#"{"a": 1, "b": [{"c": 1, "c": 2}]}"#).as_deref(),
        Some("\"c\"")
    );
    assert_eq!(repeated_key(r#"{"a": {"a": 1}, "b": [{"a": 2}]}"#), None);
    assert_eq!(repeated_key("not json"), None);
}
