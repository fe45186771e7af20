//! Detectors: the unit behind each gate kind. A detector keeps its own state (none for
//! the window rules), may see every accepted sample of the arms its gate compares, and
//! at each evaluation returns a [`Judgement`]: a verdict with the evidence behind it.
//!
//! Adding a kind means a [`Rule`] variant (config), a file here with its state and
//! tests, a [`Detector`] variant when it keeps state, and an [`Evidence`] variant for
//! its report. Persistence, reports and the policy do not change.
//!
//! Samples reach a detector only when its kind [`observes`] them: the policy compiles,
//! per metric, the list of gates that do (`Plan::observers`), so the column path of a
//! metric no such gate reads does exactly what it did before.

pub(crate) mod attribution;
pub(crate) mod cusum;
pub(crate) mod drift;
pub(crate) mod ewma;
pub(crate) mod kayenta;
pub(crate) mod mann_whitney;
pub(crate) mod mean;
pub(crate) mod quantile;
pub(crate) mod rate_slo;
mod threshold;
mod vs_baseline;

use serde::{Deserialize, Serialize};

use crate::config::{Autocorrelation, Direction, GateConfig, Margin, NoData, Rule, Worse};
use crate::output::{Chart, Evidence, Verdict};
use crate::stats::histogram::HistShape;
use crate::stats::window::Reading;
use crate::time::Timestamp;

/// Which side of a comparison a sample's arm is on, for the gate's current phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The version judged: the candidate, or the stable version in the steady phase.
    Judged,
    /// The version it is compared with.
    Baseline,
}

/// An arm's place in a gate's comparison when one of its samples arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Side {
    pub(crate) role: Role,
    /// The judged arm's share of traffic as the policy set it: the canary weight, or
    /// one half while both arms see mirrored traffic; 0 where the policy sets none.
    pub(crate) share: f64,
    /// The metric's quantile histogram, when a gate reads one of its quantiles (the
    /// kinds that count samples in it).
    pub(crate) hist: Option<HistShape>,
}

/// Whether gates of this kind see samples, not only window readings.
pub(crate) fn observes(rule: &Rule) -> bool {
    match rule {
        Rule::Threshold { .. } | Rule::VsBaseline { .. } | Rule::KayentaScore { .. } => false,
        Rule::ErrorAttribution { .. }
        | Rule::SequentialMean { .. }
        | Rule::Cusum { .. }
        | Rule::Ewma { .. }
        | Rule::RateSlo { .. }
        | Rule::SequentialQuantile { .. }
        | Rule::Drift { .. }
        | Rule::MannWhitney { .. } => true,
    }
}

/// The CUSUM chart a `cusum` gate's config gives (h derived from `arl0` unless set,
/// for a learned reference with its guard against the reference's own error).
pub(crate) fn cusum_chart(gate: &GateConfig) -> Option<cusum::Settings> {
    let Rule::Cusum {
        worse,
        shift,
        arl0,
        threshold,
        reference_mean,
        reference_sd,
        autocorrelation,
        clip,
    } = gate.rule
    else {
        return None;
    };
    let k = 0.5 * shift;
    let reference = reference_mean
        .zip(reference_sd)
        .map(|(mean, sd)| cusum::Reference::given(mean, sd));
    let learn = gate.samples_min.max(2);
    let error = cusum::reference_error(learn, reference.is_some(), k / 2.0);
    Some(cusum::Settings {
        higher_is_worse: worse == Worse::Higher,
        k,
        h: threshold.unwrap_or_else(|| cusum::threshold_for(k - error, arl0)),
        reference,
        learn,
        serial: autocorrelation == Autocorrelation::Adjust,
        clip: cusum::clip_bound(clip, k),
    })
}

