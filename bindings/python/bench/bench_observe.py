"""Benchmark: rollguard's per-call observe overhead and observe_many throughput, side by
side with river's drift detectors (PageHinkley, ADWIN) updated per sample on the same
stream. Not part of CI; needs `pip install river` next to the dev requirements.

    python bindings/python/bench/bench_observe.py [--n 200000] [--repeat 5]

Reports the median of `repeat` runs, in ns per sample, and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict

import numpy as np

from rollguard import Policy

CONFIG = {
    "format_version": 1,
    "versions": [{"id": "v1", "digest": "sha256:v1", "validated": True}, {"id": "v2", "digest": "sha256:v2"}],
    "stable": "v1",
    "candidate": "v2",
    "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 60}],
    "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
               "rule": {"kind": "threshold", "max": 300}, "samples_min": 20}],
    "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 10, "duration_ms": 10_000_000}]},
    "analysis": {"interval_ms": 10000},
}


def stream(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    values = rng.normal(120.0, 12.0, n)
    values[n // 2:] *= 1.5  # a step change half way: work for the drift detectors
    at = np.arange(n, dtype=np.int64) * 2  # 2 ms apart
    return at, values


def fresh() -> Policy:
    p = Policy(CONFIG)
    p.tick(0)
    return p


def run_observe_value(at: np.ndarray, values: np.ndarray) -> float:
    p = fresh()
    ats, vs = at.tolist(), values.tolist()
    obs = p.observe_value
    t = time.perf_counter()
    for a, v in zip(ats, vs):
        obs(a, "v1", "latency_ms", v)
    return time.perf_counter() - t


def run_observe_dict(at: np.ndarray, values: np.ndarray) -> float:
    p = fresh()
    samples = [{"at": a, "arm": "v1", "metric": "latency_ms", "value": v} for a, v in zip(at.tolist(), values.tolist())]
    t = time.perf_counter()
    for s in samples:
        p.observe(s)
    return time.perf_counter() - t


def run_observe_many(at: np.ndarray, values: np.ndarray, batch: int) -> float:
    p = fresh()
    t = time.perf_counter()
    for i in range(0, len(at), batch):
        p.observe_many("v1", "latency_ms", at[i:i + batch], values[i:i + batch])
    return time.perf_counter() - t


def run_river(make: Callable[[], object], values: np.ndarray) -> float:
    det = make()
    update = det.update  # type: ignore[attr-defined]
    vs = values.tolist()
    t = time.perf_counter()
    for v in vs:
        update(v)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    at, values = stream(args.n)
    cases: Dict[str, Callable[[], float]] = {
        "rollguard observe_value (per call)": lambda: run_observe_value(at, values),
        "rollguard observe(dict) (per call)": lambda: run_observe_dict(at, values),
        "rollguard observe_many (batch 1000)": lambda: run_observe_many(at, values, 1000),
        "rollguard observe_many (one batch)": lambda: run_observe_many(at, values, len(at)),
    }
    try:
        from river import drift

        cases["river drift.PageHinkley.update"] = lambda: run_river(drift.PageHinkley, values)
        cases["river drift.ADWIN.update"] = lambda: run_river(drift.ADWIN, values)
    except ImportError:
        print("river is not installed: `pip install river` to compare")
    medians: Dict[str, float] = {}
    print(f"{args.n} samples, median of {args.repeat} runs")
    for name, fn in cases.items():
        runs = [fn() for _ in range(args.repeat)]
        medians[name] = statistics.median(runs) / args.n * 1e9
        print(f"  {name:40s} {medians[name]:9.1f} ns/sample  ({1e9 / medians[name] / 1e6:7.2f} M samples/s)")
    batch = medians["rollguard observe_many (one batch)"]
    for ref in ("river drift.PageHinkley.update", "river drift.ADWIN.update", "rollguard observe_value (per call)"):
        if ref in medians:
            print(f"  observe_many (one batch) is {medians[ref] / batch:6.1f}x faster than {ref}")
    if "river drift.PageHinkley.update" in medians:
        b1000 = medians["rollguard observe_many (batch 1000)"]
        print(f"  observe_many (batch 1000) is {medians['river drift.PageHinkley.update'] / b1000:6.1f}x faster than PageHinkley")


if __name__ == "__main__":
    main()
