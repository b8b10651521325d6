"""The XAML of a business process flow, read into plain stages, steps and branches.

What bpf cannot represent is not dropped silently: it becomes a `Loss`, attached to the stage it
belongs to when there is one, so the YAML can carry it as a comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

from bpf.interop.dynamics._flowdef import (
    BranchDef,
    Compare,
    FlowDef,
    Logical,
    Loss,
    StageDef,
    StepDef,
    Unsupported,
)
from bpf.interop.dynamics._source import Xml, guid, local

#: How deep conditions may nest (a condition in a condition's branch): real flows use 1 or 2.
MAX_CONDITION_DEPTH = 20

_VARIABLE = re.compile(r"^\[\s*([A-Za-z_][A-Za-z0-9_]*)\s*\]$")
_LIST = re.compile(r"\{(.*)\}", re.S)
_LITERAL = re.compile(r'WorkflowPropertyType\.(\w+)\s*,\s*"((?:[^"]|"")*)"')


def _kind(element: Element) -> str:
    """The activity kind: ``StageComposite`` for an ActivityReference, else the tag's name."""
    qualified = element.get("AssemblyQualifiedName")
    if qualified:
        return qualified.split(",", 1)[0].rsplit(".", 1)[-1]
    return local(element.tag)


def _keyed(element: Element, group: str) -> dict[str, Element]:
    """The ``x:Key``-ed children of ``ActivityReference.<group>``."""
    found: dict[str, Element] = {}
    for part in element:
        if local(part.tag) == f"ActivityReference.{group}":
            for item in part:
                key = next((v for k, v in item.attrib.items() if local(k) == "Key"), None)
                if key is not None:
                    found[key] = item
    return found


def _text(element: Element | None) -> str | None:
    if element is None or local(element.tag) == "Null":
        return None
    return (element.text or "").strip()


def _activities(element: Element) -> list[Element]:
    collection = _keyed(element, "Properties").get("Activities")
    return list(collection) if collection is not None else []


def _labels(element: Element) -> dict[str, str]:
    collection = _keyed(element, "Properties").get("StepLabels")
    if collection is None:
        return {}
    return {str(e.get("LanguageCode")): e.get("Description") or "" for e in collection
            if local(e.tag) == "StepLabel"}


def _descendants(element: Element, kind: str) -> Iterator[Element]:
    return (e for e in element.iter() if _kind(e) == kind)


def read_flow(xml: Xml, fail_not_bpf: Any) -> FlowDef:
    """Read a BPF's XAML; ``fail_not_bpf(element, message)`` builds the error for a non-BPF."""
    root = xml.root
    workflow = next((e for e in root.iter() if local(e.tag) == "Workflow"), None)
    if local(root.tag) != "Activity" or workflow is None:
        raise fail_not_bpf(root, f"not a Dynamics workflow XAML: the root is <{local(root.tag)}>,"
                           " with no <mxswa:Workflow> of activities")
    reader = _Reader(xml)
    reader.read(workflow)
    if not reader.stages:
        raise fail_not_bpf(workflow, "not a business process flow: the workflow has no stages "
                           "(no EntityComposite holding a StageComposite; is it a classic "
                           "workflow?)")
    flow_id = guid((root.get("{http://schemas.microsoft.com/winfx/2006/xaml}Class") or "")
                   .removeprefix("XrmWorkflow"))
    legacy = not any(s.has_next_id for s in reader.stages)
    reader.relationship_losses(legacy)
    return FlowDef(flow_id, reader.stages, legacy, reader.losses)


