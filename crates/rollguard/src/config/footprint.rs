//! The cost model: a config's worst-case state size and work per input.
//!
//! Memory and work are fixed by the config, not by the number or rate of inputs, but a
//! config can fix them very high (32 metrics × 1024 buckets of 4 098 histogram bins is
//! half a gigabyte per arm). [`PolicyConfig::footprint`] computes both from the config
//! alone, and [`PolicyConfig::validate`] refuses a config whose figures exceed its
//! `limits` (`state_too_large`, `too_much_work`).
//!
//! The model is conservative and simple, not exact: it counts the bytes of every field
//! as on a 64-bit target (so the figures are the same on every platform, and wasm32's
//! smaller pointers only make them more conservative) and takes every list in the state
//! at its config bound. Allocator overhead is not counted. A test checks the estimate
//! against the allocated capacity of a real worst-case state.

use serde::{Deserialize, Serialize};

use crate::config::limits::{ANALYSIS_CATCHUP_MAX, COMPONENTS_MAX};
use crate::config::{MetricKind, Phase, PolicyConfig, Rule};
use crate::stats::histogram::HistShape;

/// A config's worst case: the most state it can hold and the most work one input can
/// cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Footprint {
    /// Bytes of state (windows, registry, gates, breaker, timers) at the config's
    /// bounds: every window of the three arms that can be live at once, a full registry
    /// of versions with the most components and the longest labels, a full breaker
    /// history. The config itself and the compiled plan are not counted.
    pub state_bytes_max: u64,
    /// Window reads by gates one input can cause: [`ANALYSIS_CATCHUP_MAX`] evaluation
    /// rounds (a tick long after its deadline) of the phase with the most gates, each
    /// gate reading its subject's window and, for `vs_baseline`, the baseline's window
    /// twice (live and as it stood at promotion). A batch or column counts per sample.
    pub evaluations_per_input_max: u64,
    /// Window cells (bucket slots and histogram bins) those reads visit, with the
    /// per-bucket scan that dates a gate's first failure: the work behind the reads.
    /// A `mann_whitney` gate adds the samples it classifies, times the passes of its
    /// sort and searches.
    pub cells_read_per_input_max: u64,
}

