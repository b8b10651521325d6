"""The engine: registers processes, starts and moves flows on records, keeps their history.

Every operation follows one pattern, so a refused or failed one changes nothing:

1. the move core (`bpf.runtime.core`) decides: a refusal, or a change (new state, history
   entry, fields to write); the cancelable ``*_changing`` hooks run;
2. the change is applied to the flow and the record in memory, under a named `Snapshot`;
3. the stage actions (on_exit, on_enter) run and the store writes the change in one
   transaction (or the open batch collects it);
4. on any exception in 2–3 the snapshot is restored and the exception re-raised; otherwise
   the ``*_changed`` hooks run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from bpf._clock import Clock, as_utc, utcnow
from bpf._errors import (
    FlowExistsError,
    RecordError,
)
from bpf.definition.model import ProcessDefinition, Step
from bpf.runtime import changes, core
from bpf.runtime import migrate as migration
from bpf.runtime.bindings import (
    Bindings,
    EntityBinding,
    Records,
    no_record,
)
from bpf.runtime.flow import Actor, Flow, FlowEvent
from bpf.runtime.hooks import EVENTS, Hooks
from bpf.runtime.identity import IdentityMap, new_flow_id
from bpf.runtime.lookups import Lookups
from bpf.runtime.moves import Moves
from bpf.runtime.outbox import AfterActions, Consumer
from bpf.runtime.records import field_getter
from bpf.runtime.registry import Registry
from bpf.runtime.transaction import Transactions
from bpf.store.base import Event, Store


class Engine(Lookups, Moves):
    """Runs business process flows on records.

    ``store`` is where flows live: None or ``"memory"`` for this process only, a database URL
    (``"sqlite:///bpf.db"``, ``"postgresql+psycopg://user@host/db"``), a SQLAlchemy `Engine`,
    or a `bpf.store.Store`. ``clock`` returns timezone-aware UTC datetimes.

    A record is identified by (entity, id): a lead 42 and an opportunity 42 are two records.
    Lookups take the entity from ``entity=``, from a binding of the record's class
    (`entity`), or from the registered processes when they all run on one entity; otherwise
    they raise `bpf.RecordError` rather than guess.
    """

    __module__ = "bpf"  # shown as bpf.Engine, its public name
    #: the class of the flows the engine makes (`bpf.AsyncEngine` makes awaitable ones)
    _flow_class: type[Flow] = Flow
    #: how the engine applies changes (`bpf.AsyncEngine`: a batch per task)
    _transactions_class: type[Transactions] = Transactions

    def __init__(
        self,
        store: Any = None,
        *,
        clock: Clock | None = None,
        actions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        from bpf.store import open_store

        self._store: Store = open_store(store)
        self._clock: Clock = clock or utcnow
        #: Stage actions by name, for ``on_enter``/``on_exit``; fill before `register`.
        self.actions: dict[str, Callable[..., Any]] = dict(actions or {})
        self._lock = threading.RLock()
        self._registry = Registry(self.actions, self._lock, self._store)
        self._hooks = Hooks()
        self._bindings = Bindings()
        self._factories: dict[str, Callable[[Flow, Any], Any]] = {}
        # One object per flow in this engine; kept strongly when the store is not durable,
        # since no other copy of the records bound to the flows exists then.
        self._flows = IdentityMap(strong=not self._store.durable)
        self._tx = self._transactions_class(self._store, self._hooks, self._flows, self._lock)
        self._records = Records(self._bindings, self._registry, self._tx, self._lock)
        self._after = AfterActions(self._store, self._registry)
        self._tx.after_commit = self._after.after_commit

    # -- configuration ---------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def now(self) -> datetime:
        """The engine's clock, read once (UTC)."""
        at = self._clock()
        return at if at.tzinfo is UTC else as_utc(at)

    def register(self, definition: ProcessDefinition) -> ProcessDefinition:
        """Make a process (one version of it) available to `start`; returns it.

        Several processes may run on one entity. Registering a newer version makes it the one
        new flows start on; flows already running stay on theirs (see `migrate`).
        """
        return self._registry.register(definition)

    def processes(self, *, stored: bool = False) -> tuple[ProcessDefinition, ...]:
        """Every registered definition, every version; with ``stored``, also the versions
        known only from the store (their flows can be read, not moved)."""
        if stored:
            return (*self._registry.definitions(), *self._registry.stored())
        return self._registry.definitions()

    def process(self, name: str, version: int | None = None) -> ProcessDefinition:
        """A registered definition: the latest version unless ``version`` is given."""
        return self._registry.get(name, version).definition

    def on(self, event: str, fn: Callable[[FlowEvent], Any]) -> Callable[[FlowEvent], Any]:
        """Call ``fn(FlowEvent)`` on ``event``; a ``*_changing`` handler cancels by raising
        `bpf.Cancel`. Returns ``fn``, so it also works as a decorator factory's target."""
        return self._hooks.on(event, fn)

    def record_factory(self, entity: str, fn: Callable[[Flow, Any], Any]) -> None:
        """Create the ``entity`` record a flow needs when it first enters a stage on it.

        ``fn(flow, record)`` gets the flow and the record being left, and returns the new record.
        """
        self._factories[entity] = fn

    def entity(
        self,
        name: str,
        *,
        model: type | None = None,
        key: str | None = None,
        load: Callable[[str], Any] | None = None,
        save: Callable[[Any], Any] | None = None,
    ) -> EntityBinding:
        """Say how bpf handles the records of entity ``name``.

        ``model`` is the class of its record objects (their entity is then known from the
        object alone); ``key`` the mapping key or attribute holding the id (default ``id``, or
        the primary key of a SQLAlchemy model); ``load(record_id)`` returns the record, so
        flows read back from the store bind their records themselves; ``save(record)``
        persists the fields bpf writes (called inside `transaction`, else after the commit).
        A SQLAlchemy ORM ``model`` needs neither: bpf loads rows with the session of the open
        `transaction` and sets the pipeline field on them, and that session saves them.
        """
        with self._lock:
            return self._bindings.bind(name, model=model, key=key, load=load, save=save)

    # -- starting --------------------------------------------------------------------------------

    def start(
        self,
        process: str,
        record: Any,
        *,
        actor: Actor | None = None,
        version: int | None = None,
    ) -> Flow:
        """Start ``process`` on ``record`` at its first stage; returns the new flow.

        The record is of the first stage's entity. A record has at most one flow per process
        (`bpf.FlowExistsError`).
        """
        compiled = self._registry.get(process, version)
        entity = compiled.first.stage.entity
        binding = self._bindings.of_record(record) if self._bindings.any else None
        if binding is not None and binding.name != entity:
            raise RecordError(
                f"{process!r} starts on a {entity} record, and this is a {binding.name} "
                f"({type(record).__name__})"
            )
        _, rid = self._records.key(record, entity)
        with self._lock:
            refusal = core.role_refusal(compiled.definition, actor, "start")
            if refusal is not None:
                raise refusal.error()
            # Checked before any hook runs; inside a batch on a database the store's unique
            # constraint catches it at commit instead, sparing a query per start of a bulk load.
            unit = self._tx.unit
            if unit is None or unit.connection is not None or not self._store.durable:
                for row in self._store.record_flows(rid, entity):
                    if row.process == process and row.records[0] == (entity, rid):
                        raise FlowExistsError(f"{entity} {rid!r} already has a {process!r} flow")
            change = changes.start(compiled, new_flow_id(), rid, self.now(), actor)
            # A durable store is read back for history; the memory store holds the history
            # itself, and a second list per flow would cost a million flows 120 MB.
            flow = self._flow_class(self, compiled, change.after, (record,),
                                    [] if self._store.durable else None)
            if self._hooks["stage_changing"]:
                self._hooks.before(FlowEvent("stage_changing", flow, "start", None,
                                             change.target.stage.id, "active", "active", actor))
            self._tx.apply(flow, change, record, (record,), actor, active=(entity, rid),
                           save=self._records.save_of(entity))
            return flow

    def switch(
        self, record: Any, process: str, *, actor: Actor | None = None,
        entity: str | None = None,
    ) -> Flow:
        """Dynamics' "Switch process": make the record show its ``process`` flow, starting it
        when the record has none. Flows keep their own stages."""
        with self._lock:
            entity = self._entity_of_process(record, process, entity)
            flow = self._find_flow(record, process, entity)
            if flow is None:
                return self.start(process, record, actor=actor)
            refusal = core.role_refusal(flow._compiled.definition, actor, "switch to")
            if refusal is not None:
                raise refusal.error()
            entity, rid = self._records.resolve(record, entity)
            self._tx.set_active(entity, rid, flow.id)
            return flow

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[Engine]:
        """Group many operations into one store transaction (bulk imports, migrations).

        If anything inside raises, every change of the batch is undone, in memory and in the
        store. ``*_changed`` hooks run once the batch is committed.
        """
        with self._tx.batch():
            yield self

    @contextlib.contextmanager
    def transaction(self, conn: Any) -> Iterator[Engine]:
        """Make bpf's writes part of the application's own transaction.

        ``conn`` is a SQLAlchemy `Connection` or ORM `Session` on the database of the engine's
        store. Inside the block, every start, move and status change writes through it, and
        commits or rolls back with the application's own writes: when that transaction rolls
        back (whenever it does, inside the block or after), the flows and records bpf changed
        in memory revert too; when it commits, the ``*_changed`` hooks run. Commit or roll
        back before using those flows elsewhere.
        """
        with self._tx.join(conn):
            yield self

    # -- versions ----------------------------------------------------------------------------------

    def migrate(
        self,
        process: str,
        to_version: int,
        stage_map: Mapping[str, str] | None = None,
        *,
        actor: Actor | None = None,
    ) -> int:
        """Move every active flow of older versions of ``process`` onto ``to_version``.

        ``stage_map`` maps old stage ids to new ones; ids present in both versions map to
        themselves. Everything is checked before anything changes: `bpf.AccessDenied` when
        the process names roles and ``actor`` holds none of them (the roles of
        ``to_version``), `bpf.UnknownProcessError` when ``to_version`` (or an older version
        that still has active flows) is not registered, `bpf.UnknownStageError` when the map
        names a stage ``to_version`` lacks, and `bpf.TransitionError` (reason ``"migrate"``)
        naming every stage that active flows are in and that has no mapping.

        The whole migration is one batch. Each flow keeps its records, status and the time its
        stage started (a migration is not a move in the business: stale flows stay stale) and
        gets a ``migrate`` history entry. The pipeline field is written (and the record's last
        stage change recorded) only when the phase changes; an unbound record's field is left
        for the caller. No hooks or stage actions run. Returns how many flows moved.
        """
        target = self._registry.get(process, to_version)
        refusal = core.role_refusal(target.definition, actor, "migrate")
        if refusal is not None:
            raise refusal.error()
        mapping = dict(stage_map or {})
        with self._lock:
            active = self._store.stage_counts(process, status="active")
            versions = migration.check(target.definition, mapping, active)
            for version in versions:
                self._registry.for_row(process, version)  # registered, or kept in the store
            at = self.now()
            moved = 0
            with self.batch():
                for version in versions:
                    rows = list(self._store.iter_flows(process, version=version, status="active"))
                    for row in rows:
                        flow = self._materialize(row)
                        change = migration.change(target, flow._compiled, flow._state, mapping,
                                                  at, actor)
                        obj = flow.records.get(change.target.stage.entity)
                        if obj is None:  # an unbound record's field is left for the caller
                            change = change._replace(writes=())
                        self._tx.apply(flow, change, obj, flow._bound, actor, compiled=target,
                                       quiet=True)
                        moved += 1
            return moved

    # -- flows and rows --------------------------------------------------------------------------

    def _missing(self, flow: Flow) -> list[Step]:
        current = flow._stage
        if not current.required:
            return []
        return core.missing_steps(current, self._records.getter(flow, current.stage.entity))

    def _active_path(self, flow: Flow) -> tuple[str, ...]:
        objects = {e: obj for (e, _), obj in zip(flow._state.records, flow._bound, strict=True)}

        def get_for(entity: str) -> Callable[[str], Any]:
            obj = objects.get(entity)
            return field_getter(obj) if obj is not None else no_record(entity)

        return core.predicted_path(flow._compiled, flow._state, get_for)

    def _view(self, flow: Flow, actor: Actor | None) -> dict[str, Any]:
        from bpf.runtime.view import view

        with self._lock:
            return view(flow, actor, self._getter_or_none(flow))

    def _getter_or_none(self, flow: Flow) -> Callable[[str], Callable[[str], Any]]:
        def get_for(entity: str) -> Callable[[str], Any]:
            try:
                return self._records.getter(flow, entity)
            except RecordError:
                return no_record(entity)

        return get_for

    def _loaded_record(self, flow: Flow, entity: str) -> Any:
        return self._records.loaded(flow, entity)

    def _bind(self, flow: Flow, record: Any) -> None:
        with self._lock:
            self._records.bind(flow, record)

    # -- the outbox (docs/outbox.md) ------------------------------------------------------------

    def events(self, after: int | None = None, *, limit: int = 100,
               process: str | None = None) -> list[Event]:
        """Up to ``limit`` committed changes with a seq above ``after`` (None: from the oldest
        kept), in commit order, as `bpf.Event` values; only ``process``'s, if given.
        `bpf.EventsPrunedError` when events above ``after`` were pruned."""
        return self._store.read_events(after, limit, process)

    def consumer(self, name: str, *, process: str | None = None,
                 lease: float = 30.0) -> Consumer:
        """A named consumer of the outbox: its position is kept in the store, each event is
        delivered at least once and acknowledged (`Consumer.ack`); several workers sharing a
        name share the events, one flow's events in order. ``lease`` is how long a worker
        holds a partition it does not acknowledge (SQLite and memory; on PostgreSQL a
        worker's row lock ends with its connection)."""
        return Consumer(self._store, name, process=process, lease=lease)

    def deliver(self, *, limit: int | None = None) -> int:
        """Run the after_enter/after_exit actions of committed changes not yet delivered (a
        process that died after a commit left them); returns how many events were handled.
        Delivery also runs right after each commit whose stages have such actions.
        `bpf.HookError` when an action fails: its event is delivered again next time."""
        return self._after.deliver(limit)

    def prune_events(self, before: datetime) -> int:
        """Delete events committed before ``before``, whatever any consumer has read; a
        consumer behind them then gets `bpf.EventsPrunedError`. Returns how many."""
        return self._store.prune_events(as_utc(before))

    def close(self) -> None:
        """Release the store's connections."""
        self._store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<bpf.Engine store={self._store.url!r} processes={self._registry.names()}>"



__all__ = ["EVENTS", "Engine", "utcnow"]
