"""A business process flow read from XAML, written as bpf YAML with its losses as comments."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import attrs
import yaml

from bpf.definition.model import DEFAULT_CATEGORIES
from bpf.interop.dynamics._flowdef import (
    BranchDef,
    Compare,
    FlowDef,
    Logical,
    Loss,
    StageDef,
    Unsupported,
)
from bpf.interop.dynamics._source import OptionSets, Row

#: Step types by the form control a step shows (the first 8 hex digits of its ClassId).
CONTROL_TYPES = {
    "4273edbd": "text", "e0dece4b": "text", "ada2203e": "text", "3ef39988": "option set",
    "67fac785": "boolean", "b0c6723a": "boolean", "270bd3db": "lookup", "5b773807": "date",
    "533b9e00": "money", "c6d124ca": "number", "c3efe0c3": "number", "0d2c745a": "number",
    "71716b6c": "text",
}

_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .()/&+-]*$")
_WIDTH = 99


@attrs.frozen
class Written:
    """The YAML of one flow, with what it lost."""

    yaml: str
    losses: tuple[str, ...]


def slug(text: str, separator: str = "-") -> str:
    """Lowercase letters and digits joined by single ``separator``s ("" when none is left)."""
    return separator.join(re.findall(r"[a-z0-9]+", text.lower()))


@attrs.define
class _Process:
    key: str
    process: str
    name: str
    entity: str
    description: str | None
    language: str


def write(flow: FlowDef, row: Row | None, options: OptionSets, *, key: str, name: str,
          source: str) -> Written:
    """The bpf YAML of ``flow``; ``key`` and ``name`` identify the process when ``row`` is None."""
    losses = list(flow.losses)
    row_labels = row.labels() if row is not None else {}
    for stage in flow.stages:  # the process row repeats the labels; use it where the XAML has none
        stage.labels = stage.labels or row_labels.get(stage.id, {})
        for step in stage.steps:
            step.labels = step.labels or row_labels.get(step.step_id or "", {})
    languages = sorted({code for s in flow.stages for labels in
                        (s.labels, *(t.labels for t in s.steps)) for code in labels})
    language = "1033" if "1033" in languages or not languages else languages[0]
    others = [code for code in languages if code != language]
    if others:
        losses.append(Loss(f"labels in other languages than {language} (language codes "
                           f"{', '.join(others)}): bpf keeps one label per stage and step"))

    entity = flow.stages[0].entity
    description = None
    if row is not None:
        primary = (row.text("PrimaryEntity") or entity).lower()
        if primary != entity:
            losses.append(Loss(f"the process row names the primary table {primary!r}, but the "
                               f"first stage runs on {entity!r}: {entity!r} kept"))
        description = row.element.get("Description") or row.localized(
            "Descriptions", "Description").get(language) or None
    process = _Process(key, slug(key) or "dynamics-process", name, entity, description, language)
    writer = _Writer(flow, process, options, losses)
    return Written(writer.text(source, row), tuple(loss.text for loss in writer.losses))


class _Writer:
    def __init__(self, flow: FlowDef, process: _Process, options: OptionSets,
                 losses: list[Loss]) -> None:
        self.flow = flow
        self.process = process
        self.options = options
        self.losses = losses
        self.ids = self._stage_ids()
        self.types = self._field_types()

    def label(self, labels: dict[str, str], fallback: str) -> str:
        text = labels.get(self.process.language) or next(iter(labels.values()), "")
        return text.strip() or fallback

    def _stage_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for n, stage in enumerate(self.flow.stages, 1):
            base = slug(self.label(stage.labels, "")) or f"stage-{n}"
            candidate, count = base, 1
            while candidate in ids.values():
                count += 1
                candidate = f"{base}-{count}"
            ids[stage.id] = candidate
        return ids

    # -- fields ----------------------------------------------------------------------------------

    def _field_types(self) -> dict[str, tuple[str, list[Any], str | None]]:
        """Per field: its bpf type, its choices, and a comment for the YAML."""
        compared: dict[str, list[int]] = {}
        for stage in self.flow.stages:
            for branch in stage.branches or ():
                for compare in _compares(branch.condition):
                    for kind, value in compare.values:
                        if kind == "option" and value not in compared.setdefault(
                                compare.field, []):
                            compared[compare.field].append(value)
        types: dict[str, tuple[str, list[Any], str | None]] = {}
        unlabelled: list[str] = []
        for stage in self.flow.stages:
            for step in stage.steps:
                if step.field in types:
                    continue
                kind = CONTROL_TYPES.get(step.class_id[:8].lower())
                if kind is None:
                    self.losses.append(Loss(f"field {step.field!r}: its form control "
                                            f"{step.class_id or '(none)'} is not one bpf knows: "
                                            "imported as text", stage.id))
                    kind = "text"
                if kind != "option set":
                    types[step.field] = (kind, [], None)
                    continue
                labels = self.options.get((stage.entity, step.field))
                if labels:
                    choices: list[Any] = _unique_labels(labels)
                    extra = [v for v in compared.get(step.field, []) if v not in labels]
                    types[step.field] = ("choice", choices + extra, None)
                elif compared.get(step.field):
                    unlabelled.append(step.field)
                    types[step.field] = ("choice", sorted(compared[step.field]),
                                         "option set: only the values the branches compare "
                                         "are known")
                else:
                    unlabelled.append(step.field)
                    types[step.field] = ("number", [], "option set: its values, whole numbers")
        if unlabelled:
            self.losses.append(Loss(f"the labels of option sets {', '.join(unlabelled)} are "
                                    "not in the solution: their values stay whole numbers"))
        return types

    def value(self, entity: str, field: str, kind: str, value: Any) -> Any:
        if kind == "option":
            labels = self.options.get((entity, field))
            if labels and value in labels:
                return _unique_labels(labels)[list(labels).index(value)]
        return value

    # -- conditions and branches -----------------------------------------------------------------

    def condition(self, condition: Any) -> dict[str, Any]:
        if isinstance(condition, Logical):
            word = "all" if condition.operator == "And" else "any"
            parts: list[Any] = []
            for operand in condition.operands:
                inner = self.condition(operand)
                parts += inner[word] if list(inner) == [word] else [inner]
            return {word: parts}
        compare: Compare = condition
        values = [self.value(compare.entity, compare.field, k, v) for k, v in compare.values]
        operator = compare.operator
        if operator == "Null":
            return {"field": compare.field, "is_set": False}
        if operator == "NotNull":
            return {"field": compare.field, "is_set": True}
        if operator in ("Equal", "In"):
            op = "equals" if len(values) == 1 and operator == "Equal" else "in"
        elif operator in ("NotEqual", "NotIn"):
            op = "not_equals" if len(values) == 1 and operator == "NotEqual" else "not_in"
        else:
            op = {"GreaterThan": "gt", "GreaterEqual": "gte", "LessThan": "lt",
                  "LessEqual": "lte"}[operator]
        return {"field": compare.field, op: values if op in ("in", "not_in") else values[0]}

    def successors(self, index: int) -> tuple[list[dict[str, Any]], bool]:
        """The stage's ``next`` (empty: the following stage) and whether it ends the flow."""
        stages = self.flow.stages
        stage = stages[index]
        following = stages[index + 1].id if index + 1 < len(stages) else None
        plain = stage.next_id if stage.has_next_id else following
        if stage.branches is None:
            if plain is None:
                return [], following is not None
            return ([] if plain == following else [{"stage": self.ids[plain]}]), False
        branches: list[dict[str, Any]] = []
        default: str | None = None
        for branch in stage.branches:
            if branch.target not in self.ids:
                self.losses.append(Loss(f"a branch leads to stage {branch.target}, which the "
                                        "flow does not have: left out", stage.id))
            elif branch.condition is None:
                default = default or branch.target
            elif isinstance(bad := _unsupported(branch.condition), Unsupported):
                self.losses.append(Loss(f"the branch to {self.ids[branch.target]!r}"
                                        f"{_described(branch)} compares with {bad.reason}, "
                                        "which bpf cannot: branch left out", stage.id))
            else:
                branches.append({"when": self.condition(branch.condition),
                                 "stage": self.ids[branch.target]})
        default = default or plain
        if default is None and branches:
            last = branches.pop()
            default = next(k for k, v in self.ids.items() if v == last["stage"])
            self.losses.append(Loss("when no condition holds, Dynamics ends the flow here; "
                                    f"bpf needs a default: the branch to {last['stage']!r} is "
                                    "taken whatever its condition", stage.id))
        if default is None:
            return [], following is not None
        if not branches:
            return ([] if default == following else [{"stage": self.ids[default]}]), False
        return [*branches, {"stage": self.ids[default]}], False

    # -- the text --------------------------------------------------------------------------------

    def text(self, source: str, row: Row | None) -> str:
        process = self.process
        lines: list[str] = []
        stage_lines: list[str] = []
        # The stages first: writing them finds the losses the header lists.
        plans = [self.successors(i) for i in range(len(self.flow.stages))]
        kept = self.reachable(plans)
        spans = len({s.entity for s in self.flow.stages}) > 1
        for index, stage in enumerate(self.flow.stages):
            if index in kept:
                stage_lines += self.stage(index, stage, spans, plans[index], bool(stage_lines))
        lines += _comment(f"{process.key}: converted from Dynamics 365 by `bpf import dynamics` "
                          f"from {source}", "")
        ids = f"Dynamics process id {self.flow.workflow_id or 'unknown'}"
        layout = "legacy layout (one block per table)" if self.flow.legacy else "current layout"
        lines += _comment(f"{ids}, {layout}; each stage's Dynamics id is noted above it, for a "
                          "way back.", "")
        if row is None:
            lines += _comment("No process row (.xaml.data.xml or customizations.xml) was "
                              "found: the name comes from the file name.", "")
        process_losses = [loss for loss in self.losses if loss.stage is None]
        if self.losses:
            lines += _comment(f"Not converted ({len(self.losses)}; see docs/dynamics.md):", "")
            for loss in process_losses:
                lines += _comment(f"- {loss.text}", "", "  ")
            if len(process_losses) < len(self.losses):
                lines += _comment("- and, at their stages below, "
                                  f"{len(self.losses) - len(process_losses)} more", "", "  ")
        lines.append(f"process: {_flow(process.process)}")
        lines.append(f"name: {_flow(process.name)}")
        lines.append(f"entity: {_flow(process.entity)}")
        if process.description:
            lines.append(f"description: {_flow(process.description)}")
        lines.append("stages:")
        return "\n".join([*lines, *stage_lines]) + "\n"

    def reachable(self, plans: list[tuple[list[dict[str, Any]], bool]]) -> set[int]:
        """The stages a flow can reach; the others were reached only through a left-out branch."""
        index = {self.ids[s.id]: i for i, s in enumerate(self.flow.stages)}
        seen, todo = {0}, [0]
        while todo:
            i = todo.pop()
            next_, end = plans[i]
            targets = [index[b["stage"]] for b in next_] if next_ else \
                ([] if end or i + 1 >= len(plans) else [i + 1])
            for target in targets:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        for i, stage in enumerate(self.flow.stages):
            if i not in seen:
                self.losses.append(Loss(f"stage {self.ids[stage.id]!r} "
                                        f"({self.label(stage.labels, '?')}) is reached only "
                                        "through a branch left out: left out too"))
        return seen

    def stage(self, index: int, stage: StageDef, spans: bool,
              plan: tuple[list[dict[str, Any]], bool], blank: bool) -> list[str]:
        lines = [""] if blank else []
        next_, end = plan
        lines += _comment(f"Dynamics stage {stage.id}", "  ")
        for loss in self.losses:
            if loss.stage == stage.id:
                lines += _comment(f"lost: {loss.text}", "  ")
        lines.append(f"  - id: {_flow(self.ids[stage.id])}")
        lines.append(f"    name: {_flow(self.label(stage.labels, self.ids[stage.id]))}")
        if spans:
            lines.append(f"    entity: {_flow(stage.entity)}")
        if stage.category is not None and 0 <= stage.category < len(DEFAULT_CATEGORIES):
            lines.append(f"    category: {DEFAULT_CATEGORIES[stage.category]}")
        elif stage.category not in (None, -1):
            self.losses.append(Loss(f"stage category {stage.category} is not one of Dynamics' "
                                    "0 to 7: left out", stage.id))
            lines += _comment(f"lost: stage category {stage.category} is unknown", "    ")
        if stage.steps:
            lines.append("    steps:")
        for step in stage.steps:
            kind, choices, note = self.types[step.field]
            data: dict[str, Any] = {"field": step.field,
                                    "label": self.label(step.labels, step.field)}
            if kind != "text":
                data["type"] = kind
            if choices:
                data["choices"] = choices
            if step.required:
                data["required"] = True
            line = f"      - {_flow(data)}"
            lines.append(line + (f"  # {note}" if note else ""))
        if end:
            lines.append("    end: true")
        if next_:
            lines.append("    next:")
            for branch in next_:
                if "when" in branch:
                    lines.append(f"      - when: {_flow(branch['when'])}")
                    lines.append(f"        stage: {_flow(branch['stage'])}")
                else:
                    lines.append(f"      - stage: {_flow(branch['stage'])}")
        return lines


