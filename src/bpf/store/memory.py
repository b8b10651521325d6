"""The in-memory store: flow rows and history in this process; nothing survives it."""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from bpf._errors import (
    ConcurrencyError,
    EventsPrunedError,
    FlowExistsError,
    FlowNotFoundError,
    RegistrationError,
)
from bpf._history import StageChange
from bpf.store.base import (
    PARTITIONS,
    AppendEvent,
    Claim,
    Event,
    FlowRow,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    Store,
    UpdateFlow,
    definition_clash,
    partition_of,
)

_new = tuple.__new__


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
        self._seq = 0
        self._outbox = threading.Condition(threading.Lock())
        self._waiters = 0
        self._events: list[Event] = []
        self._first = 0  # events before this index are pruned
        self._parts: list[list[Event]] = [[] for _ in range(PARTITIONS)]
        self._part_first = [0] * PARTITIONS
        #: the seq of the last pruned event, overall and per partition
        self._horizon = 0
        self._part_horizon = [0] * PARTITIONS
        self._consumers: dict[str, list[list[Any]]] = {}
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

    def record_flows(self, record_id: str, entity: str | None = None, *,
                     connection: Any = None) -> list[FlowRow]:
        if entity is None:
            # Rare (an id given without its entity): scan for every entity with that id.
            ids = {f for (_, r), state in self._records.items() if r == record_id
                   for f in state.flows}
            return [row for f, row in self._flows.items() if f in ids]
        state = self._records.get((entity, record_id))
        return [self._flows[f] for f in state.flows] if state else []

    def get_flow(self, flow_id: str, *, connection: Any = None) -> FlowRow | None:
        return self._flows.get(flow_id)

    def history(self, flow_id: str, *, connection: Any = None) -> list[StageChange]:
        return list(self._history.get(flow_id, ()))

    def active_flow_id(self, record_id: str, entity: str, *,
                       connection: Any = None) -> str | None:
        state = self._records.get((entity, record_id))
        return state.active if state else None

    def last_change(self, record_id: str, entity: str, *,
                    connection: Any = None) -> StageChange | None:
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
    # The last `max_events` events stay in memory (a million moves would otherwise keep a
    # million events): older ones are pruned as new ones come, and a reader or consumer
    # behind them gets `bpf.EventsPrunedError` rather than a silent gap. Events live in one
    # list per partition (a consumer's worker reads one) and a global one (`read_events`), each
    # trimmed from the front by an offset, compacted now and then.

    #: events kept in memory; older ones are pruned as new ones are appended
    max_events = 100_000

    def _append_event(self, event: Event) -> None:
        # Called inside `write`, under the engine's lock; the outbox lock orders it with
        # consumers in other threads.
        with self._outbox:
            self._seq = seq = self._seq + 1
            # Built as a tuple, not with _replace: this runs on every move of every flow.
            event = _new(Event, (event[0], seq, *event[2:]))
            self._events.append(event)
            self._parts[partition_of(event.flow_id)].append(event)
            kept = len(self._events) - self._first
            if kept > self.max_events:  # drop a hundredth at a time: amortized
                self._drop_oldest(kept - self.max_events + self.max_events // 100)
            if self._waiters:
                self._outbox.notify_all()

    def _drop_oldest(self, count: int) -> None:
        for event in self._events[self._first:self._first + count]:
            p = partition_of(event.flow_id)
            self._part_first[p] += 1
            self._part_horizon[p] = event.seq
            self._horizon = event.seq
        self._first += count
        if self._first > 4096 and self._first * 2 > len(self._events):
            del self._events[:self._first]
            self._first = 0
        for p, first in enumerate(self._part_first):
            if first > 1024 and first * 2 > len(self._parts[p]):
                del self._parts[p][:first]
                self._part_first[p] = 0

    def read_events(
        self, after: int | None = None, limit: int = 100, process: str | None = None
    ) -> list[Event]:
        with self._outbox:
            if after is not None and after < self._horizon:
                raise _pruned(f"events after {after}", self._horizon)
            events, first = self._events, self._first
            start = bisect.bisect_right(events, after or 0, lo=first, key=_seq)
            if process is None:
                return events[start:start + limit]
            found: list[Event] = []
            for event in itertools.islice(events, start, None):
                if event.process == process:
                    found.append(event)
                    if len(found) >= limit:
                        break
            return found

    def claim_events(
        self, consumer: str, worker: str, *, limit: int = 100, lease: float = 30.0,
        partition: int | None = None,
    ) -> Claim | None:
        now = time.monotonic()  # leases in memory never leave this process
        with self._outbox:
            parts = self._consumer(consumer)
            for p in parts:
                if p[1] == worker:
                    p[1] = None
            candidates = range(PARTITIONS) if partition is None else (partition,)
            best = None
            for i in candidates:
                position, owner, until = parts[i]
                if owner is not None and until > now:
                    continue
                if position < self._part_horizon[i]:
                    raise _pruned(f"consumer {consumer!r} (partition {i} at {position})",
                                  self._part_horizon[i])
                events = self._parts[i]
                if events and events[-1].seq > position and (
                        best is None or position < parts[best][0]):
                    best = i
            if best is None:
                return None
            parts[best][1:] = [worker, now + lease]
            events, position = self._parts[best], parts[best][0]
            start = bisect.bisect_right(events, position, lo=self._part_first[best], key=_seq)
            return Claim(best, position, tuple(events[start:start + limit]))

    def ack_events(
        self, consumer: str, worker: str, partition: int, position: int, *,
        release: bool = False,
    ) -> bool:
        with self._outbox:
            part = self._consumer(consumer)[partition]
            if part[1] != worker:
                return False
            part[0] = max(part[0], position)
            if release:
                part[1] = None
            return True

    def release_events(self, consumer: str, worker: str) -> None:
        with self._outbox:
            for part in self._consumer(consumer):
                if part[1] == worker:
                    part[1] = None

    def prune_events(self, before: datetime) -> int:
        with self._outbox:
            events = self._events
            count = 0
            for event in itertools.islice(events, self._first, None):
                if event.at >= before:
                    break
                count += 1
            # Events are appended in commit order and `at` comes from the engine's clock: the
            # first event at or after ``before`` ends the pruning (a clock run backwards keeps
            # a few older events a while longer, never loses a newer one).
            if count:
                self._drop_oldest(count)
            return count

    def wait_events(self, timeout: float) -> bool:
        with self._outbox:
            seq = self._seq
            self._waiters += 1  # so that appends notify only while someone waits
            try:
                self._outbox.wait_for(lambda: self._seq != seq, timeout)
            finally:
                self._waiters -= 1
            return self._seq != seq

    def _consumer(self, name: str) -> list[list[Any]]:
        """The consumer's [position, owner, lease until] per partition; a new consumer starts
        at the oldest kept event."""
        parts = self._consumers.get(name)
        if parts is None:
            parts = self._consumers[name] = [[h, None, 0.0] for h in self._part_horizon]
        return parts


def _seq(event: Event) -> int:
    return event.seq


def _pruned(what: str, horizon: int) -> EventsPrunedError:
    return EventsPrunedError(
        f"{what}: events up to {horizon} were pruned (the memory store keeps the last "
        f"{MemoryStore.max_events}); start a new consumer, or read from after={horizon}"
    )