/// The EWMA chart an `ewma` gate's config gives (the limit derived from `arl0` unless
/// set, as `cusum_chart`; a search of a few milliseconds, done once per policy by its
/// plan).
pub(crate) fn ewma_chart(gate: &GateConfig) -> Option<ewma::Settings> {
    let Rule::Ewma {
        worse,
        lambda,
        arl0,
        limit,
        reference_mean,
        reference_sd,
        autocorrelation,
        clip,
    } = gate.rule
    else {
        return None;
    };
    let reference = reference_mean
        .zip(reference_sd)
        .map(|(mean, sd)| cusum::Reference::given(mean, sd));
    let learn = gate.samples_min.max(2);
    let error = cusum::reference_error(learn, reference.is_some(), ewma::GUARD_MAX);
    let h = match limit {
        Some(l) => l * ewma::sd_factor(lambda),
        None => ewma::limit_for(lambda, arl0, error),
    };
    Some(ewma::Settings {
        higher_is_worse: worse == Worse::Higher,
        lambda,
        h,
        reference,
        learn,
        serial: autocorrelation == Autocorrelation::Adjust,
        clip: cusum::clip_bound(clip, h),
    })
}

/// The chart the version before the reference guard, `clip` and `autocorrelation`
/// derived for a `cusum` gate: h from `arl0` alone, samples standardised by the plain
/// reference deviation and not clipped.
fn legacy_cusum_chart(gate: &GateConfig) -> Option<cusum::Settings> {
    let (
        Some(chart),
        &Rule::Cusum {
            arl0, threshold, ..
        },
    ) = (cusum_chart(gate), &gate.rule)
    else {
        return None;
    };
    Some(cusum::Settings {
        h: threshold.unwrap_or_else(|| cusum::threshold_for(chart.k, arl0)),
        serial: false,
        clip: None,
        ..chart
    })
}

/// As [`legacy_cusum_chart`], for an `ewma` gate.
fn legacy_ewma_chart(gate: &GateConfig) -> Option<ewma::Settings> {
    let (
        Some(chart),
        &Rule::Ewma {
            lambda,
            arl0,
            limit,
            ..
        },
    ) = (ewma_chart(gate), &gate.rule)
    else {
        return None;
    };
    Some(ewma::Settings {
        h: match limit {
            Some(l) => l * ewma::sd_factor(lambda),
            None => ewma::limit_for(lambda, arl0, 0.0),
        },
        serial: false,
        clip: None,
        ..chart
    })
}

/// Per-gate state kept between evaluations by stateful gate kinds (sequential tests,
/// CUSUM). The window rules read windows and keep none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Detector {
    /// Threshold and vs_baseline rules.
    #[default]
    Stateless,
    /// `error_attribution`.
    ErrorAttribution(attribution::Attribution),
    /// `sequential_mean` (boxed: its moments would double every gate's size).
    SequentialMean(Box<mean::MeanTest>),
    /// `cusum` (boxed, as `sequential_mean`).
    Cusum(Box<cusum::Cusum>),
    /// `ewma` (boxed, as `cusum`).
    Ewma(Box<ewma::Ewma>),
    /// `rate_slo`.
    RateSlo(rate_slo::RateTest),
    /// `sequential_quantile` (boxed, as `sequential_mean`).
    SequentialQuantile(Box<quantile::QuantileTest>),
    /// `mann_whitney` (boxed: the interval's samples).
    MannWhitney(Box<mann_whitney::RankTest>),
    /// `drift` (boxed: two count vectors).
    Drift(Box<drift::Drift>),
    /// Tests only: records every sample it is fed, to check that every sample path
    /// feeds detectors alike.
    /// (Boxed, so that test builds keep `GateState` within the footprint model's
    /// `GATE_BYTES`, which a test checks.)
    #[cfg(test)]
    #[serde(skip)]
    #[allow(clippy::box_collection)]
    Recorder { seen: Box<Vec<Seen>> },
}

/// A sample as a detector saw it (tests only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Seen {
    pub(crate) role: Role,
    pub(crate) at: Timestamp,
    pub(crate) value: Option<f64>,
    pub(crate) counts: (u64, u64),
}

