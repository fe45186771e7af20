//! The column paths with label columns (`observe_values_labelled`,
//! `observe_counts_labelled` and their `f64` forms) equal feeding the same rows one by
//! one through `observe` with their labels: the same scopes numbered in the same order
//! (the overflow scope included), the same windows and detector states, decisions and
//! events, also when timers fire between rows and when the arm is not live.

use proptest::prelude::*;
use rollguard::{ErrorCode, Input, LabelCodes, LabelColumn, Labels, Policy, Sample, Step};

/// Two metrics, a threshold gate and a statistical gate on each (so scoped windows
/// and scoped detectors both take samples), scopes formed by `by`, at most
/// `scopes_max` of them; `v3` is registered but never live.
fn config(by: &str, scopes_max: u32) -> String {
    format!(
        r#"{{"format_version": 1,
  "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}},
               {{"id": "v3", "digest": "d3"}}],
  "stable": "v1", "candidate": "v2",
  "metrics": [{{"name": "latency_ms", "kind": "value", "window_ms": 20000, "buckets": 4}},
              {{"name": "errors", "kind": "count", "window_ms": 20000, "buckets": 4}}],
  "gates": [{{"name": "p95", "metric": "latency_ms", "stat": "p95", "persistence": {{"consecutive": 2}},
             "rule": {{"kind": "threshold", "max": 400}}, "samples_min": 3}},
            {{"name": "mean_test", "metric": "latency_ms", "stat": "mean",
             "rule": {{"kind": "sequential_mean", "alpha": 0.05}}, "samples_min": 5}},
            {{"name": "rate", "metric": "errors", "stat": "rate", "persistence": {{"consecutive": 2}},
             "rule": {{"kind": "threshold", "max": 0.06}}}},
            {{"name": "attributed", "metric": "errors", "stat": "rate",
             "rule": {{"kind": "error_attribution", "alpha": 0.05}}}}],
  "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 10, "duration_ms": 30000}},
                                           {{"kind": "set_weight", "weight": 50, "duration_ms": 30000}}]}},
  "analysis": {{"interval_ms": 5000}}, "safety": {{"ack_timeout_ms": 1000000}},
  "scopes": {{"by": {by}}}, "limits": {{"scopes_max": {scopes_max}}}}}"#
    )
}

const BY_TENANT: &str = r#"["tenant"]"#;
const BY_TIER_AGENT: &str = r#"["tier", "agent"]"#;

/// A started rollout with its first action acknowledged, so gates run, at most 4 scopes.
fn started(by: &str) -> Policy {
    started_max(by, 4)
}

/// [`started`] with room for `scopes_max` scopes.
fn started_max(by: &str, scopes_max: u32) -> Policy {
    let mut p = Policy::from_json(&config(by, scopes_max), 0).unwrap();
    let step = p.tick(0).unwrap();
    let id = step.decisions[0].action_id.unwrap();
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .unwrap();
    p
}

fn flatten(steps: &[Step]) -> (Vec<String>, Vec<String>) {
    let d = steps
        .iter()
        .flat_map(|s| &s.decisions)
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
    let e = steps
        .iter()
        .flat_map(|s| &s.events)
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    (d, e)
}

