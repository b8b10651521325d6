"""Branch conditions: data, never Python code.

A condition is a small tree: `Compare` leaves (``{field: F, OP: V}``) under `All`, `AnyOf`,
`Not`.
`Condition.evaluate(get)` reads field values through ``get(field)``; `Condition.fields` lists what
it reads; `str(condition)` reads like the YAML a person wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs

#: The comparison operators a ``{field: F, OP: V}`` condition may use.
OPERATORS: tuple[str, ...] = (
    "equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "is_set",
)

_SYMBOLS = {
    "equals": "==", "not_equals": "!=", "in": "in", "not_in": "not in",
    "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
}

Getter = Callable[[str], Any]


def is_filled(value: Any) -> bool:
    """True when a step's value counts as filled in: not None, "" or an empty collection."""
    if value is None:
        return False
    kind = type(value)
    if kind is bool or kind is int or kind is float:
        return True
    if kind is list or kind is tuple or kind is dict or kind is set:
        return len(value) > 0
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, Collection) and not isinstance(value, (bytes, bytearray)):
        return len(value) > 0
    return True


def _ordered(op: str, left: Any, right: Any) -> bool:
    # An unset or incomparable value never satisfies an ordering: a branch must not be taken
    # because a field is still empty, and a text in a number field must not raise mid-move.
    if left is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


class Condition:
    """Base of the condition tree."""

    __module__ = "bpf"  # shown as bpf.Condition, its public name

    __slots__ = ()

    def evaluate(self, get: Getter) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def fields(self) -> frozenset[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_data(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """The condition as the YAML mapping that describes it."""
        raise NotImplementedError


@attrs.frozen
class Compare(Condition):
    """``{field: F, OP: V}``: compare one field's value with a constant."""

    __module__ = "bpf"  # shown as bpf.Compare, its public name

    field: str
    op: str = attrs.field(validator=attrs.validators.in_(OPERATORS))
    value: Any

    def evaluate(self, get: Getter) -> bool:
        left = get(self.field)
        op, right = self.op, self.value
        if op == "equals":
            return bool(left == right)
        if op == "not_equals":
            return bool(left != right)
        if op == "in":
            return left in right
        if op == "not_in":
            return left not in right
        if op == "is_set":
            return is_filled(left) == bool(right)
        return _ordered(op, left, right)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset((self.field,))

    def to_data(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"field": self.field, self.op: value}

    def __str__(self) -> str:
        if self.op == "is_set":
            return f"{self.field} is {'set' if self.value else 'empty'}"
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{self.field} {_SYMBOLS[self.op]} {value!r}"


@attrs.frozen
class All(Condition):
    """``{all: [...]}``: every condition holds."""

    __module__ = "bpf"  # shown as bpf.All, its public name

    conditions: tuple[Condition, ...]

    def evaluate(self, get: Getter) -> bool:
        return all(c.evaluate(get) for c in self.conditions)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset().union(*(c.fields for c in self.conditions))

    def to_data(self) -> dict[str, Any]:
        return {"all": [c.to_data() for c in self.conditions]}

    def __str__(self) -> str:
        return "(" + " and ".join(str(c) for c in self.conditions) + ")"


@attrs.frozen
class AnyOf(Condition):
    """``{any: [...]}``: at least one condition holds."""

    __module__ = "bpf"  # shown as bpf.AnyOf, its public name

    conditions: tuple[Condition, ...]

    def evaluate(self, get: Getter) -> bool:
        return any(c.evaluate(get) for c in self.conditions)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset().union(*(c.fields for c in self.conditions))

    def to_data(self) -> dict[str, Any]:
        return {"any": [c.to_data() for c in self.conditions]}

    def __str__(self) -> str:
        return "(" + " or ".join(str(c) for c in self.conditions) + ")"


@attrs.frozen
class Not(Condition):
    """``{not: ...}``: the condition does not hold."""

    __module__ = "bpf"  # shown as bpf.Not, its public name

    condition: Condition

    def evaluate(self, get: Getter) -> bool:
        return not self.condition.evaluate(get)

    @property
    def fields(self) -> frozenset[str]:
        return self.condition.fields

    def to_data(self) -> dict[str, Any]:
        return {"not": self.condition.to_data()}

    def __str__(self) -> str:
        return f"not {self.condition}"


def condition_from_data(data: Mapping[str, Any]) -> Condition:
    """Build a condition from its already schema-checked YAML mapping."""
    if "all" in data:
        return All(tuple(condition_from_data(c) for c in data["all"]))
    if "any" in data:
        return AnyOf(tuple(condition_from_data(c) for c in data["any"]))
    if "not" in data:
        return Not(condition_from_data(data["not"]))
    (op,) = [k for k in data if k != "field"]
    value = data[op]
    if isinstance(value, list):
        value = tuple(value)
    return Compare(data["field"], op, value)
