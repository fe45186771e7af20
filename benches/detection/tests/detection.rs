//! Checks of the benchmark's pieces: the generators are seeded and have the stated
//! moments and quantiles, the interval code matches known values, and the harness finds
//! a large regression and leaves a short null alone. No timing.

use rollguard_detection::method::{ERRORS, LATENCY, methods};
use rollguard_detection::run::{Prepared, replicate};
use rollguard_detection::stream::{
    CANDIDATE, CHANGE_ONSET_S, Effect, LATENCY_MEAN_MS, LATENCY_SD_MS, Load, Noise, STABLE,
    Scenario, Second, Stream, Traffic, replication_seed, scenarios, tail_factor,
};
use rollguard_detection::summary::{Summary, Z_975, censored_quantile, wilson};
use rollguard_detection::{Settings, run};

const TRAFFIC: Traffic = Traffic {
    requests_per_s: 40.0,
    weight: 50,
};

fn scenario(name: &str) -> Scenario {
    scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// Every request of `seconds` seconds: per arm, latencies and per-second tallies.
struct Drawn {
    latency: [Vec<f64>; 2],
    errors: [u64; 2],
    affected: [u64; 2],
    per_second: Vec<[u64; 2]>,
    mean_per_second: Vec<[f64; 2]>,
}

fn draw(s: Scenario, seconds: u64, seed: u64) -> Drawn {
    let mut stream = Stream::new(s, TRAFFIC, seconds, seed);
    let mut d = Drawn {
        latency: [Vec::new(), Vec::new()],
        errors: [0; 2],
        affected: [0; 2],
        per_second: Vec::new(),
        mean_per_second: Vec::new(),
    };
    let mut sec = Second::default();
    for _ in 0..seconds {
        stream.next_second(&mut sec);
        let mut n = [0; 2];
        let mut m = [0.0; 2];
        for arm in [STABLE, CANDIDATE] {
            let a = &sec.arms[arm];
            d.latency[arm].extend_from_slice(&a.latency);
            d.errors[arm] += a.errors;
            d.affected[arm] += a.affected;
            n[arm] = a.requests();
            m[arm] = a.latency.iter().sum::<f64>() / a.latency.len().max(1) as f64;
        }
        d.per_second.push(n);
        d.mean_per_second.push(m);
    }
    d
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

/// A Poisson-like count within four standard deviations of its expectation.
fn count_close(what: &str, got: u64, want: f64) {
    assert!(
        (got as f64 - want).abs() <= 4.0 * want.sqrt(),
        "{what}: {got} is more than 4 sd from {want}"
    );
}

fn close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{what}: {got} is not within {:.1} % of {want}",
        100.0 * rel
    );
}

#[test]
fn streams_are_seeded() {
    for s in scenarios() {
        let a = draw(s, 120, 7);
        let b = draw(s, 120, 7);
        let c = draw(s, 120, 8);
        assert_eq!(a.latency, b.latency, "{}: same seed, same stream", s.name);
        assert_eq!(a.errors, b.errors, "{}", s.name);
        assert_ne!(
            a.latency, c.latency,
            "{}: another seed, another stream",
            s.name
        );
    }
    assert_ne!(replication_seed(1, 0, 0), replication_seed(1, 0, 1));
    assert_ne!(replication_seed(1, 0, 0), replication_seed(1, 1, 0));
    assert_ne!(replication_seed(1, 0, 0), replication_seed(2, 0, 0));
}

#[test]
fn stationary_null_has_the_stated_traffic_latency_and_errors() {
    let d = draw(scenario("null_stationary"), 3600, 1);
    for arm in [STABLE, CANDIDATE] {
        let n = d.latency[arm].len() as f64;
        close("requests per second per arm", n / 3600.0, 20.0, 0.02);
        close(
            "mean latency",
            mean(&d.latency[arm]),
            LATENCY_MEAN_MS,
            0.005,
        );
        close("latency sd", sd(&d.latency[arm]), LATENCY_SD_MS, 0.02);
        count_close("errors", d.errors[arm], 0.005 * n);
        assert_eq!(d.affected[arm], 0, "a null affects nothing");
    }
}

