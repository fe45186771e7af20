"""A service loop whose rollback policy drives an MLflow registered model's aliases.

    python examples/python/mlflow_service.py --tracking-uri http://127.0.0.1:5000
    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python examples/python/mlflow_service.py

(Start a server with ``mlflow server --backend-store-uri sqlite:///db.sqlite
--default-artifact-root ./art --host 127.0.0.1 --port 5000``.)

The story, in virtual time (milliseconds since the service started), so the run takes
seconds and prints the same decisions every time:

1. two versions of the model are logged (a run and an artifact each) and registered;
   version 1 gets the ``champion`` alias; the policy is bootstrapped from the registry;
2. version 2 is rolled out: ``challenger`` (50 % of traffic, tag ``rollguard.weight``);
   it passes its canary and is promoted: ``champion`` → 2, ``previous`` → 1;
3. at full traffic its latency doubles; the post-promotion bake catches it and rolls
   back: ``champion`` → 1;
4. the service "restarts": a new rollout is restored from the last snapshot and
   reconciled with the registry's aliases.

Serving code would load ``models:/<name>@champion`` and ``@challenger``; this script
only prints what it would route. The policy decides everything; the integration moves
the aliases and acknowledges each action (``rollguard.integrations.mlflow``).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from typing import Any, Dict, List

from mlflow import MlflowClient

from rollguard.integrations.mlflow import Applied, MlflowRollout

POLICY: Dict[str, Any] = {
    "format_version": 1,
    "name": "mlflow-service",
    # versions and stable come from the registry (MlflowRollout.bootstrap)
    "versions": [],
    "stable": "",
    "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000}],
    "gates": [
        {"name": "p95_latency", "metric": "latency_ms", "stat": "p95",
         "rule": {"kind": "threshold", "max": 200.0}, "samples_min": 10},
    ],
    "strategy": {"kind": "canary",
                 "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 120000}],
                 "post_promotion_bake_ms": 600000},
    "analysis": {"interval_ms": 30000},
}

SCRAPE_MS = 10_000


def clock(ms: int) -> str:
    s = ms // 1000
    return f"{s // 3600:02}:{s // 60 % 60:02}:{s % 60:02}"


def log_version(client: MlflowClient, name: str, text: str) -> str:
    """Logs a 'model' (one artifact) in a run and registers it; returns its version."""
    experiment = client.get_experiment_by_name("Default")
    run = client.create_run(experiment.experiment_id if experiment else "0")
    client.log_text(run.info.run_id, text, "model/weights.txt")
    client.set_terminated(run.info.run_id)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return str(mv.version)


def report(applied: List[Applied]) -> None:
    for a in applied:
        d = a.decision
        moves = ", ".join(f"{alias} -> {v if v is not None else '(removed)'}" for alias, v in a.aliases.items())
        what = f"{d.kind} ({d.reason})"
        if d.kind == "rollback":
            fields = d.to_dict()
            what += f" {fields['from']} -> {fields['to']}"
        print(f"[{clock(d.at)}] {what}: {a.outcome}{'; ' + moves if moves else ''}{'; ' + a.error if a.error else ''}")


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                        help="MLflow tracking server (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument("--model-name", default="rollguard-demo")
    parser.add_argument("--quick", action="store_true", help="fewer samples per scrape (for tests)")
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("give --tracking-uri or set MLFLOW_TRACKING_URI")
    per_scrape = 5 if args.quick else 50

    client = MlflowClient(args.tracking_uri)
    name = args.model_name
    if client.search_registered_models(filter_string=f"name = '{name}'"):
        client.delete_registered_model(name)  # a rerun starts from scratch
    client.create_registered_model(name)
    v1 = log_version(client, name, "weights of the current model")
    v2 = log_version(client, name, "weights of the new model")
    client.set_registered_model_alias(name, "champion", v1)
    print(f"registered {name} versions {v1} and {v2}; champion -> {v1}")

    snapshots: List[Dict[str, Any]] = []
    rollout = MlflowRollout.bootstrap(client, name, POLICY, now=0, persist=snapshots.append)
    print(f"bootstrapped: policy aliases {rollout.policy.status().aliases}")
    rollout.register(v2, at=0)
    report(rollout.command("start_rollout", at=60_000, version=v2))

    rng = random.Random(7)
    promoted_at = None
    for now in range(60_000, 1_200_000, SCRAPE_MS):
        live = rollout.policy.status().aliases
        arms = [live["stable"]] + ([live["candidate"]] if "candidate" in live else [])
        if promoted_at is None and live["stable"] == v2:
            promoted_at = now
        samples = []
        for arm in arms:
            # Version 2 slows down at full traffic, three minutes after its promotion.
            slow = arm == v2 and promoted_at is not None and now >= promoted_at + 180_000
            mean = 240.0 if slow else 120.0
            samples += [{"at": now, "arm": arm, "metric": "latency_ms",
                         "value": rng.gauss(mean, 12.0)} for _ in range(per_scrape)]
        report(rollout.observe_batch(samples))

    print(f"registry aliases: {rollout.registry_aliases()}")

    # A restart: the policy comes back from its last snapshot, checked against the registry.
    restored, reconciled = MlflowRollout.restore(client, name, snapshots[-1])
    print(f"restored: {reconciled.outcome}; policy aliases {restored.policy.status().aliases}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
