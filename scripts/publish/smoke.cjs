// The same decision through require(): the package is ESM only, and Node >= 20.19 loads
// it with require() (its Node entry has no top-level await).
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const { Policy } = require("rollguard");

const policy = new Policy(JSON.parse(readFileSync(join(__dirname, "policy.json"), "utf8")), 0);
const started = policy.tick(0).decisions.map((d) => d.kind);
if (started.join() !== "set_weight") {
  console.error(`decisions at 0: ${started.join()}, expected set_weight`);
  process.exit(1);
}
console.log(`rollguard from npm (require): ${started.join()}@0`);
