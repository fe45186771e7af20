"""rollguard.backtest: recordings from what users have, the core's report, columns
for pandas, calibration, and refusals."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

import rollguard
from rollguard import backtest

POLICY: Dict[str, Any] = {
    "format_version": 1,
    "versions": [
        {"id": "v1", "digest": "sha256:aa", "validated": True},
        {"id": "v2", "digest": "sha256:bb"},
    ],
    "stable": "v1",
    "metrics": [
        {"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6},
        {"name": "errors", "kind": "count", "window_ms": 60000, "buckets": 6},
    ],
    "gates": [
        {"name": "mean", "metric": "latency_ms", "stat": "mean",
         "rule": {"kind": "threshold", "max": 101.0}, "samples_min": 20,
         "persistence": {"consecutive": 2}},
        {"name": "error_rate", "metric": "errors", "stat": "rate",
         "rule": {"kind": "threshold", "max": 0.05}, "samples_min": 200},
    ],
    "strategy": {"kind": "canary", "steps": [
        {"kind": "set_weight", "weight": 50, "duration_ms": 600000}]},
    "analysis": {"interval_ms": 10000},
}


def frame(minutes: int = 20, seed: int = 3) -> pd.DataFrame:
    """Production traffic in a long table: a latency sample and an error count per
    200 ms, NaN where a row has no such field."""
    rng = np.random.default_rng(seed)
    n = minutes * 300
    at = np.arange(n, dtype=np.int64) * 200
    latency = pd.DataFrame({
        "at": at, "arm": "v1", "metric": "latency_ms",
        "value": 100.0 + 10.0 * rng.standard_normal(n),
        "events": np.nan, "total": np.nan,
    })
    errors = pd.DataFrame({
        "at": at, "arm": "v1", "metric": "errors", "value": np.nan,
        "events": rng.binomial(10, 0.02, n).astype(float), "total": 10.0,
    })
    df = pd.concat([latency, errors], ignore_index=True)
    df["arm"] = df["arm"].astype("category")
    return df


def test_a_recording_is_the_same_from_a_frame_a_dict_samples_and_parquet(tmp_path: Any) -> None:
    df = frame(minutes=2)
    from_frame = backtest.recording(df)
    as_dict = {c: df[c].to_numpy() for c in df.columns}
    as_dict["arm"] = df["arm"].astype(str).tolist()
    from_dict = backtest.recording(as_dict)
    path = tmp_path / "traffic.parquet"
    df.to_parquet(path)
    from_parquet = backtest.recording(path)
    samples = json.loads(from_frame.to_json())
    from_samples = backtest.recording(samples)
    texts = {r.to_json() for r in (from_frame, from_dict, from_parquet, from_samples)}
    assert len(texts) == 1
    assert len(from_frame) == len(df) and from_frame.start == 0
    first = samples[:2]
    # A latency row carries a value and no counts; an error row counts, no value.
    assert {"value"} <= set(first[0]) and "events" not in first[0]
    assert first[1]["events"] == int(df["events"].iloc[len(df) // 2]) and "value" not in first[1]
    assert pickle.loads(pickle.dumps(from_frame)).to_json() == from_frame.to_json()


def test_the_report_counts_the_outcomes_and_its_interval_is_wilsons() -> None:
    report = backtest.run(POLICY, frame(), candidate="v2", replications=12,
                          block_ms=60_000, seed=5, progress=False)
    rolled = [o for o in report.outcomes if o.get("rollback", {}).get("automated")]
    fr = report.false_rollbacks
    assert fr["count"] == len(rolled) > 0 and fr["of"] == 12
    ci = binomtest(fr["count"], 12).proportion_ci(confidence_level=0.95, method="wilson")
    assert math.isclose(fr["low"], ci.low, abs_tol=1e-12)
    assert math.isclose(fr["high"], ci.high, abs_tol=1e-12)
    assert report.promoted + len(rolled) == 12
    assert report.false_by_gate == {"mean": len(rolled)}
    assert report.markdown.startswith("| measure | result |")
    cols = pd.DataFrame(report.columns())
    assert list(cols["replication"]) == list(range(12))
    assert int(cols["rolled_back"].sum()) == len(rolled)
    assert set(cols.loc[cols["rolled_back"], "rollback_gates"]) == {"mean"}


def test_replications_run_apart_give_the_same_report() -> None:
    rec = backtest.recording(frame())
    spec = backtest.spec(candidate="v2", replications=6, block_ms=60_000, seed=9,
                         inject={"metric": "latency_ms", "change": {"kind": "shift", "delta": 4.0},
                                 "onset_ms": 0, "onset_max_ms": 300_000})
    parts = [rollguard._rollguard.backtest_replication(POLICY, rec, spec, r) for r in (5, 3, 1, 0, 2, 4)]
    whole = backtest.run(POLICY, rec, progress=False, **{k: v for k, v in {
        "candidate": "v2", "replications": 6, "block_ms": 60_000, "seed": 9,
        "inject": spec["inject"]}.items()})
    assert rollguard._rollguard.backtest_report(parts)["outcomes"] == whole.outcomes
    # Each rollback is a false one (before the onset: a mean threshold at 101 fires in
    # the noise) or a detection; the report counts both as the outcomes say.
    early = [o for o in whole.outcomes if "rollback" in o and o["rollback"]["at"] < o["onset"]]
    assert whole.injected and whole.detected["count"] == 6 - len(early) > 0
    assert whole.false_rollbacks["count"] == len(early)


def test_an_injected_regression_is_caught_and_timed() -> None:
    report = backtest.run(
        POLICY, frame(), candidate="v2", replications=4, ack_delay_ms=1000, progress=True,
        inject={"metric": "errors", "change": {"kind": "error_rate", "multiplier": 4.0},
                "onset_ms": 60_000},
    )
    cols = report.columns()
    assert report.detected["count"] == 4
    for onset, at, restored in zip(cols["onset"], cols["rollback_at"], cols["restored_at"]):
        assert onset == 60_000 and at > onset and restored == at + 1000
    assert report.onset_to_restored_ms["min"] == report.detection_delay_ms["min"] + 1000


def test_calibration_loosens_a_threshold_inside_the_noise() -> None:
    c = backtest.calibrate(POLICY, frame(), "mean", target=0.1, candidate="v2",
                           replications=10, block_ms=60_000)
    assert c["parameter"] == "max" and c["configured"]["value"] == 101.0
    assert c["met"] and c["result"]["value"] > 101.0
    assert c["result"]["rate"]["rate"] <= 0.1 < c["configured"]["rate"]["rate"]


def test_refusals_are_config_errors_with_the_core_code_and_path() -> None:
    with pytest.raises(rollguard.ConfigError) as e:
        backtest.run(POLICY, frame(minutes=1), candidate="v9", progress=False)
    assert (e.value.code, e.value.path) == ("unknown_reference", "candidate")
    with pytest.raises(rollguard.ConfigError) as e:
        backtest.run(POLICY, frame(minutes=1), candidate="v2", replications=0, progress=False)
    assert (e.value.code, e.value.path) == ("invalid_value", "replications")
    with pytest.raises(rollguard.ConfigError) as e:
        backtest.run({**POLICY, "stable": "v7"}, frame(minutes=1), candidate="v2")
    assert e.value.code == "unknown_reference"
    # A recording is input: refused as InputError.
    with pytest.raises(rollguard.InputError) as e:
        backtest.recording({"at": [0, 1], "arm": ["v1"], "metric": ["m", "m"], "value": [1.0, 2.0]})
    assert e.value.path == "arm"
    with pytest.raises(rollguard.InputError) as e:
        backtest.recording({"at": [0], "arm": ["v1"], "metric": ["m"], "events": [1.5], "total": [3.0]})
    assert e.value.path == "events[0]"
    with pytest.raises(rollguard.InputError) as e:
        backtest.recording([])
    assert e.value.code == "empty_recording"


def test_the_demo_scenario_s_stable_traffic_backtests_like_the_cli_says() -> None:
    demo = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "demo.json"
    scenario = json.loads(demo.read_text())
    traffic = backtest.Recording.from_scenario(scenario)
    samples = json.loads(traffic.to_json())
    # v1 until v2's promotion, v2 until the breaker's rollback to golden v1, then v1.
    assert {s["arm"] for s in samples} == {"v1", "v2"}
    assert traffic.start == 0 and traffic.end == samples[-1]["at"]
    policy = {k: v for k, v in scenario["config"].items() if k != "candidate"}
    report = backtest.run(policy, traffic, candidate="v2", traffic="duplicate",
                          replications=3, block_ms=600_000, seed=1, progress=False)
    assert report.promoted == 3 and report.false_rollbacks["count"] == 0


def test_drills_play_each_failure_mode() -> None:
    policy = {**POLICY, "versions": POLICY["versions"] + [{"id": "v3", "digest": "sha256:cc"}]}
    policy["gates"] = [{**POLICY["gates"][0], "rule": {"kind": "threshold", "max": 130.0}},
                       POLICY["gates"][1]]
    # A canary long enough for failures from minute 10 to be judged in it.
    policy["strategy"] = {"kind": "canary", "steps": [
        {"kind": "set_weight", "weight": 50, "duration_ms": 1_800_000}]}
    out = backtest.drills(policy, frame(minutes=40), candidate="v2", replications=2)
    by = {r["drill"]["name"]: r for r in out["results"]}
    assert list(by) == ["latency_regression", "error_burst", "quality_drift",
                        "silent_candidate", "bad_candidate_twice"]
    assert by["latency_regression"]["caught"]["count"] == 2
    assert "lower is worse" in by["quality_drift"]["drill"]["skipped"]
    assert by["bad_candidate_twice"]["report"]["outcomes"][0]["then"]["candidate"] == "v3"
    assert "| latency_regression |" in out["markdown"]
