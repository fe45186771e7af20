"""Stubs of the compiled extension (checked by mypy's stubtest)."""

from typing import Any, Dict, List, Literal, Optional, Sequence, Union, final

from rollguard.types import (
    AgentsConfigDict,
    AgentsSnapshotDict,
    AgentsStepDict,
    AssignmentDict,
    InputDict,
    KayentaImportDict,
    PolicyConfigDict,
    RoutingTableDict,
    SampleDict,
    ScenarioDict,
    ScopeKeyDict,
    SnapshotDict,
    StepDict,
    Time,
)

__all__ = [
    "RollguardError",
    "ConfigError",
    "InputError",
    "SnapshotError",
    "FORMAT_VERSION",
    "SNAPSHOT_FORMAT_VERSION",
    "AGENTS_SNAPSHOT_FORMAT_VERSION",
    "TIME_MAX",
    "ASSIGN_VERSION",
    "__version__",
    "Policy",
    "Agents",
    "Step",
    "Decision",
    "Event",
    "TraceEntry",
    "Status",
    "import_kayenta",
    "replay",
    "assign",
    "assign_bucket",
    "salt_for",
    "Recording",
    "backtest_replication",
    "backtest_report",
    "backtest_spec",
    "backtest_calibrate",
    "backtest_drills",
    "backtest_check",
    "backtest_check_calibration",
]

__version__: str
FORMAT_VERSION: int
SNAPSHOT_FORMAT_VERSION: int
AGENTS_SNAPSHOT_FORMAT_VERSION: int
TIME_MAX: int
ASSIGN_VERSION: str

class RollguardError(Exception):
    """A refusal by rollguard, with the core's stable ``.code`` and the field ``.path``."""

    code: str
    path: str
    message: str

class ConfigError(RollguardError, ValueError):
    """A config (or scenario) was refused."""

class InputError(RollguardError, ValueError):
    """An input (sample, tick, command) was refused."""

class SnapshotError(RollguardError, ValueError):
    """A snapshot could not be restored."""

