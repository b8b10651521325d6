"""Entity bindings: how bpf gets a record's id, loads a record by id and saves what it wrote.

A record's identity is (entity, id): a lead 42 and an opportunity 42 are two records. The
entity of a record object comes from a binding of its class (`Engine.entity(..., model=...)`),
from the ``entity=`` the caller passes, or from the process it starts; plain dicts and objects
keep working with an ``id`` key or attribute. A binding whose model is a SQLAlchemy ORM class
loads and saves through the session of the open `Engine.transaction`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from bpf._errors import RecordError
from bpf.runtime.records import record_id


def _orm_mapper(model: Any) -> Any:
    """The SQLAlchemy mapper of ``model``, or None when it is not a mapped class."""
    if model is None:
        return None
    try:
        from sqlalchemy import inspect
        from sqlalchemy.orm import Mapper
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    mapper = inspect(model, raiseerr=False)
    return mapper if isinstance(mapper, Mapper) else None


@attrs.frozen
class EntityBinding:
    """How the records of one entity are identified, loaded and saved."""

    name: str
    #: the class of the entity's record objects (None: dicts and plain objects)
    model: type | None = None
    #: the mapping key or attribute that holds the record's id
    key: str = "id"
    #: ``load(record_id) -> record``: binds flows read back from the store to their records
    load: Callable[[str], Any] | None = None
    #: ``save(record)``: persists the fields bpf wrote (the pipeline field, outcome fields)
    save: Callable[[Any], Any] | None = None
    #: True when ``model`` is a SQLAlchemy ORM class: load and save go through the session
    #: of the open `Engine.transaction`
    orm: bool = False

    def id_of(self, record: Any) -> str:
        if self.key == "id" or isinstance(record, str):
            return record_id(record)
        value = record.get(self.key) if isinstance(record, dict) else getattr(record, self.key,
                                                                                None)
        if value is None or value == "":
            raise RecordError(
                f"a {self.name} record needs its key {self.key!r}; got {type(record).__name__}"
            )
        return value if type(value) is str else str(value)


class Bindings:
    """The engine's entity bindings, by entity name and by record class."""

    __slots__ = ("_by_model", "_by_name")

    def __init__(self) -> None:
        self._by_name: dict[str, EntityBinding] = {}
        self._by_model: dict[type, EntityBinding] = {}

    def bind(
        self, name: str, *, model: type | None = None, key: str | None = None,
        load: Callable[[str], Any] | None = None, save: Callable[[Any], Any] | None = None,
    ) -> EntityBinding:
        mapper = _orm_mapper(model)
        if key is None:
            key = "id"
            if mapper is not None and len(mapper.primary_key) == 1:
                key = mapper.get_property_by_column(mapper.primary_key[0]).key
        binding = EntityBinding(name, model, key, load, save, mapper is not None)
        old = self._by_name.get(name)
        if old is not None and old.model is not None:
            self._by_model.pop(old.model, None)
        self._by_name[name] = binding
        if model is not None:
            other = self._by_model.get(model)
            if other is not None and other.name != name:
                raise RecordError(
                    f"{model.__name__} is already bound to the entity {other.name!r}"
                )
            self._by_model[model] = binding
        return binding

    def get(self, name: str) -> EntityBinding | None:
        return self._by_name.get(name)

    def of_record(self, record: Any) -> EntityBinding | None:
        """The binding of the record's class (or of a base class), if any."""
        if not self._by_model or isinstance(record, str | dict):
            return None
        for cls in type(record).__mro__:
            binding = self._by_model.get(cls)
            if binding is not None:
                return binding
        return None

    def __bool__(self) -> bool:
        return bool(self._by_name)
