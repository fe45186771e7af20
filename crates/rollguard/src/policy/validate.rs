//! [`Policy::validate`]: every invariant of the state that the code relies on, every
//! cross-reference, and every counter within the range the code can add to.
//!
//! Restore runs it on every snapshot; debug builds (and so the tests) also run it after
//! every accepted input, so a transition that breaks an invariant fails where it happens
//! instead of in some later snapshot.

use super::*;
use crate::detect::attribution::{self, Attribution};
use crate::detect::cusum::Reference;
use crate::detect::mann_whitney::{Buffer, RankTest};
use crate::detect::mean::{self, Lag, MeanTest, Moments};
use crate::detect::quantile::{self, QuantileTest};
use crate::stats::histogram::HistShape;
use crate::stats::window::{Slot, WindowShape};

/// The largest value of a counter kept in the state (samples in a bucket, action ids,
/// registry sequence numbers): 2^53 − 1, so that every binding represents it exactly.
pub(super) const COUNTER_MAX: u64 = TIME_MAX;

/// How far one input can move a policy-wide counter: it issues at most two actions (one
/// from timers, one from a command) and moves the registry's sequence at most three
/// times. Inputs are refused once a counter is closer than this to [`COUNTER_MAX`].
const COUNTER_HEADROOM: u64 = 4;

/// The largest magnitude of a bucket's sum that more samples (each within
/// ±[`VALUE_ABS_MAX`], at most [`COUNTER_MAX`] of them) can never turn infinite.
const SUM_ABS_MAX: f64 = COUNTER_MAX as f64 * VALUE_ABS_MAX * 2.0;

/// Above this many cells (buckets and histogram bins) in all, debug builds check the
/// buckets' contents on restore only, not after every input (see
/// [`Policy::debug_validate`]).
#[cfg(debug_assertions)]
const DEBUG_CELLS_MAX: usize = 1 << 16;

/// Returns `snapshot_corrupt` at `path` (built only on failure) unless `cond` holds.
macro_rules! need {
    ($cond:expr, $path:expr, $($message:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(Error::new(ErrorCode::SnapshotCorrupt, $path, format!($($message)+)));
        }
    };
}

impl Policy {
    /// Checks that the state is one this config can reach: times in range and not in
    /// the future where they record the past, counters within range, windows shaped by
    /// the config with consistent buckets, every version named anywhere registered,
    /// the aliases, arms, rollout and pending actions consistent with one another.
    ///
    /// [`Policy::restore`] runs it on every snapshot; debug builds also run it after
    /// every accepted input.
    ///
    /// # Errors
    /// `snapshot_corrupt`, with the path of the offending field in the snapshot
    /// (`state.arms[1].windows[0][3].min`, say).
    pub fn validate(&self) -> Result<(), Error> {
        self.check(true)
    }

    /// [`Policy::validate`], with or without the contents of the windows' buckets.
    fn check(&self, buckets: bool) -> Result<(), Error> {
        let s = &self.state;
        need!(
            s.now <= TIME_MAX,
            "state.now",
            "time {} is above 2^53-1",
            s.now
        );
        self.validate_rollout()?;
        self.validate_registry()?;
        self.validate_arms(buckets)?;
        self.validate_gates(buckets)?;
        need!(
            (1..=COUNTER_MAX).contains(&s.next_action_id),
            "state.next_action_id",
            "{} is not in 1..=2^53-1",
            s.next_action_id
        );
        need!(
            s.pending.is_none() || s.halt.is_none(),
            "state.halt",
            "halted while an action is pending"
        );
        if let Some(p) = &s.pending {
            self.validate_pending(p, "state.pending")?;
        }
        // Every input fires the timers due at its time before it is applied, and what it
        // arms is due at or after its time: no armed timer is ever overdue.
        if let Some(due) = self.next_deadline() {
            need!(
                due >= s.now,
                "state.now",
                "a timer due at {due} is overdue at {}",
                s.now
            );
        }
        if let Some(p) = s.halt.as_ref().and_then(|h| h.retry.as_ref()) {
            self.validate_pending(p, "state.halt.retry")?;
        }
        let max = self.config.safety.breaker.max_rollbacks;
        let b = &s.breaker;
        need!(
            b.rollbacks.len() as u64 <= u64::from(max),
            "state.breaker.rollbacks",
            "{} rollbacks, the breaker keeps {max}",
            b.rollbacks.len()
        );
        for (i, t) in b.rollbacks.iter().enumerate() {
            self.past(*t, || format!("state.breaker.rollbacks[{i}]"))?;
            need!(
                i == 0 || b.rollbacks[i - 1] <= *t,
                format!("state.breaker.rollbacks[{i}]"),
                "rollback times out of order"
            );
        }
        if let Some(t) = b.open_since {
            self.past(t, || "state.breaker.open_since".into())?;
        }
        for (t, path) in [
            (s.cooldown_until.until(), "state.cooldown_until"),
            (s.analysis_at, "state.analysis_at"),
        ] {
            need!(t.is_none_or(|t| t <= TIME_MAX), path, "time above 2^53-1");
        }
        self.validate_effects()?;
        if let Some(k) = &s.kickoff {
            let reg = &s.registry;
            need!(
                reg.contains(k) && *k != reg.aliases.stable && s.rollout.is_none(),
                "state.kickoff",
                "{k:?} cannot start rolling out"
            );
        }
        Ok(())
    }

    /// The recorded side effects: within the limits, in recording order, each undo
    /// descriptor an object, the ones not compensating unique and of a serving
    /// version, and compensation under way (or halted) while any waits for it.
    fn validate_effects(&self) -> Result<(), Error> {
        let s = &self.state;
        let l = &self.config.limits;
        need!(
            s.effects.len() as u64 <= u64::from(l.effects_max),
            "state.effects",
            "{} effects, limits.effects_max is {}",
            s.effects.len(),
            l.effects_max
        );
        for (i, e) in s.effects.iter().enumerate() {
            let at = |field: &str| format!("state.effects[{i}].{field}");
            self.past(e.recorded_at, || at("recorded_at"))?;
            need!(
                i == 0 || s.effects[i - 1].recorded_at <= e.recorded_at,
                at("recorded_at"),
                "effects out of recording order"
            );
            need!(
                e.version.len() as u64 <= u64::from(l.label_len_max),
                at("version"),
                "longer than limits.label_len_max"
            );
            need!(
                !e.id.is_empty() && e.id.len() as u64 <= u64::from(l.label_len_max),
                at("id"),
                "empty or longer than limits.label_len_max"
            );
            need!(
                e.undo.len() as u64 <= u64::from(l.text_len_max) && e.undo_object().is_some(),
                at("undo"),
                "not a JSON object of at most limits.text_len_max bytes"
            );
            if !e.compensating {
                need!(
                    self.serving(&e.version),
                    at("version"),
                    "{:?} serves no traffic and is not being compensated",
                    e.version
                );
                need!(
                    !s.effects[..i]
                        .iter()
                        .any(|d| !d.compensating && d.version == e.version && d.id == e.id),
                    at("id"),
                    "effect {:?} of {:?} recorded twice",
                    e.id,
                    e.version
                );
            }
        }
        need!(
            !s.effects.iter().any(|e| e.compensating) || s.pending.is_some() || s.halt.is_some(),
            "state.effects",
            "effects wait for compensation, but no action is pending or halted"
        );
        Ok(())
    }

