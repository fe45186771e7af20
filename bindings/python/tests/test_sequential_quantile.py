"""sequential_quantile against an independent implementation.

Each arm's evidence is Howard and Ramdas's one-sided beta-binomial mixture on a count of
samples beyond a value v: for the judged arm the samples at or above v (against "at most
1 - p of them"), for the baseline the samples below g^-1(v) (against "at most p of them"),
g(x) = (1 + margin) x. confseq.boundaries.beta_binomial_log_mixture gives each with
s = count - n p0, v = n p0 (1 - p0), g = p0, h = 1 - p0 and v_opt chosen so that its r
equals the gate's prior weight k p0 (1 - p0), k = mixing_events / (1 - p). The gate's
ln E is max over v of min(ln E_judged(v), ln E_baseline(g^-1(v))) - ln 2, with v running
over the lower edges of the histogram's bins and every count taken from whole bins. The
bins are recomputed here from frexp (32 per octave from 2^-10, the default range), and
the decision is also checked against confseq's own quantile A/B test
(confseq.quantiles.quantile_ab_p_value) on clear cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from confseq import boundaries, quantiles

import rollguard

ALPHA_OPT = 0.05
SUB = 32
E_LO, OCTAVES = -10, 40  # histogram_range 0.001 .. 1e9


def v_opt_for(r: float, g: float, h: float) -> float:
    """The v_opt at which confseq's one-sided beta-binomial mixture has parameter r."""
    l = math.log(1 / (2 * ALPHA_OPT))
    return (r + g * h) * (2 * l + math.log(1 + 2 * l))


def lower_edge(x: float) -> float:
    """The lower edge of the histogram bin of a positive x in range."""
    m, e = math.frexp(x)  # x = m 2^e, m in [0.5, 1)
    sub = math.floor((2 * m - 1) * SUB)
    return math.ldexp(1 + sub / SUB, e - 1)


EDGES = np.array([math.ldexp(1 + s / SUB, E_LO + o) for o in range(OCTAVES) for s in range(SUB)]
                 + [math.ldexp(1.0, E_LO + OCTAVES)])


def upper_edge(x: float) -> float:
    lo = lower_edge(x)
    return float(EDGES[np.searchsorted(EDGES, lo, side="right")])


def ln_e(count: np.ndarray, n: int, p0: float, k: float) -> np.ndarray:
    g, h = p0, 1 - p0
    return np.array([
        boundaries.beta_binomial_log_mixture(c - n * g, n * g * h, v_opt_for(k * g * h, g, h), g, h, ALPHA_OPT,
                                             is_one_sided=True)
        for c in count
    ])


def expected(judged: list[float], baseline: list[float], p: float, margin: float, events: float,
             alpha: float) -> tuple[float, float | None, float | None]:
    """ln E, the judged lower bound and the baseline upper bound, recomputed."""
    k = events / (1 - p)
    jl = np.sort([lower_edge(x) for x in judged])
    bu = np.sort([upper_edge(x) for x in baseline])
    nj, nb = len(judged), len(baseline)
    above = nj - np.searchsorted(jl, EDGES, side="left")  # judged bins starting at or above v
    t = EDGES / (1 + margin)
    side = "right" if margin == 0 else "left"  # bins ending at t count only when t is exact
    below = np.searchsorted(bu, t, side=side)  # baseline bins ending below g^-1(v)
    lj = ln_e(above, nj, 1 - p, k)
    lb = ln_e(below, nb, p, k)
    ln_m = float(np.max(np.minimum(lj, lb)))
    per_arm = math.log(2 / alpha)
    judged_lower = float(EDGES[lj >= per_arm].max()) if (lj >= per_arm).any() else None
    ends = np.append(EDGES[1:], math.inf)  # the upper edge of the bin starting at EDGES[i]
    below_end = np.searchsorted(bu, ends, side="right")
    lbu = ln_e(below_end, nb, p, k)
    baseline_upper = float(ends[lbu >= per_arm].min()) if (lbu >= per_arm).any() else None
    return ln_m - math.log(2), judged_lower, baseline_upper


def config(rule: dict, stat: str) -> dict:
    return {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "latency_ms", "kind": "value"}],
        "gates": [{"name": "tail", "metric": "latency_ms", "stat": stat, "rule": rule, "samples_min": 20}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 3_600_000}]},
        "analysis": {"interval_ms": 5_000},
    }


@pytest.mark.parametrize(
    ("seed", "stretch", "stat", "p", "rule"),
    [
        (1, 1.0, "p90", 0.9, {"kind": "sequential_quantile"}),
        (2, 1.6, "p90", 0.9, {"kind": "sequential_quantile", "alpha": 0.05}),
        (3, 2.0, "p99", 0.99, {"kind": "sequential_quantile", "margin": {"relative": 0.1}, "mixing_events": 3}),
        (4, 1.3, "p50", 0.5, {"kind": "sequential_quantile", "alpha": 0.1, "mixing_events": 30}),
    ],
)
def test_log_e_values_and_bounds_match_confseq(seed: int, stretch: float, stat: str, p: float, rule: dict) -> None:
    rng = np.random.default_rng(seed)
    alpha = rule.get("alpha", 0.01)
    margin = rule.get("margin", {}).get("relative", 0.0)
    events = rule.get("mixing_events", 10.0)
    policy = rollguard.Policy(config(rule, stat), now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    judged: list[float] = []
    baseline: list[float] = []
    best = 0.0
    compared = 0
    rolled_back = False
    for t in range(5_000, 400_001, 5_000):
        for i in range(100):
            for arm, factor, seen in (("v1", 1.0, baseline), ("v2", stretch, judged)):
                x = float(100.0 * math.exp(0.5 * rng.standard_normal()))
                x = x if x <= 100.0 else 100.0 + (x - 100.0) * factor  # the median stays
                policy.observe_value(t - 5_000 + 40 * i + (arm == "v2"), arm, "latency_ms", x)
                seen.append(x)
        step = policy.tick(t)
        rolled_back = any(d.kind == "rollback" for d in step.decisions)
        for rep in (r for ev in step.events if ev.kind == "analysis" for r in ev.fields["reports"]):
            want, jl, bu = expected(judged, baseline, p, margin, events, alpha)
            assert rep["used"] == len(judged) and rep["baseline_used"] == len(baseline)
            assert rep["quantile"] == p
            assert rep["log_e_value"] == pytest.approx(want, rel=1e-8, abs=1e-8)
            assert rep.get("judged_lower") == jl
            assert rep.get("baseline_upper") == bu
            best = max(best, want)
            assert (rep["verdict"] == "fail") == (math.exp(-best) <= alpha)
            assert rolled_back == (rep["verdict"] == "fail")
            compared += 1
        if rolled_back:
            break
    assert compared >= 1
    # confseq's own two-sample quantile test agrees on the clear cases.
    ab = quantiles.quantile_ab_p_value(np.array(baseline), np.array(judged), p, len(judged), ALPHA_OPT)
    if stretch == 1.0:
        assert not rolled_back and ab > alpha
    if stretch >= 1.6:
        assert rolled_back and ab <= alpha
