"""Synthetic Dynamics exports, written the way the real ones in shared/corpora/dynamics-bpf are.

Each function returns XAML text for one activity; `workflow` wraps them into a BPF's XAML and
`row` writes its ``.xaml.data.xml``. Conditions are built with `compare`, `both` and `either`,
and compiled into the data-flow program (GetEntityProperty, EvaluateExpression,
EvaluateCondition, EvaluateLogicalCondition) a ConditionSequence holds.
"""

from __future__ import annotations

import itertools
import uuid
from html import escape
from pathlib import Path

V9 = "Version=9.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
NAMESPACES = (
    'xmlns="http://schemas.microsoft.com/netfx/2009/xaml/activities" '
    f'xmlns:mcwb="clr-namespace:Microsoft.Crm.Workflow.BusinessProcessFlowActivities;assembly=Microsoft.Crm.Workflow, {V9}" '  # noqa: E501
    f'xmlns:mcwc="clr-namespace:Microsoft.Crm.Workflow.ClientActivities;assembly=Microsoft.Crm.Workflow, {V9}" '  # noqa: E501
    f'xmlns:mcwo="clr-namespace:Microsoft.Crm.Workflow.ObjectModel;assembly=Microsoft.Crm, {V9}" '
    f'xmlns:mxswa="clr-namespace:Microsoft.Xrm.Sdk.Workflow.Activities;assembly=Microsoft.Xrm.Sdk.Workflow, {V9}" '  # noqa: E501
    f'xmlns:mxsq="clr-namespace:Microsoft.Xrm.Sdk.Query;assembly=Microsoft.Xrm.Sdk, {V9}" '
    'xmlns:s="clr-namespace:System;assembly=mscorlib" '
    'xmlns:sco="clr-namespace:System.Collections.ObjectModel;assembly=mscorlib" '
    'xmlns:x="http://schemas.microsoft.com/winfx/2006/xaml"'
)
TEXT = "4273edbd-ac1d-40d3-9fb2-095c621b552d"
OPTION_SET = "3ef39988-22bb-4f0b-bbbe-64b5a3748aee"
TWO_OPTIONS = "67fac785-cd58-4f9f-abb3-4b7ddc6ed5ed"
LOOKUP = "270bd3db-d9af-4782-9025-509e298dec0a"
MONEY = "533b9e00-756b-4312-95a0-dc888637ac78"

_counter = itertools.count(1)


def new_id() -> str:
    return str(uuid.uuid4())


def _ref(kind: str, body: str, *, key: str = "", display: str = "") -> str:
    keyed = f' x:Key="{key}"' if key else ""
    return (f'<mxswa:ActivityReference{keyed} AssemblyQualifiedName="Microsoft.Crm.Workflow.'
            f'Activities.{kind}, Microsoft.Crm.Workflow, {V9}" '
            f'DisplayName="{escape(display or kind + str(next(_counter)))}">{body}'
            "</mxswa:ActivityReference>")


def _properties(activities: str = "", extra: str = "") -> str:
    return ("<mxswa:ActivityReference.Properties>"
            '<sco:Collection x:TypeArguments="Variable" x:Key="Variables" />'
            f'<sco:Collection x:TypeArguments="Activity" x:Key="Activities">{activities}'
            f"</sco:Collection>{extra}</mxswa:ActivityReference.Properties>")


def _labels(labels: dict[str, str], label_id: str) -> str:
    items = "".join(f'<mcwo:StepLabel Description="{escape(text)}" LabelId="{label_id}" '
                    f'LanguageCode="{code}" />' for code, text in labels.items())
    return f'<sco:Collection x:TypeArguments="mcwo:StepLabel" x:Key="StepLabels">{items}' \
           "</sco:Collection>"


def step(field: str, label: str, *, required: bool = False, class_id: str = TEXT,
         labels: dict[str, str] | None = None, parameters: str = "") -> str:
    """A step filling in ``field``."""
    step_id = new_id()
    params = f' Parameters="{escape(parameters)}"' if parameters else ""
    control = (f'<Sequence DisplayName="ControlStep{next(_counter)}"><mcwb:Control ClassId="'
               f'{class_id}" ControlDisplayName="{escape(label)}" ControlId="{field}" '
               f'DataFieldName="{field}" IsSystemControl="False" IsUnbound="False"{params} '
               'SystemStepType="0" /></Sequence>')
    extra = (_labels(labels or {"1033": label}, step_id) +
             f'<x:String x:Key="ProcessStepId">{step_id}</x:String>'
             f'<x:Boolean x:Key="IsProcessRequired">{required}</x:Boolean>')
    return _ref("StepComposite", _properties(control, extra), display=f"StepStep: {label}")


