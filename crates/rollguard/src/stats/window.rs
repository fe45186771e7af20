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

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::config::{MetricConfig, MetricKind, Stat};
use crate::input::Count;
use crate::stats::histogram::HistShape;
use crate::stats::{lower, upper};
use crate::time::{Millis, Timestamp, run_end};

/// One time bucket of a value metric's window (its histogram, if any, is kept beside
/// it: see [`Window`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ValueSlot {
    /// `at / width` of the samples in it. A never-used slot says 0 and is empty, which
    /// reads the same as an empty slot of epoch 0 (and keeps snapshots JSON-safe: every
    /// integer stays below 2^53).
    epoch: u64,
    count: u64,
    sum: f64,
    /// Smallest and largest value; meaningful only when `count > 0` (kept finite so
    /// that snapshots stay plain JSON).
    min: f64,
    max: f64,
}

/// One time bucket of a count metric's window (`epoch` as in [`ValueSlot`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CountSlot {
    epoch: u64,
    count: u64,
    events: u64,
    total: u64,
}

/// A bucket as a snapshot writes it, whatever its metric's kind: every field, those of
/// the other kind zero, and `hist` of length 0 when the metric keeps no histogram.
/// [`Policy::validate`](crate::Policy::validate) checks buckets in this form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Slot<'a> {
    pub(crate) epoch: u64,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) events: u64,
    pub(crate) total: u64,
    pub(crate) hist: Cow<'a, Bins>,
}

/// The bins of a bucket without a histogram.
static NO_BINS: Bins = Bins {
    cells: SmallVec::new_const(),
    len: 0,
    keep_dense: false,
    dense: false,
    halvings: 0,
};

/// Bits of a sparse entry that hold its count; the bin is above them. Bins are below
/// `OCTAVES_MAX · 32 + 2 = 4098 < 2^13`, so an entry fits a `u32`.
const COUNT_BITS: u32 = 19;
/// The largest count a sparse entry holds; a cell counts past it in further entries.
const ENTRY_COUNT_MAX: u32 = (1 << COUNT_BITS) - 1;
/// Most halvings of a bucket's resolution: after 12, one cell holds every interior bin
/// (there are at most 4 096).
const HALVINGS_MAX: u8 = 12;

/// Cells a bucket keeps in place, without an allocation (as many as fit in the `Vec`
/// header they share the space of).
const INLINE_CELLS: usize = 4;

/// Values of a run at least this many go into a sparse bucket tallied (see
/// [`Bins::add_run`]); fewer go in one by one.
const RUN_MIN: usize = 8;

/// Scratch for adding a run of values to a sparse bucket ([`Bins::add_run`]), kept by
/// the column cache so that a call does not allocate. Not cloned: a clone starts
/// without it.
///
/// Bounded by the config: one count per bin (at most
/// [`HISTOGRAM_BINS_MAX`](crate::config::limits::HISTOGRAM_BINS_MAX)), and at most
/// `histogram_bins_max` cells and entries each.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Per cell, the count of the bucket being filled; zero between runs.
    counts: Vec<u32>,
    /// The cells the run added to the bucket, in the order of their first value.
    new: Vec<u32>,
    /// The bucket's entries rebuilt from `counts`.
    out: Vec<u32>,
}

impl Clone for Tally {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Tally {
    /// Bytes allocated, by capacity.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> u64 {
        4 * (self.counts.capacity() + self.new.capacity() + self.out.capacity()) as u64 + 3 * 24
    }
}

/// A bucket's histogram: `len` bin counts, dense for an arm's overall window, sparse
/// and bounded for a scope's.
///
/// - **Dense**: one `u32` count per bin (`cells.len() == len`): an arm's overall
///   window, which takes every sample of the arm (three such windows per metric at
///   most: their bins cost little, and a bin is found without a search).
/// - **Sparse**: the used cells as sorted entries `cell << 19 | count` (count ≥ 1),
///   at most `cells_max` of them (`scopes.histogram_bins_max`, and never more than
///   `len`). A cell is a bin while the bucket has room; when a value needs a new entry
///   and there is none, the bucket halves its resolution: each pair of neighbouring
///   interior bins becomes one cell (`halvings` counts how often; the under- and
///   overflow bins stay cells of their own), as UDDSketch collapses its buckets. A
///   cell is named by its first bin, so sorted by entry is sorted by cell. A cell
///   whose count passes 2^19 − 1 counts on in a further entry (the partial entry
///   first, then the full ones), so counts stay exact.
///
/// Equality, the snapshot form (`{len, bins: [[bin, count], …], halvings}`) and
/// quantiles depend on the counts per cell and the resolution only. The allocation
/// never exceeds `len` cells (checked by the footprint tests).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bins {
    /// The first [`INLINE_CELLS`] inline: most of a scope's buckets use a few cells,
    /// and a tick over thousands of scopes then reads them with the bucket rather
    /// than at an allocation of their own.
    cells: SmallVec<[u32; INLINE_CELLS]>,
    len: u32,
    /// Dense for good, also after a reset (an arm's overall window).
    keep_dense: bool,
    /// `cells` holds one count per bin: kept dense, or read from a snapshot with more
    /// entries than the sparse form holds.
    dense: bool,
    /// Times the resolution was halved (sparse bins only; 0 after a reset).
    halvings: u8,
}

impl Bins {
    fn new(len: u32) -> Self {
        Self {
            cells: SmallVec::new(),
            len,
            keep_dense: false,
            dense: false,
            halvings: 0,
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

    /// Times a sparse bucket's resolution was halved.
    pub(crate) fn halvings(&self) -> u8 {
        self.halvings
    }

    /// Entries a sparse bucket holds (a cell counted past 2^19 − 1 holds several).
    pub(crate) fn entries(&self) -> usize {
        if self.is_dense() { 0 } else { self.cells.len() }
    }

    /// Cells allocated (each 4 bytes): at most `len`; none while they fit in place.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        if self.cells.spilled() {
            self.cells.capacity()
        } else {
            0
        }
    }

    /// The same counts, dense (as an overall window keeps them).
    #[cfg(test)]
    pub(crate) fn make_dense(&mut self) {
        if !self.is_dense() && self.len > 0 {
            self.densify();
        }
    }

    /// Whether `cells` holds one count per bin rather than entries.
    pub(crate) fn is_dense(&self) -> bool {
        self.dense
    }

    /// The cell of `bin` at `halvings` halvings: the first bin of its run of 2^h
    /// interior bins (the under- and overflow bins are cells of their own).
    #[inline]
    fn cell_of(len: u32, halvings: u8, bin: u32) -> u32 {
        if bin == 0 || bin + 1 >= len {
            bin
        } else {
            (((bin - 1) >> halvings) << halvings) + 1
        }
    }

