"""The in-memory store: flow rows and history in this process; nothing survives it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bpf._errors import ConcurrencyError, FlowExistsError, FlowNotFoundError, RegistrationError
from bpf._history import StageChange
from bpf.store.base import (
    AppendEvent,
    Event,
    FlowRow,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    Store,
    UpdateFlow,
    definition_clash,
)


class _RecordState:
    __slots__ = ("active", "flows", "last_change")

    def __init__(self) -> None:
        # A tuple, not a list: most records have one flow, and a 1-tuple is 40 bytes smaller.
        self.flows: tuple[str, ...] = ()
        self.active: str | None = None
        self.last_change: StageChange | None = None


class MemoryStore(Store):
    """Rows in dicts, with the same checks as a database: one flow per process and primary
    record, and optimistic concurrency on each flow's revision."""

    durable = False
    url = "memory"

    def __init__(self) -> None:
        # By (entity, record id): a lead 42 and an opportunity 42 are two records.
        self._records: dict[tuple[str, str], _RecordState] = {}
        self._flows: dict[str, FlowRow] = {}
        self._history: dict[str, list[StageChange]] = {}
        self._events: list[Event] = []
        self._seq = 0
        self._definitions: dict[tuple[str, int], tuple[str, str]] = {}

    def _record(self, key: tuple[str, str]) -> _RecordState:
        state = self._records.get(key)
        if state is None:
            state = self._records[key] = _RecordState()
        return state

    def write(self, ops: Sequence[Op]) -> None:
        # Check first, then apply: the ops of one call land together or not at all.
        flows = self._flows
        starting: set[tuple[str, str]] | None = None  # a batch may start two on one record
        for op in ops:
            kind = type(op)
            if kind is UpdateFlow:
                stored = flows.get(op.row.id)
                if stored is None:
                    raise FlowNotFoundError(f"flow {op.row.id!r} is no longer in the store")
                if stored.revision != op.expected_revision:
                    raise ConcurrencyError(
                        f"flow {op.row.id!r} was changed elsewhere (revision "
                        f"{stored.revision}, expected {op.expected_revision}): refresh it"
                    )
            elif kind is InsertFlow:
                row = op.row
                primary = row.records[0]
                key = (row.process, primary)
                if starting is None:
                    starting = set()
                state = self._records.get(primary)
                if key in starting or (
                    state and any(
                        flows[f].process == row.process and flows[f].records[0] == primary
                        for f in state.flows
                    )
                ):
                    raise FlowExistsError(
                        f"{primary[0]} {primary[1]!r} already has a {row.process!r} flow"
                    )
                starting.add(key)
        records = self._records
        for op in ops:
            kind = type(op)
            if kind is SetLastChange:
                key = (op.entity, op.record_id)
                state = records.get(key)
                if state is None:
                    state = records[key] = _RecordState()
                state.last_change = op.change
            elif kind is UpdateFlow:
                row = op.row
                flows[row.id] = row
                self._history[row.id].extend(op.entries)
                for record in op.new_records:
                    self._record(record).flows += (row.id,)
            elif kind is InsertFlow:
                row = op.row
                flows[row.id] = row
                self._history[row.id] = list(op.entries)
                for record in row.records:
                    self._record(record).flows += (row.id,)
            elif kind is SetActiveFlow:
                self._record((op.entity, op.record_id)).active = op.flow_id
            elif kind is AppendEvent:
                self._append_event(op.event)

    def record_flows(self, record_id: str, entity: str | None = None) -> list[FlowRow]:
        if entity is None:
            # Rare (an id given without its entity): scan for every entity with that id.
            ids = {f for (_, r), state in self._records.items() if r == record_id
                   for f in state.flows}
            return [row for f, row in self._flows.items() if f in ids]
        state = self._records.get((entity, record_id))
        return [self._flows[f] for f in state.flows] if state else []

    def get_flow(self, flow_id: str) -> FlowRow | None:
        return self._flows.get(flow_id)

    def history(self, flow_id: str) -> list[StageChange]:
        return list(self._history.get(flow_id, ()))

    def active_flow_id(self, record_id: str, entity: str) -> str | None:
        state = self._records.get((entity, record_id))
        return state.active if state else None

    def last_change(self, record_id: str, entity: str) -> StageChange | None:
        state = self._records.get((entity, record_id))
        return state.last_change if state else None

    def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> Iterator[FlowRow]:
        for row in list(self._flows.values()):
            if process is not None and row.process != process:
                continue
            if version is not None and row.version != version:
                continue
            if status is not None and row.status != status:
                continue
            yield row

    # -- definitions ------------------------------------------------------------------------------

    def save_definition(self, process: str, version: int, text: str, fingerprint: str) -> None:
        known = self._definitions.get((process, version))
        if known is not None and known[1] != fingerprint:
            raise RegistrationError(definition_clash(process, version, known[1], fingerprint))
        self._definitions[(process, version)] = (text, fingerprint)

    def definition_text(self, process: str, version: int) -> str | None:
        known = self._definitions.get((process, version))
        return None if known is None else known[0]

    def definitions(self) -> list[tuple[str, int, str]]:
        return sorted((p, v, f) for (p, v), (_, f) in self._definitions.items())

    # -- the outbox ------------------------------------------------------------------------------

    def _append_event(self, event: Event) -> None:
        self._seq += 1
        self._events.append(event._replace(seq=self._seq))
