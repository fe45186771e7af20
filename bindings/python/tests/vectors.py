"""The conformance-vector runner for Python: what tests/conformance/src/lib.rs does.

The rules are specified in tests/vectors/README.md; the Rust runner is the reference.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import assign_reference
import rollguard
from rollguard import Agents, Policy, RollguardError

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "vectors"
MIN_VECTORS = 40
TOP_KEYS = {
    "format_version", "name", "description", "config", "agents_config", "config_error", "snapshot",
    "snapshot_text", "restore_error", "start", "steps",
}
STEP_KEYS = {"input", "restore", "decisions", "events", "agents", "error", "assign", "routing_table"}
ASSIGN_KEYS = {"key", "session_started_at", "now", "expect", "error"}


def find_vectors() -> List[Tuple[str, Path]]:
    """Every ``*.json`` under tests/vectors, sorted by its ``/``-separated relative path."""
    found = [(p.relative_to(VECTORS).with_suffix("").as_posix(), p) for p in VECTORS.rglob("*.json")]
    found.sort(key=lambda x: x[0].encode())
    return found


def first_difference(expected: Any, actual: Any, path: str = "") -> Optional[str]:
    """JSON equality as the Rust runner's: numbers by value (two ints exactly, else as
    doubles), key order irrelevant, a missing key differs from ``null``."""
    here = path or "(root)"
    if isinstance(expected, bool) or isinstance(actual, bool):
        if type(expected) is type(actual) and expected == actual:
            return None
        return f"at {here}: expected {expected!r}, actual {actual!r}"
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, int) and isinstance(actual, int):
            same = expected == actual
        else:
            same = float(expected) == float(actual) or (math.isnan(float(expected)) and False)
        return None if same else f"at {here}: expected {expected!r}, actual {actual!r}"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(set(expected) | set(actual)):
            sub = f"{path}.{k}" if path else k
            if k not in actual:
                return f"at {sub}: expected {expected[k]!r}, actual has no such key"
            if k not in expected:
                return f"at {sub}: unexpected key, actual {actual[k]!r}"
            d = first_difference(expected[k], actual[k], sub)
            if d:
                return d
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual)):
            d = first_difference(e, a, f"{path}[{i}]")
            if d:
                return d
        if len(expected) != len(actual):
            return f"at {here}: expected {len(expected)} items, actual {len(actual)}"
        return None
    if type(expected) is type(actual) and expected == actual:
        return None
    return f"at {here}: expected {expected!r}, actual {actual!r}"


def input_time(inp: dict, now: int) -> int:
    at = inp.get("at")
    if isinstance(at, int) and not isinstance(at, bool) and at >= 0:
        return at
    samples = inp.get("samples")
    if isinstance(samples, list) and samples and isinstance(samples[-1], dict):
        at = samples[-1].get("at")
        if isinstance(at, int) and not isinstance(at, bool) and at >= 0:
            return at
    return now


def check_error(expected: dict, err: RollguardError, path_required: bool) -> None:
    assert not (path_required and "path" not in expected), f"the expected error {expected} has no path"
    assert err.code == expected["code"], f"expected error {expected}, got {err.code!r} at {err.path!r} ({err})"
    if "path" in expected:
        assert err.path == expected["path"], f"expected error {expected}, got {err.code!r} at {err.path!r} ({err})"


def check_shape(name: str, doc: dict) -> str:
    assert isinstance(doc, dict)
    assert set(doc) <= TOP_KEYS, f"unknown top-level keys {set(doc) - TOP_KEYS}"
    assert doc.get("format_version") == 1
    assert doc.get("name") == name, f"name must be {name!r}"
    assert isinstance(doc.get("description"), str) and doc["description"].strip()
    for step in doc.get("steps", []):
        assert set(step) <= STEP_KEYS, f"unknown step keys {set(step) - STEP_KEYS}"
        assert isinstance(step.get("input"), dict)
    if "agents_config" in doc:
        return "agents_config_error" if "config_error" in doc else "agents_steps"
    if "config_error" in doc:
        return "config_error"
    if "restore_error" in doc:
        return "restore_error"
    if "config" in doc:
        return "steps"
    return "restore"


def feed_json(policy: Policy, inp: dict) -> rollguard.Step:
    """The vector README's entry point: the input as JSON text to the core's parser."""
    return policy.handle_json(json.dumps(inp))


def feed_native(policy: Policy, inp: dict) -> rollguard.Step:
    """The same input as a native dict, through the binding's converter."""
    return policy.handle(inp)


