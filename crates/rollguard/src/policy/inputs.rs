//! Inputs: validation of samples, commands and ticks, and recording samples.

use super::*;

/// One validated sample, taken apart: its metric's index, its scope's id, and its
/// value or counts.
#[derive(Clone, Copy)]
pub(super) struct Parts {
    pub(super) metric: usize,
    pub(super) scope: Option<u32>,
    pub(super) value: Option<f64>,
    pub(super) events: u64,
    pub(super) total: u64,
}

impl Policy {
    /// Applies any input.
    ///
    /// # Errors
    /// An input error; the policy is unchanged.
    pub fn handle(&mut self, input: &Input) -> Result<Step, Error> {
        match input {
            Input::Observe(sample) => self.observe(sample),
            Input::ObserveBatch { samples } => self.observe_batch(samples),
            Input::Tick { at } => self.tick(*at),
            other => self.command_revertible(other).map(|(step, _)| step),
        }
    }

    /// Applies a command (any input but a sample, a batch or a tick) and returns, with
    /// its step, what puts the policy back as it was ([`Policy::revert`]): for
    /// [`Agents`](crate::Agents), which applies one command to several policies and
    /// keeps it only if every one accepts it. A refused command leaves the policy as it
    /// was, as [`Policy::handle`] does.
    pub(crate) fn command_revertible(&mut self, input: &Input) -> Result<(Step, Applied), Error> {
        let at = input.at().unwrap_or(self.state.now);
        self.check_now(at, "at")?;
        // Timers due by `at` fire before the command, and the command may still be
        // refused in the state they leave: keep an undo record rather than a
        // clone of the whole policy (timers and commands never write to windows).
        let undo = self.state.undo_record();
        let mut out = Out::default();
        self.advance(at, &mut out);
        match self.command(input, at, &mut out) {
            Ok(()) => {
                self.debug_validate();
                let applied = Applied {
                    undo,
                    dropped: core::mem::take(&mut out.dropped_arms),
                };
                Ok((out.into_step(at), applied))
            }
            Err(e) => {
                self.state.undo(undo, out.dropped_arms);
                Err(e)
            }
        }
    }

    /// Checks that [`Policy::tick`] at `at` would be accepted.
    pub(crate) fn check_tick(&self, at: Timestamp) -> Result<(), Error> {
        self.check_now(at, "at")
    }

    /// Puts the policy back as it was before the command that returned `applied`; no
    /// other input may have been applied since.
    pub(crate) fn revert(&mut self, applied: Applied) {
        self.state.undo(applied.undo, applied.dropped);
    }

    /// Checks samples as [`Policy::observe_batch`] does, without recording them: the
    /// metric of each, for [`Policy::record_checked`]. `samples` pairs each sample with
    /// its index in the caller's batch, which error paths give (`samples[i]`).
    pub(crate) fn check_batch(&self, samples: &[(usize, &Sample)]) -> Result<Vec<usize>, Error> {
        let mut metrics = Vec::with_capacity(samples.len());
        let mut t = self.state.now;
        for (k, (i, s)) in samples.iter().enumerate() {
            metrics.push(
                self.check_sample(s, t)
                    .and_then(|m| {
                        self.check_room(&s.arm, m, s.at, k as u64 + 1, "at")?;
                        Ok(m)
                    })
                    .map_err(|e| e.within(format!("samples[{i}]")))?,
            );
            t = s.at;
        }
        Ok(metrics)
    }

    /// Records samples that [`Policy::check_batch`] accepted, with their metrics; the
    /// step is at `at` (the batch's time).
    pub(crate) fn record_checked(
        &mut self,
        samples: &[(usize, &Sample)],
        metrics: &[usize],
        at: Timestamp,
    ) -> Step {
        let mut out = Out::default();
        for ((_, s), m) in samples.iter().zip(metrics) {
            self.record(s, *m, &mut out);
        }
        self.debug_validate();
        out.into_step(at)
    }

    /// Parses one input from JSON and applies it.
    ///
    /// # Errors
    /// `invalid_json`, or an input error; the policy is unchanged.
    pub fn handle_json(&mut self, input: &str) -> Result<Step, Error> {
        self.handle(&Input::from_json(input)?)
    }

