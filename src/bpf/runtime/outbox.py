"""The outbox, read: events in order, named consumers, and the delivery of the stage actions
that run after a change committed (``after_enter``, ``after_exit``).

Every committed change appended one `bpf.Event` in its own transaction (see
`bpf.runtime.transaction`); this module only reads them. A `Consumer` is a named position in
the store: its workers (threads, processes, machines) lease one partition of the events at a
time, handle its events in order and acknowledge them, so each event reaches one worker at a
time and, once acknowledged, never again. The built-in consumer ``bpf.after_actions`` runs
the ``after_*`` stage actions: right after a commit in the thread that made it, and by
`bpf.Engine.deliver` for whatever an earlier process committed and died before running.
docs/outbox.md tells the whole story.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bpf._errors import BpfError, HookError, StoreError
from bpf.store.base import Claim, Event, Store, partition_of

if TYPE_CHECKING:
    from bpf.runtime.registry import Registry

#: The kinds of change that run stage actions (as the move core runs on_enter/on_exit): a
#: start enters the first stage; next, previous and set_active leave one stage for another.
#: Status changes and migrations run none.
ACTION_KINDS = frozenset({"start", "next", "previous", "set_active"})

#: The name of the built-in consumer that runs after_enter/after_exit actions.
AFTER_ACTIONS = "bpf.after_actions"

log = logging.getLogger("bpf.outbox")


def worker_id() -> str:
    """A name for one worker: the host, the process id and a random part (two consumers in
    one process are two workers). SQLite uses host and pid to take over from a dead worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Consumer:
    """A named reader of the outbox whose position is kept in the store.

    Each event is delivered at least once: a worker that dies (or does not acknowledge)
    before `ack` leaves the event to be delivered again, so handlers should be idempotent,
    keyed on `Event.id`. Several workers (`Engine.consumer` called in several threads or
    processes with one name) share the events: each partition of the outbox (events are
    partitioned by flow id) is held by one worker at a time, so one flow's events arrive in
    order, each to one of them. With ``process``, only that process's events are returned;
    the others are passed over (acknowledged unseen).
    """

    def __init__(self, store: Store, name: str, *, process: str | None = None,
                 lease: float = 30.0) -> None:
        if not name or not isinstance(name, str):
            raise StoreError(f"a consumer needs a name (a non-empty string), got {name!r}")
        self._store = store
        #: the consumer's name, under which the store keeps its position
        self.name = name
        self.process = process
        self.lease = lease
        #: this worker's id (host:pid:random)
        self.worker = worker_id()
        self._claim: Claim | None = None

    def poll(self, limit: int = 100) -> list[Event]:
        """Lease a partition with unacknowledged events and return up to ``limit`` of them,
        in order (any partition leased before is let go first, its unacknowledged events with
        it). An empty list when there is nothing to take now."""
        while True:
            claim = self._claim = self._store.claim_events(
                self.name, self.worker, limit=limit, lease=self.lease)
            if claim is None:
                return []
            if self.process is None:
                return list(claim.events)
            found = [e for e in claim.events if e.process == self.process]
            if found:
                return found
            # Nothing of our process: pass over them all and look again.
            self._store.ack_events(self.name, self.worker, claim.partition,
                                   claim.events[-1].seq, release=True)

    def ack(self, event: Event) -> None:
        """Record that ``event`` (and every earlier one of its partition) was handled: it is
        not delivered again. `bpf.StoreError` when this worker's lease on the partition ran
        out and another worker took it over (the event may then be handled twice)."""
        if not self._store.ack_events(self.name, self.worker, partition_of(event.flow_id),
                                      event.seq):
            raise StoreError(
                f"consumer {self.name!r}: the lease on the partition of event {event.seq} "
                f"(flow {event.flow_id!r}) ran out and another worker took it over; it may "
                "handle the event again"
            )

    def release(self) -> None:
        """Let go of the leased partition; its unacknowledged events go to the next worker."""
        self._claim = None
        self._store.release_events(self.name, self.worker)

    def wait(self, timeout: float = 1.0) -> bool:
        """Wait up to ``timeout`` seconds for a new event (PostgreSQL: LISTEN/NOTIFY; SQLite:
        polling at a bounded interval); True when one may have come."""
        return self._store.wait_events(timeout)

    def follow(self, *, limit: int = 100, idle: float = 1.0,
               stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Events as they come, for ever (or until ``stop()`` is true): each is acknowledged
        when the next one is asked for, so an event whose handling raised is not."""
        try:
            while stop is None or not stop():
                events = self.poll(limit)
                if not events:
                    self.wait(idle)
                    continue
                for event in events:
                    yield event
                    self.ack(event)
                    if stop is not None and stop():
                        return
        finally:
            self.release()

    def __repr__(self) -> str:
        return f"<bpf Consumer {self.name!r} worker={self.worker}>"


class AfterActions:
    """Runs after_enter/after_exit actions through the built-in consumer ``bpf.after_actions``.

    An event's actions run, then the event is acknowledged: a process killed in between runs
    them again on the next delivery (at least once; never again once acknowledged). A failing
    action leaves its event unacknowledged, and the later events of its partition wait behind
    it (one flow's actions run in order).
    """

    def __init__(self, store: Store, registry: Registry) -> None:
        self._store = store
        self._registry = registry
        self._token = secrets.token_hex(4)

    def _worker(self) -> str:
        # The pid read now: a forked child is another worker.
        return f"{socket.gethostname()}:{os.getpid()}:{self._token}"

    def deliver(self, limit: int | None = None, partition: int | None = None) -> int:
        """Run the after-actions of unacknowledged events (of ``partition`` only, if given);
        returns how many events were acknowledged. The first failing action stops the
        delivery with `bpf.HookError` (its event stays unacknowledged)."""
        worker = self._worker()
        done = 0
        store = self._store
        while limit is None or done < limit:
            batch = 100 if limit is None else min(100, limit - done)
            claim = store.claim_events(AFTER_ACTIONS, worker, limit=batch,
                                       partition=partition)
            if claim is None:
                break
            position = claim.position
            try:
                for event in claim.events:
                    if self._run(event):
                        # Acknowledged at once: a crash now must not run them again.
                        store.ack_events(AFTER_ACTIONS, worker, claim.partition, event.seq)
                    position = event.seq
                    done += 1
            finally:
                store.ack_events(AFTER_ACTIONS, worker, claim.partition, position,
                                 release=True)
            if len(claim.events) < batch and partition is not None:
                break
        return done

    def after_commit(self, flow_id: str | None) -> None:
        """Deliver right after a commit (the flow's partition; every partition for a batch),
        in the committing thread. A failure is logged, not raised: the change stands, and its
        event waits for the next delivery (`bpf.Engine.deliver`)."""
        try:
            self.deliver(partition=None if flow_id is None else partition_of(flow_id))
        except BpfError as exc:
            log.error("after-actions not delivered (retried by engine.deliver()): %s", exc)

    def _run(self, event: Event) -> bool:
        """Run ``event``'s after-actions; True when it had any."""
        if event.kind not in ACTION_KINDS:
            return False
        compiled = self._registry.for_row(event.process, event.version)
        stages = compiled.stages
        ran = False
        for when, stage_id in (("after_exit", event.from_stage), ("after_enter", event.to_stage)):
            if stage_id is None:
                continue
            stage = stages.get(stage_id)
            if stage is None:
                continue
            for name, fn in getattr(stage, when):
                ran = True
                _call(fn, event, name, when, stage_id)
        return ran


def _call(fn: Callable[[Event], Any], event: Event, name: str, when: str, stage: str) -> None:
    try:
        fn(event)
    except Exception as exc:
        raise HookError(
            f"{when} action {name!r} of stage {stage!r} failed for event {event.seq} (flow "
            f"{event.flow_id!r}, {event.kind}); the change stands and the event stays "
            f"unacknowledged, delivered again by engine.deliver(): {type(exc).__name__}: {exc}"
        ) from exc
