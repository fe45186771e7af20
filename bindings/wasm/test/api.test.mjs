// The binding's own surface: errors, typed arrays, snapshots, replay and the package.
// Behaviour (what a policy decides) is covered by the shared vectors, not here.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { Policy, formatVersion, importKayenta, replay, replayJson, snapshotFormatVersion } from "rollguard";

import { thrown } from "./errors.mjs";

const DEMO = new URL("../../../examples/scenarios/demo.json", import.meta.url);
const demoText = readFileSync(DEMO, "utf8");
const demo = JSON.parse(demoText);

const config = {
  format_version: 1,
  versions: [
    { id: "v1", digest: "sha256:aa", validated: true },
    { id: "v2", digest: "sha256:bb" },
  ],
  stable: "v1",
  candidate: "v2",
  metrics: [
    { name: "latency_ms", kind: "value", window_ms: 10000, buckets: 10 },
    { name: "errors", kind: "count", window_ms: 10000, buckets: 10 },
  ],
  gates: [{ name: "p95", metric: "latency_ms", stat: "p95", rule: { kind: "threshold", max: 300 }, samples_min: 5 }],
  strategy: { kind: "canary", steps: [{ kind: "set_weight", weight: 10, duration_ms: 60000 }] },
  analysis: { interval_ms: 10000 },
};

describe("errors", () => {
  test("config errors carry the core's code and path", () => {
    const bad = { ...config, gates: [{ ...config.gates[0], metric: "nope" }] };
    assert.deepEqual(thrown(() => new Policy(bad)), { code: "unknown_reference", path: "gates[0].metric" });
    assert.deepEqual(thrown(() => Policy.fromJson(JSON.stringify(bad))), { code: "unknown_reference", path: "gates[0].metric" });
    assert.deepEqual(thrown(() => Policy.fromJson("{")).code, "invalid_json");
    assert.deepEqual(thrown(() => new Policy({ ...config, extra: 1 })).code, "invalid_json");
    assert.deepEqual(thrown(() => new Policy(null)).code, "invalid_json");
  });

  test("paths name odd keys as the core does; text refuses a repeated key", () => {
    const p = new Policy(config, 1000);
    const before = p.snapshotJson();
    // A key that is not an identifier is a JSON string in brackets, from the binding's
    // own conversion (NaN) as from the core (an unknown field).
    assert.deepEqual(thrown(() => p.handle({ kind: "tick", at: 1000, "a.b": Number.NaN })), {
      code: "non_finite_value",
      path: '["a.b"]',
    });
    assert.deepEqual(thrown(() => p.handle({ kind: "tick", at: 1000, "a.b": 1 })), { code: "invalid_json", path: '["a.b"]' });
    // An object cannot repeat a key; text can, and is refused, not read as "last wins".
    assert.deepEqual(thrown(() => p.handleJson('{"kind":"tick","at":1000,"at":500}')), { code: "duplicate_key", path: "at" });
    assert.equal(p.snapshotJson(), before);
  });

  test("times are integers below 2^53, never truncated", () => {
    assert.deepEqual(thrown(() => new Policy(config, 2 ** 53)), { code: "time_out_of_range", path: "now" });
    assert.deepEqual(thrown(() => new Policy(config, 0.5)), { code: "invalid_json", path: "now" });
    const p = new Policy(config, 1000);
    assert.equal(p.now, 1000);
    assert.deepEqual(thrown(() => p.tick(1500.5)), { code: "invalid_json", path: "at" });
    assert.deepEqual(thrown(() => p.tick(-1)), { code: "invalid_json", path: "at" });
    assert.deepEqual(thrown(() => p.tick(Number.NaN)), { code: "invalid_json", path: "at" });
    assert.deepEqual(thrown(() => p.tick(2 ** 53)), { code: "time_out_of_range", path: "at" });
    assert.deepEqual(thrown(() => p.tick(Number.POSITIVE_INFINITY)), { code: "time_out_of_range", path: "at" });
    assert.deepEqual(thrown(() => p.tick(999)), { code: "time_went_backwards", path: "at" });
    // In documents, the same rules as the JSON text of the same object.
    for (const at of [2 ** 53, 1.5, -1]) {
      const input = { kind: "tick", at };
      const viaText = thrown(() => p.handleJson(JSON.stringify(input)));
      assert.deepEqual(thrown(() => p.handle(input)), viaText, `at = ${at}`);
    }
    assert.equal(p.tick(2 ** 53 - 1).at, 2 ** 53 - 1);
  });

  test("NaN and infinity are refused as non_finite_value, never turned into null", () => {
    const p = new Policy(config);
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.deepEqual(thrown(() => p.observe({ at: 1, arm: "v1", metric: "latency_ms", value })),
        { code: "non_finite_value", path: "value" });
    }
    assert.deepEqual(
      thrown(() => p.handle({ kind: "observe_batch", samples: [{ at: 1, arm: "v1", metric: "latency_ms", value: Number.NaN }] })),
      { code: "non_finite_value", path: "samples[0].value" },
    );
    assert.deepEqual(thrown(() => new Policy({ ...config, gates: [{ ...config.gates[0], rule: { kind: "threshold", max: Number.NaN } }] })),
      { code: "non_finite_value", path: "gates[0].rule.max" });
  });

  test("values JSON cannot express are refused at their path", () => {
    const p = new Policy(config);
    assert.deepEqual(thrown(() => p.observe({ at: 1, arm: "v1", metric: "latency_ms", value: () => 1 })).path, "value");
    assert.deepEqual(thrown(() => p.observe({ at: 1n, arm: "v1", metric: "latency_ms", value: 1 })), { code: "invalid_json", path: "at" });
    // undefined properties are left out, as JSON.stringify leaves them out.
    assert.equal(p.observe({ at: 1, arm: "v1", metric: "latency_ms", value: 1, tenant: undefined }).at, 1);
  });

  test("sample errors are the core's and leave the policy unchanged", () => {
    const p = new Policy(config);
    p.tick(0);
    const before = p.snapshotJson();
    assert.deepEqual(thrown(() => p.observe({ at: 5, arm: "v9", metric: "latency_ms", value: 1 })), { code: "unknown_arm", path: "arm" });
    assert.deepEqual(thrown(() => p.observe({ at: 5, arm: "v1", metric: "errors", events: 5, total: 2 })).code, "events_exceed_total");
    assert.deepEqual(thrown(() => p.observe({ at: 5, arm: "v1", metric: "errors", events: -1, total: 2 })).code, "negative_count");
    assert.deepEqual(thrown(() => p.command({ kind: "ack", at: 5, action_id: 99 })).code, "unknown_action");
    assert.deepEqual(thrown(() => p.handleJson('{"kind": "tick", "at": "x"}')), { code: "invalid_json", path: "at" });
    assert.equal(p.snapshotJson(), before);
  });
});

