//! Columns: samples of one metric on one arm given as arrays (the numpy and typed-array
//! paths of the bindings), with optional label columns that put each row in its scope.
//!
//! A column is checked as a whole (branch-free passes that vectorize; rows one by one
//! only to name the first refused one), then recorded in runs of rows that end at timer
//! deadlines, each run into the arm's window in one pass. Label columns are
//! dictionary-encoded, as a pandas categorical is: per row a code, an index into the
//! column's categories. Each distinct tuple of codes is resolved to its scope id once,
//! at its first row, so scopes are numbered in row order exactly as `observe` numbers
//! them one sample at a time; then the rows of each scope go into its windows together
//! (grouped by scope, in row order within each: the same additions in the same order as
//! row by row, since scopes share no state).
//!
//! The policy keeps the scope ids of the last call's categories ([`CategoryCache`]): a
//! call with the same categories (a pandas categorical's, or one `LabelCodes` reused)
//! maps a row's codes to its scope id with one array look-up, without comparing labels
//! against the scope dictionary, whether scopes are formed by one label or by several.

use std::collections::BTreeMap;
use std::ops::Range;

use smallvec::SmallVec;

use super::*;
use crate::config::footprint::{CACHE_KEYS_PER_SCOPE, COLUMN_GATHER_ROWS, column_chunk_rows};
use crate::input::Count;
use crate::scope::ScopeLabel;
use crate::stats::window::{Tally, WindowShape};
use crate::time::{Millis, run_end};

/// One label's column, dictionary-encoded as a pandas categorical is: per row, the
/// index of its label in `categories`, or `-1` for a row without the label.
///
/// `categories` may hold labels no row uses: only the labels of rows are checked
/// (against `limits.label_len_max`), as [`Policy::observe`] checks a sample's.
#[derive(Debug)]
pub struct LabelColumn<'a, S = &'a str> {
    /// Per row, an index into `categories`, or -1 for none.
    pub codes: &'a [i32],
    /// The labels the codes stand for.
    pub categories: &'a [S],
}

impl<'a, S> LabelColumn<'a, S> {
    /// A column of `codes` into `categories`.
    pub fn new(codes: &'a [i32], categories: &'a [S]) -> Self {
        Self { codes, categories }
    }
}

// Not derived: a derive would ask `S: Copy`, and the column only borrows its `S`s.
impl<S> Clone for LabelColumn<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for LabelColumn<'_, S> {}

/// The label columns of a column of samples (see
/// [`Policy::observe_values_labelled`]): each row's `tenant`, `tier` and `agent`, as a
/// [`Sample`] carries them. A label without a column is missing on every row.
#[derive(Debug)]
pub struct Labels<'a, S = &'a str> {
    /// The rows' tenants.
    pub tenant: Option<LabelColumn<'a, S>>,
    /// The rows' tiers.
    pub tier: Option<LabelColumn<'a, S>>,
    /// The rows' agents.
    pub agent: Option<LabelColumn<'a, S>>,
}

impl<S> Default for Labels<'_, S> {
    fn default() -> Self {
        Self {
            tenant: None,
            tier: None,
            agent: None,
        }
    }
}

impl<S> Clone for Labels<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Labels<'_, S> {}

impl<'a, S> Labels<'a, S> {
    /// The labels of rows `rows` only (every column's codes cut to them; a column
    /// shorter than that, refused by any column call, is cut to none).
    pub(crate) fn rows(&self, rows: Range<usize>) -> Self {
        let cut = |c: Option<LabelColumn<'a, S>>| {
            c.map(|c| LabelColumn {
                codes: c.codes.get(rows.clone()).unwrap_or(&[]),
                categories: c.categories,
            })
        };
        Self {
            tenant: cut(self.tenant),
            tier: cut(self.tier),
            agent: cut(self.agent),
        }
    }

    /// The columns with their labels' names, in the order `observe` checks them.
    fn named(&self) -> [(ScopeLabel, &'static str, Option<LabelColumn<'a, S>>); 3] {
        [
            (ScopeLabel::Tenant, "tenant", self.tenant),
            (ScopeLabel::Tier, "tier", self.tier),
            (ScopeLabel::Agent, "agent", self.agent),
        ]
    }
}

/// Labels dictionary-encoded for a [`LabelColumn`], for callers holding one string (or
/// none) per row: the categories in the order of their first row, as
/// `pandas.factorize` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelCodes {
    /// Per row, an index into `categories`, or -1 for a row without the label.
    pub codes: Vec<i32>,
    /// The distinct labels.
    pub categories: Vec<String>,
}

impl LabelCodes {
    /// Encodes one label (or `None`) per row.
    ///
    /// # Errors
    /// `limit_exceeded` beyond 2^31 − 1 distinct labels.
    pub fn encode<S: AsRef<str>>(
        labels: impl IntoIterator<Item = Option<S>>,
    ) -> Result<Self, Error> {
        let mut ids: BTreeMap<String, i32> = BTreeMap::new();
        let mut out = Self::default();
        for label in labels {
            let code = match label {
                None => -1,
                Some(l) => match ids.get(l.as_ref()) {
                    Some(&code) => code,
                    None => {
                        let code = i32::try_from(out.categories.len()).map_err(|_| {
                            Error::new(
                                ErrorCode::LimitExceeded,
                                "",
                                "more than 2^31 - 1 distinct labels",
                            )
                        })?;
                        ids.insert(l.as_ref().to_string(), code);
                        out.categories.push(l.as_ref().to_string());
                        code
                    }
                },
            };
            out.codes.push(code);
        }
        Ok(out)
    }

