// observeMany / observeCounts with label columns: the same policy, decisions and events
// as observe() of each row with its labels, for labels as strings and as codes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Policy } from "rollguard";

import { thrown } from "./errors.mjs";

const config = {
  format_version: 1,
  versions: [
    { id: "v1", digest: "sha256:aa", validated: true },
    { id: "v2", digest: "sha256:bb" },
  ],
  stable: "v1",
  candidate: "v2",
  metrics: [
    { name: "latency_ms", kind: "value", window_ms: 10000, buckets: 2 },
    { name: "errors", kind: "count", window_ms: 10000, buckets: 2 },
  ],
  gates: [
    { name: "mean_latency", metric: "latency_ms", stat: "mean", rule: { kind: "threshold", max: 200 },
      samples_min: 3, persistence: { consecutive: 2 } },
    { name: "mean_test", metric: "latency_ms", stat: "mean", rule: { kind: "sequential_mean", alpha: 0.05 },
      samples_min: 5 },
  ],
  strategy: { kind: "canary", steps: [{ kind: "set_weight", weight: 50, duration_ms: 60000 }] },
  analysis: { interval_ms: 5000 },
  safety: { ack_timeout_ms: 1000000 },
  scopes: { by: ["tenant", "tier"] },
  limits: { scopes_max: 4 },
};

function started() {
  const p = new Policy(config);
  for (const d of p.tick(0).decisions) {
    if (d.action_id !== undefined) p.command({ kind: "ack", at: 0, action_id: d.action_id });
  }
  return p;
}

// A fixed pseudo-random stream: tenants (one of them slow), tiers, some rows unlabelled.
function rows(n, seed) {
  let x = seed;
  const next = (k) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % k;
  };
  const tenants = ["acme", "globex", "initech", "umbrella", null];
  const tiers = ["1", "2", undefined];
  const out = { at: new Float64Array(n), values: new Float64Array(n), tenant: [], tier: [] };
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += next(3) * 1250;
    out.at[i] = t;
    out.tenant.push(tenants[next(5)]);
    out.tier.push(tiers[next(3)]);
    out.values[i] = 80 + next(100) + (out.tenant[i] === "globex" ? 300 : 0);
  }
  return out;
}

function oneByOne(r) {
  const p = started();
  const steps = [];
  r.tenant.forEach((tenant, i) => {
    const s = { at: r.at[i], arm: "v2", metric: "latency_ms", value: r.values[i] };
    if (tenant != null) s.tenant = tenant;
    if (r.tier[i] != null) s.tier = r.tier[i];
    steps.push(p.observe(s));
  });
  return { p, decisions: steps.flatMap((s) => s.decisions), events: steps.flatMap((s) => s.events) };
}

// Dictionary-encodes labels with categories in reverse order of first appearance.
function encode(labels, Codes) {
  const categories = [...new Set(labels.filter((l) => l != null))].reverse();
  const codes = Codes.from(labels, (l) => (l == null ? (Codes === Uint32Array ? 0xffffffff : -1) : categories.indexOf(l)));
  return { codes, categories };
}

describe("label columns", () => {
  for (const seed of [1, 2, 3]) {
    test(`observeMany with labels equals observe row by row (seed ${seed})`, () => {
      const r = rows(300, seed);
      const want = oneByOne(r);
      const forms = {
        strings: { tenant: r.tenant, tier: r.tier },
        int32: { tenant: encode(r.tenant, Int32Array), tier: encode(r.tier, Int32Array) },
        uint32: { tenant: encode(r.tenant, Uint32Array), tier: encode(r.tier, Uint32Array) },
        numbers: { tenant: encode(r.tenant, Array), tier: encode(r.tier, Array) },
      };
      for (const [name, labels] of Object.entries(forms)) {
        const p = started();
        const step = p.observeMany("v2", "latency_ms", r.at, r.values, labels);
        assert.equal(p.snapshotJson(), want.p.snapshotJson(), name);
        assert.deepEqual(step.decisions, want.decisions, name);
        assert.deepEqual(step.events, want.events, name);
      }
    });
  }

  test("observeCounts with labels, and the overflow scope", () => {
    const n = 60;
    const at = Float64Array.from({ length: n }, (_, i) => 1000 + i * 100);
    const events = Float64Array.from({ length: n }, (_, i) => i % 3);
    const totals = new Float64Array(n).fill(10);
    const tenant = Array.from({ length: n }, (_, i) => `t${i % 6}`);
    const tier = Array.from({ length: n }, () => "1");
    const p = started();
    p.observeCounts("v2", "errors", at, events, totals, { tenant, tier });
    const q = started();
    for (let i = 0; i < n; i++) {
      q.observe({ at: at[i], arm: "v2", metric: "errors", events: events[i], total: totals[i], tenant: tenant[i], tier: "1" });
    }
    assert.equal(p.snapshotJson(), q.snapshotJson());
    const keys = JSON.parse(p.snapshotJson()).state.scopes.map((s) => s.key);
    assert.deepEqual(keys, [{ tenant: "t0", tier: "1" }, { tenant: "t1", tier: "1" }, { tenant: "t2", tier: "1" }, { overflow: true }]);
  });

  test("bad labels are refused at their row and change nothing", () => {
    const p = started();
    const before = p.snapshotJson();
    const at = new Float64Array([1000, 2000, 3000]);
    const values = new Float64Array([1, 2, 3]);
    const call = (labels) => thrown(() => p.observeMany("v2", "latency_ms", at, values, labels));
    assert.deepEqual(call({ tenant: ["a", "x".repeat(1000), "b"] }), { code: "label_too_long", path: "tenant[1]" });
    assert.deepEqual(call({ tenant: ["a", 7, "b"] }), { code: "invalid_json", path: "tenant[1]" });
    assert.deepEqual(call({ tier: { codes: new Int32Array([0, 3, 0]), categories: ["1"] } }), { code: "invalid_value", path: "tier[1]" });
    assert.deepEqual(call({ tier: { codes: new Uint32Array([0, 2 ** 31, 0]), categories: ["1"] } }), { code: "invalid_value", path: "tier[1]" });
    assert.deepEqual(call({ tier: { codes: [0, 0.5, 0], categories: ["1"] } }), { code: "invalid_json", path: "tier[1]" });
    assert.deepEqual(call({ tier: { codes: new Int32Array([0, 0, 0]), categories: [1] } }), { code: "invalid_json", path: "tier.categories[0]" });
    assert.deepEqual(call({ agent: ["a", "b"] }), { code: "invalid_value", path: "agent" });
    assert.deepEqual(call("acme"), { code: "invalid_json", path: "labels" });
    assert.equal(p.snapshotJson(), before);
    // An unused long category is no sample's label; without labels, nothing changes.
    p.observeMany("v2", "latency_ms", at, values, { tenant: { codes: [0, -1, 0], categories: ["a", "x".repeat(1000)] }, tier: ["1", "1", "1"] });
    assert.deepEqual(JSON.parse(p.snapshotJson()).state.scopes.map((s) => s.key), [{ tenant: "a", tier: "1" }]);
  });
});
