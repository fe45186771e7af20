//! The reference runner for rollguard's language-neutral conformance vectors.
//!
//! The vectors live in `tests/vectors/<area>/<case>.json`; their format and the
//! comparison rules are specified in `tests/vectors/README.md`. This crate is the
//! reference implementation of that README: the Python and JavaScript suites do what
//! [`run_vector`] does, through their bindings, and must reach the same verdicts.
//!
//! In outline, for a *steps* vector:
//!
//! 1. create a policy from `config` (serialized to JSON text) at time `start`;
//! 2. for each step, feed `input` to the generic entry point (`handle`);
//! 3. serialize the returned `Step` to JSON and compare it with
//!    `{"at": <input time>, "decisions": [...], "events": [...]}` by [`json_eq`], or
//!    compare the refusal's `code` and `path` with the step's `error`.
//!
//! On top of that, this runner checks after every step that the policy survives a
//! snapshot round trip unchanged, that a refused input left it untouched, and that a
//! tick at the same time right after the input is a no-op; those checks need
//! `Policy: PartialEq` and `Clone`, which only Rust has.
//!
//! With `ROLLGUARD_BLESS=1`, [`run_vector`] also returns the vector with its expected
//! outputs replaced by the actual ones, and [`to_pretty`] writes it back in a stable
//! layout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rollguard::{AgentInput, Agents, AgentsStep, Input, Policy, Step};
use serde_json::{Map, Value, json};

/// The vector format this runner reads.
pub const VECTOR_FORMAT_VERSION: u64 = 1;

/// Fewer vectors than this means the walk is broken (a bad path or glob), not that the
/// suite is small: the run fails rather than passing on nothing.
pub const MIN_VECTORS: usize = 40;

/// The environment variable that turns on bless mode.
pub const BLESS_VAR: &str = "ROLLGUARD_BLESS";

/// Top-level keys of a vector, in the order files are written.
const TOP_KEYS: &[&str] = &[
    "format_version",
    "name",
    "description",
    "config",
    "agents_config",
    "config_error",
    "snapshot",
    "snapshot_text",
    "restore_error",
    "start",
    "steps",
];

/// Keys of one step, in the order files are written.
const STEP_KEYS: &[&str] = &[
    "input",
    "restore",
    "decisions",
    "events",
    "agents",
    "error",
    "assign",
    "routing_table",
];

/// Keys of one assignment check of a step's `assign`, in the order files are written.
const ASSIGN_KEYS: &[&str] = &["key", "session_started_at", "now", "expect", "error"];

/// The `tests/vectors` directory of this workspace.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

/// Every `*.json` file under `dir`, recursively, sorted by their `/`-separated path
/// relative to `dir` (so the order is the same on every platform).
///
/// # Errors
/// A directory that cannot be read.
pub fn find_vectors(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort_by_key(|p| relative_name(dir, p));
    Ok(out)
}

/// `<area>/<case>` of a vector file: its path relative to `dir`, without `.json`.
pub fn relative_name(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// What kind of vector a document is, decided by which keys it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorKind {
    /// `config`, `start`, `steps`: replay inputs and compare every step.
    Steps,
    /// `snapshot`, `steps`: restore a stored snapshot, then replay and compare.
    Restore,
    /// `config`, `config_error`: creating the policy must fail.
    ConfigError,
    /// `snapshot` or `snapshot_text`, `restore_error`: restoring must fail.
    RestoreError,
    /// `agents_config`, `start`, `steps`: per-agent policies ([`rollguard::Agents`]);
    /// each step expects `agents`, the agents with something to say.
    AgentsSteps,
    /// `agents_config`, `config_error`: creating the agents must fail.
    AgentsConfigError,
}

/// A vector that failed, with a readable explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `<area>/<case>`.
    pub name: String,
    /// What went wrong, several lines.
    pub message: String,
}

