//! The cost model against reality: the allocated size of real states, the evaluations
//! a late tick runs, and configs at and beyond the default limits.

use core::mem::size_of;

use super::*;
use crate::config::VersionSpec;
use crate::config::footprint::{
    BIN_BYTES, COUNT_SLOT_BYTES, GATE_BYTES, HIST_BYTES, VALUE_SLOT_BYTES, VERSION_BYTES,
    WINDOW_BYTES,
};
use crate::gate::GateState;
use crate::input::Sample;
use crate::registry::Version;
use crate::stats::window::{Bins, CountSlot, ValueSlot};

/// Bytes the state has allocated: every `Vec` and `String` by its capacity, plus the
/// struct itself. B-tree nodes of component maps are not visible; each entry is
/// counted as its two `String` headers and texts.
fn allocated(s: &State) -> u64 {
    let string = |t: &String| t.capacity() as u64;
    let vec = |cap: usize, each: usize| (cap * each) as u64;
    let mut bytes = size_of::<State>() as u64;
    bytes += vec(s.arms.capacity(), size_of::<Arm>());
    let windows = |ws: &Vec<Window>| {
        let mut bytes = vec(ws.capacity(), size_of::<Window>());
        for w in ws {
            bytes += w.allocated();
        }
        bytes
    };
    for arm in &s.arms {
        bytes += string(&arm.version) + windows(&arm.windows);
        bytes += vec(arm.scoped.capacity(), size_of::<Option<Vec<Window>>>());
        bytes += arm.scoped.iter().flatten().map(windows).sum::<u64>();
    }
    // Scopes: their keys (twice: the list and the index by key) and gate states.
    bytes += vec(s.scopes.capacity(), size_of::<ScopeOf<Vec<GateState>>>());
    for scope in &s.scopes {
        let k = &scope.key;
        let labels = [&k.tenant, &k.tier, &k.agent].into_iter().flatten();
        bytes += 2 * labels.map(string).sum::<u64>();
        bytes += scope.tier.as_ref().map_or(0, string);
        bytes += size_of::<crate::scope::ScopeKey>() as u64 + 8;
        bytes += gates(&scope.gates);
    }
    let reg = &s.registry;
    bytes += vec(reg.versions.capacity(), size_of::<Version>());
    for v in &reg.versions {
        bytes += string(&v.id) + string(&v.digest);
        for (k, c) in &v.components {
            bytes += string(k) + string(c) + 2 * size_of::<String>() as u64;
        }
    }
    let a = &reg.aliases;
    bytes += string(&a.stable) + string(&a.golden);
    bytes += [&a.candidate, &a.previous, &s.kickoff]
        .into_iter()
        .flatten()
        .map(string)
        .sum::<u64>();
    bytes += s.rollout.as_ref().map_or(0, |r| string(&r.version));
    // A pending `route_back` (and one a `resume` would retry) names scopes.
    let retry = s.halt.as_ref().and_then(|h| h.retry.as_ref());
    for p in s.pending.iter().chain(retry) {
        if let crate::output::Action::RouteBack { scopes, .. } = &p.action {
            bytes += vec(scopes.capacity(), size_of::<crate::scope::ScopeKey>());
            for k in scopes {
                let labels = [&k.tenant, &k.tier, &k.agent].into_iter().flatten();
                bytes += labels.map(string).sum::<u64>();
            }
        }
    }
    bytes += gates(&s.gates);
    bytes += vec(s.effects.capacity(), size_of::<Effect>());
    for e in &s.effects {
        bytes += string(&e.version) + string(&e.id) + string(&e.undo);
    }
    bytes + vec(s.breaker.rollbacks.capacity(), size_of::<Timestamp>())
}

/// Bytes a list of gate states has allocated.
fn gates(gates: &Vec<GateState>) -> u64 {
    let vec = |cap: usize, each: usize| (cap * each) as u64;
    let mut bytes = vec(gates.capacity(), size_of::<GateState>());
    for g in gates {
        if let crate::detect::Detector::ErrorAttribution(a) = &g.detector {
            bytes += vec(
                a.splits.capacity(),
                size_of::<crate::detect::attribution::Split>(),
            );
        }
        if let crate::detect::Detector::SequentialQuantile(t) = &g.detector {
            bytes += size_of::<crate::detect::quantile::QuantileTest>() as u64
                + vec(t.judged.bins.capacity(), 8)
                + vec(t.baseline.bins.capacity(), 8);
        }
    }
    bytes
}

