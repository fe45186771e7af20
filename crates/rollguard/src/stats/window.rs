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
//! 1/64 relative error inside the metric's `histogram_range`. A bucket keeps its bins
//! sparse while it uses few of them (see [`Bins`]): a scoped policy has a histogram
//! per bucket of every scope, and most scopes see few distinct bins.

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
    /// Bin counts when the metric feeds a quantile gate; no bins otherwise.
    pub(crate) hist: Bins,
}

/// Bits of a sparse entry that hold its count; the bin is above them. Bins are below
/// `OCTAVES_MAX · 32 + 2 = 4098 < 2^13`, so an entry fits a `u32`.
const COUNT_BITS: u32 = 19;
/// The largest count a sparse entry holds; a bin past it makes the bins dense.
const ENTRY_COUNT_MAX: u32 = (1 << COUNT_BITS) - 1;

/// A bucket's histogram: `len` bin counts, kept sparse while few bins are used.
///
/// - **Sparse**: the used bins as sorted entries `bin << 19 | count` (count ≥ 1), fewer
///   than a quarter of `len` of them. Sorted by entry is sorted by bin.
/// - **Dense**: one `u32` count per bin (`cells.len() == len`), as every bucket kept
///   them before; a bucket turns dense when its used bins reach a quarter of `len` or a
///   count passes 2^19 − 1, and sparse again (keeping its allocation) when reset.
///
/// The counts are the same either way, and so is every reading: equality, the
/// snapshot form (`{len, bins: [[bin, count], …]}`) and quantiles depend on the counts
/// only. The allocation never exceeds the dense one: `cells` grows to at most `len`
/// entries (checked by the footprint tests).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bins {
    cells: Vec<u32>,
    len: u32,
    /// Dense for good, also after a reset: an arm's overall window, which takes every
    /// sample of the arm (three such windows per metric at most: their bins cost
    /// little, and a dense bin is found without a search).
    keep_dense: bool,
}

impl Bins {
    fn new(len: u32) -> Self {
        Self {
            cells: Vec::new(),
            len,
            keep_dense: false,
        }
    }

    /// Dense for good (see `keep_dense`), with the same counts.
    fn keep_dense(&mut self) {
        if self.len > 0 {
            if !self.is_dense() {
                self.densify();
            }
            self.keep_dense = true;
        }
    }

