"""Flow identity: new flow ids, and one `Flow` object per flow id in an engine."""

from __future__ import annotations

import itertools
import os
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bpf.runtime.flow import Flow


class _Ids:
    """Flow ids: a random 64-bit prefix per process and a counter, as 32 hex digits.

    Unique across processes and machines sharing a database (the prefix is drawn again in a
    forked child) at a tenth of the cost of a uuid4 per flow.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


#: A new flow id.
new_flow_id = _Ids()
#: A new outbox event id (its own prefix: an event id never equals a flow id).
new_event_id = _Ids()


class IdentityMap:
    """Flows by id. ``strong`` keeps every flow alive (a store that is not durable holds no
    other copy of the records bound to them); otherwise a flow nobody holds is dropped and
    read again from the store when asked for."""

    __slots__ = ("_flows",)

    def __init__(self, *, strong: bool) -> None:
        self._flows: dict[str, Flow] | weakref.WeakValueDictionary[str, Flow] = (
            {} if strong else weakref.WeakValueDictionary()
        )

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def add(self, flow: Flow) -> None:
        self._flows[flow._state.id] = flow

    def discard(self, flow_id: str) -> None:
        self._flows.pop(flow_id, None)
