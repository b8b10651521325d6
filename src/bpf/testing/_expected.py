"""What your hooks refuse on purpose, told to the kit: `Refuses` and the `Attempt` it judges.

The kit knows what the definition refuses (a gate, a role, a last stage...); a ``stage_changing``
or ``status_changing`` hook of yours may refuse more (`bpf.Cancel`), and so may anything else
in your engine. Declared, such a refusal is expected where its predicate holds (and then
required: an operation it says is refused that succeeds breaks the property ``expected``);
undeclared, it breaks ``allowed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from bpf.runtime.flow import Actor, Flow

#: The operations an `Attempt` names.
ATTEMPTS = ("start", "next", "previous", "set_active", "finish", "abandon", "reactivate")


@attrs.frozen
class Attempt:
    """One operation a user tries, as a `Refuses` predicate sees it, before it is made."""

    #: start, next, previous, set_active, finish, abandon or reactivate
    kind: str
    #: the process of the flow
    process: str
    #: the record of the flow's active stage (start: the record the flow starts on), read-only
    record: Mapping[str, Any]
    actor: Actor | None
    #: the flow (None for a start)
    flow: Flow | None = None
    #: set_active: the stage asked for
    stage: str | None = None
    #: finish: the outcome asked for
    outcome: str | None = None


@attrs.frozen
class Refuses:
    """An operation your engine refuses on purpose, for ``reason``, whenever ``when(attempt)``
    is true: ``Refuses("cancel", lambda a: a.kind == "abandon" and a.record.get("budgetamount",
    0) > 100_000, why="big deals are never abandoned")``.

    ``reason`` is the `bpf.Reason` the refusal carries (``"cancel"`` for `bpf.Cancel`).
    """

    reason: str
    when: Callable[[Attempt], bool]
    why: str = "your engine refuses it (expect_refusals)"

    def applies(self, attempt: Attempt) -> bool:
        return bool(self.when(attempt))