    /// Used cells and their counts, in cell order (each cell once, a bin when dense).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let (dense, sparse) = if self.is_dense() {
            (&self.cells[..], &[][..])
        } else {
            (&[][..], &self.cells[..])
        };
        let dense = dense
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| (i as u32, c));
        // A cell's entries sum to at most `len` · (2^19 − 1) < 2^32.
        let sparse = sparse
            .chunk_by(|a, b| a >> COUNT_BITS == b >> COUNT_BITS)
            .map(|run| {
                (
                    run[0] >> COUNT_BITS,
                    run.iter().map(|e| e & ENTRY_COUNT_MAX).sum(),
                )
            });
        dense.chain(sparse)
    }

    /// Adds one to `bin`'s count (saturating); a bin out of range is ignored. A sparse
    /// bucket keeps at most `cells_max` entries (and at most `len`), halving its
    /// resolution when a value needs one more.
    #[inline]
    fn add(&mut self, bin: usize, cells_max: u32) {
        if self.is_dense() {
            if let Some(c) = self.cells.get_mut(bin) {
                *c = c.saturating_add(1);
            }
            return;
        }
        if bin >= self.len as usize {
            return;
        }
        // The common case inline: the value's cell has an entry with room.
        if !self.bump(bin) {
            self.add_entry(bin, cells_max);
        }
    }

    /// Adds one to the partial entry of `bin`'s cell (a sparse bucket's), if the cell
    /// has one with room: `false` when the value needs a new entry.
    #[inline]
    fn bump(&mut self, bin: usize) -> bool {
        let key = Self::cell_of(self.len, self.halvings, bin as u32) << COUNT_BITS;
        // The partial entry of a cell comes before its full ones.
        let cells = &mut self.cells[..];
        let i = cells.partition_point(|&e| e < key);
        match cells.get_mut(i) {
            Some(e)
                if *e >> COUNT_BITS == key >> COUNT_BITS
                    && *e & ENTRY_COUNT_MAX < ENTRY_COUNT_MAX =>
            {
                *e += 1;
                true
            }
            _ => false,
        }
    }

    /// [`Bins::add`] when the value needs a new entry: inserted, after halving the
    /// resolution while there is no room.
    #[cold]
    #[inline(never)]
    fn add_entry(&mut self, bin: usize, cells_max: u32) {
        let max = cells_max.min(self.len) as usize;
        loop {
            if self.bump(bin) {
                return;
            }
            if self.cells.len() < max {
                let key = Self::cell_of(self.len, self.halvings, bin as u32) << COUNT_BITS;
                let i = self.cells.partition_point(|&e| e < key);
                let n = self.cells.len() + 1;
                Self::make_room(&mut self.cells, n, max);
                self.cells.insert(i, key | 1);
                return;
            }
            if self.halvings >= HALVINGS_MAX {
                // Every entry of at most three cells full: the count saturates.
                return;
            }
            self.halve();
        }
    }

    /// Adds one to the bin of each of `xs`, in order, leaving the bucket exactly as
    /// [`Bins::add`] value by value would (`h` is the bucket's shape).
    ///
    /// A sparse bucket takes a run of at least [`RUN_MIN`] values tallied: its counts
    /// spread into `tally` one per cell, each value counted there with the steps of
    /// [`Bins::add_entry`] (a value needing a new entry takes one while there is room,
    /// else the bucket halves first, or past [`HALVINGS_MAX`] the value is dropped),
    /// and the entries rebuilt at the end. No search per value, and no entries moved
    /// for each new cell.
    pub(crate) fn add_run(&mut self, h: HistShape, xs: &[f64], cells_max: u32, tally: &mut Tally) {
        if self.is_dense() {
            // As `add` does, with the bins borrowed once for the run.
            let cells = &mut self.cells[..];
            for &x in xs {
                if let Some(c) = cells.get_mut(h.bin(x)) {
                    *c = c.saturating_add(1);
                }
            }
            return;
        }
        if xs.len() < RUN_MIN || h.len() != self.len {
            for &x in xs {
                self.add(h.bin(x), cells_max);
            }
            return;
        }
        let max = cells_max.min(self.len) as usize;
        let len = self.len as usize;
        if tally.counts.len() < len {
            tally.counts.reserve_exact(len - tally.counts.len());
            tally.counts.resize(len, 0);
        }
        self.spread(tally);
        let mut entries = self.cells.len();
        for &x in xs {
            let bin = h.bin(x) as u32;
            // At full resolution a cell is its bin (mostly: a bucket halves rarely).
            let mut cell = match self.halvings {
                0 => bin,
                k => Self::cell_of(self.len, k, bin),
            };
            let mut c = tally.counts.get(cell as usize).copied().unwrap_or(0);
            if c == 0 || c >= ENTRY_COUNT_MAX {
                match self.tally_entry(tally, bin, cell, c, &mut entries, max) {
                    Some(taken) => (cell, c) = taken,
                    None => continue,
                }
            }
            if let Some(n) = tally.counts.get_mut(cell as usize) {
                *n = c + 1;
            }
        }
        if entries == self.cells.len() {
            // No new entry: each cell's entries rewritten where they are.
            let cells = &mut self.cells[..];
            let mut i = 0;
            while let Some(&e) = cells.get(i) {
                let cell = e >> COUNT_BITS;
                let total = tally
                    .counts
                    .get_mut(cell as usize)
                    .map_or(0, core::mem::take);
                if total <= ENTRY_COUNT_MAX {
                    // One entry (the common case, without put's divisions).
                    if let Some(e) = cells.get_mut(i)
                        && total > 0
                    {
                        *e = cell << COUNT_BITS | total;
                    }
                    i += 1;
                } else {
                    i = Self::put(cells, i, cell, u64::from(total)).max(i + 1);
                }
            }
        } else {
            self.gather(tally, max);
        }
    }

    /// [`Bins::add_run`] for a value of `bin` whose cell (`cell`, counted `c` so far)
    /// is new to the bucket or has its entries full at `c` (out of line: a run's
    /// values mostly find their cell): a new cell, or one whose entries are full, takes
    /// another entry while `entries` < `max`, else the bucket halves first, or past
    /// [`HALVINGS_MAX`] the value is dropped (`None`). The value's cell and its count
    /// so far, after any halvings.
    #[cold]
    #[inline(never)]
    fn tally_entry(
        &mut self,
        tally: &mut Tally,
        bin: u32,
        mut cell: u32,
        mut c: u32,
        entries: &mut usize,
        max: usize,
    ) -> Option<(u32, u32)> {
        while c == 0 || (c >= ENTRY_COUNT_MAX && c.is_multiple_of(ENTRY_COUNT_MAX)) {
            if *entries < max {
                *entries += 1;
                if c == 0 {
                    tally.new.push(cell);
                }
                break;
            }
            if self.halvings >= HALVINGS_MAX {
                return None;
            }
            self.gather(tally, max);
            self.halve();
            self.spread(tally);
            *entries = self.cells.len();
            cell = Self::cell_of(self.len, self.halvings, bin);
            c = tally.counts.get(cell as usize).copied().unwrap_or(0);
        }
        Some((cell, c))
    }

    /// Adds the bucket's counts into `tally.counts` (zero before), one per cell.
    fn spread(&self, tally: &mut Tally) {
        tally.new.clear();
        for &e in &self.cells {
            if let Some(n) = tally.counts.get_mut((e >> COUNT_BITS) as usize) {
                *n += e & ENTRY_COUNT_MAX;
            }
        }
    }

    /// Rebuilds the bucket's entries (at most `max`) from `tally.counts`: its cells
    /// and the new ones, in cell order, each as the partial entry first and then the
    /// full ones. `tally.counts` is zero again after it.
    fn gather(&mut self, tally: &mut Tally, max: usize) {
        let Tally { counts, new, out } = tally;
        new.sort_unstable();
        out.clear();
        let (mut i, mut j, mut last) = (0, 0, None);
        let cells = &self.cells[..];
        loop {
            let cell = match (cells.get(i), new.get(j)) {
                (Some(&e), Some(&n)) if n < e >> COUNT_BITS => {
                    j += 1;
                    n
                }
                (Some(&e), _) => {
                    i += 1;
                    e >> COUNT_BITS
                }
                (None, Some(&n)) => {
                    j += 1;
                    n
                }
                (None, None) => break,
            };
            if last == Some(cell) {
                continue;
            }
            last = Some(cell);
            let total = counts.get_mut(cell as usize).map_or(0, core::mem::take);
            if total <= ENTRY_COUNT_MAX {
                if total > 0 {
                    out.push(cell << COUNT_BITS | total);
                }
                continue;
            }
            let (full, rest) = (total / ENTRY_COUNT_MAX, total % ENTRY_COUNT_MAX);
            if rest > 0 {
                out.push(cell << COUNT_BITS | rest);
            }
            out.extend((0..full).map(|_| cell << COUNT_BITS | ENTRY_COUNT_MAX));
        }
        self.cells.clear();
        Self::make_room(&mut self.cells, out.len(), max);
        self.cells.extend_from_slice(out);
    }

    /// Capacity for `n` entries, growing by doubling from 8 but never past `max`
    /// (`n` ≤ `max`), so a bucket never allocates more than its cells.
    fn make_room(cells: &mut SmallVec<[u32; INLINE_CELLS]>, n: usize, max: usize) {
        let mut want = cells.capacity();
        while want < n.min(max) {
            want = (2 * want).max(8).min(max);
        }
        cells.reserve_exact(want.max(n) - cells.len());
    }

    /// Halves a sparse bucket's resolution: neighbouring cells merge, their counts
    /// added (in place: merged cells never need more entries than they had).
    fn halve(&mut self) {
        let h = self.halvings + 1;
        let len = self.len;
        let cells = &mut self.cells[..];
        let n = cells.len();
        let cell = |e: u32| Self::cell_of(len, h, e >> COUNT_BITS);
        let (mut r, mut w) = (0, 0);
        while r < n {
            let c = cell(cells[r]);
            let mut total = 0u64;
            while r < n && cell(cells[r]) == c {
                total += u64::from(cells[r] & ENTRY_COUNT_MAX);
                r += 1;
            }
            w = Self::put(cells, w, c, total);
        }
        self.cells.truncate(w);
        self.halvings = h;
    }

    /// Writes a cell's `total` as entries from `w` on (the partial one first, then the
    /// full ones), returning the index after them.
    fn put(cells: &mut [u32], mut w: usize, cell: u32, total: u64) -> usize {
        let max = u64::from(ENTRY_COUNT_MAX);
        let (full, rest) = (total / max, total % max);
        if rest > 0 {
            cells[w] = cell << COUNT_BITS | rest as u32;
            w += 1;
        }
        for _ in 0..full {
            cells[w] = cell << COUNT_BITS | ENTRY_COUNT_MAX;
            w += 1;
        }
        w
    }

    /// Turns sparse bins dense (cells named by their first bin; only at halvings 0).
    fn densify(&mut self) {
        let mut dense = vec![0; self.len as usize];
        for (bin, c) in self.iter() {
            if let Some(d) = dense.get_mut(bin as usize) {
                *d = c;
            }
        }
        self.cells = SmallVec::from_vec(dense);
        self.dense = true;
    }

    /// Every count to zero: sparse and empty at full resolution, keeping the
    /// allocation (dense and zero when kept dense).
    fn clear(&mut self) {
        if self.keep_dense {
            self.cells.fill(0);
        } else {
            self.cells.clear();
            self.dense = false;
            self.halvings = 0;
        }
    }

    /// Bins from `(bin, count)` pairs at `halvings` halvings, a later pair of a bin
    /// replacing an earlier one (as a snapshot's were read into dense bins); `None` for
    /// a bin out of range or not the first of its cell. Sparse when its entries fit in
    /// `len`, else dense (only at full resolution).
    fn from_pairs(len: u32, pairs: Vec<(u32, u32)>, halvings: u8) -> Option<Self> {
        let mut bins = Self::new(len);
        bins.halvings = halvings;
        if halvings > HALVINGS_MAX
            || pairs
                .iter()
                .any(|(b, _)| *b >= len || Self::cell_of(len, halvings, *b) != *b)
        {
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
        let entries: u64 = used
            .iter()
            .map(|(_, c)| u64::from(*c).div_ceil(u64::from(ENTRY_COUNT_MAX)))
            .sum();
        if entries <= u64::from(len) {
            bins.cells = SmallVec::from_elem(0, entries as usize);
            let mut w = 0;
            for (b, c) in used {
                w = Self::put(&mut bins.cells, w, b, u64::from(c));
            }
        } else if halvings == 0 {
            bins.cells = SmallVec::from_elem(0, len as usize);
            bins.dense = true;
            for (b, c) in used {
                bins.cells[b as usize] = c;
            }
        } else {
            return None;
        }
        Some(bins)
    }
}

