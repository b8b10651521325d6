"""The checks a schema cannot express: identities, references, the shape of the stage graph, limits.

They run on the plain data (not the model), defensively, so that they can report together with
the schema problems wherever the structure allows; the graph checks only run when every stage
and branch names its stage properly. The graph is walked with `ProcessDefinition.branches`, the
same rule the runtime follows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from bpf._errors import Problem
from bpf.definition._yaml_source import Locator, Path
from bpf.definition.conditions import OPERATORS, condition_from_data
from bpf.definition.model import DEFAULT_CATEGORIES, Branch, ProcessDefinition, Stage, Step
from bpf.definition.satisfy import analyse, enterable, why_never
from bpf.definition.schema import did_you_mean

#: Dynamics 365 limits; bpf handles more, so exceeding them is a warning.
MAX_STAGES = 30
MAX_STEPS = 30
MAX_ENTITIES = 5

_NUMERIC = ("number", "money")
_ORDERING = ("gt", "gte", "lt", "lte")


@attrs.define
class Findings:
    """What the checks found: errors refuse the definition, warnings do not."""

    errors: list[Problem] = attrs.field(factory=list)
    warnings: list[Problem] = attrs.field(factory=list)


def check_process(data: Any, locator: Locator) -> Findings:
    """Every semantic problem of a process definition's data."""
    found = Findings()
    if not isinstance(data, Mapping):
        return found
    stages = data.get("stages")
    if not isinstance(stages, list):
        return found
    checker = _Checker(data, stages, locator, found)
    checker.run()
    return found