def action_step(label: str, unique_name: str, *, required: bool = False) -> str:
    """A step that is a button running an action (an ActionComposite in the step)."""
    step_id = new_id()
    action = _ref("ActionComposite", _properties("", (
        '<x:Int32 x:Key="ActionType">1</x:Int32>'
        f'<x:String x:Key="UniqueName">{unique_name}</x:String>'
        '<mcwb:ActionControl x:Key="ActionControl" />')))
    extra = (_labels({"1033": label}, step_id) +
             f'<x:String x:Key="ProcessStepId">{step_id}</x:String>'
             f'<x:Boolean x:Key="IsProcessRequired">{required}</x:Boolean>')
    return _ref("StepComposite", _properties(action, extra))


def flow_step(label: str) -> str:
    """A step that runs a Power Automate flow (a FlowComposite in the step)."""
    step_id = new_id()
    flow = _ref("FlowComposite", _properties("", f'<x:String x:Key="WorkflowId">{new_id()}'
                                                 "</x:String>"))
    extra = (_labels({"1033": label}, step_id) +
             f'<x:String x:Key="ProcessStepId">{step_id}</x:String>'
             '<x:Boolean x:Key="IsProcessRequired">False</x:Boolean>')
    return _ref("StepComposite", _properties(flow, extra))


def stage_trigger(workflow_name: str, event: str) -> str:
    """A workflow the stage runs on STAGEENTER or STAGEEXIT (an ActionComposite in the stage)."""
    return _ref("ActionComposite", _properties("", (
        f'<x:String x:Key="UniqueName">{workflow_name}</x:String>'
        '<sco:Collection x:TypeArguments="mcwo:ProcessTriggerData" x:Key="TriggerEvents">'
        f'<mcwo:ProcessTriggerData Event="{event}" /></sco:Collection>')))


# -- conditions ----------------------------------------------------------------------------------


def compare(field: str, operator: str, *values: object, entity: str = "new_thing",
            kind: str = "OptionSetValue") -> tuple:
    """``field OPERATOR values``; ``kind`` is the WorkflowPropertyType of the values."""
    return ("compare", field, entity, operator, values, kind)


def both(left: tuple, right: tuple) -> tuple:
    return ("logical", "And", left, right)


def either(left: tuple, right: tuple) -> tuple:
    return ("logical", "Or", left, right)


class _Program:
    def __init__(self) -> None:
        self.variables: list[str] = []
        self.activities: list[str] = []

    def variable(self) -> str:
        name = f"ConditionBranchStep{next(_counter)}_v"
        self.variables.append(name)
        return name

    def emit(self, condition: tuple) -> str:
        if condition[0] == "logical":
            left, right = self.emit(condition[2]), self.emit(condition[3])
            result = self.variable()
            self.activities.append(_ref("EvaluateLogicalCondition", (
                "<mxswa:ActivityReference.Arguments>"
                f'<InArgument x:TypeArguments="mxsq:LogicalOperator" x:Key="LogicalOperator">'
                f"{condition[1]}</InArgument>"
                f'<InArgument x:TypeArguments="x:Boolean" x:Key="LeftOperand">[{left}]'
                "</InArgument>"
                f'<InArgument x:TypeArguments="x:Boolean" x:Key="RightOperand">[{right}]'
                "</InArgument>"
                f'<OutArgument x:TypeArguments="x:Boolean" x:Key="Result">[{result}]'
                "</OutArgument></mxswa:ActivityReference.Arguments>")))
            return result
        _, field, entity, operator, values, kind = condition
        operand = self.variable()
        self.activities.append(
            f'<mxswa:GetEntityProperty Attribute="{field}" Entity="[InputEntities(&quot;'
            f'primaryEntity&quot;)]" EntityName="{entity}" Value="[{operand}]" />')
        literals = []
        for value in values:
            literal = self.variable()
            literals.append(literal)
            self.activities.append(_ref("EvaluateExpression", (
                "<mxswa:ActivityReference.Arguments>"
                '<InArgument x:TypeArguments="x:String" x:Key="ExpressionOperator">'
                "CreateCrmType</InArgument>"
                '<InArgument x:TypeArguments="s:Object[]" x:Key="Parameters">[New Object() { '
                f'Microsoft.Xrm.Sdk.Workflow.WorkflowPropertyType.{kind}, &quot;{value}&quot;, '
                '&quot;Picklist&quot; }]</InArgument>'
                f'<OutArgument x:TypeArguments="x:Object" x:Key="Result">[{literal}]'
                "</OutArgument></mxswa:ActivityReference.Arguments>")))
        result = self.variable()
        self.activities.append(_ref("EvaluateCondition", (
            "<mxswa:ActivityReference.Arguments>"
            '<InArgument x:TypeArguments="mxsq:ConditionOperator" x:Key="ConditionOperator">'
            f"{operator}</InArgument>"
            '<InArgument x:TypeArguments="s:Object[]" x:Key="Parameters">[New Object() { '
            f'{", ".join(literals)} }}]</InArgument>'
            f'<InArgument x:TypeArguments="x:Object" x:Key="Operand">[{operand}]</InArgument>'
            f'<OutArgument x:TypeArguments="x:Boolean" x:Key="Result">[{result}]</OutArgument>'
            "</mxswa:ActivityReference.Arguments>")))
        return result


