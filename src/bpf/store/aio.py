"""The store contract, awaited: `AsyncStore` runs each method of a `bpf.store.Store` in
SQLAlchemy's greenlet bridge, so an asyncio application can read flow rows, history and report
counts without blocking its event loop. The store's own code runs unchanged (see
`bpf.store.sql.aio`); this is only its awaitable face.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bpf._history import StageChange
from bpf.store.base import Event, FlowRow, Op, StageTime, Store

T = TypeVar("T")


class AsyncStore:
    """``store``'s methods, awaited. ``store`` is a `bpf.store.Store`: on a database, an
    `bpf.store.sql.aio.AsyncSQLStore` (what ``bpf.AsyncEngine(url).store`` is); the memory
    store needs no bridge and is called directly."""

    def __init__(self, store: Store, ready: Callable[[], Awaitable[Any]] | None = None) -> None:
        #: the store itself, whose methods run in a greenlet (or anywhere, on memory)
        self.sync = store
        self._bridged = store.durable
        #: awaited before each call: opens the store (`bpf.AsyncEngine.open`)
        self._ready = ready

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._ready is not None:
            await self._ready()
        if not self._bridged:
            return fn(*args, **kwargs)
        from sqlalchemy.util import greenlet_spawn

        return await greenlet_spawn(fn, *args, **kwargs)  # type: ignore[no-any-return]

    async def write(self, ops: Sequence[Op]) -> None:
        """See `bpf.store.Store.write`."""
        await self._run(self.sync.write, ops)

    async def record_flows(self, record_id: str, entity: str | None = None) -> list[FlowRow]:
        """See `bpf.store.Store.record_flows`."""
        return await self._run(self.sync.record_flows, record_id, entity)

    async def get_flow(self, flow_id: str) -> FlowRow | None:
        """See `bpf.store.Store.get_flow`."""
        return await self._run(self.sync.get_flow, flow_id)

    async def history(self, flow_id: str) -> list[StageChange]:
        """See `bpf.store.Store.history`."""
        return await self._run(self.sync.history, flow_id)

    async def active_flow_id(self, record_id: str, entity: str) -> str | None:
        """See `bpf.store.Store.active_flow_id`."""
        return await self._run(self.sync.active_flow_id, record_id, entity)

    async def last_change(self, record_id: str, entity: str) -> StageChange | None:
        """See `bpf.store.Store.last_change`."""
        return await self._run(self.sync.last_change, record_id, entity)

    async def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> AsyncIterator[FlowRow]:
        """See `bpf.store.Store.iter_flows`: ``async for row in store.iter_flows(...)``."""
        rows = self.sync.iter_flows(process, version=version, status=status)
        done = object()
        while (row := await self._run(next, rows, done)) is not done:
            yield row  # type: ignore[misc]

    async def definition_text(self, process: str, version: int) -> str | None:
        """See `bpf.store.Store.definition_text`."""
        return await self._run(self.sync.definition_text, process, version)

    async def definitions(self) -> list[tuple[str, int, str]]:
        """See `bpf.store.Store.definitions`."""
        return await self._run(self.sync.definitions)

    async def read_events(
        self, after: int | None = None, limit: int = 100, process: str | None = None
    ) -> list[Event]:
        """See `bpf.store.Store.read_events`."""
        return await self._run(self.sync.read_events, after, limit, process)

    async def wait_events(self, timeout: float) -> bool:
        """See `bpf.store.Store.wait_events`; the event loop runs other tasks meanwhile (an
        `AsyncSQLStore` waits in it; the memory store's blocking wait runs in a thread)."""
        if self._bridged:
            return await self._run(self.sync.wait_events, timeout)
        if self._ready is not None:
            await self._ready()
        return await _in_thread(self.sync.wait_events, timeout)

    async def stage_counts(
        self, process: str, *, status: str | None = "active"
    ) -> dict[tuple[int, str], int]:
        """See `bpf.store.Store.stage_counts`."""
        return await self._run(self.sync.stage_counts, process, status=status)

    async def status_counts(self, process: str) -> dict[str, int]:
        """See `bpf.store.Store.status_counts`."""
        return await self._run(self.sync.status_counts, process)

    async def reached_counts(self, process: str) -> dict[str, int]:
        """See `bpf.store.Store.reached_counts`."""
        return await self._run(self.sync.reached_counts, process)

    async def advanced_counts(self, process: str) -> dict[str, int]:
        """See `bpf.store.Store.advanced_counts`."""
        return await self._run(self.sync.advanced_counts, process)

    async def stale_counts(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> dict[tuple[int, str], int]:
        """See `bpf.store.Store.stale_counts`."""
        return await self._run(self.sync.stale_counts, process, cutoffs)

    async def time_in_stage(self, process: str) -> dict[str, StageTime]:
        """See `bpf.store.Store.time_in_stage`."""
        return await self._run(self.sync.time_in_stage, process)

    async def close(self) -> None:
        """See `bpf.store.Store.close`."""
        await self._run(self.sync.close)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a daemon thread of its own, awaited. Not the loop's executor: a wait
    its task gave up on (cancelled) must hold up neither other work nor the program's exit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():  # the awaiting task was cancelled
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = fn(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="bpf-wait-events", daemon=True).start()
    return await done


__all__ = ["AsyncStore"]
