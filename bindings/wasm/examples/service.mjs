#!/usr/bin/env node
// A service's run loop with the `rollguard` package, on simulated time: every 10 s it
// records the latencies scraped for each arm (typed arrays), ticks when the policy asks,
// executes each decision and acknowledges it. The candidate v2 regresses 8 minutes in,
// and the policy rolls it back. `node examples/service.mjs` (tested by test/api.test.mjs).
// START readme
import { Policy } from "rollguard";

const config = {
  format_version: 1,
  versions: [
    { id: "v1", digest: "sha256:aa", validated: true },
    { id: "v2", digest: "sha256:bb" },
  ],
  stable: "v1",
  candidate: "v2",
  metrics: [{ name: "latency_ms", kind: "value", window_ms: 60000, buckets: 6 }],
  gates: [{ name: "p95", metric: "latency_ms", stat: "p95", rule: { kind: "vs_baseline", max_ratio: 1.3 }, samples_min: 20 }],
  strategy: { kind: "canary", steps: [{ kind: "set_weight", weight: 10, duration_ms: 900000 }] },
  analysis: { interval_ms: 30000 },
};
const policy = new Policy(config, 0);

function act(step) {
  for (const d of step.decisions) {
    console.log(`${d.at / 1000}s ${d.kind}${d.kind === "rollback" ? ` ${d.from} -> ${d.to}` : ""} (${d.reason})`);
    // ... change the traffic split, page someone ...; then acknowledge routing changes:
    if (d.action_id !== undefined) act(policy.command({ kind: "ack", at: policy.now, action_id: d.action_id }));
  }
}

for (let now = 0; now <= 20 * 60000; now += 10000) {
  // Each arm's latencies of the last 10 s, scraped now (time never goes backwards, so
  // every arm's column is stamped with the scrape time).
  const at = new Float64Array(10).fill(now);
  for (const arm of ["v1", "v2"]) {
    const slow = arm === "v2" && now >= 8 * 60000 ? 2 : 1;
    const latencies = at.map((_, i) => slow * (100 + ((now / 1000 + i) % 7) * 5));
    act(policy.observeMany(arm, "latency_ms", at, latencies));
  }
  // Sleep until the next scrape or the policy's deadline, whichever comes first.
  const deadline = policy.nextDeadline();
  if (deadline !== null && deadline < now + 10000) act(policy.tick(Math.max(deadline, now)));
}
console.log(policy.status().aliases); // { stable: 'v1', golden: 'v1' }
// END readme