    /// A time that records something past: at most the policy's time.
    fn past(&self, t: Timestamp, path: impl FnOnce() -> String) -> Result<(), Error> {
        need!(
            t <= self.state.now,
            path(),
            "time {t} is after the policy's time {}",
            self.state.now
        );
        Ok(())
    }

    fn validate_registry(&self) -> Result<(), Error> {
        let reg = &self.state.registry;
        let max = self.config.limits.versions_max;
        need!(
            reg.versions.len() as u64 <= u64::from(max),
            "state.registry.versions",
            "{} versions, limits.versions_max is {max}",
            reg.versions.len()
        );
        need!(
            reg.next_seq <= COUNTER_MAX,
            "state.registry.next_seq",
            "{} is above 2^53-1",
            reg.next_seq
        );
        let stable_stage = match &self.state.rollout {
            Some(r) if r.promoted_at.is_some() => Lifecycle::Baking,
            _ => Lifecycle::Stable,
        };
        let rollout = self.state.rollout.as_ref().map(|r| r.version.as_str());
        for (i, v) in reg.versions.iter().enumerate() {
            let path = |field: &str| format!("state.registry.versions[{i}].{field}");
            // Labels as register_version checks them, so a restored registry holds
            // nothing a command could not have put there.
            let label_max = self.config.limits.label_len_max;
            crate::config::check_bundle(&v.id, &v.digest, &v.components, label_max).map_err(
                |e| {
                    Error::new(ErrorCode::SnapshotCorrupt, e.path, e.message)
                        .within(format!("state.registry.versions[{i}]"))
                },
            )?;
            need!(
                reg.versions[..i].iter().all(|w| w.id != v.id),
                path("id"),
                "{:?} is registered twice",
                v.id
            );
            need!(
                v.seq < reg.next_seq && v.held_stable.is_none_or(|s| s < reg.next_seq),
                path("seq"),
                "sequence number not below next_seq"
            );
            if let Some(at) = v.validated.map(|x| x.at) {
                self.past(at, || path("validated.at"))?;
            }
            // Exactly the stable version serves all traffic, and only the rollout's
            // is rolling out.
            let want = if v.id == reg.aliases.stable {
                Some(stable_stage)
            } else if Some(v.id.as_str()) == rollout {
                Some(Lifecycle::RollingOut)
            } else {
                None
            };
            let serving = matches!(
                v.stage,
                Lifecycle::Stable | Lifecycle::Baking | Lifecycle::RollingOut
            );
            need!(
                want.map_or(!serving, |w| v.stage == w),
                path("stage"),
                "{:?} is {:?}",
                v.id,
                v.stage
            );
        }
        let a = &reg.aliases;
        for (id, path) in [
            (Some(&a.stable), "state.registry.aliases.stable"),
            (Some(&a.golden), "state.registry.aliases.golden"),
            (a.previous.as_ref(), "state.registry.aliases.previous"),
            (a.candidate.as_ref(), "state.registry.aliases.candidate"),
        ] {
            if let Some(id) = id {
                need!(reg.contains(id), path, "no version {id:?}");
            }
        }
        // Before a promotion the stable version is where a rollback goes, so it is a
        // rollback target; golden is only ever set to a validated version.
        let promoted = self
            .state
            .rollout
            .as_ref()
            .is_some_and(|r| r.promoted_at.is_some());
        need!(
            promoted
                || reg
                    .get(&a.stable)
                    .is_some_and(crate::registry::Version::is_target),
            "state.registry.aliases.stable",
            "the stable version {:?} is failed or not validated",
            a.stable
        );
        need!(
            reg.get(&a.golden).is_some_and(|v| v.validated.is_some()),
            "state.registry.aliases.golden",
            "the golden version {:?} was never validated",
            a.golden
        );
        let candidate = self
            .state
            .rollout
            .as_ref()
            .filter(|r| r.promoted_at.is_none())
            .map(|r| &r.version);
        need!(
            a.candidate.as_ref() == candidate,
            "state.registry.aliases.candidate",
            "the candidate is {:?}, the rollout's is {candidate:?}",
            a.candidate
        );
        Ok(())
    }

    fn validate_arms(&self, buckets: bool) -> Result<(), Error> {
        let s = &self.state;
        let a = &s.registry.aliases;
        let rollout = s.rollout.as_ref();
        // The stable version's arm, and during a rollout the candidate's; after the
        // promotion these are the new stable's and the previous version's.
        let live = |v: &str| {
            v == a.stable
                || rollout.is_some_and(|r| {
                    v == r.version || (r.promoted_at.is_some() && a.previous.as_deref() == Some(v))
                })
        };
        let want = 1 + usize::from(rollout.is_some());
        need!(
            s.arms.len() == want,
            "state.arms",
            "{} arms, expected {want}",
            s.arms.len()
        );
        let has = |v: &str| s.arms.iter().any(|arm| arm.version == v);
        need!(has(&a.stable), "state.arms", "no arm of the stable version");
        if let Some(r) = rollout {
            need!(
                has(&r.version),
                "state.arms",
                "no arm of the rollout's version"
            );
        }
        for (i, arm) in s.arms.iter().enumerate() {
            need!(
                live(&arm.version) && s.arms[..i].iter().all(|b| b.version != arm.version),
                format!("state.arms[{i}].version"),
                "{:?} is not a live version or has two arms",
                arm.version
            );
            need!(
                arm.windows.len() == self.plan.shapes.len(),
                format!("state.arms[{i}].windows"),
                "{} windows for {} metrics",
                arm.windows.len(),
                self.plan.shapes.len()
            );
            let windows = arm.windows.iter().zip(&self.plan.shapes);
            for (m, (w, shape)) in windows.enumerate().filter(|_| buckets) {
                let name = &self.config.metrics[m].name;
                let path = crate::json::key_path(&format!("state.arms[{i}].windows"), name);
                self.validate_window(w, *shape, false, &path)?;
            }
        }
        Ok(())
    }

