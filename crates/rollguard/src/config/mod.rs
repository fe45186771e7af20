//! The policy document: versions, metrics, gates, strategy and safety settings.
//!
//! A config is validated once, in [`Policy::new`](crate::Policy::new); after that no
//! decision path can fail on it. Every error names the offending field's JSON path.

pub(crate) mod footprint;
pub(crate) mod kayenta;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, ensure};
pub use crate::stats::histogram::HistogramRange;

/// The schema version of configs, inputs, steps and scenarios this build reads and writes
/// (snapshots have their own: [`SNAPSHOT_FORMAT_VERSION`](crate::SNAPSHOT_FORMAT_VERSION)).
pub const FORMAT_VERSION: u32 = 1;

/// Hard ceilings on list sizes, whatever the config asks for: they bound memory and
/// the cost of one step.
pub mod limits {
    /// Metrics per policy.
    pub const METRICS_MAX: u32 = 32;
    /// Gates per policy.
    pub const GATES_MAX: u32 = 64;
    /// Strategy steps.
    pub const STEPS_MAX: u32 = 64;
    /// Time buckets per rolling window.
    pub const BUCKETS_MAX: u32 = 1024;
    /// Components per version bundle.
    pub const COMPONENTS_MAX: u32 = 32;
    /// Versions the registry may be configured to hold.
    pub const VERSIONS_MAX: u32 = 1024;
    /// Fewest versions a registry may hold. With fewer than 7 (stable, candidate,
    /// previous, golden and the three most recently validated) registration can fail
    /// with `registry_full` rather than evict a version that must be kept.
    pub const VERSIONS_MIN: u32 = 4;
    /// Longest label (names, ids, digests, tenant) a config may allow.
    pub const LABEL_LEN_MAX: u32 = 4096;
    /// Octaves a quantile histogram may span.
    pub const OCTAVES_MAX: i32 = 128;
    /// Most histogram cells `scopes.histogram_bins_max` may keep per bucket: the bins
    /// of the widest histogram (`OCTAVES_MAX` × 32 and the two end bins).
    pub const HISTOGRAM_BINS_MAX: u64 = OCTAVES_MAX as u64 * 32 + 2;
    /// Largest magnitude of a sample value. No latency, score or cost comes near it, and
    /// it keeps every window sum finite (at most 2^53 samples of it).
    pub const VALUE_ABS_MAX: f64 = 1e100;
    /// Most gate evaluations one input runs to catch up with time (a tick long after its
    /// deadline); older ones are skipped and reported as `analysis_skipped`.
    pub const ANALYSIS_CATCHUP_MAX: u64 = 100;
    /// Most automated rollbacks the breaker may be set to count
    /// (`safety.breaker.max_rollbacks`): its history holds at most this many times.
    pub const BREAKER_ROLLBACKS_MAX: u32 = 100;
    /// Longest free text (an `action_failed` reason) a config may allow.
    pub const TEXT_LEN_MAX: u32 = 65_536;
    /// Highest `limits.state_bytes_max` a config may set (1 GiB).
    pub const STATE_BYTES_CEILING: u64 = 1 << 30;
    /// Highest `limits.evaluations_per_input_max` a config may set.
    pub const EVALUATIONS_CEILING: u64 = 10_000_000_000;
    /// Highest `limits.cells_read_per_input_max` a config may set.
    pub const CELLS_READ_CEILING: u64 = 1 << 40;
    /// Largest relative margin of a statistical gate (100: 101 times worse).
    pub const RELATIVE_MARGIN_MAX: f64 = 100.0;
    /// Largest prior weight of `error_attribution`, in events.
    pub const MIXING_EVENTS_MAX: f64 = 1e6;
    /// Smallest `mixing_scale` of `sequential_mean` and `reference_sd` of `cusum` (its
    /// square stays a normal float).
    pub const MIXING_SCALE_MIN: f64 = 1e-100;
    /// Largest `shift` of `cusum`, in reference deviations.
    pub const CUSUM_SHIFT_MAX: f64 = 100.0;
    /// Largest `arl0` of `cusum`, in samples.
    pub const CUSUM_ARL0_MAX: f64 = 1e15;
    /// Largest `threshold` of `cusum`, in reference deviations.
    pub const CUSUM_THRESHOLD_MAX: f64 = 100.0;
    /// Largest `clip` of `cusum` and `ewma`, in reference deviations.
    pub const CHART_CLIP_MAX: f64 = 1e6;
    /// Smallest `lambda` of `ewma` (below it the Markov chain that sets the limit needs
    /// more cells than a gate's start should spend).
    pub const EWMA_LAMBDA_MIN: f64 = 0.05;
    /// Largest `arl0` of `ewma`, in samples: the Markov chain that derives the limit
    /// loses precision as the run length nears 1/ε of a double (give `limit` for more).
    pub const EWMA_ARL0_MAX: f64 = 1e9;
    /// Most categories or bins of a `drift` gate (each arm keeps a count per bin).
    pub const DRIFT_BINS_MAX: u32 = 64;
    /// Largest `limit` of `ewma`, in the statistic's asymptotic deviations.
    pub const EWMA_LIMIT_MAX: f64 = 12.0;
    /// Most samples a `mann_whitney` gate keeps per arm and interval (`samples_max`):
    /// it bounds the snapshot and the sort and searches of one evaluation.
    pub const MW_SAMPLES_MAX: u32 = 10_000;
    /// Highest `confidence` of `mann_whitney`.
    pub const MW_CONFIDENCE_MAX: f64 = 0.999_999_999;
    /// Largest `tolerance` of `mann_whitney`.
    pub const MW_TOLERANCE_MAX: f64 = 100.0;
    /// Largest `outliers.factor` of `mann_whitney`.
    pub const MW_OUTLIER_FACTOR_MAX: f64 = 100.0;
    /// Most members of a `kayenta_score` gate.
    pub const KAYENTA_MEMBERS_MAX: u32 = 64;
    /// Most groups a `kayenta_score` member scores in, and most `group_weights`.
    pub const KAYENTA_GROUPS_MAX: u32 = 64;
    /// Highest `limits.effects_max` a config may set.
    pub const EFFECTS_MAX: u32 = 4096;
    /// Highest `limits.scopes_max` a config may set.
    pub const SCOPES_MAX: u32 = 100_000;
    /// Highest `agents_max` an [`AgentsConfig`](crate::AgentsConfig) may set.
    pub const AGENTS_MAX: u32 = 4096;
}

/// A complete policy: what is being rolled out, how it is judged and how it is kept safe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// A free-form name, echoed in nothing but kept in snapshots.
    #[serde(default)]
    pub name: String,
    /// The version bundles known at creation.
    pub versions: Vec<VersionSpec>,
    /// The version serving all traffic at creation; it must be validated.
    pub stable: String,
    /// A version to start rolling out at creation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// The metrics samples may carry.
    pub metrics: Vec<MetricConfig>,
    /// The gates that judge the candidate (and, in the `steady` phase, the stable version).
    #[serde(default)]
    pub gates: Vec<GateConfig>,
    /// How a candidate reaches all traffic.
    pub strategy: Strategy,
    /// When gates are evaluated.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Pauses for a human: timeout and what happens then.
    #[serde(default)]
    pub approval: ApprovalConfig,
    /// Cooldown, circuit breaker and action acknowledgement.
    #[serde(default)]
    pub safety: SafetyConfig,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Traffic assignment: how long a session keeps its arm (see `docs/assignment.md`).
    #[serde(default)]
    pub assignment: AssignmentConfig,
    /// Environment or model: whether a gate that judges the candidate alone checks the
    /// stable version before a rollback (see [`EnvironmentConfig`]). Left out of the
    /// serialized config while it is the default, so configs and snapshots written
    /// before it existed read and write the same.
    #[serde(default, skip_serializing_if = "EnvironmentConfig::is_default")]
    pub environment: EnvironmentConfig,
    /// Verdicts per tenant, tier or agent as well as overall (see [`ScopesConfig`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<ScopesConfig>,
}

/// Scoped verdicts: every gate judged per scope (the tuple of a sample's `by` labels)
/// as well as overall, each scope with its own windows, detector state and
/// persistence. A scope's tripped gate acts as the overall one does, and its reports
/// name the scope.
///
/// Statistical gates split their `alpha` between the overall verdict and the scopes,
/// so that the chance of any false failure of the gate, overall or in any scope,
/// stays within `alpha` (a union bound, valid for the e-values these gates test):
/// the overall verdict is judged at `alpha × (1 − alpha_share)` and each of the at
/// most `limits.scopes_max` scopes at `alpha × alpha_share / scopes_max`. The charts
/// (`cusum`, `ewma`) divide the false alarms their `arl0` allows in the same shares:
/// the overall chart runs at `arl0 / (1 − alpha_share)`, each scope's at
/// `arl0 / alpha_share` (scopes split the samples, so their alarms add up to one
/// chart's). Every report gives the level it was judged at (`alpha`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesConfig {
    /// The labels whose values form a scope, e.g. `["tenant"]` or `["tier", "agent"]`;
    /// each at most once.
    pub by: Vec<crate::scope::ScopeLabel>,
    /// The share of each statistical gate's `alpha` spent on the scopes, in (0, 1)
    /// (default 0.5).
    #[serde(default = "default_alpha_share")]
    pub alpha_share: f64,
    /// Fewest samples (or `total`) a scope's window read must hold before its gates
    /// judge it (default: each gate's own `samples_min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_min: Option<u64>,
    /// Per tier, how its scopes are judged instead: e.g. tier-1 tenants held to a
    /// tighter threshold. A scope's tier is its key's `tier` when scopes are formed by
    /// tier, else the `tier` label of the sample that created the scope.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[serde(deserialize_with = "crate::json::unique_map")]
    pub tiers: BTreeMap<String, TierOverride>,
    /// When gates tripped in scopes (and not overall) roll back; default: any one.
    /// The one-rung ladder `[{"rung": "rollback", "when": impact}]`; not with `ladder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    /// The graduated response to gates tripped in scopes (and not overall): rungs in
    /// the order of [`Rung`], each at most once, each with its trigger. At each
    /// evaluation the most severe rung whose `when` is met applies, once per rollout
    /// (rungs only escalate); without a `rollback` rung a scope's trip never rolls back
    /// (an overall trip always does). Not with `impact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Vec<LadderRung>>,
    /// Most histogram cells a bucket of a scope's window keeps (default 48, from 16 to
    /// 4 098). A bucket files each value in its own bin while it has used fewer bins
    /// than this; past it, the bucket halves its resolution (pairs of neighbouring bins
    /// become one cell, as UDDSketch collapses), so a scope's window stays within
    /// `histogram_bins_max` × 4 bytes per bucket whatever its values. Quantiles read
    /// from a bucket halved `k` times are within 2^k/64 relative error instead of 1/64.
    /// An arm's overall windows keep every bin.
    #[serde(
        default = "default_histogram_bins_max",
        skip_serializing_if = "is_default_histogram_bins_max"
    )]
    pub histogram_bins_max: u32,
}

/// One rung of the graduated-response ladder (`scopes.ladder`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderRung {
    /// What the rung does.
    pub rung: Rung,
    /// When it applies: the conditions of an impact rule, any one met; `{}` (the
    /// default) for any scope tripped.
    #[serde(default)]
    pub when: Impact,
}

/// The rungs of the graduated-response ladder, least severe first (their order in a
/// ladder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    /// Stop sending tenants new to the candidate to it (`pause_onboarding`).
    PauseOnboarding,
    /// Send the tripped scopes back to the stable version (`route_back`).
    RouteBack,
    /// Hold the candidate's weight and stop the stage timers until `resume` (`freeze`).
    Freeze,
    /// Roll back (`rollback`).
    Rollback,
}

impl Rung {
    /// The rung's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PauseOnboarding => "pause_onboarding",
            Self::RouteBack => "route_back",
            Self::Freeze => "freeze",
            Self::Rollback => "rollback",
        }
    }
}

/// An impact rule: gates tripped in scopes roll back when any of its conditions holds
/// (a tripped overall gate always does). Below it, the rollout holds at its step and
/// escalates once with `scoped_failure`, naming the scopes. A ladder rung's `when`
/// takes the same conditions, and there none at all (`{}`) means any scope tripped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Impact {
    /// A scope of one of these tiers tripped (tier-1 tenants first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// At least this many scopes tripped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_min: Option<u32>,
    /// The tripped scopes of one gate carry at least this share of the samples that
    /// gate judged overall, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_min: Option<f64>,
}

/// How the scopes of one tier are judged, where it differs from the other scopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TierOverride {
    /// Fewest samples a scope of this tier needs before its gates judge it (default:
    /// the scopes' `samples_min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_min: Option<u64>,
    /// Per gate name, what changes for this tier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[serde(deserialize_with = "crate::json::unique_map")]
    pub gates: BTreeMap<String, GateOverride>,
}

/// One gate's settings for the scopes of a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GateOverride {
    /// The rule in full, of the gate's own kind: its thresholds, margins or `alpha`
    /// for this tier (a statistical gate's `alpha` is then split as the gate's is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// The gate's `samples_min` for this tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_min: Option<u64>,
}

