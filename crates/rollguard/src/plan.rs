//! The config compiled into what the state machine walks: an ordered list of stages
//! and the window layout of every metric.

use crate::config::{CanaryStep, Phase, PolicyConfig, Strategy};
use crate::detect::Detector;
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
    /// Per gate, its detector's state when a rollout starts it (derived charts take a
    /// search: done once per policy, not at every rollout).
    pub(crate) fresh: Vec<Detector>,
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
                WindowShape::new(mc, config.window_ms(mc), quantiles)
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
        Self {
            stages,
            shapes,
            gate_metric,
            observers,
            fresh: config
                .gates
                .iter()
                .map(|g| Detector::new(g).with_environment(config.environment.check))
                .collect(),
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
        WindowShape::new(&m, window_ms, false)
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
