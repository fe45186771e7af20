// The rollguard dashboard: replays a scenario in the browser through the `rollguard`
// npm package (the Rust core compiled to WebAssembly) and draws what the core returned.
// Nothing here decides anything: gate values and thresholds come from the core's
// `analysis` reports, the weight and the cooldown/breaker/pause spans from `status()`
// after each input, decisions and their reasons from the trace.
import { Policy, replay } from "rollguard";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import "./scopes.css";
import { drawScopeGrid, gateLabel, scopeGrid } from "./scopes.js";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------- formatting

let epochTimes = false;
/** A time (ms) as h:mm:ss from the clock's zero, or as a UTC clock time for epoch ms. */
function fmtTime(ms) {
  if (epochTimes) return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
const fmtNum = (x) => (x === undefined || x === null ? "–" : Math.abs(x) < 0.1 && x !== 0 ? x.toPrecision(3) : +x.toFixed(3));
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

const REASONS = {
  rollout_started: "a rollout began",
  stage_passed: "the previous stage passed its gates and bake time",
  approval_granted: "an operator approved",
  approval_timeout_continue: "the approval timed out; the policy says continue",
  approval_step: "the strategy has an approval step here",
  inconclusive: "a gate could not reach a verdict",
  gate_failed: "a gate tripped",
  gate_failing: "a gate is failing but not yet tripped",
  approval_timeout: "the approval timed out; the policy says roll back",
  approval_timeout_hold: "the approval timed out; the policy says hold",
  operator_revert: "an operator asked to revert",
  operator_abort: "an operator aborted the rollout",
  operator_force_promote: "an operator forced promotion",
  operator_retry: "an operator retried a failed action",
  breaker_tripped: "too many automated rollbacks: the circuit breaker tripped (rollback to golden, automation stopped)",
  breaker_open: "the circuit breaker is open: automation is stopped",
  cooldown_active: "a rollback is due but the cooldown forbids another automated one",
  halted: "automation is halted",
  ack_timeout: "an action was not acknowledged in time",
  action_failed: "the caller reported an action failed",
  no_rollback_target: "no validated version to roll back to",
  automated_rollback: "an automated rollback was issued",
  scoped_failure: "gates tripped in some scopes, below the impact rule: the rollout holds",
  compensation: "a rollback undoes the side effects of the versions it left, newest first",
  environment_suspected: "the stable version fails the same gates as much: holding, not rolling back",
  gradual_rollback: "gates failed a live canary: its weight is stepped down, a bake per step, before a full rollback",
};
const reasonText = (r) => `${r}: ${REASONS[r] ?? r}`;

/** The gates' rules by name, as the core normalised them (set by `model`). */
let rulesByGate = new Map();

/** A statistical gate's evidence in words, from the kind's fields in its report; "" for bounds. */
function kindEvidence(g) {
  const rule = rulesByGate.get(g.gate);
  const band = (lo, hi) => (lo !== undefined || hi !== undefined ? ` [${fmtNum(lo)}, ${fmtNum(hi)}]` : "");
  if (g.log_e_value !== undefined) {
    const boundary = rule?.alpha !== undefined ? ` against the boundary ln(1/alpha) ${fmtNum(Math.log(1 / rule.alpha))}` : "";
    return `ln e-value ${fmtNum(g.log_e_value)}${boundary}, p ${fmtNum(g.p_value)}; ` +
      `effect ${fmtNum(g.effect)}${band(g.effect_lower, g.effect_upper)}; ${g.used} used${g.baseline_used !== undefined ? ` vs ${g.baseline_used}` : ""}`;
  }
  if (g.statistic !== undefined) {
    return `${g.chart} statistic ${fmtNum(g.statistic)} against its threshold ${fmtNum(g.threshold)} ` +
      `(reference ${fmtNum(g.reference_mean)} ± ${fmtNum(g.reference_sd)}, ${g.used} samples)`;
  }
  if (g.classification !== undefined) {
    return `classified ${g.classification}, shift ${fmtNum(g.effect)}${band(g.effect_lower, g.effect_upper)}, ` +
      `p ${fmtNum(g.p_value)}, ratio of means ${fmtNum(g.mean_ratio)}; ${g.used} vs ${g.baseline_used} samples`;
  }
  if (g.marginal !== undefined && g.reason !== undefined) {
    const why = g.reason === "critical" ? ` (critical metric ${g.critical_metric} not pass)` :
      g.reason === "no_data" ? " (half the metrics or more without data)" : "";
    return `score ${g.score === undefined ? "none" : fmtNum(g.score)}${why}, fails at or below ${fmtNum(g.marginal)}, ` +
      `passes at or above ${fmtNum(g.pass)}; ` + (g.metrics ?? []).map((m) => `${m.gate} ${m.classification}`).join(", ");
  }
  if (g.measure !== undefined) {
    return `${g.measure} ${fmtNum(g.divergence)} against its threshold ${fmtNum(g.threshold)}` +
      `${g.bin !== undefined ? `; bin ${g.bin} moved most (${fmtNum(g.share)} vs ${fmtNum(g.baseline_share)})` : ""}; ${g.used} vs ${g.baseline_used} samples`;
  }
  return "";
}

function gateEvidence(g) {
  const kind = kindEvidence(g);
  if (kind) {
    return `${gateLabel(g)}${g.dry_run ? " (dry run)" : ""}: ${g.stat} of ${g.metric} on ${g.arm}: ${kind}; ${g.verdict}, ` +
      `${g.consecutive_failures} failing in a row${g.tripped ? ", tripped" : ""} (window ${fmtTime(g.window_start)}–${fmtTime(g.window_end)})`;
  }
  const bounds = [g.min !== undefined ? `min ${fmtNum(g.min)}` : "", g.max !== undefined ? `max ${fmtNum(g.max)}` : ""]
    .filter(Boolean).join(", ");
  const base = g.baseline !== undefined ? `, baseline ${fmtNum(g.baseline)}` : "";
  return `${gateLabel(g)}${g.dry_run ? " (dry run)" : ""}: ${g.stat} of ${g.metric} on ${g.arm} = ${fmtNum(g.observed)}` +
    `${base}; bounds ${bounds || "none"}; ${g.verdict}, ${g.consecutive_failures} failing in a row` +
    `${g.tripped ? ", tripped" : ""} (window ${fmtTime(g.window_start)}–${fmtTime(g.window_end)}, ${g.samples} samples)`;
}

function describeDecision(d) {
  switch (d.kind) {
    case "rollback":
      return `Roll back ${d.from} → ${d.to} (${d.target}${d.automated ? ", automated" : ", by an operator"})`;
    case "set_weight":
      return `Set ${d.version} to ${d.weight}% of traffic (step ${d.step})`;
    case "promote":
      return `Promote ${d.version} (from ${d.from})`;
    case "start_shadow":
      return `Mirror traffic to ${d.version} (shadow)`;
    case "start_preview":
      return `Start the preview of ${d.version}`;
    case "pause_for_approval":
      return `Pause ${d.version} for approval until ${fmtTime(d.deadline)} (then ${d.on_timeout})`;
    case "hold":
      return "Hold: keep routing as it is";
    case "escalate":
      return "Escalate to a human";
    case "compensate":
      return `Compensate ${d.version}'s side effect ${d.effect_id}: undo ${JSON.stringify(d.undo)}`;
    default:
      return d.kind;
  }
}

const KEY_EVENTS = new Set(["gate_tripped", "cooldown_started", "cooldown_ended", "breaker_tripped", "breaker_cleared",
  "paused", "resumed", "halted", "promoted", "rolled_back", "rollout_started", "rollout_completed", "version_validated",
  "effect_recorded", "effect_compensated", "effects_committed"]);

function describeEvent(e) {
  switch (e.kind) {
    case "gate_tripped": return `Gate ${gateLabel(e)} tripped${e.dry_run ? " (dry run: reported, not acted on)" : ""}`;
    case "cooldown_started": return `Cooldown until ${fmtTime(e.until)}`;
    case "cooldown_ended": return "Cooldown ended";
    case "breaker_tripped": return `Circuit breaker tripped (${e.rollbacks} automated rollbacks in its window)`;
    case "breaker_cleared": return "Circuit breaker cleared by an operator";
    case "paused": return `Paused (${e.by})`;
    case "resumed": return `Resumed (${e.by})`;
    case "halted": return `Automation halted (${e.reason})`;
    case "promoted": return `${e.version} promoted (previous: ${e.previous})`;
    case "rolled_back": return `Rolled back: ${e.from} → ${e.to} is now stable`;
    case "rollout_started": return `Rollout of ${e.version} started`;
    case "rollout_completed": return `Rollout of ${e.version} completed`;
    case "version_validated": return `${e.version} validated by ${e.by}`;
    case "effect_recorded": return `${e.version} caused side effect ${e.effect_id} (recorded with its undo)`;
    case "effect_compensated": return `${e.version}'s side effect ${e.effect_id} compensated (acknowledged)`;
    case "effects_committed": return `${e.effects} side effect${e.effects === 1 ? "" : "s"} of ${e.version} committed by a promotion`;
    default: return e.kind;
  }
}

// ---------------------------------------------------------------------- running

/** Replays the scenario with the core; also steps a policy to read status() after each input. */
function run(scenario) {
  const trace = replay(scenario);
  const policy = new Policy(scenario.config, scenario.start ?? 0);
  // The config as the core normalised it (every default filled in): the gates' rules,
  // for the evidence panels' reference lines (alpha, margin, objective).
  const config = policy.config();
  const statuses = [];
  for (const entry of trace) {
    try {
      policy.handle(entry.input);
    } catch {
      // refused inputs are part of the trace; the policy is unchanged
    }
    statuses.push(policy.status());
  }
  policy.free();
  return { trace, statuses, config };
}

// ---------------------------------------------------------------------- model for charts

function spansOf(trace, statuses) {
  const flags = {
    cooldown: (s) => s.cooldown_until !== undefined,
    breaker: (s) => s.breaker_open,
    paused: (s) => s.paused !== undefined,
    halted: (s) => s.halted !== undefined,
  };
  const spans = [];
  for (const [kind, on] of Object.entries(flags)) {
    let from = null;
    statuses.forEach((s, i) => {
      const at = s.now;
      if (on(s) && from === null) from = at;
      if (!on(s) && from !== null) {
        spans.push({ kind, from, to: at });
        from = null;
      }
    });
    if (from !== null) spans.push({ kind, from, to: statuses.at(-1).now, open: true });
  }
  return spans;
}

function model(trace, statuses, config) {
  const decisions = [];
  const events = [];
  const analyses = [];
  const refusals = [];
  for (const entry of trace) {
    if (entry.error) refusals.push(entry);
    for (const d of entry.step?.decisions ?? []) decisions.push(d);
    for (const e of entry.step?.events ?? []) {
      if (e.kind === "analysis") analyses.push(e);
      else events.push(e);
    }
  }
  const weight = { t: [], w: [] };
  statuses.forEach((s) => {
    weight.t.push(s.now / 1000);
    weight.w.push(s.weight);
  });
  // One chart per gate: the statistic observed on each judged arm, the baseline arm's
  // value and the effective bounds, as the core reported them at each evaluation.
  const rules = new Map((config?.gates ?? []).map((g) => [g.name, g.rule]));
  rulesByGate = rules;
  const gates = new Map();
  for (const a of analyses) {
    for (const r of a.reports) {
      if (!gates.has(r.gate)) {
        gates.set(r.gate, { name: r.gate, metric: r.metric, stat: r.stat, dry: !!r.dry_run, rule: rules.get(r.gate), points: [] });
      }
      gates.get(r.gate).points.push({ ...r, phase: a.phase });
    }
  }
  return { decisions, events, refusals, weight, gates: [...gates.values()], spans: spansOf(trace, statuses), effects: effectsOf(trace) };
}

/** The side effects recorded in the trace and what became of each: recorded (with the undo
 *  descriptor its `record_effect` gave) → compensating (a rollback's `compensate` decision)
 *  → compensated (its acknowledgement, `effect_compensated`), or committed (a promotion
 *  kept it, `effects_committed`). All read from the trace; nothing is inferred. */
function effectsOf(trace) {
  const effects = [];
  const open = (version, id) => {
    for (let i = effects.length - 1; i >= 0; i--) {
      const x = effects[i];
      if (x.version === version && x.id === id && (x.state === "recorded" || x.state === "compensating")) return x;
    }
    return undefined;
  };
  for (const entry of trace) {
    const step = entry.step;
    if (!step) continue;
    for (const e of step.events) {
      if (e.kind === "effect_recorded") {
        const undo = entry.input.kind === "record_effect" ? entry.input.effect?.undo : undefined;
        effects.push({ version: e.version, id: e.effect_id, undo, state: "recorded", recorded: e.at });
      } else if (e.kind === "effect_compensated") {
        const x = open(e.version, e.effect_id);
        if (x) Object.assign(x, { state: "compensated", done: e.at });
      } else if (e.kind === "effects_committed") {
        for (const x of effects) {
          if (x.version === e.version && x.state === "recorded") Object.assign(x, { state: "committed", done: e.at });
        }
      }
    }
    for (const d of step.decisions) {
      if (d.kind !== "compensate") continue;
      const x = open(d.version, d.effect_id);
      if (x) {
        x.state = "compensating";
        x.compensating ??= d.at;
        x.undo ??= d.undo;
      }
    }
  }
  return effects;
}

// ---------------------------------------------------------------------- charts

const SPAN_STYLE = {
  cooldown: { fill: "rgba(245, 158, 11, 0.16)", label: "cooldown" },
  breaker: { fill: "rgba(220, 38, 38, 0.13)", label: "breaker open" },
  paused: { fill: "rgba(99, 102, 241, 0.14)", label: "paused" },
  halted: { fill: "rgba(107, 114, 128, 0.18)", label: "halted" },
};
const MARK_STYLE = {
  rollback: { color: "#dc2626", label: "rollback" },
  promote: { color: "#16a34a", label: "promote" },
  escalate: { color: "#ea580c", label: "escalate" },
  hold: { color: "#a16207", label: "hold" },
  pause_for_approval: { color: "#6366f1", label: "pause" },
};
const ARM_COLORS = ["#2563eb", "#db2777", "#0d9488", "#7c3aed", "#ca8a04", "#0891b2", "#4b5563"];

/** A uPlot plugin that shades spans and draws decision markers, with hover tooltips. */
function overlay(m) {
  const marks = m.decisions.filter((d) => MARK_STYLE[d.kind]);
  return {
    hooks: {
      drawClear: [(u) => {
        const { ctx, bbox } = u;
        ctx.save();
        // From the estimated onset of a degradation to its rollback.
        for (const d of marks) {
          if (d.kind !== "rollback" || d.degradation_started_at === undefined) continue;
          const x0 = u.valToPos(d.degradation_started_at / 1000, "x", true);
          const x1 = u.valToPos(d.at / 1000, "x", true);
          ctx.fillStyle = "rgba(220, 38, 38, 0.10)";
          ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
          ctx.strokeStyle = "rgba(220, 38, 38, 0.7)";
          ctx.lineWidth = devicePixelRatio;
          ctx.setLineDash([2 * devicePixelRatio, 2 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(Math.round(x0), bbox.top);
          ctx.lineTo(Math.round(x0), bbox.top + bbox.height);
          ctx.stroke();
          ctx.setLineDash([]);
        }
        for (const s of m.spans) {
          const x0 = u.valToPos(s.from / 1000, "x", true);
          const x1 = u.valToPos(s.to / 1000, "x", true);
          ctx.fillStyle = SPAN_STYLE[s.kind].fill;
          ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
        }
        ctx.restore();
      }],
      draw: [(u) => {
        const { ctx, bbox } = u;
        ctx.save();
        for (const d of marks) {
          const x = Math.round(u.valToPos(d.at / 1000, "x", true));
          ctx.strokeStyle = MARK_STYLE[d.kind].color;
          ctx.lineWidth = d.kind === "rollback" ? 2.5 * devicePixelRatio : 1.2 * devicePixelRatio;
          ctx.setLineDash(d.kind === "rollback" || d.kind === "promote" ? [] : [4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, bbox.top);
          ctx.lineTo(x, bbox.top + bbox.height);
          ctx.stroke();
          if (d.kind === "rollback") {
            ctx.fillStyle = MARK_STYLE.rollback.color;
            ctx.font = `bold ${11 * devicePixelRatio}px system-ui, sans-serif`;
            ctx.fillText(`⟲ ${d.from}→${d.to} ${fmtTime(d.at)}`, x + 4 * devicePixelRatio, bbox.top + 12 * devicePixelRatio);
          }
        }
        ctx.restore();
      }],
      setCursor: [(u) => showTooltip(u, m)],
    },
  };
}

function showTooltip(u, m) {
  const tip = $("tooltip");
  const left = u.cursor.left;
  if (left === undefined || left < 0) {
    tip.hidden = true;
    return;
  }
  const t = u.posToVal(left, "x") * 1000;
  const tol = (u.posToVal(left + 6, "x") - u.posToVal(left, "x")) * 1000;
  const near = m.decisions.filter((d) => MARK_STYLE[d.kind] && Math.abs(d.at - t) <= tol);
  const spans = m.spans.filter((s) => s.from <= t && t <= s.to);
  const onsets = m.decisions.filter((d) => d.kind === "rollback" && d.degradation_started_at !== undefined &&
    d.degradation_started_at <= t && t < d.at);
  if (near.length === 0 && spans.length === 0 && onsets.length === 0) {
    tip.hidden = true;
    return;
  }
  const html = [
    ...near.map((d) => `<div class="tip-decision ${d.kind}"><b>${fmtTime(d.at)} ${esc(describeDecision(d))}</b>` +
      `<div>${esc(reasonText(d.reason))}</div>${(d.gates ?? []).map((g) => `<div class="ev">${esc(gateEvidence(g))}</div>`).join("")}` +
      `${d.detail ? `<div>${esc(d.detail)}</div>` : ""}</div>`),
    ...onsets.map((d) => `<div class="tip-span">degradation of ${esc(d.from)} from about ${fmtTime(d.degradation_started_at)}, rolled back at ${fmtTime(d.at)}</div>`),
    ...spans.map((s) => `<div class="tip-span ${s.kind}">${SPAN_STYLE[s.kind].label}: ${fmtTime(s.from)}–${s.open ? "end" : fmtTime(s.to)}</div>`),
  ].join("");
  tip.innerHTML = html;
  const rect = u.over.getBoundingClientRect();
  tip.hidden = false;
  const x = Math.min(rect.left + left + 14, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = `${x + window.scrollX}px`;
  tip.style.top = `${rect.top + window.scrollY + (u.cursor.top ?? 0) + 14}px`;
}

const timeAxis = () => ({
  values: (u, ticks) => ticks.map((s) => fmtTime(s * 1000)),
  space: 70,
});

function chartWidth() {
  return Math.max(480, $("charts").clientWidth - 8);
}

let charts = [];
function drawCharts(m, range) {
  for (const c of charts) c.destroy();
  charts = [];
  const root = $("charts");
  root.innerHTML = "";
  const sync = uPlot.sync("rollguard");
  const xSeries = { label: "time", value: (u, v) => (v === null || v === undefined ? "–" : fmtTime(v * 1000)) };
  const common = {
    width: chartWidth(),
    cursor: { sync: { key: sync.key }, points: { size: 6 } },
    scales: { x: { time: false, range: () => range } },
    plugins: [overlay(m)],
  };

  // Canary weight.
  const box = document.createElement("div");
  box.className = "chart";
  box.innerHTML = `<h3>Candidate traffic (%) <span class="legend-spans">${legendSpans()}</span></h3>`;
  root.append(box);
  charts.push(new uPlot({
    ...common,
    height: 150,
    series: [xSeries, { label: "candidate weight %", stroke: "#111827", width: 2, fill: "rgba(17, 24, 39, 0.06)", paths: uPlot.paths.stepped({ align: 1 }) }],
    axes: [timeAxis(), { size: 40 }],
    scales: { ...common.scales, y: { range: [0, 100] } },
  }, [m.weight.t, m.weight.w], box));

  evidencePanels = [];
  for (const g of m.gates) {
    if (EVIDENCE_KINDS.has(g.rule?.kind)) {
      drawEvidence(root, common, xSeries, g);
      continue;
    }
    const arms = [...new Set(g.points.map((p) => p.arm))];
    const times = [...new Set(g.points.map((p) => p.window_end))].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    const col = () => new Array(times.length).fill(null);
    const perArm = arms.map(col);
    const baseline = col();
    const min = col();
    const max = col();
    for (const p of g.points) {
      const i = index.get(p.window_end);
      perArm[arms.indexOf(p.arm)][i] = p.observed ?? null;
      if (p.baseline !== undefined) baseline[i] = p.baseline;
      if (p.min !== undefined) min[i] = p.min;
      if (p.max !== undefined) max[i] = p.max;
    }
    const series = [xSeries];
    const data = [times.map((t) => t / 1000)];
    arms.forEach((arm, k) => {
      series.push({ label: `${g.stat} on ${arm}`, stroke: ARM_COLORS[k % ARM_COLORS.length], width: 2, points: { show: false } });
      data.push(perArm[k]);
    });
    if (baseline.some((v) => v !== null)) {
      series.push({ label: "baseline", stroke: "#6b7280", width: 1.5, dash: [2, 3] });
      data.push(baseline);
    }
    if (max.some((v) => v !== null)) {
      series.push({ label: "max (threshold)", stroke: "#dc2626", width: 1.5, dash: [7, 4], paths: uPlot.paths.stepped({ align: 1 }) });
      data.push(max);
    }
    if (min.some((v) => v !== null)) {
      series.push({ label: "min (threshold)", stroke: "#c2410c", width: 1.5, dash: [7, 4], paths: uPlot.paths.stepped({ align: 1 }) });
      data.push(min);
    }
    const div = document.createElement("div");
    div.className = "chart";
    div.innerHTML = `<h3>${esc(g.name)} <span class="muted">${esc(g.stat)} of ${esc(g.metric)}${g.dry ? " · dry run (reported, never acted on)" : ""}</span></h3>`;
    root.append(div);
    charts.push(new uPlot({
      ...common,
      height: 170,
      series,
      axes: [timeAxis(), { size: 56, values: (u, ticks) => ticks.map(fmtNum) }],
    }, data, div));
  }
}

// ---------------------------------------------------------------------- evidence panels
//
// uPlot's series indexes count the x series: a band between the last two pushed is
// [length - 1, length] (upper, lower).
//
// One or two charts per statistical gate, from the `evidence` part of its reports (the
// fields each kind writes into the report; see `GateReport` in the package's types).
// Reference lines come from the reports themselves (cusum/ewma/drift thresholds) or from
// the gate's rule in the core's normalised config (alpha, margin, objective): the page
// draws them, it never compares anything with them.

const SEQUENTIAL_KINDS = new Set(["error_attribution", "rate_slo", "sequential_mean", "sequential_quantile"]);
const EVIDENCE_KINDS = new Set([...SEQUENTIAL_KINDS, "cusum", "ewma", "mann_whitney", "kayenta_score", "drift"]);

/** What each panel plotted, for the end-to-end test: `window.rollguardEvidence`. */
let evidencePanels = [];

/** The effect's reference line for a sequential kind: where its null ends (display only). */
function effectReference(rule) {
  const m = rule.margin ?? { relative: 0 };
  const lower = rule.worse === "lower";
  switch (rule.kind) {
    case "error_attribution":
      return { value: 1 + (m.relative ?? 0), label: `margin (rate ratio ${fmtNum(1 + (m.relative ?? 0))})` };
    case "rate_slo":
      return { value: rule.max_rate, label: `objective (max_rate ${fmtNum(rule.max_rate)})` };
    case "sequential_mean":
      if (m.absolute !== undefined) return { value: m.absolute, label: `margin (${fmtNum(m.absolute)} worse)` };
      if (!m.relative) return { value: 0, label: "margin (no difference)" };
      return null; // a fraction of the baseline's mean at the end of the burn-in: not in the reports
    case "sequential_quantile":
      if (m.absolute !== undefined) {
        const v = lower ? -m.absolute : m.absolute;
        return { value: v, label: `margin (difference ${fmtNum(v)})` };
      }
      return { value: lower ? 1 - m.relative : 1 + m.relative, label: `margin (ratio ${fmtNum(lower ? 1 - m.relative : 1 + m.relative)})` };
    default:
      return null;
  }
}

const EFFECT_TEXT = {
  error_attribution: "ratio of the candidate's error rate to the baseline's",
  rate_slo: "the judged version's error rate",
  sequential_mean: "difference of means (positive when worse)",
  sequential_quantile: "the judged quantile over the baseline's (or minus it, absolute margin)",
  mann_whitney: "Hodges-Lehmann shift judged − baseline",
};

/** Times (the reports' window ends) and one column per judged arm of `field`. */
function columns(g, field) {
  const arms = [...new Set(g.points.map((p) => p.arm))];
  const times = [...new Set(g.points.map((p) => p.window_end))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const cols = {};
  for (const f of [].concat(field)) cols[f] = arms.map(() => new Array(times.length).fill(null));
  for (const p of g.points) {
    const i = index.get(p.window_end);
    const k = arms.indexOf(p.arm);
    for (const f of Object.keys(cols)) if (p[f] !== undefined && p[f] !== null) cols[f][k][i] = p[f];
  }
  return { arms, times, cols };
}

function panel(root, title, note) {
  const div = document.createElement("div");
  div.className = "chart evidence";
  div.innerHTML = `<h3>${title} <span class="muted">${note}</span></h3>`;
  root.append(div);
  return div;
}

function addPanel(root, common, xSeries, g, part, { title, note, series, data, bands, reference, height = 150, extra }) {
  const div = panel(root, title, note);
  div.dataset.gate = g.name;
  div.dataset.kind = g.rule.kind;
  div.dataset.part = part;
  const u = new uPlot({
    ...common,
    height,
    series: [xSeries, ...series],
    bands,
    axes: [timeAxis(), { size: 56, values: (u, ticks) => ticks.map(fmtNum) }],
  }, data, div);
  charts.push(u);
  if (extra) div.append(extra);
  evidencePanels.push({ gate: g.name, kind: g.rule.kind, part, chart: charts.length - 1, reference: reference ?? null,
    labels: series.map((s) => s.label), data: data.slice(1) });
}

const refSeries = (label, color) => ({ label, stroke: color, width: 1.5, dash: [7, 4], points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) });
const armSeries = (label, k, extra = {}) => ({ label, stroke: ARM_COLORS[k % ARM_COLORS.length], width: 2, points: { show: true, size: 4 }, ...extra });

function drawEvidence(root, common, xSeries, g) {
  const rule = g.rule;
  const kind = rule.kind;
  const head = `${esc(g.name)} <span class="kind">${esc(kind)}</span>`;
  const dry = g.dry ? " · dry run (reported, never acted on)" : "";
  const x = (times) => times.map((t) => t / 1000);
  if (SEQUENTIAL_KINDS.has(kind)) {
    // The e-value against its boundary: the gate fails once the largest e-value so far
    // reaches 1/alpha (its always-valid p-value at most alpha).
    const { arms, times, cols } = columns(g, ["log_e_value", "p_value", "effect", "effect_lower", "effect_upper"]);
    const boundary = Math.log(1 / rule.alpha);
    const series = [];
    const data = [x(times)];
    arms.forEach((arm, k) => {
      series.push(armSeries(`ln e-value, ${arm}`, k));
      data.push(cols.log_e_value[k]);
      series.push(armSeries(`ln 1/p (largest so far), ${arm}`, k, { width: 1, dash: [2, 2], points: { show: false } }));
      data.push(cols.p_value[k].map((p) => (p === null ? null : -Math.log(p))));
    });
    series.push(refSeries(`boundary ln(1/alpha) = ${fmtNum(boundary)}`, "#dc2626"));
    data.push(times.map(() => boundary));
    addPanel(root, common, xSeries, g, "e_value", {
      title: `${head} · evidence`,
      note: `ln e-value of ${esc(g.stat)} of ${esc(g.metric)} against ln(1/alpha), alpha ${fmtNum(rule.alpha)}${dry}`,
      series, data, reference: boundary,
    });
    // The effect with its confidence sequence, against the margin.
    const ref = effectReference(rule);
    const eSeries = [];
    const eData = [x(times)];
    const bands = [];
    arms.forEach((arm, k) => {
      const color = ARM_COLORS[k % ARM_COLORS.length];
      eSeries.push(armSeries(`effect, ${arm}`, k));
      eData.push(cols.effect[k]);
      eSeries.push({ label: `upper bound, ${arm}`, stroke: color, width: 1, dash: [3, 3], points: { show: false } });
      eData.push(cols.effect_upper[k]);
      eSeries.push({ label: `lower bound, ${arm}`, stroke: color, width: 1, dash: [3, 3], points: { show: false } });
      eData.push(cols.effect_lower[k]);
      bands.push({ series: [eSeries.length - 1, eSeries.length], fill: `${color}22` });
    });
    if (ref) {
      eSeries.push(refSeries(ref.label, "#c2410c"));
      eData.push(times.map(() => ref.value));
    }
    const marginNote = ref ? "" : ` · margin ${fmtNum(rule.margin?.relative)} of the baseline's mean at the end of the burn-in (not in the reports: no line)`;
    addPanel(root, common, xSeries, g, "effect", {
      title: `${head} · effect`,
      note: `${esc(EFFECT_TEXT[kind])}, with its confidence band${marginNote}${dry}`,
      series: eSeries, data: eData, bands, reference: ref?.value,
    });
  } else if (kind === "cusum" || kind === "ewma") {
    const { arms, times, cols } = columns(g, ["statistic", "threshold"]);
    const series = [];
    const data = [x(times)];
    arms.forEach((arm, k) => {
      series.push(armSeries(`${kind === "cusum" ? "cumulative sum" : "EWMA z"}, ${arm}`, k));
      data.push(cols.statistic[k]);
    });
    // The threshold each report gave (the same for every report of one gate).
    const threshold = times.map((_, i) => arms.map((_, k) => cols.threshold[k][i]).find((v) => v !== null) ?? null);
    series.push(refSeries("threshold", "#dc2626"));
    data.push(threshold);
    addPanel(root, common, xSeries, g, "statistic", {
      title: `${head} · statistic`,
      note: `in reference standard deviations against its threshold, on ${esc(g.metric)}${dry}`,
      series, data, reference: threshold.find((v) => v !== null),
    });
  } else if (kind === "drift") {
    const { arms, times, cols } = columns(g, ["divergence", "threshold"]);
    const series = [];
    const data = [x(times)];
    arms.forEach((arm, k) => {
      series.push(armSeries(`${rule.measure ?? "psi"}, ${arm}`, k));
      data.push(cols.divergence[k]);
    });
    const threshold = times.map((_, i) => arms.map((_, k) => cols.threshold[k][i]).find((v) => v !== null) ?? null);
    series.push(refSeries("threshold", "#dc2626"));
    data.push(threshold);
    addPanel(root, common, xSeries, g, "divergence", {
      title: `${head} · divergence`,
      note: `${esc(rule.measure === "js" ? "Jensen-Shannon distance" : "population stability index")} of ${esc(g.metric)} against the baseline, and its threshold${dry}`,
      series, data, reference: threshold.find((v) => v !== null),
    });
  } else if (kind === "kayenta_score") {
    // Kayenta's composite score of each interval against its two thresholds, both as
    // reported: a score at or below marginal fails, one below pass is inconclusive.
    const { arms, times, cols } = columns(g, ["score", "marginal", "pass"]);
    const series = [];
    const data = [x(times)];
    arms.forEach((arm, k) => {
      series.push(armSeries(`score, ${arm}`, k));
      data.push(cols.score[k]);
    });
    const first = (f) => times.map((_, i) => arms.map((_, k) => cols[f][k][i]).find((v) => v !== null) ?? null);
    const pass = first("pass");
    const marginal = first("marginal");
    series.push(refSeries("pass", "#16a34a"));
    data.push(pass);
    series.push(refSeries("marginal", "#dc2626"));
    data.push(marginal);
    // Each member's label per interval, one row per member, in the reports' order.
    const sorted = g.points.slice().sort((a, b) => a.window_end - b.window_end);
    const members = [...new Set(sorted.flatMap((p) => (p.metrics ?? []).map((m) => m.gate)))];
    const strip = document.createElement("div");
    strip.className = "classes";
    strip.innerHTML = members.map((gate) => `<div class="member" data-member="${esc(gate)}"><span class="muted">${esc(gate)}:</span> ` +
      sorted.map((p) => {
        const m = (p.metrics ?? []).find((x) => x.gate === gate);
        const label = m ? m.classification : "absent";
        return `<span class="cls ${esc(label)}" data-at="${p.window_end}" title="${fmtTime(p.window_end)} ${esc(p.arm)}: ${esc(gate)} ${esc(label)}` +
          `${m?.critical ? " (critical)" : ""}${m?.muted ? " (muted)" : ""}; score ${p.score === undefined ? "none" : fmtNum(p.score)} (${esc(p.reason)})"></span>`;
      }).join("") + "</div>").join("");
    addPanel(root, common, xSeries, g, "score", {
      title: `${head} · score`,
      note: `Kayenta's weighted score over ${members.length} member${members.length === 1 ? "" : "s"}, against pass ${fmtNum(pass.find((v) => v !== null))} and marginal ${fmtNum(marginal.find((v) => v !== null))}; not anytime-valid${dry}`,
      series, data, reference: marginal.find((v) => v !== null), extra: strip,
    });
  } else if (kind === "mann_whitney") {
    const { arms, times, cols } = columns(g, ["effect", "effect_lower", "effect_upper"]);
    const series = [];
    const data = [x(times)];
    const bands = [];
    arms.forEach((arm, k) => {
      const color = ARM_COLORS[k % ARM_COLORS.length];
      series.push(armSeries(`HL shift, ${arm}`, k));
      data.push(cols.effect[k]);
      series.push({ label: `interval upper, ${arm}`, stroke: color, width: 1, dash: [3, 3], points: { show: false } });
      data.push(cols.effect_upper[k]);
      series.push({ label: `interval lower, ${arm}`, stroke: color, width: 1, dash: [3, 3], points: { show: false } });
      data.push(cols.effect_lower[k]);
      bands.push({ series: [series.length - 1, series.length], fill: `${color}22` });
    });
    series.push(refSeries("no shift", "#6b7280"));
    data.push(times.map(() => 0));
    // Kayenta's classification of each interval, as reported.
    const strip = document.createElement("div");
    strip.className = "classes";
    strip.innerHTML = "<span class=\"muted\">classification per interval:</span> " + g.points
      .slice().sort((a, b) => a.window_end - b.window_end)
      .map((p) => `<span class="cls ${esc(p.classification)}" data-at="${p.window_end}" title="${fmtTime(p.window_end)} ${esc(p.arm)}: ${esc(p.classification)}` +
        `${p.effect !== undefined ? `, shift ${fmtNum(p.effect)} [${fmtNum(p.effect_lower)}, ${fmtNum(p.effect_upper)}]` : ""}` +
        `${p.p_value !== undefined ? `, p ${fmtNum(p.p_value)}` : ""}, ${p.used} vs ${p.baseline_used} samples"></span>`).join("");
    addPanel(root, common, xSeries, g, "classification", {
      title: `${head} · per interval`,
      note: `${esc(EFFECT_TEXT[kind])} with Kayenta's interval (confidence ${fmtNum(rule.confidence)}); not anytime-valid${dry}`,
      series, data, bands, reference: 0, extra: strip,
    });
  }
}

function legendSpans() {
  return Object.values(SPAN_STYLE).map((s) => `<i style="background:${s.fill.replace(/[\d.]+\)$/, "0.45)")}"></i>${s.label}`).join(" ") +
    ` <i class="line" style="background:${MARK_STYLE.rollback.color}"></i>rollback` +
    ` <i class="line" style="background:${MARK_STYLE.promote.color}"></i>promote` +
    ` <i style="background:rgba(220, 38, 38, 0.25)"></i>onset → rollback` +
    ` <i class="line dashed" style="border-color:${MARK_STYLE.escalate.color}"></i>escalate/hold`;
}

// ---------------------------------------------------------------------- summary and list

function drawSummary(scenario, m) {
  const rollbacks = m.decisions.filter((d) => d.kind === "rollback");
  const cards = rollbacks.map((d) => {
    const failing = (d.gates ?? []).filter((g) => g.verdict === "fail" && !g.dry_run);
    const why = failing.length
      ? failing.map((g) => kindEvidence(g)
        ? `<li>${esc(gateLabel(g))}: ${esc(g.stat)} of ${esc(g.metric)} on ${esc(g.arm)}: <b>${esc(kindEvidence(g))}</b></li>`
        : `<li>${esc(gateLabel(g))}: ${esc(g.stat)} of ${esc(g.metric)} on ${esc(g.arm)} was <b>${fmtNum(g.observed)}</b>` +
        `${g.max !== undefined ? ` &gt; max ${fmtNum(g.max)}` : ""}${g.min !== undefined ? ` &lt; min ${fmtNum(g.min)}` : ""}` +
        `${g.baseline !== undefined ? ` (baseline ${fmtNum(g.baseline)})` : ""}, failing ${g.consecutive_failures}× in a row</li>`).join("")
      : "";
    const onset = d.degradation_started_at !== undefined ? `<div>Degradation started about <b>${fmtTime(d.degradation_started_at)}</b>: reprocess what ${esc(d.from)} handled since then.</div>` : "";
    return `<div class="card rollback" data-at="${d.at}"><div class="when">${fmtTime(d.at)}</div>` +
      `<div><b>${esc(describeDecision(d))}</b></div><div class="reason">${esc(reasonText(d.reason))}</div>` +
      `${why ? `<ul>${why}</ul>` : ""}${onset}</div>`;
  });
  const escalations = m.decisions.filter((d) => d.kind === "escalate").length;
  const refused = m.refusals.length;
  $("summary").innerHTML =
    `<div class="card intro"><div class="when">${esc(scenario.name || "scenario")}</div>` +
    `<div>${m.decisions.length} decisions, ${rollbacks.length} rollback${rollbacks.length === 1 ? "" : "s"}, ${escalations} escalation${escalations === 1 ? "" : "s"}, ${refused} refused input${refused === 1 ? "" : "s"}` +
    ` over ${fmtTime(m.weight.t.at(-1) * 1000 - (scenario.start ?? 0))}.</div>` +
    `<div class="muted">Computed in this page by the rollguard core (WebAssembly).</div></div>` +
    (cards.join("") || `<div class="card">No rollback.</div>`);
}

function drawEffects(m) {
  const root = $("effects");
  root.hidden = m.effects.length === 0;
  if (root.hidden) {
    root.innerHTML = "";
    return;
  }
  const cell = (at) => (at === undefined ? `<td class="muted">–</td>` : `<td>${fmtTime(at)}</td>`);
  const rows = m.effects.map((x) =>
    `<tr data-effect="${esc(x.id)}" data-version="${esc(x.version)}" data-state="${x.state}">` +
    `<td><b>${esc(x.id)}</b></td><td>${esc(x.version)}</td><td><code>${esc(JSON.stringify(x.undo ?? {}))}</code></td>` +
    `${cell(x.recorded)}${cell(x.compensating)}${cell(x.done)}<td><span class="state ${x.state}">${x.state}</span></td></tr>`).join("");
  const compensated = m.effects.filter((x) => x.state === "compensated").length;
  root.innerHTML =
    `<h2>Side effects <span class="muted">${m.effects.length} recorded, ${compensated} compensated; ` +
    `a rollback undoes its versions' effects newest first, one acknowledged <code>compensate</code> at a time</span></h2>` +
    `<table><thead><tr><th>effect</th><th>version</th><th>undo</th><th>recorded</th><th>compensate issued</th>` +
    `<th>acknowledged / committed</th><th>state</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function drawList(m) {
  const rows = [
    ...m.decisions.map((d) => ({ at: d.at, kind: d.kind, cls: `decision ${d.kind}`, title: describeDecision(d), reason: reasonText(d.reason), gates: d.gates ?? [], detail: d.detail })),
    ...m.events.filter((e) => KEY_EVENTS.has(e.kind)).map((e) => ({ at: e.at, kind: e.kind, cls: `event ${e.kind}`, title: describeEvent(e) })),
    ...m.refusals.map((r) => ({ at: r.input.at ?? 0, kind: "refused", cls: "refused", title: `Refused ${r.input.kind}${r.input.version ? ` ${r.input.version}` : ""}`, reason: `${r.error.code}: ${r.error.message}` })),
  ];
  rows.sort((a, b) => a.at - b.at);
  $("decisions").innerHTML = rows.map((r) =>
    `<li class="${r.cls}" data-kind="${r.kind}" data-at="${r.at}" title="${esc([r.reason, ...(r.gates ?? []).map(gateEvidence)].filter(Boolean).join("\n"))}">` +
    `<span class="when">${fmtTime(r.at)}</span> <span class="what">${esc(r.title)}</span>` +
    `${r.reason ? `<div class="reason">${esc(r.reason)}</div>` : ""}` +
    `${(r.gates ?? []).filter((g) => g.verdict !== "pass").map((g) => `<div class="ev">${esc(gateEvidence(g))}</div>`).join("")}` +
    `${r.detail ? `<div class="ev">${esc(r.detail)}</div>` : ""}</li>`).join("");
}

// ---------------------------------------------------------------------- loading

function show(scenario) {
  const { trace, statuses, config } = run(scenario);
  const times = statuses.map((s) => s.now);
  const start = scenario.start ?? 0;
  epochTimes = start > 1e11 || times[0] > 1e11;
  const m = model(trace, statuses, config);
  $("scenario-name").textContent = `${scenario.name || "scenario"} · ${trace.length} inputs`;
  $("message").textContent = "";
  const range = [Math.min(start, times[0] ?? start) / 1000, Math.max(...times, start + 1) / 1000];
  drawSummary(scenario, m);
  drawEffects(m);
  drawList(m);
  drawCharts(m, range);
  const grid = scopeGrid(trace, config);
  drawScopeGrid($("scopes"), grid, { time: fmtTime, esc, evidence: gateEvidence });
  window.rollguardScopes = grid;
  window.rollguardTrace = trace;
  window.rollguardStatuses = statuses;
  window.rollguardCharts = charts;
  window.rollguardEvidence = evidencePanels;
  window.rollguardConfig = config;
  window.rollguardEffects = m.effects;
  document.body.dataset.status = "ready";
}

function fail(message) {
  $("message").textContent = message;
  $("message").className = "error";
  document.body.dataset.status = "error";
}

/** Loads a bundled scenario: `demo.json` (the default), `statistical.json` or `tenants.json`. */
async function loadBundled(name = $("bundled").value) {
  const res = await fetch(new URL(`./${name}`, import.meta.url));
  show(await res.json());
}

/** A scenario JSON, or inputs JSONL (lines of inputs, or of `rollguard replay --all` entries) with a policy JSON. */
async function loadFiles(files) {
  let scenario = null;
  let config = null;
  let inputs = null;
  for (const file of files) {
    const text = await file.text();
    if (file.name.endsWith(".jsonl") || file.name.endsWith(".ndjson")) {
      inputs = text.split("\n").filter((l) => l.trim()).map((l, i) => {
        try {
          const v = JSON.parse(l);
          return v.input && v.index !== undefined ? v.input : v;
        } catch (e) {
          throw new Error(`${file.name} line ${i + 1}: ${e.message}`);
        }
      });
      continue;
    }
    const doc = JSON.parse(text);
    if (doc.inputs && doc.config) scenario = doc;
    else if (doc.config && doc.state) config = doc.config; // a snapshot's config
    else config = doc;
  }
  if (!scenario && inputs && config) scenario = { format_version: 1, name: files.map((f) => f.name).join(" + "), config, inputs };
  if (!scenario && inputs) throw new Error("inputs need their policy: drop the policy JSON together with the JSONL");
  if (!scenario) throw new Error("no scenario: drop a scenario JSON (config + inputs), or inputs JSONL with a policy JSON");
  show(scenario);
}

async function guarded(fn) {
  try {
    document.body.dataset.status = "loading";
    await fn();
  } catch (e) {
    fail(e.code ? `${e.code}${e.path ? ` at ${e.path}` : ""}: ${e.message}` : String(e.message ?? e));
  }
}

$("load-demo").addEventListener("click", () => guarded(() => loadBundled()));
$("bundled").addEventListener("change", () => guarded(() => loadBundled()));
$("file").addEventListener("change", (ev) => guarded(() => loadFiles([...ev.target.files])));
let depth = 0;
window.addEventListener("dragenter", (ev) => { ev.preventDefault(); depth++; document.body.classList.add("dragging"); });
window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; document.body.classList.remove("dragging"); } });
window.addEventListener("dragover", (ev) => ev.preventDefault());
window.addEventListener("drop", (ev) => {
  ev.preventDefault();
  depth = 0;
  document.body.classList.remove("dragging");
  guarded(() => loadFiles([...ev.dataTransfer.files]));
});
window.addEventListener("resize", () => { for (const c of charts) c.setSize({ width: chartWidth(), height: c.height }); });

// `#statistical` or `#tenants` in the address opens the second or third bundled scenario.
if (location.hash === "#statistical") $("bundled").value = "statistical.json";
if (location.hash === "#tenants") $("bundled").value = "tenants.json";
guarded(() => loadBundled());