impl PolicyConfig {
    /// Gate `gate` as the scopes of `tier` are judged by it, before the split of
    /// `alpha`: the gate with the tier's overrides (its `samples_min`, then the
    /// tier's, then the gate override's), or `None` for a tier with none.
    pub(crate) fn tier_gate(&self, tier: &str, gate: usize) -> Option<GateConfig> {
        let scopes = self.scopes.as_ref()?;
        let t = scopes.tiers.get(tier)?;
        let mut g = self.gates.get(gate)?.clone();
        if let Some(n) = scopes.samples_min {
            g.samples_min = n;
        }
        if let Some(n) = t.samples_min {
            g.samples_min = n;
        }
        if let Some(o) = t.gates.get(&g.name) {
            if let Some(rule) = &o.rule {
                g.rule = rule.clone();
            }
            if let Some(n) = o.samples_min {
                g.samples_min = n;
            }
        }
        Some(g)
    }
}

fn default_alpha_share() -> f64 {
    0.5
}

fn default_histogram_bins_max() -> u32 {
    48
}

fn is_default_histogram_bins_max(n: &u32) -> bool {
    *n == default_histogram_bins_max()
}

/// An immutable version bundle: everything that moves together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// Unique id, e.g. `v42` or `support-agent@2026-11-02`.
    pub id: String,
    /// Content digest of the bundle, e.g. `sha256:…`.
    pub digest: String,
    /// Component name → reference: `model`, `prompt_template`, `agent_config`,
    /// `tool_schema`, or any other part that must move with them.
    #[serde(default, deserialize_with = "crate::json::unique_map")]
    pub components: BTreeMap<String, String>,
    /// Validated by a human (or known good at creation). Only validated versions are
    /// rollback targets; the most recently validated by a human is `golden`.
    #[serde(default)]
    pub validated: bool,
}

/// What a metric's samples carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// One number per sample: latency, a quality score, a cost.
    Value,
    /// `events` out of `total` per sample: errors out of requests.
    Count,
}

/// A metric and its rolling window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Name samples refer to.
    pub name: String,
    /// Value or count.
    pub kind: MetricKind,
    /// Length of the rolling window gates read; by default one analysis interval
    /// (`analysis.interval_ms`), so that consecutive evaluations judge disjoint data
    /// and `persistence.consecutive` counts independent measurements. Resolve it
    /// with [`PolicyConfig::window_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
    /// Number of fixed time buckets the window is kept in (default 10). An
    /// evaluation at time t reads exactly `[t − window_ms, t)` (evaluations fall on
    /// bucket boundaries).
    #[serde(default = "default_buckets")]
    pub buckets: u32,
    /// The value range quantiles are resolved in (value metrics only). Inside it a
    /// quantile is within 1/64 (1.5625 %) relative error; outside it, clamped to the
    /// window's exact minimum or maximum.
    #[serde(default)]
    pub histogram_range: HistogramRange,
}

fn default_buckets() -> u32 {
    10
}

/// A statistic of one rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Mean of values.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median (nearest rank, histogram resolved).
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// `events / total` of a count metric.
    Rate,
    /// Number of value samples, or `total` of a count metric.
    Count,
}

impl Stat {
    /// The quantile this stat reads, if it is one.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Self::P50 => Some(0.50),
            Self::P90 => Some(0.90),
            Self::P95 => Some(0.95),
            Self::P99 => Some(0.99),
            _ => None,
        }
    }

    fn fits(self, kind: MetricKind) -> bool {
        match self {
            Self::Count => true,
            Self::Rate => kind == MetricKind::Count,
            _ => kind == MetricKind::Value,
        }
    }
}

/// The rollout phases a gate can be evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The candidate sees mirrored traffic and serves nothing.
    Shadow,
    /// Blue-green pre-promotion analysis of the idle (preview) environment.
    Preview,
    /// The candidate serves a weight of traffic.
    Canary,
    /// After promotion, the new stable is watched against the previous one.
    Bake,
    /// No rollout: the stable version alone is watched (absolute rules only).
    Steady,
}

/// How a gate judges one statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Rule {
    /// Absolute bounds: fail when the statistic is below `min` or above `max`
    /// (Flagger's `thresholdRange`).
    Threshold {
        /// Lowest passing value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Highest passing value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Bounds relative to the same statistic of the baseline arm (stable, or the
    /// previous version after promotion). Every bound given applies.
    VsBaseline {
        /// Fail when candidate > baseline × `max_ratio` (e.g. 1.3 for p95).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ratio: Option<f64>,
        /// Fail when candidate < baseline × `min_ratio` (e.g. 0.95 for a quality score).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_ratio: Option<f64>,
        /// Fail when candidate > baseline + `max_increase` (e.g. 0.005 for error rate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_increase: Option<f64>,
        /// Fail when candidate < baseline − `max_decrease`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_decrease: Option<f64>,
        /// The smallest baseline the ratio bounds are taken of: they use
        /// max(baseline, `baseline_min`). A ratio of a zero baseline bounds nothing
        /// useful (one candidate error against none would be an infinite ratio), so
        /// without a floor a ratio bound is left out while the baseline is 0, and a
        /// rule with no other bound is then inconclusive. For an error rate, set it to
        /// the lowest rate worth comparing with (e.g. 0.001).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline_min: Option<f64>,
    },
    /// A sequential test of where errors come from (Lindon and Malek, NeurIPS 2022). Given
    /// that an error happened, the chance it came from the candidate depends only on
    /// the traffic split the policy set and on how much more error-prone the candidate
    /// is per request: load swings, incidents and bursts that hit both arms alike
    /// cancel out. An anytime-valid e-process (a Beta mixture, one-sided) fails the
    /// gate once the candidate's error rate is shown to exceed the stable version's by
    /// more than `margin`, with at most `alpha` chance of doing so for a candidate that
    /// does not, however often it is evaluated. For a count metric's `rate`, in the
    /// phases where the policy sets the split (`shadow`, `canary`).
    ErrorAttribution {
        /// The chance of failing a candidate whose error rate is within the margin,
        /// over the whole rollout (default 0.01).
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// How much worse than the stable version the candidate may be before the gate
        /// should fail: `{"relative": 0.1}` tests a ratio of error rates above 1.1
        /// (default: any increase). Only a relative margin applies to a ratio.
        #[serde(default, skip_serializing_if = "Margin::is_zero")]
        margin: Margin,
        /// The weight of the mixture's prior, in error events (default 10). Smaller
        /// favours large ratios, found in fewer events; larger favours small ratios.
        #[serde(default = "default_mixing_events")]
        mixing_events: f64,
    },
    /// An anytime-valid two-sample test of means (the mixture SPRT, one-sided): fails
    /// once the judged arm's mean is shown to be worse than the baseline's by more
    /// than `margin`, with at most `alpha` chance of doing so for one that is not,
    /// however often it is evaluated (asymptotically: the variance is estimated). For
    /// a value metric's `mean` (latency, cost, a quality score), in every phase with a
    /// baseline. `samples_min` is its burn-in: samples each arm needs first (at least 2).
    SequentialMean {
        /// The chance of failing a version whose mean is within the margin, over the
        /// whole phase (default 0.01).
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Which direction is worse: `higher` (latency, cost; the default) or `lower`
        /// (a quality score).
        #[serde(default)]
        worse: Worse,
        /// How much worse the judged mean may be: `{"absolute": 5}` in the metric's
        /// unit, or `{"relative": 0.05}` of the baseline's mean at the end of the
        /// burn-in (default: not worse at all).
        #[serde(default, skip_serializing_if = "Margin::is_zero")]
        margin: Margin,
        /// The regression size the test is tuned for, in the metric's unit (the
        /// mixture's scale τ). Default: the margin, or if that is 0 half the arms'
        /// pooled standard deviation at the end of the burn-in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mixing_scale: Option<f64>,
        /// Whether each arm's variance is widened for serial correlation between its
        /// consecutive samples (`adjust`, the default: by (1 + ρ)/(1 − ρ), ρ the arm's
        /// lag-1 autocorrelation, clipped to [0, 0.9]) or samples are taken as
        /// independent (`ignore`).
        #[serde(default, skip_serializing_if = "Autocorrelation::is_adjust")]
        autocorrelation: Autocorrelation,
    },
    /// An anytime-valid test of the judged version's per-request error rate against an
    /// absolute objective (a one-sided beta-binomial confidence sequence): fails once
    /// the rate is shown to exceed `max_rate`, with at most `alpha` chance of doing so
    /// for a version within it, however often it is evaluated. For a count metric's
    /// `rate`, in any phase (it needs no baseline).
    RateSlo {
        /// The objective: the highest acceptable errors per request, in (0, 1).
        max_rate: f64,
        /// The chance of failing a version within the objective, over the phase
        /// (default 0.01).
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// The prior's weight, in errors at the objective (default 10).
        #[serde(default = "default_mixing_events")]
        mixing_events: f64,
    },
    /// Page's CUSUM against the version's own reference, for the bake after a
    /// promotion and the steady phase (no second arm; the change time unknown). Each
    /// sample is standardised against the reference, given here or learned from the
    /// version's first `samples_min` samples; the gate fails once the cumulative sum of
    /// standardised excesses passes its threshold, and holds that failure for the
    /// phase. For a value metric's `mean`.
    Cusum {
        /// Which direction is worse (default `higher`).
        #[serde(default)]
        worse: Worse,
        /// The shift to detect fastest, in reference standard deviations (default 1;
        /// the chart's reference value k is half of it).
        #[serde(default = "default_shift")]
        shift: f64,
        /// The average number of samples between false alarms on an unchanged version,
        /// which sets the threshold (default 10 000 000: at 20 samples a second an
        /// hour is 72 000 samples, and 1 − exp(−72 000/10⁷) ≈ 0.7 % of unchanged
        /// versions alarm within it; set it from your sample rate and bake length).
        /// With a learned reference the threshold also allows for the reference
        /// mean's own error (2.5 standard errors of a mean of `samples_min` samples).
        #[serde(default = "default_arl0")]
        arl0: f64,
        /// The threshold h in reference deviations, instead of deriving it from `arl0`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// The reference mean, instead of learning it (with `reference_sd`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_mean: Option<f64>,
        /// The reference standard deviation, instead of learning it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_sd: Option<f64>,
        /// Whether the learned reference deviation is widened for serial correlation
        /// between consecutive samples (`adjust`, the default: by (1 + ρ)/(1 − ρ), ρ
        /// the reference samples' lag-1 autocorrelation, clipped to [0, 0.9], as
        /// `sequential_mean`) or samples are taken as independent (`ignore`). A given
        /// `reference_sd` is used as given.
        #[serde(default, skip_serializing_if = "Autocorrelation::is_adjust")]
        autocorrelation: Autocorrelation,
        /// Each standardised sample is winsorised at ± this many reference deviations
        /// before it enters the sum (default 3; `null`: not at all), so that heavy
        /// tails do not trip the chart; never below the shift (2k).
        #[serde(default = "default_clip", skip_serializing_if = "is_default_clip")]
        clip: Option<f64>,
    },
    /// An exponentially weighted moving average chart against the version's own
    /// reference (one-sided, reflected at the reference: Crowder and Hamilton), for the
    /// bake after a promotion and the steady phase, like `cusum`. Each sample is
    /// standardised against the reference (given here or learned from the first
    /// `samples_min` samples) and averaged with weight `lambda`; the gate fails once
    /// the average passes its limit, and holds that failure for the phase. A small
    /// `lambda` finds small lasting shifts and ignores isolated outliers; 1 is a
    /// Shewhart chart. For a value metric's `mean`.
    Ewma {
        /// Which direction is worse (default `higher`).
        #[serde(default)]
        worse: Worse,
        /// The weight of each new sample, in 0.05..=1 (default 0.05: the smallest, the
        /// most sensitive to small shifts; `cusum` covers shifts of a known size).
        #[serde(default = "default_lambda")]
        lambda: f64,
        /// The average number of samples between false alarms on an unchanged version,
        /// which sets the limit (default 10 000 000), as for `cusum`.
        #[serde(default = "default_arl0")]
        arl0: f64,
        /// The limit L in the average's asymptotic standard deviations
        /// (σ·sqrt(λ/(2−λ))), instead of deriving it from `arl0`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<f64>,
        /// The reference mean, instead of learning it (with `reference_sd`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_mean: Option<f64>,
        /// The reference standard deviation, instead of learning it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference_sd: Option<f64>,
        /// Serial correlation, as for `cusum` (default `adjust`).
        #[serde(default, skip_serializing_if = "Autocorrelation::is_adjust")]
        autocorrelation: Autocorrelation,
        /// The winsorising bound of standardised samples, as for `cusum` (default 3;
        /// `null`: none); never below twice the limit h, so that a large `lambda` can
        /// still alarm.
        #[serde(default = "default_clip", skip_serializing_if = "is_default_clip")]
        clip: Option<f64>,
    },
    /// An anytime-valid two-sample test of a quantile (the gate's `p50`/`p90`/`p95`/
    /// `p99`; Howard and Ramdas's quantile confidence sequences): fails once the
    /// judged arm's quantile is shown to be worse than the baseline's by more than
    /// `margin`, with at most `alpha` chance of doing so for one that is not, however
    /// often it is evaluated. For tail regressions that leave the mean and the median
    /// alone. Samples are counted in the metric's quantile histogram since the phase
    /// began; the bounds are taken at its bin edges, so its relative error (1/64) widens
    /// them rather than breaking the guarantee. In every phase with a baseline.
    /// `samples_min` is its burn-in: samples each arm needs first.
    SequentialQuantile {
        /// The chance of failing a version whose quantile is within the margin, over
        /// the whole phase (default 0.01); split evenly between the two arms' bounds.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Which direction is worse: `higher` (latency; the default) or `lower`.
        #[serde(default)]
        worse: Worse,
        /// How much worse the judged quantile may be: `{"relative": 0.1}` of the
        /// baseline's quantile, or `{"absolute": 20}` in the metric's unit (default:
        /// not worse at all).
        #[serde(default, skip_serializing_if = "Margin::is_zero")]
        margin: Margin,
        /// The weight of each arm's prior, in samples beyond the quantile (default 10).
        /// Smaller favours large regressions, found sooner; larger favours small ones.
        #[serde(default = "default_mixing_events")]
        mixing_events: f64,
    },
    /// Kayenta's per-interval judgement of a metric (NetflixACAJudge's
    /// `MannWhitneyClassifier`), for Kayenta users bringing their canary configs. At
    /// each evaluation, the samples each arm sent since the previous one (at most
    /// `samples_max`, the most recent) are compared by the two-sided Mann-Whitney U
    /// test with the Hodges-Lehmann estimate of the shift and Kayenta's confidence
    /// interval; the metric is High when the interval lies above `tolerance` × the
    /// estimate's size and the ratio of means is at least `allowed_increase`, Low
    /// symmetrically, else Pass. The gate fails when the classification is the worse
    /// direction. A fixed-horizon test repeated every interval, as in Kayenta: it
    /// does not bound the false-failure rate over a rollout the way the sequential
    /// kinds do. For a value metric's `mean`, in every phase with a baseline.
    /// `samples_min` is the fewest samples each arm needs in an interval.
    MannWhitney {
        /// Which classification fails the gate: `higher` (Kayenta's `increase`; the
        /// default), `lower` (`decrease`) or `either`.
        #[serde(default)]
        worse: Direction,
        /// The confidence level of the interval (Kayenta: 0.98).
        #[serde(default = "default_mw_confidence")]
        confidence: f64,
        /// The interval must clear this fraction of the estimate's size (Kayenta's
        /// tolerance: 0.25).
        #[serde(default = "default_mw_tolerance")]
        tolerance: f64,
        /// The effect size `allowed_increase` and `allowed_decrease` apply to
        /// (Kayenta's `effectSize.measure`): `mean_ratio` (the default), mean(judged)
        /// / mean(baseline), or `cles`, the common-language effect size P(judged >
        /// baseline) + ½·P(tie) = U / (n·m).
        #[serde(default, skip_serializing_if = "EffectSize::is_mean_ratio")]
        effect_size: EffectSize,
        /// The smallest effect size classified High (Kayenta's `allowedIncrease`;
        /// default 1 for `mean_ratio`, any increase, and 0.5 for `cles`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed_increase: Option<f64>,
        /// The largest effect size classified Low (`allowedDecrease`; default 1 for
        /// `mean_ratio`, 0.5 for `cles`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed_decrease: Option<f64>,
        /// Kayenta's IQR outlier removal (`outliers`): `{"strategy": "remove",
        /// "factor": 3.0}` drops, from each arm's samples of the interval before they
        /// are compared, those beyond the wider of Tukey's fences (quartiles ∓ factor ×
        /// IQR) and the 1st / 99th percentiles, with Kayenta's percentiles (Commons
        /// Math's, position p·(n + 1)). Default `keep`.
        #[serde(default, skip_serializing_if = "Outliers::is_keep")]
        outliers: Outliers,
        /// The most samples kept per arm and interval (the most recent; default 1000).
        #[serde(default = "default_mw_samples_max")]
        samples_max: u32,
    },
    /// Kayenta's composite judgement (NetflixACAJudge's `WeightedSumScorer` and the
    /// canary stage's thresholds) over earlier `mann_whitney` gates of the policy, its
    /// `members`, which must be `dry_run` (they report their classification, this gate
    /// acts). At each evaluation the members' labels of that evaluation give a score
    /// 0..=100: 0 when a critical member is not pass or half the scored members or more
    /// have no data, else the sum over groups of (pass / (pass + high + low +
    /// no_data_fail) × 100, or 100 for a group with none of those) × its weight / 100,
    /// where groups not in `group_weights` share 100 − Σ `group_weights` equally. The
    /// gate fails at or below `marginal` (Kayenta's interim judgements must be above
    /// it), is inconclusive below `pass` and passes from `pass` on, so a stage ends
    /// only on a judgement at or above `pass` (below it, the stage holds or asks for
    /// approval, as Argo's inconclusive Kayenta runs). When no scored member was
    /// evaluated or every one had no data, the verdict is `on_no_data` (inconclusive by
    /// default: Kayenta would score 0). `metric` and `stat` label the report only.
    KayentaScore {
        /// The member gates and their Kayenta settings, in order.
        members: Vec<KayentaMember>,
        /// Weights of named groups (Kayenta's `classifier.groupWeights`), summing to at
        /// most 100.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        group_weights: BTreeMap<String, f64>,
        /// Pass at or above this score (Kayenta's `scoreThresholds.pass`).
        pass: f64,
        /// Fail at or below this score (`scoreThresholds.marginal`).
        marginal: f64,
    },
    /// A shift in the distribution of a categorical or binned output between the
    /// arms (answer class, tool chosen, a score's histogram): the population
    /// stability index or the Jensen-Shannon distance between the judged arm's and
    /// the baseline's distributions over the phase, against a threshold. A size of
    /// change, not a test: it has no false-rollback guarantee, so give it enough
    /// `samples_min` (each arm's samples before it judges; the divergence between two
    /// samples of one distribution shrinks as 1/samples). For a value metric's `mean`
    /// (the samples' values are what is binned), in every phase with a baseline.
    Drift {
        /// `psi` (the default) or `js`.
        #[serde(default)]
        measure: Divergence,
        /// Fail above this divergence. Default: 0.25 for `psi` (the usual "significant
        /// shift"; 0.1 to 0.25 is "moderate"), 0.1 for `js`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// A categorical output: sample values are category ids 0..categories; any
        /// other value counts in one more bin, "other".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        categories: Option<u32>,
        /// A binned output: `count` equal bins over [`min`, `max`), plus one below and
        /// one above.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bins: Option<Bins>,
    },
}