describe("typed arrays", () => {
  test("observeMany equals the same samples one by one", () => {
    const a = new Policy(config);
    const b = new Policy(config);
    const at = Float64Array.from({ length: 50 }, (_, i) => i * 100);
    const values = Float64Array.from({ length: 50 }, (_, i) => 100 + (i % 7) * 10);
    const many = a.observeMany("v1", "latency_ms", at, values);
    const one = [];
    at.forEach((t, i) => one.push(b.observe({ at: t, arm: "v1", metric: "latency_ms", value: values[i] })));
    assert.equal(many.at, 4900);
    assert.deepEqual(many.decisions, one.flatMap((s) => s.decisions));
    assert.deepEqual(many.events, one.flatMap((s) => s.events));
    assert.equal(a.snapshotJson(), b.snapshotJson());
    // Plain arrays are accepted too.
    assert.equal(a.observeMany("v1", "latency_ms", [5000], [1]).at, 5000);
  });

  test("steps are fresh canonical objects, empty or not", () => {
    const p = new Policy(config);
    assert.ok(p.tick(0).decisions.length > 0); // the rollout's first step
    const a = p.observeMany("v1", "latency_ms", [10], [1]);
    const b = p.observeMany("v1", "latency_ms", [20], [1]);
    assert.equal(JSON.stringify(a), '{"at":10,"decisions":[],"events":[]}');
    a.decisions.push("mutated");
    assert.equal(JSON.stringify(b), '{"at":20,"decisions":[],"events":[]}');
    // A step with something in it comes from the same canonical JSON as the core's.
    const full = p.handleJson('{"kind": "tick", "at": 3600000}');
    assert.ok(full.events.length > 0);
    assert.equal(JSON.stringify(full), JSON.stringify(JSON.parse(JSON.stringify(full))));
    assert.deepEqual(Object.keys(full), ["at", "decisions", "events"]);
  });

  test("observeMany is atomic and names the row", () => {
    const p = new Policy(config);
    const before = p.snapshotJson();
    const at = new Float64Array([1, 2, 3]);
    assert.deepEqual(thrown(() => p.observeMany("v1", "latency_ms", at, new Float64Array([1, Number.NaN, 3]))),
      { code: "non_finite_value", path: "value[1]" });
    assert.deepEqual(thrown(() => p.observeMany("v1", "latency_ms", new Float64Array([1, 3, 2]), new Float64Array(3))).code,
      "time_went_backwards");
    assert.deepEqual(thrown(() => p.observeMany("v1", "latency_ms", new Float64Array([1, 2.5]), new Float64Array(2))),
      { code: "invalid_json", path: "at[1]" });
    assert.deepEqual(thrown(() => p.observeMany("v1", "latency_ms", new Float64Array([1, 2 ** 53]), new Float64Array(2))),
      { code: "time_out_of_range", path: "at[1]" });
    assert.deepEqual(thrown(() => p.observeMany("v1", "latency_ms", at, new Float64Array(2))).code, "invalid_value");
    assert.deepEqual(thrown(() => p.observeMany("v1", "nope", at, new Float64Array(3))).code, "unknown_metric");
    assert.equal(p.snapshotJson(), before);
  });

  test("observeCounts records counts atomically", () => {
    const p = new Policy(config);
    const at = new Float64Array([1, 2]);
    const step = p.observeCounts("v1", "errors", at, new Float64Array([1, 2]), new Float64Array([100, 100]));
    assert.equal(step.at, 2);
    const before = p.snapshotJson();
    assert.deepEqual(thrown(() => p.observeCounts("v1", "errors", new Float64Array([3, 4]), new Float64Array([1, 200]), new Float64Array([100, 100]))).code,
      "events_exceed_total");
    assert.deepEqual(thrown(() => p.observeCounts("v1", "errors", new Float64Array([3]), new Float64Array([0.5]), new Float64Array([1]))),
      { code: "invalid_json", path: "events[0]" });
    assert.deepEqual(thrown(() => p.observeCounts("v1", "errors", new Float64Array([3]), new Float64Array([2 ** 53]), new Float64Array([2 ** 53]))).code,
      "count_out_of_range");
    assert.equal(p.snapshotJson(), before);
  });
});

