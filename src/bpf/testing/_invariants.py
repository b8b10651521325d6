"""The checks: after every step, each flow and each record against the world; around a refused
operation, that nothing changed; after a reopen, that a new engine sees the same state.

Each check raises `Violation` naming the property broken, in the words of the process. The
engine is read only through its public API: flows' properties, ``engine.flows``,
``engine.flow`` and ``engine.last_stage_change``, each told the record's entity (the world
knows it; an engine on several entities does not guess).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bpf._errors import FlowNotFoundError
from bpf._history import StageChange
from bpf.runtime.engine import Engine
from bpf.runtime.flow import Flow
from bpf.testing._failure import Violation
from bpf.testing._strategies import show_value
from bpf.testing._world import FlowModel, World, predicted_path

# -- after every step ------------------------------------------------------------------------------


def check_flow(model: FlowModel) -> None:
    """The flow's paths, status and history against the definition and the world."""
    definition, flow, label = model.definition, model.flow, model.label
    traversed = flow.traversed_path
    stage = flow.stage.id
    # The traversed path is a walk of the graph, from the first stage to the active one.
    if not traversed or traversed[0] != definition.first_stage.id:
        raise Violation("path", f"the traversed path of {label} ({' > '.join(traversed)}) does "
                        f"not begin at the first stage {definition.first_stage.id}")
    for a, b in itertools.pairwise(traversed):
        if b not in definition.successors(a):
            raise Violation("path", f"the traversed path of {label} ({' > '.join(traversed)}) "
                            f"goes from {a} to {b}, which does not follow it")
    if traversed[-1] != stage or len(set(traversed)) != len(traversed):
        raise Violation("path", f"the traversed path of {label} ({' > '.join(traversed)}) does "
                        f"not end at its active stage {stage} exactly once")
    # The active path: the traversed path, then the stages the records' values predict.
    predicted = predicted_path(model, traversed)
    active = flow.active_path
    if stage not in active or tuple(active) != predicted:
        raise Violation("path", f"the active path of {label} is {' > '.join(active)}; from the "
                        f"definition and the records it is {' > '.join(predicted)}")
    if flow.status == "finished" and not definition.is_last(stage):
        raise Violation("status", f"{label} is finished at {stage}, which is not a last stage")
    # The history replays to the flow's state, and holds what succeeded, in order.
    history = flow.history
    expected = model.history
    got = entries(history)
    if got != expected:
        raise Violation("history", f"the history of {label} is {show_history(got)}; the "
                        f"operations above make it {show_history(expected)}")
    replay_history(model, history)
    for e in history:
        if (e.flow_id, e.process, e.version) != (flow.id, definition.process,
                                                 definition.version):
            raise Violation("history", f"a history entry of {label} names flow {e.flow_id} of "
                            f"{e.process} v{e.version}")
    # The engine agrees with what the operations above should have done.
    state = (stage, tuple(traversed), flow.status, flow.outcome)
    want = (model.stage, tuple(model.traversed), model.status, model.outcome)
    if state != want:
        raise Violation("allowed", f"{label} is at {stage} ({flow.status}, path "
                        f"{' > '.join(traversed)}); the operations above lead to {model.stage} "
                        f"({model.status}, path {' > '.join(model.traversed)})")