impl PartialEq for Bins {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.halvings == other.halvings && self.iter().eq(other.iter())
    }
}

impl ValueSlot {
    fn at(epoch: u64) -> Self {
        Self {
            epoch,
            ..Self::default()
        }
    }

    /// Records one value.
    #[inline]
    fn push(&mut self, x: f64) {
        if self.count == 0 {
            (self.min, self.max) = (x, x);
        } else {
            (self.min, self.max) = (lower(self.min, x), upper(self.max, x));
        }
        self.count = self.count.saturating_add(1);
        self.sum += x;
    }

    /// [`ValueSlot::push`] for a run: the same updates in the same order (so the same
    /// bits), with the slot's fields kept in registers. Out of line: inlined into the
    /// bucket loop it took 6 more instructions a value (callgrind, `ingest_calls`).
    #[inline(never)]
    fn push_run(&mut self, xs: &[f64]) {
        let Some(&first) = xs.first() else { return };
        let (mut lo, mut hi) = if self.count == 0 {
            (first, first)
        } else {
            (self.min, self.max)
        };
        let mut sum = self.sum;
        for &x in xs {
            (lo, hi) = (lower(lo, x), upper(hi, x));
            sum += x;
        }
        (self.min, self.max, self.sum) = (lo, hi, sum);
        self.count = self.count.saturating_add(xs.len() as u64);
    }
}

impl CountSlot {
    fn at(epoch: u64) -> Self {
        Self {
            epoch,
            ..Self::default()
        }
    }

