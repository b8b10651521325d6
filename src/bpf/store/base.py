"""The store interface: where flows, their history and each record's state live.

A store knows rows, never the engine's objects: it takes and returns `FlowRow` values and
`bpf.StageChange` history entries. The engine decides a change in memory, then hands the store
the writes of one change (or of one batch) as a list of ops to apply in ONE transaction; if that
raises, the engine reverts its in-memory state, so a refused write changes nothing anywhere.
Within one `Store.write`, a flow appears in at most one `InsertFlow` or `UpdateFlow`, which
carries the flow's state after the last change of that write and every history entry it made:
the engine's transaction unit folds a batch's many moves of one flow into one op.
"""

from __future__ import annotations

import statistics
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from bpf._errors import StoreError
from bpf._history import StageChange, stays


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


def definition_clash(process: str, version: int, stored: str, given: str) -> str:
    """The message of a second, different definition under one name and version."""
    return (
        f"process {process!r} version {version} is already stored with another definition "
        f"(fingerprint {stored[:12]}, this one {given[:12]}): two engines run different "
        "definitions under one name and version; give the new one a new version"
    )


class StageTime(NamedTuple):
    """The completed stays of flows in one stage: how many, and their total and median length.

    A stay runs from the history entry that put the flow in the stage to the next entry
    (a move, or finish/abandon, which stop the clock until reactivate); a ``migrate`` entry
    does not end it, and the whole stay counts for the stage the flow leaves.
    """

    stays: int
    total_seconds: float
    median_seconds: float


# The ops are named tuples: one is built per move, and a tuple costs a third of a frozen class.


class InsertFlow(NamedTuple):
    """A new flow, with its first history entries."""

    row: FlowRow
    entries: tuple[StageChange, ...]


class UpdateFlow(NamedTuple):
    """A changed flow, ``row`` its new state: applies only if the stored revision is still
    ``expected_revision``."""

    row: FlowRow
    expected_revision: int
    entries: tuple[StageChange, ...]
    #: records the flow spans from now on, (entity, record id)
    new_records: tuple[tuple[str, str], ...] = ()


class SetActiveFlow(NamedTuple):
    """The flow the record (``entity``, ``record_id``) shows: the last one started or switched
    to."""

    record_id: str
    flow_id: str
    entity: str


class SetLastChange(NamedTuple):
    """The latest stage change on the record (``entity``, ``record_id``), made by any flow."""

    record_id: str
    change: StageChange
    entity: str


class Event(NamedTuple):
    """One committed change of one flow, as the outbox keeps it (issue: stage changes reach
    other systems once). Written in the same transaction as the change it describes."""

    #: stable and unique: consumers use it to be idempotent
    id: str
    #: the store's sequence number, increasing in commit order; 0 in an `AppendEvent` op
    #: (the store assigns it)
    seq: int
    flow_id: str
    process: str
    version: int
    #: the record of the stage entered (or of the flow's stage, for a status change)
    entity: str
    record_id: str
    #: start, next, previous, set_active, migrate, finish, abandon, reactivate
    kind: str
    from_stage: str | None
    to_stage: str
    from_status: str | None
    to_status: str
    outcome: str | None
    actor: str | None
    at: datetime


class AppendEvent(NamedTuple):
    """Append ``event`` to the outbox, in the transaction of the change it describes."""

    event: Event


Op = InsertFlow | UpdateFlow | SetActiveFlow | SetLastChange | AppendEvent

#: Events are spread over this many partitions by flow id (`partition_of`): a consumer's
#: workers each hold one partition at a time, so one flow's events reach one worker at a
#: time, in order.
PARTITIONS = 16


def partition_of(flow_id: str) -> int:
    """The outbox partition of a flow's events (stable across processes and machines)."""
    return zlib.crc32(flow_id.encode()) % PARTITIONS