/// A config with quantile, count and mean gates, the longest default labels and the
/// most components.
fn config(buckets: u32) -> PolicyConfig {
    let label = |c: char| c.to_string().repeat(256);
    let mut cfg = PolicyConfig::from_json(&format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1",
      "metrics": [
        {{"name": "latency", "kind": "value", "window_ms": {w}, "buckets": {buckets},
          "histogram_range": {{"min": 1e-19, "max": 1e19}}}},
        {{"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 10}},
        {{"name": "score", "kind": "value", "window_ms": 60000, "buckets": 10}}
      ],
      "gates": [
        {{"name": "p99", "metric": "latency", "stat": "p99", "rule": {{"kind": "threshold", "max": 1e9}}}},
        {{"name": "p99_seq", "metric": "latency", "stat": "p99", "rule": {{"kind": "sequential_quantile"}}}},
        {{"name": "rate", "metric": "errors", "stat": "rate", "rule": {{"kind": "vs_baseline", "max_increase": 0.01}}}},
        {{"name": "score", "metric": "score", "stat": "mean", "rule": {{"kind": "threshold", "min": 0.5}}}}
      ],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 10, "duration_ms": 100000000}}]}},
      "analysis": {{"interval_ms": 1}}
    }}"#,
        w = u64::from(buckets) * 1000
    ))
    .expect("parses");
    for v in &mut cfg.versions {
        v.id = format!("{}{}", v.id, label('x'))
            .chars()
            .take(256)
            .collect();
    }
    cfg.stable.clone_from(&cfg.versions[0].id);
    cfg.versions[0].components = (0..32)
        .map(|i| (format!("{i:0>256}"), label('c')))
        .collect();
    cfg
}

fn spec(i: usize) -> VersionSpec {
    VersionSpec {
        id: format!("{i:z>256}"),
        digest: "d".repeat(256),
        components: (0..32)
            .map(|c| (format!("{c:0>256}"), "c".repeat(256)))
            .collect(),
        validated: true,
    }
}

/// A rollout of v2 with its first step acknowledged: two arms, gates running.
fn rolling_out(cfg: PolicyConfig) -> Policy {
    let v2 = cfg.versions[1].id.clone();
    let mut p = Policy::new(cfg, 0).expect("a valid config");
    let step = p
        .handle(&Input::StartRollout { at: 0, version: v2 })
        .expect("starts");
    let id = step.actions().find_map(|d| d.action_id).expect("an action");
    let _ = p
        .handle(&Input::Ack {
            at: 0,
            action_id: id,
        })
        .expect("acknowledged");
    p
}

#[test]
fn the_field_sizes_the_model_counts_cover_this_platform() {
    assert!(size_of::<Window>() as u64 <= WINDOW_BYTES);
    assert!(size_of::<ValueSlot>() as u64 <= VALUE_SLOT_BYTES);
    assert!(size_of::<CountSlot>() as u64 <= COUNT_SLOT_BYTES);
    assert!(size_of::<Bins>() as u64 <= HIST_BYTES);
    assert!(size_of::<u32>() as u64 <= BIN_BYTES);
    assert!(size_of::<GateState>() as u64 <= GATE_BYTES);
    assert!(
        size_of::<crate::detect::attribution::Split>() as u64
            <= crate::config::footprint::SPLIT_BYTES
    );
    assert!(
        size_of::<crate::detect::mean::MeanTest>() as u64
            <= crate::config::footprint::MEAN_TEST_BYTES
    );
    assert!(
        size_of::<crate::detect::cusum::Cusum>() as u64 <= crate::config::footprint::CHART_BYTES
    );
    assert!(size_of::<crate::detect::ewma::Ewma>() as u64 <= crate::config::footprint::CHART_BYTES);
    assert!(
        size_of::<crate::detect::quantile::QuantileTest>() as u64
            <= crate::config::footprint::QUANTILE_TEST_BYTES
    );
    assert!(size_of::<u64>() as u64 <= crate::config::footprint::QUANTILE_BIN_BYTES);
    assert!(
        size_of::<crate::detect::mann_whitney::RankTest>() as u64
            <= crate::config::footprint::RANK_TEST_BYTES
    );
    assert!(
        size_of::<crate::detect::drift::Drift>() as u64
            <= crate::config::footprint::DRIFT_BYTES + 2 * crate::config::footprint::HEADER
    );
    assert!(size_of::<Version>() as u64 <= VERSION_BYTES);
    assert!(
        size_of::<Effect>() as u64
            <= crate::config::footprint::EFFECT_BYTES + 3 * crate::config::footprint::HEADER
    );
    assert!(size_of::<State>() as u64 <= crate::config::footprint::STATE_FIXED_BYTES);
}

