"""`bpf.AsyncEngine`: the engine for asyncio applications, awaitable, on the same code.

There is one engine. `AsyncEngine` holds a `bpf.Engine` and runs its operations, unchanged,
inside a greenlet (SQLAlchemy's ``greenlet_spawn``, the bridge its ``AsyncSession`` runs the
ORM through): the move core decides, the hooks, bindings, snapshots and units apply, and the
store's own statements write, exactly as in the sync engine. Where that code does I/O (a
driver call, an ``async def`` hook or stage action, an async record loader), it waits on the
coroutine and the event loop runs other tasks meanwhile. Only the I/O differs.

Concurrency in one process: moves of different flows run at the same time (the SQL store
writes on a pool of connections: `bpf.store.sql.aio.AsyncSQLStore`); moves of one flow are
serialized by a per-flow `asyncio.Lock`, and across processes by the stored revision check as
ever. A batch (`AsyncEngine.batch`) or a joined transaction (`AsyncEngine.transaction`)
belongs to the task that opened it: other tasks' moves never join it.

On the memory store, with no ``async def`` callable registered, there is no I/O to wait on:
the operations run directly, without a greenlet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.util import await_, greenlet_spawn

from bpf._errors import StoreError
from bpf._history import StageChange
from bpf.definition.model import ProcessDefinition
from bpf.runtime.aio_flow import AsyncFlow
from bpf.runtime.aio_outbox import AsyncConsumer
from bpf.runtime.bindings import EntityBinding
from bpf.runtime.engine import Engine
from bpf.runtime.flow import Actor, Flow, FlowEvent
from bpf.runtime.transaction import Transactions
from bpf.runtime.unit import Unit
from bpf.store.aio import AsyncStore
from bpf.store.base import Event, Store

T = TypeVar("T")


def _awaiting(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as the sync engine calls it: an ``async def`` function is awaited in place
    (its caller runs in a greenlet); a plain one is returned as it is."""
    if not inspect.iscoroutinefunction(fn):
        return fn

    @functools.wraps(fn)
    def awaited(*args: Any, **kwargs: Any) -> Any:
        return await_(fn(*args, **kwargs))

    return awaited


