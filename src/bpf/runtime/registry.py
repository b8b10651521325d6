"""The processes an engine runs: each registered version, compiled once."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from bpf._errors import (
    HookError,
    PipelineFieldWarning,
    RegistrationError,
    UnknownProcessError,
)
from bpf.definition.model import ProcessDefinition
from bpf.definition.serialize import canonical_text, fingerprint
from bpf.runtime.compiled import CompiledProcess, compile_process
from bpf.store.base import Store


class Registry:
    """Compiled definitions by (process, version), and the latest version of each process."""

    def __init__(self, actions: Mapping[str, Callable[..., Any]], lock: threading.RLock,
                 store: Store) -> None:
        self._actions = actions
        self._lock = lock
        self._store = store
        #: versions known only from the store, compiled for reading their flows
        self._stored: dict[tuple[str, int], CompiledProcess] = {}
        self._compiled: dict[tuple[str, int], CompiledProcess] = {}
        self._latest: dict[str, CompiledProcess] = {}
        self._entities: frozenset[str] = frozenset()

    def register(self, definition: ProcessDefinition) -> ProcessDefinition:
        if not isinstance(definition, ProcessDefinition):
            raise RegistrationError(
                f"register() takes a ProcessDefinition, got {type(definition).__name__}"
            )
        key = (definition.process, definition.version)
        with self._lock:
            known = self._compiled.get(key)
            if known is not None:
                if known.definition != definition:
                    raise RegistrationError(
                        f"process {definition.process!r} version {definition.version} is already "
                        "registered with a different definition; give the new one a new version"
                    )
                return definition
            compiled = compile_process(definition, self._actions)
            # Kept beside the flows: another engine with another definition under this name
            # and version is refused here, and engines without it can still read the flows.
            self._store.save_definition(definition.process, definition.version,
                                        canonical_text(definition), fingerprint(definition))
            self._warn_shared_pipeline_field(definition)
            self._compiled[key] = compiled
            self._stored.pop(key, None)
            self._entities = self._entities | set(definition.entities)
            latest = self._latest.get(definition.process)
            if latest is None or latest.definition.version < definition.version:
                self._latest[definition.process] = compiled
        return definition

    def _warn_shared_pipeline_field(self, definition: ProcessDefinition) -> None:
        field = definition.pipeline_field
        if field is None:
            return
        entities = set(definition.entities)
        for other in self._latest.values():
            o = other.definition
            if o.process == definition.process or o.pipeline_field != field:
                continue
            shared = entities & set(o.entities)
            if shared:
                warnings.warn(
                    PipelineFieldWarning(
                        f"processes {o.process!r} and {definition.process!r} both write "
                        f"{', '.join(sorted(shared))}.{field}: with flows of both on one record it "
                        "holds the last stage change of either; use each flow's own stage or "
                        "Engine.last_stage_change(record) for an unambiguous answer"
                    ),
                    stacklevel=4,
                )

    def definitions(self) -> tuple[ProcessDefinition, ...]:
        return tuple(c.definition for c in self._compiled.values())

    def for_row(self, name: str, version: int) -> CompiledProcess:
        """The definition a stored flow runs: registered, else the one kept in the store
        (read-only: `bpf.UnknownProcessError` on a move); `bpf.UnknownProcessError` when
        neither has it."""
        compiled = self._compiled.get((name, version)) or self._stored.get((name, version))
        if compiled is not None:
            return compiled
        text = self._store.definition_text(name, version)
        if text is None:
            return self.get(name, version)  # raises, naming what is registered
        from bpf.definition.loader import loads_process

        definition = loads_process(text, source=f"<{name} v{version}, stored>")
        names = {n for s in definition.stages for n in s.actions}
        stubs = {n: _unregistered(name, version) for n in names}
        compiled = attrs.evolve(compile_process(definition, stubs), registered=False)
        with self._lock:
            self._stored[(name, version)] = compiled
        return compiled

    def stored(self) -> tuple[ProcessDefinition, ...]:
        """Every version the store keeps that is not registered here."""
        found = []
        for name, version, _ in self._store.definitions():
            if (name, version) not in self._compiled:
                found.append(self.for_row(name, version).definition)
        return tuple(found)

    def entities(self) -> frozenset[str]:
        """Every entity a registered process runs on."""
        return self._entities

    def names(self) -> list[str]:
        return sorted(self._latest)

    def get(self, name: str, version: int | None = None) -> CompiledProcess:
        """A compiled definition: the latest version unless ``version`` is given;
        `bpf.UnknownProcessError` when it is not registered."""
        compiled = (self._latest.get(name) if version is None
                    else self._compiled.get((name, version)))
        if compiled is None:
            known = ", ".join(sorted(self._latest)) or "none"
            what = name if version is None else f"{name} version {version}"
            raise UnknownProcessError(f"process {what!r} is not registered (registered: {known})")
        return compiled


def _unregistered(name: str, version: int) -> Callable[..., Any]:
    def action(*args: Any) -> None:
        raise HookError(f"process {name!r} version {version} is known from the store only: "
                        "register it to move its flows")

    return action


def refuse_unregistered(compiled: CompiledProcess) -> None:
    """Moves need the definition registered: one read back from the store may lack the
    engine's stage actions and hooks."""
    if not compiled.registered:
        d = compiled.definition
        raise UnknownProcessError(
            f"process {d.process!r} version {d.version} is known here from the store only: "
            "register it with this engine to move its flows (reading them needs nothing)"
        )


__all__ = ["Registry", "refuse_unregistered"]
