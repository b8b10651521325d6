"""Which branches can be taken, and which stages entered: decided from the definition alone.

A branch is taken when its condition holds and the conditions of the branches before it do
not, on the record of the stage it leaves, whose required steps are filled (the gate). Whether
some record does that is decided here by search over a small set of candidate values per field:
the values a person could type that sit on either side of every constant a condition compares
the field with (a choice step's choices, a boolean's true and false, numbers and dates just
below, at and above each threshold, empty). The condition itself decides each candidate
(`Condition.evaluate`, the one rule of what a condition means) and each required step its own
(`Step.problem`, the one rule of what fills a step), so the answer cannot drift from the
runtime's. The same witnesses tell the test kit what to type to take a branch.

A condition no step collects the field of is satisfiable here (a record may carry anything);
`unfilled_fields` names those fields, which the checks warn about and the kit leaves alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from bpf.definition.conditions import All, AnyOf, Compare, Condition, Not
from bpf.definition.model import Branch, ProcessDefinition, Stage, Step

#: A conjunction of literals: (leaf, whether it must hold).
_Literals = tuple[tuple[Compare, bool], ...]

#: Beyond this many alternatives a condition is too big to search; it counts as satisfiable.
_MAX_ALTERNATIVES = 512


class _TooBig(Exception):
    pass


def _dnf(condition: Condition, want: bool) -> list[_Literals]:
    """The ways ``condition`` evaluates to ``want``, as alternatives of literals."""
    if isinstance(condition, Compare):
        return [((condition, want),)]
    if isinstance(condition, Not):
        return _dnf(condition.condition, not want)
    if isinstance(condition, (All, AnyOf)):
        parts = [_dnf(c, want) for c in condition.conditions]
        # All true / AnyOf false: every part at once; All false / AnyOf true: any one part.
        if want == isinstance(condition, All):
            out: list[_Literals] = [()]
            for part in parts:
                out = [a + b for a in out for b in part]
                if len(out) > _MAX_ALTERNATIVES:
                    raise _TooBig
            return out
        return [alt for part in parts for alt in part]
    raise TypeError(f"not a condition: {condition!r}")  # pragma: no cover


def leaves(condition: Condition | None) -> Iterator[Compare]:
    """Every comparison in ``condition``."""
    if condition is None:
        return
    if isinstance(condition, Compare):
        yield condition
    elif isinstance(condition, (All, AnyOf)):
        for c in condition.conditions:
            yield from leaves(c)
    elif isinstance(condition, Not):
        yield from leaves(condition.condition)


def _near(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [value, not value]
    if isinstance(value, (int, float, Decimal)):
        near = [value, value - 1, value + 1]
        if isinstance(value, Decimal):
            near += [value - Decimal("0.5"), value + Decimal("0.5")]
        elif abs(value) < 2**52:  # a half beside a huge integer is no float
            near += [value - 0.5, value + 0.5]
        return near
    if isinstance(value, dt.date):
        day = dt.timedelta(days=1)
        return [value, value - day, value + day]
    if isinstance(value, str):
        return [value, value + "x"]
    return [value]


def _constants(compares: Iterable[Compare]) -> list[Any]:
    found: list[Any] = []
    for leaf in compares:
        values = leaf.value if leaf.op in ("in", "not_in") else (leaf.value,)
        if leaf.op == "is_set":
            continue
        for v in values:
            for near in _near(v):
                if not any(type(near) is type(f) and near == f for f in found):
                    found.append(near)
    return found


def _typical(step: Step) -> list[Any]:
    """Filled values of the step's type, for when no constant is compared with it."""
    kind = step.type
    if kind == "boolean":
        return [True, False]
    if kind == "choice":
        return list(step.choices)
    if kind in ("number", "money"):
        return [1, 0]
    if kind == "date":
        return [dt.date(2026, 1, 1)]
    if kind == "lookup":
        return [f"{step.field.removesuffix('id') or step.field}-1"]
    return ["x"]


def candidates(field: str, steps: Sequence[Step], compares: Iterable[Compare], *,
               required: Step | None = None) -> list[Any]:
    """The values to try for ``field``: valid values of its steps first, then the constants
    the conditions compare it with and their neighbours, then empty. With ``required`` (the
    field is a required step of the stage being left), only values that fill that step."""
    compares = [c for c in compares if c.field == field]
    pool: list[Any] = []
    choices = [c for s in steps if s.type == "choice" for c in s.choices]
    if choices:
        pool += choices
    for step in steps:
        pool += _typical(step)
    pool += _constants(compares)
    pool.append(None)
    out: list[Any] = []
    for v in pool:
        if any(type(v) is type(o) and v == o for o in out):
            continue
        if required is not None and required.problem(v) is not None:
            continue
        # A field only choice steps collect holds one of its choices, or nothing.
        if (choices and v is not None and all(s.type == "choice" for s in steps)
                and not any(type(v) is type(c) and v == c for c in choices)):
            continue
        out.append(v)
    # Valid values of the steps come first: a witness should be what a person would type.
    # A field no step collects stays empty unless a branch needs it otherwise.
    if steps:
        out.sort(key=lambda v: 0 if any(s.problem(v) is None for s in steps) else 1)
    else:
        out.sort(key=lambda v: v is not None)
    return out


