"""The in-memory store: flows live as Python objects in this process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bpf._errors import FlowExistsError
from bpf.store.base import InsertFlow, Op, SetActiveFlow, SetLastChange, Store, UpdateFlow

if TYPE_CHECKING:
    from bpf.runtime.flow import Flow, StageChange


class _RecordState:
    __slots__ = ("active", "flows", "last_change")

    def __init__(self) -> None:
        # A tuple, not a list: most records have one flow, and a 1-tuple is 40 bytes smaller.
        self.flows: tuple[Flow, ...] = ()
        self.active: Flow | None = None
        self.last_change: StageChange | None = None


class MemoryStore(Store):
    """Keeps the engine's Flow objects themselves; nothing survives the process."""

    live = True
    url = "memory"

    def __init__(self) -> None:
        self._records: dict[str, _RecordState] = {}
        self._flows: dict[str, Flow] = {}

    def _record(self, record_id: str) -> _RecordState:
        state = self._records.get(record_id)
        if state is None:
            state = self._records[record_id] = _RecordState()
        return state

    def write(self, ops: Sequence[Op]) -> None:
        # Check first, then apply: the ops of one call land together or not at all. Only a
        # new flow can be refused (one flow per process and record).
        starting: set[tuple[str, str]] | None = None  # a batch may start two on one record
        for op in ops:
            if type(op) is InsertFlow:
                flow = op.flow
                process = flow._compiled.definition.process
                key = (process, flow.record_id)
                if starting is None:
                    starting = set()
                state = self._records.get(flow.record_id)
                if key in starting or (
                    state and any(f._compiled.definition.process == process for f in state.flows)
                ):
                    raise FlowExistsError(
                        f"record {flow.record_id!r} already has a {process!r} flow"
                    )
                starting.add(key)
        records = self._records
        for op in ops:
            kind = type(op)
            if kind is SetLastChange:
                state = records.get(op.record_id)
                if state is None:
                    state = records[op.record_id] = _RecordState()
                state.last_change = op.change
            elif kind is UpdateFlow:
                for _, rid in op.new_records:
                    self._record(rid).flows += (op.flow,)
            elif kind is InsertFlow:
                flow = op.flow
                self._flows[flow.id] = flow
                for _, rid, _ in flow._records:
                    self._record(rid).flows += (flow,)
            elif kind is SetActiveFlow:
                self._record(op.record_id).active = self._flows[op.flow_id]

    def record_flows(self, record_id: str) -> list[Flow]:
        state = self._records.get(record_id)
        return list(state.flows) if state else []

    def get_flow(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def history(self, flow_id: str) -> list[StageChange]:
        flow = self._flows.get(flow_id)
        return list(flow._history or ()) if flow else []

    def active_flow_id(self, record_id: str) -> str | None:
        state = self._records.get(record_id)
        return state.active.id if state and state.active else None

    def last_change(self, record_id: str) -> StageChange | None:
        state = self._records.get(record_id)
        return state.last_change if state else None

    def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> Iterator[Any]:
        for flow in list(self._flows.values()):
            definition = flow._compiled.definition
            if process is not None and definition.process != process:
                continue
            if version is not None and definition.version != version:
                continue
            if status is not None and flow.status != status:
                continue
            yield flow