describe("snapshots", () => {
  test("snapshot() and snapshotJson() restore to the same policy, which continues identically", () => {
    const original = new Policy(demo.config, demo.start);
    const half = Math.floor(demo.inputs.length / 2);
    demo.inputs.slice(0, half).forEach((i) => { try { original.handle(i); } catch { /* refusals are part of the trace */ } });
    const fromObject = Policy.restore(original.snapshot());
    const fromText = Policy.restoreJson(original.snapshotJson());
    const fromStringify = Policy.restoreJson(JSON.stringify(original));
    for (const p of [fromObject, fromText, fromStringify]) assert.equal(p.snapshotJson(), original.snapshotJson());
    for (const input of demo.inputs.slice(half)) {
      const outcomes = [original, fromObject, fromText].map((p) => {
        try { return p.handle(input); } catch (e) { return { code: e.code, path: e.path }; }
      });
      assert.deepEqual(outcomes[1], outcomes[0]);
      assert.deepEqual(outcomes[2], outcomes[0]);
    }
    assert.equal(fromObject.snapshotJson(), original.snapshotJson());
    assert.equal(original.snapshot().format_version, snapshotFormatVersion());
    assert.equal(snapshotFormatVersion(), 2);
    assert.equal(formatVersion(), 1);
  });

  test("restore errors carry the core's codes", () => {
    const snap = new Policy(config).snapshot();
    assert.equal(thrown(() => Policy.restore({ ...snap, format_version: 3 })).code, "unsupported_format_version");
    assert.equal(thrown(() => Policy.restore({ ...snap, state: 1 })).code, "snapshot_corrupt");
    assert.equal(thrown(() => Policy.restoreJson("not json")).code, "snapshot_corrupt");
  });
});

