"""Backtests, drills and calibrations of many policies on many recordings, on Ray.

A fleet is a list of :class:`Job` s: a policy, a recording and the keyword arguments of
:func:`rollguard.backtest.spec`. :func:`run` backtests every job, splitting each job's
replications into tasks of ``chunk_size`` and joining each job's outcomes into the
:class:`~rollguard.backtest.Report` that ``backtest.run`` returns for it, bit for bit
(replication ``r`` of seed ``s`` is the same in any process). :func:`calibrate` and
:func:`drills` run one task per job. Every number is the Rust core's; this module only
checks the jobs, hands them to Ray and gathers the results into one table.

Ray: when it is not initialised, ``ray.init(address, **ray_init)`` connects to
``address`` (or ``RAY_ADDRESS``; ``"ray://head:10001"`` for a remote cluster) or starts
Ray on this machine, and leaves it running for the next call. A Ray the caller started
is used as it is and never shut down. Each distinct recording goes into the object store
once (``ray.put``) and is shared by all its jobs' tasks; tasks carry the policy's JSON and
the checked spec. Workers need ``rollguard`` installed (``pip install 'rollguard[fleet]'``
in the cluster's image, or a ``runtime_env``). See ``docs/fleet.md``.

Example::

    import pandas as pd
    from rollguard import fleet

    traffic = {name: pd.read_parquet(f"{name}.parquet") for name in ("eu", "us")}
    jobs = [fleet.Job(f"{p}/{t}", policies[p], traffic[t],
                      spec={"candidate": "v2", "replications": 200, "block_ms": 600_000})
            for p in policies for t in traffic]
    result = fleet.run(jobs)                       # ray.init() here, or address="ray://…"
    per_job = pd.DataFrame(result.summary())       # one row per job
    outcomes = pd.DataFrame(result.columns())      # one row per job × replication
    print(result["strict/eu"].markdown)
"""

from __future__ import annotations

import importlib
import math
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from rollguard._rollguard import Recording, RollguardError, backtest_check_calibration
from rollguard import backtest
from rollguard.backtest import Report, Samples
from rollguard.types import PolicyConfigDict

__all__ = ["Job", "FleetReport", "FleetResults", "run", "calibrate", "drills"]

T = TypeVar("T")


def _import_ray() -> Any:
    # Ray ships inline types, but its API is dynamic (``@ray.remote`` objects, ``.remote``
    # calls): it is used through this untyped handle, the boundary of the typed module.
    try:
        return importlib.import_module("ray")
    except ImportError as e:  # pragma: no cover - ray is in the dev requirements
        raise ImportError(
            "rollguard.fleet runs on Ray: pip install 'rollguard[fleet]' (or ray[default])"
        ) from e


_RAY = _import_ray()

#: The most replications one task runs when ``chunk_size`` is not given.
MAX_CHUNK = 64


@dataclass(frozen=True)
class Job:
    """One backtest (or drill or calibration) of a fleet.

    ``policy`` is a policy config (dict or JSON). ``samples`` is anything
    :func:`rollguard.backtest.recording` takes (a ``Recording``, a DataFrame, a dict of
    numpy columns, a Parquet path); jobs that pass the same object (or path) share one
    copy of it in Ray's object store. ``spec`` holds :func:`rollguard.backtest.spec`'s
    keyword arguments (``candidate``, ``replications``, ``seed``, ``block_ms``,
    ``inject``, ...). ``name`` identifies the job in the results (its index in the list
    when empty); names are unique.
    """

    name: str
    policy: Union[PolicyConfigDict, str]
    samples: Samples
    spec: Mapping[str, Any] = field(default_factory=dict)


