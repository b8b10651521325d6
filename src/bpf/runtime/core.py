"""The move core: what an operation on a flow does, decided without any I/O.

Every function here is pure, in the sans-I/O style of h11: it takes a flow's state (a
`FlowRow`), its compiled process and a way to read the record's fields, and returns either a
`Refusal` (a typed reason, and the missing steps for a gate) or where the operation goes;
`bpf.runtime.changes` then makes the `Change` (the new state, the history entry, the fields
to write on the record, the stage actions to run). No
store, lock, clock, hook or record object is touched: the engines apply changes, the stores
persist them. A sync and an async engine can share every decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from bpf._errors import AccessDenied, FlowError, Reason, StageGateError, TransitionError
from bpf.definition.model import ProcessDefinition, Step
from bpf.runtime.compiled import CompiledProcess, CompiledStage
from bpf.store.base import FlowRow

Getter = Callable[[str], Any]



class Refusal(NamedTuple):
    """Why an operation cannot happen; nothing changed."""

    reason: Reason
    message: str
    #: the required steps not filled validly, for a gate refusal
    missing: tuple[Step, ...] = ()
    #: why each of them is not (``"not filled"``, ``"not one of low, high"``...)
    problems: tuple[str, ...] = ()

    def error(self) -> FlowError:
        """The exception the engine raises for this refusal."""
        if self.reason is Reason.GATE:
            return StageGateError(
                self.message, missing=self.missing,
                problems={s.field: p for s, p in zip(self.missing, self.problems, strict=True)},
            )
        if self.reason is Reason.ROLE:
            return AccessDenied(self.message)
        return TransitionError(self.message, reason=self.reason)


# -- checks ----------------------------------------------------------------------------------------


def role_refusal(
    definition: ProcessDefinition, actor: Any, what: str
) -> Refusal | None:
    """A refusal when the process names roles and ``actor`` holds none of them."""
    roles = definition.roles
    if not roles or (actor is not None and not actor.roles.isdisjoint(roles)):
        return None
    who = "an anonymous caller" if actor is None else f"actor {actor.name!r}"
    return Refusal(
        Reason.ROLE,
        f"{who} may not {what} a {definition.process!r} flow: it needs one of the roles "
        f"{', '.join(roles)}",
    )


def missing_steps(stage: CompiledStage, get: Getter) -> list[Step]:
    """The gate: the stage's required steps that the record's values do not fill validly
    (`bpf.Step.problem`, the one rule of what fills a step)."""
    return [s for s in stage.required if s.problem(get(s.field)) is not None]


def _gate(compiled: CompiledProcess, current: CompiledStage, get: Getter, what: str
          ) -> Refusal | None:
    if not current.required:
        return None
    found = [(s, p) for s in current.required if (p := s.problem(get(s.field))) is not None]
    if not found:
        return None
    if all(p == "not filled" for _, p in found):
        said = (", ".join(f"{s.label} ({s.field})" for s, _ in found)
                + (" is" if len(found) == 1 else " are") + " not filled")
    else:
        said = ", ".join(f"{s.label} ({s.field}) is {p}" for s, p in found)
    return Refusal(
        Reason.GATE,
        f"cannot {what} stage {current.stage.name!r} of {compiled.definition.process!r}: "
        f"required {said}",
        tuple(s for s, _ in found), tuple(p for _, p in found),
    )


def pick_branch(stage: CompiledStage, get: Getter) -> str | Refusal:
    """The stage the active path goes to next from ``stage``: the first branch whose condition
    holds, else the default branch."""
    for test, target in stage.branches:
        if test is None or test(get):
            return target
    # The definition checks make the last branch a default; a hand-built definition may not.
    return Refusal(
        Reason.BRANCH, "no branch condition holds and the stage has no default branch"
    )


def predicted_path(
    compiled: CompiledProcess, state: FlowRow, get_for: Callable[[str], Getter]
) -> tuple[str, ...]:
    """The traversed path plus the stages ahead, predicted from the records' values
    (``get_for(entity)`` reads the fields of that entity's record)."""
    path = list(state.traversed)
    seen = set(path)
    stage = compiled.stages[state.stage]
    while stage.branches:
        target = pick_branch(stage, get_for(stage.stage.entity))
        if isinstance(target, Refusal) or target in seen:  # never loop on a bad definition
            break
        path.append(target)
        seen.add(target)
        stage = compiled.stages[target]
    return tuple(path)


def _active_refusal(state: FlowRow, what: str) -> Refusal | None:
    if state.status == "active":
        return None
    return Refusal(
        Reason.STATUS, f"the flow is {state.status}: reactivate it before you {what} it"
    )


# -- decisions: where an operation goes, or why it cannot ---------------------------------------


def decide_next(
    compiled: CompiledProcess, state: FlowRow, get: Getter, actor: Any
) -> str | Refusal:
    """The stage a forward move enters, or why it cannot: status, role, gate, end, branch."""
    roles = compiled.definition.roles
    if roles and (actor is None or actor.roles.isdisjoint(roles)):
        return role_refusal(compiled.definition, actor, "move")  # type: ignore[return-value]
    if state.status != "active":
        return _active_refusal(state, "move")  # type: ignore[return-value]
    current = compiled.stages[state.stage]
    if current.required:
        gate = _gate(compiled, current, get, "leave")
        if gate is not None:
            return gate
    if not current.branches:
        return Refusal(
            Reason.END,
            f"stage {current.stage.id!r} is the end of {compiled.definition.process!r}: there "
            "is no next stage; finish the flow instead",
        )
    return pick_branch(current, get)


def decide_previous(compiled: CompiledProcess, state: FlowRow, actor: Any) -> str | Refusal:
    """The stage a back move enters, or why it cannot."""
    refusal = role_refusal(compiled.definition, actor, "move") or _active_refusal(state, "move")
    if refusal is not None:
        return refusal
    if len(state.traversed) < 2:
        return Refusal(
            Reason.BEGINNING,
            f"stage {state.stage!r} is the beginning of the flow: there is no previous stage",
        )
    return state.traversed[-2]


def decide_set_active(
    compiled: CompiledProcess, state: FlowRow, stage_id: str, actor: Any
) -> str | Refusal:
    """``stage_id`` when the flow may jump back to it, or why it cannot.

    An unknown stage id raises `bpf.UnknownStageError` (a mistake in the call, not a refusal).
    """
    refusal = role_refusal(compiled.definition, actor, "move") or _active_refusal(state, "move")
    if refusal is not None:
        return refusal
    compiled.definition.stage(stage_id)  # unknown: UnknownStageError
    if stage_id == state.stage:
        return Refusal(Reason.ACTIVE, f"stage {stage_id!r} is already active")
    if stage_id not in state.traversed:
        return Refusal(
            Reason.UNREACHABLE,
            f"stage {stage_id!r} is unreachable: set_active only returns to a stage on the "
            f"traversed path ({' > '.join(state.traversed)})",
        )
    return stage_id


def decide_finish(
    compiled: CompiledProcess, state: FlowRow, outcome: str | None, actor: Any, get: Getter
) -> Mapping[str, Any] | Refusal:
    """The fields the outcome sets on the record, or why the flow cannot finish: role, status,
    not the last stage, the last stage's gate (as Dynamics' Finish), unknown outcome."""
    definition = compiled.definition
    refusal = role_refusal(definition, actor, "finish") or _active_refusal(state, "finish")
    if refusal is not None:
        return refusal
    current = compiled.stages[state.stage]
    if not current.is_last:
        return Refusal(
            Reason.END,
            f"stage {state.stage!r} is not the last stage of {definition.process!r}: a flow "
            "finishes only at its last stage",
        )
    gate = _gate(compiled, current, get, "finish at")
    if gate is not None:
        return gate
    if outcome is None:
        return {}
    found = definition.outcomes.get(outcome)
    if found is None:
        known = ", ".join(definition.outcomes) or "none"
        return Refusal(
            Reason.OUTCOME,
            f"unknown outcome {outcome!r} for {definition.process!r} (outcomes: {known})",
        )
    return found.set


def decide_abandon(compiled: CompiledProcess, state: FlowRow, actor: Any) -> Refusal | None:
    """Why the flow cannot be abandoned, or None."""
    return role_refusal(compiled.definition, actor, "abandon") or _active_refusal(state, "abandon")


def decide_reactivate(
    compiled: CompiledProcess, state: FlowRow, actor: Any
) -> Mapping[str, Any] | Refusal:
    """The fields reactivation writes back on the record (the process's ``reactivate: set``),
    or why the flow cannot be reactivated."""
    refusal = role_refusal(compiled.definition, actor, "reactivate")
    if refusal is not None:
        return refusal
    if state.status == "active":
        return Refusal(
            Reason.STATUS,
            "the flow is already active; only a finished or aborted flow can be reactivated",
        )
    return getattr(compiled.definition, "reactivate_set", None) or {}


def entity_refusal(target: CompiledStage, message: str) -> Refusal:
    """A move whose target stage's record cannot be had."""
    return Refusal(Reason.ENTITY, message.format(stage=target.stage.id, entity=target.stage.entity))
