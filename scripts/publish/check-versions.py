#!/usr/bin/env python3
"""One version everywhere: the workspace's (root Cargo.toml, [workspace.package]) must be
every crate's, the Python package's (pyproject takes it from Cargo: `dynamic`), the npm
package's and the top release of CHANGELOG.md. Exit 1, naming each disagreement, if not.

  scripts/publish/check-versions.py                       # Cargo, pyproject, CHANGELOG
      [--npm bindings/wasm/pkg/package.json]             # a built or installed npm package
      [--python 0.1.0]                                   # an installed rollguard.__version__
"""

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--npm", action="append", default=[], help="an npm package.json")
    parser.add_argument("--python", action="append", default=[], help="an installed rollguard.__version__")
    args = parser.parse_args()

    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    found: list[tuple[str, str]] = []
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    for package in meta["packages"]:
        found.append((f"crate {package['name']}", package["version"]))

    problems: list[str] = []
    project = tomllib.loads((ROOT / "bindings/python/pyproject.toml").read_text())["project"]
    if "version" in project or "version" not in project.get("dynamic", []):
        problems.append(
            "bindings/python/pyproject.toml: the version must be dynamic (maturin takes Cargo's), "
            f"not a static {project.get('version')!r}"
        )

    path = ROOT / "CHANGELOG.md"
    changelog = path.read_text() if path.exists() else ""
    releases = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    released = [r for r in releases if r.lower() != "unreleased"]
    if not released:
        problems.append("CHANGELOG.md: no release heading (`## [X.Y.Z] - YYYY-MM-DD`)")
    else:
        found.append(("CHANGELOG.md top release", released[0]))

    for path in args.npm:
        found.append((f"npm {path}", json.loads(Path(path).read_text())["version"]))
    for version in args.python:
        found.append(("Python rollguard.__version__", version))

    for what, version in found:
        if version != workspace:
            problems.append(f"{what}: {version}, the workspace's is {workspace}")
    for problem in problems:
        print(f"version mismatch: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"one version, {workspace}: " + ", ".join(what for what, _ in found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