/// The result of judging one gate once, before persistence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judgement {
    pub(crate) verdict: Verdict,
    pub(crate) evidence: Evidence,
    /// When the kind estimates the degradation began (sequential kinds); otherwise the
    /// policy estimates it from the window's buckets against the evidence's bounds.
    pub(crate) onset: Option<Timestamp>,
}

/// What a gate's readings are, at one evaluation: the judged arm's window statistic
/// and, for gates that compare, the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Readings {
    pub(crate) subject: Reading,
    pub(crate) baseline: Option<Reading>,
}

impl Detector {
    /// The state a gate starts a rollout with.
    pub(crate) fn new(gate: &GateConfig) -> Self {
        match &gate.rule {
            // A kayenta_score gate keeps nothing: it scores its members' judgements of
            // the same evaluation.
            Rule::Threshold { .. } | Rule::VsBaseline { .. } | Rule::KayentaScore { .. } => {
                Self::Stateless
            }
            Rule::ErrorAttribution { .. } => Self::ErrorAttribution(Default::default()),
            Rule::SequentialMean { .. } => Self::SequentialMean(Default::default()),
            Rule::RateSlo { .. } => Self::RateSlo(Default::default()),
            Rule::SequentialQuantile { .. } => Self::SequentialQuantile(Default::default()),
            &Rule::MannWhitney { samples_max, .. } => {
                Self::MannWhitney(Box::new(mann_whitney::RankTest::new(samples_max)))
            }
            Rule::Cusum { .. } => match cusum_chart(gate) {
                Some(chart) => Self::Cusum(Box::new(cusum::Cusum::new(chart))),
                None => Self::Stateless,
            },
            Rule::Ewma { .. } => match ewma_chart(gate) {
                Some(chart) => Self::Ewma(Box::new(ewma::Ewma::new(chart))),
                None => Self::Stateless,
            },
            Rule::Drift { .. } => match drift::Binning::of(&gate.rule) {
                Some(b) => Self::Drift(Box::new(drift::Drift::new(b))),
                None => Self::Stateless,
            },
        }
    }

    /// The same fresh state, with the stable version's shadow test that
    /// `environment.check` reads (`rate_slo` only; see `policy/environment.rs`).
    pub(crate) fn with_environment(self, check: bool) -> Self {
        match self {
            Self::RateSlo(mut t) if check => {
                t.stable = Some(Box::default());
                Self::RateSlo(t)
            }
            other => other,
        }
    }

    /// Whether this state belongs to the gate `gate` whose fresh state (as a rollout
    /// starts it) is `fresh` (restore checks it): the same kind, and for the charts the
    /// same settings, or the settings the version before the guard, `clip` and
    /// `autocorrelation` derived from the same config (a snapshot from then keeps the
    /// chart it started with: it continues as the uninterrupted run would have).
    pub(crate) fn fits(&self, fresh: &Self, gate: &GateConfig) -> bool {
        match (self, fresh) {
            (Self::Stateless, Self::Stateless)
            | (Self::ErrorAttribution(_), Self::ErrorAttribution(_))
            | (Self::SequentialMean(_), Self::SequentialMean(_))
            | (Self::RateSlo(_), Self::RateSlo(_))
            | (Self::SequentialQuantile(_), Self::SequentialQuantile(_)) => true,
            (Self::Cusum(c), Self::Cusum(f)) => {
                c.chart == f.chart || Some(c.chart) == legacy_cusum_chart(gate)
            }
            (Self::Ewma(c), Self::Ewma(f)) => {
                c.chart == f.chart || Some(c.chart) == legacy_ewma_chart(gate)
            }
            (Self::MannWhitney(t), Self::MannWhitney(f)) => t.samples_max == f.samples_max,
            (Self::Drift(d), Self::Drift(f)) => d.binning == f.binning,
            #[cfg(test)]
            (Self::Recorder { .. }, _) => true,
            (
                Self::Stateless
                | Self::ErrorAttribution(_)
                | Self::SequentialMean(_)
                | Self::Cusum(_)
                | Self::Ewma(_)
                | Self::RateSlo(_)
                | Self::SequentialQuantile(_)
                | Self::Drift(_)
                | Self::MannWhitney(_),
                _,
            ) => false,
        }
    }