    /// A window of `shape`: a scope's (`scoped`, sparse bins within
    /// `histogram_bins_max` entries) or an arm's overall one (dense, full resolution).
    fn validate_window(
        &self,
        w: &Window,
        shape: WindowShape,
        scoped: bool,
        path: &str,
    ) -> Result<(), Error> {
        need!(
            w.len() as u64 == u64::from(shape.buckets),
            path,
            "{} buckets, the metric has {}",
            w.len(),
            shape.buckets
        );
        let hist_len = shape.hist.map_or(0, |h| h.len());
        let n = w.len() as u64;
        let latest = self.state.now / shape.width_ms;
        for (j, slot) in w.slots().enumerate() {
            let at = |field: &str| format!("{path}[{j}].{field}");
            need!(
                slot.hist.len() as u64 == u64::from(hist_len),
                at("hist"),
                "{} histogram bins, the metric has {hist_len}",
                slot.hist.len()
            );
            let entries_max = shape.cells_max.min(hist_len) as usize;
            need!(
                if scoped {
                    !slot.hist.is_dense() && slot.hist.entries() <= entries_max
                } else {
                    slot.hist.halvings() == 0
                },
                at("hist"),
                "{} histogram entries at {} halvings, a scope's bucket keeps at most {entries_max} and an overall one every bin",
                slot.hist.entries(),
                slot.hist.halvings()
            );
            // A bucket lives in the ring slot of its epoch; a never-used one says 0.
            let empty = slot_is_empty(&slot);
            need!(
                (slot.epoch % n == j as u64 || (slot.epoch == 0 && empty)) && slot.epoch <= latest,
                at("epoch"),
                "epoch {} does not belong in slot {j} at time {}",
                slot.epoch,
                self.state.now
            );
            need!(
                slot.count <= COUNTER_MAX,
                at("count"),
                "{} is above 2^53-1",
                slot.count
            );
            need!(
                slot.total <= COUNTER_MAX,
                at("total"),
                "{} is above 2^53-1",
                slot.total
            );
            need!(
                slot.events <= slot.total,
                at("events"),
                "{} events of {}",
                slot.events,
                slot.total
            );
            if slot.count == 0 {
                need!(empty, format!("{path}[{j}]"), "an empty bucket holds data");
                continue;
            }
            match shape.kind {
                crate::config::MetricKind::Value => {
                    let fine = |x: f64| x.abs() <= VALUE_ABS_MAX;
                    need!(fine(slot.min), at("min"), "{} is out of range", slot.min);
                    need!(fine(slot.max), at("max"), "{} is out of range", slot.max);
                    need!(
                        slot.min <= slot.max,
                        at("min"),
                        "min {} is above max {}",
                        slot.min,
                        slot.max
                    );
                    need!(
                        slot.sum.abs() <= SUM_ABS_MAX,
                        at("sum"),
                        "{} is out of range",
                        slot.sum
                    );
                    need!(
                        slot.events == 0 && slot.total == 0,
                        at("total"),
                        "counts in a value metric"
                    );
                    let binned: u64 = slot.hist.iter().map(|(_, c)| u64::from(c)).sum();
                    need!(
                        binned <= slot.count,
                        at("hist"),
                        "{binned} values binned of {}",
                        slot.count
                    );
                }
                crate::config::MetricKind::Count => {
                    need!(
                        slot.sum == 0.0 && slot.min == 0.0 && slot.max == 0.0,
                        at("sum"),
                        "values in a count metric"
                    );
                }
            }
        }
        // Buckets of the other kind that passed the checks above hold nothing restore
        // could not fit (see `Window::fit`): only a bug leaves them.
        need!(
            w.kind() == shape.kind,
            path,
            "the buckets are of the other kind of metric"
        );
        Ok(())
    }

    /// A `rate_slo` test's counts and extremes.
    fn validate_rate_test(
        &self,
        t: &crate::detect::rate_slo::RateTest,
        at: &str,
    ) -> Result<(), Error> {
        need!(
            t.events <= t.total && t.total <= attribution::COUNT_MAX,
            format!("{at}.events"),
            "{} errors in {} requests",
            t.events,
            t.total
        );
        self.validate_extremes(t.ln_e_max, t.ln_e_min, t.low_at, at)
    }

    /// The gates' states; `contents` also checks the bins of the detectors that keep
    /// histograms (as `buckets` does for the windows).
    fn validate_gates(&self, contents: bool) -> Result<(), Error> {
        self.validate_gate_states(&self.state.gates, None, contents)?;
        self.validate_scopes(contents)
    }

    /// The scopes: only with `scopes` in the config, at most `scopes_max`, keys
    /// unique and formed by its labels, the overflow scope last once all others are
    /// taken, each scope's gate states, and the arms' scoped windows.
    fn validate_scopes(&self, contents: bool) -> Result<(), Error> {
        let s = &self.state;
        let Some(plan) = &self.plan.scopes else {
            need!(
                s.scopes.is_empty(),
                "state.scopes",
                "scopes without `scopes` in the config"
            );
            for (i, arm) in s.arms.iter().enumerate() {
                need!(
                    arm.scoped.is_empty(),
                    format!("state.arms[{i}].scoped"),
                    "scoped windows without `scopes` in the config"
                );
            }
            return Ok(());
        };
        let n = s.scopes.len();
        need!(
            n as u64 <= u64::from(plan.max),
            "state.scopes",
            "{n} scopes, limits.scopes_max is {}",
            plan.max
        );
        for (i, scope) in s.scopes.iter().enumerate() {
            let at = format!("state.scopes[{i}]");
            need!(
                scope.key.fits(&plan.by),
                format!("{at}.key"),
                "not a scope formed by {:?}",
                plan.by
            );
            need!(
                !scope.key.overflow || (i + 1 == n && n as u64 == u64::from(plan.max)),
                format!("{at}.key"),
                "the overflow scope before the other scopes are all taken"
            );
            need!(
                s.scopes[..i].iter().all(|o| o.key != scope.key),
                format!("{at}.key"),
                "a scope listed twice"
            );
            need!(
                match (&scope.key.tier, &scope.tier) {
                    (Some(k), t) => t.as_ref() == Some(k),
                    (None, t) => !scope.key.overflow || t.is_none(),
                },
                format!("{at}.tier"),
                "not the tier of its key"
            );
            if let Some(t) = &scope.tier {
                need!(
                    t.len() as u64 <= u64::from(self.config.limits.label_len_max),
                    format!("{at}.tier"),
                    "longer than limits.label_len_max"
                );
            }
            self.validate_gate_states(&scope.gates, Some(i as u32), contents)?;
            if scope.routed_back {
                self.validate_routed_back(scope, &at)?;
            }
        }
        for (i, arm) in s.arms.iter().enumerate() {
            need!(
                arm.scoped.len() <= n,
                format!("state.arms[{i}].scoped"),
                "windows for {} scopes, {n} known",
                arm.scoped.len()
            );
            for (j, windows) in arm.scoped.iter().enumerate() {
                let Some(windows) = windows else { continue };
                let at = format!("state.arms[{i}].scoped[{j}]");
                need!(
                    windows.len() == self.plan.shapes.len(),
                    at.clone(),
                    "{} windows for {} metrics",
                    windows.len(),
                    self.plan.shapes.len()
                );
                let shapes = windows.iter().zip(&self.plan.shapes);
                for (m, (w, shape)) in shapes.enumerate().filter(|_| contents) {
                    let path = crate::json::key_path(&at, &self.config.metrics[m].name);
                    self.validate_window(w, *shape, true, &path)?;
                }
            }
        }
        Ok(())
    }

