// The per-scope grid's model (src/scopes.js) on conformance vectors: a vector's steps
// are a trace (input, decisions, events) the core produced, so the grid is checked
// against what the core decided, not against a hand-written trace.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { scopeGrid } from "../src/scopes.js";

const VECTORS = new URL("../../../tests/vectors/", import.meta.url);

function vectorTrace(path) {
  const v = JSON.parse(readFileSync(new URL(path, VECTORS), "utf8"));
  const trace = v.steps.map((s, index) => (s.error
    ? { index, input: s.input, error: s.error }
    : { index, input: s.input, step: { decisions: s.decisions ?? [], events: s.events ?? [] } }));
  return { trace, config: v.config, steps: v.steps };
}

const decisions = (steps, kind) => steps.flatMap((s) => s.decisions ?? []).filter((d) => d.kind === kind);

test("route_back marks the scopes it names, and their later cells are routed", () => {
  const { trace, config, steps } = vectorTrace("scopes/ladder_route_back_then_approval_at_promotion.json");
  const grid = scopeGrid(trace, config);
  const routes = decisions(steps, "route_back");
  assert.ok(routes.length >= 2, "the vector routes back twice");
  const routed = new Map(routes.flatMap((d) => d.scopes.map((k) => [`tenant=${k.tenant}`, d])));
  for (const r of grid.rows) {
    const d = routed.get(r.label);
    if (!d) {
      assert.equal(r.routedBack, null, `${r.label} is not routed back`);
      assert.ok(r.cells.every((c) => c.state !== "routed"), `${r.label}: no routed cell`);
      continue;
    }
    assert.deepEqual(r.routedBack, { at: d.at, version: d.version, to: d.to }, r.label);
    for (const c of r.cells) {
      if (c.at > d.at) assert.equal(c.state, "routed", `${r.label}@${c.at} after its route back`);
      else assert.notEqual(c.state, "routed", `${r.label}@${c.at} before its route back`);
    }
    // The cell of the evaluation that routed it back shows why: it tripped.
    assert.equal(r.cells.find((c) => c.at === d.at)?.state, "tripped", `${r.label} tripped when routed back`);
  }
  assert.deepEqual(grid.rungs.map((g) => [g.rung, g.at, g.scopes]),
    routes.map((d) => ["route_back", d.at, d.scopes.map((k) => `tenant=${k.tenant}`)]));
});

test("pause_onboarding and freeze are listed as rungs; graduated_response holds mark the scopes held for", () => {
  const { trace, config, steps } = vectorTrace("scopes/ladder_escalates_from_pause_to_freeze_to_rollback.json");
  const grid = scopeGrid(trace, config);
  const rungs = [...decisions(steps, "pause_onboarding"), ...decisions(steps, "freeze")].sort((a, b) => a.at - b.at);
  assert.equal(rungs.length, 2);
  assert.deepEqual(grid.rungs.map((g) => [g.rung, g.at]), rungs.map((d) => [d.kind, d.at]));
  assert.ok(grid.rows.every((r) => r.routedBack === null), "no scope routed back on this ladder");
  const held = grid.rows.filter((r) => r.heldFor.length).map((r) => r.label);
  assert.ok(held.includes("tenant=acme"), `acme held for: ${held}`);
  const rolled = grid.rows.filter((r) => r.rolledBackFor.length).map((r) => r.label).sort();
  assert.deepEqual(rolled, ["tenant=acme", "tenant=globex", "tenant=initech"]);
});

test("without a ladder there are no rungs and no routed cells", () => {
  const { trace, config } = vectorTrace("scopes/one_tenant_fails_and_is_named.json");
  const grid = scopeGrid(trace, config);
  assert.deepEqual(grid.rungs, []);
  assert.ok(grid.rows.length > 0);
  assert.ok(grid.rows.every((r) => r.routedBack === null && r.cells.every((c) => c.state !== "routed")));
});