def replay_history(model: FlowModel, history: Sequence[StageChange]) -> None:
    """The history, replayed on the stage graph, gives the flow's stage, path and status."""
    definition, label = model.definition, model.label
    stage: str | None = None
    path: list[str] = []
    status = "active"

    def broken(entry: StageChange, why: str) -> Violation:
        return Violation("history", f"the history of {label} does not replay: entry "
                         f"{entry.kind} {entry.from_stage} → {entry.to_stage} {why}")

    for i, e in enumerate(history):
        if not definition.has_stage(e.to_stage):
            raise broken(e, "names a stage the process does not have")
        if e.phase != definition.stage(e.to_stage).phase:
            raise broken(e, f"has phase {e.phase!r}, not "
                         f"{definition.stage(e.to_stage).phase!r}")
        if e.kind == "start":
            if i != 0:
                raise broken(e, "is a second start")
            stage, path = e.to_stage, [e.to_stage]
            continue
        if i == 0:
            raise broken(e, "comes before the start")
        if e.from_stage != stage:
            raise broken(e, f"starts from {e.from_stage}, but the flow was at {stage}")
        if e.kind in ("next", "previous", "set_active") and status != "active":
            raise broken(e, f"moves a {status} flow")
        if e.kind == "next":
            if e.to_stage not in definition.successors(stage or ""):
                raise broken(e, f"goes to a stage that does not follow {stage}")
            path.append(e.to_stage)
        elif e.kind in ("previous", "set_active"):
            if e.to_stage not in path[:-1]:
                raise broken(e, "goes back to a stage not on the traversed path")
            if e.kind == "previous" and e.to_stage != path[-2]:
                raise broken(e, f"goes back past {path[-2]}")
            del path[path.index(e.to_stage) + 1:]
        elif e.kind in ("finish", "abandon", "reactivate"):
            if e.to_stage != stage:
                raise broken(e, "changes the stage")
            if (e.kind == "reactivate") == (status == "active"):
                raise broken(e, f"while the flow is {status}")
            if e.kind == "finish" and not definition.is_last(stage or ""):
                raise broken(e, "finishes at a stage that is not last")
            status = {"finish": "finished", "abandon": "aborted"}.get(e.kind, "active")
            continue
        else:
            raise broken(e, "has an unknown kind")
        stage = e.to_stage
    flow = model.flow
    if (stage, path, status) != (flow.stage.id, list(flow.traversed_path), flow.status):
        raise Violation(
            "history",
            f"the history of {label} replays to {stage} ({status}, path "
            f"{' > '.join(path)}), but the flow is at {flow.stage.id} ({flow.status}, path "
            f"{' > '.join(flow.traversed_path)})",
        )


def check_record(world: World, engine: Engine, record: Mapping[str, Any]) -> None:
    """The record's last stage change, pipeline field and flows against the world."""
    rid = record["id"]
    entity = world.entity_of[rid]
    last = world.last.get(rid)
    change = engine.last_stage_change(record, entity=entity)
    seen = None if change is None else (
        change.flow_id, change.process, change.kind, change.to_stage, change.phase
    )
    if seen != last:
        raise Violation("pipeline", f"engine.last_stage_change({rid}) is {show_change(seen)}; "
                        f"the last stage change on it was {show_change(last)}")
    for field, value in world.pipeline.get(rid, {}).items():
        if record.get(field) != value:
            assert last is not None
            raise Violation(
                "pipeline",
                f"{rid}.{field} is {show_value(record.get(field))}; the last stage change "
                f"on {rid} was {show_change(last)}",
            )
    running = sorted(f.process.process for f in engine.flows(record, entity=entity))
    expected = world.processes_on(rid)
    if running != expected:
        raise Violation("one-flow", f"engine.flows({rid}) lists {running or 'no flows'}; the "
                        f"flows on it are {expected or 'none'}")


# -- around a refusal ------------------------------------------------------------------------------


def snapshot(world: World, engine: Engine) -> dict[str, Any]:
    """Everything a refused operation must leave as it was."""
    entity_of = world.entity_of
    return {
        "records": {r["id"]: dict(r) for r in world.records},
        "flows": {
            m.label: (m.flow.stage.id, m.flow.traversed_path, m.flow.status,
                      m.flow.outcome, m.flow.history)
            for m in world.models
        },
        "last": {
            r["id"]: engine.last_stage_change(r, entity=entity_of[r["id"]]) for r in world.records
        },
        "lookup": {
            r["id"]: [f.id for f in engine.flows(r, entity=entity_of[r["id"]])]
            for r in world.records
        },
    }


def difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first thing that differs between two snapshots, said plainly; None if nothing."""
    for rid, old in before["records"].items():
        new = after["records"].get(rid, {})
        for field in sorted(set(old) | set(new)):
            if old.get(field) != new.get(field):
                return (f"{rid}.{field} changed from {show_value(old.get(field))} "
                        f"to {show_value(new.get(field))}")
    names = ("stage", "traversed path", "status", "outcome", "history")
    for label, old in before["flows"].items():
        new = after["flows"][label]
        for name, a, b in zip(names, old, new, strict=True):
            if a != b:
                if name == "history":
                    return f"the history of {label} went from {len(a)} to {len(b)} entries"
                return f"the {name} of {label} changed from {a!r} to {b!r}"
    for rid, old in before["last"].items():
        if after["last"][rid] != old:
            return f"the last stage change on {rid} changed"
    for rid, old in before["lookup"].items():
        if after["lookup"][rid] != old:
            new = after["lookup"][rid]
            return f"engine.flows({rid}) changed from {len(old)} to {len(new)} flows"
    return None


# -- after a reopen --------------------------------------------------------------------------------


def reopened(world: World, old: Engine, new: Engine) -> list[Flow]:
    """What a new engine on the same store sees is what ``old`` wrote: every flow, its history,
    every record's last stage change. Returns the new engine's flows, in the world's order."""
    entity_of = world.entity_of
    for record in world.records:
        new.flows(record, entity=entity_of[record["id"]])  # binds the records to the flows
    found_flows = []
    for model in world.models:
        entity = model.definition.first_stage.entity
        try:
            found = new.flow(model.records[entity], model.definition.process, entity=entity)
        except FlowNotFoundError:
            raise Violation("store", f"the new engine finds no {model.label} flow") from None
        for name in ("stage", "traversed_path", "status", "outcome", "history"):
            a, b = getattr(model.flow, name), getattr(found, name)
            if name == "stage":
                a, b = a.id, b.id
            if a != b:
                if name == "history":
                    raise Violation("store", f"the new engine sees the history of "
                                    f"{model.label} as {show_history(entries(b))}; the engine "
                                    f"that wrote it has {show_history(entries(a))}"
                                    f"{first_difference(a, b)}")
                raise Violation("store", f"the new engine sees {model.label} with {name} "
                                f"{b!r}; the engine that wrote it has {a!r}")
        found_flows.append(found)
    for record in world.records:
        entity = entity_of[record["id"]]
        a = old.last_stage_change(record, entity=entity)
        b = new.last_stage_change(record, entity=entity)
        if a != b:
            raise Violation("store", f"the new engine sees the last stage change on "
                            f"{record['id']} as {b}; the engine that wrote it has {a}")
    return found_flows


# -- how the checks show things --------------------------------------------------------------------


def entries(history: Iterable[StageChange]) -> list[tuple[Any, ...]]:
    """History entries as the world keeps them: (kind, from, to, phase, record id, actor)."""
    return [(e.kind, e.from_stage, e.to_stage, e.phase, e.record_id, e.actor) for e in history]


def first_difference(a: Sequence[StageChange], b: Sequence[StageChange]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            fields = [f for f in StageChange._fields if getattr(x, f) != getattr(y, f)]
            shown = ", ".join(f"{f} {getattr(y, f)!r} instead of {getattr(x, f)!r}"
                              for f in fields)
            return f" (entry {i}: {shown})"
    return ""


def show_history(history: Sequence[tuple[Any, ...]]) -> str:
    if not history:
        return "empty"
    return ", ".join(
        f"{kind} {to}" if kind in ("start", "next", "previous", "set_active") else kind
        for kind, _, to, *_ in history
    ) + f" ({len(history)} {'entry' if len(history) == 1 else 'entries'})"


def show_change(change: tuple[Any, ...] | None) -> str:
    if change is None:
        return "none"
    _, process, kind, stage, phase = change
    return f"{process} {kind} to {stage} ({phase})"
