//! The column batch paths (`observe_values`, `observe_counts`) equal feeding the same
//! rows one by one, decisions, events and state alike, also when timers fire between
//! rows of one column.

use proptest::prelude::*;
use rollguard::{ErrorCode, Input, Policy, Step};

const CONFIG: &str = r#"{"format_version": 1,
  "versions": [{"id": "v1", "digest": "d1", "validated": true}, {"id": "v2", "digest": "d2"}],
  "stable": "v1", "candidate": "v2",
  "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 20000, "buckets": 4},
              {"name": "errors", "kind": "count", "window_ms": 20000, "buckets": 4}],
  "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95", "persistence": {"consecutive": 2},
             "rule": {"kind": "threshold", "max": 300}},
            {"name": "rate", "metric": "errors", "stat": "rate", "persistence": {"consecutive": 2},
             "rule": {"kind": "threshold", "max": 0.05}}],
  "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 30000},
                                           {"kind": "set_weight", "weight": 50, "duration_ms": 30000}]},
  "analysis": {"interval_ms": 5000}, "safety": {"ack_timeout_ms": 1000000}}"#;

/// A started rollout with its first action acknowledged, so gates run.
fn started() -> Policy {
    let mut p = Policy::from_json(CONFIG, 0).unwrap();
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

fn rows() -> impl Strategy<Value = Vec<(u64, f64, i64)>> {
    // Gaps in steps of 1.25 s put every fourth row on a deadline (evaluations run every
    // 5 s), where the order of "fire timers, then record" matters.
    prop::collection::vec((0u64..5, 50.0f64..600.0, 0i64..8), 1..200).prop_map(|gaps| {
        let mut t = 0;
        gaps.into_iter()
            .map(|(gap, x, e)| {
                t += gap * 1250;
                (t, (x * 8.0).round() / 8.0, e)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn columns_equal_single_rows(rows in rows(), arm in prop::sample::select(vec!["v1", "v2"])) {
        let at: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let events: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let totals = vec![100; rows.len()];

        let mut columns = started();
        let step = columns.observe_values(arm, "latency_ms", &at, &values).unwrap();
        let column_steps = vec![step];

        let mut singles = started();
        let mut single_steps = Vec::new();
        for (t, x) in at.iter().zip(&values) {
            single_steps.push(singles.observe_value(*t, arm, "latency_ms", *x).unwrap());
        }
        prop_assert_eq!(flatten(&column_steps), flatten(&single_steps));
        prop_assert_eq!(&columns, &singles);

        // Times as JavaScript numbers make the same policy.
        let mut numbers = started();
        let at_f64: Vec<f64> = at.iter().map(|t| *t as f64).collect();
        let step = numbers.observe_values_f64(arm, "latency_ms", &at_f64, &values).unwrap();
        prop_assert_eq!(flatten(&[step]), flatten(&column_steps));
        prop_assert_eq!(&numbers, &columns);

        // Counts, on top, from the current time on.
        let now = columns.now();
        let at: Vec<u64> = at.iter().map(|t| t + now).collect();
        let step = columns.observe_counts(arm, "errors", &at, &events, &totals).unwrap();
        let mut single_steps = Vec::new();
        for ((t, e), n) in at.iter().zip(&events).zip(&totals) {
            single_steps.push(singles.observe_count(*t, arm, "errors", *e, *n).unwrap());
        }
        prop_assert_eq!(flatten(std::slice::from_ref(&step)), flatten(&single_steps));
        prop_assert_eq!(&columns, &singles);

        // Times and counts as JavaScript numbers make the same policy.
        let f = |xs: &[i64]| xs.iter().map(|x| *x as f64).collect::<Vec<_>>();
        let at_f64: Vec<f64> = at.iter().map(|t| *t as f64).collect();
        let step_f64 = numbers
            .observe_counts_f64(arm, "errors", &at_f64, &f(&events), &f(&totals))
            .unwrap();
        prop_assert_eq!(flatten(&[step_f64]), flatten(&[step]));
        prop_assert_eq!(&numbers, &columns);
    }

    #[test]
    fn a_bad_row_is_refused_alike_in_every_column_type(
        rows in rows(),
        bad in any::<prop::sample::Index>(),
        kind in 0..4u8,
    ) {
        let mut at: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let mut values: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let i = bad.index(at.len());
        let mut at_f64: Vec<f64> = at.iter().map(|t| *t as f64).collect();
        match kind {
            0 => values[i] = f64::NAN,
            1 => values[i] = -1e101,
            2 if i > 0 => {
                at[i] = at[i - 1].saturating_sub(1);
                at_f64[i] = at[i] as f64;
                if at[i] == at[i - 1] { return Ok(()); }
            }
            _ => {
                at[i] = 1 << 53;
                at_f64[i] = (1u64 << 53) as f64;
            }
        }
        let (mut a, mut b) = (started(), started());
        let before = a.clone();
        let ea = a.observe_values("v2", "latency_ms", &at, &values).unwrap_err();
        let eb = b.observe_values_f64("v2", "latency_ms", &at_f64, &values).unwrap_err();
        prop_assert_eq!((ea.code, &ea.path), (eb.code, &eb.path));
        prop_assert_eq!(&a, &before);
        prop_assert_eq!(&b, &before);
        // A fraction is a row error of the numbers path only.
        let mut fraction: Vec<f64> = rows.iter().map(|r| r.0 as f64).collect();
        let good: Vec<f64> = rows.iter().map(|r| r.1).collect();
        fraction[i] += 0.5;
        let e = b.observe_values_f64("v2", "latency_ms", &fraction, &good).unwrap_err();
        prop_assert_eq!((e.code, e.path), (ErrorCode::InvalidJson, format!("at[{i}]")));
        prop_assert_eq!(&b, &before);
    }
}

#[test]
fn count_numbers_are_integers_or_refused() {
    use rollguard::count_from_number;
    for (x, want) in [
        (0.0, Ok(0)),
        (-0.0, Ok(0)),
        (-3.0, Ok(-3)), // the sample check refuses it as `negative_count`
        (9_007_199_254_740_993.0, Ok(9_007_199_254_740_992)), // rounded by JS already
        (0.5, Err(ErrorCode::InvalidJson)),
        (-2.5, Err(ErrorCode::InvalidJson)),
        (f64::NAN, Err(ErrorCode::InvalidJson)),
        (f64::INFINITY, Err(ErrorCode::InvalidJson)),
        (1e19, Err(ErrorCode::CountOutOfRange)),
        (-1e19, Err(ErrorCode::CountOutOfRange)),
    ] {
        assert_eq!(
            count_from_number(x, "events").map_err(|e| e.code),
            want,
            "{x}"
        );
    }
    // In a column, a fraction is refused at its row, before the time of a later row.
    let mut p = started();
    let before = p.clone();
    let e = p
        .observe_counts_f64(
            "v2",
            "errors",
            &[1.0, 2.0, 1.0],
            &[0.0, 0.5, 0.0],
            &[1.0, 1.0, 1.0],
        )
        .unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::InvalidJson, "events[1]")
    );
    assert_eq!(p, before);
}
