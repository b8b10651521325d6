"""`bpf.AsyncConsumer`: a named consumer of the outbox for asyncio applications.

It is the sync `bpf.runtime.outbox.Consumer`, awaited: leasing a partition, passing over other
processes' events, acknowledging, following and letting go are that consumer's code, run in
SQLAlchemy's greenlet bridge as `bpf.AsyncEngine` runs the engine's. Only waiting for new
events differs: it awaits the store's wait (`bpf.store.aio.AsyncStore.wait_events`), so a
consumer waiting for events never holds up the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.util import await_

from bpf.runtime.outbox import Consumer
from bpf.store.aio import AsyncStore
from bpf.store.base import Event, Store

#: Runs a sync function in a greenlet (the store opened first), awaited: `AsyncEngine._spawned`.
Bridge = Callable[..., Awaitable[Any]]


class _Consumer(Consumer):
    """The sync consumer an `AsyncConsumer` runs: its waits await the store's, in the loop."""

    def __init__(self, store: Store, name: str, *, process: str | None, lease: float) -> None:
        super().__init__(store, name, process=process, lease=lease)
        self._awaited = AsyncStore(store)

    def wait(self, timeout: float = 1.0) -> bool:
        return await_(self._awaited.wait_events(timeout))  # type: ignore[no-any-return]


class AsyncConsumer:
    """A named reader of the outbox whose position is kept in the store: the consumer of
    `bpf.Engine.consumer` (docs/outbox.md), awaited. Made by `bpf.AsyncEngine.consumer`."""

    __module__ = "bpf"

    def __init__(self, store: Store, name: str, *, process: str | None, lease: float,
                 bridge: Bridge) -> None:
        self._sync = _Consumer(store, name, process=process, lease=lease)
        self._bridge = bridge

    @property
    def name(self) -> str:
        """The consumer's name, under which the store keeps its position."""
        return self._sync.name

    @property
    def process(self) -> str | None:
        """The process whose events it takes (None: every process's)."""
        return self._sync.process

    @property
    def lease(self) -> float:
        """Seconds a worker holds a partition it does not acknowledge (SQLite and memory)."""
        return self._sync.lease

    @property
    def worker(self) -> str:
        """This worker's id (host:pid:random)."""
        return self._sync.worker

    async def poll(self, limit: int = 100) -> list[Event]:
        """See `bpf.runtime.outbox.Consumer.poll`."""
        return await self._bridge(self._sync.poll, limit)  # type: ignore[no-any-return]

    async def ack(self, event: Event) -> None:
        """See `bpf.runtime.outbox.Consumer.ack`."""
        await self._bridge(self._sync.ack, event)

    async def release(self) -> None:
        """See `bpf.runtime.outbox.Consumer.release`."""
        await self._bridge(self._sync.release)

    async def wait(self, timeout: float = 1.0) -> bool:
        """Wait up to ``timeout`` seconds for a new event, the event loop running other tasks
        meanwhile; True when one may have come (see `bpf.runtime.outbox.Consumer.wait`)."""
        return await self._bridge(self._sync.wait, timeout)  # type: ignore[no-any-return]

    async def follow(self, *, limit: int = 100, idle: float = 1.0,
                     stop: Callable[[], bool] | None = None) -> AsyncIterator[Event]:
        """Events as they come: ``async for event in consumer.follow(...)`` (see
        `bpf.runtime.outbox.Consumer.follow`). Each is acknowledged when the next one is asked
        for. The partition is let go when ``stop()`` is true, or, when the loop is left by a
        ``break`` or an error, once the iterator is closed (``contextlib.aclosing``) or
        collected."""
        events = self._sync.follow(limit=limit, idle=idle, stop=stop)
        done = object()
        try:
            while (event := await self._bridge(next, events, done)) is not done:
                yield event
        finally:
            await self._bridge(events.close)

    def __repr__(self) -> str:
        return f"<bpf.AsyncConsumer {self.name!r} worker={self.worker}>"


__all__ = ["AsyncConsumer"]
