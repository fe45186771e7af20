//! `kayenta_score`: Kayenta's composite judgement of one interval (NetflixACAJudge's
//! `WeightedSumScorer` and `ThresholdScoreClassifier`, with the canary stage's rule that
//! an interim judgement must be above `marginal`), over the classifications its member
//! `mann_whitney` gates reported in the same evaluation.
//!
//! - Each member's label: its classification, except that a `must_have_data`, non-critical
//!   member without data is `no_data_fail` (Kayenta's `NodataFailMetric`). Muted members
//!   are reported and left out of everything below.
//! - A critical member whose label is not `pass` (High, Low, or no data) makes the score 0.
//! - Otherwise, if half the scored members or more are `no_data`, the score is 0.
//! - Otherwise each group's score is pass / (pass + high + low + no_data_fail) × 100 (a
//!   member in several groups counts in each); a group with none of those counts 100.
//!   The score is Σ group score × weight / 100, where a group named in `group_weights`
//!   has its weight and the others share 100 − Σ `group_weights` equally; rounded half
//!   up to two decimals (Commons Math's `MathUtils.round(x, 2)` on the decimal that
//!   `Double.toString` prints, here Rust's shortest round-trip digits).

use std::collections::BTreeMap;

use super::Judgement;
use crate::config::{GateConfig, KayentaMember, NoData};
use crate::output::{
    Classification, Evidence, KayentaLabel, ScoreGroup, ScoreMetric, ScoreReason, Verdict,
};

/// Kayenta's threshold of no-data members, in percent.
const NODATA_PERCENT: f64 = 50.0;

/// What one composite judgement found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Composite {
    /// The score, 0..=100; `None` when no scored member was evaluated.
    pub(crate) score: Option<f64>,
    pub(crate) reason: ScoreReason,
    /// The first critical member that failed, for `reason` `critical`.
    pub(crate) critical_metric: Option<String>,
    pub(crate) groups: Vec<ScoreGroup>,
    pub(crate) metrics: Vec<ScoreMetric>,
}

/// A `kayenta_score` gate's judgement, from its members' classifications of this
/// evaluation (`found[i]` for member `i`, `None` when it was not evaluated): fail at or
/// below `marginal`, inconclusive below `pass`, else pass; the gate's `on_no_data`
/// verdict when no scored member was evaluated or none had data.
pub(crate) fn judge(
    gate: &GateConfig,
    found: &[Option<Classification>],
    members: &[KayentaMember],
    group_weights: &BTreeMap<String, f64>,
    pass: f64,
    marginal: f64,
) -> Judgement {
    let c = score(members, found, group_weights);
    let without_data = c.metrics.iter().filter(|m| !m.muted).all(|m| {
        matches!(
            m.classification,
            KayentaLabel::NoData | KayentaLabel::NoDataFail
        )
    });
    let verdict = match c.score {
        Some(_) if without_data => None,
        None => None,
        Some(s) if s <= marginal => Some(Verdict::Fail),
        Some(s) if s < pass => Some(Verdict::Inconclusive),
        Some(_) => Some(Verdict::Pass),
    };
    let verdict = verdict.unwrap_or(match gate.on_no_data {
        NoData::Inconclusive => Verdict::Inconclusive,
        NoData::Fail => Verdict::Fail,
        NoData::Pass => Verdict::Pass,
    });
    Judgement {
        verdict,
        evidence: Evidence::Score {
            score: c.score,
            marginal,
            pass,
            reason: c.reason,
            critical_metric: c.critical_metric,
            groups: c.groups,
            metrics: c.metrics,
        },
        onset: None,
    }
}