/// Arms that can be live at once: stable, candidate and, during a rollback, its target.
pub(crate) const ARMS_MAX: u64 = 3;
/// A `Vec` or `String` header.
pub(crate) const HEADER: u64 = 24;
/// A window: its buckets' `Vec` and a value metric's histograms' `Vec`.
pub(crate) const WINDOW_BYTES: u64 = 2 * HEADER;
/// A value metric's bucket: epoch, count, sum, min and max.
pub(crate) const VALUE_SLOT_BYTES: u64 = 5 * 8;
/// A count metric's bucket: epoch, count, events and total.
pub(crate) const COUNT_SLOT_BYTES: u64 = 4 * 8;
/// A bucket's histogram without its cells: the cells' `Vec`, the bin count and flags.
pub(crate) const HIST_BYTES: u64 = HEADER + 8;
/// One histogram cell. An arm's overall window keeps its bins dense (4 bytes per bin); a
/// scope's keeps at most `scopes.histogram_bins_max` sparse entries of 4 bytes (and
/// never more than one per bin), which is what the model counts.
pub(crate) const BIN_BYTES: u64 = 4;
/// A registered version without its strings and components: id, digest, components
/// map, stage, validation, sequence numbers.
pub(crate) const VERSION_BYTES: u64 = 3 * HEADER + 8 + 24 + 8 + 16;
/// A component's share of a B-tree node (nodes hold 5 to 11 entries of two `String`s
/// plus edges: at most 640 bytes per 5 entries), without the strings' text.
pub(crate) const COMPONENT_BYTES: u64 = 128;
/// A B-tree's root node, which may hold a single entry.
pub(crate) const MAP_ROOT_BYTES: u64 = 640;
/// A gate's state: persistence and its detector's fixed part.
pub(crate) const GATE_BYTES: u64 = 160;
/// One traffic split an `error_attribution` detector keeps.
pub(crate) const SPLIT_BYTES: u64 = 24;
/// A `sequential_mean` detector's state (boxed).
pub(crate) const MEAN_TEST_BYTES: u64 = 224;
/// A `cusum` or `ewma` detector's state (boxed): its settings, the reference and the
/// co-moment of the samples it is learned from.
pub(crate) const CHART_BYTES: u64 = 256;
/// A `sequential_quantile` detector's fixed part (boxed); its two histograms add
/// [`QUANTILE_BIN_BYTES`] per bin of the metric's histogram.
pub(crate) const QUANTILE_TEST_BYTES: u64 = 160;
/// One bin of a `sequential_quantile` histogram (a cumulative count).
pub(crate) const QUANTILE_BIN_BYTES: u64 = 8;
/// A `mann_whitney` detector's fixed part (boxed), without its samples.
pub(crate) const RANK_TEST_BYTES: u64 = 96;
/// Cells a `mann_whitney` evaluation visits per kept sample: the sort (log2 of the most
/// samples), four order-statistic searches of at most 64 passes over both arms, and
/// the two passes of outlier removal (the sorted copy and the arm's own order).
pub(crate) const RANK_CELLS_PER_SAMPLE: u64 = 4 * 64 + 16 + 2;
/// A `drift` detector's fixed part (boxed): its binning; its two count vectors are
/// added per bin.
pub(crate) const DRIFT_BYTES: u64 = 32;
/// One acknowledged weight change a rollout keeps for session pins (at most one per
/// step of a canary strategy, and of a gradual rollback, plus one).
pub(crate) const WEIGHT_CHANGE_BYTES: u64 = 16;
/// A gradual rollback's fixed fields: weights, step, times, flags.
pub(crate) const GRADUAL_BYTES: u64 = 48;
/// The state's fixed fields: times, ids, rollout, pending action, halt, breaker header.
pub(crate) const STATE_FIXED_BYTES: u64 = 1024;
/// Labels held outside the registry and arms: the four aliases, the rollout's version,
/// the kickoff, and `from`/`to` of the pending action and of the halted one.
pub(crate) const LABELS_FIXED: u64 = 10;
/// A recorded side effect besides its strings (version, id, undo descriptor): its
/// time and flag, with the list's share of alignment.
pub(crate) const EFFECT_BYTES: u64 = 16;
/// A scope's key besides its label strings: three optional labels' headers and the
/// overflow flag, with the id it maps to in the index.
pub(crate) const SCOPE_KEY_BYTES: u64 = 32;
/// Keys (tuples of the `by` columns' codes) per scope the column cache keeps the scope
/// ids of at most: as many as two tiers of each agent of a tenant, or the keys of
/// scopes by tenant and tier when the overflow scope takes as many again.
pub(crate) const CACHE_KEYS_PER_SCOPE: u64 = 8;
/// A scope's grouping entries in the column cache: its count of rows, and its place in
/// the list of a chunk's scopes (a `u32` each).
pub(crate) const CACHE_GROUP_BYTES: u64 = 8;
/// The most rows of a column call grouped by scope at a time (see
/// [`column_chunk_rows`]).
pub(crate) const COLUMN_CHUNK_ROWS_MAX: u64 = 1 << 16;
/// A row's scratch in the column cache: its scope id, and its index in the order of
/// the scopes.
pub(crate) const COLUMN_SCRATCH_ROW_BYTES: u64 = 2 * 4;
/// Rows of a column call grouped by scope at a time, with at most `scopes_max` scopes:
/// 64 per scope (a scope's rows go into its window together, so more rows per scope
/// cost less per row: a histogram's entries are visited once per run), at least 1024
/// and at most [`COLUMN_CHUNK_ROWS_MAX`]. The column cache keeps scratch for this many.
pub(crate) fn column_chunk_rows(scopes_max: u32) -> u64 {
    (64 * u64::from(scopes_max)).clamp(1 << 10, COLUMN_CHUNK_ROWS_MAX)
}

/// Rows of a scope gathered at a time for its window, each a time and two numbers (a
/// value, or events and total).
pub(crate) const COLUMN_GATHER_ROWS: u64 = 256;
/// An arm's optional windows of one scope, besides the windows.
pub(crate) const OPTION_BYTES: u64 = 8;
/// Cells a window read visits per bucket besides its bins: the live-slot filter, the
/// sort by epoch (log2 of the most buckets) and the merge.
pub(crate) const READ_CELLS_PER_BUCKET: u64 = 12;