    #[inline]
    fn push(&mut self, events: u64, total: u64) {
        self.count = self.count.saturating_add(1);
        // Saturate below 2^53 so snapshots stay exact in every binding's JSON.
        self.events = self
            .events
            .saturating_add(events)
            .min(crate::time::TIME_MAX);
        self.total = self.total.saturating_add(total).min(crate::time::TIME_MAX);
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
    /// Most histogram cells a bucket of a scope's window keeps
    /// (`scopes.histogram_bins_max`; overall windows keep every bin).
    pub(crate) cells_max: u32,
}

impl WindowShape {
    pub(crate) fn new(
        m: &MetricConfig,
        window_ms: u64,
        wants_quantiles: bool,
        cells_max: u32,
    ) -> Self {
        Self {
            cells_max,
            width_ms: window_ms / u64::from(m.buckets),
            buckets: m.buckets,
            kind: m.kind,
            hist: (wants_quantiles && m.kind == MetricKind::Value)
                .then(|| HistShape::new(m.histogram_range)),
        }
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

/// A rolling window of one metric for one arm: a ring of buckets of its metric's kind.
///
/// A value metric's buckets keep their histograms in a list of their own, one per
/// slot, or none when no gate reads a quantile of the metric: a read of a mean, a rate
/// or a count (most of a scoped tick's) touches only the few words it needs.
///
/// A snapshot writes every bucket in one form ([`Slot`]); a window read from one takes
/// the kind its buckets show (counts if any has events, values otherwise), and restore
/// fits it to its metric's kind when that loses nothing ([`Window::fit`]). Equality is
/// the snapshot form's: an empty window of either kind equals the other.
#[derive(Debug, Clone)]
pub(crate) enum Window {
    Values {
        slots: Vec<ValueSlot>,
        /// Empty, or one per slot.
        hists: Vec<Bins>,
    },
    Counts {
        slots: Vec<CountSlot>,
    },
}

impl Window {
    pub(crate) fn new(shape: WindowShape) -> Self {
        let n = shape.buckets as usize;
        match shape.kind {
            MetricKind::Value => Self::Values {
                slots: vec![ValueSlot::default(); n],
                hists: match shape.hist {
                    Some(h) => vec![Bins::new(h.len()); n],
                    None => Vec::new(),
                },
            },
            MetricKind::Count => Self::Counts {
                slots: vec![CountSlot::default(); n],
            },
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
        self.hists_mut().iter_mut().for_each(Bins::keep_dense);
    }

    /// A window read from a snapshot as its metric's `kind`, if its buckets hold
    /// nothing of the other kind; otherwise as it is, for
    /// [`Policy::validate`](crate::Policy::validate) to refuse.
    pub(crate) fn fit(&mut self, kind: MetricKind) {
        if let (Self::Values { slots, hists }, MetricKind::Count) = (&*self, kind)
            && hists.is_empty()
            && slots
                .iter()
                .all(|s| (s.sum, s.min, s.max) == (0.0, 0.0, 0.0))
        {
            let slots = slots
                .iter()
                .map(|s| CountSlot {
                    epoch: s.epoch,
                    count: s.count,
                    ..CountSlot::default()
                })
                .collect();
            *self = Self::Counts { slots };
        }
    }

    /// Bytes the buckets have allocated, by capacity (not the `Window` itself).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> u64 {
        let slots = match self {
            Self::Values { slots, .. } => slots.capacity() * size_of::<ValueSlot>(),
            Self::Counts { slots } => slots.capacity() * size_of::<CountSlot>(),
        };
        let hists = match self {
            Self::Values { hists, .. } => hists.capacity() * size_of::<Bins>(),
            Self::Counts { .. } => 0,
        };
        let cells: usize = self.hists().iter().map(|b| 4 * b.capacity()).sum();
        (slots + hists + cells) as u64
    }

    /// The same counts, dense (as an overall window keeps them).
    #[cfg(test)]
    pub(crate) fn make_dense(&mut self) {
        self.hists_mut().iter_mut().for_each(Bins::make_dense);
    }

    /// The kind of metric the buckets hold.
    pub(crate) fn kind(&self) -> MetricKind {
        match self {
            Self::Values { .. } => MetricKind::Value,
            Self::Counts { .. } => MetricKind::Count,
        }
    }

    /// Number of buckets.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Values { slots, .. } => slots.len(),
            Self::Counts { slots } => slots.len(),
        }
    }

    /// The histograms of the buckets: one per bucket, or none.
    pub(crate) fn hists(&self) -> &[Bins] {
        match self {
            Self::Values { hists, .. } => hists,
            Self::Counts { .. } => &[],
        }
    }

    fn hists_mut(&mut self) -> &mut [Bins] {
        match self {
            Self::Values { hists, .. } => hists,
            Self::Counts { .. } => &mut [],
        }
    }

    fn epoch(&self, i: usize) -> Option<u64> {
        match self {
            Self::Values { slots, .. } => slots.get(i).map(|s| s.epoch),
            Self::Counts { slots } => slots.get(i).map(|s| s.epoch),
        }
    }

    /// Bucket `i` in the snapshot's form.
    pub(crate) fn slot(&self, i: usize) -> Option<Slot<'_>> {
        let hist = Cow::Borrowed(self.hists().get(i).unwrap_or(&NO_BINS));
        Some(match self {
            Self::Values { slots, .. } => {
                let s = slots.get(i)?;
                Slot {
                    epoch: s.epoch,
                    count: s.count,
                    sum: s.sum,
                    min: s.min,
                    max: s.max,
                    events: 0,
                    total: 0,
                    hist,
                }
            }
            Self::Counts { slots } => {
                let s = slots.get(i)?;
                Slot {
                    epoch: s.epoch,
                    count: s.count,
                    sum: 0.0,
                    min: 0.0,
                    max: 0.0,
                    events: s.events,
                    total: s.total,
                    hist,
                }
            }
        })
    }

