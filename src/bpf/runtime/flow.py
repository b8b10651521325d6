"""One running flow: a process on a record, at a stage, with its history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import attrs

from bpf._history import StageChange, time_in_stage
from bpf.definition.model import ProcessDefinition, Stage, Step
from bpf.store.base import FlowRow

if TYPE_CHECKING:
    from bpf.runtime.compiled import CompiledProcess, CompiledStage
    from bpf.store.base import Store

Status = Literal["active", "finished", "aborted"]


def _roles(value: Iterable[str] | str) -> frozenset[str]:
    return frozenset((value,)) if isinstance(value, str) else frozenset(value)


@attrs.frozen
class Actor:
    """Who starts or moves a flow, and the roles they hold."""

    __module__ = "bpf"  # shown as bpf.Actor, its public name

    name: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)

    def __str__(self) -> str:
        return self.name


class FlowEvent(NamedTuple):
    """What a hook or a stage action receives: one change of one flow.

    ``event`` is the hook name (stage_changing, stage_changed, status_changing, status_changed)
    or ``on_enter``/``on_exit`` for stage actions.
    """

    __module__ = "bpf"  # shown as bpf.FlowEvent, its public name

    event: str
    flow: Flow
    kind: str
    from_stage: str | None
    to_stage: str
    from_status: str
    to_status: str
    actor: Actor | None
    outcome: str | None = None
    record: Any = None


class _Engine(Protocol):
    """What a flow asks of the engine that made it (`bpf.Engine`; a protocol, so the flow
    does not import the engine that imports it)."""

    @property
    def store(self) -> Store: ...
    def now(self) -> datetime: ...
    def _active_path(self, flow: Flow) -> tuple[str, ...]: ...
    def _missing(self, flow: Flow) -> list[Step]: ...
    def _next(self, flow: Flow, actor: Actor | None, record: Any, stage: str | None,
              revision: int | None) -> Stage: ...
    def _previous(self, flow: Flow, actor: Actor | None, stage: str | None,
                  revision: int | None) -> Stage: ...
    def _set_active(self, flow: Flow, stage_id: str, actor: Actor | None, stage: str | None,
                    revision: int | None) -> Stage: ...
    def _finish(self, flow: Flow, outcome: str | None, actor: Actor | None, stage: str | None,
                revision: int | None) -> None: ...
    def _abandon(self, flow: Flow, actor: Actor | None, stage: str | None,
                 revision: int | None) -> None: ...
    def _reactivate(self, flow: Flow, actor: Actor | None, stage: str | None,
                    revision: int | None) -> None: ...
    def _view(self, flow: Flow, actor: Actor | None) -> dict[str, Any]: ...
    def _loaded_record(self, flow: Flow, entity: str) -> Any: ...
    def _bind(self, flow: Flow, record: Any) -> None: ...
    def _refresh(self, flow: Flow) -> None: ...


class Flow:
    """A process running on a record. Obtain flows from `Engine.start` and `Engine.flows`.

    A flow's state (stage, path, status, revision...) is one immutable `bpf.store.FlowRow`
    that only the engine replaces, so everything here is read-only; the definition is shared
    by every flow of its version. Every move goes through the engine, which gates, records and
    persists it.
    """

    __module__ = "bpf"  # shown as bpf.Flow, its public name

    __slots__ = ("__weakref__", "_bound", "_compiled", "_engine", "_history", "_stage", "_state")

    def __init__(
        self,
        engine: _Engine,
        compiled: CompiledProcess,
        state: FlowRow,
        bound: tuple[Any, ...],
        history: list[StageChange] | None = None,
    ) -> None:
        self._engine = engine
        self._compiled = compiled
        self._state = state
        self._stage: CompiledStage = compiled.stages[state.stage]
        #: the caller's record objects, parallel to ``state.records`` (None: not bound here)
        self._bound = bound
        #: the history as far as this object knows it; None until first read from the store
        self._history = history

    # -- what the flow is ------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def process(self) -> ProcessDefinition:
        """The definition this flow runs (the version it started on, or was migrated to)."""
        return self._compiled.definition

    @property
    def version(self) -> int:
        return self._state.version

    @property
    def stage(self) -> Stage:
        """The active stage."""
        return self._stage.stage

    @property
    def status(self) -> Status:
        """``active``, ``finished`` or ``aborted``."""
        return self._state.status  # type: ignore[return-value]

    @property
    def outcome(self) -> str | None:
        """The outcome the flow finished with (won, lost...), if any."""
        return self._state.outcome

    @property
    def revision(self) -> int:
        """The version counter of optimistic concurrency: +1 on every change."""
        return self._state.revision

    @property
    def started_at(self) -> datetime:
        return self._state.started_at

    @property
    def stage_started_at(self) -> datetime:
        """When the active stage was entered (a migration keeps it)."""
        return self._state.stage_started_at

    @property
    def completed_at(self) -> datetime | None:
        """When the flow finished or was abandoned; None while active."""
        return self._state.completed_at

    @property
    def record(self) -> Any:
        """The record of the active stage (None when not bound in this engine and its entity
        binding cannot load it)."""
        entity = self._stage.stage.entity
        for (e, _), obj in zip(self._state.records, self._bound, strict=True):
            if e == entity:
                return obj if obj is not None else self._engine._loaded_record(self, e)
        return None

    @property
    def record_id(self) -> str:
        """The id of the flow's primary record (the one it started on)."""
        return self._state.records[0][1]

    @property
    def records(self) -> dict[str, Any]:
        """Every record the flow spans, by entity (None where not bound in this engine and
        its entity binding cannot load it)."""
        if None in self._bound:
            for e, _ in self._state.records:
                self._engine._loaded_record(self, e)
        return {e: obj for (e, _), obj in zip(self._state.records, self._bound, strict=True)}

    @property
    def record_ids(self) -> dict[str, str]:
        """The id of every record the flow spans, by entity."""
        return dict(self._state.records)

    @property
    def traversed_path(self) -> tuple[str, ...]:
        """Stage ids visited, ending at the active stage."""
        return self._state.traversed

    @property
    def active_path(self) -> tuple[str, ...]:
        """The traversed path plus the stages ahead, predicted from the records' current values."""
        return self._engine._active_path(self)

    @property
    def history(self) -> tuple[StageChange, ...]:
        """Every stage and status change of this flow, oldest first."""
        if self._history is None:
            self._history = self._engine._read_history(self._state.id)
        return tuple(self._history)

    @property
    def is_active(self) -> bool:
        return self._state.status == "active"

    @property
    def is_last_stage(self) -> bool:
        """True at a stage no stage can follow: the flow may finish here."""
        return self._stage.is_last

    def missing(self) -> list[Step]:
        """The required steps of the active stage that the record does not satisfy yet."""
        return self._engine._missing(self)

    def time_in_stage(self, stage_id: str, *, now: datetime | None = None) -> timedelta:
        """Total time spent in ``stage_id`` across every visit (the clock stops while finished
        or aborted; a migration does not end a stay)."""
        self.process.stage(stage_id)  # unknown stage: UnknownStageError
        return time_in_stage(self.history, stage_id, now or self._engine.now())

    def view(self, actor: Actor | None = None) -> dict[str, Any]:
        """What a UI's process bar shows, as a JSON-serializable dict: the process, the
        flow's revision and status, every stage of the active path with its state (done,
        active, predicted) and steps, and the actions ``actor`` may take now. Its JSON Schema
        ships as ``bpf/runtime/view.schema.json``."""
        return self._engine._view(self, actor)

    # -- moves -----------------------------------------------------------------------------------
    # Every operation takes ``expected_stage`` and ``expected_revision``: what the caller saw
    # (a UI sends back the view's stage and revision). If the flow is elsewhere by now, the
    # operation raises `bpf.ConcurrencyError` and changes nothing: a double click moves once.

    def next(
        self, *, actor: Actor | None = None, record: Any = None,
        expected_stage: str | None = None, expected_revision: int | None = None,
    ) -> Stage:
        """Move forward one stage along the active path, gated on the required steps.

        ``record`` supplies the record of the next stage when it is on another entity.
        """
        return self._engine._next(self, actor, record, expected_stage, expected_revision)

    def previous(
        self, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> Stage:
        """Move back one stage along the traversed path (not gated)."""
        return self._engine._previous(self, actor, expected_stage, expected_revision)

    def set_active(
        self, stage_id: str, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> Stage:
        """Make an already traversed stage active again; the path is cut back to it."""
        return self._engine._set_active(self, stage_id, actor, expected_stage, expected_revision)

    def finish(
        self, outcome: str | None = None, *, actor: Actor | None = None,
        expected_stage: str | None = None, expected_revision: int | None = None,
    ) -> None:
        """Finish the flow at its last stage, gated on that stage's required steps; ``outcome``
        (e.g. won, lost) closes the record."""
        self._engine._finish(self, outcome, actor, expected_stage, expected_revision)

    def abandon(
        self, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> None:
        """Abort the flow at its current stage."""
        self._engine._abandon(self, actor, expected_stage, expected_revision)

    def reactivate(
        self, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> None:
        """Return a finished or aborted flow to active at its stage; the process's
        ``reactivate: set`` fields are written back on the record."""
        self._engine._reactivate(self, actor, expected_stage, expected_revision)

    def bind(self, record: Any) -> Flow:
        """Attach the caller's record object to this flow (after loading it from a store)."""
        self._engine._bind(self, record)
        return self

    def refresh(self) -> Flow:
        """Reload this flow's state from the store (after a `bpf.ConcurrencyError`)."""
        self._engine._refresh(self)
        return self

    def __repr__(self) -> str:
        return (
            f"<Flow {self._state.process} v{self._state.version} on {self.record_id!r}: "
            f"{self._state.stage} ({self._state.status})>"
        )
