"""What a process is: frozen value classes built once from YAML and shared by every flow.

Nothing here holds runtime state. The loader (`bpf.definition.loader`) builds these from YAML after
the schema and semantic checks; code may also build them directly.
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

import attrs

from bpf._errors import UnknownStageError
from bpf.definition.conditions import Condition, is_filled

StepType = Literal["text", "number", "money", "date", "boolean", "choice", "lookup"]

#: Step types, in the order the format documents them.
STEP_TYPES: tuple[str, ...] = ("text", "number", "money", "date", "boolean", "choice", "lookup")

#: The Dynamics 365 stage categories, in their global order; a stage's phase is
#: ``"{position}-{Category}"`` with the 1-based position in this list.
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Qualify", "Develop", "Propose", "Close", "Identify", "Research", "Resolve", "Approval",
)


#: The bounds the process format sets (docs/process-format.md), checked at construction too:
#: a version is a 32-bit integer in both databases, a stale threshold at most a century.
MAX_VERSION = 2**31 - 1
MAX_STALE_AFTER_DAYS = 36_500


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _within(low: float, high: float, *, above: bool = False, whole: bool = False) -> Any:
    """An attrs validator: None, or a finite number (a whole one when ``whole``) from ``low``
    (exclusive when ``above``) to ``high``."""

    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value is None:
            return
        ok = (isinstance(value, int if whole else (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and (low < value if above else low <= value)
              and value <= high)
        if not ok:
            bound = f"greater than {low}" if above else f"at least {low}"
            kind = "a whole number" if whole else "a finite number"
            raise ValueError(f"{attribute.name} must be {kind} {bound} and at most {high}, "
                             f"not {value!r}")

    return check


@attrs.frozen
class Step:
    """A field to fill in, or a box to mark complete, within a stage."""

    __module__ = "bpf"  # shown as bpf.Step, its public name

    field: str
    label: str
    type: StepType = "text"
    required: bool = False
    # Texts, or whole numbers: a Dynamics option set whose labels the solution does not carry.
    choices: tuple[str | int, ...] = attrs.field(default=(), converter=tuple)
    description: str | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fill this step validly, in a few words; None when it does.

        The one rule of the gate (docs/process-format.md, "What fills a step"): a value fills
        a step when it is filled in (not None, blank text or an empty collection) and of the
        step's type:

        - ``boolean`` (mark complete): True only;
        - ``number``, ``money``: a finite number (int, float, Decimal; not a bool, NaN or
          infinity);
        - ``date``: a date or datetime, or text in ISO 8601 form (as JSON carries dates);
        - ``choice``: one of its choices, of the same type (true is not the choice 1);
        - ``lookup``: a reference to one record: an id (text or whole number), a mapping, or
          an object such as a related ORM instance; not a bool, a number with a fraction or a
          list;
        - ``text``: text.
        """
        kind = self.type
        if kind == "boolean":
            if value is True:
                return None
            return "not marked complete" if value is None or value is False else \
                "not true or false"
        if not is_filled(value):
            return "not filled"
        check = _TYPE_PROBLEMS.get(kind)
        return None if check is None else check(self, value)

    def is_satisfied(self, value: Any) -> bool:
        """Whether ``value`` satisfies this step when it is required: `problem` finds none."""
        return self.problem(value) is None


def _number_problem(step: Step, value: Any) -> str | None:
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return None  # the common case, without the numbers ABCs' slow isinstance
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        return "not an amount" if step.type == "money" else "not a number"
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if finite:
        return None
    if value.is_nan() if isinstance(value, Decimal) else math.isnan(value):
        return "NaN is not an amount" if step.type == "money" else "NaN is not a number"
    return "not a finite amount" if step.type == "money" else "not a finite number"


def _date_problem(step: Step, value: Any) -> str | None:
    if isinstance(value, datetime.date):
        return None
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return "not a date"
        return None
    return "not a date"


def _choice_problem(step: Step, value: Any) -> str | None:
    # By type too: True == 1 in Python, but true is no choice among 1, 2, 3.
    if any(type(value) is type(c) and value == c for c in step.choices):
        return None
    return f"not one of {', '.join(map(str, step.choices))}"


def _lookup_problem(step: Step, value: Any) -> str | None:
    kind = type(value)
    if kind is str or kind is int or kind is dict:
        return None  # an id or a mapping: the common cases, decided without isinstance
    if isinstance(value, (bool, float, Decimal)):
        return "not a reference to a record"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "a list, not a reference to one record"
    return None


def _text_problem(step: Step, value: Any) -> str | None:
    return None if isinstance(value, str) else "not text"


_TYPE_PROBLEMS = {
    "number": _number_problem, "money": _number_problem, "date": _date_problem,
    "choice": _choice_problem, "lookup": _lookup_problem, "text": _text_problem,
}