class FleetReport:
    """The backtests of a fleet: a :class:`~rollguard.backtest.Report` per job (in
    :attr:`reports`, by name, in the jobs' order; ``result[name]``), every outcome as
    one table (:meth:`columns`) and one row per job (:meth:`summary`)."""

    def __init__(self, reports: Dict[str, Report], seconds: float) -> None:
        self.reports = reports
        #: Wall-clock seconds from the first task submitted to the last result.
        self.seconds = seconds

    def __getitem__(self, name: str) -> Report:
        return self.reports[name]

    def __len__(self) -> int:
        return len(self.reports)

    @property
    def replications(self) -> int:
        """Replications run, over all jobs."""
        return sum(len(r.outcomes) for r in self.reports.values())

    def columns(self) -> Dict[str, List[Any]]:
        """One row per job and replication: ``job`` and every column of
        :meth:`Report.columns <rollguard.backtest.Report.columns>`
        (``pandas.DataFrame(result.columns())``)."""
        return _stack((name, r.columns()) for name, r in self.reports.items())

    def summary(self) -> Dict[str, List[Any]]:
        """One row per job: ``job`` and each report's summary flattened
        (``false_rollbacks.count``, ``false_rollbacks.low``, ``detected.count``,
        ``detection_delay_ms.median``, ...); ``None`` where a job's report has no such
        entry (no injection: no detections)."""
        return _stack(
            (name, {k: [v] for k, v in _flatten(r.summary).items()})
            for name, r in self.reports.items()
        )

    def __repr__(self) -> str:
        return (
            f"FleetReport({len(self.reports)} jobs, {self.replications} replications, "
            f"{self.seconds:.1f} s)"
        )


class FleetResults:
    """The calibrations or drills of a fleet: each job's result as
    :func:`rollguard.backtest.calibrate` or :func:`rollguard.backtest.drills` returns it
    (in :attr:`results`, by name; ``result[name]``), and as one table
    (:meth:`columns`)."""

    def __init__(
        self,
        results: Dict[str, Dict[str, Any]],
        rows: Callable[[Dict[str, Any]], Dict[str, List[Any]]],
        seconds: float,
    ) -> None:
        self.results = results
        self._rows = rows
        #: Wall-clock seconds from the first task submitted to the last result.
        self.seconds = seconds

    def __getitem__(self, name: str) -> Dict[str, Any]:
        return self.results[name]

    def __len__(self) -> int:
        return len(self.results)

    def columns(self) -> Dict[str, List[Any]]:
        """One row per job (a calibration: its parameter, the configured and the
        calibrated value with their rates, whether the target is met) or per job and
        drill (whether and how fast the drill was caught), with a ``job`` column."""
        return _stack((name, self._rows(r)) for name, r in self.results.items())

    def __repr__(self) -> str:
        return f"FleetResults({len(self.results)} jobs, {self.seconds:.1f} s)"


def run(
    jobs: Sequence[Job],
    *,
    chunk_size: Optional[int] = None,
    address: Optional[str] = None,
    ray_init: Optional[Mapping[str, Any]] = None,
    progress: Optional[bool] = None,
) -> FleetReport:
    """Backtests every job on Ray; each job's report equals ``backtest.run``'s for it.

    Every job is checked first (its recording, its spec, the spec against the policy
    and the recording): a job that does not fit raises its ``ConfigError``,
    ``InputError`` or ``TypeError``, naming the job, before Ray is contacted. Each job's
    replications then go out in tasks of ``chunk_size`` (default: enough tasks for four
    per CPU of the cluster, at most :data:`MAX_CHUNK` replications each). A progress
    bar counts replications as chunks come back (``progress=False`` hides it).
    ``address`` and ``ray_init`` go to ``ray.init`` when Ray is not initialised.

    Example::

        result = fleet.run([fleet.Job("null", policy, traffic, {"candidate": "v2",
                                      "replications": 500, "block_ms": 600_000})])
        assert result["null"].to_dict() == backtest.run(policy, traffic, candidate="v2",
            replications=500, block_ms=600_000).to_dict()
    """
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int, not {chunk_size!r}")
    checked = _check(jobs, lambda job, rec: backtest._prepare(job.policy, rec, job.spec)[1])
    total = sum(s["replications"] for _, _, s in checked)
    ray = _connect(address, ray_init)
    size = chunk_size or _default_chunk(total, ray)
    task = _remote(ray, _run_chunk)
    refs = _put_recordings(ray, ((name, rec) for name, rec, _ in checked))
    submitted: List[Tuple[Any, str, int]] = []
    started = time.perf_counter()
    for job, (name, _, s) in zip(jobs, checked):
        for lo in range(0, s["replications"], size):
            hi = min(lo + size, s["replications"])
            submitted.append((task.remote(job.policy, [refs[name]], s, lo, hi), name, hi - lo))
    outcomes: Dict[str, List[Dict[str, Any]]] = {name: [] for name, _, _ in checked}
    for name, part in _gather(ray, submitted, total, progress, "replication"):
        outcomes[name].extend(part)
    seconds = time.perf_counter() - started
    return FleetReport({name: backtest._report(o) for name, o in outcomes.items()}, seconds)


