//! Runs the built `rollguard` binary and checks what it does, not how it is written:
//! the demo's trace really holds a caught regression, samples files replay with
//! auto-acks, and bad input fails with the documented exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

use rollguard::{Action, Input, Reason, Scenario, TraceEntry};

fn rollguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 output")
}

/// Parses JSON-lines output into trace entries; every line must be one.
fn trace(o: &Output) -> Vec<TraceEntry> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A file in this test's scratch directory.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rollguard-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The automated rollbacks of a trace: (decision time, from, reason, onset estimate).
fn rollbacks(trace: &[TraceEntry]) -> Vec<(u64, String, Reason, Option<u64>)> {
    trace
        .iter()
        .filter_map(|e| e.step.as_ref())
        .flat_map(|s| &s.decisions)
        .filter_map(|d| match &d.action {
            Action::Rollback {
                from,
                automated: true,
                degradation_started_at,
                ..
            } => Some((d.at, from.clone(), d.reason, *degradation_started_at)),
            _ => None,
        })
        .collect()
}

/// `- onset VERSION METRIC MS` lines of a scenario description.
fn onsets(description: &str) -> Vec<(String, u64)> {
    description
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("- onset ")?.split_whitespace();
            let version = w.next()?.to_string();
            let _metric = w.next()?;
            Some((version, w.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn demo_trace_shows_regressions_caught_near_their_documented_onsets() {
    let scenario_out = rollguard(&["demo", "--print-scenario"]);
    assert!(scenario_out.status.success());
    let scenario = Scenario::from_json(&stdout(&scenario_out)).expect("a scenario");
    let onsets = onsets(&scenario.description);
    assert_eq!(onsets.len(), 2, "{}", scenario.description);

    let out = rollguard(&["demo", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trace = trace(&out);
    let rollbacks = rollbacks(&trace);
    assert_eq!(rollbacks.len(), 2, "{rollbacks:?}");
    for ((at, from, _, estimate), (version, onset)) in rollbacks.iter().zip(&onsets) {
        let onset = scenario.start + onset;
        assert_eq!(from, version);
        let estimate = estimate.expect("gate-driven rollbacks estimate the onset");
        assert!(
            estimate.abs_diff(onset) <= 60_000,
            "{from}: estimate {estimate}, onset {onset}"
        );
        assert!(
            *at > onset,
            "{from} rolled back before its regression began"
        );
    }
    // The first is caught by its gate within minutes; the second waits for the
    // cooldown and trips the breaker.
    assert_eq!(rollbacks[0].2, Reason::GateFailed);
    assert!(rollbacks[0].0 - (scenario.start + onsets[0].1) <= 5 * 60_000);
    assert_eq!(rollbacks[1].2, Reason::BreakerTripped);
    let held = trace
        .iter()
        .filter_map(|e| e.step.as_ref())
        .flat_map(|s| &s.decisions)
        .any(|d| matches!(d.action, Action::Hold {}) && d.reason == Reason::CooldownActive);
    assert!(held);
    // The operator's refused command is part of the trace.
    let refused: Vec<&TraceEntry> = trace.iter().filter(|e| e.error.is_some()).collect();
    assert_eq!(refused.len(), 1);
    assert!(matches!(refused[0].input, Input::StartRollout { .. }));
    assert_eq!(
        refused[0].error.as_ref().unwrap().code.as_str(),
        "breaker_open"
    );
}

#[test]
fn demo_story_fits_two_screens_and_names_the_rollback() {
    let out = rollguard(&["demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().count() <= 100, "{text}");
    assert!(
        text.contains("known regression onset: v3 latency_ms"),
        "{text}"
    );
    assert!(text.contains("<< ROLLBACK v3 -> v2"), "{text}");
    assert!(text.contains("degradation started ~1:34:00"), "{text}");
    assert!(text.contains("CIRCUIT BREAKER TRIPPED"), "{text}");
    assert!(text.contains("What happened"), "{text}");
    // v3's side effects are compensated after its rollback, newest first, each
    // acknowledged, and the summary counts them.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"))
    };
    let order = [
        "v3 caused side effect email-batch-7",
        "v3 caused side effect crm-note-1042",
        "<< ROLLBACK v3 -> v2",
        ">> COMPENSATE v3's side effect crm-note-1042",
        "undo: {\"op\":\"delete_note\",\"ticket\":1042}",
        "ok v3's side effect crm-note-1042 compensated",
        ">> COMPENSATE v3's side effect email-batch-7",
        "ok v3's side effect email-batch-7 compensated",
        "-> 2 side effects compensated by 1:36:12 (crm-note-1042, email-batch-7)",
    ];
    for pair in order.windows(2) {
        assert!(at(pair[0]) < at(pair[1]), "{pair:?} out of order:\n{text}");
    }
}

#[test]
fn explain_tells_any_scenario_file_as_demo_tells_the_bundled_one() {
    let scenario = rollguard(&["demo", "--print-scenario"]);
    let path = scratch("explained.json", &stdout(&scenario));
    let path = path.to_str().unwrap();
    let demo = stdout(&rollguard(&["demo"]));
    let out = rollguard(&["explain", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (demo_lines, lines): (Vec<_>, Vec<_>) = (demo.lines().collect(), text.lines().collect());
    assert_eq!(lines.len(), demo_lines.len(), "{text}");
    // The same story, told by another command.
    assert!(
        lines[0].starts_with(&format!("rollguard explain {path}: ")),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1..lines.len() - 1],
        demo_lines[1..demo_lines.len() - 1]
    );
    assert!(
        lines[lines.len() - 1].contains(&format!("`rollguard replay {path} --all` prints")),
        "{}",
        lines[lines.len() - 1]
    );
    // A file that is not a scenario is bad input (exit code 2), with its path.
    let bad = scratch(
        "not-a-scenario.json",
        r#"{"format_version": 1, "inputs": 3}"#,
    );
    let out = rollguard(&["explain", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn demo_statistical_tells_each_kinds_rule_and_evidence() {
    let out = rollguard(&["demo", "--statistical"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("rollguard demo --statistical: "), "{text}");
    // Every gate's rule in words: no kind falls back to "(custom rule)".
    assert!(!text.contains("custom rule"), "{text}");
    for rule in [
        "each error attributed to an arm by the traffic split",
        "rate errors: fails once shown above 1.00% (anytime-valid, alpha 0.01)",
        "mean latency_ms: fails once shown higher than the baseline's by more than 5.00",
        "p99 latency_ms: fails once shown higher than the baseline's by more than 10%",
        "Kayenta score of 2 member gates",
        "tool: population stability index against the baseline's distribution; fails above 0.25",
        "latency_ms: cusum of higher samples against its reference 120.0 ± 12.00, tuned for 1 sd",
        "latency_ms: EWMA (lambda 0.1) of higher samples",
    ] {
        assert!(text.contains(rule), "{rule:?} in\n{text}");
    }
    // Both rollbacks with their evidence.
    assert!(text.contains("<< ROLLBACK v2 -> v1"), "{text}");
    assert!(text.contains("gate latency_cusum TRIPPED"), "{text}");
    assert!(text.contains("<< ROLLBACK v3 -> v1"), "{text}");
    assert!(text.contains("(boundary ln(1/α) 4.61)"), "{text}");
    assert!(
        text.contains("`rollguard demo --statistical --json` prints"),
        "{text}"
    );
    // And its trace is the scenario's.
    let json = rollguard(&["demo", "--statistical", "--json"]);
    assert!(rollbacks(&trace(&json)).len() == 2);
}

#[test]
fn demo_tenants_names_the_tenants_held_for_and_rolled_back_for() {
    let out = rollguard(&["demo", "--tenants"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("rollguard demo --tenants: "), "{text}");
    // The silver tenant: held and paged, naming it; the gold tenant: rolled back, naming it.
    assert!(
        text.contains("gate failure_rate in tenant=globex TRIPPED"),
        "{text}"
    );
    assert!(text.contains("HOLD, no rollback: scoped_failure"), "{text}");
    assert!(
        text.contains("failing in scopes tenant=globex, below the impact rule"),
        "{text}"
    );
    assert!(text.contains("<< ROLLBACK v3 -> v2"), "{text}");
    assert!(
        text.contains("failure_rate in tenant=acme: rate failed_conversations"),
        "{text}"
    );
    assert!(
        text.contains("`rollguard demo --tenants --json` prints"),
        "{text}"
    );
    // Its trace is the bundled file's: v3 rolled back once, v2 never; the scenario
    // printed replays to the same trace.
    let json = rollguard(&["demo", "--tenants", "--json"]);
    let rolled: Vec<String> = rollbacks(&trace(&json)).into_iter().map(|r| r.1).collect();
    assert_eq!(rolled, ["v3"]);
    let printed = rollguard(&["demo", "--tenants", "--print-scenario"]);
    let file = scratch("tenants.json", &stdout(&printed));
    assert_eq!(
        rollguard(&["replay", file.to_str().unwrap()]).stdout,
        json.stdout
    );
    // One bundled scenario at a time.
    let both = rollguard(&["demo", "--tenants", "--statistical"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

#[test]
fn replaying_the_scenario_file_gives_the_demo_trace() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/demo.json"
    );
    let replayed = rollguard(&["replay", file]);
    let demo = rollguard(&["demo", "--json"]);
    assert!(replayed.status.success());
    assert_eq!(replayed.stdout, demo.stdout);
    // Only entries that carry something by default; one per input with --all.
    let all = rollguard(&["replay", file, "--all"]);
    let inputs = Scenario::from_json(&std::fs::read_to_string(file).unwrap())
        .unwrap()
        .inputs
        .len();
    assert_eq!(trace(&all).len(), inputs);
    assert!(trace(&replayed).len() < inputs);
    for e in trace(&replayed) {
        assert!(e.error.is_some() || !e.step.unwrap().is_empty());
    }
}

const POLICY: &str = r#"{
  "format_version": 1,
  "versions": [{"id": "v1", "digest": "sha256:01", "validated": true},
               {"id": "v2", "digest": "sha256:02"}],
  "stable": "v1", "candidate": "v2",
  "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6},
              {"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6}],
  "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
             "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 5}],
  "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 600000}]},
  "analysis": {"interval_ms": 30000}
}"#;

/// v2's latency triples 100 s in (at 1 100 000 ms); samples every 5 s, with empty
/// cells for the fields a row does not use.
fn metrics_csv() -> String {
    let mut csv = String::from("at,arm,metric,value,events,total,tenant,tier,agent\n");
    for i in 0..60u64 {
        let at = 1_000_000 + i * 5_000;
        let v2 = if at >= 1_100_000 { 300 } else { 100 };
        csv.push_str(&format!("{at},v1,latency_ms,100,,,,,\n"));
        csv.push_str(&format!("{at},v2,latency_ms,{v2},,,acme,gold,\n"));
        csv.push_str(&format!("{at},v2,errors,,1,50,,,\n"));
    }
    csv
}

#[test]
fn csv_samples_replay_with_auto_acks_and_roll_back() {
    let policy = scratch("policy.json", POLICY);
    let csv = scratch("metrics.csv", &metrics_csv());
    let (policy, csv) = (policy.to_str().unwrap(), csv.to_str().unwrap());
    let out = rollguard(&["replay", "--policy", policy, "--samples", csv, "--summary"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trace = trace(&out);

    // The set_weight action was acknowledged by the CLI, at once, and shows in the trace.
    let acks: Vec<&TraceEntry> = trace
        .iter()
        .filter(|e| matches!(e.input, Input::Ack { .. }))
        .collect();
    assert_eq!(acks.len(), 2, "set_weight and rollback");
    assert!(acks.iter().all(|a| a.error.is_none()));
    assert_eq!(acks[0].input.at(), Some(1_000_000));

    let rollbacks = rollbacks(&trace);
    assert_eq!(rollbacks.len(), 1);
    let (at, from, reason, estimate) = &rollbacks[0];
    assert_eq!((from.as_str(), *reason), ("v2", Reason::GateFailed));
    assert!(
        estimate.unwrap().abs_diff(1_100_000) <= 10_000,
        "{estimate:?}"
    );
    assert!(*at > 1_100_000);

    let summary = stderr(&out);
    assert!(
        summary.contains("summary: 182 inputs, 0 refused"),
        "{summary}"
    );
    assert!(summary.contains("auto-acks: 2"), "{summary}");
    assert!(summary.contains("rollback 1"), "{summary}");
    assert!(summary.contains("final: stable v1"), "{summary}");
    assert!(
        !summary.contains("warning"),
        "nothing was refused: {summary}"
    );
}

#[test]
fn a_batch_on_the_first_line_starts_the_policy_at_its_first_sample() {
    let policy = scratch("policy-batch-first.json", POLICY);
    let batch = (0..6u64)
        .map(|i| {
            format!(
                r#"{{"at":{},"arm":"v1","metric":"latency_ms","value":100}}"#,
                5_000 + i * 1_000
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let lines = [
        format!(r#"{{"kind":"observe_batch","samples":[{batch}]}}"#),
        r#"{"at":20000,"arm":"v2","metric":"latency_ms","value":100}"#.to_string(),
    ];
    let samples = scratch("batch-first.jsonl", &lines.join("\n"));
    let out = rollguard(&[
        "replay",
        "--policy",
        policy.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
        "--all",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let trace = trace(&out);
    assert!(matches!(trace[0].input, Input::ObserveBatch { .. }));
    assert!(trace.iter().all(|e| e.error.is_none()), "{trace:?}");
    // The rollout started at the first sample's time, 5 s.
    let started = trace[0].step.as_ref().unwrap();
    assert_eq!(started.decisions[0].at, 5_000);
}

/// A policy file and a JSONL file whose third line the policy refuses.
fn with_a_refusal(name: &str) -> (PathBuf, PathBuf) {
    let lines = [
        r#"{"at":0,"arm":"v1","metric":"latency_ms","value":100}"#,
        r#"{"at":1000,"arm":"v2","metric":"latency_ms","value":100}"#,
        r#"{"at":2000,"arm":"v2","metric":"errors","events":5,"total":1}"#,
        r#"{"at":3000,"arm":"v2","metric":"errors","events":1,"total":5}"#,
    ];
    (
        scratch(&format!("{name}-policy.json"), POLICY),
        scratch(&format!("{name}.jsonl"), &lines.join("\n")),
    )
}

#[test]
fn refused_inputs_are_counted_on_stderr() {
    let (policy, samples) = with_a_refusal("refused-note");
    let out = rollguard(&[
        "replay",
        "--policy",
        policy.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Four lines and the auto-ack of the rollout's first action.
    assert_eq!(
        stderr(&out).trim(),
        "warning: 1 of 5 inputs refused, the first: line 3 (observe v2 errors at 0:00:02): \
         events_exceed_total at events: events 5 exceed total 1 \
         (--strict makes this an error)"
    );
    assert_eq!(trace(&out).iter().filter(|e| e.error.is_some()).count(), 1);
}

#[test]
fn strict_fails_a_replay_with_any_refused_input_after_printing_its_trace() {
    let (policy, samples) = with_a_refusal("refused-strict");
    let (policy, samples) = (policy.to_str().unwrap(), samples.to_str().unwrap());
    let out = rollguard(&[
        "replay",
        "--policy",
        policy,
        "--samples",
        samples,
        "--strict",
        "--all",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: inputs_refused: 1 of 5 inputs refused, the first: line 3 "),
        "{err}"
    );
    assert_eq!(trace(&out).len(), 5);

    // A scenario too: the demo's operator command that the open breaker refuses.
    let demo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/demo.json"
    );
    let out = rollguard(&["replay", demo]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).starts_with("warning: 1 of "),
        "{}",
        stderr(&out)
    );
    let strict = rollguard(&["replay", demo, "--strict"]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(stderr(&strict).starts_with("error: inputs_refused: 1 of "));
    assert_eq!(strict.stdout, out.stdout);
}

#[test]
fn without_auto_ack_nothing_moves() {
    let policy = scratch("policy-noack.json", POLICY);
    let csv = scratch("metrics-noack.csv", &metrics_csv());
    let out = rollguard(&[
        "replay",
        "--policy",
        policy.to_str().unwrap(),
        "--samples",
        csv.to_str().unwrap(),
        "--no-auto-ack",
        "--all",
    ]);
    assert!(out.status.success());
    let trace = trace(&out);
    assert_eq!(trace.len(), 180);
    assert!(!trace.iter().any(|e| matches!(e.input, Input::Ack { .. })));
    assert!(rollbacks(&trace).is_empty());
}

#[test]
fn jsonl_samples_mix_inputs_and_bare_samples() {
    let policy = scratch("policy-jsonl.json", POLICY);
    let lines = [
        r#"{"at":0,"arm":"v1","metric":"latency_ms","value":100}"#,
        "",
        r#"{"kind":"observe","at":1000,"arm":"v2","metric":"latency_ms","value":100}"#,
        r#"{"kind":"pause","at":2000}"#,
        r#"{"at":3000,"arm":"v2","metric":"errors","events":5,"total":1}"#,
    ];
    let samples = scratch("samples.jsonl", &lines.join("\n"));
    let out = rollguard(&[
        "replay",
        "--policy",
        policy.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
        "--all",
        "--start",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trace = trace(&out);
    // Four lines of the file and one auto-ack after the first.
    assert_eq!(trace.len(), 5);
    assert!(matches!(trace[1].input, Input::Ack { .. }));
    assert!(matches!(trace[3].input, Input::Pause { .. }));
    // A parsed sample the policy refuses is a trace entry, not a failure.
    assert_eq!(
        trace[4].error.as_ref().unwrap().code.as_str(),
        "events_exceed_total"
    );
}

#[test]
fn a_bad_line_stops_with_its_line_number_and_exit_code_2() {
    let policy = scratch("policy-bad.json", POLICY);
    let mut csv = metrics_csv();
    csv.push_str("1300000,v1,latency_ms,fast,,,,,\n");
    let csv = scratch("bad.csv", &csv);
    let out = rollguard(&[
        "replay",
        "--policy",
        policy.to_str().unwrap(),
        "--samples",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        r#"error: invalid_csv at line 182 (value): cannot read "fast" as a number"#
    );
    // What was replayed before the bad line was printed.
    assert!(!trace(&out).is_empty());
}

/// An `observe_batch` of `n` samples of v1's latency from 1 s on, as one JSON line.
fn batch_line(n: u64) -> String {
    let samples: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"at":{},"arm":"v1","metric":"latency_ms","value":100}}"#,
                1_000 + i
            )
        })
        .collect();
    format!(
        r#"{{"kind":"observe_batch","samples":[{}]}}"#,
        samples.join(",")
    )
}

#[test]
fn one_huge_line_or_input_is_refused_by_its_length() {
    let policy = scratch("policy-long.json", POLICY);
    let policy = policy.to_str().unwrap();
    let batch = batch_line(100); // 5.6 KB
    let lines = [batch_line(2), batch.clone()].join("\n");
    let samples = scratch("long.jsonl", &lines);
    let replay = |max: &str| {
        rollguard(&[
            "replay",
            "--policy",
            policy,
            "--samples",
            samples.to_str().unwrap(),
            "--max-input-bytes",
            max,
        ])
    };
    let out = replay("4096");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: input_too_long at line 2: longer than 4096 bytes (--max-input-bytes raises the limit)"
    );
    assert_eq!(
        trace(&out).len(),
        2,
        "line 1 and its auto-ack were replayed"
    );
    assert!(replay("8192").status.success());

    // A scenario's inputs are bounded the same way, one by one.
    let scenario = format!(
        r#"{{"format_version": 1, "start": 0, "config": {POLICY}, "inputs": [{}, {batch}]}}"#,
        batch_line(2)
    );
    let file = scratch("long-scenario.json", &scenario);
    let file = file.to_str().unwrap();
    let out = rollguard(&["replay", file, "--max-input-bytes", "4096", "--all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: input_too_long at inputs[1]: longer than 4096 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(trace(&out).len(), 1, "the input before it was replayed");
    let out = rollguard(&["replay", file, "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(trace(&out).len(), 2);
}

#[test]
fn a_policy_file_longer_than_the_limit_is_refused_unread() {
    // Padded with spaces after the document: valid JSON, 5 KB.
    let padded = format!("{POLICY}{}", " ".repeat(5_000));
    let policy = scratch("policy-padded.json", &padded);
    let policy = policy.to_str().unwrap();
    let out = rollguard(&["validate", policy, "--max-input-bytes", "4096"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: input_too_long at "),
        "{}",
        stderr(&out)
    );
    assert!(rollguard(&["validate", policy]).status.success());

    let samples = scratch("padded.jsonl", &batch_line(2));
    let samples = samples.to_str().unwrap();
    let replay = |max: &str| {
        rollguard(&[
            "replay",
            "--policy",
            policy,
            "--samples",
            samples,
            "--max-input-bytes",
            max,
        ])
    };
    let out = replay("4096");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("input_too_long"), "{}", stderr(&out));
    assert!(trace(&out).is_empty());
    assert!(replay("8192").status.success());
}

#[test]
fn a_scenario_replays_alike_whatever_the_order_of_its_fields() {
    let demo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scenarios/demo.json"
    );
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo).unwrap()).unwrap();
    // `inputs` first: they are held until the config and start are read.
    let inputs = value.as_object_mut().unwrap().remove("inputs").unwrap();
    let rest = value.to_string();
    let text = format!("{{\"inputs\":{inputs},{}", &rest[1..]);
    let file = scratch("inputs-first.json", &text);
    let out = rollguard(&["replay", file.to_str().unwrap(), "--all"]);
    let streamed = rollguard(&["replay", demo, "--all"]);
    assert!(out.status.success() && streamed.status.success());
    assert_eq!(out.stdout, streamed.stdout);
}

#[test]
fn validate_prints_ok_or_the_error_with_exit_codes() {
    let good = scratch("good.json", POLICY);
    let out = rollguard(&["validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).lines().next(), Some("ok"));

    let bad = scratch(
        "bad-weight.json",
        &POLICY.replace("\"weight\": 10", "\"weight\": 0"),
    );
    let out = rollguard(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: weight_out_of_range at strategy.steps[0].weight: weight 0 is not in 1..=100"
    );

    let out = rollguard(&["validate", "/nonexistent/policy.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: io at /nonexistent/policy.json: "));
}

#[test]
fn validate_prints_the_worst_case_state_and_work_against_the_limits() {
    let config = rollguard::PolicyConfig::from_json(POLICY).unwrap();
    let f = config.footprint();
    let good = scratch("figures.json", POLICY);
    let out = rollguard(&["validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "ok");
    for (line, name, figure, limit) in [
        (lines[1], "state_bytes_max", f.state_bytes_max, 16 << 20),
        (
            lines[2],
            "evaluations_per_input_max",
            f.evaluations_per_input_max,
            100_000,
        ),
        (
            lines[3],
            "cells_read_per_input_max",
            f.cells_read_per_input_max,
            1 << 30,
        ),
    ] {
        assert!(figure > 0 && figure <= limit, "{name}: {figure}");
        let want = format!("{name}: {figure} (limit {limit}, ");
        assert!(line.starts_with(&want), "{line:?} vs {want:?}");
    }

    let out = rollguard(&["validate", "--json", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["footprint"], serde_json::to_value(f).unwrap());
    assert_eq!(doc["limits"]["state_bytes_max"], 16 << 20);
    assert_eq!(doc["limits"]["evaluations_per_input_max"], 100_000);

    // A config over its limit fails with the new code and the limit's path.
    let tight = scratch(
        "tight.json",
        &POLICY.replace(
            "\"analysis\"",
            "\"limits\": {\"state_bytes_max\": 1000}, \"analysis\"",
        ),
    );
    let out = rollguard(&["validate", tight.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: state_too_large at limits.state_bytes_max: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        "{",
        "[]",
        "null",
        "{\"format_version\": 1}",
        "\u{0}\u{1}",
        "{\"format_version\":1,\"config\":{},\"inputs\":[{\"kind\":\"tick\"}]}",
    ];
    for (i, text) in inputs.iter().enumerate() {
        let f = scratch(&format!("garbage-{i}.json"), text);
        let f = f.to_str().unwrap();
        for args in [
            vec!["validate", f],
            vec!["replay", f],
            vec!["replay", "--policy", f, "--samples", f],
        ] {
            let out = rollguard(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {text:?}");
            assert!(stderr(&out).starts_with("error: "), "{args:?}");
        }
    }
}

#[test]
fn validate_warns_when_one_burst_can_trip_a_gate() {
    // 5-minute windows read every 30 s: one spike stays in 10 evaluations, ≥ 3.
    let long = POLICY.replace(
        "\"window_ms\": 60000, \"buckets\": 6",
        "\"window_ms\": 300000, \"buckets\": 10",
    );
    let path = scratch("burst.json", &long);
    let out = rollguard(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "a warning is not an error");
    let text = stdout(&out);
    let warning = text
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert!(
        warning.starts_with("warning: burst_can_trip at gates[0].persistence.consecutive: "),
        "{warning}"
    );
    let out = rollguard(&["validate", "--json", path.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["warnings"][0]["code"], "burst_can_trip");
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(1));
}

#[test]
fn import_kayenta_prints_metrics_gates_and_warnings_or_the_error() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rollguard/tests/data/kayenta_canary_config.json"
    );
    let out = rollguard(&["import-kayenta", fixture]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let gates: Vec<&str> = doc["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(gates.last(), Some(&"kayenta_score"));
    assert_eq!(doc["metrics"].as_array().unwrap().len(), 4);
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l.starts_with("warning: metrics[0].query: the prometheus query"))
    );

    let text = std::fs::read_to_string(fixture).unwrap();
    let bad = scratch(
        "kayenta-bad.json",
        &text.replace("NetflixACAJudge-v1.0", "RandomDummyJudge"),
    );
    let out = rollguard(&["import-kayenta", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: invalid_value at judge.name: "),
        "{}",
        stderr(&out)
    );
}

/// The bundled demo scenario's path.
fn demo_path() -> String {
    format!(
        "{}/../../examples/scenarios/demo.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn backtest_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["backtest", "--json"];
    all.extend_from_slice(args);
    let out = rollguard(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("one JSON report")
}

#[test]
fn backtest_of_the_demo_policy_on_its_stable_traffic() {
    let demo = demo_path();
    let common = [
        "--scenario",
        demo.as_str(),
        "--candidate",
        "v2",
        "--traffic",
        "duplicate",
        "--replications",
        "8",
        "--block-ms",
        "600000",
        "--seed",
        "7",
    ];
    // The null: v2 is v1's own traffic resampled; the policy promotes it.
    let null = backtest_json(&common);
    assert_eq!(null["replications"], 8);
    assert_eq!(null["injected"], false);
    let outcomes = null["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 8);
    let rolled = outcomes
        .iter()
        .filter(|o| o.get("rollback").is_some())
        .count();
    assert_eq!(null["false_rollbacks"]["count"], rolled);
    assert_eq!(null["promoted"].as_u64().unwrap() as usize + rolled, 8);

    // A 1.5 × latency regression from a random onset: caught after its onset, and
    // the Markdown table says so.
    let inject = r#"{"metric": "latency_ms", "change": {"kind": "ratio", "factor": 1.5},
                     "onset_ms": 600000, "onset_max_ms": 2400000}"#;
    let mut args = common.to_vec();
    args.extend(["--inject", inject]);
    let caught = backtest_json(&args);
    assert_eq!(caught["detected"]["count"], 8);
    for o in caught["outcomes"].as_array().unwrap() {
        let (onset, at) = (
            o["onset"].as_u64().unwrap(),
            o["rollback"]["at"].as_u64().unwrap(),
        );
        assert!(at > onset, "{o}");
        assert_eq!(o["rollback"]["reason"], "gate_failed");
    }
    let mut md = vec!["backtest"];
    md.extend(args.iter().copied());
    let table = stdout(&rollguard(&md));
    assert!(table.starts_with("| measure | result |"), "{table}");
    assert!(
        table.contains("| regressions caught | 8 of 8 (100.0 %"),
        "{table}"
    );

    // The same seed gives the same report; another seed another one.
    assert_eq!(backtest_json(&args), caught);
    let mut other = args.clone();
    other[11] = "8";
    assert_ne!(backtest_json(&other)["outcomes"], caught["outcomes"]);
}

#[test]
fn backtest_refuses_a_spec_that_does_not_fit_with_exit_code_2() {
    let demo = demo_path();
    let out = rollguard(&["backtest", "--scenario", &demo, "--candidate", "v9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown_reference at candidate"),
        "{}",
        stderr(&out)
    );
    let out = rollguard(&[
        "backtest",
        "--scenario",
        &demo,
        "--candidate",
        "v2",
        "--inject",
        "{",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid_json at --inject"),
        "{}",
        stderr(&out)
    );
    let out = rollguard(&["backtest", "--scenario", &demo, "--replications", "0"]);
    assert!(
        stderr(&out).contains("invalid_value at replications"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn backtest_of_a_recorded_canary_from_a_csv_file() {
    let policy = scratch("backtest-policy.json", POLICY);
    let csv = scratch("backtest-metrics.csv", &metrics_csv());
    let (policy, csv) = (policy.to_str().unwrap(), csv.to_str().unwrap());
    let report = backtest_json(&[
        "--policy",
        policy,
        "--samples",
        csv,
        "--recorded-candidate",
        "v2",
    ]);
    // v2's recorded latency triples at 1 100 000 ms, and the policy rolls it back on
    // its p95 gate; without a declared onset that counts as a false rollback.
    let rollback = &report["outcomes"][0]["rollback"];
    assert!(rollback["at"].as_u64().unwrap() > 1_100_000, "{report}");
    assert_eq!(rollback["gates"], serde_json::json!(["p95"]));
    assert_eq!(report["false_by_gate"]["p95"], 1);
    assert_eq!(report["false_by_reason"]["gate_failed"], 1);
    assert_eq!(report["refused"], 0);
    assert_eq!(report["promoted"], 0);
}

#[test]
fn calibrate_finds_the_tightest_ratio_a_recorded_null_allows() {
    // Twenty minutes of v1's p95 latency scraped every 5 s: 100 ms, ± 8 % in a
    // repeating pattern.
    let mut csv = String::from("at,arm,metric,value\n");
    for i in 0..240u64 {
        let wobble = [0, 5, -3, 8, -6, 2, -8, 4, 7, -5, 1, -2][(i * 7 % 12) as usize];
        csv.push_str(&format!(
            "{},v1,latency_ms,{}\n",
            1_000_000 + i * 5_000,
            100 + wobble
        ));
    }
    let policy = scratch("calibrate-policy.json", POLICY);
    let csv = scratch("calibrate-null.csv", &csv);
    let (policy, csv) = (policy.to_str().unwrap(), csv.to_str().unwrap());
    let args = [
        "calibrate",
        "--policy",
        policy,
        "--samples",
        csv,
        "--traffic",
        "duplicate",
        "--replications",
        "6",
        "--block-ms",
        "120000",
        "--gate",
        "p95",
        "--target",
        "0.2",
    ];
    let mut json = args.to_vec();
    json.push("--json");
    let out = rollguard(&json);
    assert!(out.status.success(), "{}", stderr(&out));
    let c: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(c["parameter"], "max_ratio");
    assert_eq!(c["configured"]["value"], 1.3);
    let found = c["result"]["value"].as_f64().unwrap();
    assert!(
        c["met"].as_bool().unwrap() && found < 1.3 && found > 1.0,
        "{c}"
    );
    // A tighter ratio tried fails the target.
    let trials = c["trials"].as_array().unwrap();
    assert!(
        trials.iter().any(|t| {
            t["value"].as_f64().unwrap() < found && t["rate"]["rate"].as_f64().unwrap() > 0.2
        }),
        "{c}"
    );
    let text = stdout(&rollguard(&args));
    assert!(text.contains("p95.max_ratio as configured: 1.3"), "{text}");
}

#[test]
fn drill_runs_the_failure_modes_against_the_demo_policy() {
    let demo = demo_path();
    let args = [
        "drill",
        "--scenario",
        demo.as_str(),
        "--candidate",
        "v2",
        "--traffic",
        "duplicate",
        "--replications",
        "1",
    ];
    let out = rollguard(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for drill in [
        "latency_regression",
        "error_burst",
        "quality_drift",
        "silent_candidate",
        "bad_candidate_twice",
    ] {
        assert!(table.contains(&format!("| {drill} |")), "{drill}: {table}");
    }
    let mut json = args.to_vec();
    json.push("--json");
    let results: serde_json::Value = serde_json::from_str(&stdout(&rollguard(&json))).unwrap();
    let latency = &results[0];
    assert_eq!(latency["drill"]["name"], "latency_regression");
    assert_eq!(latency["caught"]["count"], 1);
    let twice = &results[4];
    assert_eq!(twice["report"]["outcomes"][0]["then"]["candidate"], "v3");
    let out = rollguard(&[
        "drill",
        "--scenario",
        &demo,
        "--candidate",
        "v2",
        "--inject",
        "{}",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
