//! Inputs: validation of samples, commands and ticks, and recording samples.

use super::*;
use crate::input::Count;
use crate::stats::window::WindowShape;
use crate::time::{Millis, run_end};

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
            other => {
                let at = other.at().unwrap_or(self.state.now);
                self.check_now(at, "at")?;
                // Timers due by `at` fire before the command, and the command may still be
                // refused in the state they leave: keep an undo record rather than a
                // clone of the whole policy (timers and commands never write to windows).
                let undo = self.state.undo_record();
                let mut out = Out::default();
                self.advance(at, &mut out);
                match self.command(other, at, &mut out) {
                    Ok(()) => {
                        self.debug_validate();
                        Ok(out.into_step(at))
                    }
                    Err(e) => {
                        self.state.undo(undo, out.dropped_arms);
                        Err(e)
                    }
                }
            }
        }
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
        let mut metrics = Vec::with_capacity(samples.len());
        let mut t = self.state.now;
        for (i, s) in samples.iter().enumerate() {
            metrics.push(
                self.check_sample(s, t)
                    .and_then(|m| {
                        // As if every sample so far went into this one's bucket.
                        self.check_room(&s.arm, m, s.at, i as u64 + 1, "at")?;
                        Ok(m)
                    })
                    .map_err(|e| e.within(format!("samples[{i}]")))?,
            );
            t = s.at;
        }
        let mut out = Out::default();
        for (s, m) in samples.iter().zip(metrics) {
            self.record(s, m, &mut out);
        }
        self.debug_validate();
        Ok(out.into_step(t))
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

    /// Records a column of value samples of one metric on one arm (the numpy or typed
    /// array path of the bindings), atomically: if any is refused, none is recorded.
    /// Times must not decrease.
    ///
    /// # Errors
    /// The first sample error; its path names the column and row (`value[3]`, `at[0]`),
    /// or `arm` / `metric`. Columns of different lengths are `invalid_value` at `value`.
    pub fn observe_values(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        values: &[f64],
    ) -> Result<Step, Error> {
        self.observe_value_column(arm, metric, at, values)
    }

    /// [`Policy::observe_values`] with the times as `f64` ms, as JavaScript numbers (a
    /// `Float64Array`) carry them: each must be an integer, else the row is refused as
    /// [`time_from_number`](crate::time_from_number) refuses it (`at[3]`).
    ///
    /// # Errors
    /// As [`Policy::observe_values`].
    pub fn observe_values_f64(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[f64],
        values: &[f64],
    ) -> Result<Step, Error> {
        self.observe_value_column(arm, metric, at, values)
    }

    fn observe_value_column<T: Millis>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[T],
        values: &[f64],
    ) -> Result<Step, Error> {
        same_length(at.len(), values.len(), "value")?;
        let Some((&first, &x)) = at.first().zip(values.first()) else {
            return Ok(Out::default().into_step(self.state.now));
        };
        // Row 0 through the general check settles arm, metric and kind for the column;
        // the other rows need only the cheap per-row tests.
        let now = self.state.now;
        let m = first
            .exact("at")
            .and_then(|t| self.check_parts(t, now, arm, metric, Some(x), None, None))
            .map_err(|e| row(e, 0))?;
        // Branch-free tests over the whole column, times and values in one pass (it
        // vectorizes; see `Millis`); the exact error, if any, comes from the general
        // check of the first failing row (row 0 was checked above). `<=` is false for NaN.
        let fine = |v: f64| v.abs() <= VALUE_ABS_MAX;
        let rows = at
            .iter()
            .zip(at.iter().skip(1))
            .zip(values.iter().skip(1))
            .fold(true, |ok, ((&a, &b), &v)| ok & T::pair_fine(a, b) & fine(v));
        let last = at.last().copied().unwrap_or(first);
        if !(rows && T::ends_fine(first, last)) {
            let mut prev = first.ms();
            for i in 1..at.len() {
                at[i]
                    .exact("at")
                    .and_then(|t| {
                        self.check_parts(t, prev, arm, metric, Some(values[i]), None, None)?;
                        prev = t;
                        Ok(())
                    })
                    .map_err(|e| row(e, i))?;
            }
        }
        self.check_column_room(arm, m, at)?;
        let mut out = Out::default();
        let record = |w: &mut Window, shape, rows: core::ops::Range<usize>| {
            w.add_values(shape, &at[rows.clone()], &values[rows]);
        };
        let feed = |d: &mut Detector, role, rows: core::ops::Range<usize>| {
            for (t, &x) in at[rows.clone()].iter().zip(&values[rows]) {
                d.observe_value(role, t.ms(), x);
            }
        };
        self.record_column(arm, m, at, &mut out, record, feed);
        self.debug_validate();
        Ok(out.into_step(self.state.now))
    }

    /// Records a column of count samples (`events` out of `totals`) of one metric on one
    /// arm, atomically, as [`Policy::observe_values`] does.
    ///
    /// # Errors
    /// As [`Policy::observe_values`] (`events[3]`, `total[3]`, …).
    pub fn observe_counts(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        events: &[i64],
        totals: &[i64],
    ) -> Result<Step, Error> {
        self.observe_count_column(arm, metric, at, events, totals)
    }

    /// [`Policy::observe_counts`] with times and counts as `f64`, as JavaScript numbers
    /// carry them: each must be an integer, else the row is refused as
    /// [`time_from_number`](crate::time_from_number) and
    /// [`count_from_number`](crate::count_from_number) refuse it.
    ///
    /// # Errors
    /// As [`Policy::observe_counts`].
    pub fn observe_counts_f64(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[f64],
        events: &[f64],
        totals: &[f64],
    ) -> Result<Step, Error> {
        self.observe_count_column(arm, metric, at, events, totals)
    }

    fn observe_count_column<T: Millis, N: Count>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[T],
        events: &[N],
        totals: &[N],
    ) -> Result<Step, Error> {
        same_length(at.len(), events.len(), "events")?;
        same_length(at.len(), totals.len(), "total")?;
        let Some(&first) = at.first() else {
            return Ok(Out::default().into_step(self.state.now));
        };
        // Row `i` through the general check, with the time it must not be before: its
        // time and the metric's index.
        let check = |p: &Self, i: usize, prev: Timestamp| {
            let t = at[i].exact("at")?;
            let e = events[i].exact("events")?;
            let n = totals[i].exact("total")?;
            let m = p.check_parts(t, prev, arm, metric, None, Some(e), Some(n))?;
            Ok((t, m))
        };
        let now = self.state.now;
        let (_, m) = check(self, 0, now).map_err(|e| row(e, 0))?;
        // As for values: one branch-free pass, then rows one by one only on refusal.
        let rows = at
            .iter()
            .zip(at.iter().skip(1))
            .zip(events.iter().zip(totals).skip(1))
            .fold(true, |ok, ((&a, &b), (&e, &n))| {
                ok & T::pair_fine(a, b) & N::pair_fine(e, n)
            });
        let last = at.last().copied().unwrap_or(first);
        if !(rows && T::ends_fine(first, last)) {
            let mut prev = first.ms();
            for i in 1..at.len() {
                (prev, _) = check(self, i, prev).map_err(|e| row(e, i))?;
            }
        }
        self.check_column_room(arm, m, at)?;
        let mut out = Out::default();
        let record = |w: &mut Window, shape, rows: core::ops::Range<usize>| {
            w.add_counts(
                shape,
                &at[rows.clone()],
                &events[rows.clone()],
                &totals[rows],
            );
        };
        let feed = |d: &mut Detector, role, rows: core::ops::Range<usize>| {
            let counts = events[rows.clone()].iter().zip(&totals[rows.clone()]);
            for (t, (e, n)) in at[rows].iter().zip(counts) {
                d.observe_count(role, t.ms(), e.get(), n.get());
            }
        };
        self.record_column(arm, m, at, &mut out, record, feed);
        self.debug_validate();
        Ok(out.into_step(self.state.now))
    }

    /// Records validated column rows in runs that end at timer deadlines: the timers
    /// fire before the first row at or after them, exactly as when the rows come one by
    /// one, and each run goes into the window in one pass.
    fn record_column<T: Millis>(
        &mut self,
        arm: &str,
        metric: usize,
        at: &[T],
        out: &mut Out,
        mut record: impl FnMut(&mut Window, WindowShape, core::ops::Range<usize>),
        mut feed: impl FnMut(&mut Detector, Side, core::ops::Range<usize>),
    ) {
        let shape = self.plan.shapes[metric];
        let mut i = 0;
        while let Some(t) = at.get(i).map(|t| t.ms()) {
            if self.next_deadline().is_some_and(|d| d <= t) {
                self.advance(t, out);
            }
            let end = match self.next_deadline() {
                Some(d) if d > t => run_end(at, i, d),
                Some(_) => i + 1, // never happens: `advance` fired everything due
                None => at.len(),
            };
            // The live arms change only when timers fire or commands run, so one look-up
            // serves the whole run; samples of versions that are not live are ignored.
            if let Some(w) = self.window_mut(arm, metric) {
                record(w, shape, i..end);
            }
            if !self.plan.observers[metric].is_empty() {
                self.observe_samples(arm, metric, None, |d, role| feed(d, role, i..end));
            }
            self.state.now = at[end - 1].ms();
            i = end;
        }
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
