"""Compiling a process definition, once per (process, version), for the engine.

`compile_process` turns the definition into one table every flow of that definition shares: per
stage, its required steps, its branches as (test, target) pairs in evaluation order (read from
`ProcessDefinition.branches`, the one branch rule) and its resolved stage actions. The move core
runs on this table and nothing else; no state-machine library is involved on the hot path
(docs/performance.md has the figures). transitions does its real work elsewhere: drawing
(`bpf diagram`) and driving users' own models (`bpf.interop.transitions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from bpf._errors import RegistrationError
from bpf.definition.model import ProcessDefinition, Stage, Step

#: A branch condition's test: takes a field getter ``get(field) -> value``.
Test = Callable[[Callable[[str], Any]], bool]


@attrs.define(slots=True, frozen=True)
class CompiledStage:
    """One stage as the engine runs it."""

    stage: Stage
    required: tuple[Step, ...]
    #: (test or None for the default, target stage id), in evaluation order
    branches: tuple[tuple[Test | None, str], ...]
    on_enter: tuple[tuple[str, Callable[..., Any]], ...]
    on_exit: tuple[tuple[str, Callable[..., Any]], ...]
    #: run after the commit, by the outbox's delivery (`bpf.runtime.outbox`)
    after_enter: tuple[tuple[str, Callable[..., Any]], ...] = ()
    after_exit: tuple[tuple[str, Callable[..., Any]], ...] = ()

    @property
    def is_last(self) -> bool:
        return not self.branches


@attrs.define(slots=True, frozen=True)
class CompiledProcess:
    """A registered definition and its stage table."""

    definition: ProcessDefinition
    stages: Mapping[str, CompiledStage]
    first: CompiledStage
    #: False for a version this engine knows only from its store: its flows can be read
    #: (reports, history, views), not moved
    registered: bool = True


def compile_process(
    definition: ProcessDefinition, actions: Mapping[str, Callable[..., Any]]
) -> CompiledProcess:
    """Compile ``definition``; `RegistrationError` when it names an action not in ``actions``
    or its stage graph is not one the engine can run."""

    def resolve(stage: Stage, names: tuple[str, ...], where: str) -> tuple[tuple[str, Any], ...]:
        unknown = [n for n in names if n not in actions]
        if unknown:
            known = ", ".join(sorted(actions)) or "none registered"
            raise RegistrationError(
                f"process {definition.process!r} stage {stage.id!r} {where} names unknown "
                f"action(s) {', '.join(map(repr, unknown))}; engine.actions has: {known}"
            )
        return tuple((n, actions[n]) for n in names)

    check_graph(definition)
    table = {
        stage.id: CompiledStage(
            stage=stage,
            required=stage.required_steps,
            branches=tuple(
                (b.when.evaluate if b.when is not None else None, b.stage)
                for b in definition.branches(stage.id)
            ),
            on_enter=resolve(stage, stage.on_enter, "on_enter"),
            on_exit=resolve(stage, stage.on_exit, "on_exit"),
            after_enter=resolve(stage, stage.after_enter, "after_enter"),
            after_exit=resolve(stage, stage.after_exit, "after_exit"),
        )
        for stage in definition.stages
    }
    return CompiledProcess(
        definition=definition,
        stages=table,
        first=table[definition.first_stage.id],
    )


def check_graph(definition: ProcessDefinition) -> None:
    """`RegistrationError` unless the stage graph is one bpf can run: stages with unique ids,
    branches to known stages, a default branch last.

    For definitions built in code rather than loaded from YAML (the loader's checks say all this
    and more, located in the file); `bpf.interop.transitions` relies on the same.
    """
    problems = []
    ids = [s.id for s in definition.stages]
    if not ids:
        problems.append("it has no stages")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"duplicate stage ids {', '.join(duplicates)}")
    for stage in definition.stages:
        for branch in stage.next:
            if branch.stage not in ids:
                problems.append(f"stage {stage.id!r} branches to unknown stage {branch.stage!r}")
        if stage.next and stage.next[-1].when is not None:
            problems.append(f"stage {stage.id!r} has no default branch (one without `when`, last)")
    if problems:
        raise RegistrationError(
            f"process {definition.process!r} cannot be registered: " + "; ".join(problems)
        )