/// Runs one vector. `name` is its `<area>/<case>` from its path.
///
/// Returns `Ok(Some(blessed))` in bless mode (the vector with its expectations
/// replaced by the actual outputs), `Ok(None)` when it passed, or the failure.
///
/// # Errors
/// A [`Failure`] naming the first mismatch.
pub fn run_vector(name: &str, doc: &Value, bless: bool) -> Result<Option<Value>, Failure> {
    let fail = |message: String| Failure {
        name: name.to_string(),
        message,
    };
    let kind = check_shape(name, doc).map_err(fail)?;
    match kind {
        VectorKind::AgentsConfigError => {
            let start = doc.get("start").and_then(Value::as_u64).unwrap_or(0);
            match Agents::from_json(&doc["agents_config"].to_string(), start) {
                Ok(_) => Err(fail(format!(
                    "expected config error {}, but the config was accepted",
                    doc["config_error"]
                ))),
                Err(e) => compare_error(&doc["config_error"], &e, true)
                    .map(|()| None)
                    .map_err(|m| fail(format!("config error: {m}"))),
            }
        }
        VectorKind::AgentsSteps => {
            let start = doc["start"].as_u64().unwrap_or(0);
            let agents = Agents::from_json(&doc["agents_config"].to_string(), start)
                .map_err(|e| fail(format!("the config was refused: {e}")))?;
            run_agents_steps(agents, doc, bless).map_err(fail)
        }
        VectorKind::ConfigError => {
            let start = doc.get("start").and_then(Value::as_u64).unwrap_or(0);
            let text = doc["config"].to_string();
            match Policy::from_json(&text, start) {
                Ok(_) => Err(fail(format!(
                    "expected config error {}, but the config was accepted",
                    doc["config_error"]
                ))),
                Err(e) => compare_error(&doc["config_error"], &e, true)
                    .map(|()| None)
                    .map_err(|m| fail(format!("config error: {m}"))),
            }
        }
        VectorKind::RestoreError => {
            let text = snapshot_text(doc);
            match Policy::restore_json(&text) {
                Ok(_) => Err(fail(format!(
                    "expected restore error {}, but the snapshot was restored",
                    doc["restore_error"]
                ))),
                // The path is compared only when the vector gives one.
                Err(e) => compare_error(&doc["restore_error"], &e, false)
                    .map(|()| None)
                    .map_err(|m| fail(format!("restore error: {m}"))),
            }
        }
        VectorKind::Steps | VectorKind::Restore => {
            let policy = if kind == VectorKind::Steps {
                let start = doc["start"].as_u64().unwrap_or(0);
                Policy::from_json(&doc["config"].to_string(), start)
                    .map_err(|e| fail(format!("the config was refused: {e}")))?
            } else {
                Policy::restore_json(&snapshot_text(doc))
                    .map_err(|e| fail(format!("the snapshot was refused: {e}")))?
            };
            run_steps(policy, doc, bless).map_err(fail)
        }
    }
}

fn snapshot_text(doc: &Value) -> String {
    match (doc.get("snapshot"), doc.get("snapshot_text")) {
        (Some(v), _) => v.to_string(),
        (None, Some(Value::String(s))) => s.clone(),
        _ => String::new(),
    }
}

/// Checks the document's top level and decides its kind. Unknown keys are refused so
/// that a misspelt expectation cannot be silently ignored.
fn check_shape(name: &str, doc: &Value) -> Result<VectorKind, String> {
    let obj = doc.as_object().ok_or("a vector must be a JSON object")?;
    if let Some(k) = obj.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown top-level key {k:?}"));
    }
    if obj.get("format_version").and_then(Value::as_u64) != Some(VECTOR_FORMAT_VERSION) {
        return Err(format!("format_version must be {VECTOR_FORMAT_VERSION}"));
    }
    if obj.get("name").and_then(Value::as_str) != Some(name) {
        return Err(format!("name must be {name:?}, the file's path"));
    }
    if obj
        .get("description")
        .and_then(Value::as_str)
        .is_none_or(|d| d.trim().is_empty())
    {
        return Err("a vector needs a description".into());
    }
    let has = |k: &str| obj.contains_key(k);
    let kind = if has("agents_config") && has("config_error") {
        VectorKind::AgentsConfigError
    } else if has("agents_config") {
        VectorKind::AgentsSteps
    } else if has("config_error") {
        VectorKind::ConfigError
    } else if has("restore_error") {
        VectorKind::RestoreError
    } else if has("config") {
        VectorKind::Steps
    } else {
        VectorKind::Restore
    };
    let (required, allowed): (&[&str], &[&str]) = match kind {
        VectorKind::ConfigError => (&["config", "config_error"], &["start"]),
        VectorKind::RestoreError => (&["restore_error"], &["snapshot", "snapshot_text"]),
        VectorKind::Steps => (&["config", "start", "steps"], &[]),
        VectorKind::Restore => (&["snapshot", "steps"], &[]),
        VectorKind::AgentsSteps => (&["agents_config", "start", "steps"], &[]),
        VectorKind::AgentsConfigError => (&["agents_config", "config_error"], &["start"]),
    };
    let common = ["format_version", "name", "description"];
    for k in required {
        if !has(k) {
            return Err(format!("a {kind:?} vector needs {k:?}"));
        }
    }
    if let Some(k) = obj.keys().find(|k| {
        !common.contains(&k.as_str())
            && !required.contains(&k.as_str())
            && !allowed.contains(&k.as_str())
    }) {
        return Err(format!("{k:?} does not belong in a {kind:?} vector"));
    }
    if kind == VectorKind::RestoreError && has("snapshot") == has("snapshot_text") {
        return Err("give exactly one of snapshot and snapshot_text".into());
    }
    if has("snapshot_text") && !obj["snapshot_text"].is_string() {
        return Err("snapshot_text must be a string".into());
    }
    if has("start") && obj["start"].as_u64().is_none() {
        return Err("start must be a non-negative integer".into());
    }
    if has("steps") {
        let steps = obj["steps"].as_array().ok_or("steps must be an array")?;
        if steps.is_empty() {
            return Err("steps must not be empty".into());
        }
        let agents = kind == VectorKind::AgentsSteps;
        for (i, s) in steps.iter().enumerate() {
            check_step(s, agents).map_err(|m| format!("steps[{i}]: {m}"))?;
        }
    }
    Ok(kind)
}