fn default_mw_confidence() -> f64 {
    0.98
}
fn default_mw_tolerance() -> f64 {
    0.25
}
fn default_mw_samples_max() -> u32 {
    1000
}

/// A member of a `kayenta_score` gate: an earlier `mann_whitney` gate and its Kayenta
/// metric settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KayentaMember {
    /// The member gate's name.
    pub gate: String,
    /// The groups it scores in (Kayenta's `groups`; none: it counts only toward the
    /// critical and no-data rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// A critical metric: any label but pass makes the score 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Without data it is `no_data_fail`, a failure in its groups (Kayenta's
    /// `mustHaveData`; a critical member without data already fails the score).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_have_data: bool,
    /// Reported, left out of the score.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
}

/// The effect size of a `mann_whitney` gate (Kayenta's `effectSize.measure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectSize {
    /// mean(judged) / mean(baseline), 1 when the baseline's mean is 0.
    #[default]
    #[serde(alias = "meanRatio")]
    MeanRatio,
    /// The common-language effect size: the chance that a judged sample is above a
    /// baseline one, ties counting half (U / (n·m)).
    Cles,
}

impl EffectSize {
    fn is_mean_ratio(&self) -> bool {
        *self == Self::MeanRatio
    }

    /// The `allowed_increase` and `allowed_decrease` a gate uses when its config
    /// gives none: 1 for the ratio of means, 0.5 for CLES (Kayenta's defaults).
    pub fn default_allowed(self) -> f64 {
        match self {
            Self::MeanRatio => 1.0,
            Self::Cles => 0.5,
        }
    }
}

/// Kayenta's outlier handling of a `mann_whitney` gate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    /// `keep` (the default) or `remove`.
    #[serde(default)]
    pub strategy: OutlierStrategy,
    /// The multiple of the interquartile range beyond the quartiles that is an
    /// outlier (Kayenta's `outlierFactor`, default 3).
    #[serde(default = "default_outlier_factor", alias = "outlier_factor")]
    pub factor: f64,
}

impl Default for Outliers {
    fn default() -> Self {
        Self {
            strategy: OutlierStrategy::Keep,
            factor: default_outlier_factor(),
        }
    }
}

impl Outliers {
    fn is_keep(&self) -> bool {
        *self == Self::default()
    }

    /// The factor when outliers are removed.
    pub fn removal(&self) -> Option<f64> {
        (self.strategy == OutlierStrategy::Remove).then_some(self.factor)
    }
}

fn default_outlier_factor() -> f64 {
    3.0
}

/// Whether a `mann_whitney` gate removes outliers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierStrategy {
    /// Compare every sample (Kayenta's default).
    #[default]
    Keep,
    /// Drop each arm's outliers before comparing.
    Remove,
}

/// Which of Kayenta's classifications fail a `mann_whitney` gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// High fails (Kayenta's `increase`).
    #[default]
    #[serde(alias = "increase")]
    Higher,
    /// Low fails (`decrease`).
    #[serde(alias = "decrease")]
    Lower,
    /// Either fails.
    Either,
}

/// The divergence a `drift` gate measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Divergence {
    /// The population stability index Σ (p − q)·ln(p / q), each arm's shares smoothed
    /// by half a sample per bin seen in either arm (Jeffreys), so an empty bin is
    /// finite.
    #[default]
    Psi,
    /// The Jensen-Shannon distance, base 2: the square root of the mean Kullback-Leibler
    /// divergence of each arm from their average, in [0, 1] (SciPy's `jensenshannon`).
    Js,
}

impl Divergence {
    /// The threshold a gate uses when its config gives none.
    pub fn default_threshold(self) -> f64 {
        match self {
            Self::Psi => 0.25,
            Self::Js => 0.1,
        }
    }
}

/// Equal-width bins of a `drift` gate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bins {
    /// The lower edge of the first bin.
    pub min: f64,
    /// The upper edge of the last bin.
    pub max: f64,
    /// How many bins between them, 1..=64.
    pub count: u32,
}

impl Rule {
    /// The bins a `drift` gate counts samples in (categories plus "other", or the
    /// equal bins plus one below and one above); 0 for other kinds.
    pub fn drift_bins(&self) -> u32 {
        match self {
            Self::Drift {
                categories: Some(k),
                ..
            } => k.saturating_add(1),
            Self::Drift { bins: Some(b), .. } => b.count.saturating_add(2),
            _ => 0,
        }
    }
}

fn default_lambda() -> f64 {
    0.05
}
fn default_shift() -> f64 {
    1.0
}
fn default_arl0() -> f64 {
    10_000_000.0
}
fn default_clip() -> Option<f64> {
    Some(3.0)
}
#[allow(clippy::ref_option)] // serde's skip_serializing_if passes a reference
fn is_default_clip(clip: &Option<f64>) -> bool {
    *clip == default_clip()
}

/// Which direction of a metric is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Worse {
    /// Higher is worse: latency, cost, error counts.
    #[default]
    Higher,
    /// Lower is worse: quality scores, accuracy.
    Lower,
}

/// How `sequential_mean`, `cusum` and `ewma` treat serial correlation within an
/// arm's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Autocorrelation {
    /// Widen each arm's variance by the long-run factor of its lag-1 autocorrelation.
    #[default]
    Adjust,
    /// Take samples as independent (the plain plug-in variance).
    Ignore,
}

impl Autocorrelation {
    fn is_adjust(&self) -> bool {
        *self == Self::Adjust
    }
}

fn default_alpha() -> f64 {
    0.01
}
fn default_mixing_events() -> f64 {
    10.0
}

/// The smallest regression worth acting on, for the statistical gate kinds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Margin {
    /// A fraction of the baseline: 0.1 means 10 % worse.
    Relative(f64),
    /// An amount in the metric's unit.
    Absolute(f64),
}

impl Default for Margin {
    fn default() -> Self {
        Self::Relative(0.0)
    }
}

impl Margin {
    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

impl Rule {
    /// Whether the rule is a sequential test whose failure, once shown, holds for
    /// the rest of the phase: its gates trip at the first failure by default.
    pub fn is_sequential(&self) -> bool {
        matches!(
            self,
            Self::ErrorAttribution { .. }
                | Self::SequentialMean { .. }
                | Self::Cusum { .. }
                | Self::Ewma { .. }
                | Self::RateSlo { .. }
                | Self::SequentialQuantile { .. }
        )
    }

    /// The phases a gate with this rule runs in when its config lists none.
    fn default_phases(&self) -> Vec<Phase> {
        match self {
            Self::ErrorAttribution { .. } => vec![Phase::Shadow, Phase::Canary],
            Self::Cusum { .. } | Self::Ewma { .. } => vec![Phase::Bake, Phase::Steady],
            _ => default_phases(),
        }
    }

