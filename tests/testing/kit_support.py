"""What the kit's tests share: a user's process, and engines with planted faults.

Each faulty engine breaks exactly one thing the kit promises to notice, by overriding a private
method of `bpf.Engine` (the runtime itself is never edited). The tests assert that
`check_process` reports each one with a shrunk counterexample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpf
from bpf.runtime.engine import _pick

HERE = Path(__file__).parent
DEAL_PATH = HERE / "processes" / "deal.yaml"
DEAL = bpf.load_process(DEAL_PATH)
PROCESSES = HERE.parents[1] / "processes"
SHIPPED = sorted(PROCESSES.rglob("*.yaml"))


class GatelessEngine(bpf.Engine):
    """Moves on even when required steps are empty."""

    def _next(self, flow: Any, actor: Any, record: Any) -> Any:
        try:
            return super()._next(flow, actor, record)
        except bpf.StageGateError:
            if not flow._stage.branches:  # a last stage: nowhere to move anyway
                raise
            target = _pick(flow._stage.branches, self._getter(flow, flow.stage.entity))
            return self._move(flow, "next", target, actor, record)


class BranchBlindEngine(bpf.Engine):
    """Always takes the last (default) branch, whatever the conditions say."""

    def _next(self, flow: Any, actor: Any, record: Any) -> Any:
        self._check_move(flow, actor, "move")
        branches = flow._stage.branches
        if branches and not self._missing(flow):
            return self._move(flow, "next", branches[-1][1], actor, record)
        return super()._next(flow, actor, record)


class ForgetfulEngine(bpf.Engine):
    """Drops the history entry of every move back (previous)."""

    def _move(self, flow: Any, kind: str, target: str, actor: Any, given: Any) -> Any:
        stage = super()._move(flow, kind, target, actor, given)
        if kind == "previous" and flow._history:
            flow._history.pop()
        return stage


class RoleBlindEngine(bpf.Engine):
    """Lets anybody move any flow."""

    def _check_role(self, definition: Any, actor: Any, what: str) -> None:
        return None


class EndlessEngine(bpf.Engine):
    """Finishes a flow at any stage, not only at a last one."""

    def _finish(self, flow: Any, outcome: Any, actor: Any) -> None:
        self._check_move(flow, actor, "finish")
        self._status(flow, "finish", "finished", actor, outcome, None, {})


class LeakyEngine(bpf.Engine):
    """Writes the next stage's phase into the record before the gate refuses the move."""

    def _next(self, flow: Any, actor: Any, record: Any) -> Any:
        if flow.status == "active" and flow._stage.branches and flow.record is not None:
            target = flow._stage.branches[-1][1]
            flow.record["stepname"] = flow._compiled.stages[target].stage.phase
        return super()._next(flow, actor, record)


class AmnesiacEngine(bpf.Engine):
    """Loses the latest history entry of every flow it reads back from its store."""

    def _load_history(self, flow: Any) -> Any:
        return super()._load_history(flow)[:-1]


def skip_pipeline_field(monkeypatch: Any) -> None:
    """Make the engine write every field but the pipeline field (stepname)."""
    real = bpf.runtime.engine.set_field

    def set_field(record: Any, field: str, value: Any) -> Any:
        if field == "stepname":
            return lambda: None
        return real(record, field, value)

    monkeypatch.setattr("bpf.runtime.engine.set_field", set_field)