    /// A scope the ladder routed back: not the overflow scope, during a rollout before
    /// its promotion that took `route_back` or a later rung, with its gates as fresh as
    /// they were made when it was routed back (they are not judged since).
    fn validate_routed_back(&self, scope: &ScopeOf<Vec<GateState>>, at: &str) -> Result<(), Error> {
        let r = self.state.rollout.as_ref();
        need!(
            !scope.key.overflow,
            format!("{at}.routed_back"),
            "the overflow scope is never routed back"
        );
        need!(
            r.is_some_and(|r| r.promoted_at.is_none()
                && r.ladder.rung >= Some(crate::config::Rung::RouteBack)),
            format!("{at}.routed_back"),
            "routed back without a rollout before promotion that took route_back"
        );
        let ladder = self.config.scopes.as_ref().and_then(|s| s.ladder.as_ref());
        need!(
            ladder.is_some_and(|l| l.iter().any(|x| x.rung == crate::config::Rung::RouteBack)),
            format!("{at}.routed_back"),
            "routed back without a route_back rung in the config's ladder"
        );
        if let Some(plan) = &self.plan.scopes {
            let fresh = &plan.judging(scope.tier.as_deref()).fresh;
            for (g, (state, fresh)) in scope.gates.iter().zip(fresh).enumerate() {
                let name = &self.config.gates[g].name;
                need!(
                    *state == GateState::new(fresh),
                    crate::json::key_path(&format!("{at}.gates"), name),
                    "a scope routed back keeps its gates fresh"
                );
            }
        }
        Ok(())
    }

    /// The gate states overall (`scope` `None`) or of one scope.
    fn validate_gate_states(
        &self,
        gates: &[GateState],
        scope: Option<u32>,
        contents: bool,
    ) -> Result<(), Error> {
        let prefix = match scope {
            None => "state.gates".to_string(),
            Some(s) => format!("state.scopes[{s}].gates"),
        };
        need!(
            gates.len() == self.config.gates.len(),
            prefix.clone(),
            "{} gate states for {} gates",
            gates.len(),
            self.config.gates.len()
        );
        let tier = scope.and_then(|s| self.state.scopes.get(s as usize)?.tier.as_deref());
        let fresh = match (scope, &self.plan.scopes) {
            (Some(_), Some(plan)) => &plan.judging(tier).fresh,
            _ => &self.plan.fresh,
        };
        for (i, (g, fresh)) in gates.iter().zip(fresh).enumerate() {
            let c = self.judged(scope, i);
            // Paths as a snapshot writes them: keyed by gate name.
            let at = crate::json::key_path(&prefix, &c.name);
            need!(
                g.detector.fits(fresh, c),
                format!("{at}.detector"),
                "not the state of a {:?} gate",
                c.name
            );
            match &g.detector {
                Detector::ErrorAttribution(a) => {
                    self.validate_attribution(a, &format!("{at}.detector"))?;
                }
                Detector::SequentialMean(t) => {
                    self.validate_mean_test(t, c.samples_min, &format!("{at}.detector"))?;
                }
                Detector::Cusum(t) => {
                    let c = ChartState {
                        learning: &t.learning,
                        learning_lag: &t.learning_lag,
                        reference: t.reference,
                        given: t.chart.reference,
                        learn: t.chart.learn,
                        statistic: ("sum", t.sum),
                        h: t.chart.h,
                        used: t.used,
                        since: t.since,
                        alarm_at: t.alarm_at,
                        onset: t.onset,
                    };
                    self.validate_chart(c, &format!("{at}.detector"))?;
                }
                Detector::Ewma(t) => {
                    let c = ChartState {
                        learning: &t.learning,
                        learning_lag: &t.learning_lag,
                        reference: t.reference,
                        given: t.chart.reference,
                        learn: t.chart.learn,
                        statistic: ("z", t.z),
                        h: t.chart.h,
                        used: t.used,
                        since: t.since,
                        alarm_at: t.alarm_at,
                        onset: t.onset,
                    };
                    self.validate_chart(c, &format!("{at}.detector"))?;
                }
                Detector::SequentialQuantile(t) => {
                    let hist = (self.config.metric_index(&c.metric))
                        .and_then(|m| self.plan.shapes.get(m))
                        .and_then(|s| s.hist);
                    self.validate_quantile_test(t, hist, contents, &format!("{at}.detector"))?;
                }
                Detector::MannWhitney(t) => validate_rank_test(t, &format!("{at}.detector"))?,
                Detector::RateSlo(t) => {
                    let at = format!("{at}.detector");
                    self.validate_rate_test(t, &at)?;
                    // The stable version's shadow (`environment.check`), which keeps
                    // none of its own.
                    if let Some(s) = &t.stable {
                        let at = format!("{at}.stable");
                        self.validate_rate_test(s, &at)?;
                        need!(
                            s.stable.is_none(),
                            format!("{at}.stable"),
                            "a shadow test of a shadow test"
                        );
                    }
                }
                Detector::Drift(d) => {
                    // The binning was checked against the config by `fits`.
                    let bins = d.binning.len() as usize;
                    for (counts, field) in [(&d.judged, "judged"), (&d.baseline, "baseline")] {
                        need!(
                            counts.len() == bins,
                            format!("{at}.detector.{field}"),
                            "{} counts for {bins} bins",
                            counts.len()
                        );
                        need!(
                            counts.iter().all(|&c| c <= crate::detect::mean::COUNT_MAX),
                            format!("{at}.detector.{field}"),
                            "a count above 2^53"
                        );
                    }
                }
                _ => {}
            }
            for (t, field) in [
                (g.failing_since, "failing_since"),
                (g.onset, "onset"),
                (g.last_failure, "last_failure"),
                (g.tripped_at, "tripped_at"),
            ] {
                if let Some(t) = t {
                    self.past(t, || format!("{at}.{field}"))?;
                }
            }
            // What GateState::record keeps together: a failing streak has a start and a
            // latest failure, passes and failures never both run, a tripped gate has
            // failed and has an onset.
            let path = |field: &str| format!("{at}.{field}");
            need!(
                (g.consecutive_failures > 0) == g.failing_since.is_some(),
                path("failing_since"),
                "{} failures in a row, failing since {:?}",
                g.consecutive_failures,
                g.failing_since
            );
            need!(
                g.consecutive_failures == 0 || g.consecutive_passes == 0,
                path("consecutive_passes"),
                "passing and failing in a row at once"
            );
            need!(
                g.failing_since.is_none()
                    || g.last_failure.is_some_and(|l| g.failing_since <= Some(l)),
                path("last_failure"),
                "a failing streak without a failure since it began"
            );
            need!(
                g.tripped_at.is_none() || (g.onset.is_some() && g.last_failure.is_some()),
                path("onset"),
                "tripped without an onset or a failure"
            );
        }
        Ok(())
    }

