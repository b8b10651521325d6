"""A blocking face on `bpf.AsyncEngine`, so the behaviour suite written for `bpf.Engine` runs
unchanged on the asyncio engine (imported by name, like runtime_support).

`Blocking(async_engine)` runs one event loop in a thread of its own, and in it one driver task
that awaits the submitted coroutines one after another. An `AsyncEngine` batch or joined
transaction belongs to the task that opened it (docs/asyncio.md); with one task for every
call, a batch opened by one call is the open batch of the next, as in the sync engine.

The face is mechanical, not a list of names: whatever the async engine (or its flows, or its
store) awaits, the face waits for; an async iterator is iterated; an async context manager is
entered and exited; anything else passes through. Flows come back wrapped the same way, one
face per flow object (``is`` holds as on the sync engine), with ``flow.history`` a property
again. It adds no behaviour: results come back as the async engine gave them, and exceptions
are re-raised as they were raised, same object.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
import weakref
from collections.abc import Awaitable, Iterator
from typing import Any

import bpf
from bpf.store.aio import AsyncStore


def open_engine(kind: str, store: Any = None, **kwargs: Any) -> Any:
    """A `bpf.Engine` (``kind`` "sync") or a `Blocking` `bpf.AsyncEngine` ("async") on
    ``store``; keyword arguments go to the engine."""
    if kind == "sync":
        return bpf.Engine(store, **kwargs)
    if kind == "async":
        return Blocking(bpf.AsyncEngine(store, **kwargs))
    raise ValueError(f"engine kind {kind!r}: sync or async")


class _Driver:
    """An event loop in a thread, and one task there awaiting what is submitted, in order."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._drive(),),
                                        name="bpf-blocking", daemon=True)
        self._thread.start()
        self._ready.wait()

    async def _drive(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._ready.set()
        while (item := await self._queue.get()) is not None:
            awaitable, done = item
            try:
                result = await awaitable
            except BaseException as exc:  # the caller's, whatever it is
                done.set_exception(exc)
            else:
                done.set_result(result)

    def run(self, awaitable: Awaitable[Any]) -> Any:
        if threading.current_thread() is self._thread:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never to run: no "never awaited" warning
            raise RuntimeError("a blocking call from inside the event loop would wait on itself")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (awaitable, done))
        return done.result()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join()


class _Face:
    """An async object with a blocking face; attributes set go to the object."""

    __slots__ = ("__weakref__", "_blocking", "_target")

    def __init__(self, target: Any, blocking: Blocking) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_blocking", blocking)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return self._blocking._wrap(value)
        blocking = self._blocking

        def call(*args: Any, **kwargs: Any) -> Any:
            return blocking._wrap(value(*args, **kwargs))

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"<blocking {self._target!r}>"


class BlockingFlow(_Face):
    """A `bpf.AsyncFlow` with the face of a `bpf.Flow`."""

    __slots__ = ()

    @property
    def history(self) -> tuple[bpf.StageChange, ...]:
        """Every stage and status change of this flow, oldest first (awaited on the flow)."""
        return self._blocking._wrap(self._target.history())


class Blocking(_Face):
    """`bpf.AsyncEngine` with the face of `bpf.Engine`: each awaited call blocks until done.

    Calls may come from any thread; they run one at a time, in the order they arrive, in one
    task of the engine's own event loop. `close` closes the engine (``aclose``) and ends the
    loop.
    """

    __slots__ = ("_driver", "_flows")

    def __init__(self, engine: bpf.AsyncEngine) -> None:
        super().__init__(engine, self)
        object.__setattr__(self, "_driver", _Driver())
        #: one face per flow object, by id(flow): a face holds its flow, so while the face
        #: lives the id is that flow's
        object.__setattr__(self, "_flows", weakref.WeakValueDictionary())

    def _wrap(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            return self._wrap(self._driver.run(value))
        if isinstance(value, bpf.AsyncFlow):
            face = self._flows.get(id(value))
            if face is None:
                face = self._flows[id(value)] = BlockingFlow(value, self)
            return face
        if value is self._target:
            return self
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, AsyncStore):
            return _Face(value, self)
        if hasattr(value, "__aenter__"):
            return self._entered(value)
        if hasattr(value, "__anext__"):
            return self._iterated(value)
        return value

    @contextlib.contextmanager
    def _entered(self, manager: Any) -> Iterator[Any]:
        entered = self._driver.run(manager.__aenter__())
        try:
            yield self._wrap(entered)
        except BaseException as exc:
            if not self._driver.run(manager.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self._driver.run(manager.__aexit__(None, None, None))

    def _iterated(self, iterator: Any) -> Iterator[Any]:
        try:
            while True:
                try:
                    item = self._driver.run(iterator.__anext__())
                except StopAsyncIteration:
                    return
                yield self._wrap(item)
        finally:
            self._driver.run(iterator.aclose())

    def close(self) -> None:
        """Close the engine (``await engine.aclose()``) and end its event loop."""
        try:
            self._driver.run(self._target.aclose())
        finally:
            self._driver.stop()

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Blocking", "BlockingFlow", "open_engine"]