@final
class Decision:
    @property
    def at(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def action_id(self) -> Optional[int]: ...
    @property
    def ack_deadline(self) -> Optional[int]: ...
    @property
    def detail(self) -> str: ...
    @property
    def gates(self) -> List[Dict[str, Any]]: ...
    @property
    def fields(self) -> Dict[str, Any]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Event:
    @property
    def at(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def fields(self) -> Dict[str, Any]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Step:
    @property
    def at(self) -> int: ...
    @property
    def decisions(self) -> List[Decision]: ...
    @property
    def actions(self) -> List[Decision]: ...
    @property
    def events(self) -> List[Event]: ...
    def is_empty(self) -> bool: ...
    def to_dict(self) -> StepDict: ...
    def to_json(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class TraceEntry:
    @property
    def index(self) -> int: ...
    @property
    def input(self) -> InputDict: ...
    @property
    def step(self) -> Optional[Step]: ...
    @property
    def error(self) -> Optional[InputError]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Status:
    @property
    def now(self) -> int: ...
    @property
    def aliases(self) -> Dict[str, str]: ...
    @property
    def phase(self) -> Optional[str]: ...
    @property
    def weight(self) -> int: ...
    @property
    def stage(self) -> Optional[int]: ...
    @property
    def pending_action(self) -> Optional[int]: ...
    @property
    def paused(self) -> Optional[str]: ...
    @property
    def halted(self) -> Optional[str]: ...
    @property
    def breaker_open(self) -> bool: ...
    @property
    def cooldown_until(self) -> Optional[int]: ...
    @property
    def tripped_gates(self) -> List[str]: ...
    @property
    def effects_held(self) -> int: ...
    @property
    def compensations_waiting(self) -> int: ...
    @property
    def onboarding_paused(self) -> bool: ...
    @property
    def routed_back(self) -> List[ScopeKeyDict]: ...
    @property
    def frozen(self) -> bool: ...
    @property
    def gradual_rollback(self) -> Optional[Dict[str, Any]]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Policy:
    def __new__(cls, config: PolicyConfigDict, *, now: Optional[Time] = None) -> Policy: ...
    @classmethod
    def from_json(cls, text: str, *, now: Optional[Time] = None) -> Policy: ...
    @classmethod
    def restore(cls, snapshot: Union[SnapshotDict, str]) -> Policy: ...
    @classmethod
    def restore_json(cls, text: str) -> Policy: ...
    def handle(self, input: InputDict) -> Step: ...
    def handle_json(self, text: str) -> Step: ...
    def observe(self, sample: SampleDict) -> Step: ...
    def observe_value(self, at: Time, arm: str, metric: str, value: float) -> Step: ...
    def observe_count(self, at: Time, arm: str, metric: str, events: int, total: int) -> Step: ...
    def observe_batch(self, samples: Sequence[SampleDict]) -> Step: ...
    def observe_many(
        self,
        arm: str,
        metric: str,
        at: Any,
        value: Optional[Any] = None,
        *,
        events: Optional[Any] = None,
        total: Optional[Any] = None,
        tenant: Optional[Any] = None,
        tier: Optional[Any] = None,
        agent: Optional[Any] = None,
    ) -> Step:
        """Records a column of samples atomically. ``tenant``, ``tier`` and ``agent``
        are label columns, one label per row: a pandas Categorical or category Series
        (read through its codes and categories), anything with ``codes`` and
        ``categories`` (code -1: no label), a numpy array of strings, or a sequence of
        strings and None. The result is that of ``observe`` of each row with its labels."""
    def tick(self, now: Time) -> Step: ...
    def command(self, kind: str, /, at: Time, **fields: Any) -> Step: ...
    def next_deadline(self) -> Optional[int]: ...
    @property
    def now(self) -> int: ...
    @property
    def config(self) -> PolicyConfigDict: ...
    def status(self) -> Status: ...
    def assign(
        self,
        key: Union[str, bytes],
        *,
        session_started_at: Optional[Time] = None,
        now: Optional[Time] = None,
    ) -> AssignmentDict:
        """Where a routing key goes now (docs/assignment.md); with
        ``session_started_at``, pinned to the weight in effect then for at most
        ``assignment.pin_max_ms``. Raises ``InputError``."""
    def routing_table(self) -> RoutingTableDict:
        """Everything a router needs to answer ``assign`` itself (docs/assignment.md)."""
    def versions(self) -> List[Dict[str, Any]]: ...
    def snapshot(self) -> SnapshotDict: ...
    def snapshot_json(self) -> str: ...
    def __copy__(self) -> Policy: ...
    def __deepcopy__(self, memo: Any, /) -> Policy: ...
    def __reduce__(self) -> Any: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Agents:
    """Per-agent policies: one policy per agent, each with its own versions, rollout,
    gates, cooldown and breaker (README "Per-agent versions")."""

    def __new__(cls, config: AgentsConfigDict, *, now: Optional[Time] = None) -> Agents: ...
    @classmethod
    def from_json(cls, text: str, *, now: Optional[Time] = None) -> Agents: ...
    @classmethod
    def restore(cls, snapshot: Union[AgentsSnapshotDict, str]) -> Agents: ...
    @classmethod
    def restore_json(cls, text: str) -> Agents: ...
    def handle(self, input: InputDict) -> AgentsStepDict:
        """Applies an input dict with an optional ``agent`` key. Samples go to the agent
        of their ``agent`` label; ``ack`` and ``action_failed`` must name the agent; any
        other command without one goes to every agent, atomically. Raises ``InputError``
        (``unknown_agent`` for an agent not in the config or a missing one)."""
    def handle_json(self, text: str) -> AgentsStepDict: ...
    def observe(self, sample: SampleDict) -> AgentsStepDict: ...
    def observe_batch(
        self, samples: Sequence[SampleDict], *, agent: Optional[str] = None
    ) -> AgentsStepDict: ...
    def observe_many(
        self,
        agent: str,
        arm: str,
        metric: str,
        at: Any,
        value: Optional[Any] = None,
        *,
        events: Optional[Any] = None,
        total: Optional[Any] = None,
        tenant: Optional[Any] = None,
        tier: Optional[Any] = None,
    ) -> AgentsStepDict:
        """Records a column of samples of one metric on one arm of ``agent``,
        atomically, as ``Policy.observe_many`` takes them (numpy arrays or sequences;
        ``tenant`` and ``tier`` label columns). The result is that of ``observe`` of
        each row for that agent; the other agents fire their timers at the rows' times
        as they fall due. Raises ``InputError`` naming the row (``value[3]``)."""
    def tick(self, now: Time) -> AgentsStepDict: ...
    def command(self, kind: str, /, at: Time, **fields: Any) -> AgentsStepDict: ...
    def next_deadline(self) -> Optional[int]: ...
    @property
    def now(self) -> int: ...
    @property
    def agents(self) -> List[str]: ...
    @property
    def config(self) -> AgentsConfigDict: ...
    def status(self) -> Dict[str, Dict[str, Any]]: ...
    def assign(
        self,
        agent: str,
        key: Union[str, bytes],
        *,
        session_started_at: Optional[Time] = None,
        now: Optional[Time] = None,
    ) -> AssignmentDict: ...
    def routing_table(self, agent: str) -> RoutingTableDict: ...
    def snapshot(self) -> AgentsSnapshotDict: ...
    def snapshot_json(self) -> str: ...
    def __copy__(self) -> Agents: ...
    def __deepcopy__(self, memo: Any, /) -> Agents: ...
    def __reduce__(self) -> Any: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

@final
class Recording:
    """Recorded samples for a backtest (``rollguard.backtest``), in time order."""
    @staticmethod
    def from_columns(
        at: Any,
        arm: Any,
        metric: Any,
        value: Optional[Any] = None,
        events: Optional[Any] = None,
        total: Optional[Any] = None,
        tenant: Optional[Any] = None,
        tier: Optional[Any] = None,
        agent: Optional[Any] = None,
    ) -> Recording: ...
    @staticmethod
    def from_samples(samples: Union[Sequence[SampleDict], str]) -> Recording: ...
    @staticmethod
    def from_scenario(scenario: Union[ScenarioDict, str]) -> Recording: ...
    def to_json(self) -> str: ...
    def __reduce__(self) -> Any: ...
    def __len__(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...

def backtest_replication(
    config: Union[PolicyConfigDict, str],
    recording: Recording,
    spec: Union[Dict[str, Any], str],
    replication: int,
) -> Dict[str, Any]: ...
def backtest_drills(
    config: Union[PolicyConfigDict, str],
    recording: Recording,
    spec: Union[Dict[str, Any], str],
) -> Dict[str, Any]: ...
def backtest_spec(spec: Union[Dict[str, Any], str]) -> Dict[str, Any]: ...
def backtest_report(outcomes: Union[Sequence[Dict[str, Any]], str]) -> Dict[str, Any]: ...
def backtest_calibrate(
    config: Union[PolicyConfigDict, str],
    recording: Recording,
    spec: Union[Dict[str, Any], str],
    gate: str,
    target: float,
    parameter: Optional[str] = None,
) -> Dict[str, Any]: ...
def backtest_check(
    config: Union[PolicyConfigDict, str],
    recording: Recording,
    spec: Union[Dict[str, Any], str],
) -> None: ...
def backtest_check_calibration(
    config: Union[PolicyConfigDict, str],
    recording: Recording,
    spec: Union[Dict[str, Any], str],
    gate: str,
    target: float,
    parameter: Optional[str] = None,
) -> None: ...

def replay(scenario: Union[ScenarioDict, str]) -> List[TraceEntry]: ...
def import_kayenta(config: Union[Dict[str, Any], str]) -> KayentaImportDict: ...
def assign(key: Union[str, bytes], *, salt: str, weight_bp: int) -> Literal["stable", "candidate"]:
    """The arm of a routing key (``rollguard-assign-v1``, docs/assignment.md).

    ``"candidate"`` iff the key's bucket under ``salt`` is below ``weight_bp``.

    Args:
        key: The routing key: a str (its UTF-8 bytes) or bytes.
        salt: The rollout's salt, 16 lowercase hex digits.
        weight_bp: The candidate's share in basis points (percent × 100), 0..=10000.

    Raises:
        InputError: ``invalid_salt``, ``weight_out_of_range``, or ``invalid_json`` for a
            str key with a lone surrogate.
    """

def assign_bucket(key: Union[str, bytes], *, salt: str) -> int:
    """The key's bucket under ``salt``, in 0..=9999 (independent of the weight)."""

def salt_for(policy_name: str, version_id: str, rollout_seq: int) -> str:
    """A rollout's salt, derived from the policy, the candidate version and the rollout's
    sequence number (0..=2^64-1), as 16 lowercase hex digits."""
