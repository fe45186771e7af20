//! Environment or model? (issue 10, item 5; seed 003.) Before an automated rollback,
//! with `environment.check` on, judge the stable version by the rules that tripped.
//!
//! A gate that judges the candidate on its own (a `threshold` rule on its window,
//! `rate_slo`) also trips when something both versions depend on degrades: an
//! incident downstream, a load peak, bad input data. Rolling back then fixes nothing,
//! starts a cooldown and counts towards the breaker (the oscillation seed 003
//! describes). The gates that compare the candidate with the stable version
//! (`vs_baseline`, `error_attribution`, `sequential_mean`, `sequential_quantile`,
//! `mann_whitney`, `drift`) already cancel what both share and are left alone.
//!
//! What is decided here, and why:
//!
//! - **Where.** In the `shadow` and `canary` phases only: both versions serve at the same
//!   time, so the stable version's reading over the same window saw the same
//!   environment. `preview` traffic is a different population (test traffic), and the
//!   bake and steady phases have no concurrent arm; there a tripped gate rolls back as
//!   before.
//! - **Which kinds.** `threshold`: the stable version's reading of the same statistic
//!   over the same window, against the same bounds (windows are kept per version
//!   anyway). `rate_slo`: its test is cumulative and its rejection permanent for the
//!   phase, so a window reading of the stable version would clear when the incident
//!   does while the candidate's gate stays failed; instead a shadow of the same test
//!   counts the stable version's requests over the same phase (kept only with the check
//!   on). `cusum` and `ewma` would need a shadow chart with its own learned reference;
//!   they run in the bake and steady phases, where there is no concurrent arm, so this
//!   increment leaves them out: a tripped chart, like every other kind, rolls back.
//! - **How much.** The stable version must fail the same rule, and show at least
//!   `ratio` of the candidate's degradation: for `threshold`, its distance past the
//!   bound (candidate p95 900 and stable 850 against a max of 500: 350 of 400, 0.875);
//!   for `rate_slo`, its error rate since the phase began. A candidate that is worse than the stable version on top
//!   of a shared degradation falls below the ratio and is rolled back.
//! - **What then.** When every tripped, acting gate finds the stable version degraded
//!   so, the policy holds (no rollback, no cooldown, no breaker count; the stage does
//!   not end while a gate is tripped) and escalates once per episode with
//!   `environment_suspected`; the escalation's reports carry the stable version's
//!   reading and sample count, its detail both arms' numbers. A tripped gate whose
//!   latest evaluation did not fail (it waits for `clear_after` passes) keeps an
//!   episode going but does not start one. One tripped gate that does not qualify (a
//!   comparison gate, the stable version recovered, the candidate clearly worse) and
//!   the rollback is due as before, with one allowance: during an episode the stable
//!   version must be seen recovered at as many evaluations in a row as the gate's
//!   `consecutive` (the candidate needed that many failures to trip), because the
//!   windows that straddle the end of a shared incident read one arm just under the
//!   bound and the other just over it (in the benchmark below, a third of the false
//!   rollbacks left with the check on came from those windows).
//! - **`rate_slo` evidence.** The stable version qualifies once its own test has
//!   rejected the objective (permanent for the phase, like the candidate's), or while
//!   its rate since the phase began is above the objective: the two tests race to
//!   their boundary and at a 50 % split the candidate's wins half the time, which
//!   rolled back two thirds of the healthy candidates the check still rolled back
//!   when only the stable's rejection counted. The check comes before the halt, breaker and
//!   cooldown, which decide whether a due rollback may be issued: here none is due.

use super::*;

impl Policy {
    /// Before an automated rollback for the `tripped` gates' reports: when the
    /// environment check applies and every one of them finds the stable version
    /// degraded too, the reports with the stable version's readings and the detail of
    /// the escalation; `None` when the rollback is due as before.
    pub(super) fn environment_suspected(
        &mut self,
        phase: Phase,
        now: Timestamp,
        tripped: &[GateReport],
    ) -> Option<(Vec<GateReport>, String)> {
        let found = self.environment_check(phase, now, tripped);
        self.state.environment_clear = match &found {
            Some((_, _, true)) => self.state.environment_clear.saturating_add(1),
            _ => 0,
        };
        found.map(|(reports, detail, _)| (reports, detail))
    }

