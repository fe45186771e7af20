//! The config compiled into what the state machine walks: an ordered list of stages
//! and the window layout of every metric.

use crate::config::{CanaryStep, Phase, PolicyConfig, Strategy};
use crate::window::WindowShape;

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
    /// Whether any gate runs in the steady phase.
    pub(crate) steady: bool,
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
        let shapes = config
            .metrics
            .iter()
            .enumerate()
            .map(|(m, mc)| {
                let quantiles = config
                    .gates
                    .iter()
                    .zip(&gate_metric)
                    .any(|(g, gm)| *gm == m && g.stat.quantile().is_some());
                WindowShape::new(mc, quantiles)
            })
            .collect();
        let steady = config
            .gates
            .iter()
            .any(|g| g.phases.contains(&Phase::Steady));
        Self {
            stages,
            shapes,
            gate_metric,
            steady,
        }
    }

    /// The index of the promote stage.
    pub(crate) fn promote_index(&self) -> u32 {
        self.stages
            .iter()
            .position(|s| *s == Stage::Promote)
            .unwrap_or(0) as u32
    }
}