fn check_step(step: &Value, agents: bool) -> Result<(), String> {
    let obj = step.as_object().ok_or("a step must be an object")?;
    if let Some(k) = obj.keys().find(|k| !STEP_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key {k:?}"));
    }
    // An agents step expects `agents`; a policy step `decisions` and `events`.
    let (theirs, mine): (&[&str], &str) = if agents {
        (
            &["decisions", "events", "assign", "routing_table"],
            "agents",
        )
    } else {
        (&["agents"], "decisions")
    };
    if let Some(k) = theirs.iter().find(|k| obj.contains_key(**k)) {
        return Err(format!(
            "{k:?} does not belong in this kind of step (it has {mine:?})"
        ));
    }
    if obj.contains_key("error") && obj.contains_key("agents") {
        return Err("a refused step has an error and no agents".into());
    }
    if let Some(list) = obj.get("agents") {
        let list = list.as_array().ok_or("agents must be an array")?;
        for (j, a) in list.iter().enumerate() {
            let a = a
                .as_object()
                .ok_or(format!("agents[{j}] must be an object"))?;
            if let Some(k) = a
                .keys()
                .find(|k| !["agent", "decisions", "events"].contains(&k.as_str()))
            {
                return Err(format!("agents[{j}]: unknown key {k:?}"));
            }
            if !a.get("agent").is_some_and(Value::is_string) {
                return Err(format!("agents[{j}] needs an agent name"));
            }
        }
    }
    if !obj.get("input").is_some_and(Value::is_object) {
        return Err("a step needs an input object".into());
    }
    if obj.contains_key("error") && (obj.contains_key("decisions") || obj.contains_key("events")) {
        return Err("a refused step has an error and no decisions or events".into());
    }
    for k in ["decisions", "events"] {
        if obj.get(k).is_some_and(|v| !v.is_array()) {
            return Err(format!("{k} must be an array"));
        }
    }
    if obj.get("restore").is_some_and(|v| !v.is_boolean()) {
        return Err("restore must be a boolean".into());
    }
    if obj.get("routing_table").is_some_and(|v| !v.is_object()) {
        return Err("routing_table must be an object".into());
    }
    if let Some(checks) = obj.get("assign") {
        let checks = checks.as_array().ok_or("assign must be an array")?;
        for (j, c) in checks.iter().enumerate() {
            check_assign_entry(c).map_err(|m| format!("assign[{j}]: {m}"))?;
        }
    }
    Ok(())
}

/// An assignment check: `key`, optional `session_started_at` and `now` (only with a
/// session), and exactly one of `expect` (an assignment object) or `error`.
fn check_assign_entry(c: &Value) -> Result<(), String> {
    let obj = c
        .as_object()
        .ok_or("an assignment check must be an object")?;
    if let Some(k) = obj.keys().find(|k| !ASSIGN_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key {k:?}"));
    }
    if !obj.get("key").is_some_and(Value::is_string) {
        return Err("key must be a string".into());
    }
    for k in ["session_started_at", "now"] {
        if obj.get(k).is_some_and(|v| v.as_u64().is_none()) {
            return Err(format!("{k} must be a non-negative integer"));
        }
    }
    if obj.contains_key("now") && !obj.contains_key("session_started_at") {
        return Err("now is given only with session_started_at".into());
    }
    if obj.contains_key("expect") == obj.contains_key("error") {
        return Err("give exactly one of expect and error".into());
    }
    if obj.get("expect").is_some_and(|v| !v.is_object()) {
        return Err("expect must be an object".into());
    }
    Ok(())
}

