#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs them all:
# format, lints (native and wasm32), unit/property/conformance/doc tests, the core
# built for wasm32, the vectors on aarch64 under qemu, the CLI demo and the example, the
# Python package (wheel, pytest, stubtest, notebook), the npm package (Node tests, tsc)
# and the dashboard end to end in headless Chromium, the packages ready to publish
# (scripts/check-publish.sh), benches compiled, the detection benchmark in its quick
# mode, and a short fuzz run per target.
# `.ci/run` calls exactly this.
#
#   ./scripts/test.sh             everything
#   FUZZ_SECONDS=60 ./scripts/test.sh   longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
started=$SECONDS
section() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }

section "toolchain"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
# cargo-fuzz needs a nightly; use the machine's, or fetch a pinned one.
NIGHTLY=nightly
if ! rustc +nightly --version >/dev/null 2>&1; then
  NIGHTLY=nightly-2026-05-20
  rustup toolchain install "$NIGHTLY" --profile minimal
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
rustc --version; rustc "+$NIGHTLY" --version; cargo fuzz --version

section "fmt"
cargo fmt --all --check

section "clippy (native, all targets, warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "clippy (core for wasm32)"
cargo clippy -p rollguard --target wasm32-unknown-unknown --locked -- -D warnings

section "tests (unit, lifecycle, properties, conformance vectors, CLI, doc)"
cargo test --workspace --locked

section "core built for wasm32-unknown-unknown"
cargo build -p rollguard --target wasm32-unknown-unknown --release --locked

section "core on aarch64 under qemu-user (conformance and assignment vectors)"
./scripts/test-aarch64.sh

section "demo and examples run"
cargo run -q --release -p rollguard-cli --locked -- demo >/dev/null
cargo run -q --release -p rollguard-examples --bin service-loop --locked >/dev/null
# The committed demo scenario must be what its generator produces today.
cargo run -q --release -p rollguard-examples --bin gen-demo --locked -- --check
# And the dashboard's statistical and tenants scenarios.
cargo run -q --release -p rollguard-examples --bin gen-statistical --locked -- --check
cargo run -q --release -p rollguard-examples --bin gen-tenants --locked -- --check
echo "demo, service-loop, gen-demo --check, gen-statistical --check and gen-tenants --check ran"

section "Python package (maturin wheel in a fresh venv, pytest, stubtest, notebook)"
./scripts/test-python.sh

section "npm package over WebAssembly, and the dashboard in headless Chromium"
./scripts/test-wasm.sh

section "ready to publish: crates packaged and dry-run, sdist into a fresh venv, npm pack into a fresh project, one version"
# After the Python and npm sections: reuses their venv's maturin, the release builds in
# target/ and the built npm package (about 40 s warm; cargo package's verification builds
# add a minute or two on a fresh clone).
./scripts/check-publish.sh

section "benches compile"
cargo bench --workspace --no-run --locked

section "detection benchmark (--quick: 100 nulls, 50 alternatives, 30 min per cell)"
# Writes target/detection-quick/{detection.md,detection.json,*.png}; the full run is
# `cargo run --release -p rollguard-detection` (benches/detection/README.md).
cargo run -q --release -p rollguard-detection --locked -- --quick --out target/detection-quick >/dev/null
for f in detection.md detection.json delay_vs_shift.png delay_vs_error_ratio.png false_rollback_rate.png; do
  test -s "target/detection-quick/$f"
done

section "fuzz (${FUZZ_SECONDS}s per target, from the committed corpus)"
# `-s none`: the core forbids `unsafe`, so AddressSanitizer would only cost build time;
# debug assertions and overflow checks stay on. Each target starts from its committed
# corpus (fuzz/corpus/<target>, read only) with its dictionary, and writes what it finds
# to a scratch directory, so the tree stays clean. `scripts/fuzz-long.sh` runs longer.
(
  cd fuzz
  cargo "+$NIGHTLY" fuzz build -s none
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for target in $(cargo "+$NIGHTLY" fuzz list); do
    if [ -d "regressions/$target" ]; then
      echo "-- $target: replaying saved crash inputs"
      cargo "+$NIGHTLY" fuzz run -s none "$target" regressions/"$target"/* 2>&1 | grep -E '^(Executed|==[0-9]+==|SUMMARY)' || true
      test "${PIPESTATUS[0]}" -eq 0
    fi
    echo "-- $target: fuzzing"
    dict=()
    if [ -f "dict/$target.dict" ]; then dict=(-dict="dict/$target.dict"); fi
    mkdir -p "$scratch/$target"
    # New inputs go to the first directory; the committed corpus only seeds the run.
    # A crash makes `cargo fuzz run` exit non-zero; the PIPESTATUS check turns that into a failure.
    cargo "+$NIGHTLY" fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" "${dict[@]}" 2>&1 | grep -E '^(#[0-9]+.*DONE|Done|==[0-9]+==|SUMMARY)' || true
    test "${PIPESTATUS[0]}" -eq 0
  done
)

section "all checks passed in $((SECONDS - started))s"
