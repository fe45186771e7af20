"""TypedDicts of rollguard's canonical JSON documents (config, inputs, snapshots).

These are types only: the Rust core validates every document and reports errors with
the field's path. Keys are the canonical snake_case keys, identical in Rust, Python and
JavaScript, so one policy file loads unchanged everywhere.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, Dict, List, Union

if sys.version_info >= (3, 11):
    from typing import Literal, NotRequired, TypedDict
else:  # pragma: no cover
    from typing_extensions import Literal, NotRequired, TypedDict

__all__ = [
    "Time",
    "VersionSpecDict",
    "MetricConfigDict",
    "RuleDict",
    "GateConfigDict",
    "KayentaImportDict",
    "KayentaMemberDict",
    "StrategyDict",
    "SafetyConfigDict",
    "GradualRollbackConfigDict",
    "AssignmentConfigDict",
    "EnvironmentConfigDict",
    "LadderRungDict",
    "PauseOnboardingDict",
    "RouteBackDict",
    "FreezeDict",
    "ScopeKeyDict",
    "AssignmentDict",
    "RoutingTableDict",
    "WeightChangeDict",
    "PolicyConfigDict",
    "SampleDict",
    "EffectDict",
    "RecordEffectDict",
    "InputDict",
    "ScenarioDict",
    "SnapshotDict",
    "StepDict",
    "AgentsConfigDict",
    "AgentStepDict",
    "AgentsStepDict",
    "AgentsSnapshotDict",
]

#: A time: integer milliseconds (since the Unix epoch, or a replay's own zero), or a
#: timezone-aware ``datetime`` (converted to ms since the Unix epoch).
Time = Union[int, datetime]


class VersionSpecDict(TypedDict):
    id: str
    digest: str
    components: NotRequired[Dict[str, str]]
    validated: NotRequired[bool]


class MetricConfigDict(TypedDict):
    name: str
    kind: Literal["value", "count"]
    window_ms: NotRequired[int]
    buckets: NotRequired[int]
    histogram_range: NotRequired[Dict[str, float]]


# The functional form, because `ewma` takes a key named `lambda`.
RuleDict = TypedDict(
    "RuleDict",
    {
        "kind": Literal[
            "threshold", "vs_baseline", "error_attribution", "sequential_mean", "cusum", "ewma", "rate_slo",
            "sequential_quantile", "mann_whitney", "drift", "kayenta_score",
        ],
        "min": NotRequired[float],
        "max": NotRequired[float],
        "max_ratio": NotRequired[float],
        "min_ratio": NotRequired[float],
        "max_increase": NotRequired[float],
        "max_decrease": NotRequired[float],
        "baseline_min": NotRequired[float],
        # error_attribution, sequential_mean and sequential_quantile
        "alpha": NotRequired[float],
        "margin": NotRequired[Dict[str, float]],
        "mixing_events": NotRequired[float],
        # (mann_whitney also takes "either", and Kayenta's "increase" / "decrease")
        "worse": NotRequired[Literal["higher", "lower", "either", "increase", "decrease"]],
        "mixing_scale": NotRequired[float],
        "autocorrelation": NotRequired[Literal["adjust", "ignore"]],
        # rate_slo
        "max_rate": NotRequired[float],
        # cusum and ewma
        "shift": NotRequired[float],
        "arl0": NotRequired[float],
        "threshold": NotRequired[float],
        "reference_mean": NotRequired[float],
        "reference_sd": NotRequired[float],
        # (and "autocorrelation" above) winsorising bound, default 3; None for none
        "clip": NotRequired[Union[float, None]],
        # ewma
        "lambda": NotRequired[float],
        "limit": NotRequired[float],
        # mann_whitney (Kayenta's MannWhitneyClassifier)
        "confidence": NotRequired[float],
        "tolerance": NotRequired[float],
        "effect_size": NotRequired[Literal["mean_ratio", "cles"]],
        "allowed_increase": NotRequired[float],
        "allowed_decrease": NotRequired[float],
        "outliers": NotRequired[Dict[str, Union[str, float]]],
        "samples_max": NotRequired[int],
        # drift
        "measure": NotRequired[Literal["psi", "js"]],
        "categories": NotRequired[int],
        "bins": NotRequired[Dict[str, float]],
        # kayenta_score (Kayenta's WeightedSumScorer over earlier dry-run mann_whitney gates)
        "members": NotRequired[List["KayentaMemberDict"]],
        "group_weights": NotRequired[Dict[str, float]],
        "pass": NotRequired[float],
        "marginal": NotRequired[float],
    },
)


class KayentaMemberDict(TypedDict):
    """A member of a kayenta_score gate: an earlier mann_whitney gate."""

    gate: str
    groups: NotRequired[List[str]]
    critical: NotRequired[bool]
    must_have_data: NotRequired[bool]
    muted: NotRequired[bool]


class GateConfigDict(TypedDict):
    name: str
    metric: str
    stat: str
    rule: RuleDict
    samples_min: NotRequired[int]
    on_no_data: NotRequired[Literal["inconclusive", "fail", "pass"]]
    dry_run: NotRequired[bool]
    persistence: NotRequired[Dict[str, Any]]
    phases: NotRequired[List[str]]


class StrategyDict(TypedDict):
    kind: str
    steps: NotRequired[List[Dict[str, Any]]]


class GradualRollbackConfigDict(TypedDict):
    """Config ``safety.gradual_rollback`` (README "Gradual rollback")."""

    #: Weights in percent stepped down through: strictly decreasing, each in 1..=99.
    steps: List[int]
    #: How long each step bakes before it is judged (positive).
    bake_ms: int


class SafetyConfigDict(TypedDict, total=False):
    cooldown_ms: int
    breaker: Dict[str, int]
    ack_timeout_ms: int
    #: Where automated rollbacks go: "default" (stable before promotion, previous
    #: after) or "golden".
    rollback_to: Literal["default", "golden"]
    #: Step the weight down instead of rolling back at once when gates fail a live
    #: canary (reason ``gradual_rollback``); off when absent.
    gradual_rollback: GradualRollbackConfigDict


class AssignmentConfigDict(TypedDict, total=False):
    #: How long a session keeps the weight in effect when it started (0: no pinning).
    pin_max_ms: int


class ScopesConfigDict(TypedDict):
    """Verdicts per tenant, tier or agent as well as overall (README "Scoped verdicts")."""

    #: The labels whose values form a scope: any of "tenant", "tier", "agent".
    by: List[Literal["tenant", "tier", "agent"]]
    #: The share of each statistical gate's alpha spent on the scopes (default 0.5).
    alpha_share: NotRequired[float]
    #: Samples a scope's window needs before its gates judge it (default: the gate's).
    samples_min: NotRequired[int]
    #: Per tier, how its scopes are judged instead.
    tiers: NotRequired[Dict[str, "TierOverrideDict"]]
    #: When gates tripped in scopes roll back (default: any one). Not with ``ladder``.
    impact: NotRequired["ImpactDict"]
    #: Most histogram cells a bucket of a scope's window keeps (default 48, 16 to
    #: 4098); past it the bucket halves its resolution.
    histogram_bins_max: NotRequired[int]
    #: The graduated response to gates tripped in scopes only, rungs in the order
    #: pause_onboarding, route_back, freeze, rollback, each at most once. Not with
    #: ``impact`` (the one-rung ladder ``[{"rung": "rollback", "when": impact}]``).
    ladder: NotRequired[List["LadderRungDict"]]


class ImpactDict(TypedDict, total=False):
    """``scopes.impact``: any condition met rolls back; below, the rollout holds."""

    tiers: List[str]
    scopes_min: int
    traffic_min: float


class LadderRungDict(TypedDict):
    """One rung of ``scopes.ladder``: what it does, and when (any condition of an
    impact rule met; ``{}``, the default, for any tripped scope)."""

    #: "pause_onboarding", "route_back", "freeze" or "rollback".
    rung: Literal["pause_onboarding", "route_back", "freeze", "rollback"]
    when: NotRequired[ImpactDict]


#: The decisions of the ladder's rungs besides ``rollback`` (each with an
#: ``action_id`` to acknowledge, reason ``graduated_response``).
PauseOnboardingDict = TypedDict(
    "PauseOnboardingDict", {"kind": Literal["pause_onboarding"], "version": str}
)
RouteBackDict = TypedDict(
    "RouteBackDict",
    {"kind": Literal["route_back"], "version": str, "to": str, "scopes": List["ScopeKeyDict"]},
)
FreezeDict = TypedDict("FreezeDict", {"kind": Literal["freeze"], "version": str})


class GateOverrideDict(TypedDict, total=False):
    """One gate's settings for the scopes of a tier: the rule in full (same kind)."""

    rule: RuleDict
    samples_min: int