    /// An `error_attribution` state: one entry per share the strategy can set, counts
    /// within what the detector can add to, and ln E extremes a run can reach.
    fn validate_attribution(&self, a: &Attribution, at: &str) -> Result<(), Error> {
        let shares = self.config.strategy.shares();
        for (i, s) in a.splits.iter().enumerate() {
            let path = format!("{at}.splits[{i}]");
            need!(
                shares.contains(&s.share),
                format!("{path}.share"),
                "{} is not a share of traffic the strategy sets",
                s.share
            );
            need!(
                a.splits[..i].iter().all(|o| o.share != s.share),
                format!("{path}.share"),
                "the share {} appears twice",
                s.share
            );
            need!(
                s.judged <= attribution::COUNT_MAX && s.baseline <= attribution::COUNT_MAX,
                path,
                "a count above 2^53"
            );
            need!(
                s.judged > 0 || s.baseline > 0,
                path,
                "a share with no errors is never kept"
            );
        }
        need!(
            a.ln_e_max.is_finite() && a.ln_e_max >= 0.0,
            format!("{at}.ln_e_max"),
            "must be finite and at least 0"
        );
        need!(
            a.ln_e_min.is_finite() && a.ln_e_min <= 0.0,
            format!("{at}.ln_e_min"),
            "must be finite and at most 0"
        );
        if let Some(t) = a.low_at {
            self.past(t, || format!("{at}.low_at"))?;
        }
        Ok(())
    }

    /// A `sequential_mean` state: moments an arm's samples can give, a null and scale
    /// fixed only after the burn-in, and ln M extremes a run can reach.
    fn validate_mean_test(&self, t: &MeanTest, burn_in: u64, at: &str) -> Result<(), Error> {
        for (m, arm) in [(&t.judged, "judged"), (&t.baseline, "baseline")] {
            let path = format!("{at}.{arm}");
            need!(m.n <= mean::COUNT_MAX, format!("{path}.n"), "above 2^53");
            need!(
                m.mean.is_finite() && m.mean.abs() <= VALUE_ABS_MAX,
                format!("{path}.mean"),
                "must be finite and within ±{VALUE_ABS_MAX:e}"
            );
            need!(
                m.m2.is_finite() && m.m2 >= 0.0,
                format!("{path}.m2"),
                "must be finite and not negative"
            );
            need!(
                m.n > 1 || m.m2 == 0.0,
                format!("{path}.m2"),
                "a spread without two samples"
            );
            need!(
                m.n > 0 || m.mean == 0.0,
                format!("{path}.mean"),
                "a mean without samples"
            );
        }
        need!(
            t.null.is_some() == t.scale.is_some(),
            format!("{at}.scale"),
            "the null and the scale are fixed together"
        );
        if let (Some(null), Some(scale)) = (t.null, t.scale) {
            need!(
                null.is_finite() && null >= 0.0,
                format!("{at}.null"),
                "must be finite and not negative"
            );
            need!(
                scale.is_finite() && scale > 0.0,
                format!("{at}.scale"),
                "must be finite and positive"
            );
            let burn_in = burn_in.max(2);
            need!(
                t.judged.n >= burn_in && t.baseline.n >= burn_in,
                format!("{at}.null"),
                "fixed before both arms had {burn_in} samples"
            );
        }
        for (lag, m, arm) in [
            (&t.judged_lag, &t.judged, "judged_lag"),
            (&t.baseline_lag, &t.baseline, "baseline_lag"),
        ] {
            validate_lag(lag, m, &format!("{at}.{arm}"))?;
        }
        need!(
            t.ln_e_max.is_finite() && t.ln_e_max >= 0.0,
            format!("{at}.ln_e_max"),
            "must be finite and at least 0"
        );
        need!(
            t.ln_e_min.is_finite() && t.ln_e_min <= 0.0,
            format!("{at}.ln_e_min"),
            "must be finite and at most 0"
        );
        if let Some(at_time) = t.low_at {
            self.past(at_time, || format!("{at}.low_at"))?;
        }
        Ok(())
    }

    /// A `cusum` or `ewma` state (its chart was checked against the config by
    /// `fits`): a reference learned from enough samples or given, a statistic the
    /// recursion can reach (at least 0, within the limit until an alarm, which it then
    /// passed), a start exactly while the statistic is positive, and times in the past.
    fn validate_chart(&self, c: ChartState<'_>, at: &str) -> Result<(), Error> {
        let learning = c.learning;
        need!(
            learning.n < c.learn && (c.reference.is_none() || learning.n == 0),
            format!("{at}.learning"),
            "more samples than the reference is learned from"
        );
        need!(
            learning.mean.is_finite()
                && learning.mean.abs() <= VALUE_ABS_MAX
                && learning.m2.is_finite()
                && learning.m2 >= 0.0
                && (learning.n > 1 || learning.m2 == 0.0)
                && (learning.n > 0 || learning.mean == 0.0),
            format!("{at}.learning"),
            "moments no samples could give"
        );
        validate_lag(c.learning_lag, learning, &format!("{at}.learning_lag"))?;
        if c.given.is_some() {
            need!(
                c.reference == c.given,
                format!("{at}.reference"),
                "not the reference the config gives"
            );
        }
        if let Some(r) = c.reference {
            need!(
                r.mean.is_finite() && r.mean.abs() <= VALUE_ABS_MAX,
                format!("{at}.reference.mean"),
                "must be finite and within ±{VALUE_ABS_MAX:e}"
            );
            need!(
                r.sd.is_finite() && r.sd > 0.0,
                format!("{at}.reference.sd"),
                "must be finite and positive"
            );
            let most = (1.0 + mean::RHO_MAX) / (1.0 - mean::RHO_MAX);
            need!(
                r.inflation >= 1.0 && r.inflation <= most,
                format!("{at}.reference.inflation"),
                "must be within [1, {most}]"
            );
        }
        need!(
            c.used <= mean::COUNT_MAX && (c.used == 0 || c.reference.is_some()),
            format!("{at}.used"),
            "samples judged without a reference, or above 2^53"
        );
        let alarmed = c.alarm_at.is_some();
        let (name, x) = c.statistic;
        need!(
            x.is_finite() && x >= 0.0 && (if alarmed { x > c.h } else { x <= c.h }),
            format!("{at}.{name}"),
            "{x} is not a statistic the chart can hold (limit {})",
            c.h
        );
        need!(
            alarmed || (x > 0.0) == c.since.is_some(),
            format!("{at}.since"),
            "a run start exactly while the statistic is positive"
        );
        need!(
            alarmed == c.onset.is_some() && (!alarmed || c.since.is_some()),
            format!("{at}.onset"),
            "an onset exactly with an alarm"
        );
        for (t, field) in [
            (c.since, "since"),
            (c.alarm_at, "alarm_at"),
            (c.onset, "onset"),
        ] {
            if let Some(t) = t {
                self.past(t, || format!("{at}.{field}"))?;
            }
        }
        Ok(())
    }

