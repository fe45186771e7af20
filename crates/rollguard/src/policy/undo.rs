//! Undoing a refused command without cloning the policy.
//!
//! A command fires the timers due by its time first, and may then be refused in the
//! state they leave; a refused input must leave the policy exactly as it was. Timers
//! and commands never write to a window: they only drop whole arms (and add fresh, empty
//! ones). So the undo record is the state without its windows, plus the order of the
//! arms, and the arms dropped during the input are kept (in [`Out`]) until it is done.

use super::*;

/// A command a policy accepted, with what undoes it ([`Policy::revert`]).
pub(crate) struct Applied {
    pub(super) undo: Undo,
    pub(super) dropped: Vec<Arm>,
}

/// What undoes one input: the state as it was with no arms, and its arms' versions.
pub(super) struct Undo {
    state: State,
    arms: Vec<String>,
}

impl State {
    /// Records everything but the windows.
    pub(super) fn undo_record(&mut self) -> Undo {
        let arms = core::mem::take(&mut self.arms);
        let undo = Undo {
            state: self.clone(),
            arms: arms.iter().map(|a| a.version.clone()).collect(),
        };
        self.arms = arms;
        undo
    }

    /// Puts the state back as [`State::undo_record`] found it, given the arms dropped
    /// since, in the order they were dropped.
    pub(super) fn undo(&mut self, undo: Undo, mut dropped: Vec<Arm>) {
        let mut live = core::mem::take(&mut self.arms);
        *self = undo.state;
        // An arm is only ever added for a version that has none, so the first arm of a
        // version to be dropped is the one the state had; a live arm of a version that
        // was never dropped is the original too.
        for version in &undo.arms {
            let pool = if dropped.iter().any(|a| &a.version == version) {
                &mut dropped
            } else {
                &mut live
            };
            if let Some(i) = pool.iter().position(|a| &a.version == version) {
                self.arms.push(pool.remove(i));
            }
        }
        debug_assert_eq!(self.arms.len(), undo.arms.len(), "an arm went missing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Sample;

    const CONFIG: &str = r#"{
      "format_version": 1,
      "versions": [{"id": "v1", "digest": "d1", "validated": true}, {"id": "v2", "digest": "d2"},
                   {"id": "v3", "digest": "d3"}],
      "stable": "v1",
      "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
      "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
                 "rule": {"kind": "vs_baseline", "max_ratio": 1.3}, "samples_min": 5}],
      "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 120000}],
                   "post_promotion_bake_ms": 120000},
      "analysis": {"interval_ms": 30000},
      "safety": {"cooldown_ms": 60000, "ack_timeout_ms": 60000}
    }"#;

    /// Every second of a healthy rollout of v2, then a regressed one of v3, a refused
    /// command fires the timers due by then and must leave the policy as it was: also
    /// when those timers dropped an arm (the rollout completing, a rollback's ack).
    #[test]
    fn a_refused_command_undoes_the_timers_it_fired() {
        let mut p = Policy::from_json(CONFIG, 0).unwrap();
        let (mut undone_drops, mut undone_timers) = (0, 0);
        for (version, from, to) in [("v2", 0, 400_000), ("v3", 400_000, 800_000)] {
            let step = p
                .handle(&Input::StartRollout {
                    at: from,
                    version: version.into(),
                })
                .unwrap();
            let mut ids: Vec<u64> = step.actions().filter_map(|d| d.action_id).collect();
            for t in (from..to).step_by(1000) {
                let arms = p.state.arms.len();
                let before = p.clone();
                let due = p.next_deadline().is_some_and(|d| d <= t);
                let e = p.handle(&Input::ClearBreaker { at: t }).unwrap_err();
                assert_eq!(e.code, ErrorCode::InvalidCommand);
                assert_eq!(p, before, "at {t}");
                let step = p.tick(t).unwrap();
                undone_timers += usize::from(due);
                undone_drops += usize::from(p.state.arms.len() < arms);
                ids.extend(step.actions().filter_map(|d| d.action_id));
                for id in ids.drain(..) {
                    let _ = p
                        .handle(&Input::Ack {
                            at: t,
                            action_id: id,
                        })
                        .unwrap();
                }
                let live: Vec<String> = p.state.arms.iter().map(|a| a.version.clone()).collect();
                for arm in &live {
                    let x = if arm == "v3" { 300.0 } else { 100.0 };
                    let step = p.observe(&Sample::value(t, arm, "latency_ms", x)).unwrap();
                    ids.extend(step.actions().filter_map(|d| d.action_id));
                }
            }
        }
        assert!(undone_timers > 10, "{undone_timers}");
        // The completion of v2's rollout dropped v1's arm.
        assert!(undone_drops >= 1, "{undone_drops}");
        assert_eq!(p.state.registry.aliases.stable, "v2");
    }
}