class TierOverrideDict(TypedDict, total=False):
    """How the scopes of one tier are judged (``scopes.tiers``)."""

    samples_min: int
    gates: Dict[str, GateOverrideDict]


class ScopeKeyDict(TypedDict, total=False):
    """A scope in reports and events: its labels, or ``{"overflow": True}``."""

    tenant: str
    tier: str
    agent: str
    overflow: bool


class EnvironmentConfigDict(TypedDict, total=False):
    #: Before rolling back for a threshold or rate_slo gate in shadow or canary, check
    #: whether the stable version fails it too; if so hold and escalate
    #: (``environment_suspected``) instead. Default False.
    check: bool
    #: How much of the candidate's degradation the stable version must show, 0..1
    #: (default 0.8).
    ratio: float


class AssignmentDict(TypedDict):
    """Where a routing key goes: ``Policy.assign``."""

    arm: Literal["stable", "candidate"]
    version: str
    reason: Literal["no_rollout", "stable", "candidate", "rolled_back", "promoted"]
    weight_bp: int
    salt: NotRequired[str]
    pinned: bool


class WeightChangeDict(TypedDict):
    """An acknowledged change of the candidate's weight."""

    at: int
    weight_bp: int


class RoutingTableDict(TypedDict):
    """Everything a router needs to reproduce ``Policy.assign``: ``Policy.routing_table``."""

    mode: Literal["no_rollout", "split", "rolled_back", "promoted"]
    stable: str
    candidate: NotRequired[str]
    salt: NotRequired[str]
    weight_bp: int
    weights: List[WeightChangeDict]
    pin_max_ms: int
    #: The ladder's ``pause_onboarding`` holds (mode "split"): a tenant not yet sent to
    #: the candidate goes to ``stable``.
    onboarding_paused: NotRequired[bool]
    #: Scopes the ladder routed back (mode "split"): a request whose labels match one
    #: goes to ``stable`` before any key is assigned.
    routed_back: NotRequired[List[ScopeKeyDict]]


