"""Types, errors, pickle, copies, numpy batches and datetimes of the binding."""

from __future__ import annotations

import copy
import json
import math
import pickle
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import rollguard
from rollguard import ConfigError, InputError, Policy, RollguardError, SnapshotError, Step


def started(config: dict) -> Policy:
    p = Policy(config)
    step = p.tick(0)
    for d in step.actions:
        p.command("ack", at=0, action_id=d.action_id)
    return p


def test_import_and_exports() -> None:
    assert rollguard.FORMAT_VERSION == 1
    assert rollguard.TIME_MAX == 2**53 - 1
    assert Policy.__module__ == "rollguard"
    assert set(rollguard.__all__) <= set(dir(rollguard))


def test_results_are_frozen_typed_objects(config: dict) -> None:
    p = Policy(config)
    step = p.tick(0)
    assert isinstance(step, Step) and step.at == 0
    (d,) = step.decisions
    assert (d.kind, d.reason, d.action_id) == ("set_weight", "rollout_started", 1)
    assert d.fields == {"version": "v2", "weight": 10, "step": 0}
    assert d.to_dict()["kind"] == "set_weight"
    assert step.actions == [d]
    assert [e.kind for e in step.events] == ["rollout_started", "aliases_changed"]
    assert step.to_dict() == json.loads(step.to_json())
    assert "set_weight" in repr(step) and "rollout_started" in repr(d)
    with pytest.raises(AttributeError):
        step.at = 5  # type: ignore[misc]
    status = p.status()
    assert status.aliases["candidate"] == "v2" and status.pending_action == 1
    assert status.to_dict()["weight"] == status.weight


def test_handle_and_handle_json_agree(config: dict) -> None:
    a, b = Policy(config), Policy.from_json(json.dumps(config))
    assert a == b
    inp = {"kind": "tick", "at": 0}
    assert a.handle(inp) == b.handle_json(json.dumps(inp))
    assert a == b


def test_error_codes_and_paths(config: dict) -> None:
    config["gates"][0]["rule"]["max"] = "high"
    with pytest.raises(ConfigError) as e:
        Policy(config)
    assert e.value.code == "invalid_json" and e.value.path == "gates[0].rule.max"
    assert isinstance(e.value, ValueError) and isinstance(e.value, RollguardError)
    with pytest.raises(ConfigError) as e:
        Policy.from_json("{")
    assert e.value.code == "invalid_json"


def test_input_errors_leave_the_policy_unchanged(config: dict) -> None:
    p = started(config)
    before = p.snapshot_json()
    cases = [
        ({"at": 1000, "arm": "v9", "metric": "latency_ms", "value": 1.0}, "unknown_arm", "arm"),
        ({"at": 1000, "arm": "v2", "metric": "nope", "value": 1.0}, "unknown_metric", "metric"),
        ({"at": 1000, "arm": "v2", "metric": "latency_ms", "value": math.nan}, "non_finite_value", "value"),
        ({"at": 1000, "arm": "v2", "metric": "latency_ms", "value": math.inf}, "non_finite_value", "value"),
        ({"at": 1000, "arm": "v2", "metric": "errors", "events": -1, "total": 5}, "negative_count", "events"),
        ({"at": 2**53, "arm": "v2", "metric": "latency_ms", "value": 1.0}, "time_out_of_range", "at"),
        ({"at": 1000, "arm": "v2", "metric": "latency_ms", "value": "x"}, "invalid_json", "value"),
        ({"at": 1000, "arm": "v2", "metric": "latency_ms", "value": 1.0, "extra": 1}, "invalid_json", ""),
    ]
    for sample, code, path in cases:
        with pytest.raises(InputError) as e:
            p.observe(sample)
        assert (e.value.code, e.value.path) == (code, path) or (code == "invalid_json" and e.value.code == code), sample
        assert p.snapshot_json() == before
    with pytest.raises(InputError) as e:
        p.observe_value(1000, "v2", "latency_ms", math.nan)
    assert e.value.code == "non_finite_value"
    with pytest.raises(InputError) as e:
        p.tick(-1)
    assert e.value.path == "at"
    with pytest.raises(InputError) as e:
        p.command("ack", at=10, action_id=99)
    assert e.value.code == "unknown_action"
    with pytest.raises(InputError) as e:
        p.handle({1: 2})
    assert e.value.code == "invalid_json"
    assert p.snapshot_json() == before


