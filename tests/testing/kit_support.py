"""What the kit's tests share: a user's process, and engines with planted faults.

Each faulty engine breaks exactly one thing the kit promises to notice, and is planted through
bpf's public seams only, so the runtime's internals may change freely under these tests:

- a subclass of `bpf.Engine` that overrides public methods only: ``register`` (the engine runs
  a loosened copy of the definition), or ``start``/``flow``/``get_flow`` (it hands out flows
  with one method replaced);
- a twin engine on the same store, registered with a loosened definition, that makes one kind
  of move the real engine would refuse or route elsewhere;
- a `bpf.store.Store` subclass that loses history or crashes;
- a ``stage_changed`` hook.

The tests assert that `check_process` reports each one with a shrunk counterexample.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import attrs

import bpf
from bpf.store import MemoryStore, SQLStore

HERE = Path(__file__).parent
DEAL_PATH = HERE / "processes" / "deal.yaml"
DEAL = bpf.load_process(DEAL_PATH)
PROCESSES = HERE.parents[1] / "processes"
SHIPPED = sorted(PROCESSES.rglob("*.yaml"))


# -- loosened definitions --------------------------------------------------------------------------


def _each_stage(definition: bpf.ProcessDefinition, change: Any) -> bpf.ProcessDefinition:
    return attrs.evolve(definition, stages=[change(definition, s) for s in definition.stages])


def without_gates(definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
    """The definition with no required step."""
    return _each_stage(definition, lambda d, s: attrs.evolve(
        s, steps=[attrs.evolve(step, required=False) for step in s.steps]))


def default_branches_only(definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
    """The definition with every stage's conditional branches dropped: only the last (the
    default) is left."""
    def change(d: bpf.ProcessDefinition, s: bpf.Stage) -> bpf.Stage:
        branches = d.branches(s.id)
        if not branches:
            return attrs.evolve(s, next=(), end=True)
        return attrs.evolve(s, next=[bpf.Branch(branches[-1].stage)])

    return _each_stage(definition, change)


def every_stage_last(definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
    """The definition with no branch at all: a flow may finish at any stage."""
    return _each_stage(definition, lambda d, s: attrs.evolve(s, next=(), end=True))


# -- engines running a loosened definition ---------------------------------------------------------


class GatelessEngine(bpf.Engine):
    """Moves on even when required steps are empty."""

    def register(self, definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
        return super().register(without_gates(definition))


class RoleBlindEngine(bpf.Engine):
    """Lets anybody move any flow."""

    def register(self, definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
        return super().register(attrs.evolve(definition, roles=()))


# -- engines handing out flows with a method replaced ----------------------------------------------


class FaultyFlow:
    """A flow as a faulty engine hands it out: the engine's flow, with the methods a subclass
    replaces; everything else is the real flow's."""

    def __init__(self, flow: bpf.Flow, engine: FlowHandingEngine) -> None:
        self.real = flow
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.real!r}>"


class FlowHandingEngine(bpf.Engine):
    """Hands out its flows wrapped in ``faulty`` (from the public lookups that return one flow)."""

    faulty: type[FaultyFlow] = FaultyFlow

    def start(self, process: str, record: Any, **kwargs: Any) -> Any:
        return self.faulty(super().start(process, record, **kwargs), self)

    def flow(self, record: Any, process: str) -> Any:
        return self.faulty(super().flow(record, process), self)

    def get_flow(self, flow_id: str) -> Any:
        return self.faulty(super().get_flow(flow_id), self)


class _Forgetful(FaultyFlow):
    @property
    def history(self) -> tuple[Any, ...]:
        return tuple(e for e in self.real.history if e.kind != "previous")


class ForgetfulEngine(FlowHandingEngine):
    """Drops the history entry of every move back (previous) from the flows' histories."""

    faulty = _Forgetful


class _Leaky(FaultyFlow):
    def next(self, *, actor: Any = None, record: Any = None) -> Any:
        flow = self.real
        definition = flow.process
        branches = definition.branches(flow.stage.id)
        if flow.status == "active" and branches and flow.record is not None:
            phase = definition.stage(branches[-1].stage).phase
            flow.record[definition.pipeline_field] = phase
        return flow.next(actor=actor, record=record)


