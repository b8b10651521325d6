"""Reading and writing the caller's records: mappings or objects with an ``id``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from bpf._errors import RecordError

_MISSING = object()


def record_id(record: Any) -> str:
    """The record's id as text: ``record["id"]`` for a mapping, ``record.id`` otherwise."""
    if type(record) is dict:
        value = record.get("id")
    elif isinstance(record, str):
        return record
    else:
        value = record.get("id") if isinstance(record, Mapping) else getattr(record, "id", None)
    if value is None or value == "":
        raise RecordError(
            f"a record needs an 'id' (a mapping key or an attribute); got {type(record).__name__}"
        )
    return value if type(value) is str else str(value)


def field_getter(record: Any) -> Callable[[str], Any]:
    """A function reading one field of the record; a missing field reads as None."""
    if type(record) is dict or isinstance(record, Mapping):
        return record.get
    return lambda field: getattr(record, field, None)


def set_field(record: Any, field: str, value: Any) -> Callable[[], None]:
    """Set ``field`` on the record and return a function that undoes it."""
    if type(record) is dict or isinstance(record, MutableMapping):
        old = record.get(field, _MISSING)
        record[field] = value

        def undo() -> None:
            if old is _MISSING:
                record.pop(field, None)
            else:
                record[field] = old

        return undo
    if isinstance(record, Mapping):
        raise RecordError(f"cannot set {field!r}: the record is a read-only mapping")
    old = getattr(record, field, _MISSING)
    try:
        setattr(record, field, value)
    except Exception as exc:  # frozen attrs/dataclass, slots without the field, properties...
        raise RecordError(
            f"cannot set {field!r} on the {type(record).__name__} record "
            f"{getattr(record, 'id', '?')!r}: {exc}"
        ) from exc

    def undo_attr() -> None:
        if old is _MISSING:
            with contextlib.suppress(AttributeError):
                delattr(record, field)
        else:
            setattr(record, field, old)

    return undo_attr
