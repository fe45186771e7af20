#!/usr/bin/env bash
# A long fuzz campaign: every target in turn for SECONDS each, starting from its
# committed corpus (fuzz/corpus/<target>) with its dictionary (fuzz/dict/<target>.dict),
# then the executions per target and in total.
#
#   scripts/fuzz-long.sh [SECONDS]      default 600 s per target
#
# Environment:
#   FUZZ_JOBS=N        libFuzzer fork-mode workers per target (default 1, which leaves
#                      the second core of a 2-core machine to everything else)
#   FUZZ_TARGETS="a b" only these targets (default: all, from `cargo fuzz list`)
#   FUZZ_OUT=DIR       scratch directory (default fuzz/target/fuzz-long): new corpus
#                      entries in DIR/<target>/corpus, crashes in DIR/<target>/artifacts,
#                      the log in DIR/<target>/log
#   FUZZ_MERGE=1       then minimize the committed corpus together with the new entries
#                      (`cargo fuzz cmin`) into fuzz/corpus/<target>, to commit
#
# Runs in fork mode with crashes, timeouts and out-of-memory ignored, so one crash does
# not end the campaign: every crash input is kept in the artifacts directory and listed
# at the end, and the script then exits 1. Minimize one with
# `cargo +nightly fuzz tmin -s none <target> <file>` and save it under
# fuzz/regressions/<target>/ (scripts/test.sh replays those).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_TERM_COLOR=never
per_target=${1:-600}
jobs=${FUZZ_JOBS:-1}
out=${FUZZ_OUT:-target/fuzz-long}
NIGHTLY=nightly
if ! rustc +nightly --version >/dev/null 2>&1; then
  NIGHTLY=nightly-2026-05-20
  rustup toolchain install "$NIGHTLY" --profile minimal
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cargo "+$NIGHTLY" fuzz build -s none
targets=${FUZZ_TARGETS:-$(cargo "+$NIGHTLY" fuzz list)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The executions of a finished run: the last fork-mode status line `#N: ...`.
executions() {
  grep -E '^#[0-9]+:' "$1" | tail -n 1 | sed -E 's/^#([0-9]+):.*/\1/' || true
}

total=0
started=$SECONDS
crashes=()
printf '%-20s %14s %8s %8s\n' target executions seconds crashes >"$out/summary"
for target in $targets; do
  dir="$out/$target"
  mkdir -p "$dir/corpus" "$dir/artifacts" "corpus/$target"
  dict=()
  if [ -f "dict/$target.dict" ]; then dict=(-dict="dict/$target.dict"); fi
  echo "-- $target: ${per_target}s, $jobs job(s), log in $dir/log"
  t0=$SECONDS
  # New entries go to the first directory; the committed corpus only seeds the run.
  # Exit status 77 (crashes found, ignored) is reported below, not fatal here.
  cargo "+$NIGHTLY" fuzz run -s none "$target" "$dir/corpus" "corpus/$target" -- \
    -max_total_time="$per_target" -fork="$jobs" \
    -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="$dir/artifacts/" "${dict[@]}" >"$dir/log" 2>&1 || true
  n=$(executions "$dir/log")
  n=${n:-0}
  found=$(find "$dir/artifacts" -type f | wc -l)
  while IFS= read -r f; do crashes+=("$f"); done < <(find "$dir/artifacts" -type f)
  total=$((total + n))
  printf '%-20s %14d %8d %8d\n' "$target" "$n" "$((SECONDS - t0))" "$found" | tee -a "$out/summary"
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    echo "-- $target: minimizing corpus/$target with the new entries"
    cp -n "$dir/corpus/"* "corpus/$target/" 2>/dev/null || true
    cargo "+$NIGHTLY" fuzz cmin -s none "$target" "corpus/$target" >"$dir/cmin.log" 2>&1
  fi
done
printf '%-20s %14d %8d %8d\n' total "$total" "$((SECONDS - started))" "${#crashes[@]}" | tee -a "$out/summary"
echo "summary in $out/summary"
if [ "${#crashes[@]}" -gt 0 ]; then
  printf 'crash input: %s\n' "${crashes[@]}"
  exit 1
fi