#[test]
fn a_full_state_fits_the_estimate_and_the_estimate_is_not_far_off() {
    let mut cfg = config(100);
    cfg.analysis.interval_ms = 60_000;
    let f = cfg.footprint();
    let mut p = rolling_out(cfg);
    // Fill the registry with the longest labels and the most components, and every
    // window with samples.
    for i in 0..40 {
        let version = spec(i);
        let _ = p.handle(&Input::RegisterVersion { at: 0, version });
    }
    assert_eq!(p.state.registry.versions.len(), 16);
    let arms: Vec<String> = p.state.arms.iter().map(|a| a.version.clone()).collect();
    // Values over the whole histogram range, so every bin of every bucket is used.
    let mut x = 1e-19;
    for t in (0..100_000u64).step_by(4) {
        let arm = &arms[(t / 4 % 2) as usize];
        x = if x > 1e19 { 1e-19 } else { x * 1.01 };
        let _ = p.observe_value(t, arm, "latency", x).expect("value");
        let _ = p.observe_count(t, arm, "errors", 0, 10).expect("count");
    }
    // The most effects, each with the longest id and undo descriptor.
    let limits = p.config.limits;
    for i in 0..limits.effects_max {
        let id = format!("{i:e>width$}", width = limits.label_len_max as usize);
        let mut undo = serde_json::Map::new();
        let pad = limits.text_len_max as usize - r#"{"u":""}"#.len();
        undo.insert("u".into(), "x".repeat(pad).into());
        let effect = crate::input::EffectSpec { id, undo };
        let version = arms[1].clone();
        let _ = p
            .handle(&Input::RecordEffect {
                at: 100_000,
                version,
                effect,
            })
            .expect("recorded");
    }
    let measured = allocated(&p.state);
    eprintln!("measured {measured}, estimated {}", f.state_bytes_max);
    assert!(
        measured <= f.state_bytes_max,
        "measured {measured} > estimated {}",
        f.state_bytes_max
    );
    // 125 values per bucket and arm keep the histograms sparse. A bucket with a quarter
    // of its 4098 bins used turns dense: make every one dense, as busy buckets would be.
    for arm in &mut p.state.arms {
        for w in &mut arm.windows {
            w.make_dense();
        }
    }
    let measured = allocated(&p.state);
    eprintln!(
        "dense: measured {measured}, estimated {}",
        f.state_bytes_max
    );
    assert!(
        measured <= f.state_bytes_max,
        "measured {measured} > estimated {}",
        f.state_bytes_max
    );
    // Two of the three arms the model counts are live: the estimate is within 2× here.
    assert!(
        f.state_bytes_max <= 2 * measured,
        "estimated {} is far above measured {measured}",
        f.state_bytes_max
    );
}

#[test]
fn a_full_scoped_state_fits_the_estimate() {
    let mut cfg = config(10);
    cfg.analysis.interval_ms = 60_000;
    cfg.scopes = Some(crate::config::ScopesConfig {
        by: vec![
            crate::scope::ScopeLabel::Tenant,
            crate::scope::ScopeLabel::Agent,
        ],
        alpha_share: 0.5,
        samples_min: None,
        tiers: Default::default(),
        impact: None,
        ladder: None,
        histogram_bins_max: 48,
    });
    cfg.limits.scopes_max = 6;
    let unscoped = {
        let mut c = cfg.clone();
        c.scopes = None;
        c.footprint().state_bytes_max
    };
    let f = cfg.footprint();
    assert!(f.state_bytes_max > unscoped, "{f:?} against {unscoped}");
    let mut p = rolling_out(cfg);
    let arms: Vec<String> = p.state.arms.iter().map(|a| a.version.clone()).collect();
    // Ten tenants with the longest labels: five get scopes, the others the overflow.
    let mut x = 1e-19;
    for t in (0..10_000u64).step_by(2) {
        let mut s = Sample::value(t, &arms[(t / 2 % 2) as usize], "latency", x);
        let tenant = t / 4 % 10;
        s.tenant = Some(format!("{tenant:t>256}"));
        s.agent = Some("a".repeat(256));
        x = if x > 1e19 { 1e-19 } else { x * 1.01 };
        let _ = p.observe(&s).expect("value");
    }
    assert_eq!(p.state.scopes.len(), 6);
    assert!(p.state.scopes[5].key.overflow);
    // Values over 38 decades: busy buckets of scopes halved its resolution to
    // keep within `histogram_bins_max` cells.
    let buckets = p
        .state
        .arms
        .iter()
        .flat_map(|a| a.scoped.iter().flatten().flatten());
    let halved = buckets
        .flat_map(|w| w.slots())
        .filter(|s| s.count > 0)
        .inspect(|s| assert!(s.hist.capacity() <= 48))
        .filter(|s| s.hist.halvings() > 0)
        .count();
    assert!(halved > 0);
    let measured = allocated(&p.state);
    assert!(
        measured <= f.state_bytes_max,
        "measured {measured} > estimated {}",
        f.state_bytes_max
    );
}

