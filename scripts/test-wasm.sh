#!/usr/bin/env bash
# Builds the `rollguard` npm package (WebAssembly) and the dashboard, and tests them:
# every conformance vector and the binding's own tests under Node, `tsc --noEmit` over a
# typed usage file, and the dashboard end to end in headless Chromium against the native
# trace. Self-contained and idempotent: on a fresh machine it installs the wasm32 target,
# wasm-bindgen-cli at the exact version Cargo.lock pins, and Debian's chromium (as root).
#
#   ./scripts/test-wasm.sh
#
# The screenshots land in target/dashboard.png, target/dashboard-hover.png,
# target/dashboard-statistical.png (the evidence panels of the statistical scenario) and
# target/dashboard-tenants.png (the per-scope grid of the tenants scenario).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never
started=$SECONDS
section() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }

section "wasm toolchain"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
# The CLI must be the crate's exact version. `--locked` can fail when the registry lags
# behind the CLI's own lock file (TOOLCHAIN.md §3); then resolve afresh.
WBG=$(cargo metadata --format-version 1 --locked |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{console.log(JSON.parse(s).packages.find(p=>p.name==="wasm-bindgen").version)})')
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WBG" ]; then
  cargo install wasm-bindgen-cli --version "$WBG" --locked ||
    cargo install wasm-bindgen-cli --version "$WBG"
fi
wasm-bindgen --version
# Debian's chromium for the end-to-end test (playwright-core downloads no browser).
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
"$CHROMIUM" --version 2>/dev/null | grep -v 'unexpected operator' || true
node --version

section "clippy (wasm binding, wasm32)"
cargo clippy -p rollguard-wasm --target wasm32-unknown-unknown --locked -- -D warnings

section "build the npm package (bindings/wasm/pkg)"
node bindings/wasm/build.mjs
wasm=bindings/wasm/pkg/rollguard_wasm_bg.wasm
echo "rollguard_wasm_bg.wasm: $(wc -c <"$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzipped"

section "npm ci (bindings/wasm, examples/dashboard)"
# After the build: both link the package in pkg/ (`file:` dependencies).
(cd bindings/wasm && npm ci --no-audit --no-fund)
(cd examples/dashboard && npm ci --no-audit --no-fund)

section "node tests (every conformance vector, errors, typed arrays, snapshots)"
(cd bindings/wasm && node --test test/*.test.mjs)

section "tsc --noEmit (typed usage file)"
(cd bindings/wasm && npx tsc --noEmit -p test/tsconfig.json && echo "tsc: no errors")

section "dashboard build, and its per-scope grid's model on conformance vectors (node --test)"
(cd examples/dashboard && node build.mjs && node --test test/)

section "dashboard end to end (headless Chromium)"
cargo run -q --release -p rollguard-cli --locked -- replay examples/scenarios/demo.json --all \
  >"$ROOT/target/demo-trace.jsonl"
cargo run -q --release -p rollguard-cli --locked -- replay examples/scenarios/statistical.json --all \
  >"$ROOT/target/statistical-trace.jsonl"
cargo run -q --release -p rollguard-cli --locked -- replay examples/scenarios/tenants.json --all \
  >"$ROOT/target/tenants-trace.jsonl"
(cd examples/dashboard && CHROMIUM="$CHROMIUM" node e2e.mjs --expected "$ROOT/target/demo-trace.jsonl" \
  --expected-statistical "$ROOT/target/statistical-trace.jsonl" \
  --expected-tenants "$ROOT/target/tenants-trace.jsonl" --screenshot "$ROOT/target/dashboard.png")

section "wasm: all passed"
