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

    /// When the policy next needs a [`tick`](Policy::tick), if ever. Ticking earlier or
    /// more often is harmless; ticking late delays decisions until the tick (every
    /// other input also fires due timers first).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.deadline(t))
            .min()
    }

    /// When `timer` is due, if it is armed and the policy would act on it: while an
    /// action is pending only the ack deadline, the cooldown and the kickoff run, and
    /// while automation is halted the rollout does not move.
    pub(super) fn deadline(&self, timer: Timer) -> Option<Timestamp> {
        let s = &self.state;
        let idle = s.pending.is_none();
        let running = s.rollout.as_ref().filter(|_| idle && s.halt.is_none());
        // Frozen by the ladder: the stage does not move until `resume`.
        let moving = running.filter(|r| r.ladder.frozen.is_none());
        match timer {
            Timer::Kickoff => s.kickoff.as_ref().map(|_| s.now),
            Timer::AckDeadline => s.pending.as_ref().map(Pending::deadline),
            Timer::Cooldown => s.cooldown_until.deadline(),
            Timer::Analysis => s.analysis_at.filter(|_| idle),
            Timer::GradualBake => running
                .and_then(|r| r.gradual.as_ref())
                .and_then(|g| g.bake_ends_at),
            Timer::StageEnd => moving.and_then(|r| r.stage_ends_at),
            Timer::ApprovalTimeout => moving
                .and_then(|r| r.pause.as_ref())
                .and_then(Pause::deadline),
            Timer::StageEntry => moving.filter(|r| !r.entered).map(|_| s.now),
        }
    }

    /// Acts on every timer due at `now`, in the table's order, on the way to `until`.
    /// Each is checked when its turn comes, so one that an earlier one disarms (an
    /// analysis that issues a rollback stops the rollout's timers) does not fire.
    pub(super) fn fire(&mut self, now: Timestamp, until: Timestamp, out: &mut Out) {
        for timer in Timer::ALL {
            if self.deadline(timer).is_some_and(|d| d <= now) {
                self.expire(timer, now, until, out);
            }
        }
    }

    /// `timer` is due at `now`: disarm it and act.
    fn expire(&mut self, timer: Timer, now: Timestamp, until: Timestamp, out: &mut Out) {
        match timer {
            Timer::Kickoff => {
                if let Some(candidate) = self.state.kickoff.take() {
                    self.begin_rollout(&candidate, now, out);
                }
            }
            Timer::AckDeadline => {
                if let Some(p) = self.state.pending.take() {
                    out.event(now, EventKind::AckTimedOut { action_id: p.id });
                    self.halt(now, Reason::AckTimeout, Some(p), String::new(), out);
                }
            }
            Timer::Cooldown => {
                self.state.cooldown_until.clear();
                out.event(now, EventKind::CooldownEnded {});
            }
            Timer::Analysis => self.analysis_due(now, until, out),
            Timer::GradualBake => self.gradual_bake_end(now, out),
            Timer::StageEnd => {
                if let Some(r) = self.state.rollout.as_mut() {
                    r.stage_ends_at = None;
                    r.stage_done = true;
                }
                self.stage_end(now, out);
            }
            Timer::ApprovalTimeout => {
                if let Some(p) = self.state.rollout.as_mut().and_then(|r| r.pause.as_mut()) {
                    p.deadline = None;
                }
                self.approval_timeout(now, out);
            }
            Timer::StageEntry => self.enter_stage(now, None, out),
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