#[test]
fn mean_shift_moves_every_candidate_request() {
    let d = draw(scenario("mean_shift_1"), 1800, 2);
    let shift = mean(&d.latency[CANDIDATE]) - mean(&d.latency[STABLE]);
    close("mean shift", shift, LATENCY_SD_MS, 0.03);
    close(
        "candidate sd",
        sd(&d.latency[CANDIDATE]),
        LATENCY_SD_MS,
        0.03,
    );
    assert_eq!(d.affected[CANDIDATE], d.latency[CANDIDATE].len() as u64);
    assert_eq!(d.affected[STABLE], 0);
}

#[test]
fn tail_regression_multiplies_p99_and_leaves_median_and_p95() {
    assert_eq!(tail_factor(0.0, 1.5), 1.0);
    assert_eq!(tail_factor(3.0, 1.5), 1.5);
    let d = draw(scenario("p99_plus_50pct"), 3600, 3);
    let (s, c) = (&d.latency[STABLE], &d.latency[CANDIDATE]);
    // Lognormal noise: the median of ε is (1 − e^{1/2}) / √((e − 1)e).
    let e_median = (1.0 - libm::exp(0.5)) / ((libm::exp(1.0) - 1.0) * libm::exp(1.0)).sqrt();
    close(
        "stable median",
        quantile(s, 0.5),
        LATENCY_MEAN_MS + LATENCY_SD_MS * e_median,
        0.01,
    );
    close(
        "median ratio",
        quantile(c, 0.5) / quantile(s, 0.5),
        1.0,
        0.01,
    );
    close(
        "p95 ratio",
        quantile(c, 0.95) / quantile(s, 0.95),
        1.0,
        0.03,
    );
    close(
        "p99 ratio",
        quantile(c, 0.99) / quantile(s, 0.99),
        1.5,
        0.05,
    );
    close(
        "affected share",
        d.affected[CANDIDATE] as f64 / c.len() as f64,
        0.05,
        0.05,
    );
}

#[test]
fn error_ratio_multiplies_the_candidate_error_rate() {
    let d = draw(scenario("error_ratio_2"), 3600, 4);
    let n = |arm: usize| d.latency[arm].len() as f64;
    count_close("stable errors", d.errors[STABLE], 0.005 * n(STABLE));
    count_close(
        "candidate errors",
        d.errors[CANDIDATE],
        0.010 * n(CANDIDATE),
    );
    // The extra errors are those above the stable's rate.
    count_close("extra errors", d.affected[CANDIDATE], 0.005 * n(CANDIDATE));
}

#[test]
fn heavy_tailed_and_dependent_nulls_have_their_shape() {
    // Student-t3 / √3: the quartiles are ±0.7649 / √3.
    let d = draw(scenario("null_student_t3"), 3600, 5);
    let iqr = quantile(&d.latency[STABLE], 0.75) - quantile(&d.latency[STABLE], 0.25);
    close(
        "t3 half IQR",
        iqr / 2.0,
        LATENCY_SD_MS * 0.764_892 / 3f64.sqrt(),
        0.03,
    );
    close(
        "t3 median",
        quantile(&d.latency[STABLE], 0.5),
        LATENCY_MEAN_MS,
        0.005,
    );
    // AR(1): the lag-one autocorrelation in request order is φ = 0.5, variance 1.
    let d = draw(scenario("null_ar1"), 3600, 6);
    let v = &d.latency[CANDIDATE];
    let m = mean(v);
    let num: f64 = v.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum();
    let den: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    close("AR(1) lag-one autocorrelation", num / den, 0.5, 0.05);
    close("AR(1) sd", sd(v), LATENCY_SD_MS, 0.05);
}

