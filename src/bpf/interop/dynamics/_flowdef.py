"""A Dynamics business process flow as read from its XAML (`bpf.interop.dynamics._xaml`),
before it becomes a bpf process (`bpf.interop.dynamics._convert`): stages, steps, branches,
conditions, and the `Loss` of anything bpf cannot represent."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Loss:
    """Something of the Dynamics flow that bpf cannot represent; ``stage`` is its stage's id."""

    text: str
    stage: str | None = None


@attrs.frozen
class Unsupported:
    """A condition bpf has no operator for; its branch is left out."""

    reason: str


@attrs.frozen
class Compare:
    """``field OP values``, as an ``EvaluateCondition`` writes it; values are (kind, value)."""

    entity: str
    field: str
    operator: str
    values: tuple[tuple[str, Any], ...]


@attrs.frozen
class Logical:
    """``And``/``Or`` of two conditions (``EvaluateLogicalCondition``)."""

    operator: str
    operands: tuple[Any, ...]


@attrs.frozen
class BranchDef:
    """Go to stage ``target`` when ``condition`` holds (None: the else branch)."""

    target: str
    condition: Compare | Logical | Unsupported | None
    description: str | None = None


@attrs.define
class StepDef:
    field: str
    labels: dict[str, str]
    required: bool
    class_id: str
    step_id: str | None


@attrs.define
class StageDef:
    id: str
    labels: dict[str, str]
    entity: str
    category: int | None
    steps: list[StepDef]
    next_id: str | None
    has_next_id: bool
    branches: list[BranchDef] | None
    else_branch: bool
    line: int


@attrs.define
class FlowDef:
    """A business process flow as its XAML writes it."""

    workflow_id: str | None
    stages: list[StageDef]
    legacy: bool
    losses: list[Loss]
