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
// 3. the v3 rollback shows at 1:36:06 (summary card, decision list, chart hover tooltip),
//    and v3's two side effects show as compensated, newest first, after it (the effects
//    panel and the decision list);
// 4. the second bundled scenario (examples/scenarios/statistical.json, one gate of every
//    statistical kind) replays to the native trace too (`--expected-statistical`), and
//    every statistical gate has its evidence panels with one plotted point per report
//    of that gate, the values the reports gave, and the reference lines (ln(1/alpha)
//    for the e-values, the margin for the effects, the reported thresholds);
// 5. the third (examples/scenarios/tenants.json, scopes by tenant) replays to the native
//    trace too (`--expected-tenants`), opened by `#tenants` in the address, and draws the
//    per-scope grid: one row per tenant, one cell per evaluation, the failing and tripped
//    cells exactly the scope reports the trace lists failing, globex marked as held for
//    and acme as rolled back for;
// 6. screenshots are written (default: target/dashboard.png at the workspace root,
//    target/dashboard-statistical.png and target/dashboard-tenants.png).
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
    "expected-statistical": { type: "string" },
    "expected-tenants": { type: "string" },
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
const STATISTICAL = join(root, "examples", "scenarios", "statistical.json");
const expectedStatistical = (args["expected-statistical"]
  ? readFileSync(args["expected-statistical"], "utf8")
  : execFileSync("cargo", ["run", "-q", "--release", "-p", "rollguard-cli", "--", "replay", STATISTICAL, "--all"],
    { cwd: root, maxBuffer: 1 << 30 }).toString()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

const statisticalShot = args.screenshot.replace(/(\.png)?$/, "-statistical.png");
const TENANTS = join(root, "examples", "scenarios", "tenants.json");
const expectedTenants = (args["expected-tenants"]
  ? readFileSync(args["expected-tenants"], "utf8")
  : execFileSync("cargo", ["run", "-q", "--release", "-p", "rollguard-cli", "--", "replay", TENANTS, "--all"],
    { cwd: root, maxBuffer: 1 << 30 }).toString()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const tenantsShot = args.screenshot.replace(/(\.png)?$/, "-tenants.png");

/** The tenants scenario, opened by `#tenants`: trace equal to the native one, and its per-scope grid. */
async function checkTenants(page, url) {
  // A fragment change alone does not reload the page: load it afresh with the fragment.
  await page.goto(`${url}#tenants`);
  await page.reload();
  await page.waitForSelector("body[data-status=ready], body[data-status=error]", { timeout: 30000 });
  assert.equal(await page.evaluate(() => document.body.dataset.status), "ready", await page.textContent("#message"));
  assert.equal(await page.inputValue("#bundled"), "tenants.json", "#tenants selects the tenants scenario");
  const trace = await page.evaluate(() => window.rollguardTrace);
  assert.equal(firstDifference(expectedTenants, trace), null, "the tenants scenario's trace");
  console.log(`e2e: the tenants scenario's in-page trace equals the native trace (${trace.length} entries)`);

  // From the native trace: the evaluations, and each scope's listed failing reports.
  const label = (k) => (k.overflow ? "overflow" : ["tenant", "tier", "agent"].filter((l) => k[l] !== undefined).map((l) => `${l}=${k[l]}`).join(" "));
  const analyses = expectedTenants.flatMap((e) => (e.step?.events ?? []).filter((x) => x.kind === "analysis"));
  const failing = new Set(analyses.flatMap((a) => (a.scoped ?? []).filter((r) => r.verdict === "fail" || r.tripped)
    .map((r) => `${label(r.scope)}@${a.at}`)));
  const scenario = JSON.parse(readFileSync(TENANTS, "utf8"));
  const tenants = [...new Set(scenario.inputs.flatMap((i) => i.samples ?? []).map((s) => s.tenant))];
  assert.equal(tenants.length, 8, "eight tenants in the scenario");
  const tierOf = new Map(scenario.inputs.flatMap((i) => i.samples ?? []).map((s) => [`tenant=${s.tenant}`, s.tier]));

  const rows = await page.$$eval("#scopes table.scope-grid tbody tr", (trs) => trs.map((tr) => ({
    scope: tr.dataset.scope,
    cells: [...tr.querySelectorAll("td.cell")].map((td) => ({ at: +td.dataset.at, state: td.dataset.state, title: td.title })),
    held: tr.querySelectorAll(".scope-mark.held").length,
    rolled: tr.querySelectorAll(".scope-mark.rolled").length,
  })));
  assert.deepEqual(rows.map((r) => r.scope), tenants.map((t) => `tenant=${t}`), "one row per tenant, in the order first seen");
  for (const r of rows) {
    assert.deepEqual(r.cells.map((c) => c.at), analyses.map((a) => a.at), `${r.scope}: one cell per evaluation`);
    const red = r.cells.filter((c) => c.state === "fail" || c.state === "tripped").map((c) => `${r.scope}@${c.at}`);
    assert.deepEqual(red, [...failing].filter((k) => k.startsWith(`${r.scope}@`)), `${r.scope}: failing cells are the listed failing reports`);
    assert.ok(r.cells.every((c) => c.title.split("\n")[0].endsWith(`${r.scope} (${tierOf.get(r.scope)}): ${c.state === "pass" ? "not listed: passing, or too few samples for a verdict" : c.state === "tripped" ? "tripped" : c.state === "fail" ? "failing" : "passing again after failing"}`)),
      `${r.scope}: each cell's tooltip names the scope, its tier and its state`);
  }
  const row = (t) => rows.find((r) => r.scope === `tenant=${t}`);
  assert.ok(row("globex").cells.some((c) => c.state === "tripped"), "globex trips");
  assert.ok(row("globex").cells.some((c) => c.state === "recovered"), "globex passes again after its fix");
  assert.match(row("globex").cells.find((c) => c.state === "tripped").title, /tenant=globex \(silver\): tripped\n.*failure_rate.*\n.*the rollout holds for this scope \(scoped_failure, escalated\)/);
  assert.equal(row("globex").held, 1, "globex: marked as the scope the rollout held for");
  assert.equal(row("acme").rolled, 1, "acme: marked as the scope v3 was rolled back for");
  // The rollback card names the tenant whose scope tripped.
  const cards = await page.locator(".card.rollback").allTextContents();
  assert.equal(cards.length, 1, "one rollback card");
  assert.match(cards[0], /Roll back v3 → v2/);
  assert.match(cards[0], /failure_rate in tenant=acme: rate of failed_conversations on v3 was 0\.0333 > max 0\.01/);
  const trips = await page.locator('#decisions li[data-kind="gate_tripped"]').allTextContents();
  assert.deepEqual(trips.map((t) => t.replace(/^\S+\s+/, "")), ["Gate failure_rate in tenant=globex tripped", "Gate failure_rate in tenant=acme tripped"]);
  assert.ok(row("acme").cells.at(-1).state === "tripped", "acme tripped at the last evaluation");
  for (const t of ["initech", "hooli", "umbrella", "stark", "wayne", "wonka"]) {
    assert.ok(row(t).cells.every((c) => c.state === "pass"), `${t}: passing throughout`);
    assert.equal(row(t).held + row(t).rolled, 0, `${t}: not marked`);
  }
  await page.screenshot({ path: tenantsShot, fullPage: true });
  console.log(`e2e: the per-scope grid has ${rows.length} rows x ${analyses.length} evaluations, ${failing.size} failing cells, globex held for, acme rolled back for`);
}

/** The reports of each gate in a trace, in order. */
function reportsByGate(trace) {
  const by = new Map();
  for (const entry of trace) {
    for (const e of entry.step?.events ?? []) {
      if (e.kind !== "analysis") continue;
      for (const r of e.reports) {
        if (!by.has(r.gate)) by.set(r.gate, []);
        by.get(r.gate).push(r);
      }
    }
  }
  return by;
}

/** The plotted non-null values of the series labelled `prefix…`, over all arms, in time order. */
function plotted(panel, prefix) {
  const cols = panel.labels.map((l, i) => (l.startsWith(prefix) ? panel.data[i] : null)).filter(Boolean);
  assert.ok(cols.length > 0, `${panel.gate}/${panel.part}: a series "${prefix}"`);
  const values = [];
  for (let i = 0; i < cols[0].length; i++) for (const c of cols) if (c[i] !== null) values.push(c[i]);
  return values;
}

/** The statistical scenario: trace equal to the native one, and every kind's evidence panels. */
async function checkStatistical(page) {
  const scenario = JSON.parse(readFileSync(STATISTICAL, "utf8"));
  await page.evaluate(() => { document.body.dataset.status = "loading"; window.rollguardTrace = null; });
  await page.selectOption("#bundled", "statistical.json");
  await page.waitForSelector("body[data-status=ready], body[data-status=error]", { timeout: 30000 });
  assert.equal(await page.evaluate(() => document.body.dataset.status), "ready", await page.textContent("#message"));
  const trace = await page.evaluate(() => window.rollguardTrace);
  assert.equal(firstDifference(expectedStatistical, trace), null, "the statistical scenario's trace");
  console.log(`e2e: the statistical scenario's in-page trace equals the native trace (${trace.length} entries)`);

  assert.equal(await page.locator("#effects").isHidden(), true, "no side effects, no effects panel");
  const reports = reportsByGate(expectedStatistical);
  const panels = await page.evaluate(() => window.rollguardEvidence);
  const panelOf = (gate, part) => {
    const p = panels.find((x) => x.gate === gate && x.part === part);
    assert.ok(p, `an evidence panel ${gate}/${part}`);
    return p;
  };
  const kinds = new Set();
  for (const gate of scenario.config.gates) {
    const rule = gate.rule;
    const rs = reports.get(gate.name) ?? [];
    assert.ok(rs.length >= 10, `${gate.name}: reports in the trace`);
    const sorted = [...rs].sort((a, b) => a.window_end - b.window_end);
    const values = (f) => sorted.filter((r) => r[f] !== undefined).map((r) => r[f]);
    kinds.add(rule.kind);
    switch (rule.kind) {
      case "error_attribution": case "rate_slo": case "sequential_mean": case "sequential_quantile": {
        const ev = panelOf(gate.name, "e_value");
        const logE = plotted(ev, "ln e-value");
        assert.equal(logE.length, rs.length, `${gate.name}: one e-value point per report`);
        assert.deepEqual(logE, values("log_e_value"), `${gate.name}: the reported e-values`);
        // The boundary: ln(1/alpha), alpha as the scenario gives it.
        const boundary = Math.log(1 / rule.alpha);
        assert.ok(Math.abs(ev.reference - boundary) < 1e-12, `${gate.name}: boundary ${ev.reference} = ln(1/${rule.alpha})`);
        const line = plotted(ev, "boundary");
        assert.equal(line.length, new Set(rs.map((r) => r.window_end)).size);
        assert.ok(line.every((v) => v === ev.reference), `${gate.name}: the boundary line at ln(1/alpha)`);
        const y = await page.evaluate(([i, v]) => {
          const u = window.rollguardCharts[i];
          return { y: u.valToPos(v, "y"), h: u.bbox.height / devicePixelRatio };
        }, [ev.chart, boundary]);
        assert.ok(y.y >= 0 && y.y <= y.h, `${gate.name}: the boundary is inside the plot (${y.y} of ${y.h})`);
        const eff = panelOf(gate.name, "effect");
        assert.deepEqual(plotted(eff, "effect"), values("effect"), `${gate.name}: the reported effects`);
        if (values("effect_lower").length) assert.deepEqual(plotted(eff, "lower bound"), values("effect_lower"), `${gate.name}: lower bounds`);
        if (values("effect_upper").length) assert.deepEqual(plotted(eff, "upper bound"), values("effect_upper"), `${gate.name}: upper bounds`);
        // The margin line: where the null ends on the effect's scale, from the config.
        const margin = {
          error_attribution: 1 + (rule.margin?.relative ?? 0),
          rate_slo: rule.max_rate,
          sequential_mean: rule.margin?.absolute,
          sequential_quantile: 1 + (rule.margin?.relative ?? 0),
        }[rule.kind];
        assert.ok(Math.abs(eff.reference - margin) < 1e-12, `${gate.name}: margin line ${eff.reference}, expected ${margin}`);
        break;
      }
      case "cusum": case "ewma": {
        const p = panelOf(gate.name, "statistic");
        assert.deepEqual(plotted(p, rule.kind === "cusum" ? "cumulative sum" : "EWMA z"), values("statistic"), `${gate.name}: one point per report`);
        assert.equal(plotted(p, "threshold").length, new Set(rs.map((r) => r.window_end)).size);
        assert.equal(p.reference, rs[0].threshold, `${gate.name}: the reported threshold`);
        assert.ok(rs.some((r) => r.statistic > r.threshold), `${gate.name}: the story crosses the threshold`);
        break;
      }
      case "drift": {
        const p = panelOf(gate.name, "divergence");
        assert.deepEqual(plotted(p, rule.measure ?? "psi"), values("divergence"), `${gate.name}: the reported divergences`);
        assert.equal(p.reference, rs[0].threshold, `${gate.name}: the reported threshold`);
        break;
      }
      case "mann_whitney": {
        const p = panelOf(gate.name, "classification");
        assert.deepEqual(plotted(p, "HL shift"), values("effect"), `${gate.name}: the reported shifts`);
        assert.deepEqual(plotted(p, "interval lower"), values("effect_lower"), `${gate.name}: interval lower ends`);
        const cells = await page.$$eval(`.chart.evidence[data-gate="${gate.name}"] .classes .cls`,
          (els) => els.map((e) => e.className.replace("cls ", "")));
        assert.deepEqual(cells, sorted.map((r) => r.classification), `${gate.name}: one classification per interval`);
        break;
      }
      case "kayenta_score": {
        const p = panelOf(gate.name, "score");
        assert.deepEqual(plotted(p, "score"), values("score"), `${gate.name}: the reported scores`);
        assert.equal(p.reference, rs[0].marginal, `${gate.name}: the marginal line at the reported threshold`);
        assert.equal(p.reference, rule.marginal, `${gate.name}: ... which is the config's`);
        assert.ok(plotted(p, "pass").every((v) => v === rule.pass), `${gate.name}: the pass line at ${rule.pass}`);
        // One row of labels per member, one cell per report, each the member's reported label.
        for (const member of rule.members) {
          const cells = await page.$$eval(`.chart.evidence[data-gate="${gate.name}"] .member[data-member="${member.gate}"] .cls`,
            (els) => els.map((e) => e.className.replace("cls ", "")));
          assert.deepEqual(cells, sorted.map((r) => r.metrics.find((m) => m.gate === member.gate)?.classification ?? "absent"),
            `${gate.name}: ${member.gate}'s label per interval`);
        }
        // The story has both a passing and a failing interval for the score to show.
        assert.ok(values("score").some((v) => v >= rule.pass) && values("score").some((v) => v <= rule.marginal),
          `${gate.name}: scores on both sides (${values("score")})`);
        break;
      }
      default:
        assert.fail(`the statistical scenario has a ${rule.kind} gate the test does not know`);
    }
  }
  assert.equal(kinds.size, 9, `every statistical kind in the scenario: ${[...kinds]}`);
  // The rollback cards give each kind's evidence in words: v2's cusum statistic against
  // its threshold, v3's e-value against ln(1/alpha) with the effect's bounds.
  const cards = await page.locator(".card.rollback").allTextContents();
  assert.equal(cards.length, 2, "two rollback cards");
  assert.match(cards[0], /latency_cusum: .*cusum statistic [\d.]+ against its threshold [\d.]+/);
  assert.match(cards[1], /ln e-value [\d.]+ against the boundary ln\(1\/alpha\) 4\.605, p [\d.]+; effect [\d.]+ \[[\d.]+, –\]/);
  const drawn = await page.locator(".chart.evidence").count();
  assert.equal(drawn, panels.length, "every evidence panel is in the page");
  await page.screenshot({ path: statisticalShot, fullPage: true });
  console.log(`e2e: ${panels.length} evidence panels for ${kinds.size} kinds, one point per report, boundaries at ln(1/alpha), margins and thresholds`);
}

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

  // v3's side effects: recorded, then compensated newest first after the rollback, each
  // acknowledged. The times come from the native trace; the order is the demo's story.
  const when = (kind, pick) => expected.flatMap((e) => [...(e.step?.decisions ?? []), ...(e.step?.events ?? [])])
    .filter((x) => x.kind === kind).map((x) => [pick(x), x.at]);
  const recorded = new Map(when("effect_recorded", (x) => x.effect_id));
  const issued = new Map(when("compensate", (x) => x.effect_id));
  const acked = new Map(when("effect_compensated", (x) => x.effect_id));
  assert.deepEqual([...recorded.keys()], ["email-batch-7", "crm-note-1042"], "the demo records two effects");
  assert.deepEqual([...issued.keys()], ["crm-note-1042", "email-batch-7"], "compensated newest first");
  const effectRows = page.locator("#effects tr[data-effect]");
  assert.equal(await effectRows.count(), 2, "one row per side effect");
  const UNDO = { "email-batch-7": /recall_email.*7|7.*recall_email/, "crm-note-1042": /delete_note.*1042|1042.*delete_note/ };
  for (const [i, id] of ["email-batch-7", "crm-note-1042"].entries()) {
    const r = effectRows.nth(i);
    assert.equal(await r.getAttribute("data-effect"), id);
    assert.equal(await r.getAttribute("data-version"), "v3");
    assert.equal(await r.getAttribute("data-state"), "compensated");
    const cells = (await r.locator("td").allTextContents()).map((t) => t.trim());
    const clock = (ms) => new Date(ms).toISOString().slice(12, 19); // h:mm:ss, as the page writes it under 10 h
    assert.deepEqual(cells.slice(3, 6), [recorded.get(id), issued.get(id), acked.get(id)].map(clock), `${id}: recorded, compensate issued, acknowledged`);
    assert.ok(issued.get(id) > ROLLBACK_AT && acked.get(id) > issued.get(id), `${id}: after the rollback`);
    assert.match(cells[2], UNDO[id], `${id}: its undo descriptor`);
  }
  assert.match(await page.textContent("#effects h2"), /2 recorded, 2 compensated/);
  const compensateRows = page.locator("#decisions li.compensate");
  assert.equal(await compensateRows.count(), 2, "two compensate decisions in the list");
  assert.match(await compensateRows.nth(0).textContent(), /Compensate v3's side effect crm-note-1042: undo .*delete_note/);
  assert.match(await compensateRows.nth(0).textContent(), /compensation/);
  assert.equal(await page.locator("#decisions li.event.effect_compensated").count(), 2);
  console.log("e2e: v3's two side effects show recorded → compensating → compensated, newest first after the rollback");
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

  // The demo's gates are threshold and vs_baseline gates: no evidence panel.
  assert.deepEqual(await page.evaluate(() => window.rollguardEvidence.length), 0, "the demo has no statistical gate");
  assert.equal(await page.locator("#scopes").isHidden(), true, "no scope grid for the demo");
  await checkStatistical(page);
  assert.equal(await page.locator("#scopes").isHidden(), true, "no scope grid for the statistical scenario");
  await checkTenants(page, url);
  await page.selectOption("#bundled", "demo.json");
  await page.waitForSelector("body[data-status=ready]");
  assert.equal(await page.evaluate(() => window.rollguardTrace.length), expected.length, "back to the demo");
  assert.equal(await page.locator("#scopes").isHidden(), true, "the grid goes with the tenants scenario");
  assert.deepEqual(problems, [], "no page errors");

  await page.mouse.move(1, 1);
  await tip.waitFor({ state: "hidden", timeout: 5000 });
  await page.screenshot({ path: args.screenshot, fullPage: true });
  console.log(`e2e: screenshots written to ${args.screenshot}, ${hover}, ${statisticalShot} and ${tenantsShot}`);
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
