"""Backtests and calibration of a policy on recorded traffic.

"With this policy, how many good versions would we have rolled back, and how fast
would it have caught the incidents we had?" :func:`run` replays a recording through
fresh policies, the way a router obeying them would route it, optionally with an
injected regression and a block bootstrap per replication, and returns a
:class:`Report`: the false-rollback rate with its 95 % Wilson interval, the share of
regressions caught, the delays from onset to rollback and to restored traffic, the
exposure and the onset estimate's error, with every replication's outcome as columns
for pandas.

Every number is the Rust core's (``rollguard-backtest``): this module only converts
arguments and loops over replications, showing a progress bar when ``tqdm`` is
installed. Replication ``r`` of seed ``s`` is the same in any process, which is what
lets ``rollguard.fleet`` split the work.

Example::

    import pandas as pd
    from rollguard import backtest

    df = pd.read_parquet("last-week.parquet")   # columns at, arm, metric, value, ...
    report = backtest.run(policy, df, candidate="v2", replications=200, block_ms=600_000,
                          inject={"metric": "latency_ms",
                                  "change": {"kind": "ratio", "factor": 1.5},
                                  "onset_ms": 600_000, "onset_max_ms": 2_400_000})
    print(report.markdown)
    outcomes = pd.DataFrame(report.columns())
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union, cast

from rollguard._rollguard import (
    Recording,
    backtest_calibrate,
    backtest_check,
    backtest_drills,
    backtest_replication,
    backtest_report,
    backtest_spec,
)
from rollguard.types import PolicyConfigDict

__all__ = ["Recording", "Report", "recording", "spec", "run", "calibrate", "drills"]

Samples = Union[Recording, Mapping[str, Any], Sequence[Mapping[str, Any]], str, "os.PathLike[str]"]

_COLUMNS = ("at", "arm", "metric", "value", "events", "total", "tenant", "tier", "agent")


def recording(samples: Samples) -> Recording:
    """A :class:`Recording` from what a user has at hand:

    - a ``Recording`` (returned as it is);
    - a mapping of columns: a pandas ``DataFrame`` or a dict of numpy arrays or lists
      with ``at``, ``arm``, ``metric`` and some of ``value``, ``events``, ``total``,
      ``tenant``, ``tier``, ``agent`` (NaN where a row has no value or count);
    - a list of sample dicts;
    - the path of a Parquet file with those columns (read with ``pyarrow``).
    """
    if isinstance(samples, Recording):
        return samples
    if isinstance(samples, (str, os.PathLike)):
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        table = pq.read_table(os.fspath(samples))
        present = [c for c in _COLUMNS if c in table.column_names]
        return recording({c: table.column(c).to_numpy(zero_copy_only=False) for c in present})
    if isinstance(samples, Mapping) or hasattr(samples, "columns"):
        table = cast(Any, samples)
        names = set(table.keys()) if isinstance(samples, Mapping) else set(table.columns)
        columns = {c: table[c] for c in _COLUMNS if c in names}
        # pandas columns are passed as their numpy arrays (categoricals as they are).
        columns = {
            c: (v.array if hasattr(v, "cat") and hasattr(v, "array") else getattr(v, "to_numpy", lambda: v)())
            for c, v in columns.items()
        }
        return Recording.from_columns(**columns)
    return Recording.from_samples(cast(Any, list(samples)))


def spec(
    *,
    candidate: Optional[str] = None,
    traffic: str = "split",
    recorded_candidate: Optional[str] = None,
    replications: int = 1,
    seed: int = 0,
    block_ms: Optional[int] = None,
    inject: Optional[Mapping[str, Any]] = None,
    ack_delay_ms: int = 0,
) -> Dict[str, Any]:
    """A backtest spec (the JSON document ``rollguard backtest --spec`` reads) from
    keyword arguments; the core checks it when it runs."""
    out: Dict[str, Any] = {
        "replications": replications,
        "seed": seed,
        "ack_delay_ms": ack_delay_ms,
        "traffic": (
            {"kind": "recorded", "candidate_arm": recorded_candidate}
            if recorded_candidate is not None
            else {"kind": traffic}
        ),
    }
    if candidate is not None:
        out["candidate"] = candidate
    if block_ms is not None:
        out["resample"] = {"block_ms": block_ms}
    if inject is not None:
        out["inject"] = dict(inject)
    return out


class Report:
    """A backtest's report: the summary as attributes and :attr:`summary`, every
    replication's outcome in :attr:`outcomes` and as flat :meth:`columns`."""

    def __init__(self, report: Dict[str, Any]) -> None:
        self._report = report
        self.outcomes: List[Dict[str, Any]] = report["outcomes"]
        self.markdown: str = report["markdown"]
        self.summary: Dict[str, Any] = {
            k: v for k, v in report.items() if k not in ("outcomes", "markdown")
        }

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["summary"][name]
        except KeyError:
            raise AttributeError(name) from None

    def columns(self) -> Dict[str, List[Any]]:
        """One row per replication, one list per column (``pandas.DataFrame(report.
        columns())``): times in ms, ``None`` where a replication has none."""
        cols: Dict[str, List[Any]] = {
            k: []
            for k in (
                "replication", "onset", "promoted_at", "rolled_back", "rollback_at",
                "restored_at", "rollback_reason", "rollback_gates", "rollback_to",
                "degradation_started_at", "detection_delay_ms", "exposure", "refused",
            )
        }
        for o in self.outcomes:
            r = o.get("rollback") or {}
            onset = o.get("onset")
            at = r.get("at")
            cols["replication"].append(o["replication"])
            cols["onset"].append(onset)
            cols["promoted_at"].append(o.get("promoted_at"))
            cols["rolled_back"].append(bool(r))
            cols["rollback_at"].append(at)
            cols["restored_at"].append(r.get("restored_at"))
            cols["rollback_reason"].append(r.get("reason"))
            cols["rollback_gates"].append(",".join(r.get("gates", [])) if r else None)
            cols["rollback_to"].append(r.get("to"))
            cols["degradation_started_at"].append(r.get("degradation_started_at"))
            cols["detection_delay_ms"].append(o.get("detection_delay_ms"))
            cols["exposure"].append(o["exposure"])
            cols["refused"].append(o["refused"])
        return cols

    def to_dict(self) -> Dict[str, Any]:
        """The report as the JSON document ``rollguard backtest --json`` prints."""
        return {k: v for k, v in self._report.items() if k != "markdown"}

    def __repr__(self) -> str:
        fr = self.summary["false_rollbacks"]
        out = f"Report({self.summary['replications']} replications, {fr['count']} false rollbacks"
        if self.summary.get("detected"):
            out += f", {self.summary['detected']['count']} regressions caught"
        return out + ")"

    def _repr_markdown_(self) -> str:
        return self.markdown


