#!/usr/bin/env bash
# Checks that every package is ready to publish, without publishing anything:
#
#   1. versions: Cargo's workspace version is every crate's, pyproject takes it from Cargo
#      and the top release of CHANGELOG.md says it (scripts/publish/check-versions.py);
#   2. crates: `cargo package` builds rollguard, rollguard-backtest and rollguard-cli from
#      their .crate files (each against the others' packaged sources), the .crate files
#      hold only sources, README and licenses, `cargo publish --dry-run` accepts them, and
#      `rollguard --help` names the binary `rollguard`;
#   3. Python: maturin builds the sdist and the abi3 wheel (manylinux2014, linked by zig
#      against glibc 2.17); the sdist installs with pip into a fresh venv (compiled from
#      source, reusing target/ for the dependencies) and the installed package makes a
#      decision and reports the version;
#   4. npm: `npm pack` of bindings/wasm/pkg holds only the package's files (types,
#      exports), installs offline into a fresh project, makes a decision through import
#      and require(), and TypeScript resolves its types;
#   5. the installed Python and npm packages' versions are Cargo's.
#
# Cheap after scripts/test-python.sh and scripts/test-wasm.sh (scripts/test.sh runs it
# after them): it reuses their venv's maturin, the built npm package, bindings/wasm's
# TypeScript and the target directory. Alone, it builds what is missing. Everything it
# writes goes to target/publish/ (sizes in target/publish/sizes.txt).
#
#   ./scripts/check-publish.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/publish
SMOKE=$ROOT/scripts/publish
PYTHON=${PYTHON:-python3}
PY_VENV=${ROLLGUARD_PY_VENV:-$ROOT/target/venv-python}
CRATES=(rollguard rollguard-backtest rollguard-cli)
export CARGO_TERM_COLOR=never
started=$SECONDS
section() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }
fail() { echo "check-publish: $*" >&2; exit 1; }
mkdir -p "$OUT"
: >"$OUT/sizes.txt"
size() { printf '%-40s %9s bytes\n' "$1" "$2" | tee -a "$OUT/sizes.txt"; }

section "versions: Cargo, pyproject, CHANGELOG"
"$PYTHON" scripts/publish/check-versions.py
VERSION=$(cargo metadata --format-version 1 --no-deps --locked |
  "$PYTHON" -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="rollguard"))')

section "crates: cargo package (builds each .crate), contents, cargo publish --dry-run"
# `cargo package` of several workspace crates verifies each against the others' packaged
# sources (a temporary local registry), as crates.io will see them. --allow-dirty: the
# check also runs on a working tree; a real `cargo publish` refuses one.
pkg_args=()
for c in "${CRATES[@]}"; do pkg_args+=(-p "$c"); done
cargo package --locked --allow-dirty "${pkg_args[@]}" 2>&1 | grep -E '^ *(Packag|Verif|Finished|warning|error)' | grep -v 'is not included in the published package' || true
test "${PIPESTATUS[0]}" -eq 0 || fail "cargo package failed"
for c in "${CRATES[@]}"; do
  crate=target/package/$c-$VERSION.crate
  test -s "$crate" || fail "$crate missing"
  list=$(tar tzf "$crate")
  for f in Cargo.toml README.md LICENSE-MIT LICENSE-APACHE src/; do
    grep -q "^$c-$VERSION/$f" <<<"$list" || fail "$crate has no $f"
  done
  # Only sources, README, licenses (and the CLI's bundled scenarios) ship.
  extra=$(grep -vE "^$c-$VERSION/(src/.*\.rs|scenarios/[a-z]+\.json|Cargo\.toml(\.orig)?|Cargo\.lock|README\.md|LICENSE-(MIT|APACHE)|\.cargo_vcs_info\.json)$" <<<"$list" || true)
  test -z "$extra" || fail "$crate ships files it does not need: $extra"
  size "$c-$VERSION.crate" "$(wc -c <"$crate")"
done
# The CLI's scenarios are symlinks into examples/: the crate must carry their contents.
for s in demo statistical tenants; do
  n=$(tar xzf "target/package/rollguard-cli-$VERSION.crate" -O "rollguard-cli-$VERSION/scenarios/$s.json" | wc -c)
  test "$n" -eq "$(wc -c <"examples/scenarios/$s.json")" || fail "rollguard-cli's scenarios/$s.json is not examples/scenarios/$s.json"
done
# Already verified above; the dry run adds the registry's checks (metadata, dependencies).
cargo publish --dry-run --no-verify --locked --allow-dirty "${pkg_args[@]}" 2>&1 | grep -E '^ *(Upload|Packag|warning|error)' | grep -v 'is not included in the published package' || true
test "${PIPESTATUS[0]}" -eq 0 || fail "cargo publish --dry-run failed"

