//! Timers: firing everything due, in a fixed order, on the way to an input's time.

use super::*;

impl Policy {
    /// Fires every timer due at or before `t`, in time order, then sets the time to `t`.
    pub(super) fn advance(&mut self, t: Timestamp, out: &mut Out) {
        // Each firing clears its timer or moves it strictly later, and analyses lagging
        // far behind are skipped (see `analysis_due`), so this ends after a bounded
        // number of firings; the bound is a second guard against a bug becoming a hang.
        for _ in 0..10_000 + 4 * ANALYSIS_CATCHUP_MAX {
            match self.next_deadline() {
                Some(d) if d <= t => {
                    self.state.now = self.state.now.max(d);
                    self.fire(self.state.now, t, out);
                }
                _ => break,
            }
        }
        self.state.now = t;
    }

    /// Acts on every timer due at `now`, in a fixed order, on the way to `until`.
    pub(super) fn fire(&mut self, now: Timestamp, until: Timestamp, out: &mut Out) {
        if let Some(candidate) = self.state.kickoff.take() {
            self.begin_rollout(&candidate, now, out);
        }
        if let Some(p) = self.state.pending.take_if(|p| p.deadline <= now) {
            out.event(now, EventKind::AckTimedOut { action_id: p.id });
            self.halt(now, Reason::AckTimeout, Some(p), String::new(), out);
        }
        if self.state.cooldown_until.is_some_and(|c| c <= now) {
            self.state.cooldown_until = None;
            out.event(now, EventKind::CooldownEnded {});
        }
        // From here on each timer may issue an action; while one is pending nothing else
        // moves, and while automation is halted the rollout does not progress.
        let idle = |p: &Self| p.state.pending.is_none();
        if idle(self) && self.state.analysis_at.is_some_and(|a| a <= now) {
            self.analysis_due(now, until, out);
        }
        if !idle(self) || self.state.halt.is_some() {
            return;
        }
        if let Some(r) = self
            .state
            .rollout
            .as_mut()
            .filter(|r| r.stage_ends_at.is_some_and(|e| e <= now))
        {
            r.stage_ends_at = None;
            r.stage_done = true;
            self.stage_end(now, out);
        }
        let timed_out = self
            .state
            .rollout
            .as_mut()
            .and_then(|r| r.pause.as_mut())
            .is_some_and(|p| p.deadline.take_if(|d| *d <= now).is_some());
        if idle(self) && timed_out {
            self.approval_timeout(now, out);
        }
        if idle(self) && self.state.rollout.as_ref().is_some_and(|r| !r.entered) {
            self.enter_stage(now, None, out);
        }
    }

    /// An evaluation is due at `now`. Evaluations lagging more than
    /// [`ANALYSIS_CATCHUP_MAX`] intervals behind `until` (a tick long after its
    /// deadline) are skipped and reported, so one input does bounded work.
    pub(super) fn analysis_due(&mut self, now: Timestamp, until: Timestamp, out: &mut Out) {
        let interval = self.config.analysis.interval_ms;
        let behind = until.saturating_sub(now) / interval;
        if behind >= ANALYSIS_CATCHUP_MAX {
            let evaluations = behind - ANALYSIS_CATCHUP_MAX + 1;
            let resumes_at = self
                .plan
                .align(later(now, evaluations.saturating_mul(interval)));
            self.state.analysis_at = Some(resumes_at).filter(|t| *t > now);
            out.event(
                now,
                EventKind::AnalysisSkipped {
                    evaluations,
                    resumes_at,
                },
            );
            return;
        }
        self.state.analysis_at = self.plan.next_evaluation(now);
        self.analyse(now, out);
    }

    pub(super) fn steady_analysis(&self, now: Timestamp) -> Option<Timestamp> {
        self.plan
            .steady
            .then(|| self.plan.next_evaluation(now))
            .flatten()
    }
}
