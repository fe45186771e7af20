"""rollguard.Agents beyond the vectors: per-agent versions through the Python API."""

from __future__ import annotations

import copy
import pickle
from typing import Any, Dict

import pytest

import rollguard
from rollguard import Agents


def gate(max_ms: float) -> Dict[str, Any]:
    return {"name": "p95", "metric": "latency_ms", "stat": "p95",
            "rule": {"kind": "threshold", "max": max_ms}, "samples_min": 3,
            "persistence": {"consecutive": 1}}


CONFIG: Dict[str, Any] = {
    "format_version": 1,
    "name": "ops",
    "policy": {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "sha256:01", "validated": True},
                     {"id": "v2", "digest": "sha256:02", "validated": True}],
        "stable": "v2",
        "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
        "gates": [gate(300)],
        "strategy": {"kind": "canary",
                     "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 60000}]},
        "analysis": {"interval_ms": 30000},
        "safety": {"cooldown_ms": 60000, "ack_timeout_ms": 60000},
    },
    "agents": {
        "negotiator": {"gates": [gate(200)], "safety": {"rollback_to": "golden"}},
        "notifier": {},
    },
}


def ack_all(agents: Agents, step: Dict[str, Any]) -> None:
    for entry in step["agents"]:
        for d in entry["step"]["decisions"]:
            if d.get("action_id") is not None:
                agents.command("ack", at=step["at"], action_id=d["action_id"], agent=entry["agent"])


def test_one_agent_falls_back_to_its_golden_while_the_other_promotes() -> None:
    agents = Agents(CONFIG)
    assert agents.agents == ["negotiator", "notifier"]
    agents.command("mark_validated", at=0, version="v1", agent="negotiator")
    agents.command("register_version", at=0, version={"id": "v3", "digest": "sha256:03"})
    ack_all(agents, agents.command("start_rollout", at=0, version="v3"))
    samples = [
        {"at": 10_000, "arm": arm, "metric": "latency_ms", "value": 250 if arm == "v3" else 100,
         "agent": agent}
        for agent in ("negotiator", "notifier") for arm in ("v3", "v2") for _ in range(3)
    ]
    agents.observe_batch(samples)
    step = agents.tick(40_000)
    [rollback] = [d for d in step["agents"][0]["step"]["decisions"] if d["kind"] == "rollback"]
    assert step["agents"][0]["agent"] == "negotiator"
    assert (rollback["to"], rollback["target"]) == ("v1", "golden")
    ack_all(agents, step)
    ack_all(agents, agents.tick(61_000))
    status = agents.status()
    assert status["negotiator"]["aliases"]["stable"] == "v1"
    assert status["notifier"]["aliases"]["stable"] == "v3"
    assert agents.routing_table("notifier")["stable"] == "v3"
    assert agents.assign("negotiator", "user-1")["version"] == "v1"


def test_errors_are_typed_and_change_nothing() -> None:
    agents = Agents(CONFIG)
    before = agents.snapshot_json()
    with pytest.raises(rollguard.InputError) as e:
        agents.observe({"at": 5, "arm": "v2", "metric": "latency_ms", "value": 1.0})
    assert (e.value.code, e.value.path) == ("unknown_agent", "agent")
    with pytest.raises(rollguard.InputError) as e:
        agents.command("ack", at=5, action_id=1)
    assert e.value.code == "unknown_agent"
    with pytest.raises(rollguard.InputError) as e:
        agents.routing_table("planner")
    assert e.value.code == "unknown_agent"
    agents.command("register_version", at=0, version={"id": "v3", "digest": "sha256:03"},
                   agent="negotiator")
    before = agents.snapshot_json()
    with pytest.raises(rollguard.InputError) as e:
        agents.command("start_rollout", at=1, version="v3")
    assert (e.value.code, e.value.path) == ("unknown_version", "version")
    assert agents.snapshot_json() == before
    with pytest.raises(rollguard.ConfigError) as c:
        Agents({**CONFIG, "agents": {"x": {"stable": "v9"}}})
    assert (c.value.code, c.value.path) == ("unknown_reference", "agents.x.stable")


