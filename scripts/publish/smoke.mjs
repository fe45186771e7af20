// Imports the installed `rollguard` npm package as ESM and makes a decision: a candidate
// whose mean latency is three times its gate's limit is rolled back to the stable version.
// check-publish.sh runs it in a fresh project that installed the packed tarball.
import { readFileSync } from "node:fs";

import { Policy } from "rollguard";

const config = JSON.parse(readFileSync(new URL("./policy.json", import.meta.url), "utf8"));
const policy = new Policy(config, 0);
const seen = [];
const take = (step) => {
  for (const d of step.decisions) {
    seen.push(`${d.kind}${d.to ? `:${d.to}` : ""}@${step.at}`);
    if (d.action_id != null) policy.command({ kind: "ack", at: step.at, action_id: d.action_id });
  }
};
take(policy.tick(0));
for (let at = 100; at <= 60_000; at += 100) {
  take(policy.observe({ at, arm: "v2", metric: "latency_ms", value: 900 }));
  const due = policy.nextDeadline();
  if (due != null && due <= at) take(policy.tick(at));
}
const expected = "set_weight@0 rollback:v1@10000 escalate@10000";
if (seen.join(" ") !== expected) {
  console.error(`decisions: ${seen.join(" ")}\nexpected:  ${expected}`);
  process.exit(1);
}
const { version } = JSON.parse(readFileSync(new URL("./node_modules/rollguard/package.json", import.meta.url), "utf8"));
console.log(`rollguard ${version} from npm (import): ${seen.join(" ")}`);