    /// Time passes: fires every timer due at or before `now`.
    ///
    /// # Errors
    /// `time_went_backwards` or `time_out_of_range`; the policy is unchanged.
    pub fn tick(&mut self, now: Timestamp) -> Result<Step, Error> {
        self.check_now(now, "at")?;
        let mut out = Out::default();
        self.advance(now, &mut out);
        self.debug_validate();
        Ok(out.into_step(now))
    }

    /// Records one sample (after firing timers due by its time).
    ///
    /// # Errors
    /// A sample error (`non_finite_value`, `negative_count`, `events_exceed_total`,
    /// `metric_kind_mismatch`, `unknown_arm`, `unknown_metric`, `label_too_long`,
    /// `time_went_backwards`, `time_out_of_range`); the policy is unchanged.
    pub fn observe(&mut self, sample: &Sample) -> Result<Step, Error> {
        let metric = self.check_sample(sample, self.state.now)?;
        self.check_room(&sample.arm, metric, sample.at, 1, "at")?;
        let mut out = Out::default();
        self.record(sample, metric, &mut out);
        self.debug_validate();
        Ok(out.into_step(sample.at))
    }

    /// Records samples in time order, atomically: if any is refused, none is recorded.
    ///
    /// # Errors
    /// The first sample error, its path prefixed with `samples[i]`.
    pub fn observe_batch(&mut self, samples: &[Sample]) -> Result<Step, Error> {
        let indexed: Vec<(usize, &Sample)> = samples.iter().enumerate().collect();
        let metrics = self.check_batch(&indexed)?;
        let at = samples.last().map_or(self.state.now, |s| s.at);
        Ok(self.record_checked(&indexed, &metrics, at))
    }

    /// The fast path for one value sample, without building a [`Sample`].
    ///
    /// # Errors
    /// As [`Policy::observe`].
    pub fn observe_value(
        &mut self,
        at: Timestamp,
        arm: &str,
        metric: &str,
        value: f64,
    ) -> Result<Step, Error> {
        let m = self.check_parts(at, self.state.now, arm, metric, Some(value), None, None)?;
        self.check_room(arm, m, at, 1, "at")?;
        let mut out = Out::default();
        let parts = Parts {
            metric: m,
            scope: None,
            value: Some(value),
            events: 0,
            total: 0,
        };
        self.record_parts(at, arm, parts, &mut out);
        self.debug_validate();
        Ok(out.into_step(at))
    }

    /// The fast path for one count sample.
    ///
    /// # Errors
    /// As [`Policy::observe`].
    pub fn observe_count(
        &mut self,
        at: Timestamp,
        arm: &str,
        metric: &str,
        events: i64,
        total: i64,
    ) -> Result<Step, Error> {
        let m = self.check_parts(
            at,
            self.state.now,
            arm,
            metric,
            None,
            Some(events),
            Some(total),
        )?;
        self.check_room(arm, m, at, 1, "at")?;
        let mut out = Out::default();
        let parts = Parts {
            metric: m,
            scope: None,
            value: None,
            events: events as u64,
            total: total as u64,
        };
        self.record_parts(at, arm, parts, &mut out);
        self.debug_validate();
        Ok(out.into_step(at))
    }

    pub(super) fn check_now(&self, at: Timestamp, path: &str) -> Result<(), Error> {
        check_time(at, path)?;
        ensure(
            at >= self.state.now,
            ErrorCode::TimeWentBackwards,
            path,
            || format!("time {at} is before the policy's time {}", self.state.now),
        )?;
        self.check_counters()
    }