def test_paths_name_odd_keys_and_text_refuses_repeated_keys(config: dict) -> None:
    p = Policy(config)
    before = p.snapshot_json()
    # A key that is not an identifier is written as a JSON string in brackets, by the
    # binding's own conversion (NaN) as by the core (an unknown field).
    with pytest.raises(InputError) as e:
        p.handle({"kind": "tick", "at": 5, "a.b": math.nan})
    assert (e.value.code, e.value.path) == ("non_finite_value", '["a.b"]')
    with pytest.raises(InputError) as e:
        p.handle({"kind": "tick", "at": 5, "a.b": 1})
    assert (e.value.code, e.value.path) == ("invalid_json", '["a.b"]')
    # A dict cannot repeat a key; text can, and is refused, not read as "last wins".
    with pytest.raises(InputError) as e:
        p.handle_json('{"kind": "tick", "at": 1000, "at": 500}')
    assert (e.value.code, e.value.path) == ("duplicate_key", "at")
    assert p.snapshot_json() == before


def test_exceptions_pickle_with_their_code(config: dict) -> None:
    p = Policy(config)
    with pytest.raises(InputError) as e:
        p.observe_value(0, "nope", "latency_ms", 1.0)
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is InputError and (again.code, again.path) == (e.value.code, e.value.path)


def test_snapshot_errors(config: dict) -> None:
    with pytest.raises(SnapshotError) as e:
        Policy.restore_json("not json")
    assert e.value.code == "snapshot_corrupt"
    snap = Policy(config).snapshot()
    snap["format_version"] = 99
    with pytest.raises(SnapshotError) as e:
        Policy.restore(snap)
    assert e.value.code == "unsupported_format_version"


def test_snapshots_have_their_own_format(config: dict) -> None:
    snap = Policy(config).snapshot()
    assert snap["format_version"] == rollguard.SNAPSHOT_FORMAT_VERSION == 2
    assert rollguard.FORMAT_VERSION == 1
    # Gate states and windows are keyed by name.
    assert sorted(snap["state"]["gates"]) == sorted(g["name"] for g in config["gates"])


def test_pickle_copy_and_restore(config: dict) -> None:
    p = started(config)
    p.observe_value(1000, "v2", "latency_ms", 123.456789012345678)
    for q in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p),
              Policy.restore(p.snapshot()), Policy.restore(p.snapshot_json())):
        assert q == p and q.snapshot_json() == p.snapshot_json()
        assert q.tick(50000) == copy.copy(p).tick(50000)
    q = copy.copy(p)
    q.tick(6000)
    assert q != p


def test_numpy_batches_match_single_samples(config: dict) -> None:
    a, b, c = started(config), started(config), started(config)
    at = np.arange(1000, 60000, 250, dtype=np.int64)
    values = np.linspace(100.0, 400.0, at.size)
    batch = a.observe_many("v2", "latency_ms", at, values)
    for t, v in zip(at.tolist(), values.tolist()):
        b.observe_value(t, "v2", "latency_ms", v)
    c.observe_many("v2", "latency_ms", at.tolist(), list(values))
    assert a == b == c
    assert batch.at == int(at[-1])
    # Counts, uint and list inputs.
    a.observe_many("v1", "errors", np.array([60000, 61000], dtype=np.uint64),
                   events=np.array([1, 2]), total=[100, 100])


def test_every_numpy_layout_reads_as_its_values(config: dict) -> None:
    # Contiguous arrays of the core's types are read in place; anything else (strided
    # views, other dtypes, byte orders, read-only, datetime units) is converted first.
    # Every layout must record exactly what the plain lists record.
    at = np.arange(1000, 41000, 500, dtype=np.int64)
    values = np.linspace(50.0, 350.0, at.size)
    want = started(config)
    want.observe_many("v2", "latency_ms", at[::2].tolist(), values[::2].tolist())
    readonly = values[::2].copy()
    readonly.flags.writeable = False
    layouts = [
        (at[::2], values[::2]),  # strided views
        (at[::2].copy(), readonly),
        (at[::2].astype(np.int32), values[::2].astype(">f8")),
        (at[::2].astype(np.uint64), values[::2].astype(np.float64, order="F")),
        (at[::2].astype("datetime64[ms]"), values[::2]),
        (unaligned(at[::2]), unaligned(values[::2])),  # an odd offset into a buffer
    ]
    for i, (a, v) in enumerate(layouts):
        p = started(config)
        p.observe_many("v2", "latency_ms", a, v)
        assert p == want, f"layout {i}"
    # Seconds are read as ms.
    p = started(config)
    p.observe_many("v2", "latency_ms", np.array([2, 3], dtype="datetime64[s]"), [1.0, 2.0])
    assert p.now == 3000


