"""The store interface: where flows, their history and each record's state live.

The engine changes flows in memory, then hands the store the writes of one move (or of one
batch) as a list of ops to apply in ONE transaction; if that raises, the engine undoes the
in-memory change, so a refused write changes nothing anywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from bpf.runtime.flow import Flow, StageChange


class FlowRow(NamedTuple):
    """A flow's stored state, as a store reads and writes it."""

    id: str
    process: str
    version: int
    #: (entity, record id) for every record the flow spans, the primary record first
    records: tuple[tuple[str, str], ...]
    stage: str
    stage_started_at: datetime
    traversed: tuple[str, ...]
    status: str
    started_at: datetime
    completed_at: datetime | None
    outcome: str | None
    revision: int


def row_of(flow: Flow) -> FlowRow:
    """Snapshot of a flow's persistent state."""
    return FlowRow(
        id=flow.id,
        process=flow._compiled.definition.process,
        version=flow._compiled.definition.version,
        records=tuple((e, rid) for e, rid, _ in flow._records),
        stage=flow._stage.stage.id,
        stage_started_at=flow.stage_started_at,
        traversed=flow._traversed,
        status=flow.status,
        started_at=flow.started_at,
        completed_at=flow.completed_at,
        outcome=flow.outcome,
        revision=flow.revision,
    )


# The ops are named tuples: one is built per move, and a tuple costs a third of a frozen class.


class InsertFlow(NamedTuple):
    """A new flow, with its first history entries."""

    flow: Flow
    row: FlowRow | None
    entries: tuple[StageChange, ...]


class UpdateFlow(NamedTuple):
    """A changed flow: applies only if the stored revision is still ``expected_revision``."""

    flow: Flow
    row: FlowRow | None
    expected_revision: int
    entries: tuple[StageChange, ...]
    #: records the flow spans from now on, (entity, record id)
    new_records: tuple[tuple[str, str], ...] = ()


class SetActiveFlow(NamedTuple):
    """The flow the record shows (the last one started or switched to)."""

    record_id: str
    flow_id: str


class SetLastChange(NamedTuple):
    """The latest stage change on the record, made by any flow."""

    record_id: str
    change: StageChange


Op = InsertFlow | UpdateFlow | SetActiveFlow | SetLastChange


class Store(ABC):
    """Where flows live. `MemoryStore` in memory; `SQLStore` in SQLite or PostgreSQL."""

    #: True when the store keeps the engine's own Flow objects (no rows to materialize).
    live: ClassVar[bool] = False
    #: Where the store is, for messages (password hidden).
    url: str = ""

    @abstractmethod
    def write(self, ops: Sequence[Op]) -> None:
        """Apply every op in one transaction, or none.

        Raises `bpf.ConcurrencyError` when an `UpdateFlow` finds another revision, and
        `bpf.FlowExistsError` when an `InsertFlow` duplicates (process, primary record).
        """

    @abstractmethod
    def record_flows(self, record_id: str) -> list[Any]:
        """Every flow spanning the record, in start order (rows, or live flows)."""

    @abstractmethod
    def get_flow(self, flow_id: str) -> Any | None:
        """One flow by id (a row, or a live flow), or None."""

    @abstractmethod
    def history(self, flow_id: str) -> list[StageChange]:
        """The flow's history, oldest first."""

    @abstractmethod
    def active_flow_id(self, record_id: str) -> str | None:
        """The id of the flow the record shows, or None."""

    @abstractmethod
    def last_change(self, record_id: str) -> StageChange | None:
        """The latest stage change on the record by any flow, or None."""

    @abstractmethod
    def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> Iterator[Any]:
        """Flows matching the filters, streamed (rows, or live flows)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