def run_vector(name: str, doc: dict, feed: Callable[[Policy, dict], rollguard.Step] = feed_json) -> None:
    kind = check_shape(name, doc)
    if kind == "agents_config_error":
        try:
            Agents.from_json(json.dumps(doc["agents_config"]), now=doc.get("start", 0))
        except rollguard.ConfigError as e:
            check_error(doc["config_error"], e, True)
        else:
            raise AssertionError(f"expected config error {doc['config_error']}, but the config was accepted")
        return
    if kind == "agents_steps":
        run_agents_steps(doc, native=feed is feed_native)
        return
    if kind == "config_error":
        try:
            Policy.from_json(json.dumps(doc["config"]), now=doc.get("start", 0))
        except rollguard.ConfigError as e:
            check_error(doc["config_error"], e, True)
        else:
            raise AssertionError(f"expected config error {doc['config_error']}, but the config was accepted")
        return
    if kind == "restore_error":
        text = json.dumps(doc["snapshot"]) if "snapshot" in doc else doc["snapshot_text"]
        try:
            Policy.restore_json(text)
        except rollguard.SnapshotError as e:
            check_error(doc["restore_error"], e, False)
        else:
            raise AssertionError(f"expected restore error {doc['restore_error']}, but it was restored")
        return
    if kind == "steps":
        policy = Policy.from_json(json.dumps(doc["config"]), now=doc["start"])
    else:
        policy = Policy.restore_json(json.dumps(doc["snapshot"]))
    check_round_trip(policy)
    for i, step in enumerate(doc["steps"]):
        inp = step["input"]
        where = f"steps[{i}] (input {json.dumps(inp)})"
        at = input_time(inp, policy.now)
        before = policy.snapshot_json()
        try:
            actual = feed(policy, inp)
        except rollguard.InputError as e:
            assert policy.snapshot_json() == before, f"{where}: refused ({e}) but the policy changed"
            assert "error" in step, f"{where}: expected a step, but the input was refused: {e}"
            try:
                check_error(step["error"], e, True)
            except AssertionError as a:
                raise AssertionError(f"{where}: {a}") from None
        else:
            assert "error" not in step, f"{where}: expected the error {step['error']}, but accepted: {actual.to_json()}"
            expected = {"at": at, "decisions": step.get("decisions", []), "events": step.get("events", [])}
            got = json.loads(actual.to_json())
            diff = first_difference(expected, got)
            assert diff is None, f"{where}: {diff}\n--- expected\n{json.dumps(expected)}\n--- actual\n{json.dumps(got)}"
            # The typed objects agree with the JSON text.
            assert actual.to_dict() == got
            check_tick_idempotent(policy, at, where)
        check_round_trip(policy, where)
        if step.get("restore") is True:
            policy = Policy.restore_json(policy.snapshot_json())
        run_assign_checks(policy, step.get("assign", []), where)
        if "routing_table" in step:
            got = policy.routing_table()
            diff = first_difference(step["routing_table"], got)
            assert diff is None, f"{where}: routing_table: {diff}\n--- expected\n{json.dumps(step['routing_table'])}\n--- actual\n{json.dumps(got)}"