def calibrate(
    jobs: Sequence[Job],
    gate: Union[str, Mapping[str, str]],
    *,
    target: float = 0.05,
    parameter: Optional[str] = None,
    address: Optional[str] = None,
    ray_init: Optional[Mapping[str, Any]] = None,
    progress: Optional[bool] = None,
) -> FleetResults:
    """Calibrates ``gate`` (one name for every job, or a job name → gate mapping) in
    every job, one task per job: each result is ``backtest.calibrate``'s for the job.
    Jobs are checked first as in :func:`run` (and the gate, target and parameter with
    them).

    Example::

        result = fleet.calibrate(jobs, "p95_latency", target=0.01)
        table = pd.DataFrame(result.columns())   # job, gate, parameter, configured_value, ...
    """

    def gate_of(job: Job) -> str:
        if isinstance(gate, str):
            return gate
        if job.name not in gate:
            raise ValueError(f"no gate named for job {job.name!r}")
        return gate[job.name]

    def check(job: Job, rec: Recording) -> str:
        g = gate_of(job)
        backtest_check_calibration(
            job.policy, rec, backtest.spec(**job.spec), g, target, parameter
        )
        return g

    checked = _check(jobs, check)
    ray = _connect(address, ray_init)
    task = _remote(ray, _calibrate_job)
    refs = _put_recordings(ray, ((name, rec) for name, rec, _ in checked))
    started = time.perf_counter()
    submitted = [
        (task.remote(job.policy, [refs[name]], dict(job.spec), g, target, parameter), name, 1)
        for job, (name, _, g) in zip(jobs, checked)
    ]
    results = dict(_gather(ray, submitted, len(submitted), progress, "job"))
    return FleetResults(
        {name: results[name] for name, _, _ in checked},
        _calibration_row,
        time.perf_counter() - started,
    )


def drills(
    jobs: Sequence[Job],
    *,
    address: Optional[str] = None,
    ray_init: Optional[Mapping[str, Any]] = None,
    progress: Optional[bool] = None,
) -> FleetResults:
    """Plays the drill library (``backtest.drills``) against every job, one task per
    job; a job's ``spec`` has no ``inject`` (each drill injects its own failure).

    Example::

        result = fleet.drills(jobs)
        caught = pd.DataFrame(result.columns())   # job, drill, skipped, caught, of, ...
        print(result["strict/eu"]["markdown"])
    """

    def check(job: Job, rec: Recording) -> None:
        if "inject" in job.spec:
            raise TypeError("drills inject their own failures: the spec takes no inject")
        backtest._prepare(job.policy, rec, job.spec)

    checked = _check(jobs, check)
    ray = _connect(address, ray_init)
    task = _remote(ray, _drills_job)
    refs = _put_recordings(ray, ((name, rec) for name, rec, _ in checked))
    started = time.perf_counter()
    submitted = [
        (task.remote(job.policy, [refs[name]], dict(job.spec)), name, 1)
        for job, (name, _, _) in zip(jobs, checked)
    ]
    results = dict(_gather(ray, submitted, len(submitted), progress, "job"))
    return FleetResults(
        {name: results[name] for name, _, _ in checked},
        _drill_rows,
        time.perf_counter() - started,
    )


# --- the tasks (run in Ray's workers; module-level, so they pickle by reference) ---

# A worker's recordings, by object id: a task that follows another of the same job on
# the same worker does not deserialise the recording again.
_RECORDINGS: "OrderedDict[str, Recording]" = OrderedDict()
_RECORDINGS_KEPT = 4


