"""What a change leaves to undo, and what a transaction holds until it ends.

A `Snapshot` remembers everything a change alters on a flow and its record, so a change that
fails after it was applied in memory (a stage action raising, the store refusing the write, a
batch rolled back) is reverted exactly. A `Unit` collects the changes of one batch (or of one
application transaction bpf joined) and folds them into the store's ops: one `InsertFlow` or
`UpdateFlow` per flow, carrying the flow's state at commit and every history entry, then the
records' active flow and last stage change, then the outbox events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from bpf._history import StageChange
from bpf.runtime.flow import Flow
from bpf.store.base import (
    AppendEvent,
    FlowRow,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    UpdateFlow,
)

if TYPE_CHECKING:
    from bpf.runtime.compiled import CompiledProcess, CompiledStage


class Snapshot(NamedTuple):
    """A flow as it was before one change, and the record fields the change wrote."""

    flow: Flow
    state: FlowRow
    compiled: CompiledProcess
    stage: CompiledStage
    bound: tuple[Any, ...]
    #: how long the flow's loaded history was (None: not loaded)
    history: int | None
    #: undoes the change's writes on the record, in order
    undos: list[Callable[[], None]]

    @classmethod
    def of(cls, flow: Flow) -> Snapshot:
        h = flow._history
        return cls(flow, flow._state, flow._compiled, flow._stage, flow._bound,
                   None if h is None else len(h), [])

    def restore(self, *, rolled_back: bool = False) -> None:
        """Put the flow and its record back; ``rolled_back``: the application's transaction
        has rolled back (an ORM row then takes the old value as its committed state, since
        its session can no longer load)."""
        for undo in reversed(self.undos):
            if rolled_back and hasattr(undo, "after_rollback"):
                undo.after_rollback()
            else:
                undo()
        flow = self.flow
        flow._state = self.state
        flow._compiled = self.compiled
        flow._stage = self.stage
        flow._bound = self.bound
        if self.history is not None and flow._history is not None:
            del flow._history[self.history:]


class _Pending:
    """One flow's writes in a unit."""

    __slots__ = ("entries", "expected", "flow", "new_records")

    def __init__(self, flow: Flow, expected: int | None) -> None:
        self.flow = flow
        #: the stored revision the update expects; None for a flow the unit inserts
        self.expected = expected
        self.entries: list[StageChange] = []
        self.new_records: list[tuple[str, str]] = []


class Unit:
    """The changes of one batch, or of one application transaction bpf joined: their writes,
    how to undo them, what to run after commit."""

    __slots__ = ("after", "connection", "deliver", "events", "flows", "records", "saves",
                 "session", "snapshots", "started")

    def __init__(self, connection: Any = None) -> None:
        #: the application's connection bpf writes through (None: a batch bpf commits itself)
        self.connection = connection
        #: the application's ORM session, when it gave one
        self.session: Any = None
        self.flows: dict[str, _Pending] = {}
        #: record ops, keyed so that the last one of each kind per record wins
        self.records: dict[tuple[type, str, str], Op] = {}
        #: the outbox events of the unit's changes, in order
        self.events: list[AppendEvent] = []
        self.snapshots: list[Snapshot] = []
        #: flows this unit started (the engine forgets them if it rolls back)
        self.started: list[Flow] = []
        self.after: list[Callable[[], None]] = []
        #: whether a change of the unit has after_enter/after_exit actions to deliver
        self.deliver = False
        #: records whose fields bpf wrote, with the save function of their entity
        self.saves: dict[int, tuple[Callable[[Any], Any], Any]] = {}

    def add(
        self, flow: Flow, before: FlowRow | None, entry: StageChange,
        new_records: tuple[tuple[str, str], ...], last_change: tuple[str, str] | None,
        active: tuple[str, str] | None = None,
    ) -> None:
        pending = self.flows.get(flow._state.id)
        if pending is None:
            pending = self.flows[flow._state.id] = _Pending(
                flow, None if before is None else before.revision
            )
        pending.entries.append(entry)
        pending.new_records.extend(new_records)
        if active is not None:
            entity, rid = active
            self.records[(SetActiveFlow, entity, rid)] = SetActiveFlow(
                rid, flow._state.id, entity)
        if last_change is not None:
            entity, rid = last_change
            self.records[(SetLastChange, entity, rid)] = SetLastChange(rid, entry, entity)

    def ops(self) -> list[Op]:
        ops: list[Op] = []
        for p in self.flows.values():
            if p.expected is None:
                ops.append(InsertFlow(p.flow._state, tuple(p.entries)))
            else:
                ops.append(UpdateFlow(p.flow._state, p.expected, tuple(p.entries),
                                      tuple(p.new_records)))
        ops.extend(self.records.values())
        ops.extend(self.events)
        return ops

    def rollback(self, *, rolled_back: bool = False) -> None:
        for snapshot in reversed(self.snapshots):
            snapshot.restore(rolled_back=rolled_back)


__all__ = ["Snapshot", "Unit"]
