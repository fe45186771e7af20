// ---- Data documents: the canonical snake_case JSON of rollguard (format_version 1). ----
// One policy file loads unchanged in Rust, Python and JS. Times are integer milliseconds
// below 2^53 on a clock the caller chooses.

/** Milliseconds on the caller's clock: a non-negative integer below 2^53. */
export type Timestamp = number;

export type Stat = "mean" | "min" | "max" | "p50" | "p90" | "p95" | "p99" | "rate" | "count";
export type Phase = "shadow" | "preview" | "canary" | "bake" | "steady";
export type OnTimeout = "rollback" | "continue" | "hold";
export type PauseKind = "operator" | "approval";
export type TargetKind = "stable" | "previous" | "golden" | "version";
export type Verdict = "pass" | "fail" | "inconclusive";
export type Validator = "config" | "operator" | "rollout";
export type Lifecycle = "registered" | "rolling_out" | "baking" | "stable" | "retired" | "failed" | "aborted";

/** A version bundle: model, prompt, tools... identified by an immutable digest. */
export interface VersionSpec {
  id: string;
  digest: string;
  components?: Record<string, string>;
  validated?: boolean;
}

export interface MetricConfig {
  name: string;
  kind: "value" | "count";
  /** Defaults to analysis.interval_ms. */
  window_ms?: number;
  buckets?: number;
  histogram_range?: { min: number; max: number };
}

export type Rule =
  | { kind: "threshold"; min?: number; max?: number }
  | { kind: "vs_baseline"; max_ratio?: number; min_ratio?: number; max_increase?: number; max_decrease?: number; baseline_min?: number }
  /** Anytime-valid test of which arm errors come from (count metric, stat "rate"). */
  | { kind: "error_attribution"; alpha?: number; margin?: Margin; mixing_events?: number }
  /** Anytime-valid two-sample test of means (value metric, stat "mean"). */
  | { kind: "sequential_mean"; alpha?: number; worse?: "higher" | "lower"; margin?: Margin; mixing_scale?: number;
      /** Widen each arm's variance for lag-1 serial correlation (default "adjust"). */
      autocorrelation?: "adjust" | "ignore" }
  /** Anytime-valid test of the error rate against an objective (count metric, stat "rate"). */
  | { kind: "rate_slo"; max_rate: number; alpha?: number; mixing_events?: number }
  /** Anytime-valid two-sample test of a quantile (value metric, stat "p50"/"p90"/"p95"/"p99"). */
  | { kind: "sequential_quantile"; alpha?: number; worse?: "higher" | "lower"; margin?: Margin; mixing_events?: number }
  /** CUSUM against the version's own reference (value metric, stat "mean"; bake, steady). */
  | { kind: "cusum"; worse?: "higher" | "lower"; shift?: number; arl0?: number; threshold?: number; reference_mean?: number; reference_sd?: number; autocorrelation?: "adjust" | "ignore"; clip?: number | null }
  /** EWMA chart against the version's own reference (value metric, stat "mean"; bake, steady). */
  | { kind: "ewma"; worse?: "higher" | "lower"; lambda?: number; arl0?: number; limit?: number; reference_mean?: number; reference_sd?: number; autocorrelation?: "adjust" | "ignore"; clip?: number | null }
  /** Kayenta's per-interval Mann-Whitney classification (value metric, stat "mean");
   *  fixed-horizon per interval, not anytime-valid. */
  | { kind: "mann_whitney"; worse?: "higher" | "lower" | "either" | "increase" | "decrease"; confidence?: number; tolerance?: number; effect_size?: "mean_ratio" | "cles"; allowed_increase?: number; allowed_decrease?: number; outliers?: { strategy?: "keep" | "remove"; factor?: number }; samples_max?: number }
  /** Distribution shift of a categorical or binned output between the arms (value metric, stat "mean"). */
  | { kind: "drift"; measure?: "psi" | "js"; threshold?: number; categories?: number; bins?: { min: number; max: number; count: number } }
  /** Kayenta's composite score over earlier dry-run mann_whitney gates (WeightedSumScorer;
   *  fails at or below marginal, inconclusive below pass). metric and stat label the report. */
  | { kind: "kayenta_score"; members: KayentaMember[]; group_weights?: Record<string, number>; pass: number; marginal: number };

