#!/usr/bin/env node
// Bundles the dashboard into dist/ with esbuild: app.js (+ app.css with uPlot's styles),
// index.html, the rollguard .wasm next to the bundle (the package loads it relative to
// its own URL), the three bundled scenarios, and smoke.html with an unbundled copy of the package. Needs `npm ci` here and bindings/wasm/pkg built.
import { copyFileSync, cpSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const require = createRequire(import.meta.url);

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(here, "src", "app.js")],
  outdir: dist,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(dist, "index.html"));
const pkgDir = dirname(require.resolve("rollguard/package.json"));
copyFileSync(join(pkgDir, "rollguard_wasm_bg.wasm"), join(dist, "rollguard_wasm_bg.wasm"));
for (const name of ["demo.json", "statistical.json", "tenants.json"]) {
  copyFileSync(join(here, "..", "scenarios", name), join(dist, name));
}
// The package itself, unbundled, for smoke.html: a browser importing it with no bundler.
copyFileSync(join(here, "src", "smoke.html"), join(dist, "smoke.html"));
cpSync(pkgDir, join(dist, "pkg"), { recursive: true, dereference: true });
console.log(`dashboard built into ${dist}`);