    /// The persistence a gate with this rule has when its config gives none.
    fn default_persistence(&self) -> Persistence {
        // Kayenta ends a canary at the first interim judgement below marginal.
        if self.is_sequential()
            || matches!(self, Self::MannWhitney { .. } | Self::KayentaScore { .. })
        {
            Persistence {
                consecutive: 1,
                ..Persistence::default()
            }
        } else {
            Persistence::default()
        }
    }
}

/// What a gate reports when a window holds fewer than `samples_min` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// Not enough evidence to judge (the default): never a failure by itself.
    #[default]
    Inconclusive,
    /// Treat missing evidence as a failure (Flagger's behaviour).
    Fail,
    /// Treat missing evidence as a pass.
    Pass,
}

/// When a failing gate trips, and when a tripped gate clears.
///
/// A gate trips when it has failed `consecutive` evaluations in a row **and**, if
/// `for_ms` is set, its first failure in that streak is at least `for_ms` old
/// (Prometheus `for`). A passing evaluation resets the streak; an inconclusive one
/// neither extends nor resets it. A tripped gate clears after `clear_after` passing
/// evaluations in a row, and not before `keep_failing_ms` have passed since its last
/// failure (Prometheus `keep_firing_for`). Counters are never cumulative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    /// Failing evaluations in a row that trip the gate (default 3, at least 1).
    #[serde(default = "default_consecutive")]
    pub consecutive: u32,
    /// How long the breach must have been held, in addition (default 0: off).
    #[serde(default)]
    pub for_ms: u64,
    /// Passing evaluations in a row that clear a tripped gate (default 1).
    #[serde(default = "default_clear_after")]
    pub clear_after: u32,
    /// A tripped gate stays tripped this long after its last failure (default 0).
    #[serde(default)]
    pub keep_failing_ms: u64,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            consecutive: 3,
            for_ms: 0,
            clear_after: 1,
            keep_failing_ms: 0,
        }
    }
}
fn default_consecutive() -> u32 {
    3
}
fn default_clear_after() -> u32 {
    1
}

/// A gate: one statistic of one metric, one rule, its evidence floor and persistence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "GateSpec")]
pub struct GateConfig {
    /// Unique name, used in reports.
    pub name: String,
    /// The metric it reads.
    pub metric: String,
    /// The statistic of the metric's window.
    pub stat: Stat,
    /// The rule.
    pub rule: Rule,
    /// Fewest samples (value metrics) or `total` (count metrics) each window read must
    /// hold before any verdict (default 1).
    #[serde(default = "default_samples_min")]
    pub samples_min: u64,
    /// The verdict when evidence is below `samples_min`.
    #[serde(default)]
    pub on_no_data: NoData,
    /// Evaluated and reported, never acted on (Argo's per-metric `dryRun`).
    #[serde(default)]
    pub dry_run: bool,
    /// Trip and clear conditions (default: 3 failures in a row; 1 for the sequential
    /// kinds, whose failure is already a conclusion).
    pub persistence: Persistence,
    /// Phases the gate is evaluated in (default: shadow, preview, canary, bake; shadow
    /// and canary for `error_attribution`).
    pub phases: Vec<Phase>,
}

/// A gate as written: the defaults of `persistence` and `phases` depend on its rule.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateSpec {
    name: String,
    metric: String,
    stat: Stat,
    rule: Rule,
    #[serde(default = "default_samples_min")]
    samples_min: u64,
    #[serde(default)]
    on_no_data: NoData,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    persistence: Option<Persistence>,
    #[serde(default)]
    phases: Option<Vec<Phase>>,
}

impl From<GateSpec> for GateConfig {
    fn from(g: GateSpec) -> Self {
        Self {
            persistence: g
                .persistence
                .unwrap_or_else(|| g.rule.default_persistence()),
            phases: g.phases.unwrap_or_else(|| g.rule.default_phases()),
            name: g.name,
            metric: g.metric,
            stat: g.stat,
            rule: g.rule,
            samples_min: g.samples_min,
            on_no_data: g.on_no_data,
            dry_run: g.dry_run,
        }
    }
}

fn default_samples_min() -> u64 {
    1
}
fn default_phases() -> Vec<Phase> {
    vec![Phase::Shadow, Phase::Preview, Phase::Canary, Phase::Bake]
}

/// How a candidate reaches all traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// Ordered steps, then promotion and a post-promotion bake.
    Canary {
        /// The steps, in order.
        steps: Vec<CanaryStep>,
        /// How long the new stable is watched after promotion (0: not at all).
        #[serde(default)]
        post_promotion_bake_ms: u64,
    },
    /// A preview environment analysed before an instant switch, then a bake.
    BlueGreen {
        /// Mirrored-traffic shadow analysis before the preview (0: none).
        #[serde(default)]
        shadow_ms: u64,
        /// Pre-promotion analysis of the preview environment (0: none).
        #[serde(default)]
        preview_ms: u64,
        /// Promote as soon as the preview passes (default); if false, pause for approval.
        #[serde(default = "default_true")]
        auto_promote: bool,
        /// How long the new stable is watched after the switch (0: not at all).
        #[serde(default)]
        post_promotion_bake_ms: u64,
    },
}

fn default_true() -> bool {
    true
}

/// One step of a canary strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
pub enum CanaryStep {
    /// Mirror traffic to the candidate for `duration_ms`; it serves nothing.
    Shadow {
        /// How long (must be positive).
        duration_ms: u64,
    },
    /// Send `weight` percent of traffic to the candidate and bake for `duration_ms`.
    SetWeight {
        /// Percent of traffic, 1..=100.
        weight: u32,
        /// Bake time; 0 moves on as soon as the weight is acknowledged.
        #[serde(default)]
        duration_ms: u64,
    },
    /// Wait for an operator's `resume` (or the approval timeout).
    Approval {},
}

crate::tagged::kind_tagged!(Rule);
crate::tagged::kind_tagged!(Strategy);
crate::tagged::kind_tagged!(CanaryStep);

/// When gates are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Interval between evaluations during an analysed phase (default 60 s).
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            interval_ms: default_interval_ms(),
        }
    }
}
fn default_interval_ms() -> u64 {
    60_000
}

/// What happens when an approval pause times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Roll the candidate back (the default: the safe choice).
    #[default]
    Rollback,
    /// Carry on as if approved.
    Continue,
    /// Stay paused and escalate.
    Hold,
}

/// Pauses for a human decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// How long a pause waits for an operator (default 1 hour).
    #[serde(default = "default_approval_timeout_ms")]
    pub timeout_ms: u64,
    /// What happens then.
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// Pause when a stage ends with an inconclusive gate (default true); if false the
    /// stage keeps waiting for a conclusive verdict.
    #[serde(default = "default_true")]
    pub pause_on_inconclusive: bool,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            timeout_ms: default_approval_timeout_ms(),
            on_timeout: OnTimeout::Rollback,
            pause_on_inconclusive: true,
        }
    }
}
fn default_approval_timeout_ms() -> u64 {
    3_600_000
}

/// Cooldown, circuit breaker, the acknowledgement deadline and gradual rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// No automated rollback within this long of the last one (default 30 minutes).
    #[serde(default = "default_cooldown_ms")]
    pub cooldown_ms: u64,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// How long an issued action may wait for its acknowledgement (default 10 minutes,
    /// Argo's `progressDeadlineSeconds`).
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Where automated rollbacks go (default: the stable version before promotion, the
    /// previous one after). Left out of the serialized config while it is the default,
    /// so configs and snapshots written before it existed read and write the same.
    #[serde(default, skip_serializing_if = "RollbackTo::is_default")]
    pub rollback_to: RollbackTo,
    /// Step the weight down instead of switching all traffic back at once, when gates
    /// fail a live canary (see [`GradualRollbackConfig`]); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradual_rollback: Option<GradualRollbackConfig>,
}

/// The target of automated rollbacks (`safety.rollback_to`). An operator's `abort`
/// and `revert_now` choose their own target, and a tripping breaker always goes to
/// golden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackTo {
    /// The stable version before promotion, the previous validated one after it (or,
    /// without one, golden).
    #[default]
    Default,
    /// The golden version (the most recently human-validated one), before promotion
    /// as after; the default target when golden is not a usable target (failed) or is
    /// the version being rolled back. For an agent that must fall back to its own
    /// last-good version rather than to whatever was stable.
    Golden,
}

impl RollbackTo {
    fn is_default(&self) -> bool {
        *self == Self::Default
    }
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            cooldown_ms: default_cooldown_ms(),
            breaker: BreakerConfig::default(),
            ack_timeout_ms: default_ack_timeout_ms(),
            rollback_to: RollbackTo::Default,
            gradual_rollback: None,
        }
    }
}

/// A gradual rollback (issue 10, item 3): when gates trip during a live canary (before
/// promotion, not at a breaker trip), the policy does not switch all traffic back at
/// once. It sets the candidate's weight to the first of `steps` below the current one,
/// and bakes it for `bake_ms` while analysis goes on. If a gate is still tripped at the
/// end of the bake, it takes the next step; after the last step's bake, the full
/// rollback. A gate tripping that was not tripped when it began rolls back fully at
/// once. If no gate is tripped at the end of a bake, the rollout stops at that weight
/// and pauses for approval. Each step is a `set_weight` with an action id, acknowledged
/// like any other. Operator `abort` and `revert_now`, shadow and preview phases, the
/// post-promotion bake and a rollback that trips the breaker stay immediate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradualRollbackConfig {
    /// The weights stepped down through, in percent: strictly decreasing, each in
    /// 1..=99, at most [`limits::STEPS_MAX`].
    pub steps: Vec<u32>,
    /// How long each step bakes before it is judged (positive).
    pub bake_ms: u64,
}

impl GradualRollbackConfig {
    fn validate(&self) -> Result<(), Error> {
        ensure(!self.steps.is_empty(), ErrorCode::NoSteps, "steps", || {
            "a gradual rollback needs at least one step".into()
        })?;
        count_at_most(self.steps.len(), limits::STEPS_MAX, "steps", "steps")?;
        for (i, &w) in self.steps.iter().enumerate() {
            let path = format!("steps[{i}]");
            ensure(
                (1..=99).contains(&w),
                ErrorCode::WeightOutOfRange,
                &path,
                || format!("weight {w} is not in 1..=99"),
            )?;
            if let Some(&before) = i.checked_sub(1).and_then(|j| self.steps.get(j)) {
                ensure(w < before, ErrorCode::InvalidValue, &path, || {
                    format!("weight {w} is not below the step before it, {before}")
                })?;
            }
        }
        ensure(self.bake_ms > 0, ErrorCode::ZeroDuration, "bake_ms", || {
            "each step must bake".into()
        })?;
        ensure(
            self.bake_ms <= crate::time::TIME_MAX,
            ErrorCode::InvalidValue,
            "bake_ms",
            || "bake_ms is at most 2^53-1 ms".into(),
        )
    }
}
fn default_cooldown_ms() -> u64 {
    1_800_000
}
fn default_ack_timeout_ms() -> u64 {
    600_000
}

/// Traffic assignment ([`Policy::assign`](crate::Policy::assign)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentConfig {
    /// How long a session keeps the weight in effect when it started
    /// ([`Policy::assign_session`](crate::Policy::assign_session)); 0 turns pinning off
    /// (default 30 minutes, at most 2^53 − 1 ms).
    #[serde(default = "default_pin_max_ms")]
    pub pin_max_ms: u64,
}

impl Default for AssignmentConfig {
    fn default() -> Self {
        Self {
            pin_max_ms: default_pin_max_ms(),
        }
    }
}
fn default_pin_max_ms() -> u64 {
    1_800_000
}

/// Environment or model (issue 10, item 5). A gate that judges the candidate on its
/// own (a `threshold` rule on its window, `rate_slo`) also trips when a dependency
/// both versions share degrades (an incident, a load peak), and a rollback then fixes
/// nothing. With `check` on, when such a gate trips in the `shadow` or `canary` phase
/// (both versions serve at once) the policy judges the stable version by the same rule
/// over the same data; if every tripped gate finds the stable version degraded too, by
/// at least `ratio` of the candidate's degradation, the policy holds instead of
/// rolling back and escalates once with `environment_suspected`. Off by default:
/// Argo Rollouts and Flagger roll back on any failed analysis, and a hold keeps the
/// candidate serving its share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Check the stable version before rolling back (default false).
    #[serde(default)]
    pub check: bool,
    /// How much of the candidate's degradation the stable version must show, 0..=1
    /// (default 0.8): for a `threshold` rule, its window reading's distance past the
    /// bound; for `rate_slo`, its error rate since the phase began (and its own test
    /// must have rejected the objective). 0: the stable version failing the rule is
    /// enough.
    #[serde(default = "default_environment_ratio")]
    pub ratio: f64,
}

impl Default for EnvironmentConfig {
    fn default() -> Self {
        Self {
            check: false,
            ratio: default_environment_ratio(),
        }
    }
}

