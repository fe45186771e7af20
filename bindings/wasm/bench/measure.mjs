#!/usr/bin/env node
// Measurements of the npm package (not a test; not run in CI):
//
//   node bench/measure.mjs [--native]
//
// - the .wasm size, raw and gzipped;
// - observe throughput under Node: `observe(sample)` one object at a time (as the native
//   `observe/sample`), and `observeMany` over Float64Array columns on the candidate arm (as
//   the native `observe_columns/values_1000`), on the benches' reference policy
//   (benches/src/lib.rs) with time moving on 1 ms every 10 samples;
// - with --native, the native criterion figures for comparison
//   (`cargo bench -p rollguard-benches --bench core -- observe --quick`).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

import { Policy } from "rollguard";

const wasm = readFileSync(new URL("../pkg/rollguard_wasm_bg.wasm", import.meta.url));
console.log(`wasm: ${wasm.length} bytes raw, ${gzipSync(wasm, { level: 9 }).length} bytes gzipped`);

const config = {
  format_version: 1,
  name: "bench-reference",
  versions: [
    { id: "v1", digest: "sha256:01", validated: true, components: { model: "m-1", prompt_template: "p-1" } },
    { id: "v2", digest: "sha256:02", components: { model: "m-2", prompt_template: "p-1" } },
  ],
  stable: "v1",
  metrics: [
    { name: "latency_ms", kind: "value", window_ms: 300000, buckets: 10 },
    { name: "errors", kind: "count", window_ms: 300000, buckets: 10 },
    { name: "quality", kind: "value", window_ms: 300000, buckets: 10 },
  ],
  gates: [
    { name: "p95_latency", metric: "latency_ms", stat: "p95", rule: { kind: "vs_baseline", max_ratio: 1.3 }, samples_min: 50, persistence: { consecutive: 3 } },
    { name: "error_rate", metric: "errors", stat: "rate", rule: { kind: "vs_baseline", max_increase: 0.005 }, samples_min: 500, persistence: { consecutive: 3 } },
    { name: "quality", metric: "quality", stat: "mean", rule: { kind: "threshold", min: 0.8 }, samples_min: 50, persistence: { consecutive: 3 } },
  ],
  strategy: { kind: "canary", steps: [
    { kind: "set_weight", weight: 5, duration_ms: 2592000000 },
    { kind: "set_weight", weight: 25, duration_ms: 600000 },
    { kind: "approval" },
    { kind: "set_weight", weight: 50, duration_ms: 600000 },
  ], post_promotion_bake_ms: 600000 },
  analysis: { interval_ms: 10000 },
  safety: { cooldown_ms: 1800000, breaker: { max_rollbacks: 2, window_ms: 86400000 }, ack_timeout_ms: 600000 },
};

function reference() {
  const p = new Policy(config, 0);
  const step = p.command({ kind: "start_rollout", at: 0, version: "v2" });
  p.command({ kind: "ack", at: 0, action_id: step.decisions.find((d) => d.action_id).action_id });
  return p;
}

const PER_MS = 10;
let x = 42;
const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);

function rate(label, samples, fn) {
  fn(Math.min(samples, 100000)); // warm-up
  const t0 = process.hrtime.bigint();
  fn(samples);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const r = samples / s;
  console.log(`${label}: ${(r / 1e6).toFixed(2)} M samples/s (${samples} samples in ${s.toFixed(3)} s)`);
  return r;
}

const results = {};
{
  const p = reference();
  let i = 0;
  const sample = { at: 0, arm: "v1", metric: "latency_ms", value: 0 };
  results.observe = rate("observe(sample), one call per sample", 300000, (n) => {
    for (let k = 0; k < n; k++, i++) {
      sample.at = Math.floor(i / PER_MS);
      sample.arm = i & 1 ? "v2" : "v1";
      sample.value = 100 + 50 * rand();
      p.observe(sample);
    }
  });
}
// As the native `observe_columns/values_1000`: one column on the candidate arm. Only the
// calls are timed: the times are written 100,000 rows ahead (800 KB, so they stay in
// cache, as a batch a service has just assembled would) and cut into one Float64Array
// per call before the clock starts.
{
  const total = 5_000_000;
  const ahead = 100_000;
  for (const chunk of [1000, 10000, 100000]) {
    const at = new Float64Array(ahead);
    // The native bench's latency column (benches/benches/core.rs, `latency_column`).
    const values = Float64Array.from({ length: chunk }, (_, j) => {
      const u = ((j * 7919) % 1000) / 1000;
      return 60 + 320 * u * u * u;
    });
    let best = 0;
    for (let run = 0; run < 3; run++) {
      const p = reference();
      let spent = 0n;
      for (let i = 0; i < total; i += ahead) {
        for (let j = 0; j < ahead; j++) at[j] = Math.floor((i + j) / PER_MS);
        const columns = [];
        for (let k = 0; k < ahead; k += chunk) columns.push(at.subarray(k, k + chunk));
        const t0 = process.hrtime.bigint();
        for (const c of columns) p.observeMany("v2", "latency_ms", c, values);
        spent += process.hrtime.bigint() - t0;
      }
      best = Math.max(best, total / (Number(spent) / 1e9));
    }
    results[`many${chunk}`] = best;
    console.log(`observeMany("v2", "latency_ms"), ${chunk} per call: ${(best / 1e6).toFixed(2)} M samples/s (best of 3 runs of ${total})`);
  }
}

if (process.argv.includes("--native")) {
  const out = execFileSync("cargo", ["bench", "-q", "-p", "rollguard-benches", "--bench", "core", "--", "observe", "--quick"], {
    cwd: new URL("../../..", import.meta.url), stdio: ["ignore", "pipe", "inherit"],
  }).toString();
  console.log(out.split("\n").filter((l) => /observe|thrpt/.test(l)).join("\n"));
  // criterion prints the bench name, then `thrpt: [low median high]`; take the median.
  const native = {};
  let name = "";
  for (const line of out.split("\n")) {
    const bench = line.match(/^(observe\S*)/);
    if (bench) name = bench[1];
    const thrpt = line.match(/thrpt:\s*\[\S+ \S+ (\S+) (\S)elem\/s/);
    if (thrpt && name && !(name in native)) native[name] = Number(thrpt[1]) * { K: 1e3, M: 1e6, G: 1e9 }[thrpt[2]];
  }
  const ratio = (node, key) => native[key] && console.log(`  ${node} / native ${key}: ${(results[node] / native[key] * 100).toFixed(0)} %`);
  console.log("Node against native (same policy, same columns):");
  ratio("many1000", "observe_columns/values_1000");
  ratio("many10000", "observe_columns/values_1000");
  ratio("observe", "observe/sample");
}
