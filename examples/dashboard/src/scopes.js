// The per-scope grid (config `scopes`): one row per scope seen, one cell per evaluation
// (`analysis` event), coloured by that scope's verdict as the core reported it. Nothing
// here judges: a scope's cell is
//   - "tripped" or "fail" when one of its reports in the event's `scoped` list says so
//     (the worst of its gates),
//   - "recovered" when it is listed passing after failing,
//   - "pass" when it is not listed (the core lists only failing, tripped and recovered
//     scopes: an unlisted scope passed, or had too few samples for a verdict),
//   - "unseen" (blank) before the scope's first labelled sample.
//   - "routed" after a ladder's `route_back` decision named the scope: its traffic went
//     back to the stable version and its samples no longer count.
// Markers: the scopes a `scoped_failure` or `graduated_response` hold or escalation
// named (held for), the scopes a `route_back` sent back (routed back), and the scopes
// whose tripped reports a rollback carries (rolled back for: a full rollback routes
// every tenant back, and these are the scopes that caused it). Above the grid, the
// ladder's rungs as they were taken (`scopes.ladder`: pause onboarding, route back,
// freeze), from their decisions.
//
// Pure: no DOM until `drawScopeGrid`, no CSS import (app.js imports scopes.css), so Node
// tests it on conformance vectors (test/scopes.test.mjs).

const LABELS = ["tenant", "tier", "agent"];

/** A scope key as the narrative names it: `tenant=acme`, `tier=gold agent=planner`, `overflow`. */
export function scopeLabel(key) {
  if (key?.overflow) return "overflow";
  return LABELS.filter((l) => key?.[l] !== undefined).map((l) => `${l}=${key[l]}`).join(" ");
}

/** A gate report's gate as the narrative names it: `p95`, or in a scope `p95 in tenant=acme`. */
export const gateLabel = (g) => (g.scope ? `${g.gate} in ${scopeLabel(g.scope)}` : g.gate);

/** The scope key of a sample under `by`, or null when it lacks one of the labels. */
function keyOf(sample, by) {
  const key = {};
  for (const l of by) {
    if (sample[l] === undefined || sample[l] === null) return null;
    key[l] = sample[l];
  }
  return key;
}

function samplesOf(input) {
  if (input.kind === "observe") return [input];
  if (input.kind === "observe_batch") return input.samples ?? [];
  return [];
}

const RANK = { unseen: 0, pass: 1, routed: 1, inconclusive: 1, recovered: 2, fail: 3, tripped: 4 };
/** The ladder's decisions (a full rollback is a `rollback`, marked per scope). */
const RUNGS = new Set(["pause_onboarding", "route_back", "freeze"]);
/** Holds and escalations that name the scopes they hold for. */
const HELD_REASONS = new Set(["scoped_failure", "graduated_response"]);
const RUNG_TEXT = { pause_onboarding: "onboarding paused", route_back: "routed back", freeze: "frozen" };

/** The grid's model from a trace and the normalised config; null without `scopes`. */
export function scopeGrid(trace, config) {
  const by = config?.scopes?.by;
  if (!by?.length) return null;
  const max = config.limits?.scopes_max ?? 64;
  const rows = new Map(); // label -> row, in the order scopes are first seen
  const row = (key, at, tier) => {
    const label = scopeLabel(key);
    if (!rows.has(label)) {
      rows.set(label, { label, key, tier, firstSeen: at, cells: [], heldFor: [], routedBack: null, rolledBackFor: [] });
    }
    return rows.get(label);
  };
  const columns = [];
  const rungs = []; // { at, rung, version, scopes? } per ladder decision, in order
  for (const entry of trace) {
    if (!entry.error) {
      for (const s of samplesOf(entry.input)) {
        const key = keyOf(s, by);
        if (!key) continue;
        const label = scopeLabel(key);
        if (rows.has(label)) continue;
        // Beyond scopes_max − 1 label tuples, new ones count in the overflow scope.
        const own = [...rows.values()].filter((r) => !r.key.overflow).length;
        if (own < max - 1) row(key, s.at, s.tier);
        else if (!rows.has("overflow")) row({ overflow: true }, s.at, undefined);
      }
    }
    for (const e of entry.step?.events ?? []) {
      if (e.kind !== "analysis") continue;
      for (const r of e.scoped ?? []) row(r.scope, e.at, undefined);
      columns.push({ at: e.at, phase: e.phase, scoped: e.scoped ?? [], decisions: [] });
    }
    for (const d of entry.step?.decisions ?? []) {
      // A decision taken at an evaluation comes in the same step as its analysis event.
      const col = columns.at(-1);
      if (col?.at === d.at) col.decisions.push(d);
      if (RUNGS.has(d.kind)) {
        rungs.push({ at: d.at, rung: d.kind, version: d.version, to: d.to, scopes: (d.scopes ?? []).map(scopeLabel) });
        for (const k of d.scopes ?? []) {
          const r = row(k, d.at, undefined);
          r.routedBack ??= { at: d.at, version: d.version, to: d.to };
        }
      }
    }
  }
  for (const r of rows.values()) {
    for (const col of columns) {
      const reports = col.scoped.filter((x) => scopeLabel(x.scope) === r.label);
      let state = col.at < r.firstSeen ? "unseen" : r.routedBack && col.at > r.routedBack.at ? "routed" : "pass";
      for (const x of reports) {
        const s = x.tripped ? "tripped" : x.verdict === "fail" ? "fail" : x.verdict === "pass" ? "recovered" : "inconclusive";
        if (RANK[s] > RANK[state]) state = s;
      }
      const named = (d) => (d.gates ?? []).some((g) => g.scope && scopeLabel(g.scope) === r.label && (g.tripped || d.kind !== "rollback"));
      const held = col.decisions.filter((d) => HELD_REASONS.has(d.reason) && (d.kind === "hold" || d.kind === "escalate") && named(d));
      const rolled = col.decisions.filter((d) => d.kind === "rollback" && named(d));
      // Held for: once per candidate version, at the first hold naming the scope.
      const version = held[0]?.gates.find((g) => g.scope && scopeLabel(g.scope) === r.label)?.arm;
      if (held.length && !r.heldFor.some((h) => h.version === version)) r.heldFor.push({ at: col.at, version });
      for (const d of rolled) r.rolledBackFor.push({ at: d.at, from: d.from, to: d.to });
      r.cells.push({ at: col.at, phase: col.phase, state, reports, held: held.length > 0, escalated: held.some((d) => d.kind === "escalate"), rolledBack: rolled.length > 0 });
    }
  }
  return { by, columns: columns.map((c) => ({ at: c.at, phase: c.phase })), rows: [...rows.values()], rungs };
}