    /// The buckets in the snapshot's form, in ring order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = Slot<'_>> {
        (0..self.len()).filter_map(|i| self.slot(i))
    }

    /// The window of buckets read from a snapshot, as the kind they show (see
    /// [`Window`]); `None` when some hold values and others counts.
    fn from_slots(slots: Vec<Slot<'_>>) -> Option<Self> {
        let values = slots
            .iter()
            .any(|s| (s.sum, s.min, s.max) != (0.0, 0.0, 0.0) || s.hist.len() > 0);
        let counts = slots.iter().any(|s| s.events > 0 || s.total > 0);
        if counts {
            return (!values).then(|| Self::Counts {
                slots: slots
                    .iter()
                    .map(|s| CountSlot {
                        epoch: s.epoch,
                        count: s.count,
                        events: s.events,
                        total: s.total,
                    })
                    .collect(),
            });
        }
        let binned = slots.iter().any(|s| s.hist.len() > 0);
        let (slots, hists) = slots
            .into_iter()
            .map(|s| {
                let v = ValueSlot {
                    epoch: s.epoch,
                    count: s.count,
                    sum: s.sum,
                    min: s.min,
                    max: s.max,
                };
                (v, s.hist.into_owned())
            })
            .unzip::<_, _, Vec<_>, Vec<_>>();
        Some(Self::Values {
            slots,
            hists: if binned { hists } else { Vec::new() },
        })
    }

    /// The slot of `at`'s bucket in a ring of `len`, and its epoch.
    #[inline]
    fn ring(len: usize, shape: WindowShape, at: Timestamp) -> (usize, u64) {
        let epoch = at / shape.width_ms;
        ((epoch % (len as u64).max(1)) as usize, epoch)
    }

    /// Samples in the bucket of `at` (none if its slot holds another epoch, which a
    /// sample at `at` would reset).
    pub(crate) fn count_at(&self, shape: WindowShape, at: Timestamp) -> u64 {
        let (i, epoch) = Self::ring(self.len(), shape, at);
        self.slot(i)
            .filter(|s| s.epoch == epoch)
            .map_or(0, |s| s.count)
    }

    /// The most samples a bucket holds.
    pub(crate) fn count_max(&self) -> u64 {
        self.slots().map(|s| s.count).max().unwrap_or(0)
    }

    /// Records one value.
    #[inline]
    pub(crate) fn add_value(&mut self, shape: WindowShape, at: Timestamp, x: f64) {
        let Self::Values { slots, hists } = self else {
            return;
        };
        let (i, epoch) = Self::ring(slots.len(), shape, at);
        if let Some((slot, bins)) = Self::value_slot(slots, hists, i, epoch) {
            slot.push(x);
            if let (Some(h), Some(bins)) = (shape.hist, bins) {
                bins.add(h.bin(x), shape.cells_max);
            }
        }
    }

    /// Records `events` out of `total`.
    #[inline]
    pub(crate) fn add_count(&mut self, shape: WindowShape, at: Timestamp, events: u64, total: u64) {
        let (i, epoch) = Self::ring(self.len(), shape, at);
        if let Some(slot) = self.count_slot(i, epoch) {
            slot.push(events, total);
        }
    }

    /// Records a run of values with non-decreasing times: one slot look-up per bucket
    /// instead of per value, the same state as [`Window::add_value`] value by value
    /// (`tally`: scratch for a scope's histogram, see [`Bins::add_run`]).
    #[inline]
    pub(crate) fn add_values<T: Millis>(
        &mut self,
        shape: WindowShape,
        at: &[T],
        values: &[f64],
        tally: &mut Tally,
    ) {
        let Self::Values { slots, hists } = self else {
            return;
        };
        for_each_bucket(shape, slots.len(), at, |i, epoch, rows| {
            if let Some((slot, bins)) = Self::value_slot(slots, hists, i, epoch) {
                let xs = &values[rows];
                slot.push_run(xs);
                if let (Some(h), Some(bins)) = (shape.hist, bins) {
                    bins.add_run(h, xs, shape.cells_max, tally);
                }
            }
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
        for_each_bucket(shape, self.len(), at, |i, epoch, rows| {
            if let Some(slot) = self.count_slot(i, epoch) {
                for (&e, &n) in events[rows.clone()].iter().zip(&totals[rows]) {
                    slot.push(e.get(), n.get());
                }
            }
        });
    }

    /// Value slot `i` and its bins, reset first if it holds another epoch than `epoch`.
    #[inline]
    fn value_slot<'a>(
        slots: &'a mut [ValueSlot],
        hists: &'a mut [Bins],
        i: usize,
        epoch: u64,
    ) -> Option<(&'a mut ValueSlot, Option<&'a mut Bins>)> {
        let slot = slots.get_mut(i)?;
        let mut bins = hists.get_mut(i);
        if slot.epoch != epoch {
            *slot = ValueSlot::at(epoch);
            if let Some(b) = bins.as_deref_mut() {
                b.clear();
            }
        }
        Some((slot, bins))
    }

    /// Count slot `i`, reset first if it holds another epoch than `epoch`.
    #[inline]
    fn count_slot(&mut self, i: usize, epoch: u64) -> Option<&mut CountSlot> {
        let Self::Counts { slots } = self else {
            return None;
        };
        let slot = slots.get_mut(i)?;
        if slot.epoch != epoch {
            *slot = CountSlot::at(epoch);
        }
        Some(slot)
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
            .filter(|e| (0..self.len()).any(|i| self.epoch(i) == Some(*e)))
            .map(|e| (e * shape.width_ms, self.read_epochs(shape, stat, e, e)))
            .collect()
    }

    fn read_epochs(&self, shape: WindowShape, stat: Stat, lo: u64, hi: u64) -> Reading {
        let mut m = Moments {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            events: 0,
            total: 0,
        };
        let value = match self {
            Self::Values { slots, hists } => {
                let live = || live(slots, |s| s.epoch, lo, hi);
                for i in live() {
                    let s = &slots[i];
                    if s.count > 0 {
                        (m.min, m.max) = (lower(m.min, s.min), upper(m.max, s.max));
                    }
                    m.count += s.count;
                    m.sum += s.sum;
                }
                let (count, min, max) = (m.count, m.min, m.max);
                m.value(shape, stat, |pct| {
                    let bins = live().filter_map(|i| hists.get(i));
                    let h = shape.hist?;
                    quantile(h, bins, count, pct, min, max, SORTED_ENTRIES_MAX)
                })
            }
            Self::Counts { slots } => {
                for i in live(slots, |s| s.epoch, lo, hi) {
                    let s = &slots[i];
                    if s.count > 0 {
                        // A count metric's buckets read as values of 0.
                        (m.min, m.max) = (lower(m.min, 0.0), upper(m.max, 0.0));
                    }
                    m.count += s.count;
                    m.events = m.events.saturating_add(s.events);
                    m.total = m.total.saturating_add(s.total);
                }
                m.value(shape, stat, |_| None)
            }
        };
        let evidence = m.evidence(shape.kind);
        Reading { value, evidence }
    }
}

/// Splits non-decreasing times into runs of one bucket each: `f(ring slot, epoch,
/// rows)` for each.
#[inline]
fn for_each_bucket<T: Millis>(
    shape: WindowShape,
    len: usize,
    at: &[T],
    mut f: impl FnMut(usize, u64, core::ops::Range<usize>),
) {
    let n = (len as u64).max(1);
    let mut i = 0;
    while let Some(t) = at.get(i).map(|t| t.ms()) {
        let epoch = t / shape.width_ms;
        let next = (epoch + 1).saturating_mul(shape.width_ms);
        // Mostly the rest is in this bucket (a scope's few rows of a column call):
        // that takes one comparison, not a search.
        let end = match at.last() {
            Some(last) if last.ms() < next => at.len(),
            _ => run_end(at, i, next),
        };
        f((epoch % n) as usize, epoch, i..end);
        i = end;
    }
}

