"""rate_slo against an independent implementation.

The gate's e-value is the one-sided beta-binomial mixture of Howard et al. on the
requests judged (errors as successes), against "the error rate is at most max_rate":
confseq.boundaries.beta_binomial_log_mixture with g = max_rate, h = 1 - max_rate,
s = errors - n * max_rate, v = n * g * h, and v_opt chosen so that confseq's r equals the
gate's prior weight k * g * h (k = mixing_events / max_rate).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from confseq import boundaries

import rollguard

ALPHA_OPT = 0.05


def v_opt_for(r: float, g: float, h: float) -> float:
    """The v_opt at which confseq's one-sided beta-binomial mixture has parameter r."""
    l = math.log(1 / (2 * ALPHA_OPT))
    return (r + g * h) * (2 * l + math.log(1 + 2 * l))


@pytest.mark.parametrize(
    ("seed", "rate", "max_rate", "events", "alpha"),
    [(1, 0.001, 0.001, 10.0, 0.01), (2, 0.003, 0.001, 10.0, 0.01), (3, 0.02, 0.015, 4.0, 0.05), (4, 0.0, 0.002, 30.0, 0.1)],
)
def test_log_e_values_match_confseq(seed: int, rate: float, max_rate: float, events: float, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    config = {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "errors", "kind": "count"}],
        "gates": [{"name": "slo", "metric": "errors", "stat": "rate",
                   "rule": {"kind": "rate_slo", "max_rate": max_rate, "alpha": alpha, "mixing_events": events}}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 3_600_000}]},
        "analysis": {"interval_ms": 10_000},
    }
    policy = rollguard.Policy(config, now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    g, h = max_rate, 1 - max_rate
    r_mix = events / max_rate * g * h
    errors = total = 0
    best = 0.0
    compared = 0
    rolled_back = False
    for t in range(10_000, 1_800_001, 10_000):
        n = int(rng.integers(200, 3000))  # load swings
        e = int(rng.binomial(n, rate))
        policy.observe_count(t - 5_000, "v2", "errors", e, n)
        errors += e
        total += n
        step = policy.tick(t)
        rolled_back = any(d.kind == "rollback" for d in step.decisions)
        for rep in (r for ev in step.events if ev.kind == "analysis" for r in ev.fields["reports"]):
            want = boundaries.beta_binomial_log_mixture(
                errors - total * g, total * g * h, v_opt_for(r_mix, g, h), g, h, ALPHA_OPT, is_one_sided=True
            )
            assert rep["used"] == total and "baseline_used" not in rep
            assert rep["effect"] == pytest.approx(errors / total, rel=1e-12)
            assert rep["log_e_value"] == pytest.approx(want, rel=1e-8, abs=1e-8)
            best = max(best, want)
            assert (rep["verdict"] == "fail") == (math.exp(-best) <= alpha)
            assert rolled_back == (rep["verdict"] == "fail")
            compared += 1
        if rolled_back:
            break
    assert compared >= 1
    if rate >= 2 * max_rate:
        assert rolled_back
    if rate <= max_rate:
        assert not rolled_back