    /// The running extremes of ln E a sequential test keeps: E starts at 1.
    /// A `sequential_quantile` state: per arm a histogram of the metric's shape (or
    /// none before a sample) whose bins add up to the count, with the min and max in
    /// its lowest and highest occupied bins; ln E extremes a run can reach.
    fn validate_quantile_test(
        &self,
        t: &QuantileTest,
        hist: Option<HistShape>,
        contents: bool,
        at: &str,
    ) -> Result<(), Error> {
        for (a, arm) in [(&t.judged, "judged"), (&t.baseline, "baseline")] {
            let path = format!("{at}.{arm}");
            need!(
                a.n <= quantile::COUNT_MAX,
                format!("{path}.n"),
                "above 2^53"
            );
            let len = hist.map_or(0, |h| h.len() as usize);
            need!(
                (a.n == 0 && a.bins.is_empty()) || (len > 0 && a.bins.len() == len),
                format!("{path}.bins"),
                "{} bins, the metric's histogram has {len}",
                a.bins.len()
            );
            if a.n == 0 {
                need!(
                    a.min == 0.0 && a.max == 0.0,
                    format!("{path}.min"),
                    "extremes without samples"
                );
                continue;
            }
            need!(
                a.min.is_finite()
                    && a.max.is_finite()
                    && a.min <= a.max
                    && a.min.abs() <= VALUE_ABS_MAX
                    && a.max.abs() <= VALUE_ABS_MAX,
                format!("{path}.min"),
                "extremes must be finite, ordered and within ±{VALUE_ABS_MAX:e}"
            );
            if let (Some(h), true) = (hist, contents) {
                let sum = a.bins.iter().fold(0u64, |s, c| s.saturating_add(*c));
                need!(
                    sum == a.n,
                    format!("{path}.bins"),
                    "{sum} samples in the bins, {} counted",
                    a.n
                );
                let first = a.bins.iter().position(|c| *c > 0);
                let last = a.bins.iter().rposition(|c| *c > 0);
                need!(
                    first == Some(h.bin(a.min)) && last == Some(h.bin(a.max)),
                    format!("{path}.min"),
                    "the extremes are not in the outermost occupied bins"
                );
            }
        }
        self.validate_extremes(t.ln_e_max, t.ln_e_min, t.low_at, at)
    }

    fn validate_extremes(
        &self,
        max: f64,
        min: f64,
        low_at: Option<Timestamp>,
        at: &str,
    ) -> Result<(), Error> {
        need!(
            max.is_finite() && max >= 0.0,
            format!("{at}.ln_e_max"),
            "must be finite and at least 0"
        );
        need!(
            min.is_finite() && min <= 0.0,
            format!("{at}.ln_e_min"),
            "must be finite and at most 0"
        );
        if let Some(t) = low_at {
            self.past(t, || format!("{at}.low_at"))?;
        }
        Ok(())
    }

    fn validate_rollout(&self) -> Result<(), Error> {
        let Some(r) = &self.state.rollout else {
            return Ok(());
        };
        let reg = &self.state.registry;
        need!(
            reg.contains(&r.version),
            "state.rollout.version",
            "no version {:?}",
            r.version
        );
        // Before the promotion the candidate is not the stable version; after it, it is.
        need!(
            (r.version == reg.aliases.stable) == r.promoted_at.is_some(),
            "state.rollout.version",
            "{:?} is {}the stable version",
            r.version,
            if r.promoted_at.is_some() { "not " } else { "" }
        );
        need!(
            (r.stage as usize) < self.plan.stages.len(),
            "state.rollout.stage",
            "stage {} of {}",
            r.stage,
            self.plan.stages.len()
        );
        need!(
            r.weight <= 100,
            "state.rollout.weight",
            "{} is above 100",
            r.weight
        );
        self.past(r.started_at, || "state.rollout.started_at".into())?;
        // A weight per stage, and with a gradual rollback one per step and the stage's
        // weight entered again after it.
        let gradual = self
            .config
            .safety
            .gradual_rollback
            .as_ref()
            .map_or(0, |g| g.steps.len() + 1);
        need!(
            r.weights.len() <= self.plan.stages.len() + gradual,
            "state.rollout.weights",
            "{} weight changes for {} stages",
            r.weights.len(),
            self.plan.stages.len()
        );
        let mut since = r.started_at;
        for (i, w) in r.weights.iter().enumerate() {
            need!(
                w.at >= since,
                format!("state.rollout.weights[{i}].at"),
                "time {} is before {since}",
                w.at
            );
            self.past(w.at, || format!("state.rollout.weights[{i}].at"))?;
            need!(
                w.weight_bp <= crate::assign::WEIGHT_BP_MAX,
                format!("state.rollout.weights[{i}].weight_bp"),
                "{} is above 10000",
                w.weight_bp
            );
            since = w.at;
        }
        if let Some(t) = r.promoted_at {
            self.past(t, || "state.rollout.promoted_at".into())?;
        }
        need!(
            r.stage_ends_at.is_none_or(|t| t <= TIME_MAX),
            "state.rollout.stage_ends_at",
            "time above 2^53-1"
        );
        self.validate_ladder(r)?;
        if let Some(p) = &r.pause {
            self.past(p.since, || "state.rollout.pause.since".into())?;
            need!(
                p.deadline.is_none_or(|t| t <= TIME_MAX),
                "state.rollout.pause.deadline",
                "time above 2^53-1"
            );
        }
        self.validate_gradual(r)
    }

    /// A gradual rollback fits the config and the rollout (see `gradual`).
    fn validate_gradual(&self, r: &Rollout) -> Result<(), Error> {
        let Some(g) = &r.gradual else {
            return Ok(());
        };
        let at = |f: &str| format!("state.rollout.gradual.{f}");
        let Some(cfg) = &self.config.safety.gradual_rollback else {
            need!(
                false,
                "state.rollout.gradual",
                "the config has no safety.gradual_rollback"
            );
            return Ok(());
        };
        need!(
            r.promoted_at.is_none() && r.phase == Some(Phase::Canary),
            "state.rollout.gradual",
            "only a live canary before promotion rolls back gradually"
        );
        need!(
            !r.gradual_spent,
            "state.rollout.gradual_spent",
            "a rollout has at most one gradual rollback"
        );
        need!(
            (1..=100).contains(&g.from_weight),
            at("from_weight"),
            "{} is not in 1..=100",
            g.from_weight
        );
        let weight = cfg.steps.get(g.step as usize).copied();
        need!(
            weight.is_some_and(|w| w < g.from_weight),
            at("step"),
            "step {} is not one of the {} steps below {}%",
            g.step,
            cfg.steps.len(),
            g.from_weight
        );
        if let Some(t) = g.bake_ends_at {
            need!(t <= TIME_MAX, at("bake_ends_at"), "time above 2^53-1");
            need!(
                !g.stopped && Some(r.weight) == weight,
                at("bake_ends_at"),
                "a step bakes at its own weight, while stepping"
            );
        }
        let approval = r
            .pause
            .as_ref()
            .is_some_and(|p| p.kind == PauseKind::Approval);
        need!(
            g.stopped == approval,
            at("stopped"),
            "a stopped gradual rollback waits for approval, and only it does"
        );
        if let Some(t) = g.onset {
            self.past(t, || at("onset"))?;
        }
        for (field, names) in [
            ("tripped", &g.tripped),
            ("tripped_in_scopes", &g.tripped_in_scopes),
        ] {
            let mut from = 0;
            for (i, name) in names.iter().enumerate() {
                let found = self.config.gates[from..]
                    .iter()
                    .position(|c| c.name == *name);
                need!(
                    found.is_some(),
                    at(&format!("{field}[{i}]")),
                    "not a gate of the config after the one before it"
                );
                from += found.unwrap_or(0) + 1;
            }
        }
        Ok(())
    }