/// The ring slots of epochs `lo..=hi` that hold them, in epoch order.
///
/// In epoch order, not ring order, so that sums do not depend on where the ring
/// happens to start. A bucket lives in the ring slot of its epoch (restore checks
/// it), so the live ones in epoch order are found without collecting and sorting: a
/// scoped policy reads thousands of windows per tick. (Slots of epoch 0 elsewhere in
/// the ring are empty and add nothing.) One division per read: the ring slot of `lo`,
/// then the next ones in turn.
fn live<S>(
    slots: &[S],
    epoch: impl Fn(&S) -> u64 + Copy,
    lo: u64,
    hi: u64,
) -> impl Iterator<Item = usize> + Clone {
    let n = slots.len();
    let mut i = (lo % (n as u64).max(1)) as usize;
    (lo..=hi).filter_map(move |e| {
        let here = i;
        i = if i + 1 == n { 0 } else { i + 1 };
        slots.get(here).filter(|s| epoch(s) == e).map(|_| here)
    })
}

/// A window's buckets merged.
struct Moments {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    events: u64,
    total: u64,
}

impl Moments {
    /// Samples (value metrics) or `total` (count metrics).
    fn evidence(&self, kind: MetricKind) -> u64 {
        match kind {
            MetricKind::Value => self.count,
            MetricKind::Count => self.total,
        }
    }

    /// `stat` of the buckets; `quantile(pct)` reads their histograms.
    fn value(
        &self,
        shape: WindowShape,
        stat: Stat,
        quantile: impl FnOnce(u64) -> Option<f64>,
    ) -> Option<f64> {
        let Self {
            count,
            sum,
            min,
            max,
            events,
            total,
        } = *self;
        match stat {
            Stat::Count => Some(self.evidence(shape.kind) as f64),
            Stat::Rate => (total > 0).then(|| events as f64 / total as f64),
            Stat::Mean => (count > 0).then(|| sum / count as f64),
            Stat::Min => (count > 0).then_some(min),
            Stat::Max => (count > 0).then_some(max),
            Stat::P50 => quantile(50),
            Stat::P90 => quantile(90),
            Stat::P95 => quantile(95),
            Stat::P99 => quantile(99),
        }
    }
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.slots().eq(other.slots())
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.slots())
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let slots = Vec::<Slot<'static>>::deserialize(d)?;
        Self::from_slots(slots).ok_or_else(|| {
            serde::de::Error::custom("a window's buckets hold both values and counts")
        })
    }
}
/// Entries of sparse buckets a quantile read sorts; with more, it counts them per cell.
const SORTED_ENTRIES_MAX: usize = 64;

/// The cells of a histogram of `len` bins at `halvings` halvings, numbered from 0: the
/// underflow bin, each run of 2^halvings interior bins, the overflow bin.
#[derive(Clone, Copy)]
struct Cells {
    len: u32,
    halvings: u8,
}

impl Cells {
    /// The number of the cell of `bin`.
    fn index(self, bin: u32) -> usize {
        if bin == 0 {
            0
        } else if bin + 1 >= self.len {
            self.index(self.len.saturating_sub(2)) + 1
        } else {
            (((bin - 1) >> self.halvings) + 1) as usize
        }
    }

    /// The first bin of cell `index`.
    fn bin(self, index: usize) -> u32 {
        let last = self.index(self.len.saturating_sub(2)) + 1;
        if index == 0 {
            0
        } else if index >= last {
            self.len - 1
        } else {
            (((index - 1) as u32) << self.halvings) + 1
        }
    }
}