class _Reader:
    def __init__(self, xml: Xml) -> None:
        self.xml = xml
        self.stages: list[StageDef] = []
        self.losses: list[Loss] = []
        self.hops: list[tuple[str, str, str | None, str | None]] = []  # source, target, rel, attr
        self.legacy_hops: list[tuple[int, str | None, str | None]] = []  # after stage n

    def loss(self, text: str, stage: str | None = None) -> None:
        self.losses.append(Loss(text, stage))

    def read(self, workflow: Element) -> None:
        for activity in workflow:
            kind = _kind(activity)
            if kind == "StageRelationshipCollectionComposite":
                for hop in _descendants(activity, "StageRelationship"):
                    self.hops.append((guid(hop.get("SourceStageId")) or "",
                                      guid(hop.get("TargetStageId")) or "",
                                      hop.get("RelationshipName"), hop.get("AttributeName")))
            elif kind == "EntityComposite":
                self.entity(activity)
            else:
                self.loss(f"a {kind} activity of the workflow (line {self.xml.line(activity)}) "
                          "is not part of a stage: not converted")

    def entity(self, composite: Element) -> None:
        display = composite.get("DisplayName") or ""
        entity = display.split(":", 1)[1].strip().lower() if ":" in display else ""
        if not entity:
            raise self.xml.fail(composite, f"cannot tell the table of the EntityComposite "
                                f"{display!r}: its DisplayName names no table after ':'")
        for activity in _activities(composite):
            if _kind(activity) == "StageComposite":
                self.stage(activity, entity)
            else:
                self.loss(f"a {_kind(activity)} activity on table {entity!r} outside any stage "
                          f"(line {self.xml.line(activity)}): not converted")
        properties = _keyed(composite, "Properties")
        relationship = _text(properties.get("RelationshipName"))
        if relationship and self.stages:
            self.legacy_hops.append((len(self.stages) - 1, relationship,
                                     _text(properties.get("AttributeName"))))
        if _text(properties.get("IsClosedLoop")) == "True":
            self.loss(f"the flow on table {entity!r} is a closed loop (it returns to the first "
                      "table): bpf flows do not loop back")

    def stage(self, element: Element, entity: str) -> None:
        properties = _keyed(element, "Properties")
        stage_id = guid(_text(properties.get("StageId"))) or guid(
            next(iter(e.get("LabelId") for e in (properties.get("StepLabels") or ())), ""))
        if stage_id is None:
            raise self.xml.fail(element, f"the stage {element.get('DisplayName')!r} has no "
                                "StageId")
        category_text = _text(properties.get("StageCategory"))
        category = None
        if category_text not in (None, ""):
            try:
                category = int(category_text or "")
            except ValueError:
                self.loss(f"stage category {category_text!r} is not a number: left out",
                          stage_id)
        stage = StageDef(
            id=stage_id, labels=_labels(element), entity=entity, category=category, steps=[],
            next_id=guid(_text(properties.get("NextStageId"))),
            has_next_id="NextStageId" in properties, branches=None, else_branch=False,
            line=self.xml.line(element),
        )
        self.stages.append(stage)
        for activity in _activities(element):
            kind = _kind(activity)
            if kind == "StepComposite":
                self.step(activity, stage)
            elif kind == "ConditionSequence":
                stage.branches = self.branches(activity, stage.id, 0)
                stage.else_branch = any(b.condition is None for b in stage.branches)
            elif kind == "ActionComposite":
                self.trigger(activity, stage)
            else:
                self.loss(f"a {kind} activity in the stage (line {self.xml.line(activity)}): "
                          "not converted", stage.id)

    def step(self, element: Element, stage: StageDef) -> None:
        properties = _keyed(element, "Properties")
        labels = _labels(element)
        label = labels.get("1033") or next(iter(labels.values()), "") or "(no label)"
        required = _text(properties.get("IsProcessRequired")) == "True"
        control = next((e for e in element.iter() if local(e.tag) == "Control"), None)
        field = control.get("DataFieldName") if control is not None else None
        parameters = ""
        if control is not None:
            parameters = control.get("Parameters") or "".join(control.itertext())
        note = " (a required step)" if required else ""
        if next(_descendants(element, "ActionComposite"), None) is not None:
            action = next(_descendants(element, "ActionComposite"))
            name = _text(_keyed(action, "Properties").get("UniqueName")) or "?"
            self.loss(f"step {label!r} is a button that runs the action or workflow {name!r}"
                      f"{note}: not converted (run it from an on_exit action)", stage.id)
        elif next(_descendants(element, "FlowComposite"), None) is not None:
            flow = next(_descendants(element, "FlowComposite"))
            name = guid(_text(_keyed(flow, "Properties").get("WorkflowId"))) or "?"
            self.loss(f"step {label!r} runs the Power Automate flow {name}{note}: not "
                      "converted", stage.id)
        elif "LinkControlDefinitionId" in parameters:
            self.loss(f"step {label!r} is a system link control{note}: not converted", stage.id)
        elif not field:
            self.loss(f"step {label!r} fills in no field{note}: not converted", stage.id)
        elif any(s.field == field for s in stage.steps):
            self.loss(f"step {label!r} repeats the field {field!r} in its stage: kept once",
                      stage.id)
        else:
            stage.steps.append(StepDef(field, labels, required,
                                       (control.get("ClassId") if control is not None else "")
                                       or "", guid(_text(properties.get("ProcessStepId")))))

    def trigger(self, action: Element, stage: StageDef) -> None:
        properties = _keyed(action, "Properties")
        name = (_text(properties.get("UniqueName")) or guid(_text(properties.get("WorkflowId")))
                or action.get("DisplayName") or "?")
        events = sorted({(e.get("Event") or "?").lower() for e in action.iter()
                         if local(e.tag) == "ProcessTriggerData"})
        when = " and ".join(f"stage {e.removeprefix('stage')}" for e in events) or "a stage event"
        self.loss(f"the workflow {name!r} runs on {when}: not converted (name an action in "
                  "on_enter/on_exit and register it with the engine)", stage.id)

    # -- conditions ----------------------------------------------------------------------------

    def branches(self, sequence: Element, stage_id: str, depth: int) -> list[BranchDef]:
        if depth > MAX_CONDITION_DEPTH:
            raise self.xml.fail(sequence, f"conditions nest more than {MAX_CONDITION_DEPTH} "
                                "levels deep: refused")
        env: dict[str, Any] = {}
        found: list[BranchDef] = []
        for activity in _activities(sequence):
            kind = _kind(activity)
            arguments = _keyed(activity, "Arguments")
            if kind == "GetEntityProperty":
                env[_variable(activity.get("Value"))] = (
                    "field", (activity.get("EntityName") or "").lower(),
                    activity.get("Attribute") or "")
            elif kind == "EvaluateExpression":
                env[_variable(_text(arguments.get("Result")))] = _literal(
                    _text(arguments.get("ExpressionOperator")),
                    _text(arguments.get("Parameters")) or "")
            elif kind == "EvaluateCondition":
                env[_variable(_text(arguments.get("Result")))] = _compare(
                    _text(arguments.get("ConditionOperator")) or "",
                    env.get(_variable(_text(arguments.get("Operand")))),
                    [env.get(v) for v in _variables(_text(arguments.get("Parameters")))])
            elif kind == "EvaluateLogicalCondition":
                env[_variable(_text(arguments.get("Result")))] = _logical(
                    _text(arguments.get("LogicalOperator")) or "",
                    env.get(_variable(_text(arguments.get("LeftOperand")))),
                    env.get(_variable(_text(arguments.get("RightOperand")))))
            elif kind == "ConditionBranch":
                found += self.branch(activity, arguments, env, stage_id, depth)
        return found

    def branch(self, activity: Element, arguments: dict[str, Element], env: dict[str, Any],
               stage_id: str, depth: int) -> list[BranchDef]:
        written = _text(arguments.get("Condition")) or ""
        condition: Any = None if written == "True" else env.get(_variable(written))
        if written != "True" and condition is None:
            condition = Unsupported(f"the condition {written!r} cannot be read")
        properties = _keyed(activity, "Properties")
        description = _text(properties.get("Description")) or None
        then = properties.get("Then")
        found: list[BranchDef] = []
        for inner in _activities(then) if then is not None else ():
            for target in (e for e in inner.iter() if local(e.tag) == "SetNextStage"):
                found.append(BranchDef(guid(target.get("StageId")) or "", condition,
                                       description))
            if _kind(inner) == "ConditionSequence":
                for nested in self.branches(inner, stage_id, depth + 1):
                    found.append(BranchDef(nested.target, _both(condition, nested.condition),
                                           nested.description or description))
        return found

    def relationship_losses(self, legacy: bool) -> None:
        names = {s.id: _name(s.labels) for s in self.stages}
        for source, target, relationship, attribute in self.hops:
            if relationship:
                self.loss(f"the move from {names.get(source, source)!r} to "
                          f"{names.get(target, target)!r} follows the relationship "
                          f"{relationship!r} ({attribute}): bpf does not link records, pass the "
                          "related record to flow.next() or register a record factory", target)
        if legacy:
            for after, relationship, attribute in self.legacy_hops:
                if after + 1 < len(self.stages):
                    target = self.stages[after + 1]
                    self.loss(f"the move from {_name(self.stages[after].labels)!r} to "
                              f"{_name(target.labels)!r} follows the relationship "
                              f"{relationship!r} ({attribute}): bpf does not link records, pass "
                              "the related record to flow.next() or register a record factory",
                              target.id)