def unaligned(a: np.ndarray) -> np.ndarray:
    """The same values, at an address that is not a multiple of their size."""
    buf = bytearray(a.nbytes + 1)
    out = np.frombuffer(buf, dtype=a.dtype, offset=1, count=a.size)
    assert not out.flags.aligned
    out[...] = a  # frombuffer over a bytearray is writable
    return out


def test_python_code_run_by_a_conversion_cannot_pull_an_array_away(config: dict) -> None:
    # Converting the value sequence calls __float__, which here resizes the times array
    # in place (freeing its buffer). The times must be read only after that.
    at = np.arange(1000, 6000, 1000, dtype=np.int64)

    class Shrinks:
        def __float__(self) -> float:
            at.resize(0, refcheck=False)
            return 1.0

    p = started(config)
    before = p.snapshot_json()
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", at, [Shrinks(), 2.0, 3.0, 4.0, 5.0])
    assert (e.value.code, e.value.path) == ("invalid_value", "value")  # 0 times, 5 values
    assert p.snapshot_json() == before


def test_a_conversion_that_retypes_an_array_in_place_is_refused(config: dict) -> None:
    at = np.arange(1000, 6000, 1000, dtype=np.int64)

    class Retypes:
        def __float__(self) -> float:
            at.dtype = np.int32  # 5 int64 become 10 int32, in place
            return 1.0

    p = started(config)
    before = p.snapshot_json()
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", at, [Retypes(), 2.0, 3.0, 4.0, 5.0])
    assert (e.value.code, e.value.path) == ("invalid_json", "at")
    assert p.snapshot_json() == before


def test_observe_many_refuses_arrays_that_are_not_columns(config: dict) -> None:
    p = started(config)
    before = p.snapshot_json()
    grid = np.ones((2, 2))
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", [1000, 2000], grid)
    assert (e.value.code, e.value.path) == ("invalid_json", "value")
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", np.array([[1000, 2000]]), [1.0, 2.0])
    assert (e.value.code, e.value.path) == ("invalid_json", "at")
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", np.array([1000.5, 2000.0]), [1.0, 2.0])
    assert e.value.path == "at"
    assert p.snapshot_json() == before


def test_observe_many_is_atomic_and_names_the_row(config: dict) -> None:
    p = started(config)
    before = p.snapshot_json()
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", [1000, 2000, 3000, 4000], np.array([1.0, 2.0, 3.0, np.nan]))
    assert (e.value.code, e.value.path) == ("non_finite_value", "value[3]")
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", [1000, 500], [1.0, 2.0])
    assert (e.value.code, e.value.path) == ("time_went_backwards", "at[1]")
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "latency_ms", np.array([1000, -5]), [1.0, 2.0])
    assert e.value.path == "at[1]"
    with pytest.raises(InputError) as e:
        p.observe_many("v2", "errors", [1000], events=[3], total=[2])
    assert e.value.code == "events_exceed_total"
    with pytest.raises(InputError):
        p.observe_many("v2", "latency_ms", [1000, 2000], [1.0])
    with pytest.raises(TypeError):
        p.observe_many("v2", "latency_ms", [1000])
    assert p.snapshot_json() == before


def test_datetimes(config: dict) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ms0 = 1767225600000
    p = Policy(config, now=t0)
    assert p.now == ms0
    local = t0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert p.tick(local + timedelta(milliseconds=1)).at == ms0 + 1
    assert p.observe({"at": t0 + timedelta(seconds=1), "arm": "v1", "metric": "latency_ms", "value": 1.0}).at == ms0 + 1000
    with pytest.raises(InputError) as e:
        p.tick(datetime(2026, 1, 2))
    assert (e.value.code, e.value.path) == ("invalid_value", "at")
    p.observe_many("v1", "latency_ms", np.array(["2026-01-01T00:00:02", "2026-01-01T00:00:03"], dtype="datetime64[ms]"), [1.0, 2.0])
    assert p.now == ms0 + 3000
    p.observe_many("v1", "latency_ms", [t0 + timedelta(seconds=4)], [1.0])
    assert p.now == ms0 + 4000


