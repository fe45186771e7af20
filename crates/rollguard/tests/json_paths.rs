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

// ---------------------------------------------------------------- duplicate keys

/// A small valid config; `extra` is spliced into the first version's object.
fn config_text(version_extra: &str, rule: &str, step: &str) -> String {
    format!(
        r#"{{"format_version": 1,
        "versions": [{{"id": "v1", "digest": "d", "validated": true{version_extra}}}],
        "stable": "v1", "metrics": [{{"name": "m", "kind": "value"}}],
        "gates": [{{"name": "g", "metric": "m", "stat": "mean", "rule": {rule}}}],
        "strategy": {{"kind": "canary", "steps": [{step}]}}}}"#
    )
}

const RULE: &str = r#"{"kind": "threshold", "max": 1}"#;
const STEP: &str = r#"{"kind": "set_weight", "weight": 5}"#;

fn duplicate(result: Result<impl std::fmt::Debug, rollguard::Error>, path: &str, text: &str) {
    let e = result.expect_err(text);
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::DuplicateKey, path),
        "{text}: {}",
        e.message
    );
}

#[test]
fn inputs_with_a_repeated_key_are_refused_not_last_wins() {
    let sample = r#"{"at": 1, "arm": "v1", "metric": "m", "value": 1}"#;
    let cases = [
        (r#"{"kind":"tick","at":1000,"at":500}"#, "at"),
        (r#"{"kind":"tick","kind":"tick","at":5}"#, "kind"),
        (r#"{"kind":"tick","at":5,"kind":"ack"}"#, "kind"),
        (
            r#"{"kind": "observe", "at": 1, "arm": "v1", "metric": "m", "value": 1, "value": 2}"#,
            "value",
        ),
        (
            &format!(
                r#"{{"kind": "observe_batch", "samples": [{sample}, {{"at": 2, "arm": "v1", "at": 3, "metric": "m", "value": 1}}]}}"#
            ),
            "samples[1].at",
        ),
        (
            &format!(r#"{{"kind": "observe_batch", "samples": [{sample}], "samples": []}}"#),
            "samples",
        ),
        (
            r#"{"kind": "register_version", "at": 1, "version": {"id": "v9", "digest": "d", "components": {"model": "a", "a.b": "x", "a.b": "y"}}}"#,
            r#"version.components["a.b"]"#,
        ),
        (
            r#"{"kind": "revert_now", "at": 1, "target": "version", "version": "v1", "version": "v2"}"#,
            "version",
        ),
    ];
    for (text, path) in cases {
        duplicate(Input::from_json(text), path, text);
    }
    // The same keys once each are fine.
    assert!(Input::from_json(r#"{"kind":"tick","at":1000}"#).is_ok());
}

#[test]
fn configs_with_a_repeated_key_are_refused_with_the_same_code() {
    let ok = config_text("", RULE, STEP);
    assert!(PolicyConfig::from_json(&ok).is_ok());
    let cases = [
        (
            ok.replacen(r#""stable": "v1""#, r#""stable": "v1", "stable": "v2""#, 1),
            "stable",
        ),
        (
            config_text(r#", "validated": false"#, RULE, STEP),
            "versions[0].validated",
        ),
        (
            config_text(
                r#", "components": {"model": "a", "model": "b"}"#,
                RULE,
                STEP,
            ),
            "versions[0].components.model",
        ),
        (
            config_text("", r#"{"kind": "threshold", "max": 1, "max": 2}"#, STEP),
            "gates[0].rule.max",
        ),
        (
            config_text(
                "",
                RULE,
                r#"{"kind": "set_weight", "weight": 5, "weight": 50}"#,
            ),
            "strategy.steps[0].weight",
        ),
    ];
    for (text, path) in &cases {
        duplicate(PolicyConfig::from_json(text), path, text);
        duplicate(Policy::from_json(text, 0), path, text);
    }
    // Inside a scenario, in its config and in its inputs.
    let scenario = |config: &str, input: &str| {
        format!(
            r#"{{"format_version": 1, "config": {config}, "inputs": [{{"kind": "tick", "at": 0}}, {input}]}}"#
        )
    };
    let text = scenario(&cases[3].0, r#"{"kind": "tick", "at": 1}"#);
    duplicate(
        Scenario::from_json(&text),
        "config.gates[0].rule.max",
        &text,
    );
    let text = scenario(&ok, r#"{"kind": "tick", "at": 1, "at": 2}"#);
    duplicate(Scenario::from_json(&text), "inputs[1].at", &text);
    let text = format!(r#"{{"format_version": 1, "config": {ok}, "inputs": [], "inputs": []}}"#);
    duplicate(Scenario::from_json(&text), "inputs", &text);
}

#[test]
fn snapshots_with_a_repeated_key_are_refused() {
    let mut policy = Policy::from_json(
        &config_text(r#", "components": {"model": "a"}"#, RULE, STEP),
        0,
    )
    .unwrap();
    let _ = policy.handle(&Input::Tick { at: 10 }).unwrap();
    let text = policy.snapshot().to_json();
    assert!(Policy::restore_json(&text).is_ok());
    let cases = [
        (
            text.replacen(
                r#""format_version":2"#,
                r#""format_version":2,"format_version":2"#,
                1,
            ),
            "format_version",
        ),
        (
            text.replacen(r#""gates":{"g":"#, r#""gates":{"g":{},"g":"#, 1),
            "state.gates.g",
        ),
        (
            text.replacen(r#""model":"a""#, r#""model":"a","model":"a""#, 1),
            "config.versions[0].components.model",
        ),
        (
            text.replacen(r#""max":1.0"#, r#""max":1.0,"max":1.0"#, 1)
                .replacen(r#""max":1,"#, r#""max":1,"max":1,"#, 1),
            "config.gates[0].rule.max",
        ),
        (
            text.replacen(r#""state":{"#, r#""state":{"next_action_id":1,"#, 1),
            "state.next_action_id",
        ),
    ];
    for (text, path) in &cases {
        duplicate(Policy::restore_json(text), path, text);
    }
}

// ---------------------------------------------------------------- paths from keys

/// Reads a path back into its segments: `.name`, a leading `name`, `[3]` and
/// `["json string"]`. Panics on anything else, so a path that does not parse fails.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[\"") {
            // A JSON string: find its end by parsing growing prefixes.
            let end = (1..=r.len())
                .find(|&n| {
                    r.is_char_boundary(n)
                        && r[..n].ends_with("\"]")
                        && serde_json::from_str::<String>(&format!("\"{}", &r[..n - 1])).is_ok()
                })
                .unwrap_or_else(|| panic!("unterminated key in {path:?}"));
            out.push(serde_json::from_str(&format!("\"{}", &r[..end - 1])).unwrap());
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap();
            assert!(r[..end].bytes().all(|b| b.is_ascii_digit()), "{path:?}");
            out.push(r[..end].to_string());
            rest = &r[end + 1..];
        } else {
            let r = if out.is_empty() {
                rest
            } else {
                rest.strip_prefix('.').unwrap_or_else(|| panic!("{path:?}"))
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            assert!(
                !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "bare segment {name:?} in {path:?}"
            );
            out.push(name.to_string());
            rest = &r[end..];
        }
    }
    out
}

const ODD_KEYS: [&str; 10] = [
    "a.b",
    "a[0]",
    "[\"x\"]",
    "say \"hi\"",
    "back\\slash",
    "\u{1f}x\u{1e}y\n",
    "",
    "café 😀",
    "0starts_with_digit",
    "with space",
];

#[test]
fn paths_name_odd_keys_unambiguously() {
    for key in ODD_KEYS {
        let k = serde_json::to_string(key).unwrap();
        // An unknown field, at the top of an input (tagged) and of a config (not tagged).
        let e = Input::from_json(&format!(r#"{{"kind": "tick", "at": 5, {k}: 1}}"#)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert_eq!(segments(&e.path), [key], "{key:?}: {}", e.path);
        let config = config_text("", RULE, STEP);
        let text = config.replacen('{', &format!("{{{k}: 1, "), 1);
        let e = PolicyConfig::from_json(&text).unwrap_err();
        assert_eq!(segments(&e.path), [key], "{key:?}: {}", e.path);
        // A bad value under the key, nested, in a config and in an input.
        let bad = format!(r#", "components": {{{k}: 5}}"#);
        let e = PolicyConfig::from_json(&config_text(&bad, RULE, STEP)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert_eq!(
            segments(&e.path),
            ["versions", "0", "components", key],
            "{key:?}: {}",
            e.path
        );
        let text = format!(
            r#"{{"kind": "register_version", "at": 1, "version": {{"id": "v9", "digest": "d", "components": {{{k}: 5}}}}}}"#
        );
        let e = Input::from_json(&text).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert_eq!(
            segments(&e.path),
            ["version", "components", key],
            "{key:?}: {}",
            e.path
        );
        // A duplicate key, with the key in the path.
        let text = format!(
            r#"{{"kind": "register_version", "at": 1, "version": {{"id": "v9", "digest": "d", "components": {{{k}: "a", {k}: "b"}}}}}}"#
        );
        let e = Input::from_json(&text).unwrap_err();
        assert_eq!(e.code, ErrorCode::DuplicateKey);
        assert_eq!(
            segments(&e.path),
            ["version", "components", key],
            "{key:?}: {}",
            e.path
        );
        // A label check on a component (validation, not parsing; an empty key is
        // refused before its value is looked at).
        let long = "x".repeat(300);
        let bad = format!(r#", "components": {{{k}: "{long}"}}"#);
        let e = Policy::from_json(&config_text(&bad, RULE, STEP), 0).unwrap_err();
        let code = if key.is_empty() {
            ErrorCode::InvalidValue
        } else {
            ErrorCode::LabelTooLong
        };
        assert_eq!(e.code, code);
        assert_eq!(
            segments(&e.path),
            ["versions", "0", "components", key],
            "{key:?}: {}",
            e.path
        );
    }
}

#[test]
fn identifier_keys_keep_the_dotted_form() {
    let e = PolicyConfig::from_json(&config_text(
        r#", "components": {"model_v2": 5}"#,
        RULE,
        STEP,
    ))
    .unwrap_err();
    assert_eq!(e.path, "versions[0].components.model_v2");
    let e = PolicyConfig::from_json(&config_text(r#", "components": {"a.b": 5}"#, RULE, STEP))
        .unwrap_err();
    assert_eq!(e.path, r#"versions[0].components["a.b"]"#);
    let e = Input::from_json(r#"{"kind": "tick", "at": 5, "\u001f": 1}"#).unwrap_err();
    assert_eq!(e.path, r#"["\u001f"]"#);
}