class Claim(NamedTuple):
    """Events a consumer's worker holds: the next events of one partition, leased to it until
    it acknowledges them, releases them, or the lease runs out."""

    partition: int
    #: the seq of the partition's last acknowledged event (0: none yet)
    position: int
    events: tuple[Event, ...]


class Store(ABC):
    """Where flows live. `MemoryStore` in memory; `SQLStore` in SQLite or PostgreSQL."""

    #: False when what the store holds dies with the process (the memory store): the engine
    #: then keeps every flow object it made, since no other copy of the records bound to them
    #: exists.
    durable: bool = True
    #: True when reads may run in several threads at once, each on a connection of its own
    #: (the reports run their independent queries side by side then).
    concurrent_reads: bool = False
    #: Where the store is, for messages (password hidden).
    url: str = ""

    @abstractmethod
    def write(self, ops: Sequence[Op]) -> None:
        """Apply every op in one transaction, or none.

        Raises `bpf.ConcurrencyError` when an `UpdateFlow` finds another revision, and
        `bpf.FlowExistsError` when an `InsertFlow` duplicates (process, primary record).
        """

    # The lookups below take the application's ``connection`` as `write` does: inside its
    # transaction (`bpf.Engine.transaction`) they read through it, and so see what bpf wrote
    # there and the application has not committed yet. A store without transactions to share
    # (memory) has none to read through.

    @abstractmethod
    def record_flows(self, record_id: str, entity: str | None = None, *,
                     connection: Any = None) -> list[FlowRow]:
        """Every flow spanning the record (``entity``, ``record_id``), in start order; with
        ``entity`` None, the flows spanning a record of that id of any entity (the engine
        uses it to tell whether an id is ambiguous)."""

    @abstractmethod
    def get_flow(self, flow_id: str, *, connection: Any = None) -> FlowRow | None:
        """One flow by id, or None."""

    @abstractmethod
    def history(self, flow_id: str, *, connection: Any = None) -> list[StageChange]:
        """The flow's history, oldest first."""

    @abstractmethod
    def active_flow_id(self, record_id: str, entity: str, *,
                       connection: Any = None) -> str | None:
        """The id of the flow the record shows, or None."""

    @abstractmethod
    def last_change(self, record_id: str, entity: str, *,
                    connection: Any = None) -> StageChange | None:
        """The latest stage change on the record by any flow, or None."""

    @abstractmethod
    def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> Iterator[FlowRow]:
        """Flows matching the filters, streamed."""

    # -- definitions ------------------------------------------------------------------------------
    # Dynamics keeps process definitions in the database beside their instances; so does bpf:
    # `Engine.register` saves each (process, version) once, and an engine that has not
    # registered a version reads its flows with the stored definition.

    @abstractmethod
    def save_definition(self, process: str, version: int, text: str, fingerprint: str) -> None:
        """Keep a registered definition's canonical text; idempotent. Another fingerprint
        under the same (process, version) raises `bpf.RegistrationError` naming both."""

    @abstractmethod
    def definition_text(self, process: str, version: int) -> str | None:
        """The canonical text stored for (process, version), or None."""

    @abstractmethod
    def definitions(self) -> list[tuple[str, int, str]]:
        """Every stored (process, version, fingerprint), sorted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- the outbox (docs/outbox.md) ------------------------------------------------------------
    # Every store that takes `AppendEvent` ops answers these; the defaults say it does not.

    def read_events(
        self, after: int | None = None, limit: int = 100, process: str | None = None
    ) -> list[Event]:
        """Up to ``limit`` events with a seq above ``after`` (None: from the oldest kept), in
        seq order; `bpf.EventsPrunedError` when events above ``after`` were pruned."""
        raise self._no_outbox()

    def claim_events(
        self, consumer: str, worker: str, *, limit: int = 100, lease: float = 30.0,
        partition: int | None = None,
    ) -> Claim | None:
        """For ``worker`` of ``consumer``: release what it holds, then lease one partition
        with unacknowledged events (``partition``, or any free one, the furthest behind
        first) and return its next events; None when there is none to take. A consumer
        seen for the first time starts at the oldest kept event. `bpf.EventsPrunedError`
        when the partition's position is behind the retention horizon."""
        raise self._no_outbox()

    def ack_events(
        self, consumer: str, worker: str, partition: int, position: int, *,
        release: bool = False,
    ) -> bool:
        """Record that ``worker`` of ``consumer`` handled ``partition`` up to seq ``position``
        (and, with ``release``, let the partition go); False when its lease was lost (another
        worker took the partition over and will handle those events again)."""
        raise self._no_outbox()

    def release_events(self, consumer: str, worker: str) -> None:
        """Let go of every partition ``worker`` of ``consumer`` holds, unacknowledged events
        included (another worker, or this one, takes them again)."""
        raise self._no_outbox()

    def prune_events(self, before: datetime) -> int:
        """Delete the events committed before ``before`` (their ``at``), whatever any consumer
        has read; returns how many. Reading behind them raises `bpf.EventsPrunedError`."""
        raise self._no_outbox()

    def wait_events(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a new event to be committed; True when one may
        have been (callers read to find out)."""
        raise self._no_outbox()

    def _no_outbox(self) -> Exception:
        return StoreError(f"{self.url or type(self).__name__}: this store keeps no outbox")

    # -- reports ---------------------------------------------------------------------------------
    # These defaults read every flow of the process (and, for some, its history): right for the
    # memory store. A database store answers them with queries instead.

    def stage_counts(
        self, process: str, *, status: str | None = "active"
    ) -> dict[tuple[int, str], int]:
        """How many flows of ``process`` are in each stage, by (version, stage id); only those
        with ``status`` (None: any status)."""
        return dict(Counter(
            (r.version, r.stage) for r in self.iter_flows(process, status=status)
        ))

    def status_counts(self, process: str) -> dict[str, int]:
        """How many flows of ``process`` have each status."""
        return dict(Counter(x.status for x in self.iter_flows(process)))

    def reached_counts(self, process: str) -> dict[str, int]:
        """How many flows of ``process`` ever entered each stage, by stage id."""
        counts: Counter[str] = Counter()
        for x in self.iter_flows(process):
            counts.update({e.to_stage for e in self.history(x.id)})
        return dict(counts)

    def advanced_counts(self, process: str) -> dict[str, int]:
        """How many flows of ``process`` ever moved forward (``next``) out of each stage."""
        counts: Counter[str] = Counter()
        for x in self.iter_flows(process):
            counts.update(
                {e.from_stage for e in self.history(x.id) if e.kind == "next"} - {None}
            )
        return dict(counts)

    def stale(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> Iterator[FlowRow]:
        """Active flows of ``process`` whose stage started before the cutoff given for their
        (version, stage id); stages without a cutoff are never stale."""
        for r in self.iter_flows(process, status="active"):
            cutoff = cutoffs.get((r.version, r.stage))
            if cutoff is not None and r.stage_started_at < cutoff:
                yield r

    def stale_counts(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> dict[tuple[int, str], int]:
        """How many `stale` flows there are, by (version, stage id)."""
        return dict(Counter((r.version, r.stage) for r in self.stale(process, cutoffs)))

    def time_in_stage(self, process: str) -> dict[str, StageTime]:
        """The completed stays of flows of ``process`` in each stage, by stage id."""
        lengths: dict[str, list[float]] = {}
        for x in self.iter_flows(process):
            for stay in stays(self.history(x.id)):
                if stay.ended_at is not None:
                    seconds = (stay.ended_at - stay.started_at).total_seconds()
                    lengths.setdefault(stay.stage, []).append(seconds)
        return {
            stage: StageTime(len(s), float(sum(s)), float(statistics.median(s)))
            for stage, s in lengths.items()
        }
