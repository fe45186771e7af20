"""Benchmark: rollguard.fleet's throughput on a local Ray with 1 and with 2 worker CPUs,
backtesting the bundled demo policy on the demo's own traffic (examples/scenarios/demo.json,
as in the README: candidate v2, duplicate traffic, 10-minute blocks), the null and a p95
latency × 1.5 injection in alternate jobs. Needs the dev requirements (Ray).

    python bindings/python/bench/fleet_scaling.py [--quick] [--jobs 8] [--replications 1000]

Prints a Markdown table: replications per second in one process (``backtest.run``, no
Ray), on Ray with ``num_cpus=1`` and with ``num_cpus=2``, and the scaling ratio. Each Ray
is started fresh and warmed up (its workers started, rollguard imported) before it is
timed; the time is ``fleet.run``'s wall clock (checking the jobs, putting the recording,
the tasks and joining the reports), the median of `--repeat` runs. The reports of the
two configurations are checked to be equal. On shared cores the ratio moves with what
else runs: the load average is printed, and so are the cores the Ray workers actually
got (their CPU seconds over the wall clock, from psutil) and the replications per
worker CPU-second, which show whether the fleet scales with the CPU it is given.
``--quick`` (4 jobs × 100 replications) takes about 20 s, most of it starting Ray twice.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import psutil  # a dependency of ray[default]
import ray

from rollguard import backtest, fleet

DEMO = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "demo.json"
SPEC: Dict[str, Any] = {"candidate": "v2", "traffic": "duplicate", "block_ms": 600_000}
INJECT = {"metric": "latency_ms", "change": {"kind": "ratio", "factor": 1.5},
          "onset_ms": 600_000, "onset_max_ms": 2_400_000}


def demo() -> Tuple[Dict[str, Any], backtest.Recording]:
    scenario = json.loads(DEMO.read_text())
    policy = {k: v for k, v in scenario["config"].items() if k != "candidate"}
    return policy, backtest.Recording.from_scenario(scenario)


def jobs(policy: Dict[str, Any], rec: backtest.Recording, n: int, reps: int) -> List[fleet.Job]:
    out = []
    for i in range(n):
        spec = {**SPEC, "replications": reps, "seed": i + 1}
        if i % 2:
            spec["inject"] = INJECT
        out.append(fleet.Job(f"demo-{i}", policy, rec, spec))
    return out


def worker_cpu() -> float:
    """CPU seconds (user + system) used so far by the worker processes of the Ray this
    process started (its descendants named ``ray::IDLE`` or ``ray::<task>``; not the
    agents, the raylet or another session's workers)."""
    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            name = p.name()
            if name.startswith("ray::") and not name.endswith("Agent"):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def on_ray(
    cpus: int, work: List[fleet.Job], chunk: int, repeat: int
) -> Tuple[float, float, fleet.FleetReport]:
    """The median wall clock of ``repeat`` runs of the fleet, the CPU cores its workers
    obtained on average over the runs (their CPU seconds / wall clock), and its
    report."""
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        # Warm-up: every worker started and rollguard imported in it.
        warm = [fleet.Job("warm", work[0].policy, work[0].samples,
                          {**work[0].spec, "replications": 4 * cpus})]
        fleet.run(warm, chunk_size=1, progress=False)
        times = []
        cpu = worker_cpu()
        for _ in range(repeat):
            started = time.perf_counter()
            result = fleet.run(work, chunk_size=chunk, progress=False)
            times.append(time.perf_counter() - started)
        cores = (worker_cpu() - cpu) / sum(times)
        return statistics.median(times), cores, result
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 jobs × 100 replications")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--replications", type=int, default=1000, help="per job")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per configuration, the median reported (--quick: 1)")
    ap.add_argument("--chunk-size", type=int, default=None,
                    help="replications per task (default: fleet's)")
    args = ap.parse_args()
    n, reps = (4, 100) if args.quick else (args.jobs, args.replications)
    repeat = 1 if args.quick else args.repeat
    policy, rec = demo()
    work = jobs(policy, rec, n, reps)
    total = n * reps
    # The default chunk for a 2-CPU cluster, used for both runs so they split alike.
    chunk = args.chunk_size or max(1, min(fleet.MAX_CHUNK, -(-total // 8)))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"demo: {len(rec)} samples, {rec.end - rec.start} ms; {n} jobs × {reps} replications "
          f"(null and p95 × 1.5 alternating), chunks of {chunk}; "
          f"median of {repeat}; {os.cpu_count()} CPUs, load {load:.2f}; Python {platform.python_version()}, "
          f"Ray {ray.__version__}", file=sys.stderr)

    # One process: an eighth of each job's replications, the same mix.
    single_reps = max(1, reps // 8) * n
    started, cpu = time.perf_counter(), time.process_time()
    for job in work:
        backtest.run(job.policy, rec, progress=False,
                     **{**job.spec, "replications": max(1, reps // 8)})
    single_s = time.perf_counter() - started
    single_cpu = time.process_time() - cpu

    one_s, one_cores, one = on_ray(1, work, chunk, repeat)
    two_s, two_cores, two = on_ray(2, work, chunk, repeat)
    same = all(one[k].to_dict() == two[k].to_dict() for k in one.reports)
    r1, r2 = total / one_s, total / two_s
    print("| run | replications | seconds | replications/s | vs 1 worker "
          "| cores it got | replications per CPU-second |")
    print("|---|---|---|---|---|---|---|")
    print(f"| one process, no Ray (`backtest.run`) | {single_reps} | {single_s:.2f} | "
          f"{single_reps / single_s:.1f} | – | {single_cpu / single_s:.2f} "
          f"| {single_reps / single_cpu:.1f} |")
    print(f"| Ray, 1 worker (num_cpus=1) | {total} | {one_s:.2f} | {r1:.1f} | 1.00 "
          f"| {one_cores:.2f} | {r1 / one_cores:.1f} |")
    print(f"| Ray, 2 workers (num_cpus=2) | {total} | {two_s:.2f} | {r2:.1f} | {r2 / r1:.2f} "
          f"| {two_cores:.2f} | {r2 / two_cores:.1f} |")
    print(f"\nscaling ratio (2 workers / 1): {r2 / r1:.2f}; "
          f"seconds per replication on one worker: {one_s / total:.4f}; "
          f"reports identical across runs: {'yes' if same else 'NO'}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
