"""Cutting a failing run down: replay variants of its operations on fresh machines, keep the
shortest and simplest that still break the same property.

A replay takes milliseconds and needs no Hypothesis: operations are plain data (see
`bpf.testing._driver`), so deleting or simplifying one is editing a list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from bpf.testing._failure import ProcessCheckFailed
from bpf.testing._strategies import simplest_filled

_ID_KEYS = ("rid", "new_rid", "existing")


def _replay(machine: type[Any], ops: Sequence[tuple[str, dict[str, Any]]],
            prop: str) -> ProcessCheckFailed | None:
    """Run ``ops`` on a fresh machine; the failure if it breaks ``prop`` again."""
    m = machine()
    m.replaying = True
    try:
        for kind, kwargs in ops:
            m._apply(kind, **kwargs)
            m.behaves()
    except ProcessCheckFailed as failure:
        return failure if failure.property == prop else None
    except Exception:  # an operation that no longer makes sense, or the engine choking on it
        return None
    finally:
        m.teardown()
    return None


def _position(value: Any, candidates: Sequence[Any]) -> int:
    for i, candidate in enumerate(candidates):
        if type(candidate) is type(value) and candidate == value:
            return i
    return len(candidates)


def _simpler_values(machine: type[Any], field: str, value: Any) -> list[Any]:
    """Values to try instead of ``value``, simplest first: empty, the simplest filled value of
    the step's type, then the constants the branches compare the field with."""
    step = machine._step_of.get(field)
    candidates = [None]
    if step is not None:
        candidates.append(simplest_filled(step))
    for constant in machine._constants.get(field, ()):
        if _position(constant, candidates) == len(candidates):
            candidates.append(constant)
    return candidates[:_position(value, candidates)]


def _simpler(machine: type[Any], op: tuple[str, dict[str, Any]]) -> Iterator[
        tuple[str, dict[str, Any]]]:
    """Simpler variants of ``op``: a field fewer, a simpler value, a plainer actor or outcome."""
    kind, kwargs = op
    key = {"record": "fields", "fill": "values", "next": "new_fields"}.get(kind)
    values = kwargs.get(key) if key else None
    if values:
        for field in values:
            yield kind, {**kwargs, key: {f: v for f, v in values.items() if f != field}}
        for field, value in values.items():
            for simpler in _simpler_values(machine, field, value):
                yield kind, {**kwargs, key: {**values, field: simpler}}
    if kind == "edit":
        for simpler in _simpler_values(machine, kwargs["field"], kwargs["value"]):
            yield kind, {**kwargs, "value": simpler}
    if "actor" in kwargs:
        order = machine._actor_order
        for actor in order[:_position(kwargs["actor"], order)]:
            yield kind, {**kwargs, "actor": actor}
    if kind == "finish" and kwargs["outcome"] is not None:
        yield kind, {**kwargs, "outcome": None}


def _renumbered(ops: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The ops with records renamed ``{entity}-1``, ``{entity}-2``... in order of appearance."""
    names: dict[str, str] = {}
    counter: Counter[str] = Counter()
    for _, kwargs in ops:
        for key in _ID_KEYS:
            rid = kwargs.get(key)
            if rid is not None and rid not in names:
                entity = rid.rsplit("-", 1)[0]
                counter[entity] += 1
                names[rid] = f"{entity}-{counter[entity]}"
    return [
        (kind, {k: names.get(v, v) if k in _ID_KEYS else v for k, v in kwargs.items()})
        for kind, kwargs in ops
    ]


def minimize(machine: type[Any], failure: ProcessCheckFailed) -> ProcessCheckFailed:
    """Cut a failing run down to the operations it needs, with the simplest values, by
    replaying variants of it on fresh machines (no Hypothesis; a replay takes milliseconds).

    Deletes operations (halves, quarters... then one at a time), then tries each operation
    with a field fewer, simpler values, a plainer actor; repeats while that helps; finally
    renames the records in order of appearance.
    """
    prop = failure.property
    ops = list(failure.ops)
    best = _replay(machine, ops, prop)
    if best is None:
        return failure

    def reproduces(candidate: list[tuple[str, dict[str, Any]]]) -> bool:
        nonlocal ops, best
        found = _replay(machine, candidate, prop)
        if found is None:
            return False
        ops, best = candidate, found
        return True

    for _ in range(3):
        before = list(ops)
        chunk = max(len(ops) // 2, 1)
        while True:
            i, changed = 0, False
            while i < len(ops):
                if reproduces(ops[:i] + ops[i + chunk:]):
                    changed = True
                else:
                    i += chunk
            if chunk == 1 and not changed:
                break
            chunk = max(chunk // 2, 1)
        for i in range(len(ops)):
            progress = True
            while progress:
                progress = any(
                    reproduces([*ops[:i], simpler, *ops[i + 1:]])
                    for simpler in _simpler(machine, ops[i])
                )
        if ops == before:
            break
    reproduces(_renumbered(ops))
    return best