    /// The column, borrowed.
    pub fn column(&self) -> LabelColumn<'_, String> {
        LabelColumn::new(&self.codes, &self.categories)
    }
}

/// A key not resolved to a scope yet.
const UNSEEN: u32 = u32::MAX;

/// The scope ids of the keys of the last call's scope columns (the columns of the
/// `by` labels), kept across column calls; and scratch for grouping rows by scope.
///
/// Derived state, not in snapshots or equality: every id in it is what the scope
/// dictionary gives its key, which never changes once given (scopes are only added; a
/// key sent to the overflow scope stays there, since the dictionary stays full). A
/// restored policy starts with it empty. Bounded by the config: it holds at most
/// 2 · `scopes_max` categories of at most `label_len_max` bytes, at most
/// [`CACHE_KEYS_PER_SCOPE`] · `scopes_max` keys, one count per scope and the scratch of
/// one chunk of rows (counted by the footprint).
#[derive(Debug, Clone, Default)]
pub(super) struct CategoryCache {
    /// The categories of the `by` columns as the last call gave them, one column's after
    /// the other's (each within `label_len_max`).
    categories: Vec<String>,
    /// How many of `categories` each `by` column has, in `by` order.
    lens: SmallVec<[u32; 3]>,
    /// Per key (the mixed-radix number of a row's codes, as [`RowScopes::key`] forms
    /// it), its scope id, or [`UNSEEN`] while no row of it came.
    ids: Vec<u32>,
    /// Per scope id, while a chunk of rows is grouped by scope (see
    /// [`Policy::record_scoped`]): its rows in the chunk, then the place of its next
    /// row in the chunk's order by scope. Zero between chunks.
    counts: Vec<u32>,
    /// Scratch for grouping a chunk of rows, kept so that a call does not allocate
    /// (and fault in) its own.
    scratch: Scratch,
}

/// Rows of a scope at most this many go into its window one by one (a slot look-up
/// each costs less than gathering them).
const FEW_ROWS: usize = 4;

/// Rows of a scope gathered at a time for its window (see [`Rows::record_rows`]).
const GATHER_ROWS: usize = COLUMN_GATHER_ROWS as usize;

/// Scratch for grouping a chunk of rows by scope, at most [`column_chunk_rows`] long
/// for the config's `scopes_max` (see
/// [`COLUMN_SCRATCH_ROW_BYTES`](crate::config::footprint::COLUMN_SCRATCH_ROW_BYTES)),
/// and for gathering a scope's rows, at most [`GATHER_ROWS`]. Not cloned: a clone
/// starts without it.
#[derive(Debug, Default)]
struct Scratch {
    /// Per row of the chunk, its scope id or [`NO_SCOPE`].
    scope: Vec<u32>,
    /// The chunk's scopes, in the order of their first row.
    scopes: Vec<u32>,
    /// The chunk's rows (each an offset from the chunk's first) grouped by scope, the
    /// groups in `scopes` order, each in row order.
    order: Vec<u32>,
    /// A piece of a scope's rows gathered: their times, and their values (or events
    /// and totals, as `f64`: checked counts are integers below 2^53, exact as `f64`).
    at: Vec<Timestamp>,
    x: Vec<f64>,
    y: Vec<f64>,
    /// For tallying a run of values into a scope's histogram.
    tally: Tally,
}

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Scratch {
    /// Empties the gathered rows, with room for [`GATHER_ROWS`] (allocated once, and
    /// no more).
    #[inline]
    fn gather(&mut self) {
        self.at.clear();
        self.at.reserve_exact(GATHER_ROWS);
        for v in [&mut self.x, &mut self.y] {
            v.clear();
            v.reserve_exact(GATHER_ROWS);
        }
    }

    /// Bytes allocated, by capacity.
    #[cfg(test)]
    fn allocated(&self) -> u64 {
        (4 * (self.scope.capacity() + self.scopes.capacity() + self.order.capacity())
            + 8 * (self.at.capacity() + self.x.capacity() + self.y.capacity())) as u64
            + 6 * 24
            + self.tally.allocated()
    }
}

/// Makes `v` at least `n` long (allocating no more than that), keeping its contents.
fn grow<T: Copy + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.reserve_exact(n - v.len());
        v.resize(n, T::default());
    }
}

impl CategoryCache {
    /// Bytes allocated, by capacity.
    #[cfg(test)]
    pub(super) fn allocated(&self) -> u64 {
        let strings: usize = self.categories.iter().map(String::capacity).sum();
        (self.categories.capacity() * core::mem::size_of::<String>()
            + strings
            + self.ids.capacity() * 4
            + self.counts.capacity() * 4) as u64
            + 4 * 24
            + self.scratch.allocated()
    }

    /// Keys the cache has room for, and how many of them it knows the scope of.
    #[cfg(test)]
    pub(super) fn keys(&self) -> (usize, usize) {
        let known = self.ids.iter().filter(|&&id| id != UNSEEN).count();
        (self.ids.len(), known)
    }