@attrs.frozen
class Branch:
    """One entry of a stage's ``next``: go to ``stage`` when ``when`` holds (None: the default)."""

    __module__ = "bpf"  # shown as bpf.Branch, its public name

    stage: str
    when: Condition | None = None


@attrs.frozen
class Stage:
    """One stage of a process, with its steps and where the flow goes after it."""

    __module__ = "bpf"  # shown as bpf.Stage, its public name

    id: str
    name: str
    entity: str
    phase: str
    category: str | None = None
    steps: tuple[Step, ...] = attrs.field(default=(), converter=tuple)
    next: tuple[Branch, ...] = attrs.field(default=(), converter=tuple)
    end: bool = False
    probability: float | None = attrs.field(default=None, validator=_within(0, 100))
    forecast_category: str | None = None
    guidance: str | None = None
    stale_after_days: float | None = attrs.field(
        default=None, validator=_within(0, MAX_STALE_AFTER_DAYS, above=True))
    on_enter: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    on_exit: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: actions run once the change entering (leaving) the stage has committed, delivered
    #: through the outbox (docs/outbox.md); on_enter/on_exit run inside the change
    after_enter: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    after_exit: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action name the stage names (on_enter, on_exit, after_enter, after_exit)."""
        return (*self.on_enter, *self.on_exit, *self.after_enter, *self.after_exit)

    @property
    def required_steps(self) -> tuple[Step, ...]:
        """The steps that gate the move to the next stage."""
        return tuple(s for s in self.steps if s.required)

    def step(self, field: str) -> Step:
        """The step for ``field``; `KeyError` when the stage has none."""
        for s in self.steps:
            if s.field == field:
                return s
        raise KeyError(f"stage {self.id!r} has no step for field {field!r}")


@attrs.frozen
class Outcome:
    """How finishing a flow with this outcome closes its record: the fields it sets."""

    __module__ = "bpf"  # shown as bpf.Outcome, its public name

    name: str
    set: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen
class ProcessDefinition:
    """A business process flow definition: immutable, shared by every flow that runs it."""

    __module__ = "bpf"  # shown as bpf.ProcessDefinition, its public name

    process: str
    name: str
    entity: str
    stages: tuple[Stage, ...] = attrs.field(converter=tuple)
    version: int = attrs.field(default=1, validator=_within(1, MAX_VERSION, whole=True))
    pipeline_field: str | None = None
    roles: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    outcomes: Mapping[str, Outcome] = attrs.field(factory=dict, converter=_frozen_mapping)
    categories: tuple[str, ...] = attrs.field(default=DEFAULT_CATEGORIES, converter=tuple)
    description: str | None = None
    extends: str | None = None
    #: The fields reactivating a finished or abandoned flow sets on its record (``reactivate:
    #: {set: ...}``), e.g. ``statecode: open`` to undo what the outcome closed.
    reactivate_set: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    source: str = attrs.field(default="<definition>", eq=False)
    _index: Mapping[str, int] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(
            self, "_index", MappingProxyType({s.id: i for i, s in enumerate(self.stages)})
        )

    @property
    def first_stage(self) -> Stage:
        """The stage every flow starts in."""
        return self.stages[0]

    @property
    def entities(self) -> tuple[str, ...]:
        """Every entity the process spans, the primary entity first."""
        seen = dict.fromkeys([self.entity, *(s.entity for s in self.stages)])
        return tuple(seen)

    def stage(self, stage_id: str) -> Stage:
        """The stage with that id; `bpf.UnknownStageError` when there is none."""
        try:
            return self.stages[self._index[stage_id]]
        except KeyError:
            known = ", ".join(s.id for s in self.stages)
            raise UnknownStageError(
                f"process {self.process!r} has no stage {stage_id!r} (stages: {known})"
            ) from None

    def has_stage(self, stage_id: str) -> bool:
        return stage_id in self._index

    def branches(self, stage_id: str) -> tuple[Branch, ...]:
        """Where a flow may go after ``stage_id``, in evaluation order.

        A stage's explicit ``next`` wins; otherwise the following stage in the list is the only
        successor, unless the stage is marked ``end`` or is the last one.
        """
        stage = self.stage(stage_id)
        if stage.next:
            return stage.next
        i = self._index[stage_id]
        if stage.end or i + 1 >= len(self.stages):
            return ()
        return (Branch(self.stages[i + 1].id),)

    def successors(self, stage_id: str) -> tuple[str, ...]:
        """Every stage a flow may enter right after ``stage_id``, whatever the field values."""
        return tuple(dict.fromkeys(b.stage for b in self.branches(stage_id)))

    def is_last(self, stage_id: str) -> bool:
        """True when no stage can follow ``stage_id``: a flow there may finish."""
        return not self.branches(stage_id)


def phase_of(category: str | None, categories: tuple[str, ...], name: str) -> str:
    """The pipeline phase of a stage: ``"{position}-{Category}"``, or its name without category."""
    if category is None:
        return name
    return f"{categories.index(category) + 1}-{category}"