#[test]
fn nonstationary_nulls_move_both_arms_together() {
    let s = scenario("null_diurnal_bursts");
    assert!(matches!(s.load, Load::Diurnal { .. }));
    let d = draw(s, 3600, 9);
    let minute = |arm: usize| -> Vec<u64> {
        d.per_second
            .chunks(60)
            .map(|c| c.iter().map(|n| n[arm]).sum())
            .collect()
    };
    for arm in [STABLE, CANDIDATE] {
        let per_min = minute(arm);
        let (lo, hi) = (
            *per_min.iter().min().expect("minutes"),
            *per_min.iter().max().expect("minutes"),
        );
        assert!(hi as f64 >= 2.5 * lo as f64, "load swings: {lo}..{hi}");
    }
    // The incident doubles both arms' latency for five minutes.
    let d = draw(scenario("null_incident"), 3600, 10);
    let slow: Vec<usize> = d
        .mean_per_second
        .iter()
        .enumerate()
        .filter(|(_, m)| m[STABLE] > 1.6 * LATENCY_MEAN_MS && m[CANDIDATE] > 1.6 * LATENCY_MEAN_MS)
        .map(|(i, _)| i)
        .collect();
    assert!(
        (290..=300).contains(&slow.len()),
        "{} slow seconds",
        slow.len()
    );
    assert_eq!(slow.last().expect("an incident") - slow[0], slow.len() - 1);
}

#[test]
fn scenario_list_has_the_protocol_nulls_and_alternatives() {
    let all = scenarios();
    assert_eq!(all.iter().filter(|s| s.is_null()).count(), 6);
    let shifts: Vec<f64> = all
        .iter()
        .filter_map(|s| match s.effect {
            Effect::MeanShift { sigmas } => Some(sigmas),
            _ => None,
        })
        .collect();
    assert_eq!(shifts, [0.25, 0.5, 1.0, 2.0, 0.5, 1.0]);
    let onsets: Vec<(&str, u64)> = all
        .iter()
        .filter(|s| s.onset_s > 0)
        .map(|s| (s.name, s.onset_s))
        .collect();
    assert_eq!(
        onsets,
        [
            ("change_mean_0.5_at_10min", CHANGE_ONSET_S),
            ("change_mean_1_at_10min", CHANGE_ONSET_S)
        ]
    );
    assert_eq!(CHANGE_ONSET_S, 600);
    let ratios: Vec<f64> = all
        .iter()
        .filter_map(|s| match s.effect {
            Effect::ErrorRatio { ratio } => Some(ratio),
            _ => None,
        })
        .collect();
    assert_eq!(ratios, [1.5, 2.0, 5.0]);
    assert!(all.iter().any(|s| s.noise == Noise::StudentT3));
    assert!(all.iter().any(|s| s.noise == Noise::LogNormal));
    assert!(
        all.iter()
            .any(|s| matches!(s.noise, Noise::Ar1 { phi } if phi == 0.5))
    );
}

#[test]
fn wilson_matches_known_values() {
    let (lo, hi) = wilson(0, 1000, Z_975);
    assert_eq!(lo, 0.0);
    assert!((hi - 0.003_826_758_485_555).abs() < 1e-12, "{hi}");
    let (lo, hi) = wilson(5, 100, Z_975);
    assert!((lo - 0.021_543_679_154_368).abs() < 1e-12, "{lo}");
    assert!((hi - 0.111_750_469_231_919).abs() < 1e-12, "{hi}");
    let (lo, hi) = wilson(10, 1000, Z_975);
    assert!((lo - 0.005_440_754_445_529).abs() < 1e-12, "{lo}");
    assert!((hi - 0.018_309_468_870_315).abs() < 1e-12, "{hi}");
    assert_eq!(wilson(0, 0, Z_975), (0.0, 1.0));
}

#[test]
fn censored_quantiles_treat_no_rollback_as_beyond_the_horizon() {
    let v = [Some(3.0), Some(1.0), None, Some(2.0)];
    assert_eq!(censored_quantile(&v, 0.5), Some(2.0));
    assert_eq!(censored_quantile(&v, 0.75), Some(3.0));
    assert_eq!(censored_quantile(&v, 0.9), None);
    assert_eq!(censored_quantile(&[None, None, Some(1.0)], 0.5), None);
    assert_eq!(censored_quantile(&[], 0.5), None);
}