class LeakyEngine(FlowHandingEngine):
    """Writes the next stage's phase into the record before the gate refuses the move."""

    faulty = _Leaky


class _Lying(FaultyFlow):
    def missing(self) -> list[Any]:
        return []


class LyingEngine(FlowHandingEngine):
    """Says nothing is missing, while its gate holds."""

    faulty = _Lying


# -- engines with a twin on the same store ---------------------------------------------------------


class TwinEngine(FlowHandingEngine):
    """An engine with a twin on the same store that runs ``loosen(definition)``: the faulty flows
    make one kind of move through the twin, then reload from the store."""

    @staticmethod
    def loosen(definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
        return definition

    def __init__(self, store: Any = None, **kwargs: Any) -> None:
        shared = _TwinStore() if store is None else store
        super().__init__(shared, **kwargs)
        self.twin = bpf.Engine(shared, **kwargs)

    def register(self, definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
        self.twin.actions.update(self.actions)
        self.twin.register(self.loosen(definition))
        return super().register(definition)

    def twin_of(self, flow: bpf.Flow) -> bpf.Flow:
        twin = self.twin.get_flow(flow.id)
        for record in flow.records.values():
            if record is not None:
                twin.bind(record)
        return twin


class _TwinStore(MemoryStore):
    """A memory store that lets the twin run its loosened definition under the real one's name
    and version (a store refuses that: two engines would run different rules)."""

    def save_definition(self, process: str, version: int, text: str, fingerprint: str) -> None:
        with contextlib.suppress(bpf.RegistrationError):
            super().save_definition(process, version, text, fingerprint)


class _BranchBlind(FaultyFlow):
    engine: TwinEngine

    def next(self, *, actor: Any = None, record: Any = None) -> Any:
        stage = self.engine.twin_of(self.real).next(actor=actor, record=record)
        self.real.refresh()
        return stage


class BranchBlindEngine(TwinEngine):
    """Always takes the last (default) branch, whatever the conditions say."""

    faulty = _BranchBlind
    loosen = staticmethod(default_branches_only)


class _Endless(FaultyFlow):
    engine: TwinEngine

    def finish(self, outcome: str | None = None, *, actor: Any = None) -> None:
        self.engine.twin_of(self.real).finish(outcome, actor=actor)
        self.real.refresh()


class EndlessEngine(TwinEngine):
    """Finishes a flow at any stage, not only at a last one (checking only the actor's role
    and the flow's status)."""

    faulty = _Endless

    @staticmethod
    def loosen(definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
        # Stages that were not last lose their gates, so that finishing there is refused for
        # no other reason; last stages keep theirs: one fault per engine.
        last = {s.id for s in definition.stages if definition.is_last(s.id)}
        ungated = _each_stage(definition, lambda d, s: s if s.id in last else attrs.evolve(
            s, steps=[attrs.evolve(step, required=False) for step in s.steps]))
        return every_stage_last(ungated)


# -- faulty stores and hooks -----------------------------------------------------------------------


class _AmnesiacStore(SQLStore):
    def history(self, flow_id: str) -> list[Any]:
        return super().history(flow_id)[:-1]


class AmnesiacEngine(bpf.Engine):
    """Loses the latest history entry of every flow it reads back from its store."""

    def __init__(self, store: str, **kwargs: Any) -> None:
        super().__init__(_AmnesiacStore(store), **kwargs)


class _CrashingStore(MemoryStore):
    def write(self, ops: Any) -> None:
        if any(e.kind == "previous" for op in ops for e in getattr(op, "entries", ())):
            raise KeyError("traversed")
        super().write(ops)


class CrashingEngine(bpf.Engine):
    """Lets a store's KeyError out of every move back (previous), not a bpf.BpfError."""

    def __init__(self, store: Any = None, **kwargs: Any) -> None:
        super().__init__(_CrashingStore() if store is None else store, **kwargs)


class PipelineSkippingEngine(bpf.Engine):
    """Leaves the record's pipeline field unwritten after every stage change (a
    ``stage_changed`` hook takes it off again)."""

    def __init__(self, store: Any = None, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.on("stage_changed", _unwrite_pipeline_field)


def _unwrite_pipeline_field(event: bpf.FlowEvent) -> None:
    field = event.flow.process.pipeline_field
    record = event.flow.record
    if field is not None and record is not None:
        record.pop(field, None)