/// Nearest-rank quantile `pct`/100 over the merged histograms `bins`.
///
/// The rank's cell is the first whose cumulative count reaches it; cumulative counts
/// are exact integer sums, so the order in which the buckets' counts are added does
/// not matter. Sparse buckets are merged at the coarsest resolution among them: a few
/// entries sorted, more counted per cell over the span of cells they use; with a dense
/// one, the counts go into one array of the bins. A bin reads as its midpoint; a cell
/// of several bins as the midpoint of its edges.
///
/// Sparse entries up to `sorted_max` of them are sorted, more counted per cell
/// ([`SORTED_ENTRIES_MAX`]; the tests check that both ways read alike).
fn quantile<'a>(
    h: HistShape,
    bins: impl Iterator<Item = &'a Bins> + Clone,
    n: u64,
    pct: u64,
    min: f64,
    max: f64,
    sorted_max: usize,
) -> Option<f64> {
    if n == 0 {
        return None;
    }
    // rank = ⌈n·pct/100⌉ in integers, at least 1.
    let rank = (n.saturating_mul(pct).div_ceil(100)).max(1);
    let len = h.len();
    // The coarsest resolution, whether all are sparse, and their entries: one pass.
    let (halvings, sparse, total) = bins.clone().fold((0, true, 0), |(h, sparse, n), s| {
        (
            h.max(s.halvings),
            sparse && !s.is_dense(),
            n + s.cells.len(),
        )
    });
    let at = |bin: u32| {
        let x = if bin == 0 {
            min
        } else if bin == len - 1 {
            max
        } else if halvings == 0 {
            h.midpoint(bin as usize)
        } else {
            let end = (bin + (1 << halvings)).min(len - 1);
            (h.lower_edge(bin as usize) + h.lower_edge(end as usize)) * 0.5
        };
        Some(x.clamp(min, max))
    };
    let mut seen = 0u64;
    if sparse && total <= sorted_max {
        // A few entries (a scope's windows: a tick reads thousands): sorted, on the
        // stack.
        let (mut stack, mut heap) = ([0u32; SORTED_ENTRIES_MAX], Vec::new());
        let entries = match stack.get_mut(..total) {
            Some(entries) => entries,
            None => {
                heap.resize(total, 0);
                &mut heap[..]
            }
        };
        let all = bins.flat_map(|s| s.cells.iter().copied());
        for (e, from) in entries.iter_mut().zip(all) {
            *e = if halvings > 0 {
                Bins::cell_of(len, halvings, from >> COUNT_BITS) << COUNT_BITS
                    | from & ENTRY_COUNT_MAX
            } else {
                from
            };
        }
        entries.sort_unstable();
        for &e in &*entries {
            seen += u64::from(e & ENTRY_COUNT_MAX);
            if seen >= rank {
                return at(e >> COUNT_BITS);
            }
        }
    } else if sparse {
        // Many: counted per cell over the span of cells they use (each bucket's
        // entries are in cell order, so its first and last entries bound it).
        let cells = Cells { len, halvings };
        let (lo, hi) = bins
            .clone()
            .filter_map(|s| Some((*s.cells.first()?, *s.cells.last()?)))
            .fold((usize::MAX, 0), |(lo, hi), (first, last)| {
                (
                    lo.min(cells.index(first >> COUNT_BITS)),
                    hi.max(cells.index(last >> COUNT_BITS)),
                )
            });
        let span = (hi + 1).saturating_sub(lo);
        let (mut stack, mut heap) = ([0u64; 128], Vec::new());
        let counts = match stack.get_mut(..span) {
            Some(counts) => counts,
            None => {
                heap.resize(span, 0);
                &mut heap[..]
            }
        };
        for s in bins {
            for &e in &s.cells {
                let i = cells.index(e >> COUNT_BITS).wrapping_sub(lo);
                if let Some(n) = counts.get_mut(i) {
                    *n += u64::from(e & ENTRY_COUNT_MAX);
                }
            }
        }
        for (i, &c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return at(cells.bin(lo + i));
            }
        }
    } else {
        let mut counts = vec![0u64; len as usize];
        for s in bins {
            for (bin, c) in s.iter() {
                if let Some(n) = counts.get_mut(bin as usize) {
                    *n += u64::from(c);
                }
            }
        }
        for (bin, c) in counts.into_iter().enumerate() {
            seen += c;
            if seen >= rank {
                return at(bin as u32);
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
        /// A scope's bucket whose resolution was halved: each pair's bin is the first
        /// of its cell of 2^halvings bins.
        #[serde(default, skip_serializing_if = "is_zero")]
        halvings: u8,
    }

    fn is_zero(n: &u8) -> bool {
        *n == 0
    }

    impl Serialize for Bins {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Sparse {
                len: self.len,
                bins: self.iter().collect(),
                halvings: self.halvings,
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
            Bins::from_pairs(sparse.len, sparse.bins, sparse.halvings).ok_or_else(|| {
                D::Error::custom("histogram bin out of range, or not the first of its cell")
            })
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
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true, u32::MAX);
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
        let shape = WindowShape::new(&m, 10_000, false, 64);
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
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true, 64);
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
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), false, 64);
        let mut w = Window::new(shape);
        w.add_count(shape, 1, 3, 100);
        w.add_count(shape, 2, 1, 100);
        let r = w.read(shape, Stat::Rate, 2);
        assert_eq!((r.evidence, r.value), (200, Some(0.02)));

        let m = value_metric(1_000, 1);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true, 64);
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
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), false, 64);
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
            c.add_values(shape, &[1, 1], &[first, second], &mut Tally::default());
            assert_eq!(c, w);
        }
    }

    #[test]
    fn sparse_histograms_round_trip() {
        let m = value_metric(1_000, 2);
        let shape = WindowShape::new(&m, m.window_ms.unwrap_or(0), true, 64);
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
        // Room for every bin: a scope's bucket at full resolution.
        let shape = WindowShape::new(&m, 6_000, true, u32::MAX);
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
                for b in w.hists() {
                    assert!(b.capacity() <= len, "{} cells of {len}", b.capacity());
                    assert!(!b.is_dense() && b.halvings == 0);
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
    fn a_count_past_a_sparse_entry_s_goes_on_in_another_entry_and_dense_bins_saturate() {
        let mut b = Bins::new(34);
        for _ in 0..ENTRY_COUNT_MAX {
            b.add(5, 64);
        }
        b.add(5, 64);
        b.add(6, 64);
        b.add(5, 64);
        assert!(!b.is_dense());
        // The partial entry first, then the full one; counted as one bin.
        assert_eq!(
            b.cells[..],
            [
                5 << COUNT_BITS | 2,
                5 << COUNT_BITS | ENTRY_COUNT_MAX,
                6 << COUNT_BITS | 1
            ]
        );
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [(5, ENTRY_COUNT_MAX + 2), (6, 1)]
        );
        let json = serde_json::to_string(&b).unwrap();
        let back: Bins = serde_json::from_str(&json).unwrap();
        assert_eq!((&back, &back.cells), (&b, &b.cells));
        b.add(40, 64); // out of range: ignored
        assert_eq!(b.iter().count(), 2);
        // Dense bins saturate.
        let mut d = Bins::new(34);
        d.make_dense();
        d.cells[5] = u32::MAX;
        d.add(5, 64);
        d.add(40, 64);
        assert_eq!(d.iter().collect::<Vec<_>>(), [(5, u32::MAX)]);
        // Reset: empty at full resolution, the allocation kept.
        b.halve();
        assert_eq!(b.halvings, 1);
        let cap = b.capacity();
        b.clear();
        assert_eq!((b.iter().count(), b.halvings, b.capacity()), (0, 0, cap));
    }

    #[test]
    fn a_scope_bucket_halves_its_resolution_past_its_cells_and_stays_within_the_bound() {
        let m = value_metric(6_000, 6);
        let h = HistShape::new(m.histogram_range);
        for cells_max in [16u32, 64, 200] {
            let shape = WindowShape::new(&m, 6_000, true, cells_max);
            let full = WindowShape::new(&m, 6_000, true, u32::MAX);
            for octaves in [1u32, 3, 6, 12] {
                let (mut w, mut exact) = (Window::new(shape), Window::new(full));
                let mut values = Vec::new();
                let mut x = 0x2545_f491_4f6c_dd1du64;
                for i in 0..6_000u64 {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                    let v = 3.7 * libm::exp2(u * f64::from(octaves));
                    w.add_value(shape, i, v);
                    exact.add_value(full, i, v);
                    values.push(v);
                }
                let k = w.hists().iter().map(|b| b.halvings).max().unwrap();
                for s in w.slots() {
                    assert!(s.hist.entries() <= cells_max as usize);
                    assert!(s.hist.capacity() <= cells_max as usize);
                    let n: u64 = s.hist.iter().map(|(_, c)| u64::from(c)).sum();
                    assert_eq!(n, s.count, "counts are kept exactly");
                }
                // Halved only when the bins did not fit.
                let used = exact.hists().iter().map(Bins::entries).max().unwrap();
                assert_eq!(k > 0, used > cells_max as usize, "{cells_max} {octaves}");
                values.sort_by(f64::total_cmp);
                for (stat, pct) in [
                    (Stat::P50, 50),
                    (Stat::P90, 90),
                    (Stat::P95, 95),
                    (Stat::P99, 99),
                ] {
                    let want = values[(6_000usize * pct).div_ceil(100) - 1];
                    let got = w.read(shape, stat, 6_000).value.unwrap();
                    let bound = f64::from(1u32 << k) / 64.0;
                    assert!(
                        ((got - want) / want).abs() <= bound,
                        "{cells_max} cells, {octaves} octaves, {k} halvings, p{pct}: {got} vs {want}"
                    );
                    if k == 0 {
                        let full = exact.read(full, stat, 6_000).value.unwrap();
                        assert_eq!(got.to_bits(), full.to_bits());
                    }
                }
                // A scope's bucket restores with its resolution, and reads alike.
                let json = serde_json::to_string(&w).unwrap();
                let back: Window = serde_json::from_str(&json).unwrap();
                assert_eq!(back, w);
                assert_eq!(serde_json::to_string(&back).unwrap(), json);
                assert_eq!(json.contains("halvings"), k > 0);
            }
        }
        // A cell reads as the midpoint of its edges: bins 1..=4 halved twice.
        let mut b = Bins::new(h.len());
        for bin in [1, 2, 3, 4, 5] {
            b.add(bin, 16);
        }
        b.halve();
        b.halve();
        assert_eq!(b.iter().collect::<Vec<_>>(), [(1, 4), (5, 1)]);
        let mid = (h.lower_edge(1) + h.lower_edge(5)) * 0.5;
        assert_eq!(
            quantile(h, [&b].into_iter(), 5, 50, 0.0, 1e9, 64),
            Some(mid)
        );
    }

    /// A value in `bin` of `h` (the end bins take values below and above the range).
    fn value_in(h: HistShape, bin: u32) -> f64 {
        match bin {
            0 => -1.0,
            b if b + 1 >= h.len() => 1e300,
            b => h.lower_edge(b as usize),
        }
    }

    proptest::proptest! {
        /// A quantile read of sparse buckets counts their entries per cell as sorting
        /// them does: the same value, at any mix of resolutions, spans of cells and
        /// ranks.
        #[test]
        fn a_quantile_read_counting_entries_per_cell_reads_as_sorting_them(
            buckets in proptest::collection::vec(
                (proptest::collection::vec((0u32..1282, 1u32..1000), 0..300), 0u8..4),
                1..8,
            ),
            pct in 1u64..=100,
        ) {
            let h = HistShape::new(HistogramRange::default());
            assert_eq!(h.len(), 1282);
            let hists: Vec<Bins> = buckets
                .into_iter()
                .filter_map(|(pairs, k)| {
                    let pairs = pairs.into_iter().map(|(b, c)| (Bins::cell_of(1282, k, b), c));
                    Bins::from_pairs(1282, pairs.collect(), k)
                })
                .filter(|b| !b.is_dense())
                .collect();
            let n = hists.iter().flat_map(Bins::iter).map(|(_, c)| u64::from(c)).sum();
            let read = |sorted_max| quantile(h, hists.iter(), n, pct, 1e-9, 1e12, sorted_max);
            let (sorted, counted) = (read(usize::MAX), read(0));
            proptest::prop_assert_eq!(sorted.map(f64::to_bits), counted.map(f64::to_bits));
            proptest::prop_assert_eq!(read(SORTED_ENTRIES_MAX).map(f64::to_bits), sorted.map(f64::to_bits));
        }
    }

    proptest::proptest! {
        /// A run tallied leaves a bucket exactly as its values one by one do: the same
        /// entries (in the same order) and resolution, from any state a snapshot can
        /// hold — cells near or past 2^19 − 1, halved up to the last halving — so also
        /// when it must split a cell's entries, halve, or drop values.
        #[test]
        fn a_run_tallied_leaves_a_bucket_as_its_values_one_by_one(
            start in proptest::collection::vec((0u32..66, 0u32..4), 0..40),
            big in proptest::collection::vec((0u32..66, 1u32..8, 0u32..20), 0..4),
            halvings in proptest::sample::select(vec![0u8, 0, 1, 2, 5, 11, HALVINGS_MAX]),
            runs in proptest::collection::vec(proptest::collection::vec(0u32..66, 0..300), 1..4),
            cells_max in proptest::sample::select(vec![16u32, 17, 24, 48, 66]),
        ) {
            // 2 octaves: 66 bins.
            let h = HistShape::new(HistogramRange { min: 1.0, max: 3.0 });
            assert_eq!(h.len(), 66);
            // Cells a few values short of filling their entries.
            let big = big.into_iter().map(|(b, k, short)| (b, k * ENTRY_COUNT_MAX - short));
            let pairs: Vec<(u32, u32)> = start
                .into_iter()
                .chain(big)
                .map(|(b, c)| (Bins::cell_of(66, halvings, b), c))
                .collect();
            let Some(mut tallied) = Bins::from_pairs(66, pairs, halvings) else {
                return Ok(());
            };
            if tallied.is_dense() || tallied.entries() > cells_max as usize {
                return Ok(());
            }
            let mut one_by_one = tallied.clone();
            let mut tally = Tally::default();
            for run in runs {
                let xs: Vec<f64> = run.iter().map(|&b| value_in(h, b)).collect();
                tallied.add_run(h, &xs, cells_max, &mut tally);
                for &x in &xs {
                    one_by_one.add(h.bin(x), cells_max);
                }
                proptest::prop_assert_eq!(&tallied.cells, &one_by_one.cells);
                proptest::prop_assert_eq!(tallied.halvings, one_by_one.halvings);
                proptest::prop_assert!(tallied.capacity() <= cells_max.min(66) as usize);
                proptest::prop_assert!(tally.counts.iter().all(|&c| c == 0));
            }
        }
    }

    #[test]
    fn sparse_and_dense_bins_with_the_same_counts_are_equal_and_serialize_alike() {
        let mut sparse = Bins::new(34);
        let mut dense = Bins::new(34);
        dense.densify();
        for bin in [3, 3, 9, 33, 0] {
            sparse.add(bin, 64);
            dense.add(bin, 64);
        }
        assert!(!sparse.is_dense() && dense.is_dense());
        assert_eq!(sparse, dense);
        let (a, b) = (
            serde_json::to_string(&sparse).unwrap(),
            serde_json::to_string(&dense).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a, r#"{"len":34,"bins":[[0,1],[3,2],[9,1],[33,1]]}"#);
        dense.add(9, 64);
        assert_ne!(sparse, dense);
        // As dense bins were read: a later pair of a bin replaces an earlier one, zero
        // counts are no entries, and a bin out of range is refused.
        let read = |t: &str| serde_json::from_str::<Bins>(t);
        let b = read(r#"{"len":34,"bins":[[9,4],[3,2],[9,1],[7,0]]}"#).unwrap();
        assert_eq!(b.iter().collect::<Vec<_>>(), [(3, 2), (9, 1)]);
        assert!(!b.is_dense());
        assert!(read(r#"{"len":34,"bins":[[34,1]]}"#).is_err());
        let big = read(r#"{"len":34,"bins":[[1,600000]]}"#).unwrap();
        assert_eq!((big.is_dense(), big.entries()), (false, 2));
        let many: Vec<String> = (0..34)
            .map(|i| format!("[{i},{}]", 1 + i * 20_000))
            .collect();
        let many = read(&format!(r#"{{"len":34,"bins":[{}]}}"#, many.join(","))).unwrap();
        assert!(many.is_dense(), "more entries than bins: dense");
        assert_eq!(many.iter().count(), 34);
        // Halved bins: each pair's bin is the first of its cell.
        let halved = read(r#"{"len":34,"bins":[[0,1],[1,3],[5,2],[33,1]],"halvings":2}"#).unwrap();
        assert_eq!(halved.halvings, 2);
        assert_ne!(
            halved,
            read(r#"{"len":34,"bins":[[0,1],[1,3],[5,2],[33,1]]}"#).unwrap()
        );
        assert!(read(r#"{"len":34,"bins":[[2,1]],"halvings":1}"#).is_err());
        assert!(read(r#"{"len":34,"bins":[[1,1]],"halvings":13}"#).is_err());
    }

    #[test]
    fn an_overall_window_keeps_dense_bins_and_reads_alike() {
        let m = value_metric(4_000, 4);
        let shape = WindowShape::new(&m, 4_000, true, u32::MAX);
        let (mut dense, mut sparse) = (Window::new_dense(shape), Window::new(shape));
        for i in 0..20_000u64 {
            let x = 1.0 + (i * 7919 % 1000) as f64;
            dense.add_value(shape, i / 2, x);
            sparse.add_value(shape, i / 2, x);
        }
        assert!(dense.hists().iter().all(Bins::is_dense));
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