/// Scores the members' classifications of one evaluation. `found[i]` is member `i`'s
/// classification, `None` when its gate was not evaluated (not in the phase).
pub(crate) fn score(
    members: &[KayentaMember],
    found: &[Option<Classification>],
    weights: &BTreeMap<String, f64>,
) -> Composite {
    let mut metrics = Vec::new();
    // (label, member) of the scored members, in config order.
    let mut scored: Vec<(KayentaLabel, &KayentaMember)> = Vec::new();
    for (m, c) in members.iter().zip(found) {
        let Some(c) = *c else { continue };
        let label = match c {
            Classification::High => KayentaLabel::High,
            Classification::Low => KayentaLabel::Low,
            Classification::Pass => KayentaLabel::Pass,
            Classification::NoData if m.must_have_data && !m.critical => KayentaLabel::NoDataFail,
            Classification::NoData => KayentaLabel::NoData,
        };
        metrics.push(ScoreMetric {
            gate: m.gate.clone(),
            classification: label,
            critical: m.critical,
            muted: m.muted,
        });
        if !m.muted {
            scored.push((label, m));
        }
    }
    let groups = group_scores(&scored);
    let mut out = Composite {
        score: None,
        reason: ScoreReason::NoData,
        critical_metric: None,
        groups,
        metrics,
    };
    if scored.is_empty() {
        return out;
    }
    if let Some((_, m)) = scored
        .iter()
        .find(|(l, m)| m.critical && *l != KayentaLabel::Pass)
    {
        out.score = Some(0.0);
        out.reason = ScoreReason::Critical;
        out.critical_metric = Some(m.gate.clone());
        return out;
    }
    let nodata = scored
        .iter()
        .filter(|(l, _)| *l == KayentaLabel::NoData)
        .count();
    if nodata as f64 / scored.len() as f64 * 100.0 >= NODATA_PERCENT {
        out.score = Some(0.0);
        out.reason = ScoreReason::NoData;
        return out;
    }
    let listed: f64 = weights.values().sum();
    let unlisted = out
        .groups
        .iter()
        .filter(|g| !weights.contains_key(&g.name))
        .count();
    let shared = if unlisted > 0 {
        (100.0 - listed) / unlisted as f64
    } else {
        0.0
    };
    let mut total = 0.0;
    for g in &mut out.groups {
        g.weight = weights.get(&g.name).copied().unwrap_or(shared);
        total += g.score.unwrap_or(100.0) * (g.weight / 100.0);
    }
    out.score = Some(round2(total));
    out.reason = ScoreReason::Score;
    out
}

/// Each group's counts and score, by name.
fn group_scores(scored: &[(KayentaLabel, &KayentaMember)]) -> Vec<ScoreGroup> {
    let mut by: BTreeMap<&str, ScoreGroup> = BTreeMap::new();
    for (label, m) in scored {
        for name in &m.groups {
            let g = by.entry(name.as_str()).or_insert_with(|| ScoreGroup {
                name: name.clone(),
                score: None,
                weight: 0.0,
                pass: 0,
                high: 0,
                low: 0,
                no_data: 0,
                no_data_fail: 0,
            });
            match label {
                KayentaLabel::Pass => g.pass += 1,
                KayentaLabel::High => g.high += 1,
                KayentaLabel::Low => g.low += 1,
                KayentaLabel::NoData => g.no_data += 1,
                KayentaLabel::NoDataFail => g.no_data_fail += 1,
            }
        }
    }
    let mut groups: Vec<ScoreGroup> = by.into_values().collect();
    for g in &mut groups {
        let counted = g.pass + g.high + g.low + g.no_data_fail;
        if counted > 0 {
            g.score = Some(g.pass as f64 / counted as f64 * 100.0);
        }
    }
    groups
}

