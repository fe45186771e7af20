"""Hypothesis properties over generated streams."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import CONFIG
from rollguard import InputError, Policy
from rollguard.testing import Stream, bad_inputs, drill, regression, stable_traffic, streams

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHORT = dict(duration_ms=60_000, interval_ms=1_000)


def run(policy: Policy, inputs):
    out = []
    for inp in inputs:
        try:
            step = policy.handle(inp)
        except InputError as e:
            out.append(("error", e.code, e.path))
            continue
        out.append(step.to_json())
        for d in step.actions:
            out.append(policy.handle({"kind": "ack", "at": step.at, "action_id": d.action_id}).to_json())
    return out


@SETTINGS
@given(streams(**SHORT), st.integers(0, 10_000), st.sampled_from(["json", "dict", "pickle", "copy"]))
def test_snapshot_restore_and_continue_is_continue(stream: Stream, cut: int, how: str) -> None:
    samples = list(stream.samples)
    k = cut % (len(samples) + 1)
    a = Policy(CONFIG)
    whole = run(a, samples)
    b = Policy(CONFIG)
    head = run(b, samples[:k])
    if how == "json":
        b = Policy.restore_json(b.snapshot_json())
    elif how == "dict":
        b = Policy.restore(b.snapshot())
    elif how == "pickle":
        import pickle

        b = pickle.loads(pickle.dumps(b))
    else:
        b = copy.deepcopy(b)
    assert head + run(b, samples[k:]) == whole
    assert a.snapshot_json() == b.snapshot_json()


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["v2", "v3", "v4"]), st.integers(1_000, 30_000),
                          st.floats(50.0, 900.0)), min_size=1, max_size=12))
@example([("v2", 11_000, 900.0), ("v3", 30_000, 900.0), ("v4", 30_000, 900.0)])
def test_never_rolls_back_inside_the_cooldown(rollouts) -> None:
    """Start rollouts one after another, with good or bad candidates: every automated
    rollback comes at or after the end of the cooldown the previous one started."""
    cfg = dict(CONFIG)
    cfg.pop("candidate")
    p = Policy(cfg)
    t = 0
    cooldown_until = 0
    rollbacks = 0
    for version, length, latency in rollouts:
        inputs = [{"kind": "start_rollout", "at": t, "version": version}]
        for k in range(0, length, 1_000):
            inputs.append({"kind": "observe", "at": t + k, "arm": version, "metric": "latency_ms", "value": latency})
        inputs.append({"kind": "tick", "at": t + length})
        for inp in inputs:
            try:
                step = p.handle(inp)
            except InputError:
                continue
            pending = list(step.actions)
            while pending:
                d = pending.pop(0)
                pending += p.handle({"kind": "ack", "at": p.now, "action_id": d.action_id}).actions
            for d in step.decisions:
                if d.kind == "rollback" and d.fields.get("automated"):
                    assert d.at >= cooldown_until, (d.at, cooldown_until)
                    rollbacks += 1
            for e in step.events:
                if e.kind == "cooldown_started":
                    cooldown_until = e.fields["until"]
            status = p.status()
            if status.cooldown_until is not None:
                cooldown_until = max(cooldown_until, status.cooldown_until)
        t += length + 1
        if p.status().pending_action is not None or p.status().halted or p.status().breaker_open:
            break
    assert rollbacks <= len(rollouts)


@SETTINGS
@given(regression(onset_ms=st.integers(10_000, 40_000), factor=st.floats(3.0, 6.0), **SHORT))
def test_a_clear_regression_is_rolled_back_after_its_onset(stream: Stream) -> None:
    report = drill(CONFIG, stream)
    assert report.false_rollbacks == 0
    assert report.rolled_back and report.time_to_rollback_ms is not None
    assert report.time_to_rollback_ms <= 20_000


@SETTINGS
@given(stable_traffic(**SHORT))
def test_stable_traffic_is_never_rolled_back(stream: Stream) -> None:
    report = drill(CONFIG, stream)
    assert not report.rolled_back and report.false_rollbacks == 0


@SETTINGS
@given(bad_inputs(stable_traffic(**SHORT)))
def test_bad_inputs_are_refused_and_change_nothing(stream: Stream) -> None:
    report = drill(CONFIG, stream)
    assert sum(report.refused.values()) >= len(stream.bad)
    good = Stream(tuple(s for i, s in enumerate(stream.samples) if i not in stream.bad),
                  stream.candidate, stream.baseline, stream.metric)
    assert [d.to_json() for d in drill(CONFIG, good).decisions] == [d.to_json() for d in report.decisions]