    /// One accepted value sample of an arm the gate compares.
    #[inline]
    pub(crate) fn observe_value(&mut self, side: Side, at: Timestamp, x: f64) {
        match self {
            Self::Stateless | Self::ErrorAttribution(_) | Self::RateSlo(_) => {}
            Self::MannWhitney(t) => t.observe(side.role == Role::Judged, x),
            Self::SequentialMean(t) => t.observe(side.role == Role::Judged, x),
            Self::SequentialQuantile(t) => {
                if let Some(h) = side.hist {
                    t.observe(side.role == Role::Judged, h, x);
                }
            }
            Self::Cusum(c) => {
                if side.role == Role::Judged {
                    c.observe(at, x);
                }
            }
            Self::Ewma(c) => {
                if side.role == Role::Judged {
                    c.observe(at, x);
                }
            }
            Self::Drift(d) => d.observe(side.role == Role::Judged, x),
            #[cfg(test)]
            Self::Recorder { seen } => seen.push(Seen {
                role: side.role,
                at,
                value: Some(x),
                counts: (0, 0),
            }),
        }
        let _ = (side, at, x);
    }

    /// One accepted count sample (`events` out of `total`) of an arm the gate compares.
    #[inline]
    pub(crate) fn observe_count(&mut self, side: Side, at: Timestamp, events: u64, total: u64) {
        match self {
            Self::Stateless
            | Self::SequentialMean(_)
            | Self::Cusum(_)
            | Self::Ewma(_)
            | Self::SequentialQuantile(_)
            | Self::MannWhitney(_)
            | Self::Drift(_) => {}
            Self::ErrorAttribution(a) => a.observe(side.role == Role::Judged, side.share, events),
            Self::RateSlo(t) => {
                if side.role == Role::Judged {
                    t.observe(events, total);
                } else {
                    t.observe_stable(events, total);
                }
            }
            #[cfg(test)]
            Self::Recorder { seen } => seen.push(Seen {
                role: side.role,
                at,
                value: None,
                counts: (events, total),
            }),
        }
        let _ = (side, at, events, total);
    }

