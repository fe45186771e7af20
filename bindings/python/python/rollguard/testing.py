"""Test tooling for notebooks and property tests: metric streams and drills.

Nothing here takes a decision for the policy: the streams are generated inputs, and
``drill`` feeds them to a real :class:`rollguard.Policy`, acknowledges its actions the
way a caller that executes instantly would, and measures what the core decided.

Requires ``hypothesis`` (``pip install rollguard[testing]``).

Example::

    from hypothesis import given
    from rollguard.testing import drill, regression

    @given(regression(onset_ms=60_000, factor=3.0))
    def test_rolls_back_within_a_minute(stream):
        report = drill(CONFIG, stream)
        assert report.rolled_back and report.time_to_rollback_ms <= 60_000
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from hypothesis import strategies as st

from rollguard._rollguard import Decision, InputError, Policy, Step
from rollguard.types import PolicyConfigDict

__all__ = [
    "Stream",
    "DrillReport",
    "stable_traffic",
    "regression",
    "noise",
    "bursts",
    "bad_inputs",
    "streams",
    "drill",
]

Sample = Dict[str, Any]


@dataclass(frozen=True)
class Stream:
    """A metric stream: canonical ``observe`` input dicts in time order, and the truth.

    ``onset_ms`` is when the candidate starts to regress (None: it never does);
    ``bad`` holds the indices of samples that are malformed on purpose.
    """

    samples: Tuple[Sample, ...]
    candidate: str
    baseline: str
    metric: str
    onset_ms: Optional[int] = None
    bad: Tuple[int, ...] = ()

    def column(self, arm: str) -> Tuple[List[int], List[float]]:
        """The (times, values) of one arm's well-formed value samples, for plotting."""
        at, values = [], []
        for i, s in enumerate(self.samples):
            if s.get("arm") == arm and i not in self.bad and "value" in s:
                at.append(s["at"])
                values.append(s["value"])
        return at, values


def _sample(at: int, arm: str, metric: str, value: float) -> Sample:
    return {"kind": "observe", "at": at, "arm": arm, "metric": metric, "value": value}


@st.composite
def stable_traffic(
    draw: Any,
    *,
    candidate: str = "v2",
    baseline: str = "v1",
    metric: str = "latency_ms",
    mean: float = 120.0,
    jitter: float = 0.1,
    start_ms: int = 0,
    duration_ms: int = 300_000,
    interval_ms: int = 1_000,
) -> Stream:
    """Both arms at ``mean`` with relative jitter ``jitter``, one sample per arm every
    ``interval_ms`` from ``start_ms`` for ``duration_ms``."""
    stream: Stream = draw(
        _shaped(
            candidate=candidate,
            baseline=baseline,
            metric=metric,
            mean=mean,
            jitter=jitter,
            start_ms=start_ms,
            duration_ms=duration_ms,
            interval_ms=interval_ms,
        )
    )
    return stream


