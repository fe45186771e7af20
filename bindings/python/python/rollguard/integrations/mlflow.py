"""A rollguard policy driving the aliases of an MLflow registered model.

The policy decides; this module only maps the MLflow model registry onto the policy's
version registry and applies the policy's decisions to it. Serving code loads
``models:/<name>@champion`` (and ``@challenger`` for the canary share), so moving an
alias *is* the switch an action asks for::

    from mlflow import MlflowClient
    from rollguard.integrations.mlflow import MlflowRollout

    client = MlflowClient("http://127.0.0.1:5000")
    rollout = MlflowRollout.bootstrap(client, "support-model", policy_config, now=now_ms)
    rollout.register("2", at=now_ms)                     # MLflow version 2 of the model
    rollout.command("start_rollout", at=now_ms, version="2")
    for applied in rollout.observe_batch(samples):        # metrics of both arms
        print(applied.decision.kind, applied.outcome, applied.aliases)
    store(rollout.snapshot())                             # or pass persist=store

**Versions.** One MLflow registered model per policy; a rollguard version id *is* the
MLflow model version number as a string (``"3"`` is version 3 of the model).
`MlflowRollout.register` reads the model version (so it must exist) and registers it in
the policy with the digest ``mlflow:<model name>/<version>`` and the component
``run_id`` (when the version has one).

**Aliases.** The policy's aliases map to MLflow aliases: ``stable`` → ``champion``,
``candidate`` → ``challenger``, ``previous`` → ``previous``, ``golden`` → ``golden``
(`ALIASES`). An alias the policy does not hold is removed from the model (no
``challenger`` outside a rollout, no ``previous`` after a rollback to it). Other aliases
of the model are never touched.

**Decisions.** Every decision with an ``action_id`` (``start_shadow``, ``start_preview``,
``set_weight``, ``promote``, ``rollback`` and the ladder's ``pause_onboarding``,
``route_back``, ``freeze``) is applied, then acknowledged with its action id:

1. the policy is copied and the copy acknowledges the action; the copy's aliases,
   weight and routing table are the state the action asks for (so no alias logic lives
   here: the core computes it);
2. the registry's aliases are moved to that state (sets first, ``champion`` last,
   then removals), the challenger version gets the tag ``rollguard.weight`` (its
   traffic percent), and the optional ``router`` is called with the copy's routing
   table;
3. the policy gets ``ack``, or ``action_failed`` with the error's text if MLflow (or
   the router) raised. A failed action leaves the policy's aliases where they were
   (it escalates and halts; ``resume`` retries), and the registry is put back to them
   on a best-effort basis.

Decisions without an action id (``hold``, ``escalate``, ``pause_for_approval``) are
recorded and need nothing. ``compensate`` undoes a side effect this module knows
nothing about: it is returned as ``left_to_caller``, to be acknowledged by the caller.
After each applied step the registry's aliases are brought in line with the policy's
(``mark_validated`` moves ``golden`` without an action, for instance).

**Weights are the router's.** ``set_weight`` changes no registry state except the
``rollguard.weight`` tag on the challenger version, which is informational (a
dashboard can show it; after promotion it keeps the last weight the version served
as challenger). A router that splits traffic passes ``router=``: a callable given the
policy's routing table (`rollguard.types.RoutingTableDict`, the state after the
action) before every acknowledgement; it must be idempotent.

**Validation.** `MlflowRollout.mark_validated` sends ``mark_validated`` to the policy
and sets the model version tag ``rollguard.validated`` to the time, in ISO 8601 UTC
(integer times are milliseconds since the Unix epoch).

**Restarts.** Pass ``persist=`` (a callable taking the snapshot): it is called before
the registry is written for an action (so the snapshot records the pending action)
and after every applied step. `MlflowRollout.restore` restores the policy from such a
snapshot and reconciles it with the registry's aliases (see `Reconciled`):

- no pending action and the aliases agree: nothing to do (``in_sync``);
- a pending action whose registry state is already in place (applied before the
  crash, not acknowledged): it is acknowledged (``acked``);
- a pending action not applied, or half applied (every alias at either its old or its
  new place): the registry is moved to the new state and the action acknowledged
  (``reapplied``);
- anything else (an alias at a version neither state has, or aliases that differ
  from the policy's with no pending action: someone moved them by hand, or the
  snapshot is older than the registry) raises `ReconcileError`, naming every alias
  that differs. ``force=True`` makes the registry mirror the policy instead.

An MLflow error while reconciling is raised as it is, before the pending action is
acknowledged: restoring again retries.

Without a snapshot, `MlflowRollout.bootstrap` builds a policy from the registry: the
``champion`` version is the stable version (validated), and the ``golden`` version, if
the alias is set on another version, is registered and marked validated so that it is
golden. ``challenger`` and ``previous`` cannot be recovered without a snapshot (a
rollout cannot be resumed halfway): bootstrap removes them, and the registry then
mirrors the policy.

This module does not import MLflow: any object with the methods of `RegistryClient`
(an ``mlflow.MlflowClient``) will do. Errors from it are caught as ``Exception``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Protocol, Sequence, Tuple, cast

from rollguard._rollguard import Decision, Policy, Step
from rollguard.types import (
    InputDict,
    PolicyConfigDict,
    RoutingTableDict,
    SampleDict,
    SnapshotDict,
    Time,
    VersionSpecDict,
)

__all__ = [
    "ALIASES",
    "TAG_VALIDATED",
    "TAG_WEIGHT",
    "Applied",
    "MlflowRollout",
    "Reconciled",
    "ReconcileError",
    "RegistryClient",
]

#: The policy's alias names and the MLflow aliases they map to, in the order the
#: registry is written (``champion``, which serving reads, last).
ALIASES: Mapping[str, str] = {
    "previous": "previous",
    "golden": "golden",
    "candidate": "challenger",
    "stable": "champion",
}

#: Model version tag set by `MlflowRollout.mark_validated`: when, in ISO 8601 UTC.
TAG_VALIDATED = "rollguard.validated"
#: Model version tag on the challenger: its traffic share in percent.
TAG_WEIGHT = "rollguard.weight"

#: MLflow alias name → version number; absent when the alias is not set.
AliasMap = Dict[str, str]


class RegistryClient(Protocol):
    """The part of ``mlflow.MlflowClient`` this module uses."""

    def get_registered_model(self, name: str, /) -> Any: ...
    def get_model_version(self, name: str, version: str, /) -> Any: ...
    def set_registered_model_alias(self, name: str, alias: str, version: str, /) -> None: ...
    def delete_registered_model_alias(self, name: str, alias: str, /) -> None: ...
    def set_model_version_tag(self, name: str, version: str, key: str, value: Any, /) -> None: ...


class ReconcileError(RuntimeError):
    """The registry's aliases and the policy's snapshot disagree in a way no pending
    action explains. ``differences`` maps each MLflow alias that differs to
    ``(registry, policy)`` (``None``: not set)."""

    def __init__(self, message: str, differences: Dict[str, Tuple[Optional[str], Optional[str]]]):
        super().__init__(message)
        self.differences = differences


@dataclass(frozen=True)
class Applied:
    """What happened to one decision."""

    decision: Decision
    #: ``acked`` (applied and acknowledged), ``failed`` (``action_failed`` was sent),
    #: ``noted`` (no action id: nothing to apply) or ``left_to_caller``
    #: (``compensate``: the caller applies and acknowledges it).
    outcome: Literal["acked", "failed", "noted", "left_to_caller"]
    #: The MLflow aliases written: alias → version, ``None`` for a removed alias.
    aliases: Dict[str, Optional[str]] = field(default_factory=dict)
    #: The error's text, for ``failed``.
    error: Optional[str] = None


@dataclass(frozen=True)
class Reconciled:
    """What `MlflowRollout.restore` found and did."""

    #: ``in_sync``, ``acked`` (the pending action was applied before the restart),
    #: ``reapplied`` (it was not, or only in part: it was applied again) or ``forced``.
    outcome: Literal["in_sync", "acked", "reapplied", "forced"]
    #: The pending action's id, if there was one.
    action_id: Optional[int]
    #: The registry's aliases before reconciling.
    registry: AliasMap
    #: What acknowledging the pending action led to (further decisions, applied).
    applied: List[Applied] = field(default_factory=list)


def _iso(at: Time) -> str:
    if isinstance(at, datetime):
        return at.astimezone(timezone.utc).isoformat()
    return datetime.fromtimestamp(at / 1000.0, tz=timezone.utc).isoformat()


def _mlflow_aliases(policy_aliases: Mapping[str, str]) -> AliasMap:
    """The policy's aliases under their MLflow names."""
    return {mlflow: policy_aliases[ours] for ours, mlflow in ALIASES.items() if ours in policy_aliases}


