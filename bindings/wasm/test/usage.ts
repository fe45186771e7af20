// A typed usage of the package, checked by `tsc --noEmit -p test/tsconfig.json` (never run):
// it proves the declarations describe the API and the data documents as documented.
import { Agents, Policy, assign, assignBucket, replay, saltFor } from "rollguard";
import type {
  Arm, AssignReason, Assignment, RoutingMode, RoutingTable, WeightChange,
  AgentsConfig, AgentsSnapshot, AgentsStep,
  Decision, Event, LabelColumns, PolicyConfig, RollguardError, Sample, Scenario, Snapshot, Status, Step, TraceEntry,
} from "rollguard";

const config: PolicyConfig = {
  format_version: 1,
  versions: [
    { id: "v1", digest: "sha256:aa", validated: true },
    { id: "v2", digest: "sha256:bb" },
  ],
  stable: "v1",
  candidate: "v2",
  metrics: [{ name: "latency_ms", kind: "value", window_ms: 60000, buckets: 6 }],
  gates: [{ name: "p95", metric: "latency_ms", stat: "p95", rule: { kind: "threshold", max: 300 }, samples_min: 20 }],
  strategy: { kind: "canary", steps: [{ kind: "set_weight", weight: 10, duration_ms: 300000 }] },
};

const policy = new Policy(config, 0);
const sample: Sample = { at: 500, arm: "v2", metric: "latency_ms", value: 120 };
const step: Step = policy.observe(sample);
const many: Step = policy.observeMany("v2", "latency_ms", new Float64Array([600, 700]), new Float64Array([110, 130]));
const labels: LabelColumns = { tenant: ["acme", null], tier: { codes: new Int32Array([0, -1]), categories: ["1"] } };
const labelled: Step = policy.observeMany("v2", "latency_ms", new Float64Array([800, 900]), new Float64Array([1, 2]), labels);
const deadline: number | null = policy.nextDeadline();
if (deadline !== null) {
  const ticked: Step = policy.tick(deadline);
  for (const d of ticked.decisions) act(d);
}
policy.command({ kind: "pause", at: 1000 });
policy.handle({ kind: "tick", at: 1000 });
policy.handle({
  kind: "record_effect", at: 1000, version: "v2",
  effect: { id: "refund-81", undo: { op: "charge", order: 81 } },
});

function act(d: Decision): void {
  switch (d.kind) {
    case "rollback": {
      const to: string = d.to;
      const automated: boolean = d.automated;
      void [to, automated];
      break;
    }
    case "set_weight": {
      const weight: number = d.weight;
      void weight;
      break;
    }
    case "compensate": {
      // Undo the side effect with its descriptor, as recorded; then acknowledge it.
      const effect: string = d.effect_id;
      const undo: { [key: string]: unknown } = d.undo;
      void [effect, undo, d.version];
      break;
    }
    default:
      break;
  }
  if (d.action_id !== undefined) policy.command({ kind: "ack", at: d.at, action_id: d.action_id });
}

const events: Event[] = [...step.events, ...many.events, ...labelled.events];
const status: Status = policy.status();
const snapshot: Snapshot = policy.snapshot();
const restored: Policy = Policy.restore(snapshot);
const fromText: Policy = Policy.restoreJson(policy.snapshotJson());
const scenario: Scenario = { format_version: 1, config, inputs: [{ kind: "tick", at: 1 }] };
const trace: TraceEntry[] = replay(scenario);
const firstError: string | undefined = trace[0]?.error?.code;

try {
  policy.tick(0.5);
} catch (e) {
  const err = e as RollguardError;
  const code: string = err.code;
  const path: string = err.path;
  void [code, path];
}

// @ts-expect-error: methods are camelCase
policy.next_deadline();
// @ts-expect-error: data documents are snake_case
const bad: Sample = { at: 1, arm: "v1", metric: "m", eventCount: 1 };

void [events, status, restored, fromText, firstError, bad];

// Traffic assignment: string or byte keys, hex salts, the arm as a literal type.
const routeSalt: string = saltFor("checkout", "v2", 1);
const arm: Arm = assign("user-42", routeSalt, 2500);
const bucketOfBytes: number = assignBucket(new TextEncoder().encode("user-42"), saltFor("checkout", "v2", 2n));
if (arm === "candidate") void bucketOfBytes;

// Assignment in the policy: the arm, version and reason, optionally a pinned session.
const routed: Assignment = policy.assign("user-42");
const pinned: Assignment = policy.assign(new TextEncoder().encode("user-42"), 0, 1000);
const why: AssignReason = routed.reason;
const serve: string = routed.version;
const routeWeight: number = pinned.weight_bp;
const maybeSalt: string | undefined = routed.salt;
if (pinned.pinned && pinned.arm === "stable") void [why, serve, routeWeight, maybeSalt];
const table: RoutingTable = policy.routingTable();
const mode: RoutingMode = table.mode;
const history: WeightChange[] = table.weights;
const tableSalt: string | undefined = table.salt;
if (mode === "split" && table.candidate !== undefined) void [history[0]?.at, tableSalt, table.pin_max_ms];
const pinConfig: PolicyConfig = { ...config, assignment: { pin_max_ms: 1800000 } };
void pinConfig;

// Per-agent versions.
const agentsConfig: AgentsConfig = {
  format_version: 1,
  name: "ops",
  policy: config,
  agents: { negotiator: { safety: { rollback_to: "golden" } }, notifier: {} },
};
const agents = new Agents(agentsConfig, 0);
const agentsStep: AgentsStep = agents.command({ kind: "pause", at: 1000, agent: "notifier" });
for (const { agent, step: s } of agentsStep.agents) console.log(agent, s.decisions.length);
const columnStep: AgentsStep = agents.observeMany("negotiator", "v2", "latency_ms",
  Float64Array.of(2000, 3000), Float64Array.of(120, 130), { tenant: ["acme", "globex"] });
// Counts take the same shape (for a config with a count metric `errors`).
const recordErrors = (a: Agents): AgentsStep =>
  a.observeCounts("notifier", "v2", "errors", Float64Array.of(4000), Float64Array.of(1), Float64Array.of(10));
console.log(columnStep.at, recordErrors.length);
const agentsSnapshot: AgentsSnapshot = agents.snapshot();
const agentStatus: Status = agents.status()["negotiator"];
const agentTable: RoutingTable = agents.routingTable("negotiator");
const agentAssignment: Assignment = agents.assign("negotiator", "user-1");
console.log(agentsSnapshot.format_version, agentStatus.weight, agentTable.mode, agentAssignment.arm, agents.agents);
