"""One running flow: a process on a record, at a stage, with its history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import attrs

from bpf.definition.model import ProcessDefinition, Stage, Step

if TYPE_CHECKING:
    from bpf.runtime.compiled import CompiledProcess, CompiledStage
    from bpf.runtime.engine import Engine

Status = Literal["active", "finished", "aborted"]

#: History kinds that change the active stage (and so the record's pipeline phase).
STAGE_KINDS = frozenset({"start", "next", "previous", "set_active", "migrate"})


def record_entry(records: tuple[tuple[str, str, Any], ...], entity: str) -> tuple[str | None, Any]:
    """The (record id, record object or None while not bound) of ``entity`` in a flow's records;
    (None, None) when the flow has no record of that entity yet."""
    for e, rid, obj in records:
        if e == entity:
            return rid, obj
    return None, None


def _roles(value: Iterable[str] | str) -> frozenset[str]:
    return frozenset((value,)) if isinstance(value, str) else frozenset(value)


@attrs.frozen
class Actor:
    """Who starts or moves a flow, and the roles they hold."""

    name: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)

    def __str__(self) -> str:
        return self.name


class StageChange(NamedTuple):
    """One entry of a flow's history: a stage change or a status change.

    ``kind`` is one of start, next, previous, set_active, migrate (stage changes) or finish,
    abandon, reactivate (status changes, where ``from_stage == to_stage``). ``record_id`` is
    the record of the stage entered, the one whose pipeline field the change writes.
    """

    flow_id: str
    process: str
    version: int
    record_id: str
    kind: str
    from_stage: str | None
    to_stage: str
    phase: str
    at: datetime
    actor: str | None

    @property
    def is_stage_change(self) -> bool:
        return self.kind in STAGE_KINDS


class FlowEvent(NamedTuple):
    """What a hook or a stage action receives: one change of one flow.

    ``event`` is the hook name (stage_changing, stage_changed, status_changing, status_changed)
    or ``on_enter``/``on_exit`` for stage actions.
    """

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


class Flow:
    """A process running on a record. Obtain flows from `Engine.start` and `Engine.flows`.

    A flow holds only its own state (stage, path, status, records, history); the definition is
    shared. Every move goes through the engine, which gates, records and persists it.
    """

    __slots__ = (
        "__weakref__",
        "_compiled",
        "_engine",
        "_history",
        "_records",
        "_stage",
        "_traversed",
        "completed_at",
        "id",
        "outcome",
        "revision",
        "stage_started_at",
        "started_at",
        "status",
    )

    def __init__(
        self,
        engine: Engine,
        flow_id: str,
        compiled: CompiledProcess,
        stage: CompiledStage,
        records: tuple[tuple[str, str, Any], ...],
        started_at: datetime,
        stage_started_at: datetime,
        traversed: tuple[str, ...],
        status: str = "active",
        completed_at: datetime | None = None,
        outcome: str | None = None,
        revision: int = 1,
        history: list[StageChange] | None = None,
    ) -> None:
        self._engine = engine
        self.id = flow_id
        self._compiled = compiled
        self._stage = stage
        #: (entity, record id, record object or None while not bound)
        self._records = records
        self.started_at = started_at
        self.stage_started_at = stage_started_at
        self._traversed = traversed
        self.status: Status = status  # type: ignore[assignment]
        self.completed_at = completed_at
        self.outcome = outcome
        #: The version counter of optimistic concurrency: +1 on every change.
        self.revision = revision
        self._history = history

    # -- what the flow is ------------------------------------------------------------------------

    @property
    def process(self) -> ProcessDefinition:
        """The definition this flow runs (the version it started on, or was migrated to)."""
        return self._compiled.definition

    @property
    def version(self) -> int:
        return self._compiled.definition.version

    @property
    def stage(self) -> Stage:
        """The active stage."""
        return self._stage.stage

    @property
    def record(self) -> Any:
        """The record of the active stage (None when not bound in this engine)."""
        return record_entry(self._records, self._stage.stage.entity)[1]

    @property
    def record_id(self) -> str:
        """The id of the flow's primary record (the one it started on)."""
        return self._records[0][1]

    @property
    def records(self) -> dict[str, Any]:
        """Every record the flow spans, by entity (None where not bound in this engine)."""
        return {e: obj for e, _, obj in self._records}

    @property
    def record_ids(self) -> dict[str, str]:
        """The id of every record the flow spans, by entity."""
        return {e: rid for e, rid, _ in self._records}

    @property
    def traversed_path(self) -> tuple[str, ...]:
        """Stage ids visited, ending at the active stage."""
        return self._traversed

    @property
    def active_path(self) -> tuple[str, ...]:
        """The traversed path plus the stages ahead, predicted from the records' current values."""
        return self._engine._active_path(self)

    @property
    def history(self) -> tuple[StageChange, ...]:
        """Every stage and status change of this flow, oldest first."""
        if self._history is None:
            self._history = self._engine._load_history(self)
        return tuple(self._history)

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_last_stage(self) -> bool:
        """True at a stage no stage can follow: the flow may finish here."""
        return self._stage.is_last

    def missing(self) -> list[Step]:
        """The required steps of the active stage that the record does not satisfy yet."""
        return self._engine._missing(self)

    def time_in_stage(self, stage_id: str, *, now: datetime | None = None) -> timedelta:
        """Total time spent in ``stage_id`` across every visit (the clock stops while finished
        or aborted)."""
        self.process.stage(stage_id)  # unknown stage: UnknownStageError
        return self._engine._time_in_stage(self, stage_id, now)

    # -- moves -----------------------------------------------------------------------------------

    def next(self, *, actor: Actor | None = None, record: Any = None) -> Stage:
        """Move forward one stage along the active path, gated on the required steps.

        ``record`` supplies the record of the next stage when it is on another entity.
        """
        return self._engine._next(self, actor, record)

    def previous(self, *, actor: Actor | None = None) -> Stage:
        """Move back one stage along the traversed path (not gated)."""
        return self._engine._previous(self, actor)

    def set_active(self, stage_id: str, *, actor: Actor | None = None) -> Stage:
        """Make an already traversed stage active again; the path is cut back to it."""
        return self._engine._set_active(self, stage_id, actor)

    def finish(self, outcome: str | None = None, *, actor: Actor | None = None) -> None:
        """Finish the flow at its last stage; ``outcome`` (e.g. won, lost) closes the record."""
        self._engine._finish(self, outcome, actor)

    def abandon(self, *, actor: Actor | None = None) -> None:
        """Abort the flow at its current stage."""
        self._engine._abandon(self, actor)

    def reactivate(self, *, actor: Actor | None = None) -> None:
        """Return a finished or aborted flow to active at its stage."""
        self._engine._reactivate(self, actor)

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
            f"<Flow {self._compiled.definition.process} v{self.version} on {self.record_id!r}: "
            f"{self._stage.stage.id} ({self.status})>"
        )