    /// Whether the cache holds exactly these columns' categories (the `by` columns', in
    /// `by` order).
    fn holds<S: AsRef<str>>(&self, columns: &[&[S]]) -> bool {
        if self.lens.len() != columns.len() {
            return false;
        }
        let mut mine = &self.categories[..];
        self.lens.iter().zip(columns).all(|(&n, theirs)| {
            let Some((column, rest)) = mine.split_at_checked(n as usize) else {
                return false;
            };
            mine = rest;
            column.len() == theirs.len()
                && column
                    .iter()
                    .zip(*theirs)
                    .all(|(a, b)| a.as_str() == b.as_ref())
        })
    }

    /// Takes these columns' categories, with no id known yet for any of their `keys`
    /// keys, reusing the strings.
    fn hold<S: AsRef<str>>(&mut self, columns: &[&[S]], keys: usize) {
        let all = columns.iter().copied().flatten();
        self.categories
            .truncate(columns.iter().map(|c| c.len()).sum());
        for (mine, c) in self.categories.iter_mut().zip(all.clone()) {
            mine.clear();
            mine.push_str(c.as_ref());
        }
        let have = self.categories.len();
        self.categories
            .extend(all.skip(have).map(|c| c.as_ref().to_string()));
        self.lens.clear();
        self.lens.extend(columns.iter().map(|c| c.len() as u32));
        self.ids.clear();
        self.ids.resize(keys, UNSEEN);
    }
}

/// The categories of `labels`' columns of the `by` labels, in `by` order: `None` if
/// one of them has no column.
fn by_categories<'a, S>(
    by: &[ScopeLabel],
    labels: &Labels<'a, S>,
) -> Option<SmallVec<[&'a [S]; 3]>> {
    let named = labels.named();
    by.iter()
        .map(|label| {
            let (_, _, column) = named.iter().find(|(l, ..)| l == label)?;
            Some(column.as_ref()?.categories)
        })
        .collect()
}

/// Keys in a dense table up to this many (or as many as rows), in a map beyond.
const DENSE_KEYS_MAX: u128 = 1 << 16;

/// The columns of the labels a policy's scopes are formed by, for one call, and the
/// scope id of each key (a row's codes in those columns) resolved so far.
struct RowScopes<'a, S> {
    /// The `by` labels' columns, in `by` order, each with its stride in the key: a key
    /// is the mixed-radix number of a row's codes.
    by: Vec<(ScopeLabel, LabelColumn<'a, S>, u128)>,
    ids: Ids,
    /// The `tier` column when scopes are not formed by tier: a new scope takes the
    /// tier of the row that creates it, as with `observe`.
    tier: Option<LabelColumn<'a, S>>,
    /// A key looked up in the policy's dictionary, its strings reused from one look-up
    /// to the next (no allocation for a key the policy already holds).
    probe: crate::scope::ScopeKey,
    /// The `by` columns' categories are the ones the policy's [`CategoryCache`] holds:
    /// a key is resolved there, across calls, not in `ids`.
    cached: bool,
}

/// The samples of a column call by row, of one kind: [`ValueRows`] or [`CountRows`].
///
/// A run of rows goes into a window in one pass and into a detector row by row. With
/// scopes, a scope's rows (given by index, in row order) go into its window a piece at
/// a time, each piece gathered first, and into its detectors row by row.
trait Rows: Copy {
    /// Records rows `rows` in `w`, in one pass (`tally`: see [`Window::add_values`]).
    fn record(self, w: &mut Window, shape: WindowShape, rows: Range<usize>, tally: &mut Tally);
    /// Records row `r` in `w`.
    fn record_row(self, w: &mut Window, shape: WindowShape, r: usize);
    /// Gathers rows `base + rows[i]` into `scratch` (emptied by [`Scratch::gather`]).
    fn gather(self, scratch: &mut Scratch, base: usize, rows: &[u32]);
    /// Records the rows gathered in `scratch` in `w`, in one pass.
    fn record_gathered(w: &mut Window, shape: WindowShape, scratch: &mut Scratch);
    /// Feeds rows `rows` to `d`, in row order.
    fn feed(self, d: &mut Detector, side: Side, rows: Range<usize>);
    /// Feeds row `r` to `d`.
    fn feed_row(self, d: &mut Detector, side: Side, r: usize);

    /// Records rows `base + rows[i]` in `w`, in that order: the same additions in the
    /// same order as row by row. A few rows go in one by one, rows that follow one
    /// another in one pass, others gathered into `scratch` [`GATHER_ROWS`] at a time.
    fn record_rows(
        self,
        w: &mut Window,
        shape: WindowShape,
        base: usize,
        rows: &[u32],
        scratch: &mut Scratch,
    ) {
        if rows.len() <= FEW_ROWS {
            for &r in rows {
                self.record_row(w, shape, base + r as usize);
            }
            return;
        }
        if let Some(rows) = consecutive(base, rows) {
            return self.record(w, shape, rows, &mut scratch.tally);
        }
        for piece in rows.chunks(GATHER_ROWS) {
            scratch.gather();
            self.gather(scratch, base, piece);
            Self::record_gathered(w, shape, scratch);
        }
    }

    /// Feeds rows `base + rows[i]` to `d`, in that order.
    fn feed_rows(self, d: &mut Detector, side: Side, base: usize, rows: &[u32]) {
        for &r in rows {
            self.feed_row(d, side, base + r as usize);
        }
    }
}