    /// The rollout's progress on the ladder: a rung of the config's ladder (never
    /// `rollback`), onboarding paused only before promotion by that rung or a later
    /// one, a freeze only by `freeze` or a later rung, with its stage timer stopped.
    fn validate_ladder(&self, r: &Rollout) -> Result<(), Error> {
        use crate::config::Rung;
        let l = &r.ladder;
        let ladder = self.config.scopes.as_ref().and_then(|s| s.ladder.as_ref());
        if let Some(rung) = l.rung {
            need!(
                rung != Rung::Rollback && ladder.is_some_and(|l| l.iter().any(|x| x.rung == rung)),
                "state.rollout.ladder.rung",
                "{} is not a rung of the config's ladder that a rollout keeps",
                rung.as_str()
            );
        }
        need!(
            !l.onboarding_paused
                || (r.promoted_at.is_none() && l.rung >= Some(Rung::PauseOnboarding)),
            "state.rollout.ladder.onboarding_paused",
            "onboarding paused without the rung, or after promotion"
        );
        if let Some(f) = &l.frozen {
            need!(
                l.rung >= Some(Rung::Freeze),
                "state.rollout.ladder.frozen",
                "frozen without the freeze rung"
            );
            self.past(f.since, || "state.rollout.ladder.frozen.since".into())?;
            need!(
                f.remaining_ms.is_none_or(|t| t <= TIME_MAX),
                "state.rollout.ladder.frozen.remaining_ms",
                "above 2^53-1"
            );
            need!(
                r.stage_ends_at.is_none(),
                "state.rollout.stage_ends_at",
                "a stage timer runs while the rollout is frozen"
            );
        }
        Ok(())
    }

    /// A pending action, or the one a `resume` would retry.
    fn validate_pending(&self, p: &Pending, path: &str) -> Result<(), Error> {
        let s = &self.state;
        need!(
            p.id >= 1 && p.id < s.next_action_id,
            format!("{path}.id"),
            "action {} is not below next_action_id {}",
            p.id,
            s.next_action_id
        );
        need!(
            p.deadline <= TIME_MAX,
            format!("{path}.deadline"),
            "time above 2^53-1"
        );
        let at = |field: &str| format!("{path}.action.{field}");
        let rollout = s.rollout.as_ref();
        let candidate = |version: &String| {
            rollout.is_some_and(|r| r.promoted_at.is_none() && r.version == *version)
        };
        match &p.action {
            Action::Compensate {
                version,
                effect_id,
                undo,
            } => {
                let next = s.effects.iter().rev().find(|e| e.compensating);
                need!(
                    next.is_some_and(|e| e.version == *version
                        && e.id == *effect_id
                        && e.undo_object().as_ref() == Some(undo)),
                    format!("{path}.action"),
                    "not the compensation of the newest effect waiting for one"
                );
                need!(
                    p.mark.is_none(),
                    format!("{path}.mark"),
                    "only rollbacks mark versions"
                );
                return Ok(());
            }
            Action::Rollback {
                from,
                to,
                degradation_started_at,
                ..
            } => {
                let target = s.registry.get(to);
                need!(target.is_some(), at("to"), "no version {to:?}");
                need!(
                    target.is_some_and(crate::registry::Version::is_target),
                    at("to"),
                    "{to:?} is failed or not validated"
                );
                need!(
                    *from == self.judged_version() && from != to,
                    at("from"),
                    "{from:?} is not the version judged"
                );
                need!(
                    matches!(p.mark, Some(Lifecycle::Failed | Lifecycle::Aborted)),
                    format!("{path}.mark"),
                    "a rollback marks its version failed or aborted"
                );
                if let Some(t) = degradation_started_at {
                    self.past(*t, || at("degradation_started_at"))?;
                }
                return Ok(());
            }
            Action::PauseOnboarding { version } | Action::Freeze { version } => {
                let taken = rollout.and_then(|r| r.ladder.rung);
                let (rung, ok) = match &p.action {
                    Action::Freeze { .. } => (
                        crate::config::Rung::Freeze,
                        rollout.is_some_and(|r| r.version == *version),
                    ),
                    _ => (
                        crate::config::Rung::PauseOnboarding,
                        candidate(version) && rollout.is_some_and(|r| r.ladder.onboarding_paused),
                    ),
                };
                need!(
                    ok,
                    at("version"),
                    "not the rollout's version, or its rung not held"
                );
                need!(
                    taken >= Some(rung),
                    format!("{path}.action"),
                    "a rung the rollout did not take"
                );
                need!(
                    p.mark.is_none(),
                    format!("{path}.mark"),
                    "only rollbacks mark versions"
                );
                return Ok(());
            }
            Action::RouteBack {
                version,
                to,
                scopes,
            } => {
                need!(candidate(version), at("version"), "not the candidate");
                need!(
                    *to == s.registry.aliases.stable,
                    at("to"),
                    "not the stable version"
                );
                need!(!scopes.is_empty(), at("scopes"), "no scope");
                for (i, key) in scopes.iter().enumerate() {
                    let id = self.scope_ids.get(key).copied();
                    need!(
                        id.is_some_and(|id| self.is_routed_back(id))
                            && (i == 0 || scopes[i - 1] < *key),
                        at(&format!("scopes[{i}]")),
                        "not a known scope routed back, in key order"
                    );
                }
                need!(
                    p.mark.is_none(),
                    format!("{path}.mark"),
                    "only rollbacks mark versions"
                );
                return Ok(());
            }
            Action::StartShadow { version }
            | Action::StartPreview { version }
            | Action::SetWeight { version, .. } => {
                need!(candidate(version), at("version"), "not the candidate");
            }
            Action::Promote { version, from } => {
                need!(candidate(version), at("version"), "not the candidate");
                need!(
                    *from == s.registry.aliases.stable,
                    at("from"),
                    "not the stable version"
                );
            }
            Action::PauseForApproval { .. } | Action::Hold {} | Action::Escalate {} => {}
        }
        // A traffic action is the one its rollout's current stage issues, once entered.
        let stage = rollout
            .filter(|r| r.entered)
            .and_then(|r| self.plan.stages.get(r.stage as usize));
        let issued_by_stage = match (&p.action, stage) {
            (Action::StartShadow { .. }, Some(Stage::Shadow { .. }))
            | (Action::StartPreview { .. }, Some(Stage::Preview { .. }))
            | (Action::Promote { .. }, Some(Stage::Promote)) => true,
            (
                Action::SetWeight { weight, step, .. },
                Some(Stage::Weight {
                    weight: w, step: k, ..
                }),
            ) => weight == w && step == k,
            _ => false,
        } || self.gradual_action(&p.action);
        match &p.action {
            Action::Rollback { .. } => {}
            Action::PauseForApproval { .. } | Action::Hold {} | Action::Escalate {} => {
                need!(
                    false,
                    format!("{path}.action"),
                    "not an action to acknowledge"
                );
            }
            _ => {
                need!(
                    issued_by_stage,
                    format!("{path}.action"),
                    "not the action of the rollout's current stage"
                );
            }
        }
        need!(
            p.mark.is_none(),
            format!("{path}.mark"),
            "only rollbacks mark versions"
        );
        Ok(())
    }

