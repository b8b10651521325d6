"""Joining the application's transaction: knowing when it commits or rolls back.

`Engine.transaction(conn)` writes through the application's SQLAlchemy `Connection` or ORM
`Session`; what bpf changed in memory then stands or reverts with that transaction. Which of
the two happened comes from SQLAlchemy's own transaction events, never from a guess.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from bpf._errors import StoreError

# What waits on each application transaction: (on_commit, on_rollback) pairs, by the Session
# or Connection, whose listeners are registered once and never removed (SQLAlchemy cannot
# remove a listener while its event runs, and a Session or Connection lives for a request).
_waiting: weakref.WeakKeyDictionary[Any, list[tuple[Callable[[], None], Callable[[], None]]]] = (
    weakref.WeakKeyDictionary()
)
_committed: weakref.WeakSet[Any] = weakref.WeakSet()


def _fire(target: Any, committed: bool) -> None:
    callbacks = _waiting.get(target)
    if not callbacks:
        return
    pending = list(callbacks)
    callbacks.clear()
    for on_commit, on_rollback in pending:
        (on_commit if committed else on_rollback)()


def _session_committed(session: Any) -> None:
    _committed.add(session)


def _session_ended(session: Any, transaction: Any) -> None:
    if transaction.parent is not None or transaction.nested:
        return  # a savepoint or subtransaction: the outer one decides
    committed = session in _committed
    _committed.discard(session)
    _fire(session, committed)


def _connection_committed(conn: Any) -> None:
    _fire(conn, True)


def _connection_rolled_back(conn: Any) -> None:
    _fire(conn, False)


def listen_for_end(conn: Any, on_commit: Callable[[], None], on_rollback: Callable[[], None]
                    ) -> Any:
    """Call ``on_commit`` or ``on_rollback`` when the application's transaction on ``conn``
    (a SQLAlchemy `Connection` or ORM `Session`) ends; returns the `Connection` to write
    through. SQLAlchemy's own transaction events say which, never a guess."""
    from sqlalchemy import event
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    def wait(listeners: tuple[tuple[str, Callable[..., None]], ...]) -> None:
        if conn not in _waiting:
            _waiting[conn] = []
            for name, fn in listeners:
                event.listen(conn, name, fn)
        _waiting[conn].append((on_commit, on_rollback))

    if isinstance(conn, Session):
        connection = conn.connection()  # begins the session's transaction if needed
        wait((("after_commit", _session_committed),
              ("after_transaction_end", _session_ended)))
        return connection
    if isinstance(conn, Connection):
        if not conn.in_transaction():
            conn.begin()
        wait((("commit", _connection_committed), ("rollback", _connection_rolled_back)))
        return conn
    raise StoreError(
        "engine.transaction() takes a SQLAlchemy Connection or ORM Session on the database of "
        f"the engine's store, got {type(conn).__name__}"
    )
