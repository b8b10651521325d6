"""Compiling a process definition, once per (process, version), for the engine.

`compile_process` builds one model-less `transitions.Machine` per definition: stages are its states
and each stage's branches are conditional ``next`` transitions, in evaluation order. The engine's
hot path then runs on `CompiledStage` rows read off that machine's transitions, one table every
flow of that definition shares, not on `Event.trigger`: a flow move must also gate, pick the
branch, write the pipeline field and the history, and transitions' per-event dispatch alone
costs more than all of that (docs/performance.md has the figures). Diagrams do not draw this
machine: `bpf diagram` builds its own from `ProcessDefinition.branches`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from transitions import Machine

from bpf._errors import RegistrationError
from bpf.definition.model import ProcessDefinition, Stage, Step

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

    @property
    def is_last(self) -> bool:
        return not self.branches


@attrs.define(slots=True, frozen=True)
class CompiledProcess:
    """A registered definition and its stage table."""

    definition: ProcessDefinition
    stages: Mapping[str, CompiledStage]
    first: CompiledStage


class _When:
    """A branch condition as a transitions condition: reads fields via ``event.kwargs["get"]``."""

    __slots__ = ("condition",)

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def __call__(self, event: Any) -> bool:
        return bool(self.condition.evaluate(event.kwargs["get"]))


def build_machine(definition: ProcessDefinition) -> Machine:
    """The definition's stage graph as one transitions machine with no model attached."""
    machine = Machine(
        model=None,
        states=[s.id for s in definition.stages],
        initial=None,
        auto_transitions=False,
        send_event=True,
        name=definition.process,
    )
    for stage in definition.stages:
        for branch in definition.branches(stage.id):
            conditions = [_When(branch.when)] if branch.when is not None else []
            machine.add_transition("next", stage.id, branch.stage, conditions=conditions)
    return machine


def _branches_of(machine: Machine, stage_id: str) -> tuple[tuple[Test | None, str], ...]:
    event = machine.events.get("next")
    transitions = event.transitions.get(stage_id, []) if event is not None else []
    return tuple(
        (t.conditions[0].func.condition.evaluate if t.conditions else None, t.dest)
        for t in transitions
    )


def compile_process(
    definition: ProcessDefinition, actions: Mapping[str, Callable[..., Any]]
) -> CompiledProcess:
    """Compile ``definition``; `RegistrationError` when it names an action not in ``actions``."""

    def resolve(stage: Stage, names: tuple[str, ...], where: str) -> tuple[tuple[str, Any], ...]:
        unknown = [n for n in names if n not in actions]
        if unknown:
            known = ", ".join(sorted(actions)) or "none registered"
            raise RegistrationError(
                f"process {definition.process!r} stage {stage.id!r} {where} names unknown "
                f"action(s) {', '.join(map(repr, unknown))}; engine.actions has: {known}"
            )
        return tuple((n, actions[n]) for n in names)

    _check_graph(definition)
    try:
        machine = build_machine(definition)
    except Exception as exc:  # transitions' own errors never reach the caller
        raise RegistrationError(
            f"process {definition.process!r} cannot be compiled: {type(exc).__name__}: {exc}"
        ) from exc
    table = {
        stage.id: CompiledStage(
            stage=stage,
            required=stage.required_steps,
            branches=_branches_of(machine, stage.id),
            on_enter=resolve(stage, stage.on_enter, "on_enter"),
            on_exit=resolve(stage, stage.on_exit, "on_exit"),
        )
        for stage in definition.stages
    }
    return CompiledProcess(
        definition=definition,
        stages=table,
        first=table[definition.first_stage.id],
    )


def _check_graph(definition: ProcessDefinition) -> None:
    """What the engine relies on, for definitions built in code rather than loaded from YAML
    (the loader's checks say all this and more, located in the file)."""
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