describe("replay and the package", () => {
  test("replay(object) equals replayJson(text) and a hand-driven policy", () => {
    const trace = replay(demo);
    assert.equal(trace.length, demo.inputs.length);
    assert.deepEqual(replayJson(demoText), trace);
    const p = new Policy(demo.config, demo.start);
    trace.forEach((entry, index) => {
      assert.equal(entry.index, index);
      try {
        assert.deepEqual(p.handle(demo.inputs[index]), entry.step);
      } catch (e) {
        if (!entry.error) throw e;
        assert.deepEqual({ code: e.code, path: e.path }, { code: entry.error.code, path: entry.error.path });
      }
    });
    // The demo's story: v3 is rolled back at 1:36:06.
    const rollbacks = trace.flatMap((e) => e.step?.decisions ?? []).filter((d) => d.kind === "rollback");
    assert.equal(rollbacks[0].from, "v3");
    assert.equal(rollbacks[0].at, 5766000);
  });

  test("importKayenta reads a canary config, as text or object, into a policy's gates", () => {
    const text = readFileSync(new URL("../../../crates/rollguard/tests/data/kayenta_canary_config.json", import.meta.url), "utf8");
    const imported = importKayenta(text);
    assert.deepEqual(importKayenta(JSON.parse(text)), imported);
    assert.deepEqual(imported.gates.map((g) => g.name), ["request_latency_p50", "error_ratio", "success_rate", "heap_used", "kayenta_score"]);
    assert.equal(imported.gates[4].rule.kind, "kayenta_score");
    assert.ok(imported.warnings.some((w) => w.path === "metrics[0].query"));
    // The pieces make a policy.
    const p = new Policy({ ...config, metrics: [...config.metrics, ...imported.metrics], gates: imported.gates });
    assert.ok(p);
    const bad = JSON.parse(text);
    bad.metrics[1].analysisConfigurations.canary.direction = "up";
    const e = thrown(() => importKayenta(bad));
    assert.deepEqual({ code: e.code, path: e.path }, { code: "invalid_value", path: "metrics[1].analysisConfigurations.canary.direction" });
  });

  test("replay refuses a bad scenario", () => {
    assert.equal(thrown(() => replay({ ...demo, format_version: 9 })).code, "unsupported_format_version");
    assert.deepEqual(thrown(() => replay({ ...demo, inputs: 3 })), { code: "invalid_json", path: "inputs" });
  });

  test("nextDeadline is a number or null; status and versions are plain objects", () => {
    const p = new Policy(config);
    assert.equal(p.nextDeadline(), 0);
    p.tick(0);
    assert.equal(typeof p.nextDeadline(), "number");
    assert.equal(p.status().aliases.stable, "v1");
    assert.deepEqual(p.versions().map((v) => v.id), ["v1", "v2"]);
    assert.equal(p.config().stable, "v1");
    const steady = new Policy({ ...config, candidate: undefined, gates: [], analysis: undefined });
    steady.tick(0);
    assert.equal(steady.nextDeadline(), null);
  });

  test("status counts the effects held and the compensations waiting", () => {
    const p = new Policy(config);
    for (const d of p.tick(0).decisions) p.handle({ kind: "ack", at: 0, action_id: d.action_id });
    assert.equal(p.status().effects_held, undefined, "absent when 0");
    for (const [i, version] of ["v1", "v2", "v2"].entries()) {
      p.handle({ kind: "record_effect", at: 1000, version, effect: { id: `e${i}`, undo: { n: i } } });
    }
    assert.deepEqual([p.status().effects_held, p.status().compensations_waiting], [3, undefined]);
    const [rollback] = p.handle({ kind: "abort", at: 2000 }).decisions;
    const [compensate] = p.handle({ kind: "ack", at: 2000, action_id: rollback.action_id }).decisions;
    assert.deepEqual([compensate.kind, compensate.effect_id], ["compensate", "e2"]);
    assert.deepEqual([p.status().effects_held, p.status().compensations_waiting], [3, 2]);
    const [next] = p.handle({ kind: "ack", at: 2000, action_id: compensate.action_id }).decisions;
    p.handle({ kind: "ack", at: 2000, action_id: next.action_id });
    assert.deepEqual([p.status().effects_held, p.status().compensations_waiting], [1, undefined]);
  });

  test("the package manifest is ESM with types and a version from Cargo", () => {
    const manifest = JSON.parse(readFileSync(new URL("../pkg/package.json", import.meta.url), "utf8"));
    assert.equal(manifest.name, "rollguard");
    assert.equal(manifest.type, "module");
    assert.match(manifest.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(Object.keys(manifest.exports["."]), ["types", "node", "browser", "default"]);
  });
});

describe("examples", () => {
  test("examples/service.mjs runs and rolls the regressed candidate back", () => {
    const out = execFileSync(process.execPath, [new URL("../examples/service.mjs", import.meta.url).pathname]).toString();
    assert.match(out, /^570s rollback v2 -> v1 \(gate_failed\)$/m);
  });

  test("the README's Node snippet is examples/service.mjs", () => {
    const example = readFileSync(new URL("../examples/service.mjs", import.meta.url), "utf8");
    const snippet = example.split("// START readme\n")[1].split("// END readme\n")[0];
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    assert.ok(readme.includes("```js\n" + snippet + "```"), "README.md is out of date");
  });
});
