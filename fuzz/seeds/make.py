#!/usr/bin/env python3
"""Writes the raw seed inputs of the fuzz targets that read JSON, and their dictionaries.

    python3 fuzz/seeds/make.py OUT_DIR

Seeds (before minimization, see fuzz/README.md), from tests/vectors,
examples/scenarios and fuzz/configs:

- OUT_DIR/config/: mode byte 0, then a config's JSON text (every config of a vector,
  valid or not, the demo's and the fixed ones);
- OUT_DIR/restore/: mode byte 0, then a snapshot's JSON text (every vector snapshot);
- OUT_DIR/differential/: mode byte 0, 8 control bytes, then a scenario
  {"config", "start", "inputs"} (every steps vector, and two slices of the demo).

Dictionaries (written to fuzz/dict/, committed): every object key and every short
string value of the documents each target reads, as JSON strings, plus the JSON
punctuation and literals.
"""
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"


def vectors():
    for path in sorted((ROOT / "tests" / "vectors").rglob("*.json")):
        yield json.loads(path.read_text())


def scenarios():
    for path in sorted((ROOT / "examples" / "scenarios").glob("*.json")):
        yield json.loads(path.read_text())


def fixed_configs():
    for path in sorted((FUZZ / "configs").glob("*.json")):
        yield json.loads(path.read_text())


def compact(doc):
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def write(directory, data):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def words(doc, out):
    """Every key and short string value in `doc`, as JSON string literals."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(json.dumps(k))
            words(v, out)
    elif isinstance(doc, list):
        for v in doc:
            words(v, out)
    elif isinstance(doc, str) and len(doc) <= 32 and doc.isprintable():
        out.add(json.dumps(doc))


def write_dict(name, docs, extra=()):
    found = set(extra)
    for doc in docs:
        words(doc, found)
    found |= {'{', '}', '[', ']', ':', ',', 'true', 'false', 'null', '-1', '0', '1e308',
              '9007199254740991', '9007199254740992', '18446744073709551615', '1.5'}
    lines = [f"# {name}: JSON keywords of what the target reads (made by fuzz/seeds/make.py)"]
    for w in sorted(found):
        escaped = "".join("\\" + c if c in '"\\' else c if 32 <= ord(c) < 127 else
                          "".join(f"\\x{b:02X}" for b in c.encode()) for c in w)
        lines.append(f'"{escaped}"')
    (FUZZ / "dict").mkdir(exist_ok=True)
    (FUZZ / "dict" / f"{name}.dict").write_text("\n".join(lines) + "\n")


def main():
    out = pathlib.Path(sys.argv[1])
    configs, snapshots, inputs = [], [], []
    for v in vectors():
        if "config" in v:
            configs.append(v["config"])
        if "snapshot" in v:
            snapshots.append(v["snapshot"])
            write(out / "restore", b"\0" + compact(v["snapshot"]))
        if "snapshot_text" in v:
            write(out / "restore", b"\0" + v["snapshot_text"].encode())
        if "config" in v and "steps" in v:
            steps = [s["input"] for s in v["steps"]]
            inputs += steps
            scenario = {"config": v["config"], "start": v.get("start", 0), "inputs": steps}
            write(out / "differential", b"\0" + b"\x55" * 8 + compact(scenario))
    for s in scenarios():
        configs.append(s["config"])
        inputs += s["inputs"][:50]
        # Two short slices: the start, and the middle (times go on from there).
        for k in (0, len(s["inputs"]) // 2):
            scenario = {"config": s["config"], "start": s.get("start", 0),
                        "inputs": s["inputs"][k:k + 40]}
            write(out / "differential", b"\0" + b"\x0f" * 8 + compact(scenario))
    configs += list(fixed_configs())
    for c in configs:
        write(out / "config", b"\0" + compact(c))
    write_dict("config", configs)
    write_dict("restore", snapshots + configs)
    write_dict("differential", configs + inputs, extra=['"config"', '"start"', '"inputs"'])


if __name__ == "__main__":
    main()