section "CLI: --help and --version name the binary rollguard"
cli=(cargo run -q --release --locked -p rollguard-cli --)
help=$("${cli[@]}" --help)
grep -q '^Usage: rollguard <COMMAND>' <<<"$help" || fail "rollguard --help does not say 'Usage: rollguard <COMMAND>':
$help"
test "$("${cli[@]}" --version)" = "rollguard $VERSION" || fail "rollguard --version: $("${cli[@]}" --version)"
echo "rollguard --help: $(grep '^Usage' <<<"$help"); --version: rollguard $VERSION"

section "Python: maturin sdist and abi3 wheel"
if [ ! -x "$PY_VENV/bin/maturin" ]; then
  # Alone (without test-python.sh's venv): a venv with just the pinned maturin and zig.
  PY_VENV=$OUT/venv-tools
  [ -x "$PY_VENV/bin/python" ] || "$PYTHON" -m venv "$PY_VENV"
  "$PY_VENV/bin/python" -m pip install -q $(grep -E '^(maturin|ziglang)==' bindings/python/requirements-dev.txt)
fi
MATURIN=$PY_VENV/bin/maturin
# maturin --zig finds zig in the venv's ziglang package, through the venv's python.
export PATH=$PY_VENV/bin:$PATH
rm -rf "$OUT/python"
"$MATURIN" sdist -m bindings/python/Cargo.toml -o "$OUT/python" 2>&1 | grep -E 'Built|rror' || true
# manylinux2014 (glibc 2.17): maturin audits the library's symbols before it tags the
# wheel so, and refuses a newer one.
"$MATURIN" build --release --locked --zig --compatibility manylinux2014 -m bindings/python/Cargo.toml \
  -o "$OUT/python" 2>&1 | grep -E 'Built|rror' || true
sdist=$OUT/python/rollguard-$VERSION.tar.gz
wheel=$(ls "$OUT"/python/rollguard-"$VERSION"-cp39-abi3-manylinux2014_x86_64*.whl 2>/dev/null || true)
test -s "$sdist" || fail "no sdist rollguard-$VERSION.tar.gz"
test -n "$wheel" || fail "no manylinux2014 abi3 wheel rollguard-$VERSION-cp39-abi3-manylinux2014_x86_64*.whl in $OUT/python"
slist=$(tar tzf "$sdist")
for f in pyproject.toml PKG-INFO LICENSE-MIT LICENSE-APACHE python/rollguard/__init__.py python/rollguard/py.typed \
  bindings/python/src/lib.rs crates/rollguard/src/lib.rs crates/rollguard-backtest/src/lib.rs; do
  grep -qx "rollguard-$VERSION/$f" <<<"$slist" || fail "the sdist has no $f"
done
if grep -E '/(tests|bench|benches|fuzz|examples)/|requirements-dev' <<<"$slist"; then fail "the sdist ships tests or tooling (above)"; fi
"$PYTHON" - "$wheel" <<'PY' || fail "the wheel lacks a file (above)"
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["rollguard/__init__.py", "rollguard/py.typed", "rollguard/_rollguard.pyi", "rollguard/_rollguard.abi3.so"]
missing = [n for n in need if n not in names]
print("\n".join(f"missing from the wheel: {n}" for n in missing) or f"wheel: {len(names)} files")
sys.exit(1 if missing else 0)
PY
size "$(basename "$sdist")" "$(wc -c <"$sdist")"
size "$(basename "$wheel")" "$(wc -c <"$wheel")"

section "Python: pip install of the sdist in a fresh venv, import, a decision"
# pip builds the sdist with maturin (pinned to the dev requirements' version) in an
# isolated environment, with CARGO_TARGET_DIR=target/ so nothing compiles twice: the
# sdist keeps the workspace's relative layout and profile, so cargo finds the units the
# wheel build above made from the same sources (the sdist's files carry a fixed old
# mtime, so cargo does not rebuild them; a file missing from the sdist still fails the
# build, since the fingerprints list every source file). The wheel build just before
# makes sure target/ holds this tree's build.
rm -rf "$OUT/venv-sdist"
"$PYTHON" -m venv "$OUT/venv-sdist"
grep '^maturin==' bindings/python/requirements-dev.txt >"$OUT/constraints.txt"
PIP_CONSTRAINT=$OUT/constraints.txt CARGO_TARGET_DIR=$ROOT/target \
  "$OUT/venv-sdist/bin/python" -m pip install -q --no-cache-dir "$sdist"
py_version=$(cd "$OUT" && "$OUT/venv-sdist/bin/python" "$SMOKE/smoke.py")

