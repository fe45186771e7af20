"""rollguard.fleet on a local two-CPU Ray: every job's result is the single-process
one bit for bit, the job names map to the right rows, and bad jobs are refused before
anything is submitted."""

from __future__ import annotations

import sys
from typing import Any, Dict, Iterator, List

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
import ray
from test_backtest import POLICY, frame

import rollguard
from rollguard import backtest, fleet


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


# A stricter variant: the mean threshold inside the noise rolls good versions back.
STRICT: Dict[str, Any] = {**POLICY, "gates": [
    {**POLICY["gates"][0], "rule": {"kind": "threshold", "max": 100.5}}, POLICY["gates"][1]]}
SHIFT = {"metric": "latency_ms", "change": {"kind": "shift", "delta": 4.0},
         "onset_ms": 0, "onset_max_ms": 300_000}


def test_a_fleet_s_reports_equal_the_single_process_runs(monkeypatch: Any) -> None:
    quiet = frame(minutes=12, seed=3)
    other = backtest.recording(frame(minutes=12, seed=4))
    jobs = [
        # 7 replications in chunks of 3: 3 + 3 + 1.
        fleet.Job("null", POLICY, quiet, {"candidate": "v2", "replications": 7,
                                          "block_ms": 60_000, "seed": 5}),
        fleet.Job("shift", POLICY, quiet, {"candidate": "v2", "replications": 5,
                                           "block_ms": 60_000, "seed": 9, "inject": SHIFT}),
        fleet.Job("strict", STRICT, other, {"candidate": "v2", "replications": 4,
                                            "traffic": "duplicate", "ack_delay_ms": 500}),
    ]
    puts: List[Any] = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: puts.append(value) or real_put(value))
    result = fleet.run(jobs, chunk_size=3, progress=False)
    monkeypatch.undo()
    # One copy of each distinct recording in the object store, shared by its jobs.
    assert len(puts) == 2 and all(isinstance(p, rollguard.Recording) for p in puts)
    assert list(result.reports) == ["null", "shift", "strict"] and len(result) == 3
    single = {j.name: backtest.run(j.policy, j.samples, progress=False, **j.spec) for j in jobs}
    for name, report in single.items():
        assert result[name].to_dict() == report.to_dict()
        assert result[name].markdown == report.markdown
        assert result[name].columns() == report.columns()
    assert result["shift"].injected and not result["null"].injected
    assert result["strict"].false_rollbacks["count"] > 0
    # One table: each job's rows are its report's columns, in the jobs' order.
    table = result.columns()
    assert set(table) == {"job", *single["null"].columns()}
    assert table["job"] == ["null"] * 7 + ["shift"] * 5 + ["strict"] * 4
    for name, report in single.items():
        rows = {k: [v for v, j in zip(values, table["job"]) if j == name]
                for k, values in table.items() if k != "job"}
        assert rows == report.columns()
    assert len(pd.DataFrame(table)) == pa.table(table).num_rows == 16
    summary = pd.DataFrame(result.summary()).set_index("job")
    assert summary.loc["strict", "false_rollbacks.count"] == single["strict"].false_rollbacks["count"]
    assert summary.loc["shift", "detected.count"] == single["shift"].detected["count"]
    assert pd.isna(summary.loc["null", "detected.count"])
    assert result.replications == 16
    # Ray, started by the caller, is left running.
    assert ray.is_initialized()


def test_the_default_chunks_and_a_progress_bar_give_the_same_report() -> None:
    rec = backtest.recording(frame(minutes=12))
    spec = {"candidate": "v2", "replications": 9, "block_ms": 60_000, "seed": 2}
    jobs = [fleet.Job("", POLICY, rec, spec), fleet.Job("", STRICT, rec, spec)]
    result = fleet.run(jobs, progress=True)
    # Unnamed jobs are named by their index.
    assert list(result.reports) == ["0", "1"]
    assert result["1"].to_dict() == backtest.run(STRICT, rec, progress=False, **spec).to_dict()
    one_each = fleet.run(jobs, chunk_size=1, progress=False)
    assert one_each["0"].to_dict() == result["0"].to_dict()