def conditions(stage_id: str, branches: list[tuple[tuple, str]], otherwise: str | None) -> str:
    """A ConditionSequence: ``branches`` of (condition, target stage id), then the else target."""
    program = _Program()

    def branch(written: str, target: str, description: str) -> str:
        then = _ref("Composite", _properties(
            f'<Sequence><mcwc:SetNextStage ParentStageId="{stage_id}" StageId="{target}" />'
            "</Sequence>"), key="Then")
        return _ref("ConditionBranch", (
            "<mxswa:ActivityReference.Arguments>"
            f'<InArgument x:TypeArguments="x:Boolean" x:Key="Condition">{written}</InArgument>'
            "</mxswa:ActivityReference.Arguments><mxswa:ActivityReference.Properties>"
            f'{then}<x:Null x:Key="Else" /><x:String x:Key="Description">{description}'
            "</x:String></mxswa:ActivityReference.Properties>"))

    parts = []
    for n, (condition, target) in enumerate(branches, 1):
        result = program.emit(condition)
        parts.append("".join(program.activities))
        program.activities = []
        parts.append(branch(f"[{result}]", target, f"Condition {n}"))
    if otherwise is not None:
        parts.append(branch("True", otherwise, ""))
    variables = "".join(f'<Variable x:TypeArguments="x:Object" Name="{v}" />'
                        for v in program.variables)
    return _ref("ConditionSequence", (
        "<mxswa:ActivityReference.Properties>"
        f'<sco:Collection x:TypeArguments="Variable" x:Key="Variables">{variables}'
        "</sco:Collection>"
        f'<sco:Collection x:TypeArguments="Activity" x:Key="Activities">{"".join(parts)}'
        "</sco:Collection>"
        f'<x:Boolean x:Key="ContainsElseBranch">{otherwise is not None}</x:Boolean>'
        "</mxswa:ActivityReference.Properties>"))


# -- stages, tables, the workflow ---------------------------------------------------------------

_LEGACY = object()


def stage(stage_id: str, name: str, *activities: str, category: int = -1,
          next_id: object = None, labels: dict[str, str] | None = None) -> str:
    """A stage; ``next_id=None`` ends the flow (current layout), ``legacy()`` leaves it out."""
    if next_id is _LEGACY:
        following = ""
    elif next_id is None:
        following = '<x:Null x:Key="NextStageId" />'
    else:
        following = f'<x:String x:Key="NextStageId">{next_id}</x:String>'
    extra = (_labels(labels or {"1033": name}, stage_id) +
             f'<x:String x:Key="StageId">{stage_id}</x:String>'
             f'<x:String x:Key="StageCategory">{category}</x:String>{following}')
    return _ref("StageComposite", _properties("".join(activities), extra),
                display=f"StageStep{next(_counter)}: {name}")


def legacy() -> object:
    """The ``next_id`` of a legacy-layout stage: no NextStageId at all."""
    return _LEGACY