impl EnvironmentConfig {
    /// Whether this is the default (checks off).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
fn default_environment_ratio() -> f64 {
    0.8
}

/// The circuit breaker over automated rollbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// The automated rollback that brings the count within `window_ms` to this number
    /// trips the breaker: it pins traffic to the golden version and stops automation
    /// (default 2, at most [`limits::BREAKER_ROLLBACKS_MAX`]).
    #[serde(default = "default_max_rollbacks")]
    pub max_rollbacks: u32,
    /// The window rollbacks are counted in (default 24 hours). A rollout that completes
    /// also resets the count.
    #[serde(default = "default_breaker_window_ms")]
    pub window_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            max_rollbacks: default_max_rollbacks(),
            window_ms: default_breaker_window_ms(),
        }
    }
}
fn default_max_rollbacks() -> u32 {
    2
}
fn default_breaker_window_ms() -> u64 {
    86_400_000
}

/// Size limits of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Versions the registry holds (default 16); older failed and retired versions are
    /// evicted first, and the last 3 validated ones are never evicted.
    #[serde(default = "default_versions_max")]
    pub versions_max: u32,
    /// Longest id, name, digest or label, in bytes (default 256).
    #[serde(default = "default_label_len_max")]
    pub label_len_max: u32,
    /// Longest free text, such as an `action_failed` reason, in bytes (default 1024).
    #[serde(default = "default_text_len_max")]
    pub text_len_max: u32,
    /// Most bytes of state the config may need in the worst case, as
    /// [`PolicyConfig::footprint`] computes it (default 16 MiB, at most
    /// [`limits::STATE_BYTES_CEILING`]).
    #[serde(default = "default_state_bytes_max")]
    pub state_bytes_max: u64,
    /// Most window reads by gates one input may cause in the worst case (default
    /// 100 000, at most [`limits::EVALUATIONS_CEILING`]). With `scopes`, every scope's
    /// gates read their own windows at each evaluation, so the count grows with
    /// `scopes_max`; the time this work takes is bounded by `cells_read_per_input_max`.
    #[serde(default = "default_evaluations_per_input_max")]
    pub evaluations_per_input_max: u64,
    /// Most window cells those reads may visit in the worst case (default 2^30, about
    /// a second of work; at most [`limits::CELLS_READ_CEILING`]).
    #[serde(default = "default_cells_read_per_input_max")]
    pub cells_read_per_input_max: u64,
    /// Most side effects (`record_effect`) held at once, over all versions, awaiting
    /// commit or compensation (default 64, at most [`limits::EFFECTS_MAX`]; 0 refuses
    /// every `record_effect`). Beyond it `record_effect` is refused with
    /// `too_many_effects`. Each effect's undo descriptor, as compact JSON, is at most
    /// `text_len_max` bytes.
    #[serde(default = "default_effects_max")]
    pub effects_max: u32,
    /// Most scopes held (config `scopes`), the overflow scope included (default 64,
    /// at least 2, at most [`limits::SCOPES_MAX`]): once `scopes_max − 1` label tuples
    /// have scopes, every new one is counted in the overflow scope.
    #[serde(default = "default_scopes_max")]
    pub scopes_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            versions_max: default_versions_max(),
            label_len_max: default_label_len_max(),
            text_len_max: default_text_len_max(),
            state_bytes_max: default_state_bytes_max(),
            evaluations_per_input_max: default_evaluations_per_input_max(),
            cells_read_per_input_max: default_cells_read_per_input_max(),
            effects_max: default_effects_max(),
            scopes_max: default_scopes_max(),
        }
    }
}
fn default_scopes_max() -> u32 {
    64
}
fn default_effects_max() -> u32 {
    64
}
fn default_text_len_max() -> u32 {
    1024
}
fn default_state_bytes_max() -> u64 {
    16 << 20
}
fn default_evaluations_per_input_max() -> u64 {
    100_000
}
fn default_cells_read_per_input_max() -> u64 {
    1 << 30
}
fn default_versions_max() -> u32 {
    16
}
fn default_label_len_max() -> u32 {
    256
}

impl PolicyConfig {
    /// Parses a config from its canonical JSON text (without validating it; see
    /// [`PolicyConfig::validate`]).
    ///
    /// # Errors
    /// `invalid_json` with the path of the field that failed to parse.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        crate::error::parse_json(text)
    }

    /// Converts a JSON value (a binding's native object) into a config, without
    /// validating it.
    ///
    /// # Errors
    /// `invalid_json` with the path of the field that failed to convert.
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        crate::error::parse_value(value)
    }

    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        // Serializing plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The window length of `metric`: its `window_ms`, or the analysis interval.
    pub fn window_ms(&self, metric: &MetricConfig) -> u64 {
        metric.window_ms.unwrap_or(self.analysis.interval_ms)
    }

    /// The index of a metric by name.
    pub(crate) fn metric_index(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == name)
    }

    /// Checks every field; the first problem found is returned with its path.
    ///
    /// # Errors
    /// A config error code (`no_steps`, `weight_out_of_range`, `min_above_max`,
    /// `zero_duration`, `limit_exceeded`, `duplicate_name`, `unknown_reference`,
    /// `invalid_value`, `unsupported_format_version`, and `state_too_large` or
    /// `too_much_work` when the worst case exceeds the `limits`) and the field's path.
    pub fn validate(&self) -> Result<(), Error> {
        crate::error::check_format_version(self.format_version)?;
        self.limits.validate().map_err(|e| e.within("limits"))?;
        let label_max = self.limits.label_len_max;
        check_label(&self.name, label_max, "name", true)?;

        // Versions.
        ensure(
            self.versions.len() as u64 <= u64::from(self.limits.versions_max),
            ErrorCode::LimitExceeded,
            "versions",
            || {
                format!(
                    "{} versions, limits.versions_max is {}",
                    self.versions.len(),
                    self.limits.versions_max
                )
            },
        )?;
        for (i, v) in self.versions.iter().enumerate() {
            v.validate(label_max)
                .map_err(|e| e.within(format!("versions[{i}]")))?;
            if self.versions[..i].iter().any(|w| w.id == v.id) {
                return Err(Error::new(
                    ErrorCode::DuplicateName,
                    format!("versions[{i}].id"),
                    format!("version id {:?} appears twice", v.id),
                ));
            }
        }
        let stable = self
            .versions
            .iter()
            .find(|v| v.id == self.stable)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UnknownReference,
                    "stable",
                    format!("no version {:?}", self.stable),
                )
            })?;
        ensure(stable.validated, ErrorCode::InvalidValue, "stable", || {
            format!("the stable version {:?} must be validated", self.stable)
        })?;
        if let Some(candidate) = &self.candidate {
            ensure(
                self.versions.iter().any(|v| &v.id == candidate),
                ErrorCode::UnknownReference,
                "candidate",
                || format!("no version {candidate:?}"),
            )?;
            ensure(
                candidate != &self.stable,
                ErrorCode::InvalidValue,
                "candidate",
                || "the candidate is already the stable version".into(),
            )?;
        }

        // Metrics (a window defaults to the analysis interval, so that comes first).
        ensure(
            self.analysis.interval_ms > 0,
            ErrorCode::ZeroDuration,
            "analysis.interval_ms",
            || "the analysis interval must be positive".into(),
        )?;
        ensure(
            !self.metrics.is_empty(),
            ErrorCode::InvalidValue,
            "metrics",
            || "at least one metric is required".into(),
        )?;
        count_at_most(
            self.metrics.len(),
            limits::METRICS_MAX,
            "metrics",
            "metrics",
        )?;
        for (i, m) in self.metrics.iter().enumerate() {
            m.validate(label_max, self.window_ms(m))
                .map_err(|e| e.within(format!("metrics[{i}]")))?;
            if self.metrics[..i].iter().any(|n| n.name == m.name) {
                return Err(Error::new(
                    ErrorCode::DuplicateName,
                    format!("metrics[{i}].name"),
                    format!("metric {:?} appears twice", m.name),
                ));
            }
        }

        // Gates.
        count_at_most(self.gates.len(), limits::GATES_MAX, "gates", "gates")?;
        for (i, g) in self.gates.iter().enumerate() {
            let path = format!("gates[{i}]");
            g.validate(label_max).map_err(|e| e.within(&path))?;
            if self.gates[..i].iter().any(|h| h.name == g.name) {
                return Err(Error::new(
                    ErrorCode::DuplicateName,
                    format!("{path}.name"),
                    format!("gate {:?} appears twice", g.name),
                ));
            }
            // A kayenta_score gate judges earlier mann_whitney gates, which report and
            // leave the acting to it.
            if let Rule::KayentaScore { members, .. } = &g.rule {
                for (k, m) in members.iter().enumerate() {
                    let at = format!("{path}.rule.members[{k}].gate");
                    let Some(h) = self.gates[..i].iter().find(|h| h.name == m.gate) else {
                        return Err(Error::new(
                            ErrorCode::UnknownReference,
                            at,
                            format!("no earlier gate {:?}", m.gate),
                        ));
                    };
                    ensure(
                        matches!(h.rule, Rule::MannWhitney { .. }),
                        ErrorCode::InvalidValue,
                        at.as_str(),
                        || format!("gate {:?} is not a mann_whitney gate", m.gate),
                    )?;
                    ensure(h.dry_run, ErrorCode::InvalidValue, at.as_str(), || {
                        format!(
                            "gate {:?} must be dry_run: a member reports its classification, the kayenta_score gate acts",
                            m.gate
                        )
                    })?;
                }
            }
            let metric = self
                .metrics
                .iter()
                .find(|m| m.name == g.metric)
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::UnknownReference,
                        format!("{path}.metric"),
                        format!("no metric {:?}", g.metric),
                    )
                })?;
            ensure(
                g.stat.fits(metric.kind),
                ErrorCode::InvalidValue,
                format!("{path}.stat"),
                || {
                    format!(
                        "stat {:?} does not apply to a {:?} metric",
                        g.stat, metric.kind
                    )
                },
            )?;
        }

        self.strategy.validate().map_err(|e| e.within("strategy"))?;
        ensure(
            self.approval.timeout_ms > 0,
            ErrorCode::ZeroDuration,
            "approval.timeout_ms",
            || "the approval timeout must be positive".into(),
        )?;
        ensure(
            self.assignment.pin_max_ms <= crate::time::TIME_MAX,
            ErrorCode::InvalidValue,
            "assignment.pin_max_ms",
            || "pin_max_ms is at most 2^53-1 ms".into(),
        )?;
        in_range(self.environment.ratio, 0.0, 1.0, "environment.ratio")?;
        ensure(
            self.safety.ack_timeout_ms > 0,
            ErrorCode::ZeroDuration,
            "safety.ack_timeout_ms",
            || "the acknowledgement timeout must be positive".into(),
        )?;
        ensure(
            self.safety.breaker.max_rollbacks >= 1,
            ErrorCode::InvalidValue,
            "safety.breaker.max_rollbacks",
            || "max_rollbacks must be at least 1".into(),
        )?;
        ensure(
            self.safety.breaker.max_rollbacks <= limits::BREAKER_ROLLBACKS_MAX,
            ErrorCode::LimitExceeded,
            "safety.breaker.max_rollbacks",
            || format!("max_rollbacks is at most {}", limits::BREAKER_ROLLBACKS_MAX),
        )?;
        ensure(
            self.safety.breaker.window_ms > 0,
            ErrorCode::ZeroDuration,
            "safety.breaker.window_ms",
            || "the breaker window must be positive".into(),
        )?;
        if let Some(g) = &self.safety.gradual_rollback {
            g.validate()
                .map_err(|e| e.within("safety.gradual_rollback"))?;
        }
        if let Some(scopes) = &self.scopes {
            scopes.validate().map_err(|e| e.within("scopes"))?;
            self.validate_tiers(scopes)?;
        }
        // Last: the cost model assumes every other field is valid.
        self.limits.check(self.footprint())
    }
}