#[test]
fn a_late_tick_runs_no_more_evaluations_than_the_model_allows() {
    let cfg = config(10);
    let f = cfg.footprint();
    let mut p = rolling_out(cfg);
    let arms: Vec<String> = p.state.arms.iter().map(|a| a.version.clone()).collect();
    for arm in &arms {
        let _ = p.observe_value(0, arm, "latency", 5.0).expect("value");
    }
    // interval_ms is 1: a tick a minute late is 60 000 evaluations behind.
    let step = p.tick(60_000).expect("tick");
    let reads: u64 = step
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Analysis { reports, .. } => Some(reports),
            _ => None,
        })
        .flatten()
        .map(|r| if r.baseline_samples.is_some() { 3 } else { 1 })
        .sum();
    let rounds = step
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Analysis { .. }))
        .count() as u64;
    assert_eq!(rounds, ANALYSIS_CATCHUP_MAX);
    assert_eq!(reads, f.evaluations_per_input_max);
    assert!(
        step.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::AnalysisSkipped { .. }))
    );
}

/// The most buckets the `latency` window may have under the default limits.
fn buckets_at_the_default_limit() -> u32 {
    (1..=crate::config::limits::BUCKETS_MAX)
        .take_while(|b| config(*b).validate().is_ok())
        .last()
        .expect("some bucket count fits")
}

#[test]
fn a_config_at_the_default_state_limit_works() {
    let b = buckets_at_the_default_limit();
    assert!(b < crate::config::limits::BUCKETS_MAX, "{b}");
    let fits = config(b);
    let f = fits.footprint();
    assert!(f.state_bytes_max <= fits.limits.state_bytes_max);
    assert!(f.state_bytes_max > fits.limits.state_bytes_max / 100 * 99);
    let e = config(b + 1).validate().unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::StateTooLarge, "limits.state_bytes_max")
    );

    let mut fits = fits;
    fits.analysis.interval_ms = 10_000;
    let mut p = rolling_out(fits);
    let arms: Vec<String> = p.state.arms.iter().map(|a| a.version.clone()).collect();
    for t in (0..1_000u64).step_by(5) {
        for arm in &arms {
            let _ = p
                .observe_value(t * 1000, arm, "latency", t as f64)
                .expect("value");
        }
    }
    let step = p.tick(1_000_000).expect("tick");
    assert!(
        step.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Analysis { .. }))
    );
    assert!(allocated(&p.state) <= f.state_bytes_max);
}

/// The config of issue 8: 32 metrics × 1024 buckets over 127 octaves, 64 p99 gates
/// (12 KB of JSON, 0.5 GB of state at creation).
fn the_12_kb_config() -> String {
    let metrics: Vec<String> = (0..32)
        .map(|i| {
            format!(
                r#"{{"name": "m{i}", "kind": "value", "window_ms": 1024000, "buckets": 1024,
                   "histogram_range": {{"min": 1e-19, "max": 1e19}}}}"#
            )
        })
        .collect();
    let gates: Vec<String> = (0..64)
        .map(|i| {
            format!(
                r#"{{"name": "g{i}", "metric": "m{}", "stat": "p99",
                   "rule": {{"kind": "vs_baseline", "max_ratio": 1.1}}}}"#,
                i % 32
            )
        })
        .collect();
    format!(
        r#"{{"format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1", "metrics": [{}], "gates": [{}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 10}}]}},
      "analysis": {{"interval_ms": 1}}}}"#,
        metrics.join(","),
        gates.join(",")
    )
}

