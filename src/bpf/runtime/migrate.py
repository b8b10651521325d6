"""Moving running flows onto a newer version of their process, explicitly.

A flow stays on the version it started on: registering version 2 changes nothing for flows of
version 1. `Engine.migrate` moves the active ones over, mapping each flow's stage and path,
with a ``migrate`` entry in its history; this module decides it, without I/O: `check` before
anything changes, then one `change` per flow.

The whole migration is ONE store transaction (one `Engine.batch`): either every active flow of
the older versions moves, or none does (a concurrent change to one of them raises
`bpf.ConcurrencyError` and the migration can simply be run again). The flows being moved are
held in memory until the commit, so a migration of millions of flows needs memory to match.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bpf._errors import Reason, TransitionError, UnknownStageError
from bpf.definition.model import ProcessDefinition
from bpf.runtime import changes
from bpf.runtime.changes import Change
from bpf.runtime.compiled import CompiledProcess
from bpf.store.base import FlowRow


def check(
    definition: ProcessDefinition, mapping: Mapping[str, str],
    active: Mapping[tuple[int, str], int],
) -> list[int]:
    """Check a migration onto ``definition`` before anything changes; returns the older
    versions that have active flows. ``active`` counts active flows by (version, stage id).

    `bpf.UnknownStageError` when the map names a stage ``definition`` lacks, and
    `bpf.TransitionError` (reason ``"migrate"``) naming every stage that active flows are in
    and that has no mapping.
    """
    process, to_version = definition.process, definition.version
    missing = sorted({t for t in mapping.values() if not definition.has_stage(t)})
    if missing:
        raise UnknownStageError(
            f"the stage map of {process!r} names stage(s) {', '.join(map(repr, missing))}, "
            f"which version {to_version} does not have "
            f"(its stages: {', '.join(s.id for s in definition.stages)})"
        )
    old = {key: n for key, n in active.items() if key[0] < to_version}
    unmapped: dict[str, int] = {}
    for (_, stage), n in old.items():
        if _target(stage, mapping, definition) is None:
            unmapped[stage] = unmapped.get(stage, 0) + n
    if unmapped:
        listed = ", ".join(
            f"{s!r} ({n} flow{'s' * (n != 1)})" for s, n in sorted(unmapped.items())
        )
        raise TransitionError(
            f"cannot migrate {process!r} to version {to_version}: active flows are in "
            f"stage(s) that version {to_version} does not have and the stage map does not "
            f"map: {listed}; add them to stage_map (stages of version {to_version}: "
            f"{', '.join(s.id for s in definition.stages)})",
            reason=Reason.MIGRATE,
        )
    return sorted({v for v, _ in old})


def _target(stage: str, mapping: Mapping[str, str], definition: ProcessDefinition) -> str | None:
    """The stage id of the new version for an old stage id, or None when there is none."""
    new = mapping.get(stage, stage)
    return new if definition.has_stage(new) else None


def change(
    target: CompiledProcess,
    compiled: CompiledProcess,
    state: FlowRow,
    mapping: Mapping[str, str],
    at: datetime,
    actor: Any,
) -> Change:
    """The change that moves one flow (``state``, on ``compiled``) onto ``target``.

    Its traversed path is mapped stage by stage, dropping stages with no counterpart, and kept
    a walk of the new version from its first stage to the new active stage.
    """
    definition = target.definition
    source = compiled.stages[state.stage]
    old_stage = source.stage
    new_id = _target(old_stage.id, mapping, definition)
    if new_id is None:  # the flow moved there after the check: nothing is written
        raise TransitionError(
            f"flow {state.id!r} moved to stage {old_stage.id!r} during the migration; version "
            f"{definition.version} has no such stage: add it to stage_map",
            reason=Reason.MIGRATE,
        )
    entity = target.stages[new_id].stage.entity
    rid = changes.record_of(state.records, entity)
    if rid is None:
        raise TransitionError(
            f"flow {state.id!r} would move from stage {old_stage.id!r} to {new_id!r}, on the "
            f"{entity!r} entity, but it has no {entity} record: map the stage to one on "
            f"{', '.join(e for e, _ in state.records)}",
            reason=Reason.ENTITY,
        )
    return changes.migrate(
        target, state, source, new_id, _path(state.traversed, mapping, definition, new_id),
        rid, at, actor,
    )


def _path(
    old: tuple[str, ...], mapping: Mapping[str, str], definition: ProcessDefinition, active: str
) -> tuple[str, ...]:
    """The traversed path on the new version: the old one mapped, ending at ``active``, a walk
    of the new version's stage graph from its first stage."""
    mapped: list[str] = []
    for stage in old:
        new = _target(stage, mapping, definition)
        if new is not None and new not in mapped:
            mapped.append(new)
    if active in mapped:
        del mapped[mapped.index(active) + 1:]
    else:
        mapped.append(active)
    # Keep the longest stretch ending at the active stage that the new version can walk...
    i = len(mapped) - 1
    while i > 0 and mapped[i] in definition.successors(mapped[i - 1]):
        i -= 1
    walk = mapped[i:]
    # ...and lead up to it from the first stage, as every flow's path begins there.
    lead = _shortest_walk(definition, definition.first_stage.id, walk[0])
    return tuple(lead[:-1] + walk) if lead else tuple(walk)


def _shortest_walk(definition: ProcessDefinition, start: str, end: str) -> list[str]:
    came: dict[str, Any] = {start: None}
    queue = deque([start])
    while queue:
        stage = queue.popleft()
        if stage == end:
            walk = []
            node: Any = stage
            while node is not None:
                walk.append(node)
                node = came[node]
            return walk[::-1]
        for nxt in definition.successors(stage):
            if nxt not in came:
                came[nxt] = stage
                queue.append(nxt)
    return []


__all__ = ["change", "check"]