def _registry_aliases(client: RegistryClient, model_name: str) -> AliasMap:
    model = client.get_registered_model(model_name)
    found: Mapping[str, Any] = model.aliases or {}
    managed = set(ALIASES.values())
    return {alias: str(version) for alias, version in found.items() if alias in managed}


def _version_spec(client: RegistryClient, model_name: str, version: str) -> VersionSpecDict:
    mv = client.get_model_version(model_name, str(version))
    spec: VersionSpecDict = {"id": str(mv.version), "digest": f"mlflow:{model_name}/{mv.version}"}
    if getattr(mv, "run_id", None):
        spec["components"] = {"run_id": str(mv.run_id)}
    return spec


@dataclass(frozen=True)
class _Target:
    aliases: AliasMap
    weight: int
    routing: RoutingTableDict


class MlflowRollout:
    """A policy and the MLflow registered model whose aliases follow it.

    ``router``: called with the routing table before each acknowledgement (see the
    module docs); ``persist``: called with the policy's snapshot before registry
    writes and after each step.
    """

    def __init__(
        self,
        client: RegistryClient,
        model_name: str,
        policy: Policy,
        *,
        router: Optional[Callable[[RoutingTableDict], None]] = None,
        persist: Optional[Callable[[SnapshotDict], None]] = None,
    ) -> None:
        self.client = client
        self.model_name = model_name
        self.policy = policy
        self.router = router
        self.persist = persist
        # The policy's aliases when the registry last mirrored them (None: unknown).
        self._mirrored: Optional[AliasMap] = None

    # -- the registry ----------------------------------------------------------------

    def registry_aliases(self) -> AliasMap:
        """The model's aliases this module manages (``champion``, ``challenger``,
        ``previous``, ``golden``) as set in MLflow now."""
        return _registry_aliases(self.client, self.model_name)

    def policy_aliases(self) -> AliasMap:
        """The policy's aliases under their MLflow names."""
        return _mlflow_aliases(self.policy.status().aliases)

    def _write(self, target: AliasMap, current: AliasMap, *, best_effort: bool) -> Dict[str, Optional[str]]:
        """Moves the managed aliases from ``current`` to ``target``: sets in `ALIASES`
        order, then removals. Returns what was written. With ``best_effort`` every
        write is tried and errors are swallowed; otherwise the first error is raised.
        Remembers ``target`` as mirrored when every write succeeded."""
        written: Dict[str, Optional[str]] = {}
        complete = True
        steps: List[Tuple[str, Optional[str]]] = [
            (a, target[a]) for a in ALIASES.values() if a in target and current.get(a) != target[a]
        ]
        steps += [(a, None) for a in ALIASES.values() if a not in target and a in current]
        for alias, version in steps:
            try:
                if version is None:
                    self.client.delete_registered_model_alias(self.model_name, alias)
                else:
                    self.client.set_registered_model_alias(self.model_name, alias, version)
            except Exception:
                self._mirrored = None
                if not best_effort:
                    raise
                complete = False
                continue
            written[alias] = version
        if complete:
            self._mirrored = dict(target)
        return written

    def sync(self) -> Dict[str, Optional[str]]:
        """Moves the registry's aliases to the policy's (raising MLflow's error, if
        any). Returns what was written."""
        return self._write(self.policy_aliases(), self.registry_aliases(), best_effort=False)

    # -- versions --------------------------------------------------------------------

    def version_spec(self, version: str) -> VersionSpecDict:
        """The policy's version spec for MLflow version ``version`` (which must exist)."""
        return _version_spec(self.client, self.model_name, version)

    def register(self, version: str, *, at: Time) -> List[Applied]:
        """Registers MLflow version ``version`` of the model in the policy."""
        return self.handle({"kind": "register_version", "at": at, "version": self.version_spec(version)})

    def mark_validated(self, version: str, *, at: Time) -> List[Applied]:
        """Marks ``version`` validated in the policy (it becomes golden) and tags the
        MLflow version ``rollguard.validated`` with the time."""
        step = self.policy.command("mark_validated", at=at, version=str(version))
        self.client.set_model_version_tag(self.model_name, str(version), TAG_VALIDATED, _iso(at))
        return self.apply(step)

    # -- inputs ----------------------------------------------------------------------

    def handle(self, input: InputDict) -> List[Applied]:
        """Hands the policy one input and applies its step."""
        return self.apply(self.policy.handle(input))

    def command(self, kind: str, /, at: Time, **fields: Any) -> List[Applied]:
        """Sends the policy a command (``start_rollout``, ``resume``, …) and applies its step."""
        return self.apply(self.policy.command(kind, at=at, **fields))

    def observe_batch(self, samples: Sequence[SampleDict]) -> List[Applied]:
        """Feeds the policy samples and applies its step."""
        return self.apply(self.policy.observe_batch(samples))

    def tick(self, now: Time) -> List[Applied]:
        """Tells the policy the time and applies its step."""
        return self.apply(self.policy.tick(now))

    def snapshot(self) -> SnapshotDict:
        """The policy's snapshot (what `restore` takes)."""
        return self.policy.snapshot()

    # -- applying decisions ----------------------------------------------------------

    def _target(self, action_id: int, at: int) -> _Target:
        """The state acknowledging ``action_id`` leads to, computed by the core on a copy."""
        probe = copy.copy(self.policy)
        probe.command("ack", at=max(at, probe.now), action_id=action_id)
        status = probe.status()
        return _Target(_mlflow_aliases(status.aliases), status.weight, probe.routing_table())

    def _put(self, target: _Target, current: AliasMap) -> Dict[str, Optional[str]]:
        """Writes ``target`` to the registry and the router; raises on the first error."""
        written = self._write(target.aliases, current, best_effort=False)
        challenger = target.aliases.get(ALIASES["candidate"])
        if challenger is not None:
            self.client.set_model_version_tag(self.model_name, challenger, TAG_WEIGHT, str(target.weight))
        if self.router is not None:
            self.router(target.routing)
        return written

    def _save(self) -> None:
        if self.persist is not None:
            self.persist(self.policy.snapshot())

    def apply(self, step: Step) -> List[Applied]:
        """Applies a step's decisions (and those of the steps their acknowledgements
        lead to) to the registry, acknowledging each action. Returns one `Applied`
        per decision, in order."""
        out: List[Applied] = []
        queue = [step]
        while queue:
            current = queue.pop(0)
            for d in current.decisions:
                if d.action_id is None:
                    out.append(Applied(d, "noted"))
                    continue
                if d.kind == "compensate":
                    out.append(Applied(d, "left_to_caller"))
                    continue
                self._save()
                at = max(d.at, self.policy.now)
                try:
                    written = self._put(self._target(d.action_id, at), self.registry_aliases())
                except Exception as e:  # MLflow's (or the router's) error, reported to the policy
                    reason = f"{type(e).__name__}: {e}"
                    queue.append(self.policy.command("action_failed", at=at, action_id=d.action_id, reason=reason))
                    out.append(Applied(d, "failed", error=reason))
                    continue
                queue.append(self.policy.command("ack", at=at, action_id=d.action_id))
                out.append(Applied(d, "acked", aliases=written))
        # Aliases that moved without an action (golden on mark_validated; the old
        # state after a failed action): best effort, the next step tries again. The
        # registry is only read when something may have changed.
        wanted = self.policy_aliases()
        if wanted != self._mirrored:
            try:
                self._write(wanted, self.registry_aliases(), best_effort=True)
            except Exception:
                self._mirrored = None
        self._save()
        return out

    # -- restarts --------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        client: RegistryClient,
        model_name: str,
        snapshot: SnapshotDict,
        *,
        at: Optional[Time] = None,
        force: bool = False,
        router: Optional[Callable[[RoutingTableDict], None]] = None,
        persist: Optional[Callable[[SnapshotDict], None]] = None,
    ) -> Tuple["MlflowRollout", Reconciled]:
        """Restores the policy from ``snapshot`` and reconciles it with the registry's
        aliases (module docs, "Restarts"). ``at`` is when a pending action is
        acknowledged (default: the snapshot's time). Raises `ReconcileError` when
        they cannot be reconciled and ``force`` is false."""
        rollout = cls(client, model_name, Policy.restore(snapshot), router=router, persist=persist)
        return rollout, rollout._reconcile(at, force)

    def _reconcile(self, at: Optional[Time], force: bool) -> Reconciled:
        registry = self.registry_aliases()
        old = self.policy_aliases()
        pending = self.policy.status().pending_action
        now = self.policy.now
        when = now if at is None else at
        if pending is None:
            if registry == old:
                return Reconciled("in_sync", None, registry)
            if force:
                self.sync()
                return Reconciled("forced", None, registry)
            raise self._conflict(registry, old, "no action is pending")
        target = self._target(pending, now)
        applied = registry == target.aliases
        challenger = target.aliases.get(ALIASES["candidate"])
        if applied and old == target.aliases and challenger is not None:
            # Only the weight changes (set_weight): its tag tells whether it was applied.
            tags = getattr(self.client.get_model_version(self.model_name, challenger), "tags", None) or {}
            applied = tags.get(TAG_WEIGHT) == str(target.weight)
        outcome: Literal["acked", "reapplied", "forced"] = "acked" if applied else "reapplied"
        if not applied:
            # Half applied is fine: every alias at its old or its new place.
            if any(registry.get(a) not in (old.get(a), target.aliases.get(a)) for a in ALIASES.values()):
                if not force:
                    raise self._conflict(registry, target.aliases, f"action {pending} is pending")
                outcome = "forced"
        # Idempotent: only the differences are written; the router always hears the state.
        self._put(target, registry)
        step = self.policy.command("ack", at=when, action_id=pending)
        return Reconciled(outcome, pending, registry, self.apply(step))

    def _conflict(self, registry: AliasMap, expected: AliasMap, why: str) -> ReconcileError:
        differences = {
            a: (registry.get(a), expected.get(a))
            for a in ALIASES.values()
            if registry.get(a) != expected.get(a)
        }
        listed = ", ".join(f"{a}: registry {r or '-'}, policy {p or '-'}" for a, (r, p) in differences.items())
        return ReconcileError(
            f"the aliases of registered model {self.model_name!r} disagree with the policy's snapshot "
            f"({why}): {listed}; fix the aliases, or restore with force=True to make them mirror the policy",
            differences,
        )

    @classmethod
    def bootstrap(
        cls,
        client: RegistryClient,
        model_name: str,
        config: PolicyConfigDict,
        *,
        now: Time,
        router: Optional[Callable[[RoutingTableDict], None]] = None,
        persist: Optional[Callable[[SnapshotDict], None]] = None,
    ) -> "MlflowRollout":
        """Builds a policy from ``config`` (its gates, strategy and so on; its
        ``versions``, ``stable`` and ``candidate`` are replaced) and the registry: the
        ``champion`` version is stable and validated, a ``golden`` version is
        registered and marked validated. The registry then mirrors the policy
        (``challenger`` and ``previous`` are removed). Raises ``ValueError`` when the
        model has no ``champion`` alias."""
        registry = _registry_aliases(client, model_name)
        champion = registry.get(ALIASES["stable"])
        if champion is None:
            raise ValueError(f"registered model {model_name!r} has no {ALIASES['stable']!r} alias to bootstrap from")
        stable = _version_spec(client, model_name, champion)
        stable["validated"] = True
        built: Dict[str, Any] = dict(config)
        built["versions"] = [stable]
        built["stable"] = stable["id"]
        built.pop("candidate", None)
        rollout = cls(client, model_name, Policy(cast(PolicyConfigDict, built), now=now), router=router, persist=persist)
        golden = registry.get(ALIASES["golden"])
        if golden is not None and golden != champion:
            rollout.register(golden, at=now)
            rollout.policy.command("mark_validated", at=now, version=golden)
        rollout.sync()
        rollout._save()
        return rollout