@st.composite
def _shaped(
    draw: Any,
    *,
    candidate: str,
    baseline: str,
    metric: str,
    mean: float,
    jitter: float,
    start_ms: int,
    duration_ms: int,
    interval_ms: int,
    onset_ms: Optional[int] = None,
    factor: float = 1.0,
    burst_every_ms: Optional[int] = None,
    burst_len_ms: int = 0,
    burst_factor: float = 1.0,
) -> Stream:
    n = max(1, duration_ms // interval_ms)
    unit = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
    out: List[Sample] = []
    for k in range(n):
        at = start_ms + k * interval_ms
        for arm in (baseline, candidate):
            v = mean * (1.0 + jitter * draw(unit))
            if arm == candidate and onset_ms is not None and at >= onset_ms:
                v *= factor
            if burst_every_ms and (at - start_ms) % burst_every_ms < burst_len_ms:
                v *= burst_factor
            out.append(_sample(at, arm, metric, round(v, 3)))
    return Stream(tuple(out), candidate, baseline, metric, onset_ms)


def regression(
    *,
    onset_ms: Union[int, st.SearchStrategy[int]] = 60_000,
    factor: Union[float, st.SearchStrategy[float]] = 3.0,
    candidate: str = "v2",
    baseline: str = "v1",
    metric: str = "latency_ms",
    mean: float = 120.0,
    jitter: float = 0.1,
    start_ms: int = 0,
    duration_ms: int = 300_000,
    interval_ms: int = 1_000,
) -> st.SearchStrategy[Stream]:
    """Stable traffic whose candidate is ``factor`` times worse from ``onset_ms`` on.
    ``onset_ms`` and ``factor`` may be strategies themselves."""
    onset = onset_ms if isinstance(onset_ms, st.SearchStrategy) else st.just(onset_ms)
    fac = factor if isinstance(factor, st.SearchStrategy) else st.just(factor)
    return st.tuples(onset, fac).flatmap(
        lambda of: _shaped(
            candidate=candidate,
            baseline=baseline,
            metric=metric,
            mean=mean,
            jitter=jitter,
            start_ms=start_ms,
            duration_ms=duration_ms,
            interval_ms=interval_ms,
            onset_ms=of[0],
            factor=of[1],
        )
    )


def noise(
    *,
    jitter: Union[float, st.SearchStrategy[float]] = st.floats(0.05, 0.5),
    **kwargs: Any,
) -> st.SearchStrategy[Stream]:
    """Stable traffic with heavy relative noise (no regression)."""
    j = jitter if isinstance(jitter, st.SearchStrategy) else st.just(jitter)
    return j.flatmap(lambda x: stable_traffic(jitter=x, **kwargs))


def bursts(
    *,
    every_ms: int = 60_000,
    length_ms: int = 2_000,
    factor: float = 4.0,
    candidate: str = "v2",
    baseline: str = "v1",
    metric: str = "latency_ms",
    mean: float = 120.0,
    jitter: float = 0.1,
    start_ms: int = 0,
    duration_ms: int = 300_000,
    interval_ms: int = 1_000,
) -> st.SearchStrategy[Stream]:
    """Short spikes on both arms (a shared dependency hiccup): not a regression."""
    return _shaped(
        candidate=candidate,
        baseline=baseline,
        metric=metric,
        mean=mean,
        jitter=jitter,
        start_ms=start_ms,
        duration_ms=duration_ms,
        interval_ms=interval_ms,
        burst_every_ms=every_ms,
        burst_len_ms=length_ms,
        burst_factor=factor,
    )


_BAD = ("nan", "inf", "unknown_arm", "unknown_metric", "negative_time", "huge")


@st.composite
def bad_inputs(draw: Any, base: Optional[st.SearchStrategy[Stream]] = None, max_bad: int = 5) -> Stream:
    """A stream (stable traffic by default) with up to ``max_bad`` malformed samples
    mixed in: NaN or infinite values, unknown arms or metrics, negative times, values
    beyond the core's range. Each must be refused without changing the policy."""
    stream = draw(base if base is not None else stable_traffic())
    samples = list(stream.samples)
    bad: List[int] = []
    for _ in range(draw(st.integers(1, max_bad))):
        i = draw(st.integers(0, len(samples)))
        kind = draw(st.sampled_from(_BAD))
        at = samples[min(i, len(samples) - 1)]["at"] if samples else 0
        s = _sample(at, stream.candidate, stream.metric, 1.0)
        if kind == "nan":
            s["value"] = math.nan
        elif kind == "inf":
            s["value"] = math.inf
        elif kind == "unknown_arm":
            s["arm"] = "no-such-version"
        elif kind == "unknown_metric":
            s["metric"] = "no_such_metric"
        elif kind == "negative_time":
            s["at"] = -1
        else:
            s["value"] = 1e300
        samples.insert(i, s)
        bad = [b + 1 if b >= i else b for b in bad] + [i]
    return Stream(tuple(samples), stream.candidate, stream.baseline, stream.metric, stream.onset_ms, tuple(sorted(bad)))


def streams(**kwargs: Any) -> st.SearchStrategy[Stream]:
    """Any of the above: stable traffic, regressions, noise, bursts, with or without
    bad inputs."""
    base = st.one_of(
        stable_traffic(**kwargs),
        regression(onset_ms=st.integers(10_000, 200_000), factor=st.floats(1.5, 10.0), **kwargs),
        noise(**kwargs),
        bursts(**kwargs),
    )
    return st.one_of(base, bad_inputs(base))


@dataclass(frozen=True)
class DrillReport:
    """What a policy did over a stream."""

    rolled_back: bool
    #: Time of the first rollback decision, if any.
    rollback_at: Optional[int]
    #: From the regression's onset to the rollback (None without either).
    time_to_rollback_ms: Optional[int]
    #: Rollbacks decided before the onset, or at all when there is no regression.
    false_rollbacks: int
    #: Candidate samples (requests) at or after the onset, before the rollback.
    bad_requests_served: int
    #: Inputs the policy refused, by error code.
    refused: Dict[str, int]
    #: Every decision, in order.
    decisions: Tuple[Decision, ...]
    #: Every input with its step or refusal.
    trace: Tuple[Tuple[Dict[str, Any], Union[Step, InputError]], ...] = field(repr=False)


def drill(
    config: Union[PolicyConfigDict, Policy],
    stream: Stream,
    *,
    onset_ms: Optional[int] = None,
    start: int = 0,
    setup: Sequence[Dict[str, Any]] = (),
) -> DrillReport:
    """Runs a policy over a stream and measures it.

    The policy is created from ``config`` at ``start`` (or a ``Policy`` is copied), the
    ``setup`` inputs (a ``start_rollout``, say) are applied, then every sample; every
    action is acknowledged at once, as by a caller that executes instantly. ``onset_ms``
    defaults to the stream's.
    """
    policy = config.__copy__() if isinstance(config, Policy) else Policy(config, now=start)
    onset = stream.onset_ms if onset_ms is None else onset_ms
    trace: List[Tuple[Dict[str, Any], Union[Step, InputError]]] = []
    decisions: List[Decision] = []
    refused: Dict[str, int] = {}
    rollbacks: List[int] = []

    def feed(inp: Dict[str, Any]) -> None:
        try:
            step = policy.handle(inp)
        except InputError as e:
            refused[e.code] = refused.get(e.code, 0) + 1
            trace.append((inp, e))
            return
        trace.append((inp, step))
        for d in step.decisions:
            decisions.append(d)
            if d.kind == "rollback":
                rollbacks.append(d.at)
        for d in step.actions:
            feed({"kind": "ack", "at": max(step.at, policy.now), "action_id": d.action_id})

    for inp in setup:
        feed(dict(inp))
    for s in stream.samples:
        feed(s)
    last = max([policy.now] + [s["at"] for s in stream.samples if isinstance(s.get("at"), int) and s["at"] >= 0])
    feed({"kind": "tick", "at": last})

    first = rollbacks[0] if rollbacks else None
    false = sum(1 for t in rollbacks if onset is None or t < onset)
    served = 0
    if onset is not None:
        end = first if first is not None and first >= onset else None
        for i, s in enumerate(stream.samples):
            if i in stream.bad or s.get("arm") != stream.candidate:
                continue
            if s["at"] >= onset and (end is None or s["at"] < end):
                served += int(s.get("events", 1))
    ttr = first - onset if first is not None and onset is not None and first >= onset else None
    return DrillReport(
        rolled_back=first is not None,
        rollback_at=first,
        time_to_rollback_ms=ttr,
        false_rollbacks=false,
        bad_requests_served=served,
        refused=refused,
        decisions=tuple(decisions),
        trace=tuple(trace),
    )
