"""sequential_mean against an independent implementation.

The gate's e-value is the one-sided normal-mixture supermartingale of Howard et al.
(AoS 2021) on the score of the difference of means: with d the difference (judged minus
baseline, signed so that worse is positive), V = s1^2/n + s2^2/m the plug-in variance of d,
I = 1/V and tau the mixing scale,

    ln M = confseq.boundaries.normal_log_mixture(s=(d - null) * I, v=I, v_opt, 0.05, is_one_sided=True)

with v_opt chosen so that confseq's mixture precision rho equals 1/tau^2 (confseq tunes
rho for v_opt as the two-sided mixture does at 2 * alpha_opt). The policy's reported
ln M, p-value and decision must agree with it at every evaluation.

With `autocorrelation: adjust` (the default) each arm's term of V is widened by
(1 + r)/(1 - r), r its lag-1 autocorrelation (the pairs' covariance over the variance,
two passes in NumPy here), bias-corrected by (1 + 3r)/(pairs) and clipped to [0, 0.9].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from confseq import boundaries

import rollguard

ALPHA_OPT = 0.05


def v_opt_for(rho: float) -> float:
    """The v_opt at which confseq's one-sided normal mixture has precision rho."""
    l = math.log(1 / (2 * ALPHA_OPT))
    return rho * (2 * l + math.log(1 + 2 * l))


def long_run_factor(x: np.ndarray) -> float:
    """(1 + r)/(1 - r) for the bias-corrected, clipped lag-1 autocorrelation r of x."""
    if len(x) < 3 or x.var() <= 0:
        return 1.0
    u, v = x[:-1], x[1:]
    r = float(np.mean((u - u.mean()) * (v - v.mean())) / x.var())
    r += (1 + 3 * max(r, 0.0)) / (len(x) - 1)
    r = min(max(r, 0.0), 0.9)
    return (1 + r) / (1 - r)


def config(rule: dict, burn_in: int) -> dict:
    return {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "m", "kind": "value"}],
        "gates": [{"name": "mean", "metric": "m", "stat": "mean", "rule": rule, "samples_min": burn_in}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 20, "duration_ms": 3_600_000}]},
        "analysis": {"interval_ms": 5_000},
    }


def test_confseq_rho_is_recovered() -> None:
    # The v_opt <-> rho relation the comparison relies on, checked on confseq itself:
    # at s = 0, v = 1 its one-sided mixture is 1/2 ln(rho / (1 + rho)).
    for rho in [0.01, 1.0, 250.0]:
        got = 2 * boundaries.normal_log_mixture(0.0, 1.0, v_opt_for(rho), ALPHA_OPT, is_one_sided=True)
        assert math.exp(got) / (1 - math.exp(got)) == pytest.approx(rho, rel=1e-9)


@pytest.mark.parametrize(
    ("seed", "shift", "rule", "burn_in", "phi"),
    [
        (1, 0.0, {"kind": "sequential_mean"}, 10, 0.0),
        (2, 0.35, {"kind": "sequential_mean", "alpha": 0.05}, 20, 0.0),
        (3, 0.6, {"kind": "sequential_mean", "margin": {"relative": 0.02}}, 10, 0.0),
        (4, -0.9, {"kind": "sequential_mean", "worse": "lower", "margin": {"absolute": 0.1},
                   "mixing_scale": 0.5, "alpha": 0.1}, 5, 0.0),
        (5, 0.0, {"kind": "sequential_mean"}, 10, 0.6),
        (6, 0.5, {"kind": "sequential_mean", "alpha": 0.05}, 20, 0.5),
        (7, 0.3, {"kind": "sequential_mean", "autocorrelation": "ignore"}, 10, 0.5),
    ],
)
def test_log_e_values_match_confseq(seed: int, shift: float, rule: dict, burn_in: int, phi: float) -> None:
    rng = np.random.default_rng(seed)
    adjust = rule.get("autocorrelation", "adjust") == "adjust"
    # Each arm's noise is AR(1) with coefficient phi in its own sample order.
    noise = {"v1": rng.standard_normal(), "v2": rng.standard_normal()}
    alpha = rule.get("alpha", 0.01)
    sign = -1.0 if rule.get("worse") == "lower" else 1.0
    policy = rollguard.Policy(config(rule, burn_in), now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    seen: dict[str, list[float]] = {"v1": [], "v2": []}
    null = scale = None
    best = 0.0
    compared = 0
    rolled_back = False
    for t in range(5_000, 600_001, 5_000):
        # Unequal arms, as at a 20 % canary: 4 candidate samples for every 16 stable ones.
        for k in range(20):
            arm = "v2" if k % 5 == 0 else "v1"
            noise[arm] = phi * noise[arm] + math.sqrt(1 - phi * phi) * rng.standard_normal()
            x = 100.0 + 10.0 * noise[arm] + (shift * 10.0 if arm == "v2" else 0.0)
            policy.observe_value(t - 5_000 + 200 * k + 1, arm, "m", float(x))
            seen[arm].append(x)
        step = policy.tick(t)
        reports = [r for e in step.events if e.kind == "analysis" for r in e.fields["reports"]]
        rolled_back = any(d.kind == "rollback" for d in step.decisions)
        a, b = np.array(seen["v2"]), np.array(seen["v1"])
        started = min(len(a), len(b)) >= max(burn_in, 2)
        for r in reports:
            assert r["used"] == len(a) and r["baseline_used"] == len(b)
            if not started:
                assert r["log_e_value"] == 0.0 and r["verdict"] == "inconclusive"
                continue
            if null is None:
                margin = rule.get("margin", {"relative": 0.0})
                null = margin.get("absolute", margin.get("relative", 0.0) * abs(b.mean()))
                pooled = 0.5 * (a.var(ddof=1) + b.var(ddof=1))
                scale = rule.get("mixing_scale", null if null > 0 else 0.5 * math.sqrt(pooled))
            d = sign * (a.mean() - b.mean())
            independent = a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)
            fa, fb = (long_run_factor(a), long_run_factor(b)) if adjust else (1.0, 1.0)
            variance = fa * a.var(ddof=1) / len(a) + fb * b.var(ddof=1) / len(b)
            info = 1.0 / variance
            if adjust:
                assert r["variance_inflation"] == pytest.approx(variance / independent, rel=1e-9)
            else:
                assert "variance_inflation" not in r
            want = boundaries.normal_log_mixture(
                (d - null) * info, info, v_opt_for(1.0 / scale**2), ALPHA_OPT, is_one_sided=True
            )
            assert r["effect"] == pytest.approx(d, rel=1e-9, abs=1e-9)
            assert r["log_e_value"] == pytest.approx(want, rel=1e-7, abs=1e-7)
            best = max(best, want)
            assert r["p_value"] == pytest.approx(min(1.0, math.exp(-best)), rel=1e-6)
            assert (r["verdict"] == "fail") == (math.exp(-best) <= alpha)
            assert rolled_back == (r["verdict"] == "fail")
            compared += 1
        if rolled_back:
            break
    assert compared >= (1 if rolled_back else 3)
    if abs(shift) >= 0.35 and shift * sign > 0:
        assert rolled_back, "a clearly worse candidate is found"
    if shift == 0.0:
        assert not rolled_back