section "npm: npm pack, contents, install into a fresh project, import, require, tsc"
if [ ! -f bindings/wasm/pkg/package.json ]; then node bindings/wasm/build.mjs; fi
if [ ! -x bindings/wasm/node_modules/.bin/tsc ]; then (cd bindings/wasm && npm ci --no-audit --no-fund); fi
rm -rf "$OUT/npm" && mkdir -p "$OUT/npm"
(cd bindings/wasm/pkg && npm pack --json --pack-destination "$OUT/npm" >"$OUT/npm/pack.json" 2>/dev/null)
tgz=$OUT/npm/rollguard-$VERSION.tgz
test -s "$tgz" || fail "npm pack wrote no rollguard-$VERSION.tgz"
node - "$OUT/npm/pack.json" "$ROOT/bindings/wasm/pkg/package.json" <<'JS' | tee -a "$OUT/sizes.txt"
const { readFileSync } = require("node:fs");
const [pack] = JSON.parse(readFileSync(process.argv[2], "utf8"));
const manifest = JSON.parse(readFileSync(process.argv[3], "utf8"));
const files = pack.files.map((f) => f.path);
const allowed = /^(package\.json|README\.md|LICENSE-(MIT|APACHE)|node\.js|browser\.js|index\.d\.ts|rollguard_wasm\.js|rollguard_wasm\.d\.ts|rollguard_wasm_bg\.wasm|rollguard_wasm_bg\.wasm\.d\.ts|snippets\/.+\.js)$/;
const problems = files.filter((f) => !allowed.test(f)).map((f) => `ships ${f}`);
for (const f of ["index.d.ts", "rollguard_wasm.d.ts", "node.js", "browser.js", "rollguard_wasm_bg.wasm", "LICENSE-MIT"]) {
  if (!files.includes(f)) problems.push(`lacks ${f}`);
}
const dot = manifest.exports?.["."] ?? {};
if (Object.keys(dot)[0] !== "types" || dot.types !== "./index.d.ts") problems.push('exports["."] must list types first');
if (dot.node !== "./node.js" || dot.browser !== "./browser.js" || dot.default !== "./browser.js") {
  problems.push(`exports["."] must map node, browser and default: ${JSON.stringify(dot)}`);
}
if (manifest.types !== "./index.d.ts" || manifest.type !== "module") problems.push("types / type");
if (problems.length) {
  console.error(`npm package: ${problems.join("; ")}`);
  process.exit(1);
}
const wasm = pack.files.find((f) => f.path === "rollguard_wasm_bg.wasm").size;
const row = (name, bytes) => console.log(`${name.padEnd(40)} ${String(bytes).padStart(9)} bytes`);
row(`${pack.filename} (packed)`, pack.size);
row(`${pack.filename} (unpacked, ${pack.entryCount} files)`, pack.unpackedSize);
row("rollguard_wasm_bg.wasm", wasm);
JS
test "${PIPESTATUS[0]}" -eq 0 || fail "npm pack contents (above)"
project=$OUT/npm-project
rm -rf "$project" && mkdir -p "$project"
cp "$SMOKE/smoke.mjs" "$SMOKE/smoke.cjs" "$SMOKE/smoke.ts" "$SMOKE/policy.json" "$project/"
echo '{"name": "rollguard-publish-check", "private": true, "type": "module"}' >"$project/package.json"
(cd "$project" && npm install --offline --no-audit --no-fund "$tgz" >/dev/null)
test -f "$project/node_modules/rollguard/package.json" -a ! -L "$project/node_modules/rollguard" ||
  fail "npm install of the tarball did not install a copy"
(cd "$project" && node smoke.mjs && node smoke.cjs)
tsc=$ROOT/bindings/wasm/node_modules/.bin/tsc
# The default libs (no skipLibCheck): the package brings what its types need.
for resolution in nodenext bundler; do
  module=$([ $resolution = bundler ] && echo esnext || echo nodenext)
  cat >"$project/tsconfig.$resolution.json" <<EOF
{"compilerOptions": {"strict": true, "noEmit": true, "target": "es2022", "module": "$module",
 "moduleResolution": "$resolution", "skipLibCheck": false, "types": []}, "files": ["smoke.ts"]}
EOF
  (cd "$project" && "$tsc" -p "tsconfig.$resolution.json") || fail "tsc ($resolution) in the fresh project"
  echo "tsc --moduleResolution $resolution: types resolved, no errors"
done

section "versions: the installed Python and npm packages"
"$PYTHON" scripts/publish/check-versions.py --python "$py_version" --npm "$project/node_modules/rollguard/package.json"

section "ready to publish ($((SECONDS - started))s); sizes"
cat "$OUT/sizes.txt"