    /// Number of bins.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Cells allocated (each 4 bytes): at most `len`.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.cells.capacity()
    }

    /// The same counts, dense (as a busy bucket keeps them).
    #[cfg(test)]
    pub(crate) fn make_dense(&mut self) {
        if !self.is_dense() && self.len > 0 {
            self.densify();
        }
    }

    fn is_dense(&self) -> bool {
        self.len > 0 && self.cells.len() == self.len as usize
    }

    /// Used bins past which a bucket turns dense.
    fn sparse_max(&self) -> usize {
        self.len as usize / 4
    }

    /// Used bins and their counts, in bin order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let dense = self.is_dense();
        self.cells
            .iter()
            .enumerate()
            .filter(move |(_, c)| !dense || **c > 0)
            .map(move |(i, &c)| {
                if dense {
                    (i as u32, c)
                } else {
                    (c >> COUNT_BITS, c & ENTRY_COUNT_MAX)
                }
            })
    }

    /// Adds one to `bin`'s count (saturating); a bin out of range is ignored.
    #[inline]
    fn add(&mut self, bin: usize) {
        if self.is_dense() {
            if let Some(c) = self.cells.get_mut(bin) {
                *c = c.saturating_add(1);
            }
            return;
        }
        if bin >= self.len as usize {
            return;
        }
        let key = (bin as u32) << COUNT_BITS;
        let i = self.cells.partition_point(|&e| e < key);
        let room = self.cells.len() < self.sparse_max();
        match self.cells.get_mut(i) {
            Some(e) if *e >> COUNT_BITS == bin as u32 && *e & ENTRY_COUNT_MAX < ENTRY_COUNT_MAX => {
                *e += 1;
                return;
            }
            // The bin's count is full: dense below.
            Some(e) if *e >> COUNT_BITS == bin as u32 => {}
            _ if room => {
                let cap = self.cells.capacity();
                if self.cells.len() == cap {
                    // Doubling, but never past `len` cells.
                    let want = (2 * cap).max(8).min(self.len as usize);
                    self.cells.reserve_exact(want - cap);
                }
                self.cells.insert(i, key | 1);
                return;
            }
            _ => {}
        }
        self.densify();
        if let Some(c) = self.cells.get_mut(bin) {
            *c = c.saturating_add(1);
        }
    }

    /// Turns sparse bins dense.
    fn densify(&mut self) {
        let mut dense = vec![0; self.len as usize];
        for (bin, c) in self.iter() {
            if let Some(d) = dense.get_mut(bin as usize) {
                *d = c;
            }
        }
        self.cells = dense;
    }

    /// Every count to zero: sparse and empty, keeping the allocation (dense and zero
    /// when kept dense).
    fn clear(&mut self) {
        if self.keep_dense {
            self.cells.fill(0);
        } else {
            self.cells.clear();
        }
    }

    /// Bins from `(bin, count)` pairs, a later pair of a bin replacing an earlier one
    /// (as a snapshot's were read into dense bins); `None` for a bin out of range.
    fn from_pairs(len: u32, pairs: Vec<(u32, u32)>) -> Option<Self> {
        let mut bins = Self::new(len);
        if pairs.iter().any(|(b, _)| *b >= len) {
            return None;
        }
        let mut pairs: Vec<(usize, (u32, u32))> = pairs.into_iter().enumerate().collect();
        // By bin, the last of a bin first; then keep the first of each bin.
        pairs.sort_unstable_by_key(|(i, (b, _))| (*b, core::cmp::Reverse(*i)));
        pairs.dedup_by_key(|(_, (b, _))| *b);
        let used: Vec<(u32, u32)> = pairs
            .into_iter()
            .map(|(_, p)| p)
            .filter(|(_, c)| *c > 0)
            .collect();
        if used.len() < bins.sparse_max() && used.iter().all(|(_, c)| *c <= ENTRY_COUNT_MAX) {
            bins.cells = used.iter().map(|(b, c)| b << COUNT_BITS | c).collect();
        } else {
            bins.cells = vec![0; len as usize];
            for (b, c) in used {
                bins.cells[b as usize] = c;
            }
        }
        Some(bins)
    }
}

impl PartialEq for Bins {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
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
            self.hist.add(h.bin(x));
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
                    self.hist.add(h.bin(x));
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
            hist: Bins::new(hist_len),
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
        self.hist.clear();
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

    /// A window whose buckets keep their bins dense (an arm's overall window).
    pub(crate) fn new_dense(shape: WindowShape) -> Self {
        let mut w = Self::new(shape);
        w.keep_dense();
        w
    }

