#!/usr/bin/env bash
# Builds the Python wheel (abi3, maturin), installs it in a venv, and runs pytest (every
# conformance vector plus the binding's own tests), mypy's stubtest, the example
# notebooks and the fleet bench's quick mode. Self-contained and idempotent: safe on a
# fresh machine and on re-runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${ROLLGUARD_PY_VENV:-$ROOT/target/venv-python}
WHEELS=$ROOT/target/wheels-python
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q -r bindings/python/requirements-dev.txt
# confseq (Howard et al.'s confidence sequences; the statistical gates are checked
# against it) ships only a source distribution: it builds with Boost and Ninja, and its
# pinned build requirement (pybind11 2.6) does not compile on Python 3.11, so its build
# dependencies are installed here and the build runs without isolation.
if ! python -c "import confseq.boundaries" 2>/dev/null; then
  if [ ! -f /usr/include/boost/version.hpp ] || ! command -v ninja >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y libboost-dev ninja-build
  fi
  python -m pip install -q pybind11==2.13.6 scikit-build==0.19.1 cmake==4.4.5 setuptools wheel
  python -m pip install -q --no-build-isolation confseq==0.0.11
fi

echo "== maturin build (release, abi3, manylinux2014: linked by zig against glibc 2.17)"
rm -rf "$WHEELS"
maturin build --release --zig --compatibility manylinux2014 -m bindings/python/Cargo.toml -o "$WHEELS"
python -m pip install -q --force-reinstall --no-deps "$WHEELS"/rollguard-*.whl

echo "== pytest"
# Run from outside the source tree so the installed wheel, not the sources, is tested.
(cd "$ROOT/target" && python -m pytest -q -p no:cacheprovider "$ROOT/bindings/python/tests")

echo "== stubtest"
(cd "$ROOT/target" && python -m mypy.stubtest rollguard --allowlist "$ROOT/bindings/python/stubtest-allowlist.txt")
# The installed package type-checks strictly against its own stubs.
(cd "$ROOT/target" && python -m mypy --strict --cache-dir "$ROOT/target/mypy-cache" -p rollguard)

echo "== notebooks"
python -m ipykernel install --sys-prefix --name rollguard-test >/dev/null
NB_OUT=$(mktemp -d)
# The notebooks find the bundled scenarios through ROLLGUARD_REPO (run by hand from
# examples/python, they find them relative to it).
ROLLGUARD_REPO=$ROOT python - "$NB_OUT" "$ROOT"/examples/python/property_test_policy.ipynb \
  "$ROOT"/examples/python/backtest_policy.ipynb <<'PY'
import os
import sys

import nbformat
from nbclient import NotebookClient

out, paths = sys.argv[1], sys.argv[2:]
for path in paths:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="rollguard-test", resources={"metadata": {"path": out}}).execute()
    name = os.path.basename(path)
    nbformat.write(nb, f"{out}/{name}")
    print(f"notebook {name} executed: {len(nb.cells)} cells, outputs in {out}")
PY

echo "== fleet bench (--quick: 4 jobs × 100 replications on Ray with 1 and 2 CPUs, ~20 s)"
# Exits non-zero if the two Ray configurations' reports differ.
(cd "$ROOT/target" && python "$ROOT/bindings/python/bench/fleet_scaling.py" --quick)