/// The categories of each label, in an order unlike the rows' (scopes must be numbered
/// by first row, not by category), with an unused label far too long to be accepted
/// (only the labels of rows are checked).
fn categories() -> Vec<String> {
    let mut c: Vec<String> = ["t5", "t4", "t3", "t2", "t1", "t0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    c.push("x".repeat(10_000));
    c
}

/// Rows: a time, a value, errors, and a code (-1: none) for each of tenant, tier and
/// agent.
type Row = (u64, f64, i64, [i32; 3]);

fn rows() -> impl Strategy<Value = Vec<Row>> {
    // Gaps in steps of 1.25 s put every fourth row on a deadline (evaluations run every
    // 5 s), where the order of "number the scope, fire timers, then record" matters.
    // Latencies for some tenants run high, so scoped gates trip and roll back.
    let row = (
        0u64..5,
        50.0f64..600.0,
        0i64..12,
        prop::array::uniform3(-1i32..6),
    );
    prop::collection::vec(row, 1..200).prop_map(|gaps| {
        let mut t = 0;
        gaps.into_iter()
            .map(|(gap, x, e, codes)| {
                t += gap * 1250;
                let slow = if codes[0] == 2 { 2.0 } else { 1.0 };
                (t, (x * slow * 8.0).round() / 8.0, e, codes)
            })
            .collect()
    })
}

/// The label columns of `rows`.
fn codes(rows: &[Row]) -> [Vec<i32>; 3] {
    [0, 1, 2].map(|k| rows.iter().map(|r| r.3[k]).collect())
}

fn labels<'a>(codes: &'a [Vec<i32>; 3], categories: &'a [String]) -> Labels<'a, String> {
    Labels {
        tenant: Some(LabelColumn::new(&codes[0], categories)),
        tier: Some(LabelColumn::new(&codes[1], categories)),
        agent: Some(LabelColumn::new(&codes[2], categories)),
    }
}

/// Row `i`'s sample as `observe` takes it.
fn labelled(mut s: Sample, row: &Row, categories: &[String]) -> Sample {
    let label = |k: usize| {
        usize::try_from(row.3[k])
            .ok()
            .map(|c| categories[c].clone())
    };
    s.tenant = label(0);
    s.tier = label(1);
    s.agent = label(2);
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn labelled_columns_equal_single_rows(
        rows in rows(),
        arm in prop::sample::select(vec!["v1", "v2", "v3"]),
        by in prop::sample::select(vec![BY_TENANT, BY_TIER_AGENT]),
    ) {
        let cats = categories();
        let at: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let events: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let totals = vec![100; rows.len()];
        let codes = codes(&rows);
        let labels = labels(&codes, &cats);

        let mut columns = started(by);
        let step = columns
            .observe_values_labelled(arm, "latency_ms", &at, &values, &labels)
            .unwrap();
        let column_steps = vec![step];
        let mut singles = started(by);
        let mut single_steps = Vec::new();
        for r in &rows {
            let s = labelled(Sample::value(r.0, arm, "latency_ms", r.1), r, &cats);
            single_steps.push(singles.observe(&s).unwrap());
        }
        prop_assert_eq!(flatten(&column_steps), flatten(&single_steps));
        prop_assert_eq!(&columns, &singles);
        prop_assert_eq!(columns.snapshot().to_json(), singles.snapshot().to_json());

        // Times as JavaScript numbers make the same policy.
        let mut numbers = started(by);
        let at_f64: Vec<f64> = at.iter().map(|t| *t as f64).collect();
        let step = numbers
            .observe_values_f64_labelled(arm, "latency_ms", &at_f64, &values, &labels)
            .unwrap();
        prop_assert_eq!(flatten(&[step]), flatten(&column_steps));
        prop_assert_eq!(&numbers, &columns);

        // Counts, on top, from the current time on.
        let now = columns.now();
        let at: Vec<u64> = at.iter().map(|t| t + now).collect();
        let step = columns
            .observe_counts_labelled(arm, "errors", &at, &events, &totals, &labels)
            .unwrap();
        let mut single_steps = Vec::new();
        for (r, t) in rows.iter().zip(&at) {
            let s = labelled(Sample::count(*t, arm, "errors", r.2, 100), r, &cats);
            single_steps.push(singles.observe(&s).unwrap());
        }
        prop_assert_eq!(flatten(std::slice::from_ref(&step)), flatten(&single_steps));
        prop_assert_eq!(&columns, &singles);

        let f = |xs: &[i64]| xs.iter().map(|x| *x as f64).collect::<Vec<_>>();
        let at_f64: Vec<f64> = at.iter().map(|t| *t as f64).collect();
        let step_f64 = numbers
            .observe_counts_f64_labelled(arm, "errors", &at_f64, &f(&events), &f(&totals), &labels)
            .unwrap();
        prop_assert_eq!(flatten(&[step_f64]), flatten(&[step]));
        prop_assert_eq!(&numbers, &columns);
    }

    /// Without a column for a `by` label no row has a scope, and labels of no scope are
    /// checked but change nothing: the same as the unlabelled column path.
    #[test]
    fn rows_without_a_scope_count_overall_only(rows in rows()) {
        let cats = categories();
        let at: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let codes = codes(&rows);
        let tenant_only = Labels {
            tenant: Some(LabelColumn::new(&codes[0], &cats)),
            ..Labels::default()
        };
        let mut labelled = started(BY_TIER_AGENT);
        let a = labelled
            .observe_values_labelled("v2", "latency_ms", &at, &values, &tenant_only)
            .unwrap();
        let mut plain = started(BY_TIER_AGENT);
        let b = plain.observe_values("v2", "latency_ms", &at, &values).unwrap();
        prop_assert_eq!(flatten(&[a]), flatten(&[b]));
        prop_assert_eq!(&labelled, &plain);
        prop_assert!(!labelled.snapshot().to_json().contains(r#""scopes":["#));
    }

    #[test]
    fn a_bad_label_is_refused_at_its_row_and_changes_nothing(
        rows in rows(),
        bad in any::<prop::sample::Index>(),
        column in 0..3usize,
        kind in 0..3u8,
    ) {
        let mut cats = categories();
        let at: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let mut codes = codes(&rows);
        let i = bad.index(at.len());
        let want = match kind {
            0 => {
                codes[column][i] = 7; // one past the categories
                ErrorCode::InvalidValue
            }
            1 => {
                codes[column][i] = -2;
                ErrorCode::InvalidValue
            }
            _ => {
                // The long label, used by this row and every later row of its column
                // that had a label.
                codes[column][i] = 6;
                for c in &mut codes[column][i..] {
                    if *c >= 0 { *c = 6; }
                }
                ErrorCode::LabelTooLong
            }
        };
        cats.truncate(7);
        let labels = labels(&codes, &cats);
        let mut p = started(BY_TENANT);
        let before = p.clone();
        let e = p
            .observe_values_labelled("v2", "latency_ms", &at, &values, &labels)
            .unwrap_err();
        // The earlier columns are fine, so the refusal is in this column, at this row.
        let name = ["tenant", "tier", "agent"][column];
        prop_assert_eq!((e.code, e.path), (want, format!("{name}[{i}]")));
        prop_assert_eq!(&p, &before);
    }
}

/// Tenants short enough for the policy to keep their scope ids across calls, in an
/// order unlike the rows', with `t1` twice (two codes, one scope).
fn cacheable() -> Vec<String> {
    ["t5", "t4", "t3", "t2", "t1", "t0", "t1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Rows cut into several calls with scopes by tenant, or by tier and agent, where
    /// the policy keeps the scope ids of the last call's categories: calls with the
    /// same categories, with them reversed, a snapshot restored between calls (the kept
    /// ids are gone), and scopes numbered by single samples between calls (the kept ids
    /// do not know them) all end as the rows one by one do.
    #[test]
    fn labelled_columns_over_several_calls_equal_single_rows(
        rows in rows(),
        arm in prop::sample::select(vec!["v1", "v2"]),
        // Room for the keys of two columns of 7 categories: 14 labels, 49 keys.
        (by, scopes_max) in prop::sample::select(vec![(BY_TENANT, 4), (BY_TIER_AGENT, 8)]),
        cuts in prop::collection::vec(0usize..200, 0..5),
        // Per call, whether the tenant and tier columns' categories are reversed, and
        // whether the agent column's are (so that one `by` column's change alone).
        reversed in prop::collection::vec(any::<(bool, bool)>(), 6),
        restored in prop::collection::vec(any::<bool>(), 6),
        between in prop::collection::vec(prop::option::of(0usize..7), 6),
    ) {
        let cats = cacheable();
        let backwards: Vec<String> = cats.iter().rev().cloned().collect();
        let n = cats.len() as i32;
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows.len())).collect();
        cuts.push(0);
        cuts.push(rows.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut columns = started_max(by, scopes_max);
        let mut singles = started_max(by, scopes_max);
        let (mut column_steps, mut single_steps) = (Vec::new(), Vec::new());
        // Each call's counts come after its values: later calls' times move on by the
        // time the counts took.
        let mut shift = 0;
        for (k, call) in cuts.windows(2).enumerate() {
            let part = &rows[call[0]..call[1]];
            let Some(first) = part.first() else { continue };
            if restored[k] {
                columns = Policy::restore_json(&columns.snapshot().to_json()).unwrap();
            }
            // A scope numbered by a single sample between calls.
            if let Some(c) = between[k] {
                let mut s = Sample::value(first.0 + shift, arm, "latency_ms", 100.0);
                s.tenant = Some(cats[c].clone());
                s.tier = Some(cats[c].clone());
                s.agent = Some(cats[(c + 1) % cats.len()].clone());
                column_steps.push(columns.observe(&s).unwrap());
                single_steps.push(singles.observe(&s).unwrap());
            }
            let at: Vec<u64> = part.iter().map(|r| r.0 + shift).collect();
            let values: Vec<f64> = part.iter().map(|r| r.1).collect();
            // Tenant 4 is sometimes written with the second `t1`.
            let mut tenants: Vec<i32> = part
                .iter()
                .enumerate()
                .map(|(i, r)| if r.3[0] == 4 && i % 2 == 1 { 6 } else { r.3[0] })
                .collect();
            let mut tiers: Vec<i32> = part.iter().map(|r| r.3[1]).collect();
            let mut agents: Vec<i32> = part.iter().map(|r| r.3[2]).collect();
            let reverse = |codes: &mut [i32], yes: bool| {
                for c in codes.iter_mut().filter(|c| yes && **c >= 0) {
                    *c = n - 1 - *c;
                }
                if yes { &backwards } else { &cats }
            };
            let (first, agent) = reversed[k];
            reverse(&mut tenants, first);
            let categories = reverse(&mut tiers, first);
            let agent_categories = reverse(&mut agents, agent);
            let labels = Labels {
                tenant: Some(LabelColumn::new(&tenants, categories)),
                tier: Some(LabelColumn::new(&tiers, categories)),
                agent: Some(LabelColumn::new(&agents, agent_categories)),
            };
            column_steps.push(
                columns
                    .observe_values_labelled(arm, "latency_ms", &at, &values, &labels)
                    .unwrap(),
            );
            for (i, r) in part.iter().enumerate() {
                let mut s = Sample::value(r.0 + shift, arm, "latency_ms", r.1);
                let label = |c: i32| usize::try_from(c).ok().map(|c| categories[c].clone());
                s.tenant = label(tenants[i]);
                s.tier = label(tiers[i]);
                s.agent = usize::try_from(agents[i]).ok().map(|c| agent_categories[c].clone());
                single_steps.push(singles.observe(&s).unwrap());
            }
            // Counts of the same rows, a little later: the same categories again.
            let now = columns.now();
            let at: Vec<u64> = at.iter().map(|t| t - at[0] + now).collect();
            let events: Vec<i64> = part.iter().map(|r| r.2).collect();
            let totals = vec![100; part.len()];
            column_steps.push(
                columns
                    .observe_counts_labelled(arm, "errors", &at, &events, &totals, &labels)
                    .unwrap(),
            );
            for (i, (r, t)) in part.iter().zip(&at).enumerate() {
                let mut s = Sample::count(*t, arm, "errors", r.2, 100);
                let label = |c: i32| usize::try_from(c).ok().map(|c| categories[c].clone());
                s.tenant = label(tenants[i]);
                s.tier = label(tiers[i]);
                s.agent = usize::try_from(agents[i]).ok().map(|c| agent_categories[c].clone());
                single_steps.push(singles.observe(&s).unwrap());
            }
            prop_assert_eq!(&columns, &singles);
            shift += columns.now() - now;
        }
        prop_assert_eq!(flatten(&column_steps), flatten(&single_steps));
        prop_assert_eq!(columns.snapshot().to_json(), singles.snapshot().to_json());
    }
}

#[test]
fn a_label_column_of_another_length_is_refused() {
    let mut p = started(BY_TENANT);
    let before = p.clone();
    let cats = ["a"];
    let labels = Labels {
        agent: Some(LabelColumn::new(&[0, 0], &cats)),
        ..Labels::default()
    };
    let e = p
        .observe_counts_labelled("v2", "errors", &[1, 2, 3], &[0; 3], &[1; 3], &labels)
        .unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::InvalidValue, "agent")
    );
    assert_eq!(p, before);
    // An empty column with empty labels records nothing.
    let empty = Labels {
        agent: Some(LabelColumn::new(&[], &cats)),
        ..Labels::default()
    };
    let step = p
        .observe_values_labelled("v2", "latency_ms", &[], &[], &empty)
        .unwrap();
    assert!(step.decisions.is_empty() && step.events.is_empty());
    assert_eq!(p, before);
}

#[test]
fn label_codes_encode_in_order_of_first_row() {
    let codes = LabelCodes::encode([Some("b"), None, Some("a"), Some("b"), Some("")]).unwrap();
    assert_eq!(codes.codes, [0, -1, 1, 0, 2]);
    assert_eq!(codes.categories, ["b", "a", ""]);
    // Encoded labels make the same policy as the rows with their labels.
    let mut p = started(BY_TENANT);
    let labels = Labels {
        tenant: Some(codes.column()),
        ..Labels::default()
    };
    let at = [10, 20, 30, 40, 50];
    let values = [100.0, 110.0, 120.0, 130.0, 140.0];
    let _ = p
        .observe_values_labelled("v2", "latency_ms", &at, &values, &labels)
        .unwrap();
    let mut q = started(BY_TENANT);
    for (k, (t, x)) in at.iter().zip(values).enumerate() {
        let mut s = Sample::value(*t, "v2", "latency_ms", x);
        s.tenant = usize::try_from(codes.codes[k])
            .ok()
            .map(|c| codes.categories[c].clone());
        let _ = q.observe(&s).unwrap();
    }
    assert_eq!(p, q);
    let snapshot = p.snapshot().to_json();
    let b = snapshot.find(r#"{"tenant":"b"}"#).unwrap();
    let a = snapshot.find(r#"{"tenant":"a"}"#).unwrap();
    assert!(b < a, "{snapshot}");
}

/// A long column where tenant `t2` is slow on the candidate: the column path rolls
/// back in `t2`'s scope at the same time as row by row, and tenants beyond the
/// fourth scope share the overflow scope alike.
#[test]
fn a_slow_tenant_in_a_column_rolls_back_as_row_by_row() {
    let cats = categories();
    let n = 4000u64;
    let at: Vec<u64> = (0..n).map(|i| i * 10).collect();
    // Tenants t0..t5 in turn (codes 5, 4, ... 0 in `categories`); t2 is slow.
    let codes: Vec<i32> = (0..n).map(|i| 5 - (i % 6) as i32).collect();
    let values: Vec<f64> = codes
        .iter()
        .map(|&c| if c == 3 { 900.0 } else { 100.0 })
        .collect();
    let labels = Labels {
        tenant: Some(LabelColumn::new(&codes, &cats)),
        ..Labels::default()
    };
    let mut columns = started(BY_TENANT);
    let step = columns
        .observe_values_labelled("v2", "latency_ms", &at, &values, &labels)
        .unwrap();
    let mut singles = started(BY_TENANT);
    let mut steps = Vec::new();
    for (k, (t, x)) in at.iter().zip(&values).enumerate() {
        let mut s = Sample::value(*t, "v2", "latency_ms", *x);
        s.tenant = Some(cats[codes[k] as usize].clone());
        steps.push(singles.observe(&s).unwrap());
    }
    assert_eq!(flatten(std::slice::from_ref(&step)), flatten(&steps));
    assert_eq!(columns, singles);
    let rollback = step
        .decisions
        .iter()
        .find(|d| matches!(d.action, rollguard::Action::Rollback { .. }))
        .expect("a rollback");
    let scopes: Vec<String> = rollback
        .gates
        .iter()
        .filter_map(|g| g.scope.as_ref().map(|s| s.label()))
        .collect();
    assert_eq!(scopes, ["tenant=t2"], "{rollback:?}");
    let snapshot = columns.snapshot().to_json();
    assert!(snapshot.contains(r#"{"overflow":true}"#), "{snapshot}");
}
