//! Rolling time windows in fixed buckets, with a deterministic quantile histogram.
//!
//! A window of `window_ms` is kept as `buckets` slots of `window_ms / buckets` each, in
//! a ring indexed by `at / width`. Memory is fixed by the config, whatever the sample
//! rate. Reading at time `t` merges the last `buckets` buckets that start before `t`.
//! Gates are evaluated on bucket boundaries (see `Plan::grid_ms`), and there a read
//! covers exactly `[t − window_ms, t)`: every sample of the last `window_ms`, and
//! nothing older. A read between boundaries (only when the config's bucket widths
//! share no boundary within one analysis interval) ends with the bucket in progress.
//!
//! Quantiles come from the bins of [`HistShape`](crate::stats::histogram), within
//! 1/64 relative error inside the metric's `histogram_range`.

use serde::{Deserialize, Serialize};

use crate::config::{MetricConfig, MetricKind, Stat};
use crate::input::Count;
use crate::stats::histogram::HistShape;
use crate::stats::{lower, upper};
use crate::time::{Millis, Timestamp, run_end};

/// One time bucket of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slot {
    /// `at / width` of the samples in it. A never-used slot says 0 and is empty, which
    /// reads the same as an empty slot of epoch 0 (and keeps snapshots JSON-safe: every
    /// integer stays below 2^53).
    pub(crate) epoch: u64,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    /// Smallest and largest value; meaningful only when `count > 0` (kept finite so
    /// that snapshots stay plain JSON).
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) events: u64,
    pub(crate) total: u64,
    /// Dense bin counts when the metric feeds a quantile gate; empty otherwise.
    #[serde(with = "sparse")]
    pub(crate) hist: Vec<u32>,
}

impl Slot {
    #[inline]
    fn push_value(&mut self, hist: Option<HistShape>, x: f64) {
        if self.count == 0 {
            (self.min, self.max) = (x, x);
        } else {
            (self.min, self.max) = (lower(self.min, x), upper(self.max, x));
        }
        self.count = self.count.saturating_add(1);
        self.sum += x;
        if let Some(h) = hist {
            if let Some(c) = self.hist.get_mut(h.bin(x)) {
                *c = c.saturating_add(1);
            }
        }
    }

    /// [`Slot::push_value`] for a run: the same updates in the same order (so the same
    /// bits), with the slot's fields kept in registers.
    fn push_values(&mut self, hist: Option<HistShape>, xs: &[f64]) {
        let Some(&first) = xs.first() else { return };
        let (mut lo, mut hi) = if self.count == 0 {
            (first, first)
        } else {
            (self.min, self.max)
        };
        let mut sum = self.sum;
        match hist {
            Some(h) => {
                for &x in xs {
                    (lo, hi) = (lower(lo, x), upper(hi, x));
                    sum += x;
                    if let Some(c) = self.hist.get_mut(h.bin(x)) {
                        *c = c.saturating_add(1);
                    }
                }
            }
            None => {
                for &x in xs {
                    (lo, hi) = (lower(lo, x), upper(hi, x));
                    sum += x;
                }
            }
        }
        (self.min, self.max, self.sum) = (lo, hi, sum);
        self.count = self.count.saturating_add(xs.len() as u64);
    }

    #[inline]
    fn push_count(&mut self, events: u64, total: u64) {
        self.count = self.count.saturating_add(1);
        // Saturate below 2^53 so snapshots stay exact in every binding's JSON.
        self.events = self
            .events
            .saturating_add(events)
            .min(crate::time::TIME_MAX);
        self.total = self.total.saturating_add(total).min(crate::time::TIME_MAX);
    }

    fn empty(hist_len: u32) -> Self {
        Self {
            epoch: 0,
            count: 0,
            sum: 0.0,
            min: 0.0,
            max: 0.0,
            events: 0,
            total: 0,
            hist: vec![0; hist_len as usize],
        }
    }

    fn reset(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.count = 0;
        self.sum = 0.0;
        self.min = 0.0;
        self.max = 0.0;
        self.events = 0;
        self.total = 0;
        self.hist.fill(0);
    }
}

/// The layout of one metric's window, derived from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowShape {
    pub(crate) width_ms: u64,
    pub(crate) buckets: u32,
    pub(crate) kind: MetricKind,
    /// `None` when no gate reads a quantile of this metric.
    pub(crate) hist: Option<HistShape>,
}

impl WindowShape {
    pub(crate) fn new(m: &MetricConfig, window_ms: u64, wants_quantiles: bool) -> Self {
        Self {
            width_ms: window_ms / u64::from(m.buckets),
            buckets: m.buckets,
            kind: m.kind,
            hist: (wants_quantiles && m.kind == MetricKind::Value)
                .then(|| HistShape::new(m.histogram_range)),
        }
    }

