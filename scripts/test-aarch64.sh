#!/usr/bin/env bash
# The core on aarch64 (64-bit Arm: Graviton, Ampere, Arm Linux laptops), cross-compiled
# and run under qemu-user: every conformance vector gives the same trace byte for byte
# as on x86_64 (scripts/test.sh) and wasm32 (scripts/test-wasm.sh), traffic assignment
# gives its test vectors' arms, and the special functions the statistical gates use
# (pure-Rust libm) match their reference values.
# Installs the Rust target, a cross linker and qemu when missing (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
rustup target add "$TARGET" >/dev/null 2>&1 || rustup target add "$TARGET"
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
qemu-aarch64 --version | head -1
# The policy vectors; the assignment hash's test vectors and the determinism guards; the
# special functions against their references.
cargo test --release --locked --target "$TARGET" -p rollguard-conformance
cargo test --release --locked --target "$TARGET" -p rollguard --test assign --test determinism
cargo test --release --locked --target "$TARGET" -p rollguard --lib stats::special