/// Runs a step's assignment checks on the policy as it stands after the step (and its
/// restore): `Policy::assign`, or `Policy::assign_session` when the check gives
/// `session_started_at` (with `now`, by default the policy's time). Returns the checks
/// with the actual outcomes, for blessing.
fn run_assign_checks(policy: &Policy, checks: &[Value], bless: bool) -> Result<Vec<Value>, String> {
    let mut actual_checks = Vec::with_capacity(checks.len());
    // A router holding only the routing table must answer every check as the policy.
    let table = policy.routing_table();
    for (j, c) in checks.iter().enumerate() {
        let key = c["key"].as_str().unwrap_or_default();
        let started = c.get("session_started_at").and_then(Value::as_u64);
        let result = policy.assign_maybe_pinned(key, started, c.get("now").and_then(Value::as_u64));
        let mut out = c.as_object().cloned().unwrap_or_default();
        out.remove("expect");
        out.remove("error");
        let here = |m: String| format!("assign[{j}] (key {key:?}): {m}");
        let from_table = match started {
            None => Ok(table.assign(key)),
            Some(s) => table.assign_session(
                key,
                s,
                c.get("now").and_then(Value::as_u64).unwrap_or(policy.now()),
            ),
        };
        if from_table != result {
            return Err(here(format!(
                "the routing table answers {from_table:?}, the policy {result:?}"
            )));
        }
        match result {
            Ok(a) => {
                let text = serde_json::to_string(&a).unwrap_or_default();
                let actual: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if !bless {
                    let Some(expected) = c.get("expect") else {
                        return Err(here(format!(
                            "expected the error {}, but got {}",
                            c["error"],
                            compact(&actual)
                        )));
                    };
                    if let Some(diff) = first_difference(expected, &actual) {
                        return Err(here(format!(
                            "{diff}\n--- expected\n{}\n--- actual\n{}",
                            compact(expected),
                            compact(&actual)
                        )));
                    }
                }
                out.insert("expect".into(), actual);
            }
            Err(e) => {
                if !bless {
                    match c.get("error") {
                        None => return Err(here(format!("expected an assignment, got {e}"))),
                        Some(expected) => compare_error(expected, &e, true).map_err(here)?,
                    }
                }
                out.insert(
                    "error".into(),
                    json!({"code": e.code.as_str(), "path": e.path}),
                );
            }
        }
        actual_checks.push(Value::Object(out));
    }
    Ok(actual_checks)
}

/// The time a step is expected to carry: the input's `at`, or for a batch its last
/// sample's. An empty batch carries the policy's time (`now`).
pub fn input_time(input: &Value, now: u64) -> u64 {
    input
        .get("at")
        .and_then(Value::as_u64)
        .or_else(|| {
            input
                .get("samples")
                .and_then(Value::as_array)
                .and_then(|s| s.last())
                .and_then(|s| s.get("at"))
                .and_then(Value::as_u64)
        })
        .unwrap_or(now)
}

/// The step a vector expects: `{"at", "decisions", "events"}` with omitted arrays empty.
pub fn expected_step(step: &Value, at: u64) -> Value {
    let list = |k: &str| step.get(k).cloned().unwrap_or_else(|| json!([]));
    json!({"at": at, "decisions": list("decisions"), "events": list("events")})
}