    fn hist_len(self) -> u32 {
        self.hist.map_or(0, HistShape::len)
    }
}

/// A statistic read from a window, with the evidence behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reading {
    /// `None` when the window holds no sample the statistic can use.
    pub(crate) value: Option<f64>,
    /// Samples (value metrics) or `total` (count metrics).
    pub(crate) evidence: u64,
}

/// A rolling window of one metric for one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Window {
    pub(crate) slots: Vec<Slot>,
}

impl Window {
    pub(crate) fn new(shape: WindowShape) -> Self {
        Self {
            slots: (0..shape.buckets)
                .map(|_| Slot::empty(shape.hist_len()))
                .collect(),
        }
    }

    /// Samples in the bucket of `at` (none if its slot holds another epoch, which a
    /// sample at `at` would reset).
    pub(crate) fn count_at(&self, shape: WindowShape, at: Timestamp) -> u64 {
        let epoch = at / shape.width_ms;
        let n = self.slots.len() as u64;
        self.slots
            .get((epoch % n.max(1)) as usize)
            .filter(|s| s.epoch == epoch)
            .map_or(0, |s| s.count)
    }

    #[inline]
    fn slot_mut(&mut self, shape: WindowShape, at: Timestamp) -> Option<&mut Slot> {
        let epoch = at / shape.width_ms;
        let n = self.slots.len() as u64;
        let slot = self.slots.get_mut((epoch % n.max(1)) as usize)?;
        if slot.epoch != epoch {
            slot.reset(epoch);
        }
        Some(slot)
    }

    /// Records one value.
    #[inline]
    pub(crate) fn add_value(&mut self, shape: WindowShape, at: Timestamp, x: f64) {
        if let Some(slot) = self.slot_mut(shape, at) {
            slot.push_value(shape.hist, x);
        }
    }

    /// Records `events` out of `total`.
    #[inline]
    pub(crate) fn add_count(&mut self, shape: WindowShape, at: Timestamp, events: u64, total: u64) {
        if let Some(slot) = self.slot_mut(shape, at) {
            slot.push_count(events, total);
        }
    }

    /// Records a run of values with non-decreasing times: one slot look-up per bucket
    /// instead of per value, the same additions in the same order as [`Window::add_value`].
    pub(crate) fn add_values<T: Millis>(&mut self, shape: WindowShape, at: &[T], values: &[f64]) {
        self.for_each_bucket(shape, at, |slot, rows| {
            slot.push_values(shape.hist, &values[rows])
        });
    }

    /// Records a run of counts with non-decreasing times, as [`Window::add_values`].
    pub(crate) fn add_counts<T: Millis, N: Count>(
        &mut self,
        shape: WindowShape,
        at: &[T],
        events: &[N],
        totals: &[N],
    ) {
        self.for_each_bucket(shape, at, |slot, rows| {
            for (&e, &n) in events[rows.clone()].iter().zip(&totals[rows]) {
                slot.push_count(e.get(), n.get());
            }
        });
    }

    /// Splits non-decreasing times into runs of one bucket each.
    fn for_each_bucket<T: Millis>(
        &mut self,
        shape: WindowShape,
        at: &[T],
        mut f: impl FnMut(&mut Slot, core::ops::Range<usize>),
    ) {
        let mut i = 0;
        while let Some(t) = at.get(i).map(|t| t.ms()) {
            let next = (t / shape.width_ms + 1).saturating_mul(shape.width_ms);
            let end = run_end(at, i, next);
            if let Some(slot) = self.slot_mut(shape, t) {
                f(slot, i..end);
            }
            i = end;
        }
    }

    /// The epochs a read at `now` covers: the last `buckets` ones that start before
    /// `now`. On a bucket boundary those are exactly the `window_ms` before `now`
    /// (`[now − window_ms, now)`: the bucket starting at `now` holds nothing yet, since
    /// evaluations fire before samples of their time are recorded); between
    /// boundaries the newest is the bucket in progress.
    fn live(shape: WindowShape, now: Timestamp) -> (u64, u64) {
        // ⌈now / width⌉: the first epoch starting at or after `now`. Times are below
        // 2^53 and widths at most that, so the sum cannot overflow.
        let end = now.div_ceil(shape.width_ms).max(1);
        (end.saturating_sub(u64::from(shape.buckets)), end - 1)
    }

    /// Start of the window read at `now`.
    pub(crate) fn start(shape: WindowShape, now: Timestamp) -> Timestamp {
        Self::live(shape, now).0 * shape.width_ms
    }

