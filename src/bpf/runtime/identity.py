"""The identity map: one `Flow` object per flow id in an engine."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bpf.runtime.flow import Flow


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
