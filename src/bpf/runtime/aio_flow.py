"""`bpf.AsyncFlow`: a flow of a `bpf.AsyncEngine`, its operations awaited.

The state is read as on a `bpf.Flow`; every operation that changes it, or may read the store
or a record, runs the sync flow's code through the engine (`bpf.runtime.aio`): with the
flow's lock held and in a greenlet, or directly when nothing can wait (memory, no ``async
def`` callable).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bpf._history import StageChange, time_in_stage
from bpf.definition.model import Stage, Step
from bpf.runtime.flow import Actor, Flow

T = TypeVar("T")


class AsyncFlow(Flow):
    """A flow of an `AsyncEngine`: the same state and names as `bpf.Flow`; the operations
    that change it, or may read the store or a record, are awaited."""

    __module__ = "bpf"
    __slots__ = ()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        facade = self._engine._facade  # type: ignore[attr-defined]  # the AsyncEngine
        if facade._direct:
            # Nothing awaited inside: the operation runs whole before any other task does,
            # so it needs neither the greenlet nor the flow's lock.
            return fn(*args)
        return await facade._locked(self, fn, *args)

    async def next(  # type: ignore[override]
        self, *, actor: Actor | None = None, record: Any = None,
        expected_stage: str | None = None, expected_revision: int | None = None,
    ) -> Stage:
        """See `bpf.Flow.next`."""
        return await self._run(self._engine._next, self, actor, record, expected_stage,
                               expected_revision)

    async def previous(  # type: ignore[override]
        self, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> Stage:
        """See `bpf.Flow.previous`."""
        return await self._run(self._engine._previous, self, actor, expected_stage,
                               expected_revision)

    async def set_active(  # type: ignore[override]
        self, stage_id: str, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> Stage:
        """See `bpf.Flow.set_active`."""
        return await self._run(self._engine._set_active, self, stage_id, actor,
                               expected_stage, expected_revision)

    async def finish(  # type: ignore[override]
        self, outcome: str | None = None, *, actor: Actor | None = None,
        expected_stage: str | None = None, expected_revision: int | None = None,
    ) -> None:
        """See `bpf.Flow.finish`."""
        await self._run(self._engine._finish, self, outcome, actor, expected_stage,
                        expected_revision)

    async def abandon(  # type: ignore[override]
        self, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> None:
        """See `bpf.Flow.abandon`."""
        await self._run(self._engine._abandon, self, actor, expected_stage, expected_revision)

    async def reactivate(  # type: ignore[override]
        self, *, actor: Actor | None = None, expected_stage: str | None = None,
        expected_revision: int | None = None,
    ) -> None:
        """See `bpf.Flow.reactivate`."""
        await self._run(self._engine._reactivate, self, actor, expected_stage,
                        expected_revision)

    async def refresh(self) -> AsyncFlow:  # type: ignore[override]
        """See `bpf.Flow.refresh`."""
        await self._run(self._engine._refresh, self)
        return self

    async def view(self, actor: Actor | None = None) -> dict[str, Any]:  # type: ignore[override]
        """See `bpf.Flow.view`."""
        return await self._engine._facade._call(Flow.view, self, actor)  # type: ignore[attr-defined]

    async def missing(self) -> list[Step]:  # type: ignore[override]
        """See `bpf.Flow.missing`."""
        return await self._engine._facade._call(Flow.missing, self)  # type: ignore[attr-defined]

    async def history(self) -> tuple[StageChange, ...]:  # type: ignore[override]
        """See `bpf.Flow.history` (a method here: it may read the store)."""
        return await self._engine._facade._call(Flow.history.fget, self)  # type: ignore[attr-defined]

    async def time_in_stage(  # type: ignore[override]
        self, stage_id: str, *, now: datetime | None = None
    ) -> timedelta:
        """See `bpf.Flow.time_in_stage`."""
        self.process.stage(stage_id)  # unknown stage: UnknownStageError
        return time_in_stage(await self.history(), stage_id, now or self._engine.now())


__all__ = ["AsyncFlow"]
