"""Imports the installed `rollguard` Python package and makes a decision: a candidate
whose mean latency is three times its gate's limit is rolled back to the stable version.
check-publish.sh runs it in a fresh venv that installed the sdist. Prints the version."""

import json
import sys
from importlib.metadata import version
from pathlib import Path

import rollguard

config = json.loads((Path(__file__).parent / "policy.json").read_text())
policy = rollguard.Policy(config, now=0)
seen = []


def take(step: rollguard.Step) -> None:
    for d in step.decisions:
        to = d.fields.get("to")
        seen.append(f"{d.kind}{':' + to if to else ''}@{step.at}")
        if d.action_id is not None:
            policy.command("ack", at=step.at, action_id=d.action_id)


take(policy.tick(0))
for at in range(100, 60_001, 100):
    take(policy.observe_value(at, "v2", "latency_ms", 900.0))
    due = policy.next_deadline()
    if due is not None and due <= at:
        take(policy.tick(at))
expected = "set_weight@0 rollback:v1@10000 escalate@10000"
if " ".join(seen) != expected:
    sys.exit(f"decisions: {' '.join(seen)}\nexpected:  {expected}")
if rollguard.__version__ != version("rollguard"):
    sys.exit(f"rollguard.__version__ {rollguard.__version__} != metadata {version('rollguard')}")
print(f"rollguard {rollguard.__version__} from the sdist: {' '.join(seen)}", file=sys.stderr)
print(rollguard.__version__)