/** A member of a kayenta_score gate: an earlier mann_whitney gate and its Kayenta settings. */
export interface KayentaMember {
  gate: string;
  groups?: string[];
  critical?: boolean;
  must_have_data?: boolean;
  muted?: boolean;
}

/** The smallest regression worth acting on (error_attribution takes a relative one). */
/** The side of the split `assign` puts a routing key on. */
export type Arm = "stable" | "candidate";

/** What importKayenta returns: metrics and gates to put in a policy, and what was
 *  ignored or approximated (provider queries, ...), with the Kayenta field's path. */
export interface KayentaImport {
  metrics: MetricConfig[];
  gates: GateConfig[];
  warnings: { path: string; message: string }[];
}

export type Margin = { relative: number } | { absolute: number };

export interface GateConfig {
  name: string;
  metric: string;
  stat: Stat;
  rule: Rule;
  samples_min?: number;
  on_no_data?: "inconclusive" | "fail" | "pass";
  dry_run?: boolean;
  persistence?: { consecutive?: number; for_ms?: number; clear_after?: number; keep_failing_ms?: number };
  phases?: Phase[];
}

export type CanaryStep =
  | { kind: "shadow"; duration_ms: number }
  | { kind: "set_weight"; weight: number; duration_ms?: number }
  | { kind: "approval" };

export type Strategy =
  | { kind: "canary"; steps: CanaryStep[]; post_promotion_bake_ms?: number }
  | { kind: "blue_green"; shadow_ms?: number; preview_ms?: number; auto_promote?: boolean; post_promotion_bake_ms?: number };

/** A policy document (`PolicyConfig` in Rust). */
export interface PolicyConfig {
  format_version: 1;
  name?: string;
  versions: VersionSpec[];
  stable: string;
  candidate?: string;
  metrics: MetricConfig[];
  gates?: GateConfig[];
  strategy: Strategy;
  analysis?: { interval_ms?: number };
  approval?: { timeout_ms?: number; on_timeout?: OnTimeout; pause_on_inconclusive?: boolean };
  safety?: {
    cooldown_ms?: number;
    breaker?: { max_rollbacks?: number; window_ms?: number };
    ack_timeout_ms?: number;
    /** Where automated rollbacks go: `default` (stable before promotion, previous after) or `golden`. */
    rollback_to?: "default" | "golden";
    /**
     * Gradual rollback: when gates fail a live canary, step the candidate's weight down
     * through `steps` (percent, strictly decreasing, each 1..=99), each a `set_weight` with
     * reason `gradual_rollback` baked for `bake_ms`, before the full rollback. Off when absent.
     */
    gradual_rollback?: { steps: number[]; bake_ms: number };
  };
  limits?: {
    versions_max?: number; label_len_max?: number; text_len_max?: number; state_bytes_max?: number;
    evaluations_per_input_max?: number; cells_read_per_input_max?: number;
    /** Most side effects (`record_effect`) held at once (default 64). */
    effects_max?: number;
    /** Most scopes held, the overflow scope included (default 64). */
    scopes_max?: number;
  };
  /** Session pinning of `Policy.assign` (default 30 minutes; 0 turns it off). */
  assignment?: { pin_max_ms?: number };
  /**
   * Environment or model: before rolling back for a threshold or rate_slo gate in shadow or
   * canary, check whether the stable version fails it too (by at least `ratio`, default 0.8,
   * of the candidate's degradation); if so hold and escalate `environment_suspected`.
   * `check` defaults to false.
   */
  environment?: { check?: boolean; ratio?: number };
  /** Verdicts per tenant, tier or agent as well as overall. */
  scopes?: ScopesConfig;
}

/** Config `scopes`: which labels form a scope, and how statistical gates split alpha. */
export interface ScopesConfig {
  by: ("tenant" | "tier" | "agent")[];
  /** The share of each statistical gate's alpha spent on the scopes (default 0.5). */
  alpha_share?: number;
  /** Samples a scope's window needs before its gates judge it (default: the gate's). */
  samples_min?: number;
  /** Most histogram cells a bucket of a scope's window keeps (default 48, 16 to 4098);
   *  past it the bucket halves its resolution. */
  histogram_bins_max?: number;
  /** Per tier, how its scopes are judged instead: a gate's rule in full (same kind)
   *  and `samples_min`. */
  tiers?: Record<string, {
    samples_min?: number;
    gates?: Record<string, { rule?: Rule; samples_min?: number }>;
  }>;
  /** When gates tripped in scopes roll back (default: any one); below it the rollout
   *  holds and escalates with `scoped_failure`. Not with `ladder`. */
  impact?: Impact;
  /** The graduated response to gates tripped in scopes only: rungs in this order, each
   *  at most once; the most severe rung met applies, once per rollout. Not with
   *  `impact` (the one-rung ladder `[{rung: "rollback", when: impact}]`). */
  ladder?: LadderRung[];
}

