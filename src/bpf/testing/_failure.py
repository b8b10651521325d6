"""How a broken property reads: the properties by name, and the failure that lists the steps.

A check that finds something wrong raises `Violation` (a property and a sentence); the machine
turns it into `ProcessCheckFailed`, adding the steps done so far, so a counterexample reads as
what a user did.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

#: The properties the machine checks, by the short name a failure reports.
PROPERTIES: Mapping[str, str] = {
    "gate": "a forward move passes a gate only when every required step of the active stage "
    "is filled",
    "branch": "next enters the first branch whose condition holds on the record at the moment "
    "of the move",
    "path": "the active stage is on the active path, and the traversed path is a walk of the "
    "stage graph from the first stage to the active stage",
    "history": "the history records every stage and status change and replays to the flow's "
    "current state",
    "status": "a flow finishes only at a last stage, and does not move while finished or "
    "aborted",
    "pipeline": "the pipeline field holds the phase of the last stage change of any flow on "
    "the record",
    "refusal": "a refused operation changes nothing: flows, records, histories",
    "roles": "only an actor holding one of the process roles starts, moves, finishes, abandons "
    "or reactivates a flow",
    "one-flow": "a record has at most one flow per process, and engine.flows(record) lists them",
    "outcomes": "a flow finishes only with an outcome the process declares, and the outcome "
    "sets its fields",
    "entity": "a stage on another entity is entered only with a record of that entity",
    "store": "a new engine on the same store sees the same flows, histories and stage changes",
    "errors": "operations fail only with bpf.BpfError",
    "allowed": "an operation the definition allows succeeds and does what the definition says",
    "expected": "an operation your expect_refusals say your engine refuses is refused, for "
    "that reason",
    "invariant": "your own invariants (check_process(invariants=...)) hold after every step",
}


class Violation(Exception):
    """A check found ``property`` broken; ``text`` says how, in the words of the process.

    ``as_step``: the text replaces the last step (the operation itself went wrong) rather than
    following the steps as a ``then:`` line.
    """

    def __init__(self, property: str, text: str, *, as_step: bool = False) -> None:
        super().__init__(text)
        self.property = property
        self.text = text
        self.as_step = as_step


class ProcessCheckFailed(AssertionError):
    """A process did not behave: the message lists the (shrunk) steps and the property broken."""

    def __init__(
        self,
        process: str,
        steps: Sequence[str],
        violation: str | None,
        property: str,
        source: str | None = None,
    ) -> None:
        self.process = process
        #: What was done, one line per operation; the last one may be the violation itself.
        self.steps: tuple[str, ...] = tuple(steps)
        #: What was wrong after the last step (None when the last step itself went wrong).
        self.violation = violation
        #: The short name of the broken property, a key of `PROPERTIES`.
        self.property = property
        self.source = source
        #: the operations of the failing run, replayable by `minimize`
        self.ops: list[tuple[str, dict[str, Any]]] = []
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = ""
        if self.source and not self.source.startswith("<"):
            where = f" ({_shown_path(self.source)})"
        lines = [f"process {self.process!r}{where} misbehaved; shrunk counterexample:"]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        if self.violation:
            lines.append(f"  then: {self.violation}")
        lines.append(f"property broken ({self.property}): {PROPERTIES.get(self.property, '')}")
        return "\n".join(lines)

    def __reduce__(self) -> Any:
        return (
            type(self),
            (self.process, self.steps, self.violation, self.property, self.source),
        )


def _shown_path(source: str) -> str:
    """A source path relative to the working directory when it is below it."""
    try:
        relative = os.path.relpath(source)
    except ValueError:  # pragma: no cover - another drive on Windows
        return source
    return source if relative.startswith("..") else relative