def _name(labels: dict[str, str]) -> str:
    return labels.get("1033") or next(iter(labels.values()), "") or "(no name)"


def _variable(written: str | None) -> str:
    match = _VARIABLE.match((written or "").strip())
    return match.group(1) if match else (written or "")


def _variables(written: str | None) -> list[str]:
    match = _LIST.search(written or "")
    if match is None:
        return []
    return [v.strip() for v in match.group(1).split(",") if v.strip()]


def _literal(operator: str | None, parameters: str) -> Any:
    if operator != "CreateCrmType":
        return Unsupported(f"the expression {operator!r}")
    match = _LITERAL.search(parameters)
    if match is None:
        return Unsupported(f"the value {parameters!r}")
    kind, raw = match.group(1), match.group(2).replace('""', '"')
    try:
        if kind == "OptionSetValue":
            return ("literal", "option", int(raw))
        if kind == "Boolean":
            return ("literal", "boolean", raw.strip().lower() in ("1", "true"))
        if kind == "Integer":
            return ("literal", "number", int(raw))
        if kind in ("Decimal", "Float", "Money", "Double"):
            number = float(raw)
            return ("literal", "number", int(number) if number.is_integer() else number)
    except ValueError:
        return Unsupported(f"the {kind} value {raw!r}")
    if kind == "String":
        return ("literal", "text", raw)
    return Unsupported(f"a {kind} value")