    /// [`Policy::environment_suspected`], and whether it holds only because the
    /// stable version recovered fewer evaluations ago than a gate's `consecutive`.
    fn environment_check(
        &self,
        phase: Phase,
        now: Timestamp,
        tripped: &[GateReport],
    ) -> Option<(Vec<GateReport>, String, bool)> {
        let env = self.config.environment;
        if !env.check
            || !matches!(phase, Phase::Shadow | Phase::Canary)
            || self.state.pending.is_some()
            || tripped.is_empty()
        {
            return None;
        }
        let (subject, Some(stable)) = self.arms_in(phase) else {
            return None;
        };
        let holding = self.state.blocked == Some(Reason::EnvironmentSuspected);
        let mut reports = Vec::with_capacity(tripped.len());
        let mut lines = Vec::with_capacity(tripped.len());
        let mut waiting = false;
        for r in tripped {
            let i = self.config.gates.iter().position(|g| g.name == r.gate)?;
            let mut report = r.clone();
            let line = if r.verdict == Verdict::Fail {
                match self.stable_degraded(i, &subject, &stable, now, env.ratio, &mut report) {
                    Some(line) => line,
                    // The stable version has recovered (or the candidate got worse):
                    // during an episode, as many evaluations in a row as the candidate
                    // needed to trip, so that a window straddling the end of a shared
                    // incident (the stable version's just under the bound, the
                    // candidate's just over) does not decide it.
                    None if holding
                        && self.state.environment_clear.saturating_add(1)
                            < self.config.gates[i].persistence.consecutive =>
                    {
                        waiting = true;
                        format!(
                            "{}: {stable} no longer fails it ({} of {} evaluations before a rollback)",
                            r.gate,
                            self.state.environment_clear.saturating_add(1),
                            self.config.gates[i].persistence.consecutive
                        )
                    }
                    None => return None,
                }
            } else if holding {
                format!(
                    "{}: {subject} did not fail this evaluation (the gate clears after \
                     its clear_after passes)",
                    r.gate
                )
            } else {
                return None;
            };
            reports.push(report);
            lines.push(line);
        }
        let detail = format!(
            "the stable version {stable} fails the same gates as {subject}, by at least {} \
             of its degradation: {}",
            show(env.ratio),
            lines.join("; ")
        );
        Some((reports, detail, waiting))
    }

    /// Holds instead of rolling back, escalating once per episode.
    pub(super) fn hold_for_environment(
        &mut self,
        now: Timestamp,
        gates: Vec<GateReport>,
        detail: String,
        out: &mut Out,
    ) {
        let why = Reason::EnvironmentSuspected;
        out.decide(now, Action::Hold {}, why, gates.clone());
        if self.state.blocked != Some(why) {
            self.state.blocked = Some(why);
            out.escalate(now, why, detail, gates);
        }
    }