/** An impact rule, or a ladder rung's trigger: any one condition met; `{}` in a rung
 *  means any tripped scope. */
export interface Impact {
  tiers?: string[];
  scopes_min?: number;
  traffic_min?: number;
}

/** A rung of `scopes.ladder`. */
export type Rung = "pause_onboarding" | "route_back" | "freeze" | "rollback";

/** One rung of `scopes.ladder` and when it applies. */
export interface LadderRung {
  rung: Rung;
  when?: Impact;
}

/** A scope in reports and events: its labels, or `{overflow: true}`. */
export interface ScopeKey {
  tenant?: string;
  tier?: string;
  agent?: string;
  overflow?: boolean;
}

/** One observation: `value` for value metrics, `events` out of `total` for count metrics. */
export interface Sample {
  at: Timestamp;
  arm: string;
  metric: string;
  value?: number;
  events?: number;
  total?: number;
  tenant?: string;
  tier?: string;
  agent?: string;
}

/**
 * One label per row of an `observeMany` / `observeCounts` column: the labels themselves
 * (`null` or `undefined`: none), or dictionary-encoded, `codes[i]` indexing `categories`
 * (-1, or 0xFFFFFFFF in a `Uint32Array`: none).
 */
export type LabelColumn =
  | (string | null | undefined)[]
  | { codes: Int32Array | Uint32Array | number[]; categories: string[] };

/** The label columns of a column of samples: each row is the sample with these labels. */
export interface LabelColumns {
  tenant?: LabelColumn;
  tier?: LabelColumn;
  agent?: LabelColumn;
}

/** Operator commands and the acknowledgement protocol. */
export type Command =
  | { kind: "ack"; at: Timestamp; action_id: number }
  | { kind: "action_failed"; at: Timestamp; action_id: number; reason?: string }
  | { kind: "register_version"; at: Timestamp; version: VersionSpec }
  | { kind: "start_rollout"; at: Timestamp; version: string }
  | { kind: "pause"; at: Timestamp }
  | { kind: "resume"; at: Timestamp }
  | { kind: "abort"; at: Timestamp }
  | { kind: "revert_now"; at: Timestamp; target?: TargetKind; version?: string }
  | { kind: "force_promote"; at: Timestamp }
  | { kind: "mark_validated"; at: Timestamp; version: string }
  | { kind: "clear_breaker"; at: Timestamp }
  | { kind: "record_effect"; at: Timestamp; version: string; effect: Effect };

/** A side effect a version caused, with its undo descriptor (any object, opaque to the policy). */
export interface Effect {
  id: string;
  undo: { [key: string]: unknown };
}

/** Everything a policy accepts, tagged by `kind`. */
export type Input =
  | ({ kind: "observe" } & Sample)
  | { kind: "observe_batch"; samples: Sample[] }
  | { kind: "tick"; at: Timestamp }
  | Command;

export type Reason =
  | "rollout_started" | "stage_passed" | "approval_granted" | "approval_timeout_continue"
  | "approval_step" | "inconclusive" | "gate_failed" | "gate_failing" | "approval_timeout"
  | "approval_timeout_hold" | "operator_revert" | "operator_abort" | "operator_force_promote"
  | "operator_retry" | "breaker_tripped" | "breaker_open" | "cooldown_active" | "halted"
  | "ack_timeout" | "action_failed" | "no_rollback_target" | "automated_rollback"
  | "compensation" | "scoped_failure" | "environment_suspected" | "graduated_response"
  | "gradual_rollback";

