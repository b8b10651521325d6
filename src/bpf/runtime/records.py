"""Reading and writing the caller's records: mappings or objects with an ``id``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from bpf._errors import RecordError

_MISSING = object()


def record_id(record: Any) -> str:
    """The record's id as text: ``record["id"]`` for a mapping, ``record.id`` for an object;
    an id given alone (text or a whole number) is itself."""
    if type(record) is dict:
        value = record.get("id")
    elif isinstance(record, str):
        return record
    elif isinstance(record, int) and not isinstance(record, bool):
        return str(record)  # an id given alone, as per-table integer keys are
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


class _Undo:
    """Puts one field of a record back as it was (a slotted object, not a closure: bulk loads
    keep one per change until the batch commits, and the garbage collector pays per object)."""

    __slots__ = ("field", "old", "record")

    def __init__(self, record: Any, field: str, old: Any) -> None:
        self.record = record
        self.field = field
        self.old = old

    def after_rollback(self) -> None:
        """Undo once the application's transaction rolled back: a mapped ORM row takes the
        old value as committed state (a plain setattr would make its closing session load
        or begin again); anything else is undone as usual."""
        try:
            from sqlalchemy import inspect
            from sqlalchemy.orm import attributes
        except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
            self()
            return
        state = inspect(self.record, raiseerr=False)
        if state is None or not hasattr(state, "mapper"):
            self()
        elif self.old is not _MISSING:
            attributes.set_committed_value(self.record, self.field, self.old)

    def __call__(self) -> None:
        record, field, old = self.record, self.field, self.old
        if type(record) is dict or isinstance(record, MutableMapping):
            if old is _MISSING:
                record.pop(field, None)
            else:
                record[field] = old
        elif old is _MISSING:
            with contextlib.suppress(AttributeError):
                delattr(record, field)
        else:
            setattr(record, field, old)


def set_field(record: Any, field: str, value: Any) -> Callable[[], None]:
    """Set ``field`` on the record and return a function that undoes it."""
    if type(record) is dict or isinstance(record, MutableMapping):
        old = record.get(field, _MISSING)
        record[field] = value
        return _Undo(record, field, old)
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
    return _Undo(record, field, old)
