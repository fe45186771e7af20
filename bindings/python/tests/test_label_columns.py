"""observe_many with label columns (tenant=, tier=, agent=): the same policy, steps and
scopes as observe() of each row with its labels, whatever form the labels take (a
pandas Categorical or category Series, a numpy array of strings, a list with None)."""

from __future__ import annotations

import copy
import random
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np
import pandas as pd
import pytest

from rollguard import InputError, Policy, Step
from conftest import CONFIG


def scoped_config(by: list[str]) -> dict:
    config = copy.deepcopy(CONFIG)
    config["scopes"] = {"by": by}
    config["limits"] = {"scopes_max": 4}
    config["gates"].append({
        "name": "mean_test", "metric": "latency_ms", "stat": "mean",
        "rule": {"kind": "sequential_mean", "alpha": 0.05}, "samples_min": 5,
    })
    return config


def started(config: dict) -> Policy:
    p = Policy(config)
    step = p.tick(0)
    for d in step.actions:
        p.command("ack", at=0, action_id=d.action_id)
    return p


def flatten(steps: list[Step]) -> tuple[list[Any], list[Any]]:
    return ([d.to_dict() for s in steps for d in s.decisions],
            [e.to_dict() for s in steps for e in s.events])


def rows(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, list[Optional[str]], list[Optional[str]]]:
    rng = random.Random(seed)
    at = np.cumsum([rng.choice([0, 1250, 2500]) for _ in range(n)]).astype(np.int64)
    tenants: list[Optional[str]] = [rng.choice(["acme", "globex", "initech", "umbrella", "hooli", None])
                                    for _ in range(n)]
    tiers: list[Optional[str]] = [rng.choice(["1", "2", None]) for _ in range(n)]
    values = np.array([rng.uniform(50, 300) * (3 if t == "globex" else 1) for t in tenants])
    return at, values, tenants, tiers


def row_by_row(config: dict, at: np.ndarray, values: np.ndarray,
               tenants: list[Optional[str]], tiers: list[Optional[str]]) -> tuple[Policy, list[Step]]:
    p = started(config)
    steps = []
    for t, x, tenant, tier in zip(at.tolist(), values.tolist(), tenants, tiers):
        sample: dict[str, Any] = {"at": t, "arm": "v2", "metric": "latency_ms", "value": x}
        if tenant is not None:
            sample["tenant"] = tenant
        if tier is not None:
            sample["tier"] = tier
        steps.append(p.observe(sample))
    return p, steps


@pytest.mark.parametrize("by", [["tenant"], ["tenant", "tier"]])
@pytest.mark.parametrize("seed", range(6))
def test_every_label_form_equals_row_by_row(by: list[str], seed: int) -> None:
    config = scoped_config(by)
    at, values, tenants, tiers = rows(seed, 300)
    want, steps = row_by_row(config, at, values, tenants, tiers)
    # Categories in another order than the rows', and one no row uses.
    categories = ["umbrella", "hooli", "initech", "globex", "acme", "never-seen"]
    tenant_cat = pd.Categorical(tenants, categories=categories)
    forms: list[tuple[str, Any, Any]] = [
        ("list", tenants, tiers),
        ("categorical", tenant_cat, pd.Categorical(tiers)),
        ("series", pd.Series(tenant_cat), pd.Series(tiers, dtype="category")),
        ("object array", np.array(tenants, dtype=object), np.array(tiers, dtype=object)),
    ]
    for name, tenant, tier in forms:
        p = started(config)
        step = p.observe_many("v2", "latency_ms", at, values, tenant=tenant, tier=tier)
        assert p == want, name
        assert flatten([step]) == flatten(steps), name
        assert p.snapshot_json() == want.snapshot_json(), name


def test_a_numpy_string_array_and_counts() -> None:
    config = scoped_config(["tenant"])
    at = np.arange(1000, 41000, 100, dtype=np.int64)
    tenants = np.array(["t%d" % (i % 7) for i in range(at.size)])
    events = np.arange(at.size) % 3
    total = np.full(at.size, 10)
    p = started(config)
    p.observe_many("v2", "errors", at, events=events, total=total, tenant=tenants)
    q = started(config)
    for t, e, n, tenant in zip(at.tolist(), events.tolist(), total.tolist(), tenants.tolist()):
        q.observe({"at": t, "arm": "v2", "metric": "errors", "events": e, "total": n,
                   "tenant": tenant})
    assert p == q
    # t0, t1, t2 have scopes, the other four share the overflow scope.
    scopes = [s["key"] for s in p.snapshot()["state"]["scopes"]]
    assert scopes == [{"tenant": "t0"}, {"tenant": "t1"}, {"tenant": "t2"}, {"overflow": True}]


def test_bad_labels_are_refused_at_their_row() -> None:
    config = scoped_config(["tenant"])
    p = started(config)
    before = p.snapshot_json()
    at = [1000, 2000, 3000]
    long = "x" * 1000
    cases: list[tuple[Any, str, str]] = [
        (["a", long, "b"], "label_too_long", "tenant[1]"),
        (["a", 7, "b"], "invalid_json", "tenant[1]"),
        (pd.Categorical.from_codes([0, 1, 0], ["a", long]), "label_too_long", "tenant[1]"),
        (["a", "b"], "invalid_value", "tenant"),
        ("acme", "invalid_json", "tenant"),
        # Anything with codes and categories reads as a Categorical.
        (SimpleNamespace(codes=np.array([0, 5, 0]), categories=["a"]), "invalid_value", "tenant[1]"),
    ]
    for tenant, code, path in cases:
        with pytest.raises(InputError) as e:
            p.observe_many("v2", "latency_ms", at, [1.0, 2.0, 3.0], tenant=tenant)
        assert (e.value.code, e.value.path) == (code, path), tenant
        assert p.snapshot_json() == before
    # An unused long category is no sample's label: accepted.
    ok = pd.Categorical.from_codes([0, -1, 0], ["a", long])
    p.observe_many("v2", "latency_ms", at, [1.0, 2.0, 3.0], tenant=ok)
    assert [s["key"] for s in p.snapshot()["state"]["scopes"]] == [{"tenant": "a"}]