#[test]
fn every_method_config_is_accepted_at_the_streams_weight() {
    for m in methods() {
        Prepared::new(&m, TRAFFIC).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_large_regression_is_rolled_back_and_a_short_null_is_not() {
    let all = scenarios();
    let prepared: Vec<Prepared> = methods()
        .iter()
        .map(|m| Prepared::new(m, TRAFFIC).expect("a method"))
        .collect();
    let by_name = |name: &str| {
        prepared
            .iter()
            .position(|p| p.method.name == name)
            .expect("the method")
    };
    let (index, shift) = all
        .iter()
        .enumerate()
        .find(|(_, s)| s.name == "mean_shift_2")
        .expect("mean_shift_2");
    let out = replicate(shift, index, &prepared, TRAFFIC, 900, 11, 0);
    // (p99 ≤ 1.3 × stable is borderline at 2σ: p99 × 1.32, so not asserted.)
    for name in ["readme_gates", "mean_vs_stable"] {
        let o = &out[by_name(name)];
        // Three failing one-minute evaluations: the earliest rollback is at 180 s.
        let t = o
            .rollback_s
            .unwrap_or_else(|| panic!("{name} missed a 2σ shift"));
        assert!((180.0..=300.0).contains(&t), "{name}: {t}");
        close(
            "samples per arm",
            o.candidate_requests as f64,
            20.0 * t,
            0.1,
        );
        assert_eq!(o.exposure, o.candidate_requests);
        assert!(!o.tripped.is_empty());
    }
    for name in ["error_ratio_vs_stable", "error_attribution"] {
        let o = &out[by_name(name)];
        assert_eq!(o.rollback_s, None, "{name}: errors are unchanged");
    }
    // Kayenta's judge classifies the first interval High (1200 samples per arm, +2σ).
    let o = &out[by_name("kayenta")];
    assert_eq!(o.rollback_s, Some(60.0), "{o:?}");
    assert_eq!(o.tripped, ["kayenta_latency"]);
    // The sequential mean test trips at its first failing evaluation: on the 60 s grid
    // at the first one, on the 1 s grid within seconds of its 20-sample burn-in.
    for (name, grid, latest) in [
        ("sequential_mean", 60.0, 120.0),
        ("statistical_gates", 60.0, 120.0),
        ("sequential_mean_1s", 1.0, 30.0),
    ] {
        let o = &out[by_name(name)];
        let t = o
            .rollback_s
            .unwrap_or_else(|| panic!("{name} missed a 2σ shift"));
        assert!(t <= latest && t % grid == 0.0, "{name}: {o:?}");
        assert_eq!(o.tripped, ["mean_latency"], "{name}");
        assert_eq!(o.exposure, o.candidate_requests);
    }
    let ratio = all
        .iter()
        .position(|s| s.name == "error_ratio_5")
        .expect("error_ratio_5");
    let out = replicate(&all[ratio], ratio, &prepared, TRAFFIC, 900, 11, 0);
    let o = &out[by_name("error_ratio_vs_stable")];
    assert!(o.rollback_s.is_some_and(|t| t <= 300.0), "{o:?}");
    assert_eq!(o.tripped, ["error_ratio_vs_stable"]);
    // The sequential test trips at its first failing evaluation, on the 60 s grid.
    let o = &out[by_name("error_attribution")];
    let t = o
        .rollback_s
        .expect("error_attribution missed a 5× error rate");
    assert!(t <= 300.0 && t % 60.0 == 0.0, "{o:?}");
    assert_eq!(o.tripped, ["errors_attributed"]);
    let o = &out[by_name("statistical_gates")];
    assert!(o.rollback_s.is_some_and(|t| t <= 300.0), "{o:?}");
    assert!(
        o.tripped.contains(&"errors_attributed".to_string()),
        "{o:?}"
    );
    let null = scenario("null_stationary");
    let out = replicate(&null, 0, &prepared, TRAFFIC, 600, 11, 0);
    // (Kayenta's judge is not anytime-valid: about 0.2 % per interval, so a 10-minute
    // null is not rolled back at this seed, but nothing promises it. The change
    // detectors at their default arl0 of 10⁵ samples raise a false alarm in about one
    // 10-minute null in nine, so they are left out here.)
    for (p, o) in prepared.iter().zip(&out) {
        if ["cusum", "ewma"]
            .iter()
            .any(|k| p.method.name.starts_with(k))
        {
            continue;
        }
        assert_eq!(o.rollback_s, None, "{o:?}");
        close(
            "null samples per arm",
            o.candidate_requests as f64,
            12000.0,
            0.05,
        );
    }
}

#[test]
fn the_error_attribution_method_is_in_every_output() {
    let m = methods()
        .into_iter()
        .find(|m| m.name == "error_attribution")
        .expect("an error_attribution method");
    assert!(
        m.reads(ERRORS) && !m.reads(LATENCY),
        "it judges the error count only"
    );
    assert_eq!(m.interval_ms, 60_000);
    let gate = &m.gates[0];
    assert_eq!(gate["rule"]["kind"], "error_attribution");
    assert_eq!(gate["rule"]["alpha"], 0.01);
    let settings = Settings {
        mode: "test".into(),
        seed: 5,
        null_reps: 2,
        alternative_reps: 2,
        horizon_s: 600,
        traffic: TRAFFIC,
    };
    let picked: Vec<Scenario> = ["null_incident", "error_ratio_5"]
        .iter()
        .map(|n| scenario(n))
        .collect();
    let report = run(&settings, &picked, &methods(), |_, _| {}).expect("a run");
    let cell = report
        .cell("error_ratio_5", "error_attribution")
        .expect("a detection cell");
    assert_eq!((cell.reps, cell.rollbacks), (2, 2));
    assert_eq!(cell.tripped_by["errors_attributed"], 2);
    assert!(cell.error_events.median.is_some());
    let null = report
        .cell("null_incident", "error_attribution")
        .expect("a false-rollback cell");
    assert_eq!(null.reps, 2);
    let md = report.markdown();
    assert!(
        md.contains("- `error_attribution` ("),
        "listed among the methods"
    );
    let header = md
        .lines()
        .find(|l| l.starts_with("| null | "))
        .expect("the false-rollback table");
    assert!(header.contains("| `error_attribution` | "), "{header}");
    assert!(md.contains("| `error_ratio_5` | `error_attribution` | — | 100.0 %"));
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
    let methods_json = json["methods"].as_array().expect("methods");
    assert!(methods_json.iter().any(|m| m["name"] == "error_attribution"
        && m["gates"][0]["rule"]["kind"] == "error_attribution"));
    let cells = json["results"].as_array().expect("results");
    assert_eq!(
        cells
            .iter()
            .filter(|c| c["method"] == "error_attribution")
            .count(),
        2
    );
}

#[test]
fn the_sequential_mean_methods_are_in_every_output() {
    let all = methods();
    let find = |name: &str| {
        all.iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("a {name} method"))
    };
    // The gate at its defaults: alpha 1 %, a 20-sample burn-in, nothing else set.
    let gate = serde_json::json!({"name": "mean_latency", "metric": LATENCY, "stat": "mean",
        "rule": {"kind": "sequential_mean", "alpha": 0.01}, "samples_min": 20});
    for (name, interval_ms, quick) in [
        ("sequential_mean", 60_000, true),
        ("sequential_mean_1s", 1_000, false),
    ] {
        let m = find(name);
        assert!(
            m.reads(LATENCY) && !m.reads(ERRORS),
            "{name} judges latency only"
        );
        assert_eq!(m.gates, serde_json::json!([gate.clone()]), "{name}");
        assert_eq!((m.interval_ms, m.quick), (interval_ms, quick), "{name}");
    }
    let both = find("statistical_gates");
    assert!(both.reads(LATENCY) && both.reads(ERRORS));
    assert_eq!(both.interval_ms, 60_000);
    assert!(both.quick);
    let kinds: Vec<&str> = both
        .gates
        .as_array()
        .expect("gates")
        .iter()
        .map(|g| g["rule"]["kind"].as_str().expect("a kind"))
        .collect();
    assert_eq!(kinds, ["error_attribution", "sequential_mean"]);
    assert!(both.gates[1] == gate, "the same mean gate");
    // Every other method but Kayenta's judge is on the 60 s grid and runs in --quick.
    assert!(
        all.iter()
            .all(|m| m.quick == (m.interval_ms == 60_000 && m.name != "kayenta"))
    );

    let settings = Settings {
        mode: "test".into(),
        seed: 7,
        null_reps: 2,
        alternative_reps: 2,
        horizon_s: 600,
        traffic: TRAFFIC,
    };
    let picked: Vec<Scenario> = ["null_ar1", "mean_shift_1"]
        .iter()
        .map(|n| scenario(n))
        .collect();
    let report = run(&settings, &picked, &all, |_, _| {}).expect("a run");
    let md = report.markdown();
    let header = md
        .lines()
        .find(|l| l.starts_with("| null | "))
        .expect("the false-rollback table");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
    let methods_json = json["methods"].as_array().expect("methods");
    let cells = json["results"].as_array().expect("results");
    for name in ["sequential_mean", "sequential_mean_1s", "statistical_gates"] {
        let null = report
            .cell("null_ar1", name)
            .expect("a false-rollback cell");
        assert_eq!(null.reps, 2);
        let cell = report.cell("mean_shift_1", name).expect("a detection cell");
        assert_eq!(
            (cell.reps, cell.rollbacks),
            (2, 2),
            "{name} missed a 1σ shift"
        );
        assert_eq!(cell.tripped_by["mean_latency"], 2);
        assert!(cell.delay_s.median.is_some() && cell.candidate_samples.median.is_some());
        assert!(
            md.contains(&format!("- `{name}` (")),
            "{name} listed among the methods"
        );
        assert!(header.contains(&format!("| `{name}` |")), "{header}");
        assert!(md.contains(&format!("| `mean_shift_1` | `{name}` | — | 100.0 %")));
        assert!(methods_json.iter().any(|m| m["name"] == name));
        assert_eq!(cells.iter().filter(|c| c["method"] == name).count(), 2);
    }
    // The 60 s grid quantizes the delay; the 1 s grid shows the test's own.
    let coarse = report
        .cell("mean_shift_1", "sequential_mean")
        .expect("a cell");
    let fine = report
        .cell("mean_shift_1", "sequential_mean_1s")
        .expect("a cell");
    let (c, f) = (coarse.delay_s.median.unwrap(), fine.delay_s.median.unwrap());
    assert!(c % 60.0 == 0.0 && f < c, "60 s grid {c} s, 1 s grid {f} s");
}

#[test]
fn every_method_runs_at_the_split_its_policy_sets() {
    // At a 10 % canary every method's policy sets that weight (the harness refuses a
    // first action other than this `set_weight`), and the streams send a tenth of the
    // requests to the candidate, under load swings too: the split error_attribution
    // assumes is the one the requests follow.
    let traffic = Traffic {
        requests_per_s: 40.0,
        weight: 10,
    };
    for m in methods() {
        Prepared::new(&m, traffic).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut stream = Stream::new(scenario("null_diurnal_bursts"), traffic, 3600, 12);
    let mut sec = Second::default();
    let mut n = [0u64; 2];
    for _ in 0..3600 {
        stream.next_second(&mut sec);
        for arm in [STABLE, CANDIDATE] {
            n[arm] += sec.arms[arm].requests();
        }
    }
    close(
        "candidate share of requests",
        n[CANDIDATE] as f64 / (n[STABLE] + n[CANDIDATE]) as f64,
        0.1,
        0.03,
    );
}

#[test]
fn a_small_run_summarizes_every_cell() {
    let settings = Settings {
        mode: "test".into(),
        seed: 3,
        null_reps: 3,
        alternative_reps: 2,
        horizon_s: 300,
        traffic: TRAFFIC,
    };
    let picked: Vec<Scenario> = ["null_stationary", "mean_shift_2"]
        .iter()
        .map(|n| scenario(n))
        .collect();
    let report = run(&settings, &picked, &methods(), |_, _| {}).expect("a run");
    assert_eq!(report.results.len(), 2 * methods().len());
    let cell: &Summary = report
        .cell("mean_shift_2", "mean_vs_stable")
        .expect("a cell");
    assert_eq!((cell.reps, cell.rollbacks), (2, 2));
    assert_eq!(cell.tripped_by["latency_mean_vs_stable"], 2);
    let md = report.markdown();
    assert!(md.contains("| `mean_shift_2` | `mean_vs_stable` | — | 100.0 %"));
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
    assert_eq!(
        json["results"].as_array().map(Vec::len),
        Some(2 * methods().len())
    );
    let dir = std::env::temp_dir().join(format!("rollguard-detection-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    rollguard_detection::plot::write_plots(&report, &dir, false).expect("plots without text");
    for f in [
        "delay_vs_shift.png",
        "delay_vs_error_ratio.png",
        "false_rollback_rate.png",
    ] {
        let bytes = std::fs::read(dir.join(f)).expect("a plot");
        assert!(bytes.starts_with(b"\x89PNG"), "{f} is a PNG");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sequential_quantile_method_is_in_every_output_and_finds_the_tail() {
    let all = methods();
    let m = all
        .iter()
        .find(|m| m.name == "sequential_quantile")
        .expect("a sequential_quantile method");
    // The gate at its defaults: alpha 1 %, a 20-sample burn-in, nothing else set.
    let gate = serde_json::json!({"name": "p99_latency", "metric": LATENCY, "stat": "p99",
        "rule": {"kind": "sequential_quantile", "alpha": 0.01}, "samples_min": 20});
    assert_eq!(m.gates, serde_json::json!([gate]));
    assert!(m.reads(LATENCY) && !m.reads(ERRORS));
    assert_eq!((m.interval_ms, m.quick), (60_000, true));

    let settings = Settings {
        mode: "test".into(),
        seed: 11,
        null_reps: 2,
        alternative_reps: 3,
        horizon_s: 900,
        traffic: TRAFFIC,
    };
    let picked: Vec<Scenario> = ["null_stationary", "p99_plus_50pct"]
        .iter()
        .map(|n| scenario(n))
        .collect();
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|m| m.name == "sequential_quantile" || m.name == "sequential_mean")
        .collect();
    let report = run(&settings, &picked, &chosen, |_, _| {}).expect("a run");
    let md = report.markdown();
    assert!(md.contains("- `sequential_quantile` ("));
    let null = report
        .cell("null_stationary", "sequential_quantile")
        .expect("a false-rollback cell");
    assert_eq!((null.reps, null.rollbacks), (2, 0));
    // A tail 50 % longer with the median and p95 unchanged: every run rolled back by the
    // p99 gate, each at an evaluation on the 60 s grid.
    let cell = report
        .cell("p99_plus_50pct", "sequential_quantile")
        .expect("a detection cell");
    assert_eq!((cell.reps, cell.rollbacks), (3, 3), "{cell:?}");
    assert_eq!(cell.tripped_by["p99_latency"], 3);
    let median = cell.delay_s.median.expect("a median delay");
    assert!(median % 60.0 == 0.0 && median <= 600.0, "{median}");
    assert!(md.contains("| `p99_plus_50pct` | `sequential_quantile` | — | 100.0 %"));
}

#[test]
fn the_kayenta_method_is_kayentas_judge_at_its_defaults() {
    let m = methods()
        .into_iter()
        .find(|m| m.name == "kayenta")
        .expect("a kayenta method");
    assert!(
        m.reads(LATENCY) && !m.reads(ERRORS),
        "it judges latency only"
    );
    assert_eq!(
        m.gates,
        serde_json::json!([{"name": "kayenta_latency", "metric": LATENCY, "stat": "mean",
            "rule": {"kind": "mann_whitney"}, "samples_min": 50}])
    );
    assert_eq!((m.interval_ms, m.quick), (60_000, false));
}

#[test]
fn an_onset_shifted_stream_is_unchanged_before_its_onset_and_shifted_after() {
    // The same seed drives the change-point scenario and the same scenario without its
    // effect: every draw is the same, so the streams can be compared request by request.
    let change = scenario("change_mean_1_at_10min");
    let healthy = Scenario {
        effect: Effect::None,
        onset_s: 0,
        ..change
    };
    let seconds = CHANGE_ONSET_S + 120;
    let mut a = Stream::new(change, TRAFFIC, seconds, 21);
    let mut b = Stream::new(healthy, TRAFFIC, seconds, 21);
    let (mut sa, mut sb) = (Second::default(), Second::default());
    let (mut before, mut after) = (0u64, 0u64);
    for t in 0..seconds {
        a.next_second(&mut sa);
        b.next_second(&mut sb);
        assert_eq!(
            sa.arms[STABLE].latency, sb.arms[STABLE].latency,
            "stable at {t}"
        );
        assert_eq!(sa.arms[STABLE].errors, sb.arms[STABLE].errors);
        assert_eq!(sa.arms[STABLE].affected, 0);
        let (x, y) = (&sa.arms[CANDIDATE], &sb.arms[CANDIDATE]);
        assert_eq!(x.latency.len(), y.latency.len(), "requests at {t}");
        assert_eq!(x.errors, y.errors, "errors at {t}");
        if t < CHANGE_ONSET_S {
            assert_eq!(x.latency, y.latency, "unchanged before the onset, at {t}");
            assert_eq!(x.affected, 0);
            before += x.requests();
        } else {
            for (shifted, base) in x.latency.iter().zip(&y.latency) {
                // max(1 ms, ·) clamps the rare request below 1 ms before the shift.
                if *base > 1.0 {
                    let d = shifted - base;
                    assert!((d - LATENCY_SD_MS).abs() < 1e-9, "+1σ at {t}: {d}");
                }
            }
            assert_eq!(x.affected, x.requests(), "every request is affected");
            after += x.requests();
        }
    }
    count_close("candidate requests before the onset", before, 20.0 * 600.0);
    count_close("candidate requests after the onset", after, 20.0 * 120.0);
}

#[test]
fn a_change_detector_finds_a_change_after_its_learned_reference() {
    // cusum and ewma learn the candidate's reference from its first 200 samples, then
    // watch for a change. On the 1 s grid a 1σ change at 10 min is caught within
    // seconds of the onset; delay, samples and exposure count from the onset. A false
    // alarm on the healthy start is `early` and has no delay.
    let all = scenarios();
    let picked: Vec<Prepared> = methods()
        .iter()
        .filter(|m| ["cusum", "ewma", "cusum_1s", "ewma_1s"].contains(&m.name.as_str()))
        .map(|m| Prepared::new(m, TRAFFIC).expect("a method"))
        .collect();
    assert_eq!(picked.len(), 4);
    let index = all
        .iter()
        .position(|s| s.name == "change_mean_1_at_10min")
        .expect("the change scenario");
    let mut caught = 0;
    for rep in 0..6 {
        let out = replicate(&all[index], index, &picked, TRAFFIC, 900, 5, rep);
        for (p, o) in picked.iter().zip(&out) {
            let name = &p.method.name;
            let t = o.rollback_s.unwrap_or_else(|| panic!("{name} missed 1σ"));
            if o.early {
                assert!(t <= 600.0 && o.delay_s.is_none(), "{name}: {o:?}");
                continue;
            }
            caught += 1;
            let d = o.delay_s.expect("a delay");
            assert_eq!(d, t - 600.0, "{name}: from the onset");
            let latest = if name.ends_with("_1s") { 10.0 } else { 60.0 };
            assert!(d > 0.0 && d <= latest, "{name}: {o:?}");
            assert_eq!(o.exposure, o.candidate_requests, "{name}");
            count_close("samples from the onset", o.candidate_requests, 20.0 * d);
            assert_eq!(o.tripped.len(), 1, "{name}");
        }
    }
    assert!(caught >= 12, "most runs reach the onset: {caught} of 24");
}