/// Rows `base + rows[i]` as a range when they follow one another (a column sorted by
/// scope, or with one scope): recorded straight from the column, without gathering
/// them. `rows` are increasing, so they follow one another when the last is as far
/// from the first as their number allows.
#[inline]
fn consecutive(base: usize, rows: &[u32]) -> Option<Range<usize>> {
    let (&first, &last) = rows.first().zip(rows.last())?;
    let (first, last) = (base + first as usize, base + last as usize);
    (last - first + 1 == rows.len()).then_some(first..last + 1)
}

/// Value samples by row.
#[derive(Clone, Copy)]
struct ValueRows<'a, T> {
    at: &'a [T],
    values: &'a [f64],
}

impl<T: Millis> Rows for ValueRows<'_, T> {
    fn record(self, w: &mut Window, shape: WindowShape, rows: Range<usize>, tally: &mut Tally) {
        w.add_values(shape, &self.at[rows.clone()], &self.values[rows], tally);
    }

    fn record_row(self, w: &mut Window, shape: WindowShape, r: usize) {
        w.add_value(shape, self.at[r].ms(), self.values[r]);
    }

    fn gather(self, scratch: &mut Scratch, base: usize, rows: &[u32]) {
        let (at, values) = (&self.at[base..], &self.values[base..]);
        scratch.at.extend(rows.iter().map(|&r| at[r as usize].ms()));
        scratch.x.extend(rows.iter().map(|&r| values[r as usize]));
    }

    fn record_gathered(w: &mut Window, shape: WindowShape, scratch: &mut Scratch) {
        w.add_values(shape, &scratch.at, &scratch.x, &mut scratch.tally);
    }

    fn feed(self, d: &mut Detector, side: Side, rows: Range<usize>) {
        for (t, &x) in self.at[rows.clone()].iter().zip(&self.values[rows]) {
            d.observe_value(side, t.ms(), x);
        }
    }

    fn feed_row(self, d: &mut Detector, side: Side, r: usize) {
        d.observe_value(side, self.at[r].ms(), self.values[r]);
    }
}

/// Count samples by row.
#[derive(Clone, Copy)]
struct CountRows<'a, T, N> {
    at: &'a [T],
    events: &'a [N],
    totals: &'a [N],
}

impl<T: Millis, N: Count> Rows for CountRows<'_, T, N> {
    fn record(self, w: &mut Window, shape: WindowShape, rows: Range<usize>, _: &mut Tally) {
        w.add_counts(
            shape,
            &self.at[rows.clone()],
            &self.events[rows.clone()],
            &self.totals[rows],
        );
    }

    fn record_row(self, w: &mut Window, shape: WindowShape, r: usize) {
        let (e, n) = (self.events[r].get(), self.totals[r].get());
        w.add_count(shape, self.at[r].ms(), e, n);
    }

    fn gather(self, scratch: &mut Scratch, base: usize, rows: &[u32]) {
        let at = &self.at[base..];
        let (events, totals) = (&self.events[base..], &self.totals[base..]);
        scratch.at.extend(rows.iter().map(|&r| at[r as usize].ms()));
        scratch
            .x
            .extend(rows.iter().map(|&r| events[r as usize].get() as f64));
        scratch
            .y
            .extend(rows.iter().map(|&r| totals[r as usize].get() as f64));
    }

    fn record_gathered(w: &mut Window, shape: WindowShape, scratch: &mut Scratch) {
        w.add_counts(shape, &scratch.at, &scratch.x, &scratch.y);
    }

    fn feed(self, d: &mut Detector, side: Side, rows: Range<usize>) {
        let counts = self.events[rows.clone()]
            .iter()
            .zip(&self.totals[rows.clone()]);
        for (t, (e, n)) in self.at[rows].iter().zip(counts) {
            d.observe_count(side, t.ms(), e.get(), n.get());
        }
    }

    fn feed_row(self, d: &mut Detector, side: Side, r: usize) {
        d.observe_count(
            side,
            self.at[r].ms(),
            self.events[r].get(),
            self.totals[r].get(),
        );
    }
}

/// A scope id for a row without a scope.
const NO_SCOPE: u32 = u32::MAX;

/// Scope ids by key.
enum Ids {
    Dense(Vec<u32>),
    Sparse(BTreeMap<u128, u32>),
}

impl<'a, S: AsRef<str>> RowScopes<'a, S> {
    /// The key of row `r`: `None` for a row without one of the `by` labels.
    #[inline]
    fn key(&self, r: usize) -> Option<u128> {
        let mut key = 0;
        for (_, column, stride) in &self.by {
            let code = u128::try_from(*column.codes.get(r)?).ok()?;
            key += code * stride;
        }
        Some(key)
    }

    /// Row `r`'s scope id, numbering its key's scope (in `p`, as `observe` would) at its
    /// first row.
    #[inline]
    fn scope(&mut self, p: &mut Policy, r: usize) -> Option<u32> {
        let key = self.key(r)?;
        if self.cached {
            let known = *p.columns.ids.get(key as usize)?;
            if known != UNSEEN {
                return Some(known);
            }
            let id = self.resolve(p, r)?;
            if let Some(slot) = p.columns.ids.get_mut(key as usize) {
                *slot = id;
            }
            return Some(id);
        }
        let known = match &self.ids {
            Ids::Dense(ids) => *ids.get(key as usize)?,
            Ids::Sparse(ids) => ids.get(&key).copied().unwrap_or(UNSEEN),
        };
        if known != UNSEEN {
            return Some(known);
        }
        let id = self.resolve(p, r)?;
        match &mut self.ids {
            Ids::Dense(ids) => ids[key as usize] = id,
            Ids::Sparse(ids) => {
                ids.insert(key, id);
            }
        }
        Some(id)
    }