/// A step as the bindings see it: serialized to JSON text and parsed back, so that the
/// expected and the actual numbers go through the same parser.
pub fn step_json(step: &Step) -> Value {
    let text = serde_json::to_string(step).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn run_steps(mut policy: Policy, doc: &Value, bless: bool) -> Result<Option<Value>, String> {
    let steps = doc["steps"].as_array().cloned().unwrap_or_default();
    check_round_trip(&policy).map_err(|m| format!("before the first step: {m}"))?;
    let mut blessed = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let input_value = &step["input"];
        let at = input_time(input_value, policy.now());
        let where_ = |m: String| format!("steps[{i}] (input {}):\n{m}", compact(input_value));
        // The binding's generic entry point: the input as JSON, then `handle`. An input
        // that does not parse is refused like any other (`invalid_json` with a path).
        let before = policy.clone();
        let result = Input::from_json(&input_value.to_string()).and_then(|i| policy.handle(&i));
        let mut out = Map::new();
        out.insert("input".into(), input_value.clone());
        match result {
            Ok(actual) => {
                check_step_parses(&actual).map_err(where_)?;
                let actual = step_json(&actual);
                if !bless {
                    if let Some(e) = step.get("error") {
                        return Err(where_(format!(
                            "expected the error {e}, but the input was accepted:\n{}",
                            to_pretty(&actual)
                        )));
                    }
                    let expected = expected_step(step, at);
                    if let Some(diff) = first_difference(&expected, &actual) {
                        return Err(where_(format!(
                            "{diff}\n--- expected\n{}\n--- actual\n{}",
                            to_pretty(&expected),
                            to_pretty(&actual)
                        )));
                    }
                }
                for k in ["decisions", "events"] {
                    if actual[k].as_array().is_some_and(|a| !a.is_empty()) {
                        out.insert(k.into(), actual[k].clone());
                    }
                }
                check_tick_idempotent(&policy, at).map_err(where_)?;
            }
            Err(e) => {
                // A refused input must leave the policy exactly as it was.
                if policy != before || policy.snapshot() != before.snapshot() {
                    return Err(where_(format!(
                        "the input was refused ({e}) but the policy changed"
                    )));
                }
                if !bless {
                    match step.get("error") {
                        None => {
                            return Err(where_(format!(
                                "expected a step, but the input was refused: {e}"
                            )));
                        }
                        Some(expected) => compare_error(expected, &e, true).map_err(where_)?,
                    }
                }
                out.insert(
                    "error".into(),
                    json!({"code": e.code.as_str(), "path": e.path}),
                );
            }
        }
        check_round_trip(&policy).map_err(where_)?;
        if step.get("restore") == Some(&Value::Bool(true)) {
            // Continue from a policy restored from the snapshot's JSON text, as a
            // service restarting from stored state would.
            policy = Policy::restore_json(&policy.snapshot().to_json())
                .map_err(|e| where_(format!("restore failed: {e}")))?;
            out.insert("restore".into(), Value::Bool(true));
        }
        if let Some(checks) = step.get("assign").and_then(Value::as_array) {
            let actual = run_assign_checks(&policy, checks, bless).map_err(where_)?;
            out.insert("assign".into(), Value::Array(actual));
        }
        if let Some(expected) = step.get("routing_table") {
            let text = serde_json::to_string(&policy.routing_table()).unwrap_or_default();
            let actual: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if !bless && let Some(diff) = first_difference(expected, &actual) {
                return Err(where_(format!(
                    "routing_table: {diff}\n--- expected\n{}\n--- actual\n{}",
                    compact(expected),
                    compact(&actual)
                )));
            }
            out.insert("routing_table".into(), actual);
        }
        blessed.push(Value::Object(out));
    }
    if !bless {
        return Ok(None);
    }
    let mut doc = doc.clone();
    doc["steps"] = Value::Array(blessed);
    Ok(Some(doc))
}

/// The step of [`Agents`] a vector expects: `{"at", "agents": [{"agent", "step"}]}`
/// from the step's `agents` list of `{"agent", "decisions", "events"}` (omitted arrays
/// empty), every agent's step at the input's time.
pub fn expected_agents_step(step: &Value, at: u64) -> Value {
    let agents: Vec<Value> = step
        .get("agents")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| json!({"agent": a["agent"], "step": expected_step(a, at)}))
                .collect()
        })
        .unwrap_or_default();
    json!({"at": at, "agents": agents})
}

/// An [`AgentsStep`] in a vector's form: the agents' names with their non-empty
/// `decisions` and `events`.
fn agents_entries(step: &Value) -> Vec<Value> {
    let list = step["agents"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|a| {
            let mut out = Map::new();
            out.insert("agent".into(), a["agent"].clone());
            for k in ["decisions", "events"] {
                if a["step"][k].as_array().is_some_and(|x| !x.is_empty()) {
                    out.insert(k.into(), a["step"][k].clone());
                }
            }
            Value::Object(out)
        })
        .collect()
}

