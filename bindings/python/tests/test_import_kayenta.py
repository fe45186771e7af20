"""rollguard.import_kayenta: the binding only converts; the core reads the Kayenta config."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import rollguard

FIXTURE = Path(__file__).resolve().parents[3] / "crates" / "rollguard" / "tests" / "data" / "kayenta_canary_config.json"


def test_text_and_dict_give_the_same_pieces_and_they_make_a_policy() -> None:
    text = FIXTURE.read_text()
    imported = rollguard.import_kayenta(text)
    assert imported == rollguard.import_kayenta(json.loads(text))
    assert [g["name"] for g in imported["gates"]] == ["request_latency_p50", "error_ratio", "success_rate", "heap_used", "kayenta_score"]
    score = imported["gates"][-1]["rule"]
    assert (score["pass"], score["marginal"]) == (95.0, 75.0)
    assert score["group_weights"] == {"errors": 40.0, "latency": 50.0, "system": 10.0}
    assert [m.get("critical", False) for m in score["members"]] == [False, True, False, False]
    latency = imported["gates"][0]["rule"]
    assert (latency["effect_size"], latency["allowed_increase"], latency["outliers"]) == ("cles", 0.6, {"strategy": "remove", "factor": 3.0})
    paths = [w["path"] for w in imported["warnings"]]
    assert paths.count("metrics[0].query") == 1 and "metrics[1].analysisConfigurations.canary.nanStrategy" in paths
    config = {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": imported["metrics"],
        "gates": imported["gates"],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 600_000}]},
        "analysis": {"interval_ms": 60_000},
    }
    rollguard.Policy(config, now=0)


def test_unsupported_values_raise_with_their_path() -> None:
    doc = json.loads(FIXTURE.read_text())
    bad = copy.deepcopy(doc)
    bad["metrics"][2]["analysisConfigurations"]["canary"]["outliers"] = {"strategy": "winsorize"}
    with pytest.raises(rollguard.ConfigError) as e:
        rollguard.import_kayenta(bad)
    assert (e.value.code, e.value.path) == ("invalid_value", "metrics[2].analysisConfigurations.canary.outliers.strategy")
    bad = copy.deepcopy(doc)
    bad["classifier"]["groupWeights"]["pod-group"] = 20
    with pytest.raises(rollguard.ConfigError) as e:
        rollguard.import_kayenta(bad)
    assert (e.value.code, e.value.path) == ("invalid_value", "classifier.groupWeights")
