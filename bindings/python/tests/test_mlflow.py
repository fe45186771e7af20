"""rollguard.integrations.mlflow against a real MLflow tracking server.

A module-scoped fixture starts ``mlflow server`` on a free port with a temporary SQLite
backend and artifact folder, waits for /health, and kills the server's process group
(the server and its huey consumer) at the end. No mocks: every alias and tag is read
back from the server. Each test uses its own registered model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from rollguard import Policy  # noqa: E402
from rollguard.integrations.mlflow import (  # noqa: E402
    TAG_VALIDATED,
    TAG_WEIGHT,
    Applied,
    MlflowRollout,
    ReconcileError,
)

REPO = Path(__file__).resolve().parents[3]

CONFIG: Dict[str, Any] = {
    "format_version": 1,
    "name": "mlflow-test",
    "versions": [],
    "stable": "",
    "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000}],
    "gates": [
        {"name": "p95_latency", "metric": "latency_ms", "stat": "p95",
         "rule": {"kind": "threshold", "max": 200.0}, "samples_min": 5},
    ],
    "strategy": {"kind": "canary",
                 "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 60000}],
                 "post_promotion_bake_ms": 60000},
    "analysis": {"interval_ms": 30000},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "wb")
    # One worker and no job executor (its huey consumer): less to start on a busy
    # machine. The server still runs in its own session, and the whole process group
    # is killed at the end.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server",
         "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
         "--default-artifact-root", str(root / "art"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health in 120 s")
            time.sleep(0.3)
        yield uri
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def client(tracking_uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri)


_models = iter(range(1_000_000))


def make_model(client: MlflowClient, versions: int, **aliases: str) -> str:
    """A registered model with ``versions`` versions (each from its own run with a
    logged artifact) and the given aliases."""
    name = f"model-{next(_models)}"
    client.create_registered_model(name)
    experiment = client.get_experiment_by_name("Default")
    for i in range(versions):
        run = client.create_run(experiment.experiment_id if experiment else "0")
        client.log_text(run.info.run_id, f"weights {i}", "model/weights.txt")
        client.set_terminated(run.info.run_id)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    for alias, version in aliases.items():
        client.set_registered_model_alias(name, alias, version)
    return name


def aliases(client: MlflowClient, name: str) -> Dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}


def feed(rollout: MlflowRollout, start: int, end: int, latency: Dict[str, float]) -> List[Applied]:
    """Five latency samples per live arm every 10 s in [start, end)."""
    out: List[Applied] = []
    for t in range(start, end, 10_000):
        live = rollout.policy.status().aliases
        arms = {live["stable"]} | ({live["candidate"]} if "candidate" in live else set())
        out += rollout.observe_batch([
            {"at": t, "arm": arm, "metric": "latency_ms", "value": latency.get(arm, 100.0) + i}
            for arm in sorted(arms) for i in range(5)
        ])
    return out


def actions(applied: List[Applied]) -> List[Applied]:
    """The decisions with an action id."""
    return [a for a in applied if a.outcome != "noted"]


def kinds(applied: List[Applied]) -> List[str]:
    """The actions and what became of them."""
    return [f"{a.decision.kind}:{a.outcome}" for a in actions(applied)]


def started(client: MlflowClient, name: str, **kw: Any) -> MlflowRollout:
    """Champion 1 bootstrapped, version 2 registered and rolled out at 50 %."""
    rollout = MlflowRollout.bootstrap(client, name, CONFIG, now=0, **kw)
    rollout.register("2", at=1000)
    assert kinds(rollout.command("start_rollout", at=2000, version="2")) == ["set_weight:acked"]
    return rollout


def test_bootstrap_and_promote(client: MlflowClient) -> None:
    name = make_model(client, 2, champion="1", previous="2")
    rollout = MlflowRollout.bootstrap(client, name, CONFIG, now=0)
    # The registry mirrors the policy: previous cannot be recovered without a snapshot.
    assert aliases(client, name) == {"champion": "1", "golden": "1"}
    assert rollout.policy.versions()[0]["digest"] == f"mlflow:{name}/1"
    rollout.register("2", at=1000)
    applied = rollout.command("start_rollout", at=2000, version="2")
    assert kinds(applied) == ["set_weight:acked"]
    assert applied[0].aliases == {"challenger": "2"}
    assert aliases(client, name) == {"champion": "1", "challenger": "2", "golden": "1"}
    assert client.get_model_version(name, "2").tags[TAG_WEIGHT] == "50"

    applied = feed(rollout, 10_000, 80_000, {})
    assert kinds(applied) == ["promote:acked"]
    assert actions(applied)[0].aliases == {"previous": "1", "champion": "2", "challenger": None}
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}
    assert rollout.policy_aliases() == aliases(client, name)
    feed(rollout, 80_000, 150_000, {})
    assert rollout.policy.status().phase is None  # completed
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}


def test_rollback_before_and_after_promotion(client: MlflowClient) -> None:
    name = make_model(client, 3, champion="1")
    rollout = started(client, name)
    applied = feed(rollout, 10_000, 110_000, {"2": 500.0})
    assert kinds(applied) == ["rollback:acked"]
    assert actions(applied)[0].decision.to_dict()["to"] == "1"
    assert actions(applied)[0].aliases == {"challenger": None}
    assert aliases(client, name) == {"champion": "1", "golden": "1"}

    # Version 3 is promoted, then fails its post-promotion bake: back to 1.
    rollout.register("3", at=3_000_000)
    rollout.command("start_rollout", at=3_000_000, version="3")
    assert kinds(feed(rollout, 3_010_000, 3_070_000, {})) == ["promote:acked"]
    assert aliases(client, name) == {"champion": "3", "previous": "1", "golden": "1"}
    applied = feed(rollout, 3_070_000, 3_200_000, {"3": 500.0})
    assert kinds(applied) == ["rollback:acked"]
    assert aliases(client, name) == {"champion": "1", "golden": "1"}
    assert rollout.policy_aliases() == aliases(client, name)


def test_rollback_to_golden_and_mark_validated(client: MlflowClient) -> None:
    name = make_model(client, 3, champion="2", golden="1")
    rollout = MlflowRollout.bootstrap(client, name, CONFIG, now=0)
    assert rollout.policy.status().aliases == {"stable": "2", "golden": "1"}
    assert aliases(client, name) == {"champion": "2", "golden": "1"}
    rollout.register("3", at=1000)
    rollout.command("start_rollout", at=2000, version="3")
    applied = rollout.command("revert_now", at=3000, target="golden")
    assert kinds(applied) == ["rollback:acked"]
    assert applied[0].decision.to_dict()["to"] == "1"
    # The core's aliases after the rollback: 2 held stable before 1, so it is previous.
    assert rollout.policy.status().aliases == {"stable": "1", "previous": "2", "golden": "1"}
    assert aliases(client, name) == {"champion": "1", "previous": "2", "golden": "1"}

    # mark_validated: the policy's golden moves to 2, so does the alias; the tag records when.
    rollout.mark_validated("2", at=1_700_000_000_000)
    assert rollout.policy.status().aliases["golden"] == "2"
    assert aliases(client, name) == {"champion": "1", "previous": "2", "golden": "2"}
    assert client.get_model_version(name, "2").tags[TAG_VALIDATED] == "2023-11-14T22:13:20+00:00"


class Crash(BaseException):
    """A process dying: not an Exception, so nothing catches it."""


def test_restart_after_applied_not_acked(client: MlflowClient) -> None:
    name = make_model(client, 2, champion="1")
    saved: List[Dict[str, Any]] = []
    crash = {"router": False}

    def router(table: Any) -> None:
        if crash["router"] and table["mode"] == "promoted":
            raise Crash()  # after the alias moves, before the ack

    rollout = started(client, name, router=router, persist=saved.append)
    crash["router"] = True
    with pytest.raises(Crash):
        feed(rollout, 10_000, 80_000, {})
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}
    snapshot = saved[-1]
    assert Policy.restore(snapshot).status().pending_action is not None

    restored, report = MlflowRollout.restore(client, name, snapshot)
    assert report.outcome == "acked"
    assert restored.policy.status().pending_action is None
    assert restored.policy.status().aliases == {"stable": "2", "previous": "1", "golden": "1"}
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}
    # It continues: the bake completes.
    feed(restored, 80_000, 150_000, {})
    assert restored.policy.status().phase is None


def test_restart_not_applied_half_applied_and_conflicting(client: MlflowClient) -> None:
    name = make_model(client, 3, champion="1")
    saved: List[Dict[str, Any]] = []

    def persist(snapshot: Dict[str, Any]) -> None:
        saved.append(snapshot)
        if Policy.restore(snapshot).status().pending_action is not None and len(saved) > 3:
            raise Crash()  # the snapshot is stored, the registry not yet written

    rollout = started(client, name, persist=persist)
    with pytest.raises(Crash):
        feed(rollout, 10_000, 80_000, {})
    snapshot = saved[-1]
    assert aliases(client, name) == {"champion": "1", "challenger": "2", "golden": "1"}

    # Nothing applied: applied again, then acknowledged.
    restored, report = MlflowRollout.restore(client, name, snapshot)
    assert report.outcome == "reapplied"
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}
    assert restored.policy.status().aliases == {"stable": "2", "previous": "1", "golden": "1"}

    # Half applied (previous moved, champion not): completed.
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    _, report = MlflowRollout.restore(client, name, snapshot)
    assert report.outcome == "reapplied"
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}

    # Champion moved by hand to a version neither state has: a clear error, or force.
    client.set_registered_model_alias(name, "champion", "3")
    with pytest.raises(ReconcileError) as e:
        MlflowRollout.restore(client, name, snapshot)
    assert e.value.differences["champion"] == ("3", "2")
    assert "champion: registry 3, policy 2" in str(e.value)
    _, report = MlflowRollout.restore(client, name, snapshot, force=True)
    assert report.outcome == "forced"
    assert aliases(client, name) == {"champion": "2", "previous": "1", "golden": "1"}

    # No pending action: the aliases must match the snapshot.
    done = saved[3]
    assert Policy.restore(done).status().pending_action is None
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    client.delete_registered_model_alias(name, "previous")
    restored, report = MlflowRollout.restore(client, name, done)
    assert report.outcome == "in_sync"
    client.set_registered_model_alias(name, "golden", "3")
    with pytest.raises(ReconcileError, match="no action is pending"):
        MlflowRollout.restore(client, name, done)


def test_mlflow_failure_becomes_action_failed(client: MlflowClient) -> None:
    name = make_model(client, 2, champion="1")
    rollout = started(client, name)
    client.delete_model_version(name, "2")  # the candidate disappears from the registry
    applied = feed(rollout, 10_000, 80_000, {})
    failed = [a for a in applied if a.outcome == "failed"]
    assert [a.decision.kind for a in failed] == ["promote"]
    assert failed[0].error is not None and "RESOURCE_DOES_NOT_EXIST" in failed[0].error
    escalations = [a.decision for a in applied if a.decision.kind == "escalate"]
    assert escalations and escalations[0].reason == "action_failed"
    status = rollout.policy.status()
    assert status.halted == "action_failed" and status.pending_action is None
    assert status.aliases["stable"] == "1"
    # The registry still serves the old champion; nothing half-moved is left behind.
    assert aliases(client, name) == {"champion": "1", "golden": "1"}
    # A restart sees the candidate gone from the registry.
    with pytest.raises(ReconcileError) as e:
        MlflowRollout.restore(client, name, rollout.snapshot())
    assert e.value.differences == {"challenger": (None, "2")}


def test_bootstrap_needs_a_champion(client: MlflowClient) -> None:
    name = make_model(client, 1)
    with pytest.raises(ValueError, match="no 'champion' alias"):
        MlflowRollout.bootstrap(client, name, CONFIG, now=0)


def test_import_rollguard_does_not_import_mlflow() -> None:
    code = ("import sys, rollguard, rollguard.integrations.mlflow; "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_example_service_runs(tracking_uri: str) -> None:
    script = REPO / "examples" / "python" / "mlflow_service.py"
    out = subprocess.run(
        [sys.executable, str(script), "--tracking-uri", tracking_uri, "--model-name", "example-service", "--quick"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    assert "promote" in out and "champion -> 2" in out
    assert "rollback" in out
    assert "restored: in_sync" in out