fn run_agents_steps(mut agents: Agents, doc: &Value, bless: bool) -> Result<Option<Value>, String> {
    let steps = doc["steps"].as_array().cloned().unwrap_or_default();
    check_agents_round_trip(&agents).map_err(|m| format!("before the first step: {m}"))?;
    let mut blessed = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let input_value = &step["input"];
        let at = input_time(input_value, agents.now());
        let where_ = |m: String| format!("steps[{i}] (input {}):\n{m}", compact(input_value));
        let before = agents.clone();
        let result =
            AgentInput::from_json(&input_value.to_string()).and_then(|i| agents.handle(&i));
        let mut out = Map::new();
        out.insert("input".into(), input_value.clone());
        match result {
            Ok(actual) => {
                let text = serde_json::to_string(&actual).unwrap_or_default();
                if serde_json::from_str::<AgentsStep>(&text).ok().as_ref() != Some(&actual) {
                    return Err(where_("the step's JSON does not parse back into it".into()));
                }
                let actual: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if !bless {
                    if let Some(e) = step.get("error") {
                        return Err(where_(format!(
                            "expected the error {e}, but the input was accepted:\n{}",
                            to_pretty(&actual)
                        )));
                    }
                    let expected = expected_agents_step(step, at);
                    if let Some(diff) = first_difference(&expected, &actual) {
                        return Err(where_(format!(
                            "{diff}\n--- expected\n{}\n--- actual\n{}",
                            to_pretty(&expected),
                            to_pretty(&actual)
                        )));
                    }
                }
                let entries = agents_entries(&actual);
                if !entries.is_empty() {
                    out.insert("agents".into(), Value::Array(entries));
                }
                let mut copy = agents.clone();
                let at = at.max(agents.now());
                match copy.tick(at) {
                    Ok(s) if s.is_empty() && copy == agents => {}
                    Ok(s) => {
                        return Err(where_(format!(
                            "a tick at {at} right after this input was not a no-op: {}",
                            serde_json::to_string(&s).unwrap_or_default()
                        )));
                    }
                    Err(e) => return Err(where_(format!("a tick at {at} failed: {e}"))),
                }
            }
            Err(e) => {
                if agents != before || agents.snapshot() != before.snapshot() {
                    return Err(where_(format!(
                        "the input was refused ({e}) but an agent changed"
                    )));
                }
                if !bless {
                    match step.get("error") {
                        None => {
                            return Err(where_(format!(
                                "expected a step, but the input was refused: {e}"
                            )));
                        }
                        Some(expected) => compare_error(expected, &e, true).map_err(where_)?,
                    }
                }
                out.insert(
                    "error".into(),
                    json!({"code": e.code.as_str(), "path": e.path}),
                );
            }
        }
        check_agents_round_trip(&agents).map_err(where_)?;
        if step.get("restore") == Some(&Value::Bool(true)) {
            agents = Agents::restore_json(&agents.snapshot().to_json())
                .map_err(|e| where_(format!("restore failed: {e}")))?;
            out.insert("restore".into(), Value::Bool(true));
        }
        blessed.push(Value::Object(out));
    }
    if !bless {
        return Ok(None);
    }
    let mut doc = doc.clone();
    doc["steps"] = Value::Array(blessed);
    Ok(Some(doc))
}

/// `Agents::restore(snapshot())` must give back equal agents.
fn check_agents_round_trip(agents: &Agents) -> Result<(), String> {
    let text = agents.snapshot().to_json();
    match Agents::restore_json(&text) {
        Ok(restored) if restored == *agents => Ok(()),
        Ok(restored) => Err(format!(
            "restoring the snapshot gave different agents:\n{}",
            text_difference(&text, &restored.snapshot().to_json())
        )),
        Err(e) => Err(format!("the agents' own snapshot was refused: {e}")),
    }
}

/// A step's JSON must parse back into the same step. Gate reports write their per-kind
/// evidence as untagged fields, so this is what catches a report read back as another
/// kind (serde tries the variants in order).
fn check_step_parses(step: &Step) -> Result<(), String> {
    let text = serde_json::to_string(step).map_err(|e| format!("step not serialized: {e}"))?;
    match serde_json::from_str::<Step>(&text) {
        Ok(parsed) if parsed == *step => Ok(()),
        Ok(parsed) => Err(format!(
            "the step's JSON parses back into another step:\n{}",
            text_difference(&text, &serde_json::to_string(&parsed).unwrap_or_default())
        )),
        Err(e) => Err(format!("the step's JSON does not parse back: {e}")),
    }
}

/// `restore(snapshot())` must give back an equal policy.
fn check_round_trip(policy: &Policy) -> Result<(), String> {
    let text = policy.snapshot().to_json();
    match Policy::restore_json(&text) {
        Ok(restored) if restored == *policy => Ok(()),
        Ok(restored) => Err(format!(
            "restoring the snapshot gave a different policy:\n{}",
            text_difference(&text, &restored.snapshot().to_json())
        )),
        Err(e) => Err(format!("the policy's own snapshot was refused: {e}")),
    }
}

/// Where two texts first differ, with some context. Snapshots are compared as text, not
/// as parsed JSON: a float that does not survive parsing would compare equal after it.
fn text_difference(a: &str, b: &str) -> String {
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    let context = |s: &str| {
        let mut from = at.saturating_sub(60).min(s.len());
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        let mut to = (at + 60).min(s.len());
        while !s.is_char_boundary(to) {
            to += 1;
        }
        s[from..to].to_string()
    };
    format!(
        "  original: ...{}...\n  restored: ...{}...",
        context(a),
        context(b)
    )
}

