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