def _progress(total: int, progress: Optional[bool], unit: str = "replication") -> Any:
    if progress is False or (progress is None and total < 2):
        return None
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError:
        if progress:
            raise
        return None
    return tqdm(total=total, unit=unit)


# How a backtest is split: `run` below and `rollguard.fleet`'s tasks share these three,
# so a report merged from replications run apart is the one `run` makes.


def _prepare(
    policy: Union[PolicyConfigDict, str], samples: Samples, spec_fields: Mapping[str, Any]
) -> Tuple[Recording, Dict[str, Any]]:
    """The recording and the checked spec (every default filled in) each replication
    runs on; raises what a replication would raise, before any runs."""
    rec = recording(samples)
    s = backtest_spec(spec(**spec_fields))
    backtest_check(policy, rec, s)
    return rec, s


def _replications(
    policy: Union[PolicyConfigDict, str],
    rec: Recording,
    checked_spec: Dict[str, Any],
    indices: Iterable[int],
    bar: Any = None,
) -> List[Dict[str, Any]]:
    """The outcomes of replications ``indices`` (any subset, in any process)."""
    outcomes = []
    for r in indices:
        outcomes.append(backtest_replication(policy, rec, checked_spec, r))
        if bar is not None:
            bar.update(1)
    return outcomes


def _report(outcomes: Sequence[Dict[str, Any]]) -> Report:
    """The report of a backtest's outcomes, joined in any order."""
    return Report(backtest_report(outcomes))


def run(
    policy: Union[PolicyConfigDict, str],
    samples: Samples,
    *,
    progress: Optional[bool] = None,
    **spec_fields: Any,
) -> Report:
    """Backtests ``policy`` (a config dict or its JSON) on ``samples`` (see
    :func:`recording`). The keyword arguments are :func:`spec`'s. A progress bar shows
    when ``tqdm`` is installed and there are several replications (``progress=False``
    hides it). Raises ``ConfigError`` for a config or spec that does not fit."""
    rec, s = _prepare(policy, samples, spec_fields)
    bar = _progress(s["replications"], progress)
    try:
        outcomes = _replications(policy, rec, s, range(s["replications"]), bar)
    finally:
        if bar is not None:
            bar.close()
    return _report(outcomes)


def calibrate(
    policy: Union[PolicyConfigDict, str],
    samples: Samples,
    gate: str,
    *,
    target: float = 0.05,
    parameter: Optional[str] = None,
    **spec_fields: Any,
) -> Dict[str, Any]:
    """The tightest value of one of ``gate``'s settings (its rule's bound, or
    ``parameter="consecutive"``) that keeps the share of null replications rolled back
    by it at or under ``target``; for a statistical gate, its realised rate against its
    ``alpha``. Returns the calibration as a dict: ``parameter``, ``configured`` and
    ``result`` (each ``{"value", "rate"}``), ``met`` and every ``trials``."""
    return backtest_calibrate(
        policy, recording(samples), spec(**spec_fields), gate, target, parameter
    )


def drills(
    policy: Union[PolicyConfigDict, str],
    samples: Samples,
    **spec_fields: Any,
) -> Dict[str, Any]:
    """Plays the seeds' failure modes against ``policy`` on ``samples``: a latency
    regression, an error burst, a quality drift, a silent candidate and a bad candidate
    twice in a row, each with metrics chosen from the policy's gates (a drill the
    policy cannot be asked says why it is skipped). The keyword arguments are
    :func:`spec`'s, less ``inject``. Returns ``{"results": [...], "markdown": ...}``:
    for each drill how many replications rolled back, onset to rollback and to restored
    traffic, to which version and why, and what became of the second candidate."""
    return backtest_drills(policy, recording(samples), spec(**spec_fields))