/** The evidence of one gate evaluation: observed values, effective bounds, window. */
export interface GateReport {
  gate: string;
  metric: string;
  stat: Stat;
  verdict: Verdict;
  arm: string;
  /** The scope judged, for a scope's report. */
  scope?: ScopeKey;
  observed?: number;
  baseline?: number;
  min?: number;
  max?: number;
  /** Sequential kinds: the effect estimate (error_attribution: ratio of error rates;
   *  sequential_mean: difference of means, positive when worse); mann_whitney: the
   *  Hodges-Lehmann shift judged − baseline, with Kayenta's interval as its bounds. */
  effect?: number;
  /** Sequential kinds: the confidence sequence's bounds of the effect. */
  effect_lower?: number;
  effect_upper?: number;
  /** Sequential kinds: ln of the e-value now, and the always-valid p-value. */
  log_e_value?: number;
  p_value?: number;
  /** Sequential kinds: observations used on each arm (errors, for error_attribution;
   *  samples, for sequential_mean; requests, for rate_slo, which has no baseline). */
  used?: number;
  baseline_used?: number;
  /** sequential_mean with autocorrelation "adjust": how many times wider the variance
   *  of the difference of means is for the arms' serial correlation (1 when none). */
  variance_inflation?: number;
  /** sequential_quantile: the quantile tested (0.99 for p99), and each arm's quantile
   *  since the phase began with its confidence-sequence bounds (alpha/2 each). Its
   *  effect is the ratio of the quantiles (relative margin) or their difference. */
  quantile?: number;
  judged_quantile?: number;
  judged_lower?: number;
  judged_upper?: number;
  baseline_quantile?: number;
  baseline_lower?: number;
  baseline_upper?: number;
  /** mann_whitney: Kayenta's classification of the interval, U of the judged arm, the
   *  ratio of means, the common-language effect size U / (n·m) and the outliers removed
   *  from each arm (p_value, effect*, used and baseline_used as above). */
  classification?: "high" | "low" | "pass" | "no_data";
  u_statistic?: number;
  mean_ratio?: number;
  cles?: number;
  outliers_removed?: number;
  baseline_outliers_removed?: number;
  /** kayenta_score: the score 0..=100 (absent when no member was judged), its thresholds,
   *  why (critical metric, no data, or the weighted group scores), each group's counts,
   *  score and weight, and each member's Kayenta label. */
  score?: number;
  marginal?: number;
  pass?: number;
  reason?: "score" | "critical" | "no_data";
  critical_metric?: string;
  groups?: { name: string; score?: number; weight: number; pass: number; high: number; low: number; no_data: number; no_data_fail: number }[];
  metrics?: { gate: string; classification: "high" | "low" | "pass" | "no_data" | "no_data_fail"; critical?: boolean; muted?: boolean }[];
  /** cusum and ewma: which chart, its statistic (the cumulative sum, or the EWMA z) and
   *  threshold (reference deviations), the reference. */
  chart?: "cusum" | "ewma";
  /** drift: the measure, its value (once both arms have samples; compared with
   *  `threshold`), the bin that moved most and each arm's share of it; `used` and
   *  `baseline_used` count the samples binned. */
  measure?: "psi" | "js";
  divergence?: number;
  bin?: number;
  share?: number;
  baseline_share?: number;
  statistic?: number;
  threshold?: number;
  reference_mean?: number;
  reference_sd?: number;
  samples: number;
  baseline_samples?: number;
  window_start: Timestamp;
  window_end: Timestamp;
  consecutive_failures: number;
  tripped: boolean;
  dry_run?: boolean;
  /** With `scopes` in the config, the alpha an anytime-valid gate was judged at. */
  alpha?: number;
}

export type Action =
  | { kind: "start_shadow"; version: string }
  | { kind: "start_preview"; version: string }
  | { kind: "set_weight"; version: string; weight: number; step: number }
  | { kind: "promote"; version: string; from: string }
  | { kind: "rollback"; from: string; to: string; target: TargetKind; automated: boolean; degradation_started_at?: Timestamp }
  | { kind: "pause_for_approval"; version: string; deadline: Timestamp; on_timeout: OnTimeout }
  | { kind: "compensate"; version: string; effect_id: string; undo: { [key: string]: unknown } }
  /** Ladder rungs (`scopes.ladder`), acknowledged like every routing change. */
  | { kind: "pause_onboarding"; version: string }
  | { kind: "route_back"; version: string; to: string; scopes: ScopeKey[] }
  | { kind: "freeze"; version: string }
  | { kind: "hold" }
  | { kind: "escalate" };

/** One decision: an action, why, and (for routing changes) the id to acknowledge. */
export type Decision = Action & {
  at: Timestamp;
  reason: Reason;
  action_id?: number;
  ack_deadline?: Timestamp;
  detail?: string;
  gates?: GateReport[];
};

