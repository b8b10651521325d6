"""Entity bindings: how bpf gets a record's id, loads a record by id and saves what it wrote.

A record's identity is (entity, id): a lead 42 and an opportunity 42 are two records. The
entity of a record object comes from a binding of its class (`Engine.entity(..., model=...)`),
from the ``entity=`` the caller passes, or from the process it starts; plain dicts and objects
keep working with an ``id`` key or attribute. A binding whose model is a SQLAlchemy ORM class
loads and saves through the session of the open `Engine.transaction`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from bpf._errors import BpfError, RecordError
from bpf.runtime.records import field_getter, record_id
from bpf.runtime.registry import Registry
from bpf.runtime.transaction import Transactions

if TYPE_CHECKING:
    from bpf.runtime.flow import Flow


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

    @property
    def any(self) -> bool:
        """Whether any entity is bound (most engines bind none: the move path skips them)."""
        return bool(self._by_name)


class Records:
    """Which record a caller means, and the flow's records: resolving (entity, id), loading
    through bindings, reading fields for the gate, binding objects to flows."""

    def __init__(self, bindings: Bindings, registry: Registry, tx: Transactions,
                 lock: threading.RLock) -> None:
        self._bindings = bindings
        self._registry = registry
        self._tx = tx
        self._lock = lock

    def key(self, record: Any, entity: str | None) -> tuple[str | None, str]:
        """(entity, id) of a record object or id; the entity is None when bpf cannot tell."""
        if entity is not None:
            binding = self._bindings.get(entity)
            return entity, binding.id_of(record) if binding is not None else record_id(record)
        binding = self._bindings.of_record(record)
        if binding is not None:
            return binding.name, binding.id_of(record)
        rid = record_id(record)
        entities = self._registry.entities()
        return (next(iter(entities)) if len(entities) == 1 else None), rid

    def resolve(self, record: Any, entity: str | None) -> tuple[str, str]:
        found, rid = self.key(record, entity)
        if found is None:
            entities = ", ".join(sorted(self._registry.entities())) or "none registered"
            raise RecordError(
                f"which record is {rid!r}? The registered processes run on several entities "
                f"({entities}): pass entity=..., or bind the record's class with "
                "engine.entity(name, model=...)"
            )
        return found, rid

    def obj(self, flow: Flow, entity: str) -> Any:
        for i, ((e, rid), obj) in enumerate(zip(flow._state.records, flow._bound, strict=True)):
            if e == entity:
                if obj is None:
                    obj = self._load(e, rid)
                    bound = flow._bound
                    flow._bound = (*bound[:i], obj, *bound[i + 1:])
                return obj
        raise RecordError(f"the flow has no {entity} record yet")

    def loaded(self, flow: Flow, entity: str) -> Any:
        """The flow's ``entity`` record, loaded through its binding when it can be; None when
        it is not bound and cannot be loaded."""
        binding = self._bindings.get(entity) if self._bindings.any else None
        if binding is None or (binding.load is None and not binding.orm):
            return None
        with self._lock:
            try:
                return self.obj(flow, entity)
            except RecordError:
                return None

    def _load(self, entity: str, rid: str) -> Any:
        binding = self._bindings.get(entity)
        loaded = None
        if binding is not None and binding.load is not None:
            loaded = binding.load(rid)
        elif binding is not None and binding.orm:
            loaded = self._tx.orm_get(binding, rid)
        else:
            raise RecordError(
                f"the flow needs its {entity} record {rid!r}, which is not bound in this "
                "engine: look the flow up with that record (engine.flows(record)), call "
                f"flow.bind(record), or tell the engine how to load it with "
                f"engine.entity({entity!r}, load=...)"
            )
        if loaded is None:
            raise RecordError(f"the {entity} record {rid!r} could not be loaded: it is gone")
        return loaded

    def getter(self, flow: Flow, entity: str) -> Callable[[str], Any]:
        bound = flow._bound
        if len(bound) == 1 and bound[0] is not None and flow._state.records[0][0] == entity:
            return field_getter(bound[0])  # most flows span one record: skip the search
        return field_getter(self.obj(flow, entity))

    def save_of(self, entity: str) -> Callable[[Any], Any] | None:
        binding = self._bindings.get(entity) if self._bindings.any else None
        if binding is None:
            return None
        if binding.save is not None:
            return binding.save
        return self._tx.orm_add if binding.orm else None

    def bind(self, flow: Flow, record: Any) -> None:
        binding = self._bindings.of_record(record) if self._bindings.any else None
        for e, rid in flow._state.records:
            if binding is not None and binding.name != e:
                continue
            if self.key(record, e)[1] == rid and bind_if_matches(flow, e, rid, record):
                return
        raise RecordError(
            f"record {record_id(record)!r} is not one of the flow's records ({flow.record_ids})"
        )


def bind_if_matches(flow: Flow, entity: str, rid: str, record: Any) -> bool:
    """Bind ``record`` as the flow's (``entity``, ``rid``) record, if it spans that one."""
    for i, (e, r) in enumerate(flow._state.records):
        if r == rid and e == entity:
            bound = flow._bound
            if bound[i] is not record:
                flow._bound = (*bound[:i], record, *bound[i + 1:])
            return True
    return False


def raiser(exc: BpfError) -> Callable[[str], Any]:
    # The record is needed only if the gate reads it, after the status and role checks.
    def get(field: str) -> Any:
        raise exc

    return get


def no_record(entity: str) -> Callable[[str], Any]:
    # Stages ahead on an entity without a bound record are predicted from empty values.
    return lambda field: None
