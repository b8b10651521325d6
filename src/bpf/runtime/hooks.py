"""The engine's hooks: handlers called before (cancelable) and after each change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bpf._errors import BpfError, Cancel, HookError, RegistrationError
from bpf.runtime.flow import FlowEvent

#: The events `Engine.on` accepts.
EVENTS = ("stage_changing", "stage_changed", "status_changing", "status_changed")

Handler = Callable[[FlowEvent], Any]


class Hooks(dict[str, list[Handler]]):
    """Handlers by event, in registration order (a dict: the move path asks it twice per
    move whether an event has handlers, and a dict answers without a Python call)."""

    def __init__(self) -> None:
        super().__init__((e, []) for e in EVENTS)

    def on(self, event: str, fn: Handler) -> Handler:
        if event not in self:
            raise RegistrationError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self[event].append(fn)
        return fn

    def before(self, info: FlowEvent) -> None:
        """Run the ``*_changing`` handlers; `bpf.Cancel` passes through, anything else is a
        `bpf.HookError`. Either way nothing has changed yet."""
        for fn in self[info.event]:
            try:
                fn(info)
            except Cancel:
                raise
            except Exception as exc:
                raise HookError(
                    f"{info.event} handler {getattr(fn, '__qualname__', fn)!r} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    def after(self, info: FlowEvent) -> None:
        """Run the ``*_changed`` handlers, once the change is committed."""
        for fn in self[info.event]:
            try:
                fn(info)
            except Exception as exc:
                raise HookError(
                    f"{info.event} handler {getattr(fn, '__qualname__', fn)!r} failed after the "
                    f"change was committed (the change stands): {type(exc).__name__}: {exc}"
                ) from exc


def run_actions(
    event: str, actions: tuple[tuple[str, Callable[..., Any]], ...], info: FlowEvent,
    stage: str | None,
) -> None:
    """Run a stage's ``on_enter`` or ``on_exit`` actions inside the change; any failure is a
    `bpf.HookError` (a `bpf.BpfError` passes as it is) and undoes the change."""
    for name, fn in actions:
        try:
            fn(info)
        except BpfError:
            raise
        except Exception as exc:
            raise HookError(
                f"{event} action {name!r} of stage {stage!r} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