def test_calibrations_and_drills_equal_the_single_process_ones() -> None:
    quiet = frame(minutes=12)
    spec = {"candidate": "v2", "replications": 6, "block_ms": 60_000}
    jobs = [fleet.Job("a", POLICY, quiet, spec), fleet.Job("b", STRICT, quiet, {**spec, "seed": 3})]
    cal = fleet.calibrate(jobs, "mean", target=0.2, progress=False)
    for j in jobs:
        assert cal[j.name] == backtest.calibrate(j.policy, quiet, "mean", target=0.2, **j.spec)
    table = cal.columns()
    assert table["job"] == ["a", "b"] and table["gate"] == ["mean", "mean"]
    assert table["value"] == [cal[n]["result"]["value"] for n in ("a", "b")]
    assert pa.table(table).num_rows == 2
    # A gate per job.
    by_job = fleet.calibrate(jobs[:1], {"a": "mean"}, target=0.2, progress=False)
    assert by_job["a"] == cal["a"]

    policy = {**POLICY, "versions": POLICY["versions"] + [{"id": "v3", "digest": "sha256:cc"}],
              "strategy": {"kind": "canary", "steps": [
                  {"kind": "set_weight", "weight": 50, "duration_ms": 1_800_000}]}}
    long = frame(minutes=40)
    drill_jobs = [fleet.Job("x", policy, long, {"candidate": "v2", "replications": 1}),
                  fleet.Job("y", policy, long, {"candidate": "v2", "replications": 1, "seed": 7})]
    out = fleet.drills(drill_jobs, progress=False)
    for j in drill_jobs:
        assert out[j.name] == backtest.drills(j.policy, long, **j.spec)
    rows = pd.DataFrame(out.columns())
    names = [r["drill"]["name"] for r in out["x"]["results"]]
    assert list(rows["job"]) == ["x"] * len(names) + ["y"] * len(names)
    assert list(rows["drill"]) == names * 2
    caught = rows.set_index(["job", "drill"])["caught"]
    assert caught["y", "latency_regression"] == out["y"]["results"][0]["caught"]["count"]


def test_bad_jobs_are_refused_before_anything_is_submitted(monkeypatch: Any) -> None:
    def no_tasks(*args: Any) -> Any:
        raise AssertionError("a task was submitted")

    monkeypatch.setattr(fleet, "_remote", no_tasks)
    rec = backtest.recording(frame(minutes=2))
    good = fleet.Job("good", POLICY, rec, {"candidate": "v2"})
    with pytest.raises(rollguard.ConfigError) as e:
        fleet.run([good, fleet.Job("v9", POLICY, rec, {"candidate": "v9"})])
    assert (e.value.code, e.value.path) == ("unknown_reference", "candidate")
    assert getattr(e.value, "job") == "v9" and str(e.value).startswith("job 'v9': ")
    with pytest.raises(rollguard.ConfigError) as e:
        fleet.run([good, fleet.Job("noise", POLICY, rec, {"candidate": "v2", "inject": {
            "metric": "cost", "change": {"kind": "shift", "delta": 1.0}}})])
    assert (e.value.path, getattr(e.value, "job")) == ("inject.metric", "noise")
    with pytest.raises(rollguard.ConfigError, match="job 'zero'") as e:
        fleet.run([fleet.Job("zero", POLICY, rec, {"candidate": "v2", "replications": 0})])
    assert e.value.path == "replications"
    with pytest.raises(rollguard.ConfigError, match="job 'stable'"):
        fleet.run([fleet.Job("stable", {**POLICY, "stable": "v7"}, rec, {"candidate": "v2"})])
    with pytest.raises(rollguard.InputError, match="job 'empty'") as e:
        fleet.run([good, fleet.Job("empty", POLICY, [], {})])
    assert e.value.code == "empty_recording"
    with pytest.raises(TypeError, match="job 'typo'.*replicatons"):
        fleet.run([fleet.Job("typo", POLICY, rec, {"replicatons": 3})])
    with pytest.raises(ValueError, match="both named 'good'"):
        fleet.run([good, good])
    with pytest.raises(TypeError, match=r"jobs\[1\] is a dict"):
        fleet.run([good, {"name": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no jobs"):
        fleet.run([])
    with pytest.raises(ValueError, match="chunk_size"):
        fleet.run([good], chunk_size=0)
    with pytest.raises(rollguard.ConfigError, match="job 'good'") as e:
        fleet.calibrate([good], "nope")
    assert (e.value.code, e.value.path) == ("unknown_reference", "gate")
    with pytest.raises(rollguard.ConfigError) as e:
        fleet.calibrate([good], "mean", target=1.5)
    assert e.value.path == "target"
    with pytest.raises(ValueError, match="no gate named for job 'good'"):
        fleet.calibrate([good], {"other": "mean"})
    with pytest.raises(TypeError, match="no inject"):
        fleet.drills([fleet.Job("d", POLICY, rec, {"candidate": "v2", "inject": SHIFT})])


def test_importing_rollguard_does_not_import_ray() -> None:
    import subprocess

    code = "import sys, rollguard, rollguard.backtest; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_is_started_only_when_not_initialised(monkeypatch: Any) -> None:
    calls: List[Any] = []

    class Ray:
        def __init__(self, up: bool) -> None:
            self.up = up

        def is_initialized(self) -> bool:
            return self.up

        def init(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    monkeypatch.setattr(fleet, "_RAY", Ray(up=True))
    fleet._connect("ray://elsewhere:10001", {"num_cpus": 1})
    assert calls == []  # the caller's Ray is used as it is
    monkeypatch.setattr(fleet, "_RAY", Ray(up=False))
    fleet._connect(None, None)
    fleet._connect("ray://head:10001", {"runtime_env": {"pip": ["rollguard"]}})
    # address=None: ray.init reads RAY_ADDRESS, else starts a local Ray.
    assert calls == [{"address": None},
                     {"address": "ray://head:10001", "runtime_env": {"pip": ["rollguard"]}}]
