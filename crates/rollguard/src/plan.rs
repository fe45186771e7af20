//! The config compiled into what the state machine walks: an ordered list of stages
//! and the window layout of every metric.

use crate::config::limits::{CUSUM_ARL0_MAX, EWMA_ARL0_MAX};
use crate::config::{CanaryStep, GateConfig, Phase, PolicyConfig, Rule, Strategy};
use crate::detect::Detector;
use crate::scope::ScopeLabel;
use crate::stats::window::WindowShape;
use crate::time::{TIME_MAX, Timestamp, later};

/// One stage of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Mirror traffic to the candidate.
    Shadow { duration_ms: u64 },
    /// Blue-green preview environment.
    Preview { duration_ms: u64 },
    /// A canary weight.
    Weight {
        weight: u32,
        duration_ms: u64,
        step: u32,
    },
    /// Wait for an operator.
    Approval,
    /// Switch all traffic to the candidate.
    Promote,
    /// Watch the new stable against the previous one.
    Bake { duration_ms: u64 },
}

/// The compiled config.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) stages: Vec<Stage>,
    pub(crate) shapes: Vec<WindowShape>,
    /// Metric index of each gate.
    pub(crate) gate_metric: Vec<usize>,
    /// Per metric, the gates whose detectors see its samples (see
    /// [`crate::detect::observes`]); empty for a metric only window rules read, so
    /// recording it costs nothing more.
    pub(crate) observers: Vec<Vec<usize>>,
    /// Per gate, its config as the overall verdict judges it: the config's, with its
    /// share of `alpha` (or `arl0`) when scopes take the rest.
    pub(crate) gates: Vec<GateConfig>,
    /// Per gate, its detector's state when a rollout starts it (derived charts take a
    /// search: done once per policy, not at every rollout).
    pub(crate) fresh: Vec<Detector>,
    /// How scopes are judged, when the config has `scopes`.
    pub(crate) scopes: Option<ScopePlan>,
    /// Per gate, whether a `kayenta_score` gate reads its report.
    pub(crate) kayenta_members: Vec<bool>,
    /// Whether any gate runs in the steady phase.
    pub(crate) steady: bool,
    /// `analysis.interval_ms`.
    pub(crate) interval_ms: u64,
    /// Evaluations fall on multiples of this: the least common multiple of the bucket
    /// widths of the metrics gates read, so that at every evaluation each of their
    /// windows holds exactly its last `window_ms`. 1 (no alignment) when that multiple
    /// is longer than the interval; `rollguard validate` warns then.
    pub(crate) grid_ms: u64,
}