/// `x` rounded half up to two decimals, on its shortest decimal representation (so
/// 95.125 rounds to 95.13, as Java's `BigDecimal(Double.toString(x))` does). For the
/// finite, non-negative scores of this module, at most 100.
pub(crate) fn round2(x: f64) -> f64 {
    if !x.is_finite() || x < 0.0 {
        return x;
    }
    let text = format!("{x}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut digits = frac.bytes().map(|b| u64::from(b - b'0'));
    let whole: u64 = int.parse().unwrap_or(0);
    let (d1, d2, d3) = (
        digits.next().unwrap_or(0),
        digits.next().unwrap_or(0),
        digits.next().unwrap_or(0),
    );
    let hundredths = whole * 100 + d1 * 10 + d2 + u64::from(d3 >= 5);
    hundredths as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(gate: &str, groups: &[&str]) -> KayentaMember {
        KayentaMember {
            gate: gate.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            critical: false,
            must_have_data: false,
            muted: false,
        }
    }

    use Classification::{High, Low, NoData, Pass};

    #[test]
    fn group_scores_are_pass_shares_and_weights_split_the_rest() {
        // Kayenta's ScorerSuite shape: two groups, one weighted.
        let members = vec![
            member("a", &["latency"]),
            member("b", &["latency"]),
            member("c", &["errors"]),
            member("d", &["system"]),
        ];
        let weights = BTreeMap::from([("latency".to_string(), 50.0)]);
        let c = score(
            &members,
            &[Some(Pass), Some(High), Some(Pass), Some(Low)],
            &weights,
        );
        // latency 50 x 0.5, errors 100 x 0.25, system 0 x 0.25.
        assert_eq!(c.score, Some(50.0));
        assert_eq!(c.reason, ScoreReason::Score);
        let names: Vec<&str> = c.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["errors", "latency", "system"]);
        assert_eq!(c.groups[1].score, Some(50.0));
        assert_eq!(c.groups[0].weight, 25.0);
    }

    #[test]
    fn a_group_with_only_no_data_counts_100_and_must_have_data_counts_against() {
        let mut strict = member("b", &["errors"]);
        strict.must_have_data = true;
        let members = vec![
            member("a", &["latency"]),
            member("b0", &["latency"]),
            member("c", &["errors"]),
        ];
        let c = score(
            &members,
            &[Some(Pass), Some(Pass), Some(NoData)],
            &BTreeMap::new(),
        );
        // 1 of 3 no data: below half. errors has nothing counted: 100.
        assert_eq!(c.score, Some(100.0));
        assert_eq!(c.groups[0].score, None);
        let members = vec![
            member("a", &["latency"]),
            member("b0", &["latency"]),
            strict,
        ];
        let c = score(
            &members,
            &[Some(Pass), Some(Pass), Some(NoData)],
            &BTreeMap::new(),
        );
        assert_eq!(c.metrics[2].classification, KayentaLabel::NoDataFail);
        assert_eq!(c.score, Some(50.0));
    }

    #[test]
    fn half_no_data_or_a_critical_failure_is_zero() {
        let members = vec![member("a", &["x"]), member("b", &["x"])];
        let c = score(&members, &[Some(Pass), Some(NoData)], &BTreeMap::new());
        assert_eq!((c.score, c.reason), (Some(0.0), ScoreReason::NoData));
        let mut crit = member("b", &["x"]);
        crit.critical = true;
        let members = vec![member("a", &["x"]), member("a2", &["x"]), crit];
        let c = score(
            &members,
            &[Some(Pass), Some(Pass), Some(Low)],
            &BTreeMap::new(),
        );
        assert_eq!((c.score, c.reason), (Some(0.0), ScoreReason::Critical));
        assert_eq!(c.critical_metric.as_deref(), Some("b"));
        // A critical member without data fails too (Kayenta: critical and not Pass).
        let c = score(
            &members,
            &[Some(Pass), Some(Pass), Some(NoData)],
            &BTreeMap::new(),
        );
        assert_eq!(c.reason, ScoreReason::Critical);
    }

    #[test]
    fn muted_members_are_reported_not_scored_and_absent_ones_skipped() {
        let mut quiet = member("q", &["x"]);
        quiet.muted = true;
        let members = vec![member("a", &["x"]), quiet, member("gone", &["x"])];
        let c = score(&members, &[Some(Pass), Some(High), None], &BTreeMap::new());
        assert_eq!(c.score, Some(100.0));
        assert_eq!(c.metrics.len(), 2);
        assert!(c.metrics[1].muted);
        let c = score(&members, &[None, Some(High), None], &BTreeMap::new());
        assert_eq!((c.score, c.reason), (None, ScoreReason::NoData));
    }

    #[test]
    fn rounding_is_half_up_on_the_printed_decimal() {
        assert_eq!(round2(95.125), 95.13);
        assert_eq!(round2(66.666_666_666_666_67), 66.67);
        assert_eq!(round2(33.333_333_333_333_336), 33.33);
        assert_eq!(round2(100.0), 100.0);
        assert_eq!(round2(0.005), 0.01);
        assert_eq!(round2(2.675), 2.68);
    }
}
