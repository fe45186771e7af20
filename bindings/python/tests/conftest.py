from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CONFIG = {
    "format_version": 1,
    "versions": [
        {"id": "v1", "digest": "sha256:v1", "validated": True},
        {"id": "v2", "digest": "sha256:v2"},
        {"id": "v3", "digest": "sha256:v3"},
        {"id": "v4", "digest": "sha256:v4"},
    ],
    "stable": "v1",
    "candidate": "v2",
    "metrics": [
        {"name": "latency_ms", "kind": "value", "window_ms": 10000, "buckets": 10},
        {"name": "errors", "kind": "count", "window_ms": 10000, "buckets": 10},
    ],
    "gates": [
        {"name": "latency", "metric": "latency_ms", "stat": "mean",
         "rule": {"kind": "threshold", "max": 300}, "persistence": {"consecutive": 2}},
    ],
    "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 100000},
                                             {"kind": "set_weight", "weight": 50, "duration_ms": 100000}]},
    "analysis": {"interval_ms": 5000},
    "safety": {"cooldown_ms": 30000, "breaker": {"max_rollbacks": 5, "window_ms": 3600000}},
}


@pytest.fixture
def config() -> dict:
    import copy

    return copy.deepcopy(CONFIG)
