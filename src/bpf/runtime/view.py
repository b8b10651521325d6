"""The process bar: what a UI shows of one flow, as plain JSON data.

Every answer comes from the move core (`bpf.runtime.core`), so the view and the moves can
never disagree about what is allowed. The JSON Schema of a view ships beside this module as
``view.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from bpf.runtime import core

if TYPE_CHECKING:
    from bpf.runtime.flow import Actor, Flow

Getter = Callable[[str], Any]


@cache
def view_schema() -> dict[str, Any]:
    """The JSON Schema every `bpf.Flow.view` validates against."""
    text = resources.files("bpf.runtime").joinpath("view.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def _json(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def view(flow: Flow, actor: Actor | None, get_for: Callable[[str], Getter]) -> dict[str, Any]:
    """The view of ``flow`` for ``actor``; ``get_for(entity)`` reads that entity's record
    (empty values where the flow has no record of it yet)."""
    compiled = flow._compiled
    definition = compiled.definition
    state = flow._state
    path = core.predicted_path(compiled, state, get_for)
    traversed = len(state.traversed)
    stages = []
    for i, stage_id in enumerate(path):
        stage = compiled.stages[stage_id].stage
        get = get_for(stage.entity)
        stages.append({
            "id": stage.id,
            "name": stage.name,
            "category": stage.category,
            "phase": stage.phase,
            "entity": stage.entity,
            "state": ("active" if stage_id == state.stage
                      else "done" if i < traversed else "predicted"),
            "steps": [
                {
                    "field": step.field,
                    "label": step.label,
                    "type": step.type,
                    "required": step.required,
                    "filled": step.is_satisfied(get(step.field)),
                    "choices": [_json(c) for c in step.choices],
                }
                for step in stage.steps
            ],
        })
    get = get_for(flow._stage.stage.entity)
    target = core.decide_next(compiled, state, get, actor)
    allowed = type(target) is str
    nxt: dict[str, Any] = {"allowed": allowed, "missing": []}
    if not allowed:
        nxt["reason"] = str(target.reason)  # type: ignore[union-attr]
        nxt["missing"] = [s.field for s in target.missing]  # type: ignore[union-attr]
    finish = core.decide_finish(compiled, state, None, actor, get)
    if isinstance(finish, core.Refusal):
        outcomes: list[str | None] = []
    else:
        outcomes = list(definition.outcomes) or [None]
    return {
        "flow": state.id,
        "process": {"id": definition.process, "name": definition.name,
                    "version": definition.version},
        "record": {"entity": state.records[0][0], "id": state.records[0][1]},
        "revision": state.revision,
        "status": state.status,
        "stage": state.stage,
        "stages": stages,
        "actions": {
            "next": nxt,
            "previous": type(core.decide_previous(compiled, state, actor)) is str,
            "set_active": [
                s for s in state.traversed[:-1]
                if type(core.decide_set_active(compiled, state, s, actor)) is str
            ],
            "finish": outcomes,
            "abandon": core.decide_abandon(compiled, state, actor) is None,
            "reactivate": not isinstance(core.decide_reactivate(compiled, state, actor),
                                         core.Refusal),
        },
    }