export interface Aliases {
  stable: string;
  candidate?: string;
  previous?: string;
  golden: string;
}

export type EventKind =
  | { kind: "version_registered"; version: string; evicted?: string }
  | { kind: "version_validated"; version: string; by: Validator }
  | ({ kind: "aliases_changed" } & Aliases)
  | { kind: "rollout_started"; version: string }
  | { kind: "action_acknowledged"; action_id: number }
  | { kind: "action_failed"; action_id: number; reason: string }
  | { kind: "ack_timed_out"; action_id: number }
  | { kind: "stage_started"; stage: number; phase: Phase; weight: number; ends_at?: Timestamp }
  /** A gradual rollback's step is acknowledged and bakes (step 1..=steps). */
  | { kind: "gradual_step_started"; step: number; steps: number; weight: number; ends_at?: Timestamp }
  | { kind: "analysis"; phase: Phase; reports: GateReport[]; scoped?: GateReport[] }
  | { kind: "analysis_skipped"; evaluations: number; resumes_at: Timestamp }
  | { kind: "gate_tripped"; gate: string; dry_run?: boolean; scope?: ScopeKey }
  | { kind: "gate_cleared"; gate: string; dry_run?: boolean; scope?: ScopeKey }
  | { kind: "promoted"; version: string; previous: string }
  | { kind: "rolled_back"; from: string; to: string }
  | { kind: "rollout_completed"; version: string }
  | { kind: "paused"; by: PauseKind }
  | { kind: "resumed"; by: PauseKind }
  | { kind: "approval_timed_out"; on_timeout: OnTimeout }
  | { kind: "cooldown_started"; until: Timestamp }
  | { kind: "cooldown_ended" }
  | { kind: "breaker_tripped"; rollbacks: number }
  | { kind: "breaker_cleared" }
  | { kind: "halted"; reason: Reason }
  | { kind: "effect_recorded"; version: string; effect_id: string }
  | { kind: "effect_compensated"; version: string; effect_id: string }
  | { kind: "effects_committed"; version: string; effects: number }
  | { kind: "command_accepted"; command: string };

/** A fact, with its time. */
export type Event = EventKind & { at: Timestamp };

/** What one input produced. */
export interface Step {
  at: Timestamp;
  decisions: Decision[];
  events: Event[];
}

/** Where a policy stands. */
export interface Status {
  now: Timestamp;
  aliases: Aliases;
  phase?: Phase;
  weight: number;
  stage?: number;
  pending_action?: number;
  paused?: PauseKind;
  halted?: Reason;
  breaker_open: boolean;
  cooldown_until?: Timestamp;
  tripped_gates: string[];
  /** Side effects held (recorded, neither compensated nor committed); absent when 0. */
  effects_held?: number;
  /** Of those, how many wait to be compensated after a rollback; absent when 0. */
  compensations_waiting?: number;
  /** The ladder's `pause_onboarding` holds; absent when false. */
  onboarding_paused?: boolean;
  /** The scopes the ladder's `route_back` sent back to stable; absent when empty. */
  routed_back?: ScopeKey[];
  /** The ladder's `freeze` holds until `resume`; absent when false. */
  frozen?: boolean;
  /** A gradual rollback under way (step of steps, at `weight`, baking until `bake_ends_at`)
   *  or stopped at a weight with gates passing; absent otherwise. */
  gradual_rollback?: {
    step: number; steps: number; from_weight: number; weight: number;
    bake_ends_at?: Timestamp; stopped?: boolean;
  };
}

/** Why `Policy.assign` puts a key where it does. */
export type AssignReason = "no_rollout" | "stable" | "candidate" | "rolled_back" | "promoted";

/** Where a routing key goes (`Policy.assign`, docs/assignment.md). */
export interface Assignment {
  arm: Arm;
  /** The version id to serve. */
  version: string;
  reason: AssignReason;
  /** The candidate weight the answer used, in basis points. */
  weight_bp: number;
  /** The rollout's salt, 16 lowercase hex digits (absent without a rollout). */
  salt?: string;
  /** Whether a session pin decided the weight. */
  pinned: boolean;
}

/** An acknowledged change of the candidate's weight (`RoutingTable.weights`). */
export interface WeightChange {
  at: Timestamp;
  weight_bp: number;
}

/** What a rollout does with traffic now (`RoutingTable.mode`). */
export type RoutingMode = "no_rollout" | "split" | "rolled_back" | "promoted";

