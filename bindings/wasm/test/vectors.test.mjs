// Replays every conformance vector under tests/vectors through the wasm build and checks
// the trace is the one the Rust runner checks (tests/conformance/src/lib.rs, `run_vector`,
// specified in tests/vectors/README.md). No skip list.
//
// Inputs go through `handleJson(JSON.stringify(input))`, as the README asks. On top of
// that, every input is also fed as a plain object to `handle()` on a twin policy, which
// must give the same step or the same refusal: the binding's own JS-object conversion
// (and `observe`'s direct reading of sample objects) must not change any outcome.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { Agents, Policy } from "rollguard";

import { firstDifference } from "./json.mjs";
import { assignFromTable } from "./router.mjs";

const VECTORS = fileURLToPath(new URL("../../../tests/vectors", import.meta.url));
const MIN_VECTORS = 40;
const TOP_KEYS = ["format_version", "name", "description", "config", "agents_config", "config_error", "snapshot",
  "snapshot_text", "restore_error", "start", "steps"];
const STEP_KEYS = ["input", "restore", "decisions", "events", "agents", "error", "assign", "routing_table"];
const ASSIGN_KEYS = ["key", "session_started_at", "now", "expect", "error"];

function findVectors(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".json")) out.push(relative(dir, p).split(sep).join("/"));
    }
  };
  walk(dir);
  // Byte order of the `/`-separated relative path (the names are ASCII).
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function kindOf(doc) {
  const has = (k) => Object.hasOwn(doc, k);
  const bad = Object.keys(doc).find((k) => !TOP_KEYS.includes(k));
  assert.equal(bad, undefined, `unknown top-level key ${bad}`);
  if (has("agents_config")) return has("config_error") ? "agents_config_error" : "agents_steps";
  if (has("config_error")) return "config_error";
  if (has("restore_error")) return "restore_error";
  if (has("config")) return "steps";
  return "restore";
}