#[test]
fn the_12_kb_config_of_the_issue_is_refused_for_its_state_then_its_work() {
    let text = the_12_kb_config();
    assert!((10_000..14_000).contains(&text.len()), "{}", text.len());
    let e = Policy::from_json(&text, 0).unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::StateTooLarge, "limits.state_bytes_max")
    );
    let mut cfg = PolicyConfig::from_json(&text).expect("parses");
    let f = cfg.footprint();
    assert!(f.state_bytes_max > 3 * 500_000_000, "{f:?}");
    // With 16 buckets and room for the state, its work per input is refused (at the
    // issue's evaluation limit of 10 000, below today's default).
    for m in &mut cfg.metrics {
        (m.buckets, m.window_ms) = (16, Some(16_000));
    }
    cfg.limits.state_bytes_max = crate::config::limits::STATE_BYTES_CEILING;
    cfg.limits.evaluations_per_input_max = 10_000;
    let e = cfg.validate().unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::TooMuchWork, "limits.evaluations_per_input_max")
    );
    cfg.limits.evaluations_per_input_max = crate::config::limits::EVALUATIONS_CEILING;
    let e = cfg.validate().unwrap_err();
    assert_eq!(
        (e.code, e.path.as_str()),
        (ErrorCode::TooMuchWork, "limits.cells_read_per_input_max")
    );
}

/// The `scopes` bench's config (three metrics of 6 buckets in 60 s, judged per tenant)
/// with the latency gate on p99: a histogram of 1282 bins (the default range) in every
/// bucket of every scope's latency window.
fn scoped_p99_config(scopes_max: u32) -> PolicyConfig {
    PolicyConfig::from_json(&format!(
        r#"{{
      "format_version": 1,
      "versions": [{{"id": "v1", "digest": "d1", "validated": true}}, {{"id": "v2", "digest": "d2"}}],
      "stable": "v1", "candidate": "v2",
      "metrics": [{{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}},
                  {{"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6}},
                  {{"name": "score", "kind": "value", "window_ms": 60000, "buckets": 6}}],
      "gates": [{{"name": "latency", "metric": "latency_ms", "stat": "p99",
                  "rule": {{"kind": "threshold", "max": 100000}}, "samples_min": 5}},
                {{"name": "errors", "metric": "errors", "stat": "rate",
                  "rule": {{"kind": "vs_baseline", "max_increase": 0.5}}, "samples_min": 5}},
                {{"name": "score", "metric": "score", "stat": "mean",
                  "rule": {{"kind": "threshold", "min": 0.1}}, "samples_min": 5}}],
      "strategy": {{"kind": "canary", "steps": [{{"kind": "set_weight", "weight": 50, "duration_ms": 86400000}}]}},
      "analysis": {{"interval_ms": 60000}},
      "scopes": {{"by": ["tenant"]}},
      "limits": {{"scopes_max": {scopes_max}, "state_bytes_max": 1073741824,
                  "evaluations_per_input_max": 10000000000, "cells_read_per_input_max": 1099511627776}}
    }}"#
    ))
    .expect("parses")
}

/// A policy of [`scoped_p99_config`] with its canary acknowledged.
fn scoped_p99_policy(scopes_max: u32) -> Policy {
    let mut p = Policy::new(scoped_p99_config(scopes_max), 0).expect("valid");
    let step = p.tick(0).expect("kick off");
    for action_id in step
        .actions()
        .filter_map(|d| d.action_id)
        .collect::<Vec<_>>()
    {
        let _ = p.handle(&Input::Ack { at: 0, action_id }).expect("ack");
    }
    p
}