def _recording(box: List[Any]) -> Recording:
    """The recording behind ``box[0]``, an object ref (boxed, so Ray passes the ref and
    not the value: the worker caches the value)."""
    ref = box[0]
    key = ref.hex()
    rec = _RECORDINGS.get(key)
    if rec is None:
        rec = _RAY.get(ref)
        _RECORDINGS[key] = rec
        while len(_RECORDINGS) > _RECORDINGS_KEPT:
            _RECORDINGS.popitem(last=False)
    else:
        _RECORDINGS.move_to_end(key)
    assert isinstance(rec, Recording)
    return rec


def _run_chunk(
    policy: Union[PolicyConfigDict, str], box: List[Any], checked_spec: Dict[str, Any], lo: int, hi: int
) -> List[Dict[str, Any]]:
    return backtest._replications(policy, _recording(box), checked_spec, range(lo, hi))


def _calibrate_job(
    policy: Union[PolicyConfigDict, str],
    box: List[Any],
    spec_fields: Dict[str, Any],
    gate: str,
    target: float,
    parameter: Optional[str],
) -> Dict[str, Any]:
    return backtest.calibrate(
        policy, _recording(box), gate, target=target, parameter=parameter, **spec_fields
    )


def _drills_job(
    policy: Union[PolicyConfigDict, str], box: List[Any], spec_fields: Dict[str, Any]
) -> Dict[str, Any]:
    return backtest.drills(policy, _recording(box), **spec_fields)


# --- the driver's side ---


def _check(
    jobs: Sequence[Job], check: Callable[[Job, Recording], T]
) -> List[Tuple[str, Recording, T]]:
    """Each job's name, recording and what ``check`` makes of it, every job checked
    before anything is submitted. Recordings are converted once per distinct object."""
    if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Sequence):
        raise TypeError("jobs must be a list of fleet.Job")
    if not jobs:
        raise ValueError("no jobs")
    converted: Dict[Any, Recording] = {}
    seen: Dict[str, int] = {}
    out: List[Tuple[str, Recording, T]] = []
    for i, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise TypeError(f"jobs[{i}] is a {type(job).__name__}, not a fleet.Job")
        name = job.name or str(i)
        if not isinstance(name, str):
            raise TypeError(f"jobs[{i}].name must be a str, not {type(name).__name__}")
        if name in seen:
            raise ValueError(f"jobs[{i}] and jobs[{seen[name]}] are both named {name!r}")
        seen[name] = i
        if not isinstance(job.policy, (str, Mapping)):
            raise TypeError(f"job {name!r}: the policy is a config dict or its JSON")
        if not isinstance(job.spec, Mapping):
            raise TypeError(f"job {name!r}: spec is a mapping of backtest.spec's arguments")
        job = replace(job, name=name)
        with _naming(name):
            key = _samples_key(job.samples)
            if key not in converted:
                converted[key] = backtest.recording(job.samples)
            rec = converted[key]
            out.append((name, rec, check(job, rec)))
    return out


def _samples_key(samples: Any) -> Any:
    """What makes two jobs' samples the same recording: the same path, or the same
    object."""
    if isinstance(samples, str):
        return ("path", samples)
    fspath = getattr(samples, "__fspath__", None)
    if fspath is not None:
        return ("path", fspath())
    return ("object", id(samples))


@contextmanager
def _naming(name: str) -> Iterator[None]:
    """Re-raises a job's refusal with the job's name in front, as the same type (a
    ``ConfigError`` keeps its ``code`` and ``path``) with ``.job`` set."""
    try:
        yield
    except (RollguardError, TypeError, ValueError) as e:
        named = _named(e, name)
        if named is None:
            raise
        raise named from e


def _named(e: Exception, name: str) -> Optional[Exception]:
    try:
        named = type(e)(f"job {name!r}: {e}")
    except Exception:  # an exception type that takes other arguments
        return None
    for attr in ("code", "path", "message"):
        if hasattr(e, attr):
            setattr(named, attr, getattr(e, attr))
    setattr(named, "job", name)
    return named


def _connect(address: Optional[str], ray_init: Optional[Mapping[str, Any]]) -> Any:
    """Ray, initialised: as the caller left it, else ``ray.init(address, **ray_init)``
    (which reads ``RAY_ADDRESS`` when ``address`` is None, else starts a local Ray)."""
    if not _RAY.is_initialized():
        _RAY.init(address=address, **dict(ray_init or {}))
    return _RAY