    /// Whether gate `gate`, which failed on `subject` at `now`, finds `stable` degraded
    /// by at least `ratio` of `subject`'s degradation: its line of the detail (and the
    /// stable version's reading in `report`), or `None`.
    fn stable_degraded(
        &self,
        gate: usize,
        subject: &str,
        stable: &str,
        now: Timestamp,
        ratio: f64,
        report: &mut GateReport,
    ) -> Option<String> {
        let g = &self.config.gates[gate];
        match g.rule {
            Rule::Threshold { min, max } => {
                let m = self.plan.gate_metric[gate];
                let judged = self.reading(self.arm_of(subject), None, m, gate, now);
                let s = self.reading(self.arm_of(stable), None, m, gate, now);
                let (Some(x), Some(y)) = (judged.value, s.value) else {
                    return None;
                };
                if s.evidence < g.samples_min {
                    return None;
                }
                let (past_x, past_y) = (past(min, max, x), past(min, max, y));
                if !(past_y > 0.0 && past_y >= ratio * past_x) {
                    return None;
                }
                if let crate::output::Evidence::Bounds { baseline, .. } = &mut report.evidence {
                    *baseline = Some(y);
                }
                report.baseline_samples = Some(s.evidence);
                let bound = match (min, max) {
                    (Some(lo), Some(hi)) => format!("outside [{}, {}]", show(lo), show(hi)),
                    (Some(lo), None) => format!("below min {}", show(lo)),
                    (None, Some(hi)) => format!("above max {}", show(hi)),
                    (None, None) => String::new(),
                };
                Some(format!(
                    "{}: {} {subject} {} ({} samples), {stable} {} ({} samples), both {bound}",
                    g.name,
                    snake(&g.stat),
                    show(x),
                    judged.evidence,
                    show(y),
                    s.evidence,
                ))
            }
            Rule::RateSlo {
                max_rate, alpha, ..
            } => {
                let crate::detect::Detector::RateSlo(t) = &self.state.gates[gate].detector else {
                    return None;
                };
                let s = t.stable.as_deref()?;
                if s.total < g.samples_min || t.total == 0 || s.total == 0 {
                    return None;
                }
                let x = t.events as f64 / t.total as f64;
                let y = s.events as f64 / s.total as f64;
                // The stable version's own test rejecting the objective is the evidence
                // that holds once the incident is over; while it runs, the two tests
                // race to their boundary (at a 50 % split, each wins half the time),
                // so a rate above the objective also counts.
                let rejected = s.ln_e_max >= -libm::log(alpha);
                if !(rejected || y > max_rate) || y < ratio * x {
                    return None;
                }
                report.baseline_samples = Some(s.total);
                Some(format!(
                    "{}: error rate since the phase began {subject} {} ({} requests), \
                     {stable} {} ({} requests), both above max_rate {}",
                    g.name,
                    show(x),
                    t.total,
                    show(y),
                    s.total,
                    show(max_rate),
                ))
            }
            Rule::VsBaseline { .. }
            | Rule::ErrorAttribution { .. }
            | Rule::SequentialMean { .. }
            | Rule::SequentialQuantile { .. }
            | Rule::MannWhitney { .. }
            | Rule::KayentaScore { .. }
            | Rule::Drift { .. }
            | Rule::Cusum { .. }
            | Rule::Ewma { .. } => None,
        }
    }
}

/// Serde's test for the state's counter.
pub(super) fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How far `x` is past the bounds, in the worse direction (≤ 0 within them).
fn past(min: Option<f64>, max: Option<f64>, x: f64) -> f64 {
    let below = min.map_or(f64::NEG_INFINITY, |lo| lo - x);
    let above = max.map_or(f64::NEG_INFINITY, |hi| x - hi);
    below.max(above)
}

/// A number for the detail: at most four decimals, trailing zeros dropped.
fn show(x: f64) -> String {
    let s = format!("{x:.4}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A unit enum's serde name (`p95`, `mean`).
fn snake<T: Serialize>(x: &T) -> String {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{past, show};

    #[test]
    fn past_measures_the_worse_side() {
        assert_eq!(past(None, Some(300.0), 405.0), 105.0);
        assert_eq!(past(None, Some(300.0), 200.0), -100.0);
        assert_eq!(past(Some(0.9), None, 0.8), 0.09999999999999998);
        assert_eq!(past(Some(1.0), Some(2.0), 1.5), -0.5);
        assert_eq!(past(None, None, 1.0), f64::NEG_INFINITY);
    }

    #[test]
    fn show_trims() {
        assert_eq!(show(398.0), "398");
        assert_eq!(show(0.0512), "0.0512");
        assert_eq!(show(1.0 / 3.0), "0.3333");
        assert_eq!(show(-2.5), "-2.5");
    }
}
