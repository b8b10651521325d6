"""Finding flows: by record (entity, id), by process, by id, streamed; and turning the rows a
store returns into the engine's one `Flow` object per flow.

`Lookups` is the part of `bpf.Engine` that reads: it never changes a flow, except to bring an
older in-memory state up to a newer stored row (a row never moves a flow backwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bpf._errors import FlowNotFoundError, UnknownStageError
from bpf._history import StageChange
from bpf.runtime.bindings import bind_if_matches
from bpf.runtime.flow import Flow
from bpf.store.base import FlowRow

if TYPE_CHECKING:
    from bpf.runtime.bindings import Bindings, Records
    from bpf.runtime.identity import IdentityMap
    from bpf.runtime.registry import Registry
    from bpf.runtime.transaction import Transactions
    from bpf.store.base import Store


class Lookups:
    """The read side of an engine (mixed into `bpf.Engine`)."""

    _lock: Any
    _store: Store
    _registry: Registry
    _bindings: Bindings
    _records: Records
    _flows: IdentityMap
    _flow_class: type[Flow]
    _tx: Transactions

    def _through(self) -> dict[str, Any]:
        """Where lookups read: inside `Engine.transaction`, through the application's
        connection, so they see what bpf wrote there and is not committed yet (a flow just
        started, a move); else in the store's own transaction."""
        unit = self._tx.unit
        if unit is None or unit.connection is None:
            return {}
        return {"connection": unit.connection}

    def flows(self, record: Any, *, entity: str | None = None) -> list[Flow]:
        """Every flow on the record (a record object or its id), all processes, in start order."""
        entity, rid = self._records.resolve(record, entity)
        with self._lock:
            flows = [self._materialize(row)
                     for row in self._store.record_flows(rid, entity, **self._through())]
            if not isinstance(record, str):
                for flow in flows:
                    bind_if_matches(flow, entity, rid, record)
            return flows

    def flow(self, record: Any, process: str, *, entity: str | None = None) -> Flow:
        """The record's flow of ``process``; `bpf.FlowNotFoundError` when there is none.

        A process that runs on one entity says the record's entity itself."""
        entity = self._entity_of_process(record, process, entity)
        flow = self._find_flow(record, process, entity)
        if flow is None:
            entity, rid = self._records.resolve(record, entity)
            raise FlowNotFoundError(f"{entity} {rid!r} has no {process!r} flow")
        return flow

    def _entity_of_process(self, record: Any, process: str, entity: str | None) -> str | None:
        if entity is None and (not self._bindings.any or self._bindings.of_record(record) is None):
            entities = set(self._registry.get(process).definition.entities)
            if len(entities) == 1:
                return entities.pop()
        return entity

    def _find_flow(self, record: Any, process: str, entity: str | None) -> Flow | None:
        for flow in self.flows(record, entity=entity):
            if flow._state.process == process:
                return flow
        return None

    def active_flow(self, record: Any, *, entity: str | None = None) -> Flow | None:
        """The flow the record shows: the last one started on it or switched to."""
        entity, rid = self._records.resolve(record, entity)
        with self._lock:
            flow_id = self._store.active_flow_id(rid, entity, **self._through())
            if flow_id is None:
                return None
            for flow in self.flows(record, entity=entity):
                if flow.id == flow_id:
                    return flow
            return None

    def last_stage_change(self, record: Any, *, entity: str | None = None) -> StageChange | None:
        """The latest stage change on the record made by any flow: the unambiguous source of
        the pipeline phase (which flow, which stage, who, when)."""
        entity, rid = self._records.resolve(record, entity)
        with self._lock:
            return self._store.last_change(rid, entity, **self._through())

    def _read_history(self, flow_id: str) -> list[StageChange]:
        """A flow's history from the store, read where the lookups read (`Flow.history`)."""
        return self._store.history(flow_id, **self._through())

    def get_flow(self, flow_id: str) -> Flow:
        """A flow by its id; `bpf.FlowNotFoundError` when there is none."""
        with self._lock:
            found = self._store.get_flow(flow_id, **self._through())
            if found is None:
                raise FlowNotFoundError(f"no flow with id {flow_id!r}")
            return self._materialize(found)

    def iter_flows(
        self, process: str | None = None, *, version: int | None = None, status: str | None = None
    ) -> Iterator[Flow]:
        """Flows matching the filters, streamed from the store."""
        for row in self._store.iter_flows(process, version=version, status=status):
            with self._lock:
                yield self._materialize(row)

    def flows_of(self, rows: Iterator[FlowRow] | list[FlowRow]) -> Iterator[Flow]:
        """The engine's flow object for each row a store query returned (`bpf.reports` reads
        stale flows this way)."""
        for row in rows:
            with self._lock:
                yield self._materialize(row)

    # -- rows into flows ---------------------------------------------------------------------

    def _materialize(self, row: FlowRow) -> Flow:
        flow = self._flows.get(row.id)
        if flow is not None:
            # A row never moves a flow backwards: an older one (read before a commit, or while
            # this engine's batch is open) leaves the flow as it is.
            if row.revision > flow._state.revision:
                self._apply_row(flow, row)
            return flow
        compiled = self._compiled_for(row)
        flow = self._flow_class(self, compiled, row, (None,) * len(row.records))
        self._flows.add(flow)
        return flow

    def _compiled_for(self, row: FlowRow) -> Any:
        compiled = self._registry.for_row(row.process, row.version)
        if row.stage not in compiled.stages:
            raise UnknownStageError(
                f"flow {row.id!r} is at stage {row.stage!r}, which process {row.process!r} "
                f"version {row.version} as registered here does not have: the database was "
                "written with another definition under this name and version; register that "
                "one, or give the changed one a new version and migrate"
            )
        return compiled

    def _apply_row(self, flow: Flow, row: FlowRow) -> None:
        compiled = self._compiled_for(row)
        bound = dict(zip((e for e, _ in flow._state.records), flow._bound, strict=True))
        flow._compiled = compiled
        flow._stage = compiled.stages[row.stage]
        flow._state = row
        flow._bound = tuple(bound.get(e) for e, _ in row.records)
        flow._history = None

    def _refresh(self, flow: Flow) -> None:
        with self._lock:
            row = self._store.get_flow(flow.id, **self._through())
            if row is None:
                raise FlowNotFoundError(f"flow {flow.id!r} is no longer in the store")
            if row.revision != flow._state.revision:
                self._apply_row(flow, row)