    /// Runs [`Policy::validate`] after an accepted input, in debug builds only. The
    /// buckets are checked while the windows hold at most [`DEBUG_CELLS_MAX`] cells
    /// (the tests' policies do), so that a debug build fed a large policy sample by
    /// sample does not spend its time re-reading every bucket at every sample.
    #[inline]
    pub(super) fn debug_validate(&self) {
        #[cfg(debug_assertions)]
        {
            let windows = self.state.arms.iter().flat_map(|a| &a.windows);
            let cells: usize = windows
                .map(|w| w.len() * (1 + w.hists().first().map_or(0, |h| h.len() as usize)))
                .sum();
            if let Err(e) = self.check(cells <= DEBUG_CELLS_MAX) {
                panic!("an accepted input left an invalid state: {e}");
            }
        }
    }

    /// Refuses an input while a counter it may move is too close to its limit.
    pub(super) fn check_counters(&self) -> Result<(), Error> {
        let s = &self.state;
        let room = |n: u64| n <= COUNTER_MAX - COUNTER_HEADROOM;
        ensure(
            room(s.next_action_id) && room(s.registry.next_seq),
            ErrorCode::LimitExceeded,
            "",
            || "the policy's action ids or version sequence numbers are used up".into(),
        )
    }

    /// Refuses `rows` more samples for the bucket of `at` in the window of `arm` and
    /// `metric` if its sample count would pass [`COUNTER_MAX`]. `rows` counts every
    /// sample of the input so far, as if all went into this bucket.
    pub(super) fn check_room(
        &self,
        arm: &str,
        metric: usize,
        at: Timestamp,
        rows: u64,
        path: &str,
    ) -> Result<(), Error> {
        let Some(w) = self.window(arm, metric) else {
            return Ok(());
        };
        let used = w.count_at(self.plan.shapes[metric], at);
        ensure(
            used <= COUNTER_MAX.saturating_sub(rows),
            ErrorCode::CountOutOfRange,
            path,
            || format!("the bucket of time {at} holds {used} samples, 2^53-1 at most"),
        )
    }

    /// [`Policy::check_room`] for a column with times `at`: the same answer as for its
    /// rows in a batch (row `i` needs room for `i + 1` samples in its bucket). When
    /// every bucket has room for the whole column, that is one pass over the buckets;
    /// only a bucket near the limit makes it check row by row.
    pub(super) fn check_column_room<T: crate::time::Millis>(
        &self,
        arm: &str,
        metric: usize,
        at: &[T],
    ) -> Result<(), Error> {
        let Some(w) = self.window(arm, metric) else {
            return Ok(());
        };
        let rows = at.len() as u64;
        let used = w.count_max();
        if used <= COUNTER_MAX.saturating_sub(rows) {
            return Ok(());
        }
        for (i, t) in at.iter().enumerate() {
            self.check_room(arm, metric, t.ms(), i as u64 + 1, "at")
                .map_err(|e| Error {
                    path: format!("at[{i}]"),
                    ..e
                })?;
        }
        Ok(())
    }
}

/// A bucket as reset: no samples, no sums, no bins.
fn slot_is_empty(s: &Slot) -> bool {
    s.count == 0
        && s.sum == 0.0
        && s.min == 0.0
        && s.max == 0.0
        && s.events == 0
        && s.total == 0
        && s.hist.iter().all(|(_, c)| c == 0)
}

/// The parts of a `cusum` or `ewma` state restore checks alike.
/// A lag-1 co-moment kept beside the moments `m` of the same samples. A snapshot from
/// before the co-moment was kept starts it late: fewer pairs than samples, never more.
fn validate_lag(lag: &Lag, m: &Moments, path: &str) -> Result<(), Error> {
    need!(
        lag.n < m.n || lag.n == 0 || m.n == mean::COUNT_MAX,
        format!("{path}.n"),
        "more pairs than samples"
    );
    need!(
        lag.last.is_some() || lag.n == 0,
        format!("{path}.last"),
        "pairs without a last sample"
    );
    need!(
        lag.last.is_none() || m.n > 0,
        format!("{path}.last"),
        "a last sample without samples"
    );
    for (x, field) in [
        (lag.last.unwrap_or(0.0), "last"),
        (lag.mean_prev, "mean_prev"),
        (lag.mean_next, "mean_next"),
    ] {
        need!(
            x.is_finite() && x.abs() <= VALUE_ABS_MAX,
            format!("{path}.{field}"),
            "must be finite and within ±{VALUE_ABS_MAX:e}"
        );
    }
    need!(lag.c.is_finite(), format!("{path}.c"), "must be finite");
    need!(
        lag.n > 0 || (lag.mean_prev == 0.0 && lag.mean_next == 0.0 && lag.c == 0.0),
        format!("{path}.c"),
        "moments without pairs"
    );
    Ok(())
}

struct ChartState<'a> {
    learning: &'a Moments,
    learning_lag: &'a Lag,
    reference: Option<Reference>,
    /// The reference the config gives, if any.
    given: Option<Reference>,
    learn: u64,
    /// The statistic's field name and value.
    statistic: (&'static str, f64),
    h: f64,
    used: u64,
    since: Option<Timestamp>,
    alarm_at: Option<Timestamp>,
    onset: Option<Timestamp>,
}

/// A `mann_whitney` state: each arm's ring holds at most `samples_max` finite samples
/// within the value bound, is full before it wraps, and has seen at least what it holds.
/// (`fits` has checked `samples_max` against the config.)
fn validate_rank_test(t: &RankTest, at: &str) -> Result<(), Error> {
    for (b, arm) in [(&t.judged, "judged"), (&t.baseline, "baseline")] {
        let b: &Buffer = b;
        let len = b.values.len() as u64;
        let cap = u64::from(t.samples_max);
        need!(
            len <= cap,
            format!("{at}.{arm}.values"),
            "{len} samples, at most {cap}"
        );
        need!(
            b.values
                .iter()
                .all(|x| x.is_finite() && x.abs() <= VALUE_ABS_MAX),
            format!("{at}.{arm}.values"),
            "samples must be finite and within ±{VALUE_ABS_MAX:e}"
        );
        need!(
            u64::from(b.next) < cap.max(1) && (b.next == 0 || len == cap),
            format!("{at}.{arm}.next"),
            "{} is not a ring position of {len} samples",
            b.next
        );
        need!(
            b.seen >= len && (b.seen == len || len == cap),
            format!("{at}.{arm}.seen"),
            "{} samples seen for {len} kept",
            b.seen
        );
    }
    Ok(())
}
