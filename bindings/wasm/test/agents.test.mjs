// `Agents` beyond the vectors: per-agent versions through the JS API.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Agents } from "rollguard";

import { thrown } from "./errors.mjs";

const gate = (max) => ({
  name: "p95", metric: "latency_ms", stat: "p95", rule: { kind: "threshold", max },
  samples_min: 3, persistence: { consecutive: 1 },
});

const config = {
  format_version: 1,
  name: "ops",
  policy: {
    format_version: 1,
    versions: [
      { id: "v1", digest: "sha256:01", validated: true },
      { id: "v2", digest: "sha256:02", validated: true },
    ],
    stable: "v2",
    metrics: [{ name: "latency_ms", kind: "value", window_ms: 60000, buckets: 6 }],
    gates: [gate(300)],
    strategy: { kind: "canary", steps: [{ kind: "set_weight", weight: 50, duration_ms: 60000 }] },
    analysis: { interval_ms: 30000 },
    safety: { cooldown_ms: 60000, ack_timeout_ms: 60000 },
  },
  agents: {
    negotiator: { gates: [gate(200)], safety: { rollback_to: "golden" } },
    notifier: {},
  },
};

function ackAll(agents, step) {
  for (const { agent, step: s } of step.agents) {
    for (const d of s.decisions) {
      if (d.action_id !== undefined) agents.command({ kind: "ack", at: step.at, action_id: d.action_id, agent });
    }
  }
}

test("one agent falls back to its golden while the other promotes", () => {
  const agents = new Agents(config, 0);
  assert.deepEqual(agents.agents, ["negotiator", "notifier"]);
  agents.command({ kind: "mark_validated", at: 0, version: "v1", agent: "negotiator" });
  agents.command({ kind: "register_version", at: 0, version: { id: "v3", digest: "sha256:03" } });
  ackAll(agents, agents.command({ kind: "start_rollout", at: 0, version: "v3" }));
  for (const agent of ["negotiator", "notifier"]) {
    for (const arm of ["v3", "v2"]) {
      for (let k = 0; k < 3; k++) {
        agents.observe({ at: 10000, arm, metric: "latency_ms", value: arm === "v3" ? 250 : 100, agent });
      }
    }
  }
  const step = agents.tick(40000);
  assert.equal(step.agents[0].agent, "negotiator");
  const rollback = step.agents[0].step.decisions.find((d) => d.kind === "rollback");
  assert.deepEqual([rollback.to, rollback.target], ["v1", "golden"]);
  ackAll(agents, step);
  ackAll(agents, agents.tick(61000));
  const status = agents.status();
  assert.equal(status.negotiator.aliases.stable, "v1");
  assert.equal(status.notifier.aliases.stable, "v3");
  assert.equal(agents.routingTable("notifier").stable, "v3");
  assert.equal(agents.assign("negotiator", "user-1").version, "v1");
  // Snapshots round-trip, as objects and as text.
  const text = agents.snapshotJson();
  assert.equal(Agents.restore(agents.snapshot()).snapshotJson(), text);
  assert.equal(Agents.restoreJson(JSON.stringify(agents)).snapshotJson(), text);
  assert.equal(agents.nextDeadline(), Agents.restoreJson(text).nextDeadline());
});

test("refusals are typed and change nothing", () => {
  const agents = new Agents(config, 0);
  const before = agents.snapshotJson();
  assert.deepEqual(thrown(() => agents.observe({ at: 5, arm: "v2", metric: "latency_ms", value: 1 })),
    { code: "unknown_agent", path: "agent" });
  assert.deepEqual(thrown(() => agents.command({ kind: "ack", at: 5, action_id: 1 })),
    { code: "unknown_agent", path: "agent" });
  assert.equal(thrown(() => agents.routingTable("planner")).code, "unknown_agent");
  assert.equal(thrown(() => agents.assign("planner", "k")).code, "unknown_agent");
  assert.equal(agents.snapshotJson(), before);
  assert.deepEqual(thrown(() => new Agents({ ...config, agents: { x: { stable: "v9" } } })),
    { code: "unknown_reference", path: "agents.x.stable" });
  assert.equal(agents.config().name, "ops");
});

function rollingOut() {
  const agents = new Agents(config, 0);
  agents.command({ kind: "register_version", at: 0, version: { id: "v3", digest: "sha256:03" } });
  ackAll(agents, agents.command({ kind: "start_rollout", at: 0, version: "v3" }));
  return agents;
}

/** Every decision and event per agent over steps, in order. */
function perAgent(steps) {
  const out = {};
  for (const step of steps) {
    for (const { agent, step: s } of step.agents) {
      out[agent] ??= { decisions: [], events: [] };
      out[agent].decisions.push(...s.decisions);
      out[agent].events.push(...s.events);
    }
  }
  return out;
}

test("observeMany for one agent is its rows one by one, typed arrays and label codes", () => {
  const [column, rows] = [rollingOut(), rollingOut()];
  // The negotiator's candidate slows down after 40 s; the notifier's analyses fall
  // due inside the column.
  const n = 200;
  const at = Float64Array.from({ length: n }, (_, i) => (i + 1) * 500);
  const values = Float64Array.from(at, (t) => (t < 40000 ? 120 : 260));
  const codes = Int32Array.from({ length: n }, (_, i) => (i % 3 ? 0 : 1));
  const categories = ["acme", "globex"];
  const oneByOne = [...at].map((t, i) => rows.observe({
    at: t, arm: "v3", metric: "latency_ms", value: values[i], agent: "negotiator", tenant: categories[codes[i]],
  }));
  const step = column.observeMany("negotiator", "v3", "latency_ms", at, values, { tenant: { codes, categories } });
  assert.equal(step.at, 100000);
  const got = perAgent([step]);
  assert.deepEqual(got, perAgent(oneByOne));
  assert.ok(got.negotiator.decisions.some((d) => d.kind === "rollback"));
  // The notifier's timers fired at the rows' times, inside the column.
  assert.ok(got.notifier.events.some((e) => e.kind === "analysis" && e.at > 0 && e.at < 100000), JSON.stringify(got.notifier));
  assert.equal(column.snapshotJson(), rows.snapshotJson());
});

test("observeMany and observeCounts refusals are typed and change nothing", () => {
  const agents = rollingOut();
  const before = agents.snapshotJson();
  assert.deepEqual(thrown(() => agents.observeMany("planner", "v3", "latency_ms", [1000], [1])),
    { code: "unknown_agent", path: "agent" });
  assert.deepEqual(thrown(() => agents.observeMany("notifier", "v3", "latency_ms", [1000, 2000], [1, NaN])),
    { code: "non_finite_value", path: "value[1]" });
  assert.deepEqual(thrown(() => agents.observeMany("notifier", "v3", "latency_ms", [1000, 2000], [1, 2],
    { agent: ["notifier", "negotiator"] })), { code: "unknown_agent", path: "agent[1]" });
  assert.deepEqual(thrown(() => agents.observeCounts("notifier", "v3", "latency_ms", [1000], [1], [2])),
    { code: "metric_kind_mismatch", path: "value[0]" });
  assert.equal(agents.snapshotJson(), before);
});
