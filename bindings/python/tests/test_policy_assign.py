"""Policy.assign: the policy's assignment is the pure function (assign_reference.py, an
independent transcription of docs/assignment.md) with the rollout's salt and routed
weight; sessions are pinned; bad input raises InputError and changes nothing."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any, Dict

import pytest

import assign_reference as ref
import rollguard
from rollguard import InputError, Policy


def config(name: str = "checkout", w1: int = 5, w2: int = 25, pin_max_ms: int = 60_000) -> Dict[str, Any]:
    return {
        "format_version": 1,
        "name": name,
        "versions": [
            {"id": "v1", "digest": "sha256:v1", "validated": True},
            {"id": "v2", "digest": "sha256:v2"},
        ],
        "stable": "v1",
        "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10}],
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": w1, "duration_ms": 10000},
            {"kind": "set_weight", "weight": w2, "duration_ms": 10000},
        ]},
        "analysis": {"interval_ms": 10000},
        "assignment": {"pin_max_ms": pin_max_ms},
    }


def rolled_out(name: str, w1: int, w2: int) -> Policy:
    """At w2 since 11 s, after w1 from 1 s."""
    p = Policy(config(name, w1, w2), now=0)
    p.command("start_rollout", at=1000, version="v2")
    p.command("ack", at=1000, action_id=1)
    p.tick(11000)
    p.command("ack", at=11000, action_id=2)
    return p


def test_without_a_rollout_every_key_is_on_stable() -> None:
    p = Policy(config(), now=0)
    assert p.assign("user-1") == {
        "arm": "stable", "version": "v1", "reason": "no_rollout", "weight_bp": 0, "pinned": False,
    }


def test_the_policy_agrees_with_the_reference_and_is_monotone() -> None:
    rng = random.Random(7)
    for _ in range(20):
        w1 = rng.randint(1, 99)
        w2 = rng.randint(w1, 99)
        name = "".join(rng.choice("abcdef") for _ in range(rng.randint(0, 6)))
        p = rolled_out(name, w1, w2)
        salt = ref.salt_for(name, "v2", 1000)
        for i in range(200):
            key = f"user-{rng.randrange(10**9)}" if i % 2 else bytes(rng.randrange(256) for _ in range(i % 17))
            a = p.assign(key)
            assert a["salt"] == ref.hex16(salt)
            assert a["weight_bp"] == w2 * 100
            assert a["arm"] == ref.assign(salt, key, w2 * 100)
            assert a["version"] == ("v2" if a["arm"] == "candidate" else "v1")
            assert a["reason"] == a["arm"]
            # Pinned at w1 by a session from 5 s: never on the candidate unless it was at w1.
            s = p.assign(key, session_started_at=5000, now=20000)
            assert s["pinned"] is True and s["weight_bp"] == w1 * 100
            assert s["arm"] == ref.assign(salt, key, w1 * 100)
            if s["arm"] == "candidate":
                assert a["arm"] == "candidate"


def test_a_session_pin_ends_after_pin_max_ms() -> None:
    p = rolled_out("checkout", 5, 25)
    salt = ref.salt_for("checkout", "v2", 1000)
    key = next(k for k in (f"k{i}" for i in range(10**6)) if 500 <= ref.bucket(salt, k) < 2500)
    assert p.assign(key, session_started_at=5000, now=64_999)["arm"] == "stable"
    late = p.assign(key, session_started_at=5000, now=65_000)
    assert (late["arm"], late["pinned"], late["version"]) == ("candidate", False, "v2")
    # now defaults to the policy's time (11 s); datetimes are ms since the epoch.
    assert p.assign(key, session_started_at=5000)["pinned"] is True
    epoch = datetime.fromtimestamp(5, tz=timezone.utc)
    assert p.assign(key, session_started_at=epoch) == p.assign(key, session_started_at=5000)


def test_a_rollback_moves_everyone_and_a_snapshot_keeps_the_salt() -> None:
    p = rolled_out("checkout", 50, 90)
    restored = Policy.restore_json(p.snapshot_json())
    for i in range(50):
        assert restored.assign(f"u{i}") == p.assign(f"u{i}")
        assert restored.assign(f"u{i}", session_started_at=5000) == p.assign(f"u{i}", session_started_at=5000)
    p.command("abort", at=12000)
    for i in range(50):
        a = p.assign(f"u{i}", session_started_at=5000)
        assert (a["arm"], a["version"], a["reason"], a["pinned"]) == ("stable", "v1", "rolled_back", False)


@pytest.mark.parametrize(
    "kwargs, code, path",
    [
        ({"session_started_at": 3000, "now": 2000}, "invalid_value", "session_started_at"),
        ({"session_started_at": rollguard.TIME_MAX + 1}, "time_out_of_range", "session_started_at"),
        ({"session_started_at": 0, "now": 2**53}, "time_out_of_range", "now"),
        ({"session_started_at": -1}, "invalid_json", "session_started_at"),
        ({"session_started_at": 1.5}, "invalid_json", "session_started_at"),
    ],
)
def test_bad_sessions_raise_input_error_and_change_nothing(kwargs: Dict[str, Any], code: str, path: str) -> None:
    p = rolled_out("checkout", 5, 25)
    before = p.snapshot_json()
    with pytest.raises(InputError) as e:
        p.assign("k", **kwargs)
    assert (e.value.code, e.value.path) == (code, path)
    assert p.snapshot_json() == before


def test_keys_must_be_str_or_bytes() -> None:
    p = Policy(config(), now=0)
    with pytest.raises(TypeError):
        p.assign(42)  # type: ignore[arg-type]
    with pytest.raises(InputError) as e:
        p.assign("\ud800")
    assert (e.value.code, e.value.path) == ("invalid_json", "key")


def test_a_router_with_the_routing_table_answers_as_the_policy() -> None:
    """Random rollout histories (raises, acks, failures, aborts, reverts, promotions, new
    rollouts): at every point, the pure-Python router of assign_reference.py, holding only
    ``routing_table()``, answers every key and session as ``Policy.assign``."""
    rng = random.Random(11)
    modes = set()
    for _ in range(30):
        c = config("rt", 10, 20, rng.choice([0, 5000, 60_000]))
        c["strategy"]["steps"] = [
            {"kind": "set_weight", "weight": rng.randint(1, 100), "duration_ms": 10000}
            for _ in range(rng.randint(1, 3))
        ]
        c["strategy"]["post_promotion_bake_ms"] = 10000
        c["candidate"] = "v2"
        p = Policy(c, now=0)
        for _ in range(20):
            at, pending = p.now, p.status().pending_action or 0
            op = rng.choice(["tick", "tick", "ack", "ack", "fail", "abort", "resume", "revert_now",
                             "force_promote", "start_rollout"])
            try:
                if op == "tick":
                    p.tick(at + rng.randint(1, 15000))
                elif op == "ack":
                    p.command("ack", at=at, action_id=pending)
                elif op == "fail":
                    p.command("action_failed", at=at, action_id=pending, reason="x")
                elif op == "start_rollout":
                    p.command("start_rollout", at=at, version="v2")
                else:
                    p.command(op, at=at)
            except InputError:
                pass
            table = p.routing_table()
            modes.add(table["mode"])
            for _ in range(4):
                key = "".join(rng.choice("abcxyz-0123") for _ in range(rng.randint(0, 10)))
                assert ref.assign_from_table(table, key) == p.assign(key)
                started = rng.choice([0, p.now, rng.randint(0, p.now)] + [w["at"] for w in table["weights"]])
                now = started + rng.choice([0, 1, 4999, 5000, 60_000, rng.randint(0, 100_000)])
                got = p.assign(key, session_started_at=started, now=now)
                assert ref.assign_from_table(table, key, started, now) == got, (table, key, started, now)
    assert modes == {"no_rollout", "split", "rolled_back", "promoted"}


def test_the_routing_table_lists_the_split() -> None:
    p = rolled_out("checkout", 5, 25)
    assert p.routing_table() == {
        "mode": "split", "stable": "v1", "candidate": "v2", "salt": "dcb8ab529dda1232",
        "weight_bp": 2500, "weights": [{"at": 1000, "weight_bp": 500}, {"at": 11000, "weight_bp": 2500}],
        "pin_max_ms": 60_000,
    }
    assert Policy(config(), now=0).routing_table() == {
        "mode": "no_rollout", "stable": "v1", "weight_bp": 0, "weights": [], "pin_max_ms": 60_000,
    }