    /// Judges the gate at an evaluation at `now`. `hist` is the metric's quantile
    /// histogram, for the kinds that count samples in it.
    pub(crate) fn judge(
        &mut self,
        gate: &GateConfig,
        r: Readings,
        hist: Option<HistShape>,
        now: Timestamp,
    ) -> Judgement {
        let enough = |r: &Reading| r.value.is_some() && r.evidence >= gate.samples_min;
        let no_data_verdict = match gate.on_no_data {
            NoData::Inconclusive => Verdict::Inconclusive,
            NoData::Fail => Verdict::Fail,
            NoData::Pass => Verdict::Pass,
        };
        if let (
            Self::ErrorAttribution(a),
            &Rule::ErrorAttribution {
                alpha,
                margin,
                mixing_events,
            },
        ) = (&mut *self, &gate.rule)
        {
            // Config validation refuses an absolute margin for this kind.
            let m = match margin {
                Margin::Relative(m) => m,
                Margin::Absolute(_) => 0.0,
            };
            let f = a.judge(
                attribution::Settings {
                    alpha,
                    ratio: 1.0 + m,
                    mixing_events,
                },
                now,
            );
            // A test that has rejected has concluded; otherwise the gate passes while
            // the candidate has traffic in the window, like every other kind.
            let verdict = if f.rejected {
                Verdict::Fail
            } else if enough(&r.subject) {
                Verdict::Pass
            } else {
                no_data_verdict
            };
            return Judgement {
                verdict,
                evidence: Evidence::Sequential {
                    effect: f.ratio,
                    effect_lower: f.ratio_lower,
                    effect_upper: None,
                    log_e_value: f.ln_e,
                    p_value: f.p_value,
                    used: f.judged,
                    baseline_used: Some(f.baseline),
                    variance_inflation: None,
                },
                onset: f.onset,
            };
        }
        if let (
            Self::SequentialMean(t),
            &Rule::SequentialMean {
                alpha,
                worse,
                margin,
                mixing_scale,
                autocorrelation,
            },
        ) = (&mut *self, &gate.rule)
        {
            let (margin, relative) = match margin {
                Margin::Relative(m) => (m, true),
                Margin::Absolute(m) => (m, false),
            };
            let f = t.judge(
                mean::Settings {
                    alpha,
                    higher_is_worse: worse == Worse::Higher,
                    margin,
                    relative,
                    scale: mixing_scale,
                    burn_in: gate.samples_min,
                    serial: autocorrelation == Autocorrelation::Adjust,
                },
                now,
            );
            let verdict = if f.rejected {
                Verdict::Fail
            } else if f.started {
                Verdict::Pass
            } else {
                no_data_verdict
            };
            return Judgement {
                verdict,
                evidence: Evidence::Sequential {
                    effect: f.effect,
                    effect_lower: f.effect_lower,
                    effect_upper: None,
                    log_e_value: f.ln_e,
                    p_value: f.p_value,
                    used: f.judged,
                    baseline_used: Some(f.baseline),
                    variance_inflation: f.inflation,
                },
                onset: f.onset,
            };
        }
        if let (
            Self::RateSlo(t),
            &Rule::RateSlo {
                max_rate,
                alpha,
                mixing_events,
            },
        ) = (&mut *self, &gate.rule)
        {
            let f = t.judge(max_rate, alpha, mixing_events / max_rate, now);
            // The stable version's shadow test keeps its own running extremes, so it
            // is judged at every evaluation too (its verdict acts only through
            // `environment.check`).
            if let Some(s) = t.stable.as_mut() {
                let _ = s.judge(max_rate, alpha, mixing_events / max_rate, now);
            }
            let verdict = if f.rejected {
                Verdict::Fail
            } else if enough(&r.subject) {
                Verdict::Pass
            } else {
                no_data_verdict
            };
            return Judgement {
                verdict,
                evidence: Evidence::Sequential {
                    effect: f.rate,
                    effect_lower: f.rate_lower,
                    effect_upper: None,
                    log_e_value: f.ln_e,
                    p_value: f.p_value,
                    used: f.total,
                    baseline_used: None,
                    variance_inflation: None,
                },
                onset: f.onset,
            };
        }
        if let (
            Self::SequentialQuantile(t),
            &Rule::SequentialQuantile {
                alpha,
                worse,
                margin,
                mixing_events,
            },
            Some(p),
            Some(h),
        ) = (&mut *self, &gate.rule, gate.stat.quantile(), hist)
        {
            let (margin, relative) = match margin {
                Margin::Relative(m) => (m, true),
                Margin::Absolute(m) => (m, false),
            };
            let f = t.judge(
                quantile::Settings {
                    alpha,
                    p,
                    higher_is_worse: worse == Worse::Higher,
                    margin,
                    relative,
                    mixing_events,
                    burn_in: gate.samples_min,
                },
                h,
                now,
            );
            let verdict = if f.rejected {
                Verdict::Fail
            } else if f.started {
                Verdict::Pass
            } else {
                no_data_verdict
            };
            return Judgement {
                verdict,
                evidence: Evidence::Quantile {
                    quantile: p,
                    judged_quantile: f.judged.value,
                    judged_lower: f.judged.lower,
                    judged_upper: f.judged.upper,
                    baseline_quantile: f.baseline.value,
                    baseline_lower: f.baseline.lower,
                    baseline_upper: f.baseline.upper,
                    effect: f.effect.value,
                    effect_lower: f.effect.lower,
                    effect_upper: f.effect.upper,
                    log_e_value: f.ln_e,
                    p_value: f.p_value,
                    used: f.judged_n,
                    baseline_used: f.baseline_n,
                },
                onset: f.onset,
            };
        }
        if let (
            Self::MannWhitney(t),
            &Rule::MannWhitney {
                worse,
                confidence,
                tolerance,
                effect_size,
                allowed_increase,
                allowed_decrease,
                outliers,
                ..
            },
        ) = (&mut *self, &gate.rule)
        {
            let f = t.judge(mann_whitney::Settings {
                increase: worse != Direction::Lower,
                decrease: worse != Direction::Higher,
                confidence,
                tolerance,
                measure: effect_size,
                allowed_increase: allowed_increase.unwrap_or(effect_size.default_allowed()),
                allowed_decrease: allowed_decrease.unwrap_or(effect_size.default_allowed()),
                outlier_factor: outliers.removal(),
                samples_min: gate.samples_min,
            });
            use mann_whitney::Classification as C;
            // The settings classify only the worse directions, so any High or Low
            // fails the gate.
            let verdict = match f.classification {
                C::High | C::Low => Verdict::Fail,
                C::Pass => Verdict::Pass,
                C::NoData => no_data_verdict,
            };
            let test = f.test;
            return Judgement {
                verdict,
                evidence: Evidence::Rank {
                    classification: f.classification,
                    // A report holds finite numbers only (JSON has no infinity):
                    // a ratio over a baseline mean of about 0 is left out.
                    u_statistic: test.map(|t| t.u).filter(|v| v.is_finite()),
                    p_value: test.map(|t| t.p_value).filter(|v| v.is_finite()),
                    effect: test.map(|t| t.estimate).filter(|v| v.is_finite()),
                    effect_lower: test.map(|t| t.lower).filter(|v| v.is_finite()),
                    effect_upper: test.map(|t| t.upper).filter(|v| v.is_finite()),
                    mean_ratio: test.map(|t| t.mean_ratio).filter(|v| v.is_finite()),
                    cles: test.map(|t| t.cles).filter(|v| v.is_finite()),
                    used: f.used,
                    baseline_used: f.baseline_used,
                    outliers_removed: f.removed,
                    baseline_outliers_removed: f.baseline_removed,
                },
                onset: None,
            };
        }
        let chart = match self {
            Self::Cusum(c) => Some((Chart::Cusum, c.judge(), c.chart.h)),
            Self::Ewma(c) => Some((Chart::Ewma, c.judge(), c.chart.h)),
            _ => None,
        };
        if let Some((chart, f, threshold)) = chart {
            let verdict = if f.alarm {
                Verdict::Fail
            } else if f.ready {
                Verdict::Pass
            } else {
                no_data_verdict
            };
            return Judgement {
                verdict,
                evidence: Evidence::Change {
                    chart,
                    statistic: f.statistic,
                    threshold,
                    reference_mean: f.reference.map(|r| r.mean),
                    reference_sd: f.reference.map(|r| r.sd),
                    used: f.used,
                },
                onset: f.onset,
            };
        }
        if let (
            Self::Drift(d),
            &Rule::Drift {
                measure, threshold, ..
            },
        ) = (&*self, &gate.rule)
        {
            let f = d.judge(measure);
            let threshold = threshold.unwrap_or(measure.default_threshold());
            let ready = f.used >= gate.samples_min && f.baseline_used >= gate.samples_min;
            let verdict = match f.divergence {
                Some(x) if ready && x > threshold => Verdict::Fail,
                Some(_) if ready => Verdict::Pass,
                _ => no_data_verdict,
            };
            return Judgement {
                verdict,
                evidence: Evidence::Drift {
                    measure,
                    divergence: f.divergence,
                    threshold,
                    used: f.used,
                    baseline_used: f.baseline_used,
                    bin: f.bin.map(|b| b.0),
                    share: f.bin.map(|b| b.1),
                    baseline_share: f.bin.map(|b| b.2),
                },
                onset: None,
            };
        }
        let bounds = |min, max| Evidence::bounds(r.subject, r.baseline, min, max);
        let no_data = Judgement {
            verdict: no_data_verdict,
            evidence: bounds(None, None),
            onset: None,
        };
        if !enough(&r.subject) {
            return no_data;
        }
        let found = match &gate.rule {
            Rule::Threshold { min, max } => Some(threshold::bounds(*min, *max)),
            rule @ Rule::VsBaseline { .. } => {
                let Some(b) = r.baseline.filter(enough).and_then(|b| b.value) else {
                    return no_data;
                };
                vs_baseline::bounds(rule, b)
            }
            // A detector always fits its gate's rule (restore checks it); were it
            // not, the gate would judge nothing.
            Rule::ErrorAttribution { .. }
            | Rule::SequentialMean { .. }
            | Rule::Cusum { .. }
            | Rule::Ewma { .. }
            | Rule::RateSlo { .. }
            | Rule::SequentialQuantile { .. }
            | Rule::Drift { .. }
            | Rule::MannWhitney { .. }
            | Rule::KayentaScore { .. } => None,
        };
        let Some((min, max)) = found else {
            return Judgement {
                verdict: Verdict::Inconclusive,
                evidence: bounds(None, None),
                onset: None,
            };
        };
        let x = r.subject.value.unwrap_or(0.0);
        Judgement {
            verdict: if breaks(min, max, x) {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
            evidence: bounds(min, max),
            onset: None,
        }
    }
}

/// Whether `x` is outside the bounds.
pub(crate) fn breaks(min: Option<f64>, max: Option<f64>, x: f64) -> bool {
    min.is_some_and(|lo| x < lo) || max.is_some_and(|hi| x > hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(rule: &str, on_no_data: &str) -> GateConfig {
        let json = format!(
            r#"{{"name": "g", "metric": "m", "stat": "mean", "rule": {rule},
                "samples_min": 10, "on_no_data": "{on_no_data}"}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn reading(value: f64, evidence: u64) -> Reading {
        Reading {
            value: Some(value),
            evidence,
        }
    }

    fn judge(g: &GateConfig, subject: Reading, baseline: Option<Reading>) -> Judgement {
        Detector::new(g).judge(g, Readings { subject, baseline }, None, 0)
    }

    #[test]
    fn a_threshold_fails_outside_its_bounds_and_reports_them() {
        let g = gate(r#"{"kind": "threshold", "max": 100.0}"#, "inconclusive");
        let j = judge(&g, reading(150.0, 20), None);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.evidence.observed(), Some(150.0));
        assert_eq!(j.evidence.bounds_of(), (None, Some(100.0)));
        assert_eq!(judge(&g, reading(100.0, 20), None).verdict, Verdict::Pass);
    }

    #[test]
    fn too_little_evidence_gives_the_no_data_verdict_without_bounds() {
        for (policy, verdict) in [
            ("inconclusive", Verdict::Inconclusive),
            ("fail", Verdict::Fail),
            ("pass", Verdict::Pass),
        ] {
            let g = gate(r#"{"kind": "threshold", "max": 100.0}"#, policy);
            let j = judge(&g, reading(150.0, 9), None);
            assert_eq!(j.verdict, verdict);
            assert_eq!(j.evidence.bounds_of(), (None, None));
            assert_eq!(j.evidence.observed(), Some(150.0));
        }
    }

    #[test]
    fn vs_baseline_needs_enough_baseline_evidence_too() {
        let g = gate(
            r#"{"kind": "vs_baseline", "max_ratio": 1.5}"#,
            "inconclusive",
        );
        let j = judge(&g, reading(160.0, 20), Some(reading(100.0, 20)));
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.evidence.bounds_of(), (None, Some(150.0)));
        let thin = judge(&g, reading(160.0, 20), Some(reading(100.0, 5)));
        assert_eq!(thin.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn window_rules_keep_no_state_and_see_no_samples() {
        for rule in [
            r#"{"kind": "threshold", "max": 1.0}"#,
            r#"{"kind": "vs_baseline", "max_ratio": 1.5}"#,
        ] {
            let g = gate(rule, "inconclusive");
            assert!(!observes(&g.rule));
            assert!(Detector::new(&g).fits(&Detector::new(&g), &g));
        }
    }
}