    pub(super) fn check_sample(&self, s: &Sample, not_before: Timestamp) -> Result<usize, Error> {
        let label_max = self.config.limits.label_len_max;
        for (name, label) in [
            ("tenant", &s.tenant),
            ("tier", &s.tier),
            ("agent", &s.agent),
        ] {
            if let Some(l) = label {
                check_label(l, label_max, name, true)?;
            }
        }
        self.check_parts(
            s.at, not_before, &s.arm, &s.metric, s.value, s.events, s.total,
        )
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn check_parts(
        &self,
        at: Timestamp,
        not_before: Timestamp,
        arm: &str,
        metric: &str,
        value: Option<f64>,
        events: Option<i64>,
        total: Option<i64>,
    ) -> Result<usize, Error> {
        check_time(at, "at")?;
        if at < not_before {
            return Err(Error::new(
                ErrorCode::TimeWentBackwards,
                "at",
                format!("time {at} is before {not_before}"),
            ));
        }
        if !self.state.arms.iter().any(|a| a.version == arm) && !self.state.registry.contains(arm) {
            // Too long to be any version's id: say so rather than echo it.
            check_label(arm, self.config.limits.label_len_max, "arm", true)?;
            return Err(Error::new(
                ErrorCode::UnknownArm,
                "arm",
                format!("no version {arm:?}"),
            ));
        }
        let m = self.config.metric_index(metric).ok_or_else(|| {
            if let Err(e) = check_label(metric, self.config.limits.label_len_max, "metric", true) {
                return e;
            }
            Error::new(
                ErrorCode::UnknownMetric,
                "metric",
                format!("no metric {metric:?}"),
            )
        })?;
        let kind = self.plan.shapes[m].kind;
        match (kind, value, events, total) {
            (crate::config::MetricKind::Value, Some(v), None, None) => {
                ensure(v.is_finite(), ErrorCode::NonFiniteValue, "value", || {
                    format!("{v} is not finite")
                })?;
                ensure(
                    v.abs() <= VALUE_ABS_MAX,
                    ErrorCode::ValueOutOfRange,
                    "value",
                    || format!("{v:e} is beyond ±{VALUE_ABS_MAX:e}"),
                )?;
            }
            (crate::config::MetricKind::Count, None, Some(e), Some(t)) => {
                ensure(e >= 0, ErrorCode::NegativeCount, "events", || {
                    format!("{e} is negative")
                })?;
                ensure(t >= 0, ErrorCode::NegativeCount, "total", || {
                    format!("{t} is negative")
                })?;
                ensure(
                    t <= TIME_MAX as i64,
                    ErrorCode::CountOutOfRange,
                    "total",
                    || format!("{t} is above 2^53-1"),
                )?;
                ensure(e <= t, ErrorCode::EventsExceedTotal, "events", || {
                    format!("events {e} exceed total {t}")
                })?;
            }
            (crate::config::MetricKind::Value, ..) => {
                return Err(Error::new(
                    ErrorCode::MetricKindMismatch,
                    "value",
                    format!("metric {metric:?} takes exactly one `value`"),
                ));
            }
            (crate::config::MetricKind::Count, ..) => {
                return Err(Error::new(
                    ErrorCode::MetricKindMismatch,
                    "events",
                    format!("metric {metric:?} takes `events` and `total`"),
                ));
            }
        }
        self.check_counters()?;
        Ok(m)
    }

    pub(super) fn record(&mut self, s: &Sample, metric: usize, out: &mut Out) {
        let events = s.events.unwrap_or(0) as u64;
        let total = s.total.unwrap_or(0) as u64;
        let scope = self.scope_of(s.tenant.as_deref(), s.tier.as_deref(), s.agent.as_deref());
        let (at, value) = (s.at, s.value);
        let parts = Parts {
            metric,
            scope,
            value,
            events,
            total,
        };
        self.record_parts(at, &s.arm, parts, out);
    }

    #[inline]
    pub(super) fn record_parts(&mut self, at: Timestamp, arm: &str, p: Parts, out: &mut Out) {
        if self.next_deadline().is_some_and(|d| d <= at) {
            self.advance(at, out);
        }
        self.state.now = at;
        // A scope the ladder routed back no longer counts (checked after the timers,
        // which may have routed it back).
        let p = Parts {
            scope: p.scope.filter(|&s| !self.is_routed_back(s)),
            ..p
        };
        let shape = self.plan.shapes[p.metric];
        let add = |w: &mut Window| match p.value {
            Some(x) => w.add_value(shape, at, x),
            None => w.add_count(shape, at, p.events, p.total),
        };
        // Samples from registered versions that are not live are accepted and ignored.
        if let Some(w) = self.window_mut(arm, p.metric) {
            add(w);
        }
        if let Some(w) = p
            .scope
            .and_then(|s| self.scoped_window_mut(arm, s, p.metric))
        {
            add(w);
        }
        if !self.plan.observers[p.metric].is_empty() {
            self.observe_samples(arm, p.metric, p.scope, |d, role| match p.value {
                Some(x) => d.observe_value(role, at, x),
                None => d.observe_count(role, at, p.events, p.total),
            });
        }
    }
}