    /// Reads a statistic over the whole window at `now`.
    pub(crate) fn read(&self, shape: WindowShape, stat: Stat, now: Timestamp) -> Reading {
        let (lo, hi) = Self::live(shape, now);
        self.read_epochs(shape, stat, lo, hi)
    }

    /// Per-bucket readings at `now`, oldest first, with each bucket's start time; used
    /// to estimate when a degradation began.
    pub(crate) fn read_buckets(
        &self,
        shape: WindowShape,
        stat: Stat,
        now: Timestamp,
    ) -> Vec<(Timestamp, Reading)> {
        let (lo, hi) = Self::live(shape, now);
        (lo..=hi)
            .filter(|e| self.slots.iter().any(|s| s.epoch == *e))
            .map(|e| (e * shape.width_ms, self.read_epochs(shape, stat, e, e)))
            .collect()
    }

    fn read_epochs(&self, shape: WindowShape, stat: Stat, lo: u64, hi: u64) -> Reading {
        // Sum in epoch order, not ring order, so the result does not depend on where
        // the ring happens to start. A bucket lives in the ring slot of its epoch
        // (restore checks it), so the live ones in epoch order are found without
        // collecting and sorting: a scoped policy reads thousands of windows per tick.
        // (Slots of epoch 0 elsewhere in the ring are empty and add nothing.)
        let n = (self.slots.len() as u64).max(1);
        let order = || {
            (lo..=hi).filter_map(move |e| self.slots.get((e % n) as usize).filter(|s| s.epoch == e))
        };
        let mut count = 0u64;
        let mut sum = 0.0;
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        let mut events = 0u64;
        let mut total = 0u64;
        for s in order() {
            if s.count > 0 {
                (min, max) = (lower(min, s.min), upper(max, s.max));
            }
            count += s.count;
            sum += s.sum;
            events = events.saturating_add(s.events);
            total = total.saturating_add(s.total);
        }
        let evidence = match shape.kind {
            MetricKind::Value => count,
            MetricKind::Count => total,
        };
        let value = match stat {
            Stat::Count => Some(evidence as f64),
            Stat::Rate => (total > 0).then(|| events as f64 / total as f64),
            Stat::Mean => (count > 0).then(|| sum / count as f64),
            Stat::Min => (count > 0).then_some(min),
            Stat::Max => (count > 0).then_some(max),
            Stat::P50 | Stat::P90 | Stat::P95 | Stat::P99 => {
                let pct = match stat {
                    Stat::P50 => 50,
                    Stat::P90 => 90,
                    Stat::P95 => 95,
                    _ => 99,
                };
                let slots: Vec<&Slot> = order().collect();
                shape
                    .hist
                    .and_then(|h| quantile(h, &slots, count, pct, min, max))
            }
        };
        Reading { value, evidence }
    }
}

/// Nearest-rank quantile `pct`/100 over the merged histograms of `slots`.
fn quantile(h: HistShape, slots: &[&Slot], n: u64, pct: u64, min: f64, max: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    // rank = ⌈n·pct/100⌉ in integers, at least 1.
    let rank = (n.saturating_mul(pct).div_ceil(100)).max(1);
    let mut seen = 0u64;
    for bin in 0..h.len() as usize {
        seen += slots
            .iter()
            .map(|s| u64::from(s.hist.get(bin).copied().unwrap_or(0)))
            .sum::<u64>();
        if seen >= rank {
            let x = if bin == 0 {
                min
            } else if bin == h.len() as usize - 1 {
                max
            } else {
                h.midpoint(bin)
            };
            return Some(x.clamp(min, max));
        }
    }
    // Only reachable when bin counts saturated; the maximum is the honest answer.
    Some(max)
}

/// Histograms are mostly zeros: serialize them as `[[bin, count], …]` plus their length.
mod sparse {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::config::limits::OCTAVES_MAX;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sparse {
        len: u32,
        bins: Vec<(u32, u32)>,
    }

