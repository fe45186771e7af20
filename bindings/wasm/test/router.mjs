// What a router holding `policy.routingTable()` answers, written from docs/assignment.md
// ("Routing tables") with only the pure `assign`: `Policy.assign(key)` without a session,
// `Policy.assign(key, sessionStartedAt, now)` with one (times assumed valid).
import { assign } from "rollguard";

export function assignFromTable(table, key, sessionStartedAt, now) {
  const base = { arm: "stable", version: table.stable, weight_bp: 0, pinned: false };
  if (table.salt !== undefined) base.salt = table.salt;
  if (table.mode !== "split") return { ...base, reason: table.mode };
  let weightBp = table.weight_bp;
  const pinned = sessionStartedAt !== undefined && now - sessionStartedAt < table.pin_max_ms;
  if (pinned) {
    let atStart = 0;
    for (const w of table.weights) if (w.at <= sessionStartedAt) atStart = w.weight_bp;
    weightBp = Math.min(weightBp, atStart);
  }
  const arm = assign(key, table.salt ?? "0000000000000000", weightBp);
  const version = arm === "candidate" ? table.candidate : table.stable;
  return { ...base, arm, version, reason: arm, weight_bp: weightBp, pinned };
}