const STATE_TEXT = {
  unseen: "no sample from this scope yet",
  pass: "not listed: passing, or too few samples for a verdict",
  recovered: "passing again after failing",
  inconclusive: "inconclusive",
  fail: "failing",
  tripped: "tripped",
  routed: "routed back to the stable version: its samples no longer count",
};

/**
 * Draws the grid into `root` (replacing its content); hides it without scopes.
 * `fmt` gives the page's formatting: { time, esc, evidence(report) }.
 */
export function drawScopeGrid(root, grid, fmt) {
  root.hidden = !grid;
  if (!grid) {
    root.innerHTML = "";
    return;
  }
  const { time, esc, evidence } = fmt;
  const head = grid.columns.map((c, i) => `<th class="col" data-i="${i}" title="${esc(`${time(c.at)} (${c.phase})`)}">` +
    `${i % 5 === 0 ? esc(time(c.at)) : ""}</th>`).join("");
  const body = grid.rows.map((r) => {
    const marks = [
      ...r.heldFor.map((h) => `<span class="scope-mark held" title="${esc(`${time(h.at)}: the rollout of ${h.version ?? "the candidate"} held for this scope (below the impact rule or the ladder's next rung)`)}">held ${esc(h.version ?? "")}</span>`),
      ...(r.routedBack ? [r.routedBack].map((b) => `<span class="scope-mark routed" title="${esc(`${time(b.at)}: this scope was routed back from ${b.version} to ${b.to} (ladder rung route_back); the rest of the split stayed`)}">⇠ ${esc(b.to ?? "")}</span>`) : []),
      ...r.rolledBackFor.map((b) => `<span class="scope-mark rolled" title="${esc(`${time(b.at)}: ${b.from} rolled back to ${b.to} because this scope tripped (everyone was routed back)`)}">⟲ ${esc(b.from)}→${esc(b.to)}</span>`),
    ].join(" ");
    const cells = r.cells.map((c) => {
      const lines = [`${time(c.at)} ${r.label}${r.tier ? ` (${r.tier})` : ""}: ${STATE_TEXT[c.state]}`,
        ...c.reports.map((x) => evidence(x)),
        c.held ? `the rollout holds for this scope (scoped_failure${c.escalated ? ", escalated" : ""})` : "",
        c.rolledBack ? "a rollback names this scope: everyone was routed back" : ""].filter(Boolean);
      const flags = `${c.held ? " held" : ""}${c.rolledBack ? " rolled" : ""}`;
      return `<td class="cell ${c.state}${flags}" data-at="${c.at}" data-state="${c.state}" title="${esc(lines.join("\n"))}"></td>`;
    }).join("");
    return `<tr data-scope="${esc(r.label)}"><th class="scope" title="${esc(`${r.label}${r.tier ? `, tier ${r.tier}` : ""}; first sample at ${time(r.firstSeen)}`)}">` +
      `${esc(r.label)}${r.tier ? ` <span class="muted">${esc(r.tier)}</span>` : ""}</th><td class="marks">${marks}</td>${cells}</tr>`;
  }).join("");
  const ladder = grid.rungs.length
    ? `<div class="scope-ladder">Ladder: ${grid.rungs.map((g) => `<span class="scope-mark rung ${esc(g.rung)}" data-rung="${esc(g.rung)}" title="${esc(`${time(g.at)}: ${g.rung} (graduated_response)`)}">` +
      `${esc(RUNG_TEXT[g.rung])}${g.scopes.length ? ` ${esc(g.scopes.join(", "))}` : ""} at ${esc(time(g.at))}</span>`).join(" → ")}</div>`
    : "";
  root.innerHTML = `<h2>Verdicts per scope <span class="muted">(scopes by ${esc(grid.by.join(" × "))}; one cell per evaluation)</span></h2>` + ladder +
    `<div class="scope-legend"><i class="cell pass"></i>pass or no verdict <i class="cell recovered"></i>passing again ` +
    `<i class="cell fail"></i>failing <i class="cell tripped"></i>tripped <i class="cell unseen"></i>no sample yet ` +
    `<i class="cell routed"></i>routed back <i class="cell held"></i>rollout held for it <i class="cell rolled"></i>rolled back for it</div>` +
    `<div class="scope-scroll"><table class="scope-grid"><thead><tr><th></th><th></th>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}