/** What a call threw, as `{code, path}`; fails if it threw something else. */
function refusal(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${e}`);
    assert.equal(e.name, "RollguardError", `threw ${e.name}: ${e.message}`);
    assert.equal(typeof e.code, "string");
    assert.equal(typeof e.path, "string");
    return { code: e.code, path: e.path, message: e.message };
  }
  return null;
}

function compareError(expected, actual, pathRequired, where) {
  assert.ok(actual, `${where}: expected error ${JSON.stringify(expected)}, but it was accepted`);
  if (pathRequired) assert.equal(typeof expected.path, "string", `${where}: expected error has no path`);
  assert.equal(actual.code, expected.code, `${where}: code (${actual.message})`);
  if (expected.path !== undefined) assert.equal(actual.path, expected.path, `${where}: path (${actual.message})`);
}

function inputTime(input, now) {
  if (Number.isInteger(input.at)) return input.at;
  const last = Array.isArray(input.samples) ? input.samples.at(-1) : undefined;
  return last && Number.isInteger(last.at) ? last.at : now;
}

function runSteps(policy, twin, doc) {
  assert.ok(Array.isArray(doc.steps) && doc.steps.length > 0, "steps must be a non-empty array");
  doc.steps.forEach((step, i) => {
    const bad = Object.keys(step).find((k) => !STEP_KEYS.includes(k));
    assert.equal(bad, undefined, `steps[${i}]: unknown key ${bad}`);
    const where = `steps[${i}] (input ${JSON.stringify(step.input)})`;
    const at = inputTime(step.input, policy.now);
    const before = policy.snapshotJson();
    let actual;
    const error = refusal(() => {
      actual = policy.handleJson(JSON.stringify(step.input));
    });
    // The same input as a JS object, through the binding's own conversion (a sample
    // through `observe`, which reads plain sample objects directly).
    let twinActual;
    const twinError = refusal(() => {
      if (step.input.kind === "observe") {
        const { kind, ...sample } = step.input;
        twinActual = twin.observe(sample);
      } else {
        twinActual = twin.handle(step.input);
      }
    });
    if (error) {
      assert.equal(policy.snapshotJson(), before, `${where}: refused (${error.code}) but the policy changed`);
      assert.ok(step.error, `${where}: expected a step, but the input was refused: ${error.message}`);
      compareError(step.error, error, true, where);
      assert.deepEqual(twinError && { code: twinError.code, path: twinError.path },
        { code: error.code, path: error.path }, `${where}: handle(object) disagrees with handleJson`);
    } else {
      assert.ok(!step.error, `${where}: expected the error ${JSON.stringify(step.error)}, but the input was accepted`);
      const expected = { at, decisions: step.decisions ?? [], events: step.events ?? [] };
      const diff = firstDifference(expected, actual);
      assert.equal(diff, null, `${where}:\n${diff}\n--- expected\n${JSON.stringify(expected)}\n--- actual\n${JSON.stringify(actual)}`);
      assert.equal(twinError, null, `${where}: handle(object) refused it: ${twinError?.message}`);
      assert.equal(firstDifference(actual, twinActual), null, `${where}: handle(object) disagrees with handleJson`);
      // A tick at the same time, on a copy, is a no-op (the Rust runner's extra check).
      const copy = Policy.restoreJson(policy.snapshotJson());
      const tick = copy.tick(Math.max(at, policy.now));
      assert.equal(tick.decisions.length + tick.events.length, 0, `${where}: a repeated tick was not empty`);
      assert.equal(copy.snapshotJson(), policy.snapshotJson(), `${where}: a repeated tick changed the policy`);
      copy.free();
    }
    assert.equal(twin.snapshotJson(), policy.snapshotJson(), `${where}: the twin policy diverged`);
    // restore(snapshot()) gives back the same policy.
    const text = policy.snapshotJson();
    assert.equal(Policy.restoreJson(text).snapshotJson(), text, `${where}: snapshot round trip`);
    if (step.restore === true) {
      policy = Policy.restoreJson(policy.snapshotJson());
      twin = Policy.restore(twin.snapshot());
    }
    runAssignChecks(policy, step.assign ?? [], where);
    if (Object.hasOwn(step, "routing_table")) {
      const actual = policy.routingTable();
      const diff = firstDifference(step.routing_table, actual);
      assert.equal(diff, null, `${where}: routing_table:\n${diff}\n--- expected\n${JSON.stringify(step.routing_table)}\n--- actual\n${JSON.stringify(actual)}`);
    }
  });
}

/** An agents steps vector: inputs to `Agents` as JSON text, and as objects to a twin. */
function runAgentsSteps(agents, twin, doc) {
  assert.ok(Array.isArray(doc.steps) && doc.steps.length > 0, "steps must be a non-empty array");
  doc.steps.forEach((step, i) => {
    const bad = Object.keys(step).find((k) => !STEP_KEYS.includes(k));
    assert.equal(bad, undefined, `steps[${i}]: unknown key ${bad}`);
    for (const k of ["decisions", "events", "assign", "routing_table"]) {
      assert.ok(!Object.hasOwn(step, k), `steps[${i}]: ${k} does not belong in an agents step`);
    }
    const where = `steps[${i}] (input ${JSON.stringify(step.input)})`;
    const at = inputTime(step.input, agents.now);
    const before = agents.snapshotJson();
    let actual;
    const error = refusal(() => {
      actual = agents.handleJson(JSON.stringify(step.input));
    });
    let twinActual;
    const twinError = refusal(() => {
      twinActual = twin.handle(step.input);
    });
    if (error) {
      assert.equal(agents.snapshotJson(), before, `${where}: refused (${error.code}) but an agent changed`);
      assert.ok(step.error, `${where}: expected a step, but the input was refused: ${error.message}`);
      compareError(step.error, error, true, where);
      assert.deepEqual(twinError && { code: twinError.code, path: twinError.path },
        { code: error.code, path: error.path }, `${where}: handle(object) disagrees with handleJson`);
    } else {
      assert.ok(!step.error, `${where}: expected the error ${JSON.stringify(step.error)}, but the input was accepted`);
      const expected = {
        at,
        agents: (step.agents ?? []).map((a) => ({
          agent: a.agent, step: { at, decisions: a.decisions ?? [], events: a.events ?? [] },
        })),
      };
      const diff = firstDifference(expected, actual);
      assert.equal(diff, null, `${where}:\n${diff}\n--- expected\n${JSON.stringify(expected)}\n--- actual\n${JSON.stringify(actual)}`);
      assert.equal(twinError, null, `${where}: handle(object) refused it: ${twinError?.message}`);
      assert.equal(firstDifference(actual, twinActual), null, `${where}: handle(object) disagrees with handleJson`);
      const copy = Agents.restoreJson(agents.snapshotJson());
      const tick = copy.tick(Math.max(at, agents.now));
      assert.equal(tick.agents.length, 0, `${where}: a repeated tick was not empty`);
      assert.equal(copy.snapshotJson(), agents.snapshotJson(), `${where}: a repeated tick changed the agents`);
      copy.free();
    }
    assert.equal(twin.snapshotJson(), agents.snapshotJson(), `${where}: the twin diverged`);
    const text = agents.snapshotJson();
    assert.equal(Agents.restoreJson(text).snapshotJson(), text, `${where}: snapshot round trip`);
    if (step.restore === true) {
      agents = Agents.restoreJson(agents.snapshotJson());
      twin = Agents.restore(twin.snapshot());
    }
  });
}

/** A step's `assign` checks, on the policy as it stands after the step (and its restore):
 *  `policy.assign(key)`, or with `session_started_at` (and `now`, by default the policy's
 *  time) a pinned session. */
function runAssignChecks(policy, checks, where) {
  assert.ok(Array.isArray(checks), `${where}: assign must be an array`);
  checks.forEach((c, j) => {
    const here = `${where}: assign[${j}] (key ${JSON.stringify(c.key)})`;
    const bad = Object.keys(c).find((k) => !ASSIGN_KEYS.includes(k));
    assert.equal(bad, undefined, `${here}: unknown key ${bad}`);
    assert.ok(Object.hasOwn(c, "expect") !== Object.hasOwn(c, "error"), `${here}: one of expect and error`);
    assert.ok(!Object.hasOwn(c, "now") || Object.hasOwn(c, "session_started_at"), `${here}: now only with a session`);
    const before = policy.snapshotJson();
    let actual;
    const error = refusal(() => {
      actual = c.session_started_at === undefined
        ? policy.assign(c.key)
        : policy.assign(c.key, c.session_started_at, c.now);
    });
    if (Object.hasOwn(c, "error")) {
      compareError(c.error, error, true, here);
    } else {
      assert.equal(error, null, `${here}: refused: ${error?.message}`);
      const diff = firstDifference(c.expect, actual);
      assert.equal(diff, null, `${here}:\n${diff}\n--- expected\n${JSON.stringify(c.expect)}\n--- actual\n${JSON.stringify(actual)}`);
      // A router holding only the routing table answers the same.
      const now = c.session_started_at === undefined ? undefined : c.now ?? policy.now;
      const fromTable = assignFromTable(policy.routingTable(), c.key, c.session_started_at, now);
      assert.deepEqual(fromTable, actual, `${here}: from the routing table`);
    }
    assert.equal(policy.snapshotJson(), before, `${here}: assign changed the policy`);
  });
}

function runVector(name, doc) {
  assert.equal(doc.format_version, 1, "vector format_version");
  assert.equal(doc.name, name, "name must be the file's path");
  assert.ok(typeof doc.description === "string" && doc.description.trim(), "a vector needs a description");
  switch (kindOf(doc)) {
    case "agents_config_error": {
      const error = refusal(() => Agents.fromJson(JSON.stringify(doc.agents_config), doc.start ?? 0));
      compareError(doc.config_error, error, true, "config");
      const viaObject = refusal(() => new Agents(doc.agents_config, doc.start ?? 0));
      compareError(doc.config_error, viaObject, true, "new Agents(object)");
      break;
    }
    case "agents_steps": {
      assert.ok(Number.isInteger(doc.start) && doc.start >= 0, "start must be a non-negative integer");
      runAgentsSteps(Agents.fromJson(JSON.stringify(doc.agents_config), doc.start),
        new Agents(doc.agents_config, doc.start), doc);
      break;
    }
    case "config_error": {
      const error = refusal(() => Policy.fromJson(JSON.stringify(doc.config), doc.start ?? 0));
      compareError(doc.config_error, error, true, "config");
      // The same config as a JS object, through the constructor.
      const viaObject = refusal(() => new Policy(doc.config, doc.start ?? 0));
      compareError(doc.config_error, viaObject, true, "new Policy(object)");
      break;
    }
    case "restore_error": {
      assert.ok(Object.hasOwn(doc, "snapshot") !== Object.hasOwn(doc, "snapshot_text"));
      const text = Object.hasOwn(doc, "snapshot") ? JSON.stringify(doc.snapshot) : doc.snapshot_text;
      compareError(doc.restore_error, refusal(() => Policy.restoreJson(text)), false, "restore");
      break;
    }
    case "steps": {
      assert.ok(Number.isInteger(doc.start) && doc.start >= 0, "start must be a non-negative integer");
      const policy = Policy.fromJson(JSON.stringify(doc.config), doc.start);
      runSteps(policy, new Policy(doc.config, doc.start), doc);
      break;
    }
    case "restore": {
      const policy = Policy.restoreJson(JSON.stringify(doc.snapshot));
      runSteps(policy, Policy.restore(doc.snapshot), doc);
      break;
    }
  }
}

const files = findVectors(VECTORS);

test(`at least ${MIN_VECTORS} vectors are found`, () => {
  assert.ok(files.length >= MIN_VECTORS, `found only ${files.length} vectors under ${VECTORS}`);
});

for (const file of files) {
  const name = file.replace(/\.json$/, "");
  test(`vector ${name}`, () => {
    runVector(name, JSON.parse(readFileSync(join(VECTORS, file), "utf8")));
  });
}