impl Plan {
    /// Compiles a validated config.
    pub(crate) fn new(config: &PolicyConfig) -> Self {
        let mut stages = Vec::new();
        let bake = match &config.strategy {
            Strategy::Canary {
                steps,
                post_promotion_bake_ms,
            } => {
                for (i, s) in steps.iter().enumerate() {
                    stages.push(match *s {
                        CanaryStep::Shadow { duration_ms } => Stage::Shadow { duration_ms },
                        CanaryStep::SetWeight {
                            weight,
                            duration_ms,
                        } => Stage::Weight {
                            weight,
                            duration_ms,
                            step: i as u32,
                        },
                        CanaryStep::Approval {} => Stage::Approval,
                    });
                }
                *post_promotion_bake_ms
            }
            Strategy::BlueGreen {
                shadow_ms,
                preview_ms,
                auto_promote,
                post_promotion_bake_ms,
            } => {
                if *shadow_ms > 0 {
                    stages.push(Stage::Shadow {
                        duration_ms: *shadow_ms,
                    });
                }
                if *preview_ms > 0 {
                    stages.push(Stage::Preview {
                        duration_ms: *preview_ms,
                    });
                }
                if !auto_promote {
                    stages.push(Stage::Approval);
                }
                *post_promotion_bake_ms
            }
        };
        stages.push(Stage::Promote);
        if bake > 0 {
            stages.push(Stage::Bake { duration_ms: bake });
        }
        let gate_metric: Vec<usize> = config
            .gates
            .iter()
            .map(|g| config.metric_index(&g.metric).unwrap_or(0))
            .collect();
        let shapes: Vec<WindowShape> = config
            .metrics
            .iter()
            .enumerate()
            .map(|(m, mc)| {
                let quantiles = config
                    .gates
                    .iter()
                    .zip(&gate_metric)
                    .any(|(g, gm)| *gm == m && g.stat.quantile().is_some());
                let cells_max = config.scopes.as_ref().map_or(0, |s| s.histogram_bins_max);
                WindowShape::new(mc, config.window_ms(mc), quantiles, cells_max)
            })
            .collect();
        let steady = config
            .gates
            .iter()
            .any(|g| g.phases.contains(&Phase::Steady));
        let grid_ms = evaluation_grid(&shapes, &gate_metric, config.analysis.interval_ms);
        let observers = (0..shapes.len())
            .map(|m| {
                let gates = config.gates.iter().zip(&gate_metric).enumerate();
                gates
                    .filter(|(_, (g, gm))| **gm == m && crate::detect::observes(&g.rule))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let (gates, scopes) = match &config.scopes {
            None => (config.gates.clone(), None),
            Some(sc) => {
                let share = sc.alpha_share;
                let per_scope = share / f64::from(config.limits.scopes_max);
                let scoped: Vec<GateConfig> = config
                    .gates
                    .iter()
                    .map(|g| with_share(g, per_scope, share, sc.samples_min))
                    .collect();
                let tiers = sc
                    .tiers
                    .keys()
                    .map(|tier| {
                        let gates: Vec<GateConfig> = (0..config.gates.len())
                            .filter_map(|i| config.tier_gate(tier, i))
                            .map(|g| with_share(&g, per_scope, share, None))
                            .collect();
                        (tier.clone(), Judging::new(gates))
                    })
                    .collect();
                let plan = ScopePlan {
                    by: sc.by.clone(),
                    max: config.limits.scopes_max,
                    base: Judging::new(scoped),
                    tiers,
                };
                let overall = config
                    .gates
                    .iter()
                    .map(|g| with_share(g, 1.0 - share, 1.0 - share, None))
                    .collect();
                (overall, Some(plan))
            }
        };
        Self {
            stages,
            shapes,
            gate_metric,
            observers,
            fresh: gates
                .iter()
                .map(|g| Detector::new(g).with_environment(config.environment.check))
                .collect(),
            kayenta_members: config
                .gates
                .iter()
                .map(|g| {
                    config.gates.iter().any(|k| match &k.rule {
                        Rule::KayentaScore { members, .. } => {
                            members.iter().any(|m| m.gate == g.name)
                        }
                        _ => false,
                    })
                })
                .collect(),
            gates,
            scopes,
            steady,
            interval_ms: config.analysis.interval_ms,
            grid_ms,
        }
    }

    /// `t` rounded up to the evaluation grid (or `t` itself, if that would pass
    /// [`TIME_MAX`]).
    pub(crate) fn align(&self, t: Timestamp) -> Timestamp {
        let aligned = t.div_ceil(self.grid_ms).saturating_mul(self.grid_ms);
        if aligned <= TIME_MAX { aligned } else { t }
    }

    /// The evaluation after one at `now`: the first grid point at least one interval
    /// later, or `None` when time cannot move past `now`.
    pub(crate) fn next_evaluation(&self, now: Timestamp) -> Option<Timestamp> {
        Some(self.align(later(now, self.interval_ms))).filter(|t| *t > now)
    }

    /// The index of the promote stage.
    pub(crate) fn promote_index(&self) -> u32 {
        self.stages
            .iter()
            .position(|s| *s == Stage::Promote)
            .unwrap_or(0) as u32
    }
}

/// How the scopes of a config with `scopes` are formed and judged.
#[derive(Debug, Clone)]
pub(crate) struct ScopePlan {
    /// The labels that form a scope.
    pub(crate) by: Vec<ScopeLabel>,
    /// `limits.scopes_max`.
    pub(crate) max: u32,
    /// How a scope is judged: every gate with its share of `alpha` (or `arl0`) and
    /// the scopes' `samples_min`.
    pub(crate) base: Judging,
    /// How the scopes of a tier with overrides are judged instead, by tier, in order of
    /// the tiers' names.
    pub(crate) tiers: Vec<(String, Judging)>,
}

impl ScopePlan {
    /// How the scopes of `tier` (or of no known tier) are judged.
    pub(crate) fn judging(&self, tier: Option<&str>) -> &Judging {
        self.judging_at(self.tier_index(tier))
    }

    /// The index in `tiers` of `tier`, if it has overrides: found once for a scope,
    /// then [`ScopePlan::judging_at`] per gate.
    pub(crate) fn tier_index(&self, tier: Option<&str>) -> Option<u32> {
        let tier = tier?;
        let i = self
            .tiers
            .binary_search_by(|(t, _)| t.as_str().cmp(tier))
            .ok()?;
        Some(i as u32)
    }

    /// How the scopes of the tier at `index` in `tiers` (or of none) are judged.
    pub(crate) fn judging_at(&self, index: Option<u32>) -> &Judging {
        index
            .and_then(|i| self.tiers.get(i as usize))
            .map_or(&self.base, |(_, j)| j)
    }
}

/// Gates as one kind of scope judges them: per gate, its config and its detector's
/// state when a rollout starts it.
#[derive(Debug, Clone)]
pub(crate) struct Judging {
    pub(crate) gates: Vec<GateConfig>,
    pub(crate) fresh: Vec<Detector>,
}

impl Judging {
    fn new(gates: Vec<GateConfig>) -> Self {
        Self {
            fresh: gates.iter().map(Detector::new).collect(),
            gates,
        }
    }
}

/// `gate` judged at `share` of its `alpha` (the anytime-valid kinds), its charts
/// allowed `chart_share` of the false alarms of its `arl0` (capped at the largest
/// `arl0` the kind takes), with `samples_min` if given. Other kinds are unchanged.
fn with_share(
    gate: &GateConfig,
    share: f64,
    chart_share: f64,
    samples_min: Option<u64>,
) -> GateConfig {
    let mut g = gate.clone();
    match &mut g.rule {
        Rule::ErrorAttribution { alpha, .. }
        | Rule::SequentialMean { alpha, .. }
        | Rule::RateSlo { alpha, .. }
        | Rule::SequentialQuantile { alpha, .. } => *alpha *= share,
        Rule::Cusum { arl0, .. } => *arl0 = (*arl0 / chart_share).min(CUSUM_ARL0_MAX),
        Rule::Ewma { arl0, .. } => *arl0 = (*arl0 / chart_share).min(EWMA_ARL0_MAX),
        _ => {}
    }
    if let Some(n) = samples_min {
        g.samples_min = n;
    }
    g
}

/// The `alpha` a gate of this config is judged at, for the kinds that have one.
pub(crate) fn alpha_of(gate: &GateConfig) -> Option<f64> {
    match gate.rule {
        Rule::ErrorAttribution { alpha, .. }
        | Rule::SequentialMean { alpha, .. }
        | Rule::RateSlo { alpha, .. }
        | Rule::SequentialQuantile { alpha, .. } => Some(alpha),
        _ => None,
    }
}

/// The least common multiple of the bucket widths of the metrics gates read, if it is
/// at most `interval_ms`; else 1.
pub(crate) fn evaluation_grid(
    shapes: &[WindowShape],
    gate_metric: &[usize],
    interval_ms: u64,
) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let mut grid = 1u64;
    for (m, shape) in shapes.iter().enumerate() {
        if !gate_metric.contains(&m) {
            continue;
        }
        let w = shape.width_ms;
        match (grid / gcd(grid, w)).checked_mul(w) {
            Some(lcm) if lcm <= interval_ms => grid = lcm,
            _ => return 1,
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MetricConfig, MetricKind};

    fn shape(window_ms: u64, buckets: u32) -> WindowShape {
        let m = MetricConfig {
            name: "m".into(),
            kind: MetricKind::Value,
            window_ms: Some(window_ms),
            buckets,
            histogram_range: Default::default(),
        };
        WindowShape::new(&m, window_ms, false, 0)
    }

    #[test]
    fn the_grid_is_the_common_boundary_of_gated_windows() {
        // Widths 6 s and 4 s: boundaries common to both every 12 s.
        let shapes = [shape(60_000, 10), shape(40_000, 10), shape(7_000, 1)];
        assert_eq!(evaluation_grid(&shapes, &[0, 1], 60_000), 12_000);
        // A metric no gate reads does not count.
        assert_eq!(evaluation_grid(&shapes, &[0], 60_000), 6_000);
        // 12 s × 7 s = 84 s is longer than the interval: no alignment.
        assert_eq!(evaluation_grid(&shapes, &[0, 1, 2], 60_000), 1);
        assert_eq!(evaluation_grid(&shapes, &[], 60_000), 1);
    }
}