class _TaskTransactions(Transactions):
    """`Transactions` whose open batch or joined transaction is the current task's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._units: ContextVar[Unit | None] = ContextVar("bpf_unit", default=None)
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def unit(self) -> Unit | None:
        return self._units.get()

    @unit.setter
    def unit(self, value: Unit | None) -> None:
        self._units.set(value)


class _Engine(Engine):
    """The sync engine an `AsyncEngine` runs: awaitable flows, a batch per task."""

    _flow_class = AsyncFlow
    _transactions_class = _TaskTransactions
    _facade: AsyncEngine


class AsyncEngine:
    """`bpf.Engine` for asyncio: the same concepts and names, awaited.

    ``store`` is None or ``"memory"``, a database URL (``"sqlite+aiosqlite:///bpf.db"``,
    ``"postgresql+psycopg://user@host/db"``; a sync URL gets the asyncio driver of its
    database) or a store. ``writers`` is how many connections the SQL store writes on at once
    (default 4 on PostgreSQL, 1 on SQLite). Hooks, stage actions, record factories and entity
    ``load``/``save`` functions may be plain or ``async def`` functions; they are called (and
    awaited) in order, as in `bpf.Engine`.

    The store is opened (tables created or checked) by `open`, or by the first awaited
    operation; `aclose` (or ``async with``) releases its connections.
    """

    __module__ = "bpf"

    def __init__(
        self,
        store: Any = None,
        *,
        clock: Callable[[], datetime] | None = None,
        actions: Mapping[str, Callable[..., Any]] | None = None,
        writers: int | None = None,
        pool_size: int | None = None,
    ) -> None:
        from bpf.store.sql.aio import AsyncSQLStore

        opened: Store
        if isinstance(store, str) and store != "memory":
            opened = AsyncSQLStore(store, writers=writers, pool_size=pool_size)
        else:
            from bpf.store import open_store

            opened = open_store(store)
            if opened.durable and not isinstance(opened, AsyncSQLStore):
                raise StoreError(
                    f"bpf.AsyncEngine cannot use {opened!r}: its driver would block the event "
                    "loop at every read and write; give the database URL (or a "
                    "bpf.store.sql.aio.AsyncSQLStore) and the engine opens it on an asyncio "
                    "driver"
                )
        #: an asyncio SQL store opens (creates or checks its tables) awaited, on first use
        self._pending_open = isinstance(opened, AsyncSQLStore)
        self._sync = _Engine(opened, clock=clock)
        self._sync._facade = self
        #: greenlets are needed once the store does I/O or an async callable is registered
        self._direct = not opened.durable
        self._opening: asyncio.Lock | None = None
        #: flow id -> [its lock, how many tasks hold or wait for it]
        self._locks: dict[str, list[Any]] = {}
        for name, fn in (actions or {}).items():
            self.actions[name] = fn

    # -- running the sync engine's code -----------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pending_open:
            await self.open()
        if self._direct:
            return fn(*args, **kwargs)
        return await greenlet_spawn(fn, *args, **kwargs)  # type: ignore[no-any-return]

    async def _locked(self, flow: Flow, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` with the flow's lock held: one move of a flow at a time in this process."""
        key = flow._state.id
        held = self._locks.get(key)
        if held is None:
            held = self._locks[key] = [asyncio.Lock(), 0]
        held[1] += 1  # the tasks holding or waiting for it: gone with the last one
        try:
            async with held[0]:
                return await self._spawned(fn, *args)
        finally:
            held[1] -= 1
            if not held[1]:
                del self._locks[key]

    async def _spawned(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` in a greenlet, even where `_call` would not need one (it awaits inside)."""
        if self._pending_open:
            await self.open()
        return await greenlet_spawn(fn, *args)  # type: ignore[no-any-return]

    def _async_callable(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = _awaiting(fn)
        if wrapped is not fn:
            self._direct = False
        return wrapped

    async def open(self) -> AsyncEngine:
        """Open the store: create its tables or check their schema version. Idempotent."""
        if not self._pending_open:
            return self
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pending_open:
                await greenlet_spawn(self._sync.store.open)  # type: ignore[attr-defined]
                self._pending_open = False
        return self

    # -- configuration ---------------------------------------------------------------------------

    @property
    def store(self) -> AsyncStore:
        """The store, awaited (`bpf.store.aio.AsyncStore`; its ``sync`` is the store)."""
        return AsyncStore(self._sync.store, self.open)

    @property
    def engine(self) -> Engine:
        """The sync engine this one runs (its reads and writes need a greenlet on a SQL
        store: use it for what `bpf.reports` and the CLI ask of an engine, in one)."""
        return self._sync

    @property
    def actions(self) -> _Actions:
        """Stage actions by name, for ``on_enter``/``on_exit`` (plain or ``async def``); fill
        before `register`."""
        return _Actions(self)

    def now(self) -> datetime:
        """The engine's clock, read once (UTC)."""
        return self._sync.now()

    async def register(self, definition: ProcessDefinition) -> ProcessDefinition:
        """See `bpf.Engine.register`."""
        return await self._call(self._sync.register, definition)

    async def processes(self, *, stored: bool = False) -> tuple[ProcessDefinition, ...]:
        """See `bpf.Engine.processes`."""
        return await self._call(self._sync.processes, stored=stored)

    async def process(self, name: str, version: int | None = None) -> ProcessDefinition:
        """See `bpf.Engine.process`."""
        return await self._call(self._sync.process, name, version)

    def on(self, event: str, fn: Callable[[FlowEvent], Any]) -> Callable[[FlowEvent], Any]:
        """See `bpf.Engine.on`; ``fn`` may be an ``async def`` function."""
        self._sync.on(event, self._async_callable(fn))
        return fn

    def record_factory(self, entity: str, fn: Callable[[Flow, Any], Any]) -> None:
        """See `bpf.Engine.record_factory`; ``fn`` may be an ``async def`` function."""
        self._sync.record_factory(entity, self._async_callable(fn))

    def entity(
        self, name: str, *, model: type | None = None, key: str | None = None,
        load: Callable[[str], Any] | None = None, save: Callable[[Any], Any] | None = None,
    ) -> EntityBinding:
        """See `bpf.Engine.entity`; ``load`` and ``save`` may be ``async def`` functions. An ORM
        ``model``'s rows are loaded with the `AsyncSession` of the open `transaction`."""
        return self._sync.entity(
            name, model=model, key=key,
            load=None if load is None else self._async_callable(load),
            save=None if save is None else self._async_callable(save),
        )

    # -- lookups ---------------------------------------------------------------------------------

    async def flows(self, record: Any, *, entity: str | None = None) -> list[AsyncFlow]:
        """See `bpf.Engine.flows`."""
        return await self._call(self._sync.flows, record, entity=entity)  # type: ignore[arg-type]

    async def flow(self, record: Any, process: str, *, entity: str | None = None) -> AsyncFlow:
        """See `bpf.Engine.flow`."""
        return await self._call(self._sync.flow, record, process, entity=entity)  # type: ignore[arg-type]

    async def active_flow(self, record: Any, *, entity: str | None = None) -> AsyncFlow | None:
        """See `bpf.Engine.active_flow`."""
        return await self._call(self._sync.active_flow, record, entity=entity)  # type: ignore[arg-type]

    async def last_stage_change(
        self, record: Any, *, entity: str | None = None
    ) -> StageChange | None:
        """See `bpf.Engine.last_stage_change`."""
        return await self._call(self._sync.last_stage_change, record, entity=entity)

    async def get_flow(self, flow_id: str) -> AsyncFlow:
        """See `bpf.Engine.get_flow`."""
        return await self._call(self._sync.get_flow, flow_id)  # type: ignore[arg-type]

    async def iter_flows(
        self, process: str | None = None, *, version: int | None = None, status: str | None = None
    ) -> AsyncIterator[AsyncFlow]:
        """See `bpf.Engine.iter_flows`: ``async for flow in engine.iter_flows(...)``; a page
        of flows is read at a time."""
        rows = self._sync.store.iter_flows(process, version=version, status=status)
        done = object()
        while True:
            row = await self._call(next, rows, done)
            if row is done:
                return
            yield await self._call(lambda r=row: next(self._sync.flows_of([r])))  # type: ignore[misc]

    # -- starting and moving ---------------------------------------------------------------------

    async def start(
        self, process: str, record: Any, *, actor: Actor | None = None,
        version: int | None = None,
    ) -> AsyncFlow:
        """See `bpf.Engine.start`."""
        return await self._call(self._sync.start, process, record, actor=actor,  # type: ignore[return-value]
                                version=version)

    async def switch(
        self, record: Any, process: str, *, actor: Actor | None = None,
        entity: str | None = None,
    ) -> AsyncFlow:
        """See `bpf.Engine.switch`."""
        return await self._call(self._sync.switch, record, process, actor=actor,  # type: ignore[return-value]
                                entity=entity)

    async def migrate(
        self, process: str, to_version: int, stage_map: Mapping[str, str] | None = None, *,
        actor: Actor | None = None,
    ) -> int:
        """See `bpf.Engine.migrate` (one batch, of this task)."""
        return await self._call(self._sync.migrate, process, to_version, stage_map, actor=actor)

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[AsyncEngine]:
        """See `bpf.Engine.batch`: the batch is this task's; other tasks' moves stay out of it."""
        async with self._entered(self._sync._tx.batch()):
            yield self

    @contextlib.asynccontextmanager
    async def transaction(self, conn: Any) -> AsyncIterator[AsyncEngine]:
        """See `bpf.Engine.transaction`: ``conn`` is a SQLAlchemy `AsyncConnection` or
        `AsyncSession` on the store's database. The ``*_changed`` hooks run when the
        application's ``await session.commit()`` commits."""
        sync = getattr(conn, "sync_session", None) or getattr(conn, "sync_connection", None)
        async with self._entered(self._sync._tx.join(sync if sync is not None else conn)):
            yield self

    @contextlib.asynccontextmanager
    async def _entered(self, cm: contextlib.AbstractContextManager[Any]
                       ) -> AsyncIterator[None]:
        # The sync context manager, its enter and exit each run as the engine's code runs.
        await self._call(cm.__enter__)
        try:
            yield
        except BaseException as exc:
            if not await self._call(cm.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await self._call(cm.__exit__, None, None, None)

    # -- the outbox ------------------------------------------------------------------------------

    async def events(self, after: int | None = None, *, limit: int = 100,
                     process: str | None = None) -> list[Event]:
        """See `bpf.Engine.events`."""
        return await self._call(self._sync.events, after, limit=limit, process=process)

    def consumer(self, name: str, *, process: str | None = None,
                 lease: float = 30.0) -> AsyncConsumer:
        """See `bpf.Engine.consumer`; the consumer's calls are awaited, and its waits for new
        events let the event loop run."""
        return AsyncConsumer(self._sync.store, name, process=process, lease=lease,
                             bridge=self._spawned)

    async def deliver(self, *, limit: int | None = None) -> int:
        """See `bpf.Engine.deliver`."""
        return await self._call(self._sync.deliver, limit=limit)

    async def prune_events(self, before: datetime) -> int:
        """See `bpf.Engine.prune_events`."""
        return await self._call(self._sync.prune_events, before)

    # -- closing ---------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the store's connections."""
        if self._sync.store.durable:
            await greenlet_spawn(self._sync.close)
        else:
            self._sync.close()

    async def __aenter__(self) -> AsyncEngine:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<bpf.AsyncEngine store={self._sync.store.url!r}>"


class _Actions(dict[str, Callable[..., Any]]):
    """`AsyncEngine.actions`: a view that files ``async def`` actions as awaited ones."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine._sync.actions)
        self._engine = engine

    def __setitem__(self, name: str, fn: Callable[..., Any]) -> None:
        super().__setitem__(name, fn)
        self._engine._sync.actions[name] = self._engine._async_callable(fn)

    def setdefault(self, name: str, fn: Callable[..., Any]) -> Any:  # type: ignore[override]
        if name not in self:
            self[name] = fn
        return self[name]

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for name, fn in dict(*args, **kwargs).items():
            self[name] = fn


__all__ = ["AsyncEngine", "AsyncFlow"]