class PolicyConfigDict(TypedDict):
    format_version: int
    versions: List[VersionSpecDict]
    stable: str
    metrics: List[MetricConfigDict]
    strategy: StrategyDict
    name: NotRequired[str]
    candidate: NotRequired[str]
    gates: NotRequired[List[GateConfigDict]]
    analysis: NotRequired[Dict[str, Any]]
    approval: NotRequired[Dict[str, Any]]
    safety: NotRequired[SafetyConfigDict]
    limits: NotRequired[Dict[str, int]]
    assignment: NotRequired[AssignmentConfigDict]
    scopes: NotRequired[ScopesConfigDict]
    environment: NotRequired[EnvironmentConfigDict]


class SampleDict(TypedDict):
    at: Time
    arm: str
    metric: str
    value: NotRequired[float]
    events: NotRequired[int]
    total: NotRequired[int]
    tenant: NotRequired[str]
    tier: NotRequired[str]
    agent: NotRequired[str]


class EffectDict(TypedDict):
    """A side effect a version caused: its id and undo descriptor (any JSON object,
    opaque to the policy, handed back in the ``compensate`` decision)."""

    id: str
    undo: Dict[str, Any]


#: ``{"kind": "record_effect", "at": …, "version": "v2", "effect": {"id", "undo"}}``.
RecordEffectDict = TypedDict(
    "RecordEffectDict",
    {"kind": Literal["record_effect"], "at": Time, "version": str, "effect": EffectDict},
)


#: Any input, tagged by ``kind`` (``observe``, ``observe_batch``, ``tick``, ``ack``,
#: ``action_failed``, ``register_version``, ``start_rollout``, ``pause``, ``resume``,
#: ``abort``, ``revert_now``, ``force_promote``, ``mark_validated``, ``clear_breaker``,
#: ``record_effect``: see `RecordEffectDict`).
InputDict = Dict[str, Any]


class ScenarioDict(TypedDict):
    format_version: int
    config: PolicyConfigDict
    inputs: List[InputDict]
    name: NotRequired[str]
    description: NotRequired[str]
    start: NotRequired[int]


#: A snapshot: ``format_version``, ``config`` and the opaque ``state``.
SnapshotDict = Dict[str, Any]


class StepDict(TypedDict):
    at: int
    decisions: List[Dict[str, Any]]
    events: List[Dict[str, Any]]


class AgentsConfigDict(TypedDict):
    """Per-agent policies (README "Per-agent versions"): a default policy config and,
    per agent, a JSON merge patch (RFC 7396) of it."""

    format_version: int
    name: NotRequired[str]
    agents_max: NotRequired[int]
    policy: PolicyConfigDict
    agents: Dict[str, Dict[str, Any]]


class AgentStepDict(TypedDict):
    agent: str
    step: StepDict


class AgentsStepDict(TypedDict):
    """What one input to ``Agents`` produced: the agents with something to say."""

    at: int
    agents: List[AgentStepDict]


class AgentsSnapshotDict(TypedDict):
    format_version: int
    config: AgentsConfigDict
    now: int
    agents: Dict[str, SnapshotDict]


class ImportWarningDict(TypedDict):
    """A field of a Kayenta canary config that was ignored or approximated."""

    path: str
    message: str


class KayentaImportDict(TypedDict):
    """What `import_kayenta` returns: metrics and gates to put in a policy."""

    metrics: List[MetricConfigDict]
    gates: List[GateConfigDict]
    warnings: List[ImportWarningDict]