def test_snapshot_copy_and_pickle_round_trip() -> None:
    agents = Agents.from_json(__import__("json").dumps(CONFIG), now=0)
    agents.command("start_rollout", at=0, version="v1", agent="notifier")
    assert Agents.restore(agents.snapshot()) == agents
    assert Agents.restore(agents.snapshot_json()) == agents
    assert pickle.loads(pickle.dumps(agents)) == agents
    twin = copy.deepcopy(agents)
    assert twin == agents and twin is not agents
    assert agents.snapshot()["format_version"] == rollguard.AGENTS_SNAPSHOT_FORMAT_VERSION
    assert agents.next_deadline() == twin.next_deadline()
    assert agents.config["name"] == "ops"
    assert "notifier" in repr(agents)


def _rolling_out() -> Agents:
    agents = Agents(CONFIG)
    agents.command("register_version", at=0, version={"id": "v3", "digest": "sha256:03"})
    ack_all(agents, agents.command("start_rollout", at=0, version="v3"))
    return agents


def _per_agent(steps: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for step in steps:
        for entry in step["agents"]:
            d, e = out.setdefault(entry["agent"], ([], []))
            d.extend(entry["step"]["decisions"])
            e.extend(entry["step"]["events"])
    return out


def test_observe_many_for_one_agent_is_its_rows_one_by_one() -> None:
    np = pytest.importorskip("numpy")
    column, rows = _rolling_out(), _rolling_out()
    # The negotiator's candidate slows down after 40 s; the notifier's analyses fall
    # due inside the column.
    at = np.arange(1, 201, dtype=np.int64) * 500
    value = np.where(at < 40_000, 120.0, 260.0)
    tenant = ["acme" if i % 3 else "globex" for i in range(len(at))]
    one_by_one = [
        rows.observe({"at": int(t), "arm": "v3", "metric": "latency_ms", "value": float(x),
                      "agent": "negotiator", "tenant": tn})
        for t, x, tn in zip(at, value, tenant)
    ]
    step = column.observe_many("negotiator", "v3", "latency_ms", at, value, tenant=tenant)
    assert step["at"] == 100_000
    assert _per_agent([step]) == _per_agent(one_by_one)
    kinds = [d["kind"] for d in _per_agent([step])["negotiator"][0]]
    assert "rollback" in kinds
    # The notifier's timers fired at the rows' times, inside the column.
    assert any(0 < e["at"] < 100_000 and e["kind"] == "analysis"
               for e in _per_agent([step])["notifier"][1])
    assert column == rows
    assert column.snapshot() == rows.snapshot()


def test_observe_many_counts_and_refusals_change_nothing() -> None:
    agents = _rolling_out()
    before = agents.snapshot()
    with pytest.raises(rollguard.InputError) as e:
        agents.observe_many("planner", "v3", "latency_ms", [1000], [1.0])
    assert (e.value.code, e.value.path) == ("unknown_agent", "agent")
    with pytest.raises(rollguard.InputError) as e:
        agents.observe_many("notifier", "v3", "latency_ms", [1000, 2000, 3000], [1.0, float("nan"), 2.0])
    assert (e.value.code, e.value.path) == ("non_finite_value", "value[1]")
    with pytest.raises(rollguard.InputError) as e:
        # latency_ms is a value metric: counts are refused, naming the first row.
        agents.observe_many("notifier", "v3", "latency_ms", [1000], events=[1], total=[2])
    assert (e.value.code, e.value.path) == ("metric_kind_mismatch", "value[0]")
    with pytest.raises(TypeError):
        agents.observe_many("notifier", "v3", "latency_ms", [1000])
    assert agents.snapshot() == before