/// Realistic traffic for [`scoped_p99_config`]: `n` requests over 60 s, each a latency,
/// an error count and a score; tenants drawn with Zipf weights (tenant k with weight
/// 1/(k+1), so the busiest sees about a seventh of the traffic and most see a few
/// requests a minute), latencies log-normal (median 120 ms, σ = 0.6), both arms alike.
fn realistic_traffic(p: &mut Policy, tenants: u32, n: u64) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut batch = Vec::new();
    for i in 0..n {
        let at = 1 + i * 59_000 / n;
        let tenant = (libm::pow(f64::from(tenants) + 1.0, uniform()) - 1.0) as u32;
        let tenant = format!("tenant-{:05}", tenant.min(tenants - 1));
        // A standard normal from twelve uniforms (Irwin–Hall).
        let z = (0..12).map(|_| uniform()).sum::<f64>() - 6.0;
        let latency = 120.0 * libm::exp(0.6 * z);
        let arm = if uniform() < 0.5 { "v1" } else { "v2" };
        let errors = i64::from(uniform() < 0.01);
        for mut s in [
            Sample::value(at, arm, "latency_ms", latency),
            Sample::count(at, arm, "errors", errors, 1),
            Sample::value(at, arm, "score", 0.8),
        ] {
            s.tenant = Some(tenant.clone());
            batch.push(s);
        }
        // In batches: a debug build checks the whole state after each input.
        if batch.len() >= 3_000 || i + 1 == n {
            let _ = p.observe_batch(&batch).expect("samples");
            batch.clear();
        }
    }
}

#[test]
fn scoped_histograms_never_allocate_more_than_dense_bins() {
    // Buckets using just under, at and just over a quarter of the 1282 bins (where
    // they turn dense), and every bin: each bucket's cells stay within its bins, so
    // the state stays within the estimate.
    let len = 1282u64;
    for used in [1, len / 4 - 1, len / 4, len / 4 + 1, 2 * len] {
        let cfg = scoped_p99_config(4);
        let f = cfg.footprint();
        let mut p = scoped_p99_policy(4);
        for (k, arm) in ["v1", "v2"].into_iter().enumerate() {
            let mut batch = Vec::new();
            for tenant in ["a", "b", "c", "d", "e"] {
                for i in 0..used {
                    // Values 1/32 octave apart from 0.001 up: one bin each.
                    let x = 0.001 * libm::exp2((i % (len - 2)) as f64 / 32.0 + 1.0 / 64.0);
                    let mut s = Sample::value(1 + k as u64 * 10_000, arm, "latency_ms", x);
                    s.tenant = Some(tenant.into());
                    batch.push(s);
                }
            }
            let _ = p.observe_batch(&batch).expect("values");
        }
        let windows = p.state.arms.iter().flat_map(|a| a.scoped.iter().flatten());
        for slot in windows.flat_map(|ws| ws.iter().flat_map(Window::slots)) {
            assert!(
                slot.hist.capacity() as u64 <= u64::from(slot.hist.len()),
                "{used}: {} cells for {} bins",
                slot.hist.capacity(),
                slot.hist.len()
            );
        }
        let measured = allocated(&p.state);
        assert!(measured <= f.state_bytes_max, "{used}: {measured} > {f:?}");
        // A snapshot restores to the same state, sparse or dense.
        let back = Policy::restore_json(&p.snapshot().to_json()).expect("restores");
        assert!(back == p);
    }
}

#[test]
fn a_scope_metric_with_a_p99_histogram_takes_under_4_kb_with_realistic_traffic() {
    // 1000 tenants, 60 000 requests in the window (1000 a second): the busiest tenant
    // sees ~8000, the median one ~30.
    let tenants = 1000;
    let mut scoped = scoped_p99_policy(tenants + 1);
    realistic_traffic(&mut scoped, tenants, 60_000);
    let scopes = scoped.state.scopes.len() as u64;
    assert!(scopes > 900, "{scopes} scopes");
    let mut unscoped = {
        let mut cfg = scoped_p99_config(tenants + 1);
        cfg.scopes = None;
        let mut p = Policy::new(cfg, 0).expect("valid");
        let step = p.tick(0).expect("kick off");
        for action_id in step
            .actions()
            .filter_map(|d| d.action_id)
            .collect::<Vec<_>>()
        {
            let _ = p.handle(&Input::Ack { at: 0, action_id }).expect("ack");
        }
        p
    };
    realistic_traffic(&mut unscoped, tenants, 60_000);
    // What the scopes add: their keys, gates and windows on both arms.
    let per_scope_metric = (allocated(&scoped.state) - allocated(&unscoped.state)) / (scopes * 3);
    let worst = {
        let f = |c: &PolicyConfig| c.footprint().state_bytes_max;
        let mut cfg = scoped_p99_config(tenants + 1);
        let with = f(&cfg);
        cfg.scopes = None;
        (with - f(&cfg)) / ((u64::from(tenants) + 1) * 3)
    };
    // The latency windows alone (both arms), with their histograms.
    let latency: u64 = scoped
        .state
        .arms
        .iter()
        .flat_map(|a| a.scoped.iter().flatten())
        .map(|ws| {
            let w = &ws[0];
            size_of::<Window>() as u64 + w.allocated()
        })
        .sum::<u64>()
        / scopes;
    eprintln!(
        "{scopes} scopes, p99 on latency: {per_scope_metric} bytes per scope-metric \
         allocated ({latency} for a scope's latency windows); worst case (footprint) {worst}"
    );
    assert!(
        per_scope_metric <= 4096,
        "{per_scope_metric} bytes per scope-metric"
    );
    assert!(
        latency <= 4096,
        "{latency} bytes per scope's latency windows"
    );
    // And in the worst case: every bucket of every scope with `histogram_bins_max`
    // cells, on all three arms the model counts.
    assert!(worst <= 4096, "{worst} bytes per scope-metric at worst");
    // Quantiles read as they would from dense bins: the same verdicts after a
    // snapshot round trip, and a tick judging every scope.
    let mut back = Policy::restore_json(&scoped.snapshot().to_json()).expect("restores");
    assert!(back == scoped);
    let due = scoped.next_deadline().expect("due");
    assert_eq!(back.tick(due), scoped.tick(due));
}