def _solve(alternative: _Literals, domains: Mapping[str, list[Any]]) -> dict[str, Any] | None:
    by_field: dict[str, list[tuple[Compare, bool]]] = {}
    for leaf, want in alternative:
        by_field.setdefault(leaf.field, []).append((leaf, want))
    values: dict[str, Any] = {}
    for field, literals in by_field.items():
        for v in domains.get(field, ()):
            if all(leaf.evaluate(lambda _f, v=v: v) == want for leaf, want in literals):
                values[field] = v
                break
        else:
            return None
    return values


@attrs.frozen
class BranchAnalysis:
    """Whether one branch can be taken, and a record that takes it."""

    source: str
    index: int
    branch: Branch
    #: field values that take the branch (given the source stage's gate is filled); None when
    #: no record can take it
    witness: Mapping[str, Any] | None
    #: the fields the branch's condition reads that no step collects
    uncollected: tuple[str, ...] = ()

    @property
    def takeable(self) -> bool:
        return self.witness is not None


def _steps_by_field(definition: ProcessDefinition, entity: str) -> dict[str, list[Step]]:
    found: dict[str, list[Step]] = {}
    for stage in definition.stages:
        if stage.entity == entity:
            for step in stage.steps:
                found.setdefault(step.field, []).append(step)
    return found


def branch_witnesses(definition: ProcessDefinition, stage: Stage,
                     alternatives: int = 1) -> list[list[dict[str, Any]]]:
    """For each branch of ``stage`` (`ProcessDefinition.branches`), up to ``alternatives``
    field values that take it; an empty list for a branch no record takes."""
    branches = definition.branches(stage.id)
    steps = _steps_by_field(definition, stage.entity)
    compares = [leaf for b in branches for leaf in leaves(b.when)]
    fields = {leaf.field for leaf in compares}
    required = {s.field: s for s in stage.required_steps}
    domains = {
        f: candidates(f, steps.get(f, ()), compares, required=required.get(f)) for f in fields
    }
    out: list[list[dict[str, Any]]] = []
    for i, branch in enumerate(branches):
        parts = [Not(b.when) for b in branches[:i] if b.when is not None]
        if branch.when is not None:
            parts.append(branch.when)
        if not parts:
            out.append([{}])
            continue
        try:
            options = _dnf(All(tuple(parts)), True)
        except _TooBig:
            out.append([{}])  # too big to decide: assume it can be taken
            continue
        found: list[dict[str, Any]] = []
        for alternative in options:
            values = _solve(alternative, domains)
            if values is not None and values not in found:
                found.append(values)
                if len(found) >= alternatives:
                    break
        out.append(found)
    return out


def analyse(definition: ProcessDefinition) -> list[BranchAnalysis]:
    """Every branch of every stage: whether it can be taken, and how."""
    found = []
    for stage in definition.stages:
        collected = _steps_by_field(definition, stage.entity)
        for i, (branch, witnesses) in enumerate(zip(
                definition.branches(stage.id), branch_witnesses(definition, stage),
                strict=True)):
            uncollected = tuple(sorted({
                leaf.field for leaf in leaves(branch.when) if leaf.field not in collected
            }))
            found.append(BranchAnalysis(stage.id, i, branch,
                                        witnesses[0] if witnesses else None, uncollected))
    return found


def enterable(definition: ProcessDefinition,
              branches: Sequence[BranchAnalysis] | None = None) -> set[str]:
    """The stages some flow can enter: the first, and those a takeable branch leads to from
    an enterable stage."""
    if branches is None:
        branches = analyse(definition)
    takeable: dict[str, list[str]] = {}
    for b in branches:
        if b.takeable:
            takeable.setdefault(b.source, []).append(b.branch.stage)
    seen = {definition.first_stage.id}
    todo = [definition.first_stage.id]
    while todo:
        for nxt in takeable.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def why_never(definition: ProcessDefinition, analysis: BranchAnalysis) -> str:
    """Why a branch no record takes can never be taken, in the words of the process."""
    stage = definition.stage(analysis.source)
    earlier = [b.when for b in definition.branches(stage.id)[:analysis.index] if b.when]
    when = analysis.branch.when
    gate = {s.field for s in stage.required_steps}
    read = set(when.fields) if when is not None else set()
    alone = _alone_takeable(definition, stage, when)
    if when is not None and not alone:
        tail = ""
        if read & gate:
            tail = (f" on a record that fills the required step"
                    f"{'s' if len(read & gate) > 1 else ''} "
                    f"{', '.join(sorted(read & gate))} of {stage.id!r}")
        return f"`{when}` is never true{tail}"
    shadow = " or ".join(f"`{c}`" for c in earlier)
    return f"whenever `{when}` holds, an earlier branch ({shadow}) holds too and is taken"


def _alone_takeable(definition: ProcessDefinition, stage: Stage,
                    when: Condition | None) -> bool:
    if when is None:
        return True
    lone = attrs.evolve(stage, next=(Branch("_", when), Branch("_")), end=False)
    probe = attrs.evolve(definition, stages=[lone if s.id == stage.id else s
                                             for s in definition.stages])
    return bool(branch_witnesses(probe, lone)[0])


def uncollected_fields(definition: ProcessDefinition) -> dict[str, list[str]]:
    """The fields branch conditions read that no step of their entity collects, with the
    stages whose branches read them."""
    found: dict[str, list[str]] = {}
    for b in analyse(definition):
        for field in b.uncollected:
            found.setdefault(field, [])
            if b.source not in found[field]:
                found[field].append(b.source)
    return found

