//! Parse errors name the failing field, also inside `kind`-tagged objects.

use rollguard::{ErrorCode, Input, Policy, PolicyConfig, Scenario};

fn input_error(text: &str) -> (ErrorCode, String) {
    let e = Input::from_json(text).unwrap_err();
    (e.code, e.path)
}

#[test]
fn input_errors_keep_their_field_path() {
    let cases = [
        (r#"{"kind": "tick", "at": -1}"#, "at"),
        (r#"{"kind": "tick", "at": "1000"}"#, "at"),
        (r#"{"kind": "tick", "at": 5, "extra": 1}"#, "extra"),
        (r#"{"kind": "start_rollout", "at": 5}"#, ""),
        (r#"{"kind": "teleport", "at": 5}"#, "kind"),
        (r#"{"kind": 7, "at": 5}"#, "kind"),
        (
            r#"{"kind": "observe", "at": 1, "arm": "v1", "metric": "m", "value": "x"}"#,
            "value",
        ),
        (
            r#"{"kind": "observe_batch", "samples": [{"at": 1, "arm": "v1", "metric": "m", "value": 1}, {"at": 2, "arm": "v1", "metric": "m", "value": true}]}"#,
            "samples[1].value",
        ),
        (
            r#"{"kind": "register_version", "at": 1, "version": {"id": "v9"}}"#,
            "version",
        ),
    ];
    for (text, path) in cases {
        assert_eq!(
            input_error(text),
            (ErrorCode::InvalidJson, path.to_string()),
            "{text}"
        );
    }
    // Valid inputs still round-trip through the canonical form.
    let text = r#"{"kind":"revert_now","at":3,"target":"golden"}"#; // tag first, then fields by key
    let input = Input::from_json(text).unwrap();
    assert_eq!(serde_json::to_string(&input).unwrap(), text);
}

#[test]
fn config_errors_inside_tagged_objects_keep_their_path() {
    let base = r#"{"format_version": 1, "versions": [{"id": "v1", "digest": "d", "validated": true}],
        "stable": "v1", "metrics": [{"name": "m", "kind": "value"}],
        "gates": [{"name": "g", "metric": "m", "stat": "mean", "rule": RULE}],
        "strategy": STRATEGY}"#;
    let config =
        |rule: &str, strategy: &str| base.replace("RULE", rule).replace("STRATEGY", strategy);
    let ok_rule = r#"{"kind": "threshold", "max": 1}"#;
    let ok_strategy = r#"{"kind": "canary", "steps": [{"kind": "set_weight", "weight": 5}]}"#;
    assert!(Policy::from_json(&config(ok_rule, ok_strategy), 0).is_ok());
    let cases = [
        (
            config(r#"{"kind": "threshold", "max": "high"}"#, ok_strategy),
            "gates[0].rule.max",
        ),
        (
            config(r#"{"kind": "sideways"}"#, ok_strategy),
            "gates[0].rule.kind",
        ),
        (
            config(
                ok_rule,
                r#"{"kind": "canary", "steps": [{"kind": "set_weight", "weight": -5}]}"#,
            ),
            "strategy.steps[0].weight",
        ),
        (
            config(
                ok_rule,
                r#"{"kind": "canary", "steps": [{"kind": "shadow"}]}"#,
            ),
            "strategy.steps[0]",
        ),
        (
            config(ok_rule, r#"{"kind": "blue_green", "preview_ms": 1.5}"#),
            "strategy.preview_ms",
        ),
    ];
    for (text, path) in cases {
        let e = PolicyConfig::from_json(&text).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (ErrorCode::InvalidJson, path),
            "{}",
            e.message
        );
    }
    // Nested inside a scenario: the outer and inner paths join.
    let scenario = format!(
        r#"{{"format_version": 1, "config": {}, "inputs": [{{"kind": "tick", "at": 0}}, {{"kind": "tick", "at": "later"}}]}}"#,
        config(ok_rule, ok_strategy)
    );
    assert_eq!(
        Scenario::from_json(&scenario).unwrap_err().path,
        "inputs[1].at"
    );
}
