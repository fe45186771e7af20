//! Compensating actions (the saga pattern): side effects a version caused outside the
//! system are recorded with an undo descriptor; a rollback away from the version
//! undoes them, newest first, one acknowledged `compensate` action at a time.
//!
//! - Effects belong to the version that caused them, which must be serving (the stable
//!   version or the rollout's candidate) when they are recorded.
//! - A rollback, once acknowledged, marks the effects of every version it takes traffic
//!   from (every version but its target) for compensation, and issues the newest
//!   marked effect's `compensate`. Each acknowledgement forgets that effect and issues
//!   the next; gates resume after the last. A failed or unacknowledged `compensate`
//!   halts and escalates like any action, and `resume` issues it again.
//! - A promotion, once acknowledged, commits the outgoing stable version's effects:
//!   they stay in the world and are forgotten (`effects_committed`).
//! - At most `limits.effects_max` effects are held, compensating ones included.

use super::*;
use crate::input::EffectSpec;

/// A recorded side effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Effect {
    pub(crate) version: String,
    pub(crate) id: String,
    /// The undo descriptor as compact JSON text of an object (so that its size in
    /// memory is its length: see the footprint).
    pub(crate) undo: String,
    pub(crate) recorded_at: Timestamp,
    /// A rollback took traffic from its version: it is waiting to be compensated.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub(crate) compensating: bool,
}

impl Effect {
    /// The undo descriptor as an object; `None` when the text is not one (a corrupt
    /// snapshot, which restore refuses).
    pub(crate) fn undo_object(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        serde_json::from_str(&self.undo).ok()
    }
}

impl Policy {
    /// `record_effect`: validates and records one side effect.
    pub(super) fn record_effect(
        &mut self,
        at: Timestamp,
        version: &str,
        effect: &EffectSpec,
        out: &mut Out,
    ) -> Result<(), Error> {
        let l = &self.config.limits;
        check_label(&effect.id, l.label_len_max, "effect.id", false)?;
        let undo = serde_json::to_string(&effect.undo).unwrap_or_default();
        check_text(&undo, l.text_len_max, "effect.undo")?;
        self.state.registry.require(version, "version")?;
        ensure(
            self.serving(version),
            ErrorCode::InvalidCommand,
            "version",
            || format!("{version:?} serves no traffic: neither stable nor the candidate"),
        )?;
        let s = &self.state;
        ensure(
            !s.effects
                .iter()
                .any(|e| !e.compensating && e.version == version && e.id == effect.id),
            ErrorCode::DuplicateEffect,
            "effect.id",
            || format!("{version:?} already recorded effect {:?}", effect.id),
        )?;
        ensure(
            (s.effects.len() as u64) < u64::from(l.effects_max),
            ErrorCode::TooManyEffects,
            "effect",
            || {
                format!(
                    "{} effects held, limits.effects_max is {}",
                    s.effects.len(),
                    l.effects_max
                )
            },
        )?;
        self.state.effects.push(Effect {
            version: version.to_string(),
            id: effect.id.clone(),
            undo,
            recorded_at: at,
            compensating: false,
        });
        out.event(
            at,
            EventKind::EffectRecorded {
                version: version.to_string(),
                effect_id: effect.id.clone(),
            },
        );
        Ok(())
    }

    /// Whether `version` serves traffic: the stable version or the rollout's candidate.
    pub(super) fn serving(&self, version: &str) -> bool {
        let s = &self.state;
        s.registry.aliases.stable == version
            || s.rollout.as_ref().is_some_and(|r| r.version == version)
    }

    /// A rollback to `to` was acknowledged: every other version's effects are to be
    /// compensated, and the newest goes first.
    pub(super) fn start_compensation(&mut self, now: Timestamp, to: &str, out: &mut Out) {
        for e in &mut self.state.effects {
            if e.version != to {
                e.compensating = true;
            }
        }
        self.compensate_next(now, out);
    }

    /// Issues the newest waiting effect's `compensate`, if any (nothing else pending).
    pub(super) fn compensate_next(&mut self, now: Timestamp, out: &mut Out) {
        if self.state.pending.is_some() || self.state.halt.is_some() {
            return;
        }
        let Some(e) = self.state.effects.iter().rev().find(|e| e.compensating) else {
            return;
        };
        let action = Action::Compensate {
            version: e.version.clone(),
            effect_id: e.id.clone(),
            undo: e.undo_object().unwrap_or_default(),
        };
        self.issue(now, action, Reason::Compensation, None, Vec::new(), out);
    }

    /// A `compensate` was acknowledged: forget the effect, then issue the next one, or
    /// resume gates after the last.
    pub(super) fn compensated(
        &mut self,
        now: Timestamp,
        version: String,
        effect_id: String,
        out: &mut Out,
    ) {
        let effects = &mut self.state.effects;
        if let Some(i) = effects
            .iter()
            .rposition(|e| e.compensating && e.version == version && e.id == effect_id)
        {
            effects.remove(i);
        }
        out.event(now, EventKind::EffectCompensated { version, effect_id });
        self.compensate_next(now, out);
        if self.state.pending.is_none() && self.state.analysis_at.is_none() {
            self.state.analysis_at = self.steady_analysis(now);
        }
    }

    /// A promotion away from `from` was acknowledged: its effects are committed.
    pub(super) fn commit_effects(&mut self, now: Timestamp, from: &str, out: &mut Out) {
        let before = self.state.effects.len();
        self.state
            .effects
            .retain(|e| e.compensating || e.version != from);
        let effects = (before - self.state.effects.len()) as u32;
        if effects > 0 {
            out.event(
                now,
                EventKind::EffectsCommitted {
                    version: from.to_string(),
                    effects,
                },
            );
        }
    }
}