_REMOTES: Dict[Callable[..., Any], Any] = {}


def _remote(ray: Any, fn: Callable[..., Any]) -> Any:
    if fn not in _REMOTES:
        _REMOTES[fn] = ray.remote(fn)
    return _REMOTES[fn]


def _default_chunk(total: int, ray: Any) -> int:
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return max(1, min(MAX_CHUNK, math.ceil(total / (4 * cpus))))


def _put_recordings(ray: Any, named: Iterator[Tuple[str, Recording]]) -> Dict[str, Any]:
    """Each job's recording's object ref: one ``ray.put`` per distinct recording."""
    put: Dict[int, Any] = {}
    out: Dict[str, Any] = {}
    for name, rec in named:
        if id(rec) not in put:
            put[id(rec)] = ray.put(rec)
        out[name] = put[id(rec)]
    return out


def _gather(
    ray: Any,
    submitted: List[Tuple[Any, str, int]],
    total: int,
    progress: Optional[bool],
    unit: str,
) -> Iterator[Tuple[str, Any]]:
    """Each task's (job name, result) as tasks finish, with a progress bar of
    ``total`` units; the tasks left are cancelled if one fails."""
    what = {ref: (name, n) for ref, name, n in submitted}
    pending = list(what)
    bar = backtest._progress(total, progress, unit)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
            if not done:
                done, pending = ray.wait(pending, num_returns=1)
            for ref, value in zip(done, ray.get(done)):
                name, n = what[ref]
                if bar is not None:
                    bar.update(n)
                yield name, value
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if bar is not None:
            bar.close()


def _stack(parts: Iterator[Tuple[str, Dict[str, List[Any]]]]) -> Dict[str, List[Any]]:
    """One table from each job's columns: a ``job`` column, then the union of the
    columns in first-seen order, ``None`` where a job has no such column."""
    out: Dict[str, List[Any]] = {"job": []}
    for name, cols in parts:
        rows = max((len(v) for v in cols.values()), default=0)
        before = len(out["job"])
        for key, values in cols.items():
            out.setdefault(key, [None] * before).extend(values)
        out["job"].extend([name] * rows)
        for values in out.values():
            values.extend([None] * (before + rows - len(values)))
    return out


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """A summary's scalars, nested keys joined with dots (lists kept as they are)."""
    out: Dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _calibration_row(c: Dict[str, Any]) -> Dict[str, List[Any]]:
    return {
        "gate": [c["gate"]],
        "parameter": [c["parameter"]],
        "target": [c["target"]],
        "configured_value": [c["configured"]["value"]],
        "configured_rate": [c["configured"]["rate"]["rate"]],
        "value": [c["result"]["value"]],
        "rate": [c["result"]["rate"]["rate"]],
        "rate_low": [c["result"]["rate"]["low"]],
        "rate_high": [c["result"]["rate"]["high"]],
        "met": [c["met"]],
        "trials": [len(c["trials"])],
    }


def _drill_rows(d: Dict[str, Any]) -> Dict[str, List[Any]]:
    cols: Dict[str, List[Any]] = {
        k: []
        for k in (
            "drill", "skipped", "caught", "of", "onset_to_rollback_ms_median",
            "onset_to_restored_ms_median", "rolled_back_to", "second_candidate",
        )
    }
    for r in d["results"]:
        caught = r.get("caught") or {}
        cols["drill"].append(r["drill"]["name"])
        cols["skipped"].append(r["drill"].get("skipped"))
        cols["caught"].append(caught.get("count"))
        cols["of"].append(caught.get("of"))
        cols["onset_to_rollback_ms_median"].append(
            (r.get("onset_to_rollback_ms") or {}).get("median"))
        cols["onset_to_restored_ms_median"].append(
            (r.get("onset_to_restored_ms") or {}).get("median"))
        cols["rolled_back_to"].append(_tally(r.get("targets")))
        cols["second_candidate"].append(_tally(r.get("second")))
    return cols


def _tally(pairs: Any) -> Optional[str]:
    return "; ".join(f"{what}: {n}" for what, n in pairs) if pairs else None