    /// Makes the buckets keep their bins dense, with the same counts (an arm's overall
    /// window restored from a snapshot).
    pub(crate) fn keep_dense(&mut self) {
        for slot in &mut self.slots {
            slot.hist.keep_dense();
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
    #[inline]
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
    #[inline]
    fn for_each_bucket<T: Millis>(
        &mut self,
        shape: WindowShape,
        at: &[T],
        mut f: impl FnMut(&mut Slot, core::ops::Range<usize>),
    ) {
        let mut i = 0;
        while let Some(t) = at.get(i).map(|t| t.ms()) {
            let next = (t / shape.width_ms + 1).saturating_mul(shape.width_ms);
            // Mostly the rest is in this bucket (a scope's few rows of a column call):
            // that takes one comparison, not a search.
            let end = match at.last() {
                Some(last) if last.ms() < next => at.len(),
                _ => run_end(at, i, next),
            };
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
///
/// The rank's bin is the first whose cumulative count reaches it; cumulative counts
/// are exact integer sums, so the order in which the buckets' counts are added does
/// not matter. Sparse buckets are merged by sorting their entries (a scope's few used
/// bins); with a dense one, the counts go into one array of the bins.
fn quantile(h: HistShape, slots: &[&Slot], n: u64, pct: u64, min: f64, max: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    // rank = ⌈n·pct/100⌉ in integers, at least 1.
    let rank = (n.saturating_mul(pct).div_ceil(100)).max(1);
    let at = |bin: usize| {
        let x = if bin == 0 {
            min
        } else if bin == h.len() as usize - 1 {
            max
        } else {
            h.midpoint(bin)
        };
        Some(x.clamp(min, max))
    };
    let mut seen = 0u64;
    if slots.iter().all(|s| !s.hist.is_dense()) {
        let mut entries: Vec<u32> = slots
            .iter()
            .flat_map(|s| s.hist.cells.iter().copied())
            .collect();
        entries.sort_unstable();
        for e in entries {
            seen += u64::from(e & ENTRY_COUNT_MAX);
            if seen >= rank {
                return at((e >> COUNT_BITS) as usize);
            }
        }
    } else {
        let mut counts = vec![0u64; h.len() as usize];
        for s in slots {
            for (bin, c) in s.hist.iter() {
                if let Some(n) = counts.get_mut(bin as usize) {
                    *n += u64::from(c);
                }
            }
        }
        for (bin, c) in counts.into_iter().enumerate() {
            seen += c;
            if seen >= rank {
                return at(bin);
            }
        }
    }
    // Only reachable when bin counts saturated; the maximum is the honest answer.
    Some(max)
}

/// Histograms are mostly zeros: serialize them as `[[bin, count], …]` plus their length
/// (the used bins in bin order, whether kept sparse or dense).
mod sparse {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Bins;
    use crate::config::limits::OCTAVES_MAX;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sparse {
        len: u32,
        bins: Vec<(u32, u32)>,
    }

    impl Serialize for Bins {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Sparse {
                len: self.len,
                bins: self.iter().collect(),
            }
            .serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for Bins {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let sparse = Sparse::deserialize(d)?;
            let cap = (OCTAVES_MAX * crate::stats::histogram::SUB) as u32 + 2;
            if sparse.len > cap {
                return Err(D::Error::custom("histogram longer than any config allows"));
            }
            Bins::from_pairs(sparse.len, sparse.bins)
                .ok_or_else(|| D::Error::custom("histogram bin out of range"))
        }
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

    /// The nearest-rank bin of the values, from dense counts: how quantiles were read
    /// when every bucket kept dense bins.
    fn dense_quantile(h: HistShape, values: &[f64], pct: u64) -> Option<f64> {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lower(lo, x), upper(hi, x))
            });
        let mut counts = vec![0u64; h.len() as usize];
        for &x in values {
            counts[h.bin(x)] += 1;
        }
        let n = values.len() as u64;
        let rank = (n * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (bin, c) in counts.iter().enumerate() {
            seen += c;
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
        None
    }

    #[test]
    fn sparse_and_dense_bins_read_the_same_quantiles_as_dense_counts() {
        let m = value_metric(6_000, 6);
        let shape = WindowShape::new(&m, 6_000, true);
        let h = shape.hist.unwrap();
        let len = h.len() as usize;
        // From a handful of distinct bins (sparse) to every bin (dense), with buckets of
        // both kinds merged in one read, and values outside the range.
        for spread in [1u64, 7, 60, 319, 320, 321, 2_000, 100_000] {
            let mut w = Window::new(shape);
            let mut values = Vec::new();
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for i in 0..6_000u64 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                // Bucket 3 gets 40x the spread of the others: a mix of sparse and dense.
                let width = if i / 1_000 == 3 { spread * 40 } else { spread };
                let v = 0.0005 * libm::pow(1.0157, ((x >> 33) % width % 2_000) as f64);
                w.add_value(shape, i, v);
                values.push(v);
                for s in &w.slots {
                    assert!(
                        s.hist.capacity() <= len,
                        "{} cells of {len}",
                        s.hist.capacity()
                    );
                    assert!(s.hist.is_dense() || s.hist.cells.len() <= len / 4);
                }
            }
            for pct in [1, 50, 90, 95, 99, 100] {
                let stat = match pct {
                    50 => Stat::P50,
                    90 => Stat::P90,
                    95 => Stat::P95,
                    _ => Stat::P99,
                };
                let want =
                    dense_quantile(h, &values, if pct == 1 || pct == 100 { 99 } else { pct });
                let got = w.read(shape, stat, 6_000).value;
                if pct != 1 && pct != 100 {
                    assert_eq!(
                        got.map(f64::to_bits),
                        want.map(f64::to_bits),
                        "{spread} p{pct}"
                    );
                }
            }
            // The snapshot form restores the same counts, and it is the dense form's.
            let json = serde_json::to_string(&w).unwrap();
            let back: Window = serde_json::from_str(&json).unwrap();
            assert_eq!(back, w);
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }

    #[test]
    fn a_count_past_a_sparse_entry_s_makes_the_bins_dense_and_saturates_as_before() {
        let mut b = Bins::new(34);
        for _ in 0..ENTRY_COUNT_MAX {
            b.add(5);
        }
        assert!(!b.is_dense());
        b.add(5);
        b.add(6);
        assert!(b.is_dense());
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [(5, ENTRY_COUNT_MAX + 1), (6, 1)]
        );
        b.cells[5] = u32::MAX;
        b.add(5);
        assert_eq!(b.iter().next(), Some((5, u32::MAX)));
        b.add(40); // out of range: ignored, as a dense vector's `get_mut` ignored it
        let mut s = Bins::new(34);
        s.add(40);
        assert_eq!(s.iter().count(), 0);
        // Reset: sparse again, the allocation kept.
        b.clear();
        assert!(!b.is_dense());
        assert_eq!((b.iter().count(), b.capacity()), (0, 34));
    }

    #[test]
    fn sparse_and_dense_bins_with_the_same_counts_are_equal_and_serialize_alike() {
        let mut sparse = Bins::new(34);
        let mut dense = Bins::new(34);
        dense.densify();
        for bin in [3, 3, 9, 33, 0] {
            sparse.add(bin);
            dense.add(bin);
        }
        assert!(!sparse.is_dense() && dense.is_dense());
        assert_eq!(sparse, dense);
        let (a, b) = (
            serde_json::to_string(&sparse).unwrap(),
            serde_json::to_string(&dense).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a, r#"{"len":34,"bins":[[0,1],[3,2],[9,1],[33,1]]}"#);
        dense.add(9);
        assert_ne!(sparse, dense);
        // As dense bins were read: a later pair of a bin replaces an earlier one, zero
        // counts are no entries, and a bin out of range is refused.
        let read = |t: &str| serde_json::from_str::<Bins>(t);
        let b = read(r#"{"len":34,"bins":[[9,4],[3,2],[9,1],[7,0]]}"#).unwrap();
        assert_eq!(b.iter().collect::<Vec<_>>(), [(3, 2), (9, 1)]);
        assert!(!b.is_dense());
        assert!(read(r#"{"len":34,"bins":[[34,1]]}"#).is_err());
        let big = read(r#"{"len":34,"bins":[[1,600000]]}"#).unwrap();
        assert!(big.is_dense());
        let many: Vec<String> = (0..20).map(|i| format!("[{i},1]")).collect();
        let many = read(&format!(r#"{{"len":34,"bins":[{}]}}"#, many.join(","))).unwrap();
        assert!(many.is_dense());
        assert_eq!(many.iter().count(), 20);
    }

    #[test]
    fn an_overall_window_keeps_dense_bins_and_reads_alike() {
        let m = value_metric(4_000, 4);
        let shape = WindowShape::new(&m, 4_000, true);
        let (mut dense, mut sparse) = (Window::new_dense(shape), Window::new(shape));
        for i in 0..20_000u64 {
            let x = 1.0 + (i * 7919 % 1000) as f64;
            dense.add_value(shape, i / 2, x);
            sparse.add_value(shape, i / 2, x);
        }
        assert!(dense.slots.iter().all(|s| s.hist.is_dense()));
        assert_eq!(dense, sparse);
        for stat in [Stat::P50, Stat::P99] {
            let (a, b) = (
                dense.read(shape, stat, 10_000),
                sparse.read(shape, stat, 10_000),
            );
            assert_eq!(a.value.map(f64::to_bits), b.value.map(f64::to_bits));
        }
        assert_eq!(
            serde_json::to_string(&dense).unwrap(),
            serde_json::to_string(&sparse).unwrap()
        );
    }
}