class _Checker:
    def __init__(self, data: Mapping[str, Any], stages: list[Any], locator: Locator,
                 found: Findings) -> None:
        self.data = data
        self.stages = [(i, s) for i, s in enumerate(stages) if isinstance(s, Mapping)]
        self.all_stages_ok = len(self.stages) == len(stages)
        self.locator = locator
        self.found = found
        self.ids: dict[str, int] = {}
        self.steps_by_field: dict[str, list[Mapping[str, Any]]] = {}

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        self.found.errors.append(self.locator.problem(path, message, key=key))

    def warn(self, path: Path, message: str, *, key: bool = False) -> None:
        self.found.warnings.append(self.locator.problem(path, message, key=key))

    def run(self) -> None:
        self.check_ids()
        self.check_steps()
        self.check_categories()
        self.check_entities()
        self.check_branches()
        self.check_conditions()
        graph = self.graph()
        if graph is not None:
            self.check_graph(graph)
        self.check_limits()
        self.check_reactivate()
        if not self.found.errors:
            self.check_satisfiable()

    # -- identities ------------------------------------------------------------------------------

    def check_ids(self) -> None:
        for i, stage in self.stages:
            sid = stage.get("id")
            if not isinstance(sid, str):
                self.all_stages_ok = False
                continue
            if sid in self.ids:
                line, column = self.locator.position(("stages", self.ids[sid], "id"))[0]
                self.error(("stages", i, "id"), f"duplicate stage id {sid!r}: stage ids are "
                           f"unique within a process (first at line {line}, column {column})")
            else:
                self.ids[sid] = i

    def check_steps(self) -> None:
        for i, stage in self.stages:
            steps = stage.get("steps")
            if not isinstance(steps, list):
                continue
            seen: dict[str, int] = {}
            for j, step in enumerate(steps):
                if not isinstance(step, Mapping) or not isinstance(step.get("field"), str):
                    continue
                field = step["field"]
                if field in seen:
                    line, column = self.locator.position(("stages", i, "steps", seen[field],
                                                          "field"))[0]
                    self.error(("stages", i, "steps", j, "field"),
                               f"duplicate step for field {field!r} in stage {stage.get('id')!r}"
                               f" (first at line {line}, column {column})")
                else:
                    seen[field] = j
                self.steps_by_field.setdefault(field, []).append(step)

    def check_categories(self) -> None:
        categories = self.data.get("categories", DEFAULT_CATEGORIES)
        if not isinstance(categories, (list, tuple)):
            return
        names = [c for c in categories if isinstance(c, str)]
        for i, stage in self.stages:
            category = stage.get("category")
            if isinstance(category, str) and category not in names:
                hint = did_you_mean(category, names)
                where = "the process's `categories`" if "categories" in self.data else \
                    "the standard categories"
                self.error(("stages", i, "category"), f"category {category!r} is not among "
                           f"{where}: {', '.join(names)}{hint}")

    def check_entities(self) -> None:
        entity = self.data.get("entity")
        if not self.stages or not isinstance(entity, str):
            return
        i, first = self.stages[0]
        if i == 0 and isinstance(first.get("entity"), str) and first["entity"] != entity:
            self.error(("stages", 0, "entity"), f"the first stage runs on the process's primary "
                       f"entity {entity!r}, not {first['entity']!r}: a flow starts on its "
                       "primary record")

    # -- branches --------------------------------------------------------------------------------

    def branches_of(self, stage: Mapping[str, Any]) -> Iterator[tuple[int, Any]]:
        branches = stage.get("next")
        if isinstance(branches, list):
            yield from enumerate(branches)

    def check_branches(self) -> None:
        for i, stage in self.stages:
            branches = stage.get("next")
            if not isinstance(branches, list) or not branches:
                continue
            defaults = [j for j, b in enumerate(branches)
                        if isinstance(b, Mapping) and "when" not in b]
            if not defaults:
                self.error(("stages", i, "next"), f"the branches of stage {stage.get('id')!r} "
                           "need a default: end `next` with a branch without `when` (`- stage: "
                           "...`), so a flow always knows where to go", key=True)
            for j in defaults:
                if j != len(branches) - 1:
                    self.error(("stages", i, "next", j), "the default branch (without `when`) "
                               "must come last: the branches after it would never be taken")
            for j, branch in enumerate(branches):
                target = branch.get("stage") if isinstance(branch, Mapping) else None
                if isinstance(target, str) and target not in self.ids:
                    hint = did_you_mean(target, list(self.ids))
                    self.error(("stages", i, "next", j, "stage"),
                               f"stage {target!r} does not exist{hint}; stages: "
                               f"{', '.join(self.ids)}")

    # -- conditions ------------------------------------------------------------------------------

    def check_conditions(self) -> None:
        for i, stage in self.stages:
            for j, branch in self.branches_of(stage):
                if isinstance(branch, Mapping) and "when" in branch:
                    self.check_condition(branch["when"], ("stages", i, "next", j, "when"))

    def check_condition(self, condition: Any, path: Path) -> None:
        if not isinstance(condition, Mapping):
            return
        for combinator in ("all", "any"):
            if isinstance(condition.get(combinator), list):
                for k, inner in enumerate(condition[combinator]):
                    self.check_condition(inner, (*path, combinator, k))
        if "not" in condition:
            self.check_condition(condition["not"], (*path, "not"))
        field = condition.get("field")
        operators = [k for k in condition if k in OPERATORS]
        if not isinstance(field, str) or len(operators) != 1:
            return
        op = operators[0]
        steps = self.steps_by_field.get(field)
        if not steps:
            hint = did_you_mean(field, list(self.steps_by_field), _backticked)
            self.warn((*path, "field"), f"no step declares the field {field!r}{hint}: the "
                      "condition reads it from the record as it is (check the spelling)")
            return
        value = condition[op]
        values = value if op in ("in", "not_in") and isinstance(value, list) else [value]
        types = {s.get("type", "text") for s in steps}
        if "choice" in types and op not in (*_ORDERING, "is_set"):
            choices = [c for s in steps if s.get("type") == "choice"
                       for c in (s.get("choices") or [])]
            for k, v in enumerate(values):
                # By type too: True == 1 in Python, but true is no choice among 1, 2, 3.
                if not any(type(v) is type(c) and v == c for c in choices):
                    where = (*path, op, k) if values is value else (*path, op)
                    self.error(where, f"{v!r} is not a choice of {field!r}: its choices are "
                               f"{', '.join(map(str, choices))}")
        elif types <= set(_NUMERIC) and op != "is_set":
            for k, v in enumerate(values):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    where = (*path, op, k) if values is value else (*path, op)
                    self.error(where, f"{field!r} is a {'/'.join(sorted(types))} field: compare "
                               f"it with a number, not {v!r}")
        elif types == {"boolean"} and op in ("equals", "not_equals", "in", "not_in"):
            for k, v in enumerate(values):
                if not isinstance(v, bool):
                    where = (*path, op, k) if values is value else (*path, op)
                    self.error(where, f"{field!r} is a boolean (mark complete) field: compare it "
                               f"with true or false, not {v!r}")

    # -- the stage graph -------------------------------------------------------------------------

    def graph(self) -> ProcessDefinition | None:
        """A skeleton definition for walking the graph; None when the stages are too broken."""
        if not self.all_stages_ok or not self.stages:
            return None
        skeleton = []
        for _, stage in self.stages:
            branches = stage.get("next")
            targets: list[str] = []
            if branches is not None:
                if not isinstance(branches, list):
                    return None
                for branch in branches:
                    target = branch.get("stage") if isinstance(branch, Mapping) else None
                    if not isinstance(target, str):
                        return None
                    targets.append(target)  # unknown ones too: they lead nowhere, not onwards
            skeleton.append(Stage(
                id=stage["id"], name=stage["id"], entity="", phase="",
                next=tuple(Branch(t) for t in targets), end=stage.get("end") is True,
            ))
        if len({s.id for s in skeleton}) != len(skeleton):
            return None
        return ProcessDefinition(process="skeleton", name="skeleton", entity="", stages=skeleton)

    def stage_path(self, stage_id: str) -> Path:
        return ("stages", self.ids[stage_id])

    def branch_path(self, source: str, target: str) -> Path:
        i = self.ids[source]
        stage = self.stages[i][1]
        for j, branch in self.branches_of(stage):
            if isinstance(branch, Mapping) and branch.get("stage") == target:
                return ("stages", i, "next", j, "stage")
        return ("stages", i, "id")

    def check_graph(self, graph: ProcessDefinition) -> None:
        first = graph.first_stage.id
        reachable = _reach(graph, first)
        for stage in graph.stages:
            if stage.id not in reachable:
                self.error((*self.stage_path(stage.id), "id"), f"stage {stage.id!r} is "
                           f"unreachable: no branch leads to it from the first stage {first!r}")
        cyclic = self.check_cycles(graph)
        if not cyclic:
            self.check_merges(graph)

    def check_cycles(self, graph: ProcessDefinition) -> bool:
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        found = False
        for start in graph.stages:
            if start.id in state:
                continue
            path = [start.id]
            state[start.id] = 1
            iterators = [iter(_successors(graph, start.id))]
            while iterators:
                nxt = next(iterators[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    iterators.pop()
                    continue
                if state.get(nxt) == 1:
                    found = True
                    loop = [*path[path.index(nxt):], nxt]
                    self.error(self.branch_path(path[-1], nxt),
                               f"branch cycle: {' → '.join(loop)}; a flow moves forward only "
                               "(going back is the Previous Stage action)")
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    iterators.append(iter(_successors(graph, nxt)))
        return found

    def check_merges(self, graph: ProcessDefinition) -> None:
        # Dynamics' rule: peer branches either all merge into one stage or all end the process.
        reach: dict[str, frozenset[str]] = {}
        for stage in graph.stages:
            successors = _successors(graph, stage.id)
            if len(successors) < 2:
                continue
            sets = [reach.setdefault(s, frozenset(_reach(graph, s))) for s in successors]
            if frozenset.intersection(*sets):
                continue
            meeting = [(a, b, sets[x] & sets[y]) for x, a in enumerate(successors)
                       for y, b in enumerate(successors) if x < y and sets[x] & sets[y]]
            if not meeting:
                continue  # they never meet: every branch ends on its own
            a, b, common = meeting[0]
            where = next(s.id for s in graph.stages if s.id in common)
            self.error((*self.stage_path(stage.id), "next"),
                       f"the branches of stage {stage.id!r} must all merge into one stage or all "
                       f"end: {a!r} and {b!r} meet at {where!r}, but not every branch reaches a "
                       "common stage", key=True)

    # -- limits ----------------------------------------------------------------------------------

    def check_limits(self) -> None:
        if len(self.stages) > MAX_STAGES:
            self.warn(("stages",), f"{len(self.stages)} stages: Dynamics 365 allows at most "
                      f"{MAX_STAGES} per process (bpf runs it anyway)", key=True)
        for i, stage in self.stages:
            steps = stage.get("steps")
            if isinstance(steps, list) and len(steps) > MAX_STEPS:
                self.warn(("stages", i, "steps"), f"{len(steps)} steps in stage "
                          f"{stage.get('id')!r}: Dynamics 365 allows at most {MAX_STEPS} per "
                          "stage (bpf runs it anyway)", key=True)
        entities = [self.data.get("entity")]
        for i, stage in self.stages:
            entity = stage.get("entity")
            if isinstance(entity, str) and entity not in entities:
                entities.append(entity)
                if len(entities) == MAX_ENTITIES + 1:
                    self.warn(("stages", i, "entity"), f"entity {entity!r} is the "
                              f"{MAX_ENTITIES + 1}th of the process: Dynamics 365 allows at most "
                              f"{MAX_ENTITIES} per process (bpf runs it anyway)")


    def check_reactivate(self) -> None:
        # Reactivating undoes an outcome: a field the outcome set and reactivation leaves would
        # keep saying "won" on an open record.
        reactivate = self.data.get("reactivate")
        outcomes = self.data.get("outcomes")
        if not isinstance(reactivate, Mapping) or not isinstance(outcomes, Mapping):
            return
        resets = reactivate.get("set")
        if not isinstance(resets, Mapping):
            return
        for name, outcome in outcomes.items():
            fields = outcome.get("set") if isinstance(outcome, Mapping) else None
            if not isinstance(fields, Mapping):
                continue
            for field in fields:
                if field not in resets:
                    self.warn(("reactivate", "set"), f"outcome {name!r} sets {field!r}, which "
                              "`reactivate` does not set back: a reactivated record keeps "
                              f"{field} = {fields[field]!r}", key=True)


    # -- satisfiability ---------------------------------------------------------------------------

    def model(self) -> ProcessDefinition | None:
        """The definition's stages, steps and branches as model values (the data passed the
        schema and the checks above); None when it does not build."""
        entity = self.data.get("entity")
        try:
            stages = []
            for _, stage in self.stages:
                steps = [Step(field=st["field"], label=st.get("label", st["field"]),
                              type=st.get("type", "text"), required=st.get("required", False),
                              choices=st.get("choices") or ())
                         for st in stage.get("steps") or ()]
                branches = [Branch(b["stage"], condition_from_data(b["when"]) if "when" in b
                                   else None) for b in stage.get("next") or ()]
                stages.append(Stage(id=stage["id"], name=stage["id"],
                                    entity=stage.get("entity", entity), phase="", steps=steps,
                                    next=branches, end=stage.get("end") is True))
            return ProcessDefinition(process="model", name="model", entity=entity,
                                     stages=stages)
        except Exception:  # a shape the schema let through but the model refuses: no verdict
            return None

    def check_satisfiable(self) -> None:
        """A branch no record takes, and a stage no flow enters because of it, are warnings
        (errors with ``bpf validate --strict``): the process says something it never does."""
        model = self.model() if self.stages else None
        if model is None:
            return
        try:
            branches = analyse(model)
        except Exception:  # pragma: no cover - a verdict is a hint; loading must not fail on it
            return
        reached = enterable(model, branches)
        for b in branches:
            if not b.takeable and b.source in reached:
                i = self.ids[b.source]
                self.warn(("stages", i, "next", b.index), f"the branch of stage {b.source!r} "
                          f"to {b.branch.stage!r} is never taken: {why_never(model, b)}")
        for stage in model.stages:
            if stage.id not in reached and stage.id in _reach(model, model.first_stage.id):
                self.warn(("stages", self.ids[stage.id], "id"), f"stage {stage.id!r} is never "
                          "entered: no branch that leads to it can be taken")


def _backticked(name: str) -> str:
    return f"`{name}`"


def _reach(graph: ProcessDefinition, start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in _successors(graph, todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _successors(graph: ProcessDefinition, stage_id: str) -> tuple[str, ...]:
    # Unknown targets are reported on their own; for the graph they are dead ends.
    return tuple(s for s in graph.successors(stage_id) if graph.has_stage(s))
