"""error_attribution against independent implementations.

The gate's e-value, per traffic split, is the Lindon-Malek Beta-binomial mixture of
which arm each error came from, restricted to the alternative "the candidate is worse"
(a prior truncated at the null). So for every split

    ln E = ln E_savvi + ln U(a + x, b + y; p0) - ln U(a, b; p0),

where E_savvi is savvi's two-sided Dirichlet-mixture e-value for the same counts, null
shares and prior (savvi.multinomial.InhomogeneousPoissonProcess, k = mixing_events), and
U is the Beta upper tail (scipy.special.betaincc, Boost's ibeta). The policy's reported
ln E must equal the sum over splits, its p-value must be 1 / the largest E so far, and
the rollback must come exactly at the first evaluation where that p-value <= alpha.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import savvi.multinomial as savvi
import scipy.special as special

import rollguard


def config(alpha: float, margin: float, k: float) -> dict:
    rule = {"kind": "error_attribution", "alpha": alpha, "mixing_events": k}
    if margin:
        rule["margin"] = {"relative": margin}
    return {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "errors", "kind": "count"}],
        "gates": [{"name": "attributed", "metric": "errors", "stat": "rate", "rule": rule}],
        "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 10, "duration_ms": 300_000},
            {"kind": "set_weight", "weight": 40, "duration_ms": 3_000_000}]},
        "analysis": {"interval_ms": 30_000},
    }


def reference_ln_e(splits: dict[float, list[int]], margin: float, k: float) -> float:
    total = 0.0
    for share, (x, y) in splits.items():
        if x + y == 0:
            continue
        judged = share * (1 + margin)
        p0 = judged / (judged + 1 - share)
        proc = savvi.InhomogeneousPoissonProcess(0.05, np.array([1 - p0, p0]), np.array([[-1.0, 1.0]]), k=k)
        proc.update(np.array([y, x]))
        a, b = k * p0, k * (1 - p0)
        total += (
            math.log(proc.odds)
            + math.log(special.betaincc(a + x, b + y, p0))
            - math.log(special.betaincc(a, b, p0))
        )
    return total


@pytest.mark.parametrize(
    ("seed", "ratio", "margin", "k", "alpha"),
    [(1, 1.0, 0.0, 10.0, 0.01), (2, 1.8, 0.0, 10.0, 0.01), (3, 2.5, 0.2, 30.0, 0.05), (4, 1.3, 0.1, 3.0, 0.1)],
)
def test_e_values_match_savvi_and_scipy(seed: int, ratio: float, margin: float, k: float, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    policy = rollguard.Policy(config(alpha, margin, k), now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    weight = 10
    splits: dict[float, list[int]] = {}
    best = 0.0
    compared = 0
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    for t in range(10_000, 3_000_001, 10_000):
        share = weight / 100
        load = int(rng.integers(200, 2000))  # requests in these 10 s, both arms
        rate = 0.005 * (1 + 3 * (rng.random() < 0.1))  # shared bursts of errors
        n2 = load * weight // 100
        n1 = load - n2
        e2 = int(rng.binomial(n2, min(1.0, rate * ratio)))
        e1 = int(rng.binomial(n1, rate))
        policy.observe_count(t - 5_000, "v2", "errors", e2, n2)
        policy.observe_count(t - 5_000, "v1", "errors", e1, n1)
        counts = splits.setdefault(share, [0, 0])
        counts[0] += e2
        counts[1] += e1
        step = policy.tick(t)
        reports = [r for e in step.events if e.kind == "analysis" for r in e.fields["reports"]]
        rolled_back = any(d.kind == "rollback" for d in step.decisions)
        for r in reports:
            want = reference_ln_e(splits, margin, k)
            assert r["log_e_value"] == pytest.approx(want, rel=1e-9, abs=1e-9)
            assert r["used"] == sum(c[0] for c in splits.values())
            assert r["baseline_used"] == sum(c[1] for c in splits.values())
            best = max(best, want)
            assert r["p_value"] == pytest.approx(min(1.0, math.exp(-best)), rel=1e-9)
            assert (r["verdict"] == "fail") == (math.exp(-best) <= alpha)
            assert rolled_back == (r["verdict"] == "fail")
            compared += 1
        for d in step.actions:
            if d.kind == "set_weight":
                weight = d.fields["weight"]
            if d.action_id is not None:
                policy.handle({"kind": "ack", "at": t, "action_id": d.action_id})
        if rolled_back or policy.status().aliases.get("candidate") is None:
            break
    assert compared >= 5
    if ratio >= 1.8:
        assert rolled_back, "a clearly worse candidate is found within the hour"
    if ratio == 1.0:
        assert not rolled_back