def run_assign_checks(policy: Policy, checks: list, where: str) -> None:
    """A step's ``assign`` checks, on the policy as it stands after the step (and its
    restore): ``Policy.assign(key)``, or with ``session_started_at`` (and ``now``, by
    default the policy's time) a pinned session."""
    assert isinstance(checks, list), f"{where}: assign must be a list"
    for j, c in enumerate(checks):
        here = f"{where}: assign[{j}] (key {c.get('key')!r})"
        assert isinstance(c, dict) and set(c) <= ASSIGN_KEYS, f"{here}: unknown keys {set(c) - ASSIGN_KEYS}"
        assert ("expect" in c) != ("error" in c), f"{here}: give exactly one of expect and error"
        assert "now" not in c or "session_started_at" in c, f"{here}: now only with session_started_at"
        kwargs = {}
        if "session_started_at" in c:
            kwargs["session_started_at"] = c["session_started_at"]
            if "now" in c:
                kwargs["now"] = c["now"]
        before = policy.snapshot_json()
        try:
            got = policy.assign(c["key"], **kwargs)
        except rollguard.InputError as e:
            assert "error" in c, f"{here}: expected {c['expect']}, but refused: {e}"
            try:
                check_error(c["error"], e, True)
            except AssertionError as a:
                raise AssertionError(f"{here}: {a}") from None
        else:
            assert "expect" in c, f"{here}: expected the error {c['error']}, but got {got}"
            diff = first_difference(c["expect"], got)
            assert diff is None, f"{here}: {diff}\n--- expected\n{json.dumps(c['expect'])}\n--- actual\n{json.dumps(got)}"
            # A router holding only the routing table answers the same (the pure-Python
            # transcription of docs/assignment.md).
            started = c.get("session_started_at")
            now = c.get("now", policy.now) if started is not None else None
            from_table = assign_reference.assign_from_table(policy.routing_table(), c["key"], started, now)
            assert from_table == got, f"{here}: from the routing table {from_table}, the policy {got}"
        assert policy.snapshot_json() == before, f"{here}: assign changed the policy"


def check_round_trip(policy: Policy, where: str = "before the first step") -> None:
    text = policy.snapshot_json()
    restored = Policy.restore_json(text)
    assert restored.snapshot_json() == text, f"{where}: the snapshot round trip changed the policy"
    assert restored == policy
    # The dict form (what `snapshot()` returns and pickle carries) round-trips too.
    assert Policy.restore(policy.snapshot()) == policy


def check_tick_idempotent(policy: Policy, at: int, where: str) -> None:
    twin = copy.copy(policy)
    step = twin.tick(max(at, policy.now))
    assert step.is_empty() and twin == policy, f"{where}: a repeated tick was not a no-op: {step.to_json()}"


def run_agents_steps(doc: dict, native: bool) -> None:
    """An agents steps vector: inputs to ``Agents`` (as JSON text, or as native dicts)."""
    if native:
        agents = Agents(doc["agents_config"], now=doc["start"])
    else:
        agents = Agents.from_json(json.dumps(doc["agents_config"]), now=doc["start"])
    for i, step in enumerate(doc["steps"]):
        inp = step["input"]
        where = f"steps[{i}] (input {json.dumps(inp)})"
        for k in ("decisions", "events", "assign", "routing_table"):
            assert k not in step, f"{where}: {k} does not belong in an agents step"
        at = input_time(inp, agents.now)
        before = agents.snapshot_json()
        try:
            actual = agents.handle(inp) if native else agents.handle_json(json.dumps(inp))
        except rollguard.InputError as e:
            assert agents.snapshot_json() == before, f"{where}: refused ({e}) but an agent changed"
            assert "error" in step, f"{where}: expected a step, but the input was refused: {e}"
            try:
                check_error(step["error"], e, True)
            except AssertionError as a:
                raise AssertionError(f"{where}: {a}") from None
        else:
            assert "error" not in step, f"{where}: expected the error {step['error']}, but accepted: {actual}"
            expected = {
                "at": at,
                "agents": [
                    {"agent": a["agent"],
                     "step": {"at": at, "decisions": a.get("decisions", []), "events": a.get("events", [])}}
                    for a in step.get("agents", [])
                ],
            }
            diff = first_difference(expected, actual)
            assert diff is None, f"{where}: {diff}\n--- expected\n{json.dumps(expected)}\n--- actual\n{json.dumps(actual)}"
            twin = copy.copy(agents)
            tick = twin.tick(max(at, agents.now))
            assert not tick["agents"] and twin == agents, f"{where}: a repeated tick was not a no-op: {tick}"
        text = agents.snapshot_json()
        assert Agents.restore_json(text).snapshot_json() == text, f"{where}: snapshot round trip"
        assert Agents.restore(agents.snapshot()) == agents, f"{where}: snapshot dict round trip"
        if step.get("restore") is True:
            agents = Agents.restore_json(agents.snapshot_json())