def entity(table: str, *stages: str, relationship: str | None = None,
           attribute: str | None = None, closed_loop: bool = False) -> str:
    """An EntityComposite: one table and its stages; a legacy hop is written on it."""
    hop = (f'<x:String x:Key="RelationshipName">{relationship}</x:String>'
           f'<x:String x:Key="AttributeName">{attribute}</x:String>' if relationship else
           '<x:Null x:Key="RelationshipName" /><x:Null x:Key="AttributeName" />')
    extra = f'{hop}<x:Boolean x:Key="IsClosedLoop">{closed_loop}</x:Boolean>'
    return _ref("EntityComposite", _properties("".join(stages), extra),
                display=f"EntityStep{next(_counter)}: {table}")


def relationships(*hops: tuple[str, str, str, str]) -> str:
    """The StageRelationshipCollectionComposite: (source, target, relationship, attribute)."""
    items = "".join(
        f'<Sequence><mcwb:StageRelationship AttributeName="{a}" RelationshipName="{r}" '
        f'SourceStageId="{s}" TargetStageId="{t}" /></Sequence>' for s, t, r, a in hops)
    return (f'<mxswa:ActivityReference AssemblyQualifiedName="Microsoft.Crm.Workflow.'
            f'BusinessProcessFlowActivities.StageRelationshipCollectionComposite, '
            f'Microsoft.Crm.Workflow, {V9}" DisplayName="RelationshipCollectionStep1">'
            f"{_properties(items)}</mxswa:ActivityReference>")


def workflow(*activities: str, flow_id: str = "c9064d35-616b-ed11-81ac-000d3af4f400") -> str:
    """A business process flow's XAML."""
    name = "XrmWorkflow" + flow_id.replace("-", "")
    return (f'<Activity x:Class="{name}" {NAMESPACES}>\n<mxswa:Workflow>\n'
            + "\n".join(activities) + "\n</mxswa:Workflow>\n</Activity>\n")


def row(unique_name: str, primary: str, name: str, *, category: int = 4,
        xaml: str = "Flow.xaml", flow_id: str = "c9064d35-616b-ed11-81ac-000d3af4f400") -> str:
    """A ``.xaml.data.xml`` process row (with the byte-order mark the real ones start with)."""
    return (f'\ufeff<?xml version="1.0" encoding="utf-8"?>\n<Workflow WorkflowId="{{{flow_id}}}" '
            f'Name="{escape(name)}">\n  <XamlFileName>/Workflows/{xaml}</XamlFileName>\n'
            f"  <Category>{category}</Category>\n  <UniqueName>{unique_name}</UniqueName>\n"
            f"  <PrimaryEntity>{primary}</PrimaryEntity>\n</Workflow>\n")


def write_flow(folder: Path, xaml: str, data: str | None = None,
               name: str = "Flow.xaml") -> Path:
    """Write ``Workflows/<name>`` (and its .data.xml) under ``folder``; the XAML's path."""
    workflows = folder / "Workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    path = workflows / name
    path.write_text(xaml, encoding="utf-8")
    if data is not None:
        (workflows / f"{name}.data.xml").write_text(data, encoding="utf-8")
    return path


def option_set_entity(table: str, column: str, options: dict[int, str],
                      global_name: str | None = None) -> str:
    """An ``Entities/<table>/Entity.xml`` with one option-set column (local, or global by name)."""
    if global_name:
        inner = f"<OptionSetName>{global_name}</OptionSetName>"
    else:
        inner = (f'<optionset Name="{table}_{column}"><OptionSetType>picklist</OptionSetType>'
                 f"<IsGlobal>0</IsGlobal>{_options(options)}</optionset>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Entity><Name>{table}</Name><EntityInfo>'
            f'<entity Name="{table}"><attributes><attribute PhysicalName="{column}">'
            f"<Type>picklist</Type><LogicalName>{column}</LogicalName>{inner}</attribute>"
            "</attributes></entity></EntityInfo></Entity>\n")


def global_option_set(name: str, options: dict[int, str]) -> str:
    """An ``OptionSets/<name>.xml``."""
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<optionset Name="{name}">'
            f"<OptionSetType>picklist</OptionSetType><IsGlobal>1</IsGlobal>{_options(options)}"
            "</optionset>\n")


def _options(options: dict[int, str]) -> str:
    return "<options>" + "".join(
        f'<option value="{value}"><labels><label description="{escape(label)}" '
        'languagecode="1033" /></labels></option>' for value, label in options.items()
    ) + "</options>"