impl Rule {
    /// The rule's `kind` as JSON writes it (`threshold`, `sequential_mean`, ...).
    pub(crate) fn kind_name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind")?.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl PolicyConfig {
    /// Tier overrides: tiers are labels, gates name gates of the config, a rule is of
    /// its gate's kind (not `kayenta_score`, whose members are other gates) and the
    /// gate it makes validates as any gate.
    fn validate_tiers(&self, scopes: &ScopesConfig) -> Result<(), Error> {
        let label_max = self.limits.label_len_max;
        if let Some(i) = &scopes.impact {
            for (k, t) in i.tiers.iter().enumerate() {
                check_label(t, label_max, &format!("scopes.impact.tiers[{k}]"), false)?;
            }
        }
        for (r, rung) in scopes.ladder.iter().flatten().enumerate() {
            for (k, t) in rung.when.tiers.iter().enumerate() {
                let path = format!("scopes.ladder[{r}].when.tiers[{k}]");
                check_label(t, label_max, &path, false)?;
            }
        }
        for (tier, t) in &scopes.tiers {
            let at = crate::json::key_path("scopes.tiers", tier);
            check_label(tier, label_max, &at, false)?;
            if_given(t.samples_min, |n| {
                in_range(n, 1, crate::time::TIME_MAX, format!("{at}.samples_min"))
            })?;
            for (name, o) in &t.gates {
                let path = crate::json::key_path(&format!("{at}.gates"), name);
                let Some(i) = self.gates.iter().position(|g| &g.name == name) else {
                    return Err(Error::new(
                        ErrorCode::UnknownReference,
                        path,
                        format!("no gate {:?}", clip(name)),
                    ));
                };
                if let Some(rule) = &o.rule {
                    let gate = &self.gates[i].rule;
                    ensure(
                        core::mem::discriminant(rule) == core::mem::discriminant(gate)
                            && !matches!(rule, Rule::KayentaScore { .. }),
                        ErrorCode::InvalidValue,
                        format!("{path}.rule"),
                        || {
                            if matches!(rule, Rule::KayentaScore { .. }) {
                                "a kayenta_score gate takes no tier override: override its members"
                                    .into()
                            } else {
                                format!("a tier keeps the gate's kind, {}", gate.kind_name())
                            }
                        },
                    )?;
                }
                if let Some(g) = self.tier_gate(tier, i) {
                    g.validate(label_max).map_err(|e| {
                        // The gate's own fields are the override's.
                        let rest = e.path.clone();
                        Error {
                            path: if rest.is_empty() {
                                path.clone()
                            } else {
                                format!("{path}.{rest}")
                            },
                            ..e
                        }
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// At most the first 64 characters of a name, for a message.
fn clip(name: &str) -> String {
    name.chars().take(64).collect()
}

impl ScopesConfig {
    fn validate(&self) -> Result<(), Error> {
        ensure(!self.by.is_empty(), ErrorCode::InvalidValue, "by", || {
            "name at least one label (tenant, tier, agent)".into()
        })?;
        for (i, l) in self.by.iter().enumerate() {
            ensure(
                !self.by[..i].contains(l),
                ErrorCode::DuplicateName,
                format!("by[{i}]"),
                || format!("{l:?} appears twice").to_lowercase(),
            )?;
        }
        ensure(
            self.alpha_share > 0.0 && self.alpha_share < 1.0,
            ErrorCode::InvalidValue,
            "alpha_share",
            || "must be above 0 and below 1".into(),
        )?;
        if_given(self.samples_min, |n| {
            in_range(n, 1, crate::time::TIME_MAX, "samples_min")
        })?;
        in_range(
            u64::from(self.histogram_bins_max),
            16,
            limits::HISTOGRAM_BINS_MAX,
            "histogram_bins_max",
        )?;
        if let Some(i) = &self.impact {
            ensure(
                !i.tiers.is_empty() || i.scopes_min.is_some() || i.traffic_min.is_some(),
                ErrorCode::InvalidValue,
                "impact",
                || "give tiers, scopes_min or traffic_min".into(),
            )?;
            for (k, t) in i.tiers.iter().enumerate() {
                check_label(
                    t,
                    LABEL_LEN_MAX_FOR_TIERS,
                    &format!("impact.tiers[{k}]"),
                    false,
                )?;
            }
            if_given(i.scopes_min, |n| {
                in_range(n, 1, limits::SCOPES_MAX, "impact.scopes_min")
            })?;
            if_given(i.traffic_min, |x| {
                positive_at_most(x, 1.0, "impact.traffic_min")
            })?;
        }
        if let Some(ladder) = &self.ladder {
            self.validate_ladder(ladder)?;
        }
        Ok(())
    }

    /// The ladder: not empty, not with `impact`, rungs in order and each at most once,
    /// each `when` an impact rule's conditions (none at all for any scope).
    fn validate_ladder(&self, ladder: &[LadderRung]) -> Result<(), Error> {
        ensure(
            !ladder.is_empty(),
            ErrorCode::InvalidValue,
            "ladder",
            || "give at least one rung (or leave the ladder out)".into(),
        )?;
        ensure(
            self.impact.is_none(),
            ErrorCode::InvalidValue,
            "ladder",
            || {
                "give impact or ladder, not both: impact is the ladder \
             [{\"rung\": \"rollback\", \"when\": impact}]"
                    .into()
            },
        )?;
        for (r, rung) in ladder.iter().enumerate() {
            let at = format!("ladder[{r}]");
            if let Some(before) = r.checked_sub(1).map(|b| ladder[b].rung) {
                ensure(
                    before != rung.rung,
                    ErrorCode::DuplicateName,
                    format!("{at}.rung"),
                    || format!("{} appears twice", rung.rung.as_str()),
                )?;
                ensure(
                    before < rung.rung,
                    ErrorCode::InvalidValue,
                    format!("{at}.rung"),
                    || {
                        format!(
                            "{} comes before {}: rungs go pause_onboarding, route_back, \
                             freeze, rollback",
                            rung.rung.as_str(),
                            before.as_str()
                        )
                    },
                )?;
            }
            let w = &rung.when;
            for (k, t) in w.tiers.iter().enumerate() {
                let path = format!("{at}.when.tiers[{k}]");
                check_label(t, LABEL_LEN_MAX_FOR_TIERS, &path, false)?;
            }
            if_given(w.scopes_min, |n| {
                in_range(n, 1, limits::SCOPES_MAX, format!("{at}.when.scopes_min"))
            })?;
            if_given(w.traffic_min, |x| {
                positive_at_most(x, 1.0, &format!("{at}.when.traffic_min"))
            })?;
        }
        Ok(())
    }
}

/// Tier names are labels; their length is checked against `limits.label_len_max`
/// with the other labels (`validate_tiers`), here only against the ceiling.
const LABEL_LEN_MAX_FOR_TIERS: u32 = limits::LABEL_LEN_MAX;

/// Refuses free text longer than `max` bytes (`text_too_long`).
pub(crate) fn check_text(s: &str, max: u32, path: &str) -> Result<(), Error> {
    ensure(
        s.len() as u64 <= u64::from(max),
        ErrorCode::TextTooLong,
        path,
        || format!("{} bytes, at most {max}", s.len()),
    )
}

pub(crate) fn check_label(s: &str, max: u32, path: &str, allow_empty: bool) -> Result<(), Error> {
    ensure(
        allow_empty || !s.is_empty(),
        ErrorCode::InvalidValue,
        path,
        || "must not be empty".into(),
    )?;
    ensure(
        s.len() as u64 <= u64::from(max),
        ErrorCode::LabelTooLong,
        path,
        || format!("{} bytes, at most {max}", s.len()),
    )
}

fn check_finite(x: Option<f64>, path: &str) -> Result<(), Error> {
    match x {
        Some(v) if !v.is_finite() => Err(Error::new(
            ErrorCode::InvalidValue,
            path,
            "must be a finite number",
        )),
        _ => Ok(()),
    }
}

/// A bound as a refusal shows it: a float far from 1 in exponent form (`1e100`, not
/// 101 digits).
trait Bound: PartialOrd + Copy {
    fn show(self) -> String;
}

impl Bound for f64 {
    fn show(self) -> String {
        let a = self.abs();
        if a == 0.0 || (1e-3..1e5).contains(&a) {
            format!("{self}")
        } else {
            format!("{self:e}")
        }
    }
}

impl Bound for u32 {
    fn show(self) -> String {
        self.to_string()
    }
}

impl Bound for u64 {
    fn show(self) -> String {
        self.to_string()
    }
}

/// Refuses `x` outside `lo..=hi` with `code`; NaN too, as no range contains it.
fn check_range<T: Bound>(
    code: ErrorCode,
    x: T,
    lo: T,
    hi: T,
    path: impl Into<String>,
) -> Result<(), Error> {
    ensure((lo..=hi).contains(&x), code, path, || {
        format!("must be in {}..={}", lo.show(), hi.show())
    })
}

/// Refuses `x` outside `lo..=hi` (`invalid_value`); NaN too.
fn in_range<T: Bound>(x: T, lo: T, hi: T, path: impl Into<String>) -> Result<(), Error> {
    check_range(ErrorCode::InvalidValue, x, lo, hi, path)
}

/// Refuses `x` unless it is above 0 and at most `max` (`invalid_value`); NaN fails both
/// comparisons and is refused.
fn positive_at_most(x: f64, max: f64, path: &str) -> Result<(), Error> {
    ensure(x > 0.0 && x <= max, ErrorCode::InvalidValue, path, || {
        format!("must be above 0 and at most {}", max.show())
    })
}

/// Refuses `x` of magnitude above `max` (`invalid_value`), and NaN.
fn within(x: f64, max: f64, path: &str) -> Result<(), Error> {
    ensure(x.abs() <= max, ErrorCode::InvalidValue, path, || {
        format!("must be within ±{}", max.show())
    })
}

/// Checks an optional field with `check` when it is given.
fn if_given<T>(x: Option<T>, check: impl FnOnce(T) -> Result<(), Error>) -> Result<(), Error> {
    x.map_or(Ok(()), check)
}

/// Refuses a list of more than `max` items (`limit_exceeded`), naming its length.
fn count_at_most(len: usize, max: u32, path: impl Into<String>, items: &str) -> Result<(), Error> {
    let len = len as u64;
    ensure(
        len <= u64::from(max),
        ErrorCode::LimitExceeded,
        path,
        || format!("{len} {items}, at most {max}"),
    )
}

impl Limits {
    fn validate(&self) -> Result<(), Error> {
        let exceeded = ErrorCode::LimitExceeded;
        check_range(
            exceeded,
            self.versions_max,
            limits::VERSIONS_MIN,
            limits::VERSIONS_MAX,
            "versions_max",
        )?;
        check_range(
            exceeded,
            self.label_len_max,
            1,
            limits::LABEL_LEN_MAX,
            "label_len_max",
        )?;
        check_range(
            exceeded,
            self.text_len_max,
            1,
            limits::TEXT_LEN_MAX,
            "text_len_max",
        )?;
        check_range(
            exceeded,
            self.effects_max,
            0,
            limits::EFFECTS_MAX,
            "effects_max",
        )?;
        check_range(
            exceeded,
            self.scopes_max,
            2,
            limits::SCOPES_MAX,
            "scopes_max",
        )?;
        for (name, value, ceiling) in [
            (
                "state_bytes_max",
                self.state_bytes_max,
                limits::STATE_BYTES_CEILING,
            ),
            (
                "evaluations_per_input_max",
                self.evaluations_per_input_max,
                limits::EVALUATIONS_CEILING,
            ),
            (
                "cells_read_per_input_max",
                self.cells_read_per_input_max,
                limits::CELLS_READ_CEILING,
            ),
        ] {
            check_range(exceeded, value, 1, ceiling, name)?;
        }
        Ok(())
    }

    /// Refuses a config whose worst case exceeds these limits.
    fn check(&self, f: crate::config::footprint::Footprint) -> Result<(), Error> {
        ensure(
            f.state_bytes_max <= self.state_bytes_max,
            ErrorCode::StateTooLarge,
            "limits.state_bytes_max",
            || {
                format!(
                    "the config may need {} bytes of state, above the limit of {} \
                     (fewer metrics, buckets or versions, or a narrower histogram_range, \
                     need less)",
                    f.state_bytes_max, self.state_bytes_max
                )
            },
        )?;
        ensure(
            f.evaluations_per_input_max <= self.evaluations_per_input_max,
            ErrorCode::TooMuchWork,
            "limits.evaluations_per_input_max",
            || {
                format!(
                    "one input may cause {} window reads, above the limit of {} \
                     (fewer gates per phase need fewer)",
                    f.evaluations_per_input_max, self.evaluations_per_input_max
                )
            },
        )?;
        ensure(
            f.cells_read_per_input_max <= self.cells_read_per_input_max,
            ErrorCode::TooMuchWork,
            "limits.cells_read_per_input_max",
            || {
                format!(
                    "one input may read {} window cells, above the limit of {} \
                     (fewer gates, fewer buckets or a narrower histogram_range need fewer)",
                    f.cells_read_per_input_max, self.cells_read_per_input_max
                )
            },
        )
    }
}

impl VersionSpec {
    pub(crate) fn validate(&self, label_max: u32) -> Result<(), Error> {
        check_bundle(&self.id, &self.digest, &self.components, label_max)
    }
}

/// Checks a bundle's labels: its id, digest and components (as registered, configured
/// or restored).
pub(crate) fn check_bundle(
    id: &str,
    digest: &str,
    components: &BTreeMap<String, String>,
    label_max: u32,
) -> Result<(), Error> {
    check_label(id, label_max, "id", false)?;
    check_label(digest, label_max, "digest", false)?;
    count_at_most(
        components.len(),
        limits::COMPONENTS_MAX,
        "components",
        "components",
    )?;
    for (k, v) in components {
        let path = crate::json::key_path("components", k);
        check_label(k, label_max, &path, false)?;
        check_label(v, label_max, &path, false)?;
    }
    Ok(())
}

impl MetricConfig {
    /// Checks the metric, with its window length resolved (`window_ms` or the interval).
    fn validate(&self, label_max: u32, window_ms: u64) -> Result<(), Error> {
        check_label(&self.name, label_max, "name", false)?;
        ensure(window_ms > 0, ErrorCode::ZeroDuration, "window_ms", || {
            "a window must be positive".into()
        })?;
        ensure(
            self.buckets >= 1,
            ErrorCode::ZeroDuration,
            "buckets",
            || "a window needs at least one bucket".into(),
        )?;
        ensure(
            self.buckets <= limits::BUCKETS_MAX,
            ErrorCode::LimitExceeded,
            "buckets",
            || format!("at most {} buckets", limits::BUCKETS_MAX),
        )?;
        ensure(
            window_ms.is_multiple_of(u64::from(self.buckets)),
            ErrorCode::InvalidValue,
            "window_ms",
            || {
                let default = if self.window_ms.is_none() {
                    " (the default: analysis.interval_ms)"
                } else {
                    ""
                };
                format!(
                    "window_ms {window_ms}{default} is not a multiple of buckets {}",
                    self.buckets
                )
            },
        )?;
        let r = self.histogram_range;
        check_finite(Some(r.min), "histogram_range.min")?;
        check_finite(Some(r.max), "histogram_range.max")?;
        ensure(
            r.min >= f64::MIN_POSITIVE,
            ErrorCode::InvalidValue,
            "histogram_range.min",
            || "must be a positive normal number".into(),
        )?;
        ensure(
            r.min < r.max,
            ErrorCode::MinAboveMax,
            "histogram_range",
            || format!("min {} is not below max {}", r.min, r.max),
        )?;
        ensure(
            crate::stats::histogram::octaves(r) <= limits::OCTAVES_MAX,
            ErrorCode::LimitExceeded,
            "histogram_range",
            || format!("the range spans more than {} octaves", limits::OCTAVES_MAX),
        )
    }
}

impl Rule {
    fn validate(&self) -> Result<(), Error> {
        match *self {
            Rule::Threshold { min, max } => {
                check_finite(min, "min")?;
                check_finite(max, "max")?;
                ensure(
                    min.is_some() || max.is_some(),
                    ErrorCode::InvalidValue,
                    "",
                    || "a threshold needs min or max".into(),
                )?;
                if let (Some(lo), Some(hi)) = (min, max) {
                    ensure(lo <= hi, ErrorCode::MinAboveMax, "min", || {
                        format!("min {lo} is above max {hi}")
                    })?;
                }
            }
            Rule::VsBaseline {
                max_ratio,
                min_ratio,
                max_increase,
                max_decrease,
                baseline_min,
            } => {
                let fields = [
                    ("max_ratio", max_ratio),
                    ("min_ratio", min_ratio),
                    ("max_increase", max_increase),
                    ("max_decrease", max_decrease),
                    ("baseline_min", baseline_min),
                ];
                ensure(
                    fields[..4].iter().any(|(_, v)| v.is_some()),
                    ErrorCode::InvalidValue,
                    "",
                    || "a vs_baseline rule needs at least one bound".into(),
                )?;
                for (name, v) in fields {
                    check_finite(v, name)?;
                    ensure(
                        v.is_none_or(|v| v >= 0.0),
                        ErrorCode::InvalidValue,
                        name,
                        || "must not be negative".into(),
                    )?;
                }
                if let (Some(lo), Some(hi)) = (min_ratio, max_ratio) {
                    ensure(lo <= hi, ErrorCode::MinAboveMax, "min_ratio", || {
                        format!("min_ratio {lo} is above max_ratio {hi}")
                    })?;
                }
            }
            Rule::ErrorAttribution {
                alpha,
                margin,
                mixing_events,
            } => {
                check_alpha(alpha)?;
                ensure(
                    matches!(margin, Margin::Relative(_)),
                    ErrorCode::InvalidValue,
                    "margin",
                    || {
                        "error_attribution compares error rates by their ratio: \
                         give a relative margin"
                            .into()
                    },
                )?;
                check_margin(margin)?;
                positive_at_most(mixing_events, limits::MIXING_EVENTS_MAX, "mixing_events")?;
            }
            Rule::SequentialMean {
                alpha,
                margin,
                mixing_scale,
                ..
            } => {
                check_alpha(alpha)?;
                check_margin(margin)?;
                if_given(mixing_scale, |t| {
                    in_range(
                        t,
                        limits::MIXING_SCALE_MIN,
                        limits::VALUE_ABS_MAX,
                        "mixing_scale",
                    )
                })?;
            }
            Rule::RateSlo {
                max_rate,
                alpha,
                mixing_events,
            } => {
                ensure(
                    max_rate > 0.0 && max_rate < 1.0,
                    ErrorCode::InvalidValue,
                    "max_rate",
                    || "must be above 0 and below 1".into(),
                )?;
                check_alpha(alpha)?;
                positive_at_most(mixing_events, limits::MIXING_EVENTS_MAX, "mixing_events")?;
            }
            Rule::SequentialQuantile {
                alpha,
                worse,
                margin,
                mixing_events,
            } => {
                check_alpha(alpha)?;
                if let (Worse::Lower, Margin::Relative(m)) = (worse, margin) {
                    ensure(m < 1.0, ErrorCode::InvalidValue, "margin.relative", || {
                        "must be below 1 when lower is worse".into()
                    })?;
                }
                check_margin(margin)?;
                positive_at_most(mixing_events, limits::MIXING_EVENTS_MAX, "mixing_events")?;
            }
            Rule::MannWhitney {
                confidence,
                tolerance,
                effect_size,
                allowed_increase,
                allowed_decrease,
                outliers,
                samples_max,
                ..
            } => {
                in_range(confidence, 0.5, limits::MW_CONFIDENCE_MAX, "confidence")?;
                in_range(tolerance, 0.0, limits::MW_TOLERANCE_MAX, "tolerance")?;
                for (name, v) in [
                    ("allowed_increase", allowed_increase),
                    ("allowed_decrease", allowed_decrease),
                ] {
                    if_given(v, |v| match effect_size {
                        EffectSize::MeanRatio => within(v, limits::VALUE_ABS_MAX, name),
                        EffectSize::Cles => ensure(
                            (0.0..=1.0).contains(&v),
                            ErrorCode::InvalidValue,
                            name,
                            || "a CLES is a probability: must be in 0..=1".into(),
                        ),
                    })?;
                }
                positive_at_most(
                    outliers.factor,
                    limits::MW_OUTLIER_FACTOR_MAX,
                    "outliers.factor",
                )?;
                in_range(samples_max, 1, limits::MW_SAMPLES_MAX, "samples_max")?;
            }
            Rule::Cusum {
                shift,
                arl0,
                threshold,
                reference_mean,
                reference_sd,
                clip,
                ..
            } => {
                positive_at_most(shift, limits::CUSUM_SHIFT_MAX, "shift")?;
                in_range(arl0, 1.0, limits::CUSUM_ARL0_MAX, "arl0")?;
                if_given(threshold, |h| {
                    positive_at_most(h, limits::CUSUM_THRESHOLD_MAX, "threshold")
                })?;
                if_given(clip, |c| {
                    positive_at_most(c, limits::CHART_CLIP_MAX, "clip")
                })?;
                check_reference(reference_mean, reference_sd)?;
            }
            Rule::Ewma {
                lambda,
                arl0,
                limit,
                reference_mean,
                reference_sd,
                clip,
                ..
            } => {
                in_range(lambda, limits::EWMA_LAMBDA_MIN, 1.0, "lambda")?;
                in_range(arl0, 2.0, limits::EWMA_ARL0_MAX, "arl0")?;
                if_given(limit, |l| {
                    positive_at_most(l, limits::EWMA_LIMIT_MAX, "limit")
                })?;
                if_given(clip, |c| {
                    positive_at_most(c, limits::CHART_CLIP_MAX, "clip")
                })?;
                check_reference(reference_mean, reference_sd)?;
            }
            Rule::KayentaScore {
                ref members,
                ref group_weights,
                pass,
                marginal,
            } => {
                in_range(marginal, 0.0, 100.0, "marginal")?;
                ensure(
                    (marginal..=100.0).contains(&pass),
                    ErrorCode::InvalidValue,
                    "pass",
                    || format!("must be in {marginal}..=100 (at least marginal)"),
                )?;
                ensure(
                    !members.is_empty()
                        && members.len() as u64 <= u64::from(limits::KAYENTA_MEMBERS_MAX),
                    ErrorCode::LimitExceeded,
                    "members",
                    || format!("1 to {} members", limits::KAYENTA_MEMBERS_MAX),
                )?;
                count_at_most(
                    group_weights.len(),
                    limits::KAYENTA_GROUPS_MAX,
                    "group_weights",
                    "groups",
                )?;
                let mut sum = 0.0;
                for (name, &w) in group_weights {
                    in_range(w, 0.0, 100.0, crate::json::key_path("group_weights", name))?;
                    sum += w;
                }
                ensure(
                    sum <= 100.0,
                    ErrorCode::InvalidValue,
                    "group_weights",
                    || format!("the weights sum to {sum}, above 100"),
                )?;
            }
            Rule::Drift {
                measure: _,
                threshold,
                categories,
                bins,
            } => {
                if_given(threshold, |t| {
                    ensure(
                        t > 0.0 && t.is_finite(),
                        ErrorCode::InvalidValue,
                        "threshold",
                        || "must be a finite number above 0".into(),
                    )
                })?;
                ensure(
                    categories.is_some() != bins.is_some(),
                    ErrorCode::InvalidValue,
                    if categories.is_some() {
                        "bins"
                    } else {
                        "categories"
                    },
                    || "give categories (a categorical output) or bins (a binned one)".into(),
                )?;
                if_given(categories, |k| {
                    in_range(k, 2, limits::DRIFT_BINS_MAX, "categories")
                })?;
                if let Some(b) = bins {
                    check_finite(Some(b.min), "bins.min")?;
                    check_finite(Some(b.max), "bins.max")?;
                    ensure(
                        b.min < b.max && b.max - b.min < f64::INFINITY,
                        ErrorCode::InvalidValue,
                        "bins.max",
                        || "must be above bins.min".into(),
                    )?;
                    in_range(b.count, 1, limits::DRIFT_BINS_MAX, "bins.count")?;
                }
            }
        }
        Ok(())
    }
}

impl Strategy {
    /// Every share of traffic the policy can give a candidate while the other arm
    /// serves too: each canary weight below 100, and one half for mirrored (shadow)
    /// traffic. `error_attribution` keeps one entry per share it has seen.
    pub(crate) fn shares(&self) -> Vec<f64> {
        let mut shares = Vec::new();
        let mut add = |share: f64| {
            if !shares.contains(&share) {
                shares.push(share);
            }
        };
        match self {
            Strategy::Canary { steps, .. } => {
                for step in steps {
                    match *step {
                        CanaryStep::Shadow { .. } => add(0.5),
                        CanaryStep::SetWeight { weight, .. } if weight < 100 => {
                            add(f64::from(weight) / 100.0);
                        }
                        _ => {}
                    }
                }
            }
            Strategy::BlueGreen { shadow_ms, .. } => {
                if *shadow_ms > 0 {
                    add(0.5);
                }
            }
        }
        shares
    }
}

/// A chart's reference, when given: both parts, a finite mean and a positive deviation.
fn check_reference(reference_mean: Option<f64>, reference_sd: Option<f64>) -> Result<(), Error> {
    ensure(
        reference_mean.is_some() == reference_sd.is_some(),
        ErrorCode::InvalidValue,
        if reference_mean.is_some() {
            "reference_sd"
        } else {
            "reference_mean"
        },
        || "give reference_mean and reference_sd together, or neither".into(),
    )?;
    if_given(reference_mean, |m| {
        within(m, limits::VALUE_ABS_MAX, "reference_mean")
    })?;
    if_given(reference_sd, |sd| {
        in_range(
            sd,
            limits::MIXING_SCALE_MIN,
            limits::VALUE_ABS_MAX,
            "reference_sd",
        )
    })
}

/// The margin of a comparing sequential test: relative in 0..=100 (101 times worse),
/// absolute within the sample range.
fn check_margin(margin: Margin) -> Result<(), Error> {
    match margin {
        Margin::Relative(m) => in_range(m, 0.0, limits::RELATIVE_MARGIN_MAX, "margin.relative"),
        Margin::Absolute(m) => in_range(m, 0.0, limits::VALUE_ABS_MAX, "margin.absolute"),
    }
}

/// A false-rollback probability: in (0, 0.5]; NaN is refused.
fn check_alpha(alpha: f64) -> Result<(), Error> {
    positive_at_most(alpha, 0.5, "alpha")
}

impl GateConfig {
    fn validate(&self, label_max: u32) -> Result<(), Error> {
        check_label(&self.name, label_max, "name", false)?;
        self.rule.validate().map_err(|e| e.within("rule"))?;
        ensure(
            self.persistence.consecutive >= 1,
            ErrorCode::InvalidValue,
            "persistence.consecutive",
            || "must be at least 1".into(),
        )?;
        ensure(
            self.persistence.clear_after >= 1,
            ErrorCode::InvalidValue,
            "persistence.clear_after",
            || "must be at least 1".into(),
        )?;
        ensure(
            !self.phases.is_empty(),
            ErrorCode::InvalidValue,
            "phases",
            || "a gate must apply to at least one phase".into(),
        )?;
        match &self.rule {
            Rule::Threshold { .. } => {}
            Rule::VsBaseline { .. } => self.needs_baseline("vs_baseline")?,
            Rule::ErrorAttribution { .. } => {
                ensure(
                    self.phases
                        .iter()
                        .all(|p| matches!(p, Phase::Shadow | Phase::Canary)),
                    ErrorCode::InvalidValue,
                    "phases",
                    || {
                        "an error_attribution gate runs only where the policy sets the \
                         traffic split: shadow and canary"
                            .into()
                    },
                )?;
                self.needs_stat(
                    Stat::Rate,
                    "an error_attribution gate tests a count metric's rate",
                )?;
            }
            Rule::RateSlo { .. } => {
                self.needs_stat(Stat::Rate, "a rate_slo gate tests a count metric's rate")?;
            }
            Rule::Cusum { .. } => {
                self.needs_stat(Stat::Mean, "a cusum gate tests a value metric's mean")?;
            }
            Rule::Ewma { .. } => {
                self.needs_stat(Stat::Mean, "an ewma gate tests a value metric's mean")?;
            }
            Rule::SequentialMean { .. } => {
                self.needs_baseline("sequential_mean")?;
                self.needs_stat(
                    Stat::Mean,
                    "a sequential_mean gate tests a value metric's mean",
                )?;
            }
            Rule::SequentialQuantile { .. } => {
                self.needs_baseline("sequential_quantile")?;
                ensure(
                    self.stat.quantile().is_some(),
                    ErrorCode::InvalidValue,
                    "stat",
                    || {
                        "a sequential_quantile gate tests a value metric's p50, p90, p95 or p99"
                            .into()
                    },
                )?;
            }
            Rule::MannWhitney { samples_max, .. } => {
                self.needs_baseline("mann_whitney")?;
                self.needs_stat(
                    Stat::Mean,
                    "a mann_whitney gate compares a value metric's samples: use stat mean",
                )?;
                ensure(
                    self.samples_min <= u64::from(*samples_max),
                    ErrorCode::InvalidValue,
                    "samples_min",
                    || {
                        format!(
                            "{} is above the rule's samples_max {samples_max}: the gate could \
                             never judge",
                            self.samples_min
                        )
                    },
                )?;
            }
            Rule::KayentaScore { members, .. } => {
                self.needs_baseline("kayenta_score")?;
                for (i, m) in members.iter().enumerate() {
                    let at = format!("rule.members[{i}]");
                    check_label(&m.gate, label_max, "gate", false).map_err(|e| e.within(&at))?;
                    count_at_most(
                        m.groups.len(),
                        limits::KAYENTA_GROUPS_MAX,
                        format!("{at}.groups"),
                        "groups",
                    )?;
                    for (j, g) in m.groups.iter().enumerate() {
                        check_label(g, label_max, "", false)
                            .map_err(|e| e.within(format!("{at}.groups[{j}]")))?;
                    }
                    if members[..i].iter().any(|n| n.gate == m.gate) {
                        return Err(Error::new(
                            ErrorCode::DuplicateName,
                            format!("{at}.gate"),
                            format!("member {:?} appears twice", m.gate),
                        ));
                    }
                }
            }
            Rule::Drift { .. } => {
                self.needs_baseline("drift")?;
                self.needs_stat(
                    Stat::Mean,
                    "a drift gate bins a value metric's samples: its stat is mean",
                )?;
            }
        }
        Ok(())
    }

    /// Refuses the steady phase to a gate of `kind` that compares the candidate with a
    /// baseline: there is none when no rollout is under way.
    fn needs_baseline(&self, kind: &str) -> Result<(), Error> {
        ensure(
            !self.phases.contains(&Phase::Steady),
            ErrorCode::InvalidValue,
            "phases",
            || format!("a {kind} gate has no baseline in the steady phase"),
        )
    }

    /// Refuses a stat other than `stat`, with `why`.
    fn needs_stat(&self, stat: Stat, why: &str) -> Result<(), Error> {
        ensure(self.stat == stat, ErrorCode::InvalidValue, "stat", || {
            why.into()
        })
    }
}

impl Strategy {
    fn validate(&self) -> Result<(), Error> {
        match self {
            Strategy::Canary { steps, .. } => {
                ensure(!steps.is_empty(), ErrorCode::NoSteps, "steps", || {
                    "a canary strategy needs at least one step".into()
                })?;
                count_at_most(steps.len(), limits::STEPS_MAX, "steps", "steps")?;
                let mut seen_weight = false;
                for (i, step) in steps.iter().enumerate() {
                    let path = format!("steps[{i}]");
                    match *step {
                        CanaryStep::Shadow { duration_ms } => {
                            ensure(
                                duration_ms > 0,
                                ErrorCode::ZeroDuration,
                                format!("{path}.duration_ms"),
                                || "a shadow step must last".into(),
                            )?;
                            ensure(!seen_weight, ErrorCode::InvalidValue, &path, || {
                                "shadow steps must come before traffic steps".into()
                            })?;
                        }
                        CanaryStep::SetWeight { weight, .. } => {
                            seen_weight = true;
                            ensure(
                                (1..=100).contains(&weight),
                                ErrorCode::WeightOutOfRange,
                                format!("{path}.weight"),
                                || format!("weight {weight} is not in 1..=100"),
                            )?;
                        }
                        CanaryStep::Approval {} => {}
                    }
                }
            }
            Strategy::BlueGreen { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A valid config whose first gate has `rule` on `metric` with `stat`.
    fn config(rule: serde_json::Value, metric: &str, stat: &str) -> PolicyConfig {
        let config = PolicyConfig::from_value(json!({
            "format_version": 1,
            "versions": [
                {"id": "v1", "digest": "d1", "validated": true},
                {"id": "v2", "digest": "d2"}
            ],
            "stable": "v1",
            "metrics": [{"name": "v", "kind": "value"}, {"name": "c", "kind": "count"}],
            "gates": [{"name": "g", "metric": metric, "stat": stat, "rule": rule}],
            "strategy": {
                "kind": "canary",
                "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 10000}]
            },
            "analysis": {"interval_ms": 5000}
        }))
        .unwrap();
        assert_eq!(config.validate(), Ok(()));
        config
    }

    /// Sets one float field of a rule; false when the rule is of another kind.
    type Set = fn(&mut Rule, f64) -> bool;

    macro_rules! field {
        ($kind:ident, $field:ident) => {
            (|r: &mut Rule, x: f64| match r {
                Rule::$kind { $field, .. } => {
                    *$field = x;
                    true
                }
                _ => false,
            }) as Set
        };
        (Some $kind:ident, $field:ident) => {
            (|r: &mut Rule, x: f64| match r {
                Rule::$kind { $field, .. } => {
                    *$field = Some(x);
                    true
                }
                _ => false,
            }) as Set
        };
    }

    /// Sets NaN and both infinities through `set` and expects `invalid_value` at the
    /// rule's `path` each time.
    fn refuses_non_finite(base: &PolicyConfig, path: &str, set: Set) {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut c = base.clone();
            assert!(
                set(&mut c.gates[0].rule, x),
                "{path}: a rule of another kind"
            );
            let e = c.validate().expect_err(path);
            assert_eq!(
                (e.code, e.path.as_str()),
                (
                    ErrorCode::InvalidValue,
                    format!("gates[0].rule.{path}").as_str()
                ),
                "{path} = {x}: {}",
                e.message
            );
        }
    }

    /// A chart's `clip` is 3 when absent (and not written out), off with `null`
    /// (written out, so that it reads back off), and above 0 when given.
    #[test]
    fn a_chart_s_clip_defaults_to_3_and_null_turns_it_off() {
        for kind in ["cusum", "ewma"] {
            let on = config(json!({"kind": kind}), "v", "mean");
            let text = serde_json::to_string(&on.gates[0].rule).unwrap();
            assert!(!text.contains("clip"), "{text}");
            let off = config(json!({"kind": kind, "clip": null}), "v", "mean");
            let text = serde_json::to_string(&off.gates[0].rule).unwrap();
            assert!(text.contains("\"clip\":null"), "{text}");
            let back: Rule = serde_json::from_str(&text).unwrap();
            assert_eq!(back, off.gates[0].rule);
            assert_ne!(back, on.gates[0].rule);
            for bad in [0.0, -1.0, 2e6] {
                let mut c = on.clone();
                match &mut c.gates[0].rule {
                    Rule::Cusum { clip, .. } | Rule::Ewma { clip, .. } => *clip = Some(bad),
                    _ => unreachable!(),
                }
                let e = c.validate().expect_err(kind);
                assert_eq!(e.path, "gates[0].rule.clip", "{kind} {bad}");
            }
        }
    }

    /// Every float a rule holds refuses NaN and both infinities at its own path (the
    /// range helpers take NaN as outside every range).
    #[test]
    fn non_finite_rule_values_are_refused_at_their_field() {
        let threshold = config(json!({"kind": "threshold", "min": 1.0}), "v", "mean");
        refuses_non_finite(&threshold, "min", field!(Some Threshold, min));
        refuses_non_finite(&threshold, "max", field!(Some Threshold, max));

        let vs_baseline = config(
            json!({"kind": "vs_baseline", "max_ratio": 2.0}),
            "v",
            "mean",
        );
        refuses_non_finite(
            &vs_baseline,
            "max_ratio",
            field!(Some VsBaseline, max_ratio),
        );
        refuses_non_finite(
            &vs_baseline,
            "baseline_min",
            field!(Some VsBaseline, baseline_min),
        );

        let attribution = config(json!({"kind": "error_attribution"}), "c", "rate");
        refuses_non_finite(&attribution, "alpha", field!(ErrorAttribution, alpha));
        refuses_non_finite(
            &attribution,
            "mixing_events",
            field!(ErrorAttribution, mixing_events),
        );
        refuses_non_finite(&attribution, "margin.relative", |r, x| match r {
            Rule::ErrorAttribution { margin, .. } => {
                *margin = Margin::Relative(x);
                true
            }
            _ => false,
        });

        let mean = config(json!({"kind": "sequential_mean"}), "v", "mean");
        refuses_non_finite(
            &mean,
            "mixing_scale",
            field!(Some SequentialMean, mixing_scale),
        );
        refuses_non_finite(&mean, "margin.absolute", |r, x| match r {
            Rule::SequentialMean { margin, .. } => {
                *margin = Margin::Absolute(x);
                true
            }
            _ => false,
        });

        let slo = config(json!({"kind": "rate_slo", "max_rate": 0.1}), "c", "rate");
        refuses_non_finite(&slo, "max_rate", field!(RateSlo, max_rate));

        let quantile = config(json!({"kind": "sequential_quantile"}), "v", "p90");
        refuses_non_finite(
            &quantile,
            "mixing_events",
            field!(SequentialQuantile, mixing_events),
        );

        let mw = config(json!({"kind": "mann_whitney"}), "v", "mean");
        refuses_non_finite(&mw, "confidence", field!(MannWhitney, confidence));
        refuses_non_finite(&mw, "tolerance", field!(MannWhitney, tolerance));
        refuses_non_finite(
            &mw,
            "allowed_increase",
            field!(Some MannWhitney, allowed_increase),
        );
        refuses_non_finite(&mw, "outliers.factor", |r, x| match r {
            Rule::MannWhitney { outliers, .. } => {
                outliers.factor = x;
                true
            }
            _ => false,
        });
        let cles = config(
            json!({"kind": "mann_whitney", "effect_size": "cles"}),
            "v",
            "mean",
        );
        refuses_non_finite(
            &cles,
            "allowed_decrease",
            field!(Some MannWhitney, allowed_decrease),
        );

        let cusum = json!({"kind": "cusum", "reference_mean": 0.0, "reference_sd": 1.0});
        let cusum = config(cusum, "v", "mean");
        refuses_non_finite(&cusum, "shift", field!(Cusum, shift));
        refuses_non_finite(&cusum, "arl0", field!(Cusum, arl0));
        refuses_non_finite(&cusum, "threshold", field!(Some Cusum, threshold));
        refuses_non_finite(&cusum, "reference_mean", field!(Some Cusum, reference_mean));
        refuses_non_finite(&cusum, "reference_sd", field!(Some Cusum, reference_sd));
        refuses_non_finite(&cusum, "clip", field!(Some Cusum, clip));

        let ewma = json!({"kind": "ewma", "reference_mean": 0.0, "reference_sd": 1.0});
        let ewma = config(ewma, "v", "mean");
        refuses_non_finite(&ewma, "lambda", field!(Ewma, lambda));
        refuses_non_finite(&ewma, "arl0", field!(Ewma, arl0));
        refuses_non_finite(&ewma, "limit", field!(Some Ewma, limit));
        refuses_non_finite(&ewma, "reference_mean", field!(Some Ewma, reference_mean));
        refuses_non_finite(&ewma, "reference_sd", field!(Some Ewma, reference_sd));
        refuses_non_finite(&ewma, "clip", field!(Some Ewma, clip));

        let drift = config(json!({"kind": "drift", "categories": 4}), "v", "mean");
        refuses_non_finite(&drift, "threshold", field!(Some Drift, threshold));
    }

    #[test]
    fn bounds_show_large_and_tiny_floats_in_exponent_form() {
        assert_eq!(limits::VALUE_ABS_MAX.show(), "1e100");
        assert_eq!(limits::MIXING_SCALE_MIN.show(), "1e-100");
        assert_eq!(limits::MIXING_EVENTS_MAX.show(), "1e6");
        assert_eq!(limits::MW_CONFIDENCE_MAX.show(), "0.999999999");
        assert_eq!(0.0.show(), "0");
        assert_eq!(100.0.show(), "100");
        assert_eq!(limits::EWMA_LAMBDA_MIN.show(), "0.05");
    }
}
