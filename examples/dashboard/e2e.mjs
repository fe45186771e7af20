#!/usr/bin/env node
// End-to-end test of the dashboard in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core; no browser download):
//
//   node e2e.mjs [--expected trace.jsonl] [--screenshot out.png]
//
// 1. serves dist/ (run build.mjs first) on 127.0.0.1 and opens it: the page loads the
//    bundled demo scenario and replays it with the wasm core;
// 2. the trace computed in the page equals the native one, entry by entry, as JSON values
//    (`--expected`: the JSONL of `rollguard replay examples/scenarios/demo.json --all`;
//    without it, this script runs that command);
// 3. the v3 rollback shows at 1:36:06 (summary card, decision list, chart hover tooltip);
// 4. a screenshot is written (default: target/dashboard.png at the workspace root).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

import { firstDifference } from "../../bindings/wasm/test/json.mjs";
import { serve } from "./serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const { values: args } = parseArgs({
  options: {
    expected: { type: "string" },
    screenshot: { type: "string", default: join(root, "target", "dashboard.png") },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
  },
});

// The v3 latency regression: onset 1:34:00, rolled back at 1:36:06 (the demo's story).
const ROLLBACK_AT = 5766000;

const expectedText = args.expected
  ? readFileSync(args.expected, "utf8")
  : execFileSync("cargo", ["run", "-q", "--release", "-p", "rollguard-cli", "--", "replay",
    join(root, "examples", "scenarios", "demo.json"), "--all"], { cwd: root, maxBuffer: 1 << 30 }).toString();
const expected = expectedText.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

const server = await serve(join(here, "dist"));
const url = `http://127.0.0.1:${server.address().port}/`;
const profile = mkdtempSync(join(tmpdir(), "rollguard-e2e-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  viewport: { width: 1500, height: 1000 },
  deviceScaleFactor: 1,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
let failed = false;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector("body[data-status=ready], body[data-status=error]", { timeout: 30000 });
  const status = await page.evaluate(() => document.body.dataset.status);
  assert.equal(status, "ready", `the page failed: ${await page.textContent("#message")}`);
  console.log(`e2e: page ready in ${Date.now() - t0} ms (${await context.browser()?.version() ?? "chromium"})`);

  // The trace computed in the page equals the native one.
  const actual = await page.evaluate(() => window.rollguardTrace);
  assert.equal(actual.length, expected.length, "trace length");
  expected.forEach((e, i) => {
    const d = firstDifference(e, actual[i]);
    assert.equal(d, null, `trace entry ${i} (input ${JSON.stringify(e.input)}): ${d}`);
  });
  console.log(`e2e: in-page trace equals the native trace (${expected.length} entries)`);

  // The rollback is shown at the right time: summary card, list row, and chart hover.
  const card = page.locator(`.card.rollback[data-at="${ROLLBACK_AT}"]`);
  assert.equal(await card.count(), 1, "a summary card for the v3 rollback");
  const cardText = await card.textContent();
  assert.match(cardText, /1:36:06/);
  assert.match(cardText, /Roll back v3 → v2/);
  assert.match(cardText, /p95_latency_vs_stable/);
  assert.match(cardText, /1:34:00/, "the estimated onset");
  const row = page.locator(`#decisions li.rollback[data-at="${ROLLBACK_AT}"]`);
  assert.equal(await row.count(), 1, "a decision-list row for the v3 rollback");
  assert.match(await row.textContent(), /gate_failed/);
  const charts = await page.locator(".chart").count();
  assert.ok(charts >= 5, `weight chart plus one chart per gate (found ${charts})`);
  const point = await page.evaluate((at) => {
    const u = window.rollguardCharts[1];
    const r = u.over.getBoundingClientRect();
    return { x: r.left + u.valToPos(at / 1000, "x"), y: r.top + r.height / 2 };
  }, ROLLBACK_AT);
  await page.mouse.move(point.x, point.y);
  const tip = page.locator("#tooltip");
  await tip.waitFor({ state: "visible", timeout: 5000 });
  const tipText = await tip.textContent();
  assert.match(tipText, /Roll back v3 → v2/);
  assert.match(tipText, /gate_failed/);
  console.log("e2e: the v3 rollback shows at 1:36:06 (card, list, hover tooltip)");
  mkdirSync(dirname(args.screenshot), { recursive: true });
  const hover = args.screenshot.replace(/(\.png)?$/, "-hover.png");
  await page.screenshot({ path: hover, fullPage: true });
  assert.deepEqual(problems, [], "no console errors");

  // Open files as a person would: the inputs as JSONL (here the CLI trace's lines, whose
  // `input`s the page takes) with the policy JSON; the page replays them the same way.
  const files = mkdtempSync(join(tmpdir(), "rollguard-files-"));
  const demo = JSON.parse(readFileSync(join(root, "examples", "scenarios", "demo.json"), "utf8"));
  writeFileSync(join(files, "policy.json"), JSON.stringify(demo.config));
  writeFileSync(join(files, "inputs.jsonl"), expectedText);
  await page.evaluate(() => { document.body.dataset.status = "loading"; window.rollguardTrace = null; });
  await page.setInputFiles("#file", [join(files, "inputs.jsonl"), join(files, "policy.json")]);
  await page.waitForSelector("body[data-status=ready], body[data-status=error]", { timeout: 30000 });
  assert.equal(await page.evaluate(() => document.body.dataset.status), "ready", await page.textContent("#message"));
  const fromFiles = await page.evaluate(() => window.rollguardTrace);
  assert.equal(firstDifference(expected, fromFiles), null, "the trace from the opened JSONL + policy files");
  assert.match(await page.textContent("#scenario-name"), /inputs\.jsonl \+ policy\.json/);
  rmSync(files, { recursive: true, force: true });
  console.log("e2e: inputs JSONL + policy JSON opened from files give the same trace");
  await page.click("#load-demo");
  await page.waitForSelector("body[data-status=ready]");

  // The package without a bundler: browser.js fetches its .wasm relative to its own URL.
  const smoke = await context.newPage();
  smoke.on("pageerror", (e) => problems.push(`smoke page error: ${e.message}`));
  await smoke.goto(`${url}smoke.html`);
  await smoke.waitForSelector("body[data-status=ready], body[data-status=error]", { timeout: 30000 });
  const result = await smoke.evaluate(() => window.smokeResult ?? document.body.textContent);
  assert.equal(result.entries, expected.length, `smoke page: ${JSON.stringify(result)}`);
  assert.deepEqual(result.rollbacks[0], [ROLLBACK_AT, "v3", "v2", "gate_failed"]);
  assert.deepEqual(result.error, { name: "RollguardError", code: "time_out_of_range", path: "at" });
  await smoke.close();
  assert.deepEqual(problems, [], "no page errors");
  console.log("e2e: the unbundled package imports and runs in the browser (smoke.html)");

  await page.mouse.move(1, 1);
  await tip.waitFor({ state: "hidden", timeout: 5000 });
  await page.screenshot({ path: args.screenshot, fullPage: true });
  console.log(`e2e: screenshots written to ${args.screenshot} and ${hover}`);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(failed ? "e2e: FAILED" : "e2e: ok");
process.exit(failed ? 1 : 0);