    /// The scope ids of rows `rows` into `out`, as long ([`NO_SCOPE`] for a row without
    /// one), numbering new scopes in row order, as [`RowScopes::scope`] row by row.
    fn scopes_of(&mut self, p: &mut Policy, rows: Range<usize>, out: &mut [u32]) {
        match (self.cached, self.by.as_slice()) {
            // Codes whose ids the cache knows in one pass; `scope` numbers an unseen one.
            (true, [(_, column, _)]) => {
                let codes = column.codes.get(rows.clone()).unwrap_or_default();
                let mut i = 0;
                while i < codes.len() {
                    i += known_ids(&p.columns.ids, &codes[i..], &mut out[i..]);
                    if let Some(slot) = out.get_mut(i) {
                        *slot = self.scope(p, rows.start + i).unwrap_or(NO_SCOPE);
                        i += 1;
                    }
                }
            }
            _ => {
                for (r, slot) in rows.zip(out.iter_mut()) {
                    *slot = self.scope(p, r).unwrap_or(NO_SCOPE);
                }
            }
        }
    }

    /// Row `r`'s scope id from the policy's dictionary, numbering a new key there.
    fn resolve(&mut self, p: &mut Policy, r: usize) -> Option<u32> {
        {
            let label = |l: ScopeLabel| {
                let (_, c, _) = self.by.iter().find(|(by, ..)| *by == l)?;
                let code = usize::try_from(*c.codes.get(r)?).ok()?;
                Some(c.categories.get(code)?.as_ref())
            };
            let (tenant, tier, agent) = (
                label(ScopeLabel::Tenant),
                label(ScopeLabel::Tier),
                label(ScopeLabel::Agent),
            );
            let attribute = self.tier.as_ref().and_then(|c| {
                let code = usize::try_from(*c.codes.get(r)?).ok()?;
                Some(c.categories.get(code)?.as_ref())
            });
            let tier = tier.or(attribute);
            // A key the policy holds is found without building one (`scope_of` would
            // allocate its strings); a new one is numbered by `scope_of`.
            let probe = &mut self.probe;
            reuse(&mut probe.tenant, tenant);
            reuse(
                &mut probe.tier,
                tier.filter(|_| self.by.iter().any(|(l, ..)| *l == ScopeLabel::Tier)),
            );
            reuse(&mut probe.agent, agent);
            match p.scope_ids.get(probe) {
                Some(&known) => Some(known),
                None => p.scope_of(tenant, tier, agent),
            }
        }
    }
}

/// The scope ids of `codes` into `out` from a [`CategoryCache`]'s `ids` ([`NO_SCOPE`]
/// for -1), up to the first code not resolved yet: how many it wrote.
fn known_ids(ids: &[u32], codes: &[i32], out: &mut [u32]) -> usize {
    for (i, (&code, slot)) in codes.iter().zip(out.iter_mut()).enumerate() {
        // -1 (no label) reads as 2^32 − 1, past any table: codes index at most 2^31.
        *slot = match ids.get(code as u32 as usize) {
            Some(&UNSEEN) => return i,
            Some(&id) => id,
            None => NO_SCOPE,
        };
    }
    codes.len().min(out.len())
}

/// Sets a probe key's label, reusing its string.
fn reuse(slot: &mut Option<String>, label: Option<&str>) {
    match (slot.as_mut(), label) {
        (Some(s), Some(l)) => {
            s.clear();
            s.push_str(l);
        }
        (None, Some(l)) => *slot = Some(l.to_string()),
        (_, None) => *slot = None,
    }
}