/** Everything a router needs to reproduce `Policy.assign` on its own
 *  (`Policy.routingTable()`, docs/assignment.md). */
export interface RoutingTable {
  mode: RoutingMode;
  /** The version of every key off the candidate: the stable one, or a rollback's target. */
  stable: string;
  /** The rollout's candidate (absent without a rollout). */
  candidate?: string;
  /** The rollout's salt, 16 lowercase hex digits (absent without a rollout). */
  salt?: string;
  /** The routed weight in basis points (0 unless `mode` is `"split"`). */
  weight_bp: number;
  /** The rollout's acknowledged weight changes, in time order, for session pins. */
  weights: WeightChange[];
  /** `assignment.pin_max_ms`. */
  pin_max_ms: number;
  /** The ladder's `pause_onboarding` holds (mode `"split"`): a tenant not yet sent to
   *  the candidate goes to `stable`. Absent when false. */
  onboarding_paused?: boolean;
  /** Scopes the ladder routed back (mode `"split"`): a request whose labels match one
   *  (every label the key names equal) goes to `stable` before any key is assigned.
   *  Absent when empty. */
  routed_back?: ScopeKey[];
}

/** A registered version. */
export interface Version {
  id: string;
  digest: string;
  components?: Record<string, string>;
  stage: Lifecycle;
  validated?: { at: Timestamp; by: Validator };
  seq: number;
  held_stable?: number;
}

/**
 * The whole state of a policy with its config; its `state` is opaque. Snapshots have
 * their own format: this build writes 2 (`snapshotFormatVersion()`) and restores 1 and 2.
 */
export interface Snapshot {
  format_version: 1 | 2;
  config: PolicyConfig;
  state: unknown;
}

/** A config, a start time and inputs: what `rollguard replay` and `replay()` run. */
export interface Scenario {
  format_version: 1;
  name?: string;
  description?: string;
  config: PolicyConfig;
  start?: Timestamp;
  inputs: Input[];
}

/** The thrown error's shape: `code` is the stable contract, `message` is not. */
export interface ErrorInfo {
  code: ErrorCode;
  path: string;
  message: string;
}

/** One line of a trace: an input and what it produced, or why it was refused. */
export interface TraceEntry {
  index: number;
  input: Input;
  step?: Step;
  error?: ErrorInfo;
}

export type ErrorCode =
  | "invalid_json" | "unsupported_format_version" | "no_steps" | "weight_out_of_range"
  | "min_above_max" | "zero_duration" | "limit_exceeded" | "duplicate_name"
  | "unknown_reference" | "invalid_value" | "state_too_large" | "too_much_work"
  | "non_finite_value" | "value_out_of_range"
  | "negative_count" | "events_exceed_total" | "count_out_of_range" | "metric_kind_mismatch"
  | "time_went_backwards" | "time_out_of_range" | "unknown_arm" | "unknown_metric"
  | "label_too_long" | "text_too_long" | "unknown_version" | "duplicate_version"
  | "invalid_command" | "action_pending" | "unknown_action" | "breaker_open" | "invalid_rollback_target"
  | "registry_full" | "duplicate_effect" | "too_many_effects" | "unknown_agent" | "invalid_salt"
  | "snapshot_corrupt";

/**
 * Per-agent policies (README "Per-agent versions"): a default policy config and, per agent,
 * a JSON merge patch (RFC 7396) of it; agent `a`'s policy is named `<name>/a`.
 */
export interface AgentsConfig {
  format_version: 1;
  name?: string;
  /** Most agents (default 64). */
  agents_max?: number;
  policy: PolicyConfig;
  agents: Record<string, Record<string, unknown>>;
}

/** An input for `Agents`: a policy input with the agent it is for (a sample's own `agent`). */
export type AgentInput = Input & { agent?: string };

/** What one input to `Agents` produced: the agents with something to say, in name order. */
export interface AgentsStep {
  at: number;
  agents: { agent: string; step: Step }[];
}

export interface AgentsSnapshot {
  format_version: number;
  config: AgentsConfig;
  /** The agents' clock: the latest input's time. */
  now: number;
  agents: Record<string, Snapshot>;
}

/** What every method throws on refusal: an `Error` with the core's `code` and `path`. */
export interface RollguardError extends Error {
  name: "RollguardError";
  code: ErrorCode;
  path: string;
}