    pub(super) fn serialize<S: Serializer>(hist: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let bins = hist
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as u32, *c))
            .collect();
        Sparse {
            len: hist.len() as u32,
            bins,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let sparse = Sparse::deserialize(d)?;
        let cap = (OCTAVES_MAX * crate::stats::histogram::SUB) as u32 + 2;
        if sparse.len > cap {
            return Err(D::Error::custom("histogram longer than any config allows"));
        }
        let mut hist = vec![0; sparse.len as usize];
        for (i, c) in sparse.bins {
            *hist
                .get_mut(i as usize)
                .ok_or_else(|| D::Error::custom("histogram bin out of range"))? = c;
        }
        Ok(hist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HistogramRange;

    fn value_metric(window_ms: u64, buckets: u32) -> MetricConfig {
        MetricConfig {
            name: "latency_ms".into(),
            kind: MetricKind::Value,
            window_ms: Some(window_ms),
            buckets,
            histogram_range: HistogramRange::default(),
        }
    }

    #[test]
    fn quantile_matches_nearest_rank_within_bound() {
        let m = value_metric(60_000, 6);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true);
        let mut w = Window::new(shape);
        let mut exact = Vec::new();
        for i in 0..1000u64 {
            // A deterministic spread of values over three decades.
            let x = 1.0 + ((i * 7919) % 1000) as f64 * 1.7;
            w.add_value(shape, 1000 + i * 50, x);
            exact.push(x);
        }
        exact.sort_by(f64::total_cmp);
        for (stat, pct) in [(Stat::P50, 50u64), (Stat::P95, 95), (Stat::P99, 99)] {
            let rank = (1000 * pct).div_ceil(100) as usize;
            let want = exact[rank - 1];
            let got = w.read(shape, stat, 1000 + 999 * 50).value.unwrap();
            assert!(
                ((got - want) / want).abs() <= 1.0 / 64.0,
                "{stat:?}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn a_read_on_a_boundary_covers_exactly_the_window() {
        let m = value_metric(10_000, 10);
        let shape = WindowShape::new(&m, 10_000, false);
        let mut w = Window::new(shape);
        w.add_value(shape, 0, 100.0);
        w.add_value(shape, 9_999, 1.0);
        assert_eq!(w.read(shape, Stat::Count, 9_999).evidence, 2);
        // At 10 000 the window is [0, 10 000): both samples, the first bucket included.
        assert_eq!(w.read(shape, Stat::Count, 10_000).evidence, 2);
        assert_eq!(Window::start(shape, 10_000), 0);
        // Past the boundary the bucket of t=0 has left the window.
        let r = w.read(shape, Stat::Mean, 10_001);
        assert_eq!((r.evidence, r.value), (1, Some(1.0)));
        assert_eq!(Window::start(shape, 10_001), 1_000);
        assert_eq!(w.read(shape, Stat::Mean, 20_000).value, None);
    }

    #[test]
    fn slot_reuse_resets_old_contents() {
        let m = value_metric(4_000, 4);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true);
        let mut w = Window::new(shape);
        w.add_value(shape, 500, 9.0);
        w.add_value(shape, 4_500, 3.0); // same ring slot, new epoch
        let r = w.read(shape, Stat::Max, 4_500);
        assert_eq!((r.evidence, r.value), (1, Some(3.0)));
        assert_eq!(w.read(shape, Stat::P99, 4_500).value, Some(3.0));
    }

    #[test]
    fn count_rate_and_out_of_range_values() {
        let m = MetricConfig {
            kind: MetricKind::Count,
            ..value_metric(1_000, 1)
        };
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), false);
        let mut w = Window::new(shape);
        w.add_count(shape, 1, 3, 100);
        w.add_count(shape, 2, 1, 100);
        let r = w.read(shape, Stat::Rate, 2);
        assert_eq!((r.evidence, r.value), (200, Some(0.02)));

        let m = value_metric(1_000, 1);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true);
        let mut w = Window::new(shape);
        for x in [-5.0, 0.0, 2e12] {
            w.add_value(shape, 1, x);
        }
        assert_eq!(w.read(shape, Stat::P50, 1).value, Some(-5.0));
        assert_eq!(w.read(shape, Stat::P99, 1).value, Some(2e12));
    }

    #[test]
    fn signed_zero_ties_keep_the_first_value_on_every_platform() {
        let m = value_metric(1_000, 1);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), false);
        for (first, second) in [(0.0, -0.0), (-0.0, 0.0)] {
            let mut w = Window::new(shape);
            w.add_value(shape, 1, first);
            w.add_value(shape, 1, second);
            let min = w.read(shape, Stat::Min, 1).value.unwrap();
            let max = w.read(shape, Stat::Max, 1).value.unwrap();
            assert_eq!(
                (min.to_bits(), max.to_bits()),
                (first.to_bits(), first.to_bits())
            );
            // The column path agrees bit for bit.
            let mut c = Window::new(shape);
            c.add_values(shape, &[1, 1], &[first, second]);
            assert_eq!(c, w);
        }
    }

    #[test]
    fn sparse_histograms_round_trip() {
        let m = value_metric(1_000, 2);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true);
        let mut w = Window::new(shape);
        w.add_value(shape, 1, 42.0);
        let json = serde_json::to_string(&w).unwrap();
        let back: Window = serde_json::from_str(&json).unwrap();
        assert_eq!(back, w);
        assert!(
            json.len() < 400,
            "histograms should serialize sparsely: {json}"
        );
    }
}