impl Policy {
    /// Records a column of value samples of one metric on one arm (the numpy or typed
    /// array path of the bindings), atomically: if any is refused, none is recorded.
    /// Times must not decrease. The samples carry no labels: they count overall only
    /// (see [`Policy::observe_values_labelled`]).
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
        self.observe_value_column(arm, metric, at, values, &Labels::<&str>::default())
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
        self.observe_value_column(arm, metric, at, values, &Labels::<&str>::default())
    }

    /// [`Policy::observe_values`] with label columns: row `i` is the sample `at[i]`,
    /// `values[i]` with the labels its codes stand for, and the policy ends exactly as
    /// if the rows came one by one through [`Policy::observe`] (the same scopes,
    /// numbered in the same order, and the same decisions and events).
    ///
    /// ```
    /// # use rollguard::{LabelColumn, Labels, Policy};
    /// # fn run(policy: &mut Policy) -> Result<(), rollguard::Error> {
    /// let tenants = ["acme", "globex"];
    /// let labels = Labels {
    ///     tenant: Some(LabelColumn::new(&[0, 1, 0, -1], &tenants)),
    ///     ..Labels::default()
    /// };
    /// // The last row has no tenant: it counts overall only.
    /// let (at, latency) = ([0, 1, 2, 3], [90.0, 120.0, 95.0, 100.0]);
    /// let step = policy.observe_values_labelled("v2", "latency_ms", &at, &latency, &labels)?;
    /// # let _ = step;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Policy::observe_values`], and at the label's row (`tenant[3]`):
    /// `invalid_value` for a code that is neither -1 nor the index of a category,
    /// `label_too_long` for a label beyond `limits.label_len_max`. A label column of
    /// another length than `at` is `invalid_value` at its name (`tenant`). The labels are
    /// checked before the other columns.
    pub fn observe_values_labelled<S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<Step, Error> {
        self.observe_value_column(arm, metric, at, values, labels)
    }

    /// [`Policy::observe_values_labelled`] with the times as `f64` ms (see
    /// [`Policy::observe_values_f64`]).
    ///
    /// # Errors
    /// As [`Policy::observe_values_labelled`].
    pub fn observe_values_f64_labelled<S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[f64],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<Step, Error> {
        self.observe_value_column(arm, metric, at, values, labels)
    }

    /// Checks a column of value samples as [`Policy::observe_values_labelled`] does,
    /// changing nothing: the metric's index and whether the scope column is cached, or
    /// `None` for an empty column. A column it accepts is recorded whole or in pieces
    /// (each piece a column of its own) without a refusal.
    pub(crate) fn check_value_column<T: Millis, S: AsRef<str>>(
        &self,
        arm: &str,
        metric: &str,
        at: &[T],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<Option<(usize, bool)>, Error> {
        same_length(at.len(), values.len(), "value")?;
        let cached = self.check_labels(labels, at.len())?;
        let Some((&first, &x)) = at.first().zip(values.first()) else {
            return Ok(None);
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
        Ok(Some((m, cached)))
    }

    fn observe_value_column<T: Millis, S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[T],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<Step, Error> {
        Ok(
            match self.check_value_column(arm, metric, at, values, labels)? {
                Some(checked) => self.record_value_column(checked, arm, at, values, labels),
                None => Out::default().into_step(self.state.now),
            },
        )
    }

    /// Records a column [`Policy::check_value_column`] accepted (`checked` is what it
    /// returned), or any run of its rows: it cannot be refused.
    pub(crate) fn record_value_column<T: Millis, S: AsRef<str>>(
        &mut self,
        (m, cached): (usize, bool),
        arm: &str,
        at: &[T],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Step {
        let mut out = Out::default();
        let scopes = self.row_scopes(labels, at.len(), cached);
        self.record_column(arm, m, at, ValueRows { at, values }, scopes, &mut out);
        self.debug_validate();
        out.into_step(self.state.now)
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
        let labels = Labels::<&str>::default();
        self.observe_count_column(arm, metric, at, events, totals, &labels)
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
        let labels = Labels::<&str>::default();
        self.observe_count_column(arm, metric, at, events, totals, &labels)
    }

    /// [`Policy::observe_counts`] with label columns, as
    /// [`Policy::observe_values_labelled`].
    ///
    /// # Errors
    /// As [`Policy::observe_counts`] and [`Policy::observe_values_labelled`].
    pub fn observe_counts_labelled<S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        events: &[i64],
        totals: &[i64],
        labels: &Labels<'_, S>,
    ) -> Result<Step, Error> {
        self.observe_count_column(arm, metric, at, events, totals, labels)
    }

    /// [`Policy::observe_counts_labelled`] with times and counts as `f64` (see
    /// [`Policy::observe_counts_f64`]).
    ///
    /// # Errors
    /// As [`Policy::observe_counts_labelled`].
    pub fn observe_counts_f64_labelled<S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[f64],
        events: &[f64],
        totals: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<Step, Error> {
        self.observe_count_column(arm, metric, at, events, totals, labels)
    }

    /// Checks a column of count samples as [`Policy::observe_counts_labelled`] does,
    /// changing nothing (see [`Policy::check_value_column`]).
    pub(crate) fn check_count_column<T: Millis, N: Count, S: AsRef<str>>(
        &self,
        arm: &str,
        metric: &str,
        at: &[T],
        events: &[N],
        totals: &[N],
        labels: &Labels<'_, S>,
    ) -> Result<Option<(usize, bool)>, Error> {
        same_length(at.len(), events.len(), "events")?;
        same_length(at.len(), totals.len(), "total")?;
        let cached = self.check_labels(labels, at.len())?;
        let Some(&first) = at.first() else {
            return Ok(None);
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
        Ok(Some((m, cached)))
    }

    fn observe_count_column<T: Millis, N: Count, S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[T],
        events: &[N],
        totals: &[N],
        labels: &Labels<'_, S>,
    ) -> Result<Step, Error> {
        Ok(
            match self.check_count_column(arm, metric, at, events, totals, labels)? {
                Some(checked) => self.record_count_column(checked, arm, at, events, totals, labels),
                None => Out::default().into_step(self.state.now),
            },
        )
    }

    /// Records a count column [`Policy::check_count_column`] accepted, or any run of its
    /// rows (see [`Policy::record_value_column`]).
    pub(crate) fn record_count_column<T: Millis, N: Count, S: AsRef<str>>(
        &mut self,
        (m, cached): (usize, bool),
        arm: &str,
        at: &[T],
        events: &[N],
        totals: &[N],
        labels: &Labels<'_, S>,
    ) -> Step {
        let mut out = Out::default();
        let scopes = self.row_scopes(labels, at.len(), cached);
        let rows = CountRows { at, events, totals };
        self.record_column(arm, m, at, rows, scopes, &mut out);
        self.debug_validate();
        out.into_step(self.state.now)
    }

    /// Checks label columns of `rows` rows: their lengths, their codes, and the labels
    /// rows use (as `observe` checks a sample's), naming the first row refused.
    ///
    /// Returns whether the policy's [`CategoryCache`] holds the categories of the
    /// columns that form scopes (they were checked when it took them).
    fn check_labels<S: AsRef<str>>(
        &self,
        labels: &Labels<'_, S>,
        rows: usize,
    ) -> Result<bool, Error> {
        let max = self.config.limits.label_len_max;
        let by = self
            .plan
            .scopes
            .as_ref()
            .map_or(&[][..], |s| s.by.as_slice());
        let cached = !by.is_empty()
            && by_categories(by, labels).is_some_and(|columns| self.columns.holds(&columns));
        for (label, name, column) in labels.named() {
            let Some(c) = column else {
                continue;
            };
            same_length(rows, c.codes.len(), name)?;
            // A code is -1 or below the number of categories: with one added, as u32, it
            // is at most that number (one branch-free pass; -2 and below wrap to 2^31 or
            // more, and no code is an index beyond 2^31 - 1).
            let n = c.categories.len();
            let bound = n.min(1 << 31) as u32;
            let fine = |code: i32| code.wrapping_add(1) as u32 <= bound;
            if !c.codes.iter().fold(true, |ok, &code| ok & fine(code))
                && let Some((i, code)) = c.codes.iter().enumerate().find(|(_, c)| !fine(**c))
            {
                return Err(Error::new(
                    ErrorCode::InvalidValue,
                    format!("{name}[{i}]"),
                    format!("code {code} is neither -1 nor the index of one of {n} categories"),
                ));
            }
            if cached && by.contains(&label) {
                continue;
            }
            // Every category is checked, but refused only if a row has it.
            if c.categories
                .iter()
                .all(|l| l.as_ref().len() as u64 <= u64::from(max))
            {
                continue;
            }
            let refused: Vec<Option<Error>> = c
                .categories
                .iter()
                .map(|l| check_label(l.as_ref(), max, name, true).err())
                .collect();
            if refused.iter().any(Option::is_some) {
                let first = c.codes.iter().enumerate().find_map(|(i, &code)| {
                    let e = refused.get(usize::try_from(code).ok()?)?.as_ref()?;
                    Some(row(e.clone(), i))
                });
                if let Some(e) = first {
                    return Err(e);
                }
            }
        }
        Ok(cached)
    }

    /// The columns of checked `labels` that form the policy's scopes: `None` without
    /// `scopes` in the config, or when a `by` label has no column (no row has a scope).
    ///
    /// The `by` columns' categories go into the policy's [`CategoryCache`] unless it
    /// holds them already (`cached`), when there are at most twice `scopes_max` of them
    /// (room for as many as the overflow scope takes), each within `label_len_max`, and
    /// at most [`CACHE_KEYS_PER_SCOPE`] · `scopes_max` keys (tuples of their codes).
    fn row_scopes<'a, S: AsRef<str>>(
        &mut self,
        labels: &Labels<'a, S>,
        rows: usize,
        mut cached: bool,
    ) -> Option<RowScopes<'a, S>> {
        let plan = self.plan.scopes.as_ref()?;
        let named = labels.named();
        let mut by = Vec::with_capacity(plan.by.len());
        let mut keys: u128 = 1;
        for label in &plan.by {
            let (_, _, column) = named.iter().find(|(l, ..)| l == label)?;
            let column = (*column)?;
            by.push((*label, column, keys));
            // At most 2^31 categories count (codes are i32), so three labels' keys stay
            // below 2^93.
            keys *= column.categories.len().min(1 << 31) as u128;
        }
        if !cached {
            let max = u64::from(self.config.limits.label_len_max);
            let columns: SmallVec<[&[S]; 3]> = by.iter().map(|(_, c, _)| c.categories).collect();
            let labels: u64 = columns.iter().map(|c| c.len() as u64).sum();
            if labels <= 2 * u64::from(plan.max)
                && keys <= u128::from(CACHE_KEYS_PER_SCOPE * u64::from(plan.max))
                && (columns.iter().copied().flatten()).all(|c| c.as_ref().len() as u64 <= max)
            {
                self.columns.hold(&columns, keys as usize);
                cached = true;
            }
        }
        let ids = if cached {
            Ids::Dense(Vec::new())
        } else if keys <= DENSE_KEYS_MAX.max(rows as u128) {
            Ids::Dense(vec![UNSEEN; keys as usize])
        } else {
            Ids::Sparse(BTreeMap::new())
        };
        let tier = if plan.by.contains(&ScopeLabel::Tier) {
            None
        } else {
            named
                .iter()
                .find(|(l, ..)| *l == ScopeLabel::Tier)
                .and_then(|(_, _, c)| *c)
        };
        Some(RowScopes {
            by,
            ids,
            tier,
            probe: crate::scope::ScopeKey::default(),
            cached,
        })
    }

    /// Records validated column rows (`rows`, at times `at`) in runs that end at timer
    /// deadlines: the timers fire before the first row at or after them, exactly as
    /// when the rows come one by one, and each run goes into the window in one pass.
    /// With scopes, each row goes into its scope's windows and detectors as well.
    fn record_column<T: Millis, R: Rows, S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: usize,
        at: &[T],
        rows: R,
        mut scopes: Option<RowScopes<'_, S>>,
        out: &mut Out,
    ) {
        let shape = self.plan.shapes[metric];
        // The cache's scratch, taken for the call (and put back).
        let mut scratch = match scopes {
            Some(_) => core::mem::take(&mut self.columns.scratch),
            None => Scratch::default(),
        };
        let mut i = 0;
        while let Some(t) = at.get(i).map(|t| t.ms()) {
            if let Some(s) = scopes.as_mut() {
                // As `observe` does: a new scope is numbered before the timers due at
                // its first sample's time fire.
                let _ = s.scope(self, i);
            }
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
                rows.record(w, shape, i..end, &mut scratch.tally);
            }
            if !self.plan.observers[metric].is_empty() {
                self.observe_samples(arm, metric, None, |d, side| rows.feed(d, side, i..end));
            }
            if let Some(s) = scopes.as_mut() {
                self.record_scoped(arm, metric, rows, s, &mut scratch, i..end);
            }
            self.state.now = at[end - 1].ms();
            i = end;
        }
        if scopes.is_some() {
            self.columns.scratch = scratch;
        }
    }

    /// Records a run of rows (one between timers) in their scopes' windows and
    /// detectors, numbering new scopes in row order (also for an arm that is not live,
    /// as `observe` does).
    ///
    /// The rows are grouped by scope, a chunk of at most [`column_chunk_rows`] at a time (a
    /// counting sort): each row's scope in row order, then the rows of each scope
    /// counted, then each row's index put at its scope's next place, so that each
    /// scope's rows lie together in row order. A scope's window and detectors take
    /// them in the same order as row by row, and scopes share nothing, so the order of
    /// the scopes (that of their first row) does not matter; nor do the chunks, taken
    /// in row order.
    fn record_scoped<R: Rows, S: AsRef<str>>(
        &mut self,
        arm: &str,
        metric: usize,
        rows: R,
        scopes: &mut RowScopes<'_, S>,
        scratch: &mut Scratch,
        run: Range<usize>,
    ) {
        let shape = self.plan.shapes[metric];
        let live = self.state.arms.iter().position(|a| a.version == arm);
        // The gates whose detectors take these rows, as `observe_samples` picks them.
        let detectors = match self.detector_side(arm, metric) {
            Some((phase, side)) => {
                let gates = &self.config.gates;
                let observers = self.plan.observers[metric].iter().copied();
                let running: Vec<usize> = observers
                    .filter(|&g| gates[g].phases.contains(&phase))
                    .collect();
                Some((side, running))
            }
            None => None,
        };
        let chunk_rows = column_chunk_rows(self.config.limits.scopes_max) as usize;
        let mut from = run.start;
        while from < run.end {
            let chunk = from..run.end.min(from.saturating_add(chunk_rows));
            from = chunk.end;
            let n = chunk.len();
            // Each row's scope, numbering new ones.
            grow(&mut scratch.scope, n);
            let scope = &mut scratch.scope[..n];
            scopes.scopes_of(self, chunk.clone(), scope);
            // Each scope's rows, and the scopes in the order of their first row.
            let counts = &mut self.columns.counts;
            grow(counts, self.state.scopes.len());
            scratch.scopes.clear();
            // At most one place per scope (counted with the scope's grouping entry).
            scratch.scopes.reserve_exact(counts.len());
            for &s in &*scope {
                if let Some(n) = counts.get_mut(s as usize) {
                    if *n == 0 {
                        scratch.scopes.push(s);
                    }
                    *n += 1;
                }
            }
            // Each scope's first place.
            let mut places = 0;
            for &s in &scratch.scopes {
                if let Some(n) = counts.get_mut(s as usize) {
                    (*n, places) = (places, places + *n);
                }
            }
            // Each row to its scope's next place (a counting sort).
            grow(&mut scratch.order, places as usize);
            for (r, &s) in (0u32..).zip(&*scope) {
                if let Some(next) = counts.get_mut(s as usize) {
                    if let Some(place) = scratch.order.get_mut(*next as usize) {
                        *place = r;
                    }
                    *next += 1;
                }
            }
            // Each scope's rows into its window and detectors; its count back to zero
            // (its next place is now the end of its rows).
            let (order, groups) = (
                core::mem::take(&mut scratch.order),
                core::mem::take(&mut scratch.scopes),
            );
            let mut start = 0;
            for &s in &groups {
                let end = self
                    .columns
                    .counts
                    .get_mut(s as usize)
                    .map_or(start, |n| core::mem::take(n) as usize);
                let mine = order.get(start..end).unwrap_or_default();
                start = end;
                // A scope the ladder routed back no longer counts.
                if self.is_routed_back(s) {
                    continue;
                }
                if let Some(w) = live.and_then(|a| self.scoped_window_at(a, s, metric)) {
                    rows.record_rows(w, shape, chunk.start, mine, scratch);
                }
                if let Some((side, gates)) = &detectors
                    && let Some(states) = self.state.scopes.get_mut(s as usize)
                {
                    for &gate in gates {
                        let d = &mut states.gates[gate].detector;
                        rows.feed_rows(d, *side, chunk.start, mine);
                    }
                }
            }
            (scratch.order, scratch.scopes) = (order, groups);
        }
    }

    /// `scoped_window_mut` for the arm at index `arm` (found once per run).
    fn scoped_window_at(&mut self, arm: usize, scope: u32, metric: usize) -> Option<&mut Window> {
        let shapes = &self.plan.shapes;
        let arm = self.state.arms.get_mut(arm)?;
        let s = scope as usize;
        if arm.scoped.len() <= s {
            arm.scoped.resize(s + 1, None);
        }
        let windows =
            arm.scoped[s].get_or_insert_with(|| shapes.iter().map(|s| Window::new(*s)).collect());
        windows.get_mut(metric)
    }
}