impl PolicyConfig {
    /// This config's worst-case state size and work per input (see [`Footprint`]).
    ///
    /// The figures are meaningful for a config whose other fields validate; for any
    /// other config they are still computed, without panicking.
    pub fn footprint(&self) -> Footprint {
        let label = u64::from(self.limits.label_len_max);
        let string = |len: u64| HEADER.saturating_add(len);

        // Windows: per metric, its buckets, their histogram bins when a quantile gate
        // reads the metric, and a bucket's bytes besides the bins.
        let windows: Vec<(u64, u64, u64)> = self
            .metrics
            .iter()
            .map(|m| {
                let quantiles = self
                    .gates
                    .iter()
                    .any(|g| g.metric == m.name && g.stat.quantile().is_some());
                let bins = if quantiles && m.kind == MetricKind::Value {
                    u64::from(HistShape::new(m.histogram_range).len())
                } else {
                    0
                };
                let slot = match (m.kind, bins) {
                    (MetricKind::Count, _) => COUNT_SLOT_BYTES,
                    (MetricKind::Value, 0) => VALUE_SLOT_BYTES,
                    (MetricKind::Value, _) => VALUE_SLOT_BYTES + HIST_BYTES,
                };
                (u64::from(m.buckets), bins, slot)
            })
            .collect();
        // An arm's windows, each bucket with at most `bins` histogram cells.
        let arm_of = |bins: &dyn Fn(u64) -> u64| {
            windows
                .iter()
                .fold(string(label) + HEADER, |acc, (b, h, slot)| {
                    let slot = slot.saturating_add(bins(*h).saturating_mul(BIN_BYTES));
                    acc.saturating_add(WINDOW_BYTES.saturating_add(b.saturating_mul(slot)))
                })
        };
        let arm = arm_of(&|h| h);

        let component = COMPONENT_BYTES + 2 * label;
        let version = (VERSION_BYTES + 2 * label)
            .saturating_add(MAP_ROOT_BYTES + u64::from(COMPONENTS_MAX) * component);
        let registry = HEADER + 8 + u64::from(self.limits.versions_max).saturating_mul(version);

        // The histogram bins of a metric, for the detectors that keep their own.
        let bins_of = |metric: &str| {
            self.metrics
                .iter()
                .position(|m| m.name == metric)
                .and_then(|i| windows.get(i))
                .map_or(0, |w| w.1)
        };
        let splits = HEADER + SPLIT_BYTES * self.strategy.shares().len() as u64;
        let weight_steps = match &self.strategy {
            crate::config::Strategy::Canary { steps, .. } => steps.len() as u64,
            _ => 0,
        };
        // A gradual rollback adds one per step, and the stage's weight set again after
        // it stops; its state names each gate at most once (tripped overall or only in
        // scopes when it began).
        let (gradual_weights, gradual) = match &self.safety.gradual_rollback {
            Some(g) => (
                g.steps.len() as u64 + 1,
                (GRADUAL_BYTES + 2 * HEADER)
                    .saturating_add((self.gates.len() as u64).saturating_mul(string(label))),
            ),
            None => (0, 0),
        };
        let weights = HEADER + WEIGHT_CHANGE_BYTES * (weight_steps + gradual_weights);
        let gates_bytes = |gates: &mut dyn Iterator<Item = &crate::config::GateConfig>| {
            gates.fold(HEADER, |acc, g| {
                let detector = match g.rule {
                    crate::config::Rule::ErrorAttribution { .. } => splits,
                    crate::config::Rule::SequentialMean { .. } => MEAN_TEST_BYTES,
                    crate::config::Rule::Cusum { .. } | crate::config::Rule::Ewma { .. } => {
                        CHART_BYTES
                    }
                    crate::config::Rule::SequentialQuantile { .. } => {
                        let bins = bins_of(&g.metric);
                        QUANTILE_TEST_BYTES.saturating_add(
                            (2 * HEADER)
                                .saturating_add(bins.saturating_mul(2 * QUANTILE_BIN_BYTES)),
                        )
                    }
                    // Both arms' samples of an interval, at most `samples_max` each.
                    crate::config::Rule::MannWhitney { samples_max, .. } => {
                        RANK_TEST_BYTES + 2 * 8 * u64::from(samples_max)
                    }
                    crate::config::Rule::Drift { .. } => {
                        DRIFT_BYTES + 2 * (HEADER + 8 * u64::from(g.rule.drift_bins()))
                    }
                    _ => 0,
                };
                acc.saturating_add(GATE_BYTES + detector)
            })
        };
        let gates = gates_bytes(&mut self.gates.iter());
        // A scope's gates: the largest of the plain ones and each tier's.
        let tier_gates = self
            .scopes
            .iter()
            .flat_map(|sc| sc.tiers.keys())
            .map(|tier| {
                let gates: Vec<_> = (0..self.gates.len())
                    .filter_map(|i| self.tier_gate(tier, i))
                    .collect();
                gates_bytes(&mut gates.iter())
            });
        let scope_gates = tier_gates.fold(gates, u64::max);
        let breaker = HEADER + 8 * u64::from(self.safety.breaker.max_rollbacks);
        // Recorded side effects: two labels and the undo descriptor, kept as compact
        // JSON text of at most `text_len_max` bytes.
        let effect = (EFFECT_BYTES + 2 * string(label))
            .saturating_add(string(u64::from(self.limits.text_len_max)));
        let effects =
            HEADER.saturating_add(u64::from(self.limits.effects_max).saturating_mul(effect));
        // Scopes: each with its key (in the state and in the index by key), its gates
        // and, on every live arm, a window per metric.
        let scopes_max = match self.scopes {
            Some(_) => u64::from(self.limits.scopes_max),
            None => 0,
        };
        // The key twice (list and index) and the scope's tier.
        let key = 2 * (SCOPE_KEY_BYTES + 3 * string(label)) + string(label);
        // A scope's buckets keep at most `histogram_bins_max` cells of their histogram.
        let cells_max = self
            .scopes
            .as_ref()
            .map_or(0, |s| u64::from(s.histogram_bins_max));
        let scoped_arm = arm_of(&|h| h.min(cells_max))
            .saturating_sub(string(label))
            .saturating_add(OPTION_BYTES);
        let scope = key
            .saturating_add(scope_gates)
            .saturating_add(ARMS_MAX.saturating_mul(scoped_arm));
        // A pending `route_back` and one a `resume` would retry each name at most every
        // scope (the ladder's routed-back flag fits in a scope's padding).
        let laddered = self.scopes.as_ref().is_some_and(|s| s.ladder.is_some());
        let route_backs = if laddered { 2 } else { 0 };
        // The scope ids of the scope columns' keys kept across calls: at most two
        // categories per scope (labels), at most `CACHE_KEYS_PER_SCOPE` keys per scope
        // (an id each), and a grouping entry per scope; the scratch of one chunk of
        // rows; and that of tallying a scope's run of values into its histogram (a
        // count per bin, two lists of at most `histogram_bins_max` cells).
        let bins_max = windows.iter().map(|w| w.1).max().unwrap_or(0);
        let tally = (3 * HEADER).saturating_add(4 * (bins_max + 2 * bins_max.min(cells_max)));
        let cache = (11 * HEADER)
            .saturating_add(
                scopes_max.saturating_mul(
                    2 * string(label) + 4 * CACHE_KEYS_PER_SCOPE + CACHE_GROUP_BYTES,
                ),
            )
            .saturating_add(column_chunk_rows(self.limits.scopes_max) * COLUMN_SCRATCH_ROW_BYTES)
            .saturating_add(COLUMN_GATHER_ROWS * 3 * 8)
            .saturating_add(tally);
        let scopes = scopes_max
            .saturating_mul(
                scope.saturating_add(route_backs * (SCOPE_KEY_BYTES + 3 * string(label))),
            )
            .saturating_add(if scopes_max > 0 { cache } else { 0 });
        let state_bytes_max = [
            ARMS_MAX.saturating_mul(arm),
            scopes,
            registry,
            gates,
            breaker,
            effects,
            weights,
            gradual,
            STATE_FIXED_BYTES,
            LABELS_FIXED * string(label),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add);

        // Work: the phase whose gates read the most, times the catch-up rounds.
        let (mut reads_max, mut cells_max) = (0u64, 0u64);
        for phase in [
            Phase::Shadow,
            Phase::Preview,
            Phase::Canary,
            Phase::Bake,
            Phase::Steady,
        ] {
            let (mut reads, mut cells) = (0u64, 0u64);
            for g in self.gates.iter().filter(|g| g.phases.contains(&phase)) {
                // A `mann_whitney` evaluation also sorts and searches both arms' samples
                // of the interval (counted in every round, though it empties them).
                if let Rule::MannWhitney { samples_max, .. } = g.rule {
                    cells = cells.saturating_add(
                        (2 * u64::from(samples_max)).saturating_mul(RANK_CELLS_PER_SAMPLE),
                    );
                }
                let (b, h, _) = self
                    .metrics
                    .iter()
                    .position(|m| m.name == g.metric)
                    .and_then(|i| windows.get(i).copied())
                    .unwrap_or((0, 0, 0));
                let n = match g.rule {
                    Rule::VsBaseline { .. } => 3,
                    _ => 1,
                };
                // A sequential_quantile detector scans its two histograms.
                let scan = match g.rule {
                    Rule::SequentialQuantile { .. } => 2 * h,
                    _ => 0,
                };
                let read = b.saturating_mul(h.saturating_add(READ_CELLS_PER_BUCKET));
                // Dating a first failure reads each bucket alone, finding it among all.
                let onset = b.saturating_mul(
                    (2 * b)
                        .saturating_add(h)
                        .saturating_add(READ_CELLS_PER_BUCKET),
                );
                reads = reads.saturating_add(n);
                cells = cells.saturating_add(scan);
                cells = cells
                    .saturating_add(read.saturating_mul(n))
                    .saturating_add(onset);
            }
            reads_max = reads_max.max(reads);
            cells_max = cells_max.max(cells);
        }
        // Every round judges the gates overall and in every scope.
        let rounds = ANALYSIS_CATCHUP_MAX.saturating_mul(1 + scopes_max);
        Footprint {
            state_bytes_max,
            evaluations_per_input_max: reads_max.saturating_mul(rounds),
            cells_read_per_input_max: cells_max.saturating_mul(rounds),
        }
    }
}