def _compares(condition: Any) -> list[Compare]:
    if isinstance(condition, Compare):
        return [condition]
    if isinstance(condition, Logical):
        return [c for operand in condition.operands for c in _compares(operand)]
    return []


def _unsupported(condition: Any) -> Unsupported | None:
    if isinstance(condition, Unsupported):
        return condition
    if isinstance(condition, Logical):
        return next((u for o in condition.operands if (u := _unsupported(o))), None)
    return None


def _described(branch: BranchDef) -> str:
    return f" ({branch.description})" if branch.description else ""


def _unique_labels(labels: dict[int, str]) -> list[str]:
    """Option labels as choices: unique and not blank (a repeated label gets its value)."""
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label.strip()] = seen.get(label.strip(), 0) + 1
    return [label.strip() if label.strip() and seen[label.strip()] == 1
            else f"{label.strip() or 'option'} ({value})" for value, label in labels.items()]


def _comment(text: str, indent: str, hang: str = "") -> list[str]:
    return textwrap.wrap(text, _WIDTH - len(indent), initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# {hang}", break_on_hyphens=False,
                         break_long_words=False) or [f"{indent}#"]


def _flow(value: Any) -> str:
    """``value`` in YAML flow style, quoting text only where YAML would misread it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and text == text.strip() and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)  # JSON strings are YAML double-quoted scalars