_OPERATORS = {"Equal", "NotEqual", "In", "NotIn", "GreaterThan", "GreaterEqual", "LessThan",
              "LessEqual", "Null", "NotNull"}


def _compare(operator: str, operand: Any, parameters: list[Any]) -> Any:
    if operator not in _OPERATORS:
        return Unsupported(f"the operator {operator!r}")
    if not (isinstance(operand, tuple) and operand[0] == "field"):
        return Unsupported(f"{operator} on something that is not a field")
    for value in parameters:
        if isinstance(value, Unsupported):
            return value
        if not (isinstance(value, tuple) and value[0] == "literal"):
            return Unsupported(f"{operator} against something that is not a value")
    if operator not in ("Null", "NotNull") and not parameters:
        return Unsupported(f"{operator} without a value")
    return Compare(operand[1], operand[2], operator, tuple((v[1], v[2]) for v in parameters))


def _logical(operator: str, left: Any, right: Any) -> Any:
    for side in (left, right):
        if isinstance(side, Unsupported):
            return side
        if not isinstance(side, (Compare, Logical)):
            return Unsupported(f"{operator} of something that is not a condition")
    if operator not in ("And", "Or"):
        return Unsupported(f"the logical operator {operator!r}")
    return Logical(operator, (left, right))


def _both(outer: Any, inner: Any) -> Any:
    if outer is None:
        return inner
    if inner is None:
        return outer
    return _logical("And", outer, inner)
