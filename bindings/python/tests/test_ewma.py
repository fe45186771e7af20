"""ewma against an independent implementation.

The gate runs the one-sided EWMA reflected at its reference (Crowder and Hamilton):
z <- max(0, (1 - lambda) z + lambda d) on standardised samples d (winsorised at the
rule's clip, 3 by default or 2h if higher), alarm when z > h, with
h derived from arl0 by a Markov chain over z (Brook and Evans, Lucas and Saccucci). Here
NumPy recomputes z on the same samples, and a NumPy/SciPy chain over a finer grid checks
that the limit the gate derived runs arl0 samples to a false alarm: at least arl0 (the
gate's coarser chain errs short), and within a few percent of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

import rollguard


def reflected_arl(lam: float, h: float, shift: float, cells: int = 600) -> float:
    """Zero-state run length of the reflected EWMA on N(shift, 1): barrier state + cells."""
    w = h / cells
    z = np.concatenate([[0.0], (np.arange(1, cells + 1) - 0.5) * w])
    edges = np.arange(cells + 1) * w
    below = norm.cdf((edges[None, :] - (1 - lam) * z[:, None]) / lam - shift)
    q = np.empty((cells + 1, cells + 1))
    q[:, 0] = below[:, 0]
    q[:, 1:] = np.diff(below, axis=1)
    return float(np.linalg.solve(np.eye(cells + 1) - q, np.ones(cells + 1))[0])


def canary_policy(rule: dict[str, Any]) -> rollguard.Policy:
    config = {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "latency_ms", "kind": "value"}],
        "gates": [{"name": "chart", "metric": "latency_ms", "stat": "mean", "phases": ["canary"], "rule": rule}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 3_600_000}]},
        "analysis": {"interval_ms": 10_000},
    }
    policy = rollguard.Policy(config, now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    return policy


def reports(step: Any) -> list[dict[str, Any]]:
    return [r for ev in step.events if ev.kind == "analysis" for r in ev.fields["reports"]]


@pytest.mark.parametrize(("lam", "arl0"), [(0.05, 1_000.0), (0.1, 100_000.0), (0.3, 500.0), (1.0, 10_000.0)])
def test_the_derived_limit_runs_arl0_samples_in_control(lam: float, arl0: float) -> None:
    policy = canary_policy({"kind": "ewma", "lambda": lam, "arl0": arl0, "reference_mean": 0, "reference_sd": 1})
    policy.observe_value(1_000, "v2", "latency_ms", 0.0)
    (rep,) = reports(policy.tick(10_000))
    assert rep["chart"] == "ewma"
    h = rep["threshold"]
    arl = reflected_arl(lam, h, 0.0)
    assert arl >= arl0 * (1 - 1e-6), (h, arl)
    assert arl <= arl0 * 1.04, (h, arl)


@pytest.mark.parametrize(("seed", "lam", "shift"), [(1, 0.1, 0.0), (2, 0.2, 0.5), (3, 0.05, 1.0), (4, 0.5, 0.0)])
def test_the_statistic_is_the_reflected_recursion(seed: int, lam: float, shift: float) -> None:
    rng = np.random.default_rng(seed)
    mean, sd = 100.0, 8.0
    policy = canary_policy({"kind": "ewma", "lambda": lam, "limit": 3.5, "reference_mean": mean, "reference_sd": sd})
    h = 3.5 * np.sqrt(lam / (2 - lam))
    # Each standardised sample is winsorised at the default clip, 3, or 2h if higher.
    clip = max(3.0, 2.0 * h)
    z, used, alarm, compared = 0.0, 0, False, 0
    for t in range(10_000, 600_001, 10_000):
        for x in rng.normal(mean + shift * sd, sd, size=5).round(3):
            policy.observe_value(t - 5_000, "v2", "latency_ms", float(x))
            if not alarm:
                d = min(max((float(x) - mean) / sd, -clip), clip)
                z = max(0.0, (1 - lam) * z + lam * d)
                used += 1
                alarm = z > h
        (rep,) = reports(policy.tick(t))
        assert rep["statistic"] == pytest.approx(z, rel=1e-12, abs=1e-15)
        assert rep["used"] == used
        assert rep["verdict"] == ("fail" if alarm else "pass")
        compared += 1
        if alarm:
            break
    assert compared >= 1
    if shift >= 1.0:
        assert alarm
