"""kayenta_score against an independent transcription of Kayenta's scoring.

The reference below is written from NetflixACAJudge's WeightedSumScorer (group score =
pass / (pass + high + low + NodataFailMetric) x 100, a group with none of those counts
100, unlisted groups share 100 - sum(groupWeights) equally, 50 % or more Nodata or a
critical metric that is not Pass gives 0, MathUtils.round(x, 2) with Python's Decimal
on repr(x)) and the canary stage's thresholds (fail at or below marginal, pass from pass).
Each member gate is driven to the classification wanted (the same samples as the
baseline: pass; every sample 100 higher or lower: high or low; none: no data), so the
comparison is of the scoring alone, over random member sets, groups and weights.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

import rollguard


def reference(labels: list[str], members: list[dict], weights: dict[str, float]) -> tuple[float | None, str]:
    scored = [(lab, m) for lab, m in zip(labels, members) if not m.get("muted")]
    if not scored:
        return None, "no_data"
    if any(m.get("critical") and lab != "pass" for lab, m in scored):
        return 0.0, "critical"
    if sum(lab == "no_data" for lab, _ in scored) / len(scored) * 100 >= 50:
        return 0.0, "no_data"
    groups: dict[str, list[str]] = {}
    for lab, m in scored:
        for g in m.get("groups", []):
            groups.setdefault(g, []).append(lab)
    unlisted = set(groups) - set(weights)
    shared = (100 - sum(weights.values())) / len(unlisted) if unlisted else 0.0
    total = 0.0
    for g, labs in groups.items():
        counted = sum(lab in ("pass", "high", "low", "no_data_fail") for lab in labs)
        effective = 100.0 if counted == 0 else labs.count("pass") / counted * 100
        total += effective * (weights.get(g, shared) / 100)
    return float(Decimal(repr(total)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)), "score"


def run(wanted: list[str], members: list[dict], weights: dict[str, float], pass_: float, marginal: float) -> dict:
    n = len(wanted)
    gates = [
        {"name": f"g{i}", "metric": f"m{i}", "stat": "mean", "dry_run": True, "samples_min": 5,
         "rule": {"kind": "mann_whitney", "worse": "either"}}
        for i in range(n)
    ]
    gates.append({"name": "score", "metric": "m0", "stat": "mean",
                  "rule": {"kind": "kayenta_score", "members": members, "group_weights": weights,
                           "pass": pass_, "marginal": marginal}})
    config = {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": f"m{i}", "kind": "value"} for i in range(n)],
        "gates": gates,
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 600_000}]},
        "analysis": {"interval_ms": 10_000},
    }
    policy = rollguard.Policy(config, now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    at = 1
    for k in range(20):
        for i, want in enumerate(wanted):
            v = 100.0 + (k * 7) % 11
            policy.observe_value(at, "v1", f"m{i}", v)
            at += 1
            if want != "no_data":
                policy.observe_value(at, "v2", f"m{i}", v + {"high": 100.0, "low": -100.0}.get(want, 0.0))
                at += 1
    step = policy.tick(10_000)
    reports = {r["gate"]: r for ev in step.events if ev.kind == "analysis" for r in ev.fields["reports"]}
    for i, want in enumerate(wanted):
        assert reports[f"g{i}"]["classification"] == want
    return reports["score"]


def cases() -> list[tuple[list[str], list[dict], dict[str, float], float, float]]:
    rng = random.Random(20261206)
    out = []
    for _ in range(40):
        n = rng.randint(1, 7)
        names = ["latency", "errors", "system", "saturation"][: rng.randint(1, 4)]
        members = []
        for i in range(n):
            m: dict = {"gate": f"g{i}", "groups": rng.sample(names, rng.choice([0, 1, 1, 1, 2]) if len(names) > 1 else 1)}
            for flag, p in (("critical", 0.15), ("must_have_data", 0.3), ("muted", 0.1)):
                if rng.random() < p:
                    m[flag] = True
            members.append(m)
        wanted = [rng.choice(["pass", "pass", "pass", "high", "low", "no_data"]) for _ in range(n)]
        listed = rng.sample(names, rng.randint(0, len(names)))
        budget = 100.0
        weights = {}
        for g in listed:
            w = float(rng.randint(0, int(budget)))
            weights[g] = w
            budget -= w
        marginal = float(rng.choice([50, 75]))
        out.append((wanted, members, weights, float(rng.choice([marginal, 90, 95])), marginal))
    return out


@pytest.mark.parametrize(("wanted", "members", "weights", "pass_", "marginal"), cases())
def test_score_matches_kayentas_scorer(wanted, members, weights, pass_, marginal) -> None:
    rep = run(wanted, members, weights, pass_, marginal)
    labels = [
        "no_data_fail" if w == "no_data" and m.get("must_have_data") and not m.get("critical") else w
        for w, m in zip(wanted, members)
    ]
    score, reason = reference(labels, members, weights)
    assert rep.get("score") == score
    assert rep["reason"] == reason
    assert [m["classification"] for m in rep["metrics"]] == labels
    without_data = all(lab in ("no_data", "no_data_fail") for lab, m in zip(labels, members) if not m.get("muted"))
    if score is None or without_data:
        verdict = "inconclusive"
    elif score <= marginal:
        verdict = "fail"
    elif score < pass_:
        verdict = "inconclusive"
    else:
        verdict = "pass"
    assert rep["verdict"] == verdict


def test_the_cases_reach_every_reason() -> None:
    reasons = set()
    for wanted, members, weights, _, _ in cases():
        labels = ["no_data_fail" if w == "no_data" and m.get("must_have_data") and not m.get("critical") else w
                  for w, m in zip(wanted, members)]
        reasons.add(reference(labels, members, weights)[1])
    assert reasons == {"score", "critical", "no_data"}
