// Type-checked (never run) against the installed package's types: tsc must resolve
// "rollguard" through its `exports` map to index.d.ts.
import { Policy, formatVersion, type Decision, type PolicyConfig, type Step } from "rollguard";

declare const config: PolicyConfig;
const policy: Policy = new Policy(config, 0);
const step: Step = policy.tick(0);
const kinds: string[] = step.decisions.map((d: Decision) => d.kind);
const deadline: number | null = policy.nextDeadline();
const version: number = formatVersion();
// @ts-expect-error: tick takes a timestamp, not a string
policy.tick("soon");
export { kinds, deadline, version };