/// Every input fires the timers due by its time, so a tick at the same time right after
/// it must be empty and change nothing. Checked on a copy, so the vector's own inputs
/// are all that drive the policy.
fn check_tick_idempotent(policy: &Policy, at: u64) -> Result<(), String> {
    let mut copy = policy.clone();
    let at = at.max(policy.now());
    match copy.tick(at) {
        Ok(step) if step.is_empty() && copy == *policy => Ok(()),
        Ok(step) => Err(format!(
            "a tick at {at} right after this input was not a no-op: {}",
            step_json(&step)
        )),
        Err(e) => Err(format!("a tick at {at} right after this input failed: {e}")),
    }
}

/// Compares a refusal with `{"code", "path"}`. The message is never compared. The path
/// is compared when `path_required` or when the expectation gives one.
fn compare_error(
    expected: &Value,
    actual: &rollguard::Error,
    path_required: bool,
) -> Result<(), String> {
    let code = expected.get("code").and_then(Value::as_str);
    let path = expected.get("path").and_then(Value::as_str);
    if path_required && path.is_none() {
        return Err(format!("the expected error {expected} has no path"));
    }
    if code != Some(actual.code.as_str()) || path.is_some_and(|p| p != actual.path) {
        return Err(format!(
            "expected error {expected}, got {{\"code\": {:?}, \"path\": {:?}}} ({})",
            actual.code.as_str(),
            actual.path,
            actual.message
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------- comparison

/// JSON equality where numbers compare by value (`1` equals `1.0`) and key order is
/// irrelevant. Integers compare exactly; a float compares with anything as an `f64`.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    first_difference(a, b).is_none()
}

fn numbers_eq(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_u64(), b.as_u64(), a.as_i64(), b.as_i64()) {
        (Some(x), Some(y), ..) => x == y,
        (.., Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// The first place where `expected` and `actual` differ, as a sentence naming its JSON
/// path and both values; `None` when they are equal under [`json_eq`].
pub fn first_difference(expected: &Value, actual: &Value) -> Option<String> {
    fn go(path: &mut String, e: &Value, a: &Value) -> Option<String> {
        let here = |path: &str| if path.is_empty() { "(root)" } else { path }.to_string();
        match (e, a) {
            (Value::Number(x), Value::Number(y)) if numbers_eq(x, y) => None,
            (Value::Object(x), Value::Object(y)) => {
                // Keys in sorted order, so the first difference reported is stable.
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    let d = match (x.get(k), y.get(k)) {
                        (Some(ev), Some(av)) => go(path, ev, av),
                        (Some(ev), None) => Some(format!(
                            "at {}: expected {}, actual has no such key",
                            here(path),
                            compact(ev)
                        )),
                        (None, Some(av)) => Some(format!(
                            "at {}: unexpected key, actual {}",
                            here(path),
                            compact(av)
                        )),
                        (None, None) => None,
                    };
                    path.truncate(len);
                    if d.is_some() {
                        return d;
                    }
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (ev, av)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    let d = go(path, ev, av);
                    path.truncate(len);
                    if d.is_some() {
                        return d;
                    }
                }
                (x.len() != y.len()).then(|| {
                    let extra = if x.len() > y.len() {
                        format!("missing {}", compact(&x[y.len()]))
                    } else {
                        format!("unexpected {}", compact(&y[x.len()]))
                    };
                    format!(
                        "at {}: expected {} items, actual {} ({extra})",
                        here(path),
                        x.len(),
                        y.len()
                    )
                })
            }
            _ if e == a => None,
            _ => Some(format!(
                "at {}: expected {}, actual {}",
                here(path),
                compact(e),
                compact(a)
            )),
        }
    }
    go(&mut String::new(), expected, actual)
}

// ---------------------------------------------------------------------- printing

/// Keys printed first, in this order, wherever they appear outside the two levels
/// below; every other key follows in alphabetical order. The order only serves
/// readers: comparisons ignore it.
const KEY_ORDER: &[&str] = &[
    "format_version",
    "name",
    "kind",
    "at",
    "gate",
    "arm",
    "metric",
    "value",
    "decisions",
    "events",
    "total",
    "id",
    "digest",
    "validated",
    "versions",
    "stable",
    "candidate",
    "previous",
    "golden",
    "metrics",
    "window_ms",
    "gates",
    "strategy",
    "analysis",
    "approval",
    "safety",
    "limits",
    "stat",
    "rule",
    "verdict",
];

/// The key order of an object: a vector's top level and its steps have their own.
fn key_order(m: &Map<String, Value>) -> &'static [&'static str] {
    if m.contains_key("description") {
        TOP_KEYS
    } else if m.contains_key("input") {
        STEP_KEYS
    } else if m.contains_key("key") && (m.contains_key("expect") || m.contains_key("error")) {
        ASSIGN_KEYS
    } else {
        KEY_ORDER
    }
}

fn sorted_entries(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let order = key_order(m);
    let rank = |k: &str| {
        (
            order.iter().position(|x| *x == k).unwrap_or(order.len()),
            k.to_string(),
        )
    };
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_by_cached_key(|(k, _)| rank(k));
    entries
}

/// One-line JSON with `", "` and `": "` separators and the stable key order.
pub fn compact(v: &Value) -> String {
    let mut s = String::new();
    write_compact(v, &mut s);
    s
}

fn write_compact(v: &Value, out: &mut String) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in sorted_entries(m).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_compact(x, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Widest line the pretty printer keeps a container on.
const WIDTH: usize = 100;

/// Pretty JSON with 2-space indentation and the stable key order; a container whose
/// one-line form fits in the line (100 columns) stays on one line. Ends with a newline.
pub fn to_pretty(v: &Value) -> String {
    let mut s = String::new();
    write_pretty(v, 0, 0, &mut s);
    s.push('\n');
    s
}

/// `prefix` is the width already taken on the current line (indent plus key).
fn write_pretty(v: &Value, indent: usize, prefix: usize, out: &mut String) {
    let one_line = compact(v);
    let is_container = matches!(v, Value::Array(_) | Value::Object(_));
    // Strictly below the width: a trailing comma may follow.
    if !is_container || prefix + one_line.len() < WIDTH {
        out.push_str(&one_line);
        return;
    }
    let pad = " ".repeat(indent + 2);
    match v {
        Value::Array(a) => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad);
                write_pretty(x, indent + 2, indent + 2, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
        }
        Value::Object(m) => {
            out.push_str("{\n");
            let entries = sorted_entries(m);
            for (i, (k, x)) in entries.iter().enumerate() {
                let key = format!("{}: ", Value::String((*k).clone()));
                out.push_str(&pad);
                out.push_str(&key);
                write_pretty(x, indent + 2, indent + 2 + key.len(), out);
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
        }
        _ => {}
    }
    out.push_str(&" ".repeat(indent));
    out.push(if v.is_array() { ']' } else { '}' });
}

/// The first key that some object of `text` repeats, quoted, if any (`None` too for
/// text that is not JSON). A vector file must not repeat a key: every runner reads it as
/// parsed JSON, which keeps only one of them. The check is the core's
/// ([`rollguard::repeated_key`]).
pub fn repeated_key(text: &str) -> Option<String> {
    rollguard::repeated_key(text).map(|key| format!("{key:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_keys_by_name() {
        assert!(json_eq(
            &json!({"a": 1, "b": [2.0]}),
            &json!({"b": [2], "a": 1.0})
        ));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1.5})));
        assert!(!json_eq(&json!([1, 2]), &json!([1, 2, 3])));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": null})));
        // Large integers compare exactly, not through f64.
        assert!(!json_eq(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992_u64)
        ));
    }

    #[test]
    fn differences_name_their_path() {
        let d = first_difference(
            &json!({"decisions": [{"kind": "hold", "at": 1}]}),
            &json!({"decisions": [{"kind": "rollback", "at": 1}]}),
        );
        assert_eq!(
            d.as_deref(),
            Some("at decisions[0].kind: expected \"hold\", actual \"rollback\"")
        );
        let d = first_difference(&json!({"events": []}), &json!({"events": [{"kind": "x"}]}));
        assert!(d.unwrap().contains("expected 0 items, actual 1"));
    }

    #[test]
    fn pretty_printing_is_stable_and_reparses() {
        let v = json!({"steps": [{"input": {"at": 5, "kind": "tick"}}], "name": "a/b",
                       "format_version": 1, "long": "x".repeat(120)});
        let s = to_pretty(&v);
        assert!(s.starts_with("{\n  \"format_version\": 1,\n  \"name\": \"a/b\",\n"));
        assert!(s.contains("{\"input\": {\"kind\": \"tick\", \"at\": 5}}"));
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
        assert_eq!(to_pretty(&serde_json::from_str(&s).unwrap()), s);
    }

    #[test]
    fn input_time_of_a_batch_is_its_last_sample() {
        let batch = json!({"kind": "observe_batch", "samples": [{"at": 3}, {"at": 7}]});
        assert_eq!(input_time(&batch, 1), 7);
        assert_eq!(
            input_time(&json!({"kind": "observe_batch", "samples": []}), 4),
            4
        );
        assert_eq!(input_time(&json!({"kind": "tick", "at": 9}), 4), 9);
    }
}