/// A policy with scopes by `by`, at most 6, fed two calls with the same label columns
/// (`tenants` and `tiers` categories of the longest labels, the codes of row `i` being
/// `i` modulo each): the measured state and column cache, and the estimate.
fn column_cache(
    by: Vec<crate::scope::ScopeLabel>,
    tenants: usize,
    tiers: usize,
) -> (Policy, u64, u64) {
    let mut cfg = config(10);
    cfg.analysis.interval_ms = 60_000;
    cfg.scopes = Some(crate::config::ScopesConfig {
        by,
        alpha_share: 0.5,
        samples_min: None,
        tiers: Default::default(),
        impact: None,
        ladder: None,
        histogram_bins_max: 48,
    });
    cfg.limits.scopes_max = 6;
    let f = cfg.footprint();
    let mut p = rolling_out(cfg);
    let arm = p.state.arms[1].version.clone();
    let labels =
        |n: usize, c: char| -> Vec<String> { (0..n).map(|k| format!("{c}{k:0>255}")).collect() };
    let (tenant_labels, tier_labels) = (labels(tenants, 't'), labels(tiers, 'g'));
    let codes = |n: usize| -> Vec<i32> { (0..1200).map(|i| (i % n) as i32).collect() };
    let (tenant_codes, tier_codes) = (codes(tenants), codes(tiers));
    let labels = Labels {
        tenant: Some(LabelColumn::new(&tenant_codes, &tenant_labels)),
        tier: Some(LabelColumn::new(&tier_codes, &tier_labels)),
        ..Labels::default()
    };
    let at: Vec<u64> = (0..1200).collect();
    let x: Vec<f64> = (0..1200).map(|i| 1.0 + f64::from(i)).collect();
    let _ = p
        .observe_values_labelled(&arm, "latency", &at, &x, &labels)
        .expect("values");
    // Kept: the same call again finds them.
    let again: Vec<u64> = (1200..2400).collect();
    let _ = p
        .observe_values_labelled(&arm, "latency", &again, &x, &labels)
        .expect("values");
    let measured = allocated(&p.state) + p.columns.allocated();
    (p, measured, f.state_bytes_max)
}

#[test]
fn a_full_column_cache_fits_the_estimate() {
    use crate::scope::ScopeLabel::{Tenant, Tier};
    // Scopes by tenant: 12 tenants (the most the policy keeps the scope ids of), every
    // one used.
    let (p, measured, estimated) = column_cache(vec![Tenant], 12, 1);
    assert_eq!(p.columns.keys(), (12, 12));
    assert!(
        p.columns.allocated() > 12 * 256,
        "{}",
        p.columns.allocated()
    );
    assert!(
        measured <= estimated,
        "measured {measured} > estimated {estimated}"
    );
    // Scopes by tier and tenant: 10 tenants in 2 tiers, 12 labels as before and 20
    // keys (of the most 48), 10 of them used.
    let (p, measured, estimated) = column_cache(vec![Tier, Tenant], 10, 2);
    assert!(
        p.columns.allocated() > 12 * 256,
        "{}",
        p.columns.allocated()
    );
    assert_eq!(p.columns.keys(), (20, 10));
    assert!(
        measured <= estimated,
        "measured {measured} > estimated {estimated}"
    );
}
