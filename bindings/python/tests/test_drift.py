"""drift against independent implementations.

The Jensen-Shannon distance is SciPy's ``scipy.spatial.distance.jensenshannon`` (base 2)
of the two arms' class shares; the population stability index is recomputed with NumPy
from its definition, each arm's shares smoothed by half a sample per bin seen in either
arm. The bins follow the rule: category ids, or equal bins with one below and one above.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

import rollguard


def canary_policy(rule: dict[str, Any]) -> rollguard.Policy:
    config = {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "answer", "kind": "value"}],
        "gates": [{"name": "drift", "metric": "answer", "stat": "mean", "samples_min": 1, "rule": rule}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 3_600_000}]},
        "analysis": {"interval_ms": 10_000},
    }
    policy = rollguard.Policy(config, now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    return policy


def psi(a: np.ndarray, b: np.ndarray) -> float:
    seen = (a + b) > 0
    a, b = a[seen], b[seen]
    p = (a + 0.5) / (a.sum() + 0.5 * seen.sum())
    q = (b + 0.5) / (b.sum() + 0.5 * seen.sum())
    return float(np.sum((p - q) * np.log(p / q)))


def report(policy: rollguard.Policy, judged: np.ndarray, baseline: np.ndarray) -> dict[str, Any]:
    for x in baseline:
        policy.observe_value(1_000, "v1", "answer", float(x))
    for x in judged:
        policy.observe_value(1_000, "v2", "answer", float(x))
    (rep,) = [r for ev in policy.tick(10_000).events if ev.kind == "analysis" for r in ev.fields["reports"]]
    return rep


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("measure", ["psi", "js"])
def test_categories_match_scipy_and_the_definition(seed: int, measure: str) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    base_p = rng.dirichlet(np.ones(k))
    cand_p = rng.dirichlet(np.ones(k))
    baseline = rng.choice(k, size=int(rng.integers(50, 400)), p=base_p).astype(float)
    judged = rng.choice(k, size=int(rng.integers(50, 400)), p=cand_p).astype(float)
    judged[:3] = [k, -1.0, 0.5]  # not category ids: "other"
    rep = report(canary_policy({"kind": "drift", "measure": measure, "categories": k}), judged, baseline)
    a = np.bincount(np.where(np.isin(judged, np.arange(k)), judged, k).astype(int), minlength=k + 1)
    b = np.bincount(baseline.astype(int), minlength=k + 1)
    want = psi(a, b) if measure == "psi" else float(jensenshannon(a / a.sum(), b / b.sum(), base=2))
    assert rep["measure"] == measure
    assert rep["divergence"] == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert rep["used"] == a.sum() and rep["baseline_used"] == b.sum()
    threshold = 0.25 if measure == "psi" else 0.1
    assert rep["threshold"] == threshold
    assert rep["verdict"] == ("fail" if want > threshold else "pass")


@pytest.mark.parametrize("seed", [5, 6])
def test_equal_bins_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lo, hi, count = 0.0, 1.0, 10
    baseline = rng.beta(2, 5, size=500)
    judged = np.concatenate([rng.beta(2.5, 5, size=480), [-0.2, 1.0, 1.7]])
    rep = report(
        canary_policy({"kind": "drift", "measure": "js", "bins": {"min": lo, "max": hi, "count": count}}),
        judged,
        baseline,
    )
    edges = np.concatenate([[-np.inf], np.linspace(lo, hi, count + 1), [np.inf]])
    a = np.histogram(judged, bins=edges)[0]
    b = np.histogram(baseline, bins=edges)[0]
    # NumPy's last bin is closed; the gate's "above" bin starts at max. No sample
    # falls exactly on an inner edge here.
    a[-2], a[-1] = np.sum((judged >= 0.9) & (judged < 1.0)), np.sum(judged >= 1.0)
    want = float(jensenshannon(a / a.sum(), b / b.sum(), base=2))
    assert rep["divergence"] == pytest.approx(want, rel=1e-12, abs=1e-12)
    worst = int(rep["bin"])
    assert rep["share"] == pytest.approx(a[worst] / a.sum())
    assert rep["baseline_share"] == pytest.approx(b[worst] / b.sum())
