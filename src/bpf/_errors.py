"""Every exception and warning bpf raises.

One root, `BpfError`, and small families under it. Errors of the libraries bpf builds on (PyYAML,
jsonschema, transitions, SQLAlchemy) are translated into these at the boundary, so callers catch
bpf's types only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

import attrs


class BpfError(Exception):
    """Base class of every error bpf raises."""


# -- definitions ---------------------------------------------------------------------------------


@attrs.frozen(order=True)
class Problem:
    """One located problem in a process definition: ``source:line:col: message``."""

    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class DefinitionError(BpfError):
    """A process definition is invalid; `.problems` lists every problem found, located."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid process definition")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class UnknownProcessError(BpfError, LookupError):
    """No process of that name (and version) is shipped or registered."""


class UnknownStageError(BpfError, LookupError):
    """The process has no stage with that id."""


class RegistrationError(BpfError):
    """A definition cannot be registered with an engine (unknown action, version clash...)."""


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


# -- runtime -------------------------------------------------------------------------------------


class Reason(StrEnum):
    """Why a flow operation was refused: the one vocabulary of errors, the CLI and the test kit.

    Members compare equal to their strings (``Reason.GATE == "gate"``).
    """

    #: required steps of the active stage are not filled (`StageGateError`)
    GATE = "gate"
    #: no stage after the last, or finish at a stage that is not the last
    END = "end"
    #: no stage before the first
    BEGINNING = "beginning"
    #: set_active to the stage already active
    ACTIVE = "active"
    #: set_active to a stage not on the traversed path
    UNREACHABLE = "unreachable"
    #: the flow is finished or aborted, or reactivate of an active flow
    STATUS = "status"
    #: the stage needs a record of another entity, or another record was passed
    ENTITY = "entity"
    #: unknown outcome
    OUTCOME = "outcome"
    #: no branch condition holds and the stage has no default branch
    BRANCH = "branch"
    #: a flow's stage has no counterpart in the target version
    MIGRATE = "migrate"
    #: the actor holds none of the roles the process requires (`AccessDenied`)
    ROLE = "role"
    #: a ``*_changing`` hook raised `Cancel`
    CANCEL = "cancel"
    #: the record already has a flow of that process (`FlowExistsError`)
    EXISTS = "exists"
    #: the flow is not there (`FlowNotFoundError`)
    NOT_FOUND = "not_found"


class FlowError(BpfError):
    """A flow operation was refused; the flow, the record and the history are unchanged.

    `.reason` is a `Reason`.
    """

    reason: Reason


class TransitionError(FlowError):
    """The move is not possible from the flow's current state; `.reason` says why.

    Reasons (`Reason`): gate (a `StageGateError`), end, beginning, active, unreachable,
    status, entity, outcome, branch, migrate.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = Reason(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt with its keyword-only reason (pickle passes only positional arguments).
        return (_rebuild, (type(self), self.args, self.__dict__))


class StageGateError(TransitionError):
    """Required steps of the active stage are not filled validly; `.missing` lists their
    steps and `.problems` says, by field, what is wrong with each (``"not filled"``,
    ``"not one of low, high"``...)."""

    def __init__(
        self, message: str, *, missing: Sequence[Any], problems: Any = None
    ) -> None:
        super().__init__(message, reason=Reason.GATE)
        #: the `bpf.Step` definitions not filled validly
        self.missing: tuple[Any, ...] = tuple(missing)
        #: field -> why its value does not fill the step
        self.problems: dict[str, str] = dict(problems or {})


class FlowExistsError(FlowError):
    """The record already has a flow of that process (one flow per process and record)."""

    reason = Reason.EXISTS


class FlowNotFoundError(FlowError, LookupError):
    """The flow is not there: the record has no flow of that process, no flow has that id
    (`Engine.get_flow`), or the store no longer holds it (on `Flow.refresh` or a write)."""

    reason = Reason.NOT_FOUND


class AccessDenied(FlowError):
    """The actor holds none of the roles the process requires."""

    reason = Reason.ROLE


class Cancel(FlowError):
    """Raised by a ``stage_changing`` or ``status_changing`` handler to cancel the change."""

    reason = Reason.CANCEL


class HookError(BpfError):
    """A hook, stage action or record factory raised (or the factory returned None);
    `__cause__` holds the original exception, if any. Raised by a ``*_changed`` hook, it comes
    after the change was committed: the change stands."""


class RecordError(BpfError):
    """A record cannot be used: no ``id``, or a field bpf must write cannot be set."""


# -- storage -------------------------------------------------------------------------------------


class StoreError(BpfError):
    """The store cannot be reached or used; the message names the URL (password hidden)."""


class ConcurrencyError(BpfError):
    """Someone else changed the flow since it was loaded; reload it and try again."""


class EventsPrunedError(StoreError):
    """A read of the outbox, or a consumer, asked for events older than the retention horizon:
    they were pruned, so reading on would skip them silently."""


# -- warnings ------------------------------------------------------------------------------------


class BpfWarning(UserWarning):
    """Base class of bpf's warnings."""


class DefinitionWarning(BpfWarning):
    """A definition is valid but exceeds a Dynamics 365 limit or looks like a mistake."""

    def __init__(self, problem: Problem | str) -> None:
        super().__init__(str(problem))
        self.problem: Any = problem


class PipelineFieldWarning(BpfWarning):
    """Several processes on one entity write the same pipeline field: it becomes ambiguous."""