def test_command_builds_the_canonical_input(config: dict) -> None:
    a, b = started(config), started(config)
    assert a.command("pause", at=1000) == b.handle({"kind": "pause", "at": 1000})
    assert a.status().paused == "operator"
    step = a.command("revert_now", at=2000, target="stable")
    assert step.decisions[0].kind == "rollback"


def test_replay_returns_the_trace(config: dict) -> None:
    scenario = {"format_version": 1, "config": config, "inputs": [
        {"kind": "tick", "at": 0}, {"kind": "ack", "at": 0, "action_id": 7}]}
    trace = rollguard.replay(scenario)
    assert [t.index for t in trace] == [0, 1]
    assert trace[0].step is not None and trace[0].error is None
    assert isinstance(trace[1].error, InputError) and trace[1].error.code == "unknown_action"
    assert trace[1].to_dict()["error"]["code"] == "unknown_action"
    assert rollguard.replay(json.dumps(scenario)) == trace
    with pytest.raises(ConfigError):
        rollguard.replay({"format_version": 2, "config": config, "inputs": []})


def test_no_panic_on_odd_objects(config: dict) -> None:
    p = Policy(config)
    for odd in [object(), {"kind": object()}, [1, 2], "text", 10**30, {"kind": "tick", "at": 10**30},
                {"kind": "tick", "at": 1.5}, {"kind": "tick", "at": True}]:
        with pytest.raises((InputError, TypeError)):
            p.handle(odd)


def _advance(p: Policy) -> str:
    return p.tick(50_000).to_json()


def test_a_policy_travels_to_worker_processes(config: dict) -> None:
    import multiprocessing

    p = started(config)
    p.observe_value(1000, "v2", "latency_ms", 500.0)
    expected = copy.copy(p).tick(50_000).to_json()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(_advance, [p, p]) == [expected, expected]


def test_status_counts_effects_held_and_compensations_waiting(config: dict) -> None:
    p = started(config)
    assert (p.status().effects_held, p.status().compensations_waiting) == (0, 0)
    assert "effects_held" not in p.status().to_dict()
    for i, version in enumerate(["v1", "v2", "v2"]):
        p.command("record_effect", at=1000, version=version, effect={"id": f"e{i}", "undo": {"n": i}})
    assert (p.status().effects_held, p.status().compensations_waiting) == (3, 0)
    (rollback,) = p.command("abort", at=2000).actions
    (compensate,) = p.command("ack", at=2000, action_id=rollback.action_id).actions
    assert compensate.kind == "compensate" and compensate.fields["effect_id"] == "e2"
    status = p.status()
    assert (status.effects_held, status.compensations_waiting) == (3, 2)
    assert status.to_dict()["compensations_waiting"] == 2
    (nxt,) = p.command("ack", at=2000, action_id=compensate.action_id).actions
    p.command("ack", at=2000, action_id=nxt.action_id)
    assert (p.status().effects_held, p.status().compensations_waiting) == (1, 0)
    assert "compensations_waiting" not in p.status().to_dict()


def test_status_shows_a_gradual_rollback() -> None:
    """The vector rollout/gradual_rollback_steps_then_full, stopped after its first step's
    acknowledgement: `status().gradual_rollback` shows the step, then None once rolled back."""
    from vectors import VECTORS

    vector = json.loads((VECTORS / "rollout/gradual_rollback_steps_then_full.json").read_text())
    p = Policy(vector["config"], now=vector["start"])
    steps = [s["input"] for s in vector["steps"]]
    for inp in steps[:5]:  # start, ack, samples, the tick that trips, the step's ack
        p.handle(inp)
    assert p.status().gradual_rollback == {
        "step": 1, "steps": 2, "from_weight": 50, "weight": 25, "bake_ends_at": 30_000,
    }
    assert p.status().to_dict()["gradual_rollback"]["weight"] == 25
    for inp in steps[5:]:
        p.handle(inp)
    assert p.status().gradual_rollback is None
    assert "gradual_rollback" not in p.status().to_dict()
